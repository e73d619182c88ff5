/* Unit tests for the store: schema creation and migration guard, DAG rows,
 * runs (uniqueness rules, lists, the active set), task instances and
 * outputs, transactions, refusing files that are not dagd databases, and
 * the daemon's open: one daemon per file, and no damaged file.
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
#include <sqlite3.h>

#include "dagd/err.h"
#include "dagd/model.h"
#include "dagd/store.h"
#include "dagd/util.h"

typedef struct fixture {
  char dir[64];
  char path[96];
  dagd_store *st;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  strcpy(f->dir, "/tmp/dagd-store-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_store_open(f->path, &f->st, &err), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  dagd_store_close(f->st);
  assert_int_equal(dagd_fs_remove_tree_within("/tmp", f->dir, NULL), 0);
  free(f);
  return 0;
}

static dagd_store_run make_run(const char *dag, const char *run_id, dagd_run_type type, int64_t date) {
  dagd_store_run r = {0};
  r.dag_id = (char *)dag;
  r.run_id = (char *)run_id;
  r.run_type = type;
  r.logical_date = date;
  r.has_interval = true;
  r.interval_start = date;
  r.interval_end = date + 86400;
  r.state = DAGD_RUN_QUEUED;
  r.queued_at = 1000.5;
  return r;
}

static void test_open_mode_and_version(void **state) {
  fixture *f = *state;
  struct stat sb;
  assert_int_equal(stat(f->path, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  sqlite3_stmt *s;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(s, 0), DAGD_STORE_SCHEMA_VERSION);
  sqlite3_finalize(s);
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
  sqlite3_finalize(s);
  /* A schema from the future is refused, not silently used. */
  sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
  sqlite3_close(db);
  dagd_store *other = NULL;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_store_open(f->path, &other, &err), DAGD_ERANGE);
  assert_non_null(strstr(err.msg, "newer"));
  assert_int_equal(dagd_store_check(f->st, &err), 0);
}

static void test_not_a_database(void **state) {
  fixture *f = *state;
  char path[128];
  snprintf(path, sizeof(path), "%s/junk.db", f->dir);
  FILE *fp = fopen(path, "w");
  for (int i = 0; i < 200; i++) fputs("this is not an sqlite database at all\n", fp);
  fclose(fp);
  dagd_store *st = NULL;
  dagd_err err;
  dagd_err_init(&err);
  assert_true(dagd_store_open(path, &st, &err) < 0);
  assert_null(st);
  assert_non_null(strstr(err.msg, path));
  dagd_err_init(&err);
  assert_true(dagd_store_open("/nonexistent/dir/x.db", &st, &err) < 0);
  assert_non_null(strstr(err.msg, "cannot open"));
}

static void test_dags(void **state) {
  fixture *f = *state;
  dagd_err err;
  dagd_err_init(&err);
  dagd_store_dag d;
  assert_int_equal(dagd_store_dag_get(f->st, "x", &d, &err), DAGD_ENOENT);
  assert_int_equal(dagd_store_dag_upsert(f->st, "x", "dags/x.lua", true, &err), 0);
  assert_int_equal(dagd_store_dag_get(f->st, "x", &d, &err), 0);
  assert_true(d.is_paused);
  assert_false(d.has_next_run);
  dagd_store_dag_clear(&d);
  /* A reload keeps the paused flag, updates the file. */
  assert_int_equal(dagd_store_dag_set_paused(f->st, "x", false, &err), 0);
  assert_int_equal(dagd_store_dag_upsert(f->st, "x", "dags/y.lua", true, &err), 0);
  assert_int_equal(dagd_store_dag_set_next_run(f->st, "x", true, 1234, &err), 0);
  assert_int_equal(dagd_store_dag_get(f->st, "x", &d, &err), 0);
  assert_false(d.is_paused);
  assert_string_equal(d.fileloc, "dags/y.lua");
  assert_true(d.has_next_run);
  assert_int_equal(d.next_run_after, 1234);
  dagd_store_dag_clear(&d);
  assert_int_equal(dagd_store_dag_set_paused(f->st, "nope", true, &err), DAGD_ENOENT);
}

static void test_runs(void **state) {
  fixture *f = *state;
  dagd_err err;
  dagd_err_init(&err);
  dagd_store_run r = make_run("d", "scheduled__2026-01-01T00:00:00+00:00", DAGD_RUN_SCHEDULED, 1767225600);
  assert_int_equal(dagd_store_run_insert(f->st, &r, &err), 0);
  assert_true(r.pk > 0);
  /* Same run id: refused. */
  dagd_store_run dup = make_run("d", "scheduled__2026-01-01T00:00:00+00:00", DAGD_RUN_MANUAL, 5);
  dagd_err_init(&err);
  assert_int_equal(dagd_store_run_insert(f->st, &dup, &err), DAGD_EEXIST);
  /* Another scheduled run for the same logical date: refused. */
  dagd_store_run dup2 = make_run("d", "other", DAGD_RUN_SCHEDULED, 1767225600);
  dagd_err_init(&err);
  assert_int_equal(dagd_store_run_insert(f->st, &dup2, &err), DAGD_EEXIST);
  /* A manual run on that date is fine. */
  dagd_store_run man = make_run("d", "manual__x", DAGD_RUN_MANUAL, 1767225600);
  man.conf = "{\"a\":1}";
  dagd_err_init(&err);
  assert_int_equal(dagd_store_run_insert(f->st, &man, &err), 0);
  for (int i = 1; i <= 5; i++) {
    char id[32];
    snprintf(id, sizeof(id), "s%d", i);
    dagd_store_run x = make_run("d", id, DAGD_RUN_SCHEDULED, 1767225600 + i * 86400);
    assert_int_equal(dagd_store_run_insert(f->st, &x, &err), 0);
    if (i <= 3) assert_int_equal(dagd_store_run_set_state(f->st, x.pk, DAGD_RUN_SUCCESS, 1, 2, &err), 0);
  }
  dagd_store_run got;
  assert_int_equal(dagd_store_run_get(f->st, "d", "manual__x", &got, &err), 0);
  assert_string_equal(got.conf, "{\"a\":1}");
  assert_int_equal(got.run_type, DAGD_RUN_MANUAL);
  assert_int_equal(got.state, DAGD_RUN_QUEUED);
  assert_true(got.queued_at == 1000.5);
  assert_true(got.start_date == 0);
  dagd_store_run_clear(&got);
  assert_int_equal(dagd_store_run_get(f->st, "d", "nope", &got, &err), DAGD_ENOENT);

  dagd_store_run_list l;
  assert_int_equal(dagd_store_run_list_dag(f->st, "d", -1, 2, 0, &l, &err), 0);
  assert_int_equal(l.n, 2);
  assert_int_equal(l.total, 7);
  assert_string_equal(l.runs[0].run_id, "s5"); /* newest first */
  dagd_store_run_list_clear(&l);
  assert_int_equal(dagd_store_run_list_dag(f->st, "d", DAGD_RUN_SUCCESS, 0, 1, &l, &err), 0);
  assert_int_equal(l.n, 2);
  assert_int_equal(l.total, 3);
  dagd_store_run_list_clear(&l);
  assert_int_equal(dagd_store_run_list_active(f->st, &l, &err), 0);
  assert_int_equal(l.n, 4); /* 2 on day 0, s4, s5 */
  assert_true(l.runs[0].logical_date <= l.runs[3].logical_date);
  dagd_store_run_list_clear(&l);
  int64_t n;
  assert_int_equal(dagd_store_run_count(f->st, "d", DAGD_RUN_QUEUED, &n, &err), 0);
  assert_int_equal(n, 4);
  int64_t last;
  assert_int_equal(dagd_store_run_get_last_scheduled(f->st, "d", &last, &err), 0);
  assert_int_equal(last, 1767225600 + 5 * 86400);
  assert_int_equal(dagd_store_run_get_last_scheduled(f->st, "none", &last, &err), DAGD_ENOENT);
}

/* Only scheduled runs are unique per (dag_id, logical_date): manual and
 * event runs share a date freely, as in Airflow 3, which dropped the
 * unique logical date (a backfill makes a run only for a date with none). */
static void test_runs_share_logical_date(void **state) {
  fixture *f = *state;
  dagd_err err;
  dagd_err_init(&err);
  const char *ids[] = {"manual__2026-01-01T00:00:00.000000+00:00", "manual__2026-01-01T00:00:00.000001+00:00",
                       "event__2026-01-01T00:00:00.000000+00:00", "event__2026-01-01T00:00:00.000001+00:00"};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(ids); i++) {
    dagd_store_run r = make_run("d", ids[i], i < 2 ? DAGD_RUN_MANUAL : DAGD_RUN_EVENT, 1767225600);
    assert_int_equal(dagd_store_run_insert(f->st, &r, &err), 0);
  }
  dagd_store_run s = make_run("d", "scheduled__2026-01-01T00:00:00+00:00", DAGD_RUN_SCHEDULED, 1767225600);
  assert_int_equal(dagd_store_run_insert(f->st, &s, &err), 0);
  dagd_store_run s2 = make_run("d", "scheduled_again", DAGD_RUN_SCHEDULED, 1767225600);
  assert_int_equal(dagd_store_run_insert(f->st, &s2, &err), DAGD_EEXIST);
  dagd_err_init(&err);
  /* The run id stays unique whatever the type. */
  dagd_store_run m = make_run("d", ids[0], DAGD_RUN_MANUAL, 0);
  assert_int_equal(dagd_store_run_insert(f->st, &m, &err), DAGD_EEXIST);
  int64_t n;
  dagd_err_init(&err);
  assert_int_equal(dagd_store_run_count(f->st, "d", DAGD_RUN_QUEUED, &n, &err), 0);
  assert_int_equal(n, 5);
}

static void test_task_instances_and_outputs(void **state) {
  fixture *f = *state;
  dagd_err err;
  dagd_err_init(&err);
  dagd_store_run r = make_run("d", "r1", DAGD_RUN_MANUAL, 0);
  assert_int_equal(dagd_store_run_insert(f->st, &r, &err), 0);
  const char *ids[] = {"b", "a", "c"};
  assert_int_equal(dagd_store_begin(f->st, &err), 0);
  for (size_t i = 0; i < 3; i++) {
    dagd_store_ti ti = {.run_pk = r.pk, .task_id = (char *)ids[i], .max_tries = 3, .priority_weight = 5};
    assert_int_equal(dagd_store_ti_insert(f->st, &ti, &err), 0);
  }
  assert_int_equal(dagd_store_commit(f->st, &err), 0);
  dagd_store_ti dup = {.run_pk = r.pk, .task_id = "a"};
  assert_int_equal(dagd_store_ti_insert(f->st, &dup, &err), DAGD_EEXIST);

  dagd_store_ti ti;
  dagd_err_init(&err);
  assert_int_equal(dagd_store_ti_get(f->st, r.pk, "a", &ti, &err), 0);
  assert_int_equal(ti.state, DAGD_TI_NONE);
  assert_string_equal(ti.pool, "default");
  ti.state = DAGD_TI_RUNNING;
  ti.try_number = 1;
  ti.pid = 4242;
  ti.start_date = 10.25;
  assert_int_equal(dagd_store_ti_update(f->st, &ti, &err), 0);
  dagd_store_ti_clear(&ti);

  dagd_store_ti_list l;
  assert_int_equal(dagd_store_ti_list_run(f->st, r.pk, &l, &err), 0);
  assert_int_equal(l.n, 3);
  assert_string_equal(l.tis[0].task_id, "a");
  assert_int_equal(l.tis[0].state, DAGD_TI_RUNNING);
  assert_int_equal(l.tis[0].pid, 4242);
  assert_false(l.tis[0].has_exit_code);
  dagd_store_ti_list_clear(&l);
  assert_int_equal(dagd_store_ti_list_live(f->st, &l, &err), 0);
  assert_int_equal(l.n, 1);
  dagd_store_ti_list_clear(&l);

  /* A rolled-back transaction leaves nothing behind. */
  assert_int_equal(dagd_store_begin(f->st, &err), 0);
  assert_int_equal(dagd_store_output_put(f->st, r.pk, "a", "f1", "0.93", &err), 0);
  dagd_store_rollback(f->st);
  char *v = NULL;
  assert_int_equal(dagd_store_output_get(f->st, r.pk, "a", "f1", &v, &err), DAGD_ENOENT);
  assert_int_equal(dagd_store_output_put(f->st, r.pk, "a", "f1", "0.93", &err), 0);
  assert_int_equal(dagd_store_output_put(f->st, r.pk, "a", "f1", "0.95", &err), 0);
  assert_int_equal(dagd_store_output_put(f->st, r.pk, "b", "path", "/x \"y\"", &err), 0);
  dagd_err_init(&err);
  assert_int_equal(dagd_store_output_get(f->st, r.pk, "a", "f1", &v, &err), 0);
  assert_string_equal(v, "0.95");
  free(v);
  char *json = NULL;
  assert_int_equal(dagd_store_output_get_json(f->st, r.pk, &json, &err), 0);
  assert_string_equal(json, "{\"a\":{\"f1\":\"0.95\"},\"b\":{\"path\":\"/x \\\"y\\\"\"}}");
  free(json);
}

static void test_events_and_backfills(void **state) {
  fixture *f = *state;
  dagd_err err;
  dagd_err_init(&err);
  dagd_store_event e = {.source = "generic", .name = "drift", .external_id = "abc", .payload = "{}",
                        .received_at = 5};
  assert_int_equal(dagd_store_begin_durable(f->st, &err), 0);
  assert_int_equal(dagd_store_event_insert(f->st, &e, &err), 0);
  assert_int_equal(dagd_store_commit_durable(f->st, &err), 0);
  int64_t first = e.id;
  /* The same sender id again is refused; recorded as a duplicate it is kept. */
  dagd_store_event again = e;
  assert_int_equal(dagd_store_event_insert(f->st, &again, &err), DAGD_EEXIST);
  again.outcome = "duplicate";
  dagd_err_init(&err);
  assert_int_equal(dagd_store_event_insert(f->st, &again, &err), 0);
  int64_t id;
  assert_int_equal(dagd_store_event_find(f->st, "generic", "abc", &id, &err), 0);
  assert_int_equal(id, first);
  assert_int_equal(dagd_store_event_find(f->st, "generic", "zzz", &id, &err), DAGD_ENOENT);
  assert_int_equal(dagd_store_event_set_outcome(f->st, first, "accepted", 2, &err), 0);
  dagd_store_event *list;
  size_t n;
  int64_t total;
  assert_int_equal(dagd_store_event_list(f->st, 10, 0, &list, &n, &total, &err), 0);
  assert_int_equal(n, 2);
  assert_int_equal(total, 2);
  assert_string_equal(list[1].outcome, "accepted");
  assert_int_equal(list[1].runs_started, 2);
  assert_string_equal(list[0].outcome, "duplicate");
  for (size_t i = 0; i < n; i++) dagd_store_event_clear(&list[i]);
  free(list);
  bool seen;
  assert_int_equal(dagd_store_alert_record(f->st, "fp1", "2026-01-01T00:00:00Z", first, &seen, &err), 0);
  assert_false(seen);
  assert_int_equal(dagd_store_alert_record(f->st, "fp1", "2026-01-01T00:00:00Z", first, &seen, &err), 0);
  assert_true(seen);
  assert_int_equal(dagd_store_alert_record(f->st, "fp1", "2026-01-02T00:00:00Z", first, &seen, &err), 0);
  assert_false(seen);
  double last;
  assert_int_equal(dagd_store_dag_upsert(f->st, "d", "x.lua", false, &err), 0);
  assert_int_equal(dagd_store_dag_event_run_get(f->st, "d", &last, &err), 0);
  assert_true(last == 0);
  assert_int_equal(dagd_store_dag_event_run_set(f->st, "d", 77.5, &err), 0);
  assert_int_equal(dagd_store_dag_event_run_get(f->st, "d", &last, &err), 0);
  assert_true(last == 77.5);

  /* A backfill and its runs' progress. */
  dagd_store_backfill b = {.dag_id = "d", .from_date = 0, .to_date = 86400 * 2, .options = "{}", .total = 3};
  assert_int_equal(dagd_store_backfill_insert(f->st, &b, &err), 0);
  dagd_dag *dag = dagd_dag_new("d", "x.lua", 1);
  dagd_task *t;
  assert_int_equal(dagd_dag_add_task(dag, "t1", DAGD_OP_SHELL, 1, &t, &err), 0);
  assert_int_equal(dagd_dag_add_task(dag, "t2", DAGD_OP_SHELL, 1, &t, &err), 0);
  t->retries = 2;
  assert_int_equal(dagd_dag_finalize(dag, &err), 0);
  for (int i = 0; i < 3; i++) {
    char id_[32];
    snprintf(id_, sizeof(id_), "backfill__%d", i);
    dagd_store_run r = make_run("d", id_, DAGD_RUN_BACKFILL, i * 86400);
    r.backfill_id = b.id;
    assert_int_equal(dagd_store_run_create(f->st, dag, &r, &err), 0);
    if (i == 0) assert_int_equal(dagd_store_run_set_state(f->st, r.pk, DAGD_RUN_SUCCESS, 1, 2, &err), 0);
    dagd_store_ti_list l;
    assert_int_equal(dagd_store_ti_list_run(f->st, r.pk, &l, &err), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.tis[1].max_tries, 3);
    dagd_store_ti_list_clear(&l);
  }
  dagd_store_backfill got;
  assert_int_equal(dagd_store_backfill_get(f->st, b.id, &got, &err), 0);
  assert_int_equal(got.total, 3);
  assert_int_equal(got.by_state[DAGD_RUN_SUCCESS], 1);
  assert_int_equal(got.by_state[DAGD_RUN_QUEUED], 2);
  dagd_store_backfill_clear(&got);
  dagd_store_run r;
  assert_int_equal(dagd_store_run_get_by_date(f->st, "d", 86400, &r, &err), 0);
  assert_string_equal(r.run_id, "backfill__1");
  dagd_store_run_clear(&r);
  assert_int_equal(dagd_store_run_get_by_date(f->st, "d", 5, &r, &err), DAGD_ENOENT);
  dagd_dag_free(dag);
}

/* A file made by every earlier schema version migrates in place to the
 * current one, keeping its data. */
static void test_migrations_from_every_version(void **state) {
  fixture *f = *state;
  for (int v = 1; v < DAGD_STORE_SCHEMA_VERSION; v++) {
    char path[160];
    snprintf(path, sizeof(path), "%s/v%d.db", f->dir, v);
    dagd_store *old = NULL;
    dagd_err err;
    dagd_err_init(&err);
    assert_int_equal(dagd_store_open_version(path, v, &old, &err), 0);
    dagd_store_close(old);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), v);
    sqlite3_finalize(s);
    /* Data as that version wrote it (v1 columns only). */
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO dag (dag_id, fileloc) VALUES ('d', 'd.lua');"
                                  "INSERT INTO dag_run (id, dag_id, run_id, run_type, logical_date, state, queued_at) "
                                  "VALUES (7, 'd', 'old_run', 'manual', 0, 'success', 1);"
                                  "INSERT INTO task_instance (run_pk, task_id, state, try_number) VALUES (7, 't', 'success', 1);"
                                  "INSERT INTO task_output VALUES (7, 't', 'f1', '0.9');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    dagd_store *st;
    assert_int_equal(dagd_store_open(path, &st, &err), 0);
    dagd_store_run run;
    assert_int_equal(dagd_store_run_get(st, "d", "old_run", &run, &err), 0);
    assert_int_equal(run.state, DAGD_RUN_SUCCESS);
    dagd_store_run_clear(&run);
    char *value = NULL;
    assert_int_equal(dagd_store_output_get(st, 7, "t", "f1", &value, &err), 0);
    assert_string_equal(value, "0.9");
    free(value);
    /* What later versions added works. */
    dagd_store_event ev = {.source = "generic", .name = "x", .payload = "{}", .received_at = 1};
    assert_int_equal(dagd_store_event_insert(st, &ev, &err), 0);
    assert_int_equal(dagd_store_baseline_put(st, "d", "gate", "old_run", "{}", 1, &err), 0);
    assert_int_equal(dagd_store_check(st, &err), 0);
    dagd_store_close(st);
  }
}

/* The daemon's open: one daemon per state file (a second is refused and
 * told the holder's pid, while offline readers still open it), and the
 * lock of a killed daemon never blocks the next one. */
static void test_daemon_lock(void **state) {
  fixture *f = *state;
  int ready[2], hold[2];
  assert_int_equal(pipe(ready), 0);
  assert_int_equal(pipe(hold), 0);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    dagd_store *st = NULL;
    char c = dagd_store_open_daemon(f->path, &st, NULL) == 0 ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1) _exit(2);
    (void)!read(hold[0], &c, 1);
    _exit(0);
  }
  char c = 0;
  assert_int_equal(read(ready[0], &c, 1), 1);
  assert_int_equal(c, 'y');
  dagd_store *st = NULL;
  dagd_err err;
  dagd_err_init(&err);
  assert_int_equal(dagd_store_open_daemon(f->path, &st, &err), DAGD_EEXIST);
  assert_null(st);
  char want[64];
  snprintf(want, sizeof(want), "pid %ld", (long)child);
  assert_non_null(strstr(err.msg, want));
  assert_non_null(strstr(err.msg, f->path));
  assert_non_null(strstr(err.msg, "in use by another dagd"));
  /* Readers (dagctl db check, backup, prune) do not take the lock. */
  char report[64];
  dagd_err_init(&err);
  assert_int_equal(dagd_store_check_file(f->path, report, sizeof(report), &err), 0);
  dagd_err_init(&err);
  assert_int_equal(dagd_store_open(f->path, &st, &err), 0);
  dagd_store_close(st);
  kill(child, SIGKILL);
  assert_int_equal(waitpid(child, NULL, 0), child);
  dagd_err_init(&err);
  assert_int_equal(dagd_store_open_daemon(f->path, &st, &err), 0);
  dagd_store_close(st);
  close(ready[0]);
  close(ready[1]);
  close(hold[0]);
  close(hold[1]);
}

static unsigned long file_sum(const char *path) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  unsigned long h = 5381;
  int ch;
  while ((ch = fgetc(fp)) != EOF) h = h * 33 + (unsigned long)ch;
  fclose(fp);
  return h;
}

/* A damaged file (page 2 zeroed) is refused by the daemon's open, naming
 * the file and `dagctl db check`, and left as it was. */
static void test_daemon_refuses_damaged(void **state) {
  fixture *f = *state;
  dagd_err err;
  dagd_err_init(&err);
  for (int i = 0; i < 50; i++) {
    char id[16];
    snprintf(id, sizeof(id), "dag%d", i);
    assert_int_equal(dagd_store_dag_upsert(f->st, id, "dags/x.lua", false, &err), 0);
  }
  dagd_store_close(f->st);
  f->st = NULL;
  /* A healthy file opens (and closing it checkpoints the WAL away). */
  dagd_store *st = NULL;
  assert_int_equal(dagd_store_open_daemon(f->path, &st, &err), 0);
  dagd_store_close(st);
  FILE *fp = fopen(f->path, "r+b");
  assert_non_null(fp);
  char zero[4096] = {0};
  assert_int_equal(fseek(fp, 4096, SEEK_SET), 0);
  assert_int_equal(fwrite(zero, 1, sizeof(zero), fp), sizeof(zero));
  fclose(fp);
  unsigned long before = file_sum(f->path);
  st = NULL;
  dagd_err_init(&err);
  assert_int_equal(dagd_store_open_daemon(f->path, &st, &err), DAGD_EIO);
  assert_null(st);
  assert_non_null(strstr(err.msg, f->path));
  assert_non_null(strstr(err.msg, "damaged"));
  assert_non_null(strstr(err.msg, "dagctl db check"));
  assert_int_equal(file_sum(f->path), before);
  /* The lock went with the refused store: nothing holds the file. */
  char lock[128];
  snprintf(lock, sizeof(lock), "%s.lock", f->path);
  int fd = -1;
  assert_int_equal(dagd_fs_lock_pidfile(lock, &fd, NULL, NULL), 0);
  close(fd);
}

static void test_state_names(void **state) {
  for (int i = 0; i < DAGD_TI__COUNT; i++) {
    dagd_ti_state s;
    assert_int_equal(dagd_ti_state_parse(dagd_ti_state_name((dagd_ti_state)i), &s), 0);
    assert_int_equal(s, i);
  }
  dagd_ti_state s;
  assert_int_equal(dagd_ti_state_parse("bogus", &s), DAGD_ENOENT);
  assert_true(dagd_ti_state_finished(DAGD_TI_UPSTREAM_FAILED));
  assert_false(dagd_ti_state_finished(DAGD_TI_UP_FOR_RETRY));
  dagd_run_type t;
  assert_int_equal(dagd_run_type_parse("event", &t), 0);
  assert_int_equal(t, DAGD_RUN_EVENT);
}


/* --- group commit ---
 * A VFS over the default one that counts the syncs of write-ahead logs:
 * the file is the default VFS's own, only its methods' xSync is wrapped. */
static const sqlite3_io_methods *wal_real;
static sqlite3_io_methods wal_counting;
static int wal_syncs;
static sqlite3_vfs counting_vfs;

static int counting_sync(sqlite3_file *f, int flags) {
  wal_syncs++;
  return wal_real->xSync(f, flags);
}

static int counting_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out) {
  sqlite3_vfs *base = vfs->pAppData;
  int rc = base->xOpen(base, name, f, flags, out);
  if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) && f->pMethods) {
    if (wal_real == NULL) {
      wal_real = f->pMethods;
      wal_counting = *wal_real;
      wal_counting.xSync = counting_sync;
    }
    assert_ptr_equal(f->pMethods, wal_real);
    f->pMethods = &wal_counting;
  }
  return rc;
}

static void count_wal_syncs(void) {
  if (counting_vfs.zName) return;
  sqlite3_vfs *base = sqlite3_vfs_find(NULL);
  counting_vfs = *base;
  counting_vfs.zName = "dagd-test-counting";
  counting_vfs.pAppData = base;
  counting_vfs.xOpen = counting_open;
  assert_int_equal(sqlite3_vfs_register(&counting_vfs, 1), SQLITE_OK);
}

static bool has_event(dagd_store *st, const char *ext) {
  dagd_err err;
  dagd_err_init(&err);
  int64_t id;
  return dagd_store_event_find(st, "generic", ext, &id, &err) == 0;
}

static void put_event(dagd_store *st, const char *ext, bool durable) {
  dagd_err err;
  dagd_err_init(&err);
  dagd_store_event e = {.source = "generic", .name = "n", .external_id = (char *)ext, .payload = "{}",
                        .received_at = 1};
  assert_int_equal(durable ? dagd_store_begin_durable(st, &err) : dagd_store_begin(st, &err), 0);
  assert_int_equal(dagd_store_event_insert(st, &e, &err), 0);
  assert_int_equal(durable ? dagd_store_commit_durable(st, &err) : dagd_store_commit(st, &err), 0);
}

static void test_group_commit(void **state) {
  (void)state;
  count_wal_syncs();
  char dir[] = "/tmp/dagd-group-XXXXXX", path[64];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/state.db", dir);
  dagd_err err;
  dagd_err_init(&err);
  dagd_store *st, *other;
  assert_int_equal(dagd_store_open(path, &st, &err), 0);
  assert_int_equal(dagd_store_open(path, &other, &err), 0);

  /* Ungrouped: a durable commit syncs the log once, a plain one never. */
  wal_syncs = 0;
  put_event(st, "plain", false);
  assert_int_equal(wal_syncs, 0);
  put_event(st, "durable", true);
  assert_int_equal(wal_syncs, 1);
  assert_true(has_event(other, "durable"));

  /* Grouped: three parts, the middle one rolled back. */
  dagd_store_group(st, true);
  wal_syncs = 0;
  put_event(st, "a", true);
  assert_int_equal(dagd_store_begin(st, &err), 0);
  dagd_store_event b = {.source = "generic", .name = "n", .external_id = "b", .payload = "{}", .received_at = 1};
  assert_int_equal(dagd_store_event_insert(st, &b, &err), 0);
  dagd_store_rollback(st);
  put_event(st, "c", true);
  put_event(st, "d", false);
  /* Nothing is committed before the flush: not to another connection,
   * and no sync yet; the store's own handle reads its writes. */
  assert_true(dagd_store_group_is_pending(st));
  assert_true(has_event(st, "a"));
  assert_false(has_event(other, "a"));
  assert_false(has_event(other, "c"));
  assert_int_equal(wal_syncs, 0);
  assert_int_equal(dagd_store_flush(st, &err), 0);
  assert_false(dagd_store_group_is_pending(st));
  assert_int_equal(wal_syncs, 1); /* one sync for the two durable parts */
  assert_true(has_event(other, "a"));
  assert_false(has_event(other, "b"));
  assert_true(has_event(other, "c"));
  assert_true(has_event(other, "d"));

  /* A turn of plain parts commits without a sync; an empty turn is 0. */
  wal_syncs = 0;
  put_event(st, "e", false);
  assert_int_equal(dagd_store_flush(st, &err), 0);
  assert_int_equal(wal_syncs, 0);
  assert_true(has_event(other, "e"));
  assert_int_equal(dagd_store_flush(st, &err), 0);

  /* A part still open at the flush is not kept; a nested begin is refused. */
  assert_int_equal(dagd_store_begin(st, &err), 0);
  assert_int_equal(dagd_store_begin(st, &err), DAGD_EINVAL);
  dagd_err_init(&err);
  dagd_store_event g = {.source = "generic", .name = "n", .external_id = "g", .payload = "{}", .received_at = 1};
  assert_int_equal(dagd_store_event_insert(st, &g, &err), 0);
  assert_int_equal(dagd_store_flush(st, &err), 0);
  assert_false(has_event(other, "g"));
  assert_false(has_event(st, "g"));

  dagd_store_close(other);
  dagd_store_close(st);
  assert_int_equal(dagd_fs_remove_tree_within("/tmp", dir, NULL), 0);
}

/* --- pruning with the log folders --- */
typedef struct prune_seen {
  int removed, would, invalid, failed;
  dagd_store *other;   /* sees only what is committed */
  bool commit_ok;
  dagd_store *st;
} prune_seen;

static void prune_report(void *data, const char *dag_id, const char *run_id, const char *dir, dagd_prune_outcome what,
                         const dagd_err *err) {
  (void)dag_id, (void)run_id, (void)dir, (void)err;
  prune_seen *p = data;
  p->removed += what == DAGD_PRUNE_REMOVED;
  p->would += what == DAGD_PRUNE_WOULD;
  p->invalid += what == DAGD_PRUNE_INVALID_ID;
  p->failed += what == DAGD_PRUNE_FAILED;
}

static bool prune_commit(void *data) {
  prune_seen *p = data;
  if (!p->commit_ok) return false;
  dagd_err err;
  dagd_err_init(&err);
  return dagd_store_flush(p->st, &err) == 0;
}

static void finished_run(dagd_store *st, const char *logs, const char *run_id, double ended, bool folder) {
  dagd_err err;
  dagd_err_init(&err);
  dagd_store_run r = make_run("d", run_id, DAGD_RUN_MANUAL, 100);
  assert_int_equal(dagd_store_begin(st, &err), 0);
  assert_int_equal(dagd_store_run_insert(st, &r, &err), 0);
  assert_int_equal(dagd_store_run_set_state(st, r.pk, DAGD_RUN_SUCCESS, 10, ended, &err), 0);
  assert_int_equal(dagd_store_commit(st, &err), 0);
  if (folder) {
    char path[256];
    snprintf(path, sizeof(path), "%s/d", logs);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/d/%s", logs, run_id);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/d/%s/t", logs, run_id);
    assert_int_equal(mkdir(path, 0700), 0);
  }
}

static bool exists(const char *logs, const char *run_id) {
  char path[256];
  struct stat sb;
  snprintf(path, sizeof(path), "%s/d/%s", logs, run_id);
  return stat(path, &sb) == 0;
}

static void test_prune_with_logs(void **state) {
  fixture *f = *state;
  dagd_err err;
  dagd_err_init(&err);
  char logs[128];
  snprintf(logs, sizeof(logs), "%s/logs", f->dir);
  assert_int_equal(mkdir(logs, 0700), 0);
  dagd_store *other;
  assert_int_equal(dagd_store_open(f->path, &other, &err), 0);
  finished_run(f->st, logs, "r1", 20, true);
  finished_run(f->st, logs, "r2", 30, true);
  prune_seen seen = {.other = other, .st = f->st};
  dagd_prune_opts o = {.logs = logs, .before = 1e12, .dry_run = true, .report = prune_report,
                       .commit = prune_commit, .data = &seen};
  int64_t runs;
  size_t kept;
  /* A dry run removes nothing and names both. */
  assert_int_equal(dagd_store_prune_with_logs(f->st, &o, &runs, &kept, &err), 0);
  assert_int_equal(runs, 2);
  assert_int_equal(seen.would, 2);
  assert_true(exists(logs, "r1") && exists(logs, "r2"));
  /* Grouped, with a commit that fails: the folder stays (a folder without
   * its run, never a run without its folder). */
  dagd_store_group(f->st, true);
  o.dry_run = false;
  o.limit = 1;
  memset(&seen.removed, 0, 4 * sizeof(int));
  assert_int_equal(dagd_store_prune_with_logs(f->st, &o, &runs, &kept, &err), 0);
  assert_int_equal(runs, 1);
  assert_int_equal(kept, 1);
  assert_int_equal(seen.failed, 1);
  assert_true(exists(logs, "r1") && exists(logs, "r2"));
  assert_int_equal(dagd_store_flush(f->st, &err), 0);
  /* With the commit: the rows are committed before the folder goes. */
  seen.commit_ok = true;
  o.limit = 0;
  memset(&seen.removed, 0, 4 * sizeof(int));
  assert_int_equal(dagd_store_prune_with_logs(f->st, &o, &runs, &kept, &err), 0);
  assert_false(dagd_store_group_is_pending(f->st));
  assert_int_equal(runs, 1);
  assert_int_equal(seen.removed, 1);
  assert_int_equal(kept, 0);
  assert_true(exists(logs, "r1"));
  assert_false(exists(logs, "r2"));
  dagd_store_run got;
  assert_int_equal(dagd_store_run_get(other, "d", "r2", &got, &err), DAGD_ENOENT);
  dagd_store_group(f->st, false);
  dagd_store_close(other);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_open_mode_and_version, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dags, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runs_share_logical_date, setup, teardown),
      cmocka_unit_test_setup_teardown(test_task_instances_and_outputs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_events_and_backfills, setup, teardown),
      cmocka_unit_test_setup_teardown(test_migrations_from_every_version, setup, teardown),
      cmocka_unit_test_setup_teardown(test_daemon_lock, setup, teardown),
      cmocka_unit_test_setup_teardown(test_daemon_refuses_damaged, setup, teardown),
      cmocka_unit_test(test_state_names),
      cmocka_unit_test(test_group_commit),
      cmocka_unit_test_setup_teardown(test_prune_with_logs, setup, teardown),
  };
  return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
