/* Unit tests for the REST API handlers, called directly with requests
 * (no sockets) over a real store in a temp dir and DAGs loaded from Lua:
 * trigger, runs, task instances, mark, clear, pause, logs, backfill,
 * generic events, Alertmanager and Grafana deliveries (repeats, resolved
 * alerts, cooldown, paused DAGs), tokens, scopes and HMAC signatures, and
 * bad input answered with the right status and no state change.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "dagd/api.h"
#include "dagd/err.h"
#include "dagd/lua.h"
#include "dagd/store.h"
#include "dagd/util.h"

#define NOW 1767225600.0 /* 2026-01-01T00:00:00Z */

static const char *dag_src =
    "local dagd = require 'dagd'\n"
    "local d = dagd.dag { id = 'etl', schedule = '@daily', start_date = '2025-12-01', tags = {'ml'},\n"
    "                     on_event = { 'drift_detected' }, event_cooldown = '1h' }\n"
    "local a = d:shell { id = 'a', cmd = 'true' }\n"
    "local b = d:shell { id = 'b', cmd = 'true', retries = 2 }\n"
    "local c = d:shell { id = 'c', cmd = 'true' }\n"
    "d:chain(a, b, c)\n"
    "local e = dagd.dag { id = 'other', on_event = { 'drift_detected', 'HighLatency' } }\n"
    "e:shell { id = 'x', cmd = 'true' }\n";

typedef struct fixture {
  char dir[64];
  dagd_store *st;
  dagd_dagbag bag;
  dagd_api api;
  double now; /* the requests' clock */
  int changed;
  int killed;
  bool hide_etl; /* etl's file "removed": the hooks no longer find it */
  dagd_kv secrets[2];
} fixture;

static const dagd_dagbag *hook_bag(void *data) { return &((fixture *)data)->bag; }
static const dagd_dag *hook_find(void *data, const char *id) {
  fixture *f = data;
  if (f->hide_etl && strcmp(id, "etl") == 0) return NULL;
  return dagd_dagbag_find(&f->bag, id);
}
static void hook_changed(void *data, const char *id) { ((fixture *)data)->changed++; }
static void hook_kill(void *data, int64_t pk, const char *task) { ((fixture *)data)->killed++; }

static int setup_with(void **state, char *const *tokens, char *const *scopes, size_t n) {
  fixture *f = calloc(1, sizeof(*f));
  f->now = NOW;
  strcpy(f->dir, "/tmp/dagd-api-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  char path[128];
  snprintf(path, sizeof(path), "%s/state.db", f->dir);
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_store_open(path, &f->st, &err), 0);
  snprintf(path, sizeof(path), "%s/etl.lua", f->dir);
  FILE *fp = fopen(path, "w");
  fputs(dag_src, fp);
  fclose(fp);
  dagd_load_opts opts;
  dagd_load_opts_default(&opts);
  dagd_dagbag_init(&f->bag);
  assert_int_equal(dagd_lua_load_file(path, &opts, &f->bag), 0);
  for (size_t i = 0; i < f->bag.n_dags; i++)
    assert_int_equal(dagd_store_dag_upsert(f->st, f->bag.dags[i]->id, path, false, &err), 0);
  dagd_api_hooks hooks = {.data = f, .bag = hook_bag, .find_dag = hook_find, .changed = hook_changed,
                          .kill_try = hook_kill};
  dagd_api_init(&f->api, f->st, &hooks, tokens, scopes, n);
  f->secrets[0] = (dagd_kv){"grafana", "gsecret"};
  f->secrets[1] = (dagd_kv){"events", "esecret"};
  f->api.logs_folder = f->dir;
  dagd_api_add_secret(&f->api, "hunter2-secret");
  dagd_api_add_secret(&f->api, "abc"); /* too short to mask */
  *state = f;
  return 0;
}

static int setup(void **state) { return setup_with(state, NULL, NULL, 0); }

static int setup_tokens(void **state) {
  char *tokens[] = {"admin-token", "reader-token", "trigger-token"};
  char *scopes[] = {"admin", "read", "trigger"};
  return setup_with(state, tokens, scopes, 3);
}

static int teardown(void **state) {
  fixture *f = *state;
  dagd_api_close(&f->api);
  dagd_dagbag_close(&f->bag);
  dagd_store_close(f->st);
  assert_int_equal(dagd_fs_remove_tree_within("/tmp", f->dir, NULL), 0);
  free(f);
  return 0;
}

/* Matches path against the routes like the server would and dispatches. */
typedef struct call {
  const char *auth;
  const char *content_type; /* NULL: application/json when there is a body */
  bool no_content_type;     /* send none at all */
  const char *signature, *timestamp;
  const char *gsig, *gts;
  const char *host, *origin;
  bool host_repeated;
  int version_minor;
} call;

static json_t *request(fixture *f, const char *method, const char *path, const char *body, const call *c,
                       int want_status) {
  const char *q = strchr(path, '?');
  char p[512];
  snprintf(p, sizeof(p), "%.*s", q ? (int)(q - path) : (int)strlen(path), path);
  for (size_t r = 0; r < dagd_api_n_routes; r++) {
    const dagd_api_route *route = &dagd_api_routes[r];
    if (strcmp(route->method, method) != 0) continue;
    /* A tiny matcher: segments equal, or {param} takes one segment. */
    char pat[256], val[512];
    snprintf(pat, sizeof(pat), "%s", route->pattern);
    snprintf(val, sizeof(val), "%s", p);
    char *params[8];
    size_t np = 0;
    char *ps = NULL, *vs = NULL;
    char *a = strtok_r(pat, "/", &ps), *b = strtok_r(val, "/", &vs);
    bool ok = true;
    while (a && b && ok) {
      if (a[0] == '{') params[np++] = b;
      else ok = strcmp(a, b) == 0;
      a = strtok_r(NULL, "/", &ps);
      b = strtok_r(NULL, "/", &vs);
    }
    if (!ok || a || b) continue;
    dagd_api_request req = {.method = method, .path = p, .params = (const char *const *)params, .n_params = np,
                            .query = q ? q + 1 : "", .body = body, .body_len = body ? strlen(body) : 0,
                            .content_type = c && c->content_type ? c->content_type
                                            : body && !(c && c->no_content_type) ? "application/json"
                                                                                  : NULL,
                            .authorization = c ? c->auth : NULL, .signature = c ? c->signature : NULL,
                            .timestamp = c ? c->timestamp : NULL, .grafana_signature = c ? c->gsig : NULL,
                            .grafana_timestamp = c ? c->gts : NULL, .host = c ? c->host : NULL,
                            .origin = c ? c->origin : NULL, .host_repeated = c && c->host_repeated,
                            .version_minor = c ? c->version_minor : 0, .local = true, .now = f->now};
    dagd_api_response resp;
    dagd_api_response_init(&resp);
    dagd_api_dispatch(&f->api, route, &req, &resp);
    if (resp.status != want_status)
      fail_msg("%s %s: status %d, want %d: %s", method, path, resp.status, want_status, resp.body.data);
    json_t *doc = json_loads(resp.body.data ? resp.body.data : "", JSON_DECODE_ANY, NULL);
    if (resp.wait_run_pk && doc) json_object_set_new(doc, "_wait_run_pk", json_integer(resp.wait_run_pk));
    if (resp.www_authenticate && json_is_object(doc))
      json_object_set_new(doc, "_www_authenticate", json_string(resp.www_authenticate));
    dagd_api_response_close(&resp);
    return doc ? doc : json_null();
  }
  fail_msg("no route for %s %s", method, path);
  return NULL;
}

static const char *jstr(const json_t *doc, const char *key) { return json_string_value(json_object_get(doc, key)); }

static int64_t count(fixture *f, const char *sql) {
  (void)f;
  char path[128];
  snprintf(path, sizeof(path), "%s/state.db", f->dir);
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c \"import sqlite3; print(sqlite3.connect('%s').execute(\\\"%s\\\").fetchone()[0])\"",
           path, sql);
  FILE *p = popen(cmd, "r");
  long long n = -1;
  if (fscanf(p, "%lld", &n) != 1) n = -1;
  pclose(p);
  return n;
}

static void test_trigger_and_runs(void **state) {
  fixture *f = *state;
  json_t *r = request(f, "POST", "/api/v1/dags/etl/dagRuns",
                      "{\"conf\": {\"x\": 1}, \"dag_run_id\": \"my_run\", \"logical_date\": \"2026-01-01T00:00:00Z\"}",
                      NULL, 200);
  assert_string_equal(jstr(r, "dag_id"), "etl");
  assert_string_equal(jstr(r, "dag_run_id"), "my_run");
  assert_string_equal(jstr(r, "run_type"), "manual");
  assert_string_equal(jstr(r, "state"), "queued");
  assert_string_equal(jstr(r, "logical_date"), "2026-01-01T00:00:00Z");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "conf"), "x")), 1);
  assert_true(json_is_null(json_object_get(r, "end_date")));
  json_decref(r);
  assert_int_equal(f->changed, 1);
  /* The same run id: 409, nothing added. */
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"dag_run_id\": \"my_run\"}", NULL, 409));
  /* Defaults: manual__<now to the microsecond>, empty conf. */
  r = request(f, "POST", "/api/v1/dags/etl/dagRuns", "{}", NULL, 200);
  assert_string_equal(jstr(r, "dag_run_id"), "manual__2026-01-01T00:00:00.000000+00:00");
  json_decref(r);
  /* Bad input: each refused, nothing written. */
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{bad json", NULL, 400));
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "[1, 2]", NULL, 400));
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"conf\": [1]}", NULL, 400));
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"dag_run_id\": \"../../etc\"}", NULL, 400));
  /* Ids made only of dots: in the body, and as any id in a path. */
  r = request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"dag_run_id\": \"..\"}", NULL, 400);
  assert_string_equal(jstr(r, "detail"), "dag_run_id must not be made only of dots");
  json_decref(r);
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"dag_run_id\": \".\"}", NULL, 400));
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns/..", NULL, NULL, 400);
  assert_string_equal(jstr(r, "detail"), "invalid run id \"..\" in the path: must not be made only of dots");
  json_decref(r);
  json_decref(request(f, "GET", "/api/v1/dags/../dagRuns", NULL, NULL, 400));
  json_decref(request(f, "POST", "/api/v1/dags/./dagRuns", "{}", NULL, 400));
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns/r/taskInstances/../logs/1", NULL, NULL, 400));
  json_decref(request(f, "PATCH", "/api/v1/dags/etl/dagRuns/r/taskInstances/...", "{\"new_state\": \"success\"}",
                      NULL, 400));
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"logical_date\": \"yesterday\"}", NULL, 400));
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"conf\": {}, \"conf\": {}}", NULL, 400));
  json_decref(request(f, "POST", "/api/v1/dags/nope/dagRuns", "{}", NULL, 404));
  call xml = {.content_type = "application/xml"};
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{}", &xml, 415));
  call ok_ct = {.content_type = "application/json; charset=utf-8"};
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"dag_run_id\": \"r3\"}", &ok_ct, 200));
  assert_int_equal(count(f, "select count(*) from dag_run"), 3);
  assert_int_equal(count(f, "select count(*) from task_instance"), 9);

  r = request(f, "GET", "/api/v1/dags/etl/dagRuns?limit=2", NULL, NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(r, "total_entries")), 3);
  assert_int_equal(json_array_size(json_object_get(r, "dag_runs")), 2);
  json_decref(r);
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns?state=success", NULL, NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(r, "total_entries")), 0);
  json_decref(r);
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns?state=bogus", NULL, NULL, 400));
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns?limit=-1", NULL, NULL, 400));
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns/my_run?wait=5", NULL, NULL, 200);
  assert_true(json_integer_value(json_object_get(r, "_wait_run_pk")) > 0); /* unfinished: long poll */
  json_decref(r);
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns/nope", NULL, NULL, 404));

  r = request(f, "GET", "/api/v1/dags/etl/dagRuns/my_run/taskInstances", NULL, NULL, 200);
  json_t *tis = json_object_get(r, "task_instances");
  assert_int_equal(json_array_size(tis), 3);
  json_t *b = json_array_get(tis, 1);
  assert_string_equal(jstr(b, "task_id"), "b");
  assert_string_equal(jstr(b, "state"), "none");
  assert_int_equal(json_integer_value(json_object_get(b, "max_tries")), 3);
  assert_string_equal(jstr(b, "operator"), "shell");
  assert_true(json_is_object(json_object_get(b, "outputs")));
  json_decref(r);

  /* A task the DAG no longer has ('0gone' sorts first in the store) comes
   * after the DAG's tasks, which keep their topological order. */
  char cmd[512];
  snprintf(cmd, sizeof(cmd),
           "/usr/bin/python3 -c \"import sqlite3; c = sqlite3.connect('%s/state.db'); "
           "c.execute(\\\"insert into task_instance (run_pk, task_id, state) select run_pk, '0gone', 'success' "
           "from task_instance where task_id = 'a' and run_pk = (select id from dag_run where run_id = 'my_run')\\\"); "
           "c.commit()\"",
           f->dir);
  assert_int_equal(system(cmd), 0);
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns/my_run/taskInstances", NULL, NULL, 200);
  tis = json_object_get(r, "task_instances");
  assert_int_equal(json_array_size(tis), 4);
  assert_string_equal(jstr(json_array_get(tis, 0), "task_id"), "a");
  assert_string_equal(jstr(json_array_get(tis, 2), "task_id"), "c");
  assert_string_equal(jstr(json_array_get(tis, 3), "task_id"), "0gone");
  assert_true(json_is_null(json_object_get(json_array_get(tis, 3), "operator"))); /* no task: no operator */
  json_decref(r);
  /* A page of that order: ?limit and ?offset; total_entries counts all. */
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns/my_run/taskInstances?limit=2&offset=2", NULL, NULL, 200);
  tis = json_object_get(r, "task_instances");
  assert_int_equal(json_array_size(tis), 2);
  assert_string_equal(jstr(json_array_get(tis, 0), "task_id"), "c");
  assert_string_equal(jstr(json_array_get(tis, 1), "task_id"), "0gone");
  assert_int_equal(json_integer_value(json_object_get(r, "total_entries")), 4);
  json_decref(r);
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns/my_run/taskInstances?offset=9", NULL, NULL, 200);
  assert_int_equal(json_array_size(json_object_get(r, "task_instances")), 0);
  json_decref(r);
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns/my_run/taskInstances?limit=0", NULL, NULL, 400));
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns/my_run/taskInstances?offset=-1", NULL, NULL, 400));
}

/* The run id of a trigger answered 200, as a heap string. */
static char *trigger(fixture *f, const char *body) {
  json_t *r = request(f, "POST", "/api/v1/dags/etl/dagRuns", body, NULL, 200);
  char *id = strdup(jstr(r, "dag_run_id"));
  json_decref(r);
  return id;
}

/* Triggers in one second, even in one microsecond, are as many runs
 * (Airflow 3): generated ids carry microseconds and step past an id that
 * is taken; only a client's own id that exists gets 409. */
static void test_trigger_same_second(void **state) {
  fixture *f = *state;
  f->now = NOW + 0.123456;
  char *a = trigger(f, "{}"), *b = trigger(f, "{}");
  assert_string_equal(a, "manual__2026-01-01T00:00:00.123456+00:00");
  assert_string_equal(b, "manual__2026-01-01T00:00:00.123457+00:00");
  /* Both on one logical date (in whole seconds). */
  assert_int_equal(count(f, "select count(distinct logical_date) from dag_run"), 1);
  /* A client asking for an id that exists: 409, nothing added. */
  char body[128];
  snprintf(body, sizeof(body), "{\"dag_run_id\": \"%s\"}", b);
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", body, NULL, 409));
  assert_int_equal(count(f, "select count(*) from dag_run"), 2);
  free(a);
  free(b);

  /* A burst of 40 with one clock reading: 40 runs, 40 ids. */
  f->now = NOW + 1;
  json_t *seen = json_object();
  for (int i = 0; i < 40; i++) {
    char *id = trigger(f, "{}");
    assert_null(json_object_get(seen, id));
    json_object_set_new(seen, id, json_true());
    free(id);
  }
  assert_non_null(json_object_get(seen, "manual__2026-01-01T00:00:01.000000+00:00"));
  assert_non_null(json_object_get(seen, "manual__2026-01-01T00:00:01.000039+00:00"));
  json_decref(seen);
  assert_int_equal(count(f, "select count(*) from dag_run"), 42);
  assert_int_equal(count(f, "select count(*) from task_instance"), 42 * 3);

  /* An id a client took earlier is stepped past, not a 409. */
  f->now = NOW + 2;
  free(trigger(f, "{\"dag_run_id\": \"manual__2026-01-01T00:00:02.000000+00:00\"}"));
  a = trigger(f, "{}");
  assert_string_equal(a, "manual__2026-01-01T00:00:02.000001+00:00");
  free(a);
  /* The step after a second's last microsecond is the next second. */
  f->now = NOW + 3.999999;
  free(trigger(f, "{}"));
  a = trigger(f, "{}");
  assert_string_equal(a, "manual__2026-01-01T00:00:04.000000+00:00");
  free(a);
  /* A logical date given twice: two manual runs share it. */
  a = trigger(f, "{\"logical_date\": \"2025-06-01T00:00:00Z\"}");
  b = trigger(f, "{\"logical_date\": \"2025-06-01T00:00:00Z\"}");
  assert_string_not_equal(a, b);
  assert_int_equal(count(f, "select count(*) from dag_run where logical_date = 1748736000"), 2);
  free(a);
  free(b);
  /* Every id of the 1000 steps past the clock taken: 503 (retry), still
   * never 409, nothing written. */
  char cmd[512];
  snprintf(cmd, sizeof(cmd),
           "/usr/bin/python3 -c \"import sqlite3; c = sqlite3.connect('%s/state.db'); "
           "c.executemany(\\\"insert into dag_run (dag_id, run_id, run_type, logical_date, state) "
           "values ('etl', ?, 'manual', 0, 'success')\\\", "
           "[('manual__2026-01-01T00:00:05.%%06d+00:00' %% i,) for i in range(1001)]); c.commit()\"",
           f->dir);
  assert_int_equal(system(cmd), 0);
  int64_t before = count(f, "select count(*) from dag_run");
  f->now = NOW + 5;
  json_t *r = request(f, "POST", "/api/v1/dags/etl/dagRuns", "{}", NULL, 503);
  assert_non_null(strstr(jstr(r, "detail"), "no free run id"));
  json_decref(r);
  assert_int_equal(count(f, "select count(*) from dag_run"), before);
  f->now = NOW + 5.001001;
  a = trigger(f, "{}");
  assert_string_equal(a, "manual__2026-01-01T00:00:05.001001+00:00");
  free(a);
}

static void test_mark_clear_pause(void **state) {
  fixture *f = *state;
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"dag_run_id\": \"r\"}", NULL, 200));
  json_t *r = request(f, "PATCH", "/api/v1/dags/etl/dagRuns/r/taskInstances/a",
                      "{\"new_state\": \"failed\", \"dry_run\": false}", NULL, 200);
  assert_string_equal(jstr(r, "state"), "failed");
  json_decref(r);
  json_decref(request(f, "PATCH", "/api/v1/dags/etl/dagRuns/r/taskInstances/a", "{\"new_state\": \"running\"}", NULL, 400));
  json_decref(request(f, "PATCH", "/api/v1/dags/etl/dagRuns/r/taskInstances/zz", "{\"new_state\": \"success\"}", NULL, 404));
  /* Clear a with its downstream: a, b, c back to none. */
  r = request(f, "POST", "/api/v1/dags/etl/clearTaskInstances",
              "{\"dag_run_id\": \"r\", \"task_ids\": [\"a\"], \"include_downstream\": true, \"only_failed\": false,"
              " \"dry_run\": false}",
              NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(r, "total_entries")), 3);
  json_decref(r);
  assert_int_equal(count(f, "select count(*) from task_instance where state = 'none'"), 3);
  json_decref(request(f, "POST", "/api/v1/dags/etl/clearTaskInstances", "{\"dag_run_id\": \"r\", \"task_ids\": [\"q\"]}",
                      NULL, 404));
  json_decref(request(f, "POST", "/api/v1/dags/etl/clearTaskInstances", "{}", NULL, 400));
  /* Mark the run failed: unfinished tasks fail with it. */
  r = request(f, "PATCH", "/api/v1/dags/etl/dagRuns/r", "{\"state\": \"failed\"}", NULL, 200);
  assert_string_equal(jstr(r, "state"), "failed");
  json_decref(r);
  assert_int_equal(count(f, "select count(*) from task_instance where state = 'failed'"), 3);
  /* Only the failed ones, then the run is queued again. */
  r = request(f, "POST", "/api/v1/dags/etl/clearTaskInstances", "{\"dag_run_id\": \"r\", \"dry_run\": false}", NULL, 200);
  json_decref(r);
  assert_int_equal(count(f, "select count(*) from dag_run where state = 'queued'"), 1);
  /* Pause, unpause. */
  r = request(f, "PATCH", "/api/v1/dags/etl", "{\"is_paused\": true}", NULL, 200);
  assert_true(json_is_true(json_object_get(r, "is_paused")));
  json_decref(r);
  json_decref(request(f, "PATCH", "/api/v1/dags/etl", "{\"is_paused\": \"yes\"}", NULL, 400));
  r = request(f, "GET", "/api/v1/dags", NULL, NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(r, "total_entries")), 2);
  json_t *etl = json_array_get(json_object_get(r, "dags"), 0);
  assert_string_equal(jstr(etl, "dag_id"), "etl");
  assert_true(json_is_true(json_object_get(etl, "is_paused")));
  assert_string_equal(jstr(etl, "schedule"), "@daily");
  assert_string_equal(jstr(etl, "timezone"), "UTC");
  assert_string_equal(jstr(etl, "last_run_state"), "queued");
  json_decref(r);
  r = request(f, "GET", "/api/v1/dags?tags=ml", NULL, NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(r, "total_entries")), 1);
  json_decref(r);
  json_decref(request(f, "GET", "/api/v1/dags/nope", NULL, NULL, 404));
  r = request(f, "GET", "/api/v1/dags/etl/tasks", NULL, NULL, 200);
  json_t *tasks = json_object_get(r, "tasks");
  assert_int_equal(json_array_size(tasks), 3);
  json_t *tb = json_array_get(tasks, 1);
  assert_string_equal(jstr(tb, "task_id"), "b");
  assert_string_equal(json_string_value(json_array_get(json_object_get(tb, "upstream_task_ids"), 0)), "a");
  assert_string_equal(json_string_value(json_array_get(json_object_get(tb, "downstream_task_ids"), 0)), "c");
  assert_int_equal(json_integer_value(json_object_get(tb, "retries")), 2);
  json_decref(r);
}

static void test_events(void **state) {
  fixture *f = *state;
  json_t *r = request(f, "POST", "/api/v1/events", "{\"name\": \"drift_detected\", \"payload\": {\"psi\": 0.3}, \"id\": \"e1\"}",
                      NULL, 202);
  assert_false(json_is_true(json_object_get(r, "duplicate")));
  assert_int_equal(json_array_size(json_object_get(r, "dag_runs")), 2);
  json_decref(r);
  assert_int_equal(count(f, "select count(*) from dag_run where run_type = 'event'"), 2);
  assert_int_equal(count(f, "select count(*) from dag_run where conf like '%psi%0.3%'"), 2);
  /* The same id: recognised, nothing started. */
  r = request(f, "POST", "/api/v1/events", "{\"name\": \"drift_detected\", \"id\": \"e1\"}", NULL, 202);
  assert_true(json_is_true(json_object_get(r, "duplicate")));
  assert_int_equal(json_array_size(json_object_get(r, "dag_runs")), 0);
  json_decref(r);
  /* A new event within etl's 1h cooldown: only "other" runs. */
  r = request(f, "POST", "/api/v1/events", "{\"name\": \"drift_detected\", \"id\": \"e2\"}", NULL, 202);
  assert_int_equal(json_array_size(json_object_get(r, "dag_runs")), 1);
  assert_string_equal(jstr(json_array_get(json_object_get(r, "held"), 0), "reason"), "event_cooldown");
  json_decref(r);
  /* A paused DAG records the event but starts nothing. */
  json_decref(request(f, "PATCH", "/api/v1/dags/other", "{\"is_paused\": true}", NULL, 200));
  r = request(f, "POST", "/api/v1/events", "{\"name\": \"HighLatency\"}", NULL, 202);
  assert_int_equal(json_array_size(json_object_get(r, "dag_runs")), 0);
  assert_string_equal(jstr(json_array_get(json_object_get(r, "held"), 0), "reason"), "paused");
  json_decref(r);
  /* Unknown event: accepted, starts nothing, and says why. */
  r = request(f, "POST", "/api/v1/events", "{\"name\": \"nobody_listens\"}", NULL, 202);
  assert_int_equal(json_array_size(json_object_get(r, "dag_runs")), 0);
  assert_string_equal(jstr(r, "outcome"), "accepted");
  assert_string_equal(jstr(r, "detail"), "no DAG listens to \"nobody_listens\"");
  json_decref(r);
  json_decref(request(f, "POST", "/api/v1/events", "{\"payload\": {}}", NULL, 400));
  json_decref(request(f, "POST", "/api/v1/events", "{\"name\": \"x y\"}", NULL, 400));
  json_decref(request(f, "POST", "/api/v1/events", "{\"name\": \"x\", \"payload\": 3}", NULL, 400));
  r = request(f, "GET", "/api/v1/events", NULL, NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(r, "total_entries")), 5);
  /* Newest first: the unheard event says so in the list too. */
  json_t *newest = json_array_get(json_object_get(r, "events"), 0);
  assert_string_equal(jstr(newest, "name"), "nobody_listens");
  assert_string_equal(jstr(newest, "outcome"), "accepted");
  assert_string_equal(jstr(newest, "detail"), "no DAG listens to \"nobody_listens\"");
  /* A paused listener is still a listener: no such words. */
  assert_true(json_is_null(json_object_get(json_array_get(json_object_get(r, "events"), 1), "detail")));
  json_decref(r);
  assert_int_equal(f->api.events_duplicate, 1);
  assert_int_equal(f->api.events_rejected, 3);
}

/* Events in one second start as many runs of a DAG without a cooldown
 * ("other"); repeats of an event id still start nothing. */
static void test_events_same_second(void **state) {
  fixture *f = *state;
  f->now = NOW + 0.5;
  json_t *r = request(f, "POST", "/api/v1/events", "{\"name\": \"HighLatency\", \"id\": \"h1\"}", NULL, 202);
  assert_int_equal(json_array_size(json_object_get(r, "dag_runs")), 1);
  assert_string_equal(jstr(json_array_get(json_object_get(r, "dag_runs"), 0), "dag_run_id"),
                      "event__2026-01-01T00:00:00.500000+00:00");
  json_decref(r);
  r = request(f, "POST", "/api/v1/events", "{\"name\": \"HighLatency\", \"id\": \"h2\"}", NULL, 202);
  assert_int_equal(json_array_size(json_object_get(r, "dag_runs")), 1);
  assert_string_equal(jstr(json_array_get(json_object_get(r, "dag_runs"), 0), "dag_run_id"),
                      "event__2026-01-01T00:00:00.500001+00:00");
  json_decref(r);
  r = request(f, "POST", "/api/v1/events", "{\"name\": \"HighLatency\", \"id\": \"h2\"}", NULL, 202);
  assert_true(json_is_true(json_object_get(r, "duplicate")));
  assert_int_equal(json_array_size(json_object_get(r, "dag_runs")), 0);
  json_decref(r);
  assert_int_equal(count(f, "select count(*) from dag_run where dag_id = 'other' and run_type = 'event'"), 2);
  /* The run keeps the event it came from. */
  assert_int_equal(count(f, "select count(distinct event_id) from dag_run where dag_id = 'other'"), 2);

  /* One Alertmanager delivery whose new alerts name two events "other"
   * listens to: two runs of it from one request (and one of etl). */
  r = request(f, "POST", "/api/v1/hooks/alertmanager",
              "{\"version\": \"4\", \"status\": \"firing\", \"alerts\": ["
              "{\"status\": \"firing\", \"labels\": {\"alertname\": \"HighLatency\"}, \"fingerprint\": \"f1\","
              " \"startsAt\": \"2026-01-01T00:00:00Z\"},"
              "{\"status\": \"firing\", \"labels\": {\"alertname\": \"Drift\", \"event\": \"drift_detected\"},"
              " \"fingerprint\": \"f2\", \"startsAt\": \"2026-01-01T00:00:00Z\"}]}",
              NULL, 202);
  assert_int_equal(json_array_size(json_object_get(r, "dag_runs")), 3);
  json_decref(r);
  assert_int_equal(count(f, "select count(*) from dag_run where dag_id = 'other' and run_type = 'event'"), 4);
  assert_int_equal(count(f, "select count(*) from dag_run where dag_id = 'etl' and run_type = 'event'"), 1);
  assert_int_equal(count(f, "select count(distinct run_id) from dag_run where dag_id = 'other'"), 4);
}

static const char *am_payload(const char *status, const char *starts) {
  static char buf[2048];
  snprintf(buf, sizeof(buf),
           "{\"version\": \"4\", \"groupKey\": \"{}:{alertname=\\\"HighLatency\\\"}\", \"status\": \"%s\","
           " \"receiver\": \"dagd\", \"truncatedAlerts\": 3, \"notification_reason\": \"new\", \"routeLabels\": {},"
           " \"alerts\": [{\"status\": \"%s\", \"labels\": {\"alertname\": \"HighLatency\", \"model\": \"fraud\"},"
           " \"annotations\": {\"summary\": \"p99 up\"}, \"startsAt\": \"%s\", \"endsAt\": \"0001-01-01T00:00:00Z\","
           " \"generatorURL\": \"http://prom/graph\", \"fingerprint\": \"abc123\"},"
           " {\"status\": \"firing\", \"labels\": {\"alertname\": \"Other\"}, \"startsAt\": \"%s\", \"fingerprint\": \"def\"}]}",
           status, status, starts, starts);
  return buf;
}

/* Alertmanager's notification that the group's alert resolved. */
static const char *am_resolved(void) {
  return "{\"version\": \"4\", \"groupKey\": \"{}:{alertname=\\\"HighLatency\\\"}\", \"status\": \"resolved\","
         " \"receiver\": \"dagd\", \"truncatedAlerts\": 0,"
         " \"alerts\": [{\"status\": \"resolved\", \"labels\": {\"alertname\": \"HighLatency\", \"model\": \"fraud\"},"
         " \"annotations\": {}, \"startsAt\": \"2026-01-01T00:00:00Z\", \"endsAt\": \"2026-01-01T01:00:00Z\","
         " \"fingerprint\": \"abc123\"}]}";
}

static void test_alertmanager(void **state) {
  fixture *f = *state;
  json_t *r = request(f, "POST", "/api/v1/hooks/alertmanager", am_payload("firing", "2026-01-01T00:00:00Z"), NULL, 202);
  assert_int_equal(json_array_size(json_object_get(r, "dag_runs")), 1);
  assert_string_equal(jstr(json_array_get(json_object_get(r, "dag_runs"), 0), "dag_id"), "other");
  /* The delivery is named by its alerts' events, not the group key; the
   * "Other" alert's event has no listener, and the answer says so. */
  assert_string_equal(jstr(r, "name"), "HighLatency,Other");
  assert_string_equal(jstr(r, "outcome"), "accepted");
  assert_string_equal(jstr(r, "detail"), "no DAG listens to \"Other\"");
  json_decref(r);
  /* The run's conf: event, labels and annotations of the first alert, the
   * alerts, and the group's key and truncated count. */
  r = request(f, "GET", "/api/v1/dags/other/dagRuns", NULL, NULL, 200);
  json_t *conf = json_object_get(json_array_get(json_object_get(r, "dag_runs"), 0), "conf");
  assert_string_equal(jstr(conf, "event"), "HighLatency");
  assert_string_equal(jstr(json_object_get(conf, "labels"), "model"), "fraud");
  assert_string_equal(jstr(json_object_get(conf, "annotations"), "summary"), "p99 up");
  assert_string_equal(jstr(conf, "group_key"), "{}:{alertname=\"HighLatency\"}");
  assert_int_equal(json_integer_value(json_object_get(conf, "truncated_alerts")), 3);
  json_t *alert = json_array_get(json_object_get(conf, "alerts"), 0);
  assert_string_equal(jstr(alert, "fingerprint"), "abc123");
  assert_string_equal(jstr(alert, "generator_url"), "http://prom/graph");
  json_decref(r);
  /* Alertmanager's repeat of the same group: nothing new, a duplicate. */
  r = request(f, "POST", "/api/v1/hooks/alertmanager", am_payload("firing", "2026-01-01T00:00:00Z"), NULL, 202);
  assert_int_equal(json_array_size(json_object_get(r, "dag_runs")), 0);
  assert_string_equal(jstr(r, "outcome"), "duplicate");
  json_decref(r);
  /* Resolved: nothing starts, and it is recorded as resolved, not as a
   * duplicate. */
  r = request(f, "POST", "/api/v1/hooks/alertmanager", am_resolved(), NULL, 202);
  assert_int_equal(json_array_size(json_object_get(r, "dag_runs")), 0);
  assert_string_equal(jstr(r, "outcome"), "resolved");
  assert_string_equal(jstr(r, "name"), "HighLatency");
  json_decref(r);
  r = request(f, "GET", "/api/v1/events", NULL, NULL, 200);
  json_t *newest = json_array_get(json_object_get(r, "events"), 0);
  assert_string_equal(jstr(newest, "outcome"), "resolved");
  assert_string_equal(jstr(newest, "name"), "HighLatency");
  assert_string_equal(jstr(newest, "detail"), "resolved alerts start no run");
  assert_string_equal(jstr(json_array_get(json_object_get(r, "events"), 1), "outcome"), "duplicate");
  assert_string_equal(jstr(json_array_get(json_object_get(r, "events"), 2), "detail"), "no DAG listens to \"Other\"");
  json_decref(r);
  assert_int_equal(count(f, "select count(*) from dag_run where dag_id = 'other'"), 1);
  assert_int_equal(count(f, "select count(*) from event where outcome = 'resolved'"), 1);
  /* No alert at all names an event: ignored. */
  r = request(f, "POST", "/api/v1/hooks/alertmanager", "{\"alerts\": []}", NULL, 202);
  assert_string_equal(jstr(r, "outcome"), "ignored");
  json_decref(r);
  json_decref(request(f, "POST", "/api/v1/hooks/alertmanager", "{\"alerts\": 5}", NULL, 400));
  json_decref(request(f, "POST", "/api/v1/hooks/alertmanager", "{\"alerts\": [{\"labels\": 1}]}", NULL, 400));
}

/* The signed-timestamp window, with the clock passed in. */
static void test_timestamp_check(void **state) {
  (void)state;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_api_timestamp_check("1767225600", NOW, 300, "grafana_timestamp_window", &err), 0);
  assert_int_equal(dagd_api_timestamp_check("1767225300", NOW, 300, "grafana_timestamp_window", &err), 0);   /* 5 min old: the edge */
  assert_int_equal(dagd_api_timestamp_check("1767225900", NOW, 300, "grafana_timestamp_window", &err), 0);   /* 5 min ahead */
  assert_int_equal(dagd_api_timestamp_check("1767225299", NOW, 300, "grafana_timestamp_window", &err), DAGD_ERANGE);
  assert_non_null(strstr(err.msg, "301 s old"));
  dagd_err_init(&err);
  assert_int_equal(dagd_api_timestamp_check("1767052800", NOW, 300, "grafana_timestamp_window", &err), DAGD_ERANGE); /* 2 days old */
  assert_non_null(strstr(err.msg, "172800 s old"));
  dagd_err_init(&err);
  assert_int_equal(dagd_api_timestamp_check("1767225901", NOW, 300, "grafana_timestamp_window", &err), DAGD_ERANGE);
  assert_non_null(strstr(err.msg, "in the future"));
  /* A wider window takes the 2-day-old one. */
  assert_int_equal(dagd_api_timestamp_check("1767052800", NOW, 3 * 86400, "grafana_timestamp_window", NULL), 0);
  /* Not Unix seconds. */
  assert_int_equal(dagd_api_timestamp_check("", NOW, 300, "grafana_timestamp_window", NULL), DAGD_EINVAL);
  assert_int_equal(dagd_api_timestamp_check("-5", NOW, 300, "grafana_timestamp_window", NULL), DAGD_EINVAL);
  assert_int_equal(dagd_api_timestamp_check("1767225600.5", NOW, 300, "grafana_timestamp_window", NULL), DAGD_EINVAL);
  assert_int_equal(dagd_api_timestamp_check("2026-01-01T00:00:00Z", NOW, 300, "grafana_timestamp_window", NULL), DAGD_EINVAL);
  assert_int_equal(dagd_api_timestamp_check("1767225600000", NOW, 300, "grafana_timestamp_window", NULL), DAGD_EINVAL); /* milliseconds */
  assert_int_equal(dagd_api_timestamp_check(NULL, NOW, 300, "grafana_timestamp_window", NULL), DAGD_EINVAL);
}

static void hmac_hex(const char *secret, const char *data, char out[65]) {
  unsigned char mac[32];
  unsigned int n = 32;
  HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)data, strlen(data), mac, &n);
  for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", mac[i]);
}

static void test_signatures(void **state) {
  fixture *f = *state;
  f->api.webhook_secrets = f->secrets;
  f->api.n_webhook_secrets = 2;
  const char *body = am_payload("firing", "2026-01-05T00:00:00Z");
  char sig[65];
  /* Grafana: HMAC over "timestamp:body" when a timestamp is sent. */
  char *signed_text = malloc(strlen(body) + 32);
  sprintf(signed_text, "1767225600:%s", body);
  hmac_hex("gsecret", signed_text, sig);
  call good = {.gsig = sig, .gts = "1767225600"};
  json_t *r = request(f, "POST", "/api/v1/hooks/grafana", body, &good, 202);
  assert_int_equal(json_array_size(json_object_get(r, "dag_runs")), 1);
  json_decref(r);
  call wrong_ts = {.gsig = sig, .gts = "1767225601"};
  json_decref(request(f, "POST", "/api/v1/hooks/grafana", body, &wrong_ts, 401));
  /* The same signed delivery replayed two days later: refused, though
   * the signature is right, and nothing is recorded. */
  int64_t events_before = count(f, "select count(*) from event");
  f->now = NOW + 2 * 86400;
  r = request(f, "POST", "/api/v1/hooks/grafana", body, &good, 401);
  assert_non_null(strstr(json_string_value(json_object_get(r, "detail")), "172800 s old"));
  json_decref(r);
  /* Signed with a fresh timestamp then (a new body: a new alert) it is taken. */
  const char *body2 = am_payload("firing", "2026-01-06T00:00:00Z");
  char *signed2 = malloc(strlen(body2) + 32);
  sprintf(signed2, "1767398400:%s", body2);
  char sig2[65];
  hmac_hex("gsecret", signed2, sig2);
  call fresh = {.gsig = sig2, .gts = "1767398400"};
  json_decref(request(f, "POST", "/api/v1/hooks/grafana", body2, &fresh, 202));
  free(signed2);
  /* A timestamp ahead of the clock by more than the window: refused. */
  f->now = NOW - 600;
  json_decref(request(f, "POST", "/api/v1/hooks/grafana", body, &good, 401));
  f->now = NOW;
  assert_int_equal(count(f, "select count(*) from event"), events_before + 1);
  call none = {0};
  json_decref(request(f, "POST", "/api/v1/hooks/grafana", body, &none, 401));
  free(signed_text);
  /* Generic events with a secret: X-Dagd-Signature: sha256=<hex> of
   * "<X-Dagd-Timestamp>.<body>". */
  const char *ev = "{\"name\": \"drift_detected\"}";
  char esig[80] = "sha256=";
  dagd_buf sb;
  dagd_buf_init(&sb);
  dagd_api_sign("esecret", "1767225600", ev, strlen(ev), &sb);
  snprintf(esig + 7, sizeof(esig) - 7, "%s", sb.data);
  char check[80], check_hex[65];
  snprintf(check, sizeof(check), "1767225600.%s", ev);
  hmac_hex("esecret", check, check_hex); /* the documented recipe gives the same */
  assert_string_equal(check_hex, sb.data);
  dagd_buf_close(&sb);
  call sgood = {.signature = esig, .timestamp = "1767225600"};
  json_decref(request(f, "POST", "/api/v1/events", ev, &sgood, 202));
  /* The body alone signed (the old way), or no timestamp: refused. */
  char bodysig[80] = "sha256=";
  hmac_hex("esecret", ev, bodysig + 7);
  call old_way = {.signature = bodysig};
  r = request(f, "POST", "/api/v1/events", ev, &old_way, 401);
  assert_non_null(strstr(jstr(r, "detail"), "X-Dagd-Timestamp"));
  json_decref(r);
  call old_way_ts = {.signature = bodysig, .timestamp = "1767225600"};
  json_decref(request(f, "POST", "/api/v1/events", ev, &old_way_ts, 401));
  /* The right signature with another timestamp: refused. */
  call moved = {.signature = esig, .timestamp = "1767225601"};
  json_decref(request(f, "POST", "/api/v1/events", ev, &moved, 401));
  esig[10] ^= 1;
  json_decref(request(f, "POST", "/api/v1/events", ev, &sgood, 401));
  call garbage = {.signature = "sha256=zz", .timestamp = "1767225600"};
  json_decref(request(f, "POST", "/api/v1/events", ev, &garbage, 401));
  assert_int_equal(f->api.events_rejected, 9);
}

/* A signed generic event without an id, captured and sent again: refused
 * while its timestamp is in the window (409, remembered), and after it
 * (401, stale); a fresh signature of the same body is a new delivery. */
static void test_signed_replay(void **state) {
  fixture *f = *state;
  f->api.webhook_secrets = f->secrets;
  f->api.n_webhook_secrets = 2;
  f->api.max_seen_signatures = 2;
  const char *ev = "{\"name\": \"HighLatency\"}";
  char sig[4][80];
  const char *ts[4] = {"1767225600", "1767225601", "1767225602", "1767225603"};
  for (int i = 0; i < 4; i++) {
    dagd_buf b;
    dagd_buf_init(&b);
    dagd_api_sign("esecret", ts[i], ev, strlen(ev), &b);
    snprintf(sig[i], sizeof(sig[i]), "sha256=%s", b.data);
    dagd_buf_close(&b);
  }
  call c0 = {.signature = sig[0], .timestamp = ts[0]};
  json_decref(request(f, "POST", "/api/v1/events", ev, &c0, 202));
  assert_int_equal(count(f, "select count(*) from dag_run"), 1);
  f->now = NOW + 60;
  json_t *r = request(f, "POST", "/api/v1/events", ev, &c0, 409);
  assert_non_null(strstr(jstr(r, "detail"), "already accepted"));
  json_decref(r);
  f->now = NOW + 301;
  json_decref(request(f, "POST", "/api/v1/events", ev, &c0, 401));
  assert_int_equal(count(f, "select count(*) from dag_run"), 1);
  /* Not taken (415): not remembered, so the sender's corrected retry
   * with the same signature goes through. */
  f->now = NOW;
  call c1_plain = {.signature = sig[1], .timestamp = ts[1], .content_type = "text/plain"};
  json_decref(request(f, "POST", "/api/v1/events", ev, &c1_plain, 415));
  call c1 = {.signature = sig[1], .timestamp = ts[1]};
  json_decref(request(f, "POST", "/api/v1/events", ev, &c1, 202));
  json_decref(request(f, "POST", "/api/v1/events", ev, &c1, 409));
  /* Only 2 remembered: taking a third forgets the oldest (ts[0]) and
   * raises the floor past it, so its replay is still refused. */
  call c2 = {.signature = sig[2], .timestamp = ts[2]};
  json_decref(request(f, "POST", "/api/v1/events", ev, &c2, 202));
  r = request(f, "POST", "/api/v1/events", ev, &c0, 401);
  assert_non_null(strstr(jstr(r, "detail"), "sign again"));
  json_decref(r);
  json_decref(request(f, "POST", "/api/v1/events", ev, &c1, 409));
  json_decref(request(f, "POST", "/api/v1/events", ev, &c2, 409));
  call c3 = {.signature = sig[3], .timestamp = ts[3]};
  json_decref(request(f, "POST", "/api/v1/events", ev, &c3, 202));
  json_decref(request(f, "POST", "/api/v1/events", ev, &c3, 409));
  /* (the 1 h event_cooldown of etl holds it back; "other" runs each time) */
  assert_int_equal(count(f, "select count(*) from dag_run where dag_id = 'other'"), 4);
  /* A timestamp before the daemon's start is refused too. */
  f->api.signed_floor = (int64_t)NOW + 10;
  call c3b = {.signature = sig[3], .timestamp = ts[3]};
  json_decref(request(f, "POST", "/api/v1/events", ev, &c3b, 401));
}

/* Content-Type application/json is required on every body: a browser's
 * cross-site "simple" request sends none or text/plain. */
static void test_content_type_required(void **state) {
  fixture *f = *state;
  call none = {.no_content_type = true};
  json_t *r = request(f, "POST", "/api/v1/dags/etl/dagRuns", "{}", &none, 415);
  assert_non_null(strstr(jstr(r, "detail"), "application/json is required"));
  json_decref(r);
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", NULL, &none, 415));
  call plain = {.content_type = "text/plain;charset=UTF-8"};
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{}", &plain, 415));
  call form = {.content_type = "application/x-www-form-urlencoded"};
  json_decref(request(f, "POST", "/api/v1/events", "{\"name\": \"drift_detected\"}", &form, 415));
  json_decref(request(f, "PATCH", "/api/v1/dags/etl", "{\"is_paused\": true}", &none, 415));
  json_decref(request(f, "POST", "/api/v1/hooks/alertmanager", "{\"alerts\": []}", &none, 415));
  assert_int_equal(count(f, "select count(*) from dag_run"), 0);
  assert_int_equal(count(f, "select count(*) from event"), 0);
  call upper = {.content_type = "Application/JSON; charset=utf-8"};
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{}", &upper, 200));
}

/* Host must name this daemon, and an Origin must be its own: a DNS
 * rebinding page (Host: evil.example) and another site's page (Origin:
 * http://evil.example) are refused before anything happens. */
static void test_host_and_origin(void **state) {
  fixture *f = *state;
  snprintf(f->api.listen_host, sizeof(f->api.listen_host), "127.0.0.1");
  f->api.listen_port = 8787;
  char *allowed[] = {"dagd.example.com", "proxy.example.com:8443"};
  f->api.allowed_hosts = allowed;
  f->api.n_allowed_hosts = 2;
  struct {
    const char *host, *origin;
    int version_minor;
    int status;
  } cases[] = {
      {"127.0.0.1:8787", NULL, 1, 200},
      {"localhost:8787", NULL, 1, 200},
      {"LocalHost:8787", NULL, 1, 200},
      {"[::1]:8787", NULL, 1, 200},
      {"localhost", NULL, 1, 200},           /* no port: a proxy's */
      {"dagd.example.com", NULL, 1, 200},
      {"dagd.example.com:443", NULL, 1, 200},
      {"proxy.example.com:8443", NULL, 1, 200},
      {NULL, NULL, 0, 200},                  /* HTTP/1.0 without Host */
      {"127.0.0.1:8787", "http://127.0.0.1:8787", 1, 200},
      {"localhost:8787", "http://127.0.0.1:8787", 1, 200},
      {"dagd.example.com", "https://dagd.example.com", 1, 200},
      {"127.0.0.1:8787", "https://dagd.example.com", 1, 200}, /* a proxy that rewrites Host */
      {"evil.example:8787", NULL, 1, 421},   /* DNS rebinding */
      {"evil.example", NULL, 1, 421},
      {"127.0.0.1:9999", NULL, 1, 421},
      {"proxy.example.com:443", NULL, 1, 421},
      {"dagd.example.com.evil.example", NULL, 1, 421},
      {NULL, NULL, 1, 400},                  /* HTTP/1.1 must send Host */
      {"bad host", NULL, 1, 400},
      {"127.0.0.1:99999", NULL, 1, 400},
      {"127.0.0.1:8787", "http://evil.example", 1, 403},
      {"127.0.0.1:8787", "http://evil.example:8787", 1, 403},
      {"127.0.0.1:8787", "http://localhost:3000", 1, 403},  /* another local server */
      {"127.0.0.1:8787", "http://localhost", 1, 403},
      {"127.0.0.1:8787", "null", 1, 403},
      {"127.0.0.1:8787", "file://", 1, 403},
      {"127.0.0.1:8787", "http://127.0.0.1:8787/path", 1, 403},
  };
  int64_t runs = 0;
  for (size_t i = 0; i < DAGD_ARRAY_LEN(cases); i++) {
    call c = {.host = cases[i].host, .origin = cases[i].origin, .version_minor = cases[i].version_minor};
    json_t *r = request(f, "POST", "/api/v1/dags/etl/dagRuns", "{}", &c, cases[i].status);
    if (cases[i].status == 200) runs++;
    else assert_non_null(jstr(r, "detail"));
    json_decref(r);
    assert_int_equal(count(f, "select count(*) from dag_run"), runs);
    /* Reads too: a rebinding page must not read the API. */
    c.origin = NULL;
    json_decref(request(f, "GET", "/api/v1/dags", NULL, &c,
                        cases[i].origin && cases[i].status == 403 ? 200 : cases[i].status));
  }
  call twice = {.host = "127.0.0.1:8787", .host_repeated = true, .version_minor = 1};
  json_decref(request(f, "GET", "/api/v1/dags", NULL, &twice, 400));
  /* /health is checked too (one rule for every route). */
  call evil = {.host = "evil.example", .version_minor = 1};
  json_decref(request(f, "GET", "/health", NULL, &evil, 421));
}

static void test_tokens_and_scopes(void **state) {
  fixture *f = *state;
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{}", NULL, 401));
  call wrong = {.auth = "Bearer nope"};
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{}", &wrong, 401));
  call basic = {.auth = "Basic YWRtaW46YWRtaW4="};
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{}", &basic, 401));
  call reader = {.auth = "Bearer reader-token"};
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{}", &reader, 403));
  call trigger = {.auth = "Bearer trigger-token"};
  json_decref(request(f, "PATCH", "/api/v1/dags/etl", "{\"is_paused\": true}", &trigger, 403));
  assert_int_equal(count(f, "select count(*) from dag_run"), 0);
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{}", &trigger, 200));
  call admin = {.auth = "Bearer admin-token"};
  json_decref(request(f, "PATCH", "/api/v1/dags/etl", "{\"is_paused\": true}", &admin, 200));
  /* Reads need a token too, of any scope; /health does not. */
  json_decref(request(f, "GET", "/api/v1/dags", NULL, &reader, 200));
  json_decref(request(f, "GET", "/health", NULL, NULL, 200));
}

/* The status of a request, whatever it is, and its challenge (heap). */
static int status_of(fixture *f, const char *method, const char *path, const char *body, const char *auth,
                     char **www) {
  for (size_t r = 0; r < dagd_api_n_routes; r++) {
    const dagd_api_route *route = &dagd_api_routes[r];
    if (strcmp(route->method, method) != 0 || strcmp(route->pattern, path) != 0) continue;
    const char *params[] = {"etl", "r", "a", "1"};
    if (strstr(path, "backfills/{id}")) params[0] = "1";
    dagd_api_request req = {.method = method, .path = path, .params = params, .n_params = 4, .query = "",
                            .body = body, .body_len = body ? strlen(body) : 0, .authorization = auth, .local = true,
                            .now = f->now};
    dagd_api_response resp;
    dagd_api_response_init(&resp);
    dagd_api_dispatch(&f->api, route, &req, &resp);
    int status = resp.status;
    if (www) *www = resp.www_authenticate ? strdup(resp.www_authenticate) : NULL;
    dagd_api_response_close(&resp);
    return status;
  }
  fail_msg("no route %s %s", method, path);
  return 0;
}

/* With tokens configured every route but /health and the OpenAPI document
 * (static, no state, like the UI's files) needs one: reads (logs, confs,
 * payloads) too. Each route without a token, with a wrong one, a
 * read token and an admin token; every 401 carries a Bearer challenge. */
static void test_every_route_needs_a_token(void **state) {
  fixture *f = *state;
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"dag_run_id\": \"r\"}",
                      &(call){.auth = "Bearer admin-token"}, 200));
  int64_t runs = count(f, "select count(*) from dag_run");
  for (size_t i = 0; i < dagd_api_n_routes; i++) {
    const dagd_api_route *r = &dagd_api_routes[i];
    bool get = strcmp(r->method, "GET") == 0;
    const char *body = get ? NULL : "{}";
    char *www = NULL;
    int st = status_of(f, r->method, r->pattern, body, NULL, &www);
    if (strcmp(r->pattern, "/health") == 0 || strcmp(r->pattern, "/api/v1/openapi.json") == 0) {
      assert_int_equal(st, 200);
      assert_null(www);
      continue;
    }
    if (st != 401) fail_msg("%s %s without a token: %d, want 401", r->method, r->pattern, st);
    assert_non_null(www);
    assert_string_equal(www, "Bearer realm=\"dagd\"");
    free(www);
    st = status_of(f, r->method, r->pattern, body, "Bearer wrong-token", &www);
    if (st != 401) fail_msg("%s %s with a wrong token: %d, want 401", r->method, r->pattern, st);
    assert_non_null(strstr(www, "error=\"invalid_token\""));
    free(www);
    st = status_of(f, r->method, r->pattern, body, "Bearer reader-token", &www);
    if (get && (st == 401 || st == 403)) fail_msg("%s %s with a read token: %d", r->method, r->pattern, st);
    if (!get && st != 403) fail_msg("%s %s with a read token: %d, want 403", r->method, r->pattern, st);
    if (!get) assert_non_null(strstr(www, "error=\"insufficient_scope\""));
    free(www);
    st = status_of(f, r->method, r->pattern, body, "Bearer admin-token", NULL);
    if (st == 401 || st == 403) fail_msg("%s %s with an admin token: %d", r->method, r->pattern, st);
  }
  /* Nothing the refused requests asked for was done (the admin's {} bodies
   * are dry runs or bad input, apart from one trigger and one event). */
  assert_true(count(f, "select count(*) from dag_run") <= runs + 3);
  /* A log and a conf, the examples: refused without a token. */
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns/r", NULL, NULL, 401));
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns/r/taskInstances/a/logs/1", NULL, NULL, 401));
  json_decref(request(f, "GET", "/api/v1/events", NULL, NULL, 401));
  /* metrics_public opens /metrics, and only it. */
  f->api.metrics_public = true;
  json_decref(request(f, "GET", "/metrics", NULL, NULL, 200));
  json_decref(request(f, "GET", "/api/v1/dags", NULL, NULL, 401));
  /* A trigger token reads and triggers, but does not administer. */
  call trig = {.auth = "Bearer trigger-token"};
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns", NULL, &trig, 200));
  json_t *r = request(f, "PATCH", "/api/v1/dags/etl", "{\"is_paused\": true}", &trig, 403);
  assert_non_null(strstr(jstr(r, "_www_authenticate"), "scope=\"admin\""));
  json_decref(r);
}

/* dry_run is honoured wherever it is accepted, and defaults to true as in
 * Airflow's stable API (patchTaskInstance, clearTaskInstances, whose
 * only_failed defaults to true too). */
static void test_dry_run(void **state) {
  fixture *f = *state;
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"dag_run_id\": \"r\"}", NULL, 200));
  json_decref(request(f, "PATCH", "/api/v1/dags/etl/dagRuns/r", "{\"state\": \"failed\"}", NULL, 200));
  int changed = f->changed;
  /* The request: a dry run changes nothing, says what would. */
  json_t *r = request(f, "PATCH", "/api/v1/dags/etl/dagRuns/r/taskInstances/a",
                      "{\"new_state\": \"success\", \"dry_run\": true}", NULL, 200);
  assert_string_equal(jstr(r, "state"), "success");
  assert_string_equal(jstr(r, "previous_state"), "failed");
  assert_string_equal(jstr(r, "dag_run_state"), "running");
  assert_true(json_is_true(json_object_get(r, "dry_run")));
  json_decref(r);
  assert_int_equal(count(f, "select count(*) from task_instance where state = 'failed'"), 3);
  assert_int_equal(count(f, "select count(*) from dag_run where state = 'failed'"), 1);
  assert_int_equal(f->changed, changed);
  /* No dry_run: a dry run too. */
  json_decref(request(f, "PATCH", "/api/v1/dags/etl/dagRuns/r/taskInstances/a", "{\"new_state\": \"success\"}", NULL,
                      200));
  assert_int_equal(count(f, "select count(*) from task_instance where state = 'success'"), 0);
  json_decref(request(f, "PATCH", "/api/v1/dags/etl/dagRuns/r/taskInstances/a",
                      "{\"new_state\": \"success\", \"dry_run\": \"no\"}", NULL, 400));
  /* Explicitly not a dry run: done. */
  r = request(f, "PATCH", "/api/v1/dags/etl/dagRuns/r/taskInstances/a", "{\"new_state\": \"success\", \"dry_run\": false}",
              NULL, 200);
  assert_false(json_is_true(json_object_get(r, "dry_run")));
  json_decref(r);
  assert_int_equal(count(f, "select count(*) from task_instance where state = 'success'"), 1);
  assert_int_equal(count(f, "select count(*) from dag_run where state = 'running'"), 1);
  assert_int_equal(f->changed, changed + 1);
  /* Clear with the defaults: a dry run over the failed ones only. */
  r = request(f, "POST", "/api/v1/dags/etl/clearTaskInstances", "{\"dag_run_id\": \"r\"}", NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(r, "total_entries")), 2);
  assert_true(json_is_true(json_object_get(r, "dry_run")));
  assert_string_equal(jstr(json_array_get(json_object_get(r, "task_instances"), 0), "state"), "failed");
  json_decref(r);
  assert_int_equal(count(f, "select count(*) from task_instance where state = 'none'"), 0);
  assert_int_equal(f->changed, changed + 1);
  /* only_failed false: all three would be cleared; still nothing done. */
  r = request(f, "POST", "/api/v1/dags/etl/clearTaskInstances", "{\"dag_run_id\": \"r\", \"only_failed\": false}", NULL,
              200);
  assert_int_equal(json_integer_value(json_object_get(r, "total_entries")), 3);
  json_decref(r);
  assert_int_equal(count(f, "select count(*) from task_instance where state = 'none'"), 0);
  /* dry_run false: the two failed ones are cleared. */
  r = request(f, "POST", "/api/v1/dags/etl/clearTaskInstances", "{\"dag_run_id\": \"r\", \"dry_run\": false}", NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(r, "total_entries")), 2);
  json_decref(r);
  assert_int_equal(count(f, "select count(*) from task_instance where state = 'none'"), 2);
  /* Fields clear does not take are refused, not ignored. */
  r = request(f, "POST", "/api/v1/dags/etl/clearTaskInstances", "{\"dag_run_id\": \"r\", \"dryrun\": false}", NULL, 400);
  assert_non_null(strstr(jstr(r, "detail"), "did you mean \"dry_run\""));
  json_decref(r);
  json_decref(request(f, "POST", "/api/v1/dags/etl/clearTaskInstances",
                      "{\"dag_run_id\": \"r\", \"include_upstream\": true, \"dry_run\": false}", NULL, 400));
  json_decref(request(f, "PATCH", "/api/v1/dags/etl/dagRuns/r", "{\"state\": \"failed\", \"dry_run\": true}", NULL, 400));
  assert_int_equal(count(f, "select count(*) from task_instance where state = 'none'"), 2);
}

/* Airflow habits: state repeated is ORed, order_by honoured or refused,
 * unknown query parameters refused; execution_date/logical_date and the
 * data interval of a trigger honoured. */
static void test_query_habits(void **state) {
  fixture *f = *state;
  free(trigger(f, "{\"dag_run_id\": \"a1\", \"logical_date\": \"2026-01-03T00:00:00Z\"}"));
  free(trigger(f, "{\"dag_run_id\": \"b2\", \"logical_date\": \"2026-01-01T00:00:00Z\"}"));
  free(trigger(f, "{\"dag_run_id\": \"c3\", \"logical_date\": \"2026-01-02T00:00:00Z\"}"));
  json_decref(request(f, "PATCH", "/api/v1/dags/etl/dagRuns/a1", "{\"state\": \"failed\"}", NULL, 200));
  json_decref(request(f, "PATCH", "/api/v1/dags/etl/dagRuns/b2", "{\"state\": \"success\"}", NULL, 200));
  json_t *r = request(f, "GET", "/api/v1/dags/etl/dagRuns?state=failed&state=success", NULL, NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(r, "total_entries")), 2);
  json_decref(r);
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns?state=failed", NULL, NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(r, "total_entries")), 1);
  json_decref(r);
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns?state=failed&state=bogus", NULL, NULL, 400));
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns?state=", NULL, NULL, 400));
  /* Default: newest logical date first; order_by with - for descending. */
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns", NULL, NULL, 200);
  assert_string_equal(jstr(json_array_get(json_object_get(r, "dag_runs"), 0), "dag_run_id"), "a1");
  json_decref(r);
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns?order_by=dag_run_id", NULL, NULL, 200);
  assert_string_equal(jstr(json_array_get(json_object_get(r, "dag_runs"), 0), "dag_run_id"), "a1");
  assert_string_equal(jstr(json_array_get(json_object_get(r, "dag_runs"), 2), "dag_run_id"), "c3");
  json_decref(r);
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns?order_by=-dag_run_id&limit=1", NULL, NULL, 200);
  assert_string_equal(jstr(json_array_get(json_object_get(r, "dag_runs"), 0), "dag_run_id"), "c3");
  assert_int_equal(json_integer_value(json_object_get(r, "total_entries")), 3);
  json_decref(r);
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns?order_by=execution_date", NULL, NULL, 200);
  assert_string_equal(jstr(json_array_get(json_object_get(r, "dag_runs"), 0), "dag_run_id"), "b2");
  json_decref(r);
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns?order_by=id", NULL, NULL, 200);
  assert_string_equal(jstr(json_array_get(json_object_get(r, "dag_runs"), 0), "dag_run_id"), "a1");
  json_decref(r);
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns?order_by=nothing", NULL, NULL, 400);
  assert_non_null(strstr(jstr(r, "detail"), "nothing"));
  json_decref(r);
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns?order_by=-stat", NULL, NULL, 400);
  assert_non_null(strstr(jstr(r, "detail"), "did you mean \"state\""));
  json_decref(r);
  /* Unknown query parameters: 400, with the closest known one. */
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns?limt=1", NULL, NULL, 400);
  assert_non_null(strstr(jstr(r, "detail"), "did you mean \"limit\""));
  json_decref(r);
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns?execution_date_gte=2026-01-01T00:00:00Z", NULL, NULL, 400));
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns?limit=1&limit=2", NULL, NULL, 400));
  json_decref(request(f, "GET", "/api/v1/dags/etl?fields=dag_id", NULL, NULL, 400));
  json_decref(request(f, "GET", "/health?verbose=1", NULL, NULL, 400));
  /* DAG lists: tags repeated are ORed; order_by dag_id only. */
  r = request(f, "GET", "/api/v1/dags?tags=ml&tags=nope", NULL, NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(r, "total_entries")), 1);
  json_decref(r);
  r = request(f, "GET", "/api/v1/dags?order_by=-dag_id", NULL, NULL, 200);
  assert_string_equal(jstr(json_array_get(json_object_get(r, "dags"), 0), "dag_id"), "other");
  json_decref(r);
  json_decref(request(f, "GET", "/api/v1/dags?order_by=schedule", NULL, NULL, 400));

  /* A trigger's execution_date (Airflow's older name) is the logical date. */
  r = request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"execution_date\": \"2026-10-01T07:30:00Z\"}", NULL, 200);
  assert_string_equal(jstr(r, "logical_date"), "2026-10-01T07:30:00Z");
  /* The manual run's interval is the schedule's (@daily): the day that ended. */
  assert_string_equal(jstr(r, "data_interval_start"), "2026-09-30T00:00:00Z");
  assert_string_equal(jstr(r, "data_interval_end"), "2026-10-01T00:00:00Z");
  json_decref(r);
  /* A plain date, as backfill takes it: midnight in the DAG's zone. */
  r = request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"logical_date\": \"2026-10-01\"}", NULL, 200);
  assert_string_equal(jstr(r, "logical_date"), "2026-10-01T00:00:00Z");
  assert_string_equal(jstr(r, "data_interval_start"), "2026-09-30T00:00:00Z");
  json_decref(r);
  /* Both names, agreeing: fine; differing: 400, nothing made. */
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns",
                      "{\"logical_date\": \"2026-10-02T00:00:00Z\", \"execution_date\": \"2026-10-02T00:00:00Z\"}", NULL,
                      200));
  int64_t before = count(f, "select count(*) from dag_run");
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns",
                      "{\"logical_date\": \"2026-10-02T00:00:00Z\", \"execution_date\": \"2026-10-03T00:00:00Z\"}", NULL,
                      400));
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"execution_date\": \"soon\"}", NULL, 400));
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"note\": \"hi\"}", NULL, 400));
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"state\": \"success\"}", NULL, 400));
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"data_interval_start\": \"2026-01-01T00:00:00Z\"}", NULL,
                      400));
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns",
                      "{\"data_interval_start\": \"2026-01-02T00:00:00Z\", \"data_interval_end\": \"2026-01-01T00:00:00Z\"}",
                      NULL, 400));
  assert_int_equal(count(f, "select count(*) from dag_run"), before);
  /* An interval given explicitly is kept. */
  r = request(f, "POST", "/api/v1/dags/etl/dagRuns",
              "{\"data_interval_start\": \"2026-01-01T00:00:00Z\", \"data_interval_end\": \"2026-01-08T00:00:00Z\"}", NULL,
              200);
  assert_string_equal(jstr(r, "data_interval_start"), "2026-01-01T00:00:00Z");
  assert_string_equal(jstr(r, "data_interval_end"), "2026-01-08T00:00:00Z");
  assert_string_equal(jstr(r, "logical_date"), "2026-01-01T00:00:00Z"); /* now, the fixture's clock */
  json_decref(r);
  /* A DAG without a schedule keeps the empty interval (Airflow's NullTimetable). */
  r = request(f, "POST", "/api/v1/dags/other/dagRuns", "{\"logical_date\": \"2026-10-01T07:30:00Z\"}", NULL, 200);
  assert_string_equal(jstr(r, "data_interval_start"), "2026-10-01T07:30:00Z");
  assert_string_equal(jstr(r, "data_interval_end"), "2026-10-01T07:30:00Z");
  json_decref(r);
  /* An unknown DAG id: a did-you-mean. */
  r = request(f, "POST", "/api/v1/dags/etll/dagRuns", "{}", NULL, 404);
  assert_non_null(strstr(jstr(r, "detail"), "did you mean \"etl\""));
  json_decref(r);
  r = request(f, "POST", "/api/v1/dags/zzzzzz/dagRuns", "{}", NULL, 404);
  assert_null(strstr(jstr(r, "detail"), "did you mean"));
  json_decref(r);
}

/* A DAG whose file was removed: its runs stay visible (list, get, task
 * instances, logs, the DAG as inactive) and controllable (mark, clear,
 * fail); a trigger of it is a 404, a DAG nothing knows is a 404 everywhere. */
static void test_removed_dag(void **state) {
  fixture *f = *state;
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"dag_run_id\": \"r\"}", NULL, 200));
  f->hide_etl = true;
  json_t *r = request(f, "GET", "/api/v1/dags/etl/dagRuns", NULL, NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(r, "total_entries")), 1);
  json_decref(r);
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns/r", NULL, NULL, 200));
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns/r/taskInstances", NULL, NULL, 200);
  assert_int_equal(json_array_size(json_object_get(r, "task_instances")), 3);
  json_decref(r);
  r = request(f, "GET", "/api/v1/dags/etl", NULL, NULL, 200);
  assert_false(json_is_true(json_object_get(r, "is_active")));
  assert_string_equal(jstr(r, "last_run_state"), "queued");
  json_decref(r);
  r = request(f, "PATCH", "/api/v1/dags/etl/dagRuns/r/taskInstances/a", "{\"new_state\": \"success\", \"dry_run\": false}",
              NULL, 200);
  assert_string_equal(jstr(r, "state"), "success");
  json_decref(r);
  r = request(f, "POST", "/api/v1/dags/etl/clearTaskInstances",
              "{\"dag_run_id\": \"r\", \"task_ids\": [\"a\"], \"only_failed\": false, \"dry_run\": false}", NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(r, "total_entries")), 1);
  json_decref(r);
  json_decref(request(f, "POST", "/api/v1/dags/etl/clearTaskInstances",
                      "{\"dag_run_id\": \"r\", \"task_ids\": [\"zz\"], \"dry_run\": false}", NULL, 404));
  json_decref(request(f, "POST", "/api/v1/dags/etl/clearTaskInstances",
                      "{\"dag_run_id\": \"r\", \"include_downstream\": true, \"dry_run\": false}", NULL, 409));
  r = request(f, "PATCH", "/api/v1/dags/etl/dagRuns/r", "{\"state\": \"failed\"}", NULL, 200);
  assert_string_equal(jstr(r, "state"), "failed");
  json_decref(r);
  assert_int_equal(count(f, "select count(*) from task_instance where state = 'failed'"), 3);
  /* Queued (clear the whole run) works without the model too. */
  json_decref(request(f, "PATCH", "/api/v1/dags/etl/dagRuns/r", "{\"state\": \"queued\"}", NULL, 200));
  assert_int_equal(count(f, "select count(*) from task_instance where state = 'none'"), 3);
  /* Not triggerable: it is not loaded. */
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{}", NULL, 404));
  json_decref(request(f, "GET", "/api/v1/dags/nope/dagRuns", NULL, NULL, 404));
  json_decref(request(f, "GET", "/api/v1/dags/nope", NULL, NULL, 404));
}

static void test_backfill(void **state) {
  fixture *f = *state;
  json_t *r = request(f, "POST", "/api/v1/dags/etl/backfills",
                      "{\"from\": \"2025-12-01\", \"to\": \"2025-12-07\", \"dry_run\": true}", NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(r, "total")), 7);
  assert_int_equal(count(f, "select count(*) from dag_run"), 0);
  json_decref(r);
  r = request(f, "POST", "/api/v1/dags/etl/backfills", "{\"from\": \"2025-12-01\", \"to\": \"2025-12-07\", \"reverse\": true}",
              NULL, 201);
  int64_t id = json_integer_value(json_object_get(r, "id"));
  json_t *first = json_array_get(json_object_get(r, "dag_runs"), 0);
  assert_string_equal(jstr(first, "dag_run_id"), "backfill__2025-12-07T00:00:00+00:00"); /* newest first */
  json_decref(r);
  assert_int_equal(count(f, "select count(*) from dag_run where run_type = 'backfill' and state = 'queued'"), 7);
  /* Queue order follows the request: newest first. */
  assert_int_equal(count(f, "select logical_date from dag_run order by queued_at, id limit 1"), 1765065600);
  char path[64];
  snprintf(path, sizeof(path), "/api/v1/backfills/%lld", (long long)id);
  r = request(f, "GET", path, NULL, NULL, 200);
  assert_int_equal(json_integer_value(json_object_get(r, "total")), 7);
  assert_int_equal(json_integer_value(json_object_get(r, "queued")), 7);
  assert_false(json_is_true(json_object_get(r, "done")));
  json_decref(r);
  /* Again over the same range: existing runs are kept (still queued). */
  r = request(f, "POST", "/api/v1/dags/etl/backfills", "{\"from\": \"2025-12-01\", \"to\": \"2025-12-07\"}", NULL, 201);
  assert_int_equal(json_integer_value(json_object_get(r, "total")), 0);
  json_decref(r);
  /* One failed, one succeeded: --rerun-failed takes only the failed. */
  json_decref(request(f, "PATCH", "/api/v1/dags/etl/dagRuns/backfill__2025-12-01T00:00:00+00:00", "{\"state\": \"failed\"}", NULL, 200));
  json_decref(request(f, "PATCH", "/api/v1/dags/etl/dagRuns/backfill__2025-12-02T00:00:00+00:00", "{\"state\": \"success\"}", NULL, 200));
  r = request(f, "POST", "/api/v1/dags/etl/backfills",
              "{\"from\": \"2025-12-01\", \"to\": \"2025-12-02\", \"rerun_failed\": true}", NULL, 201);
  assert_int_equal(json_integer_value(json_object_get(r, "total")), 1);
  assert_string_equal(jstr(json_array_get(json_object_get(r, "dag_runs"), 0), "action"), "rerun");
  assert_string_equal(jstr(json_array_get(json_object_get(r, "dag_runs"), 1), "action"), "keep");
  json_decref(r);
  /* Too many runs; bad dates; a DAG with no schedule. */
  f->api.max_backfill_runs = 5;
  json_decref(request(f, "POST", "/api/v1/dags/etl/backfills", "{\"from\": \"2025-01-01\", \"to\": \"2025-12-31\"}", NULL, 400));
  json_decref(request(f, "POST", "/api/v1/dags/etl/backfills", "{\"from\": \"soon\", \"to\": \"2025-12-31\"}", NULL, 400));
  json_decref(request(f, "POST", "/api/v1/dags/etl/backfills", "{\"from\": \"2025-12-31\", \"to\": \"2025-01-01\"}", NULL, 400));
  json_decref(request(f, "POST", "/api/v1/dags/other/backfills", "{\"from\": \"2025-01-01\", \"to\": \"2025-01-02\"}", NULL, 400));
  json_decref(request(f, "GET", "/api/v1/backfills/999", NULL, NULL, 404));
}

static void test_logs(void **state) {
  fixture *f = *state;
  json_decref(request(f, "POST", "/api/v1/dags/etl/dagRuns", "{\"dag_run_id\": \"r\"}", NULL, 200));
  /* Pretend try 1 of a ran and logged. */
  dagd_store_run run;
  dagd_store_ti ti;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_store_run_get(f->st, "etl", "r", &run, &err), 0);
  assert_int_equal(dagd_store_ti_get(f->st, run.pk, "a", &ti, &err), 0);
  ti.state = DAGD_TI_SUCCESS;
  ti.try_number = 1;
  assert_int_equal(dagd_store_ti_update(f->st, &ti, &err), 0);
  char path[256];
  snprintf(path, sizeof(path), "%s/etl", f->dir);
  mkdir(path, 0700);
  snprintf(path, sizeof(path), "%s/etl/r", f->dir);
  mkdir(path, 0700);
  snprintf(path, sizeof(path), "%s/etl/r/a", f->dir);
  mkdir(path, 0700);
  snprintf(path, sizeof(path), "%s/etl/r/a/1.log", f->dir);
  FILE *fp = fopen(path, "w");
  fputs("hello\nworld\n", fp);
  fputs("token=hunter2-secret\n", fp);
  fclose(fp);
  json_t *r = request(f, "GET", "/api/v1/dags/etl/dagRuns/r/taskInstances/a/logs/1", NULL, NULL, 200);
  assert_string_equal(jstr(r, "content"), "hello\nworld\ntoken=***\n");
  assert_int_equal(json_integer_value(json_object_get(r, "next_offset")), 33);
  assert_true(json_is_true(json_object_get(r, "done")));
  json_decref(r);
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns/r/taskInstances/a/logs/1?offset=6", NULL, NULL, 200);
  assert_string_equal(jstr(r, "content"), "world\ntoken=***\n");
  json_decref(r);
  /* Outputs are masked too. */
  assert_int_equal(dagd_store_output_put(f->st, run.pk, "a", "key", "x-hunter2-secret-y", &err), 0);
  r = request(f, "GET", "/api/v1/dags/etl/dagRuns/r/taskInstances", NULL, NULL, 200);
  assert_string_equal(jstr(json_object_get(json_array_get(json_object_get(r, "task_instances"), 0), "outputs"), "key"),
                      "x-***-y");
  json_decref(r);
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns/r/taskInstances/a/logs/2", NULL, NULL, 404));
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns/r/taskInstances/a/logs/x", NULL, NULL, 400));
  json_decref(request(f, "GET", "/api/v1/dags/etl/dagRuns/r/taskInstances/..%2Fb/logs/1", NULL, NULL, 400));
  dagd_store_ti_clear(&ti);
  dagd_store_run_clear(&run);
  json_decref(request(f, "GET", "/metrics", NULL, NULL, 200));
}

/* Every error the handlers answer is a problem document (RFC 9457):
 * application/problem+json with exactly type, title, status and detail. */
static void test_errors_are_problems(void **state) {
  fixture *f = *state;
  static const struct {
    const char *method, *path, *body, *ctype, *auth;
    int status;
    const char *title, *detail;
  } cases[] = {
      {"GET", "/api/v1/dags/nope", NULL, NULL, "Bearer reader-token", 404, "Not Found", "no DAG \"nope\""},
      {"POST", "/api/v1/dags/etl/dagRuns", "{bad", "application/json", "Bearer admin-token", 400, "Bad Request", NULL},
      {"POST", "/api/v1/dags/etl/dagRuns", "{}", "text/plain", "Bearer admin-token", 415, "Unsupported Media Type",
       NULL},
      {"POST", "/api/v1/dags/etl/dagRuns", "{}", NULL, NULL, 401, "Unauthorized", NULL},
      {"POST", "/api/v1/dags/etl/dagRuns", "{}", NULL, "Bearer reader-token", 403, "Forbidden", NULL},
      {"GET", "/api/v1/dags?limit=0", NULL, NULL, "Bearer reader-token", 400, "Bad Request", NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const dagd_api_route *route = NULL;
    const char *q = strchr(cases[i].path, '?');
    char path[128];
    snprintf(path, sizeof(path), "%.*s", q ? (int)(q - cases[i].path) : (int)strlen(cases[i].path), cases[i].path);
    const char *pattern = strcmp(path, "/api/v1/dags/nope") == 0 ? "/api/v1/dags/{dag_id}"
                          : strcmp(path, "/api/v1/dags") == 0    ? "/api/v1/dags"
                                                                 : "/api/v1/dags/{dag_id}/dagRuns";
    for (size_t r = 0; r < dagd_api_n_routes; r++)
      if (strcmp(dagd_api_routes[r].method, cases[i].method) == 0 && strcmp(dagd_api_routes[r].pattern, pattern) == 0)
        route = &dagd_api_routes[r];
    assert_non_null(route);
    const char *params[] = {strcmp(path, "/api/v1/dags/nope") == 0 ? "nope" : "etl"};
    dagd_api_request req = {.method = cases[i].method, .path = path, .params = params, .n_params = 1,
                            .query = q ? q + 1 : "", .body = cases[i].body,
                            .body_len = cases[i].body ? strlen(cases[i].body) : 0, .content_type = cases[i].ctype,
                            .authorization = cases[i].auth, .local = true, .now = f->now};
    dagd_api_response resp;
    dagd_api_response_init(&resp);
    dagd_api_dispatch(&f->api, route, &req, &resp);
    assert_int_equal(resp.status, cases[i].status);
    assert_string_equal(resp.content_type, "application/problem+json");
    json_t *doc = json_loads(resp.body.data, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_object_size(doc), 4);
    assert_string_equal(jstr(doc, "type"), "about:blank");
    assert_string_equal(jstr(doc, "title"), cases[i].title);
    assert_int_equal(json_integer_value(json_object_get(doc, "status")), cases[i].status);
    assert_non_null(jstr(doc, "detail"));
    if (cases[i].detail) assert_string_equal(jstr(doc, "detail"), cases[i].detail);
    json_decref(doc);
    dagd_api_response_close(&resp);
  }
}

/* docs/openapi.yaml, built in, describes every route of the router and no
 * route the router lacks, and GET /api/v1/openapi.json serves it as is. */
static void test_openapi_covers_routes(void **state) {
  fixture *f = *state;
  size_t len;
  const char *text = dagd_api_openapi(&len);
  assert_true(len > 1000);
  assert_int_equal(strlen(text), len);
  json_error_t jerr;
  json_t *doc = json_loadb(text, len, 0, &jerr);
  if (doc == NULL) fail_msg("openapi.json: %s", jerr.text);
  assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
  json_t *paths = json_object_get(doc, "paths");
  size_t operations = 0;
  const char *p;
  json_t *item;
  json_object_foreach(paths, p, item) {
    const char *m;
    json_t *op;
    json_object_foreach(item, m, op) {
      if (strcmp(m, "parameters") == 0) continue;
      operations++;
      bool routed = false;
      for (size_t r = 0; r < dagd_api_n_routes; r++)
        routed |= strcmp(dagd_api_routes[r].pattern, p) == 0 && strcasecmp(dagd_api_routes[r].method, m) == 0;
      if (!routed) fail_msg("the document has %s %s, the router does not", m, p);
    }
  }
  for (size_t r = 0; r < dagd_api_n_routes; r++) {
    char m[16];
    size_t k = 0;
    for (; dagd_api_routes[r].method[k] && k < sizeof(m) - 1; k++) m[k] = (char)tolower(dagd_api_routes[r].method[k]);
    m[k] = '\0';
    if (json_object_get(json_object_get(paths, dagd_api_routes[r].pattern), m) == NULL)
      fail_msg("the router has %s %s, docs/openapi.yaml does not", dagd_api_routes[r].method,
               dagd_api_routes[r].pattern);
  }
  assert_int_equal(operations, dagd_api_n_routes);
  json_decref(doc);
  json_t *served = request(f, "GET", "/api/v1/openapi.json", NULL, NULL, 200);
  json_t *again = json_loadb(text, len, 0, NULL);
  assert_true(json_equal(served, again));
  json_decref(again);
  json_decref(served);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_errors_are_problems, setup_tokens, teardown),
      cmocka_unit_test_setup_teardown(test_openapi_covers_routes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trigger_and_runs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trigger_same_second, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mark_clear_pause, setup, teardown),
      cmocka_unit_test_setup_teardown(test_events, setup, teardown),
      cmocka_unit_test_setup_teardown(test_events_same_second, setup, teardown),
      cmocka_unit_test_setup_teardown(test_alertmanager, setup, teardown),
      cmocka_unit_test_setup_teardown(test_signatures, setup, teardown),
      cmocka_unit_test_setup_teardown(test_signed_replay, setup, teardown),
      cmocka_unit_test_setup_teardown(test_content_type_required, setup, teardown),
      cmocka_unit_test_setup_teardown(test_host_and_origin, setup, teardown),
      cmocka_unit_test(test_timestamp_check),
      cmocka_unit_test_setup_teardown(test_tokens_and_scopes, setup_tokens, teardown),
      cmocka_unit_test_setup_teardown(test_every_route_needs_a_token, setup_tokens, teardown),
      cmocka_unit_test_setup_teardown(test_dry_run, setup, teardown),
      cmocka_unit_test_setup_teardown(test_query_habits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_removed_dag, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backfill, setup, teardown),
      cmocka_unit_test_setup_teardown(test_logs, setup, teardown),
  };
  return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}
