/* The template renderer: a small recursive-descent parser over `{{ }}`
 * blocks that evaluates paths against a JSON context, with no code
 * execution. Parsing and evaluation are one pass; dagd_template_check runs
 * the same parser with no context.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/err.h"
#include "dagd/template.h"
#include "dagd/util.h"

/* Deepest path accepted: far beyond real use, and a bound on work. */
#define MAX_PATH_STEPS 64

typedef struct parser {
  const char *p;          /* cursor inside the expression */
  const char *end;        /* end of the expression (the closing braces) */
  const char *expr;       /* the expression's start, for messages */
  const json_t *ctx;      /* may be NULL: every path is undefined */
  bool check;             /* syntax check only: evaluate nothing */
  const dagd_template_opts *opts;
  dagd_err *err;
} parser;

static int fail(parser *ps, int code, const char *what) {
  int len = (int)(ps->end - ps->expr);
  return dagd_err_set(ps->err, code, "template {{%.*s}}: %s", len > 120 ? 120 : len, ps->expr, what);
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && isspace((unsigned char)*ps->p)) ps->p++;
}

static bool ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static bool ident_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-'; }

/* A double- or single-quoted string with backslash escapes; into *out. */
static int parse_string(parser *ps, dagd_buf *out) {
  char q = *ps->p++;
  while (ps->p < ps->end && *ps->p != q) {
    char c = *ps->p++;
    if (c == '\\' && ps->p < ps->end) {
      c = *ps->p++;
      if (c == 'n') c = '\n';
      else if (c == 't') c = '\t';
    }
    dagd_buf_putc(out, c);
  }
  if (ps->p >= ps->end) return fail(ps, DAGD_ESYNTAX, "unterminated string");
  ps->p++;
  return 0;
}

/* path := ident ('.' name | '[' (number | string) ']')*
 * Sets *val to the value (borrowed from ctx) or NULL when undefined; the
 * dotted text of the path goes to name for messages. */
static int parse_path(parser *ps, const json_t **val, dagd_buf *name) {
  const json_t *cur = ps->ctx;
  int steps = 0;
  dagd_buf key;
  dagd_buf_init(&key);
  int rc = 0;
  for (;;) {
    dagd_buf_reset(&key);
    if (steps == 0 || (ps->p < ps->end && *ps->p == '.')) {
      if (steps > 0) ps->p++;
      if (ps->p >= ps->end || !ident_char(*ps->p) || (steps == 0 && !ident_start(*ps->p))) {
        rc = fail(ps, DAGD_ESYNTAX, "expected a name");
        goto out;
      }
      while (ps->p < ps->end && ident_char(*ps->p)) dagd_buf_putc(&key, *ps->p++);
      if (steps > 0) dagd_buf_putc(name, '.');
      dagd_buf_puts(name, key.data);
      if (cur) cur = json_is_object(cur) ? json_object_get(cur, key.data) : NULL;
    } else if (ps->p < ps->end && *ps->p == '[') {
      ps->p++;
      skip_ws(ps);
      if (ps->p < ps->end && (*ps->p == '"' || *ps->p == '\'')) {
        if ((rc = parse_string(ps, &key)) < 0) goto out;
        dagd_buf_printf(name, "[\"%s\"]", key.data);
        if (cur) cur = json_is_object(cur) ? json_object_get(cur, key.data) : NULL;
      } else if (ps->p < ps->end && isdigit((unsigned char)*ps->p)) {
        size_t i = 0;
        while (ps->p < ps->end && isdigit((unsigned char)*ps->p) && i < 100000000) i = i * 10 + (size_t)(*ps->p++ - '0');
        dagd_buf_printf(name, "[%zu]", i);
        if (cur) cur = json_is_array(cur) ? json_array_get(cur, i) : NULL;
      } else {
        rc = fail(ps, DAGD_ESYNTAX, "expected a number or a string inside [ ]");
        goto out;
      }
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ']') {
        rc = fail(ps, DAGD_ESYNTAX, "expected ]");
        goto out;
      }
      ps->p++;
    } else {
      break;
    }
    if (++steps > MAX_PATH_STEPS) {
      rc = fail(ps, DAGD_ESYNTAX, "path too deep");
      goto out;
    }
  }
  *val = cur;
out:
  dagd_buf_close(&key);
  return rc;
}

/* Renders a JSON value as text: strings as they are, numbers in their
 * shortest form, null as empty, containers as compact JSON. */
void dagd_template_value_text(const json_t *v, dagd_buf *out) {
  char num[64];
  switch (json_typeof(v)) {
  case JSON_STRING: dagd_buf_append(out, json_string_value(v), json_string_length(v)); break;
  case JSON_INTEGER: dagd_buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
  case JSON_REAL:
    snprintf(num, sizeof(num), "%.17g", json_real_value(v));
    /* Prefer the shortest text that reads back to the same double. */
    for (int prec = 1; prec <= 17; prec++) {
      snprintf(num, sizeof(num), "%.*g", prec, json_real_value(v));
      if (strtod(num, NULL) == json_real_value(v)) break;
    }
    dagd_buf_puts(out, num);
    break;
  case JSON_TRUE: dagd_buf_puts(out, "true"); break;
  case JSON_FALSE: dagd_buf_puts(out, "false"); break;
  case JSON_NULL: break;
  default: {
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s) dagd_buf_puts(out, s);
    free(s);
  }
  }
}

/* expr := (string | secret(string) | path) ('|' filter)* */
static int eval_expr(parser *ps, dagd_buf *result) {
  dagd_buf name, lit;
  dagd_buf_init(&name);
  dagd_buf_init(&lit);
  const json_t *val = NULL;
  bool is_text = false, defined = true, as_json = false;
  int rc = 0;
  skip_ws(ps);
  if (ps->p >= ps->end) {
    rc = fail(ps, DAGD_ESYNTAX, "empty expression");
    goto out;
  }
  if (*ps->p == '"' || *ps->p == '\'') {
    if ((rc = parse_string(ps, &lit)) < 0) goto out;
    is_text = true;
  } else {
    if ((rc = parse_path(ps, &val, &name)) < 0) goto out;
    skip_ws(ps);
    if (strcmp(name.data, "secret") == 0 && ps->p < ps->end && *ps->p == '(') {
      ps->p++;
      skip_ws(ps);
      if (ps->p >= ps->end || (*ps->p != '"' && *ps->p != '\'')) {
        rc = fail(ps, DAGD_ESYNTAX, "secret() takes a quoted name");
        goto out;
      }
      dagd_buf sname;
      dagd_buf_init(&sname);
      if ((rc = parse_string(ps, &sname)) < 0) {
        dagd_buf_close(&sname);
        goto out;
      }
      /* An empty name would reach the secret store as NULL (found by fuzzing). */
      if (sname.len == 0) {
        dagd_buf_close(&sname);
        rc = fail(ps, DAGD_ESYNTAX, "secret() takes a non-empty name");
        goto out;
      }
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ')') {
        dagd_buf_close(&sname);
        rc = fail(ps, DAGD_ESYNTAX, "expected ) after the secret's name");
        goto out;
      }
      ps->p++;
      if (!ps->check) {
        char *secret = NULL;
        if (ps->opts == NULL || ps->opts->secret == NULL) {
          rc = dagd_err_set(ps->err, DAGD_ENOENT, "template: no secret store for secret(\"%s\")", sname.data);
        } else if ((rc = ps->opts->secret(ps->opts->secret_data, sname.data, &secret, ps->err)) == 0) {
          dagd_buf_puts(&lit, secret);
          if (ps->opts->secrets_seen) {
            *ps->opts->secrets_seen =
                dagd_realloc(*ps->opts->secrets_seen, (*ps->opts->n_secrets_seen + 1) * sizeof(char *));
            (*ps->opts->secrets_seen)[(*ps->opts->n_secrets_seen)++] = secret;
            secret = NULL;
          }
        }
        free(secret);
      }
      dagd_buf_close(&sname);
      if (rc < 0) goto out;
      is_text = true;
    } else {
      defined = val != NULL;
    }
  }
  for (;;) {
    skip_ws(ps);
    if (ps->p >= ps->end) break;
    if (*ps->p != '|') {
      rc = fail(ps, DAGD_ESYNTAX, "unexpected text after the expression");
      goto out;
    }
    ps->p++;
    skip_ws(ps);
    const char *f = ps->p;
    while (ps->p < ps->end && ident_char(*ps->p)) ps->p++;
    size_t flen = (size_t)(ps->p - f);
    if (flen == 7 && memcmp(f, "default", 7) == 0) {
      skip_ws(ps);
      dagd_buf dflt;
      dagd_buf_init(&dflt);
      if (ps->p >= ps->end || *ps->p != '(' ||
          (ps->p++, skip_ws(ps), ps->p >= ps->end || (*ps->p != '"' && *ps->p != '\''))) {
        dagd_buf_close(&dflt);
        rc = fail(ps, DAGD_ESYNTAX, "default takes a quoted string: default(\"x\")");
        goto out;
      }
      if ((rc = parse_string(ps, &dflt)) < 0) {
        dagd_buf_close(&dflt);
        goto out;
      }
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ')') {
        dagd_buf_close(&dflt);
        rc = fail(ps, DAGD_ESYNTAX, "expected ) after default's value");
        goto out;
      }
      ps->p++;
      if (!is_text && (!defined || json_is_null(val))) {
        dagd_buf_reset(&lit);
        dagd_buf_puts(&lit, dflt.data ? dflt.data : ""); /* default("") leaves data NULL */
        is_text = true;
        defined = true;
      }
      dagd_buf_close(&dflt);
    } else if (flen == 4 && memcmp(f, "json", 4) == 0) {
      as_json = true;
    } else if ((flen == 5 && memcmp(f, "upper", 5) == 0) || (flen == 5 && memcmp(f, "lower", 5) == 0)) {
      /* Applied below, once the text is known. */
      if (!ps->check) {
        dagd_buf tmp;
        dagd_buf_init(&tmp);
        if (is_text) dagd_buf_puts(&tmp, lit.data ? lit.data : "");
        else if (defined) dagd_template_value_text(val, &tmp);
        for (size_t i = 0; i < tmp.len; i++)
          tmp.data[i] = (char)(f[0] == 'u' ? toupper((unsigned char)tmp.data[i]) : tolower((unsigned char)tmp.data[i]));
        dagd_buf_reset(&lit);
        dagd_buf_append(&lit, tmp.data ? tmp.data : "", tmp.len);
        dagd_buf_close(&tmp);
        is_text = defined || is_text;
      }
    } else {
      rc = fail(ps, DAGD_ESYNTAX, "unknown filter (known: default, json, upper, lower)");
      goto out;
    }
  }
  if (ps->check) goto out;
  if (!defined) {
    char msg[300];
    snprintf(msg, sizeof(msg), "\"%.200s\" is undefined (use | default(\"...\") for optional values)", name.data);
    rc = fail(ps, DAGD_ENOENT, msg);
    goto out;
  }
  if (as_json) {
    json_t *tmp = is_text ? json_string(lit.data ? lit.data : "") : NULL;
    char *s = json_dumps(is_text ? tmp : val, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s) dagd_buf_puts(result, s);
    free(s);
    json_decref(tmp);
  } else if (is_text) {
    dagd_buf_append(result, lit.data ? lit.data : "", lit.len);
  } else {
    dagd_template_value_text(val, result);
  }
out:
  dagd_buf_close(&name);
  dagd_buf_close(&lit);
  return rc;
}

/* Finds the "}}" that closes a block starting at p, skipping quoted
 * strings so that "{{ '}}' }}" works. */
static const char *block_end(const char *p) {
  char q = 0;
  for (; *p; p++) {
    if (q) {
      if (*p == '\\' && p[1]) p++;
      else if (*p == q) q = 0;
    } else if (*p == '"' || *p == '\'') {
      q = *p;
    } else if (p[0] == '}' && p[1] == '}') {
      return p;
    }
  }
  return NULL;
}

/* Whether the expression [p, end) is a bare params path (params.a.b, no
 * index, no filter): a value the DAG file itself fixed. */
static bool params_path(const char *p, const char *end) {
  while (p < end && isspace((unsigned char)*p)) p++;
  while (end > p && isspace((unsigned char)end[-1])) end--;
  if ((size_t)(end - p) < 8 || strncmp(p, "params.", 7) != 0) return false;
  p += 6;
  while (p < end) {
    if (*p != '.' || p + 1 >= end || !ident_start(p[1])) return false;
    p += 2;
    while (p < end && ident_char(*p)) p++;
  }
  return true;
}

static int render(const char *tmpl, const json_t *ctx, bool check, const dagd_template_opts *opts,
                  dagd_buf *out, dagd_err *err) {
  const char *p = tmpl;
  bool shell = opts && opts->shell_quote;
  dagd_shell_lex lx;
  dagd_shell_lex_init(&lx);
  dagd_buf val;
  dagd_buf_init(&val);
  int rc = 0;
  /* The fixed head (opts->literal_prefix): literal text and params paths,
   * up to the first expression of any other kind. */
  size_t start = out->len;
  bool fixed = true;
  size_t *head = opts ? opts->literal_prefix : NULL;
  if (head) *head = 0;
  while (*p) {
    const char *open = strstr(p, "{{");
    if (open == NULL) {
      dagd_buf_puts(out, p);
      if (head && fixed) *head = out->len - start;
      break;
    }
    dagd_buf_append(out, p, (size_t)(open - p));
    if (head && fixed) *head = out->len - start;
    if (shell) dagd_shell_lex_feed(&lx, p, (size_t)(open - p));
    const char *close = block_end(open + 2);
    if (close == NULL) {
      rc = dagd_err_set(err, DAGD_ESYNTAX, "template: \"{{\" without a closing \"}}\"");
      break;
    }
    parser ps = {.p = open + 2, .end = close, .expr = open + 2, .ctx = ctx, .check = check, .opts = opts,
                 .err = err};
    dagd_shell_ctx sctx = DAGD_SHELL_UNQUOTED;
    bool word_start = false;
    const char *why = NULL;
    if (shell && dagd_shell_lex_at(&lx, &sctx, &word_start, &why) < 0) {
      char msg[300];
      snprintf(msg, sizeof(msg), "stands %s of the shell command, where no value can be quoted safely; "
               "pass it through env (env = { X = \"{{ ... }}\" }) and write \"$X\"", why);
      rc = fail(&ps, DAGD_ESYNTAX, msg);
      break;
    }
    dagd_buf_reset(&val);
    if ((rc = eval_expr(&ps, &val)) < 0) break;
    if (shell) {
      /* A word the value begins would be read as an option: --help, -rf. */
      if (!check && word_start && val.len > 0 && val.data[0] == '-') {
        rc = fail(&ps, DAGD_EINVAL, "the value begins a word with '-', where the command would read it as an "
                  "option; write -- before it or text before the template (--name={{ ... }})");
        break;
      }
      dagd_shell_quote_in(out, sctx, val.data ? val.data : "", val.len);
      dagd_shell_lex_value(&lx);
    } else {
      dagd_buf_append(out, val.data ? val.data : "", val.len);
    }
    if (head && fixed && (fixed = params_path(open + 2, close))) *head = out->len - start;
    p = close + 2;
  }
  dagd_buf_close(&val);
  return rc;
}

int dagd_template_render(const char *tmpl, const json_t *ctx, const dagd_template_opts *opts, dagd_buf *out,
                         dagd_err *err) {
  return render(tmpl, ctx, false, opts, out, err);
}

int dagd_template_check(const char *tmpl, dagd_err *err) {
  dagd_buf out;
  dagd_buf_init(&out);
  int rc = render(tmpl, NULL, true, NULL, &out, err);
  dagd_buf_close(&out);
  return rc;
}

int dagd_template_check_shell(const char *tmpl, dagd_err *err) {
  dagd_template_opts opts = {.shell_quote = true};
  dagd_buf out;
  dagd_buf_init(&out);
  int rc = render(tmpl, NULL, true, &opts, &out, err);
  dagd_buf_close(&out);
  return rc;
}

bool dagd_template_has(const char *s) { return strstr(s, "{{") != NULL; }
