/* The daemon's figures for /metrics: runs and tries finished per DAG and
 * outcome, histograms of try and run durations, each DAG's next run and
 * last success, pool slots, the build and the process (from /proc/self).
 * Counters live in memory and restart at zero with the daemon, as
 * Prometheus counters may. Per-DAG series exist for the DAGs loaded now
 * (a DAG removed from the folder drops out), so their number is bounded
 * by the DAG folder; run states are only the final ones.
 * SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <sqlite3.h>

#include "dagd/err.h"
#include "dagd/util.h"
#include "daemon.h"

static const double buckets[] = {0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 21600};
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))
/* A run lasts from seconds (a sensor that finds its file) to a day. */
static const double run_buckets[] = {1, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400};
#define N_RUN_BUCKETS (sizeof(run_buckets) / sizeof(run_buckets[0]))

typedef struct histogram {
  uint64_t buckets[N_RUN_BUCKETS];
  uint64_t count;
  double sum;
} histogram;

typedef struct dag_metrics {
  char *dag_id;
  uint64_t runs[2];   /* success, failed */
  uint64_t tries[4];  /* success, failed, lost, timed_out */
  histogram run_duration[2]; /* success, failed */
} dag_metrics;

struct daemon_metrics {
  dag_metrics *dags;
  size_t n_dags;
  uint64_t duration_buckets[N_BUCKETS];
  uint64_t duration_count;
  double duration_sum;
};

static dag_metrics *find_dag(const daemon_metrics *m, const char *dag_id) {
  /* Linear: one lookup per finished try or run, over the DAGs seen. */
  for (size_t i = 0; m && i < m->n_dags; i++)
    if (strcmp(m->dags[i].dag_id, dag_id) == 0) return &m->dags[i];
  return NULL;
}

static dag_metrics *for_dag(daemon_t *d, const char *dag_id) {
  if (d->stats.metrics == NULL) d->stats.metrics = dagd_calloc(1, sizeof(*d->stats.metrics));
  daemon_metrics *m = d->stats.metrics;
  dag_metrics *x = find_dag(m, dag_id);
  if (x) return x;
  m->dags = dagd_realloc(m->dags, (m->n_dags + 1) * sizeof(*m->dags));
  x = &m->dags[m->n_dags++];
  memset(x, 0, sizeof(*x));
  x->dag_id = dagd_strdup(dag_id);
  return x;
}

void daemon_metrics_run(daemon_t *d, const char *dag_id, bool success, double seconds) {
  dag_metrics *x = for_dag(d, dag_id);
  int s = success ? 0 : 1;
  x->runs[s]++;
  if (seconds < 0) return;
  histogram *h = &x->run_duration[s];
  for (size_t i = 0; i < N_RUN_BUCKETS; i++)
    if (seconds <= run_buckets[i]) h->buckets[i]++;
  h->count++;
  h->sum += seconds;
}

void daemon_metrics_try(daemon_t *d, const char *dag_id, int outcome, double seconds) {
  for_dag(d, dag_id)->tries[outcome]++;
  daemon_metrics *m = d->stats.metrics;
  if (seconds < 0) return;
  for (size_t i = 0; i < N_BUCKETS; i++)
    if (seconds <= buckets[i]) m->duration_buckets[i]++;
  m->duration_count++;
  m->duration_sum += seconds;
}

void daemon_metrics_free(daemon_t *d) {
  if (d->stats.metrics == NULL) return;
  for (size_t i = 0; i < d->stats.metrics->n_dags; i++) free(d->stats.metrics->dags[i].dag_id);
  free(d->stats.metrics->dags);
  free(d->stats.metrics);
  d->stats.metrics = NULL;
}

/* --- the process, as Prometheus client libraries report it --- */

typedef struct proc_figures {
  double cpu_seconds, start_time;
  double rss_bytes, vsize_bytes;
  long open_fds;
  double max_fds;
} proc_figures;

/* Reads a small procfs file whole into buf (NUL-terminated); -1 if not. */
static int read_small(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "re");
  if (f == NULL) return -1;
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return n > 0 ? 0 : -1;
}

/* /proc/self/stat after the command name (which may hold spaces and
 * parentheses, so it is skipped to the last ')'), and the boot time from
 * /proc/stat. False when procfs is not there. */
static bool proc_read(proc_figures *f) {
  char buf[4096];
  memset(f, 0, sizeof(*f));
  if (read_small("/proc/self/stat", buf, sizeof(buf)) < 0) return false;
  char *p = strrchr(buf, ')');
  if (p == NULL) return false;
  /* Fields from 3 (state) on; we want 14 utime, 15 stime, 22 starttime,
   * 23 vsize, 24 rss (proc(5)). */
  unsigned long long v[25] = {0};
  char *save = NULL;
  int field = 3;
  for (char *tok = strtok_r(p + 1, " ", &save); tok && field <= 24; tok = strtok_r(NULL, " ", &save), field++)
    v[field] = strtoull(tok, NULL, 10);
  if (field <= 24) return false;
  double tick = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);
  if (tick <= 0) tick = 100;
  f->cpu_seconds = (double)(v[14] + v[15]) / tick;
  f->vsize_bytes = (double)v[23];
  f->rss_bytes = (double)v[24] * page;
  double btime = 0;
  if (read_small("/proc/stat", buf, sizeof(buf)) == 0) {
    const char *b = strstr(buf, "\nbtime ");
    if (b) btime = strtod(b + 7, NULL);
  }
  f->start_time = btime + (double)v[22] / tick;
  DIR *dir = opendir("/proc/self/fd");
  if (dir) {
    struct dirent *e;
    while ((e = readdir(dir)) != NULL)
      if (e->d_name[0] != '.') f->open_fds++;
    closedir(dir);
    f->open_fds--; /* the directory's own */
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) f->max_fds = rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur;
  return true;
}

static void write_process(dagd_buf *out) {
  proc_figures f;
  if (!proc_read(&f)) return;
  dagd_buf_printf(out,
                  "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                  "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
                  "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                  "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %.0f\n"
                  "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                  "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %.0f\n"
                  "# HELP process_open_fds Number of open file descriptors.\n"
                  "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n"
                  "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
                  "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
                  f.cpu_seconds, f.rss_bytes, f.vsize_bytes, f.open_fds, f.start_time);
  if (f.max_fds >= 0)
    dagd_buf_printf(out,
                    "# HELP process_max_fds Maximum number of open file descriptors.\n"
                    "# TYPE process_max_fds gauge\nprocess_max_fds %.0f\n",
                    f.max_fds);
}

/* --- per DAG --- */

static void write_histogram(dagd_buf *out, const char *name, const char *labels, const double *bounds, size_t n,
                            const uint64_t *counts, uint64_t count, double sum) {
  for (size_t i = 0; i < n; i++)
    dagd_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "", bounds[i],
                    (unsigned long long)(counts ? counts[i] : 0));
  dagd_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n%s_sum%s%s%s %.6f\n%s_count%s%s%s %llu\n", name, labels,
                  *labels ? "," : "", (unsigned long long)count, name, *labels ? "{" : "", labels,
                  *labels ? "}" : "", sum, name, *labels ? "{" : "", labels, *labels ? "}" : "",
                  (unsigned long long)count);
}

static void write_dags(daemon_t *d, dagd_buf *out) {
  static const char *const outcomes[] = {"success", "failed", "lost", "timed_out"};
  static const char *const states[] = {"success", "failed"};
  const daemon_metrics *m = d->stats.metrics;
  const dagd_dagbag *bag = &d->dags.bag;
  dagd_buf_printf(out, "# HELP dagd_runs_finished_total Runs finished, by DAG and state.\n"
                       "# TYPE dagd_runs_finished_total counter\n");
  for (size_t i = 0; i < bag->n_dags; i++) {
    if (bag->dags[i] == NULL) continue;
    const dag_metrics *x = find_dag(m, bag->dags[i]->id);
    for (int s = 0; s < 2; s++)
      dagd_buf_printf(out, "dagd_runs_finished_total{dag_id=\"%s\",state=\"%s\"} %llu\n", bag->dags[i]->id,
                      states[s], (unsigned long long)(x ? x->runs[s] : 0));
  }
  dagd_buf_printf(out, "# HELP dagd_tries_total Task tries finished, by DAG and outcome.\n"
                       "# TYPE dagd_tries_total counter\n");
  for (size_t i = 0; i < bag->n_dags; i++) {
    if (bag->dags[i] == NULL) continue;
    const dag_metrics *x = find_dag(m, bag->dags[i]->id);
    for (int o = 0; o < 4; o++)
      dagd_buf_printf(out, "dagd_tries_total{dag_id=\"%s\",outcome=\"%s\"} %llu\n", bag->dags[i]->id,
                      outcomes[o], (unsigned long long)(x ? x->tries[o] : 0));
  }
  dagd_buf_printf(out, "# HELP dagd_dag_run_duration_seconds How long runs took from start to end, by DAG and "
                       "final state.\n# TYPE dagd_dag_run_duration_seconds histogram\n");
  for (size_t i = 0; i < bag->n_dags; i++) {
    if (bag->dags[i] == NULL) continue;
    const dag_metrics *x = find_dag(m, bag->dags[i]->id);
    for (int s = 0; s < 2; s++) {
      char labels[320];
      snprintf(labels, sizeof(labels), "dag_id=\"%s\",state=\"%s\"", bag->dags[i]->id, states[s]);
      const histogram *h = x ? &x->run_duration[s] : NULL;
      write_histogram(out, "dagd_dag_run_duration_seconds", labels, run_buckets, N_RUN_BUCKETS,
                      h ? h->buckets : NULL, h ? h->count : 0, h ? h->sum : 0);
    }
  }
  /* From the store, so that they survive a restart: what the engine
   * recorded as each DAG's next run, and its latest success. */
  dagd_buf next, last, paused;
  dagd_buf_init(&next);
  dagd_buf_init(&last);
  dagd_buf_init(&paused);
  for (size_t i = 0; i < bag->n_dags; i++) {
    const dagd_dag *dag = bag->dags[i];
    if (dag == NULL) continue;
    dagd_err err;
    dagd_err_init(&err);
    dagd_store_dag row = {0};
    if (dagd_store_dag_get(d->store, dag->id, &row, &err) == 0) {
      dagd_buf_printf(&paused, "dagd_dag_paused{dag_id=\"%s\"} %d\n", dag->id, row.is_paused ? 1 : 0);
      if (row.has_next_run && !row.is_paused)
        dagd_buf_printf(&next, "dagd_dag_next_run_after_timestamp_seconds{dag_id=\"%s\"} %lld\n", dag->id,
                        (long long)row.next_run_after);
    }
    dagd_store_dag_clear(&row);
    dagd_store_run run = {0};
    if (dagd_store_run_get_last_success(d->store, dag->id, 0, &run, &err) == 0 && run.end_date > 0)
      dagd_buf_printf(&last, "dagd_dag_last_success_end_timestamp_seconds{dag_id=\"%s\"} %.3f\n", dag->id,
                      run.end_date);
    dagd_store_run_clear(&run);
  }
  dagd_buf_printf(out,
                  "# HELP dagd_dag_paused Whether the DAG is paused (1) or not (0).\n# TYPE dagd_dag_paused gauge\n"
                  "%s"
                  "# HELP dagd_dag_next_run_after_timestamp_seconds When the DAG's next scheduled run can be created "
                  "(absent: none will be, or paused); in the past: due and not created.\n"
                  "# TYPE dagd_dag_next_run_after_timestamp_seconds gauge\n%s"
                  "# HELP dagd_dag_last_success_end_timestamp_seconds When the DAG's latest successful run ended.\n"
                  "# TYPE dagd_dag_last_success_end_timestamp_seconds gauge\n%s",
                  (paused.data ? paused.data : ""), (next.data ? next.data : ""), (last.data ? last.data : ""));
  dagd_buf_close(&next);
  dagd_buf_close(&last);
  dagd_buf_close(&paused);
}

/* Pool slots: configured and used (the first 64 pools). */
static void write_pools(daemon_t *d, dagd_buf *out) {
  const char *seen[64];
  int used[64], slots[64];
  size_t n = 0;
  seen[n] = "default";
  slots[n] = d->cfg.parallelism;
  used[n++] = 0;
  for (size_t i = 0; i < d->cfg.n_pools && n < 64; i++) {
    if (strcmp(d->cfg.pools[i].key, "default") == 0) continue;
    seen[n] = d->cfg.pools[i].key;
    slots[n] = atoi(d->cfg.pools[i].value);
    used[n++] = 0;
  }
  for (running_try *rt = d->tries.running; rt; rt = rt->next) {
    const char *pool = rt->pool ? rt->pool : "default";
    size_t k = 0;
    while (k < n && strcmp(seen[k], pool) != 0) k++;
    if (k == n && n < 64) {
      seen[n] = pool;
      slots[n] = d->cfg.parallelism; /* a pool not configured: only parallelism limits it */
      used[n++] = 0;
    }
    if (k < n) used[k]++;
  }
  dagd_buf_printf(out, "# HELP dagd_pool_slots Slots of each pool (a pool not configured has parallelism).\n"
                       "# TYPE dagd_pool_slots gauge\n");
  for (size_t k = 0; k < n; k++) dagd_buf_printf(out, "dagd_pool_slots{pool=\"%s\"} %d\n", seen[k], slots[k]);
  dagd_buf_printf(out, "# HELP dagd_pool_slots_used Pool slots held by running tries.\n"
                       "# TYPE dagd_pool_slots_used gauge\n");
  for (size_t k = 0; k < n; k++) dagd_buf_printf(out, "dagd_pool_slots_used{pool=\"%s\"} %d\n", seen[k], used[k]);
}

void daemon_metrics_write(daemon_t *d, dagd_buf *out) {
  const daemon_metrics *m = d->stats.metrics;
  dagd_buf_printf(out,
                  "# HELP dagd_build_info The running dagd's version and the libraries it runs on.\n"
                  "# TYPE dagd_build_info gauge\n"
                  "dagd_build_info{version=\"%s\",libuv=\"%s\",sqlite=\"%s\"} 1\n",
                  DAGD_VERSION, uv_version_string(), sqlite3_libversion());
  write_dags(d, out);
  dagd_buf_printf(out, "# HELP dagd_task_duration_seconds How long task tries ran.\n"
                       "# TYPE dagd_task_duration_seconds histogram\n");
  write_histogram(out, "dagd_task_duration_seconds", "", buckets, N_BUCKETS, m ? m->duration_buckets : NULL,
                  m ? m->duration_count : 0, m ? m->duration_sum : 0.0);
  write_pools(d, out);
  write_process(out);
}
