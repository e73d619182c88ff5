/* The request parser: http-parser does the tokenizing; this file collects
 * a request into its arena, enforces the limits and maps every failure to
 * the status to answer with. It pauses http-parser after each request so
 * pipelined requests come out one at a time. Also the request accessors,
 * URL decoding and query lookup.
 * SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "dagd/err.h"
#include "dagd/util.h"
#include "internal.h"

/* --- arena --- */

struct dagd__arena_block {
  dagd__arena_block *next;
  size_t used, cap;
  max_align_t data[];
};

void *dagd__arena_alloc(dagd__arena *a, size_t n) {
  const size_t align = sizeof(max_align_t);
  n = (n + align - 1) / align * align;
  if (n == 0) n = align;
  dagd__arena_block *b = a->head;
  if (b == NULL || b->cap - b->used < n) {
    /* Big allocations get a block of their own; small ones share 4 KiB
     * blocks, so a typical request costs two or three mallocs. */
    size_t cap = n > 4096 ? n : 4096;
    b = dagd_malloc(sizeof(*b) + cap);
    b->used = 0;
    b->cap = cap;
    b->next = a->head;
    a->head = b;
  }
  void *p = (char *)b->data + b->used;
  b->used += n;
  memset(p, 0, n);
  return p;
}

char *dagd__arena_strndup(dagd__arena *a, const char *s, size_t n) {
  char *p = dagd__arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

void dagd__arena_free(dagd__arena *a) {
  while (a->head) {
    dagd__arena_block *b = a->head;
    a->head = b->next;
    free(b);
  }
}

/* --- requests --- */

dagd__request *dagd__request_new(void) {
  dagd__request *r = dagd_calloc(1, sizeof(*r));
  r->pub.method_name = "";
  r->pub.target = r->pub.raw_path = r->pub.path = "/";
  r->pub.query = "";
  r->pub.body = "";
  r->pub.version_minor = 1;
  return r;
}

void dagd_http_request_free(dagd_http_request *req) {
  if (req == NULL) return;
  dagd__request *r = (dagd__request *)req;
  dagd__arena_free(&r->arena);
  free(r->body);
  free(r);
}

const char *dagd_http_request_header(const dagd_http_request *req, const char *name) {
  for (size_t i = 0; i < req->nheaders; i++)
    if (strcasecmp(req->headers[i].name, name) == 0) return req->headers[i].value;
  return NULL;
}

const char *dagd_http_request_param(const dagd_http_request *req, const char *name) {
  for (size_t i = 0; i < req->nparams; i++)
    if (strcmp(req->params[i].name, name) == 0) return req->params[i].value;
  return NULL;
}

void *dagd_http_request_alloc(dagd_http_request *req, size_t n) {
  return dagd__arena_alloc(&((dagd__request *)req)->arena, n);
}

static const char *const method_names[DAGD_HTTP_METHOD_COUNT_] = {
    [DAGD_HTTP_GET] = "GET",       [DAGD_HTTP_HEAD] = "HEAD",   [DAGD_HTTP_POST] = "POST",
    [DAGD_HTTP_PUT] = "PUT",       [DAGD_HTTP_PATCH] = "PATCH", [DAGD_HTTP_DELETE] = "DELETE",
    [DAGD_HTTP_OPTIONS] = "OPTIONS",
};

const char *dagd_http_method_name(dagd_http_method m) {
  return (unsigned)m < DAGD_HTTP_METHOD_COUNT_ ? method_names[m] : NULL;
}

int dagd__is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return 1;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* --- URL decoding and the query string --- */

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c |= 0x20;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int dagd_http_url_decode(const char *s, size_t n, bool plus_space, char *out, size_t *outlen) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
      int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
      if (hi < 0 || lo < 0) return DAGD_ESYNTAX;
      c = (unsigned char)(hi << 4 | lo);
      if (c == 0) return DAGD_ESYNTAX;
      i += 2;
    } else if (c == '+' && plus_space) {
      c = ' ';
    } else if (c == 0) {
      return DAGD_ESYNTAX;
    }
    out[o++] = (char)c;
  }
  out[o] = '\0';
  if (outlen) *outlen = o;
  return 0;
}

/* Does the encoded key s[0..n) decode to name? Badly encoded keys match
 * nothing. */
static bool key_equals(const char *s, size_t n, const char *name) {
  char small[128];
  char *buf = n < sizeof(small) ? small : dagd_malloc(n + 1);
  bool eq = dagd_http_url_decode(s, n, true, buf, NULL) == 0 && strcmp(buf, name) == 0;
  if (buf != small) free(buf);
  return eq;
}

int dagd_http_query_get(const dagd_http_request *req, const char *name, char *buf, size_t cap,
                        size_t *len) {
  const char *q = req->query;
  while (*q) {
    size_t plen = strcspn(q, "&");
    const char *eq = memchr(q, '=', plen);
    size_t klen = eq ? (size_t)(eq - q) : plen;
    if (key_equals(q, klen, name)) {
      const char *v = eq ? eq + 1 : q + plen;
      size_t vlen = (size_t)(q + plen - v);
      /* The decoded value is never longer than the encoded one. */
      char *tmp = dagd_malloc(vlen + 1);
      size_t dlen;
      int rc = dagd_http_url_decode(v, vlen, true, tmp, &dlen);
      if (rc == 0 && dlen + 1 > cap) rc = DAGD_ERANGE;
      if (rc == 0) {
        memcpy(buf, tmp, dlen + 1);
        if (len) *len = dlen;
      }
      free(tmp);
      return rc;
    }
    q += plen;
    if (*q == '&') q++;
  }
  return DAGD_ENOENT;
}

/* --- the parser --- */

struct dagd_http_parser {
  http_parser hp;
  dagd_http_limits lim;
  dagd__request *req;        /* the request being read */
  dagd_buf url, name, value; /* pieces arriving in several callbacks */
  int last;                  /* the last header callback: 0 none, 1 field, 2 value */
  dagd_http_header *hdrs;    /* committed headers (strings in req's arena) */
  size_t nhdrs, caphdrs;
  size_t header_bytes;
  dagd_buf body;
  bool begun;                /* a byte of the current request was parsed */
  bool headers_done;
  bool complete;             /* a request waits to be taken */
  bool want_continue;
  bool closed;               /* the last request forbade another one */
  bool dead;
  int status;                /* after an error */
  int code;
  char msg[200];
  char prefix[24];           /* the first bytes of the current request */
  size_t prefix_len;
};

__attribute__((format(printf, 4, 5))) static int fail(dagd_http_parser *p, int status, int code,
                                                      const char *fmt, ...) {
  if (!p->dead) {
    p->dead = true;
    p->status = status;
    p->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
    va_end(ap);
  }
  return 1; /* stops http-parser */
}

static dagd_http_parser *P(http_parser *hp) { return hp->data; }

static int count_header_bytes(dagd_http_parser *p, size_t n) {
  p->header_bytes += n;
  if (p->header_bytes > p->lim.max_header_bytes)
    return fail(p, 431, DAGD_ELIMIT, "the request header section exceeds %zu bytes",
                p->lim.max_header_bytes);
  return 0;
}

static int on_message_begin(http_parser *hp) {
  dagd_http_parser *p = P(hp);
  p->begun = true;
  p->req = dagd__request_new();
  return 0;
}

static int on_url(http_parser *hp, const char *at, size_t n) {
  dagd_http_parser *p = P(hp);
  /* The method, spaces and version around the target: about 16 bytes. */
  if (p->url.len == 0 && count_header_bytes(p, 16)) return 1;
  if (count_header_bytes(p, n)) return 1;
  dagd_buf_append(&p->url, at, n);
  return 0;
}

static void trim_value(dagd_buf *b) {
  while (b->len > 0 && (b->data[b->len - 1] == ' ' || b->data[b->len - 1] == '\t')) b->len--;
  if (b->data) b->data[b->len] = '\0';
}

/* Moves the header in name/value into the list. */
static int commit_header(dagd_http_parser *p) {
  if (p->last == 0) return 0;
  p->last = 0;
  if (p->nhdrs == DAGD_HTTP_MAX_HEADERS)
    return fail(p, 431, DAGD_ELIMIT, "more than %d request headers", DAGD_HTTP_MAX_HEADERS);
  if (p->nhdrs == p->caphdrs) {
    p->caphdrs = p->caphdrs ? p->caphdrs * 2 : 16;
    p->hdrs = dagd_realloc(p->hdrs, p->caphdrs * sizeof(*p->hdrs));
  }
  trim_value(&p->value);
  dagd__arena *a = &p->req->arena;
  p->hdrs[p->nhdrs].name = dagd__arena_strndup(a, p->name.data ? p->name.data : "", p->name.len);
  p->hdrs[p->nhdrs].value =
      dagd__arena_strndup(a, p->value.data ? p->value.data : "", p->value.len);
  p->nhdrs++;
  dagd_buf_reset(&p->name);
  dagd_buf_reset(&p->value);
  return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t n) {
  dagd_http_parser *p = P(hp);
  if (p->headers_done) return 0; /* a trailer after a chunked body: ignored */
  if (p->last == 2 && commit_header(p)) return 1;
  if (p->last == 0 && count_header_bytes(p, 4)) return 1; /* ": " and CRLF */
  if (count_header_bytes(p, n)) return 1;
  p->last = 1;
  dagd_buf_append(&p->name, at, n);
  return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t n) {
  dagd_http_parser *p = P(hp);
  if (p->headers_done) return 0;
  if (count_header_bytes(p, n)) return 1;
  p->last = 2;
  dagd_buf_append(&p->value, at, n);
  return 0;
}

/* Sets req's target, raw path, path and query from the URL. */
static int split_target(dagd_http_parser *p) {
  dagd_http_request *r = &p->req->pub;
  dagd__arena *a = &p->req->arena;
  const char *u = p->url.data ? p->url.data : "";
  size_t n = p->url.len;
  r->target = dagd__arena_strndup(a, u, n);
  const char *path, *query = "";
  size_t plen, qlen = 0;
  if (n > 0 && u[0] == '/') {
    plen = strcspn(u, "?#");
    path = u;
    if (u[plen] == '?') {
      query = u + plen + 1;
      qlen = strcspn(query, "#");
    }
  } else {
    /* absolute-form (RFC 9112 3.2.2): take its path and query */
    struct http_parser_url pu;
    http_parser_url_init(&pu);
    if (n > 0xffff || http_parser_parse_url(u, n, 0, &pu) != 0 ||
        !(pu.field_set & (1 << UF_SCHEMA)) || !(pu.field_set & (1 << UF_HOST)))
      return fail(p, 400, DAGD_ESYNTAX, "bad request target");
    path = "/";
    plen = 1;
    if (pu.field_set & (1 << UF_PATH)) {
      path = u + pu.field_data[UF_PATH].off;
      plen = pu.field_data[UF_PATH].len;
    }
    if (pu.field_set & (1 << UF_QUERY)) {
      query = u + pu.field_data[UF_QUERY].off;
      qlen = pu.field_data[UF_QUERY].len;
    }
  }
  r->raw_path = dagd__arena_strndup(a, path, plen);
  r->query = dagd__arena_strndup(a, query, qlen);
  char *dec = dagd__arena_alloc(a, plen + 1);
  if (dagd_http_url_decode(path, plen, false, dec, NULL) != 0)
    return fail(p, 400, DAGD_ESYNTAX, "bad percent-encoding in the request path");
  r->path = dec;
  return 0;
}

static bool token_list_is(const char *v, const char *want) {
  return v != NULL && strcasecmp(v, want) == 0;
}

static int map_method(unsigned m, dagd_http_method *out) {
  switch (m) {
  case HTTP_GET: *out = DAGD_HTTP_GET; return 0;
  case HTTP_HEAD: *out = DAGD_HTTP_HEAD; return 0;
  case HTTP_POST: *out = DAGD_HTTP_POST; return 0;
  case HTTP_PUT: *out = DAGD_HTTP_PUT; return 0;
  case HTTP_PATCH: *out = DAGD_HTTP_PATCH; return 0;
  case HTTP_DELETE: *out = DAGD_HTTP_DELETE; return 0;
  case HTTP_OPTIONS: *out = DAGD_HTTP_OPTIONS; return 0;
  default: return -1;
  }
}

/* Checks the head of a request; nonzero (after fail) refuses it. */
static int check_head(dagd_http_parser *p) {
  http_parser *hp = &p->hp;
  dagd_http_request *r = &p->req->pub;
  if (commit_header(p)) return 1;
  p->headers_done = true;
  if (hp->http_major != 1)
    return fail(p, 505, DAGD_ESYNTAX, "HTTP/%u.%u is not supported", hp->http_major,
                hp->http_minor);
  r->version_minor = hp->http_minor > 0 ? 1 : 0;
  if (map_method(hp->method, &r->method) != 0)
    return fail(p, 501, DAGD_EINVAL, "method %s is not supported",
                http_method_str((enum http_method)hp->method));
  r->method_name = method_names[r->method];
  if (split_target(p)) return 1;

  dagd_http_header *h = dagd__arena_alloc(&p->req->arena, (p->nhdrs ? p->nhdrs : 1) * sizeof(*h));
  if (p->nhdrs) memcpy(h, p->hdrs, p->nhdrs * sizeof(*h));
  r->headers = h;
  r->nheaders = p->nhdrs;

  /* Only "chunked" is a transfer coding we can undo. */
  size_t te_count = 0;
  for (size_t i = 0; i < r->nheaders; i++) {
    if (strcasecmp(h[i].name, "Transfer-Encoding") != 0) continue;
    if (++te_count > 1 || !token_list_is(h[i].value, "chunked"))
      return fail(p, 501, DAGD_EINVAL, "transfer coding '%s' is not supported", h[i].value);
  }
  bool chunked = (hp->flags & F_CHUNKED) != 0;
  bool has_length = (hp->flags & F_CONTENTLENGTH) != 0;
  if (has_length && hp->content_length > p->lim.max_body_bytes)
    return fail(p, 413, DAGD_ELIMIT, "the request body exceeds %zu bytes",
                p->lim.max_body_bytes);

  const char *expect = dagd_http_request_header(r, "Expect");
  if (expect != NULL) {
    if (strcasecmp(expect, "100-continue") != 0)
      return fail(p, 417, DAGD_EINVAL, "expectation '%s' is not supported", expect);
    /* HTTP/1.0 clients do not wait; bodiless requests need no go-ahead. */
    if (r->version_minor == 1 && (chunked || (has_length && hp->content_length > 0)))
      p->want_continue = true;
  }
  /* An upgrade (websocket, h2c) is not taken: answer this request, then
   * close, since the peer may speak another protocol after it. */
  r->keep_alive = http_should_keep_alive(hp) && !hp->upgrade;
  if (has_length && hp->content_length > 0) {
    /* Reserve the announced length, up to 64 KiB: a client that announces
     * a large body and sends nothing must not pin that much memory. */
    size_t want = hp->content_length < 65536 ? (size_t)hp->content_length : 65536;
    p->body.data = dagd_realloc(p->body.data, want + 1);
    p->body.cap = want + 1;
    p->body.data[0] = '\0';
  }
  return 0;
}

static int on_headers_complete(http_parser *hp) {
  dagd_http_parser *p = P(hp);
  /* 1 would mean "no body" to http-parser: any other nonzero is an error. */
  if (check_head(p) != 0) return -1;
  if (p->want_continue) http_parser_pause(hp, 1);
  return 0;
}


static int on_body(http_parser *hp, const char *at, size_t n) {
  dagd_http_parser *p = P(hp);
  if (p->body.len + n > p->lim.max_body_bytes)
    return fail(p, 413, DAGD_ELIMIT, "the request body exceeds %zu bytes", p->lim.max_body_bytes);
  dagd_buf_append(&p->body, at, n);
  return 0;
}

static int on_message_complete(http_parser *hp) {
  dagd_http_parser *p = P(hp);
  dagd__request *q = p->req;
  if (p->body.len > 0) {
    q->pub.body_len = p->body.len;
    q->body = dagd_buf_steal(&p->body);
    q->pub.body = q->body;
  }
  dagd_buf_close(&p->body);
  p->complete = true;
  if (!q->pub.keep_alive) p->closed = true;
  http_parser_pause(hp, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

dagd_http_parser *dagd_http_parser_new(const dagd_http_limits *limits) {
  dagd_http_parser *p = dagd_calloc(1, sizeof(*p));
  if (limits) p->lim = *limits;
  if (p->lim.max_header_bytes == 0) p->lim.max_header_bytes = DAGD_HTTP_DEFAULT_MAX_HEADER_BYTES;
  if (p->lim.max_body_bytes == 0) p->lim.max_body_bytes = DAGD_HTTP_DEFAULT_MAX_BODY_BYTES;
  http_parser_init(&p->hp, HTTP_REQUEST);
  p->hp.data = p;
  dagd_buf_init(&p->url);
  dagd_buf_init(&p->name);
  dagd_buf_init(&p->value);
  dagd_buf_init(&p->body);
  return p;
}

/* Forgets the request in progress (the next one starts clean). */
static void reset_message(dagd_http_parser *p) {
  if (p->req) dagd_http_request_free(&p->req->pub);
  p->req = NULL;
  dagd_buf_reset(&p->url);
  dagd_buf_reset(&p->name);
  dagd_buf_reset(&p->value);
  dagd_buf_close(&p->body);
  p->nhdrs = 0;
  p->last = 0;
  p->header_bytes = 0;
  p->begun = p->headers_done = p->complete = p->want_continue = false;
  p->prefix_len = 0;
}

void dagd_http_parser_free(dagd_http_parser *p) {
  if (p == NULL) return;
  reset_message(p);
  dagd_buf_close(&p->url);
  dagd_buf_close(&p->name);
  dagd_buf_close(&p->value);
  free(p->hdrs);
  free(p);
}

dagd_http_parse_phase dagd_http_parser_phase(const dagd_http_parser *p) {
  if (!p->begun || p->complete) return DAGD_HTTP_PARSE_IDLE;
  return p->headers_done ? DAGD_HTTP_PARSE_BODY : DAGD_HTTP_PARSE_HEADERS;
}

/* An unknown method is 501 when it looks like a method (an upper-case
 * token), garbage (TLS hello, binary) is 400. */
static int unknown_method_status(const dagd_http_parser *p) {
  size_t i = 0;
  while (i < p->prefix_len && (p->prefix[i] == '\r' || p->prefix[i] == '\n')) i++;
  size_t start = i;
  while (i < p->prefix_len && p->prefix[i] >= 'A' && p->prefix[i] <= 'Z') i++;
  if (i == start) return 400;
  if (i < p->prefix_len && p->prefix[i] != ' ' && !dagd__is_tchar((unsigned char)p->prefix[i]))
    return 400;
  return 501;
}

static int parse_error(dagd_http_parser *p, enum http_errno e) {
  switch (e) {
  case HPE_HEADER_OVERFLOW:
    return fail(p, 431, DAGD_ELIMIT, "the request header section is too large");
  case HPE_INVALID_METHOD:
    if (unknown_method_status(p) == 501)
      return fail(p, 501, DAGD_EINVAL, "unknown request method");
    return fail(p, 400, DAGD_ESYNTAX, "malformed request: %s", http_errno_description(e));
  case HPE_INVALID_TRANSFER_ENCODING:
    return fail(p, 501, DAGD_EINVAL, "transfer coding not supported");
  default:
    return fail(p, 400, DAGD_ESYNTAX, "malformed request: %s", http_errno_description(e));
  }
}

int dagd_http_parser_feed(dagd_http_parser *p, const char *data, size_t len, dagd_http_feed *out,
                          dagd_err *err) {
  *out = (dagd_http_feed){0};
  if (p->dead) goto error;
  if (p->closed && !p->complete) {
    out->consumed = len;
    return 0;
  }
  if (p->complete) {
    /* Not taken: cannot happen through this function, which hands the
     * request out the moment it completes. */
    reset_message(p);
  }
  /* http-parser reads an empty buffer as the end of the stream */
  if (len == 0) return 0;
  size_t room = sizeof(p->prefix) - p->prefix_len;
  size_t take = len < room ? len : room;
  memcpy(p->prefix + p->prefix_len, data, take);
  p->prefix_len += take;

  if (HTTP_PARSER_ERRNO(&p->hp) == HPE_PAUSED) http_parser_pause(&p->hp, 0);
  size_t n = http_parser_execute(&p->hp, &settings, data, len);
  enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
  out->consumed = n;
  if (p->dead) goto error;
  if (e == HPE_PAUSED) {
    if (p->complete) {
      out->request = &p->req->pub;
      p->req = NULL;
      bool closed = p->closed;
      reset_message(p);
      p->closed = closed;
    } else if (p->want_continue) {
      out->send_continue = true;
      p->want_continue = false;
    }
    return 0;
  }
  if (e != HPE_OK) {
    parse_error(p, e);
    goto error;
  }
  return 0;

error:
  out->status = p->status;
  return dagd_err_set(err, p->code, "%s", p->msg);
}

int dagd_http_request_parse(const char *data, size_t len, const dagd_http_limits *limits,
                            dagd_http_request **out, int *status, dagd_err *err) {
  dagd_http_parser *p = dagd_http_parser_new(limits);
  int rc = 0;
  size_t off = 0;
  *out = NULL;
  for (;;) {
    dagd_http_feed f;
    rc = dagd_http_parser_feed(p, data + off, len - off, &f, err);
    if (rc != 0) {
      if (status) *status = f.status;
      break;
    }
    off += f.consumed;
    if (f.request) {
      *out = f.request;
      if (status) *status = 200;
      break;
    }
    if (!f.send_continue && off >= len) {
      if (status) *status = 400;
      rc = dagd_err_set(err, DAGD_EINVAL, "incomplete request");
      break;
    }
  }
  dagd_http_parser_free(p);
  return rc;
}
