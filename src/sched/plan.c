/* Which scheduled runs to create: data intervals between cron fire times,
 * catchup on or off, bounded by max_active_runs, as Airflow's cron
 * timetables do.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "dagd/cron.h"
#include "dagd/sched.h"
#include "dagd/time.h"

/* The interval that follows the one starting at `start`. */
static int interval_after(const dagd_dag *dag, int64_t start, dagd_interval *out) {
  int64_t s, e;
  if (dagd_cron_next(dag->schedule, dag->tz, start, &s) != 0) return -1;
  if (dagd_cron_next(dag->schedule, dag->tz, s, &e) != 0) return -1;
  out->start = s;
  out->end = e;
  out->run_after = e;
  return 0;
}

/* The latest interval that is complete at `now` (its end <= now), if it
 * starts at or after start_date. */
static int latest_complete(const dagd_dag *dag, int64_t now, dagd_interval *out) {
  int64_t e, s;
  if (dagd_cron_prev(dag->schedule, dag->tz, now + 1, &e) != 0) return -1;
  if (dagd_cron_prev(dag->schedule, dag->tz, e, &s) != 0) return -1;
  if (dag->has_start_date && s < dag->start_date) return -1;
  out->start = s;
  out->end = e;
  out->run_after = e;
  return 0;
}

/* The first interval after `last` (the logical date of the latest run
 * planned, NULL: none) that has no run yet, as the plan sees it at `now`:
 * with catchup the one after the last (or the first at or after
 * start_date), without it the latest complete one when that is later.
 * False when there is none (end_date aside: the callers check it). */
static bool first_interval(const dagd_dag *dag, const int64_t *last, int64_t now, dagd_interval *iv) {
  dagd_interval latest;
  bool have;
  if (last != NULL) {
    have = interval_after(dag, *last, iv) == 0;
    /* start_date moved later than the last run (edited, or runs from
     * before it): nothing starts before it, as in Airflow. */
    if (have && dag->has_start_date && iv->start < dag->start_date)
      have = interval_after(dag, dag->start_date - 1, iv) == 0;
  } else if (dag->catchup && dag->has_start_date) {
    /* The first interval starts at the first fire time at or after
     * start_date. */
    have = interval_after(dag, dag->start_date - 1, iv) == 0;
  } else {
    /* No run yet and no catchup: the latest complete interval, else the
     * first one to come. */
    have = latest_complete(dag, now, iv) == 0;
    if (!have) have = dagd_dag_next_interval(dag, now, iv) == 0;
  }
  /* Without catchup, jump over missed intervals to the latest complete. */
  if (have && !dag->catchup && iv->run_after <= now && latest_complete(dag, now, &latest) == 0 &&
      latest.start > iv->start)
    *iv = latest;
  return have;
}

void dagd_sched_plan_runs(const dagd_dag *dag, const int64_t *last, int active, int64_t now, dagd_interval *out,
                          size_t cap, size_t *n_out, int64_t *next_due, bool *has_next) {
  dagd_interval iv;
  *n_out = 0;
  *has_next = false;
  if (dag->schedule == NULL) return;
  bool have = first_interval(dag, last, now, &iv);
  int room = dag->max_active_runs - active;
  while (have) {
    if (dag->has_end_date && iv.end > dag->end_date) return;
    if (iv.run_after > now || room <= 0 || *n_out >= cap) {
      *has_next = true;
      *next_due = iv.run_after;
      return;
    }
    out[(*n_out)++] = iv;
    room--;
    have = interval_after(dag, iv.start, &iv) == 0;
  }
}

bool dagd_sched_next_run_after(const dagd_dag *dag, const int64_t *last, bool paused, int64_t now,
                               dagd_interval *out) {
  if (dag->schedule == NULL || paused) return false;
  dagd_interval iv;
  if (!first_interval(dag, last, now, &iv)) return false;
  if (dag->has_end_date && iv.end > dag->end_date) return false;
  *out = iv;
  return true;
}

void dagd_sched_run_id(dagd_run_type type, int64_t logical_date, char *out) {
  char ts[32];
  dagd_time_format_offset(logical_date, 0, ts);
  snprintf(out, 64, "%s__%s", dagd_run_type_name(type), ts);
}
