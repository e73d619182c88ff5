/* File-system helpers: removing a folder tree only below the folder it is
 * meant to clean, making a file's folders, in-memory files, and the lock
 * file that keeps one process per state file.
 * SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dagd/err.h"
#include "dagd/util.h"

/* Deeper trees are refused rather than walked: each level holds a
 * descriptor, and nothing dagd writes is more than a few levels deep. */
#define REMOVE_MAX_DEPTH 64

/* Removes the entry name of the folder dirfd and, for a folder,
 * everything below it. Symbolic links are removed, never followed: every
 * folder is opened with O_NOFOLLOW relative to its parent's descriptor, so
 * a link swapped in during the walk cannot lead it elsewhere. Returns 0
 * or -1 with errno set; an entry that is already gone is not an error. */
static int remove_at(int dirfd, const char *name, int depth) {
  if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return 0;
  if (errno != EISDIR) return -1;
  if (depth >= REMOVE_MAX_DEPTH) {
    errno = ELOOP;
    return -1;
  }
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  int rc = 0, e = 0;
  for (;;) {
    errno = 0;
    struct dirent *ent = readdir(d);
    if (ent == NULL) {
      if (errno != 0) rc = -1, e = errno;
      break;
    }
    if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
    if (remove_at(fd, ent->d_name, depth + 1) < 0) {
      rc = -1, e = errno;
      break;
    }
  }
  closedir(d);
  if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) rc = -1, e = errno;
  errno = e;
  return rc;
}

static int refuse(dagd_err *err, const char *path, const char *root, const char *why) {
  return dagd_err_set(err, DAGD_EINVAL, "%s: not removed: %s (it must be strictly below %s)", path, why, root);
}

int dagd_fs_remove_tree_within(const char *root, const char *path, dagd_err *err) {
  size_t rl = strlen(root);
  while (rl > 1 && root[rl - 1] == '/') rl--;
  /* Lexically first: path spells root, then at least one component. */
  const char *rel = NULL;
  if (rl == 1 && root[0] == '/') rel = path[0] == '/' ? path : NULL;
  else if (rl > 0 && strncmp(path, root, rl) == 0 && path[rl] == '/') rel = path + rl;
  if (rel == NULL) return refuse(err, path, root, "it does not start with that folder");
  char *copy = dagd_strdup(rel), *save = NULL, *rootdir = dagd_strndup(root, rl);
  char **comps = NULL;
  size_t n = 0;
  int rc = 0, dfd = -1;
  for (char *c = strtok_r(copy, "/", &save); c != NULL; c = strtok_r(NULL, "/", &save)) {
    if (strcmp(c, ".") == 0 || strcmp(c, "..") == 0) {
      rc = refuse(err, path, root, "it has a \".\" or \"..\" component");
      goto out;
    }
    comps = dagd_realloc(comps, (n + 1) * sizeof(*comps));
    comps[n++] = c;
  }
  if (n == 0) {
    rc = refuse(err, path, root, "it is that folder itself");
    goto out;
  }
  /* Then physically: each folder on the way opened below the last one,
   * never through a symbolic link, so the walk cannot leave root. */
  if ((dfd = open(rootdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) goto io;
  for (size_t i = 0; i + 1 < n; i++) {
    int next = openat(dfd, comps[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && (errno == ELOOP || errno == ENOTDIR)) {
      rc = refuse(err, path, root, "a component on the way is a symbolic link or not a folder");
      goto out;
    }
    int e = errno;
    close(dfd);
    dfd = next;
    errno = e;
    if (dfd < 0) goto io;
  }
  struct stat sb;
  if (fstatat(dfd, comps[n - 1], &sb, AT_SYMLINK_NOFOLLOW) < 0) goto io;
  if (S_ISLNK(sb.st_mode)) {
    rc = refuse(err, path, root, "it is a symbolic link");
    goto out;
  }
  if (remove_at(dfd, comps[n - 1], 0) < 0) goto io;
  goto out;
io:
  /* Nothing there is nothing to remove. */
  if (errno != ENOENT) {
    int e = errno;
    rc = dagd_err_set(err, DAGD_EIO, "%s: cannot remove: %s", path, strerror(e));
    if (err) err->cause = e;
  }
out:
  if (dfd >= 0) close(dfd);
  free(comps);
  free(copy);
  free(rootdir);
  return rc;
}

int dagd_mkdirs_for(const char *path) {
  char *p = dagd_strdup(path);
  char *slash = strrchr(p, '/');
  int rc = 0;
  if (slash == NULL || slash == p) goto out;
  *slash = '\0';
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s != '\0') continue;
    char c = *s;
    *s = '\0';
    if (mkdir(p, 0700) < 0 && errno != EEXIST) {
      rc = -1;
      break;
    }
    if (c == '\0') break;
    *s = c;
  }
out:
  free(p);
  return rc;
}

int dagd_memory_file(const char *name, const void *data, size_t len) {
  int fd = memfd_create(name, MFD_CLOEXEC);
  size_t off = 0;
  while (fd >= 0 && off < len) {
    ssize_t n = write(fd, (const char *)data + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += (size_t)n;
  }
  if (fd >= 0 && (off < len || lseek(fd, 0, SEEK_SET) < 0)) {
    int e = off < len ? EIO : errno;
    close(fd);
    errno = e;
    fd = -1;
  }
  return fd;
}

int dagd_fs_lock_pidfile(const char *path, int *fd_out, long *holder, dagd_err *err) {
  *fd_out = -1;
  if (holder) *holder = 0;
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int e = errno;
    int rc = dagd_err_set(err, DAGD_EIO, "%s: cannot open the lock file: %s", path, strerror(e));
    if (err) err->cause = e;
    return rc;
  }
  /* A POSIX record lock, not flock: the kernel drops it when the process
   * dies however it dies, and a child forked from the daemon does not
   * inherit it, so a try or a parser outliving a killed daemon never
   * blocks the next one. F_GETLK names the holder even before it has
   * written its pid. */
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  if (fcntl(fd, F_SETLK, &fl) < 0) {
    int e = errno;
    if (e == EACCES || e == EAGAIN) {
      struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
      long pid = 0;
      if (fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK && q.l_pid > 0) pid = (long)q.l_pid;
      close(fd);
      if (holder) *holder = pid;
      return dagd_err_set(err, DAGD_EEXIST, "%s is locked by process %ld", path, pid);
    }
    close(fd);
    int rc = dagd_err_set(err, DAGD_EIO, "%s: cannot lock: %s", path, strerror(e));
    if (err) err->cause = e;
    return rc;
  }
  /* For people: `cat dagd.db.lock` names the daemon. */
  char buf[32];
  int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
    int e = errno;
    close(fd);
    int rc = dagd_err_set(err, DAGD_EIO, "%s: cannot write the pid: %s", path, strerror(e));
    if (err) err->cause = e;
    return rc;
  }
  *fd_out = fd;
  return 0;
}

int dagd_fs_write_private(const char *path, const void *data, size_t len, dagd_err *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 || fchmod(fd, 0600) < 0) goto fail;
  for (size_t off = 0; off < len;) {
    ssize_t n = write(fd, (const char *)data + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) goto fail;
    off += (size_t)n;
  }
  if (close(fd) < 0) {
    fd = -1;
    goto fail;
  }
  return 0;
fail:;
  int e = errno ? errno : EIO;
  if (fd >= 0) close(fd);
  dagd_err_set(err, DAGD_EIO, "cannot write %s: %s", path, strerror(e));
  if (err) err->cause = e;
  return DAGD_EIO;
}
