/* Data intervals of a scheduled DAG: the run for [previous fire, fire)
 * becomes due at `fire`, as in Airflow's cron timetables; and the interval
 * a manual run covers.
 * SPDX-License-Identifier: MIT */
#include "dagd/cron.h"
#include "dagd/err.h"
#include "dagd/model.h"

int dagd_dag_next_interval(const dagd_dag *dag, int64_t after, dagd_interval *out) {
  if (dag == NULL || dag->schedule == NULL) return DAGD_ENOENT;
  const dagd_cron *c = dag->schedule;
  int64_t end, start;
  if (dagd_cron_next(c, dag->tz, after, &end) != 0) return DAGD_ENOENT;
  if (dagd_cron_prev(c, dag->tz, end, &start) != 0) {
    /* No earlier fire time within the horizon: the first interval can only
     * start at `end` itself. */
    start = end;
    if (dagd_cron_next(c, dag->tz, start, &end) != 0) return DAGD_ENOENT;
  }
  if (dag->has_start_date && start < dag->start_date) {
    /* The first interval starts at the first fire time at or after
     * start_date; its end is the fire after that. Since start < start_date
     * <= new start, the new start is >= the old end, so the run stays due
     * after `after`. */
    if (dagd_cron_next(c, dag->tz, dag->start_date - 1, &start) != 0) return DAGD_ENOENT;
    if (dagd_cron_next(c, dag->tz, start, &end) != 0) return DAGD_ENOENT;
  }
  if (dag->has_end_date && end > dag->end_date) return DAGD_ENOENT;
  out->start = start;
  out->end = end;
  out->run_after = end;
  return 0;
}

void dagd_dag_manual_interval(const dagd_dag *dag, int64_t logical_date, dagd_interval *out) {
  out->start = out->end = out->run_after = logical_date;
  if (dag == NULL || dag->schedule == NULL) return;
  const dagd_cron *c = dag->schedule;
  if (dagd_cron_is_interval(c)) {
    /* Airflow's delta timetable: the interval that ends at the date. */
    out->start = logical_date - dagd_cron_interval(c);
    return;
  }
  /* The end: the date itself when it is a fire time (fire times are whole
   * seconds), else the fire before it; the start: the fire before that. */
  int64_t end, start;
  if (dagd_cron_prev(c, dag->tz, logical_date + 1, &end) != 0) return;
  if (dagd_cron_prev(c, dag->tz, end, &start) != 0) return;
  out->start = start;
  out->end = end;
}
