/* Trigger rules: given how a task's upstream instances stand, decide
 * whether it runs, waits, is skipped or can never run. Follows Airflow's
 * TriggerRuleDep, which decides as early as the counts allow.
 * SPDX-License-Identifier: MIT */
#include "dagd/sched.h"

dagd_trigger_decision dagd_sched_trigger(dagd_trigger_rule rule, const dagd_upstream_counts *c) {
  const int fails = c->failed + c->upstream_failed;
  const bool all_done = c->done >= c->total;
  if (c->total == 0) return DAGD_TRIGGER_RUN;
  switch (rule) {
  case DAGD_TR_ALL_SUCCESS:
    if (fails > 0) return DAGD_TRIGGER_UPSTREAM_FAILED;
    if (c->skipped > 0) return DAGD_TRIGGER_SKIP;
    return c->success == c->total ? DAGD_TRIGGER_RUN : DAGD_TRIGGER_WAIT;
  case DAGD_TR_ALL_FAILED:
    if (c->success > 0 || c->skipped > 0) return DAGD_TRIGGER_SKIP;
    return fails == c->total ? DAGD_TRIGGER_RUN : DAGD_TRIGGER_WAIT;
  case DAGD_TR_ALL_DONE:
    return all_done ? DAGD_TRIGGER_RUN : DAGD_TRIGGER_WAIT;
  case DAGD_TR_ALL_SKIPPED:
    if (c->success > 0 || fails > 0) return DAGD_TRIGGER_SKIP;
    return c->skipped == c->total ? DAGD_TRIGGER_RUN : DAGD_TRIGGER_WAIT;
  case DAGD_TR_ONE_SUCCESS:
    if (c->success > 0) return DAGD_TRIGGER_RUN;
    if (!all_done) return DAGD_TRIGGER_WAIT;
    /* Everything finished and nothing succeeded. */
    return c->skipped == c->total ? DAGD_TRIGGER_SKIP : DAGD_TRIGGER_UPSTREAM_FAILED;
  case DAGD_TR_ONE_FAILED:
    if (fails > 0) return DAGD_TRIGGER_RUN;
    return all_done ? DAGD_TRIGGER_SKIP : DAGD_TRIGGER_WAIT;
  case DAGD_TR_ONE_DONE:
    if (c->success + c->failed > 0) return DAGD_TRIGGER_RUN;
    return all_done ? DAGD_TRIGGER_SKIP : DAGD_TRIGGER_WAIT;
  case DAGD_TR_NONE_FAILED:
    if (fails > 0) return DAGD_TRIGGER_UPSTREAM_FAILED;
    return all_done ? DAGD_TRIGGER_RUN : DAGD_TRIGGER_WAIT;
  case DAGD_TR_NONE_FAILED_MIN_ONE_SUCCESS:
    if (fails > 0) return DAGD_TRIGGER_UPSTREAM_FAILED;
    if (!all_done) return DAGD_TRIGGER_WAIT;
    return c->success > 0 ? DAGD_TRIGGER_RUN : DAGD_TRIGGER_SKIP;
  case DAGD_TR_NONE_SKIPPED:
    if (c->skipped > 0) return DAGD_TRIGGER_SKIP;
    return all_done ? DAGD_TRIGGER_RUN : DAGD_TRIGGER_WAIT;
  case DAGD_TR_ALWAYS:
  case DAGD_TR__COUNT:
    break;
  }
  return DAGD_TRIGGER_RUN;
}
