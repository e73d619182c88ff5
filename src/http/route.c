/* The router: (method, path pattern) -> handler, matched segment by
 * segment on the raw path so an encoded '/' never splits a segment. A
 * linear scan over the routes: the API has a few dozen, and a request
 * costs one pass over the path plus one comparison per route segment; a
 * trie would pay off only with hundreds of routes.
 * SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/err.h"
#include "dagd/util.h"
#include "internal.h"

/* More segments than this in a pattern are refused; a path with more
 * matches nothing. */
#define MAX_SEGS 32

typedef struct route {
  dagd_http_method method;
  char *pattern;
  char **segs;      /* literal text, or the parameter name when is_param */
  uint32_t params;  /* bit i: segment i is a parameter */
  size_t nsegs;
  dagd_http_handler_cb cb;
  void *data;
} route;

struct dagd_http_router {
  route *routes;
  size_t n, cap;
};

dagd_http_router *dagd_http_router_new(void) { return dagd_calloc(1, sizeof(dagd_http_router)); }

void dagd_http_router_free(dagd_http_router *r) {
  if (r == NULL) return;
  for (size_t i = 0; i < r->n; i++) {
    for (size_t j = 0; j < r->routes[i].nsegs; j++) free(r->routes[i].segs[j]);
    free(r->routes[i].segs);
    free(r->routes[i].pattern);
  }
  free(r->routes);
  free(r);
}

static bool param_name_valid(const char *s, size_t n) {
  if (n == 0 || (s[0] >= '0' && s[0] <= '9')) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!(c == '_' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')))
      return false;
  }
  return true;
}

/* Literal pattern text: what may appear in a path unencoded, less the
 * characters that would make the pattern ambiguous. */
static bool literal_valid(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= ' ' || c >= 0x7f || strchr("%{}?#", c)) return false;
  }
  return true;
}

int dagd_http_router_add(dagd_http_router *r, dagd_http_method method, const char *pattern,
                         dagd_http_handler_cb cb, void *data, dagd_err *err) {
  if ((unsigned)method >= DAGD_HTTP_METHOD_COUNT_ || cb == NULL)
    return dagd_err_set(err, DAGD_EINVAL, "route %s: bad method or no handler", pattern);
  if (pattern[0] != '/')
    return dagd_err_set(err, DAGD_EINVAL, "route %s: a pattern starts with '/'", pattern);
  for (size_t i = 0; i < r->n; i++)
    if (r->routes[i].method == method && strcmp(r->routes[i].pattern, pattern) == 0)
      return dagd_err_set(err, DAGD_EEXIST, "route %s %s is already registered",
                          dagd_http_method_name(method), pattern);

  route rt = {.method = method, .cb = cb, .data = data};
  rt.segs = dagd_calloc(MAX_SEGS, sizeof(char *));
  const char *s = pattern + 1;
  for (;;) {
    size_t n = strcspn(s, "/");
    if (rt.nsegs == MAX_SEGS) {
      dagd_err_set(err, DAGD_EINVAL, "route %s: more than %d segments", pattern, MAX_SEGS);
      goto error;
    }
    if (n >= 2 && s[0] == '{' && s[n - 1] == '}') {
      if (!param_name_valid(s + 1, n - 2)) {
        dagd_err_set(err, DAGD_EINVAL, "route %s: bad parameter name '%.*s'", pattern,
                     (int)(n - 2), s + 1);
        goto error;
      }
      for (size_t j = 0; j < rt.nsegs; j++) {
        if ((rt.params & (1u << j)) && strlen(rt.segs[j]) == n - 2 &&
            memcmp(rt.segs[j], s + 1, n - 2) == 0) {
          dagd_err_set(err, DAGD_EINVAL, "route %s: parameter '%.*s' appears twice", pattern,
                       (int)(n - 2), s + 1);
          goto error;
        }
      }
      rt.params |= 1u << rt.nsegs;
      rt.segs[rt.nsegs++] = dagd_strndup(s + 1, n - 2);
    } else {
      if (!literal_valid(s, n)) {
        dagd_err_set(err, DAGD_EINVAL,
                     "route %s: segment '%.*s' is neither a literal nor a whole '{name}'", pattern,
                     (int)n, s);
        goto error;
      }
      rt.segs[rt.nsegs++] = dagd_strndup(s, n);
    }
    if (s[n] == '\0') break;
    s += n + 1;
  }
  rt.pattern = dagd_strdup(pattern);
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 16;
    r->routes = dagd_realloc(r->routes, r->cap * sizeof(route));
  }
  r->routes[r->n++] = rt;
  return 0;

error:
  for (size_t j = 0; j < rt.nsegs; j++) free(rt.segs[j]);
  free(rt.segs);
  return DAGD_EINVAL;
}

/* Does the route's path match the decoded segments (NULL: undecodable)? */
static bool path_matches(const route *rt, char *const *dec, size_t nsegs) {
  if (rt->nsegs != nsegs) return false;
  for (size_t i = 0; i < nsegs; i++) {
    if (dec[i] == NULL) return false;
    if (rt->params & (1u << i)) {
      if (dec[i][0] == '\0' || strchr(dec[i], '/')) return false;
    } else if (strcmp(rt->segs[i], dec[i]) != 0) {
      return false;
    }
  }
  return true;
}

/* A literal segment beats a parameter at the first place two routes
 * differ: the route whose parameter bits read lower, segment 0 as the
 * most significant, is the more specific. */
static uint32_t generality(const route *rt) {
  uint32_t g = 0;
  for (size_t i = 0; i < rt->nsegs; i++)
    if (rt->params & (1u << i)) g |= 1u << (MAX_SEGS - 1 - i);
  return g;
}

static const route *better(const route *a, const route *b) {
  if (a == NULL) return b;
  return generality(b) < generality(a) ? b : a;
}

int dagd_http_router_match(const dagd_http_router *r, dagd_http_request *req,
                           dagd_http_route *out) {
  memset(out, 0, sizeof(*out));
  out->status = 404;
  const char *p = req->raw_path;
  if (p[0] != '/') return DAGD_ENOENT;

  size_t nsegs = 1;
  for (const char *c = p + 1; *c; c++)
    if (*c == '/' && ++nsegs > MAX_SEGS) return DAGD_ENOENT;

  char *dec[MAX_SEGS];
  const char *s = p + 1;
  for (size_t i = 0; i < nsegs; i++) {
    size_t n = strcspn(s, "/");
    dec[i] = dagd_http_request_alloc(req, n + 1);
    if (dagd_http_url_decode(s, n, false, dec[i], NULL) != 0) dec[i] = NULL;
    s += n + 1;
  }

  const route *exact = NULL, *get = NULL;
  unsigned allowed = 0;
  for (size_t i = 0; i < r->n; i++) {
    const route *rt = &r->routes[i];
    if (!path_matches(rt, dec, nsegs)) continue;
    allowed |= 1u << rt->method;
    if (rt->method == req->method) exact = better(exact, rt);
    else if (rt->method == DAGD_HTTP_GET && req->method == DAGD_HTTP_HEAD) get = better(get, rt);
  }
  const route *hit = exact ? exact : get;
  if (hit == NULL) {
    if (allowed == 0) return DAGD_ENOENT;
    out->status = 405;
    if (allowed & (1u << DAGD_HTTP_GET)) allowed |= 1u << DAGD_HTTP_HEAD;
    size_t o = 0;
    for (int m = 0; m < DAGD_HTTP_METHOD_COUNT_; m++) {
      if (!(allowed & (1u << m))) continue;
      o += (size_t)snprintf(out->allow + o, sizeof(out->allow) - o, "%s%s", o ? ", " : "",
                            dagd_http_method_name((dagd_http_method)m));
    }
    return DAGD_ENOENT;
  }

  size_t np = 0;
  for (size_t i = 0; i < hit->nsegs; i++) np += (hit->params >> i) & 1;
  dagd_http_header *params = dagd_http_request_alloc(req, (np ? np : 1) * sizeof(*params));
  size_t k = 0;
  for (size_t i = 0; i < hit->nsegs; i++) {
    if (!(hit->params & (1u << i))) continue;
    size_t nl = strlen(hit->segs[i]);
    char *name = dagd_http_request_alloc(req, nl + 1);
    memcpy(name, hit->segs[i], nl + 1);
    params[k].name = name;
    params[k].value = dec[i];
    k++;
  }
  req->params = params;
  req->nparams = np;
  out->status = 200;
  out->cb = hit->cb;
  out->data = hit->data;
  return 0;
}
