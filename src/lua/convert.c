/* From the records lua/dagd/init.lua collected to dagd_dag models: parses
 * what only C can (schedules, time zones, dates in a zone), converts
 * operator configs to JSON, resolves edges and finalizes each DAG.
 * All table reads are raw, so nothing a DAG file set up runs from here.
 * SPDX-License-Identifier: MIT */
#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/cron.h"
#include "dagd/err.h"
#include "dagd/model.h"
#include "dagd/template.h"
#include "dagd/time.h"
#include "dagd/tz.h"
#include "dagd/util.h"
#include "lua/internal.h"

#define JSON_MAX_DEPTH 64

/* Pushes t[k] (raw) and returns its type. */
static int rawfield(lua_State *L, int t, const char *k) {
  lua_pushstring(L, k);
  return lua_rawget(L, t);
}

static char *opt_str(lua_State *L, int t, const char *k) {
  char *r = NULL;
  if (rawfield(L, t, k) == LUA_TSTRING) r = dagd_strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  return r;
}

static bool opt_int(lua_State *L, int t, const char *k, int64_t *out) {
  int isnum = 0;
  rawfield(L, t, k);
  lua_Integer v = lua_tointegerx(L, -1, &isnum);
  lua_pop(L, 1);
  if (isnum) *out = (int64_t)v;
  return isnum != 0;
}

static void opt_intf(lua_State *L, int t, const char *k, int *out) {
  int64_t v;
  if (opt_int(L, t, k, &v)) *out = (int)v;
}

static void opt_bool(lua_State *L, int t, const char *k, bool *out) {
  if (rawfield(L, t, k) == LUA_TBOOLEAN) *out = lua_toboolean(L, -1);
  lua_pop(L, 1);
}

/* A list of strings at t[k]. */
static void opt_strv(lua_State *L, int t, const char *k, char ***out, size_t *n) {
  if (rawfield(L, t, k) == LUA_TTABLE) {
    size_t len = (size_t)lua_rawlen(L, -1);
    *out = dagd_calloc(len ? len : 1, sizeof(**out));
    *n = 0;
    for (size_t i = 1; i <= len; i++) {
      if (lua_rawgeti(L, -1, (lua_Integer)i) == LUA_TSTRING) (*out)[(*n)++] = dagd_strdup(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

static bool is_list(lua_State *L, int idx, dagd__lua_ctx *ctx) {
  if (!lua_getmetatable(L, idx)) return false;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->list_ref);
  bool r = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return r;
}

/* Converts the Lua value at idx to JSON. Functions become
 * {"function": "file:line"} (a later step re-loads the file to run them).
 * On failure returns NULL with a message in err. */
json_t *dagd__lua_to_json(lua_State *L, int idx, dagd__lua_ctx *ctx, int depth, char *err, size_t errlen) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return json_null();
  case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) return json_integer((json_int_t)lua_tointeger(L, idx));
    if (!isfinite(lua_tonumber(L, idx))) {
      snprintf(err, errlen, "a number that is not finite cannot be stored");
      return NULL;
    }
    return json_real(lua_tonumber(L, idx));
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    json_t *j = json_stringn(s, len);
    if (j == NULL) snprintf(err, errlen, "string is not valid UTF-8");
    return j;
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) return json_null(); /* dagd.null */
    break;
  case LUA_TFUNCTION: {
    lua_Debug ar;
    lua_pushvalue(L, idx);
    lua_getinfo(L, ">S", &ar);
    char where[LUA_IDSIZE + 512];
    if (ar.what[0] == 'C')
      snprintf(where, sizeof(where), "[C]");
    else if (ar.source[0] == '@')
      snprintf(where, sizeof(where), "%.*s:%d", (int)LUA_IDSIZE + 400, ar.source + 1, ar.linedefined);
    else
      snprintf(where, sizeof(where), "%s:%d", ar.short_src, ar.linedefined);
    return json_pack("{ss}", "function", where);
  }
  case LUA_TTABLE: {
    if (depth >= JSON_MAX_DEPTH) {
      snprintf(err, errlen, "tables nested more than %d levels deep (a cycle?)", JSON_MAX_DEPTH);
      return NULL;
    }
    luaL_checkstack(L, 4, "JSON conversion");
    size_t n = (size_t)lua_rawlen(L, idx), count = 0;
    bool seq = true, string_keys = true;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      lua_pop(L, 1);
      count++;
      if (lua_type(L, -1) == LUA_TSTRING) {
        seq = false;
      } else {
        string_keys = false;
        lua_Integer k;
        int isint;
        k = lua_tointegerx(L, -1, &isint);
        if (!isint || k < 1 || (size_t)k > n) seq = false;
      }
    }
    if (seq && count == n && (n > 0 || is_list(L, idx, ctx))) {
      json_t *a = json_array();
      for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i);
        json_t *v = dagd__lua_to_json(L, -1, ctx, depth + 1, err, errlen);
        lua_pop(L, 1);
        if (v == NULL) {
          json_decref(a);
          return NULL;
        }
        json_array_append_new(a, v);
      }
      return a;
    }
    if (!string_keys) {
      snprintf(err, errlen, "a table mixes list items and named keys (or has non-string keys)");
      return NULL;
    }
    json_t *o = json_object();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      size_t klen;
      const char *k = lua_tolstring(L, -2, &klen);
      json_t *v = dagd__lua_to_json(L, -1, ctx, depth + 1, err, errlen);
      lua_pop(L, 1);
      if (v == NULL) {
        size_t used = strlen(err);
        if (used + klen + 3 < errlen) { /* prefix the key path */
          memmove(err + klen + 2, err, used + 1);
          memcpy(err, k, klen);
          err[klen] = ':';
          err[klen + 1] = ' ';
        }
        json_decref(o);
        return NULL;
      }
      if (json_object_setn_new(o, k, klen, v) != 0) {
        snprintf(err, errlen, "key is not valid UTF-8");
        json_decref(o);
        return NULL;
      }
    }
    return o;
  }
  default: break;
  }
  snprintf(err, errlen, "a %s value cannot be stored", luaL_typename(L, idx));
  return NULL;
}

/* t[k] as JSON into *out; reports at the field's line. */
static void opt_json(lua_State *L, int t, const char *k, json_t **out, dagd__lua_ctx *ctx, int line,
                     const char *what) {
  if (rawfield(L, t, k) != LUA_TNIL) {
    char err[256] = "";
    json_t *j = dagd__lua_to_json(L, -1, ctx, 0, err, sizeof(err));
    if (j == NULL)
      dagd__lua_ctx_error(ctx, DAGD_EINVAL, dagd__lua_field_line(ctx, line, k), "%s: field \"%s\": %s", what, k,
                          err);
    json_decref(*out);
    *out = j;
  }
  lua_pop(L, 1);
}

static int kv_cmp(const void *a, const void *b) {
  return strcmp(((const dagd_kv *)a)->key, ((const dagd_kv *)b)->key);
}

static void task_env(lua_State *L, int t, dagd_task *task) {
  if (rawfield(L, t, "env") == LUA_TTABLE) {
    size_t cap = 8;
    task->env = dagd_malloc(cap * sizeof(*task->env));
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
        if (task->n_env == cap) task->env = dagd_realloc(task->env, (cap *= 2) * sizeof(*task->env));
        task->env[task->n_env].key = dagd_strdup(lua_tostring(L, -2));
        task->env[task->n_env].value = dagd_strdup(lua_tostring(L, -1));
        task->n_env++;
      }
      lua_pop(L, 1);
    }
    /* lua_next order depends on hashing: sort for stable models. */
    qsort(task->env, task->n_env, sizeof(*task->env), kv_cmp);
  }
  lua_pop(L, 1);
}

/* The first template in v (a field's value, as the operators render it:
 * every string, nested ones too, but not a Lua function's marker) that
 * cannot render whatever the run: bad syntax or an unknown filter. So
 * `dagctl validate` and the loader report it as file:line, instead of the
 * task failing at run time. Returns 0 or the error code, err filled. */
static int check_templates(const json_t *v, dagd_err *err) {
  switch (json_typeof(v)) {
  case JSON_STRING:
    return dagd_template_has(json_string_value(v)) ? dagd_template_check(json_string_value(v), err) : 0;
  case JSON_ARRAY: {
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      int rc = check_templates(x, err);
      if (rc != 0) return rc;
    }
    return 0;
  }
  case JSON_OBJECT: {
    if (json_object_size(v) == 1 && json_is_string(json_object_get(v, "function"))) return 0;
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) {
      int rc = check_templates(x, err);
      if (rc != 0) return rc;
    }
    return 0;
  }
  default: return 0;
  }
}

/* Reports a template error of field `field` (value v) of `what`. */
static void check_field(dagd__lua_ctx *ctx, int line, const char *what, const char *field, const json_t *v) {
  dagd_err err;
  dagd_err_init(&err);
  if (v != NULL && check_templates(v, &err) != 0)
    dagd__lua_ctx_error(ctx, err.code, dagd__lua_field_line(ctx, line, field), "%s: field \"%s\": %s", what, field,
                        err.msg);
}

/* Every templated field of a task: its operator's config (each top-level
 * field on its own line), env values, cwd and notify specs. */
static void check_task_templates(dagd__lua_ctx *ctx, const dagd_task *task, const char *what) {
  const char *k;
  json_t *x;
  json_object_foreach(task->config, k, x) {
    /* A shell task's string cmd is a /bin/sh command: its templates must
     * also stand where a value can be quoted (see src/template/shell.c). */
    dagd_err err;
    dagd_err_init(&err);
    if (task->op == DAGD_OP_SHELL && strcmp(k, "cmd") == 0 && json_is_string(x) &&
        dagd_template_check_shell(json_string_value(x), &err) != 0)
      dagd__lua_ctx_error(ctx, err.code, dagd__lua_field_line(ctx, task->line, k), "%s: field \"%s\": %s", what, k,
                          err.msg);
    else
      check_field(ctx, task->line, what, k, x);
  }
  for (size_t i = 0; i < task->n_env; i++) {
    json_t *v = json_string(task->env[i].value ? task->env[i].value : "");
    check_field(ctx, task->line, what, "env", v);
    json_decref(v);
  }
  if (task->cwd) {
    json_t *v = json_string(task->cwd);
    check_field(ctx, task->line, what, "cwd", v);
    json_decref(v);
  }
  check_field(ctx, task->line, what, "on_failure", task->on_failure);
  check_field(ctx, task->line, what, "on_success", task->on_success);
  check_field(ctx, task->line, what, "on_retry", task->on_retry);
}

static void convert_task(lua_State *L, int t, dagd_dag *dag, dagd__lua_ctx *ctx) {
  char *id = opt_str(L, t, "id"), *opname = opt_str(L, t, "op");
  int64_t line = 0;
  opt_int(L, t, "line", &line);
  dagd_op op;
  dagd_task *task = NULL;
  dagd_err err;
  dagd_err_init(&err);
  if (id == NULL || dagd_op_parse(opname, &op) != 0) {
    dagd__lua_ctx_error(ctx, DAGD_EINVAL, (int)line, "internal: malformed task record");
    goto out;
  }
  if (dagd_dag_add_task(dag, id, op, (int)line, &task, &err) != 0) {
    dagd__lua_ctx_error(ctx, err.code, (int)line, "%s", err.msg);
    goto out;
  }
  char what[300];
  snprintf(what, sizeof(what), "task \"%s\"", id);
  int64_t v;
  opt_intf(L, t, "retries", &task->retries);
  if (opt_int(L, t, "retry_delay", &v)) task->retry_delay = v;
  opt_bool(L, t, "retry_exponential_backoff", &task->retry_exponential_backoff);
  if (opt_int(L, t, "max_retry_delay", &v)) task->max_retry_delay = v;
  if (opt_int(L, t, "execution_timeout", &v)) task->execution_timeout = v;
  if (opt_int(L, t, "sla", &v)) task->sla = v;
  char *s = opt_str(L, t, "trigger_rule");
  if (s != NULL && dagd_trigger_rule_parse(s, &task->trigger_rule) != 0)
    dagd__lua_ctx_error(ctx, DAGD_EINVAL, dagd__lua_field_line(ctx, (int)line, "trigger_rule"),
                        "%s: unknown trigger_rule \"%s\"", what, s);
  free(s);
  if ((s = opt_str(L, t, "pool")) != NULL) {
    free(task->pool);
    task->pool = s;
  }
  opt_intf(L, t, "priority_weight", &task->priority_weight);
  task_env(L, t, task);
  opt_bool(L, t, "env_clear", &task->env_clear);
  task->cwd = opt_str(L, t, "cwd");
  opt_strv(L, t, "outputs", &task->outputs, &task->n_outputs);
  opt_json(L, t, "on_failure", &task->on_failure, ctx, (int)line, what);
  opt_json(L, t, "on_success", &task->on_success, ctx, (int)line, what);
  opt_json(L, t, "on_retry", &task->on_retry, ctx, (int)line, what);
  task->doc = opt_str(L, t, "doc");
  opt_json(L, t, "config", &task->config, ctx, (int)line, what);
  if (task->config != NULL && !json_is_object(task->config)) {
    json_decref(task->config);
    task->config = json_object();
  }
  if (task->config == NULL) task->config = json_object();
  check_task_templates(ctx, task, what);
out:
  free(id);
  free(opname);
}

/* A date field: epoch seconds, or text read in the DAG's zone unless it
 * carries an offset. Returns false after reporting an error. */
static bool date_field(lua_State *L, int t, const char *k, dagd_dag *dag, dagd__lua_ctx *ctx, int64_t *out,
                       bool *has) {
  bool ok = true;
  int type = rawfield(L, t, k);
  if (type == LUA_TNUMBER) {
    *out = (int64_t)lua_tointeger(L, -1);
    *has = true;
  } else if (type == LUA_TSTRING) {
    const char *s = lua_tostring(L, -1);
    int64_t wall;
    int has_offset;
    dagd_err err;
    dagd_err_init(&err);
    if (dagd_time_parse(s, &wall, &has_offset, &err) != 0) {
      dagd__lua_ctx_error(ctx, err.code, dagd__lua_field_line(ctx, dag->line, k), "DAG \"%s\": %s: %s", dag->id,
                          k, err.msg);
      ok = false;
    } else if (has_offset) {
      *out = wall;
      *has = true;
    } else {
      dagd_tm tm;
      int64_t at[2];
      dagd_epoch_to_tm(wall, &tm);
      /* In a DST gap, the wall time shifted forward; in an overlap, the
       * first occurrence. */
      dagd_tz_mktime(dag->tz, &tm, at);
      *out = at[0];
      *has = true;
    }
  }
  lua_pop(L, 1);
  return ok;
}

static void convert_dag(lua_State *L, int r, dagd__lua_ctx *ctx) {
  char *id = opt_str(L, r, "id");
  int64_t line64 = 0;
  opt_int(L, r, "line", &line64);
  int line = (int)line64;
  if (id == NULL) {
    dagd__lua_ctx_error(ctx, DAGD_EINVAL, line, "internal: malformed DAG record");
    return;
  }
  size_t errors_before = ctx->n_errors;
  dagd_dag *dag = dagd_dag_new(id, ctx->path, line);
  free(id);
  ctx->dags = dagd_realloc(ctx->dags, (ctx->n_dags + 1) * sizeof(*ctx->dags));
  ctx->dags[ctx->n_dags++] = dag;
  char what[300];
  snprintf(what, sizeof(what), "DAG \"%s\"", dag->id);
  dagd_err err;

  dag->description = opt_str(L, r, "description");
  char *s = opt_str(L, r, "timezone");
  if (s != NULL) {
    dagd_tz *tz = NULL;
    dagd_err_init(&err);
    if (dagd_tz_load(s, &tz, &err) != 0)
      dagd__lua_ctx_error(ctx, err.code, dagd__lua_field_line(ctx, line, "timezone"), "%s: timezone \"%s\": %s",
                          what, s, err.msg);
    else
      dag->tz = tz;
    free(s);
  }
  if ((s = opt_str(L, r, "schedule")) != NULL) {
    dagd_err_init(&err);
    if (dagd_cron_parse(s, &dag->schedule, &err) != 0)
      dagd__lua_ctx_error(ctx, err.code, dagd__lua_field_line(ctx, line, "schedule"), "%s: schedule: %s", what,
                          err.msg);
    free(s);
  }
  date_field(L, r, "start_date", dag, ctx, &dag->start_date, &dag->has_start_date);
  date_field(L, r, "end_date", dag, ctx, &dag->end_date, &dag->has_end_date);
  opt_bool(L, r, "catchup", &dag->catchup);
  opt_bool(L, r, "is_paused_upon_creation", &dag->is_paused_upon_creation);
  opt_intf(L, r, "max_active_runs", &dag->max_active_runs);
  opt_intf(L, r, "max_active_tasks", &dag->max_active_tasks);
  opt_strv(L, r, "on_event", &dag->on_event, &dag->n_on_event);
  opt_int(L, r, "event_cooldown", &dag->event_cooldown);
  opt_int(L, r, "dagrun_timeout", &dag->dagrun_timeout);
  opt_strv(L, r, "tags", &dag->tags, &dag->n_tags);
  opt_json(L, r, "params", &dag->params, ctx, line, what);
  if (dag->params == NULL) {
    dag->params = json_object();
  } else if (!json_is_object(dag->params)) {
    if (!(json_is_array(dag->params) && json_array_size(dag->params) == 0))
      dagd__lua_ctx_error(ctx, DAGD_EINVAL, dagd__lua_field_line(ctx, line, "params"),
                          "%s: params must be a table of name = value", what);
    json_decref(dag->params);
    dag->params = json_object();
  }
  opt_json(L, r, "on_failure", &dag->on_failure, ctx, line, what);
  opt_json(L, r, "on_success", &dag->on_success, ctx, line, what);
  opt_json(L, r, "on_retry", &dag->on_retry, ctx, line, what);
  check_field(ctx, line, what, "on_failure", dag->on_failure);
  check_field(ctx, line, what, "on_success", dag->on_success);
  check_field(ctx, line, what, "on_retry", dag->on_retry);

  if (rawfield(L, r, "tasks") == LUA_TTABLE) {
    int tasks = lua_gettop(L);
    size_t n = (size_t)lua_rawlen(L, tasks);
    for (size_t i = 1; i <= n; i++) {
      if (lua_rawgeti(L, tasks, (lua_Integer)i) == LUA_TTABLE) convert_task(L, lua_gettop(L), dag, ctx);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);

  /* Edges: three parallel lists (upstream id, downstream id, line). */
  rawfield(L, r, "e_up");
  rawfield(L, r, "e_down");
  rawfield(L, r, "e_line");
  int eu = lua_gettop(L) - 2, ed = eu + 1, el = eu + 2;
  if (lua_istable(L, eu) && lua_istable(L, ed) && lua_istable(L, el)) {
    size_t n = (size_t)lua_rawlen(L, eu);
    for (size_t i = 1; i <= n; i++) {
      lua_rawgeti(L, eu, (lua_Integer)i);
      lua_rawgeti(L, ed, (lua_Integer)i);
      lua_rawgeti(L, el, (lua_Integer)i);
      const char *up = lua_tostring(L, -3), *down = lua_tostring(L, -2);
      int eline = (int)lua_tointeger(L, -1);
      if (up != NULL && down != NULL) {
        dagd_task *t = dagd_dag_find_task(dag, down);
        if (t == NULL)
          dagd__lua_ctx_error(ctx, DAGD_ENOENT, eline, "DAG \"%s\" has no task \"%s\" (in an edge from \"%s\")",
                              dag->id, down, up);
        else
          dagd_task_add_dep(t, up, eline);
      }
      lua_pop(L, 3);
    }
  }
  lua_pop(L, 3);

  if (ctx->n_errors == errors_before) {
    dagd_err_init(&err);
    if (dagd_dag_finalize(dag, &err) != 0) {
      /* The model's messages read "file:line: message"; split them. */
      const char *msg = err.msg;
      int eline = dag->line;
      size_t plen = strlen(ctx->path);
      if (strncmp(msg, ctx->path, plen) == 0 && msg[plen] == ':') {
        char *end;
        long l = strtol(msg + plen + 1, &end, 10);
        if (end != msg + plen + 1 && end[0] == ':' && end[1] == ' ') {
          eline = (int)l;
          msg = end + 2;
        }
      }
      dagd__lua_ctx_error(ctx, err.code, eline, "%s", msg);
    }
  }
}

void dagd__lua_convert(lua_State *L, int idx, dagd__lua_ctx *ctx) {
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 16, "convert");
  size_t n = (size_t)lua_rawlen(L, idx);
  for (size_t i = 1; i <= n; i++) {
    if (lua_rawgeti(L, idx, (lua_Integer)i) == LUA_TTABLE) convert_dag(L, lua_gettop(L), ctx);
    lua_pop(L, 1);
  }
}
