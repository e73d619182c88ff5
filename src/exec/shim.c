/* The shim: one per task try, started detached (its own session) so it
 * outlives the daemon. It holds an exclusive lock on <try>.pid for its
 * whole life, so a restarted daemon can tell a live try from a lost one;
 * runs the task in its own process group with output appended to
 * <try>.log; and records how the task ended in <try>.exit. If it finds an
 * end already recorded (a restarted daemon declared the try lost before
 * the shim got going), it runs nothing.
 *
 * A try is over only when every process it started is gone, so that a
 * retry never runs beside what is left of the try before it. The shim is
 * the subreaper of the task's processes (a child that calls setsid and
 * forks twice still comes back to it), and, where cgroup v2 can be
 * written, puts the task in a cgroup of its own below the shim's
 * ("dagd-try-<shim pid>"), as systemd does for a service. A stop (SIGTERM
 * to the shim, from the daemon) reaches every process of the try, the
 * cgroup's members or the shim's descendants; when the task's main
 * process has ended, what it left running gets SIGTERM too; whatever
 * still runs after the grace (--grace-ms) is killed, by cgroup.kill where
 * there is one. Then the exit record is written. When it cannot be (a
 * full disk), the end is appended to <try>.pid, whose last block is
 * already allocated, and the error goes to the daemon's log (stderr).
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
#include <dirent.h>
#include <linux/sched.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "dagd/err.h"
#include "dagd/exec.h"
#include "dagd/mask.h"
#include "dagd/util.h"

#define DRAIN_MS 500
#define DEFAULT_GRACE_MS 10000

static void shim_log(int fd, const char *fmt, const char *a, const char *b) {
  char line[4600];
  int n = snprintf(line, sizeof(line), "dagd shim: ");
  n += snprintf(line + n, sizeof(line) - (size_t)n, fmt, a, b);
  if (n > (int)sizeof(line) - 2) n = (int)sizeof(line) - 2;
  line[n++] = '\n';
  if (fd >= 0 && write(fd, line, (size_t)n) < 0) { /* the log may be what is full */
  }
}

/* To the try's log and to the daemon's (the shim's stderr). */
static void shim_warn(int log, const char *fmt, const char *a, const char *b) {
  shim_log(log, fmt, a, b);
  if (log != 2) shim_log(2, fmt, a, b);
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


static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the try's cgroup --- */

/* Makes <the shim's cgroup>/dagd-try-<pid>; false where cgroup v2 is not
 * there or not ours to write (then the process tree is the fallback). */
static bool cgroup_make(char *dir, size_t size) {
  char own[4096];
  if (!dagd_cgroup_own(own, sizeof(own))) return false;
  int n = snprintf(dir, size, "%s/dagd-try-%ld", own, (long)getpid());
  if (n < 0 || (size_t)n >= size) return false;
  if (mkdir(dir, 0755) == 0) return true;
  /* Left by a shim of the same pid that was killed: reuse it if empty. */
  return errno == EEXIST && rmdir(dir) == 0 && mkdir(dir, 0755) == 0;
}

/* --- the try's processes --- */

typedef struct shim_try {
  pid_t task;           /* the main process, and its process group */
  const char *cgroup;   /* NULL: no cgroup of its own */
  bool main_done;
  int status;
} shim_try;

/* The parent of pid, from /proc/PID/stat; 0 if gone. */
static pid_t parent_of(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  long ppid = 0;
  if (p == NULL || sscanf(p + 1, " %*c %ld", &ppid) != 1) return 0;
  return (pid_t)ppid;
}

/* Every live descendant of this shim, by its parent links in /proc. */
static size_t descendants(pid_t **out) {
  *out = NULL;
  size_t n = 0, cap = 0;
  pid_t *all = NULL, *parents = NULL;
  DIR *dir = opendir("/proc");
  if (dir == NULL) return 0;
  struct dirent *de;
  while ((de = readdir(dir))) {
    char *end;
    long pid = strtol(de->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 256;
      all = dagd_realloc(all, cap * sizeof(*all));
      parents = dagd_realloc(parents, cap * sizeof(*parents));
    }
    all[n] = (pid_t)pid;
    parents[n++] = parent_of((pid_t)pid);
  }
  closedir(dir);
  /* Breadth first from the shim: found[] grows while it is walked. */
  pid_t *found = dagd_calloc(n + 1, sizeof(*found));
  size_t nf = 0;
  pid_t self = getpid();
  for (size_t i = 0; i < n; i++)
    if (parents[i] == self) found[nf++] = all[i];
  /* Bounded by n: a snapshot taken while pids are reused cannot loop. */
  for (size_t at = 0; at < nf; at++)
    for (size_t i = 0; i < n && nf < n; i++)
      if (parents[i] == found[at] && all[i] != self) found[nf++] = all[i];
  free(all);
  free(parents);
  *out = found;
  return nf;
}

/* The try's processes now: the members of its cgroup or, without one,
 * every descendant of the shim. false when they cannot be listed. */
static bool try_members(const shim_try *t, pid_t **out, size_t *n) {
  if (!t->cgroup) {
    *n = descendants(out);
    return *out != NULL;
  }
  return dagd_cgroup_members(t->cgroup, out, n);
}

/* sig, once, to every process the try has when it is sent. The list is
 * taken before any signal goes out: what a process starts on receiving
 * it (a cleanup) is not part of what was asked to stop. Without a list,
 * the task's process group. SIGKILL uses cgroup.kill where it can. */
static void signal_all(const shim_try *t, int sig) {
  if (t->cgroup && sig == SIGKILL && dagd_cgroup_kill(t->cgroup)) return;
  pid_t *pids;
  size_t n;
  if (!try_members(t, &pids, &n)) {
    if (t->task > 0) kill(-t->task, sig);
    return;
  }
  for (size_t i = 0; i < n; i++) kill(pids[i], sig);
  free(pids);
}

/* Reaps every child that has ended; true once the shim has none left. */
static bool reap(shim_try *t) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      if (pid == t->task) {
        t->main_done = true;
        t->status = status;
      }
      continue;
    }
    if (pid < 0 && errno == EINTR) continue;
    return pid < 0 && errno == ECHILD;
  }
}

/* Copies what the pipe holds to the log, masked; false at its end. */
static bool relay_some(int in, int log, dagd_mask *m, dagd_buf *out) {
  char chunk[65536];
  ssize_t n = read(in, chunk, sizeof(chunk));
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return false;
  dagd_buf_reset(out);
  dagd_mask_feed(m, chunk, (size_t)n, out);
  dagd_try_write_all(log, out->data, out->len); /* a full disk loses output, never the try */
  explicit_bzero(chunk, (size_t)n);
  return true;
}

/* Waits until the task and everything it started are gone: relays the
 * masked output meanwhile, passes a stop (SIGTERM to the shim) to every
 * process of the try, asks what the main process left behind to stop,
 * and kills what outlives the grace. */
static void supervise(shim_try *t, int sigfd, int in, int log, dagd_mask *m, long grace_ms) {
  dagd_buf out;
  dagd_buf_init(&out);
  long term_at = -1, kill_at = -1;
  for (;;) {
    bool none_left = reap(t);
    if (t->main_done && none_left) break;
    long now = now_ms();
    if (t->main_done && term_at < 0) {
      signal_all(t, SIGTERM); /* what the main process left running */
      term_at = now;
    }
    if (term_at >= 0 && now >= term_at + grace_ms && (kill_at < 0 || now >= kill_at + 50)) {
      signal_all(t, SIGKILL); /* again every 50 ms: a fork may race the walk */
      kill_at = now;
    }
    int wait = -1;
    if (kill_at >= 0) wait = 50;
    else if (term_at >= 0) wait = (int)(term_at + grace_ms - now);
    if (wait < 0 && term_at >= 0) wait = 0;
    struct pollfd fds[2] = {{.fd = sigfd, .events = POLLIN}, {.fd = in, .events = POLLIN}};
    int ready = poll(fds, in >= 0 ? 2 : 1, wait);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    if (fds[0].revents) {
      struct signalfd_siginfo si;
      while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGTERM && term_at < 0) {
          signal_all(t, SIGTERM); /* a stop: the whole try, not one group */
          term_at = now_ms();
        }
      }
    }
    if (in >= 0 && fds[1].revents && !relay_some(in, log, m, &out)) {
      close(in);
      in = -1;
    }
  }
  /* Every writer is gone: what is left in the pipe is the end of the
   * output (bounded, should a stranger hold the pipe). */
  long deadline = now_ms() + DRAIN_MS;
  while (in >= 0 && now_ms() < deadline) {
    struct pollfd fd = {.fd = in, .events = POLLIN};
    if (poll(&fd, 1, (int)(deadline - now_ms())) <= 0 || !relay_some(in, log, m, &out)) break;
  }
  if (in >= 0) close(in);
  dagd_buf_reset(&out);
  dagd_mask_end(m, &out);
  dagd_try_write_all(log, out.data, out.len);
  if (out.data) explicit_bzero(out.data, out.cap);
  dagd_buf_close(&out);
}

/* Records the end: the exit record, else (a full disk) the pid record. */
static int record_end(const dagd_try_paths *paths, int lock, int log, const dagd_try_result *r) {
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_try_write_exit(paths->exit, r, &err) == 0) return 0;
  if (dagd_try_append_end(lock, r) == 0) {
    shim_warn(log, "%s; the end is in %s instead", err.msg, paths->pid);
    return 0;
  }
  shim_warn(log, "%s, nor in %s: the try will count as lost", err.msg, paths->pid);
  return DAGD_EIO;
}

/* Forks the task, born in the try's cgroup (clone3 with
 * CLONE_INTO_CGROUP: no migration afterwards, which would wait for the
 * kernel's cgroup lock); where that fails (a kernel before 5.7) a plain
 * fork, and the child joins through *procs itself. A raw clone3 runs no
 * fork handlers and leaves glibc's cached thread id the parent's: the
 * child only sets itself up and execs, which needs neither. */
static pid_t fork_into(int cgfd, int *procs) {
  if (cgfd >= 0) {
    struct clone_args args = {.flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (uint64_t)cgfd};
    long pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid >= 0) {
      if (pid == 0 && *procs >= 0) {
        close(*procs);
        *procs = -1; /* in its cgroup already */
      }
      return (pid_t)pid;
    }
  }
  return fork();
}

int dagd_shim_main(int argc, char **argv) {
  const char *base = NULL, *cwd = NULL;
  int mask_fd = -1, stdin_fd = -1;
  long grace_ms = DEFAULT_GRACE_MS;
  bool use_cgroup = true;
  int i = 1;
  /* argv: shim --base PATH [--cwd DIR] [--mask-fd N] [--stdin-fd N]
   * [--grace-ms N] [--no-cgroup] -- ARGV...  (argv[0] is "shim") */
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--base") == 0 && i + 1 < argc) base = argv[++i];
    else if (strcmp(argv[i], "--cwd") == 0 && i + 1 < argc) cwd = argv[++i];
    else if (strcmp(argv[i], "--mask-fd") == 0 && i + 1 < argc) mask_fd = atoi(argv[++i]);
    else if (strcmp(argv[i], "--stdin-fd") == 0 && i + 1 < argc) stdin_fd = atoi(argv[++i]);
    else if (strcmp(argv[i], "--grace-ms") == 0 && i + 1 < argc) grace_ms = atol(argv[++i]);
    else if (strcmp(argv[i], "--no-cgroup") == 0) use_cgroup = false;
    else if (strcmp(argv[i], "--") == 0) break;
    else return 2;
  }
  if (base == NULL || i + 1 >= argc || grace_ms < 0) return 2;
  char **cmd = argv + i + 1;
  dagd_mask mask;
  dagd_mask_init(&mask);
  if (mask_fd >= 0) read_mask(mask_fd, &mask);
  if (stdin_fd >= 0) fcntl(stdin_fd, F_SETFD, FD_CLOEXEC);
  int pipefd[2] = {-1, -1};
  dagd_try_paths paths;
  dagd_try_paths_init(&paths, base);
  char cgroup[4096] = "";
  int procs = -1, cgfd = -1;
  int rc = 1;
  int log = open(paths.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0) {
    shim_log(2, "cannot open %s: %s", paths.log, strerror(errno));
    goto out;
  }
  int lock = open(paths.pid, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
    shim_warn(log, "cannot lock %s: %s", paths.pid, strerror(errno));
    goto out;
  }
  dagd_try_result r;
  if (dagd_try_read_end(&paths, &r, NULL, NULL) != DAGD_ENOENT) {
    /* Declared lost (or already run) before we got here: run nothing. */
    shim_log(log, "%s exists: not running the task%s", paths.exit, "");
    rc = 0;
    goto out;
  }
  /* Signals wait in a signalfd; the task gets them back unblocked. */
  sigset_t mask_sigs, old_sigs;
  sigemptyset(&mask_sigs);
  sigaddset(&mask_sigs, SIGCHLD);
  sigaddset(&mask_sigs, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask_sigs, &old_sigs);
  int sigfd = signalfd(-1, &mask_sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
    shim_warn(log, "cannot watch the try's processes: %s%s", strerror(errno), "");
    goto out;
  }
  if (use_cgroup && cgroup_make(cgroup, sizeof(cgroup))) {
    procs = dagd_cgroup_file(cgroup, "cgroup.procs", O_WRONLY);
    cgfd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  if (procs < 0 && cgroup[0]) {
    rmdir(cgroup);
    cgroup[0] = '\0';
  }
  char head[4200];
  int hn = snprintf(head, sizeof(head), "shim %ld\nsignals shim\n", (long)getpid());
  if (cgroup[0]) hn += snprintf(head + hn, sizeof(head) - (size_t)hn, "cgroup %s\n", cgroup);
  if (ftruncate(lock, 0) < 0 || pwrite(lock, head, (size_t)hn, 0) != hn) {
    shim_warn(log, "cannot write %s: %s", paths.pid, strerror(errno));
    goto out;
  }
  /* $DAGD_OUTPUT exists before the task, 0600 like every try file: a task
   * that opens it for writing keeps the mode, whatever its umask. */
  int out = open(paths.out, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (out < 0 || fchmod(out, 0600) < 0) {
    shim_warn(log, "cannot create %s: %s", paths.out, strerror(errno));
    if (out >= 0) close(out);
    goto out;
  }
  close(out);
  if (mask.n > 0 && pipe2(pipefd, O_CLOEXEC) < 0) {
    shim_warn(log, "pipe: %s%s", strerror(errno), "");
    goto out;
  }
  pid_t child = fork_into(cgfd, &procs);
  if (child < 0) {
    shim_warn(log, "fork: %s%s", strerror(errno), "");
    goto out;
  }
  if (child == 0) {
    /* The task: its own process group, so a signal reaches it and its
     * children at once; its own cgroup, before it can fork; no terminal;
     * output to the log; signals as the shim found them. */
    setpgid(0, 0);
    if (procs >= 0 && write(procs, "0", 1) < 0) shim_log(2, "cannot join the try's cgroup: %s%s", strerror(errno), "");
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigprocmask(SIG_SETMASK, &old_sigs, NULL);
    int input = stdin_fd >= 0 ? stdin_fd : open("/dev/null", O_RDONLY);
    if (stdin_fd >= 0) lseek(stdin_fd, 0, SEEK_SET);
    if (input >= 0) dup2(input, 0);
    int output = pipefd[1] >= 0 ? pipefd[1] : log;
    dup2(output, 1);
    dup2(output, 2);
    if (cwd && chdir(cwd) < 0) {
      shim_log(2, "cannot change to %s: %s", cwd, strerror(errno));
      _exit(127);
    }
    execvp(cmd[0], cmd);
    shim_log(2, "cannot execute %s: %s", cmd[0], strerror(errno));
    _exit(127);
  }
  setpgid(child, child); /* also here, so no signal can race the child's own call */
  char line[64];
  int ln = snprintf(line, sizeof(line), "task %ld\n", (long)child);
  if (pwrite(lock, line, (size_t)ln, hn) != ln) shim_warn(log, "cannot write %s: %s", paths.pid, strerror(errno));
  if (pipefd[1] >= 0) {
    close(pipefd[1]);
    pipefd[1] = -1;
  }
  shim_try t = {.task = child, .cgroup = cgroup[0] ? cgroup : NULL};
  supervise(&t, sigfd, pipefd[0], log, &mask, grace_ms);
  pipefd[0] = -1;
  r.how = WIFSIGNALED(t.status) ? DAGD_TRY_SIGNALED : DAGD_TRY_EXITED;
  r.code = WIFSIGNALED(t.status) ? WTERMSIG(t.status) : WEXITSTATUS(t.status);
  if (record_end(&paths, lock, log, &r) == 0) rc = 0;
out:
  /* The lock goes with the process; closing is for tidiness. */
  if (procs >= 0) close(procs);
  if (cgfd >= 0) close(cgfd);
  if (cgroup[0]) rmdir(cgroup);
  dagd_mask_close(&mask);
  dagd_try_paths_close(&paths);
  return rc;
}
