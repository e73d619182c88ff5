/* Pruning finished runs together with their log folders: the store's
 * rows first, then each run's folder (dagd/layout.h), removed only from
 * below the logs folder. The daemon's hourly retention and `dagctl db
 * prune` both prune through here.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "dagd/err.h"
#include "dagd/layout.h"
#include "dagd/store.h"
#include "dagd/util.h"

typedef struct pruned {
  char **dag, **run;
  size_t n;
} pruned;

static void on_pruned(void *data, const char *dag_id, const char *run_id) {
  pruned *p = data;
  p->dag = dagd_realloc(p->dag, (p->n + 1) * sizeof(char *));
  p->run = dagd_realloc(p->run, (p->n + 1) * sizeof(char *));
  p->dag[p->n] = dagd_strdup(dag_id);
  p->run[p->n++] = dagd_strdup(run_id);
}

int dagd_store_prune_with_logs(dagd_store *st, const dagd_prune_opts *o, int64_t *runs, size_t *kept,
                               dagd_err *err) {
  pruned p = {0};
  *runs = 0;
  *kept = 0;
  int rc = dagd_store_prune(st, o->before, o->limit, o->dry_run, on_pruned, &p, runs, err);
  bool go = rc == 0 && (o->dry_run || o->commit == NULL || o->commit(o->data));
  for (size_t i = 0; i < p.n; i++) {
    if (rc == 0) {
      dagd_prune_outcome what = DAGD_PRUNE_FAILED;
      char *dir = NULL;
      dagd_err rerr;
      dagd_err_init(&rerr);
      if (!dagd_id_valid(p.dag[i]) || !dagd_run_id_valid(p.run[i])) {
        what = DAGD_PRUNE_INVALID_ID;
      } else {
        dir = dagd_layout_run_dir(o->logs, p.dag[i], p.run[i]);
        if (!go) dagd_err_set(&rerr, DAGD_EIO, "%s: kept, the pruning of its run was not committed", dir);
        else if (o->dry_run) what = DAGD_PRUNE_WOULD;
        else if (dagd_fs_remove_tree_within(o->logs, dir, &rerr) == 0) what = DAGD_PRUNE_REMOVED;
      }
      if (what == DAGD_PRUNE_INVALID_ID || what == DAGD_PRUNE_FAILED) (*kept)++;
      if (o->report) o->report(o->data, p.dag[i], p.run[i], dir, what, &rerr);
      free(dir);
    }
    free(p.dag[i]);
    free(p.run[i]);
  }
  free(p.dag);
  free(p.run);
  return rc;
}
