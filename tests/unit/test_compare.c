/* Unit tests for the comparison grammar the gate and the deploy operator
 * share (src/operators/compare.c): every operator, spacing, the baseline
 * only where the caller allows it, and bad input refused with a message
 * that says why and leaves the result untouched.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dagd/compare.h"

static void test_operators(void **state) {
  static const struct { const char *text; dagd_cmp_op op; double value; } ok[] = {
      {"< 1", DAGD_CMP_LT, 1},    {"<= 2", DAGD_CMP_LE, 2},  {"> 3", DAGD_CMP_GT, 3},
      {">= 4", DAGD_CMP_GE, 4},   {"== 5", DAGD_CMP_EQ, 5},  {"!= 6", DAGD_CMP_NE, 6},
      {"<7", DAGD_CMP_LT, 7},     {"<=-8", DAGD_CMP_LE, -8}, {"\t>  +9.5\n", DAGD_CMP_GT, 9.5},
      {"  >=1e-3  ", DAGD_CMP_GE, 0.001}, {"==0", DAGD_CMP_EQ, 0}, {"!=\t-0.25", DAGD_CMP_NE, -0.25},
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    for (int baseline = 0; baseline < 2; baseline++) {
      dagd_cmp_expr e;
      dagd_err err;
      dagd_err_init(&err);
      if (dagd_cmp_parse(ok[i].text, "threshold", baseline, &e, &err) != 0)
        fail_msg("refused \"%s\": %s", ok[i].text, err.msg);
      assert_int_equal(e.op, ok[i].op);
      assert_false(e.uses_baseline);
      assert_true(e.value == ok[i].value);
    }
  }
}

static void test_baseline(void **state) {
  dagd_cmp_expr e;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_cmp_parse("  >=  baseline  -  0.5 ", "check", true, &e, &err), 0);
  assert_int_equal(e.op, DAGD_CMP_GE);
  assert_true(e.uses_baseline);
  assert_true(e.value == -0.5);
  assert_int_equal(dagd_cmp_parse("!=baseline", "check", true, &e, &err), 0);
  assert_true(e.uses_baseline && e.value == 0);
  /* Where the baseline is not allowed, it is not a number. */
  assert_int_equal(dagd_cmp_parse(">= baseline", "threshold", false, &e, &err), DAGD_ESYNTAX);
  assert_string_equal(err.msg, "threshold \">= baseline\": expected a number after the comparison");
}

static void test_bad(void **state) {
  static const struct { const char *text; bool baseline; const char *msg; } bad[] = {
      {"", false, "threshold \"\": must start with <, <=, >, >=, == or !="},
      {"0.05", false, "threshold \"0.05\": must start with <, <=, >, >=, == or !="},
      {"=< 1", false, "threshold \"=< 1\": must start with <, <=, >, >=, == or !="},
      {"=> 1", true, "threshold \"=> 1\": must start with <, <=, >, >=, == or !="},
      {"~ 1", true, "threshold \"~ 1\": must start with <, <=, >, >=, == or !="},
      {">= ", false, "threshold \">= \": expected a number after the comparison"},
      {"> inf", false, "threshold \"> inf\": expected a number after the comparison"},
      {"> nan", true, "threshold \"> nan\": expected a number after the comparison (or baseline)"},
      {">= abc", true, "threshold \">= abc\": expected a number after the comparison (or baseline)"},
      {"< 0.05 ms", false, "threshold \"< 0.05 ms\": unexpected \"ms\""},
      {">= 1 2", false, "threshold \">= 1 2\": unexpected \"2\""},
      {">= 1;rm", true, "threshold \">= 1;rm\": unexpected \";rm\""},
      {">= baseline * 2", true, "threshold \">= baseline * 2\": unexpected \"* 2\""},
      {">= baselinex", true, "threshold \">= baselinex\": unexpected \"x\""},
      {">= baseline -", true, "threshold \">= baseline -\": expected a number after \"baseline -\""},
      {">= baseline + x", true, "threshold \">= baseline + x\": expected a number after \"baseline +\""},
      {">= baseline - 1 ms", true, "threshold \">= baseline - 1 ms\": unexpected \"ms\""},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    dagd_cmp_expr e = {.op = DAGD_CMP_NE, .uses_baseline = true, .value = 42};
    dagd_err err;
    dagd_err_init(&err);
    if (dagd_cmp_parse(bad[i].text, "threshold", bad[i].baseline, &e, &err) != DAGD_ESYNTAX)
      fail_msg("accepted \"%s\"", bad[i].text);
    assert_string_equal(err.msg, bad[i].msg);
    /* Bad input changes nothing. */
    assert_int_equal(e.op, DAGD_CMP_NE);
    assert_true(e.uses_baseline && e.value == 42);
  }
  dagd_cmp_expr e;
  assert_int_equal(dagd_cmp_parse(NULL, "check", true, &e, NULL), DAGD_ESYNTAX);
}

static void test_compare(void **state) {
  static const dagd_cmp_op all[] = {DAGD_CMP_GE, DAGD_CMP_GT, DAGD_CMP_LE, DAGD_CMP_LT, DAGD_CMP_EQ, DAGD_CMP_NE};
  /* below, equal, above the threshold 1, for each operator in `all` */
  static const bool want[][3] = {{false, true, true}, {false, false, true}, {true, true, false},
                                 {true, false, false}, {false, true, false}, {true, false, true}};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    assert_int_equal(dagd_cmp_compare(all[i], 0.5, 1), want[i][0]);
    assert_int_equal(dagd_cmp_compare(all[i], 1, 1), want[i][1]);
    assert_int_equal(dagd_cmp_compare(all[i], 1.5, 1), want[i][2]);
    assert_false(dagd_cmp_compare(all[i], NAN, 1)); /* no number never passes, even != */
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_operators), cmocka_unit_test(test_baseline),
                                     cmocka_unit_test(test_bad), cmocka_unit_test(test_compare)};
  return cmocka_run_group_tests_name("compare", tests, NULL, NULL);
}
