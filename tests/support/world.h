/*  A world of in-process CRDT replicas for property tests.
 *
 *  Each replica is a crdt_scope_t. world_random_op performs one random operation (every type,
 *  on a small key space so that operations collide) at a random replica and keeps, for each
 *  operation, its delta, its dot, and the origin's context just before it: its causal past.
 *  The causal past is what the specifications of the types are written against: for instance
 *  an add survives in a converged state iff no remove in the history had it in its past.
 *
 *  Every operation also checks two kernel laws on the spot: x ⊔ mδ(x) = m(x) (joining the
 *  delta into a copy of the pre-state gives the post-state), and the incremental digest equals
 *  the digest recomputed from scratch.
 */
#ifndef ENGRAM_TEST_WORLD_H
#define ENGRAM_TEST_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crdt/awset.h"
#include "crdt/counter.h"
#include "crdt/hlc.h"
#include "crdt/log.h"
#include "crdt/mvreg.h"
#include "crdt/scope.h"
#include "prop.h"

#define WORLD_MAX_REPLICAS 8

typedef enum {
    OP_REG_WRITE,
    OP_SET_ADD,
    OP_SET_REMOVE,
    OP_COUNTER_ADD,
    OP_LOG_APPEND,
    OP_FORGET,
    OP_KINDS
} world_kind_t;

#define WORLD_ALL_KINDS ((1u << OP_KINDS) - 1)

/*  Counter contributors: the legacy "" and names shaped as node/'s "<agent>\x1f<user>". */
#define WORLD_CONTRIBUTORS 4
extern const char *const world_contributors[WORLD_CONTRIBUTORS];

typedef struct {
    world_kind_t kind;
    int origin;     /* replica index */
    crdt_dot_t dot; /* the dot the operation took */
    char key[16];
    char elem[16];       /* set: the element; counter: the contributor */
    int64_t amount;      /* counter */
    uint64_t hlc;        /* reg and log */
    char value[24];      /* reg and log payload, set add data */
    crdt_ctx_t *past;    /* owned: the origin's context just before the operation */
    crdt_scope_t *delta; /* owned */
} world_op_t;

typedef struct {
    prop_rng_t *rng;
    int nreplicas;
    crdt_scope_t *replicas[WORLD_MAX_REPLICAS];
    crdt_hlc_t clocks[WORLD_MAX_REPLICAS];
    uint64_t now_ms;
    unsigned kinds; /* bit (1 << world_kind_t) per kind to generate */
    int nkeys;      /* keys per type */
    world_op_t *ops;
    size_t nops;
    size_t cap;
} world_t;

void world_init(world_t *w, prop_rng_t *rng, int nreplicas, unsigned kinds, int nkeys);
void world_fini(world_t *w);
uint64_t world_replica_id(int index);

/*  One random operation at replica r (-1: a random one). Returns the index of the recorded
 *  op, or -1 if the kernel refused it as it should (ENGRAM_ENOTFOUND, ENGRAM_ETYPE). */
int world_random_op(world_t *w, int r);
/*  Joins op's delta into replica r. */
void world_deliver(world_t *w, size_t op, int r);
/*  True when replica r has every dependency of op (its past) and has not seen op. */
bool world_deliverable(const world_t *w, size_t op, int r);
/*  Delivers every op to every replica, in a random order, with random duplicates. */
void world_deliver_all(world_t *w);
/*  Keeps delivering deliverable ops in random causal order until none is left. */
void world_deliver_causally(world_t *w);

/*  True when op `later` had op `earlier` in its causal past. */
bool world_saw(const world_t *w, size_t earlier, size_t later);
/*  True when some op of one of the given kinds on key (and elem, if not NULL) had op `a` in
 *  its causal past; forgets of the key always count. */
bool world_superseded(const world_t *w, size_t a, unsigned kinds, const char *key,
                      const char *elem);
/*  Builds a converged world: random ops at random replicas with random partial delivery,
 *  then everything delivered to everyone. */
void world_converged(world_t *w, prop_rng_t *rng, unsigned kinds);
#endif
