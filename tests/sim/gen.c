/* The simulation's generator: from a seed, a world of 1-4 DAG models built
 * with the model API (schedules in several zones, interval schedules, no
 * schedule; catchup; limits; pools; retries with backoff; timeouts; every
 * trigger rule; branches, short circuits, reschedule sensors, empty
 * tasks), how the simulated executor makes each task's tries end, the
 * engine's parallelism and pools, and a start time near a DST change.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/cron.h"
#include "dagd/err.h"
#include "dagd/tz.h"
#include "dagd/util.h"
#include "sim.h"

/* --- PRNG --- */

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void sim_rng_seed(sim_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sim_rand(sim_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double sim_uniform(sim_rng *r) { return (double)(sim_rand(r) >> 11) / 9007199254740992.0; }

int64_t sim_range(sim_rng *r, int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  return lo + (int64_t)(sim_rand(r) % (uint64_t)(hi - lo + 1));
}

bool sim_chance(sim_rng *r, double p) { return sim_uniform(r) < p; }

double sim_exp(sim_rng *r, double mean) { return -mean * log(1.0 - sim_uniform(r)); }

size_t sim_pick(sim_rng *r, const double *weights, size_t n) {
  double total = 0;
  for (size_t i = 0; i < n; i++) total += weights[i];
  double x = sim_uniform(r) * total;
  for (size_t i = 0; i < n; i++) {
    if (x < weights[i]) return i;
    x -= weights[i];
  }
  return n - 1;
}

/* --- zones and their DST changes --- */

static const char *const zones[] = {"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"};
#define N_ZONES 4

/* The instants in [from, to) at which the zone's UTC offset changes: a
 * day-by-day scan, then a binary search inside the day. */
static size_t dst_changes(const char *zone, int64_t from, int64_t to, int64_t *out, size_t cap) {
  dagd_tz *tz = NULL;
  if (dagd_tz_load(zone, &tz, NULL) != 0) return 0;
  size_t n = 0;
  int32_t prev = dagd_tz_offset(tz, from);
  for (int64_t t = from + 86400; t < to && n < cap; t += 86400) {
    int32_t cur = dagd_tz_offset(tz, t);
    if (cur == prev) continue;
    int64_t lo = t - 86400, hi = t; /* offset(lo) == prev, offset(hi) != prev */
    while (hi - lo > 1) {
      int64_t mid = lo + (hi - lo) / 2;
      if (dagd_tz_offset(tz, mid) == prev) lo = mid;
      else hi = mid;
    }
    out[n++] = hi;
    prev = cur;
  }
  dagd_tz_free(tz);
  return n;
}

/* --- schedules --- */

static const char *const fast_crons[] = {"*/2 * * * * *", "*/5 * * * * *", "*/3 * * * * *", "0,20,40 * * * * *",
                                         "* * * * *", "*/7 * * * * *"};
static const char *const medium_crons[] = {"*/5 * * * *", "*/15 * * * *", "0 * * * *", "30 * * * *",
                                           "*/10 1-3 * * *", "@hourly", "0,30 2 * * *", "*/20 * * * *"};
static const char *const slow_crons[] = {"0 2 * * *",   "30 2 * * *", "0 1 * * *",    "30 1 * * *",
                                         "0 3 * * *",   "@daily",     "0 */6 * * *",  "0 0 * * 1-5",
                                         "15 2,3 * * *", "45 2 * * 0", "0 */4 * * *", "30 1,2 * * *"};

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* "every N<unit>" around the tempo's unit. */
static void every_text(sim_rng *r, sim_tempo tempo, char *out, size_t n) {
  static const int medium[] = {1, 2, 5, 10, 15, 30};
  static const int slow[] = {1, 2, 3, 6, 12};
  switch (tempo) {
  case SIM_FAST: snprintf(out, n, "every %ds", (int)sim_range(r, 1, 10)); break;
  case SIM_MEDIUM: snprintf(out, n, "every %dm", medium[sim_range(r, 0, LEN(medium) - 1)]); break;
  case SIM_SLOW:
    if (sim_chance(r, 0.2)) snprintf(out, n, "every 1d");
    else snprintf(out, n, "every %dh", slow[sim_range(r, 0, LEN(slow) - 1)]);
    break;
  }
}

/* The rough period of a schedule near t. */
static double period_of(const dagd_dag *dag, int64_t t) {
  int64_t a, b;
  if (dag->schedule == NULL) return 0;
  if (dagd_cron_next(dag->schedule, dag->tz, t, &a) != 0 || dagd_cron_next(dag->schedule, dag->tz, a, &b) != 0)
    return 0;
  return (double)(b - a);
}

static int64_t at_least(double x, int64_t lo) { return x < (double)lo ? lo : (int64_t)llround(x); }

/* --- one DAG --- */

/* Builds DAG i from its own seed, and its behaviours into info when not
 * NULL: the same random numbers are drawn either way, so a rebuild (a
 * reload of the same file) gives the same model. */
static dagd_dag *gen_dag(const sim *s, size_t i, sim_dag *info) {
  sim_rng r;
  sim_rng_seed(&r, s->dags[i].seed);
  char id[32], file[48];
  snprintf(id, sizeof(id), "d%zu", i);
  snprintf(file, sizeof(file), "/sim/dags/d%zu.lua", i);
  dagd_dag *dag = dagd_dag_new(id, file, 1);
  dagd_err err;
  dagd_err_init(&err);
  bool stall = s->dags[i].stall_shape;
  double unit = s->unit;
  char sched[64] = "";
  const char *zone = "UTC";
  if (stall) {
    /* The known stall's shape: a run outlasts its interval. */
    int64_t n = s->tempo == SIM_FAST ? sim_range(&r, 1, 5) : (int64_t)(unit / 2) + sim_range(&r, 1, 60);
    snprintf(sched, sizeof(sched), "every %llds", (long long)n);
  } else {
    static const double kind_w[] = {0.2, 0.35, 0.45};
    size_t kind = sim_pick(&r, kind_w, 3);
    if (kind == 1) {
      every_text(&r, s->tempo, sched, sizeof(sched));
    } else if (kind == 2) {
      const char *const *list = s->tempo == SIM_FAST ? fast_crons : s->tempo == SIM_MEDIUM ? medium_crons : slow_crons;
      size_t n = s->tempo == SIM_FAST ? LEN(fast_crons) : s->tempo == SIM_MEDIUM ? LEN(medium_crons) : LEN(slow_crons);
      snprintf(sched, sizeof(sched), "%s", list[sim_range(&r, 0, (int64_t)n - 1)]);
      zone = sim_chance(&r, 0.6) ? s->focus_zone : zones[sim_range(&r, 0, N_ZONES - 1)];
    }
  }
  if (strcmp(zone, "UTC") != 0) {
    dagd_tz *tz = NULL;
    if (dagd_tz_load(zone, &tz, &err) == 0) dag->tz = tz;
  }
  if (sched[0] && dagd_cron_parse(sched, &dag->schedule, &err) != 0) {
    fprintf(stderr, "sim: cannot parse schedule \"%s\": %s\n", sched, err.msg);
    abort();
  }
  /* Periods are measured without the anchor, which start_date sets. */
  double period = dag->schedule ? period_of(dag, (int64_t)s->t_start) : unit;
  if (period <= 0) period = unit;
  dag->catchup = sim_chance(&r, 0.5);
  if (sim_chance(&r, 0.85)) {
    dag->has_start_date = true;
    if (sim_chance(&r, 0.1)) {
      dag->start_date = (int64_t)s->t_start + at_least(period * sim_uniform(&r) * 3, 1);
    } else {
      /* A few intervals back, so that catchup has something to catch up. */
      dag->start_date = (int64_t)s->t_start - at_least(period * sim_uniform(&r) * 8, 0);
    }
  }
  static const double mar_w[] = {0.5, 0.3, 0.2};
  dag->max_active_runs = stall ? 1 : 1 + (int)sim_pick(&r, mar_w, 3);
  dag->max_active_tasks = sim_chance(&r, 0.4) ? 16 : (int)sim_range(&r, 1, 4);
  dag->is_paused_upon_creation = !stall && sim_chance(&r, 0.1);
  if (!stall && sim_chance(&r, 0.35)) {
    static const char *const names[] = {"drift", "data_ready", "retrain"};
    size_t n = (size_t)sim_range(&r, 1, 2);
    dag->on_event = dagd_calloc(n, sizeof(char *));
    for (size_t k = 0; k < n; k++) dag->on_event[k] = dagd_strdup(names[(k + (size_t)sim_range(&r, 0, 2)) % 3]);
    dag->n_on_event = n;
    if (n == 2 && strcmp(dag->on_event[0], dag->on_event[1]) == 0) {
      free(dag->on_event[1]);
      dag->on_event[1] = NULL;
      dag->n_on_event = 1;
    }
    dag->event_cooldown = sim_chance(&r, 0.3) ? at_least(unit * sim_uniform(&r) * 5, 1) : 0;
  }
  size_t n_tasks = stall ? (size_t)sim_range(&r, 1, 2) : (size_t)sim_range(&r, 1, SIM_MAX_TASKS);
  if (!stall && sim_chance(&r, 0.4)) n_tasks = (size_t)sim_range(&r, 1, 3);
  double p_edge = 0.2 + 0.5 * sim_uniform(&r);
  for (size_t j = 0; j < n_tasks; j++) {
    char tid[32];
    snprintf(tid, sizeof(tid), "t%zu", j);
    static const double op_w[] = {0.62, 0.12, 0.05, 0.12, 0.09};
    size_t kind = stall ? 0 : sim_pick(&r, op_w, 5);
    if (kind == 1 || kind == 2) kind = j + 1 < n_tasks ? kind : 0; /* a branch needs something after it */
    dagd_op op = kind == 1 || kind == 2 ? DAGD_OP_BRANCH : kind == 3 ? DAGD_OP_SENSOR : kind == 4 ? DAGD_OP_EMPTY
                                                                                                : DAGD_OP_SHELL;
    dagd_task *t = NULL;
    if (dagd_dag_add_task(dag, tid, op, (int)j + 2, &t, &err) != 0) abort();
    for (size_t k = 0; k < j; k++) {
      bool edge = stall ? k + 1 == j : sim_chance(&r, p_edge);
      if (edge) {
        char up[32];
        snprintf(up, sizeof(up), "t%zu", k);
        dagd_task_add_dep(t, up, (int)j + 2);
      }
    }
    sim_behaviour b = {0};
    static const double dur_w[] = {0.3, 0.3, 0.25, 0.15};
    static const double dur_f[] = {0.05, 0.3, 0.8, 1.6};
    b.dur_mean = unit * dur_f[sim_pick(&r, dur_w, 4)] * (0.5 + sim_uniform(&r));
    if (b.dur_mean < 0.01) b.dur_mean = 0.01;
    static const double fail_w[] = {0.35, 0.3, 0.25, 0.1};
    static const double fail_p[] = {0, 0.1, 0.3, 0.6};
    b.p_fail = fail_p[sim_pick(&r, fail_w, 4)];
    b.p_skip = sim_chance(&r, 0.1) ? 0.15 : 0;
    b.p_signal = 0.02;
    b.p_outputs = 0.2;
    b.p_oversize = sim_chance(&r, 0.1) ? 0.05 : 0;
    t->retries = sim_chance(&r, 0.5) ? 0 : (int)sim_range(&r, 1, 3);
    t->retry_delay = sim_chance(&r, 0.2) ? 0 : at_least(unit * (0.1 + 1.9 * sim_uniform(&r)), 1);
    t->retry_exponential_backoff = sim_chance(&r, 0.4);
    t->max_retry_delay = sim_chance(&r, 0.6) ? 0 : at_least((double)t->retry_delay * (1 + 3 * sim_uniform(&r)), 1);
    if (sim_chance(&r, 0.3)) {
      t->execution_timeout = at_least(b.dur_mean * (0.5 + 2.5 * sim_uniform(&r)), 1);
      b.p_hang = 0.1;
    }
    t->trigger_rule =
        sim_chance(&r, 0.5) ? DAGD_TR_ALL_SUCCESS : (dagd_trigger_rule)sim_range(&r, 0, DAGD_TR__COUNT - 1);
    static const double pool_w[] = {0.6, 0.15, 0.15, 0.1};
    static const char *const pools[] = {"default", "gpu", "io", "misc"};
    size_t p = sim_pick(&r, pool_w, 4);
    if (p != 0) {
      free(t->pool);
      t->pool = dagd_strdup(pools[p]);
    }
    t->priority_weight = (int)sim_range(&r, 1, 10);
    if (sim_chance(&r, 0.1)) t->sla = at_least(unit * (0.5 + 4.5 * sim_uniform(&r)), 1);
    if (op == DAGD_OP_SENSOR) {
      int64_t interval = at_least(unit * (0.1 + 0.9 * sim_uniform(&r)), 1);
      json_object_set_new(t->config, "poke", json_string("file"));
      json_object_set_new(t->config, "path", json_string("/sim/never"));
      json_object_set_new(t->config, "mode", json_string("reschedule"));
      json_object_set_new(t->config, "interval", json_integer(interval));
      b.p_resched = 0.3 + 0.5 * sim_uniform(&r);
    }
    if (kind == 2) json_object_set_new(t->config, "short_circuit", json_true());
    if (stall) {
      /* Longer than the interval, every time, and always fine. */
      int64_t every = dagd_cron_interval(dag->schedule);
      b = (sim_behaviour){.dur_fixed = (double)every * (1.2 + 1.3 * sim_uniform(&r)), .dur_mean = (double)every};
      t->retries = 0;
      t->execution_timeout = 0;
      t->sla = 0;
      t->trigger_rule = DAGD_TR_ALL_SUCCESS;
    }
    if (info) info->beh[j] = b;
  }
  if (dagd_dag_finalize(dag, &err) != 0) {
    fprintf(stderr, "sim: finalize: %s\n", err.msg);
    abort();
  }
  if (info) info->unit = period;
  return dag;
}

dagd_dag *sim_gen_model(const sim *s, size_t i) { return gen_dag(s, i, NULL); }

int sim_pool_slots(const sim *s, const char *pool) {
  for (size_t i = 0; i < s->n_pools; i++)
    if (strcmp(s->pools[i].key, pool) == 0) return s->pool_slots[i];
  return s->parallelism;
}

void sim_gen_world(sim *s) {
  sim_rng *r = &s->rng;
  static const double tempo_w[] = {0.45, 0.3, 0.25};
  s->tempo = (sim_tempo)sim_pick(r, tempo_w, 3);
  switch (s->tempo) {
  case SIM_FAST: s->unit = (double)sim_range(r, 1, 10); break;
  case SIM_MEDIUM: s->unit = (double)sim_range(r, 60, 1800); break;
  case SIM_SLOW: s->unit = (double)sim_range(r, 3600, 86400); break;
  }
  s->focus_zone = zones[sim_range(r, 1, N_ZONES - 1)];
  /* Start near one of the focus zone's DST changes in 2026, mostly. */
  int64_t year = 1767225600; /* 2026-01-01T00:00:00Z */
  int64_t changes[8];
  size_t n_changes = dst_changes(s->focus_zone, year, year + 365 * 86400, changes, 8);
  double before = s->tempo == SIM_FAST ? (double)sim_range(r, 30, 900)
                  : s->tempo == SIM_MEDIUM ? (double)sim_range(r, 3600, 12 * 3600)
                                           : (double)sim_range(r, 86400, 10 * 86400);
  if (n_changes > 0 && sim_chance(r, 0.75))
    s->t_start = (double)changes[sim_range(r, 0, (int64_t)n_changes - 1)] - before;
  else
    s->t_start = (double)(year + sim_range(r, 0, 364 * 86400));
  /* Whole seconds, mostly, as a daemon started by cron would not be. */
  if (sim_chance(r, 0.5)) s->t_start += sim_uniform(r);
  double span;
  if (s->opts->days > 0) span = s->opts->days * 86400;
  else if (s->tempo == SIM_FAST) span = (double)sim_range(r, 2, 12) * 3600;
  else if (s->tempo == SIM_MEDIUM) span = (double)sim_range(r, 1, 7) * 86400;
  else span = (double)sim_range(r, 30, 90) * 86400;
  s->t_end = s->t_start + span;
  s->now = s->t_start;
  /* Many short seeds and some long ones: breadth first, depth too. */
  static const double len_w[] = {0.6, 0.3, 0.1};
  static const int64_t len_lo[] = {30, 100, 250}, len_hi[] = {100, 250, 800};
  size_t len = sim_pick(r, len_w, 3);
  s->max_steps = s->opts->max_steps > 0 ? s->opts->max_steps : sim_range(r, len_lo[len], len_hi[len]);
  s->parallelism = (int)sim_range(r, 1, 8);
  s->n_pools = 0;
  s->pools[s->n_pools] = (dagd_kv){dagd_strdup("gpu"), dagd_strdup("1")};
  s->pool_slots[s->n_pools++] = 1;
  s->pools[s->n_pools] = (dagd_kv){dagd_strdup("io"), dagd_strdup("2")};
  s->pool_slots[s->n_pools++] = 2;
  if (sim_chance(r, 0.2)) {
    int slots = (int)sim_range(r, 1, s->parallelism);
    char v[16];
    snprintf(v, sizeof(v), "%d", slots);
    s->pools[s->n_pools] = (dagd_kv){dagd_strdup("default"), dagd_strdup(v)};
    s->pool_slots[s->n_pools++] = slots;
  }
  static const double ndags_w[] = {0.35, 0.3, 0.2, 0.15};
  s->n_dags = 1 + sim_pick(r, ndags_w, SIM_MAX_DAGS);
  bool stall = sim_chance(r, 0.3);
  for (size_t i = 0; i < s->n_dags; i++) {
    sim_dag *d = &s->dags[i];
    memset(d, 0, sizeof(*d));
    d->seed = sim_rand(r);
    /* The stall shape alone in its world half of the time: another DAG's
     * wakes could hide a missing one (DESIGN.md section 10). */
    d->stall_shape = stall && i == 0;
    if (stall && i == 0 && sim_chance(r, 0.5)) s->n_dags = 1;
  }
  for (size_t i = 0; i < s->n_dags; i++) {
    s->dags[i].dag = gen_dag(s, i, &s->dags[i]);
    s->models[i] = s->dags[i].dag;
    s->dags[i].paused = s->dags[i].dag->is_paused_upon_creation;
  }
  s->bag.dags = s->models;
  s->bag.n_dags = s->n_dags;
  s->event_gap = s->unit * (1.0 + 10.0 * sim_uniform(r));
}

void sim_world_free(sim *s) {
  for (size_t i = 0; i < s->n_dags; i++) {
    if (s->old_models[i] != s->models[i]) dagd_dag_free(s->old_models[i]);
    dagd_dag_free(s->models[i]);
    s->models[i] = s->old_models[i] = NULL;
    s->dags[i].dag = NULL;
  }
  for (size_t i = 0; i < s->n_pools; i++) {
    free(s->pools[i].key);
    free(s->pools[i].value);
  }
  s->n_pools = 0;
}
