/* Calling a Lua function a task declared (a branch's or lua task's `fn`, a
 * sensor's `poke`) from `dagd op`: the model keeps such functions only as
 * {"function": "file:line"}, so the operator loads the DAG file again in
 * the loader's sandbox, finds the function in the task records init.lua
 * returns, and calls it with a read-only view of the run's context.
 * SPDX-License-Identifier: MIT */
#include <lauxlib.h>
#include <string.h>

#include "dagd/err.h"
#include "dagd/lua.h"
#include "dagd/util.h"
#include "lua/internal.h"

typedef struct call_job {
  const char *dag_id, *task_id, *field;
  const json_t *context;
  json_t *result;
  dagd_err *err;     /* not-found and conversion problems; Lua errors go to the bag */
} call_job;

static int ro_newindex(lua_State *L) { return luaL_error(L, "the task context is read-only"); }

/* __len of a view: the length of its data (upvalue 1). */
static int ro_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
  return 1;
}

/* The iterator pairs() gets for a view: next over its data (upvalue 1). */
static int ro_next(lua_State *L) {
  lua_settop(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 2); /* view data key */
  if (lua_next(L, 2)) return 2;
  lua_pushnil(L);
  return 1;
}

static int ro_pairs(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushcclosure(L, ro_next, 1);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

/* Pushes j as Lua: objects and arrays become read-only views (an empty
 * table whose metatable reads from the data and refuses writes), so a
 * function cannot change what the next call or the operator sees. */
static void push_ro(lua_State *L, const json_t *j) {
  luaL_checkstack(L, 6, "context nested too deeply");
  switch (json_typeof(j)) {
  case JSON_OBJECT:
  case JSON_ARRAY: {
    if (json_is_object(j)) {
      const char *key;
      json_t *v;
      lua_createtable(L, 0, (int)json_object_size(j)); /* data */
      json_object_foreach((json_t *)j, key, v) {
        push_ro(L, v);
        lua_setfield(L, -2, key);
      }
    } else {
      size_t n = json_array_size(j);
      lua_createtable(L, (int)n, 0);
      for (size_t i = 0; i < n; i++) {
        push_ro(L, json_array_get(j, i));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
      }
    }
    lua_newtable(L); /* data view */
    lua_createtable(L, 0, 5); /* data view mt */
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ro_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, ro_len, 1);
    lua_setfield(L, -2, "__len");
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, ro_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushliteral(L, "read-only");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2); /* data view */
    lua_remove(L, -2);       /* view */
    break;
  }
  case JSON_STRING: lua_pushlstring(L, json_string_value(j), json_string_length(j)); break;
  case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(j)); break;
  case JSON_REAL: lua_pushnumber(L, json_real_value(j)); break;
  case JSON_TRUE: lua_pushboolean(L, 1); break;
  case JSON_FALSE: lua_pushboolean(L, 0); break;
  case JSON_NULL: lua_pushlightuserdata(L, NULL); break; /* dagd.null */
  }
}

/* Pushes t[k] read raw (the records are init.lua's own plain tables);
 * returns its type. */
static int raw_field(lua_State *L, int t, const char *k) {
  t = lua_absindex(L, t);
  lua_pushstring(L, k);
  return lua_rawget(L, t);
}

/* After the file ran: find the function, call it, convert its result. */
static int call_after(lua_State *L, int api, dagd__lua_ctx *ctx) {
  call_job *job = ctx->after_data;
  raw_field(L, api, "dags");
  int list = lua_gettop(L);
  lua_Integer n = (lua_Integer)lua_rawlen(L, list);
  int dag = 0;
  for (lua_Integer i = 1; i <= n && dag == 0; i++) {
    lua_rawgeti(L, list, i);
    int rec = lua_gettop(L);
    raw_field(L, rec, "id");
    if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), job->dag_id) == 0) dag = rec;
    lua_pop(L, 1);
    if (dag == 0) lua_pop(L, 1);
  }
  if (dag == 0) {
    dagd_err_set(job->err, DAGD_ENOENT, "%s: no DAG \"%s\" in the file", ctx->path, job->dag_id);
    return 0;
  }
  /* dags rec */
  if (raw_field(L, dag, "by_id") != LUA_TTABLE || raw_field(L, -1, job->task_id) != LUA_TTABLE) {
    dagd_err_set(job->err, DAGD_ENOENT, "%s: DAG \"%s\" has no task \"%s\"", ctx->path, job->dag_id, job->task_id);
    return 0;
  }
  if (raw_field(L, -1, "config") != LUA_TTABLE || raw_field(L, -1, job->field) != LUA_TFUNCTION) {
    dagd_err_set(job->err, DAGD_ENOENT, "%s: task \"%s\" of DAG \"%s\" has no function \"%s\"", ctx->path,
                 job->task_id, job->dag_id, job->field);
    return 0;
  }
  push_ro(L, job->context); /* ... fn context */
  lua_call(L, 1, 1);
  char msg[256];
  job->result = dagd__lua_to_json(L, -1, ctx, 0, msg, sizeof(msg));
  if (job->result == NULL)
    dagd_err_set(job->err, DAGD_EINVAL, "%s: the %s function of task \"%s\" returned a value that is not JSON: %s",
                 ctx->path, job->field, job->task_id, msg);
  return 0;
}

int dagd_lua_call_task_fn(const char *path, const char *dag_id, const char *task_id, const char *field,
                          const json_t *context, const dagd_load_opts *opts, json_t **result, dagd_err *err) {
  *result = NULL;
  json_t *empty = NULL;
  if (context == NULL) context = empty = json_object();
  dagd_err local;
  dagd_err_init(&local);
  call_job job = {.dag_id = dag_id, .task_id = task_id, .field = field, .context = context, .err = &local};
  dagd_dagbag bag;
  dagd_dagbag_init(&bag);
  int rc = dagd__lua_run_file(path, opts, call_after, &job, &bag);
  if (bag.n_errors > 0) {
    /* The file's own first error, as the loader reports it. */
    const dagd_load_error *e = &bag.errors[0];
    if (rc == 0) rc = DAGD_ELUA;
    if (e->line > 0)
      dagd_err_set(err, rc, "%s:%d: %s", e->file, e->line, e->message);
    else
      dagd_err_set(err, rc, "%s: %s", e->file, e->message);
  } else if (dagd_err_is_set(&local)) {
    rc = dagd_err_set(err, local.code, "%s", local.msg);
  }
  if (rc == 0 && job.result == NULL) job.result = json_null();
  if (rc == 0) *result = job.result;
  else json_decref(job.result);
  dagd_dagbag_close(&bag);
  json_decref(empty);
  return rc;
}
