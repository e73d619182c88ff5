/* The simulated executor: every try the engine hands out gets a duration
 * and an outcome drawn from its task's behaviour (exit 0, exit 1, exit 98
 * skip, exit 99 reschedule for sensors, a signal, a hang that only a stop
 * ends; branch outputs), and ends once, when the virtual clock reaches it.
 * Stops (execution_timeout) and kills (clear, mark) end a try after a
 * grace, as SIGTERM then SIGKILL would.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/command.h"
#include "dagd/util.h"
#include "sim.h"

/* The grace between SIGTERM and SIGKILL in the daemon (tries.c). */
#define KILL_GRACE 10.0

/* More than DAGD_OUTPUT_MAX of valid key=value lines. */
static char *oversize_outputs(size_t *len) {
  size_t n = DAGD_OUTPUT_MAX + 64;
  char *p = dagd_malloc(n + 1);
  memset(p, 'v', n);
  memcpy(p, "big=", 4);
  p[n - 1] = '\n';
  p[n] = '\0';
  *len = n;
  return p;
}

/* A branch's "follow" output: a random choice of its direct downstream
 * tasks (and now and then a task that is not one of them). */
static void branch_outputs(sim *s, sim_try *x, const dagd_dag *dag, const dagd_task *task) {
  sim_rng *r = &s->rng;
  bool sc = json_is_true(json_object_get(task->config, "short_circuit"));
  dagd_buf b;
  dagd_buf_init(&b);
  x->follow_mask = 0;
  if (sc) {
    /* No output: the condition holds. */
    double u = sim_uniform(r);
    x->short_circuit_false = u < 0.4;
    if (u < 0.4) dagd_buf_puts(&b, "condition=false\n");
    else if (u < 0.8 || s->opts->avoid_stale_outputs) dagd_buf_puts(&b, "condition=true\n");
  } else {
    double u = sim_uniform(r);
    unsigned mask = 0;
    for (size_t i = 0; i < task->n_downstream; i++)
      if (sim_chance(r, 0.5)) mask |= 1u << task->downstream[i];
    if (u < 0.1 && !s->opts->avoid_stale_outputs) {
      mask = 0; /* no output: nothing is followed */
    } else if (u < 0.3 && task->n_downstream > 0) {
      size_t one = task->downstream[sim_range(r, 0, (int64_t)task->n_downstream - 1)];
      mask = 1u << one;
      dagd_buf_printf(&b, "follow=%s\n", dag->tasks[one]->id);
    } else {
      dagd_buf_puts(&b, "follow=[");
      bool first = true;
      for (size_t i = 0; i < dag->n_tasks; i++) {
        if (!(mask & (1u << i))) continue;
        dagd_buf_printf(&b, "%s\"%s\"", first ? "" : ",", dag->tasks[i]->id);
        first = false;
      }
      if (sim_chance(r, 0.1)) dagd_buf_printf(&b, "%s\"nope\"", first ? "" : ",");
      dagd_buf_puts(&b, "]\n");
    }
    x->follow_mask = (int)mask;
  }
  if (b.len > 0) {
    x->outputs_len = b.len;
    x->outputs = dagd_buf_steal(&b);
  }
  dagd_buf_close(&b);
}

sim_try *sim_exec_start(sim *s, const dagd_engine_try *t, size_t dag, size_t task) {
  if (s->n_tries == s->cap_tries) {
    s->cap_tries = s->cap_tries ? s->cap_tries * 2 : 16;
    s->tries = dagd_realloc(s->tries, s->cap_tries * sizeof(*s->tries));
  }
  sim_try *x = &s->tries[s->n_tries++];
  memset(x, 0, sizeof(*x));
  x->serial = ++s->next_serial;
  x->run_pk = t->run.pk;
  x->dag = dag;
  x->task = task;
  snprintf(x->task_id, sizeof(x->task_id), "%s", t->task_id);
  x->try_number = t->try_number;
  x->started = t->start_date;
  x->deadline = t->deadline;
  x->spawned = true;
  const dagd_dag *d = s->models[dag];
  const dagd_task *tk = d->tasks[task];
  const sim_behaviour *b = &s->dags[dag].beh[task];
  sim_rng *r = &s->rng;
  double dur;
  if (b->dur_fixed > 0) dur = b->dur_fixed;
  else if (sim_chance(r, 0.3)) dur = sim_exp(r, b->dur_mean);
  else dur = b->dur_mean * (0.25 + 1.5 * sim_uniform(r));
  dur = floor(dur * 1000) / 1000; /* whole milliseconds */
  x->result = (dagd_try_result){DAGD_TRY_EXITED, 0};
  if (tk->op == DAGD_OP_EMPTY) {
    dur = 0; /* nothing to run: the daemon ends it at once */
  } else if (tk->op == DAGD_OP_SENSOR && sim_chance(r, b->p_resched)) {
    x->result.code = DAGD_EXIT_RESCHEDULE;
    dur *= 0.1;
  } else {
    double u = sim_uniform(r);
    if (x->deadline > 0 && u < b->p_hang) {
      dur = INFINITY;
    } else if ((u -= b->p_hang) < b->p_signal) {
      x->result = (dagd_try_result){DAGD_TRY_SIGNALED, SIGKILL};
    } else if ((u -= b->p_signal) < b->p_fail) {
      x->result.code = sim_chance(r, 0.8) ? 1 : 2;
    } else if ((u -= b->p_fail) < b->p_skip) {
      x->result.code = DAGD_EXIT_SKIP;
    }
  }
  if (tk->op == DAGD_OP_BRANCH) {
    branch_outputs(s, x, d, tk);
  } else if (x->result.how == DAGD_TRY_EXITED && x->result.code == 0 && sim_chance(r, b->p_oversize)) {
    x->outputs = oversize_outputs(&x->outputs_len);
    x->oversize = true;
  } else if (sim_chance(r, b->p_outputs)) {
    x->outputs = dagd_asprintf("rows=%d\nmodel=m%llu\n", (int)sim_range(r, 0, 1000),
                               (unsigned long long)x->serial);
    x->outputs_len = strlen(x->outputs);
  }
  x->natural_end = s->now + dur;
  x->end_at = x->natural_end;
  x->end_result = x->result;
  s->st.tries++;
  return x;
}

sim_try *sim_exec_find(sim *s, int64_t run_pk, const char *task_id, int try_number) {
  for (size_t i = 0; i < s->n_tries; i++) {
    sim_try *x = &s->tries[i];
    if (x->run_pk == run_pk && x->try_number == try_number && strcmp(x->task_id, task_id) == 0) return x;
  }
  return NULL;
}

void sim_exec_stop(sim *s, sim_try *x, bool kill) {
  if (kill) {
    x->killed = true;
  } else {
    if (x->stop_requested) return; /* asked again: the signal went already */
    x->stop_requested = true;
    x->stop_at = s->now;
  }
  /* SIGTERM ends most tries within the grace; the rest get SIGKILL at its
   * end. A try that ends by itself first keeps its own outcome. */
  sim_rng *r = &s->rng;
  double grace = KILL_GRACE;
  int sig = SIGKILL;
  if (kill && s->opts->avoid_kill_overlap) {
    grace = 0;
    sig = SIGTERM;
  } else if (sim_chance(r, 0.8)) {
    grace = floor(sim_uniform(r) * (s->unit < KILL_GRACE ? s->unit : KILL_GRACE) * 1000) / 1000;
    sig = SIGTERM;
  }
  double at = s->now + grace;
  if (at < x->end_at) {
    x->end_at = at;
    x->end_result = (dagd_try_result){DAGD_TRY_SIGNALED, sig};
  }
}

void sim_exec_kill_hook(sim *s, int64_t run_pk, const char *task_id) {
  sim_trace(s, "api kill_try run %lld task %s", (long long)run_pk, task_id);
  for (size_t i = 0; i < s->n_tries; i++) {
    sim_try *x = &s->tries[i];
    if (x->run_pk == run_pk && strcmp(x->task_id, task_id) == 0 && x->spawned) sim_exec_stop(s, x, true);
  }
}

double sim_exec_next_end(const sim *s) {
  double t = INFINITY;
  for (size_t i = 0; i < s->n_tries; i++)
    if (s->tries[i].spawned && s->tries[i].end_at < t) t = s->tries[i].end_at;
  return t;
}

void sim_exec_remove(sim *s, size_t i) {
  free(s->tries[i].outputs);
  s->tries[i] = s->tries[--s->n_tries];
}

void sim_exec_clear(sim *s) {
  while (s->n_tries > 0) sim_exec_remove(s, s->n_tries - 1);
  free(s->tries);
  s->tries = NULL;
  s->cap_tries = 0;
}
