/* The DAG model: plain C structs built by the loader and read by everything
 * above it. A DAG is built with dagd_dag_new / dagd_dag_add_task /
 * dagd_task_add_dep and then checked and frozen by dagd_dag_finalize
 * (unknown dependencies, cycles, topological order, priority weights).
 * After finalize a DAG is immutable: readers may use the struct fields
 * directly but must not change them.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_MODEL_H
#define DAGD_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dagd_err;
struct dagd_cron;
struct dagd_tz;

typedef enum {
  DAGD_OP_SHELL,
  DAGD_OP_DOCKER,
  DAGD_OP_KUBECTL,
  DAGD_OP_REGISTRY,
  DAGD_OP_HTTP,
  DAGD_OP_GATE,
  DAGD_OP_BRANCH,
  DAGD_OP_SENSOR,
  DAGD_OP_LUA,
  DAGD_OP_DEPLOY,
  DAGD_OP_EMPTY,
  DAGD_OP_DATA_CHECK,
  DAGD_OP__COUNT
} dagd_op;

const char *dagd_op_name(dagd_op op);
/* Returns 0 and sets *op, or DAGD_ENOENT for an unknown name. */
int dagd_op_parse(const char *name, dagd_op *op);

/* Airflow's trigger rules. */
typedef enum {
  DAGD_TR_ALL_SUCCESS,
  DAGD_TR_ALL_FAILED,
  DAGD_TR_ALL_DONE,
  DAGD_TR_ALL_SKIPPED,
  DAGD_TR_ONE_SUCCESS,
  DAGD_TR_ONE_FAILED,
  DAGD_TR_ONE_DONE,
  DAGD_TR_NONE_FAILED,
  DAGD_TR_NONE_FAILED_MIN_ONE_SUCCESS,
  DAGD_TR_NONE_SKIPPED,
  DAGD_TR_ALWAYS,
  DAGD_TR__COUNT
} dagd_trigger_rule;

const char *dagd_trigger_rule_name(dagd_trigger_rule tr);
int dagd_trigger_rule_parse(const char *name, dagd_trigger_rule *tr);

typedef struct dagd_kv {
  char *key;
  char *value;
} dagd_kv;

typedef struct dagd_task {
  char *id;
  dagd_op op;
  int line;                       /* where the task is declared in the file */
  int retries;                    /* extra tries after the first */
  int64_t retry_delay;            /* seconds */
  bool retry_exponential_backoff;
  int64_t max_retry_delay;        /* seconds, 0 = no cap */
  int64_t execution_timeout;      /* seconds, 0 = none */
  int64_t sla;                    /* seconds, 0 = none */
  dagd_trigger_rule trigger_rule;
  char *pool;                     /* "default" unless set */
  int priority_weight;            /* the task's own weight (default 1) */
  int64_t weight;                 /* effective: own + all downstream (finalize) */
  dagd_kv *env;
  size_t n_env;
  bool env_clear;
  char *cwd;                      /* NULL: the DAG file's folder */
  char **outputs;                 /* declared output keys */
  size_t n_outputs;
  json_t *on_failure;             /* notify spec, or NULL */
  json_t *on_success;             /* notify spec, or NULL */
  json_t *on_retry;               /* notify spec, or NULL */
  char *doc;                      /* free text, or NULL */
  json_t *config;                 /* operator-specific fields (object, owned) */
  size_t *upstream;               /* indices into dag->tasks (finalize) */
  size_t n_upstream;
  size_t *downstream;
  size_t n_downstream;
  /* Builder state: dependency ids and the lines that named them. */
  char **dep_ids;
  int *dep_lines;
  size_t n_deps;
} dagd_task;

typedef struct dagd_dag {
  char *id;
  char *fileloc;                  /* the DAG file's path */
  int line;
  char *description;
  struct dagd_cron *schedule;     /* NULL: event or manual only (owned) */
  struct dagd_tz *tz;             /* owned; UTC by default */
  int64_t start_date;             /* valid when has_start_date */
  bool has_start_date;
  int64_t end_date;
  bool has_end_date;
  bool catchup;
  bool is_paused_upon_creation;
  int max_active_runs;            /* default 16 */
  int max_active_tasks;           /* default 16 */
  char **on_event;
  size_t n_on_event;
  int64_t event_cooldown;         /* seconds, 0 = none */
  int64_t dagrun_timeout;         /* seconds, 0 = none */
  json_t *params;                 /* object (owned) */
  char **tags;
  size_t n_tags;
  json_t *on_failure;             /* notify specs, or NULL */
  json_t *on_success;
  json_t *on_retry;
  dagd_task **tasks;              /* declaration order */
  size_t n_tasks;
  size_t *topo;                   /* task indices in topological order */
  size_t *topo_pos;               /* per task index: its position in topo */
  bool finalized;
  /* Internal: open-addressing index of task ids (slot = task index + 1). */
  size_t *id_slots;
  size_t id_cap;
} dagd_dag;

/* New empty DAG with defaults (UTC, catchup off, 16/16). fileloc may be
 * NULL. Free with dagd_dag_free (accepts NULL). */
dagd_dag *dagd_dag_new(const char *id, const char *fileloc, int line);
void dagd_dag_free(dagd_dag *dag);

/* Adds a task with defaults filled in. DAGD_EEXIST for a duplicate id,
 * DAGD_EINVAL for an id outside ^[A-Za-z0-9_.-]{1,250}$; the message names
 * fileloc:line. The returned task belongs to the DAG. */
int dagd_dag_add_task(dagd_dag *dag, const char *id, dagd_op op, int line,
                      dagd_task **out, struct dagd_err *err);
dagd_task *dagd_dag_find_task(const dagd_dag *dag, const char *id);
/* Records that `task` runs after the task named upstream_id (resolved at
 * finalize). Duplicate edges are ignored. */
void dagd_task_add_dep(dagd_task *task, const char *upstream_id, int line);

/* Resolves dependencies, rejects unknown ones and cycles (the message
 * prints the path, "a -> b -> c -> a"), computes the topological order and
 * effective priority weights. Errors carry fileloc:line. */
int dagd_dag_finalize(dagd_dag *dag, struct dagd_err *err);

/* Index of a task in dag->tasks, or -1. */
long dagd_dag_task_index(const dagd_dag *dag, const char *id);

/* A data interval [start, end) and when its run becomes due (end). */
typedef struct dagd_interval {
  int64_t start;
  int64_t end;
  int64_t run_after;
} dagd_interval;

/* The first scheduled data interval whose run is due strictly after `after`
 * and whose start is at or after the DAG's start_date (and end at or before
 * end_date, when set). DAGD_ENOENT when the DAG has no schedule or no
 * further interval exists. */
int dagd_dag_next_interval(const dagd_dag *dag, int64_t after, dagd_interval *out);

/* The data interval of a manual run with this logical date, inferred from
 * the schedule as Airflow's timetables do (infer_manual_data_interval):
 * for a cron schedule the latest complete interval, the one whose end is
 * the latest fire time at or before the logical date; for an interval
 * schedule ("every 15m") [logical_date - interval, logical_date]. A DAG
 * without a schedule (manual or event only) gets the empty interval
 * [logical_date, logical_date], and so does a cron schedule with no fire
 * time before the date. start_date and end_date do not bound it, as in
 * Airflow. run_after is the logical date. */
void dagd_dag_manual_interval(const dagd_dag *dag, int64_t logical_date, dagd_interval *out);

/* --- the state vocabulary: what runs and task instances can be --- */

typedef enum {
  DAGD_RUN_QUEUED,
  DAGD_RUN_RUNNING,
  DAGD_RUN_SUCCESS,
  DAGD_RUN_FAILED,
  DAGD_RUN__COUNT
} dagd_run_state;

typedef enum {
  DAGD_RUN_SCHEDULED,
  DAGD_RUN_MANUAL,
  DAGD_RUN_BACKFILL,
  DAGD_RUN_EVENT,
  DAGD_RUN_TYPE__COUNT
} dagd_run_type;

typedef enum {
  DAGD_TI_NONE,
  DAGD_TI_SCHEDULED,
  DAGD_TI_QUEUED,
  DAGD_TI_RUNNING,
  DAGD_TI_SUCCESS,
  DAGD_TI_FAILED,
  DAGD_TI_UP_FOR_RETRY,
  DAGD_TI_UP_FOR_RESCHEDULE,
  DAGD_TI_UPSTREAM_FAILED,
  DAGD_TI_SKIPPED,
  DAGD_TI_REMOVED,
  DAGD_TI__COUNT
} dagd_ti_state;

const char *dagd_run_state_name(dagd_run_state s);
int dagd_run_state_parse(const char *name, dagd_run_state *out);
const char *dagd_run_type_name(dagd_run_type t);
int dagd_run_type_parse(const char *name, dagd_run_type *out);
const char *dagd_ti_state_name(dagd_ti_state s);
int dagd_ti_state_parse(const char *name, dagd_ti_state *out);
/* Finished for good: success, failed, skipped, upstream_failed, removed */
bool dagd_ti_state_finished(dagd_ti_state s);

/* How a task try ended. */
typedef enum {
  DAGD_TRY_EXITED,    /* code holds the exit status */
  DAGD_TRY_SIGNALED,  /* code holds the signal number */
  DAGD_TRY_VANISHED,  /* no shim and no exit record: the try was lost */
} dagd_try_end;

typedef struct dagd_try_result {
  dagd_try_end how;
  int code;
} dagd_try_result;

#endif
