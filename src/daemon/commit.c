/* Group commit: every transaction of one loop turn (the API's writes, the
 * pass, the ends of tries) is a part of one store transaction, committed
 * once before the loop waits again, and synced once when a client was
 * promised durability. Replies written meanwhile wait for that commit:
 * a client never hears of what a crash could still undo, and 32 clients
 * posting events cost one sync per turn, not 32.
 *
 * The commit comes from a prepare handle (before the loop blocks) and a
 * check handle (right after the turn's I/O callbacks), and before the
 * daemon acts on a pass (a try started, a signal sent), so nothing leaves
 * the process on the strength of a write that is not yet committed.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "dagd/err.h"
#include "dagd/http.h"
#include "dagd/log.h"
#include "dagd/util.h"
#include "daemon.h"

/* A reply waiting for the turn's commit. */
typedef struct held_reply {
  dagd_http_exchange *x;
  int status;
  char *content_type;
  char *body;
  size_t len;
  dagd_http_header extra[2];
  size_t n_extra;
  struct held_reply *next;
} held_reply;

static void send_held(daemon_t *d, bool committed) {
  held_reply *h = d->commit.held;
  d->commit.held = d->commit.tail = NULL;
  while (h) {
    held_reply *next = h->next;
    if (committed) {
      dagd_http_reply(h->x, h->status, h->content_type, h->body, h->len, h->n_extra ? h->extra : NULL,
                      h->n_extra);
    } else {
      /* Nothing of the turn was kept: what the client asked for did not
       * happen, and it may send it again. */
      dagd_buf body;
      dagd_buf_init(&body);
      dagd_problem_write(&body, 503, "the state store failed before this was committed; retry");
      dagd_http_reply(h->x, 503, DAGD_PROBLEM_CONTENT_TYPE, body.data, body.len, NULL, 0);
      dagd_buf_close(&body);
    }
    for (size_t i = 0; i < h->n_extra; i++) {
      free((char *)h->extra[i].name);
      free((char *)h->extra[i].value);
    }
    free(h->content_type);
    free(h->body);
    free(h);
    h = next;
  }
}

bool daemon_commit(daemon_t *d) {
  if (d->store == NULL || !dagd_store_group_is_pending(d->store)) {
    if (d->commit.held) send_held(d, true);
    if (d->tries.exec) dagd_exec_committed(d->tries.exec);
    return true;
  }
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_store_flush(d->store, &err);
  d->commit.commits += rc == 0;
  send_held(d, rc == 0);
  if (rc == 0 && d->tries.exec) dagd_exec_committed(d->tries.exec);
  if (rc == 0) return true;
  /* The engine's memory now holds writes the store does not: stop, as
   * for any store failure; the next start re-reads the store and
   * re-adopts the running tries. */
  DAGD_LOG(DAGD_LOG_ERROR, "daemon", "the state store failed (%s): stopping so that nothing is lost", err.msg);
  d->exit_code = 1;
  daemon_stop_now(d);
  return false;
}

void daemon_reply(daemon_t *d, dagd_http_exchange *x, int status, const char *content_type, const void *body,
                  size_t len, const dagd_http_header *extra, size_t n_extra) {
  if (d->store == NULL || !dagd_store_group_is_pending(d->store)) {
    dagd_http_reply(x, status, content_type, body, len, extra, n_extra);
    return;
  }
  held_reply *h = dagd_calloc(1, sizeof(*h));
  h->x = x;
  h->status = status;
  h->content_type = dagd_strdup(content_type);
  h->body = dagd_malloc(len + 1);
  memcpy(h->body, body, len);
  h->len = len;
  for (size_t i = 0; i < n_extra && i < DAGD_ARRAY_LEN(h->extra); i++)
    h->extra[h->n_extra++] = (dagd_http_header){dagd_strdup(extra[i].name), dagd_strdup(extra[i].value)};
  if (d->commit.tail) d->commit.tail->next = h;
  else d->commit.held = h;
  d->commit.tail = h;
}

static void on_turn(uv_handle_t *h) { daemon_commit(h->data); }
static void on_prepare(uv_prepare_t *h) { on_turn((uv_handle_t *)h); }
static void on_check(uv_check_t *h) { on_turn((uv_handle_t *)h); }

void daemon_commit_start(daemon_t *d) {
  uv_prepare_init(&d->loop, &d->commit.prepare);
  uv_check_init(&d->loop, &d->commit.check);
  d->commit.prepare.data = d->commit.check.data = d;
  uv_prepare_start(&d->commit.prepare, on_prepare);
  uv_check_start(&d->commit.check, on_check);
  dagd_store_group(d->store, true);
}

void daemon_commit_close(daemon_t *d) {
  if (d->commit.prepare.data == NULL) return;
  /* What the last turn wrote is committed before the handles go. */
  bool committed = true;
  if (d->store && dagd_store_group_is_pending(d->store)) {
    dagd_err err;
    dagd_err_init(&err);
    if (dagd_store_flush(d->store, &err) < 0) {
      DAGD_LOG(DAGD_LOG_ERROR, "daemon", "the last commit failed: %s", err.msg);
      committed = false;
    }
  }
  send_held(d, committed);
  dagd_store_group(d->store, false);
  uv_close((uv_handle_t *)&d->commit.prepare, NULL);
  uv_close((uv_handle_t *)&d->commit.check, NULL);
  d->commit.prepare.data = NULL;
}
