/* The DAG file loader: one fresh, sandboxed Lua state per file, with an
 * instruction budget and a wall-time limit (a count hook that also reads a
 * monotonic clock), a memory cap (a counting lua_Alloc), and errors turned
 * into `file:line: message` records. A file contributes all its DAGs or,
 * when anything in it is wrong, none.
 * SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dagd/err.h"
#include "dagd/lua.h"
#include "dagd/util.h"
#include "lua/internal.h"

#ifndef DAGD_LUA_DIR_BUILD
#define DAGD_LUA_DIR_BUILD "lua"
#endif
#ifndef DAGD_LUA_DIR_INSTALL
#define DAGD_LUA_DIR_INSTALL "/usr/local/share/dagd/lua"
#endif

/* VM instructions between two hook calls: small enough that the budget
 * and the clock are checked often, large enough to cost nothing. */
#define HOOK_EVERY 1000
#define DAG_FILE_MAX (16u << 20)

void dagd_load_opts_default(dagd_load_opts *opts) {
  opts->instruction_budget = 50000000;
  opts->time_limit_ms = 5000;
  opts->memory_limit = 256u << 20;
  opts->lua_dir = NULL;
  opts->threads = 0;
}

void dagd_dagbag_init(dagd_dagbag *bag) { memset(bag, 0, sizeof(*bag)); }

void dagd_dagbag_close(dagd_dagbag *bag) {
  for (size_t i = 0; i < bag->n_dags; i++) dagd_dag_free(bag->dags[i]);
  free(bag->dags);
  for (size_t i = 0; i < bag->n_errors; i++) {
    free(bag->errors[i].file);
    free(bag->errors[i].message);
    free(bag->errors[i].traceback);
  }
  free(bag->errors);
  free(bag->id_slots);
  memset(bag, 0, sizeof(*bag));
}

static size_t id_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return (size_t)h;
}

static void bag_index_insert(size_t *slots, size_t cap, const char *id, size_t idx) {
  size_t i = id_hash(id) & (cap - 1);
  while (slots[i] != 0) i = (i + 1) & (cap - 1);
  slots[i] = idx + 1;
}

/* Appends a DAG, keeping the id index at most half full. */
static void bag_add(dagd_dagbag *bag, dagd_dag *dag) {
  if ((bag->n_dags & (bag->n_dags - 1)) == 0)
    bag->dags = dagd_realloc(bag->dags, (bag->n_dags ? bag->n_dags * 2 : 1) * sizeof(*bag->dags));
  bag->dags[bag->n_dags++] = dag;
  if (bag->n_dags * 2 > bag->id_cap) {
    size_t cap = bag->id_cap ? bag->id_cap * 2 : 64;
    size_t *slots = dagd_calloc(cap, sizeof(*slots));
    for (size_t i = 0; i < bag->n_dags; i++) bag_index_insert(slots, cap, bag->dags[i]->id, i);
    free(bag->id_slots);
    bag->id_slots = slots;
    bag->id_cap = cap;
  } else {
    bag_index_insert(bag->id_slots, bag->id_cap, dag->id, bag->n_dags - 1);
  }
}

const dagd_dag *dagd_dagbag_find(const dagd_dagbag *bag, const char *dag_id) {
  if (bag->id_cap == 0) return NULL;
  size_t i = id_hash(dag_id) & (bag->id_cap - 1);
  while (bag->id_slots[i] != 0) {
    const dagd_dag *d = bag->dags[bag->id_slots[i] - 1];
    if (strcmp(d->id, dag_id) == 0) return d;
    i = (i + 1) & (bag->id_cap - 1);
  }
  return NULL;
}

/* Errors are one line. */
static void fold_lines(char *s) {
  for (; *s; s++)
    if (*s == '\n' || *s == '\r') *s = ' ';
}

static void push_error(dagd__lua_ctx *ctx, int code, int line, char *msg, char *traceback) {
  fold_lines(msg);
  ctx->errors = dagd_realloc(ctx->errors, (ctx->n_errors + 1) * sizeof(*ctx->errors));
  dagd_load_error *e = &ctx->errors[ctx->n_errors++];
  e->file = dagd_strdup(ctx->path);
  e->line = line;
  e->message = msg;
  e->traceback = traceback;
  if (ctx->first_code == 0) ctx->first_code = code;
}

void dagd__lua_ctx_error(dagd__lua_ctx *ctx, int code, int line, const char *fmt, ...) {
  dagd_buf b;
  dagd_buf_init(&b);
  va_list ap;
  va_start(ap, fmt);
  dagd_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  push_error(ctx, code, line, dagd_buf_steal(&b), NULL);
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Small blocks come from per-file chunks with one free list per 16-byte
 * size class: a Lua state makes thousands of small allocations and frees
 * them all at lua_close, which costs a good part of a file's load time with
 * malloc. Lua passes the old size on every free and realloc, so blocks need
 * no header. Larger blocks go to malloc. */
#define ARENA_MAX 256
#define ARENA_CHUNK (64u << 10)
#define ARENA_CLASS(n) (((n) - 1) >> 4)

static void *arena_get(dagd__lua_ctx *ctx, size_t n) {
  if (n > ARENA_MAX) return malloc(n);
  size_t cls = ARENA_CLASS(n);
  void *p = ctx->free_lists[cls];
  if (p != NULL) {
    ctx->free_lists[cls] = *(void **)p;
    return p;
  }
  size_t size = (cls + 1) << 4;
  if ((size_t)(ctx->arena_end - ctx->arena_cur) < size) {
    char *chunk = malloc(ARENA_CHUNK);
    if (chunk == NULL) return NULL;
    *(char **)chunk = ctx->chunks; /* first 16 bytes link the chunks */
    ctx->chunks = chunk;
    ctx->arena_cur = chunk + 16;
    ctx->arena_end = chunk + ARENA_CHUNK;
  }
  p = ctx->arena_cur;
  ctx->arena_cur += size;
  return p;
}

static void arena_put(dagd__lua_ctx *ctx, void *p, size_t n) {
  if (n > ARENA_MAX) {
    free(p);
    return;
  }
  size_t cls = ARENA_CLASS(n);
  *(void **)p = ctx->free_lists[cls];
  ctx->free_lists[cls] = p;
}

static void arena_close(dagd__lua_ctx *ctx) {
  while (ctx->chunks != NULL) {
    char *next = *(char **)ctx->chunks;
    free(ctx->chunks);
    ctx->chunks = next;
  }
}

/* The allocator of every DAG file's state, and its memory cap. Lua answers
 * a NULL with a "not enough memory" error (after one emergency
 * collection), which the sandbox's pcall re-raises. */
static void *limit_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  dagd__lua_ctx *ctx = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    if (ptr != NULL) arena_put(ctx, ptr, osize);
    ctx->mem_used -= old;
    return NULL;
  }
  if (nsize > old && nsize - old > ctx->mem_limit - ctx->mem_used) {
    /* Remember where: memory errors do not reach the message handler.
     * Reading the call stack allocates nothing. */
    if (ctx->L != NULL) ctx->mem_line = dagd__lua_user_line(ctx->L, ctx);
    return NULL;
  }
  void *q;
  if (ptr == NULL) {
    q = arena_get(ctx, nsize);
  } else if (osize > ARENA_MAX && nsize > ARENA_MAX) {
    q = realloc(ptr, nsize);
  } else if (osize <= ARENA_MAX && nsize <= ARENA_MAX && ARENA_CLASS(osize) == ARENA_CLASS(nsize)) {
    q = ptr;
  } else {
    q = arena_get(ctx, nsize);
    if (q != NULL) {
      memcpy(q, ptr, osize < nsize ? osize : nsize);
      arena_put(ctx, ptr, osize);
    }
  }
  if (q == NULL) return NULL;
  ctx->mem_used = ctx->mem_used - old + nsize;
  return q;
}

static void limit_hook(lua_State *L, lua_Debug *ar) {
  dagd__lua_ctx *ctx = dagd__lua_ctx_of(L);
  ctx->instructions += HOOK_EVERY;
  if (!ctx->limit_hit) {
    if (ctx->instructions > ctx->budget) {
      snprintf(ctx->limit_msg, sizeof(ctx->limit_msg), "instruction budget exceeded (%llu VM instructions)",
               (unsigned long long)ctx->budget);
      ctx->limit_code = DAGD_ELIMIT;
    } else if (mono_ns() > ctx->deadline_ns) {
      if (ctx->time_limit_ms % 1000 == 0)
        snprintf(ctx->limit_msg, sizeof(ctx->limit_msg), "time limit (%llds) exceeded",
                 (long long)(ctx->time_limit_ms / 1000));
      else
        snprintf(ctx->limit_msg, sizeof(ctx->limit_msg), "time limit (%lldms) exceeded",
                 (long long)ctx->time_limit_ms);
      ctx->limit_code = DAGD_ETIMEDOUT;
    } else {
      return;
    }
    ctx->limit_hit = true;
    ctx->limit_line = dagd__lua_user_line(L, ctx);
  }
  /* From now on every hook call fails, so no pcall loop outlives it. */
  lua_pushstring(L, ctx->limit_msg);
  lua_error(L);
}

/* Message handler: records the message and the DAG file's line, and
 * returns a traceback. */
static int msgh(lua_State *L) {
  dagd__lua_ctx *ctx = dagd__lua_ctx_of(L);
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  free(ctx->err_msg);
  ctx->err_msg = dagd_strdup(msg);
  ctx->err_line = dagd__lua_user_line(L, ctx);
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Splits "<chunk>:<line>: message" when <chunk> is the DAG file. */
static bool split_position(const dagd__lua_ctx *ctx, const char *msg, int *line, const char **rest) {
  const char *names[2] = {ctx->path, ctx->short_src};
  for (int i = 0; i < 2; i++) {
    size_t n = strlen(names[i]);
    if (n == 0 || strncmp(msg, names[i], n) != 0 || msg[n] != ':') continue;
    char *end;
    long l = strtol(msg + n + 1, &end, 10);
    if (end == msg + n + 1 || end[0] != ':') continue;
    *line = (int)l;
    *rest = end[1] == ' ' ? end + 2 : end + 1;
    return true;
  }
  return false;
}

void dagd__lua_report(lua_State *L, dagd__lua_ctx *ctx, const char *msg) {
  int line = 0;
  const char *rest = msg;
  if (!split_position(ctx, msg, &line, &rest)) line = dagd__lua_user_line(L, ctx);
  push_error(ctx, DAGD_EINVAL, line, dagd_strdup(rest), NULL);
}

static void open_lib(lua_State *L, const char *name, lua_CFunction fn) {
  luaL_requiref(L, name, fn, 1);
  lua_pop(L, 1);
}

/* Runs in protected mode: builds the sandbox, runs the DAG file, converts
 * what it declared. Upvalue-free; the context comes from the extra space. */
static int run_file(lua_State *L) {
  dagd__lua_ctx *ctx = dagd__lua_ctx_of(L);
  /* Setting up makes little garbage: collect nothing until the file runs. */
  lua_gc(L, LUA_GCSTOP);
  open_lib(L, LUA_GNAME, luaopen_base);
  open_lib(L, LUA_STRLIBNAME, luaopen_string);
  open_lib(L, LUA_TABLIBNAME, luaopen_table);
  open_lib(L, LUA_MATHLIBNAME, luaopen_math);
  open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
  open_lib(L, LUA_IOLIBNAME, luaopen_io);
  open_lib(L, LUA_OSLIBNAME, luaopen_os);
  /* string.dump is reachable from any string ("").dump, so it goes from
   * the library itself; the string metatable is hidden from getmetatable. */
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
  /* Likewise for files from io.open: a __gc swapped into their metatable
   * would run with hooks off, beyond the limits. */
  luaL_getmetatable(L, LUA_FILEHANDLE);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);

  /* The trusted library: bytecode compiled once per process. */
  const dagd__lua_chunk *init = dagd__lua_lib_find(ctx->lib, "init");
  if (luaL_loadbufferx(L, init->code, init->len, "=dagd", "b") != LUA_OK) return lua_error(L);
  dagd__lua_push_core(L, ctx);
  lua_call(L, 1, 1); /* api */
  int api = lua_gettop(L);
  lua_getfield(L, api, "list_mt");
  ctx->list_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, api, "env");
  lua_getfield(L, api, "dags"); /* api env dags */

  /* The DAG file: text only, with the sandbox as its _ENV. */
  const char *src = ctx->src;
  size_t len = ctx->src_len;
  if (len >= 3 && memcmp(src, "\xEF\xBB\xBF", 3) == 0) { /* UTF-8 BOM */
    src += 3;
    len -= 3;
  }
  lua_pushfstring(L, "@%s", ctx->path);
  int status = luaL_loadbufferx(L, src, len, lua_tostring(L, -1), "t");
  lua_remove(L, -2);
  if (status != LUA_OK) return lua_error(L); /* syntax error, positioned */
  lua_Debug ar;
  lua_pushvalue(L, -1);
  lua_getinfo(L, ">S", &ar);
  ctx->user_source = ar.source;
  lua_pushvalue(L, api + 1);
  lua_setupvalue(L, -2, 1); /* api env dags chunk (_ENV = env) */
  /* Most files make little garbage: a generous pause keeps the collector
   * out of the way, and the memory cap still forces a full collection
   * before it fails an allocation. */
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCINC, 400, 0, 0);
  ctx->deadline_ns = mono_ns() + ctx->time_limit_ms * 1000000;
  lua_sethook(L, limit_hook, LUA_MASKCOUNT, HOOK_EVERY);
  lua_call(L, 0, 0);
  if (ctx->n_errors > 0) { /* reported on the way: the file yields nothing */
    lua_sethook(L, NULL, 0, 0);
    return 0;
  }
  if (ctx->after != NULL) {
    /* A call into the file (dagd op): what it calls gets limits of its
     * own, as large as the file's. */
    ctx->instructions = 0;
    ctx->deadline_ns = mono_ns() + ctx->time_limit_ms * 1000000;
    int n = ctx->after(L, api, ctx);
    lua_sethook(L, NULL, 0, 0);
    return n;
  }
  lua_sethook(L, NULL, 0, 0);

  /* Nothing of the file may run while C reads its records: no collector
   * (so no __gc), raw reads only, and no cap on the few strings we push. */
  lua_gc(L, LUA_GCSTOP);
  ctx->mem_limit = SIZE_MAX;
  dagd__lua_convert(L, api + 2, ctx);
  return 0;
}

static char *read_file(const char *path, size_t *len, char *errbuf, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(errbuf, errlen, "cannot open: %s", strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > DAG_FILE_MAX) {
    snprintf(errbuf, errlen, "not a regular file of at most 16 MiB");
    fclose(f);
    return NULL;
  }
  char *buf = dagd_malloc((size_t)st.st_size + 1);
  size_t n = fread(buf, 1, (size_t)st.st_size, f);
  if (ferror(f)) {
    snprintf(errbuf, errlen, "read error: %s", strerror(errno));
    free(buf);
    fclose(f);
    return NULL;
  }
  fclose(f);
  buf[n] = '\0';
  *len = n;
  return buf;
}

static const char *lua_dir(const dagd_load_opts *opts) {
  if (opts != NULL && opts->lua_dir != NULL) return opts->lua_dir;
  const char *env = getenv("DAGD_LUA_PATH");
  if (env != NULL && *env != '\0') return env;
  if (access(DAGD_LUA_DIR_BUILD "/dagd/init.lua", R_OK) == 0) return DAGD_LUA_DIR_BUILD;
  return DAGD_LUA_DIR_INSTALL;
}

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL) return dagd_strdup(".");
  if (slash == path) return dagd_strdup("/");
  return dagd_strndup(path, (size_t)(slash - path));
}

/* Records the error a failed pcall left. */
static void record_pcall_error(lua_State *L, dagd__lua_ctx *ctx, int status) {
  if (ctx->limit_hit) {
    dagd__lua_ctx_error(ctx, ctx->limit_code, ctx->limit_line, "%s", ctx->limit_msg);
    return;
  }
  if (status == LUA_ERRMEM || ctx->mem_fatal) {
    if (ctx->mem_cap % (1u << 20) == 0)
      dagd__lua_ctx_error(ctx, DAGD_ELIMIT, ctx->mem_line, "memory limit (%zu MiB) exceeded", ctx->mem_cap >> 20);
    else
      dagd__lua_ctx_error(ctx, DAGD_ELIMIT, ctx->mem_line, "memory limit (%zu bytes) exceeded", ctx->mem_cap);
    return;
  }
  const char *msg = ctx->err_msg;
  if (msg == NULL) msg = lua_tostring(L, -1);
  if (msg == NULL) msg = "unknown error";
  int line = ctx->err_line;
  const char *rest = msg;
  bool syntax = ctx->user_source == NULL;
  split_position(ctx, msg, &line, &rest);
  char *traceback = NULL;
  if (ctx->err_msg != NULL && lua_type(L, -1) == LUA_TSTRING) traceback = dagd_strdup(lua_tostring(L, -1));
  dagd_buf b;
  dagd_buf_init(&b);
  if (syntax && ctx->lib != NULL && rest != msg && strncmp(rest, "syntax error", 12) != 0)
    dagd_buf_puts(&b, "syntax error: ");
  dagd_buf_puts(&b, rest);
  /* `a >> b` alone on a line: an expression is no statement in Lua. */
  if (syntax && rest != msg && (strstr(rest, "near '>>'") || strstr(rest, "near '<<'")))
    dagd_buf_puts(&b, " (Lua has no >> or << statement: use d:chain(a, b), or b:after(a))");
  push_error(ctx, syntax && rest != msg ? DAGD_ESYNTAX : DAGD_EINVAL, line, dagd_buf_steal(&b), traceback);
}

/* What one file produced, before it is merged into a bag. */
typedef struct file_result {
  dagd_dag **dags;
  size_t n_dags;
  dagd_load_error *errors;
  size_t n_errors;
  int first_code;
} file_result;

/* Loads one file into *out. Touches no shared state but the library
 * cache, so files can load on several threads. */
static void load_one_with(const char *path, const dagd_load_opts *opts, dagd__lua_after_fn after, void *data,
                          file_result *out) {
  dagd__lua_ctx ctx;
  memset(&ctx, 0, sizeof(ctx));
  ctx.after = after;
  ctx.after_data = data;
  ctx.path = path;
  ctx.dir = dir_of(path);
  ctx.budget = opts->instruction_budget ? opts->instruction_budget : 50000000;
  ctx.time_limit_ms = opts->time_limit_ms > 0 ? opts->time_limit_ms : 5000;
  ctx.mem_limit = opts->memory_limit ? opts->memory_limit : (256u << 20);
  ctx.mem_cap = ctx.mem_limit;
  ctx.list_ref = LUA_NOREF;

  char errbuf[256];
  char *src = read_file(path, &ctx.src_len, errbuf, sizeof(errbuf));
  lua_State *L = NULL;
  if (src == NULL) {
    dagd__lua_ctx_error(&ctx, DAGD_EIO, 0, "%s", errbuf);
    goto done;
  }
  ctx.src = src;
  /* Lua's own short name for the chunk ("..." + tail when long), so
   * messages Lua positions can be split back into file and line. */
  size_t plen = strlen(path);
  if (plen + 1 <= LUA_IDSIZE)
    snprintf(ctx.short_src, sizeof(ctx.short_src), "%s", path);
  else
    snprintf(ctx.short_src, sizeof(ctx.short_src), "...%s", path + plen - (LUA_IDSIZE - 4));
  ctx.lib = dagd__lua_lib_get(lua_dir(opts));
  if (ctx.lib->error != NULL) {
    dagd__lua_ctx_error(&ctx, DAGD_ENOENT, 0, "%s", ctx.lib->error);
    goto done;
  }
  L = lua_newstate(limit_alloc, &ctx);
  if (L == NULL) {
    dagd__lua_ctx_error(&ctx, DAGD_ENOMEM, 0, "cannot create a Lua state");
    goto done;
  }
  *(dagd__lua_ctx **)lua_getextraspace(L) = &ctx;
  ctx.L = L;
  lua_pushcfunction(L, msgh);
  lua_pushcfunction(L, run_file);
  int status = lua_pcall(L, 0, 0, 1);
  if (status != LUA_OK) record_pcall_error(L, &ctx, status);

done:
  if (L != NULL) {
    /* Finalizers the file set run now, still under the hook. */
    ctx.mem_limit = ctx.mem_used + (16u << 20);
    ctx.user_source = NULL;
    lua_sethook(L, limit_hook, LUA_MASKCOUNT, HOOK_EVERY);
    lua_close(L);
  }
  arena_close(&ctx);
  if (ctx.n_errors != 0) {
    for (size_t i = 0; i < ctx.n_dags; i++) dagd_dag_free(ctx.dags[i]);
    free(ctx.dags);
    ctx.dags = NULL;
    ctx.n_dags = 0;
  }
  out->dags = ctx.dags;
  out->n_dags = ctx.n_dags;
  out->errors = ctx.errors;
  out->n_errors = ctx.n_errors;
  out->first_code = ctx.n_errors ? (ctx.first_code ? ctx.first_code : DAGD_EINVAL) : 0;
  free(ctx.err_msg);
  free(ctx.line_starts);
  free(ctx.dir);
  free(src);
}

static void load_one(const char *path, const dagd_load_opts *opts, file_result *out) {
  load_one_with(path, opts, NULL, NULL, out);
}

/* Moves a file's result into the bag: all its DAGs, or (on any error,
 * including a DAG id an earlier file already has) only its errors. */
static int merge(dagd_dagbag *bag, file_result *r) {
  bag->n_files++;
  if (r->n_errors == 0) {
    for (size_t i = 0; i < r->n_dags; i++) {
      const dagd_dag *other = dagd_dagbag_find(bag, r->dags[i]->id);
      if (other == NULL) continue;
      r->errors = dagd_realloc(r->errors, (r->n_errors + 1) * sizeof(*r->errors));
      dagd_load_error *e = &r->errors[r->n_errors++];
      e->file = dagd_strdup(r->dags[i]->fileloc);
      e->line = r->dags[i]->line;
      e->message = dagd_asprintf("duplicate DAG id \"%s\" (already defined at %s:%d)", r->dags[i]->id,
                                 other->fileloc ? other->fileloc : "?", other->line);
      e->traceback = NULL;
      r->first_code = DAGD_EEXIST;
    }
  }
  if (r->n_errors == 0) {
    for (size_t i = 0; i < r->n_dags; i++) bag_add(bag, r->dags[i]);
  } else {
    for (size_t i = 0; i < r->n_dags; i++) dagd_dag_free(r->dags[i]);
    bag->errors = dagd_realloc(bag->errors, (bag->n_errors + r->n_errors) * sizeof(*bag->errors));
    memcpy(bag->errors + bag->n_errors, r->errors, r->n_errors * sizeof(*r->errors));
    bag->n_errors += r->n_errors;
  }
  free(r->dags);
  free(r->errors);
  int rc = r->first_code;
  memset(r, 0, sizeof(*r));
  return rc;
}

int dagd_lua_load_file(const char *path, const dagd_load_opts *opts, dagd_dagbag *bag) {
  dagd_load_opts defaults;
  if (opts == NULL) {
    dagd_load_opts_default(&defaults);
    opts = &defaults;
  }
  file_result r;
  memset(&r, 0, sizeof(r));
  load_one(path, opts, &r);
  return merge(bag, &r);
}

int dagd__lua_run_file(const char *path, const dagd_load_opts *opts, dagd__lua_after_fn after, void *data,
                       dagd_dagbag *bag) {
  dagd_load_opts defaults;
  if (opts == NULL) {
    dagd_load_opts_default(&defaults);
    opts = &defaults;
  }
  file_result r;
  memset(&r, 0, sizeof(r));
  load_one_with(path, opts, after, data, &r);
  return merge(bag, &r);
}

typedef struct path_list {
  char **v;
  size_t n;
} path_list;

static void path_add(path_list *l, char *p) {
  if ((l->n & (l->n - 1)) == 0) l->v = dagd_realloc(l->v, (l->n ? l->n * 2 : 1) * sizeof(*l->v));
  l->v[l->n++] = p;
}

static int cmp_path(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Collects *.lua under dir, skipping hidden entries. Unreadable folders
 * become errors of the folder. */
static void walk(const char *dir, path_list *out, dagd_dagbag *bag, int depth) {
  DIR *d = opendir(dir);
  if (d == NULL || depth > 32) {
    if (d) closedir(d);
    bag->errors = dagd_realloc(bag->errors, (bag->n_errors + 1) * sizeof(*bag->errors));
    dagd_load_error *e = &bag->errors[bag->n_errors++];
    e->file = dagd_strdup(dir);
    e->line = 0;
    e->message = dagd_asprintf("cannot read folder: %s", depth > 32 ? "nested too deeply" : strerror(errno));
    e->traceback = NULL;
    return;
  }
  struct dirent *ent;
  while ((ent = readdir(d)) != NULL) {
    if (ent->d_name[0] == '.') continue;
    char *p = dagd_asprintf("%s/%s", dir, ent->d_name);
    struct stat st;
    if (stat(p, &st) != 0) {
      free(p);
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      walk(p, out, bag, depth + 1);
      free(p);
    } else if (S_ISREG(st.st_mode) && dagd_str_has_suffix(ent->d_name, ".lua")) {
      path_add(out, p);
    } else {
      free(p);
    }
  }
  closedir(d);
}

/* Work shared by the loader threads: each takes the next file index. */
typedef struct load_job {
  char **files;
  size_t n;
  size_t next; /* atomic */
  file_result *results;
  const dagd_load_opts *opts;
} load_job;

static void *load_worker(void *arg) {
  load_job *job = arg;
  for (;;) {
    size_t i = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
    if (i >= job->n) break;
    load_one(job->files[i], job->opts, &job->results[i]);
  }
  return NULL;
}

static int thread_count(const dagd_load_opts *opts, size_t files) {
  long n = opts->threads;
  if (n <= 0) {
    n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n > 8) n = 8;
  }
  if (n < 1) n = 1;
  /* A thread costs about as much as loading a few files. */
  if ((size_t)n > files / 4) n = (long)(files / 4);
  return n < 1 ? 1 : (int)n;
}

/* Loads files[0..n) and merges the results in order. */
static int load_many(char **files, size_t n, const dagd_load_opts *opts, dagd_dagbag *bag) {
  load_job job = {.files = files, .n = n, .next = 0, .opts = opts};
  job.results = dagd_calloc(n ? n : 1, sizeof(*job.results));
  int nt = thread_count(opts, n);
  pthread_t *tids = dagd_calloc((size_t)nt, sizeof(*tids));
  int started = 0;
  for (int i = 1; i < nt; i++)
    if (pthread_create(&tids[started], NULL, load_worker, &job) == 0) started++;
  load_worker(&job);
  for (int i = 0; i < started; i++) pthread_join(tids[i], NULL);
  free(tids);
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    int r = merge(bag, &job.results[i]);
    if (r != 0 && rc == 0) rc = r;
  }
  free(job.results);
  return rc;
}

int dagd_lua_load_paths(const char *const *paths, size_t n, const dagd_load_opts *opts, dagd_dagbag *bag) {
  dagd_load_opts defaults;
  if (opts == NULL) {
    dagd_load_opts_default(&defaults);
    opts = &defaults;
  }
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      path_list files = {0};
      size_t errs = bag->n_errors;
      size_t len = strlen(paths[i]);
      char *root = dagd_strndup(paths[i], len > 1 && paths[i][len - 1] == '/' ? len - 1 : len);
      walk(root, &files, bag, 0);
      free(root);
      if (bag->n_errors != errs && rc == 0) rc = DAGD_EIO;
      qsort(files.v, files.n, sizeof(*files.v), cmp_path);
      int r = load_many(files.v, files.n, opts, bag);
      if (r != 0 && rc == 0) rc = r;
      for (size_t j = 0; j < files.n; j++) free(files.v[j]);
      free(files.v);
    } else {
      int r = dagd_lua_load_file(paths[i], opts, bag);
      if (r != 0 && rc == 0) rc = r;
    }
  }
  return rc;
}

void dagd_dagbag_add(dagd_dagbag *bag, dagd_dag *dag) { bag_add(bag, dag); }

void dagd_dagbag_add_error(dagd_dagbag *bag, const char *file, int line, const char *message) {
  bag->errors = dagd_realloc(bag->errors, (bag->n_errors + 1) * sizeof(*bag->errors));
  dagd_load_error *e = &bag->errors[bag->n_errors++];
  e->file = dagd_strdup(file);
  e->line = line;
  e->message = dagd_strdup(message);
  e->traceback = NULL;
}

int dagd_lua_list_files(const char *dir, char ***files, size_t *n, dagd_dagbag *bag) {
  path_list l = {0};
  size_t errs = bag->n_errors;
  size_t len = strlen(dir);
  char *root = dagd_strndup(dir, len > 1 && dir[len - 1] == '/' ? len - 1 : len);
  walk(root, &l, bag, 0);
  free(root);
  qsort(l.v, l.n, sizeof(*l.v), cmp_path);
  *files = l.v;
  *n = l.n;
  return bag->n_errors != errs ? DAGD_EIO : 0;
}

int dagd_lua_load_files(char *const *files, size_t n, const dagd_load_opts *opts, dagd_dagbag *bag) {
  dagd_load_opts defaults;
  if (opts == NULL) {
    dagd_load_opts_default(&defaults);
    opts = &defaults;
  }
  return load_many((char **)files, n, opts, bag);
}
