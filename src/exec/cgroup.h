/* The cgroup v2 parts the shim and the supervisor share: where this
 * process's cgroup is, a file of a cgroup, its members, and killing them
 * all. Plain code, no loop.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_EXEC_CGROUP_H
#define DAGD_EXEC_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The folder of this process's cgroup v2 ("<mount><path>"); false where
 * there is no cgroup v2 or it cannot be named. */
bool dagd_cgroup_own(char *out, size_t size);
/* Opens <dir>/<name> with flags (O_CLOEXEC added). */
int dagd_cgroup_file(const char *dir, const char *name, int flags);
/* The processes in the cgroup now, this one left out; false when they
 * cannot be listed. *out is freed by the caller. */
bool dagd_cgroup_members(const char *dir, pid_t **out, size_t *n);
/* SIGKILL to every process of the cgroup (cgroup.kill); false where the
 * kernel has no cgroup.kill (before 5.14). */
bool dagd_cgroup_kill(const char *dir);
/* sig to each member, the list taken before the first goes out; false
 * when the members cannot be listed. */
bool dagd_cgroup_signal(const char *dir, int sig);

#endif
