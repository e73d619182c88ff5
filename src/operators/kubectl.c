/* The kubectl operator when it needs more than one command line: `apply`
 * of a templated manifest (rendered with the try's context into a file in
 * the try's folder, then `kubectl apply -f` of that file) and `wait` for
 * what it applied (rollout status for workloads, condition=complete for
 * Jobs) with its own wait_timeout. Also the kubectl runner the deploy and
 * Kubernetes Job operators share.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dagd/mask.h"
#include "dagd/command.h"
#include "dagd/template.h"
#include "kube.h"

extern char **environ;

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig) {
  (void)sig;
  stop_requested = 1;
}

void dagd__kube_catch_stop(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  /* No SA_RESTART: a sleep or a wait returns at once so cleanup starts. */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

bool dagd__kube_stopping(void) { return stop_requested != 0; }

int dagd__kube_sleep(double seconds) {
  if (seconds <= 0) return stop_requested ? -1 : 0;
  struct timespec left = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (!stop_requested && nanosleep(&left, &left) < 0 && errno == EINTR) {}
  return stop_requested ? -1 : 0;
}

void dagd__kube_init(dagd_kube *k, const json_t *config, FILE *log) {
  memset(k, 0, sizeof(*k));
  k->log = log;
  k->prefix = dagd_calloc(2 * dagd_kubectl_n_flags + 2, sizeof(char *));
  k->prefix[k->n_prefix++] = dagd_strdup("kubectl");
  for (size_t i = 0; i < dagd_kubectl_n_flags; i++) {
    const char *v = json_string_value(json_object_get(config, dagd_kubectl_flags[i].key));
    if (v == NULL || *v == '\0') continue;
    k->prefix[k->n_prefix++] = dagd_strdup(dagd_kubectl_flags[i].flag);
    k->prefix[k->n_prefix++] = dagd_strdup(v);
  }
}

void dagd__kube_close(dagd_kube *k) {
  for (size_t i = 0; i < k->n_prefix; i++) free(k->prefix[i]);
  free(k->prefix);
  memset(k, 0, sizeof(*k));
}

int dagd__kube_runv(dagd_kube *k, dagd_buf *out, const char *input, char *const *args) {
  size_t n = 0;
  while (args[n]) n++;
  char **argv = dagd_calloc(k->n_prefix + n + 1, sizeof(char *));
  memcpy(argv, k->prefix, k->n_prefix * sizeof(char *));
  memcpy(argv + k->n_prefix, args, n * sizeof(char *));
  fputs("$", k->log);
  for (char **a = argv; *a; a++) fprintf(k->log, " %s", *a);
  fputc('\n', k->log);
  fflush(k->log);
  int pipefd[2] = {-1, -1}, infd = -1;
  int rc = -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (input) {
    /* From memory, not a pipe: kubectl may answer before reading it all. */
    if ((infd = dagd_memory_file("dagd-kubectl-input", input, strlen(input))) < 0) {
      fprintf(k->log, "cannot run kubectl: its input: %s\n", strerror(errno));
      goto done;
    }
    posix_spawn_file_actions_adddup2(&fa, infd, 0);
  } else {
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  }
  if (out) {
    dagd_buf_reset(out);
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
      fprintf(k->log, "cannot run kubectl: pipe: %s\n", strerror(errno));
      goto done;
    }
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  } else {
    /* The log is our stdout: kubectl writes to it directly (logs -f). */
    posix_spawn_file_actions_adddup2(&fa, fileno(k->log), 1);
  }
  pid_t pid;
  int e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  if (e != 0) {
    fprintf(k->log, "cannot run kubectl: %s\n", strerror(e));
    goto done;
  }
  if (out) {
    close(pipefd[1]);
    pipefd[1] = -1;
    char buf[4096];
    for (;;) {
      ssize_t r = read(pipefd[0], buf, sizeof(buf));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      dagd_buf_append(out, buf, (size_t)r);
    }
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      fprintf(k->log, "waitpid: %s\n", strerror(errno));
      goto done;
    }
  }
  rc = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  if (out && out->len) {
    fwrite(out->data, 1, out->len, k->log);
    if (out->data[out->len - 1] != '\n') fputc('\n', k->log);
  }
  if (rc != 0) fprintf(k->log, "kubectl exited with status %d\n", rc);
done:
  fflush(k->log);
  posix_spawn_file_actions_destroy(&fa);
  if (pipefd[0] >= 0) close(pipefd[0]);
  if (pipefd[1] >= 0) close(pipefd[1]);
  if (infd >= 0) close(infd);
  free(argv);
  return rc;
}

static void collect_args(char **args, size_t cap, va_list ap) {
  size_t n = 0;
  for (char *a; (a = va_arg(ap, char *)) != NULL && n + 1 < cap;) args[n++] = a;
  args[n] = NULL;
}

int dagd__kube_run(dagd_kube *k, dagd_buf *out, ...) {
  char *args[32];
  va_list ap;
  va_start(ap, out);
  collect_args(args, DAGD_ARRAY_LEN(args), ap);
  va_end(ap);
  return dagd__kube_runv(k, out, NULL, args);
}

int dagd__kube_run_input(dagd_kube *k, dagd_buf *out, const char *input, ...) {
  char *args[32];
  va_list ap;
  va_start(ap, input);
  collect_args(args, DAGD_ARRAY_LEN(args), ap);
  va_end(ap);
  return dagd__kube_runv(k, out, input, args);
}

char *dagd__kube_scratch_path(const char *suffix) {
  const char *o = getenv("DAGD_OUTPUT");
  if (o && dagd_str_has_suffix(o, ".out"))
    return dagd_asprintf("%.*s%s", (int)(strlen(o) - 4), o, suffix);
  const char *tmp = getenv("TMPDIR");
  return dagd_asprintf("%s/dagd-%ld%s", tmp && *tmp ? tmp : "/tmp", (long)getpid(), suffix);
}

int dagd__kube_doc_set(const dagd_op_ctx *ctx, char *text, const char *suffix, dagd_kube_doc *doc, dagd_err *err) {
  memset(doc, 0, sizeof(*doc));
  if (text == NULL) return dagd_err_set(err, DAGD_EINVAL, "an empty %s manifest", suffix);
  doc->text = text;
  doc->copy = dagd__kube_scratch_path(suffix);
  dagd_buf masked;
  dagd_buf_init(&masked);
  dagd_buf_puts(&masked, text);
  if (ctx->secrets) dagd_mask_text(ctx->secrets, &masked);
  int fd = open(doc->copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && (masked.len == 0 || write(fd, masked.data, masked.len) == (ssize_t)masked.len);
  if (fd >= 0 && close(fd) < 0) ok = false;
  dagd_buf_close(&masked);
  if (!ok) return dagd_err_set(err, DAGD_EIO, "cannot write %s: %s", doc->copy, strerror(errno));
  return 0;
}

void dagd__kube_doc_close(dagd_kube_doc *doc) {
  if (doc->text) explicit_bzero(doc->text, strlen(doc->text));
  free(doc->text);
  free(doc->copy);
  memset(doc, 0, sizeof(*doc));
}

int dagd__kube_render_file(const dagd_op_ctx *ctx, const char *path, const json_t *vars, const char *suffix,
                           dagd_kube_doc *doc, dagd_err *err) {
  memset(doc, 0, sizeof(*doc));
  json_t *tctx = json_deep_copy(ctx->context ? ctx->context : json_object());
  if (!json_is_object(tctx)) {
    json_decref(tctx);
    tctx = json_object();
  }
  if (vars) json_object_update(tctx, (json_t *)vars);
  dagd_buf src, res;
  dagd_buf_init(&src);
  dagd_buf_init(&res);
  char **seen = NULL;
  size_t n_seen = 0;
  int rc = 0;
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    rc = dagd_err_set(err, DAGD_ENOENT, "manifest %s: %s", path, strerror(errno));
    goto out;
  }
  char chunk[4096];
  size_t r;
  while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0) dagd_buf_append(&src, chunk, r);
  fclose(f);
  dagd_buf_putc(&src, '\0');
  dagd_template_opts opts = {.secret = dagd_command_secret_from_env, .secrets_seen = &seen, .n_secrets_seen = &n_seen};
  dagd_err sub;
  dagd_err_init(&sub);
  if (dagd_template_render(src.data, tctx, &opts, &res, &sub) < 0) {
    rc = dagd_err_set(err, sub.code, "manifest %s: %s", path, sub.msg);
    goto out;
  }
  /* What the manifest rendered is masked in its copy, and in the log. */
  for (size_t i = 0; i < n_seen && ctx->secrets; i++) dagd_mask_add_secret(ctx->secrets, seen[i]);
  dagd_buf_putc(&res, '\0'); /* an empty manifest is still a string */
  res.len--;
  rc = dagd__kube_doc_set(ctx, dagd_buf_steal(&res), suffix, doc, err);
out:
  for (size_t i = 0; i < n_seen; i++) {
    explicit_bzero(seen[i], strlen(seen[i]));
    free(seen[i]);
  }
  free(seen);
  dagd_buf_close(&src);
  dagd_buf_close(&res);
  json_decref(tctx);
  return rc;
}

void dagd__kube_timeout_flag(const json_t *config, char out[32]) {
  const json_t *t = json_object_get(config, "wait_timeout");
  long long s = json_is_integer(t) ? (long long)json_integer_value(t) : 300;
  snprintf(out, 32, "--timeout=%llds", s > 0 ? s : 300);
}

/* "deployment.apps/web" -> "deployment/web": the names the commands in
 * the log and the docs use. */
static char *short_name(const char *full, size_t len) {
  const char *slash = memchr(full, '/', len);
  const char *dot = memchr(full, '.', len);
  if (slash == NULL || dot == NULL || dot > slash) return dagd_strndup(full, len);
  return dagd_asprintf("%.*s%.*s", (int)(dot - full), full, (int)(full + len - slash), slash);
}

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Waits for one object: a workload's rollout, a Job's completion, or the
 * condition the task asked for. Others need no wait (0). */
static int wait_object(dagd_kube *k, const char *obj, const char *cond, const char *timeout) {
  if (cond) {
    char *f = dagd_asprintf("--for=%s", cond);
    int rc = dagd__kube_run(k, NULL, "wait", f, obj, timeout, NULL);
    free(f);
    return rc;
  }
  if (has_prefix(obj, "deployment/") || has_prefix(obj, "statefulset/") || has_prefix(obj, "daemonset/"))
    return dagd__kube_run(k, NULL, "rollout", "status", obj, timeout, NULL);
  if (has_prefix(obj, "job/")) return dagd__kube_run(k, NULL, "wait", "--for=condition=complete", obj, timeout, NULL);
  return 0;
}

int dagd_operator_kubectl(dagd_op_ctx *ctx) {
  const json_t *c = ctx->config;
  dagd_kube k;
  dagd__kube_init(&k, c, ctx->log);
  dagd__kube_catch_stop();
  dagd_buf out, names;
  dagd_buf_init(&out);
  dagd_buf_init(&names);
  int rc = 1;
  char timeout[32];
  dagd__kube_timeout_flag(c, timeout);
  const json_t *args = json_object_get(c, "args");
  const char *apply = json_string_value(json_object_get(c, "apply"));
  if (json_is_array(args)) {
    size_t n = json_array_size(args);
    char **v = dagd_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
      const json_t *a = json_array_get(args, i);
      v[i] = (char *)(json_is_string(a) ? json_string_value(a) : "");
    }
    int r = dagd__kube_runv(&k, NULL, NULL, v);
    free(v);
    if (r != 0) goto out;
  } else if (apply) {
    dagd_err err;
    dagd_err_init(&err);
    dagd_kube_doc doc;
    if (dagd__kube_render_file(ctx, apply, NULL, ".manifest", &doc, &err) < 0) {
      fprintf(ctx->log, "kubectl: %s\n", err.msg);
      dagd__kube_doc_close(&doc);
      goto out;
    }
    fprintf(ctx->log, "rendered %s (a copy, secrets masked: %s)\n", apply, doc.copy);
    int r = dagd__kube_run_input(&k, &out, doc.text, "apply", "-f", "-", "-o", "name", NULL);
    dagd__kube_doc_close(&doc);
    if (r != 0) goto out;
    /* One applied object per line: the names to wait for. */
    for (const char *p = out.data ? out.data : ""; *p;) {
      const char *e = strchr(p, '\n');
      size_t len = e ? (size_t)(e - p) : strlen(p);
      if (len > 0) {
        char *s = short_name(p, len);
        dagd_buf_printf(&names, "%s%s", names.len ? " " : "", s);
        free(s);
      }
      p += len + (e != NULL);
    }
  }
  dagd_op_output(ctx, "objects", names.data ? names.data : "");
  const json_t *w = json_object_get(c, "wait");
  const char *cond = NULL;
  bool each = json_is_true(w);
  if (json_is_object(w)) {
    /* Explicit targets: { rollout = "deployment/web" }, { job = "migrate" },
     * { ["for"] = "condition=Available", resource = "deployment/web" };
     * a condition with no resource applies to each applied object. */
    const char *rollout = json_string_value(json_object_get(w, "rollout"));
    const char *job = json_string_value(json_object_get(w, "job"));
    const char *res = json_string_value(json_object_get(w, "resource"));
    cond = json_string_value(json_object_get(w, "for"));
    if (rollout && dagd__kube_run(&k, NULL, "rollout", "status", rollout, timeout, NULL) != 0) goto out;
    if (job) {
      char *j = strchr(job, '/') ? dagd_strdup(job) : dagd_asprintf("job/%s", job);
      int r = dagd__kube_run(&k, NULL, "wait", "--for=condition=complete", j, timeout, NULL);
      free(j);
      if (r != 0) goto out;
    }
    if (cond && res && wait_object(&k, res, cond, timeout) != 0) goto out;
    each = cond && !res;
  }
  if (each) {
    char *list = dagd_strdup(names.data ? names.data : "");
    int bad = 0;
    for (char *save = NULL, *obj = strtok_r(list, " ", &save); obj && !bad; obj = strtok_r(NULL, " ", &save))
      bad = wait_object(&k, obj, cond, timeout) != 0 || dagd__kube_stopping();
    free(list);
    if (bad) goto out;
  }
  rc = dagd__kube_stopping() ? 1 : 0;
out:
  if (dagd__kube_stopping()) fprintf(ctx->log, "kubectl: stopped\n");
  dagd_buf_close(&out);
  dagd_buf_close(&names);
  dagd__kube_close(&k);
  return rc;
}
