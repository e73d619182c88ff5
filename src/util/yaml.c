/* YAML from JSON values: block style, with every scalar written so that it
 * reads back as the JSON value it came from under both YAML 1.1 (PyYAML,
 * whose resolvers take yes/on/12:30/2026-01-01 as bool, int and
 * timestamp) and YAML 1.2. The rule is to leave a string plain only when
 * no resolver can take it for anything else, and to quote the rest: a
 * quoted string is never wrong, a wrongly plain one changes the value.
 * SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/format.h"

/* Plain strings that YAML 1.1 reads as booleans or null, compared without
 * case (1.1 lists only some spellings; quoting a few more costs nothing). */
static bool reserved_word(const char *s, size_t n) {
  static const char *const words[] = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"};
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
    size_t m = strlen(words[i]);
    if (m != n) continue;
    size_t j = 0;
    while (j < n && (s[j] | 0x20) == words[i][j]) j++;
    if (j == n) return true;
  }
  return false;
}

static bool is_alpha(unsigned char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Can s be written plain? Only a string that starts with a letter, _ or /
 * (no number, date, .inf or indicator starts so) and holds ASCII letters,
 * digits, _ - . / + @, colons not followed by a space, and single inner
 * spaces; and is no reserved word. Run ids, paths, URLs and states stay
 * readable; anything else is quoted. */
static bool plain_ok(const char *s, size_t n) {
  if (n == 0 || n > 200) return false;
  unsigned char c0 = (unsigned char)s[0];
  if (!is_alpha(c0) && c0 != '_' && c0 != '/') return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (is_alpha(c) || is_digit(c) || (c != 0 && strchr("_-./+@", c) != NULL)) continue;
    if ((c == ':' || c == ' ') && i + 1 < n && s[i + 1] != ' ') continue;
    return false;
  }
  return !reserved_word(s, n);
}

/* Decodes one UTF-8 sequence at s (jansson strings are valid UTF-8);
 * returns its length and the code point in *cp. */
static size_t utf8_next(const unsigned char *s, size_t left, unsigned *cp) {
  unsigned c = s[0];
  size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  if (len > left) len = 1;
  *cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
  for (size_t i = 1; i < len; i++) *cp = (*cp << 6) | (s[i] & 0x3F);
  return len;
}

/* Code points a YAML stream may not hold raw, or that a YAML 1.1 reader
 * takes as a line break (NEL, LS, PS) or strips (BOM). */
static bool needs_escape(unsigned cp) {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF ||
         cp == 0xFFFE || cp == 0xFFFF;
}

static void put_quoted(dagd_buf *o, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  dagd_buf_putc(o, '"');
  for (size_t i = 0; i < n;) {
    unsigned cp;
    size_t len = utf8_next(p + i, n - i, &cp);
    if (cp == '"') dagd_buf_puts(o, "\\\"");
    else if (cp == '\\') dagd_buf_puts(o, "\\\\");
    else if (cp == '\n') dagd_buf_puts(o, "\\n");
    else if (cp == '\t') dagd_buf_puts(o, "\\t");
    else if (cp == '\r') dagd_buf_puts(o, "\\r");
    else if (cp <= 0xFF && needs_escape(cp)) dagd_buf_printf(o, "\\x%02X", cp);
    else if (needs_escape(cp)) dagd_buf_printf(o, "\\u%04X", cp);
    else dagd_buf_append(o, p + i, len);
    i += len;
  }
  dagd_buf_putc(o, '"');
}

/* A literal block (|) suits a multi-line string whose characters all
 * print and whose first line is there and starts with no blank (so the
 * reader's indentation guess is right without an indicator). */
static bool literal_ok(const char *s, size_t n) {
  if (n < 2 || memchr(s, '\n', n) == NULL || s[0] == ' ' || s[0] == '\t' || s[0] == '\n') return false;
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    unsigned cp;
    size_t len = utf8_next(p + i, n - i, &cp);
    if (cp != '\n' && cp != '\t' && needs_escape(cp)) return false;
    i += len;
  }
  return true;
}

static void put_indent(dagd_buf *o, int indent) {
  for (int i = 0; i < indent; i++) dagd_buf_putc(o, ' ');
}

/* The literal block's body: each line indented, empty lines left empty,
 * the chomping indicator keeping exactly the string's final newlines. */
static void put_literal(dagd_buf *o, const char *s, size_t n, int indent) {
  size_t trailing = 0;
  while (trailing < n && s[n - 1 - trailing] == '\n') trailing++;
  dagd_buf_puts(o, trailing == 0 ? "|-\n" : trailing == 1 ? "|\n" : "|+\n");
  size_t i = 0;
  while (i < n) {
    const char *nl = memchr(s + i, '\n', n - i);
    size_t end = nl ? (size_t)(nl - s) : n;
    if (end > i) {
      put_indent(o, indent);
      dagd_buf_append(o, s + i, end - i);
    }
    dagd_buf_putc(o, '\n');
    i = end + 1;
  }
}

/* A real as YAML 1.1 reads a float: the mantissa with a decimal point,
 * the exponent (if any) with a sign ("1e300" would read as a string). */
static void put_real(dagd_buf *o, const json_t *v) {
  char *text = json_dumps(v, JSON_ENCODE_ANY);
  const char *t = text ? text : "0.0";
  const char *e = strpbrk(t, "eE");
  size_t mant = e ? (size_t)(e - t) : strlen(t);
  dagd_buf_append(o, t, mant);
  if (memchr(t, '.', mant) == NULL) dagd_buf_puts(o, ".0");
  if (e) {
    dagd_buf_putc(o, 'e');
    if (e[1] != '+' && e[1] != '-') dagd_buf_putc(o, '+');
    dagd_buf_puts(o, e + 1);
  }
  free(text);
}

/* A scalar, after "key:" or "-" (leading space included) or at the start
 * of a document, through its final newline. */
static void put_scalar(dagd_buf *o, const json_t *v, int indent, bool lead) {
  if (lead) dagd_buf_putc(o, ' ');
  switch (json_typeof(v)) {
  case JSON_STRING: {
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (plain_ok(s, n)) dagd_buf_append(o, s, n);
    else if (literal_ok(s, n)) {
      put_literal(o, s, n, indent);
      return;
    } else put_quoted(o, s, n);
    break;
  }
  case JSON_INTEGER: dagd_buf_printf(o, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
  case JSON_REAL: put_real(o, v); break;
  case JSON_TRUE: dagd_buf_puts(o, "true"); break;
  case JSON_FALSE: dagd_buf_puts(o, "false"); break;
  case JSON_OBJECT: dagd_buf_puts(o, "{}"); break;
  case JSON_ARRAY: dagd_buf_puts(o, "[]"); break;
  default: dagd_buf_puts(o, "null"); break;
  }
  dagd_buf_putc(o, '\n');
}

static bool is_nested(const json_t *v) {
  return (json_is_object(v) && json_object_size(v) > 0) || (json_is_array(v) && json_array_size(v) > 0);
}

static void put_seq(dagd_buf *o, const json_t *a, int indent, bool first_inline);

static void put_map(dagd_buf *o, const json_t *obj, int indent, bool first_inline) {
  const char *k;
  const json_t *v;
  bool first = true;
  json_object_foreach((json_t *)obj, k, v) {
    if (!first || !first_inline) put_indent(o, indent);
    first = false;
    size_t kn = strlen(k);
    dagd_buf key;
    dagd_buf_init(&key);
    if (plain_ok(k, kn)) dagd_buf_append(&key, k, kn);
    else put_quoted(&key, k, kn);
    /* An implicit key may be at most 1024 characters long: a longer one
     * takes the explicit "? key" form. */
    if (key.len > 1000) {
      dagd_buf_puts(o, "? ");
      dagd_buf_append(o, key.data, key.len);
      dagd_buf_putc(o, '\n');
      put_indent(o, indent);
    } else {
      dagd_buf_append(o, key.data, key.len);
    }
    dagd_buf_close(&key);
    dagd_buf_putc(o, ':');
    if (json_is_object(v) && is_nested(v)) {
      dagd_buf_putc(o, '\n');
      put_map(o, v, indent + 2, false);
    } else if (json_is_array(v) && is_nested(v)) {
      dagd_buf_putc(o, '\n');
      put_seq(o, v, indent + 2, false);
    } else {
      put_scalar(o, v, indent + 2, true);
    }
  }
}

static void put_seq(dagd_buf *o, const json_t *a, int indent, bool first_inline) {
  size_t i;
  const json_t *v;
  json_array_foreach((json_t *)a, i, v) {
    if (i > 0 || !first_inline) put_indent(o, indent);
    dagd_buf_putc(o, '-');
    if (json_is_object(v) && is_nested(v)) {
      dagd_buf_putc(o, ' ');
      put_map(o, v, indent + 2, true);
    } else if (json_is_array(v) && is_nested(v)) {
      dagd_buf_putc(o, ' ');
      put_seq(o, v, indent + 2, true);
    } else {
      put_scalar(o, v, indent + 2, true);
    }
  }
}

void dagd_yaml_dump(const json_t *v, dagd_buf *out) {
  if (json_is_object(v) && is_nested(v)) put_map(out, v, 0, false);
  else if (json_is_array(v) && is_nested(v)) put_seq(out, v, 0, false);
  else put_scalar(out, v, 2, false);
}
