/* The daemon's state and the functions its files share: the DAG folder
 * (dags.c), carrying out the engine's passes (pass.c), task processes
 * (tries.c) and the setup and signals (main.c). Every scheduling decision
 * is the engine's (dagd/engine.h); the daemon only executes its actions:
 * spawn, kill, timers, sockets. Loop thread only.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_DAEMON_H
#define DAGD_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "dagd/api.h"
#include "dagd/config.h"
#include "dagd/engine.h"
#include "dagd/exec.h"
#include "dagd/lua.h"
#include "dagd/store.h"

typedef struct daemon daemon_t;
typedef struct daemon_parse daemon_parse;
typedef struct dags_load dags_load;
typedef struct daemon_metrics daemon_metrics;
typedef struct route_binding route_binding;
struct pending;
struct dagd_http_server;
struct dagd_http_router;

/* One try being run or watched. */
typedef struct running_try {
  daemon_t *d;
  int64_t run_pk;
  char *dag_id, *task_id;
  int try_number;
  char *base;           /* try file base path */
  char *run_id;
  char *pool;           /* for /metrics */
  double started;
  dagd_exec_try *exec;
  uv_timer_t grace;     /* SIGKILL after SIGTERM's grace; after the end,
                         * the retry of recording it while the store is busy */
  unsigned end_retry_ms; /* that retry's backoff */
  bool timed_out;       /* stopped at its execution_timeout */
  bool killed;          /* stopped on request (clear, mark) */
  struct running_try *prev, *next;
} running_try;

/* What a DAG file looked like when it was last loaded. */
typedef struct file_state {
  char *path;
  int64_t mtime_ns;
  int64_t size;
  uint64_t ino;
} file_state;

/* Group commit (commit.c). */
struct held_reply;
typedef struct daemon_commit_state {
  uv_prepare_t prepare;          /* data is NULL until started */
  uv_check_t check;
  struct held_reply *held, *tail; /* replies waiting for the commit */
  uint64_t commits;              /* turns committed */
} daemon_commit_state;

/* The DAG folder and what was last loaded from it (dags.c, parse.c). */
typedef struct daemon_dags {
  dagd_dagbag bag;
  file_state *files;    /* sorted by path */
  size_t n_files;
  uv_timer_t reload;    /* debounces DAG folder changes */
  uv_fs_event_t watch;
  bool watching;
  daemon_parse *parse;  /* the DAG files being parsed (parse.c), or NULL */
  dags_load *load;      /* the load that parse belongs to (dags.c) */
  bool reload_again;    /* the folder changed during that load */
} daemon_dags;

/* The tries being run or watched (tries.c). */
typedef struct daemon_tries {
  dagd_exec *exec;
  char *shim_path;
  char **task_environ;  /* environ without the service manager's variables */
  json_t *task_environ_json; /* the same, as the templates' `env` */
  running_try *running;
  size_t n_running;
} daemon_tries;

/* The API: its server, routes and long polls (httpapi.c, ui.c). */
typedef struct daemon_web {
  dagd_api *api;
  struct dagd_http_server *http;
  struct dagd_http_router *router;
  route_binding *bindings;
  struct pending *pending;
  uv_timer_t heartbeat_timer;
  double heartbeat;     /* when the loop last beat */
  double loop_lag;
  uint64_t http_codes[6];
} daemon_web;

/* Figures for /metrics (metrics.c; the pass counts come from pass.c). */
typedef struct daemon_stats {
  uint64_t passes;
  double pass_seconds;
  size_t queue_depth;
  daemon_metrics *metrics;
} daemon_stats;

/* Hearing of clock sets (clock.c). */
typedef struct daemon_clock {
  int fd;               /* the timerfd that hears clock sets, or -1 */
  uv_poll_t poll;
  uv_fs_event_t test_watch; /* DAGD_TEST_CLOCK_FILE's folder */
  bool test_on;
} daemon_clock;

/* The service manager (systemd.c). */
typedef struct daemon_systemd {
  uv_timer_t watchdog;  /* systemd's watchdog pings */
  bool watchdog_on;
  bool told_stopping;
} daemon_systemd;

/* The daemon: its configuration, the store and the engine, the loop and
 * its timers and signals, and one part per room above. */
struct daemon {
  dagd_config cfg;
  dagd_store *store;
  dagd_engine *engine;  /* every scheduling decision */
  uv_loop_t loop;
  uv_timer_t wake;      /* the next scheduled thing: a run due, a retry */
  uv_timer_t kick;      /* a pass soon: coalesces the events of one turn */
  uv_timer_t drain;     /* bounds the wait for running tries at stop */
  uv_timer_t retention; /* hourly pruning of old runs (retention.c) */
  uv_signal_t sigint, sigterm, sighup;
  bool stopped;
  int exit_code;
  bool store_busy;      /* the last store use found it locked by another process */
  daemon_commit_state commit;
  daemon_dags dags;
  daemon_tries tries;
  daemon_web web;
  daemon_stats stats;
  daemon_clock clock;
  daemon_systemd systemd;
};

/* dags.c */
/* Loads the DAG folder; after the first time only files that changed are
 * read again (unchanged files keep their DAGs and errors). */
int daemon_load_dags(daemon_t *d, bool initial);
void daemon_dags_close(daemon_t *d);
void daemon_watch_dags(daemon_t *d);
/* Ends a load in progress (its parser child is killed): at stop. */
void daemon_dags_stop(daemon_t *d);

/* parse.c */
/* Called on the loop when every file has a result: results[i] is file
 * i's DAGs or errors (move them out; the rest is freed with p). The
 * callback frees p with daemon_parse_free. */
typedef void (*daemon_parse_cb)(daemon_t *d, daemon_parse *p, dagd_dagbag *results, size_t n);
/* Parses files[0..n) (borrowed until done, n > 0) in `dagd parse`
 * children, with d->cfg.parse_timeout as the limit per file; sets
 * d->parse to the parse before anything can end it. */
daemon_parse *daemon_parse_start(daemon_t *d, char *const *files, size_t n, daemon_parse_cb done);
/* Blocks for at most ms waiting for the parse to end (the first load,
 * before the API listens): true when it ended (done has run). */
bool daemon_parse_wait(daemon_parse *p, uint64_t ms);
/* Files not parsed yet. */
size_t daemon_parse_pending(const daemon_parse *p);
/* Kills the child if it runs; frees p once its handles closed. */
void daemon_parse_free(daemon_parse *p);

/* pass.c */
/* A pass soon: coalesces the events of one loop turn. */
void daemon_kick(daemon_t *d);
/* Runs the engine's pass now and carries out its actions. */
void daemon_pass(daemon_t *d);

/* clock.c */
/* The wall clock, in seconds (with the test-only offset of
 * DAGD_TEST_CLOCK_FILE when that is set). */
double daemon_now(void);
/* A monotonic clock in seconds: for ages and durations, which a set of
 * the wall clock must not change. */
double daemon_mono(void);
/* Watches for sets of the wall clock (timerfd, TFD_TIMER_CANCEL_ON_SET):
 * each one asks for a pass. */
void daemon_clock_start(daemon_t *d);
void daemon_clock_close(daemon_t *d);
/* The longest the wake timer sleeps: a wall-clock jump the kernel does
 * not report as a set (a suspend and resume) is seen within this. */
#define DAEMON_WAKE_MAX_MS (5 * 60 * 1000)
/* Decides what a store failure means: false for a transient one (busy;
 * retried), true when the daemon stopped because of it. */
bool daemon_store_failed(daemon_t *d, const struct dagd_err *err);
/* Notes whether the store was found busy (logged when that changes). */
void daemon_store_busy(daemon_t *d, bool busy);
/* The busy timeout of the daemon's store, used on the loop: short, so a
 * write lock held by another process never stalls the API; busy work is
 * retried from a timer. */
#define DAEMON_STORE_BUSY_MS 5

/* tries.c */
/* Starts a try the engine recorded as running (after its commit). */
void daemon_try_start(daemon_t *d, const dagd_engine_try *t);
/* Stops a try the engine found past its execution_timeout. */
void daemon_try_timeout(daemon_t *d, const dagd_engine_try *t);
/* Re-adopts every try the store says is running (at startup). */
int daemon_tries_adopt(daemon_t *d);
/* The try's file base: <logs>/<dag>/<run_id>/<task>/<try>. Heap string. */
char *daemon_try_base(const daemon_t *d, const char *dag_id, const char *run_id, const char *task_id,
                      int try_number);
void daemon_tries_close(daemon_t *d);

/* Stops a running try (SIGTERM, SIGKILL after the grace) on request. */
void daemon_try_kill(daemon_t *d, int64_t run_pk, const char *task_id);

/* httpapi.c */
/* Binds the listen address, before anything is created on disk, so that
 * a taken port stops the start with nothing written. Prints the reason
 * ("127.0.0.1:8787: address already in use") and returns -1 on failure;
 * daemon_api_stop releases what it made either way. */
int daemon_api_listen(daemon_t *d);
/* The API over the open store: routes, tokens, the heartbeat. */
int daemon_api_start(daemon_t *d);
/* Logs the address and bound port: the daemon is ready. */
void daemon_api_serving(daemon_t *d);
void daemon_api_stop(daemon_t *d);
void daemon_api_free(daemon_t *d);
/* Answers the long polls waiting on this run. */
void daemon_api_run_changed(daemon_t *d, int64_t run_pk);

/* One command-line option of dagd (usage.c): what main() parses, and
 * what --help and --man show. */
typedef struct daemon_option {
  const char *name;       /* long name, without "--" */
  int val;                /* getopt_long's value for it */
  const char *arg;        /* the value's name, NULL for a flag */
  const char *config_key; /* the config key it sets, or NULL */
  const char *help;
} daemon_option;

/* Ended by an entry with a NULL name. */
extern const daemon_option daemon_options[];
/* `dagd --help`. */
void daemon_usage(FILE *out);
/* `dagd --man`: the manual page in man(7) markup. */
void daemon_man(FILE *out);

/* metrics.c */
/* seconds: how long the run ran; < 0: unknown */
void daemon_metrics_run(daemon_t *d, const char *dag_id, bool success, double seconds);
/* outcome: 0 success, 1 failed, 2 lost, 3 timed out; seconds < 0: unknown */
void daemon_metrics_try(daemon_t *d, const char *dag_id, int outcome, double seconds);
void daemon_metrics_write(daemon_t *d, dagd_buf *out);
void daemon_metrics_free(daemon_t *d);

/* ui.c: GET / and /ui/... from the UI folder. */
int daemon_ui_routes(daemon_t *d, struct dagd_err *err);

/* notify.c: the callbacks the engine chose, each sent apart by `dagd
 * notify` (rendered, with its outcome in a log). */
/* A try's end: its task-level callback, if any (x->notify). base is the
 * try's file base. */
void daemon_notify_try(daemon_t *d, const dagd_engine_ended *x, const char *base, int try_number);
/* A task not finished `sla` after its run started (once per task
 * instance; event "sla_miss"). */
void daemon_notify_sla(daemon_t *d, const dagd_engine_sla *m, const char *base);
/* A run's end: the DAG's on_success or on_failure, once per run. */
void daemon_notify_run(daemon_t *d, const dagd_engine_run_end *r);

/* retention.c */
void daemon_retention_start(daemon_t *d);
void daemon_retention_close(daemon_t *d);

/* systemd.c: the sd_notify protocol; no-ops when not run by systemd. */
/* READY=1, and the watchdog's pings when WATCHDOG_USEC asks for them. */
void daemon_systemd_ready(daemon_t *d);
/* STOPPING=1, once. */
void daemon_systemd_stopping(daemon_t *d);
void daemon_systemd_close(daemon_t *d);
/* A copy of envp's pointers without NOTIFY_SOCKET, WATCHDOG_USEC and
 * WATCHDOG_PID, for the tries (free the array only). */
char **daemon_task_environ(char *const *envp);

/* main.c */
void daemon_stop_now(daemon_t *d);

/* Group commit (commit.c): starts grouping the store's transactions by
 * loop turn; commits the turn now (false when that failed, and the daemon
 * is stopping); answers an HTTP exchange, after the turn's commit when
 * one is pending; commits the last turn and stops grouping. */
void daemon_commit_start(daemon_t *d);
bool daemon_commit(daemon_t *d);
struct dagd_http_exchange;
struct dagd_http_header;
void daemon_reply(daemon_t *d, struct dagd_http_exchange *x, int status, const char *content_type,
                  const void *body, size_t len, const struct dagd_http_header *extra, size_t n_extra);
void daemon_commit_close(daemon_t *d);

#endif
