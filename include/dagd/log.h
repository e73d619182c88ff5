/* Logging: one macro that checks the level before evaluating its arguments,
 * records component, file and line, and writes to a pluggable sink so tests
 * can capture it.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_LOG_H
#define DAGD_LOG_H

typedef enum {
  DAGD_LOG_ERROR,
  DAGD_LOG_WARN,
  DAGD_LOG_INFO,
  DAGD_LOG_DEBUG,
} dagd_log_level;

typedef void (*dagd_log_sink_cb)(void *data, dagd_log_level level, const char *component,
                                 const char *file, int line, const char *msg);

extern dagd_log_level dagd_log_threshold;

/* Replaces the sink (NULL restores the default: one line on stderr). */
void dagd_log_set_sink(dagd_log_sink_cb cb, void *data);
/* Parses "error", "warn", "info", "debug"; returns 0 or DAGD_EINVAL. */
int dagd_log_level_parse(const char *s, dagd_log_level *out);
void dagd_log_write(dagd_log_level level, const char *component, const char *file, int line,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define DAGD_LOG(level, component, ...)                                      \
  do {                                                                       \
    if ((level) <= dagd_log_threshold)                                       \
      dagd_log_write((level), (component), __FILE__, __LINE__, __VA_ARGS__); \
  } while (0)

#endif
