/* Fuzzes the $DAGD_OUTPUT parser (one JSON object, or key=value lines):
 * what it accepts is an object of string values under valid keys.
 * SPDX-License-Identifier: MIT */
#include "dagd/err.h"
#include "dagd/command.h"
#include <ctype.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int key_ok(const char *k) {
  size_t n = strlen(k);
  if (n < 1 || n > 250) return 0;
  for (; *k; k++)
    if (!(isalnum((unsigned char)*k) || *k == '_' || *k == '.' || *k == '-')) return 0;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 80 * 1024) return -1;
  json_t *out = NULL;
  dagd_err err;
  dagd_err_init(&err);
  /* Not NUL-terminated on purpose: the parser takes a length. */
  char *copy = malloc(size ? size : 1);
  if (size) memcpy(copy, data, size);
  int rc = dagd_command_parse_outputs(copy, size, &out, &err);
  if (rc == 0) {
    FUZZ_CHECK(json_is_object(out));
    const char *k;
    json_t *v;
    json_object_foreach(out, k, v) {
      FUZZ_CHECK(key_ok(k));
      FUZZ_CHECK(json_is_string(v));
    }
    json_decref(out);
  } else {
    FUZZ_CHECK(err.msg[0] != '\0');
  }
  free(copy);
  return 0;
}
