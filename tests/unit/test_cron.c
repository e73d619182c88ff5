/* Unit tests of the cron module: parsing (every error kind, presets, names,
 * L/W/#/?), day-of-month/day-of-week OR semantics, next/prev in UTC and
 * across DST changes in Berlin, New York and Lord Howe, interval schedules,
 * prev/next round trips, leap years, impossible dates, and describe.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dagd/cron.h"
#include "dagd/err.h"
#include "dagd/time.h"
#include "dagd/tz.h"

static int64_t utc(int y, int mo, int d, int h, int mi, int s) {
  dagd_tm tm = {.year = y, .mon = mo, .mday = d, .hour = h, .min = mi, .sec = s};
  return dagd_tm_to_epoch(&tm);
}

static dagd_cron *parse(const char *text) {
  dagd_cron *c = NULL;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_cron_parse(text, &c, &err) != 0) fail_msg("parse \"%s\": %s", text, err.msg);
  return c;
}

static dagd_tz *zone(const char *name) {
  dagd_tz *tz = NULL;
  if (dagd_tz_load(name, &tz, NULL) != 0) fail_msg("zone %s", name);
  return tz;
}

static char *fmt(int64_t t) {
  static char buf[8][32];
  static int i;
  char *b = buf[i++ % 8];
  dagd_time_format_utc(t, b);
  return b;
}

/* Asserts the n fire times after `start` of expr in zone (NULL = UTC). */
static void expect_next(const char *expr, const char *zname, int64_t start, int n, const int64_t *want) {
  dagd_cron *c = parse(expr);
  dagd_tz *tz = zname ? zone(zname) : NULL;
  int64_t t = start;
  for (int i = 0; i < n; i++) {
    int64_t out = 0;
    int rc = dagd_cron_next(c, tz, t, &out);
    if (rc != 0 || out != want[i])
      fail_msg("\"%s\" in %s after %s: #%d is %s (rc %d), want %s", expr, zname ? zname : "UTC", fmt(start), i,
               fmt(out), rc, fmt(want[i]));
    t = out;
  }
  /* And backwards from the last one, the same times. */
  for (int i = n - 2; i >= 0; i--) {
    int64_t out = 0;
    int rc = dagd_cron_prev(c, tz, t, &out);
    if (rc != 0 || out != want[i])
      fail_msg("\"%s\" prev of %s is %s (rc %d), want %s", expr, fmt(t), fmt(out), rc, fmt(want[i]));
    t = out;
  }
  dagd_tz_free(tz);
  dagd_cron_free(c);
}

#define NEXT(expr, zname, start, ...)                                                      \
  do {                                                                                     \
    const int64_t want_[] = {__VA_ARGS__};                                                 \
    expect_next(expr, zname, start, (int)(sizeof(want_) / sizeof(want_[0])), want_);       \
  } while (0)

static void expect_error(const char *expr, int code, const char *msg) {
  dagd_cron *c = (dagd_cron *)1;
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_cron_parse(expr, &c, &err);
  if (rc != code) fail_msg("\"%s\": rc %d (%s), want %d", expr ? expr : "(null)", rc, err.msg, code);
  assert_null(c);
  assert_int_equal(err.code, code);
  if (strstr(err.msg, msg) == NULL) fail_msg("\"%s\": message \"%s\" lacks \"%s\"", expr, err.msg, msg);
}

static void test_parse_ok(void **state) {
  (void)state;
  const char *ok[] = {"* * * * *", "0 0 * * *", "*/5 * * * *", "1-30/2 * * * *", "5/15 * * * *", "0,15,30,45 * * * *",
                      "0 9-17 * * MON-FRI", "0 0 1 JAN,jul *", "0 0 * * sun", "0 0 * * 7", "0 0 L * *",
                      "0 0 L-3 * *", "0 0 15W * *", "0 0 LW * *", "0 0 * * 5L", "0 0 * * FRIL", "0 0 * * MON#2",
                      "0 0 * * 5#3", "0 0 ? * MON", "0 0 1 * ?", "*/10 * * * * *", "0 0 0 1 1 *", "  0  0 * * *  ",
                      "0\t0\t*\t*\t*", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                      "@hourly", "@DAILY", "every 30s", "every 15m", "every 6h", "every 1d", "every 1h30m",
                      "EVERY 2w", "0 0 1,L * *", "0 0 * * 1#1,5L", "0 0 * * FRI-SUN", "0 0 * * 5-0", "0 0 */2 * *",
                      "0 12 * * 1-5/2", "0 0 1-7 * 1"};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    dagd_cron *c = parse(ok[i]);
    assert_string_equal(dagd_cron_text(c), ok[i]);
    dagd_cron_free(c);
  }
  dagd_cron_free(NULL);
}

static void test_parse_errors(void **state) {
  (void)state;
  expect_error("0 25 * * *", DAGD_ERANGE, "bad cron \"0 25 * * *\": hour field: 25 is out of range 0-23");
  expect_error("60 * * * *", DAGD_ERANGE, "minute field: 60 is out of range 0-59");
  expect_error("60 0 * * * *", DAGD_ERANGE, "second field: 60 is out of range 0-59");
  expect_error("0 0 0 * *", DAGD_ERANGE, "day-of-month field: 0 is out of range 1-31");
  expect_error("0 0 32 * *", DAGD_ERANGE, "day-of-month field: 32 is out of range 1-31");
  expect_error("0 0 * 13 *", DAGD_ERANGE, "month field: 13 is out of range 1-12");
  expect_error("0 0 * * 8", DAGD_ERANGE, "day-of-week field: 8 is out of range 0-7");
  expect_error("0 0 * *", DAGD_ESYNTAX, "expected 5 fields");
  expect_error("0 0 * *", DAGD_ESYNTAX, "got 4");
  expect_error("0 0 * * * * *", DAGD_ESYNTAX, "got 7");
  expect_error("*/0 * * * *", DAGD_ESYNTAX, "minute field: bad step in \"*/0\" (a step must be at least 1)");
  expect_error("1-5/ * * * *", DAGD_ESYNTAX, "minute field: bad step in \"1-5/\"");
  expect_error("*/x * * * *", DAGD_ESYNTAX, "bad step");
  expect_error("*/61 * * * *", DAGD_ERANGE, "bad step in \"*/61\" (61 is more than the field's 60 values)");
  expect_error("0 */25 * * *", DAGD_ERANGE, "hour field: bad step");
  expect_error("1,,2 * * * *", DAGD_ESYNTAX, "minute field: empty list item in \"1,,2\"");
  expect_error("1, * * * *", DAGD_ESYNTAX, "empty list item");
  expect_error(",1 * * * *", DAGD_ESYNTAX, "empty list item");
  expect_error("0 0 * FOO *", DAGD_ESYNTAX, "month field: unknown name \"FOO\" (expected JAN-DEC or 1-12)");
  expect_error("0 0 * * MONDAY", DAGD_ESYNTAX, "day-of-week field: unknown name \"MONDAY\"");
  expect_error("0 0 * JAN-FOO *", DAGD_ESYNTAX, "unknown name \"FOO\"");
  expect_error("0 0 * * JAN", DAGD_ESYNTAX, "day-of-week field: unknown name \"JAN\"");
  expect_error("0 MON * * *", DAGD_ESYNTAX, "hour field: unknown name \"MON\" (expected a number 0-23)");
  expect_error("5x * * * *", DAGD_ESYNTAX, "minute field: unexpected \"x\" after \"5\"");
  expect_error("1-5/2/3 * * * *", DAGD_ESYNTAX, "unexpected \"/3\" after \"1-5/2\"");
  expect_error("1-5-7 * * * *", DAGD_ESYNTAX, "unexpected \"-7\"");
  expect_error("** * * * *", DAGD_ESYNTAX, "unexpected \"*\" after \"*\"");
  expect_error("- * * * *", DAGD_ESYNTAX, "minute field: unexpected \"-\"");
  expect_error("5- * * * *", DAGD_ESYNTAX, "missing value");
  expect_error("30-5 * * * *", DAGD_ERANGE, "range \"30-5\" is backwards");
  expect_error("0 0 * * SAT-MON", DAGD_ERANGE, "backwards");
  expect_error("? 0 * * *", DAGD_ESYNTAX, "minute field: \"?\" is only allowed");
  expect_error("0 0 ?5 * *", DAGD_ESYNTAX, "unexpected");
  expect_error("0 0 * * 5#6", DAGD_ESYNTAX, "day-of-week field: bad \"5#6\"");
  expect_error("0 0 * * 5#0", DAGD_ESYNTAX, "bad \"5#0\"");
  expect_error("0 0 * * 9#1", DAGD_ERANGE, "9 is out of range 0-7");
  expect_error("0 0 * * L", DAGD_ESYNTAX, "\"L\" needs a weekday");
  expect_error("0 0 * * FOOL", DAGD_ESYNTAX, "unknown name \"FOO\"");
  expect_error("0 0 L-31 * *", DAGD_ERANGE, "offset out of range 0-30");
  expect_error("0 0 L-x * *", DAGD_ESYNTAX, "expected L-n");
  expect_error("0 0 LX * *", DAGD_ESYNTAX, "unexpected \"X\" after \"L\"");
  expect_error("0 0 32W * *", DAGD_ERANGE, "32 is out of range 1-31");
  expect_error("0 0 1-5W * *", DAGD_ESYNTAX, "unexpected");
  expect_error("L * * * *", DAGD_ESYNTAX, "minute field: unknown name \"L\"");
  expect_error("0 0 15W * MONW", DAGD_ESYNTAX, "unknown name");
  expect_error("@fortnightly", DAGD_ESYNTAX, "unknown preset \"@fortnightly\"");
  expect_error("@daily extra", DAGD_ESYNTAX, "unexpected \"extra\" after the preset");
  expect_error("every 0m", DAGD_ERANGE, "at least 1s");
  expect_error("every", DAGD_ESYNTAX, "bad interval");
  expect_error("every 5 parsecs", DAGD_ESYNTAX, "bad interval");
  expect_error("every 5", DAGD_ESYNTAX, "bad interval");
  expect_error("every m", DAGD_ESYNTAX, "bad interval");
  expect_error("every 1.5h", DAGD_ESYNTAX, "bad interval");
  expect_error("every 99999999999d", DAGD_ERANGE, "longer than 10 years");
  expect_error("", DAGD_ESYNTAX, "empty schedule");
  expect_error("   ", DAGD_ESYNTAX, "empty schedule");
  expect_error(NULL, DAGD_EINVAL, "no schedule");
  /* The first error wins: a pre-set error is kept. */
  dagd_err err;
  dagd_err_init(&err);
  dagd_err_set(&err, DAGD_EIO, "earlier failure");
  dagd_cron *c;
  assert_int_equal(dagd_cron_parse("0 25 * * *", &c, &err), DAGD_ERANGE);
  assert_int_equal(err.code, DAGD_EIO);
  assert_string_equal(err.msg, "earlier failure");
  /* NULL err is fine. */
  assert_int_equal(dagd_cron_parse("0 25 * * *", &c, NULL), DAGD_ERANGE);
}

/* Two schedules fire at the same times (checked over a year of next()). */
static void expect_same(const char *a, const char *b) {
  dagd_cron *x = parse(a), *y = parse(b);
  int64_t t1 = utc(2023, 12, 25, 0, 0, 0), t2 = t1;
  for (int i = 0; i < 400; i++) {
    int r1 = dagd_cron_next(x, NULL, t1, &t1), r2 = dagd_cron_next(y, NULL, t2, &t2);
    assert_int_equal(r1, 0);
    assert_int_equal(r2, 0);
    if (t1 != t2) fail_msg("\"%s\" and \"%s\" differ: %s vs %s", a, b, fmt(t1), fmt(t2));
  }
  dagd_cron_free(x);
  dagd_cron_free(y);
}

static void test_equivalences(void **state) {
  (void)state;
  expect_same("@yearly", "0 0 1 1 *");
  expect_same("@annually", "0 0 1 1 *");
  expect_same("@monthly", "0 0 1 * *");
  expect_same("@weekly", "0 0 * * 0");
  expect_same("@daily", "0 0 * * *");
  expect_same("@midnight", "0 0 * * *");
  expect_same("@hourly", "0 * * * *");
  expect_same("0 0 * * 7", "0 0 * * 0");
  expect_same("0 0 * * sun", "0 0 * * 0");
  expect_same("0 0 * * FRI-SUN", "0 0 * * 5,6,0");
  expect_same("0 0 * * 5-7", "0 0 * * 0,5,6");
  expect_same("0 0 * * 5-0", "0 0 * * 0,5,6");
  expect_same("0 0 * * MON-FRI", "0 0 * * 1-5");
  expect_same("0 0 1 jan-MAR/2 *", "0 0 1 1,3 *");
  expect_same("5/15 * * * *", "5,20,35,50 * * * *");
  expect_same("1-30/7 * * * *", "1,8,15,22,29 * * * *");
  expect_same("*/20 * * * *", "0,20,40 * * * *");
  expect_same("0 0 ? * MON", "0 0 * * 1");
  expect_same("0 0 1 * ?", "0 0 1 * *");
  expect_same("0 0 0 * * *", "0 0 * * *");
  expect_same("0 */6 * * *", "0 0,6,12,18 * * *");
  expect_same("0 0 * * 1/2", "0 0 * * 1,3,5");
  expect_same("0 0 L-0 * *", "0 0 L * *");
}

static void test_next_utc(void **state) {
  (void)state;
  int64_t t = utc(2024, 5, 15, 10, 7, 30);
  NEXT("*/15 * * * *", NULL, t, utc(2024, 5, 15, 10, 15, 0), utc(2024, 5, 15, 10, 30, 0));
  NEXT("* * * * *", NULL, t, utc(2024, 5, 15, 10, 8, 0), utc(2024, 5, 15, 10, 9, 0));
  NEXT("*/10 * * * * *", NULL, t, utc(2024, 5, 15, 10, 7, 40), utc(2024, 5, 15, 10, 7, 50),
       utc(2024, 5, 15, 10, 8, 0));
  NEXT("30 0 0 * * *", NULL, t, utc(2024, 5, 16, 0, 0, 30));
  NEXT("0 2 * * *", NULL, t, utc(2024, 5, 16, 2, 0, 0), utc(2024, 5, 17, 2, 0, 0));
  /* Strictly after: a fire time as start gives the following one. */
  NEXT("0 2 * * *", NULL, utc(2024, 5, 16, 2, 0, 0), utc(2024, 5, 17, 2, 0, 0));
  NEXT("0 9 * * MON-FRI", NULL, utc(2024, 5, 17, 9, 0, 0), utc(2024, 5, 20, 9, 0, 0));
  NEXT("0 0 31 * *", NULL, t, utc(2024, 5, 31, 0, 0, 0), utc(2024, 7, 31, 0, 0, 0), utc(2024, 8, 31, 0, 0, 0),
       utc(2024, 10, 31, 0, 0, 0));
  NEXT("59 23 31 12 *", NULL, t, utc(2024, 12, 31, 23, 59, 0), utc(2025, 12, 31, 23, 59, 0));
  NEXT("0 0 1 1 *", NULL, utc(1969, 6, 1, 0, 0, 0), utc(1970, 1, 1, 0, 0, 0), utc(1971, 1, 1, 0, 0, 0));
  NEXT("0 12 * * *", NULL, utc(1900, 2, 28, 13, 0, 0), utc(1900, 3, 1, 12, 0, 0));
}

static void test_leap_years(void **state) {
  (void)state;
  NEXT("0 0 29 2 *", NULL, utc(2024, 3, 1, 0, 0, 0), utc(2028, 2, 29, 0, 0, 0), utc(2032, 2, 29, 0, 0, 0));
  /* 2100 is not a leap year: eight years between. */
  NEXT("0 0 29 2 *", NULL, utc(2096, 3, 1, 0, 0, 0), utc(2104, 2, 29, 0, 0, 0));
  NEXT("0 0 29 2 *", NULL, utc(1999, 1, 1, 0, 0, 0), utc(2000, 2, 29, 0, 0, 0), utc(2004, 2, 29, 0, 0, 0));
  NEXT("0 0 L 2 *", NULL, utc(2023, 1, 1, 0, 0, 0), utc(2023, 2, 28, 0, 0, 0), utc(2024, 2, 29, 0, 0, 0),
       utc(2025, 2, 28, 0, 0, 0));
  /* Feb 29 that must also be a Monday (OR semantics: any Monday in
   * February, or the 29th). */
  NEXT("0 0 29 2 1", NULL, utc(2024, 2, 20, 0, 0, 0), utc(2024, 2, 26, 0, 0, 0), utc(2024, 2, 29, 0, 0, 0),
       utc(2025, 2, 3, 0, 0, 0));
}

static void expect_enoent(const char *expr, int64_t start) {
  dagd_cron *c = parse(expr);
  int64_t out = 12345;
  assert_int_equal(dagd_cron_next(c, NULL, start, &out), DAGD_ENOENT);
  assert_int_equal(dagd_cron_prev(c, NULL, start, &out), DAGD_ENOENT);
  dagd_tz *be = zone("Europe/Berlin");
  assert_int_equal(dagd_cron_next(c, be, start, &out), DAGD_ENOENT);
  assert_int_equal(dagd_cron_prev(c, be, start, &out), DAGD_ENOENT);
  dagd_tz_free(be);
  dagd_cron_free(c);
}

static void test_impossible(void **state) {
  (void)state;
  expect_enoent("0 0 30 2 *", utc(2024, 1, 1, 0, 0, 0));
  expect_enoent("0 0 31 2 *", utc(2024, 1, 1, 0, 0, 0));
  expect_enoent("0 0 31 4,6,9,11 *", utc(2024, 1, 1, 0, 0, 0));
  expect_enoent("0 0 30 2 *", utc(1980, 1, 1, 0, 0, 0));
  /* Feb 29 on a Monday with AND semantics: 28 years apart at most, so
   * found; beyond the 50-year horizon: a far-out start. */
  dagd_cron *c = parse("0 0 29 2 *");
  int64_t out;
  assert_int_equal(dagd_cron_next(c, NULL, utc(2096, 3, 1, 0, 0, 0), &out), 0);
  dagd_cron_free(c);
  /* Out-of-range instants are refused, not overflowed. */
  c = parse("* * * * *");
  assert_int_equal(dagd_cron_next(c, NULL, INT64_MAX, &out), DAGD_ENOENT);
  assert_int_equal(dagd_cron_prev(c, NULL, INT64_MIN, &out), DAGD_ENOENT);
  dagd_cron_free(c);
}

static void test_special_days(void **state) {
  (void)state;
  int64_t t = utc(2024, 1, 1, 0, 0, 0);
  NEXT("0 0 L * *", NULL, t, utc(2024, 1, 31, 0, 0, 0), utc(2024, 2, 29, 0, 0, 0), utc(2024, 3, 31, 0, 0, 0),
       utc(2024, 4, 30, 0, 0, 0));
  NEXT("0 0 L-3 * *", NULL, t, utc(2024, 1, 28, 0, 0, 0), utc(2024, 2, 26, 0, 0, 0), utc(2024, 3, 28, 0, 0, 0));
  NEXT("0 0 1,L * *", NULL, t, utc(2024, 1, 31, 0, 0, 0), utc(2024, 2, 1, 0, 0, 0), utc(2024, 2, 29, 0, 0, 0));
  /* 15W: 2024-06-15 is a Saturday -> Friday 14; 2024-09-15 a Sunday ->
   * Monday 16; 2024-05-15 a Wednesday. */
  NEXT("0 0 15W * *", NULL, utc(2024, 5, 1, 0, 0, 0), utc(2024, 5, 15, 0, 0, 0), utc(2024, 6, 14, 0, 0, 0),
       utc(2024, 7, 15, 0, 0, 0), utc(2024, 8, 15, 0, 0, 0), utc(2024, 9, 16, 0, 0, 0));
  /* 1W never leaves the month: 2024-06-01 is a Saturday -> Monday 3. */
  NEXT("0 0 1W 6 *", NULL, t, utc(2024, 6, 3, 0, 0, 0));
  /* 31W: 2024-03-31 is a Sunday -> Friday 29; 30W in a 30-day month ending Sunday. */
  NEXT("0 0 31W 3 *", NULL, t, utc(2024, 3, 29, 0, 0, 0));
  NEXT("0 0 30W 6 *", NULL, t, utc(2024, 6, 28, 0, 0, 0));
  /* LW: 2024-08-31 Saturday -> 30; 2024-03-31 Sunday -> 29; 2024-07-31 Wednesday. */
  NEXT("0 0 LW * *", NULL, utc(2024, 3, 1, 0, 0, 0), utc(2024, 3, 29, 0, 0, 0), utc(2024, 4, 30, 0, 0, 0),
       utc(2024, 5, 31, 0, 0, 0), utc(2024, 6, 28, 0, 0, 0), utc(2024, 7, 31, 0, 0, 0), utc(2024, 8, 30, 0, 0, 0));
  /* Last Friday. */
  NEXT("0 0 * * 5L", NULL, t, utc(2024, 1, 26, 0, 0, 0), utc(2024, 2, 23, 0, 0, 0), utc(2024, 3, 29, 0, 0, 0),
       utc(2024, 4, 26, 0, 0, 0), utc(2024, 5, 31, 0, 0, 0));
  expect_same("0 0 * * FRIL", "0 0 * * 5L");
  /* Second Monday, third Friday, fifth Monday (only in months that have one). */
  NEXT("0 0 * * MON#2", NULL, t, utc(2024, 1, 8, 0, 0, 0), utc(2024, 2, 12, 0, 0, 0), utc(2024, 3, 11, 0, 0, 0));
  NEXT("0 0 * * 5#3", NULL, t, utc(2024, 1, 19, 0, 0, 0), utc(2024, 2, 16, 0, 0, 0));
  NEXT("0 0 * * 1#5", NULL, t, utc(2024, 1, 29, 0, 0, 0), utc(2024, 4, 29, 0, 0, 0), utc(2024, 7, 29, 0, 0, 0),
       utc(2024, 9, 30, 0, 0, 0), utc(2024, 12, 30, 0, 0, 0));
  NEXT("0 0 * * 0#1,5L", NULL, t, utc(2024, 1, 7, 0, 0, 0), utc(2024, 1, 26, 0, 0, 0), utc(2024, 2, 4, 0, 0, 0));
  /* Sunday written 7 with #. */
  expect_same("0 0 * * 7#1", "0 0 * * 0#1");
}

static void test_dom_dow_semantics(void **state) {
  (void)state;
  int64_t t = utc(2024, 9, 1, 0, 0, 0); /* a Sunday */
  /* Both restricted: the 13th OR any Friday. */
  NEXT("0 0 13 * 5", NULL, t, utc(2024, 9, 6, 0, 0, 0), utc(2024, 9, 13, 0, 0, 0), utc(2024, 9, 20, 0, 0, 0),
       utc(2024, 9, 27, 0, 0, 0), utc(2024, 10, 4, 0, 0, 0), utc(2024, 10, 11, 0, 0, 0), utc(2024, 10, 13, 0, 0, 0));
  /* '*' in day-of-week: only the 13th. */
  NEXT("0 0 13 * *", NULL, t, utc(2024, 9, 13, 0, 0, 0), utc(2024, 10, 13, 0, 0, 0));
  /* croniter's rule (Airflow): a day field starting with '*' is still
   * restricted when it does not cover its range, so both restricted: odd
   * days OR Fridays (Vixie's first-character rule would AND them). */
  NEXT("0 0 */2 * 5", NULL, t, utc(2024, 9, 3, 0, 0, 0), utc(2024, 9, 5, 0, 0, 0), utc(2024, 9, 6, 0, 0, 0),
       utc(2024, 9, 7, 0, 0, 0), utc(2024, 9, 9, 0, 0, 0));
  /* The example: days 6 and 12, OR every third weekday from Sunday
   * (Sunday, Wednesday, Saturday), at 05:36 to 19:36. */
  NEXT("36 5-19 6,12 * */3", NULL, utc(2024, 9, 2, 0, 0, 0), utc(2024, 9, 4, 5, 36, 0));
  NEXT("36 5-19 6,12 * */3", NULL, utc(2024, 9, 4, 19, 36, 0), utc(2024, 9, 6, 5, 36, 0));
  NEXT("36 5-19 6,12 * */3", NULL, utc(2024, 9, 6, 19, 36, 0), utc(2024, 9, 7, 5, 36, 0));
  /* '?' behaves as '*'. */
  NEXT("0 0 ? * 5", NULL, t, utc(2024, 9, 6, 0, 0, 0), utc(2024, 9, 13, 0, 0, 0));
  /* A list that covers the range is unrestricted whatever its spelling:
   * AND, so only the Fridays (Vixie would OR, so every day). */
  NEXT("0 0 1-31 * 5", NULL, t, utc(2024, 9, 6, 0, 0, 0), utc(2024, 9, 13, 0, 0, 0));
  NEXT("0 0 */1 * 5", NULL, t, utc(2024, 9, 6, 0, 0, 0), utc(2024, 9, 13, 0, 0, 0));
  NEXT("0 0 13 * 0-6", NULL, t, utc(2024, 9, 13, 0, 0, 0), utc(2024, 10, 13, 0, 0, 0));
  NEXT("0 0 13 * 1-7", NULL, t, utc(2024, 9, 13, 0, 0, 0), utc(2024, 10, 13, 0, 0, 0));
  NEXT("0 0 13 * SUN-SAT", NULL, t, utc(2024, 9, 13, 0, 0, 0), utc(2024, 10, 13, 0, 0, 0));
  /* A '*' item anywhere in the list makes the field unrestricted. */
  NEXT("0 0 *,L * 5", NULL, t, utc(2024, 9, 6, 0, 0, 0), utc(2024, 9, 13, 0, 0, 0));
  /* croniter counts "L" as one value beside the day numbers: 1-30,L is
   * 31 values (unrestricted: AND), 1-31,L is 32 (restricted: OR). */
  NEXT("0 0 1-30,L * 5", NULL, t, utc(2024, 9, 6, 0, 0, 0), utc(2024, 9, 13, 0, 0, 0));
  NEXT("0 0 1-31,L * 5", NULL, t, utc(2024, 9, 2, 0, 0, 0), utc(2024, 9, 3, 0, 0, 0));
  /* Six of seven weekdays is restricted: the 13th OR Monday-Saturday. */
  NEXT("0 0 13 * 1-6", NULL, utc(2024, 10, 12, 0, 0, 0), utc(2024, 10, 13, 0, 0, 0), utc(2024, 10, 14, 0, 0, 0));
  /* 1-7 OR Monday (the classic "first Monday" mistake). */
  NEXT("0 0 1-7 * 1", NULL, utc(2024, 9, 5, 0, 0, 0), utc(2024, 9, 6, 0, 0, 0), utc(2024, 9, 7, 0, 0, 0),
       utc(2024, 9, 9, 0, 0, 0), utc(2024, 9, 16, 0, 0, 0));
  /* Specials take part in OR: the last day or the second Monday. */
  NEXT("0 0 L * MON#2", NULL, t, utc(2024, 9, 9, 0, 0, 0), utc(2024, 9, 30, 0, 0, 0), utc(2024, 10, 14, 0, 0, 0),
       utc(2024, 10, 31, 0, 0, 0));
  /* And AND with '*' first in dom. */
  NEXT("0 0 * * MON#2", NULL, t, utc(2024, 9, 9, 0, 0, 0), utc(2024, 10, 14, 0, 0, 0));
}

static void test_intervals(void **state) {
  (void)state;
  dagd_cron *c = parse("every 15m");
  assert_true(dagd_cron_is_interval(c));
  assert_int_equal(dagd_cron_interval(c), 900);
  int64_t out;
  /* Default anchor: the epoch, so :00, :15, ... in UTC whatever the zone. */
  dagd_tz *lh = zone("Australia/Lord_Howe");
  assert_int_equal(dagd_cron_next(c, lh, utc(2024, 5, 1, 10, 7, 0), &out), 0);
  assert_int_equal(out, utc(2024, 5, 1, 10, 15, 0));
  assert_int_equal(dagd_cron_next(c, NULL, utc(2024, 5, 1, 10, 15, 0), &out), 0);
  assert_int_equal(out, utc(2024, 5, 1, 10, 30, 0));
  assert_int_equal(dagd_cron_prev(c, NULL, utc(2024, 5, 1, 10, 15, 0), &out), 0);
  assert_int_equal(out, utc(2024, 5, 1, 10, 0, 0));
  assert_int_equal(dagd_cron_prev(c, NULL, utc(2024, 5, 1, 10, 15, 1), &out), 0);
  assert_int_equal(out, utc(2024, 5, 1, 10, 15, 0));
  /* Anchored at a start date. */
  dagd_cron_set_anchor(c, utc(2024, 1, 1, 0, 5, 0));
  assert_int_equal(dagd_cron_next(c, NULL, utc(2024, 5, 1, 10, 7, 0), &out), 0);
  assert_int_equal(out, utc(2024, 5, 1, 10, 20, 0));
  assert_int_equal(dagd_cron_next(c, NULL, utc(2023, 12, 31, 23, 59, 0), &out), 0);
  assert_int_equal(out, utc(2024, 1, 1, 0, 5, 0));
  assert_int_equal(dagd_cron_prev(c, NULL, utc(2024, 1, 1, 0, 5, 0), &out), 0);
  assert_int_equal(out, utc(2023, 12, 31, 23, 50, 0));
  dagd_cron_free(c);
  /* Intervals ignore DST: every 1h is every 3600s of real time. */
  c = parse("every 6h");
  assert_int_equal(dagd_cron_interval(c), 6 * 3600);
  int64_t t = utc(2024, 10, 26, 23, 0, 0);
  dagd_tz *be = zone("Europe/Berlin");
  for (int i = 0; i < 10; i++) {
    int64_t n;
    assert_int_equal(dagd_cron_next(c, be, t, &n), 0);
    assert_int_equal(n % (6 * 3600), 0);
    assert_true(n - t <= 6 * 3600);
    t = n;
  }
  dagd_cron_free(c);
  c = parse("every 30s");
  assert_int_equal(dagd_cron_interval(c), 30);
  dagd_cron_free(c);
  c = parse("every 1d");
  assert_int_equal(dagd_cron_next(c, NULL, utc(2024, 5, 1, 10, 7, 0), &out), 0);
  assert_int_equal(out, utc(2024, 5, 2, 0, 0, 0));
  dagd_cron_free(c);
  c = parse("every 1h30m");
  assert_int_equal(dagd_cron_interval(c), 5400);
  /* Instants out of the supported range are refused, not overflowed. */
  assert_int_equal(dagd_cron_next(c, NULL, INT64_MAX, &out), DAGD_ENOENT);
  assert_int_equal(dagd_cron_prev(c, NULL, INT64_MIN, &out), DAGD_ENOENT);
  dagd_cron_set_anchor(c, INT64_MIN);
  assert_int_equal(dagd_cron_next(c, NULL, 0, &out), DAGD_ENOENT);
  dagd_cron_free(c);
  c = parse("0 * * * *");
  assert_false(dagd_cron_is_interval(c));
  assert_int_equal(dagd_cron_interval(c), 0);
  dagd_cron_free(c);
  dagd_tz_free(lh);
  dagd_tz_free(be);
}

/* ---- DST ---- */

static void test_dst_berlin(void **state) {
  (void)state;
  const char *z = "Europe/Berlin";
  /* Spring 2024-03-31: 02:00 CET -> 03:00 CEST (01:00Z). */
  int64_t s = utc(2024, 3, 30, 12, 0, 0);
  /* Fixed time in the gap: once, shifted forward by the gap (03:30 CEST). */
  NEXT("30 2 * * *", z, s, utc(2024, 3, 31, 1, 30, 0), utc(2024, 4, 1, 0, 30, 0));
  NEXT("0 2 * * *", z, s, utc(2024, 3, 31, 1, 0, 0), utc(2024, 4, 1, 0, 0, 0));
  /* 02:00 and 03:00 land on the same instant: one run. */
  NEXT("0 2,3 * * *", z, s, utc(2024, 3, 31, 1, 0, 0), utc(2024, 4, 1, 0, 0, 0), utc(2024, 4, 1, 1, 0, 0));
  /* Started inside the shifted window (03:10 CEST): the shifted 02:30 run is still ahead. */
  NEXT("30 2 * * *", z, utc(2024, 3, 31, 1, 10, 0), utc(2024, 3, 31, 1, 30, 0), utc(2024, 4, 1, 0, 30, 0));
  /* Hourly: 01:30 CET, (02:30 = 03:30 CEST), 04:30 CEST: no double fire. */
  NEXT("30 * * * *", z, utc(2024, 3, 30, 23, 45, 0), utc(2024, 3, 31, 0, 30, 0), utc(2024, 3, 31, 1, 30, 0),
       utc(2024, 3, 31, 2, 30, 0));
  NEXT("*/20 * * * *", z, utc(2024, 3, 31, 0, 30, 0), utc(2024, 3, 31, 0, 40, 0), utc(2024, 3, 31, 1, 0, 0),
       utc(2024, 3, 31, 1, 20, 0), utc(2024, 3, 31, 1, 40, 0), utc(2024, 3, 31, 2, 0, 0));
  /* Every other hour: 00:00 CET, 02:00 -> 03:00 CEST, 04:00 CEST. */
  NEXT("0 */2 * * *", z, utc(2024, 3, 30, 22, 30, 0), utc(2024, 3, 30, 23, 0, 0), utc(2024, 3, 31, 1, 0, 0),
       utc(2024, 3, 31, 2, 0, 0));
  /* Fall 2024-10-27: 03:00 CEST -> 02:00 CET (01:00Z); 02:xx happens twice. */
  int64_t f = utc(2024, 10, 26, 12, 0, 0);
  /* Fixed time in the repeated hour: first occurrence only. */
  NEXT("30 2 * * *", z, f, utc(2024, 10, 27, 0, 30, 0), utc(2024, 10, 28, 1, 30, 0));
  /* Started in the second pass, the passed first occurrence does not come back. */
  NEXT("45 2 * * *", z, utc(2024, 10, 27, 1, 10, 0), utc(2024, 10, 28, 1, 45, 0));
  /* A fixed hour with a minute step: every 20 minutes of the first pass. */
  NEXT("*/20 2 * * *", z, f, utc(2024, 10, 27, 0, 0, 0), utc(2024, 10, 27, 0, 20, 0), utc(2024, 10, 27, 0, 40, 0),
       utc(2024, 10, 28, 1, 0, 0));
  /* Hourly follows real time through both passes. */
  NEXT("30 * * * *", z, utc(2024, 10, 26, 23, 0, 0), utc(2024, 10, 26, 23, 30, 0), utc(2024, 10, 27, 0, 30, 0),
       utc(2024, 10, 27, 1, 30, 0), utc(2024, 10, 27, 2, 30, 0));
  NEXT("0 */2 * * *", z, utc(2024, 10, 26, 21, 30, 0), utc(2024, 10, 26, 22, 0, 0), utc(2024, 10, 27, 0, 0, 0),
       utc(2024, 10, 27, 1, 0, 0), utc(2024, 10, 27, 3, 0, 0));
  NEXT("0 1-3/1 * * *", z, f, utc(2024, 10, 26, 23, 0, 0), utc(2024, 10, 27, 0, 0, 0), utc(2024, 10, 27, 1, 0, 0),
       utc(2024, 10, 27, 2, 0, 0));
  /* Footer era, 2077: 28 March gap, 31 October overlap. */
  NEXT("30 2 * * *", z, utc(2077, 3, 27, 12, 0, 0), utc(2077, 3, 28, 1, 30, 0), utc(2077, 3, 29, 0, 30, 0));
  NEXT("30 * * * *", z, utc(2077, 10, 31, 0, 0, 0), utc(2077, 10, 31, 0, 30, 0), utc(2077, 10, 31, 1, 30, 0));
  /* Seconds field in the gap: 02:00:30 -> 03:00:30 CEST. */
  NEXT("30 0 2 * * *", z, s, utc(2024, 3, 31, 1, 0, 30), utc(2024, 4, 1, 0, 0, 30));
}

static void test_dst_new_york(void **state) {
  (void)state;
  const char *z = "America/New_York";
  /* Spring 2024-03-10: 02:00 EST -> 03:00 EDT (07:00Z). */
  NEXT("30 2 * * *", z, utc(2024, 3, 9, 12, 0, 0), utc(2024, 3, 9, 7, 30, 0) + 86400, utc(2024, 3, 11, 6, 30, 0));
  NEXT("15 * * * *", z, utc(2024, 3, 10, 5, 0, 0), utc(2024, 3, 10, 5, 15, 0), utc(2024, 3, 10, 6, 15, 0),
       utc(2024, 3, 10, 7, 15, 0), utc(2024, 3, 10, 8, 15, 0));
  /* Fall 2024-11-03: 02:00 EDT -> 01:00 EST (06:00Z); 01:xx twice. */
  NEXT("30 1 * * *", z, utc(2024, 11, 2, 12, 0, 0), utc(2024, 11, 3, 5, 30, 0), utc(2024, 11, 4, 6, 30, 0));
  NEXT("30 * * * *", z, utc(2024, 11, 3, 4, 0, 0), utc(2024, 11, 3, 4, 30, 0), utc(2024, 11, 3, 5, 30, 0),
       utc(2024, 11, 3, 6, 30, 0), utc(2024, 11, 3, 7, 30, 0));
  NEXT("0 0 * * *", z, utc(2024, 11, 2, 12, 0, 0), utc(2024, 11, 3, 4, 0, 0), utc(2024, 11, 4, 5, 0, 0));
}

static void test_dst_lord_howe(void **state) {
  (void)state;
  const char *z = "Australia/Lord_Howe";
  /* Spring 2024-10-06: 02:00 +10:30 -> 02:30 +11 (15:30Z Oct 5). */
  NEXT("15 2 * * *", z, utc(2024, 10, 5, 0, 0, 0), utc(2024, 10, 5, 15, 45, 0), utc(2024, 10, 6, 15, 15, 0));
  NEXT("0 2 * * *", z, utc(2024, 10, 5, 0, 0, 0), utc(2024, 10, 5, 15, 30, 0), utc(2024, 10, 6, 15, 0, 0));
  /* Every 15 minutes: real time stays evenly spaced, nothing doubled. */
  NEXT("*/15 * * * *", z, utc(2024, 10, 5, 15, 0, 0), utc(2024, 10, 5, 15, 15, 0), utc(2024, 10, 5, 15, 30, 0),
       utc(2024, 10, 5, 15, 45, 0), utc(2024, 10, 5, 16, 0, 0));
  /* Hourly at :00: 01:00 +10:30, 02:00 -> 02:30 +11, 03:00 +11. */
  NEXT("0 * * * *", z, utc(2024, 10, 5, 14, 0, 0), utc(2024, 10, 5, 14, 30, 0), utc(2024, 10, 5, 15, 30, 0),
       utc(2024, 10, 5, 16, 0, 0));
  /* Fall 2024-04-07: 02:00 +11 -> 01:30 +10:30 (15:00Z Apr 6); 01:30-02:00 twice. */
  NEXT("45 1 * * *", z, utc(2024, 4, 6, 0, 0, 0), utc(2024, 4, 6, 14, 45, 0), utc(2024, 4, 7, 15, 15, 0));
  NEXT("*/15 * * * *", z, utc(2024, 4, 6, 14, 0, 0), utc(2024, 4, 6, 14, 15, 0), utc(2024, 4, 6, 14, 30, 0),
       utc(2024, 4, 6, 14, 45, 0), utc(2024, 4, 6, 15, 0, 0), utc(2024, 4, 6, 15, 15, 0), utc(2024, 4, 6, 15, 30, 0));
  NEXT("0 * * * *", z, utc(2024, 4, 6, 13, 30, 0), utc(2024, 4, 6, 14, 0, 0), utc(2024, 4, 6, 15, 30, 0));
}

/* No DST change loses or doubles a fixed-time daily job: exactly one run per
 * local day, on that day, through whole years in every zone. */
static void test_fixed_time_one_run_per_day(void **state) {
  (void)state;
  const char *zones[] = {"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"};
  const char *exprs[] = {"0 0 * * *", "30 1 * * *", "0 2 * * *", "15 2 * * *", "45 2 * * *", "0 3 * * *",
                         "59 1 * * *", "0 12 * * *", "59 23 * * *", "0 30 2 * * *"};
  for (size_t z = 0; z < 5; z++) {
    dagd_tz *tz = zone(zones[z]);
    for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++) {
      dagd_cron *c = parse(exprs[e]);
      for (int year = 2024; year <= 2077; year += 53) {
        int64_t t;
        assert_int_equal(dagd_cron_next(c, tz, dagd_days_from_civil(year, 1, 1) * 86400, &t), 0);
        dagd_tm tm;
        dagd_tz_localtime(tz, t, &tm, NULL);
        int64_t day = dagd_days_from_civil(tm.year, tm.mon, tm.mday);
        for (int i = 0; i < 366; i++) {
          int64_t n;
          assert_int_equal(dagd_cron_next(c, tz, t, &n), 0);
          dagd_tz_localtime(tz, n, &tm, NULL);
          int64_t nday = dagd_days_from_civil(tm.year, tm.mon, tm.mday);
          if (nday != day + 1)
            fail_msg("\"%s\" in %s: after %s next is %s (local day %lld, want %lld)", exprs[e], zones[z], fmt(t),
                     fmt(n), (long long)nday, (long long)day + 1);
          day = nday;
          t = n;
        }
      }
      dagd_cron_free(c);
    }
    dagd_tz_free(tz);
  }
}

/* An hourly job in whole-hour-offset zones fires every 3600 s of real
 * time, through both DST changes of the year. */
static void test_hourly_follows_real_time(void **state) {
  (void)state;
  const char *zones[] = {"Europe/Berlin", "America/New_York", "UTC"};
  const char *exprs[] = {"0 * * * *", "17 * * * *", "0 */1 * * *"};
  for (size_t z = 0; z < 3; z++) {
    dagd_tz *tz = zone(zones[z]);
    for (size_t e = 0; e < 3; e++) {
      dagd_cron *c = parse(exprs[e]);
      int64_t t, n;
      assert_int_equal(dagd_cron_next(c, tz, utc(2024, 1, 1, 0, 0, 0), &t), 0);
      for (int i = 0; i < 366 * 24; i++) {
        assert_int_equal(dagd_cron_next(c, tz, t, &n), 0);
        if (n - t != 3600) fail_msg("\"%s\" in %s: %s -> %s", exprs[e], zones[z], fmt(t), fmt(n));
        t = n;
      }
      dagd_cron_free(c);
    }
    dagd_tz_free(tz);
  }
}

/* prev and next are inverses on fire times, in every zone, for a mix of
 * schedules, from pseudo-random starts (fixed seed). */
static void test_prev_next_roundtrip(void **state) {
  (void)state;
  const char *zones[] = {"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"};
  const char *exprs[] = {"*/15 * * * *", "30 2 * * *", "0 */2 * * *", "0 0 29 2 *", "0 0 L * *", "0 9 * * MON#2",
                         "*/7 2-3 * * *", "0 0 13 * 5", "15 1,2,3 * * 0", "*/30 * * * * *", "0 0 LW * *",
                         "0 2 15W * *", "@weekly", "0 30 1 * * *", "45 * * * *"};
  uint64_t seed = 12345;
  for (size_t z = 0; z < 5; z++) {
    dagd_tz *tz = zone(zones[z]);
    for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++) {
      dagd_cron *c = parse(exprs[e]);
      for (int k = 0; k < 20; k++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t start = utc(1995, 1, 1, 0, 0, 0) + (int64_t)(seed >> 33) % (int64_t)(60LL * 365 * 86400);
        int64_t seq[30];
        int64_t t = start;
        for (int i = 0; i < 30; i++) {
          assert_int_equal(dagd_cron_next(c, tz, t, &seq[i]), 0);
          assert_true(seq[i] > t);
          t = seq[i];
        }
        for (int i = 29; i > 0; i--) {
          int64_t p;
          assert_int_equal(dagd_cron_prev(c, tz, seq[i], &p), 0);
          if (p != seq[i - 1])
            fail_msg("\"%s\" in %s: prev(%s) = %s, want %s", exprs[e], zones[z], fmt(seq[i]), fmt(p), fmt(seq[i - 1]));
          assert_int_equal(dagd_cron_prev(c, tz, seq[i] + 1, &p), 0);
          assert_int_equal(p, seq[i]);
        }
        /* prev of the start, then next of that, is the first fire time. */
        int64_t p, n;
        assert_int_equal(dagd_cron_prev(c, tz, start + 1, &p), 0);
        assert_true(p <= start);
        assert_int_equal(dagd_cron_next(c, tz, p, &n), 0);
        assert_int_equal(n, seq[0]);
      }
      dagd_cron_free(c);
    }
    dagd_tz_free(tz);
  }
}

static void expect_describe(const char *expr, const char *want) {
  dagd_cron *c = parse(expr);
  char *d = dagd_cron_describe(c);
  if (strcmp(d, want) != 0) fail_msg("describe \"%s\": \"%s\", want \"%s\"", expr, d, want);
  free(d);
  dagd_cron_free(c);
}

static void test_describe(void **state) {
  (void)state;
  expect_describe("0 2 * * *", "at 02:00 every day");
  expect_describe("@daily", "at 00:00 every day");
  expect_describe("*/15 * * * *", "every 15 minutes");
  expect_describe("* * * * *", "every minute");
  expect_describe("@hourly", "every hour");
  expect_describe("5 * * * *", "at minute 5 of every hour");
  expect_describe("0 */6 * * *", "at minute 0 of every 6 hours");
  expect_describe("30 9 * * 1-5", "at 09:30 on Monday through Friday");
  expect_describe("0 8,20 * * SAT,SUN", "at 08:00, 20:00 on Sunday, Saturday");
  expect_describe("@monthly", "at 00:00 on day 1 of the month");
  expect_describe("@yearly", "at 00:00 on day 1 of the month in January");
  expect_describe("0 0 L * *", "at 00:00 on the last day of the month");
  expect_describe("0 0 * * 5L", "at 00:00 on the last Friday of the month");
  expect_describe("0 0 * * MON#2", "at 00:00 on the second Monday of the month");
  expect_describe("0 0 13 * 5", "at 00:00 on day 13 of the month or on Friday");
  expect_describe("0 0 */2 * 5", "at 00:00 on days */2 of the month or on Friday");
  expect_describe("0 0 1-31 * 5", "at 00:00 on Friday if the day of the month is 1-31");
  expect_describe("*/10 * * * * *", "every 10 seconds");
  expect_describe("15 30 2 * * *", "at 02:30:15 every day");
  expect_describe("every 15m", "every 15 minutes");
  expect_describe("every 1d", "every day");
  expect_describe("every 90m", "every 90 minutes");
  expect_describe("every 30s", "every 30 seconds");
  expect_describe("0 9 * 1-3 *", "at 09:00 every day in months 1-3");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_ok),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_equivalences),
      cmocka_unit_test(test_next_utc),
      cmocka_unit_test(test_leap_years),
      cmocka_unit_test(test_impossible),
      cmocka_unit_test(test_special_days),
      cmocka_unit_test(test_dom_dow_semantics),
      cmocka_unit_test(test_intervals),
      cmocka_unit_test(test_dst_berlin),
      cmocka_unit_test(test_dst_new_york),
      cmocka_unit_test(test_dst_lord_howe),
      cmocka_unit_test(test_fixed_time_one_run_per_day),
      cmocka_unit_test(test_hourly_follows_real_time),
      cmocka_unit_test(test_prev_next_roundtrip),
      cmocka_unit_test(test_describe),
  };
  return cmocka_run_group_tests_name("cron", tests, NULL, NULL);
}
