/* The deploy operator: safe rollouts built on kubectl. `rolling` sets the
 * image and waits for the rollout, undoing it on failure; `blue_green`
 * brings up the idle colour (deployment NAME-blue or NAME-green), checks
 * it, then points the Service's `color` selector at it, keeping the old
 * colour running for an instant switch back; `canary` moves traffic to
 * NAME-canary in steps by scaling it against the stable NAME (the Service
 * selects both), with a pause and an analysis (HTTP check or Prometheus
 * query) at each step; `shadow` runs NAME-shadow, which receives mirrored
 * traffic, for `duration`, then reports and scales it away. Every command
 * is logged; on failure, analysis failure or a stop request (timeout)
 * the rollback runs and its outcome goes to the log and the outputs.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/compare.h"
#include "dagd/httpc.h"
#include "kube.h"

/* Largest HTTP answer an analysis reads. */
#define ANALYSIS_BODY_MAX (1024 * 1024)
#define ANALYSIS_HTTP_TIMEOUT_MS 10000L

typedef struct deploy {
  dagd_op_ctx *ctx;
  const json_t *c;
  FILE *log;
  dagd_kube k;
  const char *deployment, *image, *service;
  char *container_spec;   /* "CONTAINER=IMAGE" for kubectl set image */
  char timeout[32];
  json_t *report;         /* analysis results */
  char reason[256];       /* why it failed, first cause wins */
} deploy;

/* --- pure parts --- */

/* A sample is [time, "value"]; Prometheus writes values as strings
 * ("NaN", "+Inf" included). */
static int sample_value(const json_t *sample, double *v) {
  const char *s = json_string_value(json_array_get(sample, 1));
  if (s == NULL) return -1;
  char *end;
  *v = strtod(s, &end);
  return end != s && *end == '\0' ? 0 : -1;
}

int dagd__deploy_prom_values(const char *body, double **values, size_t *n, dagd_err *err) {
  *values = NULL;
  *n = 0;
  json_error_t jerr;
  json_t *doc = json_loads(body ? body : "", 0, &jerr);
  int rc = 0;
  const char *status = json_string_value(json_object_get(doc, "status"));
  if (status == NULL || strcmp(status, "success") != 0) {
    const char *e = json_string_value(json_object_get(doc, "error"));
    rc = dagd_err_set(err, DAGD_ESYNTAX, "prometheus: %s", e ? e : doc ? "the query did not succeed" : jerr.text);
    goto out;
  }
  const json_t *data = json_object_get(doc, "data");
  const char *type = json_string_value(json_object_get(data, "resultType"));
  const json_t *result = json_object_get(data, "result");
  double v;
  if (type && strcmp(type, "scalar") == 0) {
    if (sample_value(result, &v) < 0) {
      rc = dagd_err_set(err, DAGD_ESYNTAX, "prometheus: a scalar without a number");
      goto out;
    }
    *values = dagd_malloc(sizeof(double));
    (*values)[(*n)++] = v;
  } else if (type && strcmp(type, "vector") == 0 && json_is_array(result)) {
    *values = dagd_calloc(json_array_size(result) + 1, sizeof(double));
    size_t i;
    json_t *x;
    json_array_foreach(result, i, x) {
      if (sample_value(json_object_get(x, "value"), &v) < 0) {
        free(*values);
        *values = NULL;
        *n = 0;
        rc = dagd_err_set(err, DAGD_ESYNTAX, "prometheus: sample %zu has no number", i);
        goto out;
      }
      (*values)[(*n)++] = v;
    }
  } else {
    rc = dagd_err_set(err, DAGD_ESYNTAX, "prometheus: result type %s is not a scalar or a vector",
                      type ? type : "(none)");
  }
out:
  json_decref(doc);
  return rc;
}

void dagd__deploy_canary_replicas(int total, int weight, int *canary, int *stable) {
  if (total < 1) total = 1;
  int c = (int)(((long long)total * weight + 99) / 100);
  if (c < 1) c = 1;
  if (c > total) c = total;
  *canary = c;
  *stable = total - c;
}

/* --- logging and kubectl --- */

static void say(deploy *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(deploy *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("deploy: ", d->log);
  vfprintf(d->log, fmt, ap);
  fputc('\n', d->log);
  fflush(d->log);
  va_end(ap);
}

static int failed(deploy *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failed(deploy *d, const char *fmt, ...) {
  if (d->reason[0] == '\0') {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
    va_end(ap);
    say(d, "FAILED: %s", d->reason);
  }
  return -1;
}

static int rollout_status(deploy *d, const char *dep) {
  char *t = dagd_asprintf("deployment/%s", dep);
  int rc = dagd__kube_run(&d->k, NULL, "rollout", "status", t, d->timeout, NULL);
  free(t);
  if (rc != 0) return failed(d, "deployment/%s did not become ready", dep);
  return dagd__kube_stopping() ? failed(d, "stopped (timeout or kill)") : 0;
}

/* For the rollback, which runs after a stop request too. */
static bool ready(deploy *d, const char *dep) {
  char *t = dagd_asprintf("deployment/%s", dep);
  int rc = dagd__kube_run(&d->k, NULL, "rollout", "status", t, d->timeout, NULL);
  free(t);
  return rc == 0;
}

static int set_image(deploy *d, const char *dep) {
  char *t = dagd_asprintf("deployment/%s", dep);
  int rc = dagd__kube_run(&d->k, NULL, "set", "image", t, d->container_spec, NULL);
  free(t);
  return rc != 0 ? failed(d, "cannot set the image of deployment/%s", dep) : 0;
}

static int scale(deploy *d, const char *dep, int replicas) {
  char *t = dagd_asprintf("deployment/%s", dep);
  char r[32];
  snprintf(r, sizeof(r), "--replicas=%d", replicas);
  int rc = dagd__kube_run(&d->k, NULL, "scale", t, r, NULL);
  free(t);
  return rc != 0 ? failed(d, "cannot scale deployment/%s to %d", dep, replicas) : 0;
}

/* Applies the rendered manifest (when the task has one), with vars added
 * to the template context ({{ color }}, {{ track }}, {{ deployment }}). */
static int apply_manifest(deploy *d, const json_t *vars) {
  const char *m = json_string_value(json_object_get(d->c, "manifest"));
  if (m == NULL) return 0;
  dagd_err err;
  dagd_err_init(&err);
  dagd_kube_doc doc;
  if (dagd__kube_render_file(d->ctx, m, vars, ".manifest", &doc, &err) < 0) {
    dagd__kube_doc_close(&doc);
    return failed(d, "%s", err.msg);
  }
  say(d, "rendered %s (a copy, secrets masked: %s)", m, doc.copy);
  int rc = dagd__kube_run_input(&d->k, NULL, doc.text, "apply", "-f", "-", NULL);
  dagd__kube_doc_close(&doc);
  return rc != 0 ? failed(d, "kubectl apply of %s failed", m) : 0;
}

static int get_text(deploy *d, char **value, ...) __attribute__((sentinel));
static int get_text(deploy *d, char **value, ...) {
  char *args[16];
  size_t n = 0;
  va_list ap;
  va_start(ap, value);
  for (char *a; (a = va_arg(ap, char *)) != NULL && n + 1 < DAGD_ARRAY_LEN(args);) args[n++] = a;
  va_end(ap);
  args[n] = NULL;
  dagd_buf out;
  dagd_buf_init(&out);
  int rc = dagd__kube_runv(&d->k, &out, NULL, args);
  size_t len = out.len;
  while (len > 0 && isspace((unsigned char)out.data[len - 1])) len--;
  *value = rc == 0 ? dagd_strndup(out.data ? out.data : "", len) : NULL;
  dagd_buf_close(&out);
  return rc == 0 ? 0 : -1;
}

/* The stable deployment's replica count: what the canary and shadow
 * size themselves against. */
static int current_replicas(deploy *d, int *total) {
  char *dep = dagd_asprintf("deployment/%s", d->deployment), *v = NULL;
  int rc = get_text(d, &v, "get", dep, "-o=jsonpath={.spec.replicas}", NULL);
  free(dep);
  char *end = NULL;
  long n = v ? strtol(v, &end, 10) : -1;
  if (rc < 0 || v == NULL || end == v || *end || n < 0 || n > 100000) {
    free(v);
    return failed(d, "cannot read the replicas of deployment/%s", d->deployment);
  }
  free(v);
  *total = n > 0 ? (int)n : 1;
  return 0;
}

/* --- analysis --- */

/* GET url; 0 with *status and body (NUL-ended), or <0 with "GET URL:
 * why" in err. */
static int http_get(const char *url, long *status, dagd_buf *body, dagd_err *err) {
  dagd_httpc_req req = {.url = url, .timeout_ms = ANALYSIS_HTTP_TIMEOUT_MS, .body_max = ANALYSIS_BODY_MAX};
  int rc = dagd_httpc_request(NULL, &req, status, body, err);
  dagd_buf_putc(body, '\0');
  body->len--;
  return rc;
}

static bool status_expected(const json_t *expect, long status) {
  if (json_is_integer(expect)) return json_integer_value(expect) == status;
  if (json_is_array(expect)) {
    size_t i;
    json_t *x;
    json_array_foreach(expect, i, x) if (json_integer_value(x) == status) return true;
    return false;
  }
  return status >= 200 && status < 300;
}

static void record(deploy *d, const char *when, const char *check, const char *detail, bool ok) {
  json_array_append_new(d->report, json_pack("{s:s, s:s, s:s, s:s}", "at", when, "check", check, "detail", detail,
                                             "result", ok ? "pass" : "fail"));
  say(d, "analysis at %s: %s %s: %s", when, check, ok ? "pass" : "FAIL", detail);
}

static bool http_check(deploy *d, const json_t *spec, const char *when) {
  const char *url = json_string_value(json_object_get(spec, "url"));
  const char *want = json_string_value(json_object_get(spec, "expect_body"));
  if (url == NULL) {
    record(d, when, "http", "no url", false);
    return false;
  }
  dagd_buf body;
  dagd_buf_init(&body);
  long status = 0;
  dagd_err err;
  dagd_err_init(&err);
  bool ok = false;
  char *detail;
  if (http_get(url, &status, &body, &err) < 0) {
    detail = dagd_strdup(err.msg);
  } else {
    ok = status_expected(json_object_get(spec, "expect_status"), status) &&
         (want == NULL || (body.data && strstr(body.data, want)));
    detail = dagd_asprintf("GET %s: status %ld%s%s%s", url, status, want ? ", body " : "",
                           want ? (body.data && strstr(body.data, want) ? "has \"" : "lacks \"") : "",
                           want ? want : "");
    if (want) {
      char *t = dagd_asprintf("%s\"", detail);
      free(detail);
      detail = t;
    }
  }
  record(d, when, "http", detail, ok);
  free(detail);
  dagd_buf_close(&body);
  return ok;
}

static bool prometheus_check(deploy *d, const json_t *spec, const char *when) {
  const char *base = json_string_value(json_object_get(spec, "url"));
  const char *query = json_string_value(json_object_get(spec, "query"));
  const char *thr = json_string_value(json_object_get(spec, "threshold"));
  dagd_cmp_expr t;
  dagd_err err;
  dagd_err_init(&err);
  if (base == NULL || query == NULL || thr == NULL) {
    record(d, when, "prometheus", "needs url, query and threshold", false);
    return false;
  }
  if (dagd_cmp_parse(thr, "threshold", false, &t, &err) < 0) {
    record(d, when, "prometheus", err.msg, false);
    return false;
  }
  char *q = dagd_httpc_escape(query);
  size_t blen = strlen(base);
  while (blen > 0 && base[blen - 1] == '/') blen--;
  char *url = dagd_asprintf("%.*s/api/v1/query?query=%s", (int)blen, base, q);
  free(q);
  dagd_buf body;
  dagd_buf_init(&body);
  long status = 0;
  bool ok = false;
  char *detail = NULL;
  double *vals = NULL;
  size_t n = 0;
  if (http_get(url, &status, &body, &err) < 0) {
    detail = dagd_asprintf("%s: %s", query, err.msg);
  } else if (dagd__deploy_prom_values(body.data, &vals, &n, &err) < 0) {
    detail = dagd_asprintf("%s: status %ld: %s", query, status, err.msg);
  } else if (n == 0) {
    detail = dagd_asprintf("%s: no data", query);
  } else {
    /* Every series must satisfy the threshold. */
    ok = true;
    dagd_buf b;
    dagd_buf_init(&b);
    dagd_buf_printf(&b, "%s = ", query);
    for (size_t i = 0; i < n; i++) {
      ok = ok && dagd_cmp_compare(t.op, vals[i], t.value);
      dagd_buf_printf(&b, "%s%g", i ? ", " : "", vals[i]);
    }
    dagd_buf_printf(&b, " (want %s)", thr);
    detail = dagd_buf_steal(&b);
  }
  record(d, when, "prometheus", detail, ok);
  free(detail);
  free(vals);
  free(url);
  dagd_buf_close(&body);
  return ok;
}

/* Runs the task's analysis (each http and prometheus check, a table or a
 * list of tables); 0 when every check passes or there is none. */
static int analyse(deploy *d, const char *when) {
  const json_t *a = json_object_get(d->c, "analysis");
  if (!json_is_object(a)) return 0;
  if (!json_object_get(a, "http") && !json_object_get(a, "prometheus"))
    return failed(d, "analysis has no http or prometheus check: nothing could pass it");
  static const char *kinds[] = {"http", "prometheus"};
  bool ok = true;
  for (size_t k = 0; k < DAGD_ARRAY_LEN(kinds); k++) {
    const json_t *spec = json_object_get(a, kinds[k]);
    json_t *list = json_is_array(spec) ? json_incref((json_t *)spec) : spec ? json_pack("[O]", spec) : json_array();
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x) {
      ok = (k == 0 ? http_check(d, x, when) : prometheus_check(d, x, when)) && ok;
    }
    json_decref(list);
  }
  return ok ? 0 : failed(d, "analysis failed at %s", when);
}

static int pause_for(deploy *d, const char *field, long long dflt) {
  const json_t *p = json_object_get(d->c, field);
  long long s = json_is_integer(p) ? (long long)json_integer_value(p) : dflt;
  if (s <= 0) return 0;
  say(d, "waiting %llds (%s)", s, field);
  return dagd__kube_sleep((double)s) < 0 ? failed(d, "stopped (timeout or kill)") : 0;
}

/* --- strategies --- */

static void rollback_result(deploy *d, bool ok, const char *what) {
  say(d, "rollback %s: %s", ok ? "succeeded" : "FAILED", what);
  dagd_op_output(d->ctx, "rollback", ok ? "succeeded" : "failed");
  dagd_op_output(d->ctx, "rollback_detail", what);
}

static bool rollback_wanted(deploy *d) {
  if (json_is_false(json_object_get(d->c, "rollback"))) {
    say(d, "rollback is off for this task: leaving the cluster as it is");
    dagd_op_output(d->ctx, "rollback", "disabled");
    return false;
  }
  say(d, "rolling back");
  return true;
}

static int rolling(deploy *d) {
  const char *manifest = json_string_value(json_object_get(d->c, "manifest"));
  dagd_kube_doc doc = {0};
  int rc = 0;
  if (manifest) {
    dagd_err err;
    dagd_err_init(&err);
    if (dagd__kube_render_file(d->ctx, manifest, NULL, ".manifest", &doc, &err) < 0) {
      dagd__kube_doc_close(&doc);
      return failed(d, "%s", err.msg);
    }
    say(d, "rendered %s (a copy, secrets masked: %s)", manifest, doc.copy);
  }
  const char *file = doc.text; /* kubectl reads it on stdin: `-f -` */
  char *target = d->deployment ? dagd_asprintf("deployment/%s", d->deployment) : NULL;
  if (file && dagd__kube_run_input(&d->k, NULL, file, "apply", "-f", "-", NULL) != 0)
    rc = failed(d, "kubectl apply of %s failed", manifest);
  if (rc == 0 && d->image && d->deployment) rc = set_image(d, d->deployment);
  if (rc == 0) {
    rc = target ? dagd__kube_run(&d->k, NULL, "rollout", "status", target, d->timeout, NULL)
                : dagd__kube_run_input(&d->k, NULL, file, "rollout", "status", "-f", "-", d->timeout, NULL);
    rc = rc != 0 ? failed(d, "the rollout did not complete") : dagd__kube_stopping() ? failed(d, "stopped") : 0;
  }
  if (rc == 0) rc = analyse(d, "rollout");
  if (rc < 0 && rollback_wanted(d)) {
    int u = target ? dagd__kube_run(&d->k, NULL, "rollout", "undo", target, NULL)
                   : dagd__kube_run_input(&d->k, NULL, file, "rollout", "undo", "-f", "-", NULL);
    if (u == 0)
      u = target ? dagd__kube_run(&d->k, NULL, "rollout", "status", target, d->timeout, NULL)
                 : dagd__kube_run_input(&d->k, NULL, file, "rollout", "status", "-f", "-", d->timeout, NULL);
    rollback_result(d, u == 0, u == 0 ? "rollout undone, the previous revision is ready" : "rollout undo failed");
  }
  free(target);
  dagd__kube_doc_close(&doc);
  return rc;
}

static int patch_selector(deploy *d, const char *color) {
  char *svc = dagd_asprintf("service/%s", d->service);
  char *patch = dagd_asprintf("{\"spec\":{\"selector\":{\"color\":\"%s\"}}}", color);
  int rc = dagd__kube_run(&d->k, NULL, "patch", svc, "--type=merge", "-p", patch, NULL);
  free(svc);
  free(patch);
  return rc != 0 ? failed(d, "cannot point service/%s at %s", d->service, color) : 0;
}

static int blue_green(deploy *d) {
  if (d->service == NULL) return failed(d, "blue_green needs \"service\"");
  char *svc = dagd_asprintf("service/%s", d->service), *live = NULL;
  int rc = get_text(d, &live, "get", svc, "-o=jsonpath={.spec.selector.color}", NULL);
  free(svc);
  if (rc < 0) return failed(d, "cannot read the selector of service/%s", d->service);
  bool back = json_is_true(json_object_get(d->c, "switch_back"));
  const char *target = strcmp(live, "blue") == 0 ? "green" : "blue";
  char *dep = dagd_asprintf("%s-%s", d->deployment, target);
  say(d, "service/%s selects %s; %s %s (deployment/%s)", d->service, live[0] ? live : "(no colour)",
      back ? "switching back to" : "deploying to the idle colour", target, dep);
  if (back && live[0] == '\0') rc = failed(d, "service/%s selects no colour: nothing to switch back to", d->service);
  if (rc == 0 && !back) {
    json_t *vars = json_pack("{s:s, s:s}", "color", target, "deployment", dep);
    rc = apply_manifest(d, vars);
    json_decref(vars);
    if (rc == 0 && d->image) rc = set_image(d, dep);
  }
  if (rc == 0) rc = rollout_status(d, dep);
  if (rc == 0 && !back) rc = analyse(d, target);
  bool switched = false;
  if (rc == 0) {
    rc = patch_selector(d, target);
    switched = rc == 0;
  }
  if (rc == 0 && dagd__kube_stopping()) rc = failed(d, "stopped (timeout or kill)");
  if (rc == 0) {
    say(d, "service/%s now selects %s; %s stays up for an instant switch back", d->service, target,
        live[0] ? live : "the old colour");
    dagd_op_output(d->ctx, "color", target);
    dagd_op_output(d->ctx, "previous_color", live);
  } else if (live[0] && rollback_wanted(d)) {
    /* The old colour was never scaled down: pointing the Service at it
     * again is the whole rollback. */
    char *what = dagd_asprintf("service/%s selects %s", d->service, live);
    bool ok = !switched || patch_selector(d, live) == 0;
    rollback_result(d, ok, what);
    free(what);
    dagd_op_output(d->ctx, "color", live);
  }
  free(dep);
  free(live);
  return rc;
}

static int canary(deploy *d) {
  if (d->image == NULL) return failed(d, "canary needs \"image\"");
  int total;
  if (current_replicas(d, &total) < 0) return -1;
  char *can = dagd_asprintf("%s-canary", d->deployment);
  json_t *vars = json_pack("{s:s, s:s}", "track", "canary", "deployment", can);
  int rc = apply_manifest(d, vars);
  json_decref(vars);
  if (rc == 0) rc = set_image(d, can);
  const json_t *steps = json_object_get(d->c, "steps");
  json_t *dflt = json_pack("[i,i,i]", 10, 50, 100);
  if (!json_is_array(steps) || json_array_size(steps) == 0) steps = dflt;
  size_t i;
  json_t *x;
  char at[32] = "";
  json_array_foreach(steps, i, x) {
    if (rc < 0) break;
    int w = (int)json_integer_value(x), c, s;
    dagd__deploy_canary_replicas(total, w, &c, &s);
    snprintf(at, sizeof(at), "%d%%", w);
    say(d, "step %zu: %d%% of traffic to the canary (%d canary, %d stable replicas of %d)", i + 1, w, c, s, total);
    dagd_op_output(d->ctx, "step", at);
    rc = scale(d, can, c);
    if (rc == 0) rc = rollout_status(d, can);
    if (rc == 0) rc = scale(d, d->deployment, s);
    if (rc == 0) rc = pause_for(d, "pause", 0);
    if (rc == 0) rc = analyse(d, at);
  }
  json_decref(dflt);
  if (rc == 0) {
    say(d, "promoting: the stable deployment takes the new image");
    rc = set_image(d, d->deployment);
    if (rc == 0) rc = scale(d, d->deployment, total);
    if (rc == 0) rc = rollout_status(d, d->deployment);
    if (rc == 0) rc = scale(d, can, 0);
  }
  if (rc < 0 && rollback_wanted(d)) {
    /* The stable deployment back to full size first, then the canary
     * away: capacity never drops below what it was. */
    bool ok = scale(d, d->deployment, total) == 0 && ready(d, d->deployment) && scale(d, can, 0) == 0;
    char *what = dagd_asprintf("deployment/%s at %d replicas, deployment/%s at 0", d->deployment, total, can);
    rollback_result(d, ok, what);
    free(what);
  }
  free(can);
  return rc;
}

static int shadow(deploy *d) {
  if (d->image == NULL) return failed(d, "shadow needs \"image\"");
  int total;
  if (current_replicas(d, &total) < 0) return -1;
  char *sh = dagd_asprintf("%s-shadow", d->deployment);
  json_t *vars = json_pack("{s:s, s:s}", "track", "shadow", "deployment", sh);
  int rc = apply_manifest(d, vars);
  json_decref(vars);
  if (rc == 0) rc = set_image(d, sh);
  if (rc == 0) rc = scale(d, sh, total);
  if (rc == 0) rc = rollout_status(d, sh);
  if (rc == 0) {
    say(d, "deployment/%s receives mirrored traffic; its answers are discarded", sh);
    rc = pause_for(d, "duration", 60);
  }
  if (rc == 0) rc = analyse(d, "shadow");
  /* The shadow never served anyone: whatever happened, it goes away. */
  bool ok = scale(d, sh, 0) == 0;
  say(d, "deployment/%s scaled to 0: %s", sh, ok ? "done" : "FAILED");
  dagd_op_output(d->ctx, "shadow_removed", ok ? "true" : "false");
  if (rc == 0 && !ok) rc = -1;
  free(sh);
  return rc;
}

int dagd_operator_deploy(dagd_op_ctx *ctx) {
  deploy d = {.ctx = ctx, .c = ctx->config, .log = ctx->log, .report = json_array()};
  dagd__kube_catch_stop();
  dagd__kube_init(&d.k, d.c, ctx->log);
  dagd__kube_timeout_flag(d.c, d.timeout);
  d.deployment = json_string_value(json_object_get(d.c, "deployment"));
  d.image = json_string_value(json_object_get(d.c, "image"));
  d.service = json_string_value(json_object_get(d.c, "service"));
  const char *container = json_string_value(json_object_get(d.c, "container"));
  d.container_spec = dagd_asprintf("%s=%s", container ? container : "*", d.image ? d.image : "");
  const char *strategy = json_string_value(json_object_get(d.c, "strategy"));
  if (strategy == NULL) strategy = "rolling";
  say(&d, "strategy %s%s%s%s%s", strategy, d.deployment ? ", deployment " : "", d.deployment ? d.deployment : "",
      d.image ? ", image " : "", d.image ? d.image : "");
  dagd_op_output(ctx, "strategy", strategy);
  int rc;
  if (strcmp(strategy, "rolling") == 0) rc = rolling(&d);
  else if (d.deployment == NULL) rc = failed(&d, "strategy %s needs \"deployment\"", strategy);
  else if (strcmp(strategy, "blue_green") == 0) rc = blue_green(&d);
  else if (strcmp(strategy, "canary") == 0) rc = canary(&d);
  else if (strcmp(strategy, "shadow") == 0) rc = shadow(&d);
  else rc = failed(&d, "unknown strategy \"%s\"", strategy);
  if (json_array_size(d.report)) {
    char *r = json_dumps(d.report, JSON_COMPACT);
    dagd_op_output(ctx, "analysis", r ? r : "[]");
    free(r);
  }
  dagd_op_output(ctx, "result", rc == 0 ? "succeeded" : "failed");
  if (rc < 0) dagd_op_output(ctx, "reason", d.reason);
  say(&d, "%s%s%s", rc == 0 ? "succeeded" : "FAILED", rc < 0 ? ": " : "", rc < 0 ? d.reason : "");
  json_decref(d.report);
  free(d.container_spec);
  dagd__kube_close(&d.k);
  return rc == 0 ? 0 : 1;
}
