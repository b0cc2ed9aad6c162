/*  The deterministic simulation harness (see sim.h).
 *
 *  Time is a discrete event queue: a binary heap ordered by (simulated ms, sequence number), so
 *  that events at the same ms run in the order they were scheduled and a run depends on the
 *  seed alone. Ticks, sync points and restarts carry the incarnation of the node they belong
 *  to; a crash bumps it, which cancels them. Messages carry the sender's and receiver's ids at
 *  send time: a message to an id a node no longer uses (after a crash that lost state) is
 *  undeliverable, as it would be to a reinstalled host.
 */
#include "sim.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/awset.h"
#include "crdt/codec.h"
#include "crdt/counter.h"
#include "crdt/hlc.h"
#include "crdt/log.h"
#include "crdt/mvreg.h"
#include "crdt/scope.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "prop.h"
#include "world.h"

/*  Wall clocks start here (skew is added on top), so that HLC stamps look real. */
#define EPOCH_MS UINT64_C(1700000000000)
/*  Bytes of a node's card and of a decommission statement (both made up from the id). */
#define CARD_BYTES  96
#define LEAVE_BYTES 22
/*  How often quiesce compares the replicas. */
#define AGREE_EVERY_MS 200
/*  Violations printed in full per run and kind; the rest are only counted. */
#define MAX_PRINTED 4
#define MAX_KINDS   16

static const char *const s_scope_names[SIM_MAX_SCOPES] = {"run:a", "team:b",  "user:c",
                                                          "app:d", "agent:e", "team:f"};

typedef enum {
    EV_DELIVER,
    EV_TICK,
    EV_SYNC,
    EV_RESTART,
    EV_OP,
    EV_CRASH,
    EV_PARTITION,
    EV_HEAL,
    EV_DECOMMISSION,
} s_ev_kind_t;

typedef struct {
    uint64_t at;  /* simulated ms */
    uint64_t seq; /* tie-break: scheduling order */
    s_ev_kind_t kind;
    int node;             /* TICK, SYNC, RESTART: the node; DELIVER: the receiver */
    int from_node;        /* DELIVER: the sender */
    uint32_t incarnation; /* TICK, SYNC, RESTART: the life of the node it belongs to */
    uint64_t from, to;    /* DELIVER: ids at send time */
    uint8_t *buf;         /* DELIVER: owned */
    size_t len;
} s_event_t;

typedef enum { OP_PENDING, OP_ACKED, OP_LOST } s_op_state_t;

/*  One operation of the history, as world_op_t. */
typedef struct {
    world_kind_t kind;
    int scope;
    int node; /* index of the origin */
    crdt_dot_t dot;
    s_op_state_t state;
    char key[16];
    char elem[16];       /* set: the element; counter: the contributor */
    int64_t total;       /* counter: the running total the operation wrote */
    crdt_ctx_t *past;    /* owned: the origin's context just before */
    crdt_scope_t *delta; /* owned */
} s_op_t;

typedef struct {
    sim_t *sim;
    int index;
    uint64_t id; /* replica id in use; changes after a lossy crash */
    bool up;
    uint32_t incarnation; /* bumped by every crash */
    uint64_t engine_seed;
    gossip_engine_t *engine;              /* NULL while down */
    crdt_scope_t *scopes[SIM_MAX_SCOPES]; /* the durable store; NULL: not held */
    crdt_scope_t *snaps[SIM_MAX_SCOPES];  /* the store at the last sync point (replica 0) */
    crdt_hlc_t hlc;
    int64_t skew_ms;
    int group;         /* partition side; 0 when healed */
    bool retired;      /* decommissioned: no operations, excluded from the data checks */
    int seed_index;    /* the host it joins through (s_seed) */
    uint64_t old_id;   /* the id a lossy crash retired, decommissioned at the restart; or 0 */
    uint64_t crash_ms; /* when it last crashed */
    bool detected;     /* some node declared it DEAD since that crash */
    uint64_t suspected_inc, dead_inc; /* 1 + the incarnation last counted as a false suspicion,
                                         a false death (so each counts once, not per viewer) */
} s_node_t;

typedef struct {
    uint64_t id;
    int index;
} s_id_t;

struct sim {
    sim_config_t config;
    uint64_t seed;
    prop_rng_t rng;
    uint64_t now;
    bool faults; /* in the fault phase */
    bool rounds; /* round mode: no ticks of its own */
    s_node_t *nodes;
    s_event_t *heap;
    size_t nheap, heap_cap;
    uint64_t next_seq;
    s_op_t *ops;
    size_t nops, ops_cap;
    s_id_t *ids;        /* current ids, sorted, for routing */
    uint64_t *used_ids; /* every id ever given out */
    size_t nused, used_cap;
    uint64_t *left_ids; /* every id decommissioned so far, as a node would remember them */
    size_t nleft, left_cap;
    crdt_scope_t *empty; /* what a store that lacks a scope compares as */
    char *value;         /* scratch for values, value_max + 64 bytes */
    uint32_t partition;  /* generation of the current partition */
    uint64_t trace;
    sim_stats_t stats;
    int violations;
    const char *kinds[MAX_KINDS]; /* violation kinds seen, with their counts */
    int kind_counts[MAX_KINDS];
};

/*  --- reporting ----------------------------------------------------------------------- */

static void s_violation(sim_t *self, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*  Counts a violation of `kind` (a short tag) and prints the first few of each kind. */
static void s_violation(sim_t *self, const char *kind, const char *fmt, ...)
{
    self->violations++;
    self->stats.violations++;
    int k = 0;
    while (k < MAX_KINDS && self->kinds[k] && strcmp(self->kinds[k], kind) != 0)
        k++;
    if (k == MAX_KINDS)
        k = MAX_KINDS - 1;
    self->kinds[k] = kind;
    if (++self->kind_counts[k] > MAX_PRINTED)
        return;
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fprintf(stderr, "sim violation [%s] (seed %" PRIu64 ", t=%" PRIu64 " ms): %s\n", kind,
            self->seed, self->now, text);
    fflush(stderr);
}

static void s_ctx_print(char *out, size_t cap, const crdt_ctx_t *ctx)
{
    size_t at = 0;
    out[0] = 0;
    if (!ctx) {
        snprintf(out, cap, "(none)");
        return;
    }
    at += (size_t)snprintf(out + at, cap - at, "{");
    for (size_t i = 0; i < crdt_ctx_nodes(ctx) && at < cap; i++) {
        uint64_t node, base;
        const crdt_range_t *cloud;
        size_t ncloud;
        crdt_ctx_node_at(ctx, i, &node, &base, &cloud, &ncloud);
        at += (size_t)snprintf(out + at, cap - at, "%s%016" PRIx64 ":%" PRIu64, i ? " " : "", node,
                               base);
        for (size_t c = 0; c < ncloud && at < cap; c++)
            at += (size_t)snprintf(out + at, cap - at, "+[%" PRIu64 "..%" PRIu64 "]", cloud[c].lo,
                                   cloud[c].hi);
    }
    if (at < cap)
        snprintf(out + at, cap - at, "}");
}

static uint64_t s_mix(uint64_t h, uint64_t v)
{
    h ^= v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2);
    return h * UINT64_C(0x100000001b3);
}

/*  --- the event queue ---------------------------------------------------------------- */

static bool s_before(const s_event_t *a, const s_event_t *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void s_schedule(sim_t *self, s_event_t ev)
{
    if (self->nheap == self->heap_cap) {
        self->heap_cap = self->heap_cap ? self->heap_cap * 2 : 256;
        self->heap = realloc(self->heap, self->heap_cap * sizeof *self->heap);
        assert_non_null(self->heap);
    }
    ev.seq = self->next_seq++;
    size_t i = self->nheap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!s_before(&ev, &self->heap[parent]))
            break;
        self->heap[i] = self->heap[parent];
        i = parent;
    }
    self->heap[i] = ev;
}

static s_event_t s_pop(sim_t *self)
{
    s_event_t top = self->heap[0];
    s_event_t last = self->heap[--self->nheap];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= self->nheap)
            break;
        if (child + 1 < self->nheap && s_before(&self->heap[child + 1], &self->heap[child]))
            child++;
        if (!s_before(&self->heap[child], &last))
            break;
        self->heap[i] = self->heap[child];
        i = child;
    }
    if (self->nheap)
        self->heap[i] = last;
    return top;
}

/*  A gap of mean `mean` ms: uniform in [mean/2, 3*mean/2], at least 1. */
static uint64_t s_gap(sim_t *self, uint64_t mean)
{
    uint64_t gap = mean / 2 + prop_below(&self->rng, mean + 1);
    return gap ? gap : 1;
}

static void s_schedule_node(sim_t *self, s_ev_kind_t kind, s_node_t *node, uint64_t after)
{
    s_schedule(self, (s_event_t){.at = self->now + after,
                                 .kind = kind,
                                 .node = node->index,
                                 .incarnation = node->incarnation});
}

/*  --- ids --------------------------------------------------------------------------- */

static int s_id_cmp(const void *a, const void *b)
{
    uint64_t x = ((const s_id_t *)a)->id, y = ((const s_id_t *)b)->id;
    return x < y ? -1 : x > y;
}

static void s_index_ids(sim_t *self)
{
    for (int i = 0; i < self->config.nodes; i++)
        self->ids[i] = (s_id_t){self->nodes[i].id, i};
    qsort(self->ids, (size_t)self->config.nodes, sizeof *self->ids, s_id_cmp);
}

/*  The node that uses id now, or -1. */
static int s_route(const sim_t *self, uint64_t id)
{
    size_t lo = 0, hi = (size_t)self->config.nodes;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (self->ids[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < (size_t)self->config.nodes && self->ids[lo].id == id ? self->ids[lo].index : -1;
}

/*  A random non-zero id never given out before. */
static uint64_t s_new_id(sim_t *self)
{
    for (;;) {
        uint64_t id = prop_next(&self->rng);
        bool used = id == 0;
        for (size_t i = 0; i < self->nused && !used; i++)
            used = self->used_ids[i] == id;
        if (used)
            continue;
        if (self->nused == self->used_cap) {
            self->used_cap = self->used_cap ? self->used_cap * 2 : 64;
            self->used_ids = realloc(self->used_ids, self->used_cap * sizeof *self->used_ids);
            assert_non_null(self->used_ids);
        }
        self->used_ids[self->nused++] = id;
        return id;
    }
}

/*  --- the store (gossip_store_t over the node's scopes) ------------------------------ */

static int s_scope_index(const sim_t *self, const char *name)
{
    for (int s = 0; s < self->config.scopes; s++)
        if (strcmp(s_scope_names[s], name) == 0)
            return s;
    return -1;
}

static void s_store_each(void *store, void (*fn)(void *arg, const char *scope), void *arg)
{
    s_node_t *node = store;
    for (int s = 0; s < node->sim->config.scopes; s++)
        if (node->scopes[s])
            fn(arg, s_scope_names[s]);
}

static const crdt_ctx_t *s_store_ctx(void *store, const char *scope)
{
    s_node_t *node = store;
    int s = s_scope_index(node->sim, scope);
    return s >= 0 && node->scopes[s] ? crdt_scope_ctx(node->scopes[s]) : NULL;
}

static crdt_scope_t *s_store_delta_since(void *store, const char *scope, const crdt_ctx_t *since)
{
    s_node_t *node = store;
    int s = s_scope_index(node->sim, scope);
    if (s < 0 || !node->scopes[s])
        return NULL;
    crdt_scope_t *delta = crdt_scope_delta_since(node->scopes[s], since);
    assert_non_null(delta);
    return delta;
}

/*  The largest stamp of a delta's entries. */
static int s_max_stamp(void *arg, crdt_type_id_t type, const char *key, const crdt_entry_view_t *e)
{
    (void)type, (void)key;
    uint64_t *max = arg;
    if (e->hlc > *max)
        *max = e->hlc;
    return 0;
}

static uint64_t s_local_now(const sim_t *self, const s_node_t *node);

static int s_store_apply(void *store, const char *scope, const crdt_scope_t *delta)
{
    s_node_t *node = store;
    sim_t *sim = node->sim;
    int s = s_scope_index(sim, scope);
    if (s < 0) {
        s_violation(sim, "store", "node %d asked to apply a delta of unknown scope '%s'",
                    node->index, scope);
        return ENGRAM_ESCOPE;
    }
    if (!node->scopes[s]) {
        node->scopes[s] = crdt_scope_new(node->id);
        assert_non_null(node->scopes[s]);
    }
    crdt_scope_t *x = node->scopes[s];
    /* as engramd's store: the node's clock observes every stamp it is handed, and a stamp
     * further ahead of its wall clock than the drift allowed is refused (not applied) */
    uint64_t stamp = 0, merged;
    crdt_scope_foreach_entry(delta, s_max_stamp, &stamp);
    if (stamp && !sim->config.clocks_blind &&
        crdt_hlc_observe(&node->hlc, stamp, s_local_now(sim, node),
                         ENGRAM_DEFAULT_MAX_CLOCK_DRIFT_MS, &merged) != 0) {
        sim->stats.clock_refusals++;
        return ENGRAM_ERANGE;
    }
    sim->stats.applies++;
    int rc = crdt_scope_join(x, delta);
    if (rc != 0) {
        s_violation(sim, "join-refused",
                    "node %d (%016" PRIx64 ") scope %s: join refused the delta: %s", node->index,
                    node->id, scope, engram_strerror(rc));
        return rc;
    }
    if (!crdt_ctx_is_vv(crdt_scope_ctx(x))) {
        char ctx[512], dctx[512];
        s_ctx_print(ctx, sizeof ctx, crdt_scope_ctx(x));
        s_ctx_print(dctx, sizeof dctx, crdt_scope_ctx(delta));
        s_violation(sim, "causal-order",
                    "node %d (%016" PRIx64 ") scope %s: causal order broken by an apply: "
                    "context %s after joining a delta with context %s",
                    node->index, node->id, scope, ctx, dctx);
    }
    if ((sim->stats.applies & 7) == 0 && crdt_scope_digest(x) != crdt_scope_digest_recompute(x))
        s_violation(sim, "digest", "node %d scope %s: incremental digest differs from recomputed",
                    node->index, scope);
    return 0;
}

/*  The simulated store holds only the simulation's scopes: any other name from a peer is bad
 *  input (none is sent, so a refusal would show as a bad message in the stats). */
static bool s_store_scope_ok(void *store, const char *scope)
{
    s_node_t *node = store;
    return s_scope_index(node->sim, scope) >= 0;
}

static const gossip_store_t s_store = {s_store_each,  s_store_ctx,      s_store_delta_since,
                                       s_store_apply, s_store_scope_ok, NULL};

/*  --- nodes ------------------------------------------------------------------------- */

static uint64_t s_local_now(const sim_t *self, const s_node_t *node)
{
    return (uint64_t)((int64_t)(EPOCH_MS + self->now) + node->skew_ms);
}

/*  The store as it is now becomes the one a lossy crash goes back to. A scope unchanged since
 *  the last snapshot (same context and digest: equal states) keeps its copy. */
static void s_snapshot(s_node_t *node)
{
    for (int s = 0; s < node->sim->config.scopes; s++) {
        if (node->snaps[s] && node->scopes[s] &&
            crdt_scope_digest(node->snaps[s]) == crdt_scope_digest(node->scopes[s]) &&
            crdt_ctx_equal(crdt_scope_ctx(node->snaps[s]), crdt_scope_ctx(node->scopes[s])))
            continue;
        crdt_scope_destroy(&node->snaps[s]);
        if (node->scopes[s]) {
            node->snaps[s] = crdt_scope_dup(node->scopes[s], 0);
            assert_non_null(node->snaps[s]);
        }
    }
}

/*  --- membership hooks: cards and statements made up from the id ----------------------- */

static void s_card(uint64_t id, uint8_t card[CARD_BYTES])
{
    uint64_t x = id;
    for (int i = 0; i < CARD_BYTES; i++) {
        if (i % 8 == 0)
            x = s_mix(x, (uint64_t)i);
        card[i] = (uint8_t)(x >> (8 * (i % 8)));
    }
}

static void s_leave_stmt(uint64_t id, char stmt[LEAVE_BYTES + 1])
{
    snprintf(stmt, LEAVE_BYTES + 1, "leave:%016" PRIx64, id);
}

static bool s_admit(void *arg, uint64_t id, const uint8_t *card, size_t len)
{
    (void)arg;
    uint8_t want[CARD_BYTES];
    s_card(id, want);
    return len == CARD_BYTES && memcmp(card, want, len) == 0;
}

static bool s_verify_leave(void *arg, uint64_t id, const uint8_t *stmt, size_t len)
{
    (void)arg;
    char want[LEAVE_BYTES + 1];
    s_leave_stmt(id, want);
    return len == LEAVE_BYTES && memcmp(stmt, want, len) == 0;
}

/*  The node that uses or used id: by its current id, or a down node by the id its crash
 *  retired. -1 if none. */
static int s_owner(const sim_t *self, uint64_t id)
{
    int t = s_route(self, id);
    for (int i = 0; t < 0 && i < self->config.nodes; i++)
        if (!self->nodes[i].up && self->nodes[i].old_id == id)
            t = i;
    return t;
}

/*  Membership figures: suspicions and deaths of nodes that are up are false; the first DEAD of
 *  a crashed node is its detection. */
static void s_changed(void *arg, const gossip_member_t *member)
{
    s_node_t *viewer = arg;
    sim_t *self = viewer->sim;
    if (member->id == viewer->id || member->state == GOSSIP_ALIVE || member->state == GOSSIP_LEFT)
        return;
    int t = s_owner(self, member->id);
    if (t < 0)
        return;
    s_node_t *node = &self->nodes[t];
    bool live = node->up && !node->retired && node->id == member->id;
    if (member->state == GOSSIP_SUSPECT && live) {
        if (node->suspected_inc != member->incarnation + 1) {
            node->suspected_inc = member->incarnation + 1;
            self->stats.suspicions_false++;
            self->stats.suspicions_false_cut += node->group != viewer->group;
        }
    } else if (member->state == GOSSIP_DEAD && live) {
        if (node->dead_inc != member->incarnation + 1) {
            node->dead_inc = member->incarnation + 1;
            self->stats.deaths_false++;
        }
    } else if (member->state == GOSSIP_DEAD && !node->up && !node->detected) {
        node->detected = true;
        uint64_t took = self->now - node->crash_ms;
        self->stats.deaths_detected++;
        self->stats.detect_ms_sum += took;
        if (took > self->stats.detect_ms_max)
            self->stats.detect_ms_max = took;
    }
}

/*  Node i learns node j as its seed, as `--join` would give it. */
static void s_learn(sim_t *self, s_node_t *node, const s_node_t *seed)
{
    uint8_t card[CARD_BYTES];
    char endpoint[40];
    s_card(seed->id, card);
    snprintf(endpoint, sizeof endpoint, "sim://%016" PRIx64, seed->id);
    gossip_member_t m = {.id = seed->id,
                         .state = GOSSIP_ALIVE,
                         .endpoint = endpoint,
                         .card = card,
                         .card_len = CARD_BYTES};
    if (gossip_engine_learn(node->engine, &m) != 0)
        s_violation(self, "membership", "node %d could not learn its seed", node->index);
}

static void s_remember_left(sim_t *self, uint64_t id)
{
    if (self->nleft == self->left_cap) {
        self->left_cap = self->left_cap ? self->left_cap * 2 : 16;
        self->left_ids = realloc(self->left_ids, self->left_cap * sizeof *self->left_ids);
        assert_non_null(self->left_ids);
    }
    self->left_ids[self->nleft++] = id;
}

/*  A random node other than node that is not retired, or -1. */
static int s_random_other(sim_t *self, const s_node_t *node)
{
    int count = 0, pick = -1;
    for (int i = 0; i < self->config.nodes; i++)
        if (i != node->index && !self->nodes[i].retired &&
            prop_below(&self->rng, (uint64_t)++count) == 0)
            pick = i;
    return pick;
}

/*  The node's seed: its `--join` host (a fixed node index: a random lower one, any other for
 *  node 0), or, if that host was decommissioned, that host's seed, and so on. Seeds are
 *  hosts, not ids: a lossy crash gives the host a new id at the same address. */
static int s_seed(sim_t *self, const s_node_t *node)
{
    int k = node->seed_index;
    for (int steps = 0; steps < self->config.nodes; steps++) {
        if (k != node->index && !self->nodes[k].retired)
            return k;
        k = self->nodes[k].seed_index;
    }
    return s_random_other(self, node);
}

/*  Joins through the seed host whenever the node does not know the id it has now (at start,
 *  and at each sync point: engramd retries its `--join` address). A decommissioned node does
 *  too, which is how it hears that it is LEFT if it was cut off when that spread. */
static void s_rejoin(sim_t *self, s_node_t *node)
{
    if (self->rounds || !node->engine)
        return;
    int seed = s_seed(self, node);
    gossip_member_t m;
    if (seed >= 0 && !gossip_engine_member(node->engine, self->nodes[seed].id, &m))
        s_learn(self, node, &self->nodes[seed]);
}

static void s_engine_start(sim_t *self, s_node_t *node)
{
    if (!self->config.restart_same_seed || node->engine_seed == 0)
        node->engine_seed = prop_next(&self->rng) | 1;
    uint8_t card[CARD_BYTES];
    char endpoint[40];
    s_card(node->id, card);
    snprintf(endpoint, sizeof endpoint, "sim://%016" PRIx64, node->id);
    gossip_config_t config = {.node_id = node->id,
                              .fanout = self->config.fanout,
                              .max_message_bytes = self->config.max_message_bytes,
                              .seed = node->engine_seed,
                              .endpoint = endpoint,
                              .card = card,
                              .card_len = CARD_BYTES,
                              .incarnation = s_local_now(self, node)};
    node->engine = gossip_engine_new(&config, &s_store, node);
    assert_non_null(node->engine);
    gossip_hooks_t hooks = {s_admit, s_verify_leave, s_changed, node};
    gossip_engine_set_hooks(node->engine, &hooks);
    node->up = true;
    if (self->config.rounds) {
        for (int i = 0; i < self->config.nodes; i++)
            if (i != node->index)
                gossip_engine_add_peer(node->engine, self->nodes[i].id);
        return;
    }
    s_rejoin(self, node);
    /* The LEFT members remembered from the last run (engramd keeps them, the sim keeps them
     * for every node: a statement is never lost with the node that first heard it). */
    for (size_t i = 0; i < self->nleft; i++) {
        char stmt[LEAVE_BYTES + 1];
        s_leave_stmt(self->left_ids[i], stmt);
        gossip_member_t m = {.id = self->left_ids[i],
                             .state = GOSSIP_LEFT,
                             .endpoint = "",
                             .leave = (const uint8_t *)stmt,
                             .leave_len = LEAVE_BYTES};
        if (gossip_engine_learn(node->engine, &m) != 0)
            s_violation(self, "membership", "node %d could not learn a LEFT member", node->index);
    }
    if (node->old_id) {
        /* The admin decommissions the identity the lost state belonged to. */
        char stmt[LEAVE_BYTES + 1];
        s_leave_stmt(node->old_id, stmt);
        if (gossip_engine_leave(node->engine, node->old_id, (const uint8_t *)stmt, LEAVE_BYTES) !=
            0)
            s_violation(self, "membership", "node %d could not decommission its old id",
                        node->index);
        s_remember_left(self, node->old_id);
        node->old_id = 0;
    }
}

/*  Sums every counter (gossip_stats_t is all uint64_t). */
static void s_engine_stats_add(gossip_stats_t *sum, const gossip_stats_t *s)
{
    _Static_assert(sizeof *s % sizeof(uint64_t) == 0, "gossip_stats_t holds uint64_t only");
    uint64_t *to = (uint64_t *)sum;
    const uint64_t *from = (const uint64_t *)s;
    for (size_t i = 0; i < sizeof *s / sizeof(uint64_t); i++)
        to[i] += from[i];
}

static void s_engine_stop(sim_t *self, s_node_t *node)
{
    if (node->engine)
        s_engine_stats_add(&self->stats.engine, gossip_engine_stats(node->engine));
    gossip_engine_destroy(&node->engine);
    node->up = false;
}

/*  Hands every message the node's engine has queued to the network. */
static void s_flush(sim_t *self, s_node_t *node)
{
    uint64_t peer;
    uint8_t *buf;
    size_t len;
    while (node->engine && gossip_engine_next(node->engine, &peer, &buf, &len, NULL)) {
        self->stats.msgs_sent++;
        self->stats.bytes_sent += len;
        if (len > self->stats.msg_max_bytes)
            self->stats.msg_max_bytes = len;
        /* the engine raises a budget below its floor to it (gossip_config_t) */
        size_t budget = self->config.max_message_bytes > GOSSIP_MIN_MESSAGE_BYTES
                            ? self->config.max_message_bytes
                            : GOSSIP_MIN_MESSAGE_BYTES;
        if (len > budget) {
            self->stats.msgs_over_budget++;
            s_violation(self, "budget", "node %d sent a %zu-byte message; its budget is %zu",
                        node->index, len, budget);
        }
        int to = s_route(self, peer);
        if (to < 0 || to == node->index) {
            self->stats.msgs_undeliverable++;
            free(buf);
            continue;
        }
        if (self->faults && prop_below(&self->rng, 1000) < self->config.loss_permille) {
            self->stats.msgs_lost++;
            free(buf);
            continue;
        }
        int copies = 1;
        if (self->faults && prop_below(&self->rng, 1000) < self->config.dup_permille) {
            self->stats.msgs_dup++;
            copies = 2;
        }
        for (int c = 0; c < copies; c++) {
            uint64_t delay = 0;
            if (!self->rounds) {
                delay = 1 + prop_below(&self->rng, self->config.delay_max_ms);
                if (prop_below(&self->rng, 1000) < self->config.tail_permille)
                    delay += prop_below(&self->rng, 20 * self->config.delay_max_ms);
            }
            uint8_t *copy = buf;
            if (c == 1) {
                copy = malloc(len ? len : 1);
                assert_non_null(copy);
                memcpy(copy, buf, len);
            }
            s_schedule(self, (s_event_t){.at = self->now + delay,
                                         .kind = EV_DELIVER,
                                         .node = to,
                                         .from_node = node->index,
                                         .from = node->id,
                                         .to = peer,
                                         .buf = copy,
                                         .len = len});
        }
    }
}

static void s_deliver(sim_t *self, s_event_t *ev)
{
    s_node_t *to = &self->nodes[ev->node];
    if (!to->up || to->id != ev->to) {
        self->stats.msgs_undeliverable++;
    } else if (self->nodes[ev->from_node].group != to->group) {
        self->stats.msgs_partitioned++;
    } else {
        self->stats.msgs_delivered++;
        self->trace = s_mix(s_mix(s_mix(self->trace, self->now), ev->from ^ ev->to), ev->len);
        int rc =
            gossip_engine_receive(to->engine, ev->from, ev->buf, ev->len, s_local_now(self, to));
        /* Unknown senders (a joiner's digest before its card arrived) and LEFT ones are
         * legitimately dropped; nothing else is refused on a network that never corrupts. */
        if (rc != 0 && rc != ENGRAM_ENOTFOUND && rc != ENGRAM_EUNAVAILABLE) {
            const gossip_stats_t *st = gossip_engine_stats(to->engine);
            s_violation(self, "message-refused",
                        "node %d (%016" PRIx64 ") refused a message of %zu bytes from %016" PRIx64
                        ": %s (the network never corrupts one; so far %" PRIu64
                        " undecodable, %" PRIu64 " bad chunks, %" PRIu64 " bad cards, %" PRIu64
                        " bad statements, %" PRIu64 " refused by the store)",
                        to->index, to->id, ev->len, ev->from, engram_strerror(rc), st->bad_decode,
                        st->bad_chunk, st->bad_card, st->bad_leave, st->bad_apply);
        }
        s_flush(self, to);
    }
    free(ev->buf);
    ev->buf = NULL;
}

/*  A sync point: the store is durable as it is now; the node's operations are acknowledged. */
static void s_sync(sim_t *self, s_node_t *node)
{
    self->stats.syncs++;
    s_snapshot(node);
    for (size_t i = 0; i < self->nops; i++) {
        s_op_t *op = &self->ops[i];
        if (op->node == node->index && op->dot.node == node->id && op->state == OP_PENDING)
            op->state = OP_ACKED;
    }
    s_rejoin(self, node);
}

static void s_crash(sim_t *self, s_node_t *node, bool lossy)
{
    s_engine_stop(self, node);
    node->incarnation++;
    node->crash_ms = self->now;
    node->detected = false;
    self->stats.crashes++;
    if (!lossy)
        return;
    /* The unsynced state is gone: back to the snapshot, under a new id. */
    self->stats.crashes_lossy++;
    uint64_t old = node->id;
    node->id = s_new_id(self);
    for (int s = 0; s < self->config.scopes; s++) {
        crdt_scope_destroy(&node->scopes[s]);
        if (node->snaps[s]) {
            node->scopes[s] = crdt_scope_dup(node->snaps[s], node->id);
            assert_non_null(node->scopes[s]);
        }
    }
    for (size_t i = 0; i < self->nops; i++) {
        s_op_t *op = &self->ops[i];
        if (op->dot.node == old && op->state == OP_PENDING)
            op->state = OP_LOST;
    }
    node->old_id = old;
    s_index_ids(self);
    if (self->rounds) {
        for (int i = 0; i < self->config.nodes; i++) {
            if (self->nodes[i].engine) {
                gossip_engine_remove_peer(self->nodes[i].engine, old);
                gossip_engine_add_peer(self->nodes[i].engine, node->id);
            }
        }
    }
}

/*  Decommissions a random live node for good, at a random live node (or itself): it keeps
 *  running, takes no more operations, and its operations count as lost from now on. */
static void s_decommission(sim_t *self)
{
    int live = 0;
    for (int i = 0; i < self->config.nodes; i++)
        live += !self->nodes[i].retired;
    int pick = -1, count = 0;
    for (int i = 0; i < self->config.nodes; i++)
        if (self->nodes[i].up && !self->nodes[i].retired &&
            prop_below(&self->rng, (uint64_t)++count) == 0)
            pick = i;
    if (live < 3 || pick < 0)
        return;
    s_node_t *victim = &self->nodes[pick];
    victim->retired = true;
    self->stats.decommissions++;
    for (size_t i = 0; i < self->nops; i++)
        if (self->ops[i].node == pick && self->ops[i].state != OP_LOST)
            self->ops[i].state = OP_LOST;
    s_node_t *admin = victim;
    if (prop_below(&self->rng, 4) != 0) {
        int other = -1;
        count = 0;
        for (int i = 0; i < self->config.nodes; i++)
            if (self->nodes[i].up && !self->nodes[i].retired &&
                prop_below(&self->rng, (uint64_t)++count) == 0)
                other = i;
        if (other >= 0)
            admin = &self->nodes[other];
    }
    char stmt[LEAVE_BYTES + 1];
    s_leave_stmt(victim->id, stmt);
    if (gossip_engine_leave(admin->engine, victim->id, (const uint8_t *)stmt, LEAVE_BYTES) != 0)
        s_violation(self, "membership", "node %d refused to decommission node %d", admin->index,
                    victim->index);
    s_remember_left(self, victim->id);
    s_flush(self, admin);
}

static void s_restart(sim_t *self, s_node_t *node)
{
    s_engine_start(self, node);
    if (!self->rounds) {
        s_schedule_node(self, EV_TICK, node, 1 + prop_below(&self->rng, self->config.tick_ms));
        s_schedule_node(self, EV_SYNC, node, s_gap(self, self->config.sync_every_ms));
    }
}

/*  --- the workload ------------------------------------------------------------------ */

static world_kind_t s_random_kind(sim_t *self)
{
    return (world_kind_t)prop_below(&self->rng, OP_KINDS);
}

static void s_random_key(sim_t *self, const char *prefix, char *key)
{
    if (prop_chance(&self->rng, 5))
        strcpy(key, "shared");
    else
        snprintf(key, 16, "%s%d", prefix,
                 (int)prop_below(&self->rng, (uint64_t)self->config.nkeys));
}

static size_t s_random_value(sim_t *self, size_t op_index, int node)
{
    size_t len = 8 + prop_below(&self->rng, self->config.value_max - 7);
    int head = snprintf(self->value, 32, "v%zu@%d:", op_index, node);
    for (size_t i = (size_t)head; i < len; i++)
        self->value[i] = (char)('a' + (op_index + i * 7) % 26);
    return len > (size_t)head ? len : (size_t)head;
}

/*  One random operation at node, handed to its engine as gossip_engine_local. */
static void s_operate(sim_t *self, s_node_t *node)
{
    int s = (int)prop_below(&self->rng, (uint64_t)self->config.scopes);
    if (!node->scopes[s]) {
        node->scopes[s] = crdt_scope_new(node->id);
        assert_non_null(node->scopes[s]);
    }
    crdt_scope_t *x = node->scopes[s];
    s_op_t op = {.kind = s_random_kind(self), .scope = s, .node = node->index};
    static const char *const prefixes[] = {"reg", "set", "set", "ctr", "log", "any"};
    if (op.kind == OP_FORGET) {
        static const char *const types[] = {"reg", "set", "ctr", "log"};
        s_random_key(self, types[prop_below(&self->rng, 4)], op.key);
    } else {
        s_random_key(self, prefixes[op.kind], op.key);
    }
    snprintf(op.elem, sizeof op.elem, "e%d", (int)prop_below(&self->rng, 5));
    int64_t amount = (int64_t)prop_below(&self->rng, 21) - 5;
    uint64_t hlc = crdt_hlc_now(&node->hlc, s_local_now(self, node));
    size_t len = s_random_value(self, self->nops, node->index);

    if (!crdt_ctx_is_vv(crdt_scope_ctx(x)))
        s_violation(self, "causal-order",
                    "node %d scope %s: context is not a version vector before a write", node->index,
                    s_scope_names[s]);
    op.past = crdt_ctx_dup(crdt_scope_ctx(x));
    assert_non_null(op.past);
    int rc = ENGRAM_EINVAL;
    switch (op.kind) {
    case OP_REG_WRITE:
        rc = crdt_mvreg_write(x, op.key, hlc, self->value, len, &op.delta);
        break;
    case OP_SET_ADD:
        rc = crdt_awset_add(x, op.key, op.elem, self->value, len, &op.delta);
        break;
    case OP_SET_REMOVE:
        rc = crdt_awset_remove(x, op.key, op.elem, &op.delta);
        break;
    case OP_COUNTER_ADD:
        rc = crdt_counter_add(x, op.key, op.elem, amount, &op.delta); /* elem: contributor */
        break;
    case OP_LOG_APPEND:
        rc = crdt_log_append(x, op.key, hlc, self->value, len, &op.delta);
        break;
    case OP_FORGET:
        rc = crdt_scope_forget(x, op.key, &op.delta);
        break;
    case OP_KINDS:
        break;
    }
    if (rc != 0) {
        if (rc != ENGRAM_ENOTFOUND && rc != ENGRAM_ETYPE)
            s_violation(self, "local-op", "node %d: a local operation failed: %s", node->index,
                        engram_strerror(rc));
        self->stats.ops_refused++;
        crdt_ctx_destroy(&op.past);
        return;
    }
    op.dot = (crdt_dot_t){node->id, crdt_ctx_max(op.past, node->id) + 1};
    if (!crdt_ctx_contains(crdt_scope_ctx(x), op.dot) || crdt_ctx_contains(op.past, op.dot))
        s_violation(self, "local-op",
                    "node %d: the operation did not take dot (%016" PRIx64 ", %" PRIu64 ")",
                    node->index, op.dot.node, op.dot.n);
    if (op.kind == OP_COUNTER_ADD)
        assert_int_equal(crdt_counter_value(op.delta, op.key, &op.total), 0);

    rc = gossip_engine_local(node->engine, s_scope_names[s], op.delta, op.past,
                             self->nops % 4 == 0); /* a quarter waits for acks */
    if (rc != 0)
        s_violation(self, "local-op", "node %d: gossip_engine_local failed: %s", node->index,
                    engram_strerror(rc));
    if (self->nops == self->ops_cap) {
        self->ops_cap = self->ops_cap ? self->ops_cap * 2 : 256;
        self->ops = realloc(self->ops, self->ops_cap * sizeof *self->ops);
        assert_non_null(self->ops);
    }
    self->ops[self->nops++] = op;
    self->stats.ops++;
    s_flush(self, node);
}

/*  A random node that is up and not decommissioned, or -1. */
static int s_random_up(sim_t *self)
{
    int up = 0, pick = -1;
    for (int i = 0; i < self->config.nodes; i++)
        if (self->nodes[i].up && !self->nodes[i].retired &&
            prop_below(&self->rng, (uint64_t)++up) == 0)
            pick = i;
    return pick;
}

static void s_partition(sim_t *self)
{
    int groups = 2 + (int)prop_below(&self->rng, 2);
    for (int i = 0; i < self->config.nodes; i++)
        self->nodes[i].group = 1 + (int)prop_below(&self->rng, (uint64_t)groups);
    self->stats.partitions++;
    uint64_t lasts = 1000 + prop_below(&self->rng, self->config.partition_max_ms);
    s_schedule(
        self,
        (s_event_t){.at = self->now + lasts, .kind = EV_HEAL, .incarnation = ++self->partition});
}

static void s_heal(sim_t *self)
{
    for (int i = 0; i < self->config.nodes; i++)
        self->nodes[i].group = 0;
}

/*  --- running ----------------------------------------------------------------------- */

static void s_handle(sim_t *self, s_event_t *ev)
{
    s_node_t *node = ev->kind <= EV_RESTART ? &self->nodes[ev->node] : NULL;
    switch (ev->kind) {
    case EV_DELIVER:
        s_deliver(self, ev);
        break;
    case EV_TICK:
        if (!node->up || node->incarnation != ev->incarnation)
            break;
        gossip_engine_tick(node->engine, s_local_now(self, node));
        s_flush(self, node);
        s_schedule_node(self, EV_TICK, node,
                        self->config.tick_ms * 3 / 4 +
                            prop_below(&self->rng, self->config.tick_ms / 2 + 1));
        break;
    case EV_SYNC:
        if (!node->up || node->incarnation != ev->incarnation)
            break;
        s_sync(self, node);
        s_schedule_node(self, EV_SYNC, node, s_gap(self, self->config.sync_every_ms));
        break;
    case EV_RESTART:
        if (!node->up && node->incarnation == ev->incarnation)
            s_restart(self, node);
        break;
    case EV_OP:
        if (!self->faults)
            break;
        {
            int pick = s_random_up(self);
            if (pick >= 0)
                s_operate(self, &self->nodes[pick]);
        }
        s_schedule(self, (s_event_t){.at = self->now + s_gap(self, self->config.op_every_ms),
                                     .kind = EV_OP});
        break;
    case EV_CRASH:
        if (!self->faults)
            break;
        {
            int pick = s_random_up(self);
            if (pick >= 0) {
                s_node_t *victim = &self->nodes[pick];
                s_crash(self, victim, prop_below(&self->rng, 100) < self->config.lossy_crash_pct);
                s_schedule_node(self, EV_RESTART, victim,
                                200 + prop_below(&self->rng, self->config.down_max_ms));
            }
        }
        s_schedule(self, (s_event_t){.at = self->now + s_gap(self, self->config.crash_every_ms),
                                     .kind = EV_CRASH});
        break;
    case EV_PARTITION:
        if (!self->faults)
            break;
        s_partition(self);
        s_schedule(self, (s_event_t){.at = self->now + s_gap(self, self->config.partition_every_ms),
                                     .kind = EV_PARTITION});
        break;
    case EV_HEAL:
        if (ev->incarnation == self->partition) /* not healed and split again since */
            s_heal(self);
        break;
    case EV_DECOMMISSION:
        if (self->faults)
            s_decommission(self);
        break;
    }
}

/*  Runs every event up to and including simulated ms `until`. */
static void s_run_until(sim_t *self, uint64_t until)
{
    while (self->nheap && self->heap[0].at <= until) {
        s_event_t ev = s_pop(self);
        self->now = ev.at;
        s_handle(self, &ev);
    }
    self->now = until;
}

void sim_config_quiet(sim_config_t *config, int nodes)
{
    *config = (sim_config_t){
        .nodes = nodes,
        .scopes = 1,
        .rounds = true,
        .fanout = 3,
        .max_message_bytes = 64 * 1024,
        .fault_ms = 0,
        .quiesce_ms = 300000,
        .tick_ms = 100,
        .op_every_ms = 100,
        .sync_every_ms = 1000,
        .nkeys = 3,
        .value_max = 24,
        .delay_max_ms = 1,
    };
}

void sim_config_random(sim_config_t *config, uint64_t seed)
{
    prop_rng_t rng = {seed ^ UINT64_C(0x5eed5eed5eed5eed)};
    prop_next(&rng);
    *config = (sim_config_t){
        .nodes = 5 + (int)prop_below(&rng, 16),
        .scopes = 1 + (int)prop_below(&rng, 4),
        .lazy_scopes = prop_chance(&rng, 50),
        .fanout = 1 + (unsigned)prop_below(&rng, 3),
        .max_message_bytes = prop_chance(&rng, 70) ? 64 * 1024 : 512 + prop_below(&rng, 4096),
        .fault_ms = 30000 + 1000 * prop_below(&rng, 91),
        .quiesce_ms = 300000,
        .tick_ms = 100,
        .op_every_ms = 40 + prop_below(&rng, 160),
        .sync_every_ms = 300 + prop_below(&rng, 4000),
        .nkeys = 2 + (int)prop_below(&rng, 3),
        .value_max = prop_chance(&rng, 10) ? 3000 : 32,
        .loss_permille = prop_chance(&rng, 20) ? 0 : (unsigned)prop_below(&rng, 201),
        .dup_permille = prop_chance(&rng, 30) ? 0 : (unsigned)prop_below(&rng, 101),
        .delay_max_ms = 2 + prop_below(&rng, 60),
        .tail_permille = (unsigned)prop_below(&rng, 60),
        .partition_every_ms = prop_chance(&rng, 75) ? 4000 + prop_below(&rng, 16000) : 0,
        .partition_max_ms = 2000 + prop_below(&rng, 15000),
        .crash_every_ms = prop_chance(&rng, 75) ? 3000 + prop_below(&rng, 12000) : 0,
        .down_max_ms = 1000 + prop_below(&rng, 15000),
        .lossy_crash_pct = (unsigned)(50 * prop_below(&rng, 3)),
        /* at most 30 s either way: two clocks differ by at most the default drift allowed */
        .skew_max_ms = prop_chance(&rng, 20)   ? 0
                       : prop_chance(&rng, 80) ? (int64_t)prop_below(&rng, 5000)
                                               : ENGRAM_DEFAULT_MAX_CLOCK_DRIFT_MS / 2,
    };
    config->decommission = prop_chance(&rng, 30);
}

sim_t *sim_new(const sim_config_t *config, uint64_t seed)
{
    assert_true(config->nodes >= 2);
    assert_true(config->scopes >= 1 && config->scopes <= SIM_MAX_SCOPES);
    assert_true(config->value_max >= 8 && config->tick_ms >= 4);
    sim_t *self = calloc(1, sizeof *self);
    assert_non_null(self);
    self->config = *config;
    self->seed = seed;
    self->rng = (prop_rng_t){seed};
    self->rounds = config->rounds;
    self->nodes = calloc((size_t)config->nodes, sizeof *self->nodes);
    self->ids = calloc((size_t)config->nodes, sizeof *self->ids);
    self->value = malloc(config->value_max + 64);
    self->empty = crdt_scope_new(0);
    assert_true(self->nodes && self->ids && self->value && self->empty);
    self->stats.runs = 1;
    self->stats.nodes = (uint64_t)config->nodes;

    for (int i = 0; i < config->nodes; i++) {
        s_node_t *node = &self->nodes[i];
        node->sim = self;
        node->index = i;
        node->id = s_new_id(self);
        node->seed_index = i ? (int)prop_below(&self->rng, (uint64_t)i)
                             : 1 + (int)prop_below(&self->rng, (uint64_t)config->nodes - 1);
        if (config->skew_max_ms)
            node->skew_ms = (int64_t)prop_below(&self->rng, 2 * (uint64_t)config->skew_max_ms + 1) -
                            config->skew_max_ms;
        for (int s = 0; s < config->scopes && !config->lazy_scopes; s++) {
            node->scopes[s] = crdt_scope_new(node->id);
            assert_non_null(node->scopes[s]);
        }
        s_snapshot(node);
    }
    s_index_ids(self);
    for (int i = 0; i < config->nodes; i++)
        s_restart(self, &self->nodes[i]);
    return self;
}

void sim_destroy(sim_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sim_t *self = *self_p;
    for (int i = 0; i < self->config.nodes; i++) {
        s_node_t *node = &self->nodes[i];
        gossip_engine_destroy(&node->engine);
        for (int s = 0; s < SIM_MAX_SCOPES; s++) {
            crdt_scope_destroy(&node->scopes[s]);
            crdt_scope_destroy(&node->snaps[s]);
        }
    }
    for (size_t i = 0; i < self->nheap; i++)
        free(self->heap[i].buf);
    for (size_t i = 0; i < self->nops; i++) {
        crdt_ctx_destroy(&self->ops[i].past);
        crdt_scope_destroy(&self->ops[i].delta);
    }
    crdt_scope_destroy(&self->empty);
    free(self->heap);
    free(self->ops);
    free(self->nodes);
    free(self->ids);
    free(self->used_ids);
    free(self->left_ids);
    free(self->value);
    free(self);
    *self_p = NULL;
}

void sim_fault_phase(sim_t *self)
{
    const sim_config_t *c = &self->config;
    self->faults = true;
    s_schedule(self, (s_event_t){.at = self->now + s_gap(self, c->op_every_ms), .kind = EV_OP});
    if (c->crash_every_ms)
        s_schedule(self,
                   (s_event_t){.at = self->now + s_gap(self, c->crash_every_ms), .kind = EV_CRASH});
    if (c->partition_every_ms)
        s_schedule(self, (s_event_t){.at = self->now + s_gap(self, c->partition_every_ms),
                                     .kind = EV_PARTITION});
    if (c->decommission)
        s_schedule(self,
                   (s_event_t){.at = self->now + 1 + prop_below(&self->rng, c->fault_ms * 3 / 4),
                               .kind = EV_DECOMMISSION});
    s_run_until(self, self->now + c->fault_ms);
    self->faults = false;
    self->stats.fault_ms += c->fault_ms;
}

static const crdt_scope_t *s_view(const sim_t *self, const s_node_t *node, int s)
{
    return node->scopes[s] ? node->scopes[s] : self->empty;
}

/*  The reference replica: the first node not decommissioned (there are always two). */
static const s_node_t *s_ref(const sim_t *self)
{
    for (int i = 0; i < self->config.nodes; i++)
        if (!self->nodes[i].retired)
            return &self->nodes[i];
    assert_true(false);
    return NULL;
}

/*  True when every live node holds the same context and digest for every scope. */
static bool s_data_agree(const sim_t *self)
{
    for (int s = 0; s < self->config.scopes; s++) {
        const crdt_scope_t *first = s_view(self, s_ref(self), s);
        for (int i = 0; i < self->config.nodes; i++) {
            if (self->nodes[i].retired)
                continue;
            const crdt_scope_t *x = s_view(self, &self->nodes[i], s);
            if (crdt_scope_digest(x) != crdt_scope_digest(first) ||
                !crdt_ctx_equal(crdt_scope_ctx(x), crdt_scope_ctx(first)))
                return false;
        }
    }
    return true;
}

/*  Membership after quiesce: every live node sees every live node ALIVE and every other id it
 *  knows LEFT; every decommissioned node is LEFT in every view, its own included. With report,
 *  each failure is a violation. */
typedef struct {
    const sim_t *sim;
    int live_seen;
    const gossip_member_t *bad; /* the first wrong record */
    gossip_member_t bad_copy;
} s_mcheck_t;

static void s_mvisit(void *arg, const gossip_member_t *m)
{
    s_mcheck_t *c = arg;
    int t = s_route(c->sim, m->id);
    bool live = t >= 0 && !c->sim->nodes[t].retired;
    c->live_seen += live && m->state == GOSSIP_ALIVE;
    if (!c->bad && m->state != (live ? GOSSIP_ALIVE : GOSSIP_LEFT)) {
        c->bad_copy = *m;
        c->bad = &c->bad_copy;
    }
}

static bool s_members_agree(sim_t *self, bool report)
{
    static const char *const names[] = {"ALIVE", "SUSPECT", "DEAD", "LEFT"};
    int live = 0;
    for (int i = 0; i < self->config.nodes; i++)
        live += !self->nodes[i].retired;
    bool ok = true;
    for (int i = 0; i < self->config.nodes && (ok || report); i++) {
        s_node_t *node = &self->nodes[i];
        gossip_member_t m;
        if (node->retired) {
            if (!gossip_engine_member(node->engine, node->id, &m) || m.state != GOSSIP_LEFT) {
                ok = false;
                if (report)
                    s_violation(self, "membership",
                                "decommissioned node %d does not see itself LEFT", i);
            }
            continue;
        }
        s_mcheck_t c = {self, 0, NULL, {0}};
        gossip_engine_each_member(node->engine, s_mvisit, &c);
        if (c.bad || c.live_seen != live) {
            ok = false;
            if (report && c.bad)
                s_violation(self, "membership",
                            "node %d sees %016" PRIx64 " (node %d) %s at incarnation %" PRIu64, i,
                            c.bad->id, s_route(self, c.bad->id), names[c.bad->state & 3],
                            c.bad->incarnation);
            else if (report)
                s_violation(self, "membership", "node %d sees %d of the %d live nodes ALIVE", i,
                            c.live_seen, live);
        }
        for (int j = 0; j < self->config.nodes; j++) {
            if (!self->nodes[j].retired)
                continue;
            if (!gossip_engine_member(node->engine, self->nodes[j].id, &m) ||
                m.state != GOSSIP_LEFT) {
                ok = false;
                if (report)
                    s_violation(self, "membership",
                                "node %d does not see decommissioned node %d LEFT", i, j);
            }
        }
    }
    return ok;
}

/*  The stable cuts after quiesce: every live node knows the cut of every scope it holds (the
 *  decommissioned and retired ids do not hold it back), and every live replica covers it. With
 *  check, failures are violations and the cuts are counted. */
static bool s_cuts_known(sim_t *self, bool check)
{
    for (int i = 0; i < self->config.nodes; i++) {
        s_node_t *node = &self->nodes[i];
        if (node->retired)
            continue;
        for (int s = 0; s < self->config.scopes; s++) {
            if (!node->scopes[s])
                continue;
            crdt_ctx_t *cut = gossip_engine_stable_cut(node->engine, s_scope_names[s]);
            if (!cut) {
                if (check)
                    s_violation(self, "stable-cut", "node %d does not know the cut of scope %s", i,
                                s_scope_names[s]);
                return false;
            }
            for (int j = 0; check && j < self->config.nodes; j++) {
                if (self->nodes[j].retired)
                    continue;
                if (!crdt_ctx_covers(crdt_scope_ctx(s_view(self, &self->nodes[j], s)), cut)) {
                    char a[512];
                    s_ctx_print(a, sizeof a, cut);
                    s_violation(self, "stable-cut",
                                "node %d's cut of scope %s, %s, is not covered by node %d", i,
                                s_scope_names[s], a, j);
                }
            }
            self->stats.cuts_checked += check;
            crdt_ctx_destroy(&cut);
        }
    }
    return true;
}

/*  Quiesce is over when the data, the membership and the stable cuts have settled. */
static bool s_agree(sim_t *self)
{
    return s_data_agree(self) &&
           (self->rounds || (s_members_agree(self, false) && s_cuts_known(self, false)));
}

bool sim_quiesce(sim_t *self, uint64_t *took_ms)
{
    s_heal(self);
    for (int i = 0; i < self->config.nodes; i++)
        if (!self->nodes[i].up)
            s_restart(self, &self->nodes[i]);
    uint64_t start = self->now;
    bool agreed = s_agree(self);
    while (!agreed && self->now - start < self->config.quiesce_ms) {
        s_run_until(self, self->now + AGREE_EVERY_MS);
        agreed = s_agree(self);
    }
    *took_ms = self->now - start;
    self->stats.sim_ms = self->now;
    if (agreed) {
        self->stats.converge_ms_sum += *took_ms;
        if (*took_ms > self->stats.converge_ms_max)
            self->stats.converge_ms_max = *took_ms;
    }
    return agreed;
}

/*  --- checks ------------------------------------------------------------------------- */

static const char *s_kind_name(world_kind_t kind)
{
    static const char *const names[] = {"reg write",   "set add",    "set remove",
                                        "counter add", "log append", "forget"};
    return kind < OP_KINDS ? names[kind] : "?";
}

static const char *s_state_name(s_op_state_t state)
{
    return state == OP_ACKED ? "acknowledged" : state == OP_LOST ? "lost" : "unsynced";
}

/*  Ops of one scope, sorted by key then history order, so that each key's ops are adjacent. */
static const sim_t *s_sort_sim;

static int s_by_key(const void *a, const void *b)
{
    const s_op_t *x = &s_sort_sim->ops[*(const size_t *)a];
    const s_op_t *y = &s_sort_sim->ops[*(const size_t *)b];
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/*  True when surviving op `later` (of one of kinds, same elem if elem, or a forget, or a
 *  counter add of the same replica if same_node) had `a` in its causal past. */
static bool s_superseded(const sim_t *self, const size_t *group, size_t n, const bool *alive,
                         size_t a, unsigned kinds, bool same_elem, bool same_node)
{
    const s_op_t *op = &self->ops[a];
    for (size_t j = 0; j < n; j++) {
        const s_op_t *o = &self->ops[group[j]];
        if (group[j] == a || !alive[group[j]] || !crdt_ctx_contains(o->past, op->dot))
            continue;
        if (o->kind == OP_FORGET)
            return true;
        if (!(kinds & (1u << o->kind)))
            continue;
        if (same_elem && strcmp(o->elem, op->elem) != 0)
            continue;
        if (same_node && o->dot.node != op->dot.node)
            continue;
        return true;
    }
    return false;
}

static int s_dot_cmp(const void *a, const void *b)
{
    const crdt_dot_t *x = a, *y = b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    return x->n < y->n ? -1 : x->n > y->n;
}

/*  Compares the dots of the live ops of one object with the entries the final state shows. */
static void s_compare_dots(sim_t *self, int s, const char *what, const char *key, crdt_dot_t *want,
                           size_t nwant, const crdt_entry_view_t *have, size_t nhave)
{
    crdt_dot_t *got = malloc((nhave ? nhave : 1) * sizeof *got);
    assert_non_null(got);
    for (size_t i = 0; i < nhave; i++)
        got[i] = (crdt_dot_t){have[i].node, have[i].n};
    qsort(want, nwant, sizeof *want, s_dot_cmp);
    qsort(got, nhave, sizeof *got, s_dot_cmp);
    bool same = nwant == nhave;
    for (size_t i = 0; same && i < nwant; i++)
        same = s_dot_cmp(&want[i], &got[i]) == 0;
    if (!same)
        s_violation(self, "type-spec",
                    "scope %s %s '%s': history says %zu live entries, state has %zu",
                    s_scope_names[s], what, key, nwant, nhave);
    free(got);
}

/*  Log order follows cause and effect: every entry an append's node held when it appended
 *  (its `past`) is listed before the append, whatever the nodes' clocks said. This holds only
 *  because every node's clock observes the stamps it receives (s_store_apply). */
static void s_check_log_causal(sim_t *self, int s, const char *key, const size_t *group, size_t n,
                               const bool *alive, const crdt_entry_view_t *entries, size_t nent)
{
    for (size_t i = 0; i < n; i++) {
        const s_op_t *op = &self->ops[group[i]];
        if (op->kind != OP_LOG_APPEND || !alive[group[i]])
            continue;
        size_t at = nent;
        for (size_t k = 0; k < nent && at == nent; k++)
            if (entries[k].node == op->dot.node && entries[k].n == op->dot.n)
                at = k;
        for (size_t k = at + 1; k < nent; k++) {
            if (!crdt_ctx_contains(op->past, (crdt_dot_t){entries[k].node, entries[k].n}))
                continue;
            s_violation(self, "causal-order",
                        "scope %s log '%s': node %d appended (%016" PRIx64 ", %" PRIu64
                        ") at hlc %" PRIu64 " after holding (%016" PRIx64 ", %" PRIu64
                        ") at hlc %" PRIu64 ", yet the log lists it first",
                        s_scope_names[s], key, op->node, op->dot.node, op->dot.n, entries[at].hlc,
                        entries[k].node, entries[k].n, entries[k].hlc);
            self->stats.causal_inversions++;
            break;
        }
    }
}

/*  The per-type checks of one key's ops against the final state. */
static void s_check_key(sim_t *self, int s, const crdt_scope_t *final, const size_t *group,
                        size_t n, const bool *alive)
{
    const char *key = self->ops[group[0]].key;
    crdt_dot_t *want = malloc((n ? n : 1) * sizeof *want);
    assert_non_null(want);

    /* Sets: per element, present iff a surviving add was seen by no surviving add, remove or
     * forget of it. */
    for (size_t i = 0; i < n; i++) {
        const s_op_t *op = &self->ops[group[i]];
        if (op->kind != OP_SET_ADD && op->kind != OP_SET_REMOVE)
            continue;
        bool first = true;
        for (size_t j = 0; j < i && first; j++) {
            const s_op_t *o = &self->ops[group[j]];
            first = !((o->kind == OP_SET_ADD || o->kind == OP_SET_REMOVE) &&
                      strcmp(o->elem, op->elem) == 0);
        }
        if (!first)
            continue;
        bool expect = false;
        for (size_t j = 0; j < n && !expect; j++) {
            const s_op_t *a = &self->ops[group[j]];
            expect = a->kind == OP_SET_ADD && alive[group[j]] && strcmp(a->elem, op->elem) == 0 &&
                     !s_superseded(self, group, n, alive, group[j],
                                   (1u << OP_SET_ADD) | (1u << OP_SET_REMOVE), true, false);
        }
        bool present = crdt_awset_contains(final, key, op->elem);
        if (expect != present)
            s_violation(self, "set-spec", "scope %s set '%s': element '%s' is %s", s_scope_names[s],
                        key, op->elem,
                        present ? "present though every add of it was removed (it came back)"
                                : "absent though an add of it was never removed (add lost)");
    }

    /* Registers: the siblings are the surviving writes no surviving write or forget saw. */
    size_t nwant = 0;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        const s_op_t *op = &self->ops[group[i]];
        if (op->kind != OP_REG_WRITE)
            continue;
        any = true;
        if (alive[group[i]] &&
            !s_superseded(self, group, n, alive, group[i], 1u << OP_REG_WRITE, false, false))
            want[nwant++] = op->dot;
    }
    if (any) {
        crdt_entry_view_t *siblings = NULL;
        size_t nsib = 0;
        int rc = crdt_mvreg_read(final, key, &siblings, &nsib);
        if (rc == ENGRAM_ENOTFOUND)
            nsib = 0;
        s_compare_dots(self, s, "register", key, want, nwant, siblings, nsib);
        free(siblings);
    }

    /* Logs: the surviving appends no surviving forget saw. */
    nwant = 0;
    any = false;
    for (size_t i = 0; i < n; i++) {
        const s_op_t *op = &self->ops[group[i]];
        if (op->kind != OP_LOG_APPEND)
            continue;
        any = true;
        if (alive[group[i]] && !s_superseded(self, group, n, alive, group[i], 0, false, false))
            want[nwant++] = op->dot;
    }
    if (any) {
        crdt_entry_view_t *entries = NULL;
        size_t nent = 0;
        int rc = crdt_log_range(final, key, &entries, &nent);
        if (rc == ENGRAM_ENOTFOUND)
            nent = 0;
        s_compare_dots(self, s, "log", key, want, nwant, entries, nent);
        s_check_log_causal(self, s, key, group, n, alive, entries, nent);
        free(entries);
    }

    /* Counters: the sum of the running totals that no later add of the same replica and
     * contributor and no forget saw. */
    int64_t expect = 0;
    any = false;
    for (size_t i = 0; i < n; i++) {
        const s_op_t *op = &self->ops[group[i]];
        if (op->kind != OP_COUNTER_ADD)
            continue;
        any = true;
        if (alive[group[i]] &&
            !s_superseded(self, group, n, alive, group[i], 1u << OP_COUNTER_ADD, true, true))
            expect += op->total;
    }
    if (any) {
        int64_t value = 0;
        int rc = crdt_counter_value(final, key, &value);
        if (rc == ENGRAM_ENOTFOUND)
            value = 0;
        if (value != expect)
            s_violation(self, "type-spec",
                        "scope %s counter '%s': value %" PRId64 ", history says %" PRId64,
                        s_scope_names[s], key, value, expect);
    }
    free(want);
}

static void s_check_scope(sim_t *self, int s, bool *alive, size_t *order)
{
    const crdt_scope_t *final = s_view(self, s_ref(self), s);
    const crdt_ctx_t *ctx = crdt_scope_ctx(final);
    const char *name = s_scope_names[s];

    /* Convergence, in full. */
    for (int i = 0; i < self->config.nodes; i++) {
        if (self->nodes[i].retired)
            continue;
        const crdt_scope_t *x = s_view(self, &self->nodes[i], s);
        if (!crdt_scope_equal(x, final) || crdt_scope_digest(x) != crdt_scope_digest(final)) {
            char a[512], b[512];
            s_ctx_print(a, sizeof a, crdt_scope_ctx(final));
            s_ctx_print(b, sizeof b, crdt_scope_ctx(x));
            s_violation(self, "diverged", "scope %s: node 0 and node %d differ: %s vs %s", name, i,
                        a, b);
        }
    }
    if (crdt_scope_digest(final) != crdt_scope_digest_recompute(final))
        s_violation(self, "digest", "scope %s: incremental digest differs from recomputed", name);
    if (!crdt_ctx_is_vv(ctx))
        s_violation(self, "causal-order", "scope %s: final context is not a version vector", name);

    /* Which ops survived; none that its origin still held may be missing. */
    crdt_scope_t *joined = crdt_scope_new(0);
    crdt_scope_t *acked = crdt_scope_dup(final, 0);
    assert_true(joined && acked);
    uint64_t survivors = 0;
    size_t n = 0;
    for (size_t i = 0; i < self->nops; i++) {
        s_op_t *op = &self->ops[i];
        alive[i] = false;
        if (op->scope != s)
            continue;
        order[n++] = i;
        alive[i] = crdt_ctx_contains(ctx, op->dot);
        if (!alive[i] && op->state != OP_LOST)
            s_violation(self, "write-lost",
                        "scope %s: %s %s of node %d, dot (%016" PRIx64 ", %" PRIu64
                        "), key '%s', is missing from the final state",
                        name, s_state_name(op->state), s_kind_name(op->kind), op->node,
                        op->dot.node, op->dot.n, op->key);
        if (op->state == OP_ACKED && crdt_scope_join(acked, op->delta) != 0)
            s_violation(self, "write-lost",
                        "scope %s: an acknowledged delta does not join the final state", name);
        if (!alive[i])
            continue;
        survivors++;
        self->stats.ops_lost_survived += op->state == OP_LOST;
        int rc = crdt_scope_join(joined, op->delta);
        if (rc != 0)
            s_violation(self, "join-refused", "scope %s: the surviving deltas do not join: %s",
                        name, engram_strerror(rc));
    }
    /* final ⊒ every acknowledged delta: joining them all changes nothing. */
    if (!crdt_scope_equal(acked, final)) {
        for (size_t k = 0; k < n; k++) {
            s_op_t *op = &self->ops[order[k]];
            if (op->state != OP_ACKED)
                continue;
            crdt_scope_t *x = crdt_scope_dup(final, 0);
            assert_non_null(x);
            if (crdt_scope_join(x, op->delta) != 0 || !crdt_scope_equal(x, final))
                s_violation(self, "write-lost",
                            "scope %s: acknowledged %s of node %d, dot (%016" PRIx64 ", %" PRIu64
                            "), key '%s', is not contained in the final state",
                            name, s_kind_name(op->kind), op->node, op->dot.node, op->dot.n,
                            op->key);
            crdt_scope_destroy(&x);
        }
    }
    if (!crdt_scope_equal(joined, final))
        s_violation(self, "state",
                    "scope %s: the final state is not the join of the surviving deltas", name);
    if (crdt_ctx_count(ctx) != survivors)
        s_violation(self, "state",
                    "scope %s: the final context holds %" PRIu64 " dots, %" PRIu64
                    " operations survived",
                    name, crdt_ctx_count(ctx), survivors);
    crdt_scope_destroy(&joined);
    crdt_scope_destroy(&acked);

    /* Per type, key by key. */
    s_sort_sim = self;
    qsort(order, n, sizeof *order, s_by_key);
    for (size_t lo = 0; lo < n;) {
        size_t hi = lo + 1;
        while (hi < n && strcmp(self->ops[order[hi]].key, self->ops[order[lo]].key) == 0)
            hi++;
        s_check_key(self, s, final, order + lo, hi - lo, alive);
        lo = hi;
    }
}

int sim_check(sim_t *self)
{
    int before = self->violations;
    bool *alive = calloc(self->nops + 1, sizeof *alive);
    size_t *order = calloc(self->nops + 1, sizeof *order);
    assert_true(alive && order);
    for (int s = 0; s < self->config.scopes; s++)
        s_check_scope(self, s, alive, order);
    if (!self->rounds) {
        s_members_agree(self, true);
        s_cuts_known(self, true);
    }
    for (size_t i = 0; i < self->nops; i++) {
        self->stats.ops_acked += self->ops[i].state == OP_ACKED;
        self->stats.ops_lost += self->ops[i].state == OP_LOST;
    }
    for (int s = 0; s < self->config.scopes; s++)
        self->trace = s_mix(self->trace, crdt_scope_digest(s_view(self, s_ref(self), s)));
    free(alive);
    free(order);
    return self->violations - before;
}

/*  Entries of a scope, for the diagnosis of two replicas with equal contexts and different
 *  digests. */
typedef struct {
    crdt_type_id_t type;
    char key[32];
    char elem[16];
    crdt_dot_t dot;
    uint64_t hlc;
    size_t len;
    uint64_t hash;
} s_entry_t;

typedef struct {
    s_entry_t *items;
    size_t n, cap;
} s_entries_t;

static int s_collect(void *arg, crdt_type_id_t type, const char *key,
                     const crdt_entry_view_t *entry)
{
    s_entries_t *e = arg;
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->items = realloc(e->items, e->cap * sizeof *e->items);
        assert_non_null(e->items);
    }
    s_entry_t *x = &e->items[e->n++];
    *x = (s_entry_t){.type = type,
                     .dot = {entry->node, entry->n},
                     .hlc = entry->hlc,
                     .len = entry->len,
                     .hash = UINT64_C(14695981039346656037)};
    snprintf(x->key, sizeof x->key, "%s", key);
    snprintf(x->elem, sizeof x->elem, "%s", entry->elem ? entry->elem : "");
    for (size_t i = 0; i < entry->len; i++)
        x->hash = (x->hash ^ entry->data[i]) * UINT64_C(0x100000001b3);
    return 0;
}

static int s_entry_cmp(const void *a, const void *b)
{
    return s_dot_cmp(&((const s_entry_t *)a)->dot, &((const s_entry_t *)b)->dot);
}

/*  Prints the first entries on which two replicas with equal contexts differ. */
static void s_diff_entries(int s, int i, const crdt_scope_t *a, const crdt_scope_t *b)
{
    s_entries_t ea = {0}, eb = {0};
    crdt_scope_foreach_entry(a, s_collect, &ea);
    crdt_scope_foreach_entry(b, s_collect, &eb);
    qsort(ea.items, ea.n, sizeof *ea.items, s_entry_cmp);
    qsort(eb.items, eb.n, sizeof *eb.items, s_entry_cmp);
    size_t x = 0, y = 0;
    int shown = 0;
    while ((x < ea.n || y < eb.n) && shown < 4) {
        int c = x == ea.n ? 1 : y == eb.n ? -1 : s_entry_cmp(&ea.items[x], &eb.items[y]);
        const s_entry_t *p = c <= 0 ? &ea.items[x] : &eb.items[y];
        bool same = c == 0 && p->type == eb.items[y].type && strcmp(p->key, eb.items[y].key) == 0 &&
                    strcmp(p->elem, eb.items[y].elem) == 0 && p->hlc == eb.items[y].hlc &&
                    p->len == eb.items[y].len && p->hash == eb.items[y].hash;
        if (!same) {
            shown++;
            fprintf(stderr,
                    "    scope %s dot (%016" PRIx64 ", %" PRIu64 "): node 0 %s type %d key '%s'"
                    " elem '%s' %zu bytes hash %016" PRIx64 "; node %d %s",
                    s_scope_names[s], p->dot.node, p->dot.n, c <= 0 ? "has" : "lacks", p->type,
                    p->key, p->elem, p->len, p->hash, i, c >= 0 ? "has" : "lacks");
            if (c == 0)
                fprintf(stderr, " type %d key '%s' elem '%s' %zu bytes hash %016" PRIx64,
                        eb.items[y].type, eb.items[y].key, eb.items[y].elem, eb.items[y].len,
                        eb.items[y].hash);
            fprintf(stderr, "\n");
        }
        x += c <= 0;
        y += c >= 0;
    }
    free(ea.items);
    free(eb.items);
}

int sim_run(sim_t *self)
{
    sim_fault_phase(self);
    uint64_t took = 0;
    if (!sim_quiesce(self, &took)) {
        char a[512], b[512];
        for (int s = 0; s < self->config.scopes; s++) {
            const crdt_scope_t *first = s_view(self, s_ref(self), s);
            for (int i = 0; i < self->config.nodes; i++) {
                if (self->nodes[i].retired)
                    continue;
                const crdt_scope_t *x = s_view(self, &self->nodes[i], s);
                if (crdt_ctx_equal(crdt_scope_ctx(x), crdt_scope_ctx(first)) &&
                    crdt_scope_digest(x) == crdt_scope_digest(first))
                    continue;
                s_ctx_print(a, sizeof a, crdt_scope_ctx(first));
                s_ctx_print(b, sizeof b, crdt_scope_ctx(x));
                s_violation(self, "no-convergence",
                            "no convergence %" PRIu64 " ms after heal: scope %s node 0 %s "
                            "vs node %d %s",
                            took, s_scope_names[s], a, i, b);
                if (crdt_ctx_equal(crdt_scope_ctx(x), crdt_scope_ctx(first)))
                    s_diff_entries(s, i, first, x);
                break;
            }
        }
        if (!self->rounds) {
            int before = self->violations;
            if (s_members_agree(self, true))
                s_cuts_known(self, true);
            if (self->violations == before)
                s_violation(self, "no-convergence", "quiesce did not settle");
        }
        return self->violations ? self->violations : 1;
    }
    sim_check(self);
    return self->violations;
}

/*  --- rounds ----------------------------------------------------------------------- */

void sim_write(sim_t *self, int node, int scope, crdt_dot_t *dot)
{
    s_node_t *n = &self->nodes[node];
    if (!n->scopes[scope]) {
        n->scopes[scope] = crdt_scope_new(n->id);
        assert_non_null(n->scopes[scope]);
    }
    crdt_scope_t *x = n->scopes[scope];
    crdt_ctx_t *deps = crdt_ctx_dup(crdt_scope_ctx(x));
    crdt_scope_t *delta = NULL;
    uint64_t hlc = crdt_hlc_now(&n->hlc, s_local_now(self, n));
    assert_int_equal(crdt_mvreg_write(x, "reg0", hlc, "hello", 5, &delta), 0);
    *dot = (crdt_dot_t){n->id, crdt_ctx_max(deps, n->id) + 1};
    assert_int_equal(gossip_engine_local(n->engine, s_scope_names[scope], delta, deps, false), 0);
    crdt_scope_destroy(&delta);
    crdt_ctx_destroy(&deps);
    s_flush(self, n);
    s_run_until(self, self->now);
}

void sim_round(sim_t *self)
{
    int count = self->config.nodes;
    int *order = malloc((size_t)count * sizeof *order);
    assert_non_null(order);
    for (int i = 0; i < count; i++)
        order[i] = i;
    prop_shuffle(&self->rng, order, (size_t)count, sizeof *order);
    self->now += self->config.tick_ms;
    for (int i = 0; i < count; i++) {
        s_node_t *node = &self->nodes[order[i]];
        if (!node->up)
            continue;
        gossip_engine_tick(node->engine, s_local_now(self, node));
        s_flush(self, node);
    }
    free(order);
    s_run_until(self, self->now);
    self->stats.sim_ms = self->now;
}

int sim_holders(const sim_t *self, int scope, crdt_dot_t dot)
{
    int holders = 0;
    for (int i = 0; i < self->config.nodes; i++)
        holders += self->nodes[i].scopes[scope] &&
                   crdt_ctx_contains(crdt_scope_ctx(self->nodes[i].scopes[scope]), dot);
    return holders;
}

/*  --- accessors ------------------------------------------------------------------- */

int sim_violations(const sim_t *self)
{
    return self->violations;
}

uint64_t sim_now(const sim_t *self)
{
    return self->now;
}

uint64_t sim_trace(const sim_t *self)
{
    return self->trace;
}

size_t sim_digest_bytes(const sim_t *self)
{
    size_t total = 0;
    for (int s = 0; s < self->config.scopes; s++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(crdt_ctx_encode(crdt_scope_ctx(s_view(self, s_ref(self), s)), &buf, &len),
                         0);
        free(buf);
        total += len + strlen(s_scope_names[s]);
    }
    return total;
}

void sim_stats_add(const sim_t *self, sim_stats_t *total)
{
    const sim_stats_t *s = &self->stats;
    gossip_stats_t engine = s->engine;
    for (int i = 0; i < self->config.nodes; i++)
        if (self->nodes[i].engine)
            s_engine_stats_add(&engine, gossip_engine_stats(self->nodes[i].engine));
    total->runs += s->runs;
    total->nodes += s->nodes;
    total->sim_ms += s->sim_ms;
    total->fault_ms += s->fault_ms;
    total->ops += s->ops;
    total->ops_acked += s->ops_acked;
    total->ops_lost += s->ops_lost;
    total->ops_lost_survived += s->ops_lost_survived;
    total->ops_refused += s->ops_refused;
    total->clock_refusals += s->clock_refusals;
    total->causal_inversions += s->causal_inversions;
    total->msgs_sent += s->msgs_sent;
    total->msgs_lost += s->msgs_lost;
    total->msgs_dup += s->msgs_dup;
    total->msgs_partitioned += s->msgs_partitioned;
    total->msgs_undeliverable += s->msgs_undeliverable;
    total->msgs_delivered += s->msgs_delivered;
    total->bytes_sent += s->bytes_sent;
    total->msgs_over_budget += s->msgs_over_budget;
    if (s->msg_max_bytes > total->msg_max_bytes)
        total->msg_max_bytes = s->msg_max_bytes;
    total->partitions += s->partitions;
    total->crashes += s->crashes;
    total->crashes_lossy += s->crashes_lossy;
    total->syncs += s->syncs;
    total->applies += s->applies;
    total->converge_ms_sum += s->converge_ms_sum;
    if (s->converge_ms_max > total->converge_ms_max)
        total->converge_ms_max = s->converge_ms_max;
    total->violations += s->violations;
    total->suspicions_false += s->suspicions_false;
    total->suspicions_false_cut += s->suspicions_false_cut;
    total->deaths_false += s->deaths_false;
    total->deaths_detected += s->deaths_detected;
    total->detect_ms_sum += s->detect_ms_sum;
    if (s->detect_ms_max > total->detect_ms_max)
        total->detect_ms_max = s->detect_ms_max;
    total->decommissions += s->decommissions;
    total->cuts_checked += s->cuts_checked;
    s_engine_stats_add(&total->engine, &engine);
}

void sim_stats_print(const char *title, const sim_stats_t *t, double wall_s)
{
    const gossip_stats_t *e = &t->engine;
    printf("%s: %" PRIu64 " seeds, %.1f nodes on average, %.2f simulated hours (%.2f h of "
           "faults), %.1f s wall\n",
           title, t->runs, t->runs ? (double)t->nodes / (double)t->runs : 0.0,
           (double)t->sim_ms / 3.6e6, (double)t->fault_ms / 3.6e6, wall_s);
    printf("  ops %" PRIu64 " (%" PRIu64 " acknowledged, %" PRIu64
           " lost in crashes of which %" PRIu64 " survived at a peer; %" PRIu64
           " refused by the kernel as they should be)\n",
           t->ops, t->ops_acked, t->ops_lost, t->ops_lost_survived, t->ops_refused);
    printf("  clocks: %" PRIu64 " deltas refused for a stamp past the drift allowed, %" PRIu64
           " appends listed before what their node held\n",
           t->clock_refusals, t->causal_inversions);
    printf("  messages %" PRIu64 " sent (%.1f MB, largest %" PRIu64 " B, %" PRIu64
           " over the budget), %" PRIu64 " delivered, %" PRIu64 " lost, %" PRIu64
           " duplicated, %" PRIu64 " cut by partitions, %" PRIu64 " to down or retired nodes\n",
           t->msgs_sent, (double)t->bytes_sent / 1e6, t->msg_max_bytes, t->msgs_over_budget,
           t->msgs_delivered, t->msgs_lost, t->msgs_dup, t->msgs_partitioned,
           t->msgs_undeliverable);
    printf("  faults: %" PRIu64 " partitions, %" PRIu64 " crashes (%" PRIu64
           " losing unsynced state, %" PRIu64 " keeping it), %" PRIu64 " sync points\n",
           t->partitions, t->crashes, t->crashes_lossy, t->crashes - t->crashes_lossy, t->syncs);
    printf("  converged after heal in %.0f ms on average, %" PRIu64 " ms at most; %" PRIu64
           " store applies; %" PRIu64 " violations\n",
           t->runs ? (double)t->converge_ms_sum / (double)t->runs : 0.0, t->converge_ms_max,
           t->applies, t->violations);
    printf("  engines: pushes %" PRIu64 " sent, %" PRIu64 " applied, %" PRIu64
           " held back, %" PRIu64 " redundant; digests %" PRIu64 "; pulls answered %" PRIu64
           ", pull deltas applied %" PRIu64 "; chunks %" PRIu64 " sent, %" PRIu64
           " received; bad messages %" PRIu64 "\n",
           e->pushes_sent, e->pushes_applied, e->pushes_held_back, e->pushes_redundant,
           e->digests_sent, e->pulls_answered, e->pull_deltas_applied, e->chunks_sent,
           e->chunks_received, e->bad_messages);
    printf("  rejected: %" PRIu64 " undecodable, %" PRIu64 " bad chunks, %" PRIu64
           " from unknown senders, %" PRIu64 " from LEFT senders, %" PRIu64 " bad cards, %" PRIu64
           " bad statements, %" PRIu64 " refused by the store; acks %" PRIu64 " sent, %" PRIu64
           " received, %" PRIu64 " debts deferred to a tick; %" PRIu64 " large answers deferred\n",
           e->bad_decode, e->bad_chunk, e->bad_unknown_sender, e->bad_left_sender, e->bad_card,
           e->bad_leave, e->bad_apply, e->acks_sent, e->acks_received, e->acks_deferred,
           e->answers_deferred);
    printf("  membership: pings %" PRIu64 ", ping-reqs %" PRIu64 ", pongs %" PRIu64
           ", nacks %" PRIu64 " (%" PRIu64 " received in time), full exchanges %" PRIu64
           "; %" PRIu64 " suspicions and %" PRIu64 " deaths declared, %" PRIu64
           " refutations; false suspicions %" PRIu64 " (%" PRIu64
           " across a partition), false deaths %" PRIu64 "; crashes detected %" PRIu64
           " of %" PRIu64 ", in %.0f ms on average, %" PRIu64 " ms at most; %" PRIu64
           " decommissions; %" PRIu64 " stable cuts checked\n",
           e->swim.pings, e->swim.ping_reqs, e->swim.pongs, e->swim.nacks, e->swim.nacks_received,
           e->swim.syncs, e->swim.suspects, e->swim.deaths, e->swim.refutes, t->suspicions_false,
           t->suspicions_false_cut, t->deaths_false, t->deaths_detected, t->crashes,
           t->deaths_detected ? (double)t->detect_ms_sum / (double)t->deaths_detected : 0.0,
           t->detect_ms_max, t->decommissions, t->cuts_checked);
    fflush(stdout);
}
