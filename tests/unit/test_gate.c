/* Unit tests for the gate's check expressions: every comparison, the
 * baseline forms, spacing, and malformed checks refused.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dagd/compare.h"

static void test_parse(void **state) {
  struct { const char *text; dagd_cmp_op op; bool base; double offset; } ok[] = {
      {">= 0.9", DAGD_CMP_GE, false, 0.9},
      {"> 0.5", DAGD_CMP_GT, false, 0.5},
      {"<= 100", DAGD_CMP_LE, false, 100},
      {"< 100", DAGD_CMP_LT, false, 100},
      {"== 1", DAGD_CMP_EQ, false, 1},
      {"!= 0", DAGD_CMP_NE, false, 0},
      {">=0.9", DAGD_CMP_GE, false, 0.9},
      {"  >=   -1e-3 ", DAGD_CMP_GE, false, -0.001},
      {">= baseline", DAGD_CMP_GE, true, 0},
      {">= baseline - 0.01", DAGD_CMP_GE, true, -0.01},
      {"<= baseline + 5", DAGD_CMP_LE, true, 5},
      {"< baseline+2", DAGD_CMP_LT, true, 2},
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    dagd_cmp_expr e;
    if (dagd_cmp_parse(ok[i].text, "check", true, &e, NULL) != 0) fail_msg("refused \"%s\"", ok[i].text);
    assert_int_equal(e.op, ok[i].op);
    assert_int_equal(e.uses_baseline, ok[i].base);
    assert_true(e.value == ok[i].offset);
  }
  const char *bad[] = {"", "0.9", "=> 1", ">= ", ">= abc", ">= baseline * 2", ">= baseline -", ">= 1 2",
                       ">= baselinex", ">= nan", ">= inf", "~ 1", ">= 1;rm"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    dagd_cmp_expr e;
    if (dagd_cmp_parse(bad[i], "check", true, &e, NULL) == 0) fail_msg("accepted \"%s\"", bad[i]);
  }
}

static void test_compare(void **state) {
  assert_true(dagd_cmp_compare(DAGD_CMP_GE, 0.9, 0.9));
  assert_false(dagd_cmp_compare(DAGD_CMP_GT, 0.9, 0.9));
  assert_true(dagd_cmp_compare(DAGD_CMP_LE, 0.9, 0.9));
  assert_false(dagd_cmp_compare(DAGD_CMP_LT, 0.9, 0.9));
  assert_true(dagd_cmp_compare(DAGD_CMP_EQ, 2, 2));
  assert_true(dagd_cmp_compare(DAGD_CMP_NE, 2, 3));
  assert_false(dagd_cmp_compare(DAGD_CMP_GE, 0.85, 0.93 - 0.01));
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_parse), cmocka_unit_test(test_compare)};
  return cmocka_run_group_tests_name("gate", tests, NULL, NULL);
}
