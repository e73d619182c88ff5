/* The simulation's mirror of the store and its invariants. The mirror is
 * read through a second, read-only SQLite connection after every engine
 * call and API request, so it always holds what the next pass starts
 * from; after each pass the differences tell what the pass did, and the
 * invariants are checked: liveness (nothing due waits while a slot is
 * free, everything waiting on time is covered by the wake), limits,
 * uniqueness and order of runs, the life of every try, and final task
 * states against the trigger rules (dagd_sched_trigger is the oracle).
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/cron.h"
#include "dagd/tz.h"
#include "dagd/util.h"
#include "sim.h"

#define EPS 1e-6

#define RUN_COLS \
  "id, dag_id, run_id, run_type, logical_date, interval_start, interval_end, state, queued_at, start_date, " \
  "end_date, backfill_id"
#define TI_COLS "task_id, state, try_number, max_tries, next_try_at, start_date, end_date"

static sqlite3_stmt *prep(sim *s, const char *sql) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->ro, sql, -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "sim: prepare %s: %s\n", sql, sqlite3_errmsg(s->ro));
    abort();
  }
  return st;
}

int sim_mirror_open(sim *s) {
  if (sqlite3_open_v2(s->db_path, &s->ro, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return -1;
  sqlite3_busy_timeout(s->ro, 1000);
  /* Pages through a map, not a read() each. */
  sqlite3_exec(s->ro, "PRAGMA mmap_size = 268435456", NULL, NULL, NULL);
  s->q_active = prep(s, "SELECT r.id, r.state, r.queued_at, r.start_date, r.end_date, ti.task_id, ti.state, "
                        "ti.try_number, ti.max_tries, ti.next_try_at, ti.start_date, ti.end_date"
                        /* CROSS JOIN keeps dag_run outside: the partial index of active runs,
                         * then each run's rows, never a scan of all task instances. */
                        " FROM dag_run r CROSS JOIN task_instance ti ON ti.run_pk = r.id"
                        " WHERE r.state IN ('queued', 'running')");
  s->q_new_runs = prep(s, "SELECT " RUN_COLS " FROM dag_run WHERE id > ?1 ORDER BY id");
  s->q_run = prep(s, "SELECT " RUN_COLS " FROM dag_run WHERE id = ?1");
  s->q_tis_run = prep(s, "SELECT " TI_COLS " FROM task_instance WHERE run_pk = ?1");
  s->q_ti = prep(s, "SELECT " TI_COLS " FROM task_instance WHERE run_pk = ?1 AND task_id = ?2");
  s->q_live = prep(s, "SELECT run_pk, task_id, try_number FROM task_instance WHERE state IN ('queued', 'running')");
  s->q_dags = prep(s, "SELECT dag_id, is_paused, next_run_after FROM dag");
  s->q_dup = prep(s, "SELECT dag_id, logical_date, count(*) FROM dag_run WHERE run_type IN ('scheduled', 'backfill')"
                     " GROUP BY dag_id, logical_date HAVING count(*) > 1 LIMIT 1");
  return 0;
}

void sim_mirror_close(sim *s) {
  sqlite3_stmt **all[] = {&s->q_active, &s->q_new_runs, &s->q_run, &s->q_tis_run,
                          &s->q_ti,     &s->q_live,     &s->q_dags, &s->q_dup};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    sqlite3_finalize(*all[i]);
    *all[i] = NULL;
  }
  if (s->ro) sqlite3_close(s->ro);
  s->ro = NULL;
  free(s->runs);
  s->runs = NULL;
  s->cap_runs = 0;
  s->max_pk = 0;
  free(s->active);
  s->active = NULL;
  s->n_active = s->cap_active = 0;
  for (size_t i = 0; i < s->n_dags; i++) {
    free(s->dags[i].dates);
    s->dags[i].dates = NULL;
    s->dags[i].n_dates = s->dags[i].cap_dates = 0;
  }
}

long sim_dag_index(const sim *s, const char *dag_id) {
  for (size_t i = 0; i < s->n_dags; i++)
    if (strcmp(s->dags[i].dag->id, dag_id) == 0) return (long)i;
  return -1;
}

static long task_index(const sim *s, size_t d, const char *task_id) {
  return dagd_dag_task_index(s->models[d], task_id);
}

sim_run *sim_run_get(sim *s, int64_t pk) {
  if (pk <= 0 || (size_t)pk >= s->cap_runs || s->runs[pk].pk == 0) return NULL;
  return &s->runs[pk];
}

static sim_run *run_slot(sim *s, int64_t pk) {
  if ((size_t)pk >= s->cap_runs) {
    size_t cap = s->cap_runs ? s->cap_runs : 64;
    while (cap <= (size_t)pk) cap *= 2;
    s->runs = dagd_realloc(s->runs, cap * sizeof(*s->runs));
    memset(s->runs + s->cap_runs, 0, (cap - s->cap_runs) * sizeof(*s->runs));
    s->cap_runs = cap;
  }
  return &s->runs[pk];
}

/* Reads in one read transaction: one lock, one snapshot. */
static void read_begin(sim *s) { sqlite3_exec(s->ro, "BEGIN", NULL, NULL, NULL); }
static void read_end(sim *s) { sqlite3_exec(s->ro, "COMMIT", NULL, NULL, NULL); }

static bool is_active(dagd_run_state st) { return st == DAGD_RUN_QUEUED || st == DAGD_RUN_RUNNING; }

static void set_active(sim *s, int64_t pk, bool active) {
  for (size_t i = 0; i < s->n_active; i++) {
    if (s->active[i] != pk) continue;
    if (!active) s->active[i] = s->active[--s->n_active];
    return;
  }
  if (!active) return;
  if (s->n_active == s->cap_active) {
    s->cap_active = s->cap_active ? s->cap_active * 2 : 32;
    s->active = dagd_realloc(s->active, s->cap_active * sizeof(int64_t));
  }
  s->active[s->n_active++] = pk;
}

static double col_real(sqlite3_stmt *st, int i) {
  return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : sqlite3_column_double(st, i);
}

/* Reads TI_COLS from column `c` on into ti; returns the task index or -1. */
static long read_ti(sim *s, size_t d, sqlite3_stmt *st, int c, sim_ti *ti) {
  const char *task_id = (const char *)sqlite3_column_text(st, c);
  long t = task_id ? task_index(s, d, task_id) : -1;
  dagd_ti_state state = DAGD_TI_NONE;
  const char *name = (const char *)sqlite3_column_text(st, c + 1);
  if (name == NULL || dagd_ti_state_parse(name, &state) != 0) {
    sim_fail(s, "store.row", "task instance %s has state \"%s\"", task_id ? task_id : "?", name ? name : "NULL");
  }
  ti->state = state;
  ti->try_number = sqlite3_column_int(st, c + 2);
  ti->max_tries = sqlite3_column_int(st, c + 3);
  ti->next_try_at = col_real(st, c + 4);
  ti->start_date = col_real(st, c + 5);
  ti->end_date = col_real(st, c + 6);
  return t;
}

/* Fills a run's row fields from RUN_COLS. Returns false for a run of no
 * DAG of the world. */
static bool read_run_row(sim *s, sqlite3_stmt *st, sim_run *r) {
  long d = sim_dag_index(s, (const char *)sqlite3_column_text(st, 1));
  if (d < 0) {
    sim_fail(s, "store.row", "run %lld of unknown DAG %s", (long long)sqlite3_column_int64(st, 0),
             sqlite3_column_text(st, 1));
    return false;
  }
  r->pk = sqlite3_column_int64(st, 0);
  r->dag = (size_t)d;
  snprintf(r->run_id, sizeof(r->run_id), "%s", (const char *)sqlite3_column_text(st, 2));
  dagd_run_type_parse((const char *)sqlite3_column_text(st, 3), &r->type);
  r->logical_date = sqlite3_column_int64(st, 4);
  r->has_interval = sqlite3_column_type(st, 5) != SQLITE_NULL;
  r->istart = sqlite3_column_int64(st, 5);
  r->iend = sqlite3_column_int64(st, 6);
  dagd_run_state state = DAGD_RUN_QUEUED;
  const char *name = (const char *)sqlite3_column_text(st, 7);
  if (name == NULL || dagd_run_state_parse(name, &state) != 0)
    sim_fail(s, "store.row", "run %lld has state \"%s\"", (long long)r->pk, name ? name : "NULL");
  r->state = state;
  r->queued_at = col_real(st, 8);
  r->start_date = col_real(st, 9);
  r->end_date = col_real(st, 10);
  r->backfill_id = sqlite3_column_int64(st, 11);
  return true;
}

static void read_tis(sim *s, sim_run *r) {
  sqlite3_stmt *st = s->q_tis_run;
  sqlite3_bind_int64(st, 1, r->pk);
  while (sqlite3_step(st) == SQLITE_ROW) {
    sim_ti ti;
    long t = read_ti(s, r->dag, st, 0, &ti);
    if (t >= 0) r->tis[t] = ti;
  }
  sqlite3_reset(st);
}

static void mirror_run(sim *s, int64_t pk);

void sim_mirror_run(sim *s, int64_t pk) {
  bool outer = !sqlite3_get_autocommit(s->ro);
  if (!outer) read_begin(s);
  mirror_run(s, pk);
  if (!outer) read_end(s);
}

static void mirror_run(sim *s, int64_t pk) {
  sqlite3_stmt *st = s->q_run;
  sqlite3_bind_int64(st, 1, pk);
  if (sqlite3_step(st) == SQLITE_ROW) {
    sim_run *r = run_slot(s, pk);
    read_run_row(s, st, r);
    sqlite3_reset(st);
    read_tis(s, r);
    set_active(s, pk, is_active(r->state));
    if (is_active(r->state)) r->final_checked = false;
    return;
  }
  sqlite3_reset(st);
}

bool sim_mirror_ti(sim *s, int64_t pk, size_t task, sim_ti *out) {
  sim_run *r = sim_run_get(s, pk);
  if (r == NULL) return false;
  sqlite3_stmt *st = s->q_ti;
  sqlite3_bind_int64(st, 1, pk);
  sqlite3_bind_text(st, 2, s->models[r->dag]->tasks[task]->id, -1, SQLITE_STATIC);
  bool found = false;
  if (sqlite3_step(st) == SQLITE_ROW) {
    found = read_ti(s, r->dag, st, 0, out) == (long)task;
    if (found) r->tis[task] = *out;
  }
  sqlite3_reset(st);
  return found;
}

/* --- logical dates of scheduled and backfill runs, per DAG --- */

static size_t date_lower(const sim_dag *d, int64_t ld) {
  size_t lo = 0, hi = d->n_dates;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (d->dates[mid] < ld) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static bool date_exists(const sim_dag *d, int64_t ld) {
  size_t i = date_lower(d, ld);
  return i < d->n_dates && d->dates[i] == ld;
}

static void date_add(sim_dag *d, int64_t ld) {
  size_t i = date_lower(d, ld);
  if (d->n_dates == d->cap_dates) {
    d->cap_dates = d->cap_dates ? d->cap_dates * 2 : 32;
    d->dates = dagd_realloc(d->dates, d->cap_dates * sizeof(int64_t));
  }
  memmove(d->dates + i + 1, d->dates + i, (d->n_dates - i) * sizeof(int64_t));
  d->dates[i] = ld;
  d->n_dates++;
}

/* --- new runs --- */

static void check_new_scheduled(sim *s, sim_run *r) {
  sim_dag *sd = &s->dags[r->dag];
  const dagd_dag *dag = sd->dag;
  char a[40], b[40], c[40];
  if (s->ctx != SIM_CTX_PASS) {
    sim_fail(s, "sched.outside-pass", "scheduled run %s of %s appeared outside a pass", r->run_id, dag->id);
    return;
  }
  if (s->draining)
    sim_fail(s, "drain.run-created", "scheduled run %s of %s created while draining", r->run_id, dag->id);
  if (sd->paused) sim_fail(s, "sched.paused-run", "scheduled run %s created for paused DAG %s", r->run_id, dag->id);
  if (dag->schedule == NULL)
    sim_fail(s, "sched.no-schedule", "scheduled run %s of unscheduled DAG %s", r->run_id, dag->id);
  if (!r->has_interval || r->istart != r->logical_date || r->iend <= r->istart)
    sim_fail(s, "sched.interval", "scheduled run %s of %s: logical date %lld, interval [%lld, %lld)", r->run_id,
             dag->id,
             (long long)r->logical_date, (long long)r->istart, (long long)r->iend);
  char want_id[64];
  dagd_sched_run_id(DAGD_RUN_SCHEDULED, r->istart, want_id);
  if (strcmp(want_id, r->run_id) != 0)
    sim_fail(s, "sched.run-id", "scheduled run of %s is named %s, want %s", dag->id, r->run_id, want_id);
  if ((double)r->iend > floor(s->pass_now) + EPS)
    sim_fail(s, "sched.run-early", "run %s of %s for [%s, %s) created at %s, before its interval ended", r->run_id,
             dag->id, sim_time((double)r->istart, a), sim_time((double)r->iend, b), sim_time(s->pass_now, c));
  if (dag->has_start_date && r->istart < dag->start_date)
    sim_fail(s, "sched.before-start", "run %s of %s starts before start_date %s", r->run_id, dag->id,
             sim_time((double)dag->start_date, a));
  if (dag->schedule == NULL) return;
  /* Oldest first, and with catchup no interval left out (unless another
   * run, a backfill's, holds it). */
  if (sd->has_last && r->istart <= sd->last_start)
    sim_fail(s, "order.catchup", "run %s of %s created after the later run for %s", r->run_id, dag->id,
             sim_time((double)sd->last_start, a));
  if (dag->catchup) {
    int64_t expect = 0;
    bool known = true;
    if (sd->has_last) expect = sd->last_end;
    else if (dag->has_start_date) known = dagd_cron_next(dag->schedule, dag->tz, dag->start_date - 1, &expect) == 0;
    else known = false;
    for (int guard = 0; known && expect < r->istart && guard < 100000; guard++) {
      if (!date_exists(sd, expect)) {
        sim_fail(s, "order.catchup-gap", "catchup DAG %s got run %s, but the interval starting %s has no run", dag->id,
                 r->run_id, sim_time((double)expect, a));
        break;
      }
      if (dagd_cron_next(dag->schedule, dag->tz, expect, &expect) != 0) break;
    }
  } else {
    /* Without catchup only the latest complete interval runs. */
    int64_t next_end;
    if (dagd_cron_next(dag->schedule, dag->tz, r->iend, &next_end) == 0 && (double)next_end <= floor(s->pass_now))
      sim_fail(s, "order.catchup-off",
               "DAG %s (catchup off) got run %s at %s though the interval ending %s was complete",
               dag->id, r->run_id, sim_time(s->pass_now, a), sim_time((double)next_end, b));
  }
  sd->has_last = true;
  sd->last_start = r->istart;
  sd->last_end = r->iend;
}

static void mirror_new_runs(sim *s);

void sim_mirror_new_runs(sim *s) {
  bool outer = !sqlite3_get_autocommit(s->ro);
  if (!outer) read_begin(s);
  mirror_new_runs(s);
  if (!outer) read_end(s);
}

static void mirror_new_runs(sim *s) {
  sqlite3_stmt *st = s->q_new_runs;
  sqlite3_bind_int64(st, 1, s->max_pk);
  int64_t first = s->max_pk + 1;
  while (sqlite3_step(st) == SQLITE_ROW) {
    int64_t pk = sqlite3_column_int64(st, 0);
    sim_run *r = run_slot(s, pk);
    memset(r, 0, sizeof(*r));
    if (!read_run_row(s, st, r)) continue;
    if (pk > s->max_pk) s->max_pk = pk;
    s->st.runs++;
    s->st.by_type[r->type]++;
    s->st.tis += s->models[r->dag]->n_tasks;
  }
  sqlite3_reset(st);
  for (int64_t pk = first; pk <= s->max_pk; pk++) {
    sim_run *r = sim_run_get(s, pk);
    if (r == NULL) continue;
    read_tis(s, r);
    set_active(s, pk, is_active(r->state));
    sim_dag *sd = &s->dags[r->dag];
    if (r->type == DAGD_RUN_SCHEDULED) check_new_scheduled(s, r);
    else if (s->ctx != SIM_CTX_API)
      sim_fail(s, "sched.outside-api", "%s run %s of %s was not created by the API", dagd_run_type_name(r->type),
               r->run_id, sd->dag->id);
    if (r->type == DAGD_RUN_SCHEDULED || r->type == DAGD_RUN_BACKFILL) {
      if (date_exists(sd, r->logical_date)) {
        char a[40];
        sim_fail(s, "unique.run-date", "DAG %s has two scheduled/backfill runs for logical date %s (the new one: %s)",
                 sd->dag->id, sim_time((double)r->logical_date, a), r->run_id);
      }
      date_add(sd, r->logical_date);
    }
  }
}

/* --- the trigger-rule oracle --- */

static void upstream_counts(const dagd_dag *dag, size_t t, const sim_ti *tis, dagd_upstream_counts *c) {
  const dagd_task *task = dag->tasks[t];
  *c = (dagd_upstream_counts){0};
  for (size_t i = 0; i < task->n_upstream; i++) dagd_sched_count_upstream(c, tis[task->upstream[i]].state);
}

static const char *decision_name(dagd_trigger_decision d) {
  static const char *const names[] = {"wait", "run", "skip", "upstream_failed"};
  return names[d];
}

static void describe_upstream(const sim *s, const sim_run *r, size_t t, char *out, size_t n) {
  const dagd_dag *dag = s->models[r->dag];
  const dagd_task *task = dag->tasks[t];
  size_t len = 0;
  out[0] = '\0';
  for (size_t i = 0; i < task->n_upstream && len < n; i++) {
    size_t u = task->upstream[i];
    len += (size_t)snprintf(out + len, n - len, "%s%s=%s", i ? " " : "", dag->tasks[u]->id,
                            dagd_ti_state_name(r->tis[u].state));
  }
}

/* A run that ended in a pass: each task instance as its trigger rule over
 * its upstreams' final states decides (or skipped by a branch), and the
 * run failed exactly when a leaf failed. */
static void check_final(sim *s, sim_run *r) {
  const dagd_dag *dag = s->models[r->dag];
  r->final_checked = true;
  char up[256];
  if (!r->touched) {
    for (size_t k = 0; k < dag->n_tasks && !s->failed; k++) {
      size_t t = dag->topo[k];
      const dagd_task *task = dag->tasks[t];
      dagd_ti_state st = r->tis[t].state;
      if (r->branch_skip & (1u << t)) {
        if (st != DAGD_TI_SKIPPED || r->started[t] > 0)
          sim_fail(s, "final.branch", "run %s of %s: %s was not followed by its branch but is %s after %d tries",
                   r->run_id, dag->id, task->id, dagd_ti_state_name(st), r->started[t]);
        continue;
      }
      dagd_upstream_counts c;
      upstream_counts(dag, t, r->tis, &c);
      dagd_trigger_decision d = dagd_sched_trigger(task->trigger_rule, &c);
      bool ok;
      switch (d) {
      case DAGD_TRIGGER_RUN:
        ok = (st == DAGD_TI_SUCCESS || st == DAGD_TI_FAILED || st == DAGD_TI_SKIPPED) &&
             (r->started[t] > 0 || (task->op == DAGD_OP_EMPTY && st == DAGD_TI_SUCCESS));
        break;
      /* Decided early, a task that does not run may be skipped or
       * upstream_failed by what its upstreams were at the time (all_success
       * skips at the first skip even when a failure follows): only
       * whether it ran is fixed. */
      case DAGD_TRIGGER_SKIP:
      case DAGD_TRIGGER_UPSTREAM_FAILED:
        ok = (st == DAGD_TI_SKIPPED || st == DAGD_TI_UPSTREAM_FAILED) && r->started[t] == 0;
        break;
      default: ok = false; break;
      }
      if (!ok) {
        describe_upstream(s, r, t, up, sizeof(up));
        sim_fail(s, "final.trigger",
                 "run %s of %s ended with %s %s after %d tries, but %s over its upstreams [%s] says %s", r->run_id,
                 dag->id, task->id, dagd_ti_state_name(st), r->started[t], dagd_trigger_rule_name(task->trigger_rule),
                 up, decision_name(d));
      }
    }
  }
  bool failed = false;
  for (size_t t = 0; t < dag->n_tasks; t++)
    if (dag->tasks[t]->n_downstream == 0 &&
        (r->tis[t].state == DAGD_TI_FAILED || r->tis[t].state == DAGD_TI_UPSTREAM_FAILED))
      failed = true;
  dagd_run_state want = failed ? DAGD_RUN_FAILED : DAGD_RUN_SUCCESS;
  if (r->state != want)
    sim_fail(s, "final.run-state", "run %s of %s ended %s, but its leaves say %s", r->run_id, dag->id,
             dagd_run_state_name(r->state), dagd_run_state_name(want));
}

/* --- starts --- */

void sim_check_start(sim *s, const dagd_engine_try *t, size_t d, size_t task) {
  const dagd_dag *dag = s->models[d];
  const dagd_task *tk = dag->tasks[task];
  sim_run *r = sim_run_get(s, t->run.pk);
  sim_ti pre = {.state = DAGD_TI_NONE};
  if (r && r->pk < s->pass_first_new) pre = r->tis[task];
  char a[40], b[40];
  if (s->draining)
    sim_fail(s, "drain.start", "try %d of %s/%s started while draining", t->try_number, t->run.run_id, tk->id);
  if (r && r->pk < s->pass_first_new && !is_active(r->state))
    sim_fail(s, "try.start-state", "try %d of %s/%s started in a run that is %s", t->try_number, t->run.run_id, tk->id,
             dagd_run_state_name(r->state));
  if (!(pre.state == DAGD_TI_NONE || pre.state == DAGD_TI_SCHEDULED || pre.state == DAGD_TI_UP_FOR_RETRY ||
        pre.state == DAGD_TI_UP_FOR_RESCHEDULE))
    sim_fail(s, "try.start-state", "try %d of %s/%s started from state %s", t->try_number, t->run.run_id, tk->id,
             dagd_ti_state_name(pre.state));
  bool waits = pre.state == DAGD_TI_UP_FOR_RETRY || pre.state == DAGD_TI_UP_FOR_RESCHEDULE;
  if (waits && pre.next_try_at > s->pass_now + EPS)
    sim_fail(s, "try.retry-early", "try %d of %s/%s started at %s, before its %s time %s", t->try_number,
             t->run.run_id, tk->id, sim_time(s->pass_now, a), dagd_ti_state_name(pre.state),
             sim_time(pre.next_try_at, b));
  if (t->try_number != pre.try_number + 1)
    sim_fail(s, "try.number", "%s/%s started as try %d; the store had %d tries", t->run.run_id, tk->id, t->try_number,
             pre.try_number);
  if (fabs(t->start_date - s->pass_now) > EPS)
    sim_fail(s, "try.start-date", "%s/%s try %d handed out at %s with start_date %s", t->run.run_id, tk->id,
             t->try_number, sim_time(s->pass_now, a), sim_time(t->start_date, b));
  double want_deadline = tk->execution_timeout > 0 ? t->start_date + (double)tk->execution_timeout : 0;
  if (fabs(t->deadline - want_deadline) > EPS)
    sim_fail(s, "try.deadline", "%s/%s try %d: deadline %.3f, want %.3f", t->run.run_id, tk->id, t->try_number,
             t->deadline, want_deadline);
  for (size_t i = 0; i < s->n_tries; i++) {
    sim_try *x = &s->tries[i];
    if (x->run_pk == t->run.pk && strcmp(x->task_id, tk->id) == 0)
      sim_fail(s, x->killed ? "try.double-run-kill" : "try.double-run",
               "%s/%s try %d started while try %d is still running%s", t->run.run_id, tk->id,
               t->try_number, x->try_number,
               x->killed ? " (it was stopped on request and has not ended yet)" : "");
  }
}

/* --- after a pass --- */

static bool in_changed(const dagd_engine_actions *a, int64_t pk) {
  for (size_t i = 0; i < a->n_changed_runs; i++)
    if (a->changed_runs[i] == pk) return true;
  return false;
}

static const dagd_engine_run_end *find_end(const sim *s, const dagd_engine_actions *a, const sim_run *r) {
  for (size_t i = 0; i < a->n_run_ends; i++)
    if (strcmp(a->run_ends[i].dag->id, s->dags[r->dag].dag->id) == 0 && strcmp(a->run_ends[i].run_id, r->run_id) == 0)
      return &a->run_ends[i];
  return NULL;
}

static bool started_in(const dagd_engine_actions *act, int64_t pk, const char *task_id, int try_number) {
  for (size_t i = 0; i < act->n_starts; i++)
    if (act->starts[i].run.pk == pk && act->starts[i].try_number == try_number &&
        strcmp(act->starts[i].task_id, task_id) == 0)
      return true;
  return false;
}

/* Whether the pass changed run a (before) into b (after). A try it
 * started of an instance that was scheduled already does not count: the
 * caller tells the long polls when it spawns the try (daemon/tries.c). */
static bool run_differs(const sim *s, const dagd_engine_actions *act, const sim_run *a, const sim_run *b) {
  if (a->state != b->state) return true;
  const dagd_dag *dag = s->models[a->dag];
  for (size_t t = 0; t < dag->n_tasks; t++) {
    const sim_ti *x = &a->tis[t], *y = &b->tis[t];
    if (x->state == y->state && x->try_number == y->try_number) continue;
    if (x->state == DAGD_TI_SCHEDULED && y->state == DAGD_TI_RUNNING &&
        started_in(act, b->pk, dag->tasks[t]->id, y->try_number))
      continue;
    return true;
  }
  return false;
}

/* Reads every active run's task instances with one query. */
static void refresh_active(sim *s, bool *seen) {
  sqlite3_stmt *st = s->q_active;
  while (sqlite3_step(st) == SQLITE_ROW) {
    int64_t pk = sqlite3_column_int64(st, 0);
    sim_run *r = pk <= s->max_pk ? sim_run_get(s, pk) : NULL;
    if (r == NULL) {
      sim_fail(s, "store.row", "active run %lld was never seen created", (long long)pk);
      continue;
    }
    dagd_run_state state = DAGD_RUN_QUEUED;
    dagd_run_state_parse((const char *)sqlite3_column_text(st, 1), &state);
    r->state = state;
    r->queued_at = col_real(st, 2);
    r->start_date = col_real(st, 3);
    r->end_date = col_real(st, 4);
    sim_ti ti;
    long t = read_ti(s, r->dag, st, 5, &ti);
    if (t >= 0) r->tis[t] = ti;
    seen[pk] = true;
  }
  sqlite3_reset(st);
}

/* Tries of the executor by DAG and by pool. */
typedef struct usage {
  int total;
  int dag[SIM_MAX_DAGS];
  const char *pool_name[8];
  int pool[8];
  size_t n_pools;
  /* The same without the tries being stopped on request. */
  int live_total, live_dag[SIM_MAX_DAGS], live_pool[8];
} usage;

static size_t usage_pool(usage *u, const char *name) {
  for (size_t i = 0; i < u->n_pools; i++)
    if (strcmp(u->pool_name[i], name) == 0) return i;
  u->pool_name[u->n_pools] = name;
  u->pool[u->n_pools] = 0;
  u->live_pool[u->n_pools] = 0;
  return u->n_pools++;
}

static void count_usage(const sim *s, usage *u) {
  memset(u, 0, sizeof(*u));
  for (size_t i = 0; i < s->n_tries; i++) {
    const sim_try *x = &s->tries[i];
    size_t p = usage_pool(u, s->models[x->dag]->tasks[x->task]->pool);
    u->total++;
    u->dag[x->dag]++;
    u->pool[p]++;
    if (x->killed) continue;
    u->live_total++;
    u->live_dag[x->dag]++;
    u->live_pool[p]++;
  }
}

static int pool_use(usage *u, const char *name) { return u->pool[usage_pool(u, name)]; }

static sim_try *try_of(sim *s, int64_t pk, const char *task_id, int try_number) {
  return sim_exec_find(s, pk, task_id, try_number);
}

static bool busy_ti(const sim *s, int64_t pk, const char *task_id) {
  for (size_t i = 0; i < s->n_tries; i++)
    if (s->tries[i].run_pk == pk && strcmp(s->tries[i].task_id, task_id) == 0) return true;
  return false;
}

static bool covered(double wake, double when) { return wake > 0 && wake <= when + EPS; }

/* Liveness of one DAG's scheduled runs: due intervals created while a run
 * slot is free, and the next one covered by the wake. */
static void check_dag_schedule(sim *s, size_t d, int n_queued, int n_running) {
  sim_dag *sd = &s->dags[d];
  const dagd_dag *dag = sd->dag;
  if (dag->schedule == NULL || sd->paused || s->draining) return;
  int active = n_queued + n_running;
  int64_t last = sd->last_start;
  bool has_last = sd->has_last;
  int64_t now = (int64_t)floor(s->pass_now);
  char a[40], b[40], c[40], e[40];
  for (int guard = 0; guard < 1000; guard++) {
    dagd_interval iv[4];
    size_t n;
    int64_t next_due = 0;
    bool has_next = false;
    dagd_sched_plan_runs(dag, has_last ? &last : NULL, active, now, iv, 4, &n, &next_due, &has_next);
    if (n > 0 && date_exists(sd, iv[0].start)) {
      /* A backfill ran that interval: the schedule goes on after it. */
      last = iv[0].start;
      has_last = true;
      continue;
    }
    if (n > 0) {
      sim_fail(s, "liveness.due-run",
               "DAG %s: the interval [%s, %s) was due at %s and %d of max_active_runs %d runs are active, but no "
               "run was created by %s",
               dag->id, sim_time((double)iv[0].start, a), sim_time((double)iv[0].end, b),
               sim_time((double)iv[0].run_after, c), active, dag->max_active_runs, sim_time(s->pass_now, e));
    } else if (has_next && active < dag->max_active_runs && (double)next_due > s->pass_now &&
               !covered(s->wake, (double)next_due)) {
      sim_fail(s, "liveness.next-run-wake", "DAG %s: its next run is due at %s, but the pass asked to wake at %s",
               dag->id, sim_time((double)next_due, a), s->wake > 0 ? sim_time(s->wake, b) : "never");
    }
    return;
  }
}

/* next_run_after as published (the store's dag row): nothing for a
 * paused or unscheduled DAG or after end_date; else the end of the first
 * interval no run covers, found here from the runs the mirror saw. A
 * time come (a run due and not created) is allowed only while
 * max_active_runs holds the DAG; it then stays the time the first held
 * run became due, however long the wait and whatever later intervals
 * (skipped without catchup, or taken by a backfill) do meanwhile. */
static void check_next_run_after(sim *s, size_t d, bool has, int64_t got, int n_queued, int n_running) {
  sim_dag *sd = &s->dags[d];
  const dagd_dag *dag = sd->dag;
  int64_t now = (int64_t)floor(s->pass_now), last = sd->last_start, want = 0;
  bool has_last = sd->has_last, want_has = false;
  char a[40], b[40], c[40];
  if (dag->schedule != NULL && !sd->paused) {
    for (int guard = 0; guard < 1000; guard++) {
      dagd_interval iv[4];
      size_t n;
      dagd_sched_plan_runs(dag, has_last ? &last : NULL, 0, now, iv, 4, &n, &want, &want_has);
      if (n > 0 && date_exists(sd, iv[0].start)) {
        last = iv[0].start;
        has_last = true;
        continue;
      }
      if (n > 0) {
        want = iv[0].run_after;
        want_has = true;
      }
      break;
    }
  }
  if (!want_has) {
    if (has)
      sim_fail(s, "sched.next-run-after", "DAG %s (%s%s): next_run_after is %s, want none", dag->id,
               dag->schedule ? "scheduled" : "unscheduled", sd->paused ? ", paused" : "", sim_time((double)got, a));
    return;
  }
  bool held = n_queued + n_running >= dag->max_active_runs;
  if (!has) {
    sim_fail(s, "sched.next-run-after", "DAG %s: next_run_after is none, want %s", dag->id,
             sim_time((double)want, a));
  } else if (got != want && !(held && got <= now)) {
    sim_fail(s, "sched.next-run-after", "DAG %s: next_run_after is %s, want %s at %s (%d of max_active_runs %d active)",
             dag->id, sim_time((double)got, a), sim_time((double)want, b), sim_time(s->pass_now, c),
             n_queued + n_running, dag->max_active_runs);
  } else if (got <= now && !held) {
    sim_fail(s, "sched.next-run-late",
             "DAG %s: next_run_after %s has passed at %s with %d of max_active_runs %d runs active, but no run was "
             "created",
             dag->id, sim_time((double)got, a), sim_time(s->pass_now, b), n_queued + n_running,
             dag->max_active_runs);
  }
}

static void check_run_liveness(sim *s, sim_run *r, usage *u) {
  const dagd_dag *dag = s->models[r->dag];
  sim_dag *sd = &s->dags[r->dag];
  bool all_done = true;
  char a[40], b[40], up[256];
  for (size_t t = 0; t < dag->n_tasks && !s->failed; t++) {
    const dagd_task *task = dag->tasks[t];
    sim_ti *ti = &r->tis[t];
    if (!dagd_ti_state_finished(ti->state)) all_done = false;
    switch (ti->state) {
    case DAGD_TI_NONE: {
      dagd_upstream_counts c;
      upstream_counts(dag, t, r->tis, &c);
      dagd_trigger_decision dec = dagd_sched_trigger(task->trigger_rule, &c);
      if (dec != DAGD_TRIGGER_WAIT) {
        describe_upstream(s, r, t, up, sizeof(up));
        sim_fail(s, "liveness.undecided-ti", "run %s of %s: %s is still none though %s over [%s] says %s", r->run_id,
                 dag->id, task->id, dagd_trigger_rule_name(task->trigger_rule), up, decision_name(dec));
      }
      break;
    }
    case DAGD_TI_SCHEDULED: {
      /* Held by a full limit, or by its own earlier try still winding
       * down after a clear (never two tries at once). */
      bool held = s->draining || sd->paused || u->total >= s->parallelism || u->dag[r->dag] >= dag->max_active_tasks ||
                  pool_use(u, task->pool) >= sim_pool_slots(s, task->pool) || busy_ti(s, r->pk, task->id);
      if (!held)
        sim_fail(s, "liveness.scheduled-ti",
                 "run %s of %s: %s is scheduled but not started though slots are free (tries %d/%d, in the DAG "
                 "%d/%d, pool %s %d/%d)",
                 r->run_id, dag->id, task->id, u->total, s->parallelism, u->dag[r->dag], dag->max_active_tasks,
                 task->pool, pool_use(u, task->pool), sim_pool_slots(s, task->pool));
      break;
    }
    case DAGD_TI_UP_FOR_RETRY:
    case DAGD_TI_UP_FOR_RESCHEDULE:
      if (s->draining) break;
      if (ti->next_try_at <= s->pass_now)
        sim_fail(s, "liveness.retry-due", "run %s of %s: %s is %s with its time %s passed at %s", r->run_id, dag->id,
                 task->id, dagd_ti_state_name(ti->state), sim_time(ti->next_try_at, a), sim_time(s->pass_now, b));
      else if (!covered(s->wake, ti->next_try_at))
        sim_fail(s, "liveness.retry-wake", "run %s of %s: %s is %s until %s, but the pass asked to wake at %s",
                 r->run_id, dag->id, task->id, dagd_ti_state_name(ti->state), sim_time(ti->next_try_at, a),
                 s->wake > 0 ? sim_time(s->wake, b) : "never");
      break;
    case DAGD_TI_RUNNING:
    case DAGD_TI_QUEUED:
      if (try_of(s, r->pk, task->id, ti->try_number) == NULL)
        sim_fail(s, "liveness.lost-ti", "run %s of %s: %s is %s as try %d, but no such try is in flight", r->run_id,
                 dag->id, task->id, dagd_ti_state_name(ti->state), ti->try_number);
      break;
    default: break;
    }
    /* SLA: reported once the deadline passed, else covered by the wake. */
    if (task->sla > 0 && r->start_date > 0 && ti->state != DAGD_TI_SUCCESS && ti->state != DAGD_TI_SKIPPED &&
        ti->state != DAGD_TI_REMOVED) {
      double deadline = r->start_date + (double)task->sla;
      if (deadline <= s->pass_now) {
        if (!(r->sla_reported & (1u << t)))
          sim_fail(s, "liveness.sla", "run %s of %s: %s is %s past its SLA (%s) and no miss was reported", r->run_id,
                   dag->id, task->id, dagd_ti_state_name(ti->state), sim_time(deadline, a));
      } else if (!s->draining && !covered(s->wake, deadline)) {
        sim_fail(s, "liveness.sla-wake", "run %s of %s: %s has its SLA at %s, but the pass asked to wake at %s",
                 r->run_id, dag->id, task->id, sim_time(deadline, a), s->wake > 0 ? sim_time(s->wake, b) : "never");
      }
    }
  }
  if (all_done && !s->failed)
    sim_fail(s, "liveness.run-not-ended", "run %s of %s is running though every task instance finished", r->run_id,
             dag->id);
}

static void take_sla(sim *s, const dagd_engine_sla *m) {
  long d = sim_dag_index(s, m->dag->id);
  sim_run *r = NULL;
  for (int64_t pk = 1; d >= 0 && pk <= s->max_pk && r == NULL; pk++)
    if (s->runs[pk].pk && s->runs[pk].dag == (size_t)d && strcmp(s->runs[pk].run_id, m->run_id) == 0) r = &s->runs[pk];
  long t = d >= 0 ? dagd_dag_task_index(s->models[d], m->task->id) : -1;
  if (r == NULL || t < 0) {
    sim_fail(s, "actions.sla", "an SLA miss for unknown %s/%s", m->run_id, m->task->id);
    return;
  }
  char a[40], b[40];
  double deadline = r->start_date + (double)m->task->sla;
  if (m->task->sla <= 0 || r->start_date <= 0 || deadline > s->pass_now + EPS)
    sim_fail(s, "actions.sla", "SLA miss of %s/%s reported at %s, its deadline is %s", r->run_id, m->task->id,
             sim_time(s->pass_now, a), m->task->sla > 0 && r->start_date > 0 ? sim_time(deadline, b) : "none");
  if (r->sla_reported & (1u << t))
    sim_fail(s, "actions.sla-repeat", "SLA miss of %s/%s reported twice", r->run_id, m->task->id);
  r->sla_reported |= 1u << t;
  s->st.sla_misses++;
}

static void check_after_pass(sim *s);

void sim_check_after_pass(sim *s) {
  read_begin(s);
  check_after_pass(s);
  read_end(s);
}

static void check_after_pass(sim *s) {
  const dagd_engine_actions *a = &s->act;
  char t1[40], t2[40];
  /* What the mirror held before the pass (the runs the pass created were
   * read already, as they were when created: queued, nothing started). */
  int64_t first_new = s->pass_first_new;
  size_t n_pre = 0;
  sim_run *pre = dagd_malloc((s->n_active ? s->n_active : 1) * sizeof(*pre));
  for (size_t i = 0; i < s->n_active; i++)
    if (s->active[i] < first_new) pre[n_pre++] = s->runs[s->active[i]];
  /* What it holds after. */
  bool *seen = dagd_calloc((size_t)s->max_pk + 2, sizeof(bool));
  refresh_active(s, seen);
  for (size_t i = 0; i < n_pre; i++)
    if (!seen[pre[i].pk]) sim_mirror_run(s, pre[i].pk);
  s->n_active = 0;
  for (int64_t pk = 1; pk <= s->max_pk; pk++)
    if (seen[pk]) set_active(s, pk, true);
  free(seen);

  /* The pass's report of itself: changed runs, ended runs, queue order. */
  size_t n_all = n_pre + (size_t)(s->max_pk + 1 - first_new);
  for (size_t i = 0; i < n_all && !s->failed; i++) {
    sim_run before;
    sim_run *r;
    if (i < n_pre) {
      before = pre[i];
      r = &s->runs[pre[i].pk];
    } else {
      r = sim_run_get(s, first_new + (int64_t)(i - n_pre));
      if (r == NULL) continue;
      before = *r;
      before.state = DAGD_RUN_QUEUED;
      memset(before.tis, 0, sizeof(before.tis));
    }
    if (run_differs(s, a, &before, r) && !in_changed(a, r->pk))
      sim_fail(s, "actions.changed-runs", "run %s of %s changed in the pass (%s -> %s) but is not in changed_runs",
               r->run_id, s->dags[r->dag].dag->id, dagd_run_state_name(before.state), dagd_run_state_name(r->state));
    const dagd_engine_run_end *end = find_end(s, a, r);
    if (!is_active(r->state)) {
      if (end == NULL || end->state != r->state)
        sim_fail(s, "actions.run-ends", "run %s of %s ended %s in the pass but run_ends %s", r->run_id,
                 s->dags[r->dag].dag->id, dagd_run_state_name(r->state), end ? "says otherwise" : "does not list it");
      if (!r->final_checked) check_final(s, r);
    } else if (end != NULL) {
      sim_fail(s, "actions.run-ends", "run_ends lists run %s of %s, which is %s", r->run_id, s->dags[r->dag].dag->id,
               dagd_run_state_name(r->state));
    }
    if (before.state == DAGD_RUN_QUEUED && r->state != DAGD_RUN_QUEUED) {
      /* Runs start in the order they were queued. */
      for (size_t k = 0; k < s->n_active; k++) {
        sim_run *q = &s->runs[s->active[k]];
        if (q->dag != r->dag || q->state != DAGD_RUN_QUEUED) continue;
        if (q->queued_at < r->queued_at || (q->queued_at == r->queued_at && q->pk < r->pk))
          sim_fail(s, "order.run-fifo", "run %s of %s (queued at %s) started before run %s (queued at %s)", r->run_id,
                   s->dags[r->dag].dag->id, sim_time(r->queued_at, t1), q->run_id, sim_time(q->queued_at, t2));
      }
    }
  }
  free(pre);
  for (size_t i = 0; i < a->n_sla_misses && !s->failed; i++) take_sla(s, &a->sla_misses[i]);
  for (size_t i = 0; i < a->n_run_ends && !s->failed; i++) {
    bool known = false;
    for (int64_t pk = 1; pk <= s->max_pk && !known; pk++)
      known = s->runs[pk].pk && strcmp(s->runs[pk].run_id, a->run_ends[i].run_id) == 0 &&
              strcmp(s->dags[s->runs[pk].dag].dag->id, a->run_ends[i].dag->id) == 0 &&
              s->runs[pk].state == a->run_ends[i].state;
    if (!known)
      sim_fail(s, "actions.run-ends", "run_ends lists %s/%s as %s, which the store does not say",
               a->run_ends[i].dag->id,
               a->run_ends[i].run_id, dagd_run_state_name(a->run_ends[i].state));
  }

  /* Intent before effect: every try handed out is recorded as running. */
  for (size_t i = 0; i < a->n_starts && !s->failed; i++) {
    const dagd_engine_try *t = &a->starts[i];
    sim_run *r = sim_run_get(s, t->run.pk);
    long task = r ? task_index(s, r->dag, t->task_id) : -1;
    if (r == NULL || task < 0) continue;
    sim_ti *ti = &r->tis[task];
    if (ti->state != DAGD_TI_RUNNING || ti->try_number != t->try_number) {
      /* It may have ended already (an empty task's try ends at once). */
      bool ended = sim_exec_find(s, t->run.pk, t->task_id, t->try_number) == NULL;
      if (!ended)
        sim_fail(s, "try.intent", "%s/%s try %d was handed out, but the store says %s try %d", t->run.run_id,
                 t->task_id, t->try_number, dagd_ti_state_name(ti->state), ti->try_number);
    }
    /* A first try only when its trigger rule lets it run. */
    if (!r->touched && t->try_number == 1) {
      dagd_upstream_counts c;
      const dagd_dag *dag = s->models[r->dag];
      upstream_counts(dag, (size_t)task, r->tis, &c);
      dagd_trigger_decision d = dagd_sched_trigger(dag->tasks[task]->trigger_rule, &c);
      if (d != DAGD_TRIGGER_RUN || (r->branch_skip & (1u << task))) {
        char up[256];
        describe_upstream(s, r, (size_t)task, up, sizeof(up));
        sim_fail(s, "try.trigger", "%s/%s started though %s over [%s] says %s%s", t->run.run_id, t->task_id,
                 dagd_trigger_rule_name(dag->tasks[task]->trigger_rule), up, decision_name(d),
                 (r->branch_skip & (1u << task)) ? " (and its branch did not follow it)" : "");
      }
    }
  }

  /* Limits, counted from what the executor really runs. */
  usage u;
  count_usage(s, &u);
  /* Over a limit only because tries stopped on request have not ended
   * yet: a check of its own (-kill), so that it can be told apart. */
#define LIMIT_CHECK(name) (live > limit ? name : name "-kill")
  {
    int all = u.total, live = u.live_total, limit = s->parallelism;
    if (all > limit)
      sim_fail(s, LIMIT_CHECK("limit.parallelism"),
               "%d tries in flight (%d of them stopped on request), parallelism is %d",
               all, all - live, limit);
  }
  for (size_t d = 0; d < s->n_dags; d++) {
    int all = u.dag[d], live = u.live_dag[d], limit = s->models[d]->max_active_tasks;
    if (all > limit)
      sim_fail(s, LIMIT_CHECK("limit.max-active-tasks"),
               "DAG %s has %d tries in flight (%d of them stopped on request), max_active_tasks is %d",
               s->models[d]->id, all, all - live, limit);
  }
  for (size_t p = 0; p < u.n_pools; p++) {
    int all = u.pool[p], live = u.live_pool[p], limit = sim_pool_slots(s, u.pool_name[p]);
    if (all > limit)
      sim_fail(s, LIMIT_CHECK("limit.pool"), "pool %s has %d tries in flight (%d of them stopped on request), %d slots",
               u.pool_name[p], all, all - live, limit);
  }
#undef LIMIT_CHECK
  int queued[SIM_MAX_DAGS] = {0}, running[SIM_MAX_DAGS] = {0};
  for (size_t k = 0; k < s->n_active; k++) {
    sim_run *r = &s->runs[s->active[k]];
    if (r->state == DAGD_RUN_QUEUED) queued[r->dag]++;
    else running[r->dag]++;
  }
  for (size_t d = 0; d < s->n_dags; d++)
    if (running[d] > s->models[d]->max_active_runs)
      sim_fail(s, "limit.max-active-runs", "DAG %s has %d runs running, max_active_runs is %d", s->models[d]->id,
               running[d], s->models[d]->max_active_runs);

  /* Every try handed out is in flight until its end, and every task
   * instance recorded as running has its try in flight. */
  size_t in_flight = dagd_engine_in_flight(s->engine);
  if (in_flight != s->n_tries)
    sim_fail(s, "try.in-flight", "the engine counts %zu tries in flight, the executor runs %zu", in_flight, s->n_tries);
  sqlite3_stmt *st = s->q_live;
  while (sqlite3_step(st) == SQLITE_ROW && !s->failed) {
    int64_t pk = sqlite3_column_int64(st, 0);
    const char *task_id = (const char *)sqlite3_column_text(st, 1);
    int try_number = sqlite3_column_int(st, 2);
    if (try_of(s, pk, task_id, try_number) == NULL) {
      sim_run *r = sim_run_get(s, pk);
      sim_fail(s, "liveness.lost-ti", "%s/%s is running as try %d in the store, but no such try is in flight%s",
               r ? r->run_id : "?", task_id, try_number, r && !is_active(r->state) ? " (its run is finished)" : "");
    }
  }
  sqlite3_reset(st);

  /* The engine's paused flags are the store's. */
  bool nra_has[SIM_MAX_DAGS] = {0}, nra_seen[SIM_MAX_DAGS] = {0};
  int64_t nra[SIM_MAX_DAGS] = {0};
  st = s->q_dags;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *id = (const char *)sqlite3_column_text(st, 0);
    bool paused = sqlite3_column_int(st, 1) != 0;
    long d = sim_dag_index(s, id);
    if (d < 0) continue;
    nra_seen[d] = true;
    nra_has[d] = sqlite3_column_type(st, 2) != SQLITE_NULL;
    nra[d] = sqlite3_column_int64(st, 2);
    if (paused != dagd_engine_is_paused(s->engine, id) || paused != s->dags[d].paused)
      sim_fail(s, "engine.paused-view", "DAG %s: the store says paused=%d, the engine %d, the API calls made %d", id,
               paused, dagd_engine_is_paused(s->engine, id), s->dags[d].paused);
  }
  sqlite3_reset(st);

  /* Timeouts: asked for once the deadline passes, else covered by the wake. */
  for (size_t i = 0; i < s->n_tries && !s->failed; i++) {
    sim_try *x = &s->tries[i];
    /* A try stopped on request ends within the grace whatever its deadline. */
    if (x->deadline <= 0 || !x->spawned || x->stop_requested || x->killed || x->end_at <= s->pass_now) continue;
    if (x->deadline <= s->pass_now)
      sim_fail(s, "liveness.timeout", "try %d of %s (run %lld) is past its deadline %s and no stop was asked",
               x->try_number, x->task_id, (long long)x->run_pk, sim_time(x->deadline, t1));
    else if (!covered(s->wake, x->deadline))
      sim_fail(s, "liveness.timeout-wake", "try %d of %s (run %lld) times out at %s, but the pass asked to wake at %s",
               x->try_number, x->task_id, (long long)x->run_pk, sim_time(x->deadline, t1),
               s->wake > 0 ? sim_time(s->wake, t2) : "never");
  }

  /* Liveness: nothing that can go on waits. */
  if (s->draining) return;
  for (size_t d = 0; d < s->n_dags && !s->failed; d++) {
    const dagd_dag *dag = s->models[d];
    if (!s->dags[d].paused && queued[d] > 0 && running[d] < dag->max_active_runs)
      sim_fail(s, "liveness.queued-run", "DAG %s has %d queued runs but only %d of max_active_runs %d running",
               dag->id, queued[d], running[d], dag->max_active_runs);
    check_dag_schedule(s, d, queued[d], running[d]);
    if (!s->failed && nra_seen[d]) check_next_run_after(s, d, nra_has[d], nra[d], queued[d], running[d]);
  }
  for (size_t k = 0; k < s->n_active && !s->failed; k++) {
    sim_run *r = &s->runs[s->active[k]];
    if (r->state == DAGD_RUN_RUNNING) check_run_liveness(s, r, &u);
  }
}

void sim_check_final(sim *s) {
  sqlite3_stmt *st = s->q_dup;
  if (sqlite3_step(st) == SQLITE_ROW) {
    char a[40];
    sim_fail(s, "unique.run-date", "DAG %s has %d scheduled/backfill runs for logical date %s",
             sqlite3_column_text(st, 0), sqlite3_column_int(st, 2), sim_time((double)sqlite3_column_int64(st, 1), a));
  }
  sqlite3_reset(st);
  /* Runs by type: the API made the manual, event and backfill ones. */
  for (size_t d = 0; d < s->n_dags && !s->failed; d++) {
    int64_t n[DAGD_RUN_TYPE__COUNT] = {0};
    for (int64_t pk = 1; pk <= s->max_pk; pk++)
      if (s->runs[pk].pk && s->runs[pk].dag == d) n[s->runs[pk].type]++;
    sim_dag *sd = &s->dags[d];
    if (n[DAGD_RUN_MANUAL] != sd->n_manual || n[DAGD_RUN_EVENT] != sd->n_event ||
        n[DAGD_RUN_BACKFILL] != sd->n_backfill)
      sim_fail(s, "api.run-count",
               "DAG %s: the store has %lld manual, %lld event, %lld backfill runs; the API reported %lld, %lld, %lld",
               sd->dag->id, (long long)n[DAGD_RUN_MANUAL], (long long)n[DAGD_RUN_EVENT],
               (long long)n[DAGD_RUN_BACKFILL], (long long)sd->n_manual, (long long)sd->n_event,
               (long long)sd->n_backfill);
  }
}

void sim_dump_state(sim *s) {
  char a[40], b[40];
  fprintf(stderr, "  world: tempo %s unit %.0fs, parallelism %d, pools", s->tempo == SIM_FAST ? "fast"
                  : s->tempo == SIM_MEDIUM ? "medium" : "slow", s->unit, s->parallelism);
  for (size_t i = 0; i < s->n_pools; i++) fprintf(stderr, " %s=%s", s->pools[i].key, s->pools[i].value);
  fprintf(stderr, "%s\n", s->draining ? ", draining" : "");
  for (size_t d = 0; d < s->n_dags; d++) {
    const dagd_dag *dag = s->models[d];
    fprintf(stderr, "  DAG %s: schedule %s tz %s start %s catchup %d max_active_runs %d max_active_tasks %d%s%s\n",
            dag->id, dag->schedule ? dagd_cron_text(dag->schedule) : "none", dagd_tz_name(dag->tz),
            dag->has_start_date ? sim_time((double)dag->start_date, a) : "none", dag->catchup, dag->max_active_runs,
            dag->max_active_tasks, s->dags[d].paused ? " PAUSED" : "", s->dags[d].stall_shape ? " (stall shape)" : "");
    for (size_t t = 0; t < dag->n_tasks; t++) {
      const dagd_task *k = dag->tasks[t];
      fprintf(stderr, "    %s op %s rule %s pool %s w %lld retries %d delay %lld%s cap %lld timeout %lld sla %lld up [",
              k->id, dagd_op_name(k->op), dagd_trigger_rule_name(k->trigger_rule), k->pool, (long long)k->weight,
              k->retries, (long long)k->retry_delay, k->retry_exponential_backoff ? " exp" : "",
              (long long)k->max_retry_delay, (long long)k->execution_timeout, (long long)k->sla);
      for (size_t i = 0; i < k->n_upstream; i++) fprintf(stderr, "%s%s", i ? " " : "", dag->tasks[k->upstream[i]]->id);
      const sim_behaviour *bh = &s->dags[d].beh[t];
      fprintf(stderr, "] dur ~%.3fs%s\n", bh->dur_fixed > 0 ? bh->dur_fixed : bh->dur_mean,
              bh->dur_fixed > 0 ? " fixed" : "");
    }
  }
  fprintf(stderr, "  active runs:\n");
  for (size_t k = 0; k < s->n_active; k++) {
    sim_run *r = &s->runs[s->active[k]];
    fprintf(stderr, "    [%lld] %s/%s %s queued %s%s\n", (long long)r->pk, s->models[r->dag]->id, r->run_id,
            dagd_run_state_name(r->state), sim_time(r->queued_at, a), r->touched ? " (touched by the API)" : "");
    for (size_t t = 0; t < s->models[r->dag]->n_tasks; t++) {
      sim_ti *ti = &r->tis[t];
      fprintf(stderr, "      %s %s try %d/%d%s%s\n", s->models[r->dag]->tasks[t]->id, dagd_ti_state_name(ti->state),
              ti->try_number, ti->max_tries, ti->next_try_at > 0 ? " next " : "",
              ti->next_try_at > 0 ? sim_time(ti->next_try_at, b) : "");
    }
  }
  fprintf(stderr, "  tries in flight:\n");
  for (size_t i = 0; i < s->n_tries; i++) {
    sim_try *x = &s->tries[i];
    fprintf(stderr, "    run %lld %s try %d started %s ends %s%s%s%s\n", (long long)x->run_pk, x->task_id,
            x->try_number, sim_time(x->started, a), isinf(x->end_at) ? "never (hangs)" : sim_time(x->end_at, b),
            x->stop_requested ? " stop-asked" : "", x->killed ? " killed" : "", x->spawned ? "" : " not-spawned");
  }
  fprintf(stderr, "  last wake: %s\n", s->wake > 0 ? sim_time(s->wake, a) : "none");
}
