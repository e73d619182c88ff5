/* Small string helpers: id patterns, suffixes, and the nearest name for a
 * "did you mean".
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <string.h>

#include "dagd/util.h"

static bool id_match(const char *id, const char *extra) {
  if (id == NULL) return false;
  size_t n = 0;
  for (const char *p = id; *p; p++, n++) {
    char c = *p;
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              strchr(extra, c) != NULL;
    if (!ok || n >= 250) return false;
  }
  return n >= 1;
}

/* "." and ".." are path components, not names: an id becomes a folder
 * under logs_folder, and one made only of dots would name the folder
 * itself, its parent, or (in a URL) be removed by dot-segment
 * normalisation. "..." is refused too, so the rule stays one line. */
static bool only_dots(const char *id) {
  return id[strspn(id, ".")] == '\0';
}

const char *dagd_id_problem(const char *id, bool run_id) {
  if (id == NULL || *id == '\0') return "must not be empty";
  if (!id_match(id, run_id ? "_.~:+-" : "_.-"))
    return run_id ? "must match " DAGD_RUN_ID_PATTERN : "must match " DAGD_ID_PATTERN;
  if (only_dots(id)) return "must not be made only of dots";
  return NULL;
}

bool dagd_id_valid(const char *id) { return dagd_id_problem(id, false) == NULL; }

bool dagd_run_id_valid(const char *id) { return dagd_id_problem(id, true) == NULL; }

bool dagd_str_has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Optimal string alignment distance (Levenshtein plus adjacent
 * transpositions), case-insensitive; only for short names (an error path). */
static size_t osa_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return (size_t)-1;
  size_t d[65][65];
  for (size_t i = 0; i <= la; i++) d[i][0] = i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = j;
  for (size_t i = 1; i <= la; i++) {
    for (size_t j = 1; j <= lb; j++) {
      int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
      size_t v = d[i - 1][j - 1] + (ca != cb);
      if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) && tolower((unsigned char)a[i - 2]) == cb &&
          d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  }
  return d[la][lb];
}

const char *dagd_str_suggest(const char *name, const char *const *candidates, size_t n) {
  const char *best = NULL;
  size_t bd = (size_t)-1;
  for (size_t i = 0; i < n; i++) {
    size_t d = osa_distance(name, candidates[i]);
    if (d < bd || (d == bd && best && strcmp(candidates[i], best) < 0)) {
      best = candidates[i];
      bd = d;
    }
  }
  /* The bound the DAG loader's suggestions use (lua/dagd/init.lua). */
  return best && bd <= (strlen(name) <= 4 ? 1u : 2u) ? best : NULL;
}
