/* IANA time zones read from the system tz database (TZif files under
 * $TZDIR or /usr/share/zoneinfo): UTC offset at an instant, and the
 * instants a local wall time maps to (none in a DST gap, two in an overlap).
 * Pure apart from reading the TZif file in dagd_tz_load.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_TZ_H
#define DAGD_TZ_H

#include <stdint.h>

#include "dagd/time.h"

struct dagd_err;
typedef struct dagd_tz dagd_tz;

/* Loads zone `name` ("UTC", "Europe/Berlin", ...). "UTC", "Etc/UTC" and
 * "Z" need no file. Names with "..", a leading '/', or characters outside
 * [A-Za-z0-9_+/-] are refused with DAGD_EINVAL; an unknown zone is
 * DAGD_ENOENT. On success *out is a new zone; free with dagd_tz_free. */
int dagd_tz_load(const char *name, dagd_tz **out, struct dagd_err *err);
void dagd_tz_free(dagd_tz *tz);
/* The shared UTC zone (never freed; dagd_tz_free ignores it). */
const dagd_tz *dagd_tz_utc(void);
const char *dagd_tz_name(const dagd_tz *tz);

/* UTC offset in seconds east of Greenwich in effect at instant t. */
int32_t dagd_tz_offset(const dagd_tz *tz, int64_t t);
/* Local civil time at instant t; *offset (may be NULL) gets the offset. */
void dagd_tz_localtime(const dagd_tz *tz, int64_t t, dagd_tm *out, int32_t *offset);

/* The instants whose local time in tz is the wall time `wall` (wday/yday
 * ignored). Returns the count: 1 normally, 2 in a fall-back overlap
 * (out[0] < out[1]), 0 in a spring-forward gap. For a gap, out[0] is set to
 * the wall time shifted forward by the gap (the instant the wall time would
 * be under the offset in effect before the gap), which is how cron and
 * croniter treat a time that does not exist. */
int dagd_tz_mktime(const dagd_tz *tz, const dagd_tm *wall, int64_t out[2]);

#endif
