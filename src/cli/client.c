/* dagctl's commands that talk to a running dagd over its HTTP API with
 * dagd/httpc: dags, pause, unpause, trigger, backfill, runs, tasks, logs,
 * clear, mark, event. With -o json they print the API's body unchanged
 * (-o yaml: as YAML; logs prints its own document, the log read whole);
 * otherwise aligned tables. --wait and logs -f use the API's long polls,
 * so they return as soon as the run ends, without a sleep loop.
 * SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "dagd/err.h"
#include "dagd/httpc.h"
#include "dagd/util.h"
#include "internal.h"

typedef struct http_result {
  long status;
  dagd_buf body;
} http_result;

/* URL-escapes one path segment. */
static void put_segment(dagd_buf *b, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("-_.~", *p))
      dagd_buf_putc(b, (char)*p);
    else
      dagd_buf_printf(b, "%%%02X", *p);
  }
}

/* Builds "/api/v1/..." from a format where each %s is a path segment. */
static char *api_path(const char *fmt, ...) {
  dagd_buf b;
  dagd_buf_init(&b);
  va_list ap;
  va_start(ap, fmt);
  for (const char *p = fmt; *p; p++) {
    if (p[0] == '%' && p[1] == 's') {
      put_segment(&b, va_arg(ap, const char *));
      p++;
    } else {
      dagd_buf_putc(&b, *p);
    }
  }
  va_end(ap);
  return dagd_buf_steal(&b);
}

/* Checks the ids a command was given before they become URL segments (a
 * client would drop a ".." segment and name another resource). NULL ids
 * are not checked. Prints why and returns false on the first bad one. */
static bool ids_ok(const char *cmd, const char *dag, const char *run, const char *task) {
  const char *kinds[] = {"DAG id", "run id", "task id"}, *ids[] = {dag, run, task};
  for (int i = 0; i < 3; i++) {
    const char *why = ids[i] ? dagd_id_problem(ids[i], i == 1) : NULL;
    if (why != NULL) {
      fprintf(stderr, "dagctl %s: invalid %s \"%.250s\": %s\n", cmd, kinds[i], ids[i], why);
      return false;
    }
  }
  return true;
}

/* One request. Returns CLI_OK with the status and body, or
 * CLI_UNREACHABLE when no answer came. */
static int call_api(cli *c, const char *method, const char *path, const char *body, long timeout_s, http_result *r) {
  dagd_buf_init(&r->body);
  r->status = 0;
  char *url = dagd_asprintf("%s%s", c->server, path);
  const char *lines[4];
  size_t n = 0;
  lines[n++] = "Accept: application/json";
  if (body) lines[n++] = "Content-Type: application/json";
  char *auth = c->token && *c->token ? dagd_asprintf("Authorization: Bearer %s", c->token) : NULL;
  if (auth) lines[n++] = auth;
  lines[n] = NULL;
  /* Whatever scheme --server names, as it always was. */
  dagd_httpc_req req = {.method = method, .url = url, .headers = lines, .body = body,
                        .body_len = body ? strlen(body) : 0, .timeout_ms = timeout_s * 1000,
                        .connect_timeout_ms = 5000, .any_scheme = true};
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_httpc_request(NULL, &req, &r->status, &r->body, &err);
  if (rc == DAGD_ENOMEM) fprintf(stderr, "dagctl: %s\n", err.msg);
  else if (rc < 0) fprintf(stderr, "dagctl: cannot reach dagd at %s: %s\n", c->server, dagd_httpc_cause_text(err.cause));
  free(auth);
  free(url);
  return rc == 0 ? CLI_OK : rc == DAGD_ENOMEM ? CLI_FAILED : CLI_UNREACHABLE;
}

static void result_close(http_result *r) { dagd_buf_close(&r->body); }

/* Prints an API error ({"detail"}) and maps it to the exit status. */
static int api_failed(const http_result *r) {
  json_t *doc = json_loads(r->body.data ? r->body.data : "", 0, NULL);
  const char *detail = json_string_value(json_object_get(doc, "detail"));
  fprintf(stderr, "dagctl: %ld: %s\n", r->status, detail ? detail : (r->body.data ? r->body.data : ""));
  json_decref(doc);
  return CLI_FAILED;
}

/* Runs a request; on success parses the JSON body into *doc (may be
 * NULL) and prints it as is with -o json (print_json). */
static int request(cli *c, const char *method, const char *path, const char *body, bool print_json, json_t **doc) {
  http_result r;
  int rc = call_api(c, method, path, body, 60, &r);
  if (doc) *doc = NULL;
  if (rc != CLI_OK) goto out;
  if (r.status < 200 || r.status >= 300) {
    rc = api_failed(&r);
    goto out;
  }
  if (print_json && c->json) cli_print_body(c, r.body.data);
  if (doc) *doc = json_loads(r.body.data ? r.body.data : "", 0, NULL);
out:
  result_close(&r);
  return rc;
}

static const char *str_or(const json_t *o, const char *k, const char *dflt) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : dflt;
}

/* Colour only where c->colour allows it (see want_colour in dagctl.c). */
static const char *state_colour(const cli *c, const char *state) {
  if (!c->colour) return "";
  if (strcmp(state, "success") == 0) return "\033[32m";
  if (strcmp(state, "failed") == 0 || strcmp(state, "upstream_failed") == 0) return "\033[31m";
  if (strcmp(state, "running") == 0) return "\033[36m";
  if (strcmp(state, "up_for_retry") == 0 || strcmp(state, "queued") == 0) return "\033[33m";
  return "";
}
static const char *colour_end(const cli *c) { return c->colour ? "\033[0m" : ""; }

static int cmd_dags(cli *c, int argc, char **argv) {
  if (argc != 1) return CLI_USAGE;
  json_t *doc;
  int rc = request(c, "GET", "/api/v1/dags?limit=10000", NULL, true, &doc);
  if (rc != CLI_OK || c->json) goto out;
  printf("%-32s %-7s %-18s %-16s %-26s %s\n", "DAG", "PAUSED", "SCHEDULE", "TIMEZONE", "NEXT RUN", "LAST RUN");
  size_t i;
  json_t *d;
  json_array_foreach(json_object_get(doc, "dags"), i, d) {
    const char *last = str_or(d, "last_run_state", "-");
    printf("%-32s %-7s %-18s %-16s %-26s %s%s%s\n", str_or(d, "dag_id", "?"),
           json_is_true(json_object_get(d, "is_paused")) ? "yes" : "no", str_or(d, "schedule", "-"),
           str_or(d, "timezone", "-"), str_or(d, "next_run_after", "-"), state_colour(c, last), last, colour_end(c));
  }
  json_array_foreach(json_object_get(doc, "import_errors"), i, d)
    fprintf(stderr, "%s:%lld: %s\n", str_or(d, "file", "?"), (long long)json_integer_value(json_object_get(d, "line")),
            str_or(d, "message", ""));
out:
  json_decref(doc);
  return rc;
}

static int set_paused(cli *c, int argc, char **argv, bool paused) {
  if (argc != 2) return CLI_USAGE;
  if (!ids_ok(paused ? "pause" : "unpause", argv[1], NULL, NULL)) return CLI_USAGE;
  char *path = api_path("/api/v1/dags/%s", argv[1]);
  json_t *doc;
  int rc = request(c, "PATCH", path, paused ? "{\"is_paused\": true}" : "{\"is_paused\": false}", true, &doc);
  if (rc == CLI_OK && !c->json) printf("%s: %s\n", argv[1], paused ? "paused" : "unpaused");
  json_decref(doc);
  free(path);
  return rc;
}
static int cmd_pause(cli *c, int argc, char **argv) { return set_paused(c, argc, argv, true); }
static int cmd_unpause(cli *c, int argc, char **argv) { return set_paused(c, argc, argv, false); }

static void print_run(const cli *c, const json_t *r) {
  const char *state = str_or(r, "state", "?");
  printf("%-44s %-10s %-22s %s%-8s%s %s\n", str_or(r, "dag_run_id", "?"), str_or(r, "run_type", "?"),
         str_or(r, "logical_date", "-"), state_colour(c, state), state, colour_end(c), str_or(r, "end_date", "-"));
}

static int wait_run_change(cli *c, const char *dag, const char *run, int secs);

/* A progress line on stderr: on a terminal one line updated in place
 * (with \r, and \033[K to clear it unless TERM is dumb), otherwise a
 * plain line each time, with no control characters. */
typedef struct progress {
  bool tty, dumb;
  size_t last_len;
  char last[256];
} progress;

static void progress_init(progress *p) {
  const char *term = getenv("TERM");
  p->tty = isatty(STDERR_FILENO);
  p->dumb = term == NULL || strcmp(term, "dumb") == 0;
  p->last_len = 0;
  p->last[0] = '\0';
}

/* Shows line unless it is the one shown already. */
static void progress_show(progress *p, const char *line) {
  if (strcmp(line, p->last) == 0) return;
  size_t n = strlen(line);
  if (!p->tty) fprintf(stderr, "%s\n", line);
  else if (!p->dumb) fprintf(stderr, "\r\033[K%s", line);
  else fprintf(stderr, "\r%s%*s", line, p->last_len > n ? (int)(p->last_len - n) : 0, "");
  fflush(stderr);
  p->last_len = n;
  snprintf(p->last, sizeof(p->last), "%s", line);
}

/* Ends the updating line. */
static void progress_end(progress *p) {
  if (p->tty && p->last_len > 0) fputc('\n', stderr);
  p->last_len = 0;
}

/* Waits for a run to end, showing progress: a live line on a terminal,
 * a plain line per change otherwise. Each long poll returns when the run
 * changes, so the end is seen at once. Returns CLI_OK on success. */
static int wait_run(cli *c, const char *dag_id, const char *run_id) {
  char *run_path = api_path("/api/v1/dags/%s/dagRuns/%s", dag_id, run_id);
  char *tis_path = api_path("/api/v1/dags/%s/dagRuns/%s/taskInstances", dag_id, run_id);
  char *poll = dagd_asprintf("%s?wait=30", run_path);
  progress prog;
  progress_init(&prog);
  int rc;
  for (;;) {
    json_t *run, *tis;
    http_result r;
    rc = call_api(c, "GET", poll, NULL, 40, &r);
    if (rc != CLI_OK) break;
    if (r.status != 200) {
      rc = api_failed(&r);
      result_close(&r);
      break;
    }
    run = json_loads(r.body.data, 0, NULL);
    result_close(&r);
    const char *state = str_or(run, "state", "?");
    bool succeeded = strcmp(state, "success") == 0;
    bool over = succeeded || strcmp(state, "failed") == 0;
    if ((rc = request(c, "GET", tis_path, NULL, false, &tis)) != CLI_OK) {
      json_decref(run);
      break;
    }
    int total = 0, done = 0, failed = 0, running = 0;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(tis, "task_instances"), i, t) {
      const char *s = str_or(t, "state", "");
      total++;
      if (!strcmp(s, "success") || !strcmp(s, "failed") || !strcmp(s, "skipped") || !strcmp(s, "upstream_failed") ||
          !strcmp(s, "removed"))
        done++;
      if (!strcmp(s, "failed") || !strcmp(s, "upstream_failed")) failed++;
      if (!strcmp(s, "running")) running++;
    }
    char line[256];
    snprintf(line, sizeof(line), "%s %s: %s, %d/%d tasks done, %d running, %d failed", dag_id, run_id, state, done,
             total, running, failed);
    progress_show(&prog, line);
    json_decref(tis);
    json_decref(run);
    if (over) {
      progress_end(&prog);
      rc = succeeded ? CLI_OK : CLI_FAILED;
      break;
    }
  }
  free(poll);
  free(run_path);
  free(tis_path);
  return rc;
}

static int cmd_trigger(cli *c, int argc, char **argv) {
  const char *conf = NULL, *date = NULL, *run_id = NULL;
  bool wait = false;
  int opt;
  optind = 0;
  while ((opt = cli_getopt(c, argc, argv)) != -1) {
    if (opt == 'c') conf = optarg;
    else if (opt == 'd') date = optarg;
    else if (opt == 'r') run_id = optarg;
    else if (opt == 'w') wait = true;
    else return CLI_USAGE;
  }
  if (argc - optind != 1) return CLI_USAGE;
  if (!ids_ok("trigger", argv[optind], run_id, NULL)) return CLI_USAGE;
  json_error_t jerr;
  json_t *body = json_object();
  if (conf) {
    json_t *cj = json_loads(conf, 0, &jerr);
    if (!json_is_object(cj)) {
      fprintf(stderr, "dagctl trigger: --conf must be a JSON object (%s)\n", cj ? "not an object" : jerr.text);
      json_decref(cj);
      json_decref(body);
      return CLI_USAGE;
    }
    json_object_set_new(body, "conf", cj);
  }
  if (date) json_object_set_new(body, "logical_date", json_string(date));
  if (run_id) json_object_set_new(body, "dag_run_id", json_string(run_id));
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  char *path = api_path("/api/v1/dags/%s/dagRuns", argv[optind]);
  json_t *run;
  int rc = request(c, "POST", path, text, true, &run);
  free(text);
  free(path);
  if (rc == CLI_OK && !c->json) printf("triggered %s %s\n", argv[optind], str_or(run, "dag_run_id", "?"));
  if (rc == CLI_OK && wait) rc = wait_run(c, argv[optind], str_or(run, "dag_run_id", ""));
  json_decref(run);
  return rc;
}

/* Waits for a backfill's runs to end, showing done/total runs: the
 * count comes from the backfill's progress, read again each time the
 * oldest run still going changes (its long poll), so no sleep loop. */
static int wait_backfill(cli *c, const char *dag_id, const json_t *created) {
  long long id = (long long)json_integer_value(json_object_get(created, "id"));
  char *bpath = dagd_asprintf("/api/v1/backfills/%lld", id);
  const json_t *runs = json_object_get(created, "dag_runs");
  size_t next = 0; /* the first run of the list not seen over */
  progress prog;
  progress_init(&prog);
  long long last_done = -1, failed = 0;
  int rc;
  for (;;) {
    json_t *b;
    if ((rc = request(c, "GET", bpath, NULL, false, &b)) != CLI_OK) break;
    long long total = (long long)json_integer_value(json_object_get(b, "total"));
    long long success = (long long)json_integer_value(json_object_get(b, "success"));
    long long running = (long long)json_integer_value(json_object_get(b, "running"));
    failed = (long long)json_integer_value(json_object_get(b, "failed"));
    bool over = json_is_true(json_object_get(b, "done")) || next >= json_array_size(runs);
    json_decref(b);
    long long done = success + failed;
    char line[256];
    if (over) {
      snprintf(line, sizeof(line), "backfill %lld of %s: %lld/%lld runs done, %lld success, %lld failed", id, dag_id,
               done, total, success, failed);
    } else {
      char bar[21];
      int filled = total > 0 ? (int)(done * 20 / total) : 0;
      for (int i = 0; i < 20; i++) bar[i] = i < filled ? '#' : '.';
      bar[20] = '\0';
      snprintf(line, sizeof(line), "backfill %lld of %s: [%s] %lld/%lld runs done, %lld running, %lld failed", id,
               dag_id, bar, done, total, running, failed);
    }
    /* Not on a terminal: a line when a run ends, not one per task. */
    if (prog.tty || done != last_done || over) progress_show(&prog, line);
    last_done = done;
    if (over) break;
    /* Hold on the oldest run still going until it changes. */
    const json_t *r = json_array_get(runs, next);
    if (strcmp(str_or(r, "action", ""), "keep") == 0) {
      next++;
      continue;
    }
    int w = wait_run_change(c, dag_id, str_or(r, "dag_run_id", ""), 30);
    if (w == CLI_FAILED) next++; /* over (or gone): on to the next one */
    else if (w != CLI_OK) {
      rc = w;
      break;
    }
  }
  progress_end(&prog);
  free(bpath);
  return rc == CLI_OK && failed > 0 ? CLI_FAILED : rc;
}

static int cmd_backfill(cli *c, int argc, char **argv) {
  const char *from = NULL, *to = NULL;
  bool rerun = false, reset = false, reverse = false, dry = false, wait = false;
  int opt;
  optind = 0;
  while ((opt = cli_getopt(c, argc, argv)) != -1) {
    switch (opt) {
    case 'f': from = optarg; break;
    case 't': to = optarg; break;
    case 'R': rerun = true; break;
    case 'x': reset = true; break;
    case 'v': reverse = true; break;
    case 'n': dry = true; break;
    case 'w': wait = true; break;
    default: return CLI_USAGE;
    }
  }
  if (argc - optind != 1 || from == NULL || to == NULL) return CLI_USAGE;
  if (!ids_ok("backfill", argv[optind], NULL, NULL)) return CLI_USAGE;
  json_t *body = json_pack("{s:s, s:s, s:b, s:b, s:b, s:b}", "from", from, "to", to, "rerun_failed", rerun, "reset",
                           reset, "reverse", reverse, "dry_run", dry);
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  char *path = api_path("/api/v1/dags/%s/backfills", argv[optind]);
  json_t *doc;
  int rc = request(c, "POST", path, text, true, &doc);
  free(text);
  free(path);
  if (rc == CLI_OK && !c->json) {
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(doc, "dag_runs"), i, r)
      printf("%-8s %-44s %s\n", str_or(r, "action", "?"), str_or(r, "dag_run_id", "?"), str_or(r, "logical_date", "?"));
    printf("%s%lld runs to run (%lld intervals)\n", dry ? "dry run: " : "",
           (long long)json_integer_value(json_object_get(doc, "total")),
           (long long)json_integer_value(json_object_get(doc, "intervals")));
  }
  if (rc == CLI_OK && wait && !dry) rc = wait_backfill(c, argv[optind], doc);
  json_decref(doc);
  return rc;
}

static int cmd_runs(cli *c, int argc, char **argv) {
  const char *states[8];
  size_t n_states = 0;
  long n = 25;
  int opt;
  optind = 0;
  while ((opt = cli_getopt(c, argc, argv)) != -1) {
    if (opt == 's' && n_states < DAGD_ARRAY_LEN(states)) states[n_states++] = optarg;
    else if (opt == 'n') n = atol(optarg);
    else return CLI_USAGE;
  }
  if (argc - optind != 1 || n < 1) return CLI_USAGE;
  if (!ids_ok("runs", argv[optind], NULL, NULL)) return CLI_USAGE;
  char *base = api_path("/api/v1/dags/%s/dagRuns", argv[optind]);
  dagd_buf path;
  dagd_buf_init(&path);
  dagd_buf_printf(&path, "%s?limit=%ld", base, n);
  for (size_t i = 0; i < n_states; i++) { /* repeated: the API ORs them */
    dagd_buf_puts(&path, "&state=");
    put_segment(&path, states[i]);
  }
  json_t *doc;
  int rc = request(c, "GET", path.data, NULL, true, &doc);
  if (rc == CLI_OK && !c->json) {
    printf("%-44s %-10s %-22s %-8s %s\n", "RUN ID", "TYPE", "LOGICAL DATE", "STATE", "ENDED");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(doc, "dag_runs"), i, r) print_run(c, r);
  }
  json_decref(doc);
  dagd_buf_close(&path);
  free(base);
  return rc;
}

/* Does the locale write UTF-8 (so an ellipsis can be one character)? */
static bool utf8_locale(void) {
  const char *vars[] = {"LC_ALL", "LC_CTYPE", "LANG"};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(vars); i++) {
    const char *v = getenv(vars[i]);
    if (v == NULL || *v == '\0') continue;
    return strcasestr(v, "UTF-8") != NULL || strcasestr(v, "utf8") != NULL;
  }
  return false;
}

/* Prints text cut to width characters (code points, not bytes, so no
 * UTF-8 sequence is split), ending a cut one with an ellipsis. Returns
 * whether it cut. */
static bool put_cut(const char *text, int width) {
  size_t chars = 0, cut = 0;
  bool utf8 = utf8_locale();
  int keep = width - (utf8 ? 1 : 3);
  for (const char *p = text; *p; p++) {
    if (((unsigned char)*p & 0xC0) == 0x80) continue;
    if ((int)chars == keep) cut = (size_t)(p - text);
    chars++;
  }
  if ((int)chars <= width) {
    fputs(text, stdout);
    return false;
  }
  fwrite(text, 1, cut, stdout);
  fputs(utf8 ? "\u2026" : "...", stdout);
  return true;
}

static int cmd_tasks(cli *c, int argc, char **argv) {
  if (argc != 3) return CLI_USAGE;
  if (!ids_ok("tasks", argv[1], argv[2], NULL)) return CLI_USAGE;
  char *path = api_path("/api/v1/dags/%s/dagRuns/%s/taskInstances", argv[1], argv[2]);
  json_t *doc;
  int rc = request(c, "GET", path, NULL, true, &doc);
  if (rc == CLI_OK && !c->json) {
    /* OUTPUTS, the last column, gets what is left of the line: a task
     * may store kilobytes there, which -o json prints whole. */
    int columns = cli_columns();
    bool cut = false;
    printf("%-28s %-16s %-5s %-9s %-5s %s\n", "TASK", "STATE", "TRY", "DURATION", "EXIT", "OUTPUTS");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(doc, "task_instances"), i, t) {
      const char *state = str_or(t, "state", "?");
      const char *task = str_or(t, "task_id", "?");
      char dur[32] = "-", code[16] = "-", tries[32];
      json_t *d = json_object_get(t, "duration");
      if (json_is_number(d)) snprintf(dur, sizeof(dur), "%.2fs", json_number_value(d));
      json_t *e = json_object_get(t, "exit_code");
      if (json_is_integer(e)) snprintf(code, sizeof(code), "%lld", (long long)json_integer_value(e));
      snprintf(tries, sizeof(tries), "%d/%d", (int)json_integer_value(json_object_get(t, "try_number")),
               (int)json_integer_value(json_object_get(t, "max_tries")));
      /* The visible width of the columns before OUTPUTS (colour codes take none). */
      int used = snprintf(NULL, 0, "%-28s %-16s %-5s %-9s %-5s ", task, state, tries, dur, code);
      printf("%-28s %s%-16s%s %-5s %-9s %-5s ", task, state_colour(c, state), state, colour_end(c), tries, dur, code);
      json_t *o = json_object_get(t, "outputs");
      char *outs = json_object_size(o) > 0 ? json_dumps(o, JSON_COMPACT) : NULL;
      if (outs) cut |= put_cut(outs, columns - used > 10 ? columns - used : 10);
      putchar('\n');
      free(outs);
    }
    if (cut)
      fprintf(stderr, "(outputs cut to %d columns; `dagctl -o json tasks %s %s` shows them whole)\n", columns,
              argv[1], argv[2]);
  }
  json_decref(doc);
  free(path);
  return rc;
}

/* Reads a task instance's state and try number from its run's list.
 * Returns CLI_OK, or an exit status with the reason printed. */
static int ti_get(cli *c, const char *dag, const char *run, const char *task, char *state, size_t state_size,
                  long *try_number) {
  char *path = api_path("/api/v1/dags/%s/dagRuns/%s/taskInstances", dag, run);
  json_t *doc;
  int rc = request(c, "GET", path, NULL, false, &doc);
  free(path);
  if (rc != CLI_OK) return rc;
  bool found = false;
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(doc, "task_instances"), i, t) {
    if (strcmp(str_or(t, "task_id", ""), task) != 0) continue;
    found = true;
    *try_number = (long)json_integer_value(json_object_get(t, "try_number"));
    snprintf(state, state_size, "%s", str_or(t, "state", ""));
  }
  json_decref(doc);
  if (!found) {
    fprintf(stderr, "dagctl logs: no task \"%s\" in %s\n", task, run);
    return CLI_FAILED;
  }
  return CLI_OK;
}

/* A task instance in one of these states may start another try (or go
 * on with this one, a sensor rescheduled): -f goes on following it. */
static bool ti_pending(const char *state) {
  static const char *const pending[] = {"up_for_retry", "up_for_reschedule", "scheduled", "queued", "running"};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(pending); i++)
    if (strcmp(state, pending[i]) == 0) return true;
  return false;
}

/* Holds until the run changes (a try starts or ends) or `secs` pass.
 * Returns CLI_OK while the run goes on, CLI_FAILED once it is over. */
static int wait_run_change(cli *c, const char *dag, const char *run, int secs) {
  char *path = api_path("/api/v1/dags/%s/dagRuns/%s", dag, run);
  char *poll = dagd_asprintf("%s?wait=%d", path, secs);
  json_t *doc;
  int rc = request(c, "GET", poll, NULL, false, &doc);
  if (rc == CLI_OK) {
    const char *state = str_or(doc, "state", "");
    if (strcmp(state, "queued") != 0 && strcmp(state, "running") != 0) rc = CLI_FAILED;
  }
  json_decref(doc);
  free(poll);
  free(path);
  return rc;
}

/* One piece of a log as -o json|yaml prints it. */
static void print_log_doc(cli *c, const char *dag, const char *run, const char *task, long try_number,
                          const char *content, size_t len, long long next, bool done, bool stream) {
  json_t *doc = json_pack("{s:s, s:s, s:s, s:I, s:s%, s:I, s:b}", "dag_id", dag, "dag_run_id", run, "task_id", task,
                          "try_number", (json_int_t)try_number, "content", content, len, "next_offset", (json_int_t)next,
                          "done", done);
  if (!stream) {
    cli_print_doc(c, doc);
  } else if (c->yaml) {
    fputs("---\n", stdout);
    cli_print_doc(c, doc);
  } else {
    /* One JSON document a line, as a stream of them. */
    json_dumpf(doc, stdout, JSON_COMPACT);
    fputc('\n', stdout);
  }
  fflush(stdout);
  json_decref(doc);
}

static int cmd_logs(cli *c, int argc, char **argv) {
  long try_number = 0;
  bool follow = false;
  int opt;
  optind = 0;
  while ((opt = cli_getopt(c, argc, argv)) != -1) {
    if (opt == 't') try_number = atol(optarg);
    else if (opt == 'f') follow = true;
    else return CLI_USAGE;
  }
  if (argc - optind != 3) return CLI_USAGE;
  const char *dag = argv[optind], *run = argv[optind + 1], *task = argv[optind + 2];
  if (!ids_ok("logs", dag, run, task)) return CLI_USAGE;
  /* Without --try, -f follows the task through its retries. */
  bool follow_tries = follow && try_number <= 0;
  char state[32];
  int rc;
  if (try_number <= 0) {
    if ((rc = ti_get(c, dag, run, task, state, sizeof(state), &try_number)) != CLI_OK) return rc;
    if (try_number <= 0) {
      fprintf(stderr, "dagctl logs: %s has not run yet in %s\n", task, run);
      return CLI_FAILED;
    }
  }
  long long offset = 0;
  dagd_buf all; /* the whole log, for one -o json document */
  dagd_buf_init(&all);
  bool done = false, run_over = false;
  for (;;) {
    char tbuf[32];
    snprintf(tbuf, sizeof(tbuf), "%ld", try_number);
    char *base = api_path("/api/v1/dags/%s/dagRuns/%s/taskInstances/%s/logs/%s", dag, run, task, tbuf);
    char *path = dagd_asprintf("%s?offset=%lld%s", base, offset, follow ? "&wait=30" : "");
    free(base);
    json_t *doc;
    rc = request(c, "GET", path, NULL, false, &doc);
    free(path);
    if (rc != CLI_OK) break;
    json_t *content = json_object_get(doc, "content");
    const char *text = json_string_value(content);
    size_t len = json_string_length(content);
    long long next = (long long)json_integer_value(json_object_get(doc, "next_offset"));
    done = json_is_true(json_object_get(doc, "done"));
    if (!c->json) {
      fwrite(text ? text : "", 1, text ? len : 0, stdout);
      fflush(stdout);
    } else if (follow && len > 0) {
      print_log_doc(c, dag, run, task, try_number, text, len, next, done, true);
    } else if (text) {
      dagd_buf_append(&all, text, len);
    }
    json_decref(doc);
    bool more = next > offset;
    offset = next;
    /* Each answer holds at most a slice of the log: read on to its end. */
    if (more || (follow && !done)) continue;
    if (!follow_tries) break;
    /* This try is over and read: follow the next one while the task is
     * retried, stop once it ends. */
    long now_try;
    if ((rc = ti_get(c, dag, run, task, state, sizeof(state), &now_try)) != CLI_OK) break;
    /* A later try first, even one that has ended already (a quick retry
     * can start and finish between two looks): its log is read too. */
    if (now_try > try_number) {
      if (!c->json) fprintf(stderr, "dagctl logs: try %ld is over; following try %ld\n", try_number, now_try);
      try_number = now_try;
      offset = 0;
      continue;
    }
    if (!ti_pending(state)) break;
    if (run_over) break;
    if (strcmp(state, "running") == 0) continue; /* the same try again (a rescheduled sensor) */
    if ((rc = wait_run_change(c, dag, run, 10)) != CLI_OK) {
      if (rc != CLI_FAILED) break;
      /* The run ended, perhaps after a last try this loop has not read
       * yet: look once more, then stop. */
      rc = CLI_OK;
      run_over = true;
    }
  }
  if (rc == CLI_OK && c->json && !follow)
    print_log_doc(c, dag, run, task, try_number, all.data ? all.data : "", all.len, offset, done, false);
  dagd_buf_close(&all);
  return rc;
}

static int cmd_clear(cli *c, int argc, char **argv) {
  json_t *tasks = json_array();
  bool downstream = false, failed_only = false, dry = false;
  int opt;
  optind = 0;
  while ((opt = cli_getopt(c, argc, argv)) != -1) {
    if (opt == 't') json_array_append_new(tasks, json_string(optarg));
    else if (opt == 'd') downstream = true;
    else if (opt == 'f') failed_only = true;
    else if (opt == 'n') dry = true;
    else {
      json_decref(tasks);
      return CLI_USAGE;
    }
  }
  bool good = argc - optind == 2 && ids_ok("clear", argv[optind], argv[optind + 1], NULL);
  for (size_t i = 0; good && i < json_array_size(tasks); i++)
    good = ids_ok("clear", NULL, NULL, json_string_value(json_array_get(tasks, i)));
  if (!good) {
    json_decref(tasks);
    return CLI_USAGE;
  }
  /* Explicit values: the API's defaults (dry_run and only_failed true,
   * as in Airflow) are not the command's. */
  json_t *body = json_pack("{s:s, s:o, s:b, s:b, s:b}", "dag_run_id", argv[optind + 1], "task_ids", tasks,
                           "include_downstream", downstream, "only_failed", failed_only, "dry_run", dry);
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  char *path = api_path("/api/v1/dags/%s/clearTaskInstances", argv[optind]);
  json_t *doc;
  int rc = request(c, "POST", path, text, true, &doc);
  if (rc == CLI_OK && !c->json) {
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(doc, "task_instances"), i, t)
      printf("%s %s (was %s)\n", dry ? "would clear" : "cleared", str_or(t, "task_id", "?"), str_or(t, "state", "?"));
    if (dry) printf("dry run: %zu task instances would be cleared, nothing changed\n",
                    json_array_size(json_object_get(doc, "task_instances")));
  }
  json_decref(doc);
  free(text);
  free(path);
  return rc;
}

static int cmd_mark(cli *c, int argc, char **argv) {
  bool dry = false;
  int opt;
  optind = 0;
  while ((opt = cli_getopt(c, argc, argv)) != -1) {
    if (opt == 'n') dry = true;
    else return CLI_USAGE;
  }
  argc -= optind - 1;
  argv += optind - 1;
  if (argc != 5 || (strcmp(argv[4], "success") != 0 && strcmp(argv[4], "failed") != 0)) return CLI_USAGE;
  if (!ids_ok("mark", argv[1], argv[2], argv[3])) return CLI_USAGE;
  char *path = api_path("/api/v1/dags/%s/dagRuns/%s/taskInstances/%s", argv[1], argv[2], argv[3]);
  /* dry_run explicit: the API defaults to true, as Airflow's does. */
  char *body = dagd_asprintf("{\"new_state\": \"%s\", \"dry_run\": %s}", argv[4], dry ? "true" : "false");
  json_t *doc;
  int rc = request(c, "PATCH", path, body, true, &doc);
  if (rc == CLI_OK && !c->json && dry)
    printf("dry run: %s %s would go from %s to %s (the run: %s), nothing changed\n", argv[2], argv[3],
           str_or(doc, "previous_state", "?"), argv[4], str_or(doc, "dag_run_state", "?"));
  else if (rc == CLI_OK && !c->json)
    printf("%s %s: %s\n", argv[2], argv[3], argv[4]);
  json_decref(doc);
  free(body);
  free(path);
  return rc;
}

static int cmd_event(cli *c, int argc, char **argv) {
  const char *payload = NULL, *id = NULL;
  int opt;
  optind = 0;
  while ((opt = cli_getopt(c, argc, argv)) != -1) {
    if (opt == 'p') payload = optarg;
    else if (opt == 'i') id = optarg;
    else return CLI_USAGE;
  }
  if (argc - optind != 1) return CLI_USAGE;
  json_t *body = json_pack("{s:s}", "name", argv[optind]);
  if (payload) {
    json_error_t jerr;
    json_t *p = json_loads(payload, 0, &jerr);
    if (!json_is_object(p)) {
      fprintf(stderr, "dagctl event: --payload must be a JSON object (%s)\n", p ? "not an object" : jerr.text);
      json_decref(p);
      json_decref(body);
      return CLI_USAGE;
    }
    json_object_set_new(body, "payload", p);
  }
  if (id) json_object_set_new(body, "id", json_string(id));
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  json_t *doc;
  int rc = request(c, "POST", "/api/v1/events", text, true, &doc);
  if (rc == CLI_OK && !c->json) {
    const char *detail = json_string_value(json_object_get(doc, "detail"));
    printf("event %lld%s%s%s\n", (long long)json_integer_value(json_object_get(doc, "event_id")),
           json_is_true(json_object_get(doc, "duplicate")) ? " (a repeat: nothing started)" : "",
           detail ? ": " : "", detail ? detail : "");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(doc, "dag_runs"), i, r)
      printf("started %s %s\n", str_or(r, "dag_id", "?"), str_or(r, "dag_run_id", "?"));
    json_array_foreach(json_object_get(doc, "held"), i, r)
      printf("held    %s (%s)\n", str_or(r, "dag_id", "?"), str_or(r, "reason", "?"));
  }
  json_decref(doc);
  free(text);
  return rc;
}

int cli_cmd_remote(cli *c, const char *name, int argc, char **argv) {
  static const struct {
    const char *name;
    int (*fn)(cli *, int, char **);
  } table[] = {{"dags", cmd_dags},   {"pause", cmd_pause}, {"unpause", cmd_unpause}, {"trigger", cmd_trigger},
               {"backfill", cmd_backfill}, {"runs", cmd_runs}, {"tasks", cmd_tasks}, {"logs", cmd_logs},
               {"clear", cmd_clear}, {"mark", cmd_mark}, {"event", cmd_event}};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(table); i++) {
    if (strcmp(table[i].name, name) != 0) continue;
    dagd_httpc_global_init();
    int rc = table[i].fn(c, argc, argv);
    dagd_httpc_global_cleanup();
    return rc;
  }
  return CLI_USAGE;
}
