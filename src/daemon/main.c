/* dagd: the scheduler daemon's entry point. Reads the configuration, opens
 * the state store, loads the DAG folder, re-adopts the tries an earlier
 * daemon left running, and runs the libuv loop: the scheduling pass runs
 * when something happens (a try ends, a run or retry becomes due, the DAG
 * folder changes), never on a polling tick. SIGHUP reloads the DAG
 * folder; SIGINT and SIGTERM drain (no new tries, wait for the running
 * ones up to a bound) and stop.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "dagd/command.h"
#include "dagd/config.h"
#include "dagd/cron.h"
#include "dagd/err.h"
#include "dagd/exec.h"
#include "dagd/notify.h"
#include "dagd/operators.h"
#include "dagd/log.h"
#include "dagd/lua.h"
#include "dagd/time.h"
#include "dagd/tz.h"
#include "dagd/util.h"
#include "daemon.h"

extern char **environ;

/* mkdir -p for the folder part of a path (the state file's directory) or
 * the path itself. */
static int make_dirs(const char *path, int include_last) {
  char *p = dagd_strdup(path);
  int rc = 0;
  if (!include_last) {
    char *slash = strrchr(p, '/');
    if (slash == NULL) goto out;
    *slash = '\0';
  }
  for (char *s = p + 1;; s++) {
    if (*s == '/' || *s == '\0') {
      char c = *s;
      *s = '\0';
      if (*p && mkdir(p, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        goto out;
      }
      if (c == '\0') break;
      *s = c;
    }
  }
out:
  free(p);
  return rc;
}

/* The --once report: each DAG with its next run, then the totals. */
static int report_once(daemon_t *d) {
  dagd_load_opts opts;
  dagd_load_opts_default(&opts);
  opts.time_limit_ms = d->cfg.parse_timeout * 1000;
  const char *folder = d->cfg.dags_folder;
  int rc = dagd_lua_load_paths(&folder, 1, &opts, &d->dags.bag);
  for (size_t i = 0; i < d->dags.bag.n_errors; i++) {
    const dagd_load_error *e = &d->dags.bag.errors[i];
    DAGD_LOG(DAGD_LOG_ERROR, "loader", "%s:%d: %s", e->file, e->line, e->message);
  }
  int64_t now = dagd_time_now();
  for (size_t i = 0; i < d->dags.bag.n_dags; i++) {
    const dagd_dag *dag = d->dags.bag.dags[i];
    dagd_interval iv;
    char when[32] = "-";
    if (dag->schedule && dagd_dag_next_interval(dag, now, &iv) == 0) dagd_time_format_utc(iv.run_after, when);
    DAGD_LOG(DAGD_LOG_INFO, "loader", "dag %s: %zu tasks, schedule %s (%s), next run %s", dag->id, dag->n_tasks,
             dag->schedule ? dagd_cron_text(dag->schedule) : "none", dagd_tz_name(dag->tz), when);
  }
  DAGD_LOG(DAGD_LOG_INFO, "loader", "%s: %zu files, %zu DAGs, %zu errors", d->cfg.dags_folder, d->dags.bag.n_files,
           d->dags.bag.n_dags, d->dags.bag.n_errors);
  return rc;
}

static void close_all(daemon_t *d) {
  uv_handle_t *handles[] = {(uv_handle_t *)&d->wake,   (uv_handle_t *)&d->kick,    (uv_handle_t *)&d->dags.reload,
                            (uv_handle_t *)&d->drain,  (uv_handle_t *)&d->sigint,  (uv_handle_t *)&d->sigterm,
                            (uv_handle_t *)&d->sighup};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(handles); i++)
    if (!uv_is_closing(handles[i])) uv_close(handles[i], NULL);
  daemon_retention_close(d);
  if (d->dags.watching) uv_close((uv_handle_t *)&d->dags.watch, NULL);
  d->dags.watching = false;
  daemon_systemd_close(d);
  daemon_clock_close(d);
}

void daemon_stop_now(daemon_t *d) {
  if (d->stopped) return;
  d->stopped = true;
  daemon_commit_close(d);
  daemon_systemd_stopping(d);
  if (d->tries.n_running > 0)
    DAGD_LOG(DAGD_LOG_WARN, "daemon", "leaving %zu running tries to %s; the next start re-adopts them",
             d->tries.n_running, dagd_exec_supervised(d->tries.exec) ? "the try supervisor" : "their shims");
  daemon_api_stop(d);
  daemon_dags_stop(d);
  daemon_tries_close(d);
  dagd_exec_close(d->tries.exec);
  d->tries.exec = NULL;
  close_all(d);
}

static void on_drain_limit(uv_timer_t *h) { daemon_stop_now(h->data); }

static void on_signal(uv_signal_t *h, int signum) {
  daemon_t *d = h->data;
  if (signum == SIGHUP) {
    DAGD_LOG(DAGD_LOG_INFO, "daemon", "SIGHUP: reloading %s", d->cfg.dags_folder);
    daemon_load_dags(d, false);
    return;
  }
  if (d->stopped) return;
  if (dagd_engine_draining(d->engine)) {
    DAGD_LOG(DAGD_LOG_INFO, "daemon", "%s again: stopping now", signum == SIGINT ? "SIGINT" : "SIGTERM");
    daemon_stop_now(d);
    return;
  }
  DAGD_LOG(DAGD_LOG_INFO, "daemon", "%s: stopping (no new tries; waiting up to %llds for %zu running)",
           signum == SIGINT ? "SIGINT" : "SIGTERM", (long long)d->cfg.drain_timeout, dagd_engine_in_flight(d->engine));
  daemon_systemd_stopping(d);
  dagd_engine_drain(d->engine);
  uv_timer_stop(&d->wake); /* only a try's end (or its timeout) matters now */
  if (dagd_engine_in_flight(d->engine) == 0 || d->cfg.drain_timeout == 0) {
    daemon_stop_now(d);
    return;
  }
  uv_timer_start(&d->drain, on_drain_limit, (uint64_t)d->cfg.drain_timeout * 1000, 0);
  /* A pass arms the wake for the timeouts of the tries still running. */
  daemon_kick(d);
}

/* The shim is this binary: its own path, found once at start. */
static char *self_path(void) {
  char buf[4096];
  size_t n = sizeof(buf);
  if (uv_exepath(buf, &n) == 0) return dagd_strdup(buf);
  return dagd_strdup("/proc/self/exe");
}

/* A start that failed after the loop began: closes what was made (the
 * listener) and the loop, and returns 1. */
static int abort_start(daemon_t *d) {
  daemon_api_stop(d);
  uv_handle_t *handles[] = {(uv_handle_t *)&d->wake,  (uv_handle_t *)&d->kick,   (uv_handle_t *)&d->dags.reload,
                            (uv_handle_t *)&d->drain, (uv_handle_t *)&d->sigint, (uv_handle_t *)&d->sigterm,
                            (uv_handle_t *)&d->sighup};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(handles); i++) uv_close(handles[i], NULL);
  uv_run(&d->loop, UV_RUN_DEFAULT);
  uv_loop_close(&d->loop);
  return 1;
}

static int run_daemon(daemon_t *d) {
  dagd_err err;
  dagd_err_init(&err);
  uv_loop_init(&d->loop);
  d->clock.fd = -1;
  uv_timer_t *timers[] = {&d->wake, &d->kick, &d->dags.reload, &d->drain};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(timers); i++) {
    uv_timer_init(&d->loop, timers[i]);
    timers[i]->data = d;
  }
  uv_signal_t *sigs[] = {&d->sigint, &d->sigterm, &d->sighup};
  int signums[] = {SIGINT, SIGTERM, SIGHUP};
  for (size_t i = 0; i < 3; i++) {
    uv_signal_init(&d->loop, sigs[i]);
    sigs[i]->data = d;
    uv_signal_start(sigs[i], on_signal, signums[i]);
  }
  /* The address first: a port in use (or any bind error) stops the start
   * before a folder or the state file exists. */
  if (daemon_api_listen(d) < 0) return abort_start(d);
  if (make_dirs(d->cfg.state, 0) < 0 || make_dirs(d->cfg.logs_folder, 1) < 0) {
    fprintf(stderr, "dagd: cannot create the folders for %s and %s: %s\n", d->cfg.state, d->cfg.logs_folder,
            strerror(errno));
    return abort_start(d);
  }
  /* A missing or empty state file is created empty. Say so: on a first
   * start that is expected, but after a deletion every run, task instance
   * and event recorded before is gone from the daemon's view. */
  struct stat sb;
  bool fresh = stat(d->cfg.state, &sb) < 0 ? errno == ENOENT : sb.st_size == 0;
  if (dagd_store_open_daemon(d->cfg.state, &d->store, &err) < 0) {
    fprintf(stderr, "dagd: %s\n", err.msg);
    return abort_start(d);
  }
  if (fresh)
    DAGD_LOG(DAGD_LOG_WARN, "daemon",
             "state file %s was missing or empty: starting on a new, empty state (no run, task instance or event "
             "recorded before is known; restore a backup to keep them)",
             d->cfg.state);
  d->tries.task_environ = daemon_task_environ(environ);
  d->tries.task_environ_json = dagd_command_environ_json(d->tries.task_environ);
  d->tries.shim_path = self_path();
  /* Tries start under dagd-shim when it is installed beside dagd: a
   * small static program is much cheaper to start than dagd itself. */
  char *dir = dagd_strdup(d->tries.shim_path), *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  char *small = dagd_asprintf("%s/dagd-shim", slash ? dir : ".");
  d->tries.exec = dagd_exec_new(&d->loop, access(small, X_OK) == 0 ? small : d->tries.shim_path);
  free(small);
  free(dir);
  /* Tries that need no shim of their own go to the state file's
   * supervisor, which outlives the daemon as shims do. */
  if (d->cfg.try_cgroups) {
    if (dagd_exec_supervise(d->tries.exec, d->cfg.state, &err) == 0)
      DAGD_LOG(DAGD_LOG_INFO, "exec", "tries start under the supervisor of %s", d->cfg.state);
    else
      DAGD_LOG(DAGD_LOG_INFO, "exec", "%s: each try starts under a shim of its own", err.msg);
    dagd_err_init(&err);
  }
  dagd_engine_opts eopts = {.parallelism = d->cfg.parallelism, .pools = d->cfg.pools, .n_pools = d->cfg.n_pools,
                            .seed = (uint64_t)uv_hrtime() | 1};
  d->engine = dagd_engine_new(d->store, &eopts);
  daemon_retention_start(d);
  daemon_clock_start(d);
  dagd_dagbag_init(&d->dags.bag);
  daemon_load_dags(d, true);
  if (daemon_api_start(d) < 0) {
    d->exit_code = 1;
    daemon_stop_now(d);
  } else {
    daemon_tries_adopt(d);
    /* From here on the store is used only with the API serving: a write
     * lock held by another process must not stall the loop. The start
     * (the first DAGs recorded, the tries to re-adopt listed) waits as
     * the command-line tools do, so that a brief lock does not lose a
     * try. */
    dagd_store_busy_timeout(d->store, DAEMON_STORE_BUSY_MS);
    daemon_watch_dags(d);
    daemon_kick(d);
    daemon_api_serving(d);
    daemon_commit_start(d);
    daemon_systemd_ready(d);
  }
  uv_run(&d->loop, UV_RUN_DEFAULT);
  daemon_api_free(d);
  int rc = uv_loop_close(&d->loop);
  if (rc != 0) DAGD_LOG(DAGD_LOG_ERROR, "daemon", "loop closed with live handles: %s", uv_strerror(rc));
  dagd_engine_free(d->engine);
  dagd_store_close(d->store);
  dagd_dagbag_close(&d->dags.bag);
  daemon_dags_close(d);
  daemon_metrics_free(d);
  free(d->tries.shim_path);
  free(d->tries.task_environ);
  json_decref(d->tries.task_environ_json);
  DAGD_LOG(DAGD_LOG_INFO, "daemon", "stopped");
  return rc == 0 ? d->exit_code : 1;
}

int main(int argc, char **argv) {
  /* The options come from the table --help and --man are written from. */
  struct option longopts[32];
  size_t n_opts = 0;
  for (const daemon_option *o = daemon_options; o->name && n_opts + 1 < DAGD_ARRAY_LEN(longopts); o++)
    longopts[n_opts++] = (struct option){o->name, o->arg ? required_argument : no_argument, NULL, o->val};
  longopts[n_opts] = (struct option){0, 0, 0, 0};
  const char *config = NULL;
  const char *flag_values[DAGD_ARRAY_LEN(longopts)] = {0};
  int once = 0, check = 0, opt;
  daemon_t d;
  memset(&d, 0, sizeof(d));
  /* The per-try supervisor is this same binary (see exec.h). */
  if (argc > 1 && strcmp(argv[1], "shim") == 0) return dagd_shim_main(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "supervise") == 0) return dagd_supervisor_main(argc - 1, argv + 1);
  /* So are operators that run in-process: `dagd op SPEC`. */
  if (argc > 1 && strcmp(argv[1], "op") == 0) return dagd_operator_main(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "notify") == 0) return dagd_notify_main(argc - 1, argv + 1);
  /* And the child DAG files are parsed in (src/lua/parse.c). */
  if (argc > 1 && strcmp(argv[1], "parse") == 0) return dagd_lua_parse_main(argc - 1, argv + 1);
  while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (opt) {
    case 'c': config = optarg; break;
    case '1': once = 1; break;
    case 'C': check = 1; break;
    case 'V': printf("dagd %s\n", DAGD_VERSION); return 0;
    case 'h': daemon_usage(stdout); return 0;
    case 'M': daemon_man(stdout); return 0;
    case 'v':
      if (dagd_log_level_parse(optarg, &dagd_log_threshold) < 0) {
        fprintf(stderr, "dagd: --log-level takes error, warn, info or debug\n");
        return 2;
      }
      break;
    default:
      for (size_t i = 0; daemon_options[i].name; i++)
        if (daemon_options[i].val == opt && daemon_options[i].config_key) flag_values[i] = optarg;
      if (opt == '?') {
        daemon_usage(stderr);
        return 2;
      }
    }
  }
  if (optind != argc) {
    daemon_usage(stderr);
    return 2;
  }
  dagd_err err;
  dagd_err_init(&err);
  dagd_config_init(&d.cfg);
  int rc = dagd_config_load(&d.cfg, config, environ, &err);
  for (size_t i = 0; rc == 0 && daemon_options[i].name; i++)
    if (flag_values[i]) rc = dagd_config_set(&d.cfg, daemon_options[i].config_key, flag_values[i], &err);
  if (rc < 0) {
    fprintf(stderr, "dagd: %s\n", err.msg);
    dagd_config_close(&d.cfg);
    return 2;
  }
  /* Every path absolute, once: tries run in other folders and are handed
   * $DAGD_OUTPUT and their DAG file's path. */
  char *cwd = getcwd(NULL, 0);
  if (cwd == NULL) {
    fprintf(stderr, "dagd: cannot read the working directory: %s\n", strerror(errno));
    dagd_config_close(&d.cfg);
    return 1;
  }
  rc = dagd_config_resolve(&d.cfg, cwd, &err);
  if (rc == 0) rc = dagd_config_absolute_env("DAGD_LUA_PATH", cwd, &err);
  free(cwd);
  /* What the daemon would refuse, --check-config refuses the same way. */
  if (rc == 0 && !once) rc = dagd_config_check(&d.cfg, &err);
  if (rc < 0) {
    fprintf(stderr, "dagd: %s\n", err.msg);
    dagd_config_close(&d.cfg);
    return check ? 2 : 1;
  }
  if (check) {
    printf("config %s: ok\n", d.cfg.config_file ? d.cfg.config_file : "(embedded defaults)");
    dagd_config_close(&d.cfg);
    return 0;
  }
  dagd_dagbag_init(&d.dags.bag);
  if (once) {
    if (make_dirs(d.cfg.state, 0) < 0 || make_dirs(d.cfg.logs_folder, 1) < 0) {
      fprintf(stderr, "dagd: cannot create the folders for %s and %s: %s\n", d.cfg.state, d.cfg.logs_folder,
              strerror(errno));
      dagd_config_close(&d.cfg);
      return 1;
    }
    rc = report_once(&d);
    dagd_dagbag_close(&d.dags.bag);
    dagd_config_close(&d.cfg);
    return rc == 0 ? 0 : 1;
  }
  DAGD_LOG(DAGD_LOG_INFO, "daemon", "dagd %s starting: dags %s, state %s, logs %s, parallelism %d", DAGD_VERSION,
           d.cfg.dags_folder, d.cfg.state, d.cfg.logs_folder, d.cfg.parallelism);
  rc = run_daemon(&d);
  dagd_config_close(&d.cfg);
  return rc;
}
