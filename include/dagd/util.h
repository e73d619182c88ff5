/* Allocation helpers that abort on out-of-memory, a growable byte buffer and
 * small string helpers shared by every module.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_UTIL_H
#define DAGD_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *dagd_malloc(size_t n);
void *dagd_calloc(size_t count, size_t size);
void *dagd_realloc(void *p, size_t n);
char *dagd_strdup(const char *s);
char *dagd_strndup(const char *s, size_t n);
/* printf into a new heap string; free with free(). */
char *dagd_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define DAGD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Growable, always NUL-terminated byte buffer (caller-allocated). */
typedef struct dagd_buf {
  char *data;
  size_t len;
  size_t cap;
} dagd_buf;

void dagd_buf_init(dagd_buf *b);
void dagd_buf_close(dagd_buf *b);
void dagd_buf_reset(dagd_buf *b);
void dagd_buf_append(dagd_buf *b, const void *p, size_t n);
void dagd_buf_puts(dagd_buf *b, const char *s);
void dagd_buf_putc(dagd_buf *b, char c);
void dagd_buf_printf(dagd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dagd_buf_vprintf(dagd_buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal (quotes and escapes included). */
void dagd_buf_json_str(dagd_buf *b, const char *s);
/* Takes the heap string out of the buffer; the buffer is left empty. */
char *dagd_buf_steal(dagd_buf *b);

/* True when id matches ^[A-Za-z0-9_.-]{1,250}$ (DAG and task ids). */
bool dagd_id_valid(const char *id);
/* True when id matches ^[A-Za-z0-9_.~:+-]{1,250}$ (client-given run ids). */
bool dagd_run_id_valid(const char *id);

bool dagd_str_has_suffix(const char *s, const char *suffix);
/* The candidate closest to name for a "did you mean" hint: at most one
 * edit away for a name of up to 4 bytes, two otherwise (case-insensitive;
 * an edit is an insertion, deletion, substitution or swap of two adjacent
 * bytes), ties to the first in byte order; NULL when none is that close.
 * Returns one of candidates (NULL entries are skipped). */
const char *dagd_str_suggest(const char *name, const char *const *candidates, size_t n);

/* The reason phrase of an HTTP status (RFC 9110: "Not Found"), "Unknown"
 * for a status it does not know. */
const char *dagd_status_reason(int status);

/* The media type of a problem document (RFC 9457, formerly RFC 7807). */
#define DAGD_PROBLEM_CONTENT_TYPE "application/problem+json"

/* Appends the problem document of an error and a newline to body:
 * {"type": "about:blank", "title": <the status's reason phrase>, "status",
 * "detail": detail}. Every error dagd answers, from the API's handlers, the
 * HTTP server and the UI alike, is made here. detail NULL is the title;
 * detail that is not UTF-8 is replaced by a note saying so. */
void dagd_problem_write(dagd_buf *body, int status, const char *detail);

/* Removes a folder and everything under it (symlinks are removed, never
 * followed). A path that does not exist is not an error. Returns 0 or -1
 * with errno set. */
int dagd_rmtree(const char *path);
/* mkdir -p of the folder holding path, mode 0700. Returns 0 or -1. */
int dagd_mkdirs_for(const char *path);
/* An anonymous in-memory file (memfd, close-on-exec) holding len bytes of
 * data, positioned at its start: how secrets and specs are handed to a
 * child without touching the disk. Returns the fd, or -1 with errno set. */
int dagd_memory_file(const char *name, const void *data, size_t len);

#endif
