/* Fuzzes the REST handlers with their JSON bodies and query strings: the
 * input picks a route of dagd_api_routes and its path parameters (DAG,
 * run, task and try ids that exist, or not), then gives the query string
 * (first line) and the body (the rest). Runs are created and changed in a
 * real store, so later inputs meet runs, backfills and events that earlier
 * ones made.
 * SPDX-License-Identifier: MIT */
#include "fuzz_api_fixture.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fa_init();
  return 0;
}

static const char *const dag_ids[] = {"etl", "other", "nope", "etl"};
static const char *const run_ids[] = {"r1", "manual__2026-01-01T00:00:00+00:00", "my_run", "..", "scheduled__2025-12-01T00:00:00+00:00"};
static const char *const task_ids[] = {"a", "b", "c", "zz"};
static const char *const tries[] = {"1", "2", "0", "-1", "99999999999999999999", "abc"};
static const char *const ctypes[] = {NULL, "application/json", "application/json; charset=utf-8", "text/plain"};
/* Host and Origin: its own name, a rebinding name, another site's page. */
static const char *const hosts[] = {"127.0.0.1:8787", "localhost:8787", "evil.example", "127.0.0.1:8787"};
static const char *const origins[] = {NULL, "http://localhost:8787", NULL, "http://evil.example"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3 || size > 16 * 1024) return -1;
  const dagd_api_route *route = &dagd_api_routes[data[0] % dagd_api_n_routes];
  uint8_t sel = data[1], flags = data[2];
  const char *params[5];
  size_t np = 0;
  for (const char *s = strchr(route->pattern, '{'); s && np < 5; s = strchr(s + 1, '{')) {
    if (strncmp(s, "{dag_id}", 8) == 0) params[np] = dag_ids[sel & 3];
    else if (strncmp(s, "{run_id}", 8) == 0) params[np] = run_ids[(sel >> 2) % 5];
    else if (strncmp(s, "{task_id}", 9) == 0) params[np] = task_ids[(sel >> 5) & 3];
    else if (strncmp(s, "{try}", 5) == 0) params[np] = tries[flags % 6];
    else params[np] = (sel & 1) ? "1" : "999";
    np++;
  }
  char *rest = fuzz_cstr(data + 3, size - 3);
  const char *body = rest;
  const char *query = "";
  char *nl = memchr(rest, '\n', size - 3);
  if (nl) {
    *nl = '\0';
    query = rest;
    body = nl + 1;
  }
  size_t body_len = size - 3 - (size_t)(body - rest);
  fa.host = hosts[flags >> 6];
  fa.origin = origins[flags >> 6];
  fa_call(route, params, np, query, body, body_len, ctypes[(flags >> 4) & 3], NULL);
  free(rest);
  return 0;
}
