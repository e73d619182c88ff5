/* The private helpers lua/dagd/init.lua receives as `core`: where in the
 * DAG file a call comes from, duration and date checks, file reading for
 * dagd.read_json / dagd.glob / io.open (confined to the DAG folder),
 * os.getenv without DAGD_* names, and the pcall/xpcall the sandbox exposes
 * (which never swallow a limit error). DAG files never see `core` itself.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <jansson.h>
#include <lauxlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dagd/compare.h"
#include "dagd/err.h"
#include "dagd/time.h"
#include "dagd/util.h"
#include "lua/internal.h"

#define READ_JSON_MAX (64u << 20)

int dagd__lua_user_line(lua_State *L, dagd__lua_ctx *ctx) {
  lua_Debug ar;
  if (ctx->user_source == NULL) return 0;
  for (int level = 0; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "Sl", &ar)) continue;
    /* Identity, not text: a chunk the file load()s under the same name is
     * not the file. */
    if (ar.source == ctx->user_source) return ar.currentline;
  }
  return 0;
}

static void build_line_starts(dagd__lua_ctx *ctx) {
  size_t n = 1;
  for (size_t i = 0; i < ctx->src_len; i++)
    if (ctx->src[i] == '\n') n++;
  ctx->line_starts = dagd_malloc(n * sizeof(*ctx->line_starts));
  ctx->line_starts[0] = 0;
  size_t k = 1;
  for (size_t i = 0; i < ctx->src_len; i++)
    if (ctx->src[i] == '\n') ctx->line_starts[k++] = i + 1;
  ctx->n_lines = n;
}

/* Level of a long bracket "[==[" at p (number of '='), or -1. */
static int long_bracket(const char *p, const char *end) {
  if (p >= end || *p != '[') return -1;
  int lvl = 0;
  p++;
  while (p < end && *p == '=') {
    lvl++;
    p++;
  }
  return (p < end && *p == '[') ? lvl : -1;
}

/* Skips a long string/comment body starting at its opening bracket;
 * counts newlines into *line. */
static const char *skip_long(const char *p, const char *end, int lvl, int *line) {
  p += lvl + 2;
  while (p < end) {
    if (*p == '\n') (*line)++;
    if (*p == ']') {
      const char *q = p + 1;
      int k = 0;
      while (q < end && *q == '=') {
        k++;
        q++;
      }
      if (k == lvl && q < end && *q == ']') return q + 1;
    }
    p++;
  }
  return end;
}

int dagd__lua_field_line(dagd__lua_ctx *ctx, int line, const char *field) {
  if (ctx->src == NULL || line < 1) return line;
  if (ctx->line_starts == NULL) build_line_starts(ctx);
  if ((size_t)line > ctx->n_lines) return line;
  size_t flen = strlen(field);
  const char *p = ctx->src + ctx->line_starts[line - 1], *end = ctx->src + ctx->src_len;
  int cur = line, depth = 0, any = 0;
  bool started = false;
  /* A small Lua tokenizer: enough to skip strings and comments and find
   * `field =` inside the first table constructor opened on `line`. */
  while (p < end) {
    char c = *p;
    if (c == '\n') {
      if (!started) return line;
      cur++;
      p++;
    } else if (c == '-' && p + 1 < end && p[1] == '-') {
      p += 2;
      int lvl = long_bracket(p, end);
      if (lvl >= 0) {
        p = skip_long(p, end, lvl, &cur);
      } else {
        while (p < end && *p != '\n') p++;
      }
    } else if (c == '"' || c == '\'') {
      p++;
      while (p < end && *p != c && *p != '\n') {
        if (*p == '\\' && p + 1 < end) {
          if (p[1] == '\n') cur++;
          p++;
        }
        p++;
      }
      if (p < end && *p == c) p++;
    } else if (c == '[' && long_bracket(p, end) >= 0) {
      p = skip_long(p, end, long_bracket(p, end), &cur);
    } else if (c == '{') {
      depth++;
      started = true;
      p++;
    } else if (c == '}') {
      depth--;
      p++;
      if (started && depth <= 0) break;
    } else if (isalpha((unsigned char)c) || c == '_') {
      const char *s = p;
      while (p < end && (isalnum((unsigned char)*p) || *p == '_')) p++;
      if (started && (size_t)(p - s) == flen && memcmp(s, field, flen) == 0 &&
          (s == ctx->src || (s[-1] != '.' && s[-1] != ':'))) {
        const char *q = p;
        while (q < end && (*q == ' ' || *q == '\t')) q++;
        if (q < end && *q == '=' && (q + 1 >= end || q[1] != '=')) {
          if (depth == 1) return cur;
          if (any == 0) any = cur;
        }
      }
    } else if (isdigit((unsigned char)c)) {
      while (p < end && (isalnum((unsigned char)*p) || *p == '.')) p++;
    } else {
      p++;
    }
  }
  return any ? any : line;
}

/* core.userline() -> line of the innermost DAG-file frame */
static int core_userline(lua_State *L) {
  lua_pushinteger(L, dagd__lua_user_line(L, dagd__lua_ctx_of(L)));
  return 1;
}

/* core.fieldline(line, field) -> line */
static int core_fieldline(lua_State *L) {
  lua_Integer line = luaL_checkinteger(L, 1);
  const char *field = luaL_checkstring(L, 2);
  if (line < 1 || line > 0x7fffffff) {
    lua_pushinteger(L, line);
    return 1;
  }
  lua_pushinteger(L, dagd__lua_field_line(dagd__lua_ctx_of(L), (int)line, field));
  return 1;
}

/* core.duration(text) -> seconds | nil, message */
static int core_duration(lua_State *L) {
  const char *s = luaL_checkstring(L, 1);
  int64_t secs;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_duration_parse(s, &secs, &err) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err.msg);
    return 2;
  }
  lua_pushinteger(L, (lua_Integer)secs);
  return 1;
}

/* core.comparison(text) -> true, uses_baseline | nil, message: a gate
 * check's expression, in the grammar the gate evaluates it with. */
static int core_comparison(lua_State *L) {
  const char *s = luaL_checkstring(L, 1);
  dagd_cmp_expr e;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_cmp_parse(s, "expression", true, &e, &err) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err.msg);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_pushboolean(L, e.uses_baseline);
  return 2;
}

/* core.checkdate(text) -> true | nil, message */
static int core_checkdate(lua_State *L) {
  const char *s = luaL_checkstring(L, 1);
  int64_t t;
  int has_offset;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_time_parse(s, &t, &has_offset, &err) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err.msg);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Userdata that releases a C resource if a Lua error (memory) jumps over
 * the code that would have released it. */
typedef struct cleanup_box {
  void (*fn)(void *);
  void *p;
  glob_t g; /* storage for core.glob, inside the box so it lives as long */
} cleanup_box;

static int box_gc(lua_State *L) {
  cleanup_box *b = lua_touserdata(L, 1);
  if (b->fn && b->p) b->fn(b->p);
  b->p = NULL;
  return 0;
}

static cleanup_box *push_box(lua_State *L, void (*fn)(void *)) {
  cleanup_box *b = lua_newuserdatauv(L, sizeof(*b), 0);
  b->fn = fn;
  b->p = NULL;
  if (luaL_newmetatable(L, "dagd.cleanup")) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2); /* box */
  return b;
}

static void json_release(void *p) { json_decref(p); }

static void push_json(lua_State *L, json_t *j, int depth) {
  luaL_checkstack(L, 4, "JSON nested too deeply");
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    const char *key;
    json_t *v;
    lua_createtable(L, 0, (int)json_object_size(j));
    json_object_foreach(j, key, v) {
      push_json(L, v, depth + 1);
      lua_setfield(L, -2, key);
    }
    break;
  }
  case JSON_ARRAY: {
    size_t n = json_array_size(j);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
      push_json(L, json_array_get(j, i), depth + 1);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    break;
  }
  case JSON_STRING: lua_pushlstring(L, json_string_value(j), json_string_length(j)); break;
  case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(j)); break;
  case JSON_REAL: lua_pushnumber(L, json_real_value(j)); break;
  case JSON_TRUE: lua_pushboolean(L, 1); break;
  case JSON_FALSE: lua_pushboolean(L, 0); break;
  case JSON_NULL: lua_pushlightuserdata(L, NULL); break;
  }
}

/* Whether the resolved path real lies inside the DAG folder's root. */
static bool under_root(const dagd__lua_ctx *ctx, const char *real) {
  size_t n = strlen(ctx->root);
  if (strcmp(ctx->root, "/") == 0) return true;
  return strncmp(real, ctx->root, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

/* Opens path for reading as a DAG file may: only a regular file, only
 * below the root once every symbolic link is resolved, and without
 * blocking (a FIFO is refused, not waited on). Returns the descriptor,
 * or -1 with a message in why. The check is made on what was opened
 * (/proc/self/fd), so a link swapped in between cannot lead out. */
static int open_confined(const dagd__lua_ctx *ctx, const char *path, char *why, size_t whylen) {
  char real[PATH_MAX];
  if (realpath(path, real) == NULL) {
    snprintf(why, whylen, "%s", strerror(errno));
    return -1;
  }
  if (!under_root(ctx, real)) {
    snprintf(why, whylen, "outside the DAG folder %s (a DAG file reads only below it)", ctx->root);
    return -1;
  }
  int fd = open(real, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    snprintf(why, whylen, "%s", strerror(errno));
    return -1;
  }
  struct stat st;
  char link[64], now[PATH_MAX];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, now, sizeof(now) - 1);
  if (n >= 0) now[n] = '\0';
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(why, whylen, "not a regular file");
  } else if (n >= 0 && !under_root(ctx, now)) {
    snprintf(why, whylen, "outside the DAG folder %s (a DAG file reads only below it)", ctx->root);
  } else {
    /* Reads of a regular file never block; plain blocking mode for stdio. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
  }
  close(fd);
  return -1;
}

static int stream_close(lua_State *L) {
  luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  return luaL_fileresult(L, fclose(p->f) == 0, NULL);
}

/* core.open(path, shown_path) -> file | nil, message: io.open in read
 * mode, confined (open_confined). */
static int core_open(lua_State *L) {
  dagd__lua_ctx *ctx = dagd__lua_ctx_of(L);
  const char *path = luaL_checkstring(L, 1);
  const char *shown = luaL_optstring(L, 2, path);
  luaL_Stream *p = (luaL_Stream *)lua_newuserdatauv(L, sizeof(luaL_Stream), 0);
  p->closef = NULL; /* closed until the file is open */
  luaL_setmetatable(L, LUA_FILEHANDLE);
  char why[PATH_MAX + 96];
  int fd = open_confined(ctx, path, why, sizeof(why));
  FILE *f = fd < 0 ? NULL : fdopen(fd, "r");
  if (f == NULL) {
    if (fd >= 0) {
      snprintf(why, sizeof(why), "%s", strerror(errno));
      close(fd);
    }
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", shown, why);
    return 2;
  }
  p->f = f;
  p->closef = stream_close;
  return 1;
}

/* core.getenv(name) -> value | nil: os.getenv without the daemon's own
 * settings and secrets (every DAGD_* name reads as unset). */
static int core_getenv(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  if (strncmp(name, "DAGD_", 5) == 0) {
    lua_pushnil(L);
    return 1;
  }
  const char *v = getenv(name);
  if (v == NULL) lua_pushnil(L);
  else lua_pushstring(L, v);
  return 1;
}

/* core.read_json(path, shown_path) -> value; JSON null is dagd.null. */
static int core_read_json(lua_State *L) {
  dagd__lua_ctx *ctx = dagd__lua_ctx_of(L);
  const char *path = luaL_checkstring(L, 1);
  const char *shown = luaL_optstring(L, 2, path);
  char why[PATH_MAX + 96];
  int fd = open_confined(ctx, path, why, sizeof(why));
  if (fd < 0) {
    lua_pushfstring(L, "dagd.read_json(\"%s\"): %s", shown, why);
    return lua_error(L);
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > READ_JSON_MAX) {
    close(fd);
    lua_pushfstring(L, "dagd.read_json(\"%s\"): not a regular file of at most 64 MiB", shown);
    return lua_error(L);
  }
  cleanup_box *box = push_box(L, json_release);
  json_error_t je;
  json_t *j = json_loadfd(fd, JSON_DECODE_ANY, &je);
  close(fd);
  if (j == NULL) {
    lua_pushfstring(L, "dagd.read_json(\"%s\"): line %d: %s", shown, je.line, je.text);
    return lua_error(L);
  }
  box->p = j;
  push_json(L, j, 0);
  json_decref(j);
  box->p = NULL;
  return 1;
}

static void glob_release(void *p) { globfree(p); }

/* core.glob(pattern) -> sorted list of paths; relative patterns match
 * from the DAG file's folder and give relative paths back. */
static int core_glob(lua_State *L) {
  dagd__lua_ctx *ctx = dagd__lua_ctx_of(L);
  const char *pat = luaL_checkstring(L, 1);
  const char *full = pat;
  size_t strip = 0;
  if (pat[0] != '/') {
    full = lua_pushfstring(L, "%s/%s", ctx->dir, pat);
    strip = strlen(ctx->dir) + 1;
  }
  cleanup_box *box = push_box(L, glob_release);
  glob_t *g = &box->g;
  memset(g, 0, sizeof(*g));
  box->p = g;
  int rc = glob(full, 0, NULL, g);
  if (rc != 0 && rc != GLOB_NOMATCH) {
    globfree(g);
    box->p = NULL;
    lua_pushfstring(L, "dagd.glob(\"%s\"): cannot read the folders", pat);
    return lua_error(L);
  }
  lua_createtable(L, (int)g->gl_pathc, 0);
  lua_Integer k = 0;
  for (size_t i = 0; i < g->gl_pathc; i++) {
    const char *m = g->gl_pathv[i];
    /* Only names below the DAG folder: a listing is information too. */
    char real[PATH_MAX];
    if (realpath(m, real) == NULL || !under_root(ctx, real)) continue;
    lua_pushstring(L, strlen(m) >= strip ? m + strip : m);
    lua_rawseti(L, -2, ++k);
  }
  globfree(g);
  box->p = NULL;
  return 1;
}

/* Whether an error caught by a sandboxed pcall must go on up: limits end
 * the file, whatever the file tries. */
static bool must_rethrow(dagd__lua_ctx *ctx, int status) {
  if (status == LUA_ERRMEM) ctx->mem_fatal = true;
  return ctx->limit_hit || ctx->mem_fatal;
}

/* core.report(msg): an error the library goes on from (dagd__lua_report). */
static int core_report(lua_State *L) {
  dagd__lua_report(L, dagd__lua_ctx_of(L), luaL_checkstring(L, 1));
  return 0;
}

/* pcall(f, ...) as in the base library, minus catching limit errors. */
static int core_pcall(lua_State *L) {
  luaL_checkany(L, 1);
  int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  if (status != LUA_OK && must_rethrow(dagd__lua_ctx_of(L), status)) return lua_error(L);
  lua_pushboolean(L, status == LUA_OK);
  lua_insert(L, 1);
  return lua_gettop(L);
}

/* xpcall(f, msgh, ...) likewise. */
static int core_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 1);
  lua_copy(L, 2, 1);
  lua_replace(L, 2); /* msgh f args... */
  int status = lua_pcall(L, n - 2, LUA_MULTRET, 1);
  if (status != LUA_OK && must_rethrow(dagd__lua_ctx_of(L), status)) return lua_error(L);
  lua_pushboolean(L, status == LUA_OK);
  lua_replace(L, 1);
  return lua_gettop(L);
}

/* core.module(name) -> the value of lua/dagd/<name>.lua, run once. */
static int core_module(lua_State *L) {
  dagd__lua_ctx *ctx = dagd__lua_ctx_of(L);
  const char *name = luaL_checkstring(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "dagd.modules");
  if (lua_getfield(L, -1, name) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  const dagd__lua_chunk *c = dagd__lua_lib_find(ctx->lib, name);
  if (c == NULL) return luaL_error(L, "no module dagd.%s", name);
  if (luaL_loadbufferx(L, c->code, c->len, name, "b") != LUA_OK) return lua_error(L);
  lua_pushvalue(L, lua_upvalueindex(1)); /* modules chunk core */
  lua_call(L, 1, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, name); /* modules value */
  return 1;
}

void dagd__lua_push_core(lua_State *L, dagd__lua_ctx *ctx) {
  static const luaL_Reg fns[] = {
      {"userline", core_userline}, {"fieldline", core_fieldline}, {"duration", core_duration},
      {"comparison", core_comparison},
      {"checkdate", core_checkdate}, {"read_json", core_read_json}, {"glob", core_glob},
      {"pcall", core_pcall},       {"xpcall", core_xpcall},       {"report", core_report},
      {"open", core_open},         {"getenv", core_getenv},       {NULL, NULL},
  };
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "dagd.modules");
  luaL_newlib(L, fns); /* core */
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, core_module, 1);
  lua_setfield(L, -2, "module");
  lua_pushstring(L, ctx->path);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, ctx->dir);
  lua_setfield(L, -2, "dir");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
#ifdef DAGD_VERSION
  lua_pushstring(L, DAGD_VERSION);
#else
  lua_pushstring(L, "0");
#endif
  lua_setfield(L, -2, "version");
}
