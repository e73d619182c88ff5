/* Building a try's command from the model: the template context, argv per
 * operator (shell, kubectl, and `dagd op SPEC` for the others, docker
 * included), the environment, and the parsing of $DAGD_OUTPUT.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/err.h"
#include "dagd/command.h"
#include "dagd/time.h"
#include "dagd/tz.h"
#include "dagd/util.h"
#include "command/internal.h"

void dagd__strv_push(strv *s, char *owned) {
  if (s->n + 2 > s->cap) {
    s->cap = s->cap ? s->cap * 2 : 16;
    s->v = dagd_realloc(s->v, s->cap * sizeof(char *));
  }
  s->v[s->n++] = owned;
  s->v[s->n] = NULL;
}

void dagd__strv_free(char **v) {
  for (size_t i = 0; v && v[i]; i++) free(v[i]);
  free(v);
}

/* ts: the logical date in the DAG's zone, with its offset; ds: its day
 * there, the day the DAG's schedule means (2026-03-02 for a run at
 * midnight in Berlin, which is 2026-03-01T23:00:00Z). */
static void local_ts(const dagd_try_info *info, char ts[32], char ds[16]) {
  int32_t off = info->dag->tz ? dagd_tz_offset(info->dag->tz, info->logical_date) : 0;
  dagd_time_format_offset(info->logical_date, off, ts);
  memcpy(ds, ts, 10);
  ds[10] = '\0';
}

json_t *dagd_command_context(const dagd_try_info *info) {
  char ld[32], ts[32], s[32], e[32], ds[16], nodash[16];
  local_ts(info, ts, ds);
  dagd_time_format_utc(info->logical_date, ld);
  snprintf(nodash, sizeof(nodash), "%.4s%.2s%.2s", ds, ds + 5, ds + 8);
  json_t *ctx = json_object();
  json_object_set_new(ctx, "ds", json_string(ds));
  json_object_set_new(ctx, "ds_nodash", json_string(nodash));
  json_object_set_new(ctx, "ts", json_string(ts));
  json_object_set_new(ctx, "logical_date", json_string(ld));
  if (info->has_interval) {
    dagd_time_format_utc(info->interval_start, s);
    dagd_time_format_utc(info->interval_end, e);
  } else {
    memcpy(s, ld, sizeof(ld));
    memcpy(e, ld, sizeof(ld));
  }
  json_object_set_new(ctx, "data_interval_start", json_string(s));
  json_object_set_new(ctx, "data_interval_end", json_string(e));
  json_object_set_new(ctx, "run_id", json_string(info->run_id));
  json_object_set_new(ctx, "dag_id", json_string(info->dag->id));
  if (info->task) {
    json_object_set_new(ctx, "task_id", json_string(info->task->id));
    json_object_set_new(ctx, "try_number", json_integer(info->try_number));
  }
  json_object_set_new(ctx, "params", info->dag->params ? json_deep_copy(info->dag->params) : json_object());
  json_t *conf = info->conf ? json_loads(info->conf, 0, NULL) : NULL;
  json_object_set_new(ctx, "conf", json_is_object(conf) ? conf : (json_decref(conf), json_object()));
  json_object_set_new(ctx, "outputs", info->outputs ? json_deep_copy(info->outputs) : json_object());
  /* Shared, not copied: templates only read it. */
  json_object_set_new(ctx, "env", info->environ_json ? json_incref((json_t *)info->environ_json)
                                                     : dagd_command_environ_json(info->environ));
  return ctx;
}

json_t *dagd_command_environ_json(char *const *environ) {
  json_t *env = json_object();
  for (char *const *p = environ; p && *p; p++) {
    const char *eq = strchr(*p, '=');
    if (eq == NULL || eq == *p) continue;
    char *key = dagd_strndup(*p, (size_t)(eq - *p));
    json_object_set_new(env, key, json_string(eq + 1));
    free(key);
  }
  return env;
}

json_t *dagd__command_ctx(builder *b) {
  if (b->ctx == NULL) b->ctx = dagd_command_context(b->info);
  return b->ctx;
}

/* Renders one field's text; the error names the task and field. Text
 * without an expression is taken as it is, with no context made. */
char *dagd__command_render(builder *b, const char *field, const char *text, bool quoted) {
  dagd_buf out;
  dagd_err sub;
  dagd_buf_init(&out);
  dagd_err_init(&sub);
  const json_t *ctx = strstr(text, "{{") ? dagd__command_ctx(b) : NULL;
  if (dagd_template_render(text, ctx, quoted ? &b->quoted : &b->plain, &out, &sub) < 0) {
    dagd_err_set(b->err, sub.code, "task \"%s\" field %s: %s", b->info->task->id, field, sub.msg);
    dagd_buf_close(&out);
    return NULL;
  }
  return dagd_buf_steal(&out);
}

int dagd__command_push_rendered(builder *b, strv *v, const char *field, const char *text) {
  char *r = dagd__command_render(b, field, text, false);
  if (r == NULL) return -1;
  dagd__strv_push(v, r);
  return 0;
}

/* Appends each string of a JSON array, rendered. An element that begins
 * with a template must not render to text that begins with '-': the
 * program would read a value (a run id `--help`, a conf `-rf`) as an
 * option. A literal `--` element before it ends the options and lifts
 * the rule, as does literal text before the template (`--run={{ x }}`). */
int dagd__command_push_array(builder *b, strv *v, const char *field, const json_t *arr) {
  size_t i;
  json_t *x;
  bool options_ended = false;
  json_array_foreach(arr, i, x) {
    if (!json_is_string(x)) continue;
    const char *src = json_string_value(x);
    if (strcmp(src, "--") == 0) options_ended = true;
    if (dagd__command_push_rendered(b, v, field, src) < 0) return -1;
    const char *r = v->v[v->n - 1];
    if (!options_ended && strncmp(src, "{{", 2) == 0 && r[0] == '-')
      return dagd_err_set(b->err, DAGD_EINVAL,
                          "task \"%s\" field %s: element %zu renders to text that begins with '-' and would "
                          "be read as an option; put \"--\" before it, or text before the template "
                          "(\"--name={{ ... }}\")",
                          b->info->task->id, field, i + 1);
  }
  return 0;
}

const char *dagd__command_cfg_str(const dagd_task *t, const char *key) {
  return json_string_value(json_object_get(t->config, key));
}

static int shell_argv(builder *b, strv *argv) {
  const json_t *cmd = json_object_get(b->info->task->config, "cmd");
  if (json_is_string(cmd)) {
    char *r = dagd__command_render(b, "cmd", json_string_value(cmd), true);
    if (r == NULL) return -1;
    dagd__strv_push(argv, dagd_strdup("/bin/sh"));
    dagd__strv_push(argv, dagd_strdup("-c"));
    dagd__strv_push(argv, r);
    return 0;
  }
  if (json_is_array(cmd) && json_array_size(cmd) > 0) return dagd__command_push_array(b, argv, "cmd", cmd);
  return dagd_err_set(b->err, DAGD_EINVAL, "task \"%s\": cmd is empty", b->info->task->id);
}

/* A copy of the config with every string rendered (function markers and
 * other values as they are). NULL on a template error. */
static json_t *render_config(builder *b, const json_t *v, const char *field, bool top) {
  switch (json_typeof(v)) {
  case JSON_STRING: {
    char *r;
    bool url = top && field && strcmp(field, "url") == 0, image = top && field && strcmp(field, "image") == 0;
    if (url || image) {
      dagd_template_opts saved = b->plain;
      b->plain.literal_prefix = url ? &b->url_literal : &b->image_literal;
      r = dagd__command_render(b, field, json_string_value(v), false);
      b->plain = saved;
    } else {
      r = dagd__command_render(b, field, json_string_value(v), false);
    }
    if (r == NULL) return NULL;
    json_t *out = json_string(r);
    free(r);
    return out ? out : json_string("");
  }
  case JSON_ARRAY: {
    json_t *out = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      json_t *r = render_config(b, x, field, false);
      if (r == NULL) {
        json_decref(out);
        return NULL;
      }
      json_array_append_new(out, r);
    }
    return out;
  }
  case JSON_OBJECT: {
    if (json_object_size(v) == 1 && json_is_string(json_object_get(v, "function"))) return json_deep_copy(v);
    json_t *out = json_object();
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) {
      json_t *r = render_config(b, x, field == NULL ? k : field, field == NULL);
      if (r == NULL) {
        json_decref(out);
        return NULL;
      }
      json_object_set_new(out, k, r);
    }
    return out;
  }
  default: return json_deep_copy(v);
  }
}

bool dagd_command_in_process(dagd_op op) { return dagd_op_kind_of(op)->runs == DAGD_RUNS_OP; }

/* `dagd op SPEC`: the spec holds the rendered config and the context (and
 * for docker, the docker run command line). */
static int in_process_argv(builder *b, strv *argv, char *const *task_env) {
  const dagd_try_info *info = b->info;
  if (info->self_path == NULL || info->spec_path == NULL)
    return dagd_err_set(b->err, DAGD_EINVAL, "task \"%s\": no dagd binary to run the %s operator", info->task->id,
                        dagd_op_name(info->task->op));
  size_t secrets_before = b->out->n_secrets;
  json_t *config = render_config(b, info->task->config, NULL, true);
  if (config == NULL) return -1;
  /* A request that carries a secret goes only where the DAG file says. */
  const char *url = json_string_value(json_object_get(config, "url"));
  char what[200];
  snprintf(what, sizeof(what), "task \"%s\"", info->task->id);
  size_t n_secrets = b->out->n_secrets - secrets_before;
  int bad = url ? dagd_command_secret_url_check(what, url, b->url_literal, n_secrets, info->secret_hosts,
                                                info->n_secret_hosts, b->err)
                : 0;
  /* A registry's credentials go to the host its image names: checked as
   * the URL https://<image>, or http://<image> (a secret_hosts entry may
   * name the registry either way: dagd picks the scheme itself). */
  const char *image = json_string_value(json_object_get(config, "image"));
  if (bad == 0 && image && dagd_op_kind_of(info->task->op)->image_host) {
    dagd_err first;
    dagd_err_init(&first);
    char *as_url = dagd_asprintf("https://%s", image);
    bad = dagd_command_secret_url_check(what, as_url, b->image_literal + 8, n_secrets, info->secret_hosts,
                                        info->n_secret_hosts, &first);
    free(as_url);
    if (bad < 0) {
      as_url = dagd_asprintf("http://%s", image);
      bad = dagd_command_secret_url_check(what, as_url, b->image_literal + 7, n_secrets, info->secret_hosts,
                                          info->n_secret_hosts, NULL);
      free(as_url);
      if (bad < 0) dagd_err_set(b->err, first.code, "%s", first.msg);
    }
  }
  if (bad < 0) {
    json_decref(config);
    return -1;
  }
  json_t *spec = json_pack("{s:s, s:o, s:O, s:s, s:s, s:s, s:i, s:O}", "operator", dagd__command_operator_name(info),
                           "config", config, "context", dagd__command_ctx(b), "dag_id", info->dag->id, "task_id",
                           info->task->id,
                           "fileloc", info->dag->fileloc ? info->dag->fileloc : "", "try_number", info->try_number,
                           "extra", info->extra ? info->extra : json_null());
  if (dagd__command_on_kubernetes(info)) {
    dagd__command_k8s_spec(b, spec, task_env);
  } else if (info->task->op == DAGD_OP_DOCKER) {
    json_t *run = dagd__command_docker_spec(b, task_env);
    if (run == NULL) {
      json_decref(spec);
      return -1;
    }
    json_object_set_new(spec, "docker", run);
  }
  /* The secret values rendered into the spec, so that `dagd op` can mask
   * them in the copies it writes (manifests) as the daemon does. */
  json_t *secrets = json_array();
  for (size_t i = 0; i < b->out->n_secrets; i++) json_array_append_new(secrets, json_string(b->out->secrets[i]));
  json_object_set_new(spec, "secrets", secrets);
  b->out->spec = json_dumps(spec, JSON_COMPACT | JSON_REAL_PRECISION(15));
  json_decref(spec);
  dagd__strv_push(argv, dagd_strdup(info->self_path));
  dagd__strv_push(argv, dagd_strdup("op"));
  dagd__strv_push(argv, dagd_strdup(info->spec_path));
  return 0;
}

/* The daemon's environment (unless env_clear), the task's env (rendered)
 * over it, and the DAGD_* variables over both. */
static int build_env(builder *b, strv *env) {
  const dagd_try_info *info = b->info;
  const dagd_task *t = info->task;
  char ld[32], s[32], e[32], ds[16], ts[32];
  dagd_time_format_utc(info->logical_date, ld);
  local_ts(info, ts, ds);
  dagd_time_format_utc(info->has_interval ? info->interval_start : info->logical_date, s);
  dagd_time_format_utc(info->has_interval ? info->interval_end : info->logical_date, e);
  strv own;
  memset(&own, 0, sizeof(own));
  for (size_t i = 0; i < t->n_env; i++) {
    char *v = dagd__command_render(b, "env", t->env[i].value, false);
    if (v == NULL) {
      dagd__strv_free(own.v);
      return -1;
    }
    dagd__strv_push(&own, dagd_asprintf("%s=%s", t->env[i].key, v));
    free(v);
  }
  dagd__strv_push(&own, dagd_asprintf("DAGD_DAG_ID=%s", info->dag->id));
  dagd__strv_push(&own, dagd_asprintf("DAGD_RUN_ID=%s", info->run_id));
  dagd__strv_push(&own, dagd_asprintf("DAGD_TASK_ID=%s", t->id));
  dagd__strv_push(&own, dagd_asprintf("DAGD_TRY_NUMBER=%d", info->try_number));
  dagd__strv_push(&own, dagd_asprintf("DAGD_LOGICAL_DATE=%s", ld));
  dagd__strv_push(&own, dagd_asprintf("DAGD_DS=%s", ds));
  dagd__strv_push(&own, dagd_asprintf("DAGD_DATA_INTERVAL_START=%s", s));
  dagd__strv_push(&own, dagd_asprintf("DAGD_DATA_INTERVAL_END=%s", e));
  /* The whole conf is in a file; the variable too while it is small
   * enough for the kernel to take (tasks written for it keep working). */
  const char *conf = info->conf ? info->conf : "{}";
  if (strlen(conf) <= DAGD_CONF_ENV_MAX) dagd__strv_push(&own, dagd_asprintf("DAGD_CONF=%s", conf));
  if (info->conf_path) dagd__strv_push(&own, dagd_asprintf("DAGD_CONF_FILE=%s", info->conf_path));
  if (info->output_path) dagd__strv_push(&own, dagd_asprintf("DAGD_OUTPUT=%s", info->output_path));
  if (!t->env_clear) {
    for (char *const *p = info->environ; p && *p; p++) {
      const char *eq = strchr(*p, '=');
      if (eq == NULL) continue;
      size_t klen = (size_t)(eq - *p);
      bool overridden = false;
      for (size_t i = 0; i < own.n && !overridden; i++)
        overridden = own.v[i][0] == (*p)[0] && strncmp(own.v[i], *p, klen + 1) == 0;
      if (!overridden) dagd__strv_push(env, dagd_strdup(*p));
    }
  }
  for (size_t i = 0; i < own.n; i++) dagd__strv_push(env, own.v[i]);
  free(own.v);
  return 0;
}

static char *dirname_of(const char *path) {
  const char *slash = path ? strrchr(path, '/') : NULL;
  if (slash == NULL) return dagd_strdup(".");
  if (slash == path) return dagd_strdup("/");
  return dagd_strndup(path, (size_t)(slash - path));
}

/* exec refuses (E2BIG) any argv element or environment string over
 * MAX_ARG_STRLEN: say so here, naming which, rather than let every try
 * fail with "argument list too long". */
static int check_exec_sizes(const char *task_id, char *const *argv, char *const *env, dagd_err *err) {
  for (size_t i = 0; argv && argv[i]; i++) {
    size_t n = strlen(argv[i]);
    if (n + 1 > DAGD_ARG_STRLEN_MAX)
      return dagd_err_set(err, DAGD_ETOOBIG,
                          "task \"%s\": argument %zu of the command is %zu bytes once rendered, more than the "
                          "%d a process argument may hold: read big values (conf) from the file $DAGD_CONF_FILE "
                          "names instead of templating them into the command",
                          task_id, i, n, DAGD_ARG_STRLEN_MAX - 1);
  }
  for (size_t i = 0; env && env[i]; i++) {
    size_t n = strlen(env[i]);
    if (n + 1 > DAGD_ARG_STRLEN_MAX) {
      const char *eq = strchr(env[i], '=');
      int klen = eq ? (int)(eq - env[i]) : 0;
      return dagd_err_set(err, DAGD_ETOOBIG,
                          "task \"%s\": environment variable %.*s is %zu bytes once rendered, more than the %d "
                          "an environment string may hold: read big values (conf) from the file "
                          "$DAGD_CONF_FILE names instead",
                          task_id, klen > 100 ? 100 : klen, env[i], n, DAGD_ARG_STRLEN_MAX - 1);
    }
  }
  return 0;
}

int dagd_command_secret_url_check(const char *what, const char *url, size_t literal_prefix, size_t n_secrets,
                                  char *const *allow, size_t n_allow, dagd_err *err) {
  if (n_secrets == 0) return 0;
  size_t auth = dagd_url_authority_len(url);
  if (auth > 0 && auth <= literal_prefix) return 0;
  char *origin = dagd_url_origin(url, false);
  bool ok = false;
  for (size_t i = 0; origin && !ok && i < n_allow; i++) ok = strcmp(origin, allow[i]) == 0;
  free(origin);
  if (ok) return 0;
  return dagd_err_set(err, DAGD_EINVAL,
                      "%s: the request carries a secret, and the scheme and host of its url (\"%.120s\") come "
                      "from a template, not from the DAG file's own text: write scheme://host literally in "
                      "url, or list the origin in the config's secret_hosts",
                      what, url);
}

int dagd_command_build(const dagd_try_info *info, dagd_command *out, dagd_err *err) {
  builder b = {.info = info, .out = out, .err = err};
  memset(out, 0, sizeof(*out));
  b.plain = (dagd_template_opts){.secret = info->secret, .secret_data = info->secret_data,
                                 .secrets_seen = &out->secrets, .n_secrets_seen = &out->n_secrets};
  b.quoted = b.plain;
  b.quoted.shell_quote = true;
  const dagd_task *t = info->task;
  const dagd_op_kind *kind = dagd_op_kind_of(t->op);
  if (kind->runs == DAGD_RUNS_NOTHING) {
    out->no_process = true;
    return 0;
  }
  strv argv, env;
  memset(&argv, 0, sizeof(argv));
  memset(&env, 0, sizeof(env));
  int rc = 0;
  if (build_env(&b, &env) < 0) {
    rc = err ? err->code : DAGD_EINVAL;
    goto out;
  }
  switch (kind->runs) {
  case DAGD_RUNS_COMMAND: rc = shell_argv(&b, &argv); break;
  case DAGD_RUNS_CHOSEN: /* kubectl: dagd applies and waits itself */
    rc = dagd__command_kubectl_in_process(t) ? in_process_argv(&b, &argv, env.v) : dagd__command_kubectl_argv(&b, &argv);
    break;
  case DAGD_RUNS_OP: rc = in_process_argv(&b, &argv, env.v); break;
  case DAGD_RUNS_NOTHING:
  case DAGD_RUNS_UNKNOWN:
    rc = dagd_err_set(err, DAGD_EINVAL, "task \"%s\": the %s operator cannot run yet in this version", t->id,
                      dagd_op_name(t->op));
  }
  if (rc < 0) {
    rc = err && err->code ? err->code : DAGD_EINVAL;
    goto out;
  }
  if (t->cwd) {
    out->cwd = dagd__command_render(&b, "cwd", t->cwd, false);
    if (out->cwd == NULL) {
      rc = err ? err->code : DAGD_EINVAL;
      goto out;
    }
  } else {
    out->cwd = dirname_of(info->dag->fileloc);
  }
  if ((rc = check_exec_sizes(t->id, argv.v, env.v, err)) < 0) goto out;
  out->argv = argv.v;
  out->env = env.v;
  argv.v = env.v = NULL;
out:
  dagd__strv_free(argv.v);
  dagd__strv_free(env.v);
  json_decref(b.ctx);
  if (rc < 0) {
    dagd_command_close(out);
    return rc < 0 ? rc : DAGD_EINVAL;
  }
  return 0;
}

void dagd_command_close(dagd_command *cmd) {
  dagd__strv_free(cmd->argv);
  dagd__strv_free(cmd->env);
  free(cmd->cwd);
  for (size_t i = 0; i < cmd->n_secrets; i++) free(cmd->secrets[i]);
  free(cmd->secrets);
  free(cmd->spec);
  memset(cmd, 0, sizeof(*cmd));
}

int dagd_command_secret_from_env(void *data, const char *name, char **value, dagd_err *err) {
  (void)data;
  char var[300];
  snprintf(var, sizeof(var), "DAGD_SECRET_%s", name);
  const char *v = getenv(var);
  if (v == NULL) return dagd_err_set(err, DAGD_ENOENT, "secret \"%s\" is not set (environment %s)", name, var);
  *value = dagd_strdup(v);
  return 0;
}

int dagd_command_parse_outputs(const char *text, size_t len, json_t **out, dagd_err *err) {
  if (len > DAGD_OUTPUT_MAX)
    return dagd_err_set(err, DAGD_ELIMIT, "$DAGD_OUTPUT is %zu bytes, more than the %d allowed", len,
                        DAGD_OUTPUT_MAX);
  size_t i = 0;
  while (i < len && isspace((unsigned char)text[i])) i++;
  json_t *obj = json_object();
  if (i < len && text[i] == '{') {
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    if (!json_is_object(doc)) {
      json_decref(doc);
      json_decref(obj);
      return dagd_err_set(err, DAGD_ESYNTAX, "$DAGD_OUTPUT: bad JSON at line %d: %s", jerr.line, jerr.text);
    }
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v) {
      if (!dagd_id_valid(k)) {
        dagd_err_set(err, DAGD_EINVAL, "$DAGD_OUTPUT: bad key \"%.64s\"", k);
        json_decref(doc);
        json_decref(obj);
        return DAGD_EINVAL;
      }
      dagd_buf vt;
      dagd_buf_init(&vt);
      dagd_template_value_text(v, &vt);
      json_object_set_new(obj, k, json_string(vt.data ? vt.data : ""));
      dagd_buf_close(&vt);
    }
    json_decref(doc);
    *out = obj;
    return 0;
  }
  int lineno = 0;
  for (size_t p = 0; p < len;) {
    size_t end = p;
    while (end < len && text[end] != '\n') end++;
    lineno++;
    size_t a = p, z = end;
    if (z > a && text[z - 1] == '\r') z--;
    while (a < z && isspace((unsigned char)text[a])) a++;
    if (a < z && text[a] != '#') {
      const char *eq = memchr(text + a, '=', z - a);
      if (eq == NULL) {
        json_decref(obj);
        return dagd_err_set(err, DAGD_ESYNTAX, "$DAGD_OUTPUT line %d: expected key=value", lineno);
      }
      char *key = dagd_strndup(text + a, (size_t)(eq - (text + a)));
      size_t klen = strlen(key);
      while (klen > 0 && isspace((unsigned char)key[klen - 1])) key[--klen] = '\0';
      if (!dagd_id_valid(key) || memchr(text + a, '\0', z - a) != NULL) {
        dagd_err_set(err, DAGD_EINVAL, "$DAGD_OUTPUT line %d: bad key \"%.64s\"", lineno, key);
        free(key);
        json_decref(obj);
        return DAGD_EINVAL;
      }
      char *val = dagd_strndup(eq + 1, (size_t)(text + z - (eq + 1)));
      json_t *jv = json_string(val);
      free(val);
      if (jv == NULL) {
        dagd_err_set(err, DAGD_EINVAL, "$DAGD_OUTPUT line %d: the value of \"%s\" is not UTF-8 text", lineno, key);
        free(key);
        json_decref(obj);
        return DAGD_EINVAL;
      }
      json_object_set_new(obj, key, jv);
      free(key);
    }
    p = end + 1;
  }
  *out = obj;
  return 0;
}

