/*  World of in-process replicas (see world.h). */
#include "world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/error.h"

const char *const world_contributors[WORLD_CONTRIBUTORS] = {"", "ann\x1fu1", "bob\x1fu1",
                                                            "ann\x1fu2"};

uint64_t world_replica_id(int index)
{
    /* Spread over the whole 64-bit space, as ids derived from keys are. */
    return (UINT64_C(0x9e3779b97f4a7c15) * (uint64_t)(index + 1)) | 1;
}

void world_init(world_t *w, prop_rng_t *rng, int nreplicas, unsigned kinds, int nkeys)
{
    assert_true(nreplicas >= 1 && nreplicas <= WORLD_MAX_REPLICAS);
    memset(w, 0, sizeof *w);
    w->rng = rng;
    w->nreplicas = nreplicas;
    w->kinds = kinds;
    w->nkeys = nkeys;
    w->now_ms = 1700000000000ULL;
    for (int i = 0; i < nreplicas; i++) {
        w->replicas[i] = crdt_scope_new(world_replica_id(i));
        assert_non_null(w->replicas[i]);
    }
}

void world_fini(world_t *w)
{
    for (int i = 0; i < w->nreplicas; i++)
        crdt_scope_destroy(&w->replicas[i]);
    for (size_t i = 0; i < w->nops; i++) {
        crdt_ctx_destroy(&w->ops[i].past);
        crdt_scope_destroy(&w->ops[i].delta);
    }
    free(w->ops);
    memset(w, 0, sizeof *w);
}

static world_kind_t s_random_kind(world_t *w)
{
    for (;;) {
        world_kind_t kind = (world_kind_t)prop_below(w->rng, OP_KINDS);
        if (w->kinds & (1u << kind))
            return kind;
    }
}

/*  Keys are per type ("reg1", "set0", ...), plus one key shared by every type, so that
 *  concurrent creations of one key with different types happen too. */
static void s_random_key(world_t *w, const char *prefix, char *key)
{
    if (prop_chance(w->rng, 5))
        strcpy(key, "shared");
    else
        snprintf(key, 16, "%s%d", prefix, (int)prop_below(w->rng, (uint64_t)w->nkeys));
}

static int s_apply(world_t *w, crdt_scope_t *x, world_op_t *op)
{
    switch (op->kind) {
    case OP_REG_WRITE:
        return crdt_mvreg_write(x, op->key, op->hlc, op->value, strlen(op->value), &op->delta);
    case OP_SET_ADD:
        return crdt_awset_add(x, op->key, op->elem, op->value, strlen(op->value), &op->delta);
    case OP_SET_REMOVE:
        return crdt_awset_remove(x, op->key, op->elem, &op->delta);
    case OP_COUNTER_ADD:
        return crdt_counter_add(x, op->key, op->elem, op->amount, &op->delta);
    case OP_LOG_APPEND:
        return crdt_log_append(x, op->key, op->hlc, op->value, strlen(op->value), &op->delta);
    case OP_FORGET:
        return crdt_scope_forget(x, op->key, &op->delta);
    case OP_KINDS:
        break;
    }
    (void)w;
    return ENGRAM_EINVAL;
}

int world_random_op(world_t *w, int r)
{
    if (r < 0)
        r = (int)prop_below(w->rng, (uint64_t)w->nreplicas);
    crdt_scope_t *x = w->replicas[r];
    world_op_t op = {.kind = s_random_kind(w), .origin = r};
    static const char *const prefixes[] = {"reg", "set", "set", "ctr", "log", "any"};
    if (op.kind == OP_FORGET) {
        static const char *const types[] = {"reg", "set", "ctr", "log"};
        s_random_key(w, types[prop_below(w->rng, 4)], op.key);
    } else {
        s_random_key(w, prefixes[op.kind], op.key);
    }
    snprintf(op.elem, sizeof op.elem, "e%d", (int)prop_below(w->rng, 5));
    if (op.kind == OP_COUNTER_ADD)
        strcpy(op.elem, world_contributors[prop_below(w->rng, WORLD_CONTRIBUTORS)]);
    op.amount = (int64_t)prop_below(w->rng, 21) - 5;
    w->now_ms += prop_below(w->rng, 3);
    op.hlc = crdt_hlc_now(&w->clocks[r], w->now_ms);
    snprintf(op.value, sizeof op.value, "v%zu@%d", w->nops, r);

    crdt_scope_t *before = crdt_scope_dup(x, crdt_scope_replica(x));
    assert_non_null(before);
    op.past = crdt_ctx_dup(crdt_scope_ctx(x));
    int rc = s_apply(w, x, &op);
    if (rc != 0) {
        /* Refused operations must change nothing. */
        PROP_CHECK(rc == ENGRAM_ENOTFOUND || rc == ENGRAM_ETYPE);
        PROP_CHECK(op.delta == NULL);
        PROP_CHECK(crdt_scope_equal(before, x));
        crdt_scope_destroy(&before);
        crdt_ctx_destroy(&op.past);
        return -1;
    }
    /* The fresh dot is the only new dot of this replica: (r, max + 1). */
    op.dot = (crdt_dot_t){crdt_scope_replica(x), crdt_ctx_max(op.past, crdt_scope_replica(x)) + 1};
    PROP_CHECK(crdt_ctx_contains(crdt_scope_ctx(x), op.dot));
    PROP_CHECK(!crdt_ctx_contains(op.past, op.dot));
    /* x ⊔ mδ(x) = m(x) */
    PROP_CHECK(crdt_scope_join(before, op.delta) == 0);
    PROP_CHECK(crdt_scope_equal(before, x));
    PROP_CHECK(crdt_scope_digest(x) == crdt_scope_digest_recompute(x));
    crdt_scope_destroy(&before);

    if (w->nops == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 64;
        w->ops = realloc(w->ops, w->cap * sizeof *w->ops);
        assert_non_null(w->ops);
    }
    w->ops[w->nops] = op;
    return (int)w->nops++;
}

void world_deliver(world_t *w, size_t op, int r)
{
    crdt_scope_t *x = w->replicas[r];
    PROP_CHECK(crdt_scope_join(x, w->ops[op].delta) == 0);
    PROP_CHECK(crdt_ctx_contains(crdt_scope_ctx(x), w->ops[op].dot));
    PROP_CHECK(crdt_scope_digest(x) == crdt_scope_digest_recompute(x));
}

bool world_deliverable(const world_t *w, size_t op, int r)
{
    const crdt_ctx_t *ctx = crdt_scope_ctx(w->replicas[r]);
    return !crdt_ctx_contains(ctx, w->ops[op].dot) && crdt_ctx_covers(ctx, w->ops[op].past);
}

void world_deliver_all(world_t *w)
{
    size_t n = w->nops * (size_t)w->nreplicas;
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    assert_non_null(order);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    prop_shuffle(w->rng, order, n, sizeof *order);
    for (size_t i = 0; i < n; i++) {
        size_t op = order[i] / (size_t)w->nreplicas;
        int r = (int)(order[i] % (size_t)w->nreplicas);
        world_deliver(w, op, r);
        if (prop_chance(w->rng, 10)) /* duplicates */
            world_deliver(w, order[prop_below(w->rng, i + 1)] / (size_t)w->nreplicas, r);
    }
    free(order);
}

void world_deliver_causally(world_t *w)
{
    for (;;) {
        size_t candidates = 0;
        size_t pick_op = 0;
        int pick_r = 0;
        for (size_t op = 0; op < w->nops; op++) {
            for (int r = 0; r < w->nreplicas; r++) {
                if (!world_deliverable(w, op, r))
                    continue;
                /* Reservoir sampling: a uniform choice among the deliverable pairs. */
                if (prop_below(w->rng, ++candidates) == 0) {
                    pick_op = op;
                    pick_r = r;
                }
            }
        }
        if (!candidates)
            return;
        world_deliver(w, pick_op, pick_r);
        PROP_CHECK(crdt_ctx_is_vv(crdt_scope_ctx(w->replicas[pick_r])));
    }
}

bool world_saw(const world_t *w, size_t earlier, size_t later)
{
    return crdt_ctx_contains(w->ops[later].past, w->ops[earlier].dot);
}

bool world_superseded(const world_t *w, size_t a, unsigned kinds, const char *key, const char *elem)
{
    for (size_t o = 0; o < w->nops; o++) {
        const world_op_t *op = &w->ops[o];
        if (o == a || strcmp(op->key, key) != 0 || !world_saw(w, a, o))
            continue;
        if (op->kind == OP_FORGET)
            return true;
        if ((kinds & (1u << op->kind)) && (!elem || strcmp(op->elem, elem) == 0))
            return true;
    }
    return false;
}

void world_converged(world_t *w, prop_rng_t *rng, unsigned kinds)
{
    int nreplicas = 2 + (int)prop_below(rng, 4);
    world_init(w, rng, nreplicas, kinds, 2);
    int nops = 10 + (int)prop_below(rng, 120);
    for (int i = 0; i < nops; i++) {
        world_random_op(w, -1);
        if (w->nops && prop_chance(rng, 50))
            world_deliver(w, prop_below(rng, w->nops), (int)prop_below(rng, (uint64_t)nreplicas));
    }
    world_deliver_all(w);
}
