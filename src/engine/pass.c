/* The scheduling pass: one transaction that advances every active run
 * through the scheduler core, creates the runs that are due, promotes the
 * queued runs that have room, and records the tries to start; it repeats
 * the planning and promotion while a run ending in the pass frees a slot,
 * so that no slot freed here waits for another event. Its cost follows
 * the active runs and the DAGs that are due, never the history.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "dagd/log.h"
#include "dagd/util.h"
#include "engine/internal.h"

/* Rounds of planning and promotion in one pass. Each round creates,
 * ends or promotes a run; a pass that reaches the bound (a DAG whose
 * runs end at once, with years of catchup) asks for another pass now. */
#define MAX_ROUNDS 64
/* Runs one plan of one DAG may create. */
#define PLAN_CAP 64

typedef struct candidate_ref {
  size_t run;                 /* index into pass.runs */
  dagd_store_ti *ti;          /* the cached row: updated in place when it starts */
  const dagd_task *task;
} candidate_ref;

typedef struct pass {
  dagd_engine *e;
  double now;
  dagd_engine_actions *out;
  dagd_err *err;
  dagd_store_run *runs;       /* the active runs, then the runs created */
  bool *held;                 /* queued and held by max_active_runs */
  size_t n_runs, cap_runs;
  int *running_runs;          /* per engine DAG */
  int *queued_runs;
  int *running_tis;
  char **pools;
  int *pool_used;
  size_t n_pools;
  dagd_sched_candidate *cand;
  candidate_ref *cref;
  size_t n_cand, cap_cand;
  int64_t *finished;          /* runs that ended: leave the cache after the commit */
  size_t n_finished;
  bool run_ended;             /* in this round */
  double wake;
} pass;

static void wake_at(pass *p, double t) {
  if (t > 0 && (p->wake == 0 || t < p->wake)) p->wake = t;
}

static void changed_run(pass *p, int64_t pk) {
  dagd_engine_actions *a = p->out;
  a->changed_runs = dagd_realloc(a->changed_runs, (a->n_changed_runs + 1) * sizeof(int64_t));
  a->changed_runs[a->n_changed_runs++] = pk;
}

static size_t pool_slot(pass *p, const char *name) {
  for (size_t i = 0; i < p->n_pools; i++)
    if (strcmp(p->pools[i], name) == 0) return i;
  p->pools = dagd_realloc(p->pools, (p->n_pools + 1) * sizeof(char *));
  p->pool_used = dagd_realloc(p->pool_used, (p->n_pools + 1) * sizeof(int));
  p->pools[p->n_pools] = dagd_strdup(name);
  p->pool_used[p->n_pools] = 0;
  return p->n_pools++;
}

/* Slots of a pool: from the options; "default", and a pool not
 * configured, are limited only by parallelism. */
static int pool_slots(const dagd_engine *e, const char *name) {
  for (size_t i = 0; i < e->n_pools; i++)
    if (strcmp(e->pools[i].key, name) == 0) return atoi(e->pools[i].value);
  return e->parallelism;
}

static size_t add_run(pass *p, const dagd_store_run *run, bool copy) {
  if (p->n_runs == p->cap_runs) {
    p->cap_runs = p->cap_runs ? p->cap_runs * 2 : 16;
    p->runs = dagd_realloc(p->runs, p->cap_runs * sizeof(*p->runs));
    p->held = dagd_realloc(p->held, p->cap_runs * sizeof(*p->held));
  }
  if (copy) dagd__run_copy(&p->runs[p->n_runs], run);
  else p->runs[p->n_runs] = *run;
  p->held[p->n_runs] = run->state == DAGD_RUN_QUEUED;
  return p->n_runs++;
}

static void add_candidate(pass *p, size_t di, size_t run, const dagd_task *task, dagd_store_ti *ti) {
  if (p->n_cand == p->cap_cand) {
    p->cap_cand = p->cap_cand ? p->cap_cand * 2 : 64;
    p->cand = dagd_realloc(p->cand, p->cap_cand * sizeof(*p->cand));
    p->cref = dagd_realloc(p->cref, p->cap_cand * sizeof(*p->cref));
  }
  size_t i = p->n_cand++;
  p->cand[i] = (dagd_sched_candidate){.priority = task->weight, .logical_date = p->runs[run].logical_date,
                                      .dag_slot = di, .pool_slot = pool_slot(p, task->pool ? task->pool : "default"),
                                      .tag = i};
  p->cref[i] = (candidate_ref){run, ti, task};
}

/* The first scheduled instances of one pool in one run, best first
 * (weight, then task order): the order the pick takes them in. */
typedef struct pool_best {
  size_t pool, n;
  size_t *t; /* task indexes */
} pool_best;

/* Whether task a comes before task b in the pick's order within a run. */
static bool ahead(const dagd_dag *dag, size_t a, size_t b) {
  int64_t wa = dag->tasks[a]->weight, wb = dag->tasks[b]->weight;
  return wa != wb ? wa > wb : a < b;
}

static int by_index(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

/* The scheduled instances of run ri that may start in this pass. The pick
 * takes candidates in order (weight, then run, then task order), and
 * those of one run and one pool share every limit, the global one too:
 * past the first `free` of them (free: the slots not in flight) none can
 * be taken. Only those become candidates, so a wide layer with a slot or
 * two free costs a scan at each pass, not a heap of thousands. An earlier
 * try still winding down (cleared meanwhile) holds its task instance back
 * until it ends: never two tries at once. */
static void add_candidates(pass *p, size_t di, size_t ri, const dagd_dag *dag, run_cache *c,
                           const dagd_sched_ti *tis) {
  dagd_engine *e = p->e;
  int free_slots = e->parallelism - (int)e->in_flight;
  if (free_slots <= 0) return;
  size_t limit = (size_t)free_slots, n_g = 0, last_g = 0, kept = 0;
  pool_best *g = NULL;
  const char *last_name = NULL;
  for (size_t k0 = c->view.settled; k0 < c->view.hi; k0++) {
    size_t t = dag->topo[k0];
    if (tis[t].state != DAGD_TI_SCHEDULED) continue;
    const dagd_task *task = dag->tasks[t];
    const char *name = task->pool ? task->pool : "default";
    size_t k = last_g;
    if (name != last_name) {
      size_t ps = pool_slot(p, name);
      for (k = 0; k < n_g && g[k].pool != ps; k++) {
      }
      if (k == n_g) {
        g = dagd_realloc(g, (n_g + 1) * sizeof(*g));
        g[n_g++] = (pool_best){.pool = ps, .t = dagd_malloc(limit * sizeof(size_t))};
      }
      last_name = name;
      last_g = k;
    }
    pool_best *b = &g[k];
    if (b->n == limit && !ahead(dag, t, b->t[b->n - 1])) continue; /* never reached */
    if (dagd__flight_busy(e, p->runs[ri].pk, task->id)) continue;
    size_t at = b->n < limit ? b->n++ : limit - 1;
    for (; at > 0 && ahead(dag, t, b->t[at - 1]); at--) b->t[at] = b->t[at - 1];
    b->t[at] = t;
  }
  for (size_t k = 0; k < n_g; k++) kept += g[k].n;
  size_t *order = dagd_malloc((kept ? kept : 1) * sizeof(size_t));
  kept = 0;
  for (size_t k = 0; k < n_g; k++) {
    for (size_t i = 0; i < g[k].n; i++) order[kept++] = g[k].t[i];
    free(g[k].t);
  }
  free(g);
  /* In task order, as the pick breaks ties. */
  qsort(order, kept, sizeof(size_t), by_index);
  for (size_t i = 0; i < kept; i++) add_candidate(p, di, ri, dag->tasks[order[i]], c->row_of[order[i]]);
  free(order);
}

static int create_scheduled(pass *p, engine_dag *x, const dagd_interval *iv) {
  char run_id[64];
  dagd_sched_run_id(DAGD_RUN_SCHEDULED, iv->start, run_id);
  dagd_store_run run = {
      .dag_id = x->dag->id, .run_id = run_id, .run_type = DAGD_RUN_SCHEDULED, .logical_date = iv->start,
      .has_interval = true, .interval_start = iv->start, .interval_end = iv->end, .conf = "{}",
      .state = DAGD_RUN_QUEUED, .queued_at = p->now};
  int rc = dagd_store_run_create(p->e->store, x->dag, &run, p->err);
  if (rc == DAGD_EEXIST) { /* made by an earlier daemon whose commit this one did not see */
    dagd_err_init(p->err);
    return 0;
  }
  if (rc < 0) return rc;
  add_run(p, &run, true);
  p->queued_runs[x - p->e->dags]++;
  DAGD_LOG(DAGD_LOG_INFO, "sched", "dag %s: created run %s", x->dag->id, run_id);
  return 0;
}

/* Creates the scheduled runs a DAG is due for, within max_active_runs,
 * and learns when its next one is due. An interval a backfill already
 * covers gets no scheduled run (one run per logical date), but counts as
 * planned, so the plan goes on after it. */
static int plan_dag(pass *p, engine_dag *x) {
  dagd_engine *e = p->e;
  size_t di = (size_t)(x - e->dags);
  int64_t from;
  int got = dagd_store_run_get_last_scheduled(e->store, x->dag->id, &from, p->err);
  if (got < 0 && got != DAGD_ENOENT) return got;
  bool has_from = got == 0;
  if (x->has_planned && (!has_from || x->planned_to > from)) {
    from = x->planned_to;
    has_from = true;
  }
  x->plan = false;
  /* The due intervals come PLAN_CAP at a time regardless of room; room
   * is spent only on those no backfill covers. */
  int room = x->dag->max_active_runs - p->running_runs[di] - p->queued_runs[di];
  for (int batch = 0; batch < 64; batch++) {
    dagd_interval iv[PLAN_CAP];
    size_t n;
    dagd_sched_plan_runs(x->dag, has_from ? &from : NULL, x->dag->max_active_runs - PLAN_CAP, (int64_t)p->now, iv,
                         PLAN_CAP, &n, &x->next_due, &x->has_next);
    for (size_t i = 0; i < n; i++) {
      bool taken;
      if (dagd_store_run_is_date_taken(e->store, x->dag->id, iv[i].start, &taken, p->err) < 0) return p->err->code;
      if (!taken && room <= 0) { /* the first interval not created */
        x->has_next = true;
        x->next_due = iv[i].run_after;
        goto planned;
      }
      if (!taken) {
        int rc = create_scheduled(p, x, &iv[i]);
        if (rc < 0) return rc;
        room--;
      }
      from = iv[i].start;
      has_from = true;
      x->has_planned = true;
      x->planned_to = from;
    }
    if (n < PLAN_CAP) break;
  }
planned:;
  /* What the API and /metrics publish: the first interval not created,
   * fixed until the next plan (so a run held past its time shows how
   * late it is). */
  dagd_interval nx;
  x->has_nra = dagd_sched_next_run_after(x->dag, has_from ? &from : NULL, x->paused, (int64_t)p->now, &nx);
  x->nra = x->has_nra ? nx.run_after : 0;
  /* Due but not created: held by max_active_runs until a run ends. */
  x->blocked = x->has_next && x->next_due <= (int64_t)p->now &&
               p->running_runs[di] + p->queued_runs[di] >= x->dag->max_active_runs;
  return 0;
}

/* A running try past its execution_timeout is asked to stop, once; one
 * not yet there wakes the pass when it gets there. */
static void check_timeout(pass *p, const dagd_engine_try *proto, const dagd_store_ti *row) {
  const dagd_task *task = proto->task;
  if (task->execution_timeout <= 0 || row->start_date <= 0) return;
  double deadline = row->start_date + (double)task->execution_timeout;
  if (deadline > p->now) {
    wake_at(p, deadline);
    return;
  }
  dagd_engine *e = p->e;
  if (dagd__stopping(e, row->run_pk, row->task_id, row->try_number, false)) return;
  dagd_engine_actions *a = p->out;
  a->stops = dagd_realloc(a->stops, (a->n_stops + 1) * sizeof(*a->stops));
  dagd_engine_try *s = &a->stops[a->n_stops++];
  *s = *proto;
  dagd__run_copy(&s->run, &proto->run);
  s->task_id = dagd_strdup(row->task_id);
  s->try_number = row->try_number;
  s->start_date = row->start_date;
  s->deadline = deadline;
}

/* SLAs: a task not done `sla` after its run started is reported once
 * (recorded as the output _sla_missed, so a restart does not repeat it). */
static int check_sla(pass *p, const dagd_dag *dag, const dagd_store_run *run, const dagd_sched_ti *tis) {
  dagd_engine *e = p->e;
  for (size_t t = 0; t < dag->n_tasks && run->start_date > 0; t++) {
    const dagd_task *task = dag->tasks[t];
    if (task->sla <= 0 || tis[t].state == DAGD_TI_SUCCESS || tis[t].state == DAGD_TI_SKIPPED ||
        tis[t].state == DAGD_TI_REMOVED)
      continue;
    double deadline = run->start_date + (double)task->sla;
    if (deadline > p->now) {
      wake_at(p, deadline);
      continue;
    }
    char *seen = NULL;
    int got = dagd_store_output_get(e->store, run->pk, task->id, "_sla_missed", &seen, p->err);
    free(seen);
    if (got == 0) continue;
    if (got != DAGD_ENOENT) return got;
    if (dagd_store_output_put(e->store, run->pk, task->id, "_sla_missed", "true", p->err) < 0) return p->err->code;
    dagd_engine_actions *a = p->out;
    a->sla_misses = dagd_realloc(a->sla_misses, (a->n_sla_misses + 1) * sizeof(*a->sla_misses));
    dagd_engine_sla *m = &a->sla_misses[a->n_sla_misses++];
    *m = (dagd_engine_sla){.dag = dag, .task = task, .run_id = dagd_strdup(run->run_id),
                           .try_number = tis[t].try_number, .state = tis[t].state,
                           .notify = task->on_failure ? task->on_failure : dag->on_failure};
    dagd__run_copy(&m->run, run);
    if (m->notify && dagd_store_output_get_json(e->store, run->pk, &m->outputs, p->err) < 0) return p->err->code;
  }
  return 0;
}

/* The end of a run calls the DAG's own callback once, with the run's
 * context: the failed tasks (in the DAG's order) and the outputs. */
static int run_end_action(pass *p, engine_dag *x, const dagd_store_run *run, const dagd_sched_ti *tis) {
  const dagd_dag *dag = x->dag;
  dagd_engine_actions *a = p->out;
  a->run_ends = dagd_realloc(a->run_ends, (a->n_run_ends + 1) * sizeof(*a->run_ends));
  dagd_engine_run_end *r = &a->run_ends[a->n_run_ends++];
  *r = (dagd_engine_run_end){.dag = dag, .run_id = dagd_strdup(run->run_id), .state = run->state,
                             .notify = run->state == DAGD_RUN_SUCCESS ? dag->on_success : dag->on_failure};
  dagd__run_copy(&r->run, run);
  r->failed_tasks = dagd_calloc(dag->n_tasks + 1, sizeof(char *));
  for (size_t t = 0; t < dag->n_tasks; t++)
    if (tis[t].state == DAGD_TI_FAILED) r->failed_tasks[r->n_failed_tasks++] = dagd_strdup(dag->tasks[t]->id);
  if (r->notify && dagd_store_output_get_json(p->e->store, run->pk, &r->outputs, p->err) < 0) return p->err->code;
  return 0;
}

static int end_run(pass *p, engine_dag *x, dagd_store_run *run, dagd_run_state state, const dagd_sched_ti *tis) {
  dagd_engine *e = p->e;
  size_t di = (size_t)(x - e->dags);
  run->state = state;
  run->end_date = p->now;
  if (dagd_store_run_set_state(e->store, run->pk, state, run->start_date, p->now, p->err) < 0) return p->err->code;
  if (state == DAGD_RUN_SUCCESS && dagd__gate_record_baselines(e, x->dag, run, p->now, p->err) < 0) return p->err->code;
  x->plan = true; /* a run slot is free */
  p->running_runs[di]--;
  p->run_ended = true;
  p->finished = dagd_realloc(p->finished, (p->n_finished + 1) * sizeof(int64_t));
  p->finished[p->n_finished++] = run->pk;
  if (run_end_action(p, x, run, tis) < 0) return p->err->code;
  DAGD_LOG(DAGD_LOG_INFO, "sched", "dag %s: run %s %s", x->dag->id, run->run_id, dagd_run_state_name(state));
  return 0;
}

/* Advances one active run: a queued run starts when its DAG has room;
 * a running one has its task instances evaluated, what changed recorded,
 * its end recorded, and the instances ready to start collected. */
static int advance_run(pass *p, size_t ri) {
  dagd_engine *e = p->e;
  dagd_store_run *run = &p->runs[ri];
  engine_dag *x = dagd__engine_dag(e, run->dag_id);
  p->held[ri] = false;
  if (x == NULL) return 0; /* its DAG is gone or broken: leave the run as it is */
  size_t di = (size_t)(x - e->dags);
  const dagd_dag *dag = x->dag;
  if (run->state == DAGD_RUN_QUEUED) {
    if (p->running_runs[di] >= dag->max_active_runs) {
      p->held[ri] = true;
      return 0;
    }
    run->state = DAGD_RUN_RUNNING;
    run->start_date = p->now;
    changed_run(p, run->pk);
    p->running_runs[di]++;
    p->queued_runs[di]--;
    if (dagd_store_run_set_state(e->store, run->pk, run->state, run->start_date, 0, p->err) < 0) return p->err->code;
  }
  run_cache *c = dagd__cache_get(e, dag, run->pk, p->err);
  if (c == NULL) return p->err->code;
  /* Running tries end outside the pass: read those rows again, in the
   * same sweep of the rows that takes their states for the evaluation.
   * Every sweep looks only between the settled head of the run (finished
   * and seen, in topological order) and its waiting tail (nothing due):
   * those tasks cannot change while the run is cached, and their states
   * stay in tis from the passes before. */
  dagd_sched_ti *tis = c->tis;
  const size_t *topo = dag->topo, from = c->view.settled;
  int rc = 0;
  for (size_t k = from; k < c->view.hi; k++) {
    size_t t = topo[k];
    dagd_store_ti *row = c->row_of[t];
    if (row->state == DAGD_TI_RUNNING || row->state == DAGD_TI_QUEUED) {
      dagd_store_ti fresh;
      int got = dagd_store_ti_get(e->store, run->pk, row->task_id, &fresh, p->err);
      if (got == DAGD_ENOENT)
        rc = dagd_err_set(p->err, DAGD_ENOENT, "run #%lld lost its task instance \"%s\"", (long long)run->pk,
                          row->task_id);
      if (got < 0) return got == DAGD_ENOENT ? rc : got;
      dagd_store_ti_clear(row);
      *row = fresh;
    }
    dagd__cache_ti(row, &tis[t]);
  }
  for (size_t k = from; k < c->view.hi; k++) {
    size_t t = topo[k];
    if (tis[t].state == DAGD_TI_RUNNING) {
      dagd_engine_try proto = {.dag = dag, .task = dag->tasks[t], .run = *run};
      check_timeout(p, &proto, c->row_of[t]);
    }
  }
  double wake = 0;
  /* Only what changed since the last pass is looked at again (tries that
   * started or ended meanwhile, and what they make due downstream). */
  dagd_sched_view_sync(dag, tis, &c->view);
  dagd_run_state state = dagd_sched_evaluate_view(dag, tis, &c->view, p->now, &wake);
  if (!e->draining) wake_at(p, wake);
  bool any_changed = false;
  for (size_t k = from; k < c->view.hi; k++) {
    size_t t = topo[k];
    if (!tis[t].changed) continue;
    any_changed = true;
    dagd_store_ti *row = c->row_of[t];
    row->state = tis[t].state;
    if (row->state == DAGD_TI_SKIPPED || row->state == DAGD_TI_UPSTREAM_FAILED) row->end_date = p->now;
    if ((rc = dagd_store_ti_update(e->store, row, p->err)) < 0) goto out;
  }
  dagd_sched_view_settle(dag, tis, &c->view);
  if (!e->draining && x->any_sla && (rc = check_sla(p, dag, run, tis)) < 0) goto out;
  if (any_changed || state != DAGD_RUN_RUNNING) changed_run(p, run->pk);
  if (state != DAGD_RUN_RUNNING) {
    rc = end_run(p, x, run, state, tis);
    goto out;
  }
  add_candidates(p, di, ri, dag, c, tis);
out:
  return rc;
}

static bool needs_plan(const pass *p, const engine_dag *x) {
  if (x->paused || x->dag->schedule == NULL || p->e->draining) return false;
  return x->plan || (x->has_next && !x->blocked && x->next_due <= (int64_t)p->now);
}

/* Planning and promotion until nothing more can move in this pass. */
static int settle(pass *p) {
  dagd_engine *e = p->e;
  for (int round = 0; round < MAX_ROUNDS; round++) {
    size_t before = p->n_runs;
    p->run_ended = false;
    for (size_t i = 0; i < e->n_dags; i++) {
      if (!needs_plan(p, &e->dags[i])) continue;
      int rc = plan_dag(p, &e->dags[i]);
      if (rc < 0) return rc;
    }
    bool moved = p->n_runs > before;
    for (size_t i = 0; i < p->n_runs; i++) {
      if (!p->held[i]) continue;
      int rc = advance_run(p, i);
      if (rc < 0) return rc;
      moved |= !p->held[i];
    }
    if (!moved && !p->run_ended) return 0;
  }
  wake_at(p, p->now); /* more to do than one pass takes on: go on at once */
  return 0;
}

/* What each DAG's next_run_after is now: nothing while paused or
 * unscheduled, else what its last plan found. */
static bool next_run_after(const engine_dag *x, int64_t *at) {
  if (x->paused || x->dag->schedule == NULL || !x->has_nra) return false;
  *at = x->nra;
  return true;
}

/* Writes the next_run_after of the DAGs where it changed since the store
 * last got it (in the pass's transaction; marked recorded after the
 * commit). Not while draining: nothing is planned then, and the values
 * stay what the next start will find again. */
static int record_next_runs(pass *p) {
  dagd_engine *e = p->e;
  if (e->draining) return 0;
  for (size_t i = 0; i < e->n_dags; i++) {
    engine_dag *x = &e->dags[i];
    int64_t at = 0;
    bool has = next_run_after(x, &at);
    if (x->recorded && x->rec_has == has && (!has || x->rec_nra == at)) continue;
    if (dagd_store_dag_set_next_run(e->store, x->dag->id, has, at, p->err) < 0) return p->err->code;
  }
  return 0;
}

static void next_runs_recorded(dagd_engine *e) {
  if (e->draining) return;
  for (size_t i = 0; i < e->n_dags; i++) {
    engine_dag *x = &e->dags[i];
    x->recorded = true;
    x->rec_nra = 0;
    x->rec_has = next_run_after(x, &x->rec_nra);
  }
}

/* Records the picked candidates as running: intent before effect, so a
 * crash between this commit and the process is seen at restart as a
 * lost try, never as a try that may run twice. */
static int start_picked(pass *p) {
  dagd_engine *e = p->e;
  int *dag_free = dagd_calloc(e->n_dags + 1, sizeof(int));
  int *pool_free = dagd_calloc(p->n_pools + 1, sizeof(int));
  for (size_t i = 0; i < e->n_dags; i++) dag_free[i] = e->dags[i].dag->max_active_tasks - p->running_tis[i];
  for (size_t i = 0; i < p->n_pools; i++) pool_free[i] = pool_slots(e, p->pools[i]) - p->pool_used[i];
  dagd_sched_limits lim = {.free_slots = e->parallelism - (int)e->in_flight, .dag_free = dag_free,
                           .pool_free = pool_free};
  size_t picked = dagd_sched_pick(p->cand, p->n_cand, &lim);
  dagd_engine_actions *a = p->out;
  a->starts = dagd_calloc(picked + 1, sizeof(*a->starts));
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < p->n_cand; i++) {
    if (!p->cand[i].picked) continue;
    const candidate_ref *ref = &p->cref[p->cand[i].tag];
    dagd_store_ti *ti = ref->ti;
    /* Outputs come only from a try's end: an instance never started
     * before (no try, no poke) has none to clear. */
    bool started_before = ti->try_number > 0 || ti->start_date != 0;
    ti->state = DAGD_TI_RUNNING;
    ti->try_number++;
    ti->start_date = p->now;
    ti->end_date = 0;
    ti->has_exit_code = false;
    ti->next_try_at = 0;
    ti->pid = 0;
    rc = dagd_store_ti_update(e->store, ti, p->err);
    /* A new try starts with no outputs: a branch's choice or a gate's
     * metrics come from the try that succeeds, not an earlier one. */
    if (rc == 0 && started_before) rc = dagd_store_output_clear(e->store, ti->run_pk, ti->task_id, p->err);
    dagd_engine_try *s = &a->starts[a->n_starts++];
    *s = (dagd_engine_try){.dag = e->dags[p->cand[i].dag_slot].dag, .task = ref->task,
                           .task_id = dagd_strdup(ti->task_id), .try_number = ti->try_number,
                           .start_date = p->now};
    dagd__run_copy(&s->run, &p->runs[ref->run]);
    if (ref->task->execution_timeout > 0) {
      s->deadline = p->now + (double)ref->task->execution_timeout;
      wake_at(p, s->deadline);
    }
  }
  a->queued = p->n_cand - picked;
  free(dag_free);
  free(pool_free);
  return rc;
}

/* The limits count processes: every try in flight holds a task slot of
 * its DAG and a slot of its pool until it ends, also one cleared or
 * marked meanwhile. */
static void count_in_flight(void *data, const char *dag_id, const char *pool) {
  pass *p = data;
  engine_dag *x = dagd__engine_dag(p->e, dag_id);
  if (x) p->running_tis[x - p->e->dags]++;
  size_t slot = pool_slot(p, pool); /* may grow pool_used */
  p->pool_used[slot]++;
}

static void pass_close(pass *p) {
  for (size_t i = 0; i < p->n_runs; i++) dagd_store_run_clear(&p->runs[i]);
  free(p->runs);
  free(p->held);
  free(p->running_runs);
  free(p->queued_runs);
  free(p->running_tis);
  for (size_t i = 0; i < p->n_pools; i++) free(p->pools[i]);
  free(p->pools);
  free(p->pool_used);
  free(p->cand);
  free(p->cref);
  free(p->finished);
}

int dagd_engine_pass(dagd_engine *e, double now, dagd_engine_actions *out, dagd_err *err) {
  dagd_err local;
  if (err == NULL) err = &local;
  dagd_err_init(err);
  pass p = {.e = e, .now = now, .out = out, .err = err};
  e->last_pass = now;
  p.running_runs = dagd_calloc(e->n_dags + 1, sizeof(int));
  p.queued_runs = dagd_calloc(e->n_dags + 1, sizeof(int));
  p.running_tis = dagd_calloc(e->n_dags + 1, sizeof(int));
  dagd__flight_each(e, count_in_flight, &p);
  dagd_store_run_list active = {0};
  int rc = dagd_store_begin(e->store, err);
  if (rc == 0) rc = dagd__engine_read_paused(e, err);
  if (rc == 0) rc = dagd_store_run_list_active(e->store, &active, err);
  for (size_t i = 0; rc == 0 && i < active.n; i++) {
    engine_dag *x = dagd__engine_dag(e, active.runs[i].dag_id);
    if (x && active.runs[i].state == DAGD_RUN_RUNNING) p.running_runs[x - e->dags]++;
    if (x && active.runs[i].state == DAGD_RUN_QUEUED) p.queued_runs[x - e->dags]++;
    add_run(&p, &active.runs[i], false); /* the rows move into the pass */
  }
  free(active.runs);
  /* 1. Every run already running; 2. new runs and promotions. */
  for (size_t i = 0, n = p.n_runs; rc == 0 && i < n; i++)
    if (p.runs[i].state == DAGD_RUN_RUNNING) rc = advance_run(&p, i);
  if (rc == 0) rc = settle(&p);
  /* 3. What starts now. */
  if (rc == 0 && p.n_cand > 0 && !e->draining) rc = start_picked(&p);
  else if (rc == 0) out->queued = p.n_cand;
  if (rc == 0) rc = record_next_runs(&p);
  if (rc == 0) rc = dagd_store_commit(e->store, err);
  if (rc != 0) {
    dagd_store_rollback(e->store);
    dagd__cache_clear(e, NULL); /* the rows written in memory were not */
    dagd_engine_actions_close(out);
    /* A failing store: try again soon, not in a spin. A busy one (another
     * process holds the write lock) usually frees within moments: back off
     * from 50 ms, doubling up to 2 s, so the pass resumes soon after the
     * lock is released without polling hard while it is held. */
    if (rc == DAGD_ETIMEDOUT) {
      double delay = 0.05 * (double)(1u << (e->busy_passes < 6 ? e->busy_passes : 6));
      out->wake = now + (delay < 2 ? delay : 2);
      e->busy_passes++;
    } else {
      out->wake = now + 5;
    }
    pass_close(&p);
    return rc;
  }
  e->busy_passes = 0;
  next_runs_recorded(e);
  for (size_t i = 0; i < p.n_finished; i++) dagd__cache_drop(e, p.finished[i]);
  for (size_t i = 0; i < out->n_stops; i++) {
    const dagd_engine_try *s = &out->stops[i];
    dagd__stopping_add(e, s->run.pk, s->task_id, s->try_number);
  }
  for (size_t i = 0; i < out->n_starts; i++) {
    const dagd_engine_try *s = &out->starts[i];
    dagd__flight_add(e, s->run.pk, s->task_id, s->try_number, s->run.dag_id, s->task->pool);
  }
  /* 4. The next due thing: a DAG's next interval (unless held by
   * max_active_runs, which only a run's end frees). */
  for (size_t i = 0; i < e->n_dags && !e->draining; i++) {
    const engine_dag *x = &e->dags[i];
    if (x->paused || x->dag->schedule == NULL || !x->has_next || x->blocked) continue;
    wake_at(&p, (double)x->next_due);
  }
  out->wake = p.wake;
  pass_close(&p);
  return 0;
}
