/* The sensor operator: pokes until a condition holds: a file exists, a
 * glob matches, a URL answers an expected status, a tag is in an OCI
 * registry, another DAG's run (or one of its tasks) is in a state, or a
 * Lua function of the context returns true. In "poke" mode it loops
 * inside the try; in "reschedule" mode it pokes once and exits
 * DAGD_EXIT_RESCHEDULE when not yet true, so the daemon frees the worker
 * slot and starts it again after `interval`. The timeout counts from the
 * first poke of the try, which a rescheduled sensor keeps in its outputs
 * (sensor_try, sensor_first_poke). On timeout it fails, or with soft_fail
 * exits DAGD_EXIT_SKIP.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dagd/command.h"
#include "dagd/store.h"
#include "dagd/time.h"
#include "http_op.h"

#define DEFAULT_INTERVAL 60
#define DEFAULT_TIMEOUT (7 * 24 * 3600) /* Airflow's */

/* One poke: 1 the condition holds, 0 not yet, -1 a problem no wait can
 * fix (the try fails). Each says what it saw in the log. */
typedef int (*poke_fn)(dagd_op_ctx *ctx, const json_t *cfg);

static int poke_file(dagd_op_ctx *ctx, const json_t *cfg) {
  const char *path = json_string_value(json_object_get(cfg, "path"));
  struct stat st;
  if (stat(path, &st) == 0) {
    fprintf(ctx->log, "sensor: %s exists\n", path);
    return 1;
  }
  fprintf(ctx->log, "sensor: %s: %s\n", path, strerror(errno));
  return 0;
}

static int poke_glob(dagd_op_ctx *ctx, const json_t *cfg) {
  const char *pat = json_string_value(json_object_get(cfg, "path"));
  glob_t g;
  memset(&g, 0, sizeof(g));
  int r = glob(pat, 0, NULL, &g);
  size_t n = r == 0 ? g.gl_pathc : 0;
  if (n > 0) fprintf(ctx->log, "sensor: %s matches %zu path(s), first %s\n", pat, n, g.gl_pathv[0]);
  else fprintf(ctx->log, "sensor: %s matches nothing yet\n", pat);
  globfree(&g);
  return n > 0;
}

static int poke_http(dagd_op_ctx *ctx, const json_t *cfg) {
  const char *url = json_string_value(json_object_get(cfg, "url"));
  dagd__http_req req = {.method = "GET", .url = url, .timeout_ms = 30000};
  long status;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd__op_http_do(&req, &status, NULL, &err) < 0) {
    fprintf(ctx->log, "sensor: %s\n", err.msg); /* "GET URL: why" */
    return 0; /* not up yet is what a sensor waits for */
  }
  bool ok = dagd__op_status_ok(json_object_get(cfg, "expect_status"), status);
  fprintf(ctx->log, "sensor: GET %s -> %ld%s\n", url, status, ok ? "" : " (not the expected status yet)");
  return ok;
}

static int poke_registry(dagd_op_ctx *ctx, const json_t *cfg) {
  const char *image = json_string_value(json_object_get(cfg, "image"));
  const char *tag = json_string_value(json_object_get(cfg, "tag"));
  char *url;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd__op_registry_url(image, tag, &url, &err) < 0) {
    fprintf(ctx->log, "sensor: %s\n", err.msg);
    return -1;
  }
  /* A registry answers a manifest HEAD only for the media types the
   * client accepts. */
  static const char *const accept[] = {
      "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
      "application/vnd.docker.distribution.manifest.list.v2+json, "
      "application/vnd.docker.distribution.manifest.v2+json",
      NULL};
  dagd__http_req req = {.method = "HEAD", .url = url, .timeout_ms = 30000, .extra_headers = accept};
  long status;
  int r = 0;
  if (dagd__op_http_do(&req, &status, NULL, &err) < 0) {
    fprintf(ctx->log, "sensor: %s\n", err.msg); /* "HEAD URL: why" */
  } else {
    r = status == 200;
    fprintf(ctx->log, "sensor: %s:%s %s (HEAD %s -> %ld)\n", image, tag, r ? "exists" : "not there yet", url,
            status);
  }
  free(url);
  return r;
}

/* The state of the watched run (or of its task), read-only from the state
 * store: a scheduled or backfill run watches the run with the same logical
 * date, any other run the DAG's latest. *state is a heap string, NULL when
 * there is no such run or task yet. */
static int dag_state(dagd_op_ctx *ctx, const json_t *cfg, char **state, dagd_err *err) {
  *state = NULL;
  const char *path = json_string_value(json_object_get(ctx->extra, "state"));
  if (path == NULL) return dagd_err_set(err, DAGD_EINVAL, "the daemon gave no state store path");
  const char *dag_id = json_string_value(json_object_get(cfg, "dag_id"));
  const char *task_id = json_string_value(json_object_get(cfg, "task_id"));
  const char *run_id = json_string_value(json_object_get(ctx->context, "run_id"));
  const char *ld_text = json_string_value(json_object_get(ctx->context, "logical_date"));
  bool by_date = run_id && (strncmp(run_id, "scheduled__", 11) == 0 || strncmp(run_id, "backfill__", 10) == 0);
  int64_t ld = 0;
  int has_offset;
  if (by_date && (ld_text == NULL || dagd_time_parse(ld_text, &ld, &has_offset, err) < 0))
    return dagd_err_set(err, DAGD_EINVAL, "no logical date in the context");
  dagd_store *st;
  int rc = dagd_store_open_readonly(path, &st, err);
  if (rc < 0) return rc; /* DAGD_EIO */
  dagd_store_run run = {0};
  rc = by_date ? dagd_store_run_get_watched(st, dag_id, ld, &run, err) : dagd_store_run_get_latest(st, dag_id, &run, err);
  if (rc == 0 && task_id == NULL) {
    *state = dagd_strdup(dagd_run_state_name(run.state));
  } else if (rc == 0) {
    dagd_store_ti ti = {0};
    rc = dagd_store_ti_get(st, run.pk, task_id, &ti, err);
    if (rc == 0) *state = dagd_strdup(dagd_ti_state_name(ti.state));
    dagd_store_ti_clear(&ti);
  }
  dagd_store_run_clear(&run);
  dagd_store_close(st);
  /* No such run or task yet is an answer, not a failure; any failure to
   * read (a busy or briefly locked store among them) is DAGD_EIO, worth
   * another poke. */
  if (rc == DAGD_ENOENT) {
    rc = 0;
  } else if (rc < 0) {
    if (err) err->code = DAGD_EIO;
    rc = DAGD_EIO;
  }
  return rc;
}

static int poke_dag(dagd_op_ctx *ctx, const json_t *cfg) {
  const char *dag_id = json_string_value(json_object_get(cfg, "dag_id"));
  const char *task_id = json_string_value(json_object_get(cfg, "task_id"));
  const char *want = json_string_value(json_object_get(cfg, "state"));
  if (want == NULL) want = "success";
  char *state;
  dagd_err err;
  dagd_err_init(&err);
  if (dag_state(ctx, cfg, &state, &err) < 0) {
    /* A busy or briefly locked store is worth another poke. */
    fprintf(ctx->log, "sensor: %s\n", err.msg);
    return err.code == DAGD_EIO ? 0 : -1;
  }
  int r = state != NULL && strcmp(state, want) == 0;
  fprintf(ctx->log, "sensor: %s%s%s is %s (waiting for %s)\n", dag_id, task_id ? "." : "", task_id ? task_id : "",
          state ? state : "not started", want);
  free(state);
  return r;
}

static int poke_lua(dagd_op_ctx *ctx, const json_t *cfg) {
  (void)cfg;
  json_t *r;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd__op_call_fn(ctx, "poke", &r, &err) < 0) {
    fprintf(ctx->log, "sensor: %s\n", err.msg);
    return -1;
  }
  int yes = !json_is_null(r) && !json_is_false(r);
  fprintf(ctx->log, "sensor: poke function returned %s\n", yes ? "true" : "false");
  json_decref(r);
  return yes;
}

static poke_fn poke_of(const json_t *poke) {
  static const struct {
    const char *name;
    poke_fn fn;
  } kinds[] = {{"file", poke_file}, {"glob", poke_glob}, {"http", poke_http}, {"registry", poke_registry},
               {"dag", poke_dag}};
  if (json_is_object(poke) && json_object_get(poke, "function")) return poke_lua;
  const char *name = json_string_value(poke);
  for (size_t i = 0; name && i < sizeof(kinds) / sizeof(kinds[0]); i++)
    if (strcmp(kinds[i].name, name) == 0) return kinds[i].fn;
  return NULL;
}

static int64_t config_secs(const json_t *cfg, const char *key, int64_t dflt) {
  const json_t *v = json_object_get(cfg, key);
  return json_is_integer(v) && json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v) : dflt;
}

static void nap_s(int64_t secs) {
  struct timespec ts = {(time_t)secs, 0};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* When this try's first poke was: now, unless an earlier poke of the same
 * try (a rescheduled sensor) left it in the outputs. */
static int64_t first_poke(const dagd_op_ctx *ctx, int64_t now) {
  const json_t *mine = json_object_get(json_object_get(ctx->context, "outputs"), ctx->task_id);
  const char *try_seen = json_string_value(json_object_get(mine, "sensor_try"));
  const char *first = json_string_value(json_object_get(mine, "sensor_first_poke"));
  json_int_t try_number = json_integer_value(json_object_get(ctx->spec, "try_number"));
  if (try_seen == NULL || first == NULL || strtoll(try_seen, NULL, 10) != try_number) return now;
  char *end;
  long long t = strtoll(first, &end, 10);
  return *end == '\0' && t > 0 && t <= now ? (int64_t)t : now;
}

int dagd_operator_sensor(dagd_op_ctx *ctx) {
  const json_t *cfg = ctx->config;
  poke_fn poke = poke_of(json_object_get(cfg, "poke"));
  if (poke == NULL) {
    fprintf(ctx->log, "sensor: unknown poke kind\n");
    return 1;
  }
  int64_t interval = config_secs(cfg, "interval", DEFAULT_INTERVAL);
  int64_t timeout = config_secs(cfg, "timeout", DEFAULT_TIMEOUT);
  const char *mode = json_string_value(json_object_get(cfg, "mode"));
  bool reschedule = mode != NULL && strcmp(mode, "reschedule") == 0;
  bool soft_fail = json_is_true(json_object_get(cfg, "soft_fail"));
  if (interval < 1) interval = 1;

  int64_t now = dagd_time_now();
  int64_t start = reschedule ? first_poke(ctx, now) : now;
  if (reschedule) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(json_object_get(ctx->spec, "try_number")));
    dagd_op_output(ctx, "sensor_try", buf);
    snprintf(buf, sizeof(buf), "%lld", (long long)start);
    dagd_op_output(ctx, "sensor_first_poke", buf);
  }
  for (;;) {
    int r = poke(ctx, cfg);
    fflush(ctx->log);
    if (r < 0) return 1;
    if (r > 0) {
      fprintf(ctx->log, "sensor: condition met after %lld s\n", (long long)(dagd_time_now() - start));
      return 0;
    }
    now = dagd_time_now();
    if (now - start >= timeout) {
      fprintf(ctx->log, "sensor: timed out after %lld s%s\n", (long long)(now - start),
              soft_fail ? " (soft_fail: the task is skipped)" : "");
      return soft_fail ? DAGD_EXIT_SKIP : 1;
    }
    if (reschedule) {
      fprintf(ctx->log, "sensor: not yet; poking again in %lld s (worker slot released)\n", (long long)interval);
      return DAGD_EXIT_RESCHEDULE;
    }
    int64_t left = start + timeout - now;
    nap_s(interval < left ? interval : left);
  }
}
