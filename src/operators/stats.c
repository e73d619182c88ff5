/* Statistics for the data_check operator (see stats.h): reservoir
 * sampling, quantile edges, PSI, exact and histogram KS, and the
 * duplicate counter with sorted runs on a temporary file.
 * SPDX-License-Identifier: MIT */
#include "stats.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dagd/err.h"
#include "dagd/util.h"

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void dagd__stats_reservoir_init(dagd_stats_reservoir *r, size_t cap, uint64_t seed) {
  memset(r, 0, sizeof(*r));
  r->cap = cap;
  r->rng = seed;
}

void dagd__stats_reservoir_add(dagd_stats_reservoir *r, double x) {
  uint64_t seen = r->seen++;
  if (r->n < r->cap) {
    /* Grown as needed: most references are far below the cap. */
    if (r->n == r->alloc) {
      r->alloc = r->alloc < 64 ? 64 : r->alloc * 2;
      if (r->alloc > r->cap) r->alloc = r->cap;
      r->v = dagd_realloc(r->v, r->alloc * sizeof(double));
    }
    r->v[r->n++] = x;
    return;
  }
  /* Keep the new value with probability cap/(seen+1); the modulo bias is
   * below 2^-40 for any stream that fits on a disk. */
  uint64_t j = splitmix64(&r->rng) % (seen + 1);
  if (j < r->cap) r->v[j] = x;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void dagd__stats_reservoir_sort(dagd_stats_reservoir *r) {
  if (r->n > 1) qsort(r->v, r->n, sizeof(double), cmp_double);
}

void dagd__stats_reservoir_close(dagd_stats_reservoir *r) {
  free(r->v);
  memset(r, 0, sizeof(*r));
}

size_t dagd__stats_lower_bound(const double *v, size_t n, double x) {
  /* Branch-free halving (the select compiles to a conditional move): every
   * value of the checked file goes through here, and a mispredicted branch
   * per level cost more than the comparisons. */
  const double *base = v;
  while (n > 1) {
    size_t half = n / 2;
    base = base[half] < x ? base + half : base;
    n -= half;
  }
  return (size_t)(base - v) + (n == 1 && *base < x);
}

size_t dagd__stats_upper_bound(const double *v, size_t n, double x) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

size_t dagd__stats_quantile_edges(const double *sorted, size_t n, size_t bins, double *edges) {
  size_t m = 0;
  for (size_t k = 1; k < bins; k++) {
    /* ceil(k n / bins) - 1 in integers: p = k/bins as a double would put
     * some edges one value off (0.3 * 200 = 60.000000000000007). */
    uint64_t idx = ((uint64_t)k * n + bins - 1) / bins;
    double e = sorted[idx ? idx - 1 : 0];
    if (m == 0 || e > edges[m - 1]) edges[m++] = e;
  }
  return m;
}

double dagd__stats_psi(const uint64_t *expected, const uint64_t *actual, size_t nbins) {
  uint64_t se = 0, sa = 0;
  for (size_t i = 0; i < nbins; i++) {
    se += expected[i];
    sa += actual[i];
  }
  if (se == 0 || sa == 0) return 0;
  double psi = 0;
  for (size_t i = 0; i < nbins; i++) {
    double e = (double)expected[i] / (double)se, a = (double)actual[i] / (double)sa;
    if (e < DAGD_STATS_PSI_EPS) e = DAGD_STATS_PSI_EPS;
    if (a < DAGD_STATS_PSI_EPS) a = DAGD_STATS_PSI_EPS;
    psi += (a - e) * log(a / e);
  }
  return psi;
}

double dagd__stats_ks(const double *a, size_t na, const double *b, size_t nb) {
  if (na == 0 || nb == 0) return 0;
  size_t i = 0, j = 0;
  double d = 0;
  /* Both CDFs are steps at the pooled values: compare them after each. */
  while (i < na && j < nb) {
    double x = a[i] < b[j] ? a[i] : b[j];
    while (i < na && a[i] <= x) i++;
    while (j < nb && b[j] <= x) j++;
    double diff = fabs((double)i / (double)na - (double)j / (double)nb);
    if (diff > d) d = diff;
  }
  return d;
}

void dagd__stats_ks_hist_init(dagd_stats_ks_hist *h, const double *sorted, size_t n, size_t max_edges) {
  memset(h, 0, sizeof(*h));
  size_t distinct = 1;
  for (size_t i = 1; i < n && distinct <= max_edges; i++) distinct += sorted[i] > sorted[i - 1];
  if (distinct <= max_edges) {
    h->edges = dagd_malloc(distinct * sizeof(double));
    h->edges[h->n++] = sorted[0];
    for (size_t i = 1; i < n; i++)
      if (sorted[i] > sorted[i - 1]) h->edges[h->n++] = sorted[i];
  } else {
    /* The minimum and maximum bound the reference's support, so below the
     * first edge and above the last its CDF is flat (0 and 1). */
    double *q = dagd_malloc(max_edges * sizeof(double));
    size_t m = dagd__stats_quantile_edges(sorted, n, max_edges, q);
    h->edges = dagd_malloc((m + 2) * sizeof(double));
    h->edges[h->n++] = sorted[0];
    for (size_t i = 0; i < m; i++)
      if (q[i] > h->edges[h->n - 1]) h->edges[h->n++] = q[i];
    if (sorted[n - 1] > h->edges[h->n - 1]) h->edges[h->n++] = sorted[n - 1];
    free(q);
  }
  h->lt = dagd_calloc(h->n, sizeof(uint64_t));
  h->eq = dagd_calloc(h->n, sizeof(uint64_t));
  double span = h->edges[h->n - 1] - h->edges[0];
  if (h->n > 8 && isfinite(span) && span > 0) {
    h->n_cells = 2 * h->n;
    h->lo = h->edges[0];
    h->scale = (double)h->n_cells / span;
    h->cell = dagd_malloc((h->n_cells + 1) * sizeof(uint32_t));
    for (size_t c = 0; c <= h->n_cells; c++)
      h->cell[c] = (uint32_t)dagd__stats_lower_bound(h->edges, h->n, h->lo + (double)c / h->scale);
  }
}

/* The lower bound of x in the edges, through the grid when there is one.
 * The grid only narrows the range; the steps after it make the answer
 * exact whatever the rounding of the cell arithmetic. */
static size_t ks_edge(const dagd_stats_ks_hist *h, double x) {
  if (h->cell == NULL || !(x > h->lo)) return dagd__stats_lower_bound(h->edges, h->n, x);
  double f = (x - h->lo) * h->scale;
  size_t c = f >= (double)h->n_cells ? h->n_cells - 1 : (size_t)f;
  size_t a = h->cell[c], b = h->cell[c + 1];
  size_t j = a + dagd__stats_lower_bound(h->edges + a, b - a, x);
  while (j > 0 && h->edges[j - 1] >= x) j--;
  while (j < h->n && h->edges[j] < x) j++;
  return j;
}

void dagd__stats_ks_hist_add(dagd_stats_ks_hist *h, double x) {
  size_t j = ks_edge(h, x);
  h->total++;
  if (j == h->n) h->above++;
  else if (h->edges[j] == x) h->eq[j]++;
  else h->lt[j]++;
}

double dagd__stats_ks_hist_stat(const dagd_stats_ks_hist *h, const double *sorted, size_t n) {
  if (h->total == 0 || n == 0) return 0;
  double d = 0, nr = (double)n, nc = (double)h->total;
  uint64_t cum = 0;
  /* Both CDFs just below and at each edge; between edges the reference's
   * CDF is flat when the edges are all its values, so the sup is at one
   * of these points. */
  for (size_t j = 0; j < h->n; j++) {
    uint64_t c_lt = cum + h->lt[j], c_le = c_lt + h->eq[j];
    double r_lt = (double)dagd__stats_lower_bound(sorted, n, h->edges[j]) / nr;
    double r_le = (double)dagd__stats_upper_bound(sorted, n, h->edges[j]) / nr;
    double d1 = fabs(r_lt - (double)c_lt / nc), d2 = fabs(r_le - (double)c_le / nc);
    if (d1 > d) d = d1;
    if (d2 > d) d = d2;
    cum = c_le;
  }
  return d;
}

void dagd__stats_ks_hist_close(dagd_stats_ks_hist *h) {
  free(h->edges);
  free(h->lt);
  free(h->eq);
  free(h->cell);
  memset(h, 0, sizeof(*h));
}

double dagd__stats_missing_ratio(uint64_t missing, uint64_t rows) {
  return rows ? (double)missing / (double)rows : 0;
}

uint64_t dagd__stats_hash(const void *p, size_t len, uint64_t seed) {
  const uint64_t m = 0xc6a4a7935bd1e995ULL;
  const int r = 47;
  const unsigned char *data = p;
  uint64_t h = seed ^ (len * m);
  size_t nblocks = len / 8;
  for (size_t i = 0; i < nblocks; i++) {
    uint64_t k;
    memcpy(&k, data + i * 8, 8);
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  const unsigned char *tail = data + nblocks * 8;
  uint64_t t = 0;
  for (size_t i = len & 7; i > 0; i--) t = (t << 8) | tail[i - 1];
  if (len & 7) {
    h ^= t;
    h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

struct dagd_stats_dupes {
  uint64_t *mem, *tmp;
  size_t n, cap;
  FILE *runs;           /* sorted runs, one after another */
  size_t *run_len;
  size_t n_runs;
  bool io_error;
};

dagd_stats_dupes *dagd__stats_dupes_new(size_t mem_items) {
  dagd_stats_dupes *d = dagd_calloc(1, sizeof(*d));
  d->cap = mem_items < 16 ? 16 : mem_items;
  return d;
}

/* LSD radix sort, 8 bits a pass: a quarter of the time qsort took, which
 * was the largest cost of a unique column. tmp has room for n items. */
static void sort_u64(uint64_t *v, uint64_t *tmp, size_t n) {
  for (int shift = 0; shift < 64; shift += 8) {
    size_t count[257] = {0};
    for (size_t i = 0; i < n; i++) count[((v[i] >> shift) & 0xff) + 1]++;
    for (int b = 0; b < 256; b++) count[b + 1] += count[b];
    for (size_t i = 0; i < n; i++) tmp[count[(v[i] >> shift) & 0xff]++] = v[i];
    uint64_t *t = v;
    v = tmp;
    tmp = t;
  }
  /* Eight passes: the sorted items are back in the caller's v. */
}

static void spill(dagd_stats_dupes *d) {
  if (d->n == 0 || d->io_error) return;
  sort_u64(d->mem, d->tmp, d->n);
  if (d->runs == NULL) d->runs = tmpfile();
  if (d->runs == NULL || fwrite(d->mem, sizeof(uint64_t), d->n, d->runs) != d->n) {
    d->io_error = true;
    return;
  }
  d->run_len = dagd_realloc(d->run_len, (d->n_runs + 1) * sizeof(size_t));
  d->run_len[d->n_runs++] = d->n;
  d->n = 0;
}

void dagd__stats_dupes_add(dagd_stats_dupes *d, uint64_t fp) {
  if (d->mem == NULL) {
    d->mem = dagd_malloc(d->cap * sizeof(uint64_t));
    d->tmp = dagd_malloc(d->cap * sizeof(uint64_t));
  }
  d->mem[d->n++] = fp;
  if (d->n == d->cap) spill(d);
}

/* One run being merged: a window of it in memory. */
typedef struct run_cursor {
  off_t next;          /* file offset of the next item to read */
  size_t left;         /* items of the run not yet read */
  uint64_t buf[2048];
  size_t pos, len;
} run_cursor;

static bool cursor_fill(run_cursor *c, int fd) {
  if (c->pos < c->len) return true;
  if (c->left == 0) return false;
  size_t want = c->left < 2048 ? c->left : 2048;
  ssize_t got = pread(fd, c->buf, want * sizeof(uint64_t), c->next);
  if (got != (ssize_t)(want * sizeof(uint64_t))) return false;
  c->next += (off_t)(want * sizeof(uint64_t));
  c->left -= want;
  c->pos = 0;
  c->len = want;
  return true;
}

int dagd__stats_dupes_count(dagd_stats_dupes *d, uint64_t *out, dagd_err *err) {
  *out = 0;
  if (d->runs == NULL && !d->io_error) {
    if (d->n) sort_u64(d->mem, d->tmp, d->n);
    for (size_t i = 1; i < d->n; i++) *out += d->mem[i] == d->mem[i - 1];
    return 0;
  }
  spill(d);
  free(d->mem);
  free(d->tmp);
  d->mem = d->tmp = NULL;
  if (d->io_error || fflush(d->runs) != 0)
    return dagd_err_set(err, DAGD_EIO, "duplicate check: cannot write the temporary file");
  int fd = fileno(d->runs);
  run_cursor *c = dagd_calloc(d->n_runs, sizeof(run_cursor));
  off_t off = 0;
  for (size_t i = 0; i < d->n_runs; i++) {
    c[i].next = off;
    c[i].left = d->run_len[i];
    off += (off_t)(d->run_len[i] * sizeof(uint64_t));
  }
  /* A linear scan for the smallest head: there are few runs (the input
   * size over the memory budget), so a heap would not pay. */
  bool have_prev = false, failed = false;
  uint64_t prev = 0;
  for (;;) {
    size_t best = d->n_runs;
    for (size_t i = 0; i < d->n_runs; i++) {
      if (c[i].pos == c[i].len && c[i].left > 0 && !cursor_fill(&c[i], fd)) failed = true;
      if (c[i].pos < c[i].len && (best == d->n_runs || c[i].buf[c[i].pos] < c[best].buf[c[best].pos])) best = i;
    }
    if (failed || best == d->n_runs) break;
    uint64_t v = c[best].buf[c[best].pos++];
    if (have_prev && v == prev) (*out)++;
    prev = v;
    have_prev = true;
  }
  free(c);
  if (failed) return dagd_err_set(err, DAGD_EIO, "duplicate check: cannot read the temporary file");
  return 0;
}

void dagd__stats_dupes_free(dagd_stats_dupes *d) {
  if (d == NULL) return;
  if (d->runs) fclose(d->runs);
  free(d->mem);
  free(d->tmp);
  free(d->run_len);
  free(d);
}
