/* Tests for the try supervisor: its packets and journal records (round
 * trips, and every truncation refused), the byte-string map it and the
 * executor use, and the real supervisor on a real loop: a try's end with
 * its time, an end kept until the daemon says it is recorded (a second
 * daemon asking before that gets it again), and forgotten after.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/exec/supervisor.h"
#include "dagd/err.h"
#include "dagd/exec.h"
#include "dagd/map.h"
#include "dagd/util.h"

#define SHIM DAGD_BINARY_DIR "/dagd"

extern char **environ;

/* --- the map --- */

static void test_map_against_array(void **state) {
  (void)state;
  enum { N = 3000 };
  static char keys[N][16];
  static int present[N];
  dagd_map m;
  dagd_map_init(&m);
  uint64_t x = 88172645463325252ULL;
  size_t count = 0;
  for (int i = 0; i < N; i++) snprintf(keys[i], sizeof(keys[i]), "k%d", i);
  for (int step = 0; step < 40000; step++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    int k = (int)(x % N);
    size_t len = strlen(keys[k]);
    if (x & 0x100) {
      if (!present[k]) count++;
      present[k] = 1;
      dagd_map_put(&m, keys[k], len, &present[k]);
    } else {
      void *v = dagd_map_del(&m, keys[k], len);
      assert_true(v == (present[k] ? &present[k] : NULL));
      if (present[k]) count--;
      present[k] = 0;
    }
    if (step % 997 == 0)
      for (int i = 0; i < N; i++) assert_true(dagd_map_get(&m, keys[i], strlen(keys[i])) == (present[i] ? &present[i] : NULL));
    assert_int_equal(m.n, count);
  }
  /* Keys that differ only in length or bytes past a NUL are different. */
  static const char a[] = "ab\0c", b[] = "ab\0d";
  dagd_map_put(&m, a, 4, (void *)a);
  assert_null(dagd_map_get(&m, b, 4));
  assert_null(dagd_map_get(&m, a, 2));
  assert_ptr_equal(dagd_map_get(&m, a, 4), a);
  dagd_map_close(&m);
}

/* --- packets --- */

static void test_start_round_trip(void **state) {
  (void)state;
  char *argv[] = {"sh", "-c", "echo 'a b'", NULL};
  char *env[] = {"PATH=/usr/bin:/bin", "EMPTY=", NULL};
  dagd_buf b;
  dagd_buf_init(&b);
  const char *secrets[] = {"s3cret", NULL};
  dagd_sup_encode_start(&b, "/l/d/r/t/1", "/work dir", argv, env, secrets, 2500, true, "{\"k\": 1}");
  dagd_sup_start st;
  assert_true(dagd_sup_decode_start(b.data, b.len, &st));
  assert_string_equal(st.base, "/l/d/r/t/1");
  assert_string_equal(st.conf, "{\"k\": 1}");
  assert_string_equal(st.cwd, "/work dir");
  assert_int_equal(st.grace_ms, 2500);
  assert_true(st.has_stdin);
  for (int i = 0; argv[i]; i++) assert_string_equal(st.argv[i], argv[i]);
  assert_null(st.argv[3]);
  assert_string_equal(st.env[1], "EMPTY=");
  assert_null(st.env[2]);
  assert_string_equal(st.secrets[0], "s3cret");
  assert_null(st.secrets[1]);
  dagd_sup_start_close(&st);
  /* Every truncation, and a byte too many, is refused. */
  for (size_t len = 0; len < b.len; len++) assert_false(dagd_sup_decode_start(b.data, len, &st));
  dagd_buf_putc(&b, 'x');
  assert_false(dagd_sup_decode_start(b.data, b.len, &st));
  /* No cwd and no environment. */
  dagd_buf_reset(&b);
  dagd_sup_encode_start(&b, "/b", NULL, argv, NULL, NULL, 0, false, NULL);
  assert_true(dagd_sup_decode_start(b.data, b.len, &st));
  assert_null(st.cwd);
  assert_null(st.conf);
  assert_null(st.env[0]);
  assert_null(st.secrets[0]);
  assert_false(st.has_stdin);
  dagd_sup_start_close(&st);
  dagd_buf_close(&b);
}

static void test_end_round_trip(void **state) {
  (void)state;
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_try_result r = {DAGD_TRY_SIGNALED, 9}, got;
  dagd_sup_encode_end(&b, &r, 1796286537.359267, "/l/x/1");
  double ended;
  const char *base;
  assert_true(dagd_sup_decode_end(b.data, b.len, &got, &ended, &base));
  assert_int_equal(got.how, DAGD_TRY_SIGNALED);
  assert_int_equal(got.code, 9);
  assert_true(ended == 1796286537.359267);
  assert_string_equal(base, "/l/x/1");
  for (size_t len = 0; len < b.len; len++) assert_false(dagd_sup_decode_end(b.data, len, &got, &ended, &base));
  dagd_buf_reset(&b);
  dagd_sup_encode_str(&b, 'W', "/l/x/1");
  assert_string_equal(dagd_sup_decode_str(b.data, b.len), "/l/x/1");
  assert_null(dagd_sup_decode_str(b.data, b.len - 1));
  dagd_buf_close(&b);
}

/* --- the journal --- */

static void test_journal_records(void **state) {
  (void)state;
  dagd_buf b;
  dagd_buf_init(&b);
  const char *base = "/logs/a\tb/c\\d\ne/t/1";
  dagd_sup_journal_start(&b, 41, 1234, "/sys/fs/cgroup/x/dagd-1f-41", base);
  dagd_sup_journal_end(&b, 41, &(dagd_try_result){DAGD_TRY_EXITED, 7}, 1796286537.5);
  dagd_sup_journal_end(&b, 42, &(dagd_try_result){DAGD_TRY_VANISHED, 0}, 1.25);
  dagd_sup_journal_forget(&b, 41);
  /* One line per record, whatever the base holds. */
  size_t lines = 0;
  for (size_t i = 0; i < b.len; i++) lines += b.data[i] == '\n';
  assert_int_equal(lines, 4);
  dagd_sup_record rec[4];
  size_t at = 0;
  for (int i = 0; i < 4; i++) {
    char *nl = memchr(b.data + at, '\n', b.len - at);
    assert_non_null(nl);
    size_t len = (size_t)(nl - (b.data + at));
    assert_true(dagd_sup_journal_parse(b.data + at, len, &rec[i]));
    /* A torn line is not a record. */
    for (size_t cut = 0; cut + 1 < len && cut < 4; cut++) {
      dagd_sup_record torn;
      if (dagd_sup_journal_parse(b.data + at, cut, &torn)) fail_msg("a line cut at %zu parsed", cut);
    }
    at += len + 1;
  }
  assert_int_equal(rec[0].kind, 'S');
  assert_int_equal(rec[0].seq, 41);
  assert_int_equal(rec[0].pid, 1234);
  assert_string_equal(rec[0].base, base);
  assert_string_equal(rec[0].cgroup, "/sys/fs/cgroup/x/dagd-1f-41");
  assert_int_equal(rec[1].kind, 'E');
  assert_int_equal(rec[1].r.how, DAGD_TRY_EXITED);
  assert_int_equal(rec[1].r.code, 7);
  assert_true(rec[1].ended == 1796286537.5);
  assert_int_equal(rec[2].r.how, DAGD_TRY_VANISHED);
  assert_int_equal(rec[3].kind, 'F');
  assert_int_equal(rec[3].seq, 41);
  for (int i = 0; i < 4; i++) dagd_sup_record_close(&rec[i]);
  assert_false(dagd_sup_journal_parse("X\t1", 3, &rec[0]));
  assert_false(dagd_sup_journal_parse("E\t1\texit\t7\tsoon", 16, &rec[0]));
  dagd_buf_close(&b);
}

/* --- the real supervisor --- */

typedef struct fixture {
  char dir[64];
  char *state;
  uv_loop_t loop;
  uv_timer_t guard;
  int done;
  dagd_try_result result;
  double ended;
} fixture;

static void on_guard(uv_timer_t *h) {
  (void)h;
  fail_msg("the loop waited 20 s for an end that never came");
}

static void on_done(void *data, const dagd_try_result *r, double ended) {
  fixture *f = data;
  f->done++;
  f->result = *r;
  f->ended = ended;
}

static void wait_done(fixture *f) {
  uv_timer_start(&f->guard, on_guard, 20000, 0);
  while (f->done == 0) uv_run(&f->loop, UV_RUN_ONCE);
  uv_timer_stop(&f->guard);
  assert_int_equal(f->done, 1);
}

static void close_exec(fixture *f, dagd_exec *ex) {
  dagd_exec_close(ex);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void test_supervised_end_kept_until_forgotten(void **state) {
  (void)state;
  fixture f = {0};
  strcpy(f.dir, "/tmp/dagd-sup-XXXXXX");
  assert_non_null(mkdtemp(f.dir));
  f.state = dagd_asprintf("%s/state.db", f.dir);
  uv_loop_init(&f.loop);
  uv_timer_init(&f.loop, &f.guard);
  dagd_exec *ex = dagd_exec_new(&f.loop, SHIM);
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_exec_supervise(ex, f.state, &err) != 0) {
    /* No writable cgroup v2 here: every try has its shim. */
    printf("skipped: %s\n", err.msg);
    close_exec(&f, ex);
  } else {
    assert_true(dagd_exec_supervised(ex));
    /* The try's folders are missing: the supervisor makes them (0700)
     * and writes the conf (0600) before the task runs. */
    char *base = dagd_asprintf("%s/d/r/t1/1", f.dir);
    char *argv[] = {"sh", "-c", "cat d/r/t1/1.conf.json; exit 3", NULL};
    dagd_exec_spec spec = {.base = base, .argv = argv, .env = environ, .cwd = f.dir, .conf = "{\"k\": 1}"};
    double before = (double)time(NULL);
    assert_int_equal(dagd_exec_start(ex, &spec, on_done, &f, NULL, &err), 0);
    wait_done(&f);
    assert_int_equal(f.result.how, DAGD_TRY_EXITED);
    assert_int_equal(f.result.code, 3);
    assert_true(f.ended >= before - 1 && f.ended <= (double)time(NULL) + 1);
    char *pid = dagd_asprintf("%s.pid", base);
    struct stat st;
    assert_int_equal(stat(pid, &st), -1); /* no shim, no pid record */
    char *folder = dagd_asprintf("%s/d/r/t1", f.dir), *conf = dagd_asprintf("%s.conf.json", base);
    assert_int_equal(stat(folder, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(conf, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *log1 = dagd_asprintf("%s.log", base);
    FILE *l1 = fopen(log1, "r");
    assert_non_null(l1);
    char seen[64] = "";
    seen[fread(seen, 1, sizeof(seen) - 1, l1)] = '\0';
    fclose(l1);
    assert_string_equal(seen, "{\"k\": 1}"); /* written before the task ran */
    free(log1);
    free(conf);
    free(folder);
    /* Output to mask: through the supervisor's pipe, every secret "***",
     * also one split across two writes. */
    char *base2 = dagd_asprintf("%s/m/t2/1", f.dir); /* its folder made by the supervisor itself */
    char *argv2[] = {"sh", "-c", "printf 'pw=hun'; sleep 0.05; echo 'ter2 done'; echo hunter2 >&2", NULL};
    const char *secrets[] = {"hunter2", NULL};
    dagd_exec_spec spec2 = {.base = base2, .argv = argv2, .env = environ, .cwd = f.dir, .secrets = secrets,
                            .conf = "{}"};
    f.done = 0;
    assert_int_equal(dagd_exec_start(ex, &spec2, on_done, &f, NULL, &err), 0);
    wait_done(&f);
    assert_int_equal(f.result.code, 0);
    char *log2 = dagd_asprintf("%s.log", base2);
    FILE *lf = fopen(log2, "r");
    assert_non_null(lf);
    char text[256] = "";
    size_t got = fread(text, 1, sizeof(text) - 1, lf);
    text[got] = '\0';
    fclose(lf);
    assert_non_null(strstr(text, "pw=*** done\n"));
    assert_non_null(strstr(text, "done\n***\n"));
    assert_null(strstr(text, "hunter2"));
    free(log2);
    free(base2);
    /* A second daemon asking before the first said "recorded": the end
     * again, from the supervisor. */
    close_exec(&f, ex);
    ex = dagd_exec_new(&f.loop, SHIM);
    assert_int_equal(dagd_exec_supervise(ex, f.state, &err), 0);
    f.done = 0;
    assert_int_equal(dagd_exec_adopt(ex, base, on_done, &f, NULL, &err), 0);
    dagd_exec_adopted(ex);
    wait_done(&f);
    assert_int_equal(f.result.how, DAGD_TRY_EXITED);
    assert_int_equal(f.result.code, 3);
    /* Recorded and committed: forgotten. Asked again, the supervisor
     * does not know it, and the try's files have no end: lost. */
    dagd_exec_forget(ex, base);
    dagd_exec_committed(ex);
    f.done = 0;
    assert_int_equal(dagd_exec_adopt(ex, base, on_done, &f, NULL, &err), 0);
    wait_done(&f);
    assert_int_equal(f.result.how, DAGD_TRY_VANISHED);
    close_exec(&f, ex);
    free(pid);
    free(base);
  }
  uv_close((uv_handle_t *)&f.guard, NULL);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  /* The supervisors leave once no daemon is connected (a closed exec no
   * longer watches them): reap them, with a deadline. */
  for (int waited = 0; waited < 1000; waited++) {
    pid_t gone = waitpid(-1, NULL, WNOHANG);
    if (gone < 0) break; /* no child left */
    if (gone == 0) usleep(10000);
  }
  assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
  assert_int_equal(uv_loop_close(&f.loop), 0);
  assert_int_equal(dagd_fs_remove_tree_within("/tmp", f.dir, NULL), 0);
  free(f.state);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_map_against_array),
      cmocka_unit_test(test_start_round_trip),
      cmocka_unit_test(test_end_round_trip),
      cmocka_unit_test(test_journal_records),
      cmocka_unit_test(test_supervised_end_kept_until_forgotten),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
