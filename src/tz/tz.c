/* Our own TZif reader (RFC 8536, versions 1 to 3): loads a zone from $TZDIR
 * or /usr/share/zoneinfo, answers the UTC offset at an instant (file
 * transitions, then the POSIX footer rule), and maps local wall times back to
 * instants. Never touches TZ or localtime: the process zone is irrelevant.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/err.h"
#include "dagd/tz.h"
#include "dagd/util.h"
#include "tz/internal.h"

/* Largest TZif file we accept; real ones are a few kilobytes. */
#define TZIF_MAX_BYTES (1 << 20)
/* Offsets outside this are refused as corrupt (RFC 8536: |utoff| < 2^31,
 * real ones are within +-26h). */
#define TZ_MAX_OFFSET (26 * 3600)

struct dagd_tz {
  char *name;
  int64_t *trans;   /* transition instants, ascending */
  uint8_t *idx;     /* type index in effect from each transition */
  int32_t ntrans;
  int32_t *utoff;   /* per type */
  int32_t ntypes;
  bool has_rule;    /* footer present and parsed */
  dagd__tz_rule rule;
};

static dagd_tz utc_zone = {.name = (char *)"UTC"};

const dagd_tz *dagd_tz_utc(void) { return &utc_zone; }

const char *dagd_tz_name(const dagd_tz *tz) { return tz->name; }

void dagd_tz_free(dagd_tz *tz) {
  if (tz == NULL || tz == &utc_zone) return;
  free(tz->name);
  free(tz->trans);
  free(tz->idx);
  free(tz->utoff);
  free(tz);
}

static int32_t be32(const unsigned char *p) {
  return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

static int64_t be64(const unsigned char *p) {
  return (int64_t)((uint64_t)(uint32_t)be32(p) << 32 | (uint32_t)be32(p + 4));
}

/* The six counts of a TZif header, in file order. */
typedef struct {
  uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_counts;

static int read_header(const unsigned char *p, size_t len, int *version, tzif_counts *c) {
  if (len < 44 || memcmp(p, "TZif", 4) != 0) return -1;
  *version = p[4] == 0 ? 1 : p[4] - '0';
  if (*version < 1 || *version > 9) return -1;
  c->isutcnt = (uint32_t)be32(p + 20);
  c->isstdcnt = (uint32_t)be32(p + 24);
  c->leapcnt = (uint32_t)be32(p + 28);
  c->timecnt = (uint32_t)be32(p + 32);
  c->typecnt = (uint32_t)be32(p + 36);
  c->charcnt = (uint32_t)be32(p + 40);
  /* Bounds that keep the size arithmetic below far from overflow. */
  if (c->timecnt > 100000 || c->typecnt == 0 || c->typecnt > 256 || c->charcnt == 0 ||
      c->charcnt > 65536 || c->leapcnt > 100000 || (c->isutcnt != 0 && c->isutcnt != c->typecnt) ||
      (c->isstdcnt != 0 && c->isstdcnt != c->typecnt))
    return -1;
  return 0;
}

static size_t data_size(const tzif_counts *c, size_t timesize) {
  return (size_t)c->timecnt * timesize + c->timecnt + (size_t)c->typecnt * 6 + c->charcnt +
         (size_t)c->leapcnt * (timesize + 4) + c->isstdcnt + c->isutcnt;
}

/* Parses a whole TZif file into tz. Uses the 64-bit block of v2+ files and
 * their footer; a v1 file has only the 32-bit block. */
static int parse_tzif(dagd_tz *tz, const unsigned char *buf, size_t len) {
  int version;
  tzif_counts c;
  if (read_header(buf, len, &version, &c) != 0) return -1;
  size_t timesize = 4;
  const unsigned char *p = buf + 44;
  size_t left = len - 44;
  if (version >= 2) {
    size_t skip = data_size(&c, 4);
    if (skip > left) return -1;
    p += skip;
    left -= skip;
    if (read_header(p, left, &version, &c) != 0) return -1;
    p += 44;
    left -= 44;
    timesize = 8;
  }
  size_t need = data_size(&c, timesize);
  if (need > left) return -1;
  tz->ntrans = (int32_t)c.timecnt;
  tz->ntypes = (int32_t)c.typecnt;
  tz->trans = dagd_calloc(c.timecnt ? c.timecnt : 1, sizeof(int64_t));
  tz->idx = dagd_calloc(c.timecnt ? c.timecnt : 1, 1);
  tz->utoff = dagd_calloc(c.typecnt, sizeof(int32_t));
  for (uint32_t i = 0; i < c.timecnt; i++) {
    tz->trans[i] = timesize == 8 ? be64(p + i * 8) : be32(p + i * 4);
    if (i > 0 && tz->trans[i] <= tz->trans[i - 1]) return -1;
  }
  p += (size_t)c.timecnt * timesize;
  for (uint32_t i = 0; i < c.timecnt; i++) {
    tz->idx[i] = p[i];
    if (p[i] >= c.typecnt) return -1;
  }
  p += c.timecnt;
  for (uint32_t i = 0; i < c.typecnt; i++) {
    int32_t off = be32(p + i * 6);
    if (off < -TZ_MAX_OFFSET || off > TZ_MAX_OFFSET || p[i * 6 + 4] > 1 || p[i * 6 + 5] >= c.charcnt)
      return -1;
    tz->utoff[i] = off;
  }
  p += need - (size_t)c.timecnt * (timesize + 1);
  left -= need;
  if (version >= 2 && left >= 2 && p[0] == '\n') {
    /* Footer: "\n<POSIX TZ string>\n"; empty means no rule. */
    const unsigned char *nl = memchr(p + 1, '\n', left - 1);
    if (nl == NULL) return -1;
    size_t flen = (size_t)(nl - p - 1);
    if (flen > 0) {
      char footer[256];
      if (flen >= sizeof(footer)) return -1;
      memcpy(footer, p + 1, flen);
      footer[flen] = '\0';
      if (dagd__tz_rule_parse(footer, &tz->rule) != 0) return -1;
      tz->has_rule = true;
    }
  }
  return 0;
}

static bool name_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > 200 || name[0] == '/' || strstr(name, "..") != NULL) return false;
  for (const char *p = name; *p; p++) {
    char ch = *p;
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
          ch == '+' || ch == '/' || ch == '-'))
      return false;
  }
  return true;
}

int dagd_tz_load(const char *name, dagd_tz **out, dagd_err *err) {
  *out = NULL;
  if (name == NULL || !name_ok(name))
    return dagd_err_set(err, DAGD_EINVAL, "bad time zone name \"%s\"", name ? name : "(null)");
  if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0 || strcmp(name, "Z") == 0) {
    dagd_tz *tz = dagd_calloc(1, sizeof(*tz));
    tz->name = dagd_strdup(name);
    *out = tz;
    return 0;
  }
  const char *dir = getenv("TZDIR");
  if (dir == NULL || *dir == '\0') dir = "/usr/share/zoneinfo";
  char *path = dagd_asprintf("%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  unsigned char *buf = NULL;
  dagd_tz *tz = NULL;
  int rc = 0;
  if (f == NULL) {
    int e = errno;
    rc = dagd_err_set(err, e == ENOENT || e == ENOTDIR || e == EISDIR ? DAGD_ENOENT : DAGD_EIO,
                      "unknown time zone \"%s\": %s: %s", name, path, strerror(e));
    if (err) err->cause = e;
    goto done;
  }
  buf = dagd_malloc(TZIF_MAX_BYTES);
  size_t len = fread(buf, 1, TZIF_MAX_BYTES, f);
  if (ferror(f)) {
    /* A directory such as "America" opens but cannot be read. */
    rc = dagd_err_set(err, DAGD_ENOENT, "unknown time zone \"%s\": %s is not a zone file", name, path);
    goto done;
  }
  tz = dagd_calloc(1, sizeof(*tz));
  tz->name = dagd_strdup(name);
  if (len == TZIF_MAX_BYTES || parse_tzif(tz, buf, len) != 0) {
    rc = dagd_err_set(err, DAGD_EINVAL, "time zone \"%s\": %s is not a valid TZif file", name, path);
    goto done;
  }
  *out = tz;
  tz = NULL;
done:
  if (f) fclose(f);
  free(buf);
  free(path);
  dagd_tz_free(tz);
  return rc;
}

/* Index of the last transition at or before t, or -1. */
static int32_t trans_index(const dagd_tz *tz, int64_t t) {
  int32_t lo = 0, hi = tz->ntrans; /* first index with trans > t */
  while (lo < hi) {
    int32_t mid = lo + (hi - lo) / 2;
    if (tz->trans[mid] <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/* True when the footer rule governs instant t (after the last transition). */
static bool rule_governs(const dagd_tz *tz, int64_t t) {
  return tz->has_rule && (tz->ntrans == 0 || t > tz->trans[tz->ntrans - 1]);
}

int32_t dagd_tz_offset(const dagd_tz *tz, int64_t t) {
  if (tz->ntypes == 0) return 0; /* UTC */
  if (rule_governs(tz, t)) return dagd__tz_rule_offset(&tz->rule, t);
  int32_t i = trans_index(tz, t);
  /* Before the first transition the first time type applies (RFC 8536). */
  return tz->utoff[i < 0 ? 0 : tz->idx[i]];
}

void dagd_tz_localtime(const dagd_tz *tz, int64_t t, dagd_tm *out, int32_t *offset) {
  int32_t off = dagd_tz_offset(tz, t);
  dagd_epoch_to_tm(t + off, out);
  if (offset) *offset = off;
}

/* The footer's transitions of one year that fall after the file's data,
 * in time order. Returns how many (0-2). */
static int rule_changes(const dagd_tz *tz, int year, int64_t at[2]) {
  if (!tz->has_rule || !tz->rule.has_dst) return 0;
  int64_t s, e;
  dagd__tz_rule_year(&tz->rule, year, &s, &e);
  int64_t a = s < e ? s : e, b = s < e ? e : s;
  int n = 0;
  int64_t floor = tz->ntrans ? tz->trans[tz->ntrans - 1] : INT64_MIN;
  if (a > floor) at[n++] = a;
  if (b > floor) at[n++] = b;
  return n;
}

static int year_of(int64_t t) {
  int y, m, d;
  int64_t days = t / 86400 - (t % 86400 < 0);
  dagd_civil_from_days(days, &y, &m, &d);
  return y;
}

/* Fills at, before and after when instant T changes the offset. */
static bool is_change(const dagd_tz *tz, int64_t T, int64_t *at, int32_t *before, int32_t *after) {
  int32_t b = dagd_tz_offset(tz, T - 1), a = dagd_tz_offset(tz, T);
  if (a == b) return false;
  *at = T;
  *before = b;
  *after = a;
  return true;
}

bool dagd__tz_change_after(const dagd_tz *tz, int64_t t, int64_t *at, int32_t *before, int32_t *after) {
  if (tz->ntypes == 0) return false;
  for (int32_t i = trans_index(tz, t) + 1; i < tz->ntrans; i++)
    if (is_change(tz, tz->trans[i], at, before, after)) return true;
  if (!tz->has_rule || !tz->rule.has_dst) return false;
  int64_t from = t;
  if (tz->ntrans && tz->trans[tz->ntrans - 1] > from) from = tz->trans[tz->ntrans - 1];
  /* A rule with DST changes the offset at least every other year unless
   * it is all-year DST; a few years without a change means none ever. */
  int y0 = year_of(from);
  for (int y = y0 - 1; y <= y0 + 3; y++) {
    int64_t ts[2];
    int n = rule_changes(tz, y, ts);
    for (int k = 0; k < n; k++)
      if (ts[k] > t && is_change(tz, ts[k], at, before, after)) return true;
  }
  return false;
}

bool dagd__tz_change_before(const dagd_tz *tz, int64_t t, int64_t *at, int32_t *before, int32_t *after) {
  if (tz->ntypes == 0) return false;
  if (rule_governs(tz, t) && tz->rule.has_dst) {
    int y0 = year_of(t);
    int64_t floor = tz->ntrans ? tz->trans[tz->ntrans - 1] : INT64_MIN;
    for (int y = y0 + 1; y >= y0 - 3; y--) {
      int64_t ts[2];
      int n = rule_changes(tz, y, ts);
      for (int k = n - 1; k >= 0; k--)
        if (ts[k] <= t && is_change(tz, ts[k], at, before, after)) return true;
      if (dagd_days_from_civil(y, 1, 1) * 86400 - 2 * 86400 < floor) break;
    }
  }
  for (int32_t i = trans_index(tz, t); i >= 0; i--)
    if (is_change(tz, tz->trans[i], at, before, after)) return true;
  return false;
}

int dagd_tz_mktime(const dagd_tz *tz, const dagd_tm *wall, int64_t out[2]) {
  dagd_tm w = *wall;
  int64_t local = dagd_tm_to_epoch(&w);
  /* Walk the offset segments that can hold an instant with this wall time:
   * every offset lies within +-TZ_MAX_OFFSET, so its instant lies within
   * that distance of `local`. */
  int64_t lo = local - TZ_MAX_OFFSET - 1, hi = local + TZ_MAX_OFFSET + 1;
  int64_t seg = lo;
  int32_t off = dagd_tz_offset(tz, seg);
  int n = 0;
  int64_t gap = 0;
  bool in_gap = false;
  for (;;) {
    int64_t T;
    int32_t b, a;
    bool more = dagd__tz_change_after(tz, seg, &T, &b, &a) && T <= hi;
    int64_t end = more ? T : INT64_MAX; /* segment [seg, end) has offset off */
    int64_t cand = local - off;
    if (cand >= seg && cand < end && n < 2) out[n++] = cand;
    if (!more) break;
    /* A forward change at T leaves wall times [T+b, T+a) unused. */
    if (a > b && local >= T + b && local < T + a) in_gap = true, gap = local - b;
    seg = T;
    off = a;
  }
  if (n == 0 && in_gap) out[0] = gap;
  else if (n == 0) out[0] = local - off; /* unreachable with sane data */
  return n;
}
