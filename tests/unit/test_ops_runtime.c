/* Unit tests for the runtime of the branch, lua, sensor and http
 * operators: RFC 6901 JSON pointers, expected statuses, methods, header
 * lines, registry manifest URLs, output text, and calling a task's Lua
 * function with a read-only context (dagd_lua_call_task_fn).
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/operators/http_op.h"
#include "dagd/err.h"
#include "dagd/lua.h"

static void test_json_pointer(void **state) {
  (void)state;
  /* The example document of RFC 6901, section 5. */
  json_t *doc = json_loads("{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2, \"e^f\": 3, \"g|h\": 4,"
                           " \"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7, \"m~n\": 8}",
                           0, NULL);
  assert_non_null(doc);
  assert_ptr_equal(dagd__op_json_pointer(doc, ""), doc);
  assert_ptr_equal(dagd__op_json_pointer(doc, "/foo"), json_object_get(doc, "foo"));
  assert_string_equal(json_string_value(dagd__op_json_pointer(doc, "/foo/0")), "bar");
  assert_string_equal(json_string_value(dagd__op_json_pointer(doc, "/foo/1")), "baz");
  static const struct { const char *p; int v; } nums[] = {
      {"/", 0}, {"/a~1b", 1}, {"/c%d", 2}, {"/e^f", 3}, {"/g|h", 4}, {"/i\\j", 5}, {"/k\"l", 6}, {"/ ", 7}, {"/m~0n", 8}};
  for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
    const json_t *v = dagd__op_json_pointer(doc, nums[i].p);
    assert_non_null(v);
    assert_int_equal(json_integer_value(v), nums[i].v);
  }
  /* Malformed or absent: no leading zeros, no "-", no other escapes. */
  static const char *const none[] = {"foo", "/foo/01", "/foo/-", "/foo/2", "/foo/+1", "/m~2n", "/foo/0/x",
                                     "/nope", "/a~", "/foo/"};
  for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) assert_null(dagd__op_json_pointer(doc, none[i]));
  json_t *deep = json_loads("{\"data\": {\"items\": [{\"id\": 7}, {\"id\": 9, \"tags\": [\"x\"]}]}}", 0, NULL);
  assert_int_equal(json_integer_value(dagd__op_json_pointer(deep, "/data/items/1/id")), 9);
  assert_string_equal(json_string_value(dagd__op_json_pointer(deep, "/data/items/1/tags/0")), "x");
  assert_null(dagd__op_json_pointer(NULL, "/x"));
  json_decref(deep);
  json_decref(doc);
}

static void test_status_and_method(void **state) {
  (void)state;
  assert_true(dagd__op_status_ok(NULL, 200));
  assert_true(dagd__op_status_ok(NULL, 299));
  assert_false(dagd__op_status_ok(NULL, 199));
  assert_false(dagd__op_status_ok(NULL, 301));
  assert_false(dagd__op_status_ok(NULL, 503));
  json_t *one = json_integer(201);
  assert_true(dagd__op_status_ok(one, 201));
  assert_false(dagd__op_status_ok(one, 200));
  json_t *list = json_pack("[ii]", 200, 404);
  assert_true(dagd__op_status_ok(list, 404));
  assert_false(dagd__op_status_ok(list, 204));
  json_decref(one);
  json_decref(list);

  json_t *c = json_object();
  assert_string_equal(dagd__op_http_method(c), "GET");
  json_object_set_new(c, "body", json_string("x"));
  assert_string_equal(dagd__op_http_method(c), "POST");
  json_object_set_new(c, "method", json_string("PUT"));
  assert_string_equal(dagd__op_http_method(c), "PUT");
  json_decref(c);
  c = json_pack("{s:{s:i}}", "json", "a", 1);
  assert_string_equal(dagd__op_http_method(c), "POST");
  json_decref(c);
}

static void test_header_line(void **state) {
  (void)state;
  char *line;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd__op_header_line("Authorization", "Bearer abc", &line, &err), 0);
  assert_string_equal(line, "Authorization: Bearer abc");
  free(line);
  assert_int_equal(dagd__op_header_line("X-Empty", "", &line, &err), 0);
  assert_string_equal(line, "X-Empty;");
  free(line);
  /* A rendered value must not smuggle a second header in. */
  assert_int_equal(dagd__op_header_line("X-A", "v\r\nX-Admin: 1", &line, &err), DAGD_EINVAL);
  assert_null(line);
  assert_non_null(strstr(err.msg, "control character"));
  dagd_err_init(&err);
  assert_int_equal(dagd__op_header_line("Bad Name", "v", &line, &err), DAGD_EINVAL);
  assert_int_equal(dagd__op_header_line("X-A:", "v", &line, &err), DAGD_EINVAL);
  assert_int_equal(dagd__op_header_line("X-A", NULL, &line, &err), DAGD_EINVAL);
}

static void test_registry_url(void **state) {
  (void)state;
  char *url;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd__op_registry_url("localhost:5000/ml/fraud", "v1.2", &url, &err), 0);
  assert_string_equal(url, "http://localhost:5000/v2/ml/fraud/manifests/v1.2");
  free(url);
  assert_int_equal(dagd__op_registry_url("127.0.0.1:5000/fraud", "prod", &url, &err), 0);
  assert_string_equal(url, "http://127.0.0.1:5000/v2/fraud/manifests/prod");
  free(url);
  assert_int_equal(dagd__op_registry_url("[::1]:5000/fraud", "v2", &url, &err), 0);
  assert_string_equal(url, "http://[::1]:5000/v2/fraud/manifests/v2");
  free(url);
  /* Only loopback hosts get plain http, whatever the name starts with. */
  assert_int_equal(dagd__op_registry_url("localhost.evil.com/fraud", "v2", &url, &err), 0);
  assert_string_equal(url, "https://localhost.evil.com/v2/fraud/manifests/v2");
  free(url);
  assert_int_equal(dagd__op_registry_url("127.0.0.1.nip.io/fraud", "v2", &url, &err), 0);
  assert_string_equal(url, "https://127.0.0.1.nip.io/v2/fraud/manifests/v2");
  free(url);
  assert_int_equal(dagd__op_registry_url("registry.example.com/team/model", "latest", &url, &err), 0);
  assert_string_equal(url, "https://registry.example.com/v2/team/model/manifests/latest");
  free(url);
  static const char *const bad_images[] = {"fraud", "library/ubuntu", "localhost:5000/", "/x",
                                           "localhost:5000/Fraud", "localhost:5000/fraud:v1"};
  for (size_t i = 0; i < sizeof(bad_images) / sizeof(bad_images[0]); i++) {
    dagd_err_init(&err);
    assert_int_equal(dagd__op_registry_url(bad_images[i], "v1", &url, &err), DAGD_EINVAL);
    assert_null(url);
  }
  assert_int_equal(dagd__op_registry_url("localhost:5000/fraud", "../x", &url, &err), DAGD_EINVAL);
  assert_int_equal(dagd__op_registry_url("localhost:5000/fraud", "", &url, &err), DAGD_EINVAL);
}

static void test_output_text(void **state) {
  (void)state;
  json_t *v = json_pack("[s, i, f, b, n, {s:[i]}]", "plain", 42, 0.5, 1, "a", 1);
  static const char *const want[] = {"plain", "42", "0.5", "true", "null", "{\"a\":[1]}"};
  for (size_t i = 0; i < 6; i++) {
    char *t = dagd__op_output_text(json_array_get(v, i));
    assert_string_equal(t, want[i]);
    free(t);
  }
  json_decref(v);
}

/* A DAG file in a temporary folder; path is set to its name. */
static void write_dag(char *path, size_t n, const char *text) {
  snprintf(path, n, "/tmp/dagd-ops-runtime-XXXXXX");
  assert_non_null(mkdtemp(path));
  strncat(path, "/d.lua", n - strlen(path) - 1);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void remove_dag(char *path) {
  unlink(path);
  *strrchr(path, '/') = '\0';
  rmdir(path);
}

static const char DAG_FILE[] =
    "local dagd = require 'dagd'\n"
    "local d = dagd.dag { id = 'etl' }\n"
    "d:lua { id = 'view', fn = function(c)\n"
    "  local keys = {}\n"
    "  for k in pairs(c.params) do keys[#keys + 1] = k end\n"
    "  table.sort(keys)\n"
    "  local sum = 0\n"
    "  for _, x in ipairs(c.conf.xs) do sum = sum + x end\n"
    "  local ok, e = pcall(function() c.params.min_f1 = 0 end)\n"
    "  return { ds = c.ds, keys = keys, n = #c.conf.xs, sum = sum, f1 = c.outputs.eval.f1,\n"
    "           null = c.conf.gone == dagd.null, ok = ok, e = e, still = c.params.min_f1 }\n"
    "end }\n"
    "d:branch { id = 'pick', fn = function(c) return c.conf.path == 'a' and 'train_a' or { 'x', 'y' } end }\n"
    "d:lua { id = 'boom', fn = function(c)\n"
    "  error('no data for ' .. c.ds)\n"
    "end }\n"
    "d:lua { id = 'spin', fn = function(c) while true do end end }\n"
    "d:shell { id = 'sh', cmd = 'true' }\n";

static void test_call_task_fn(void **state) {
  (void)state;
  char path[128];
  write_dag(path, sizeof(path), DAG_FILE);
  json_t *ctx = json_loads("{\"ds\": \"2026-03-01\", \"params\": {\"min_f1\": 0.9, \"alpha\": 1},"
                           " \"conf\": {\"xs\": [1, 2, 3.5], \"gone\": null, \"path\": \"a\"},"
                           " \"outputs\": {\"eval\": {\"f1\": \"0.93\"}}}",
                           0, NULL);
  assert_non_null(ctx);
  json_t *r = NULL;
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_lua_call_task_fn(path, "etl", "view", "fn", ctx, NULL, &r, &err);
  if (rc != 0) fail_msg("%s", err.msg);
  assert_string_equal(json_string_value(json_object_get(r, "ds")), "2026-03-01");
  json_t *keys = json_object_get(r, "keys");
  assert_int_equal(json_array_size(keys), 2);
  assert_string_equal(json_string_value(json_array_get(keys, 0)), "alpha");
  assert_string_equal(json_string_value(json_array_get(keys, 1)), "min_f1");
  assert_int_equal(json_integer_value(json_object_get(r, "n")), 3);
  assert_true(json_number_value(json_object_get(r, "sum")) == 6.5);
  assert_string_equal(json_string_value(json_object_get(r, "f1")), "0.93");
  assert_true(json_is_true(json_object_get(r, "null")));
  /* Writing to the context fails, with the file's line, and changes nothing. */
  assert_true(json_is_false(json_object_get(r, "ok")));
  const char *e = json_string_value(json_object_get(r, "e"));
  assert_non_null(e);
  assert_non_null(strstr(e, "d.lua:9:"));
  assert_non_null(strstr(e, "read-only"));
  assert_true(json_number_value(json_object_get(r, "still")) == 0.9);
  json_decref(r);

  assert_int_equal(dagd_lua_call_task_fn(path, "etl", "pick", "fn", ctx, NULL, &r, &err), 0);
  assert_string_equal(json_string_value(r), "train_a");
  json_decref(r);
  json_object_set_new(json_object_get(ctx, "conf"), "path", json_string("b"));
  assert_int_equal(dagd_lua_call_task_fn(path, "etl", "pick", "fn", ctx, NULL, &r, &err), 0);
  assert_true(json_is_array(r));
  assert_int_equal(json_array_size(r), 2);
  json_decref(r);

  /* An error in the function names the DAG file's line. */
  rc = dagd_lua_call_task_fn(path, "etl", "boom", "fn", ctx, NULL, &r, &err);
  assert_true(rc < 0);
  assert_null(r);
  assert_non_null(strstr(err.msg, "d.lua:15: "));
  assert_non_null(strstr(err.msg, "no data for 2026-03-01"));

  /* A function that never returns meets the instruction budget. */
  dagd_load_opts opts;
  dagd_load_opts_default(&opts);
  opts.instruction_budget = 2000000;
  dagd_err_init(&err);
  assert_int_equal(dagd_lua_call_task_fn(path, "etl", "spin", "fn", ctx, &opts, &r, &err), DAGD_ELIMIT);
  assert_non_null(strstr(err.msg, "instruction budget"));

  /* What is not there is DAGD_ENOENT, named. */
  dagd_err_init(&err);
  assert_int_equal(dagd_lua_call_task_fn(path, "nope", "view", "fn", ctx, NULL, &r, &err), DAGD_ENOENT);
  assert_non_null(strstr(err.msg, "no DAG \"nope\""));
  dagd_err_init(&err);
  assert_int_equal(dagd_lua_call_task_fn(path, "etl", "gone", "fn", ctx, NULL, &r, &err), DAGD_ENOENT);
  assert_non_null(strstr(err.msg, "no task \"gone\""));
  dagd_err_init(&err);
  assert_int_equal(dagd_lua_call_task_fn(path, "etl", "sh", "fn", ctx, NULL, &r, &err), DAGD_ENOENT);
  assert_non_null(strstr(err.msg, "no function \"fn\""));
  json_decref(ctx);
  remove_dag(path);
}

static void test_call_broken_file(void **state) {
  (void)state;
  char path[128];
  write_dag(path, sizeof(path), "local dagd = require 'dagd'\nlocal d = dagd.dag { id = 'x' }\nd:lua { id = 'a' fn }\n");
  json_t *r = NULL;
  dagd_err err;
  dagd_err_init(&err);
  assert_true(dagd_lua_call_task_fn(path, "x", "a", "fn", NULL, NULL, &r, &err) < 0);
  assert_null(r);
  assert_non_null(strstr(err.msg, "d.lua:3: "));
  remove_dag(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_pointer),   cmocka_unit_test(test_status_and_method),
      cmocka_unit_test(test_header_line),    cmocka_unit_test(test_registry_url),
      cmocka_unit_test(test_output_text),    cmocka_unit_test(test_call_task_fn),
      cmocka_unit_test(test_call_broken_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
