/* The Kubernetes executor: a docker task's try run as a Kubernetes Job
 * through kubectl. The Job's name is fixed per try and it carries the
 * try's labels, so a second run of this operator for the same try (the
 * daemon restarted and started it again) finds the Job by label instead of
 * creating another; the dagd.key label, a hash of the exact ids, keeps
 * apart runs whose ids the other labels fold together. Its logs stream
 * into the task log, the container's exit code becomes the operator's,
 * its termination message (the pod's $DAGD_OUTPUT) becomes the task's
 * outputs, and a SIGTERM (timeout, kill) deletes the Job before the
 * operator exits.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/command.h"
#include "kube.h"

/* Seconds between two looks at the pod while it has not finished. */
#define POLL_SECONDS 1.0
/* Finished Jobs stay a day for `kubectl describe`, then the cluster
 * removes them. */
#define JOB_TTL_SECONDS 86400

static uint32_t fnv1a(uint32_t h, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

char *dagd__k8s_try_key(const char *dag_id, const char *run_id, const char *task_id, int try_number) {
  /* The hash covers the exact ids (NUL-separated), so runs that differ only
   * in characters the name cannot hold still get different Jobs. */
  uint32_t h = 2166136261u;
  h = fnv1a(h, dag_id, strlen(dag_id) + 1);
  h = fnv1a(h, run_id, strlen(run_id) + 1);
  h = fnv1a(h, task_id, strlen(task_id) + 1);
  char tn[16];
  snprintf(tn, sizeof(tn), "%d", try_number);
  h = fnv1a(h, tn, strlen(tn));
  return dagd_asprintf("%08x", h);
}

char *dagd__k8s_job_name(const char *dag_id, const char *run_id, const char *task_id, int try_number) {
  char *full = dagd_asprintf("%s-%s-%s-%d", dag_id, run_id, task_id, try_number);
  char *key = dagd__k8s_try_key(dag_id, run_id, task_id, try_number);
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_buf_puts(&b, "dagd-");
  /* 63 = "dagd-" + at most 49 + "-" + 8 hex. */
  for (const char *p = full; *p && b.len < 5 + 49; p++) {
    char c = (char)tolower((unsigned char)*p);
    if (!(isalnum((unsigned char)c))) c = '-';
    if (c == '-' && b.data[b.len - 1] == '-') continue;
    dagd_buf_putc(&b, c);
  }
  while (b.data[b.len - 1] == '-') b.data[--b.len] = '\0';
  dagd_buf_printf(&b, "-%s", key);
  free(key);
  free(full);
  return dagd_buf_steal(&b);
}

char *dagd__k8s_label_value(const char *s) {
  char *v = dagd_strndup(s, 63);
  for (char *p = v; *p; p++)
    if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.')) *p = '-';
  char *a = v;
  while (*a && !isalnum((unsigned char)*a)) a++;
  size_t n = strlen(a);
  while (n > 0 && !isalnum((unsigned char)a[n - 1])) n--;
  char *out = n ? dagd_strndup(a, n) : dagd_strdup("x");
  free(v);
  return out;
}

char *dagd__k8s_quantity(const json_t *memory) {
  if (json_is_integer(memory) && json_integer_value(memory) > 0)
    return dagd_asprintf("%lld", (long long)json_integer_value(memory));
  const char *s = json_string_value(memory);
  if (s == NULL || !isdigit((unsigned char)*s)) return NULL;
  size_t n = strspn(s, "0123456789");
  const char *unit = NULL;
  switch (tolower((unsigned char)s[n])) {
  case '\0': case 'b': unit = ""; break;
  case 'k': unit = "Ki"; break;
  case 'm': unit = "Mi"; break;
  case 'g': unit = "Gi"; break;
  default: return NULL;
  }
  if (s[n] && s[n + 1]) return NULL;
  return dagd_asprintf("%.*s%s", (int)n, s, unit);
}

void dagd__k8s_merge(json_t *target, const json_t *patch) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)patch, k, v) {
    json_t *cur = json_object_get(target, k);
    if (json_is_object(cur) && json_is_object(v)) dagd__k8s_merge(cur, v);
    else json_object_set_new(target, k, json_deep_copy(v));
  }
}

static json_t *string_array(const json_t *v) {
  json_t *a = json_array();
  if (json_is_string(v)) json_array_append_new(a, json_string(json_string_value(v)));
  size_t i;
  json_t *x;
  if (json_is_array(v)) json_array_foreach(v, i, x) {
      if (json_is_string(x)) json_array_append_new(a, json_string(json_string_value(x)));
      else if (json_is_number(x)) json_array_append_new(a, json_sprintf("%g", json_number_value(x)));
    }
  return a;
}

json_t *dagd__k8s_job_manifest(const json_t *config, const json_t *env, const char *name, const json_t *labels) {
  json_t *container = json_pack("{s:s, s:s, s:s}", "name", "task", "image",
                                json_string_value(json_object_get(config, "image")) ? json_string_value(json_object_get(config, "image")) : "",
                                "terminationMessagePolicy", "File");
  const json_t *ep = json_object_get(config, "entrypoint");
  if (ep) json_object_set_new(container, "command", string_array(ep));
  const json_t *cmd = json_object_get(config, "cmd");
  if (cmd) json_object_set_new(container, "args", string_array(cmd));
  const char *wd = json_string_value(json_object_get(config, "workdir"));
  if (wd) json_object_set_new(container, "workingDir", json_string(wd));
  const char *pull = json_string_value(json_object_get(config, "pull"));
  if (pull) {
    const char *policy = strcmp(pull, "always") == 0 ? "Always" : strcmp(pull, "never") == 0 ? "Never" : "IfNotPresent";
    json_object_set_new(container, "imagePullPolicy", json_string(policy));
  }
  json_t *envl = json_array();
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)env, k, v) {
    if (json_is_string(v)) json_array_append_new(envl, json_pack("{s:s, s:s}", "name", k, "value", json_string_value(v)));
  }
  json_object_set_new(container, "env", envl);
  json_t *req = json_object(), *lim = json_object();
  const json_t *cpus = json_object_get(config, "cpus");
  if (json_is_number(cpus) && json_number_value(cpus) > 0) {
    json_object_set_new(req, "cpu", json_sprintf("%g", json_number_value(cpus)));
    json_object_set_new(lim, "cpu", json_sprintf("%g", json_number_value(cpus)));
  }
  char *mem = dagd__k8s_quantity(json_object_get(config, "memory"));
  if (mem) {
    json_object_set_new(req, "memory", json_string(mem));
    json_object_set_new(lim, "memory", json_string(mem));
    free(mem);
  }
  const json_t *gpus = json_object_get(config, "gpus");
  if (json_is_integer(gpus) && json_integer_value(gpus) > 0)
    json_object_set_new(lim, "nvidia.com/gpu", json_sprintf("%lld", (long long)json_integer_value(gpus)));
  json_t *resources = json_object();
  if (json_object_size(req)) json_object_set(resources, "requests", req);
  if (json_object_size(lim)) json_object_set(resources, "limits", lim);
  json_decref(req);
  json_decref(lim);
  json_object_set_new(container, "resources", resources);
  const char *user = json_string_value(json_object_get(config, "user"));
  if (user && isdigit((unsigned char)*user)) {
    /* docker's "uid[:gid]"; names have no meaning in a pod. */
    char *colon = strchr(user, ':');
    json_t *sc = json_pack("{s:I}", "runAsUser", (json_int_t)strtoll(user, NULL, 10));
    if (colon && isdigit((unsigned char)colon[1]))
      json_object_set_new(sc, "runAsGroup", json_integer(strtoll(colon + 1, NULL, 10)));
    json_object_set_new(container, "securityContext", sc);
  }
  json_t *pod = json_pack("{s:{s:O}, s:{s:s, s:[o]}}", "metadata", "labels", labels, "spec", "restartPolicy", "Never",
                          "containers", container);
  const json_t *override = json_object_get(config, "pod_template");
  if (json_is_object(override)) dagd__k8s_merge(pod, override);
  return json_pack("{s:s, s:s, s:{s:s, s:O}, s:{s:i, s:i, s:o}}", "apiVersion", "batch/v1", "kind", "Job",
                   "metadata", "name", name, "labels", labels, "spec", "backoffLimit", 0,
                   "ttlSecondsAfterFinished", JOB_TTL_SECONDS, "template", pod);
}

/* The container's exit code and termination message, once it has
 * terminated: 1 when done, 0 when not yet (or not known yet). */
static int pod_result(dagd_kube *k, const char *name, int *code, dagd_buf *message) {
  char *sel = dagd_asprintf("job-name=%s", name);
  const char *path = "-o=jsonpath={.items[0].status.containerStatuses[0].state.terminated.exitCode}{\"\\n\"}"
                     "{.items[0].status.containerStatuses[0].state.terminated.message}";
  dagd_buf out;
  dagd_buf_init(&out);
  int rc = dagd__kube_run(k, &out, "get", "pod", "-l", sel, path, NULL);
  free(sel);
  int done = 0;
  if (rc == 0 && out.data && isdigit((unsigned char)out.data[0])) {
    char *end;
    long c = strtol(out.data, &end, 10);
    if (*end == '\n' || *end == '\0') {
      *code = (int)(c & 0xff);
      dagd_buf_reset(message);
      if (*end == '\n') dagd_buf_puts(message, end + 1);
      done = 1;
    }
  }
  dagd_buf_close(&out);
  return done;
}

static void set_outputs(dagd_op_ctx *ctx, const dagd_buf *message) {
  if (message->len == 0) return;
  json_t *outs = NULL;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_command_parse_outputs(message->data, message->len, &outs, &err) < 0) {
    fprintf(ctx->log, "the pod's termination message is not outputs (%s): ignored\n", err.msg);
    return;
  }
  const char *k;
  json_t *v;
  json_object_foreach(outs, k, v) dagd_op_output(ctx, k, json_string_value(v));
  json_decref(outs);
}

int dagd_operator_k8sjob(dagd_op_ctx *ctx) {
  const json_t *ctxv = ctx->context;
  const char *run_id = json_string_value(json_object_get(ctxv, "run_id"));
  int try_number = (int)json_integer_value(json_object_get(ctx->spec, "try_number"));
  if (ctx->dag_id == NULL || ctx->task_id == NULL || run_id == NULL) {
    fprintf(ctx->log, "k8s job: the spec lacks the try's ids\n");
    return 1;
  }
  dagd__kube_catch_stop();
  dagd_kube k;
  dagd__kube_init(&k, ctx->config, ctx->log);
  char *name = dagd__k8s_job_name(ctx->dag_id, run_id, ctx->task_id, try_number);
  char *ldag = dagd__k8s_label_value(ctx->dag_id), *lrun = dagd__k8s_label_value(run_id);
  char *ltask = dagd__k8s_label_value(ctx->task_id);
  char *key = dagd__k8s_try_key(ctx->dag_id, run_id, ctx->task_id, try_number);
  json_t *labels = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "dagd.dag", ldag, "dagd.run", lrun, "dagd.task", ltask,
                             "dagd.try", json_sprintf("%d", try_number), "dagd.key", key,
                             "app.kubernetes.io/managed-by", "dagd");
  char *selector =
      dagd_asprintf("dagd.dag=%s,dagd.run=%s,dagd.task=%s,dagd.try=%d,dagd.key=%s", ldag, lrun, ltask, try_number, key);
  free(key);
  char *job = NULL;
  dagd_kube_doc doc = {0};
  dagd_buf out, message;
  dagd_buf_init(&out);
  dagd_buf_init(&message);
  int rc = 1, code = -1;
  if (dagd__kube_run(&k, &out, "get", "job", "-l", selector, "-o", "name", NULL) != 0) goto out;
  if (out.data && out.len) {
    /* Already there: this try was started before (the daemon restarted). */
    size_t n = strcspn(out.data, "\n");
    const char *slash = memchr(out.data, '/', n);
    char *found = slash ? dagd_strndup(slash + 1, (size_t)(out.data + n - slash - 1)) : dagd_strndup(out.data, n);
    fprintf(ctx->log, "re-adopting Job %s of this try\n", found);
    free(name);
    name = found;
  } else {
    json_t *env = json_deep_copy(json_object_get(ctx->spec, "env"));
    if (!json_is_object(env)) {
      json_decref(env);
      env = json_object();
    }
    json_t *m = dagd__k8s_job_manifest(ctx->config, env, name, labels);
    json_decref(env);
    dagd_err err;
    dagd_err_init(&err);
    int w = dagd__kube_doc_set(ctx, json_dumps(m, JSON_INDENT(2)), ".job.json", &doc, &err);
    json_decref(m);
    if (w < 0) {
      fprintf(ctx->log, "%s\n", err.msg);
      goto out;
    }
    if (dagd__kube_run_input(&k, NULL, doc.text, "apply", "-f", "-", NULL) != 0) goto out;
  }
  job = dagd_asprintf("job/%s", name);
  bool streamed = false;
  while (!dagd__kube_stopping()) {
    /* logs -f fails while the pod is not running yet; it is tried again
     * until it has streamed once. */
    if (!streamed) streamed = dagd__kube_run(&k, NULL, "logs", "-f", job, NULL) == 0;
    if (dagd__kube_stopping()) break;
    if (pod_result(&k, name, &code, &message)) break;
    dagd__kube_sleep(POLL_SECONDS);
  }
  if (dagd__kube_stopping()) {
    fprintf(ctx->log, "stopped: deleting Job %s\n", name);
    int d = dagd__kube_run(&k, NULL, "delete", "job", name, "--ignore-not-found", NULL);
    dagd_op_output(ctx, "job_deleted", d == 0 ? "true" : "false");
    goto out;
  }
  set_outputs(ctx, &message);
  fprintf(ctx->log, "Job %s: the container exited with %d\n", name, code);
  rc = code;
out:
  dagd_op_output(ctx, "job", name);
  json_decref(labels);
  free(ldag);
  free(lrun);
  free(ltask);
  free(selector);
  dagd__kube_doc_close(&doc);
  free(job);
  free(name);
  dagd_buf_close(&out);
  dagd_buf_close(&message);
  dagd__kube_close(&k);
  return rc;
}
