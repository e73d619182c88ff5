/* log_retention: once an hour the daemon deletes the runs that finished
 * longer ago than log_retention, with their task instances, outputs and
 * log folders. 0 keeps everything.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "dagd/err.h"
#include "dagd/log.h"
#include "dagd/util.h"
#include "daemon.h"

#define RETENTION_EVERY_MS (3600 * 1000)
/* Runs pruned per loop turn: a long backlog is worked off in slices a
 * second apart, so the loop is never held for long. */
#define RETENTION_BATCH 200

typedef struct folders {
  char **v;
  size_t n;
  const char *logs;
} folders;

static void on_pruned(void *data, const char *dag_id, const char *run_id) {
  folders *f = data;
  /* A run recorded before ids made only of dots were refused keeps its
   * folder: "logs/d/.." is not that run's folder. */
  if (!dagd_id_valid(dag_id) || !dagd_run_id_valid(run_id)) {
    DAGD_LOG(DAGD_LOG_WARN, "retention", "run \"%.250s\" of DAG \"%.250s\" has an invalid id: its log folder is kept",
             run_id, dag_id);
    return;
  }
  f->v = dagd_realloc(f->v, (f->n + 1) * sizeof(char *));
  f->v[f->n++] = dagd_asprintf("%s/%s/%s", f->logs, dag_id, run_id);
}

static void on_retention(uv_timer_t *h) {
  daemon_t *d = h->data;
  if (d->cfg.log_retention <= 0 || d->stopped) return;
  dagd_err err;
  dagd_err_init(&err);
  folders f = {.logs = d->cfg.logs_folder};
  int64_t n = 0;
  if (dagd_store_prune(d->store, daemon_now() - (double)d->cfg.log_retention, RETENTION_BATCH, false, on_pruned, &f,
                       &n, &err) < 0) {
    DAGD_LOG(DAGD_LOG_ERROR, "retention", "pruning old runs: %s", err.msg);
  } else {
    for (size_t i = 0; i < f.n; i++) {
      dagd_err rerr;
      dagd_err_init(&rerr);
      if (dagd_fs_remove_tree_within(f.logs, f.v[i], &rerr) < 0)
        DAGD_LOG(DAGD_LOG_WARN, "retention", "log folder of a pruned run: %s", rerr.msg);
    }
    if (n > 0) DAGD_LOG(DAGD_LOG_INFO, "retention", "pruned %lld runs older than log_retention", (long long)n);
  }
  for (size_t i = 0; i < f.n; i++) free(f.v[i]);
  free(f.v);
  /* More left: the next slice in a second, then back to hourly. */
  uv_timer_start(&d->retention, on_retention, n >= RETENTION_BATCH ? 1000 : RETENTION_EVERY_MS, 0);
}

void daemon_retention_start(daemon_t *d) {
  uv_timer_init(&d->loop, &d->retention);
  d->retention.data = d;
  /* First a minute after start, so a restart loop cannot keep it busy. */
  uv_timer_start(&d->retention, on_retention, 60 * 1000, 0);
}
