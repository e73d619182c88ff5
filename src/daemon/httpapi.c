/* The daemon's HTTP side: serves the API's routes through the http
 * server, holds long polls (a run's end, a log's growth) and answers them
 * when the daemon reports a change, keeps the scheduler heartbeat, and
 * adds the daemon's gauges to /metrics.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dagd/api.h"
#include "dagd/err.h"
#include "dagd/http.h"
#include "dagd/log.h"
#include "dagd/util.h"
#include "daemon.h"

/* What a router entry carries: the daemon and the API route. */
struct route_binding {
  daemon_t *d;
  const dagd_api_route *route;
};

typedef struct route_binding route_binding;

/* A request waiting for a change. */
typedef struct pending {
  daemon_t *d;
  dagd_http_exchange *x;
  const dagd_api_route *route;
  int64_t run_pk;          /* wake on this run's changes, 0 = none */
  uv_fs_event_t watch;     /* a log file's growth */
  bool watching;
  uv_timer_t timer;        /* the long poll's limit */
  int handles;
  bool done;
  struct pending *prev, *next;
} pending;

static const dagd_dagbag *hook_bag(void *data) { return &((daemon_t *)data)->dags.bag; }

static const dagd_dag *hook_find(void *data, const char *id) {
  return dagd_engine_find_dag(((daemon_t *)data)->engine, id);
}

static void hook_changed(void *data, const char *dag_id) {
  daemon_t *d = data;
  dagd_engine_changed(d->engine, dag_id);
  daemon_kick(d);
}

static void hook_paused(void *data, const char *dag_id, bool paused) {
  daemon_t *d = data;
  DAGD_LOG(DAGD_LOG_INFO, "api", "dag %s %s", dag_id, paused ? "paused" : "unpaused");
  daemon_kick(d);
}

static void hook_kill(void *data, int64_t run_pk, const char *task_id) { daemon_try_kill(data, run_pk, task_id); }

static double hook_heartbeat_age(void *data) {
  daemon_t *d = data;
  return daemon_mono() - d->web.heartbeat;
}

static bool hook_store_busy(void *data) {
  daemon_t *d = data;
  /* Busy as last found, or locked now (tried without waiting). */
  return d->store_busy || dagd_store_is_locked(d->store);
}

static void hook_metrics(void *data, dagd_buf *out) {
  daemon_t *d = data;
  dagd_buf_printf(out,
                  "# HELP dagd_running_tries Task tries running now.\n# TYPE dagd_running_tries gauge\n"
                  "dagd_running_tries %zu\n"
                  "# HELP dagd_queued_task_instances Task instances scheduled and waiting for a slot.\n"
                  "# TYPE dagd_queued_task_instances gauge\ndagd_queued_task_instances %zu\n"
                  "# HELP dagd_parallelism Worker slots.\n# TYPE dagd_parallelism gauge\ndagd_parallelism %d\n"
                  "# HELP dagd_scheduler_passes_total Scheduling passes.\n# TYPE dagd_scheduler_passes_total counter\n"
                  "dagd_scheduler_passes_total %llu\n"
                  "# HELP dagd_scheduler_pass_seconds_total Time spent in scheduling passes.\n"
                  "# TYPE dagd_scheduler_pass_seconds_total counter\ndagd_scheduler_pass_seconds_total %.6f\n"
                  "# HELP dagd_loop_lag_seconds How late the last heartbeat fired.\n"
                  "# TYPE dagd_loop_lag_seconds gauge\ndagd_loop_lag_seconds %.6f\n",
                  d->tries.n_running, d->stats.queue_depth, d->cfg.parallelism, (unsigned long long)d->stats.passes,
                  d->stats.pass_seconds, d->web.loop_lag);
  daemon_metrics_write(d, out);
  dagd_buf_printf(out, "# HELP dagd_http_requests_total HTTP answers by status class.\n"
                       "# TYPE dagd_http_requests_total counter\n");
  for (int i = 1; i < 6; i++)
    dagd_buf_printf(out, "dagd_http_requests_total{code=\"%dxx\"} %llu\n", i, (unsigned long long)d->web.http_codes[i]);
}

static void pending_closed(uv_handle_t *h) {
  pending *p = h->data;
  if (--p->handles == 0) free(p);
}

static void pending_free(pending *p) {
  daemon_t *d = p->d;
  if (p->prev) p->prev->next = p->next;
  else d->web.pending = p->next;
  if (p->next) p->next->prev = p->prev;
  p->done = true;
  uv_close((uv_handle_t *)&p->timer, pending_closed);
  if (p->watching) uv_close((uv_handle_t *)&p->watch, pending_closed);
}

static void answer(daemon_t *d, dagd_http_exchange *x, const dagd_api_route *route, bool no_wait);

/* The change came (or the limit passed): answer now, without waiting. */
static void pending_fire(pending *p) {
  if (p->done) return;
  dagd_http_exchange *x = p->x;
  dagd_http_exchange_on_abort(x, NULL, NULL);
  daemon_t *d = p->d;
  const dagd_api_route *route = p->route;
  pending_free(p);
  answer(d, x, route, true);
}

static void on_pending_timer(uv_timer_t *h) { pending_fire(h->data); }

static void on_log_change(uv_fs_event_t *h, const char *file, int events, int status) { pending_fire(h->data); }

static void on_pending_abort(dagd_http_exchange *x, void *data) {
  pending *p = data;
  if (!p->done) pending_free(p);
}

void daemon_api_run_changed(daemon_t *d, int64_t run_pk) {
  for (pending *p = d->web.pending, *next; p; p = next) {
    next = p->next;
    if (p->run_pk == run_pk) pending_fire(p);
  }
}

static void hold(daemon_t *d, dagd_http_exchange *x, const dagd_api_route *route, const dagd_api_response *resp) {
  pending *p = dagd_calloc(1, sizeof(*p));
  p->d = d;
  p->x = x;
  p->route = route;
  p->run_pk = resp->wait_run_pk;
  uv_timer_init(&d->loop, &p->timer);
  p->timer.data = p;
  p->handles = 1;
  double left = resp->wait_until - daemon_now();
  uv_timer_start(&p->timer, on_pending_timer, left > 0 ? (uint64_t)(left * 1000) : 0, 0);
  if (resp->wait_log) {
    uv_fs_event_init(&d->loop, &p->watch);
    p->watch.data = p;
    p->handles++;
    p->watching = true;
    if (uv_fs_event_start(&p->watch, on_log_change, resp->wait_log, 0) < 0) uv_timer_start(&p->timer, on_pending_timer, 0, 0);
  }
  p->next = d->web.pending;
  if (d->web.pending) d->web.pending->prev = p;
  d->web.pending = p;
  dagd_http_exchange_on_abort(x, on_pending_abort, p);
}

/* How many headers of that name came. */
static size_t header_count(const dagd_http_request *hr, const char *name) {
  size_t n = 0;
  for (size_t i = 0; i < hr->nheaders; i++) n += strcasecmp(hr->headers[i].name, name) == 0;
  return n;
}

static void answer(daemon_t *d, dagd_http_exchange *x, const dagd_api_route *route, bool no_wait) {
  const dagd_http_request *hr = dagd_http_exchange_request(x);
  const char *params[8];
  size_t np = hr->nparams < 8 ? hr->nparams : 8;
  for (size_t i = 0; i < np; i++) params[i] = hr->params[i].value;
  dagd_api_request req = {
      .method = hr->method_name, .path = hr->path, .params = params, .n_params = np, .query = hr->query,
      .body = hr->body, .body_len = hr->body_len,
      .content_type = dagd_http_request_header(hr, "Content-Type"),
      .authorization = dagd_http_request_header(hr, "Authorization"),
      .signature = dagd_http_request_header(hr, "X-Dagd-Signature"),
      .timestamp = dagd_http_request_header(hr, "X-Dagd-Timestamp"),
      .host = dagd_http_request_header(hr, "Host"), .host_repeated = header_count(hr, "Host") > 1,
      .origin = dagd_http_request_header(hr, "Origin"), .version_minor = hr->version_minor,
      .grafana_signature = dagd_http_request_header(hr, d->cfg.grafana_signature_header),
      .grafana_timestamp = dagd_http_request_header(hr, d->cfg.grafana_timestamp_header),
      .local = dagd_http_exchange_peer_is_loopback(x), .no_wait = no_wait, .now = daemon_now()};
  dagd_api_response resp;
  dagd_api_response_init(&resp);
  dagd_api_dispatch(d->web.api, route, &req, &resp);
  if (resp.wait_run_pk || resp.wait_log) {
    hold(d, x, route, &resp);
  } else {
    if (resp.status >= 100 && resp.status < 600) d->web.http_codes[resp.status / 100]++;
    dagd_http_header extra[2];
    size_t n_extra = 0;
    char retry[16];
    if (resp.www_authenticate) extra[n_extra++] = (dagd_http_header){"WWW-Authenticate", resp.www_authenticate};
    if (resp.retry_after > 0) {
      snprintf(retry, sizeof(retry), "%d", resp.retry_after);
      extra[n_extra++] = (dagd_http_header){"Retry-After", retry};
      /* The store was busy: /health says so until a pass gets through,
       * and a pass is asked for so that it is found free again. */
      daemon_store_busy(d, true);
      daemon_kick(d);
    }
    daemon_reply(d, x, resp.status, resp.content_type, resp.body.data ? resp.body.data : "", resp.body.len,
                 n_extra ? extra : NULL, n_extra);
  }
  dagd_api_response_close(&resp);
}

static void on_request(dagd_http_exchange *x, void *data) {
  const route_binding *b = data;
  answer(b->d, x, b->route, false);
}

/* Errors the server answers by itself (bad requests, unknown paths,
 * wrong methods, limits) take the API's error shape, and are counted. */
static void error_body(void *data, int status, const char *message, dagd_buf *body, const char **content_type) {
  dagd_problem_write(body, status, message);
  *content_type = DAGD_PROBLEM_CONTENT_TYPE;
  ((daemon_t *)data)->web.http_codes[status / 100 < 6 ? status / 100 : 5]++;
}

static void on_heartbeat(uv_timer_t *h) {
  daemon_t *d = h->data;
  double now = daemon_mono();
  /* The timer repeats every second: any extra delay is loop lag. */
  if (d->web.heartbeat > 0) d->web.loop_lag = now - d->web.heartbeat - 1.0 > 0 ? now - d->web.heartbeat - 1.0 : 0;
  d->web.heartbeat = now;
}

int daemon_api_listen(daemon_t *d) {
  const dagd_config *cfg = &d->cfg;
  dagd_err err;
  dagd_err_init(&err);
  /* The heartbeat's timer exists from here on, so a stop can always close it. */
  uv_timer_init(&d->loop, &d->web.heartbeat_timer);
  d->web.heartbeat_timer.data = d;
  d->web.router = dagd_http_router_new();
  /* A body may carry a conf up to max_conf_size, and a webhook's wrapping
   * around it (Alertmanager repeats labels and annotations): room for both,
   * so an over-large conf gets max_conf_size's own 413 that names it. */
  size_t body_max = cfg->max_conf_size * 2 + 64 * 1024;
  dagd_http_server_opts opts = {.error_body = error_body, .error_body_data = d,
                                .max_body_bytes = body_max > (1u << 20) ? body_max : (1u << 20)};
  d->web.http = dagd_http_server_new(&d->loop, &opts, d->web.router);
  if (dagd_http_server_listen(d->web.http, cfg->listen, &err) < 0) {
    /* "127.0.0.1:8787: address already in use" */
    fprintf(stderr, "dagd: %s: %s\n", cfg->listen, err.cause < 0 ? uv_strerror(err.cause) : err.msg);
    return -1;
  }
  return 0;
}

int daemon_api_start(daemon_t *d) {
  const dagd_config *cfg = &d->cfg;
  if (cfg->n_api_tokens == 0)
    DAGD_LOG(DAGD_LOG_WARN, "api", "DEVELOPMENT MODE: no api_tokens configured, so anyone on this machine "
                                   "can use the API on %s unauthenticated", cfg->listen);
  dagd_api_hooks hooks = {.data = d, .bag = hook_bag, .find_dag = hook_find, .changed = hook_changed,
                          .paused = hook_paused, .kill_try = hook_kill, .metrics = hook_metrics,
                          .heartbeat_age = hook_heartbeat_age, .store_busy = hook_store_busy};
  d->web.api = dagd_calloc(1, sizeof(*d->web.api));
  dagd_api_init(d->web.api, d->store, &hooks, cfg->api_tokens, cfg->api_token_scopes, cfg->n_api_tokens);
  d->web.api->webhook_secrets = cfg->webhook_secrets;
  d->web.api->n_webhook_secrets = cfg->n_webhook_secrets;
  d->web.api->grafana_timestamp_window = cfg->grafana_timestamp_window;
  d->web.api->max_conf_size = cfg->max_conf_size;
  d->web.api->webhook_timestamp_window = cfg->webhook_timestamp_window;
  /* Deliveries signed before this start may have been taken by the
   * daemon before it: a replay of them cannot be told, so refuse them. */
  d->web.api->signed_floor = (int64_t)daemon_now();
  /* The names this daemon answers to: its listen host and port, the
   * loopback names, allowed_hosts. */
  size_t hl = strlen(cfg->listen);
  const char *colon = strrchr(cfg->listen, ':');
  if (colon) hl = (size_t)(colon - cfg->listen);
  if (hl < sizeof(d->web.api->listen_host)) {
    for (size_t i = 0; i < hl; i++) d->web.api->listen_host[i] = (char)tolower((unsigned char)cfg->listen[i]);
    d->web.api->listen_host[hl] = '\0';
  }
  d->web.api->listen_port = dagd_http_server_port(d->web.http);
  d->web.api->allowed_hosts = cfg->allowed_hosts;
  d->web.api->n_allowed_hosts = cfg->n_allowed_hosts;
  bool wildcard = strcmp(d->web.api->listen_host, "0.0.0.0") == 0 || strcmp(d->web.api->listen_host, "[::]") == 0;
  if (wildcard && cfg->n_allowed_hosts == 0)
    DAGD_LOG(DAGD_LOG_WARN, "api", "listening on %s with no allowed_hosts: only requests addressed to "
                                   "localhost, 127.0.0.1 or [::1] are answered; list this machine's names "
                                   "in allowed_hosts (DAGD_ALLOWED_HOSTS)", cfg->listen);
  d->web.api->logs_folder = cfg->logs_folder;
  d->web.api->metrics_public = cfg->metrics_public;
  /* What the API must never show: template secrets, tokens, webhook secrets. */
  extern char **environ;
  dagd_mask_add_env_secrets(&d->web.api->secrets, environ);
  for (size_t i = 0; i < cfg->n_api_tokens; i++) dagd_api_add_secret(d->web.api, cfg->api_tokens[i]);
  for (size_t i = 0; i < cfg->n_webhook_secrets; i++) dagd_api_add_secret(d->web.api, cfg->webhook_secrets[i].value);
  d->web.bindings = dagd_calloc(dagd_api_n_routes, sizeof(*d->web.bindings));
  dagd_err err;
  dagd_err_init(&err);
  for (size_t i = 0; i < dagd_api_n_routes; i++) {
    const dagd_api_route *r = &dagd_api_routes[i];
    dagd_http_method m = DAGD_HTTP_GET;
    for (int k = 0; k < DAGD_HTTP_METHOD_COUNT_; k++)
      if (strcmp(dagd_http_method_name((dagd_http_method)k), r->method) == 0) m = (dagd_http_method)k;
    d->web.bindings[i] = (route_binding){d, r};
    if (dagd_http_router_add(d->web.router, m, r->pattern, on_request, &d->web.bindings[i], &err) < 0) {
      fprintf(stderr, "dagd: route %s %s: %s\n", r->method, r->pattern, err.msg);
      return -1;
    }
  }
  if (daemon_ui_routes(d, &err) < 0) {
    fprintf(stderr, "dagd: UI routes: %s\n", err.msg);
    return -1;
  }
  d->web.heartbeat = daemon_mono();
  uv_timer_start(&d->web.heartbeat_timer, on_heartbeat, 1000, 1000);
  return 0;
}

void daemon_api_serving(daemon_t *d) {
  /* Logged only now, though the socket was bound first: a client that
   * reads the port from the log finds the state file and the DAGs
   * loaded (connections wait in the backlog until the loop runs). */
  DAGD_LOG(DAGD_LOG_INFO, "http", "listening on %s (port %d)", d->cfg.listen, dagd_http_server_port(d->web.http));
}

static void on_server_closed(void *data) {
  daemon_t *d = data;
  dagd_http_router_free(d->web.router);
  d->web.router = NULL;
  free(d->web.bindings);
  d->web.bindings = NULL;
}

void daemon_api_stop(daemon_t *d) {
  while (d->web.pending) {
    pending *p = d->web.pending;
    dagd_http_exchange_on_abort(p->x, NULL, NULL);
    pending_free(p);
  }
  if (d->web.http) {
    dagd_http_server_close(d->web.http, on_server_closed, d);
    d->web.http = NULL;
    if (!uv_is_closing((uv_handle_t *)&d->web.heartbeat_timer)) uv_close((uv_handle_t *)&d->web.heartbeat_timer, NULL);
  } else if (d->web.router) {
    on_server_closed(d);
  }
}

void daemon_api_free(daemon_t *d) {
  if (d->web.api) dagd_api_close(d->web.api);
  free(d->web.api);
  d->web.api = NULL;
}
