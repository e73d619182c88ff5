/* Next and previous fire times. Cron fields are matched in local wall time
 * (a wall time is encoded as seconds since the epoch as if it were UTC);
 * the zone's offset changes cut the timeline into segments of one offset,
 * and each segment maps wall times to instants monotonically, so we find
 * the first match per segment instead of stepping minute by minute. The DST
 * rules (docs/cron.md): a wall time in a gap fires once, shifted forward by
 * the gap; a wall time repeated by a fall-back fires at its first occurrence
 * only, unless the hour field has a wildcard or step, in which case it fires
 * at both. Equal instants are one fire time. Pure.
 * SPDX-License-Identifier: MIT */
#include <limits.h>

#include "cron/internal.h"
#include "dagd/err.h"
#include "dagd/time.h"
#include "dagd/tz.h"
#include "tz/internal.h"

/* How far next/prev search: like croniter, 50 years between fire times. */
#define HORIZON_SECS ((int64_t)18262 * 86400)
/* Instants we accept: years 1 to 9999, so civil arithmetic never overflows. */
#define MIN_INSTANT ((int64_t)-62135596800LL + 2 * HORIZON_SECS)
#define MAX_INSTANT ((int64_t)253402300799LL - 2 * HORIZON_SECS)

static int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* Lowest set bit >= k, or -1. */
static int bit_at_or_after(uint64_t mask, int k) {
  if (k > 63) return -1;
  mask &= ~0ULL << k;
  return mask ? __builtin_ctzll(mask) : -1;
}

/* Highest set bit <= k, or -1. */
static int bit_at_or_before(uint64_t mask, int k) {
  if (k < 0) return -1;
  if (k < 63) mask &= (2ULL << k) - 1;
  return mask ? 63 - __builtin_clzll(mask) : -1;
}

uint32_t dagd__cron_day_mask(const dagd_cron *c, int year, int mon) {
  int nd = dagd_days_in_month(year, mon);
  uint32_t valid = ((1u << nd) - 1) << 1;
  int64_t first = dagd_days_from_civil(year, mon, 1);
  int wday1 = (int)((first % 7 + 11) % 7); /* weekday of the 1st; 1970-01-01 was a Thursday */
#define WDAY(d) ((wday1 + (d)-1) % 7)
  uint32_t dom = (uint32_t)c->bits[DAGD__DOM] & valid;
  for (int n = 0; n <= 30; n++)
    if ((c->dom_last >> n & 1) && nd - n >= 1) dom |= 1u << (nd - n);
  for (int d = 1; d <= 31; d++) {
    if (!(c->dom_weekday >> d & 1) || d > nd) continue;
    /* Nearest weekday to day d, never leaving the month. */
    int w = WDAY(d), t = d;
    if (w == 6) t = d > 1 ? d - 1 : d + 2;
    else if (w == 0) t = d < nd ? d + 1 : d - 2;
    dom |= 1u << t;
  }
  if (c->dom_last_weekday) {
    int t = nd, w = WDAY(nd);
    if (w == 6) t = nd - 1;
    else if (w == 0) t = nd - 2;
    dom |= 1u << t;
  }
  uint32_t dow = 0;
  for (int d = 1; d <= nd; d++) {
    int w = WDAY(d);
    if ((c->bits[DAGD__DOW] >> w & 1) || (c->dow_nth[w] >> ((d - 1) / 7 + 1) & 1) ||
        ((c->dow_last >> w & 1) && d + 7 > nd))
      dow |= 1u << d;
  }
#undef WDAY
  /* croniter (Airflow): OR when both day fields are restricted, else AND
   * (an unrestricted field matches every day, so AND is the other one). */
  return (c->dom_all || c->dow_all) ? (dom & dow) : (dom | dow);
}

/* A wall time taken apart; the matcher edits the fields and normalises by
 * carrying into the next unit. */
typedef struct wall {
  int y, mo, d, h, mi, s;
} wall;

static void wall_split(int64_t w, wall *out) {
  int64_t days = floor_div(w, 86400);
  int64_t rem = w - days * 86400;
  dagd_civil_from_days(days, &out->y, &out->mo, &out->d);
  out->h = (int)(rem / 3600);
  out->mi = (int)(rem % 3600 / 60);
  out->s = (int)(rem % 60);
}

static int64_t wall_join(const wall *w) {
  return dagd_days_from_civil(w->y, w->mo, w->d) * 86400 + w->h * 3600 + w->mi * 60 + w->s;
}

/* First matching wall time in [from, to); false when none. Skips whole
 * months, days, hours and minutes. */
static bool match_next(const dagd_cron *c, int64_t from, int64_t to, int64_t *out) {
  if (from >= to) return false;
  wall w;
  wall_split(from, &w);
  int mask_y = 0, mask_mo = 0;
  uint32_t mask = 0;
  for (;;) {
    /* Carry overflowing fields upward. */
    if (w.s > 59) w.s = 0, w.mi++;
    if (w.mi > 59) w.mi = 0, w.h++;
    if (w.h > 23) w.h = 0, w.d++;
    if (w.d > 31) w.d = 1, w.mo++;
    if (w.mo > 12) w.mo = 1, w.y++;
    if (dagd_days_from_civil(w.y, w.mo, 1) * 86400 >= to) return false;
    if (!(c->bits[DAGD__MON] >> w.mo & 1)) {
      int m = bit_at_or_after(c->bits[DAGD__MON], w.mo + 1);
      if (m < 0 || m > 12) w.y++, m = bit_at_or_after(c->bits[DAGD__MON], 1);
      w.mo = m, w.d = 1, w.h = w.mi = w.s = 0;
      continue;
    }
    if (mask_y != w.y || mask_mo != w.mo) {
      mask = dagd__cron_day_mask(c, w.y, w.mo);
      mask_y = w.y, mask_mo = w.mo;
    }
    int d = bit_at_or_after(mask, w.d);
    if (d < 0) {
      w.mo++, w.d = 1, w.h = w.mi = w.s = 0;
      continue;
    }
    if (d != w.d) w.d = d, w.h = w.mi = w.s = 0;
    int h = bit_at_or_after(c->bits[DAGD__HOUR], w.h);
    if (h < 0 || h > 23) {
      w.d++, w.h = w.mi = w.s = 0;
      continue;
    }
    if (h != w.h) w.h = h, w.mi = w.s = 0;
    int mi = bit_at_or_after(c->bits[DAGD__MIN], w.mi);
    if (mi < 0 || mi > 59) {
      w.h++, w.mi = w.s = 0;
      continue;
    }
    if (mi != w.mi) w.mi = mi, w.s = 0;
    int s = bit_at_or_after(c->bits[DAGD__SEC], w.s);
    if (s < 0 || s > 59) {
      w.mi++, w.s = 0;
      continue;
    }
    w.s = s;
    int64_t t = wall_join(&w);
    if (t >= to) return false;
    *out = t;
    return true;
  }
}

/* Last matching wall time in [from, to]; false when none. */
static bool match_prev(const dagd_cron *c, int64_t to, int64_t from, int64_t *out) {
  if (to < from) return false;
  wall w;
  wall_split(to, &w);
  int mask_y = 0, mask_mo = 0;
  uint32_t mask = 0;
  for (;;) {
    /* Borrow from the unit above when a field went below its range. */
    if (w.s < 0) w.s = 59, w.mi--;
    if (w.mi < 0) w.mi = 59, w.h--;
    if (w.h < 0) w.h = 23, w.d--;
    if (w.d < 1) {
      w.mo--;
      if (w.mo < 1) w.mo = 12, w.y--;
      w.d = 31;
    }
    if ((dagd_days_from_civil(w.y, w.mo, 1) + dagd_days_in_month(w.y, w.mo)) * 86400 <= from) return false;
    if (!(c->bits[DAGD__MON] >> w.mo & 1)) {
      int m = bit_at_or_before(c->bits[DAGD__MON], w.mo - 1);
      if (m < 1) w.y--, m = bit_at_or_before(c->bits[DAGD__MON], 12);
      w.mo = m, w.d = 31, w.h = 23, w.mi = w.s = 59;
      continue;
    }
    if (mask_y != w.y || mask_mo != w.mo) {
      mask = dagd__cron_day_mask(c, w.y, w.mo);
      mask_y = w.y, mask_mo = w.mo;
    }
    int d = bit_at_or_before(mask, w.d);
    if (d < 1) {
      w.d = 0, w.h = 23, w.mi = w.s = 59;
      continue;
    }
    if (d != w.d) w.d = d, w.h = 23, w.mi = w.s = 59;
    int h = bit_at_or_before(c->bits[DAGD__HOUR], w.h);
    if (h < 0) {
      w.d--, w.h = 23, w.mi = w.s = 59;
      continue;
    }
    if (h != w.h) w.h = h, w.mi = w.s = 59;
    int mi = bit_at_or_before(c->bits[DAGD__MIN], w.mi);
    if (mi < 0) {
      w.h--, w.mi = w.s = 59;
      continue;
    }
    if (mi != w.mi) w.mi = mi, w.s = 59;
    int s = bit_at_or_before(c->bits[DAGD__SEC], w.s);
    if (s < 0) {
      w.mi--, w.s = 59;
      continue;
    }
    w.s = s;
    int64_t t = wall_join(&w);
    if (t < from) return false;
    *out = t;
    return true;
  }
}

/* One offset segment [start, end) of the timeline: instants in it have
 * local wall time instant + off. prev_off is the offset before start. */
typedef struct segment {
  bool has_start, has_end;
  int64_t start, end;
  int32_t off, prev_off;
} segment;

static void segment_at(const struct dagd_tz *tz, int64_t t, segment *sg) {
  int32_t x;
  sg->off = dagd_tz_offset(tz, t);
  sg->has_start = dagd__tz_change_before(tz, t, &sg->start, &sg->prev_off, &x);
  sg->has_end = dagd__tz_change_after(tz, t, &sg->end, &x, &x);
}

/* The earliest fire instant >= lo in segment sg (bounded by wall time
 * wall_limit); false when the segment has none. */
static bool segment_first(const dagd_cron *c, const segment *sg, int64_t lo, int64_t wall_limit, int64_t *out) {
  bool found = false;
  int64_t best = 0, w;
  /* Real wall times. A fixed-time job skips the second pass of a repeated
   * hour: those wall times already fired in the previous segment. */
  int64_t wlo = lo + sg->off;
  if (sg->has_start && !c->hour_wild && sg->prev_off > sg->off && wlo < sg->start + sg->prev_off)
    wlo = sg->start + sg->prev_off;
  int64_t whi = sg->has_end ? sg->end + sg->off : INT64_MAX;
  if (whi > wall_limit) whi = wall_limit;
  if (match_next(c, wlo, whi, &w)) found = true, best = w - sg->off;
  /* Wall times skipped by a forward change at the segment start fire
   * shifted forward by the gap. */
  if (sg->has_start && sg->prev_off < sg->off) {
    int64_t glo = lo + sg->prev_off;
    int64_t ghi = sg->start + sg->off;
    if (sg->has_end && ghi > sg->end + sg->prev_off) ghi = sg->end + sg->prev_off;
    if (match_next(c, glo, ghi, &w) && (!found || w - sg->prev_off < best)) found = true, best = w - sg->prev_off;
  }
  if (found) *out = best;
  return found;
}

/* The latest fire instant <= hi in segment sg; mirror of segment_first. */
static bool segment_last(const dagd_cron *c, const segment *sg, int64_t hi, int64_t wall_floor, int64_t *out) {
  bool found = false;
  int64_t best = 0, w;
  int64_t wlo = sg->has_start ? sg->start + sg->off : INT64_MIN;
  if (sg->has_start && !c->hour_wild && sg->prev_off > sg->off) wlo = sg->start + sg->prev_off;
  if (wlo < wall_floor) wlo = wall_floor;
  if (match_prev(c, hi + sg->off, wlo, &w)) found = true, best = w - sg->off;
  if (sg->has_start && sg->prev_off < sg->off) {
    int64_t ghi = sg->start + sg->off - 1;
    if (ghi > hi + sg->prev_off) ghi = hi + sg->prev_off;
    if (match_prev(c, ghi, sg->start + sg->prev_off, &w) && (!found || w - sg->prev_off > best))
      found = true, best = w - sg->prev_off;
  }
  if (found) *out = best;
  return found;
}

int dagd_cron_next(const dagd_cron *c, const struct dagd_tz *tz, int64_t after, int64_t *out) {
  if (c->is_interval) {
    if (after < MIN_INSTANT || after > MAX_INSTANT || c->anchor < MIN_INSTANT || c->anchor > MAX_INSTANT)
      return DAGD_ENOENT;
    int64_t k = floor_div(after - c->anchor, c->every) + 1;
    *out = c->anchor + k * c->every;
    return 0;
  }
  if (after < MIN_INSTANT || after > MAX_INSTANT) return DAGD_ENOENT;
  if (tz == NULL) tz = dagd_tz_utc();
  int64_t t = after + 1;
  segment sg;
  segment_at(tz, t, &sg);
  int64_t wall_limit = t + sg.off + HORIZON_SECS;
  int64_t lo = t;
  for (;;) {
    if (segment_first(c, &sg, lo, wall_limit, out)) return 0;
    if (!sg.has_end || sg.end + sg.off >= wall_limit) return DAGD_ENOENT;
    /* Move to the next segment. */
    int32_t x;
    sg.has_start = true;
    sg.start = sg.end;
    sg.prev_off = sg.off;
    sg.off = dagd_tz_offset(tz, sg.start);
    sg.has_end = dagd__tz_change_after(tz, sg.start, &sg.end, &x, &x);
    lo = sg.start;
  }
}

int dagd_cron_prev(const dagd_cron *c, const struct dagd_tz *tz, int64_t before, int64_t *out) {
  if (c->is_interval) {
    if (before < MIN_INSTANT || before > MAX_INSTANT || c->anchor < MIN_INSTANT || c->anchor > MAX_INSTANT)
      return DAGD_ENOENT;
    int64_t k = -floor_div(-(before - c->anchor), c->every) - 1; /* ceil((before-anchor)/every) - 1 */
    *out = c->anchor + k * c->every;
    return 0;
  }
  if (before < MIN_INSTANT || before > MAX_INSTANT) return DAGD_ENOENT;
  if (tz == NULL) tz = dagd_tz_utc();
  int64_t t = before - 1;
  segment sg;
  segment_at(tz, t, &sg);
  int64_t wall_floor = t + sg.off - HORIZON_SECS;
  int64_t hi = t;
  for (;;) {
    if (segment_last(c, &sg, hi, wall_floor, out)) return 0;
    if (!sg.has_start || sg.start + sg.off <= wall_floor) return DAGD_ENOENT;
    /* Move to the previous segment. */
    int32_t x;
    hi = sg.start - 1;
    sg.has_end = true;
    sg.end = sg.start;
    sg.off = sg.prev_off;
    sg.has_start = dagd__tz_change_before(tz, hi, &sg.start, &sg.prev_off, &x);
  }
}
