/* The parse child's answer: a loaded file's DAG models and errors as JSON
 * and back. The daemon parses DAG files in a child process (parse.c) and
 * rebuilds the models from this form, so no DAG file code ever runs in
 * the daemon itself. Every field of dagd_dag and dagd_task that the
 * loader sets travels; derived fields are computed again by finalize.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "dagd/cron.h"
#include "dagd/err.h"
#include "dagd/lua.h"
#include "dagd/tz.h"
#include "dagd/util.h"

static json_t *strv(char *const *v, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(v[i]));
  return a;
}

static void set_json(json_t *o, const char *k, const json_t *v) {
  if (v != NULL) json_object_set_new(o, k, json_deep_copy(v));
}

static void set_str(json_t *o, const char *k, const char *v) {
  if (v != NULL) json_object_set_new(o, k, json_string(v));
}

static json_t *task_to_wire(const dagd_dag *dag, const dagd_task *t) {
  json_t *o = json_object();
  json_object_set_new(o, "id", json_string(t->id));
  json_object_set_new(o, "op", json_string(dagd_op_name(t->op)));
  json_object_set_new(o, "line", json_integer(t->line));
  json_object_set_new(o, "retries", json_integer(t->retries));
  json_object_set_new(o, "retry_delay", json_integer(t->retry_delay));
  json_object_set_new(o, "retry_exponential_backoff", json_boolean(t->retry_exponential_backoff));
  json_object_set_new(o, "max_retry_delay", json_integer(t->max_retry_delay));
  json_object_set_new(o, "execution_timeout", json_integer(t->execution_timeout));
  json_object_set_new(o, "sla", json_integer(t->sla));
  json_object_set_new(o, "trigger_rule", json_string(dagd_trigger_rule_name(t->trigger_rule)));
  set_str(o, "pool", t->pool);
  json_object_set_new(o, "priority_weight", json_integer(t->priority_weight));
  json_t *env = json_array();
  for (size_t i = 0; i < t->n_env; i++)
    json_array_append_new(env, json_pack("[ss]", t->env[i].key, t->env[i].value ? t->env[i].value : ""));
  json_object_set_new(o, "env", env);
  json_object_set_new(o, "env_clear", json_boolean(t->env_clear));
  set_str(o, "cwd", t->cwd);
  json_object_set_new(o, "outputs", strv(t->outputs, t->n_outputs));
  set_json(o, "on_failure", t->on_failure);
  set_json(o, "on_success", t->on_success);
  set_json(o, "on_retry", t->on_retry);
  set_str(o, "doc", t->doc);
  set_json(o, "config", t->config);
  /* Edges as the file declared them (ids and lines), or from a finalized
   * DAG's indices. */
  json_t *deps = json_array();
  if (t->n_deps > 0) {
    for (size_t i = 0; i < t->n_deps; i++) json_array_append_new(deps, json_pack("[si]", t->dep_ids[i], t->dep_lines[i]));
  } else {
    for (size_t i = 0; i < t->n_upstream; i++)
      json_array_append_new(deps, json_pack("[si]", dag->tasks[t->upstream[i]]->id, t->line));
  }
  json_object_set_new(o, "deps", deps);
  return o;
}

json_t *dagd_dag_to_wire(const dagd_dag *dag) {
  json_t *o = json_object();
  json_object_set_new(o, "id", json_string(dag->id));
  set_str(o, "fileloc", dag->fileloc);
  json_object_set_new(o, "line", json_integer(dag->line));
  set_str(o, "description", dag->description);
  if (dag->schedule) json_object_set_new(o, "schedule", json_string(dagd_cron_text(dag->schedule)));
  json_object_set_new(o, "timezone", json_string(dagd_tz_name(dag->tz)));
  if (dag->has_start_date) json_object_set_new(o, "start_date", json_integer(dag->start_date));
  if (dag->has_end_date) json_object_set_new(o, "end_date", json_integer(dag->end_date));
  json_object_set_new(o, "catchup", json_boolean(dag->catchup));
  json_object_set_new(o, "is_paused_upon_creation", json_boolean(dag->is_paused_upon_creation));
  json_object_set_new(o, "max_active_runs", json_integer(dag->max_active_runs));
  json_object_set_new(o, "max_active_tasks", json_integer(dag->max_active_tasks));
  json_object_set_new(o, "on_event", strv(dag->on_event, dag->n_on_event));
  json_object_set_new(o, "event_cooldown", json_integer(dag->event_cooldown));
  json_object_set_new(o, "dagrun_timeout", json_integer(dag->dagrun_timeout));
  set_json(o, "params", dag->params);
  json_object_set_new(o, "tags", strv(dag->tags, dag->n_tags));
  set_json(o, "on_failure", dag->on_failure);
  set_json(o, "on_success", dag->on_success);
  set_json(o, "on_retry", dag->on_retry);
  json_t *tasks = json_array();
  for (size_t i = 0; i < dag->n_tasks; i++) json_array_append_new(tasks, task_to_wire(dag, dag->tasks[i]));
  json_object_set_new(o, "tasks", tasks);
  return o;
}

/* Readers that take what is there and leave the default otherwise: the
 * child wrote every field, so a missing one is a programming error that
 * finalize or the checks below still catch. */
static char *get_str(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);
  return json_is_string(v) ? dagd_strdup(json_string_value(v)) : NULL;
}

static void get_i64(const json_t *o, const char *k, int64_t *out) {
  const json_t *v = json_object_get(o, k);
  if (json_is_integer(v)) *out = (int64_t)json_integer_value(v);
}

static void get_int(const json_t *o, const char *k, int *out) {
  int64_t v = *out;
  get_i64(o, k, &v);
  *out = (int)v;
}

static void get_bool(const json_t *o, const char *k, bool *out) {
  const json_t *v = json_object_get(o, k);
  if (json_is_boolean(v)) *out = json_is_true(v);
}

static void get_strv(const json_t *o, const char *k, char ***out, size_t *n) {
  const json_t *a = json_object_get(o, k);
  size_t len = json_array_size(a);
  if (len == 0) return;
  *out = dagd_calloc(len, sizeof(**out));
  *n = 0;
  for (size_t i = 0; i < len; i++) {
    const char *s = json_string_value(json_array_get(a, i));
    if (s != NULL) (*out)[(*n)++] = dagd_strdup(s);
  }
}

static json_t *get_json(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);
  return v ? json_deep_copy(v) : NULL;
}

static int task_from_wire(dagd_dag *dag, const json_t *o, dagd_err *err) {
  const char *id = json_string_value(json_object_get(o, "id"));
  const char *opname = json_string_value(json_object_get(o, "op"));
  dagd_op op;
  if (id == NULL || opname == NULL || dagd_op_parse(opname, &op) != 0)
    return dagd_err_set(err, DAGD_EINVAL, "parse answer: malformed task");
  int line = 0;
  get_int(o, "line", &line);
  dagd_task *t;
  int rc = dagd_dag_add_task(dag, id, op, line, &t, err);
  if (rc != 0) return rc;
  get_int(o, "retries", &t->retries);
  get_i64(o, "retry_delay", &t->retry_delay);
  get_bool(o, "retry_exponential_backoff", &t->retry_exponential_backoff);
  get_i64(o, "max_retry_delay", &t->max_retry_delay);
  get_i64(o, "execution_timeout", &t->execution_timeout);
  get_i64(o, "sla", &t->sla);
  const char *tr = json_string_value(json_object_get(o, "trigger_rule"));
  if (tr != NULL && dagd_trigger_rule_parse(tr, &t->trigger_rule) != 0)
    return dagd_err_set(err, DAGD_EINVAL, "parse answer: unknown trigger rule");
  char *pool = get_str(o, "pool");
  if (pool != NULL) {
    free(t->pool);
    t->pool = pool;
  }
  get_int(o, "priority_weight", &t->priority_weight);
  const json_t *env = json_object_get(o, "env");
  if (json_array_size(env) > 0) {
    t->env = dagd_calloc(json_array_size(env), sizeof(*t->env));
    for (size_t i = 0; i < json_array_size(env); i++) {
      const json_t *kv = json_array_get(env, i);
      const char *k = json_string_value(json_array_get(kv, 0)), *v = json_string_value(json_array_get(kv, 1));
      if (k == NULL || v == NULL) continue;
      t->env[t->n_env].key = dagd_strdup(k);
      t->env[t->n_env].value = dagd_strdup(v);
      t->n_env++;
    }
  }
  get_bool(o, "env_clear", &t->env_clear);
  t->cwd = get_str(o, "cwd");
  get_strv(o, "outputs", &t->outputs, &t->n_outputs);
  t->on_failure = get_json(o, "on_failure");
  t->on_success = get_json(o, "on_success");
  t->on_retry = get_json(o, "on_retry");
  t->doc = get_str(o, "doc");
  json_t *config = get_json(o, "config");
  if (json_is_object(config)) {
    json_decref(t->config);
    t->config = config;
  } else {
    json_decref(config);
  }
  const json_t *deps = json_object_get(o, "deps");
  for (size_t i = 0; i < json_array_size(deps); i++) {
    const json_t *d = json_array_get(deps, i);
    const char *up = json_string_value(json_array_get(d, 0));
    if (up != NULL) dagd_task_add_dep(t, up, (int)json_integer_value(json_array_get(d, 1)));
  }
  return 0;
}

int dagd_dag_from_wire(const json_t *o, dagd_dag **out, dagd_err *err) {
  *out = NULL;
  const char *id = json_string_value(json_object_get(o, "id"));
  if (id == NULL) return dagd_err_set(err, DAGD_EINVAL, "parse answer: a DAG without an id");
  const char *fileloc = json_string_value(json_object_get(o, "fileloc"));
  int line = 0;
  get_int(o, "line", &line);
  dagd_dag *dag = dagd_dag_new(id, fileloc, line);
  int rc = 0;
  dag->description = get_str(o, "description");
  const char *s = json_string_value(json_object_get(o, "schedule"));
  if (s != NULL && (rc = dagd_cron_parse(s, &dag->schedule, err)) != 0) goto error;
  s = json_string_value(json_object_get(o, "timezone"));
  if (s != NULL && strcmp(s, dagd_tz_name(dag->tz)) != 0) {
    dagd_tz *tz = NULL;
    if ((rc = dagd_tz_load(s, &tz, err)) != 0) goto error;
    dag->tz = tz;
  }
  if (json_object_get(o, "start_date")) {
    get_i64(o, "start_date", &dag->start_date);
    dag->has_start_date = true;
  }
  if (json_object_get(o, "end_date")) {
    get_i64(o, "end_date", &dag->end_date);
    dag->has_end_date = true;
  }
  get_bool(o, "catchup", &dag->catchup);
  get_bool(o, "is_paused_upon_creation", &dag->is_paused_upon_creation);
  get_int(o, "max_active_runs", &dag->max_active_runs);
  get_int(o, "max_active_tasks", &dag->max_active_tasks);
  get_strv(o, "on_event", &dag->on_event, &dag->n_on_event);
  get_i64(o, "event_cooldown", &dag->event_cooldown);
  get_i64(o, "dagrun_timeout", &dag->dagrun_timeout);
  dag->params = get_json(o, "params");
  if (!json_is_object(dag->params)) {
    json_decref(dag->params);
    dag->params = json_object();
  }
  get_strv(o, "tags", &dag->tags, &dag->n_tags);
  dag->on_failure = get_json(o, "on_failure");
  dag->on_success = get_json(o, "on_success");
  dag->on_retry = get_json(o, "on_retry");
  const json_t *tasks = json_object_get(o, "tasks");
  for (size_t i = 0; i < json_array_size(tasks); i++)
    if ((rc = task_from_wire(dag, json_array_get(tasks, i), err)) != 0) goto error;
  if ((rc = dagd_dag_finalize(dag, err)) != 0) goto error;
  *out = dag;
  return 0;
error:
  dagd_dag_free(dag);
  return rc;
}

json_t *dagd_dagbag_to_wire(const dagd_dagbag *bag) {
  json_t *dags = json_array(), *errors = json_array();
  for (size_t i = 0; i < bag->n_dags; i++) json_array_append_new(dags, dagd_dag_to_wire(bag->dags[i]));
  for (size_t i = 0; i < bag->n_errors; i++) {
    const dagd_load_error *e = &bag->errors[i];
    json_array_append_new(errors, json_pack("{sssiss}", "file", e->file, "line", e->line, "message", e->message));
  }
  return json_pack("{soso}", "dags", dags, "errors", errors);
}

int dagd_dagbag_from_wire(const json_t *o, dagd_dagbag *bag, dagd_err *err) {
  const json_t *errors = json_object_get(o, "errors"), *dags = json_object_get(o, "dags");
  if (!json_is_array(errors) || !json_is_array(dags))
    return dagd_err_set(err, DAGD_EINVAL, "parse answer: no \"dags\" and \"errors\" lists");
  for (size_t i = 0; i < json_array_size(errors); i++) {
    const json_t *e = json_array_get(errors, i);
    const char *file = json_string_value(json_object_get(e, "file"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (file == NULL || msg == NULL) return dagd_err_set(err, DAGD_EINVAL, "parse answer: malformed error");
    dagd_dagbag_add_error(bag, file, (int)json_integer_value(json_object_get(e, "line")), msg);
  }
  for (size_t i = 0; i < json_array_size(dags); i++) {
    dagd_dag *dag;
    int rc = dagd_dag_from_wire(json_array_get(dags, i), &dag, err);
    if (rc != 0) return rc;
    dagd_dagbag_add(bag, dag);
  }
  return 0;
}
