/* The state store's DAGs: the rows the loader keeps (file, paused, the next run after), and the
 * time of the last run an event started (the event throttle).
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "dagd/err.h"
#include "dagd/model.h"
#include "dagd/store.h"
#include "dagd/util.h"
#include "store/internal.h"

void dagd_store_dag_clear(dagd_store_dag *d) {
  free(d->dag_id);
  free(d->fileloc);
  memset(d, 0, sizeof(*d));
}

static const char SQL_DAG_UPSERT[] =
    "INSERT INTO dag (dag_id, fileloc, is_paused) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (dag_id) DO UPDATE SET fileloc = excluded.fileloc";

int dagd_store_dag_upsert(dagd_store *st, const char *dag_id, const char *fileloc, bool paused_on_create,
                          dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_DAG_UPSERT);
  bind_text(s, 1, dag_id);
  bind_text(s, 2, fileloc ? fileloc : "");
  sqlite3_bind_int(s, 3, paused_on_create);
  return dagd__store_step(st, s, "recording a DAG", err);
}

static const char SQL_DAG_GET[] =
    "SELECT dag_id, fileloc, is_paused, next_run_after FROM dag WHERE dag_id = ?1";

int dagd_store_dag_get(dagd_store *st, const char *dag_id, dagd_store_dag *out, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_DAG_GET);
  bind_text(s, 1, dag_id);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    out->dag_id = col_text(s, 0);
    out->fileloc = col_text(s, 1);
    out->is_paused = sqlite3_column_int(s, 2) != 0;
    out->has_next_run = sqlite3_column_type(s, 3) != SQLITE_NULL;
    out->next_run_after = sqlite3_column_int64(s, 3);
    sqlite3_reset(s);
    return 0;
  }
  sqlite3_reset(s);
  if (rc == SQLITE_DONE) return DAGD_ENOENT;
  return dagd__store_fail(st, err, rc, "reading a DAG");
}

static const char SQL_DAG_PAUSE[] =
    "UPDATE dag SET is_paused = ?2 WHERE dag_id = ?1";

int dagd_store_dag_set_paused(dagd_store *st, const char *dag_id, bool paused, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_DAG_PAUSE);
  bind_text(s, 1, dag_id);
  sqlite3_bind_int(s, 2, paused);
  int rc = dagd__store_step(st, s, "pausing a DAG", err);
  return rc < 0 ? rc : dagd__store_changed_one(st, "pause", dag_id, err);
}

static const char SQL_DAG_NEXT[] =
    "UPDATE dag SET next_run_after = ?2 WHERE dag_id = ?1";

int dagd_store_dag_set_next_run(dagd_store *st, const char *dag_id, bool has_next, int64_t next_run_after,
                                dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_DAG_NEXT);
  bind_text(s, 1, dag_id);
  if (has_next) sqlite3_bind_int64(s, 2, next_run_after);
  int rc = dagd__store_step(st, s, "recording a DAG's next run", err);
  return rc < 0 ? rc : dagd__store_changed_one(st, "next run", dag_id, err);
}

static const char SQL_DAG_EVENT_RUN_GET[] =
    "SELECT last_event_run FROM dag WHERE dag_id = ?1";

int dagd_store_dag_event_run_get(dagd_store *st, const char *dag_id, double *last, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_DAG_EVENT_RUN_GET);
  bind_text(s, 1, dag_id);
  int rc = sqlite3_step(s);
  *last = rc == SQLITE_ROW ? sqlite3_column_double(s, 0) : 0;
  sqlite3_reset(s);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : dagd__store_fail(st, err, rc, "reading a DAG");
}

static const char SQL_DAG_EVENT_RUN_SET[] =
    "UPDATE dag SET last_event_run = ?2 WHERE dag_id = ?1";

int dagd_store_dag_event_run_set(dagd_store *st, const char *dag_id, double at, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_DAG_EVENT_RUN_SET);
  bind_text(s, 1, dag_id);
  sqlite3_bind_double(s, 2, at);
  return dagd__store_step(st, s, "updating a DAG", err);
}

static const char SQL_DAG_PAUSED[] =
    "SELECT dag_id FROM dag WHERE is_paused = 1";

int dagd_store_dag_list_paused(dagd_store *st, char ***ids, size_t *n, dagd_err *err) {
  *ids = NULL;
  *n = 0;
  sqlite3_stmt *s = dagd__store_q(st, SQL_DAG_PAUSED);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    *ids = dagd_realloc(*ids, (*n + 1) * sizeof(char *));
    (*ids)[(*n)++] = col_text(s, 0);
  }
  sqlite3_reset(s);
  if (rc == SQLITE_DONE) return 0;
  for (size_t k = 0; k < *n; k++) free((*ids)[k]);
  free(*ids);
  *ids = NULL;
  *n = 0;
  return dagd__store_fail(st, err, rc, "listing the paused DAGs");
}

/* Prepared when the store opens. */
const char *const dagd__store_dags_sql[] = {
    SQL_DAG_PAUSED, SQL_DAG_UPSERT, SQL_DAG_GET, SQL_DAG_PAUSE, SQL_DAG_NEXT, SQL_DAG_EVENT_RUN_GET, SQL_DAG_EVENT_RUN_SET, NULL};
