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

static void report(void *data, const char *dag_id, const char *run_id, const char *dir, dagd_prune_outcome what,
                   const dagd_err *err) {
  (void)data;
  if (what == DAGD_PRUNE_INVALID_ID)
    DAGD_LOG(DAGD_LOG_WARN, "retention", "run \"%.250s\" of DAG \"%.250s\" has an invalid id: its log folder is kept",
             run_id, dag_id);
  else if (what == DAGD_PRUNE_FAILED)
    DAGD_LOG(DAGD_LOG_WARN, "retention", "log folder of a pruned run (%s): %s", dir, err->msg);
}

static bool commit(void *data) { return daemon_commit(data); }

static void on_retention(uv_timer_t *h) {
  daemon_t *d = h->data;
  if (d->cfg.log_retention <= 0 || d->stopped) return;
  dagd_err err;
  dagd_err_init(&err);
  dagd_prune_opts o = {.logs = d->cfg.logs_folder, .before = daemon_now() - (double)d->cfg.log_retention,
                       .limit = RETENTION_BATCH, .report = report, .commit = commit, .data = d};
  int64_t n = 0;
  size_t kept;
  if (dagd_store_prune_with_logs(d->store, &o, &n, &kept, &err) < 0)
    DAGD_LOG(DAGD_LOG_ERROR, "retention", "pruning old runs: %s", err.msg);
  else if (n > 0)
    DAGD_LOG(DAGD_LOG_INFO, "retention", "pruned %lld runs older than log_retention", (long long)n);
  if (d->stopped) return;
  /* More left: the next slice in a second, then back to hourly. */
  uv_timer_start(&d->retention, on_retention, n >= RETENTION_BATCH ? 1000 : RETENTION_EVERY_MS, 0);
}

void daemon_retention_start(daemon_t *d) {
  uv_timer_init(&d->loop, &d->retention);
  d->retention.data = d;
  /* First a minute after start, so a restart loop cannot keep it busy. */
  uv_timer_start(&d->retention, on_retention, 60 * 1000, 0);
}

void daemon_retention_close(daemon_t *d) {
  if (!uv_is_closing((uv_handle_t *)&d->retention)) uv_close((uv_handle_t *)&d->retention, NULL);
}
