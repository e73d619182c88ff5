/* The state store's baselines: the values a gate's model had when its run was promoted.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "dagd/err.h"
#include "dagd/model.h"
#include "dagd/store.h"
#include "dagd/util.h"
#include "store/internal.h"

static const char SQL_BASELINE_PUT[] =
    "INSERT INTO baseline (dag_id, task_id, run_id, vals, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT DO UPDATE SET run_id = excluded.run_id, vals = excluded.vals, "
    "recorded_at = excluded.recorded_at";

int dagd_store_baseline_put(dagd_store *st, const char *dag_id, const char *task_id, const char *run_id,
                            const char *vals, double at, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_BASELINE_PUT);
  bind_text(s, 1, dag_id);
  bind_text(s, 2, task_id);
  bind_text(s, 3, run_id);
  bind_text(s, 4, vals);
  sqlite3_bind_double(s, 5, at);
  return dagd__store_step(st, s, "recording a baseline", err);
}

static const char SQL_BASELINE_GET[] =
    "SELECT run_id, vals FROM baseline WHERE dag_id = ?1 AND task_id = ?2";

int dagd_store_baseline_get(dagd_store *st, const char *dag_id, const char *task_id, char **run_id, char **vals,
                            dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_BASELINE_GET);
  bind_text(s, 1, dag_id);
  bind_text(s, 2, task_id);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    *run_id = col_text(s, 0);
    *vals = col_text(s, 1);
  }
  sqlite3_reset(s);
  if (rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_DONE) return DAGD_ENOENT;
  return dagd__store_fail(st, err, rc, "reading a baseline");
}

/* Prepared when the store opens. */
const char *const dagd__store_baselines_sql[] = {
    SQL_BASELINE_PUT, SQL_BASELINE_GET, NULL};
