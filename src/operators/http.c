/* The http operator: one HTTP request through dagd/httpc (method, url, headers,
 * a JSON or text body from the rendered config), checked against the
 * expected status, with fields of a JSON response copied into outputs by
 * JSON pointer and 5xx answers retried with a short backoff. Also the HTTP
 * client and pure helpers the sensor shares. The log names header names
 * only: their values often carry tokens.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dagd/httpc.h"
#include "dagd/lua.h"
#include "http_op.h"

#define BODY_MAX (16u << 20)
#define SHOW_MAX 500 /* bytes of an unexpected response body shown in the log */

const json_t *dagd__op_json_pointer(const json_t *doc, const char *ptr) {
  if (ptr == NULL || doc == NULL) return NULL;
  if (*ptr == '\0') return doc;
  if (*ptr != '/') return NULL;
  const json_t *cur = doc;
  const char *p = ptr + 1;
  for (;;) {
    size_t n = strcspn(p, "/");
    /* Unescape the token: ~1 is '/', ~0 is '~', any other ~ is an error. */
    char *tok = dagd_malloc(n + 1);
    size_t k = 0;
    bool bad = false;
    for (size_t i = 0; i < n; i++) {
      if (p[i] != '~') {
        tok[k++] = p[i];
      } else if (i + 1 < n && (p[i + 1] == '0' || p[i + 1] == '1')) {
        tok[k++] = p[i + 1] == '0' ? '~' : '/';
        i++;
      } else {
        bad = true;
      }
    }
    tok[k] = '\0';
    if (bad) {
      cur = NULL;
    } else if (json_is_object(cur)) {
      cur = json_object_get(cur, tok);
    } else if (json_is_array(cur)) {
      /* Decimal, no leading zero, no sign; "-" (past the end) is nothing. */
      bool digits = k > 0 && k <= 9 && !(k > 1 && tok[0] == '0');
      for (size_t i = 0; digits && i < k; i++) digits = isdigit((unsigned char)tok[i]) != 0;
      cur = digits ? json_array_get(cur, (size_t)strtoul(tok, NULL, 10)) : NULL;
    } else {
      cur = NULL;
    }
    free(tok);
    if (cur == NULL || p[n] == '\0') return cur;
    p += n + 1;
  }
}

bool dagd__op_status_ok(const json_t *expect, long status) {
  if (json_is_integer(expect)) return json_integer_value(expect) == status;
  if (json_is_array(expect) && json_array_size(expect) > 0) {
    size_t i;
    const json_t *x;
    json_array_foreach(expect, i, x) if (json_is_integer(x) && json_integer_value(x) == status) return true;
    return false;
  }
  return status >= 200 && status <= 299;
}

const char *dagd__op_http_method(const json_t *config) {
  const char *m = json_string_value(json_object_get(config, "method"));
  if (m != NULL && *m) return m;
  return json_object_get(config, "json") || json_object_get(config, "body") ? "POST" : "GET";
}

int dagd__op_header_line(const char *name, const char *value, char **line, dagd_err *err) {
  *line = NULL;
  if (name == NULL || *name == '\0') return dagd_err_set(err, DAGD_EINVAL, "an empty header name");
  for (const char *p = name; *p; p++)
    if (!isalnum((unsigned char)*p) && strchr("!#$%&'*+-.^_`|~", *p) == NULL)
      return dagd_err_set(err, DAGD_EINVAL, "header name \"%s\" is not an HTTP token", name);
  if (value == NULL) return dagd_err_set(err, DAGD_EINVAL, "header %s: the value must be a string", name);
  for (const unsigned char *p = (const unsigned char *)value; *p; p++)
    if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
      return dagd_err_set(err, DAGD_EINVAL, "header %s: the value holds a control character", name);
  /* curl drops a header given as "Name:" with nothing after; "Name;" sends
   * it empty. */
  *line = *value ? dagd_asprintf("%s: %s", name, value) : dagd_asprintf("%s;", name);
  return 0;
}

/* host[:port] names this machine. */
static bool loopback_host(const char *host, size_t len) {
  const char *colon = host[0] == '[' ? NULL : memchr(host, ':', len);
  if (host[0] == '[') {
    const char *close = memchr(host, ']', len);
    if (close) len = (size_t)(close - host) + 1;
  } else if (colon) {
    len = (size_t)(colon - host);
  }
  if (len == 9 && strncmp(host, "localhost", 9) == 0) return true;
  if (len >= 4 && strncmp(host, "127.", 4) == 0) {
    /* An address, not a name that starts like one. */
    for (size_t i = 4; i < len; i++)
      if (!isdigit((unsigned char)host[i]) && host[i] != '.') return false;
    return true;
  }
  return len == 5 && strncmp(host, "[::1]", 5) == 0;
}

int dagd__op_registry_url(const char *image, const char *tag, char **url, dagd_err *err) {
  *url = NULL;
  const char *slash = image ? strchr(image, '/') : NULL;
  if (slash == NULL || slash == image || slash[1] == '\0')
    return dagd_err_set(err, DAGD_EINVAL, "image \"%s\" must name its registry (host[:port]/repository)",
                        image ? image : "");
  size_t hlen = (size_t)(slash - image);
  /* Docker's rule: the first component is a host when it has a dot or a
   * port, or is localhost. */
  if (memchr(image, '.', hlen) == NULL && memchr(image, ':', hlen) == NULL && !loopback_host(image, hlen))
    return dagd_err_set(err, DAGD_EINVAL, "image \"%s\" must name its registry (host[:port]/repository)", image);
  const char *repo = slash + 1;
  if (strchr(repo, '@') != NULL || strchr(repo, ':') != NULL)
    return dagd_err_set(err, DAGD_EINVAL, "image \"%s\": give the tag in \"tag\", not in the image", image);
  for (const char *p = repo; *p; p++)
    if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && strchr("._-/", *p) == NULL)
      return dagd_err_set(err, DAGD_EINVAL, "image \"%s\": bad repository name", image);
  if (tag == NULL || *tag == '\0' || strlen(tag) > 128)
    return dagd_err_set(err, DAGD_EINVAL, "a tag of 1 to 128 characters is needed");
  for (const char *p = tag; *p; p++)
    if (!isalnum((unsigned char)*p) && strchr("._-", *p) == NULL)
      return dagd_err_set(err, DAGD_EINVAL, "tag \"%s\": only letters, digits, '.', '_' and '-'", tag);
  *url = dagd_asprintf("%s://%.*s/v2/%s/manifests/%s", loopback_host(image, hlen) ? "http" : "https", (int)hlen,
                       image, repo, tag);
  return 0;
}

char *dagd__op_output_text(const json_t *v) {
  if (json_is_string(v)) return dagd_strdup(json_string_value(v));
  char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
  return s ? s : dagd_strdup("null");
}

int dagd__op_http_do(const dagd__http_req *req, long *status, dagd_buf *body, dagd_err *err) {
  int rc = 0;
  *status = 0;
  size_t n = json_object_size(req->headers);
  for (size_t i = 0; req->extra_headers && req->extra_headers[i]; i++) n++;
  char **lines = dagd_calloc(n + 1, sizeof(char *));
  size_t k = 0;
  if (req->headers != NULL) {
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)req->headers, name, v) {
      if ((rc = dagd__op_header_line(name, json_string_value(v), &lines[k], err)) < 0) goto out;
      k++;
    }
  }
  for (size_t i = 0; req->extra_headers && req->extra_headers[i]; i++)
    lines[k++] = dagd_strdup(req->extra_headers[i]);
  dagd_httpc_req r = {.method = req->method, .url = req->url, .headers = (const char *const *)lines,
                      .body = req->body, .body_len = req->body_len,
                      .timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 30000L, .user_agent = "dagd",
                      .body_max = BODY_MAX};
  rc = dagd_httpc_request(NULL, &r, status, body, err);
out:
  for (size_t i = 0; i < k; i++) free(lines[i]);
  free(lines);
  return rc;
}

int dagd__op_call_fn(const dagd_op_ctx *ctx, const char *field, json_t **result, dagd_err *err) {
  *result = NULL;
  if (ctx->fileloc == NULL || *ctx->fileloc == '\0' || ctx->dag_id == NULL || ctx->task_id == NULL)
    return dagd_err_set(err, DAGD_EINVAL, "the spec names no DAG file, DAG or task");
  json_t *c = json_is_object(ctx->context) ? json_deep_copy(ctx->context) : json_object();
  json_t *tn = json_object_get(ctx->spec, "try_number");
  if (tn && !json_object_get(c, "try_number")) json_object_set(c, "try_number", tn);
  int rc = dagd_lua_call_task_fn(ctx->fileloc, ctx->dag_id, ctx->task_id, field, c, NULL, result, err);
  json_decref(c);
  return rc;
}

static void nap_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Copies outputs_from's fields of the response into outputs; false (and
 * a log line) when the body is not JSON or a pointer finds nothing. */
static bool take_outputs(dagd_op_ctx *ctx, const json_t *from, const dagd_buf *body) {
  if (json_object_size(from) == 0) return true;
  json_error_t je;
  json_t *doc = json_loadb(body->data ? body->data : "", body->len, JSON_DECODE_ANY, &je);
  if (doc == NULL) {
    fprintf(ctx->log, "http: outputs_from needs a JSON response: line %d: %s\n", je.line, je.text);
    return false;
  }
  bool ok = true;
  const char *k;
  json_t *p;
  json_object_foreach((json_t *)from, k, p) {
    const json_t *v = dagd__op_json_pointer(doc, json_string_value(p));
    if (v == NULL) {
      fprintf(ctx->log, "http: output %s: nothing at \"%s\" in the response\n", k, json_string_value(p));
      ok = false;
      continue;
    }
    char *text = dagd__op_output_text(v);
    dagd_op_output(ctx, k, text);
    fprintf(ctx->log, "http: output %s = %s\n", k, text);
    free(text);
  }
  json_decref(doc);
  return ok;
}

int dagd_operator_http(dagd_op_ctx *ctx) {
  const json_t *cfg = ctx->config;
  const char *url = json_string_value(json_object_get(cfg, "url"));
  if (url == NULL || *url == '\0') {
    fprintf(ctx->log, "http: no url\n");
    return 1;
  }
  const char *method = dagd__op_http_method(cfg);
  const json_t *headers = json_object_get(cfg, "headers");
  const json_t *jbody = json_object_get(cfg, "json");
  char *body = NULL;
  const char *ctype = NULL;
  if (jbody != NULL) {
    body = json_dumps(jbody, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    /* A Content-Type the task set wins. */
    bool has_ctype = false;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)headers, k, v) if (strcasecmp(k, "Content-Type") == 0) has_ctype = true;
    if (!has_ctype) ctype = "Content-Type: application/json";
  } else if (json_is_string(json_object_get(cfg, "body"))) {
    body = dagd_strdup(json_string_value(json_object_get(cfg, "body")));
  }
  const char *extra[] = {ctype, NULL};
  json_int_t timeout = json_integer_value(json_object_get(cfg, "timeout"));
  json_int_t retries = json_integer_value(json_object_get(cfg, "retries_on_5xx"));
  const json_t *expect = json_object_get(cfg, "expect_status");
  dagd__http_req req = {.method = method, .url = url, .headers = headers, .body = body,
                        .body_len = body ? strlen(body) : 0, .timeout_ms = timeout > 0 ? (long)timeout * 1000 : 0,
                        .extra_headers = extra};
  fprintf(ctx->log, "http: %s %s", method, url);
  if (json_object_size(headers) > 0) {
    fprintf(ctx->log, " (headers:");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)headers, k, v) fprintf(ctx->log, " %s", k);
    fprintf(ctx->log, ")");
  }
  if (body) fprintf(ctx->log, " with a %zu-byte body", strlen(body));
  fprintf(ctx->log, "\n");

  int rc = 1;
  dagd_buf resp;
  dagd_buf_init(&resp);
  long status = 0;
  for (json_int_t attempt = 0;; attempt++) {
    dagd_err err;
    dagd_err_init(&err);
    dagd_buf_reset(&resp);
    int r = dagd__op_http_do(&req, &status, &resp, &err);
    if (r == DAGD_EINVAL) {
      fprintf(ctx->log, "http: %s\n", err.msg);
      goto out;
    }
    if (r < 0)
      fprintf(ctx->log, "http: %s\n", err.msg); /* "METHOD URL: why" */
    else
      fprintf(ctx->log, "http: %s %s -> %ld (%zu bytes)\n", method, url, status, resp.len);
    /* A 5xx or a failed connection may pass; anything else will not. */
    bool transient = r < 0 || (status >= 500 && status <= 599);
    if (!transient || attempt >= retries) {
      if (r < 0) goto out;
      break;
    }
    long wait = 250L << (attempt < 5 ? attempt : 5); /* 0.25 s doubling, at most 8 s */
    fprintf(ctx->log, "http: retry %lld of %lld in %.2f s\n", (long long)attempt + 1, (long long)retries,
            (double)wait / 1000);
    fflush(ctx->log);
    nap_ms(wait);
  }
  char st[24];
  snprintf(st, sizeof(st), "%ld", status);
  dagd_op_output(ctx, "status", st);
  if (!dagd__op_status_ok(expect, status)) {
    char *want = expect ? json_dumps(expect, JSON_COMPACT | JSON_ENCODE_ANY) : dagd_strdup("2xx");
    fprintf(ctx->log, "http: status %ld is not the expected %s\n", status, want ? want : "?");
    free(want);
    if (resp.len > 0)
      fprintf(ctx->log, "http: response: %.*s%s\n", (int)(resp.len < SHOW_MAX ? resp.len : SHOW_MAX), resp.data,
              resp.len > SHOW_MAX ? "..." : "");
    goto out;
  }
  if (!take_outputs(ctx, json_object_get(cfg, "outputs_from"), &resp)) goto out;
  rc = 0;
out:
  dagd_buf_close(&resp);
  free(body);
  return rc;
}
