/* The scheduling engine: every scheduling decision of the daemon, over the
 * store and the loaded DAG models, with the clock passed in and no event
 * loop. A pass creates the runs that are due, advances every active run
 * through the scheduler core (sched.h), records the tries it starts as
 * running (intent before effect) and returns what the caller must do:
 * tries to start and to stop, SLA misses to notify, runs that changed,
 * and the one time at which the next pass is due. The end of a try is
 * recorded by dagd_engine_try_end, which decides what the try's outcome
 * makes of its task instance.
 *
 * The caller (the daemon, or the simulation in tests/sim) executes the
 * actions and calls dagd_engine_pass again when something happened: a try
 * ended, the API changed state, or the wake time came. Liveness is a
 * property of the pass: afterwards every unpaused scheduled DAG has its
 * due runs created or is held by max_active_runs (freed only by a run
 * ending, which happens in a pass), every queued run is held by
 * max_active_runs, every scheduled task instance is held by a full limit
 * (freed only by a try ending), and whatever waits on time is covered by
 * the returned wake.
 *
 * Not thread-safe: one engine per store, used from one thread.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_ENGINE_H
#define DAGD_ENGINE_H

#if defined(DAGD_LAYER_PURE) || defined(DAGD_LAYER_LUA) || defined(DAGD_LAYER_STORE) || defined(DAGD_LAYER_API)
#error "dagd/engine.h is above this layer (see the layers in CMakeLists.txt)"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dagd/model.h"
#include "dagd/store.h"

struct dagd_err;
typedef struct dagd_engine dagd_engine;

typedef struct dagd_engine_opts {
  int parallelism;             /* worker slots across every DAG */
  const dagd_kv *pools;        /* name -> slots ("gpu" = "1"); borrowed for the engine's life */
  size_t n_pools;
  uint64_t seed;               /* retry jitter (any value; 0 is replaced) */
} dagd_engine_opts;

/* A new engine over an open store (borrowed; it must outlive the engine).
 * It has no DAGs until dagd_engine_set_dags. */
dagd_engine *dagd_engine_new(dagd_store *store, const dagd_engine_opts *opts);
void dagd_engine_free(dagd_engine *e);

/* Replaces the loaded DAGs (borrowed: they must stay valid until the
 * next call or dagd_engine_free). Records each in the store in one
 * transaction (a DAG new to the store takes is_paused_upon_creation) and
 * reads back its paused flag. On a store failure nothing changes. */
int dagd_engine_set_dags(dagd_engine *e, const dagd_dag *const *dags, size_t n, struct dagd_err *err);
/* The loaded DAG with this id, or NULL. */
const dagd_dag *dagd_engine_find_dag(const dagd_engine *e, const char *dag_id);
/* Whether a DAG is paused, as the store says (the one source of truth:
 * each pass reads the paused flags from it). False for an unknown DAG. */
bool dagd_engine_is_paused(const dagd_engine *e, const char *dag_id);
/* The API changed a DAG's runs or task instances behind the engine's
 * back (trigger, backfill, clear, mark, event): what the engine holds of
 * them is read again and its runs are planned again at the next pass.
 * NULL: every DAG. */
void dagd_engine_changed(dagd_engine *e, const char *dag_id);
/* From now on no run is created and no try starts: the caller waits for
 * the tries in flight (dagd_engine_in_flight) and stops. */
void dagd_engine_drain(dagd_engine *e);
bool dagd_engine_draining(const dagd_engine *e);
/* Tries handed out (started or adopted) and not yet ended. */
size_t dagd_engine_in_flight(const dagd_engine *e);
/* For tests and the simulation: checks that every run the engine keeps
 * in memory is where a full evaluation at the last pass's time would
 * leave it (the incremental passes missed nothing). 0, or DAGD_EINVAL
 * naming the first task a full evaluation would move. */
int dagd_engine_verify(dagd_engine *e, struct dagd_err *err);

/* A try to start, stop or watch. Everything is owned by the actions (or
 * the list) it came in, except dag and task, which are the engine's. */
typedef struct dagd_engine_try {
  const dagd_dag *dag;
  const dagd_task *task;       /* NULL when the task left the DAG */
  dagd_store_run run;          /* the run's row */
  char *task_id;
  int try_number;
  double start_date;           /* as recorded */
  double deadline;             /* execution_timeout reached at; 0: none */
} dagd_engine_try;

/* A task instance not finished `sla` seconds after its run started. */
typedef struct dagd_engine_sla {
  const dagd_dag *dag;
  const dagd_task *task;
  char *run_id;
  int try_number;
  dagd_ti_state state;
  const json_t *notify;        /* the task's on_failure, else the DAG's, or NULL (the DAG's) */
  dagd_store_run run;          /* the run's row, for the notification's context */
  char *outputs;               /* the run's outputs so far ({"task": {"key": "value"}}), when notify */
} dagd_engine_sla;

/* A run that ended in the pass. notify is the DAG-level callback the end
 * calls, once per run: the DAG's on_success for a run that succeeded,
 * its on_failure for one that failed (NULL: none). */
typedef struct dagd_engine_run_end {
  const dagd_dag *dag;
  char *run_id;
  dagd_run_state state;
  const json_t *notify;        /* the DAG's */
  dagd_store_run run;          /* the run's row as it ended */
  char **failed_tasks;         /* ids of its failed task instances, in the DAG's order */
  size_t n_failed_tasks;
  char *outputs;               /* the run's outputs, when notify */
} dagd_engine_run_end;

/* What a pass asks of its caller, after the pass's commit. */
typedef struct dagd_engine_actions {
  dagd_engine_try *starts;     /* recorded as running: start each one */
  size_t n_starts;
  dagd_engine_try *stops;      /* past execution_timeout: stop each one */
  size_t n_stops;
  dagd_engine_sla *sla_misses; /* notify each one (already recorded, so once) */
  size_t n_sla_misses;
  dagd_engine_run_end *run_ends;
  size_t n_run_ends;
  int64_t *changed_runs;       /* runs whose state or task instances changed */
  size_t n_changed_runs;
  size_t queued;               /* scheduled task instances left waiting for a slot */
  double wake;                 /* when the next pass is due; 0: only on an event */
} dagd_engine_actions;

void dagd_engine_actions_init(dagd_engine_actions *a);
void dagd_engine_actions_close(dagd_engine_actions *a);

/* One scheduling pass at `now`, in one transaction. Fills *out (init it
 * first; the pass appends). On a store failure the transaction is rolled
 * back, nothing is asked of the caller but a wake, and the error is
 * returned. A busy store (DAGD_ETIMEDOUT: another process holds the write
 * lock) asks for a wake 50 ms on, doubling with each busy pass in a row up
 * to 2 s; anything else asks for one 5 s on and should stop the caller. */
int dagd_engine_pass(dagd_engine *e, double now, dagd_engine_actions *out, struct dagd_err *err);

/* --- tries --- */

/* How a try ended, as the caller saw it. */
typedef struct dagd_engine_end {
  int64_t run_pk;
  const char *task_id;
  int try_number;
  dagd_try_result result;
  /* What the try wrote to $DAGD_OUTPUT (NULL: nothing); outputs_len may
   * exceed DAGD_OUTPUT_MAX, which fails a successful try. */
  const char *outputs;
  size_t outputs_len;
  /* When the try really ended, if known and earlier than the `now` of
   * dagd_engine_try_end (a try that ended while dagd was away); 0: now.
   * It becomes the task instance's end_date; retry delays count from now. */
  double end_date;
} dagd_engine_end;

/* What the end of a try made of its task instance. */
typedef struct dagd_engine_ended {
  bool current;                /* false: cleared or marked meanwhile, nothing recorded */
  bool succeeded;
  bool timed_out;              /* the engine had asked for it to stop */
  dagd_ti_state state;         /* the task instance's new state */
  const dagd_dag *dag;         /* NULL when the DAG is no longer loaded */
  const dagd_task *task;       /* NULL when the task left the DAG */
  char *note;                  /* a line for the try's log, or NULL (heap) */
  /* The task-level callback this end calls, or NULL: the task's own
   * on_success or on_failure (the DAG's fire once per run, at its end:
   * dagd_engine_run_end), or for a retry the task's on_retry, else the
   * DAG's. notify_event is "success", "failure" or "retry". */
  const json_t *notify;        /* the task's or the DAG's */
  const char *notify_event;
  dagd_store_run run;          /* the try's run, for the notification's context */
  char *outputs;               /* the run's outputs, when notify */
} dagd_engine_ended;

void dagd_engine_ended_close(dagd_engine_ended *x);

/* Records the end of a try in one transaction: its outputs, its task
 * instance's new state (success; a retry after its delay or failed;
 * skipped; up_for_reschedule for a sensor's poke; a branch's skips).
 * Every try handed out must end here exactly once, even one that could
 * not start. On a store failure nothing is recorded and the try still
 * counts as in flight: call again later (its exit record stays). */
int dagd_engine_try_end(dagd_engine *e, const dagd_engine_end *end, double now, dagd_engine_ended *out,
                        struct dagd_err *err);

/* The tries the store records as running, for a caller that starts over
 * on an existing store (after a restart): it re-adopts each one, and each
 * counts as in flight until its dagd_engine_try_end. Call once, before
 * the first pass. *out is an array of *n (dagd_engine_tries_free). */
int dagd_engine_adopt(dagd_engine *e, dagd_engine_try **out, size_t *n, struct dagd_err *err);
void dagd_engine_tries_free(dagd_engine_try *t, size_t n);

/* What a try's command is built from besides its task and run: every
 * output of the run so far (JSON object text {"task": {"key": "value"}},
 * heap) and, for a gate, the baseline it compares against ({"baseline":
 * {...}, "baseline_run": "..."} or NULL). *extra is a new reference. */
int dagd_engine_try_inputs(dagd_engine *e, const dagd_engine_try *t, char **outputs, json_t **extra,
                           struct dagd_err *err);

#endif
