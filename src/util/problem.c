/* HTTP status reason phrases and the one shape of every error dagd answers:
 * an RFC 9457 (formerly RFC 7807) problem document, as Airflow's REST API
 * answers its errors.
 * SPDX-License-Identifier: MIT */
#include <jansson.h>
#include <stdlib.h>

#include "dagd/util.h"

const char *dagd_status_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 206: return "Partial Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 417: return "Expectation Failed";
  case 422: return "Unprocessable Content";
  case 425: return "Too Early";
  case 428: return "Precondition Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  case 507: return "Insufficient Storage";
  default: return "Unknown";
  }
}

void dagd_problem_write(dagd_buf *body, int status, const char *detail) {
  const char *title = dagd_status_reason(status);
  /* Details quote user input (ids, header values): whatever they hold,
   * the document stays valid JSON. */
  json_t *d = json_string(detail ? detail : title);
  if (d == NULL) d = json_string("(message not valid UTF-8)");
  /* "about:blank": the problem means no more than its status, so the
   * title is the status's reason phrase (RFC 9457 section 4.2.1). */
  json_t *doc = json_pack("{s:s, s:s, s:i, s:o}", "type", "about:blank", "title", title, "status", status,
                          "detail", d);
  char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  /* Only an allocation failure in jansson leaves no text. */
  dagd_buf_puts(body, text ? text
                           : "{\"type\":\"about:blank\",\"title\":\"Internal Server Error\",\"status\":500,"
                             "\"detail\":\"out of memory\"}");
  dagd_buf_putc(body, '\n');
  free(text);
  json_decref(doc);
}
