/* The gate's check expressions, shared with their unit test.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_OPERATORS_GATE_H
#define DAGD_OPERATORS_GATE_H

#include <stdbool.h>

typedef enum { CMP_GE, CMP_GT, CMP_LE, CMP_LT, CMP_EQ, CMP_NE } cmp_op;

typedef struct gate_expr {
  cmp_op op;
  bool uses_baseline;
  double offset;       /* the number, or what is added to the baseline */
} gate_expr;

/* Parses ">= 0.9", "< 100", ">= baseline - 0.01", "== baseline".
 * Returns 0 or -1. */
int dagd_gate_parse(const char *text, gate_expr *out);
/* value OP threshold. */
bool dagd_gate_compare(cmp_op op, double value, double threshold);

#endif
