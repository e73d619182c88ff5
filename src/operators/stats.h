/* Statistics for the data_check operator: a bounded sample of a stream,
 * quantile binning, the population stability index, the two-sample
 * Kolmogorov-Smirnov statistic (exact, and from a histogram over fine
 * bins so the checked file needs no memory per row), missingness, and a
 * duplicate counter that spills sorted runs to a temporary file. All but
 * the duplicate counter are pure functions over plain arrays.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_OPERATORS_STATS_H
#define DAGD_OPERATORS_STATS_H

#include <stddef.h>
#include <stdint.h>

struct dagd_err;

/* PSI counts a proportion below this as this: an empty bin would
 * otherwise make ln(a/e) infinite (the usual 0.0001 floor). */
#define DAGD_STATS_PSI_EPS 1e-4

/* Most fine bins the KS histogram uses; with more distinct reference
 * values than this, KS from the histogram is low by at most 1/this. */
#define DAGD_STATS_KS_BINS 4096

/* A uniform sample of at most `cap` values of a stream (Vitter's
 * Algorithm R) with a seeded generator, so a check is reproducible. While
 * fewer than `cap` values were seen it holds all of them. */
typedef struct dagd_stats_reservoir {
  double *v;
  size_t n, cap, alloc;
  uint64_t seen, rng;
} dagd_stats_reservoir;

void dagd__stats_reservoir_init(dagd_stats_reservoir *r, size_t cap, uint64_t seed);
void dagd__stats_reservoir_add(dagd_stats_reservoir *r, double x);
/* Sorts the sample ascending (r->v[0 .. r->n)). */
void dagd__stats_reservoir_sort(dagd_stats_reservoir *r);
void dagd__stats_reservoir_close(dagd_stats_reservoir *r);

/* First index i of sorted v with v[i] >= x (lower) / v[i] > x (upper);
 * n when there is none. A right-closed bin number for edges: 0 for
 * x <= edges[0], i for edges[i-1] < x <= edges[i], n for x > edges[n-1]
 * is the lower bound. */
size_t dagd__stats_lower_bound(const double *v, size_t n, double x);
size_t dagd__stats_upper_bound(const double *v, size_t n, double x);

/* Edges of `bins` bins of equal reference mass: the inverted-CDF
 * quantiles (Hyndman and Fan type 1: the smallest value x with
 * F(x) >= p; numpy's method="inverted_cdf") of sorted[0 .. n) at k/bins,
 * k = 1 .. bins-1, with repeats dropped (ties merge bins). Writes at most
 * bins-1 edges; returns how many. n > 0. */
size_t dagd__stats_quantile_edges(const double *sorted, size_t n, size_t bins, double *edges);

/* Population stability index of `actual` against `expected` over nbins
 * bins of counts: sum of (a_i - e_i) ln(a_i / e_i) over proportions, each
 * floored at DAGD_STATS_PSI_EPS. 0 when either side has no values. */
double dagd__stats_psi(const uint64_t *expected, const uint64_t *actual, size_t nbins);

/* Exact two-sample KS statistic sup |F_a - F_b| of sorted samples, as
 * scipy.stats.ks_2samp computes it. 0 when either is empty. */
double dagd__stats_ks(const double *a, size_t na, const double *b, size_t nb);

/* The checked file's side of KS without keeping its values: counts
 * below and at each edge, where the edges are the reference's distinct
 * values when there are at most `max_edges` of them (the statistic is
 * then exact), else its minimum, maximum and the quantiles at
 * k/max_edges. Between two edges the reference's CDF rises by at most
 * about 1/max_edges, so the statistic is then low by at most that. */
typedef struct dagd_stats_ks_hist {
  double *edges;
  size_t n;
  uint64_t *lt, *eq;  /* values in (edges[i-1], edges[i]) and == edges[i] */
  uint64_t above, total;
  /* A uniform grid over [edges[0], edges[n-1]]: cell c starts the search
   * at the first edge of that cell, so most values need one or two
   * comparisons instead of a dozen. */
  uint32_t *cell;
  size_t n_cells;
  double lo, scale;
} dagd_stats_ks_hist;

/* sorted[0 .. n) is the reference (n > 0); max_edges >= 2. */
void dagd__stats_ks_hist_init(dagd_stats_ks_hist *h, const double *sorted, size_t n, size_t max_edges);
void dagd__stats_ks_hist_add(dagd_stats_ks_hist *h, double x);
/* The statistic against the same reference the histogram was built on. */
double dagd__stats_ks_hist_stat(const dagd_stats_ks_hist *h, const double *sorted, size_t n);
void dagd__stats_ks_hist_close(dagd_stats_ks_hist *h);

/* Share of rows with no value; 0 for no rows. */
double dagd__stats_missing_ratio(uint64_t missing, uint64_t rows);

/* A 64-bit hash of bytes (MurmurHash64A): a value's fingerprint for the
 * duplicate counter. */
uint64_t dagd__stats_hash(const void *p, size_t len, uint64_t seed);

/* Counts repeated fingerprints in bounded memory: up to `mem_items` are
 * kept in memory (16 bytes each with the sort's buffer); when full they are sorted and appended to a temporary
 * file as a run, and counting merges the runs. Two different values share
 * a 64-bit fingerprint with probability about n^2 / 2^65 (1e-5 for 20
 * million values), which would count as one false duplicate. */
typedef struct dagd_stats_dupes dagd_stats_dupes;

dagd_stats_dupes *dagd__stats_dupes_new(size_t mem_items);
void dagd__stats_dupes_add(dagd_stats_dupes *d, uint64_t fp);
/* *out gets the number of values that repeat an earlier one (n - distinct).
 * DAGD_EIO when the temporary file failed. Call once. */
int dagd__stats_dupes_count(dagd_stats_dupes *d, uint64_t *out, struct dagd_err *err);
void dagd__stats_dupes_free(dagd_stats_dupes *d);

#endif
