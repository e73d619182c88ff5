/* Backfills: runs for every interval whose logical date lies in
 * [from, to] (both ends included, as in Airflow), oldest first or newest
 * first, bounded by max_backfill_runs; successful runs are kept,
 * --rerun-failed clears the failed ones, --reset clears every run in
 * range; --dry-run only lists. Runs are queued, so max_active_runs
 * holds: the scheduling pass starts them in the order they were queued.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "dagd/cron.h"
#include "dagd/sched.h"
#include "dagd/time.h"
#include "dagd/tz.h"
#include "internal.h"

/* A date in the DAG's zone unless the text carries an offset. */
static int parse_date(const dagd_dag *dag, const char *text, int64_t *out) {
  int has_offset;
  dagd_err err;
  dagd_err_init(&err);
  if (text == NULL || dagd_time_parse(text, out, &has_offset, &err) < 0) return -1;
  if (!has_offset) {
    dagd_tm wall;
    int64_t at[2];
    dagd_epoch_to_tm(*out, &wall);
    dagd_tz_mktime(dag->tz, &wall, at);
    *out = at[0];
  }
  return 0;
}

typedef struct plan_item {
  int64_t start, end;
} plan_item;

int dagd__api_backfill_post(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  const dagd_dag *dag = dagd__api_dag(api, req->params[0], resp);
  if (dag == NULL) return resp->status;
  json_t *body;
  if (dagd__api_body(req, resp, &body) != 0) return resp->status;
  const char *from_text = json_string_value(json_object_get(body, "from"));
  const char *to_text = json_string_value(json_object_get(body, "to"));
  bool rerun_failed = json_is_true(json_object_get(body, "rerun_failed"));
  bool reset = json_is_true(json_object_get(body, "reset"));
  bool reverse = json_is_true(json_object_get(body, "reverse"));
  bool dry_run = json_is_true(json_object_get(body, "dry_run"));
  int64_t from, to;
  plan_item *items = NULL;
  size_t n = 0, cap = 0;
  int status;
  if (dag->schedule == NULL) {
    status = dagd__api_error(resp, 400, "DAG \"%s\" has no schedule: it has no intervals to backfill", dag->id);
    goto out;
  }
  if (parse_date(dag, from_text, &from) < 0 || parse_date(dag, to_text, &to) < 0) {
    status = dagd__api_error(resp, 400, "from and to must be dates (YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM])");
    goto out;
  }
  if (to < from) {
    status = dagd__api_error(resp, 400, "to is before from");
    goto out;
  }
  /* Every interval whose start lies in [from, to]. */
  int64_t start;
  if (dagd_cron_next(dag->schedule, dag->tz, from - 1, &start) == 0) {
    while (start <= to) {
      int64_t end;
      if (dagd_cron_next(dag->schedule, dag->tz, start, &end) != 0) break;
      if ((int64_t)n >= api->max_backfill_runs) {
        status = dagd__api_error(resp, 400, "the range holds more than %lld runs (max_backfill_runs)",
                                 (long long)api->max_backfill_runs);
        goto out;
      }
      if (n == cap) {
        cap = cap ? cap * 2 : 64;
        items = dagd_realloc(items, cap * sizeof(*items));
      }
      items[n++] = (plan_item){start, end};
      start = end;
    }
  }
  dagd_err err;
  dagd_err_init(&err);
  json_t *runs = json_array();
  char *options = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
  dagd_store_backfill b = {.dag_id = (char *)dag->id, .from_date = from, .to_date = to, .options = options,
                           .created_at = req->now, .total = 0};
  int rc = dagd_store_begin_durable(api->store, &err);
  if (rc == 0) rc = dagd_store_backfill_insert(api->store, &b, &err);
  int64_t total = 0;
  for (size_t k = 0; rc == 0 && k < n; k++) {
    plan_item *it = &items[reverse ? n - 1 - k : k];
    double queued_at = req->now + (double)k * 1e-6; /* the order the pass starts them in */
    dagd_store_run run;
    const char *action;
    rc = dagd_store_run_get_by_date(api->store, dag->id, it->start, &run, &err);
    if (rc == DAGD_ENOENT) {
      rc = 0;
      char run_id[64];
      dagd_sched_run_id(DAGD_RUN_BACKFILL, it->start, run_id);
      dagd_store_run fresh = {.dag_id = (char *)dag->id, .run_id = run_id, .run_type = DAGD_RUN_BACKFILL,
                              .logical_date = it->start, .has_interval = true, .interval_start = it->start,
                              .interval_end = it->end, .conf = "{}", .state = DAGD_RUN_QUEUED,
                              .queued_at = queued_at, .backfill_id = b.id};
      rc = dagd_store_run_create(api->store, dag, &fresh, &err);
      json_array_append_new(runs, json_pack("{s:s, s:o, s:s}", "dag_run_id", run_id, "logical_date",
                                            dagd__api_time((double)it->start), "action", "create"));
      total++;
      continue;
    }
    if (rc < 0) break;
    bool failed = run.state == DAGD_RUN_FAILED;
    bool active = run.state == DAGD_RUN_QUEUED || run.state == DAGD_RUN_RUNNING;
    if (!active && (reset || (failed && rerun_failed))) {
      action = reset ? "reset" : "rerun";
      /* Clear its task instances (all for reset, the failed ones for
       * rerun) and queue it again under this backfill. */
      dagd_store_ti_list l;
      rc = dagd_store_ti_list_run(api->store, run.pk, &l, &err);
      for (size_t i = 0; rc == 0 && i < l.n; i++) {
        dagd_store_ti *ti = &l.tis[i];
        bool bad = ti->state == DAGD_TI_FAILED || ti->state == DAGD_TI_UPSTREAM_FAILED;
        if (!reset && !bad) continue;
        dagd__api_reset_ti(ti, dagd_dag_find_task(dag, ti->task_id));
        rc = dagd_store_ti_update(api->store, ti, &err);
      }
      dagd_store_ti_list_clear(&l);
      if (rc == 0) rc = dagd_store_run_set_state(api->store, run.pk, DAGD_RUN_QUEUED, 0, 0, &err);
      if (rc == 0) rc = dagd_store_run_set_backfill(api->store, run.pk, b.id, queued_at, &err);
      total++;
    } else {
      action = "keep";
    }
    json_array_append_new(runs, json_pack("{s:s, s:o, s:s, s:s}", "dag_run_id", run.run_id, "logical_date",
                                          dagd__api_time((double)it->start), "action", action, "state",
                                          dagd_run_state_name(run.state)));
    dagd_store_run_clear(&run);
  }
  free(options);
  if ((rc = dagd__api_end(api, dry_run, rc, &err)) != 0) {
    json_decref(runs);
    status = dagd__api_store_error(resp, &err);
    goto out;
  }
  if (!dry_run && total > 0 && api->hooks.changed) api->hooks.changed(api->hooks.data, dag->id);
  status = dagd__api_json(resp, dry_run ? 200 : 201,
                          json_pack("{s:o, s:s, s:o, s:o, s:I, s:I, s:b, s:b, s:o}", "id",
                                    dry_run ? json_null() : json_integer(b.id), "dag_id", dag->id, "from",
                                    dagd__api_time((double)from), "to", dagd__api_time((double)to), "total",
                                    (json_int_t)total, "intervals", (json_int_t)n, "dry_run", dry_run, "reverse",
                                    reverse, "dag_runs", runs));
out:
  free(items);
  json_decref(body);
  return status;
}

int dagd__api_backfill_get(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  char *end;
  long long id = strtoll(req->params[0], &end, 10);
  if (*req->params[0] == '\0' || *end != '\0' || id < 1) return dagd__api_error(resp, 400, "bad backfill id");
  dagd_store_backfill b;
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_store_backfill_get(api->store, id, &b, &err);
  if (rc == DAGD_ENOENT) return dagd__api_error(resp, 404, "no backfill %lld", id);
  if (rc < 0) return dagd__api_store_error(resp, &err);
  int64_t done = b.by_state[DAGD_RUN_SUCCESS] + b.by_state[DAGD_RUN_FAILED];
  int64_t total = 0;
  for (int s = 0; s < DAGD_RUN__COUNT; s++) total += b.by_state[s];
  json_t *doc = json_pack("{s:I, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:b}", "id", (json_int_t)b.id, "dag_id",
                          b.dag_id, "from", dagd__api_time((double)b.from_date), "to",
                          dagd__api_time((double)b.to_date), "total", (json_int_t)total, "queued",
                          (json_int_t)b.by_state[DAGD_RUN_QUEUED], "running", (json_int_t)b.by_state[DAGD_RUN_RUNNING],
                          "success", (json_int_t)b.by_state[DAGD_RUN_SUCCESS], "failed",
                          (json_int_t)b.by_state[DAGD_RUN_FAILED], "done", done == total);
  dagd_store_backfill_clear(&b);
  return dagd__api_json(resp, 200, doc);
}
