/* Small string predicates: id patterns and suffixes.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "dagd/util.h"

static bool id_match(const char *id, const char *extra) {
  if (id == NULL) return false;
  size_t n = 0;
  for (const char *p = id; *p; p++, n++) {
    char c = *p;
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              strchr(extra, c) != NULL;
    if (!ok || n >= 250) return false;
  }
  return n >= 1;
}

bool dagd_id_valid(const char *id) { return id_match(id, "_.-"); }

bool dagd_run_id_valid(const char *id) { return id_match(id, "_.~:+-"); }

bool dagd_str_has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && memcmp(s + n - m, suffix, m) == 0;
}
