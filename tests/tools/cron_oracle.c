/* Test helper for the croniter differential test: reads lines
 * "EXPR<TAB>ZONE<TAB>START_EPOCH<TAB>N" on stdin and prints, per line, the N
 * next fire times after START as epoch seconds separated by spaces, or
 * "ERR <message>". A negative N prints the |N| previous fire times before
 * START instead (newest first), for prev/next consistency checks.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/cron.h"
#include "dagd/err.h"
#include "dagd/tz.h"

#define MAX_ZONES 64

typedef struct zone_cache {
  char *name[MAX_ZONES];
  dagd_tz *tz[MAX_ZONES];
  int n;
} zone_cache;

/* Loads each zone once; returns NULL with err set on failure. */
static dagd_tz *zone_get(zone_cache *zc, const char *name, dagd_err *err) {
  for (int i = 0; i < zc->n; i++)
    if (strcmp(zc->name[i], name) == 0) return zc->tz[i];
  dagd_tz *tz;
  if (dagd_tz_load(name, &tz, err) != 0) return NULL;
  if (zc->n == MAX_ZONES) {
    dagd_err_set(err, DAGD_ELIMIT, "too many zones");
    dagd_tz_free(tz);
    return NULL;
  }
  zc->name[zc->n] = strdup(name);
  zc->tz[zc->n++] = tz;
  return tz;
}

static void run_line(zone_cache *zc, char *line) {
  char *fields[4];
  int nf = 0;
  for (char *p = line; nf < 4; nf++) {
    fields[nf] = p;
    char *tab = strchr(p, '\t');
    if (!tab) {
      nf++;
      break;
    }
    *tab = '\0';
    p = tab + 1;
  }
  if (nf != 4) {
    printf("ERR malformed input line\n");
    return;
  }
  dagd_err err;
  dagd_err_init(&err);
  dagd_tz *tz = zone_get(zc, fields[1], &err);
  dagd_cron *c = NULL;
  if (tz == NULL || dagd_cron_parse(fields[0], &c, &err) != 0) {
    printf("ERR %s\n", err.msg);
    return;
  }
  long long t = strtoll(fields[2], NULL, 10);
  int n = atoi(fields[3]);
  int back = n < 0;
  if (back) n = -n;
  for (int i = 0; i < n; i++) {
    int64_t out;
    int rc = back ? dagd_cron_prev(c, tz, t, &out) : dagd_cron_next(c, tz, t, &out);
    if (rc != 0) {
      /* No further fire time: a token, not an error line. */
      printf("%s%s", i ? " " : "", rc == DAGD_ENOENT ? "ENOENT" : dagd_err_name(rc));
      break;
    }
    printf("%s%lld", i ? " " : "", (long long)out);
    t = out;
  }
  printf("\n");
  dagd_cron_free(c);
}

int main(void) {
  zone_cache zc = {0};
  char line[4096];
  while (fgets(line, sizeof(line), stdin)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '\0') continue;
    run_line(&zc, line);
  }
  for (int i = 0; i < zc.n; i++) {
    free(zc.name[i]);
    dagd_tz_free(zc.tz[i]);
  }
  return 0;
}
