/* Private to src/operators/: the HTTP client the http operator and the
 * http and registry sensors share, its pure parts (JSON pointers, expected
 * statuses, methods, header lines, registry URLs, output text), and the
 * call of a task's Lua function shared by the branch, lua and sensor
 * operators.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_OPERATORS_HTTP_OP_H
#define DAGD_OPERATORS_HTTP_OP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "dagd/err.h"
#include "dagd/operators.h"
#include "dagd/util.h"

/* RFC 6901: the value at pointer ptr in doc ("" is doc itself; "~1" is
 * "/", "~0" is "~"; array indexes are decimal without leading zeros).
 * Borrowed; NULL when there is no such value or ptr is malformed. */
const json_t *dagd__op_json_pointer(const json_t *doc, const char *ptr);

/* Whether status is expected: expect is null (any 2xx), an integer, or an
 * array of integers. */
bool dagd__op_status_ok(const json_t *expect, long status);

/* The method of an http task: config "method" (already upper case), else
 * POST when it sends a body, GET otherwise. */
const char *dagd__op_http_method(const json_t *config);

/* "Name: value" for a request header; DAGD_EINVAL when the name is not an
 * HTTP token or the value holds a control character (a rendered template
 * must not add headers). *line is a heap string. */
int dagd__op_header_line(const char *name, const char *value, char **line, dagd_err *err);

/* The manifest URL of image:tag in an OCI registry:
 * "<scheme>://host[:port]/v2/<repo>/manifests/<tag>", plain http for a
 * loopback host (localhost, 127.x, [::1]), https otherwise. The image must
 * name its registry host. Heap string, or DAGD_EINVAL. */
int dagd__op_registry_url(const char *image, const char *tag, char **url, dagd_err *err);

/* How an output shows a JSON value: strings as they are, anything else
 * as compact JSON. Heap string. */
char *dagd__op_output_text(const json_t *v);

/* One HTTP exchange. headers: object name -> string (may be NULL). */
typedef struct dagd__http_req {
  const char *method;
  const char *url;
  const json_t *headers;
  const char *body;     /* may be NULL */
  size_t body_len;
  long timeout_ms;      /* whole exchange; 0: 30 s */
  const char *const *extra_headers; /* NULL-ended "Name: value", may be NULL */
} dagd__http_req;

/* Performs req with dagd_httpc_request (User-Agent dagd); *status gets
 * the HTTP status and body (when not NULL) the response body (at most
 * 16 MiB, else DAGD_ELIMIT). DAGD_EINVAL for a bad header; transport
 * failures as dagd_httpc_request: DAGD_EIO (cause: the CURLcode) or
 * DAGD_ETIMEDOUT, the message "METHOD URL: why". */
int dagd__op_http_do(const dagd__http_req *req, long *status, dagd_buf *body, dagd_err *err);

/* Calls the Lua function `field` of the running task with the spec's
 * context (plus task_id, try_number); *result as in
 * dagd_lua_call_task_fn. */
int dagd__op_call_fn(const dagd_op_ctx *ctx, const char *field, json_t **result, dagd_err *err);

#endif
