/* The HTTP/1.1 transport of the REST API. A pure part over byte buffers
 * (request parser, router, response serializer, URL decoding) that a test
 * or a fuzzer drives without sockets, and a server on the libuv loop that
 * only moves bytes between sockets and that pure part. Handlers answer at
 * once or later (long-poll), or stream (server-sent events, chunked).
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_HTTP_H
#define DAGD_HTTP_H

#if defined(DAGD_LAYER_PURE) || defined(DAGD_LAYER_LUA) || defined(DAGD_LAYER_STORE) || defined(DAGD_LAYER_ENGINE) || defined(DAGD_LAYER_API)
#error "dagd/http.h is above this layer (see the layers in CMakeLists.txt)"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct dagd_err;
struct dagd_buf;

#define DAGD_HTTP_DEFAULT_MAX_HEADER_BYTES ((size_t)16 * 1024)
#define DAGD_HTTP_DEFAULT_MAX_BODY_BYTES ((size_t)1024 * 1024)
/* More header lines than this are refused with 431 too. */
#define DAGD_HTTP_MAX_HEADERS 128

/* ------------------------------------------------------------------ */
/* Requests (pure)                                                     */

typedef enum {
  DAGD_HTTP_GET,
  DAGD_HTTP_HEAD,
  DAGD_HTTP_POST,
  DAGD_HTTP_PUT,
  DAGD_HTTP_PATCH,
  DAGD_HTTP_DELETE,
  DAGD_HTTP_OPTIONS,
  DAGD_HTTP_METHOD_COUNT_
} dagd_http_method;

/* "GET", ...; NULL for a value out of range. */
const char *dagd_http_method_name(dagd_http_method m);

/* A name/value pair: a request or response header, or a path parameter. */
typedef struct dagd_http_header {
  const char *name;
  const char *value;
} dagd_http_header;

/* A complete request, produced by the parser. Read-only for its users:
 * every string is NUL-terminated and lives as long as the request (one
 * per-request arena, released by dagd_http_request_free or, in the server,
 * when the response is complete). */
typedef struct dagd_http_request {
  dagd_http_method method;
  const char *method_name;        /* "GET" */
  const char *target;             /* the request-target as received */
  const char *raw_path;           /* path as received, still percent-encoded */
  const char *path;               /* percent-decoded ('+' stays '+'); never holds NUL */
  const char *query;              /* raw query string after '?', "" if none */
  const dagd_http_header *headers; /* in arrival order, values trimmed */
  size_t nheaders;
  const char *body;               /* NUL-terminated for convenience; "" if none */
  size_t body_len;
  bool keep_alive;                /* the client allows another request after this one */
  int version_minor;              /* HTTP/1.<minor>: 0 or 1 */
  const dagd_http_header *params; /* path parameters, set by dagd_http_router_match */
  size_t nparams;
} dagd_http_request;

/* Frees a request and everything it points to; accepts NULL. */
void dagd_http_request_free(dagd_http_request *req);
/* The first header of that name (case-insensitive), or NULL. */
const char *dagd_http_request_header(const dagd_http_request *req, const char *name);
/* A path parameter ("dag_id" for a pattern's "{dag_id}"), or NULL. */
const char *dagd_http_request_param(const dagd_http_request *req, const char *name);
/* Allocates n bytes (zeroed) that live as long as the request. Aborts on
 * out-of-memory like dagd_malloc. */
void *dagd_http_request_alloc(dagd_http_request *req, size_t n);

/* Looks up a query parameter of req and percent-decodes it ('+' is a
 * space) into buf, NUL-terminated. Returns 0, DAGD_ENOENT when absent,
 * DAGD_ESYNTAX when badly encoded or decoding to a NUL byte, DAGD_ERANGE
 * when buf (cap bytes) is too small. A parameter without '=' has the
 * value "". The first occurrence wins. len may be NULL. */
int dagd_http_query_get(const dagd_http_request *req, const char *name, char *buf, size_t cap,
                        size_t *len);

/* Percent-decodes s[0..n) into out (at least n + 1 bytes), NUL-terminated;
 * plus_space turns '+' into ' ' (query strings). Returns 0 or DAGD_ESYNTAX
 * for a bad escape or an escaped NUL. outlen may be NULL. */
int dagd_http_url_decode(const char *s, size_t n, bool plus_space, char *out, size_t *outlen);

/* ------------------------------------------------------------------ */
/* The request parser (pure)                                           */

typedef struct dagd_http_limits {
  size_t max_header_bytes; /* request line + header section; 0: 16 KiB */
  size_t max_body_bytes;   /* decoded body; 0: 1 MiB */
} dagd_http_limits;

typedef struct dagd_http_parser dagd_http_parser;

/* What one call to dagd_http_parser_feed produced. */
typedef struct dagd_http_feed {
  size_t consumed;             /* bytes of the input used */
  dagd_http_request *request;  /* a complete request, owned by the caller, or NULL */
  bool send_continue;          /* the client waits for "100 Continue": send it, then feed on */
  int status;                  /* on error, the status to answer with */
} dagd_http_feed;

/* limits may be NULL (defaults). Free with dagd_http_parser_free. */
dagd_http_parser *dagd_http_parser_new(const dagd_http_limits *limits);
void dagd_http_parser_free(dagd_http_parser *p);

/* Feeds bytes. Stops after the first complete request (out->request; call
 * again with the bytes after out->consumed for pipelined ones), after the
 * headers of a request that expects "100 Continue" (out->send_continue),
 * or when the input is used up. After a request that does not allow
 * keep-alive, later bytes are consumed and ignored.
 * Returns 0, or on bad input a negative code with out->status and err set:
 * DAGD_ESYNTAX (400 malformed, 505 version), DAGD_ELIMIT (431 header
 * section too big or too many headers, 413 body too big), DAGD_EINVAL (501
 * unknown method or transfer coding, 417 unknown expectation). The parser
 * is then dead: every later call fails the same way. */
int dagd_http_parser_feed(dagd_http_parser *p, const char *data, size_t len, dagd_http_feed *out,
                          struct dagd_err *err);

typedef enum {
  DAGD_HTTP_PARSE_IDLE,    /* between requests: no byte of the next one yet */
  DAGD_HTTP_PARSE_HEADERS, /* inside a request line or header section */
  DAGD_HTTP_PARSE_BODY,    /* headers done, body incomplete */
} dagd_http_parse_phase;

/* Where the parser stands, for the server's timeouts. */
dagd_http_parse_phase dagd_http_parser_phase(const dagd_http_parser *p);

/* Parses exactly one complete request out of a buffer (tests, fuzzing,
 * handlers' unit tests). Returns 0 with *out set (free with
 * dagd_http_request_free), DAGD_EINVAL when the buffer ends before the
 * request does (status 400), or a feed error with *status set. status
 * may be NULL. */
int dagd_http_request_parse(const char *data, size_t len, const dagd_http_limits *limits,
                            dagd_http_request **out, int *status, struct dagd_err *err);

/* ------------------------------------------------------------------ */
/* The router (pure)                                                   */

typedef struct dagd_http_exchange dagd_http_exchange;
typedef struct dagd_http_router dagd_http_router;

/* A request handler, called on the loop thread with the exchange; it
 * answers with dagd_http_reply or dagd_http_stream_*, now or later. */
typedef void (*dagd_http_handler_cb)(dagd_http_exchange *x, void *data);

dagd_http_router *dagd_http_router_new(void);
void dagd_http_router_free(dagd_http_router *r);

/* Registers a handler for method + pattern. A pattern is an absolute path
 * whose segments are literals or whole-segment parameters "{name}":
 * "/api/v1/dags/{dag_id}/dagRuns/{run_id}". Returns 0, or DAGD_EINVAL for
 * a bad pattern (no leading '/', '{' inside a segment, a repeated or
 * invalid parameter name) and DAGD_EEXIST for a (method, pattern) already
 * registered. A GET route also answers HEAD unless HEAD has its own. */
int dagd_http_router_add(dagd_http_router *r, dagd_http_method method, const char *pattern,
                         dagd_http_handler_cb cb, void *data, struct dagd_err *err);

typedef struct dagd_http_route {
  int status;                /* 200 matched, 404 no such path, 405 wrong method */
  dagd_http_handler_cb cb;   /* the handler when matched */
  void *data;
  char allow[96];            /* for 405: the methods the path has, "GET, HEAD, POST" */
} dagd_http_route;

/* Matches req's method and raw path. The path is split on its literal
 * '/' before decoding, so "%2F" never separates segments; each segment is
 * then percent-decoded, and a parameter decoding to something holding '/'
 * or empty does not match. Among matching routes, one with a literal
 * segment wins over one with a parameter there. On a match sets
 * req->params (in req's arena) and returns 0; otherwise returns
 * DAGD_ENOENT with out->status 404 or 405 (and out->allow). */
int dagd_http_router_match(const dagd_http_router *r, dagd_http_request *req, dagd_http_route *out);

/* ------------------------------------------------------------------ */
/* Responses (pure)                                                    */

typedef enum {
  DAGD_HTTP_FRAME_LENGTH,  /* Content-Length: body_len, then the body */
  DAGD_HTTP_FRAME_CHUNKED, /* Transfer-Encoding: chunked; the head only */
  DAGD_HTTP_FRAME_CLOSE,   /* neither: the body ends with the connection (HTTP/1.0 streams) */
} dagd_http_framing;

typedef struct dagd_http_response {
  int status;                      /* 100..599 */
  const char *content_type;        /* NULL: no Content-Type */
  const void *body;                /* DAGD_HTTP_FRAME_LENGTH only */
  size_t body_len;
  const dagd_http_header *headers; /* extra headers */
  size_t nheaders;
  bool keep_alive;                 /* Connection: keep-alive, else close */
  bool head_only;                  /* a HEAD answer: the body is left out, the length kept */
  dagd_http_framing framing;
} dagd_http_response;

/* A status's reason phrase is dagd_status_reason (dagd/util.h). */

/* Appends the serialized response (status line, Content-Type,
 * Content-Length or Transfer-Encoding, Connection, the extra headers, the
 * body) to out. 1xx, 204 and 304 carry no body and no length. Returns 0,
 * or DAGD_EINVAL when the status is out of range, a header name is not a
 * token, a value holds CR, LF or NUL, or an extra header sets framing
 * (Content-Length, Transfer-Encoding, Connection): out is then unchanged. */
int dagd_http_response_serialize(const dagd_http_response *r, struct dagd_buf *out,
                                 struct dagd_err *err);

/* Appends one chunk of a chunked body ("<hex>\r\n<data>\r\n"); n == 0
 * appends nothing (a zero chunk would end the body). */
void dagd_http_chunk_serialize(const void *data, size_t n, struct dagd_buf *out);
/* The end of a chunked body. */
#define DAGD_HTTP_CHUNKED_END "0\r\n\r\n"

/* ------------------------------------------------------------------ */
/* The server (libuv; loop thread only)                                */

typedef struct dagd_http_server dagd_http_server;

/* Formats the body of an error the server answers by itself (400, 404,
 * 405, 408, 413, 431, 501, 503...): appends to body and sets
 * *content_type (a static string). */
typedef void (*dagd_http_error_body_cb)(void *data, int status, const char *message,
                                        struct dagd_buf *body, const char **content_type);

typedef struct dagd_http_server_opts {
  size_t max_header_bytes;       /* 0: 16 KiB -> 431 */
  size_t max_body_bytes;         /* 0: 1 MiB -> 413 */
  uint64_t header_timeout_ms;    /* from connect or first byte to end of headers; 0: 10 s */
  uint64_t body_timeout_ms;      /* from end of headers to end of body; 0: 30 s */
  uint64_t keepalive_timeout_ms; /* idle between requests; 0: 60 s */
  size_t max_connections;        /* 0: 1024; beyond, a connection gets 503 and is closed */
  size_t max_write_queue;        /* unsent bytes before a streaming client that does
                                    not read is dropped; 0: 8 MiB */
  dagd_http_error_body_cb error_body; /* NULL: a problem document (dagd_problem_write) */
  void *error_body_data;
} dagd_http_server_opts;

/* A new server on loop. opts may be NULL (defaults); router is borrowed
 * and must outlive the server. */
dagd_http_server *dagd_http_server_new(uv_loop_t *loop, const dagd_http_server_opts *opts,
                                       const dagd_http_router *router);

/* Binds and listens on "host:port" ("127.0.0.1:8787", "[::1]:0",
 * "localhost:8787"; numeric addresses only, besides "localhost"); port 0
 * picks a free port, see dagd_http_server_port. One address per server.
 * Returns 0, DAGD_EINVAL (bad address), DAGD_EEXIST (already listening)
 * or DAGD_EIO (bind or listen failed; err->cause has the libuv code). */
int dagd_http_server_listen(dagd_http_server *s, const char *addr, struct dagd_err *err);

/* The bound port, 0 before listen. */
int dagd_http_server_port(const dagd_http_server *s);

/* Open client connections. */
size_t dagd_http_server_connections(const dagd_http_server *s);

typedef void (*dagd_http_server_close_cb)(void *data);

/* Stops listening and closes every connection; pending exchanges get
 * their abort callback. Once every handle has closed the server is freed
 * and cb (may be NULL) is called from the loop: run the loop to finish.
 * Accepts NULL. */
void dagd_http_server_close(dagd_http_server *s, dagd_http_server_close_cb cb, void *data);

/* --- exchanges: one request and its response --------------------------
 *
 * A handler receives the exchange and must end it exactly once, at once
 * or later on the loop thread: with dagd_http_reply, or with
 * dagd_http_stream_begin, any number of dagd_http_stream_write, and
 * dagd_http_stream_end. The exchange and its request are freed when it
 * ends; do not touch x afterwards.
 *
 * If the client goes away first and an abort callback is set, the
 * callback fires (from the loop, never from inside a dagd_http_* call)
 * and x is freed when it returns: drop every reference to it there.
 * Without an abort callback x stays valid, detached, until the handler
 * ends it; its writes then fail with DAGD_EIO. A client that half-closes
 * (shuts down its sending side) while its request is pending counts as
 * gone, as in nginx. While a request is pending its connection buffers
 * pipelined bytes up to max_header_bytes + 64 KiB, then stops reading
 * (and so stops noticing a disconnect) until the request ends. Requests on one connection
 * are answered in order: the next pipelined request is parsed only once
 * this one has ended. */

typedef void (*dagd_http_abort_cb)(dagd_http_exchange *x, void *data);

const dagd_http_request *dagd_http_exchange_request(const dagd_http_exchange *x);
/* Shortcut for dagd_http_request_param on the exchange's request. */
const char *dagd_http_exchange_param(const dagd_http_exchange *x, const char *name);
/* The peer's address as text ("127.0.0.1", "::1"), "" if unknown. */
const char *dagd_http_exchange_peer(const dagd_http_exchange *x);
/* True when the peer is a loopback address (127.0.0.0/8, ::1,
 * ::ffff:127.0.0.0/104). */
bool dagd_http_exchange_peer_is_loopback(const dagd_http_exchange *x);
/* Memory that lives as long as the exchange (zeroed; aborts on OOM). */
void *dagd_http_exchange_alloc(dagd_http_exchange *x, size_t n);
/* Sets (or with cb NULL clears) the callback fired if the client goes
 * away while the exchange is pending. */
void dagd_http_exchange_on_abort(dagd_http_exchange *x, dagd_http_abort_cb cb, void *data);

/* Answers and ends the exchange. body (len bytes) and the extra headers
 * are copied. HEAD requests get the head only. Returns 0, DAGD_EIO when
 * the client is gone (the answer is dropped), or DAGD_EINVAL when the
 * response cannot be serialized (see dagd_http_response_serialize): a 500
 * goes out instead. x is freed in every case. */
int dagd_http_reply(dagd_http_exchange *x, int status, const char *content_type, const void *body,
                    size_t len, const dagd_http_header *extra, size_t nextra);

/* Sends the head of a streamed response: chunked for HTTP/1.1 clients,
 * until close for HTTP/1.0 ones. Returns 0, DAGD_EIO (client gone),
 * DAGD_EINVAL (bad status or headers; x stays pending, reply instead). */
int dagd_http_stream_begin(dagd_http_exchange *x, int status, const char *content_type,
                           const dagd_http_header *extra, size_t nextra);
/* Sends part of the body (copied; len 0 sends nothing). Returns 0,
 * DAGD_EIO when the client is gone, DAGD_ELIMIT when more than
 * max_write_queue bytes wait unsent: the connection is then being closed;
 * end the stream, or wait for the abort callback, which follows. */
int dagd_http_stream_write(dagd_http_exchange *x, const void *data, size_t len);
/* Ends the streamed body and the exchange; x is freed. Returns 0 or
 * DAGD_EIO when the client is gone. */
int dagd_http_stream_end(dagd_http_exchange *x);

#endif
