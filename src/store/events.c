/* The state store's events: the deliveries to the webhook, their outcome, and the alerts
 * already seen (Alertmanager repeats).
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "dagd/err.h"
#include "dagd/model.h"
#include "dagd/store.h"
#include "dagd/util.h"
#include "store/internal.h"

void dagd_store_event_clear(dagd_store_event *e) {
  free(e->source);
  free(e->name);
  free(e->external_id);
  free(e->payload);
  free(e->outcome);
  free(e->detail);
  memset(e, 0, sizeof(*e));
}

static const char SQL_EVENT_INSERT[] =
    "INSERT INTO event (source, name, external_id, payload, received_at, outcome, runs_started) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

int dagd_store_event_insert(dagd_store *st, dagd_store_event *e, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_EVENT_INSERT);
  bind_text(s, 1, e->source);
  bind_text(s, 2, e->name);
  bind_text(s, 3, e->external_id);
  bind_text(s, 4, e->payload ? e->payload : "{}");
  sqlite3_bind_double(s, 5, e->received_at);
  bind_text(s, 6, e->outcome ? e->outcome : "accepted");
  sqlite3_bind_int(s, 7, e->runs_started);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc == SQLITE_DONE) {
    e->id = sqlite3_last_insert_rowid(st->db);
    return 0;
  }
  if ((rc & 0xff) == SQLITE_CONSTRAINT)
    return dagd_err_set(err, DAGD_EEXIST, "event %s/%s was already received", e->source,
                        e->external_id ? e->external_id : "");
  return dagd__store_fail(st, err, rc, "recording an event");
}

static const char SQL_EVENT_FIND[] =
    "SELECT id FROM event WHERE source = ?1 AND external_id = ?2 AND outcome != 'duplicate'";

int dagd_store_event_find(dagd_store *st, const char *source, const char *external_id, int64_t *id,
                          dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_EVENT_FIND);
  bind_text(s, 1, source);
  bind_text(s, 2, external_id);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) *id = sqlite3_column_int64(s, 0);
  sqlite3_reset(s);
  if (rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_DONE) return DAGD_ENOENT;
  return dagd__store_fail(st, err, rc, "reading events");
}

static const char SQL_EVENT_RUNS[] =
    "UPDATE event SET runs_started = ?2, outcome = ?3 WHERE id = ?1";

int dagd_store_event_set_outcome(dagd_store *st, int64_t id, const char *outcome, int runs_started,
                                 dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_EVENT_RUNS);
  sqlite3_bind_int64(s, 1, id);
  sqlite3_bind_int(s, 2, runs_started);
  bind_text(s, 3, outcome);
  return dagd__store_step(st, s, "updating an event", err);
}

static const char SQL_EVENT_DETAIL[] =
    "UPDATE event SET detail = ?2 WHERE id = ?1";

int dagd_store_event_set_detail(dagd_store *st, int64_t id, const char *detail, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_EVENT_DETAIL);
  sqlite3_bind_int64(s, 1, id);
  bind_text(s, 2, detail);
  return dagd__store_step(st, s, "updating an event", err);
}

static const char SQL_EVENT_LIST[] =
    "SELECT id, source, name, external_id, payload, received_at, outcome, runs_started, detail "
    "FROM event ORDER BY id DESC LIMIT ?1 OFFSET ?2";

static const char SQL_EVENT_COUNT[] =
    "SELECT count(*) FROM event";

int dagd_store_event_list(dagd_store *st, int64_t limit, int64_t offset, dagd_store_event **out, size_t *n,
                          int64_t *total, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_EVENT_LIST);
  sqlite3_bind_int64(s, 1, limit > 0 ? limit : 100);
  sqlite3_bind_int64(s, 2, offset > 0 ? offset : 0);
  size_t cap = 0;
  int rc;
  *out = NULL;
  *n = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      *out = dagd_realloc(*out, cap * sizeof(**out));
    }
    dagd_store_event *e = &(*out)[(*n)++];
    e->id = sqlite3_column_int64(s, 0);
    e->source = col_text(s, 1);
    e->name = col_text(s, 2);
    e->external_id = col_text(s, 3);
    e->payload = col_text(s, 4);
    e->received_at = sqlite3_column_double(s, 5);
    e->outcome = col_text(s, 6);
    e->runs_started = sqlite3_column_int(s, 7);
    e->detail = col_text(s, 8);
  }
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) return dagd__store_fail(st, err, rc, "listing events");
  return dagd__store_count(st, dagd__store_q(st, SQL_EVENT_COUNT), total, err);
}

static const char SQL_ALERT_SEEN[] =
    "INSERT INTO alert_seen (fingerprint, starts_at, event_id) VALUES (?1, ?2, ?3) "
    "ON CONFLICT DO NOTHING";

int dagd_store_alert_record(dagd_store *st, const char *fingerprint, const char *starts_at, int64_t event_id,
                            bool *seen_before, dagd_err *err) {
  sqlite3_stmt *s = dagd__store_q(st, SQL_ALERT_SEEN);
  bind_text(s, 1, fingerprint);
  bind_text(s, 2, starts_at);
  sqlite3_bind_int64(s, 3, event_id);
  int rc = dagd__store_step(st, s, "recording an alert", err);
  if (rc == 0) *seen_before = sqlite3_changes(st->db) == 0;
  return rc;
}

/* Prepared when the store opens. */
const char *const dagd__store_events_sql[] = {
    SQL_EVENT_INSERT, SQL_EVENT_FIND, SQL_EVENT_RUNS, SQL_EVENT_DETAIL, SQL_EVENT_LIST, SQL_EVENT_COUNT,
    SQL_ALERT_SEEN, NULL};
