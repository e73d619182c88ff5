/* `dagd notify SPEC`: delivers one notification (a task failed, succeeded
 * or will be retried; a run ended) as a JSON POST: the spec's rendered
 * body, else a body that a Slack-compatible incoming webhook shows
 * ("text") and that a generic receiver can read (dag_id, run_id,
 * task_id, try_number, state, log). Failed deliveries
 * (no answer, 5xx) are retried a few times; the outcome goes to the try's
 * log. It never changes the task's state: it runs after the fact, apart.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "dagd/httpc.h"
#include "dagd/notify.h"
#include "dagd/operators.h"

int dagd_notify_main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: dagd notify SPEC|-\n");
    return 2;
  }
  json_error_t jerr;
  /* "-": the daemon passes the rendered spec, which may hold secrets, on
   * the standard input, never through a file. */
  json_t *spec = strcmp(argv[1], "-") == 0 ? json_loadf(stdin, 0, &jerr) : json_load_file(argv[1], 0, &jerr);
  const char *url = json_string_value(json_object_get(spec, "url"));
  if (url == NULL) {
    printf("dagd notify: %s: %s\n", argv[1], spec ? "no url" : jerr.text);
    json_decref(spec);
    return 2;
  }
  const char *method = json_string_value(json_object_get(spec, "method"));
  const char *body = json_string_value(json_object_get(spec, "body"));
  char *payload = body ? NULL : json_dumps(json_object_get(spec, "payload"), JSON_COMPACT);
  long timeout = (long)json_integer_value(json_object_get(spec, "timeout"));
  /* Content-Type first, then the spec's headers; a header that would
   * break the request is skipped. */
  size_t nh = 1;
  const char *name;
  json_t *v;
  const char **lines = dagd_calloc(json_object_size(json_object_get(spec, "headers")) + 2, sizeof(char *));
  lines[0] = "Content-Type: application/json";
  json_object_foreach(json_object_get(spec, "headers"), name, v) {
    const char *value = json_string_value(v);
    if (value == NULL || strpbrk(value, "\r\n") || strpbrk(name, "\r\n:")) continue;
    lines[nh++] = dagd_asprintf("%s: %s", name, value);
  }
  const char *data = body ? body : payload;
  dagd_httpc_global_init();
  /* Any scheme libcurl speaks, as it always was for notifications. */
  dagd_httpc_req req = {.method = method ? method : "POST", .url = url, .headers = lines, .body = data,
                        .body_len = data ? strlen(data) : 0, .timeout_ms = (timeout > 0 ? timeout : 5L) * 1000,
                        .any_scheme = true};
  int rc = 1;
  long status = 0;
  for (int attempt = 1; attempt <= 3; attempt++) {
    dagd_err err;
    dagd_err_init(&err);
    bool answered = dagd_httpc_request(NULL, &req, &status, NULL, &err) == 0;
    if (answered && status < 500) {
      printf("dagd notify: %s %s -> %ld\n", req.method, url, status);
      rc = status < 400 ? 0 : 1;
      break;
    }
    printf("dagd notify: %s %s: %s (attempt %d of 3)\n", req.method, url,
           answered ? "server error" : dagd_httpc_cause_text(err.cause), attempt);
    fflush(stdout);
    if (attempt < 3) sleep(1u << (attempt - 1)); /* 1, 2 s: a separate process, nothing waits on it */
  }
  if (rc != 0) printf("dagd notify: giving up on %s (last status %ld)\n", url, status);
  dagd_httpc_global_cleanup();
  for (size_t i = 1; i < nh; i++) free((char *)lines[i]);
  free(lines);
  free(payload);
  json_decref(spec);
  return rc;
}
