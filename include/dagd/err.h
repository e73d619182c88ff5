/* Error codes and the caller-owned error record every fallible call fills.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_ERR_H
#define DAGD_ERR_H

#include <stddef.h>

/* One list generates the enum, dagd_strerror and dagd_err_name. */
#define DAGD_ERRNO_MAP(X)                                   \
  X(EINVAL, "invalid argument")                             \
  X(ENOMEM, "out of memory")                                \
  X(ENOENT, "not found")                                    \
  X(EEXIST, "already exists")                               \
  X(EIO, "i/o error")                                       \
  X(ERANGE, "value out of range")                           \
  X(ESYNTAX, "syntax error")                                \
  X(ECYCLE, "dependency cycle")                             \
  X(ETIMEDOUT, "time limit exceeded")                       \
  X(ELIMIT, "resource limit exceeded")                      \
  X(ELUA, "lua error")                                     \
  X(ETOOBIG, "too large")

typedef enum {
  DAGD_OK = 0,
#define X(name, msg) DAGD_##name,
  DAGD__ERR_FIRST_ = -1000,
  DAGD_ERRNO_MAP(X)
#undef X
} dagd_errno;

/* The detail of a failure. The first error set wins: later calls to
 * dagd_err_set on an already-set record change nothing, so the root cause
 * survives. `cause` keeps a foreign code (errno, SQLite, Lua) when there is
 * one. Messages are one line. */
typedef struct dagd_err {
  int code;
  int cause;
  char msg[512];
} dagd_err;

void dagd_err_init(dagd_err *err);
/* Sets code and message unless already set; returns code so callers can
 * `return dagd_err_set(...)`. err may be NULL. */
int dagd_err_set(dagd_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int dagd_err_is_set(const dagd_err *err);

const char *dagd_strerror(int code);
const char *dagd_err_name(int code);

#endif
