/* Unit tests of the scheduling engine over a real store, with the clock
 * passed in: what happens to a run whose DAG file is removed while a try
 * of it runs. The running try finishes and its end is recorded (success
 * or failure, never a retry: the task is not known any more); no new try
 * starts, nothing is decided for the run, which keeps its state for the
 * API to mark or clear; and when the file comes back, the run goes on.
 * And with fewer free slots than scheduled instances, the pass starts the
 * heaviest first (priority weight, then task order), as a slot frees.
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

#include "dagd/engine.h"
#include "dagd/err.h"
#include "dagd/lua.h"
#include "dagd/store.h"

#define NOW 1767225600.0 /* 2026-01-01T00:00:00Z */

/* Writes a DAG file into a new folder (*dir), loads it, and opens a
 * store and an engine over it, with `parallelism` slots. */
static dagd_engine *engine_over(char *dir, const char *lua, int parallelism, dagd_dagbag *bag, dagd_store **st) {
  assert_non_null(mkdtemp(dir));
  char path[128];
  snprintf(path, sizeof(path), "%s/dag.lua", dir);
  FILE *fp = fopen(path, "w");
  fputs(lua, fp);
  fclose(fp);
  dagd_load_opts opts;
  dagd_load_opts_default(&opts);
  dagd_dagbag_init(bag);
  assert_int_equal(dagd_lua_load_file(path, &opts, bag), 0);
  snprintf(path, sizeof(path), "%s/state.db", dir);
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_store_open(path, st, &err), 0);
  dagd_engine_opts eo = {.parallelism = parallelism, .seed = 1};
  dagd_engine *e = dagd_engine_new(*st, &eo);
  assert_int_equal(dagd_engine_set_dags(e, (const dagd_dag *const *)bag->dags, bag->n_dags, &err), 0);
  return e;
}

static void engine_close(dagd_engine *e, dagd_store *st, dagd_dagbag *bag, const char *dir) {
  dagd_engine_free(e);
  dagd_store_close(st);
  dagd_dagbag_close(bag);
  char cmd[96];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_removed_dag_lets_tries_finish(void **state) {
  (void)state;
  char dir[] = "/tmp/dagd-engine-XXXXXX";
  dagd_dagbag bag;
  dagd_store *st;
  dagd_engine *e = engine_over(dir,
                               "local dagd = require 'dagd'\n"
                               "local d = dagd.dag { id = 'etl', default_args = { retries = 3 } }\n"
                               "local a = d:shell { id = 'a', cmd = 'true' }\n"
                               "local b = d:shell { id = 'b', cmd = 'true' }\n"
                               "local c = d:shell { id = 'c', cmd = 'true' }\n"
                               "d:chain({ a, b }, c)\n",
                               1, &bag, &st);
  const dagd_dag *const *dags = (const dagd_dag *const *)bag.dags;
  dagd_err err;
  dagd_err_init(&err);

  /* A manual run; one slot, so one of a, b starts. */
  dagd_store_run run = {.dag_id = "etl", .run_id = "r", .run_type = DAGD_RUN_MANUAL, .logical_date = (int64_t)NOW,
                        .conf = "{}", .state = DAGD_RUN_QUEUED, .queued_at = NOW};
  assert_int_equal(dagd_store_begin(st, &err), 0);
  assert_int_equal(dagd_store_run_create(st, bag.dags[0], &run, &err), 0);
  assert_int_equal(dagd_store_commit(st, &err), 0);
  dagd_engine_actions act;
  dagd_engine_actions_init(&act);
  assert_int_equal(dagd_engine_pass(e, NOW, &act, &err), 0);
  assert_int_equal(act.n_starts, 1);
  char *started = strdup(act.starts[0].task_id);
  int try_number = act.starts[0].try_number;
  dagd_engine_actions_close(&act);

  /* The file goes: the engine has no DAG. */
  assert_int_equal(dagd_engine_set_dags(e, NULL, 0, &err), 0);
  assert_int_equal(dagd_engine_in_flight(e), 1);
  dagd_engine_actions_init(&act);
  assert_int_equal(dagd_engine_pass(e, NOW + 1, &act, &err), 0);
  assert_int_equal(act.n_starts, 0); /* no new try */
  dagd_engine_actions_close(&act);

  /* The running try fails: recorded, with no retry (the task is unknown). */
  dagd_engine_end end = {.run_pk = run.pk, .task_id = started, .try_number = try_number,
                         .result = {.how = DAGD_TRY_EXITED, .code = 1}};
  dagd_engine_ended ended;
  assert_int_equal(dagd_engine_try_end(e, &end, NOW + 2, &ended, &err), 0);
  assert_true(ended.current);
  assert_null(ended.dag);
  assert_int_equal(ended.state, DAGD_TI_FAILED);
  dagd_engine_ended_close(&ended);
  assert_int_equal(dagd_engine_in_flight(e), 0);
  dagd_store_ti ti;
  assert_int_equal(dagd_store_ti_get(st, run.pk, started, &ti, &err), 0);
  assert_int_equal(ti.state, DAGD_TI_FAILED);
  assert_true(ti.end_date > 0);
  dagd_store_ti_clear(&ti);

  /* Passes go on deciding nothing for it: the run stays running, the other
   * tasks untouched. */
  dagd_engine_actions_init(&act);
  assert_int_equal(dagd_engine_pass(e, NOW + 3, &act, &err), 0);
  assert_int_equal(act.n_starts, 0);
  assert_int_equal(act.n_run_ends, 0);
  dagd_engine_actions_close(&act);
  dagd_store_run now_run;
  assert_int_equal(dagd_store_run_get(st, "etl", "r", &now_run, &err), 0);
  assert_int_equal(now_run.state, DAGD_RUN_RUNNING);
  dagd_store_run_clear(&now_run);
  const char *other = strcmp(started, "a") == 0 ? "b" : "a";
  assert_int_equal(dagd_store_ti_get(st, run.pk, other, &ti, &err), 0);
  assert_int_equal(ti.state, DAGD_TI_SCHEDULED);
  dagd_store_ti_clear(&ti);

  /* The file comes back: the run goes on (the other root starts). */
  assert_int_equal(dagd_engine_set_dags(e, dags, bag.n_dags, &err), 0);
  dagd_engine_actions_init(&act);
  assert_int_equal(dagd_engine_pass(e, NOW + 4, &act, &err), 0);
  assert_int_equal(act.n_starts, 1);
  assert_string_equal(act.starts[0].task_id, other);
  dagd_engine_actions_close(&act);

  free(started); /* run's strings are literals: nothing to free */
  engine_close(e, st, &bag, dir);
}

/* Starts one pass at `at` and checks which tasks it started, in order. */
static void expect_starts(dagd_engine *e, double at, const char *const *want, size_t n_want, char started[][8]) {
  dagd_engine_actions act;
  dagd_engine_actions_init(&act);
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_engine_pass(e, at, &act, &err), 0);
  assert_int_equal(act.n_starts, n_want);
  for (size_t i = 0; i < n_want; i++) {
    int found = 0;
    for (size_t j = 0; j < act.n_starts; j++) found |= strcmp(act.starts[j].task_id, want[i]) == 0;
    assert_true(found);
    snprintf(started[i], 8, "%s", want[i]);
  }
  dagd_engine_actions_close(&act);
}

static void end_ok(dagd_engine *e, int64_t run_pk, const char *task, double at) {
  dagd_engine_end end = {.run_pk = run_pk, .task_id = task, .try_number = 1, .result = {.how = DAGD_TRY_EXITED}};
  dagd_engine_ended ended;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_engine_try_end(e, &end, at, &ended, &err), 0);
  dagd_engine_ended_close(&ended);
}

static void test_few_slots_heaviest_first(void **state) {
  (void)state;
  char dir[] = "/tmp/dagd-engine-XXXXXX";
  dagd_dagbag bag;
  dagd_store *st;
  dagd_engine *e = engine_over(dir,
                               "local dagd = require 'dagd'\n"
                               "local d = dagd.dag { id = 'wide' }\n"
                               "d:shell { id = 'a', cmd = 'true', priority_weight = 1 }\n"
                               "d:shell { id = 'b', cmd = 'true', priority_weight = 5 }\n"
                               "d:shell { id = 'c', cmd = 'true', priority_weight = 1 }\n"
                               "d:shell { id = 'd', cmd = 'true', priority_weight = 9 }\n"
                               "d:shell { id = 'e', cmd = 'true', priority_weight = 5 }\n",
                               2, &bag, &st);
  dagd_err err;
  dagd_err_init(&err);
  dagd_store_run run = {.dag_id = "wide", .run_id = "r", .run_type = DAGD_RUN_MANUAL, .logical_date = (int64_t)NOW,
                        .conf = "{}", .state = DAGD_RUN_QUEUED, .queued_at = NOW};
  assert_int_equal(dagd_store_begin(st, &err), 0);
  assert_int_equal(dagd_store_run_create(st, bag.dags[0], &run, &err), 0);
  assert_int_equal(dagd_store_commit(st, &err), 0);
  char started[2][8];
  /* Two slots: d (9), then b (5, before e by task order). */
  expect_starts(e, NOW, (const char *[]){"d", "b"}, 2, started);
  /* d ends: one slot, e (5) before a and c (1). */
  end_ok(e, run.pk, "d", NOW + 1);
  expect_starts(e, NOW + 1, (const char *[]){"e"}, 1, started);
  /* b ends: a, by task order among equals. */
  end_ok(e, run.pk, "b", NOW + 2);
  expect_starts(e, NOW + 2, (const char *[]){"a"}, 1, started);
  /* Nothing frees: nothing starts. */
  expect_starts(e, NOW + 3, NULL, 0, started);
  engine_close(e, st, &bag, dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_removed_dag_lets_tries_finish),
      cmocka_unit_test(test_few_slots_heaviest_first),
  };
  return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
