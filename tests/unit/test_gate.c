/* Unit tests for the gate's check expressions: every comparison, the
 * baseline forms, spacing, and malformed checks refused.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/operators/gate.h"

static void test_parse(void **state) {
  struct { const char *text; cmp_op op; bool base; double offset; } ok[] = {
      {">= 0.9", CMP_GE, false, 0.9},
      {"> 0.5", CMP_GT, false, 0.5},
      {"<= 100", CMP_LE, false, 100},
      {"< 100", CMP_LT, false, 100},
      {"== 1", CMP_EQ, false, 1},
      {"!= 0", CMP_NE, false, 0},
      {">=0.9", CMP_GE, false, 0.9},
      {"  >=   -1e-3 ", CMP_GE, false, -0.001},
      {">= baseline", CMP_GE, true, 0},
      {">= baseline - 0.01", CMP_GE, true, -0.01},
      {"<= baseline + 5", CMP_LE, true, 5},
      {"< baseline+2", CMP_LT, true, 2},
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    gate_expr e;
    if (dagd_gate_parse(ok[i].text, &e) != 0) fail_msg("refused \"%s\"", ok[i].text);
    assert_int_equal(e.op, ok[i].op);
    assert_int_equal(e.uses_baseline, ok[i].base);
    assert_true(e.offset == ok[i].offset);
  }
  const char *bad[] = {"", "0.9", "=> 1", ">= ", ">= abc", ">= baseline * 2", ">= baseline -", ">= 1 2",
                       ">= baselinex", ">= nan", ">= inf", "~ 1", ">= 1;rm"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    gate_expr e;
    if (dagd_gate_parse(bad[i], &e) == 0) fail_msg("accepted \"%s\"", bad[i]);
  }
}

static void test_compare(void **state) {
  assert_true(dagd_gate_compare(CMP_GE, 0.9, 0.9));
  assert_false(dagd_gate_compare(CMP_GT, 0.9, 0.9));
  assert_true(dagd_gate_compare(CMP_LE, 0.9, 0.9));
  assert_false(dagd_gate_compare(CMP_LT, 0.9, 0.9));
  assert_true(dagd_gate_compare(CMP_EQ, 2, 2));
  assert_true(dagd_gate_compare(CMP_NE, 2, 3));
  assert_false(dagd_gate_compare(CMP_GE, 0.85, 0.93 - 0.01));
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_parse), cmocka_unit_test(test_compare)};
  return cmocka_run_group_tests_name("gate", tests, NULL, NULL);
}
