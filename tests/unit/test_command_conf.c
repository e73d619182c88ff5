/* Unit tests for what a try is handed and where its secrets may go: the
 * conf through $DAGD_CONF_FILE (and $DAGD_CONF only while small), argv
 * and environment strings the kernel would refuse, and the rule that a
 * request carrying a rendered secret goes only to a scheme://host the DAG
 * file wrote itself, or one the config's secret_hosts lists.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dagd/err.h"
#include "dagd/command.h"

static dagd_dag *make_dag(dagd_op op, const char *config_json, dagd_task **task) {
  dagd_dag *dag = dagd_dag_new("etl", "/srv/dags/etl.lua", 1);
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_dag_add_task(dag, "score", op, 3, task, &err), 0);
  json_decref((*task)->config);
  (*task)->config = json_loads(config_json, 0, NULL);
  assert_non_null((*task)->config);
  dag->params = json_pack("{s:s, s:s}", "scorer", "https://scorer.internal:8443", "path", "/v2");
  assert_int_equal(dagd_dag_finalize(dag, &err), 0);
  return dag;
}

static int test_secret(void *data, const char *name, char **value, dagd_err *err) {
  (void)data;
  (void)err;
  *value = dagd_asprintf("s3cr3t-%s", name);
  return 0;
}

static dagd_try_info info_for(const dagd_dag *dag, const dagd_task *t, const char *conf) {
  return (dagd_try_info){.dag = dag, .task = t, .run_id = "manual__1", .logical_date = 1767312000,
                         .try_number = 1, .conf = conf, .output_path = "/l/1.out", .self_path = "/usr/bin/dagd",
                         .spec_path = "-", .conf_path = "/l/1.conf.json", .secret = test_secret};
}

static const char *env_get(char **env, const char *key) {
  size_t n = strlen(key);
  for (; env && *env; env++)
    if (strncmp(*env, key, n) == 0 && (*env)[n] == '=') return *env + n + 1;
  return NULL;
}

/* The pure rule, case by case. */
static void test_secret_url_rule(void **state) {
  (void)state;
  char *allow[] = {"https://hooks.example.com"};
  dagd_err err;
  struct {
    const char *url;
    size_t literal;
    size_t n_secrets;
    int want;
  } cases[] = {
      {"https://api.example.com/score", 29, 1, 0},        /* all literal */
      {"https://api.example.com/x/7", 26, 1, 0},          /* path from a template */
      {"https://api.example.com/score", 0, 1, DAGD_EINVAL}, /* {{ conf.base }}/score */
      {"https://api.example.com.evil.net/", 23, 1, DAGD_EINVAL}, /* host extended by a value */
      {"https://api.example.com@evil.net/", 23, 1, DAGD_EINVAL}, /* userinfo trick */
      {"https://api.example.com:444/", 23, 1, DAGD_EINVAL}, /* port from a value */
      {"https://evil.net/score", 0, 0, 0},                /* no secret: anything goes */
      {"https://hooks.example.com/abc", 0, 1, 0},         /* allowlisted origin */
      {"HTTPS://Hooks.Example.com/abc", 0, 1, 0},         /* compared lowercased */
      {"https://hooks.example.com:8443/abc", 0, 1, DAGD_EINVAL}, /* another origin */
      {"ftp://api.example.com/", 22, 1, DAGD_EINVAL},     /* not http(s) */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    dagd_err_init(&err);
    int rc = dagd_command_secret_url_check("task \"t\"", cases[i].url, cases[i].literal, cases[i].n_secrets, allow, 1,
                                           &err);
    if (rc != cases[i].want) fail_msg("case %zu (%s): got %d, want %d", i, cases[i].url, rc, cases[i].want);
    if (rc != 0) assert_non_null(strstr(err.msg, "secret_hosts"));
  }
}

/* The http operator, built as the daemon builds a try. */
static int build_http(const char *url, const char *auth, char *const *allow, size_t n_allow, dagd_err *err) {
  json_t *cfg = json_pack("{s:s, s:{s:s}}", "url", url, "headers", "Authorization", auth);
  char *text = json_dumps(cfg, 0);
  json_decref(cfg);
  dagd_task *t;
  dagd_dag *dag = make_dag(DAGD_OP_HTTP, text, &t);
  free(text);
  dagd_try_info info = info_for(dag, t, "{\"base\": \"http://127.0.0.1:9\", \"sub\": \".evil.net\", \"p\": \"x\"}");
  info.secret_hosts = allow;
  info.n_secret_hosts = n_allow;
  dagd_command cmd;
  dagd_err_init(err);
  int rc = dagd_command_build(&info, &cmd, err);
  if (rc == 0) {
    /* The secret is in the spec only when the request may go. */
    if (strstr(auth, "secret")) assert_non_null(strstr(cmd.spec, "s3cr3t-S1"));
    dagd_command_close(&cmd);
  }
  dagd_dag_free(dag);
  return rc;
}

static void test_http_operator_secret_hosts(void **state) {
  (void)state;
  dagd_err err;
  const char *bearer = "Bearer {{ secret(\"S1\") }}";
  assert_int_equal(build_http("https://api.example.com/score", bearer, NULL, 0, &err), 0);
  assert_int_equal(build_http("https://api.example.com/{{ conf.p }}", bearer, NULL, 0, &err), 0);
  assert_int_equal(build_http("{{ conf.base }}/score", bearer, NULL, 0, &err), DAGD_EINVAL);
  assert_non_null(strstr(err.msg, "task \"score\""));
  assert_non_null(strstr(err.msg, "carries a secret"));
  assert_null(strstr(err.msg, "s3cr3t"));
  assert_int_equal(build_http("https://api.example.com{{ conf.sub }}/", bearer, NULL, 0, &err), DAGD_EINVAL);
  /* No secret: a conf-chosen host is the DAG author's choice. */
  assert_int_equal(build_http("{{ conf.base }}/score", "Bearer public", NULL, 0, &err), 0);
  /* params come from the DAG file: fixed; a filter or an index is not. */
  assert_int_equal(build_http("{{ params.scorer }}/score", bearer, NULL, 0, &err), 0);
  assert_int_equal(build_http("{{params.scorer}}{{ params.path }}/{{ conf.p }}", bearer, NULL, 0, &err), 0);
  assert_int_equal(build_http("{{ params.scorer }}{{ conf.sub }}/", bearer, NULL, 0, &err), DAGD_EINVAL);
  assert_int_equal(build_http("{{ params.scorer | lower }}/x", bearer, NULL, 0, &err), DAGD_EINVAL);
  assert_int_equal(build_http("{{ conf.base }}{{ params.scorer }}/x", bearer, NULL, 0, &err), DAGD_EINVAL);
  char *allow[] = {"http://127.0.0.1:9"};
  assert_int_equal(build_http("{{ conf.base }}/score", bearer, allow, 1, &err), 0);
}

static int build_registry(const char *image, char *const *allow, size_t n_allow, dagd_err *err) {
  json_t *cfg = json_pack("{s:s, s:s, s:s, s:s, s:s}", "action", "resolve", "image", image, "tag", "1",
                          "username", "ci", "password", "{{ secret(\"REG\") }}");
  char *text = json_dumps(cfg, 0);
  json_decref(cfg);
  dagd_task *t;
  dagd_dag *dag = make_dag(DAGD_OP_REGISTRY, text, &t);
  free(text);
  dagd_try_info info = info_for(dag, t, "{\"reg\": \"evil.net\", \"repo\": \"ml/model\"}");
  info.secret_hosts = allow;
  info.n_secret_hosts = n_allow;
  dagd_command cmd;
  dagd_err_init(err);
  int rc = dagd_command_build(&info, &cmd, err);
  if (rc == 0) dagd_command_close(&cmd);
  dagd_dag_free(dag);
  return rc;
}

static void test_registry_secret_hosts(void **state) {
  (void)state;
  dagd_err err;
  assert_int_equal(build_registry("registry.example.com:5000/ml/model", NULL, 0, &err), 0);
  assert_int_equal(build_registry("registry.example.com:5000/{{ conf.repo }}", NULL, 0, &err), 0);
  assert_int_equal(build_registry("{{ conf.reg }}/ml/model", NULL, 0, &err), DAGD_EINVAL);
  assert_non_null(strstr(err.msg, "carries a secret"));
  assert_int_equal(build_registry("registry.example.com{{ conf.repo }}", NULL, 0, &err), DAGD_EINVAL);
  char *allow[] = {"https://evil.net"};
  assert_int_equal(build_registry("{{ conf.reg }}/ml/model", allow, 1, &err), 0);
}

static void test_notify_secret_hosts(void **state) {
  (void)state;
  dagd_task *t;
  dagd_dag *dag = make_dag(DAGD_OP_SHELL, "{\"cmd\": \"true\"}", &t);
  dagd_try_info info = info_for(dag, t, "{\"hook\": \"http://127.0.0.1:9/x\"}");
  dagd_notify_about about = {.event = "failure", .state = "failed", .what = "failed"};
  json_t *spec = json_pack("{s:s, s:{s:s}}", "url", "{{ conf.hook }}", "headers", "Authorization",
                           "Bearer {{ secret(\"HOOK\") }}");
  json_t *out = NULL;
  dagd_err err;
  dagd_err_init(&err);
  /* Refused even when the caller does not collect the secrets. */
  assert_int_equal(dagd_command_notify(&info, spec, &about, &out, NULL, NULL, &err), DAGD_EINVAL);
  assert_null(out);
  assert_non_null(strstr(err.msg, "notify"));
  char *allow[] = {"http://127.0.0.1:9"};
  info.secret_hosts = allow;
  info.n_secret_hosts = 1;
  dagd_err_init(&err);
  assert_int_equal(dagd_command_notify(&info, spec, &about, &out, NULL, NULL, &err), 0);
  json_decref(out);
  json_decref(spec);
  dagd_dag_free(dag);
}

static char *big_conf(size_t n) {
  char *s = dagd_malloc(n + 32);
  int k = snprintf(s, n + 32, "{\"blob\": \"");
  memset(s + k, 'a', n);
  strcpy(s + k + n, "\"}");
  return s;
}

static void test_conf_file_and_env(void **state) {
  (void)state;
  dagd_task *t;
  dagd_dag *dag = make_dag(DAGD_OP_SHELL, "{\"cmd\": \"cat \\\"$DAGD_CONF_FILE\\\"\"}", &t);
  dagd_command cmd;
  dagd_err err;
  dagd_err_init(&err);
  dagd_try_info info = info_for(dag, t, "{\"n\": 5}");
  assert_int_equal(dagd_command_build(&info, &cmd, &err), 0);
  assert_string_equal(env_get(cmd.env, "DAGD_CONF"), "{\"n\": 5}");
  assert_string_equal(env_get(cmd.env, "DAGD_CONF_FILE"), "/l/1.conf.json");
  dagd_command_close(&cmd);
  /* 211 KB: over MAX_ARG_STRLEN as a variable, so only the file has it. */
  char *conf = big_conf(211 * 1000);
  info.conf = conf;
  assert_int_equal(dagd_command_build(&info, &cmd, &err), 0);
  assert_null(env_get(cmd.env, "DAGD_CONF"));
  assert_string_equal(env_get(cmd.env, "DAGD_CONF_FILE"), "/l/1.conf.json");
  dagd_command_close(&cmd);
  free(conf);
  dagd_dag_free(dag);
}

/* A conf templated into argv or env past what exec takes: a task error
 * that says which and what to do, not E2BIG from every try. */
static void test_oversize_argv_and_env(void **state) {
  (void)state;
  char *conf = big_conf(200 * 1000);
  dagd_task *t;
  dagd_dag *dag = make_dag(DAGD_OP_SHELL, "{\"cmd\": [\"/bin/echo\", \"{{ conf.blob }}\"]}", &t);
  dagd_command cmd;
  dagd_err err;
  dagd_err_init(&err);
  dagd_try_info info = info_for(dag, t, conf);
  assert_int_equal(dagd_command_build(&info, &cmd, &err), DAGD_ETOOBIG);
  assert_non_null(strstr(err.msg, "argument 1"));
  assert_non_null(strstr(err.msg, "$DAGD_CONF_FILE"));
  assert_null(cmd.argv);
  dagd_dag_free(dag);

  dag = make_dag(DAGD_OP_SHELL, "{\"cmd\": \"true\"}", &t);
  t->env = dagd_calloc(1, sizeof(*t->env));
  t->env[0].key = dagd_strdup("BLOB");
  t->env[0].value = dagd_strdup("{{ conf.blob }}");
  t->n_env = 1;
  info = info_for(dag, t, conf);
  dagd_err_init(&err);
  assert_int_equal(dagd_command_build(&info, &cmd, &err), DAGD_ETOOBIG);
  assert_non_null(strstr(err.msg, "environment variable BLOB"));
  dagd_dag_free(dag);
  free(conf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_secret_url_rule),
      cmocka_unit_test(test_http_operator_secret_hosts),
      cmocka_unit_test(test_registry_secret_hosts),
      cmocka_unit_test(test_notify_secret_hosts),
      cmocka_unit_test(test_conf_file_and_env),
      cmocka_unit_test(test_oversize_argv_and_env),
  };
  return cmocka_run_group_tests_name("ops_conf", tests, NULL, NULL);
}
