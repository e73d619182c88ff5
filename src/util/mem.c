/* Allocation that aborts on out-of-memory, and the growable byte buffer.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/util.h"

static void oom(size_t n) {
  fprintf(stderr, "dagd: out of memory allocating %zu bytes\n", n);
  abort();
}

void *dagd_malloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) oom(n);
  return p;
}

void *dagd_calloc(size_t count, size_t size) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (p == NULL) oom(count * size);
  return p;
}

void *dagd_realloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (q == NULL) oom(n);
  return q;
}

char *dagd_strdup(const char *s) { return dagd_strndup(s, strlen(s)); }

char *dagd_strndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *p = dagd_malloc(len + 1);
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

char *dagd_asprintf(const char *fmt, ...) {
  dagd_buf b;
  dagd_buf_init(&b);
  va_list ap;
  va_start(ap, fmt);
  dagd_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  return dagd_buf_steal(&b);
}

void dagd_buf_init(dagd_buf *b) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void dagd_buf_close(dagd_buf *b) {
  free(b->data);
  dagd_buf_init(b);
}

void dagd_buf_reset(dagd_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

static void buf_reserve(dagd_buf *b, size_t extra) {
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap *= 2;
  b->data = dagd_realloc(b->data, cap);
  b->cap = cap;
}

void dagd_buf_append(dagd_buf *b, const void *p, size_t n) {
  buf_reserve(b, n);
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void dagd_buf_puts(dagd_buf *b, const char *s) { dagd_buf_append(b, s, strlen(s)); }

void dagd_buf_putc(dagd_buf *b, char c) { dagd_buf_append(b, &c, 1); }

void dagd_buf_vprintf(dagd_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return;
  buf_reserve(b, (size_t)n);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void dagd_buf_printf(dagd_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  dagd_buf_vprintf(b, fmt, ap);
  va_end(ap);
}

void dagd_buf_json_str(dagd_buf *b, const char *s) {
  dagd_buf_putc(b, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"': dagd_buf_puts(b, "\\\""); break;
    case '\\': dagd_buf_puts(b, "\\\\"); break;
    case '\n': dagd_buf_puts(b, "\\n"); break;
    case '\r': dagd_buf_puts(b, "\\r"); break;
    case '\t': dagd_buf_puts(b, "\\t"); break;
    default:
      if (*p < 0x20)
        dagd_buf_printf(b, "\\u%04x", *p);
      else
        dagd_buf_putc(b, (char)*p);
    }
  }
  dagd_buf_putc(b, '"');
}

char *dagd_buf_steal(dagd_buf *b) {
  char *p = b->data;
  if (p == NULL) p = dagd_strdup("");
  dagd_buf_init(b);
  return p;
}
