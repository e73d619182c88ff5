/* The registry operator's pure parts, shared with its unit test: image
 * references, WWW-Authenticate challenges, Link pagination and manifest
 * media types. No I/O.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_OPERATORS_REGISTRY_H
#define DAGD_OPERATORS_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "dagd/err.h"

/* "host[:port]/repo[:tag][@digest]" split up. Heap strings (tag and
 * digest NULL when absent); release with dagd_registry_ref_close. */
typedef struct dagd_registry_ref {
  char *host;      /* as written, with its port: "127.0.0.1:5000", "[::1]:5000" */
  char *repo;      /* "team/model" */
  char *tag;
  char *digest;
  bool loopback;   /* localhost, 127.0.0.0/8, [::1]: spoken to over plain HTTP */
} dagd_registry_ref;

/* Parses an image reference. The first path segment is always the
 * registry host (no implicit Docker Hub). DAGD_EINVAL with a message
 * naming the problem. */
int dagd_registry_parse_image(const char *image, dagd_registry_ref *out, dagd_err *err);
void dagd_registry_ref_close(dagd_registry_ref *ref);

/* A WWW-Authenticate challenge: `Bearer realm="...",service="...",scope="..."`
 * or `Basic realm="..."`. Heap strings, NULL when absent. */
typedef struct dagd_registry_challenge {
  char *scheme;    /* "Bearer", "Basic", as sent */
  char *realm, *service, *scope, *error;
} dagd_registry_challenge;

/* Parses the header value; DAGD_ESYNTAX when it is not a challenge. */
int dagd_registry_parse_challenge(const char *header, dagd_registry_challenge *out);
void dagd_registry_challenge_close(dagd_registry_challenge *c);

/* The target of the rel="next" link of a Link header
 * (`</v2/x/tags/list?last=b&n=2>; rel="next"`), heap string, or NULL. */
char *dagd_registry_link_next(const char *link);

/* The Accept header of a manifest request: OCI index and manifest, Docker
 * v2 schema 2 manifest list and manifest. */
const char *dagd_registry_manifest_accept(void);

/* True for a manifest media type the operator can copy as it is. */
bool dagd_registry_media_type_known(const char *media_type);

/* The media type of a fetched manifest: the Content-Type header (without
 * parameters) when it is a manifest type, else the body's "mediaType"
 * field. Heap string, or NULL when neither names a known type. */
char *dagd_registry_media_type(const char *content_type, const char *body, size_t len);

/* "sha256:<hex>" of the bytes, in out (at least 72 bytes). */
void dagd_registry_sha256(const void *data, size_t len, char out[72]);

#endif
