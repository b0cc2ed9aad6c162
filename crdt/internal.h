/*  Helpers shared inside crdt/, not part of its API.
 *
 *  crdt__hmap: an open-addressing hash map from byte strings to pointers. Linear probing with
 *  backward-shift deletion, so there are no tombstones and a map that shrinks stays fast. The
 *  map owns a copy of each key; it never owns the values (the caller frees them, usually while
 *  iterating just before crdt__hmap_destroy). Slots are addressed by index for iteration; an
 *  insertion or deletion may move entries, so an index is valid only until the next change.
 *  Keys are hashed with crdt_hash (crdt/hash.h); a collision costs a probe, never
 *  correctness (keys are compared in full).
 */
#ifndef CRDT_INTERNAL_H
#define CRDT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crdt/ctx.h"

typedef struct crdt__hmap crdt__hmap_t;

crdt__hmap_t *crdt__hmap_new(void);
void crdt__hmap_destroy(crdt__hmap_t **self_p);
size_t crdt__hmap_count(const crdt__hmap_t *self);
/*  Returns the value stored under key, or NULL. */
void *crdt__hmap_get(const crdt__hmap_t *self, const void *key, size_t klen);
/*  Stores value under key, replacing any previous value. 0 or ENGRAM_ENOMEM. */
int crdt__hmap_put(crdt__hmap_t *self, const void *key, size_t klen, void *value);
/*  Removes key; returns its value, or NULL if it was absent. */
void *crdt__hmap_del(crdt__hmap_t *self, const void *key, size_t klen);
/*  Slot iteration: for (i = 0; i < crdt__hmap_slots(m); i++) if (crdt__hmap_at(m, i, ..)). */
size_t crdt__hmap_slots(const crdt__hmap_t *self);
bool crdt__hmap_at(const crdt__hmap_t *self, size_t slot, const void **key, size_t *klen,
                   void **value);

/*  Calls fn once for every maximal run [lo, hi] of dots of ctx, node by node in ascending
 *  order. Stops early and returns fn's value if fn returns non-zero. */
typedef int (*crdt__range_fn)(void *arg, uint64_t node, uint64_t lo, uint64_t hi);
int crdt__ctx_foreach_range(const crdt_ctx_t *ctx, crdt__range_fn fn, void *arg);

/*  The scope's flattened store (see scope.h). Type modules read these; only scope.c and
 *  codec.c change them. */
#include "crdt/type.h"

typedef struct {
    crdt_dot_t dot;
    uint64_t hlc;
    uint64_t hash; /* this entry's share of the scope digest */
    uint8_t *data; /* owned; NULL when len is 0 */
    size_t len;
} crdt__entry_t;

typedef struct crdt__object crdt__object_t;

/*  DotFun<value>: the entries of one element, sorted by dot. */
typedef struct {
    crdt__object_t *object; /* the object holding this leaf */
    char *elem;             /* owned */
    crdt__entry_t *entries; /* owned */
    size_t n;
    size_t cap;
} crdt__leaf_t;

/*  DotMap<elem, leaf>: one object. */
struct crdt__object {
    crdt_type_id_t type;
    char *key;            /* owned */
    crdt__hmap_t *leaves; /* elem -> crdt__leaf_t *, owned */
};

struct crdt_scope;

/*  The object of this type under key, or NULL. Borrowed until the next change of the scope. */
const crdt__object_t *crdt__scope_object(const struct crdt_scope *self, crdt_type_id_t type,
                                         const char *key);
const crdt__leaf_t *crdt__object_leaf(const crdt__object_t *object, const char *elem);

/*  One operation of this replica: takes the next dot, removes the given dots, adds one entry
 *  (unless elem is NULL), records the removal, and hands back the delta if delta_p is not NULL
 *  (caller owns). Checks key, elem and value sizes; the caller has checked types. */
int crdt__scope_operate(struct crdt_scope *self, crdt_type_id_t type, const char *key,
                        const char *elem, uint64_t hlc, const void *data, size_t len,
                        const crdt_dot_t *removed, size_t nremoved, struct crdt_scope **delta_p);

/*  For decoders: adds one entry / one removal record to a scope under construction.
 *  ENGRAM_EDOTREUSE if the dot is already used. */
int crdt__scope_insert(struct crdt_scope *self, crdt_type_id_t type, const char *key,
                       const char *elem, crdt_dot_t dot, uint64_t hlc, const uint8_t *data,
                       size_t len);
int crdt__scope_add_record(struct crdt_scope *self, crdt_dot_t op, const crdt_dot_t *removed,
                           size_t nremoved);
bool crdt__scope_has_record(const struct crdt_scope *self, crdt_dot_t op);
crdt_ctx_t *crdt__scope_ctx_mut(struct crdt_scope *self);
crdt_ctx_t *crdt__scope_pruned_mut(struct crdt_scope *self);
/*  For encoders: visits every object. Stops at the first non-zero. */
int crdt__scope_foreach_object(const struct crdt_scope *self,
                               int (*fn)(void *arg, const crdt__object_t *object), void *arg);
/*  Appends to (*dots, *n, *cap) the dots of the object's leaf for elem, or of all its leaves
 *  when elem is NULL: what an operation that replaces or removes them observed. A NULL
 *  object appends nothing. The caller frees *dots. */
int crdt__object_dots(const crdt__object_t *object, const char *elem, crdt_dot_t **dots,
                      size_t *n, size_t *cap);
/*  Fills views with the object's entries in leaf order; caller frees *views. */
int crdt__object_views(const crdt__object_t *object, crdt_entry_view_t **views, size_t *n);

/*  Checks a key or element name: non-empty (elements of non-set types are empty), at most
 *  ENGRAM_MAX_KEY_BYTES. */
bool crdt__name_ok(const char *name, size_t len, bool may_be_empty);

#endif
