/* Task execution. Each task try runs under a shim (the dagd binary in
 * shim mode) in its own session: the shim locks <try>.pid, forks the task
 * into its own process group with stdout and stderr appended to
 * <try>.log (with secrets masked), waits, and writes <try>.exit atomically. A shim outlives the
 * daemon, so a restarted daemon re-adopts running tries from these files
 * (dagd_exec_adopt) and learns their true exit status.
 *
 * The try-file functions are plain code; the executor (dagd_exec_*) runs
 * on a libuv loop and must be used from the loop thread only.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_EXEC_H
#define DAGD_EXEC_H

#if defined(DAGD_LAYER_PURE) || defined(DAGD_LAYER_LUA) || defined(DAGD_LAYER_STORE) || defined(DAGD_LAYER_ENGINE) || defined(DAGD_LAYER_API)
#error "dagd/exec.h is above this layer (see the layers in CMakeLists.txt)"
#endif

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "dagd/model.h"

struct dagd_err;

/* --- try files --- */

/* dagd_try_end and dagd_try_result are the model's (model.h). */

/* Paths of one try's files: "<base>.log", ".pid", ".exit", ".out". */
typedef struct dagd_try_paths {
  char *log, *pid, *exit, *out;
} dagd_try_paths;

void dagd_try_paths_init(dagd_try_paths *p, const char *base);
void dagd_try_paths_close(dagd_try_paths *p);

/* Writes all of p to fd (a try's log, its conf): 0, or -1 with errno
 * set (a full disk: the caller decides what it loses). */
int dagd_try_write_all(int fd, const char *p, size_t len);
/* Makes the folders above base (0700) that are missing: 0 or -errno. */
int dagd_try_make_folder(const char *base);
/* Writes the run's conf to <base>.conf.json (0600, $DAGD_CONF_FILE). */
int dagd_try_write_conf(const char *base, const char *conf, struct dagd_err *err);

/* Writes the exit record atomically (temp file + rename): the outcome's
 * line ("exit N", "signal N", "vanished"), then "ended SECONDS.MICROS", the
 * time of the write. */
int dagd_try_write_exit(const char *path, const dagd_try_result *r, struct dagd_err *err);
/* Reads an exit record: 0, DAGD_ENOENT when there is none yet, DAGD_EIO
 * when it is unreadable. */
int dagd_try_read_exit(const char *path, dagd_try_result *r, struct dagd_err *err);
/* When the exit record says its try ended (seconds since the epoch), or
 * the record's modification time when it has no "ended" line (a record
 * from an older shim); 0 without a record. */
double dagd_try_exit_time(const char *path);
/* What a shim recorded in <try>.pid. */
typedef struct dagd_try_pidfile {
  pid_t shim, task;       /* 0 when not yet written */
  bool shim_signals;      /* stop signals go to the shim, which passes them to every process of the try */
  char cgroup[4096];      /* the try's own cgroup (v2) folder, "" without one */
  bool has_end;           /* the end, written here when <try>.exit could not be */
  dagd_try_result end;
  double ended;
} dagd_try_pidfile;
int dagd_try_read_pidfile(const char *path, dagd_try_pidfile *rec, struct dagd_err *err);
/* Reads the pids a shim recorded (0 when not yet written). */
int dagd_try_read_pids(const char *path, pid_t *shim, pid_t *task, struct dagd_err *err);
/* Appends the end to the pid record open as fd: where the end goes when
 * the exit record cannot be written. */
int dagd_try_append_end(int fd, const dagd_try_result *r);
/* How the try ended: its exit record, else the end in its pid record
 * (*from_pid then true). DAGD_ENOENT while it has not ended. */
int dagd_try_read_end(const dagd_try_paths *p, dagd_try_result *r, bool *from_pid, struct dagd_err *err);
/* When it ended, from either record; 0 without an end. */
double dagd_try_end_time(const dagd_try_paths *p);
/* The start time of a process (field 22 of /proc/PID/stat), 0 if gone. */
uint64_t dagd_proc_start_time(pid_t pid);

/* The shim's entry: `dagd shim --base PATH [--cwd DIR] [--mask-fd N]
 * [--stdin-fd N] [--grace-ms N] [--no-cgroup] -- ARGV...`.
 * Returns the process exit status for main. */
int dagd_shim_main(int argc, char **argv);
/* The try supervisor's entry: `dagd supervise --state PATH [--ready-fd N]`
 * (src/exec/supervisor.h). */
int dagd_supervisor_main(int argc, char **argv);

/* --- the executor (loop thread only) --- */

typedef struct dagd_exec dagd_exec;
typedef struct dagd_exec_try dagd_exec_try;

/* Called once per try when it ends (including vanished). `data` is the
 * caller's pointer given at start or adopt; `ended` is when the try
 * ended (seconds since the epoch) when the executor knows it, else 0
 * (read it from the try's files: dagd_try_end_time). The try handle is
 * freed after the callback returns. */
typedef void (*dagd_exec_done_cb)(void *data, const dagd_try_result *result, double ended);

typedef struct dagd_exec_spec {
  const char *base;        /* try file base: ".../<task>/<try>" */
  char *const *argv;       /* the command (argv[0] searched in PATH) */
  char *const *env;        /* "K=V" list, NULL-terminated: the whole environment */
  const char *cwd;         /* NULL: inherit */
  /* Values the shim replaces with "***" in the task's output before it
   * reaches the log file (NULL-terminated; NULL or empty: none). They
   * reach the shim through an anonymous in-memory file, never the disk. */
  const char *const *secrets;
  /* The task's standard input, kept in memory the same way (the spec of
   * a `dagd op` operator); NULL: /dev/null. */
  const char *input;
  /* How long the try's processes have to stop, after a stop or after
   * the main process ends, before they are killed; 0: the shim's 10 s. */
  int grace_ms;
  /* Track the try's processes as the shim's descendants only, even where
   * a cgroup of its own could be made (config try_cgroups = false). */
  bool no_cgroup;
  /* The run's conf, written to <base>.conf.json (0600) before the task
   * starts, by the process that starts it (the supervisor's child, off
   * the daemon's loop); NULL: no file. The try's folder is made too. */
  const char *conf;
} dagd_exec_spec;

/* shim_path is the dagd binary to run as shim (and as supervisor). */
dagd_exec *dagd_exec_new(uv_loop_t *loop, const char *shim_path);
/* Gives tries to the supervisor of the state file (starting one if none
 * runs; see docs/operations.md): each try that needs no shim of its own
 * (a cgroup, no output to mask) is spawned by it, with no process of its
 * own between the task and the supervisor. Fails, leaving every try to a
 * shim, where the supervisor cannot start or cannot make cgroups. */
int dagd_exec_supervise(dagd_exec *ex, const char *state, struct dagd_err *err);
/* True while the supervisor takes tries. */
bool dagd_exec_supervised(const dagd_exec *ex);
/* Every try the store says is running has been adopted: the supervisor
 * may drop the ends of any other. */
void dagd_exec_adopted(dagd_exec *ex);
/* The end of the try at base has been handed to the store: once that is
 * committed (dagd_exec_committed), the supervisor may forget it. */
void dagd_exec_forget(dagd_exec *ex, const char *base);
/* The store has committed what was handed to it: the ends given to
 * dagd_exec_forget since the last call may go. */
void dagd_exec_committed(dagd_exec *ex);
/* Closes the executor and its handles on live tries, whose callbacks then
 * never fire: the tries keep running under their detached shims and are
 * re-adopted by the next daemon. Run the loop afterwards so the handles
 * finish closing. */
void dagd_exec_close(dagd_exec *ex);

/* Starts a try. On success the callback fires exactly once later. */
int dagd_exec_start(dagd_exec *ex, const dagd_exec_spec *spec, dagd_exec_done_cb cb, void *data,
                    dagd_exec_try **out, struct dagd_err *err);
/* Re-adopts a try recorded as running by an earlier daemon. The callback
 * fires once: at once (on the next loop turn) when the try already ended
 * or vanished, else when its shim exits. A vanished try whose task process
 * group still lives is killed first, so it can never run twice at once. */
int dagd_exec_adopt(dagd_exec *ex, const char *base, dagd_exec_done_cb cb, void *data, dagd_exec_try **out,
                    struct dagd_err *err);
/* Stops a try: SIGTERM goes to its shim, which passes it to every process
 * of the try (shims of older versions: to the task's process group);
 * SIGKILL goes to the try's cgroup and process group. */
int dagd_exec_signal(dagd_exec_try *t, int sig);
/* How many tries are being tracked. */
size_t dagd_exec_running(const dagd_exec *ex);

#endif
