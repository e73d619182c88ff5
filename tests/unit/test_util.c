/* Unit tests for util: errors, buffers, ids, civil time, durations, dates,
 * YAML and roff output (format.h), the guarded tree removal and the pid lock.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dagd/err.h"
#include "dagd/format.h"
#include "dagd/time.h"
#include "dagd/util.h"

static void test_err_first_wins(void **state) {
  dagd_err err;
  dagd_err_init(&err);
  assert_false(dagd_err_is_set(&err));
  assert_int_equal(dagd_err_set(&err, DAGD_EINVAL, "first %d", 1), DAGD_EINVAL);
  assert_int_equal(dagd_err_set(&err, DAGD_EIO, "second"), DAGD_EIO);
  assert_int_equal(err.code, DAGD_EINVAL);
  assert_string_equal(err.msg, "first 1");
  assert_int_equal(dagd_err_set(NULL, DAGD_ENOENT, "x"), DAGD_ENOENT);
  assert_string_equal(dagd_err_name(DAGD_ECYCLE), "ECYCLE");
  assert_string_equal(dagd_strerror(DAGD_ENOENT), "not found");
  dagd_err_init(&err);
  dagd_err_set(&err, DAGD_EIO, "a\nb");
  assert_string_equal(err.msg, "a b");
}

static void test_suggest(void **state) {
  const char *const names[] = {"dags_folder", "pools", "state", "listen", "all_success", "all_failed"};
  size_t n = DAGD_ARRAY_LEN(names);
  assert_string_equal(dagd_str_suggest("dags_foldr", names, n), "dags_folder");
  assert_string_equal(dagd_str_suggest("pool", names, n), "pools");
  assert_string_equal(dagd_str_suggest("LISTEN", names, n), "listen");
  assert_string_equal(dagd_str_suggest("all_sucess", names, n), "all_success");
  assert_string_equal(dagd_str_suggest("all_fialed", names, n), "all_failed"); /* a transposition */
  assert_null(dagd_str_suggest("pxxl", names, n)); /* short names: one edit at most */
  assert_null(dagd_str_suggest("colour", names, n));
  assert_null(dagd_str_suggest("x", names, 0));
}

static void test_buf(void **state) {
  dagd_buf b;
  dagd_buf_init(&b);
  for (int i = 0; i < 100; i++) dagd_buf_printf(&b, "%d,", i);
  assert_int_equal(b.len, strlen(b.data));
  assert_true(strncmp(b.data, "0,1,2,", 6) == 0);
  dagd_buf_reset(&b);
  dagd_buf_json_str(&b, "a\"b\\c\n\x01");
  assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
  char *s = dagd_buf_steal(&b);
  assert_null(b.data);
  free(s);
  s = dagd_buf_steal(&b);
  assert_string_equal(s, "");
  free(s);
}

static void test_ids(void **state) {
  assert_true(dagd_id_valid("fraud_detection.v2-x"));
  assert_false(dagd_id_valid(""));
  assert_false(dagd_id_valid("a/b"));
  assert_false(dagd_id_valid("a b"));
  assert_false(dagd_id_valid("a:b"));
  char big[252];
  memset(big, 'a', 251);
  big[251] = '\0';
  assert_false(dagd_id_valid(big));
  big[250] = '\0';
  assert_true(dagd_id_valid(big));
  assert_true(dagd_run_id_valid("manual__2026-01-01T00:00:00+00:00"));
  assert_false(dagd_run_id_valid("../etc"));
  assert_false(dagd_run_id_valid("a/b"));
  /* Ids made only of dots are path components, for every kind. */
  const char *dots[] = {".", "..", "...", "...."};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(dots); i++) {
    assert_false(dagd_id_valid(dots[i]));
    assert_false(dagd_run_id_valid(dots[i]));
    assert_string_equal(dagd_id_problem(dots[i], false), "must not be made only of dots");
    assert_string_equal(dagd_id_problem(dots[i], true), "must not be made only of dots");
  }
  /* Dots among other characters are names, not components. */
  assert_true(dagd_id_valid(".hidden"));
  assert_true(dagd_id_valid("a..b"));
  assert_true(dagd_id_valid("v1."));
  assert_true(dagd_run_id_valid("..x"));
  assert_null(dagd_id_problem("d", false));
  assert_string_equal(dagd_id_problem("a/b", false), "must match " DAGD_ID_PATTERN);
  assert_string_equal(dagd_id_problem("a b", true), "must match " DAGD_RUN_ID_PATTERN);
  assert_string_equal(dagd_id_problem("", true), "must not be empty");
  assert_string_equal(dagd_id_problem(NULL, false), "must not be empty");
  /* Nothing that normalises elsewhere: separators, NUL-free C strings,
   * percent signs (a URL decodes them) and backslashes are all outside
   * both patterns. */
  const char *bad[] = {"/", "a/", "/a", "a\\b", "%2e%2e", "a\nb", "a\tb", "~", "a?b", "a#b"};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(bad); i++) assert_false(dagd_id_valid(bad[i]));
  assert_false(dagd_run_id_valid("%2e%2e"));
  assert_false(dagd_run_id_valid("a\\b"));
}

/* A scratch tree: root/{keep/f, logs/d/r/t/1.log} and, outside root,
 * outside/precious. Returns the scratch folder (free it). */
static char *scratch_tree(char *root, size_t n, char *outside, size_t m) {
  char tmpl[] = "/tmp/dagd-util-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  snprintf(root, n, "%s/logs", tmpl);
  snprintf(outside, m, "%s/outside", tmpl);
  const char *dirs[] = {"logs", "logs/d", "logs/d/r", "logs/d/r/t", "logs/keep", "outside"};
  char p[256];
  for (size_t i = 0; i < DAGD_ARRAY_LEN(dirs); i++) {
    snprintf(p, sizeof(p), "%s/%s", tmpl, dirs[i]);
    assert_int_equal(mkdir(p, 0700), 0);
  }
  const char *files[] = {"logs/d/r/t/1.log", "logs/keep/f", "outside/precious"};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(files); i++) {
    snprintf(p, sizeof(p), "%s/%s", tmpl, files[i]);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("x\n", fp);
    fclose(fp);
  }
  return strdup(tmpl);
}

static bool exists(const char *fmt, const char *a) {
  char p[256];
  struct stat sb;
  snprintf(p, sizeof(p), fmt, a);
  return lstat(p, &sb) == 0;
}

static void test_remove_tree_within(void **state) {
  (void)state;
  char root[128], outside[128], p[256], q[256];
  char *top = scratch_tree(root, sizeof(root), outside, sizeof(outside));
  dagd_err err;

  /* ".." components, the root itself, and paths not spelled below root
   * are refused lexically, and nothing is removed. */
  const char *refused[] = {"%s/d/..", "%s/d/../..", "%s/..", "%s/./d", "%s", "%s/", "%s//"};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(refused); i++) {
    snprintf(p, sizeof(p), refused[i], root);
    dagd_err_init(&err);
    assert_int_equal(dagd_fs_remove_tree_within(root, p, &err), DAGD_EINVAL);
    assert_non_null(strstr(err.msg, "not removed"));
  }
  snprintf(p, sizeof(p), "%s/precious", outside);
  dagd_err_init(&err);
  assert_int_equal(dagd_fs_remove_tree_within(root, p, &err), DAGD_EINVAL);
  snprintf(p, sizeof(p), "%s-other/x", root); /* a sibling that shares the prefix */
  assert_int_equal(dagd_fs_remove_tree_within(root, p, NULL), DAGD_EINVAL);
  assert_true(exists("%s/d/r/t/1.log", root));
  assert_true(exists("%s/precious", outside));

  /* A symbolic link at the path, pointing out: refused, target kept. */
  snprintf(p, sizeof(p), "%s/d/evil", root);
  assert_int_equal(symlink(outside, p), 0);
  dagd_err_init(&err);
  assert_int_equal(dagd_fs_remove_tree_within(root, p, &err), DAGD_EINVAL);
  assert_non_null(strstr(err.msg, "symbolic link"));
  assert_true(exists("%s/precious", outside));
  /* A link on the way (logs/via -> outside): refused, nothing removed. */
  snprintf(q, sizeof(q), "%s/via", root);
  assert_int_equal(symlink(outside, q), 0);
  snprintf(p, sizeof(p), "%s/via/precious", root);
  assert_int_equal(dagd_fs_remove_tree_within(root, p, NULL), DAGD_EINVAL);
  assert_true(exists("%s/precious", outside));

  /* Inside the tree a link is removed, never followed. */
  snprintf(p, sizeof(p), "%s/d/r/t/out", root);
  assert_int_equal(symlink(outside, p), 0);
  snprintf(p, sizeof(p), "%s/d/r", root);
  dagd_err_init(&err);
  assert_int_equal(dagd_fs_remove_tree_within(root, p, &err), 0);
  assert_false(exists("%s/d/r", root));
  assert_true(exists("%s/d", root));
  assert_true(exists("%s/keep/f", root));
  assert_true(exists("%s/precious", outside));
  /* Gone already, or never there: not an error. A trailing slash and
   * doubled slashes still name the same entry below root. */
  assert_int_equal(dagd_fs_remove_tree_within(root, p, NULL), 0);
  snprintf(p, sizeof(p), "%s//keep/", root);
  assert_int_equal(dagd_fs_remove_tree_within(root, p, NULL), 0);
  assert_false(exists("%s/keep", root));
  /* A root given with a trailing slash. */
  snprintf(q, sizeof(q), "%s/", root);
  snprintf(p, sizeof(p), "%s/d", root);
  assert_int_equal(dagd_fs_remove_tree_within(q, p, NULL), 0);
  assert_false(exists("%s/d", root));

  assert_int_equal(dagd_fs_remove_tree_within("/tmp", top, NULL), 0);
  assert_false(exists("%s", top));
  free(top);
}

/* The pid lock: a second process is refused and told the holder's pid;
 * the holder's death (SIGKILL) frees the lock for the next one. */
static void test_lock_pidfile(void **state) {
  (void)state;
  char dir[] = "/tmp/dagd-lock-XXXXXX", path[64];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/state.db.lock", dir);
  int ready[2], hold[2];
  assert_int_equal(pipe(ready), 0);
  assert_int_equal(pipe(hold), 0);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    int fd;
    char c = dagd_fs_lock_pidfile(path, &fd, NULL, NULL) == 0 ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1) _exit(2);
    (void)!read(hold[0], &c, 1); /* until the parent kills it */
    _exit(0);
  }
  char c = 0;
  assert_int_equal(read(ready[0], &c, 1), 1);
  assert_int_equal(c, 'y');
  int fd = -1;
  long holder = 0;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_fs_lock_pidfile(path, &fd, &holder, &err), DAGD_EEXIST);
  assert_int_equal(fd, -1);
  assert_int_equal(holder, (long)child);
  /* The file names the holder too. */
  FILE *fp = fopen(path, "r");
  long written = 0;
  assert_int_equal(fscanf(fp, "%ld", &written), 1);
  fclose(fp);
  assert_int_equal(written, (long)child);
  kill(child, SIGKILL);
  assert_int_equal(waitpid(child, NULL, 0), child);
  /* A stale lock file from a dead process never blocks. */
  assert_int_equal(dagd_fs_lock_pidfile(path, &fd, &holder, NULL), 0);
  assert_true(fd >= 0);
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  close(fd);
  close(ready[0]);
  close(ready[1]);
  close(hold[0]);
  close(hold[1]);
  assert_int_equal(dagd_fs_remove_tree_within("/tmp", dir, NULL), 0);
}

static void test_civil(void **state) {
  assert_int_equal(dagd_days_from_civil(1970, 1, 1), 0);
  assert_int_equal(dagd_days_from_civil(2000, 3, 1), 11017);
  assert_int_equal(dagd_days_from_civil(1969, 12, 31), -1);
  /* Round trip every day over four centuries. */
  for (int64_t d = -146097; d < 146097 * 2; d += 1) {
    int y, m, md;
    dagd_civil_from_days(d, &y, &m, &md);
    assert_int_equal(dagd_days_from_civil(y, m, md), d);
  }
  dagd_tm tm;
  dagd_epoch_to_tm(0, &tm);
  assert_int_equal(tm.wday, 4);
  dagd_epoch_to_tm(-1, &tm);
  assert_int_equal(tm.year, 1969);
  assert_int_equal(tm.hour, 23);
  assert_int_equal(tm.wday, 3);
  dagd_epoch_to_tm(1798761600, &tm); /* 2027-01-01 */
  assert_int_equal(tm.year, 2027);
  assert_int_equal(tm.wday, 5);
  assert_int_equal(tm.yday, 0);
  assert_int_equal(dagd_days_in_month(2028, 2), 29);
  assert_int_equal(dagd_days_in_month(2100, 2), 28);
  assert_int_equal(dagd_days_in_month(2000, 2), 29);
}

static void test_duration(void **state) {
  struct { const char *in; int64_t want; } ok[] = {
      {"30s", 30}, {"15m", 900}, {"2h", 7200}, {"1d", 86400}, {"1w", 604800},
      {"1h30m", 5400}, {"1.5h", 5400}, {"90", 90}, {"1h 30m", 5400}, {"2d12h", 216000},
  };
  for (size_t i = 0; i < DAGD_ARRAY_LEN(ok); i++) {
    int64_t v = 0;
    dagd_err err;
    dagd_err_init(&err);
    assert_int_equal(dagd_duration_parse(ok[i].in, &v, &err), 0);
    assert_int_equal(v, ok[i].want);
  }
  const char *bad[] = {"", "abc", "5x", "1h30", "-5m", "5ms", "0x10", "1e3", "inf", "0s", "m", "1000000w"};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(bad); i++) {
    int64_t v = 0;
    dagd_err err;
    dagd_err_init(&err);
    assert_true(dagd_duration_parse(bad[i], &v, &err) < 0);
    assert_true(strstr(err.msg, "duration") != NULL);
  }
  char out[32];
  dagd_duration_format(5400, out, sizeof(out));
  assert_string_equal(out, "1h30m");
  dagd_duration_format(86401, out, sizeof(out));
  assert_string_equal(out, "1d1s");
}

static void test_time_parse(void **state) {
  int64_t t;
  int has;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_time_parse("2026-01-01", &t, &has, &err), 0);
  assert_int_equal(t, 1767225600);
  assert_int_equal(has, 0);
  assert_int_equal(dagd_time_parse("2026-01-01T02:00:00Z", &t, &has, &err), 0);
  assert_int_equal(t, 1767225600 + 7200);
  assert_int_equal(has, 1);
  assert_int_equal(dagd_time_parse("2026-01-01T03:00:00+01:00", &t, &has, &err), 0);
  assert_int_equal(t, 1767225600 + 7200);
  assert_int_equal(dagd_time_parse("2026-01-01 02:00", &t, &has, &err), 0);
  assert_int_equal(t, 1767225600 + 7200);
  assert_int_equal(has, 0);
  assert_int_equal(dagd_time_parse("2026-01-01T02:00:00.123-05:30", &t, &has, &err), 0);
  assert_int_equal(t, 1767225600 + 7200 + 5 * 3600 + 1800);
  const char *bad[] = {"2026-02-30", "2026-13-01", "26-01-01", "2026-01-01T25:00", "2026-01-01X",
                       "2026-01-01T02:00:00+1", "yesterday", ""};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(bad); i++) {
    dagd_err_init(&err);
    assert_true(dagd_time_parse(bad[i], &t, &has, &err) < 0);
    assert_true(err.msg[0] != '\0');
  }
  char out[32];
  dagd_time_format_utc(1767225600 + 7200, out);
  assert_string_equal(out, "2026-01-01T02:00:00Z");
  dagd_time_format_offset(1767225600 + 7200, 3600, out);
  assert_string_equal(out, "2026-01-01T03:00:00+01:00");
  dagd_time_format_offset(1767225600, -(5 * 3600 + 1800), out);
  assert_string_equal(out, "2025-12-31T18:30:00-05:30");
}

/* The wake timer runs on the monotonic clock and sleeps for the delay to a
 * wall-clock wake. A fake wall clock: a daemon asleep for a run due 5 h on
 * sleeps at most the bound; when the clock then jumps 5 h forward (nothing
 * reported it), the bounded timer fires, the clock is read again and the
 * wake is due at once. */
static void test_wake_delay(void **state) {
  (void)state;
  const uint64_t max = 300000;
  double t0 = 1796221130.0, due = t0 + 5 * 3600;
  assert_int_equal(dagd_time_wake_delay_ms(due, t0, max), max);
  double later = t0 + max / 1000.0; /* the timer fired: the clock has not jumped */
  assert_int_equal(dagd_time_wake_delay_ms(due, later, max), max);
  double jumped = later + 5 * 3600; /* a resumed VM: +5 h */
  assert_int_equal(dagd_time_wake_delay_ms(due, jumped, max), 0);
  /* Close wakes are exact, rounded up so the timer never fires early. */
  assert_int_equal(dagd_time_wake_delay_ms(t0 + 1.5, t0, max), 1501);
  assert_int_equal(dagd_time_wake_delay_ms(t0 + 0.0004, t0, max), 1);
  /* Past (a backward jump undone, a late pass) or now: at once. */
  assert_int_equal(dagd_time_wake_delay_ms(t0 - 10, t0, max), 0);
  assert_int_equal(dagd_time_wake_delay_ms(t0, t0, max), 0);
  /* A backward jump makes the wake far off: still bounded. */
  assert_int_equal(dagd_time_wake_delay_ms(t0 + 60, t0 - 86400, max), max);
}

static void test_time_usec(void **state) {
  /* The clock's double rounds to the nearest microsecond. */
  assert_int_equal(dagd_time_usec(1767225600.0), 1767225600000000LL);
  assert_int_equal(dagd_time_usec(1767225600.123456), 1767225600123456LL);
  assert_int_equal(dagd_time_usec(1796221130.9999996), 1796221131000000LL);
  char out[DAGD_TIME_USEC_LEN];
  dagd_time_format_offset_usec(1796221130123456LL, 0, out);
  assert_string_equal(out, "2026-12-02T14:18:50.123456+00:00");
  /* Six digits always, also for a whole second. */
  dagd_time_format_offset_usec(1767225600000000LL, 0, out);
  assert_string_equal(out, "2026-01-01T00:00:00.000000+00:00");
  dagd_time_format_offset_usec(1767225600000001LL, 3600, out);
  assert_string_equal(out, "2026-01-01T01:00:00.000001+01:00");
  /* The next microsecond after the last of a day is the next day. */
  dagd_time_format_offset_usec(1767225599999999LL + 1, 0, out);
  assert_string_equal(out, "2026-01-01T00:00:00.000000+00:00");
  dagd_time_format_offset_usec(1767225599999999LL, -(5 * 3600 + 1800), out);
  assert_string_equal(out, "2025-12-31T18:29:59.999999-05:30");
  /* Before the epoch the fraction still counts up from the second below. */
  dagd_time_format_offset_usec(-1, 0, out);
  assert_string_equal(out, "1969-12-31T23:59:59.999999+00:00");
  /* The text is a valid run id, and it parses back to its second. */
  char id[64];
  dagd_time_format_offset_usec(1796221130123456LL, 0, out);
  snprintf(id, sizeof(id), "manual__%s", out);
  assert_true(dagd_run_id_valid(id));
  int64_t t;
  int has;
  assert_int_equal(dagd_time_parse(out, &t, &has, NULL), 0);
  assert_int_equal(t, 1796221130);
  assert_int_equal(has, 1);
}

/* YAML of a JSON text. */
static char *yaml_of(const char *json_text) {
  json_t *v = json_loads(json_text, JSON_DECODE_ANY, NULL);
  assert_non_null(v);
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_yaml_dump(v, &b);
  json_decref(v);
  return dagd_buf_steal(&b);
}

static void expect_yaml(const char *json_text, const char *want) {
  char *got = yaml_of(json_text);
  assert_string_equal(got, want);
  free(got);
}

static void test_yaml(void **state) {
  /* Strings another type would claim are quoted; plain ones stay plain. */
  expect_yaml("\"yes\"", "\"yes\"\n");
  expect_yaml("\"No\"", "\"No\"\n");
  expect_yaml("\"null\"", "\"null\"\n");
  expect_yaml("\"012\"", "\"012\"\n");
  expect_yaml("\"12:30\"", "\"12:30\"\n");
  expect_yaml("\"\"", "\"\"\n");
  expect_yaml("\"a: b\"", "\"a: b\"\n");
  expect_yaml("\"#x\"", "\"#x\"\n");
  expect_yaml("\"tab\\there\"", "\"tab\\there\"\n");
  expect_yaml("\"nel\\u0085\"", "\"nel\\x85\"\n");
  expect_yaml("\"manual__2026-12-02T14:18:50+00:00\"", "manual__2026-12-02T14:18:50+00:00\n");
  expect_yaml("\"fraud_detection\"", "fraud_detection\n");
  /* Numbers stay numbers; a real keeps a point and a signed exponent. */
  expect_yaml("1e300", "1.0000000000000001e+300\n");
  expect_yaml("2.0", "2.0\n");
  expect_yaml("-7", "-7\n");
  expect_yaml("[true, false, null]", "- true\n- false\n- null\n");
  /* Blocks, compact nesting, empty containers, a literal block. */
  expect_yaml("{\"a\": {\"b\": [1, {\"c\": \"d\", \"e\": []}]}, \"f\": {}}",
              "a:\n  b:\n    - 1\n    - c: d\n      e: []\nf: {}\n");
  expect_yaml("{\"log\": \"one\\ntwo\\n\"}", "log: |\n  one\n  two\n");
  expect_yaml("[\"one\\n\\ntwo\"]", "- |-\n  one\n\n  two\n");
  expect_yaml("\"end\\n\\n\"", "|+\n  end\n\n");
  expect_yaml("[[1, 2], []]", "- - 1\n  - 2\n- []\n");
}

static void expect_roff(const char *text, const char *want) {
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_roff_escape(&b, text, strlen(text));
  assert_string_equal(b.data ? b.data : "", want);
  dagd_buf_close(&b);
}

static void test_roff(void **state) {
  expect_roff("--dry-run", "\\-\\-dry\\-run");
  expect_roff(".hidden\n'x", "\\&.hidden\n\\&\\(aqx");
  expect_roff("a\\b \"q\"", "a\\eb \\(dqq\\(dq");
  expect_roff("caf\xc3\xa9 \xe2\x80\xa6", "caf\\[u00E9] \\[u2026]");
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_roff_help(&b, "Para one\nstill one.\n\n  block  kept\n    as is\nafter\n");
  assert_string_equal(b.data, ".PP\nPara one\nstill one.\n.PP\n.RS 4\n.nf\nblock  kept\n  as is\n.fi\n.RE\n.PP\nafter\n");
  dagd_buf_close(&b);
}

/* "did you mean": the closest candidate within one edit (short names) or
 * two, swaps counting as one, case-insensitive; ties to byte order. */
static void test_suggest_ids(void **state) {
  const char *ids[] = {"nightly_etl", "fraud_detection", "hello", "hallo", NULL};
  assert_string_equal(dagd_str_suggest("nightly_elt", ids, 5), "nightly_etl");
  assert_string_equal(dagd_str_suggest("Fraud_Detection", ids, 5), "fraud_detection");
  assert_string_equal(dagd_str_suggest("fraud_detectio", ids, 5), "fraud_detection");
  assert_string_equal(dagd_str_suggest("hellp", ids, 5), "hello");
  assert_string_equal(dagd_str_suggest("hxllo", ids, 5), "hallo"); /* a tie: byte order */
  assert_null(dagd_str_suggest("weekly_report", ids, 5));
  assert_null(dagd_str_suggest("abc", ids, 5));
  assert_string_equal(dagd_str_suggest("hello", ids, 5), "hallo"); /* itself is no hint */
  const char *short_names[] = {"wait", "limit"};
  assert_null(dagd_str_suggest("wxyt", short_names, 2)); /* 2 edits: too far for 4 bytes */
  assert_string_equal(dagd_str_suggest("limt", short_names, 2), "limit");
}

/* Every error dagd answers is an RFC 9457 problem document. */
static void test_problem(void **state) {
  assert_string_equal(dagd_status_reason(404), "Not Found");
  assert_string_equal(dagd_status_reason(413), "Content Too Large");
  assert_string_equal(dagd_status_reason(299), "Unknown");
  assert_string_equal(DAGD_PROBLEM_CONTENT_TYPE, "application/problem+json");
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_problem_write(&b, 404, "no DAG \"a\\b\"");
  assert_string_equal(b.data, "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,"
                              "\"detail\":\"no DAG \\\"a\\\\b\\\"\"}\n");
  /* Appends; no detail says the title; bytes that are not UTF-8 never
   * make the document invalid. */
  dagd_problem_write(&b, 503, NULL);
  assert_non_null(strstr(b.data, "}\n{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,"
                                 "\"detail\":\"Service Unavailable\"}\n"));
  dagd_buf_reset(&b);
  dagd_problem_write(&b, 400, "bad \xff\xfe id");
  assert_string_equal(b.data, "{\"type\":\"about:blank\",\"title\":\"Bad Request\",\"status\":400,"
                              "\"detail\":\"(message not valid UTF-8)\"}\n");
  dagd_buf_close(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_problem),
      cmocka_unit_test(test_err_first_wins), cmocka_unit_test(test_buf), cmocka_unit_test(test_suggest),
      cmocka_unit_test(test_ids),            cmocka_unit_test(test_civil),
      cmocka_unit_test(test_duration),       cmocka_unit_test(test_time_parse),
      cmocka_unit_test(test_time_usec), cmocka_unit_test(test_wake_delay),      cmocka_unit_test(test_yaml),
      cmocka_unit_test(test_roff),           cmocka_unit_test(test_suggest_ids),
      cmocka_unit_test(test_remove_tree_within), cmocka_unit_test(test_lock_pidfile),
  };
  return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
