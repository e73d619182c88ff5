/* The docker operator's run: `docker run` (the command line src/command/docker.c
 * built) under `dagd op`, which owns the container's lifecycle. It tells
 * docker's own failures (125 the container could not be created or
 * started, 126 its command cannot be invoked, 127 not found) from the
 * container's exit code by asking the engine whether the container ever
 * started; on SIGTERM (the daemon's execution_timeout, or a clear/kill,
 * including after the daemon restarted and re-adopted the try: this
 * process runs on under the shim) it runs `docker stop -t <grace>` then
 * `docker kill`, so no container outlives its task; with auto_remove the
 * container is removed once its end is known.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dagd/operators.h"
#include "dagd/util.h"

/* Starts argv[0] from PATH. Its stdout goes to out_fd when >= 0 (a pipe),
 * to /dev/null when quiet (stderr too), else to the log like ours. */
static pid_t spawn(char *const *argv, bool quiet, int out_fd) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid != 0) return pid;
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  int null = open("/dev/null", O_RDWR);
  if (out_fd >= 0) dup2(out_fd, 1);
  else if (quiet && null >= 0) dup2(null, 1);
  if (quiet && null >= 0) dup2(null, 2);
  execvp(argv[0], argv);
  dprintf(2, "docker: cannot run %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

/* Waits for pid, through signals. Returns its exit status (128 + signal
 * when killed), or -1. */
static int wait_exit(pid_t pid) {
  int st;
  for (;;) {
    pid_t w = waitpid(pid, &st, 0);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return -1;
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Runs a docker command to its end; its stdout in *capture when given. */
static int docker_run_cmd(char *const *argv, bool quiet, dagd_buf *capture) {
  int fds[2] = {-1, -1};
  if (capture && pipe2(fds, O_CLOEXEC) < 0) return -1;
  pid_t pid = spawn(argv, quiet, fds[1]);
  if (fds[1] >= 0) close(fds[1]);
  if (pid < 0) {
    if (fds[0] >= 0) close(fds[0]);
    return -1;
  }
  if (capture) {
    char chunk[4096];
    ssize_t n;
    while ((n = read(fds[0], chunk, sizeof(chunk))) != 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      dagd_buf_append(capture, chunk, (size_t)n);
    }
    close(fds[0]);
  }
  return wait_exit(pid);
}

static void stop_container(const char *name, int grace, FILE *log) {
  char g[16];
  snprintf(g, sizeof(g), "%d", grace);
  fprintf(log, "docker: stopping container %s (docker stop -t %d, then docker kill)\n", name, grace);
  char *stop[] = {"docker", "stop", "-t", g, (char *)name, NULL};
  docker_run_cmd(stop, true, NULL);
  char *kill[] = {"docker", "kill", (char *)name, NULL};
  docker_run_cmd(kill, true, NULL);
}

int dagd_operator_docker(dagd_op_ctx *ctx) {
  const json_t *d = json_object_get(ctx->spec, "docker");
  const json_t *jargv = json_object_get(d, "argv");
  const char *name = json_string_value(json_object_get(d, "container"));
  bool auto_remove = json_is_true(json_object_get(d, "auto_remove"));
  int grace = (int)json_integer_value(json_object_get(d, "stop_grace"));
  if (!json_is_array(jargv) || json_array_size(jargv) == 0 || name == NULL) {
    fprintf(ctx->log, "docker: the spec holds no docker command\n");
    return 1;
  }
  if (grace <= 0) grace = 5;
  char **argv = dagd_calloc(json_array_size(jargv) + 1, sizeof(char *));
  for (size_t i = 0; i < json_array_size(jargv); i++) {
    const char *a = json_string_value(json_array_get(jargv, i));
    argv[i] = (char *)(a ? a : "");
  }
  /* The signals are taken synchronously (sigtimedwait), so a stop request
   * can never slip in between a check and a wait. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, NULL);

  fprintf(ctx->log, "docker: starting container %s\n", name);
  pid_t pid = spawn(argv, false, -1);
  free(argv);
  if (pid < 0) {
    fprintf(ctx->log, "docker: cannot fork: %s\n", strerror(errno));
    return 1;
  }
  int st = 0;
  bool stopping = false;
  for (;;) {
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) {
      fprintf(ctx->log, "docker: waiting for docker run: %s\n", strerror(errno));
      return 1;
    }
    struct timespec tick = {1, 0};
    int sig = sigtimedwait(&set, NULL, &tick);
    if ((sig == SIGTERM || sig == SIGINT || sig == SIGHUP) && !stopping) {
      stopping = true;
      stop_container(name, grace, ctx->log);
    } else if (sig < 0 && stopping) {
      /* The container may have been created after our stop (a stop
       * request during its start): kill it again until docker run ends. */
      char *kill[] = {"docker", "kill", (char *)name, NULL};
      docker_run_cmd(kill, true, NULL);
    }
  }
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);

  /* Did the container start? Only the engine knows: docker run's own
   * status cannot tell its failures from a container exiting 125-127. */
  char *inspect[] = {"docker", "inspect", "--type", "container", "--format",
                     "{{.State.Status}}|{{.State.ExitCode}}|{{.State.Error}}", (char *)name, NULL};
  dagd_buf info;
  dagd_buf_init(&info);
  int irc = docker_run_cmd(inspect, true, &info);
  char status[32] = "";
  int state_code = -1, used = 0;
  if (irc == 0 && info.data) sscanf(info.data, "%31[^|]|%d|%n", status, &state_code, &used);
  const char *state_err = irc == 0 && used > 0 ? info.data + used : "";
  size_t elen = strlen(state_err);
  while (elen > 0 && (state_err[elen - 1] == '\n' || state_err[elen - 1] == ' ')) elen--;
  bool started = irc == 0 && strcmp(status, "created") != 0 && status[0] != '\0';
  if (started) {
    code = state_code;
    fprintf(ctx->log, "docker: container %s %s with code %d\n", name, stopping ? "was stopped and exited" : "exited",
            code);
  } else if (irc == 0) {
    const char *what = code == 126 ? "the container's command could not be invoked"
                       : code == 127 ? "the container's command was not found"
                                     : "the container could not be started";
    fprintf(ctx->log, "docker: %s (%d): %.*s\n", what, code, (int)elen, state_err);
  } else if (code >= 125 && code <= 127) {
    fprintf(ctx->log, "docker: the container could not be created (%d): see docker's message above\n", code);
  } else {
    fprintf(ctx->log, "docker: container %s is gone; docker run ended with %d\n", name, code);
  }
  dagd_buf_close(&info);
  if (auto_remove && irc == 0) {
    char *rm[] = {"docker", "rm", "-f", (char *)name, NULL};
    if (docker_run_cmd(rm, true, NULL) != 0) fprintf(ctx->log, "docker: could not remove container %s\n", name);
  }
  return code;
}
