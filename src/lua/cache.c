/* The compiled Lua side of the DAG API (the .lua files of lua/dagd/): parsed once per
 * process and kept as bytecode, so each DAG file's fresh state only has to
 * undump it. This trusted code is the only binary chunk ever loaded; DAG
 * files are always loaded as text.
 * SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/util.h"
#include "lua/internal.h"

static pthread_mutex_t libs_lock = PTHREAD_MUTEX_INITIALIZER;
/* Process-lifetime cache, one entry per folder (in practice one). */
static dagd__lua_lib *libs;

static int dump_writer(lua_State *L, const void *p, size_t n, void *ud) {
  dagd_buf_append(ud, p, n);
  return 0;
}

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  dagd_buf b;
  dagd_buf_init(&b);
  char tmp[8192];
  size_t n;
  while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) dagd_buf_append(&b, tmp, n);
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    dagd_buf_close(&b);
    return NULL;
  }
  *len = b.len;
  return dagd_buf_steal(&b);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void compile(dagd__lua_lib *lib) {
  char *folder = dagd_asprintf("%s/dagd", lib->dir);
  DIR *d = opendir(folder);
  if (d == NULL) {
    lib->error = dagd_asprintf("cannot open the dagd Lua library %s: %s (set DAGD_LUA_PATH)", folder,
                               strerror(errno));
    free(folder);
    return;
  }
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || !dagd_str_has_suffix(e->d_name, ".lua")) continue;
    names = dagd_realloc(names, (n + 1) * sizeof(*names));
    names[n++] = dagd_strdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof(*names), cmp_str);
  lib->chunks = dagd_calloc(n ? n : 1, sizeof(*lib->chunks));
  lua_State *L = luaL_newstate();
  if (L == NULL) abort();
  for (size_t i = 0; i < n && lib->error == NULL; i++) {
    char *path = dagd_asprintf("%s/%s", folder, names[i]);
    size_t len;
    char *src = read_all(path, &len);
    if (src == NULL) {
      lib->error = dagd_asprintf("cannot read %s: %s", path, strerror(errno));
    } else {
      char *chunkname = dagd_asprintf("@%s", path);
      if (luaL_loadbufferx(L, src, len, chunkname, "t") != LUA_OK) {
        lib->error = dagd_asprintf("dagd Lua library: %s", lua_tostring(L, -1));
      } else {
        dagd_buf b;
        dagd_buf_init(&b);
        lua_dump(L, dump_writer, &b, 1);
        dagd__lua_chunk *c = &lib->chunks[lib->n_chunks++];
        c->name = dagd_strndup(names[i], strlen(names[i]) - 4);
        c->len = b.len;
        c->code = dagd_buf_steal(&b);
      }
      lua_settop(L, 0);
      free(chunkname);
      free(src);
    }
    free(path);
  }
  lua_close(L);
  if (lib->error == NULL && dagd__lua_lib_find(lib, "init") == NULL)
    lib->error = dagd_asprintf("the dagd Lua library has no %s/init.lua (set DAGD_LUA_PATH)", folder);
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  free(folder);
}

const dagd__lua_lib *dagd__lua_lib_get(const char *dir) {
  pthread_mutex_lock(&libs_lock);
  dagd__lua_lib *lib;
  for (lib = libs; lib != NULL; lib = lib->next)
    if (strcmp(lib->dir, dir) == 0) break;
  if (lib == NULL) {
    lib = dagd_calloc(1, sizeof(*lib));
    lib->dir = dagd_strdup(dir);
    compile(lib);
    lib->next = libs;
    libs = lib;
  }
  pthread_mutex_unlock(&libs_lock);
  return lib;
}

const dagd__lua_chunk *dagd__lua_lib_find(const dagd__lua_lib *lib, const char *name) {
  for (size_t i = 0; i < lib->n_chunks; i++)
    if (strcmp(lib->chunks[i].name, name) == 0) return &lib->chunks[i];
  return NULL;
}
