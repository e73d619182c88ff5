/* Carrying out the engine's passes: a pass runs when something happened
 * (a try ended, the API changed state, the DAG folder was reloaded) or
 * when the engine's wake time comes, never on a polling tick; after it,
 * long polls hear of the runs that changed, ended runs and SLA misses
 * are notified, tries past their timeout are stopped, the new tries
 * start, and the one wake timer is armed for the time the engine asked
 * for.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "dagd/err.h"
#include "dagd/log.h"
#include "dagd/time.h"
#include "dagd/util.h"
#include "daemon.h"

static void on_kick(uv_timer_t *h) { daemon_pass(h->data); }
static void on_wake(uv_timer_t *h) { daemon_pass(h->data); }

void daemon_store_busy(daemon_t *d, bool busy) {
  if (busy && !d->store_busy)
    DAGD_LOG(DAGD_LOG_WARN, "store", "the state store is locked by another process: retrying until it is free");
  else if (!busy && d->store_busy)
    DAGD_LOG(DAGD_LOG_INFO, "store", "the state store is free again");
  d->store_busy = busy;
}

bool daemon_store_failed(daemon_t *d, const dagd_err *err) {
  /* Busy (another process holds a write lock): retried from a timer. */
  if (err->code == DAGD_ETIMEDOUT) {
    daemon_store_busy(d, true);
    return false;
  }
  /* Anything else (disk full, read-only or vanished file, corruption):
   * stop rather than go on without recording. Running tries continue
   * under their shims and are re-adopted at the next start. */
  DAGD_LOG(DAGD_LOG_ERROR, "daemon", "the state store failed (%s): stopping so that nothing is lost", err->msg);
  d->exit_code = 1;
  daemon_stop_now(d);
  return true;
}

void daemon_kick(daemon_t *d) {
  if (!d->stopped && !uv_is_active((uv_handle_t *)&d->kick)) uv_timer_start(&d->kick, on_kick, 0, 0);
}

static void notify_sla(daemon_t *d, const dagd_engine_sla *m) {
  char *base = daemon_try_base(d, m->dag->id, m->run_id, m->task->id, m->try_number > 0 ? m->try_number : 1);
  DAGD_LOG(DAGD_LOG_WARN, "sched", "%s/%s/%s missed its SLA", m->dag->id, m->run_id, m->task->id);
  daemon_notify_sla(d, m, base);
  free(base);
}

void daemon_pass(daemon_t *d) {
  if (d->stopped) return;
  double now = daemon_now(), started = daemon_mono();
  dagd_engine_actions a;
  dagd_engine_actions_init(&a);
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_engine_pass(d->engine, now, &a, &err) < 0) {
    /* Busy is said once, by daemon_store_busy; the engine's wake retries. */
    if (err.code != DAGD_ETIMEDOUT)
      DAGD_LOG(DAGD_LOG_ERROR, "sched", "scheduling pass failed, nothing changed: %s", err.msg);
    if (daemon_store_failed(d, &err)) goto out;
  } else {
    daemon_store_busy(d, false);
  }
  /* What the pass decided is committed before it is acted on. */
  if (!daemon_commit(d)) goto out;
  d->stats.queue_depth = a.queued;
  for (size_t i = 0; i < a.n_changed_runs; i++) daemon_api_run_changed(d, a.changed_runs[i]);
  for (size_t i = 0; i < a.n_run_ends; i++) {
    const dagd_engine_run_end *e = &a.run_ends[i];
    daemon_metrics_run(d, e->dag->id, e->state == DAGD_RUN_SUCCESS,
                       e->run.start_date > 0 ? e->run.end_date - e->run.start_date : -1);
    daemon_notify_run(d, e);
  }
  for (size_t i = 0; i < a.n_sla_misses; i++) notify_sla(d, &a.sla_misses[i]);
  for (size_t i = 0; i < a.n_stops; i++) daemon_try_timeout(d, &a.stops[i]);
  for (size_t i = 0; i < a.n_starts && !d->stopped; i++) daemon_try_start(d, &a.starts[i]);
  uv_timer_stop(&d->wake);
  /* The wake is wall time, the timer monotonic: bounded, so that a jump
   * of the wall clock no timerfd reported is seen within the bound. */
  if (a.wake > 0 && !d->stopped)
    uv_timer_start(&d->wake, on_wake, dagd_time_wake_delay_ms(a.wake, daemon_now(), DAEMON_WAKE_MAX_MS), 0);
out:
  d->stats.passes++;
  d->stats.pass_seconds += daemon_mono() - started;
  dagd_engine_actions_close(&a);
  if (!d->stopped && dagd_engine_draining(d->engine) && dagd_engine_in_flight(d->engine) == 0) daemon_stop_now(d);
}
