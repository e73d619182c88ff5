/* The engine object: its DAGs and their paused flags, what the API tells
 * it, draining, and the action lists a pass hands out.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "dagd/util.h"
#include "engine/internal.h"

dagd_engine *dagd_engine_new(dagd_store *store, const dagd_engine_opts *opts) {
  dagd_engine *e = dagd_calloc(1, sizeof(*e));
  e->store = store;
  e->parallelism = opts->parallelism > 0 ? opts->parallelism : 1;
  e->pools = opts->pools;
  e->n_pools = opts->n_pools;
  e->rng = opts->seed ? opts->seed : 0x9e3779b97f4a7c15ull;
  return e;
}

void dagd_engine_free(dagd_engine *e) {
  if (e == NULL) return;
  dagd__cache_clear(e, NULL);
  dagd__stopping_clear(e);
  dagd__flight_clear(e);
  free(e->dags);
  free(e);
}

double dagd__engine_jitter(dagd_engine *e) {
  /* xorshift64: retry jitter needs spread, not secrecy. */
  e->rng ^= e->rng << 13;
  e->rng ^= e->rng >> 7;
  e->rng ^= e->rng << 17;
  return (double)(e->rng >> 11) / 9007199254740992.0;
}

engine_dag *dagd__engine_dag(const dagd_engine *e, const char *dag_id) {
  size_t lo = 0, hi = e->n_dags;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(dag_id, e->dags[mid].dag->id);
    if (c == 0) return &e->dags[mid];
    if (c < 0) hi = mid;
    else lo = mid + 1;
  }
  return NULL;
}

const dagd_dag *dagd_engine_find_dag(const dagd_engine *e, const char *dag_id) {
  const engine_dag *x = dagd__engine_dag(e, dag_id);
  return x ? x->dag : NULL;
}

bool dagd_engine_is_paused(const dagd_engine *e, const char *dag_id) {
  dagd_store_dag row = {0};
  bool paused = dagd_store_dag_get(e->store, dag_id, &row, NULL) == 0 && row.is_paused;
  dagd_store_dag_clear(&row);
  return paused && dagd__engine_dag(e, dag_id) != NULL;
}

static int entry_cmp(const void *a, const void *b) {
  return strcmp(((const engine_dag *)a)->dag->id, ((const engine_dag *)b)->dag->id);
}

int dagd_engine_set_dags(dagd_engine *e, const dagd_dag *const *dags, size_t n, dagd_err *err) {
  engine_dag *entries = dagd_calloc(n ? n : 1, sizeof(*entries));
  int rc = dagd_store_begin(e->store, err);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    dagd_store_dag row;
    rc = dagd_store_dag_upsert(e->store, dags[i]->id, dags[i]->fileloc, dags[i]->is_paused_upon_creation, err);
    if (rc == 0 && (rc = dagd_store_dag_get(e->store, dags[i]->id, &row, err)) == DAGD_ENOENT)
      rc = dagd_err_set(err, DAGD_ENOENT, "DAG \"%s\" was not recorded", dags[i]->id);
    if (rc == 0) {
      /* Every DAG is planned afresh: its schedule may have changed. */
      entries[i] = (engine_dag){.dag = dags[i], .paused = row.is_paused, .plan = true};
      for (size_t t = 0; t < dags[i]->n_tasks && !entries[i].any_sla; t++)
        entries[i].any_sla = dags[i]->tasks[t]->sla > 0;
      dagd_store_dag_clear(&row);
    }
  }
  if (rc == 0) rc = dagd_store_commit(e->store, err);
  if (rc != 0) {
    dagd_store_rollback(e->store);
    free(entries);
    return rc;
  }
  qsort(entries, n, sizeof(*entries), entry_cmp);
  dagd__cache_clear(e, NULL); /* cached runs point into the old models */
  free(e->dags);
  e->dags = entries;
  e->n_dags = n;
  return 0;
}

int dagd__engine_read_paused(dagd_engine *e, dagd_err *err) {
  char **ids;
  size_t n;
  int rc = dagd_store_dag_list_paused(e->store, &ids, &n, err);
  if (rc < 0) return rc;
  bool *now = dagd_calloc(e->n_dags + 1, sizeof(bool));
  for (size_t k = 0; k < n; k++) {
    engine_dag *x = dagd__engine_dag(e, ids[k]);
    if (x) now[x - e->dags] = true;
    free(ids[k]);
  }
  for (size_t i = 0; i < e->n_dags; i++) {
    if (now[i] != e->dags[i].paused) e->dags[i].plan = true; /* unpaused: planned again */
    e->dags[i].paused = now[i];
  }
  free(now);
  free(ids);
  return 0;
}

void dagd_engine_changed(dagd_engine *e, const char *dag_id) {
  dagd__cache_clear(e, dag_id);
  for (size_t i = 0; i < e->n_dags; i++)
    if (dag_id == NULL || strcmp(e->dags[i].dag->id, dag_id) == 0) e->dags[i].plan = true;
}

void dagd_engine_drain(dagd_engine *e) { e->draining = true; }
bool dagd_engine_draining(const dagd_engine *e) { return e->draining; }
size_t dagd_engine_in_flight(const dagd_engine *e) { return e->in_flight; }

void dagd_engine_actions_init(dagd_engine_actions *a) { memset(a, 0, sizeof(*a)); }

void dagd_engine_tries_free(dagd_engine_try *t, size_t n) {
  for (size_t i = 0; i < n; i++) {
    dagd_store_run_clear(&t[i].run);
    free(t[i].task_id);
  }
  free(t);
}

void dagd_engine_actions_close(dagd_engine_actions *a) {
  dagd_engine_tries_free(a->starts, a->n_starts);
  dagd_engine_tries_free(a->stops, a->n_stops);
  for (size_t i = 0; i < a->n_sla_misses; i++) {
    free(a->sla_misses[i].run_id);
    dagd_store_run_clear(&a->sla_misses[i].run);
    free(a->sla_misses[i].outputs);
  }
  free(a->sla_misses);
  for (size_t i = 0; i < a->n_run_ends; i++) {
    dagd_engine_run_end *r = &a->run_ends[i];
    free(r->run_id);
    dagd_store_run_clear(&r->run);
    for (size_t k = 0; k < r->n_failed_tasks; k++) free(r->failed_tasks[k]);
    free(r->failed_tasks);
    free(r->outputs);
  }
  free(a->run_ends);
  free(a->changed_runs);
  memset(a, 0, sizeof(*a));
}

void dagd_engine_ended_close(dagd_engine_ended *x) {
  free(x->note);
  x->note = NULL;
  dagd_store_run_clear(&x->run);
  free(x->outputs);
  x->outputs = NULL;
}
