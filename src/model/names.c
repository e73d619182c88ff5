/* Names of operators and trigger rules, as DAG files and the API spell them.
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

const char *dagd_op_name(dagd_op op) {
  if ((unsigned)op >= DAGD_OP__COUNT) return "unknown";
  return op_names[op];
}

int dagd_op_parse(const char *name, dagd_op *op) {
  if (name == NULL) return DAGD_ENOENT;
  for (int i = 0; i < DAGD_OP__COUNT; i++) {
    if (strcmp(name, op_names[i]) == 0) {
      *op = (dagd_op)i;
      return 0;
    }
  }
  return DAGD_ENOENT;
}

const char *dagd_trigger_rule_name(dagd_trigger_rule tr) {
  if ((unsigned)tr >= DAGD_TR__COUNT) return "unknown";
  return tr_names[tr];
}

int dagd_trigger_rule_parse(const char *name, dagd_trigger_rule *tr) {
  if (name == NULL) return DAGD_ENOENT;
  for (int i = 0; i < DAGD_TR__COUNT; i++) {
    if (strcmp(name, tr_names[i]) == 0) {
      *tr = (dagd_trigger_rule)i;
      return 0;
    }
  }
  return DAGD_ENOENT;
}
