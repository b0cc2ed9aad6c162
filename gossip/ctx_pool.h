/*  gossip_ctx_pool: one shared, read-only copy of each distinct causal context, counted by
 *  reference. The engine keeps what every peer is known to hold of every scope (for its
 *  pushes, its pulls and the stable cut); in a steady cluster most of those contexts are equal
 *  (every peer holds what this node holds), so an engine of N members and S scopes would
 *  otherwise keep N * S copies of about the same vector: a 1,000-node simulation (1,000
 *  engines in one process) held more than 11 GB of them.
 *
 *  Invariants: a context handed out by gossip_ctx_pool_hold is never changed while held; equal
 *  contexts (crdt_ctx_equal) held at the same time are one pointer; every hold is matched by
 *  one release, and the copy is freed with its last release. The table is open addressing with
 *  linear probing, at most half full, keyed by a hash of the context's contents.
 *
 *  Ownership: the pool owns the copies; a holder borrows one from hold to release. The pool
 *  must outlive its holds (gossip_ctx_pool_destroy frees whatever is still held).
 *  Single-threaded.
 */
#ifndef GOSSIP_CTX_POOL_H
#define GOSSIP_CTX_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "crdt/ctx.h"

typedef struct gossip_ctx_pool gossip_ctx_pool_t;

/*  An empty pool whose hashes are keyed by seed. NULL when out of memory. */
gossip_ctx_pool_t *gossip_ctx_pool_new(uint64_t seed);
void gossip_ctx_pool_destroy(gossip_ctx_pool_t **self_p);

/*  A held copy of ctx: the pool's copy when an equal one is held already, else a new one.
 *  NULL when out of memory (nothing held then). */
const crdt_ctx_t *gossip_ctx_pool_hold(gossip_ctx_pool_t *self, const crdt_ctx_t *ctx);

/*  Ends one hold of *ctx_p (a pointer gossip_ctx_pool_hold returned) and sets *ctx_p to NULL;
 *  nothing when it is NULL already. */
void gossip_ctx_pool_release(gossip_ctx_pool_t *self, const crdt_ctx_t **ctx_p);

/*  The distinct contexts held. */
size_t gossip_ctx_pool_size(const gossip_ctx_pool_t *self);

#endif
