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

/* The id patterns of DESIGN.md section 3, for messages. */
#define DAGD_ID_PATTERN "^[A-Za-z0-9_.-]{1,250}$"
#define DAGD_RUN_ID_PATTERN "^[A-Za-z0-9_.~:+-]{1,250}$"
/* Why id is not a valid DAG or task id (run_id false) or run id (run_id
 * true), as the end of a sentence ("must not be made only of dots"), or
 * NULL when it is valid. Valid ids match their pattern and are not made
 * only of dots, so an id is always one path component below the folder
 * it names and one URL segment: no "/", NUL, "." or "..". The string is
 * static. This is the one check every way in (API, loader, CLI) uses. */
const char *dagd_id_problem(const char *id, bool run_id);
/* True when id is a valid DAG or task id (also used for event, pool and
 * output-file names). */
bool dagd_id_valid(const char *id);
/* True when id is a valid run id. */
bool dagd_run_id_valid(const char *id);

bool dagd_str_has_suffix(const char *s, const char *suffix);
/* The candidate closest to name for a "did you mean" hint: at most one
 * edit away for a name of up to 4 bytes, two otherwise (case-insensitive;
 * an edit is an insertion, deletion, substitution or swap of two adjacent
 * bytes), ties to the first in byte order; NULL when none is that close.
 * Returns one of candidates (NULL entries are skipped). */
const char *dagd_str_suggest(const char *name, const char *const *candidates, size_t n);
/* The length of the scheme://authority prefix of an http or https URL
 * (up to the first '/', '?' or '#' after "://"), 0 when url is not
 * one. */
size_t dagd_url_authority_len(const char *url);
/* The origin of an http(s) URL, lowercased ("https://api.example.com:8443");
 * with whole, url must be nothing more (a trailing '/' allowed). A new
 * heap string, or NULL when url is not such a URL. */
char *dagd_url_origin(const char *url, bool whole);

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

struct dagd_err;
/* Removes path and everything under it, but only when it lies strictly
 * below root: path must be spelled as root followed by one or more
 * components, none of them "." or "..", and none of the folders on the way
 * nor path itself may be a symbolic link (each is opened relative to the
 * one before with O_NOFOLLOW, so the check and the removal see the same
 * files). Inside the tree, symbolic links are removed, never followed.
 * A path that does not exist is not an error. Returns 0, DAGD_EINVAL (a
 * refused path, nothing removed) or DAGD_EIO (cause: errno). This is the
 * only recursive removal in dagd. */
int dagd_fs_remove_tree_within(const char *root, const char *path, struct dagd_err *err);
/* Takes an exclusive lock on the file at path (created 0600 if missing),
 * held until *fd_out is closed or the process ends, and writes this
 * process's pid in it. The lock is a POSIX record lock: a process that
 * dies, even by SIGKILL, releases it; forked children do not inherit it;
 * a second open of the same file in the holding process must not be
 * closed while it is held. Returns 0 with *fd_out; DAGD_EEXIST when
 * another process holds it, with *holder (may be NULL) its pid or 0 when
 * unknown; DAGD_EIO otherwise (cause: errno). */
int dagd_fs_lock_pidfile(const char *path, int *fd_out, long *holder, struct dagd_err *err);
/* mkdir -p of the folder holding path, mode 0700. Returns 0 or -1. */
int dagd_mkdirs_for(const char *path);
/* An anonymous in-memory file (memfd, close-on-exec) holding len bytes of
 * data, positioned at its start: how secrets and specs are handed to a
 * child without touching the disk. Returns the fd, or -1 with errno set. */
int dagd_memory_file(const char *name, const void *data, size_t len);
/* Writes len bytes of data to path, replacing what was there, as a file
 * only its owner can read (0600, whatever the umask; a symbolic link at
 * path is refused). Returns 0, or DAGD_EIO with the cause (errno). */
int dagd_fs_write_private(const char *path, const void *data, size_t len, struct dagd_err *err);

#endif
