/* Where a template stands in a /bin/sh command string, and how to insert a
 * value there so that it lands in one word, verbatim. The literal text of
 * the command is fed through a small POSIX sh lexer (a stack of quoting and
 * substitution frames); a value may go only where the lexer is sure of the
 * context: unquoted, inside '...' or inside "..." of the outer command.
 * Everything it cannot follow with certainty (backquotes, here-documents,
 * bash's $'...', eval, case inside $(...)) refuses every later template.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "dagd/err.h"
#include "dagd/template.h"
#include "dagd/util.h"

enum { F_CMD = 0, F_SQ, F_DQ, F_PARAM, F_ARITH };

static dagd_shell_frame *top(dagd_shell_lex *lx) { return &lx->stack[lx->depth - 1]; }

void dagd_shell_lex_init(dagd_shell_lex *lx) {
  memset(lx, 0, sizeof(*lx));
  lx->depth = 1;
  lx->stack[0].kind = F_CMD;
}

static void lose(dagd_shell_lex *lx, const char *why) {
  if (lx->lost == NULL) lx->lost = why;
}

static void push(dagd_shell_lex *lx, int kind) {
  if (lx->depth == DAGD_SHELL_MAX_DEPTH) {
    lose(lx, "after substitutions nested too deep to follow");
    return;
  }
  dagd_shell_frame *f = &lx->stack[lx->depth++];
  memset(f, 0, sizeof(*f));
  f->kind = kind;
}

static void pop(dagd_shell_lex *lx) {
  if (lx->depth > 1) lx->depth--;
}

/* The innermost command frame: the one whose word a quoted or
 * substituted piece belongs to. */
static dagd_shell_frame *cmd_frame(dagd_shell_lex *lx) {
  for (int i = lx->depth - 1; i > 0; i--)
    if (lx->stack[i].kind == F_CMD) return &lx->stack[i];
  return &lx->stack[0];
}

/* The current word got content that is not a plain keyword character. */
static void word_content(dagd_shell_lex *lx) {
  dagd_shell_frame *c = cmd_frame(lx);
  c->word_lit = true;
  c->word_open = true;
  c->word_mixed = true;
}

/* A blank or an operator ended the word in command frame f. */
static void word_end(dagd_shell_lex *lx, dagd_shell_frame *f) {
  if (f->word_open && !f->word_mixed) {
    f->word[f->wlen] = '\0';
    if (strcmp(f->word, "--") == 0) f->dashdash = true;
    else if (strcmp(f->word, "eval") == 0 || strcmp(f->word, "trap") == 0 || strcmp(f->word, "alias") == 0)
      lose(lx, "after eval, trap or alias, which read their arguments as shell code again");
    else if (strcmp(f->word, "case") == 0 && f != &lx->stack[0])
      lose(lx, "after a case inside $(...), whose patterns end in an unbalanced )");
  }
  f->word_open = f->word_lit = f->word_mixed = false;
  f->wlen = 0;
}

static void cmd_char(dagd_shell_lex *lx, dagd_shell_frame *f, char c) {
  switch (c) {
  case '\\': lx->esc = true; return;
  case '\'': f->word_open = f->word_mixed = true; push(lx, F_SQ); return;
  case '"': f->word_open = f->word_mixed = true; push(lx, F_DQ); return;
  case '`': lose(lx, "after a backquote `...`, whose quoting rules cannot be followed safely"); return;
  case '$': lx->dollar = true; word_content(lx); return;
  case '#':
    if (!f->word_open) {
      lx->comment = true;
      return;
    }
    break;
  case ' ': case '\t': word_end(lx, f); return;
  case '\n': case ';': case '&': case '|':
    word_end(lx, f);
    f->dashdash = false;
    return;
  case '<': word_end(lx, f); lx->lt = true; return;
  case '>': word_end(lx, f); return;
  case '(':
    word_end(lx, f);
    f->dashdash = false;
    if (f != &lx->stack[0]) f->parens++;
    return;
  case ')':
    word_end(lx, f);
    f->dashdash = false;
    if (f != &lx->stack[0]) {
      if (f->parens == 0) {
        pop(lx); /* the end of $( ... ) */
        word_content(lx);
      } else {
        f->parens--;
      }
    }
    return;
  default: break;
  }
  f->word_open = f->word_lit = true;
  if (!f->word_mixed && f->wlen < sizeof(f->word) - 1) f->word[f->wlen++] = c;
  else f->word_mixed = true;
}

/* The character after an unquoted or double-quoted $. */
static bool dollar_char(dagd_shell_lex *lx, char c) {
  dagd_shell_frame *f = top(lx);
  if (lx->dollar_paren) {
    lx->dollar_paren = false;
    if (c == '(') {
      push(lx, F_ARITH);
      return true;
    }
    push(lx, F_CMD);
    return false; /* c is the command's first character */
  }
  lx->dollar = false;
  if (c == '(') {
    lx->dollar_paren = true;
    return true;
  }
  if (c == '{') {
    push(lx, F_PARAM);
    return true;
  }
  if (c != '\0' && strchr("$@*#?-!0123456789", c) != NULL) return true; /* a special parameter: $$, $#, $1 */
  if ((c == '\'' || c == '"') && f->kind == F_CMD) {
    lose(lx, "after bash's $'...' or $\"...\" quoting, which /bin/sh may not share");
    return true;
  }
  return false;
}

static void feed_char(dagd_shell_lex *lx, char c) {
  if (lx->esc) {
    lx->esc = false;
    /* A backslash-newline vanishes; any other escaped character is text. */
    int k = top(lx)->kind;
    if (c != '\n' && (k == F_CMD || k == F_DQ)) word_content(lx);
    return;
  }
  if (lx->comment) {
    if (c == '\n') lx->comment = false;
    else return;
  }
  if (lx->lt) {
    lx->lt = false;
    if (c == '<') {
      lose(lx, "after a here-document (<<), whose body the shell expands");
      return;
    }
  }
  if ((lx->dollar || lx->dollar_paren) && dollar_char(lx, c)) return;
  dagd_shell_frame *f = top(lx);
  switch (f->kind) {
  case F_CMD: cmd_char(lx, f, c); return;
  case F_SQ:
    if (c == '\'') pop(lx);
    else cmd_frame(lx)->word_lit = true;
    return;
  case F_DQ:
    if (c == '"') {
      pop(lx);
      return;
    }
    if (c == '\\') lx->esc = true;
    else if (c == '$') lx->dollar = true;
    else if (c == '`') lose(lx, "after a backquote `...`, whose quoting rules cannot be followed safely");
    if (c != '\\') cmd_frame(lx)->word_lit = true;
    return;
  case F_PARAM:
    if (c == '}') pop(lx);
    else if (c == '\\') lx->esc = true;
    else if (c == '$') lx->dollar = true;
    else if (c == '\'' || c == '"') lose(lx, "after quotes inside ${...}, which shells read differently");
    else if (c == '`') lose(lx, "after a backquote `...`, whose quoting rules cannot be followed safely");
    return;
  case F_ARITH:
    if (f->closing) {
      if (c == ')') pop(lx);
      else lose(lx, "after a $((...)) that does not close with ))");
      f->closing = false;
    } else if (c == '(') {
      f->parens++;
    } else if (c == ')') {
      if (f->parens == 0) f->closing = true;
      else f->parens--;
    } else if (c == '$') {
      lx->dollar = true;
    } else if (c == '\'' || c == '"' || c == '`' || c == '\\') {
      lose(lx, "after quotes inside $((...))");
    }
    return;
  default: return;
  }
}

void dagd_shell_lex_feed(dagd_shell_lex *lx, const char *s, size_t n) {
  for (size_t i = 0; i < n && lx->lost == NULL; i++) feed_char(lx, s[i]);
}

int dagd_shell_lex_at(const dagd_shell_lex *lx, dagd_shell_ctx *ctx, bool *word_start, const char **why) {
  const char *w = NULL;
  if (lx->lost) w = lx->lost;
  else if (lx->esc) w = "right after a backslash, which would escape the value's first character";
  else if (lx->comment) w = "inside a # comment, which a newline in the value would end";
  else if (lx->dollar || lx->dollar_paren) w = "right after a $, which would join the value into an expansion";
  else {
    for (int i = 1; i < lx->depth && w == NULL; i++) {
      switch (lx->stack[i].kind) {
      case F_CMD: w = "inside a command substitution $(...)"; break;
      case F_PARAM: w = "inside a parameter expansion ${...}"; break;
      case F_ARITH: w = "inside an arithmetic expansion $((...))"; break;
      default: break;
      }
    }
  }
  if (w) {
    if (why) *why = w;
    return DAGD_ESYNTAX;
  }
  int k = lx->stack[lx->depth - 1].kind;
  *ctx = k == F_SQ ? DAGD_SHELL_SINGLE : k == F_DQ ? DAGD_SHELL_DOUBLE : DAGD_SHELL_UNQUOTED;
  const dagd_shell_frame *c = &lx->stack[0];
  if (word_start) *word_start = !c->word_lit && !c->dashdash;
  return 0;
}

void dagd_shell_lex_value(dagd_shell_lex *lx) {
  dagd_shell_frame *c = &lx->stack[0];
  c->word_lit = c->word_open = c->word_mixed = true;
  lx->lt = false;
}

void dagd_shell_quote_in(dagd_buf *out, dagd_shell_ctx ctx, const char *s, size_t n) {
  switch (ctx) {
  case DAGD_SHELL_UNQUOTED:
    /* One single-quoted word; a quote closes, is escaped, and reopens. */
    dagd_buf_putc(out, '\'');
    for (size_t i = 0; i < n; i++) {
      if (s[i] == '\'') dagd_buf_puts(out, "'\\''");
      else dagd_buf_putc(out, s[i]);
    }
    dagd_buf_putc(out, '\'');
    break;
  case DAGD_SHELL_SINGLE:
    /* Already inside '...': everything is literal but the quote itself. */
    for (size_t i = 0; i < n; i++) {
      if (s[i] == '\'') dagd_buf_puts(out, "'\\''");
      else dagd_buf_putc(out, s[i]);
    }
    break;
  case DAGD_SHELL_DOUBLE:
    /* Inside "...": the four characters that stay special get a backslash. */
    for (size_t i = 0; i < n; i++) {
      if (s[i] == '$' || s[i] == '`' || s[i] == '"' || s[i] == '\\') dagd_buf_putc(out, '\\');
      dagd_buf_putc(out, s[i]);
    }
    break;
  }
}

void dagd_shell_quote(dagd_buf *out, const char *s) { dagd_shell_quote_in(out, DAGD_SHELL_UNQUOTED, s, strlen(s)); }
