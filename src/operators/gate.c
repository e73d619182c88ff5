/* The gate operator: checks a model's metrics (outputs of an upstream
 * task) against absolute thresholds and against a baseline: a number, the
 * same outputs of the DAG's last successful run, or those recorded when
 * the deployed model was promoted. With no baseline yet (the first model),
 * checks against it are skipped and the report says so; absolute
 * thresholds still apply. Every check goes to the log and, as a JSON
 * report, to the outputs; any failure fails the task.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/operators.h"
#include "dagd/util.h"
#include "dagd/compare.h"

static bool number_of(const json_t *v, double *out) {
  if (json_is_number(v)) {
    *out = json_number_value(v);
    return true;
  }
  const char *s = json_string_value(v);
  if (s == NULL) return false;
  char *end;
  *out = strtod(s, &end);
  while (end && isspace((unsigned char)*end)) end++;
  return end != s && *end == '\0' && isfinite(*out);
}

/* Runs one check; appends its report entry. Returns false when it fails. */
static bool run_check(dagd_op_ctx *ctx, const char *key, const char *text, const json_t *values,
                      const json_t *baseline, bool has_baseline, json_t *report, int *skipped) {
  dagd_cmp_expr e = {0};
  json_t *entry = json_pack("{s:s, s:s}", "output", key, "check", text);
  bool ok = false;
  const char *result;
  double value = 0, base = 0, threshold = 0;
  bool have_value = number_of(json_object_get(values, key), &value);
  if (dagd_cmp_parse(text, "check", true, &e, NULL) < 0) {
    result = "error";
    json_object_set_new(entry, "reason", json_string("cannot parse the check"));
  } else if (!have_value) {
    result = "fail";
    json_object_set_new(entry, "reason", json_string("no numeric output of that name"));
  } else if (e.uses_baseline && !has_baseline) {
    result = "skipped";
    ok = true;
    (*skipped)++;
    json_object_set_new(entry, "reason", json_string("no baseline yet"));
  } else if (e.uses_baseline && !number_of(json_is_object(baseline) ? json_object_get(baseline, key) : baseline, &base)) {
    result = "skipped";
    ok = true;
    (*skipped)++;
    json_object_set_new(entry, "reason", json_string("the baseline has no such output"));
  } else {
    threshold = e.uses_baseline ? base + e.value : e.value;
    ok = dagd_cmp_compare(e.op, value, threshold);
    result = ok ? "pass" : "fail";
  }
  bool compared = strcmp(result, "pass") == 0 || strcmp(result, "fail") == 0;
  if (have_value) json_object_set_new(entry, "value", json_real(value));
  if (compared && have_value && e.uses_baseline) json_object_set_new(entry, "baseline", json_real(base));
  if (compared && have_value) json_object_set_new(entry, "threshold", json_real(threshold));
  json_object_set_new(entry, "result", json_string(result));
  const char *reason = json_string_value(json_object_get(entry, "reason"));
  fprintf(ctx->log, "  %-7s %s %s", result, key, text);
  if (have_value) fprintf(ctx->log, "  value %g", value);
  if (compared && have_value && e.uses_baseline) fprintf(ctx->log, "  baseline %g", base);
  if (compared && have_value) fprintf(ctx->log, "  threshold %g", threshold);
  if (reason) fprintf(ctx->log, "  (%s)", reason);
  fputc('\n', ctx->log);
  json_array_append_new(report, entry);
  return ok;
}

int dagd_operator_gate(dagd_op_ctx *ctx) {
  const char *from = json_string_value(json_object_get(ctx->config, "from"));
  const json_t *checks = json_object_get(ctx->config, "checks");
  const json_t *values = json_object_get(json_object_get(ctx->context, "outputs"), from ? from : "");
  const json_t *bconf = json_object_get(ctx->config, "baseline");
  const json_t *baseline = NULL;
  bool has_baseline = false;
  const char *baseline_from = "none";
  if (json_is_number(bconf)) {
    baseline = bconf;
    has_baseline = true;
    baseline_from = "a fixed number";
  } else if (json_is_string(bconf)) {
    baseline = json_object_get(ctx->extra, "baseline");
    has_baseline = json_is_object(baseline);
    baseline_from = json_string_value(bconf);
  }
  if (from == NULL || !json_is_object(checks)) {
    fprintf(ctx->log, "gate: needs from and checks\n");
    return 1;
  }
  fprintf(ctx->log, "gate on the outputs of %s; baseline: %s%s\n", from, baseline_from,
          json_is_string(bconf) && !has_baseline ? " (none yet: checks against it are skipped)" : "");
  if (json_string_value(json_object_get(ctx->extra, "baseline_run")))
    fprintf(ctx->log, "baseline run: %s\n", json_string_value(json_object_get(ctx->extra, "baseline_run")));
  if (!json_is_object(values)) values = json_object_get(ctx->context, "no-such");
  json_t *report = json_array();
  int failed = 0, skipped = 0, total = 0;
  const char *key;
  json_t *c;
  json_object_foreach((json_t *)checks, key, c) {
    if (json_is_string(c)) {
      total++;
      failed += !run_check(ctx, key, json_string_value(c), values, baseline, has_baseline, report, &skipped);
    } else if (json_is_array(c)) {
      size_t i;
      json_t *x;
      json_array_foreach(c, i, x) {
        if (!json_is_string(x)) continue;
        total++;
        failed += !run_check(ctx, key, json_string_value(x), values, baseline, has_baseline, report, &skipped);
      }
    }
  }
  char *text = json_dumps(report, JSON_COMPACT | JSON_REAL_PRECISION(15));
  dagd_op_output(ctx, "report", text ? text : "[]");
  free(text);
  dagd_op_output(ctx, "passed", failed ? "false" : "true");
  char buf[64];
  snprintf(buf, sizeof(buf), "%d", failed);
  dagd_op_output(ctx, "failed_checks", buf);
  fprintf(ctx->log, "gate %s: %d of %d checks failed, %d skipped\n", failed ? "FAILED" : "passed", failed, total,
          skipped);
  json_decref(report);
  return failed ? 1 : 0;
}
