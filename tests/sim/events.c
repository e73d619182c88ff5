/* External events of the simulation, through the real REST handlers
 * (dagd_api_dispatch) with the virtual clock as the request's `now`:
 * pause and unpause, manual triggers (several in one second), generic
 * events, backfills (reverse, rerun_failed, reset, dry_run), clearing and
 * marking task instances, setting a run's state; and the daemon's own
 * faults: crashes, drains, reloads of the same DAG files.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/cron.h"
#include "dagd/err.h"
#include "dagd/time.h"
#include "dagd/util.h"
#include "sim.h"

/* --- hooks: what the daemon gives the API --- */

static const dagd_dagbag *hook_bag(void *data) { return &((sim *)data)->bag; }

static const dagd_dag *hook_find(void *data, const char *dag_id) {
  sim *s = data;
  return dagd_engine_find_dag(s->engine, dag_id);
}

static void hook_changed(void *data, const char *dag_id) {
  sim *s = data;
  dagd_engine_changed(s->engine, dag_id);
}

static void hook_paused(void *data, const char *dag_id, bool paused) {
  (void)data, (void)dag_id, (void)paused; /* the engine reads the flag at its next pass */
}

static void hook_kill(void *data, int64_t run_pk, const char *task_id) {
  sim_exec_kill_hook(data, run_pk, task_id);
}

void sim_api_open(sim *s) {
  dagd_api_hooks hooks = {.data = s, .bag = hook_bag, .find_dag = hook_find, .changed = hook_changed,
                          .paused = hook_paused, .kill_try = hook_kill};
  dagd_api_init(&s->api, s->store, &hooks, NULL, NULL, 0);
  s->api.logs_folder = s->dir;
  s->api_open = true;
}

void sim_api_close(sim *s) {
  if (!s->api_open) return;
  dagd_api_close(&s->api);
  s->api_open = false;
}

/* Calls the route `pattern` with the path parameters and body; returns
 * the status and the parsed answer (*doc, may be NULL). */
static int call(sim *s, const char *method, const char *pattern, const char *const *params, size_t n_params,
                const char *body, json_t **doc) {
  const dagd_api_route *route = NULL;
  for (size_t i = 0; i < dagd_api_n_routes && route == NULL; i++)
    if (strcmp(dagd_api_routes[i].method, method) == 0 && strcmp(dagd_api_routes[i].pattern, pattern) == 0)
      route = &dagd_api_routes[i];
  if (route == NULL) {
    sim_fail(s, "api.route", "no route %s %s", method, pattern);
    return 0;
  }
  dagd_api_request req = {.method = method, .path = pattern, .params = params, .n_params = n_params, .query = "",
                          .body = body, .body_len = body ? strlen(body) : 0, .content_type = "application/json",
                          .local = true, .no_wait = true, .now = s->now};
  dagd_api_response resp;
  dagd_api_response_init(&resp);
  dagd_api_dispatch(&s->api, route, &req, &resp);
  s->st.api_calls++;
  int status = resp.status;
  sim_trace(s, "api %s %s %s -> %d %.300s", method, pattern, body ? body : "", status,
            resp.body.data ? resp.body.data : "");
  if (doc) *doc = json_loads(resp.body.data ? resp.body.data : "", JSON_DECODE_ANY, NULL);
  dagd_api_response_close(&resp);
  /* What the API created or changed is part of the state the next pass starts from. */
  s->ctx = SIM_CTX_API;
  sim_mirror_new_runs(s);
  s->ctx = SIM_CTX_OTHER;
  return status;
}

static void rfc3339(int64_t t, char *out) { dagd_time_format_utc(t, out); }

/* A random run of DAG d from the mirror (recent ones more often), or NULL. */
static sim_run *some_run(sim *s, size_t d) {
  int64_t n = 0;
  for (int64_t pk = 1; pk <= s->max_pk; pk++)
    if (s->runs[pk].pk && s->runs[pk].dag == d) n++;
  if (n == 0) return NULL;
  int64_t k = sim_chance(&s->rng, 0.6) ? n - 1 - sim_range(&s->rng, 0, n < 4 ? n - 1 : 3)
                                       : sim_range(&s->rng, 0, n - 1);
  for (int64_t pk = 1; pk <= s->max_pk; pk++) {
    if (!(s->runs[pk].pk && s->runs[pk].dag == d)) continue;
    if (k-- == 0) return &s->runs[pk];
  }
  return NULL;
}

static void touched(sim *s, int64_t pk) {
  sim_run *r = sim_run_get(s, pk);
  if (r) r->touched = true;
  sim_mirror_run(s, pk);
}

static void ev_pause(sim *s, size_t d) {
  sim_dag *sd = &s->dags[d];
  bool pause = sd->paused ? sim_chance(&s->rng, 0.1) : true;
  char body[64];
  snprintf(body, sizeof(body), "{\"is_paused\": %s}", pause ? "true" : "false");
  const char *params[] = {sd->dag->id};
  int st = call(s, "PATCH", "/api/v1/dags/{dag_id}", params, 1, body, NULL);
  if (st != 200) {
    sim_fail(s, "api.status", "PATCH dag %s: status %d", sd->dag->id, st);
    return;
  }
  sd->paused = pause;
}

static void ev_trigger(sim *s, size_t d) {
  sim_dag *sd = &s->dags[d];
  const char *params[] = {sd->dag->id};
  /* Several triggers in one virtual second are several runs (DESIGN.md 4). */
  int n = sim_chance(&s->rng, 0.4) ? (int)sim_range(&s->rng, 2, 3) : 1;
  for (int i = 0; i < n && !s->failed; i++) {
    char body[256];
    double u = sim_uniform(&s->rng);
    bool own_id = u < 0.15, with_date = u >= 0.15 && u < 0.25;
    if (own_id) {
      snprintf(body, sizeof(body), "{\"conf\": {\"n\": %d}, \"dag_run_id\": \"sim_%llu_%d\"}", i,
               (unsigned long long)s->st.api_calls, i);
    } else if (with_date) {
      char ts[32];
      rfc3339((int64_t)s->now - sim_range(&s->rng, 0, (int64_t)s->unit * 10), ts);
      snprintf(body, sizeof(body), "{\"logical_date\": \"%s\"}", ts);
    } else {
      snprintf(body, sizeof(body), "{\"conf\": {\"n\": %d}}", i);
    }
    json_t *doc = NULL;
    int st = call(s, "POST", "/api/v1/dags/{dag_id}/dagRuns", params, 1, body, &doc);
    if (st == 200) {
      sd->n_manual++;
    } else if (st == 409 && with_date) {
      /* The same logical date twice gives the same default run id. */
    } else {
      sim_fail(s, st == 409 ? "api.manual-same-second" : "api.status",
               "trigger %d of %d in one second of DAG %s: status %d: %s", i + 1, n, sd->dag->id, st,
               doc ? json_string_value(json_object_get(doc, "detail")) : "");
    }
    json_decref(doc);
  }
}

static bool listens(const dagd_dag *dag, const char *name) {
  for (size_t i = 0; i < dag->n_on_event; i++)
    if (strcmp(dag->on_event[i], name) == 0) return true;
  return false;
}

static void ev_event(sim *s) {
  static const char *const names[] = {"drift", "data_ready", "retrain", "unheard"};
  const char *name = names[sim_range(&s->rng, 0, 3)];
  /* Now and then a repeated delivery of an earlier event id. */
  bool repeat = sim_chance(&s->rng, 0.3);
  int slot = (int)sim_range(&s->rng, 0, 3);
  uint64_t id = repeat ? s->seed * 1000 + (uint64_t)slot : sim_rand(&s->rng);
  bool want_dup = repeat && s->ev_sent[slot];
  if (repeat) s->ev_sent[slot] = true;
  char body[256];
  snprintf(body, sizeof(body), "{\"name\": \"%s\", \"payload\": {\"score\": %d}, \"id\": \"ev%llu\"}", name,
           (int)sim_range(&s->rng, 0, 100), (unsigned long long)id);
  json_t *doc = NULL;
  int st = call(s, "POST", "/api/v1/events", NULL, 0, body, &doc);
  if (st != 202) {
    sim_fail(s, "api.status", "POST event %s: status %d", name, st);
    json_decref(doc);
    return;
  }
  bool dup = json_is_true(json_object_get(doc, "duplicate"));
  json_t *runs = json_object_get(doc, "dag_runs");
  size_t want = 0;
  if (dup != want_dup)
    sim_fail(s, "api.event-duplicate", "event id ev%llu: duplicate is %s, want %s", (unsigned long long)id,
             dup ? "true" : "false", want_dup ? "true" : "false");
  if (!dup) {
    for (size_t d = 0; d < s->n_dags; d++) {
      sim_dag *sd = &s->dags[d];
      if (!listens(sd->dag, name) || sd->paused) continue;
      if (sd->dag->event_cooldown > 0 && sd->last_event_run > 0 &&
          s->now - sd->last_event_run < (double)sd->dag->event_cooldown)
        continue;
      want++;
      sd->last_event_run = s->now;
      sd->n_event++;
    }
  }
  if (json_array_size(runs) != want)
    sim_fail(s, "api.event-runs", "event %s%s started %zu runs, want %zu (listening, unpaused, not cooling down)",
             name, dup ? " (duplicate)" : "", json_array_size(runs), want);
  json_decref(doc);
}

/* A backfill over a few intervals around the recent past. */
static void ev_backfill(sim *s, size_t d) {
  sim_dag *sd = &s->dags[d];
  const dagd_dag *dag = sd->dag;
  if (dag->schedule == NULL) return;
  int64_t anchor = (int64_t)(s->now - sd->unit * (double)sim_range(&s->rng, 0, 15));
  if (sim_chance(&s->rng, 0.1)) anchor = (int64_t)(s->now + sd->unit * 2); /* into the future */
  int64_t from, to;
  if (dagd_cron_next(dag->schedule, dag->tz, anchor, &from) != 0) return;
  to = from;
  int k = (int)sim_range(&s->rng, 0, 10);
  for (int i = 0; i < k; i++)
    if (dagd_cron_next(dag->schedule, dag->tz, to, &to) != 0) break;
  bool reverse = sim_chance(&s->rng, 0.3), rerun = sim_chance(&s->rng, 0.2), reset = sim_chance(&s->rng, 0.1);
  bool dry = sim_chance(&s->rng, 0.05);
  char a[32], b[32], body[256];
  rfc3339(from, a);
  rfc3339(to, b);
  snprintf(body, sizeof(body),
           "{\"from\": \"%s\", \"to\": \"%s\", \"reverse\": %s, \"rerun_failed\": %s, \"reset\": %s, "
           "\"dry_run\": %s}",
           a, b, reverse ? "true" : "false", rerun ? "true" : "false", reset ? "true" : "false",
           dry ? "true" : "false");
  const char *params[] = {dag->id};
  json_t *doc = NULL;
  int st = call(s, "POST", "/api/v1/dags/{dag_id}/backfills", params, 1, body, &doc);
  if (st != (dry ? 200 : 201)) {
    sim_fail(s, "api.status", "backfill of %s: status %d", dag->id, st);
    json_decref(doc);
    return;
  }
  /* Queued oldest first, or newest first with reverse. */
  json_t *runs = json_object_get(doc, "dag_runs");
  int64_t prev = 0;
  size_t i;
  json_t *x;
  json_array_foreach(runs, i, x) {
    int64_t ld;
    int off;
    const char *text = json_string_value(json_object_get(x, "logical_date"));
    if (text == NULL || dagd_time_parse(text, &ld, &off, NULL) != 0) continue;
    if (i > 0 && (reverse ? ld >= prev : ld <= prev))
      sim_fail(s, "api.backfill-order", "backfill of %s%s lists %s after %lld", dag->id, reverse ? " (reverse)" : "",
               text, (long long)prev);
    prev = ld;
    if (dry) continue;
    const char *action = json_string_value(json_object_get(x, "action"));
    if (action && strcmp(action, "create") == 0) sd->n_backfill++;
    if (action && (strcmp(action, "reset") == 0 || strcmp(action, "rerun") == 0)) {
      /* An existing run cleared and queued again. */
      const char *rid = json_string_value(json_object_get(x, "dag_run_id"));
      for (int64_t pk = 1; rid && pk <= s->max_pk; pk++)
        if (s->runs[pk].pk && s->runs[pk].dag == d && strcmp(s->runs[pk].run_id, rid) == 0) touched(s, pk);
    }
  }
  json_decref(doc);
}

static void ev_clear(sim *s, size_t d) {
  sim_run *r = some_run(s, d);
  if (r == NULL) return;
  const dagd_dag *dag = s->dags[d].dag;
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_buf_puts(&b, "{\"dag_run_id\": ");
  dagd_buf_json_str(&b, r->run_id);
  if (sim_chance(&s->rng, 0.7)) {
    dagd_buf_puts(&b, ", \"task_ids\": [");
    bool first = true;
    for (size_t t = 0; t < dag->n_tasks; t++) {
      if (!sim_chance(&s->rng, 0.4)) continue;
      dagd_buf_printf(&b, "%s\"%s\"", first ? "" : ", ", dag->tasks[t]->id);
      first = false;
    }
    dagd_buf_puts(&b, "]");
  }
  /* dry_run explicit: the API's default (true, as Airflow's) clears nothing. */
  dagd_buf_printf(&b, ", \"include_downstream\": %s, \"only_failed\": %s, \"dry_run\": false}",
                  sim_chance(&s->rng, 0.5) ? "true" : "false", sim_chance(&s->rng, 0.3) ? "true" : "false");
  const char *params[] = {dag->id};
  int64_t pk = r->pk;
  int st = call(s, "POST", "/api/v1/dags/{dag_id}/clearTaskInstances", params, 1, b.data, NULL);
  dagd_buf_close(&b);
  if (st != 200) {
    sim_fail(s, "api.status", "clear in run %lld: status %d", (long long)pk, st);
    return;
  }
  touched(s, pk);
}

static void ev_mark(sim *s, size_t d) {
  sim_run *r = some_run(s, d);
  if (r == NULL) return;
  const dagd_dag *dag = s->dags[d].dag;
  /* A task not finished yet more often: that is what operators mark. */
  size_t t = (size_t)sim_range(&s->rng, 0, (int64_t)dag->n_tasks - 1);
  for (size_t k = 0; k < dag->n_tasks; k++) {
    size_t c = (t + k) % dag->n_tasks;
    if (!dagd_ti_state_finished(r->tis[c].state) && sim_chance(&s->rng, 0.7)) {
      t = c;
      break;
    }
  }
  const char *params[] = {dag->id, r->run_id, dag->tasks[t]->id};
  const char *body = sim_chance(&s->rng, 0.6) ? "{\"new_state\": \"success\", \"dry_run\": false}"
                                              : "{\"new_state\": \"failed\", \"dry_run\": false}";
  int64_t pk = r->pk;
  int st = call(s, "PATCH", "/api/v1/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", params, 3, body, NULL);
  if (st != 200) {
    sim_fail(s, "api.status", "mark in run %lld: status %d", (long long)pk, st);
    return;
  }
  touched(s, pk);
}

static void ev_run_patch(sim *s, size_t d) {
  sim_run *r = some_run(s, d);
  if (r == NULL) return;
  static const char *const bodies[] = {"{\"state\": \"success\"}", "{\"state\": \"failed\"}",
                                       "{\"state\": \"queued\"}"};
  const char *params[] = {s->dags[d].dag->id, r->run_id};
  int64_t pk = r->pk;
  const char *body = bodies[sim_range(&s->rng, 0, 2)];
  int st = call(s, "PATCH", "/api/v1/dags/{dag_id}/dagRuns/{run_id}", params, 2, body, NULL);
  if (st != 200) {
    sim_fail(s, "api.status", "PATCH run %lld: status %d", (long long)pk, st);
    return;
  }
  touched(s, pk);
}

/* A reload of unchanged DAG files: new models, the same content. */
static void ev_reload(sim *s) {
  dagd_dag *fresh[SIM_MAX_DAGS];
  for (size_t i = 0; i < s->n_dags; i++) fresh[i] = sim_gen_model(s, i);
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_engine_set_dags(s->engine, (const dagd_dag *const *)fresh, s->n_dags, &err) != 0) {
    sim_fail(s, "engine.error", "set_dags on a reload: %s", err.msg);
    for (size_t i = 0; i < s->n_dags; i++) dagd_dag_free(fresh[i]);
    return;
  }
  /* The models before the last set_dags are no longer borrowed. */
  for (size_t i = 0; i < s->n_dags; i++) {
    if (s->old_models[i] != s->models[i]) dagd_dag_free(s->old_models[i]);
    s->old_models[i] = s->models[i];
    s->models[i] = fresh[i];
    s->dags[i].dag = fresh[i];
  }
  sim_trace(s, "reload: the same DAGs as new models");
}

void sim_event(sim *s) {
  enum { PAUSE, TRIGGER, EVENT, BACKFILL, CLEAR, MARK, RUN_PATCH, CRASH, DRAIN, RELOAD, NOTHING, N_KINDS };
  static const double w[N_KINDS] = {8, 15, 12, 10, 12, 8, 4, 10, 4, 3, 5};
  size_t kind = sim_pick(&s->rng, w, N_KINDS);
  size_t d = (size_t)sim_range(&s->rng, 0, (int64_t)s->n_dags - 1);
  /* A paused DAG comes back soon: a world paused for good tests little. */
  for (size_t i = 0; i < s->n_dags; i++) {
    if (s->dags[i].paused && sim_chance(&s->rng, 0.25)) {
      kind = PAUSE;
      d = i;
      break;
    }
  }
  switch (kind) {
  case PAUSE: ev_pause(s, d); break;
  case TRIGGER: ev_trigger(s, d); break;
  case EVENT: ev_event(s); break;
  case BACKFILL: ev_backfill(s, d); break;
  case CLEAR: ev_clear(s, d); break;
  case MARK: ev_mark(s, d); break;
  case RUN_PATCH: ev_run_patch(s, d); break;
  case CRASH: {
    double down = sim_chance(&s->rng, 0.3) ? 0 : floor(sim_exp(&s->rng, s->unit * 2) * 1000) / 1000;
    sim_trace(s, "crash, down for %.3f s", down);
    sim_restart(s, true, down);
    break;
  }
  case DRAIN:
    if (!s->draining) {
      sim_trace(s, "drain");
      dagd_engine_drain(s->engine);
      s->draining = true;
      s->st.drains++;
      if (!dagd_engine_draining(s->engine)) sim_fail(s, "drain.flag", "dagd_engine_draining is false after a drain");
    }
    break;
  case RELOAD: ev_reload(s); break;
  default: break;
  }
}
