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
  return bsearch(&key, d->files, d->n_files, sizeof(*d->files), file_cmp);
}

void daemon_dags_close(daemon_t *d) {
  for (size_t i = 0; i < d->n_files; i++) free(d->files[i].path);
  free(d->files);
  d->files = NULL;
  d->n_files = 0;
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

int daemon_load_dags(daemon_t *d, bool initial) {
  dagd_load_opts opts;
  dagd_load_opts_default(&opts);
  opts.time_limit_ms = d->cfg.parse_timeout * 1000;
  dagd_dagbag bag;
  dagd_dagbag_init(&bag);
  char **paths = NULL;
  size_t n_paths = 0;
  int load_rc = dagd_lua_list_files(d->cfg.dags_folder, &paths, &n_paths, &bag);
  /* Which files changed since the last load: size, mtime or inode. */
  file_state *states = dagd_calloc(n_paths ? n_paths : 1, sizeof(*states));
  char **changed = dagd_calloc(n_paths ? n_paths : 1, sizeof(*changed));
  size_t n_changed = 0;
  for (size_t i = 0; i < n_paths; i++) {
    struct stat st;
    states[i].path = paths[i];
    if (stat(paths[i], &st) == 0) {
      states[i].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
      states[i].size = st.st_size;
      states[i].ino = st.st_ino;
    }
    const file_state *old = initial ? NULL : find_file(d, paths[i]);
    if (old && old->mtime_ns == states[i].mtime_ns && old->size == states[i].size && old->ino == states[i].ino)
      carry_over(&d->bag, &bag, paths[i]);
    else
      changed[n_changed++] = paths[i];
  }
  /* Unchanged files went first, so a changed file that now declares an
   * id another file has is the one in error. */
  if (n_changed > 0) {
    int rc = dagd_lua_load_files(changed, n_changed, &opts, &bag);
    if (load_rc == 0) load_rc = rc;
  }
  for (size_t i = 0; i < bag.n_errors; i++) {
    const dagd_load_error *e = &bag.errors[i];
    bool fresh = initial;
    for (size_t c = 0; c < n_changed && !fresh; c++) fresh = strcmp(changed[c], e->file) == 0;
    if (fresh) DAGD_LOG(DAGD_LOG_ERROR, "loader", "%s:%d: %s", e->file, e->line, e->message);
  }
  bag.n_files = n_paths;
  if (!initial) keep_last_good(&d->bag, &bag);
  if (!initial) DAGD_LOG(DAGD_LOG_INFO, "loader", "%zu of %zu files changed", n_changed, n_paths);
  free(paths); /* the strings now belong to states */
  daemon_dags_close(d);
  d->files = states;
  d->n_files = n_paths;

  /* The engine records every DAG (a DAG new to the store takes its
   * paused flag from is_paused_upon_creation) in one transaction. */
  dagd_err err;
  dagd_err_init(&err);
  int rc = dagd_engine_set_dags(d->engine, (const dagd_dag *const *)bag.dags, bag.n_dags, &err);
  if (rc != 0) {
    DAGD_LOG(DAGD_LOG_ERROR, "store", "recording DAGs: %s", err.msg);
    dagd_dagbag_close(&bag);
    free(changed);
    return rc;
  }
  dagd_dagbag_close(&d->bag); /* the engine no longer points into it */
  d->bag = bag;
  DAGD_LOG(DAGD_LOG_INFO, "loader", "%s: %zu files, %zu DAGs, %zu errors", d->cfg.dags_folder, bag.n_files,
           bag.n_dags, bag.n_errors);
  /* Each DAG of a file (re)loaded now, with when it runs next. */
  int64_t now = (int64_t)daemon_now();
  for (size_t i = 0; i < bag.n_dags; i++) {
    bool fresh = initial;
    for (size_t c = 0; c < n_changed && !fresh; c++)
      fresh = bag.dags[i]->fileloc && strcmp(changed[c], bag.dags[i]->fileloc) == 0;
    if (fresh) report_dag(d, bag.dags[i], now);
  }
  free(changed);
  daemon_kick(d);
  return load_rc;
}

static void on_reload(uv_timer_t *h) {
  daemon_t *d = h->data;
  DAGD_LOG(DAGD_LOG_INFO, "loader", "%s changed: reloading", d->cfg.dags_folder);
  daemon_load_dags(d, false);
}

static void on_dags_changed(uv_fs_event_t *h, const char *file, int events, int status) {
  daemon_t *d = h->data;
  /* Editors write in several steps; reload once things settle. */
  uv_timer_start(&d->reload, on_reload, 200, 0);
}

void daemon_watch_dags(daemon_t *d) {
  uv_fs_event_init(&d->loop, &d->watch);
  d->watch.data = d;
  int rc = uv_fs_event_start(&d->watch, on_dags_changed, d->cfg.dags_folder, 0);
  if (rc < 0) {
    DAGD_LOG(DAGD_LOG_WARN, "loader", "cannot watch %s (%s): reload with SIGHUP", d->cfg.dags_folder,
             uv_strerror(rc));
    uv_close((uv_handle_t *)&d->watch, NULL);
    return;
  }
  d->watching = true;
}
