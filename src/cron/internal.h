/* Internals of the cron module: the parsed form of a schedule shared by the
 * parser, the wall-time matcher and the describer.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_CRON_INTERNAL_H
#define DAGD_CRON_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "dagd/cron.h"

/* Field order inside dagd_cron (seconds first, always present). */
enum { DAGD__SEC, DAGD__MIN, DAGD__HOUR, DAGD__DOM, DAGD__MON, DAGD__DOW, DAGD__NFIELDS };

struct dagd_cron {
  char *text;
  /* Interval schedule ("every 15m"): fire at anchor + k * every. */
  bool is_interval;
  int64_t every, anchor;
  /* Cron: one bit per allowed value (sec/min 0-59, hour 0-23, dom 1-31,
   * mon 1-12, dow 0-6 with Sunday 0). */
  uint64_t bits[DAGD__NFIELDS];
  bool has_seconds;   /* written with a leading seconds field */
  /* croniter's reading of the day fields (docs/cron.md): a day field is
   * unrestricted when one of its items is a bare '*' or '?', or when it
   * lists every value of its range, counted as croniter counts them. Both
   * restricted means a day matches if either field matches (OR). */
  bool dom_all;
  bool dow_all;
  bool hour_wild;     /* '*' or a step in the hour field: follows real time through a repeated hour */
  /* Day-of-month specials: bit n of dom_last set for "L-n" ("L" is n=0);
   * bit d of dom_weekday for "dW"; dom_last_weekday for "LW". */
  uint32_t dom_last;
  uint32_t dom_weekday;
  bool dom_last_weekday;
  /* Day-of-week specials: bit w of dow_last for "wL" (last w of the month);
   * dow_nth[w] bit n for "w#n". */
  uint8_t dow_last;
  uint8_t dow_nth[7];
  /* The text of each field as written (preset expanded), for describe. */
  char *field[DAGD__NFIELDS];
};

/* Bitmask of the matching days (bit d for day d) of month `mon` of `year`. */
uint32_t dagd__cron_day_mask(const dagd_cron *c, int year, int mon);

#endif
