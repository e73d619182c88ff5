/* A hash map from byte strings to pointers, for lookups that must not
 * grow with a list: tries by their file base, processes by pid. The map
 * borrows its keys: each key's bytes must stay where they are (usually
 * inside the value) while the key is in the map.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_MAP_H
#define DAGD_MAP_H

#include <stddef.h>

typedef struct dagd_map_slot {
  const void *key;  /* NULL: empty; dagd_map_gone: removed */
  size_t len;
  size_t hash;
  void *value;
} dagd_map_slot;

typedef struct dagd_map {
  dagd_map_slot *slots;
  size_t cap;   /* a power of two, or 0 */
  size_t n;     /* keys in the map */
  size_t used;  /* slots not empty (keys and removed ones) */
} dagd_map;

void dagd_map_init(dagd_map *m);
void dagd_map_close(dagd_map *m);
/* The value of key, NULL when it is not in the map. */
void *dagd_map_get(const dagd_map *m, const void *key, size_t len);
/* Sets key's value (value must not be NULL); the key's bytes are
 * borrowed, not copied. */
void dagd_map_put(dagd_map *m, const void *key, size_t len, void *value);
/* Removes key; returns its value, or NULL when it was not there. */
void *dagd_map_del(dagd_map *m, const void *key, size_t len);

#endif
