/* The deterministic simulation of the scheduling engine: shared types of
 * the generator (gen.c), the simulated executor (exec.c), the external
 * events sent through the REST API (events.c), the store mirror and the
 * invariants (check.c) and the main loop (sim.c). Everything a seed does
 * comes from one PRNG seeded from the seed; time is a virtual clock.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_SIM_H
#define DAGD_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "dagd/api.h"
#include "dagd/engine.h"
#include "dagd/model.h"
#include "dagd/sched.h"
#include "dagd/store.h"

/* --- the PRNG: xoshiro256** seeded through splitmix64 --- */

typedef struct sim_rng {
  uint64_t s[4];
} sim_rng;

void sim_rng_seed(sim_rng *r, uint64_t seed);
uint64_t sim_rand(sim_rng *r);
/* [0, 1) */
double sim_uniform(sim_rng *r);
/* [lo, hi], both included */
int64_t sim_range(sim_rng *r, int64_t lo, int64_t hi);
bool sim_chance(sim_rng *r, double p);
/* Exponential with this mean. */
double sim_exp(sim_rng *r, double mean);
/* An index in [0, n) drawn with the given weights. */
size_t sim_pick(sim_rng *r, const double *weights, size_t n);

/* --- what one seed simulates --- */

#define SIM_MAX_TASKS 8
#define SIM_MAX_DAGS 4

/* How fast a seed's world moves: the unit its schedules, durations and
 * event gaps are drawn around. */
typedef enum { SIM_FAST, SIM_MEDIUM, SIM_SLOW } sim_tempo;

/* How the simulated executor makes a task's tries end. */
typedef struct sim_behaviour {
  double p_fail;      /* exit 1 */
  double p_skip;      /* exit 98 */
  double p_signal;    /* killed by a signal (OOM killer) */
  double p_hang;      /* never ends by itself (only with execution_timeout) */
  double p_resched;   /* sensors: exit 99, a poke that found nothing */
  double p_outputs;   /* writes k=v outputs */
  double p_oversize;  /* writes more than DAGD_OUTPUT_MAX */
  double dur_mean;    /* seconds */
  double dur_fixed;   /* > 0: every try takes exactly this long */
} sim_behaviour;

typedef struct sim_dag {
  dagd_dag *dag;                /* the model handed to the engine */
  uint64_t seed;                /* rebuilds the same model (a reload) */
  sim_behaviour beh[SIM_MAX_TASKS];
  double unit;                  /* seconds: its schedule's rough period */
  bool stall_shape;             /* every N s, a task longer than N, max_active_runs 1 */
  /* What the harness knows of its state. */
  bool paused;                  /* as last set through the API (or on creation) */
  double last_event_run;        /* for event_cooldown */
  int64_t last_sched_pk;        /* last scheduled run checked for order */
  int64_t n_manual, n_event, n_backfill;  /* runs the API reported creating */
  bool has_last;                /* its latest scheduled run so far */
  int64_t last_start, last_end;
  int64_t *dates;               /* logical dates of its scheduled and backfill runs, sorted */
  size_t n_dates, cap_dates;
} sim_dag;

/* A try the simulated executor runs (or was told to run). */
typedef struct sim_try {
  uint64_t serial;
  int64_t run_pk;
  size_t dag;                   /* index into sim.dags */
  size_t task;                  /* index into the DAG's tasks */
  char task_id[32];
  int try_number;
  double started;               /* start_date as handed out */
  double deadline;              /* 0: none */
  double natural_end;           /* when it would end by itself (INFINITY: hangs) */
  dagd_try_result result;       /* how it ends by itself */
  char *outputs;                /* what it writes to $DAGD_OUTPUT (heap), or NULL */
  size_t outputs_len;
  bool oversize;
  double end_at;                /* when its end reaches the daemon */
  dagd_try_result end_result;   /* how it really ends (a stop may change it) */
  bool stop_requested;          /* by the current engine (execution_timeout) */
  double stop_at;
  bool killed;                  /* stopped on request (clear, mark) */
  bool spawned;                 /* false: recorded as running, the daemon died before the spawn */
  bool lenient_timeout;         /* ended after its deadline with no stop asked: either outcome is right */
  int follow_mask;              /* branch: the direct downstream tasks it follows (task bits) */
  bool short_circuit_false;
} sim_try;

/* The harness's copy of a task instance, as the store holds it between
 * engine calls. */
typedef struct sim_ti {
  dagd_ti_state state;
  int try_number;
  int max_tries;
  double next_try_at;
  double start_date;
  double end_date;
} sim_ti;

typedef struct sim_run {
  int64_t pk;                   /* 0: not seen */
  size_t dag;
  dagd_run_type type;
  char run_id[96];
  int64_t logical_date;
  int64_t istart, iend;
  bool has_interval;
  dagd_run_state state;
  double queued_at, start_date, end_date;
  int64_t backfill_id;
  bool touched;                 /* the API cleared or marked something in it */
  sim_ti tis[SIM_MAX_TASKS];
  int started[SIM_MAX_TASKS];   /* tries handed out */
  unsigned branch_skip;         /* tasks a branch chose not to follow */
  unsigned sla_reported;        /* tasks whose SLA miss was reported */
  bool final_checked;
} sim_run;

typedef struct sim_stats {
  uint64_t seeds, steps, passes, runs, tis, tries, crashes, drains, api_calls;
  uint64_t by_type[DAGD_RUN_TYPE__COUNT];      /* runs by type */
  uint64_t timeouts, kills, lost, adopted, pokes, retries, sla_misses, branch_skips;
  double sim_seconds;
} sim_stats;

typedef struct sim_opts {
  uint64_t seed;
  long max_steps;               /* per seed; 0: by the tempo */
  double days;                  /* simulated span per seed; 0: by the tempo */
  int verbose;
  const char *tmpdir;
  char **skip;                  /* invariants not checked */
  size_t n_skip;
  /* Steer clear of a known bug (for triage; CI avoids nothing):
   * branches always write their output, killed tries end at once. */
  bool avoid_stale_outputs, avoid_kill_overlap;
} sim_opts;

typedef struct sim {
  const sim_opts *opts;
  uint64_t seed;
  sim_rng rng;
  sim_tempo tempo;
  double unit;                  /* the tempo's unit, seconds */
  const char *focus_zone;       /* the zone whose DST change the seed starts near */
  char dir[256];
  char db_path[300];
  /* The world. */
  sim_dag dags[SIM_MAX_DAGS];
  size_t n_dags;
  dagd_dag *models[SIM_MAX_DAGS];   /* what the engine was given */
  dagd_dag *old_models[SIM_MAX_DAGS];
  dagd_dagbag bag;
  int parallelism;
  dagd_kv pools[3];
  int pool_slots[3];
  size_t n_pools;
  /* The daemon under test. */
  dagd_store *store;
  dagd_engine *engine;
  dagd_api api;
  bool api_open;
  int engine_gen;
  bool draining;
  double wake;                  /* the last pass's wake */
  /* The executor. */
  sim_try *tries;
  size_t n_tries, cap_tries;
  uint64_t next_serial;
  /* The clock and the plan. */
  double now, t_start, t_end;
  long step, max_steps;
  double next_event_at;
  double event_gap;
  /* The mirror of the store. */
  sqlite3 *ro;
  sqlite3_stmt *q_active, *q_new_runs, *q_run, *q_tis_run, *q_ti, *q_live, *q_dags, *q_dup;
  sim_run *runs;                /* indexed by pk */
  size_t cap_runs;
  int64_t max_pk;
  int64_t *active;              /* pks of runs the mirror holds as queued or running */
  size_t n_active, cap_active;
  enum { SIM_CTX_OTHER, SIM_CTX_PASS, SIM_CTX_API } ctx;  /* who may have created new runs */
  bool ev_sent[4];              /* repeatable event ids already sent */
  /* The last pass, for the checks after it. */
  dagd_engine_actions act;
  bool act_valid;
  double pass_now;
  int64_t pass_first_new;       /* the first run the last pass created */
  /* Failure. */
  bool failed;
  char fail_check[64];
  char fail_msg[2048];
  long fail_step;
  double fail_now;
  sim_stats st;
} sim;

/* --- sim.c --- */
/* Records the first failed invariant (unless skipped); returns true when
 * it counts, so callers may stop looking. */
bool sim_fail(sim *s, const char *check, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool sim_skipped(const sim *s, const char *check);
void sim_trace(const sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *sim_time(double t, char *buf);  /* buf: 40 bytes */
/* A restart of the daemon: the engine, the API and the store go, and come
 * back over the same file. crash: tries are neither drained nor told. */
void sim_restart(sim *s, bool crash, double downtime);
/* Delivers a try's end to the engine and checks what it made of it. */
void sim_deliver(sim *s, size_t i);

/* --- gen.c --- */
void sim_gen_world(sim *s);
/* Builds DAG i's model from its seed (the same model every time). */
dagd_dag *sim_gen_model(const sim *s, size_t i);
void sim_world_free(sim *s);
/* Slots of a pool, as the engine was configured ("default": parallelism;
 * unconfigured: parallelism). */
int sim_pool_slots(const sim *s, const char *pool);

/* --- exec.c --- */
/* A try handed out by a pass (or adopted): its outcome is drawn now. */
sim_try *sim_exec_start(sim *s, const dagd_engine_try *t, size_t dag, size_t task);
sim_try *sim_exec_find(sim *s, int64_t run_pk, const char *task_id, int try_number);
/* The engine asks for a try to stop (timeout) or the API killed it. */
void sim_exec_stop(sim *s, sim_try *t, bool kill);
/* The earliest end_at (INFINITY when none). */
double sim_exec_next_end(const sim *s);
void sim_exec_remove(sim *s, size_t i);
void sim_exec_clear(sim *s);
void sim_exec_kill_hook(sim *s, int64_t run_pk, const char *task_id);

/* --- events.c --- */
void sim_api_open(sim *s);
void sim_api_close(sim *s);
/* One random external event at s->now. */
void sim_event(sim *s);

/* --- check.c --- */
int sim_mirror_open(sim *s);
void sim_mirror_close(sim *s);
sim_run *sim_run_get(sim *s, int64_t pk);
/* Reads one run and its task instances into the mirror. */
void sim_mirror_run(sim *s, int64_t pk);
/* Reads runs created since the last look. */
void sim_mirror_new_runs(sim *s);
/* Reads one task instance into the mirror; false when absent. */
bool sim_mirror_ti(sim *s, int64_t pk, size_t task, sim_ti *out);
/* Checks a pass's starts against the mirror from before it. */
void sim_check_start(sim *s, const dagd_engine_try *t, size_t dag, size_t task);
/* Everything after a pass at s->pass_now whose actions were carried out. */
void sim_check_after_pass(sim *s);
/* At the end of a seed: whole-store checks. */
void sim_check_final(sim *s);
void sim_dump_state(sim *s);
long sim_dag_index(const sim *s, const char *dag_id);

#endif
