/* The local executor's parts, shared by local.c (tries under a shim of
 * their own) and supervised.c (tries under the long-lived supervisor).
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_EXEC_LOCAL_H
#define DAGD_EXEC_LOCAL_H

#include "dagd/err.h"
#include "dagd/exec.h"
#include "dagd/map.h"
#include "dagd/util.h"

typedef struct sup_conn sup_conn;

struct dagd_exec {
  uv_loop_t *loop;
  char *shim_path;
  size_t running;
  dagd_exec_try *tries;  /* every try not yet delivered */
  /* The try supervisor, where there is one (supervised.c). */
  char *state;           /* the state file it serves; NULL: shims only */
  sup_conn *sup;         /* NULL while not connected */
  struct sup_child *children; /* supervisors this daemon started, not yet reaped */
  dagd_map supervised;   /* base -> the try the supervisor runs or is asked about */
  dagd_buf forgets;      /* bases whose ends wait for the store's commit, NUL-separated */
  bool closing;
};

struct dagd_exec_try {
  dagd_exec *ex;
  char *base;          /* the try's files' base, its key with the supervisor */
  dagd_try_paths paths;
  dagd_exec_done_cb cb;
  void *data;
  uv_poll_t poll;      /* the shim's pidfd: ours or an adopted one */
  uv_timer_t timer;    /* deferred delivery or a pid-file retry */
  int pidfd;
  pid_t child;         /* a shim we spawned, to reap once it exits */
  int handles;         /* open handles; freed when the last one closes */
  bool delivered;
  bool supervised;     /* run (or asked about) through the supervisor */
  dagd_try_result result;
  double ended;        /* when it ended, from the supervisor; 0: from the try's files */
  int adopt_attempts;
  dagd_exec_try *prev, *next;  /* in ex->tries while not delivered */
};

/* Hands the result to the owner once and closes the try's handles;
 * ended is when it ended (0: read it from the try's files). */
void dagd__exec_deliver(dagd_exec_try *t, const dagd_try_result *r, double ended);
/* Learns the try's end from its files and its shim, as for a try an
 * earlier daemon left under a shim (on the next loop turn). */
void dagd__exec_adopt_files(dagd_exec_try *t);

/* --- supervised.c --- */

/* Connects to the supervisor of ex->state, starting one if none runs;
 * 0 when tries can be given to it. */
int dagd__sup_open(dagd_exec *ex, struct dagd_err *err);
/* Gives t to the supervisor; false when it cannot take it now (then the
 * caller starts a shim). */
bool dagd__sup_start(dagd_exec *ex, dagd_exec_try *t, const dagd_exec_spec *spec);
/* Asks the supervisor about a try an earlier daemon left to it. */
void dagd__sup_watch(dagd_exec *ex, dagd_exec_try *t);
/* A packet of type type naming base ('T', 'K', 'F', 'D' with base NULL). */
void dagd__sup_send(dagd_exec *ex, char type, const char *base);
/* 'F' for each of the NUL-separated bases in one packet (or a few). */
void dagd__sup_forget(dagd_exec *ex, const char *bases, size_t len);
/* True when the supervisor can take tries. */
bool dagd__sup_up(const dagd_exec *ex);
void dagd__sup_close(dagd_exec *ex);

#endif
