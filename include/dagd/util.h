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
/* The candidate nearest to name (a typo of it: at most 1 edit for a name
 * of up to 4 characters, else 2; case ignored), for a "did you mean";
 * NULL when none is that near. Returns one of candidates. */
const char *dagd_str_suggest(const char *name, const char *const *candidates, size_t n);

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
