/* One run's task instances: trigger-rule evaluation in topological order,
 * the end of a try (retry or fail), retry delays, branch skips, and the
 * run's resulting state.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/sched.h"
#include "dagd/util.h"

static void set_state(dagd_sched_ti *ti, dagd_ti_state s) {
  if (ti->state != s) {
    ti->state = s;
    ti->changed = true;
  }
}

void dagd_sched_count_upstream(dagd_upstream_counts *c, dagd_ti_state s) {
  switch (s) {
  case DAGD_TI_REMOVED: return;
  case DAGD_TI_SUCCESS: c->success++; break;
  case DAGD_TI_FAILED: c->failed++; break;
  case DAGD_TI_UPSTREAM_FAILED: c->upstream_failed++; break;
  case DAGD_TI_SKIPPED: c->skipped++; break;
  default: break;
  }
  c->total++;
  c->done = c->success + c->failed + c->upstream_failed + c->skipped;
}

static void count_upstream(const dagd_task *t, const dagd_sched_ti *tis, dagd_upstream_counts *c) {
  *c = (dagd_upstream_counts){0};
  for (size_t i = 0; i < t->n_upstream; i++) dagd_sched_count_upstream(c, tis[t->upstream[i]].state);
}

/* Marks for a look the downstream of a task whose state changed. */
static void mark_downstream(const dagd_task *t, const size_t *pos, dagd_sched_view *v) {
  if (v == NULL) return;
  for (size_t d = 0; d < t->n_downstream; d++) {
    size_t i = t->downstream[d];
    v->due[i] = true;
    if (pos[i] >= v->hi) v->hi = pos[i] + 1;
  }
}

/* A change the evaluation made: seen by the view (its downstream come
 * later in the same sweep, so the next sync has nothing to add). */
static void decided(const dagd_dag *dag, size_t i, dagd_sched_ti *ti, dagd_ti_state to, dagd_sched_view *v) {
  set_state(ti, to);
  if (v == NULL) return;
  v->seen[i] = (int)to;
  mark_downstream(dag->tasks[i], dag->topo_pos, v);
}

dagd_run_state dagd_sched_evaluate_view(const dagd_dag *dag, dagd_sched_ti *tis, dagd_sched_view *v, double now,
                                        double *wake) {
  *wake = 0;
  /* v->hi grows as decisions make later tasks due. */
  for (size_t k = v ? v->settled : 0; k < (v ? v->hi : dag->n_tasks); k++) {
    size_t i = dag->topo[k];
    dagd_sched_ti *ti = &tis[i];
    if (ti->state == DAGD_TI_UP_FOR_RETRY || ti->state == DAGD_TI_UP_FOR_RESCHEDULE) {
      if (ti->next_try_at <= now) {
        decided(dag, i, ti, DAGD_TI_SCHEDULED, v);
      } else if (*wake == 0 || ti->next_try_at < *wake) {
        *wake = ti->next_try_at;
      }
      continue;
    }
    if (ti->state != DAGD_TI_NONE) continue;
    /* Waiting, and none of its upstream changed since it last waited:
     * it would wait again. */
    if (v && !v->due[i]) continue;
    if (v) v->due[i] = false;
    dagd_upstream_counts c;
    count_upstream(dag->tasks[i], tis, &c);
    dagd_ti_state to = DAGD_TI_NONE;
    switch (dagd_sched_trigger(dag->tasks[i]->trigger_rule, &c)) {
    case DAGD_TRIGGER_RUN: to = DAGD_TI_SCHEDULED; break;
    case DAGD_TRIGGER_SKIP: to = DAGD_TI_SKIPPED; break;
    case DAGD_TRIGGER_UPSTREAM_FAILED: to = DAGD_TI_UPSTREAM_FAILED; break;
    case DAGD_TRIGGER_WAIT: break;
    }
    if (to != DAGD_TI_NONE) decided(dag, i, ti, to, v);
  }
  /* The run goes on while a task is unfinished. With a view, the tasks
   * before its cursor were finished when last looked at (a state goes
   * from finished back to unfinished only by a clear, which starts a new
   * view), and the whole run is looked at once more before it ends. */
  size_t from = v ? v->done_upto : 0;
  for (size_t i = from; i < dag->n_tasks; i++) {
    if (!dagd_ti_state_finished(tis[i].state)) {
      if (v) v->done_upto = i;
      return DAGD_RUN_RUNNING;
    }
  }
  bool failed = false;
  for (size_t i = 0; i < dag->n_tasks; i++) {
    if (!dagd_ti_state_finished(tis[i].state)) {
      if (v) v->done_upto = i;
      return DAGD_RUN_RUNNING;
    }
    /* A leaf decides the run, as in Airflow: a failure inside the graph
     * that a cleanup leaf (all_done) absorbed does not fail the run. */
    if (dag->tasks[i]->n_downstream == 0 &&
        (tis[i].state == DAGD_TI_FAILED || tis[i].state == DAGD_TI_UPSTREAM_FAILED))
      failed = true;
  }
  if (v) v->done_upto = dag->n_tasks;
  return failed ? DAGD_RUN_FAILED : DAGD_RUN_SUCCESS;
}

dagd_run_state dagd_sched_evaluate(const dagd_dag *dag, dagd_sched_ti *tis, double now, double *wake) {
  return dagd_sched_evaluate_view(dag, tis, NULL, now, wake);
}

void dagd_sched_view_init(dagd_sched_view *v, size_t n_tasks) {
  v->n = n_tasks;
  v->due = dagd_calloc(n_tasks ? n_tasks : 1, sizeof(bool));
  v->seen = dagd_malloc((n_tasks ? n_tasks : 1) * sizeof(*v->seen));
  for (size_t i = 0; i < n_tasks; i++) {
    v->due[i] = true; /* nothing seen yet: every task is looked at */
    v->seen[i] = -1;
  }
  v->done_upto = 0;
  v->settled = 0;
  v->hi = n_tasks;
}

void dagd_sched_view_settle(const dagd_dag *dag, const dagd_sched_ti *tis, dagd_sched_view *v) {
  while (v->settled < dag->n_tasks) {
    size_t i = dag->topo[v->settled];
    if (!dagd_ti_state_finished(tis[i].state) || v->seen[i] != (int)tis[i].state) break;
    v->settled++;
  }
  if (v->hi < v->settled) v->hi = v->settled;
  while (v->hi > v->settled) {
    size_t i = dag->topo[v->hi - 1];
    if (tis[i].state != DAGD_TI_NONE || v->due[i] || v->seen[i] != (int)DAGD_TI_NONE) break;
    v->hi--;
  }
}

void dagd_sched_view_close(dagd_sched_view *v) {
  free(v->due);
  free(v->seen);
  memset(v, 0, sizeof(*v));
}

void dagd_sched_view_sync(const dagd_dag *dag, const dagd_sched_ti *tis, dagd_sched_view *v) {
  for (size_t k = v->settled; k < v->hi; k++) {
    size_t i = dag->topo[k];
    if (v->seen[i] == (int)tis[i].state) continue;
    v->seen[i] = (int)tis[i].state;
    mark_downstream(dag->tasks[i], dag->topo_pos, v);
  }
}

double dagd_sched_retry_delay(const dagd_task *t, int try_number, double jitter) {
  double delay = (double)t->retry_delay;
  if (t->retry_exponential_backoff) {
    int exp = try_number > 1 ? try_number - 1 : 0;
    if (exp > 40) exp = 40; /* 2^40 times any delay is past every cap */
    delay = ldexp(delay, exp);
    if (jitter > 0 && jitter < 1) delay += delay * 0.25 * jitter;
  }
  if (t->max_retry_delay > 0 && delay > (double)t->max_retry_delay) delay = (double)t->max_retry_delay;
  return delay;
}

void dagd_sched_try_finished(const dagd_task *t, dagd_sched_ti *ti, bool succeeded, double now, double jitter) {
  if (succeeded) {
    set_state(ti, DAGD_TI_SUCCESS);
    ti->next_try_at = 0;
  } else if (ti->try_number < ti->max_tries) {
    set_state(ti, DAGD_TI_UP_FOR_RETRY);
    ti->next_try_at = now + dagd_sched_retry_delay(t, ti->try_number, jitter);
  } else {
    set_state(ti, DAGD_TI_FAILED);
    ti->next_try_at = 0;
  }
}

void dagd_sched_branch(const dagd_dag *dag, dagd_sched_ti *tis, size_t branch, const size_t *follow,
                       size_t n_follow) {
  const dagd_task *b = dag->tasks[branch];
  for (size_t d = 0; d < b->n_downstream; d++) {
    size_t i = b->downstream[d];
    bool followed = false;
    for (size_t f = 0; f < n_follow && !followed; f++) followed = follow[f] == i;
    if (!followed && tis[i].state == DAGD_TI_NONE) set_state(&tis[i], DAGD_TI_SKIPPED);
  }
}
