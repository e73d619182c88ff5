/* Handlers for runs and task instances: trigger, list, get (with a long
 * poll for --wait), mark, clear (with downstream), and task logs (with a
 * byte offset and a long poll for following).
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dagd/time.h"
#include "internal.h"

json_t *dagd__api_run_json(const dagd_store_run *r) {
  json_t *conf = json_loads(r->conf ? r->conf : "{}", 0, NULL);
  if (conf == NULL) conf = json_object();
  json_t *j = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o}", "dag_id", r->dag_id,
                        "dag_run_id", r->run_id, "run_type", dagd_run_type_name(r->run_type), "logical_date",
                        dagd__api_time((double)r->logical_date), "data_interval_start",
                        r->has_interval ? dagd__api_time((double)r->interval_start) : json_null(),
                        "data_interval_end", r->has_interval ? dagd__api_time((double)r->interval_end) : json_null(),
                        "state", dagd_run_state_name(r->state), "conf", conf, "start_date",
                        dagd__api_time(r->start_date), "end_date", dagd__api_time(r->end_date), "queued_at",
                        dagd__api_time(r->queued_at));
  if (r->backfill_id) json_object_set_new(j, "backfill_id", json_integer(r->backfill_id));
  if (r->event_id) json_object_set_new(j, "event_id", json_integer(r->event_id));
  return j;
}

/* How far past the clock a generated run id may step to find a free one:
 * one step per run already made in the same microsecond, so a millisecond
 * is far more than any burst, and bounds the failed inserts on the loop. */
#define RUN_ID_MAX_STEPS 1000

/* Airflow 3's id for a run started now: "manual__2026-12-02T14:18:50.123456+00:00". */
static void run_id_at(dagd_run_type type, int64_t usec, char *out, size_t n) {
  char ts[DAGD_TIME_USEC_LEN];
  dagd_time_format_offset_usec(usec, 0, ts);
  snprintf(out, n, "%s__%s", dagd_run_type_name(type), ts);
}

int dagd__api_create_run(dagd_api *api, const dagd_dag *dag, dagd_run_type type, int64_t logical_date,
                         const char *run_id, const json_t *conf, int64_t event_id, double now, dagd_store_run *out,
                         dagd_err *err) {
  char id[96];
  int64_t usec = dagd_time_usec(now);
  char *conf_text = json_dumps(conf, DAGD_API_DUMP);
  dagd_store_run run = {
      .dag_id = (char *)dag->id, .run_id = run_id ? (char *)run_id : id, .run_type = type,
      .logical_date = logical_date, .has_interval = true, .interval_start = logical_date,
      .interval_end = logical_date, .conf = conf_text, .state = DAGD_RUN_QUEUED, .queued_at = now,
      .event_id = event_id};
  int rc;
  for (int step = 0;; step++) {
    if (run_id == NULL) run_id_at(type, usec + step, id, sizeof(id));
    dagd_err attempt;
    dagd_err_init(&attempt);
    run.pk = 0;
    rc = dagd_store_run_create(api->store, dag, &run, &attempt);
    /* A generated id that is taken (a run made in the same microsecond, or
     * a client's id of that shape) steps to the next microsecond: the
     * failed insert wrote nothing (pk unset), the transaction goes on. */
    bool taken = rc == DAGD_EEXIST && run.pk == 0;
    if (run_id == NULL && taken && step < RUN_ID_MAX_STEPS) continue;
    if (run_id == NULL && taken)
      rc = dagd_err_set(err, DAGD_ELIMIT, "DAG \"%s\": no free run id in %d microseconds up to %s, retry",
                        dag->id, RUN_ID_MAX_STEPS + 1, id);
    else if (rc != 0 && err != NULL && !dagd_err_is_set(err))
      *err = attempt;
    break;
  }
  if (rc == 0) {
    *out = run;
    out->dag_id = dagd_strdup(dag->id);
    out->run_id = dagd_strdup(run.run_id);
    out->conf = conf_text;
    conf_text = NULL;
  }
  free(conf_text);
  return rc;
}

int dagd__api_runs_post(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  const dagd_dag *dag = dagd__api_dag(api, req->params[0], resp);
  if (dag == NULL) return resp->status;
  json_t *body;
  if (dagd__api_body(req, resp, &body) != 0) return resp->status;
  json_t *conf = json_object_get(body, "conf");
  json_t *jdate = json_object_get(body, "logical_date");
  json_t *jid = json_object_get(body, "dag_run_id");
  int64_t logical = (int64_t)req->now;
  const char *run_id = NULL;
  int status = 0;
  if (conf != NULL && !json_is_object(conf) && !json_is_null(conf)) {
    status = dagd__api_error(resp, 400, "conf must be a JSON object");
    goto out;
  }
  if (jdate != NULL && !json_is_null(jdate)) {
    int has_offset;
    dagd_err perr;
    dagd_err_init(&perr);
    if (!json_is_string(jdate) || dagd_time_parse(json_string_value(jdate), &logical, &has_offset, &perr) < 0 ||
        !has_offset) {
      status = dagd__api_error(resp, 400, "logical_date must be an RFC 3339 time with a zone, e.g. 2026-01-01T00:00:00Z");
      goto out;
    }
  }
  if (jid != NULL && !json_is_null(jid)) {
    run_id = json_string_value(jid);
    const char *why = run_id ? dagd_id_problem(run_id, true) : "must be a string";
    if (why != NULL) {
      status = dagd__api_error(resp, 400, "dag_run_id %s", why);
      goto out;
    }
  }
  dagd_err err;
  dagd_err_init(&err);
  dagd_store_run run = {0};
  json_t *empty = json_object();
  int rc = dagd_store_begin_durable(api->store, &err);
  if (rc == 0) rc = dagd__api_create_run(api, dag, DAGD_RUN_MANUAL, logical, run_id, json_is_object(conf) ? conf : empty,
                                         0, req->now, &run, &err);
  json_decref(empty);
  if (rc == 0) rc = dagd_store_commit_durable(api->store, &err);
  if (rc != 0) {
    dagd_store_rollback(api->store);
    /* Only a client's own id can conflict: a generated one steps past. */
    status = rc == DAGD_EEXIST && run_id != NULL ? dagd__api_error(resp, 409, "%s", err.msg)
                                                 : dagd__api_store_error(resp, &err);
    goto out;
  }
  if (api->hooks.changed) api->hooks.changed(api->hooks.data, dag->id);
  status = dagd__api_json(resp, 200, dagd__api_run_json(&run));
  dagd_store_run_clear(&run);
out:
  json_decref(body);
  return status;
}

int dagd__api_runs_list(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  const dagd_dag *dag = dagd__api_dag(api, req->params[0], resp);
  if (dag == NULL) return resp->status;
  int64_t limit, offset;
  if (dagd__api_query_int(req, resp, "limit", 100, 1, 10000, &limit) < 0 ||
      dagd__api_query_int(req, resp, "offset", 0, 0, INT64_MAX, &offset) < 0)
    return resp->status;
  char *state = dagd__api_query(req, "state");
  dagd_run_state st = DAGD_RUN_QUEUED;
  if (state && dagd_run_state_parse(state, &st) < 0) {
    dagd__api_error(resp, 400, "state must be queued, running, success or failed");
    free(state);
    return resp->status;
  }
  dagd_store_run_list l;
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_store_run_list_dag(api->store, dag->id, state ? (int)st : -1, limit, offset, &l, &err);
  free(state);
  if (rc < 0) return dagd__api_store_error(resp, &err);
  json_t *runs = json_array();
  for (size_t i = 0; i < l.n; i++) json_array_append_new(runs, dagd__api_run_json(&l.runs[i]));
  json_t *doc = json_pack("{s:o, s:I}", "dag_runs", runs, "total_entries", (json_int_t)l.total);
  dagd_store_run_list_clear(&l);
  return dagd__api_json(resp, 200, doc);
}

/* The run of the path's (dag_id, run_id), or a 404. */
static int find_run(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp, dagd_store_run *run) {
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_store_run_get(api->store, req->params[0], req->params[1], run, &err);
  if (rc == DAGD_ENOENT) return dagd__api_error(resp, 404, "no run \"%.250s\" of DAG \"%.250s\"", req->params[1],
                                                 req->params[0]);
  if (rc < 0) return dagd__api_store_error(resp, &err);
  return 0;
}

int dagd__api_run_get(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  int64_t wait;
  if (dagd__api_query_int(req, resp, "wait", 0, 0, 3600, &wait) < 0) return resp->status;
  dagd_store_run run;
  if (find_run(api, req, resp, &run) != 0) return resp->status;
  dagd__api_json(resp, 200, dagd__api_run_json(&run));
  /* ?wait=N: hold the answer until the run ends (or N seconds pass). */
  if (wait > 0 && !req->no_wait && (run.state == DAGD_RUN_QUEUED || run.state == DAGD_RUN_RUNNING)) {
    resp->wait_run_pk = run.pk;
    resp->wait_until = req->now + (double)wait;
  }
  dagd_store_run_clear(&run);
  return resp->status;
}

static json_t *ti_json(const dagd_dag *dag, const dagd_store_ti *ti, json_t *outputs) {
  const dagd_task *task = dag ? dagd_dag_find_task(dag, ti->task_id) : NULL;
  double end = ti->end_date, start = ti->start_date;
  json_t *dur = start > 0 && end >= start ? json_real(end - start) : json_null();
  json_t *outs = json_object_get(outputs, ti->task_id);
  return json_pack("{s:s, s:s, s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:s?, s:s, s:I, s:o}", "task_id", ti->task_id,
                   "state", dagd_ti_state_name(ti->state), "try_number", ti->try_number, "max_tries", ti->max_tries,
                   "start_date", dagd__api_time(start), "end_date", dagd__api_time(end), "duration", dur,
                   "exit_code", ti->has_exit_code ? json_integer(ti->exit_code) : json_null(), "outputs",
                   outs ? json_incref(outs) : json_object(), "operator", task ? dagd_op_name(task->op) : NULL, "pool",
                   ti->pool ? ti->pool : "default", "priority_weight", (json_int_t)ti->priority_weight,
                   "next_try_at", dagd__api_time(ti->next_try_at));
}

/* Appends the page's task instances: the pos-th of the whole list goes in
 * when it falls in [offset, offset + limit), so rows outside the page cost
 * no JSON. */
typedef struct ti_page {
  json_t *tis;
  int64_t pos, offset, limit;
} ti_page;

static void page_add(ti_page *p, const dagd_dag *dag, const dagd_store_ti *ti, json_t *outputs) {
  if (p->pos >= p->offset && p->pos - p->offset < p->limit) json_array_append_new(p->tis, ti_json(dag, ti, outputs));
  p->pos++;
}

int dagd__api_tis_list(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  ti_page page = {0};
  if (dagd__api_query_int(req, resp, "limit", INT64_MAX, 1, INT64_MAX, &page.limit) < 0 ||
      dagd__api_query_int(req, resp, "offset", 0, 0, INT64_MAX, &page.offset) < 0)
    return resp->status;
  dagd_store_run run;
  if (find_run(api, req, resp, &run) != 0) return resp->status;
  const dagd_dag *dag = api->hooks.find_dag ? api->hooks.find_dag(api->hooks.data, run.dag_id) : NULL;
  dagd_store_ti_list l;
  dagd_err err;
  dagd_err_init(&err);
  char *outputs_text = NULL;
  if (dagd_store_ti_list_run(api->store, run.pk, &l, &err) < 0 ||
      dagd_store_output_json(api->store, run.pk, &outputs_text, &err) < 0) {
    dagd_store_run_clear(&run);
    return dagd__api_store_error(resp, &err);
  }
  dagd_buf masked;
  dagd_buf_init(&masked);
  dagd_buf_puts(&masked, outputs_text);
  dagd_api_mask(api, &masked);
  json_t *outputs = json_loads(masked.data, 0, NULL);
  dagd_buf_close(&masked);
  page.tis = json_array();
  /* In the DAG's topological order when it is loaded, else by id; tasks
   * the DAG no longer has come last. Linear in the run's size: a run of
   * 10,000 tasks must not cost 10,000^2 comparisons on the loop. */
  if (dag) {
    size_t *ti_of = dagd_calloc(dag->n_tasks ? dag->n_tasks : 1, sizeof(*ti_of)); /* ti index + 1, 0 = none */
    for (size_t i = 0; i < l.n; i++) {
      long t = dagd_dag_task_index(dag, l.tis[i].task_id);
      if (t >= 0) ti_of[t] = i + 1;
    }
    for (size_t k = 0; k < dag->n_tasks; k++) {
      size_t i = ti_of[dag->topo[k]];
      if (i) page_add(&page, dag, &l.tis[i - 1], outputs);
    }
    free(ti_of);
    for (size_t i = 0; i < l.n; i++)
      if (dagd_dag_task_index(dag, l.tis[i].task_id) < 0) page_add(&page, dag, &l.tis[i], outputs);
  } else {
    for (size_t i = 0; i < l.n; i++) page_add(&page, NULL, &l.tis[i], outputs);
  }
  json_t *doc = json_pack("{s:o, s:I}", "task_instances", page.tis, "total_entries", (json_int_t)l.n);
  json_decref(outputs);
  free(outputs_text);
  dagd_store_ti_list_clear(&l);
  dagd_store_run_clear(&run);
  return dagd__api_json(resp, 200, doc);
}

void dagd__api_reset_ti(dagd_store_ti *ti, const dagd_task *task) {
  ti->state = DAGD_TI_NONE;
  ti->max_tries = ti->try_number + (task ? task->retries : 0) + 1;
  ti->end_date = 0;
  ti->next_try_at = 0;
  ti->has_exit_code = false;
}

int dagd__api_end(dagd_api *api, bool dry_run, int rc, dagd_err *err) {
  if (rc == 0 && !dry_run) rc = dagd_store_commit_durable(api->store, err);
  if (rc != 0 || dry_run) dagd_store_rollback(api->store);
  return rc;
}

/* Clears the task instances `which` (by index) of one run so they run
 * again: state none, tries available again as Airflow does, and the run
 * back to queued. Running tries are stopped. */
static int clear_tis(dagd_api *api, const dagd_dag *dag, dagd_store_run *run, const bool *which,
                     bool only_failed, json_t *cleared, dagd_err *err) {
  dagd_store_ti_list l;
  int rc = dagd_store_ti_list_run(api->store, run->pk, &l, err);
  for (size_t i = 0; rc == 0 && i < l.n; i++) {
    long t = dagd_dag_task_index(dag, l.tis[i].task_id);
    if (t < 0 || !which[t]) continue;
    dagd_store_ti *ti = &l.tis[i];
    if (only_failed && ti->state != DAGD_TI_FAILED && ti->state != DAGD_TI_UPSTREAM_FAILED) continue;
    if (ti->state == DAGD_TI_RUNNING && api->hooks.kill_try) api->hooks.kill_try(api->hooks.data, run->pk, ti->task_id);
    dagd__api_reset_ti(ti, dag->tasks[t]);
    rc = dagd_store_ti_update(api->store, ti, err);
    json_array_append_new(cleared, json_pack("{s:s, s:s, s:s}", "dag_id", dag->id, "dag_run_id", run->run_id,
                                             "task_id", ti->task_id));
  }
  dagd_store_ti_list_clear(&l);
  if (rc == 0 && json_array_size(cleared) > 0 && run->state != DAGD_RUN_QUEUED && run->state != DAGD_RUN_RUNNING) {
    run->state = DAGD_RUN_QUEUED;
    rc = dagd_store_run_set_state(api->store, run->pk, DAGD_RUN_QUEUED, run->start_date, 0, err);
  }
  return rc;
}

int dagd__api_clear(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  const dagd_dag *dag = dagd__api_dag(api, req->params[0], resp);
  if (dag == NULL) return resp->status;
  json_t *body;
  if (dagd__api_body(req, resp, &body) != 0) return resp->status;
  const char *run_id = json_string_value(json_object_get(body, "dag_run_id"));
  json_t *ids = json_object_get(body, "task_ids");
  bool downstream = json_is_true(json_object_get(body, "include_downstream"));
  bool only_failed = json_is_true(json_object_get(body, "only_failed"));
  bool dry_run = json_is_true(json_object_get(body, "dry_run"));
  bool *which = dagd_calloc(dag->n_tasks + 1, sizeof(bool));
  int status = 0;
  if (run_id == NULL) {
    status = dagd__api_error(resp, 400, "dag_run_id is required");
    goto out;
  }
  if (ids != NULL && !json_is_array(ids)) {
    status = dagd__api_error(resp, 400, "task_ids must be a list of task ids");
    goto out;
  }
  if (ids == NULL || json_array_size(ids) == 0) {
    for (size_t t = 0; t < dag->n_tasks; t++) which[t] = true;
  } else {
    size_t i;
    json_t *x;
    json_array_foreach(ids, i, x) {
      long t = json_is_string(x) ? dagd_dag_task_index(dag, json_string_value(x)) : -1;
      if (t < 0) {
        status = dagd__api_error(resp, 404, "DAG \"%s\" has no task %s", dag->id,
                                 json_is_string(x) ? json_string_value(x) : "(not a string)");
        goto out;
      }
      which[t] = true;
    }
  }
  if (downstream) {
    /* The downstream closure, in topological order. */
    for (size_t k = 0; k < dag->n_tasks; k++) {
      size_t t = dag->topo[k];
      if (!which[t]) continue;
      for (size_t d = 0; d < dag->tasks[t]->n_downstream; d++) which[dag->tasks[t]->downstream[d]] = true;
    }
  }
  dagd_store_run run;
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_store_run_get(api->store, dag->id, run_id, &run, &err);
  if (rc == DAGD_ENOENT) {
    status = dagd__api_error(resp, 404, "no run \"%.250s\" of DAG \"%s\"", run_id, dag->id);
    goto out;
  }
  json_t *cleared = json_array();
  if (rc == 0) rc = dagd_store_begin_durable(api->store, &err);
  if (rc == 0) rc = clear_tis(api, dag, &run, which, only_failed, cleared, &err);
  if ((rc = dagd__api_end(api, dry_run, rc, &err)) != 0) {
    json_decref(cleared);
    status = dagd__api_store_error(resp, &err);
  } else {
    if (!dry_run && api->hooks.changed) api->hooks.changed(api->hooks.data, dag->id);
    status = dagd__api_json(resp, 200, json_pack("{s:o, s:i}", "task_instances", cleared, "total_entries",
                                                 (int)json_array_size(cleared)));
  }
  dagd_store_run_clear(&run);
out:
  free(which);
  json_decref(body);
  return status;
}

/* PATCH a task instance: {"new_state": "success" | "failed"}. */
int dagd__api_ti_patch(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  const dagd_dag *dag = dagd__api_dag(api, req->params[0], resp);
  if (dag == NULL) return resp->status;
  json_t *body;
  if (dagd__api_body(req, resp, &body) != 0) return resp->status;
  const char *ns = json_string_value(json_object_get(body, "new_state"));
  dagd_ti_state target;
  if (ns == NULL || dagd_ti_state_parse(ns, &target) < 0 || (target != DAGD_TI_SUCCESS && target != DAGD_TI_FAILED)) {
    json_decref(body);
    return dagd__api_error(resp, 400, "new_state must be success or failed");
  }
  json_decref(body);
  dagd_store_run run;
  if (find_run(api, req, resp, &run) != 0) return resp->status;
  dagd_err err;
  dagd_err_init(&err);
  dagd_store_ti ti = {0};
  int rc = dagd_store_begin_durable(api->store, &err);
  if (rc == 0) rc = dagd_store_ti_get(api->store, run.pk, req->params[2], &ti, &err);
  if (rc == DAGD_ENOENT) {
    dagd_store_rollback(api->store);
    dagd_store_run_clear(&run);
    return dagd__api_error(resp, 404, "run \"%s\" has no task \"%.250s\"", run.run_id, req->params[2]);
  }
  if (rc == 0 && ti.state == DAGD_TI_RUNNING && api->hooks.kill_try)
    api->hooks.kill_try(api->hooks.data, run.pk, ti.task_id);
  if (rc == 0) {
    ti.state = target;
    if (ti.end_date == 0) ti.end_date = req->now;
    ti.next_try_at = 0;
    rc = dagd_store_ti_update(api->store, &ti, &err);
  }
  /* A finished run whose task changed is evaluated again. */
  if (rc == 0 && run.state != DAGD_RUN_QUEUED && run.state != DAGD_RUN_RUNNING)
    rc = dagd_store_run_set_state(api->store, run.pk, DAGD_RUN_RUNNING, run.start_date, 0, &err);
  if (rc == 0) rc = dagd_store_commit_durable(api->store, &err);
  int status;
  if (rc != 0) {
    dagd_store_rollback(api->store);
    status = dagd__api_store_error(resp, &err);
  } else {
    if (api->hooks.changed) api->hooks.changed(api->hooks.data, dag->id);
    status = dagd__api_json(resp, 200, ti_json(dag, &ti, NULL));
  }
  dagd_store_ti_clear(&ti);
  dagd_store_run_clear(&run);
  return status;
}

/* PATCH a run: {"state": "success" | "failed" | "queued"} (queued clears it). */
int dagd__api_run_patch(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  const dagd_dag *dag = dagd__api_dag(api, req->params[0], resp);
  if (dag == NULL) return resp->status;
  json_t *body;
  if (dagd__api_body(req, resp, &body) != 0) return resp->status;
  const char *ns = json_string_value(json_object_get(body, "state"));
  dagd_run_state target;
  bool valid = ns != NULL && dagd_run_state_parse(ns, &target) == 0 && target != DAGD_RUN_RUNNING;
  json_decref(body);
  if (!valid) return dagd__api_error(resp, 400, "state must be success, failed or queued");
  dagd_store_run run;
  if (find_run(api, req, resp, &run) != 0) return resp->status;
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_store_begin_durable(api->store, &err);
  if (rc == 0 && target == DAGD_RUN_QUEUED) {
    bool *all = dagd_calloc(dag->n_tasks + 1, sizeof(bool));
    for (size_t t = 0; t < dag->n_tasks; t++) all[t] = true;
    json_t *cleared = json_array();
    rc = clear_tis(api, dag, &run, all, false, cleared, &err);
    json_decref(cleared);
    free(all);
  } else if (rc == 0) {
    /* Unfinished task instances take the run's new state, as in Airflow. */
    dagd_store_ti_list l;
    rc = dagd_store_ti_list_run(api->store, run.pk, &l, &err);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
      if (dagd_ti_state_finished(l.tis[i].state)) continue;
      if (l.tis[i].state == DAGD_TI_RUNNING && api->hooks.kill_try)
        api->hooks.kill_try(api->hooks.data, run.pk, l.tis[i].task_id);
      l.tis[i].state = target == DAGD_RUN_SUCCESS ? DAGD_TI_SUCCESS : DAGD_TI_FAILED;
      l.tis[i].end_date = req->now;
      rc = dagd_store_ti_update(api->store, &l.tis[i], &err);
    }
    dagd_store_ti_list_clear(&l);
    if (rc == 0) rc = dagd_store_run_set_state(api->store, run.pk, target, run.start_date ? run.start_date : req->now,
                                               req->now, &err);
  }
  if (rc == 0) rc = dagd_store_commit_durable(api->store, &err);
  int status;
  if (rc != 0) {
    dagd_store_rollback(api->store);
    status = dagd__api_store_error(resp, &err);
  } else {
    if (api->hooks.changed) api->hooks.changed(api->hooks.data, dag->id);
    dagd_store_run fresh;
    dagd_store_run_clear(&run);
    if (dagd_store_run_get(api->store, req->params[0], req->params[1], &fresh, &err) == 0) {
      status = dagd__api_json(resp, 200, dagd__api_run_json(&fresh));
      dagd_store_run_clear(&fresh);
    } else {
      status = dagd__api_store_error(resp, &err);
    }
    return status;
  }
  dagd_store_run_clear(&run);
  return status;
}

/* A try's log: JSON {"content", "offset", "next_offset", "done"}, or the
 * raw text for Accept-less clients via ?format=text. ?offset=N starts at
 * byte N; ?wait=S holds the answer until the log grows or the try ends. */
int dagd__api_ti_log(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  int64_t try_number, offset, wait;
  char *endp;
  try_number = strtoll(req->params[3], &endp, 10);
  if (*req->params[3] == '\0' || *endp != '\0' || try_number < 1 || try_number > 100000)
    return dagd__api_error(resp, 400, "the try number must be a positive integer");
  if (dagd__api_query_int(req, resp, "offset", 0, 0, INT64_MAX, &offset) < 0 ||
      dagd__api_query_int(req, resp, "wait", 0, 0, 3600, &wait) < 0)
    return resp->status;
  /* Ids in the path were checked against the id patterns, so the path
   * below cannot leave the logs folder. */
  if (!dagd_id_valid(req->params[0]) || !dagd_run_id_valid(req->params[1]) || !dagd_id_valid(req->params[2]))
    return dagd__api_error(resp, 400, "bad id in the path");
  dagd_store_run run;
  if (find_run(api, req, resp, &run) != 0) return resp->status;
  dagd_store_ti ti = {0};
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_store_ti_get(api->store, run.pk, req->params[2], &ti, &err);
  int64_t run_pk = run.pk;
  dagd_store_run_clear(&run);
  if (rc == DAGD_ENOENT) return dagd__api_error(resp, 404, "no task \"%s\" in this run", req->params[2]);
  if (rc < 0) return dagd__api_store_error(resp, &err);
  bool live = ti.state == DAGD_TI_RUNNING && ti.try_number == try_number;
  int cur_try = ti.try_number;
  dagd_store_ti_clear(&ti);
  if (try_number > cur_try) return dagd__api_error(resp, 404, "try %lld has not started", (long long)try_number);
  char *path = dagd_asprintf("%s/%s/%s/%s/%lld.log", api->logs_folder, req->params[0], req->params[1],
                             req->params[2], (long long)try_number);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  dagd_buf text;
  dagd_buf_init(&text);
  int64_t size = 0;
  if (fd >= 0) {
    struct stat sb;
    if (fstat(fd, &sb) == 0) size = sb.st_size;
    if (offset < size) {
      size_t want = (size_t)(size - offset) > api->max_log_bytes ? api->max_log_bytes : (size_t)(size - offset);
      char *chunk = dagd_malloc(want);
      ssize_t n = pread(fd, chunk, want, offset);
      if (n > 0) dagd_buf_append(&text, chunk, (size_t)n);
      free(chunk);
    }
    close(fd);
  }
  int64_t next = offset + (int64_t)text.len; /* offsets count the file's bytes, before masking */
  dagd_api_mask(api, &text);
  char *fmt = dagd__api_query(req, "format");
  bool raw = fmt && strcmp(fmt, "text") == 0;
  free(fmt);
  if (raw) {
    dagd_buf_reset(&resp->body);
    dagd_buf_append(&resp->body, text.data ? text.data : "", text.len);
    resp->status = 200;
    resp->content_type = "text/plain; charset=utf-8";
  } else {
    /* Logs are bytes; invalid UTF-8 would make the JSON invalid. */
    json_t *content = json_stringn(text.data ? text.data : "", text.len);
    if (content == NULL) content = json_string("(this part of the log is not UTF-8 text: use ?format=text)");
    dagd__api_json(resp, 200, json_pack("{s:o, s:I, s:I, s:b}", "content", content, "offset", (json_int_t)offset,
                                        "next_offset", (json_int_t)next, "done", !live));
  }
  if (wait > 0 && !req->no_wait && live && text.len == 0) {
    /* Woken by the log growing or by the try ending. */
    resp->wait_log = path;
    path = NULL;
    resp->wait_run_pk = run_pk;
    resp->wait_until = req->now + (double)wait;
  }
  free(path);
  dagd_buf_close(&text);
  return resp->status;
}
