/* The end of a try: what its exit means (success, failure, skip, a
 * sensor's reschedule), what it makes of the task instance, and which
 * tasks a branch follows.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include <jansson.h>

#include "dagd/command.h"
#include "dagd/sched.h"

dagd_try_outcome dagd_sched_outcome(const dagd_try_result *r, bool timed_out) {
  if (timed_out || r->how != DAGD_TRY_EXITED) return DAGD_OUTCOME_FAILURE;
  switch (r->code) {
  case 0: return DAGD_OUTCOME_SUCCESS;
  case DAGD_EXIT_SKIP: return DAGD_OUTCOME_SKIP;
  case DAGD_EXIT_RESCHEDULE: return DAGD_OUTCOME_RESCHEDULE;
  default: return DAGD_OUTCOME_FAILURE;
  }
}

int64_t dagd_sched_poke_interval(const dagd_task *t) {
  const json_t *iv = t ? json_object_get(t->config, "interval") : NULL;
  if (json_is_integer(iv) && json_integer_value(iv) > 0) return json_integer_value(iv);
  return 60;
}

void dagd_sched_try_ended(const dagd_task *t, dagd_sched_ti *ti, dagd_try_outcome o, double now, double jitter) {
  dagd_ti_state before = ti->state;
  if (t == NULL) { /* the task left the DAG: no retry, no poke */
    ti->state = o == DAGD_OUTCOME_SUCCESS ? DAGD_TI_SUCCESS : DAGD_TI_FAILED;
    ti->next_try_at = 0;
  } else if (o == DAGD_OUTCOME_SKIP) {
    ti->state = DAGD_TI_SKIPPED;
    ti->next_try_at = 0;
  } else if (o == DAGD_OUTCOME_RESCHEDULE) {
    ti->state = DAGD_TI_UP_FOR_RESCHEDULE;
    ti->next_try_at = now + (double)dagd_sched_poke_interval(t);
    ti->try_number--;
  } else {
    dagd_sched_try_finished(t, ti, o == DAGD_OUTCOME_SUCCESS, now, jitter);
  }
  if (ti->state != before) ti->changed = true;
}

static bool names_task(const json_t *v, const char *id) {
  return json_is_string(v) && strcmp(json_string_value(v), id) == 0;
}

void dagd_sched_branch_follow(const dagd_dag *dag, const dagd_task *branch, const char *value, size_t *follow,
                              size_t *n_follow) {
  *n_follow = 0;
  if (json_is_true(json_object_get(branch->config, "short_circuit"))) {
    bool go = value == NULL || (strcmp(value, "false") != 0 && strcmp(value, "0") != 0 && value[0] != '\0');
    for (size_t i = 0; go && i < branch->n_downstream; i++) follow[(*n_follow)++] = branch->downstream[i];
    return;
  }
  if (value == NULL) return;
  json_t *list = json_loads(value, JSON_DECODE_ANY, NULL);
  if (list == NULL) list = json_string(value);
  for (size_t i = 0; i < branch->n_downstream; i++) {
    const char *id = dag->tasks[branch->downstream[i]]->id;
    bool chosen = names_task(list, id);
    size_t k;
    json_t *x;
    if (json_is_array(list)) json_array_foreach(list, k, x) chosen |= names_task(x, id);
    if (chosen) follow[(*n_follow)++] = branch->downstream[i];
  }
  json_decref(list);
}
