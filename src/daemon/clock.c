/* The daemon's wall clock and its changes. The wake timer is a libuv
 * timer, which runs on the monotonic clock, while every due time is wall
 * time: a wall clock set forward (an operator, NTP stepping, a VM resumed
 * from a snapshot) would leave the timer hours late. A timerfd on
 * CLOCK_REALTIME with TFD_TIMER_CANCEL_ON_SET becomes readable (ECANCELED)
 * whenever the clock is set, and a pass then re-plans against the new
 * time; jumps the kernel does not report as a set are caught by the
 * bounded wake (DAEMON_WAKE_MAX_MS). Loop thread only.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "dagd/log.h"
#include "dagd/util.h"
#include "daemon.h"

/* Test only: DAGD_TEST_CLOCK_FILE names a file holding a number of
 * seconds added to the wall clock, and a change to that file acts as a
 * clock set. It lets a test move the daemon's clock without setting the
 * machine's. Unset in production. */
#define TEST_CLOCK_ENV "DAGD_TEST_CLOCK_FILE"

static double test_offset(void) {
  const char *path = getenv(TEST_CLOCK_ENV);
  if (path == NULL || *path == '\0') return 0;
  char text[64] = "";
  FILE *f = fopen(path, "re");
  if (f == NULL) return 0;
  size_t n = fread(text, 1, sizeof(text) - 1, f);
  fclose(f);
  text[n] = '\0';
  return strtod(text, NULL);
}

double daemon_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9 + test_offset();
}

double daemon_mono(void) { return (double)uv_hrtime() / 1e9; }

/* Arms the timerfd a year on: it is only there to be cancelled. */
static int clock_arm(daemon_t *d) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct itimerspec its = {.it_value = {.tv_sec = now.tv_sec + 365 * 86400}};
  return timerfd_settime(d->clock.fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL);
}

static void clock_changed(daemon_t *d, const char *how) {
  DAGD_LOG(DAGD_LOG_INFO, "sched", "%s: planning again at the new time", how);
  daemon_kick(d);
}

static void on_clock_fd(uv_poll_t *h, int status, int events) {
  daemon_t *d = h->data;
  (void)events;
  if (status < 0) return;
  uint64_t n;
  ssize_t r = read(d->clock.fd, &n, sizeof(n));
  if (r < 0 && errno == EAGAIN) return;
  /* ECANCELED: the clock was set; a value: the year went by. Either way
   * the timer must be armed again, or the next set goes unheard. */
  if (clock_arm(d) < 0) {
    DAGD_LOG(DAGD_LOG_WARN, "sched", "cannot watch the wall clock any more (%s): clock changes are seen within %d s",
             strerror(errno), DAEMON_WAKE_MAX_MS / 1000);
    uv_poll_stop(h);
  }
  if (r < 0 && errno == ECANCELED) clock_changed(d, "the wall clock was set");
}

static void on_test_clock(uv_fs_event_t *h, const char *filename, int events, int status) {
  daemon_t *d = h->data;
  (void)events;
  const char *path = getenv(TEST_CLOCK_ENV), *slash = path ? strrchr(path, '/') : NULL;
  if (status < 0 || filename == NULL || path == NULL) return;
  if (strcmp(filename, slash ? slash + 1 : path) == 0) clock_changed(d, "the test clock was set");
}

void daemon_clock_start(daemon_t *d) {
  d->clock.fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
  if (d->clock.fd < 0 || clock_arm(d) < 0 || uv_poll_init(&d->loop, &d->clock.poll, d->clock.fd) < 0) {
    DAGD_LOG(DAGD_LOG_WARN, "sched", "cannot watch the wall clock (%s): clock changes are seen within %d s",
             strerror(errno), DAEMON_WAKE_MAX_MS / 1000);
    if (d->clock.fd >= 0) close(d->clock.fd);
    d->clock.fd = -1;
  } else {
    d->clock.poll.data = d;
    uv_poll_start(&d->clock.poll, UV_READABLE, on_clock_fd);
  }
  const char *path = getenv(TEST_CLOCK_ENV);
  if (path == NULL || *path == '\0') return;
  /* The folder, not the file: a test replaces the file by a rename. */
  char *dir = dagd_strdup(path), *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  uv_fs_event_init(&d->loop, &d->clock.test_watch);
  d->clock.test_watch.data = d;
  d->clock.test_on = true;
  if (uv_fs_event_start(&d->clock.test_watch, on_test_clock, slash ? dir : ".", 0) < 0)
    DAGD_LOG(DAGD_LOG_WARN, "sched", "cannot watch %s", path);
  DAGD_LOG(DAGD_LOG_WARN, "sched", "%s is set: the wall clock is offset by the seconds in %s (tests only)",
           TEST_CLOCK_ENV, path);
  free(dir);
}

static void on_clock_closed(uv_handle_t *h) {
  daemon_t *d = h->data;
  if (d->clock.fd >= 0) close(d->clock.fd);
  d->clock.fd = -1;
}

void daemon_clock_close(daemon_t *d) {
  if (d->clock.fd >= 0 && !uv_is_closing((uv_handle_t *)&d->clock.poll))
    uv_close((uv_handle_t *)&d->clock.poll, on_clock_closed);
  if (d->clock.test_on) uv_close((uv_handle_t *)&d->clock.test_watch, NULL);
  d->clock.test_on = false;
}
