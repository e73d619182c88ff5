/* The docker operator's command: `docker run` with a fixed container name
 * per try, the task's settings, the DAGD_* variables and the try's folder
 * mounted so the container writes $DAGD_OUTPUT where the daemon reads it.
 * The try runs it under `dagd op` (src/operators/docker.c), which owns the
 * container: tells docker's failures from the container's exit code, stops
 * it on a timeout or kill, removes it when auto_remove. Pure: no I/O.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/util.h"
#include "command/internal.h"

/* Seconds `docker stop` gives a container on a timeout or kill before
 * docker kills it: well inside the daemon's own 10 s grace before it
 * SIGKILLs the try's process group (which would leave the container). */
#define DOCKER_STOP_GRACE 5

/* Appends key=value as one field of a CSV record. docker reads a --mount
 * value as one record of Go's encoding/csv: a field holding a comma, a
 * double quote or a line break is written quoted, its quotes doubled;
 * anything else as is, so the usual mount reads as it always has. */
static void csv_field(dagd_buf *out, const char *key, const char *value) {
  if (out->len) dagd_buf_putc(out, ',');
  if (strpbrk(value, ",\"\n") == NULL) {
    dagd_buf_printf(out, "%s=%s", key, value);
    return;
  }
  dagd_buf_printf(out, "\"%s=", key);
  for (const char *p = value; *p; p++) {
    if (*p == '"') dagd_buf_putc(out, '"');
    dagd_buf_putc(out, *p);
  }
  dagd_buf_putc(out, '"');
}

/* The --mount value binding host folder src at dst in the container.
 * --volume SRC:DST cannot carry a path with a colon, and every default run
 * id has some (manual__2026-12-02T14:18:12+00:00), so the try's folder goes
 * by --mount. NULL when a path holds a carriage return: the CSV reader
 * drops one before a line feed even inside quotes, so the container would
 * see another path. */
static char *bind_mount(const char *src, const char *dst) {
  if (strchr(src, '\r') || strchr(dst, '\r')) return NULL;
  dagd_buf out;
  dagd_buf_init(&out);
  csv_field(&out, "type", "bind");
  csv_field(&out, "source", src);
  csv_field(&out, "target", dst);
  return dagd_buf_steal(&out);
}

/* `docker run` with a fixed container name per try, the task's settings,
 * the DAGD_* variables, and $DAGD_OUTPUT's folder bind-mounted at the
 * same path, so the container writes its outputs where the daemon reads
 * them.
 * No --rm: the container must outlive docker run long enough to be
 * inspected; `dagd op` removes it. */
static int docker_argv(builder *b, strv *argv, char *const *task_env) {
  const dagd_task *t = b->info->task;
  const json_t *c = t->config;
  const char *s;
  dagd__strv_push(argv, dagd_strdup("docker"));
  dagd__strv_push(argv, dagd_strdup("run"));
  dagd__strv_push(argv, dagd_strdup("--name"));
  dagd__strv_push(argv, dagd_command_container_name(b->info->dag->id, b->info->run_id, t->id, b->info->try_number));
  static const struct { const char *key, *flag; } simple[] = {
      {"workdir", "--workdir"}, {"user", "--user"}, {"network", "--network"},
      {"pull", "--pull"},       {"memory", "--memory"},
  };
  for (size_t i = 0; i < DAGD_ARRAY_LEN(simple); i++) {
    if ((s = dagd__command_cfg_str(t, simple[i].key)) == NULL) continue;
    dagd__strv_push(argv, dagd_strdup(simple[i].flag));
    if (dagd__command_push_rendered(b, argv, simple[i].key, s) < 0) return -1;
  }
  const json_t *mem = json_object_get(c, "memory");
  if (json_is_integer(mem)) { /* bytes */
    dagd__strv_push(argv, dagd_strdup("--memory"));
    dagd__strv_push(argv, dagd_asprintf("%lld", (long long)json_integer_value(mem)));
  }
  const json_t *num = json_object_get(c, "cpus");
  if (json_is_number(num)) {
    dagd__strv_push(argv, dagd_strdup("--cpus"));
    dagd__strv_push(argv, dagd_asprintf("%g", json_number_value(num)));
  }
  const json_t *gpus = json_object_get(c, "gpus");
  if (json_is_integer(gpus)) {
    dagd__strv_push(argv, dagd_strdup("--gpus"));
    dagd__strv_push(argv, dagd_asprintf("%lld", (long long)json_integer_value(gpus)));
  } else if (json_is_string(gpus)) {
    dagd__strv_push(argv, dagd_strdup("--gpus"));
    dagd__strv_push(argv, dagd_strdup(json_string_value(gpus)));
  }
  const json_t *vols = json_object_get(c, "volumes");
  size_t i;
  json_t *x;
  if (json_is_array(vols)) {
    json_array_foreach(vols, i, x) {
      if (!json_is_string(x)) continue;
      dagd__strv_push(argv, dagd_strdup("--volume"));
      if (dagd__command_push_rendered(b, argv, "volumes", json_string_value(x)) < 0) return -1;
    }
  }
  /* The container gets the try's DAGD_* variables and the task's own env,
   * never the daemon's environment (its DAGD_SECRET_* values, tokens).
   * They go by name only: docker takes each value from the environment of
   * the process that runs it (the try's), so no value shows in an argv. */
  static const char *const try_vars[] = {"DAGD_DAG_ID",       "DAGD_RUN_ID",
                                         "DAGD_TASK_ID",      "DAGD_TRY_NUMBER",
                                         "DAGD_LOGICAL_DATE", "DAGD_DS",
                                         "DAGD_DATA_INTERVAL_START", "DAGD_DATA_INTERVAL_END",
                                         "DAGD_CONF",         "DAGD_OUTPUT"};
  for (size_t v = 0; v < DAGD_ARRAY_LEN(try_vars); v++) {
    size_t klen = strlen(try_vars[v]);
    for (char *const *e = task_env; e && *e; e++) {
      if (strncmp(*e, try_vars[v], klen) != 0 || (*e)[klen] != '=') continue;
      dagd__strv_push(argv, dagd_strdup("--env"));
      dagd__strv_push(argv, dagd_strdup(try_vars[v]));
      break;
    }
  }
  for (size_t k = 0; k < t->n_env; k++) {
    dagd__strv_push(argv, dagd_strdup("--env"));
    dagd__strv_push(argv, dagd_strdup(t->env[k].key));
  }
  const json_t *denv = json_object_get(c, "env");
  const char *key;
  json_object_foreach((json_t *)denv, key, x) {
    if (!json_is_string(x)) continue;
    char *v = dagd__command_render(b, "env", json_string_value(x), false);
    if (v == NULL) return -1;
    dagd__strv_push(argv, dagd_strdup("--env"));
    dagd__strv_push(argv, dagd_asprintf("%s=%s", key, v));
    free(v);
  }
  if (b->info->output_path) {
    const char *slash = strrchr(b->info->output_path, '/');
    if (slash && slash != b->info->output_path) {
      char *dir = dagd_strndup(b->info->output_path, (size_t)(slash - b->info->output_path));
      char *mount = bind_mount(dir, dir);
      free(dir);
      if (mount == NULL)
        return dagd_err_set(b->err, DAGD_EINVAL,
                            "task \"%s\": the try's folder cannot be mounted into the container: its path "
                            "holds a carriage return, which docker's --mount cannot carry",
                            t->id);
      dagd__strv_push(argv, dagd_strdup("--mount"));
      dagd__strv_push(argv, mount);
    }
  }
  const json_t *ep = json_object_get(c, "entrypoint");
  if (json_is_string(ep) || (json_is_array(ep) && json_array_size(ep) > 0)) {
    dagd__strv_push(argv, dagd_strdup("--entrypoint"));
    const char *first = json_is_string(ep) ? json_string_value(ep) : json_string_value(json_array_get(ep, 0));
    if (dagd__command_push_rendered(b, argv, "entrypoint", first ? first : "") < 0) return -1;
  }
  if (dagd__command_push_rendered(b, argv, "image", dagd__command_cfg_str(t, "image") ? dagd__command_cfg_str(t, "image") : "") < 0) return -1;
  if (json_is_array(ep)) {
    for (size_t k = 1; k < json_array_size(ep); k++) {
      const char *a = json_string_value(json_array_get(ep, k));
      if (a && dagd__command_push_rendered(b, argv, "entrypoint", a) < 0) return -1;
    }
  }
  const json_t *cmd = json_object_get(c, "cmd");
  if (json_is_array(cmd) && dagd__command_push_array(b, argv, "cmd", cmd) < 0) return -1;
  return 0;
}

json_t *dagd__command_docker_spec(builder *b, char *const *task_env) {
  strv argv;
  memset(&argv, 0, sizeof(argv));
  if (docker_argv(b, &argv, task_env) < 0) {
    dagd__strv_free(argv.v);
    return NULL;
  }
  json_t *args = json_array();
  for (size_t i = 0; i < argv.n; i++) {
    json_t *s = json_string(argv.v[i]);
    if (s == NULL) { /* not UTF-8: refuse rather than run a different command */
      json_decref(args);
      dagd_err_set(b->err, DAGD_EINVAL, "task \"%s\": docker argument %zu is not UTF-8 text", b->info->task->id, i);
      dagd__strv_free(argv.v);
      return NULL;
    }
    json_array_append_new(args, s);
  }
  const dagd_task *t = b->info->task;
  const json_t *ar = json_object_get(t->config, "auto_remove");
  json_t *spec = json_pack("{s:o, s:s, s:b, s:i}", "argv", args, "container", argv.v[3], "auto_remove",
                           ar == NULL || json_is_true(ar), "stop_grace", DOCKER_STOP_GRACE);
  dagd__strv_free(argv.v);
  return spec;
}

char *dagd_command_container_name(const char *dag_id, const char *run_id, const char *task_id, int try_number) {
  char *name = dagd_asprintf("dagd-%s-%s-%s-%d", dag_id, run_id, task_id, try_number);
  for (char *p = name; *p; p++)
    if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == '-')) *p = '-';
  if (strlen(name) > 128) name[128] = '\0';
  return name;
}
