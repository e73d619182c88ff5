/* json2yaml: reads JSON documents, one a line, on stdin and writes each as
 * YAML with dagd_yaml_dump, preceded by "---", for the round-trip test of
 * the emitter (tests/e2e/test_yaml.py) against a real YAML parser.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dagd/format.h"

int main(void) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int rc = 0;
  while ((n = getline(&line, &cap, stdin)) > 0) {
    json_error_t jerr;
    json_t *v = json_loadb(line, (size_t)n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (v == NULL) {
      fprintf(stderr, "json2yaml: line %d: %s\n", jerr.line, jerr.text);
      rc = 1;
      continue;
    }
    dagd_buf b;
    dagd_buf_init(&b);
    dagd_yaml_dump(v, &b);
    fputs("---\n", stdout);
    fwrite(b.data, 1, b.len, stdout);
    dagd_buf_close(&b);
    json_decref(v);
  }
  free(line);
  return rc;
}
