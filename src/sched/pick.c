/* Picking which scheduled task instances start now: highest priority
 * weight first, then the oldest run, within the global slots, each DAG's
 * max_active_tasks and each pool's slots. O(n log n) in the candidates,
 * which are only the scheduled instances, never the history.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "dagd/sched.h"

static int by_priority(const void *pa, const void *pb) {
  const dagd_sched_candidate *a = pa, *b = pb;
  if (a->priority != b->priority) return a->priority > b->priority ? -1 : 1;
  if (a->logical_date != b->logical_date) return a->logical_date < b->logical_date ? -1 : 1;
  return a->tag < b->tag ? -1 : a->tag > b->tag;
}

size_t dagd_sched_pick(dagd_sched_candidate *c, size_t n, dagd_sched_limits *lim) {
  size_t picked = 0;
  if (n > 1) qsort(c, n, sizeof(*c), by_priority);
  for (size_t i = 0; i < n; i++) c[i].picked = false;
  for (size_t i = 0; i < n && lim->free_slots > 0; i++) {
    /* A candidate blocked by its DAG or pool does not block the others. */
    if (lim->dag_free[c[i].dag_slot] <= 0 || lim->pool_free[c[i].pool_slot] <= 0) continue;
    c[i].picked = true;
    lim->free_slots--;
    lim->dag_free[c[i].dag_slot]--;
    lim->pool_free[c[i].pool_slot]--;
    picked++;
  }
  return picked;
}
