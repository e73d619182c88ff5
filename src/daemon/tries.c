/* Task processes in the daemon: building and starting the command of a
 * try the engine started, stopping a try (SIGTERM to its process group,
 * SIGKILL after the grace) at its timeout or on request, handing its end
 * and outputs to the engine, and re-adopting the tries an earlier daemon
 * left running. What a try's end means is the engine's decision.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dagd/err.h"
#include "dagd/layout.h"
#include "dagd/log.h"
#include "dagd/mask.h"
#include "dagd/command.h"
#include "dagd/time.h"
#include "dagd/util.h"
#include "daemon.h"

extern char **environ;

/* Grace between SIGTERM and SIGKILL when a try is stopped, or when its
 * main process has ended and left others running (the shim's). */
#define KILL_GRACE_MS 10000

char *daemon_try_base(const daemon_t *d, const char *dag_id, const char *run_id, const char *task_id,
                      int try_number) {
  return dagd_layout_try_base(d->cfg.logs_folder, dag_id, run_id, task_id, try_number);
}

/* mkdir -p of the folder holding base, mode 0700. */
/* Appends a line to the try's log, so the reason a try failed before or
 * after its process is where the user looks. */
static void log_line(const char *base, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(const char *base, const char *fmt, ...) {
  char *path = dagd_asprintf("%s" DAGD_TRY_LOG_SUFFIX, base);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0 && errno == ENOENT && dagd_try_make_folder(base) == 0)
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  free(path);
  if (fd < 0) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  dprintf(fd, "dagd: %s\n", msg);
  close(fd);
}

static running_try *rt_new(daemon_t *d, int64_t run_pk, const char *dag_id, const char *task_id, int try_number,
                           const char *run_id) {
  running_try *rt = dagd_calloc(1, sizeof(*rt));
  rt->d = d;
  rt->run_pk = run_pk;
  rt->dag_id = dagd_strdup(dag_id);
  rt->task_id = dagd_strdup(task_id);
  rt->try_number = try_number;
  rt->base = daemon_try_base(d, dag_id, run_id, task_id, try_number);
  rt->run_id = dagd_strdup(run_id);
  uv_timer_init(&d->loop, &rt->grace);
  rt->grace.data = rt;
  rt->next = d->tries.running;
  if (d->tries.running) d->tries.running->prev = rt;
  d->tries.running = rt;
  d->tries.n_running++;
  return rt;
}

static void rt_closed(uv_handle_t *h) {
  running_try *rt = h->data;
  free(rt->dag_id);
  free(rt->task_id);
  free(rt->base);
  free(rt->run_id);
  free(rt->pool);
  free(rt);
}

static void rt_free(running_try *rt) {
  daemon_t *d = rt->d;
  if (rt->prev) rt->prev->next = rt->next;
  else d->tries.running = rt->next;
  if (rt->next) rt->next->prev = rt->prev;
  d->tries.n_running--;
  uv_close((uv_handle_t *)&rt->grace, rt_closed);
}

/* Reads what the try wrote to $DAGD_OUTPUT: up to one byte more than
 * the cap, so that the engine sees an output too big. */
static bool read_outputs(const running_try *rt, dagd_buf *text) {
  char *path = dagd_asprintf("%s" DAGD_TRY_OUT_SUFFIX, rt->base);
  /* Most tries write no outputs: one stat, not an open and a read. */
  struct stat st;
  if (stat(path, &st) == 0 && st.st_size == 0) {
    free(path);
    return true;
  }
  FILE *f = fopen(path, "re");
  free(path);
  if (f == NULL) return false; /* no outputs */
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && text->len <= DAGD_OUTPUT_MAX) dagd_buf_append(text, chunk, n);
  fclose(f);
  return true;
}

static void on_try_done(void *data, const dagd_try_result *r, double ended);

/* When the try ended by its exit record, or 0 without one: the true end
 * of a try that ended while no daemon watched it. */
static double exit_record_time(const running_try *rt) {
  dagd_try_paths paths;
  dagd_try_paths_init(&paths, rt->base);
  double t = dagd_try_end_time(&paths);
  dagd_try_paths_close(&paths);
  return t;
}

/* The store was busy when the try ended: read its exit record again
 * (adopting it calls on_try_done on the next turn). */
static void on_end_retry(uv_timer_t *h) {
  running_try *rt = h->data;
  daemon_t *d = rt->d;
  if (d->stopped || d->tries.exec == NULL) return;
  dagd_exec_adopt(d->tries.exec, rt->base, on_try_done, rt, &rt->exec, NULL);
}

/* Hands the end of a try to the engine, then reports it and asks for a
 * pass. */
static void try_finished(running_try *rt, const dagd_try_result *r, double ended) {
  daemon_t *d = rt->d;
  dagd_err err;
  dagd_err_init(&err);
  dagd_buf text;
  dagd_buf_init(&text);
  bool has_outputs = read_outputs(rt, &text);
  double now = daemon_now();
  if (ended <= 0) ended = exit_record_time(rt);
  if (ended <= 0 || ended > now) ended = now;
  dagd_engine_end end = {.run_pk = rt->run_pk, .task_id = rt->task_id, .try_number = rt->try_number,
                         .result = *r, .outputs = has_outputs ? (text.data ? text.data : "") : NULL,
                         .outputs_len = text.len, .end_date = ended};
  dagd_engine_ended x;
  int rc = dagd_engine_try_end(d->engine, &end, now, &x, &err);
  dagd_buf_close(&text);
  if (rc < 0) {
    /* The try's end is kept by the supervisor until it is forgotten
     * (or is in the shim's exit file), so it is never lost: a busy
     * store reads it again later (end_retry); any other failure stopped
     * the daemon, and the next start re-adopts the try. */
    if (err.code != DAGD_ETIMEDOUT)
      DAGD_LOG(DAGD_LOG_ERROR, "exec", "recording the end of %s/%s/%s try %d: %s", rt->dag_id, rt->run_id,
               rt->task_id, rt->try_number, err.msg);
    if (!daemon_store_failed(d, &err)) {
      rt->end_retry_ms = rt->end_retry_ms == 0 ? 50 : rt->end_retry_ms >= 1000 ? 2000 : rt->end_retry_ms * 2;
      uv_timer_start(&rt->grace, on_end_retry, rt->end_retry_ms, 0);
    }
    return;
  }
  /* Recorded: once committed, the supervisor may forget it. */
  dagd_exec_forget(d->tries.exec, rt->base);
  if (x.current) {
    bool timed_out = x.timed_out || rt->timed_out;
    daemon_metrics_try(d, rt->dag_id, x.succeeded ? 0 : r->how == DAGD_TRY_VANISHED ? 2 : timed_out ? 3 : 1,
                       rt->started > 0 ? ended - rt->started : -1);
    daemon_api_run_changed(d, rt->run_pk);
    if (x.note) log_line(rt->base, "%s", x.note);
    const char *how = r->how == DAGD_TRY_VANISHED ? "was lost"
                      : timed_out                 ? "timed out"
                      : rt->killed                ? "was stopped on request"
                      : r->how == DAGD_TRY_SIGNALED ? "was killed"
                                                    : NULL;
    if (how) log_line(rt->base, "try %d %s", rt->try_number, how);
    daemon_notify_try(d, &x, rt->base, rt->try_number);
    DAGD_LOG(x.succeeded ? DAGD_LOG_INFO : DAGD_LOG_WARN, "exec", "%s/%s/%s try %d %s (%s %d) -> %s", rt->dag_id,
             rt->run_id, rt->task_id, rt->try_number, x.succeeded ? "succeeded" : how ? how : "failed",
             r->how == DAGD_TRY_SIGNALED ? "signal" : "exit", r->code, dagd_ti_state_name(x.state));
  }
  dagd_engine_ended_close(&x);
  rt_free(rt);
  daemon_kick(d);
}

static void on_try_done(void *data, const dagd_try_result *r, double ended) {
  running_try *rt = data;
  rt->exec = NULL;
  uv_timer_stop(&rt->grace);
  try_finished(rt, r, ended);
}

static void on_kill_grace(uv_timer_t *h) {
  running_try *rt = h->data;
  if (rt->exec) dagd_exec_signal(rt->exec, SIGKILL);
}

/* SIGTERM to the try's process group now, SIGKILL after the grace. */
static void stop_try(running_try *rt) {
  /* The group may not exist for a few microseconds after the start. */
  dagd_exec_signal(rt->exec, SIGTERM);
  uv_timer_start(&rt->grace, on_kill_grace, KILL_GRACE_MS, 0);
}

static running_try *find_try(daemon_t *d, int64_t run_pk, const char *task_id, int try_number) {
  for (running_try *rt = d->tries.running; rt; rt = rt->next)
    if (rt->run_pk == run_pk && rt->try_number == try_number && strcmp(rt->task_id, task_id) == 0) return rt;
  return NULL;
}

void daemon_try_timeout(daemon_t *d, const dagd_engine_try *t) {
  running_try *rt = find_try(d, t->run.pk, t->task_id, t->try_number);
  if (rt == NULL || rt->exec == NULL || rt->timed_out) return;
  rt->timed_out = true;
  DAGD_LOG(DAGD_LOG_WARN, "exec", "%s/%s/%s try %d: execution_timeout reached, stopping it", rt->dag_id, rt->run_id,
           rt->task_id, rt->try_number);
  log_line(rt->base, "execution_timeout reached: SIGTERM, SIGKILL in %d s", KILL_GRACE_MS / 1000);
  stop_try(rt);
}

/* A try that could not start fails like any other try. */
static void fail_now(running_try *rt, const char *why) {
  log_line(rt->base, "try %d could not start: %s", rt->try_number, why);
  DAGD_LOG(DAGD_LOG_WARN, "exec", "%s/%s/%s try %d could not start: %s", rt->dag_id, rt->run_id, rt->task_id,
           rt->try_number, why);
  dagd_try_result r = {DAGD_TRY_EXITED, 127};
  try_finished(rt, &r, 0);
}

/* A sensor watching another DAG reads the state store (read-only): its
 * absolute path, as the try runs in the DAG file's folder. */
static json_t *sensor_extra(daemon_t *d, const dagd_task *task) {
  const char *poke = json_string_value(json_object_get(task->config, "poke"));
  if (poke == NULL || strcmp(poke, "dag") != 0 || d->cfg.state == NULL) return NULL;
  char *abs = realpath(d->cfg.state, NULL);
  json_t *extra = json_pack("{ss}", "state", abs ? abs : d->cfg.state);
  free(abs);
  return extra;
}

/* Writes what an in-process operator was given beside the try's log, for
 * people reading it, with every secret masked: the operator itself gets
 * the real text on its standard input, never from the disk. */
static int write_spec(const char *path, const char *spec, const dagd_mask *secrets) {
  dagd_buf text;
  dagd_buf_init(&text);
  dagd_buf_puts(&text, spec);
  dagd_mask_text(secrets, &text);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  size_t off = 0;
  while (fd >= 0 && off < text.len) {
    ssize_t n = write(fd, text.data + off, text.len - off);
    if (n <= 0) break;
    off += (size_t)n;
  }
  dagd_buf_close(&text);
  if (fd < 0) return -1;
  return close(fd) < 0 || off < text.len ? -1 : 0;
}

/* The values a try's log must never show: every secret the API masks
 * (DAGD_SECRET_* values, tokens, webhook secrets) and each secret its
 * command was rendered with. Those come from DAGD_SECRET_*, so the API's
 * set, built once at start, nearly always holds them already: it is used
 * as it is, and copied into own only for a value it lacks. */
static const dagd_mask *try_secrets(daemon_t *d, const dagd_command *cmd, dagd_mask *own) {
  const dagd_mask *api = &d->web.api->secrets;
  size_t i = 0;
  while (i < cmd->n_secrets && dagd_mask_has(api, cmd->secrets[i])) i++;
  if (i == cmd->n_secrets) return api;
  for (size_t k = 0; k < api->n; k++) dagd_mask_add(own, api->values[k]);
  for (; i < cmd->n_secrets; i++) dagd_mask_add_secret(own, cmd->secrets[i]);
  return own;
}

void daemon_try_start(daemon_t *d, const dagd_engine_try *t) {
  dagd_err err;
  dagd_err_init(&err);
  char *outputs_text = NULL;
  json_t *outputs = NULL, *extra = NULL;
  dagd_command cmd = {0};
  dagd_mask own_secrets;
  dagd_mask_init(&own_secrets);
  const dagd_mask *secrets = NULL;
  const dagd_store_run *run = &t->run;
  const dagd_task *task = t->task;
  running_try *rt = rt_new(d, run->pk, run->dag_id, t->task_id, t->try_number, run->run_id);
  if (task == NULL || t->dag == NULL) {
    fail_now(rt, "the task is no longer in the DAG");
    goto out;
  }
  if (dagd_engine_try_inputs(d->engine, t, &outputs_text, &extra, &err) == 0)
    outputs = json_loads(outputs_text, 0, NULL);
  if (dagd_op_kind_of(task->op)->needs_state) extra = sensor_extra(d, task);
  char *out_path = dagd_asprintf("%s" DAGD_TRY_OUT_SUFFIX, rt->base);
  char *spec_path = dagd_asprintf("%s.spec.json", rt->base);
  char *conf_path = dagd_asprintf("%s" DAGD_TRY_CONF_SUFFIX, rt->base);
  dagd_try_info info = {
      .dag = t->dag, .task = task, .run_id = run->run_id, .logical_date = run->logical_date,
      .has_interval = run->has_interval, .interval_start = run->interval_start, .interval_end = run->interval_end,
      .try_number = t->try_number, .conf = run->conf, .outputs = outputs, .output_path = out_path,
      .environ = d->tries.task_environ, .environ_json = d->tries.task_environ_json,
      .secret = dagd_command_secret_from_env, .self_path = d->tries.shim_path, .spec_path = "-",
      .extra = extra, .executor = d->cfg.executor, .conf_path = conf_path,
      .secret_hosts = d->cfg.secret_hosts, .n_secret_hosts = d->cfg.n_secret_hosts};
  int rc = dagd_command_build(&info, &cmd, &err);
  free(conf_path);
  free(out_path);
  if (rc == 0) secrets = try_secrets(d, &cmd, &own_secrets);
  if (rc == 0 && cmd.spec) {
    int made = dagd_try_make_folder(rt->base);
    if (made < 0)
      rc = dagd_err_set(&err, DAGD_EIO, "cannot create the log folder of %s: %s", rt->base, strerror(-made));
    else if (write_spec(spec_path, cmd.spec, secrets) < 0)
      rc = dagd_err_set(&err, DAGD_EIO, "cannot write %s: %s", spec_path, strerror(errno));
  }
  free(spec_path);
  if (rc < 0) {
    fail_now(rt, err.msg);
    goto out;
  }
  if (cmd.no_process) {
    dagd_try_result r = {DAGD_TRY_EXITED, 0};
    try_finished(rt, &r, 0);
    goto out;
  }
  const char *mode = json_string_value(json_object_get(task->config, "mode"));
  if (mode && strcmp(mode, "reschedule") == 0) {
    /* A sensor (or registry wait) in reschedule mode pokes again under the
     * same try number: the last poke's exit record would stop the shim.
     * The try starts only now, so no record of it can be current. Other
     * tries never reuse a number: nothing to remove. */
    dagd_try_paths paths;
    dagd_try_paths_init(&paths, rt->base);
    unlink(paths.exit);
    unlink(paths.pid); /* which may hold the last poke's end too */
    dagd_try_paths_close(&paths);
  }
  dagd_exec_spec spec = {.base = rt->base, .argv = cmd.argv, .env = cmd.env, .cwd = cmd.cwd,
                         .secrets = (const char *const *)secrets->values, .input = cmd.spec,
                         .grace_ms = KILL_GRACE_MS, .no_cgroup = !d->cfg.try_cgroups,
                         /* the whole conf, whatever its size ($DAGD_CONF_FILE) */
                         .conf = run->conf ? run->conf : "{}"};
  if (dagd_exec_start(d->tries.exec, &spec, on_try_done, rt, &rt->exec, &err) < 0) {
    fail_now(rt, err.msg);
    goto out;
  }
  rt->started = t->start_date;
  rt->pool = dagd_strdup(task->pool ? task->pool : "default");
  daemon_api_run_changed(d, run->pk);
  DAGD_LOG(DAGD_LOG_INFO, "exec", "%s/%s/%s try %d started", run->dag_id, run->run_id, t->task_id, t->try_number);
out:
  dagd_mask_close(&own_secrets);
  dagd_command_close(&cmd);
  json_decref(outputs);
  json_decref(extra);
  free(outputs_text);
}

int daemon_tries_adopt(daemon_t *d) {
  dagd_err err;
  dagd_err_init(&err);
  dagd_engine_try *tries;
  size_t n;
  if (dagd_engine_adopt(d->engine, &tries, &n, &err) < 0) {
    DAGD_LOG(DAGD_LOG_ERROR, "exec", "listing running tries: %s", err.msg);
    return err.code;
  }
  for (size_t i = 0; i < n; i++) {
    const dagd_engine_try *t = &tries[i];
    running_try *rt = rt_new(d, t->run.pk, t->run.dag_id, t->task_id, t->try_number, t->run.run_id);
    /* A try recorded just before a crash may never have got its folder:
     * make it, so that its "vanished" record can be written. */
    dagd_try_make_folder(rt->base);
    dagd_exec_adopt(d->tries.exec, rt->base, on_try_done, rt, &rt->exec, &err);
    rt->started = t->start_date;
    rt->pool = dagd_strdup(t->task && t->task->pool ? t->task->pool : "default");
    DAGD_LOG(DAGD_LOG_INFO, "exec", "re-adopting %s/%s/%s try %d", t->run.dag_id, t->run.run_id, t->task_id,
             t->try_number);
  }
  dagd_engine_tries_free(tries, n);
  dagd_exec_adopted(d->tries.exec);
  return 0;
}

void daemon_try_kill(daemon_t *d, int64_t run_pk, const char *task_id) {
  for (running_try *rt = d->tries.running; rt; rt = rt->next) {
    if (rt->run_pk != run_pk || strcmp(rt->task_id, task_id) != 0 || rt->exec == NULL) continue;
    rt->killed = true;
    log_line(rt->base, "stopped on request: SIGTERM, SIGKILL in %d s", KILL_GRACE_MS / 1000);
    stop_try(rt);
  }
}

void daemon_tries_close(daemon_t *d) {
  /* The executor forgets the tries (they run on under their shims); the
   * daemon's records of them go too. */
  while (d->tries.running) rt_free(d->tries.running);
}
