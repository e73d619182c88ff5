/* How dagctl prints: documents as JSON or YAML (-o), and the width its
 * tables fit to.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "dagd/format.h"
#include "internal.h"

void cli_print_doc(const cli *c, const json_t *doc) {
  if (c->yaml) {
    dagd_buf b;
    dagd_buf_init(&b);
    dagd_yaml_dump(doc, &b);
    fwrite(b.data, 1, b.len, stdout);
    dagd_buf_close(&b);
  } else {
    json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
    fputc('\n', stdout);
  }
}

void cli_print_body(const cli *c, const char *body) {
  if (!c->yaml) {
    fputs(body ? body : "", stdout);
    return;
  }
  json_error_t jerr;
  json_t *doc = json_loads(body ? body : "", JSON_DECODE_ANY, &jerr);
  if (doc == NULL) {
    /* Not JSON (it always is): show it as it came rather than nothing. */
    fprintf(stderr, "dagctl: the answer is not JSON (%s); as it came:\n", jerr.text);
    fputs(body ? body : "", stdout);
    return;
  }
  cli_print_doc(c, doc);
  json_decref(doc);
}

int cli_columns(void) {
  struct winsize ws;
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  const char *env = getenv("COLUMNS");
  if (env != NULL) {
    char *end;
    long n = strtol(env, &end, 10);
    if (*env != '\0' && *end == '\0' && n > 0 && n < 100000) return (int)n;
  }
  return 80;
}
