/* The HTTP client over libcurl (see dagd/httpc.h): the only file that
 * creates and drives a libcurl easy handle.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "dagd/httpc.h"

struct dagd_httpc {
  CURL *curl;
};

void dagd_httpc_global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
void dagd_httpc_global_cleanup(void) { curl_global_cleanup(); }

int dagd_httpc_new(dagd_httpc **out, dagd_err *err) {
  *out = NULL;
  CURL *h = curl_easy_init();
  if (h == NULL) return dagd_err_set(err, DAGD_ENOMEM, "cannot start libcurl");
  *out = dagd_malloc(sizeof(**out));
  (*out)->curl = h;
  return 0;
}

void dagd_httpc_free(dagd_httpc *c) {
  if (c == NULL) return;
  curl_easy_cleanup(c->curl);
  free(c);
}

typedef struct sink {
  dagd_buf *body;
  size_t max;
  bool too_big;
} sink;

static size_t on_body(char *p, size_t size, size_t n, void *data) {
  sink *s = data;
  if (s->body == NULL) return size * n;
  if (s->max > 0 && s->body->len + size * n > s->max) {
    s->too_big = true;
    return 0; /* libcurl stops with a write error */
  }
  dagd_buf_append(s->body, p, size * n);
  return size * n;
}

typedef struct header_hook {
  dagd_httpc_header_cb cb;
  void *data;
} header_hook;

static size_t on_header(char *p, size_t size, size_t n, void *data) {
  header_hook *h = data;
  h->cb(p, size * n, h->data);
  return size * n;
}

/* "16 MiB" rather than 16777216 bytes when it is a round number. */
static void bound_text(size_t max, char *out, size_t len) {
  if (max >= 1024 * 1024 && max % (1024 * 1024) == 0) snprintf(out, len, "%zu MiB", max / (1024 * 1024));
  else if (max >= 1024 && max % 1024 == 0) snprintf(out, len, "%zu KiB", max / 1024);
  else snprintf(out, len, "%zu bytes", max);
}

static int perform(CURL *h, const dagd_httpc_req *req, long *status, dagd_buf *body, dagd_err *err) {
  const char *method = req->method ? req->method : "GET";
  char errbuf[CURL_ERROR_SIZE] = "";
  sink s = {.body = body, .max = req->body_max};
  header_hook hook = {.cb = req->on_header, .data = req->header_data};
  struct curl_slist *hdrs = NULL;
  for (size_t i = 0; req->headers && req->headers[i]; i++) hdrs = curl_slist_append(hdrs, req->headers[i]);
  curl_easy_setopt(h, CURLOPT_URL, req->url);
  if (!req->any_scheme) curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  /* The children and dagctl are single-threaded; no SIGALRM for the
   * resolver's timeouts. */
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
  if (req->user_agent) curl_easy_setopt(h, CURLOPT_USERAGENT, req->user_agent);
  if (req->ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
  if (req->on_header) {
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hook);
  }
  if (strcmp(method, "HEAD") == 0) curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  else if (strcmp(method, "GET") != 0) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  if (req->body != NULL) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
    /* POSTFIELDS makes it a POST; keep the method asked for. */
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  }
  if (hdrs) curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  CURLcode cc = curl_easy_perform(h);
  *status = 0;
  int rc = 0;
  if (s.too_big) {
    char bound[32];
    bound_text(req->body_max, bound, sizeof(bound));
    rc = dagd_err_set(err, DAGD_ELIMIT, "%s %s: the response body is larger than %s", method, req->url, bound);
  } else if (cc != CURLE_OK) {
    rc = dagd_err_set(err, cc == CURLE_OPERATION_TIMEDOUT ? DAGD_ETIMEDOUT : DAGD_EIO, "%s %s: %s", method,
                      req->url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
  } else {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  }
  if (rc < 0 && err) err->cause = (int)cc;
  /* A kept handle must not point into this frame or at the header lines
   * (which may hold secrets) once they are gone. */
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(hdrs);
  return rc;
}

int dagd_httpc_request(dagd_httpc *c, const dagd_httpc_req *req, long *status, dagd_buf *body, dagd_err *err) {
  *status = 0;
  dagd_httpc *own = NULL;
  if (c == NULL) {
    int rc = dagd_httpc_new(&own, err);
    if (rc < 0) return rc;
    c = own;
  } else {
    curl_easy_reset(c->curl);
  }
  int rc = perform(c->curl, req, status, body, err);
  dagd_httpc_free(own);
  return rc;
}

const char *dagd_httpc_cause_text(int cause) { return curl_easy_strerror((CURLcode)cause); }

char *dagd_httpc_escape(const char *s) {
  /* The handle argument is ignored since libcurl 7.82. */
  char *e = curl_easy_escape(NULL, s, 0);
  char *out = dagd_strdup(e ? e : "");
  curl_free(e);
  return out;
}
