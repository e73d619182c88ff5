/* The API's routes, authorisation (bearer tokens kept as SHA-256 and
 * compared in constant time; HMAC-SHA256 signatures for webhooks), and
 * the helpers every handler uses.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "dagd/time.h"
#include "dagd/tz.h"
#include "internal.h"

/* What each route takes in its query string ("name*" may repeat): any
 * other parameter is refused with 400, as Airflow's stable API does
 * (strict validation), so that a misspelt or unsupported filter is never
 * silently ignored. */
#define Q_PAGE "limit offset"
const dagd_api_route dagd_api_routes[] = {
    {"GET", "/health", dagd__api_health, DAGD_SCOPE_NONE, NULL, NULL},
    {"GET", "/metrics", dagd__api_metrics, DAGD_SCOPE_READ, NULL, NULL},
    {"GET", "/api/v1/openapi.json", dagd__api_openapi, DAGD_SCOPE_NONE, NULL, NULL},
    {"GET", "/api/v1/dags", dagd__api_dags_list, DAGD_SCOPE_READ, NULL, Q_PAGE " tags* order_by"},
    {"GET", "/api/v1/dags/{dag_id}", dagd__api_dag_get, DAGD_SCOPE_READ, NULL, NULL},
    {"PATCH", "/api/v1/dags/{dag_id}", dagd__api_dag_patch, DAGD_SCOPE_ADMIN, NULL, NULL},
    {"GET", "/api/v1/dags/{dag_id}/tasks", dagd__api_dag_tasks, DAGD_SCOPE_READ, NULL, NULL},
    {"POST", "/api/v1/dags/{dag_id}/dagRuns", dagd__api_runs_post, DAGD_SCOPE_TRIGGER, NULL, NULL},
    {"GET", "/api/v1/dags/{dag_id}/dagRuns", dagd__api_runs_list, DAGD_SCOPE_READ, NULL, Q_PAGE " state* order_by"},
    {"GET", "/api/v1/dags/{dag_id}/dagRuns/{run_id}", dagd__api_run_get, DAGD_SCOPE_READ, NULL, "wait"},
    {"PATCH", "/api/v1/dags/{dag_id}/dagRuns/{run_id}", dagd__api_run_patch, DAGD_SCOPE_ADMIN, NULL, NULL},
    {"GET", "/api/v1/dags/{dag_id}/dagRuns/{run_id}/taskInstances", dagd__api_tis_list, DAGD_SCOPE_READ, NULL,
     Q_PAGE},
    {"PATCH", "/api/v1/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", dagd__api_ti_patch,
     DAGD_SCOPE_ADMIN, NULL, NULL},
    {"GET", "/api/v1/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try}", dagd__api_ti_log,
     DAGD_SCOPE_READ, NULL, "offset wait format"},
    {"POST", "/api/v1/dags/{dag_id}/clearTaskInstances", dagd__api_clear, DAGD_SCOPE_ADMIN, NULL, NULL},
    {"POST", "/api/v1/dags/{dag_id}/backfills", dagd__api_backfill_post, DAGD_SCOPE_ADMIN, NULL, NULL},
    {"GET", "/api/v1/backfills/{id}", dagd__api_backfill_get, DAGD_SCOPE_READ, NULL, NULL},
    {"POST", "/api/v1/events", dagd__api_events_post, DAGD_SCOPE_TRIGGER, "events", NULL},
    {"GET", "/api/v1/events", dagd__api_events_list, DAGD_SCOPE_READ, NULL, Q_PAGE},
    {"POST", "/api/v1/hooks/alertmanager", dagd__api_hook_alertmanager, DAGD_SCOPE_TRIGGER, "alertmanager", NULL},
    {"POST", "/api/v1/hooks/grafana", dagd__api_hook_grafana, DAGD_SCOPE_TRIGGER, "grafana", NULL},
};
const size_t dagd_api_n_routes = sizeof(dagd_api_routes) / sizeof(dagd_api_routes[0]);

static void seen_free(struct dagd_api_seen *s);

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
  api->max_conf_size = 1 << 20;
  api->grafana_timestamp_window = 300;
  api->webhook_timestamp_window = 300;
  api->max_seen_signatures = 4096;
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
  seen_free(api->seen);
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
  free(r->www_authenticate);
  memset(r, 0, sizeof(*r));
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
  dagd_buf_reset(&resp->body);
  dagd_problem_write(&resp->body, status, detail);
  resp->status = status;
  resp->content_type = DAGD_PROBLEM_CONTENT_TYPE;
  return status;
}

int dagd__api_store_error(dagd_api_response *resp, const dagd_err *err) {
  /* A conf over max_conf_size: the request itself is too big, retrying it
   * changes nothing (the run would fail on every try). */
  if (err->code == DAGD_ETOOBIG) return dagd__api_error(resp, 413, "%s", err->msg);
  bool retry = err->code == DAGD_ETIMEDOUT || err->code == DAGD_ELIMIT || err->code == DAGD_EIO;
  int status = dagd__api_error(resp, retry ? 503 : 500, "state store: %s", err->msg);
  /* Busy: another process holds the write lock, which is usually brief. */
  if (err->code == DAGD_ETIMEDOUT) resp->retry_after = 1;
  return status;
}

int dagd__api_body(const dagd_api_request *req, dagd_api_response *resp, json_t **out) {
  *out = NULL;
  if (req->content_type == NULL)
    return dagd__api_error(resp, 415, "Content-Type: application/json is required (the body is JSON)");
  size_t n = strcspn(req->content_type, "; \t");
  if (!(n == 16 && strncasecmp(req->content_type, "application/json", 16) == 0))
    return dagd__api_error(resp, 415, "Content-Type must be application/json, not \"%.100s\"", req->content_type);
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

int dagd__api_body_fields(dagd_api_response *resp, const json_t *body, const char *fields) {
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)body, key, v) {
    char *list = dagd_strdup(fields);
    const char *names[24];
    size_t n = 0;
    bool known = false;
    for (char *save = NULL, *t = strtok_r(list, " ", &save); t && n < 24; t = strtok_r(NULL, " ", &save)) {
      names[n++] = t;
      known |= strcmp(t, key) == 0;
    }
    const char *hint = known ? NULL : dagd_str_suggest(key, names, n);
    if (!known && hint)
      dagd__api_error(resp, 400, "unknown field \"%.100s\" (did you mean \"%s\"?)", key, hint);
    else if (!known)
      dagd__api_error(resp, 400, "unknown field \"%.100s\": this endpoint takes %s", key, fields);
    free(list);
    if (!known) return resp->status;
  }
  return 0;
}

int dagd__api_body_bool(dagd_api_response *resp, const json_t *body, const char *name, bool def, bool *out) {
  json_t *v = json_object_get(body, name);
  *out = def;
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_boolean(v)) return dagd__api_error(resp, 400, "%s must be true or false", name);
  *out = json_is_true(v);
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Appends the form-decoded bytes [p, end) ('+' is a space, %XX a byte). */
static void form_decode(dagd_buf *b, const char *p, const char *end) {
  for (const char *c = p; c < end; c++) {
    if (*c == '+') dagd_buf_putc(b, ' ');
    else if (*c == '%' && end - c > 2 && hexval(c[1]) >= 0 && hexval(c[2]) >= 0) {
      dagd_buf_putc(b, (char)(hexval(c[1]) * 16 + hexval(c[2])));
      c += 2;
    } else dagd_buf_putc(b, *c);
  }
}

/* Calls fn with each parameter of the query string, name and value
 * decoded, in order; stops when fn returns non-zero and returns that. */
static int query_each(const dagd_api_request *req, int (*fn)(void *data, const char *name, const char *value),
                      void *data) {
  const char *p = req->query ? req->query : "";
  dagd_buf k, v;
  dagd_buf_init(&k);
  dagd_buf_init(&v);
  int rc = 0;
  while (*p && rc == 0) {
    const char *end = p + strcspn(p, "&");
    const char *eq = memchr(p, '=', (size_t)(end - p));
    if (end > p) {
      dagd_buf_reset(&k);
      dagd_buf_reset(&v);
      form_decode(&k, p, eq ? eq : end);
      dagd_buf_puts(&k, "");
      if (eq) form_decode(&v, eq + 1, end);
      dagd_buf_puts(&v, "");
      rc = fn(data, k.data, v.data);
    }
    p = *end ? end + 1 : end;
  }
  dagd_buf_close(&k);
  dagd_buf_close(&v);
  return rc;
}

typedef struct query_find {
  const char *name;
  char **values;
  size_t n;
} query_find;

static int collect_value(void *data, const char *name, const char *value) {
  query_find *f = data;
  if (strcmp(name, f->name) != 0) return 0;
  f->values = dagd_realloc(f->values, (f->n + 1) * sizeof(char *));
  f->values[f->n++] = dagd_strdup(value);
  return 0;
}

char *dagd__api_query(const dagd_api_request *req, const char *name) {
  query_find f = {name, NULL, 0};
  query_each(req, collect_value, &f);
  char *first = f.n ? f.values[0] : NULL;
  for (size_t i = 1; i < f.n; i++) free(f.values[i]);
  free(f.values);
  return first;
}

char **dagd__api_query_all(const dagd_api_request *req, const char *name, size_t *n) {
  query_find f = {name, NULL, 0};
  query_each(req, collect_value, &f);
  *n = f.n;
  return f.values;
}

void dagd__api_strv_free(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* The route's parameter list, one name at a time. */
typedef struct query_check {
  const dagd_api_route *route;
  dagd_api_response *resp;
  json_t *seen;
} query_check;

/* Whether the route takes name; *repeat tells whether it may repeat. */
static bool route_takes(const dagd_api_route *route, const char *name, bool *repeat) {
  size_t n = strlen(name);
  for (const char *p = route->query ? route->query : ""; *p;) {
    size_t len = strcspn(p, " ");
    bool star = len > 0 && p[len - 1] == '*';
    if ((star ? len - 1 : len) == n && n > 0 && strncmp(p, name, n) == 0) {
      *repeat = star;
      return true;
    }
    p += len;
    while (*p == ' ') p++;
  }
  return false;
}

static int check_one(void *data, const char *name, const char *value) {
  query_check *c = data;
  bool repeat = false;
  if (!route_takes(c->route, name, &repeat)) {
    /* The names it does take, for the message and a suggestion. */
    char *list = dagd_strdup(c->route->query ? c->route->query : "");
    const char *names[16];
    size_t n = 0;
    dagd_buf shown;
    dagd_buf_init(&shown);
    for (char *save = NULL, *t = strtok_r(list, " ", &save); t && n < 16; t = strtok_r(NULL, " ", &save)) {
      size_t len = strlen(t);
      if (len && t[len - 1] == '*') t[len - 1] = '\0';
      names[n++] = t;
      dagd_buf_printf(&shown, "%s%s", shown.len ? ", " : "", t);
    }
    const char *hint = dagd_str_suggest(name, names, n);
    if (hint)
      dagd__api_error(c->resp, 400, "unknown query parameter \"%.100s\" (did you mean \"%s\"?)", name, hint);
    else if (n)
      dagd__api_error(c->resp, 400, "unknown query parameter \"%.100s\": this endpoint takes %s", name, shown.data);
    else
      dagd__api_error(c->resp, 400, "unknown query parameter \"%.100s\": this endpoint takes none", name);
    dagd_buf_close(&shown);
    free(list);
    return -1;
  }
  if (!repeat && json_object_get(c->seen, name)) {
    dagd__api_error(c->resp, 400, "query parameter \"%s\" is given more than once", name);
    return -1;
  }
  json_object_set_new(c->seen, name, json_true());
  return 0;
}

/* 400 for a query parameter the route does not take, or one that may not
 * repeat given twice. */
static int check_query(const dagd_api_route *route, const dagd_api_request *req, dagd_api_response *resp) {
  query_check c = {route, resp, json_object()};
  int rc = query_each(req, check_one, &c);
  json_decref(c.seen);
  return rc;
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

/* A 404 for a DAG id nothing knows, with the closest loaded id as a hint. */
static int dag_not_found(dagd_api *api, const char *dag_id, dagd_api_response *resp) {
  const dagd_dagbag *bag = api->hooks.bag ? api->hooks.bag(api->hooks.data) : NULL;
  const char **ids = dagd_calloc(bag && bag->n_dags ? bag->n_dags : 1, sizeof(*ids));
  for (size_t i = 0; bag && i < bag->n_dags; i++) ids[i] = bag->dags[i] ? bag->dags[i]->id : NULL;
  const char *hint = dagd_str_suggest(dag_id, ids, bag ? bag->n_dags : 0);
  int status = hint ? dagd__api_error(resp, 404, "no DAG \"%.250s\" (did you mean \"%s\"?)", dag_id, hint)
                    : dagd__api_error(resp, 404, "no DAG \"%.250s\"", dag_id);
  free(ids);
  return status;
}

const dagd_dag *dagd__api_dag(dagd_api *api, const char *dag_id, dagd_api_response *resp) {
  const dagd_dag *dag = api->hooks.find_dag ? api->hooks.find_dag(api->hooks.data, dag_id) : NULL;
  if (dag == NULL) dag_not_found(api, dag_id, resp);
  return dag;
}

int dagd__api_dag_known(dagd_api *api, const char *dag_id, dagd_api_response *resp, const dagd_dag **dag) {
  *dag = api->hooks.find_dag ? api->hooks.find_dag(api->hooks.data, dag_id) : NULL;
  if (*dag) return 0;
  dagd_store_dag row;
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_store_dag_get(api->store, dag_id, &row, &err);
  if (rc == 0) {
    dagd_store_dag_clear(&row);
    return 0;
  }
  if (rc == DAGD_ENOENT) return dag_not_found(api, dag_id, resp);
  return dagd__api_store_error(resp, &err);
}

int dagd__api_parse_time(const dagd_dag *dag, const char *text, int64_t *out) {
  int has_offset;
  dagd_err err;
  dagd_err_init(&err);
  if (text == NULL || dagd_time_parse(text, out, &has_offset, &err) < 0) return -1;
  if (!has_offset) {
    dagd_tm wall;
    int64_t at[2];
    dagd_epoch_to_tm(*out, &wall);
    dagd_tz_mktime(dag->tz, &wall, at);
    *out = at[0];
  }
  return 0;
}

/* Verifies "sha256=<hex>" (or bare hex) over data with secret; on
 * success the MAC is left in mac. */
static bool hmac_ok(const char *secret, const void *data, size_t len, const char *sig, unsigned char mac[32]) {
  if (sig == NULL) return false;
  if (strncmp(sig, "sha256=", 7) == 0) sig += 7;
  unsigned char given[32];
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

void dagd_api_sign(const char *secret, const char *timestamp, const void *body, size_t len, dagd_buf *out) {
  dagd_buf text;
  dagd_buf_init(&text);
  dagd_buf_printf(&text, "%s.", timestamp);
  dagd_buf_append(&text, body, len);
  unsigned char mac[32];
  unsigned int n = 32;
  HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)text.data, text.len, mac, &n);
  for (int i = 0; i < 32; i++) dagd_buf_printf(out, "%02x", mac[i]);
  dagd_buf_close(&text);
}

static const char *hook_secret(const dagd_api *api, const char *hook) {
  for (size_t i = 0; hook && i < api->n_webhook_secrets; i++)
    if (strcmp(api->webhook_secrets[i].key, hook) == 0) return api->webhook_secrets[i].value;
  return NULL;
}

int dagd_api_timestamp_check(const char *timestamp, double now, int64_t window, const char *setting, dagd_err *err) {
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
                        "the signature timestamp %lld is %.0f s old, more than %s "
                        "(%lld s) allows: a replayed or delayed delivery",
                        (long long)t, age, setting, (long long)window);
  if (-age > (double)window)
    return dagd_err_set(err, DAGD_ERANGE,
                        "the signature timestamp %lld is %.0f s in the future, more than "
                        "%s (%lld s) allows: check the clocks",
                        (long long)t, -age, setting, (long long)window);
  return 0;
}

/* Signed deliveries accepted within the window: the MAC of each, in a
 * ring (the oldest is forgotten first) indexed by an open-addressing
 * table (linear probing, backward-shift deletion). A MAC is a uniformly
 * random 32 bytes, so its first bytes are the hash. */
struct dagd_api_seen {
  size_t cap, n, head;
  unsigned char (*mac)[32];
  int64_t *ts;
  uint32_t *slot; /* ring index + 1; 0: empty */
  size_t mask;    /* slots - 1 (a power of two, at least 2 * cap) */
};

static struct dagd_api_seen *seen_new(size_t cap) {
  struct dagd_api_seen *s = dagd_calloc(1, sizeof(*s));
  s->cap = cap ? cap : 1;
  size_t slots = 2;
  while (slots < 2 * s->cap) slots *= 2;
  s->mask = slots - 1;
  s->mac = dagd_calloc(s->cap, sizeof(*s->mac));
  s->ts = dagd_calloc(s->cap, sizeof(*s->ts));
  s->slot = dagd_calloc(slots, sizeof(*s->slot));
  return s;
}

static void seen_free(struct dagd_api_seen *s) {
  if (s == NULL) return;
  free(s->mac);
  free(s->ts);
  free(s->slot);
  free(s);
}

static size_t seen_hash(const struct dagd_api_seen *s, const unsigned char *mac) {
  uint64_t h;
  memcpy(&h, mac, sizeof(h));
  return (size_t)h & s->mask;
}

static bool seen_has(const struct dagd_api_seen *s, const unsigned char mac[32]) {
  for (size_t i = seen_hash(s, mac); s->slot[i] != 0; i = (i + 1) & s->mask)
    if (memcmp(s->mac[s->slot[i] - 1], mac, 32) == 0) return true;
  return false;
}

/* Takes ring entry r out of the table. */
static void seen_unindex(struct dagd_api_seen *s, size_t r) {
  size_t i = seen_hash(s, s->mac[r]);
  while (s->slot[i] != r + 1) i = (i + 1) & s->mask;
  /* Close the gap: an entry further on moves back into it unless its
   * home lies cyclically in (i, j]. */
  for (size_t j = (i + 1) & s->mask; s->slot[j] != 0; j = (j + 1) & s->mask) {
    size_t k = seen_hash(s, s->mac[s->slot[j] - 1]);
    bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (!stays) {
      s->slot[i] = s->slot[j];
      i = j;
    }
  }
  s->slot[i] = 0;
}

/* Remembers a MAC; when full, forgets the oldest and raises the floor past
 * its timestamp, so that a replay of what was forgotten is still refused. */
static void seen_add(dagd_api *api, const unsigned char mac[32], int64_t ts) {
  if (api->seen == NULL) api->seen = seen_new(api->max_seen_signatures);
  struct dagd_api_seen *s = api->seen;
  if (s->n == s->cap) {
    if (s->ts[s->head] + 1 > api->signed_floor) api->signed_floor = s->ts[s->head] + 1;
    seen_unindex(s, s->head);
  } else {
    s->n++;
  }
  memcpy(s->mac[s->head], mac, 32);
  s->ts[s->head] = ts;
  size_t i = seen_hash(s, mac);
  while (s->slot[i] != 0) i = (i + 1) & s->mask;
  s->slot[i] = (uint32_t)s->head + 1;
  s->head = (s->head + 1) % s->cap;
}

/* What checking a webhook's signature found. */
typedef struct signed_check {
  int status;            /* 0: good; else 401 or 409 */
  bool track;            /* remember mac once the delivery is accepted */
  unsigned char mac[32];
  int64_t ts;
} signed_check;

/* X-Dagd-Signature covers "<X-Dagd-Timestamp>.<body>"; Grafana signs
 * "timestamp:body" when it sends a timestamp, else the body (its webhook
 * contact point's HMAC settings). A signed timestamp must be within the
 * window around now and not older than the floor, and the same signed
 * delivery is taken once: so a captured delivery cannot be replayed. */
static void check_signed(dagd_api *api, const char *hook, const char *secret, const dagd_api_request *req,
                         signed_check *out, dagd_err *err) {
  bool grafana = strcmp(hook, "grafana") == 0;
  const char *ts = grafana ? req->grafana_timestamp : req->timestamp;
  const char *sig = grafana ? req->grafana_signature : req->signature;
  memset(out, 0, sizeof(*out));
  out->status = 401;
  if (grafana && ts == NULL) {
    if (hmac_ok(secret, req->body, req->body_len, sig, out->mac)) out->status = 0;
    return;
  }
  if (ts == NULL) {
    dagd_err_set(err, DAGD_EINVAL,
                 "missing X-Dagd-Timestamp: sign \"<timestamp>.<body>\" and send the timestamp (Unix seconds)");
    return;
  }
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_buf_printf(&b, "%s%c", ts, grafana ? ':' : '.');
  dagd_buf_append(&b, req->body, req->body_len);
  bool ok = hmac_ok(secret, b.data, b.len, sig, out->mac);
  dagd_buf_close(&b);
  if (!ok) return;
  const char *setting = grafana ? "grafana_timestamp_window" : "webhook_timestamp_window";
  int64_t window = grafana ? api->grafana_timestamp_window : api->webhook_timestamp_window;
  if (dagd_api_timestamp_check(ts, req->now, window, setting, err) != 0) return;
  out->ts = strtoll(ts, NULL, 10);
  if (out->ts < api->signed_floor) {
    dagd_err_set(err, DAGD_ERANGE,
                 "the signature timestamp %lld is before %lld, from when on dagd remembers signed deliveries "
                 "(its start, or the oldest it had to forget): sign again with the current time",
                 (long long)out->ts, (long long)api->signed_floor);
    return;
  }
  if (api->seen && seen_has(api->seen, out->mac)) {
    out->status = 409;
    dagd_err_set(err, DAGD_EEXIST,
                 "this signed delivery was already accepted (a replay): sign each delivery with a fresh timestamp");
    return;
  }
  out->status = 0;
  out->track = true;
}

/* ------------------------------------------------------------------ */
/* Host and Origin: the names this daemon answers to                   */

/* Splits "host[:port]" ("[::1]:8787" for IPv6) into a lowercase host and
 * a port (-1 when none). False for anything else. */
static bool split_authority(const char *a, size_t len, char *host, size_t cap, int *port) {
  size_t h;
  *port = -1;
  if (len == 0) return false;
  if (a[0] == '[') {
    const char *close = memchr(a, ']', len);
    if (close == NULL) return false;
    h = (size_t)(close - a) + 1;
    for (size_t i = 1; i + 1 < h; i++)
      if (!(isxdigit((unsigned char)a[i]) || a[i] == ':' || a[i] == '.')) return false;
  } else {
    h = 0;
    while (h < len && a[h] != ':') {
      if (!(isalnum((unsigned char)a[h]) || a[h] == '.' || a[h] == '-' || a[h] == '_')) return false;
      h++;
    }
  }
  if (h == 0 || h >= cap) return false;
  for (size_t i = 0; i < h; i++) host[i] = (char)tolower((unsigned char)a[i]);
  host[h] = '\0';
  if (h == len) return true;
  if (a[h] != ':' || len - h < 2 || len - h > 6) return false;
  int p = 0;
  for (size_t i = h + 1; i < len; i++) {
    if (!isdigit((unsigned char)a[i])) return false;
    p = p * 10 + (a[i] - '0');
  }
  if (p < 1 || p > 65535) return false;
  *port = p;
  return true;
}

/* Whether host:port (port -1: none given) is one of the daemon's names:
 * the listen host or a loopback name, with the listen port (or none), or
 * an allowed_hosts entry ("name": any port; "name:port": that one). */
static bool host_allowed(const dagd_api *api, const char *host, int port) {
  static const char *const loopback[] = {"localhost", "127.0.0.1", "[::1]"};
  bool own = api->listen_host[0] && strcasecmp(host, api->listen_host) == 0;
  for (size_t i = 0; i < DAGD_ARRAY_LEN(loopback); i++) own |= strcmp(host, loopback[i]) == 0;
  if (own && (port == -1 || port == api->listen_port)) return true;
  for (size_t i = 0; i < api->n_allowed_hosts; i++) {
    char name[256];
    int eport;
    const char *e = api->allowed_hosts[i];
    if (!split_authority(e, strlen(e), name, sizeof(name), &eport)) continue;
    if (strcmp(name, host) == 0 && (eport == -1 || eport == port)) return true;
  }
  return false;
}

int dagd_api_check_origin(const dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  char host[256];
  int port;
  if (req->host_repeated) return dagd__api_error(resp, 400, "more than one Host header");
  if (req->host == NULL) {
    if (req->version_minor >= 1) return dagd__api_error(resp, 400, "an HTTP/1.1 request needs a Host header");
  } else if (!split_authority(req->host, strlen(req->host), host, sizeof(host), &port)) {
    return dagd__api_error(resp, 400, "bad Host header \"%.100s\"", req->host);
  } else if (!host_allowed(api, host, port)) {
    /* A name dagd does not know: a DNS rebinding page, or a proxy to
     * tell about it (allowed_hosts). */
    return dagd__api_error(resp, 421,
                           "this server does not answer to the name \"%.100s\": add it to allowed_hosts "
                           "(DAGD_ALLOWED_HOSTS) if it is one of this server's names",
                           req->host);
  }
  if (req->origin == NULL) return 0; /* not a browser, or a same-origin GET */
  const char *o = req->origin;
  size_t scheme = strncasecmp(o, "http://", 7) == 0 ? 7 : strncasecmp(o, "https://", 8) == 0 ? 8 : 0;
  bool ok = false;
  if (scheme != 0 && split_authority(o + scheme, strlen(o + scheme), host, sizeof(host), &port)) {
    /* The page's own origin is the name the request went to, or one of
     * the daemon's names with its port (the scheme's when none). */
    ok = req->host != NULL && strcasecmp(o + scheme, req->host) == 0;
    ok = ok || host_allowed(api, host, port == -1 ? (scheme == 7 ? 80 : 443) : port);
  }
  if (!ok)
    return dagd__api_error(resp, 403,
                           "cross-origin request refused: Origin \"%.100s\" is not this server "
                           "(a page of another site; see allowed_hosts)",
                           o);
  return 0;
}

/* Whether a Content-Type is application/json, parameters allowed
 * ("application/json; charset=utf-8"). */
static bool is_json_type(const char *ct) {
  if (ct == NULL) return false;
  size_t n = strcspn(ct, "; \t");
  return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

static const char *const scope_names[] = {"none", "read", "trigger", "admin"};

/* The challenge of a 401 or 403 (RFC 6750 section 3), kept for the
 * WWW-Authenticate header. */
static void challenge(dagd_api_response *resp, const char *error, const char *description, dagd_scope scope) {
  free(resp->www_authenticate);
  if (error == NULL)
    resp->www_authenticate = dagd_strdup("Bearer realm=\"dagd\"");
  else if (scope != DAGD_SCOPE_NONE)
    resp->www_authenticate = dagd_asprintf("Bearer realm=\"dagd\", error=\"%s\", error_description=\"%s\", scope=\"%s\"",
                                           error, description, scope_names[scope]);
  else
    resp->www_authenticate =
        dagd_asprintf("Bearer realm=\"dagd\", error=\"%s\", error_description=\"%s\"", error, description);
}

/* The scope a route needs: /metrics is open when metrics_public says so. */
static dagd_scope route_scope(const dagd_api *api, const dagd_api_route *route) {
  if (api->metrics_public && route->handler == dagd__api_metrics) return DAGD_SCOPE_NONE;
  return route->scope;
}

/* Once any token is configured, every route but /health (and /metrics
 * when public) needs a bearer token of a sufficient scope: reads too
 * (logs, confs and payloads carry data). Returns 0 when authorised, else
 * the 401 or 403 set in resp. */
static int authorise(dagd_api *api, const dagd_api_route *route, const dagd_api_request *req,
                     dagd_api_response *resp) {
  dagd_scope need = route_scope(api, route);
  if (api->n_tokens == 0 || need == DAGD_SCOPE_NONE) return 0;
  const char *auth = req->authorization;
  if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
    if (route->hook) api->events_rejected++;
    challenge(resp, NULL, NULL, DAGD_SCOPE_NONE);
    return dagd__api_error(resp, 401, "this endpoint needs Authorization: Bearer <token>");
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
    challenge(resp, "invalid_token", "unknown token", DAGD_SCOPE_NONE);
    return dagd__api_error(resp, 401, "unknown token");
  }
  if (scope < need) {
    challenge(resp, "insufficient_scope", "the token's scope is too small", need);
    return dagd__api_error(resp, 403, "this token's scope (%s) does not allow %s %s, which needs %s", scope_names[scope],
                           req->method, route->pattern, scope_names[need]);
  }
  return 0;
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
  /* A request for another name (DNS rebinding) or from another site's
   * page is refused before anything else: no read, no side effect. */
  if (dagd_api_check_origin(api, req, resp) != 0) {
    if (route->hook) api->events_rejected++;
    return;
  }
  const char *secret = hook_secret(api, route->hook);
  signed_check sc = {0};
  /* A webhook with a configured secret must be signed, tokens or not. */
  if (secret != NULL) {
    dagd_err err;
    dagd_err_init(&err);
    check_signed(api, route->hook, secret, req, &sc, &err);
    if (sc.status != 0) {
      api->events_rejected++;
      free(resp->www_authenticate);
      resp->www_authenticate = sc.status == 401 ? dagd_strdup("HMAC-SHA256 realm=\"dagd\"") : NULL;
      if (dagd_err_is_set(&err)) dagd__api_error(resp, sc.status, "%s", err.msg);
      else dagd__api_error(resp, 401, "missing or bad HMAC-SHA256 signature");
      return;
    }
  } else if (authorise(api, route, req, resp) != 0) {
    return;
  }
  /* Every body is JSON, and saying so is required: a browser sends no
   * Content-Type, or only text/plain and form types, across sites
   * without asking (a CORS "simple" request). */
  bool has_body = strcmp(route->method, "POST") == 0 || strcmp(route->method, "PATCH") == 0 ||
                  strcmp(route->method, "PUT") == 0;
  if (has_body && !is_json_type(req->content_type)) {
    if (route->hook) api->events_rejected++;
    if (req->content_type == NULL)
      dagd__api_error(resp, 415, "Content-Type: application/json is required (the body is JSON)");
    else
      dagd__api_error(resp, 415, "Content-Type must be application/json, not \"%.100s\"", req->content_type);
    return;
  }
  if (path_ids_ok(route, req, resp) == 0 && check_query(route, req, resp) == 0) route->handler(api, req, resp);
  /* Remembered only once taken: a sender whose delivery failed (503)
   * retries with the same signature. */
  if (sc.track && resp->status >= 200 && resp->status < 300) seen_add(api, sc.mac, sc.ts);
  /* Every 401 carries a challenge (RFC 7235), whoever answered it. */
  if (resp->status == 401 && resp->www_authenticate == NULL)
    resp->www_authenticate = dagd_strdup(secret ? "HMAC-SHA256 realm=\"dagd\"" : "Bearer realm=\"dagd\"");
}
