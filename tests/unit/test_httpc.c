/* Unit tests for the HTTP client over libcurl (src/httpc/httpc.c),
 * against a small HTTP server on 127.0.0.1 that the test runs in a
 * thread: what a request sends (method, headers, body), what comes back
 * (status, body, header lines), the body bound, a refused connection,
 * the allowed schemes, a kept client reset between requests, escaping.
 * SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "dagd/httpc.h"

/* The server: answers every connection with `answer` (headers only for a
 * HEAD) and keeps the last request it read in `seen`. The client waits
 * for the answer, which is written after `seen`, before it reads it. */
typedef struct server {
  int fd;
  int port;
  pthread_t thread;
  const char *answer_head; /* status line and headers, without the blank line */
  const char *answer_body;
  char seen[8192];
} server;

static void read_request(int c, char *out, size_t cap) {
  size_t len = 0;
  out[0] = '\0';
  char *end = NULL;
  while (end == NULL && len + 1 < cap) {
    ssize_t n = read(c, out + len, cap - 1 - len);
    if (n <= 0) return;
    len += (size_t)n;
    out[len] = '\0';
    end = strstr(out, "\r\n\r\n");
  }
  if (end == NULL) return;
  const char *cl = strcasestr(out, "\r\nContent-Length:");
  size_t want = cl ? strtoul(cl + 17, NULL, 10) : 0;
  size_t have = len - (size_t)(end + 4 - out);
  while (have < want && len + 1 < cap) {
    ssize_t n = read(c, out + len, cap - 1 - len);
    if (n <= 0) return;
    len += (size_t)n;
    have += (size_t)n;
    out[len] = '\0';
  }
}

static void *serve(void *data) {
  server *s = data;
  for (;;) {
    int c = accept(s->fd, NULL, NULL);
    if (c < 0) return NULL;
    read_request(c, s->seen, sizeof(s->seen));
    bool head = strncmp(s->seen, "HEAD ", 5) == 0;
    char *reply = NULL;
    int n = asprintf(&reply, "%s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s", s->answer_head,
                     strlen(s->answer_body), head ? "" : s->answer_body);
    if (n > 0 && write(c, reply, (size_t)n) != n) {}
    free(reply);
    close(c);
  }
}

static int server_start(void **state) {
  server *s = calloc(1, sizeof(*s));
  s->fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof(a);
  if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->fd, 8) != 0 ||
      getsockname(s->fd, (struct sockaddr *)&a, &alen) != 0)
    return -1;
  s->port = ntohs(a.sin_port);
  s->answer_head = "HTTP/1.1 200 OK";
  s->answer_body = "";
  if (pthread_create(&s->thread, NULL, serve, s) != 0) return -1;
  *state = s;
  return 0;
}

static int server_stop(void **state) {
  server *s = *state;
  shutdown(s->fd, SHUT_RDWR); /* wakes the accept */
  pthread_join(s->thread, NULL);
  close(s->fd);
  free(s);
  return 0;
}

/* Sets what the server answers next; the URL of path on it (heap). */
static char *answer_with(server *s, const char *head, const char *body, const char *path) {
  s->answer_head = head;
  s->answer_body = body;
  char *u = NULL;
  if (asprintf(&u, "http://127.0.0.1:%d%s", s->port, path) < 0) abort();
  return u;
}

static void test_get(void **state) {
  server *s = *state;
  char *url = answer_with(s, "HTTP/1.1 201 Created\r\nX-Answer: yes", "hello", "/a?b=c");
  const char *lines[] = {"Accept: text/plain", "X-Empty;", NULL};
  dagd_httpc_req req = {.url = url, .headers = lines, .user_agent = "dagd-test", .timeout_ms = 60000};
  dagd_buf body;
  dagd_buf_init(&body);
  long status = -1;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_httpc_request(NULL, &req, &status, &body, &err), 0);
  assert_int_equal(status, 201);
  assert_int_equal(body.len, 5);
  assert_string_equal(body.data, "hello");
  assert_true(strncmp(s->seen, "GET /a?b=c HTTP/1.1\r\n", 21) == 0);
  assert_non_null(strstr(s->seen, "\r\nAccept: text/plain\r\n"));
  assert_non_null(strstr(s->seen, "\r\nX-Empty:"));
  assert_non_null(strstr(s->seen, "\r\nUser-Agent: dagd-test\r\n"));
  /* A NULL body discards the answer. */
  assert_int_equal(dagd_httpc_request(NULL, &req, &status, NULL, &err), 0);
  assert_int_equal(status, 201);
  dagd_buf_close(&body);
  free(url);
}

static void test_methods(void **state) {
  server *s = *state;
  char *url = answer_with(s, "HTTP/1.1 200 OK", "ignored for a HEAD", "/m");
  dagd_err err;
  dagd_err_init(&err);
  long status;
  dagd_httpc_req put = {.method = "PUT", .url = url, .body = "{\"a\":1}xx", .body_len = 7};
  assert_int_equal(dagd_httpc_request(NULL, &put, &status, NULL, &err), 0);
  assert_int_equal(status, 200);
  assert_true(strncmp(s->seen, "PUT /m HTTP/1.1\r\n", 17) == 0);
  assert_non_null(strstr(s->seen, "\r\nContent-Length: 7\r\n"));
  assert_non_null(strstr(s->seen, "\r\n\r\n{\"a\":1}"));
  assert_null(strstr(s->seen, "xx")); /* body_len bytes, no more */
  assert_null(strstr(s->seen, "User-Agent")); /* none unless asked */
  dagd_httpc_req del = {.method = "DELETE", .url = url};
  assert_int_equal(dagd_httpc_request(NULL, &del, &status, NULL, &err), 0);
  assert_true(strncmp(s->seen, "DELETE /m HTTP/1.1\r\n", 20) == 0);
  dagd_httpc_req head = {.method = "HEAD", .url = url};
  dagd_buf body;
  dagd_buf_init(&body);
  assert_int_equal(dagd_httpc_request(NULL, &head, &status, &body, &err), 0);
  assert_int_equal(status, 200);
  assert_true(strncmp(s->seen, "HEAD /m HTTP/1.1\r\n", 18) == 0);
  assert_int_equal(body.len, 0);
  dagd_buf_close(&body);
  free(url);
}

typedef struct lines_seen {
  int status_lines;
  bool answer;
} lines_seen;

static void on_header(const char *line, size_t len, void *data) {
  lines_seen *l = data;
  if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) l->status_lines++;
  if (len >= 10 && strncmp(line, "X-Answer: ", 10) == 0) l->answer = true;
}

static void test_headers_and_kept_client(void **state) {
  server *s = *state;
  char *url = answer_with(s, "HTTP/1.1 404 Not Found\r\nX-Answer: here", "{}", "/h");
  dagd_httpc *c;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_httpc_new(&c, &err), 0);
  lines_seen seen = {0};
  const char *lines[] = {"X-First: 1", NULL};
  dagd_httpc_req first = {.url = url, .headers = lines, .on_header = on_header, .header_data = &seen,
                          .user_agent = "one"};
  long status;
  assert_int_equal(dagd_httpc_request(c, &first, &status, NULL, &err), 0);
  assert_int_equal(status, 404); /* any status is an answer */
  assert_int_equal(seen.status_lines, 1);
  assert_true(seen.answer);
  assert_non_null(strstr(s->seen, "\r\nX-First: 1\r\n"));
  /* The next request on the same client starts from nothing. */
  dagd_httpc_req second = {.method = "POST", .url = url};
  assert_int_equal(dagd_httpc_request(c, &second, &status, NULL, &err), 0);
  assert_true(strncmp(s->seen, "POST /h HTTP/1.1\r\n", 18) == 0);
  assert_null(strstr(s->seen, "X-First"));
  assert_null(strstr(s->seen, "User-Agent"));
  assert_int_equal(seen.status_lines, 1);
  dagd_httpc_free(c);
  dagd_httpc_free(NULL);
  free(url);
}

static void test_body_bound(void **state) {
  char *url = answer_with(*state, "HTTP/1.1 200 OK", "0123456789abcdef", "/big");
  dagd_buf body;
  dagd_buf_init(&body);
  long status = -1;
  dagd_err err;
  dagd_err_init(&err);
  dagd_httpc_req exact = {.url = url, .body_max = 16};
  assert_int_equal(dagd_httpc_request(NULL, &exact, &status, &body, &err), 0);
  assert_int_equal(body.len, 16);
  dagd_buf_reset(&body);
  dagd_httpc_req small = {.url = url, .body_max = 10};
  assert_int_equal(dagd_httpc_request(NULL, &small, &status, &body, &err), DAGD_ELIMIT);
  assert_int_equal(status, 0);
  char *want = NULL;
  if (asprintf(&want, "GET %s: the response body is larger than 10 bytes", url) < 0) abort();
  assert_string_equal(err.msg, want);
  free(want);
  dagd_buf_close(&body);
  free(url);
}

static void test_refused(void **state) {
  /* A port that was just free: nothing listens there. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof(a);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
  close(fd);
  char *url = NULL;
  if (asprintf(&url, "http://127.0.0.1:%d/x", ntohs(a.sin_port)) < 0) abort();
  dagd_httpc_req req = {.method = "POST", .url = url, .body = "", .body_len = 0};
  long status = -1;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_httpc_request(NULL, &req, &status, NULL, &err), DAGD_EIO);
  assert_int_equal(status, 0);
  char *prefix = NULL;
  if (asprintf(&prefix, "POST %s: ", url) < 0) abort();
  assert_true(strncmp(err.msg, prefix, strlen(prefix)) == 0);
  assert_true(strlen(err.msg) > strlen(prefix));
  assert_int_not_equal(err.cause, 0);
  assert_string_not_equal(dagd_httpc_cause_text(err.cause), dagd_httpc_cause_text(0));
  free(prefix);
  free(url);
}

static void test_schemes(void **state) {
  char path[] = "/tmp/dagd-httpc-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "file text", 9), 9);
  close(fd);
  char *url = NULL;
  if (asprintf(&url, "file://%s", path) < 0) abort();
  long status;
  dagd_buf body;
  dagd_buf_init(&body);
  dagd_err err;
  dagd_err_init(&err);
  dagd_httpc_req req = {.url = url};
  assert_int_equal(dagd_httpc_request(NULL, &req, &status, &body, &err), DAGD_EIO);
  assert_true(strncmp(err.msg, "GET file://", 11) == 0);
  assert_int_equal(body.len, 0);
  req.any_scheme = true;
  dagd_err_init(&err);
  assert_int_equal(dagd_httpc_request(NULL, &req, &status, &body, &err), 0);
  assert_string_equal(body.data, "file text");
  dagd_buf_close(&body);
  unlink(path);
  free(url);
}

static void test_escape(void **state) {
  char *e = dagd_httpc_escape("sum(rate(x{a=\"b c\"}[1m]))/-._~");
  assert_string_equal(e, "sum%28rate%28x%7Ba%3D%22b%20c%22%7D%5B1m%5D%29%29%2F-._~");
  free(e);
  e = dagd_httpc_escape("");
  assert_string_equal(e, "");
  free(e);
}

int main(void) {
  dagd_httpc_global_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get),        cmocka_unit_test(test_methods), cmocka_unit_test(test_headers_and_kept_client),
      cmocka_unit_test(test_body_bound), cmocka_unit_test(test_refused), cmocka_unit_test(test_schemes),
      cmocka_unit_test(test_escape)};
  int rc = cmocka_run_group_tests_name("httpc", tests, server_start, server_stop);
  dagd_httpc_global_cleanup();
  return rc;
}
