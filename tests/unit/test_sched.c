/* Unit tests for the scheduler core, with a fake clock throughout:
 * every trigger rule against every mix of upstream states (checked against
 * the rules' documented meaning, and for soundness of early decisions),
 * run evaluation and its cascades, retries and their timing, branch skips,
 * which runs to create (catchup on and off, boundaries, max_active_runs,
 * end_date, DST days, interval schedules) and the start order by priority
 * within slots, DAG limits and pools.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dagd/cron.h"
#include "dagd/err.h"
#include "dagd/sched.h"
#include "dagd/time.h"
#include "dagd/tz.h"

/* --- trigger rules --- */

/* Upstream states a mix is made of; NONE stands for "not finished yet". */
static const dagd_ti_state mix_states[] = {DAGD_TI_NONE, DAGD_TI_SUCCESS, DAGD_TI_FAILED, DAGD_TI_UPSTREAM_FAILED,
                                           DAGD_TI_SKIPPED};
#define N_MIX 5

static void counts_of(const dagd_ti_state *s, int n, dagd_upstream_counts *c) {
  *c = (dagd_upstream_counts){.total = n};
  for (int i = 0; i < n; i++) {
    if (s[i] == DAGD_TI_SUCCESS) c->success++;
    if (s[i] == DAGD_TI_FAILED) c->failed++;
    if (s[i] == DAGD_TI_UPSTREAM_FAILED) c->upstream_failed++;
    if (s[i] == DAGD_TI_SKIPPED) c->skipped++;
  }
  c->done = c->success + c->failed + c->upstream_failed + c->skipped;
}

/* The documented meaning of each rule once every upstream has finished
 * (Airflow's "Trigger Rules" documentation), written independently of the
 * early-decision code under test. */
static dagd_trigger_decision final_meaning(dagd_trigger_rule r, const dagd_upstream_counts *c) {
  int fails = c->failed + c->upstream_failed;
  bool run = false;
  switch (r) {
  case DAGD_TR_ALL_SUCCESS: run = c->success == c->total; break;
  case DAGD_TR_ALL_FAILED: run = fails == c->total; break;
  case DAGD_TR_ALL_DONE: run = true; break;
  case DAGD_TR_ALL_SKIPPED: run = c->skipped == c->total; break;
  case DAGD_TR_ONE_SUCCESS: run = c->success >= 1; break;
  case DAGD_TR_ONE_FAILED: run = fails >= 1; break;
  case DAGD_TR_ONE_DONE: run = c->success + c->failed >= 1; break;
  case DAGD_TR_NONE_FAILED: run = fails == 0; break;
  case DAGD_TR_NONE_FAILED_MIN_ONE_SUCCESS: run = fails == 0 && c->success >= 1; break;
  case DAGD_TR_NONE_SKIPPED: run = c->skipped == 0; break;
  case DAGD_TR_ALWAYS: run = true; break;
  default: fail();
  }
  if (run) return DAGD_TRIGGER_RUN;
  /* Rules that require success propagate a failure as upstream_failed;
   * one_success does too unless everything was skipped. */
  if ((r == DAGD_TR_ALL_SUCCESS || r == DAGD_TR_NONE_FAILED || r == DAGD_TR_NONE_FAILED_MIN_ONE_SUCCESS) &&
      fails > 0)
    return DAGD_TRIGGER_UPSTREAM_FAILED;
  if (r == DAGD_TR_ONE_SUCCESS && c->skipped < c->total) return DAGD_TRIGGER_UPSTREAM_FAILED;
  return DAGD_TRIGGER_SKIP;
}

static const char *decision_name(dagd_trigger_decision d) {
  static const char *const names[] = {"wait", "run", "skip", "upstream_failed"};
  return names[d];
}

/* Every rule x every mix of 1 to 3 upstreams: complete mixes decide as
 * documented; an early decision on an incomplete mix must equal the final
 * decision of every way of completing it (soundness); "always" never
 * waits. */
static void test_trigger_rules_exhaustive(void **state) {
  int checked = 0;
  for (int r = 0; r < DAGD_TR__COUNT; r++) {
    for (int n = 1; n <= 3; n++) {
      int combos = 1;
      for (int i = 0; i < n; i++) combos *= N_MIX;
      for (int m = 0; m < combos; m++) {
        dagd_ti_state s[3];
        int unfinished = 0;
        for (int i = 0, v = m; i < n; i++, v /= N_MIX) {
          s[i] = mix_states[v % N_MIX];
          unfinished += s[i] == DAGD_TI_NONE;
        }
        dagd_upstream_counts c;
        counts_of(s, n, &c);
        dagd_trigger_decision got = dagd_sched_trigger((dagd_trigger_rule)r, &c);
        if (unfinished == 0) {
          dagd_trigger_decision want = final_meaning((dagd_trigger_rule)r, &c);
          if (got != want)
            fail_msg("%s with %d ok %d failed %d upstream_failed %d skipped: got %s, want %s",
                     dagd_trigger_rule_name((dagd_trigger_rule)r), c.success, c.failed, c.upstream_failed,
                     c.skipped, decision_name(got), decision_name(want));
        } else if (got != DAGD_TRIGGER_WAIT) {
          /* Every completion of the unfinished upstreams. */
          int fill = 1;
          for (int i = 0; i < unfinished; i++) fill *= N_MIX - 1;
          for (int f = 0; f < fill; f++) {
            dagd_ti_state t[3];
            for (int i = 0, v = f; i < n; i++) {
              t[i] = s[i];
              if (t[i] == DAGD_TI_NONE) {
                t[i] = mix_states[1 + v % (N_MIX - 1)];
                v /= N_MIX - 1;
              }
            }
            dagd_upstream_counts fc;
            counts_of(t, n, &fc);
            /* Whether the task runs never changes once decided; only
             * the flavour of not running (skipped or upstream_failed)
             * may depend on which upstream finished first, as in
             * Airflow. */
            dagd_trigger_decision fin = final_meaning((dagd_trigger_rule)r, &fc);
            if ((fin == DAGD_TRIGGER_RUN) != (got == DAGD_TRIGGER_RUN))
              fail_msg("%s decided %s early, but a completion means %s",
                       dagd_trigger_rule_name((dagd_trigger_rule)r), decision_name(got),
                       decision_name(final_meaning((dagd_trigger_rule)r, &fc)));
          }
        }
        if (r == DAGD_TR_ALWAYS) assert_int_equal(got, DAGD_TRIGGER_RUN);
        checked++;
      }
    }
  }
  assert_int_equal(checked, DAGD_TR__COUNT * (5 + 25 + 125));
}

static void test_trigger_rules_decide_early(void **state) {
  /* 3 upstreams: one finished as given, two still running. */
  struct { dagd_trigger_rule r; dagd_ti_state first; dagd_trigger_decision want; } cases[] = {
      {DAGD_TR_ALL_SUCCESS, DAGD_TI_FAILED, DAGD_TRIGGER_UPSTREAM_FAILED},
      {DAGD_TR_ALL_SUCCESS, DAGD_TI_SKIPPED, DAGD_TRIGGER_SKIP},
      {DAGD_TR_ALL_SUCCESS, DAGD_TI_SUCCESS, DAGD_TRIGGER_WAIT},
      {DAGD_TR_ONE_SUCCESS, DAGD_TI_SUCCESS, DAGD_TRIGGER_RUN},
      {DAGD_TR_ONE_FAILED, DAGD_TI_FAILED, DAGD_TRIGGER_RUN},
      {DAGD_TR_ONE_FAILED, DAGD_TI_SUCCESS, DAGD_TRIGGER_WAIT},
      {DAGD_TR_ONE_DONE, DAGD_TI_SUCCESS, DAGD_TRIGGER_RUN},
      {DAGD_TR_ALL_FAILED, DAGD_TI_SUCCESS, DAGD_TRIGGER_SKIP},
      {DAGD_TR_ALL_SKIPPED, DAGD_TI_FAILED, DAGD_TRIGGER_SKIP},
      {DAGD_TR_NONE_SKIPPED, DAGD_TI_SKIPPED, DAGD_TRIGGER_SKIP},
      {DAGD_TR_NONE_FAILED, DAGD_TI_UPSTREAM_FAILED, DAGD_TRIGGER_UPSTREAM_FAILED},
      {DAGD_TR_ALL_DONE, DAGD_TI_FAILED, DAGD_TRIGGER_WAIT},
      {DAGD_TR_ALWAYS, DAGD_TI_NONE, DAGD_TRIGGER_RUN},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    dagd_ti_state s[3] = {cases[i].first, DAGD_TI_NONE, DAGD_TI_NONE};
    dagd_upstream_counts c;
    counts_of(s, 3, &c);
    assert_int_equal(dagd_sched_trigger(cases[i].r, &c), cases[i].want);
  }
  dagd_upstream_counts none = {0};
  for (int r = 0; r < DAGD_TR__COUNT; r++) assert_int_equal(dagd_sched_trigger((dagd_trigger_rule)r, &none), DAGD_TRIGGER_RUN);
}

/* --- building DAGs for the tests --- */

static dagd_task *add(dagd_dag *dag, const char *id, const char *deps) {
  dagd_task *t = NULL;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_dag_add_task(dag, id, DAGD_OP_SHELL, 1, &t, &err), 0);
  if (deps) {
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", deps);
    for (char *save = NULL, *d = strtok_r(buf, ",", &save); d; d = strtok_r(NULL, ",", &save))
      dagd_task_add_dep(t, d, 1);
  }
  return t;
}

static void finalize(dagd_dag *dag) {
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_dag_finalize(dag, &err) != 0) fail_msg("finalize: %s", err.msg);
}

static size_t idx(const dagd_dag *dag, const char *id) {
  long i = dagd_dag_task_index(dag, id);
  assert_true(i >= 0);
  return (size_t)i;
}

/* --- evaluating a run --- */

static void test_evaluate_diamond_and_failure(void **state) {
  dagd_dag *dag = dagd_dag_new("diamond", "t.lua", 1);
  add(dag, "a", NULL);
  add(dag, "b", "a");
  add(dag, "c", "a");
  add(dag, "d", "b,c");
  dagd_task *cleanup = add(dag, "cleanup", "d");
  cleanup->trigger_rule = DAGD_TR_ALL_DONE;
  finalize(dag);
  dagd_sched_ti tis[5] = {0};
  double wake;
  assert_int_equal(dagd_sched_evaluate(dag, tis, 100, &wake), DAGD_RUN_RUNNING);
  assert_int_equal(tis[idx(dag, "a")].state, DAGD_TI_SCHEDULED);
  assert_true(tis[idx(dag, "a")].changed);
  assert_int_equal(tis[idx(dag, "b")].state, DAGD_TI_NONE);
  tis[idx(dag, "a")].state = DAGD_TI_SUCCESS;
  dagd_sched_evaluate(dag, tis, 100, &wake);
  assert_int_equal(tis[idx(dag, "b")].state, DAGD_TI_SCHEDULED);
  assert_int_equal(tis[idx(dag, "c")].state, DAGD_TI_SCHEDULED);
  /* b fails for good: d is upstream_failed at once, even though c still
   * runs; cleanup waits for d; the run goes on. */
  tis[idx(dag, "b")].state = DAGD_TI_FAILED;
  tis[idx(dag, "c")].state = DAGD_TI_RUNNING;
  assert_int_equal(dagd_sched_evaluate(dag, tis, 100, &wake), DAGD_RUN_RUNNING);
  assert_int_equal(tis[idx(dag, "d")].state, DAGD_TI_UPSTREAM_FAILED);
  assert_int_equal(tis[idx(dag, "cleanup")].state, DAGD_TI_SCHEDULED); /* the cascade in one call */
  tis[idx(dag, "c")].state = DAGD_TI_SUCCESS;
  tis[idx(dag, "cleanup")].state = DAGD_TI_SUCCESS;
  /* The leaf (cleanup) succeeded: the run succeeds, as in Airflow. */
  assert_int_equal(dagd_sched_evaluate(dag, tis, 100, &wake), DAGD_RUN_SUCCESS);
  tis[idx(dag, "cleanup")].state = DAGD_TI_FAILED;
  assert_int_equal(dagd_sched_evaluate(dag, tis, 100, &wake), DAGD_RUN_FAILED);
  dagd_dag_free(dag);
}

static void test_evaluate_leaf_failure_fails_run(void **state) {
  dagd_dag *dag = dagd_dag_new("two", "t.lua", 1);
  add(dag, "a", NULL);
  add(dag, "b", "a");
  add(dag, "c", NULL);
  finalize(dag);
  dagd_sched_ti tis[3] = {{.state = DAGD_TI_FAILED}, {.state = DAGD_TI_NONE}, {.state = DAGD_TI_SUCCESS}};
  double wake;
  assert_int_equal(dagd_sched_evaluate(dag, tis, 0, &wake), DAGD_RUN_FAILED);
  assert_int_equal(tis[1].state, DAGD_TI_UPSTREAM_FAILED);
  /* Removed and skipped tasks do not fail a run. */
  tis[0].state = DAGD_TI_SKIPPED;
  tis[1].state = DAGD_TI_SKIPPED;
  assert_int_equal(dagd_sched_evaluate(dag, tis, 0, &wake), DAGD_RUN_SUCCESS);
  dagd_dag_free(dag);
}

static void test_retries(void **state) {
  dagd_dag *dag = dagd_dag_new("r", "t.lua", 1);
  dagd_task *t = add(dag, "flaky", NULL);
  t->retries = 2;
  t->retry_delay = 60;
  finalize(dag);
  dagd_sched_ti ti = {.state = DAGD_TI_RUNNING, .try_number = 1, .max_tries = 3};
  dagd_sched_try_finished(t, &ti, false, 1000, 0.5);
  assert_int_equal(ti.state, DAGD_TI_UP_FOR_RETRY);
  assert_true(ti.next_try_at == 1060); /* no jitter without exponential backoff */
  double wake;
  assert_int_equal(dagd_sched_evaluate(dag, &ti, 1059, &wake), DAGD_RUN_RUNNING);
  assert_int_equal(ti.state, DAGD_TI_UP_FOR_RETRY);
  assert_true(wake == 1060);
  dagd_sched_evaluate(dag, &ti, 1060, &wake);
  assert_int_equal(ti.state, DAGD_TI_SCHEDULED);
  assert_true(wake == 0);
  ti.try_number = 3;
  ti.state = DAGD_TI_RUNNING;
  dagd_sched_try_finished(t, &ti, false, 2000, 0);
  assert_int_equal(ti.state, DAGD_TI_FAILED);
  ti.state = DAGD_TI_RUNNING;
  dagd_sched_try_finished(t, &ti, true, 2000, 0);
  assert_int_equal(ti.state, DAGD_TI_SUCCESS);

  /* Exponential: 60, 120, 240, ... with up to 25% jitter, capped. */
  t->retry_exponential_backoff = true;
  assert_true(dagd_sched_retry_delay(t, 1, 0) == 60);
  assert_true(dagd_sched_retry_delay(t, 2, 0) == 120);
  assert_true(dagd_sched_retry_delay(t, 3, 0) == 240);
  assert_true(dagd_sched_retry_delay(t, 3, 0.5) == 270);
  assert_true(dagd_sched_retry_delay(t, 3, 0.999) < 300);
  t->max_retry_delay = 200;
  assert_true(dagd_sched_retry_delay(t, 3, 0.5) == 200);
  assert_true(dagd_sched_retry_delay(t, 1000, 0.5) == 200);
  t->max_retry_delay = 0;
  assert_true(dagd_sched_retry_delay(t, 1000, 0) > 1e12); /* no overflow to inf or negative */
  dagd_dag_free(dag);
}

static void test_branch(void **state) {
  dagd_dag *dag = dagd_dag_new("b", "t.lua", 1);
  add(dag, "branch", NULL);
  add(dag, "left", "branch");
  add(dag, "right", "branch");
  add(dag, "after_right", "right");
  dagd_task *join = add(dag, "join", "left,after_right");
  join->trigger_rule = DAGD_TR_NONE_FAILED_MIN_ONE_SUCCESS;
  finalize(dag);
  dagd_sched_ti tis[5] = {0};
  tis[idx(dag, "branch")].state = DAGD_TI_SUCCESS;
  size_t follow = idx(dag, "left");
  dagd_sched_branch(dag, tis, idx(dag, "branch"), &follow, 1);
  assert_int_equal(tis[idx(dag, "right")].state, DAGD_TI_SKIPPED);
  assert_int_equal(tis[idx(dag, "left")].state, DAGD_TI_NONE);
  double wake;
  dagd_sched_evaluate(dag, tis, 0, &wake);
  assert_int_equal(tis[idx(dag, "after_right")].state, DAGD_TI_SKIPPED); /* all_success: skip carries on */
  assert_int_equal(tis[idx(dag, "left")].state, DAGD_TI_SCHEDULED);
  assert_int_equal(tis[idx(dag, "join")].state, DAGD_TI_NONE);
  tis[idx(dag, "left")].state = DAGD_TI_SUCCESS;
  dagd_sched_evaluate(dag, tis, 0, &wake);
  assert_int_equal(tis[idx(dag, "join")].state, DAGD_TI_SCHEDULED);
  dagd_dag_free(dag);
}

/* A branch follows "left"; "right" is skipped; the join after both is
 * decided by its trigger rule, for every rule, once left has ended in each
 * way it can. The expectations are Airflow's documented meaning. */
static void test_branch_join_every_rule(void **state) {
  /* want[rule][left outcome: 0 success, 1 failed] */
  static const dagd_ti_state want[DAGD_TR__COUNT][2] = {
      [DAGD_TR_ALL_SUCCESS] = {DAGD_TI_SKIPPED, DAGD_TI_UPSTREAM_FAILED},
      [DAGD_TR_ALL_FAILED] = {DAGD_TI_SKIPPED, DAGD_TI_SKIPPED},
      [DAGD_TR_ALL_DONE] = {DAGD_TI_SCHEDULED, DAGD_TI_SCHEDULED},
      [DAGD_TR_ALL_SKIPPED] = {DAGD_TI_SKIPPED, DAGD_TI_SKIPPED},
      [DAGD_TR_ONE_SUCCESS] = {DAGD_TI_SCHEDULED, DAGD_TI_UPSTREAM_FAILED},
      [DAGD_TR_ONE_FAILED] = {DAGD_TI_SKIPPED, DAGD_TI_SCHEDULED},
      [DAGD_TR_ONE_DONE] = {DAGD_TI_SCHEDULED, DAGD_TI_SCHEDULED},
      [DAGD_TR_NONE_FAILED] = {DAGD_TI_SCHEDULED, DAGD_TI_UPSTREAM_FAILED},
      [DAGD_TR_NONE_FAILED_MIN_ONE_SUCCESS] = {DAGD_TI_SCHEDULED, DAGD_TI_UPSTREAM_FAILED},
      [DAGD_TR_NONE_SKIPPED] = {DAGD_TI_SKIPPED, DAGD_TI_SKIPPED},
      [DAGD_TR_ALWAYS] = {DAGD_TI_SCHEDULED, DAGD_TI_SCHEDULED},
  };
  for (int r = 0; r < DAGD_TR__COUNT; r++) {
    for (int outcome = 0; outcome < 2; outcome++) {
      dagd_dag *dag = dagd_dag_new("b", "t.lua", 1);
      add(dag, "branch", NULL);
      add(dag, "left", "branch");
      add(dag, "right", "branch");
      dagd_task *join = add(dag, "join", "left,right");
      join->trigger_rule = (dagd_trigger_rule)r;
      finalize(dag);
      dagd_sched_ti tis[4] = {0};
      tis[idx(dag, "branch")].state = DAGD_TI_SUCCESS;
      size_t follow = idx(dag, "left");
      dagd_sched_branch(dag, tis, idx(dag, "branch"), &follow, 1);
      assert_int_equal(tis[idx(dag, "right")].state, DAGD_TI_SKIPPED);
      double wake;
      dagd_sched_evaluate(dag, tis, 0, &wake);
      /* The join can already be decided with right skipped and left running. */
      dagd_ti_state early = tis[idx(dag, "join")].state;
      tis[idx(dag, "left")].state = outcome == 0 ? DAGD_TI_SUCCESS : DAGD_TI_FAILED;
      if (early == DAGD_TI_NONE) dagd_sched_evaluate(dag, tis, 0, &wake);
      dagd_ti_state got = tis[idx(dag, "join")].state;
      /* An early skip stands (the run cannot un-skip); otherwise the documented outcome. */
      if (got != want[r][outcome] && !(early == DAGD_TI_SKIPPED && got == DAGD_TI_SKIPPED))
        fail_msg("join with %s after left %s: %s, want %s", dagd_trigger_rule_name((dagd_trigger_rule)r),
                 outcome ? "failed" : "succeeded", dagd_ti_state_name(got), dagd_ti_state_name(want[r][outcome]));
      dagd_dag_free(dag);
    }
  }
}

/* --- which runs to create --- */

static dagd_dag *scheduled(const char *cron, const char *zone, const char *start, bool catchup) {
  dagd_dag *dag = dagd_dag_new("s", "t.lua", 1);
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_cron_parse(cron, &dag->schedule, &err), 0);
  if (zone) assert_int_equal(dagd_tz_load(zone, &dag->tz, &err), 0);
  if (start) {
    int has;
    int64_t t;
    assert_int_equal(dagd_time_parse(start, &t, &has, &err), 0);
    assert_int_equal(has, 1);
    dag->start_date = t;
    dag->has_start_date = true;
    if (dagd_cron_is_interval(dag->schedule)) dagd_cron_set_anchor(dag->schedule, t);
  }
  dag->catchup = catchup;
  add(dag, "only", NULL);
  finalize(dag);
  return dag;
}

static int64_t at(const char *text) {
  int64_t t;
  int has;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_time_parse(text, &t, &has, &err), 0);
  return t;
}

static void expect_interval(const dagd_interval *iv, const char *start, const char *end) {
  char s[32], e[32];
  dagd_time_format_utc(iv->start, s);
  dagd_time_format_utc(iv->end, e);
  if (strcmp(s, start) != 0 || strcmp(e, end) != 0)
    fail_msg("interval [%s, %s), want [%s, %s)", s, e, start, end);
  assert_int_equal(iv->run_after, iv->end);
}

static void test_plan_catchup(void **state) {
  dagd_dag *dag = scheduled("@daily", NULL, "2026-01-01T00:00:00Z", true);
  dag->max_active_runs = 16;
  dagd_interval out[32];
  size_t n;
  int64_t next;
  bool has_next;
  /* Before the first interval ends: nothing yet, due at Jan 2. */
  dagd_sched_plan_runs(dag, NULL, 0, at("2026-01-01T23:59:59Z"), out, 32, &n, &next, &has_next);
  assert_int_equal(n, 0);
  assert_true(has_next);
  assert_int_equal(next, at("2026-01-02T00:00:00Z"));
  /* Exactly at the end of the first interval: one run. */
  dagd_sched_plan_runs(dag, NULL, 0, at("2026-01-02T00:00:00Z"), out, 32, &n, &next, &has_next);
  assert_int_equal(n, 1);
  expect_interval(&out[0], "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
  assert_int_equal(next, at("2026-01-03T00:00:00Z"));
  /* Five days later: five runs, oldest first. */
  dagd_sched_plan_runs(dag, NULL, 0, at("2026-01-06T12:00:00Z"), out, 32, &n, &next, &has_next);
  assert_int_equal(n, 5);
  expect_interval(&out[0], "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
  expect_interval(&out[4], "2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z");
  /* After the last run of Jan 3: from Jan 4 on. */
  int64_t last = at("2026-01-03T00:00:00Z");
  dagd_sched_plan_runs(dag, &last, 0, at("2026-01-06T12:00:00Z"), out, 32, &n, &next, &has_next);
  assert_int_equal(n, 2);
  expect_interval(&out[0], "2026-01-04T00:00:00Z", "2026-01-05T00:00:00Z");
  /* max_active_runs bounds it; the rest is due already. */
  dag->max_active_runs = 3;
  dagd_sched_plan_runs(dag, NULL, 1, at("2026-01-06T12:00:00Z"), out, 32, &n, &next, &has_next);
  assert_int_equal(n, 2);
  assert_true(has_next);
  assert_int_equal(next, at("2026-01-04T00:00:00Z"));
  dagd_sched_plan_runs(dag, NULL, 3, at("2026-01-06T12:00:00Z"), out, 32, &n, &next, &has_next);
  assert_int_equal(n, 0);
  /* end_date: no interval ending after it. */
  dag->max_active_runs = 16;
  dag->has_end_date = true;
  dag->end_date = at("2026-01-03T00:00:00Z");
  dagd_sched_plan_runs(dag, NULL, 0, at("2026-01-06T12:00:00Z"), out, 32, &n, &next, &has_next);
  assert_int_equal(n, 2);
  assert_false(has_next);
  dagd_dag_free(dag);
}

static void test_plan_start_date_mid_interval(void **state) {
  /* start_date at 10:00 with a daily 02:00 schedule: the first interval
   * starts at the first fire at or after it, Jan 2 02:00. */
  dagd_dag *dag = scheduled("0 2 * * *", NULL, "2026-01-01T10:00:00Z", true);
  dagd_interval out[4];
  size_t n;
  int64_t next;
  bool has_next;
  dagd_sched_plan_runs(dag, NULL, 0, at("2026-01-04T00:00:00Z"), out, 4, &n, &next, &has_next);
  assert_int_equal(n, 1);
  expect_interval(&out[0], "2026-01-02T02:00:00Z", "2026-01-03T02:00:00Z");
  dagd_dag_free(dag);
}

static void test_plan_start_date_after_last_run(void **state) {
  /* Runs exist from before start_date (start_date was moved forward):
   * nothing is planned before it, with or without catchup. */
  for (int catchup = 0; catchup < 2; catchup++) {
    dagd_dag *dag = scheduled("@daily", NULL, "2026-03-01T00:00:00Z", catchup);
    dag->max_active_runs = 16;
    dagd_interval out[8];
    size_t n;
    int64_t next;
    bool has_next;
    int64_t last = at("2026-01-10T00:00:00Z");
    dagd_sched_plan_runs(dag, &last, 0, at("2026-02-20T12:00:00Z"), out, 8, &n, &next, &has_next);
    assert_int_equal(n, 0);
    assert_true(has_next);
    assert_int_equal(next, at("2026-03-02T00:00:00Z"));
    /* Once past start_date, the first interval is the one starting at it. */
    dagd_sched_plan_runs(dag, &last, 0, at("2026-03-02T06:00:00Z"), out, 8, &n, &next, &has_next);
    assert_int_equal(n, 1);
    expect_interval(&out[0], "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z");
    dagd_dag_free(dag);
  }
}

static void test_plan_no_catchup(void **state) {
  dagd_dag *dag = scheduled("0 * * * *", NULL, "2026-01-01T00:00:00Z", false);
  dagd_interval out[8];
  size_t n;
  int64_t next;
  bool has_next;
  /* Days after start_date, no run yet: only the latest complete interval. */
  dagd_sched_plan_runs(dag, NULL, 0, at("2026-03-01T10:30:00Z"), out, 8, &n, &next, &has_next);
  assert_int_equal(n, 1);
  expect_interval(&out[0], "2026-03-01T09:00:00Z", "2026-03-01T10:00:00Z");
  assert_int_equal(next, at("2026-03-01T11:00:00Z"));
  /* The daemon was down for a day after the last run: skip to the latest. */
  int64_t last = at("2026-02-28T09:00:00Z");
  dagd_sched_plan_runs(dag, &last, 0, at("2026-03-01T10:30:00Z"), out, 8, &n, &next, &has_next);
  assert_int_equal(n, 1);
  expect_interval(&out[0], "2026-03-01T09:00:00Z", "2026-03-01T10:00:00Z");
  /* Up to date: nothing until the next fire. */
  last = at("2026-03-01T09:00:00Z");
  dagd_sched_plan_runs(dag, &last, 0, at("2026-03-01T10:30:00Z"), out, 8, &n, &next, &has_next);
  assert_int_equal(n, 0);
  assert_int_equal(next, at("2026-03-01T11:00:00Z"));
  /* Before start_date: nothing, due at the first interval's end. */
  dagd_sched_plan_runs(dag, NULL, 0, at("2025-12-31T12:00:00Z"), out, 8, &n, &next, &has_next);
  assert_int_equal(n, 0);
  assert_int_equal(next, at("2026-01-01T01:00:00Z"));
  dagd_dag_free(dag);
}

static void test_plan_dst_days(void **state) {
  /* 02:30 daily in Berlin across the spring-forward night (2026-03-29):
   * the run of the 28th's interval starts at 03:30 CEST (01:30 UTC), the
   * shifted fire time; no run is lost or doubled. Fall back on 10-25: the
   * repeated 02:30 runs once. */
  dagd_dag *dag = scheduled("30 2 * * *", "Europe/Berlin", "2026-03-27T00:00:00Z", true);
  dagd_interval out[8];
  size_t n;
  int64_t next;
  bool has_next;
  dagd_sched_plan_runs(dag, NULL, 0, at("2026-03-31T00:00:00Z"), out, 8, &n, &next, &has_next);
  assert_int_equal(n, 3);
  expect_interval(&out[0], "2026-03-27T01:30:00Z", "2026-03-28T01:30:00Z");
  expect_interval(&out[1], "2026-03-28T01:30:00Z", "2026-03-29T01:30:00Z");
  expect_interval(&out[2], "2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z");
  int64_t last = at("2026-10-23T00:30:00Z");
  dagd_sched_plan_runs(dag, &last, 0, at("2026-10-27T02:00:00Z"), out, 8, &n, &next, &has_next);
  assert_int_equal(n, 3);
  expect_interval(&out[0], "2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z");
  expect_interval(&out[1], "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z");
  expect_interval(&out[2], "2026-10-26T01:30:00Z", "2026-10-27T01:30:00Z");
  dagd_dag_free(dag);
}

static void test_plan_interval_schedule(void **state) {
  dagd_dag *dag = scheduled("every 2s", NULL, "2026-01-01T00:00:01Z", true);
  dagd_interval out[8];
  size_t n;
  int64_t next;
  bool has_next;
  dagd_sched_plan_runs(dag, NULL, 0, at("2026-01-01T00:00:06Z"), out, 8, &n, &next, &has_next);
  assert_int_equal(n, 2);
  expect_interval(&out[0], "2026-01-01T00:00:01Z", "2026-01-01T00:00:03Z");
  expect_interval(&out[1], "2026-01-01T00:00:03Z", "2026-01-01T00:00:05Z");
  assert_int_equal(next, at("2026-01-01T00:00:07Z"));
  /* No schedule: nothing, ever. */
  dagd_dag *manual = dagd_dag_new("m", "t.lua", 1);
  add(manual, "x", NULL);
  finalize(manual);
  dagd_sched_plan_runs(manual, NULL, 0, at("2026-01-01T00:00:06Z"), out, 8, &n, &next, &has_next);
  assert_int_equal(n, 0);
  assert_false(has_next);
  dagd_dag_free(manual);
  dagd_dag_free(dag);
}

/* next_run_after: when the next scheduled run can be created. */
static void expect_next(const dagd_dag *dag, const char *last, bool paused, const char *now, const char *want) {
  int64_t l = last ? at(last) : 0;
  dagd_interval iv = {0};
  bool has = dagd_sched_next_run_after(dag, last ? &l : NULL, paused, at(now), &iv);
  char got[32] = "none";
  if (has) {
    dagd_time_format_utc(iv.run_after, got);
    assert_int_equal(iv.run_after, iv.end);
  }
  if (strcmp(got, want ? want : "none") != 0)
    fail_msg("next_run_after(last %s, paused %d, now %s) = %s, want %s", last ? last : "none", paused, now, got,
             want ? want : "none");
}

static void test_next_run_after(void **state) {
  /* Catchup: the first interval's end, then the one after the last run,
   * however long ago (a past time: due, not yet created). */
  dagd_dag *dag = scheduled("@daily", NULL, "2026-01-01T00:00:00Z", true);
  expect_next(dag, NULL, false, "2025-12-20T00:00:00Z", "2026-01-02T00:00:00Z");
  expect_next(dag, NULL, false, "2026-01-01T12:00:00Z", "2026-01-02T00:00:00Z");
  expect_next(dag, NULL, false, "2026-01-06T12:00:00Z", "2026-01-02T00:00:00Z");
  expect_next(dag, "2026-01-05T00:00:00Z", false, "2026-01-06T12:00:00Z", "2026-01-07T00:00:00Z");
  expect_next(dag, "2026-01-02T00:00:00Z", false, "2026-01-06T12:00:00Z", "2026-01-04T00:00:00Z");
  /* Paused: no run will be created. */
  expect_next(dag, "2026-01-05T00:00:00Z", true, "2026-01-06T12:00:00Z", NULL);
  /* end_date: nothing after the last interval that fits. */
  dag->has_end_date = true;
  dag->end_date = at("2026-01-07T00:00:00Z");
  expect_next(dag, "2026-01-05T00:00:00Z", false, "2026-01-06T12:00:00Z", "2026-01-07T00:00:00Z");
  expect_next(dag, "2026-01-06T00:00:00Z", false, "2026-01-07T12:00:00Z", NULL);
  dagd_dag_free(dag);

  /* Without catchup: the latest complete interval when runs were missed
   * (due now), else the next fire. */
  dag = scheduled("0 * * * *", NULL, "2026-01-01T00:00:00Z", false);
  expect_next(dag, NULL, false, "2026-03-01T10:30:00Z", "2026-03-01T10:00:00Z");
  expect_next(dag, "2026-02-28T09:00:00Z", false, "2026-03-01T10:30:00Z", "2026-03-01T10:00:00Z");
  expect_next(dag, "2026-03-01T09:00:00Z", false, "2026-03-01T10:30:00Z", "2026-03-01T11:00:00Z");
  expect_next(dag, NULL, false, "2025-12-31T12:00:00Z", "2026-01-01T01:00:00Z");
  dagd_dag_free(dag);

  /* start_date moved past the last run: the interval starting at it. */
  dag = scheduled("@daily", NULL, "2026-03-01T00:00:00Z", false);
  expect_next(dag, "2026-01-10T00:00:00Z", false, "2026-02-20T12:00:00Z", "2026-03-02T00:00:00Z");
  dagd_dag_free(dag);

  /* The zone's wall clock: 02:30 Berlin, across spring forward. */
  dag = scheduled("30 2 * * *", "Europe/Berlin", "2026-03-27T00:00:00Z", true);
  expect_next(dag, "2026-03-28T01:30:00Z", false, "2026-03-29T12:00:00Z", "2026-03-30T00:30:00Z");
  dagd_dag_free(dag);

  /* No schedule (event or manual only): never. */
  dagd_dag *manual = dagd_dag_new("m", "t.lua", 1);
  add(manual, "x", NULL);
  finalize(manual);
  expect_next(manual, NULL, false, "2026-01-01T00:00:00Z", NULL);
  dagd_dag_free(manual);
}

/* next_run_after is the run the plan creates first, or the time its
 * next_due says, for every combination tried. */
static void test_next_run_after_agrees_with_plan(void **state) {
  static const char *const crons[] = {"@daily", "0 2 * * *", "*/15 * * * *", "0 0 * * 1", "every 90m"};
  static const char *const nows[] = {"2025-12-31T23:00:00Z", "2026-01-01T00:00:00Z", "2026-01-03T02:00:00Z",
                                     "2026-01-20T07:44:00Z", "2026-03-29T01:30:00Z"};
  static const char *const lasts[] = {NULL, "2026-01-01T00:00:00Z", "2026-01-02T02:00:00Z", "2026-01-20T06:00:00Z"};
  for (size_t c = 0; c < sizeof(crons) / sizeof(crons[0]); c++)
    for (int catchup = 0; catchup < 2; catchup++) {
      dagd_dag *dag = scheduled(crons[c], "Europe/Berlin", "2026-01-01T00:00:00Z", catchup);
      for (size_t n = 0; n < sizeof(nows) / sizeof(nows[0]); n++)
        for (size_t l = 0; l < sizeof(lasts) / sizeof(lasts[0]); l++) {
          int64_t last = lasts[l] ? at(lasts[l]) : 0, now = at(nows[n]), next = 0;
          if (lasts[l] && last > now) continue;
          dagd_interval out[1], iv;
          size_t k;
          bool has_next;
          dagd_sched_plan_runs(dag, lasts[l] ? &last : NULL, 0, now, out, 1, &k, &next, &has_next);
          bool has = dagd_sched_next_run_after(dag, lasts[l] ? &last : NULL, false, now, &iv);
          if (k == 1) {
            assert_true(has);
            assert_int_equal(iv.start, out[0].start);
            assert_int_equal(iv.run_after, out[0].run_after);
            assert_true(iv.run_after <= now);
          } else {
            assert_int_equal(has, has_next);
            if (has) {
              assert_int_equal(iv.run_after, next);
              assert_true(iv.run_after > now);
            }
          }
        }
      dagd_dag_free(dag);
    }
}

static void test_run_id(void **state) {
  char id[64];
  dagd_sched_run_id(DAGD_RUN_SCHEDULED, at("2026-01-01T02:00:00Z"), id);
  assert_string_equal(id, "scheduled__2026-01-01T02:00:00+00:00");
  dagd_sched_run_id(DAGD_RUN_BACKFILL, 0, id);
  assert_string_equal(id, "backfill__1970-01-01T00:00:00+00:00");
}

/* --- picking what to start --- */

static void test_pick(void **state) {
  dagd_sched_candidate c[] = {
      {.priority = 1, .logical_date = 10, .dag_slot = 0, .pool_slot = 0, .tag = 0},
      {.priority = 5, .logical_date = 20, .dag_slot = 0, .pool_slot = 1, .tag = 1},
      {.priority = 5, .logical_date = 10, .dag_slot = 1, .pool_slot = 1, .tag = 2},
      {.priority = 3, .logical_date = 10, .dag_slot = 1, .pool_slot = 0, .tag = 3},
      {.priority = 9, .logical_date = 10, .dag_slot = 2, .pool_slot = 0, .tag = 4},
  };
  int dag_free[] = {5, 5, 0}; /* dag 2 is at max_active_tasks */
  int pool_free[] = {5, 1};   /* pool 1 (gpu) has one free slot */
  dagd_sched_limits lim = {.free_slots = 2, .dag_free = dag_free, .pool_free = pool_free};
  size_t n = dagd_sched_pick(c, 5, &lim);
  assert_int_equal(n, 2);
  /* Looked at in order: tag 4 (p9, blocked by its DAG), tag 2 (p5, older),
   * tag 1 (p5, gpu now full), tag 3 (p3); then the slots are full and
   * tag 0 is left. */
  size_t order[] = {4, 2, 1, 3, 0};
  bool picked[] = {false, true, false, true, false};
  for (size_t i = 0; i < 5; i++) {
    assert_int_equal(c[i].tag, order[i]);
    assert_int_equal(c[i].picked, picked[i]);
  }
  assert_int_equal(lim.free_slots, 0);
  assert_int_equal(pool_free[1], 0);
  assert_int_equal(dag_free[1], 3);
}

/* The heap's picks are those of sorting every candidate and taking them
 * greedily, on random sets with random limits. */
static int ref_order(const void *pa, const void *pb) {
  const dagd_sched_candidate *a = pa, *b = pb;
  if (a->priority != b->priority) return a->priority > b->priority ? -1 : 1;
  if (a->logical_date != b->logical_date) return a->logical_date < b->logical_date ? -1 : 1;
  return a->tag < b->tag ? -1 : a->tag > b->tag;
}

static void test_pick_matches_sort(void **state) {
  (void)state;
  unsigned seed = 7;
  for (int round = 0; round < 200; round++) {
    size_t n = 1 + (size_t)(rand_r(&seed) % 300);
    dagd_sched_candidate *c = calloc(n, sizeof(*c)), *ref = calloc(n, sizeof(*ref));
    for (size_t i = 0; i < n; i++)
      c[i] = (dagd_sched_candidate){.priority = rand_r(&seed) % 4, .logical_date = rand_r(&seed) % 5,
                                    .dag_slot = (size_t)(rand_r(&seed) % 3), .pool_slot = (size_t)(rand_r(&seed) % 2),
                                    .tag = i};
    memcpy(ref, c, n * sizeof(*c));
    int dag_free[3], pool_free[2], rdag[3], rpool[2];
    for (int i = 0; i < 3; i++) rdag[i] = dag_free[i] = rand_r(&seed) % 8;
    for (int i = 0; i < 2; i++) rpool[i] = pool_free[i] = rand_r(&seed) % 8;
    int slots = rand_r(&seed) % 12;
    dagd_sched_limits lim = {.free_slots = slots, .dag_free = dag_free, .pool_free = pool_free};
    size_t got = dagd_sched_pick(c, n, &lim);
    qsort(ref, n, sizeof(*ref), ref_order);
    size_t want = 0, k = 0;
    for (size_t i = 0; i < n && slots > 0; i++) {
      if (rdag[ref[i].dag_slot] <= 0 || rpool[ref[i].pool_slot] <= 0) continue;
      slots--, rdag[ref[i].dag_slot]--, rpool[ref[i].pool_slot]--, want++;
      while (!c[k].picked) k++; /* the picked come in priority order */
      assert_int_equal(c[k].tag, ref[i].tag);
      k++;
    }
    assert_int_equal(got, want);
    assert_int_equal(lim.free_slots, slots);
    size_t n_picked = 0;
    for (size_t i = 0; i < n; i++) n_picked += c[i].picked;
    assert_int_equal(n_picked, want);
    free(c);
    free(ref);
  }
}

/* The view: a waiting task is looked at only once an upstream changed,
 * and the decisions are those of the full evaluation. */
static void test_evaluate_view(void **state) {
  (void)state;
  dagd_dag *dag = dagd_dag_new("chain", "t.lua", 1);
  add(dag, "a", NULL);
  add(dag, "b", "a");
  add(dag, "c", "b");
  add(dag, "d", "c");
  finalize(dag);
  dagd_sched_ti tis[4] = {{.state = DAGD_TI_NONE, .max_tries = 1}, {.state = DAGD_TI_NONE, .max_tries = 1},
                          {.state = DAGD_TI_NONE, .max_tries = 1}, {.state = DAGD_TI_NONE, .max_tries = 1}};
  dagd_sched_view v;
  dagd_sched_view_init(&v, 4);
  double wake;
  dagd_sched_view_sync(dag, tis, &v);
  assert_int_equal(dagd_sched_evaluate_view(dag, tis, &v, 0, &wake), DAGD_RUN_RUNNING);
  assert_int_equal(tis[0].state, DAGD_TI_SCHEDULED);
  assert_int_equal(tis[1].state, DAGD_TI_NONE);
  dagd_sched_view_sync(dag, tis, &v);
  /* b was looked at (and waits); c and d were looked at once. */
  assert_false(v.due[2]);
  assert_false(v.due[3]);
  /* The first task succeeds elsewhere: only its downstream is due. */
  tis[0].state = DAGD_TI_SUCCESS;
  for (int i = 0; i < 4; i++) tis[i].changed = false;
  dagd_sched_view_sync(dag, tis, &v);
  assert_true(v.due[1]);
  assert_false(v.due[2]);
  assert_false(v.due[3]);
  assert_int_equal(dagd_sched_evaluate_view(dag, tis, &v, 0, &wake), DAGD_RUN_RUNNING);
  assert_int_equal(tis[1].state, DAGD_TI_SCHEDULED);
  assert_int_equal(v.done_upto, 1);
  /* A failure cascades in one call, as in the full evaluation. */
  tis[1].state = DAGD_TI_FAILED;
  dagd_sched_view_sync(dag, tis, &v);
  assert_int_equal(dagd_sched_evaluate_view(dag, tis, &v, 0, &wake), DAGD_RUN_FAILED);
  assert_int_equal(tis[2].state, DAGD_TI_UPSTREAM_FAILED);
  assert_int_equal(tis[3].state, DAGD_TI_UPSTREAM_FAILED);
  assert_int_equal(v.done_upto, 4);
  dagd_sched_view_close(&v);
  dagd_dag_free(dag);
}

/* --- the end of a try --- */

static void test_outcome(void **state) {
  dagd_try_result ok = {DAGD_TRY_EXITED, 0}, fail1 = {DAGD_TRY_EXITED, 1}, skip = {DAGD_TRY_EXITED, 98},
                  poke = {DAGD_TRY_EXITED, 99}, sig = {DAGD_TRY_SIGNALED, 9}, gone = {DAGD_TRY_VANISHED, 0};
  assert_int_equal(dagd_sched_outcome(&ok, false), DAGD_OUTCOME_SUCCESS);
  assert_int_equal(dagd_sched_outcome(&fail1, false), DAGD_OUTCOME_FAILURE);
  assert_int_equal(dagd_sched_outcome(&skip, false), DAGD_OUTCOME_SKIP);
  assert_int_equal(dagd_sched_outcome(&poke, false), DAGD_OUTCOME_RESCHEDULE);
  assert_int_equal(dagd_sched_outcome(&sig, false), DAGD_OUTCOME_FAILURE);
  assert_int_equal(dagd_sched_outcome(&gone, false), DAGD_OUTCOME_FAILURE);
  /* Stopped at its timeout: a failure, whatever it exited with. */
  assert_int_equal(dagd_sched_outcome(&ok, true), DAGD_OUTCOME_FAILURE);
  assert_int_equal(dagd_sched_outcome(&skip, true), DAGD_OUTCOME_FAILURE);
}

static void test_try_ended(void **state) {
  dagd_dag *dag = dagd_dag_new("e", "t.lua", 1);
  dagd_task *t = add(dag, "sensor", NULL);
  t->retries = 1;
  t->retry_delay = 10;
  finalize(dag);
  /* A poke that found nothing gives its try back and waits its interval. */
  dagd_sched_ti ti = {.state = DAGD_TI_RUNNING, .try_number = 1, .max_tries = 2};
  dagd_sched_try_ended(t, &ti, DAGD_OUTCOME_RESCHEDULE, 1000, 0);
  assert_int_equal(ti.state, DAGD_TI_UP_FOR_RESCHEDULE);
  assert_int_equal(ti.try_number, 0);
  assert_true(ti.next_try_at == 1060);
  assert_true(ti.changed);
  json_object_set_new(t->config, "interval", json_integer(5));
  ti = (dagd_sched_ti){.state = DAGD_TI_RUNNING, .try_number = 1, .max_tries = 2};
  dagd_sched_try_ended(t, &ti, DAGD_OUTCOME_RESCHEDULE, 1000, 0);
  assert_true(ti.next_try_at == 1005);
  /* Skip; failure with a try left; failure of the last try. */
  ti = (dagd_sched_ti){.state = DAGD_TI_RUNNING, .try_number = 1, .max_tries = 2};
  dagd_sched_try_ended(t, &ti, DAGD_OUTCOME_SKIP, 1000, 0);
  assert_int_equal(ti.state, DAGD_TI_SKIPPED);
  ti = (dagd_sched_ti){.state = DAGD_TI_RUNNING, .try_number = 1, .max_tries = 2};
  dagd_sched_try_ended(t, &ti, DAGD_OUTCOME_FAILURE, 1000, 0);
  assert_int_equal(ti.state, DAGD_TI_UP_FOR_RETRY);
  assert_true(ti.next_try_at == 1010);
  ti.state = DAGD_TI_RUNNING;
  ti.try_number = 2;
  dagd_sched_try_ended(t, &ti, DAGD_OUTCOME_FAILURE, 2000, 0);
  assert_int_equal(ti.state, DAGD_TI_FAILED);
  /* A task that left the DAG: no retry, no poke. */
  ti = (dagd_sched_ti){.state = DAGD_TI_RUNNING, .try_number = 1, .max_tries = 3};
  dagd_sched_try_ended(NULL, &ti, DAGD_OUTCOME_RESCHEDULE, 1000, 0);
  assert_int_equal(ti.state, DAGD_TI_FAILED);
  dagd_dag_free(dag);
}

static void test_branch_follow(void **state) {
  dagd_dag *dag = dagd_dag_new("f", "t.lua", 1);
  dagd_task *b = add(dag, "branch", NULL);
  add(dag, "left", "branch");
  add(dag, "right", "branch");
  finalize(dag);
  size_t follow[2], n;
  dagd_sched_branch_follow(dag, b, "[\"right\"]", follow, &n);
  assert_int_equal(n, 1);
  assert_int_equal(follow[0], idx(dag, "right"));
  dagd_sched_branch_follow(dag, b, "left", follow, &n); /* one bare id */
  assert_int_equal(n, 1);
  assert_int_equal(follow[0], idx(dag, "left"));
  dagd_sched_branch_follow(dag, b, "[\"left\", \"right\", \"nope\"]", follow, &n);
  assert_int_equal(n, 2);
  dagd_sched_branch_follow(dag, b, NULL, follow, &n); /* no output: nothing followed */
  assert_int_equal(n, 0);
  json_object_set_new(b->config, "short_circuit", json_true());
  dagd_sched_branch_follow(dag, b, "false", follow, &n);
  assert_int_equal(n, 0);
  dagd_sched_branch_follow(dag, b, "0", follow, &n);
  assert_int_equal(n, 0);
  dagd_sched_branch_follow(dag, b, "true", follow, &n);
  assert_int_equal(n, 2);
  dagd_sched_branch_follow(dag, b, NULL, follow, &n); /* no condition: go on */
  assert_int_equal(n, 2);
  dagd_dag_free(dag);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_trigger_rules_exhaustive),
      cmocka_unit_test(test_trigger_rules_decide_early),
      cmocka_unit_test(test_evaluate_diamond_and_failure),
      cmocka_unit_test(test_evaluate_leaf_failure_fails_run),
      cmocka_unit_test(test_retries),
      cmocka_unit_test(test_branch),
      cmocka_unit_test(test_branch_join_every_rule),
      cmocka_unit_test(test_plan_catchup),
      cmocka_unit_test(test_plan_start_date_mid_interval),
      cmocka_unit_test(test_plan_start_date_after_last_run),
      cmocka_unit_test(test_plan_no_catchup),
      cmocka_unit_test(test_plan_dst_days),
      cmocka_unit_test(test_plan_interval_schedule),
      cmocka_unit_test(test_next_run_after),
      cmocka_unit_test(test_next_run_after_agrees_with_plan),
      cmocka_unit_test(test_run_id),
      cmocka_unit_test(test_pick),
      cmocka_unit_test(test_pick_matches_sort),
      cmocka_unit_test(test_evaluate_view),
      cmocka_unit_test(test_outcome),
      cmocka_unit_test(test_try_ended),
      cmocka_unit_test(test_branch_follow),
  };
  return cmocka_run_group_tests_name("sched", tests, NULL, NULL);
}
