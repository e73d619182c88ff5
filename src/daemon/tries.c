/* Task tries in the daemon: building and starting a try's command, its
 * execution_timeout (SIGTERM to the process group, SIGKILL after the
 * grace), recording how it ended with its outputs, and re-adopting the
 * tries an earlier daemon left running.
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
#include "dagd/log.h"
#include "dagd/mask.h"
#include "dagd/ops.h"
#include "dagd/sched.h"
#include "dagd/time.h"
#include "dagd/util.h"
#include "daemon.h"

extern char **environ;

/* Grace between SIGTERM and SIGKILL when a try times out. */
#define KILL_GRACE_MS 10000

char *daemon_try_base(const daemon_t *d, const char *dag_id, const char *run_id, const char *task_id,
                      int try_number) {
  return dagd_asprintf("%s/%s/%s/%s/%d", d->cfg.logs_folder, dag_id, run_id, task_id, try_number);
}

/* mkdir -p of the folder holding base, mode 0700. */
static int make_parent_dirs(const char *base) {
  char *p = dagd_strdup(base);
  char *slash = strrchr(p, '/');
  int rc = 0;
  if (slash) *slash = '\0';
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    if (mkdir(p, 0700) < 0 && errno != EEXIST) rc = -errno;
    *s = '/';
  }
  if (rc == 0 && mkdir(p, 0700) < 0 && errno != EEXIST) rc = -errno;
  free(p);
  return rc;
}

/* Appends a line to the try's log, so the reason a try failed before or
 * after its process is where the user looks. */
static void log_line(const char *base, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(const char *base, const char *fmt, ...) {
  char *path = dagd_asprintf("%s.log", base);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
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
  uv_timer_init(&d->loop, &rt->timeout);
  rt->timeout.data = rt;
  rt->next = d->running;
  if (d->running) d->running->prev = rt;
  d->running = rt;
  d->n_running++;
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
  else d->running = rt->next;
  if (rt->next) rt->next->prev = rt->prev;
  d->n_running--;
  uv_close((uv_handle_t *)&rt->timeout, rt_closed);
}

static double jitter(daemon_t *d) {
  /* xorshift64: retry jitter needs spread, not secrecy. */
  d->rng ^= d->rng << 13;
  d->rng ^= d->rng >> 7;
  d->rng ^= d->rng << 17;
  return (double)(d->rng >> 11) / 9007199254740992.0;
}

/* Reads and stores the try's outputs. Returns false (with the reason in
 * the log) when they are malformed or too big: the try then fails. */
static bool store_outputs(daemon_t *d, running_try *rt, dagd_err *err) {
  /* err is set only for a store failure; bad outputs return false. */
  char *path = dagd_asprintf("%s.out", rt->base);
  FILE *f = fopen(path, "re");
  free(path);
  if (f == NULL) return true; /* no outputs */
  dagd_buf text;
  dagd_buf_init(&text);
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && text.len <= DAGD_OUTPUT_MAX) dagd_buf_append(&text, chunk, n);
  fclose(f);
  json_t *outs = NULL;
  dagd_err perr;
  dagd_err_init(&perr);
  bool ok = dagd_ops_parse_outputs(text.data ? text.data : "", text.len, &outs, &perr) == 0;
  dagd_buf_close(&text);
  if (!ok) {
    log_line(rt->base, "%s", perr.msg);
    return false;
  }
  const char *k;
  json_t *v;
  json_object_foreach(outs, k, v) {
    if (dagd_store_output_put(d->store, rt->run_pk, rt->task_id, k, json_string_value(v), err) < 0) {
      ok = false;
      break;
    }
  }
  json_decref(outs);
  return ok;
}

static void on_try_done(void *data, const dagd_try_result *r);

/* A branch that succeeded chose what follows it: its output "follow" (a
 * JSON list of task ids, or one id) keeps those direct downstream tasks
 * and skips the others; a short_circuit's output "condition" = false skips
 * every direct downstream task. Trigger rules carry the skips further.
 * In the caller's transaction. */
static int apply_branch(daemon_t *d, const dagd_dag *dag, const dagd_task *task, int64_t run_pk, dagd_err *err) {
  bool short_circuit = json_is_true(json_object_get(task->config, "short_circuit"));
  char *value = NULL;
  int rc = dagd_store_output_get(d->store, run_pk, task->id, short_circuit ? "condition" : "follow", &value, err);
  if (rc == DAGD_ENOENT) {
    dagd_err_init(err);
    value = dagd_strdup(short_circuit ? "true" : "[]");
  } else if (rc < 0) {
    return rc;
  }
  size_t *follow = dagd_calloc(task->n_downstream + 1, sizeof(size_t));
  size_t n_follow = 0;
  if (short_circuit) {
    bool go = strcmp(value, "false") != 0 && strcmp(value, "0") != 0 && value[0] != '\0';
    for (size_t i = 0; go && i < task->n_downstream; i++) follow[n_follow++] = task->downstream[i];
  } else {
    json_t *list = json_loads(value, JSON_DECODE_ANY, NULL);
    if (list == NULL) list = json_string(value);
    for (size_t i = 0; i < task->n_downstream; i++) {
      const char *id = dag->tasks[task->downstream[i]]->id;
      bool chosen = json_is_string(list) && strcmp(json_string_value(list), id) == 0;
      size_t k;
      json_t *x;
      if (json_is_array(list)) json_array_foreach(list, k, x) chosen |= json_is_string(x) && strcmp(json_string_value(x), id) == 0;
      if (chosen) follow[n_follow++] = task->downstream[i];
    }
    json_decref(list);
  }
  free(value);
  dagd_store_ti_list l;
  if ((rc = dagd_store_ti_list_run(d->store, run_pk, &l, err)) < 0) {
    free(follow);
    return rc;
  }
  dagd_sched_ti *tis = dagd_calloc(dag->n_tasks + 1, sizeof(*tis));
  dagd_store_ti **rows = dagd_calloc(dag->n_tasks + 1, sizeof(*rows));
  for (size_t i = 0; i < l.n; i++) {
    long t = dagd_dag_task_index(dag, l.tis[i].task_id);
    if (t < 0) continue;
    rows[t] = &l.tis[i];
    tis[t].state = l.tis[i].state;
  }
  dagd_sched_branch(dag, tis, (size_t)dagd_dag_task_index(dag, task->id), follow, n_follow);
  for (size_t t = 0; rc == 0 && t < dag->n_tasks; t++) {
    if (!tis[t].changed || rows[t] == NULL) continue;
    rows[t]->state = tis[t].state;
    rows[t]->end_date = daemon_now();
    rc = dagd_store_ti_update(d->store, rows[t], err);
  }
  free(tis);
  free(rows);
  free(follow);
  dagd_store_ti_list_clear(&l);
  return rc;
}

/* Records the end of a try in one transaction and schedules a pass. */
static void try_finished(running_try *rt, const dagd_try_result *r) {
  daemon_t *d = rt->d;
  dagd_err err;
  dagd_err_init(&err);
  bool ok = r->how == DAGD_TRY_EXITED && r->code == 0 && !rt->timed_out;
  bool skip = r->how == DAGD_TRY_EXITED && r->code == DAGD_EXIT_SKIP && !rt->timed_out;
  bool reschedule = r->how == DAGD_TRY_EXITED && r->code == DAGD_EXIT_RESCHEDULE && !rt->timed_out;
  dagd_store_ti ti = {0};
  int rc = dagd_store_begin(d->store, &err);
  if (rc == 0) rc = dagd_store_ti_get(d->store, rt->run_pk, rt->task_id, &ti, &err);
  if (rc == 0 && (ti.state != DAGD_TI_RUNNING || ti.try_number != rt->try_number)) {
    /* Cleared or marked by hand meanwhile: this try's end changes nothing. */
    dagd_store_rollback(d->store);
    goto out;
  }
  /* Outputs are kept from failed tries too (a failing gate's report);
   * only a successful try fails when they are malformed. */
  if (rc == 0) {
    bool stored = store_outputs(d, rt, &err);
    if (ok && !stored) ok = false;
    if (dagd_err_is_set(&err)) rc = err.code;
  }
  if (rc == 0) {
    dag_entry *e = daemon_find_dag(d, rt->dag_id);
    const dagd_task *task = e ? dagd_dag_find_task(e->dag, rt->task_id) : NULL;
    dagd_sched_ti st = {.state = ti.state, .try_number = ti.try_number, .max_tries = ti.max_tries};
    if (skip) {
      st.state = DAGD_TI_SKIPPED; /* soft fail */
    } else if (reschedule && task) {
      /* A sensor poke that found nothing: poke again after its interval;
       * the poke used no try. */
      int64_t interval = 60;
      const json_t *iv = json_object_get(task->config, "interval");
      if (json_is_integer(iv) && json_integer_value(iv) > 0) interval = json_integer_value(iv);
      st.state = DAGD_TI_UP_FOR_RESCHEDULE;
      st.next_try_at = daemon_now() + (double)interval;
      ti.try_number--;
    } else if (task) {
      dagd_sched_try_finished(task, &st, ok, daemon_now(), jitter(d));
    } else {
      st.state = ok ? DAGD_TI_SUCCESS : DAGD_TI_FAILED; /* the task left the DAG: no retry */
    }
    ti.state = st.state;
    ti.next_try_at = st.next_try_at;
    if (task && task->op == DAGD_OP_BRANCH && st.state == DAGD_TI_SUCCESS)
      rc = apply_branch(d, daemon_find_dag(d, rt->dag_id)->dag, task, rt->run_pk, &err);
    ti.end_date = daemon_now();
    ti.has_exit_code = r->how == DAGD_TRY_EXITED;
    ti.exit_code = r->how == DAGD_TRY_EXITED ? r->code : 0;
    if (rc == 0) rc = dagd_store_ti_update(d->store, &ti, &err);
  }
  if (rc == 0) rc = dagd_store_commit(d->store, &err);
  if (rc != 0) {
    dagd_store_rollback(d->store);
    /* The try's end is in its exit file; the next start re-adopts it. */
    DAGD_LOG(DAGD_LOG_ERROR, "exec", "recording the end of %s/%s try %d: %s", rt->dag_id, rt->task_id,
             rt->try_number, err.msg);
    if (!daemon_store_failed(d, &err)) {
      /* Busy: read the exit record again on a later turn. */
      dagd_store_ti_clear(&ti);
      dagd_exec_adopt(d->exec, rt->base, on_try_done, rt, &rt->exec, NULL);
      return;
    }
    /* Stopped: the stop released every running try, this one included. */
    dagd_store_ti_clear(&ti);
    return;
  }
  daemon_metrics_try(d, rt->dag_id, ok ? 0 : r->how == DAGD_TRY_VANISHED ? 2 : rt->timed_out ? 3 : 1,
                     rt->started > 0 ? daemon_now() - rt->started : -1);
  daemon_api_run_changed(d, rt->run_pk);
  const char *how = r->how == DAGD_TRY_VANISHED ? "was lost" : rt->timed_out ? "timed out" : rt->killed ? "was stopped on request" : NULL;
  if (how == NULL && r->how == DAGD_TRY_SIGNALED) how = "was killed";
  if (how) log_line(rt->base, "try %d %s", rt->try_number, how);
  {
    dag_entry *ne = daemon_find_dag(d, rt->dag_id);
    const dagd_task *nt = ne ? dagd_dag_find_task(ne->dag, rt->task_id) : NULL;
    if (nt) daemon_notify(d, ne->dag, nt, rt->run_id, rt->base, rt->try_number, ti.state);
  }
  DAGD_LOG(ok ? DAGD_LOG_INFO : DAGD_LOG_WARN, "exec", "%s/%s try %d %s (%s %d) -> %s", rt->dag_id, rt->task_id,
           rt->try_number, ok ? "succeeded" : how ? how : "failed",
           r->how == DAGD_TRY_SIGNALED ? "signal" : "exit", r->code, dagd_ti_state_name(ti.state));
out:
  dagd_store_ti_clear(&ti);
  rt_free(rt);
  daemon_kick(d);
}

static void on_try_done(void *data, const dagd_try_result *r) {
  running_try *rt = data;
  rt->exec = NULL;
  uv_timer_stop(&rt->timeout);
  try_finished(rt, r);
}

static void on_kill_grace(uv_timer_t *h) {
  running_try *rt = h->data;
  if (rt->exec) dagd_exec_signal(rt->exec, SIGKILL);
}

static void on_timeout(uv_timer_t *h) {
  running_try *rt = h->data;
  if (rt->exec == NULL) return;
  rt->timed_out = true;
  DAGD_LOG(DAGD_LOG_WARN, "exec", "%s/%s try %d: execution_timeout reached, stopping it", rt->dag_id,
           rt->task_id, rt->try_number);
  log_line(rt->base, "execution_timeout reached: SIGTERM, SIGKILL in %d s", KILL_GRACE_MS / 1000);
  /* The group may not exist for a few microseconds after the start. */
  dagd_exec_signal(rt->exec, SIGTERM);
  uv_timer_start(&rt->timeout, on_kill_grace, KILL_GRACE_MS, 0);
}

static void arm_timeout(running_try *rt, const dagd_task *task, double started) {
  if (task == NULL || task->execution_timeout <= 0) return;
  double left = started + (double)task->execution_timeout - daemon_now();
  uv_timer_start(&rt->timeout, on_timeout, left <= 0 ? 0 : (uint64_t)(left * 1000), 0);
}

/* A try that could not start fails like any other try. */
static void fail_now(running_try *rt, const char *why) {
  log_line(rt->base, "try %d could not start: %s", rt->try_number, why);
  DAGD_LOG(DAGD_LOG_WARN, "exec", "%s/%s try %d could not start: %s", rt->dag_id, rt->task_id, rt->try_number, why);
  dagd_try_result r = {DAGD_TRY_EXITED, 127};
  try_finished(rt, &r);
}

/* The inputs a gate gets besides its config: the baseline's values and
 * which run they come from (null when there is none yet). */
static json_t *gate_extra(daemon_t *d, const dagd_dag *dag, const dagd_task *task, int64_t run_pk) {
  const char *kind = json_string_value(json_object_get(task->config, "baseline"));
  const char *from = json_string_value(json_object_get(task->config, "from"));
  if (kind == NULL || from == NULL) return NULL;
  dagd_err err;
  dagd_err_init(&err);
  json_t *extra = json_object();
  if (strcmp(kind, "last_success") == 0) {
    dagd_store_run last;
    char *text = NULL;
    if (dagd_store_run_last_success(d->store, dag->id, run_pk, &last, &err) == 0) {
      if (dagd_store_output_json(d->store, last.pk, &text, &err) == 0) {
        json_t *outs = json_loads(text, 0, NULL);
        json_t *vals = json_object_get(outs, from);
        if (json_is_object(vals)) {
          json_object_set(extra, "baseline", vals);
          json_object_set_new(extra, "baseline_run", json_string(last.run_id));
        }
        json_decref(outs);
      }
      free(text);
      dagd_store_run_clear(&last);
    }
  } else if (strcmp(kind, "deployed") == 0) {
    char *run_id = NULL, *vals = NULL;
    if (dagd_store_baseline_get(d->store, dag->id, task->id, &run_id, &vals, &err) == 0) {
      json_t *v = json_loads(vals, 0, NULL);
      if (json_is_object(v)) json_object_set_new(extra, "baseline", v);
      else json_decref(v);
      json_object_set_new(extra, "baseline_run", json_string(run_id));
    }
    free(run_id);
    free(vals);
  }
  return extra;
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
  const dagd_mask *api = &d->api->secrets;
  size_t i = 0;
  while (i < cmd->n_secrets && dagd_mask_has(api, cmd->secrets[i])) i++;
  if (i == cmd->n_secrets) return api;
  for (size_t k = 0; k < api->n; k++) dagd_mask_add(own, api->values[k]);
  for (; i < cmd->n_secrets; i++) dagd_mask_add_secret(own, cmd->secrets[i]);
  return own;
}

void daemon_try_start(daemon_t *d, int64_t run_pk, const char *dag_id, const char *task_id, int try_number) {
  if (d->stopped) return; /* recorded as running: the next start finds it lost and retries it */
  dagd_err err;
  dagd_err_init(&err);
  dagd_store_run run = {0};
  char *outputs_text = NULL;
  json_t *outputs = NULL;
  dagd_command cmd = {0};
  dagd_mask own_secrets;
  dagd_mask_init(&own_secrets);
  const dagd_mask *secrets = NULL;
  if (dagd_store_run_get_pk(d->store, run_pk, &run, &err) < 0) {
    DAGD_LOG(DAGD_LOG_ERROR, "exec", "starting %s/%s: %s", dag_id, task_id, err.msg);
    return;
  }
  running_try *rt = rt_new(d, run_pk, dag_id, task_id, try_number, run.run_id);
  dag_entry *e = daemon_find_dag(d, dag_id);
  const dagd_task *task = e ? dagd_dag_find_task(e->dag, task_id) : NULL;
  if (make_parent_dirs(rt->base) < 0) {
    DAGD_LOG(DAGD_LOG_ERROR, "exec", "cannot create the log folder of %s: %s", rt->base, strerror(errno));
    dagd_try_result r = {DAGD_TRY_EXITED, 127};
    try_finished(rt, &r);
    goto out;
  }
  if (task == NULL) {
    fail_now(rt, "the task is no longer in the DAG");
    goto out;
  }
  if (dagd_store_output_json(d->store, run_pk, &outputs_text, &err) == 0)
    outputs = json_loads(outputs_text, 0, NULL);
  char *out_path = dagd_asprintf("%s.out", rt->base);
  char *spec_path = dagd_asprintf("%s.spec.json", rt->base);
  json_t *extra = task->op == DAGD_OP_GATE     ? gate_extra(d, e->dag, task, run_pk)
                  : task->op == DAGD_OP_SENSOR ? sensor_extra(d, task)
                                               : NULL;
  dagd_try_info info = {
      .dag = e->dag, .task = task, .run_id = run.run_id, .logical_date = run.logical_date,
      .has_interval = run.has_interval, .interval_start = run.interval_start, .interval_end = run.interval_end,
      .try_number = try_number, .conf = run.conf, .outputs = outputs, .output_path = out_path,
      .environ = environ, .secret = dagd_ops_secret_from_env, .self_path = d->shim_path, .spec_path = "-",
      .extra = extra, .executor = d->cfg.executor};
  int rc = dagd_ops_command(&info, &cmd, &err);
  free(out_path);
  json_decref(extra);
  if (rc == 0) secrets = try_secrets(d, &cmd, &own_secrets);
  if (rc == 0 && cmd.spec && write_spec(spec_path, cmd.spec, secrets) < 0) {
    rc = dagd_err_set(&err, DAGD_EIO, "cannot write %s: %s", spec_path, strerror(errno));
  }
  free(spec_path);
  if (rc < 0) {
    fail_now(rt, err.msg);
    goto out;
  }
  if (cmd.no_process) {
    dagd_try_result r = {DAGD_TRY_EXITED, 0};
    try_finished(rt, &r);
    goto out;
  }
  {
    /* A sensor (or registry wait) in reschedule mode pokes again under the
     * same try number: the last poke's exit record would stop the shim.
     * The try starts only now, so no record of it can be current. */
    dagd_try_paths paths;
    dagd_try_paths_init(&paths, rt->base);
    unlink(paths.exit);
    dagd_try_paths_close(&paths);
  }
  dagd_exec_spec spec = {.base = rt->base, .argv = cmd.argv, .env = cmd.env, .cwd = cmd.cwd,
                         .secrets = (const char *const *)secrets->values, .input = cmd.spec};
  if (dagd_exec_start(d->exec, &spec, on_try_done, rt, &rt->exec, &err) < 0) {
    fail_now(rt, err.msg);
    goto out;
  }
  arm_timeout(rt, task, daemon_now());
  rt->started = daemon_now();
  rt->pool = dagd_strdup(task->pool ? task->pool : "default");
  daemon_api_run_changed(d, run_pk);
  DAGD_LOG(DAGD_LOG_INFO, "exec", "%s/%s/%s try %d started", dag_id, run.run_id, task_id, try_number);
out:
  dagd_mask_close(&own_secrets);
  dagd_command_close(&cmd);
  json_decref(outputs);
  free(outputs_text);
  dagd_store_run_clear(&run);
}

int daemon_tries_adopt(daemon_t *d) {
  dagd_err err;
  dagd_err_init(&err);
  dagd_store_ti_list live;
  if (dagd_store_ti_list_live(d->store, &live, &err) < 0) {
    DAGD_LOG(DAGD_LOG_ERROR, "exec", "listing running tries: %s", err.msg);
    return err.code;
  }
  for (size_t i = 0; i < live.n; i++) {
    dagd_store_ti *ti = &live.tis[i];
    dagd_store_run run = {0};
    if (dagd_store_run_get_pk(d->store, ti->run_pk, &run, &err) < 0) continue;
    running_try *rt = rt_new(d, ti->run_pk, run.dag_id, ti->task_id, ti->try_number, run.run_id);
    /* A try recorded just before a crash may never have got its folder:
     * make it, so that its "vanished" record can be written. */
    make_parent_dirs(rt->base);
    dagd_exec_adopt(d->exec, rt->base, on_try_done, rt, &rt->exec, &err);
    rt->started = ti->start_date;
    rt->pool = dagd_strdup(ti->pool ? ti->pool : "default");
    dag_entry *e = daemon_find_dag(d, run.dag_id);
    arm_timeout(rt, e ? dagd_dag_find_task(e->dag, ti->task_id) : NULL, ti->start_date);
    DAGD_LOG(DAGD_LOG_INFO, "exec", "re-adopting %s/%s/%s try %d", run.dag_id, run.run_id, ti->task_id,
             ti->try_number);
    dagd_store_run_clear(&run);
  }
  dagd_store_ti_list_clear(&live);
  return 0;
}

void daemon_try_kill(daemon_t *d, int64_t run_pk, const char *task_id) {
  for (running_try *rt = d->running; rt; rt = rt->next) {
    if (rt->run_pk != run_pk || strcmp(rt->task_id, task_id) != 0 || rt->exec == NULL) continue;
    rt->killed = true;
    log_line(rt->base, "stopped on request: SIGTERM, SIGKILL in %d s", KILL_GRACE_MS / 1000);
    dagd_exec_signal(rt->exec, SIGTERM);
    uv_timer_start(&rt->timeout, on_kill_grace, KILL_GRACE_MS, 0);
  }
}

void daemon_tries_close(daemon_t *d) {
  /* The executor forgets the tries (they run on under their shims); the
   * daemon's records of them go too. */
  while (d->running) rt_free(d->running);
}
