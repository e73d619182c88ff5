/* test_sim: the deterministic simulation of dagd's scheduling engine, in
 * the spirit of FoundationDB's simulator. Per seed it generates DAGs and a
 * configuration, drives the real engine (dagd_engine_*) over the real
 * store (SQLite in a temp file) with a virtual clock, a simulated executor,
 * external events through the real API handlers, crashes, drains and
 * reloads, and checks the invariants of check.c after every step. A
 * failing seed prints itself and exits 1; docs/simulation.md has more.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dagd/err.h"
#include "dagd/log.h"
#include "dagd/command.h"
#include "dagd/time.h"
#include "dagd/util.h"
#include "sim.h"

/* Seeds that once failed: they run first, every time (docs/simulation.md
 * says which bug each one found). */
static const uint64_t regression_seeds[] = {
    2,   /* unique.run-date: a backfill reaching an interval not created yet, then its scheduled run (7692038) */
    10,  /* the stall shape (every 22361 s, a 47486 s task, max_active_runs 1): liveness.due-run without a re-plan */
    13,  /* try.double-run-kill: a cleared running try and the next try at once (8feeaef) */
    19,  /* try.branch: a branch's retry follows the output of its failed first try (7692038) */
    32,  /* limit.max-active-tasks-kill: a cleared try still stopping no longer held its DAG's slot (7692038) */
    216, /* final.trigger: the stale branch output, seen in the run's final states (7692038) */
    396, /* limit.pool-kill: the same for a pool's slots (7692038) */
};
#define N_REGRESSION (sizeof(regression_seeds) / sizeof(regression_seeds[0]))

#define EPS 1e-6

/* --- reporting --- */

/* The engine's log lines of the current seed, the last few kept for a
 * failure's report. */
#define LOG_KEEP 40
static char log_ring[LOG_KEEP][256];
static size_t log_next;
static int log_verbose;

static void log_sink(void *data, dagd_log_level level, const char *component, const char *file, int line,
                     const char *msg) {
  (void)data;
  (void)file;
  (void)line;
  snprintf(log_ring[log_next % LOG_KEEP], sizeof(log_ring[0]), "%s %s: %s",
           level == DAGD_LOG_ERROR ? "E" : level == DAGD_LOG_WARN ? "W" : level == DAGD_LOG_INFO ? "I" : "D", component,
           msg);
  log_next++;
  if (log_verbose >= 2) fprintf(stderr, "      log %s\n", log_ring[(log_next - 1) % LOG_KEEP]);
}

const char *sim_time(double t, char *buf) {
  char base[32];
  int64_t secs = (int64_t)floor(t);
  unsigned ms = (unsigned)llround((t - (double)secs) * 1000) % 1000u;
  if (t - (double)secs >= 0.9995) secs++;
  dagd_time_format_utc(secs, base);
  base[19] = '\0'; /* drop the Z */
  snprintf(buf, 40, "%.19s.%03uZ", base, ms);
  return buf;
}

bool sim_skipped(const sim *s, const char *check) {
  for (size_t i = 0; i < s->opts->n_skip; i++) {
    size_t n = strlen(s->opts->skip[i]);
    /* "liveness" skips every liveness.* check. */
    if (strncmp(check, s->opts->skip[i], n) == 0 && (check[n] == '\0' || check[n] == '.')) return true;
  }
  return false;
}

bool sim_fail(sim *s, const char *check, const char *fmt, ...) {
  if (s->failed || sim_skipped(s, check)) return false;
  s->failed = true;
  snprintf(s->fail_check, sizeof(s->fail_check), "%s", check);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->fail_msg, sizeof(s->fail_msg), fmt, ap);
  va_end(ap);
  s->fail_step = s->step;
  s->fail_now = s->now;
  return true;
}

void sim_trace(const sim *s, const char *fmt, ...) {
  if (s->opts->verbose < 1) return;
  char t[40];
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "  [%ld %s] ", s->step, sim_time(s->now, t));
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* --- the engine's life --- */

static void open_daemon(sim *s) {
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_store_open(s->db_path, &s->store, &err) != 0) {
    fprintf(stderr, "sim: cannot open %s: %s\n", s->db_path, err.msg);
    exit(2);
  }
  dagd_engine_opts opts = {.parallelism = s->parallelism, .pools = s->pools, .n_pools = s->n_pools,
                           .seed = sim_rand(&s->rng)};
  s->engine = dagd_engine_new(s->store, &opts);
  s->engine_gen++;
  s->draining = false;
  if (dagd_engine_set_dags(s->engine, (const dagd_dag *const *)s->models, s->n_dags, &err) != 0)
    sim_fail(s, "engine.error", "set_dags: %s", err.msg);
}

static void close_daemon(sim *s) {
  sim_api_close(s);
  dagd_engine_free(s->engine);
  s->engine = NULL;
  dagd_store_close(s->store);
  s->store = NULL;
}

/* Orders deliveries: by end time, then by the order the tries started. */
static size_t earliest_due(const sim *s, double until) {
  size_t best = SIZE_MAX;
  for (size_t i = 0; i < s->n_tries; i++) {
    const sim_try *x = &s->tries[i];
    if (!x->spawned || x->end_at > until) continue;
    if (best == SIZE_MAX || x->end_at < s->tries[best].end_at ||
        (x->end_at == s->tries[best].end_at && x->serial < s->tries[best].serial))
      best = i;
  }
  return best;
}

void sim_restart(sim *s, bool crash, double downtime) {
  if (!crash && s->n_tries > 0) {
    sim_fail(s, "drain.end", "restart after a drain with %zu tries in flight", s->n_tries);
    return;
  }
  close_daemon(s);
  if (crash) s->st.crashes++;
  s->now += downtime;
  open_daemon(s);
  dagd_engine_try *adopted = NULL;
  size_t n = 0;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_engine_adopt(s->engine, &adopted, &n, &err) != 0) {
    sim_fail(s, "engine.error", "adopt: %s", err.msg);
    return;
  }
  bool *keep = dagd_calloc(s->n_tries + 1, sizeof(bool));
  for (size_t i = 0; i < n && !s->failed; i++) {
    const dagd_engine_try *t = &adopted[i];
    sim_try *x = sim_exec_find(s, t->run.pk, t->task_id, t->try_number);
    if (x == NULL) {
      sim_fail(s, "try.adopt-extra", "adopt returned %s/%s try %d, which is not running (never handed out, or ended)",
               t->run.run_id, t->task_id, t->try_number);
      break;
    }
    keep[x - s->tries] = true;
    const dagd_task *task = s->models[x->dag]->tasks[x->task];
    double want = task->execution_timeout > 0 ? x->started + (double)task->execution_timeout : 0;
    if (fabs(t->deadline - want) > EPS || fabs(t->start_date - x->started) > EPS)
      sim_fail(s, "try.adopt-deadline", "adopted %s/%s try %d: start %.3f deadline %.3f, want %.3f and %.3f",
               t->run.run_id, t->task_id, t->try_number, t->start_date, t->deadline, x->started, want);
  }
  dagd_engine_tries_free(adopted, n);
  s->st.adopted += n;
  /* Tries the new engine did not adopt: lost, unless their task instance
   * no longer records them (cleared or marked while they were being
   * stopped: their process dies on its own). */
  for (size_t i = s->n_tries; i-- > 0 && !s->failed;) {
    if (keep[i]) continue;
    sim_try *x = &s->tries[i];
    sim_ti ti;
    if (sim_mirror_ti(s, x->run_pk, x->task, &ti) && ti.state == DAGD_TI_RUNNING && ti.try_number == x->try_number) {
      sim_fail(s, "try.adopt-lost", "run %lld %s try %d is running, but the restarted engine did not adopt it",
               (long long)x->run_pk, x->task_id, x->try_number);
      break;
    }
    sim_trace(s, "orphan: run %lld %s try %d (no longer recorded as running) dies on its own", (long long)x->run_pk,
              x->task_id, x->try_number);
    keep[i] = keep[s->n_tries - 1];
    sim_exec_remove(s, i);
  }
  free(keep);
  /* For each adopted try the executor decides: it finished while the
   * daemon was down (its true outcome now), it was lost, or it runs on. */
  for (size_t i = 0; i < s->n_tries; i++) {
    sim_try *x = &s->tries[i];
    x->lenient_timeout |= x->stop_requested;
    x->stop_requested = false;
    if (!x->spawned) {
      x->spawned = true;
      x->end_at = s->now;
      x->end_result = (dagd_try_result){DAGD_TRY_VANISHED, 0};
    } else if (x->end_at <= s->now) {
      x->end_at = s->now;
    } else if (sim_chance(&s->rng, 0.1)) {
      x->end_at = s->now;
      x->end_result = (dagd_try_result){DAGD_TRY_VANISHED, 0};
    }
  }
  sim_trace(s, "restarted (%s): %zu tries adopted", crash ? "crash" : "after a drain", n);
  for (size_t i; !s->failed && (i = earliest_due(s, s->now)) != SIZE_MAX;) sim_deliver(s, i);
  sim_api_open(s);
}

/* --- the end of a try --- */

static const char *how_name(const dagd_try_result *r) {
  return r->how == DAGD_TRY_EXITED ? "exit" : r->how == DAGD_TRY_SIGNALED ? "signal" : "vanished";
}

/* What the end of try x makes of its task instance (try_number of
 * max_tries), as engine.h and sched.h describe it. */
static dagd_ti_state expect_state(const sim_try *x, bool timed_out, int try_number, int max_tries, bool *succeeded) {
  const dagd_try_result *r = &x->end_result;
  bool exited = r->how == DAGD_TRY_EXITED;
  *succeeded = exited && r->code == 0 && !timed_out && !x->oversize;
  if (exited && !timed_out && r->code == DAGD_EXIT_SKIP) return DAGD_TI_SKIPPED;
  if (exited && !timed_out && r->code == DAGD_EXIT_RESCHEDULE) return DAGD_TI_UP_FOR_RESCHEDULE;
  if (*succeeded) return DAGD_TI_SUCCESS;
  return try_number < max_tries ? DAGD_TI_UP_FOR_RETRY : DAGD_TI_FAILED;
}

void sim_deliver(sim *s, size_t i) {
  sim_try x = s->tries[i];
  s->tries[i].outputs = NULL;
  sim_exec_remove(s, i);
  const dagd_dag *dag = s->models[x.dag];
  const dagd_task *task = dag->tasks[x.task];
  sim_run *r = sim_run_get(s, x.run_pk);
  sim_ti pre = r ? r->tis[x.task] : (sim_ti){0};
  char t1[40];
  if (!isinf(x.natural_end) && x.deadline > 0 && x.natural_end >= x.deadline - EPS && !x.stop_requested)
    x.lenient_timeout = true;
  dagd_engine_end end = {.run_pk = x.run_pk, .task_id = x.task_id, .try_number = x.try_number,
                         .result = x.end_result, .outputs = x.outputs, .outputs_len = x.outputs_len};
  dagd_engine_ended ended;
  memset(&ended, 0, sizeof(ended));
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_engine_try_end(s->engine, &end, s->now, &ended, &err);
  sim_trace(s, "end run %lld %s try %d (%s %d%s%s) outputs [%.60s] -> %s%s%s", (long long)x.run_pk, x.task_id,
            x.try_number, how_name(&x.end_result), x.end_result.code, x.stop_requested ? ", timed out" : "",
            x.killed ? ", killed" : "",
            x.oversize ? "(oversize)" : x.outputs ? x.outputs : "", rc == 0 ? dagd_ti_state_name(ended.state) : "error",
            rc == 0 && !ended.current ? " (not current)" : "",
            rc == 0 && ended.timed_out ? " timed_out" : "");
  if (rc != 0) {
    sim_fail(s, "engine.error", "try_end of %s try %d: %s", x.task_id, x.try_number, err.msg);
    free(x.outputs);
    return;
  }
  free(x.outputs);
  if (r == NULL) {
    sim_fail(s, "try.end-current", "a try of run %lld ended, a run the store never showed", (long long)x.run_pk);
    dagd_engine_ended_close(&ended);
    return;
  }
  if (x.killed) s->st.kills++;
  if (x.end_result.how == DAGD_TRY_VANISHED) s->st.lost++;
  if (ended.current && ended.state == DAGD_TI_UP_FOR_RESCHEDULE) s->st.pokes++;
  if (ended.current && ended.state == DAGD_TI_UP_FOR_RETRY) s->st.retries++;
  sim_ti pre_all[SIM_MAX_TASKS];
  memcpy(pre_all, r->tis, sizeof(pre_all));
  sim_mirror_run(s, x.run_pk);
  sim_ti post = r->tis[x.task];
  bool current = pre.state == DAGD_TI_RUNNING && pre.try_number == x.try_number;
  if (ended.current != current) {
    sim_fail(s, "try.end-current", "%s/%s try %d ended: current=%d, but the store had it %s as try %d%s", r->run_id,
             x.task_id, x.try_number, ended.current, dagd_ti_state_name(pre.state), pre.try_number,
             x.killed ? " (it was stopped on request)" : "");
  } else if (!current) {
    if (post.state != pre.state || post.try_number != pre.try_number)
      sim_fail(s, "try.end-stale", "%s/%s: the end of stale try %d changed the task instance from %s/%d to %s/%d",
               r->run_id, x.task_id, x.try_number, dagd_ti_state_name(pre.state), pre.try_number,
               dagd_ti_state_name(post.state), post.try_number);
  } else {
    bool succ_a, succ_b;
    dagd_ti_state want_a = expect_state(&x, x.stop_requested, pre.try_number, pre.max_tries, &succ_a);
    dagd_ti_state want_b = expect_state(&x, !x.stop_requested, pre.try_number, pre.max_tries, &succ_b);
    bool lenient = x.lenient_timeout;
    bool match_a = ended.state == want_a && ended.succeeded == succ_a && ended.timed_out == x.stop_requested;
    bool match_b = lenient && ended.state == want_b && ended.succeeded == succ_b;
    if (!match_a && !match_b)
      sim_fail(s, "try.end-state",
               "%s/%s try %d/%d ended (%s %d%s%s%s): the engine made it %s (succeeded=%d timed_out=%d), want %s "
               "(succeeded=%d timed_out=%d)",
               r->run_id, x.task_id, x.try_number, pre.max_tries, how_name(&x.end_result), x.end_result.code,
               x.oversize ? ", oversize outputs" : "", x.stop_requested ? ", stop asked" : "",
               x.killed ? ", killed" : "",
               dagd_ti_state_name(ended.state), ended.succeeded, ended.timed_out,
               dagd_ti_state_name(want_a), succ_a, x.stop_requested);
    else if (post.state != ended.state)
      sim_fail(s, "try.end-state", "%s/%s try %d: the engine said %s, the store says %s", r->run_id, x.task_id,
               x.try_number, dagd_ti_state_name(ended.state), dagd_ti_state_name(post.state));
    /* Retry delays follow dagd_sched_retry_delay; pokes their interval. */
    if (!s->failed && post.state == DAGD_TI_UP_FOR_RETRY) {
      double lo = dagd_sched_retry_delay(task, x.try_number, 0);
      double hi = dagd_sched_retry_delay(task, x.try_number, 0.999999);
      double d = post.next_try_at - s->now;
      if (d < lo - EPS || d > hi + EPS)
        sim_fail(s, "try.retry-delay", "%s/%s try %d: retry in %.3f s, want %.3f..%.3f (delay %lld%s, cap %lld)",
                 r->run_id, x.task_id, x.try_number, d, lo, hi, (long long)task->retry_delay,
                 task->retry_exponential_backoff ? " exponential" : "", (long long)task->max_retry_delay);
      if (post.try_number != x.try_number)
        sim_fail(s, "try.number", "%s/%s: after try %d the store has %d tries", r->run_id, x.task_id, x.try_number,
                 post.try_number);
    } else if (!s->failed && post.state == DAGD_TI_UP_FOR_RESCHEDULE) {
      int64_t interval = 60;
      const json_t *iv = json_object_get(task->config, "interval");
      if (json_is_integer(iv) && json_integer_value(iv) > 0) interval = json_integer_value(iv);
      if (fabs(post.next_try_at - (s->now + (double)interval)) > EPS || post.try_number != x.try_number - 1)
        sim_fail(s, "try.reschedule", "%s/%s poke %d: next poke at %s (want +%llds), try number %d (want %d)",
                 r->run_id, x.task_id, x.try_number, sim_time(post.next_try_at, t1), (long long)interval,
                 post.try_number, x.try_number - 1);
    }
    /* A branch that succeeded skips the direct downstream tasks it does not follow. */
    if (!s->failed && task->op == DAGD_OP_BRANCH && ended.state == DAGD_TI_SUCCESS) {
      for (size_t k = 0; k < task->n_downstream; k++) {
        size_t d = task->downstream[k];
        bool follow = json_is_true(json_object_get(task->config, "short_circuit")) ? !x.short_circuit_false
                                                                                     : (x.follow_mask & (1 << d)) != 0;
        /* Only what was still none: a task an earlier decision ran stays. */
        if (!follow && pre_all[d].state == DAGD_TI_NONE && r->tis[d].state != DAGD_TI_SKIPPED) {
          sim_fail(s, "try.branch", "%s: branch %s did not follow %s, which is %s after it", r->run_id, task->id,
                   dag->tasks[d]->id, dagd_ti_state_name(r->tis[d].state));
        }
      }
    }
  }
  if (ended.current && task->op == DAGD_OP_BRANCH && ended.state == DAGD_TI_SUCCESS) {
    /* Remember which tasks the branch skipped (they were none before). */
    for (size_t k = 0; k < task->n_downstream; k++) {
      size_t d = task->downstream[k];
      bool follow = json_is_true(json_object_get(task->config, "short_circuit")) ? !x.short_circuit_false
                                                                                   : (x.follow_mask & (1 << d)) != 0;
      if (!follow && pre_all[d].state == DAGD_TI_NONE) {
        r->branch_skip |= 1u << d;
        s->st.branch_skips++;
      }
    }
  }
  dagd_engine_ended_close(&ended);
  if (s->draining && dagd_engine_in_flight(s->engine) != s->n_tries)
    sim_fail(s, "drain.in-flight", "draining: the engine counts %zu tries in flight, the executor runs %zu",
             dagd_engine_in_flight(s->engine), s->n_tries);
}

/* --- one step --- */

/* One pass at s->now, its actions carried out, the invariants checked.
 * Passes again while the engine asks for one at once. */
static void do_pass(sim *s) {
  for (int spins = 0; !s->failed; spins++) {
    dagd_engine_actions_init(&s->act);
    dagd_err err;
    dagd_err_init(&err);
    s->pass_now = s->now;
    int rc = dagd_engine_pass(s->engine, s->now, &s->act, &err);
    s->st.passes++;
    if (rc != 0) {
      sim_fail(s, "engine.error", "pass: %s", err.msg);
      dagd_engine_actions_close(&s->act);
      return;
    }
    s->wake = s->act.wake;
    /* The pass looked only at what changed: a full evaluation of every
     * run it keeps must find nothing left to decide. */
    if (!sim_skipped(s, "engine.incremental") && dagd_engine_verify(s->engine, &err) != 0)
      sim_fail(s, "engine.incremental", "%s", err.msg);
    if (s->opts->verbose >= 2)
      sim_trace(s, "pass: %zu starts, %zu stops, %zu run ends, %zu queued, wake %s", s->act.n_starts, s->act.n_stops,
                s->act.n_run_ends, s->act.queued, s->wake > 0 ? sim_time(s->wake, (char[40]){0}) : "none");
    /* Runs the pass created: read now, checked after the starts. */
    s->pass_first_new = s->max_pk + 1;
    s->ctx = SIM_CTX_PASS;
    sim_mirror_new_runs(s);
    s->ctx = SIM_CTX_OTHER;
    /* Now and then the daemon dies between the commit and the spawns. */
    bool crash = s->act.n_starts > 0 && sim_chance(&s->rng, 0.01);
    for (size_t i = 0; i < s->act.n_starts && !s->failed; i++) {
      const dagd_engine_try *t = &s->act.starts[i];
      long d = sim_dag_index(s, t->dag->id);
      long task = d >= 0 && t->task ? dagd_dag_task_index(s->models[d], t->task->id) : -1;
      if (d < 0 || task < 0 || t->dag != s->models[d]) {
        sim_fail(s, "actions.start", "a start for %s/%s, not a task of the loaded DAGs", t->dag->id, t->task_id);
        break;
      }
      sim_check_start(s, t, (size_t)d, (size_t)task);
      sim_trace(s, "start %s/%s try %d", t->run.run_id, t->task_id, t->try_number);
      sim_try *x = sim_exec_start(s, t, (size_t)d, (size_t)task);
      if (crash) x->spawned = false;
      sim_run *r = sim_run_get(s, t->run.pk);
      if (r) r->started[task]++;
    }
    for (size_t i = 0; i < s->act.n_stops && !s->failed; i++) {
      const dagd_engine_try *t = &s->act.stops[i];
      sim_try *x = sim_exec_find(s, t->run.pk, t->task_id, t->try_number);
      char a[40], b[40];
      if (x == NULL) {
        sim_fail(s, "try.stop-unknown", "stop for %s/%s try %d, which is not in flight", t->run.run_id, t->task_id,
                 t->try_number);
      } else if (x->deadline <= 0 || x->deadline > s->now + EPS) {
        sim_fail(s, "try.stop-early", "stop for %s/%s try %d at %s, its deadline is %s", t->run.run_id, t->task_id,
                 t->try_number, sim_time(s->now, a), x->deadline > 0 ? sim_time(x->deadline, b) : "none");
      } else {
        sim_trace(s, "stop %s/%s try %d (timeout)", t->run.run_id, t->task_id, t->try_number);
        if (!x->stop_requested) s->st.timeouts++;
        sim_exec_stop(s, x, false);
      }
    }
    if (!s->failed) sim_check_after_pass(s);
    size_t n_starts = s->act.n_starts;
    dagd_engine_actions_close(&s->act);
    if (s->failed) return;
    if (crash) {
      sim_trace(s, "crash between the commit and the spawn of %zu tries", n_starts);
      sim_restart(s, true, 0);
      continue;
    }
    if (!(s->wake > 0 && s->wake <= s->now)) return;
    if (spins > 50) {
      char t[40];
      sim_fail(s, "liveness.spin", "the pass asked to run again at once %d times at %s", spins, sim_time(s->now, t));
      return;
    }
  }
}

/* --- one seed --- */

typedef struct seed_result {
  bool failed;
  long steps;
  double sim_seconds;
} seed_result;

static int make_dir(sim *s) {
  snprintf(s->dir, sizeof(s->dir), "%s/dagd-sim-XXXXXX", s->opts->tmpdir);
  if (mkdtemp(s->dir) == NULL) return -errno;
  snprintf(s->db_path, sizeof(s->db_path), "%s/state.db", s->dir);
  return 0;
}

static void report(sim *s) {
  char t[40];
  fprintf(stderr,
          "FAIL seed %llu: %s\n  at step %ld, virtual time %s (seed started %s)\n  %s\n"
          "  rerun: test_sim --seed %llu -v\n",
          (unsigned long long)s->seed, s->fail_check, s->fail_step, sim_time(s->fail_now, t),
          sim_time(s->t_start, (char[40]){0}), s->fail_msg, (unsigned long long)s->seed);
  sim_dump_state(s);
  size_t first = log_next > LOG_KEEP ? log_next - LOG_KEEP : 0;
  if (log_next > first) fprintf(stderr, "  last engine log lines:\n");
  for (size_t i = first; i < log_next; i++) fprintf(stderr, "    %s\n", log_ring[i % LOG_KEEP]);
}

static seed_result run_seed(const sim_opts *o, uint64_t seed, sim_stats *total) {
  sim *s = dagd_calloc(1, sizeof(*s));
  s->opts = o;
  s->seed = seed;
  sim_rng_seed(&s->rng, seed);
  log_next = 0;
  if (make_dir(s) < 0) {
    fprintf(stderr, "sim: cannot make a folder in %s: %s\n", o->tmpdir, strerror(errno));
    exit(2);
  }
  sim_gen_world(s);
  if (o->verbose) {
    fprintf(stderr, "seed %llu: %zu DAGs, start %s, until %s, at most %ld steps\n", (unsigned long long)seed,
            s->n_dags, sim_time(s->t_start, (char[40]){0}), sim_time(s->t_end, (char[40]){0}), s->max_steps);
    sim_dump_state(s);
  }
  open_daemon(s);
  if (sim_mirror_open(s) != 0) {
    fprintf(stderr, "sim: cannot read %s\n", s->db_path);
    exit(2);
  }
  dagd_engine_try *adopted = NULL;
  size_t n_adopted = 0;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_engine_adopt(s->engine, &adopted, &n_adopted, &err) != 0 || n_adopted != 0)
    sim_fail(s, "try.adopt-extra", "a new store adopts %zu tries (%s)", n_adopted, err.msg);
  dagd_engine_tries_free(adopted, n_adopted);
  sim_api_open(s);
  s->next_event_at = s->now + sim_exp(&s->rng, s->event_gap);
  while (!s->failed) {
    do_pass(s);
    s->step++;
    if (s->failed || s->step >= s->max_steps || s->now >= s->t_end) break;
    /* The clock jumps to the next thing that happens. */
    double next = s->next_event_at;
    double end = sim_exec_next_end(s);
    if (end < next) next = end;
    if (s->wake > 0 && s->wake < next) next = s->wake;
    if (next > s->t_end) next = s->t_end;
    if (next > s->now) s->now = next;
    /* Ends first, with a pass between two of them now and then. */
    for (size_t i; !s->failed && (i = earliest_due(s, s->now)) != SIZE_MAX;) {
      sim_deliver(s, i);
      if (!s->failed && earliest_due(s, s->now) != SIZE_MAX && sim_chance(&s->rng, 0.3)) do_pass(s);
    }
    if (s->failed) break;
    if (s->draining && s->n_tries == 0) {
      /* The drain ends with the last try: the daemon stops and starts again. */
      if (dagd_engine_in_flight(s->engine) != 0)
        sim_fail(s, "drain.end", "the last try ended but the engine counts %zu in flight",
                 dagd_engine_in_flight(s->engine));
      else sim_restart(s, false, floor(sim_exp(&s->rng, s->unit) * 1000) / 1000);
      continue;
    }
    if (s->now >= s->next_event_at) {
      sim_event(s);
      s->next_event_at = s->now + sim_exp(&s->rng, s->event_gap);
      /* Tries killed with no grace end before the next pass. */
      for (size_t i; s->opts->avoid_kill_overlap && !s->failed && (i = earliest_due(s, s->now)) != SIZE_MAX;)
        sim_deliver(s, i);
    }
  }
  if (!s->failed) sim_check_final(s);
  seed_result res = {.failed = s->failed, .steps = s->step, .sim_seconds = s->now - s->t_start};
  if (s->failed) report(s);
  total->seeds++;
  total->steps += (uint64_t)s->step;
  total->passes += s->st.passes;
  total->runs += s->st.runs;
  total->tis += s->st.tis;
  total->tries += s->st.tries;
  total->crashes += s->st.crashes;
  total->drains += s->st.drains;
  total->api_calls += s->st.api_calls;
  for (int k = 0; k < DAGD_RUN_TYPE__COUNT; k++) total->by_type[k] += s->st.by_type[k];
  total->timeouts += s->st.timeouts;
  total->kills += s->st.kills;
  total->lost += s->st.lost;
  total->adopted += s->st.adopted;
  total->pokes += s->st.pokes;
  total->retries += s->st.retries;
  total->sla_misses += s->st.sla_misses;
  total->branch_skips += s->st.branch_skips;
  total->sim_seconds += res.sim_seconds;
  if (o->verbose)
    fprintf(stderr, "seed %llu: %s after %ld steps, %.1f simulated days, %llu runs, %llu tries\n",
            (unsigned long long)seed, s->failed ? "FAILED" : "ok", s->step, res.sim_seconds / 86400,
            (unsigned long long)s->st.runs, (unsigned long long)s->st.tries);
  sim_api_close(s);
  dagd_engine_free(s->engine);
  dagd_store_close(s->store);
  sim_mirror_close(s);
  sim_exec_clear(s);
  sim_world_free(s);
  dagd_fs_remove_tree_within(s->opts->tmpdir, s->dir, NULL);
  free(s);
  return res;
}

/* --- the command line --- */

static double monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: test_sim [--seed N | --seeds A:B | --budget SECONDS [--start N]] [--days N] [--steps N]\n"
          "                [--tmp DIR] [--skip CHECK]... [--no-regressions] [-v]\n"
          "  --seed N        run one seed\n"
          "  --seeds A:B     run seeds A to B, both included\n"
          "  --budget S      run seeds from --start (default 1) until S seconds of real time pass\n"
          "  --days N        simulated span per seed (default: by the seed's tempo)\n"
          "  --steps N       steps per seed (default: 100-600, by the seed)\n"
          "  --skip CHECK    do not check CHECK (a name like liveness.due-run, or a prefix like liveness)\n"
          "  --avoid BUG     steer clear of a known bug, for triage: stale-outputs, kill-overlap\n"
          "  --tmp DIR       where the state files go (default /dev/shm, else $TMPDIR or /tmp)\n"
          "  -v, -vv         trace every step; -vv adds the engine's log\n");
}

static bool parse_u64(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *s == '\0' || *end != '\0') return false;
  *out = v;
  return true;
}

int main(int argc, char **argv) {
  sim_opts o = {0};
  uint64_t first = 1, last = 0, start = 1;
  double budget = 0;
  bool one = false, range = false, regressions = true;
  char **skip = dagd_calloc((size_t)argc + 1, sizeof(char *));
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t n;
    if (strcmp(a, "--seed") == 0 && v && parse_u64(v, &n)) {
      first = last = n;
      one = true;
      i++;
    } else if (strcmp(a, "--seeds") == 0 && v && strchr(v, ':')) {
      char buf[64];
      snprintf(buf, sizeof(buf), "%s", v);
      char *colon = strchr(buf, ':');
      *colon = '\0';
      if (!parse_u64(buf, &first) || !parse_u64(colon + 1, &last) || last < first) {
        usage(stderr);
        return 2;
      }
      range = true;
      i++;
    } else if (strcmp(a, "--budget") == 0 && v) {
      budget = atof(v);
      i++;
    } else if (strcmp(a, "--start") == 0 && v && parse_u64(v, &n)) {
      start = n;
      i++;
    } else if (strcmp(a, "--days") == 0 && v) {
      o.days = atof(v);
      i++;
    } else if (strcmp(a, "--steps") == 0 && v) {
      o.max_steps = atol(v);
      i++;
    } else if (strcmp(a, "--tmp") == 0 && v) {
      o.tmpdir = v;
      i++;
    } else if (strcmp(a, "--skip") == 0 && v) {
      skip[o.n_skip++] = argv[++i];
    } else if (strcmp(a, "--avoid") == 0 && v) {
      i++;
      if (strcmp(v, "stale-outputs") == 0) o.avoid_stale_outputs = true;
      else if (strcmp(v, "kill-overlap") == 0) o.avoid_kill_overlap = true;
      else {
        usage(stderr);
        return 2;
      }
    } else if (strcmp(a, "--no-regressions") == 0) {
      regressions = false;
    } else if (strcmp(a, "-v") == 0) {
      o.verbose = 1;
    } else if (strcmp(a, "-vv") == 0) {
      o.verbose = 2;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  o.skip = skip;
  if (o.tmpdir == NULL) {
    struct stat sb;
    const char *env = getenv("TMPDIR");
    o.tmpdir = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0 ? "/dev/shm"
               : env && *env                                                                          ? env
                                                                                                      : "/tmp";
  }
  log_verbose = o.verbose;
  dagd_log_set_sink(log_sink, NULL);
  dagd_log_threshold = o.verbose >= 2 ? DAGD_LOG_DEBUG : DAGD_LOG_WARN;
  if (!one && !range && budget <= 0) budget = 10;
  sim_stats total = {0};
  double t0 = monotonic();
  int failures = 0;
  if (regressions && !one) {
    for (size_t i = 0; i < N_REGRESSION; i++) {
      if (regression_seeds[i] == 0) continue;
      if (run_seed(&o, regression_seeds[i], &total).failed) failures++;
    }
  }
  if (one || range) {
    for (uint64_t seed = first; seed <= last; seed++) {
      if (run_seed(&o, seed, &total).failed) failures++;
      if (seed == UINT64_MAX) break;
    }
  } else {
    /* A few failing seeds tell more than one; more only repeat. */
    for (uint64_t seed = start; monotonic() - t0 < budget && failures < 5; seed++)
      if (run_seed(&o, seed, &total).failed) failures++;
  }
  double real = monotonic() - t0;
  if (real <= 0) real = 1e-9;
  printf("test_sim: %llu seeds, %llu steps, %llu passes, %llu runs, %llu task instances, %llu tries, %llu crashes, "
         "%llu drains, %llu API calls, %.1f simulated days in %.2f s\n",
         (unsigned long long)total.seeds, (unsigned long long)total.steps, (unsigned long long)total.passes,
         (unsigned long long)total.runs, (unsigned long long)total.tis, (unsigned long long)total.tries,
         (unsigned long long)total.crashes, (unsigned long long)total.drains, (unsigned long long)total.api_calls,
         total.sim_seconds / 86400, real);
  printf("test_sim: runs %llu scheduled, %llu manual, %llu backfill, %llu event; tries: %llu adopted after a "
         "crash, %llu lost, %llu timed out, %llu killed by a clear or mark; %llu retries, %llu sensor pokes, %llu "
         "branch skips, %llu SLA misses\n",
         (unsigned long long)total.by_type[DAGD_RUN_SCHEDULED], (unsigned long long)total.by_type[DAGD_RUN_MANUAL],
         (unsigned long long)total.by_type[DAGD_RUN_BACKFILL], (unsigned long long)total.by_type[DAGD_RUN_EVENT],
         (unsigned long long)total.adopted, (unsigned long long)total.lost, (unsigned long long)total.timeouts,
         (unsigned long long)total.kills, (unsigned long long)total.retries, (unsigned long long)total.pokes,
         (unsigned long long)total.branch_skips, (unsigned long long)total.sla_misses);
  printf("test_sim: per real second: %.1f seeds, %.0f runs, %.0f task instances, %.0f tries, %.1f simulated days\n",
         (double)total.seeds / real, (double)total.runs / real, (double)total.tis / real, (double)total.tries / real,
         total.sim_seconds / 86400 / real);
  printf("test_sim: %s\n", failures ? "FAILED" : "ok");
  free(skip);
  return failures ? 1 : 0;
}
