/* Unit tests for secret masking: whole texts, overlaps, JSON forms, and
 * streams cut anywhere giving exactly what masking the whole text gives.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dagd/mask.h"
#include "dagd/util.h"

static char *masked(const dagd_mask *m, const char *text) {
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_buf_puts(&b, text);
  dagd_mask_text(m, &b);
  return dagd_buf_steal(&b);
}

#define ASSERT_MASKED(m, in, want)      \
  do {                                  \
    char *got_ = masked((m), (in));     \
    assert_string_equal(got_, (want));  \
    free(got_);                         \
  } while (0)

static void test_whole_text(void **state) {
  dagd_mask m;
  dagd_mask_init(&m);
  ASSERT_MASKED(&m, "nothing to mask", "nothing to mask");
  assert_true(dagd_mask_add(&m, "s3cr3t"));
  assert_false(dagd_mask_add(&m, "s3cr3t")); /* already there */
  assert_false(dagd_mask_add(&m, "abc"));    /* too short to mask */
  assert_false(dagd_mask_add(&m, ""));
  assert_false(dagd_mask_add(&m, NULL));
  assert_int_equal(m.n, 1);
  assert_null(m.values[1]);
  ASSERT_MASKED(&m, "s3cr3t", "***");
  ASSERT_MASKED(&m, "token=s3cr3t; again s3cr3ts3cr3t abc", "token=***; again ****** abc");
  ASSERT_MASKED(&m, "s3cr3", "s3cr3");
  assert_true(dagd_mask_has(&m, "s3cr3t"));
  assert_false(dagd_mask_has(&m, "s3cr3"));
  char *env[] = {"PATH=/bin", "DAGD_SECRET_A=from-env-1", "DAGD_SECRET_SHORT=ab", "XDAGD_SECRET_B=nope-nope", NULL};
  dagd_mask_add_env_secrets(&m, env);
  assert_true(dagd_mask_has(&m, "from-env-1"));
  assert_false(dagd_mask_has(&m, "nope-nope"));
  assert_int_equal(m.n, 2);
  dagd_mask_close(&m);
}

static void test_overlaps_leak_nothing(void **state) {
  dagd_mask m;
  dagd_mask_init(&m);
  dagd_mask_add(&m, "abcd");
  dagd_mask_add(&m, "cdefgh");
  dagd_mask_add(&m, "abcdXYZ");
  /* Longest first in the list. */
  assert_string_equal(m.values[0], "abcdXYZ");
  assert_string_equal(m.values[2], "abcd");
  ASSERT_MASKED(&m, "1abcdefgh2", "1***2");   /* two overlapping: one run */
  ASSERT_MASKED(&m, "1abcdXYZ2", "1***2");    /* the longer one whole */
  ASSERT_MASKED(&m, "abcdabcd", "******");     /* adjacent, not overlapping */
  dagd_mask_close(&m);
}

static void test_json_form(void **state) {
  dagd_mask m;
  dagd_mask_init(&m);
  assert_true(dagd_mask_add_secret(&m, "pa\"ss\\wd\n"));
  assert_int_equal(m.n, 2);
  ASSERT_MASKED(&m, "raw pa\"ss\\wd\n end", "raw *** end");
  ASSERT_MASKED(&m, "{\"p\":\"pa\\\"ss\\\\wd\\n\"}", "{\"p\":\"***\"}");
  dagd_mask_close(&m);
}

/* Feeds text in the pieces given by cuts (increasing offsets). */
static char *streamed(dagd_mask *m, const char *text, size_t len, const size_t *cuts, size_t n_cuts) {
  dagd_buf out;
  dagd_buf_init(&out);
  size_t at = 0;
  for (size_t i = 0; i <= n_cuts; i++) {
    size_t to = i < n_cuts ? cuts[i] : len;
    dagd_mask_feed(m, text + at, to - at, &out);
    /* Never more held back than could still start a secret. */
    assert_true(m->held.len < m->longest || m->longest == 0);
    at = to;
  }
  dagd_mask_end(m, &out);
  assert_int_equal(m->held.len, 0);
  dagd_buf_putc(&out, '\0');
  out.len--;
  return dagd_buf_steal(&out);
}

static void test_stream_split_secret(void **state) {
  dagd_mask m;
  dagd_mask_init(&m);
  dagd_mask_add(&m, "password123");
  const char *text = "x password123 y passw";
  size_t cuts[] = {5, 9, 20};
  char *got = streamed(&m, text, strlen(text), cuts, 3);
  assert_string_equal(got, "x *** y passw");
  free(got);
  /* A stream ending inside a covered run, and one byte at a time. */
  size_t ones[20];
  for (size_t i = 0; i < 20; i++) ones[i] = i + 1;
  got = streamed(&m, "password123password123", 22, ones, 20);
  assert_string_equal(got, "******");
  free(got);
  dagd_mask_close(&m);
}

/* Property: over many random texts, secrets and cut points (a fixed seed,
 * small alphabets so that secrets overlap and nearly match often), the
 * stream gives exactly the whole text's result. */
static void test_stream_equals_whole(void **state) {
  unsigned seed = 12345;
#define RAND() (seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff)
  for (int round = 0; round < 3000; round++) {
    dagd_mask m;
    dagd_mask_init(&m);
    int n_secrets = 1 + (int)(RAND() % 4);
    for (int s = 0; s < n_secrets; s++) {
      char v[16];
      size_t len = 4 + RAND() % 6;
      for (size_t k = 0; k < len; k++) v[k] = (char)('a' + RAND() % 3);
      v[len] = '\0';
      dagd_mask_add(&m, v);
    }
    char text[300];
    size_t len = RAND() % sizeof(text);
    for (size_t k = 0; k < len; k++) text[k] = (char)('a' + RAND() % 3);
    text[len] = '\0';
    size_t cuts[12], n_cuts = 0, at = 0;
    while (n_cuts < 12 && len > 0 && at < len) {
      at += 1 + RAND() % 40;
      if (at < len) cuts[n_cuts++] = at;
    }
    char *whole = masked(&m, text);
    char *stream = streamed(&m, text, len, cuts, n_cuts);
    if (strcmp(whole, stream) != 0)
      fail_msg("round %d: text %s\nwhole  %s\nstream %s", round, text, whole, stream);
    /* No secret survives masking. */
    for (size_t s = 0; s < m.n; s++) assert_null(strstr(whole, m.values[s]));
    free(whole);
    free(stream);
    dagd_mask_close(&m);
  }
#undef RAND
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_whole_text),
      cmocka_unit_test(test_overlaps_leak_nothing),
      cmocka_unit_test(test_json_form),
      cmocka_unit_test(test_stream_split_secret),
      cmocka_unit_test(test_stream_equals_whole),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
