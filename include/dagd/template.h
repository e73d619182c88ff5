/* Templates: `{{ expr }}` in task fields, rendered at run time against a
 * read-only JSON context (ds, ts, run_id, params, conf, outputs, env, ...).
 * An expression is a path (`params.min_f1`, `outputs.train.model_uri`,
 * `outputs["my-task"].f1`, `conf.items[0]`), a string literal, or
 * `secret("NAME")`, optionally followed by filters: `| default("x")` (used
 * when the path is undefined), `| json` (JSON text of the value), `| upper`,
 * `| lower`. An undefined path without a default is an error, so a typo
 * fails the task instead of rendering an empty string.
 * With shell_quote, every substituted value is one single-quoted shell
 * word, so no value can become shell code or split into several words.
 * Pure: no I/O; secrets come through a callback.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_TEMPLATE_H
#define DAGD_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>

#include "dagd/util.h"

struct dagd_err;

/* Looks up secret `name`: sets *value to a new heap string, or returns a
 * negative code with err set. */
typedef int (*dagd_template_secret_cb)(void *data, const char *name, char **value, struct dagd_err *err);

typedef struct dagd_template_opts {
  bool shell_quote;
  dagd_template_secret_cb secret;  /* NULL: secret() is an error */
  void *secret_data;
  /* When not NULL, each secret value rendered is appended here (for
   * masking it in logs). Caller frees the strings and the array. */
  char ***secrets_seen;
  size_t *n_secrets_seen;
  /* When not NULL, set to how many leading bytes of the rendering the DAG
   * file fixed: its literal text and bare `params.x` paths (params come
   * from the DAG file only), up to the first expression of any other kind
   * (conf, outputs, env, filters, secrets), which a context value could
   * change. */
  size_t *literal_prefix;
} dagd_template_opts;

/* Appends the rendering of tmpl to out. Errors (DAGD_ESYNTAX for bad
 * syntax, DAGD_ENOENT for an undefined path) name the expression; out may
 * hold a partial rendering then. */
int dagd_template_render(const char *tmpl, const json_t *ctx, const dagd_template_opts *opts, dagd_buf *out,
                         struct dagd_err *err);
/* Syntax check only (for load time): 0 or DAGD_ESYNTAX. */
int dagd_template_check(const char *tmpl, struct dagd_err *err);
/* Appends a JSON value as template text: a string as it is, a number in
 * the shortest form that reads back the same, null as nothing, containers
 * as compact JSON. */
void dagd_template_value_text(const json_t *v, dagd_buf *out);
/* True when s contains "{{". */
bool dagd_template_has(const char *s);
/* Appends s as one single-quoted shell word. */
void dagd_shell_quote(dagd_buf *out, const char *s);

#endif
