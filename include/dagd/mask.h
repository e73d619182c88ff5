/* Secret masking: every occurrence of a registered secret value becomes
 * "***". Works on a whole text, or on a stream cut at any byte: a stream
 * keeps back only the last bytes that could still be the start of a
 * secret, so a secret split across two reads is masked all the same, and
 * feeding a text in pieces gives exactly what masking it whole gives.
 * Every byte inside an occurrence of any value is covered, and each run
 * of covered bytes becomes one "***": overlapping secrets leak no part
 * of either.
 * Pure: no I/O. Used by the API (what it serves) and by the shim (what a
 * task writes to its log file).
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_MASK_H
#define DAGD_MASK_H

#include <stdbool.h>
#include <stddef.h>

#include "dagd/util.h"

/* Values shorter than this are not masked: masking them would garble
 * every log. */
#define DAGD_MASK_MIN 4
#define DAGD_MASK_TEXT "***"

typedef struct dagd_mask {
  char **values;            /* longest first, NULL-terminated (or NULL) */
  size_t *lens;
  size_t n;
  size_t longest;
  size_t *by_first;         /* indexes into values, by first byte, longest first */
  size_t first_at[257];     /* by_first[first_at[c], first_at[c + 1]): the values starting with c */
  dagd_buf held;            /* a stream's bytes kept back for the next feed */
  size_t covered;           /* of the stream's next bytes, how many are inside a masked run */
} dagd_mask;

void dagd_mask_init(dagd_mask *m);
/* Adds a value (copied). Values shorter than DAGD_MASK_MIN, and values
 * already there, are ignored: returns false for them. */
bool dagd_mask_add(dagd_mask *m, const char *value);
/* Adds a secret as it is and as it reads inside a JSON string, where
 * quotes, backslashes and control characters are escaped. */
bool dagd_mask_add_secret(dagd_mask *m, const char *value);
/* Adds every DAGD_SECRET_* value of env ("K=V", NULL-ended) as a secret. */
void dagd_mask_add_env_secrets(dagd_mask *m, char *const *env);
/* True when value was added (as it is). */
bool dagd_mask_has(const dagd_mask *m, const char *value);
/* Masks text in place. */
void dagd_mask_text(const dagd_mask *m, dagd_buf *text);
/* Streams: appends to out what of data (after what was kept back) is
 * certain, masked; keeps back fewer bytes than the longest value. */
void dagd_mask_feed(dagd_mask *m, const void *data, size_t len, dagd_buf *out);
/* Ends a stream: appends what was kept back, masked. */
void dagd_mask_end(dagd_mask *m, dagd_buf *out);
/* Frees the values, wiping them first. */
void dagd_mask_close(dagd_mask *m);

#endif
