/* `dagctl test DAG TASK [DATE]`: runs one task now, in the foreground,
 * with the same rendering and environment as a scheduled try, writing no
 * state. Its output goes to the terminal; its $DAGD_OUTPUT is printed.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dagd/cron.h"
#include "dagd/err.h"
#include "dagd/command.h"
#include "dagd/sched.h"
#include "dagd/time.h"
#include "dagd/tz.h"
#include "dagd/util.h"
#include "internal.h"

extern char **environ;

/* The logical date: DATE in the DAG's zone (or with an offset); without
 * one, the start of the latest complete interval, as the run due now
 * would have; for an unscheduled DAG, now. */
static int logical_date(const dagd_dag *dag, const char *text, dagd_interval *iv) {
  int64_t now = dagd_time_now();
  if (text == NULL) {
    int64_t end, start;
    if (dag->schedule && dagd_cron_prev(dag->schedule, dag->tz, now + 1, &end) == 0 &&
        dagd_cron_prev(dag->schedule, dag->tz, end, &start) == 0) {
      *iv = (dagd_interval){start, end, end};
    } else {
      *iv = (dagd_interval){now, now, now};
    }
    return 0;
  }
  int has_offset;
  int64_t t;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_time_parse(text, &t, &has_offset, &err) < 0) {
    fprintf(stderr, "dagctl test: %s\n", err.msg);
    return -1;
  }
  if (!has_offset) {
    dagd_tm wall;
    int64_t at[2];
    dagd_epoch_to_tm(t, &wall);
    dagd_tz_mktime(dag->tz, &wall, at);
    t = at[0];
  }
  int64_t end;
  if (dag->schedule && dagd_cron_next(dag->schedule, dag->tz, t, &end) == 0) *iv = (dagd_interval){t, end, end};
  else *iv = (dagd_interval){t, t, t};
  return 0;
}

static volatile sig_atomic_t timed_out;
static void on_alarm(int sig) { timed_out = 1; }

int cli_cmd_test(cli *c, int argc, char **argv) {
  const char *conf = "{}";
  int opt;
  optind = 0;
  while ((opt = cli_getopt(c, argc, argv)) != -1) {
    if (opt != 'c') return CLI_USAGE;
    conf = optarg;
  }
  if (argc - optind < 2 || argc - optind > 3) return CLI_USAGE;
  json_error_t jerr;
  json_t *confdoc = json_loads(conf, 0, &jerr);
  if (!json_is_object(confdoc)) {
    fprintf(stderr, "dagctl test: --conf must be a JSON object (%s)\n", confdoc ? "not an object" : jerr.text);
    json_decref(confdoc);
    return CLI_USAGE;
  }
  json_decref(confdoc);
  dagd_dagbag bag;
  const dagd_dag *dag = cli_find_dag(c, &bag, argv[optind]);
  int rc = CLI_FAILED;
  char outpath[] = "/tmp/dagctl-test-XXXXXX";
  char confpath[] = "/tmp/dagctl-conf-XXXXXX";
  int conffd = -1;
  int specfd = -1;
  int outfd = -1;
  dagd_command cmd = {0};
  if (dag == NULL) goto out;
  const dagd_task *task = dagd_dag_find_task(dag, argv[optind + 1]);
  if (task == NULL) {
    fprintf(stderr, "dagctl test: DAG \"%s\" has no task \"%s\"\n", dag->id, argv[optind + 1]);
    goto out;
  }
  dagd_interval iv;
  if (logical_date(dag, argc - optind == 3 ? argv[optind + 2] : NULL, &iv) < 0) {
    rc = CLI_USAGE;
    goto out;
  }
  char run_id[64], ts[32];
  dagd_time_format_offset(iv.start, 0, ts);
  snprintf(run_id, sizeof(run_id), "test__%s", ts);
  /* Shown as the templates see it: in the DAG's zone (ds is its day). */
  dagd_time_format_offset(iv.start, dagd_tz_offset(dag->tz, iv.start), ts);
  /* The conf as a try gets it: the file $DAGD_CONF_FILE names (mkstemp: 0600). */
  {
    dagd_err werr;
    dagd_err_init(&werr);
    if ((conffd = mkstemp(confpath)) < 0 || dagd_fs_write_private(confpath, conf, strlen(conf), &werr) < 0) {
      fprintf(stderr, "dagctl test: cannot write the conf to a temporary file: %s\n",
              conffd < 0 ? strerror(errno) : werr.msg);
      goto out;
    }
  }
  if ((outfd = mkstemp(outpath)) < 0) {
    fprintf(stderr, "dagctl test: cannot create a temporary file: %s\n", strerror(errno));
    goto out;
  }
  /* Operators that run inside dagd (`dagd op SPEC`) need the dagd binary:
   * the one beside dagctl, else the one on PATH. */
  char self[4096];
  ssize_t sn = readlink("/proc/self/exe", self, sizeof(self) - 1);
  char *dagd_path = NULL;
  if (sn > 0) {
    self[sn] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) *slash = '\0';
    dagd_path = dagd_asprintf("%s/dagd", self);
    if (access(dagd_path, X_OK) != 0) {
      free(dagd_path);
      dagd_path = NULL;
    }
  }
  if (dagd_path == NULL) dagd_path = dagd_strdup("dagd");
  dagd_try_info info = {.dag = dag, .task = task, .run_id = run_id, .logical_date = iv.start,
                        .has_interval = true, .interval_start = iv.start, .interval_end = iv.end,
                        .try_number = 1, .conf = conf, .output_path = outpath, .environ = environ,
                        .conf_path = confpath, .secret_hosts = c->cfg.secret_hosts,
                        .n_secret_hosts = c->cfg.n_secret_hosts,
                        .secret = dagd_command_secret_from_env, .self_path = dagd_path,
                        .spec_path = "-"};
  dagd_err err;
  dagd_err_init(&err);
  int built = dagd_command_build(&info, &cmd, &err);
  free(dagd_path);
  /* The spec of an in-process operator may hold secrets: it goes to
   * `dagd op -` on its standard input from memory, never through a file. */
  if (built == 0 && cmd.spec && (specfd = dagd_memory_file("dagctl-spec", cmd.spec, strlen(cmd.spec))) < 0)
    built = dagd_err_set(&err, DAGD_EIO, "cannot pass the operator its spec: %s", strerror(errno));
  if (built < 0) {
    fprintf(stderr, "dagctl test: %s\n", err.msg);
    goto out;
  }
  if (cmd.no_process) {
    fprintf(stderr, "dagctl test: %s/%s has nothing to run: success\n", dag->id, task->id);
    rc = CLI_OK;
    goto out;
  }
  fprintf(stderr, "dagctl test: %s/%s, logical date %s, in %s:\n ", dag->id, task->id, ts, cmd.cwd);
  for (char **a = cmd.argv; *a; a++) fprintf(stderr, " %s", *a);
  fprintf(stderr, "\n");
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "dagctl test: fork: %s\n", strerror(errno));
    goto out;
  }
  if (pid == 0) {
    setpgid(0, 0);
    if (chdir(cmd.cwd) < 0) {
      fprintf(stderr, "dagctl test: cannot change to %s: %s\n", cmd.cwd, strerror(errno));
      _exit(127);
    }
    if (cmd.spec && specfd >= 0) dup2(specfd, STDIN_FILENO);
    environ = cmd.env;
    execvp(cmd.argv[0], cmd.argv);
    fprintf(stderr, "dagctl test: cannot execute %s: %s\n", cmd.argv[0], strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid);
  /* Ctrl-C stops the task's whole group, as a timeout would. */
  signal(SIGINT, SIG_IGN);
  if (task->execution_timeout > 0) {
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    alarm((unsigned)task->execution_timeout);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) break;
    if (timed_out) {
      fprintf(stderr, "dagctl test: execution_timeout reached: stopping the task\n");
      kill(-pid, SIGTERM);
      timed_out = 0;
    }
  }
  kill(-pid, SIGKILL); /* whatever the task left behind in its group */
  if (WIFSIGNALED(status)) fprintf(stderr, "dagctl test: killed by signal %d\n", WTERMSIG(status));
  else fprintf(stderr, "dagctl test: exit %d\n", WEXITSTATUS(status));
  rc = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? CLI_OK : CLI_FAILED;
  /* The outputs a scheduled try would have stored. */
  FILE *f = fopen(outpath, "r");
  dagd_buf text;
  dagd_buf_init(&text);
  char chunk[4096];
  size_t n;
  while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0 && text.len <= DAGD_OUTPUT_MAX) dagd_buf_append(&text, chunk, n);
  if (f) fclose(f);
  if (text.len > 0) {
    json_t *outs = NULL;
    dagd_err_init(&err);
    if (dagd_command_parse_outputs(text.data, text.len, &outs, &err) < 0) {
      fprintf(stderr, "dagctl test: %s\n", err.msg);
      rc = CLI_FAILED;
    } else if (c->json) {
      cli_print_doc(c, outs);
    } else {
      const char *k;
      json_t *v;
      fprintf(stderr, "dagctl test: outputs:\n");
      json_object_foreach(outs, k, v) printf("%s=%s\n", k, json_string_value(v));
    }
    json_decref(outs);
  }
  dagd_buf_close(&text);
out:
  if (specfd >= 0) close(specfd);
  if (conffd >= 0) {
    close(conffd);
    unlink(confpath);
  }
  if (outfd >= 0) {
    close(outfd);
    unlink(outpath);
  }
  dagd_command_close(&cmd);
  dagd_dagbag_close(&bag);
  return rc;
}
