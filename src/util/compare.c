/* The comparison grammar shared by the gate and the deploy operator (see
 * compare.h): pure, no I/O.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/util.h"
#include "dagd/compare.h"

static const char *skip_space(const char *p) {
  while (isspace((unsigned char)*p)) p++;
  return p;
}

/* A finite number with nothing but spaces after it. */
static int parse_number(const char *text, const char *what, const char *p, const char *after, double *v,
                        dagd_err *err) {
  char *end;
  double x = strtod(p, &end);
  if (end == p || !isfinite(x))
    return dagd_err_set(err, DAGD_ESYNTAX, "%s \"%s\": expected a number after %s", what, text, after);
  p = skip_space(end);
  if (*p) return dagd_err_set(err, DAGD_ESYNTAX, "%s \"%s\": unexpected \"%s\"", what, text, p);
  *v = x;
  return 0;
}

int dagd_cmp_parse(const char *text, const char *what, bool baseline, dagd_cmp_expr *out, dagd_err *err) {
  /* The two-character operators first: "<=" is not "<" then "=". */
  static const struct { const char *s; dagd_cmp_op op; } ops[] = {
      {"<=", DAGD_CMP_LE}, {">=", DAGD_CMP_GE}, {"==", DAGD_CMP_EQ},
      {"!=", DAGD_CMP_NE}, {"<", DAGD_CMP_LT},  {">", DAGD_CMP_GT}};
  if (text == NULL) text = "";
  const char *p = skip_space(text);
  size_t i;
  for (i = 0; i < DAGD_ARRAY_LEN(ops); i++)
    if (strncmp(p, ops[i].s, strlen(ops[i].s)) == 0) break;
  if (i == DAGD_ARRAY_LEN(ops))
    return dagd_err_set(err, DAGD_ESYNTAX, "%s \"%s\": must start with <, <=, >, >=, == or !=", what, text);
  p = skip_space(p + strlen(ops[i].s));
  dagd_cmp_expr e = {.op = ops[i].op};
  if (baseline && strncmp(p, "baseline", 8) == 0) {
    e.uses_baseline = true;
    p = skip_space(p + 8);
    if (*p != '\0') {
      if (*p != '+' && *p != '-') return dagd_err_set(err, DAGD_ESYNTAX, "%s \"%s\": unexpected \"%s\"", what, text, p);
      double sign = *p == '-' ? -1 : 1;
      const char *after = *p == '-' ? "\"baseline -\"" : "\"baseline +\"";
      if (parse_number(text, what, skip_space(p + 1), after, &e.value, err) < 0) return DAGD_ESYNTAX;
      e.value *= sign;
    }
  } else if (parse_number(text, what, p, baseline ? "the comparison (or baseline)" : "the comparison", &e.value,
                          err) < 0) {
    return DAGD_ESYNTAX;
  }
  *out = e;
  return 0;
}

bool dagd_cmp_compare(dagd_cmp_op op, double value, double threshold) {
  if (isnan(value)) return false;
  switch (op) {
  case DAGD_CMP_GE: return value >= threshold;
  case DAGD_CMP_GT: return value > threshold;
  case DAGD_CMP_LE: return value <= threshold;
  case DAGD_CMP_LT: return value < threshold;
  case DAGD_CMP_EQ: return value == threshold;
  case DAGD_CMP_NE: return value != threshold;
  }
  return false;
}
