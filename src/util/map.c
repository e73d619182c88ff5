/* The byte-string hash map: open addressing with linear probing, FNV-1a
 * hashes, removed keys marked until the next growth.
 * SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/map.h"
#include "dagd/util.h"

static const char gone_mark;
#define GONE ((const void *)&gone_mark)

static size_t hash_of(const void *key, size_t len) {
  const unsigned char *p = key;
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ULL;
  return (size_t)(h ^ (h >> 29));
}

void dagd_map_init(dagd_map *m) { memset(m, 0, sizeof(*m)); }

void dagd_map_close(dagd_map *m) {
  free(m->slots);
  memset(m, 0, sizeof(*m));
}

static dagd_map_slot *find(const dagd_map *m, const void *key, size_t len, size_t hash) {
  if (m->cap == 0) return NULL;
  for (size_t i = hash & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    dagd_map_slot *s = &m->slots[i];
    if (s->key == NULL) return NULL;
    if (s->key != GONE && s->hash == hash && s->len == len && memcmp(s->key, key, len) == 0) return s;
  }
}

void *dagd_map_get(const dagd_map *m, const void *key, size_t len) {
  dagd_map_slot *s = find(m, key, len, hash_of(key, len));
  return s ? s->value : NULL;
}

static void place(dagd_map *m, const dagd_map_slot *from) {
  size_t i = from->hash & (m->cap - 1);
  while (m->slots[i].key != NULL && m->slots[i].key != GONE) i = (i + 1) & (m->cap - 1);
  if (m->slots[i].key == NULL) m->used++;
  m->slots[i] = *from;
  m->n++;
}

/* Room for one more key with the table at most half used; removed
 * slots are dropped when it is rebuilt. */
static void make_room(dagd_map *m) {
  if ((m->used + 1) * 2 <= m->cap) return;
  size_t cap = m->cap ? m->cap : 16;
  while ((m->n + 1) * 4 > cap) cap *= 2;
  dagd_map_slot *old = m->slots;
  size_t old_cap = m->cap;
  m->slots = dagd_calloc(cap, sizeof(*m->slots));
  m->cap = cap;
  m->n = m->used = 0;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i].key != NULL && old[i].key != GONE) place(m, &old[i]);
  free(old);
}

void dagd_map_put(dagd_map *m, const void *key, size_t len, void *value) {
  size_t hash = hash_of(key, len);
  dagd_map_slot *s = find(m, key, len, hash);
  if (s) {
    s->key = key;
    s->value = value;
    return;
  }
  make_room(m);
  place(m, &(dagd_map_slot){key, len, hash, value});
}

void *dagd_map_del(dagd_map *m, const void *key, size_t len) {
  dagd_map_slot *s = find(m, key, len, hash_of(key, len));
  if (s == NULL) return NULL;
  void *value = s->value;
  s->key = GONE;
  s->value = NULL;
  m->n--;
  return value;
}
