/* Tests for the executor with a real libuv loop, the real shim (the built
 * dagd binary) and real processes: exit codes, logs, signals reaching the
 * whole process group, exec failures, and re-adoption of tries started by
 * an earlier daemon (running, finished, and lost ones, including an
 * orphaned task that must be killed and a late shim that must not run).
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dagd/err.h"
#include "dagd/exec.h"
#include "dagd/util.h"

#define SHIM DAGD_BINARY_DIR "/dagd"

extern char **environ;

typedef struct fixture {
  char dir[64];
  uv_loop_t loop;
  uv_timer_t guard;
  dagd_exec *ex;
  int done;
  dagd_try_result result;
} fixture;

static void on_guard(uv_timer_t *h) { fail_msg("the loop waited 20 s for an exit that never came"); }

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  strcpy(f->dir, "/tmp/dagd-exec-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  uv_loop_init(&f->loop);
  uv_timer_init(&f->loop, &f->guard);
  f->ex = dagd_exec_new(&f->loop, SHIM);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  dagd_exec_close(f->ex);
  uv_close((uv_handle_t *)&f->guard, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0); /* no handle leaked */
  assert_int_equal(dagd_fs_remove_tree_within("/tmp", f->dir, NULL), 0);
  free(f);
  return 0;
}

static void on_done(void *data, const dagd_try_result *r, double ended) {
  (void)ended;
  fixture *f = data;
  f->done++;
  f->result = *r;
}

/* Runs the loop until the try's callback fired. */
static void wait_done(fixture *f) {
  uv_timer_start(&f->guard, on_guard, 20000, 0);
  while (f->done == 0) uv_run(&f->loop, UV_RUN_ONCE);
  uv_timer_stop(&f->guard);
  assert_int_equal(f->done, 1);
}

static char *base_path(fixture *f, const char *name) { return dagd_asprintf("%s/%s", f->dir, name); }

static char *slurp(const char *path) {
  FILE *fp = fopen(path, "r");
  if (fp == NULL) return strdup("");
  dagd_buf b;
  dagd_buf_init(&b);
  char chunk[512];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) dagd_buf_append(&b, chunk, n);
  fclose(fp);
  return dagd_buf_steal(&b);
}

static void start(fixture *f, const char *base, char *const *argv) {
  dagd_exec_spec spec = {.base = base, .argv = argv, .env = environ, .cwd = f->dir};
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_exec_start(f->ex, &spec, on_done, f, NULL, &err) != 0) fail_msg("start: %s", err.msg);
}

static void test_exit_code_and_log(void **state) {
  fixture *f = *state;
  char *base = base_path(f, "1");
  char *argv[] = {"sh", "-c", "echo out; echo err >&2; pwd; exit 3", NULL};
  start(f, base, argv);
  assert_int_equal(dagd_exec_running(f->ex), 1);
  wait_done(f);
  assert_int_equal(f->result.how, DAGD_TRY_EXITED);
  assert_int_equal(f->result.code, 3);
  assert_int_equal(dagd_exec_running(f->ex), 0);
  dagd_try_paths p;
  dagd_try_paths_init(&p, base);
  char *log = slurp(p.log);
  char want[128];
  snprintf(want, sizeof(want), "out\nerr\n%s\n", f->dir);
  assert_string_equal(log, want);
  free(log);
  struct stat sb;
  assert_int_equal(stat(p.log, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  dagd_try_result r;
  assert_int_equal(dagd_try_read_exit(p.exit, &r, NULL), 0);
  assert_int_equal(r.code, 3);
  dagd_try_paths_close(&p);
  free(base);
}

/* With secrets, the task's output goes through the shim's masking pipe:
 * no secret reaches the log file, however the writes are cut; the input
 * reaches the task on its standard input. */
static void test_secrets_masked_in_log(void **state) {
  fixture *f = *state;
  char *base = base_path(f, "masked");
  char *argv[] = {"sh", "-c",
                  "printf 'a hunter'; printf '2pass b\\n'; echo hunter2pass >&2; echo 'x\"hunter2pass' 1>&2; "
                  "head -c 5000 /dev/zero | tr '\\0' z; echo hunter2pass; cat",
                  NULL};
  const char *secrets[] = {"hunter2pass", "zzzzzzhunter", NULL};
  dagd_exec_spec spec = {.base = base, .argv = argv, .env = environ, .cwd = f->dir, .secrets = secrets,
                         .input = "the input\n"};
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_exec_start(f->ex, &spec, on_done, f, NULL, &err), 0);
  wait_done(f);
  assert_int_equal(f->result.how, DAGD_TRY_EXITED);
  assert_int_equal(f->result.code, 0);
  dagd_try_paths p;
  dagd_try_paths_init(&p, base);
  char *log = slurp(p.log);
  assert_null(strstr(log, "hunter"));
  dagd_buf want;
  dagd_buf_init(&want);
  dagd_buf_puts(&want, "a *** b\n***\nx\"***\n");
  for (int i = 0; i < 5000 - 6; i++) dagd_buf_putc(&want, 'z');
  dagd_buf_puts(&want, "***\nthe input\n"); /* the two overlapping secrets: one run */
  assert_string_equal(log, want.data);
  dagd_buf_close(&want);
  free(log);
  dagd_try_paths_close(&p);
  free(base);
}

/* A background process that keeps the output pipe open cannot hold the
 * try: it ends when its task does. */
static void test_background_holder_does_not_hold_try(void **state) {
  fixture *f = *state;
  char *base = base_path(f, "holder");
  char *argv[] = {"sh", "-c", "sleep 60 & echo started", NULL};
  const char *secrets[] = {"hunter2pass", NULL};
  dagd_exec_spec spec = {.base = base, .argv = argv, .env = environ, .cwd = f->dir, .secrets = secrets};
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_exec_start(f->ex, &spec, on_done, f, NULL, &err), 0);
  wait_done(f); /* fails after 20 s, well before the sleep ends */
  assert_int_equal(f->result.how, DAGD_TRY_EXITED);
  assert_int_equal(f->result.code, 0);
  dagd_try_paths p;
  dagd_try_paths_init(&p, base);
  char *log = slurp(p.log);
  assert_string_equal(log, "started\n");
  free(log);
  pid_t shim, task;
  assert_int_equal(dagd_try_read_pids(p.pid, &shim, &task, NULL), 0);
  kill(-task, SIGKILL); /* the sleep */
  dagd_try_paths_close(&p);
  free(base);
}

static void test_exec_failure(void **state) {
  fixture *f = *state;
  char *base = base_path(f, "nope");
  char *argv[] = {"/no/such/program", NULL};
  start(f, base, argv);
  wait_done(f);
  assert_int_equal(f->result.how, DAGD_TRY_EXITED);
  assert_int_equal(f->result.code, 127);
  char *logpath = dagd_asprintf("%s.log", base);
  char *log = slurp(logpath);
  assert_non_null(strstr(log, "cannot execute /no/such/program"));
  free(log);
  free(logpath);
  free(base);
}

static void on_started_signal(uv_timer_t *h) {
  dagd_exec_try *t = h->data;
  /* The pid file appears right after the fork; the timer retries until
   * the group exists. */
  if (dagd_exec_signal(t, SIGTERM) != 0) uv_timer_start(h, on_started_signal, 5, 0);
}

/* A signal to the try (timeout, kill) reaches the task's whole group,
 * with or without the masking pipe between the task and its log. */
static void signal_reaches_group(fixture *f, const char *const *secrets) {
  char *base = base_path(f, secrets ? "sig-masked" : "sig");
  char *pidfile = dagd_asprintf("%s/grandchild-%s.pid", f->dir, secrets ? "masked" : "plain");
  char script[256];
  snprintf(script, sizeof(script), "sleep 300 & echo $! > %s; sleep 300", pidfile);
  char *argv[] = {"sh", "-c", script, NULL};
  dagd_exec_spec spec = {.base = base, .argv = argv, .env = environ, .secrets = secrets};
  dagd_exec_try *t = NULL;
  assert_int_equal(dagd_exec_start(f->ex, &spec, on_done, f, &t, NULL), 0);
  /* Wait for the grandchild to exist before signalling, so the test
   * proves it is reached; polled with a deadline. */
  /* The shell creates the file before echo writes the pid in it: wait for
   * the whole line, not only for the file. */
  pid_t grandchild = 0;
  for (int i = 0; i < 2000 && grandchild <= 0; i++) {
    char *text = access(pidfile, R_OK) == 0 ? slurp(pidfile) : NULL;
    if (text && strchr(text, '\n')) grandchild = (pid_t)atol(text);
    free(text);
    if (grandchild <= 0) usleep(5000);
  }
  assert_true(grandchild > 0);
  uv_timer_t timer;
  uv_timer_init(&f->loop, &timer);
  timer.data = t;
  uv_timer_start(&timer, on_started_signal, 0, 0);
  wait_done(f);
  /* The timer lives on this stack frame: let its close finish here. */
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(f->result.how, DAGD_TRY_SIGNALED);
  assert_int_equal(f->result.code, SIGTERM);
  /* The background sleep got the signal too. */
  for (int i = 0; i < 2000 && dagd_proc_start_time(grandchild) != 0; i++) usleep(5000);
  assert_int_equal(dagd_proc_start_time(grandchild), 0);
  free(pidfile);
  free(base);
}

static void test_signal_reaches_group(void **state) { signal_reaches_group(*state, NULL); }

static void test_signal_reaches_group_masked(void **state) {
  const char *secrets[] = {"hunter2pass", NULL};
  signal_reaches_group(*state, secrets);
}

/* Starts a shim the way an earlier daemon would have: detached, not
 * through this executor. Returns its pid (our child, reaped by caller). */
static pid_t spawn_shim(const char *base, const char *cmd) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    setsid();
    execl(SHIM, SHIM, "shim", "--base", base, "--", "sh", "-c", cmd, (char *)NULL);
    _exit(126);
  }
  return pid;
}

static void test_adopt_running(void **state) {
  fixture *f = *state;
  char *base = base_path(f, "adopt");
  char *go = dagd_asprintf("%s/go", f->dir);
  char cmd[256];
  /* The task waits for a file, so it is surely running at adoption. */
  snprintf(cmd, sizeof(cmd), "while [ ! -e %s ]; do sleep 0.01; done; exit 7", go);
  pid_t shim = spawn_shim(base, cmd);
  char *pidpath = dagd_asprintf("%s.pid", base);
  pid_t s = 0, task = 0;
  for (int i = 0; i < 2000 && task == 0; i++) {
    dagd_try_read_pids(pidpath, &s, &task, NULL);
    if (task == 0) usleep(2000);
  }
  assert_int_equal(s, shim);
  assert_int_equal(dagd_exec_adopt(f->ex, base, on_done, f, NULL, NULL), 0);
  /* Let the adoption attach, then release the task. */
  for (int i = 0; i < 5; i++) uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(f->done, 0);
  FILE *fp = fopen(go, "w");
  fclose(fp);
  wait_done(f);
  assert_int_equal(f->result.how, DAGD_TRY_EXITED);
  assert_int_equal(f->result.code, 7);
  int status;
  assert_int_equal(waitpid(shim, &status, 0), shim);
  assert_int_equal(WEXITSTATUS(status), 0);
  free(pidpath);
  free(go);
  free(base);
}

static void test_adopt_finished(void **state) {
  fixture *f = *state;
  char *base = base_path(f, "fin");
  char *exitpath = dagd_asprintf("%s.exit", base);
  dagd_try_result r = {DAGD_TRY_SIGNALED, 9};
  assert_int_equal(dagd_try_write_exit(exitpath, &r, NULL), 0);
  assert_int_equal(dagd_exec_adopt(f->ex, base, on_done, f, NULL, NULL), 0);
  assert_int_equal(f->done, 0); /* never inside the caller's call */
  wait_done(f);
  assert_int_equal(f->result.how, DAGD_TRY_SIGNALED);
  assert_int_equal(f->result.code, 9);
  free(exitpath);
  free(base);
}

/* The exit record says when the try ended, finer than the file's mtime;
 * a record without the line (an older shim's) falls back to the mtime. */
static void test_exit_time(void **state) {
  fixture *f = *state;
  char *path = dagd_asprintf("%s/t.exit", f->dir);
  assert_true(dagd_try_exit_time(path) == 0);
  struct timespec before, after;
  clock_gettime(CLOCK_REALTIME, &before);
  dagd_try_result r = {DAGD_TRY_EXITED, 3};
  assert_int_equal(dagd_try_write_exit(path, &r, NULL), 0);
  clock_gettime(CLOCK_REALTIME, &after);
  double t = dagd_try_exit_time(path);
  double lo = (double)before.tv_sec + (double)(before.tv_nsec / 1000) / 1e6;
  assert_true(t >= lo && t <= (double)after.tv_sec + (double)after.tv_nsec / 1e9);
  dagd_try_result back;
  assert_int_equal(dagd_try_read_exit(path, &back, NULL), 0);
  assert_int_equal(back.how, DAGD_TRY_EXITED);
  assert_int_equal(back.code, 3);
  FILE *fp = fopen(path, "w");
  fputs("exit 0\n", fp);
  fclose(fp);
  struct timespec times[2] = {{.tv_sec = 1700000000, .tv_nsec = 500000000}, {.tv_sec = 1700000000, .tv_nsec = 500000000}};
  assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
  assert_true(dagd_try_exit_time(path) == 1700000000.5);
  free(path);
}

/* The pid record: every line a shim writes, and the end it takes when the
 * exit record cannot be written; the exit record wins when both exist. */
static void test_pidfile_end(void **state) {
  fixture *f = *state;
  char *base = dagd_asprintf("%s/p", f->dir);
  dagd_try_paths paths;
  dagd_try_paths_init(&paths, base);
  dagd_try_result r;
  assert_int_equal(dagd_try_read_end(&paths, &r, NULL, NULL), DAGD_ENOENT);
  int fd = open(paths.pid, O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  const char *head = "shim 41\nsignals shim\ncgroup /sys/fs/cgroup/x/dagd-try-41\ntask 42\n";
  assert_int_equal(write(fd, head, strlen(head)), (ssize_t)strlen(head));
  dagd_try_pidfile rec;
  assert_int_equal(dagd_try_read_pidfile(paths.pid, &rec, NULL), 0);
  assert_int_equal(rec.shim, 41);
  assert_int_equal(rec.task, 42);
  assert_true(rec.shim_signals);
  assert_string_equal(rec.cgroup, "/sys/fs/cgroup/x/dagd-try-41");
  assert_false(rec.has_end);
  assert_int_equal(dagd_try_read_end(&paths, &r, NULL, NULL), DAGD_ENOENT);
  assert_int_equal(dagd_try_append_end(fd, &(dagd_try_result){DAGD_TRY_SIGNALED, 15}), 0);
  close(fd);
  bool from_pid = false;
  assert_int_equal(dagd_try_read_end(&paths, &r, &from_pid, NULL), 0);
  assert_true(from_pid);
  assert_int_equal(r.how, DAGD_TRY_SIGNALED);
  assert_int_equal(r.code, 15);
  assert_true(dagd_try_end_time(&paths) > 1700000000);
  pid_t shim, task;
  assert_int_equal(dagd_try_read_pids(paths.pid, &shim, &task, NULL), 0);
  assert_int_equal(shim, 41);
  assert_int_equal(task, 42);
  assert_int_equal(dagd_try_write_exit(paths.exit, &(dagd_try_result){DAGD_TRY_EXITED, 0}, NULL), 0);
  assert_int_equal(dagd_try_read_end(&paths, &r, &from_pid, NULL), 0);
  assert_false(from_pid);
  assert_int_equal(r.how, DAGD_TRY_EXITED);
  dagd_try_paths_close(&paths);
  free(base);
}

static void test_adopt_lost_kills_orphan_and_blocks_late_shim(void **state) {
  fixture *f = *state;
  char *base = base_path(f, "lost");
  /* An orphaned task: its shim died, the task lives in its own group. */
  pid_t orphan = fork();
  if (orphan == 0) {
    setpgid(0, 0);
    execlp("sleep", "sleep", "300", (char *)NULL);
    _exit(126);
  }
  setpgid(orphan, orphan);
  char *pidpath = dagd_asprintf("%s.pid", base);
  FILE *fp = fopen(pidpath, "w");
  fprintf(fp, "shim 999999\ntask %ld\n", (long)orphan);
  fclose(fp);
  assert_int_equal(dagd_exec_adopt(f->ex, base, on_done, f, NULL, NULL), 0);
  wait_done(f);
  assert_int_equal(f->result.how, DAGD_TRY_VANISHED);
  int status;
  assert_int_equal(waitpid(orphan, &status, 0), orphan);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGKILL);
  /* A shim that arrives after the try was declared lost runs nothing. */
  char *marker = dagd_asprintf("%s/ran", f->dir);
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "touch %s", marker);
  pid_t late = spawn_shim(base, cmd);
  assert_int_equal(waitpid(late, &status, 0), late);
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_not_equal(access(marker, F_OK), 0);
  free(marker);
  free(pidpath);
  free(base);
}

static void test_adopt_never_started(void **state) {
  fixture *f = *state;
  char *base = base_path(f, "never");
  assert_int_equal(dagd_exec_adopt(f->ex, base, on_done, f, NULL, NULL), 0);
  wait_done(f);
  assert_int_equal(f->result.how, DAGD_TRY_VANISHED);
  char *exitpath = dagd_asprintf("%s.exit", base);
  dagd_try_result r;
  assert_int_equal(dagd_try_read_exit(exitpath, &r, NULL), 0);
  assert_int_equal(r.how, DAGD_TRY_VANISHED);
  free(exitpath);
  free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_exit_code_and_log, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_failure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_secrets_masked_in_log, setup, teardown),
      cmocka_unit_test_setup_teardown(test_background_holder_does_not_hold_try, setup, teardown),
      cmocka_unit_test_setup_teardown(test_signal_reaches_group, setup, teardown),
      cmocka_unit_test_setup_teardown(test_signal_reaches_group_masked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_adopt_running, setup, teardown),
      cmocka_unit_test_setup_teardown(test_adopt_finished, setup, teardown),
      cmocka_unit_test_setup_teardown(test_adopt_lost_kills_orphan_and_blocks_late_shim, setup, teardown),
      cmocka_unit_test_setup_teardown(test_adopt_never_started, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exit_time, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pidfile_end, setup, teardown),
  };
  return cmocka_run_group_tests_name("exec", tests, NULL, NULL);
}
