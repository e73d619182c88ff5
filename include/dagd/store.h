/* The state store: SQLite in WAL mode with a versioned schema (PRAGMA
 * user_version) and typed queries for DAGs, runs, task instances, outputs
 * and events. Each pass is one transaction (dagd_store_begin /
 * dagd_store_commit), and the daemon groups a loop turn's transactions
 * into one commit (dagd_store_group). What the loop reads
 * goes through partial indexes on unfinished rows, so its cost does not
 * grow with history.
 * Instants are seconds since the epoch: logical dates and data intervals
 * as integers, start/end/queued times as doubles (sub-second durations).
 * Not thread-safe: one store per thread.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_STORE_H
#define DAGD_STORE_H

#if defined(DAGD_LAYER_PURE) || defined(DAGD_LAYER_LUA)
#error "dagd/store.h is above this layer (see the layers in CMakeLists.txt)"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dagd/model.h"

struct dagd_err;
typedef struct dagd_store dagd_store;

/* The schema version this build writes. */
#define DAGD_STORE_SCHEMA_VERSION 6

/* The run and task instance states and the run types are the model's
 * (model.h); the store keeps them by name. */


/* Opens (creating if needed) the database at path, sets WAL mode,
 * synchronous=NORMAL and a busy timeout, and migrates the schema. A file
 * that is not a dagd database, is corrupt, or has a schema newer than this
 * build is refused with a clear message (DAGD_EIO / DAGD_ERANGE). The file
 * is created with mode 0600. */
int dagd_store_open(const char *path, dagd_store **out, struct dagd_err *err);
/* Opens an existing state file read-only, for a reader beside the daemon
 * (a sensor's try): no migration, no write; its queries answer from what
 * is committed. DAGD_EIO when the file cannot be opened or read. */
int dagd_store_open_readonly(const char *path, dagd_store **out, struct dagd_err *err);
/* dagd_store_open for the daemon, which owns the state for its life:
 * first takes an exclusive lock on "<path>.lock" (its pid written in it;
 * released when the store is closed or the process dies), then refuses a
 * file that fails PRAGMA quick_check, before migrating. Another daemon
 * holding the lock gives DAGD_EEXIST naming its pid; a damaged file gives
 * DAGD_EIO naming the file and `dagctl db check`. Either way nothing was
 * written. Offline readers (dagctl db check, backup, prune) do not take
 * the lock. */
int dagd_store_open_daemon(const char *path, dagd_store **out, struct dagd_err *err);
void dagd_store_close(dagd_store *st);
/* How long a statement waits for another process's write lock before it
 * fails with DAGD_ETIMEDOUT (busy). Open sets 5 s, which suits the
 * command-line tools; the daemon sets a few milliseconds once it is open,
 * because its store is used on the event loop and a wait there stops the
 * API (a busy pass is retried from a timer instead). */
void dagd_store_busy_timeout(dagd_store *st, int ms);
/* Whether another process holds the database's write lock now, found
 * without waiting (the lock is tried and given back at once; nothing is
 * written). For /health. False inside one of st's own transactions. */
bool dagd_store_is_locked(dagd_store *st);
/* Opens with the schema migrated only up to `version`, for tests of the
 * migrations: such a store answers no queries; close it and open it
 * normally to migrate the rest. */
int dagd_store_open_version(const char *path, int version, dagd_store **out, struct dagd_err *err);
/* PRAGMA integrity_check: 0 when "ok", DAGD_EIO with the first problem. */
int dagd_store_check(dagd_store *st, struct dagd_err *err);

/* Every getter answers an absent row with DAGD_ENOENT and leaves err
 * untouched: absence is an answer, and the caller says what was missing
 * in its own words. err is set only for a failure of the store. */

int dagd_store_begin(dagd_store *st, struct dagd_err *err);
int dagd_store_commit(dagd_store *st, struct dagd_err *err);
void dagd_store_rollback(dagd_store *st);

/* Group commit, for the daemon's loop. Grouped, a transaction (begin ..
 * commit or rollback) is a part of one transaction that stays open until
 * dagd_store_flush commits it, and syncs it when a durable part joined:
 * one commit and at most one sync per loop turn, however many clients
 * were answered in it. A part's rollback undoes that part only. What was
 * committed in a part is not yet committed to other processes, nor to a
 * crash: nothing that depends on it may leave the process (a reply, a
 * started try) before the flush. */
void dagd_store_group(dagd_store *st, bool on);
/* Something waits for dagd_store_flush. */
bool dagd_store_group_is_pending(const dagd_store *st);
/* Commits the turn's transaction; 0 also when none is open. On failure
 * nothing of the turn is kept (DAGD_EIO when SQLite had already rolled it
 * back). */
int dagd_store_flush(dagd_store *st, struct dagd_err *err);

/* --- DAGs --- */
typedef struct dagd_store_dag {
  char *dag_id;
  char *fileloc;
  bool is_paused;
  bool has_next_run;
  int64_t next_run_after;  /* when has_next_run */
} dagd_store_dag;

void dagd_store_dag_clear(dagd_store_dag *d);
/* Records a loaded DAG (fileloc). A new DAG starts paused when
 * paused_on_create; an existing one keeps its paused flag. */
int dagd_store_dag_upsert(dagd_store *st, const char *dag_id, const char *fileloc, bool paused_on_create,
                          struct dagd_err *err);
/* The ids of the paused DAGs (free each and the array). */
int dagd_store_dag_list_paused(dagd_store *st, char ***ids, size_t *n, struct dagd_err *err);
/* DAGD_ENOENT when unknown. Fills *out (release with dagd_store_dag_clear). */
int dagd_store_dag_get(dagd_store *st, const char *dag_id, dagd_store_dag *out, struct dagd_err *err);
int dagd_store_dag_set_paused(dagd_store *st, const char *dag_id, bool paused, struct dagd_err *err);
/* has_next false stores NULL. */
int dagd_store_dag_set_next_run(dagd_store *st, const char *dag_id, bool has_next, int64_t next_run_after,
                                struct dagd_err *err);

/* --- runs --- */
typedef struct dagd_store_run {
  int64_t pk;                 /* row id, set by insert */
  char *dag_id;
  char *run_id;
  dagd_run_type run_type;
  int64_t logical_date;
  bool has_interval;
  int64_t interval_start, interval_end;
  char *conf;                 /* JSON text, "{}" by default */
  dagd_run_state state;
  double queued_at, start_date, end_date;  /* 0 = unset */
  int64_t backfill_id;        /* 0 = none */
  int64_t event_id;           /* 0 = none */
} dagd_store_run;

void dagd_store_run_clear(dagd_store_run *r);
/* Inserts run (pk is set). DAGD_EEXIST when (dag_id, run_id) exists, or a
 * scheduled run for the same (dag_id, logical_date) exists. */
int dagd_store_run_insert(dagd_store *st, dagd_store_run *run, struct dagd_err *err);
int dagd_store_run_get(dagd_store *st, const char *dag_id, const char *run_id, dagd_store_run *out,
                       struct dagd_err *err);
int dagd_store_run_get_pk(dagd_store *st, int64_t pk, dagd_store_run *out, struct dagd_err *err);
int dagd_store_run_set_state(dagd_store *st, int64_t pk, dagd_run_state state, double start_date,
                             double end_date, struct dagd_err *err);

typedef struct dagd_store_run_list {
  dagd_store_run *runs;
  size_t n;
  int64_t total;              /* matching rows ignoring limit/offset */
} dagd_store_run_list;

void dagd_store_run_list_clear(dagd_store_run_list *l);
/* Runs of a DAG, newest logical date first. state_filter < 0 means any.
 * limit 0 means 100. */
int dagd_store_run_list_dag(dagd_store *st, const char *dag_id, int state_filter, int64_t limit, int64_t offset,
                            dagd_store_run_list *out, struct dagd_err *err);
/* What a run list may be ordered by (ties: the row id, same direction). */
typedef enum {
  DAGD_RUN_ORDER_LOGICAL_DATE,
  DAGD_RUN_ORDER_ID,           /* creation order */
  DAGD_RUN_ORDER_RUN_ID,
  DAGD_RUN_ORDER_DAG_ID,
  DAGD_RUN_ORDER_STATE,
  DAGD_RUN_ORDER_START_DATE,
  DAGD_RUN_ORDER_END_DATE,
  DAGD_RUN_ORDER_QUEUED_AT,
  DAGD_RUN_ORDER_CONF,
  DAGD_RUN_ORDER_RUN_TYPE,
  DAGD_RUN_ORDER_EXTERNAL_TRIGGER,  /* manual and event runs after the others */
  DAGD_RUN_ORDER_DURATION,
  DAGD_RUN_ORDER__COUNT
} dagd_run_order;

typedef struct dagd_store_run_filter {
  const char *dag_id;
  unsigned states;             /* bit 1 << state for each state wanted; 0: any */
  dagd_run_order order;
  bool descending;
  int64_t limit;               /* 0: 100 */
  int64_t offset;
} dagd_store_run_filter;

/* A DAG's runs matching f, in f's order; out->total counts every match. */
int dagd_store_run_query(dagd_store *st, const dagd_store_run_filter *f, dagd_store_run_list *out,
                         struct dagd_err *err);
/* Every queued or running run, in the order they were queued (the loop's
 * working set; served by a partial index). */
int dagd_store_run_list_active(dagd_store *st, dagd_store_run_list *out, struct dagd_err *err);
/* Counts a DAG's runs in state (for max_active_runs). */
int dagd_store_run_count(dagd_store *st, const char *dag_id, dagd_run_state state, int64_t *out,
                         struct dagd_err *err);
/* The latest scheduled run's logical date of a DAG: DAGD_ENOENT if none. */
int dagd_store_run_get_last_scheduled(dagd_store *st, const char *dag_id, int64_t *logical_date,
                                      struct dagd_err *err);

/* Whether a scheduled or backfill run of the DAG has this logical date
 * (those are one per date; manual and event runs may share one). */
int dagd_store_run_is_date_taken(dagd_store *st, const char *dag_id, int64_t logical_date, bool *taken,
                                 struct dagd_err *err);

/* --- task instances --- */
typedef struct dagd_store_ti {
  int64_t run_pk;
  char *task_id;
  dagd_ti_state state;
  int try_number;             /* tries started so far */
  int max_tries;
  int64_t pid;                /* 0 = none */
  double start_date, end_date;
  bool has_exit_code;
  int exit_code;
  double next_try_at;         /* up_for_retry / up_for_reschedule: when; 0 = unset */
  char *pool;
  int64_t priority_weight;
} dagd_store_ti;

void dagd_store_ti_clear(dagd_store_ti *ti);
int dagd_store_ti_insert(dagd_store *st, const dagd_store_ti *ti, struct dagd_err *err);
/* Writes every mutable column of ti (found by run_pk, task_id). */
int dagd_store_ti_update(dagd_store *st, const dagd_store_ti *ti, struct dagd_err *err);
int dagd_store_ti_get(dagd_store *st, int64_t run_pk, const char *task_id, dagd_store_ti *out,
                      struct dagd_err *err);

typedef struct dagd_store_ti_list {
  dagd_store_ti *tis;
  size_t n;
} dagd_store_ti_list;

void dagd_store_ti_list_clear(dagd_store_ti_list *l);
/* Task instances of one run, in task_id order. */
int dagd_store_ti_list_run(dagd_store *st, int64_t run_pk, dagd_store_ti_list *out, struct dagd_err *err);
/* Task instances in queued or running state across all runs (what the
 * executor must be tracking; served by a partial index). */
int dagd_store_ti_list_live(dagd_store *st, dagd_store_ti_list *out, struct dagd_err *err);

/* --- outputs --- */
int dagd_store_output_put(dagd_store *st, int64_t run_pk, const char *task_id, const char *key,
                          const char *value, struct dagd_err *err);
/* Deletes a task instance's outputs before a new try (keys starting with
 * '_' are dagd's own bookkeeping and stay). */
int dagd_store_output_clear(dagd_store *st, int64_t run_pk, const char *task_id, struct dagd_err *err);
/* *value is a new heap string; DAGD_ENOENT when absent. */
int dagd_store_output_get(dagd_store *st, int64_t run_pk, const char *task_id, const char *key, char **value,
                          struct dagd_err *err);
/* Every output of a run as a JSON object text {"task": {"key": "value"}}. */
int dagd_store_output_get_json(dagd_store *st, int64_t run_pk, char **json, struct dagd_err *err);

/* --- runs with their task instances --- */

struct dagd_dag;
/* Inserts run (pk set) and one task instance in state none per task of
 * dag, in the caller's transaction. DAGD_EEXIST as for run_insert. */
int dagd_store_run_create(dagd_store *st, const struct dagd_dag *dag, dagd_store_run *run, struct dagd_err *err);
/* A run of the DAG with this logical date (a scheduled one first):
 * DAGD_ENOENT when none. */
int dagd_store_run_get_by_date(dagd_store *st, const char *dag_id, int64_t logical_date, dagd_store_run *out,
                               struct dagd_err *err);
/* The run of a DAG at a logical date that a sensor watches: the scheduled
 * one when there is one, else the newest; DAGD_ENOENT when none. */
int dagd_store_run_get_watched(dagd_store *st, const char *dag_id, int64_t logical_date, dagd_store_run *out,
                               struct dagd_err *err);
/* The DAG's run with the latest logical date: DAGD_ENOENT when none. */
int dagd_store_run_get_latest(dagd_store *st, const char *dag_id, dagd_store_run *out, struct dagd_err *err);
/* A transaction whose commit is synced to disk before it returns (the
 * write-ahead log is synced, as synchronous = FULL does): for what is
 * promised to a client (an accepted event, a created run) before
 * answering. Begin with begin_durable, end with commit_durable (or
 * rollback). Grouped, the sync comes with dagd_store_flush. */
int dagd_store_begin_durable(dagd_store *st, struct dagd_err *err);
int dagd_store_commit_durable(dagd_store *st, struct dagd_err *err);

/* --- events --- */
typedef struct dagd_store_event {
  int64_t id;
  char *source;        /* generic | alertmanager | grafana */
  char *name;
  char *external_id;   /* the sender's id, for deduplication; may be NULL */
  char *payload;       /* JSON text */
  double received_at;
  char *outcome;       /* accepted | duplicate | resolved | ignored */
  int runs_started;
  char *detail;        /* the outcome in words, e.g. no DAG listens to "x"; may be NULL */
} dagd_store_event;

void dagd_store_event_clear(dagd_store_event *e);
/* DAGD_EEXIST when an accepted event with the same (source, external_id)
 * exists. Sets e->id. */
int dagd_store_event_insert(dagd_store *st, dagd_store_event *e, struct dagd_err *err);
int dagd_store_event_find(dagd_store *st, const char *source, const char *external_id, int64_t *id,
                          struct dagd_err *err);
int dagd_store_event_set_outcome(dagd_store *st, int64_t id, const char *outcome, int runs_started,
                                 struct dagd_err *err);
/* Sets the outcome's words (NULL clears them). */
int dagd_store_event_set_detail(dagd_store *st, int64_t id, const char *detail, struct dagd_err *err);
/* Newest first. *out is an array of *n events (clear each, free the array). */
int dagd_store_event_list(dagd_store *st, int64_t limit, int64_t offset, dagd_store_event **out, size_t *n,
                          int64_t *total, struct dagd_err *err);
/* Records an alert (fingerprint, startsAt); *seen_before tells whether it
 * was already recorded (a repeat). */
int dagd_store_alert_record(dagd_store *st, const char *fingerprint, const char *starts_at, int64_t event_id,
                            bool *seen_before, struct dagd_err *err);
/* When an event last started a run of the DAG (0: never), for event_cooldown. */
int dagd_store_dag_event_run_get(dagd_store *st, const char *dag_id, double *last, struct dagd_err *err);
int dagd_store_dag_event_run_set(dagd_store *st, const char *dag_id, double at, struct dagd_err *err);

/* The DAG's latest successful run other than exclude_pk: DAGD_ENOENT when none. */
int dagd_store_run_get_last_success(dagd_store *st, const char *dag_id, int64_t exclude_pk, dagd_store_run *out,
                                    struct dagd_err *err);
/* The "deployed" baseline of a gate: the values its model had when its run
 * succeeded (and so was promoted). vals is JSON object text. */
int dagd_store_baseline_put(dagd_store *st, const char *dag_id, const char *task_id, const char *run_id,
                            const char *vals, double at, struct dagd_err *err);
/* DAGD_ENOENT when none yet; *run_id and *vals are heap strings. */
int dagd_store_baseline_get(dagd_store *st, const char *dag_id, const char *task_id, char **run_id, char **vals,
                            struct dagd_err *err);

/* --- backfills --- */
typedef struct dagd_store_backfill {
  int64_t id;
  char *dag_id;
  int64_t from_date, to_date;
  char *options;       /* JSON text of the request's flags */
  double created_at;
  int64_t total;       /* runs it covers */
  int64_t by_state[DAGD_RUN__COUNT];  /* its runs by state (get only) */
} dagd_store_backfill;

/* Puts an existing run into a backfill (its progress) and the run queue. */
int dagd_store_run_set_backfill(dagd_store *st, int64_t pk, int64_t backfill_id, double queued_at,
                                struct dagd_err *err);
int dagd_store_backfill_insert(dagd_store *st, dagd_store_backfill *b, struct dagd_err *err);
int dagd_store_backfill_get(dagd_store *st, int64_t id, dagd_store_backfill *out, struct dagd_err *err);
void dagd_store_backfill_clear(dagd_store_backfill *b);

/* --- maintenance --- */

/* PRAGMA integrity_check on a state file, opened read-only (safe while
 * the daemon runs). result (n bytes) gets the report ("ok" when healthy);
 * returns 0, or DAGD_EIO when the file cannot be read or has problems. */
int dagd_store_check_file(const char *path, char *result, size_t n, struct dagd_err *err);
/* Copies the database to dest (which must not exist; made 0600) through
 * SQLite's online backup API, consistent while the daemon writes. */
int dagd_store_backup(dagd_store *st, const char *dest, struct dagd_err *err);
/* What became of a pruned run's log folder (dagd_store_prune_with_logs). */
typedef enum {
  DAGD_PRUNE_REMOVED,     /* removed */
  DAGD_PRUNE_WOULD,       /* a dry run: would be removed */
  DAGD_PRUNE_INVALID_ID,  /* kept: the run's ids are not valid ones (a run
                           * recorded before ids made only of dots were
                           * refused: "logs/d/.." is not its folder) */
  DAGD_PRUNE_FAILED,      /* kept: the removal failed (err says why) */
} dagd_prune_outcome;
typedef void (*dagd_prune_report_cb)(void *data, const char *dag_id, const char *run_id, const char *dir,
                                     dagd_prune_outcome what, const struct dagd_err *err);
typedef struct dagd_prune_opts {
  const char *logs;   /* the logs folder */
  double before;      /* finished runs that ended before this */
  int64_t limit;      /* at most this many, the oldest first; 0: all */
  bool dry_run;       /* nothing removed, only counted and reported */
  dagd_prune_report_cb report; /* each folder's fate; may be NULL */
  /* Called once the rows are pruned, before any folder goes; false keeps
   * every folder. For a grouped store (dagd_store_group), which commits
   * later: the folders go only once the rows are committed. May be NULL. */
  bool (*commit)(void *data);
  void *data;         /* for report and commit */
} dagd_prune_opts;
/* dagd_store_prune, then the log folder of every run pruned removed from
 * below the logs folder (never a path outside it). *runs gets how many
 * runs were pruned, *kept how many of their folders were kept (invalid
 * ids, failed removals, or a failed commit). */
int dagd_store_prune_with_logs(dagd_store *st, const dagd_prune_opts *o, int64_t *runs, size_t *kept,
                               struct dagd_err *err);
/* Called for each run pruned (or that would be, in a dry run). */
typedef void (*dagd_store_pruned_cb)(void *data, const char *dag_id, const char *run_id);
/* Deletes finished runs that ended before `before` (the oldest first, at
 * most `limit` of them; 0: all), with their task instances and outputs,
 * in short transactions. */
int dagd_store_prune(dagd_store *st, double before, int64_t limit, bool dry_run, dagd_store_pruned_cb cb,
                     void *data, int64_t *n_runs, struct dagd_err *err);

#endif
