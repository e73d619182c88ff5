/* Response serialization: status line, framing headers and body as bytes,
 * checked so that no caller-given text can split a header (response
 * splitting) or contradict the framing the server chose.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dagd/err.h"
#include "dagd/util.h"
#include "internal.h"

static bool value_valid(const char *v) { return strpbrk(v, "\r\n") == NULL; }

static bool name_valid(const char *n) {
  if (*n == '\0') return false;
  for (; *n; n++)
    if (!dagd__is_tchar((unsigned char)*n)) return false;
  return true;
}

static int check(const dagd_http_response *r, dagd_err *err) {
  if (r->status < 100 || r->status > 599)
    return dagd_err_set(err, DAGD_EINVAL, "HTTP status %d out of range", r->status);
  if (r->content_type && !value_valid(r->content_type))
    return dagd_err_set(err, DAGD_EINVAL, "bad Content-Type value");
  for (size_t i = 0; i < r->nheaders; i++) {
    const dagd_http_header *h = &r->headers[i];
    if (h->name == NULL || !name_valid(h->name))
      return dagd_err_set(err, DAGD_EINVAL, "bad response header name");
    if (h->value == NULL || !value_valid(h->value))
      return dagd_err_set(err, DAGD_EINVAL, "bad value for response header %s", h->name);
    if (strcasecmp(h->name, "Content-Length") == 0 ||
        strcasecmp(h->name, "Transfer-Encoding") == 0 || strcasecmp(h->name, "Connection") == 0)
      return dagd_err_set(err, DAGD_EINVAL, "response header %s is set by the server", h->name);
  }
  return 0;
}

int dagd_http_response_serialize(const dagd_http_response *r, dagd_buf *out, dagd_err *err) {
  int rc = check(r, err);
  if (rc != 0) return rc;
  bool bodiless = r->status < 200 || r->status == 204 || r->status == 304;
  dagd_buf_printf(out, "HTTP/1.1 %d %s\r\n", r->status, dagd_status_reason(r->status));
  if (r->content_type) dagd_buf_printf(out, "Content-Type: %s\r\n", r->content_type);
  if (!bodiless) {
    if (r->framing == DAGD_HTTP_FRAME_LENGTH)
      dagd_buf_printf(out, "Content-Length: %zu\r\n", r->body_len);
    else if (r->framing == DAGD_HTTP_FRAME_CHUNKED)
      dagd_buf_puts(out, "Transfer-Encoding: chunked\r\n");
  }
  if (r->status >= 200) {
    bool keep = r->keep_alive && r->framing != DAGD_HTTP_FRAME_CLOSE;
    dagd_buf_puts(out, keep ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
  }
  for (size_t i = 0; i < r->nheaders; i++)
    dagd_buf_printf(out, "%s: %s\r\n", r->headers[i].name, r->headers[i].value);
  dagd_buf_puts(out, "\r\n");
  if (!bodiless && !r->head_only && r->framing == DAGD_HTTP_FRAME_LENGTH && r->body_len > 0)
    dagd_buf_append(out, r->body, r->body_len);
  return 0;
}

void dagd_http_chunk_serialize(const void *data, size_t n, dagd_buf *out) {
  if (n == 0) return;
  dagd_buf_printf(out, "%zx\r\n", n);
  dagd_buf_append(out, data, n);
  dagd_buf_puts(out, "\r\n");
}

void dagd__http_error_body(void *data, int status, const char *message, dagd_buf *body,
                           const char **content_type) {
  dagd_problem_write(body, status, message);
  *content_type = DAGD_PROBLEM_CONTENT_TYPE;
}
