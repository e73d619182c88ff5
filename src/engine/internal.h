/* What the engine's files share: the engine object, its DAG entries, the
 * run cache and the set of tries it asked to stop.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_ENGINE_INTERNAL_H
#define DAGD_ENGINE_INTERNAL_H

#include "dagd/engine.h"
#include "dagd/err.h"
#include "dagd/sched.h"

/* A loaded DAG and what the engine knows of its planning. */
typedef struct engine_dag {
  const dagd_dag *dag;
  bool paused;        /* the store's flag, read at each pass's start */
  bool any_sla;       /* a task of it has an sla: the passes look for misses */
  bool plan;          /* plan at the next pass, whatever next_due says */
  bool has_next;      /* next_due is known: an interval not yet created */
  bool blocked;       /* next_due has come, but max_active_runs holds it */
  int64_t next_due;   /* when that interval's run becomes due */
  bool has_planned;
  int64_t planned_to; /* the latest logical date planned: created, or taken by a backfill */
  /* next_run_after as of the last plan (dagd_sched_next_run_after), and
   * what the store holds of it (recorded: written by a committed pass). */
  bool has_nra;
  int64_t nra;
  bool recorded, rec_has;
  int64_t rec_nra;
} engine_dag;

/* The task instances of an active run, kept between passes (cache.c). */
typedef struct run_cache {
  int64_t pk;
  const dagd_dag *dag;
  dagd_store_ti_list rows;
  dagd_store_ti **row_of;   /* per task index of dag */
  dagd_sched_ti *tis;       /* a pass's scratch, per task index: made once */
  dagd_sched_view view;     /* what the last evaluation left: the next
                             * one looks only at what changed since */
  struct run_cache *next;
} run_cache;

#define ENGINE_CACHE_BUCKETS 256

/* A try the engine asked to stop at its execution_timeout. */
typedef struct stop_entry {
  int64_t run_pk;
  char *task_id;
  int try_number;
} stop_entry;

#define ENGINE_FLIGHT_BUCKETS 1024
typedef struct flight_entry flight_entry;

struct dagd_engine {
  dagd_store *store;
  int parallelism;
  const dagd_kv *pools;
  size_t n_pools;
  uint64_t rng;
  engine_dag *dags;         /* sorted by id */
  size_t n_dags;
  run_cache **cache;        /* ENGINE_CACHE_BUCKETS buckets, or NULL */
  stop_entry *stopping;
  size_t n_stopping;
  flight_entry **flight;    /* tries in flight (flight.c), or NULL */
  size_t in_flight;         /* how many */
  bool draining;
  int busy_passes;          /* passes in a row that found the store busy */
  double last_pass;         /* the time of the last pass (dagd_engine_verify) */
};

engine_dag *dagd__engine_dag(const dagd_engine *e, const char *dag_id);
/* Reads every DAG's paused flag from the store (at each pass's start). */
int dagd__engine_read_paused(dagd_engine *e, dagd_err *err);
/* A number in [0, 1) for retry jitter. */
double dagd__engine_jitter(dagd_engine *e);

/* cache.c */
/* The cached rows of a run, loaded (and completed: tasks added to the DAG
 * join, tasks gone are removed) when missing or made for another version
 * of the DAG. In the caller's transaction. NULL with err set on failure. */
run_cache *dagd__cache_get(dagd_engine *e, const dagd_dag *dag, int64_t pk, dagd_err *err);
void dagd__cache_drop(dagd_engine *e, int64_t pk);
/* One row's scheduling state. */
void dagd__cache_ti(const dagd_store_ti *row, dagd_sched_ti *ti);
/* The scheduler's view of the cached rows (tis: one per task of c->dag). */
void dagd__cache_tis(const run_cache *c, dagd_sched_ti *tis);
/* Drops the cached runs of a DAG (NULL: every run). */
void dagd__cache_clear(dagd_engine *e, const char *dag_id);

/* gate.c */
/* What a gate's try compares against (its spec's "extra"), or NULL. */
json_t *dagd__gate_extra(dagd_engine *e, const dagd_dag *dag, const dagd_task *task, int64_t run_pk);
/* After run succeeded: what each of its gates checked becomes that gate's
 * "deployed" baseline. */
int dagd__gate_record_baselines(dagd_engine *e, const dagd_dag *dag, const dagd_store_run *run, double now,
                                dagd_err *err);

/* flight.c */
void dagd__flight_add(dagd_engine *e, int64_t run_pk, const char *task_id, int try_number, const char *dag_id,
                      const char *pool);
/* False when that try was not in flight. */
bool dagd__flight_remove(dagd_engine *e, int64_t run_pk, const char *task_id, int try_number);
/* Whether any try of the task instance is in flight. */
bool dagd__flight_busy(const dagd_engine *e, int64_t run_pk, const char *task_id);
void dagd__flight_clear(dagd_engine *e);
/* Calls cb with the DAG and pool of every try in flight. */
void dagd__flight_each(const dagd_engine *e, void (*cb)(void *data, const char *dag_id, const char *pool),
                       void *data);

/* tries.c */
/* Whether the engine asked this try to stop; remove takes it off the set. */
bool dagd__stopping(dagd_engine *e, int64_t run_pk, const char *task_id, int try_number, bool remove);
void dagd__stopping_add(dagd_engine *e, int64_t run_pk, const char *task_id, int try_number);
void dagd__stopping_clear(dagd_engine *e);
/* A deep copy of a run row. */
void dagd__run_copy(dagd_store_run *dst, const dagd_store_run *src);

#endif
