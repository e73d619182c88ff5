/* Notifications: when a try ends, the task's (else the DAG's) on_failure,
 * on_success or on_retry spec gets a JSON POST, sent by a separate
 * `dagd notify` process whose output is appended to the try's log. The
 * daemon does not wait for it and its outcome never changes the task.
 * SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "dagd/log.h"
#include "dagd/time.h"
#include "dagd/util.h"
#include "daemon.h"

typedef struct notifier {
  uv_process_t proc;
} notifier;

static void on_closed(uv_handle_t *h) { free(h->data); }

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) { uv_close((uv_handle_t *)p, on_closed); }

static void notify_send(daemon_t *d, const dagd_dag *dag, const dagd_task *task, const char *run_id, const char *base,
                 int try_number, const char *event, const char *state, const json_t *spec, const char *what);

void daemon_notify(daemon_t *d, const dagd_dag *dag, const dagd_task *task, const char *run_id, const char *base,
                   int try_number, dagd_ti_state state) {
  const char *event = state == DAGD_TI_SUCCESS ? "success" : state == DAGD_TI_FAILED ? "failure"
                      : state == DAGD_TI_UP_FOR_RETRY ? "retry" : NULL;
  if (event == NULL || d->stopped) return;
  const json_t *spec = event[0] == 's' ? (task->on_success ? task->on_success : dag->on_success)
                       : event[0] == 'f' ? (task->on_failure ? task->on_failure : dag->on_failure)
                                         : (task->on_retry ? task->on_retry : dag->on_retry);
  notify_send(d, dag, task, run_id, base, try_number, event, dagd_ti_state_name(state), spec,
       event[0] == 's' ? "succeeded" : event[0] == 'f' ? "failed" : "failed and will be retried");
}

void daemon_notify_sla(daemon_t *d, const dagd_dag *dag, const dagd_task *task, const char *run_id, const char *base,
                       int try_number, dagd_ti_state state) {
  /* An SLA miss goes where failures go. */
  const json_t *spec = task->on_failure ? task->on_failure : dag->on_failure;
  char what[64];
  char sla[32];
  dagd_duration_format(task->sla, sla, sizeof(sla));
  snprintf(what, sizeof(what), "missed its SLA of %s", sla);
  notify_send(d, dag, task, run_id, base, try_number, "sla_miss", dagd_ti_state_name(state), spec, what);
}

static void notify_send(daemon_t *d, const dagd_dag *dag, const dagd_task *task, const char *run_id, const char *base,
                 int try_number, const char *event, const char *state, const json_t *spec, const char *what) {
  if (!json_is_object(spec) || d->stopped) return;
  char *log = dagd_asprintf("%s.log", base);
  dagd_mkdirs_for(log);
  char *text = dagd_asprintf("dagd: task %s of DAG %s %s (try %d) in run %s", task->id, dag->id, what, try_number,
                             run_id);
  json_t *full = json_deep_copy(spec);
  json_object_set_new(full, "payload",
                      json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "text", text, "event", event, "dag_id",
                                dag->id, "run_id", run_id, "task_id", task->id, "try_number", try_number, "state",
                                state, "log", log));
  char *path = dagd_asprintf("%s.notify-%s.json", base, event);
  int rc = json_dump_file(full, path, JSON_COMPACT);
  json_decref(full);
  free(text);
  int fd = rc == 0 ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
  if (fd >= 0) chmod(path, 0600);
  if (fd < 0) {
    DAGD_LOG(DAGD_LOG_WARN, "notify", "%s/%s: cannot prepare the %s notification", dag->id, task->id, event);
    free(path);
    free(log);
    return;
  }
  notifier *n = dagd_calloc(1, sizeof(*n));
  n->proc.data = n;
  char *args[] = {d->shim_path, "notify", path, NULL};
  uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD, .data.fd = fd},
                                   {.flags = UV_INHERIT_FD, .data.fd = fd}};
  uv_process_options_t opts = {.exit_cb = on_exit_cb, .file = d->shim_path, .args = args, .stdio_count = 3,
                               .stdio = stdio};
  if ((rc = uv_spawn(&d->loop, &n->proc, &opts)) < 0) {
    DAGD_LOG(DAGD_LOG_WARN, "notify", "%s/%s: cannot start the %s notification: %s", dag->id, task->id, event,
             uv_strerror(rc));
    uv_close((uv_handle_t *)&n->proc, on_closed);
  }
  close(fd);
  free(path);
  free(log);
}
