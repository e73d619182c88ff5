/* The task instances of active runs, kept between passes so that a pass
 * does not read every row of every active run again: it re-reads only
 * the rows that change outside it (running tries end in
 * dagd_engine_try_end); everything else changes in the pass itself, which
 * writes through both. What the API changes drops the runs it touches.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "dagd/util.h"
#include "engine/internal.h"

static run_cache **bucket(dagd_engine *e, int64_t pk) {
  if (e->cache == NULL) e->cache = dagd_calloc(ENGINE_CACHE_BUCKETS, sizeof(run_cache *));
  return &e->cache[(uint64_t)pk % ENGINE_CACHE_BUCKETS];
}

static void entry_free(run_cache *c) {
  dagd_sched_view_close(&c->view);
  dagd_store_ti_list_clear(&c->rows);
  free(c->row_of);
  free(c->tis);
  free(c);
}

void dagd__cache_drop(dagd_engine *e, int64_t pk) {
  if (e->cache == NULL) return;
  for (run_cache **p = bucket(e, pk); *p; p = &(*p)->next) {
    if ((*p)->pk == pk) {
      run_cache *c = *p;
      *p = c->next;
      entry_free(c);
      return;
    }
  }
}

void dagd__cache_clear(dagd_engine *e, const char *dag_id) {
  if (e->cache == NULL) return;
  for (size_t b = 0; b < ENGINE_CACHE_BUCKETS; b++) {
    for (run_cache **p = &e->cache[b]; *p;) {
      run_cache *c = *p;
      if (dag_id == NULL || strcmp(c->dag->id, dag_id) == 0) {
        *p = c->next;
        entry_free(c);
      } else {
        p = &c->next;
      }
    }
  }
  if (dag_id == NULL) {
    free(e->cache);
    e->cache = NULL;
  }
}

/* Reads a run's rows; tasks that left the DAG become removed (unless
 * finished or running), tasks that joined it get a row. *inserted tells
 * whether rows were added (then read them again). */
static int load_rows(dagd_engine *e, const dagd_dag *dag, run_cache *c, bool *inserted, dagd_err *err) {
  *inserted = false;
  if (dagd_store_ti_list_run(e->store, c->pk, &c->rows, err) < 0) return err->code;
  for (size_t i = 0; i < c->rows.n; i++) {
    dagd_store_ti *row = &c->rows.tis[i];
    long t = dagd_dag_task_index(dag, row->task_id);
    if (t >= 0) {
      c->row_of[t] = row;
    } else if (!dagd_ti_state_finished(row->state) && row->state != DAGD_TI_RUNNING) {
      row->state = DAGD_TI_REMOVED;
      if (dagd_store_ti_update(e->store, row, err) < 0) return err->code;
    }
  }
  for (size_t t = 0; t < dag->n_tasks; t++) {
    if (c->row_of[t] != NULL) continue;
    const dagd_task *task = dag->tasks[t];
    dagd_store_ti ti = {.run_pk = c->pk, .task_id = task->id, .state = DAGD_TI_NONE, .max_tries = task->retries + 1,
                        .pool = task->pool, .priority_weight = task->weight};
    if (dagd_store_ti_insert(e->store, &ti, err) < 0) return err->code;
    *inserted = true;
  }
  return 0;
}

run_cache *dagd__cache_get(dagd_engine *e, const dagd_dag *dag, int64_t pk, dagd_err *err) {
  for (run_cache *c = *bucket(e, pk); c; c = c->next)
    if (c->pk == pk && c->dag == dag) return c;
  dagd__cache_drop(e, pk); /* made for another version of the DAG */
  for (int attempt = 0; attempt < 2; attempt++) {
    run_cache *c = dagd_calloc(1, sizeof(*c));
    c->pk = pk;
    c->dag = dag;
    c->row_of = dagd_calloc(dag->n_tasks ? dag->n_tasks : 1, sizeof(*c->row_of));
    c->tis = dagd_calloc(dag->n_tasks ? dag->n_tasks : 1, sizeof(*c->tis));
    dagd_sched_view_init(&c->view, dag->n_tasks);
    bool inserted;
    if (load_rows(e, dag, c, &inserted, err) < 0) {
      entry_free(c);
      return NULL;
    }
    if (inserted) { /* read them back with the rest */
      entry_free(c);
      continue;
    }
    run_cache **b = bucket(e, pk);
    c->next = *b;
    *b = c;
    return c;
  }
  dagd_err_set(err, DAGD_EIO, "run %lld: task instances added but not read back", (long long)pk);
  return NULL;
}

void dagd__cache_ti(const dagd_store_ti *row, dagd_sched_ti *ti) {
  *ti = (dagd_sched_ti){.state = row->state, .try_number = row->try_number, .max_tries = row->max_tries,
                        .next_try_at = row->next_try_at};
}

void dagd__cache_tis(const run_cache *c, dagd_sched_ti *tis) {
  for (size_t t = 0; t < c->dag->n_tasks; t++) dagd__cache_ti(c->row_of[t], &tis[t]);
}

int dagd_engine_verify(dagd_engine *e, dagd_err *err) {
  if (e->cache == NULL) return 0;
  for (size_t b = 0; b < ENGINE_CACHE_BUCKETS; b++) {
    for (run_cache *c = e->cache[b]; c; c = c->next) {
      const dagd_dag *dag = c->dag;
      dagd_sched_ti *tis = dagd_calloc(dag->n_tasks ? dag->n_tasks : 1, sizeof(*tis));
      dagd__cache_tis(c, tis);
      double wake;
      dagd_run_state st = dagd_sched_evaluate(dag, tis, e->last_pass, &wake);
      long missed = -1;
      for (size_t t = 0; t < dag->n_tasks && missed < 0; t++)
        if (tis[t].changed) missed = (long)t;
      int rc = 0;
      if (missed >= 0)
        rc = dagd_err_set(err, DAGD_EINVAL, "run %lld: the full evaluation moves %s to %s, the pass left it %s",
                          (long long)c->pk, dag->tasks[missed]->id, dagd_ti_state_name(tis[missed].state),
                          dagd_ti_state_name(c->row_of[missed]->state));
      else if (st != DAGD_RUN_RUNNING)
        rc = dagd_err_set(err, DAGD_EINVAL, "run %lld: the full evaluation ends it %s, the pass kept it running",
                          (long long)c->pk, dagd_run_state_name(st));
      free(tis);
      if (rc) return rc;
    }
  }
  return 0;
}
