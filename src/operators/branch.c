/* The branch operator and its short_circuit form: runs the task's Lua
 * function `fn` on the run's context. A branch's function returns the id
 * of the downstream task to follow, or a list of them (nil or an empty
 * list: none), written as the output "follow"; a short_circuit's returns
 * whether to go on, written as "condition". The daemon reads these when
 * the task succeeds and skips the tasks not chosen.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "http_op.h"

/* The follow list from what a branch function returned; NULL (with a log
 * line) when it is not an id or a list of ids. */
static json_t *follow_list(dagd_op_ctx *ctx, const json_t *r) {
  if (json_is_null(r) || json_is_false(r)) return json_array();
  if (json_is_string(r)) return json_pack("[O]", r);
  if (json_is_object(r) && json_object_size(r) == 0) return json_array(); /* {} reads as an empty list */
  if (!json_is_array(r)) {
    fprintf(ctx->log, "branch: fn must return a task id or a list of task ids\n");
    return NULL;
  }
  size_t i;
  const json_t *x;
  json_array_foreach(r, i, x) {
    if (!json_is_string(x) || !dagd_id_valid(json_string_value(x))) {
      char *t = dagd__op_output_text(x);
      fprintf(ctx->log, "branch: fn returned a list whose item %zu (%s) is not a task id\n", i + 1, t);
      free(t);
      return NULL;
    }
  }
  return json_deep_copy(r);
}

int dagd_operator_branch(dagd_op_ctx *ctx) {
  bool short_circuit = json_is_true(json_object_get(ctx->config, "short_circuit"));
  json_t *r = NULL;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd__op_call_fn(ctx, "fn", &r, &err) < 0) {
    fprintf(ctx->log, "%s: %s\n", short_circuit ? "short_circuit" : "branch", err.msg);
    return 1;
  }
  int rc = 1;
  if (short_circuit) {
    /* Lua's truth: only nil and false stop. */
    bool go = !json_is_null(r) && !json_is_false(r);
    dagd_op_output(ctx, "condition", go ? "true" : "false");
    fprintf(ctx->log, "short_circuit: condition is %s%s\n", go ? "true" : "false",
            go ? "" : ": the downstream tasks are skipped");
    rc = 0;
  } else {
    json_t *list = follow_list(ctx, r);
    if (list != NULL) {
      char *text = json_dumps(list, JSON_COMPACT);
      dagd_op_output(ctx, "follow", text);
      fprintf(ctx->log, "branch: follow %s%s\n", text,
              json_array_size(list) == 0 ? " (no downstream task: all are skipped)" : "");
      free(text);
      json_decref(list);
      rc = 0;
    }
  }
  json_decref(r);
  return rc;
}
