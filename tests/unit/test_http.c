/* Tests for the http module: the pure parser, router and serializer over
 * byte buffers, then the server on a real libuv loop with real client
 * sockets on 127.0.0.1 (keep-alive, pipelining, deferred replies, streams,
 * aborts, timeouts, the connection limit). The loop is driven until a
 * condition holds, with a deadline; nothing sleeps.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <http_parser.h>

#include "dagd/err.h"
#include "dagd/http.h"
#include "dagd/log.h"
#include "dagd/util.h"

/* ------------------------------------------------------------------ */
/* The pure parser                                                     */

/* Feeds data in pieces of `step` bytes (0: all at once) and collects up
 * to max requests; returns the feed error (0 if none) and the status. */
typedef struct feed_result {
  dagd_http_request *reqs[8];
  int n;
  int rc;
  int status;
  int continues;
  size_t consumed;
  char msg[512];
} feed_result;

static void feed_all(const char *data, size_t len, size_t step, const dagd_http_limits *lim,
                     feed_result *r) {
  memset(r, 0, sizeof(*r));
  dagd_http_parser *p = dagd_http_parser_new(lim);
  size_t off = 0;
  while (off < len) {
    size_t end = step && off + step < len ? off + step : len;
    dagd_http_feed f;
    dagd_err err;
    dagd_err_init(&err);
    int rc = dagd_http_parser_feed(p, data + off, end - off, &f, &err);
    off += f.consumed;
    if (rc != 0) {
      r->rc = rc;
      r->status = f.status;
      snprintf(r->msg, sizeof(r->msg), "%s", err.msg);
      /* a dead parser stays dead */
      dagd_http_feed f2;
      assert_int_equal(dagd_http_parser_feed(p, "GET / HTTP/1.1\r\n\r\n", 18, &f2, NULL), rc);
      assert_int_equal(f2.status, f.status);
      break;
    }
    if (f.send_continue) r->continues++;
    if (f.request) {
      assert_true(r->n < 8);
      r->reqs[r->n++] = f.request;
    }
    if (f.consumed == 0 && !f.request && !f.send_continue) break;
  }
  r->consumed = off;
  dagd_http_parser_free(p);
}

static void feed_result_close(feed_result *r) {
  for (int i = 0; i < r->n; i++) dagd_http_request_free(r->reqs[i]);
}

static const char GET_SIMPLE[] =
    "GET /api/v1/dags?limit=5&state=a%20b HTTP/1.1\r\n"
    "Host: localhost\r\n"
    "X-Thing:   spaced value  \r\n"
    "Accept: */*\r\n"
    "\r\n";

static void test_parse_simple_get(void **state) {
  feed_result r;
  feed_all(GET_SIMPLE, strlen(GET_SIMPLE), 0, NULL, &r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.n, 1);
  dagd_http_request *q = r.reqs[0];
  assert_int_equal(q->method, DAGD_HTTP_GET);
  assert_string_equal(q->method_name, "GET");
  assert_string_equal(q->path, "/api/v1/dags");
  assert_string_equal(q->raw_path, "/api/v1/dags");
  assert_string_equal(q->query, "limit=5&state=a%20b");
  assert_string_equal(q->target, "/api/v1/dags?limit=5&state=a%20b");
  assert_int_equal(q->nheaders, 3);
  assert_string_equal(dagd_http_request_header(q, "host"), "localhost");
  assert_string_equal(dagd_http_request_header(q, "HOST"), "localhost");
  assert_string_equal(dagd_http_request_header(q, "x-thing"), "spaced value");
  assert_null(dagd_http_request_header(q, "Content-Length"));
  assert_true(q->keep_alive);
  assert_int_equal(q->version_minor, 1);
  assert_int_equal(q->body_len, 0);
  assert_string_equal(q->body, "");
  assert_int_equal(r.consumed, strlen(GET_SIMPLE));
  feed_result_close(&r);
}

static void test_parse_post_body(void **state) {
  const char req[] =
      "POST /api/v1/events HTTP/1.1\r\nContent-Type: application/json\r\n"
      "Content-Length: 13\r\n\r\n{\"name\":\"x\"}\n";
  feed_result r;
  feed_all(req, strlen(req), 0, NULL, &r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.reqs[0]->method, DAGD_HTTP_POST);
  assert_int_equal(r.reqs[0]->body_len, 13);
  assert_string_equal(r.reqs[0]->body, "{\"name\":\"x\"}\n");
  feed_result_close(&r);
}

static const char CHUNKED[] =
    "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";

static void test_parse_chunked(void **state) {
  feed_result r;
  feed_all(CHUNKED, strlen(CHUNKED), 0, NULL, &r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.reqs[0]->method, DAGD_HTTP_PUT);
  assert_int_equal(r.reqs[0]->body_len, 11);
  assert_string_equal(r.reqs[0]->body, "hello world");
  /* trailers are not headers */
  assert_null(dagd_http_request_header(r.reqs[0], "X-Trailer"));
  feed_result_close(&r);
}

static const char PIPELINED[] =
    "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
    "POST /two HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
    "DELETE /three%20x HTTP/1.1\r\nConnection: close\r\n\r\n"
    "GET /ignored HTTP/1.1\r\n\r\n";

static void check_pipelined(feed_result *r) {
  assert_int_equal(r->rc, 0);
  assert_int_equal(r->n, 3);
  assert_string_equal(r->reqs[0]->path, "/one");
  assert_true(r->reqs[0]->keep_alive);
  assert_string_equal(r->reqs[1]->path, "/two");
  assert_string_equal(r->reqs[1]->body, "abc");
  assert_int_equal(r->reqs[2]->method, DAGD_HTTP_DELETE);
  assert_string_equal(r->reqs[2]->path, "/three x");
  assert_false(r->reqs[2]->keep_alive);
  /* after "Connection: close" the rest is consumed and ignored */
  assert_int_equal(r->consumed, strlen(PIPELINED));
}

static void test_parse_pipelined(void **state) {
  feed_result r;
  feed_all(PIPELINED, strlen(PIPELINED), 0, NULL, &r);
  check_pipelined(&r);
  feed_result_close(&r);
}

static void test_parse_byte_by_byte(void **state) {
  feed_result r;
  feed_all(PIPELINED, strlen(PIPELINED), 1, NULL, &r);
  check_pipelined(&r);
  feed_result_close(&r);

  feed_all(CHUNKED, strlen(CHUNKED), 1, NULL, &r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.reqs[0]->body, "hello world");
  feed_result_close(&r);

  feed_all(GET_SIMPLE, strlen(GET_SIMPLE), 1, NULL, &r);
  assert_int_equal(r.n, 1);
  assert_string_equal(dagd_http_request_header(r.reqs[0], "X-THING"), "spaced value");
  assert_string_equal(r.reqs[0]->query, "limit=5&state=a%20b");
  feed_result_close(&r);
}

static void test_parse_header_limit_431(void **state) {
  dagd_http_limits lim = {.max_header_bytes = 1024};
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_buf_puts(&b, "GET / HTTP/1.1\r\nX-Big: ");
  for (int i = 0; i < 2000; i++) dagd_buf_putc(&b, 'a');
  dagd_buf_puts(&b, "\r\n\r\n");
  feed_result r;
  feed_all(b.data, b.len, 0, &lim, &r);
  assert_int_equal(r.rc, DAGD_ELIMIT);
  assert_int_equal(r.status, 431);
  assert_int_equal(r.n, 0);
  /* fed a byte at a time, it fails as soon as the limit is crossed */
  feed_all(b.data, b.len, 1, &lim, &r);
  assert_int_equal(r.status, 431);
  assert_true(r.consumed < 1100);

  /* the same bytes are fine under the default 16 KiB */
  feed_all(b.data, b.len, 0, NULL, &r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.n, 1);
  assert_int_equal(strlen(dagd_http_request_header(r.reqs[0], "x-big")), 2000);
  feed_result_close(&r);

  /* too many header lines */
  dagd_buf_reset(&b);
  dagd_buf_puts(&b, "GET / HTTP/1.1\r\n");
  for (int i = 0; i < DAGD_HTTP_MAX_HEADERS + 1; i++) dagd_buf_printf(&b, "H%d: v\r\n", i);
  dagd_buf_puts(&b, "\r\n");
  feed_all(b.data, b.len, 0, NULL, &r);
  assert_int_equal(r.status, 431);
  dagd_buf_close(&b);
}

static void test_parse_body_limit_413(void **state) {
  dagd_http_limits lim = {.max_body_bytes = 10};
  /* a declared length over the limit fails at the end of the headers,
   * before any body byte arrives */
  const char big[] = "POST /x HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
  feed_result r;
  feed_all(big, strlen(big), 0, &lim, &r);
  assert_int_equal(r.rc, DAGD_ELIMIT);
  assert_int_equal(r.status, 413);
  const char fits[] = "POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789";
  feed_all(fits, strlen(fits), 0, &lim, &r);
  assert_int_equal(r.n, 1);
  feed_result_close(&r);
  /* a chunked body growing past the limit */
  const char chunked[] =
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n";
  feed_all(chunked, strlen(chunked), 0, &lim, &r);
  assert_int_equal(r.status, 413);
  feed_all(chunked, strlen(chunked), 1, &lim, &r);
  assert_int_equal(r.status, 413);
}

static void expect_status(const char *raw, int status) {
  feed_result r;
  feed_all(raw, strlen(raw), 0, NULL, &r);
  if (r.status != status) fail_msg("%s: status %d, want %d", raw, r.status, status);
  assert_true(r.rc < 0);
  assert_true(r.msg[0] != '\0');
  feed_result_close(&r);
}

static void test_parse_bad_requests(void **state) {
  expect_status("GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400);
  expect_status("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400);
  expect_status("get / HTTP/1.1\r\n\r\n", 400);
  expect_status("GET /a%zz HTTP/1.1\r\n\r\n", 400);
  expect_status("GET /a%00b HTTP/1.1\r\n\r\n", 400);
  expect_status("GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400);
  expect_status("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400);
  expect_status("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
  expect_status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400);
  expect_status("GET nowhere HTTP/1.1\r\n\r\n", 400);
  expect_status("BREW /pot HTTP/1.1\r\n\r\n", 501);
  expect_status("PROPFIND / HTTP/1.1\r\n\r\n", 501);
  expect_status("CONNECT example.com:443 HTTP/1.1\r\n\r\n", 501);
  expect_status("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
  expect_status("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
  expect_status("POST / HTTP/1.1\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nx", 417);
}

static void test_parse_misc_forms(void **state) {
  /* absolute-form target, HTTP/1.0 without keep-alive, leading CRLF */
  dagd_http_request *q;
  int status = 0;
  const char abs[] = "\r\nGET http://h:8787/api/v1/dags?x=1 HTTP/1.0\r\n\r\n";
  assert_int_equal(dagd_http_request_parse(abs, strlen(abs), NULL, &q, &status, NULL), 0);
  assert_int_equal(status, 200);
  assert_string_equal(q->path, "/api/v1/dags");
  assert_string_equal(q->query, "x=1");
  assert_int_equal(q->version_minor, 0);
  assert_false(q->keep_alive);
  dagd_http_request_free(q);

  const char ka10[] = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
  assert_int_equal(dagd_http_request_parse(ka10, strlen(ka10), NULL, &q, NULL, NULL), 0);
  assert_true(q->keep_alive);
  dagd_http_request_free(q);

  /* an upgrade is not taken: the request is served, then the connection ends */
  const char up[] = "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  assert_int_equal(dagd_http_request_parse(up, strlen(up), NULL, &q, NULL, NULL), 0);
  assert_false(q->keep_alive);
  dagd_http_request_free(q);

  dagd_err err;
  dagd_err_init(&err);
  const char partial[] = "GET / HTTP/1.1\r\nHost: x\r\n";
  assert_int_equal(dagd_http_request_parse(partial, strlen(partial), NULL, &q, &status, &err),
                   DAGD_EINVAL);
  assert_null(q);
  assert_int_equal(status, 400);
}

static void test_parse_expect_continue(void **state) {
  dagd_http_parser *p = dagd_http_parser_new(NULL);
  const char head[] = "POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
  dagd_http_feed f;
  assert_int_equal(dagd_http_parser_feed(p, head, strlen(head), &f, NULL), 0);
  assert_true(f.send_continue);
  assert_null(f.request);
  assert_int_equal(dagd_http_parser_phase(p), DAGD_HTTP_PARSE_BODY);
  size_t rest = strlen(head) - f.consumed;
  assert_true(rest <= 1); /* at most the final LF is left for the next call */
  char buf[64];
  memcpy(buf, head + f.consumed, rest);
  memcpy(buf + rest, "hello", 5);
  assert_int_equal(dagd_http_parser_feed(p, buf, rest + 5, &f, NULL), 0);
  assert_false(f.send_continue);
  assert_non_null(f.request);
  assert_string_equal(f.request->body, "hello");
  dagd_http_request_free(f.request);
  assert_int_equal(dagd_http_parser_phase(p), DAGD_HTTP_PARSE_IDLE);
  dagd_http_parser_free(p);

  /* nothing to wait for without a body, or from an HTTP/1.0 client */
  feed_result r;
  const char nobody[] = "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n";
  feed_all(nobody, strlen(nobody), 0, NULL, &r);
  assert_int_equal(r.continues, 0);
  assert_int_equal(r.n, 1);
  feed_result_close(&r);
}

static void test_url_decode_and_query(void **state) {
  char out[64];
  size_t n;
  assert_int_equal(dagd_http_url_decode("a%20b+c%2F", 10, false, out, &n), 0);
  assert_string_equal(out, "a b+c/");
  assert_int_equal(n, 6);
  assert_int_equal(dagd_http_url_decode("a+b", 3, true, out, NULL), 0);
  assert_string_equal(out, "a b");
  assert_int_equal(dagd_http_url_decode("%4", 2, false, out, NULL), DAGD_ESYNTAX);
  assert_int_equal(dagd_http_url_decode("%", 1, false, out, NULL), DAGD_ESYNTAX);
  assert_int_equal(dagd_http_url_decode("%g0", 3, false, out, NULL), DAGD_ESYNTAX);
  assert_int_equal(dagd_http_url_decode("%00", 3, false, out, NULL), DAGD_ESYNTAX);

  const char raw[] =
      "GET /x?limit=25&state=up+for%20retry&flag&bad=%zz&limit=99&na%6De=v&e= HTTP/1.1\r\n\r\n";
  dagd_http_request *q;
  assert_int_equal(dagd_http_request_parse(raw, strlen(raw), NULL, &q, NULL, NULL), 0);
  char buf[32];
  size_t len;
  assert_int_equal(dagd_http_query_get(q, "limit", buf, sizeof(buf), &len), 0);
  assert_string_equal(buf, "25"); /* the first occurrence wins */
  assert_int_equal(len, 2);
  assert_int_equal(dagd_http_query_get(q, "state", buf, sizeof(buf), NULL), 0);
  assert_string_equal(buf, "up for retry");
  assert_int_equal(dagd_http_query_get(q, "flag", buf, sizeof(buf), NULL), 0);
  assert_string_equal(buf, "");
  assert_int_equal(dagd_http_query_get(q, "e", buf, sizeof(buf), NULL), 0);
  assert_string_equal(buf, "");
  assert_int_equal(dagd_http_query_get(q, "name", buf, sizeof(buf), NULL), 0);
  assert_string_equal(buf, "v");
  assert_int_equal(dagd_http_query_get(q, "bad", buf, sizeof(buf), NULL), DAGD_ESYNTAX);
  assert_int_equal(dagd_http_query_get(q, "offset", buf, sizeof(buf), NULL), DAGD_ENOENT);
  assert_int_equal(dagd_http_query_get(q, "state", buf, 4, NULL), DAGD_ERANGE);
  dagd_http_request_free(q);
}

static void test_path_decoding(void **state) {
  const char raw[] = "GET /dags/my%20dag/runs/a%2Fb HTTP/1.1\r\n\r\n";
  dagd_http_request *q;
  assert_int_equal(dagd_http_request_parse(raw, strlen(raw), NULL, &q, NULL, NULL), 0);
  assert_string_equal(q->raw_path, "/dags/my%20dag/runs/a%2Fb");
  assert_string_equal(q->path, "/dags/my dag/runs/a/b");
  dagd_http_request_free(q);
}

/* ------------------------------------------------------------------ */
/* The router                                                          */

static int hits[8];
static void h0(dagd_http_exchange *x, void *data) { hits[0]++; }
static void h1(dagd_http_exchange *x, void *data) { hits[1]++; }
static void h2(dagd_http_exchange *x, void *data) { hits[2]++; }
static void h3(dagd_http_exchange *x, void *data) { hits[3]++; }

static dagd_http_request *req_for(const char *method, const char *target) {
  char raw[512];
  snprintf(raw, sizeof(raw), "%s %s HTTP/1.1\r\n\r\n", method, target);
  dagd_http_request *q;
  assert_int_equal(dagd_http_request_parse(raw, strlen(raw), NULL, &q, NULL, NULL), 0);
  return q;
}

static void test_router(void **state) {
  dagd_http_router *r = dagd_http_router_new();
  dagd_err err;
  dagd_err_init(&err);
  int tag = 7;
  const char *runs = "/api/v1/dags/{dag_id}/dagRuns/{run_id}", *dag = "/api/v1/dags/{dag_id}";
  assert_int_equal(dagd_http_router_add(r, DAGD_HTTP_GET, runs, h0, &tag, &err), 0);
  assert_int_equal(dagd_http_router_add(r, DAGD_HTTP_GET, dag, h1, NULL, &err), 0);
  assert_int_equal(dagd_http_router_add(r, DAGD_HTTP_PATCH, dag, h1, NULL, &err), 0);
  assert_int_equal(dagd_http_router_add(r, DAGD_HTTP_GET, "/api/v1/dags/special", h2, 0, &err), 0);
  assert_int_equal(dagd_http_router_add(r, DAGD_HTTP_POST, "/api/v1/events", h3, NULL, &err), 0);
  assert_int_equal(dagd_http_router_add(r, DAGD_HTTP_GET, "/", h3, NULL, &err), 0);

  /* bad patterns, duplicates */
  assert_int_equal(dagd_http_router_add(r, DAGD_HTTP_GET, "api", h0, NULL, NULL), DAGD_EINVAL);
  assert_int_equal(dagd_http_router_add(r, DAGD_HTTP_GET, "/a/x{y}", h0, NULL, NULL), DAGD_EINVAL);
  assert_int_equal(dagd_http_router_add(r, DAGD_HTTP_GET, "/a/{}", h0, NULL, NULL), DAGD_EINVAL);
  assert_int_equal(dagd_http_router_add(r, DAGD_HTTP_GET, "/a/{x}/{x}", h0, 0, 0), DAGD_EINVAL);
  assert_int_equal(dagd_http_router_add(r, DAGD_HTTP_GET, "/a/%20", h0, NULL, NULL), DAGD_EINVAL);
  dagd_err_init(&err);
  assert_int_equal(dagd_http_router_add(r, DAGD_HTTP_GET, dag, h0, NULL, &err), DAGD_EEXIST);
  assert_non_null(strstr(err.msg, "already"));

  dagd_http_route rt;
  dagd_http_request *q = req_for("GET", "/api/v1/dags/etl%20daily/dagRuns/manual__2024?x=1");
  assert_int_equal(dagd_http_router_match(r, q, &rt), 0);
  assert_int_equal(rt.status, 200);
  assert_ptr_equal(rt.cb, h0);
  assert_ptr_equal(rt.data, &tag);
  assert_int_equal(q->nparams, 2);
  assert_string_equal(dagd_http_request_param(q, "dag_id"), "etl daily");
  assert_string_equal(dagd_http_request_param(q, "run_id"), "manual__2024");
  assert_null(dagd_http_request_param(q, "task_id"));
  dagd_http_request_free(q);

  /* an encoded '/' never separates segments, and never lands in a parameter */
  q = req_for("GET", "/api/v1/dags/a%2Fb");
  assert_int_equal(dagd_http_router_match(r, q, &rt), DAGD_ENOENT);
  assert_int_equal(rt.status, 404);
  dagd_http_request_free(q);
  q = req_for("GET", "/api/v1/dags/a%2Fb/dagRuns/r");
  assert_int_equal(dagd_http_router_match(r, q, &rt), DAGD_ENOENT);
  assert_int_equal(rt.status, 404);
  dagd_http_request_free(q);
  /* an empty parameter does not match */
  q = req_for("GET", "/api/v1/dags/");
  assert_int_equal(dagd_http_router_match(r, q, &rt), DAGD_ENOENT);
  dagd_http_request_free(q);

  /* a literal wins over a parameter; encoded literals still match */
  q = req_for("GET", "/api/v1/dags/special");
  assert_int_equal(dagd_http_router_match(r, q, &rt), 0);
  assert_ptr_equal(rt.cb, h2);
  assert_int_equal(q->nparams, 0);
  dagd_http_request_free(q);
  q = req_for("GET", "/api/v1/d%61gs/other");
  assert_int_equal(dagd_http_router_match(r, q, &rt), 0);
  assert_ptr_equal(rt.cb, h1);
  assert_string_equal(dagd_http_request_param(q, "dag_id"), "other");
  dagd_http_request_free(q);

  /* PATCH on the literal path falls back to the parameter route */
  q = req_for("PATCH", "/api/v1/dags/special");
  assert_int_equal(dagd_http_router_match(r, q, &rt), 0);
  assert_ptr_equal(rt.cb, h1);
  dagd_http_request_free(q);

  /* HEAD is answered by GET routes */
  q = req_for("HEAD", "/api/v1/dags/x");
  assert_int_equal(dagd_http_router_match(r, q, &rt), 0);
  assert_ptr_equal(rt.cb, h1);
  dagd_http_request_free(q);

  /* 405 with Allow, 404 */
  q = req_for("DELETE", "/api/v1/dags/x");
  assert_int_equal(dagd_http_router_match(r, q, &rt), DAGD_ENOENT);
  assert_int_equal(rt.status, 405);
  assert_string_equal(rt.allow, "GET, HEAD, PATCH");
  dagd_http_request_free(q);
  q = req_for("GET", "/api/v1/events");
  assert_int_equal(dagd_http_router_match(r, q, &rt), DAGD_ENOENT);
  assert_int_equal(rt.status, 405);
  assert_string_equal(rt.allow, "POST");
  dagd_http_request_free(q);
  q = req_for("GET", "/api/v2/dags");
  assert_int_equal(dagd_http_router_match(r, q, &rt), DAGD_ENOENT);
  assert_int_equal(rt.status, 404);
  dagd_http_request_free(q);
  q = req_for("GET", "/api/v1/dags/x/");
  assert_int_equal(dagd_http_router_match(r, q, &rt), DAGD_ENOENT);
  assert_int_equal(rt.status, 404);
  dagd_http_request_free(q);
  q = req_for("GET", "/");
  assert_int_equal(dagd_http_router_match(r, q, &rt), 0);
  assert_ptr_equal(rt.cb, h3);
  dagd_http_request_free(q);

  dagd_http_router_free(r);
  dagd_http_router_free(NULL);
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */

static void test_response_serialize(void **state) {
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_http_header extra[] = {{"X-Request-Id", "42"}, {"Cache-Control", "no-store"}};
  dagd_http_response r = {.status = 200, .content_type = "application/json", .body = "{}",
                          .body_len = 2, .headers = extra, .nheaders = 2, .keep_alive = true};
  assert_int_equal(dagd_http_response_serialize(&r, &b, NULL), 0);
  assert_string_equal(b.data,
                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                      "Connection: keep-alive\r\nX-Request-Id: 42\r\nCache-Control: no-store\r\n"
                      "\r\n{}");

  /* HEAD: the length stays, the body goes */
  dagd_buf_reset(&b);
  r.head_only = true;
  r.keep_alive = false;
  r.nheaders = 0;
  assert_int_equal(dagd_http_response_serialize(&r, &b, NULL), 0);
  assert_string_equal(b.data,
                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                      "Connection: close\r\n\r\n");

  /* 204: no body, no length */
  dagd_buf_reset(&b);
  r = (dagd_http_response){.status = 204, .body = "x", .body_len = 1, .keep_alive = true};
  assert_int_equal(dagd_http_response_serialize(&r, &b, NULL), 0);
  assert_string_equal(b.data, "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");

  /* a chunked stream head, then chunks */
  dagd_buf_reset(&b);
  r = (dagd_http_response){.status = 200, .content_type = "text/event-stream",
                           .keep_alive = true, .framing = DAGD_HTTP_FRAME_CHUNKED};
  assert_int_equal(dagd_http_response_serialize(&r, &b, NULL), 0);
  dagd_http_chunk_serialize("data: hi\n\n", 10, &b);
  dagd_http_chunk_serialize("", 0, &b);
  dagd_buf_puts(&b, DAGD_HTTP_CHUNKED_END);
  assert_string_equal(b.data,
                      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                      "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
                      "a\r\ndata: hi\n\n\r\n0\r\n\r\n");

  /* refused: splitting, framing headers, bad names, bad status; out unchanged */
  dagd_buf_reset(&b);
  dagd_http_header split[] = {{"X-A", "v\r\nSet-Cookie: x=1"}};
  dagd_http_header framing[] = {{"content-length", "5"}};
  dagd_http_header badname[] = {{"X A", "v"}};
  dagd_err err;
  dagd_err_init(&err);
  r = (dagd_http_response){.status = 200, .headers = split, .nheaders = 1};
  assert_int_equal(dagd_http_response_serialize(&r, &b, &err), DAGD_EINVAL);
  assert_true(err.msg[0] != '\0');
  r.headers = framing;
  assert_int_equal(dagd_http_response_serialize(&r, &b, NULL), DAGD_EINVAL);
  r.headers = badname;
  assert_int_equal(dagd_http_response_serialize(&r, &b, NULL), DAGD_EINVAL);
  r = (dagd_http_response){.status = 99};
  assert_int_equal(dagd_http_response_serialize(&r, &b, NULL), DAGD_EINVAL);
  r = (dagd_http_response){.status = 200, .content_type = "text/plain\r\nX: y"};
  assert_int_equal(dagd_http_response_serialize(&r, &b, NULL), DAGD_EINVAL);
  assert_int_equal(b.len, 0);

  assert_string_equal(dagd_status_reason(431), "Request Header Fields Too Large");
  assert_string_equal(dagd_status_reason(599), "Unknown");
  dagd_buf_close(&b);
}

/* ------------------------------------------------------------------ */
/* The server on a real loop                                           */

typedef struct fixture fixture;

/* A client socket watched by the loop, so the loop runs while we wait. */
typedef struct client {
  fixture *f;
  int fd;
  uv_poll_t poll;
  dagd_buf got;
  bool eof;
  bool closed;
} client;

#define MAX_CLIENTS 1100

struct fixture {
  uv_loop_t loop;
  uv_timer_t tick;     /* wakes the loop while a test waits for a condition */
  uv_timer_t later;    /* deferred replies and stream writes */
  dagd_http_router *router;
  dagd_http_server *server;
  bool server_closed;
  client *clients[MAX_CLIENTS];
  int nclients;
  dagd_http_exchange *pending; /* a long-poll or stream in progress */
  int aborts;
  int stream_step;
  int late_reply_rc;
  int flood_rc;
  int flood_writes;
  char peer[64];
  bool loopback;
};

/* Runs the loop until cond holds; fails after 10 s. */
#define RUN_UNTIL(f, cond)                                                        \
  do {                                                                            \
    uint64_t deadline_ = uv_hrtime() + 10ull * 1000000000ull;                     \
    while (!(cond)) {                                                             \
      if (uv_hrtime() > deadline_) fail_msg("timed out waiting for: %s", #cond);  \
      uv_timer_start(&(f)->tick, on_tick, 20, 0);                                 \
      uv_run(&(f)->loop, UV_RUN_ONCE);                                            \
    }                                                                             \
  } while (0)

static void on_tick(uv_timer_t *h) {}

static void on_client_readable(uv_poll_t *h, int status, int events) {
  client *c = h->data;
  char buf[16384];
  for (;;) {
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
    if (n > 0) {
      dagd_buf_append(&c->got, buf, (size_t)n);
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      c->eof = true;
      uv_poll_stop(h);
    }
    return;
  }
}

static client *client_connect(fixture *f, int port) {
  client *c = calloc(1, sizeof(*c));
  c->f = f;
  dagd_buf_init(&c->got);
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(c->fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* the kernel completes the handshake from the listen backlog */
  assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  assert_int_equal(uv_poll_init(&f->loop, &c->poll, c->fd), 0);
  c->poll.data = c;
  uv_poll_start(&c->poll, UV_READABLE, on_client_readable);
  assert_true(f->nclients < MAX_CLIENTS);
  f->clients[f->nclients++] = c;
  return c;
}

static void client_send(client *c, const char *s) {
  size_t n = strlen(s);
  assert_int_equal(send(c->fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Sends all of len bytes, running the loop while the socket is full. */
static void client_send_all(client *c, const char *s, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = send(c->fd, s + off, len - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += (size_t)n;
      continue;
    }
    assert_true(n < 0 && (errno == EAGAIN || errno == EINTR));
    uv_timer_start(&c->f->tick, on_tick, 5, 0);
    uv_run(&c->f->loop, UV_RUN_ONCE);
  }
}

static void on_client_closed(uv_handle_t *h) {
  client *c = h->data;
  close(c->fd);
  dagd_buf_close(&c->got);
  free(c);
}

/* Closes the socket now (the server sees EOF); the record goes at teardown. */
static void client_hangup(client *c) {
  shutdown(c->fd, SHUT_RDWR);
  uv_poll_stop(&c->poll);
  c->eof = true;
}

/* A response as a client sees it, parsed with http-parser. */
typedef struct resp {
  int status;
  char body[4096];
  size_t body_len;
  char connection[32];
  char allow[64];
  char content_type[64];
  char transfer_encoding[32];
} resp;

typedef struct resp_parse {
  resp *out;
  int max, n;
  char field[64];
} resp_parse;

static int rp_begin(http_parser *p) {
  resp_parse *rp = p->data;
  if (rp->n < rp->max) memset(&rp->out[rp->n], 0, sizeof(resp));
  return 0;
}

static int rp_field(http_parser *p, const char *at, size_t n) {
  resp_parse *rp = p->data;
  snprintf(rp->field, sizeof(rp->field), "%.*s", (int)n, at);
  return 0;
}

static int rp_value(http_parser *p, const char *at, size_t n) {
  resp_parse *rp = p->data;
  if (rp->n >= rp->max) return 0;
  resp *r = &rp->out[rp->n];
  char *dst = NULL;
  size_t cap = 0;
  if (strcasecmp(rp->field, "Connection") == 0) dst = r->connection, cap = sizeof(r->connection);
  if (strcasecmp(rp->field, "Allow") == 0) dst = r->allow, cap = sizeof(r->allow);
  if (strcasecmp(rp->field, "Content-Type") == 0)
    dst = r->content_type, cap = sizeof(r->content_type);
  if (strcasecmp(rp->field, "Transfer-Encoding") == 0)
    dst = r->transfer_encoding, cap = sizeof(r->transfer_encoding);
  if (dst) snprintf(dst, cap, "%.*s", (int)n, at);
  return 0;
}

static int rp_body(http_parser *p, const char *at, size_t n) {
  resp_parse *rp = p->data;
  if (rp->n >= rp->max) return 0;
  resp *r = &rp->out[rp->n];
  if (r->body_len + n < sizeof(r->body)) {
    memcpy(r->body + r->body_len, at, n);
    r->body_len += n;
  }
  return 0;
}

static int rp_complete(http_parser *p) {
  resp_parse *rp = p->data;
  if (rp->n < rp->max) rp->out[rp->n].status = (int)p->status_code;
  rp->n++;
  return 0;
}

/* The complete responses received so far (at most max into out). */
static int responses(const client *c, resp *out, int max) {
  static const http_parser_settings s = {.on_message_begin = rp_begin,
                                         .on_header_field = rp_field,
                                         .on_header_value = rp_value,
                                         .on_body = rp_body,
                                         .on_message_complete = rp_complete};
  resp_parse rp = {.out = out, .max = max};
  http_parser p;
  http_parser_init(&p, HTTP_RESPONSE);
  p.data = &rp;
  size_t n = http_parser_execute(&p, &s, c->got.data ? c->got.data : "", c->got.len);
  if (n == c->got.len && c->eof) http_parser_execute(&p, &s, NULL, 0);
  return rp.n;
}

static int count_responses(const client *c) {
  resp tmp[1];
  return responses(c, tmp, 0);
}

/* --- handlers --- */

static void h_hello(dagd_http_exchange *x, void *data) {
  fixture *f = data;
  snprintf(f->peer, sizeof(f->peer), "%s", dagd_http_exchange_peer(x));
  f->loopback = dagd_http_exchange_peer_is_loopback(x);
  dagd_http_header h = {"X-Hello", "1"};
  assert_int_equal(dagd_http_reply(x, 200, "text/plain", "hello", 5, &h, 1), 0);
}

static void h_echo(dagd_http_exchange *x, void *data) {
  const dagd_http_request *q = dagd_http_exchange_request(x);
  char *copy = dagd_http_exchange_alloc(x, q->body_len + 1);
  memcpy(copy, q->body, q->body_len);
  dagd_http_reply(x, 200, dagd_http_request_header(q, "Content-Type"), copy, q->body_len, NULL, 0);
}

static void h_params(dagd_http_exchange *x, void *data) {
  char body[256];
  int n = snprintf(body, sizeof(body), "%s|%s", dagd_http_exchange_param(x, "dag_id"),
                   dagd_http_exchange_param(x, "run_id"));
  dagd_http_reply(x, 200, "text/plain", body, (size_t)n, NULL, 0);
}

static void on_abort(dagd_http_exchange *x, void *data) {
  fixture *f = data;
  assert_ptr_equal(x, f->pending);
  f->aborts++;
  f->pending = NULL;
  uv_timer_stop(&f->later);
  /* ending it from inside the abort callback is refused harmlessly */
  assert_int_equal(dagd_http_reply(x, 200, NULL, NULL, 0, NULL, 0), DAGD_EIO);
}

static void on_later_reply(uv_timer_t *h) {
  fixture *f = h->data;
  dagd_http_exchange *x = f->pending;
  f->pending = NULL;
  f->late_reply_rc = dagd_http_reply(x, 200, "text/plain", "waited", 6, NULL, 0);
}

/* A long-poll: answered from a timer. */
static void h_wait(dagd_http_exchange *x, void *data) {
  fixture *f = data;
  assert_null(f->pending);
  f->pending = x;
  dagd_http_exchange_on_abort(x, on_abort, f);
  uv_timer_start(&f->later, on_later_reply, 30, 0);
}

/* Never answered: only the client going away ends it. */
static void h_hang(dagd_http_exchange *x, void *data) {
  fixture *f = data;
  f->pending = x;
  dagd_http_exchange_on_abort(x, on_abort, f);
}

/* Never answered and no abort callback: the exchange is detached when the
 * client goes, and the late reply frees it. */
static void h_detach(dagd_http_exchange *x, void *data) {
  fixture *f = data;
  f->pending = x;
}

static void on_stream_step(uv_timer_t *h) {
  fixture *f = h->data;
  char ev[64];
  if (f->stream_step < 3) {
    int n = snprintf(ev, sizeof(ev), "data: %d\n\n", ++f->stream_step);
    assert_int_equal(dagd_http_stream_write(f->pending, ev, (size_t)n), 0);
    return;
  }
  uv_timer_stop(h);
  dagd_http_exchange *x = f->pending;
  f->pending = NULL;
  assert_int_equal(dagd_http_stream_end(x), 0);
}

static void h_events(dagd_http_exchange *x, void *data) {
  fixture *f = data;
  dagd_http_header h = {"Cache-Control", "no-cache"};
  assert_int_equal(dagd_http_stream_begin(x, 200, "text/event-stream", &h, 1), 0);
  f->pending = x;
  f->stream_step = 0;
  dagd_http_exchange_on_abort(x, on_abort, f);
  uv_timer_start(&f->later, on_stream_step, 5, 5);
}

/* Streams to a client that never reads until the server gives up. */
static void h_flood(dagd_http_exchange *x, void *data) {
  fixture *f = data;
  assert_int_equal(dagd_http_stream_begin(x, 200, "application/octet-stream", NULL, 0), 0);
  f->pending = x;
  dagd_http_exchange_on_abort(x, on_abort, f);
  size_t n = 256 * 1024;
  char *chunk = calloc(1, n);
  int rc;
  while ((rc = dagd_http_stream_write(x, chunk, n)) == 0 && f->flood_writes < 4000)
    f->flood_writes++;
  free(chunk);
  f->flood_rc = rc;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  uv_loop_init(&f->loop);
  uv_timer_init(&f->loop, &f->tick);
  uv_timer_init(&f->loop, &f->later);
  f->later.data = f;
  f->router = dagd_http_router_new();
  struct {
    dagd_http_method m;
    const char *pattern;
    dagd_http_handler_cb cb;
  } routes[] = {
      {DAGD_HTTP_GET, "/hello", h_hello},
      {DAGD_HTTP_POST, "/echo", h_echo},
      {DAGD_HTTP_GET, "/api/v1/dags/{dag_id}/dagRuns/{run_id}", h_params},
      {DAGD_HTTP_GET, "/wait", h_wait},
      {DAGD_HTTP_GET, "/hang", h_hang},
      {DAGD_HTTP_GET, "/detach", h_detach},
      {DAGD_HTTP_GET, "/events", h_events},
      {DAGD_HTTP_GET, "/flood", h_flood},
  };
  for (size_t i = 0; i < DAGD_ARRAY_LEN(routes); i++)
    assert_int_equal(dagd_http_router_add(f->router, routes[i].m, routes[i].pattern, routes[i].cb,
                                          f, NULL), 0);
  *state = f;
  return 0;
}

static void start_server(fixture *f, const dagd_http_server_opts *opts) {
  f->server = dagd_http_server_new(&f->loop, opts, f->router);
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_http_server_listen(f->server, "127.0.0.1:0", &err) != 0) fail_msg("listen: %s", err.msg);
  assert_true(dagd_http_server_port(f->server) > 0);
}

static void on_server_closed(void *data) {
  fixture *f = data;
  f->server_closed = true;
}

static int teardown(void **state) {
  fixture *f = *state;
  for (int i = 0; i < f->nclients; i++)
    uv_close((uv_handle_t *)&f->clients[i]->poll, on_client_closed);
  if (f->server) {
    dagd_http_server_close(f->server, on_server_closed, f);
    RUN_UNTIL(f, f->server_closed);
  }
  uv_close((uv_handle_t *)&f->tick, NULL);
  uv_close((uv_handle_t *)&f->later, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0); /* no handle leaked */
  dagd_http_router_free(f->router);
  free(f);
  return 0;
}

static void test_server_request_response(void **state) {
  fixture *f = *state;
  start_server(f, NULL);
  int port = dagd_http_server_port(f->server);
  client *c = client_connect(f, port);
  client_send(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  RUN_UNTIL(f, count_responses(c) == 1);
  resp r[1];
  responses(c, r, 1);
  assert_int_equal(r[0].status, 200);
  assert_string_equal(r[0].body, "hello");
  assert_string_equal(r[0].content_type, "text/plain");
  assert_string_equal(r[0].connection, "keep-alive");
  assert_string_equal(f->peer, "127.0.0.1");
  assert_true(f->loopback);

  client *d = client_connect(f, port);
  client_send(d,
              "GET /api/v1/dags/my%20dag/dagRuns/r%3A1 HTTP/1.1\r\n\r\n"
              "GET /nope HTTP/1.1\r\n\r\n"
              "DELETE /hello HTTP/1.1\r\n\r\n"
              "POST /echo HTTP/1.1\r\nContent-Type: text/x\r\nContent-Length: 4\r\n"
              "Connection: close\r\n\r\nping");
  RUN_UNTIL(f, d->eof);
  resp rs[4];
  assert_int_equal(responses(d, rs, 4), 4);
  assert_string_equal(rs[0].body, "my dag|r:1");
  assert_int_equal(rs[1].status, 404);
  assert_string_equal(rs[1].content_type, "application/problem+json");
  assert_non_null(strstr(rs[1].body, "\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404"));
  assert_int_equal(rs[2].status, 405);
  assert_string_equal(rs[2].allow, "GET, HEAD");
  assert_int_equal(rs[3].status, 200);
  assert_string_equal(rs[3].body, "ping");
  assert_string_equal(rs[3].content_type, "text/x");
  assert_string_equal(rs[3].connection, "close");
  /* the server lingers on a closed connection until the client closes too */
  client_hangup(d);
  RUN_UNTIL(f, dagd_http_server_connections(f->server) == 1);
}

static void test_server_keep_alive(void **state) {
  fixture *f = *state;
  start_server(f, NULL);
  client *c = client_connect(f, dagd_http_server_port(f->server));
  client_send(c, "GET /hello HTTP/1.1\r\n\r\n");
  RUN_UNTIL(f, count_responses(c) == 1);
  client_send(c, "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nagain");
  RUN_UNTIL(f, count_responses(c) == 2);
  resp r[2];
  responses(c, r, 2);
  assert_string_equal(r[0].body, "hello");
  assert_string_equal(r[1].body, "again");
  assert_false(c->eof);
  assert_int_equal(dagd_http_server_connections(f->server), 1);
}

static void test_server_pipelined_in_order(void **state) {
  fixture *f = *state;
  start_server(f, NULL);
  client *c = client_connect(f, dagd_http_server_port(f->server));
  /* the first is answered later from a timer: the others must wait */
  client_send(c,
              "GET /wait HTTP/1.1\r\n\r\n"
              "GET /hello HTTP/1.1\r\n\r\n"
              "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nthird");
  RUN_UNTIL(f, count_responses(c) == 3);
  resp r[3];
  responses(c, r, 3);
  assert_string_equal(r[0].body, "waited");
  assert_string_equal(r[1].body, "hello");
  assert_string_equal(r[2].body, "third");
  assert_int_equal(f->late_reply_rc, 0);
  assert_int_equal(f->aborts, 0);
}

static void test_server_pipeline_backpressure(void **state) {
  fixture *f = *state;
  dagd_http_server_opts o = {.max_header_bytes = 512};
  start_server(f, &o);
  client *c = client_connect(f, dagd_http_server_port(f->server));
  /* behind a long-poll, more pipelined bytes than the server buffers */
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_buf_puts(&b, "GET /wait HTTP/1.1\r\n\r\n");
  const int n = 4000;
  for (int i = 0; i < n; i++) dagd_buf_puts(&b, "GET /hello HTTP/1.1\r\n\r\n");
  client_send_all(c, b.data, b.len);
  dagd_buf_close(&b);
  RUN_UNTIL(f, count_responses(c) == n + 1);
  resp r[2];
  responses(c, r, 2);
  assert_string_equal(r[0].body, "waited");
  assert_string_equal(r[1].body, "hello");
}

static void test_server_deferred_reply(void **state) {
  fixture *f = *state;
  start_server(f, NULL);
  client *c = client_connect(f, dagd_http_server_port(f->server));
  client_send(c, "GET /wait HTTP/1.1\r\n\r\n");
  RUN_UNTIL(f, f->pending != NULL);
  assert_int_equal(count_responses(c), 0);
  RUN_UNTIL(f, count_responses(c) == 1);
  resp r[1];
  responses(c, r, 1);
  assert_int_equal(r[0].status, 200);
  assert_string_equal(r[0].body, "waited");
  assert_int_equal(f->late_reply_rc, 0);
  /* the connection serves on */
  client_send(c, "GET /hello HTTP/1.1\r\n\r\n");
  RUN_UNTIL(f, count_responses(c) == 2);
}

static void test_server_sse_stream(void **state) {
  fixture *f = *state;
  start_server(f, NULL);
  client *c = client_connect(f, dagd_http_server_port(f->server));
  client_send(c, "GET /events HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n");
  RUN_UNTIL(f, count_responses(c) == 1);
  resp r[2];
  responses(c, r, 1);
  assert_int_equal(r[0].status, 200);
  assert_string_equal(r[0].content_type, "text/event-stream");
  assert_string_equal(r[0].transfer_encoding, "chunked");
  assert_string_equal(r[0].body, "data: 1\n\ndata: 2\n\ndata: 3\n\n");
  assert_int_equal(f->aborts, 0);
  client_send(c, "GET /hello HTTP/1.1\r\n\r\n");
  RUN_UNTIL(f, count_responses(c) == 2);
  responses(c, r, 2);
  assert_string_equal(r[1].body, "hello");

  /* an HTTP/1.0 client gets the stream delimited by the close */
  client *d = client_connect(f, dagd_http_server_port(f->server));
  client_send(d, "GET /events HTTP/1.0\r\n\r\n");
  RUN_UNTIL(f, d->eof);
  assert_int_equal(responses(d, r, 1), 1);
  assert_string_equal(r[0].body, "data: 1\n\ndata: 2\n\ndata: 3\n\n");
  assert_string_equal(r[0].connection, "close");
}

static void test_server_slow_reader_dropped(void **state) {
  fixture *f = *state;
  dagd_http_server_opts o = {.max_write_queue = 64 * 1024};
  start_server(f, &o);
  client *c = client_connect(f, dagd_http_server_port(f->server));
  uv_poll_stop(&c->poll); /* never reads */
  client_send(c, "GET /flood HTTP/1.1\r\n\r\n");
  RUN_UNTIL(f, f->flood_rc != 0);
  assert_int_equal(f->flood_rc, DAGD_ELIMIT);
  RUN_UNTIL(f, f->aborts == 1);
  RUN_UNTIL(f, dagd_http_server_connections(f->server) == 0);
}

static void test_server_head(void **state) {
  fixture *f = *state;
  start_server(f, NULL);
  client *c = client_connect(f, dagd_http_server_port(f->server));
  client_send(c, "HEAD /hello HTTP/1.1\r\n\r\n");
  RUN_UNTIL(f, c->got.len > 0 && strstr(c->got.data, "\r\n\r\n") != NULL);
  assert_non_null(strstr(c->got.data, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(c->got.data, "Content-Length: 5\r\n"));
  assert_non_null(strstr(c->got.data, "X-Hello: 1\r\n"));
  /* no body: the next bytes are the next response */
  client_send(c, "GET /hello HTTP/1.1\r\n\r\n");
  RUN_UNTIL(f, strstr(c->got.data, "hello") != NULL);
  const char *second = strstr(c->got.data + 1, "HTTP/1.1 200 OK");
  assert_non_null(second);
  assert_null(memmem(c->got.data, (size_t)(second - c->got.data), "hello", 5));
}

static void test_server_client_abort(void **state) {
  fixture *f = *state;
  start_server(f, NULL);
  int port = dagd_http_server_port(f->server);
  client *c = client_connect(f, port);
  client_send(c, "GET /hang HTTP/1.1\r\n\r\n");
  RUN_UNTIL(f, f->pending != NULL);
  client_hangup(c);
  RUN_UNTIL(f, f->aborts == 1);
  assert_null(f->pending);
  RUN_UNTIL(f, dagd_http_server_connections(f->server) == 0);

  /* a long-poll whose client leaves: aborted, the timer never replies */
  client *d = client_connect(f, port);
  client_send(d, "GET /wait HTTP/1.1\r\n\r\n");
  RUN_UNTIL(f, f->pending != NULL);
  client_hangup(d);
  RUN_UNTIL(f, f->aborts == 2);

  /* a stream whose client leaves mid-way */
  client *e = client_connect(f, port);
  client_send(e, "GET /events HTTP/1.1\r\n\r\n");
  RUN_UNTIL(f, e->got.len > 0);
  client_hangup(e);
  RUN_UNTIL(f, f->aborts == 3);

  /* no abort callback: detached, and the late reply frees it */
  client *g = client_connect(f, port);
  client_send(g, "GET /detach HTTP/1.1\r\n\r\n");
  RUN_UNTIL(f, f->pending != NULL);
  client_hangup(g);
  RUN_UNTIL(f, dagd_http_server_connections(f->server) == 0);
  dagd_http_exchange *x = f->pending;
  f->pending = NULL;
  assert_int_equal(dagd_http_reply(x, 200, NULL, "late", 4, NULL, 0), DAGD_EIO);
  assert_int_equal(f->aborts, 3);
}

static void test_server_header_timeout(void **state) {
  fixture *f = *state;
  dagd_http_server_opts o = {.header_timeout_ms = 100, .body_timeout_ms = 100};
  start_server(f, &o);
  int port = dagd_http_server_port(f->server);
  client *slow = client_connect(f, port);
  client_send(slow, "GET /hello HTTP/1.1\r\nHost: loris\r\nX-a: ");
  client *silent = client_connect(f, port);
  client *body = client_connect(f, port);
  client_send(body, "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
  /* meanwhile others are served */
  client *ok = client_connect(f, port);
  client_send(ok, "GET /hello HTTP/1.1\r\n\r\n");
  RUN_UNTIL(f, count_responses(ok) == 1);
  RUN_UNTIL(f, slow->eof && silent->eof && body->eof);
  resp r[1];
  assert_int_equal(responses(slow, r, 1), 1);
  assert_int_equal(r[0].status, 408);
  assert_int_equal(responses(body, r, 1), 1);
  assert_int_equal(r[0].status, 408);
  assert_int_equal(silent->got.len, 0);
}

static void test_server_limits_over_socket(void **state) {
  fixture *f = *state;
  dagd_http_server_opts o = {.max_header_bytes = 512, .max_body_bytes = 16};
  start_server(f, &o);
  int port = dagd_http_server_port(f->server);
  client *c = client_connect(f, port);
  char big[1024];
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  client_send(c, "GET /hello HTTP/1.1\r\nX-Big: ");
  client_send(c, big);
  RUN_UNTIL(f, c->eof);
  resp r[1];
  assert_int_equal(responses(c, r, 1), 1);
  assert_int_equal(r[0].status, 431);
  assert_string_equal(r[0].connection, "close");

  client *d = client_connect(f, port);
  client_send(d, "POST /echo HTTP/1.1\r\nContent-Length: 17\r\n\r\n");
  RUN_UNTIL(f, d->eof);
  assert_int_equal(responses(d, r, 1), 1);
  assert_int_equal(r[0].status, 413);

  client *e = client_connect(f, port);
  client_send(e, "GARBAGE\x01\x02\r\n\r\n");
  RUN_UNTIL(f, e->eof);
  assert_int_equal(responses(e, r, 1), 1);
  assert_int_equal(r[0].status, 400);

  /* Expect: 100-continue gets the go-ahead, then the answer */
  client *g = client_connect(f, port);
  client_send(g, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  RUN_UNTIL(f, count_responses(g) == 1);
  resp r2[2];
  responses(g, r2, 1);
  assert_int_equal(r2[0].status, 100);
  client_send(g, "ok");
  RUN_UNTIL(f, count_responses(g) == 2);
  responses(g, r2, 2);
  assert_int_equal(r2[1].status, 200);
  assert_string_equal(r2[1].body, "ok");
}

static void test_server_max_connections(void **state) {
  fixture *f = *state;
  dagd_http_server_opts o = {.max_connections = 2};
  start_server(f, &o);
  int port = dagd_http_server_port(f->server);
  client *a = client_connect(f, port);
  client *b = client_connect(f, port);
  RUN_UNTIL(f, dagd_http_server_connections(f->server) == 2);
  client *c = client_connect(f, port);
  RUN_UNTIL(f, c->eof);
  resp r[1];
  assert_int_equal(responses(c, r, 1), 1);
  assert_int_equal(r[0].status, 503);
  client_hangup(c);
  /* the two within the limit still work */
  client_send(a, "GET /hello HTTP/1.1\r\n\r\n");
  client_send(b, "GET /hello HTTP/1.1\r\n\r\n");
  RUN_UNTIL(f, count_responses(a) == 1 && count_responses(b) == 1);
  /* a slot freed is a slot for the next one */
  client_hangup(a);
  RUN_UNTIL(f, dagd_http_server_connections(f->server) == 1);
  client *d = client_connect(f, port);
  client_send(d, "GET /hello HTTP/1.1\r\n\r\n");
  RUN_UNTIL(f, count_responses(d) == 1);
  responses(d, r, 1);
  assert_int_equal(r[0].status, 200);
}

static void test_server_many_idle_connections(void **state) {
  fixture *f = *state;
  start_server(f, NULL);
  int port = dagd_http_server_port(f->server);
  /* 1,000 connections, half silent, half stuck in their headers */
  for (int i = 0; i < 1000; i++) {
    client *c = client_connect(f, port);
    if (i % 2) client_send(c, "GET /hello HTTP/1.1\r\nX-Slow: ");
  }
  RUN_UNTIL(f, dagd_http_server_connections(f->server) == 1000);
  client *c = client_connect(f, port);
  client_send(c, "GET /hello HTTP/1.1\r\n\r\n");
  RUN_UNTIL(f, count_responses(c) == 1);
}

static void test_server_close_aborts_pending(void **state) {
  fixture *f = *state;
  start_server(f, NULL);
  client *c = client_connect(f, dagd_http_server_port(f->server));
  client_send(c, "GET /hang HTTP/1.1\r\n\r\n");
  RUN_UNTIL(f, f->pending != NULL);
  dagd_http_server_close(f->server, on_server_closed, f);
  f->server = NULL;
  RUN_UNTIL(f, f->server_closed);
  assert_int_equal(f->aborts, 1);
  RUN_UNTIL(f, c->eof);

  /* listen errors are reported */
  dagd_http_server *s = dagd_http_server_new(&f->loop, NULL, f->router);
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_http_server_listen(s, "nonsense", &err), DAGD_EINVAL);
  assert_int_equal(dagd_http_server_listen(s, "127.0.0.1:99999", NULL), DAGD_EINVAL);
  assert_int_equal(dagd_http_server_listen(s, "127.0.0.1:0", NULL), 0);
  assert_int_equal(dagd_http_server_listen(s, "127.0.0.1:0", NULL), DAGD_EEXIST);
  dagd_http_server *s6 = dagd_http_server_new(&f->loop, NULL, f->router);
  int rc6 = dagd_http_server_listen(s6, "[::1]:0", &err);
  assert_true(rc6 == 0 || rc6 == DAGD_EIO); /* a host may lack IPv6 */
  dagd_http_server_close(s6, NULL, NULL);
  f->server_closed = false;
  dagd_http_server_close(s, on_server_closed, f);
  RUN_UNTIL(f, f->server_closed);
}

int main(void) {
  dagd_log_threshold = DAGD_LOG_ERROR;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_simple_get),
      cmocka_unit_test(test_parse_post_body),
      cmocka_unit_test(test_parse_chunked),
      cmocka_unit_test(test_parse_pipelined),
      cmocka_unit_test(test_parse_byte_by_byte),
      cmocka_unit_test(test_parse_header_limit_431),
      cmocka_unit_test(test_parse_body_limit_413),
      cmocka_unit_test(test_parse_bad_requests),
      cmocka_unit_test(test_parse_misc_forms),
      cmocka_unit_test(test_parse_expect_continue),
      cmocka_unit_test(test_url_decode_and_query),
      cmocka_unit_test(test_path_decoding),
      cmocka_unit_test(test_router),
      cmocka_unit_test(test_response_serialize),
      cmocka_unit_test_setup_teardown(test_server_request_response, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_keep_alive, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_pipelined_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_deferred_reply, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_pipeline_backpressure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_sse_stream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_client_abort, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_slow_reader_dropped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_head, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_header_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_limits_over_socket, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_max_connections, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_many_idle_connections, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_close_aborts_pending, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
