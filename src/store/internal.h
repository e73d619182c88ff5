/* What the state store's files share: the store itself, the prepared
 * statements (each file lists its own SQL, prepared when the store opens:
 * dagd__store_q finds a statement by the address of its text), and the
 * helpers that translate SQLite's results.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_STORE_INTERNAL_H
#define DAGD_STORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "dagd/err.h"
#include "dagd/store.h"
#include "dagd/util.h"

/* Room for every statement, with space to spare: a power of two. */
#define STORE_STMT_SLOTS 128

struct dagd_store {
  sqlite3 *db;
  char *path;
  int lock_fd; /* <path>.lock, held by the daemon's store; -1 */
  int busy_ms; /* the busy timeout */
  struct {
    const char *sql;
    sqlite3_stmt *s;
  } stmt[STORE_STMT_SLOTS];
  size_t n_stmt;
  /* Grouping (dagd_store_group): every transaction of a loop turn is a
   * savepoint of one transaction, committed by dagd_store_flush. */
  bool grouped;
  bool group_open;   /* the turn's transaction is open */
  bool group_part;   /* a part (savepoint) of it is open */
  bool group_sync;   /* a durable part joined it: sync at the flush */
  bool group_lost;   /* SQLite rolled the whole of it back */
};

#define RUN_COLS                                                                                          \
  "id, dag_id, run_id, run_type, logical_date, interval_start, interval_end, conf, state, queued_at, " \
  "start_date, end_date, backfill_id, event_id"
#define TI_COLS                                                                                            \
  "run_pk, task_id, state, try_number, max_tries, pid, start_date, end_date, exit_code, next_try_at, " \
  "pool, priority_weight"

/* Each file's statements, NULL-terminated (db.c prepares them). */
extern const char *const dagd__store_dags_sql[];
extern const char *const dagd__store_runs_sql[];
extern const char *const dagd__store_tis_sql[];
extern const char *const dagd__store_events_sql[];
extern const char *const dagd__store_backfills_sql[];
extern const char *const dagd__store_baselines_sql[];

/* The prepared statement of sql, reset; NULL when it is not prepared. */
sqlite3_stmt *dagd__store_q(dagd_store *st, const char *sql);
/* Translates an SQLite failure rc while doing `what` into err (kept when
 * already set), with SQLite's code as its cause; returns the dagd code. */
int dagd__store_fail(dagd_store *st, dagd_err *err, int rc, const char *what);
int dagd__store_exec(dagd_store *st, const char *sql, dagd_err *err);
/* Steps s to its end and resets it: 0, or the failure. */
int dagd__store_step(dagd_store *st, sqlite3_stmt *s, const char *what, dagd_err *err);
/* DAGD_ENOENT naming what and id when the last statement changed no row. */
int dagd__store_changed_one(dagd_store *st, const char *what, const char *id, dagd_err *err);
/* Steps s to its end, each row read by read into a growing array of
 * items of size bytes (*items, *n; the caller frees them, also on
 * failure). */
int dagd__store_collect(dagd_store *st, sqlite3_stmt *s, void **items, size_t *n, size_t size,
                        void (*read)(sqlite3_stmt *, void *), const char *what, dagd_err *err);
/* The one integer a counting statement yields. */
int dagd__store_count(dagd_store *st, sqlite3_stmt *s, int64_t *out, dagd_err *err);

static inline void bind_text(sqlite3_stmt *s, int i, const char *v) {
  if (v) sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_null(s, i);
}

static inline void bind_time(sqlite3_stmt *s, int i, double v) {
  if (v != 0) sqlite3_bind_double(s, i, v);
  else sqlite3_bind_null(s, i);
}

static inline char *col_text(sqlite3_stmt *s, int i) {
  const unsigned char *t = sqlite3_column_text(s, i);
  return t ? dagd_strdup((const char *)t) : NULL;
}

#endif
