/* The DAG file loader: runs the DAG files (dags/NAME.lua) in a sandboxed Lua 5.4 state (no
 * os.execute, io.popen or binary chunks; an instruction budget, a wall-time
 * limit and a memory cap per file) and turns what they declare into
 * dagd_dag models. One broken file never hides the others: each file's
 * errors are recorded as `file:line: message` and loading goes on.
 * The scheduler never sees a lua_State: only the models come out.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_LUA_H
#define DAGD_LUA_H

#if defined(DAGD_LAYER_PURE) || defined(DAGD_LAYER_STORE) || defined(DAGD_LAYER_ENGINE)
#error "dagd/lua.h is above this layer (see the layers in CMakeLists.txt)"
#endif

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "dagd/model.h"

typedef struct dagd_load_error {
  char *file;
  int line;       /* 0 when no line applies */
  char *message;  /* without the file:line prefix */
  char *traceback; /* the Lua stack at a runtime error, for verbose output; may be NULL */
} dagd_load_error;

/* What a load produced. Caller-allocated: dagd_dagbag_init / _close. */
typedef struct dagd_dagbag {
  dagd_dag **dags;
  size_t n_dags;
  dagd_load_error *errors;
  size_t n_errors;
  size_t n_files;     /* files read */
  /* Internal: index of DAG ids (slot = dag index + 1). */
  size_t *id_slots;
  size_t id_cap;
} dagd_dagbag;

/* The wall-time limit of one DAG file: the loader's default and the
 * configured parse_timeout's (docs/lua-api.md, docs/configuration). */
#define DAGD_PARSE_TIMEOUT_DEFAULT_MS 30000

typedef struct dagd_load_opts {
  uint64_t instruction_budget;  /* VM instructions per file; default 50M */
  int64_t time_limit_ms;        /* wall time per file; default DAGD_PARSE_TIMEOUT_DEFAULT_MS */
  size_t memory_limit;          /* bytes per file; default 256 MiB */
  const char *lua_dir;          /* the lua/ folder holding dagd/; NULL: search */
  int threads;                  /* files loaded in parallel by load_paths; 0: one per CPU (max 8) */
  /* The folder a DAG file may read below (io.open, io.lines,
   * dagd.read_json, dagd.glob), resolved without symbolic links. NULL:
   * the folder load_paths was given, or else the file's own folder. */
  const char *read_root;
} dagd_load_opts;

void dagd_load_opts_default(dagd_load_opts *opts);

void dagd_dagbag_init(dagd_dagbag *bag);
void dagd_dagbag_close(dagd_dagbag *bag);
const dagd_dag *dagd_dagbag_find(const dagd_dagbag *bag, const char *dag_id);

/* Loads one file, appending its DAGs or its errors to bag. A DAG id already
 * in the bag is an error of the later file. Returns 0 when the file loaded
 * cleanly, DAGD_ESYNTAX (or another code) when it added errors. */
int dagd_lua_load_file(const char *path, const dagd_load_opts *opts, dagd_dagbag *bag);
/* Loads every path: a directory contributes its *.lua files (recursively,
 * sorted by name, skipping hidden entries); a file is loaded as is. Files
 * are loaded on opts->threads threads (each in its own Lua state) and
 * merged in order, so the result is the same as loading them one by one.
 * Returns 0 when every file loaded cleanly. */
int dagd_lua_load_paths(const char *const *paths, size_t n, const dagd_load_opts *opts,
                        dagd_dagbag *bag);

/* Appends a DAG (taking ownership) or an error to bag: for callers that
 * assemble a bag from several loads, such as a reload of changed files. */
void dagd_dagbag_add(dagd_dagbag *bag, dagd_dag *dag);
void dagd_dagbag_add_error(dagd_dagbag *bag, const char *file, int line, const char *message);

/* The *.lua files under dir, recursively, sorted, hidden entries skipped;
 * *files is a heap array of heap strings. Unreadable folders are added to
 * bag as errors (DAGD_EIO). */
int dagd_lua_list_files(const char *dir, char ***files, size_t *n, dagd_dagbag *bag);
/* Loads the given files in parallel, merged in order into bag. */
int dagd_lua_load_files(char *const *files, size_t n, const dagd_load_opts *opts, dagd_dagbag *bag);

/* Moves everything of file_bag (one file's load, as from a parse child)
 * into bag, as a load of that file would have: all its DAGs, or only its
 * errors when it has any or declares an id bag has already (an error of
 * this file). file_bag is left empty. Returns the file's first error
 * code or 0. */
int dagd_dagbag_merge(dagd_dagbag *bag, dagd_dagbag *file_bag);

struct dagd_err;

/* The parse child's answer (src/lua/wire.c): a loaded DAG as JSON and a
 * DAG rebuilt (and finalized) from it; a bag's DAGs and errors as
 * {"dags": [...], "errors": [{"file","line","message"}]} and back
 * (appended to bag). New references / the caller frees the DAG. */
json_t *dagd_dag_to_wire(const dagd_dag *dag);
int dagd_dag_from_wire(const json_t *j, dagd_dag **out, struct dagd_err *err);
json_t *dagd_dagbag_to_wire(const dagd_dagbag *bag);
int dagd_dagbag_from_wire(const json_t *j, dagd_dagbag *bag, struct dagd_err *err);

/* `dagd parse [--time-limit-ms N] [--root DIR] [--lua-dir DIR] FILE...`:
 * the child the daemon parses DAG files in (src/lua/parse.c). Loads each
 * file in the sandbox and writes to stdout, one line each, {"begin": I}
 * when file I starts and {"index": I, "dags": [...], "errors": [...]}
 * when it is done. Exit status 0, 2 on a usage error. */
int dagd_lua_parse_main(int argc, char **argv);

/* Runs a Lua function a task declared, for `dagd op`: loads the DAG file
 * at path again in the same sandbox and limits (opts may be NULL for the
 * defaults), finds the value of `field` in the config of task task_id of
 * DAG dag_id (a branch's or lua task's `fn`, a sensor's `poke`), and calls
 * it with one argument, a read-only table made from context (JSON null is
 * dagd.null), under a fresh instruction budget and time limit. *result
 * gets its first return value as JSON (nil is JSON null; new reference).
 * DAGD_ENOENT when the DAG, task or function is not in the file;
 * otherwise the file's or the function's first error as
 * `file:line: message` (DAGD_ELIMIT, DAGD_ETIMEDOUT for the limits). */
int dagd_lua_call_task_fn(const char *path, const char *dag_id, const char *task_id, const char *field,
                          const json_t *context, const dagd_load_opts *opts, json_t **result,
                          struct dagd_err *err);

#endif
