/* The lua operator: runs the task's Lua function `fn` on the run's
 * context, in this child process and in the DAG file's sandbox, and turns
 * the table it returns into outputs (strings as they are, other values as
 * JSON text). nil returns no outputs; an error fails the try with the
 * function's file:line.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "http_op.h"

int dagd_operator_lua(dagd_op_ctx *ctx) {
  json_t *r = NULL;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd__op_call_fn(ctx, "fn", &r, &err) < 0) {
    fprintf(ctx->log, "lua: %s\n", err.msg);
    return 1;
  }
  int rc = 0;
  if (json_is_object(r)) {
    const char *k;
    json_t *v;
    /* Check every key first: a bad one sets no output at all. */
    json_object_foreach(r, k, v) {
      if (!dagd_id_valid(k)) {
        fprintf(ctx->log, "lua: output name \"%s\" must match [A-Za-z0-9_.-]{1,250}\n", k);
        rc = 1;
      }
    }
    if (rc == 0) {
      json_object_foreach(r, k, v) {
        char *text = dagd__op_output_text(v);
        dagd_op_output(ctx, k, text);
        fprintf(ctx->log, "lua: output %s = %s\n", k, text);
        free(text);
      }
    }
  } else if (!json_is_null(r)) {
    fprintf(ctx->log, "lua: fn must return a table of outputs (or nil)\n");
    rc = 1;
  }
  json_decref(r);
  return rc;
}
