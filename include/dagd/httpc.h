/* The HTTP client over libcurl that every operator, the notifications and
 * dagctl use: the one place that sets up a libcurl easy handle and
 * performs a request (timeouts, allowed schemes, TLS CA file, header
 * lines, a body sent and a response body kept up to a bound, errors that
 * name the method and the URL). Blocking: for the operator and notify
 * children and for dagctl, never for the daemon's loop.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_HTTPC_H
#define DAGD_HTTPC_H

#if defined(DAGD_LAYER_PURE) || defined(DAGD_LAYER_LUA) || defined(DAGD_LAYER_STORE) || defined(DAGD_LAYER_ENGINE) || defined(DAGD_LAYER_API)
#error "dagd/httpc.h is above this layer (see the layers in CMakeLists.txt)"
#endif

#include <stdbool.h>
#include <stddef.h>

#include "dagd/err.h"
#include "dagd/util.h"

/* libcurl's process-wide set-up and tear-down, around a program's
 * requests, from its main thread (a request without them sets libcurl up
 * itself). */
void dagd_httpc_global_init(void);
void dagd_httpc_global_cleanup(void);

/* A client that keeps its connections between requests (one libcurl easy
 * handle, reset before each request). */
typedef struct dagd_httpc dagd_httpc;

/* Called with each response header line as it arrives (status lines
 * included, with their CR LF). */
typedef void (*dagd_httpc_header_cb)(const char *line, size_t len, void *data);

/* One request; everything borrowed for the call. */
typedef struct dagd_httpc_req {
  const char *method;             /* "GET", "HEAD", "POST", ...; NULL: GET */
  const char *url;
  const char *const *headers;     /* NULL-ended "Name: value" lines, may be NULL */
  const char *body;               /* sent when not NULL: body_len bytes */
  size_t body_len;
  long timeout_ms;                /* the whole exchange; 0: no limit */
  long connect_timeout_ms;        /* 0: libcurl's own (300 s) */
  const char *user_agent;         /* NULL: no User-Agent header */
  const char *ca_file;            /* NULL: the system's certificate authorities */
  bool any_scheme;                /* false: http:// and https:// only */
  size_t body_max;                /* the largest response body kept; 0: no bound */
  dagd_httpc_header_cb on_header; /* may be NULL */
  void *header_data;
} dagd_httpc_req;

/* A client, or DAGD_ENOMEM ("cannot start libcurl"). Free with
 * dagd_httpc_free. */
int dagd_httpc_new(dagd_httpc **out, dagd_err *err);
/* Closes the client's connections; accepts NULL. */
void dagd_httpc_free(dagd_httpc *c);

/* Performs req on c (NULL: on a client of its own for this request).
 * 0 when an answer came, whatever its status: *status gets it and body
 * (when not NULL; NULL discards it) the response body. Otherwise *status
 * is 0 and err says "METHOD URL: why", its cause the CURLcode:
 * DAGD_ETIMEDOUT past a timeout, DAGD_ELIMIT for a body over body_max,
 * DAGD_EIO for any other transport failure, DAGD_ENOMEM when libcurl
 * cannot start. */
int dagd_httpc_request(dagd_httpc *c, const dagd_httpc_req *req, long *status, dagd_buf *body, dagd_err *err);

/* libcurl's short text for the cause of a failed request. Static. */
const char *dagd_httpc_cause_text(int cause);

/* s percent-encoded for a URL (all but A-Z a-z 0-9 - . _ ~). Heap string. */
char *dagd_httpc_escape(const char *s);

#endif
