/* Tries in the engine: the end of a try (its outputs, what its outcome
 * makes of the task instance, a branch's skips), the tries a restarted
 * caller re-adopts, the set of tries asked to stop at their timeout, and
 * what a try's command is built from.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "dagd/command.h"
#include "dagd/util.h"
#include "engine/internal.h"

void dagd__run_copy(dagd_store_run *dst, const dagd_store_run *src) {
  *dst = *src;
  dst->dag_id = src->dag_id ? dagd_strdup(src->dag_id) : NULL;
  dst->run_id = src->run_id ? dagd_strdup(src->run_id) : NULL;
  dst->conf = src->conf ? dagd_strdup(src->conf) : NULL;
}

static long stop_index(const dagd_engine *e, int64_t run_pk, const char *task_id, int try_number) {
  for (size_t i = 0; i < e->n_stopping; i++) {
    const stop_entry *s = &e->stopping[i];
    if (s->run_pk == run_pk && s->try_number == try_number && strcmp(s->task_id, task_id) == 0) return (long)i;
  }
  return -1;
}

/* The set holds only tries past their timeout and not yet ended: a
 * linear scan over it is short. */
bool dagd__stopping(dagd_engine *e, int64_t run_pk, const char *task_id, int try_number, bool remove) {
  long i = stop_index(e, run_pk, task_id, try_number);
  if (i < 0) return false;
  if (remove) {
    free(e->stopping[i].task_id);
    e->stopping[i] = e->stopping[--e->n_stopping];
  }
  return true;
}

void dagd__stopping_add(dagd_engine *e, int64_t run_pk, const char *task_id, int try_number) {
  if (stop_index(e, run_pk, task_id, try_number) >= 0) return;
  e->stopping = dagd_realloc(e->stopping, (e->n_stopping + 1) * sizeof(*e->stopping));
  e->stopping[e->n_stopping++] = (stop_entry){run_pk, dagd_strdup(task_id), try_number};
}

void dagd__stopping_clear(dagd_engine *e) {
  for (size_t i = 0; i < e->n_stopping; i++) free(e->stopping[i].task_id);
  free(e->stopping);
  e->stopping = NULL;
  e->n_stopping = 0;
}

/* Stores the try's outputs. *bad gets a message (heap) when they are
 * malformed or too big; only a store failure returns an error. */
static int store_outputs(dagd_engine *e, const dagd_engine_end *end, char **bad, dagd_err *err) {
  *bad = NULL;
  if (end->outputs == NULL) return 0;
  json_t *outs = NULL;
  dagd_err perr;
  dagd_err_init(&perr);
  if (dagd_command_parse_outputs(end->outputs, end->outputs_len, &outs, &perr) < 0) {
    *bad = dagd_strdup(perr.msg);
    return 0;
  }
  const char *k;
  json_t *v;
  int rc = 0;
  json_object_foreach(outs, k, v) {
    if ((rc = dagd_store_output_put(e->store, end->run_pk, end->task_id, k, json_string_value(v), err)) < 0) break;
  }
  json_decref(outs);
  return rc;
}

/* A branch that succeeded chose what follows it: the direct downstream
 * tasks it did not follow are skipped (trigger rules carry the skips
 * further). In the caller's transaction. */
static int apply_branch(dagd_engine *e, const dagd_dag *dag, const dagd_task *task, int64_t run_pk, double now,
                        dagd_err *err) {
  bool short_circuit = json_is_true(json_object_get(task->config, "short_circuit"));
  char *value = NULL;
  int rc = dagd_store_output_get(e->store, run_pk, task->id, short_circuit ? "condition" : "follow", &value, err);
  if (rc < 0 && rc != DAGD_ENOENT) return rc;
  size_t *follow = dagd_calloc(task->n_downstream + 1, sizeof(size_t));
  size_t n_follow;
  dagd_sched_branch_follow(dag, task, value, follow, &n_follow);
  free(value);
  dagd_store_ti_list l;
  if ((rc = dagd_store_ti_list_run(e->store, run_pk, &l, err)) < 0) {
    free(follow);
    return rc;
  }
  dagd_sched_ti *tis = dagd_calloc(dag->n_tasks + 1, sizeof(*tis));
  dagd_store_ti **rows = dagd_calloc(dag->n_tasks + 1, sizeof(*rows));
  for (size_t i = 0; i < l.n; i++) {
    long t = dagd_dag_task_index(dag, l.tis[i].task_id);
    if (t < 0) continue;
    rows[t] = &l.tis[i];
    tis[t].state = l.tis[i].state;
  }
  dagd_sched_branch(dag, tis, (size_t)dagd_dag_task_index(dag, task->id), follow, n_follow);
  rc = 0;
  for (size_t t = 0; rc == 0 && t < dag->n_tasks; t++) {
    if (!tis[t].changed || rows[t] == NULL) continue;
    rows[t]->state = tis[t].state;
    rows[t]->end_date = now;
    rc = dagd_store_ti_update(e->store, rows[t], err);
  }
  free(tis);
  free(rows);
  free(follow);
  dagd_store_ti_list_clear(&l);
  return rc;
}

/* The task-level callback of a try's end. A DAG's on_success and
 * on_failure are about its runs (called once, when a run ends), so only
 * the task's own are called here; a retry happens to a task only, so a
 * DAG's on_retry stands in for the task's. */
static void choose_notify(dagd_engine_ended *out) {
  const dagd_task *t = out->task;
  if (t == NULL || out->dag == NULL) return;
  switch (out->state) {
  case DAGD_TI_SUCCESS:
    out->notify = t->on_success;
    out->notify_event = "success";
    break;
  case DAGD_TI_FAILED:
    out->notify = t->on_failure;
    out->notify_event = "failure";
    break;
  case DAGD_TI_UP_FOR_RETRY:
    out->notify = t->on_retry ? t->on_retry : out->dag->on_retry;
    out->notify_event = "retry";
    break;
  default:
    break;
  }
}

/* What the try's end made of the task instance, in the open transaction. */
static int record_end(dagd_engine *e, const dagd_engine_end *end, double now, dagd_store_ti *ti,
                      dagd_engine_ended *out, dagd_err *err) {
  int rc = dagd_store_run_get_pk(e->store, end->run_pk, &out->run, err);
  if (rc == DAGD_ENOENT) return dagd_err_set(err, DAGD_ENOENT, "run #%lld is gone", (long long)end->run_pk);
  if (rc < 0) return rc;
  engine_dag *x = dagd__engine_dag(e, out->run.dag_id);
  out->dag = x ? x->dag : NULL;
  out->task = x ? dagd_dag_find_task(x->dag, end->task_id) : NULL;
  /* Outputs are kept from failed tries too (a failing gate's report);
   * only a successful try fails when they are malformed. */
  char *bad = NULL;
  rc = store_outputs(e, end, &bad, err);
  if (rc < 0) return rc;
  dagd_try_outcome o = dagd_sched_outcome(&end->result, out->timed_out);
  if (bad) {
    out->note = bad;
    if (o == DAGD_OUTCOME_SUCCESS) o = DAGD_OUTCOME_FAILURE;
  }
  out->succeeded = o == DAGD_OUTCOME_SUCCESS;
  dagd_sched_ti st = {.state = ti->state, .try_number = ti->try_number, .max_tries = ti->max_tries};
  dagd_sched_try_ended(out->task, &st, o, now, dagd__engine_jitter(e));
  ti->state = st.state;
  ti->try_number = st.try_number;
  ti->next_try_at = st.next_try_at;
  ti->end_date = end->end_date > 0 && end->end_date < now ? end->end_date : now;
  if (ti->start_date > 0 && ti->end_date < ti->start_date) ti->end_date = ti->start_date;
  ti->has_exit_code = end->result.how == DAGD_TRY_EXITED;
  ti->exit_code = ti->has_exit_code ? end->result.code : 0;
  out->state = st.state;
  if (out->task && dagd_op_kind_of(out->task->op)->chooses_downstream && st.state == DAGD_TI_SUCCESS) {
    if ((rc = apply_branch(e, out->dag, out->task, end->run_pk, now, err)) < 0) return rc;
    dagd__cache_drop(e, end->run_pk); /* rows other than this one changed */
  }
  choose_notify(out);
  if (out->notify && dagd_store_output_get_json(e->store, end->run_pk, &out->outputs, err) < 0) return err->code;
  return dagd_store_ti_update(e->store, ti, err);
}

int dagd_engine_try_end(dagd_engine *e, const dagd_engine_end *end, double now, dagd_engine_ended *out,
                        dagd_err *err) {
  memset(out, 0, sizeof(*out));
  dagd_store_ti ti = {0};
  int rc = dagd_store_begin(e->store, err);
  if (rc == 0) rc = dagd_store_ti_get(e->store, end->run_pk, end->task_id, &ti, err);
  if (rc == DAGD_ENOENT)
    rc = dagd_err_set(err, DAGD_ENOENT, "run #%lld has no task instance \"%s\"", (long long)end->run_pk,
                      end->task_id);
  if (rc == 0 && (ti.state != DAGD_TI_RUNNING || ti.try_number != end->try_number)) {
    /* Cleared or marked meanwhile: this try's end changes nothing. */
    dagd_store_rollback(e->store);
    dagd__stopping(e, end->run_pk, end->task_id, end->try_number, true);
    dagd__flight_remove(e, end->run_pk, end->task_id, end->try_number);
    dagd_store_ti_clear(&ti);
    return 0;
  }
  out->timed_out = dagd__stopping(e, end->run_pk, end->task_id, end->try_number, false);
  if (rc == 0) rc = record_end(e, end, now, &ti, out, err);
  if (rc == 0) rc = dagd_store_commit(e->store, err);
  dagd_store_ti_clear(&ti);
  if (rc != 0) {
    dagd_store_rollback(e->store);
    dagd_engine_ended_close(out);
    memset(out, 0, sizeof(*out));
    return rc;
  }
  out->current = true;
  dagd__stopping(e, end->run_pk, end->task_id, end->try_number, true);
  dagd__flight_remove(e, end->run_pk, end->task_id, end->try_number);
  return 0;
}

int dagd_engine_adopt(dagd_engine *e, dagd_engine_try **out, size_t *n, dagd_err *err) {
  *out = NULL;
  *n = 0;
  dagd_store_ti_list live;
  if (dagd_store_ti_list_live(e->store, &live, err) < 0) return err->code;
  dagd_engine_try *tries = dagd_calloc(live.n + 1, sizeof(*tries));
  size_t k = 0;
  int rc = 0;
  for (size_t i = 0; i < live.n; i++) {
    const dagd_store_ti *ti = &live.tis[i];
    dagd_engine_try *t = &tries[k];
    if ((rc = dagd_store_run_get_pk(e->store, ti->run_pk, &t->run, err)) == DAGD_ENOENT)
      rc = dagd_err_set(err, DAGD_ENOENT, "run #%lld of a live task instance is gone", (long long)ti->run_pk);
    if (rc < 0) break;
    engine_dag *x = dagd__engine_dag(e, t->run.dag_id);
    t->dag = x ? x->dag : NULL;
    t->task = x ? dagd_dag_find_task(x->dag, ti->task_id) : NULL;
    t->task_id = dagd_strdup(ti->task_id);
    t->try_number = ti->try_number;
    t->start_date = ti->start_date;
    if (t->task && t->task->execution_timeout > 0) t->deadline = ti->start_date + (double)t->task->execution_timeout;
    k++;
  }
  dagd_store_ti_list_clear(&live);
  if (rc < 0) {
    dagd_engine_tries_free(tries, k);
    return rc;
  }
  for (size_t i = 0; i < k; i++)
    dagd__flight_add(e, tries[i].run.pk, tries[i].task_id, tries[i].try_number, tries[i].run.dag_id,
                     tries[i].task ? tries[i].task->pool : NULL);
  *out = tries;
  *n = k;
  return 0;
}


int dagd_engine_try_inputs(dagd_engine *e, const dagd_engine_try *t, char **outputs, json_t **extra,
                           dagd_err *err) {
  *outputs = NULL;
  *extra = NULL;
  if (dagd_store_output_get_json(e->store, t->run.pk, outputs, err) < 0) return err->code;
  if (t->task && dagd_op_kind_of(t->task->op)->needs_baseline && t->dag)
    *extra = dagd__gate_extra(e, t->dag, t->task, t->run.pk);
  return 0;
}
