/* stamp FILE ID: the task of the per-task overhead benchmark. Appends one
 * line "ID START END" to FILE, START being read first thing in main() and
 * END just before exit (CLOCK_REALTIME, the clock dagd stamps its task
 * instances with). Built static by bench/sched.py so that it costs about
 * what `true` costs: no dynamic loader, one open and one write.
 * SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  struct timespec start, end;
  clock_gettime(CLOCK_REALTIME, &start);
  if (argc != 3) return 2;
  int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return 1;
  char line[512];
  clock_gettime(CLOCK_REALTIME, &end);
  int n = snprintf(line, sizeof(line), "%s %lld.%09ld %lld.%09ld\n", argv[2], (long long)start.tv_sec,
                   start.tv_nsec, (long long)end.tv_sec, end.tv_nsec);
  if (n <= 0 || n >= (int)sizeof(line) || write(fd, line, (size_t)n) != n) return 1;
  return 0;
}
