/*  gossip_ctx_pool: shared copies of causal contexts (see ctx_pool.h for the invariants).
 *
 *  Representation: `slots`, cap entries (0 or a power of two), a slot free when its ctx is
 *  NULL; a context sits at the first free-or-own slot from its hash's home, so a lookup stops
 *  at the first free slot. Removal shifts later entries of the run back (no tombstones).
 */
#include "gossip/ctx_pool.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>

#include "crdt/hash.h"

typedef struct {
    crdt_ctx_t *ctx; /* owned; NULL: a free slot */
    uint64_t hash;
    size_t holds;
} s_slot_t;

struct gossip_ctx_pool {
    s_slot_t *slots;
    size_t cap;
    size_t n;
    uint64_t seed;
};

gossip_ctx_pool_t *gossip_ctx_pool_new(uint64_t seed)
{
    gossip_ctx_pool_t *self = calloc(1, sizeof *self);
    if (self)
        self->seed = seed;
    return self;
}

void gossip_ctx_pool_destroy(gossip_ctx_pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gossip_ctx_pool_t *self = *self_p;
    for (size_t i = 0; i < self->cap; i++)
        crdt_ctx_destroy(&self->slots[i].ctx);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

/*  The contents' hash: each node's (node, base) and cloud ranges, chained. */
static uint64_t s_hash(const gossip_ctx_pool_t *self, const crdt_ctx_t *ctx)
{
    uint64_t h = self->seed;
    for (size_t i = 0; i < crdt_ctx_nodes(ctx); i++) {
        uint64_t entry[3] = {0, 0, h};
        const crdt_range_t *cloud;
        size_t ncloud;
        crdt_ctx_node_at(ctx, i, &entry[0], &entry[1], &cloud, &ncloud);
        h = crdt_hash(entry, sizeof entry, self->seed);
        if (ncloud)
            h = crdt_hash(cloud, ncloud * sizeof *cloud, h);
    }
    return h;
}

/*  The slot of a context equal to ctx (hash h), or the free one where it would go. cap must
 *  be non-zero. */
static s_slot_t *s_slot(const gossip_ctx_pool_t *self, const crdt_ctx_t *ctx, uint64_t h)
{
    size_t mask = self->cap - 1;
    size_t i = (size_t)h & mask;
    while (self->slots[i].ctx &&
           !(self->slots[i].hash == h && crdt_ctx_equal(self->slots[i].ctx, ctx)))
        i = (i + 1) & mask;
    return &self->slots[i];
}

/*  Makes room for one more context (doubling past half full). False when out of memory. */
static bool s_reserve(gossip_ctx_pool_t *self)
{
    if (2 * (self->n + 1) <= self->cap)
        return true;
    size_t cap = self->cap ? 2 * self->cap : 16;
    s_slot_t *old = self->slots;
    size_t old_cap = self->cap;
    self->slots = calloc(cap, sizeof *self->slots);
    if (!self->slots) {
        self->slots = old;
        return false;
    }
    self->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].ctx)
            *s_slot(self, old[i].ctx, old[i].hash) = old[i];
    free(old);
    return true;
}

const crdt_ctx_t *gossip_ctx_pool_hold(gossip_ctx_pool_t *self, const crdt_ctx_t *ctx)
{
    assert(self && ctx);
    uint64_t h = s_hash(self, ctx);
    s_slot_t *slot = self->cap ? s_slot(self, ctx, h) : NULL;
    if (slot && slot->ctx) {
        slot->holds++;
        return slot->ctx;
    }
    crdt_ctx_t *copy = crdt_ctx_dup(ctx);
    if (!copy || !s_reserve(self)) {
        crdt_ctx_destroy(&copy);
        return NULL;
    }
    *s_slot(self, copy, h) = (s_slot_t){copy, h, 1};
    self->n++;
    return copy;
}

void gossip_ctx_pool_release(gossip_ctx_pool_t *self, const crdt_ctx_t **ctx_p)
{
    assert(self && ctx_p);
    const crdt_ctx_t *ctx = *ctx_p;
    if (!ctx)
        return;
    *ctx_p = NULL;
    assert(self->cap); /* released what the pool never handed out */
    size_t mask = self->cap - 1;
    size_t i = (size_t)s_hash(self, ctx) & mask;
    while (self->slots[i].ctx != ctx) {
        assert(self->slots[i].ctx); /* released what the pool never handed out */
        i = (i + 1) & mask;
    }
    if (--self->slots[i].holds > 0)
        return;
    crdt_ctx_destroy(&self->slots[i].ctx);
    self->n--;
    /* backward shift: move each later entry of the run into the hole when its home lies at or
     * before the hole (cyclically), so that every lookup still finds it */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; self->slots[j].ctx; j = (j + 1) & mask) {
        size_t home = (size_t)self->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            self->slots[hole] = self->slots[j];
            self->slots[j] = (s_slot_t){0};
            hole = j;
        }
    }
}

size_t gossip_ctx_pool_size(const gossip_ctx_pool_t *self)
{
    assert(self);
    return self->n;
}
