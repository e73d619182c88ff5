/* The tries in flight: handed out (started or adopted) and not yet ended,
 * by (run, task, try). A task instance whose earlier try is still in
 * flight (cleared by the API while its process winds down) does not start
 * again until that try ends, so no task instance runs twice at once.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "dagd/util.h"
#include "engine/internal.h"

struct flight_entry {
  int64_t run_pk;
  char *task_id;
  int try_number;
  char *dag_id;       /* what its process holds: a task slot of the DAG */
  char *pool;         /* and a slot of the pool */
  struct flight_entry *next;
};

static void entry_free(flight_entry *f) {
  free(f->task_id);
  free(f->dag_id);
  free(f->pool);
  free(f);
}

static size_t slot(int64_t run_pk, const char *task_id) {
  uint64_t h = (uint64_t)run_pk * 0x9e3779b97f4a7c15ull;
  for (const unsigned char *s = (const unsigned char *)task_id; *s; s++) h = (h ^ *s) * 0x100000001b3ull;
  return (size_t)(h % ENGINE_FLIGHT_BUCKETS);
}

void dagd__flight_add(dagd_engine *e, int64_t run_pk, const char *task_id, int try_number, const char *dag_id,
                      const char *pool) {
  if (e->flight == NULL) e->flight = dagd_calloc(ENGINE_FLIGHT_BUCKETS, sizeof(*e->flight));
  flight_entry *f = dagd_calloc(1, sizeof(*f));
  *f = (flight_entry){run_pk, dagd_strdup(task_id), try_number, dagd_strdup(dag_id),
                      dagd_strdup(pool ? pool : "default"), NULL};
  flight_entry **b = &e->flight[slot(run_pk, task_id)];
  f->next = *b;
  *b = f;
  e->in_flight++;
}

bool dagd__flight_remove(dagd_engine *e, int64_t run_pk, const char *task_id, int try_number) {
  if (e->flight == NULL) return false;
  for (flight_entry **p = &e->flight[slot(run_pk, task_id)]; *p; p = &(*p)->next) {
    flight_entry *f = *p;
    if (f->run_pk != run_pk || f->try_number != try_number || strcmp(f->task_id, task_id) != 0) continue;
    *p = f->next;
    entry_free(f);
    e->in_flight--;
    return true;
  }
  return false;
}

bool dagd__flight_busy(const dagd_engine *e, int64_t run_pk, const char *task_id) {
  if (e->flight == NULL) return false;
  for (const flight_entry *f = e->flight[slot(run_pk, task_id)]; f; f = f->next)
    if (f->run_pk == run_pk && strcmp(f->task_id, task_id) == 0) return true;
  return false;
}

void dagd__flight_clear(dagd_engine *e) {
  for (size_t b = 0; e->flight && b < ENGINE_FLIGHT_BUCKETS; b++) {
    for (flight_entry *f = e->flight[b], *next; f; f = next) {
      next = f->next;
      entry_free(f);
    }
  }
  free(e->flight);
  e->flight = NULL;
  e->in_flight = 0;
}

void dagd__flight_each(const dagd_engine *e, void (*cb)(void *data, const char *dag_id, const char *pool),
                       void *data) {
  for (size_t b = 0; e->flight && b < ENGINE_FLIGHT_BUCKETS; b++)
    for (const flight_entry *f = e->flight[b]; f; f = f->next) cb(data, f->dag_id, f->pool);
}
