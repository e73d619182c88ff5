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

/* The task instances of an active run, kept between passes so that a pass
 * does not read every row of every active run again: a pass re-reads only
 * the rows that can change outside it (running tries end in tries.c);
 * everything else changes in the pass itself, which writes through both.
 * API changes and DAG reloads drop the cached runs they touch. */
struct run_cache {
  int64_t pk;
  const dagd_dag *dag;
  dagd_store_ti_list rows;
  dagd_store_ti **row_of;   /* per task index of dag, NULL when missing */
  struct run_cache *next;
};

#define CACHE_BUCKETS 256

static run_cache **bucket(daemon_t *d, int64_t pk) {
  if (d->run_cache == NULL) d->run_cache = dagd_calloc(CACHE_BUCKETS, sizeof(run_cache *));
  return &d->run_cache[(uint64_t)pk % CACHE_BUCKETS];
}

static void cache_entry_free(run_cache *c) {
  dagd_store_ti_list_clear(&c->rows);
  free(c->row_of);
  free(c);
}

static void cache_drop(daemon_t *d, int64_t pk) {
  for (run_cache **p = bucket(d, pk); *p; p = &(*p)->next) {
    if ((*p)->pk == pk) {
      run_cache *c = *p;
      *p = c->next;
      cache_entry_free(c);
      return;
    }
  }
}

void daemon_cache_clear(daemon_t *d, const char *dag_id) {
  if (d->run_cache == NULL) return;
  for (size_t b = 0; b < CACHE_BUCKETS; b++) {
    for (run_cache **p = &d->run_cache[b]; *p;) {
      run_cache *c = *p;
      if (dag_id == NULL || strcmp(c->dag->id, dag_id) == 0) {
        *p = c->next;
        cache_entry_free(c);
      } else {
        p = &c->next;
      }
    }
  }
  if (dag_id == NULL) {
    free(d->run_cache);
    d->run_cache = NULL;
  }
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
  dagd_store_ti **cand_ti;     /* the (cached) row of each candidate, by tag */
  const dagd_task **cand_task;
  size_t n_cand, cap_cand;
  int *dag_running;            /* per dag entry: tries running */
  int *dag_active_runs;        /* per dag entry: runs running */
  int *dag_queued_runs;        /* per dag entry: runs queued */
  char **pools;                /* pool names seen */
  int *pool_used;
  size_t n_pools;
  int64_t *finished_runs;      /* runs that ended: leave the cache after the pass */
  size_t n_finished;
  struct sla_miss {
    const dagd_dag *dag;
    const dagd_task *task;
    char *run_id;
    int try_number;
    dagd_ti_state state;
  } *sla_misses;               /* notified after the commit */
  size_t n_sla;
  int64_t *changed;            /* runs whose state or task instances changed */
  size_t n_changed;
  dagd_err err;
} pass_state;

/* The cached rows of a run, loaded from the store when missing or made
 * for another version of the DAG. NULL with ps->err set on failure. */
static run_cache *cache_get(pass_state *ps, const dagd_dag *dag, int64_t pk);

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
  ps->cand_ti[i] = ti; /* a cached row: updated in place when it starts */
  ps->cand_task[i] = task;
}

static run_cache *cache_get(pass_state *ps, const dagd_dag *dag, int64_t pk) {
  daemon_t *d = ps->d;
  for (run_cache *c = *bucket(d, pk); c; c = c->next)
    if (c->pk == pk && c->dag == dag) return c;
  cache_drop(d, pk); /* made for another version of the DAG */
  run_cache *c = dagd_calloc(1, sizeof(*c));
  c->pk = pk;
  c->dag = dag;
  c->row_of = dagd_calloc(dag->n_tasks ? dag->n_tasks : 1, sizeof(*c->row_of));
  if (dagd_store_ti_list_run(d->store, pk, &c->rows, &ps->err) < 0) goto error;
  bool inserted = false;
  for (size_t i = 0; i < c->rows.n; i++) {
    dagd_store_ti *row = &c->rows.tis[i];
    long t = dagd_dag_task_index(dag, row->task_id);
    if (t >= 0) {
      c->row_of[t] = row;
    } else if (!dagd_ti_state_finished(row->state) && row->state != DAGD_TI_RUNNING) {
      /* The task left the DAG: removed, unless it already finished. */
      row->state = DAGD_TI_REMOVED;
      if (dagd_store_ti_update(d->store, row, &ps->err) < 0) goto error;
    }
  }
  for (size_t t = 0; t < dag->n_tasks; t++) {
    if (c->row_of[t] != NULL) continue;
    /* A task added to the DAG since the run began joins it. */
    const dagd_task *task = dag->tasks[t];
    dagd_store_ti ti = {.run_pk = pk, .task_id = task->id, .state = DAGD_TI_NONE, .max_tries = task->retries + 1,
                        .pool = task->pool, .priority_weight = task->weight};
    if (dagd_store_ti_insert(d->store, &ti, &ps->err) < 0) goto error;
    inserted = true;
  }
  if (inserted) { /* read them back with the rest */
    dagd_store_ti_list_clear(&c->rows);
    free(c->row_of);
    free(c);
    return cache_get(ps, dag, pk);
  }
  run_cache **b = bucket(d, pk);
  c->next = *b;
  *b = c;
  return c;
error:
  cache_entry_free(c);
  return NULL;
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
  run_cache *c = cache_get(ps, dag, run->pk);
  if (c == NULL) return ps->err.code;
  /* Running tries end outside the pass: read those rows again. A branch
   * that ended also skipped rows downstream of it: read the whole run. */
  for (size_t t = 0; t < dag->n_tasks; t++) {
    dagd_store_ti *row = c->row_of[t];
    if (row->state != DAGD_TI_RUNNING && row->state != DAGD_TI_QUEUED) continue;
    dagd_store_ti fresh;
    if (dagd_store_ti_get(d->store, run->pk, row->task_id, &fresh, &ps->err) < 0) return ps->err.code;
    bool branch_done = dag->tasks[t]->op == DAGD_OP_BRANCH && fresh.state != row->state;
    dagd_store_ti_clear(row);
    *row = fresh;
    if (branch_done) {
      cache_drop(d, run->pk);
      if ((c = cache_get(ps, dag, run->pk)) == NULL) return ps->err.code;
      break;
    }
  }
  dagd_store_ti **row_of = c->row_of;
  dagd_sched_ti *tis = dagd_calloc(dag->n_tasks ? dag->n_tasks : 1, sizeof(*tis));
  int rc = 0;
  for (size_t t = 0; t < dag->n_tasks; t++) {
    dagd_store_ti *row = row_of[t];
    tis[t] = (dagd_sched_ti){.state = row->state, .try_number = row->try_number, .max_tries = row->max_tries,
                             .next_try_at = row->next_try_at};
    if (tis[t].state == DAGD_TI_RUNNING || tis[t].state == DAGD_TI_QUEUED) {
      ps->dag_running[di]++;
      size_t slot = pool_slot(ps, row->pool ? row->pool : "default"); /* may grow pool_used */
      ps->pool_used[slot]++;
    }
  }
  double wake = 0;
  dagd_run_state state = dagd_sched_evaluate(dag, tis, ps->now, &wake);
  if (wake > 0 && (ps->wake == 0 || wake < ps->wake)) ps->wake = wake;
  for (size_t t = 0; t < dag->n_tasks; t++) {
    if (!tis[t].changed) continue;
    dagd_store_ti *row = row_of[t];
    row->state = tis[t].state;
    if (row->state == DAGD_TI_SKIPPED || row->state == DAGD_TI_UPSTREAM_FAILED) row->end_date = ps->now;
    if ((rc = dagd_store_ti_update(d->store, row, &ps->err)) < 0) goto out;
  }
  /* SLAs: a task not done `sla` after its run started is reported once
   * (recorded as the output _sla_missed, so a restart does not repeat it);
   * the next deadline arms the wake timer. */
  for (size_t t = 0; t < dag->n_tasks && run->start_date > 0; t++) {
    const dagd_task *task = dag->tasks[t];
    if (task->sla <= 0 || tis[t].state == DAGD_TI_SUCCESS || tis[t].state == DAGD_TI_SKIPPED ||
        tis[t].state == DAGD_TI_REMOVED)
      continue;
    double deadline = run->start_date + (double)task->sla;
    if (deadline > ps->now) {
      if (ps->wake == 0 || deadline < ps->wake) ps->wake = deadline;
      continue;
    }
    char *seen = NULL;
    int got = dagd_store_output_get(d->store, run->pk, task->id, "_sla_missed", &seen, &ps->err);
    free(seen);
    if (got == 0) continue;
    if (got != DAGD_ENOENT) return ps->err.code;
    dagd_err_init(&ps->err);
    if (dagd_store_output_put(d->store, run->pk, task->id, "_sla_missed", "true", &ps->err) < 0) return ps->err.code;
    ps->sla_misses = dagd_realloc(ps->sla_misses, (ps->n_sla + 1) * sizeof(*ps->sla_misses));
    ps->sla_misses[ps->n_sla++] = (struct sla_miss){dag, task, dagd_strdup(run->run_id), tis[t].try_number,
                                                    tis[t].state};
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
    ps->finished_runs = dagd_realloc(ps->finished_runs, (ps->n_finished + 1) * sizeof(int64_t));
    ps->finished_runs[ps->n_finished++] = run->pk;
    DAGD_LOG(DAGD_LOG_INFO, "sched", "dag %s: run %s %s", dag->id, run->run_id, dagd_run_state_name(state));
    goto out;
  }
  for (size_t t = 0; t < dag->n_tasks; t++) {
    if (tis[t].state != DAGD_TI_SCHEDULED) continue;
    add_candidate(ps, e, dag->tasks[t], row_of[t], run);
  }
out:
  free(tis);
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
      dagd_store_ti *ti = ps.cand_ti[ps.cand[i].tag];
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
  for (size_t i = 0; i < ps.n_finished; i++) cache_drop(d, ps.finished_runs[i]);
  if (rc != 0) {
    dagd_store_rollback(d->store);
    daemon_cache_clear(d, NULL); /* the rows written in memory were not */
    n_starts = 0;
    DAGD_LOG(DAGD_LOG_ERROR, "sched", "scheduling pass failed, nothing changed: %s", ps.err.msg);
    if (daemon_store_failed(d, &ps.err)) goto cleanup;
  }
  d->queue_depth = ps.n_cand - n_starts;
  /* 4. Effects, after the commit: long polls see the new state, tries start. */
  for (size_t i = 0; rc == 0 && i < ps.n_changed; i++) daemon_api_run_changed(d, ps.changed[i]);
  for (size_t i = 0; i < ps.n_sla; i++) {
    struct sla_miss *m = &ps.sla_misses[i];
    if (rc == 0) {
      char *base = daemon_try_base(d, m->dag->id, m->run_id, m->task->id, m->try_number > 0 ? m->try_number : 1);
      DAGD_LOG(DAGD_LOG_WARN, "sched", "%s/%s/%s missed its SLA", m->dag->id, m->run_id, m->task->id);
      daemon_notify_sla(d, m->dag, m->task, m->run_id, base, m->try_number, m->state);
      free(base);
    }
    free(m->run_id);
  }
  free(ps.sla_misses);
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
  free(ps.finished_runs);
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
