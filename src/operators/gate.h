/* The gate's check expressions, shared with their unit test.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_OPERATORS_GATE_H
#define DAGD_OPERATORS_GATE_H

#include <stdbool.h>

typedef enum { DAGD_CMP_GE, DAGD_CMP_GT, DAGD_CMP_LE, DAGD_CMP_LT, DAGD_CMP_EQ, DAGD_CMP_NE } dagd_cmp_op;

typedef struct dagd_gate_expr {
  dagd_cmp_op op;
  bool uses_baseline;
  double offset;       /* the number, or what is added to the baseline */
} dagd_gate_expr;

/* Parses ">= 0.9", "< 100", ">= baseline - 0.01", "== baseline".
 * Returns 0 or -1. */
int dagd_gate_parse(const char *text, dagd_gate_expr *out);
/* value OP threshold. */
bool dagd_gate_compare(dagd_cmp_op op, double value, double threshold);

#endif
