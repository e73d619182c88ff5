/* Time values: int64 seconds since the Unix epoch (UTC), proleptic Gregorian
 * calendar arithmetic, durations, and RFC 3339 parsing and formatting.
 * Pure: nothing here reads the clock except dagd_time_now.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_TIME_H
#define DAGD_TIME_H

#include <stddef.h>
#include <stdint.h>

struct dagd_err;

/* Broken-down civil time (no zone). mon 1-12, mday 1-31, wday 0=Sunday,
 * yday 0-365. */
typedef struct dagd_tm {
  int year, mon, mday, hour, min, sec;
  int wday, yday;
} dagd_tm;

/* Days since 1970-01-01 of a civil date (any year, proleptic Gregorian). */
int64_t dagd_days_from_civil(int year, int mon, int mday);
void dagd_civil_from_days(int64_t days, int *year, int *mon, int *mday);
int dagd_days_in_month(int year, int mon);
int dagd_is_leap(int year);
/* Seconds since epoch of a civil time taken as UTC (wday/yday ignored). */
int64_t dagd_tm_to_epoch(const dagd_tm *tm);
/* Fills every field of tm, wday and yday included. */
void dagd_epoch_to_tm(int64_t t, dagd_tm *tm);

/* Current time, seconds since epoch. Only edges (daemon, cli) call this;
 * pure modules take `now` as a parameter. */
int64_t dagd_time_now(void);

/* How long a monotonic timer should sleep, in ms, for a wake at wall time
 * `wake` seen at wall time `now`: never less than 0, rounded up so the
 * timer does not fire just before the wake, and never more than max_ms.
 * The bound is what catches a wall-clock jump that nothing reported: the
 * timer fires, the caller reads the clock again and re-arms. */
uint64_t dagd_time_wake_delay_ms(double wake, double now, uint64_t max_ms);

/* Parses a duration: "90", "30s", "15m", "2h", "1d", "1w", "1h30m",
 * "1.5h". Positive result in seconds, at most 100 years. */
int dagd_duration_parse(const char *s, int64_t *out, struct dagd_err *err);
/* Formats seconds as "1h30m", "45s", "2d". Writes at most n bytes. */
void dagd_duration_format(int64_t secs, char *out, size_t n);

/* Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.frac]]" (also with a space
 * instead of T), optionally followed by "Z" or "+HH:MM"/"-HH:MM".
 * When the text carries an offset, *has_offset is 1 and *out is the UTC
 * instant; otherwise *has_offset is 0 and *out is the wall time encoded as
 * if it were UTC (the caller attaches a zone). */
int dagd_time_parse(const char *s, int64_t *out, int *has_offset, struct dagd_err *err);

/* "2026-01-01T02:00:00Z". out must hold 32 bytes. */
void dagd_time_format_utc(int64_t t, char *out);
/* "2026-01-01T03:00:00+01:00" for a given UTC offset in seconds. */
void dagd_time_format_offset(int64_t t, int32_t offset, char *out);

/* Bytes dagd_time_format_offset_usec needs, the NUL included. */
#define DAGD_TIME_USEC_LEN 40
/* The instant t (seconds, as the clock gives it) in whole microseconds
 * since the epoch, rounded to the nearest. */
int64_t dagd_time_usec(double t);
/* "2026-01-01T03:00:00.123456+01:00": usec microseconds since the epoch,
 * always six fraction digits (fixed width, so ids made from it sort by
 * time within a second), for a given UTC offset in seconds. out must hold
 * DAGD_TIME_USEC_LEN bytes. */
void dagd_time_format_offset_usec(int64_t usec, int32_t offset, char *out);

#endif
