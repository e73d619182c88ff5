/* The state store's task instances and the outputs their tries wrote.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "dagd/err.h"
#include "dagd/model.h"
#include "dagd/store.h"
#include "dagd/util.h"
#include "store/internal.h"

void dagd_store_ti_clear(dagd_store_ti *ti) {
  free(ti->task_id);
  free(ti->pool);
  memset(ti, 0, sizeof(*ti));
}

static void bind_ti(sqlite3_stmt *s, const dagd_store_ti *ti) {
  sqlite3_bind_int64(s, 1, ti->run_pk);
  bind_text(s, 2, ti->task_id);
  bind_text(s, 3, dagd_ti_state_name(ti->state));
  sqlite3_bind_int(s, 4, ti->try_number);
  sqlite3_bind_int(s, 5, ti->max_tries);
  if (ti->pid) sqlite3_bind_int64(s, 6, ti->pid);
  bind_time(s, 7, ti->start_date);
  bind_time(s, 8, ti->end_date);
  if (ti->has_exit_code) sqlite3_bind_int(s, 9, ti->exit_code);
  bind_time(s, 10, ti->next_try_at);
  bind_text(s, 11, ti->pool ? ti->pool : "default");
  sqlite3_bind_int64(s, 12, ti->priority_weight);
}

static void read_ti(sqlite3_stmt *s, dagd_store_ti *ti) {
  memset(ti, 0, sizeof(*ti));
  ti->run_pk = sqlite3_column_int64(s, 0);
  ti->task_id = col_text(s, 1);
  const char *t = (const char *)sqlite3_column_text(s, 2);
  if (t == NULL || dagd_ti_state_parse(t, &ti->state) < 0) ti->state = DAGD_TI_NONE;
  ti->try_number = sqlite3_column_int(s, 3);
  ti->max_tries = sqlite3_column_int(s, 4);
  ti->pid = sqlite3_column_int64(s, 5);
  ti->start_date = sqlite3_column_double(s, 6);
  ti->end_date = sqlite3_column_double(s, 7);
  ti->has_exit_code = sqlite3_column_type(s, 8) != SQLITE_NULL;
  ti->exit_code = sqlite3_column_int(s, 8);
  ti->next_try_at = sqlite3_column_double(s, 9);
  ti->pool = col_text(s, 10);
  ti->priority_weight = sqlite3_column_int64(s, 11);
}

static const char SQL_TI_INSERT[] =
    "INSERT INTO task_instance (" TI_COLS ") "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

int dagd_store_ti_insert(dagd_store *st, const dagd_store_ti *ti, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_TI_INSERT);
  bind_ti(s, ti);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc == SQLITE_DONE) return 0;
  if ((rc & 0xff) == SQLITE_CONSTRAINT)
    return dagd_err_set(err, DAGD_EEXIST, "task instance \"%s\" of run #%lld exists", ti->task_id,
                        (long long)ti->run_pk);
  return dagd__store_fail(st, err, rc, "inserting a task instance");
}

static const char SQL_TI_UPDATE[] =
    "UPDATE task_instance SET state = ?3, try_number = ?4, max_tries = ?5, pid = ?6, "
    "start_date = ?7, end_date = ?8, exit_code = ?9, next_try_at = ?10, pool = ?11, "
    "priority_weight = ?12 WHERE run_pk = ?1 AND task_id = ?2";

int dagd_store_ti_update(dagd_store *st, const dagd_store_ti *ti, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_TI_UPDATE);
  bind_ti(s, ti);
  int rc = dagd__store_step(st, s, "updating a task instance", err);
  return rc < 0 ? rc : dagd__store_changed_one(st, "task instance", ti->task_id, err);
}

static const char SQL_TI_GET[] =
    "SELECT " TI_COLS " FROM task_instance WHERE run_pk = ?1 AND task_id = ?2";

int dagd_store_ti_get(dagd_store *st, int64_t run_pk, const char *task_id, dagd_store_ti *out, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_TI_GET);
  sqlite3_bind_int64(s, 1, run_pk);
  bind_text(s, 2, task_id);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) read_ti(s, out);
  sqlite3_reset(s);
  if (rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_DONE) return DAGD_ENOENT;
  return dagd__store_fail(st, err, rc, "reading a task instance");
}

void dagd_store_ti_list_clear(dagd_store_ti_list *l) {
  for (size_t i = 0; i < l->n; i++) dagd_store_ti_clear(&l->tis[i]);
  free(l->tis);
  memset(l, 0, sizeof(*l));
}

static void read_any_ti(sqlite3_stmt *s, void *ti) { read_ti(s, ti); }

static int collect_tis(dagd_store *st, sqlite3_stmt *s, dagd_store_ti_list *out, dagd_err *err) {
  memset(out, 0, sizeof(*out));
  void *items;
  int rc =
      dagd__store_collect(st, s, &items, &out->n, sizeof(*out->tis), read_any_ti, "listing task instances", err);
  out->tis = items;
  if (rc < 0) dagd_store_ti_list_clear(out);
  return rc;
}

static const char SQL_TI_LIST_RUN[] =
    "SELECT " TI_COLS " FROM task_instance WHERE run_pk = ?1 ORDER BY task_id";

int dagd_store_ti_list_run(dagd_store *st, int64_t run_pk, dagd_store_ti_list *out, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_TI_LIST_RUN);
  sqlite3_bind_int64(s, 1, run_pk);
  return collect_tis(st, s, out, err);
}

static const char SQL_TI_LIVE[] =
    "SELECT " TI_COLS " FROM task_instance WHERE state IN ('queued', 'running')";

int dagd_store_ti_list_live(dagd_store *st, dagd_store_ti_list *out, dagd_err *err) {
  return collect_tis(st, dagd__store_q(st, SQL_TI_LIVE), out, err);
}

static const char SQL_OUT_CLEAR[] =
    "DELETE FROM task_output WHERE run_pk = ?1 AND task_id = ?2 AND substr(key, 1, 1) <> '_'";

int dagd_store_output_clear(dagd_store *st, int64_t run_pk, const char *task_id, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_OUT_CLEAR);
  sqlite3_bind_int64(s, 1, run_pk);
  bind_text(s, 2, task_id);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? 0 : dagd__store_fail(st, err, rc, "clearing a task's outputs");
}

static const char SQL_OUT_PUT[] =
    "INSERT INTO task_output (run_pk, task_id, key, value) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT DO UPDATE SET value = excluded.value";

int dagd_store_output_put(dagd_store *st, int64_t run_pk, const char *task_id, const char *key, const char *value,
                          dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_OUT_PUT);
  sqlite3_bind_int64(s, 1, run_pk);
  bind_text(s, 2, task_id);
  bind_text(s, 3, key);
  bind_text(s, 4, value);
  return dagd__store_step(st, s, "storing an output", err);
}

static const char SQL_OUT_GET[] =
    "SELECT value FROM task_output WHERE run_pk = ?1 AND task_id = ?2 AND key = ?3";

int dagd_store_output_get(dagd_store *st, int64_t run_pk, const char *task_id, const char *key, char **value,
                          dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_OUT_GET);
  sqlite3_bind_int64(s, 1, run_pk);
  bind_text(s, 2, task_id);
  bind_text(s, 3, key);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) *value = col_text(s, 0);
  sqlite3_reset(s);
  if (rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_DONE) return DAGD_ENOENT;
  return dagd__store_fail(st, err, rc, "reading an output");
}

static const char SQL_OUT_RUN[] =
    "SELECT json_group_object(task_id, json(obj)) FROM (SELECT task_id, "
    "json_group_object(key, value) AS obj FROM task_output WHERE run_pk = ?1 "
    "GROUP BY task_id ORDER BY task_id)";

int dagd_store_output_get_json(dagd_store *st, int64_t run_pk, char **json, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_OUT_RUN);
  sqlite3_bind_int64(s, 1, run_pk);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    *json = col_text(s, 0);
    if (*json == NULL) *json = dagd_strdup("{}");
  }
  sqlite3_reset(s);
  return rc == SQLITE_ROW ? 0 : dagd__store_fail(st, err, rc, "reading outputs");
}

/* Prepared when the store opens. */
const char *const dagd__store_tis_sql[] = {
    SQL_TI_INSERT, SQL_TI_UPDATE, SQL_TI_GET, SQL_TI_LIST_RUN, SQL_TI_LIVE, SQL_OUT_CLEAR, SQL_OUT_PUT,
    SQL_OUT_GET, SQL_OUT_RUN, NULL};
