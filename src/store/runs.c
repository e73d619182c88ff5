/* The state store's runs: creation (with their task instances), lookups, lists and counts,
 * state changes, and the queries planning and backfills ask of them.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "dagd/err.h"
#include "dagd/model.h"
#include "dagd/store.h"
#include "dagd/util.h"
#include "store/internal.h"

void dagd_store_run_clear(dagd_store_run *r) {
  free(r->dag_id);
  free(r->run_id);
  free(r->conf);
  memset(r, 0, sizeof(*r));
}

static void read_run(sqlite3_stmt *s, dagd_store_run *r) {
  memset(r, 0, sizeof(*r));
  r->pk = sqlite3_column_int64(s, 0);
  r->dag_id = col_text(s, 1);
  r->run_id = col_text(s, 2);
  const char *t = (const char *)sqlite3_column_text(s, 3);
  if (t == NULL || dagd_run_type_parse(t, &r->run_type) < 0) r->run_type = DAGD_RUN_MANUAL;
  r->logical_date = sqlite3_column_int64(s, 4);
  r->has_interval = sqlite3_column_type(s, 5) != SQLITE_NULL;
  r->interval_start = sqlite3_column_int64(s, 5);
  r->interval_end = sqlite3_column_int64(s, 6);
  r->conf = col_text(s, 7);
  if (r->conf == NULL) r->conf = dagd_strdup("{}");
  t = (const char *)sqlite3_column_text(s, 8);
  if (t == NULL || dagd_run_state_parse(t, &r->state) < 0) r->state = DAGD_RUN_FAILED;
  r->queued_at = sqlite3_column_double(s, 9);
  r->start_date = sqlite3_column_double(s, 10);
  r->end_date = sqlite3_column_double(s, 11);
  r->backfill_id = sqlite3_column_int64(s, 12);
  r->event_id = sqlite3_column_int64(s, 13);
}

/* Steps a query for at most one run: 0 with *out, DAGD_ENOENT with err
 * untouched (absence is an answer), or the store's error. */
static int maybe_one_run(dagd_store *st, sqlite3_stmt *s, dagd_store_run *out, dagd_err *err) {
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) read_run(s, out);
  sqlite3_reset(s);
  if (rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_DONE) return DAGD_ENOENT;
  return dagd__store_fail(st, err, rc, "reading a run");
}

static const char SQL_RUN_INSERT[] =
    "INSERT INTO dag_run (dag_id, run_id, run_type, logical_date, interval_start, "
    "interval_end, conf, state, queued_at, start_date, end_date, backfill_id, event_id) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

int dagd_store_run_insert(dagd_store *st, dagd_store_run *run, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_RUN_INSERT);
  bind_text(s, 1, run->dag_id);
  bind_text(s, 2, run->run_id);
  bind_text(s, 3, dagd_run_type_name(run->run_type));
  sqlite3_bind_int64(s, 4, run->logical_date);
  if (run->has_interval) {
    sqlite3_bind_int64(s, 5, run->interval_start);
    sqlite3_bind_int64(s, 6, run->interval_end);
  }
  bind_text(s, 7, run->conf ? run->conf : "{}");
  bind_text(s, 8, dagd_run_state_name(run->state));
  bind_time(s, 9, run->queued_at);
  bind_time(s, 10, run->start_date);
  bind_time(s, 11, run->end_date);
  if (run->backfill_id) sqlite3_bind_int64(s, 12, run->backfill_id);
  if (run->event_id) sqlite3_bind_int64(s, 13, run->event_id);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc == SQLITE_DONE) {
    run->pk = sqlite3_last_insert_rowid(st->db);
    return 0;
  }
  if ((rc & 0xff) == SQLITE_CONSTRAINT)
    return dagd_err_set(err, DAGD_EEXIST, "DAG \"%s\" already has run \"%s\"%s", run->dag_id, run->run_id,
                        run->run_type == DAGD_RUN_SCHEDULED ? " or a scheduled run for that date" : "");
  return dagd__store_fail(st, err, rc, "inserting a run");
}

static const char SQL_RUN_GET[] =
    "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ?1 AND run_id = ?2";

int dagd_store_run_get(dagd_store *st, const char *dag_id, const char *run_id, dagd_store_run *out,
                       dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_RUN_GET);
  bind_text(s, 1, dag_id);
  bind_text(s, 2, run_id);
  return maybe_one_run(st, s, out, err);
}

static const char SQL_RUN_GET_PK[] =
    "SELECT " RUN_COLS " FROM dag_run WHERE id = ?1";

int dagd_store_run_get_pk(dagd_store *st, int64_t pk, dagd_store_run *out, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_RUN_GET_PK);
  sqlite3_bind_int64(s, 1, pk);
  return maybe_one_run(st, s, out, err);
}

static const char SQL_RUN_STATE[] =
    "UPDATE dag_run SET state = ?2, start_date = ?3, end_date = ?4 WHERE id = ?1";

int dagd_store_run_set_state(dagd_store *st, int64_t pk, dagd_run_state state, double start_date,
                             double end_date, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_RUN_STATE);
  sqlite3_bind_int64(s, 1, pk);
  bind_text(s, 2, dagd_run_state_name(state));
  bind_time(s, 3, start_date);
  bind_time(s, 4, end_date);
  int rc = dagd__store_step(st, s, "updating a run", err);
  char id[32];
  snprintf(id, sizeof(id), "#%lld", (long long)pk);
  return rc < 0 ? rc : dagd__store_changed_one(st, "run", id, err);
}

void dagd_store_run_list_clear(dagd_store_run_list *l) {
  for (size_t i = 0; i < l->n; i++) dagd_store_run_clear(&l->runs[i]);
  free(l->runs);
  memset(l, 0, sizeof(*l));
}

static void read_any_run(sqlite3_stmt *s, void *r) { read_run(s, r); }

static int collect_runs(dagd_store *st, sqlite3_stmt *s, dagd_store_run_list *out, dagd_err *err) {
  memset(out, 0, sizeof(*out));
  void *items;
  int rc = dagd__store_collect(st, s, &items, &out->n, sizeof(*out->runs), read_any_run, "listing runs", err);
  out->runs = items;
  if (rc < 0) {
    dagd_store_run_list_clear(out);
    return rc;
  }
  out->total = (int64_t)out->n;
  return 0;
}

int dagd__store_count(dagd_store *st, sqlite3_stmt *s, int64_t *out, dagd_err *err) {
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) *out = sqlite3_column_int64(s, 0);
  sqlite3_reset(s);
  return rc == SQLITE_ROW ? 0 : dagd__store_fail(st, err, rc, "counting runs");
}

static const char SQL_RUN_LIST_DAG_STATE[] =
    "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ?1 AND state = ?4 "
    "ORDER BY logical_date DESC, id DESC LIMIT ?2 OFFSET ?3";

static const char SQL_RUN_LIST_DAG[] =
    "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ?1 "
    "ORDER BY logical_date DESC, id DESC LIMIT ?2 OFFSET ?3";

static const char SQL_RUN_COUNT_DAG_STATE[] =
    "SELECT count(*) FROM dag_run WHERE dag_id = ?1 AND state = ?2";

static const char SQL_RUN_COUNT_DAG[] =
    "SELECT count(*) FROM dag_run WHERE dag_id = ?1";

int dagd_store_run_list_dag(dagd_store *st, const char *dag_id, int state_filter, int64_t limit, int64_t offset,
                            dagd_store_run_list *out, dagd_err *err) {
  bool filtered = state_filter >= 0;
  sqlite3_stmt *s = dagd__store_q(st, filtered ? SQL_RUN_LIST_DAG_STATE : SQL_RUN_LIST_DAG);
  bind_text(s, 1, dag_id);
  sqlite3_bind_int64(s, 2, limit > 0 ? limit : 100);
  sqlite3_bind_int64(s, 3, offset > 0 ? offset : 0);
  if (filtered) bind_text(s, 4, dagd_run_state_name((dagd_run_state)state_filter));
  int rc = collect_runs(st, s, out, err);
  if (rc < 0) return rc;
  sqlite3_stmt *c = dagd__store_q(st, filtered ? SQL_RUN_COUNT_DAG_STATE : SQL_RUN_COUNT_DAG);
  bind_text(c, 1, dag_id);
  if (filtered) bind_text(c, 2, dagd_run_state_name((dagd_run_state)state_filter));
  if ((rc = dagd__store_count(st, c, &out->total, err)) < 0) dagd_store_run_list_clear(out);
  return rc;
}

int dagd_store_run_query(dagd_store *st, const dagd_store_run_filter *f, dagd_store_run_list *out, dagd_err *err) {
  /* The columns a list may be ordered by, by dagd_run_order; ties go to
   * the row id in the same direction, so pages are stable. */
  static const char *const columns[DAGD_RUN_ORDER__COUNT] = {
      [DAGD_RUN_ORDER_ID] = "id",
      [DAGD_RUN_ORDER_RUN_ID] = "run_id",
      [DAGD_RUN_ORDER_DAG_ID] = "dag_id",
      [DAGD_RUN_ORDER_STATE] = "state",
      [DAGD_RUN_ORDER_LOGICAL_DATE] = "logical_date",
      [DAGD_RUN_ORDER_START_DATE] = "start_date",
      [DAGD_RUN_ORDER_END_DATE] = "end_date",
      [DAGD_RUN_ORDER_QUEUED_AT] = "queued_at",
      [DAGD_RUN_ORDER_CONF] = "conf",
      [DAGD_RUN_ORDER_RUN_TYPE] = "run_type",
      [DAGD_RUN_ORDER_EXTERNAL_TRIGGER] = "(run_type IN ('manual', 'event'))",
      [DAGD_RUN_ORDER_DURATION] = "(end_date - start_date)",
  };
  memset(out, 0, sizeof(*out));
  if (f->order < 0 || f->order >= DAGD_RUN_ORDER__COUNT) return dagd_err_set(err, DAGD_EINVAL, "bad run order");
  dagd_buf where, sql;
  dagd_buf_init(&where);
  dagd_buf_init(&sql);
  dagd_buf_puts(&where, "dag_id = ?1");
  if (f->states) {
    dagd_buf_puts(&where, " AND state IN (");
    bool first = true;
    for (int i = 0; i < DAGD_RUN__COUNT; i++) {
      if (!(f->states & (1u << i))) continue;
      /* The names are the model's fixed words, not client text. */
      dagd_buf_printf(&where, "%s'%s'", first ? "" : ", ", dagd_run_state_name((dagd_run_state)i));
      first = false;
    }
    dagd_buf_puts(&where, ")");
  }
  const char *dir = f->descending ? "DESC" : "ASC";
  dagd_buf_printf(&sql, "SELECT " RUN_COLS " FROM dag_run WHERE %s ORDER BY %s %s, id %s LIMIT ?2 OFFSET ?3",
                  where.data, columns[f->order], dir, dir);
  sqlite3_stmt *s = NULL, *c = NULL;
  int rc = sqlite3_prepare_v2(st->db, sql.data, -1, &s, NULL);
  if (rc == SQLITE_OK) {
    dagd_buf_reset(&sql);
    dagd_buf_printf(&sql, "SELECT count(*) FROM dag_run WHERE %s", where.data);
    rc = sqlite3_prepare_v2(st->db, sql.data, -1, &c, NULL);
  }
  dagd_buf_close(&where);
  dagd_buf_close(&sql);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(s);
    return dagd__store_fail(st, err, rc, "preparing a run list");
  }
  bind_text(s, 1, f->dag_id);
  sqlite3_bind_int64(s, 2, f->limit > 0 ? f->limit : 100);
  sqlite3_bind_int64(s, 3, f->offset > 0 ? f->offset : 0);
  bind_text(c, 1, f->dag_id);
  rc = collect_runs(st, s, out, err);
  if (rc == 0 && (rc = dagd__store_count(st, c, &out->total, err)) < 0) dagd_store_run_list_clear(out);
  sqlite3_finalize(s);
  sqlite3_finalize(c);
  return rc;
}

/* Creation order: scheduled runs are made oldest first, a backfill
     * in the order it asked for. */
static const char SQL_RUN_ACTIVE[] =
    "SELECT " RUN_COLS " FROM dag_run WHERE state IN ('queued', 'running') "
    "ORDER BY queued_at, id";

int dagd_store_run_list_active(dagd_store *st, dagd_store_run_list *out, dagd_err *err) {
  return collect_runs(st, dagd__store_q(st, SQL_RUN_ACTIVE), out, err);
}

int dagd_store_run_count(dagd_store *st, const char *dag_id, dagd_run_state state, int64_t *out, dagd_err *err) {
  sqlite3_stmt *c = dagd__store_q(st, SQL_RUN_COUNT_DAG_STATE);
  bind_text(c, 1, dag_id);
  bind_text(c, 2, dagd_run_state_name(state));
  return dagd__store_count(st, c, out, err);
}

static const char SQL_RUN_LAST_SCHED[] =
    "SELECT max(logical_date) FROM dag_run WHERE dag_id = ?1 AND run_type = 'scheduled'";

int dagd_store_run_get_last_scheduled(dagd_store *st, const char *dag_id, int64_t *logical_date, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_RUN_LAST_SCHED);
  bind_text(s, 1, dag_id);
  int rc = sqlite3_step(s);
  bool found = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
  if (found) *logical_date = sqlite3_column_int64(s, 0);
  sqlite3_reset(s);
  if (rc != SQLITE_ROW) return dagd__store_fail(st, err, rc, "reading the last scheduled run");
  return found ? 0 : DAGD_ENOENT;
}

static const char SQL_RUN_DATE_TAKEN[] =
    "SELECT 1 FROM dag_run WHERE dag_id = ?1 AND logical_date = ?2 "
    "AND run_type IN ('scheduled', 'backfill') LIMIT 1";

int dagd_store_run_is_date_taken(dagd_store *st, const char *dag_id, int64_t logical_date, bool *taken,
                                 dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_RUN_DATE_TAKEN);
  bind_text(s, 1, dag_id);
  sqlite3_bind_int64(s, 2, logical_date);
  int rc = sqlite3_step(s);
  *taken = rc == SQLITE_ROW;
  sqlite3_reset(s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return dagd__store_fail(st, err, rc, "looking for a run by date");
  return 0;
}

int dagd_store_run_create(dagd_store *st, const dagd_dag *dag, dagd_store_run *run, dagd_err *err) {
  int rc = dagd_store_run_insert(st, run, err);
  for (size_t t = 0; rc == 0 && t < dag->n_tasks; t++) {
    const dagd_task *task = dag->tasks[t];
    dagd_store_ti ti = {.run_pk = run->pk, .task_id = task->id, .state = DAGD_TI_NONE,
                        .max_tries = task->retries + 1, .pool = task->pool, .priority_weight = task->weight};
    rc = dagd_store_ti_insert(st, &ti, err);
  }
  return rc;
}

static const char SQL_RUN_BY_DATE[] =
    "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ?1 AND logical_date = ?2 "
    "ORDER BY run_type = 'scheduled' DESC, id LIMIT 1";

/* The one run a query by (dag_id, logical_date) finds. */
static int run_at(dagd_store *st, const char *sql, const char *dag_id, int64_t logical_date, dagd_store_run *out,
                  dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, sql);
  bind_text(s, 1, dag_id);
  sqlite3_bind_int64(s, 2, logical_date);
  return maybe_one_run(st, s, out, err);
}

int dagd_store_run_get_by_date(dagd_store *st, const char *dag_id, int64_t logical_date, dagd_store_run *out,
                               dagd_err *err) {
  return run_at(st, SQL_RUN_BY_DATE, dag_id, logical_date, out, err);
}

static const char SQL_RUN_WATCHED_AT[] =
    "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ?1 AND logical_date = ?2 "
    "ORDER BY run_type = 'scheduled' DESC, id DESC LIMIT 1";

int dagd_store_run_get_watched(dagd_store *st, const char *dag_id, int64_t logical_date, dagd_store_run *out,
                               dagd_err *err) {
  return run_at(st, SQL_RUN_WATCHED_AT, dag_id, logical_date, out, err);
}

static const char SQL_RUN_LATEST[] =
    "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ?1 ORDER BY logical_date DESC, id DESC LIMIT 1";

int dagd_store_run_get_latest(dagd_store *st, const char *dag_id, dagd_store_run *out, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_RUN_LATEST);
  bind_text(s, 1, dag_id);
  return maybe_one_run(st, s, out, err);
}

static const char SQL_RUN_BACKFILL[] =
    "UPDATE dag_run SET backfill_id = ?2, queued_at = ?3 WHERE id = ?1";

int dagd_store_run_set_backfill(dagd_store *st, int64_t pk, int64_t backfill_id, double queued_at, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_RUN_BACKFILL);
  sqlite3_bind_int64(s, 1, pk);
  sqlite3_bind_int64(s, 2, backfill_id);
  bind_time(s, 3, queued_at);
  return dagd__store_step(st, s, "updating a run", err);
}

static const char SQL_RUN_LAST_SUCCESS[] =
    "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ?1 AND state = 'success' AND id != ?2 "
    "ORDER BY end_date DESC, id DESC LIMIT 1";

int dagd_store_run_get_last_success(dagd_store *st, const char *dag_id, int64_t exclude_pk, dagd_store_run *out,
                                    dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_RUN_LAST_SUCCESS);
  bind_text(s, 1, dag_id);
  sqlite3_bind_int64(s, 2, exclude_pk);
  return maybe_one_run(st, s, out, err);
}

/* Prepared when the store opens. */
const char *const dagd__store_runs_sql[] = {
    SQL_RUN_INSERT, SQL_RUN_GET, SQL_RUN_GET_PK, SQL_RUN_STATE, SQL_RUN_LIST_DAG_STATE, SQL_RUN_LIST_DAG,
    SQL_RUN_COUNT_DAG_STATE, SQL_RUN_COUNT_DAG, SQL_RUN_ACTIVE, SQL_RUN_LAST_SCHED, SQL_RUN_DATE_TAKEN,
    SQL_RUN_BY_DATE, SQL_RUN_WATCHED_AT, SQL_RUN_LATEST, SQL_RUN_BACKFILL, SQL_RUN_LAST_SUCCESS, NULL};
