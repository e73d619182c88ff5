/* The operator kinds: one row per kind, read by every room that treats
 * kinds differently (the command builder, the engine, the daemon), so that
 * what a kind is and does is written once (dagd/command.h).
 * SPDX-License-Identifier: MIT */
#include <stddef.h>

#include "dagd/command.h"

static const dagd_op_kind kinds[DAGD_OP__COUNT] = {
    [DAGD_OP_SHELL] = {.op = DAGD_OP_SHELL, .runs = DAGD_RUNS_COMMAND},
    [DAGD_OP_DOCKER] = {.op = DAGD_OP_DOCKER, .runs = DAGD_RUNS_OP},
    [DAGD_OP_KUBECTL] = {.op = DAGD_OP_KUBECTL, .runs = DAGD_RUNS_CHOSEN},
    [DAGD_OP_REGISTRY] = {.op = DAGD_OP_REGISTRY, .runs = DAGD_RUNS_OP, .image_host = true},
    [DAGD_OP_HTTP] = {.op = DAGD_OP_HTTP, .runs = DAGD_RUNS_OP},
    [DAGD_OP_GATE] = {.op = DAGD_OP_GATE, .runs = DAGD_RUNS_OP, .needs_baseline = true, .records_baseline = true},
    [DAGD_OP_BRANCH] = {.op = DAGD_OP_BRANCH, .runs = DAGD_RUNS_OP, .chooses_downstream = true},
    [DAGD_OP_SENSOR] = {.op = DAGD_OP_SENSOR, .runs = DAGD_RUNS_OP, .needs_state = true, .image_host = true},
    [DAGD_OP_LUA] = {.op = DAGD_OP_LUA, .runs = DAGD_RUNS_OP},
    [DAGD_OP_DEPLOY] = {.op = DAGD_OP_DEPLOY, .runs = DAGD_RUNS_OP},
    [DAGD_OP_EMPTY] = {.op = DAGD_OP_EMPTY, .runs = DAGD_RUNS_NOTHING},
    [DAGD_OP_DATA_CHECK] = {.op = DAGD_OP_DATA_CHECK, .runs = DAGD_RUNS_OP},
};

const dagd_op_kind *dagd_op_kind_of(dagd_op op) {
  static const dagd_op_kind unknown = {.op = DAGD_OP__COUNT, .runs = DAGD_RUNS_UNKNOWN};
  return (unsigned)op < DAGD_OP__COUNT ? &kinds[op] : &unknown;
}
