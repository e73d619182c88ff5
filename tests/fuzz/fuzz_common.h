/* Helpers shared by the libFuzzer targets: a NUL-terminated copy of the
 * input, and a check that aborts (so libFuzzer records the input) when an
 * invariant of the code under test does not hold.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_FUZZ_COMMON_H
#define DAGD_FUZZ_COMMON_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A heap copy of data[0..n) with a NUL after it; free with free(). */
static inline char *fuzz_cstr(const uint8_t *data, size_t n) {
  char *s = malloc(n + 1);
  if (!s) abort();
  if (n) memcpy(s, data, n);
  s[n] = '\0';
  return s;
}

#define FUZZ_CHECK(cond)                                                        \
  do {                                                                          \
    if (!(cond)) {                                                              \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                  \
    }                                                                           \
  } while (0)

#endif
