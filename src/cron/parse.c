/* The schedule parser: cron expressions (5 fields, or 6 with a leading
 * seconds field), presets (@daily ...) and interval schedules ("every 15m").
 * Errors name the schedule, the field and the offending value. Pure.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cron/internal.h"
#include "dagd/err.h"
#include "dagd/util.h"

typedef struct field_spec {
  const char *name;
  int lo, hi;                 /* values as written (dow allows 7 = Sunday) */
  const char *const *names;   /* three-letter names for lo.., or NULL */
} field_spec;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const field_spec specs[DAGD__NFIELDS] = {
    [DAGD__SEC] = {"second", 0, 59, NULL},
    [DAGD__MIN] = {"minute", 0, 59, NULL},
    [DAGD__HOUR] = {"hour", 0, 23, NULL},
    [DAGD__DOM] = {"day-of-month", 1, 31, NULL},
    [DAGD__MON] = {"month", 1, 12, month_names},
    [DAGD__DOW] = {"day-of-week", 0, 7, dow_names},
};

static const struct {
  const char *name, *expr;
} presets[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* Parsing state for one field: where errors go and how to phrase them. */
typedef struct field_ctx {
  dagd_cron *c;
  int f;
  const char *text; /* the whole schedule, for messages */
  const char *item; /* the list item being parsed */
  dagd_err *err;
} field_ctx;

static int field_error(field_ctx *x, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "bad cron "<text>": <field> field: <detail>". */
static int field_error(field_ctx *x, int code, const char *fmt, ...) {
  char detail[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  return dagd_err_set(x->err, code, "bad cron \"%s\": %s field: %s", x->text, specs[x->f].name, detail);
}

/* Reads a number or (for month and dow) a three-letter name at *p.
 * Returns 0 with *out set and *p moved past it, or an error. */
static int parse_value(field_ctx *x, const char **p, int *out) {
  const field_spec *sp = &specs[x->f];
  const char *s = *p;
  if (isdigit((unsigned char)*s)) {
    long v = 0;
    while (isdigit((unsigned char)*s)) {
      if (v < 1000000) v = v * 10 + (*s - '0');
      s++;
    }
    if (v < sp->lo || v > sp->hi)
      return field_error(x, DAGD_ERANGE, "%.*s is out of range %d-%d", (int)(s - *p) > 20 ? 20 : (int)(s - *p), *p,
                         sp->lo, sp->hi);
    *out = (int)v;
    *p = s;
    return 0;
  }
  if (isalpha((unsigned char)*s)) {
    const char *e = s;
    while (isalpha((unsigned char)*e)) e++;
    int n = (int)(e - s) > 20 ? 20 : (int)(e - s);
    if (sp->names != NULL) {
      for (int i = 0; sp->names[i]; i++)
        if (e - s == 3 && strncasecmp(s, sp->names[i], 3) == 0) {
          *out = sp->lo + i;
          *p = e;
          return 0;
        }
      return field_error(x, DAGD_ESYNTAX, "unknown name \"%.*s\" (expected %s)", n, s,
                         x->f == DAGD__MON ? "JAN-DEC or 1-12" : "SUN-SAT or 0-7");
    }
    return field_error(x, DAGD_ESYNTAX, "unknown name \"%.*s\" (expected a number %d-%d)", n, s, sp->lo, sp->hi);
  }
  if (*s == '\0') return field_error(x, DAGD_ESYNTAX, "missing value in \"%s\"", x->item);
  return field_error(x, DAGD_ESYNTAX, "unexpected \"%c\" in \"%s\" where a value belongs", *s, x->item);
}

/* The step after a '/' at *p: a positive number no larger than the
 * number of values the field has. */
static int parse_step(field_ctx *x, const char **p, int *step) {
  const field_spec *sp = &specs[x->f];
  const char *s = *p;
  if (!isdigit((unsigned char)*s))
    return field_error(x, DAGD_ESYNTAX, "bad step in \"%s\" (expected a positive number after '/')", x->item);
  long v = 0;
  while (isdigit((unsigned char)*s)) {
    if (v < 1000000) v = v * 10 + (*s - '0');
    s++;
  }
  int span = sp->hi - sp->lo + 1 - (x->f == DAGD__DOW); /* 7 weekdays, not 8 */
  if (v == 0) return field_error(x, DAGD_ESYNTAX, "bad step in \"%s\" (a step must be at least 1)", x->item);
  if (v > span)
    return field_error(x, DAGD_ERANGE, "bad step in \"%s\" (%ld is more than the field's %d values)", x->item, v,
                       span);
  *step = (int)v;
  *p = s;
  return 0;
}

static void set_range(dagd_cron *c, int f, int a, int b, int step) {
  for (int v = a; v <= b; v += step) {
    int bit = (f == DAGD__DOW && v == 7) ? 0 : v;
    c->bits[f] |= 1ULL << bit;
  }
}

/* Text left over after a complete item, e.g. "5x" or "1-5/2/3". */
static int trailing(field_ctx *x, const char *item, const char *rest) {
  return field_error(x, DAGD_ESYNTAX, "unexpected \"%.30s\" after \"%.*s\"", rest,
                     (int)(rest - item) > 30 ? 30 : (int)(rest - item), item);
}

/* Day-of-month specials: "L", "L-n", "LW", "nW". Returns 1 when the item
 * was one (or an error), 0 when it is an ordinary item. */
static int parse_dom_special(field_ctx *x, const char *item, int *rc) {
  dagd_cron *c = x->c;
  *rc = 0;
  if (item[0] == 'L' || item[0] == 'l') {
    const char *p = item + 1;
    if (*p == '\0') {
      c->dom_last |= 1u;
      return 1;
    }
    if ((*p == 'W' || *p == 'w') && p[1] == '\0') {
      c->dom_last_weekday = true;
      return 1;
    }
    if (*p == '-') {
      p++;
      if (!isdigit((unsigned char)*p)) {
        *rc = field_error(x, DAGD_ESYNTAX, "bad \"%s\" (expected L-n, n from 0 to 30)", item);
        return 1;
      }
      long n = 0;
      while (isdigit((unsigned char)*p) && n < 1000) n = n * 10 + (*p++ - '0');
      if (isdigit((unsigned char)*p) || n > 30) {
        *rc = field_error(x, DAGD_ERANGE, "\"%s\": offset out of range 0-30", item);
        return 1;
      }
      if (*p != '\0') {
        *rc = trailing(x, item, p);
        return 1;
      }
      c->dom_last |= 1u << n;
      return 1;
    }
    *rc = trailing(x, item, p);
    return 1;
  }
  size_t n = strlen(item);
  if (n >= 2 && (item[n - 1] == 'W' || item[n - 1] == 'w') && isdigit((unsigned char)item[0])) {
    const char *p = item;
    int d;
    if ((*rc = parse_value(x, &p, &d)) != 0) return 1;
    if (p != item + n - 1) {
      *rc = trailing(x, item, p);
      return 1;
    }
    c->dom_weekday |= 1u << d;
    return 1;
  }
  return 0;
}

/* Day-of-week specials: "wL" (last w of the month) and "w#n". */
static int parse_dow_special(field_ctx *x, const char *item, int *rc) {
  dagd_cron *c = x->c;
  *rc = 0;
  const char *hash = strchr(item, '#');
  size_t n = strlen(item);
  bool last = !hash && n >= 2 && (item[n - 1] == 'L' || item[n - 1] == 'l') &&
              (isdigit((unsigned char)item[0]) || n == 4);
  if ((item[0] == 'L' || item[0] == 'l') && n == 1) {
    *rc = field_error(x, DAGD_ESYNTAX, "\"L\" needs a weekday here, e.g. 5L or FRIL (last Friday)");
    return 1;
  }
  if (!hash && !last) return 0;
  int w;
  if (last) {
    /* Parse the weekday without the 'L' so "FRIL" reads as FRI. */
    char *day = dagd_strndup(item, n - 1);
    const char *p = day;
    if ((*rc = parse_value(x, &p, &w)) == 0) {
      if (*p != '\0') *rc = trailing(x, item, item + (p - day));
      else c->dow_last |= (uint8_t)(1u << (w % 7));
    }
    free(day);
    return 1;
  }
  const char *p = item;
  if ((*rc = parse_value(x, &p, &w)) != 0) return 1;
  w %= 7;
  if (p != hash) {
    *rc = trailing(x, item, p);
    return 1;
  }
  p = hash + 1;
  if (!isdigit((unsigned char)*p) || p[1] != '\0' || *p < '1' || *p > '5') {
    *rc = field_error(x, DAGD_ESYNTAX, "bad \"%s\" (expected weekday#n with n from 1 to 5)", item);
    return 1;
  }
  c->dow_nth[w] |= (uint8_t)(1u << (*p - '0'));
  return 1;
}

/* One list item of an ordinary kind: "*", "*\/s", "a", "a-b", "a-b/s", "a/s". */
static int parse_item(field_ctx *x, const char *item) {
  const field_spec *sp = &specs[x->f];
  dagd_cron *c = x->c;
  int top = x->f == DAGD__DOW ? 6 : sp->hi;
  int rc;
  if (item[0] == '?') {
    if (x->f != DAGD__DOM && x->f != DAGD__DOW)
      return field_error(x, DAGD_ESYNTAX, "\"?\" is only allowed in the day-of-month and day-of-week fields");
    if (item[1] != '\0') return trailing(x, item, item + 1);
    set_range(c, x->f, sp->lo, top, 1);
    return 0;
  }
  if (x->f == DAGD__DOM && parse_dom_special(x, item, &rc)) return rc;
  if (x->f == DAGD__DOW && parse_dow_special(x, item, &rc)) return rc;
  const char *p = item;
  int a, b, step = 1;
  if (*p == '*') {
    p++;
    a = sp->lo;
    b = top;
    if (*p == '/') {
      p++;
      if ((rc = parse_step(x, &p, &step)) != 0) return rc;
    }
  } else {
    if ((rc = parse_value(x, &p, &a)) != 0) return rc;
    b = a;
    bool range = false;
    if (*p == '-') {
      p++;
      range = true;
      if ((rc = parse_value(x, &p, &b)) != 0) return rc;
      /* "FRI-SUN": Sunday at the end of a range is 7. */
      if (x->f == DAGD__DOW && b == 0 && a > 0) b = 7;
      if (a > b)
        return field_error(x, DAGD_ERANGE, "range \"%s\" is backwards (the start must not exceed the end)", item);
    }
    if (*p == '/') {
      p++;
      if ((rc = parse_step(x, &p, &step)) != 0) return rc;
      /* "5/15" means 5-max/15, as in Vixie cron and croniter. */
      if (!range) b = x->f == DAGD__DOW && a > 6 ? a : top;
    }
  }
  if (*p != '\0') return trailing(x, item, p);
  set_range(c, x->f, a, b, step);
  return 0;
}

static int parse_field(field_ctx *x, const char *ftext) {
  const char *p = ftext;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    if (n == 0) return field_error(x, DAGD_ESYNTAX, "empty list item in \"%s\"", ftext);
    char *item = dagd_strndup(p, n);
    x->item = item;
    int rc = parse_item(x, item);
    free(item);
    if (rc != 0) return rc;
    if (!comma) break;
    p = comma + 1;
  }
  return 0;
}

/* "every 30s", "every 15m", "every 6h", "every 1d", also combined
 * ("every 1h30m"). */
static int parse_interval(dagd_cron *c, const char *text, const char *spec, dagd_err *err) {
  const char *p = spec;
  int64_t total = 0;
  int parts = 0;
  while (*p == ' ' || *p == '\t') p++;
  while (*p) {
    if (!isdigit((unsigned char)*p)) goto bad;
    int64_t v = 0;
    while (isdigit((unsigned char)*p)) {
      v = v * 10 + (*p++ - '0');
      if (v > 100000000) goto range;
    }
    while (*p == ' ') p++;
    int64_t unit;
    switch (*p) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: goto bad;
    }
    p++;
    if (isalpha((unsigned char)*p)) goto bad;
    total += v * unit;
    if (total > 366LL * 86400 * 10) goto range;
    parts++;
    while (*p == ' ' || *p == '\t') p++;
  }
  if (parts == 0) goto bad;
  if (total <= 0)
    return dagd_err_set(err, DAGD_ERANGE, "bad cron \"%s\": an interval must be at least 1s", text);
  c->is_interval = true;
  c->every = total;
  return 0;
bad:
  return dagd_err_set(err, DAGD_ESYNTAX,
                      "bad cron \"%s\": bad interval (expected \"every N<unit>\" with unit s, m, h, d or w, "
                      "e.g. \"every 15m\")",
                      text);
range:
  return dagd_err_set(err, DAGD_ERANGE, "bad cron \"%s\": interval longer than 10 years", text);
}

/* True when a list item of `text` is a bare "*" or "?". */
static bool has_star_item(const char *text) {
  for (const char *p = text;;) {
    size_t n = strcspn(p, ",");
    if (n == 1 && (*p == '*' || *p == '?')) return true;
    if (p[n] == '\0') return false;
    p += n + 1;
  }
}

/* croniter's test for an unrestricted day of month: a '*' item, or 31
 * distinct values, where each day number and each special item ("L", and
 * our "L-n", "nW", "LW", which croniter lacks) counts as one value. So
 * "1-30,L" is unrestricted and "1-31,L" is not, exactly as in croniter. */
static bool dom_unrestricted(const dagd_cron *c) {
  if (has_star_item(c->field[DAGD__DOM])) return true;
  int n = __builtin_popcountll(c->bits[DAGD__DOM] & 0xfffffffeULL) + __builtin_popcount(c->dom_last) +
          __builtin_popcount(c->dom_weekday) + (c->dom_last_weekday ? 1 : 0);
  return n == 31;
}

/* croniter's test for an unrestricted day of week: a '*' item, or all 7
 * weekdays named, where "w#n" and "wL" name their weekday w. */
static bool dow_unrestricted(const dagd_cron *c) {
  if (has_star_item(c->field[DAGD__DOW])) return true;
  unsigned days = (unsigned)c->bits[DAGD__DOW] | c->dow_last;
  for (int w = 0; w < 7; w++)
    if (c->dow_nth[w]) days |= 1u << w;
  return __builtin_popcount(days & 0x7f) == 7;
}

static int parse_cron(dagd_cron *c, const char *text, const char *expr, dagd_err *err) {
  char *fields[8];
  int nf = 0;
  int rc = 0;
  const char *p = expr;
  for (;;) {
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '\0') break;
    const char *s = p;
    while (*p && *p != ' ' && *p != '\t') p++;
    if (nf < 8) fields[nf] = dagd_strndup(s, (size_t)(p - s));
    nf++;
  }
  if (nf != 5 && nf != 6) {
    rc = dagd_err_set(err, DAGD_ESYNTAX,
                      "bad cron \"%s\": expected 5 fields (minute hour day-of-month month day-of-week) "
                      "or 6 (a leading seconds field, then those 5), got %d",
                      text, nf);
    goto done;
  }
  c->has_seconds = nf == 6;
  for (int i = 0; i < DAGD__NFIELDS; i++) {
    int f = i;
    const char *ftext;
    if (nf == 5 && i == DAGD__SEC) ftext = "0";
    else ftext = fields[nf == 6 ? i : i - 1];
    field_ctx x = {c, f, text, NULL, err};
    c->field[f] = dagd_strdup(ftext);
    if ((rc = parse_field(&x, ftext)) != 0) goto done;
  }
  c->dom_all = dom_unrestricted(c);
  c->dow_all = dow_unrestricted(c);
  c->hour_wild = strpbrk(c->field[DAGD__HOUR], "*/") != NULL;
done:
  for (int i = 0; i < nf && i < 8; i++) free(fields[i]);
  return rc;
}

int dagd_cron_parse(const char *text, dagd_cron **out, dagd_err *err) {
  *out = NULL;
  if (text == NULL) return dagd_err_set(err, DAGD_EINVAL, "bad cron: no schedule given");
  const char *p = text;
  while (*p == ' ' || *p == '\t') p++;
  if (*p == '\0') return dagd_err_set(err, DAGD_ESYNTAX, "bad cron \"%s\": empty schedule", text);
  dagd_cron *c = dagd_calloc(1, sizeof(*c));
  c->text = dagd_strdup(text);
  int rc;
  if (*p == '@') {
    size_t n = strcspn(p, " \t");
    const char *expr = NULL;
    for (size_t i = 0; i < DAGD_ARRAY_LEN(presets); i++)
      if (strlen(presets[i].name) == n && strncasecmp(p, presets[i].name, n) == 0) expr = presets[i].expr;
    const char *rest = p + n;
    while (*rest == ' ' || *rest == '\t') rest++;
    if (expr == NULL)
      rc = dagd_err_set(err, DAGD_ESYNTAX,
                        "bad cron \"%s\": unknown preset \"%.*s\" (expected @yearly, @annually, @monthly, "
                        "@weekly, @daily, @midnight or @hourly)",
                        text, (int)(n > 40 ? 40 : n), p);
    else if (*rest != '\0')
      rc = dagd_err_set(err, DAGD_ESYNTAX, "bad cron \"%s\": unexpected \"%s\" after the preset", text, rest);
    else rc = parse_cron(c, text, expr, err);
  } else if (strncasecmp(p, "every", 5) == 0 && (p[5] == ' ' || p[5] == '\t' || p[5] == '\0')) {
    rc = parse_interval(c, text, p + 5, err);
  } else {
    rc = parse_cron(c, text, p, err);
  }
  if (rc != 0) {
    dagd_cron_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

void dagd_cron_free(dagd_cron *c) {
  if (c == NULL) return;
  free(c->text);
  for (int i = 0; i < DAGD__NFIELDS; i++) free(c->field[i]);
  free(c);
}

const char *dagd_cron_text(const dagd_cron *c) { return c->text; }

bool dagd_cron_is_interval(const dagd_cron *c) { return c->is_interval; }

int64_t dagd_cron_interval(const dagd_cron *c) { return c->is_interval ? c->every : 0; }

void dagd_cron_set_anchor(dagd_cron *c, int64_t anchor) { c->anchor = anchor; }
