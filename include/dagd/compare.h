/* The one comparison grammar of the gate's checks and the deploy
 * operator's analysis thresholds: an operator (<, <=, >, >=, ==, !=), then
 * a finite number or, where the caller allows it, the baseline with an
 * optional offset. Pure: the operators evaluate with it in the try, and
 * the DAG file loader checks the gate's expressions with it at load time
 * (the `comparison` function of the Lua loader's core).
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_COMPARE_H
#define DAGD_COMPARE_H

#include <stdbool.h>

#include "dagd/err.h"

typedef enum { DAGD_CMP_GE, DAGD_CMP_GT, DAGD_CMP_LE, DAGD_CMP_LT, DAGD_CMP_EQ, DAGD_CMP_NE } dagd_cmp_op;

typedef struct dagd_cmp_expr {
  dagd_cmp_op op;
  bool uses_baseline;
  double value;        /* the number, or what is added to the baseline */
} dagd_cmp_expr;

/* Parses "< 0.05", ">=99.5", and with baseline set ">= baseline",
 * ">= baseline - 0.01": spaces are allowed around every part. what names
 * the text in messages ("threshold", "check"). 0, or DAGD_ESYNTAX with
 * why in err, *out untouched. */
int dagd_cmp_parse(const char *text, const char *what, bool baseline, dagd_cmp_expr *out, dagd_err *err);

/* value OP threshold; a NaN value never passes. */
bool dagd_cmp_compare(dagd_cmp_op op, double value, double threshold);

#endif
