/* A try's files on disk: the exit record (written once, atomically), the
 * pid record (which also takes the try's end when the exit record cannot
 * be written: a full disk), and process start times from /proc against
 * pid reuse.
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
#include "dagd/layout.h"
#include "dagd/util.h"

void dagd_try_paths_init(dagd_try_paths *p, const char *base) {
  p->log = dagd_asprintf("%s" DAGD_TRY_LOG_SUFFIX, base);
  p->pid = dagd_asprintf("%s" DAGD_TRY_PID_SUFFIX, base);
  p->exit = dagd_asprintf("%s" DAGD_TRY_EXIT_SUFFIX, base);
  p->out = dagd_asprintf("%s" DAGD_TRY_OUT_SUFFIX, base);
}

void dagd_try_paths_close(dagd_try_paths *p) {
  free(p->log);
  free(p->pid);
  free(p->exit);
  free(p->out);
  memset(p, 0, sizeof(*p));
}

int dagd_try_make_folder(const char *base) {
  char *p = dagd_strdup(base);
  char *slash = strrchr(p, '/');
  int rc = 0;
  if (slash) *slash = '\0';
  /* Most tries find every folder above their task's there already: one
   * mkdir, not one per component of the path. */
  if (slash == NULL || mkdir(p, 0700) == 0 || errno == EEXIST) {
    free(p);
    return 0;
  }
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    if (mkdir(p, 0700) < 0 && errno != EEXIST) rc = -errno;
    *s = '/';
  }
  if (rc == 0 && mkdir(p, 0700) < 0 && errno != EEXIST) rc = -errno;
  free(p);
  return rc;
}

int dagd_try_write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int dagd_try_write_conf(const char *base, const char *conf, dagd_err *err) {
  char *path = dagd_asprintf("%s" DAGD_TRY_CONF_SUFFIX, base);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  bool ok = fd >= 0 && fchmod(fd, 0600) == 0 && dagd_try_write_all(fd, conf, strlen(conf)) == 0;
  int e = ok ? 0 : (errno ? errno : EIO);
  if (fd >= 0 && close(fd) < 0 && e == 0) e = errno;
  if (e) {
    dagd_err_set(err, DAGD_EIO, "cannot write %s: %s", path, strerror(e));
    if (err) err->cause = e;
  }
  free(path);
  return e ? DAGD_EIO : 0;
}

/* The record's text: the outcome's line, then "ended SECONDS.MICROS". */
static int format_end(const dagd_try_result *r, char *text, size_t size) {
  int n = 0;
  switch (r->how) {
  case DAGD_TRY_EXITED: n = snprintf(text, size, "exit %d\n", r->code); break;
  case DAGD_TRY_SIGNALED: n = snprintf(text, size, "signal %d\n", r->code); break;
  case DAGD_TRY_VANISHED: n = snprintf(text, size, "vanished\n"); break;
  }
  /* When it ended, to the microsecond: a daemon that finds the record
   * later records the try's own end (file times are only as fine as the
   * kernel's tick). Readers that know only the first line ignore it. */
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  n += snprintf(text + n, size - (size_t)n, "ended %lld.%06ld\n", (long long)now.tv_sec, now.tv_nsec / 1000);
  return n;
}

int dagd_try_write_exit(const char *path, const dagd_try_result *r, dagd_err *err) {
  char tmp[4096], text[64];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  int n = format_end(r, text, sizeof(text));
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) goto fail;
  /* No fsync: rename is atomic against a crash of any process, which is
   * what the record must survive; after a power loss a missing record
   * makes the try "lost", and it is retried, never run twice at once. */
  if (write(fd, text, (size_t)n) != n) {
    int saved = errno ? errno : ENOSPC;
    close(fd);
    errno = saved;
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
  int saved = errno;
  unlink(tmp);
  errno = saved;
  return DAGD_EIO;
}

int dagd_try_append_end(int fd, const dagd_try_result *r) {
  char text[64];
  int n = format_end(r, text, sizeof(text));
  /* The pid record's last block is already the file's: a few more bytes
   * in it need no new space, which is why this works on a full disk. */
  off_t end = lseek(fd, 0, SEEK_END);
  if (end < 0) return DAGD_EIO;
  return pwrite(fd, text, (size_t)n, end) == n ? 0 : DAGD_EIO;
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

int dagd_try_read_pidfile(const char *path, dagd_try_pidfile *rec, dagd_err *err) {
  memset(rec, 0, sizeof(*rec));
  FILE *f = fopen(path, "re");
  if (f == NULL) {
    if (errno == ENOENT) return DAGD_ENOENT;
    return dagd_err_set(err, DAGD_EIO, "%s: %s", path, strerror(errno));
  }
  /* One fact a line: "shim PID", "task PID" (once forked), "signals shim"
   * (the shim takes stop signals itself), "cgroup PATH" (the try's own
   * cgroup), and, when the exit record could not be written, the record's
   * lines ("exit N" or "signal N", "ended T"). */
  char line[4200];
  while (fgets(line, sizeof(line), f)) {
    size_t len = strlen(line);
    if (len == 0 || line[len - 1] != '\n') break; /* a line still being written */
    line[--len] = '\0';
    long v;
    if (sscanf(line, "shim %ld", &v) == 1) rec->shim = (pid_t)v;
    else if (sscanf(line, "task %ld", &v) == 1) rec->task = (pid_t)v;
    else if (strcmp(line, "signals shim") == 0) rec->shim_signals = true;
    else if (strncmp(line, "cgroup /", 8) == 0 && len - 7 < sizeof(rec->cgroup)) memcpy(rec->cgroup, line + 7, len - 6);
    else if (sscanf(line, "exit %ld", &v) == 1) rec->end = (dagd_try_result){DAGD_TRY_EXITED, (int)v}, rec->has_end = true;
    else if (sscanf(line, "signal %ld", &v) == 1) rec->end = (dagd_try_result){DAGD_TRY_SIGNALED, (int)v}, rec->has_end = true;
    else if (strncmp(line, "ended ", 6) == 0) rec->ended = strtod(line + 6, NULL);
  }
  fclose(f);
  return 0;
}

int dagd_try_read_pids(const char *path, pid_t *shim, pid_t *task, dagd_err *err) {
  dagd_try_pidfile rec;
  int rc = dagd_try_read_pidfile(path, &rec, err);
  *shim = rec.shim;
  *task = rec.task;
  return rc;
}

int dagd_try_read_end(const dagd_try_paths *p, dagd_try_result *r, bool *from_pid, dagd_err *err) {
  if (from_pid) *from_pid = false;
  int rc = dagd_try_read_exit(p->exit, r, err);
  if (rc != DAGD_ENOENT) return rc;
  dagd_try_pidfile rec;
  if (dagd_try_read_pidfile(p->pid, &rec, NULL) != 0 || !rec.has_end) return DAGD_ENOENT;
  *r = rec.end;
  if (from_pid) *from_pid = true;
  return 0;
}

double dagd_try_end_time(const dagd_try_paths *p) {
  double t = dagd_try_exit_time(p->exit);
  if (t > 0) return t;
  dagd_try_pidfile rec;
  if (dagd_try_read_pidfile(p->pid, &rec, NULL) != 0 || !rec.has_end) return 0;
  return rec.ended;
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
