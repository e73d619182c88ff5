/* Handlers for health, metrics and DAGs: list, get, pause/unpause.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "dagd/cron.h"
#include "dagd/tz.h"
#include "internal.h"

int dagd__api_health(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  double age = api->hooks.heartbeat_age ? api->hooks.heartbeat_age(api->hooks.data) : 0;
  /* A loop that has not beaten for 30 s is stuck: say so with a 503 so
   * that a liveness probe restarts it. */
  bool ok = age < 30;
  /* A busy store is not a dead daemon: it stays 200, and says so. */
  bool busy = api->hooks.store_busy && api->hooks.store_busy(api->hooks.data);
  return dagd__api_json(resp, ok ? 200 : 503,
                        json_pack("{s:s, s:{s:f}, s:s}", "status", ok ? "ok" : "stuck", "scheduler",
                                  "heartbeat_age_seconds", age, "store", busy ? "busy" : "ok"));
}

int dagd__api_metrics(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  dagd_buf *b = &resp->body;
  dagd_buf_reset(b);
  const dagd_dagbag *bag = api->hooks.bag ? api->hooks.bag(api->hooks.data) : NULL;
  dagd_buf_printf(b,
                  "# HELP dagd_dags Loaded DAGs.\n# TYPE dagd_dags gauge\ndagd_dags %zu\n"
                  "# HELP dagd_dag_parse_errors DAG files that failed to load.\n"
                  "# TYPE dagd_dag_parse_errors gauge\ndagd_dag_parse_errors %zu\n",
                  bag ? bag->n_dags : 0, bag ? bag->n_errors : 0);
  dagd_buf_printf(b,
                  "# HELP dagd_webhook_events_total Webhook and event deliveries by outcome.\n"
                  "# TYPE dagd_webhook_events_total counter\n"
                  "dagd_webhook_events_total{outcome=\"accepted\"} %llu\n"
                  "dagd_webhook_events_total{outcome=\"duplicate\"} %llu\n"
                  "dagd_webhook_events_total{outcome=\"rejected\"} %llu\n",
                  (unsigned long long)api->events_received, (unsigned long long)api->events_duplicate,
                  (unsigned long long)api->events_rejected);
  if (api->hooks.metrics) api->hooks.metrics(api->hooks.data, b);
  resp->status = 200;
  resp->content_type = "text/plain; version=0.0.4";
  return 200;
}

static json_t *strv_json(char *const *v, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(v[i]));
  return a;
}

/* Airflow's DAG shape plus what dagctl and the UI show. next_run_after
 * is what the engine's last pass recorded (dagd_sched_next_run_after);
 * a DAG paused since then has none. */
static json_t *dag_json(dagd_api *api, const dagd_dag *dag, dagd_err *err) {
  dagd_store_dag row = {0};
  bool known = dagd_store_dag_get(api->store, dag->id, &row, err) == 0;
  dagd_store_run last = {0};
  bool has_last = dagd_store_run_get_latest(api->store, dag->id, &last, err) == 0;
  json_t *sched = dag->schedule ? json_string(dagd_cron_text(dag->schedule)) : json_null();
  char *words = dag->schedule ? dagd_cron_describe(dag->schedule) : NULL;
  json_t *j = json_pack("{s:s, s:b, s:o, s:s?, s:s, s:o, s:o, s:s, s:s?, s:o, s:o, s:i, s:o}",
                        "dag_id", dag->id, "is_paused", known && row.is_paused, "schedule", sched,
                        "schedule_description", words, "timezone", dagd_tz_name(dag->tz), "next_run_after",
                        known && row.has_next_run && !row.is_paused ? dagd__api_time((double)row.next_run_after) : json_null(),
                        "tags", strv_json(dag->tags, dag->n_tags), "fileloc", dag->fileloc ? dag->fileloc : "",
                        "description", dag->description, "on_event", strv_json(dag->on_event, dag->n_on_event),
                        "last_run_state", has_last ? json_string(dagd_run_state_name(last.state)) : json_null(),
                        "tasks", (int)dag->n_tasks, "catchup", json_boolean(dag->catchup));
  json_object_set_new(j, "is_active", json_true());
  free(words);
  dagd_store_dag_clear(&row);
  dagd_store_run_clear(&last);
  return j;
}

/* A DAG the store knows that is not loaded (its file was removed or no
 * longer loads): what the store keeps of it, "is_active": false as in
 * Airflow, and nulls for what only the model knows. Its runs stay
 * readable and controllable. */
static json_t *inactive_dag_json(dagd_api *api, const char *dag_id, dagd_err *err) {
  dagd_store_dag row = {0};
  int rc = dagd_store_dag_get(api->store, dag_id, &row, err);
  if (rc == DAGD_ENOENT) dagd_err_set(err, DAGD_ENOENT, "no DAG \"%s\"", dag_id);
  if (rc < 0) return NULL;
  dagd_store_run last = {0};
  bool has_last = dagd_store_run_get_latest(api->store, dag_id, &last, err) == 0;
  json_t *j = json_pack("{s:s, s:b, s:b, s:n, s:n, s:n, s:n, s:[], s:s, s:n, s:[], s:o, s:i, s:n}", "dag_id", dag_id,
                        "is_active", false, "is_paused", row.is_paused, "schedule", "schedule_description", "timezone",
                        "next_run_after", "tags", "fileloc", row.fileloc ? row.fileloc : "", "description", "on_event",
                        "last_run_state", has_last ? json_string(dagd_run_state_name(last.state)) : json_null(),
                        "tasks", 0, "catchup");
  dagd_store_dag_clear(&row);
  dagd_store_run_clear(&last);
  return j;
}

static int dag_id_cmp(const void *a, const void *b) {
  return strcmp((*(const dagd_dag *const *)a)->id, (*(const dagd_dag *const *)b)->id);
}

static bool has_any_tag(const dagd_dag *dag, char **tags, size_t n) {
  for (size_t k = 0; k < n; k++)
    for (size_t t = 0; t < dag->n_tags; t++)
      if (strcmp(dag->tags[t], tags[k]) == 0) return true;
  return false;
}

/* The loaded DAGs: ?tags= (repeat it: a DAG with any of them, as in
 * Airflow), ?order_by=dag_id or -dag_id (the one field Airflow allows;
 * default: the order the files load in), ?limit=, ?offset=. */
int dagd__api_dags_list(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  int64_t limit, offset;
  if (dagd__api_query_int(req, resp, "limit", 100, 1, 10000, &limit) < 0 ||
      dagd__api_query_int(req, resp, "offset", 0, 0, INT64_MAX, &offset) < 0)
    return resp->status;
  char *order = dagd__api_query(req, "order_by");
  bool sorted = order != NULL, descending = order && order[0] == '-';
  if (order && strcmp(descending ? order + 1 : order, "dag_id") != 0) {
    dagd__api_error(resp, 400, "order_by: cannot order DAGs by \"%.100s\"; the field is dag_id (-dag_id for descending)",
                    descending ? order + 1 : order);
    free(order);
    return resp->status;
  }
  free(order);
  size_t n_tags;
  char **tags = dagd__api_query_all(req, "tags", &n_tags);
  const dagd_dagbag *bag = api->hooks.bag ? api->hooks.bag(api->hooks.data) : NULL;
  const dagd_dag **match = dagd_calloc(bag && bag->n_dags ? bag->n_dags : 1, sizeof(*match));
  size_t n = 0;
  for (size_t i = 0; bag && i < bag->n_dags; i++) {
    const dagd_dag *dag = bag->dags[i];
    if (dag != NULL && (n_tags == 0 || has_any_tag(dag, tags, n_tags))) match[n++] = dag;
  }
  dagd__api_strv_free(tags, n_tags);
  if (sorted) qsort(match, n, sizeof(*match), dag_id_cmp);
  json_t *list = json_array(), *errors = json_array();
  dagd_err err;
  dagd_err_init(&err);
  for (int64_t k = offset; k < (int64_t)n && (int64_t)json_array_size(list) < limit; k++)
    json_array_append_new(list, dag_json(api, match[descending ? (int64_t)n - 1 - k : k], &err));
  free(match);
  for (size_t i = 0; bag && i < bag->n_errors; i++)
    json_array_append_new(errors, json_pack("{s:s, s:i, s:s}", "file", bag->errors[i].file, "line",
                                            bag->errors[i].line, "message", bag->errors[i].message));
  if (dagd_err_is_set(&err)) {
    json_decref(list);
    json_decref(errors);
    return dagd__api_store_error(resp, &err);
  }
  return dagd__api_json(resp, 200, json_pack("{s:o, s:I, s:o}", "dags", list, "total_entries", (json_int_t)n,
                                             "import_errors", errors));
}

int dagd__api_dag_get(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  const dagd_dag *dag;
  if (dagd__api_dag_known(api, req->params[0], resp, &dag) != 0) return resp->status;
  dagd_err err;
  dagd_err_init(&err);
  json_t *j = dag ? dag_json(api, dag, &err) : inactive_dag_json(api, req->params[0], &err);
  if (dagd_err_is_set(&err)) {
    json_decref(j);
    return dagd__api_store_error(resp, &err);
  }
  return dagd__api_json(resp, 200, j);
}

int dagd__api_dag_patch(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  const dagd_dag *dag = dagd__api_dag(api, req->params[0], resp);
  if (dag == NULL) return resp->status;
  json_t *body;
  if (dagd__api_body(req, resp, &body) != 0) return resp->status;
  json_t *p = json_object_get(body, "is_paused");
  if (!json_is_boolean(p)) {
    json_decref(body);
    return dagd__api_error(resp, 400, "is_paused must be true or false");
  }
  bool paused = json_is_true(p);
  json_decref(body);
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_store_begin_durable(api->store, &err) < 0 || dagd_store_dag_set_paused(api->store, dag->id, paused, &err) < 0 ||
      dagd_store_commit_durable(api->store, &err) < 0) {
    dagd_store_rollback(api->store);
    return dagd__api_store_error(resp, &err);
  }
  if (api->hooks.paused) api->hooks.paused(api->hooks.data, dag->id, paused);
  json_t *j = dag_json(api, dag, &err);
  return dagd__api_json(resp, 200, j);
}

/* Airflow's GET /dags/{dag_id}/tasks: each task with its edges, in
 * topological order, for graphs and grids. */
int dagd__api_dag_tasks(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  const dagd_dag *dag = dagd__api_dag(api, req->params[0], resp);
  if (dag == NULL) return resp->status;
  json_t *list = json_array();
  for (size_t k = 0; k < dag->n_tasks; k++) {
    const dagd_task *t = dag->tasks[dag->topo[k]];
    json_t *up = json_array(), *down = json_array();
    for (size_t i = 0; i < t->n_upstream; i++) json_array_append_new(up, json_string(dag->tasks[t->upstream[i]]->id));
    for (size_t i = 0; i < t->n_downstream; i++)
      json_array_append_new(down, json_string(dag->tasks[t->downstream[i]]->id));
    json_array_append_new(list, json_pack("{s:s, s:s, s:o, s:o, s:s, s:i, s:i, s:s, s:I, s:i}", "task_id", t->id,
                                          "operator", dagd_op_name(t->op), "upstream_task_ids", up,
                                          "downstream_task_ids", down, "trigger_rule",
                                          dagd_trigger_rule_name(t->trigger_rule), "retries", t->retries,
                                          "execution_timeout", (int)t->execution_timeout, "pool",
                                          t->pool ? t->pool : "default", "priority_weight", (json_int_t)t->weight,
                                          "line", t->line));
  }
  return dagd__api_json(resp, 200, json_pack("{s:o, s:i}", "tasks", list, "total_entries", (int)dag->n_tasks));
}
