/* The error record: first error wins, names and messages from one table.
 * SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dagd/err.h"

void dagd_err_init(dagd_err *err) {
  if (err == NULL) return;
  err->code = 0;
  err->cause = 0;
  err->msg[0] = '\0';
}

int dagd_err_is_set(const dagd_err *err) { return err != NULL && err->code != 0; }

int dagd_err_set(dagd_err *err, int code, const char *fmt, ...) {
  if (err == NULL || err->code != 0) return code;
  err->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
  va_end(ap);
  /* Messages are one line: fold any newline a foreign library gave us. */
  for (char *p = err->msg; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  return code;
}

const char *dagd_strerror(int code) {
  switch (code) {
  case 0: return "success";
#define X(name, msg) case DAGD_##name: return msg;
  DAGD_ERRNO_MAP(X)
#undef X
  default: return "unknown error";
  }
}

const char *dagd_err_name(int code) {
  switch (code) {
  case 0: return "OK";
#define X(name, msg) case DAGD_##name: return #name;
  DAGD_ERRNO_MAP(X)
#undef X
  default: return "UNKNOWN";
  }
}
