/* The REST API: handlers that turn a request into a response over the
 * store, the loaded DAG models and the scheduler core. No sockets and no
 * loop: the HTTP server (http) hands requests in, the daemon provides the
 * hooks below, and tests call the handlers directly. Shapes follow
 * Airflow's REST API (dag_id, dag_run_id, logical_date, state, conf, ...);
 * times are RFC 3339 UTC; errors are RFC 9457 problem documents
 * ({"type", "title", "status", "detail"}, application/problem+json). The
 * whole API is described by docs/openapi.yaml, served as
 * /api/v1/openapi.json.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_API_H
#define DAGD_API_H

#if defined(DAGD_LAYER_PURE) || defined(DAGD_LAYER_LUA) || defined(DAGD_LAYER_STORE) || defined(DAGD_LAYER_ENGINE)
#error "dagd/api.h is above this layer (see the layers in CMakeLists.txt)"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dagd/lua.h"
#include "dagd/mask.h"
#include "dagd/model.h"
#include "dagd/store.h"
#include "dagd/util.h"

struct dagd_err;

typedef enum {
  DAGD_SCOPE_NONE,     /* anyone (health; metrics with metrics_public) */
  DAGD_SCOPE_READ,     /* every read: DAGs, runs, logs, events, metrics */
  DAGD_SCOPE_TRIGGER,  /* trigger runs, post events */
  DAGD_SCOPE_ADMIN,    /* everything */
} dagd_scope;

typedef struct dagd_api_request {
  const char *method;
  const char *path;
  const char *const *params;   /* path parameters, decoded, in pattern order */
  size_t n_params;
  const char *query;           /* raw query string, "" when none */
  const char *body;
  size_t body_len;
  const char *content_type;    /* NULL when absent */
  const char *authorization;   /* the Authorization header, or NULL */
  const char *signature;       /* X-Dagd-Signature (sha256=<hex> of "<timestamp>.<body>"), or NULL */
  const char *timestamp;       /* X-Dagd-Timestamp (Unix seconds the signature covers), or NULL */
  const char *host;            /* the Host header, or NULL */
  bool host_repeated;          /* more than one Host header came */
  const char *origin;          /* the Origin header (browsers), or NULL */
  int version_minor;           /* HTTP/1.<minor>: a 1.1 request must carry Host */
  const char *grafana_signature;  /* the configured signature header (lowercase hex HMAC), or NULL */
  const char *grafana_timestamp;  /* the configured timestamp header, or NULL */
  bool local;                  /* the peer is on a loopback address */
  bool no_wait;                /* answer now even if the request asks to wait */
  double now;                  /* the clock, injected */
} dagd_api_request;

typedef struct dagd_api_response {
  int status;
  const char *content_type;    /* static string */
  dagd_buf body;
  /* Long poll: when wait_run_pk is set, the caller should answer again
   * (calling the handler anew) once that run changes or wait_until
   * passes. Likewise for a log that grows: wait_log names its file. */
  int64_t wait_run_pk;
  char *wait_log;
  double wait_until;
  /* The WWW-Authenticate challenge of a 401 or 403 (RFC 6750), or NULL
   * (heap). */
  char *www_authenticate;
  /* Seconds for a Retry-After header, 0 for none: set with a 503 when the
   * state store was busy (another process holds its write lock). */
  int retry_after;
} dagd_api_response;

void dagd_api_response_init(dagd_api_response *r);
void dagd_api_response_close(dagd_api_response *r);

/* What the API needs from the daemon. */
typedef struct dagd_api_hooks {
  void *data;
  const dagd_dagbag *(*bag)(void *data);                  /* loaded DAGs and parse errors */
  const dagd_dag *(*find_dag)(void *data, const char *dag_id);
  void (*changed)(void *data, const char *dag_id);        /* state changed: schedule a pass */
  void (*paused)(void *data, const char *dag_id, bool paused);
  void (*kill_try)(void *data, int64_t run_pk, const char *task_id);  /* a cleared running try */
  /* Extra lines for /metrics (Prometheus text), may be NULL. */
  void (*metrics)(void *data, dagd_buf *out);
  double (*heartbeat_age)(void *data);
  /* True while the daemon finds the state store busy (locked by another
   * process); /health says so without touching the store. May be NULL. */
  bool (*store_busy)(void *data);
} dagd_api_hooks;

typedef struct dagd_api_token {
  unsigned char sha256[32];    /* only the hash is kept */
  dagd_scope scope;
} dagd_api_token;

typedef struct dagd_api {
  dagd_store *store;
  dagd_api_hooks hooks;
  dagd_api_token *tokens;
  size_t n_tokens;
  const dagd_kv *webhook_secrets;  /* hook name -> secret (borrowed) */
  size_t n_webhook_secrets;
  /* Values never to show: task logs and outputs served by the API have
   * each of them replaced by "***" (dagd_api_add_secret). */
  dagd_mask secrets;
  const char *logs_folder;
  bool metrics_public;             /* /metrics needs no token even when tokens are configured */
  int64_t max_backfill_runs;       /* 10000 */
  size_t max_log_bytes;            /* per response, 1 MiB */
  size_t max_conf_size;            /* bytes of a run's conf (compact JSON), 1 MiB: more is 413 */
  int64_t grafana_timestamp_window; /* seconds a signed timestamp may be off now, either way; 300 */
  int64_t webhook_timestamp_window; /* the same for X-Dagd-Timestamp; 300 */
  /* The names the API answers to (DNS rebinding, cross-site requests):
   * the listen address's host and port, the loopback names with that
   * port, and allowed_hosts ("name" any port, "name:port" that one). */
  char listen_host[256];           /* "127.0.0.1", "[::1]", "localhost"; "" for none */
  int listen_port;                 /* the bound port */
  char *const *allowed_hosts;      /* borrowed */
  size_t n_allowed_hosts;
  /* Signed deliveries seen within the window (a replay is refused), and
   * the oldest timestamp still accepted: raised past what was forgotten. */
  struct dagd_api_seen *seen;
  size_t max_seen_signatures;      /* 4096 */
  int64_t signed_floor;            /* set it to the start time: what was signed before is refused */
  /* Counters for /metrics. */
  uint64_t events_received, events_duplicate, events_rejected;
} dagd_api;

/* Sets defaults; tokens are hashed here (the text is not kept). scopes
 * may be NULL (all admin) or name each token's scope. */
void dagd_api_init(dagd_api *api, dagd_store *store, const dagd_api_hooks *hooks, char *const *tokens,
                   char *const *scopes, size_t n_tokens);
void dagd_api_close(dagd_api *api);

typedef int (*dagd_api_handler)(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);

typedef struct dagd_api_route {
  const char *method;
  const char *pattern;         /* "/api/v1/dags/{dag_id}" */
  dagd_api_handler handler;
  dagd_scope scope;            /* needed once any token is configured */
  const char *hook;            /* webhook name whose HMAC secret authorises instead, or NULL */
  const char *query;           /* query parameters it takes, space-separated ("state*" may
                                * repeat); NULL: none. Any other is a 400. */
} dagd_api_route;

extern const dagd_api_route dagd_api_routes[];
extern const size_t dagd_api_n_routes;

/* Checks authorisation for a route (once any token is configured, every
 * route but /health needs one, /metrics too unless metrics_public), then
 * its query parameters, then runs its handler. Fills resp in
 * every case (errors included). */
void dagd_api_dispatch(dagd_api *api, const dagd_api_route *route, const dagd_api_request *req,
                       dagd_api_response *resp);

/* Adds a value to mask in what the API serves (copied; values shorter
 * than 4 bytes are ignored: masking them would garble everything). */
void dagd_api_add_secret(dagd_api *api, const char *value);
/* Replaces every secret in text with "***". */
void dagd_api_mask(const dagd_api *api, dagd_buf *text);

/* Checks a webhook's signed timestamp (decimal Unix seconds, as Grafana
 * sends it in its timestamp header and dagctl in X-Dagd-Timestamp)
 * against now: 0 when it lies within `window` seconds of now either way;
 * DAGD_EINVAL when it is not Unix seconds; DAGD_ERANGE when it is older
 * (a replay) or further ahead (a wrong clock). `setting` names the window's
 * config key in the message. Pure: the clock is passed in. */
int dagd_api_timestamp_check(const char *timestamp, double now, int64_t window, const char *setting,
                             struct dagd_err *err);

/* The signed text of X-Dagd-Signature: "<timestamp>.<body>". Appends the
 * lowercase hex HMAC-SHA256 of it with secret to out (64 characters),
 * for senders (dagctl) and tests. */
void dagd_api_sign(const char *secret, const char *timestamp, const void *body, size_t len, dagd_buf *out);

/* Checks that a request was addressed to this daemon and, for a browser,
 * comes from its own pages: Host must be one of the names in api
 * (400 when an HTTP/1.1 request has none or two, 421 for another name),
 * and an Origin, when present, must be the Host itself or one of those
 * names (403). Returns 0, or the status set in resp. dagd_api_dispatch
 * calls it first. */
int dagd_api_check_origin(const dagd_api *api, const dagd_api_request *req, dagd_api_response *resp);

/* docs/openapi.yaml as JSON text, built in (NUL-terminated, static);
 * *len, when len is not NULL, is its length. */
const char *dagd_api_openapi(size_t *len);

/* Parses a scope name ("read", "trigger", "admin"). */
int dagd_scope_parse(const char *name, dagd_scope *out);

#endif
