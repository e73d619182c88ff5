/* Notifications, the pure part: the spec `dagd notify` sends for a task's
 * or a run's callback, with every string field rendered against the
 * context of the try or the run, and the default JSON body.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/err.h"
#include "dagd/command.h"
#include "dagd/util.h"

typedef struct render_ctx {
  const json_t *ctx;
  dagd_template_opts opts;
  dagd_err *err;
  size_t url_literal; /* the literal head of the top-level url's template */
} render_ctx;

/* A copy of v with every string rendered; NULL on a template error (the
 * message names field, the spec's top-level key). */
static json_t *render_value(render_ctx *r, const json_t *v, const char *field, bool top) {
  switch (json_typeof(v)) {
  case JSON_STRING: {
    dagd_buf out;
    dagd_err sub;
    dagd_buf_init(&out);
    dagd_err_init(&sub);
    dagd_template_opts opts = r->opts;
    if (top && field && strcmp(field, "url") == 0) opts.literal_prefix = &r->url_literal;
    if (dagd_template_render(json_string_value(v), r->ctx, &opts, &out, &sub) < 0) {
      dagd_err_set(r->err, sub.code, "field %s: %s", field, sub.msg);
      dagd_buf_close(&out);
      return NULL;
    }
    json_t *s = json_stringn(out.data ? out.data : "", out.len);
    dagd_buf_close(&out);
    if (s == NULL) dagd_err_set(r->err, DAGD_EINVAL, "field %s: the rendered text is not UTF-8", field);
    return s;
  }
  case JSON_OBJECT: {
    json_t *o = json_object();
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) {
      json_t *c = render_value(r, x, field ? field : k, field == NULL);
      if (c == NULL) {
        json_decref(o);
        return NULL;
      }
      json_object_set_new(o, k, c);
    }
    return o;
  }
  case JSON_ARRAY: {
    json_t *a = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      json_t *c = render_value(r, x, field, false);
      if (c == NULL) {
        json_decref(a);
        return NULL;
      }
      json_array_append_new(a, c);
    }
    return a;
  }
  default: return json_deep_copy(v);
  }
}

/* "dagd: task T of DAG D failed (try 2) in run R", or for a run
 * "dagd: run R of DAG D failed (failed tasks: a, b)". Heap. */
static char *default_text(const dagd_try_info *info, const dagd_notify_about *about) {
  if (info->task)
    return dagd_asprintf("dagd: task %s of DAG %s %s (try %d) in run %s", info->task->id, info->dag->id, about->what,
                         info->try_number, info->run_id);
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_buf_printf(&b, "dagd: run %s of DAG %s %s", info->run_id, info->dag->id, about->what);
  for (size_t i = 0; i < about->n_failed_tasks; i++)
    dagd_buf_printf(&b, "%s%s", i == 0 ? " (failed tasks: " : ", ", about->failed_tasks[i]);
  if (about->n_failed_tasks > 0) dagd_buf_puts(&b, ")");
  return dagd_buf_steal(&b);
}

int dagd_command_notify(const dagd_try_info *info, const json_t *spec, const dagd_notify_about *about, json_t **out,
                        char ***secrets, size_t *n_secrets, dagd_err *err) {
  *out = NULL;
  json_t *ctx = dagd_command_context(info);
  json_t *failed = json_array();
  for (size_t i = 0; i < about->n_failed_tasks; i++) json_array_append_new(failed, json_string(about->failed_tasks[i]));
  json_object_set_new(ctx, "event", json_string(about->event));
  json_object_set_new(ctx, "state", json_string(about->state));
  if (info->task == NULL) json_object_set(ctx, "failed_tasks", failed);
  /* The secrets are counted even when the caller does not collect them:
   * a request that carries one goes only where the DAG file says. */
  char **own = NULL;
  size_t n_own = 0;
  render_ctx r = {.ctx = ctx, .err = err,
                  .opts = {.secret = info->secret, .secret_data = info->secret_data,
                           .secrets_seen = secrets ? secrets : &own, .n_secrets_seen = n_secrets ? n_secrets : &n_own}};
  size_t secrets_before = *r.opts.n_secrets_seen;
  json_t *full = render_value(&r, spec, NULL, true);
  const char *url = full ? json_string_value(json_object_get(full, "url")) : NULL;
  if (url && dagd_command_secret_url_check("notify", url, r.url_literal, *r.opts.n_secrets_seen - secrets_before,
                                           info->secret_hosts, info->n_secret_hosts, err) < 0) {
    json_decref(full);
    full = NULL;
  }
  for (size_t i = 0; i < n_own; i++) free(own[i]);
  free(own);
  if (full == NULL) {
    json_decref(failed);
    json_decref(ctx);
    return err && err->code ? err->code : DAGD_EINVAL;
  }
  char *text = default_text(info, about);
  json_t *payload = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:O, s:O}", "text", text, "event", about->event,
                              "dag_id", info->dag->id, "run_id", info->run_id, "state", about->state, "logical_date",
                              json_object_get(ctx, "logical_date"), "data_interval_start",
                              json_object_get(ctx, "data_interval_start"), "data_interval_end",
                              json_object_get(ctx, "data_interval_end"));
  free(text);
  if (info->task) {
    json_object_set_new(payload, "task_id", json_string(info->task->id));
    json_object_set_new(payload, "try_number", json_integer(info->try_number));
    if (about->log) json_object_set_new(payload, "log", json_string(about->log));
  } else {
    json_object_set(payload, "failed_tasks", failed);
  }
  json_object_set_new(full, "payload", payload);
  json_decref(failed);
  json_decref(ctx);
  *out = full;
  return 0;
}
