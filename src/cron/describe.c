/* Short English descriptions of schedules ("at 02:00 every day", "every 15
 * minutes") for dagctl and the UI. Best effort: shapes we do not phrase
 * nicely fall back to naming the fields. Pure.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cron/internal.h"
#include "dagd/util.h"

static const char *const day_names[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
static const char *const month_names[] = {"", "January", "February", "March", "April", "May", "June",
                                          "July", "August", "September", "October", "November", "December"};

static int popcount(uint64_t x) { return __builtin_popcountll(x); }
static int lowest(uint64_t x) { return x ? __builtin_ctzll(x) : -1; }

/* The step N of a field written "*\/N", or 0. */
static int star_step(const char *f) {
  if (f[0] != '*' || f[1] != '/') return 0;
  return atoi(f + 2);
}

static bool is_star(const char *f) { return strcmp(f, "*") == 0 || strcmp(f, "?") == 0; }

/* "every 90 minutes", "every day". */
static void describe_interval(dagd_buf *b, int64_t every) {
  static const struct {
    int64_t secs;
    const char *one, *many;
  } units[] = {{7 * 86400, "week", "weeks"}, {86400, "day", "days"}, {3600, "hour", "hours"},
               {60, "minute", "minutes"}, {1, "second", "seconds"}};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(units); i++) {
    if (every % units[i].secs != 0) continue;
    int64_t n = every / units[i].secs;
    if (n == 1) dagd_buf_printf(b, "every %s", units[i].one);
    else dagd_buf_printf(b, "every %lld %s", (long long)n, units[i].many);
    return;
  }
}

/* Appends the set bits of a field as "02:00, 14:00"-style or as numbers. */
static void list_times(dagd_buf *b, const dagd_cron *c) {
  int m = lowest(c->bits[DAGD__MIN]);
  int s = lowest(c->bits[DAGD__SEC]);
  bool first = true;
  for (int h = 0; h < 24; h++) {
    if (!(c->bits[DAGD__HOUR] >> h & 1)) continue;
    dagd_buf_puts(b, first ? "" : ", ");
    first = false;
    if (c->has_seconds && s != 0) dagd_buf_printf(b, "%02d:%02d:%02d", h, m, s);
    else dagd_buf_printf(b, "%02d:%02d", h, m);
  }
}

static void describe_time(dagd_buf *b, const dagd_cron *c, bool *fixed_time) {
  const char *sf = c->field[DAGD__SEC], *mf = c->field[DAGD__MIN], *hf = c->field[DAGD__HOUR];
  bool one_sec = popcount(c->bits[DAGD__SEC]) == 1, one_min = popcount(c->bits[DAGD__MIN]) == 1;
  int nh = popcount(c->bits[DAGD__HOUR]);
  *fixed_time = false;
  if (c->has_seconds && !one_sec) {
    if (is_star(sf) && is_star(mf) && is_star(hf)) dagd_buf_puts(b, "every second");
    else if (star_step(sf) && is_star(mf) && is_star(hf)) dagd_buf_printf(b, "every %d seconds", star_step(sf));
    else dagd_buf_printf(b, "at second %s of minute %s of hour %s", sf, mf, hf);
    return;
  }
  if (one_min && !c->hour_wild && nh <= 6) {
    dagd_buf_puts(b, "at ");
    list_times(b, c);
    *fixed_time = true;
    return;
  }
  if (is_star(mf) && is_star(hf)) dagd_buf_puts(b, "every minute");
  else if (star_step(mf) && is_star(hf)) dagd_buf_printf(b, "every %d minutes", star_step(mf));
  else if (one_min && is_star(hf)) {
    int m = lowest(c->bits[DAGD__MIN]);
    if (m == 0) dagd_buf_puts(b, "every hour");
    else dagd_buf_printf(b, "at minute %d of every hour", m);
  } else if (one_min && star_step(hf))
    dagd_buf_printf(b, "at minute %d of every %d hours", lowest(c->bits[DAGD__MIN]), star_step(hf));
  else if (is_star(hf)) dagd_buf_printf(b, "at minutes %s of every hour", mf);
  else if (is_star(mf)) dagd_buf_printf(b, "every minute of hours %s", hf);
  else dagd_buf_printf(b, "at minutes %s of hours %s", mf, hf);
  if (c->has_seconds && lowest(c->bits[DAGD__SEC]) != 0) dagd_buf_printf(b, " (second %d)", lowest(c->bits[DAGD__SEC]));
}

/* "Monday through Friday", "Monday, Wednesday", or the raw field. */
static void describe_dow(dagd_buf *b, const dagd_cron *c) {
  bool special = c->dow_last != 0;
  for (int w = 0; w < 7; w++) special |= c->dow_nth[w] != 0;
  uint64_t bits = c->bits[DAGD__DOW];
  if (special || bits == 0) {
    static const char *const nth[] = {"", "first", "second", "third", "fourth", "fifth"};
    bool first = true;
    for (int w = 0; w < 7; w++) {
      for (int n = 1; n <= 5; n++)
        if (c->dow_nth[w] >> n & 1) {
          dagd_buf_printf(b, "%son the %s %s of the month", first ? "" : " or ", nth[n], day_names[w]);
          first = false;
        }
      if (c->dow_last >> w & 1) {
        dagd_buf_printf(b, "%son the last %s of the month", first ? "" : " or ", day_names[w]);
        first = false;
      }
    }
    for (int w = 0; w < 7; w++)
      if (bits >> w & 1) {
        dagd_buf_printf(b, "%son %s", first ? "" : " or ", day_names[w]);
        first = false;
      }
    return;
  }
  /* A contiguous run of three or more reads as a range. */
  int lo = lowest(bits), hi = 63 - __builtin_clzll(bits);
  if (popcount(bits) == hi - lo + 1 && hi - lo >= 2) {
    dagd_buf_printf(b, "on %s through %s", day_names[lo], day_names[hi]);
    return;
  }
  dagd_buf_puts(b, "on ");
  bool first = true;
  for (int w = 0; w < 7; w++)
    if (bits >> w & 1) {
      dagd_buf_printf(b, "%s%s", first ? "" : ", ", day_names[w]);
      first = false;
    }
}

static void describe_dom(dagd_buf *b, const dagd_cron *c) {
  const char *f = c->field[DAGD__DOM];
  if (strcmp(f, "L") == 0 || strcmp(f, "l") == 0) dagd_buf_puts(b, "on the last day of the month");
  else if (strcasecmp(f, "LW") == 0) dagd_buf_puts(b, "on the last weekday of the month");
  else if (popcount(c->bits[DAGD__DOM]) == 1 && !c->dom_last && !c->dom_weekday && !c->dom_last_weekday)
    dagd_buf_printf(b, "on day %d of the month", lowest(c->bits[DAGD__DOM]));
  else dagd_buf_printf(b, "on days %s of the month", f);
}

char *dagd_cron_describe(const dagd_cron *c) {
  dagd_buf b;
  dagd_buf_init(&b);
  if (c->is_interval) {
    describe_interval(&b, c->every);
    return dagd_buf_steal(&b);
  }
  bool fixed_time;
  describe_time(&b, c, &fixed_time);
  bool dom_any = is_star(c->field[DAGD__DOM]), dow_any = is_star(c->field[DAGD__DOW]);
  if (dom_any && dow_any) {
    if (fixed_time) dagd_buf_puts(&b, " every day");
  } else if (!dow_any && (dom_any || c->dom_all)) {
    dagd_buf_putc(&b, ' ');
    describe_dow(&b, c);
    if (!dom_any) dagd_buf_printf(&b, " if the day of the month is %s", c->field[DAGD__DOM]);
  } else if (!dom_any && (dow_any || c->dow_all)) {
    dagd_buf_putc(&b, ' ');
    describe_dom(&b, c);
    if (!dow_any) dagd_buf_printf(&b, " if the day of the week is %s", c->field[DAGD__DOW]);
  } else {
    dagd_buf_putc(&b, ' ');
    describe_dom(&b, c);
    dagd_buf_puts(&b, " or ");
    describe_dow(&b, c);
  }
  uint64_t mon = c->bits[DAGD__MON];
  if (popcount(mon) == 1) dagd_buf_printf(&b, " in %s", month_names[lowest(mon)]);
  else if (popcount(mon) != 12) dagd_buf_printf(&b, " in months %s", c->field[DAGD__MON]);
  return dagd_buf_steal(&b);
}
