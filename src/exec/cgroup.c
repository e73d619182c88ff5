/* cgroup v2 helpers for the shim and the supervisor.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "dagd/util.h"

/* Where cgroup v2 is mounted (the "unified" tree on a hybrid host). */
static bool cgroup2_mount(char *out, size_t size) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (f == NULL) return false;
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof(line), f)) {
    /* id parent major:minor root mountpoint options... - fstype source ... */
    char *dash = strstr(line, " - ");
    if (dash == NULL || strncmp(dash + 3, "cgroup2 ", 8) != 0) continue;
    char *field = line;
    for (int i = 0; i < 4 && field; i++) field = strchr(field + 1, ' ');
    if (field == NULL) continue;
    field++;
    char *end = strchr(field, ' ');
    if (end == NULL || (size_t)(end - field) >= size || memchr(field, '\\', (size_t)(end - field))) continue;
    memcpy(out, field, (size_t)(end - field));
    out[end - field] = '\0';
    found = true;
  }
  fclose(f);
  return found;
}

bool dagd_cgroup_own(char *out, size_t size) {
  char mnt[2048];
  if (!cgroup2_mount(mnt, sizeof(mnt))) return false;
  FILE *f = fopen("/proc/self/cgroup", "re");
  if (f == NULL) return false;
  char line[2048], own[2048] = "";
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, "0::", 3) != 0) continue;
    line[strcspn(line, "\n")] = '\0';
    snprintf(own, sizeof(own), "%s", line + 3);
  }
  fclose(f);
  if (own[0] != '/' || strstr(own, "(deleted)")) return false;
  int n = snprintf(out, size, "%s%s", mnt, strcmp(own, "/") == 0 ? "" : own);
  return n > 0 && (size_t)n < size;
}

int dagd_cgroup_file(const char *dir, const char *name, int flags) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  return open(path, flags | O_CLOEXEC);
}

bool dagd_cgroup_members(const char *dir, pid_t **out, size_t *n) {
  *out = NULL;
  *n = 0;
  int fd = dagd_cgroup_file(dir, "cgroup.procs", O_RDONLY);
  FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
  if (f == NULL) {
    if (fd >= 0) close(fd);
    return false;
  }
  size_t cap = 0;
  long pid;
  while (fscanf(f, "%ld", &pid) == 1) {
    if (pid <= 0 || pid == getpid()) continue;
    if (*n == cap) *out = dagd_realloc(*out, (cap = cap ? cap * 2 : 64) * sizeof(**out));
    (*out)[(*n)++] = (pid_t)pid;
  }
  fclose(f);
  return true;
}

bool dagd_cgroup_kill(const char *dir) {
  int fd = dagd_cgroup_file(dir, "cgroup.kill", O_WRONLY);
  if (fd < 0) return false;
  bool done = write(fd, "1", 1) == 1;
  close(fd);
  return done;
}

bool dagd_cgroup_signal(const char *dir, int sig) {
  pid_t *pids;
  size_t n;
  if (!dagd_cgroup_members(dir, &pids, &n)) return false;
  for (size_t i = 0; i < n; i++) kill(pids[i], sig);
  free(pids);
  return true;
}
