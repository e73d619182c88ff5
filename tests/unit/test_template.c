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
#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Runs cmd under the real /bin/sh -c in dir; its stdout into out. */
static int run_sh(const char *cmd, const char *dir, dagd_buf *out) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    if (chdir(dir) != 0) _exit(126);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) dagd_buf_append(out, buf, (size_t)n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The names in dir other than "existing", joined: what a command made. */
static void new_files(const char *dir, dagd_buf *out) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && strcmp(e->d_name, "existing") != 0)
      dagd_buf_printf(out, "%s ", e->d_name);
  closedir(d);
}

/* Every shell context a template can stand in, times hostile values: the
 * rendered command, run by the real /bin/sh, prints exactly the intended
 * words (NUL-terminated, so newlines in values count) and creates no file.
 * In the words, \1 stands for the value. A value that begins a word with
 * '-' is refused instead (it would be an option). */
static void test_shell_contexts(void **state) {
  static const struct {
    const char *tmpl;
    const char *words[3];
    bool word_start; /* the value begins a word: "-rf" is refused */
  } ctxs[] = {
      {"printf '%s\\000' {{ conf.v }}", {"\1"}, true},
      {"printf '%s\\000' pre{{ conf.v }}post", {"pre\1post"}, false},
      {"printf '%s\\000' \"double: {{ conf.v }}\"", {"double: \1"}, false},
      {"printf '%s\\000' 'single: {{ conf.v }}'", {"single: \1"}, false},
      {"printf '%s\\000' \"s3://bucket/raw/{{ conf.v }}/part-0.parquet\"", {"s3://bucket/raw/\1/part-0.parquet"}, false},
      {"printf '%s\\000' \"day = '{{ conf.v }}'\"", {"day = '\1'"}, false},
      {"printf '%s\\000' \"$(echo sub) {{ conf.v }}\" after", {"sub \1", "after"}, false},
      {"printf '%s\\000' a\"b{{ conf.v }}c\"'d{{ conf.v }}e'", {"ab\1cd\1e"}, false},
      {"U=u; printf '%s\\000' \"${U}/{{ conf.v }}\"", {"u/\1"}, false},
      {"printf '%s\\000' -- {{ conf.v }}", {"--", "\1"}, false},
      {"printf '%s\\000' \"{{ conf.v }}\" '{{ conf.v }}'", {"\1", "\1"}, true},
      {"printf '%s\\000' x # it's a comment\nprintf '%s\\000' {{ conf.v }}", {"x", "\1"}, true},
      {"printf '%s\\000' \\\"{{ conf.v }}", {"\"\1"}, false},
      {"printf '%s\\000' \\\n{{ conf.v }}", {"\1"}, true},
      {"printf '%s\\000' <&- {{ conf.v }}", {"\1"}, true},
  };
  static const char *values[] = {
      "$(touch pwned) x; touch pwned2", "`touch pwned`", "'", "\"", "\\", "a\nb", "\n", "; touch pwned",
      "&& touch pwned", "*", "-rf", "", "Gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x93 \xe6\x97\xa5", "'; touch pwned; '",
      "\"; touch pwned; \"", "\\\"$(touch pwned)\\\"", "a  b\tc", "$HOME ${HOME} ~", "2026-12-01",
      "\\$(touch pwned)", "'\"'\"\\'", "}}", "#", "x#y", "!!", "$((1+1))", "${IFS}",
  };
  char dir[] = "/tmp/dagd-test-shell-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[300];
  snprintf(path, sizeof(path), "%s/existing", dir);
  int fd = open(path, O_CREAT | O_WRONLY, 0600);
  assert_true(fd >= 0);
  close(fd);
  dagd_template_opts opts = {.shell_quote = true};
  for (size_t c = 0; c < sizeof(ctxs) / sizeof(ctxs[0]); c++) {
    for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
      const char *val = values[v];
      json_t *ctx = json_pack("{s:{s:s}}", "conf", "v", val);
      dagd_buf out, want, made;
      dagd_err err;
      dagd_buf_init(&out);
      dagd_buf_init(&want);
      dagd_buf_init(&made);
      dagd_err_init(&err);
      int rc = dagd_template_render(ctxs[c].tmpl, ctx, &opts, &out, &err);
      if (ctxs[c].word_start && val[0] == '-') {
        if (rc != DAGD_EINVAL) fail_msg("context %zu, value \"%s\": rendered \"%s\", want a refusal", c, val, out.data);
      } else {
        if (rc != 0) fail_msg("context %zu, value \"%s\": %s", c, val, err.msg);
        for (size_t w = 0; w < 3 && ctxs[c].words[w]; w++) {
          for (const char *p = ctxs[c].words[w]; *p; p++) {
            if (*p == '\1') dagd_buf_puts(&want, val);
            else dagd_buf_putc(&want, *p);
          }
          dagd_buf_putc(&want, '\0');
        }
        dagd_buf got;
        dagd_buf_init(&got);
        int status = run_sh(out.data, dir, &got);
        new_files(dir, &made);
        if (status != 0 || got.len != want.len || memcmp(got.data, want.data, want.len) != 0 || made.len > 0)
          fail_msg("context %zu, value \"%s\": sh -c \"%s\" exited %d, printed %zu bytes \"%.*s\" (want %zu "
                   "\"%.*s\"), made files: %s",
                   c, val, out.data, status, got.len, (int)got.len, got.data ? got.data : "", want.len,
                   (int)want.len, want.data, made.data ? made.data : "none");
        dagd_buf_close(&got);
      }
      dagd_buf_close(&out);
      dagd_buf_close(&want);
      dagd_buf_close(&made);
      json_decref(ctx);
    }
  }
  unlink(path);
  assert_int_equal(rmdir(dir), 0);
}

/* Templates where no quoting is safe are refused, whatever the value;
 * and past the construct that made them unsafe, templates work again. */
static void test_shell_refused(void **state) {
  static const char *refused[] = {
      "echo $(echo {{ conf.v }})",
      "echo \"$(echo {{ conf.v }})\"",
      "echo \"$(echo \"{{ conf.v }}\")\"",
      "echo `echo {{ conf.v }}`",
      "echo `date` {{ conf.v }}",
      "echo \"`date` {{ conf.v }}\"",
      "echo ${X:-{{ conf.v }}}",
      "echo \"${X:-{{ conf.v }}}\"",
      "echo $(( {{ conf.v }} + 1 ))",
      "cat <<EOF\n{{ conf.v }}\nEOF",
      "cat <<'EOF'\n{{ conf.v }}\nEOF",
      "echo x # {{ conf.v }}",
      "echo \\{{ conf.v }}",
      "echo \"\\{{ conf.v }}\"",
      "echo ${{ conf.v }}",
      "echo \"${{ conf.v }}\"",
      "echo $'{{ conf.v }}'",
      "echo $\"{{ conf.v }}\"",
      "eval \"echo {{ conf.v }}\"",
      "trap 'echo {{ conf.v }}' EXIT",
      "alias x='echo'; x {{ conf.v }}",
      "echo \"$(case a in a) echo;; esac) {{ conf.v }}\"",
  };
  json_t *ctx = json_pack("{s:{s:s}}", "conf", "v", "x");
  dagd_template_opts opts = {.shell_quote = true};
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    dagd_buf out;
    dagd_err err;
    dagd_buf_init(&out);
    dagd_err_init(&err);
    int rc = dagd_template_render(refused[i], ctx, &opts, &out, &err);
    if (rc != DAGD_ESYNTAX) fail_msg("rendered \"%s\" as \"%s\" (rc %d), want a refusal", refused[i], out.data, rc);
    if (strstr(err.msg, "where no value can be quoted safely") == NULL) fail_msg("message: %s", err.msg);
    dagd_buf_close(&out);
  }
  /* Plain text rendering (every field but a shell cmd string) is not
   * shell text: nothing there is refused. */
  char *got = render(ctx, "echo $(echo {{ conf.v }})", NULL, 0);
  assert_string_equal(got, "echo $(echo x)");
  free(got);
  static const char *fine[][2] = {
      {"echo $(date) {{ conf.v }}", "echo $(date) 'x'"},
      {"echo \"$(echo \")\") {{ conf.v }}\"", "echo \"$(echo \")\") x\""},
      {"echo ${X:-a} $((1 + (2))) {{ conf.v }}", "echo ${X:-a} $((1 + (2))) 'x'"},
      {"echo $$ $# $1 {{ conf.v }}", "echo $$ $# $1 'x'"},
      {"echo a#b {{ conf.v }}", "echo a#b 'x'"},
      {"case {{ conf.v }} in x) echo {{ conf.v }};; esac", "case 'x' in x) echo 'x';; esac"},
      {"echo <in {{ conf.v }}", "echo <in 'x'"},
      {"echo # no template here\necho {{ conf.v }}", "echo # no template here\necho 'x'"},
  };
  for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
    got = render(ctx, fine[i][0], &opts, 0);
    if (strcmp(got, fine[i][1]) != 0) fail_msg("rendered \"%s\" as \"%s\", want \"%s\"", fine[i][0], got, fine[i][1]);
    free(got);
  }
  json_decref(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_paths_and_values),
      cmocka_unit_test(test_undefined_and_syntax),
      cmocka_unit_test(test_secrets),
      cmocka_unit_test(test_shell_quote),
      cmocka_unit_test(test_shell_contexts),
      cmocka_unit_test(test_shell_refused),
  };
  return cmocka_run_group_tests_name("template", tests, NULL, NULL);
}
