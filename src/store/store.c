/* The SQLite state store: opening, schema migrations, transactions, and
 * the typed queries over DAGs, runs, task instances and outputs.
 * Every statement is prepared once per store and reset after use.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "dagd/err.h"
#include "dagd/model.h"
#include "dagd/store.h"
#include "dagd/util.h"

/* Each migration takes the schema from version i to i+1. Never edit one
 * that has shipped: add the next. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE dag ("
    "  dag_id TEXT PRIMARY KEY,"
    "  fileloc TEXT NOT NULL,"
    "  is_paused INTEGER NOT NULL DEFAULT 0,"
    "  next_run_after INTEGER"
    ");"
    "CREATE TABLE dag_run ("
    "  id INTEGER PRIMARY KEY,"
    "  dag_id TEXT NOT NULL,"
    "  run_id TEXT NOT NULL,"
    "  run_type TEXT NOT NULL,"
    "  logical_date INTEGER NOT NULL,"
    "  interval_start INTEGER,"
    "  interval_end INTEGER,"
    "  conf TEXT NOT NULL DEFAULT '{}',"
    "  state TEXT NOT NULL,"
    "  queued_at REAL, start_date REAL, end_date REAL,"
    "  backfill_id INTEGER, event_id INTEGER,"
    "  UNIQUE (dag_id, run_id)"
    ");"
    /* One scheduled run per interval, whatever its run_id. */
    "CREATE UNIQUE INDEX dag_run_scheduled ON dag_run (dag_id, logical_date)"
    "  WHERE run_type = 'scheduled';"
    "CREATE INDEX dag_run_by_date ON dag_run (dag_id, logical_date);"
    /* The loop's working set: only unfinished runs are in this index. */
    "CREATE INDEX dag_run_active ON dag_run (logical_date)"
    "  WHERE state IN ('queued', 'running');"
    "CREATE TABLE task_instance ("
    "  run_pk INTEGER NOT NULL REFERENCES dag_run (id) ON DELETE CASCADE,"
    "  task_id TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  try_number INTEGER NOT NULL DEFAULT 0,"
    "  max_tries INTEGER NOT NULL DEFAULT 1,"
    "  pid INTEGER,"
    "  start_date REAL, end_date REAL,"
    "  exit_code INTEGER,"
    "  next_try_at REAL,"
    "  pool TEXT NOT NULL DEFAULT 'default',"
    "  priority_weight INTEGER NOT NULL DEFAULT 1,"
    "  PRIMARY KEY (run_pk, task_id)"
    ") WITHOUT ROWID;"
    "CREATE INDEX task_instance_live ON task_instance (state)"
    "  WHERE state IN ('queued', 'running');"
    "CREATE TABLE task_output ("
    "  run_pk INTEGER NOT NULL REFERENCES dag_run (id) ON DELETE CASCADE,"
    "  task_id TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (run_pk, task_id, key)"
    ") WITHOUT ROWID;",
    /* 1 -> 2: events, their deduplication, backfills. */
    "CREATE TABLE event ("
    "  id INTEGER PRIMARY KEY,"
    "  source TEXT NOT NULL,"            /* generic | alertmanager | grafana */
    "  name TEXT,"
    "  external_id TEXT,"
    "  payload TEXT NOT NULL,"
    "  received_at REAL NOT NULL,"
    "  outcome TEXT NOT NULL,"           /* accepted | duplicate | ignored */
    "  runs_started INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE UNIQUE INDEX event_external ON event (source, external_id)"
    "  WHERE external_id IS NOT NULL AND outcome != 'duplicate';"
    "CREATE INDEX event_by_time ON event (received_at);"
    "CREATE TABLE alert_seen ("
    "  fingerprint TEXT NOT NULL,"
    "  starts_at TEXT NOT NULL,"
    "  event_id INTEGER NOT NULL,"
    "  PRIMARY KEY (fingerprint, starts_at)"
    ") WITHOUT ROWID;"
    "ALTER TABLE dag ADD COLUMN last_event_run REAL;"
    "CREATE TABLE backfill ("
    "  id INTEGER PRIMARY KEY,"
    "  dag_id TEXT NOT NULL,"
    "  from_date INTEGER NOT NULL,"
    "  to_date INTEGER NOT NULL,"
    "  options TEXT NOT NULL,"
    "  created_at REAL NOT NULL,"
    "  total INTEGER NOT NULL"
    ");"
    "CREATE INDEX dag_run_backfill ON dag_run (backfill_id) WHERE backfill_id IS NOT NULL;",
    /* 2 -> 3: the values a gate's model had when its run was promoted. */
    "CREATE TABLE baseline ("
    "  dag_id TEXT NOT NULL,"
    "  task_id TEXT NOT NULL,"           /* the gate */
    "  run_id TEXT NOT NULL,"
    "  vals TEXT NOT NULL,"              /* JSON object of the outputs checked */
    "  recorded_at REAL NOT NULL,"
    "  PRIMARY KEY (dag_id, task_id)"
    ") WITHOUT ROWID;"
    "CREATE INDEX dag_run_success ON dag_run (dag_id, end_date) WHERE state = 'success';",
    /* 3 -> 4: retention finds old finished runs without a scan. */
    "CREATE INDEX dag_run_finished ON dag_run (end_date) WHERE state IN ('success', 'failed');",
    /* 4 -> 5: what a delivery's outcome means in words ("no DAG listens to
     * \"x\""), for the event list. */
    "ALTER TABLE event ADD COLUMN detail TEXT;",
};

enum {
  Q_DAG_UPSERT,
  Q_DAG_GET,
  Q_DAG_PAUSE,
  Q_DAG_NEXT,
  Q_RUN_INSERT,
  Q_RUN_GET,
  Q_RUN_GET_PK,
  Q_RUN_STATE,
  Q_RUN_LIST_DAG,
  Q_RUN_LIST_DAG_STATE,
  Q_RUN_COUNT_DAG,
  Q_RUN_COUNT_DAG_STATE,
  Q_RUN_ACTIVE,
  Q_RUN_LAST_SCHED,
  Q_RUN_DATE_TAKEN,
  Q_TI_INSERT,
  Q_TI_UPDATE,
  Q_TI_GET,
  Q_TI_LIST_RUN,
  Q_TI_LIVE,
  Q_OUT_CLEAR,
  Q_OUT_PUT,
  Q_OUT_GET,
  Q_OUT_RUN,
  Q_RUN_BY_DATE,
  Q_EVENT_INSERT,
  Q_EVENT_FIND,
  Q_EVENT_RUNS,
  Q_EVENT_DETAIL,
  Q_EVENT_LIST,
  Q_EVENT_COUNT,
  Q_ALERT_SEEN,
  Q_DAG_EVENT_RUN_GET,
  Q_DAG_EVENT_RUN_SET,
  Q_BACKFILL_INSERT,
  Q_BACKFILL_GET,
  Q_BACKFILL_COUNTS,
  Q_RUN_LATEST,
  Q_RUN_BACKFILL,
  Q_RUN_LAST_SUCCESS,
  Q_BASELINE_PUT,
  Q_BASELINE_GET,
  Q__COUNT
};

#define RUN_COLS                                                                                          \
  "id, dag_id, run_id, run_type, logical_date, interval_start, interval_end, conf, state, queued_at, " \
  "start_date, end_date, backfill_id, event_id"
#define TI_COLS                                                                                            \
  "run_pk, task_id, state, try_number, max_tries, pid, start_date, end_date, exit_code, next_try_at, " \
  "pool, priority_weight"

static const char *const queries[Q__COUNT] = {
    [Q_DAG_UPSERT] = "INSERT INTO dag (dag_id, fileloc, is_paused) VALUES (?1, ?2, ?3) "
                     "ON CONFLICT (dag_id) DO UPDATE SET fileloc = excluded.fileloc",
    [Q_DAG_GET] = "SELECT dag_id, fileloc, is_paused, next_run_after FROM dag WHERE dag_id = ?1",
    [Q_DAG_PAUSE] = "UPDATE dag SET is_paused = ?2 WHERE dag_id = ?1",
    [Q_DAG_NEXT] = "UPDATE dag SET next_run_after = ?2 WHERE dag_id = ?1",
    [Q_RUN_INSERT] = "INSERT INTO dag_run (dag_id, run_id, run_type, logical_date, interval_start, "
                     "interval_end, conf, state, queued_at, start_date, end_date, backfill_id, event_id) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [Q_RUN_GET] = "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ?1 AND run_id = ?2",
    [Q_RUN_GET_PK] = "SELECT " RUN_COLS " FROM dag_run WHERE id = ?1",
    [Q_RUN_STATE] = "UPDATE dag_run SET state = ?2, start_date = ?3, end_date = ?4 WHERE id = ?1",
    [Q_RUN_LIST_DAG] = "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ?1 "
                       "ORDER BY logical_date DESC, id DESC LIMIT ?2 OFFSET ?3",
    [Q_RUN_LIST_DAG_STATE] = "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ?1 AND state = ?4 "
                             "ORDER BY logical_date DESC, id DESC LIMIT ?2 OFFSET ?3",
    [Q_RUN_COUNT_DAG] = "SELECT count(*) FROM dag_run WHERE dag_id = ?1",
    [Q_RUN_COUNT_DAG_STATE] = "SELECT count(*) FROM dag_run WHERE dag_id = ?1 AND state = ?2",
    /* Creation order: scheduled runs are made oldest first, a backfill
     * in the order it asked for. */
    [Q_RUN_ACTIVE] = "SELECT " RUN_COLS " FROM dag_run WHERE state IN ('queued', 'running') "
                     "ORDER BY queued_at, id",
    [Q_RUN_LAST_SCHED] = "SELECT max(logical_date) FROM dag_run WHERE dag_id = ?1 AND run_type = 'scheduled'",
    [Q_RUN_DATE_TAKEN] = "SELECT 1 FROM dag_run WHERE dag_id = ?1 AND logical_date = ?2 "
                         "AND run_type IN ('scheduled', 'backfill') LIMIT 1",
    [Q_TI_INSERT] = "INSERT INTO task_instance (" TI_COLS ") "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [Q_TI_UPDATE] = "UPDATE task_instance SET state = ?3, try_number = ?4, max_tries = ?5, pid = ?6, "
                    "start_date = ?7, end_date = ?8, exit_code = ?9, next_try_at = ?10, pool = ?11, "
                    "priority_weight = ?12 WHERE run_pk = ?1 AND task_id = ?2",
    [Q_TI_GET] = "SELECT " TI_COLS " FROM task_instance WHERE run_pk = ?1 AND task_id = ?2",
    [Q_TI_LIST_RUN] = "SELECT " TI_COLS " FROM task_instance WHERE run_pk = ?1 ORDER BY task_id",
    [Q_TI_LIVE] = "SELECT " TI_COLS " FROM task_instance WHERE state IN ('queued', 'running')",
    [Q_OUT_PUT] = "INSERT INTO task_output (run_pk, task_id, key, value) VALUES (?1, ?2, ?3, ?4) "
                  "ON CONFLICT DO UPDATE SET value = excluded.value",
    [Q_OUT_CLEAR] = "DELETE FROM task_output WHERE run_pk = ?1 AND task_id = ?2 AND substr(key, 1, 1) <> '_'",
    [Q_OUT_GET] = "SELECT value FROM task_output WHERE run_pk = ?1 AND task_id = ?2 AND key = ?3",
    [Q_OUT_RUN] = "SELECT json_group_object(task_id, json(obj)) FROM (SELECT task_id, "
                  "json_group_object(key, value) AS obj FROM task_output WHERE run_pk = ?1 "
                  "GROUP BY task_id ORDER BY task_id)",
    [Q_RUN_BY_DATE] = "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ?1 AND logical_date = ?2 "
                      "ORDER BY run_type = 'scheduled' DESC, id LIMIT 1",
    [Q_EVENT_INSERT] = "INSERT INTO event (source, name, external_id, payload, received_at, outcome, runs_started) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_EVENT_FIND] = "SELECT id FROM event WHERE source = ?1 AND external_id = ?2 AND outcome != 'duplicate'",
    [Q_EVENT_RUNS] = "UPDATE event SET runs_started = ?2, outcome = ?3 WHERE id = ?1",
    [Q_EVENT_DETAIL] = "UPDATE event SET detail = ?2 WHERE id = ?1",
    [Q_EVENT_LIST] = "SELECT id, source, name, external_id, payload, received_at, outcome, runs_started, detail "
                     "FROM event ORDER BY id DESC LIMIT ?1 OFFSET ?2",
    [Q_EVENT_COUNT] = "SELECT count(*) FROM event",
    [Q_ALERT_SEEN] = "INSERT INTO alert_seen (fingerprint, starts_at, event_id) VALUES (?1, ?2, ?3) "
                     "ON CONFLICT DO NOTHING",
    [Q_DAG_EVENT_RUN_GET] = "SELECT last_event_run FROM dag WHERE dag_id = ?1",
    [Q_DAG_EVENT_RUN_SET] = "UPDATE dag SET last_event_run = ?2 WHERE dag_id = ?1",
    [Q_BACKFILL_INSERT] = "INSERT INTO backfill (dag_id, from_date, to_date, options, created_at, total) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_BACKFILL_GET] = "SELECT id, dag_id, from_date, to_date, options, created_at, total FROM backfill WHERE id = ?1",
    [Q_BACKFILL_COUNTS] = "SELECT state, count(*) FROM dag_run WHERE backfill_id = ?1 GROUP BY state",
    [Q_RUN_BACKFILL] = "UPDATE dag_run SET backfill_id = ?2, queued_at = ?3 WHERE id = ?1",
    [Q_RUN_LAST_SUCCESS] = "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ?1 AND state = 'success' AND id != ?2 "
                           "ORDER BY end_date DESC, id DESC LIMIT 1",
    [Q_BASELINE_PUT] = "INSERT INTO baseline (dag_id, task_id, run_id, vals, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5) "
                       "ON CONFLICT DO UPDATE SET run_id = excluded.run_id, vals = excluded.vals, "
                       "recorded_at = excluded.recorded_at",
    [Q_BASELINE_GET] = "SELECT run_id, vals FROM baseline WHERE dag_id = ?1 AND task_id = ?2",
    [Q_RUN_LATEST] = "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ?1 ORDER BY logical_date DESC, id DESC LIMIT 1",
};

struct dagd_store {
  sqlite3 *db;
  char *path;
  int lock_fd; /* <path>.lock, held by the daemon's store; -1 */
  int busy_ms; /* the busy timeout */
  sqlite3_stmt *stmt[Q__COUNT];
  /* Grouping (dagd_store_group): every transaction of a loop turn is a
   * savepoint of one transaction, committed by dagd_store_flush. */
  bool grouped;
  bool group_open;   /* the turn's transaction is open */
  bool group_part;   /* a part (savepoint) of it is open */
  bool group_sync;   /* a durable part joined it: sync at the flush */
  bool group_lost;   /* SQLite rolled the whole of it back */
};

/* Translates an SQLite failure at the adapter, keeping its code as cause. */
static int db_fail(dagd_store *st, dagd_err *err, int rc, const char *what) {
  int code = DAGD_EIO;
  if (rc == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_CONSTRAINT) code = DAGD_EEXIST;
  else if (rc == SQLITE_NOMEM) code = DAGD_ENOMEM;
  else if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) code = DAGD_ETIMEDOUT;
  else if ((rc & 0xff) == SQLITE_FULL) code = DAGD_ELIMIT;
  if (err != NULL && !dagd_err_is_set(err)) {
    dagd_err_set(err, code, "%s: %s: %s", st->path, what, sqlite3_errmsg(st->db));
    err->cause = rc;
  }
  return code;
}

static int exec_sql(dagd_store *st, const char *sql, dagd_err *err) {
  int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : db_fail(st, err, rc, "exec");
}

/* Gets the prepared statement q, reset and with no bindings. */
static sqlite3_stmt *q(dagd_store *st, int which) {
  sqlite3_stmt *s = st->stmt[which];
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return s;
}

static int step_done(dagd_store *st, sqlite3_stmt *s, const char *what, dagd_err *err) {
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? 0 : db_fail(st, err, rc, what);
}

static void bind_text(sqlite3_stmt *s, int i, const char *v) {
  if (v) sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_null(s, i);
}

static void bind_time(sqlite3_stmt *s, int i, double v) {
  if (v != 0) sqlite3_bind_double(s, i, v);
  else sqlite3_bind_null(s, i);
}

static char *col_text(sqlite3_stmt *s, int i) {
  const unsigned char *t = sqlite3_column_text(s, i);
  return t ? dagd_strdup((const char *)t) : NULL;
}

static int migrate(dagd_store *st, int target, dagd_err *err) {
  sqlite3_stmt *s;
  int version = 0, rc;
  if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
    return db_fail(st, err, sqlite3_errcode(st->db), "reading the schema version");
  if ((rc = sqlite3_step(s)) == SQLITE_ROW) version = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW) return db_fail(st, err, rc, "reading the schema version");
  int latest = (int)DAGD_ARRAY_LEN(migrations);
  if (target > 0 && target < latest) latest = target;
  if (version > (int)DAGD_ARRAY_LEN(migrations))
    return dagd_err_set(err, DAGD_ERANGE,
                        "%s: schema version %d is newer than this dagd understands (%d); use a newer dagd",
                        st->path, version, (int)DAGD_ARRAY_LEN(migrations));
  for (int v = version; v < latest; v++) {
    char pragma[64];
    snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
    /* The migration and its version bump commit together or not at all. */
    if ((rc = exec_sql(st, "BEGIN IMMEDIATE", err)) < 0) return rc;
    if ((rc = exec_sql(st, migrations[v], err)) < 0 || (rc = exec_sql(st, pragma, err)) < 0) {
      sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
      return rc;
    }
    if ((rc = exec_sql(st, "COMMIT", err)) < 0) return rc;
  }
  return 0;
}

static int store_open(const char *path, int version, bool daemon, dagd_store **out, dagd_err *err);

int dagd_store_open(const char *path, dagd_store **out, dagd_err *err) {
  return store_open(path, 0, false, out, err);
}

int dagd_store_open_daemon(const char *path, dagd_store **out, dagd_err *err) {
  return store_open(path, 0, true, out, err);
}

int dagd_store_open_version(const char *path, int version, dagd_store **out, dagd_err *err) {
  return store_open(path, version, false, out, err);
}

/* The daemon's state belongs to one daemon: two would both schedule,
 * start the same tries and count each other's as lost. */
static int lock_state(dagd_store *st, dagd_err *err) {
  char *lock = dagd_asprintf("%s.lock", st->path);
  long holder = 0;
  dagd_err lerr;
  dagd_err_init(&lerr);
  int rc = dagd_fs_lock_pidfile(lock, &st->lock_fd, &holder, &lerr);
  if (rc == DAGD_EEXIST && holder > 0)
    dagd_err_set(err, rc, "%s is in use by another dagd (pid %ld holds %s); stop it first, or give this one another "
                 "state file", st->path, holder, lock);
  else if (rc == DAGD_EEXIST)
    dagd_err_set(err, rc, "%s is in use by another dagd (it holds %s); stop it first, or give this one another state "
                 "file", st->path, lock);
  else if (rc < 0)
    dagd_err_set(err, rc, "%s", lerr.msg);
  free(lock);
  return rc;
}

/* PRAGMA quick_check before anything reads or writes: a damaged file
 * must not be served as if it were empty, nor migrated. It is O(size of
 * the file), once per start; integrity_check (dagctl db check) also
 * checks the indexes against their tables. */
static int quick_check(dagd_store *st, dagd_err *err) {
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(st->db, "PRAGMA quick_check(1)", -1, &s, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  const char *res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
  int out = 0;
  if (rc != SQLITE_ROW || res == NULL || strcmp(res, "ok") != 0) {
    out = dagd_err_set(err, DAGD_EIO,
                       "%s: the state file is damaged (PRAGMA quick_check: %s); run `dagctl db check` for the full "
                       "report, then restore a backup (docs/operations.md)",
                       st->path, res ? res : sqlite3_errmsg(st->db));
    if (err) err->cause = rc;
  }
  sqlite3_finalize(s);
  return out;
}

static int store_open(const char *path, int version, bool daemon, dagd_store **out, dagd_err *err) {
  dagd_store *st = dagd_calloc(1, sizeof(*st));
  int rc;
  st->path = dagd_strdup(path);
  st->lock_fd = -1;
  if (daemon && (rc = lock_state(st, err)) < 0) goto error;
  /* Create the file ourselves so its mode is 0600 whatever the umask. */
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = dagd_err_set(err, DAGD_EIO, "%s: cannot open the state file: %s", path, strerror(errno));
    if (err) err->cause = errno;
    goto error;
  }
  close(fd);
  if ((rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL)) != SQLITE_OK) {
    rc = db_fail(st, err, rc, "open");
    goto error;
  }
  sqlite3_extended_result_codes(st->db, 1);
  dagd_store_busy_timeout(st, 5000);
  /* journal_mode reads the header first: a file that is not a database
   * fails here with SQLITE_NOTADB. */
  if ((rc = exec_sql(st, "PRAGMA journal_mode = WAL", NULL)) < 0 ||
      (rc = exec_sql(st, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", NULL)) < 0) {
    dagd_err_set(err, rc, "%s: not a usable dagd state file (%s); restore it from a backup or move it away",
                 path, sqlite3_errmsg(st->db));
    goto error;
  }
  if (daemon && (rc = quick_check(st, err)) < 0) goto error;
  if ((rc = migrate(st, version, err)) < 0) goto error;
  if (version > 0) { /* an old schema, for migration tests: no queries */
    *out = st;
    return 0;
  }
  for (int i = 0; i < Q__COUNT; i++) {
    if (sqlite3_prepare_v3(st->db, queries[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL) != SQLITE_OK) {
      rc = db_fail(st, err, sqlite3_errcode(st->db), "preparing a query");
      goto error;
    }
  }
  *out = st;
  return 0;
error:
  dagd_store_close(st);
  return rc;
}

void dagd_store_close(dagd_store *st) {
  if (st == NULL) return;
  for (int i = 0; i < Q__COUNT; i++) sqlite3_finalize(st->stmt[i]);
  sqlite3_close(st->db);
  if (st->lock_fd >= 0) close(st->lock_fd); /* last: the database is closed */
  free(st->path);
  free(st);
}

void dagd_store_busy_timeout(dagd_store *st, int ms) {
  st->busy_ms = ms;
  sqlite3_busy_timeout(st->db, ms);
}

bool dagd_store_locked(dagd_store *st) {
  if (!sqlite3_get_autocommit(st->db)) return false; /* our own transaction */
  sqlite3_busy_timeout(st->db, 0);
  /* Taking the write lock and giving it back at once writes nothing. */
  int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc == SQLITE_OK) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_busy_timeout(st->db, st->busy_ms);
  return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

int dagd_store_check(dagd_store *st, dagd_err *err) {
  sqlite3_stmt *s;
  int rc = sqlite3_prepare_v2(st->db, "PRAGMA integrity_check", -1, &s, NULL);
  if (rc != SQLITE_OK) return db_fail(st, err, rc, "integrity_check");
  rc = sqlite3_step(s);
  const char *res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
  int out = 0;
  if (res == NULL) out = db_fail(st, err, rc, "integrity_check");
  else if (strcmp(res, "ok") != 0) out = dagd_err_set(err, DAGD_EIO, "%s: integrity check: %s", st->path, res);
  sqlite3_finalize(s);
  return out;
}

/* The turn's transaction ended under us (SQLite rolls the whole of it
 * back on some errors, SQLITE_FULL among them): its earlier parts are lost. */
static void group_check(dagd_store *st) {
  if (st->group_open && sqlite3_get_autocommit(st->db)) {
    st->group_open = st->group_part = false;
    st->group_lost = true;
  }
}

int dagd_store_begin(dagd_store *st, dagd_err *err) {
  if (!st->grouped) return exec_sql(st, "BEGIN IMMEDIATE", err);
  group_check(st);
  if (st->group_part) return dagd_err_set(err, DAGD_EINVAL, "%s: a transaction is already open", st->path);
  int rc;
  if (!st->group_open) {
    if ((rc = exec_sql(st, "BEGIN IMMEDIATE", err)) < 0) return rc;
    st->group_open = true;
  }
  if ((rc = exec_sql(st, "SAVEPOINT part", err)) < 0) return rc;
  st->group_part = true;
  return 0;
}

int dagd_store_commit(dagd_store *st, dagd_err *err) {
  if (!st->grouped) {
    int rc = exec_sql(st, "COMMIT", err);
    if (rc < 0) dagd_store_rollback(st);
    return rc;
  }
  group_check(st);
  if (!st->group_part) {
    if (st->group_lost) return dagd_err_set(err, DAGD_EIO, "%s: the transaction was rolled back", st->path);
    return dagd_err_set(err, DAGD_EINVAL, "%s: no transaction is open", st->path);
  }
  int rc = exec_sql(st, "RELEASE part", err);
  if (rc < 0) dagd_store_rollback(st);
  else st->group_part = false;
  return rc;
}

void dagd_store_rollback(dagd_store *st) {
  if (!st->grouped) {
    if (!sqlite3_get_autocommit(st->db)) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return;
  }
  group_check(st);
  if (!st->group_part) return;
  /* Only this part: what the turn's other parts wrote stays. */
  sqlite3_exec(st->db, "ROLLBACK TO part", NULL, NULL, NULL);
  sqlite3_exec(st->db, "RELEASE part", NULL, NULL, NULL);
  st->group_part = false;
  group_check(st);
}

/* Syncs the write-ahead log, as synchronous = FULL does at every commit:
 * what was committed is on disk when this returns. */
static int wal_sync(dagd_store *st, dagd_err *err) {
  sqlite3_file *f = NULL;
  int rc = sqlite3_file_control(st->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f);
  /* No log open: not in WAL mode, where NORMAL syncs at every commit. */
  if (rc != SQLITE_OK || f == NULL || f->pMethods == NULL) return 0;
  if ((rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL)) != SQLITE_OK) return db_fail(st, err, rc, "sync");
  return 0;
}

void dagd_store_group(dagd_store *st, bool on) { st->grouped = on; }

bool dagd_store_group_pending(const dagd_store *st) { return st->group_open || st->group_lost; }

int dagd_store_flush(dagd_store *st, dagd_err *err) {
  bool sync = st->group_sync;
  st->group_sync = false;
  group_check(st);
  if (st->group_lost) {
    st->group_lost = false;
    return dagd_err_set(err, DAGD_EIO, "%s: the turn's transaction was rolled back", st->path);
  }
  if (!st->group_open) return 0;
  if (st->group_part) dagd_store_rollback(st); /* a part never ended: not kept */
  st->group_open = false;
  int rc = exec_sql(st, "COMMIT", err);
  if (rc < 0) {
    if (!sqlite3_get_autocommit(st->db)) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
  }
  return sync ? wal_sync(st, err) : 0;
}

/* --- DAGs --- */

void dagd_store_dag_clear(dagd_store_dag *d) {
  free(d->dag_id);
  free(d->fileloc);
  memset(d, 0, sizeof(*d));
}

int dagd_store_dag_upsert(dagd_store *st, const char *dag_id, const char *fileloc, bool paused_on_create,
                          dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_DAG_UPSERT);
  bind_text(s, 1, dag_id);
  bind_text(s, 2, fileloc ? fileloc : "");
  sqlite3_bind_int(s, 3, paused_on_create);
  return step_done(st, s, "recording a DAG", err);
}

int dagd_store_dag_get(dagd_store *st, const char *dag_id, dagd_store_dag *out, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_DAG_GET);
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
  if (rc == SQLITE_DONE) return dagd_err_set(err, DAGD_ENOENT, "no DAG \"%s\"", dag_id);
  return db_fail(st, err, rc, "reading a DAG");
}

static int changed_one(dagd_store *st, const char *what, const char *id, dagd_err *err) {
  return sqlite3_changes(st->db) == 1 ? 0 : dagd_err_set(err, DAGD_ENOENT, "%s: no \"%s\"", what, id);
}

int dagd_store_dag_set_paused(dagd_store *st, const char *dag_id, bool paused, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_DAG_PAUSE);
  bind_text(s, 1, dag_id);
  sqlite3_bind_int(s, 2, paused);
  int rc = step_done(st, s, "pausing a DAG", err);
  return rc < 0 ? rc : changed_one(st, "pause", dag_id, err);
}

int dagd_store_dag_set_next_run(dagd_store *st, const char *dag_id, bool has_next, int64_t next_run_after,
                                dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_DAG_NEXT);
  bind_text(s, 1, dag_id);
  if (has_next) sqlite3_bind_int64(s, 2, next_run_after);
  int rc = step_done(st, s, "recording a DAG's next run", err);
  return rc < 0 ? rc : changed_one(st, "next run", dag_id, err);
}

/* --- runs --- */

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

/* Steps a query for at most one run: 0 with *out, DAGD_ENOENT without a
 * message (absence is an answer), or the store's error. */
static int maybe_one_run(dagd_store *st, sqlite3_stmt *s, dagd_store_run *out, dagd_err *err) {
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) read_run(s, out);
  sqlite3_reset(s);
  if (rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_DONE) return DAGD_ENOENT;
  return db_fail(st, err, rc, "reading a run");
}

int dagd_store_run_insert(dagd_store *st, dagd_store_run *run, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_RUN_INSERT);
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
  return db_fail(st, err, rc, "inserting a run");
}

static int get_one_run(dagd_store *st, sqlite3_stmt *s, dagd_store_run *out, const char *what, dagd_err *err) {
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) read_run(s, out);
  sqlite3_reset(s);
  if (rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_DONE) return dagd_err_set(err, DAGD_ENOENT, "no run %s", what);
  return db_fail(st, err, rc, "reading a run");
}

int dagd_store_run_get(dagd_store *st, const char *dag_id, const char *run_id, dagd_store_run *out,
                       dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_RUN_GET);
  bind_text(s, 1, dag_id);
  bind_text(s, 2, run_id);
  char what[600];
  snprintf(what, sizeof(what), "\"%s\" in DAG \"%s\"", run_id, dag_id);
  return get_one_run(st, s, out, what, err);
}

int dagd_store_run_get_pk(dagd_store *st, int64_t pk, dagd_store_run *out, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_RUN_GET_PK);
  sqlite3_bind_int64(s, 1, pk);
  char what[64];
  snprintf(what, sizeof(what), "#%lld", (long long)pk);
  return get_one_run(st, s, out, what, err);
}

int dagd_store_run_set_state(dagd_store *st, int64_t pk, dagd_run_state state, double start_date,
                             double end_date, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_RUN_STATE);
  sqlite3_bind_int64(s, 1, pk);
  bind_text(s, 2, dagd_run_state_name(state));
  bind_time(s, 3, start_date);
  bind_time(s, 4, end_date);
  int rc = step_done(st, s, "updating a run", err);
  char id[32];
  snprintf(id, sizeof(id), "#%lld", (long long)pk);
  return rc < 0 ? rc : changed_one(st, "run", id, err);
}

void dagd_store_run_list_clear(dagd_store_run_list *l) {
  for (size_t i = 0; i < l->n; i++) dagd_store_run_clear(&l->runs[i]);
  free(l->runs);
  memset(l, 0, sizeof(*l));
}

static int collect_runs(dagd_store *st, sqlite3_stmt *s, dagd_store_run_list *out, dagd_err *err) {
  size_t cap = 0;
  int rc;
  memset(out, 0, sizeof(*out));
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (out->n == cap) {
      cap = cap ? cap * 2 : 16;
      out->runs = dagd_realloc(out->runs, cap * sizeof(*out->runs));
    }
    read_run(s, &out->runs[out->n++]);
  }
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) {
    dagd_store_run_list_clear(out);
    return db_fail(st, err, rc, "listing runs");
  }
  out->total = (int64_t)out->n;
  return 0;
}

static int count_query(dagd_store *st, sqlite3_stmt *s, int64_t *out, dagd_err *err) {
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) *out = sqlite3_column_int64(s, 0);
  sqlite3_reset(s);
  return rc == SQLITE_ROW ? 0 : db_fail(st, err, rc, "counting runs");
}

int dagd_store_run_list_dag(dagd_store *st, const char *dag_id, int state_filter, int64_t limit, int64_t offset,
                            dagd_store_run_list *out, dagd_err *err) {
  bool filtered = state_filter >= 0;
  sqlite3_stmt *s = q(st, filtered ? Q_RUN_LIST_DAG_STATE : Q_RUN_LIST_DAG);
  bind_text(s, 1, dag_id);
  sqlite3_bind_int64(s, 2, limit > 0 ? limit : 100);
  sqlite3_bind_int64(s, 3, offset > 0 ? offset : 0);
  if (filtered) bind_text(s, 4, dagd_run_state_name((dagd_run_state)state_filter));
  int rc = collect_runs(st, s, out, err);
  if (rc < 0) return rc;
  sqlite3_stmt *c = q(st, filtered ? Q_RUN_COUNT_DAG_STATE : Q_RUN_COUNT_DAG);
  bind_text(c, 1, dag_id);
  if (filtered) bind_text(c, 2, dagd_run_state_name((dagd_run_state)state_filter));
  if ((rc = count_query(st, c, &out->total, err)) < 0) dagd_store_run_list_clear(out);
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
    return db_fail(st, err, rc, "preparing a run list");
  }
  bind_text(s, 1, f->dag_id);
  sqlite3_bind_int64(s, 2, f->limit > 0 ? f->limit : 100);
  sqlite3_bind_int64(s, 3, f->offset > 0 ? f->offset : 0);
  bind_text(c, 1, f->dag_id);
  rc = collect_runs(st, s, out, err);
  if (rc == 0 && (rc = count_query(st, c, &out->total, err)) < 0) dagd_store_run_list_clear(out);
  sqlite3_finalize(s);
  sqlite3_finalize(c);
  return rc;
}

int dagd_store_run_list_active(dagd_store *st, dagd_store_run_list *out, dagd_err *err) {
  return collect_runs(st, q(st, Q_RUN_ACTIVE), out, err);
}

int dagd_store_run_count(dagd_store *st, const char *dag_id, dagd_run_state state, int64_t *out, dagd_err *err) {
  sqlite3_stmt *c = q(st, Q_RUN_COUNT_DAG_STATE);
  bind_text(c, 1, dag_id);
  bind_text(c, 2, dagd_run_state_name(state));
  return count_query(st, c, out, err);
}

int dagd_store_run_last_scheduled(dagd_store *st, const char *dag_id, int64_t *logical_date, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_RUN_LAST_SCHED);
  bind_text(s, 1, dag_id);
  int rc = sqlite3_step(s);
  bool found = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
  if (found) *logical_date = sqlite3_column_int64(s, 0);
  sqlite3_reset(s);
  if (rc != SQLITE_ROW) return db_fail(st, err, rc, "reading the last scheduled run");
  return found ? 0 : DAGD_ENOENT;
}

int dagd_store_run_date_taken(dagd_store *st, const char *dag_id, int64_t logical_date, bool *taken,
                              dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_RUN_DATE_TAKEN);
  bind_text(s, 1, dag_id);
  sqlite3_bind_int64(s, 2, logical_date);
  int rc = sqlite3_step(s);
  *taken = rc == SQLITE_ROW;
  sqlite3_reset(s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_fail(st, err, rc, "looking for a run by date");
  return 0;
}

/* --- task instances --- */

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

int dagd_store_ti_insert(dagd_store *st, const dagd_store_ti *ti, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_TI_INSERT);
  bind_ti(s, ti);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc == SQLITE_DONE) return 0;
  if ((rc & 0xff) == SQLITE_CONSTRAINT)
    return dagd_err_set(err, DAGD_EEXIST, "task instance \"%s\" of run #%lld exists", ti->task_id,
                        (long long)ti->run_pk);
  return db_fail(st, err, rc, "inserting a task instance");
}

int dagd_store_ti_update(dagd_store *st, const dagd_store_ti *ti, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_TI_UPDATE);
  bind_ti(s, ti);
  int rc = step_done(st, s, "updating a task instance", err);
  return rc < 0 ? rc : changed_one(st, "task instance", ti->task_id, err);
}

int dagd_store_ti_get(dagd_store *st, int64_t run_pk, const char *task_id, dagd_store_ti *out, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_TI_GET);
  sqlite3_bind_int64(s, 1, run_pk);
  bind_text(s, 2, task_id);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) read_ti(s, out);
  sqlite3_reset(s);
  if (rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_DONE)
    return dagd_err_set(err, DAGD_ENOENT, "no task instance \"%s\" in run #%lld", task_id, (long long)run_pk);
  return db_fail(st, err, rc, "reading a task instance");
}

void dagd_store_ti_list_clear(dagd_store_ti_list *l) {
  for (size_t i = 0; i < l->n; i++) dagd_store_ti_clear(&l->tis[i]);
  free(l->tis);
  memset(l, 0, sizeof(*l));
}

static int collect_tis(dagd_store *st, sqlite3_stmt *s, dagd_store_ti_list *out, dagd_err *err) {
  size_t cap = 0;
  int rc;
  memset(out, 0, sizeof(*out));
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (out->n == cap) {
      cap = cap ? cap * 2 : 16;
      out->tis = dagd_realloc(out->tis, cap * sizeof(*out->tis));
    }
    read_ti(s, &out->tis[out->n++]);
  }
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) {
    dagd_store_ti_list_clear(out);
    return db_fail(st, err, rc, "listing task instances");
  }
  return 0;
}

int dagd_store_ti_list_run(dagd_store *st, int64_t run_pk, dagd_store_ti_list *out, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_TI_LIST_RUN);
  sqlite3_bind_int64(s, 1, run_pk);
  return collect_tis(st, s, out, err);
}

int dagd_store_ti_list_live(dagd_store *st, dagd_store_ti_list *out, dagd_err *err) {
  return collect_tis(st, q(st, Q_TI_LIVE), out, err);
}

/* --- outputs --- */

int dagd_store_output_clear(dagd_store *st, int64_t run_pk, const char *task_id, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_OUT_CLEAR);
  sqlite3_bind_int64(s, 1, run_pk);
  bind_text(s, 2, task_id);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? 0 : db_fail(st, err, rc, "clearing a task's outputs");
}

int dagd_store_output_put(dagd_store *st, int64_t run_pk, const char *task_id, const char *key, const char *value,
                          dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_OUT_PUT);
  sqlite3_bind_int64(s, 1, run_pk);
  bind_text(s, 2, task_id);
  bind_text(s, 3, key);
  bind_text(s, 4, value);
  return step_done(st, s, "storing an output", err);
}

int dagd_store_output_get(dagd_store *st, int64_t run_pk, const char *task_id, const char *key, char **value,
                          dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_OUT_GET);
  sqlite3_bind_int64(s, 1, run_pk);
  bind_text(s, 2, task_id);
  bind_text(s, 3, key);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) *value = col_text(s, 0);
  sqlite3_reset(s);
  if (rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_DONE) return dagd_err_set(err, DAGD_ENOENT, "no output %s.%s", task_id, key);
  return db_fail(st, err, rc, "reading an output");
}

int dagd_store_output_json(dagd_store *st, int64_t run_pk, char **json, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_OUT_RUN);
  sqlite3_bind_int64(s, 1, run_pk);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    *json = col_text(s, 0);
    if (*json == NULL) *json = dagd_strdup("{}");
  }
  sqlite3_reset(s);
  return rc == SQLITE_ROW ? 0 : db_fail(st, err, rc, "reading outputs");
}

/* --- runs with their task instances --- */

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

int dagd_store_run_by_date(dagd_store *st, const char *dag_id, int64_t logical_date, dagd_store_run *out,
                           dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_RUN_BY_DATE);
  bind_text(s, 1, dag_id);
  sqlite3_bind_int64(s, 2, logical_date);
  return maybe_one_run(st, s, out, err);
}

int dagd_store_begin_durable(dagd_store *st, dagd_err *err) { return dagd_store_begin(st, err); }

int dagd_store_commit_durable(dagd_store *st, dagd_err *err) {
  int rc = dagd_store_commit(st, err);
  if (rc < 0) return rc;
  if (st->grouped) {
    st->group_sync = true;
    return 0;
  }
  return wal_sync(st, err);
}

/* --- events --- */

void dagd_store_event_clear(dagd_store_event *e) {
  free(e->source);
  free(e->name);
  free(e->external_id);
  free(e->payload);
  free(e->outcome);
  free(e->detail);
  memset(e, 0, sizeof(*e));
}

int dagd_store_event_insert(dagd_store *st, dagd_store_event *e, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_EVENT_INSERT);
  bind_text(s, 1, e->source);
  bind_text(s, 2, e->name);
  bind_text(s, 3, e->external_id);
  bind_text(s, 4, e->payload ? e->payload : "{}");
  sqlite3_bind_double(s, 5, e->received_at);
  bind_text(s, 6, e->outcome ? e->outcome : "accepted");
  sqlite3_bind_int(s, 7, e->runs_started);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc == SQLITE_DONE) {
    e->id = sqlite3_last_insert_rowid(st->db);
    return 0;
  }
  if ((rc & 0xff) == SQLITE_CONSTRAINT)
    return dagd_err_set(err, DAGD_EEXIST, "event %s/%s was already received", e->source,
                        e->external_id ? e->external_id : "");
  return db_fail(st, err, rc, "recording an event");
}

int dagd_store_event_find(dagd_store *st, const char *source, const char *external_id, int64_t *id,
                          dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_EVENT_FIND);
  bind_text(s, 1, source);
  bind_text(s, 2, external_id);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) *id = sqlite3_column_int64(s, 0);
  sqlite3_reset(s);
  if (rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_DONE) return DAGD_ENOENT;
  return db_fail(st, err, rc, "reading events");
}

int dagd_store_event_set_outcome(dagd_store *st, int64_t id, const char *outcome, int runs_started,
                                 dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_EVENT_RUNS);
  sqlite3_bind_int64(s, 1, id);
  sqlite3_bind_int(s, 2, runs_started);
  bind_text(s, 3, outcome);
  return step_done(st, s, "updating an event", err);
}

int dagd_store_event_set_detail(dagd_store *st, int64_t id, const char *detail, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_EVENT_DETAIL);
  sqlite3_bind_int64(s, 1, id);
  bind_text(s, 2, detail);
  return step_done(st, s, "updating an event", err);
}

int dagd_store_event_list(dagd_store *st, int64_t limit, int64_t offset, dagd_store_event **out, size_t *n,
                          int64_t *total, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_EVENT_LIST);
  sqlite3_bind_int64(s, 1, limit > 0 ? limit : 100);
  sqlite3_bind_int64(s, 2, offset > 0 ? offset : 0);
  size_t cap = 0;
  int rc;
  *out = NULL;
  *n = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      *out = dagd_realloc(*out, cap * sizeof(**out));
    }
    dagd_store_event *e = &(*out)[(*n)++];
    e->id = sqlite3_column_int64(s, 0);
    e->source = col_text(s, 1);
    e->name = col_text(s, 2);
    e->external_id = col_text(s, 3);
    e->payload = col_text(s, 4);
    e->received_at = sqlite3_column_double(s, 5);
    e->outcome = col_text(s, 6);
    e->runs_started = sqlite3_column_int(s, 7);
    e->detail = col_text(s, 8);
  }
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) return db_fail(st, err, rc, "listing events");
  return count_query(st, q(st, Q_EVENT_COUNT), total, err);
}

int dagd_store_alert_seen(dagd_store *st, const char *fingerprint, const char *starts_at, int64_t event_id,
                          bool *seen_before, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_ALERT_SEEN);
  bind_text(s, 1, fingerprint);
  bind_text(s, 2, starts_at);
  sqlite3_bind_int64(s, 3, event_id);
  int rc = step_done(st, s, "recording an alert", err);
  if (rc == 0) *seen_before = sqlite3_changes(st->db) == 0;
  return rc;
}

int dagd_store_dag_event_run(dagd_store *st, const char *dag_id, double *last, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_DAG_EVENT_RUN_GET);
  bind_text(s, 1, dag_id);
  int rc = sqlite3_step(s);
  *last = rc == SQLITE_ROW ? sqlite3_column_double(s, 0) : 0;
  sqlite3_reset(s);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(st, err, rc, "reading a DAG");
}

int dagd_store_dag_set_event_run(dagd_store *st, const char *dag_id, double at, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_DAG_EVENT_RUN_SET);
  bind_text(s, 1, dag_id);
  sqlite3_bind_double(s, 2, at);
  return step_done(st, s, "updating a DAG", err);
}

/* --- backfills --- */

int dagd_store_backfill_insert(dagd_store *st, dagd_store_backfill *b, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_BACKFILL_INSERT);
  bind_text(s, 1, b->dag_id);
  sqlite3_bind_int64(s, 2, b->from_date);
  sqlite3_bind_int64(s, 3, b->to_date);
  bind_text(s, 4, b->options ? b->options : "{}");
  sqlite3_bind_double(s, 5, b->created_at);
  sqlite3_bind_int64(s, 6, b->total);
  int rc = step_done(st, s, "recording a backfill", err);
  if (rc == 0) b->id = sqlite3_last_insert_rowid(st->db);
  return rc;
}

void dagd_store_backfill_clear(dagd_store_backfill *b) {
  free(b->dag_id);
  free(b->options);
  memset(b, 0, sizeof(*b));
}

int dagd_store_backfill_get(dagd_store *st, int64_t id, dagd_store_backfill *out, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_BACKFILL_GET);
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
  if (rc == SQLITE_DONE) return dagd_err_set(err, DAGD_ENOENT, "no backfill %lld", (long long)id);
  if (rc != SQLITE_ROW) return db_fail(st, err, rc, "reading a backfill");
  s = q(st, Q_BACKFILL_COUNTS);
  sqlite3_bind_int64(s, 1, id);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    dagd_run_state state;
    const char *name = (const char *)sqlite3_column_text(s, 0);
    if (name && dagd_run_state_parse(name, &state) == 0) out->by_state[state] = sqlite3_column_int64(s, 1);
  }
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? 0 : db_fail(st, err, rc, "counting a backfill's runs");
}

int dagd_store_run_latest(dagd_store *st, const char *dag_id, dagd_store_run *out, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_RUN_LATEST);
  bind_text(s, 1, dag_id);
  return maybe_one_run(st, s, out, err);
}

int dagd_store_run_set_backfill(dagd_store *st, int64_t pk, int64_t backfill_id, double queued_at, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_RUN_BACKFILL);
  sqlite3_bind_int64(s, 1, pk);
  sqlite3_bind_int64(s, 2, backfill_id);
  bind_time(s, 3, queued_at);
  return step_done(st, s, "updating a run", err);
}

int dagd_store_run_last_success(dagd_store *st, const char *dag_id, int64_t exclude_pk, dagd_store_run *out,
                                dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_RUN_LAST_SUCCESS);
  bind_text(s, 1, dag_id);
  sqlite3_bind_int64(s, 2, exclude_pk);
  return maybe_one_run(st, s, out, err);
}

int dagd_store_baseline_put(dagd_store *st, const char *dag_id, const char *task_id, const char *run_id,
                            const char *vals, double at, dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_BASELINE_PUT);
  bind_text(s, 1, dag_id);
  bind_text(s, 2, task_id);
  bind_text(s, 3, run_id);
  bind_text(s, 4, vals);
  sqlite3_bind_double(s, 5, at);
  return step_done(st, s, "recording a baseline", err);
}

int dagd_store_baseline_get(dagd_store *st, const char *dag_id, const char *task_id, char **run_id, char **vals,
                            dagd_err *err) {
  sqlite3_stmt *s = q(st, Q_BASELINE_GET);
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
  return db_fail(st, err, rc, "reading a baseline");
}

/* --- maintenance --- */

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
  if (rc != SQLITE_OK) return db_fail(st, err, rc, "listing old runs");
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
    return db_fail(st, err, rc, "listing old runs");
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
      out = db_fail(st, err, sqlite3_errcode(st->db), "pruning runs");
      dagd_store_rollback(st);
      break;
    }
    for (size_t j = i; j < n && j < i + 500 && out == 0; j++) {
      sqlite3_bind_int64(s, 1, pks[j]);
      if ((rc = sqlite3_step(s)) != SQLITE_DONE) out = db_fail(st, err, rc, "pruning runs");
      sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    if (out == 0) out = dagd_store_commit(st, err);
    else dagd_store_rollback(st);
  }
  free(pks);
  return out;
}
