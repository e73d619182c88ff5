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

#include "dagd/layout.h"
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
  dagd_interval empty = {logical_date, logical_date, logical_date};
  return dagd__api_create_run_in(api, dag, type, logical_date, &empty, run_id, conf, event_id, now, out, err);
}

int dagd__api_create_run_in(dagd_api *api, const dagd_dag *dag, dagd_run_type type, int64_t logical_date,
                            const dagd_interval *interval, const char *run_id, const json_t *conf, int64_t event_id,
                            double now, dagd_store_run *out, dagd_err *err) {
  char id[96];
  int64_t usec = dagd_time_usec(now);
  char *conf_text = json_dumps(conf, DAGD_API_DUMP);
  size_t conf_len = conf_text ? strlen(conf_text) : 0;
  if (api->max_conf_size > 0 && conf_len > api->max_conf_size) {
    free(conf_text);
    return dagd_err_set(err, DAGD_ETOOBIG,
                        "the run's conf is %zu bytes, more than max_conf_size (%zu bytes) allows: "
                        "send less, or raise max_conf_size in the config",
                        conf_len, api->max_conf_size);
  }
  dagd_store_run run = {
      .dag_id = (char *)dag->id, .run_id = run_id ? (char *)run_id : id, .run_type = type,
      .logical_date = logical_date, .has_interval = true, .interval_start = interval->start,
      .interval_end = interval->end, .conf = conf_text, .state = DAGD_RUN_QUEUED, .queued_at = now,
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

/* A time field of a trigger body: RFC 3339, or a date or wall time
 * without an offset read in the DAG's zone (as backfill takes them). */
static int body_time(const dagd_dag *dag, const json_t *body, const char *name, bool *given, int64_t *out,
                     dagd_api_response *resp) {
  json_t *v = json_object_get(body, name);
  *given = v != NULL && !json_is_null(v);
  if (!*given) return 0;
  if (!json_is_string(v) || dagd__api_parse_time(dag, json_string_value(v), out) < 0)
    return dagd__api_error(resp, 400,
                           "%s must be a date or time: RFC 3339 (2026-10-01T07:30:00Z), or YYYY-MM-DD[THH:MM[:SS]] "
                           "in the DAG's zone",
                           name);
  return 0;
}

/* Airflow's trigger: {"conf", "dag_run_id", "logical_date" (or its older
 * name "execution_date"), "data_interval_start", "data_interval_end"}.
 * The logical date defaults to now; the data interval to the one the
 * schedule implies for a manual run (dagd_dag_manual_interval). Any other
 * field is refused, never ignored. */
int dagd__api_runs_post(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  const dagd_dag *dag = dagd__api_dag(api, req->params[0], resp);
  if (dag == NULL) return resp->status;
  json_t *body;
  if (dagd__api_body(req, resp, &body) != 0) return resp->status;
  json_t *conf = json_object_get(body, "conf");
  json_t *jid = json_object_get(body, "dag_run_id");
  int64_t logical = (int64_t)req->now, exec_date = 0;
  bool has_logical = false, has_exec = false, has_start = false, has_end = false;
  dagd_interval iv;
  const char *run_id = NULL;
  int status = 0;
  if (dagd__api_body_fields(resp, body,
                            "conf dag_run_id logical_date execution_date data_interval_start data_interval_end") != 0 ||
      body_time(dag, body, "logical_date", &has_logical, &logical, resp) != 0 ||
      body_time(dag, body, "execution_date", &has_exec, &exec_date, resp) != 0 ||
      body_time(dag, body, "data_interval_start", &has_start, &iv.start, resp) != 0 ||
      body_time(dag, body, "data_interval_end", &has_end, &iv.end, resp) != 0) {
    status = resp->status;
    goto out;
  }
  if (conf != NULL && !json_is_object(conf) && !json_is_null(conf)) {
    status = dagd__api_error(resp, 400, "conf must be a JSON object");
    goto out;
  }
  if (has_logical && has_exec && logical != exec_date) {
    status = dagd__api_error(resp, 400, "logical_date and execution_date (its older name) differ: give one");
    goto out;
  }
  if (has_exec) logical = exec_date;
  if (has_start != has_end) {
    status = dagd__api_error(resp, 400, "data_interval_start and data_interval_end go together: give both or neither");
    goto out;
  }
  if (has_start && iv.end < iv.start) {
    status = dagd__api_error(resp, 400, "data_interval_end is before data_interval_start");
    goto out;
  }
  if (!has_start) dagd_dag_manual_interval(dag, logical, &iv);
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
  if (rc == 0)
    rc = dagd__api_create_run_in(api, dag, DAGD_RUN_MANUAL, logical, &iv, run_id,
                                 json_is_object(conf) ? conf : empty, 0, req->now, &run, &err);
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

/* The fields a run list may be ordered by: Airflow's (id, state, dag_id,
 * execution_date, dag_run_id, start_date, end_date, external_trigger,
 * conf) and the newer names and columns of its v2 API. */
static const struct {
  const char *name;
  dagd_run_order order;
} run_orders[] = {
    {"id", DAGD_RUN_ORDER_ID},
    {"state", DAGD_RUN_ORDER_STATE},
    {"dag_id", DAGD_RUN_ORDER_DAG_ID},
    {"logical_date", DAGD_RUN_ORDER_LOGICAL_DATE},
    {"execution_date", DAGD_RUN_ORDER_LOGICAL_DATE},
    {"dag_run_id", DAGD_RUN_ORDER_RUN_ID},
    {"run_id", DAGD_RUN_ORDER_RUN_ID},
    {"start_date", DAGD_RUN_ORDER_START_DATE},
    {"end_date", DAGD_RUN_ORDER_END_DATE},
    {"queued_at", DAGD_RUN_ORDER_QUEUED_AT},
    {"external_trigger", DAGD_RUN_ORDER_EXTERNAL_TRIGGER},
    {"run_type", DAGD_RUN_ORDER_RUN_TYPE},
    {"conf", DAGD_RUN_ORDER_CONF},
    {"duration", DAGD_RUN_ORDER_DURATION},
};

/* ?order_by=FIELD or -FIELD (descending); absent: newest logical date first. */
static int parse_run_order(const dagd_api_request *req, dagd_api_response *resp, dagd_store_run_filter *f) {
  char *v = dagd__api_query(req, "order_by");
  f->order = DAGD_RUN_ORDER_LOGICAL_DATE;
  f->descending = true;
  if (v == NULL) return 0;
  const char *name = v[0] == '-' ? v + 1 : v;
  const char *names[DAGD_ARRAY_LEN(run_orders)];
  dagd_buf all;
  dagd_buf_init(&all);
  bool found = false;
  for (size_t i = 0; i < DAGD_ARRAY_LEN(run_orders); i++) {
    names[i] = run_orders[i].name;
    dagd_buf_printf(&all, "%s%s", i ? ", " : "", run_orders[i].name);
    if (strcmp(name, run_orders[i].name) == 0) {
      found = true;
      f->order = run_orders[i].order;
      f->descending = v[0] == '-';
    }
  }
  if (!found) {
    const char *hint = dagd_str_suggest(name, names, DAGD_ARRAY_LEN(run_orders));
    if (hint)
      dagd__api_error(resp, 400, "order_by: cannot order runs by \"%.100s\" (did you mean \"%s\"?)", name, hint);
    else
      dagd__api_error(resp, 400, "order_by: cannot order runs by \"%.100s\"; the fields are %s, each with - in front "
                      "for descending", name, all.data);
  }
  dagd_buf_close(&all);
  free(v);
  return found ? 0 : -1;
}

/* A DAG's runs: ?state= (repeat it for several: they are ORed, as in
 * Airflow), ?order_by=, ?limit=, ?offset=. The DAG may be one whose file
 * was removed: its runs stay listed. */
int dagd__api_runs_list(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  const dagd_dag *dag;
  if (dagd__api_dag_known(api, req->params[0], resp, &dag) != 0) return resp->status;
  dagd_store_run_filter f = {.dag_id = req->params[0]};
  if (dagd__api_query_int(req, resp, "limit", 100, 1, 10000, &f.limit) < 0 ||
      dagd__api_query_int(req, resp, "offset", 0, 0, INT64_MAX, &f.offset) < 0 || parse_run_order(req, resp, &f) < 0)
    return resp->status;
  size_t n;
  char **states = dagd__api_query_all(req, "state", &n);
  for (size_t i = 0; i < n; i++) {
    /* Airflow clients also send state=a,b in one value. */
    char *save = NULL;
    if (strspn(states[i], ",") == strlen(states[i])) {
      dagd__api_error(resp, 400, "state: an empty value (give queued, running, success or failed)");
      dagd__api_strv_free(states, n);
      return resp->status;
    }
    for (char *w = strtok_r(states[i], ",", &save); w; w = strtok_r(NULL, ",", &save)) {
      dagd_run_state st;
      if (dagd_run_state_parse(w, &st) < 0) {
        dagd__api_error(resp, 400, "state: \"%.100s\" is not queued, running, success or failed", w);
        dagd__api_strv_free(states, n);
        return resp->status;
      }
      f.states |= 1u << st;
    }
  }
  dagd__api_strv_free(states, n);
  dagd_store_run_list l;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_store_run_query(api->store, &f, &l, &err) < 0) return dagd__api_store_error(resp, &err);
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
      dagd_store_output_get_json(api->store, run.pk, &outputs_text, &err) < 0) {
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

/* Clears task instances of one run so they run again: state none, tries
 * available again as Airflow does, and the run back to queued. `which`
 * picks them by task index of dag, or, for a DAG that is not loaded
 * (dag NULL), by index in the run's rows in task_id order (NULL: all).
 * Running tries are stopped, unless this is a dry run. */
static int clear_tis(dagd_api *api, const dagd_dag *dag, dagd_store_run *run, const bool *which,
                     bool only_failed, bool dry_run, json_t *cleared, dagd_err *err) {
  dagd_store_ti_list l;
  int rc = dagd_store_ti_list_run(api->store, run->pk, &l, err);
  for (size_t i = 0; rc == 0 && i < l.n; i++) {
    long t = dag ? dagd_dag_task_index(dag, l.tis[i].task_id) : (long)i;
    if (t < 0 || (which && !which[t])) continue;
    dagd_store_ti *ti = &l.tis[i];
    if (only_failed && ti->state != DAGD_TI_FAILED && ti->state != DAGD_TI_UPSTREAM_FAILED) continue;
    if (!dry_run && ti->state == DAGD_TI_RUNNING && api->hooks.kill_try)
      api->hooks.kill_try(api->hooks.data, run->pk, ti->task_id);
    json_array_append_new(cleared, json_pack("{s:s, s:s, s:s, s:s}", "dag_id", run->dag_id, "dag_run_id",
                                             run->run_id, "task_id", ti->task_id, "state",
                                             dagd_ti_state_name(ti->state)));
    dagd__api_reset_ti(ti, dag ? dag->tasks[t] : NULL);
    rc = dagd_store_ti_update(api->store, ti, err);
  }
  dagd_store_ti_list_clear(&l);
  if (rc == 0 && json_array_size(cleared) > 0 && run->state != DAGD_RUN_QUEUED && run->state != DAGD_RUN_RUNNING) {
    run->state = DAGD_RUN_QUEUED;
    rc = dagd_store_run_set_state(api->store, run->pk, DAGD_RUN_QUEUED, run->start_date, 0, err);
  }
  return rc;
}

/* Airflow's clearTaskInstances: {"dag_run_id", "task_ids", "include_downstream",
 * "only_failed", "dry_run"}, where dry_run and only_failed default to true
 * as in Airflow's stable API: without "dry_run": false it only answers
 * which task instances it would clear. A DAG whose file was removed keeps
 * its runs clearable (its tasks wait until it loads again), but not with
 * include_downstream, which needs its graph. */
int dagd__api_clear(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  const dagd_dag *dag;
  if (dagd__api_dag_known(api, req->params[0], resp, &dag) != 0) return resp->status;
  json_t *body;
  if (dagd__api_body(req, resp, &body) != 0) return resp->status;
  const char *run_id = json_string_value(json_object_get(body, "dag_run_id"));
  json_t *ids = json_object_get(body, "task_ids");
  bool downstream, only_failed, dry_run;
  bool *which = NULL;
  int status = 0;
  dagd_store_run run = {0};
  dagd_store_ti_list rows = {0};
  if (dagd__api_body_fields(resp, body, "dag_run_id task_ids include_downstream only_failed dry_run") != 0 ||
      dagd__api_body_bool(resp, body, "include_downstream", false, &downstream) != 0 ||
      dagd__api_body_bool(resp, body, "only_failed", true, &only_failed) != 0 ||
      dagd__api_body_bool(resp, body, "dry_run", true, &dry_run) != 0) {
    status = resp->status;
    goto out;
  }
  if (run_id == NULL) {
    status = dagd__api_error(resp, 400, "dag_run_id is required");
    goto out;
  }
  if (ids != NULL && !json_is_null(ids) && !json_is_array(ids)) {
    status = dagd__api_error(resp, 400, "task_ids must be a list of task ids");
    goto out;
  }
  if (dag == NULL && downstream) {
    status = dagd__api_error(resp, 409, "DAG \"%s\" is not loaded (its file was removed or fails to load): "
                             "include_downstream needs its task graph", req->params[0]);
    goto out;
  }
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_store_run_get(api->store, req->params[0], run_id, &run, &err);
  if (rc == DAGD_ENOENT) {
    status = dagd__api_error(resp, 404, "no run \"%.250s\" of DAG \"%s\"", run_id, req->params[0]);
    goto out;
  }
  if (rc < 0) {
    status = dagd__api_store_error(resp, &err);
    goto out;
  }
  /* Without the model, task ids are those of the run's rows. */
  if (dag == NULL && dagd_store_ti_list_run(api->store, run.pk, &rows, &err) < 0) {
    status = dagd__api_store_error(resp, &err);
    goto out;
  }
  size_t n_which = dag ? dag->n_tasks : rows.n;
  which = dagd_calloc(n_which + 1, sizeof(bool));
  if (json_array_size(ids) == 0) {
    for (size_t t = 0; t < n_which; t++) which[t] = true;
  } else {
    size_t i;
    json_t *x;
    json_array_foreach(ids, i, x) {
      const char *id = json_string_value(x);
      long t = -1;
      if (id && dag) t = dagd_dag_task_index(dag, id);
      for (size_t k = 0; id && !dag && k < rows.n; k++)
        if (strcmp(rows.tis[k].task_id, id) == 0) t = (long)k;
      if (t < 0) {
        status = dagd__api_error(resp, 404, "DAG \"%s\" has no task %s", req->params[0], id ? id : "(not a string)");
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
  json_t *cleared = json_array();
  rc = dagd_store_begin_durable(api->store, &err);
  if (rc == 0) rc = clear_tis(api, dag, &run, which, only_failed, dry_run, cleared, &err);
  if ((rc = dagd__api_end(api, dry_run, rc, &err)) != 0) {
    json_decref(cleared);
    status = dagd__api_store_error(resp, &err);
  } else {
    if (!dry_run && api->hooks.changed) api->hooks.changed(api->hooks.data, req->params[0]);
    status = dagd__api_json(resp, 200, json_pack("{s:o, s:i, s:b}", "task_instances", cleared, "total_entries",
                                                 (int)json_array_size(cleared), "dry_run", dry_run));
  }
out:
  dagd_store_ti_list_clear(&rows);
  dagd_store_run_clear(&run);
  free(which);
  json_decref(body);
  return status;
}

/* PATCH a task instance: {"new_state": "success" | "failed", "dry_run"}.
 * dry_run defaults to true, as in Airflow's stable API (patchTaskInstance):
 * only "dry_run": false changes anything; a dry run answers the task
 * instance as it would be, with "previous_state" and the run's state
 * after ("dag_run_state"), and changes nothing, stops no try. */
int dagd__api_ti_patch(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  const dagd_dag *dag;
  if (dagd__api_dag_known(api, req->params[0], resp, &dag) != 0) return resp->status;
  json_t *body;
  if (dagd__api_body(req, resp, &body) != 0) return resp->status;
  bool dry_run;
  if (dagd__api_body_fields(resp, body, "new_state dry_run") != 0 ||
      dagd__api_body_bool(resp, body, "dry_run", true, &dry_run) != 0) {
    json_decref(body);
    return resp->status;
  }
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
  dagd_ti_state before = ti.state;
  bool kill = rc == 0 && ti.state == DAGD_TI_RUNNING;
  if (rc == 0) {
    ti.state = target;
    if (ti.end_date == 0) ti.end_date = req->now;
    ti.next_try_at = 0;
    rc = dagd_store_ti_update(api->store, &ti, &err);
  }
  /* A finished run whose task changed is evaluated again. */
  dagd_run_state run_after = run.state;
  if (rc == 0 && run.state != DAGD_RUN_QUEUED && run.state != DAGD_RUN_RUNNING) {
    run_after = DAGD_RUN_RUNNING;
    rc = dagd_store_run_set_state(api->store, run.pk, DAGD_RUN_RUNNING, run.start_date, 0, &err);
  }
  int status;
  if ((rc = dagd__api_end(api, dry_run, rc, &err)) != 0) {
    status = dagd__api_store_error(resp, &err);
  } else {
    if (!dry_run && kill && api->hooks.kill_try) api->hooks.kill_try(api->hooks.data, run.pk, ti.task_id);
    if (!dry_run && api->hooks.changed) api->hooks.changed(api->hooks.data, req->params[0]);
    json_t *j = ti_json(dag, &ti, NULL);
    json_object_set_new(j, "previous_state", json_string(dagd_ti_state_name(before)));
    json_object_set_new(j, "dag_run_state", json_string(dagd_run_state_name(run_after)));
    json_object_set_new(j, "dry_run", json_boolean(dry_run));
    status = dagd__api_json(resp, 200, j);
  }
  dagd_store_ti_clear(&ti);
  dagd_store_run_clear(&run);
  return status;
}

/* PATCH a run: {"state": "success" | "failed" | "queued"} (queued clears
 * it). Works for a DAG whose file was removed too. */
int dagd__api_run_patch(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  const dagd_dag *dag;
  if (dagd__api_dag_known(api, req->params[0], resp, &dag) != 0) return resp->status;
  json_t *body;
  if (dagd__api_body(req, resp, &body) != 0) return resp->status;
  if (dagd__api_body_fields(resp, body, "state") != 0) {
    json_decref(body);
    return resp->status;
  }
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
    json_t *cleared = json_array();
    rc = clear_tis(api, dag, &run, NULL, false, false, cleared, &err);
    json_decref(cleared);
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
    if (api->hooks.changed) api->hooks.changed(api->hooks.data, req->params[0]);
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

/* A try's log: JSON {"content", "offset", "next_offset", "size", "done"},
 * or the raw text for Accept-less clients via ?format=text. ?offset=N
 * starts at byte N; an answer holds at most max_log_bytes, and "done" is
 * true only once the try is over and the answer reaches the log's end, so
 * a long log is read piece by piece to its last byte. ?wait=S holds the
 * answer until the log grows or the try ends. */
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
  char *base = dagd_layout_try_base(api->logs_folder, req->params[0], req->params[1], req->params[2],
                                    (long long)try_number);
  char *path = dagd_asprintf("%s" DAGD_TRY_LOG_SUFFIX, base);
  free(base);
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
    dagd__api_json(resp, 200,
                   json_pack("{s:o, s:I, s:I, s:I, s:b}", "content", content, "offset", (json_int_t)offset,
                             "next_offset", (json_int_t)next, "size", (json_int_t)size, "done", !live && next >= size));
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
