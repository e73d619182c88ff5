/* Notifications: the callbacks the engine chose (a task's on_success,
 * on_failure or on_retry when its try ends, a DAG's on_success or
 * on_failure once when a run ends, an SLA miss) each get one `dagd
 * notify` process, which posts the spec rendered by dagd_command_notify and
 * appends its outcome to a log: the try's, or the run's
 * <logs>/<dag>/<run>/run.notify.log. The daemon does not wait for it and
 * its outcome never changes a state.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "dagd/err.h"
#include "dagd/layout.h"
#include "dagd/log.h"
#include "dagd/mask.h"
#include "dagd/command.h"
#include "dagd/time.h"
#include "dagd/util.h"
#include "daemon.h"

extern char **environ;

typedef struct notifier {
  uv_process_t proc;
} notifier;

static void on_closed(uv_handle_t *h) { free(h->data); }

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) { uv_close((uv_handle_t *)p, on_closed); }

/* Writes text to path (mode 0600). */
static int write_file(const char *path, const dagd_buf *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  size_t off = 0;
  while (fd >= 0 && off < text->len) {
    ssize_t n = write(fd, text->data + off, text->len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += (size_t)n;
  }
  if (fd < 0) return -1;
  return close(fd) < 0 || off < text->len ? -1 : 0;
}

/* Appends one line to a log (the try's, or the run's notify log). */
static void log_note(const char *log, const char *msg) {
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  dprintf(fd, "dagd: %s\n", msg);
  close(fd);
}

/* Renders the spec and starts `dagd notify -` with it on its standard
 * input; a copy with every secret masked is kept at <base>.notify-EVENT.json
 * for the people reading the log. who names the callback in messages. */
static void notify_send(daemon_t *d, const dagd_try_info *info, const json_t *spec, const dagd_notify_about *about,
                        const char *base, const char *log, const char *who) {
  if (!json_is_object(spec) || d->stopped) return;
  dagd_mkdirs_for(log);
  char **seen = NULL;
  size_t n_seen = 0;
  json_t *full = NULL;
  dagd_err err;
  dagd_err_init(&err);
  char *text = NULL;
  char *path = NULL;
  int fd = -1, in = -1;
  if (dagd_command_notify(info, spec, about, &full, &seen, &n_seen, &err) < 0) {
    char *msg = dagd_asprintf("%s: not sent: %s", who, err.msg);
    log_note(log, msg);
    DAGD_LOG(DAGD_LOG_WARN, "notify", "%s/%s: %s", info->dag->id, info->run_id, msg);
    free(msg);
    goto out;
  }
  text = json_dumps(full, JSON_COMPACT);
  dagd_buf copy;
  dagd_buf_init(&copy);
  dagd_buf_puts(&copy, text);
  dagd_mask mask;
  dagd_mask_init(&mask);
  for (size_t i = 0; i < d->web.api->secrets.n; i++) dagd_mask_add(&mask, d->web.api->secrets.values[i]);
  for (size_t i = 0; i < n_seen; i++) dagd_mask_add_secret(&mask, seen[i]);
  dagd_mask_text(&mask, &copy);
  dagd_mask_close(&mask);
  path = dagd_asprintf("%s.notify-%s.json", base, about->event);
  int wrote = write_file(path, &copy);
  dagd_buf_close(&copy);
  in = dagd_memory_file("dagd-notify", text, strlen(text));
  fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (wrote < 0 || in < 0 || fd < 0) {
    DAGD_LOG(DAGD_LOG_WARN, "notify", "%s/%s: cannot prepare %s: %s", info->dag->id, info->run_id, who,
             strerror(errno));
    goto out;
  }
  notifier *n = dagd_calloc(1, sizeof(*n));
  n->proc.data = n;
  char *args[] = {d->tries.shim_path, "notify", "-", NULL};
  uv_stdio_container_t stdio[3] = {{.flags = UV_INHERIT_FD, .data.fd = in}, {.flags = UV_INHERIT_FD, .data.fd = fd},
                                   {.flags = UV_INHERIT_FD, .data.fd = fd}};
  uv_process_options_t opts = {.exit_cb = on_exit_cb, .file = d->tries.shim_path, .args = args, .stdio_count = 3,
                               .stdio = stdio};
  int rc = uv_spawn(&d->loop, &n->proc, &opts);
  if (rc < 0) {
    DAGD_LOG(DAGD_LOG_WARN, "notify", "%s/%s: cannot start %s: %s", info->dag->id, info->run_id, who,
             uv_strerror(rc));
    uv_close((uv_handle_t *)&n->proc, on_closed);
  }
out:
  if (fd >= 0) close(fd);
  if (in >= 0) close(in);
  for (size_t i = 0; i < n_seen; i++) free(seen[i]);
  free(seen);
  free(path);
  free(text);
  json_decref(full);
}

/* The context of a try of the run (task set) or of the run itself. */
static dagd_try_info run_info(const dagd_dag *dag, const dagd_task *task, const dagd_store_run *run, int try_number,
                              const json_t *outputs) {
  return (dagd_try_info){.dag = dag, .task = task, .run_id = run->run_id, .logical_date = run->logical_date,
                         .has_interval = run->has_interval, .interval_start = run->interval_start,
                         .interval_end = run->interval_end, .try_number = try_number, .conf = run->conf,
                         .outputs = outputs, .environ = environ, .secret = dagd_command_secret_from_env};
}

static void notify_task(daemon_t *d, const dagd_dag *dag, const dagd_task *task, const dagd_store_run *run,
                        const char *outputs_text, int try_number, const json_t *spec, const dagd_notify_about *about,
                        const char *base) {
  json_t *outputs = outputs_text ? json_loads(outputs_text, 0, NULL) : NULL;
  dagd_try_info info = run_info(dag, task, run, try_number, outputs);
  info.secret_hosts = d->cfg.secret_hosts;
  info.n_secret_hosts = d->cfg.n_secret_hosts;
  char *log = dagd_asprintf("%s" DAGD_TRY_LOG_SUFFIX, base);
  char *who = dagd_asprintf("the on_%s notification of task %s", about->event, task->id);
  dagd_notify_about a = *about;
  a.log = log;
  notify_send(d, &info, spec, &a, base, log, who);
  free(who);
  free(log);
  json_decref(outputs);
}

void daemon_notify_try(daemon_t *d, const dagd_engine_ended *x, const char *base, int try_number) {
  if (x->notify == NULL || x->dag == NULL || x->task == NULL) return;
  char e = x->notify_event[0];
  dagd_notify_about about = {.event = x->notify_event, .state = dagd_ti_state_name(x->state),
                             .what = e == 's' ? "succeeded" : e == 'f' ? "failed" : "failed and will be retried"};
  notify_task(d, x->dag, x->task, &x->run, x->outputs, try_number, x->notify, &about, base);
}

void daemon_notify_sla(daemon_t *d, const dagd_engine_sla *m, const char *base) {
  if (m->notify == NULL) return;
  char what[64];
  char sla[32];
  dagd_duration_format(m->task->sla, sla, sizeof(sla));
  snprintf(what, sizeof(what), "missed its SLA of %s", sla);
  dagd_notify_about about = {.event = "sla_miss", .state = dagd_ti_state_name(m->state), .what = what};
  notify_task(d, m->dag, m->task, &m->run, m->outputs, m->try_number, m->notify, &about, base);
}

void daemon_notify_run(daemon_t *d, const dagd_engine_run_end *r) {
  if (r->notify == NULL) return;
  bool ok = r->state == DAGD_RUN_SUCCESS;
  json_t *outputs = r->outputs ? json_loads(r->outputs, 0, NULL) : NULL;
  dagd_try_info info = run_info(r->dag, NULL, &r->run, 0, outputs);
  info.secret_hosts = d->cfg.secret_hosts;
  info.n_secret_hosts = d->cfg.n_secret_hosts;
  dagd_notify_about about = {.event = ok ? "success" : "failure", .state = dagd_run_state_name(r->state),
                             .what = ok ? "succeeded" : "failed", .failed_tasks = r->failed_tasks,
                             .n_failed_tasks = r->n_failed_tasks};
  char *base = dagd_layout_run_base(d->cfg.logs_folder, r->dag->id, r->run_id);
  char *log = dagd_asprintf("%s" DAGD_RUN_NOTIFY_LOG_SUFFIX, base);
  notify_send(d, &info, r->notify, &about, base, log, ok ? "the DAG's on_success notification"
                                                          : "the DAG's on_failure notification");
  free(log);
  free(base);
  json_decref(outputs);
}
