/* The operators room (src/operators/) runs inside a try's child process,
 * never in the daemon: the command room (src/command/) built its spec.
 * `dagd op SPEC`: reads the spec the daemon gave (a file, or "-": the
 * standard input, which is how the daemon gives it, so that the secrets
 * it may hold never touch the disk), runs the named
 * operator, and writes the outputs it set to $DAGD_OUTPUT as one JSON
 * object. The table below is the list of operators that run this way.
 * SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dagd/mask.h"
#include "dagd/operators.h"
#include "dagd/command.h"

static const struct {
  const char *name;
  dagd_operator_fn fn;
} operators[] = {
    {"gate", dagd_operator_gate},
    {"kubectl", dagd_operator_kubectl},
    {"deploy", dagd_operator_deploy},
    {"k8sjob", dagd_operator_k8sjob},
    {"data_check", dagd_operator_data_check},
    {"branch", dagd_operator_branch},
    {"lua", dagd_operator_lua},
    {"sensor", dagd_operator_sensor},
    {"http", dagd_operator_http},
    {"registry", dagd_operator_registry},
    {"docker", dagd_operator_docker},
};

void dagd_op_output(dagd_op_ctx *ctx, const char *key, const char *value) {
  json_t *v = json_string(value);
  json_object_set_new(ctx->outputs, key, v ? v : json_string("(not UTF-8)"));
}

static int write_outputs(const json_t *outputs) {
  const char *path = getenv("DAGD_OUTPUT");
  if (path == NULL || json_object_size(outputs) == 0) return 0;
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    perror(path);
    return -1;
  }
  int rc = json_dumpf(outputs, f, JSON_COMPACT) == 0 && fputc('\n', f) != EOF ? 0 : -1;
  if (fclose(f) != 0) rc = -1;
  return rc;
}

int dagd_operator_main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: dagd op SPEC|-\n");
    return 2;
  }
  json_error_t jerr;
  bool from_stdin = strcmp(argv[1], "-") == 0;
  json_t *spec = from_stdin ? json_loadf(stdin, 0, &jerr) : json_load_file(argv[1], 0, &jerr);
  if (from_stdin) {
    /* What the operator starts (docker, kubectl) must not read the spec. */
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0 && null != STDIN_FILENO) {
      dup2(null, STDIN_FILENO);
      close(null);
    }
  }
  if (!json_is_object(spec)) {
    fprintf(stderr, "dagd op: %s: %s\n", argv[1], spec ? "not a JSON object" : jerr.text);
    json_decref(spec);
    return 2;
  }
  const char *name = json_string_value(json_object_get(spec, "operator"));
  dagd_operator_fn fn = NULL;
  for (size_t i = 0; name && i < sizeof(operators) / sizeof(operators[0]); i++)
    if (strcmp(operators[i].name, name) == 0) fn = operators[i].fn;
  if (fn == NULL) {
    fprintf(stderr, "dagd op: the %s operator cannot run in this version\n", name ? name : "(unnamed)");
    json_decref(spec);
    return 1;
  }
  extern char **environ;
  dagd_mask secrets;
  dagd_mask_init(&secrets);
  const json_t *v;
  size_t i;
  json_array_foreach(json_object_get(spec, "secrets"), i, v) dagd_mask_add_secret(&secrets, json_string_value(v));
  dagd_mask_add_env_secrets(&secrets, environ);
  dagd_op_ctx ctx = {
      .spec = spec,
      .config = json_object_get(spec, "config"),
      .context = json_object_get(spec, "context"),
      .extra = json_object_get(spec, "extra"),
      .dag_id = json_string_value(json_object_get(spec, "dag_id")),
      .task_id = json_string_value(json_object_get(spec, "task_id")),
      .fileloc = json_string_value(json_object_get(spec, "fileloc")),
      .outputs = json_object(),
      .log = stdout,
      .secrets = &secrets,
  };
  int rc = fn(&ctx);
  fflush(stdout);
  /* Outputs are written whatever the result: a failing gate's report is
   * worth keeping, and the daemon stores them only when it should. */
  if (write_outputs(ctx.outputs) < 0 && rc == 0) rc = 1;
  json_decref(ctx.outputs);
  json_decref(spec);
  dagd_mask_close(&secrets);
  return rc;
}
