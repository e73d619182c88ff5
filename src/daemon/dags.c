/* The daemon's DAG folder: loads it, keeps the last good version of a
 * DAG whose file broke, hands the DAGs to the engine (which records them
 * in the store), and watches the folder so that edits reload without a
 * restart.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dagd/cron.h"
#include "dagd/err.h"
#include "dagd/log.h"
#include "dagd/mask.h"
#include "dagd/time.h"
#include "dagd/tz.h"
#include "dagd/util.h"
#include "daemon.h"

static bool file_has_error(const dagd_dagbag *bag, const char *file) {
  for (size_t i = 0; i < bag->n_errors; i++)
    if (file && strcmp(bag->errors[i].file, file) == 0) return true;
  return false;
}

/* A file that failed to load keeps serving the DAGs it had: move them
 * from the old bag into the new one (unless the new bag has the id). */
static void keep_last_good(dagd_dagbag *old, dagd_dagbag *bag) {
  for (size_t i = 0; i < old->n_dags; i++) {
    dagd_dag *dag = old->dags[i];
    if (dag == NULL || !file_has_error(bag, dag->fileloc) || dagd_dagbag_find(bag, dag->id)) continue;
    DAGD_LOG(DAGD_LOG_WARN, "loader", "%s: keeping the last good version of DAG %s", dag->fileloc, dag->id);
    bag->dags = dagd_realloc(bag->dags, (bag->n_dags + 1) * sizeof(*bag->dags));
    bag->dags[bag->n_dags++] = dag;
    old->dags[i] = NULL;
  }
}

static int file_cmp(const void *a, const void *b) {
  return strcmp(((const file_state *)a)->path, ((const file_state *)b)->path);
}

static const file_state *find_file(const daemon_t *d, const char *path) {
  file_state key = {.path = (char *)path};
  return bsearch(&key, d->dags.files, d->dags.n_files, sizeof(*d->dags.files), file_cmp);
}

static void on_reload(uv_timer_t *h);

void daemon_dags_close(daemon_t *d) {
  for (size_t i = 0; i < d->dags.n_files; i++) free(d->dags.files[i].path);
  free(d->dags.files);
  d->dags.files = NULL;
  d->dags.n_files = 0;
}

/* Moves the DAGs and copies the errors of an unchanged file from the old
 * bag into the new one. */
static void carry_over(dagd_dagbag *old, dagd_dagbag *bag, const char *path) {
  for (size_t i = 0; i < old->n_dags; i++) {
    if (old->dags[i] == NULL || old->dags[i]->fileloc == NULL || strcmp(old->dags[i]->fileloc, path) != 0) continue;
    dagd_dagbag_add(bag, old->dags[i]);
    old->dags[i] = NULL;
  }
  for (size_t i = 0; i < old->n_errors; i++)
    if (strcmp(old->errors[i].file, path) == 0)
      dagd_dagbag_add_error(bag, old->errors[i].file, old->errors[i].line, old->errors[i].message);
}

/* Says how a loaded DAG will start runs: its next scheduled run (as
 * `dagctl next` computes it, in the DAG's zone), the events it listens
 * to, or that only a request starts it; and whether it is paused. */
static void report_dag(daemon_t *d, const dagd_dag *dag, int64_t now) {
  dagd_store_dag row;
  dagd_err err;
  dagd_err_init(&err);
  bool paused = dagd_store_dag_get(d->store, dag->id, &row, &err) == 0 && row.is_paused;
  if (!dagd_err_is_set(&err)) dagd_store_dag_clear(&row);
  const char *note = paused ? " (paused: no run starts until it is unpaused)" : "";
  dagd_buf events;
  dagd_buf_init(&events);
  for (size_t i = 0; i < dag->n_on_event; i++) dagd_buf_printf(&events, "%s\"%s\"", i ? ", " : "", dag->on_event[i]);
  dagd_interval iv;
  if (dag->schedule && dagd_dag_next_interval(dag, now, &iv) == 0) {
    char at[40], from[40];
    dagd_time_format_offset(iv.run_after, dagd_tz_offset(dag->tz, iv.run_after), at);
    dagd_time_format_offset(iv.start, dagd_tz_offset(dag->tz, iv.start), from);
    DAGD_LOG(DAGD_LOG_INFO, "loader", "dag %s: next run %s (schedule \"%s\", %s; data interval from %s)%s%s%s", dag->id,
             at, dagd_cron_text(dag->schedule), dagd_tz_name(dag->tz), from,
             events.len ? "; also on events " : "", events.len ? events.data : "", note);
  } else if (dag->schedule) {
    DAGD_LOG(DAGD_LOG_INFO, "loader", "dag %s: no further scheduled run (schedule \"%s\" ends)%s%s%s", dag->id,
             dagd_cron_text(dag->schedule), events.len ? "; on events " : "", events.len ? events.data : "", note);
  } else if (events.len) {
    DAGD_LOG(DAGD_LOG_INFO, "loader", "dag %s: no schedule; runs on events %s or on request%s", dag->id, events.data,
             note);
  } else {
    DAGD_LOG(DAGD_LOG_INFO, "loader", "dag %s: no schedule; runs on request only%s", dag->id, note);
  }
  dagd_buf_close(&events);
}

/* A load between the walk of the folder and the end of the parse. */
struct dags_load {
  bool initial;
  int walk_rc;
  dagd_dagbag walk_errors; /* what the walk found wrong */
  file_state *states;      /* every file, sorted; the paths are owned here */
  size_t n_paths;
  char **changed;          /* borrowed from states */
  size_t n_changed;
};

static void load_free(dags_load *l) {
  if (l == NULL) return;
  for (size_t i = 0; i < l->n_paths; i++) free(l->states[i].path);
  free(l->states);
  free(l->changed);
  dagd_dagbag_close(&l->walk_errors);
  free(l);
}

static void mask_str(const dagd_mask *m, char **s) {
  if (*s == NULL) return;
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_buf_append(&b, *s, strlen(*s));
  dagd_mask_text(m, &b);
  free(*s);
  *s = dagd_strndup(b.data, b.len);
  dagd_buf_close(&b);
}

/* What the API serves of a DAG file (descriptions, docs, import errors)
 * never shows a secret of the daemon: masked as its logs are. */
static void mask_file_fields(const daemon_t *d, dagd_dagbag *bag) {
  dagd_mask m;
  dagd_mask_init(&m);
  extern char **environ;
  dagd_mask_add_env_secrets(&m, environ);
  for (size_t i = 0; i < d->cfg.n_api_tokens; i++) dagd_mask_add_secret(&m, d->cfg.api_tokens[i]);
  for (size_t i = 0; i < d->cfg.n_webhook_secrets; i++) dagd_mask_add_secret(&m, d->cfg.webhook_secrets[i].value);
  const char *token = getenv("DAGD_API_TOKEN");
  if (token) dagd_mask_add_secret(&m, token);
  if (m.n == 0) {
    dagd_mask_close(&m);
    return;
  }
  for (size_t i = 0; i < bag->n_errors; i++) {
    mask_str(&m, &bag->errors[i].message);
    mask_str(&m, &bag->errors[i].file);
    mask_str(&m, &bag->errors[i].traceback);
  }
  for (size_t i = 0; i < bag->n_dags; i++) {
    dagd_dag *dag = bag->dags[i];
    mask_str(&m, &dag->description);
    for (size_t t = 0; t < dag->n_tasks; t++) mask_str(&m, &dag->tasks[t]->doc);
  }
  dagd_mask_close(&m);
}

static void on_parsed(daemon_t *d, daemon_parse *p, dagd_dagbag *results, size_t n);

/* The end of a load: the new bag from the unchanged files' DAGs and the
 * parse results, handed to the engine. */
static int finish_load(daemon_t *d, dags_load *l, dagd_dagbag *results) {
  bool initial = l->initial;
  dagd_dagbag bag;
  dagd_dagbag_init(&bag);
  int load_rc = l->walk_rc;
  for (size_t i = 0; i < l->walk_errors.n_errors; i++) {
    const dagd_load_error *e = &l->walk_errors.errors[i];
    dagd_dagbag_add_error(&bag, e->file, e->line, e->message);
  }
  size_t n_walk_errors = bag.n_errors;
  /* Unchanged files went first, so a changed file that now declares an
   * id another file has is the one in error. */
  for (size_t i = 0, c = 0; i < l->n_paths; i++) {
    if (c < l->n_changed && l->changed[c] == l->states[i].path) {
      c++;
      continue;
    }
    carry_over(&d->dags.bag, &bag, l->states[i].path);
  }
  for (size_t c = 0; c < l->n_changed; c++) {
    mask_file_fields(d, &results[c]);
    int rc = dagd_dagbag_merge(&bag, &results[c]);
    if (load_rc == 0) load_rc = rc;
  }
  for (size_t i = 0; i < bag.n_errors; i++) {
    const dagd_load_error *e = &bag.errors[i];
    /* What the walk found is said once, not at every reload. */
    bool fresh = initial || (i < n_walk_errors && !file_has_error(&d->dags.bag, e->file));
    for (size_t c = 0; c < l->n_changed && !fresh; c++) fresh = strcmp(l->changed[c], e->file) == 0;
    if (fresh) DAGD_LOG(DAGD_LOG_ERROR, "loader", "%s:%d: %s", e->file, e->line, e->message);
  }
  bag.n_files = l->n_paths;
  if (!initial) keep_last_good(&d->dags.bag, &bag);
  if (!initial) DAGD_LOG(DAGD_LOG_INFO, "loader", "%zu of %zu files changed", l->n_changed, l->n_paths);
  daemon_dags_close(d);
  d->dags.files = l->states; /* the paths now belong to d->dags.files */
  d->dags.n_files = l->n_paths;
  l->states = NULL;
  l->n_paths = 0;

  /* The engine records every DAG (a DAG new to the store takes its
   * paused flag from is_paused_upon_creation) in one transaction. */
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_engine_set_dags(d->engine, (const dagd_dag *const *)bag.dags, bag.n_dags, &err);
  if (rc != 0) {
    dagd_dagbag_close(&bag);
    if (rc == DAGD_ETIMEDOUT && !d->stopped) {
      /* Busy (another process holds the write lock): forget what the
       * files looked like, so that the retry reads every one again. */
      daemon_store_busy(d, true);
      daemon_dags_close(d);
      uv_timer_start(&d->dags.reload, on_reload, 1000, 0);
      return rc;
    }
    DAGD_LOG(DAGD_LOG_ERROR, "store", "recording DAGs: %s", err.msg);
    return rc;
  }
  dagd_dagbag_close(&d->dags.bag); /* the engine no longer points into it */
  d->dags.bag = bag;
  DAGD_LOG(DAGD_LOG_INFO, "loader", "%s: %zu files, %zu DAGs, %zu errors", d->cfg.dags_folder, bag.n_files,
           bag.n_dags, bag.n_errors);
  /* Each DAG of a file (re)loaded now, with when it runs next. */
  int64_t now = (int64_t)daemon_now();
  for (size_t i = 0; i < bag.n_dags; i++) {
    bool fresh = initial;
    for (size_t c = 0; c < l->n_changed && !fresh; c++)
      fresh = bag.dags[i]->fileloc && strcmp(l->changed[c], bag.dags[i]->fileloc) == 0;
    if (fresh) report_dag(d, bag.dags[i], now);
  }
  daemon_kick(d);
  return load_rc;
}

/* The first load waits this long (the API not listening yet) so that a
 * client that sees the daemon listen finds its DAGs; a slower parse goes
 * on with the API up, and its DAGs appear when it ends. */
#define FIRST_LOAD_WAIT_MS 3000

int daemon_load_dags(daemon_t *d, bool initial) {
  if (d->stopped) return 0;
  if (d->dags.parse != NULL) { /* once this one ends */
    d->dags.reload_again = true;
    return 0;
  }
  dags_load *l = dagd_calloc(1, sizeof(*l));
  l->initial = initial;
  dagd_dagbag_init(&l->walk_errors);
  char **paths = NULL;
  l->walk_rc = dagd_lua_list_files(d->cfg.dags_folder, &paths, &l->n_paths, &l->walk_errors);
  /* Which files changed since the last load: size, mtime or inode. */
  l->states = dagd_calloc(l->n_paths ? l->n_paths : 1, sizeof(*l->states));
  l->changed = dagd_calloc(l->n_paths ? l->n_paths : 1, sizeof(*l->changed));
  for (size_t i = 0; i < l->n_paths; i++) {
    struct stat st;
    l->states[i].path = paths[i];
    if (stat(paths[i], &st) == 0) {
      l->states[i].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
      l->states[i].size = st.st_size;
      l->states[i].ino = st.st_ino;
    }
    const file_state *old = initial ? NULL : find_file(d, paths[i]);
    if (!(old && old->mtime_ns == l->states[i].mtime_ns && old->size == l->states[i].size &&
          old->ino == l->states[i].ino))
      l->changed[l->n_changed++] = paths[i];
  }
  free(paths); /* the strings now belong to states */
  if (l->n_changed == 0) {
    int rc = finish_load(d, l, NULL);
    load_free(l);
    return rc;
  }
  d->dags.load = l;
  daemon_parse_start(d, l->changed, l->n_changed, on_parsed); /* sets d->dags.parse */
  if (initial && d->dags.parse != NULL && !daemon_parse_wait(d->dags.parse, FIRST_LOAD_WAIT_MS))
    DAGD_LOG(DAGD_LOG_WARN, "loader",
             "%s: %zu files still parsing after %d s; serving the API meanwhile (their DAGs appear when they load)",
             d->cfg.dags_folder, daemon_parse_pending(d->dags.parse), FIRST_LOAD_WAIT_MS / 1000);
  return 0;
}

static void on_parsed(daemon_t *d, daemon_parse *p, dagd_dagbag *results, size_t n) {
  dags_load *l = d->dags.load;
  d->dags.load = NULL;
  d->dags.parse = NULL;
  finish_load(d, l, results);
  load_free(l);
  daemon_parse_free(p);
  if (d->dags.reload_again && !d->stopped) {
    d->dags.reload_again = false;
    daemon_load_dags(d, false);
  }
}

void daemon_dags_stop(daemon_t *d) {
  if (d->dags.parse == NULL) return;
  daemon_parse_free(d->dags.parse);
  d->dags.parse = NULL;
  load_free(d->dags.load);
  d->dags.load = NULL;
}

static void on_reload(uv_timer_t *h) {
  daemon_t *d = h->data;
  if (d->stopped) return;
  DAGD_LOG(DAGD_LOG_INFO, "loader", "%s changed: reloading", d->cfg.dags_folder);
  daemon_load_dags(d, false);
}

static void on_dags_changed(uv_fs_event_t *h, const char *file, int events, int status) {
  daemon_t *d = h->data;
  /* Editors write in several steps; reload once things settle. */
  uv_timer_start(&d->dags.reload, on_reload, 200, 0);
}

void daemon_watch_dags(daemon_t *d) {
  uv_fs_event_init(&d->loop, &d->dags.watch);
  d->dags.watch.data = d;
  int rc = uv_fs_event_start(&d->dags.watch, on_dags_changed, d->cfg.dags_folder, 0);
  if (rc < 0) {
    DAGD_LOG(DAGD_LOG_WARN, "loader", "cannot watch %s (%s): reload with SIGHUP", d->cfg.dags_folder,
             uv_strerror(rc));
    uv_close((uv_handle_t *)&d->dags.watch, NULL);
    return;
  }
  d->dags.watching = true;
}
