/* The scheduler core: pure decisions over the DAG model and plain state
 * arrays, with the clock passed in. Which scheduled runs to create
 * (intervals, catchup, max_active_runs); what each task instance of a run
 * becomes (trigger rules, retries, skips, upstream failures) and when the
 * run ends; how long to wait before a retry; which scheduled task
 * instances to start within parallelism, per-DAG and pool limits, by
 * priority. No I/O, no libuv, no SQLite: the daemon reads the store, calls
 * these, and writes what changed in one transaction.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_SCHED_H
#define DAGD_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dagd/model.h"

/* --- trigger rules --- */

/* How a task's upstream task instances stand (removed ones not counted). */
typedef struct dagd_upstream_counts {
  int total;
  int success;
  int failed;
  int upstream_failed;
  int skipped;
  int done;  /* finished in any way: the four above */
} dagd_upstream_counts;

/* Counts one upstream task instance in state s (a removed one is not
 * counted). Start from a zeroed dagd_upstream_counts. */
void dagd_sched_count_upstream(dagd_upstream_counts *c, dagd_ti_state s);

typedef enum {
  DAGD_TRIGGER_WAIT,             /* not decidable yet */
  DAGD_TRIGGER_RUN,              /* the task may be scheduled */
  DAGD_TRIGGER_SKIP,             /* the task is skipped */
  DAGD_TRIGGER_UPSTREAM_FAILED,  /* the task will never run: upstream_failed */
} dagd_trigger_decision;

/* Airflow's trigger rule semantics: decides as early as the counts allow
 * (all_success turns upstream_failed at the first failure, one_success
 * runs at the first success). A task with no upstream always runs. */
dagd_trigger_decision dagd_sched_trigger(dagd_trigger_rule rule, const dagd_upstream_counts *c);

/* --- runs to create --- */

/* The scheduled runs a DAG should get now. `last` is the logical date
 * (interval start) of its latest scheduled run, or NULL if it has none;
 * `active` is how many of its runs are queued or running. Writes up to
 * `cap` intervals (oldest first) to out and their count to *n_out: with
 * catchup every missed interval since start_date (or since the last run),
 * without it only the latest complete one; never more than
 * max_active_runs - active. *next_due gets when the first interval not
 * created becomes due (*has_next false when there is none), so the caller
 * can arm its timer. */
void dagd_sched_plan_runs(const dagd_dag *dag, const int64_t *last, int active, int64_t now, dagd_interval *out,
                          size_t cap, size_t *n_out, int64_t *next_due, bool *has_next);

/* When the DAG's next scheduled run can be created (Airflow's
 * next_dagrun_create_after, `next_run_after` in the API): the data
 * interval of the first run not yet created after `last` (the logical
 * date of the latest scheduled run planned, NULL if none), as
 * dagd_sched_plan_runs would create it at `now`; its run_after (its end)
 * is the answer. With catchup that is the interval after the last run
 * (or the first at or after start_date); without catchup, when that one
 * is already due, the latest complete interval. A run_after at or before
 * `now` means the run is due and not yet created: the DAG is late, or
 * held by max_active_runs (Airflow would show nothing then; dagd keeps
 * the time, so that lateness can be seen). False, and *out untouched,
 * when no run will be created: no schedule (event or manual only),
 * paused, or the next interval would end after end_date. */
bool dagd_sched_next_run_after(const dagd_dag *dag, const int64_t *last, bool paused, int64_t now,
                               dagd_interval *out);

/* Airflow-style run id: "<type>__2026-01-01T02:00:00+00:00". out holds 64. */
void dagd_sched_run_id(dagd_run_type type, int64_t logical_date, char *out);

/* --- one run's task instances --- */

typedef struct dagd_sched_ti {
  dagd_ti_state state;
  int try_number;
  int max_tries;
  double next_try_at;  /* up_for_retry / up_for_reschedule */
  bool changed;        /* set by the functions below when they change state */
} dagd_sched_ti;

/* Advances one run: up_for_retry and up_for_reschedule instances whose
 * time has come become scheduled; instances in state none are decided by
 * their trigger rules, in topological order so that one call settles a
 * whole cascade (a failure turns every all_success descendant
 * upstream_failed at once). tis has dag->n_tasks entries indexed like
 * dag->tasks. Returns the run's state: running while anything is
 * unfinished, then failed if any leaf task failed or is upstream_failed,
 * else success. *wake gets the earliest future next_try_at (0 if none). */
dagd_run_state dagd_sched_evaluate(const dagd_dag *dag, dagd_sched_ti *tis, double now, double *wake);

/* What a run's evaluation remembers between calls, so that a call costs
 * in proportion to what changed: a task waiting for its upstream is
 * looked at again only once one of its upstream has changed state, and
 * the run's end is sought from the first task not known to be finished.
 * The decisions are dagd_sched_evaluate's, exactly. */
typedef struct dagd_sched_view {
  size_t n;
  bool *due;        /* per task: to look at (an upstream changed) */
  int *seen;        /* per task: the state as last synced, -1 unknown */
  size_t done_upto; /* every task before it was finished when looked at */
  size_t settled;   /* every task before this position in topological order
                     * is finished and seen: nothing there is looked at */
  size_t hi;        /* every task from this position on waits (none) and is
                     * not due: nothing there is looked at either */
} dagd_sched_view;

/* Every task due, nothing seen. Close with dagd_sched_view_close. */
void dagd_sched_view_init(dagd_sched_view *v, size_t n_tasks);
void dagd_sched_view_close(dagd_sched_view *v);
/* Takes in the states as they are now (changed elsewhere: a try started
 * or ended): the downstream of every task whose state differs from what
 * the view saw are due. Call before each evaluation; what the
 * evaluation itself changes, the view sees as it goes. */
void dagd_sched_view_sync(const dagd_dag *dag, const dagd_sched_ti *tis, dagd_sched_view *v);
/* After the states a pass decided are recorded: moves v->settled past the
 * finished tasks at its head and v->hi back over the waiting ones at its
 * tail, so that the next pass looks only between (a chain's pass costs
 * the few tasks at its front, not its length). */
void dagd_sched_view_settle(const dagd_dag *dag, const dagd_sched_ti *tis, dagd_sched_view *v);
/* dagd_sched_evaluate through a view (NULL: every task). Its states must
 * only have moved forward since the view began: a task that finished
 * stays finished (a clear makes a new view). */
dagd_run_state dagd_sched_evaluate_view(const dagd_dag *dag, dagd_sched_ti *tis, dagd_sched_view *v, double now,
                                        double *wake);

/* Records the end of a try of task t: success, or a failure that becomes
 * up_for_retry (with next_try_at from dagd_sched_retry_delay and `jitter`
 * in [0, 1)) while tries remain, else failed. */
void dagd_sched_try_finished(const dagd_task *t, dagd_sched_ti *ti, bool succeeded, double now, double jitter);

/* Seconds to wait after failed try `try_number` (1-based): retry_delay,
 * times 2^(try_number-1) and up to 25% jitter when exponential, capped by
 * max_retry_delay when set. */
double dagd_sched_retry_delay(const dagd_task *t, int try_number, double jitter);

/* A branch task `branch` chose to follow `follow` (task indices): its
 * direct downstream tasks not followed and still in state none are
 * skipped. Trigger rules then carry the skip further on. */
void dagd_sched_branch(const dagd_dag *dag, dagd_sched_ti *tis, size_t branch, const size_t *follow,
                       size_t n_follow);

/* --- the end of a try --- */

/* What a try's end means for its task instance. */
typedef enum {
  DAGD_OUTCOME_SUCCESS,
  DAGD_OUTCOME_FAILURE,     /* a failed try: retried while tries remain */
  DAGD_OUTCOME_SKIP,        /* exit 98: the task instance is skipped */
  DAGD_OUTCOME_RESCHEDULE,  /* exit 99: a sensor's poke found nothing; poke again, no try used */
} dagd_try_outcome;

/* The outcome of a try that ended as r: a try the scheduler stopped at
 * its execution_timeout is a failure whatever its exit; exit 0 is a
 * success, 98 a skip, 99 a reschedule; anything else (another exit code,
 * a signal, a vanished try) a failure. */
dagd_try_outcome dagd_sched_outcome(const dagd_try_result *r, bool timed_out);

/* Seconds a reschedule-mode sensor waits between pokes: its config's
 * "interval" when a positive integer, else 60. */
int64_t dagd_sched_poke_interval(const dagd_task *t);

/* Records the outcome of try ti->try_number of task t (NULL when the
 * task left the DAG: success or failed, never a retry) at now: success;
 * failure as dagd_sched_try_finished; skipped; or up_for_reschedule at
 * now + the poke interval with the try given back. */
void dagd_sched_try_ended(const dagd_task *t, dagd_sched_ti *ti, dagd_try_outcome o, double now, double jitter);

/* The direct downstream tasks a branch follows, from its output: for a
 * short_circuit (config short_circuit = true) the output "condition"
 * (false, 0 or empty skips every one; NULL follows all), else "follow" (a
 * JSON list of task ids, or one id; NULL follows none). follow has room
 * for the branch's n_downstream indices; *n_follow gets how many. */
void dagd_sched_branch_follow(const dagd_dag *dag, const dagd_task *branch, const char *value, size_t *follow,
                              size_t *n_follow);

/* --- picking what to start --- */

typedef struct dagd_sched_candidate {
  int64_t priority;      /* effective priority weight: higher first */
  int64_t logical_date;  /* then older runs first */
  size_t dag_slot;       /* index into limits.dag_free */
  size_t pool_slot;      /* index into limits.pool_free */
  size_t tag;            /* the caller's reference; also the last tie-break */
  bool picked;
} dagd_sched_candidate;

typedef struct dagd_sched_limits {
  int free_slots;        /* parallelism minus running tries */
  int *dag_free;         /* per DAG: max_active_tasks minus running */
  int *pool_free;        /* per pool: slots minus used */
} dagd_sched_limits;

/* Marks which candidates to start now, in priority order, within every
 * limit (the counters are decremented). Reorders c: the candidates looked
 * at come first, in priority order (the picked among them), the others
 * after them in no particular order. Returns how many were picked. */
size_t dagd_sched_pick(dagd_sched_candidate *c, size_t n, dagd_sched_limits *lim);

#endif
