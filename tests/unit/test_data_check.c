/* Unit tests for the data_check operator and its statistics: PSI and KS
 * against numpy/scipy figures written in below, the histogram KS and its
 * error bound, reservoir sampling, the spilling duplicate counter, and the
 * operator on CSV and JSON-lines files (quoted fields, embedded commas and
 * newlines, missing values, schema, ranges, missingness, uniqueness, row
 * counts, drift against a reference, malformed input).
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/operators/stats.h"
#include "dagd/operators.h"
#include "dagd/util.h"

/* Oracle data: numpy 1.24.2 / scipy 1.10.1 (Debian 12), computed once with
 *   rng = np.random.default_rng(6)
 *   ref = np.round(rng.normal(100, 15, 203), 2)
 *   cur = np.round(rng.normal(110, 20, 151), 2)
 *   scipy.stats.ks_2samp(ref, cur).statistic          -> KS_REF_CUR
 *   edges = np.unique(np.quantile(ref, [k/10 for k in range(1, 10)],
 *                                 method="inverted_cdf"))  -> PSI_EDGES
 *   counts(x) = np.bincount(np.searchsorted(edges, x, side="left"), minlength=10)
 *   e, a = (np.clip(counts(v) / len(v), 1e-4, None) for v in (ref, cur))
 *   np.sum((a - e) * np.log(a / e))                    -> PSI_REF_CUR
 * (203 and 151 values so that n * k/10 is never an integer, where numpy's
 * float quantile would round differently from the exact definition.) */
static const double REF[] = {115.80, 126.65, 61.70, 97.93, 115.21, 120.28, 109.81, 122.46, 104.35, 108.27, 102.68, 83.89, 87.30, 105.69, 91.30, 119.07, 119.39, 126.98, 99.61, 120.76, 86.41, 87.76, 101.22, 104.22, 76.02, 74.04, 105.33, 87.07, 118.13, 105.92, 104.61, 103.13, 113.43, 97.70, 116.28, 92.11, 96.63, 89.79, 108.96, 100.54, 87.07, 130.03, 94.54, 98.26, 105.91, 126.21, 97.77, 110.55, 101.48, 78.04, 111.88, 115.31, 96.40, 99.77, 77.48, 77.16, 94.13, 109.39, 92.96, 104.38, 114.52, 101.44, 108.62, 121.72, 81.31, 111.16, 71.73, 106.47, 103.04, 91.85, 83.84, 99.07, 93.85, 101.46, 86.38, 108.18, 84.46, 95.44, 94.12, 119.02, 77.56, 93.79, 117.74, 90.12, 81.41, 104.24, 95.65, 112.52, 86.19, 102.86, 109.99, 115.54, 83.41, 121.36, 86.49, 77.31, 85.68, 102.32, 95.17, 106.61, 107.43, 104.77, 96.18, 127.21, 66.76, 73.98, 92.40, 81.17, 61.66, 88.07, 88.76, 63.27, 112.88, 119.49, 118.51, 92.37, 102.21, 83.19, 103.10, 89.89, 106.15, 94.86, 115.51, 112.40, 118.58, 75.92, 72.71, 106.07, 91.34, 105.97, 104.48, 102.70, 113.79, 108.35, 107.09, 86.59, 125.87, 101.90, 116.61, 104.91, 119.04, 102.30, 103.26, 102.07, 89.37, 91.42, 97.80, 98.25, 85.26, 135.35, 85.28, 95.41, 136.68, 90.10, 111.49, 109.91, 96.88, 78.57, 76.70, 99.88, 106.31, 67.66, 102.29, 90.19, 113.43, 102.65, 87.98, 93.65, 100.73, 120.25, 145.76, 105.50, 101.95, 110.69, 100.69, 110.66, 107.04, 101.31, 89.40, 103.75, 114.92, 102.52, 124.12, 115.56, 99.48, 127.54, 84.61, 119.06, 129.36, 97.74, 100.03, 115.66, 123.09, 108.29, 105.33, 115.51, 105.67, 83.66, 98.96, 101.56, 79.29, 107.78, 90.65};
static const double CUR[] = {127.23, 82.58, 94.12, 83.21, 138.04, 137.84, 141.72, 141.86, 130.44, 130.24, 78.38, 118.93, 102.36, 105.93, 87.79, 138.63, 115.54, 82.64, 122.52, 110.62, 91.09, 105.71, 95.99, 65.35, 80.53, 120.92, 117.46, 115.79, 86.66, 98.11, 111.31, 123.81, 93.14, 88.80, 132.80, 111.33, 102.38, 95.20, 96.85, 141.69, 129.39, 101.64, 84.92, 143.47, 141.40, 134.08, 126.83, 72.26, 84.18, 121.30, 104.30, 115.11, 99.49, 96.86, 121.07, 101.99, 109.94, 115.11, 114.63, 133.17, 137.37, 82.63, 104.61, 97.02, 125.07, 88.59, 125.46, 123.97, 121.51, 90.48, 105.65, 88.33, 117.88, 129.04, 79.52, 93.40, 106.67, 99.32, 139.80, 107.03, 114.99, 87.71, 140.80, 113.26, 125.42, 111.68, 67.53, 77.99, 84.19, 119.37, 99.76, 118.53, 115.70, 114.95, 128.34, 113.61, 77.13, 96.38, 143.19, 88.53, 137.24, 143.05, 98.10, 116.88, 81.95, 125.45, 94.44, 83.79, 102.14, 100.85, 98.29, 113.93, 106.62, 96.73, 128.98, 158.43, 111.30, 95.91, 90.14, 121.80, 104.87, 110.30, 70.11, 87.36, 86.76, 128.87, 104.59, 60.29, 119.64, 132.65, 136.08, 53.96, 113.05, 126.22, 122.11, 105.28, 73.97, 101.33, 103.53, 121.48, 122.79, 105.15, 126.94, 88.87, 96.35, 109.38, 121.47, 103.56, 134.61, 118.22, 91.02};
#define N_REF (sizeof(REF) / sizeof(REF[0]))
#define N_CUR (sizeof(CUR) / sizeof(CUR[0]))
static const double KS_REF_CUR = 0.23906306071183897;
static const double PSI_REF_CUR = 0.37181634357928656;
static const double PSI_EDGES[] = {81.31, 87.76, 93.65, 98.26, 102.21, 104.77, 108.29, 114.52, 119.39};
static const uint64_t PSI_REF_COUNTS[] = {21, 20, 20, 21, 20, 20, 21, 20, 20, 20};
static const uint64_t PSI_CUR_COUNTS[] = {12, 13, 12, 13, 9, 7, 9, 12, 15, 49};

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double *sorted_copy(const double *v, size_t n) {
  double *s = malloc(n * sizeof(double));
  memcpy(s, v, n * sizeof(double));
  qsort(s, n, sizeof(double), cmp_double);
  return s;
}

static void test_ks_exact(void **state) {
  (void)state;
  double *r = sorted_copy(REF, N_REF), *c = sorted_copy(CUR, N_CUR);
  assert_float_equal(dagd__stats_ks(r, N_REF, c, N_CUR), KS_REF_CUR, 1e-12);
  assert_float_equal(dagd__stats_ks(c, N_CUR, r, N_REF), KS_REF_CUR, 1e-12);
  assert_float_equal(dagd__stats_ks(r, N_REF, r, N_REF), 0, 0);
  /* By hand: after 2, F_a = 2/4 and F_b = 0; after 4, F_a = 1 and F_b = 2/5
   * (scipy: 0.6). */
  static const double a[] = {1, 2, 3, 4}, b[] = {3, 4, 5, 6, 7};
  assert_float_equal(dagd__stats_ks(a, 4, b, 5), 0.6, 1e-12);
  free(r);
  free(c);
}

/* The reference has 199 distinct values (< 4,096): the histogram holds
 * every one as an edge, so its KS is exact. */
static void test_ks_hist_exact_mode(void **state) {
  (void)state;
  double *r = sorted_copy(REF, N_REF);
  dagd_stats_ks_hist h;
  dagd__stats_ks_hist_init(&h, r, N_REF, DAGD_STATS_KS_BINS);
  assert_int_equal(h.n, 199);
  for (size_t i = 0; i < N_CUR; i++) dagd__stats_ks_hist_add(&h, CUR[i]);
  assert_float_equal(dagd__stats_ks_hist_stat(&h, r, N_REF), KS_REF_CUR, 1e-12);
  dagd__stats_ks_hist_close(&h);
  free(r);
}

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s >> 11;
}

/* 50,000 distinct reference values (quantile mode): the histogram KS is
 * never above the exact one and below it by at most one fine bin's mass. */
static void test_ks_hist_bound(void **state) {
  (void)state;
  enum { NR = 50000, NC = 20000 };
  double *r = malloc(NR * sizeof(double)), *c = malloc(NC * sizeof(double));
  uint64_t s = 42;
  for (int i = 0; i < NR; i++) r[i] = (double)lcg(&s) / 9007199254740992.0;
  for (int round = 0; round < 3; round++) {
    /* A shift, a squeeze, and a small shift near the resolution. */
    for (int i = 0; i < NC; i++) {
      double u = (double)lcg(&s) / 9007199254740992.0;
      c[i] = round == 0 ? u + 0.1 : round == 1 ? 0.25 + u / 2 : u + 0.002;
    }
    qsort(r, NR, sizeof(double), cmp_double);
    dagd_stats_ks_hist h;
    dagd__stats_ks_hist_init(&h, r, NR, DAGD_STATS_KS_BINS);
    assert_true(h.n <= DAGD_STATS_KS_BINS + 1);
    for (int i = 0; i < NC; i++) dagd__stats_ks_hist_add(&h, c[i]);
    double approx = dagd__stats_ks_hist_stat(&h, r, NR);
    qsort(c, NC, sizeof(double), cmp_double);
    double exact = dagd__stats_ks(r, NR, c, NC);
    assert_true(exact > 0.001);
    assert_true(approx <= exact + 1e-12);
    /* ceil(NR / 4096) reference values at most between two edges. */
    assert_true(exact - approx <= 13.0 / NR + 1e-12);
    dagd__stats_ks_hist_close(&h);
  }
  free(r);
  free(c);
}

static void test_psi_numeric(void **state) {
  (void)state;
  double *r = sorted_copy(REF, N_REF);
  double edges[9];
  size_t m = dagd__stats_quantile_edges(r, N_REF, 10, edges);
  assert_int_equal(m, 9);
  for (size_t i = 0; i < m; i++) assert_float_equal(edges[i], PSI_EDGES[i], 0);
  uint64_t rc[10] = {0}, cc[10] = {0};
  for (size_t i = 0; i < N_REF; i++) rc[dagd__stats_lower_bound(edges, m, REF[i])]++;
  for (size_t i = 0; i < N_CUR; i++) cc[dagd__stats_lower_bound(edges, m, CUR[i])]++;
  assert_memory_equal(rc, PSI_REF_COUNTS, sizeof(rc));
  assert_memory_equal(cc, PSI_CUR_COUNTS, sizeof(cc));
  assert_float_equal(dagd__stats_psi(rc, cc, 10), PSI_REF_CUR, 1e-12);
  assert_float_equal(dagd__stats_psi(rc, rc, 10), 0, 1e-15);
  free(r);
}

/* Ties merge bins: 0 0 0 0 0 0 1 2 3 4 has its deciles at 0 for k <= 6. */
static void test_quantile_ties(void **state) {
  (void)state;
  static const double v[] = {0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
  double edges[9];
  size_t m = dagd__stats_quantile_edges(v, 10, 10, edges);
  assert_int_equal(m, 4);
  static const double want[] = {0, 1, 2, 3};
  for (size_t i = 0; i < m; i++) assert_float_equal(edges[i], want[i], 0);
}

/* Categories a 50/30/20/0 against 40/30/20/10; the empty reference bin is
 * floored at 1e-4 (numpy: 0.71239910750173652). */
static void test_psi_categorical(void **state) {
  (void)state;
  static const uint64_t e[] = {50, 30, 20, 0}, a[] = {40, 30, 20, 10};
  assert_float_equal(dagd__stats_psi(e, a, 4), 0.71239910750173652, 1e-12);
  static const uint64_t none[] = {0, 0, 0, 0};
  assert_float_equal(dagd__stats_psi(e, none, 4), 0, 0);
}

static void test_reservoir(void **state) {
  (void)state;
  dagd_stats_reservoir r;
  dagd__stats_reservoir_init(&r, 1000, 7);
  for (int i = 0; i < 500; i++) dagd__stats_reservoir_add(&r, 499 - i);
  assert_int_equal(r.n, 500);
  dagd__stats_reservoir_sort(&r);
  for (int i = 0; i < 500; i++) assert_float_equal(r.v[i], i, 0);
  dagd__stats_reservoir_close(&r);

  dagd__stats_reservoir_init(&r, 1000, 7);
  for (int i = 0; i < 100000; i++) dagd__stats_reservoir_add(&r, i);
  assert_int_equal(r.n, 1000);
  dagd__stats_reservoir_sort(&r);
  double sum = 0;
  for (size_t i = 0; i < r.n; i++) {
    if (i) assert_true(r.v[i] > r.v[i - 1]); /* a sample without repeats */
    sum += r.v[i];
  }
  /* Uniform over 0..99999: the mean of 1,000 is 50,000 +- 913 (one sd);
   * keeping the first or last values would give 500 or 99,500. */
  assert_true(fabs(sum / 1000 - 50000) < 5000);
  assert_true(r.v[0] < 1000 && r.v[999] > 99000);
  dagd__stats_reservoir_close(&r);
}

static void test_dupes(void **state) {
  (void)state;
  for (int spill = 0; spill < 2; spill++) {
    dagd_stats_dupes *d = dagd__stats_dupes_new(spill ? 16 : 4096);
    char buf[32];
    for (int i = 0; i < 1000; i++) {
      int n = snprintf(buf, sizeof(buf), "id-%d", (i * 7919) % 300);
      dagd__stats_dupes_add(d, dagd__stats_hash(buf, (size_t)n, 0));
    }
    uint64_t dups = 99;
    assert_int_equal(dagd__stats_dupes_count(d, &dups, NULL), 0);
    assert_int_equal(dups, 700);
    dagd__stats_dupes_free(d);
  }
  assert_true(dagd__stats_hash("a", 1, 0) != dagd__stats_hash("b", 1, 0));
  assert_true(dagd__stats_hash("abcdefgh1", 9, 0) != dagd__stats_hash("abcdefgh2", 9, 0));
  assert_true(dagd__stats_hash("abc", 3, 0) == dagd__stats_hash("abc", 3, 0));
  assert_float_equal(dagd__stats_missing_ratio(1, 4), 0.25, 0);
  assert_float_equal(dagd__stats_missing_ratio(0, 0), 0, 0);
}

/* ---------------------------------------------------------- the operator */

static char dir[64];

static int setup(void **state) {
  (void)state;
  strcpy(dir, "/tmp/dagd-dc-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  return dagd_fs_remove_tree_within("/tmp", dir, NULL) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text) {
  static char paths[4][128];
  static int next;
  char *p = paths[next++ % 4];
  snprintf(p, 128, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return p;
}

typedef struct result {
  int rc;
  json_t *out;
  char *log;
} result;

/* Runs the operator on a config (JSON text, "@P" is replaced by `path` and
 * "@R" by `ref`). */
static result run(const char *config, const char *path, const char *ref) {
  char text[4096];
  size_t o = 0;
  for (const char *p = config; *p && o < sizeof(text) - 200; p++) {
    if (p[0] == '@' && (p[1] == 'P' || p[1] == 'R')) {
      o += (size_t)snprintf(text + o, sizeof(text) - o, "%s", p[1] == 'P' ? path : ref);
      p++;
    } else {
      text[o++] = *p;
    }
  }
  text[o] = '\0';
  json_error_t jerr;
  json_t *cfg = json_loads(text, 0, &jerr);
  if (cfg == NULL) fail_msg("bad test config %s: %s", text, jerr.text);
  result r = {0};
  size_t loglen;
  FILE *log = open_memstream(&r.log, &loglen);
  dagd_op_ctx ctx = {.config = cfg, .outputs = json_object(), .log = log, .task_id = "check"};
  r.rc = dagd_operator_data_check(&ctx);
  fclose(log);
  r.out = ctx.outputs;
  json_decref(cfg);
  return r;
}

static void result_free(result *r) {
  json_decref(r->out);
  free(r->log);
}

static const char *out(const result *r, const char *key) {
  const char *v = json_string_value(json_object_get(r->out, key));
  if (v == NULL) fail_msg("no output %s; log:\n%s", key, r->log);
  return v;
}

static double outnum(const result *r, const char *key) { return strtod(out(r, key), NULL); }

/* The report entry of one check on one column. */
static json_t *report_check(const result *r, const char *check, const char *column) {
  json_t *rep = json_loads(out(r, "report"), 0, NULL);
  assert_non_null(rep);
  size_t i;
  json_t *e, *found = NULL;
  json_array_foreach(json_object_get(rep, "checks"), i, e) {
    const char *c = json_string_value(json_object_get(e, "column"));
    if (strcmp(json_string_value(json_object_get(e, "check")), check) == 0 &&
        (column == NULL ? c == NULL : c && strcmp(c, column) == 0))
      found = json_incref(e);
  }
  json_decref(rep);
  if (found == NULL) fail_msg("no %s check for %s in %s", check, column ? column : "-", out(r, "report"));
  return found;
}

static const char *result_of(const result *r, const char *check, const char *column) {
  json_t *e = report_check(r, check, column);
  static char buf[16];
  snprintf(buf, sizeof(buf), "%s", json_string_value(json_object_get(e, "result")));
  json_decref(e);
  return buf;
}

/* RFC 4180 quoting: commas and a newline inside quotes, doubled quotes,
 * CRLF line ends, empty and NA values, a short last line without newline. */
static const char EDGE_CSV[] =
    "id,name,amount,flag,day\r\n"
    "1,\"Smith, John\",12.5,true,2026-01-01\r\n"
    "2,\"two\nlines\",,false,2026-01-02\r\n"
    "3,\"say \"\"hi\"\"\",NA,yes,2026-02-29\r\n"
    "4,plain,7,0,\r\n"
    "4,\"\",3e2,maybe,2026-13-01";

static void test_csv_edge_cases(void **state) {
  (void)state;
  const char *p = write_file("edge.csv", EDGE_CSV);
  result r = run("{\"path\": \"@P\", \"schema\": {\"id\": \"int\", \"name\": \"string\", \"amount\": \"float\","
                 " \"flag\": \"bool\", \"day\": \"date\"}, \"unique\": [\"id\"]}",
                 p, NULL);
  /* The newline inside quotes does not start a record. */
  assert_string_equal(out(&r, "rows"), "5");
  assert_float_equal(outnum(&r, "missing.amount"), 0.4, 1e-9);  /* empty and NA */
  assert_float_equal(outnum(&r, "missing.name"), 0.2, 1e-9);    /* "" quoted empty */
  assert_float_equal(outnum(&r, "missing.day"), 0.2, 1e-9);
  /* "Smith, John" stayed one field, or amount would be " John" (invalid). */
  assert_string_equal(out(&r, "invalid.amount"), "0");
  assert_string_equal(out(&r, "invalid.id"), "0");
  /* maybe is no bool; 2026-13-01 no date; 2026-02-29 neither (not leap). */
  assert_string_equal(out(&r, "invalid.flag"), "1");
  assert_string_equal(out(&r, "invalid.day"), "2");
  assert_string_equal(out(&r, "duplicates.id"), "1");
  assert_int_equal(r.rc, 1);
  assert_string_equal(out(&r, "passed"), "false");
  assert_string_equal(result_of(&r, "type", "amount"), "pass");
  assert_string_equal(result_of(&r, "type", "flag"), "fail");
  assert_string_equal(result_of(&r, "unique", "id"), "fail");
  assert_non_null(strstr(r.log, "fail  type flag  value 1  threshold 0  (bool; first: row 5 \"maybe\")"));
  result_free(&r);
}

static const char CLEAN_CSV[] =
    "id,amount,country,day\n"
    "1,10.5,DE,2026-01-01\n"
    "2,20,FR,2026-01-02\n"
    "3,,DE,2026-01-03\n"
    "4,99.9,,2026-01-04\n";

static void test_clean_file_passes(void **state) {
  (void)state;
  const char *p = write_file("clean.csv", CLEAN_CSV);
  result r = run("{\"path\": \"@P\", \"schema\": {\"id\": \"int\", \"amount\": \"float\", \"day\": \"date\"},"
                 " \"ranges\": {\"amount\": {\"min\": 0, \"max\": 100}, \"day\": {\"min\": \"2026-01-01\"}},"
                 " \"max_missing\": 0.25, \"unique\": [\"id\"], \"min_rows\": 4, \"max_rows\": 4}",
                 p, NULL);
  assert_int_equal(r.rc, 0);
  assert_string_equal(out(&r, "passed"), "true");
  assert_string_equal(out(&r, "failed_checks"), "0");
  assert_string_equal(out(&r, "rows"), "4");
  assert_string_equal(out(&r, "out_of_range.amount"), "0");
  assert_float_equal(outnum(&r, "missing.country"), 0.25, 1e-9);
  assert_string_equal(result_of(&r, "min_rows", NULL), "pass");
  assert_string_equal(result_of(&r, "missing", "country"), "pass");
  assert_non_null(strstr(r.log, "data_check passed: 0 of"));
  result_free(&r);
}

static void test_check_failures(void **state) {
  (void)state;
  const char *p = write_file("bad.csv", CLEAN_CSV);
  result r = run("{\"path\": \"@P\", \"schema\": {\"id\": \"int\", \"label\": \"bool\"},"
                 " \"ranges\": {\"amount\": {\"min\": 15}, \"day\": {\"max\": \"2026-01-02\"}},"
                 " \"max_missing\": {\"amount\": 0.1}, \"min_rows\": 5, \"max_rows\": 3}",
                 p, NULL);
  assert_int_equal(r.rc, 1);
  assert_string_equal(result_of(&r, "column", "label"), "fail");   /* a required column is absent */
  assert_string_equal(out(&r, "out_of_range.amount"), "1");        /* 10.5 < 15 */
  assert_string_equal(out(&r, "out_of_range.day"), "2");           /* dates compared as text */
  assert_string_equal(result_of(&r, "missing", "amount"), "fail"); /* 0.25 > 0.1 */
  assert_string_equal(result_of(&r, "min_rows", NULL), "fail");
  assert_string_equal(result_of(&r, "max_rows", NULL), "fail");
  assert_string_equal(out(&r, "failed_checks"), "6");
  result_free(&r);
}

/* REF and CUR as CSV files: the operator's PSI and KS match numpy/scipy. */
static void write_column(const char *name, const double *v, size_t n) {
  char *text = malloc(n * 16 + 16);
  size_t o = (size_t)sprintf(text, "x,cat\n");
  for (size_t i = 0; i < n; i++) o += (size_t)sprintf(text + o, "%.2f,%s\n", v[i], i % 3 ? "a" : "b");
  write_file(name, text);
  free(text);
}

static void test_drift(void **state) {
  (void)state;
  write_column("ref.csv", REF, N_REF);
  write_column("cur.csv", CUR, N_CUR);
  char ref[128], cur[128];
  snprintf(ref, sizeof(ref), "%s/ref.csv", dir);
  snprintf(cur, sizeof(cur), "%s/cur.csv", dir);
  result r = run("{\"path\": \"@P\", \"reference\": \"@R\", \"schema\": {\"x\": \"float\", \"cat\": \"string\"}}",
                 cur, ref);
  assert_float_equal(outnum(&r, "psi.x"), PSI_REF_CUR, 1e-5);
  assert_float_equal(outnum(&r, "ks.x"), KS_REF_CUR, 1e-5);
  assert_string_equal(out(&r, "reference_rows"), "203");
  assert_int_equal(r.rc, 1); /* 0.37 > the default psi_max 0.2 */
  json_t *e = report_check(&r, "psi", "x");
  assert_float_equal(json_real_value(json_object_get(e, "value")), PSI_REF_CUR, 1e-9);
  assert_float_equal(json_real_value(json_object_get(e, "threshold")), 0.2, 0);
  json_decref(e);
  /* b every third row in both files: hardly any categorical drift. */
  assert_true(outnum(&r, "psi.cat") < 0.01);
  assert_string_equal(result_of(&r, "psi", "cat"), "pass");
  result_free(&r);

  r = run("{\"path\": \"@P\", \"reference\": \"@R\", \"drift\": [\"x\"], \"psi_max\": {\"x\": 0.4},"
          " \"ks_max\": 0.2}", cur, ref);
  assert_int_equal(r.rc, 1);
  assert_string_equal(result_of(&r, "psi", "x"), "pass");
  assert_string_equal(result_of(&r, "ks", "x"), "fail");
  assert_null(json_object_get(r.out, "psi.cat"));
  result_free(&r);

  /* The reference against itself: no drift. Untyped: numeric inferred. */
  r = run("{\"path\": \"@P\", \"reference\": \"@R\", \"ks_max\": 0.01}", ref, ref);
  assert_int_equal(r.rc, 0);
  assert_float_equal(outnum(&r, "psi.x"), 0, 1e-12);
  assert_float_equal(outnum(&r, "ks.x"), 0, 1e-12);
  assert_null(json_object_get(r.out, "ks.cat")); /* categorical: PSI only */
  result_free(&r);
}

static void test_jsonl(void **state) {
  (void)state;
  const char *p = write_file("rows.jsonl",
                             "{\"id\": 1, \"amount\": 2.5, \"ok\": true, \"tag\": \"a\"}\n"
                             "\n"
                             "{\"id\": 2, \"amount\": null, \"ok\": false}\n"
                             "{\"id\": 2, \"amount\": \"x\", \"ok\": 1, \"tag\": {\"n\": 1}}\n");
  result r = run("{\"path\": \"@P\", \"schema\": {\"id\": \"int\", \"amount\": \"float\", \"ok\": \"bool\","
                 " \"gone\": \"int\"}, \"unique\": [\"id\"]}",
                 p, NULL);
  assert_string_equal(out(&r, "rows"), "3");
  assert_float_equal(outnum(&r, "missing.amount"), 1.0 / 3, 1e-6);
  assert_float_equal(outnum(&r, "missing.tag"), 1.0 / 3, 1e-6); /* absent key */
  assert_string_equal(out(&r, "invalid.amount"), "1");
  assert_string_equal(out(&r, "invalid.ok"), "0");
  assert_string_equal(out(&r, "duplicates.id"), "1");
  assert_string_equal(result_of(&r, "column", "gone"), "fail");
  assert_int_equal(r.rc, 1);
  result_free(&r);

  p = write_file("broken.jsonl", "{\"id\": 1}\n[1, 2]\n{\"id\": \n");
  r = run("{\"path\": \"@P\"}", p, NULL);
  assert_int_equal(r.rc, 1);
  json_t *e = report_check(&r, "records", NULL);
  assert_float_equal(json_real_value(json_object_get(e, "value")), 2, 0);
  assert_non_null(strstr(json_string_value(json_object_get(e, "detail")), "line 2: not a JSON object"));
  json_decref(e);
  result_free(&r);
}

static void test_malformed_csv(void **state) {
  (void)state;
  const char *p = write_file("ragged.csv", "a,b\n1,2\n3\n4,5,6\n");
  result r = run("{\"path\": \"@P\"}", p, NULL);
  assert_int_equal(r.rc, 1);
  assert_string_equal(result_of(&r, "records", NULL), "fail");
  assert_float_equal(outnum(&r, "missing.b"), 1.0 / 3, 1e-6); /* the short record */
  result_free(&r);

  /* A quote inside an unquoted field is not RFC 4180. */
  p = write_file("quote.csv", "a,b\n1,x\"y\n");
  r = run("{\"path\": \"@P\"}", p, NULL);
  assert_int_equal(r.rc, 1);
  assert_non_null(strstr(out(&r, "error"), "malformed CSV in record 1"));
  result_free(&r);

  /* An unterminated quote at the end of the file. */
  p = write_file("open.csv", "a,b\n1,\"abc\n");
  r = run("{\"path\": \"@P\"}", p, NULL);
  assert_int_equal(r.rc, 1);
  assert_non_null(strstr(out(&r, "error"), "malformed CSV"));
  result_free(&r);

  r = run("{\"path\": \"/nonexistent/x.csv\"}", p, NULL);
  assert_int_equal(r.rc, 1);
  assert_non_null(strstr(out(&r, "error"), "cannot open /nonexistent/x.csv"));
  result_free(&r);
}

/* Semicolon-separated with a custom missing marker. */
static void test_options(void **state) {
  (void)state;
  const char *p = write_file("semi.csv", "a;b\n1,5;-\n2;x\n");
  result r = run("{\"path\": \"@P\", \"delimiter\": \";\", \"na_values\": [\"-\"], \"schema\": {\"a\": \"float\"}}",
                 p, NULL);
  assert_string_equal(out(&r, "invalid.a"), "1"); /* "1,5" is one field, not a float */
  assert_float_equal(outnum(&r, "missing.b"), 0.5, 1e-9);
  result_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ks_exact),
      cmocka_unit_test(test_ks_hist_exact_mode),
      cmocka_unit_test(test_ks_hist_bound),
      cmocka_unit_test(test_psi_numeric),
      cmocka_unit_test(test_quantile_ties),
      cmocka_unit_test(test_psi_categorical),
      cmocka_unit_test(test_reservoir),
      cmocka_unit_test(test_dupes),
      cmocka_unit_test(test_csv_edge_cases),
      cmocka_unit_test(test_clean_file_passes),
      cmocka_unit_test(test_check_failures),
      cmocka_unit_test(test_drift),
      cmocka_unit_test(test_jsonl),
      cmocka_unit_test(test_malformed_csv),
      cmocka_unit_test(test_options),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
