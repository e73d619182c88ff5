/* The registry operator: speaks the OCI distribution API over dagd/httpc (no
 * docker CLI) to wait for a tag, resolve a tag to its digest, copy a
 * manifest to a new tag (promotion keeps the digest), list tags and delete
 * a manifest. Basic and Bearer token auth follow the registry's
 * WWW-Authenticate challenge; credentials never reach the log.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dagd/httpc.h"
#include "dagd/operators.h"
#include "dagd/command.h"
#include "dagd/util.h"
#include "registry.h"

/* Largest manifest or tag page read: real manifests are a few KiB. */
#define BODY_MAX (8 * 1024 * 1024)
/* Each HTTP request, so a stalled registry cannot hold a worker forever. */
#define REQUEST_TIMEOUT_S 60L

/* ---- pure parts (registry.h) ---- */

static bool host_is_loopback(const char *host) {
  /* host without its port */
  if (strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0) return true;
  unsigned a, b, c, d;
  char tail;
  return sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 && c < 256 && d < 256;
}

int dagd_registry_parse_image(const char *image, dagd_registry_ref *out, dagd_err *err) {
  memset(out, 0, sizeof(*out));
  const char *slash = image ? strchr(image, '/') : NULL;
  if (slash == NULL || slash == image || slash[1] == '\0')
    return dagd_err_set(err, DAGD_EINVAL, "image \"%s\": expected host[:port]/repository", image ? image : "");
  char *host = dagd_strndup(image, (size_t)(slash - image));
  char *name; /* the host without its port */
  if (host[0] == '[') {
    char *close = strchr(host, ']');
    if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
      dagd_err_set(err, DAGD_EINVAL, "image \"%s\": bad IPv6 host", image);
      free(host);
      return DAGD_EINVAL;
    }
    name = dagd_strndup(host + 1, (size_t)(close - host - 1));
  } else {
    const char *colon = strchr(host, ':');
    name = colon ? dagd_strndup(host, (size_t)(colon - host)) : dagd_strdup(host);
  }
  for (const char *p = host; *p; p++) {
    if (!(isalnum((unsigned char)*p) || strchr(".-:[]", *p))) {
      dagd_err_set(err, DAGD_EINVAL, "image \"%s\": bad character in the registry host", image);
      free(host);
      free(name);
      return DAGD_EINVAL;
    }
  }
  out->loopback = host_is_loopback(name);
  free(name);
  char *rest = dagd_strdup(slash + 1);
  char *at = strchr(rest, '@');
  if (at) {
    *at = '\0';
    out->digest = dagd_strdup(at + 1);
  }
  char *last = strrchr(rest, '/');
  char *colon = strchr(last ? last : rest, ':');
  if (colon) {
    *colon = '\0';
    out->tag = dagd_strdup(colon + 1);
  }
  /* Repository names per the distribution spec: lower-case path
   * components separated by '/', each [a-z0-9]+ joined by . _ __ or -. */
  bool ok = rest[0] != '\0' && rest[0] != '/' && rest[strlen(rest) - 1] != '/' && strstr(rest, "//") == NULL;
  for (const char *p = rest; ok && *p; p++) ok = islower((unsigned char)*p) || isdigit((unsigned char)*p) || strchr("._-/", *p);
  if (ok && out->tag) {
    ok = out->tag[0] != '\0' && strlen(out->tag) <= 128;
    for (const char *p = out->tag; ok && *p; p++) ok = isalnum((unsigned char)*p) || strchr("._-", *p);
  }
  if (ok && out->digest) ok = strchr(out->digest, ':') != NULL;
  if (!ok) {
    dagd_err_set(err, DAGD_EINVAL, "image \"%s\": bad repository, tag or digest", image);
    free(rest);
    free(host);
    dagd_registry_ref_close(out);
    return DAGD_EINVAL;
  }
  out->host = host;
  out->repo = rest;
  return 0;
}

void dagd_registry_ref_close(dagd_registry_ref *ref) {
  free(ref->host);
  free(ref->repo);
  free(ref->tag);
  free(ref->digest);
  memset(ref, 0, sizeof(*ref));
}

int dagd_registry_parse_challenge(const char *header, dagd_registry_challenge *out) {
  memset(out, 0, sizeof(*out));
  const char *p = header;
  while (*p == ' ' || *p == '\t') p++;
  const char *s = p;
  while (*p && *p != ' ' && *p != '\t') p++;
  if (p == s) return DAGD_ESYNTAX;
  out->scheme = dagd_strndup(s, (size_t)(p - s));
  /* auth-params: name=value or name="quoted, with \" escapes", comma separated */
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    if (*p == '\0') break;
    const char *k = p;
    while (*p && *p != '=' && *p != ',' && *p != ' ') p++;
    size_t klen = (size_t)(p - k);
    if (*p != '=') {
      dagd_registry_challenge_close(out);
      return DAGD_ESYNTAX;
    }
    p++;
    dagd_buf v;
    dagd_buf_init(&v);
    if (*p == '"') {
      p++;
      while (*p && *p != '"') {
        if (*p == '\\' && p[1]) p++;
        dagd_buf_putc(&v, *p++);
      }
      if (*p != '"') {
        dagd_buf_close(&v);
        dagd_registry_challenge_close(out);
        return DAGD_ESYNTAX;
      }
      p++;
    } else {
      while (*p && *p != ',' && *p != ' ') dagd_buf_putc(&v, *p++);
    }
    char **slot = NULL;
    if (klen == 5 && strncasecmp(k, "realm", 5) == 0) slot = &out->realm;
    else if (klen == 7 && strncasecmp(k, "service", 7) == 0) slot = &out->service;
    else if (klen == 5 && strncasecmp(k, "scope", 5) == 0) slot = &out->scope;
    else if (klen == 5 && strncasecmp(k, "error", 5) == 0) slot = &out->error;
    char *value = dagd_buf_steal(&v);
    if (slot && *slot == NULL) *slot = value ? value : dagd_strdup("");
    else free(value);
  }
  return 0;
}

void dagd_registry_challenge_close(dagd_registry_challenge *c) {
  free(c->scheme);
  free(c->realm);
  free(c->service);
  free(c->scope);
  free(c->error);
  memset(c, 0, sizeof(*c));
}

char *dagd_registry_link_next(const char *link) {
  /* Link: <url>; rel="next"[, <url2>; rel="prev"] */
  const char *p = link;
  while (p && *p) {
    const char *lt = strchr(p, '<');
    if (lt == NULL) return NULL;
    const char *gt = strchr(lt, '>');
    if (gt == NULL) return NULL;
    const char *end = strchr(gt, ',');
    /* A URL may hold commas only inside <>, so the params end at the next ','. */
    size_t plen = end ? (size_t)(end - gt) : strlen(gt);
    char *params = dagd_strndup(gt + 1, plen - 1);
    bool next = false;
    for (char *q = params; *q; q++) *q = (char)tolower((unsigned char)*q);
    const char *rel = strstr(params, "rel=");
    if (rel) {
      rel += 4;
      if (*rel == '"') rel++;
      next = strncmp(rel, "next", 4) == 0 && (rel[4] == '"' || rel[4] == '\0' || rel[4] == ';' || rel[4] == ' ');
    }
    free(params);
    if (next) return dagd_strndup(lt + 1, (size_t)(gt - lt - 1));
    p = end ? end + 1 : NULL;
  }
  return NULL;
}

static const char *const manifest_types[] = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
};

const char *dagd_registry_manifest_accept(void) {
  return "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
         "application/vnd.docker.distribution.manifest.list.v2+json, "
         "application/vnd.docker.distribution.manifest.v2+json";
}

bool dagd_registry_media_type_known(const char *media_type) {
  for (size_t i = 0; media_type && i < DAGD_ARRAY_LEN(manifest_types); i++)
    if (strcmp(media_type, manifest_types[i]) == 0) return true;
  return false;
}

char *dagd_registry_media_type(const char *content_type, const char *body, size_t len) {
  if (content_type) {
    size_t n = strcspn(content_type, "; \t");
    char *mt = dagd_strndup(content_type, n);
    for (char *q = mt; *q; q++) *q = (char)tolower((unsigned char)*q);
    if (dagd_registry_media_type_known(mt)) return mt;
    free(mt);
  }
  json_t *doc = body ? json_loadb(body, len, 0, NULL) : NULL;
  const char *mt = json_string_value(json_object_get(doc, "mediaType"));
  char *out = dagd_registry_media_type_known(mt) ? dagd_strdup(mt) : NULL;
  json_decref(doc);
  return out;
}

void dagd_registry_sha256(const void *data, size_t len, char out[72]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
  memcpy(out, "sha256:", 7);
  for (unsigned int i = 0; i < n && i < 32; i++) snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/* ---- the client ---- */

typedef struct reg_resp {
  long status;
  dagd_buf body;
  char *content_type, *digest, *www_auth, *link;
} reg_resp;

typedef struct reg_client {
  dagd_registry_ref ref;
  char *base;                  /* "http://host:port" or "https://..." */
  const char *ca_file;
  const char *user, *pass;     /* secrets: never logged */
  char *auth;                  /* "Authorization: ..." header line, a secret */
  dagd_httpc *http;            /* keeps the connections between requests */
  FILE *log;
} reg_client;

static void resp_close(reg_resp *r) {
  dagd_buf_close(&r->body);
  free(r->content_type);
  free(r->digest);
  free(r->www_auth);
  free(r->link);
  memset(r, 0, sizeof(*r));
}

/* Keeps the headers the operator reads; a new status line (a 100 Continue
 * before the real answer) starts over. */
static void on_header(const char *data, size_t len, void *user) {
  reg_resp *r = user;
  if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
    free(r->content_type);
    free(r->digest);
    free(r->www_auth);
    free(r->link);
    r->content_type = r->digest = r->www_auth = r->link = NULL;
    return;
  }
  const char *colon = memchr(data, ':', len);
  if (colon == NULL) return;
  size_t klen = (size_t)(colon - data);
  const char *v = colon + 1;
  const char *end = data + len;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
  static const struct { const char *name; size_t off; } keep[] = {
      {"content-type", offsetof(reg_resp, content_type)},
      {"docker-content-digest", offsetof(reg_resp, digest)},
      {"www-authenticate", offsetof(reg_resp, www_auth)},
      {"link", offsetof(reg_resp, link)},
  };
  for (size_t i = 0; i < DAGD_ARRAY_LEN(keep); i++) {
    if (strlen(keep[i].name) != klen || strncasecmp(data, keep[i].name, klen) != 0) continue;
    char **slot = (char **)((char *)r + keep[i].off);
    /* Several Link headers or challenges: the first is enough for us. */
    if (*slot == NULL) *slot = dagd_strndup(v, (size_t)(end - v));
  }
}

/* The registry's own explanation from an error body
 * ({"errors":[{"code","message"}]}), or "". Heap string. */
static char *error_detail(const reg_resp *r) {
  json_t *doc = r->body.len ? json_loadb(r->body.data, r->body.len, 0, NULL) : NULL;
  json_t *e0 = json_array_get(json_object_get(doc, "errors"), 0);
  const char *code = json_string_value(json_object_get(e0, "code"));
  const char *msg = json_string_value(json_object_get(e0, "message"));
  char *out = code || msg ? dagd_asprintf(": %s%s%s", code ? code : "", code && msg ? " " : "", msg ? msg : "")
                          : dagd_strdup("");
  json_decref(doc);
  return out;
}

/* One HTTP exchange on the client's kept connections, no auth retry. 0
 * when an answer came (any status); DAGD_EIO on a transport failure,
 * DAGD_ELIMIT for a body over BODY_MAX ("METHOD URL: why" in err). */
static int exchange(reg_client *c, const char *method, const char *url, const char *accept, const char *ctype,
                    const char *body, size_t blen, const char *auth, reg_resp *r, dagd_err *err) {
  resp_close(r);
  dagd_buf_init(&r->body);
  const char *lines[5];
  size_t n = 0;
  char *accept_line = accept ? dagd_asprintf("Accept: %s", accept) : NULL;
  char *ctype_line = ctype ? dagd_asprintf("Content-Type: %s", ctype) : NULL;
  if (accept_line) lines[n++] = accept_line;
  if (ctype_line) lines[n++] = ctype_line;
  if (auth) lines[n++] = auth;
  bool put = strcmp(method, "PUT") == 0;
  if (put) lines[n++] = "Expect:"; /* no 100-continue round trip */
  lines[n] = NULL;
  dagd_httpc_req req = {.method = method, .url = url, .headers = lines, .timeout_ms = REQUEST_TIMEOUT_S * 1000,
                        .connect_timeout_ms = 15000, .user_agent = "dagd-registry", .ca_file = c->ca_file,
                        .body = put ? (body ? body : "") : NULL, .body_len = put ? blen : 0, .body_max = BODY_MAX,
                        .on_header = on_header, .header_data = r};
  int rc = dagd_httpc_request(c->http, &req, &r->status, &r->body, err);
  free(accept_line);
  free(ctype_line);
  /* A timeout is a transport failure like any other here: retried. */
  return rc == DAGD_ETIMEDOUT ? DAGD_EIO : rc;
}

static char *basic_header(const char *user, const char *pass) {
  char *plain = dagd_asprintf("%s:%s", user, pass ? pass : "");
  size_t n = strlen(plain);
  char *b64 = dagd_malloc(4 * ((n + 2) / 3) + 1);
  EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)plain, (int)n);
  char *line = dagd_asprintf("Authorization: Basic %s", b64);
  OPENSSL_cleanse(plain, n);
  free(plain);
  free(b64);
  return line;
}

static void set_auth(reg_client *c, char *line) {
  if (c->auth) {
    OPENSSL_cleanse(c->auth, strlen(c->auth));
    free(c->auth);
  }
  c->auth = line;
}

/* Answers a Bearer challenge: asks the realm for a token for the
 * challenge's service and scope (scope defaults to `fallback_scope`),
 * with the credentials when there are some. */
static int fetch_token(reg_client *c, const dagd_registry_challenge *ch, const char *fallback_scope, dagd_err *err) {
  if (ch->realm == NULL || (strncmp(ch->realm, "http://", 7) != 0 && strncmp(ch->realm, "https://", 8) != 0))
    return dagd_err_set(err, DAGD_EINVAL, "%s asks for a Bearer token with no usable realm", c->ref.host);
  dagd_buf url;
  dagd_buf_init(&url);
  dagd_buf_puts(&url, ch->realm);
  char sep = strchr(ch->realm, '?') ? '&' : '?';
  if (ch->service) {
    char *s = dagd_httpc_escape(ch->service);
    dagd_buf_printf(&url, "%cservice=%s", sep, s);
    free(s);
    sep = '&';
  }
  const char *scope = ch->scope ? ch->scope : fallback_scope;
  if (scope) {
    char *s = dagd_httpc_escape(scope);
    dagd_buf_printf(&url, "%cscope=%s", sep, s);
    free(s);
  }
  char *basic = c->user ? basic_header(c->user, c->pass) : NULL;
  reg_resp r = {0};
  int rc = exchange(c, "GET", url.data, "application/json", NULL, NULL, 0, basic, &r, err);
  if (basic) {
    OPENSSL_cleanse(basic, strlen(basic));
    free(basic);
  }
  if (rc == 0 && r.status != 200) {
    char *detail = error_detail(&r);
    rc = dagd_err_set(err, DAGD_EINVAL, "the token service %s refused %s (HTTP %ld)%s", ch->realm,
                      c->user ? "the credentials" : "an anonymous token", r.status, detail);
    free(detail);
  }
  if (rc == 0) {
    json_t *doc = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL);
    const char *tok = json_string_value(json_object_get(doc, "token"));
    if (tok == NULL) tok = json_string_value(json_object_get(doc, "access_token"));
    if (tok == NULL || tok[0] == '\0') rc = dagd_err_set(err, DAGD_EINVAL, "the token service %s sent no token", ch->realm);
    else set_auth(c, dagd_asprintf("Authorization: Bearer %s", tok));
    json_decref(doc);
  }
  if (r.body.data) OPENSSL_cleanse(r.body.data, r.body.len);
  resp_close(&r);
  dagd_buf_close(&url);
  return rc;
}

/* A request to the registry at `path` ("/v2/..."), answering one auth
 * challenge on a 401 and asking again. A 401 that remains is left in r
 * for the caller to report. */
static int request_once(reg_client *c, const char *method, const char *url, const char *accept, const char *ctype,
                        const char *body, size_t blen, const char *scope, reg_resp *r, dagd_err *err) {
  int rc = exchange(c, method, url, accept, ctype, body, blen, c->auth, r, err);
  if (rc == 0 && r->status == 401 && r->www_auth) {
    dagd_registry_challenge ch;
    if (dagd_registry_parse_challenge(r->www_auth, &ch) == 0) {
      if (strcasecmp(ch.scheme, "Basic") == 0 && c->user) {
        set_auth(c, basic_header(c->user, c->pass));
        rc = exchange(c, method, url, accept, ctype, body, blen, c->auth, r, err);
      } else if (strcasecmp(ch.scheme, "Bearer") == 0) {
        rc = fetch_token(c, &ch, scope, err);
        if (rc == 0) rc = exchange(c, method, url, accept, ctype, body, blen, c->auth, r, err);
      }
      dagd_registry_challenge_close(&ch);
    }
  }
  fprintf(c->log, "registry: %s %s -> ", method, url);
  if (rc == 0) fprintf(c->log, "%ld\n", r->status);
  else fprintf(c->log, "no answer: %s\n", err ? err->msg : "");
  return rc;
}

/* request_once, again after a short pause on a 5xx or no answer: every
 * request made here is idempotent, and registries do fail transiently
 * (docker-registry answers 500 to some concurrent requests under htpasswd
 * auth). */
static int request(reg_client *c, const char *method, const char *path, const char *accept, const char *ctype,
                   const char *body, size_t blen, const char *scope, reg_resp *r, dagd_err *err) {
  char *url = dagd_asprintf("%s%s", c->base, path);
  int rc = 0;
  for (int attempt = 0; attempt < 3; attempt++) {
    if (attempt > 0) {
      struct timespec ts = {0, 250000000L * attempt};
      while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
    }
    dagd_err sub;
    dagd_err_init(&sub);
    rc = request_once(c, method, url, accept, ctype, body, blen, scope, r, &sub);
    if ((rc == 0 && r->status < 500) || (rc < 0 && rc != DAGD_EIO) || attempt == 2) {
      if (rc < 0) dagd_err_set(err, sub.code, "%s", sub.msg);
      break;
    }
  }
  free(url);
  return rc;
}

/* The error for an answer the action did not expect. */
static int http_error(reg_client *c, const reg_resp *r, const char *what, dagd_err *err) {
  char *detail = error_detail(r);
  int rc;
  if (r->status == 401)
    rc = dagd_err_set(err, DAGD_EINVAL, "%s: registry %s refused %s (HTTP 401 Unauthorized)%s", what, c->ref.host,
                      c->user ? "the credentials" : "an anonymous request: set username and password", detail);
  else if (r->status == 403)
    rc = dagd_err_set(err, DAGD_EINVAL, "%s: registry %s denied access (HTTP 403 Forbidden)%s", what, c->ref.host,
                      detail);
  else if (r->status == 404)
    rc = dagd_err_set(err, DAGD_ENOENT, "%s: not found in %s/%s (HTTP 404)%s", what, c->ref.host, c->ref.repo,
                      detail);
  else
    rc = dagd_err_set(err, DAGD_EIO, "%s: registry %s answered HTTP %ld%s", what, c->ref.host, r->status, detail);
  free(detail);
  return rc;
}

/* GET of a manifest by tag or digest: its bytes, media type and digest. */
static int get_manifest(reg_client *c, const char *reference, const char *scope, reg_resp *r, char **media_type,
                        char digest[72], dagd_err *err) {
  char *path = dagd_asprintf("/v2/%s/manifests/%s", c->ref.repo, reference);
  int rc = request(c, "GET", path, dagd_registry_manifest_accept(), NULL, NULL, 0, scope, r, err);
  free(path);
  if (rc < 0) return rc;
  char *what = dagd_asprintf("manifest %s", reference);
  if (r->status != 200) {
    rc = http_error(c, r, what, err);
    free(what);
    return rc;
  }
  free(what);
  *media_type = dagd_registry_media_type(r->content_type, r->body.data, r->body.len);
  if (*media_type == NULL)
    return dagd_err_set(err, DAGD_EINVAL, "manifest %s: unsupported media type %s", reference,
                        r->content_type ? r->content_type : "(none)");
  /* The digest is of the exact bytes; the header saves nothing but is
   * checked when it is sha256, so a proxy that rewrote the body is seen. */
  dagd_registry_sha256(r->body.data ? r->body.data : "", r->body.len, digest);
  if (r->digest && strncmp(r->digest, "sha256:", 7) == 0 && strcmp(r->digest, digest) != 0)
    return dagd_err_set(err, DAGD_EIO, "manifest %s: Docker-Content-Digest %s does not match the body (%s)",
                        reference, r->digest, digest);
  if (r->digest && strncmp(r->digest, "sha256:", 7) != 0) snprintf(digest, 72, "%s", r->digest);
  return 0;
}

static const char *cfg_str(const dagd_op_ctx *ctx, const char *key) {
  const char *s = json_string_value(json_object_get(ctx->config, key));
  return s && s[0] ? s : NULL;
}

static int64_t cfg_secs(const dagd_op_ctx *ctx, const char *key, int64_t dflt) {
  const json_t *v = json_object_get(ctx->config, key);
  if (json_is_integer(v)) return json_integer_value(v);
  if (json_is_real(v)) return (int64_t)json_real_value(v);
  return dflt;
}

static double now_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void outputs_digest(dagd_op_ctx *ctx, reg_client *c, const char *digest, const char *media_type) {
  dagd_op_output(ctx, "digest", digest);
  char *ref = dagd_asprintf("%s/%s@%s", c->ref.host, c->ref.repo, digest);
  dagd_op_output(ctx, "image", ref);
  free(ref);
  if (media_type) dagd_op_output(ctx, "media_type", media_type);
}

/* The reference an action reads: digest, else the named field, else tag,
 * else what the image itself names. */
static const char *source_ref(const dagd_op_ctx *ctx, const reg_client *c, const char *field) {
  const char *s = cfg_str(ctx, "digest");
  if (s == NULL && field) s = cfg_str(ctx, field);
  if (s == NULL) s = cfg_str(ctx, "tag");
  if (s == NULL) s = c->ref.digest ? c->ref.digest : c->ref.tag;
  return s;
}

static int act_resolve(dagd_op_ctx *ctx, reg_client *c, dagd_err *err) {
  const char *ref = source_ref(ctx, c, NULL);
  if (ref == NULL) return dagd_err_set(err, DAGD_EINVAL, "resolve needs a tag or a digest");
  char *scope = dagd_asprintf("repository:%s:pull", c->ref.repo);
  reg_resp r = {0};
  char *mt = NULL, digest[72];
  int rc = get_manifest(c, ref, scope, &r, &mt, digest, err);
  if (rc == 0) {
    fprintf(ctx->log, "registry: %s/%s:%s is %s (%s)\n", c->ref.host, c->ref.repo, ref, digest, mt);
    outputs_digest(ctx, c, digest, mt);
  }
  free(mt);
  free(scope);
  resp_close(&r);
  return rc;
}

/* Waits for the tag: one check per `interval` until `timeout`; in
 * reschedule mode one check per try, and DAGD_EXIT_RESCHEDULE when the
 * tag is not there yet. Transport failures and 5xx count as "not yet" (a
 * registry restarting); refused credentials fail at once. */
static int act_wait(dagd_op_ctx *ctx, reg_client *c, int *exit_code, dagd_err *err) {
  const char *ref = source_ref(ctx, c, NULL);
  if (ref == NULL) return dagd_err_set(err, DAGD_EINVAL, "wait needs a tag or a digest");
  const char *mode = cfg_str(ctx, "mode");
  bool reschedule = mode && strcmp(mode, "reschedule") == 0;
  int64_t interval = cfg_secs(ctx, "interval", 60), timeout = cfg_secs(ctx, "timeout", 7 * 86400);
  if (interval < 1) interval = 1;
  double deadline = now_mono() + (double)timeout;
  char *scope = dagd_asprintf("repository:%s:pull", c->ref.repo);
  int rc;
  for (;;) {
    reg_resp r = {0};
    char *mt = NULL, digest[72];
    dagd_err sub;
    dagd_err_init(&sub);
    rc = get_manifest(c, ref, scope, &r, &mt, digest, &sub);
    bool transient = rc == DAGD_EIO && (r.status == 0 || r.status >= 500);
    bool missing = rc == DAGD_ENOENT;
    resp_close(&r);
    if (rc == 0) {
      fprintf(ctx->log, "registry: %s/%s:%s is there: %s\n", c->ref.host, c->ref.repo, ref, digest);
      outputs_digest(ctx, c, digest, mt);
      free(mt);
      break;
    }
    free(mt);
    if (!missing && !transient) {
      dagd_err_set(err, sub.code, "%s", sub.msg);
      break;
    }
    fprintf(ctx->log, "registry: %s/%s:%s not there yet%s%s\n", c->ref.host, c->ref.repo, ref,
            transient ? ": " : "", transient ? sub.msg : "");
    if (reschedule) {
      *exit_code = DAGD_EXIT_RESCHEDULE;
      rc = 0;
      break;
    }
    double left = deadline - now_mono();
    if (left <= 0) {
      rc = dagd_err_set(err, DAGD_ETIMEDOUT, "%s/%s:%s did not appear within %lld s", c->ref.host, c->ref.repo, ref,
                        (long long)timeout);
      break;
    }
    double nap = (double)interval < left ? (double)interval : left;
    struct timespec ts = {(time_t)nap, (long)((nap - (double)(time_t)nap) * 1e9)};
    fflush(ctx->log);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
  }
  free(scope);
  return rc;
}

/* Copies the manifest of `from` (or `digest`, or `tag`) to `to` with its
 * own media type and bytes, so the new tag has the same digest. */
static int act_retag(dagd_op_ctx *ctx, reg_client *c, dagd_err *err) {
  const char *from = source_ref(ctx, c, "from");
  const char *to = cfg_str(ctx, "to");
  if (from == NULL || to == NULL) return dagd_err_set(err, DAGD_EINVAL, "retag needs a source (from, tag or digest) and to");
  char *scope = dagd_asprintf("repository:%s:pull,push", c->ref.repo);
  reg_resp r = {0}, put = {0};
  char *mt = NULL, digest[72];
  int rc = get_manifest(c, from, scope, &r, &mt, digest, err);
  if (rc == 0) {
    char *path = dagd_asprintf("/v2/%s/manifests/%s", c->ref.repo, to);
    rc = request(c, "PUT", path, NULL, mt, r.body.data ? r.body.data : "", r.body.len, scope, &put, err);
    free(path);
  }
  if (rc == 0 && put.status != 201 && put.status != 200) {
    char *what = dagd_asprintf("tagging %s as %s", from, to);
    rc = http_error(c, &put, what, err);
    free(what);
  }
  if (rc == 0 && put.digest && strcmp(put.digest, digest) != 0)
    rc = dagd_err_set(err, DAGD_EIO, "the registry stored %s as %s, not %s", to, put.digest, digest);
  if (rc == 0) {
    fprintf(ctx->log, "registry: %s/%s:%s -> %s (%s)\n", c->ref.host, c->ref.repo, from, to, digest);
    outputs_digest(ctx, c, digest, mt);
    dagd_op_output(ctx, "from", from);
    dagd_op_output(ctx, "to", to);
  }
  free(mt);
  free(scope);
  resp_close(&r);
  resp_close(&put);
  return rc;
}

/* Lists the tags, following the Link header page by page. */
static int act_tags(dagd_op_ctx *ctx, reg_client *c, dagd_err *err) {
  char *scope = dagd_asprintf("repository:%s:pull", c->ref.repo);
  char *path = dagd_asprintf("/v2/%s/tags/list?n=100", c->ref.repo);
  json_t *all = json_array();
  int rc = 0;
  for (int page = 0; path && rc == 0; page++) {
    if (page == 10000) {
      rc = dagd_err_set(err, DAGD_ELIMIT, "more than 10000 pages of tags");
      break;
    }
    reg_resp r = {0};
    rc = request(c, "GET", path, "application/json", NULL, NULL, 0, scope, &r, err);
    free(path);
    path = NULL;
    if (rc == 0 && r.status != 200) rc = http_error(c, &r, "listing tags", err);
    if (rc == 0) {
      json_t *doc = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL);
      json_t *tags = json_object_get(doc, "tags");
      size_t i;
      json_t *t;
      json_array_foreach(tags, i, t) if (json_is_string(t)) json_array_append(all, t);
      if (doc == NULL) rc = dagd_err_set(err, DAGD_ESYNTAX, "listing tags: the answer is not JSON");
      json_decref(doc);
      char *next = r.link ? dagd_registry_link_next(r.link) : NULL;
      /* The next page is a path on the same registry, never another host
       * (which would get our credentials). */
      size_t blen = strlen(c->base);
      if (next && next[0] == '/') {
        path = next;
      } else if (next && strncmp(next, c->base, blen) == 0 && next[blen] == '/') {
        path = dagd_strdup(next + blen);
        free(next);
      } else if (next) {
        rc = dagd_err_set(err, DAGD_EINVAL, "listing tags: the next page is on another host: %s", next);
        free(next);
      }
    }
    resp_close(&r);
  }
  free(path);
  if (rc == 0) {
    char *text = json_dumps(all, JSON_COMPACT);
    fprintf(ctx->log, "registry: %zu tags in %s/%s:", json_array_size(all), c->ref.host, c->ref.repo);
    size_t i;
    json_t *t;
    json_array_foreach(all, i, t) fprintf(ctx->log, " %s", json_string_value(t));
    fputc('\n', ctx->log);
    dagd_op_output(ctx, "tags", text);
    char n[32];
    snprintf(n, sizeof(n), "%zu", json_array_size(all));
    dagd_op_output(ctx, "count", n);
    free(text);
  }
  json_decref(all);
  free(scope);
  return rc;
}

/* Deletes a manifest by digest (a tag is resolved first: the API deletes
 * digests, and with them every tag naming it). */
static int act_delete(dagd_op_ctx *ctx, reg_client *c, dagd_err *err) {
  const char *ref = source_ref(ctx, c, NULL);
  if (ref == NULL) return dagd_err_set(err, DAGD_EINVAL, "delete needs a digest or a tag");
  char *scope = dagd_asprintf("repository:%s:pull,push,delete", c->ref.repo);
  char digest[72];
  char *mt = NULL;
  int rc = 0;
  reg_resp r = {0};
  if (strchr(ref, ':')) {
    snprintf(digest, sizeof(digest), "%s", ref);
  } else {
    rc = get_manifest(c, ref, scope, &r, &mt, digest, err);
    if (rc == 0) fprintf(ctx->log, "registry: %s is %s\n", ref, digest);
  }
  if (rc == 0) {
    char *path = dagd_asprintf("/v2/%s/manifests/%s", c->ref.repo, digest);
    rc = request(c, "DELETE", path, NULL, NULL, NULL, 0, scope, &r, err);
    free(path);
  }
  if (rc == 0 && r.status == 405) {
    char *detail = error_detail(&r);
    rc = dagd_err_set(err, DAGD_EINVAL,
                      "registry %s refuses deletes (HTTP 405)%s; a docker-registry needs storage.delete.enabled",
                      c->ref.host, detail);
    free(detail);
  } else if (rc == 0 && r.status != 202 && r.status != 200) {
    char *what = dagd_asprintf("deleting %s", digest);
    rc = http_error(c, &r, what, err);
    free(what);
  }
  if (rc == 0) {
    fprintf(ctx->log, "registry: deleted %s/%s@%s\n", c->ref.host, c->ref.repo, digest);
    outputs_digest(ctx, c, digest, mt);
  }
  free(mt);
  free(scope);
  resp_close(&r);
  return rc;
}

int dagd_operator_registry(dagd_op_ctx *ctx) {
  dagd_err err;
  dagd_err_init(&err);
  reg_client c = {.log = ctx->log};
  int exit_code = 0, rc;
  const char *action = cfg_str(ctx, "action");
  if ((rc = dagd_registry_parse_image(cfg_str(ctx, "image"), &c.ref, &err)) < 0) goto out;
  bool insecure = json_is_true(json_object_get(ctx->config, "insecure"));
  c.ca_file = cfg_str(ctx, "ca_file");
  /* Loopback speaks plain HTTP as Docker does, unless a CA is given: then
   * the registry serves TLS, wherever it is. */
  bool plain = (c.ref.loopback && c.ca_file == NULL) || insecure;
  c.base = dagd_asprintf("%s://%s", plain ? "http" : "https", c.ref.host);
  c.user = cfg_str(ctx, "username");
  c.pass = json_string_value(json_object_get(ctx->config, "password"));
  dagd_httpc_global_init();
  if ((rc = dagd_httpc_new(&c.http, &err)) < 0) goto out;
  if (action == NULL) rc = dagd_err_set(&err, DAGD_EINVAL, "no action");
  else if (strcmp(action, "resolve") == 0) rc = act_resolve(ctx, &c, &err);
  else if (strcmp(action, "wait") == 0) rc = act_wait(ctx, &c, &exit_code, &err);
  else if (strcmp(action, "retag") == 0 || strcmp(action, "promote") == 0) rc = act_retag(ctx, &c, &err);
  else if (strcmp(action, "tags") == 0) rc = act_tags(ctx, &c, &err);
  else if (strcmp(action, "delete") == 0) rc = act_delete(ctx, &c, &err);
  else rc = dagd_err_set(&err, DAGD_EINVAL, "unknown action \"%s\"", action);
out:
  if (rc < 0) fprintf(ctx->log, "registry: %s failed: %s\n", action ? action : "operator", err.msg);
  set_auth(&c, NULL);
  dagd_httpc_free(c.http);
  dagd_httpc_global_cleanup();
  free(c.base);
  dagd_registry_ref_close(&c.ref);
  return rc < 0 ? 1 : exit_code;
}
