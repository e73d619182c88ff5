/* Unit tests of the Lua DAG loader: the whole API on a happy path, every
 * kind of error with its exact file:line, the sandbox refusing escapes,
 * the instruction, time and memory limits, and how files in a folder load
 * independently (one bad file hides nothing; duplicate DAG ids).
 * Fixtures live in tests/unit/data/lua/.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dagd/cron.h"
#include "dagd/err.h"
#include "dagd/lua.h"
#include "dagd/model.h"
#include "dagd/tz.h"
#include "dagd/util.h"

#define DATA DAGD_SOURCE_DIR "/tests/unit/data/lua/"

static dagd_load_opts opts(void) {
  dagd_load_opts o;
  dagd_load_opts_default(&o);
  o.lua_dir = DAGD_SOURCE_DIR "/lua";
  return o;
}

/* Loads one fixture; the caller closes the bag. */
static int load(const char *name, dagd_dagbag *bag, const dagd_load_opts *o) {
  char path[512];
  snprintf(path, sizeof(path), DATA "%s", name);
  dagd_dagbag_init(bag);
  dagd_load_opts def = opts();
  return dagd_lua_load_file(path, o ? o : &def, bag);
}

static void print_errors(const dagd_dagbag *bag) {
  for (size_t i = 0; i < bag->n_errors; i++)
    print_message("  %s:%d: %s\n", bag->errors[i].file, bag->errors[i].line, bag->errors[i].message);
}

static const dagd_task *task(const dagd_dag *dag, const char *id) {
  const dagd_task *t = dagd_dag_find_task(dag, id);
  if (t == NULL) fail_msg("no task %s", id);
  return t;
}

static bool has_upstream(const dagd_dag *dag, const char *down, const char *up) {
  const dagd_task *t = task(dag, down);
  long u = dagd_dag_task_index(dag, up);
  for (size_t i = 0; i < t->n_upstream; i++)
    if ((long)t->upstream[i] == u) return true;
  return false;
}

static char *dump(const json_t *j) { return json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT); }

static void assert_json(const json_t *j, const char *expected) {
  char *s = dump(j);
  assert_string_equal(s, expected);
  free(s);
}

/* Tasks whose outcome a retry cannot change take no retries from
 * default_args; their own setting holds, and every other task inherits. */
static void test_default_retries(void **state) {
  dagd_dagbag bag;
  int rc = load("retries.lua", &bag, NULL);
  print_errors(&bag);
  assert_int_equal(rc, 0);
  const dagd_dag *d = dagd_dagbag_find(&bag, "retries");
  assert_non_null(d);
  assert_int_equal(task(d, "train")->retries, 3);
  assert_int_equal(task(d, "calc")->retries, 3);
  assert_int_equal(task(d, "gate")->retries, 0);
  assert_int_equal(task(d, "gate_own")->retries, 1);
  assert_int_equal(task(d, "pick")->retries, 0);
  assert_int_equal(task(d, "guard")->retries, 0);
  assert_int_equal(task(d, "check")->retries, 0);
  assert_int_equal(task(d, "gate")->retry_delay, 60); /* only retries is held back */
  dagd_dagbag_close(&bag);
}

static void test_full_api(void **state) {
  dagd_dagbag bag;
  int rc = load("full.lua", &bag, NULL);
  print_errors(&bag);
  assert_int_equal(rc, 0);
  assert_int_equal(bag.n_errors, 0);
  assert_int_equal(bag.n_files, 1);
  assert_int_equal(bag.n_dags, 2);

  const dagd_dag *d = dagd_dagbag_find(&bag, "full");
  assert_non_null(d);
  assert_true(d->finalized);
  assert_string_equal(d->fileloc, DATA "full.lua");
  assert_int_equal(d->line, 4);
  assert_string_equal(d->description, "all the things");
  assert_non_null(d->schedule);
  assert_string_equal(dagd_cron_text(d->schedule), "0 2 * * *");
  assert_string_equal(dagd_tz_name(d->tz), "Europe/Berlin");
  assert_true(d->has_start_date);
  assert_int_equal(d->start_date, 1767222000); /* 2026-01-01T00:00:00+01:00 */
  assert_true(d->has_end_date);
  assert_int_equal(d->end_date, 1798761600); /* 2027-01-01T00:00:00Z */
  assert_true(d->catchup);
  assert_true(d->is_paused_upon_creation);
  assert_int_equal(d->max_active_runs, 2);
  assert_int_equal(d->max_active_tasks, 4);
  assert_int_equal(d->n_on_event, 2);
  assert_string_equal(d->on_event[0], "drift_detected");
  assert_string_equal(d->on_event[1], "manual.retrain");
  assert_int_equal(d->event_cooldown, 3600);
  assert_int_equal(d->dagrun_timeout, 7200);
  assert_json(d->params, "{\"min_f1\":0.90000000000000002,\"nested\":{\"k\":true},\"regions\":[\"eu\",\"us\"]}");
  assert_int_equal(d->n_tags, 2);
  assert_string_equal(d->tags[1], "fraud");
  assert_json(d->on_failure, "{\"headers\":{\"X-Token\":\"t\"},\"method\":\"POST\",\"url\":\"http://127.0.0.1:9/hook\"}");
  assert_json(d->on_success, "{\"url\":\"http://127.0.0.1:9/ok\"}");
  assert_null(d->on_retry);
  assert_int_equal(d->n_tasks, 16);

  /* common fields, default_args and their precedence */
  const dagd_task *collect = task(d, "collect");
  assert_int_equal(collect->op, DAGD_OP_SHELL);
  assert_int_equal(collect->line, 26);
  assert_int_equal(collect->retries, 2);
  assert_int_equal(collect->retry_delay, 300);
  assert_true(collect->retry_exponential_backoff);
  assert_int_equal(collect->max_retry_delay, 3600);
  assert_int_equal(collect->execution_timeout, 7200);
  assert_int_equal(collect->sla, 1800);
  assert_string_equal(collect->pool, "default");
  assert_true(collect->env_clear);
  assert_string_equal(collect->cwd, "/tmp");
  assert_int_equal(collect->n_env, 2);
  assert_string_equal(collect->env[0].key, "N"); /* sorted */
  assert_string_equal(collect->env[0].value, "3");
  assert_string_equal(collect->env[1].key, "REGION");
  assert_int_equal(collect->n_outputs, 1);
  assert_string_equal(collect->outputs[0], "rows");
  assert_string_equal(collect->doc, "collects");
  assert_json(collect->config, "{\"cmd\":[\"scripts/collect.sh\",\"{{ ds }}\",\"3\"]}");

  const dagd_task *clean = task(d, "clean");
  assert_int_equal(clean->op, DAGD_OP_DOCKER);
  assert_int_equal(clean->retries, 0); /* task beats default_args */
  assert_json(clean->config,
              "{\"auto_remove\":true,\"cmd\":[\"python\",\"clean.py\"],\"cpus\":1.5,\"entrypoint\":\"/bin/sh\","
              "\"gpus\":\"all\",\"image\":\"registry.local:5000/etl:1.4\",\"memory\":\"4g\",\"network\":\"none\","
              "\"pull\":\"missing\",\"user\":\"1000\",\"volumes\":[\"/data:/data:ro\"],\"workdir\":\"/w\"}");
  const dagd_task *train = task(d, "train");
  assert_string_equal(train->pool, "gpu");
  assert_int_equal(train->execution_timeout, 6 * 3600);
  assert_int_equal(train->priority_weight, 5);

  assert_json(task(d, "apply")->config,
              "{\"apply\":\"k8s/job.yaml\",\"namespace\":\"ml\",\"wait\":{\"for\":\"condition=complete\"},"
              "\"wait_timeout\":600}");
  assert_json(task(d, "kargs")->config, "{\"args\":[\"get\",\"pods\"],\"context\":\"kind\"}");
  assert_json(task(d, "probe")->config,
              "{\"expect_status\":[200,204],\"method\":\"GET\",\"outputs_from\":{\"ok\":\"/ok\"},"
              "\"retries_on_5xx\":2,\"timeout\":5,\"url\":\"http://127.0.0.1:9/health\"}");
  assert_int_equal(task(d, "gate")->op, DAGD_OP_GATE);
  assert_json(task(d, "gate")->config,
              "{\"baseline\":\"last_success\",\"checks\":{\"f1\":[\">= 0.9\",\">= baseline - 0.01\"],"
              "\"latency_ms\":[\"< 100\"]},\"from\":\"evaluate\"}");
  assert_json(task(d, "promote")->config,
              "{\"action\":\"retag\",\"from\":\"{{ run_id }}\",\"image\":\"registry.local:5000/fraud\","
              "\"insecure\":true,\"to\":\"prod\"}");
  assert_json(task(d, "deploy")->config,
              "{\"analysis\":{\"max\":0.01,\"metric\":\"error_rate\"},\"manifest\":\"k8s/fraud.yaml\","
              "\"pause\":120,\"rollback\":true,\"steps\":[5,25,50,100],\"strategy\":\"canary\"}");
  /* Lua functions are kept as where they are defined */
  assert_int_equal(task(d, "pick")->op, DAGD_OP_BRANCH);
  assert_json(task(d, "pick")->config, "{\"fn\":{\"function\":\"" DATA "full.lua:51\"}}");
  assert_int_equal(task(d, "guard")->op, DAGD_OP_BRANCH);
  assert_json(task(d, "guard")->config, "{\"fn\":{\"function\":\"" DATA "full.lua:52\"},\"short_circuit\":true}");
  assert_json(task(d, "wait")->config,
              "{\"interval\":30,\"mode\":\"reschedule\",\"path\":\"/data/ready\",\"poke\":\"file\","
              "\"soft_fail\":true,\"timeout\":3600}");
  assert_json(task(d, "custom")->config, "{\"poke\":{\"function\":\"" DATA "full.lua:55\"}}");
  const dagd_task *luatask = task(d, "luatask");
  assert_int_equal(luatask->op, DAGD_OP_LUA);
  assert_int_equal(luatask->trigger_rule, DAGD_TR_ALL_DONE);
  assert_json(luatask->on_retry, "{\"url\":\"http://x/r\"}");
  assert_int_equal(task(d, "done")->op, DAGD_OP_EMPTY);
  assert_int_equal(task(d, "done")->trigger_rule, DAGD_TR_NONE_FAILED_MIN_ONE_SUCCESS);
  assert_json(task(d, "done")->config, "{}");

  /* every edge form */
  assert_true(has_upstream(d, "clean", "collect"));   /* collect >> clean */
  assert_true(has_upstream(d, "train", "clean"));     /* chain fan-out */
  assert_true(has_upstream(d, "probe", "clean"));
  assert_true(has_upstream(d, "evaluate", "train"));  /* chain fan-in */
  assert_true(has_upstream(d, "evaluate", "probe"));
  assert_true(has_upstream(d, "gate", "evaluate"));   /* gate.from is a dependency */
  assert_true(has_upstream(d, "promote", "gate"));    /* :after */
  assert_true(has_upstream(d, "pick", "promote"));    /* a >> b >> c */
  assert_true(has_upstream(d, "deploy", "pick"));
  assert_true(has_upstream(d, "guard", "promote"));   /* :after with a task and an id */
  assert_true(has_upstream(d, "guard", "probe"));
  assert_true(has_upstream(d, "custom", "wait"));     /* :before */
  assert_true(has_upstream(d, "luatask", "apply"));   /* a list first in a chain */
  assert_true(has_upstream(d, "luatask", "kargs"));
  assert_true(has_upstream(d, "done", "deploy"));
  assert_true(has_upstream(d, "clean", "wait"));      /* clean << wait */
  assert_int_equal(task(d, "done")->n_upstream, 3);
  /* topological order: every task after its upstreams */
  size_t pos[64];
  for (size_t i = 0; i < d->n_tasks; i++) pos[d->topo[i]] = i;
  for (size_t i = 0; i < d->n_tasks; i++)
    for (size_t j = 0; j < d->tasks[i]->n_upstream; j++) assert_true(pos[d->tasks[i]->upstream[j]] < pos[i]);
  /* weights: own + distinct downstream */
  assert_int_equal(task(d, "done")->weight, 1);
  assert_int_equal(task(d, "deploy")->weight, 2);
  assert_int_equal(collect->weight, 15);

  const dagd_dag *d2 = dagd_dagbag_find(&bag, "second");
  assert_non_null(d2);
  assert_int_equal(d2->line, 72);
  assert_string_equal(dagd_tz_name(d2->tz), "UTC");
  assert_null(d2->schedule);
  assert_false(d2->has_start_date);
  assert_true(has_upstream(d2, "y", "x"));
  assert_true(has_upstream(d2, "y", "z"));
  assert_int_equal(task(d2, "x")->retries, 0);
  assert_json(d2->params, "{}");
  dagd_dagbag_close(&bag);
}

/* One broken file: exactly one error at file:line with this message. */
typedef struct error_case {
  const char *file;
  int line;
  const char *message;
  int code;
} error_case;

static const error_case error_cases[] = {
    {"errors/e_typo.lua", 5, "shell task \"a\": unknown field \"cmdd\" (did you mean \"cmd\"?)", DAGD_EINVAL},
    {"errors/e_typo_other_op.lua", 3,
     "shell task \"a\": unknown field \"image\" (it is a field of deploy, docker, registry, sensor tasks, not shell)",
     DAGD_EINVAL},
    {"errors/e_dag_typo.lua", 4, "DAG \"dagtypo\": unknown field \"schedul\" (did you mean \"schedule\"?)",
     DAGD_EINVAL},
    {"errors/e_default_args.lua", 6,
     "DAG \"defaults\": default_args: unknown field \"retry_dealy\" (did you mean \"retry_delay\"?)", DAGD_EINVAL},
    {"errors/e_type.lua", 6, "shell task \"a\": field \"retries\" must be an integer, got string \"three\"",
     DAGD_EINVAL},
    {"errors/e_missing.lua", 4, "docker task \"a\": missing required field \"image\"", DAGD_EINVAL},
    {"errors/e_dup_task.lua", 5, "duplicate task id \"a\" in DAG \"dup\" (first declared at line 3)", DAGD_EINVAL},
    {"errors/e_bad_id.lua", 3, "shell task: invalid id \"has space\": must match ^[A-Za-z0-9_.-]{1,250}$",
     DAGD_EINVAL},
    {"errors/e_dot_dag_id.lua", 3, "DAG: invalid id \"..\": must not be made only of dots", DAGD_EINVAL},
    {"errors/e_dot_task_id.lua", 3, "shell task: invalid id \".\": must not be made only of dots", DAGD_EINVAL},
    {"errors/e_unknown_dep.lua", 7, "task \"b\" depends on unknown task \"nope\"", DAGD_ENOENT},
    {"errors/e_cycle.lua", 6, "dependency cycle: a -> b -> c -> a", DAGD_ECYCLE},
    {"errors/e_duration.lua", 4,
     "shell task \"a\": field \"retry_delay\": bad duration \"5 minutes\" (expected e.g. \"30s\", \"15m\", \"2h\", "
     "\"1d\", \"1h30m\")",
     DAGD_EINVAL},
    {"errors/e_schedule.lua", 5,
     "DAG \"sched\": schedule: bad cron \"0 25 * * *\": hour field: 25 is out of range 0-23", DAGD_ERANGE},
    {"errors/e_trigger_rule.lua", 4,
     "empty task \"b\": field \"trigger_rule\" must be one of \"all_success\", \"all_failed\", \"all_done\", "
     "\"all_skipped\", \"one_success\", \"one_failed\", \"one_done\", \"none_failed\", "
     "\"none_failed_min_one_success\", \"none_skipped\", \"always\", got \"all_sucess\" (did you mean "
     "\"all_success\"?)",
     DAGD_EINVAL},
    {"errors/e_trigger_renamed.lua", 4,
     "empty task \"b\": field \"trigger_rule\" must be one of \"all_success\", \"all_failed\", \"all_done\", "
     "\"all_skipped\", \"one_success\", \"one_failed\", \"one_done\", \"none_failed\", "
     "\"none_failed_min_one_success\", \"none_skipped\", \"always\", got \"none_failed_or_skipped\" (did you "
     "mean \"none_failed_min_one_success\"? Airflow renamed none_failed_or_skipped to it)",
     DAGD_EINVAL},
    {"errors/e_syntax.lua", 3, "syntax error: '}' expected near 'cmd'", DAGD_ESYNTAX},
    {"errors/e_shift_statement.lua", 5,
     "syntax error near '>>' (Lua has no >> or << statement: use d:chain(a, b), or b:after(a))", DAGD_ESYNTAX},
    {"errors/e_runtime.lua", 4, "attempt to index a nil value (local 'cfg')", DAGD_EINVAL},
    {"errors/e_error_call.lua", 3, "config is broken", DAGD_EINVAL},
    {"errors/e_chain_nil.lua", 4, "d:chain argument 2 is nil (a misspelled variable?)", DAGD_EINVAL},
    {"errors/e_gate.lua", 5,
     "gate task \"gate\": checks.latency: bad expression \"about 100\": must start with <, <=, >, >=, == or !=",
     DAGD_EINVAL},
    {"errors/e_gate_baseline.lua", 4, "gate task \"gate\": checks compare with baseline, but no \"baseline\" is set",
     DAGD_EINVAL},
    {"errors/e_date.lua", 3, "DAG \"date\": field \"start_date\": date \"2026-02-30\" does not exist", DAGD_EINVAL},
    {"errors/e_colon.lua", 3, "d:shell{...} must be called with a colon on a DAG object: d:shell{ id = ... }",
     DAGD_EINVAL},
    {"errors/e_require.lua", 2, "module \"lfs\" is not available in a DAG file (only \"dagd\" is)", DAGD_EINVAL},
    {"errors/e_steps.lua", 3, "deploy task \"deploy\": steps must be ascending, but 25 follows 50", DAGD_EINVAL},
    {"errors/e_two_dags.lua", 6, "task \"b\" depends on unknown task \"ghost\"", DAGD_ENOENT},
    {"gc_loop.lua", 4, "setmetatable: __gc metamethods are not allowed in a DAG file", DAGD_EINVAL},
    /* Templates that cannot render whatever the run, caught at load time
     * at the field's line. */
    {"errors/e_template_filter.lua", 4,
     "task \"a\": field \"cmd\": template {{ ds | uppercase }}: unknown filter (known: default, json, upper, lower)",
     DAGD_ESYNTAX},
    {"errors/e_template_syntax.lua", 4, "task \"notify\": field \"body\": template: \"{{\" without a closing \"}}\"",
     DAGD_ESYNTAX},
    {"errors/e_template_env.lua", 4,
     "task \"a\": field \"env\": template {{ conf.model | default(fraud) }}: default takes a quoted string: "
     "default(\"x\")",
     DAGD_ESYNTAX},
    /* A template where no shell quoting is safe (src/template/shell.c). */
    {"errors/e_template_shell.lua", 4,
     "task \"a\": field \"cmd\": template {{ ds }}: stands inside a command substitution $(...) of the shell "
     "command, where no value can be quoted safely; pass it through env (env = { X = \"{{ ... }}\" }) and write "
     "\"$X\"",
     DAGD_ESYNTAX},
};

static void test_errors(void **state) {
  for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
    const error_case *c = &error_cases[i];
    dagd_dagbag bag;
    int rc = load(c->file, &bag, NULL);
    print_message("%s\n", c->file);
    print_errors(&bag);
    assert_int_equal(rc, c->code);
    assert_int_equal(bag.n_dags, 0); /* all or nothing per file */
    assert_int_equal(bag.n_errors, 1);
    char path[512];
    snprintf(path, sizeof(path), DATA "%s", c->file);
    assert_string_equal(bag.errors[0].file, path);
    assert_int_equal(bag.errors[0].line, c->line);
    assert_string_equal(bag.errors[0].message, c->message);
    dagd_dagbag_close(&bag);
  }
}

/* Every mistake of a file is reported, each at its line, not only the
 * first; the file still yields no DAG. */
static void test_every_error(void **state) {
  static const struct { int line; const char *message; } want[] = {
      {3, "DAG \"many\": unknown field \"schedul\" (did you mean \"schedule\"?)"},
      {4, "shell task \"a\": unknown field \"cmdd\" (did you mean \"cmd\"?)"},
      {5, "shell task \"b\": field \"retries\" must be an integer, got string \"three\""},
      {8, "got \"none_failed_or_skipped\" (did you mean \"none_failed_min_one_success\"?"},
      {9, "duplicate DAG id \"many\" (first declared at line 3)"},
      {10, "docker task \"x\": missing required field \"image\""},
      {11, "d:chain argument 2 is nil (a misspelled variable?)"},
  };
  dagd_dagbag bag;
  assert_int_equal(load("errors/e_many.lua", &bag, NULL), DAGD_EINVAL);
  print_errors(&bag);
  assert_int_equal(bag.n_dags, 0);
  assert_int_equal(bag.n_errors, (sizeof(want) / sizeof(want[0])));
  for (size_t i = 0; i < (sizeof(want) / sizeof(want[0])); i++) {
    assert_int_equal(bag.errors[i].line, want[i].line);
    if (strstr(bag.errors[i].message, want[i].message) == NULL)
      fail_msg("error %zu: \"%s\" lacks \"%s\"", i, bag.errors[i].message, want[i].message);
  }
  dagd_dagbag_close(&bag);
}

static void test_timezone_error(void **state) {
  /* The zone module words the message; the loader adds where and what. */
  dagd_dagbag bag;
  assert_int_not_equal(load("errors/e_timezone.lua", &bag, NULL), 0);
  assert_int_equal(bag.n_errors, 1);
  assert_int_equal(bag.errors[0].line, 3);
  assert_non_null(strstr(bag.errors[0].message, "DAG \"tzbad\": timezone \"Europe/Berln\": "));
  dagd_dagbag_close(&bag);
}

static const char *param_str(const dagd_dag *d, const char *key) {
  json_t *v = json_object_get(d->params, key);
  if (!json_is_string(v)) fail_msg("param %s is not a string", key);
  return json_string_value(v);
}

static bool param_bool(const dagd_dag *d, const char *key) {
  json_t *v = json_object_get(d->params, key);
  if (!json_is_boolean(v)) fail_msg("param %s is not a boolean", key);
  return json_is_true(v);
}

static void test_sandbox(void **state) {
  dagd_dagbag bag;
  int rc = load("sandbox.lua", &bag, NULL);
  print_errors(&bag);
  assert_int_equal(rc, 0);
  const dagd_dag *d = dagd_dagbag_find(&bag, "sandbox");
  assert_non_null(d);
  static const char *const absent[] = {"os_execute", "os_remove", "os_exit",  "io_popen",     "string_dump",
                                       "string_dump_method", "dofile", "loadfile", "package",
                                       "debug", "collectgarbage", "coroutine"};
  for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
    print_message("%s\n", absent[i]);
    assert_string_equal(param_str(d, absent[i]), "nil");
  }
  assert_string_equal(param_str(d, "string_mt"), "false");
  assert_string_equal(param_str(d, "os_time"), "function");
  assert_string_equal(param_str(d, "os_getenv"), "function");
  assert_false(param_bool(d, "open_write_ok"));
  assert_non_null(strstr(param_str(d, "open_write_err"), "io.open: mode \"w\" is not allowed in a DAG file"));
  assert_false(param_bool(d, "open_append_ok"));
  assert_true(param_bool(d, "open_read"));
  assert_string_equal(param_str(d, "first_line"), "-- Probes the sandbox from inside; test_lua.c reads the answers from params.");
  assert_true(param_bool(d, "write_on_read"));
  assert_string_equal(param_str(d, "file_mt"), "false");
  assert_true(param_bool(d, "lines"));
  assert_true(param_bool(d, "load_binary"));
  assert_non_null(strstr(param_str(d, "load_binary_err"), "binary chunk"));
  assert_true(param_bool(d, "load_binary_b"));
  assert_true(param_bool(d, "load_text"));
  assert_true(param_bool(d, "load_env_sandboxed"));
  assert_false(param_bool(d, "require_os"));
  assert_true(param_bool(d, "require_dagd"));
  assert_string_equal(param_str(d, "read_json"), "churn");
  assert_string_equal(param_str(d, "glob"), "errors/e_cycle.lua");
  dagd_dagbag_close(&bag);
  /* and nothing was written */
  FILE *f = fopen(DATA "sandbox_written.txt", "r");
  assert_null(f);
}

/* Writes text to dir/name. */
static void put(const char *dir, const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* A DAG file reads only regular files below its DAG folder (links
 * resolved), never blocks on a FIFO, and sees no DAGD_* variable. */
static void test_confined_reads(void **state) {
  char dir[] = "/tmp/dagd-test-lua-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char sub[200], path[300];
  snprintf(sub, sizeof(sub), "%s/dags", dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  put(dir, "outside.json", "{\"secret\": 1}");
  put(sub, "data.json", "{\"x\": \"in\"}");
  snprintf(path, sizeof(path), "%s/out.json", sub);
  assert_int_equal(symlink("../outside.json", path), 0);
  snprintf(path, sizeof(path), "%s/fifo", sub);
  assert_int_equal(mkfifo(path, 0600), 0);
  put(sub, "probe.lua",
      "local dagd = require \"dagd\"\n"
      "local function try(f, ...) local ok, r = pcall(f, ...) return ok and 'ok' or tostring(r) end\n"
      "local f, passwd = io.open('/etc/passwd')\n"
      "local g, environ = io.open('/proc/self/environ')\n"
      "local h, link = io.open('out.json')\n"
      "local k, fifo = io.open('fifo')\n"
      "local up, dotdot = io.open('../outside.json')\n"
      "local inside = io.open('data.json'):read('a')\n"
      "local n = 0 for _ in io.lines('data.json') do n = n + 1 end\n"
      "dagd.dag { id = 'probe', params = {\n"
      "  passwd = tostring(passwd), environ = tostring(environ), link = tostring(link), fifo = tostring(fifo),\n"
      "  dotdot = tostring(dotdot), inside = inside, lines = n,\n"
      "  json_out = try(dagd.read_json, 'out.json'), json_in = dagd.read_json('data.json').x,\n"
      "  json_fifo = try(dagd.read_json, 'fifo'), lines_out = try(io.lines, '/etc/passwd'),\n"
      "  glob_out = #dagd.glob('../*.json'), glob_in = #dagd.glob('*.json'),\n"
      "  token = tostring(os.getenv('DAGD_API_TOKEN')), secret = tostring(os.getenv('DAGD_SECRET_S1')),\n"
      "  plain = tostring(os.getenv('DAGD_TEST_PLAIN_VAR_X') or os.getenv('TEST_LUA_PLAIN')) } }\n");
  setenv("DAGD_API_TOKEN", "tok-unit-123456", 1);
  setenv("DAGD_SECRET_S1", "s1-unit-123456", 1);
  setenv("TEST_LUA_PLAIN", "plain", 1);
  dagd_load_opts o = opts();
  dagd_dagbag bag;
  dagd_dagbag_init(&bag);
  const char *paths[] = {sub};
  int rc = dagd_lua_load_paths(paths, 1, &o, &bag);
  print_errors(&bag);
  assert_int_equal(rc, 0);
  const dagd_dag *d = dagd_dagbag_find(&bag, "probe");
  assert_non_null(d);
  for (size_t i = 0; i < 5; i++) {
    static const char *const keys[] = {"passwd", "environ", "link", "dotdot", "json_out"};
    print_message("%s: %s\n", keys[i], param_str(d, keys[i]));
    assert_non_null(strstr(param_str(d, keys[i]), "outside the DAG folder"));
  }
  assert_non_null(strstr(param_str(d, "fifo"), "not a regular file"));
  assert_non_null(strstr(param_str(d, "json_fifo"), "not a regular file"));
  assert_non_null(strstr(param_str(d, "lines_out"), "outside the DAG folder"));
  assert_string_equal(param_str(d, "inside"), "{\"x\": \"in\"}");
  assert_string_equal(param_str(d, "json_in"), "in");
  assert_int_equal(json_integer_value(json_object_get(d->params, "lines")), 1);
  assert_int_equal(json_integer_value(json_object_get(d->params, "glob_out")), 0);
  assert_int_equal(json_integer_value(json_object_get(d->params, "glob_in")), 1); /* data.json; out.json leads out */
  assert_string_equal(param_str(d, "token"), "nil");
  assert_string_equal(param_str(d, "secret"), "nil");
  assert_string_equal(param_str(d, "plain"), "plain");
  dagd_dagbag_close(&bag);
  unsetenv("DAGD_API_TOKEN");
  unsetenv("DAGD_SECRET_S1");
  char cmd[700];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* A FIFO named *.lua, folder links (loops) and links out of the folder
 * are reported by name, without blocking or looping; the rest loads. */
static void test_hostile_folder(void **state) {
  char dir[] = "/tmp/dagd-test-lua-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[600];
  put(dir, "good.lua", "local dagd = require 'dagd'\ndagd.dag { id = 'good' }\n");
  snprintf(path, sizeof(path), "%s/x.lua", dir);
  assert_int_equal(mkfifo(path, 0600), 0);
  snprintf(path, sizeof(path), "%s/a", dir);
  assert_int_equal(symlink(".", path), 0);
  snprintf(path, sizeof(path), "%s/b", dir);
  assert_int_equal(symlink(".", path), 0);
  snprintf(path, sizeof(path), "%s/passwd.lua", dir);
  assert_int_equal(symlink("/etc/passwd", path), 0);
  snprintf(path, sizeof(path), "%s/z_alias.lua", dir);
  assert_int_equal(symlink("good.lua", path), 0); /* inside: loaded (and a duplicate id) */
  dagd_dagbag bag;
  dagd_dagbag_init(&bag);
  const char *paths[] = {dir};
  dagd_load_opts o = opts();
  assert_int_not_equal(dagd_lua_load_paths(paths, 1, &o, &bag), 0);
  print_errors(&bag);
  assert_non_null(dagd_dagbag_find(&bag, "good"));
  static const struct {
    const char *file, *text;
  } want[] = {{"/x.lua", "a FIFO, not a regular file"},
              {"/a", "symbolic link to a folder: not followed"},
              {"/b", "symbolic link to a folder: not followed"},
              {"/passwd.lua", "outside the DAG folder"},
              {"/z_alias.lua", "duplicate DAG id \"good\""}};
  for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
    bool found = false;
    for (size_t i = 0; i < bag.n_errors && !found; i++)
      found = dagd_str_has_suffix(bag.errors[i].file, want[w].file) && strstr(bag.errors[i].message, want[w].text);
    if (!found) fail_msg("no error for %s: %s", want[w].file, want[w].text);
  }
  assert_int_equal(bag.n_errors, 5);
  dagd_dagbag_close(&bag);
  char cmd[700];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* The parse child's answer rebuilds the same DAGs. */
static void test_wire_round_trip(void **state) {
  dagd_dagbag bag;
  assert_int_equal(load("full.lua", &bag, NULL), 0);
  json_t *w = dagd_dagbag_to_wire(&bag);
  dagd_dagbag back;
  dagd_dagbag_init(&back);
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_dagbag_from_wire(w, &back, &err), 0);
  assert_int_equal(back.n_dags, bag.n_dags);
  json_t *w2 = dagd_dagbag_to_wire(&back);
  assert_true(json_equal(w, w2));
  for (size_t i = 0; i < bag.n_dags; i++) {
    assert_int_equal(back.dags[i]->n_tasks, bag.dags[i]->n_tasks);
    for (size_t t = 0; t < bag.dags[i]->n_tasks; t++) {
      assert_int_equal(back.dags[i]->tasks[t]->weight, bag.dags[i]->tasks[t]->weight);
      assert_int_equal(back.dags[i]->tasks[t]->n_upstream, bag.dags[i]->tasks[t]->n_upstream);
    }
  }
  json_decref(w);
  json_decref(w2);
  dagd_dagbag_close(&back);
  dagd_dagbag_close(&bag);
}

static void test_instruction_budget(void **state) {
  dagd_load_opts o = opts();
  o.instruction_budget = 2000000;
  static const struct {
    const char *file;
    int line;
  } cases[] = {{"loop.lua", 3}, {"pcall_loop.lua", 5}};
  for (size_t i = 0; i < 2; i++) {
    dagd_dagbag bag;
    assert_int_equal(load(cases[i].file, &bag, &o), DAGD_ELIMIT);
    print_errors(&bag);
    assert_int_equal(bag.n_dags, 0);
    assert_int_equal(bag.n_errors, 1);
    assert_int_equal(bag.errors[0].line, cases[i].line);
    assert_string_equal(bag.errors[0].message, "instruction budget exceeded (2000000 VM instructions)");
    dagd_dagbag_close(&bag);
  }
}

static void test_time_limit(void **state) {
  dagd_load_opts o = opts();
  o.instruction_budget = UINT64_MAX / 2;
  o.time_limit_ms = 100;
  dagd_dagbag bag;
  assert_int_equal(load("loop.lua", &bag, &o), DAGD_ETIMEDOUT);
  assert_int_equal(bag.n_errors, 1);
  assert_int_equal(bag.errors[0].line, 3);
  assert_string_equal(bag.errors[0].message, "time limit (100ms) exceeded");
  dagd_dagbag_close(&bag);
  o.time_limit_ms = 1000;
  assert_int_equal(load("pcall_loop.lua", &bag, &o), DAGD_ETIMEDOUT);
  assert_int_equal(bag.errors[0].line, 5);
  assert_string_equal(bag.errors[0].message, "time limit (1s) exceeded");
  dagd_dagbag_close(&bag);
}

static void test_memory_limit(void **state) {
  dagd_load_opts o = opts();
  o.memory_limit = 16u << 20;
  static const struct {
    const char *file;
    int line;
  } cases[] = {{"membomb.lua", 5}, {"membomb_pcall.lua", 5}};
  for (size_t i = 0; i < 2; i++) {
    dagd_dagbag bag;
    assert_int_equal(load(cases[i].file, &bag, &o), DAGD_ELIMIT);
    print_errors(&bag);
    assert_int_equal(bag.n_dags, 0);
    assert_int_equal(bag.n_errors, 1);
    assert_int_equal(bag.errors[0].line, cases[i].line);
    assert_string_equal(bag.errors[0].message, "memory limit (16 MiB) exceeded");
    dagd_dagbag_close(&bag);
  }
}

static void test_folder(void **state) {
  /* One bad file hides nothing: the others in the folder still load,
   * subfolders included, hidden files and other extensions skipped. */
  dagd_load_opts o = opts();
  for (int threads = 1; threads <= 3; threads++) {
    o.threads = threads;
    dagd_dagbag bag;
    dagd_dagbag_init(&bag);
    const char *paths[] = {DATA "folder"};
    assert_int_equal(dagd_lua_load_paths(paths, 1, &o, &bag), DAGD_EINVAL);
    print_errors(&bag);
    assert_int_equal(bag.n_files, 3);
    assert_int_equal(bag.n_dags, 2);
    assert_string_equal(bag.dags[0]->id, "folder_a");
    assert_string_equal(bag.dags[1]->id, "folder_c");
    assert_null(dagd_dagbag_find(&bag, "folder_b"));
    assert_int_equal(bag.n_errors, 1);
    assert_string_equal(bag.errors[0].file, DATA "folder/b_bad.lua");
    assert_int_equal(bag.errors[0].line, 3);
    assert_string_equal(bag.errors[0].message, "empty task \"a\": unknown field \"oops\"");
    dagd_dagbag_close(&bag);
  }
}

static void test_duplicate_dag_ids(void **state) {
  /* The later file is in error and contributes nothing, not even its
   * other DAG. */
  dagd_load_opts o = opts();
  dagd_dagbag bag;
  dagd_dagbag_init(&bag);
  const char *paths[] = {DATA "dup"};
  assert_int_equal(dagd_lua_load_paths(paths, 1, &o, &bag), DAGD_EEXIST);
  assert_int_equal(bag.n_dags, 1);
  assert_string_equal(bag.dags[0]->id, "same");
  assert_string_equal(bag.dags[0]->fileloc, DATA "dup/one.lua");
  assert_null(dagd_dagbag_find(&bag, "other"));
  assert_int_equal(bag.n_errors, 1);
  assert_string_equal(bag.errors[0].file, DATA "dup/two.lua");
  assert_int_equal(bag.errors[0].line, 4);
  assert_string_equal(bag.errors[0].message, "duplicate DAG id \"same\" (already defined at " DATA "dup/one.lua:2)");
  dagd_dagbag_close(&bag);
}

static void test_missing_file(void **state) {
  dagd_dagbag bag;
  assert_int_equal(load("does_not_exist.lua", &bag, NULL), DAGD_EIO);
  assert_int_equal(bag.n_errors, 1);
  assert_int_equal(bag.errors[0].line, 0);
  assert_string_equal(bag.errors[0].message, "cannot open: No such file or directory");
  dagd_dagbag_close(&bag);
}

static void test_example_dags(void **state) {
  /* The example DAGs shipped in dags/ load with zero errors. */
  dagd_load_opts o = opts();
  dagd_dagbag bag;
  dagd_dagbag_init(&bag);
  const char *paths[] = {DAGD_SOURCE_DIR "/dags"};
  int rc = dagd_lua_load_paths(paths, 1, &o, &bag);
  print_errors(&bag);
  assert_int_equal(rc, 0);
  assert_int_equal(bag.n_errors, 0);
  const dagd_dag *fraud = dagd_dagbag_find(&bag, "fraud_detection");
  assert_non_null(fraud);
  assert_string_equal(dagd_cron_text(fraud->schedule), "0 2 * * *");
  assert_string_equal(dagd_tz_name(fraud->tz), "Europe/Berlin");
  assert_int_equal(fraud->n_on_event, 1);
  assert_string_equal(fraud->on_event[0], "drift_detected");
  static const char *const order[] = {"collect", "clean", "validate", "train", "evaluate", "gate", "promote",
                                      "deploy"};
  for (size_t i = 0; i < 8; i++) assert_non_null(dagd_dag_find_task(fraud, order[i]));
  for (size_t i = 1; i < 8; i++) assert_true(has_upstream(fraud, order[i], order[i - 1]));
  assert_int_equal(dagd_dag_find_task(fraud, "gate")->op, DAGD_OP_GATE);
  assert_int_equal(dagd_dag_find_task(fraud, "promote")->op, DAGD_OP_REGISTRY);
  assert_int_equal(dagd_dag_find_task(fraud, "deploy")->op, DAGD_OP_DEPLOY);
  assert_non_null(dagd_dagbag_find(&bag, "hello"));
  dagd_dagbag_close(&bag);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_api),
      cmocka_unit_test(test_default_retries),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_every_error),
      cmocka_unit_test(test_timezone_error),
      cmocka_unit_test(test_sandbox),
      cmocka_unit_test(test_instruction_budget),
      cmocka_unit_test(test_time_limit),
      cmocka_unit_test(test_memory_limit),
      cmocka_unit_test(test_folder),
      cmocka_unit_test(test_duplicate_dag_ids),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_example_dags),
      cmocka_unit_test(test_confined_reads),
      cmocka_unit_test(test_hostile_folder),
      cmocka_unit_test(test_wire_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
