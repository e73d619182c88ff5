/* Fuzzes the Alertmanager webhook adapter (POST /api/v1/hooks/alertmanager):
 * the whole input is the delivery's body. Deliveries pile up in one store,
 * so repeats and resolved alerts meet the dedupe records of earlier ones.
 * SPDX-License-Identifier: MIT */
#include "fuzz_api_fixture.h"

static const dagd_api_route *hook;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fa_init();
  for (size_t i = 0; i < dagd_api_n_routes; i++)
    if (strcmp(dagd_api_routes[i].pattern, "/api/v1/hooks/alertmanager") == 0) hook = &dagd_api_routes[i];
  if (!hook) abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 64 * 1024) return -1;
  char *body = fuzz_cstr(data, size);
  fa_call(hook, NULL, 0, "", body, size, "application/json", NULL);
  free(body);
  return 0;
}
