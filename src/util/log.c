/* The log sink: a default that writes one line per message to stderr, and
 * a hook for tests and the daemon to route messages elsewhere.
 * SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dagd/err.h"
#include "dagd/log.h"
#include "dagd/time.h"

dagd_log_level dagd_log_threshold = DAGD_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void stderr_sink(void *data, dagd_log_level level, const char *component, const char *file,
                        int line, const char *msg) {
  char ts[32];
  dagd_time_format_utc(dagd_time_now(), ts);
  fprintf(stderr, "%s %-5s %s: %s\n", ts, level_names[level], component, msg);
}

static dagd_log_sink_cb sink = stderr_sink;
static void *sink_data;

void dagd_log_set_sink(dagd_log_sink_cb cb, void *data) {
  sink = cb ? cb : stderr_sink;
  sink_data = cb ? data : NULL;
}

int dagd_log_level_parse(const char *s, dagd_log_level *out) {
  for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
    if (strcmp(s, level_names[i]) == 0) {
      *out = (dagd_log_level)i;
      return 0;
    }
  }
  return DAGD_EINVAL;
}

void dagd_log_write(dagd_log_level level, const char *component, const char *file, int line,
                    const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  sink(sink_data, level, component, file, line, msg);
}
