/* Unit tests for templates: paths, literals, filters, secrets, strict
 * undefined, syntax errors, and shell quoting that keeps hostile values
 * one inert word.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "dagd/err.h"
#include "dagd/template.h"

static json_t *context(void) {
  json_error_t jerr;
  json_t *ctx = json_loads("{\"ds\": \"2026-01-01\", \"run_id\": \"manual__x\", \"try_number\": 2,"
                           " \"params\": {\"min_f1\": 0.9, \"big\": 12345678901, \"flag\": true, \"n\": null},"
                           " \"conf\": {\"items\": [\"a\", \"b\"], \"evil\": \"x'; rm -rf / #\", \"obj\": {\"k\": 1}},"
                           " \"outputs\": {\"train\": {\"model_uri\": \"s3://m/1\"}, \"my-task\": {\"f1\": \"0.93\"}},"
                           " \"env\": {\"HOME\": \"/root\"}}",
                           0, &jerr);
  assert_non_null(ctx);
  return ctx;
}

static int fake_secret(void *data, const char *name, char **value, dagd_err *err) {
  if (strcmp(name, "TOKEN") == 0) {
    *value = strdup("s3cr3t");
    return 0;
  }
  return dagd_err_set(err, DAGD_ENOENT, "no secret %s", name);
}

static char *render(const json_t *ctx, const char *tmpl, const dagd_template_opts *opts, int want_rc) {
  dagd_buf out;
  dagd_err err;
  dagd_buf_init(&out);
  dagd_err_init(&err);
  int rc = dagd_template_render(tmpl, ctx, opts, &out, &err);
  if (rc != want_rc) fail_msg("render \"%s\": rc %d (%s), want %d", tmpl, rc, err.msg, want_rc);
  if (rc < 0) {
    dagd_buf_close(&out);
    return strdup(err.msg);
  }
  return dagd_buf_steal(&out);
}

static void expect(const json_t *ctx, const char *tmpl, const char *want) {
  char *got = render(ctx, tmpl, NULL, 0);
  if (strcmp(got, want) != 0) fail_msg("render \"%s\": got \"%s\", want \"%s\"", tmpl, got, want);
  free(got);
}

static void test_paths_and_values(void **state) {
  json_t *ctx = context();
  expect(ctx, "plain text", "plain text");
  expect(ctx, "", "");
  expect(ctx, "{{ ds }}", "2026-01-01");
  expect(ctx, "d={{ds}}/r={{ run_id }}", "d=2026-01-01/r=manual__x");
  expect(ctx, "{{ try_number }}", "2");
  expect(ctx, "{{ params.min_f1 }}", "0.9");
  expect(ctx, "{{ params.big }}", "12345678901");
  expect(ctx, "{{ params.flag }}", "true");
  expect(ctx, "{{ params.n }}", "");
  expect(ctx, "{{ conf.items[1] }}", "b");
  expect(ctx, "{{ conf.items }}", "[\"a\",\"b\"]");
  expect(ctx, "{{ conf.obj | json }}", "{\"k\":1}");
  expect(ctx, "{{ ds | json }}", "\"2026-01-01\"");
  expect(ctx, "{{ outputs.train.model_uri }}", "s3://m/1");
  expect(ctx, "{{ outputs.my-task.f1 }}", "0.93");
  expect(ctx, "{{ outputs[\"my-task\"].f1 }}", "0.93");
  expect(ctx, "{{ env.HOME }}", "/root");
  expect(ctx, "{{ '{{' }} literal", "{{ literal");
  expect(ctx, "{{ \"a}}b\" }}", "a}}b");
  expect(ctx, "{{ conf.missing | default(\"fallback\") }}", "fallback");
  expect(ctx, "{{ params.n | default('none') }}", "none");
  expect(ctx, "{{ ds | default('x') }}", "2026-01-01");
  expect(ctx, "{{ run_id | upper }}", "MANUAL__X");
  expect(ctx, "{ not a template }", "{ not a template }");
  json_decref(ctx);
}

static void test_undefined_and_syntax(void **state) {
  json_t *ctx = context();
  char *msg = render(ctx, "{{ conf.nope }}", NULL, DAGD_ENOENT);
  assert_non_null(strstr(msg, "\"conf.nope\" is undefined"));
  free(msg);
  msg = render(ctx, "{{ params.min_f1.deeper }}", NULL, DAGD_ENOENT);
  free(msg);
  msg = render(ctx, "{{ conf.items[7] }}", NULL, DAGD_ENOENT);
  free(msg);
  const char *bad[] = {"{{ ds", "{{ }}", "{{ 1abc }}", "{{ ds ds }}", "{{ ds | nofilter }}",
                       "{{ conf.items[ }}", "{{ 'open }}", "{{ ds | default(x) }}", "{{ a. }}",
                       "{{ os.execute('x') }}x{{ ( }}"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    dagd_err err;
    dagd_err_init(&err);
    if (dagd_template_check(bad[i], &err) != DAGD_ESYNTAX) fail_msg("check accepted \"%s\"", bad[i]);
    assert_non_null(strstr(err.msg, "template"));
  }
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_template_check("{{ conf.whatever | default('x') }} {{ secret('X') }}", &err), 0);
  /* An empty default (found by fuzzing: it passed NULL to strlen). */
  assert_int_equal(dagd_template_check("{{ conf.whatever | default('') }}", &err), 0);
  expect(ctx, "[{{ conf.whatever | default(\"\") }}]", "[]");
  expect(ctx, "[{{ conf.whatever | default('') | upper }}]", "[]");
  assert_true(dagd_template_has("a {{ b }}"));
  assert_false(dagd_template_has("a { b }"));
  json_decref(ctx);
}

static void test_secrets(void **state) {
  json_t *ctx = context();
  char **seen = NULL;
  size_t n_seen = 0;
  dagd_template_opts opts = {.secret = fake_secret, .secrets_seen = &seen, .n_secrets_seen = &n_seen};
  char *got = render(ctx, "Bearer {{ secret(\"TOKEN\") }}", &opts, 0);
  assert_string_equal(got, "Bearer s3cr3t");
  free(got);
  assert_int_equal(n_seen, 1);
  assert_string_equal(seen[0], "s3cr3t");
  free(seen[0]);
  free(seen);
  got = render(ctx, "{{ secret('MISSING') }}", &opts, DAGD_ENOENT);
  free(got);
  got = render(ctx, "{{ secret('TOKEN') }}", NULL, DAGD_ENOENT);
  free(got);
  /* An empty name is a syntax error, at load time too, and never reaches
   * the secret store (fake_secret would strcmp a NULL name). */
  got = render(ctx, "{{ secret(\"\") }}", &opts, DAGD_ESYNTAX);
  assert_non_null(strstr(got, "non-empty name"));
  free(got);
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_template_check("{{ secret('') }}", &err), DAGD_ESYNTAX);
  json_decref(ctx);
}

/* A hostile conf value rendered into a shell command stays one inert
 * argument: run it through /bin/sh and count the words it sees. */
static void test_shell_quote(void **state) {
  json_t *ctx = context();
  dagd_template_opts opts = {.shell_quote = true};
  char *cmd = render(ctx, "printf '%s\\n' {{ conf.evil }} | wc -l", &opts, 0);
  assert_string_equal(cmd, "printf '%s\\n' 'x'\\''; rm -rf / #' | wc -l");
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  char line[64] = "";
  assert_non_null(fgets(line, sizeof(line), p));
  assert_int_equal(WEXITSTATUS(pclose(p)), 0);
  assert_int_equal(atoi(line), 1);
  free(cmd);
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_shell_quote(&b, "");
  assert_string_equal(b.data, "''");
  dagd_buf_close(&b);
  json_decref(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_paths_and_values),
      cmocka_unit_test(test_undefined_and_syntax),
      cmocka_unit_test(test_secrets),
      cmocka_unit_test(test_shell_quote),
  };
  return cmocka_run_group_tests_name("template", tests, NULL, NULL);
}
