/* Fuzzes shell-context quoting: a command template PREFIX{{ conf.v }}SUFFIX
 * (the input up to a 0x00 byte, split at a 0x01 byte) rendered with a
 * random value (the rest) and with a plain sentinel. A reference word
 * splitter, written apart from the renderer's lexer, parses both
 * renderings: the value's must have the same words and operators, the
 * sentinel's word holding the value verbatim in its place. A template
 * refused for its place is refused whatever the value; a value is refused
 * otherwise only when it would begin an option word ('-').
 * SPDX-License-Identifier: MIT */
#include <stdbool.h>

#include "dagd/err.h"
#include "dagd/template.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Two sentinels that differ in their first and last characters: where the
 * splits of their renderings differ is the value's place. */
#define SENTINEL "Qz7sentinel"
#define SENTINEL2 "Jw4marker"

/* The reference splitter: tokens (words after quote removal, with $...
 * expansions kept as their raw text; operators as "\x02" + the operator)
 * separated by "\x1f" in out. false: the text uses something it does not
 * model (backquotes, here-documents, $'...', case in $(...), unbalanced
 * quotes), and the case is skipped. */
typedef struct ref {
  const char *p;
  dagd_buf *out;
  bool in_word;
} ref;

static void ref_end_word(ref *r) {
  if (r->in_word) dagd_buf_putc(r->out, '\x1f');
  r->in_word = false;
}

static bool ref_skip_cmdsub(ref *r, int depth);

/* After a $ (r->p on the character after it); appends the raw text of the
 * expansion. */
static bool ref_dollar(ref *r) {
  const char *start = r->p - 1;
  char c = *r->p;
  if (c == '{') {
    while (*r->p && *r->p != '}') {
      if (*r->p == '\'' || *r->p == '"' || *r->p == '`' || *r->p == '\\' || *r->p == '$') return false;
      r->p++;
    }
    if (*r->p != '}') return false;
    r->p++;
  } else if (c == '(') {
    r->p++;
    if (!ref_skip_cmdsub(r, 0)) return false;
  } else if (c == '\'' || c == '"') {
    return false;
  } else if (c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) {
    while (*r->p == '_' || (*r->p >= 'A' && *r->p <= 'Z') || (*r->p >= 'a' && *r->p <= 'z') ||
           (*r->p >= '0' && *r->p <= '9'))
      r->p++;
  } else if (c != '\0' && strchr("$@*#?-!0123456789", c)) {
    r->p++;
  }
  dagd_buf_append(r->out, start, (size_t)(r->p - start));
  r->in_word = true;
  return true;
}

/* Skips the body of $( ... ) up to and past its ), r->p just inside. */
static bool ref_skip_cmdsub(ref *r, int depth) {
  if (depth > 8) return false;
  int parens = 0;
  bool word_start = true;
  while (*r->p) {
    char c = *r->p++;
    if (c == '\\') {
      if (!*r->p) return false;
      r->p++;
    } else if (c == '\'') {
      while (*r->p && *r->p != '\'') r->p++;
      if (!*r->p++) return false;
    } else if (c == '"') {
      while (*r->p && *r->p != '"') {
        if (*r->p == '\\' && r->p[1]) r->p++;
        else if (*r->p == '`') return false;
        else if (r->p[0] == '$' && r->p[1] == '(') {
          r->p += 2;
          if (!ref_skip_cmdsub(r, depth + 1)) return false;
          continue;
        } else if (r->p[0] == '$' && r->p[1] == '{') {
          return false;
        }
        r->p++;
      }
      if (!*r->p++) return false;
    } else if (c == '`' || (c == '<' && *r->p == '<')) {
      return false;
    } else if (c == '$' && *r->p == '(') {
      r->p++;
      if (!ref_skip_cmdsub(r, depth + 1)) return false;
    } else if (c == '$' && (*r->p == '{' || *r->p == '\'' || *r->p == '"')) {
      return false;
    } else if (c == '#' && word_start) {
      while (*r->p && *r->p != '\n') r->p++;
    } else if (c == '(') {
      parens++;
    } else if (c == ')') {
      if (parens-- == 0) return true;
    } else if (c == 'c' && word_start && strncmp(r->p, "ase", 3) == 0) {
      return false;
    }
    word_start = strchr(" \t\n;&|()<>", c) != NULL;
  }
  return false;
}

static bool ref_split(const char *s, dagd_buf *out) {
  ref r = {.p = s, .out = out};
  while (*r.p) {
    char c = *r.p++;
    if (c == ' ' || c == '\t') {
      ref_end_word(&r);
    } else if (strchr("\n;&|()<>", c)) {
      if (c == '<' && *r.p == '<') return false;
      ref_end_word(&r);
      dagd_buf_putc(out, '\x02');
      dagd_buf_putc(out, c);
      dagd_buf_putc(out, '\x1f');
    } else if (c == '#' && !r.in_word) {
      while (*r.p && *r.p != '\n') r.p++;
    } else if (c == '\\') {
      if (!*r.p) return false;
      if (*r.p != '\n') {
        dagd_buf_putc(out, *r.p);
        r.in_word = true;
      }
      r.p++;
    } else if (c == '\'') {
      r.in_word = true;
      while (*r.p && *r.p != '\'') dagd_buf_putc(out, *r.p++);
      if (!*r.p++) return false;
    } else if (c == '"') {
      r.in_word = true;
      while (*r.p && *r.p != '"') {
        char d = *r.p++;
        if (d == '\\') {
          if (!*r.p) return false;
          if (strchr("$`\"\\\n", *r.p)) {
            if (*r.p != '\n') dagd_buf_putc(out, *r.p);
            r.p++;
            continue;
          }
          dagd_buf_putc(out, d);
        } else if (d == '`') {
          return false;
        } else if (d == '$') {
          if (*r.p == '\'' || *r.p == '"') {
            dagd_buf_putc(out, d); /* a literal $ inside "..." */
          } else if (!ref_dollar(&r)) {
            return false;
          }
        } else {
          dagd_buf_putc(out, d);
        }
      }
      if (!*r.p++) return false;
    } else if (c == '`') {
      return false;
    } else if (c == '$') {
      if (!ref_dollar(&r)) return false;
    } else {
      dagd_buf_putc(out, c);
      r.in_word = true;
    }
  }
  ref_end_word(&r);
  return true;
}

static int render(const char *tmpl, const char *v, dagd_buf *out) {
  json_t *ctx = json_pack("{s:{s:s}}", "conf", "v", v);
  FUZZ_CHECK(ctx != NULL);
  dagd_template_opts opts = {.shell_quote = true};
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_template_render(tmpl, ctx, &opts, out, &err);
  if (rc < 0) FUZZ_CHECK(err.msg[0] != '\0');
  json_decref(ctx);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return -1;
  char *in = fuzz_cstr(data, size);
  const uint8_t *nul = memchr(data, 0, size);
  const char *v = nul ? in + (nul - data) + 1 : "";
  char *cut = strchr(in, '\1');
  const char *prefix = in, *suffix = "";
  if (cut) {
    *cut = '\0';
    suffix = cut + 1;
  }
  json_t *jv = json_string(v); /* a conf value is UTF-8 text */
  bool utf8 = jv != NULL;
  json_decref(jv);
  /* One template, and the sentinel nowhere else. */
  if (strstr(prefix, "{{") || strstr(suffix, "{{") || strstr(prefix, "}}") || strstr(suffix, "}}") ||
      strstr(prefix, SENTINEL) || strstr(suffix, SENTINEL) || strpbrk(v, "\x1f\x02") != NULL || !utf8) {
    free(in);
    return -1;
  }
  size_t tlen = strlen(prefix) + strlen(suffix) + 16;
  char *tmpl = malloc(tlen);
  snprintf(tmpl, tlen, "%s{{ conf.v }}%s", prefix, suffix);
  dagd_buf rs, r2, rv, ws, w2, wv, want;
  dagd_buf_init(&rs);
  dagd_buf_init(&r2);
  dagd_buf_init(&rv);
  dagd_buf_init(&ws);
  dagd_buf_init(&w2);
  dagd_buf_init(&wv);
  dagd_buf_init(&want);
  int rc_s = render(tmpl, SENTINEL, &rs);
  int rc_2 = render(tmpl, SENTINEL2, &r2);
  int rc_v = render(tmpl, v, &rv);
  FUZZ_CHECK((rc_s < 0) == (rc_2 < 0));
  if (rc_s < 0) FUZZ_CHECK(rc_v < 0);               /* refused for its place, whatever the value */
  if (rc_s == 0 && rc_v < 0) FUZZ_CHECK(v[0] == '-'); /* else only an option-like value */
  if (rc_s == 0 && rc_v == 0 && ref_split(rs.data ? rs.data : "", &ws)) {
    FUZZ_CHECK(ref_split(r2.data ? r2.data : "", &w2));
    const char *a = ws.data ? ws.data : "", *b = w2.data ? w2.data : "";
    size_t pre = 0, post = 0;
    while (pre < ws.len && pre < w2.len && a[pre] == b[pre]) pre++;
    while (post < ws.len - pre && post < w2.len - pre && a[ws.len - 1 - post] == b[w2.len - 1 - post]) post++;
    /* The sentinel stands whole, in one word (no separator around it was
     * eaten), and nowhere else. */
    FUZZ_CHECK(ws.len - pre - post == strlen(SENTINEL) && memcmp(a + pre, SENTINEL, strlen(SENTINEL)) == 0);
    FUZZ_CHECK(w2.len - pre - post == strlen(SENTINEL2) && memcmp(b + pre, SENTINEL2, strlen(SENTINEL2)) == 0);
    dagd_buf_append(&want, a, pre);
    dagd_buf_puts(&want, v);
    dagd_buf_append(&want, a + ws.len - post, post);
    FUZZ_CHECK(ref_split(rv.data ? rv.data : "", &wv));
    FUZZ_CHECK(wv.len == want.len && memcmp(wv.data, want.data, want.len) == 0);
  }
  dagd_buf_close(&r2);
  dagd_buf_close(&w2);
  dagd_buf_close(&rs);
  dagd_buf_close(&rv);
  dagd_buf_close(&ws);
  dagd_buf_close(&wv);
  dagd_buf_close(&want);
  free(tmpl);
  free(in);
  return 0;
}
