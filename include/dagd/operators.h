/* Operators that run inside the dagd binary, as `dagd op SPEC` under the
 * try's shim like any task process: the daemon writes SPEC (a JSON file
 * with the operator's rendered config, the template context and inputs it
 * gathered) and the operator reads it, does its work, writes its outputs
 * to $DAGD_OUTPUT and exits: 0 success, 1 failure, DAGD_EXIT_SKIP (soft
 * fail) or DAGD_EXIT_RESCHEDULE (a sensor to poke again later). Its
 * stdout and stderr are the try's log.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_OPERATORS_H
#define DAGD_OPERATORS_H

#if defined(DAGD_LAYER_PURE) || defined(DAGD_LAYER_LUA) || defined(DAGD_LAYER_STORE) || defined(DAGD_LAYER_ENGINE) || defined(DAGD_LAYER_API)
#error "dagd/operators.h is above this layer (see the layers in CMakeLists.txt)"
#endif

#include <jansson.h>
#include <stdio.h>

typedef struct dagd_op_ctx {
  const json_t *spec;      /* the whole spec */
  const json_t *config;    /* the task's fields, templates rendered */
  const json_t *context;   /* ds, run_id, params, conf, outputs, ... */
  const json_t *extra;     /* inputs the daemon gathered (may be null) */
  const char *dag_id, *task_id, *fileloc;
  json_t *outputs;         /* what the operator sets; written to $DAGD_OUTPUT at exit */
  FILE *log;               /* the try's log (stdout) */
  /* Values to mask in what the operator writes to files (the spec's
   * "secrets" and the DAGD_SECRET_* values); may be NULL. */
  struct dagd_mask *secrets;
} dagd_op_ctx;

/* Sets an output (a string; numbers are formatted by the caller). */
void dagd_op_output(dagd_op_ctx *ctx, const char *key, const char *value);

typedef int (*dagd_operator_fn)(dagd_op_ctx *ctx);

/* `dagd op SPEC`: returns the process exit status. */
int dagd_operator_main(int argc, char **argv);

/* The operators (one file each in src/operators/). */
int dagd_operator_gate(dagd_op_ctx *ctx);
int dagd_operator_kubectl(dagd_op_ctx *ctx);  /* apply of a templated manifest, wait */
int dagd_operator_deploy(dagd_op_ctx *ctx);   /* rolling, blue_green, canary, shadow */
int dagd_operator_k8sjob(dagd_op_ctx *ctx);   /* a docker task run as a Kubernetes Job */
int dagd_operator_data_check(dagd_op_ctx *ctx);
/* branch (and short_circuit), lua, sensor, http: see docs/operators.md. */
int dagd_operator_branch(dagd_op_ctx *ctx);
int dagd_operator_lua(dagd_op_ctx *ctx);
int dagd_operator_sensor(dagd_op_ctx *ctx);
int dagd_operator_http(dagd_op_ctx *ctx);
int dagd_operator_registry(dagd_op_ctx *ctx);
int dagd_operator_docker(dagd_op_ctx *ctx);

#endif
