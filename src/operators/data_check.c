/* The data_check operator: validates a CSV (RFC 4180, via libcsv) or
 * JSON-lines file in one streaming pass: required columns and their types,
 * ranges, missingness, uniqueness, row counts, and drift against a
 * reference file (PSI on the reference's quantile bins or category
 * frequencies, two-sample KS). Per-column results are outputs; the report
 * goes to the log and, as JSON, to the `report` output; any failed check
 * fails the task.
 *
 * Memory is bounded whatever the file size: the checked file is never
 * held, only counters per column. The reference is kept as a uniform
 * sample of at most 4M values in all (32 MB; at least 64K per column) for
 * its quantiles; the checked file adds its values to a 10-bin PSI
 * histogram and a KS histogram over at most 4,096 bins on the reference's
 * values (exact when the reference has no more distinct values, else low
 * by at most 1/4096), so a drifted file costs no more than a clean one.
 * Unique columns keep 64-bit fingerprints, spilling sorted runs of 2M
 * (16 MB) to a temporary file; libcsv's field buffer is capped at 64 MB.
 * SPDX-License-Identifier: MIT */
#include <csv.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dagd/err.h"
#include "dagd/operators.h"
#include "dagd/util.h"
#include "stats.h"

#define READ_CHUNK (1 << 20)
#define FIELD_MAX ((size_t)64 << 20)      /* longest CSV field or JSON line */
#define SAMPLE_TOTAL ((size_t)1 << 22)    /* reference values kept, all columns */
#define SAMPLE_MIN ((size_t)1 << 16)      /* ... and at least this per column */
#define DUPES_MEM ((size_t)1 << 20)       /* fingerprints in memory per unique column (16 MB) */
#define MAX_CATEGORIES 10000              /* more distinct values fold into "(other)" */
#define CAT_SLOTS 32768                   /* hash slots: load stays below 1/3 */
#define OUTPUTS_BUDGET 40000              /* bytes of per-column outputs ($DAGD_OUTPUT is 64 KB) */
#define REPORT_BUDGET 20000

typedef enum { T_ANY, T_INT, T_FLOAT, T_STRING, T_BOOL, T_DATE } col_type;
static const char *const type_names[] = {"any", "int", "float", "string", "bool", "date"};

/* Category -> index, for categorical PSI. Index MAX_CATEGORIES is "(other)". */
typedef struct catmap {
  int32_t *slot;  /* index + 1; 0 is empty */
  char **name;
  uint64_t *hash, *ref, *cur;
  size_t n;
} catmap;

typedef struct column {
  char *name, *key;      /* key: the name made fit for an output key */
  col_type type;
  bool in_schema, configured, present, in_ref, seen_key;
  uint64_t missing, invalid, out_of_range;
  uint64_t invalid_row;
  char invalid_example[48];
  bool has_min, has_max;
  double min, max;
  const char *min_s, *max_s;  /* date bounds, compared as text */
  double max_missing;         /* < 0: no threshold */
  bool unique;
  dagd_stats_dupes *dupes;
  uint64_t duplicates;
  bool drift, numeric, ref_numeric_ok, ref_empty;
  double psi_max, ks_max;     /* < 0: no threshold */
  dagd_stats_reservoir res;
  uint64_t ref_values;
  catmap cats;
  double *psi_edges;
  size_t n_psi_edges;
  uint64_t *psi_ref, *psi_cur;
  dagd_stats_ks_hist ks;
  bool has_psi, has_ks;
  double psi, ks_stat;
} column;

enum { PASS_REF, PASS_CUR };

typedef struct dc {
  FILE *log;
  column *cols;
  size_t n_cols;
  bool drift_all;             /* reference and no drift list nor schema: every column */
  size_t bins;
  const char **na;
  size_t n_na;
  bool na_first[256];
  double default_max_missing;
  bool has_min_rows, has_max_rows;
  uint64_t min_rows, max_rows;
  /* the pass in progress */
  int pass;
  int *by_field;              /* field index -> column index, -1 untracked */
  size_t n_fields, field;
  char **header;
  size_t n_header;
  bool header_done;
  uint64_t rows, bad_records, bad_record;
  char bad_detail[96];
  dagd_err err;
  uint64_t cur_rows, ref_rows;
} dc;

/* ------------------------------------------------------------------ values */

static bool parse_int(const char *s, size_t len, double *out) {
  size_t i = s[0] == '-' || s[0] == '+';
  if (i == len || len - i > 19) return false;
  uint64_t v = 0;
  for (size_t j = i; j < len; j++) {
    if (s[j] < '0' || s[j] > '9') return false;
    v = v * 10 + (uint64_t)(s[j] - '0');  /* 19 digits fit in 64 bits */
  }
  if (v > (uint64_t)INT64_MAX + (s[0] == '-')) return false;
  *out = s[0] == '-' ? -(double)v : (double)v;
  return true;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static bool parse_float(const char *s, size_t len, double *out) {
  /* Clinger's fast path for plain decimals ("-123.45"): digits that fit in
   * 2^53 divided by an exact power of ten is one correctly rounded
   * operation, so the result equals strtod's at a fraction of its cost.
   * Anything else (exponents, long mantissas) goes to strtod. */
  size_t i = s[0] == '-' || s[0] == '+', digits = 0, frac = 0;
  uint64_t m = 0;
  bool dot = false;
  for (; i < len; i++) {
    char ch = s[i];
    if (ch >= '0' && ch <= '9') {
      m = m * 10 + (uint64_t)(ch - '0');
      digits++;
      frac += dot;
    } else if (ch == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (i == len && digits > 0 && digits <= 15 && frac <= 22) {
    double v = (double)m / pow10_exact[frac];
    *out = s[0] == '-' ? -v : v;
    return true;
  }
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end != s + len || end == s || !isfinite(v)) return false;
  *out = v;
  return true;
}

/* Writes "true" or "false" to *canon so 1, yes and TRUE are one category. */
static bool parse_bool(const char *s, size_t len, const char **canon) {
  static const char *const t[] = {"true", "t", "yes", "y", "1"}, *const f[] = {"false", "f", "no", "n", "0"};
  for (size_t i = 0; i < 5; i++) {
    if (strlen(t[i]) == len && strncasecmp(s, t[i], len) == 0) return *canon = "true", true;
    if (strlen(f[i]) == len && strncasecmp(s, f[i], len) == 0) return *canon = "false", true;
  }
  return false;
}

/* YYYY-MM-DD, optionally followed by T or a space and a time. */
static bool parse_date(const char *s, size_t len) {
  if (len < 10 || (len > 10 && s[10] != 'T' && s[10] != ' ')) return false;
  for (int i = 0; i < 10; i++)
    if (i == 4 || i == 7 ? s[i] != '-' : !isdigit((unsigned char)s[i])) return false;
  int y = atoi(s), m = (s[5] - '0') * 10 + s[6] - '0', d = (s[8] - '0') * 10 + s[9] - '0';
  static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1) return false;
  int max = dim[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
  return d <= max;
}

static bool is_missing(const dc *c, const char *s, size_t len) {
  if (len == 0) return true;
  if (!c->na_first[(unsigned char)s[0]]) return false;
  for (size_t i = 0; i < c->n_na; i++)
    if (strlen(c->na[i]) == len && memcmp(c->na[i], s, len) == 0) return true;
  return false;
}

/* ------------------------------------------------------------- categories */

/* Index of a category (allocating the map on first use), or
 * MAX_CATEGORIES for "(other)". Call before indexing m->ref or m->cur. */
static size_t cat_index(catmap *m, const char *s, size_t len, bool insert) {
  if (m->slot == NULL) {
    m->slot = dagd_calloc(CAT_SLOTS, sizeof(int32_t));
    m->name = dagd_calloc(MAX_CATEGORIES, sizeof(char *));
    m->hash = dagd_calloc(MAX_CATEGORIES, sizeof(uint64_t));
    m->ref = dagd_calloc(MAX_CATEGORIES + 1, sizeof(uint64_t));
    m->cur = dagd_calloc(MAX_CATEGORIES + 1, sizeof(uint64_t));
  }
  uint64_t h = dagd__stats_hash(s, len, 0x64616764);
  for (size_t i = h & (CAT_SLOTS - 1);; i = (i + 1) & (CAT_SLOTS - 1)) {
    int32_t k = m->slot[i];
    if (k == 0) {
      if (!insert || m->n == MAX_CATEGORIES) return MAX_CATEGORIES;
      m->name[m->n] = dagd_strndup(s, len);
      m->hash[m->n] = h;
      m->slot[i] = (int32_t)++m->n;
      return m->n - 1;
    }
    if (m->hash[k - 1] == h && strlen(m->name[k - 1]) == len && memcmp(m->name[k - 1], s, len) == 0)
      return (size_t)k - 1;
  }
}

static void cat_free(catmap *m) {
  for (size_t i = 0; i < m->n; i++) free(m->name[i]);
  free(m->slot);
  free(m->name);
  free(m->hash);
  free(m->ref);
  free(m->cur);
  memset(m, 0, sizeof(*m));
}

/* ----------------------------------------------------------------- columns */

static size_t col_find(dc *c, const char *name) {
  for (size_t i = 0; i < c->n_cols; i++)
    if (strcmp(c->cols[i].name, name) == 0) return i;
  return c->n_cols;
}

static column *col_get(dc *c, const char *name) {
  size_t i = col_find(c, name);
  if (i < c->n_cols) return &c->cols[i];
  c->cols = dagd_realloc(c->cols, (c->n_cols + 1) * sizeof(column));
  column *col = &c->cols[c->n_cols++];
  memset(col, 0, sizeof(*col));
  col->name = dagd_strdup(name);
  size_t n = strlen(name) > 200 ? 200 : strlen(name);
  col->key = dagd_strndup(name, n);
  for (char *p = col->key; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-') *p = '_';
  if (n == 0) {
    free(col->key);
    col->key = dagd_strdup("_");
  }
  col->max_missing = -1;
  col->psi_max = col->ks_max = -1;
  col->ref_numeric_ok = true;
  return col;
}

static void col_free(column *col) {
  free(col->name);
  free(col->key);
  dagd__stats_dupes_free(col->dupes);
  dagd__stats_reservoir_close(&col->res);
  cat_free(&col->cats);
  free(col->psi_edges);
  free(col->psi_ref);
  free(col->psi_cur);
  dagd__stats_ks_hist_close(&col->ks);
}

/* A value of a tracked column in the reference: kept for drift only. */
static void ref_value(dc *c, column *col, const char *s, size_t len) {
  if (!col->drift || is_missing(c, s, len)) return;
  col->ref_values++;
  double x;
  const char *canon;
  switch (col->type) {
  case T_INT:
  case T_FLOAT:
    if (col->type == T_INT ? parse_int(s, len, &x) : parse_float(s, len, &x)) dagd__stats_reservoir_add(&col->res, x);
    return;
  case T_BOOL:
    if (parse_bool(s, len, &canon)) {
      size_t k = cat_index(&col->cats, canon, strlen(canon), true);
      col->cats.ref[k]++;
    }
    return;
  case T_ANY:
    /* Numeric while every value is a number; the categories are kept
     * meanwhile in case one is not. */
    if (col->ref_numeric_ok && parse_float(s, len, &x)) dagd__stats_reservoir_add(&col->res, x);
    else col->ref_numeric_ok = false;
    break;
  default: break;
  }
  size_t k = cat_index(&col->cats, s, len, true);
  col->cats.ref[k]++;
}

/* A value of a tracked column in the checked file. */
static void cur_value(dc *c, column *col, const char *s, size_t len) {
  if (is_missing(c, s, len)) {
    col->missing++;
    return;
  }
  double x = 0;
  bool num = false;
  const char *canon = NULL;
  bool ok = true;
  switch (col->type) {
  case T_INT: ok = num = parse_int(s, len, &x); break;
  case T_FLOAT: ok = num = parse_float(s, len, &x); break;
  case T_BOOL: ok = parse_bool(s, len, &canon); break;
  case T_DATE: ok = parse_date(s, len); break;
  default: break;
  }
  if (!ok) {
    if (col->invalid++ == 0) {
      col->invalid_row = c->rows + 1;
      snprintf(col->invalid_example, sizeof(col->invalid_example), "%.*s", (int)(len > 40 ? 40 : len), s);
    }
    return;
  }
  if (col->has_min || col->has_max) {
    bool in = true;
    if (col->min_s || col->max_s) {
      in = (!col->min_s || strcmp(s, col->min_s) >= 0) && (!col->max_s || strcmp(s, col->max_s) <= 0);
    } else {
      if (!num) num = parse_float(s, len, &x);
      in = num && (!col->has_min || x >= col->min) && (!col->has_max || x <= col->max);
    }
    col->out_of_range += !in;
  }
  if (col->unique) dagd__stats_dupes_add(col->dupes, dagd__stats_hash(s, len, 0));
  if (!col->drift || !col->in_ref) return;
  if (col->numeric) {
    if (!num) num = parse_float(s, len, &x);
    if (!num) return;  /* not a number in an untyped column: left out of drift */
    col->psi_cur[dagd__stats_lower_bound(col->psi_edges, col->n_psi_edges, x)]++;
    dagd__stats_ks_hist_add(&col->ks, x);
  } else {
    if (canon) s = canon, len = strlen(canon);
    size_t k = cat_index(&col->cats, s, len, false);
    col->cats.cur[k]++;
  }
}

static void on_value(dc *c, size_t field, const char *s, size_t len) {
  if (field >= c->n_fields || c->by_field[field] < 0) return;
  column *col = &c->cols[c->by_field[field]];
  if (c->pass == PASS_REF) ref_value(c, col, s, len);
  else cur_value(c, col, s, len);
}

/* Which columns a pass follows, once the names are known (the CSV header
 * or the first JSON object). */
static void map_fields(dc *c, char **names, size_t n) {
  for (size_t i = 0; i < n && c->pass == PASS_CUR; i++) col_get(c, names[i]);
  if (c->pass == PASS_REF && c->drift_all)
    for (size_t i = 0; i < n; i++) {
      column *col = col_get(c, names[i]);
      col->drift = col->configured = true;
    }
  c->by_field = dagd_realloc(c->by_field, (n ? n : 1) * sizeof(int));
  c->n_fields = n;
  for (size_t i = 0; i < n; i++) {
    size_t k = col_find(c, names[i]);
    column *col = k < c->n_cols ? &c->cols[k] : NULL;
    bool dup = false;
    for (size_t j = 0; j < i && !dup; j++) dup = strcmp(names[j], names[i]) == 0;
    c->by_field[i] = -1;
    if (col == NULL || dup) continue;
    if (c->pass == PASS_CUR) {
      col->present = true;
      c->by_field[i] = (int)k;
    } else if (col->drift) {
      col->in_ref = true;
      c->by_field[i] = (int)k;
    }
  }
  if (c->pass == PASS_REF) {
    size_t n_drift = 0;
    for (size_t i = 0; i < c->n_cols; i++) n_drift += c->cols[i].drift && c->cols[i].in_ref;
    size_t cap = n_drift ? SAMPLE_TOTAL / n_drift : SAMPLE_TOTAL;
    if (cap < SAMPLE_MIN) cap = SAMPLE_MIN;
    for (size_t i = 0; i < c->n_cols; i++)
      dagd__stats_reservoir_init(&c->cols[i].res, cap, dagd__stats_hash(c->cols[i].name, strlen(c->cols[i].name), 1));
  }
}

/* ---------------------------------------------------------------- readers */

static void bad_record(dc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad_record(dc *c, const char *fmt, ...) {
  if (c->bad_records++ == 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->bad_detail, sizeof(c->bad_detail), fmt, ap);
    va_end(ap);
  }
}

static void csv_field_cb(void *s, size_t len, void *data) {
  dc *c = data;
  const char *text = s ? s : "";
  if (!c->header_done) {
    /* A UTF-8 byte order mark is not part of the first name. */
    if (c->n_header == 0 && len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) text += 3, len -= 3;
    c->header = dagd_realloc(c->header, (c->n_header + 1) * sizeof(char *));
    c->header[c->n_header++] = dagd_strndup(text, len);
    return;
  }
  on_value(c, c->field++, text, len);
}

static void csv_row_cb(int term, void *data) {
  dc *c = data;
  if (!c->header_done) {
    c->header_done = true;
    map_fields(c, c->header, c->n_header);
    return;
  }
  c->rows++;
  if (c->field != c->n_fields)
    bad_record(c, "record %llu has %zu fields, the header %zu", (unsigned long long)c->rows, c->field, c->n_fields);
  /* Fields a short record lacks are missing values. */
  for (size_t i = c->field; i < c->n_fields; i++) on_value(c, i, "", 0);
  c->field = 0;
}

/* libcsv grows its field buffer to the longest field: refuse past a cap
 * so a file with no closing quote cannot take all memory. */
static void *csv_capped_realloc(void *p, size_t n) {
  return n > FIELD_MAX ? NULL : realloc(p, n);
}

static int read_csv(dc *c, FILE *f, const char *path, unsigned char delim) {
  struct csv_parser p;
  if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
    return dagd_err_set(&c->err, DAGD_ENOMEM, "%s: cannot start the CSV parser", path);
  csv_set_delim(&p, delim);
  csv_set_realloc_func(&p, csv_capped_realloc);
  char *buf = dagd_malloc(READ_CHUNK);
  int rc = 0;
  size_t n;
  while ((n = fread(buf, 1, READ_CHUNK, f)) > 0) {
    if (csv_parse(&p, buf, n, csv_field_cb, csv_row_cb, c) != n) {
      rc = dagd_err_set(&c->err, DAGD_ESYNTAX, "%s: malformed CSV in record %llu: %s", path,
                        (unsigned long long)c->rows + 1, csv_strerror(csv_error(&p)));
      break;
    }
  }
  if (rc == 0 && csv_fini(&p, csv_field_cb, csv_row_cb, c) != 0)
    rc = dagd_err_set(&c->err, DAGD_ESYNTAX, "%s: malformed CSV at the end (record %llu): %s", path,
                      (unsigned long long)c->rows + 1, csv_strerror(csv_error(&p)));
  if (rc == 0 && ferror(f)) rc = dagd_err_set(&c->err, DAGD_EIO, "%s: read error: %s", path, strerror(errno));
  if (rc == 0 && !c->header_done) map_fields(c, c->header, c->n_header);
  csv_free(&p);
  free(buf);
  return rc;
}

static void json_field(dc *c, size_t field, json_t *v) {
  char num[64];
  switch (json_typeof(v)) {
  case JSON_STRING: on_value(c, field, json_string_value(v), json_string_length(v)); break;
  case JSON_INTEGER:
    on_value(c, field, num, (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v)));
    break;
  case JSON_REAL: on_value(c, field, num, (size_t)snprintf(num, sizeof(num), "%.17g", json_real_value(v))); break;
  case JSON_TRUE: on_value(c, field, "true", 4); break;
  case JSON_FALSE: on_value(c, field, "false", 5); break;
  case JSON_NULL: on_value(c, field, "", 0); break;
  default: {
    char *text = json_dumps(v, JSON_COMPACT);
    on_value(c, field, text ? text : "", text ? strlen(text) : 0);
    free(text);
  }
  }
}

static int read_jsonl(dc *c, FILE *f, const char *path) {
  char *line = NULL;
  size_t cap = 0, lineno = 0;
  ssize_t len;
  int rc = 0;
  while ((len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    if ((size_t)len > FIELD_MAX) {
      rc = dagd_err_set(&c->err, DAGD_ELIMIT, "%s:%zu: line longer than %zu bytes", path, lineno, FIELD_MAX);
      break;
    }
    size_t i = 0;
    while (i < (size_t)len && isspace((unsigned char)line[i])) i++;
    if (i == (size_t)len) continue;
    json_error_t jerr;
    json_t *obj = json_loadb(line, (size_t)len, 0, &jerr);
    if (!json_is_object(obj)) {
      c->rows++;
      bad_record(c, "line %zu: %s", lineno, obj ? "not a JSON object" : jerr.text);
      json_decref(obj);
      continue;
    }
    if (!c->header_done) {
      /* The first object's keys, with the configured columns, are the
       * columns followed. */
      c->header_done = true;
      size_t n = json_object_size(obj) + c->n_cols, k = 0;
      char **names = dagd_calloc(n ? n : 1, sizeof(char *));
      for (size_t j = 0; j < c->n_cols; j++) names[k++] = dagd_strdup(c->cols[j].name);
      const char *key;
      json_t *v;
      json_object_foreach(obj, key, v) names[k++] = dagd_strdup(key);
      map_fields(c, names, k);
      for (size_t j = 0; j < k; j++) free(names[j]);
      free(names);
    }
    c->rows++;
    for (size_t j = 0; j < c->n_fields; j++) {
      if (c->by_field[j] < 0) continue;
      column *col = &c->cols[c->by_field[j]];
      json_t *v = json_object_get(obj, col->name);
      if (v) col->seen_key = true;
      if (v) json_field(c, j, v);
      else on_value(c, j, "", 0);
    }
    json_decref(obj);
  }
  free(line);
  if (rc == 0 && ferror(f)) rc = dagd_err_set(&c->err, DAGD_EIO, "%s: read error: %s", path, strerror(errno));
  if (rc == 0 && !c->header_done) map_fields(c, NULL, 0);
  /* A column is there when some object has its key. */
  for (size_t j = 0; j < c->n_cols; j++) {
    column *col = &c->cols[j];
    if (c->pass == PASS_CUR) col->present = col->seen_key;
    else col->in_ref = col->in_ref && col->seen_key;
    col->seen_key = false;
  }
  return rc;
}

static bool is_jsonl(const char *format, const char *path) {
  if (format) return strcmp(format, "jsonl") == 0;
  return dagd_str_has_suffix(path, ".jsonl") || dagd_str_has_suffix(path, ".ndjson") ||
         dagd_str_has_suffix(path, ".json");
}

/* One pass over a file. */
static int read_file(dc *c, int pass, const char *path, const char *format, unsigned char delim) {
  c->pass = pass;
  c->rows = 0;
  c->field = 0;
  c->header_done = false;
  for (size_t i = 0; i < c->n_header; i++) free(c->header[i]);
  c->n_header = 0;
  FILE *f = fopen(path, "rb");
  if (f == NULL) return dagd_err_set(&c->err, DAGD_ENOENT, "cannot open %s: %s", path, strerror(errno));
  int rc = is_jsonl(format, path) ? read_jsonl(c, f, path) : read_csv(c, f, path, delim);
  fclose(f);
  return rc;
}

/* ----------------------------------------------------------------- config */

static bool num_of(const json_t *v, double *out) {
  if (!json_is_number(v)) return false;
  *out = json_number_value(v);
  return true;
}

/* A threshold given for every column (a number) or per column (an object). */
static double threshold_for(const json_t *v, const char *col, double dflt) {
  double x;
  if (num_of(v, &x)) return x;
  if (json_is_object(v) && num_of(json_object_get(v, col), &x)) return x;
  return dflt;
}

static int configure(dc *c, const json_t *cfg, bool has_ref) {
  static const char *const default_na[] = {"NA", "N/A", "NaN", "nan", "null", "NULL", "None"};
  const json_t *na = json_object_get(cfg, "na_values");
  size_t n_na = json_is_array(na) ? json_array_size(na) : sizeof(default_na) / sizeof(default_na[0]);
  c->na = dagd_calloc(n_na ? n_na : 1, sizeof(char *));
  for (size_t i = 0; i < n_na; i++) {
    const char *s = json_is_array(na) ? json_string_value(json_array_get(na, i)) : default_na[i];
    if (s == NULL || *s == '\0') continue;
    c->na[c->n_na++] = s;
    c->na_first[(unsigned char)s[0]] = true;
  }
  const json_t *schema = json_object_get(cfg, "schema"), *v;
  const char *name;
  json_object_foreach((json_t *)schema, name, v) {
    column *col = col_get(c, name);
    col->in_schema = col->configured = true;
    const char *t = json_string_value(v);
    size_t k;
    for (k = 0; t && k < sizeof(type_names) / sizeof(type_names[0]); k++)
      if (strcmp(t, type_names[k]) == 0) break;
    if (t == NULL || k == sizeof(type_names) / sizeof(type_names[0]) || k == T_ANY)
      return dagd_err_set(&c->err, DAGD_EINVAL, "schema.%s: unknown type (int, float, string, bool or date)", name);
    col->type = (col_type)k;
  }
  json_object_foreach((json_t *)json_object_get(cfg, "ranges"), name, v) {
    column *col = col_get(c, name);
    col->configured = true;
    const json_t *lo = json_object_get(v, "min"), *hi = json_object_get(v, "max");
    if (json_is_array(v)) lo = json_array_get(v, 0), hi = json_array_get(v, 1);
    col->has_min = num_of(lo, &col->min) || (col->min_s = json_string_value(lo)) != NULL;
    col->has_max = num_of(hi, &col->max) || (col->max_s = json_string_value(hi)) != NULL;
    if (!col->has_min && !col->has_max)
      return dagd_err_set(&c->err, DAGD_EINVAL, "ranges.%s: needs min or max", name);
  }
  const json_t *mm = json_object_get(cfg, "max_missing");
  c->default_max_missing = -1;
  num_of(mm, &c->default_max_missing);
  json_object_foreach((json_t *)(json_is_object(mm) ? mm : NULL), name, v) {
    column *col = col_get(c, name);
    col->configured = true;
    num_of(v, &col->max_missing);
  }
  size_t i;
  json_array_foreach(json_object_get(cfg, "unique"), i, v) {
    if (!json_is_string(v)) continue;
    column *col = col_get(c, json_string_value(v));
    col->configured = col->unique = true;
    if (col->dupes == NULL) col->dupes = dagd__stats_dupes_new(DUPES_MEM);
  }
  const json_t *drift = json_object_get(cfg, "drift");
  if (has_ref) {
    if (json_is_array(drift)) {
      json_array_foreach(drift, i, v) {
        if (!json_is_string(v)) continue;
        column *col = col_get(c, json_string_value(v));
        col->configured = col->drift = true;
      }
    } else if (json_object_size(schema) > 0) {
      /* Ids and dates change from one file to the next by design. */
      for (size_t k = 0; k < c->n_cols; k++)
        c->cols[k].drift = c->cols[k].in_schema && !c->cols[k].unique && c->cols[k].type != T_DATE;
    } else {
      c->drift_all = true;
    }
  }
  const json_t *bins = json_object_get(cfg, "bins");
  c->bins = json_is_integer(bins) && json_integer_value(bins) >= 2 && json_integer_value(bins) <= 1000
                ? (size_t)json_integer_value(bins) : 10;
  double x;
  if ((c->has_min_rows = num_of(json_object_get(cfg, "min_rows"), &x))) c->min_rows = x < 0 ? 0 : (uint64_t)x;
  if ((c->has_max_rows = num_of(json_object_get(cfg, "max_rows"), &x))) c->max_rows = x < 0 ? 0 : (uint64_t)x;
  return 0;
}

/* After the reference: numeric columns get their bins, categorical ones
 * drop the sample. */
static void prepare_drift(dc *c) {
  for (size_t i = 0; i < c->n_cols; i++) {
    column *col = &c->cols[i];
    if (!col->drift || !col->in_ref) continue;
    col->numeric = col->type == T_INT || col->type == T_FLOAT || (col->type == T_ANY && col->ref_numeric_ok);
    if (col->numeric && col->res.n > 0) {
      cat_free(&col->cats);
      dagd__stats_reservoir_sort(&col->res);
      col->psi_edges = dagd_malloc(c->bins * sizeof(double));
      col->n_psi_edges = dagd__stats_quantile_edges(col->res.v, col->res.n, c->bins, col->psi_edges);
      col->psi_ref = dagd_calloc(col->n_psi_edges + 1, sizeof(uint64_t));
      col->psi_cur = dagd_calloc(col->n_psi_edges + 1, sizeof(uint64_t));
      for (size_t k = 0; k < col->res.n; k++)
        col->psi_ref[dagd__stats_lower_bound(col->psi_edges, col->n_psi_edges, col->res.v[k])]++;
      dagd__stats_ks_hist_init(&col->ks, col->res.v, col->res.n, DAGD_STATS_KS_BINS);
    } else if (col->numeric || col->ref_values == 0) {
      col->in_ref = false;  /* no value to compare with: reported below */
      col->ref_empty = true;
    } else {
      dagd__stats_reservoir_close(&col->res);
    }
  }
}

/* ----------------------------------------------------------------- report */

typedef struct report {
  json_t *checks;
  int total, failed;
  FILE *log;
} report;

/* One check: value against threshold. `threshold` NAN means none (the
 * value is only reported). */
static bool check(report *r, const char *what, const column *col, bool ok, double value, double threshold,
                  const char *detail) {
  json_t *e = json_pack("{s:s}", "check", what);
  if (col) json_object_set_new(e, "column", json_string(col->name));
  if (!isnan(value)) json_object_set_new(e, "value", json_real(value));
  if (!isnan(threshold)) json_object_set_new(e, "threshold", json_real(threshold));
  const char *result = ok ? "pass" : "fail";
  json_object_set_new(e, "result", json_string(result));
  if (detail && *detail) json_object_set_new(e, "detail", json_string(detail));
  json_array_append_new(r->checks, e);
  r->total++;
  r->failed += !ok;
  fprintf(r->log, "  %-5s %s%s%s", result, what, col ? " " : "", col ? col->name : "");
  if (!isnan(value)) fprintf(r->log, "  value %.6g", value);
  if (!isnan(threshold)) fprintf(r->log, "  threshold %.6g", threshold);
  if (detail && *detail) fprintf(r->log, "  (%s)", detail);
  fputc('\n', r->log);
  return ok;
}

typedef struct outs {
  dagd_op_ctx *ctx;
  size_t used;
  bool dropped;
} outs;

static void out_col(outs *o, const char *what, const column *col, const char *fmt, double v) {
  char key[256], val[64];
  snprintf(key, sizeof(key), "%s.%s", what, col->key);
  snprintf(val, sizeof(val), fmt, v);
  if (o->used + strlen(key) + strlen(val) + 6 > OUTPUTS_BUDGET) {
    o->dropped = true;
    return;
  }
  o->used += strlen(key) + strlen(val) + 6;
  dagd_op_output(o->ctx, key, val);
}

static void evaluate(dc *c, report *r, outs *o, bool has_ref) {
  char detail[160];
  if (c->bad_records) {
    snprintf(detail, sizeof(detail), "first: %s", c->bad_detail);
    check(r, "records", NULL, false, (double)c->bad_records, 0, detail);
  }
  if (c->has_min_rows) check(r, "min_rows", NULL, c->cur_rows >= c->min_rows, (double)c->cur_rows, (double)c->min_rows, NULL);
  if (c->has_max_rows) check(r, "max_rows", NULL, c->cur_rows <= c->max_rows, (double)c->cur_rows, (double)c->max_rows, NULL);
  for (size_t i = 0; i < c->n_cols; i++) {
    column *col = &c->cols[i];
    if (!col->present) {
      if (col->configured) check(r, "column", col, false, NAN, NAN, "not in the file");
      continue;
    }
    double miss = dagd__stats_missing_ratio(col->missing, c->cur_rows);
    out_col(o, "missing", col, "%.6g", miss);
    if (col->type != T_ANY && col->type != T_STRING) {
      snprintf(detail, sizeof(detail), "%s", type_names[col->type]);
      if (col->invalid)
        snprintf(detail, sizeof(detail), "%s; first: row %llu \"%s\"", type_names[col->type],
                 (unsigned long long)col->invalid_row, col->invalid_example);
      check(r, "type", col, col->invalid == 0, (double)col->invalid, 0, detail);
      out_col(o, "invalid", col, "%.0f", (double)col->invalid);
    }
    if (col->has_min || col->has_max) {
      char lo[48] = "", hi[48] = "";
      if (col->min_s) snprintf(lo, sizeof(lo), "min %s", col->min_s);
      else if (col->has_min) snprintf(lo, sizeof(lo), "min %g", col->min);
      if (col->max_s) snprintf(hi, sizeof(hi), "max %s", col->max_s);
      else if (col->has_max) snprintf(hi, sizeof(hi), "max %g", col->max);
      snprintf(detail, sizeof(detail), "%s%s%s", lo, *lo && *hi ? ", " : "", hi);
      check(r, "range", col, col->out_of_range == 0, (double)col->out_of_range, 0, detail);
      out_col(o, "out_of_range", col, "%.0f", (double)col->out_of_range);
    }
    double mm = col->max_missing >= 0 ? col->max_missing : c->default_max_missing;
    if (mm >= 0) check(r, "missing", col, miss <= mm, miss, mm, NULL);
    if (col->unique) {
      uint64_t d = 0;
      dagd_err err;
      dagd_err_init(&err);
      if (dagd__stats_dupes_count(col->dupes, &d, &err) < 0) check(r, "unique", col, false, NAN, NAN, err.msg);
      else check(r, "unique", col, d == 0, (double)d, 0, d ? "values that repeat an earlier one" : NULL);
      out_col(o, "duplicates", col, "%.0f", (double)d);
    }
    if (!has_ref || !col->drift) continue;
    if (!col->in_ref) {
      check(r, "drift", col, false, NAN, NAN,
            col->ref_empty ? "no values in the reference" : "not in the reference");
      continue;
    }
    if (col->numeric) {
      col->psi = dagd__stats_psi(col->psi_ref, col->psi_cur, col->n_psi_edges + 1);
      col->ks_stat = dagd__stats_ks_hist_stat(&col->ks, col->res.v, col->res.n);
      col->has_ks = true;
    } else {
      col->psi = dagd__stats_psi(col->cats.ref, col->cats.cur, MAX_CATEGORIES + 1);
    }
    col->has_psi = true;
    snprintf(detail, sizeof(detail), col->numeric ? "%zu bins on the reference's quantiles" : "%zu categories",
             col->numeric ? col->n_psi_edges + 1 : col->cats.n);
    double pm = col->psi_max;
    check(r, "psi", col, isnan(pm) || col->psi <= pm, col->psi, pm, detail);
    out_col(o, "psi", col, "%.6g", col->psi);
    if (col->has_ks) {
      check(r, "ks", col, isnan(col->ks_max) || col->ks_stat <= col->ks_max, col->ks_stat, col->ks_max, NULL);
      out_col(o, "ks", col, "%.6g", col->ks_stat);
    }
  }
}

/* Thresholds of the drift columns, once they are known. */
static void drift_thresholds(dc *c, const json_t *cfg) {
  for (size_t i = 0; i < c->n_cols; i++) {
    column *col = &c->cols[i];
    /* PSI above 0.2 is the usual "significant shift"; KS depends on the
     * sample sizes, so it has no default. */
    col->psi_max = threshold_for(json_object_get(cfg, "psi_max"), col->name, 0.2);
    col->ks_max = threshold_for(json_object_get(cfg, "ks_max"), col->name, NAN);
  }
}

int dagd_operator_data_check(dagd_op_ctx *ctx) {
  const json_t *cfg = ctx->config;
  const char *path = json_string_value(json_object_get(cfg, "path"));
  const char *ref = json_string_value(json_object_get(cfg, "reference"));
  const char *format = json_string_value(json_object_get(cfg, "format"));
  const char *delim = json_string_value(json_object_get(cfg, "delimiter"));
  if (path == NULL) {
    fprintf(ctx->log, "data_check: needs path\n");
    return 1;
  }
  if (delim && strlen(delim) != 1) {
    fprintf(ctx->log, "data_check: delimiter must be one character\n");
    return 1;
  }
  dc c = {.log = ctx->log};
  dagd_err_init(&c.err);
  report r = {.checks = json_array(), .log = ctx->log};
  outs o = {.ctx = ctx};
  int rc = configure(&c, cfg, ref != NULL);
  if (rc == 0 && ref) {
    rc = read_file(&c, PASS_REF, ref, format, delim ? (unsigned char)delim[0] : ',');
    c.ref_rows = c.rows;
    if (rc == 0) prepare_drift(&c);
  }
  if (rc == 0) {
    drift_thresholds(&c, cfg);
    rc = read_file(&c, PASS_CUR, path, format, delim ? (unsigned char)delim[0] : ',');
    c.cur_rows = c.rows;
  }
  if (rc < 0) {
    fprintf(ctx->log, "data_check: %s\n", c.err.msg);
    dagd_op_output(ctx, "passed", "false");
    dagd_op_output(ctx, "error", c.err.msg);
    goto done;
  }
  fprintf(ctx->log, "data_check %s (%s): %llu rows", path, is_jsonl(format, path) ? "JSON lines" : "CSV",
          (unsigned long long)c.cur_rows);
  if (ref) fprintf(ctx->log, "; reference %s: %llu rows", ref, (unsigned long long)c.ref_rows);
  fputc('\n', ctx->log);
  evaluate(&c, &r, &o, ref != NULL);
  char buf[64];
  snprintf(buf, sizeof(buf), "%llu", (unsigned long long)c.cur_rows);
  dagd_op_output(ctx, "rows", buf);
  if (ref) {
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)c.ref_rows);
    dagd_op_output(ctx, "reference_rows", buf);
  }
  dagd_op_output(ctx, "passed", r.failed ? "false" : "true");
  snprintf(buf, sizeof(buf), "%d", r.failed);
  dagd_op_output(ctx, "failed_checks", buf);
  json_t *rep = json_pack("{s:s, s:I, s:b, s:i, s:i}", "file", path, "rows", (json_int_t)c.cur_rows, "passed",
                          r.failed == 0, "failed", r.failed, "total", r.total);
  if (ref) json_object_set_new(rep, "reference", json_string(ref));
  if (ref) json_object_set_new(rep, "reference_rows", json_integer((json_int_t)c.ref_rows));
  json_object_set(rep, "checks", r.checks);
  char *text = json_dumps(rep, JSON_COMPACT | JSON_REAL_PRECISION(10));
  if (text && strlen(text) > REPORT_BUDGET) {
    /* Too many columns for $DAGD_OUTPUT: keep the failures (the log has
     * every check). */
    json_t *kept = json_array(), *e;
    size_t k;
    json_array_foreach(r.checks, k, e) {
      if (json_array_size(kept) < 100 && strcmp(json_string_value(json_object_get(e, "result")), "fail") == 0)
        json_array_append(kept, e);
    }
    json_object_set_new(rep, "checks_left_out", json_integer((json_int_t)(json_array_size(r.checks) - json_array_size(kept))));
    json_object_set_new(rep, "checks", kept);
    free(text);
    text = json_dumps(rep, JSON_COMPACT | JSON_REAL_PRECISION(10));
  }
  dagd_op_output(ctx, "report", text ? text : "{}");
  free(text);
  json_decref(rep);
  if (o.dropped) fprintf(ctx->log, "(too many columns: some per-column outputs were left out; the log has them all)\n");
  fprintf(ctx->log, "data_check %s: %d of %d checks failed\n", r.failed ? "FAILED" : "passed", r.failed, r.total);
  rc = r.failed ? -1 : 0;
done:
  for (size_t i = 0; i < c.n_cols; i++) col_free(&c.cols[i]);
  free(c.cols);
  for (size_t i = 0; i < c.n_header; i++) free(c.header[i]);
  free(c.header);
  free(c.by_field);
  free(c.na);
  json_decref(r.checks);
  return rc < 0 ? 1 : 0;
}
