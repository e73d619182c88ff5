/* The daemon's figures for /metrics: runs and tries finished per DAG and
 * outcome, a histogram of try durations, pool slots in use, and the
 * scheduler's own gauges. Counters live in memory and restart at zero with
 * the daemon, as Prometheus counters may.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "dagd/util.h"
#include "daemon.h"

static const double buckets[] = {0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 21600};
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

typedef struct dag_metrics {
  char *dag_id;
  uint64_t runs[2];   /* success, failed */
  uint64_t tries[4];  /* success, failed, lost, timed_out */
} dag_metrics;

struct daemon_metrics {
  dag_metrics *dags;
  size_t n_dags;
  uint64_t duration_buckets[N_BUCKETS];
  uint64_t duration_count;
  double duration_sum;
};

static dag_metrics *for_dag(daemon_t *d, const char *dag_id) {
  if (d->metrics == NULL) d->metrics = dagd_calloc(1, sizeof(*d->metrics));
  daemon_metrics *m = d->metrics;
  /* Linear: one lookup per finished try or run, over the DAGs seen. */
  for (size_t i = 0; i < m->n_dags; i++)
    if (strcmp(m->dags[i].dag_id, dag_id) == 0) return &m->dags[i];
  m->dags = dagd_realloc(m->dags, (m->n_dags + 1) * sizeof(*m->dags));
  dag_metrics *x = &m->dags[m->n_dags++];
  memset(x, 0, sizeof(*x));
  x->dag_id = dagd_strdup(dag_id);
  return x;
}

void daemon_metrics_run(daemon_t *d, const char *dag_id, bool success) { for_dag(d, dag_id)->runs[success ? 0 : 1]++; }

void daemon_metrics_try(daemon_t *d, const char *dag_id, int outcome, double seconds) {
  for_dag(d, dag_id)->tries[outcome]++;
  daemon_metrics *m = d->metrics;
  if (seconds < 0) return;
  for (size_t i = 0; i < N_BUCKETS; i++)
    if (seconds <= buckets[i]) m->duration_buckets[i]++;
  m->duration_count++;
  m->duration_sum += seconds;
}

void daemon_metrics_free(daemon_t *d) {
  if (d->metrics == NULL) return;
  for (size_t i = 0; i < d->metrics->n_dags; i++) free(d->metrics->dags[i].dag_id);
  free(d->metrics->dags);
  free(d->metrics);
  d->metrics = NULL;
}

void daemon_metrics_write(daemon_t *d, dagd_buf *out) {
  static const char *const outcomes[] = {"success", "failed", "lost", "timed_out"};
  daemon_metrics *m = d->metrics;
  dagd_buf_printf(out,
                  "# HELP dagd_runs_finished_total Runs finished, by DAG and state.\n"
                  "# TYPE dagd_runs_finished_total counter\n");
  for (size_t i = 0; m && i < m->n_dags; i++)
    for (int s = 0; s < 2; s++)
      dagd_buf_printf(out, "dagd_runs_finished_total{dag=\"%s\",state=\"%s\"} %llu\n", m->dags[i].dag_id,
                      s ? "failed" : "success", (unsigned long long)m->dags[i].runs[s]);
  dagd_buf_printf(out,
                  "# HELP dagd_tries_total Task tries finished, by DAG and outcome.\n"
                  "# TYPE dagd_tries_total counter\n");
  for (size_t i = 0; m && i < m->n_dags; i++)
    for (int o = 0; o < 4; o++)
      dagd_buf_printf(out, "dagd_tries_total{dag=\"%s\",outcome=\"%s\"} %llu\n", m->dags[i].dag_id, outcomes[o],
                      (unsigned long long)m->dags[i].tries[o]);
  dagd_buf_printf(out,
                  "# HELP dagd_task_duration_seconds How long task tries ran.\n"
                  "# TYPE dagd_task_duration_seconds histogram\n");
  for (size_t i = 0; i < N_BUCKETS; i++)
    dagd_buf_printf(out, "dagd_task_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[i],
                    (unsigned long long)(m ? m->duration_buckets[i] : 0));
  dagd_buf_printf(out,
                  "dagd_task_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                  "dagd_task_duration_seconds_sum %.6f\ndagd_task_duration_seconds_count %llu\n",
                  (unsigned long long)(m ? m->duration_count : 0), m ? m->duration_sum : 0.0,
                  (unsigned long long)(m ? m->duration_count : 0));
  dagd_buf_printf(out, "# HELP dagd_pool_slots_used Pool slots held by running tries.\n"
                       "# TYPE dagd_pool_slots_used gauge\n");
  /* Running tries per pool (the first 64 pools). */
  const char *seen[64];
  int used[64];
  size_t n = 0;
  for (running_try *rt = d->running; rt; rt = rt->next) {
    const char *pool = rt->pool ? rt->pool : "default";
    size_t k = 0;
    while (k < n && strcmp(seen[k], pool) != 0) k++;
    if (k == n && n < 64) {
      seen[n] = pool;
      used[n++] = 0;
    }
    if (k < n) used[k]++;
  }
  for (size_t k = 0; k < n; k++) dagd_buf_printf(out, "dagd_pool_slots_used{pool=\"%s\"} %d\n", seen[k], used[k]);
}
