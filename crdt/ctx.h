/*  crdt_ctx: a causal context, the set of dots a replica has seen.
 *
 *  A dot (node, n) names the n-th operation that replica `node` issued in one scope; n counts
 *  from 1. A context is stored compactly, per node, as a version-vector entry `base` (every dot
 *  1..base) plus a dot cloud: sorted, disjoint, non-adjacent ranges strictly above base + 1.
 *  Every function keeps that form (compaction is not a separate step): a dot that closes a gap
 *  folds the following range into base at once, and a node with no dots has no entry. Two
 *  contexts holding the same dots therefore have the same representation, so equality is
 *  structural.
 *
 *  Under causal delivery a scope's context stays a plain version vector: no cloud at all
 *  (crdt_ctx_is_vv). A cloud appears only while a replica holds a dot whose predecessors from
 *  the same node it has not seen.
 *
 *  Ownership: crdt_ctx_new and the functions that return crdt_ctx_t * give the caller a new
 *  context to destroy with crdt_ctx_destroy. Not thread-safe; one owner at a time.
 *
 *  Node ids are non-zero 64-bit replica ids; n is at most CRDT_DOT_MAX so that range
 *  arithmetic never overflows. Decoders reject anything else.
 */
#ifndef CRDT_CTX_H
#define CRDT_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRDT_DOT_MAX (UINT64_C(1) << 62)

typedef struct {
    uint64_t node;
    uint64_t n;
} crdt_dot_t;

/*  An inclusive run of dots [lo, hi] of one node. */
typedef struct {
    uint64_t lo;
    uint64_t hi;
} crdt_range_t;

typedef struct crdt_ctx crdt_ctx_t;

crdt_ctx_t *crdt_ctx_new(void);
void crdt_ctx_destroy(crdt_ctx_t **self_p);
/*  Caller owns return value and must destroy it; NULL when out of memory. */
crdt_ctx_t *crdt_ctx_dup(const crdt_ctx_t *self);

int crdt_ctx_insert(crdt_ctx_t *self, crdt_dot_t dot);
/*  Inserts every dot lo..hi of node. 0, or ENGRAM_EINVAL for node 0, lo 0, lo > hi or
 *  hi > CRDT_DOT_MAX, or ENGRAM_ENOMEM (self unchanged). */
int crdt_ctx_insert_range(crdt_ctx_t *self, uint64_t node, uint64_t lo, uint64_t hi);
bool crdt_ctx_contains(const crdt_ctx_t *self, crdt_dot_t dot);

/*  self := self ∪ other. On ENGRAM_ENOMEM self holds a subset of the union and a superset
 *  of its old dots; callers that need all-or-nothing join into a copy. */
int crdt_ctx_join(crdt_ctx_t *self, const crdt_ctx_t *other);
/*  The dots of self that other lacks: what anti-entropy must ship to a replica at `other`.
 *  Caller owns return value; NULL when out of memory. */
crdt_ctx_t *crdt_ctx_diff(const crdt_ctx_t *self, const crdt_ctx_t *other);
/*  The dots both hold (the stable cut of two version vectors is their meet). Caller owns. */
crdt_ctx_t *crdt_ctx_meet(const crdt_ctx_t *self, const crdt_ctx_t *other);
/*  True when every dot of other is in self. */
bool crdt_ctx_covers(const crdt_ctx_t *self, const crdt_ctx_t *other);
bool crdt_ctx_equal(const crdt_ctx_t *self, const crdt_ctx_t *other);

/*  True when the context is a plain version vector (no dot cloud). */
bool crdt_ctx_is_vv(const crdt_ctx_t *self);
bool crdt_ctx_is_empty(const crdt_ctx_t *self);
/*  The version-vector entry of node: the largest b such that dots 1..b are all present. */
uint64_t crdt_ctx_base(const crdt_ctx_t *self, uint64_t node);
/*  The largest n of node present, 0 if none. */
uint64_t crdt_ctx_max(const crdt_ctx_t *self, uint64_t node);
/*  How many dots the context holds, saturating at UINT64_MAX. */
uint64_t crdt_ctx_count(const crdt_ctx_t *self);
/*  How many cloud ranges the context holds (0 for a version vector). */
size_t crdt_ctx_cloud_ranges(const crdt_ctx_t *self);

/*  The context as text, nodes in ascending order: "node:base" per node (16 hex digits, then
 *  the base in decimal), with "+k" when its cloud holds k more dots, separated by spaces, e.g.
 *  "00000000000001a2:17 0000000000003c4d:5+2"; "" for the empty context. Caller owns the
 *  string and frees it; NULL when out of memory. */
char *crdt_ctx_text(const crdt_ctx_t *self);

/*  Read access by index, for codecs: nodes in ascending order. `cloud` is borrowed until the
 *  next change of self. */
size_t crdt_ctx_nodes(const crdt_ctx_t *self);
void crdt_ctx_node_at(const crdt_ctx_t *self, size_t index, uint64_t *node, uint64_t *base,
                      const crdt_range_t **cloud, size_t *ncloud);

#endif
