/* The HTTP server on the libuv loop. It only moves bytes: socket -> the
 * connection's input buffer -> the pure parser -> router -> handler, and
 * serialized responses -> socket. One request per connection is in a
 * handler at a time, so pipelined requests are answered in order; one
 * timer per connection enforces the header, body, keep-alive and
 * lingering-close deadlines. Nothing here blocks: a slow or silent peer
 * costs a buffer and a timer, never the loop.
 * SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/err.h"
#include "dagd/log.h"
#include "dagd/util.h"
#include "internal.h"

/* After the last response on a connection we half-close and keep reading
 * (and discarding) for this long, so that unread request bytes do not turn
 * our close into a reset that destroys the response in flight. */
#define LINGER_MS 2000
/* Connections refused for the connection limit that may linger at once;
 * beyond, they are closed outright. */
#define MAX_REJECTED 64
/* Pipelined bytes buffered beyond the header limit while a request is in
 * its handler, before reading pauses. */
#define PIPELINE_SLACK (64 * 1024)

typedef struct conn conn;

typedef enum {
  PH_HEADERS, /* waiting for (the rest of) a request head */
  PH_BODY,    /* waiting for the rest of a body */
  PH_IDLE,    /* keep-alive, between requests */
  PH_BUSY,    /* a request is in its handler: no deadline */
  PH_DRAIN,   /* last response being written */
  PH_LINGER,  /* half-closed, discarding input until the peer closes */
} phase;

struct dagd_http_exchange {
  conn *c;                  /* NULL once the client is gone (detached) */
  dagd_http_request *req;   /* the request and its arena */
  bool streaming;
  bool head;                /* a HEAD request: no body bytes go out */
  bool close_delimited;     /* a stream to an HTTP/1.0 client */
  bool keep_alive;
  bool aborting;            /* inside the abort callback */
  dagd_http_abort_cb abort_cb;
  void *abort_data;
  bool loopback;
  char peer[INET6_ADDRSTRLEN];
};

struct conn {
  dagd_http_server *s;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shutdown;
  int handles;              /* open handles; the conn is freed when both closed */
  dagd_http_parser *parser; /* NULL for a connection refused at the limit */
  dagd_buf in;              /* received bytes not yet fed to the parser */
  size_t in_off;
  dagd_http_exchange *x;    /* the request in its handler */
  phase ph;
  uint64_t ph_since;
  uint64_t served;
  size_t writes;            /* write requests in flight */
  bool reading, eof, closing, shutting, close_after_write, processing, resume, rejected;
  bool loopback;
  char peer[INET6_ADDRSTRLEN];
  conn *prev, *next;
};

typedef struct wreq {
  uv_write_t req;
  conn *c;
  char *data;
} wreq;

struct dagd_http_server {
  uv_loop_t *loop;
  dagd_http_server_opts o;
  const dagd_http_router *router;
  uv_tcp_t listener;
  bool listening;
  bool closing;
  int port;
  conn *conns;
  size_t nconns;    /* every open connection */
  size_t nactive;   /* those within the limit */
  size_t nrejected; /* those refused, lingering */
  dagd_http_server_close_cb close_cb;
  void *close_data;
  char rbuf[64 * 1024]; /* every read lands here first: one loop thread */
};

static void conn_close(conn *c);
static void process(conn *c);
static void update_phase(conn *c);
static void on_timer(uv_timer_t *h);

/* --- exchanges --- */

static void exchange_free(dagd_http_exchange *x) {
  dagd_http_request_free(x->req);
  free(x);
}

const dagd_http_request *dagd_http_exchange_request(const dagd_http_exchange *x) {
  return x->req;
}

const char *dagd_http_exchange_param(const dagd_http_exchange *x, const char *name) {
  return dagd_http_request_param(x->req, name);
}

const char *dagd_http_exchange_peer(const dagd_http_exchange *x) { return x->peer; }

bool dagd_http_exchange_peer_is_loopback(const dagd_http_exchange *x) { return x->loopback; }

void *dagd_http_exchange_alloc(dagd_http_exchange *x, size_t n) {
  return dagd_http_request_alloc(x->req, n);
}

void dagd_http_exchange_on_abort(dagd_http_exchange *x, dagd_http_abort_cb cb, void *data) {
  x->abort_cb = cb;
  x->abort_data = data;
}

/* --- writing --- */

static void on_closed(uv_handle_t *h);

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn *c = req->data;
  if (c->closing) return;
  if (status < 0 || c->eof) {
    conn_close(c);
    return;
  }
  update_phase(c); /* PH_LINGER */
}

/* Half-closes once the last response is out. */
static void start_shutdown(conn *c) {
  if (c->closing || c->shutting) return;
  c->shutting = true;
  c->shutdown.data = c;
  if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) < 0) conn_close(c);
}

static void on_write(uv_write_t *req, int status) {
  wreq *w = req->data;
  conn *c = w->c;
  free(w->data);
  free(w);
  c->writes--;
  if (c->closing) return;
  if (status < 0) {
    DAGD_LOG(DAGD_LOG_DEBUG, "http", "%s: write failed: %s", c->peer, uv_strerror(status));
    conn_close(c);
    return;
  }
  if (c->close_after_write && c->writes == 0) start_shutdown(c);
}

/* Queues bytes; takes ownership of data (a heap block of len bytes). */
static int conn_write(conn *c, char *data, size_t len) {
  if (c->closing) {
    free(data);
    return DAGD_EIO;
  }
  wreq *w = dagd_malloc(sizeof(*w));
  w->c = c;
  w->data = data;
  w->req.data = w;
  uv_buf_t b = uv_buf_init(data, (unsigned)len);
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc < 0) {
    DAGD_LOG(DAGD_LOG_DEBUG, "http", "%s: write failed: %s", c->peer, uv_strerror(rc));
    free(data);
    free(w);
    conn_close(c);
    return DAGD_EIO;
  }
  c->writes++;
  return 0;
}

static int conn_write_buf(conn *c, dagd_buf *b) {
  size_t len = b->len;
  return conn_write(c, dagd_buf_steal(b), len);
}

static void error_body(const dagd_http_server *s, int status, const char *msg, dagd_buf *body,
                       const char **ct) {
  *ct = NULL;
  if (s->o.error_body) s->o.error_body(s->o.error_body_data, status, msg, body, ct);
  else dagd__http_error_body(NULL, status, msg, body, ct);
}

/* Answers an error outside any exchange (bad request, timeout, limit)
 * and closes the connection after it. */
static void send_error(conn *c, int status, const char *msg) {
  dagd_buf body, out;
  dagd_buf_init(&body);
  dagd_buf_init(&out);
  const char *ct;
  error_body(c->s, status, msg, &body, &ct);
  dagd_http_response r = {.status = status, .content_type = ct, .body = body.data,
                          .body_len = body.len, .framing = DAGD_HTTP_FRAME_LENGTH};
  int rc = dagd_http_response_serialize(&r, &out, NULL);
  assert(rc == 0);
  (void)rc;
  dagd_buf_close(&body);
  c->close_after_write = true;
  conn_write_buf(c, &out);
}

/* The exchange on c has ended: go on with the next request, or close. */
static void finish_exchange(conn *c, bool keep_alive) {
  if (c->closing) return;
  if (!keep_alive) {
    c->close_after_write = true;
    if (c->writes == 0) start_shutdown(c);
    update_phase(c);
    return;
  }
  if (c->processing) return; /* the parse loop goes on by itself */
  /* Not from inside a handler's call: the next pipelined request runs
   * from a fresh loop callback. */
  c->resume = true;
  uv_timer_start(&c->timer, on_timer, 0, 0);
}

static bool keep_alive_for(const dagd_http_exchange *x) {
  return x->keep_alive && !x->c->s->closing;
}

int dagd_http_reply(dagd_http_exchange *x, int status, const char *content_type, const void *body,
                    size_t len, const dagd_http_header *extra, size_t nextra) {
  if (x->aborting) return DAGD_EIO; /* freed when the abort callback returns */
  assert(!x->streaming && "dagd_http_reply on a streaming exchange");
  conn *c = x->c;
  if (c == NULL) {
    exchange_free(x);
    return DAGD_EIO;
  }
  dagd_http_response r = {
      .status = status,
      .content_type = content_type,
      .body = body,
      .body_len = len,
      .headers = extra,
      .nheaders = nextra,
      .keep_alive = keep_alive_for(x),
      .head_only = x->head,
      .framing = DAGD_HTTP_FRAME_LENGTH,
  };
  dagd_buf out;
  dagd_buf_init(&out);
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_http_response_serialize(&r, &out, &err);
  if (rc != 0) {
    DAGD_LOG(DAGD_LOG_ERROR, "http", "%s %s: cannot send the response: %s", x->req->method_name,
             x->req->path, err.msg);
    dagd_buf body500;
    dagd_buf_init(&body500);
    error_body(c->s, 500, "internal error: bad response", &body500, &r.content_type);
    r.status = 500;
    r.body = body500.data;
    r.body_len = body500.len;
    r.headers = NULL;
    r.nheaders = 0;
    dagd_http_response_serialize(&r, &out, NULL);
    dagd_buf_close(&body500);
  }
  DAGD_LOG(DAGD_LOG_DEBUG, "http", "%s %s %s -> %d", x->peer, x->req->method_name, x->req->path,
           r.status);
  bool keep = r.keep_alive;
  c->x = NULL;
  exchange_free(x);
  if (conn_write_buf(c, &out) != 0) return DAGD_EIO;
  finish_exchange(c, keep);
  return rc;
}

int dagd_http_stream_begin(dagd_http_exchange *x, int status, const char *content_type,
                           const dagd_http_header *extra, size_t nextra) {
  if (x->aborting) return DAGD_EIO;
  assert(!x->streaming && "dagd_http_stream_begin twice");
  conn *c = x->c;
  if (c == NULL) return DAGD_EIO;
  /* HTTP/1.0 has no chunked coding: the stream ends with the connection. */
  x->close_delimited = x->req->version_minor == 0;
  if (x->close_delimited) x->keep_alive = false;
  dagd_http_response r = {
      .status = status,
      .content_type = content_type,
      .headers = extra,
      .nheaders = nextra,
      .keep_alive = keep_alive_for(x),
      .head_only = x->head,
      .framing = x->close_delimited ? DAGD_HTTP_FRAME_CLOSE : DAGD_HTTP_FRAME_CHUNKED,
  };
  dagd_buf out;
  dagd_buf_init(&out);
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_http_response_serialize(&r, &out, &err);
  if (rc != 0) {
    DAGD_LOG(DAGD_LOG_ERROR, "http", "%s %s: cannot start the stream: %s", x->req->method_name,
             x->req->path, err.msg);
    return rc;
  }
  /* 1xx, 204 and 304 carry no body: nothing of the stream goes out. */
  if (status < 200 || status == 204 || status == 304) x->head = true;
  x->streaming = true;
  DAGD_LOG(DAGD_LOG_DEBUG, "http", "%s %s %s -> %d (stream)", x->peer, x->req->method_name,
           x->req->path, status);
  return conn_write_buf(c, &out);
}

int dagd_http_stream_write(dagd_http_exchange *x, const void *data, size_t len) {
  if (x->aborting) return DAGD_EIO;
  assert(x->streaming && "dagd_http_stream_write before dagd_http_stream_begin");
  conn *c = x->c;
  if (c == NULL || c->closing) return DAGD_EIO;
  if (len == 0 || x->head) return 0;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > c->s->o.max_write_queue) {
    DAGD_LOG(DAGD_LOG_WARN, "http", "%s: dropping a stream the client does not read", c->peer);
    conn_close(c);
    return DAGD_ELIMIT;
  }
  dagd_buf out;
  dagd_buf_init(&out);
  if (x->close_delimited) dagd_buf_append(&out, data, len);
  else dagd_http_chunk_serialize(data, len, &out);
  return conn_write_buf(c, &out);
}

int dagd_http_stream_end(dagd_http_exchange *x) {
  if (x->aborting) return DAGD_EIO;
  assert(x->streaming && "dagd_http_stream_end before dagd_http_stream_begin");
  conn *c = x->c;
  bool keep = c != NULL && keep_alive_for(x);
  bool chunk_end = !x->close_delimited && !x->head;
  if (c) c->x = NULL;
  exchange_free(x);
  if (c == NULL || c->closing) return DAGD_EIO;
  if (chunk_end && conn_write(c, dagd_strdup(DAGD_HTTP_CHUNKED_END),
                              strlen(DAGD_HTTP_CHUNKED_END)) != 0)
    return DAGD_EIO;
  finish_exchange(c, keep);
  return 0;
}

/* --- reading and dispatch --- */

static void reply_error(dagd_http_exchange *x, int status, const char *msg,
                        const dagd_http_header *extra, size_t nextra) {
  dagd_buf body;
  dagd_buf_init(&body);
  const char *ct;
  error_body(x->c->s, status, msg, &body, &ct);
  dagd_http_reply(x, status, ct, body.data, body.len, extra, nextra);
  dagd_buf_close(&body);
}

static void dispatch(conn *c, dagd_http_request *req) {
  dagd_http_exchange *x = dagd_calloc(1, sizeof(*x));
  x->c = c;
  x->req = req;
  x->head = req->method == DAGD_HTTP_HEAD;
  x->keep_alive = req->keep_alive;
  x->loopback = c->loopback;
  memcpy(x->peer, c->peer, sizeof(x->peer));
  c->x = x;
  c->served++;
  dagd_http_route rt;
  if (dagd_http_router_match(c->s->router, req, &rt) != 0) {
    if (rt.status == 405) {
      dagd_http_header allow = {"Allow", rt.allow};
      char msg[160];
      snprintf(msg, sizeof(msg), "method %s is not allowed here (allowed: %s)", req->method_name,
               rt.allow);
      reply_error(x, 405, msg, &allow, 1);
    } else {
      reply_error(x, 404, "no such resource", NULL, 0);
    }
    return;
  }
  rt.cb(x, rt.data);
}

static bool read_capped(const conn *c) {
  return c->in.len - c->in_off > c->s->o.max_header_bytes + PIPELINE_SLACK;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  conn *c = h->data;
  *buf = uv_buf_init(c->s->rbuf, sizeof(c->s->rbuf));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void set_reading(conn *c) {
  bool want = !c->closing && !c->eof && !read_capped(c);
  if (want && !c->reading) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
      conn_close(c);
      return;
    }
    c->reading = true;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
}

/* Feeds buffered bytes to the parser while no request is in a handler. */
static void process(conn *c) {
  if (c->processing || c->closing) return;
  c->processing = true;
  while (!c->closing && c->x == NULL && !c->close_after_write) {
    size_t avail = c->in.len - c->in_off;
    if (avail == 0) break;
    dagd_http_feed f;
    dagd_err err;
    dagd_err_init(&err);
    int rc = dagd_http_parser_feed(c->parser, c->in.data + c->in_off, avail, &f, &err);
    c->in_off += f.consumed;
    if (rc != 0) {
      DAGD_LOG(DAGD_LOG_INFO, "http", "%s: %d: %s", c->peer, f.status, err.msg);
      send_error(c, f.status, err.msg);
      break;
    }
    if (f.send_continue) {
      static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
      conn_write(c, dagd_strdup(cont), sizeof(cont) - 1);
    }
    if (f.request) dispatch(c, f.request);
    else if (!f.send_continue && f.consumed == avail) break;
    else if (!f.send_continue && f.consumed == 0) break;
  }
  if (c->in_off == c->in.len) {
    dagd_buf_close(&c->in); /* idle connections hold no buffer */
    c->in_off = 0;
  } else if (c->in_off > 0) {
    memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
    c->in.len -= c->in_off;
    c->in.data[c->in.len] = '\0';
    c->in_off = 0;
  }
  c->processing = false;
  if (c->closing) return;
  if (c->eof && c->x == NULL && !c->close_after_write) {
    /* The peer sent all it will and everything is answered (a partial
     * request at EOF can never complete). */
    if (c->writes > 0) c->close_after_write = true;
    else conn_close(c);
    if (c->closing) return;
  }
  set_reading(c);
  update_phase(c);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  conn *c = st->data;
  if (c->closing || nread == 0) return;
  if (nread < 0) {
    if (nread != UV_EOF)
      DAGD_LOG(DAGD_LOG_DEBUG, "http", "%s: read failed: %s", c->peer, uv_strerror((int)nread));
    uv_read_stop(st);
    c->reading = false;
    c->eof = true;
    /* A peer that closes with a request in its handler is taken to be gone
     * (as nginx does): the abort callback lets a long-poll clean up. */
    if (nread != UV_EOF || c->shutting || c->x != NULL || c->rejected) {
      conn_close(c);
      return;
    }
    if (c->close_after_write) return; /* the pending write ends it */
    process(c);
    return;
  }
  if (c->close_after_write || c->shutting) return; /* discarded */
  dagd_buf_append(&c->in, buf->base, (size_t)nread);
  process(c);
}

/* --- deadlines --- */

static phase current_phase(const conn *c) {
  if (c->shutting) return PH_LINGER;
  if (c->close_after_write) return PH_DRAIN;
  if (c->x) return PH_BUSY;
  switch (dagd_http_parser_phase(c->parser)) {
  case DAGD_HTTP_PARSE_HEADERS: return PH_HEADERS;
  case DAGD_HTTP_PARSE_BODY: return PH_BODY;
  default: return c->served == 0 ? PH_HEADERS : PH_IDLE;
  }
}

static uint64_t phase_timeout(const conn *c, phase ph) {
  const dagd_http_server_opts *o = &c->s->o;
  switch (ph) {
  case PH_HEADERS: return o->header_timeout_ms;
  case PH_BODY: return o->body_timeout_ms;
  case PH_IDLE: return o->keepalive_timeout_ms;
  case PH_DRAIN: return o->keepalive_timeout_ms;
  case PH_LINGER: return o->header_timeout_ms < LINGER_MS ? o->header_timeout_ms : LINGER_MS;
  default: return 0;
  }
}

/* Re-arms the connection's one timer for the deadline of its phase. A
 * deadline runs from when the phase began, not from the last byte: a
 * client trickling a byte at a time gets no more time than a silent one. */
static void update_phase(conn *c) {
  if (c->closing) return;
  phase ph = current_phase(c);
  uint64_t now = uv_now(c->s->loop);
  if (ph != c->ph) {
    c->ph = ph;
    c->ph_since = now;
  }
  if (c->resume) return; /* the resume callback calls us again */
  uint64_t t = phase_timeout(c, ph);
  if (t == 0) {
    uv_timer_stop(&c->timer);
    return;
  }
  uint64_t due = c->ph_since + t;
  uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
}

static void on_timer(uv_timer_t *h) {
  conn *c = h->data;
  if (c->resume) {
    c->resume = false;
    process(c);
    update_phase(c);
    return;
  }
  switch (c->ph) {
  case PH_HEADERS:
    if (dagd_http_parser_phase(c->parser) == DAGD_HTTP_PARSE_HEADERS) {
      DAGD_LOG(DAGD_LOG_INFO, "http", "%s: 408: request headers not complete in time", c->peer);
      send_error(c, 408, "timed out waiting for the request headers");
    } else {
      conn_close(c); /* connected, sent nothing */
    }
    break;
  case PH_BODY:
    DAGD_LOG(DAGD_LOG_INFO, "http", "%s: 408: request body not complete in time", c->peer);
    send_error(c, 408, "timed out waiting for the request body");
    break;
  case PH_BUSY:
    break;
  default:
    conn_close(c);
    break;
  }
  update_phase(c);
}

/* --- connections --- */

static void server_maybe_finish(dagd_http_server *s);

static void conn_free(conn *c) {
  dagd_http_server *s = c->s;
  dagd_http_exchange *x = c->x;
  if (x) {
    c->x = NULL;
    x->c = NULL;
    if (x->abort_cb) {
      x->aborting = true;
      x->abort_cb(x, x->abort_data);
      exchange_free(x);
    }
    /* else detached: freed when the handler ends it */
  }
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->nconns--;
  if (c->rejected) s->nrejected--;
  else s->nactive--;
  dagd_http_parser_free(c->parser);
  dagd_buf_close(&c->in);
  free(c);
  server_maybe_finish(s);
}

static void on_closed(uv_handle_t *h) {
  conn *c = h->data;
  if (--c->handles == 0) conn_free(c);
}

static void conn_close(conn *c) {
  if (c->closing) return;
  c->closing = true;
  c->reading = false;
  uv_close((uv_handle_t *)&c->tcp, on_closed);
  uv_close((uv_handle_t *)&c->timer, on_closed);
}

static void peer_name(conn *c) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  c->peer[0] = '\0';
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) return;
  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
    uv_ip4_name(a, c->peer, sizeof(c->peer));
    c->loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  } else if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
    uv_ip6_name(a, c->peer, sizeof(c->peer));
    c->loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
                  (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127);
  }
}

static void on_connection(uv_stream_t *ls, int status) {
  dagd_http_server *s = ls->data;
  if (status < 0) {
    DAGD_LOG(DAGD_LOG_WARN, "http", "accept failed: %s", uv_strerror(status));
    return;
  }
  conn *c = dagd_calloc(1, sizeof(*c));
  c->s = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->handles = 2;
  dagd_buf_init(&c->in);
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  c->rejected = s->nactive >= s->o.max_connections;
  if (c->rejected) s->nrejected++;
  else s->nactive++;
  int rc = uv_accept(ls, (uv_stream_t *)&c->tcp);
  if (rc < 0) {
    DAGD_LOG(DAGD_LOG_WARN, "http", "accept failed: %s", uv_strerror(rc));
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  peer_name(c);
  c->ph = PH_HEADERS;
  c->ph_since = uv_now(s->loop);
  if (c->rejected) {
    DAGD_LOG(DAGD_LOG_WARN, "http", "%s: refused: %zu connections open", c->peer, s->nactive);
    if (s->nrejected > MAX_REJECTED) {
      conn_close(c);
      return;
    }
    send_error(c, 503, "too many connections");
  } else {
    dagd_http_limits lim = {s->o.max_header_bytes, s->o.max_body_bytes};
    c->parser = dagd_http_parser_new(&lim);
    DAGD_LOG(DAGD_LOG_DEBUG, "http", "%s: connected", c->peer);
  }
  set_reading(c);
  update_phase(c);
}

/* --- the server --- */

dagd_http_server *dagd_http_server_new(uv_loop_t *loop, const dagd_http_server_opts *opts,
                                       const dagd_http_router *router) {
  dagd_http_server *s = dagd_calloc(1, sizeof(*s));
  s->loop = loop;
  s->router = router;
  if (opts) s->o = *opts;
  if (!s->o.max_header_bytes) s->o.max_header_bytes = DAGD_HTTP_DEFAULT_MAX_HEADER_BYTES;
  if (!s->o.max_body_bytes) s->o.max_body_bytes = DAGD_HTTP_DEFAULT_MAX_BODY_BYTES;
  if (!s->o.header_timeout_ms) s->o.header_timeout_ms = 10000;
  if (!s->o.body_timeout_ms) s->o.body_timeout_ms = 30000;
  if (!s->o.keepalive_timeout_ms) s->o.keepalive_timeout_ms = 60000;
  if (!s->o.max_connections) s->o.max_connections = 1024;
  if (!s->o.max_write_queue) s->o.max_write_queue = (size_t)8 << 20;
  /* Always one handle, so closing always completes from the loop. */
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  return s;
}

/* Splits "host:port" / "[v6]:port" into a socket address. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, dagd_err *err) {
  char host[64];
  const char *port;
  if (addr[0] == '[') {
    const char *end = strchr(addr, ']');
    if (end == NULL || end[1] != ':' || (size_t)(end - addr - 1) >= sizeof(host)) goto bad;
    memcpy(host, addr + 1, (size_t)(end - addr - 1));
    host[end - addr - 1] = '\0';
    port = end + 2;
  } else {
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof(host)) goto bad;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    port = colon + 1;
  }
  if (*port == '\0' || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port)) goto bad;
  int p = atoi(port);
  if (p > 65535) goto bad;
  if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
  memset(ss, 0, sizeof(*ss));
  if (uv_ip4_addr(host, p, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(host, p, (struct sockaddr_in6 *)ss) == 0) return 0;
bad:
  return dagd_err_set(err, DAGD_EINVAL,
                      "bad listen address '%s' (want HOST:PORT with a numeric host)", addr);
}

int dagd_http_server_listen(dagd_http_server *s, const char *addr, dagd_err *err) {
  if (s->listening) return dagd_err_set(err, DAGD_EEXIST, "the server already listens");
  struct sockaddr_storage ss;
  int rc = parse_addr(addr, &ss, err);
  if (rc != 0) return rc;
  rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, SOMAXCONN, on_connection);
  if (rc < 0) {
    dagd_err_set(err, DAGD_EIO, "cannot listen on %s: %s", addr, uv_strerror(rc));
    if (err) err->cause = rc;
    return DAGD_EIO;
  }
  struct sockaddr_storage bound;
  int len = sizeof(bound);
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
  s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
  s->listening = true;
  /* The caller logs the address when it is ready to serve. */
  return 0;
}

int dagd_http_server_port(const dagd_http_server *s) { return s->port; }

size_t dagd_http_server_connections(const dagd_http_server *s) { return s->nconns; }

static void server_maybe_finish(dagd_http_server *s) {
  if (!s->closing || s->conns != NULL || s->listener.data != NULL) return;
  dagd_http_server_close_cb cb = s->close_cb;
  void *data = s->close_data;
  free(s);
  if (cb) cb(data);
}

static void on_listener_closed(uv_handle_t *h) {
  dagd_http_server *s = h->data;
  s->listener.data = NULL;
  server_maybe_finish(s);
}

void dagd_http_server_close(dagd_http_server *s, dagd_http_server_close_cb cb, void *data) {
  if (s == NULL || s->closing) return;
  s->closing = true;
  s->close_cb = cb;
  s->close_data = data;
  uv_close((uv_handle_t *)&s->listener, on_listener_closed);
  for (conn *c = s->conns; c; c = c->next) conn_close(c);
}
