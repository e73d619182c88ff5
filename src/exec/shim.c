/* The shim: one per task try, started detached (its own session) so it
 * outlives the daemon. It holds an exclusive lock on <try>.pid for its
 * whole life, so a restarted daemon can tell a live try from a lost one;
 * runs the task in its own process group with output appended to
 * <try>.log; and records how the task ended in <try>.exit. If it finds an
 * exit record already there (a restarted daemon declared the try lost
 * before the shim got going), it runs nothing.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dagd/err.h"
#include "dagd/exec.h"
#include "dagd/util.h"

static void shim_log(int fd, const char *fmt, const char *a, const char *b) {
  dprintf(fd, "dagd shim: ");
  dprintf(fd, fmt, a, b);
  dprintf(fd, "\n");
}

int dagd_shim_main(int argc, char **argv) {
  const char *base = NULL, *cwd = NULL;
  int i = 1;
  /* argv: shim --base PATH [--cwd DIR] -- ARGV... (argv[0] is "shim") */
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--base") == 0 && i + 1 < argc) base = argv[++i];
    else if (strcmp(argv[i], "--cwd") == 0 && i + 1 < argc) cwd = argv[++i];
    else if (strcmp(argv[i], "--") == 0) break;
    else return 2;
  }
  if (base == NULL || i + 1 >= argc) return 2;
  char **cmd = argv + i + 1;
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
  pid_t child = fork();
  if (child < 0) {
    shim_log(log, "fork: %s%s", strerror(errno), "");
    goto out;
  }
  if (child == 0) {
    /* The task: its own process group, so a timeout can signal it and all
     * its children at once; no terminal; output to the log. */
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(log, 1);
    dup2(log, 2);
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
  dagd_try_paths_close(&paths);
  return rc;
}
