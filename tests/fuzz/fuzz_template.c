/* Fuzzes the template renderer against a fixed context (params, conf,
 * outputs, env, secret()) and the load-time syntax check. What the check
 * refuses must not render; with shell quoting, one expression must render
 * as exactly one single-quoted shell word, whatever the values hold.
 * SPDX-License-Identifier: MIT */
#include "dagd/err.h"
#include "dagd/template.h"
#include "fuzz_common.h"

static json_t *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  ctx = json_loads("{\"ds\": \"2026-01-01\", \"ts\": \"2026-01-01T00:00:00+00:00\", \"run_id\": \"manual__x\","
                   " \"dag_id\": \"etl\", \"task_id\": \"a\", \"try_number\": 1,"
                   " \"params\": {\"min_f1\": 0.9, \"n\": 12345678901234, \"list\": [1, \"two\", {\"a\": null}],"
                   "              \"flag\": true, \"big\": 1e300, \"neg\": -0.0},"
                   " \"conf\": {\"items\": [1, \"it's\"], \"x\": \"a'b; rm -rf /\", \"nested\": {\"k\": [[]]},"
                   "            \"\": \"empty key\", \"nl\": \"a\\nb\"},"
                   " \"outputs\": {\"my-task\": {\"f1\": \"0.93\"}, \"train\": {\"model_uri\": \"s3://m\"}},"
                   " \"env\": {\"HOME\": \"/root\", \"EMPTY\": \"\"}}",
                   0, NULL);
  if (!ctx) abort();
  return 0;
}

static int secret_cb(void *data, const char *name, char **value, dagd_err *err) {
  (void)data;
  if (strcmp(name, "TOKEN") != 0) return dagd_err_set(err, DAGD_ENOENT, "no secret %s", name);
  *value = strdup("s3'cr\"et $(x)");
  return 0;
}

/* True when s is one single-quoted shell word: 'abc' or 'a'\''b'. */
static int one_quoted_word(const char *s) {
  if (*s++ != '\'') return 0;
  for (;;) {
    while (*s && *s != '\'') s++;
    if (!*s) return 0;
    s++; /* closing quote */
    if (!*s) return 1;
    if (strncmp(s, "\\''", 3) != 0) return 0;
    s += 3;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 4096) return -1;
  uint8_t flags = data[0];
  char *in = fuzz_cstr(data + 1, size - 1);
  /* Bit 1: the input is one expression, wrapped in {{ }} here. */
  int wrapped = (flags & 2) && !strstr(in, "{{") && !strstr(in, "}}");
  char *tmpl = in;
  if (flags & 2) {
    tmpl = malloc(size + 8);
    snprintf(tmpl, size + 8, "{{ %s }}", in);
  }
  char **seen = NULL;
  size_t n_seen = 0;
  dagd_template_opts opts = {.shell_quote = flags & 1, .secret = (flags & 4) ? secret_cb : NULL,
                             .secrets_seen = &seen, .n_secrets_seen = &n_seen};
  dagd_err err;
  dagd_err_init(&err);
  int check = dagd_template_check(tmpl, &err);
  FUZZ_CHECK(check == 0 || check == DAGD_ESYNTAX);
  if (check < 0) FUZZ_CHECK(err.msg[0] != '\0');
  dagd_buf out;
  dagd_buf_init(&out);
  dagd_err_init(&err);
  int rc = dagd_template_render(tmpl, ctx, &opts, &out, &err);
  if (check < 0) FUZZ_CHECK(rc < 0);
  if (rc < 0) FUZZ_CHECK(err.msg[0] != '\0');
  if (rc == 0 && wrapped && (flags & 1)) FUZZ_CHECK(one_quoted_word(out.data ? out.data : ""));
  if (rc == 0 && !dagd_template_has(tmpl)) FUZZ_CHECK(strcmp(out.data ? out.data : "", tmpl) == 0);
  for (size_t i = 0; i < n_seen; i++) free(seen[i]);
  free(seen);
  dagd_buf_close(&out);
  if (tmpl != in) free(tmpl);
  free(in);
  return 0;
}
