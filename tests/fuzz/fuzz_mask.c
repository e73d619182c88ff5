/* Fuzzes secret masking: the input is secrets (one per line), a NUL, then
 * a text. The text masked whole must equal the text streamed in pieces
 * (cut after every byte whose value is a multiple of 7), nothing may be
 * held back past the end, and no secret without a '*' may survive in the
 * result ('*' could be completed by a "***" inserted next to it).
 * SPDX-License-Identifier: MIT */
#include "dagd/mask.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return -1;
  const uint8_t *nul = memchr(data, 0, size);
  if (nul == NULL) return -1;
  char *list = fuzz_cstr(data, (size_t)(nul - data));
  const char *text = (const char *)nul + 1;
  size_t len = size - (size_t)(nul - data) - 1;
  dagd_mask m;
  dagd_mask_init(&m);
  for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) dagd_mask_add_secret(&m, line);
  free(list);

  dagd_buf whole, stream;
  dagd_buf_init(&whole);
  dagd_buf_init(&stream);
  dagd_buf_append(&whole, text, len);
  dagd_mask_text(&m, &whole);
  size_t at = 0;
  for (size_t i = 0; i < len; i++) {
    if ((unsigned char)text[i] % 7 != 0) continue;
    dagd_mask_feed(&m, text + at, i + 1 - at, &stream);
    FUZZ_CHECK(m.held.len < m.longest || m.held.len == 0);
    at = i + 1;
  }
  dagd_mask_feed(&m, text + at, len - at, &stream);
  dagd_mask_end(&m, &stream);
  FUZZ_CHECK(m.held.len == 0 && m.covered == 0);
  FUZZ_CHECK(whole.len == stream.len && (whole.len == 0 || memcmp(whole.data, stream.data, whole.len) == 0));
  for (size_t k = 0; k < m.n; k++) {
    if (strchr(m.values[k], '*') || whole.len == 0) continue;
    FUZZ_CHECK(memmem(whole.data, whole.len, m.values[k], m.lens[k]) == NULL);
  }
  dagd_buf_close(&whole);
  dagd_buf_close(&stream);
  dagd_mask_close(&m);
  return 0;
}
