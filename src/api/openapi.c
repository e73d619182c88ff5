/* The API's own description: docs/openapi.yaml, turned into JSON when
 * dagd is built (scripts/yaml2json) and built into the binary, so the
 * document served at /api/v1/openapi.json always describes the binary
 * that serves it.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#ifndef DAGD_OPENAPI_JSON
#error "DAGD_OPENAPI_JSON names the built openapi.json (see CMakeLists.txt)"
#endif

/* The file's bytes, then a NUL, in read-only data. */
__asm__(".pushsection .rodata\n"
        ".global dagd__openapi_json\n"
        ".type dagd__openapi_json, @object\n"
        "dagd__openapi_json:\n"
        ".incbin \"" DAGD_OPENAPI_JSON "\"\n"
        ".global dagd__openapi_json_end\n"
        "dagd__openapi_json_end:\n"
        ".byte 0\n"
        ".popsection\n");
extern const char dagd__openapi_json[], dagd__openapi_json_end[];

const char *dagd_api_openapi(size_t *len) {
  if (len) *len = (size_t)(dagd__openapi_json_end - dagd__openapi_json);
  return dagd__openapi_json;
}

int dagd__api_openapi(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  size_t len;
  const char *doc = dagd_api_openapi(&len);
  dagd_buf_reset(&resp->body);
  dagd_buf_append(&resp->body, doc, len);
  resp->status = 200;
  resp->content_type = "application/json";
  return 200;
}
