/* Shared between the loader's files: the per-file load context, the
 * compiled Lua library cache, the private `core` helpers handed to
 * lua/dagd/init.lua, and the conversion of its records into models.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_LUA_INTERNAL_H
#define DAGD_LUA_INTERNAL_H

#include <jansson.h>
#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dagd/lua.h"

/* One compiled file of lua/dagd/ (bytecode with debug info). */
typedef struct dagd__lua_chunk {
  char *name;   /* "init" for dagd/init.lua */
  char *code;
  size_t len;
} dagd__lua_chunk;

/* The Lua side of the API, compiled once per process per folder. */
typedef struct dagd__lua_lib {
  char *dir;
  dagd__lua_chunk *chunks;
  size_t n_chunks;
  char *error;  /* set when the library could not be compiled */
  struct dagd__lua_lib *next;
} dagd__lua_lib;

/* Returns the compiled library of `dir` (compiling it on first use; the
 * result lives until the process exits). Thread-safe. Never NULL; check
 * ->error. */
const dagd__lua_lib *dagd__lua_lib_get(const char *dir);
const dagd__lua_chunk *dagd__lua_lib_find(const dagd__lua_lib *lib, const char *name);

struct dagd__lua_ctx;
/* Called instead of the conversion into models, after the DAG file ran,
 * with api (the table init.lua returned) at stack index `api` and the
 * limits armed afresh: for calling a function the file declared (call.c).
 * May raise Lua errors; they are recorded as the file's errors. */
typedef int (*dagd__lua_after_fn)(lua_State *L, int api, struct dagd__lua_ctx *ctx);

/* State of loading one DAG file. Reached from C functions through
 * lua_getextraspace, and passed to the allocator as its ud. */
typedef struct dagd__lua_ctx {
  const char *path;          /* the file as the caller named it */
  char *dir;                 /* its folder, for relative paths */
  const char *src;           /* file contents */
  size_t src_len;
  size_t *line_starts;       /* offsets of each line, built on first use */
  size_t n_lines;
  const char *user_source;   /* identity of the DAG chunk's source string */
  char short_src[LUA_IDSIZE];
  const dagd__lua_lib *lib;
  lua_State *L;

  /* the allocator's arena (loader.c) */
  char *chunks;
  char *arena_cur;
  char *arena_end;
  void *free_lists[16];

  /* limits */
  size_t mem_used;
  size_t mem_limit;
  size_t mem_cap;            /* the configured limit, for messages */
  bool mem_fatal;            /* a memory error was caught and re-raised */
  int mem_line;
  uint64_t instructions;
  uint64_t budget;
  int64_t deadline_ns;
  int64_t time_limit_ms;
  bool limit_hit;            /* budget or time limit: every hook call errors */
  int limit_code;
  int limit_line;
  char limit_msg[128];

  /* the error a pcall ended with (from the message handler) */
  char *err_msg;
  char *err_traceback;
  int err_line;

  /* set by dagd__lua_run_file: what runs after the file */
  dagd__lua_after_fn after;
  void *after_data;

  /* results */
  int list_ref;              /* registry ref of the LIST metatable */
  int first_code;
  dagd_dag **dags;
  size_t n_dags;
  dagd_load_error *errors;
  size_t n_errors;
} dagd__lua_ctx;

static inline dagd__lua_ctx *dagd__lua_ctx_of(lua_State *L) {
  return *(dagd__lua_ctx **)lua_getextraspace(L);
}

/* Appends "line: message" to ctx->errors (message is formatted). */
void dagd__lua_ctx_error(dagd__lua_ctx *ctx, int code, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records an error the DAG library reported and went on from (a bad task
 * or DAG: the file yields no DAG, but its other errors are found too).
 * msg is "file:line: message"; without a position, the DAG file's
 * current line is used. */
void dagd__lua_report(lua_State *L, dagd__lua_ctx *ctx, const char *msg);

/* Line of the innermost stack frame running the DAG file itself, 0 if
 * none. */
int dagd__lua_user_line(lua_State *L, dagd__lua_ctx *ctx);
/* The line of `field = ...` inside the table constructor that starts on
 * `line`, or `line` when it cannot be found. */
int dagd__lua_field_line(dagd__lua_ctx *ctx, int line, const char *field);

/* Pushes the table of private helpers init.lua receives as `core`. */
void dagd__lua_push_core(lua_State *L, dagd__lua_ctx *ctx);

/* Turns the DAG records in the list at `idx` into models appended to
 * ctx->dags; problems become ctx->errors. May raise Lua errors only on
 * real out-of-memory. */
void dagd__lua_convert(lua_State *L, int idx, dagd__lua_ctx *ctx);

/* The Lua value at idx as JSON (functions become {"function": "file:line"},
 * dagd.null null, LIST tables arrays). NULL with a message in err when it
 * cannot be converted. Reads raw: runs no Lua code. */
json_t *dagd__lua_to_json(lua_State *L, int idx, dagd__lua_ctx *ctx, int depth, char *err, size_t errlen);

/* Runs the DAG file at path in the sandbox like dagd_lua_load_file, but
 * calls after() in place of building models; the file's errors (and those
 * after() raises) are appended to bag. Returns the first error's code
 * (DAGD_ELIMIT, DAGD_ETIMEDOUT for the limits), or 0. */
int dagd__lua_run_file(const char *path, const dagd_load_opts *opts, dagd__lua_after_fn after, void *data,
                       dagd_dagbag *bag);

#endif
