/* Secret masking over whole texts and streams (see dagd/mask.h).
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "dagd/mask.h"
#include "dagd/util.h"

void dagd_mask_init(dagd_mask *m) {
  memset(m, 0, sizeof(*m));
  dagd_buf_init(&m->held);
}

bool dagd_mask_add(dagd_mask *m, const char *value) {
  size_t len = value ? strlen(value) : 0;
  if (len < DAGD_MASK_MIN) return false;
  if (dagd_mask_has(m, value)) return false;
  size_t at = 0;
  while (at < m->n && m->lens[at] >= len) at++; /* longest first */
  m->values = dagd_realloc(m->values, (m->n + 2) * sizeof(*m->values));
  m->lens = dagd_realloc(m->lens, (m->n + 1) * sizeof(*m->lens));
  memmove(m->values + at + 1, m->values + at, (m->n - at) * sizeof(*m->values));
  memmove(m->lens + at + 1, m->lens + at, (m->n - at) * sizeof(*m->lens));
  m->values[at] = dagd_strdup(value);
  m->lens[at] = len;
  m->values[++m->n] = NULL;
  if (len > m->longest) m->longest = len;
  /* Index the values by first byte (a counting sort, so each bucket stays
   * longest first). */
  memset(m->first_at, 0, sizeof(m->first_at));
  for (size_t i = 0; i < m->n; i++) m->first_at[(unsigned char)m->values[i][0] + 1]++;
  for (size_t b = 1; b <= 256; b++) m->first_at[b] += m->first_at[b - 1];
  size_t fill[256];
  memcpy(fill, m->first_at, sizeof(fill));
  m->by_first = dagd_realloc(m->by_first, m->n * sizeof(*m->by_first));
  for (size_t i = 0; i < m->n; i++) m->by_first[fill[(unsigned char)m->values[i][0]]++] = i;
  return true;
}

bool dagd_mask_add_secret(dagd_mask *m, const char *value) {
  if (!dagd_mask_add(m, value)) return false;
  dagd_buf json;
  dagd_buf_init(&json);
  dagd_buf_json_str(&json, value);
  json.data[json.len - 1] = '\0'; /* without the quotes */
  dagd_mask_add(m, json.data + 1);
  explicit_bzero(json.data, json.cap);
  dagd_buf_close(&json);
  return true;
}

void dagd_mask_add_env_secrets(dagd_mask *m, char *const *env) {
  for (char *const *e = env; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (strncmp(*e, "DAGD_SECRET_", 12) == 0 && eq) dagd_mask_add_secret(m, eq + 1);
  }
}

bool dagd_mask_has(const dagd_mask *m, const char *value) {
  size_t len = strlen(value);
  for (size_t i = 0; i < m->n; i++)
    if (m->lens[i] == len && memcmp(m->values[i], value, len) == 0) return true;
  return false;
}

/* Masks p[0, len) into out and returns how many bytes it used. Every
 * byte inside an occurrence of any value is covered, and each run of
 * covered bytes becomes one "***", so overlapping secrets leak no part
 * of either. *covered is how many bytes from p on are already covered by
 * a run whose "***" was written (0 for a new text); it is updated for
 * the bytes after those used. Unless final, the scan stops at the first
 * position where a value could still match once more bytes come: the
 * caller keeps the rest for later. */
static size_t scan(const dagd_mask *m, const char *p, size_t len, bool final, size_t *covered, dagd_buf *out) {
  size_t i = 0, plain = 0, end = *covered; /* p[plain, i) is text to copy; p[i, end) is covered */
  while (i < len) {
    unsigned char c = (unsigned char)p[i];
    size_t hit = 0, from = m->first_at[c], to = m->first_at[c + 1];
    if (from < to) {
      size_t rest = len - i;
      bool wait = false;
      for (size_t k = from; k < to && hit == 0 && !wait; k++) {
        size_t n = m->lens[m->by_first[k]]; /* longest first: the longest match wins */
        const char *v = m->values[m->by_first[k]];
        if (rest > 1 && v[1] != p[i + 1]) continue; /* most fail here: skip the call */
        if (n <= rest) hit = memcmp(p + i, v, n) == 0 ? n : 0;
        else wait = !final && memcmp(p + i, v, rest) == 0;
      }
      if (wait) break;
    }
    if (hit && i >= end) {
      dagd_buf_append(out, p + plain, i - plain);
      dagd_buf_puts(out, DAGD_MASK_TEXT);
    }
    if (hit && i + hit > end) end = i + hit;
    i++;
    if (i <= end) plain = i;
  }
  dagd_buf_append(out, p + plain, i - plain);
  *covered = end > i ? end - i : 0;
  return i;
}

void dagd_mask_text(const dagd_mask *m, dagd_buf *text) {
  if (m->n == 0 || text->len == 0) return;
  dagd_buf out;
  dagd_buf_init(&out);
  size_t covered = 0;
  scan(m, text->data, text->len, true, &covered, &out);
  dagd_buf_close(text);
  *text = out;
}

/* Wipes a buffer that may hold part of a secret, then frees it. */
static void wipe_buf(dagd_buf *b) {
  if (b->data) explicit_bzero(b->data, b->cap);
  dagd_buf_close(b);
}

void dagd_mask_feed(dagd_mask *m, const void *data, size_t len, dagd_buf *out) {
  if (m->held.len == 0) {
    size_t used = scan(m, data, len, false, &m->covered, out);
    if (used < len) dagd_buf_append(&m->held, (const char *)data + used, len - used);
    return;
  }
  dagd_buf joined = m->held;
  dagd_buf_init(&m->held);
  dagd_buf_append(&joined, data, len);
  size_t used = scan(m, joined.data, joined.len, false, &m->covered, out);
  if (used < joined.len) dagd_buf_append(&m->held, joined.data + used, joined.len - used);
  wipe_buf(&joined);
}

void dagd_mask_end(dagd_mask *m, dagd_buf *out) {
  if (m->held.len) scan(m, m->held.data, m->held.len, true, &m->covered, out);
  wipe_buf(&m->held);
  m->covered = 0;
}

void dagd_mask_close(dagd_mask *m) {
  for (size_t i = 0; i < m->n; i++) {
    explicit_bzero(m->values[i], m->lens[i]);
    free(m->values[i]);
  }
  free(m->values);
  free(m->lens);
  free(m->by_first);
  wipe_buf(&m->held);
  memset(m, 0, sizeof(*m));
}
