/* File-system helpers: removing a folder tree, making a file's folders,
 * in-memory files.
 * SPDX-License-Identifier: MIT */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dagd/util.h"

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int dagd_rmtree(const char *path) {
  /* Depth first, no symlinks followed: a link inside is removed, not its target. */
  int rc = nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  return rc == 0 || errno == ENOENT ? 0 : -1;
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
