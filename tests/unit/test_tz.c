/* Unit tests of the tz module: TZif loading (system files and hand-built
 * v1/v2/v3 files), offsets and transitions in UTC, Europe/Berlin,
 * America/New_York, Australia/Lord_Howe and Asia/Kolkata, POSIX footer
 * rules, and wall time -> instant mapping in gaps and overlaps. glibc's
 * localtime_r (with TZ set here, in the test only) cross-checks offsets.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/tz/internal.h"
#include "dagd/err.h"
#include "dagd/time.h"
#include "dagd/tz.h"
#include "dagd/util.h"

static int64_t utc(int y, int mo, int d, int h, int mi, int s) {
  dagd_tm tm = {.year = y, .mon = mo, .mday = d, .hour = h, .min = mi, .sec = s};
  return dagd_tm_to_epoch(&tm);
}

static dagd_tz *load(const char *name) {
  dagd_tz *tz = NULL;
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_tz_load(name, &tz, &err);
  if (rc != 0) fail_msg("load %s: %s", name, err.msg);
  return tz;
}

/* glibc's offset for zone spec `tzspec` (":Europe/Berlin" or a POSIX
 * string) at t: the reference we compare against. */
static long glibc_offset(const char *tzspec, int64_t t) {
  setenv("TZ", tzspec, 1);
  tzset();
  time_t tt = (time_t)t;
  struct tm tm;
  localtime_r(&tt, &tm);
  return tm.tm_gmtoff;
}

static void test_utc_names(void **state) {
  (void)state;
  const char *names[] = {"UTC", "Etc/UTC", "Z"};
  for (size_t i = 0; i < 3; i++) {
    dagd_tz *tz = load(names[i]);
    assert_string_equal(dagd_tz_name(tz), names[i]);
    assert_int_equal(dagd_tz_offset(tz, 0), 0);
    assert_int_equal(dagd_tz_offset(tz, utc(2024, 7, 1, 0, 0, 0)), 0);
    dagd_tz_free(tz);
  }
  const dagd_tz *u = dagd_tz_utc();
  assert_string_equal(dagd_tz_name(u), "UTC");
  dagd_tz_free((dagd_tz *)u); /* ignored */
  assert_int_equal(dagd_tz_offset(dagd_tz_utc(), 123456789), 0);
  dagd_tz_free(NULL);
}

static void test_bad_names(void **state) {
  (void)state;
  const char *bad[] = {"", "../etc/passwd", "/etc/localtime", "Europe/../UTC", "Europe/Ber lin", "Europe/Berlin;rm",
                       "Europe\\Berlin", "Ümlaut"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    dagd_tz *tz = (dagd_tz *)1;
    dagd_err err;
    dagd_err_init(&err);
    assert_int_equal(dagd_tz_load(bad[i], &tz, &err), DAGD_EINVAL);
    assert_null(tz);
    assert_non_null(strstr(err.msg, "bad time zone name"));
  }
  dagd_tz *tz;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_tz_load("Mars/Olympus_Mons", &tz, &err), DAGD_ENOENT);
  assert_non_null(strstr(err.msg, "unknown time zone \"Mars/Olympus_Mons\""));
  dagd_err_init(&err);
  assert_int_equal(dagd_tz_load("America", &tz, &err), DAGD_ENOENT); /* a directory */
  assert_int_equal(dagd_tz_load("Europe/Berlin", &tz, NULL), 0);     /* NULL err is fine */
  dagd_tz_free(tz);
}

/* Offset just before and at a transition instant. */
static void check_change(const dagd_tz *tz, int64_t at, int32_t before, int32_t after) {
  assert_int_equal(dagd_tz_offset(tz, at - 1), before);
  assert_int_equal(dagd_tz_offset(tz, at), after);
  int64_t T;
  int32_t b, a;
  assert_true(dagd__tz_change_after(tz, at - 3600 * 24 * 20, &T, &b, &a));
  assert_int_equal(T, at);
  assert_int_equal(b, before);
  assert_int_equal(a, after);
  assert_true(dagd__tz_change_before(tz, at + 3600 * 24 * 20, &T, &b, &a));
  assert_int_equal(T, at);
  assert_true(dagd__tz_change_before(tz, at, &T, &b, &a));
  assert_int_equal(T, at);
  assert_true(dagd__tz_change_after(tz, at - 1, &T, &b, &a));
  assert_int_equal(T, at);
}

static void test_known_transitions(void **state) {
  (void)state;
  dagd_tz *be = load("Europe/Berlin"), *ny = load("America/New_York"), *lh = load("Australia/Lord_Howe"),
          *ko = load("Asia/Kolkata");
  /* Berlin 2024: 02:00 CET -> 03:00 CEST on Mar 31, 03:00 CEST -> 02:00 CET on Oct 27. */
  check_change(be, utc(2024, 3, 31, 1, 0, 0), 3600, 7200);
  check_change(be, utc(2024, 10, 27, 1, 0, 0), 7200, 3600);
  /* Far beyond the file's transitions: the footer rule. */
  check_change(be, utc(2061, 3, 27, 1, 0, 0), 3600, 7200);
  check_change(be, utc(2199, 10, 27, 1, 0, 0), 7200, 3600);
  /* New York 2024: Mar 10 02:00 EST, Nov 3 02:00 EDT. */
  check_change(ny, utc(2024, 3, 10, 7, 0, 0), -18000, -14400);
  check_change(ny, utc(2024, 11, 3, 6, 0, 0), -14400, -18000);
  check_change(ny, utc(2100, 3, 14, 7, 0, 0), -18000, -14400);
  /* Lord Howe: half-hour DST; Apr 7 2024 02:00 +11 -> 01:30 +10:30, Oct 6 02:00 +10:30 -> 02:30 +11. */
  check_change(lh, utc(2024, 4, 6, 15, 0, 0), 39600, 37800);
  check_change(lh, utc(2024, 10, 5, 15, 30, 0), 37800, 39600);
  /* Kolkata: +05:30 since 1945, no change ahead. */
  assert_int_equal(dagd_tz_offset(ko, utc(2024, 1, 1, 0, 0, 0)), 19800);
  assert_int_equal(dagd_tz_offset(ko, utc(2124, 7, 1, 0, 0, 0)), 19800);
  int64_t T;
  int32_t b, a;
  assert_false(dagd__tz_change_after(ko, utc(2000, 1, 1, 0, 0, 0), &T, &b, &a));
  assert_true(dagd__tz_change_before(ko, utc(2000, 1, 1, 0, 0, 0), &T, &b, &a));
  assert_true(T < utc(1946, 1, 1, 0, 0, 0));
  assert_false(dagd__tz_change_after(dagd_tz_utc(), 0, &T, &b, &a));
  dagd_tm tm;
  int32_t off;
  dagd_tz_localtime(lh, utc(2024, 4, 6, 15, 0, 0), &tm, &off);
  assert_int_equal(off, 37800);
  assert_int_equal(tm.hour, 1);
  assert_int_equal(tm.min, 30);
  assert_int_equal(tm.mday, 7);
  assert_int_equal(tm.wday, 0);
  dagd_tz_localtime(ko, 0, &tm, NULL);
  assert_int_equal(tm.hour, 5);
  assert_int_equal(tm.min, 30);
  dagd_tz_free(be);
  dagd_tz_free(ny);
  dagd_tz_free(lh);
  dagd_tz_free(ko);
}

/* Every ~5 days (with an odd hour) from 1900 to 2150 in the five zones:
 * our offset equals glibc's. */
static void test_offsets_match_glibc(void **state) {
  (void)state;
  const char *zones[] = {"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
                         "Asia/Jerusalem", "America/Nuuk", "America/Sao_Paulo", "Pacific/Apia"};
  for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
    dagd_tz *tz = load(zones[z]);
    char spec[64];
    snprintf(spec, sizeof(spec), ":%s", zones[z]);
    int checked = 0;
    for (int64_t t = utc(1900, 1, 1, 0, 0, 0); t < utc(2150, 1, 1, 0, 0, 0); t += 5 * 86400 + 3607) {
      long want = glibc_offset(spec, t);
      if (dagd_tz_offset(tz, t) != want)
        fail_msg("%s at %lld: ours %d, glibc %ld", zones[z], (long long)t, dagd_tz_offset(tz, t), want);
      checked++;
    }
    assert_true(checked > 18000);
    dagd_tz_free(tz);
  }
  unsetenv("TZ");
}

/* Exact transition instants: every change of offset we report between 1970
 * and 2100 is a change for glibc too, and glibc sees no change we miss. */
static void test_transitions_match_glibc(void **state) {
  (void)state;
  const char *zones[] = {"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Jerusalem",
                         "America/Nuuk"};
  for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
    dagd_tz *tz = load(zones[z]);
    char spec[64];
    snprintf(spec, sizeof(spec), ":%s", zones[z]);
    int64_t t = utc(1970, 1, 1, 0, 0, 0), end = utc(2100, 1, 1, 0, 0, 0);
    int n = 0;
    int64_t T, prevT = INT64_MIN;
    int32_t b, a;
    while (dagd__tz_change_after(tz, t, &T, &b, &a) && T < end) {
      assert_true(T > t);
      assert_int_equal(glibc_offset(spec, T - 1), b);
      assert_int_equal(glibc_offset(spec, T), a);
      /* No change in between that we skipped: glibc's offset is constant
       * on [t+1, T-1] (checked at the ends and daily). */
      for (int64_t u = t + 1; u < T; u += 86400) assert_int_equal(glibc_offset(spec, u), b);
      /* change_before agrees from the other side. */
      int64_t T2;
      int32_t b2, a2;
      assert_true(dagd__tz_change_before(tz, T + 1000, &T2, &b2, &a2));
      assert_int_equal(T2, T);
      if (prevT != INT64_MIN) {
        assert_true(dagd__tz_change_before(tz, T - 1, &T2, &b2, &a2));
        assert_int_equal(T2, prevT);
      }
      prevT = T;
      t = T;
      n++;
    }
    assert_true(n > 100);
    dagd_tz_free(tz);
  }
  unsetenv("TZ");
}

static void check_mktime(const dagd_tz *tz, int y, int mo, int d, int h, int mi, int want_n, int64_t w0,
                         int64_t w1) {
  dagd_tm wall = {.year = y, .mon = mo, .mday = d, .hour = h, .min = mi};
  int64_t out[2] = {0, 0};
  int n = dagd_tz_mktime(tz, &wall, out);
  assert_int_equal(n, want_n);
  assert_int_equal(out[0], w0);
  if (n == 2) assert_int_equal(out[1], w1);
}

static void test_mktime(void **state) {
  (void)state;
  dagd_tz *be = load("Europe/Berlin"), *ny = load("America/New_York"), *lh = load("Australia/Lord_Howe"),
          *ko = load("Asia/Kolkata");
  /* Normal. */
  check_mktime(be, 2024, 1, 15, 12, 0, 1, utc(2024, 1, 15, 11, 0, 0), 0);
  check_mktime(be, 2024, 7, 15, 12, 0, 1, utc(2024, 7, 15, 10, 0, 0), 0);
  check_mktime(ko, 2024, 7, 15, 12, 0, 1, utc(2024, 7, 15, 6, 30, 0), 0);
  check_mktime(dagd_tz_utc(), 2024, 7, 15, 12, 0, 1, utc(2024, 7, 15, 12, 0, 0), 0);
  /* Gap: 02:30 does not exist; shifted forward by the gap it is 03:30 CEST. */
  check_mktime(be, 2024, 3, 31, 2, 30, 0, utc(2024, 3, 31, 1, 30, 0), 0);
  check_mktime(be, 2024, 3, 31, 2, 0, 0, utc(2024, 3, 31, 1, 0, 0), 0);
  check_mktime(be, 2024, 3, 31, 3, 0, 1, utc(2024, 3, 31, 1, 0, 0), 0);
  check_mktime(be, 2024, 3, 31, 1, 59, 1, utc(2024, 3, 31, 0, 59, 0), 0);
  /* Overlap: 02:30 happens twice, CEST first. */
  check_mktime(be, 2024, 10, 27, 2, 30, 2, utc(2024, 10, 27, 0, 30, 0), utc(2024, 10, 27, 1, 30, 0));
  check_mktime(be, 2024, 10, 27, 2, 0, 2, utc(2024, 10, 27, 0, 0, 0), utc(2024, 10, 27, 1, 0, 0));
  check_mktime(be, 2024, 10, 27, 3, 0, 1, utc(2024, 10, 27, 2, 0, 0), 0);
  /* Footer era. */
  check_mktime(be, 2077, 3, 28, 2, 30, 0, utc(2077, 3, 28, 1, 30, 0), 0);
  check_mktime(be, 2077, 10, 31, 2, 30, 2, utc(2077, 10, 31, 0, 30, 0), utc(2077, 10, 31, 1, 30, 0));
  /* New York. */
  check_mktime(ny, 2024, 3, 10, 2, 30, 0, utc(2024, 3, 10, 7, 30, 0), 0);
  check_mktime(ny, 2024, 11, 3, 1, 30, 2, utc(2024, 11, 3, 5, 30, 0), utc(2024, 11, 3, 6, 30, 0));
  /* Lord Howe: a 30-minute gap (02:00-02:30) and overlap (01:30-02:00). */
  check_mktime(lh, 2024, 10, 6, 2, 15, 0, utc(2024, 10, 5, 15, 45, 0), 0);
  check_mktime(lh, 2024, 10, 6, 2, 30, 1, utc(2024, 10, 5, 15, 30, 0), 0);
  check_mktime(lh, 2024, 4, 7, 1, 45, 2, utc(2024, 4, 6, 14, 45, 0), utc(2024, 4, 6, 15, 15, 0));
  check_mktime(lh, 2024, 4, 7, 2, 0, 1, utc(2024, 4, 6, 15, 30, 0), 0);
  check_mktime(lh, 2024, 4, 7, 1, 29, 1, utc(2024, 4, 6, 14, 29, 0), 0);
  dagd_tz_free(be);
  dagd_tz_free(ny);
  dagd_tz_free(lh);
  dagd_tz_free(ko);
}

/* mktime inverts localtime for every hour of 2024 in every zone. */
static void test_mktime_roundtrip(void **state) {
  (void)state;
  const char *zones[] = {"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"};
  for (size_t z = 0; z < 5; z++) {
    dagd_tz *tz = load(zones[z]);
    for (int64_t t = utc(2024, 1, 1, 0, 0, 0); t < utc(2025, 1, 1, 0, 0, 0); t += 1800) {
      dagd_tm tm;
      dagd_tz_localtime(tz, t, &tm, NULL);
      int64_t out[2];
      int n = dagd_tz_mktime(tz, &tm, out);
      assert_true(n == 1 || n == 2);
      assert_true(out[0] == t || (n == 2 && out[1] == t));
    }
    dagd_tz_free(tz);
  }
}

static void check_rule(const char *posix, int32_t std_off, int32_t dst_off, bool has_dst) {
  dagd__tz_rule r;
  if (dagd__tz_rule_parse(posix, &r) != 0) fail_msg("rule %s did not parse", posix);
  assert_int_equal(r.std_off, std_off);
  assert_int_equal(r.has_dst, has_dst);
  if (has_dst) assert_int_equal(r.dst_off, dst_off);
  /* Against glibc's own POSIX TZ implementation, 1990-2110 (from 2008 for
   * a string without rules: glibc then applies the historical US rules of
   * its posixrules file, we the current ones). */
  bool no_rule = strchr(posix, ',') == NULL;
  for (int64_t t = utc(no_rule ? 2008 : 1990, 1, 1, 0, 0, 0); t < utc(2110, 1, 1, 0, 0, 0); t += 86400 + 1811) {
    long want = glibc_offset(posix, t);
    if (dagd__tz_rule_offset(&r, t) != want)
      fail_msg("%s at %lld: ours %d, glibc %ld", posix, (long long)t, dagd__tz_rule_offset(&r, t), want);
  }
  /* And around each transition to the second. */
  for (int y = 2008; y < 2040; y++) {
    if (!has_dst) break;
    int64_t s, e;
    dagd__tz_rule_year(&r, y, &s, &e);
    for (int64_t t = s - 2; t <= s + 2; t++) assert_int_equal(dagd__tz_rule_offset(&r, t), glibc_offset(posix, t));
    for (int64_t t = e - 2; t <= e + 2; t++) assert_int_equal(dagd__tz_rule_offset(&r, t), glibc_offset(posix, t));
  }
  unsetenv("TZ");
}

static void test_posix_rules(void **state) {
  (void)state;
  check_rule("CET-1CEST,M3.5.0,M10.5.0/3", 3600, 7200, true);
  check_rule("EST5EDT,M3.2.0,M11.1.0", -18000, -14400, true);
  check_rule("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", 37800, 39600, true);
  check_rule("IST-5:30", 19800, 0, false);
  check_rule("UTC0", 0, 0, false);
  check_rule("IST-2IDT,M3.4.4/26,M10.5.0", 7200, 10800, true);        /* time past 24h */
  check_rule("<-02>2<-01>,M3.5.0/-1,M10.5.0/0", -7200, -3600, true);  /* negative time */
  check_rule("NZST-12NZDT,M9.5.0,M4.1.0/3", 43200, 46800, true);      /* southern */
  check_rule("XXX3YYY,J60/2,J300/3", -10800, -7200, true);            /* Julian, no leap day */
  check_rule("XXX3YYY,59/2,299/3", -10800, -7200, true);              /* zero-based Julian */
  check_rule("AAA-1BBB-2:30,M3.5.0/1:30:15,M10.5.0/3", 3600, 9000, true);
  check_rule("EST5EDT", -18000, -14400, true);                        /* default US rule */
  check_rule("<-03>3", -10800, 0, false);
  /* All-year DST, as RFC 8536 writes it: always the DST offset. */
  dagd__tz_rule r;
  assert_int_equal(dagd__tz_rule_parse("EST5EDT,0/0,J365/25", &r), 0);
  for (int y = 2000; y < 2010; y++) {
    assert_int_equal(dagd__tz_rule_offset(&r, utc(y, 1, 1, 0, 0, 0)), -14400);
    assert_int_equal(dagd__tz_rule_offset(&r, utc(y, 7, 1, 0, 0, 0)), -14400);
    assert_int_equal(dagd__tz_rule_offset(&r, utc(y, 12, 31, 23, 0, 0)), -14400);
  }
  const char *bad[] = {"", "C", "CET", "CET-", "CET-1CEST,", "CET-1CEST,M3.5.0", "CET-1CEST,M13.5.0,M10.5.0",
                       "CET-1CEST,M3.6.0,M10.5.0", "CET-1CEST,M3.5.7,M10.5.0", "CET-1CEST,J0,J100",
                       "CET-1CEST,M3.5.0/200,M10.5.0", "<+05", "CET-1CEST,M3.5.0,M10.5.0x", "CET25"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (dagd__tz_rule_parse(bad[i], &r) == 0) fail_msg("rule \"%s\" parsed", bad[i]);
}

/* ---- Hand-built TZif files in a private TZDIR. ---- */

static char tzdir[64];

static int setup_tzdir(void **state) {
  (void)state;
  strcpy(tzdir, "/tmp/dagd-test-tz-XXXXXX");
  if (mkdtemp(tzdir) == NULL) return -1;
  setenv("TZDIR", tzdir, 1);
  return 0;
}

static int teardown_tzdir(void **state) {
  (void)state;
  unsetenv("TZDIR");
  return dagd_fs_remove_tree_within("/tmp", tzdir, NULL) == 0 ? 0 : -1;
}

typedef struct {
  unsigned char b[4096];
  size_t n;
} bytes;

static void put(bytes *o, const void *p, size_t n) {
  if (n == 0) return;
  memcpy(o->b + o->n, p, n);
  o->n += n;
}
static void put32(bytes *o, int64_t v) {
  unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                        (unsigned char)v};
  put(o, x, 4);
}
static void put64(bytes *o, int64_t v) {
  put32(o, v >> 32);
  put32(o, v & 0xffffffff);
}

/* One TZif data block: header + transitions + types (abbreviations "A").
 * timesize 4 or 8. */
static void put_block(bytes *o, char version, size_t timesize, const int64_t *trans, const uint8_t *idx, int ntrans,
                      const int32_t *offs, const uint8_t *isdst, int ntypes) {
  put(o, "TZif", 4);
  put(o, &version, 1);
  put(o, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 15);
  put32(o, 0);
  put32(o, 0);
  put32(o, 0);
  put32(o, ntrans);
  put32(o, ntypes);
  put32(o, 2);
  for (int i = 0; i < ntrans; i++) timesize == 8 ? put64(o, trans[i]) : put32(o, trans[i]);
  put(o, idx, (size_t)ntrans);
  for (int i = 0; i < ntypes; i++) {
    put32(o, offs[i]);
    unsigned char tail[2] = {isdst[i], 0};
    put(o, tail, 2);
  }
  put(o, "A", 2);
}

static void write_zone(const char *name, const bytes *o) {
  char path[256];
  snprintf(path, sizeof(path), "%s/%s", tzdir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(o->b, 1, o->n, f), o->n);
  fclose(f);
}

/* A v1 file: 32-bit data only, no footer. */
static void test_tzif_v1(void **state) {
  (void)state;
  int64_t trans[] = {utc(2020, 3, 1, 0, 0, 0), utc(2020, 9, 1, 0, 0, 0)};
  uint8_t idx[] = {1, 0};
  int32_t offs[] = {3600, 7200};
  uint8_t dst[] = {0, 1};
  bytes o = {.n = 0};
  put_block(&o, 0, 4, trans, idx, 2, offs, dst, 2);
  write_zone("Test_V1", &o);
  dagd_tz *tz = load("Test_V1");
  assert_int_equal(dagd_tz_offset(tz, utc(2019, 1, 1, 0, 0, 0)), 3600); /* before: type 0 */
  assert_int_equal(dagd_tz_offset(tz, utc(2020, 3, 1, 0, 0, 0)), 7200);
  assert_int_equal(dagd_tz_offset(tz, utc(2020, 8, 31, 23, 59, 59)), 7200);
  assert_int_equal(dagd_tz_offset(tz, utc(2030, 1, 1, 0, 0, 0)), 3600); /* after: last type */
  dagd_tz_free(tz);
}

/* A v2/v3 file whose 32-bit block is junk-free but different from the 64-bit
 * one (we must read the latter), with few transitions and a footer rule:
 * a "slim" Berlin. */
static void test_tzif_v2_footer(void **state) {
  (void)state;
  for (char version = '2'; version <= '3'; version++) {
    int64_t trans[] = {utc(1996, 3, 31, 1, 0, 0), utc(1996, 10, 27, 1, 0, 0)};
    uint8_t idx[] = {1, 0};
    int32_t offs[] = {3600, 7200};
    uint8_t dst[] = {0, 1};
    int32_t bogus[] = {-36000};
    uint8_t nodst[] = {0};
    bytes o = {.n = 0};
    put_block(&o, version, 4, NULL, NULL, 0, bogus, nodst, 1);
    put_block(&o, version, 8, trans, idx, 2, offs, dst, 2);
    put(&o, "\nCET-1CEST,M3.5.0,M10.5.0/3\n", 29);
    write_zone(version == '2' ? "Slim_Berlin2" : "Slim_Berlin3", &o);
    dagd_tz *tz = load(version == '2' ? "Slim_Berlin2" : "Slim_Berlin3");
    for (int64_t t = utc(1997, 1, 1, 0, 0, 0); t < utc(2150, 1, 1, 0, 0, 0); t += 3 * 86400 + 3599)
      assert_int_equal(dagd_tz_offset(tz, t), glibc_offset(":/usr/share/zoneinfo/Europe/Berlin", t));
    check_change(tz, utc(2024, 3, 31, 1, 0, 0), 3600, 7200);
    check_change(tz, utc(1996, 10, 27, 1, 0, 0), 7200, 3600);
    check_change(tz, utc(1997, 3, 30, 1, 0, 0), 3600, 7200); /* first footer change */
    check_mktime(tz, 2024, 3, 31, 2, 30, 0, utc(2024, 3, 31, 1, 30, 0), 0);
    check_mktime(tz, 2024, 10, 27, 2, 30, 2, utc(2024, 10, 27, 0, 30, 0), utc(2024, 10, 27, 1, 30, 0));
    dagd_tz_free(tz);
  }
  unsetenv("TZ");
}

/* Footer-only file (no transitions) and an empty footer. */
static void test_tzif_footer_only(void **state) {
  (void)state;
  int32_t offs[] = {-18000};
  uint8_t dst[] = {0};
  bytes o = {.n = 0};
  put_block(&o, '2', 4, NULL, NULL, 0, offs, dst, 1);
  put_block(&o, '2', 8, NULL, NULL, 0, offs, dst, 1);
  put(&o, "\nEST5EDT,M3.2.0,M11.1.0\n", 24);
  write_zone("Rule_Only", &o);
  dagd_tz *tz = load("Rule_Only");
  check_change(tz, utc(2024, 3, 10, 7, 0, 0), -18000, -14400);
  check_change(tz, utc(1980, 11, 2, 6, 0, 0), -14400, -18000);
  dagd_tz_free(tz);
  bytes e = {.n = 0};
  put_block(&e, '2', 4, NULL, NULL, 0, offs, dst, 1);
  put_block(&e, '2', 8, NULL, NULL, 0, offs, dst, 1);
  put(&e, "\n\n", 2);
  write_zone("Empty_Footer", &e);
  tz = load("Empty_Footer");
  assert_int_equal(dagd_tz_offset(tz, utc(2024, 7, 1, 0, 0, 0)), -18000);
  dagd_tz_free(tz);
}

static void test_tzif_corrupt(void **state) {
  (void)state;
  int64_t trans[] = {utc(2020, 3, 1, 0, 0, 0), utc(2020, 9, 1, 0, 0, 0)};
  uint8_t idx[] = {1, 0}, badidx[] = {1, 5};
  int32_t offs[] = {3600, 7200}, huge[] = {3600, 200000};
  uint8_t dst[] = {0, 1};
  bytes cases[6];
  memset(cases, 0, sizeof(cases));
  put(&cases[0], "TZxf", 4);                                   /* bad magic */
  put_block(&cases[1], 0, 4, trans, badidx, 2, offs, dst, 2);  /* type index out of range */
  put_block(&cases[2], 0, 4, trans, idx, 2, huge, dst, 2);     /* absurd offset */
  put_block(&cases[3], 0, 4, trans, idx, 2, offs, dst, 2);
  cases[3].n -= 3;                                             /* truncated */
  int64_t unsorted[] = {utc(2020, 9, 1, 0, 0, 0), utc(2020, 3, 1, 0, 0, 0)};
  put_block(&cases[4], 0, 4, unsorted, idx, 2, offs, dst, 2);  /* not ascending */
  put_block(&cases[5], '2', 4, trans, idx, 2, offs, dst, 2);
  put_block(&cases[5], '2', 8, trans, idx, 2, offs, dst, 2);
  put(&cases[5], "\nCET-1CEST,M3.5.0\n", 18);                  /* bad footer */
  for (int i = 0; i < 6; i++) {
    char name[32];
    snprintf(name, sizeof(name), "Corrupt_%d", i);
    write_zone(name, &cases[i]);
    dagd_tz *tz = (dagd_tz *)1;
    dagd_err err;
    dagd_err_init(&err);
    assert_int_equal(dagd_tz_load(name, &tz, &err), DAGD_EINVAL);
    assert_null(tz);
    assert_non_null(strstr(err.msg, "not a valid TZif file"));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_utc_names),
      cmocka_unit_test(test_bad_names),
      cmocka_unit_test(test_known_transitions),
      cmocka_unit_test(test_offsets_match_glibc),
      cmocka_unit_test(test_transitions_match_glibc),
      cmocka_unit_test(test_mktime),
      cmocka_unit_test(test_mktime_roundtrip),
      cmocka_unit_test(test_posix_rules),
  };
  const struct CMUnitTest file_tests[] = {
      cmocka_unit_test(test_tzif_v1),
      cmocka_unit_test(test_tzif_v2_footer),
      cmocka_unit_test(test_tzif_footer_only),
      cmocka_unit_test(test_tzif_corrupt),
  };
  int failed = cmocka_run_group_tests_name("tz", tests, NULL, NULL);
  failed += cmocka_run_group_tests_name("tz_files", file_tests, setup_tzdir, teardown_tzdir);
  return failed;
}
