/* Internals of the tz module: the POSIX TZ rule from a TZif footer, and the
 * transition walk the cron module uses to iterate wall time segment by
 * segment (a segment is a span of instants with one UTC offset).
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_TZ_INTERNAL_H
#define DAGD_TZ_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "dagd/tz.h"

/* One end of a DST period in a POSIX TZ string: "Jn" (1-365, Feb 29 never
 * counted), "n" (0-365, leap day counted) or "Mm.w.d" (day d of week w of
 * month m; w 5 = last), plus the local time of day in seconds (default
 * 02:00; may be negative or above 24h, up to +-167h). */
typedef struct dagd__tz_date {
  enum { DAGD__TZ_JULIAN1, DAGD__TZ_JULIAN0, DAGD__TZ_MWD } kind;
  int n;          /* day for the Julian forms */
  int mon, week, wday;
  int32_t time;   /* seconds after local midnight */
} dagd__tz_date;

/* A parsed POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3". Offsets
 * are seconds east of Greenwich (the string's sign is inverted). */
typedef struct dagd__tz_rule {
  int32_t std_off;
  int32_t dst_off;
  bool has_dst;
  dagd__tz_date start, end;
} dagd__tz_rule;

/* Parses a POSIX TZ string (the TZif footer); 0 or DAGD_ESYNTAX. */
int dagd__tz_rule_parse(const char *s, dagd__tz_rule *out);
/* Offset in effect at instant t under the rule. */
int32_t dagd__tz_rule_offset(const dagd__tz_rule *r, int64_t t);
/* The instants of the DST start and end in `year` (start is where dst_off
 * begins, end where std_off resumes). Only for rules with has_dst. */
void dagd__tz_rule_year(const dagd__tz_rule *r, int year, int64_t *start, int64_t *end);

/* First instant T > t at which the offset changes (offset(T-1) !=
 * offset(T)). Returns true and fills *at, *before, *after; false when the
 * offset never changes after t. */
bool dagd__tz_change_after(const dagd_tz *tz, int64_t t, int64_t *at, int32_t *before,
                           int32_t *after);
/* Last instant T <= t at which the offset changes; false when none. */
bool dagd__tz_change_before(const dagd_tz *tz, int64_t t, int64_t *at, int32_t *before,
                            int32_t *after);

#endif
