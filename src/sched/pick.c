/* Picking which scheduled task instances start now: highest priority
 * weight first, then the oldest run, within the global slots, each DAG's
 * max_active_tasks and each pool's slots. The candidates are a heap, and
 * only as many are taken from it as it takes to fill the free slots:
 * O(n + k log n) for k looked at, not a sort of every scheduled instance
 * at every pass (a wide layer has thousands, and a few free slots).
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "dagd/sched.h"
#include "dagd/util.h"

static int by_priority(const void *pa, const void *pb) {
  const dagd_sched_candidate *a = pa, *b = pb;
  if (a->priority != b->priority) return a->priority > b->priority ? -1 : 1;
  if (a->logical_date != b->logical_date) return a->logical_date < b->logical_date ? -1 : 1;
  return a->tag < b->tag ? -1 : a->tag > b->tag;
}

static int cmp(const dagd_sched_candidate *c, size_t a, size_t b) { return by_priority(&c[a], &c[b]); }

/* Restores the heap below i: the first in priority order at the root. */
static void sift_down(const dagd_sched_candidate *c, size_t *h, size_t n, size_t i) {
  for (;;) {
    size_t best = i, l = 2 * i + 1, r = l + 1;
    if (l < n && cmp(c, h[l], h[best]) < 0) best = l;
    if (r < n && cmp(c, h[r], h[best]) < 0) best = r;
    if (best == i) return;
    size_t t = h[i];
    h[i] = h[best];
    h[best] = t;
    i = best;
  }
}

size_t dagd_sched_pick(dagd_sched_candidate *c, size_t n, dagd_sched_limits *lim) {
  size_t picked = 0;
  for (size_t i = 0; i < n; i++) c[i].picked = false;
  if (n == 0) return 0;
  size_t *h = dagd_malloc(n * sizeof(*h));
  dagd_sched_candidate *out = dagd_malloc(n * sizeof(*out));
  for (size_t i = 0; i < n; i++) h[i] = i;
  for (size_t i = n / 2; i-- > 0;) sift_down(c, h, n, i);
  size_t left = n, k = 0;
  while (left > 0 && lim->free_slots > 0) {
    size_t i = h[0];
    h[0] = h[--left];
    sift_down(c, h, left, 0);
    out[k] = c[i];
    /* A candidate blocked by its DAG or pool does not block the others. */
    if (lim->dag_free[c[i].dag_slot] > 0 && lim->pool_free[c[i].pool_slot] > 0) {
      out[k].picked = true;
      lim->free_slots--;
      lim->dag_free[c[i].dag_slot]--;
      lim->pool_free[c[i].pool_slot]--;
      picked++;
    }
    k++;
  }
  for (size_t j = 0; j < left; j++) out[k++] = c[h[j]];
  for (size_t i = 0; i < n; i++) c[i] = out[i];
  free(out);
  free(h);
  return picked;
}
