/* POSIX TZ strings, as found in the footer of TZif v2+ files
 * ("CET-1CEST,M3.5.0,M10.5.0/3"): parsing and evaluation for instants past
 * the file's last transition. Pure.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "dagd/err.h"
#include "dagd/time.h"
#include "tz/internal.h"

/* Floor division for instants before 1970. */
static int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* A zone abbreviation: three or more letters, or anything but '>' between
 * angle brackets ("<+0530>"). */
static const char *parse_name(const char *p) {
  if (*p == '<') {
    const char *q = p + 1;
    while (*q && *q != '>') q++;
    if (*q != '>' || q - p - 1 < 3) return NULL;
    return q + 1;
  }
  const char *q = p;
  while (isalpha((unsigned char)*q)) q++;
  return q - p >= 3 ? q : NULL;
}

/* [+-]hh[:mm[:ss]] with hh up to max_hours; *secs gets the signed value. */
static const char *parse_hms(const char *p, int max_hours, int32_t *secs) {
  int sign = 1;
  if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
  if (!isdigit((unsigned char)*p)) return NULL;
  int h = 0, m = 0, s = 0, nd = 0;
  while (isdigit((unsigned char)*p) && nd < 3) h = h * 10 + (*p++ - '0'), nd++;
  if (isdigit((unsigned char)*p) || h > max_hours) return NULL;
  if (*p == ':') {
    p++;
    if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1])) return NULL;
    m = (p[0] - '0') * 10 + (p[1] - '0');
    p += 2;
    if (m > 59) return NULL;
    if (*p == ':') {
      p++;
      if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1])) return NULL;
      s = (p[0] - '0') * 10 + (p[1] - '0');
      p += 2;
      if (s > 59) return NULL;
    }
  }
  *secs = sign * (h * 3600 + m * 60 + s);
  return p;
}

static const char *parse_int(const char *p, int lo, int hi, int *out) {
  if (!isdigit((unsigned char)*p)) return NULL;
  int v = 0, nd = 0;
  while (isdigit((unsigned char)*p)) {
    if (++nd > 3) return NULL;
    v = v * 10 + (*p++ - '0');
  }
  if (v < lo || v > hi) return NULL;
  *out = v;
  return p;
}

/* One rule date with its optional "/time" (RFC 8536 allows -167..167h). */
static const char *parse_date(const char *p, dagd__tz_date *d) {
  memset(d, 0, sizeof(*d));
  if (*p == 'J') {
    d->kind = DAGD__TZ_JULIAN1;
    p = parse_int(p + 1, 1, 365, &d->n);
  } else if (*p == 'M') {
    d->kind = DAGD__TZ_MWD;
    p = parse_int(p + 1, 1, 12, &d->mon);
    if (p == NULL || *p++ != '.') return NULL;
    p = parse_int(p, 1, 5, &d->week);
    if (p == NULL || *p++ != '.') return NULL;
    p = parse_int(p, 0, 6, &d->wday);
  } else {
    d->kind = DAGD__TZ_JULIAN0;
    p = parse_int(p, 0, 365, &d->n);
  }
  if (p == NULL) return NULL;
  d->time = 2 * 3600;
  if (*p == '/') p = parse_hms(p + 1, 167, &d->time);
  return p;
}

int dagd__tz_rule_parse(const char *s, dagd__tz_rule *out) {
  memset(out, 0, sizeof(*out));
  const char *p = parse_name(s);
  int32_t off;
  if (p == NULL || (p = parse_hms(p, 24, &off)) == NULL) return DAGD_ESYNTAX;
  out->std_off = -off;
  if (*p == '\0') return 0;
  p = parse_name(p);
  if (p == NULL) return DAGD_ESYNTAX;
  out->has_dst = true;
  out->dst_off = out->std_off + 3600;
  if (*p != ',' && *p != '\0') {
    if ((p = parse_hms(p, 24, &off)) == NULL) return DAGD_ESYNTAX;
    out->dst_off = -off;
  }
  if (*p == '\0') {
    /* No rule given: POSIX leaves it to the implementation; the US rule
     * is what glibc and the tz reference code use. */
    out->start = (dagd__tz_date){.kind = DAGD__TZ_MWD, .mon = 3, .week = 2, .wday = 0, .time = 7200};
    out->end = (dagd__tz_date){.kind = DAGD__TZ_MWD, .mon = 11, .week = 1, .wday = 0, .time = 7200};
    return 0;
  }
  if (*p++ != ',' || (p = parse_date(p, &out->start)) == NULL) return DAGD_ESYNTAX;
  if (*p++ != ',' || (p = parse_date(p, &out->end)) == NULL) return DAGD_ESYNTAX;
  return *p == '\0' ? 0 : DAGD_ESYNTAX;
}

/* Days since the epoch of a rule date in `year`. */
static int64_t date_days(const dagd__tz_date *d, int year) {
  int64_t jan1 = dagd_days_from_civil(year, 1, 1);
  switch (d->kind) {
  case DAGD__TZ_JULIAN1:
    /* Feb 29 is never counted: day 60 is always March 1st. */
    return jan1 + d->n - 1 + (dagd_is_leap(year) && d->n >= 60);
  case DAGD__TZ_JULIAN0: return jan1 + d->n;
  case DAGD__TZ_MWD:
  default: {
    int64_t first = dagd_days_from_civil(year, d->mon, 1);
    int wday1 = (int)((first % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
    int64_t day = first + (d->wday - wday1 + 7) % 7 + (int64_t)(d->week - 1) * 7;
    int64_t last = first + dagd_days_in_month(year, d->mon) - 1;
    while (day > last) day -= 7;
    return day;
  }
  }
}

void dagd__tz_rule_year(const dagd__tz_rule *r, int year, int64_t *start, int64_t *end) {
  /* The start is given in standard time, the end in daylight time. */
  *start = date_days(&r->start, year) * 86400 + r->start.time - r->std_off;
  *end = date_days(&r->end, year) * 86400 + r->end.time - r->dst_off;
}

int32_t dagd__tz_rule_offset(const dagd__tz_rule *r, int64_t t) {
  if (!r->has_dst) return r->std_off;
  int year, mon, mday;
  dagd_civil_from_days(floor_div(t + r->std_off, 86400), &year, &mon, &mday);
  /* The latest transition at or before t among the neighbouring years
   * decides; an end and a start at the same instant (all-year DST written
   * as "0/0,J365/25") leave DST in effect. */
  int64_t best = INT64_MIN;
  int32_t off = r->std_off;
  for (int y = year - 1; y <= year + 1; y++) {
    int64_t s, e;
    dagd__tz_rule_year(r, y, &s, &e);
    if (e <= t && (e > best)) best = e, off = r->std_off;
    if (s <= t && (s >= best)) best = s, off = r->dst_off;
  }
  return off;
}
