/* Schedules: cron expressions (5 fields, or 6 with a leading seconds field;
 * names, ranges, steps, lists, L, W, #, ?), presets (@daily ...), and
 * interval schedules ("every 15m"). Next and previous fire times in any
 * zone, with DST gaps and overlaps handled as docs/cron.md describes.
 * Pure: no clock, no I/O.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_CRON_H
#define DAGD_CRON_H

#include <stdbool.h>
#include <stdint.h>

struct dagd_err;
struct dagd_tz;
typedef struct dagd_cron dagd_cron;

/* Parses a schedule. Errors name the bad field and value, e.g.
 * `bad cron "0 25 * * *": hour field: 25 is out of range 0-23`.
 * On success *out is new; free with dagd_cron_free (accepts NULL). */
int dagd_cron_parse(const char *text, dagd_cron **out, struct dagd_err *err);
void dagd_cron_free(dagd_cron *c);
/* The text it was parsed from. */
const char *dagd_cron_text(const dagd_cron *c);

/* Interval schedules ("every 30s"): fire at anchor + k * interval. The
 * anchor defaults to 0 (the epoch, so "every 15m" fires at :00, :15, ...);
 * the model sets it to the DAG's start_date. */
bool dagd_cron_is_interval(const dagd_cron *c);
int64_t dagd_cron_interval(const dagd_cron *c);
void dagd_cron_set_anchor(dagd_cron *c, int64_t anchor);

/* First fire time strictly after `after` (strictly before `before` for
 * prev) with wall times read in zone tz. Returns 0, or DAGD_ENOENT when no
 * fire time exists within the search horizon (e.g. "0 0 30 2 *"). */
int dagd_cron_next(const dagd_cron *c, const struct dagd_tz *tz, int64_t after, int64_t *out);
int dagd_cron_prev(const dagd_cron *c, const struct dagd_tz *tz, int64_t before, int64_t *out);

/* A short English description ("at 02:00 every day"), best effort, for
 * dagctl and the UI. Returns a heap string; free with free(). */
char *dagd_cron_describe(const dagd_cron *c);

#endif
