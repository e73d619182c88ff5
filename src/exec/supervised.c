/* The daemon's side of the try supervisor (supervisor.h): finding it or
 * starting it, giving it tries, and handing their ends to the owner.
 *
 * The connection is made, and the supervisor started when none runs,
 * synchronously at the daemon's start (a bounded wait for its "ready").
 * Should the supervisor go while the daemon runs, a new one is started
 * the same way: it reads the journal, so the ends the old one recorded
 * keep their true exit codes and the tries it was running count as lost;
 * every try the daemon was waiting for is asked about again. Where no
 * supervisor can be had, tries start under shims as before.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dagd/log.h"
#include "local.h"
#include "supervisor.h"

/* How long the daemon waits for a supervisor it started to be ready, or
 * for an answer to its hello. */
#define READY_MS 5000

typedef struct out_packet {
  struct out_packet *next;
  int fds[2];
  size_t n_fds, len;
  char data[];
} out_packet;

struct sup_conn {
  dagd_exec *ex;
  int fd;
  uv_poll_t poll;
  out_packet *out, *out_tail;  /* waiting for room in the socket */
  bool lost;                   /* the supervisor went: closing */
};

/* A supervisor this daemon started: reaped when it exits. */
typedef struct sup_child {
  dagd_exec *ex;
  struct sup_child *next;
  pid_t pid;
  int pidfd;
  uv_poll_t poll;
} sup_child;

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool dagd__sup_up(const dagd_exec *ex) { return ex->sup && !ex->sup->lost; }

/* --- starting one --- */

static void child_closed(uv_handle_t *h) { free(h->data); }

/* Stops watching c; a supervisor still running then outlives this daemon. */
static void child_drop(sup_child *c) {
  for (sup_child **pp = &c->ex->children; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  close(c->pidfd);
  uv_close((uv_handle_t *)&c->poll, child_closed);
}

static void on_child_exit(uv_poll_t *h, int status, int events) {
  sup_child *c = h->data;
  (void)status;
  (void)events;
  while (waitpid(c->pid, NULL, WNOHANG) < 0 && errno == EINTR) {
  }
  child_drop(c);
}

/* Starts `<shim_path> supervise --state STATE --ready-fd 3` in a session
 * of its own and waits for its answer: 'C' ready with cgroups, 'R' ready
 * without, 'B' another already serves the state file, else it failed. */
static char spawn_supervisor(dagd_exec *ex) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0) return 'F';
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 3);
  posix_spawn_file_actions_addclosefrom_np(&fa, 4);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  char *args[] = {ex->shim_path, "supervise", "--state", ex->state, "--ready-fd", "3", NULL};
  extern char **environ;
  pid_t pid;
  int rc = posix_spawn(&pid, ex->shim_path, &fa, &at, args, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  close(pipefd[1]);
  if (rc != 0) {
    close(pipefd[0]);
    return 'F';
  }
  char answer = 'F';
  struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
  int r;
  do r = poll(&p, 1, READY_MS);
  while (r < 0 && errno == EINTR);
  if (r <= 0 || read(pipefd[0], &answer, 1) != 1) answer = 'F';
  close(pipefd[0]);
  /* Reap it when it exits: it is our child until this daemon goes. */
  int pidfd = (int)pidfd_open(pid, 0);
  if (pidfd >= 0) {
    sup_child *c = dagd_calloc(1, sizeof(*c));
    c->ex = ex;
    c->next = ex->children;
    ex->children = c;
    c->pid = pid;
    c->pidfd = pidfd;
    uv_poll_init(ex->loop, &c->poll, pidfd);
    c->poll.data = c;
    uv_poll_start(&c->poll, UV_READABLE, on_child_exit);
  }
  return answer;
}

/* Connects to the supervisor named by the lock file; -1 when none listens. */
static int connect_to(const dagd_sup_paths *paths) {
  int lock = open(paths->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0) return -1;
  char name[108];
  size_t len = dagd_sup_socket_name(lock, name, sizeof(name));
  close(lock);
  if (len == 0) return -1;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  memcpy(addr.sun_path, name, len);
  if (connect(fd, (struct sockaddr *)&addr, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0) {
    close(fd);
    return -1;
  }
  /* An abstract name can be taken by anyone: talk only to our own user. */
  struct ucred cred;
  socklen_t cl = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid != geteuid()) {
    close(fd);
    errno = EPERM;
    return -1;
  }
  return fd;
}

/* The hello and its answer, before the socket joins the loop: 1 when
 * it speaks this version, 0 when another, -1 without an answer. */
static int greet(int fd, bool *cgroups) {
  char hello[5] = {'H'};
  uint32_t v = DAGD_SUP_VERSION;
  memcpy(hello + 1, &v, sizeof(v));
  if (send(fd, hello, sizeof(hello), MSG_NOSIGNAL) != (ssize_t)sizeof(hello)) return -1;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (poll(&p, 1, READY_MS) <= 0) return -1;
  char answer[32];
  ssize_t n = recv(fd, answer, sizeof(answer), 0);
  uint32_t fields[3];
  if (n < 5 || answer[0] != 'H') return -1;
  memcpy(fields, answer + 1, 4);
  if (fields[0] != DAGD_SUP_VERSION || n != 1 + (ssize_t)sizeof(fields)) return 0;
  memcpy(fields, answer + 1, sizeof(fields));
  *cgroups = (fields[2] & 1u) != 0;
  return 1;
}

/* --- the connection on the loop --- */

static void on_conn(uv_poll_t *h, int status, int events);

static void conn_closed(uv_handle_t *h) {
  sup_conn *c = h->data;
  close(c->fd);
  while (c->out) {
    out_packet *p = c->out;
    c->out = p->next;
    for (size_t i = 0; i < p->n_fds; i++) close(p->fds[i]);
    explicit_bzero(p->data, p->len); /* a start may hold secrets */
    free(p);
  }
  free(c);
}

static void conn_close(sup_conn *c) {
  c->lost = true;
  if (c->ex->sup == c) c->ex->sup = NULL;
  uv_close((uv_handle_t *)&c->poll, conn_closed);
}

static void lost_supervisor(dagd_exec *ex);

static void conn_want(sup_conn *c) { uv_poll_start(&c->poll, UV_READABLE | (c->out ? UV_WRITABLE : 0), on_conn); }

static bool send_packet(sup_conn *c, const char *data, size_t len, const int *fds, size_t n_fds) {
  union {
    struct cmsghdr h;
    char space[CMSG_SPACE(sizeof(int) * 2)];
  } ctl;
  struct iovec iov = {(void *)data, len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (n_fds) {
    memset(&ctl, 0, sizeof(ctl));
    mh.msg_control = ctl.space;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
    struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
    memcpy(CMSG_DATA(h), fds, sizeof(int) * n_fds);
  }
  ssize_t n;
  do n = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n >= 0;
}

static void flush_out(sup_conn *c) {
  while (c->out) {
    out_packet *p = c->out;
    if (!send_packet(c, p->data, p->len, p->fds, p->n_fds)) {
      if (errno == EAGAIN) break;
      lost_supervisor(c->ex);
      return;
    }
    c->out = p->next;
    if (c->out == NULL) c->out_tail = NULL;
    for (size_t i = 0; i < p->n_fds; i++) close(p->fds[i]);
    explicit_bzero(p->data, p->len); /* a start may hold secrets */
    free(p);
  }
  conn_want(c);
}

/* Sends a packet, or queues it behind the others; takes the fds. False
 * when the supervisor is gone. */
static bool conn_send(sup_conn *c, const char *data, size_t len, const int *fds, size_t n_fds) {
  if (c->out == NULL) {
    if (send_packet(c, data, len, fds, n_fds)) {
      for (size_t i = 0; i < n_fds; i++) close(fds[i]);
      return true;
    }
    if (errno != EAGAIN) {
      for (size_t i = 0; i < n_fds; i++) close(fds[i]);
      return false;
    }
  }
  out_packet *p = dagd_malloc(sizeof(*p) + len);
  p->next = NULL;
  p->len = len;
  p->n_fds = n_fds;
  for (size_t i = 0; i < n_fds; i++) p->fds[i] = fds[i];
  memcpy(p->data, data, len);
  if (c->out_tail) c->out_tail->next = p;
  else c->out = p;
  c->out_tail = p;
  conn_want(c);
  return true;
}

void dagd__sup_send(dagd_exec *ex, char type, const char *base) {
  if (!dagd__sup_up(ex)) return;
  dagd_buf b;
  dagd_buf_init(&b);
  if (base) dagd_sup_encode_str(&b, type, base);
  else dagd_buf_putc(&b, type);
  if (!conn_send(ex->sup, b.data, b.len, NULL, 0)) lost_supervisor(ex);
  dagd_buf_close(&b);
}

void dagd__sup_forget(dagd_exec *ex, const char *bases, size_t len) {
  dagd_buf b;
  dagd_buf_init(&b);
  for (size_t at = 0; at < len && dagd__sup_up(ex);) {
    size_t n = strlen(bases + at) + 1;
    if (b.len == 0) dagd_buf_putc(&b, 'F');
    dagd_buf_append(&b, bases + at, n);
    at += n;
    if (at >= len || b.len + 4200 > DAGD_SUP_INLINE_MAX) {
      if (!conn_send(ex->sup, b.data, b.len, NULL, 0)) lost_supervisor(ex);
      dagd_buf_reset(&b);
    }
  }
  dagd_buf_close(&b);
}

static void handle(dagd_exec *ex, const char *p, size_t len) {
  const char *base = NULL;
  if (p[0] == 'E') {
    dagd_try_result r;
    double ended;
    if (!dagd_sup_decode_end(p, len, &r, &ended, &base)) return;
    dagd_exec_try *t = dagd_map_get(&ex->supervised, base, strlen(base));
    if (t) dagd__exec_deliver(t, &r, ended);
  } else if (p[0] == 'U') {
    if ((base = dagd_sup_decode_str(p, len)) == NULL) return;
    dagd_exec_try *t = dagd_map_del(&ex->supervised, base, strlen(base));
    if (t) dagd__exec_adopt_files(t); /* under a shim, or lost */
  }
}

static void on_conn(uv_poll_t *h, int status, int events) {
  sup_conn *c = h->data;
  dagd_exec *ex = c->ex;
  if (status < 0) {
    lost_supervisor(ex);
    return;
  }
  if (events & UV_WRITABLE) flush_out(c);
  if (c->lost) return;
  char buf[4200];
  for (;;) {
    ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      lost_supervisor(ex);
      return;
    }
    handle(ex, buf, (size_t)n);
    if (ex->sup != c) return;
  }
}

/* Connects (starting a supervisor when none listens) and greets it. A
 * supervisor may be leaving as we come (its last daemon went and its
 * last try ended): then a new one is started. */
static int sup_connect(dagd_exec *ex, dagd_err *err) {
  dagd_sup_paths paths;
  dagd_sup_paths_init(&paths, ex->state);
  int fd = -1;
  bool cgroups = false, greeted = false, other = false;
  for (int attempt = 0; attempt < 4 && !greeted && !other; attempt++) {
    fd = connect_to(&paths);
    if (fd < 0 && errno == EPERM) break;
    if (fd < 0) {
      char answer = spawn_supervisor(ex);
      if (answer == 'F') break;
      fd = connect_to(&paths);
      /* 'B': another was starting as we looked; it listens in a moment. */
      for (long until = now_ms() + READY_MS; fd < 0 && answer == 'B' && now_ms() < until; fd = connect_to(&paths))
        usleep(2000);
    }
    int hello = fd >= 0 ? greet(fd, &cgroups) : -1;
    greeted = hello == 1;
    other = hello == 0;
    if (fd >= 0 && !greeted) {
      close(fd);
      fd = -1;
    }
  }
  dagd_sup_paths_close(&paths);
  if (!greeted || !cgroups) {
    int saved = errno;
    if (fd >= 0) close(fd);
    if (greeted) return dagd_err_set(err, DAGD_EINVAL, "the try supervisor cannot make cgroups here");
    if (other)
      return dagd_err_set(err, DAGD_EINVAL, "the try supervisor running speaks another version (it leaves when its "
                          "tries are over)");
    return dagd_err_set(err, DAGD_EIO, "cannot reach the try supervisor: %s", strerror(saved ? saved : EIO));
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  sup_conn *c = dagd_calloc(1, sizeof(*c));
  c->ex = ex;
  c->fd = fd;
  uv_poll_init(ex->loop, &c->poll, fd);
  c->poll.data = c;
  ex->sup = c;
  conn_want(c);
  return 0;
}

int dagd__sup_open(dagd_exec *ex, dagd_err *err) { return sup_connect(ex, err); }

/* The supervisor went (killed, or it failed): a new one reads the
 * journal; every try waiting for an end is asked about again. */
static void lost_supervisor(dagd_exec *ex) {
  static int depth;
  if (ex->sup) conn_close(ex->sup);
  if (ex->closing || ex->state == NULL || depth > 0) return;
  depth++;
  DAGD_LOG(DAGD_LOG_WARN, "exec", "the try supervisor went away; starting a new one");
  dagd_err err;
  dagd_err_init(&err);
  bool up = sup_connect(ex, &err) == 0;
  if (!up) DAGD_LOG(DAGD_LOG_ERROR, "exec", "%s: new tries start under shims", err.msg);
  for (dagd_exec_try *t = ex->tries; t; t = t->next) {
    if (!t->supervised) continue;
    if (up) dagd__sup_watch(ex, t);
    else {
      dagd_map_del(&ex->supervised, t->base, strlen(t->base));
      dagd__exec_adopt_files(t); /* no record of it can be had: lost */
    }
  }
  if (up) dagd__sup_send(ex, 'D', NULL);
  depth--;
}

void dagd__sup_watch(dagd_exec *ex, dagd_exec_try *t) {
  t->supervised = true;
  dagd_map_put(&ex->supervised, t->base, strlen(t->base), t);
  dagd__sup_send(ex, 'W', t->base);
}

bool dagd__sup_start(dagd_exec *ex, dagd_exec_try *t, const dagd_exec_spec *spec) {
  int fds[2];
  size_t n_fds = 0;
  if (spec->input) {
    int in = dagd_memory_file("dagd-input", spec->input, strlen(spec->input));
    if (in < 0) return false;
    fds[n_fds++] = in;
  }
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_sup_encode_start(&b, spec->base, spec->cwd, spec->argv, spec->env, spec->secrets, spec->grace_ms,
                        spec->input != NULL, spec->conf);
  char type = 'S';
  if (b.len > DAGD_SUP_INLINE_MAX) {
    int body = dagd_memory_file("dagd-start", b.data, b.len);
    if (body < 0) {
      for (size_t i = 0; i < n_fds; i++) close(fds[i]);
      dagd_buf_close(&b);
      return false;
    }
    fds[n_fds++] = body;
    type = 's';
  }
  bool sent = type == 'S' ? conn_send(ex->sup, b.data, b.len, fds, n_fds) : conn_send(ex->sup, &type, 1, fds, n_fds);
  if (b.data) explicit_bzero(b.data, b.cap); /* it may hold secrets */
  dagd_buf_close(&b);
  if (!sent) {
    lost_supervisor(ex);
    return false;
  }
  t->supervised = true;
  dagd_map_put(&ex->supervised, t->base, strlen(t->base), t);
  return true;
}

void dagd__sup_close(dagd_exec *ex) {
  while (ex->children) child_drop(ex->children);
  if (ex->sup == NULL) return;
  sup_conn *c = ex->sup;
  /* What is queued still goes: a stop or a forget the supervisor should see. */
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
  while (c->out) {
    out_packet *p = c->out;
    struct pollfd pf = {.fd = c->fd, .events = POLLOUT};
    if (poll(&pf, 1, 1000) <= 0 || !send_packet(c, p->data, p->len, p->fds, p->n_fds)) break;
    c->out = p->next;
    for (size_t i = 0; i < p->n_fds; i++) close(p->fds[i]);
    explicit_bzero(p->data, p->len); /* a start may hold secrets */
    free(p);
  }
  conn_close(c);
}
