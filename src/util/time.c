/* Civil calendar arithmetic, durations and RFC 3339 text, all over int64
 * seconds since the Unix epoch (microseconds where run ids need them).
 * Nothing here knows about zones.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dagd/err.h"
#include "dagd/time.h"

/* Floor division, so dates before 1970 come out right. */
static int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

int dagd_is_leap(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int dagd_days_in_month(int year, int mon) {
  static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mon == 2) return dagd_is_leap(year) ? 29 : 28;
  return days[(mon - 1) % 12];
}

/* Counts days in 400-year eras starting on March 1st, where the leap day
 * falls at the end of the (shifted) year and month lengths repeat every
 * five months: 153 days. */
int64_t dagd_days_from_civil(int year, int mon, int mday) {
  int64_t y = (int64_t)year - (mon <= 2);
  int64_t era = floor_div(y, 400);
  int64_t yoe = y - era * 400;                                  /* [0, 399] */
  int64_t mp = (mon + 9) % 12;                                  /* March = 0 */
  int64_t doy = (153 * mp + 2) / 5 + mday - 1;                  /* [0, 365] */
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* [0, 146096] */
  return era * 146097 + doe - 719468;
}

void dagd_civil_from_days(int64_t days, int *year, int *mon, int *mday) {
  int64_t z = days + 719468;
  int64_t era = floor_div(z, 146097);
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int d = (int)(doy - (153 * mp + 2) / 5 + 1);
  int m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *year = (int)(yoe + era * 400 + (m <= 2));
  *mon = m;
  *mday = d;
}

int64_t dagd_tm_to_epoch(const dagd_tm *tm) {
  return dagd_days_from_civil(tm->year, tm->mon, tm->mday) * 86400 + (int64_t)tm->hour * 3600 +
         (int64_t)tm->min * 60 + tm->sec;
}

void dagd_epoch_to_tm(int64_t t, dagd_tm *tm) {
  int64_t days = floor_div(t, 86400);
  int64_t rem = t - days * 86400;
  dagd_civil_from_days(days, &tm->year, &tm->mon, &tm->mday);
  tm->hour = (int)(rem / 3600);
  tm->min = (int)(rem % 3600 / 60);
  tm->sec = (int)(rem % 60);
  tm->wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
  tm->yday = (int)(days - dagd_days_from_civil(tm->year, 1, 1));
}

int64_t dagd_time_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec;
}

uint64_t dagd_time_wake_delay_ms(double wake, double now, uint64_t max_ms) {
  double delay = wake - now;
  if (!(delay > 0)) return 0;
  if (delay * 1000 >= (double)max_ms) return max_ms;
  uint64_t ms = (uint64_t)(delay * 1000) + 1;
  return ms < max_ms ? ms : max_ms;
}

int dagd_duration_parse(const char *s, int64_t *out, dagd_err *err) {
  static const int64_t max = 100LL * 366 * 86400;
  const char *p = s;
  double total = 0;
  int parts = 0;
  if (s == NULL || *s == '\0') return dagd_err_set(err, DAGD_EINVAL, "empty duration");
  while (*p) {
    while (*p == ' ') p++;
    if (*p == '\0') break;
    /* Only plain decimals: strtod alone would take "0x10", "1e3" or "inf". */
    char num[32];
    size_t len = 0;
    while ((isdigit((unsigned char)p[len]) || p[len] == '.') && len < sizeof(num) - 1) len++;
    if (len == 0 || len == sizeof(num) - 1) goto bad;
    memcpy(num, p, len);
    num[len] = '\0';
    char *end;
    double v = strtod(num, &end);
    if (*end != '\0' || !isfinite(v)) goto bad;
    p += len;
    while (*p == ' ') p++;
    double unit;
    switch (*p) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    case '\0':
      /* A bare number means seconds, but only on its own: "1h30" is a typo. */
      if (parts > 0) goto bad;
      unit = 1;
      break;
    default: goto bad;
    }
    if (*p) {
      p++;
      /* "5ms" or "5min" are not units here; refuse rather than guess. */
      if (isalpha((unsigned char)*p)) goto bad;
    }
    total += v * unit;
    parts++;
    if (total > (double)max) return dagd_err_set(err, DAGD_ERANGE, "duration \"%s\" is longer than 100 years", s);
  }
  if (parts == 0) goto bad;
  if (total < 1) return dagd_err_set(err, DAGD_ERANGE, "duration \"%s\" must be at least 1s", s);
  *out = (int64_t)llround(total);
  return 0;
bad:
  return dagd_err_set(err, DAGD_EINVAL,
                      "bad duration \"%s\" (expected e.g. \"30s\", \"15m\", \"2h\", \"1d\", \"1h30m\")", s);
}

void dagd_duration_format(int64_t secs, char *out, size_t n) {
  static const struct { int64_t size; char unit; } units[] = {
      {86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  size_t used = 0;
  out[0] = '\0';
  if (secs == 0) {
    snprintf(out, n, "0s");
    return;
  }
  if (secs < 0) {
    used += (size_t)snprintf(out, n, "-");
    secs = -secs;
  }
  for (size_t i = 0; i < 4 && used < n; i++) {
    if (secs >= units[i].size) {
      used += (size_t)snprintf(out + used, n - used, "%lld%c", (long long)(secs / units[i].size), units[i].unit);
      secs %= units[i].size;
    }
  }
}

/* Reads exactly `width` digits. */
static int digits(const char **p, int width, int *out) {
  int v = 0;
  for (int i = 0; i < width; i++) {
    if (!isdigit((unsigned char)(*p)[i])) return -1;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += width;
  *out = v;
  return 0;
}

int dagd_time_parse(const char *s, int64_t *out, int *has_offset, dagd_err *err) {
  const char *p = s;
  dagd_tm tm = {0};
  int offset = 0;
  *has_offset = 0;
  if (s == NULL) goto bad;
  if (digits(&p, 4, &tm.year) || *p++ != '-' || digits(&p, 2, &tm.mon) || *p++ != '-' ||
      digits(&p, 2, &tm.mday))
    goto bad;
  if (*p == 'T' || *p == 't' || *p == ' ') {
    p++;
    if (digits(&p, 2, &tm.hour) || *p++ != ':' || digits(&p, 2, &tm.min)) goto bad;
    if (*p == ':') {
      p++;
      if (digits(&p, 2, &tm.sec)) goto bad;
      if (*p == '.') { /* fractional seconds are accepted and dropped */
        p++;
        if (!isdigit((unsigned char)*p)) goto bad;
        while (isdigit((unsigned char)*p)) p++;
      }
    }
    if (*p == 'Z' || *p == 'z') {
      p++;
      *has_offset = 1;
    } else if (*p == '+' || *p == '-') {
      int sign = *p++ == '-' ? -1 : 1, oh, om;
      if (digits(&p, 2, &oh)) goto bad;
      if (*p == ':') p++;
      if (digits(&p, 2, &om) || oh > 23 || om > 59) goto bad;
      offset = sign * (oh * 3600 + om * 60);
      *has_offset = 1;
    }
  }
  if (*p != '\0') goto bad;
  if (tm.mon < 1 || tm.mon > 12 || tm.mday < 1 || tm.mday > dagd_days_in_month(tm.year, tm.mon) ||
      tm.hour > 23 || tm.min > 59 || tm.sec > 60)
    return dagd_err_set(err, DAGD_ERANGE, "date \"%s\" does not exist", s);
  if (tm.sec == 60) tm.sec = 59; /* leap second: clamp */
  *out = dagd_tm_to_epoch(&tm) - offset;
  return 0;
bad:
  return dagd_err_set(err, DAGD_EINVAL,
                      "bad date \"%s\" (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM])",
                      s ? s : "(null)");
}

/* Writes v as exactly n digits (v < 10^n). */
static char *put_digits(char *o, int v, int n) {
  for (int i = n - 1; i >= 0; i--, v /= 10) o[i] = (char)('0' + v % 10);
  return o + n;
}

void dagd_time_format_utc(int64_t t, char *out) {
  dagd_tm tm;
  dagd_epoch_to_tm(t, &tm);
  if (tm.year < 0 || tm.year > 9999) {
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.year, tm.mon, tm.mday, tm.hour, tm.min, tm.sec);
    return;
  }
  /* Once per try and more: by hand, not through printf. */
  char *o = put_digits(out, tm.year, 4);
  *o++ = '-';
  o = put_digits(o, tm.mon, 2);
  *o++ = '-';
  o = put_digits(o, tm.mday, 2);
  *o++ = 'T';
  o = put_digits(o, tm.hour, 2);
  *o++ = ':';
  o = put_digits(o, tm.min, 2);
  *o++ = ':';
  o = put_digits(o, tm.sec, 2);
  *o++ = 'Z';
  *o = '\0';
}

void dagd_time_format_offset(int64_t t, int32_t offset, char *out) {
  dagd_tm tm;
  dagd_epoch_to_tm(t + offset, &tm);
  int32_t a = offset < 0 ? -offset : offset;
  snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", tm.year, tm.mon, tm.mday, tm.hour, tm.min,
           tm.sec, offset < 0 ? '-' : '+', (int)(a / 3600), (int)(a % 3600 / 60));
}

int64_t dagd_time_usec(double t) { return llround(t * 1e6); }

void dagd_time_format_offset_usec(int64_t usec, int32_t offset, char *out) {
  int64_t secs = floor_div(usec, 1000000);
  dagd_tm tm;
  dagd_epoch_to_tm(secs + offset, &tm);
  int32_t a = offset < 0 ? -offset : offset;
  snprintf(out, DAGD_TIME_USEC_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%06d%c%02d:%02d", tm.year, tm.mon, tm.mday,
           tm.hour, tm.min, tm.sec, (int)(usec - secs * 1000000), offset < 0 ? '-' : '+', (int)(a / 3600),
           (int)(a % 3600 / 60));
}
