/* The shim: one per task try, started detached (its own session) so it
 * outlives the daemon. It holds an exclusive lock on <try>.pid for its
 * whole life, so a restarted daemon can tell a live try from a lost one;
 * runs the task in its own process group with output appended to
 * <try>.log; and records how the task ended in <try>.exit. If it finds an
 * exit record already there (a restarted daemon declared the try lost
 * before the shim got going), it runs nothing.
 *
 * With secrets to mask (--mask-fd: the values, NUL-separated, read once),
 * the task's output reaches the log through a pipe and every secret in it
 * becomes "***" before it is written, so no secret lands on disk. The
 * task's end is watched through a pidfd, not the pipe's end: a background
 * process that keeps the pipe open cannot hold the try, and once the task
 * has ended its output is drained for at most DRAIN_MS.
 * With --stdin-fd the task reads that file (the spec of a `dagd op`
 * operator, which may hold secrets) as its standard input.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dagd/err.h"
#include "dagd/exec.h"
#include "dagd/mask.h"
#include "dagd/util.h"

#define DRAIN_MS 500

static void shim_log(int fd, const char *fmt, const char *a, const char *b) {
  dprintf(fd, "dagd shim: ");
  dprintf(fd, fmt, a, b);
  dprintf(fd, "\n");
}

/* Reads the NUL-separated values to mask from fd, and closes it. */
static void read_mask(int fd, dagd_mask *m) {
  dagd_buf all;
  dagd_buf_init(&all);
  char chunk[4096];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    dagd_buf_append(&all, chunk, (size_t)n);
  }
  close(fd);
  explicit_bzero(chunk, sizeof(chunk));
  for (size_t at = 0; at < all.len; at += strlen(all.data + at) + 1) dagd_mask_add(m, all.data + at);
  if (all.data) explicit_bzero(all.data, all.cap);
  dagd_buf_close(&all);
}

static void write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return; /* a full disk loses output, never the try */
    p += n;
    len -= (size_t)n;
  }
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies the task's output from the pipe to the log, masked, until the
 * pipe ends, or the task has ended and DRAIN_MS have passed. */
static void relay(int in, int log, pid_t child, dagd_mask *m) {
  int pidfd = (int)pidfd_open(child, 0); /* -1 on old kernels: then the pipe's end decides */
  struct pollfd fds[2] = {{.fd = in, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
  long deadline = -1;
  char chunk[65536];
  dagd_buf out;
  dagd_buf_init(&out);
  for (;;) {
    int wait = -1;
    if (deadline >= 0) {
      long left = deadline - now_ms();
      if (left <= 0) break;
      wait = (int)left;
    }
    int ready = poll(fds, pidfd >= 0 && deadline < 0 ? 2 : 1, wait);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    if (fds[1].revents) {
      deadline = now_ms() + DRAIN_MS;
      fds[1].revents = 0;
    }
    if (fds[0].revents) {
      ssize_t n = read(in, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      dagd_buf_reset(&out);
      dagd_mask_feed(m, chunk, (size_t)n, &out);
      write_all(log, out.data, out.len);
    }
  }
  dagd_buf_reset(&out);
  dagd_mask_end(m, &out);
  write_all(log, out.data, out.len);
  if (out.data) explicit_bzero(out.data, out.cap);
  dagd_buf_close(&out);
  explicit_bzero(chunk, sizeof(chunk));
  if (pidfd >= 0) close(pidfd);
}

int dagd_shim_main(int argc, char **argv) {
  const char *base = NULL, *cwd = NULL;
  int mask_fd = -1, stdin_fd = -1;
  int i = 1;
  /* argv: shim --base PATH [--cwd DIR] [--mask-fd N] [--stdin-fd N] -- ARGV...
   * (argv[0] is "shim") */
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--base") == 0 && i + 1 < argc) base = argv[++i];
    else if (strcmp(argv[i], "--cwd") == 0 && i + 1 < argc) cwd = argv[++i];
    else if (strcmp(argv[i], "--mask-fd") == 0 && i + 1 < argc) mask_fd = atoi(argv[++i]);
    else if (strcmp(argv[i], "--stdin-fd") == 0 && i + 1 < argc) stdin_fd = atoi(argv[++i]);
    else if (strcmp(argv[i], "--") == 0) break;
    else return 2;
  }
  if (base == NULL || i + 1 >= argc) return 2;
  char **cmd = argv + i + 1;
  dagd_mask mask;
  dagd_mask_init(&mask);
  if (mask_fd >= 0) read_mask(mask_fd, &mask);
  if (stdin_fd >= 0) fcntl(stdin_fd, F_SETFD, FD_CLOEXEC);
  int pipefd[2] = {-1, -1};
  dagd_try_paths paths;
  dagd_try_paths_init(&paths, base);
  int rc = 1;
  int log = open(paths.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0) goto out;
  int lock = open(paths.pid, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
    shim_log(log, "cannot lock %s: %s", paths.pid, strerror(errno));
    goto out;
  }
  dagd_try_result r;
  if (dagd_try_read_exit(paths.exit, &r, NULL) != DAGD_ENOENT) {
    /* Declared lost (or already run) before we got here: run nothing. */
    shim_log(log, "%s exists: not running the task%s", paths.exit, "");
    rc = 0;
    goto out;
  }
  dprintf(lock, "shim %ld\n", (long)getpid());
  /* $DAGD_OUTPUT exists before the task, 0600 like every try file: a task
   * that opens it for writing keeps the mode, whatever its umask. */
  int out = open(paths.out, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (out < 0 || fchmod(out, 0600) < 0) {
    shim_log(log, "cannot create %s: %s", paths.out, strerror(errno));
    if (out >= 0) close(out);
    goto out;
  }
  close(out);
  if (mask.n > 0 && pipe2(pipefd, O_CLOEXEC) < 0) {
    shim_log(log, "pipe: %s%s", strerror(errno), "");
    goto out;
  }
  pid_t child = fork();
  if (child < 0) {
    shim_log(log, "fork: %s%s", strerror(errno), "");
    goto out;
  }
  if (child == 0) {
    /* The task: its own process group, so a timeout can signal it and all
     * its children at once; no terminal; output to the log. */
    setpgid(0, 0);
    int input = stdin_fd >= 0 ? stdin_fd : open("/dev/null", O_RDONLY);
    if (stdin_fd >= 0) lseek(stdin_fd, 0, SEEK_SET);
    if (input >= 0) dup2(input, 0);
    int output = pipefd[1] >= 0 ? pipefd[1] : log;
    dup2(output, 1);
    dup2(output, 2);
    signal(SIGPIPE, SIG_DFL);
    if (cwd && chdir(cwd) < 0) {
      shim_log(2, "cannot change to %s: %s", cwd, strerror(errno));
      _exit(127);
    }
    execvp(cmd[0], cmd);
    shim_log(2, "cannot execute %s: %s", cmd[0], strerror(errno));
    _exit(127);
  }
  setpgid(child, child); /* also here, so no signal can race the child's own call */
  dprintf(lock, "task %ld\n", (long)child);
  if (pipefd[0] >= 0) {
    close(pipefd[1]);
    pipefd[1] = -1;
    relay(pipefd[0], log, child, &mask);
  }
  int status;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) {
      shim_log(log, "waitpid: %s%s", strerror(errno), "");
      goto out;
    }
  }
  r.how = WIFSIGNALED(status) ? DAGD_TRY_SIGNALED : DAGD_TRY_EXITED;
  r.code = WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status);
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_try_write_exit(paths.exit, &r, &err) < 0) {
    shim_log(log, "%s%s", err.msg, "");
    goto out;
  }
  rc = 0;
out:
  /* The lock goes with the process; closing is for tidiness. */
  dagd_mask_close(&mask);
  dagd_try_paths_close(&paths);
  return rc;
}
