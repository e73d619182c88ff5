/* The try supervisor (see supervisor.h for what it is and its protocol).
 *
 * One epoll loop: the listening socket, the daemon's connections, a
 * signalfd for SIGCHLD and SIGTERM, and the cgroup.events file of a try
 * whose main process has ended while others it started still run.
 *
 * A try: its cgroup "dagd-<tag>-<seq>" is made below the supervisor's own,
 * the task is cloned straight into it, its main process reaped here. The
 * try is over when its main process has ended and its cgroup is empty
 * (the rmdir succeeds): what the main process leaves running gets SIGTERM
 * and, after the grace, cgroup.kill, as under a shim. Its start and its
 * end go to the journal before the daemon hears of them; an end stays in
 * the journal and in memory until the daemon says it has recorded it.
 *
 * The supervisor holds the lock file for its life. A new one (after the
 * last was killed) reads the journal: a try that had started and not
 * ended lost its supervisor, so it is killed (its cgroup) and recorded as
 * vanished, to be retried as its retries allow; ends already recorded
 * keep their true exit codes. It leaves when no daemon is connected and
 * no try runs.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "dagd/err.h"
#include "dagd/exec.h"
#include "dagd/map.h"
#include "dagd/mask.h"
#include "supervisor.h"

extern char **environ;

/* How long a new supervisor waits for its first daemon. */
#define FIRST_CLIENT_MS 10000
/* The journal is rewritten when it is this much bigger than its live part. */
#define JOURNAL_SLACK (1 << 20)

enum { W_LISTEN, W_SIGNAL, W_CONN, W_EVENTS, W_OUTPUT };

typedef struct sup_watch {
  int kind;
  void *ptr;
} sup_watch;

typedef struct sup_packet {
  struct sup_packet *next;
  size_t len;
  char data[];
} sup_packet;

typedef struct sup_conn {
  sup_watch w;
  int fd;
  bool dead;          /* closed; freed at the top of the next loop turn */
  sup_packet *out, *out_tail; /* waiting for room in the socket */
  struct sup_conn *prev, *next;
} sup_conn;

typedef struct sup_try {
  char *base;
  pid_t pid;          /* key in by_pid until the main process is reaped */
  long long seq;
  char *cgroup;       /* "" without one */
  int grace_ms;
  sup_conn *watcher;
  bool main_done, ended;
  int status;
  dagd_try_result r;
  double ended_at;
  long term_at, kill_at;  /* monotonic ms, -1: not yet */
  sup_watch ev;           /* its cgroup.events, while waiting for it to empty */
  int events_fd;
  /* With secrets to mask: the task's output comes through a pipe. */
  sup_watch ow;
  int out_fd, log_fd;
  dagd_mask *mask;
  struct sup_try *prev, *next;            /* every try */
  struct sup_try *tprev, *tnext;          /* tries with a deadline */
  bool timed;
  bool dead;          /* forgotten; freed at the top of the next loop turn */
} sup_try;

typedef struct sup {
  int ep, lock, journal, listen, sigfd;
  sup_watch wlisten, wsig;
  char own[4096];         /* the supervisor's cgroup */
  char tag[40];           /* in each try's cgroup name */
  const char *journal_path;
  size_t journal_bytes;
  dagd_map by_base, by_pid;
  sup_try *tries, *timed;
  sup_try *dead_tries;    /* through next, freed when no event can name them */
  sup_conn *dead_conns;
  size_t n_tries, live;
  sup_conn *conns;
  long long next_seq;
  bool had_client, leaving;
  long started_ms;
} sup;

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000) / 1e6;
}

static void say(const char *fmt, const char *a, const char *b) {
  char line[4600];
  int n = snprintf(line, sizeof(line), "dagd supervisor: ");
  n += snprintf(line + n, sizeof(line) - (size_t)n, fmt, a, b);
  if (n > (int)sizeof(line) - 2) n = (int)sizeof(line) - 2;
  line[n++] = '\n';
  if (write(2, line, (size_t)n) < 0) { /* nowhere else to say it */
  }
}

/* --- the journal --- */

static void journal_write(sup *s, const dagd_buf *b) {
  size_t off = 0;
  while (off < b->len) {
    ssize_t n = write(s->journal, b->data + off, b->len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      say("cannot write the journal %s: %s", s->journal_path, strerror(errno));
      return;
    }
    off += (size_t)n;
  }
  s->journal_bytes += b->len;
}

static void journal_try(dagd_buf *b, const sup_try *t) {
  dagd_sup_journal_start(b, t->seq, t->pid, t->cgroup, t->base);
  if (t->ended) dagd_sup_journal_end(b, t->seq, &t->r, t->ended_at);
}

/* Writes what the journal must hold (the tries in memory) to a new file
 * and puts it in the old one's place. */
static int journal_rewrite(sup *s) {
  dagd_buf b;
  dagd_buf_init(&b);
  for (sup_try *t = s->tries; t; t = t->next) journal_try(&b, t);
  char *tmp = dagd_asprintf("%s.tmp", s->journal_path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int rc = -1;
  if (fd >= 0) {
    ssize_t n = b.len ? write(fd, b.data, b.len) : 0;
    if (n == (ssize_t)b.len && rename(tmp, s->journal_path) == 0) rc = 0;
    if (rc < 0) {
      close(fd);
      unlink(tmp);
    }
  }
  if (rc == 0) {
    if (s->journal >= 0) close(s->journal);
    s->journal = fd;
    if (fcntl(fd, F_SETFL, O_APPEND) < 0 || lseek(fd, 0, SEEK_END) < 0) rc = -1;
    s->journal_bytes = b.len;
  } else {
    say("cannot rewrite the journal %s: %s", s->journal_path, strerror(errno));
  }
  free(tmp);
  dagd_buf_close(&b);
  return rc;
}

static void maybe_compact(sup *s) {
  if (s->journal_bytes > JOURNAL_SLACK + s->n_tries * 512) journal_rewrite(s);
}

/* --- tries --- */

static void timed_add(sup *s, sup_try *t) {
  if (t->timed) return;
  t->timed = true;
  t->tprev = NULL;
  t->tnext = s->timed;
  if (s->timed) s->timed->tprev = t;
  s->timed = t;
}

static void timed_del(sup *s, sup_try *t) {
  if (!t->timed) return;
  t->timed = false;
  if (t->tprev) t->tprev->tnext = t->tnext;
  else s->timed = t->tnext;
  if (t->tnext) t->tnext->tprev = t->tprev;
  t->tprev = t->tnext = NULL;
}


/* Copies what the task's pipe holds now (at most max_chunks reads) to
 * its log, masked; false at the pipe's end. */
static bool output_relay(sup_try *t, int max_chunks) {
  char chunk[65536];
  dagd_buf out;
  dagd_buf_init(&out);
  bool open = true;
  for (int i = 0; i < max_chunks; i++) {
    ssize_t n = read(t->out_fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {
      open = false;
      break;
    }
    dagd_buf_reset(&out);
    dagd_mask_feed(t->mask, chunk, (size_t)n, &out);
    dagd_try_write_all(t->log_fd, out.data, out.len); /* a full disk loses output, never the try */
    explicit_bzero(chunk, (size_t)n);
  }
  if (out.data) explicit_bzero(out.data, out.cap);
  dagd_buf_close(&out);
  return open;
}

/* The end of the task's output: what the pipe still holds (every writer
 * is gone, or a stranger holds it: then what is there now), then the
 * masker's last bytes; the secrets are wiped. */
static void output_close(sup *s, sup_try *t) {
  if (t->mask == NULL) return;
  if (t->out_fd >= 0) {
    output_relay(t, 64); /* bounded, should a stranger keep writing */
    epoll_ctl(s->ep, EPOLL_CTL_DEL, t->out_fd, NULL);
    close(t->out_fd);
    t->out_fd = -1;
  }
  dagd_buf out;
  dagd_buf_init(&out);
  dagd_mask_end(t->mask, &out);
  dagd_try_write_all(t->log_fd, out.data, out.len);
  if (out.data) explicit_bzero(out.data, out.cap);
  dagd_buf_close(&out);
  dagd_mask_close(t->mask);
  free(t->mask);
  t->mask = NULL;
  close(t->log_fd);
  t->log_fd = -1;
}

static sup_try *try_new(sup *s, const char *base, long long seq, pid_t pid, const char *cgroup) {
  sup_try *t = dagd_calloc(1, sizeof(*t));
  t->base = dagd_strdup(base);
  t->seq = seq;
  t->pid = pid;
  t->cgroup = dagd_strdup(cgroup ? cgroup : "");
  t->term_at = t->kill_at = -1;
  t->events_fd = -1;
  t->ev = (sup_watch){W_EVENTS, t};
  t->out_fd = t->log_fd = -1;
  t->ow = (sup_watch){W_OUTPUT, t};
  t->next = s->tries;
  if (s->tries) s->tries->prev = t;
  s->tries = t;
  s->n_tries++;
  /* A newer try of the same base (a reschedule poke) is the one asked for. */
  dagd_map_put(&s->by_base, t->base, strlen(t->base), t);
  if (seq >= s->next_seq) s->next_seq = seq + 1;
  return t;
}

static void try_free(sup *s, sup_try *t) {
  if (dagd_map_get(&s->by_base, t->base, strlen(t->base)) == t) dagd_map_del(&s->by_base, t->base, strlen(t->base));
  if (!t->main_done && t->pid > 0 && dagd_map_get(&s->by_pid, &t->pid, sizeof(t->pid)) == t)
    dagd_map_del(&s->by_pid, &t->pid, sizeof(t->pid));
  timed_del(s, t);
  if (t->events_fd >= 0) close(t->events_fd);
  output_close(s, t);
  if (t->prev) t->prev->next = t->next;
  else s->tries = t->next;
  if (t->next) t->next->prev = t->prev;
  s->n_tries--;
  t->dead = true;
  t->prev = NULL;
  t->next = s->dead_tries;
  s->dead_tries = t;
}

/* Frees what was closed in the last turn: an event of that turn may
 * still have named it. */
static void free_dead(sup *s) {
  while (s->dead_tries) {
    sup_try *t = s->dead_tries;
    s->dead_tries = t->next;
    free(t->base);
    free(t->cgroup);
    free(t);
  }
  while (s->dead_conns) {
    sup_conn *c = s->dead_conns;
    s->dead_conns = c->next;
    free(c);
  }
}

/* --- sending --- */

static void conn_flush(sup *s, sup_conn *c) {
  while (c->out) {
    sup_packet *p = c->out;
    ssize_t n = send(c->fd, p->data, p->len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    c->out = p->next; /* sent, or the peer is gone: either way done with */
    if (c->out == NULL) c->out_tail = NULL;
    free(p);
  }
  struct epoll_event ev = {.events = EPOLLIN | (c->out ? EPOLLOUT : 0), .data.ptr = &c->w};
  epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_send(sup *s, sup_conn *c, const dagd_buf *b) {
  if (c->out == NULL) {
    ssize_t n;
    do n = send(c->fd, b->data, b->len, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0 || errno != EAGAIN) return;
  }
  sup_packet *p = dagd_malloc(sizeof(*p) + b->len);
  p->next = NULL;
  p->len = b->len;
  memcpy(p->data, b->data, b->len);
  if (c->out_tail) c->out_tail->next = p;
  else c->out = p;
  c->out_tail = p;
  conn_flush(s, c);
}

static void send_end(sup *s, sup_try *t) {
  if (t->watcher == NULL) return;
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_sup_encode_end(&b, &t->r, t->ended_at, t->base);
  conn_send(s, t->watcher, &b);
  dagd_buf_close(&b);
}

/* --- the end of a try --- */

static void try_ended(sup *s, sup_try *t, const dagd_try_result *r) {
  if (t->ended) return;
  t->ended = true;
  t->r = *r;
  t->ended_at = wall_now();
  s->live--;
  timed_del(s, t);
  output_close(s, t); /* the whole output is in the log before the end is told */
  if (t->events_fd >= 0) {
    epoll_ctl(s->ep, EPOLL_CTL_DEL, t->events_fd, NULL);
    close(t->events_fd);
    t->events_fd = -1;
  }
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_sup_journal_end(&b, t->seq, r, t->ended_at);
  journal_write(s, &b); /* before the daemon hears of it */
  dagd_buf_close(&b);
  send_end(s, t);
}

static dagd_try_result result_of(int status) {
  if (WIFSIGNALED(status)) return (dagd_try_result){DAGD_TRY_SIGNALED, WTERMSIG(status)};
  return (dagd_try_result){DAGD_TRY_EXITED, WEXITSTATUS(status)};
}

/* The main process has ended: the try is over once its cgroup is empty;
 * until then what is left gets SIGTERM, and the grace runs. */
static void try_settle(sup *s, sup_try *t) {
  if (t->ended || !t->main_done) return;
  if (t->cgroup[0] == '\0' || rmdir(t->cgroup) == 0 || errno == ENOENT) {
    try_ended(s, t, &(dagd_try_result){result_of(t->status).how, result_of(t->status).code});
    return;
  }
  if (t->term_at < 0) {
    dagd_cgroup_signal(t->cgroup, SIGTERM); /* what the main process left running */
    t->term_at = now_ms();
    timed_add(s, t);
  }
  if (t->events_fd < 0) {
    t->events_fd = dagd_cgroup_file(t->cgroup, "cgroup.events", O_RDONLY);
    struct epoll_event ev = {.events = EPOLLPRI, .data.ptr = &t->ev};
    if (t->events_fd >= 0) epoll_ctl(s->ep, EPOLL_CTL_ADD, t->events_fd, &ev);
    /* Emptied between the rmdir and the watch: no event would come. */
    if (rmdir(t->cgroup) == 0) try_ended(s, t, &(dagd_try_result){result_of(t->status).how, result_of(t->status).code});
  }
}

static void reap(sup *s) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return;
    sup_try *t = dagd_map_del(&s->by_pid, &pid, sizeof(pid));
    if (t == NULL) continue; /* a process a task left, reparented here */
    t->main_done = true;
    t->status = status;
    try_settle(s, t);
  }
}

/* A stop: SIGTERM to every process of the try, SIGKILL after the grace. */
static void try_stop(sup *s, sup_try *t) {
  if (t->ended || t->term_at >= 0) return;
  if (t->cgroup[0] && !dagd_cgroup_signal(t->cgroup, SIGTERM)) kill(-t->pid, SIGTERM);
  t->term_at = now_ms();
  timed_add(s, t);
}

static void try_kill(sup_try *t) {
  if (t->ended) return;
  if (!t->cgroup[0] || !dagd_cgroup_kill(t->cgroup)) kill(-t->pid, SIGKILL);
}

/* Deadlines: the grace of a try being stopped ran out. The wait until
 * the next one, -1 without any. */
static int run_deadlines(sup *s) {
  long now = now_ms();
  int wait = -1;
  for (sup_try *t = s->timed, *next; t; t = next) {
    next = t->tnext;
    long at = t->kill_at >= 0 ? t->kill_at + 100 : t->term_at + t->grace_ms;
    if (now >= at) {
      try_kill(t); /* again every 100 ms: a fork may race the kill */
      t->kill_at = now;
      at = now + 100;
    }
    int left = (int)(at - now);
    if (wait < 0 || left < wait) wait = left;
  }
  return wait;
}

/* --- starting a try --- */

/* The try's folder and its conf file: false (errno set) when they
 * cannot be made, said on the supervisor's stderr (the daemon's log). */
static bool make_try_files(const dagd_sup_start *st) {
  int made = dagd_try_make_folder(st->base);
  if (made < 0) {
    say("cannot create the log folder of %s: %s", st->base, strerror(-made));
    errno = -made;
    return false;
  }
  dagd_err err;
  dagd_err_init(&err);
  if (st->conf && dagd_try_write_conf(st->base, st->conf, &err) < 0) {
    say("%s", err.msg, NULL);
    errno = err.cause ? err.cause : EIO;
    return false;
  }
  return true;
}

/* The task, in the child: its own process group, its folder and conf
 * (unless made already), output to the log, $DAGD_OUTPUT made 0600, its
 * input, its working folder; then the command. */
static void child_run(const dagd_sup_start *st, const dagd_try_paths *paths, int stdin_fd, int pipe_fd) {
  setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (pipe_fd < 0 && !make_try_files(st)) _exit(127);
  int log = pipe_fd >= 0 ? pipe_fd : open(paths->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0) {
    say("cannot open %s: %s", paths->log, strerror(errno));
    _exit(127);
  }
  int out = open(paths->out, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (out < 0 || fchmod(out, 0600) < 0) {
    dprintf(log, "dagd supervisor: cannot create %s: %s\n", paths->out, strerror(errno));
    _exit(127);
  }
  close(out);
  int input = stdin_fd;
  if (input >= 0) lseek(input, 0, SEEK_SET);
  else input = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (input >= 0 && dup2(input, 0) < 0) _exit(127);
  dup2(log, 1);
  dup2(log, 2);
  if (st->cwd && chdir(st->cwd) < 0) {
    dprintf(2, "dagd supervisor: cannot change to %s: %s\n", st->cwd, strerror(errno));
    _exit(127);
  }
  environ = st->env;
  execvp(st->argv[0], st->argv);
  dprintf(2, "dagd supervisor: cannot execute %s: %s\n", st->argv[0], strerror(errno));
  _exit(127);
}

/* Clones the task into the cgroup open as cgfd: born there, never
 * moved (a move waits for the kernel's cgroup lock). A raw clone3 runs
 * no fork handlers; the child only sets itself up and execs. Where that
 * fails (a kernel before 5.7) a plain fork, and the child joins itself. */
static pid_t clone_into(int cgfd, const char *cgroup) {
  if (cgfd >= 0) {
    struct clone_args args = {.flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (uint64_t)cgfd};
    long pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid >= 0) return (pid_t)pid;
  }
  pid_t pid = fork();
  if (pid == 0 && cgfd >= 0) {
    int procs = dagd_cgroup_file(cgroup, "cgroup.procs", O_WRONLY);
    if (procs < 0 || write(procs, "0", 1) != 1) _exit(127);
    close(procs);
  }
  return pid;
}

static void start_try(sup *s, sup_conn *c, const dagd_sup_start *st, int stdin_fd) {
  sup_try *old = dagd_map_get(&s->by_base, st->base, strlen(st->base));
  if (old && !old->ended) { /* started twice: the one that runs is the one to watch */
    old->watcher = c;
    return;
  }
  long long seq = s->next_seq++;
  char cgroup[4200] = "";
  int cgfd = -1;
  if (s->own[0]) {
    snprintf(cgroup, sizeof(cgroup), "%s/dagd-%s-%lld", s->own, s->tag, seq);
    if (mkdir(cgroup, 0755) == 0 || errno == EEXIST) cgfd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgfd < 0) {
      say("cannot make the cgroup %s: %s", cgroup, strerror(errno));
      rmdir(cgroup);
      cgroup[0] = '\0';
    }
  }
  dagd_try_paths paths;
  dagd_try_paths_init(&paths, st->base);
  /* Secrets to mask: the output through a pipe, the log written here. */
  int pipefd[2] = {-1, -1}, log_fd = -1;
  if (st->secrets[0]) {
    if (make_try_files(st)) log_fd = open(paths.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
      say("cannot set up the masked output of %s: %s", st->base, strerror(errno));
      if (log_fd >= 0) close(log_fd);
      log_fd = -1;
    }
  }
  pid_t pid = st->secrets[0] && log_fd < 0 ? (errno = EIO, -1) : clone_into(cgfd, cgroup);
  if (pid == 0) child_run(st, &paths, stdin_fd, pipefd[1]);
  int saved = errno;
  dagd_try_paths_close(&paths);
  if (pipefd[1] >= 0) close(pipefd[1]);
  if (cgfd >= 0) close(cgfd);
  sup_try *t = try_new(s, st->base, seq, pid > 0 ? pid : 0, cgroup);
  t->grace_ms = st->grace_ms > 0 ? st->grace_ms : 10000;
  t->watcher = c;
  s->live++;
  if (log_fd >= 0) {
    t->log_fd = log_fd;
    t->mask = dagd_calloc(1, sizeof(*t->mask));
    dagd_mask_init(t->mask);
    for (char **v = st->secrets; *v; v++) dagd_mask_add(t->mask, *v);
    if (pid > 0) {
      t->out_fd = pipefd[0];
      fcntl(t->out_fd, F_SETFL, O_NONBLOCK);
      struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &t->ow};
      epoll_ctl(s->ep, EPOLL_CTL_ADD, t->out_fd, &ev);
    } else {
      close(pipefd[0]);
    }
  }
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_sup_journal_start(&b, seq, t->pid, cgroup, st->base);
  journal_write(s, &b);
  dagd_buf_close(&b);
  if (pid < 0) {
    say("cannot start a try of %s: %s", st->base, strerror(saved));
    if (cgroup[0]) rmdir(cgroup);
    t->cgroup[0] = '\0';
    t->main_done = true;
    try_ended(s, t, &(dagd_try_result){DAGD_TRY_EXITED, 127});
    return;
  }
  setpgid(pid, pid); /* also here, so no signal can race the child's own call */
  dagd_map_put(&s->by_pid, &t->pid, sizeof(t->pid), t);
  maybe_compact(s);
}

/* --- the daemon's packets --- */

static void conn_close(sup *s, sup_conn *c) {
  for (sup_try *t = s->tries; t; t = t->next)
    if (t->watcher == c) t->watcher = NULL;
  epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  while (c->out) {
    sup_packet *p = c->out;
    c->out = p->next;
    free(p);
  }
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->dead = true;
  c->next = s->dead_conns;
  s->dead_conns = c;
}

static bool conn_read(sup *s, sup_conn *c);

/* Every try the daemon needs is watched by c: drop the ends no one will
 * ask for (their tries were recorded some other way). */
static void drop_unwatched(sup *s, sup_conn *c) {
  dagd_buf b;
  dagd_buf_init(&b);
  for (sup_try *t = s->tries, *next; t; t = next) {
    next = t->next;
    if (!t->ended || t->watcher == c) continue;
    dagd_sup_journal_forget(&b, t->seq);
    try_free(s, t);
  }
  if (b.len) journal_write(s, &b);
  dagd_buf_close(&b);
  maybe_compact(s);
}

static void handle(sup *s, sup_conn *c, const char *p, size_t len, int *fds, size_t n_fds) {
  dagd_buf b;
  dagd_buf_init(&b);
  const char *base = NULL;
  switch (p[0]) {
  case 'H': {
    /* A new daemon: what an earlier one sent before it went is read
     * first, so that its last starts are known before any watch. */
    for (sup_conn *o = s->conns, *next; o; o = next) {
      next = o->next;
      if (o != c) {
        conn_read(s, o);
        conn_close(s, o);
      }
    }
    uint32_t v[3] = {DAGD_SUP_VERSION, (uint32_t)getpid(), s->own[0] ? 1u : 0u};
    dagd_buf_putc(&b, 'H');
    dagd_buf_append(&b, v, sizeof(v));
    conn_send(s, c, &b);
    break;
  }
  case 'S':
  case 's': {
    char *body = NULL;
    size_t body_len = len;
    const char *msg = p;
    int stdin_fd = -1, body_fd = -1;
    size_t want = (p[0] == 's') + 0;
    dagd_sup_start st;
    bool ok = false;
    if (p[0] == 's') {
      /* The start is in the last fd given. */
      body_fd = n_fds > 0 ? fds[n_fds - 1] : -1;
      struct stat sb;
      if (body_fd >= 0 && fstat(body_fd, &sb) == 0 && sb.st_size > 0 && sb.st_size < (1 << 28)) {
        body = dagd_malloc((size_t)sb.st_size);
        if (pread(body_fd, body, (size_t)sb.st_size, 0) == sb.st_size) {
          msg = body;
          body_len = (size_t)sb.st_size;
          ok = true;
        }
      }
    } else {
      ok = true;
    }
    if (ok) ok = dagd_sup_decode_start(msg, body_len, &st);
    if (ok && st.has_stdin) {
      if (n_fds < want + 1) ok = false;
      else stdin_fd = fds[0];
    }
    if (ok) start_try(s, c, &st, stdin_fd);
    else say("a malformed start from the daemon%s%s", "", "");
    if (ok) dagd_sup_start_close(&st);
    free(body);
    break;
  }
  case 'W':
    if ((base = dagd_sup_decode_str(p, len)) == NULL) break;
    {
      sup_try *t = dagd_map_get(&s->by_base, base, strlen(base));
      if (t == NULL) {
        dagd_sup_encode_str(&b, 'U', base);
        conn_send(s, c, &b);
      } else {
        t->watcher = c;
        if (t->ended) send_end(s, t);
      }
    }
    break;
  case 'D': drop_unwatched(s, c); break;
  case 'F':
    /* One or more bases, each NUL-terminated. */
    for (size_t at = 1; at < len;) {
      const char *one = p + at;
      const char *nul = memchr(one, '\0', len - at);
      if (nul == NULL) break;
      at += (size_t)(nul - one) + 1;
      sup_try *t = dagd_map_get(&s->by_base, one, strlen(one));
      if (t && t->ended) {
        dagd_sup_journal_forget(&b, t->seq);
        try_free(s, t);
      }
    }
    if (b.len) journal_write(s, &b);
    maybe_compact(s);
    break;
  case 'T':
  case 'K':
    if ((base = dagd_sup_decode_str(p, len)) == NULL) break;
    {
      sup_try *t = dagd_map_get(&s->by_base, base, strlen(base));
      if (t == NULL) break;
      if (p[0] == 'T') try_stop(s, t);
      else try_kill(t);
    }
    break;
  default: say("an unknown packet from the daemon%s%s", "", ""); break;
  }
  dagd_buf_close(&b);
}

/* Reads and handles the packets c has now; false at its end. */
static bool conn_read(sup *s, sup_conn *c) {
  static char buf[DAGD_SUP_PACKET_MAX];
  while (!c->dead) {
    union {
      struct cmsghdr h;
      char space[CMSG_SPACE(sizeof(int) * 4)];
    } ctl;
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.space, .msg_controllen = sizeof(ctl.space)};
    ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN;
    if (n == 0) return false;
    int fds[4];
    size_t n_fds = 0;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
      if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < k && n_fds < 4; i++) memcpy(&fds[n_fds++], CMSG_DATA(h) + i * sizeof(int), sizeof(int));
    }
    if (!(mh.msg_flags & MSG_TRUNC)) handle(s, c, buf, (size_t)n, fds, n_fds);
    for (size_t i = 0; i < n_fds; i++) close(fds[i]);
  }
  return false;
}

static void accept_conns(sup *s) {
  for (;;) {
    int fd = accept4(s->listen, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    /* Only the user the supervisor runs as (or root) may drive it. */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || (cred.uid != geteuid() && cred.uid != 0)) {
      close(fd);
      continue;
    }
    sup_conn *c = dagd_calloc(1, sizeof(*c));
    c->fd = fd;
    c->w = (sup_watch){W_CONN, c};
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->had_client = true;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->w};
    epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev);
  }
}

/* --- start --- */

/* Reads the journal: the tries whose end no daemon has recorded. A try
 * with no end lost its supervisor: killed and recorded as vanished. */
static void load_journal(sup *s) {
  int fd = open(s->journal_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  dagd_buf all;
  dagd_buf_init(&all);
  char chunk[65536];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof(chunk))) > 0) dagd_buf_append(&all, chunk, (size_t)n);
  close(fd);
  dagd_map by_seq;
  dagd_map_init(&by_seq);
  for (size_t at = 0; at < all.len;) {
    char *nl = memchr(all.data + at, '\n', all.len - at);
    size_t len = nl ? (size_t)(nl - (all.data + at)) : all.len - at;
    dagd_sup_record rec;
    if (nl && dagd_sup_journal_parse(all.data + at, len, &rec)) {
      sup_try *t = rec.kind == 'S' ? NULL : dagd_map_get(&by_seq, &rec.seq, sizeof(rec.seq));
      if (rec.kind == 'S') {
        t = try_new(s, rec.base, rec.seq, rec.pid, rec.cgroup);
        t->main_done = true;
        dagd_map_put(&by_seq, &t->seq, sizeof(t->seq), t);
      } else if (t && rec.kind == 'E') {
        t->ended = true;
        t->r = rec.r;
        t->ended_at = rec.ended;
      } else if (t && rec.kind == 'F') {
        dagd_map_del(&by_seq, &t->seq, sizeof(t->seq));
        try_free(s, t);
      }
      dagd_sup_record_close(&rec);
    }
    at += len + 1;
  }
  dagd_map_close(&by_seq);
  dagd_buf_close(&all);
  for (sup_try *t = s->tries; t; t = t->next) {
    if (t->ended) continue;
    /* Its supervisor was killed: nothing can learn how its task ends. */
    if (t->cgroup[0]) {
      dagd_cgroup_kill(t->cgroup);
      for (int i = 0; i < 200 && rmdir(t->cgroup) < 0 && errno == EBUSY; i++) usleep(1000);
    }
    t->ended = true;
    t->r = (dagd_try_result){DAGD_TRY_VANISHED, 0};
    t->ended_at = wall_now();
    say("%s: its supervisor was killed while it ran; it counts as lost%s", t->base, "");
  }
}

/* Kills and removes what is left of this state file's try cgroups that
 * no record names (a supervisor killed between a start and its record). */
static void sweep_cgroups(sup *s) {
  if (!s->own[0]) return;
  DIR *dir = opendir(s->own);
  if (dir == NULL) return;
  char prefix[64];
  int pl = snprintf(prefix, sizeof(prefix), "dagd-%s-", s->tag);
  struct dirent *de;
  while ((de = readdir(dir))) {
    if (strncmp(de->d_name, prefix, (size_t)pl) != 0) continue;
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", s->own, de->d_name);
    dagd_cgroup_kill(path);
    for (int i = 0; i < 200 && rmdir(path) < 0 && errno == EBUSY; i++) usleep(1000);
  }
  closedir(dir);
}

/* Where tries can get cgroups of their own: the supervisor's cgroup, if
 * a folder can be made in it. */
static void find_cgroup(sup *s) {
  if (!dagd_cgroup_own(s->own, sizeof(s->own))) {
    s->own[0] = '\0';
    return;
  }
  char probe[4200];
  snprintf(probe, sizeof(probe), "%s/dagd-%s-probe", s->own, s->tag);
  if ((mkdir(probe, 0755) < 0 && errno != EEXIST) || rmdir(probe) < 0) s->own[0] = '\0';
}

static int serve(sup *s) {
  struct epoll_event evs[64];
  for (;;) {
    free_dead(s);
    int wait = run_deadlines(s);
    if (s->conns == NULL && s->live == 0) {
      if (s->had_client || s->leaving) return 0;
      long left = s->started_ms + FIRST_CLIENT_MS - now_ms();
      if (left <= 0) return 0;
      if (wait < 0 || left < wait) wait = (int)left;
    }
    int n = epoll_wait(s->ep, evs, DAGD_ARRAY_LEN(evs), wait);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; i++) {
      sup_watch *w = evs[i].data.ptr;
      if (w->kind == W_LISTEN) {
        if (!s->leaving) accept_conns(s);
      } else if (w->kind == W_SIGNAL) {
        struct signalfd_siginfo si;
        while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
          if (si.ssi_signo == SIGTERM) s->leaving = true; /* leave once the tries are over */
        reap(s);
      } else if (w->kind == W_OUTPUT) {
        sup_try *t = w->ptr;
        if (t->dead || t->out_fd < 0) continue;
        if (!output_relay(t, 16)) { /* every writer is gone */
          epoll_ctl(s->ep, EPOLL_CTL_DEL, t->out_fd, NULL);
          close(t->out_fd);
          t->out_fd = -1;
        }
      } else if (w->kind == W_EVENTS) {
        sup_try *t = w->ptr;
        char ack[128];
        if (t->dead || t->ended) continue;
        /* Reading it is what ends the event (kernfs' poll). */
        if (pread(t->events_fd, ack, sizeof(ack), 0) < 0) { /* the rmdir below decides */
        }
        if (t->cgroup[0] && rmdir(t->cgroup) == 0)
          try_ended(s, t, &(dagd_try_result){result_of(t->status).how, result_of(t->status).code});
      } else {
        sup_conn *c = w->ptr;
        if (c->dead) continue;
        if (evs[i].events & EPOLLOUT) conn_flush(s, c);
        if (!conn_read(s, c) || (evs[i].events & (EPOLLHUP | EPOLLERR))) conn_close(s, c);
      }
    }
  }
}

int dagd_supervisor_main(int argc, char **argv) {
  const char *state = NULL;
  int ready = -1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) state = argv[++i];
    else if (strcmp(argv[i], "--ready-fd") == 0 && i + 1 < argc) ready = atoi(argv[++i]);
    else return 2;
  }
  if (state == NULL) return 2;
  if (ready >= 0) fcntl(ready, F_SETFD, FD_CLOEXEC);
  sup s = {.ep = -1, .lock = -1, .journal = -1, .listen = -1, .sigfd = -1, .started_ms = now_ms()};
  dagd_map_init(&s.by_base);
  dagd_map_init(&s.by_pid);
  dagd_sup_paths paths;
  dagd_sup_paths_init(&paths, state);
  s.journal_path = paths.journal;
  int rc = 1;
  const char *answer = "F";
  s.lock = open(paths.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (s.lock < 0) {
    say("cannot open %s: %s", paths.lock, strerror(errno));
    goto out;
  }
  if (flock(s.lock, LOCK_EX | LOCK_NB) < 0) {
    answer = "B"; /* another supervisor serves this state file */
    rc = 0;
    goto out;
  }
  char name[108];
  size_t name_len = dagd_sup_socket_name(s.lock, name, sizeof(name));
  struct stat lst;
  fstat(s.lock, &lst);
  snprintf(s.tag, sizeof(s.tag), "%llx", (unsigned long long)lst.st_ino);
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGCHLD);
  sigaddset(&sigs, SIGTERM);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);
  s.sigfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  s.ep = epoll_create1(EPOLL_CLOEXEC);
  if (s.sigfd < 0 || s.ep < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 || name_len == 0) {
    say("cannot start: %s%s", strerror(errno), "");
    goto out;
  }
  find_cgroup(&s);
  load_journal(&s);
  sweep_cgroups(&s);
  if (journal_rewrite(&s) < 0) goto out;
  s.listen = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  memcpy(addr.sun_path, name, name_len);
  if (s.listen < 0 || bind(s.listen, (struct sockaddr *)&addr, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + name_len)) < 0 ||
      listen(s.listen, 16) < 0) {
    say("cannot listen: %s%s", strerror(errno), "");
    goto out;
  }
  s.wlisten = (sup_watch){W_LISTEN, NULL};
  s.wsig = (sup_watch){W_SIGNAL, NULL};
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s.wlisten};
  epoll_ctl(s.ep, EPOLL_CTL_ADD, s.listen, &ev);
  ev.data.ptr = &s.wsig;
  epoll_ctl(s.ep, EPOLL_CTL_ADD, s.sigfd, &ev);
  char pid_text[32];
  int pn = snprintf(pid_text, sizeof(pid_text), "%ld\n", (long)getpid());
  if (ftruncate(s.lock, 0) < 0 || pwrite(s.lock, pid_text, (size_t)pn, 0) != pn) { /* for people only */
  }
  /* Ready: says whether tries get cgroups of their own here. */
  if (ready >= 0) {
    if (write(ready, s.own[0] ? "C" : "R", 1) < 0) { /* the daemon went */
    }
    close(ready);
    ready = -1;
  }
  rc = serve(&s);
  /* No new daemon reaches a supervisor that is leaving. */
  close(s.listen);
  s.listen = -1;
  journal_rewrite(&s);
out:
  if (ready >= 0) {
    if (write(ready, answer, 1) < 0) {
    }
    close(ready);
  }
  while (s.conns) conn_close(&s, s.conns);
  while (s.tries) try_free(&s, s.tries);
  free_dead(&s);
  dagd_map_close(&s.by_base);
  dagd_map_close(&s.by_pid);
  dagd_sup_paths_close(&paths);
  return rc;
}
