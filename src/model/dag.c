/* The DAG model: building a DAG task by task, then freezing it with
 * dagd_dag_finalize (dependency resolution, cycle detection with the cycle's
 * path, topological order, effective priority weights).
 * SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/cron.h"
#include "dagd/err.h"
#include "dagd/model.h"
#include "dagd/tz.h"
#include "dagd/util.h"

/* Sets err to "fileloc:line: message" (first error wins). */
static int dag_fail(const dagd_dag *dag, dagd_err *err, int code, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int dag_fail(const dagd_dag *dag, dagd_err *err, int code, int line, const char *fmt, ...) {
  if (err == NULL || dagd_err_is_set(err)) return code;
  char msg[480];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return dagd_err_set(err, code, "%s:%d: %s", dag->fileloc ? dag->fileloc : "<dag>", line, msg);
}

dagd_dag *dagd_dag_new(const char *id, const char *fileloc, int line) {
  dagd_dag *dag = dagd_calloc(1, sizeof(*dag));
  dag->id = dagd_strdup(id ? id : "");
  dag->fileloc = fileloc ? dagd_strdup(fileloc) : NULL;
  dag->line = line;
  dag->tz = (dagd_tz *)dagd_tz_utc(); /* shared; dagd_tz_free ignores it */
  dag->max_active_runs = 16;
  dag->max_active_tasks = 16;
  return dag;
}

static void free_strv(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

static void task_free(dagd_task *t) {
  if (t == NULL) return;
  free(t->id);
  free(t->pool);
  for (size_t i = 0; i < t->n_env; i++) {
    free(t->env[i].key);
    free(t->env[i].value);
  }
  free(t->env);
  free(t->cwd);
  free_strv(t->outputs, t->n_outputs);
  json_decref(t->on_failure);
  json_decref(t->on_success);
  json_decref(t->on_retry);
  free(t->doc);
  json_decref(t->config);
  free(t->upstream);
  free(t->downstream);
  free_strv(t->dep_ids, t->n_deps);
  free(t->dep_lines);
  free(t);
}

void dagd_dag_free(dagd_dag *dag) {
  if (dag == NULL) return;
  for (size_t i = 0; i < dag->n_tasks; i++) task_free(dag->tasks[i]);
  free(dag->tasks);
  free(dag->id);
  free(dag->fileloc);
  free(dag->description);
  dagd_cron_free(dag->schedule);
  dagd_tz_free(dag->tz);
  json_decref(dag->params);
  free_strv(dag->on_event, dag->n_on_event);
  free_strv(dag->tags, dag->n_tags);
  json_decref(dag->on_failure);
  json_decref(dag->on_success);
  json_decref(dag->on_retry);
  free(dag->topo);
  free(dag->topo_pos);
  free(dag->id_slots);
  free(dag);
}

/* FNV-1a: ids are short, and this keeps lookups O(1) for DAGs with
 * thousands of generated tasks. */
static size_t id_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return (size_t)h;
}

static void index_insert(size_t *slots, size_t cap, const char *id, size_t idx) {
  size_t i = id_hash(id) & (cap - 1);
  while (slots[i] != 0) i = (i + 1) & (cap - 1);
  slots[i] = idx + 1;
}

static void index_grow(dagd_dag *dag) {
  size_t cap = dag->id_cap ? dag->id_cap * 2 : 32;
  size_t *slots = dagd_calloc(cap, sizeof(*slots));
  for (size_t i = 0; i < dag->n_tasks; i++) index_insert(slots, cap, dag->tasks[i]->id, i);
  free(dag->id_slots);
  dag->id_slots = slots;
  dag->id_cap = cap;
}

long dagd_dag_task_index(const dagd_dag *dag, const char *id) {
  if (dag == NULL || id == NULL || dag->id_cap == 0) return -1;
  size_t i = id_hash(id) & (dag->id_cap - 1);
  while (dag->id_slots[i] != 0) {
    size_t idx = dag->id_slots[i] - 1;
    if (strcmp(dag->tasks[idx]->id, id) == 0) return (long)idx;
    i = (i + 1) & (dag->id_cap - 1);
  }
  return -1;
}

dagd_task *dagd_dag_find_task(const dagd_dag *dag, const char *id) {
  long i = dagd_dag_task_index(dag, id);
  return i < 0 ? NULL : dag->tasks[i];
}

int dagd_dag_add_task(dagd_dag *dag, const char *id, dagd_op op, int line, dagd_task **out,
                      dagd_err *err) {
  if (out) *out = NULL;
  if (dag->finalized) return dag_fail(dag, err, DAGD_EINVAL, line, "DAG \"%s\" is already finalized", dag->id);
  const char *why = dagd_id_problem(id, false);
  if (why != NULL)
    return dag_fail(dag, err, DAGD_EINVAL, line, "invalid task id \"%.250s\": %s", id ? id : "", why);
  if ((unsigned)op >= DAGD_OP__COUNT)
    return dag_fail(dag, err, DAGD_EINVAL, line, "task \"%s\": unknown operator", id);
  long prev = dagd_dag_task_index(dag, id);
  if (prev >= 0)
    return dag_fail(dag, err, DAGD_EEXIST, line, "duplicate task id \"%s\" in DAG \"%s\" (first declared at line %d)",
                    id, dag->id, dag->tasks[prev]->line);
  dagd_task *t = dagd_calloc(1, sizeof(*t));
  t->id = dagd_strdup(id);
  t->op = op;
  t->line = line;
  t->retry_delay = 300; /* Airflow's default */
  t->trigger_rule = DAGD_TR_ALL_SUCCESS;
  t->pool = dagd_strdup("default");
  t->priority_weight = 1;
  t->config = json_object();
  if ((dag->n_tasks & (dag->n_tasks - 1)) == 0)
    dag->tasks = dagd_realloc(dag->tasks, (dag->n_tasks ? dag->n_tasks * 2 : 1) * sizeof(*dag->tasks));
  dag->tasks[dag->n_tasks++] = t;
  if (dag->n_tasks * 2 > dag->id_cap)
    index_grow(dag);
  else
    index_insert(dag->id_slots, dag->id_cap, id, dag->n_tasks - 1);
  if (out) *out = t;
  return 0;
}

void dagd_task_add_dep(dagd_task *task, const char *upstream_id, int line) {
  for (size_t i = 0; i < task->n_deps; i++)
    if (strcmp(task->dep_ids[i], upstream_id) == 0) return;
  if ((task->n_deps & (task->n_deps - 1)) == 0) {
    size_t cap = task->n_deps ? task->n_deps * 2 : 1;
    task->dep_ids = dagd_realloc(task->dep_ids, cap * sizeof(*task->dep_ids));
    task->dep_lines = dagd_realloc(task->dep_lines, cap * sizeof(*task->dep_lines));
  }
  task->dep_ids[task->n_deps] = dagd_strdup(upstream_id);
  task->dep_lines[task->n_deps] = line;
  task->n_deps++;
}

/* The line where `down` declared its dependency on `up`. */
static int dep_line(const dagd_dag *dag, const dagd_task *down, size_t up) {
  for (size_t i = 0; i < down->n_deps; i++)
    if (strcmp(down->dep_ids[i], dag->tasks[up]->id) == 0) return down->dep_lines[i];
  return down->line;
}

/* Called when Kahn's algorithm left tasks unplaced: every such task has an
 * unplaced upstream, so walking upstream from any of them must revisit a
 * task, and the walk from that task on is a cycle. Prints it in edge
 * direction (upstream -> downstream), starting at its earliest-declared
 * task so the message is stable. */
static int report_cycle(const dagd_dag *dag, const size_t *indeg, dagd_err *err) {
  size_t n = dag->n_tasks;
  long *seen_at = malloc(n * sizeof(*seen_at));
  size_t *walk = malloc((n + 1) * sizeof(*walk));
  if (seen_at == NULL || walk == NULL) abort();
  for (size_t i = 0; i < n; i++) seen_at[i] = -1;
  size_t cur = 0;
  while (indeg[cur] == 0) cur++;
  size_t len = 0;
  while (seen_at[cur] < 0) {
    seen_at[cur] = (long)len;
    walk[len++] = cur;
    const dagd_task *t = dag->tasks[cur];
    size_t next = cur;
    for (size_t j = 0; j < t->n_upstream; j++) {
      if (indeg[t->upstream[j]] != 0) {
        next = t->upstream[j];
        break;
      }
    }
    cur = next;
  }
  /* walk[seen_at[cur] .. len) goes upstream around the cycle; reverse it. */
  size_t start = (size_t)seen_at[cur], clen = len - start;
  /* calloc: a cycle has at least one task, but the compiler cannot know. */
  size_t *cyc = dagd_calloc(clen ? clen : 1, sizeof(*cyc));
  for (size_t i = 0; i < clen; i++) cyc[i] = walk[len - 1 - i];
  size_t rot = 0;
  for (size_t i = 1; i < clen; i++)
    if (cyc[i] < cyc[rot]) rot = i;
  dagd_buf b;
  dagd_buf_init(&b);
  for (size_t i = 0; i <= clen; i++) {
    if (i) dagd_buf_puts(&b, " -> ");
    dagd_buf_puts(&b, dag->tasks[cyc[(rot + i) % clen]]->id);
  }
  /* Point at the edge that closes the cycle back to its first task. */
  const dagd_task *first = dag->tasks[cyc[rot]];
  size_t last = cyc[(rot + clen - 1) % clen];
  int rc = dag_fail(dag, err, DAGD_ECYCLE, dep_line(dag, first, last), "dependency cycle: %s", b.data);
  dagd_buf_close(&b);
  free(cyc);
  free(walk);
  free(seen_at);
  return rc;
}

static int resolve_deps(dagd_dag *dag, dagd_err *err) {
  size_t n = dag->n_tasks;
  size_t *n_down = dagd_calloc(n ? n : 1, sizeof(*n_down));
  for (size_t i = 0; i < n; i++) {
    dagd_task *t = dag->tasks[i];
    free(t->upstream);
    t->upstream = dagd_malloc((t->n_deps ? t->n_deps : 1) * sizeof(*t->upstream));
    t->n_upstream = 0;
    for (size_t j = 0; j < t->n_deps; j++) {
      long up = dagd_dag_task_index(dag, t->dep_ids[j]);
      if (up < 0) {
        free(n_down);
        return dag_fail(dag, err, DAGD_ENOENT, t->dep_lines[j], "task \"%s\" depends on unknown task \"%s\"",
                        t->id, t->dep_ids[j]);
      }
      if ((size_t)up == i) {
        free(n_down);
        return dag_fail(dag, err, DAGD_ECYCLE, t->dep_lines[j], "dependency cycle: %s -> %s", t->id, t->id);
      }
      t->upstream[t->n_upstream++] = (size_t)up;
      n_down[up]++;
    }
  }
  for (size_t i = 0; i < n; i++) {
    dagd_task *t = dag->tasks[i];
    free(t->downstream);
    t->downstream = dagd_malloc((n_down[i] ? n_down[i] : 1) * sizeof(*t->downstream));
    t->n_downstream = 0;
  }
  free(n_down);
  /* Downstream lists in declaration order of the downstream task. */
  for (size_t i = 0; i < n; i++) {
    dagd_task *t = dag->tasks[i];
    for (size_t j = 0; j < t->n_upstream; j++) {
      dagd_task *u = dag->tasks[t->upstream[j]];
      u->downstream[u->n_downstream++] = i;
    }
  }
  return 0;
}

/* Kahn's algorithm with a FIFO seeded in declaration order, so the order
 * is deterministic and close to how the file reads. */
static int topo_sort(dagd_dag *dag, dagd_err *err) {
  size_t n = dag->n_tasks;
  size_t *indeg = dagd_calloc(n ? n : 1, sizeof(*indeg));
  free(dag->topo);
  free(dag->topo_pos);
  dag->topo = dagd_malloc((n ? n : 1) * sizeof(*dag->topo));
  dag->topo_pos = dagd_malloc((n ? n : 1) * sizeof(*dag->topo_pos));
  size_t head = 0, tail = 0;
  for (size_t i = 0; i < n; i++) {
    indeg[i] = dag->tasks[i]->n_upstream;
    if (indeg[i] == 0) dag->topo[tail++] = i;
  }
  while (head < tail) {
    const dagd_task *t = dag->tasks[dag->topo[head++]];
    for (size_t j = 0; j < t->n_downstream; j++)
      if (--indeg[t->downstream[j]] == 0) dag->topo[tail++] = t->downstream[j];
  }
  for (size_t k = 0; k < tail; k++) dag->topo_pos[dag->topo[k]] = k;
  int rc = 0;
  if (tail < n) rc = report_cycle(dag, indeg, err);
  free(indeg);
  return rc;
}

/* Effective weight = own weight + the weights of every distinct task
 * downstream. One traversal per task: O(n * (n + e)), which stays in the
 * milliseconds for DAGs of a few thousand tasks; a bitset sweep in reverse
 * topological order would be the next step if that ever matters. */
static void compute_weights(dagd_dag *dag) {
  size_t n = dag->n_tasks;
  size_t *stamp = dagd_calloc(n ? n : 1, sizeof(*stamp));
  size_t *stack = dagd_malloc((n ? n : 1) * sizeof(*stack));
  for (size_t i = 0; i < n; i++) {
    dagd_task *t = dag->tasks[i];
    int64_t w = t->priority_weight;
    size_t sp = 0;
    stamp[i] = i + 1;
    stack[sp++] = i;
    while (sp > 0) {
      const dagd_task *c = dag->tasks[stack[--sp]];
      for (size_t j = 0; j < c->n_downstream; j++) {
        size_t d = c->downstream[j];
        if (stamp[d] == i + 1) continue;
        stamp[d] = i + 1;
        w += dag->tasks[d]->priority_weight;
        stack[sp++] = d;
      }
    }
    t->weight = w;
  }
  free(stack);
  free(stamp);
}

int dagd_dag_finalize(dagd_dag *dag, dagd_err *err) {
  if (dag->finalized) return 0;
  /* The loader checks ids first; this holds for any other producer. */
  const char *why = dagd_id_problem(dag->id, false);
  if (why != NULL) return dag_fail(dag, err, DAGD_EINVAL, dag->line, "invalid DAG id \"%.250s\": %s", dag->id, why);
  if (dag->has_start_date && dag->has_end_date && dag->end_date < dag->start_date)
    return dag_fail(dag, err, DAGD_EINVAL, dag->line, "DAG \"%s\": end_date is before start_date", dag->id);
  int rc = resolve_deps(dag, err);
  if (rc == 0) rc = topo_sort(dag, err);
  if (rc != 0) return rc;
  compute_weights(dag);
  /* "every 15m" counts from start_date, as Airflow's timedelta schedules do. */
  if (dag->schedule != NULL && dagd_cron_is_interval(dag->schedule) && dag->has_start_date)
    dagd_cron_set_anchor(dag->schedule, dag->start_date);
  dag->finalized = true;
  return 0;
}
