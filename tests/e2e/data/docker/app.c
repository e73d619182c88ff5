/* The image of the docker tests: a static program, so `docker import` of
 * one file makes a working image with nothing from outside.
 *   app CODE [SECONDS [KEY=VALUE]]: prints a line, writes KEY=VALUE to
 *   $DAGD_OUTPUT, sleeps SECONDS, exits with CODE. As a container's PID 1
 *   without a SIGTERM handler it ignores SIGTERM, so `docker stop` has to
 *   fall back to a kill. It also prints what it sees of two variables:
 *   the task's own DOCKER_TASK_VAR and the daemon's DAGD_SECRET_E2E,
 *   which must not reach a container.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int code = argc > 1 ? atoi(argv[1]) : 0;
  int secs = argc > 2 ? atoi(argv[2]) : 0;
  printf("hello from the container, pid %d\n", (int)getpid());
  const char *tv = getenv("DOCKER_TASK_VAR"), *sec = getenv("DAGD_SECRET_E2E");
  printf("task var %s, daemon secret %s\n", tv ? tv : "(unset)", sec ? sec : "(unset)");
  fflush(stdout);
  const char *out = getenv("DAGD_OUTPUT");
  if (argc > 3 && out) {
    FILE *f = fopen(out, "w");
    if (f == NULL || fprintf(f, "%s\n", argv[3]) < 0 || fclose(f) != 0) {
      perror(out);
      return 90;
    }
  }
  if (secs > 0) sleep((unsigned)secs);
  return code;
}
