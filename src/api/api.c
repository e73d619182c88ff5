/* The API's routes, authorisation (bearer tokens kept as SHA-256 and
 * compared in constant time; HMAC-SHA256 signatures for webhooks), and
 * the helpers every handler uses.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "dagd/time.h"
#include "internal.h"

const dagd_api_route dagd_api_routes[] = {
    {"GET", "/health", dagd__api_health, DAGD_SCOPE_NONE, NULL},
    {"GET", "/metrics", dagd__api_metrics, DAGD_SCOPE_NONE, NULL},
    {"GET", "/api/v1/dags", dagd__api_dags_list, DAGD_SCOPE_READ, NULL},
    {"GET", "/api/v1/dags/{dag_id}", dagd__api_dag_get, DAGD_SCOPE_READ, NULL},
    {"PATCH", "/api/v1/dags/{dag_id}", dagd__api_dag_patch, DAGD_SCOPE_ADMIN, NULL},
    {"GET", "/api/v1/dags/{dag_id}/tasks", dagd__api_dag_tasks, DAGD_SCOPE_READ, NULL},
    {"POST", "/api/v1/dags/{dag_id}/dagRuns", dagd__api_runs_post, DAGD_SCOPE_TRIGGER, NULL},
    {"GET", "/api/v1/dags/{dag_id}/dagRuns", dagd__api_runs_list, DAGD_SCOPE_READ, NULL},
    {"GET", "/api/v1/dags/{dag_id}/dagRuns/{run_id}", dagd__api_run_get, DAGD_SCOPE_READ, NULL},
    {"PATCH", "/api/v1/dags/{dag_id}/dagRuns/{run_id}", dagd__api_run_patch, DAGD_SCOPE_ADMIN, NULL},
    {"GET", "/api/v1/dags/{dag_id}/dagRuns/{run_id}/taskInstances", dagd__api_tis_list, DAGD_SCOPE_READ, NULL},
    {"PATCH", "/api/v1/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", dagd__api_ti_patch,
     DAGD_SCOPE_ADMIN, NULL},
    {"GET", "/api/v1/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try}", dagd__api_ti_log,
     DAGD_SCOPE_READ, NULL},
    {"POST", "/api/v1/dags/{dag_id}/clearTaskInstances", dagd__api_clear, DAGD_SCOPE_ADMIN, NULL},
    {"POST", "/api/v1/dags/{dag_id}/backfills", dagd__api_backfill_post, DAGD_SCOPE_ADMIN, NULL},
    {"GET", "/api/v1/backfills/{id}", dagd__api_backfill_get, DAGD_SCOPE_READ, NULL},
    {"POST", "/api/v1/events", dagd__api_events_post, DAGD_SCOPE_TRIGGER, "events"},
    {"GET", "/api/v1/events", dagd__api_events_list, DAGD_SCOPE_READ, NULL},
    {"POST", "/api/v1/hooks/alertmanager", dagd__api_hook_alertmanager, DAGD_SCOPE_TRIGGER, "alertmanager"},
    {"POST", "/api/v1/hooks/grafana", dagd__api_hook_grafana, DAGD_SCOPE_TRIGGER, "grafana"},
};
const size_t dagd_api_n_routes = sizeof(dagd_api_routes) / sizeof(dagd_api_routes[0]);

static void sha256(const void *data, size_t len, unsigned char out[32]) {
  unsigned int n = 32;
  EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

int dagd_scope_parse(const char *name, dagd_scope *out) {
  static const char *const names[] = {"none", "read", "trigger", "admin"};
  for (int i = 1; i < 4; i++) {
    if (strcmp(name, names[i]) == 0) {
      *out = (dagd_scope)i;
      return 0;
    }
  }
  return DAGD_EINVAL;
}

void dagd_api_init(dagd_api *api, dagd_store *store, const dagd_api_hooks *hooks, char *const *tokens,
                   char *const *scopes, size_t n_tokens) {
  memset(api, 0, sizeof(*api));
  dagd_mask_init(&api->secrets);
  api->store = store;
  if (hooks) api->hooks = *hooks;
  api->max_backfill_runs = 10000;
  api->max_log_bytes = 1 << 20;
  api->grafana_timestamp_window = 300;
  api->tokens = dagd_calloc(n_tokens ? n_tokens : 1, sizeof(*api->tokens));
  for (size_t i = 0; i < n_tokens; i++) {
    sha256(tokens[i], strlen(tokens[i]), api->tokens[i].sha256);
    api->tokens[i].scope = DAGD_SCOPE_ADMIN;
    if (scopes && scopes[i]) dagd_scope_parse(scopes[i], &api->tokens[i].scope);
  }
  api->n_tokens = n_tokens;
}

void dagd_api_add_secret(dagd_api *api, const char *value) { dagd_mask_add_secret(&api->secrets, value); }

void dagd_api_mask(const dagd_api *api, dagd_buf *text) { dagd_mask_text(&api->secrets, text); }

void dagd_api_close(dagd_api *api) {
  dagd_mask_close(&api->secrets);
  if (api->tokens) OPENSSL_cleanse(api->tokens, api->n_tokens * sizeof(*api->tokens));
  free(api->tokens);
  memset(api, 0, sizeof(*api));
}

void dagd_api_response_init(dagd_api_response *r) {
  memset(r, 0, sizeof(*r));
  dagd_buf_init(&r->body);
}

void dagd_api_response_close(dagd_api_response *r) {
  dagd_buf_close(&r->body);
  free(r->wait_log);
  memset(r, 0, sizeof(*r));
}

static const char *status_title(int status) {
  switch (status) {
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 409: return "Conflict";
  case 413: return "Payload Too Large";
  case 415: return "Unsupported Media Type";
  case 422: return "Unprocessable Entity";
  case 503: return "Service Unavailable";
  default: return status >= 500 ? "Internal Server Error" : "Error";
  }
}

int dagd__api_json(dagd_api_response *resp, int status, json_t *doc) {
  char *text = json_dumps(doc, DAGD_API_DUMP);
  dagd_buf_reset(&resp->body);
  dagd_buf_puts(&resp->body, text ? text : "null");
  dagd_buf_putc(&resp->body, '\n');
  free(text);
  json_decref(doc);
  resp->status = status;
  resp->content_type = "application/json";
  return status;
}

int dagd__api_error(dagd_api_response *resp, int status, const char *fmt, ...) {
  char detail[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  /* Messages quote user input; keep the JSON valid whatever it holds. */
  json_t *d = json_string(detail);
  if (d == NULL) d = json_string("(message not valid UTF-8)");
  return dagd__api_json(resp, status, json_pack("{s:s, s:i, s:o}", "title", status_title(status), "status", status,
                                                "detail", d));
}

int dagd__api_store_error(dagd_api_response *resp, const dagd_err *err) {
  bool retry = err->code == DAGD_ETIMEDOUT || err->code == DAGD_ELIMIT || err->code == DAGD_EIO;
  return dagd__api_error(resp, retry ? 503 : 500, "state store: %s", err->msg);
}

int dagd__api_body(const dagd_api_request *req, dagd_api_response *resp, json_t **out) {
  *out = NULL;
  if (req->content_type != NULL) {
    size_t n = strcspn(req->content_type, "; \t");
    if (!(n == 16 && strncasecmp(req->content_type, "application/json", 16) == 0))
      return dagd__api_error(resp, 415, "Content-Type must be application/json, not \"%.100s\"", req->content_type);
  }
  json_error_t jerr;
  /* Depth is bounded by jansson (JSON_PARSER_MAX_DEPTH, 2048). */
  json_t *doc = json_loadb(req->body ? req->body : "", req->body_len, JSON_REJECT_DUPLICATES, &jerr);
  if (doc == NULL) return dagd__api_error(resp, 400, "bad JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
  if (!json_is_object(doc)) {
    json_decref(doc);
    return dagd__api_error(resp, 400, "the body must be a JSON object");
  }
  *out = doc;
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char *dagd__api_query(const dagd_api_request *req, const char *name) {
  size_t nlen = strlen(name);
  const char *p = req->query ? req->query : "";
  while (*p) {
    const char *end = p + strcspn(p, "&");
    const char *eq = memchr(p, '=', (size_t)(end - p));
    const char *kend = eq ? eq : end;
    if ((size_t)(kend - p) == nlen && strncmp(p, name, nlen) == 0) {
      dagd_buf v;
      dagd_buf_init(&v);
      for (const char *c = eq ? eq + 1 : end; c < end; c++) {
        if (*c == '+') dagd_buf_putc(&v, ' ');
        else if (*c == '%' && c + 2 < end && hexval(c[1]) >= 0 && hexval(c[2]) >= 0) {
          dagd_buf_putc(&v, (char)(hexval(c[1]) * 16 + hexval(c[2])));
          c += 2;
        } else dagd_buf_putc(&v, *c);
      }
      return dagd_buf_steal(&v);
    }
    p = *end ? end + 1 : end;
  }
  return NULL;
}

int dagd__api_query_int(const dagd_api_request *req, dagd_api_response *resp, const char *name, int64_t def,
                        int64_t lo, int64_t hi, int64_t *out) {
  char *v = dagd__api_query(req, name);
  *out = def;
  if (v == NULL) return 0;
  char *end;
  long long n = strtoll(v, &end, 10);
  bool ok = *v && *end == '\0' && n >= lo && n <= hi;
  free(v);
  if (!ok) {
    dagd__api_error(resp, 400, "query parameter %s must be an integer in %lld-%lld", name, (long long)lo,
                    (long long)hi);
    return -1;
  }
  *out = n;
  return 0;
}

json_t *dagd__api_time(double t) {
  if (t == 0) return json_null();
  char buf[48], base[32];
  int64_t secs = (int64_t)t;
  if ((double)secs > t) secs--;
  int us = (int)((t - (double)secs) * 1e6 + 0.5);
  if (us >= 1000000) {
    secs++;
    us -= 1000000;
  }
  dagd_time_format_utc(secs, base);
  if (us == 0) return json_string(base);
  base[strlen(base) - 1] = '\0'; /* drop the Z */
  snprintf(buf, sizeof(buf), "%s.%06dZ", base, us);
  return json_string(buf);
}

const dagd_dag *dagd__api_dag(dagd_api *api, const char *dag_id, dagd_api_response *resp) {
  const dagd_dag *dag = api->hooks.find_dag ? api->hooks.find_dag(api->hooks.data, dag_id) : NULL;
  if (dag == NULL) dagd__api_error(resp, 404, "no DAG \"%.250s\"", dag_id);
  return dag;
}

/* Verifies "sha256=<hex>" (or bare hex) over data with secret. */
static bool hmac_ok(const char *secret, const void *data, size_t len, const char *sig) {
  if (sig == NULL) return false;
  if (strncmp(sig, "sha256=", 7) == 0) sig += 7;
  unsigned char mac[32], given[32];
  unsigned int n = 32;
  if (strlen(sig) != 64) return false;
  for (int i = 0; i < 32; i++) {
    int hi = hexval(sig[2 * i]), lo = hexval(sig[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    given[i] = (unsigned char)(hi * 16 + lo);
  }
  HMAC(EVP_sha256(), secret, (int)strlen(secret), data, len, mac, &n);
  return CRYPTO_memcmp(mac, given, 32) == 0;
}

static const char *hook_secret(const dagd_api *api, const char *hook) {
  for (size_t i = 0; hook && i < api->n_webhook_secrets; i++)
    if (strcmp(api->webhook_secrets[i].key, hook) == 0) return api->webhook_secrets[i].value;
  return NULL;
}

int dagd_api_timestamp_check(const char *timestamp, double now, int64_t window, dagd_err *err) {
  const char *p = timestamp;
  int64_t t = 0;
  if (p == NULL || *p == '\0')
    return dagd_err_set(err, DAGD_EINVAL, "the signature timestamp is empty (expected Unix seconds)");
  for (; *p; p++) {
    /* 12 digits reach the year 33658: anything longer is not seconds. */
    if (!isdigit((unsigned char)*p) || p - timestamp >= 12)
      return dagd_err_set(err, DAGD_EINVAL, "the signature timestamp \"%.40s\" is not Unix seconds", timestamp);
    t = t * 10 + (*p - '0');
  }
  double age = now - (double)t;
  if (age > (double)window)
    return dagd_err_set(err, DAGD_ERANGE,
                        "the signature timestamp %lld is %.0f s old, more than grafana_timestamp_window "
                        "(%lld s) allows: a replayed or delayed delivery",
                        (long long)t, age, (long long)window);
  if (-age > (double)window)
    return dagd_err_set(err, DAGD_ERANGE,
                        "the signature timestamp %lld is %.0f s in the future, more than "
                        "grafana_timestamp_window (%lld s) allows: check the clocks",
                        (long long)t, -age, (long long)window);
  return 0;
}

/* Grafana signs "timestamp:body" when it sends a timestamp, else the body
 * (its webhook contact point's HMAC settings). A signed timestamp must be
 * within the window around now, so a captured delivery cannot be replayed
 * later. */
static bool grafana_ok(const dagd_api *api, const char *secret, const dagd_api_request *req, dagd_err *err) {
  if (req->grafana_timestamp == NULL) return hmac_ok(secret, req->body, req->body_len, req->grafana_signature);
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_buf_printf(&b, "%s:", req->grafana_timestamp);
  dagd_buf_append(&b, req->body, req->body_len);
  bool ok = hmac_ok(secret, b.data, b.len, req->grafana_signature);
  dagd_buf_close(&b);
  if (ok && dagd_api_timestamp_check(req->grafana_timestamp, req->now, api->grafana_timestamp_window, err) != 0)
    return false;
  return ok;
}

/* Checks the id parameters of a route's path ({dag_id}, {task_id},
 * {run_id}) with the one id check, so no handler sees "..": ids become
 * folder names. Answers 400 and returns -1 on the first bad one. */
static int path_ids_ok(const dagd_api_route *route, const dagd_api_request *req, dagd_api_response *resp) {
  size_t i = 0;
  for (const char *p = strchr(route->pattern, '{'); p != NULL && i < req->n_params; p = strchr(p + 1, '{'), i++) {
    const char *kind = NULL;
    bool run = false;
    if (strncmp(p, "{dag_id}", 8) == 0) kind = "DAG id";
    else if (strncmp(p, "{task_id}", 9) == 0) kind = "task id";
    else if (strncmp(p, "{run_id}", 8) == 0) kind = "run id", run = true;
    const char *why = kind ? dagd_id_problem(req->params[i], run) : NULL;
    if (why != NULL) {
      dagd__api_error(resp, 400, "invalid %s \"%.250s\" in the path: %s", kind, req->params[i], why);
      return -1;
    }
  }
  return 0;
}

void dagd_api_dispatch(dagd_api *api, const dagd_api_route *route, const dagd_api_request *req,
                       dagd_api_response *resp) {
  dagd_buf_reset(&resp->body);
  const char *secret = hook_secret(api, route->hook);
  /* A webhook with a configured secret must be signed, tokens or not. */
  if (secret != NULL) {
    dagd_err err;
    dagd_err_init(&err);
    bool ok = strcmp(route->hook, "grafana") == 0 ? grafana_ok(api, secret, req, &err)
                                                  : hmac_ok(secret, req->body, req->body_len, req->signature);
    if (!ok) {
      api->events_rejected++;
      if (dagd_err_is_set(&err)) dagd__api_error(resp, 401, "%s", err.msg);
      else dagd__api_error(resp, 401, "missing or bad HMAC-SHA256 signature");
      return;
    }
  } else if (api->n_tokens > 0 && route->scope > DAGD_SCOPE_READ) {
    /* Mutations need a bearer token of a sufficient scope. Reads stay
     * open, as DESIGN.md section 6 says. */
    const char *auth = req->authorization;
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
      if (route->hook) api->events_rejected++;
      dagd__api_error(resp, 401, "this endpoint needs Authorization: Bearer <token>");
      return;
    }
    unsigned char h[32];
    const char *tok = auth + 7;
    while (*tok == ' ') tok++;
    sha256(tok, strlen(tok), h);
    dagd_scope scope = DAGD_SCOPE_NONE;
    /* Compare against every token, all the way, in constant time. */
    for (size_t i = 0; i < api->n_tokens; i++)
      if (CRYPTO_memcmp(h, api->tokens[i].sha256, 32) == 0) scope = api->tokens[i].scope;
    if (scope == DAGD_SCOPE_NONE) {
      if (route->hook) api->events_rejected++;
      dagd__api_error(resp, 401, "unknown token");
      return;
    }
    if (scope < route->scope) {
      dagd__api_error(resp, 403, "this token's scope does not allow %s %s", req->method, route->pattern);
      return;
    }
  }
  if (path_ids_ok(route, req, resp) != 0) return;
  route->handler(api, req, resp);
}
