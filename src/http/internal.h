/* Shared inside the http module: the per-request arena and the request's
 * private side.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_HTTP_INTERNAL_H
#define DAGD_HTTP_INTERNAL_H

#include <stddef.h>

#include "dagd/http.h"

/* A bump allocator in growing blocks: everything of one request is freed
 * at once when its response is complete. */
typedef struct dagd__arena_block dagd__arena_block;

typedef struct dagd__arena {
  dagd__arena_block *head;
} dagd__arena;

void *dagd__arena_alloc(dagd__arena *a, size_t n);
char *dagd__arena_strndup(dagd__arena *a, const char *s, size_t n);
void dagd__arena_free(dagd__arena *a);

/* The request as allocated: the public part first, so a dagd_http_request
 * pointer is also a dagd__request pointer. The body lives in its own heap
 * block (it may be large). */
typedef struct dagd__request {
  dagd_http_request pub;
  dagd__arena arena;
  char *body;
} dagd__request;

dagd__request *dagd__request_new(void);

/* The default error body: the problem document of dagd_problem_write
 * (a dagd_http_error_body_cb). */
void dagd__http_error_body(void *data, int status, const char *message, struct dagd_buf *body,
                           const char **content_type);

/* True for the characters of an RFC 9110 token (header names, methods). */
int dagd__is_tchar(unsigned char c);

#endif
