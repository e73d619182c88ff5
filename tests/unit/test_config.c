/* Unit tests for config: defaults, file, environment and flag precedence,
 * and clear errors for bad values.
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

#include "dagd/config.h"
#include "dagd/err.h"

static char *write_tmp(const char *text) {
  char *path = strdup("/tmp/dagd-config-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  return path;
}

static void test_defaults(void **state) {
  dagd_config cfg;
  dagd_config_init(&cfg);
  assert_string_equal(cfg.dags_folder, "dags");
  assert_string_equal(cfg.state, "var/dagd.db");
  assert_string_equal(cfg.listen, "127.0.0.1:8787");
  assert_int_equal(cfg.parallelism, 16);
  assert_string_equal(cfg.executor, "local");
  assert_string_equal(cfg.grafana_signature_header, "X-Grafana-Alerting-Signature");
  assert_int_equal(cfg.grafana_timestamp_window, 300);
  assert_null(cfg.config_file);
  dagd_config_close(&cfg);
}

static void test_file_env_precedence(void **state) {
  char *path = write_tmp("dags_folder = '/srv/dags'\n"
                         "parallelism = 4\n"
                         "pools = { gpu = 1, cpu = 8 }\n"
                         "api_tokens = { 'tok1', { token = 'tok2', scope = 'read' } }\n"
                         "webhook_secrets = { alertmanager = 's3cret' }\n"
                         "parse_timeout = '10s'\n");
  char *envp[] = {"DAGD_PARALLELISM=8", "DAGD_LISTEN=0.0.0.0:9000", "DAGD_API_TOKEN=admin", "OTHER=1", NULL};
  dagd_config cfg;
  dagd_err err;
  dagd_err_init(&err);
  dagd_config_init(&cfg);
  assert_int_equal(dagd_config_load(&cfg, path, envp, &err), 0);
  assert_string_equal(cfg.dags_folder, "/srv/dags");
  assert_int_equal(cfg.parallelism, 8); /* env beats file */
  assert_string_equal(cfg.listen, "0.0.0.0:9000");
  assert_int_equal(cfg.n_pools, 2);
  assert_int_equal(cfg.n_api_tokens, 3);
  assert_string_equal(cfg.api_tokens[2], "admin");
  assert_string_equal(cfg.api_token_scopes[0], "admin");
  assert_string_equal(cfg.api_tokens[1], "tok2");
  assert_string_equal(cfg.api_token_scopes[1], "read");
  assert_int_equal(cfg.n_webhook_secrets, 1);
  assert_string_equal(cfg.webhook_secrets[0].value, "s3cret");
  assert_int_equal(cfg.parse_timeout, 10);
  assert_string_equal(cfg.config_file, path);
  /* A flag beats both. */
  assert_int_equal(dagd_config_set(&cfg, "parallelism", "2", &err), 0);
  assert_int_equal(cfg.parallelism, 2);
  dagd_config_close(&cfg);
  unlink(path);
  free(path);
}

static void test_returned_table(void **state) {
  char *path = write_tmp("return { state = 'x.db', log_retention = '7d', grafana_timestamp_window = '90s' }\n");
  dagd_config cfg;
  dagd_err err;
  dagd_err_init(&err);
  dagd_config_init(&cfg);
  assert_int_equal(dagd_config_load_file(&cfg, path, &err), 0);
  assert_string_equal(cfg.state, "x.db");
  assert_int_equal(cfg.log_retention, 7 * 86400);
  assert_int_equal(cfg.grafana_timestamp_window, 90);
  dagd_config_close(&cfg);
  unlink(path);
  free(path);
}

/* allowed_hosts: a list in the file, comma-separated in
 * DAGD_ALLOWED_HOSTS (added to the file's); webhook_timestamp_window. */
static void test_allowed_hosts(void **state) {
  char *path = write_tmp("allowed_hosts = { 'dagd.example.com', 'proxy.example.com:8443', '[::1]:9' }\n"
                         "webhook_timestamp_window = '2m'\n");
  dagd_config cfg;
  dagd_err err;
  dagd_err_init(&err);
  dagd_config_init(&cfg);
  assert_int_equal(cfg.webhook_timestamp_window, 300);
  assert_int_equal(dagd_config_load_file(&cfg, path, &err), 0);
  assert_int_equal(cfg.webhook_timestamp_window, 120);
  char *envp[] = {"DAGD_ALLOWED_HOSTS=a.example, b.example:80,", NULL};
  assert_int_equal(dagd_config_load_env(&cfg, envp, &err), 0);
  assert_int_equal(cfg.n_allowed_hosts, 5);
  assert_string_equal(cfg.allowed_hosts[0], "dagd.example.com");
  assert_string_equal(cfg.allowed_hosts[1], "proxy.example.com:8443");
  assert_string_equal(cfg.allowed_hosts[2], "[::1]:9");
  assert_string_equal(cfg.allowed_hosts[3], "a.example");
  assert_string_equal(cfg.allowed_hosts[4], "b.example:80");
  char *bad[] = {"DAGD_ALLOWED_HOSTS=http://x.example", NULL};
  assert_true(dagd_config_load_env(&cfg, bad, &err) < 0);
  assert_non_null(strstr(err.msg, "DAGD_ALLOWED_HOSTS"));
  dagd_config_close(&cfg);
  unlink(path);
  free(path);
}

static void test_errors(void **state) {
  struct { const char *text; const char *want; } cases[] = {
      {"parallelism = 0\n", "parallelism"},
      {"parallelism = 'many'\n", "parallelism"},
      {"listen = 'nohost'\n", "listen"},
      {"executor = 'celery'\n", "executor"},
      {"dags_foldr = 'x'\n", "unknown config key \"dags_foldr\" (did you mean \"dags_folder\"?)"},
      {"paralelism = 4\n", "(did you mean \"parallelism\"?)"},
      {"Listen = '127.0.0.1:1'\n", "(did you mean \"listen\"?)"},
      /* a typo is named before its value's type */
      {"pool = { gpu = 1 }\n", "unknown config key \"pool\" (did you mean \"pools\"?)"},
      {"webhook_secret = { a = 'b' }\n", "(did you mean \"webhook_secrets\"?)"},
      {"colour = 'x'\n", "unknown config key \"colour\""},
      {"parse_timeout = '5 parsecs'\n", "parse_timeout"},
      {"grafana_timestamp_window = 'soon'\n", "grafana_timestamp_window"},
      {"grafana_timestamp_window = 0\n", "grafana_timestamp_window"},
      {"pools = { gpu = 'one' }\n", "pools"},
      {"allowed_hosts = { 'a b' }\n", "allowed_hosts"},
      {"allowed_hosts = { 'x.example:0' }\n", "allowed_hosts"},
      {"allowed_hosts = { 7 }\n", "allowed_hosts"},
      {"allowed_host = { 'x' }\n", "(did you mean \"allowed_hosts\"?)"},
      {"webhook_timestamp_window = 0\n", "webhook_timestamp_window"},
      {"api_tokens = { { token = 'x', scope = 'root' } }\n", "api_tokens"},
      {"api_tokens = { 5 }\n", "api_tokens"},
      {"x = = 1\n", ":1:"},
      {"os.execute('true')\n", ":1:"}, /* no libraries in a config file */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *path = write_tmp(cases[i].text);
    dagd_config cfg;
    dagd_err err;
    dagd_err_init(&err);
    dagd_config_init(&cfg);
    assert_true(dagd_config_load_file(&cfg, path, &err) < 0);
    if (strstr(err.msg, cases[i].want) == NULL) fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg, cases[i].want);
    dagd_config_close(&cfg);
    unlink(path);
    free(path);
  }
  dagd_config cfg;
  dagd_err err;
  dagd_err_init(&err);
  dagd_config_init(&cfg);
  assert_int_equal(dagd_config_load_file(&cfg, "/nonexistent/dagd.lua", &err), DAGD_ENOENT);
  char *envp[] = {"DAGD_PARALLELISM=-3", NULL};
  dagd_err_init(&err);
  assert_true(dagd_config_load_env(&cfg, envp, &err) < 0);
  assert_non_null(strstr(err.msg, "DAGD_PARALLELISM"));
  dagd_config_close(&cfg);
}

/* metrics_public: a boolean in the file, true/false in the environment. */
static void test_metrics_public(void **state) {
  dagd_config cfg;
  dagd_config_init(&cfg);
  assert_false(cfg.metrics_public);
  char *path = write_tmp("metrics_public = true\napi_tokens = { { token = 'dash-board', scope = 'read' } }\n");
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_config_load_file(&cfg, path, &err), 0);
  assert_true(cfg.metrics_public);
  assert_string_equal(cfg.api_token_scopes[0], "read");
  char *envp[] = {"DAGD_METRICS_PUBLIC=false", NULL};
  assert_int_equal(dagd_config_load_env(&cfg, envp, &err), 0);
  assert_false(cfg.metrics_public);
  char *bad[] = {"DAGD_METRICS_PUBLIC=maybe", NULL};
  assert_true(dagd_config_load_env(&cfg, bad, &err) < 0);
  assert_non_null(strstr(err.msg, "metrics_public"));
  unlink(path);
  free(path);
  dagd_config_close(&cfg);
}

/* try_cgroups: true unless turned off, in the file or the environment. */
static void test_try_cgroups(void **state) {
  dagd_config cfg;
  dagd_config_init(&cfg);
  assert_true(cfg.try_cgroups);
  char *path = write_tmp("try_cgroups = false\n");
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_config_load_file(&cfg, path, &err), 0);
  assert_false(cfg.try_cgroups);
  char *envp[] = {"DAGD_TRY_CGROUPS=true", NULL};
  assert_int_equal(dagd_config_load_env(&cfg, envp, &err), 0);
  assert_true(cfg.try_cgroups);
  char *bad[] = {"DAGD_TRY_CGROUPS=sometimes", NULL};
  assert_true(dagd_config_load_env(&cfg, bad, &err) < 0);
  assert_non_null(strstr(err.msg, "try_cgroups"));
  unlink(path);
  free(path);
  dagd_config_close(&cfg);
}

/* Every path setting ends absolute, against the working directory at
 * start, whichever source set it. */
static void test_resolve(void **state) {
  char *envp[] = {"DAGD_LOGS_FOLDER=./var//logs/", NULL};
  dagd_config cfg;
  dagd_err err;
  dagd_err_init(&err);
  dagd_config_init(&cfg);
  assert_int_equal(dagd_config_load_env(&cfg, envp, &err), 0);
  assert_int_equal(dagd_config_set(&cfg, "state", "/srv/dagd/../x.db", &err), 0);
  assert_int_equal(dagd_config_resolve(&cfg, "/home/me/repo/", &err), 0);
  assert_string_equal(cfg.dags_folder, "/home/me/repo/dags");
  assert_string_equal(cfg.logs_folder, "/home/me/repo/var/logs");
  assert_string_equal(cfg.state, "/srv/dagd/../x.db"); /* absolute already: ".." kept (symlinks) */
  assert_int_equal(dagd_config_resolve(&cfg, "/elsewhere", &err), 0); /* once absolute, stays */
  assert_string_equal(cfg.dags_folder, "/home/me/repo/dags");
  dagd_config_close(&cfg);

  char *abs;
  assert_int_equal(dagd_config_path_absolute(".", "/", &abs, &err), 0);
  assert_string_equal(abs, "/");
  free(abs);
  assert_int_equal(dagd_config_path_absolute("a/./b", "/w", &abs, &err), 0);
  assert_string_equal(abs, "/w/a/b");
  free(abs);
  assert_int_equal(dagd_config_path_absolute("dags", "relative", &abs, &err), DAGD_EINVAL);
  assert_null(abs);
  dagd_err_init(&err);
  dagd_config_init(&cfg);
  assert_int_equal(dagd_config_set(&cfg, "dags_folder", "", &err), DAGD_EINVAL);
  assert_non_null(strstr(err.msg, "dags_folder: empty path"));
  dagd_config_close(&cfg);
}

/* The checks that span keys, shared by the daemon and --check-config. */
static void test_check(void **state) {
  dagd_config cfg;
  dagd_err err;
  dagd_err_init(&err);
  dagd_config_init(&cfg);
  assert_int_equal(dagd_config_check(&cfg, &err), 0);
  const char *loopback[] = {"127.0.0.1:0", "[::1]:80", "localhost:8787"};
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(dagd_config_set(&cfg, "listen", loopback[i], &err), 0);
    assert_int_equal(dagd_config_check(&cfg, &err), 0);
  }
  assert_int_equal(dagd_config_set(&cfg, "listen", "0.0.0.0:8787", &err), 0);
  assert_int_equal(dagd_config_check(&cfg, &err), DAGD_EINVAL);
  assert_non_null(strstr(err.msg, "refusing to listen on 0.0.0.0:8787 with no api_tokens"));
  dagd_err_init(&err);
  assert_int_equal(dagd_config_set(&cfg, "api_token", "t0ken", &err), 0);
  assert_int_equal(dagd_config_check(&cfg, &err), 0);
  /* drain_timeout: a duration, or 0 for no wait. */
  assert_int_equal(cfg.drain_timeout, 60);
  assert_int_equal(dagd_config_set(&cfg, "drain_timeout", "0", &err), 0);
  assert_int_equal(cfg.drain_timeout, 0);
  assert_int_equal(dagd_config_set(&cfg, "drain_timeout", "5m", &err), 0);
  assert_int_equal(cfg.drain_timeout, 300);
  assert_true(dagd_config_set(&cfg, "drain_timeout", "soon", &err) < 0);
  dagd_err_init(&err);
  assert_true(dagd_config_set(&cfg, "parse_timeout", "0", &err) < 0);
  dagd_config_close(&cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_file_env_precedence),
      cmocka_unit_test(test_returned_table),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_allowed_hosts),
      cmocka_unit_test(test_metrics_public),
      cmocka_unit_test(test_try_cgroups),
      cmocka_unit_test(test_resolve),
      cmocka_unit_test(test_check),
  };
  return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
