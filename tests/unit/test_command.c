/* Unit tests for operators' command building: the template context, shell
 * strings with hostile conf values, argv rendering, the environment and
 * its precedence, docker and kubectl command lines, output parsing.
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
#include "dagd/tz.h"

static dagd_dag *make_dag(dagd_op op, const char *config_json, dagd_task **task) {
  dagd_dag *dag = dagd_dag_new("etl", "/srv/dags/etl.lua", 1);
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_dag_add_task(dag, "train", op, 3, task, &err), 0);
  json_decref((*task)->config);
  (*task)->config = json_loads(config_json, 0, NULL);
  assert_non_null((*task)->config);
  dag->params = json_pack("{s:f}", "min_f1", 0.9);
  assert_int_equal(dagd_dag_finalize(dag, &err), 0);
  return dag;
}

static dagd_try_info info_for(const dagd_dag *dag, const dagd_task *t, char **environ_, const json_t *outputs) {
  dagd_try_info info = {
      .dag = dag,
      .task = t,
      .run_id = "manual__2026-01-02T00:00:00+00:00",
      .logical_date = 1767312000, /* 2026-01-02 */
      .has_interval = true,
      .interval_start = 1767312000,
      .interval_end = 1767398400,
      .try_number = 2,
      .conf = "{\"evil\": \"$(touch /tmp/pwned); x'\", \"n\": 5}",
      .outputs = outputs,
      .output_path = "/var/logs/etl/r/train/2.out",
      .environ = environ_,
  };
  return info;
}

static int test_secret(void *data, const char *name, char **value, dagd_err *err) {
  *value = dagd_asprintf("value-of-%s", name);
  return 0;
}

static const char *env_get(char **env, const char *key) {
  size_t n = strlen(key);
  const char *found = NULL;
  for (; env && *env; env++)
    if (strncmp(*env, key, n) == 0 && (*env)[n] == '=') {
      assert_null(found); /* each key once */
      found = *env + n + 1;
    }
  return found;
}

static void test_context(void **state) {
  dagd_task *t;
  dagd_dag *dag = make_dag(DAGD_OP_SHELL, "{\"cmd\": \"true\"}", &t);
  char *envv[] = {"HOME=/root", NULL};
  dagd_try_info info = info_for(dag, t, envv, NULL);
  json_t *ctx = dagd_command_context(&info);
  assert_string_equal(json_string_value(json_object_get(ctx, "ds")), "2026-01-02");
  assert_string_equal(json_string_value(json_object_get(ctx, "ds_nodash")), "20260102");
  assert_string_equal(json_string_value(json_object_get(ctx, "ts")), "2026-01-02T00:00:00+00:00");
  assert_string_equal(json_string_value(json_object_get(ctx, "data_interval_end")), "2026-01-03T00:00:00Z");
  assert_int_equal(json_integer_value(json_object_get(ctx, "try_number")), 2);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(ctx, "conf"), "n")), 5);
  assert_string_equal(json_string_value(json_object_get(json_object_get(ctx, "env"), "HOME")), "/root");
  assert_true(json_real_value(json_object_get(json_object_get(ctx, "params"), "min_f1")) == 0.9);
  json_decref(ctx);
  /* In a DAG's zone, ds is the logical date's day there; logical_date
   * stays UTC. Midnight in Berlin is 23:00 UTC the day before. */
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_tz_load("Europe/Berlin", &dag->tz, &err), 0);
  info.logical_date = info.interval_start = 1772406000; /* 2026-03-01T23:00:00Z */
  ctx = dagd_command_context(&info);
  assert_string_equal(json_string_value(json_object_get(ctx, "ds")), "2026-03-02");
  assert_string_equal(json_string_value(json_object_get(ctx, "ds_nodash")), "20260302");
  assert_string_equal(json_string_value(json_object_get(ctx, "ts")), "2026-03-02T00:00:00+01:00");
  assert_string_equal(json_string_value(json_object_get(ctx, "logical_date")), "2026-03-01T23:00:00Z");
  json_decref(ctx);
  dagd_dag_free(dag);
}

static void test_shell_string_quotes_values(void **state) {
  dagd_task *t;
  dagd_dag *dag = make_dag(DAGD_OP_SHELL, "{\"cmd\": \"echo {{ conf.evil }} > out.txt\"}", &t);
  dagd_try_info info = info_for(dag, t, NULL, NULL);
  dagd_command cmd;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_command_build(&info, &cmd, &err), 0);
  assert_string_equal(cmd.argv[0], "/bin/sh");
  assert_string_equal(cmd.argv[1], "-c");
  assert_string_equal(cmd.argv[2], "echo '$(touch /tmp/pwned); x'\\''' > out.txt");
  assert_null(cmd.argv[3]);
  assert_string_equal(cmd.cwd, "/srv/dags");
  dagd_command_close(&cmd);
  dagd_dag_free(dag);
}

static void test_shell_argv_and_env(void **state) {
  dagd_task *t;
  json_t *outputs = json_loads("{\"prep\": {\"path\": \"/data/x y.csv\"}}", 0, NULL);
  dagd_dag *dag = make_dag(DAGD_OP_SHELL,
                           "{\"cmd\": [\"train.sh\", \"--in\", \"{{ outputs.prep.path }}\", \"{{ conf.evil }}\"]}", &t);
  t->n_env = 2;
  t->env = calloc(2, sizeof(dagd_kv));
  t->env[0] = (dagd_kv){strdup("MODE"), strdup("ds={{ ds }}")};
  t->env[1] = (dagd_kv){strdup("HOME"), strdup("/tmp/home")};
  t->cwd = strdup("/work/{{ dag_id }}");
  char *envv[] = {"HOME=/root", "PATH=/usr/bin", "DAGD_RUN_ID=forged", NULL};
  dagd_try_info info = info_for(dag, t, envv, outputs);
  dagd_command cmd;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_command_build(&info, &cmd, &err), 0);
  const char *want[] = {"train.sh", "--in", "/data/x y.csv", "$(touch /tmp/pwned); x'", NULL};
  for (int i = 0; i < 5; i++) {
    if (want[i] == NULL) assert_null(cmd.argv[i]);
    else assert_string_equal(cmd.argv[i], want[i]);
  }
  assert_string_equal(cmd.cwd, "/work/etl");
  assert_string_equal(env_get(cmd.env, "PATH"), "/usr/bin");
  assert_string_equal(env_get(cmd.env, "HOME"), "/tmp/home");  /* task env beats the daemon's */
  assert_string_equal(env_get(cmd.env, "MODE"), "ds=2026-01-02");
  assert_string_equal(env_get(cmd.env, "DAGD_RUN_ID"), "manual__2026-01-02T00:00:00+00:00"); /* ours win */
  assert_string_equal(env_get(cmd.env, "DAGD_TRY_NUMBER"), "2");
  assert_string_equal(env_get(cmd.env, "DAGD_DS"), "2026-01-02");
  assert_string_equal(env_get(cmd.env, "DAGD_OUTPUT"), "/var/logs/etl/r/train/2.out");
  assert_string_equal(env_get(cmd.env, "DAGD_DATA_INTERVAL_START"), "2026-01-02T00:00:00Z");
  assert_non_null(strstr(env_get(cmd.env, "DAGD_CONF"), "\"n\": 5"));
  dagd_command_close(&cmd);
  /* env_clear: only the task's and dagd's variables. */
  t->env_clear = true;
  assert_int_equal(dagd_command_build(&info, &cmd, &err), 0);
  assert_null(env_get(cmd.env, "PATH"));
  assert_string_equal(env_get(cmd.env, "HOME"), "/tmp/home");
  dagd_command_close(&cmd);
  json_decref(outputs);
  dagd_dag_free(dag);
}

static void test_template_error_names_field(void **state) {
  dagd_task *t;
  dagd_dag *dag = make_dag(DAGD_OP_SHELL, "{\"cmd\": [\"x\", \"{{ outputs.nope.k }}\"]}", &t);
  dagd_try_info info = info_for(dag, t, NULL, NULL);
  dagd_command cmd;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_command_build(&info, &cmd, &err), DAGD_ENOENT);
  assert_non_null(strstr(err.msg, "task \"train\" field cmd"));
  assert_non_null(strstr(err.msg, "outputs.nope.k"));
  assert_null(cmd.argv);
  dagd_dag_free(dag);
}

/* The try's folder of a default run id (colons) and of a logs folder with
 * a comma and a quote: --mount, one CSV field quoted where it must be. */
static const char *docker_mount_of(const char *output_path, dagd_err *err, int *rc) {
  static char mount[512];
  dagd_task *t;
  dagd_dag *dag = make_dag(DAGD_OP_DOCKER, "{\"image\": \"reg/etl:1\"}", &t);
  dagd_try_info info = info_for(dag, t, NULL, NULL);
  info.self_path = "/usr/bin/dagd";
  info.spec_path = "/logs/2.spec.json";
  info.output_path = output_path;
  dagd_command cmd;
  mount[0] = '\0';
  *rc = dagd_command_build(&info, &cmd, err);
  if (*rc == 0) {
    json_t *spec = json_loads(cmd.spec, 0, NULL);
    json_t *argv = json_object_get(json_object_get(spec, "docker"), "argv");
    for (size_t i = 0; i + 1 < json_array_size(argv); i++) {
      assert_string_not_equal(json_string_value(json_array_get(argv, i)), "--volume");
      if (strcmp(json_string_value(json_array_get(argv, i)), "--mount") == 0)
        snprintf(mount, sizeof(mount), "%s", json_string_value(json_array_get(argv, i + 1)));
    }
    json_decref(spec);
    dagd_command_close(&cmd);
  }
  dagd_dag_free(dag);
  return mount;
}

static void test_docker_mount(void **state) {
  dagd_err err;
  dagd_err_init(&err);
  int rc;
  const char *m = docker_mount_of("/srv/logs/etl/manual__2026-12-02T14:18:12+00:00/train/2.out", &err, &rc);
  assert_int_equal(rc, 0);
  assert_string_equal(m, "type=bind,source=/srv/logs/etl/manual__2026-12-02T14:18:12+00:00/train,"
                         "target=/srv/logs/etl/manual__2026-12-02T14:18:12+00:00/train");
  m = docker_mount_of("/srv/lo,gs/\"q\"/etl/r/train/2.out", &err, &rc);
  assert_int_equal(rc, 0);
  assert_string_equal(m, "type=bind,\"source=/srv/lo,gs/\"\"q\"\"/etl/r/train\",\"target=/srv/lo,gs/\"\"q\"\"/etl/r/train\"");
  m = docker_mount_of("/srv/a\nb/etl/r/train/2.out", &err, &rc);
  assert_int_equal(rc, 0);
  assert_string_equal(m, "type=bind,\"source=/srv/a\nb/etl/r/train\",\"target=/srv/a\nb/etl/r/train\"");
  /* A carriage return cannot survive docker's CSV reader: refused, named. */
  m = docker_mount_of("/srv/a\r\nb/etl/r/train/2.out", &err, &rc);
  assert_int_equal(rc, DAGD_EINVAL);
  assert_non_null(strstr(err.msg, "task \"train\": the try's folder cannot be mounted"));
}

static void test_docker_and_kubectl(void **state) {
  dagd_task *t;
  dagd_dag *dag = make_dag(DAGD_OP_DOCKER,
                           "{\"image\": \"reg:5000/etl:{{ params.min_f1 }}\", \"cmd\": [\"run\", \"{{ ds }}\"],"
                           " \"cpus\": 1.5, \"gpus\": 1, \"pull\": \"never\", \"env\": {\"A\": \"{{ try_number }}\"}}",
                           &t);
  char *envv[] = {"PATH=/usr/bin", NULL};
  dagd_try_info info = info_for(dag, t, envv, NULL);
  info.self_path = "/usr/bin/dagd";
  info.spec_path = "/logs/2.spec.json";
  dagd_command cmd;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_command_build(&info, &cmd, &err), 0);
  /* docker runs under `dagd op`, which owns the container; the docker run
   * command line is in the spec. */
  assert_string_equal(cmd.argv[1], "op");
  json_t *dspec = json_loads(cmd.spec, 0, NULL);
  json_t *docker = json_object_get(dspec, "docker");
  assert_string_equal(json_string_value(json_object_get(docker, "container")),
                      "dagd-etl-manual__2026-01-02T00-00-00-00-00-train-2");
  assert_true(json_is_true(json_object_get(docker, "auto_remove")));
  dagd_buf line;
  dagd_buf_init(&line);
  size_t ai;
  json_t *av;
  json_array_foreach(json_object_get(docker, "argv"), ai, av)
    dagd_buf_printf(&line, "%s%s", ai == 0 ? "" : " ", json_string_value(av));
  json_decref(dspec);
  assert_non_null(strstr(line.data, "docker run --name dagd-etl-manual__2026-01-02T00-00-00-00-00-train-2 "));
  assert_null(strstr(line.data, "--rm")); /* dagd op removes it once its end is known */
  assert_non_null(strstr(line.data, "--pull never"));
  assert_non_null(strstr(line.data, "--cpus 1.5 --gpus 1"));
  assert_non_null(strstr(line.data, "--env DAGD_TRY_NUMBER --env"));   /* by name: the value stays out of argv */
  assert_null(strstr(line.data, "DAGD_TRY_NUMBER=2"));
  assert_non_null(strstr(line.data, "--env A=2"));
  assert_non_null(strstr(line.data, "--mount type=bind,source=/var/logs/etl/r/train,target=/var/logs/etl/r/train "));
  assert_null(strstr(line.data, "--volume"));
  assert_true(dagd_str_has_suffix(line.data, " reg:5000/etl:0.9 run 2026-01-02"));
  assert_null(strstr(line.data, "PATH=")); /* not the daemon's environment */
  dagd_buf_close(&line);
  dagd_command_close(&cmd);
  dagd_dag_free(dag);

  dag = make_dag(DAGD_OP_KUBECTL, "{\"args\": [\"get\", \"pods\", \"-l\", \"run={{ run_id }}\"], \"namespace\": \"ml\","
                                  " \"context\": \"prod\"}", &t);
  info = info_for(dag, t, envv, NULL);
  assert_int_equal(dagd_command_build(&info, &cmd, &err), 0);
  const char *want[] = {"kubectl", "--context", "prod", "--namespace", "ml", "get", "pods", "-l", "run=manual__2026-01-02T00:00:00+00:00", NULL};
  for (int i = 0; want[i]; i++) assert_string_equal(cmd.argv[i], want[i]);
  assert_null(cmd.argv[9]);
  dagd_command_close(&cmd);
  dagd_dag_free(dag);

  /* apply renders its manifest, so kubectl runs in the dagd binary; so
   * does a docker task on the Kubernetes executor, with the try's own
   * variables only for the Job. */
  dag = make_dag(DAGD_OP_KUBECTL, "{\"apply\": \"k8s/{{ dag_id }}.yaml\", \"namespace\": \"ml\"}", &t);
  info = info_for(dag, t, envv, NULL);
  info.self_path = "/usr/bin/dagd";
  info.spec_path = "/logs/2.spec.json";
  assert_int_equal(dagd_command_build(&info, &cmd, &err), 0);
  assert_string_equal(cmd.argv[1], "op");
  json_t *kspec = json_loads(cmd.spec, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(kspec, "operator")), "kubectl");
  assert_string_equal(json_string_value(json_object_get(json_object_get(kspec, "config"), "apply")), "k8s/etl.yaml");
  json_decref(kspec);
  dagd_command_close(&cmd);
  dagd_dag_free(dag);
  dag = make_dag(DAGD_OP_DOCKER, "{\"image\": \"reg/etl:1\"}", &t);
  char *denv[] = {"PATH=/usr/bin", "DAGD_SECRET_TOKEN=s3cret", NULL};
  info = info_for(dag, t, denv, NULL);
  info.self_path = "/usr/bin/dagd";
  info.spec_path = "/logs/2.spec.json";
  info.executor = "kubernetes";
  assert_int_equal(dagd_command_build(&info, &cmd, &err), 0);
  kspec = json_loads(cmd.spec, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(kspec, "operator")), "k8sjob");
  json_t *jenv = json_object_get(kspec, "env");
  assert_string_equal(json_string_value(json_object_get(jenv, "DAGD_TRY_NUMBER")), "2");
  assert_string_equal(json_string_value(json_object_get(jenv, "DAGD_OUTPUT")), "/dev/termination-log");
  assert_null(json_object_get(jenv, "PATH"));
  assert_null(json_object_get(jenv, "DAGD_SECRET_TOKEN"));
  json_decref(kspec);
  dagd_command_close(&cmd);
  info.executor = "local";
  assert_int_equal(dagd_command_build(&info, &cmd, &err), 0);
  assert_true(cmd.spec == NULL || strstr(cmd.spec, "\"k8sjob\"") == NULL);
  dagd_command_close(&cmd);
  dagd_dag_free(dag);

  /* In-process operators: `dagd op SPEC` with the rendered config. */
  dag = make_dag(DAGD_OP_GATE, "{\"from\": \"x\", \"checks\": {\"f1\": \">= {{ params.min_f1 }}\"}}", &t);
  info = info_for(dag, t, envv, NULL);
  dagd_err_init(&err);
  assert_int_equal(dagd_command_build(&info, &cmd, &err), DAGD_EINVAL); /* no binary given */
  assert_non_null(strstr(err.msg, "no dagd binary"));
  info.self_path = "/usr/bin/dagd";
  info.spec_path = "/logs/2.spec.json";
  assert_int_equal(dagd_command_build(&info, &cmd, &err), 0);
  assert_string_equal(cmd.argv[0], "/usr/bin/dagd");
  assert_string_equal(cmd.argv[1], "op");
  assert_string_equal(cmd.argv[2], "/logs/2.spec.json");
  json_t *spec = json_loads(cmd.spec, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(spec, "operator")), "gate");
  assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(spec, "config"), "checks"), "f1")),
                      ">= 0.9");
  assert_string_equal(json_string_value(json_object_get(json_object_get(spec, "context"), "ds")), "2026-01-02");
  assert_int_equal(json_array_size(json_object_get(spec, "secrets")), 0);
  json_decref(spec);
  dagd_command_close(&cmd);
  dagd_dag_free(dag);
  /* The secrets an in-process operator's config rendered are listed in its
   * spec, so that `dagd op` can mask them in the files it writes. */
  dag = make_dag(DAGD_OP_HTTP, "{\"url\": \"http://x/\", \"headers\": {\"A\": \"Bearer {{ secret('TOK') }}\"}}", &t);
  info = info_for(dag, t, envv, NULL);
  info.self_path = "/usr/bin/dagd";
  info.spec_path = "-";
  info.secret = test_secret;
  assert_int_equal(dagd_command_build(&info, &cmd, &err), 0);
  assert_string_equal(cmd.argv[2], "-");
  spec = json_loads(cmd.spec, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(spec, "config"), "headers"), "A")),
                      "Bearer value-of-TOK");
  assert_int_equal(json_array_size(json_object_get(spec, "secrets")), 1);
  assert_string_equal(json_string_value(json_array_get(json_object_get(spec, "secrets"), 0)), "value-of-TOK");
  json_decref(spec);
  dagd_command_close(&cmd);
  dagd_dag_free(dag);
  dag = make_dag(DAGD_OP_EMPTY, "{}", &t);
  info = info_for(dag, t, envv, NULL);
  assert_int_equal(dagd_command_build(&info, &cmd, &err), 0);
  assert_true(cmd.no_process);
  dagd_command_close(&cmd);
  dagd_dag_free(dag);
}

static void test_outputs(void **state) {
  json_t *o;
  dagd_err err;
  dagd_err_init(&err);
  const char *kv = "# metrics\nf1=0.93\n\nauc = 0.97\nuri=s3://b/k=v\r\n";
  assert_int_equal(dagd_command_parse_outputs(kv, strlen(kv), &o, &err), 0);
  assert_string_equal(json_string_value(json_object_get(o, "f1")), "0.93");
  assert_string_equal(json_string_value(json_object_get(o, "auc")), " 0.97");
  assert_string_equal(json_string_value(json_object_get(o, "uri")), "s3://b/k=v");
  assert_int_equal(json_object_size(o), 3);
  json_decref(o);
  const char *js = " {\"f1\": 0.93, \"name\": \"m\", \"tags\": [1, 2]}";
  assert_int_equal(dagd_command_parse_outputs(js, strlen(js), &o, &err), 0);
  assert_string_equal(json_string_value(json_object_get(o, "f1")), "0.93");
  assert_string_equal(json_string_value(json_object_get(o, "tags")), "[1,2]");
  json_decref(o);
  const char *bad[] = {"no equals sign", "{\"a\": ", "bad key!=1", "{\"x/y\": 1}", "k=\xff\xfe"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    dagd_err_init(&err);
    assert_true(dagd_command_parse_outputs(bad[i], strlen(bad[i]), &o, &err) < 0);
    assert_non_null(strstr(err.msg, "$DAGD_OUTPUT"));
  }
  char *big = malloc(DAGD_OUTPUT_MAX + 2);
  memset(big, 'a', DAGD_OUTPUT_MAX + 1);
  big[DAGD_OUTPUT_MAX + 1] = '\0';
  dagd_err_init(&err);
  assert_int_equal(dagd_command_parse_outputs(big, DAGD_OUTPUT_MAX + 1, &o, &err), DAGD_ELIMIT);
  free(big);
  char *name = dagd_command_container_name("d", "r:1+2", "t", 3);
  assert_string_equal(name, "dagd-d-r-1-2-t-3");
  free(name);
}

/* A callback's spec: every string field rendered, the default payload
 * about the try or, with no task, about the run. */
static void test_notify_spec(void **state) {
  dagd_task *t;
  dagd_dag *dag = make_dag(DAGD_OP_SHELL, "{\"cmd\": \"true\"}", &t);
  dagd_try_info info = info_for(dag, t, NULL, NULL);
  info.secret = test_secret;
  json_t *spec = json_loads("{\"url\": \"http://h/{{ dag_id }}/{{ ds }}\", \"method\": \"POST\","
                            " \"headers\": {\"Authorization\": \"Bearer {{ secret('HOOK') }}\"},"
                            " \"body\": \"{\\\"text\\\": \\\"{{ task_id }} {{ event }} {{ state }} n={{ conf.n }}\\\"}\","
                            " \"timeout\": 10}", 0, NULL);
  assert_non_null(spec);
  dagd_notify_about about = {.event = "failure", .state = "failed", .what = "failed", .log = "/l/2.log"};
  json_t *out = NULL;
  char **seen = NULL;
  size_t n_seen = 0;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_command_notify(&info, spec, &about, &out, &seen, &n_seen, &err), 0);
  assert_string_equal(json_string_value(json_object_get(out, "url")), "http://h/etl/2026-01-02");
  assert_string_equal(json_string_value(json_object_get(json_object_get(out, "headers"), "Authorization")),
                      "Bearer value-of-HOOK");
  assert_string_equal(json_string_value(json_object_get(out, "body")), "{\"text\": \"train failure failed n=5\"}");
  assert_int_equal(json_integer_value(json_object_get(out, "timeout")), 10);
  assert_int_equal(n_seen, 1);
  assert_string_equal(seen[0], "value-of-HOOK");
  json_t *p = json_object_get(out, "payload");
  assert_string_equal(json_string_value(json_object_get(p, "text")),
                      "dagd: task train of DAG etl failed (try 2) in run manual__2026-01-02T00:00:00+00:00");
  assert_string_equal(json_string_value(json_object_get(p, "task_id")), "train");
  assert_string_equal(json_string_value(json_object_get(p, "log")), "/l/2.log");
  assert_null(json_object_get(p, "failed_tasks"));
  json_decref(out);
  free(seen[0]);
  free(seen);
  json_decref(spec);

  /* A run's callback: no task in the context, the failed tasks in it. */
  info.task = NULL;
  info.try_number = 0;
  char *failed[] = {"train", "eval"};
  about = (dagd_notify_about){.event = "failure", .state = "failed", .what = "failed", .failed_tasks = failed,
                              .n_failed_tasks = 2};
  spec = json_pack("{s:s, s:s}", "url", "http://h/", "body", "{{ run_id }} {{ failed_tasks | json }} {{ data_interval_end }}");
  assert_int_equal(dagd_command_notify(&info, spec, &about, &out, NULL, NULL, &err), 0);
  assert_string_equal(json_string_value(json_object_get(out, "body")),
                      "manual__2026-01-02T00:00:00+00:00 [\"train\",\"eval\"] 2026-01-03T00:00:00Z");
  p = json_object_get(out, "payload");
  assert_string_equal(json_string_value(json_object_get(p, "text")),
                      "dagd: run manual__2026-01-02T00:00:00+00:00 of DAG etl failed (failed tasks: train, eval)");
  assert_null(json_object_get(p, "task_id"));
  assert_int_equal(json_array_size(json_object_get(p, "failed_tasks")), 2);
  json_decref(out);
  json_decref(spec);

  /* A run has no task_id: a template naming it fails, naming the field. */
  spec = json_pack("{s:s, s:{s:s}}", "url", "http://h/", "headers", "X-Task", "{{ task_id }}");
  assert_int_equal(dagd_command_notify(&info, spec, &about, &out, NULL, NULL, &err), DAGD_ENOENT);
  assert_null(out);
  assert_non_null(strstr(err.msg, "field headers"));
  json_decref(spec);
  dagd_dag_free(dag);
}

/* Every kind has its row, and the rows say what the docs say. */
static void test_op_kinds(void **state) {
  (void)state;
  for (int op = 0; op < DAGD_OP__COUNT; op++) {
    const dagd_op_kind *k = dagd_op_kind_of((dagd_op)op);
    assert_int_equal(k->op, op);
    assert_int_not_equal(k->runs, DAGD_RUNS_UNKNOWN);
  }
  assert_int_equal(dagd_op_kind_of(DAGD_OP__COUNT)->runs, DAGD_RUNS_UNKNOWN);
  const dagd_op in_process[] = {DAGD_OP_DOCKER, DAGD_OP_REGISTRY, DAGD_OP_HTTP,   DAGD_OP_GATE,      DAGD_OP_BRANCH,
                                DAGD_OP_SENSOR, DAGD_OP_LUA,      DAGD_OP_DEPLOY, DAGD_OP_DATA_CHECK};
  int n = 0;
  for (int op = 0; op < DAGD_OP__COUNT; op++) n += dagd_command_in_process((dagd_op)op);
  assert_int_equal(n, (int)(sizeof(in_process) / sizeof(in_process[0])));
  for (size_t i = 0; i < sizeof(in_process) / sizeof(in_process[0]); i++) assert_true(dagd_command_in_process(in_process[i]));
  assert_int_equal(dagd_op_kind_of(DAGD_OP_SHELL)->runs, DAGD_RUNS_COMMAND);
  assert_int_equal(dagd_op_kind_of(DAGD_OP_EMPTY)->runs, DAGD_RUNS_NOTHING);
  assert_true(dagd_op_kind_of(DAGD_OP_GATE)->needs_baseline && dagd_op_kind_of(DAGD_OP_GATE)->records_baseline);
  assert_true(dagd_op_kind_of(DAGD_OP_BRANCH)->chooses_downstream);
  assert_true(dagd_op_kind_of(DAGD_OP_SENSOR)->needs_state);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_op_kinds),
      cmocka_unit_test(test_context),
      cmocka_unit_test(test_shell_string_quotes_values),
      cmocka_unit_test(test_shell_argv_and_env),
      cmocka_unit_test(test_template_error_names_field),
      cmocka_unit_test(test_docker_and_kubectl),
      cmocka_unit_test(test_docker_mount),
      cmocka_unit_test(test_outputs),
      cmocka_unit_test(test_notify_spec),
  };
  return cmocka_run_group_tests_name("ops", tests, NULL, NULL);
}
