/* Fuzzes the schedule parser (cron expressions, presets, intervals) and the
 * next/prev search on what it accepts: in UTC, where a fire time found by
 * next must be found again by prev just after it, and in zones with DST
 * changes (whole hours, and Lord Howe's half hour).
 * SPDX-License-Identifier: MIT */
#include "dagd/cron.h"
#include "dagd/err.h"
#include "dagd/tz.h"
#include "fuzz_common.h"

static dagd_tz *zones[2];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (dagd_tz_load("Europe/Berlin", &zones[0], NULL) < 0) abort();
  if (dagd_tz_load("Australia/Lord_Howe", &zones[1], NULL) < 0) abort();
  return 0;
}

/* Instants to search from: around 2026, a leap day, 1970, a far year. */
static const int64_t starts[] = {1767225600, 1709164800, 0, 1711846800, 4102444800LL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 512) return -1;
  char *text = fuzz_cstr(data, size);
  dagd_err err;
  dagd_err_init(&err);
  dagd_cron *c = NULL;
  int rc = dagd_cron_parse(text, &c, &err);
  if (rc < 0) {
    FUZZ_CHECK(c == NULL && err.msg[0] != '\0');
    free(text);
    return 0;
  }
  FUZZ_CHECK(strcmp(dagd_cron_text(c), text) == 0);
  free(dagd_cron_describe(c));
  int64_t t0 = starts[size % (sizeof(starts) / sizeof(starts[0]))];
  int64_t n, p;
  if (dagd_cron_next(c, dagd_tz_utc(), t0, &n) == 0) {
    FUZZ_CHECK(n > t0);
    FUZZ_CHECK(dagd_cron_prev(c, dagd_tz_utc(), n + 1, &p) == 0 && p == n);
    int64_t n2;
    if (dagd_cron_next(c, dagd_tz_utc(), n, &n2) == 0) FUZZ_CHECK(n2 > n);
  }
  if (dagd_cron_prev(c, dagd_tz_utc(), t0, &p) == 0) FUZZ_CHECK(p < t0);
  for (size_t z = 0; z < 2; z++) {
    if (dagd_cron_next(c, zones[z], t0, &n) == 0) FUZZ_CHECK(n > t0);
    if (dagd_cron_prev(c, zones[z], t0, &p) == 0) FUZZ_CHECK(p < t0);
  }
  dagd_cron_free(c);
  free(text);
  return 0;
}
