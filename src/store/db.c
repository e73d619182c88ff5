/* The state store's database: opening (one daemon per file, a damaged
 * file refused), the schema migrations, the prepared statements (each
 * file's SQL sits beside the functions that run it, in dags.c, runs.c,
 * tis.c, events.c, backfills.c and baselines.c), transactions and their
 * grouping by loop turn, and the durable commit.
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
#include "dagd/model.h"
#include "dagd/store.h"
#include "dagd/util.h"
#include "store/internal.h"

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
    /* 5 -> 6: each pass reads the paused DAGs without a scan. */
    "CREATE INDEX dag_paused ON dag (dag_id) WHERE is_paused = 1;",
};

/* Translates an SQLite failure at the adapter, keeping its code as cause. */
int dagd__store_fail(dagd_store *st, dagd_err *err, int rc, const char *what) {
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

int dagd__store_exec(dagd_store *st, const char *sql, dagd_err *err) {
  int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : dagd__store_fail(st, err, rc, "exec");
}

int dagd__store_step(dagd_store *st, sqlite3_stmt *s, const char *what, dagd_err *err) {
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? 0 : dagd__store_fail(st, err, rc, what);
}

int dagd__store_changed_one(dagd_store *st, const char *what, const char *id, dagd_err *err) {
  return sqlite3_changes(st->db) == 1 ? 0 : dagd_err_set(err, DAGD_ENOENT, "%s: no \"%s\"", what, id);
}

int dagd__store_collect(dagd_store *st, sqlite3_stmt *s, void **items, size_t *n, size_t size,
                        void (*read)(sqlite3_stmt *, void *), const char *what, dagd_err *err) {
  size_t cap = 0;
  int rc;
  *items = NULL;
  *n = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      *items = dagd_realloc(*items, cap * size);
    }
    read(s, (char *)*items + (*n)++ * size);
  }
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? 0 : dagd__store_fail(st, err, rc, what);
}

/* Gets the prepared statement of sql (one of the files' lists, so one
 * address per statement), reset and with no bindings. */
sqlite3_stmt *dagd__store_q(dagd_store *st, const char *sql) {
  size_t h = ((uintptr_t)sql >> 3) & (STORE_STMT_SLOTS - 1);
  for (size_t n = 0; n < STORE_STMT_SLOTS; n++, h = (h + 1) & (STORE_STMT_SLOTS - 1)) {
    if (st->stmt[h].sql == NULL) break;
    if (st->stmt[h].sql == sql) {
      sqlite3_stmt *s = st->stmt[h].s;
      sqlite3_reset(s);
      sqlite3_clear_bindings(s);
      return s;
    }
  }
  return NULL; /* not prepared (a store opened at an old version answers no queries) */
}

/* Prepares every statement of every file, once. */
static int prepare_all(dagd_store *st, dagd_err *err) {
  const char *const *const lists[] = {dagd__store_dags_sql,      dagd__store_runs_sql,      dagd__store_tis_sql,
                                      dagd__store_events_sql,    dagd__store_backfills_sql, dagd__store_baselines_sql};
  for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
    for (const char *const *sql = lists[l]; *sql; sql++) {
      size_t h = ((uintptr_t)*sql >> 3) & (STORE_STMT_SLOTS - 1);
      while (st->stmt[h].sql != NULL) h = (h + 1) & (STORE_STMT_SLOTS - 1);
      if (++st->n_stmt >= STORE_STMT_SLOTS) return dagd_err_set(err, DAGD_EINVAL, "too many statements");
      st->stmt[h].sql = *sql;
      if (sqlite3_prepare_v3(st->db, *sql, -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[h].s, NULL) != SQLITE_OK)
        return dagd__store_fail(st, err, sqlite3_errcode(st->db), "preparing a query");
    }
  }
  return 0;
}

static int migrate(dagd_store *st, int target, dagd_err *err) {
  sqlite3_stmt *s;
  int version = 0, rc;
  if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
    return dagd__store_fail(st, err, sqlite3_errcode(st->db), "reading the schema version");
  if ((rc = sqlite3_step(s)) == SQLITE_ROW) version = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW) return dagd__store_fail(st, err, rc, "reading the schema version");
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
    if ((rc = dagd__store_exec(st, "BEGIN IMMEDIATE", err)) < 0) return rc;
    if ((rc = dagd__store_exec(st, migrations[v], err)) < 0 || (rc = dagd__store_exec(st, pragma, err)) < 0) {
      sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
      return rc;
    }
    if ((rc = dagd__store_exec(st, "COMMIT", err)) < 0) return rc;
  }
  return 0;
}

static int store_open(const char *path, int version, bool daemon, dagd_store **out, dagd_err *err);

int dagd_store_open(const char *path, dagd_store **out, dagd_err *err) {
  return store_open(path, 0, false, out, err);
}

int dagd_store_open_readonly(const char *path, dagd_store **out, dagd_err *err) {
  dagd_store *st = dagd_calloc(1, sizeof(*st));
  st->path = dagd_strdup(path);
  st->lock_fd = -1;
  int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    rc = dagd_err_set(err, DAGD_EIO, "state store %s: %s", path, st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
    if (err) err->cause = rc;
    dagd_store_close(st);
    return rc;
  }
  sqlite3_extended_result_codes(st->db, 1);
  dagd_store_busy_timeout(st, 5000);
  if ((rc = prepare_all(st, err)) < 0) {
    dagd_store_close(st);
    return rc;
  }
  *out = st;
  return 0;
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
    rc = dagd__store_fail(st, err, rc, "open");
    goto error;
  }
  sqlite3_extended_result_codes(st->db, 1);
  dagd_store_busy_timeout(st, 5000);
  /* journal_mode reads the header first: a file that is not a database
   * fails here with SQLITE_NOTADB. */
  if ((rc = dagd__store_exec(st, "PRAGMA journal_mode = WAL", NULL)) < 0 ||
      (rc = dagd__store_exec(st, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", NULL)) < 0) {
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
  if ((rc = prepare_all(st, err)) < 0) goto error;
  *out = st;
  return 0;
error:
  dagd_store_close(st);
  return rc;
}

void dagd_store_close(dagd_store *st) {
  if (st == NULL) return;
  for (size_t i = 0; i < STORE_STMT_SLOTS; i++) sqlite3_finalize(st->stmt[i].s);
  sqlite3_close(st->db);
  if (st->lock_fd >= 0) close(st->lock_fd); /* last: the database is closed */
  free(st->path);
  free(st);
}

void dagd_store_busy_timeout(dagd_store *st, int ms) {
  st->busy_ms = ms;
  sqlite3_busy_timeout(st->db, ms);
}

bool dagd_store_is_locked(dagd_store *st) {
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
  if (rc != SQLITE_OK) return dagd__store_fail(st, err, rc, "integrity_check");
  rc = sqlite3_step(s);
  const char *res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
  int out = 0;
  if (res == NULL) out = dagd__store_fail(st, err, rc, "integrity_check");
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
  if (!st->grouped) return dagd__store_exec(st, "BEGIN IMMEDIATE", err);
  group_check(st);
  if (st->group_part) return dagd_err_set(err, DAGD_EINVAL, "%s: a transaction is already open", st->path);
  int rc;
  if (!st->group_open) {
    if ((rc = dagd__store_exec(st, "BEGIN IMMEDIATE", err)) < 0) return rc;
    st->group_open = true;
  }
  if ((rc = dagd__store_exec(st, "SAVEPOINT part", err)) < 0) return rc;
  st->group_part = true;
  return 0;
}

int dagd_store_commit(dagd_store *st, dagd_err *err) {
  if (!st->grouped) {
    int rc = dagd__store_exec(st, "COMMIT", err);
    if (rc < 0) dagd_store_rollback(st);
    return rc;
  }
  group_check(st);
  if (!st->group_part) {
    if (st->group_lost) return dagd_err_set(err, DAGD_EIO, "%s: the transaction was rolled back", st->path);
    return dagd_err_set(err, DAGD_EINVAL, "%s: no transaction is open", st->path);
  }
  int rc = dagd__store_exec(st, "RELEASE part", err);
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
  if ((rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL)) != SQLITE_OK) return dagd__store_fail(st, err, rc, "sync");
  return 0;
}

void dagd_store_group(dagd_store *st, bool on) { st->grouped = on; }

bool dagd_store_group_is_pending(const dagd_store *st) { return st->group_open || st->group_lost; }

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
  int rc = dagd__store_exec(st, "COMMIT", err);
  if (rc < 0) {
    if (!sqlite3_get_autocommit(st->db)) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
  }
  return sync ? wal_sync(st, err) : 0;
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
