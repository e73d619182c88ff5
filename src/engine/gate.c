/* The gate's baselines, the engine's part: what a gate's try compares
 * against (the values of the DAG's last successful run, or the ones last
 * promoted: "deployed"), and, when a run succeeds, what its gates checked
 * becoming their "deployed" baseline. The comparison itself runs in the
 * try (operators/gate.c); the values are kept by the store (baselines.c).
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dagd/err.h"
#include "dagd/command.h"
#include "dagd/store.h"
#include "engine/internal.h"

/* The inputs a gate gets besides its config: the baseline's values and
 * which run they come from (none when there is no baseline yet). */
json_t *dagd__gate_extra(dagd_engine *e, const dagd_dag *dag, const dagd_task *task, int64_t run_pk) {
  const char *kind = json_string_value(json_object_get(task->config, "baseline"));
  const char *from = json_string_value(json_object_get(task->config, "from"));
  if (kind == NULL || from == NULL) return NULL;
  dagd_err err;
  dagd_err_init(&err);
  json_t *extra = json_object();
  if (strcmp(kind, "last_success") == 0) {
    dagd_store_run last;
    char *text = NULL;
    if (dagd_store_run_get_last_success(e->store, dag->id, run_pk, &last, &err) == 0) {
      if (dagd_store_output_get_json(e->store, last.pk, &text, &err) == 0) {
        json_t *outs = json_loads(text, 0, NULL);
        json_t *vals = json_object_get(outs, from);
        if (json_is_object(vals)) {
          json_object_set(extra, "baseline", vals);
          json_object_set_new(extra, "baseline_run", json_string(last.run_id));
        }
        json_decref(outs);
      }
      free(text);
      dagd_store_run_clear(&last);
    }
  } else if (strcmp(kind, "deployed") == 0) {
    char *run_id = NULL, *vals = NULL;
    if (dagd_store_baseline_get(e->store, dag->id, task->id, &run_id, &vals, &err) == 0) {
      json_t *v = json_loads(vals, 0, NULL);
      if (json_is_object(v)) json_object_set_new(extra, "baseline", v);
      else json_decref(v);
      json_object_set_new(extra, "baseline_run", json_string(run_id));
    }
    free(run_id);
    free(vals);
  }
  return extra;
}

/* A successful run promoted the model its gates let through: what each
 * gate checked becomes that gate's "deployed" baseline. */
int dagd__gate_record_baselines(dagd_engine *e, const dagd_dag *dag, const dagd_store_run *run, double now,
                                dagd_err *err) {
  char *text = NULL;
  json_t *outs = NULL;
  int rc = 0;
  for (size_t t = 0; rc == 0 && t < dag->n_tasks; t++) {
    const dagd_task *task = dag->tasks[t];
    const char *from =
        dagd_op_kind_of(task->op)->records_baseline ? json_string_value(json_object_get(task->config, "from")) : NULL;
    if (from == NULL) continue;
    if (outs == NULL) {
      if ((rc = dagd_store_output_get_json(e->store, run->pk, &text, err)) < 0) break;
      outs = json_loads(text, 0, NULL);
    }
    json_t *vals = json_object_get(outs, from);
    if (!json_is_object(vals)) continue;
    char *v = json_dumps(vals, JSON_COMPACT);
    rc = dagd_store_baseline_put(e->store, dag->id, task->id, run->run_id, v, now, err);
    free(v);
  }
  json_decref(outs);
  free(text);
  return rc;
}
