/* The state store's maintenance: the integrity check of a file, the online backup, and
 * pruning old finished runs, with their log folders (retention and
 * `dagctl db prune`: the rows first, then each run's folder, removed
 * only from below the logs folder).
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "dagd/err.h"
#include "dagd/layout.h"
#include "dagd/model.h"
#include "dagd/store.h"
#include "dagd/util.h"
#include "store/internal.h"

int dagd_store_check_file(const char *path, char *result, size_t n, dagd_err *err) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
  int out = 0;
  sqlite3_stmt *s = NULL;
  if (rc != SQLITE_OK) {
    out = dagd_err_set(err, DAGD_EIO, "%s: cannot open: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    goto done;
  }
  sqlite3_busy_timeout(db, 5000);
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) != SQLITE_OK) {
    out = dagd_err_set(err, DAGD_EIO, "%s: not a usable dagd state file (%s)", path, sqlite3_errmsg(db));
    goto done;
  }
  /* Every line of the report: "ok" alone means healthy. */
  size_t used = 0;
  result[0] = '\0';
  bool healthy = false;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const char *line = (const char *)sqlite3_column_text(s, 0);
    healthy = used == 0 && line && strcmp(line, "ok") == 0;
    used += (size_t)snprintf(result + used, used < n ? n - used : 0, "%s%s", used ? "\n" : "", line ? line : "");
  }
  if (rc != SQLITE_DONE) {
    out = dagd_err_set(err, DAGD_EIO, "%s: integrity check failed to run: %s", path, sqlite3_errmsg(db));
  } else if (!healthy) {
    out = dagd_err_set(err, DAGD_EIO, "%s: integrity check found problems", path);
  }
done:
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

int dagd_store_backup(dagd_store *st, const char *dest, dagd_err *err) {
  int fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return dagd_err_set(err, errno == EEXIST ? DAGD_EEXIST : DAGD_EIO, "%s: %s", dest,
                        errno == EEXIST ? "already exists" : strerror(errno));
  }
  close(fd);
  sqlite3 *out = NULL;
  int rc = sqlite3_open_v2(dest, &out, SQLITE_OPEN_READWRITE, NULL);
  int result = 0;
  if (rc != SQLITE_OK) {
    result = dagd_err_set(err, DAGD_EIO, "%s: %s", dest, sqlite3_errstr(rc));
    goto done;
  }
  /* The online backup API copies a consistent snapshot while the daemon
   * goes on writing; steps of 256 pages keep the source lock short. */
  sqlite3_backup *b = sqlite3_backup_init(out, "main", st->db, "main");
  if (b == NULL) {
    result = dagd_err_set(err, DAGD_EIO, "%s: backup: %s", dest, sqlite3_errmsg(out));
    goto done;
  }
  do {
    rc = sqlite3_backup_step(b, 256);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(10);
  } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) result = dagd_err_set(err, DAGD_EIO, "%s: backup: %s", dest, sqlite3_errstr(rc));
done:
  sqlite3_close(out);
  if (result != 0) unlink(dest);
  return result;
}

int dagd_store_prune(dagd_store *st, double before, int64_t limit, bool dry_run, dagd_store_pruned_cb cb,
                     void *data, int64_t *n_runs, dagd_err *err) {
  sqlite3_stmt *s = NULL;
  *n_runs = 0;
  /* Served by the partial index on finished runs' end_date. */
  int rc = sqlite3_prepare_v2(st->db,
                              "SELECT id, dag_id, run_id FROM dag_run WHERE state IN ('success', 'failed') "
                              "AND end_date < ?1 ORDER BY end_date LIMIT ?2",
                              -1, &s, NULL);
  if (rc != SQLITE_OK) return dagd__store_fail(st, err, rc, "listing old runs");
  sqlite3_bind_double(s, 1, before);
  sqlite3_bind_int64(s, 2, limit > 0 ? limit : INT64_MAX);
  int64_t *pks = NULL;
  size_t n = 0, cap = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      pks = dagd_realloc(pks, cap * sizeof(*pks));
    }
    pks[n++] = sqlite3_column_int64(s, 0);
    if (cb) cb(data, (const char *)sqlite3_column_text(s, 1), (const char *)sqlite3_column_text(s, 2));
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) {
    free(pks);
    return dagd__store_fail(st, err, rc, "listing old runs");
  }
  *n_runs = (int64_t)n;
  if (dry_run || n == 0) {
    free(pks);
    return 0;
  }
  /* Task instances and outputs go with their run (ON DELETE CASCADE). In
   * batches, so the daemon's passes are never held up for long. */
  int out = 0;
  for (size_t i = 0; i < n && out == 0; i += 500) {
    if ((out = dagd_store_begin(st, err)) < 0) break;
    if (sqlite3_prepare_v2(st->db, "DELETE FROM dag_run WHERE id = ?1", -1, &s, NULL) != SQLITE_OK) {
      out = dagd__store_fail(st, err, sqlite3_errcode(st->db), "pruning runs");
      dagd_store_rollback(st);
      break;
    }
    for (size_t j = i; j < n && j < i + 500 && out == 0; j++) {
      sqlite3_bind_int64(s, 1, pks[j]);
      if ((rc = sqlite3_step(s)) != SQLITE_DONE) out = dagd__store_fail(st, err, rc, "pruning runs");
      sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    if (out == 0) out = dagd_store_commit(st, err);
    else dagd_store_rollback(st);
  }
  free(pks);
  return out;
}

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
