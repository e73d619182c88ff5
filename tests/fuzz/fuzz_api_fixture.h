/* The fixture the API fuzz targets share: a real store in a temp dir, a
 * small DAG bag loaded from Lua, the API over both, and a dispatcher that
 * builds a request for a route with given path parameters, query and body.
 * The store is reused across inputs (opening one costs more than most
 * inputs) and recreated every FUZZ_API_RESET inputs so it stays small.
 * After each call the answer is checked: a status in range, a JSON body
 * that parses, and no rows added by a request answered with a 4xx.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_FUZZ_API_FIXTURE_H
#define DAGD_FUZZ_API_FIXTURE_H
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dagd/api.h"
#include "dagd/err.h"
#include "dagd/lua.h"
#include "dagd/store.h"
#include "dagd/util.h"
#include "fuzz_common.h"

#define FUZZ_API_RESET 2000
#define FUZZ_NOW 1767225600.0 /* 2026-01-01T00:00:00Z */

static const char fuzz_dag_src[] =
    "local dagd = require 'dagd'\n"
    "local d = dagd.dag { id = 'etl', schedule = '@daily', start_date = '2025-12-01', tags = {'ml'},\n"
    "                     on_event = { 'drift_detected' }, event_cooldown = '1h', max_active_runs = 2 }\n"
    "local a = d:shell { id = 'a', cmd = 'true' }\n"
    "local b = d:shell { id = 'b', cmd = 'true', retries = 2 }\n"
    "local c = d:shell { id = 'c', cmd = 'echo {{ conf.x | default(\"1\") }}' }\n"
    "d:chain(a, b, c)\n"
    "local e = dagd.dag { id = 'other', on_event = { 'drift_detected', 'HighLatency' } }\n"
    "e:shell { id = 'x', cmd = 'true' }\n";

typedef struct fuzz_api {
  char dir[128];
  char db[160];
  dagd_store *st;
  sqlite3 *ro;  /* a second connection that counts rows */
  dagd_dagbag bag;
  dagd_api api;
  unsigned long calls;
  /* The Host and Origin headers of the next call (NULL: none). */
  const char *host, *origin;
} fuzz_api;

static fuzz_api fa;

static const dagd_dagbag *fa_bag(void *data) { return &((fuzz_api *)data)->bag; }
static const dagd_dag *fa_find(void *data, const char *id) { return dagd_dagbag_find(&((fuzz_api *)data)->bag, id); }
static void fa_changed(void *data, const char *id) { (void)data, (void)id; }
static void fa_kill(void *data, int64_t pk, const char *task) { (void)data, (void)pk, (void)task; }
static double fa_heartbeat(void *data) { (void)data; return 1.0; }

static void fa_open_store(void) {
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_store_open(fa.db, &fa.st, &err) < 0) {
    fprintf(stderr, "fuzz: store: %s\n", err.msg);
    abort();
  }
  for (size_t i = 0; i < fa.bag.n_dags; i++)
    if (dagd_store_dag_upsert(fa.st, fa.bag.dags[i]->id, "etl.lua", false, &err) < 0) abort();
  if (sqlite3_open_v2(fa.db, &fa.ro, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) abort();
  dagd_api_hooks hooks = {.data = &fa, .bag = fa_bag, .find_dag = fa_find, .changed = fa_changed,
                          .kill_try = fa_kill, .heartbeat_age = fa_heartbeat};
  dagd_api_init(&fa.api, fa.st, &hooks, NULL, NULL, 0);
  fa.api.logs_folder = fa.dir;
  fa.api.max_backfill_runs = 50; /* bounds the work one input can ask for */
  snprintf(fa.api.listen_host, sizeof(fa.api.listen_host), "127.0.0.1");
  fa.api.listen_port = 8787;
  fa.host = "127.0.0.1:8787";
}

static void fa_close_store(void) {
  dagd_api_close(&fa.api);
  sqlite3_close(fa.ro);
  dagd_store_close(fa.st);
  static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
  char p[200];
  for (size_t i = 0; i < 4; i++) {
    snprintf(p, sizeof(p), "%s%s", fa.db, suffixes[i]);
    unlink(p);
  }
}

/* Removes the temp dir when libFuzzer exits (it ends through exit()). */
static void fa_cleanup(void) {
  fa_close_store();
  dagd_dagbag_close(&fa.bag);
  /* fa.dir is "<base>/dagd-fuzz-XXXXXX": remove it only below its base. */
  char base[200];
  snprintf(base, sizeof(base), "%s", fa.dir);
  char *slash = strrchr(base, '/');
  if (slash) *slash = '\0';
  if (dagd_fs_remove_tree_within(base, fa.dir, NULL) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fa.dir);
}

static void fa_init(void) {
  const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(fa.dir, sizeof(fa.dir), "%s/dagd-fuzz-XXXXXX", base);
  if (!mkdtemp(fa.dir)) abort();
  char path[200];
  snprintf(path, sizeof(path), "%s/etl.lua", fa.dir);
  FILE *fp = fopen(path, "w");
  if (!fp) abort();
  fputs(fuzz_dag_src, fp);
  fclose(fp);
  /* A log file for the logs route to find. */
  snprintf(path, sizeof(path), "%s/etl", fa.dir);
  mkdir(path, 0700);
  snprintf(path, sizeof(path), "%s/etl/r1", fa.dir);
  mkdir(path, 0700);
  snprintf(path, sizeof(path), "%s/etl/r1/a", fa.dir);
  mkdir(path, 0700);
  snprintf(path, sizeof(path), "%s/etl/r1/a/1.log", fa.dir);
  fp = fopen(path, "w");
  if (fp) {
    fputs("hello\n", fp);
    fclose(fp);
  }
  dagd_load_opts opts;
  dagd_load_opts_default(&opts);
  opts.lua_dir = DAGD_SOURCE_DIR "/lua";
  dagd_dagbag_init(&fa.bag);
  snprintf(path, sizeof(path), "%s/etl.lua", fa.dir);
  if (dagd_lua_load_file(path, &opts, &fa.bag) != 0 || fa.bag.n_dags != 2) abort();
  snprintf(fa.db, sizeof(fa.db), "%s/state.db", fa.dir);
  fa_open_store();
  atexit(fa_cleanup);
}

static int64_t fa_rows(void) {
  sqlite3_stmt *s;
  int64_t n = -1;
  if (sqlite3_prepare_v2(fa.ro,
                         "SELECT (SELECT count(*) FROM dag_run) + (SELECT count(*) FROM task_instance)"
                         " + (SELECT count(*) FROM event)",
                         -1, &s, NULL) != SQLITE_OK)
    abort();
  if (sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return n;
}

/* Builds the request path from route's pattern and params, dispatches and
 * checks the answer. Returns the status. */
static int fa_call(const dagd_api_route *route, const char *const *params, size_t n_params, const char *query,
                   const char *body, size_t body_len, const char *content_type, const char *signature) {
  if (++fa.calls % FUZZ_API_RESET == 0) {
    fa_close_store();
    fa_open_store();
  }
  char path[1024];
  size_t o = 0, k = 0;
  for (const char *s = route->pattern; *s && o < sizeof(path) - 1;) {
    if (*s == '{') {
      const char *v = k < n_params ? params[k++] : "x";
      o += (size_t)snprintf(path + o, sizeof(path) - o, "%s", v);
      if (o >= sizeof(path)) o = sizeof(path) - 1;
      s = strchr(s, '}') + 1;
    } else {
      path[o++] = *s++;
    }
  }
  path[o] = '\0';
  dagd_api_request req = {.method = route->method, .path = path, .params = params, .n_params = n_params,
                          .query = query, .body = body, .body_len = body_len, .content_type = content_type,
                          .signature = signature, .host = fa.host, .origin = fa.origin, .version_minor = 1,
                          .local = true, .no_wait = true, .now = FUZZ_NOW};
  int64_t before = fa_rows();
  dagd_api_response resp;
  dagd_api_response_init(&resp);
  dagd_api_dispatch(&fa.api, route, &req, &resp);
  FUZZ_CHECK(resp.status >= 200 && resp.status <= 599);
  /* Another name, or another site's page, is refused whatever else the
   * request holds (and, being a 4xx, changes nothing: below). */
  if (fa.host && strcmp(fa.host, "evil.example") == 0) FUZZ_CHECK(resp.status == 421);
  else if (fa.origin && strcmp(fa.origin, "http://evil.example") == 0) FUZZ_CHECK(resp.status == 403);
  if (resp.content_type && strstr(resp.content_type, "json")) {
    json_error_t je;
    json_t *doc = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, JSON_DECODE_ANY, &je);
    if (!doc) fprintf(stderr, "fuzz: %s %s -> %d: body is not JSON: %s\n", route->method, path, resp.status, je.text);
    FUZZ_CHECK(doc != NULL);
    json_decref(doc);
  }
  if (resp.status >= 400 && resp.status < 500) {
    int64_t after = fa_rows();
    if (after != before)
      fprintf(stderr, "fuzz: %s %s -> %d added %lld rows: %.*s\n", route->method, path, resp.status,
              (long long)(after - before), (int)resp.body.len, resp.body.data);
    FUZZ_CHECK(after == before);
  }
  int status = resp.status;
  dagd_api_response_close(&resp);
  return status;
}

#endif
