/* The try supervisor: one long-lived process per state file that starts
 * tries without a shim of their own. It outlives the daemon like a shim
 * does, spawns each task straight into a cgroup of its own (clone3 with
 * CLONE_INTO_CGROUP), reaps it, and records each start and end in one
 * journal beside the state file; the daemon talks to it over a unix
 * socket (SOCK_SEQPACKET: one message per packet) and finds it again
 * after a restart by the name derived from the journal's lock file.
 *
 * The messages (first byte the type; integers native, the peer is the
 * same machine; strings NUL-terminated):
 *   daemon -> supervisor
 *     'H' u32 version                 hello; the answer is 'H'
 *     'S' start (below)               start a try; its end comes as 'E'
 *     's' start, its bytes in an fd   the same, for a start too big for a packet
 *     'W' base                        watch a try: 'E' when it has ended, 'U' when unknown
 *     'D'                             every try the daemon needs is watched: drop other ends
 *     'T' base / 'K' base             stop (SIGTERM to every process, SIGKILL after the grace) / kill
 *     'F' base...                     the daemon has recorded these ends: forget them
 *   supervisor -> daemon
 *     'H' u32 version, u32 pid
 *     'E' u8 how, i32 code, f64 ended, base
 *     'U' base
 * A start: u32 grace_ms, u32 argc, u32 envc, u32 n_secrets, u8 flags
 * (1: stdin, 2: conf), then base, cwd ("" for none), the conf (with flag
 * 2), argv..., env..., secrets... The try's folder is made and the conf
 * written to <base>.conf.json before the task runs. With a stdin
 * the task's standard input comes as the first fd of the
 * packet (SCM_RIGHTS). With secrets the task's output reaches its log
 * through a pipe and each secret in it becomes "***", as under a shim.
 *
 * The journal: one line per record, fields split by tabs, strings
 * escaped (\\, \t, \n):
 *   S seq pid cgroup base     a try started
 *   E seq how code ended      it ended (how: exit, signal, vanished)
 *   F seq                     the daemon recorded its end
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_EXEC_SUPERVISOR_H
#define DAGD_EXEC_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dagd/model.h"
#include "dagd/util.h"

#define DAGD_SUP_VERSION 1u
/* A start bigger than this goes through an in-memory file. */
#define DAGD_SUP_INLINE_MAX (60 * 1024)
/* Room for any packet but a start given by fd. */
#define DAGD_SUP_PACKET_MAX (DAGD_SUP_INLINE_MAX + 1024)

/* The supervisor's files for a state file, and its socket's name. */
typedef struct dagd_sup_paths {
  char *journal;   /* "<state>.supervisor" */
  char *lock;      /* "<state>.supervisor.lock", locked for the supervisor's life */
} dagd_sup_paths;
void dagd_sup_paths_init(dagd_sup_paths *p, const char *state);
void dagd_sup_paths_close(dagd_sup_paths *p);
/* The abstract socket name for the lock file open as fd (NUL first);
 * its length. */
size_t dagd_sup_socket_name(int lock_fd, char *out, size_t size);

/* A decoded start; the strings point into the packet. */
typedef struct dagd_sup_start {
  int grace_ms;
  bool has_stdin;
  const char *base, *cwd;  /* cwd NULL: none */
  const char *conf;        /* written to <base>.conf.json; NULL: none */
  char **argv, **env;      /* NULL-terminated, allocated */
  char **secrets;          /* NULL-terminated, allocated; empty: no masking */
} dagd_sup_start;

void dagd_sup_encode_start(dagd_buf *out, const char *base, const char *cwd, char *const *argv, char *const *env,
                           const char *const *secrets, int grace_ms, bool has_stdin, const char *conf);
/* false when the packet is not a well-formed start. */
bool dagd_sup_decode_start(const char *p, size_t len, dagd_sup_start *out);
void dagd_sup_start_close(dagd_sup_start *s);

/* A packet of type t with one string. */
void dagd_sup_encode_str(dagd_buf *out, char t, const char *s);
/* The string of such a packet, NULL when it holds none. */
const char *dagd_sup_decode_str(const char *p, size_t len);
void dagd_sup_encode_end(dagd_buf *out, const dagd_try_result *r, double ended, const char *base);
bool dagd_sup_decode_end(const char *p, size_t len, dagd_try_result *r, double *ended, const char **base);

/* One journal record. */
typedef struct dagd_sup_record {
  char kind;           /* 'S', 'E', 'F' */
  long long seq;
  pid_t pid;
  char *cgroup, *base; /* 'S'; allocated */
  dagd_try_result r;   /* 'E' */
  double ended;
} dagd_sup_record;

void dagd_sup_journal_start(dagd_buf *out, long long seq, pid_t pid, const char *cgroup, const char *base);
void dagd_sup_journal_end(dagd_buf *out, long long seq, const dagd_try_result *r, double ended);
void dagd_sup_journal_forget(dagd_buf *out, long long seq);
/* Parses one line (without its newline); false when it is not a whole
 * record (a torn last line after a power loss, say). */
bool dagd_sup_journal_parse(const char *line, size_t len, dagd_sup_record *rec);
void dagd_sup_record_close(dagd_sup_record *rec);

#endif
