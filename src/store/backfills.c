/* The state store's backfills: the request, and the counts of its runs by state.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "dagd/err.h"
#include "dagd/model.h"
#include "dagd/store.h"
#include "dagd/util.h"
#include "store/internal.h"

static const char SQL_BACKFILL_INSERT[] =
    "INSERT INTO backfill (dag_id, from_date, to_date, options, created_at, total) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

int dagd_store_backfill_insert(dagd_store *st, dagd_store_backfill *b, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_BACKFILL_INSERT);
  bind_text(s, 1, b->dag_id);
  sqlite3_bind_int64(s, 2, b->from_date);
  sqlite3_bind_int64(s, 3, b->to_date);
  bind_text(s, 4, b->options ? b->options : "{}");
  sqlite3_bind_double(s, 5, b->created_at);
  sqlite3_bind_int64(s, 6, b->total);
  int rc = dagd__store_step(st, s, "recording a backfill", err);
  if (rc == 0) b->id = sqlite3_last_insert_rowid(st->db);
  return rc;
}

void dagd_store_backfill_clear(dagd_store_backfill *b) {
  free(b->dag_id);
  free(b->options);
  memset(b, 0, sizeof(*b));
}

static const char SQL_BACKFILL_GET[] =
    "SELECT id, dag_id, from_date, to_date, options, created_at, total FROM backfill WHERE id = ?1";

static const char SQL_BACKFILL_COUNTS[] =
    "SELECT state, count(*) FROM dag_run WHERE backfill_id = ?1 GROUP BY state";

int dagd_store_backfill_get(dagd_store *st, int64_t id, dagd_store_backfill *out, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_BACKFILL_GET);
  sqlite3_bind_int64(s, 1, id);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(s, 0);
    out->dag_id = col_text(s, 1);
    out->from_date = sqlite3_column_int64(s, 2);
    out->to_date = sqlite3_column_int64(s, 3);
    out->options = col_text(s, 4);
    out->created_at = sqlite3_column_double(s, 5);
    out->total = sqlite3_column_int64(s, 6);
  }
  sqlite3_reset(s);
  if (rc == SQLITE_DONE) return DAGD_ENOENT;
  if (rc != SQLITE_ROW) return dagd__store_fail(st, err, rc, "reading a backfill");
  s = dagd__store_q(st, SQL_BACKFILL_COUNTS);
  sqlite3_bind_int64(s, 1, id);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    dagd_run_state state;
    const char *name = (const char *)sqlite3_column_text(s, 0);
    if (name && dagd_run_state_parse(name, &state) == 0) out->by_state[state] = sqlite3_column_int64(s, 1);
  }
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? 0 : dagd__store_fail(st, err, rc, "counting a backfill's runs");
}

/* Prepared when the store opens. */
const char *const dagd__store_backfills_sql[] = {
    SQL_BACKFILL_INSERT, SQL_BACKFILL_GET, SQL_BACKFILL_COUNTS, NULL};
