/* Unit tests of the DAG model: building, finalize (topological order,
 * unknown dependencies, cycle paths, priority weights), names, the
 * data intervals of scheduled DAGs and those inferred for manual runs.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dagd/cron.h"
#include "dagd/err.h"
#include "dagd/model.h"
#include "dagd/time.h"
#include "dagd/tz.h"
#include "dagd/util.h"

static dagd_task *add(dagd_dag *dag, const char *id, int line) {
  dagd_task *t = NULL;
  assert_int_equal(dagd_dag_add_task(dag, id, DAGD_OP_SHELL, line, &t, NULL), 0);
  assert_non_null(t);
  return t;
}

static size_t topo_pos(const dagd_dag *dag, const char *id) {
  long idx = dagd_dag_task_index(dag, id);
  assert_true(idx >= 0);
  for (size_t i = 0; i < dag->n_tasks; i++)
    if (dag->topo[i] == (size_t)idx) return i;
  fail_msg("%s not in topo order", id);
  return 0;
}

static void test_defaults(void **state) {
  dagd_dag *dag = dagd_dag_new("d", "dags/d.lua", 3);
  assert_string_equal(dag->id, "d");
  assert_int_equal(dag->max_active_runs, 16);
  assert_int_equal(dag->max_active_tasks, 16);
  assert_false(dag->catchup);
  assert_non_null(dag->tz);
  assert_string_equal(dagd_tz_name(dag->tz), "UTC");
  dagd_task *t = add(dag, "a", 4);
  assert_int_equal(t->priority_weight, 1);
  assert_int_equal(t->retries, 0);
  assert_int_equal(t->retry_delay, 300);
  assert_int_equal(t->trigger_rule, DAGD_TR_ALL_SUCCESS);
  assert_string_equal(t->pool, "default");
  assert_true(json_is_object(t->config));
  assert_ptr_equal(dagd_dag_find_task(dag, "a"), t);
  assert_null(dagd_dag_find_task(dag, "b"));
  assert_int_equal(dagd_dag_task_index(dag, "a"), 0);
  assert_int_equal(dagd_dag_task_index(dag, "zz"), -1);
  dagd_dag_free(dag);
  dagd_dag_free(NULL);
}

static void test_add_task_errors(void **state) {
  dagd_dag *dag = dagd_dag_new("d", "dags/d.lua", 1);
  dagd_err err;
  add(dag, "a", 2);
  dagd_err_init(&err);
  assert_int_equal(dagd_dag_add_task(dag, "a", DAGD_OP_SHELL, 7, NULL, &err), DAGD_EEXIST);
  assert_string_equal(err.msg, "dags/d.lua:7: duplicate task id \"a\" in DAG \"d\" (first declared at line 2)");
  dagd_err_init(&err);
  assert_int_equal(dagd_dag_add_task(dag, "a b", DAGD_OP_SHELL, 8, NULL, &err), DAGD_EINVAL);
  assert_string_equal(err.msg, "dags/d.lua:8: invalid task id \"a b\": must match ^[A-Za-z0-9_.-]{1,250}$");
  dagd_err_init(&err);
  assert_int_equal(dagd_dag_add_task(dag, "..", DAGD_OP_SHELL, 8, NULL, &err), DAGD_EINVAL);
  assert_string_equal(err.msg, "dags/d.lua:8: invalid task id \"..\": must not be made only of dots");
  assert_int_equal(dagd_dag_add_task(dag, ".", DAGD_OP_SHELL, 8, NULL, NULL), DAGD_EINVAL);
  dagd_err_init(&err);
  assert_int_equal(dagd_dag_add_task(dag, "", DAGD_OP_SHELL, 9, NULL, &err), DAGD_EINVAL);
  char long_id[252];
  memset(long_id, 'x', 251);
  long_id[251] = '\0';
  assert_int_equal(dagd_dag_add_task(dag, long_id, DAGD_OP_SHELL, 9, NULL, NULL), DAGD_EINVAL);
  long_id[250] = '\0';
  assert_int_equal(dagd_dag_add_task(dag, long_id, DAGD_OP_SHELL, 9, NULL, NULL), 0);
  dagd_dag_free(dag);
}

/* A DAG id made only of dots is refused however the DAG was built. */
static void test_dag_id_dots(void **state) {
  const char *ids[] = {".", ".."};
  for (size_t i = 0; i < 2; i++) {
    dagd_dag *dag = dagd_dag_new(ids[i], "dags/d.lua", 3);
    add(dag, "a", 4);
    dagd_err err;
    dagd_err_init(&err);
    assert_int_equal(dagd_dag_finalize(dag, &err), DAGD_EINVAL);
    char want[128];
    snprintf(want, sizeof(want), "dags/d.lua:3: invalid DAG id \"%s\": must not be made only of dots", ids[i]);
    assert_string_equal(err.msg, want);
    assert_false(dag->finalized);
    dagd_dag_free(dag);
  }
}

static void test_topo_order(void **state) {
  dagd_dag *dag = dagd_dag_new("d", "d.lua", 1);
  /* declared out of dependency order on purpose */
  dagd_task *join = add(dag, "join", 2);
  dagd_task *left = add(dag, "left", 3);
  dagd_task *right = add(dag, "right", 4);
  add(dag, "extract", 5);
  dagd_task_add_dep(join, "left", 6);
  dagd_task_add_dep(join, "right", 6);
  dagd_task_add_dep(join, "left", 7); /* duplicate edge: ignored */
  dagd_task_add_dep(left, "extract", 8);
  dagd_task_add_dep(right, "extract", 8);
  assert_int_equal(join->n_deps, 2);
  assert_int_equal(dagd_dag_finalize(dag, NULL), 0);
  assert_true(dag->finalized);
  assert_int_equal(topo_pos(dag, "extract"), 0);
  assert_true(topo_pos(dag, "left") < topo_pos(dag, "join"));
  assert_true(topo_pos(dag, "right") < topo_pos(dag, "join"));
  assert_int_equal(topo_pos(dag, "join"), 3);
  assert_int_equal(join->n_upstream, 2);
  const dagd_task *ex = dagd_dag_find_task(dag, "extract");
  assert_int_equal(ex->n_downstream, 2);
  /* finalize twice is a no-op */
  assert_int_equal(dagd_dag_finalize(dag, NULL), 0);
  /* and a finalized DAG takes no more tasks */
  assert_int_equal(dagd_dag_add_task(dag, "late", DAGD_OP_EMPTY, 9, NULL, NULL), DAGD_EINVAL);
  dagd_dag_free(dag);
}

static void test_unknown_dep(void **state) {
  dagd_dag *dag = dagd_dag_new("d", "dags/d.lua", 1);
  dagd_task *a = add(dag, "a", 2);
  add(dag, "b", 3);
  dagd_task_add_dep(a, "b", 4);
  dagd_task_add_dep(a, "missing", 12);
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_dag_finalize(dag, &err), DAGD_ENOENT);
  assert_string_equal(err.msg, "dags/d.lua:12: task \"a\" depends on unknown task \"missing\"");
  assert_false(dag->finalized);
  dagd_dag_free(dag);
}

static void test_cycle_path(void **state) {
  dagd_dag *dag = dagd_dag_new("d", "dags/c.lua", 1);
  dagd_task *a = add(dag, "a", 3);
  dagd_task *b = add(dag, "b", 4);
  dagd_task *c = add(dag, "c", 5);
  dagd_task *tail = add(dag, "tail", 6);
  add(dag, "free", 7);
  dagd_task_add_dep(b, "a", 4);
  dagd_task_add_dep(c, "b", 5);
  dagd_task_add_dep(tail, "c", 6); /* downstream of the cycle, not in it */
  dagd_task_add_dep(a, "c", 9);
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_dag_finalize(dag, &err), DAGD_ECYCLE);
  assert_string_equal(err.msg, "dags/c.lua:9: dependency cycle: a -> b -> c -> a");
  dagd_dag_free(dag);

  /* a task after itself */
  dag = dagd_dag_new("d", "dags/c.lua", 1);
  a = add(dag, "a", 2);
  dagd_task_add_dep(a, "a", 5);
  dagd_err_init(&err);
  assert_int_equal(dagd_dag_finalize(dag, &err), DAGD_ECYCLE);
  assert_string_equal(err.msg, "dags/c.lua:5: dependency cycle: a -> a");
  dagd_dag_free(dag);

  /* a two-cycle reached only through another task; printed from its
   * earliest-declared task */
  dag = dagd_dag_new("d", "x.lua", 1);
  add(dag, "start", 2);
  dagd_task *y = add(dag, "y", 3);
  dagd_task *x = add(dag, "x", 4);
  dagd_task_add_dep(x, "start", 4);
  dagd_task_add_dep(x, "y", 4);
  dagd_task_add_dep(y, "x", 8);
  dagd_err_init(&err);
  assert_int_equal(dagd_dag_finalize(dag, &err), DAGD_ECYCLE);
  assert_string_equal(err.msg, "x.lua:8: dependency cycle: y -> x -> y");
  dagd_dag_free(dag);
}

static void test_weights(void **state) {
  /* a -> b -> d, a -> c -> d, d -> e: a's downstream is {b, c, d, e},
   * each counted once although d is reachable twice. */
  dagd_dag *dag = dagd_dag_new("w", NULL, 1);
  dagd_task *a = add(dag, "a", 1), *b = add(dag, "b", 2), *c = add(dag, "c", 3), *d = add(dag, "d", 4),
            *e = add(dag, "e", 5);
  a->priority_weight = 1;
  b->priority_weight = 2;
  c->priority_weight = 3;
  d->priority_weight = 10;
  e->priority_weight = 100;
  dagd_task_add_dep(b, "a", 1);
  dagd_task_add_dep(c, "a", 1);
  dagd_task_add_dep(d, "b", 1);
  dagd_task_add_dep(d, "c", 1);
  dagd_task_add_dep(e, "d", 1);
  assert_int_equal(dagd_dag_finalize(dag, NULL), 0);
  assert_int_equal(e->weight, 100);
  assert_int_equal(d->weight, 110);
  assert_int_equal(c->weight, 113);
  assert_int_equal(b->weight, 112);
  assert_int_equal(a->weight, 116);
  dagd_dag_free(dag);
}

static void test_big_chain(void **state) {
  /* Many tasks: the id index grows and lookups stay right. */
  dagd_dag *dag = dagd_dag_new("big", NULL, 1);
  char id[32], prev[32];
  for (int i = 0; i < 2000; i++) {
    snprintf(id, sizeof(id), "t%04d", i);
    dagd_task *t = add(dag, id, i + 1);
    if (i > 0) dagd_task_add_dep(t, prev, i + 1);
    memcpy(prev, id, sizeof(id));
  }
  assert_int_equal(dagd_dag_finalize(dag, NULL), 0);
  assert_int_equal(dag->tasks[0]->weight, 2000);
  assert_int_equal(dag->tasks[1999]->weight, 1);
  assert_int_equal(dagd_dag_task_index(dag, "t1234"), 1234);
  for (size_t i = 0; i < dag->n_tasks; i++) assert_int_equal(dag->topo[i], i);
  dagd_dag_free(dag);
}

static void test_names(void **state) {
  static const char *const rules[] = {"all_success", "all_failed", "all_done", "all_skipped",
                                      "one_success", "one_failed", "one_done", "none_failed",
                                      "none_failed_min_one_success", "none_skipped", "always"};
  assert_int_equal(DAGD_ARRAY_LEN(rules), DAGD_TR__COUNT);
  for (int i = 0; i < DAGD_TR__COUNT; i++) {
    dagd_trigger_rule tr;
    assert_string_equal(dagd_trigger_rule_name((dagd_trigger_rule)i), rules[i]);
    assert_int_equal(dagd_trigger_rule_parse(rules[i], &tr), 0);
    assert_int_equal(tr, i);
  }
  dagd_trigger_rule tr;
  assert_int_equal(dagd_trigger_rule_parse("all_sucess", &tr), DAGD_ENOENT);
  assert_int_equal(dagd_trigger_rule_parse(NULL, &tr), DAGD_ENOENT);
  assert_string_equal(dagd_trigger_rule_name(DAGD_TR__COUNT), "unknown");
  for (int i = 0; i < DAGD_OP__COUNT; i++) {
    dagd_op op;
    assert_int_equal(dagd_op_parse(dagd_op_name((dagd_op)i), &op), 0);
    assert_int_equal(op, i);
  }
  dagd_op op;
  assert_int_equal(dagd_op_parse("docker", &op), 0);
  assert_int_equal(op, DAGD_OP_DOCKER);
  assert_int_equal(dagd_op_parse("bash", &op), DAGD_ENOENT);
}

static int64_t at(const char *s) {
  int64_t t;
  int has_offset;
  assert_int_equal(dagd_time_parse(s, &t, &has_offset, NULL), 0);
  return t;
}

static void test_next_interval_daily(void **state) {
  dagd_dag *dag = dagd_dag_new("daily", NULL, 1);
  assert_int_equal(dagd_cron_parse("0 2 * * *", &dag->schedule, NULL), 0);
  dag->start_date = at("2026-01-01T00:00:00Z");
  dag->has_start_date = true;
  assert_int_equal(dagd_dag_finalize(dag, NULL), 0);
  dagd_interval iv;
  /* Long before start_date: the first interval starts at the first fire
   * time at or after start_date. */
  assert_int_equal(dagd_dag_next_interval(dag, at("2025-06-01T00:00:00Z"), &iv), 0);
  assert_int_equal(iv.start, at("2026-01-01T02:00:00Z"));
  assert_int_equal(iv.end, at("2026-01-02T02:00:00Z"));
  assert_int_equal(iv.run_after, iv.end);
  /* Mid-stream: [prev fire, fire) where fire is the next one after `after`. */
  assert_int_equal(dagd_dag_next_interval(dag, at("2026-03-10T12:00:00Z"), &iv), 0);
  assert_int_equal(iv.start, at("2026-03-10T02:00:00Z"));
  assert_int_equal(iv.end, at("2026-03-11T02:00:00Z"));
  /* Exactly at a fire time: that run is due now, not after; the next is. */
  assert_int_equal(dagd_dag_next_interval(dag, at("2026-03-11T02:00:00Z"), &iv), 0);
  assert_int_equal(iv.end, at("2026-03-12T02:00:00Z"));
  /* end_date: intervals must end at or before it. */
  dag->end_date = at("2026-03-12T02:00:00Z");
  dag->has_end_date = true;
  assert_int_equal(dagd_dag_next_interval(dag, at("2026-03-11T02:00:00Z"), &iv), 0);
  assert_int_equal(dagd_dag_next_interval(dag, at("2026-03-12T02:00:00Z"), &iv), DAGD_ENOENT);
  dagd_dag_free(dag);
}

static void test_next_interval_zone(void **state) {
  dagd_dag *dag = dagd_dag_new("berlin", NULL, 1);
  dagd_tz *tz = NULL;
  if (dagd_tz_load("Europe/Berlin", &tz, NULL) != 0) {
    dagd_dag_free(dag);
    skip();
  }
  dag->tz = tz;
  assert_int_equal(dagd_cron_parse("0 2 * * *", &dag->schedule, NULL), 0);
  assert_int_equal(dagd_dag_finalize(dag, NULL), 0);
  dagd_interval iv;
  /* 02:00 Berlin is 01:00Z in winter, 00:00Z in summer. */
  assert_int_equal(dagd_dag_next_interval(dag, at("2026-01-10T12:00:00Z"), &iv), 0);
  assert_int_equal(iv.start, at("2026-01-10T01:00:00Z"));
  assert_int_equal(iv.end, at("2026-01-11T01:00:00Z"));
  assert_int_equal(dagd_dag_next_interval(dag, at("2026-07-10T12:00:00Z"), &iv), 0);
  assert_int_equal(iv.end, at("2026-07-11T00:00:00Z"));
  dagd_dag_free(dag);
}

static void test_next_interval_every(void **state) {
  /* Interval schedules count from start_date. */
  dagd_dag *dag = dagd_dag_new("every", NULL, 1);
  assert_int_equal(dagd_cron_parse("every 15m", &dag->schedule, NULL), 0);
  dag->start_date = at("2026-01-01T00:07:00Z");
  dag->has_start_date = true;
  assert_int_equal(dagd_dag_finalize(dag, NULL), 0);
  dagd_interval iv;
  assert_int_equal(dagd_dag_next_interval(dag, at("2025-01-01T00:00:00Z"), &iv), 0);
  assert_int_equal(iv.start, at("2026-01-01T00:07:00Z"));
  assert_int_equal(iv.end, at("2026-01-01T00:22:00Z"));
  assert_int_equal(dagd_dag_next_interval(dag, at("2026-01-01T01:00:00Z"), &iv), 0);
  assert_int_equal(iv.start, at("2026-01-01T00:52:00Z"));
  assert_int_equal(iv.end, at("2026-01-01T01:07:00Z"));
  dagd_dag_free(dag);

  /* No schedule: no intervals. */
  dag = dagd_dag_new("manual", NULL, 1);
  assert_int_equal(dagd_dag_finalize(dag, NULL), 0);
  assert_int_equal(dagd_dag_next_interval(dag, 0, &iv), DAGD_ENOENT);
  dagd_dag_free(dag);
}

/* A manual run's interval, as Airflow's timetables infer it
 * (infer_manual_data_interval): the latest complete cron interval ending
 * at or before the logical date; [date - delta, date] for an interval
 * schedule; empty without a schedule. */
static void test_manual_interval(void **state) {
  dagd_dag *dag = dagd_dag_new("nightly_etl", NULL, 1);
  assert_int_equal(dagd_cron_parse("@daily", &dag->schedule, NULL), 0);
  dag->start_date = at("2026-01-01T00:00:00Z");
  dag->has_start_date = true;
  assert_int_equal(dagd_dag_finalize(dag, NULL), 0);
  dagd_interval iv;
  /* The case: 07:30 on Oct 1 covers Sep 30 (the day that ended). */
  dagd_dag_manual_interval(dag, at("2026-10-01T07:30:00Z"), &iv);
  assert_int_equal(iv.start, at("2026-09-30T00:00:00Z"));
  assert_int_equal(iv.end, at("2026-10-01T00:00:00Z"));
  assert_int_equal(iv.run_after, at("2026-10-01T07:30:00Z"));
  /* On a fire time exactly: the interval ends there. */
  dagd_dag_manual_interval(dag, at("2026-10-01T00:00:00Z"), &iv);
  assert_int_equal(iv.start, at("2026-09-30T00:00:00Z"));
  assert_int_equal(iv.end, at("2026-10-01T00:00:00Z"));
  /* One second before it: the interval before. */
  dagd_dag_manual_interval(dag, at("2026-09-30T23:59:59Z"), &iv);
  assert_int_equal(iv.start, at("2026-09-29T00:00:00Z"));
  assert_int_equal(iv.end, at("2026-09-30T00:00:00Z"));
  /* start_date does not bound it (Airflow does not either). */
  dagd_dag_manual_interval(dag, at("2025-06-01T12:00:00Z"), &iv);
  assert_int_equal(iv.start, at("2025-05-31T00:00:00Z"));
  assert_int_equal(iv.end, at("2025-06-01T00:00:00Z"));
  dagd_dag_free(dag);

  /* Hourly at :15 in a zone with DST: intervals follow real time. */
  dag = dagd_dag_new("hourly", NULL, 1);
  dagd_tz *tz = NULL;
  if (dagd_tz_load("Europe/Berlin", &tz, NULL) == 0) {
    dag->tz = tz;
    assert_int_equal(dagd_cron_parse("15 * * * *", &dag->schedule, NULL), 0);
    assert_int_equal(dagd_dag_finalize(dag, NULL), 0);
    /* 2026-03-29: 02:00 Berlin does not exist; 01:15Z is 03:15 CEST. */
    dagd_dag_manual_interval(dag, at("2026-03-29T01:20:00Z"), &iv);
    assert_int_equal(iv.end, at("2026-03-29T01:15:00Z"));
    assert_int_equal(iv.start, at("2026-03-29T00:15:00Z"));
    /* A daily 02:00 job in Berlin: the fire before 2026-07-10T12:00Z is
     * 00:00Z (02:00 CEST), the one before that the day before. */
    dagd_cron_free(dag->schedule);
    dag->schedule = NULL;
    assert_int_equal(dagd_cron_parse("0 2 * * *", &dag->schedule, NULL), 0);
    dagd_dag_manual_interval(dag, at("2026-07-10T12:00:00Z"), &iv);
    assert_int_equal(iv.start, at("2026-07-09T00:00:00Z"));
    assert_int_equal(iv.end, at("2026-07-10T00:00:00Z"));
  }
  dagd_dag_free(dag);

  /* Interval schedules: the delta that ends at the date, whatever the anchor. */
  dag = dagd_dag_new("every", NULL, 1);
  assert_int_equal(dagd_cron_parse("every 15m", &dag->schedule, NULL), 0);
  dag->start_date = at("2026-01-01T00:07:00Z");
  dag->has_start_date = true;
  assert_int_equal(dagd_dag_finalize(dag, NULL), 0);
  dagd_dag_manual_interval(dag, at("2026-01-01T01:00:00Z"), &iv);
  assert_int_equal(iv.start, at("2026-01-01T00:45:00Z"));
  assert_int_equal(iv.end, at("2026-01-01T01:00:00Z"));
  dagd_dag_free(dag);

  /* No schedule (manual or event only): the empty interval, as Airflow's
   * NullTimetable gives. */
  dag = dagd_dag_new("manual", NULL, 1);
  assert_int_equal(dagd_dag_finalize(dag, NULL), 0);
  dagd_dag_manual_interval(dag, at("2026-10-01T07:30:00Z"), &iv);
  assert_int_equal(iv.start, at("2026-10-01T07:30:00Z"));
  assert_int_equal(iv.end, at("2026-10-01T07:30:00Z"));
  dagd_dag_free(dag);

  /* A schedule with no fire time before the date: empty too. */
  dag = dagd_dag_new("never", NULL, 1);
  assert_int_equal(dagd_cron_parse("0 0 30 2 *", &dag->schedule, NULL), 0);
  assert_int_equal(dagd_dag_finalize(dag, NULL), 0);
  dagd_dag_manual_interval(dag, at("2026-10-01T07:30:00Z"), &iv);
  assert_int_equal(iv.start, iv.end);
  dagd_dag_free(dag);
}

static void test_end_before_start(void **state) {
  dagd_dag *dag = dagd_dag_new("d", "d.lua", 4);
  dag->start_date = 100;
  dag->has_start_date = true;
  dag->end_date = 50;
  dag->has_end_date = true;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_dag_finalize(dag, &err), DAGD_EINVAL);
  assert_string_equal(err.msg, "d.lua:4: DAG \"d\": end_date is before start_date");
  dagd_dag_free(dag);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_add_task_errors), cmocka_unit_test(test_dag_id_dots),
      cmocka_unit_test(test_topo_order),
      cmocka_unit_test(test_unknown_dep),
      cmocka_unit_test(test_cycle_path),
      cmocka_unit_test(test_weights),
      cmocka_unit_test(test_big_chain),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_next_interval_daily),
      cmocka_unit_test(test_next_interval_zone),
      cmocka_unit_test(test_next_interval_every),
      cmocka_unit_test(test_manual_interval),
      cmocka_unit_test(test_end_before_start),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
