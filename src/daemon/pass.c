/* The scheduling pass: one transaction that creates the runs that are
 * due, advances every active run's task instances through the scheduler
 * core, and marks the tries to start; after the commit the tries start
 * and the wake timer is armed for the next due thing. Its cost follows
 * the active runs and the due DAGs, never the history.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dagd/err.h"
#include "dagd/log.h"
#include "dagd/sched.h"
#include "dagd/time.h"
#include "dagd/util.h"
#include "daemon.h"

double daemon_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_kick(uv_timer_t *h) { daemon_pass(h->data); }

bool daemon_store_failed(daemon_t *d, const dagd_err *err) {
  /* Busy (another process holds a write lock): the next pass retries. */
  if (err->code == DAGD_ETIMEDOUT) return false;
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

static void on_wake(uv_timer_t *h) { daemon_pass(h->data); }

/* A try picked to start: known after the commit. */
typedef struct to_start {
  int64_t run_pk;
  const char *dag_id;   /* borrowed from the DAG model */
  const char *task_id;
  int try_number;
} to_start;

typedef struct pass_state {
  daemon_t *d;
  double now;
  double wake;                 /* earliest retry, 0 = none */
  dagd_sched_candidate *cand;  /* scheduled task instances */
  dagd_store_ti *cand_ti;      /* the row of each candidate, by tag */
  const dagd_task **cand_task;
  size_t n_cand, cap_cand;
  int *dag_running;            /* per dag entry: tries running */
  int *dag_active_runs;        /* per dag entry: runs running */
  int *dag_queued_runs;        /* per dag entry: runs queued */
  char **pools;                /* pool names seen */
  int *pool_used;
  size_t n_pools;
  int64_t *changed;            /* runs whose state or task instances changed */
  size_t n_changed;
  dagd_err err;
} pass_state;

static void changed_run(pass_state *ps, int64_t pk) {
  ps->changed = dagd_realloc(ps->changed, (ps->n_changed + 1) * sizeof(int64_t));
  ps->changed[ps->n_changed++] = pk;
}

static size_t pool_slot(pass_state *ps, const char *name) {
  for (size_t i = 0; i < ps->n_pools; i++)
    if (strcmp(ps->pools[i], name) == 0) return i;
  ps->pools = dagd_realloc(ps->pools, (ps->n_pools + 1) * sizeof(char *));
  ps->pool_used = dagd_realloc(ps->pool_used, (ps->n_pools + 1) * sizeof(int));
  ps->pools[ps->n_pools] = dagd_strdup(name);
  ps->pool_used[ps->n_pools] = 0;
  return ps->n_pools++;
}

/* Slots of a pool: from the config; "default" has `parallelism`; a pool
 * not configured is limited only by parallelism. */
static int pool_slots(const daemon_t *d, const char *name) {
  for (size_t i = 0; i < d->cfg.n_pools; i++)
    if (strcmp(d->cfg.pools[i].key, name) == 0) return atoi(d->cfg.pools[i].value);
  return d->cfg.parallelism;
}

/* Creates the scheduled runs a DAG is due for. */
static int plan_dag(pass_state *ps, dag_entry *e) {
  daemon_t *d = ps->d;
  size_t di = (size_t)(e - d->dags);
  int64_t last;
  bool has_last = dagd_store_run_last_scheduled(d->store, e->dag->id, &last, &ps->err) == 0;
  if (dagd_err_is_set(&ps->err)) return ps->err.code;
  /* Active runs were counted from the active set: no scan of history. */
  int active = ps->dag_active_runs[di] + ps->dag_queued_runs[di];
  dagd_interval iv[64];
  size_t n;
  dagd_sched_plan_runs(e->dag, has_last ? &last : NULL, active, (int64_t)ps->now, iv,
                       DAGD_ARRAY_LEN(iv), &n, &e->next_due, &e->has_next);
  e->need_plan = false;
  for (size_t i = 0; i < n; i++) {
    char run_id[64];
    dagd_sched_run_id(DAGD_RUN_SCHEDULED, iv[i].start, run_id);
    dagd_store_run run = {
        .dag_id = (char *)e->dag->id,
        .run_id = run_id,
        .run_type = DAGD_RUN_SCHEDULED,
        .logical_date = iv[i].start,
        .has_interval = true,
        .interval_start = iv[i].start,
        .interval_end = iv[i].end,
        .conf = "{}",
        .state = DAGD_RUN_QUEUED,
        .queued_at = ps->now,
    };
    int rc = dagd_store_run_create(d->store, e->dag, &run, &ps->err);
    if (rc == DAGD_EEXIST) { /* made by an earlier daemon that died before its commit was seen */
      dagd_err_init(&ps->err);
      continue;
    }
    if (rc < 0) return rc;
    ps->dag_queued_runs[di]++;
    DAGD_LOG(DAGD_LOG_INFO, "sched", "dag %s: created run %s", e->dag->id, run_id);
  }
  /* A plan bounded by max_active_runs is redone when a run ends. */
  if (e->has_next && e->next_due <= (int64_t)ps->now) e->has_next = false;
  return 0;
}

static void add_candidate(pass_state *ps, const dag_entry *e, const dagd_task *task, dagd_store_ti *ti,
                          const dagd_store_run *run) {
  if (ps->n_cand == ps->cap_cand) {
    ps->cap_cand = ps->cap_cand ? ps->cap_cand * 2 : 64;
    ps->cand = dagd_realloc(ps->cand, ps->cap_cand * sizeof(*ps->cand));
    ps->cand_ti = dagd_realloc(ps->cand_ti, ps->cap_cand * sizeof(*ps->cand_ti));
    ps->cand_task = dagd_realloc(ps->cand_task, ps->cap_cand * sizeof(*ps->cand_task));
  }
  size_t i = ps->n_cand++;
  ps->cand[i] = (dagd_sched_candidate){.priority = task->weight, .logical_date = run->logical_date,
                                       .dag_slot = (size_t)(e - ps->d->dags),
                                       .pool_slot = pool_slot(ps, task->pool ? task->pool : "default"),
                                       .tag = i};
  ps->cand_ti[i] = *ti; /* takes the row's strings */
  memset(ti, 0, sizeof(*ti));
  ps->cand_task[i] = task;
}

/* A successful run promoted the model its gates let through: what each
 * gate checked becomes that gate's "deployed" baseline. */
static int record_baselines(pass_state *ps, const dagd_dag *dag, const dagd_store_run *run) {
  char *text = NULL;
  json_t *outs = NULL;
  int rc = 0;
  for (size_t t = 0; rc == 0 && t < dag->n_tasks; t++) {
    const dagd_task *task = dag->tasks[t];
    const char *from = task->op == DAGD_OP_GATE ? json_string_value(json_object_get(task->config, "from")) : NULL;
    if (from == NULL) continue;
    if (outs == NULL) {
      if ((rc = dagd_store_output_json(ps->d->store, run->pk, &text, &ps->err)) < 0) break;
      outs = json_loads(text, 0, NULL);
    }
    json_t *vals = json_object_get(outs, from);
    if (!json_is_object(vals)) continue;
    char *v = json_dumps(vals, JSON_COMPACT);
    rc = dagd_store_baseline_put(ps->d->store, dag->id, task->id, run->run_id, v, ps->now, &ps->err);
    free(v);
  }
  json_decref(outs);
  free(text);
  return rc;
}

/* Advances one active run: starts a queued run when its DAG has room,
 * evaluates the task instances, records what changed and whether the run
 * ended, and collects the instances ready to start. */
static int advance_run(pass_state *ps, dagd_store_run *run) {
  daemon_t *d = ps->d;
  dag_entry *e = daemon_find_dag(d, run->dag_id);
  if (e == NULL) return 0; /* its DAG is gone or broken: leave the run as it is */
  size_t di = (size_t)(e - d->dags);
  const dagd_dag *dag = e->dag;
  if (run->state == DAGD_RUN_QUEUED) {
    if (ps->dag_active_runs[di] >= dag->max_active_runs) return 0;
    run->state = DAGD_RUN_RUNNING;
    run->start_date = ps->now;
    changed_run(ps, run->pk);
    ps->dag_active_runs[di]++;
    ps->dag_queued_runs[di]--;
    if (dagd_store_run_set_state(d->store, run->pk, run->state, run->start_date, 0, &ps->err) < 0)
      return ps->err.code;
  }
  dagd_store_ti_list rows;
  if (dagd_store_ti_list_run(d->store, run->pk, &rows, &ps->err) < 0) return ps->err.code;
  dagd_sched_ti *tis = dagd_calloc(dag->n_tasks ? dag->n_tasks : 1, sizeof(*tis));
  dagd_store_ti **row_of = dagd_calloc(dag->n_tasks ? dag->n_tasks : 1, sizeof(*row_of));
  int rc = 0;
  for (size_t i = 0; i < rows.n; i++) {
    long t = dagd_dag_task_index(dag, rows.tis[i].task_id);
    if (t < 0) {
      /* The task left the DAG: removed, unless it already finished. */
      if (!dagd_ti_state_finished(rows.tis[i].state) && rows.tis[i].state != DAGD_TI_RUNNING) {
        rows.tis[i].state = DAGD_TI_REMOVED;
        if ((rc = dagd_store_ti_update(d->store, &rows.tis[i], &ps->err)) < 0) goto out;
      }
      continue;
    }
    row_of[t] = &rows.tis[i];
    tis[t] = (dagd_sched_ti){.state = rows.tis[i].state, .try_number = rows.tis[i].try_number,
                             .max_tries = rows.tis[i].max_tries, .next_try_at = rows.tis[i].next_try_at};
    if (tis[t].state == DAGD_TI_RUNNING || tis[t].state == DAGD_TI_QUEUED) {
      ps->dag_running[di]++;
      size_t slot = pool_slot(ps, rows.tis[i].pool ? rows.tis[i].pool : "default"); /* may grow pool_used */
      ps->pool_used[slot]++;
    }
  }
  for (size_t t = 0; t < dag->n_tasks; t++) {
    if (row_of[t] != NULL) continue;
    /* A task added to the DAG since the run began joins it. */
    const dagd_task *task = dag->tasks[t];
    dagd_store_ti ti = {.run_pk = run->pk, .task_id = task->id, .state = DAGD_TI_NONE,
                        .max_tries = task->retries + 1, .pool = task->pool, .priority_weight = task->weight};
    if ((rc = dagd_store_ti_insert(d->store, &ti, &ps->err)) < 0) goto out;
    tis[t] = (dagd_sched_ti){.state = DAGD_TI_NONE, .max_tries = ti.max_tries};
  }
  double wake = 0;
  dagd_run_state state = dagd_sched_evaluate(dag, tis, ps->now, &wake);
  if (wake > 0 && (ps->wake == 0 || wake < ps->wake)) ps->wake = wake;
  for (size_t t = 0; t < dag->n_tasks; t++) {
    if (!tis[t].changed) continue;
    dagd_store_ti *row = row_of[t];
    dagd_store_ti fresh = {.run_pk = run->pk, .task_id = (char *)dag->tasks[t]->id,
                           .max_tries = tis[t].max_tries, .pool = dag->tasks[t]->pool,
                           .priority_weight = dag->tasks[t]->weight};
    if (row == NULL) row = &fresh;
    row->state = tis[t].state;
    if (row->state == DAGD_TI_SKIPPED || row->state == DAGD_TI_UPSTREAM_FAILED) row->end_date = ps->now;
    if ((rc = dagd_store_ti_update(d->store, row, &ps->err)) < 0) goto out;
  }
  bool any_changed = false;
  for (size_t t = 0; t < dag->n_tasks && !any_changed; t++) any_changed = tis[t].changed;
  if (any_changed || state != DAGD_RUN_RUNNING) changed_run(ps, run->pk);
  if (state != DAGD_RUN_RUNNING) {
    daemon_metrics_run(ps->d, dag->id, state == DAGD_RUN_SUCCESS);
    run->state = state;
    run->end_date = ps->now;
    if ((rc = dagd_store_run_set_state(d->store, run->pk, state, run->start_date, ps->now, &ps->err)) < 0)
      goto out;
    if (state == DAGD_RUN_SUCCESS && (rc = record_baselines(ps, dag, run)) < 0) goto out;
    e->need_plan = true; /* a run slot is free */
    ps->dag_active_runs[di]--;
    DAGD_LOG(DAGD_LOG_INFO, "sched", "dag %s: run %s %s", dag->id, run->run_id, dagd_run_state_name(state));
    goto out;
  }
  for (size_t t = 0; t < dag->n_tasks; t++) {
    if (tis[t].state != DAGD_TI_SCHEDULED) continue;
    dagd_store_ti fresh = {0};
    dagd_store_ti *row = row_of[t];
    if (row == NULL) {
      fresh = (dagd_store_ti){.run_pk = run->pk, .task_id = dagd_strdup(dag->tasks[t]->id),
                              .state = DAGD_TI_SCHEDULED, .max_tries = tis[t].max_tries,
                              .pool = dagd_strdup(dag->tasks[t]->pool ? dag->tasks[t]->pool : "default"),
                              .priority_weight = dag->tasks[t]->weight};
      row = &fresh;
    }
    row->state = DAGD_TI_SCHEDULED;
    add_candidate(ps, e, dag->tasks[t], row, run);
  }
out:
  free(tis);
  free(row_of);
  dagd_store_ti_list_clear(&rows);
  return rc;
}

void daemon_pass(daemon_t *d) {
  if (d->stopped) return;
  pass_state ps = {.d = d, .now = daemon_now()};
  dagd_err_init(&ps.err);
  ps.dag_running = dagd_calloc(d->n_dags + 1, sizeof(int));
  ps.dag_active_runs = dagd_calloc(d->n_dags + 1, sizeof(int));
  ps.dag_queued_runs = dagd_calloc(d->n_dags + 1, sizeof(int));
  to_start *starts = NULL;
  size_t n_starts = 0;
  dagd_store_run_list active = {0};
  int rc = dagd_store_begin(d->store, &ps.err);

  /* Runs already active, per DAG, bound max_active_runs below. */
  if (rc == 0) rc = dagd_store_run_list_active(d->store, &active, &ps.err);
  for (size_t i = 0; rc == 0 && i < active.n; i++) {
    dag_entry *e = daemon_find_dag(d, active.runs[i].dag_id);
    if (e && active.runs[i].state == DAGD_RUN_RUNNING) ps.dag_active_runs[e - d->dags]++;
    if (e && active.runs[i].state == DAGD_RUN_QUEUED) ps.dag_queued_runs[e - d->dags]++;
  }
  /* 1. New scheduled runs. */
  bool planned = false;
  for (size_t i = 0; rc == 0 && i < d->n_dags && !d->draining; i++) {
    dag_entry *e = &d->dags[i];
    if (e->paused || e->dag->schedule == NULL) continue;
    if (!e->need_plan && !(e->has_next && e->next_due <= (int64_t)ps.now)) continue;
    rc = plan_dag(&ps, e);
    planned = true;
  }
  if (rc == 0 && planned) {
    dagd_store_run_list_clear(&active);
    rc = dagd_store_run_list_active(d->store, &active, &ps.err);
  }
  /* 2. Every active run. */
  for (size_t i = 0; rc == 0 && i < active.n; i++) rc = advance_run(&ps, &active.runs[i]);

  /* 3. What starts now. */
  if (rc == 0 && ps.n_cand > 0 && !d->draining) {
    int *dag_free = dagd_calloc(d->n_dags + 1, sizeof(int));
    int *pool_free = dagd_calloc(ps.n_pools + 1, sizeof(int));
    for (size_t i = 0; i < d->n_dags; i++) dag_free[i] = d->dags[i].dag->max_active_tasks - ps.dag_running[i];
    for (size_t i = 0; i < ps.n_pools; i++) pool_free[i] = pool_slots(d, ps.pools[i]) - ps.pool_used[i];
    dagd_sched_limits lim = {.free_slots = d->cfg.parallelism - (int)d->n_running, .dag_free = dag_free,
                             .pool_free = pool_free};
    dagd_sched_pick(ps.cand, ps.n_cand, &lim);
    starts = dagd_calloc(ps.n_cand, sizeof(*starts));
    for (size_t i = 0; rc == 0 && i < ps.n_cand; i++) {
      if (!ps.cand[i].picked) continue;
      dagd_store_ti *ti = &ps.cand_ti[ps.cand[i].tag];
      /* Intent before effect: the try is recorded as running before its
       * process exists, so a crash in between is seen at restart as a
       * lost try, never as a try that may run twice. */
      ti->state = DAGD_TI_RUNNING;
      ti->try_number++;
      ti->start_date = ps.now;
      ti->end_date = 0;
      ti->has_exit_code = false;
      ti->next_try_at = 0;
      ti->pid = 0;
      rc = dagd_store_ti_update(d->store, ti, &ps.err);
      dag_entry *e = &d->dags[ps.cand[i].dag_slot];
      starts[n_starts++] = (to_start){ti->run_pk, e->dag->id, ps.cand_task[ps.cand[i].tag]->id, ti->try_number};
    }
    free(dag_free);
    free(pool_free);
  }
  if (rc == 0) rc = dagd_store_commit(d->store, &ps.err);
  if (rc != 0) {
    dagd_store_rollback(d->store);
    n_starts = 0;
    DAGD_LOG(DAGD_LOG_ERROR, "sched", "scheduling pass failed, nothing changed: %s", ps.err.msg);
    if (daemon_store_failed(d, &ps.err)) goto cleanup;
  }
  d->queue_depth = ps.n_cand - n_starts;
  /* 4. Effects, after the commit: long polls see the new state, tries start. */
  for (size_t i = 0; rc == 0 && i < ps.n_changed; i++) daemon_api_run_changed(d, ps.changed[i]);
  for (size_t i = 0; i < n_starts; i++)
    daemon_try_start(d, starts[i].run_pk, starts[i].dag_id, starts[i].task_id, starts[i].try_number);

  /* 5. The next due thing. */
  double next = ps.wake;
  for (size_t i = 0; i < d->n_dags; i++) {
    const dag_entry *e = &d->dags[i];
    if (e->paused || !e->has_next) continue;
    if (next == 0 || (double)e->next_due < next) next = (double)e->next_due;
  }
  if (rc != 0) next = ps.now + 5; /* a failing store: try again soon, not in a spin */
  uv_timer_stop(&d->wake);
  if (next > 0 && !d->stopped) {
    double delay = next - daemon_now();
    uint64_t ms = delay <= 0 ? 0 : (uint64_t)(delay * 1000) + 1;
    uv_timer_start(&d->wake, on_wake, ms, 0);
  }
cleanup:
  d->passes++;
  d->pass_seconds += daemon_now() - ps.now;
  free(ps.changed);
  for (size_t i = 0; i < ps.n_cand; i++) dagd_store_ti_clear(&ps.cand_ti[i]);
  for (size_t i = 0; i < ps.n_pools; i++) free(ps.pools[i]);
  free(ps.pools);
  free(ps.pool_used);
  free(ps.cand);
  free(ps.cand_ti);
  free(ps.cand_task);
  free(ps.dag_running);
  free(ps.dag_active_runs);
  free(ps.dag_queued_runs);
  free(starts);
  dagd_store_run_list_clear(&active);
  if (d->draining && d->n_running == 0) daemon_stop_now(d);
}
