/* The local executor: starts each try's shim detached with posix_spawn
 * (a vfork-style clone: the daemon's memory is never copied, which a
 * fork of it per try would do) and learns of its end through a pidfd
 * watched by uv_poll, as it does for the shims of an earlier daemon it
 * re-adopts. Nothing polls on a timer except the rare few-millisecond
 * wait for a just-started shim to record its pid.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dagd/err.h"
#include "dagd/exec.h"
#include "dagd/log.h"
#include "dagd/util.h"
#include "local.h"

static void adopt_step(dagd_exec_try *t);
static void on_adopt_retry(uv_timer_t *h) { adopt_step(h->data); }

/* Where the shim finds what it is given besides its arguments. */
enum { MASK_FD_ARG = 3, STDIN_FD_ARG = 4 };

dagd_exec *dagd_exec_new(uv_loop_t *loop, const char *shim_path) {
  dagd_exec *ex = dagd_calloc(1, sizeof(*ex));
  ex->loop = loop;
  ex->shim_path = dagd_strdup(shim_path);
  dagd_map_init(&ex->supervised);
  dagd_buf_init(&ex->forgets);
  return ex;
}

int dagd_exec_supervise(dagd_exec *ex, const char *state, dagd_err *err) {
  free(ex->state);
  ex->state = dagd_strdup(state);
  int rc = dagd__sup_open(ex, err);
  if (rc < 0) {
    free(ex->state);
    ex->state = NULL;
  }
  return rc;
}

bool dagd_exec_supervised(const dagd_exec *ex) { return dagd__sup_up(ex); }

void dagd_exec_adopted(dagd_exec *ex) {
  if (dagd__sup_up(ex)) dagd__sup_send(ex, 'D', NULL);
}

void dagd_exec_forget(dagd_exec *ex, const char *base) {
  if (ex->state) dagd_buf_append(&ex->forgets, base, strlen(base) + 1);
}

void dagd_exec_committed(dagd_exec *ex) {
  if (ex->forgets.len == 0) return;
  if (dagd__sup_up(ex)) dagd__sup_forget(ex, ex->forgets.data, ex->forgets.len);
  /* Without a connection the next supervisor's 'D' drops them. */
  dagd_buf_reset(&ex->forgets);
}

static void unlink_try(dagd_exec_try *t) {
  if (t->supervised && dagd_map_get(&t->ex->supervised, t->base, strlen(t->base)) == t)
    dagd_map_del(&t->ex->supervised, t->base, strlen(t->base));
  if (t->prev) t->prev->next = t->next;
  else t->ex->tries = t->next;
  if (t->next) t->next->prev = t->prev;
  t->prev = t->next = NULL;
}

static void close_handles(dagd_exec_try *t);

void dagd_exec_close(dagd_exec *ex) {
  if (ex == NULL) return;
  ex->closing = true;
  dagd__sup_close(ex);
  /* Tries still running keep running under their detached shims; only
   * our handles on them go. The loop must run once more to close them. */
  while (ex->tries) {
    dagd_exec_try *t = ex->tries;
    t->delivered = true;
    unlink_try(t);
    close_handles(t);
  }
  free(ex->shim_path);
  free(ex->state);
  dagd_map_close(&ex->supervised);
  dagd_buf_close(&ex->forgets);
  free(ex);
}

size_t dagd_exec_running(const dagd_exec *ex) { return ex->running; }

static void on_handle_closed(uv_handle_t *h) {
  dagd_exec_try *t = h->data;
  if (--t->handles > 0) return;
  if (t->pidfd >= 0) close(t->pidfd);
  dagd_try_paths_close(&t->paths);
  free(t->base);
  free(t);
}

static void close_handle(dagd_exec_try *t, uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, on_handle_closed);
}

static void close_handles(dagd_exec_try *t) {
  close_handle(t, (uv_handle_t *)&t->timer);
  if (t->poll.data) close_handle(t, (uv_handle_t *)&t->poll);
}

void dagd__exec_deliver(dagd_exec_try *t, const dagd_try_result *r, double ended) {
  if (t->delivered) return;
  unlink_try(t);
  t->delivered = true;
  t->ex->running--;
  t->cb(t->data, r, ended);
  close_handles(t);
}

static void deliver(dagd_exec_try *t, const dagd_try_result *r) { dagd__exec_deliver(t, r, t->ended); }

static dagd_exec_try *try_new(dagd_exec *ex, const char *base, dagd_exec_done_cb cb, void *data) {
  dagd_exec_try *t = dagd_calloc(1, sizeof(*t));
  t->ex = ex;
  t->cb = cb;
  t->data = data;
  t->pidfd = -1;
  t->base = dagd_strdup(base);
  dagd_try_paths_init(&t->paths, base);
  uv_timer_init(ex->loop, &t->timer);
  t->timer.data = t;
  t->handles = 1;
  ex->running++;
  t->next = ex->tries;
  if (ex->tries) ex->tries->prev = t;
  ex->tries = t;
  return t;
}

/* The shim is gone: its exit record says how the task ended; without one
 * the shim died abnormally and the try is lost. */
static void finish_from_files(dagd_exec_try *t);
static void on_pidfd(uv_poll_t *h, int status, int events);

/* Watches the shim's end through its pidfd. */
static void watch(dagd_exec_try *t, int pidfd) {
  t->pidfd = pidfd;
  uv_poll_init(t->ex->loop, &t->poll, pidfd);
  t->poll.data = t;
  t->handles++;
  uv_poll_start(&t->poll, UV_READABLE, on_pidfd);
}

/* Starts the shim in a session of its own (it outlives the daemon) with
 * fds 0 and 1 on /dev/null, 2 the daemon's, and the extra fds given;
 * every other fd closed, signals at their defaults and unblocked. */
static int spawn_shim(const char *path, char **args, char *const *env, int mask_fd, int stdin_fd, pid_t *pid) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  if (mask_fd >= 0) posix_spawn_file_actions_adddup2(&fa, mask_fd, MASK_FD_ARG);
  if (stdin_fd >= 0) posix_spawn_file_actions_adddup2(&fa, stdin_fd, STDIN_FD_ARG);
  posix_spawn_file_actions_addclosefrom_np(&fa, stdin_fd >= 0 ? STDIN_FD_ARG + 1 : mask_fd >= 0 ? MASK_FD_ARG + 1 : 3);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  int rc = posix_spawn(pid, path, &fa, &at, args, env);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  return rc;
}

/* The secrets as the shim reads them: each value followed by a NUL. */
static int secrets_file(const char *const *secrets) {
  dagd_buf all;
  dagd_buf_init(&all);
  for (const char *const *s = secrets; s && *s; s++) dagd_buf_append(&all, *s, strlen(*s) + 1);
  int fd = all.len ? dagd_memory_file("dagd-secrets", all.data, all.len) : -1;
  if (all.data) explicit_bzero(all.data, all.cap);
  dagd_buf_close(&all);
  return fd;
}


int dagd_exec_start(dagd_exec *ex, const dagd_exec_spec *spec, dagd_exec_done_cb cb, void *data,
                    dagd_exec_try **out, dagd_err *err) {
  size_t n = 0;
  while (spec->argv[n]) n++;
  if (n == 0) return dagd_err_set(err, DAGD_EINVAL, "empty command");
  /* The supervisor takes every try with a cgroup of its own. */
  if (dagd__sup_up(ex) && !spec->no_cgroup) {
    dagd_exec_try *t = try_new(ex, spec->base, cb, data);
    if (dagd__sup_start(ex, t, spec)) {
      if (out) *out = t;
      return 0;
    }
    t->delivered = true; /* the supervisor could not take it: a shim will */
    ex->running--;
    unlink_try(t);
    close_handles(t);
  }
  /* A shim expects the try's folder and conf there. */
  int made = dagd_try_make_folder(spec->base);
  if (made < 0)
    return dagd_err_set(err, DAGD_EIO, "cannot create the log folder of %s: %s", spec->base, strerror(-made));
  if (spec->conf && dagd_try_write_conf(spec->base, spec->conf, err) < 0) return DAGD_EIO;
  int mask_fd = -1, stdin_fd = -1;
  if (spec->secrets && spec->secrets[0] && (mask_fd = secrets_file(spec->secrets)) < 0)
    return dagd_err_set(err, DAGD_EIO, "cannot pass the secrets to mask to the shim: %s", strerror(errno));
  if (spec->input && (stdin_fd = dagd_memory_file("dagd-input", spec->input, strlen(spec->input))) < 0) {
    dagd_err_set(err, DAGD_EIO, "cannot pass the task its input: %s", strerror(errno));
    if (mask_fd >= 0) close(mask_fd);
    return DAGD_EIO;
  }
  char **args = dagd_calloc(n + 16, sizeof(char *));
  size_t a = 0;
  args[a++] = ex->shim_path;
  args[a++] = "shim";
  args[a++] = "--base";
  args[a++] = (char *)spec->base;
  if (spec->cwd) {
    args[a++] = "--cwd";
    args[a++] = (char *)spec->cwd;
  }
  char mask_arg[16], stdin_arg[16];
  snprintf(mask_arg, sizeof(mask_arg), "%d", MASK_FD_ARG);
  snprintf(stdin_arg, sizeof(stdin_arg), "%d", STDIN_FD_ARG);
  if (mask_fd >= 0) {
    args[a++] = "--mask-fd";
    args[a++] = mask_arg;
  }
  if (stdin_fd >= 0) {
    args[a++] = "--stdin-fd";
    args[a++] = stdin_arg;
  }
  char grace_arg[24];
  if (spec->grace_ms > 0) {
    snprintf(grace_arg, sizeof(grace_arg), "%d", spec->grace_ms);
    args[a++] = "--grace-ms";
    args[a++] = grace_arg;
  }
  if (spec->no_cgroup) args[a++] = "--no-cgroup";
  args[a++] = "--";
  for (size_t i = 0; i < n; i++) args[a++] = spec->argv[i];
  args[a] = NULL;

  /* The shim's stderr is the daemon's: where it says what went wrong
   * when the try's own files cannot take it (a full disk). */
  pid_t pid = 0;
  int rc = spawn_shim(ex->shim_path, args, spec->env, mask_fd, stdin_fd, &pid);
  free(args);
  if (mask_fd >= 0) close(mask_fd);
  if (stdin_fd >= 0) close(stdin_fd);
  if (rc != 0) {
    dagd_err_set(err, DAGD_EIO, "cannot start the shim %s: %s", ex->shim_path, strerror(rc));
    if (err) err->cause = rc;
    return DAGD_EIO;
  }
  int pidfd = (int)pidfd_open(pid, 0);
  if (pidfd < 0) {
    /* No pidfd (a kernel before 5.3): nothing here could learn of its end. */
    int saved = errno;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    dagd_err_set(err, DAGD_EIO, "cannot watch the shim: pidfd_open: %s", strerror(saved));
    return DAGD_EIO;
  }
  dagd_exec_try *t = try_new(ex, spec->base, cb, data);
  t->child = pid;
  watch(t, pidfd);
  if (out) *out = t;
  return 0;
}

void dagd__exec_adopt_files(dagd_exec_try *t) {
  t->supervised = false;
  uv_timer_start(&t->timer, on_adopt_retry, 0, 0);
}

static void on_deferred(uv_timer_t *h) {
  dagd_exec_try *t = h->data;
  deliver(t, &t->result);
}

static void deliver_later(dagd_exec_try *t, const dagd_try_result *r) {
  t->result = *r;
  uv_timer_start(&t->timer, on_deferred, 0, 0);
}

/* The try's end from its records, saying so when it came from the pid
 * record (the exit record could not be written: a full disk). */
static int read_end(const dagd_exec_try *t, dagd_try_result *r) {
  bool from_pid = false;
  int rc = dagd_try_read_end(&t->paths, r, &from_pid, NULL);
  if (rc == 0 && from_pid)
    DAGD_LOG(DAGD_LOG_WARN, "exec", "%s could not be written (the shim said why, in this log); the try's end was "
             "taken from %s", t->paths.exit, t->paths.pid);
  return rc;
}

/* Kills what is left in a lost try's cgroup, and removes the cgroup. */
static void cgroup_reap(const char *dir) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/cgroup.kill", dir);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (write(fd, "1", 1) < 0) { /* an old kernel: the group kill above is what there is */
    }
    close(fd);
  }
  /* Removable once its processes are gone, which takes the kernel a
   * moment after the kill; a cgroup still busy is left for the next look. */
  for (int i = 0; i < 10 && rmdir(dir) < 0 && errno == EBUSY; i++) usleep(500);
}

/* No shim holds the lock: the try ended (exit record) or was lost. A lost
 * try's task may outlive its shim; kill its group and its cgroup so it
 * cannot run on beside a retry. Holds the lock while deciding, so a shim
 * that starts late sees the "vanished" record and runs nothing. */
static int settle_unlocked(dagd_exec_try *t, dagd_try_result *r) {
  dagd_try_pidfile rec;
  dagd_try_read_pidfile(t->paths.pid, &rec, NULL);
  if (read_end(t, r) == 0) return 0;
  pid_t task = rec.task;
  if (task > 0 && dagd_proc_start_time(task) != 0 && getpgid(task) == task) kill(-task, SIGKILL);
  if (rec.cgroup[0]) cgroup_reap(rec.cgroup);
  *r = (dagd_try_result){DAGD_TRY_VANISHED, 0};
  return dagd_try_write_exit(t->paths.exit, r, NULL);
}

static void finish_from_files(dagd_exec_try *t) {
  dagd_try_result r;
  int fd = open(t->paths.pid, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
    settle_unlocked(t, &r);
  } else if (read_end(t, &r) != 0) {
    r = (dagd_try_result){DAGD_TRY_VANISHED, 0};
  }
  if (fd >= 0) close(fd);
  deliver(t, &r);
}

static void on_pidfd(uv_poll_t *h, int status, int events) {
  dagd_exec_try *t = h->data;
  uv_poll_stop(h);
  if (t->child > 0) { /* ours: reap it */
    while (waitpid(t->child, NULL, WNOHANG) < 0 && errno == EINTR) {
    }
    t->child = 0;
  }
  finish_from_files(t);
}


/* One attempt to attach to a live shim. */
static void adopt_step(dagd_exec_try *t) {
  dagd_try_result r;
  int fd = open(t->paths.pid, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    deliver(t, &(dagd_try_result){DAGD_TRY_VANISHED, 0});
    return;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
    settle_unlocked(t, &r);
    close(fd);
    deliver(t, &r);
    return;
  }
  close(fd);
  /* A shim holds the lock: attach to it. It records its pid right after
   * locking; if we came in between, look again shortly. */
  pid_t shim, task;
  dagd_try_read_pids(t->paths.pid, &shim, &task, NULL);
  int pidfd = shim > 0 ? pidfd_open(shim, 0) : -1;
  if (pidfd < 0) {
    if (++t->adopt_attempts > 500) { /* 5 s: something is badly wrong */
      deliver(t, &(dagd_try_result){DAGD_TRY_VANISHED, 0});
      return;
    }
    uv_timer_start(&t->timer, on_adopt_retry, 10, 0);
    return;
  }
  watch(t, pidfd);
}

int dagd_exec_adopt(dagd_exec *ex, const char *base, dagd_exec_done_cb cb, void *data, dagd_exec_try **out,
                    dagd_err *err) {
  dagd_exec_try *t = try_new(ex, base, cb, data);
  dagd_try_result r;
  if (dagd__sup_up(ex)) {
    /* The supervisor knows the try, or says it does not (then it ran
     * under a shim, or was lost): its files answer. */
    dagd__sup_watch(ex, t);
  } else if (read_end(t, &r) == 0) {
    deliver_later(t, &r);
  } else {
    /* Defer even the first attempt so the callback never runs inside the
     * caller's own call. */
    uv_timer_start(&t->timer, on_adopt_retry, 0, 0);
  }
  if (out) *out = t;
  return 0;
}

int dagd_exec_signal(dagd_exec_try *t, int sig) {
  if (t->supervised) {
    if (!dagd__sup_up(t->ex)) return DAGD_ENOENT;
    dagd__sup_send(t->ex, sig == SIGKILL ? 'K' : 'T', t->base);
    return 0;
  }
  dagd_try_pidfile rec;
  dagd_try_read_pidfile(t->paths.pid, &rec, NULL);
  if (rec.task <= 0 && rec.shim <= 0) return DAGD_ENOENT;
  if (sig == SIGTERM && rec.shim_signals) {
    /* The shim passes a stop to every process of the try (its cgroup or
     * its descendants) and kills what outlives the grace. Through a
     * handle that cannot name a reused pid: its pidfd. */
    if (t->pidfd >= 0 && pidfd_send_signal(t->pidfd, SIGTERM, NULL, 0) == 0) return 0;
  }
  if (sig == SIGKILL && rec.cgroup[0]) {
    char path[4200];
    snprintf(path, sizeof(path), "%s/cgroup.kill", rec.cgroup);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      if (write(fd, "1", 1) < 0) { /* the group kill below still goes */
      }
      close(fd);
    }
  }
  if (rec.task <= 0) return DAGD_ENOENT;
  return kill(-rec.task, sig) == 0 || errno == ESRCH ? 0 : DAGD_EIO;
}
