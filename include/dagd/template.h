/* Templates: `{{ expr }}` in task fields, rendered at run time against a
 * read-only JSON context (ds, ts, run_id, params, conf, outputs, env, ...).
 * An expression is a path (`params.min_f1`, `outputs.train.model_uri`,
 * `outputs["my-task"].f1`, `conf.items[0]`), a string literal, or
 * `secret("NAME")`, optionally followed by filters: `| default("x")` (used
 * when the path is undefined), `| json` (JSON text of the value), `| upper`,
 * `| lower`. An undefined path without a default is an error, so a typo
 * fails the task instead of rendering an empty string.
 * With shell_quote, the template is a /bin/sh command: each value is
 * quoted for the place it stands in (unquoted, '...' or "..."), so it
 * lands inside one word verbatim; a template where no quoting is safe
 * ($(...), ${...}, backquotes, here-documents, comments; see shell.c) is
 * refused, and so is a value that would begin a word with '-' (an option)
 * unless `--` came before it in the same command.
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
/* The same for a /bin/sh command string: also DAGD_ESYNTAX for a template
 * that stands where no value can be quoted safely. */
int dagd_template_check_shell(const char *tmpl, struct dagd_err *err);
/* Appends a JSON value as template text: a string as it is, a number in
 * the shortest form that reads back the same, null as nothing, containers
 * as compact JSON. */
void dagd_template_value_text(const json_t *v, dagd_buf *out);
/* True when s contains "{{". */
bool dagd_template_has(const char *s);
/* Appends s as one single-quoted shell word. */
void dagd_shell_quote(dagd_buf *out, const char *s);

/* The shell contexts a value can be quoted for. */
typedef enum dagd_shell_ctx { DAGD_SHELL_UNQUOTED, DAGD_SHELL_SINGLE, DAGD_SHELL_DOUBLE } dagd_shell_ctx;

#define DAGD_SHELL_MAX_DEPTH 32

/* One frame of the lexer: the command text itself (the outer one or a
 * $(...)), '...', "...", ${...} or $((...)). */
typedef struct dagd_shell_frame {
  int kind;
  int parens;                        /* ( ) depth inside $( ) or $(( )) */
  bool closing;                      /* $(( )): the first ) of )) seen */
  bool word_open, word_lit, word_mixed, dashdash;
  size_t wlen;
  char word[8];                      /* a plain word so far, for --, eval, case */
} dagd_shell_frame;

/* A POSIX sh lexer over the literal text of a command template, fed piece
 * by piece between templates. Caller-allocated; nothing to close. */
typedef struct dagd_shell_lex {
  dagd_shell_frame stack[DAGD_SHELL_MAX_DEPTH];
  int depth;
  bool esc, comment, dollar, dollar_paren, lt;
  const char *lost;                  /* why no later template can be placed */
} dagd_shell_lex;

void dagd_shell_lex_init(dagd_shell_lex *lx);
void dagd_shell_lex_feed(dagd_shell_lex *lx, const char *s, size_t n);
/* Where a value inserted now would stand: 0 and *ctx, *word_start (true
 * when the value would begin a word of the outer command with no `--`
 * before it in that command), or DAGD_ESYNTAX and *why, a static phrase
 * ("inside a command substitution $(...)"). */
int dagd_shell_lex_at(const dagd_shell_lex *lx, dagd_shell_ctx *ctx, bool *word_start, const char **why);
/* A value was inserted at the current place. */
void dagd_shell_lex_value(dagd_shell_lex *lx);
/* Appends s (n bytes) quoted for ctx: it stays one verbatim piece of the
 * word it stands in and leaves the lexer's context as it was. */
void dagd_shell_quote_in(dagd_buf *out, dagd_shell_ctx ctx, const char *s, size_t n);

#endif
