/* A try's files on disk: the exit record (written once, atomically), the
 * pid record, and process start times from /proc against pid reuse.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dagd/err.h"
#include "dagd/exec.h"
#include "dagd/util.h"

void dagd_try_paths_init(dagd_try_paths *p, const char *base) {
  p->log = dagd_asprintf("%s.log", base);
  p->pid = dagd_asprintf("%s.pid", base);
  p->exit = dagd_asprintf("%s.exit", base);
  p->out = dagd_asprintf("%s.out", base);
}

void dagd_try_paths_close(dagd_try_paths *p) {
  free(p->log);
  free(p->pid);
  free(p->exit);
  free(p->out);
  memset(p, 0, sizeof(*p));
}

int dagd_try_write_exit(const char *path, const dagd_try_result *r, dagd_err *err) {
  char tmp[4096], text[64];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  int n = 0;
  switch (r->how) {
  case DAGD_TRY_EXITED: n = snprintf(text, sizeof(text), "exit %d\n", r->code); break;
  case DAGD_TRY_SIGNALED: n = snprintf(text, sizeof(text), "signal %d\n", r->code); break;
  case DAGD_TRY_VANISHED: n = snprintf(text, sizeof(text), "vanished\n"); break;
  }
  /* When it ended, to the microsecond: a daemon that finds the record
   * later records the try's own end (file times are only as fine as the
   * kernel's tick). Readers that know only the first line ignore it. */
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  n += snprintf(text + n, sizeof(text) - (size_t)n, "ended %lld.%06ld\n", (long long)now.tv_sec,
                now.tv_nsec / 1000);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) goto fail;
  /* No fsync: rename is atomic against a crash of any process, which is
   * what the record must survive; after a power loss a missing record
   * makes the try "lost", and it is retried, never run twice at once. */
  if (write(fd, text, (size_t)n) != n) {
    close(fd);
    goto fail;
  }
  close(fd);
  if (rename(tmp, path) < 0) goto fail;
  return 0;
fail:
  if (err && !dagd_err_is_set(err)) {
    dagd_err_set(err, DAGD_EIO, "%s: cannot write the exit record: %s", path, strerror(errno));
    err->cause = errno;
  }
  unlink(tmp);
  return DAGD_EIO;
}

int dagd_try_read_exit(const char *path, dagd_try_result *r, dagd_err *err) {
  FILE *f = fopen(path, "re");
  if (f == NULL) {
    if (errno == ENOENT) return DAGD_ENOENT;
    return dagd_err_set(err, DAGD_EIO, "%s: %s", path, strerror(errno));
  }
  char word[16] = "";
  int code = 0, rc = 0;
  int got = fscanf(f, "%15s %d", word, &code);
  fclose(f);
  if (got == 2 && strcmp(word, "exit") == 0) *r = (dagd_try_result){DAGD_TRY_EXITED, code};
  else if (got == 2 && strcmp(word, "signal") == 0) *r = (dagd_try_result){DAGD_TRY_SIGNALED, code};
  else if (got >= 1 && strcmp(word, "vanished") == 0) *r = (dagd_try_result){DAGD_TRY_VANISHED, 0};
  else rc = dagd_err_set(err, DAGD_EIO, "%s: unreadable exit record", path);
  return rc;
}

double dagd_try_exit_time(const char *path) {
  FILE *f = fopen(path, "re");
  if (f == NULL) return 0;
  char line[64];
  double t = 0;
  /* The "ended" line after the outcome's; else the file's mtime. */
  while (t == 0 && fgets(line, sizeof(line), f)) {
    if (strncmp(line, "ended ", 6) == 0) t = strtod(line + 6, NULL);
  }
  struct stat st;
  if (t <= 0 && fstat(fileno(f), &st) == 0) t = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
  fclose(f);
  return t;
}

int dagd_try_read_pids(const char *path, pid_t *shim, pid_t *task, dagd_err *err) {
  *shim = *task = 0;
  FILE *f = fopen(path, "re");
  if (f == NULL) {
    if (errno == ENOENT) return DAGD_ENOENT;
    return dagd_err_set(err, DAGD_EIO, "%s: %s", path, strerror(errno));
  }
  long s = 0, t = 0;
  /* "shim PID\ntask PID\n"; the task line appears once it is forked. */
  if (fscanf(f, "shim %ld\n", &s) == 1) *shim = (pid_t)s;
  if (fscanf(f, "task %ld\n", &t) == 1) *task = (pid_t)t;
  fclose(f);
  return 0;
}

uint64_t dagd_proc_start_time(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  /* The command name (field 2) may hold spaces and parens: skip to the
   * last ')'. Field 22 is then the 20th field after it. */
  char *p = strrchr(buf, ')');
  if (p == NULL || p[1] != ' ') return 0;
  p++;
  /* A zombie has ended: it only waits to be reaped. */
  if (p[1] == 'Z' || p[1] == 'X') return 0;
  for (int field = 3; field < 22 && p; field++) p = strchr(p + 1, ' ');
  if (p == NULL) return 0;
  return strtoull(p + 1, NULL, 10);
}
