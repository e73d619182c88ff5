/* Events that start runs: the generic event endpoint, Prometheus
 * Alertmanager's webhook (version 4) and Grafana's webhook contact point.
 * Every delivery is committed before the 202; repeats (the sender's event
 * id; an alert's fingerprint and startsAt) and resolved alerts start
 * nothing; event_cooldown and paused DAGs hold runs back; an event no DAG
 * listens to is said so, in the answer and the event list.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool listens(const dagd_dag *dag, const char *event) {
  for (size_t i = 0; i < dag->n_on_event; i++)
    if (strcmp(dag->on_event[i], event) == 0) return true;
  return false;
}

/* Starts a run of every DAG listening to `event`, unless it is paused or
 * in its cooldown window. conf is borrowed. Appends {"dag_id",
 * "dag_run_id"} to started and {"dag_id", "reason"} to held; *listeners
 * counts the DAGs that listen (held ones too). Within the caller's
 * transaction. */
static int start_runs(dagd_api *api, const char *event, const json_t *conf, int64_t event_id, double now,
                      json_t *started, json_t *held, int *listeners, dagd_err *err) {
  const dagd_dagbag *bag = api->hooks.bag ? api->hooks.bag(api->hooks.data) : NULL;
  *listeners = 0;
  for (size_t i = 0; bag && i < bag->n_dags; i++) {
    const dagd_dag *dag = bag->dags[i];
    if (dag == NULL || !listens(dag, event)) continue;
    (*listeners)++;
    dagd_store_dag row = {0};
    int got = dagd_store_dag_get(api->store, dag->id, &row, err);
    if (got < 0 && got != DAGD_ENOENT) return got;
    bool paused = got == 0 && row.is_paused;
    dagd_store_dag_clear(&row);
    if (paused) {
      json_array_append_new(held, json_pack("{s:s, s:s}", "dag_id", dag->id, "reason", "paused"));
      continue;
    }
    double last;
    if (dagd_store_dag_event_run_get(api->store, dag->id, &last, err) < 0) return err->code;
    if (dag->event_cooldown > 0 && last > 0 && now - last < (double)dag->event_cooldown) {
      json_array_append_new(held, json_pack("{s:s, s:s}", "dag_id", dag->id, "reason", "event_cooldown"));
      continue;
    }
    /* event__<now to the microsecond>: events in one second, or one
     * delivery naming two events this DAG listens to, are distinct runs. */
    dagd_store_run run;
    int rc = dagd__api_create_run(api, dag, DAGD_RUN_EVENT, (int64_t)now, NULL, conf, event_id, now, &run, err);
    if (rc < 0) return rc;
    if ((rc = dagd_store_dag_event_run_set(api->store, dag->id, now, err)) < 0) {
      dagd_store_run_clear(&run);
      return rc;
    }
    json_array_append_new(started, json_pack("{s:s, s:s}", "dag_id", dag->id, "dag_run_id", run.run_id));
    dagd_store_run_clear(&run);
  }
  return 0;
}

/* The words for an event nobody listens to, appended to *detail ("; "
 * between notes). */
static void note_unheard(char **detail, const char *event) {
  char *next = *detail ? dagd_asprintf("%s; no DAG listens to \"%s\"", *detail, event)
                       : dagd_asprintf("no DAG listens to \"%s\"", event);
  free(*detail);
  *detail = next;
}

static void notify_started(dagd_api *api, const json_t *started) {
  size_t i;
  json_t *x;
  json_array_foreach(started, i, x) if (api->hooks.changed)
      api->hooks.changed(api->hooks.data, json_string_value(json_object_get(x, "dag_id")));
}

int dagd__api_events_post(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  json_t *body;
  if (dagd__api_body(req, resp, &body) != 0) {
    api->events_rejected++;
    return resp->status;
  }
  const char *name = json_string_value(json_object_get(body, "name"));
  json_t *payload = json_object_get(body, "payload");
  json_t *jid = json_object_get(body, "id");
  int status;
  const char *why = name ? dagd_id_problem(name, false) : "is required";
  if (why != NULL) {
    api->events_rejected++;
    status = dagd__api_error(resp, 400, "name %s", why);
    goto out;
  }
  if (payload != NULL && !json_is_object(payload)) {
    api->events_rejected++;
    status = dagd__api_error(resp, 400, "payload must be a JSON object");
    goto out;
  }
  if (jid != NULL && !json_is_string(jid) && !json_is_integer(jid)) {
    api->events_rejected++;
    status = dagd__api_error(resp, 400, "id must be a string or an integer");
    goto out;
  }
  char idbuf[32];
  const char *ext = NULL;
  if (json_is_string(jid)) ext = json_string_value(jid);
  else if (json_is_integer(jid)) {
    snprintf(idbuf, sizeof(idbuf), "%lld", (long long)json_integer_value(jid));
    ext = idbuf;
  }
  char *payload_text = payload ? json_dumps(payload, DAGD_API_DUMP) : NULL;
  dagd_store_event ev = {.source = "generic", .name = (char *)name, .external_id = (char *)ext,
                         .payload = payload_text ? payload_text : "{}", .received_at = req->now};
  dagd_err err;
  dagd_err_init(&err);
  json_t *started = json_array(), *held = json_array();
  bool duplicate = false;
  int64_t first_id = 0;
  int rc = dagd_store_begin_durable(api->store, &err);
  if (rc == 0 && ext && dagd_store_event_find(api->store, "generic", ext, &first_id, &err) == 0) {
    duplicate = true;
    ev.outcome = "duplicate";
  }
  if (rc == 0 && dagd_err_is_set(&err)) rc = err.code;
  if (rc == 0) {
    /* The external id is kept on accepted events only (the unique index). */
    if (duplicate) ev.external_id = NULL;
    rc = dagd_store_event_insert(api->store, &ev, &err);
  }
  char *detail = NULL;
  if (rc == 0 && !duplicate) {
    json_t *conf = json_pack("{s:s, s:o}", "event", name, "payload", payload ? json_incref(payload) : json_object());
    int listeners;
    rc = start_runs(api, name, conf, ev.id, req->now, started, held, &listeners, &err);
    json_decref(conf);
    if (rc == 0 && listeners == 0) note_unheard(&detail, name);
    if (rc == 0) rc = dagd_store_event_set_outcome(api->store, ev.id, "accepted", (int)json_array_size(started), &err);
    if (rc == 0 && detail) rc = dagd_store_event_set_detail(api->store, ev.id, detail, &err);
  }
  if (rc == 0) rc = dagd_store_commit_durable(api->store, &err);
  free(payload_text);
  if (rc != 0) {
    dagd_store_rollback(api->store);
    json_decref(started);
    json_decref(held);
    free(detail);
    /* Not committed: the sender must retry, so 503, never a 4xx; but a
     * conf over max_conf_size would make a run that can never start: 413,
     * and nothing recorded, so the delivery is new once the bound is raised. */
    if (err.code == DAGD_ETOOBIG) {
      api->events_rejected++;
      status = dagd__api_error(resp, 413, "the event was refused: %s", err.msg);
    } else {
      status = dagd__api_error(resp, 503, "the event could not be recorded, retry: %s", err.msg);
      if (err.code == DAGD_ETIMEDOUT) resp->retry_after = 1;
    }
    goto out;
  }
  if (duplicate) api->events_duplicate++;
  else api->events_received++;
  notify_started(api, started);
  status = dagd__api_json(resp, 202, json_pack("{s:I, s:s, s:s, s:b, s:s?, s:o, s:o}", "event_id",
                                               (json_int_t)(duplicate ? first_id : ev.id), "name", name, "outcome",
                                               duplicate ? "duplicate" : "accepted", "duplicate", duplicate,
                                               "detail", detail, "dag_runs", started, "held", held));
  free(detail);
out:
  json_decref(body);
  return status;
}

/* The alert as dagd passes it on in a run's conf. */
static json_t *alert_conf(const json_t *a) {
  json_t *labels = json_object_get(a, "labels"), *ann = json_object_get(a, "annotations");
  return json_pack("{s:o, s:o, s:s?, s:s?, s:s?}", "labels",
                   json_is_object(labels) ? json_incref(labels) : json_object(), "annotations",
                   json_is_object(ann) ? json_incref(ann) : json_object(), "fingerprint",
                   json_string_value(json_object_get(a, "fingerprint")), "starts_at",
                   json_string_value(json_object_get(a, "startsAt")), "generator_url",
                   json_string_value(json_object_get(a, "generatorURL")));
}

/* The event an alert names: its label "event", else "alertname". */
static const char *alert_event(const json_t *a) {
  json_t *labels = json_object_get(a, "labels");
  const char *name = json_string_value(json_object_get(labels, "event"));
  return name ? name : json_string_value(json_object_get(labels, "alertname"));
}

/* The delivery's name in the event list: the distinct events its alerts
 * name, in order, joined by ","; NULL when no alert names one. */
static char *delivery_name(const json_t *alerts) {
  json_t *seen = json_object();
  dagd_buf b;
  dagd_buf_init(&b);
  size_t i;
  json_t *a;
  json_array_foreach(alerts, i, a) {
    const char *name = alert_event(a);
    if (name == NULL || json_object_get(seen, name)) continue;
    json_object_set_new(seen, name, json_true());
    dagd_buf_printf(&b, "%s%s", b.len ? "," : "", name);
  }
  json_decref(seen);
  if (b.len == 0) {
    dagd_buf_close(&b);
    return NULL;
  }
  return dagd_buf_steal(&b);
}

/* Alertmanager (v4) and Grafana send the same shape: {"status",
 * "groupKey", "truncatedAlerts", "alerts": [{"status", "labels",
 * "annotations", "startsAt", "fingerprint", ...}], ...}; unknown fields
 * are ignored. The delivery's outcome: accepted when a firing alert is
 * new (whether or not a DAG listens: the detail says when none does),
 * duplicate when every firing alert was seen before, resolved when it
 * carries resolved alerts only (they start nothing), ignored when no alert
 * names an event. */
static int handle_alerts(dagd_api *api, const char *source, const dagd_api_request *req, dagd_api_response *resp) {
  json_t *body;
  if (dagd__api_body(req, resp, &body) != 0) {
    api->events_rejected++;
    return resp->status;
  }
  json_t *alerts = json_object_get(body, "alerts");
  int status;
  if (!json_is_array(alerts)) {
    api->events_rejected++;
    status = dagd__api_error(resp, 400, "alerts must be a list");
    goto out;
  }
  size_t i;
  json_t *a;
  json_array_foreach(alerts, i, a) {
    if (!json_is_object(a) || !json_is_object(json_object_get(a, "labels"))) {
      api->events_rejected++;
      status = dagd__api_error(resp, 400, "alert %zu: labels must be an object", i);
      goto out;
    }
  }
  char *text = dagd_strndup(req->body, req->body_len);
  char *dname = delivery_name(alerts);
  const char *group = json_string_value(json_object_get(body, "groupKey"));
  json_t *truncated = json_object_get(body, "truncatedAlerts");
  dagd_store_event ev = {.source = (char *)source, .name = dname, .payload = text, .received_at = req->now,
                         .outcome = "accepted"};
  dagd_err err;
  dagd_err_init(&err);
  json_t *started = json_array(), *held = json_array();
  /* event name -> [alerts] of the new firing alerts, in order. */
  json_t *by_event = json_object();
  json_t *order = json_array();
  int n_seen = 0, n_resolved = 0;
  char *detail = NULL;
  int rc = dagd_store_begin_durable(api->store, &err);
  if (rc == 0) rc = dagd_store_event_insert(api->store, &ev, &err);
  json_array_foreach(alerts, i, a) {
    if (rc != 0) break;
    const char *st = json_string_value(json_object_get(a, "status"));
    if (st == NULL || strcmp(st, "firing") != 0) { /* resolved alerts start nothing */
      if (st && strcmp(st, "resolved") == 0) n_resolved++;
      continue;
    }
    const char *name = alert_event(a);
    if (name == NULL) continue;
    const char *fp = json_string_value(json_object_get(a, "fingerprint"));
    const char *starts = json_string_value(json_object_get(a, "startsAt"));
    char *fallback = NULL;
    if (fp == NULL) { /* Grafana may omit it: the labels identify the alert */
      fallback = json_dumps(json_object_get(a, "labels"), JSON_COMPACT | JSON_SORT_KEYS);
      fp = fallback;
    }
    bool seen = false;
    rc = dagd_store_alert_record(api->store, fp, starts ? starts : "", ev.id, &seen, &err);
    free(fallback);
    if (rc != 0) break;
    if (seen) {
      n_seen++;
      continue;
    }
    json_t *list = json_object_get(by_event, name);
    if (list == NULL) {
      list = json_array();
      json_object_set_new(by_event, name, list);
      json_array_append_new(order, json_string(name));
    }
    json_array_append_new(list, alert_conf(a));
  }
  json_t *nm;
  json_array_foreach(order, i, nm) {
    if (rc != 0) break;
    const char *name = json_string_value(nm);
    json_t *list = json_object_get(by_event, name);
    json_t *first = json_array_get(list, 0);
    json_t *conf = json_pack("{s:s, s:O, s:O, s:O}", "event", name, "labels", json_object_get(first, "labels"),
                             "annotations", json_object_get(first, "annotations"), "alerts", list);
    /* The sender's grouping, so a task can tell deliveries of one group
     * apart from another, and how many alerts the sender left out. */
    if (group) json_object_set_new(conf, "group_key", json_string(group));
    if (json_is_integer(truncated)) json_object_set(conf, "truncated_alerts", truncated);
    int listeners;
    rc = start_runs(api, name, conf, ev.id, req->now, started, held, &listeners, &err);
    json_decref(conf);
    if (rc == 0 && listeners == 0) note_unheard(&detail, name);
  }
  const char *outcome = "accepted";
  if (json_object_size(by_event) == 0) {
    outcome = n_seen ? "duplicate" : n_resolved ? "resolved" : "ignored";
    free(detail);
    detail = dagd_strdup(n_seen      ? "every firing alert was seen before (same fingerprint and startsAt)"
                         : n_resolved ? "resolved alerts start no run"
                                      : "no firing alert names an event (label event or alertname)");
  }
  if (rc == 0) rc = dagd_store_event_set_outcome(api->store, ev.id, outcome, (int)json_array_size(started), &err);
  if (rc == 0) rc = dagd_store_event_set_detail(api->store, ev.id, detail, &err);
  if (rc == 0) rc = dagd_store_commit_durable(api->store, &err);
  free(text);
  json_decref(by_event);
  json_decref(order);
  if (rc != 0) {
    dagd_store_rollback(api->store);
    json_decref(started);
    json_decref(held);
    free(dname);
    free(detail);
    if (err.code == DAGD_ETOOBIG) { /* rolled back: no alert counts as seen */
      api->events_rejected++;
      status = dagd__api_error(resp, 413, "the delivery was refused: %s", err.msg);
    } else {
      status = dagd__api_error(resp, 503, "the delivery could not be recorded, retry: %s", err.msg);
      if (err.code == DAGD_ETIMEDOUT) resp->retry_after = 1;
    }
    goto out;
  }
  if (strcmp(outcome, "duplicate") == 0) api->events_duplicate++;
  else api->events_received++;
  notify_started(api, started);
  status = dagd__api_json(resp, 202, json_pack("{s:I, s:s?, s:s, s:s?, s:o, s:o}", "event_id", (json_int_t)ev.id,
                                               "name", dname, "outcome", outcome, "detail", detail, "dag_runs",
                                               started, "held", held));
  free(dname);
  free(detail);
out:
  json_decref(body);
  return status;
}

int dagd__api_hook_alertmanager(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  return handle_alerts(api, "alertmanager", req, resp);
}

int dagd__api_hook_grafana(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  return handle_alerts(api, "grafana", req, resp);
}

int dagd__api_events_list(dagd_api *api, const dagd_api_request *req, dagd_api_response *resp) {
  int64_t limit, offset;
  if (dagd__api_query_int(req, resp, "limit", 100, 1, 10000, &limit) < 0 ||
      dagd__api_query_int(req, resp, "offset", 0, 0, INT64_MAX, &offset) < 0)
    return resp->status;
  dagd_store_event *evs;
  size_t n;
  int64_t total;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_store_event_list(api->store, limit, offset, &evs, &n, &total, &err) < 0)
    return dagd__api_store_error(resp, &err);
  json_t *list = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *payload = json_loads(evs[i].payload ? evs[i].payload : "null", JSON_DECODE_ANY, NULL);
    json_array_append_new(list, json_pack("{s:I, s:s, s:s?, s:s?, s:o, s:o, s:s, s:i, s:s?}", "event_id",
                                          (json_int_t)evs[i].id, "source", evs[i].source, "name", evs[i].name,
                                          "id", evs[i].external_id, "payload", payload ? payload : json_null(),
                                          "received_at", dagd__api_time(evs[i].received_at), "outcome",
                                          evs[i].outcome, "runs_started", evs[i].runs_started, "detail",
                                          evs[i].detail));
    dagd_store_event_clear(&evs[i]);
  }
  free(evs);
  return dagd__api_json(resp, 200, json_pack("{s:o, s:I}", "events", list, "total_entries", (json_int_t)total));
}
