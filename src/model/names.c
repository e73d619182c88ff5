/* Names of operators, trigger rules, run and task instance states and run
 * types, as DAG files, the store and the API spell them.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "dagd/err.h"
#include "dagd/model.h"

static const char *const op_names[DAGD_OP__COUNT] = {
    [DAGD_OP_SHELL] = "shell",   [DAGD_OP_DOCKER] = "docker", [DAGD_OP_KUBECTL] = "kubectl",
    [DAGD_OP_REGISTRY] = "registry", [DAGD_OP_HTTP] = "http", [DAGD_OP_GATE] = "gate",
    [DAGD_OP_BRANCH] = "branch", [DAGD_OP_SENSOR] = "sensor", [DAGD_OP_LUA] = "lua",
    [DAGD_OP_DEPLOY] = "deploy", [DAGD_OP_EMPTY] = "empty", [DAGD_OP_DATA_CHECK] = "data_check",
};

static const char *const tr_names[DAGD_TR__COUNT] = {
    [DAGD_TR_ALL_SUCCESS] = "all_success",
    [DAGD_TR_ALL_FAILED] = "all_failed",
    [DAGD_TR_ALL_DONE] = "all_done",
    [DAGD_TR_ALL_SKIPPED] = "all_skipped",
    [DAGD_TR_ONE_SUCCESS] = "one_success",
    [DAGD_TR_ONE_FAILED] = "one_failed",
    [DAGD_TR_ONE_DONE] = "one_done",
    [DAGD_TR_NONE_FAILED] = "none_failed",
    [DAGD_TR_NONE_FAILED_MIN_ONE_SUCCESS] = "none_failed_min_one_success",
    [DAGD_TR_NONE_SKIPPED] = "none_skipped",
    [DAGD_TR_ALWAYS] = "always",
};

/* The index of s in names[0..n): DAGD_ENOENT when absent (or s is NULL). */
static int parse_name(const char *const *names, int n, const char *s, int *out) {
  if (s == NULL) return DAGD_ENOENT;
  for (int i = 0; i < n; i++) {
    if (strcmp(names[i], s) == 0) {
      *out = i;
      return 0;
    }
  }
  return DAGD_ENOENT;
}

const char *dagd_op_name(dagd_op op) {
  if ((unsigned)op >= DAGD_OP__COUNT) return "unknown";
  return op_names[op];
}

int dagd_op_parse(const char *name, dagd_op *op) {
  int v, rc = parse_name(op_names, DAGD_OP__COUNT, name, &v);
  if (rc == 0) *op = (dagd_op)v;
  return rc;
}

const char *dagd_trigger_rule_name(dagd_trigger_rule tr) {
  if ((unsigned)tr >= DAGD_TR__COUNT) return "unknown";
  return tr_names[tr];
}

int dagd_trigger_rule_parse(const char *name, dagd_trigger_rule *tr) {
  int v, rc = parse_name(tr_names, DAGD_TR__COUNT, name, &v);
  if (rc == 0) *tr = (dagd_trigger_rule)v;
  return rc;
}

static const char *const run_state_names[] = {"queued", "running", "success", "failed"};
static const char *const run_type_names[] = {"scheduled", "manual", "backfill", "event"};
static const char *const ti_state_names[] = {
    "none",   "scheduled",       "queued",  "running", "success", "failed",
    "up_for_retry", "up_for_reschedule", "upstream_failed", "skipped", "removed"};

const char *dagd_run_state_name(dagd_run_state s) { return (unsigned)s < DAGD_RUN__COUNT ? run_state_names[s] : "?"; }
const char *dagd_run_type_name(dagd_run_type t) { return (unsigned)t < DAGD_RUN_TYPE__COUNT ? run_type_names[t] : "?"; }
const char *dagd_ti_state_name(dagd_ti_state s) { return (unsigned)s < DAGD_TI__COUNT ? ti_state_names[s] : "?"; }

int dagd_run_state_parse(const char *name, dagd_run_state *out) {
  int v, rc = parse_name(run_state_names, DAGD_RUN__COUNT, name, &v);
  if (rc == 0) *out = (dagd_run_state)v;
  return rc;
}

int dagd_run_type_parse(const char *name, dagd_run_type *out) {
  int v, rc = parse_name(run_type_names, DAGD_RUN_TYPE__COUNT, name, &v);
  if (rc == 0) *out = (dagd_run_type)v;
  return rc;
}

int dagd_ti_state_parse(const char *name, dagd_ti_state *out) {
  int v, rc = parse_name(ti_state_names, DAGD_TI__COUNT, name, &v);
  if (rc == 0) *out = (dagd_ti_state)v;
  return rc;
}

bool dagd_ti_state_finished(dagd_ti_state s) {
  return s == DAGD_TI_SUCCESS || s == DAGD_TI_FAILED || s == DAGD_TI_SKIPPED || s == DAGD_TI_UPSTREAM_FAILED ||
         s == DAGD_TI_REMOVED;
}
