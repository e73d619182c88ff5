/* Serves the web UI: plain HTML, CSS and JavaScript modules from the UI
 * folder (the source tree's ui/ in a build tree, the installed copy
 * otherwise, or $DAGD_UI_PATH), at / and under /ui/. The UI talks to the
 * REST API like any other client; nothing is rendered on the server.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dagd/err.h"
#include "dagd/http.h"
#include "dagd/log.h"
#include "dagd/util.h"
#include "daemon.h"

#ifndef DAGD_UI_DIR_BUILD
#define DAGD_UI_DIR_BUILD "ui"
#endif
#ifndef DAGD_UI_DIR_INSTALL
#define DAGD_UI_DIR_INSTALL "/usr/local/share/dagd/ui"
#endif

/* Largest asset served. */
#define UI_MAX_FILE (4 << 20)

static const char *ui_dir(void) {
  const char *env = getenv("DAGD_UI_PATH");
  if (env && *env) return env;
  if (access(DAGD_UI_DIR_BUILD "/index.html", R_OK) == 0) return DAGD_UI_DIR_BUILD;
  return DAGD_UI_DIR_INSTALL;
}

static const char *content_type(const char *path) {
  static const struct { const char *ext, *type; } types[] = {
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".json", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
      {".ico", "image/x-icon"}, {".woff2", "font/woff2"}, {".txt", "text/plain; charset=utf-8"}};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(types); i++)
    if (dagd_str_has_suffix(path, types[i].ext)) return types[i].type;
  return NULL;
}

/* A path segment is safe when it is not empty, ".", "..", hidden, and
 * holds no '/' (the router already refuses that) or NUL. */
static bool segment_ok(const char *s) { return s && s[0] != '\0' && s[0] != '.' && strchr(s, '/') == NULL; }

static void not_found(dagd_http_exchange *x) {
  dagd_buf body;
  dagd_buf_init(&body);
  dagd_problem_write(&body, 404, "no such UI file");
  dagd_http_reply(x, 404, DAGD_PROBLEM_CONTENT_TYPE, body.data, body.len, NULL, 0);
  dagd_buf_close(&body);
}

static void serve_file(dagd_http_exchange *x, const char *rel) {
  static const dagd_http_header no_cache[] = {{"Cache-Control", "no-cache"},
                                              {"X-Content-Type-Options", "nosniff"}};
  const char *type = content_type(rel);
  char *path = dagd_asprintf("%s/%s", ui_dir(), rel);
  int fd = type ? open(path, O_RDONLY | O_CLOEXEC) : -1;
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > UI_MAX_FILE) {
    if (fd >= 0) close(fd);
    free(path);
    not_found(x);
    return;
  }
  char *data = dagd_malloc((size_t)st.st_size + 1);
  ssize_t n = read(fd, data, (size_t)st.st_size);
  close(fd);
  free(path);
  if (n < 0) n = 0;
  dagd_http_reply(x, 200, type, data, (size_t)n, no_cache, DAGD_ARRAY_LEN(no_cache));
  free(data);
}

static void on_index(dagd_http_exchange *x, void *data) { serve_file(x, "index.html"); }

static void on_asset(dagd_http_exchange *x, void *data) {
  const dagd_http_request *req = dagd_http_exchange_request(x);
  dagd_buf rel;
  dagd_buf_init(&rel);
  bool ok = req->nparams > 0;
  for (size_t i = 0; ok && i < req->nparams; i++) {
    ok = segment_ok(req->params[i].value);
    if (i) dagd_buf_putc(&rel, '/');
    dagd_buf_puts(&rel, req->params[i].value);
  }
  if (!ok) {
    not_found(x);
  } else {
    serve_file(x, rel.data);
  }
  dagd_buf_close(&rel);
}

int daemon_ui_routes(daemon_t *d, dagd_err *err) {
  static const char *const patterns[] = {"/ui/{a}", "/ui/{a}/{b}", "/ui/{a}/{b}/{c}"};
  int rc = dagd_http_router_add(d->web.router, DAGD_HTTP_GET, "/", on_index, d, err);
  for (size_t i = 0; rc == 0 && i < DAGD_ARRAY_LEN(patterns); i++)
    rc = dagd_http_router_add(d->web.router, DAGD_HTTP_GET, patterns[i], on_asset, d, err);
  return rc;
}
