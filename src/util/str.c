/* Small string predicates: id patterns, suffixes, "did you mean" suggestions.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <string.h>
#include <strings.h>

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
 * transpositions), case-insensitive, capped: above `cap` the exact value
 * does not matter. Three rows of the table are enough. Only ever run on
 * an error path, over short ids. */
static size_t osa_distance(const char *a, const char *b, size_t cap) {
  size_t la = strlen(a), lb = strlen(b);
  if ((la > lb ? la - lb : lb - la) > cap || la > 250 || lb > 250) return cap + 1;
  size_t rows[3][251];
  size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
  for (size_t j = 0; j <= lb; j++) prev[j] = j;
  for (size_t i = 1; i <= la; i++) {
    cur[0] = i;
    char ca = (char)tolower((unsigned char)a[i - 1]);
    for (size_t j = 1; j <= lb; j++) {
      char cb = (char)tolower((unsigned char)b[j - 1]);
      size_t v = prev[j - 1] + (ca == cb ? 0 : 1);
      if (prev[j] + 1 < v) v = prev[j] + 1;
      if (cur[j - 1] + 1 < v) v = cur[j - 1] + 1;
      if (i > 1 && j > 1 && ca == (char)tolower((unsigned char)b[j - 2]) &&
          (char)tolower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < v)
        v = prev2[j - 2] + 1;
      cur[j] = v;
    }
    size_t *t = prev2;
    prev2 = prev;
    prev = cur;
    cur = t;
  }
  return prev[lb];
}

const char *dagd_str_suggest(const char *name, const char *const *candidates, size_t n) {
  /* The same bound as the Lua loader's suggestions: one edit for short
   * names, two otherwise; ties go to the first in byte order. */
  size_t cap = strlen(name) <= 4 ? 1 : 2;
  const char *best = NULL;
  size_t best_d = cap + 1;
  for (size_t i = 0; i < n; i++) {
    if (candidates[i] == NULL || strcmp(candidates[i], name) == 0) continue;
    size_t d = osa_distance(name, candidates[i], cap);
    if (d < best_d || (d == best_d && best && strcmp(candidates[i], best) < 0)) {
      best = candidates[i];
      best_d = d;
    }
  }
  return best_d <= cap ? best : NULL;
}

size_t dagd_url_authority_len(const char *url) {
  size_t skip;
  if (strncasecmp(url, "http://", 7) == 0) skip = 7;
  else if (strncasecmp(url, "https://", 8) == 0) skip = 8;
  else return 0;
  return skip + strcspn(url + skip, "/?#");
}

char *dagd_url_origin(const char *url, bool whole) {
  size_t n = dagd_url_authority_len(url);
  if (n == 0) return NULL;
  size_t host = url[4] == ':' ? 7 : 8;
  if (n == host) return NULL; /* no host */
  if (whole && !(url[n] == '\0' || (url[n] == '/' && url[n + 1] == '\0'))) return NULL;
  for (size_t i = host; i < n; i++)
    if (url[i] == '@' || url[i] == '\\' || isspace((unsigned char)url[i]) || (unsigned char)url[i] < 0x20) return NULL;
  char *o = dagd_strndup(url, n);
  for (char *c = o; *c; c++) *c = (char)tolower((unsigned char)*c);
  return o;
}
