/* Candidate process models for a try (bench/README.md): a long-lived
 * supervisor that starts each task itself with clone3 and waits for it
 * through its pidfd, with no cgroup (mode 0), a cgroup per try (1) or one
 * reused cgroup (3), each exit appended to one journal in /dev/shm/mb.
 * Prints the CPU of this process and its children per try, N tries one
 * after another. Usage: procmodel N MODE CGROUP_PARENT (a writable cgroup
 * v2 folder, e.g. the one dagd-try-* folders are made in).
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double seconds(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

static double cpu(void) {
  struct rusage self, kids;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  return seconds(self.ru_utime) + seconds(self.ru_stime) + seconds(kids.ru_utime) + seconds(kids.ru_stime);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* /bin/true, into the cgroup cgfd (-1: none), its output to a log. */
static pid_t spawn(int cgfd, int *pidfd) {
  struct clone_args ca;
  memset(&ca, 0, sizeof(ca));
  ca.exit_signal = SIGCHLD;
  ca.flags = CLONE_PIDFD | (cgfd >= 0 ? CLONE_INTO_CGROUP : 0);
  ca.cgroup = cgfd >= 0 ? (uint64_t)cgfd : 0;
  ca.pidfd = (uint64_t)(uintptr_t)pidfd;
  long pid = syscall(SYS_clone3, &ca, sizeof(ca));
  if (pid == 0) {
    char *argv[] = {"/bin/true", NULL};
    int log = open("/dev/shm/mb/log", O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(log, 1);
    dup2(log, 2);
    execve(argv[0], argv, environ);
    _exit(127);
  }
  return (pid_t)pid;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: procmodel N MODE CGROUP_PARENT\n");
    return 2;
  }
  int n = atoi(argv[1]), mode = atoi(argv[2]);
  const char *parent = argv[3];
  mkdir("/dev/shm/mb", 0700);
  int journal = open("/dev/shm/mb/journal", O_WRONLY | O_CREAT | O_APPEND, 0600);
  char dir[512], events[600];
  int pool = -1;
  if (mode == 3) {
    snprintf(dir, sizeof(dir), "%s/procmodel-pool", parent);
    mkdir(dir, 0755);
    pool = open(dir, O_RDONLY | O_DIRECTORY);
    snprintf(events, sizeof(events), "%s/cgroup.events", dir);
  }
  double c0 = cpu(), t0 = now();
  for (int i = 0; i < n; i++) {
    int cg = pool;
    if (mode == 1) {
      snprintf(dir, sizeof(dir), "%s/procmodel-%d", parent, i);
      if (mkdir(dir, 0755) < 0) {
        perror(dir);
        return 1;
      }
      cg = open(dir, O_RDONLY | O_DIRECTORY);
    }
    int pidfd = -1;
    if (spawn(cg, &pidfd) < 0) {
      perror("clone3");
      return 1;
    }
    siginfo_t si;
    waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED);
    char rec[64];
    int len = snprintf(rec, sizeof(rec), "t%d exit %d\n", i, si.si_status);
    if (write(journal, rec, (size_t)len) != len) return 1;
    close(pidfd);
    if (mode == 1) { /* empty: the task was its only process */
      close(cg);
      rmdir(dir);
    }
    if (mode == 3) { /* checked empty before it is used again */
      char buf[128];
      int fd = open(events, O_RDONLY);
      if (fd < 0 || read(fd, buf, sizeof(buf)) < 0) return 1;
      close(fd);
    }
  }
  double c1 = cpu(), t1 = now();
  if (mode == 3) {
    close(pool);
    rmdir(dir);
  }
  printf("mode %d: wall %.3f ms/try, CPU (self + children) %.3f ms/try\n", mode, (t1 - t0) * 1000 / n,
         (c1 - c0) * 1000 / n);
  return 0;
}
