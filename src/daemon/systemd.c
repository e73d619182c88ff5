/* The service manager's side (systemd's sd_notify protocol): READY=1 once
 * dagd listens with its state and DAGs loaded, STOPPING=1 when it starts
 * to drain, and WATCHDOG=1 from a loop timer at half of WATCHDOG_USEC, so
 * a loop that stops turning is noticed and restarted. Without
 * $NOTIFY_SOCKET (not started by systemd) every call is a no-op. The
 * variables are kept out of the tries' environment: a task is not the
 * service.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "dagd/log.h"
#include "dagd/util.h"
#include "daemon.h"

static void on_watchdog(uv_timer_t *h) {
  (void)h;
  sd_notify(0, "WATCHDOG=1");
}

void daemon_systemd_ready(daemon_t *d) {
  int rc = sd_notifyf(0, "READY=1\nSTATUS=scheduling %zu DAGs from %s", d->dags.bag.n_dags, d->cfg.dags_folder);
  if (rc < 0) DAGD_LOG(DAGD_LOG_WARN, "daemon", "cannot tell systemd dagd is ready: %s", strerror(-rc));
  uint64_t usec = 0;
  /* Only for this process: WATCHDOG_PID names it when set. */
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
  uint64_t every_ms = usec / 2000 > 0 ? usec / 2000 : 1;
  uv_timer_init(&d->loop, &d->systemd.watchdog);
  d->systemd.watchdog.data = d;
  d->systemd.watchdog_on = true;
  uv_timer_start(&d->systemd.watchdog, on_watchdog, 0, every_ms);
  DAGD_LOG(DAGD_LOG_INFO, "daemon", "systemd watchdog: a ping every %llu ms", (unsigned long long)every_ms);
}

void daemon_systemd_stopping(daemon_t *d) {
  if (d->systemd.told_stopping) return;
  d->systemd.told_stopping = true;
  sd_notify(0, "STOPPING=1\nSTATUS=stopping: waiting for running tries");
}

void daemon_systemd_close(daemon_t *d) {
  if (!d->systemd.watchdog_on) return;
  d->systemd.watchdog_on = false;
  uv_close((uv_handle_t *)&d->systemd.watchdog, NULL);
}

/* Whether an "K=V" entry is one of the service manager's variables. */
static bool service_variable(const char *entry) {
  static const char *const names[] = {"NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID="};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(names); i++)
    if (strncmp(entry, names[i], strlen(names[i])) == 0) return true;
  return false;
}

char **daemon_task_environ(char *const *envp) {
  size_t n = 0;
  while (envp && envp[n]) n++;
  char **out = dagd_calloc(n + 1, sizeof(char *));
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!service_variable(envp[i])) out[k++] = envp[i];
  return out;
}
