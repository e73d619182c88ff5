/* Fuzzes the duration parser ("1h30m", "1.5h") and the date parser
 * ("2026-01-01T02:00:00+01:00"): what they accept must be in range and read
 * back the same once formatted.
 * SPDX-License-Identifier: MIT */
#include "dagd/err.h"
#include "dagd/time.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 256) return -1;
  char *text = fuzz_cstr(data, size);
  dagd_err err;
  dagd_err_init(&err);
  int64_t d;
  if (dagd_duration_parse(text, &d, &err) == 0) {
    FUZZ_CHECK(d > 0 && d <= (int64_t)100 * 366 * 86400);
    char buf[64];
    dagd_duration_format(d, buf, sizeof(buf));
    int64_t back;
    FUZZ_CHECK(dagd_duration_parse(buf, &back, NULL) == 0 && back == d);
  } else {
    FUZZ_CHECK(err.msg[0] != '\0');
  }
  dagd_err_init(&err);
  int64_t t;
  int has_offset = -1;
  if (dagd_time_parse(text, &t, &has_offset, &err) == 0) {
    FUZZ_CHECK(has_offset == 0 || has_offset == 1);
    dagd_tm tm;
    dagd_epoch_to_tm(t, &tm);
    FUZZ_CHECK(dagd_tm_to_epoch(&tm) == t);
    if (tm.year >= 1 && tm.year <= 9999) {
      char buf[32];
      dagd_time_format_utc(t, buf);
      int64_t back;
      int off2;
      FUZZ_CHECK(dagd_time_parse(buf, &back, &off2, NULL) == 0 && back == t && off2 == 1);
    }
  } else {
    FUZZ_CHECK(err.msg[0] != '\0');
  }
  free(text);
  return 0;
}
