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

#include <curl/curl.h>
#include <jansson.h>

#include "dagd/notify.h"
#include "dagd/operators.h"

static size_t discard(char *data, size_t size, size_t n, void *user) { return size * n; }

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
  curl_global_init(CURL_GLOBAL_DEFAULT);
  struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
  const char *name;
  json_t *v;
  json_object_foreach(json_object_get(spec, "headers"), name, v) {
    const char *value = json_string_value(v);
    if (value == NULL || strpbrk(value, "\r\n") || strpbrk(name, "\r\n:")) continue;
    char *line = malloc(strlen(name) + strlen(value) + 3);
    sprintf(line, "%s: %s", name, value);
    hdrs = curl_slist_append(hdrs, line);
    free(line);
  }
  int rc = 1;
  long status = 0;
  for (int attempt = 1; attempt <= 3; attempt++) {
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method ? method : "POST");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : payload);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout > 0 ? timeout : 5L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(h);
    status = 0;
    if (cc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (cc == CURLE_OK && status < 500) {
      printf("dagd notify: %s %s -> %ld\n", method ? method : "POST", url, status);
      rc = status < 400 ? 0 : 1;
      break;
    }
    printf("dagd notify: %s %s: %s (attempt %d of 3)\n", method ? method : "POST", url,
           cc == CURLE_OK ? "server error" : curl_easy_strerror(cc), attempt);
    fflush(stdout);
    if (attempt < 3) sleep(1u << (attempt - 1)); /* 1, 2 s: a separate process, nothing waits on it */
  }
  if (rc != 0) printf("dagd notify: giving up on %s (last status %ld)\n", url, status);
  curl_slist_free_all(hdrs);
  curl_global_cleanup();
  free(payload);
  json_decref(spec);
  return rc;
}
