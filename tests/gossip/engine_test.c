/*  Tests of gossip_engine on a tiny hand-driven network of in-memory stores: the canonical use
 *  (a push reaches a peer), a push whose cause is missing is held back and the gap pulled, a
 *  new node pulls whole scopes it never heard of, answers past the message budget travel in
 *  chunks and apply as one unit (also when parts come twice and out of order), and bad input
 *  changes nothing; acks and digests tell what peers hold, and the stable cut follows them and
 *  ignores LEFT members; chunks whose hash is wrong are refused, staging is capped per peer and
 *  large answers are not re-sent on every digest. tests/sim/ runs the same engine under faults
 *  at scale; swim_test.c covers the membership.
 */
#include "gossip_frame.h"
#include "prop.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/awset.h"
#include "crdt/mvreg.h"
#include "engram/error.h"
#include "gossip/engine.h"
#include "proto/gossip.pb-c.h"

#define SCOPES 3

/*  An in-memory store: a few named scopes. */
typedef struct {
    const char *names[SCOPES];
    crdt_scope_t *scopes[SCOPES];
    uint64_t id;
    int applies;
    int refuse; /* not 0: what every apply returns (a bad delta, a volume full, ...) */
} store_t;

static int s_index(store_t *s, const char *scope, bool create)
{
    for (int i = 0; i < SCOPES; i++)
        if (s->names[i] && strcmp(s->names[i], scope) == 0)
            return i;
    for (int i = 0; create && i < SCOPES; i++) {
        if (!s->names[i]) {
            s->names[i] = scope[0] == 'r' ? "run:a" : scope[0] == 't' ? "team:b" : "user:c";
            s->scopes[i] = crdt_scope_new(s->id);
            return i;
        }
    }
    return -1;
}

static void s_each(void *store, void (*fn)(void *arg, const char *scope), void *arg)
{
    store_t *s = store;
    for (int i = 0; i < SCOPES; i++)
        if (s->names[i])
            fn(arg, s->names[i]);
}

static const crdt_ctx_t *s_ctx(void *store, const char *scope)
{
    int i = s_index(store, scope, false);
    return i < 0 ? NULL : crdt_scope_ctx(((store_t *)store)->scopes[i]);
}

static crdt_scope_t *s_delta_since(void *store, const char *scope, const crdt_ctx_t *since)
{
    int i = s_index(store, scope, false);
    return i < 0 ? NULL : crdt_scope_delta_since(((store_t *)store)->scopes[i], since);
}

static int s_apply(void *store, const char *scope, const crdt_scope_t *delta)
{
    store_t *s = store;
    if (s->refuse)
        return s->refuse;
    int i = s_index(s, scope, true);
    if (i < 0)
        return ENGRAM_EINVAL;
    int rc = crdt_scope_join(s->scopes[i], delta);
    s->applies += rc == 0;
    assert_true(crdt_ctx_is_vv(crdt_scope_ctx(s->scopes[i]))); /* causal order kept */
    return rc;
}

static const gossip_store_t s_store_ops = {s_each, s_ctx, s_delta_since, s_apply, NULL, NULL};

typedef struct {
    store_t store;
    gossip_engine_t *engine;
} node_t;

/*  Node id presenting `card` ("": none) to the others; staged: what it stages per peer (0:
 *  the default); a digest every gossip_interval_ms (0: every tick). */
static void s_node_staged(node_t *n, uint64_t id, size_t budget, const char *card, size_t staged,
                          uint64_t gossip_interval_ms)
{
    memset(n, 0, sizeof *n);
    n->store.id = id;
    gossip_config_t config = {.node_id = id,
                              .fanout = 2,
                              .max_message_bytes = budget,
                              .seed = 7,
                              .card = (const uint8_t *)card,
                              .card_len = strlen(card),
                              .max_staged_peer_bytes = staged,
                              .gossip_interval_ms = gossip_interval_ms};
    n->engine = gossip_engine_new(&config, &s_store_ops, &n->store);
    assert_non_null(n->engine);
}

static void s_node_card(node_t *n, uint64_t id, size_t budget, const char *card)
{
    s_node_staged(n, id, budget, card, 0, 0);
}

static void s_node(node_t *n, uint64_t id, size_t budget)
{
    s_node_card(n, id, budget, "");
}

static void s_node_fini(node_t *n)
{
    gossip_engine_destroy(&n->engine);
    for (int i = 0; i < SCOPES; i++)
        crdt_scope_destroy(&n->store.scopes[i]);
}

/*  Writes on node n and hands the delta to its engine; await_ack as a write waiting for
 *  replicas. */
static void s_write_awaiting(node_t *n, const char *scope, const char *key, const char *value,
                             bool await_ack)
{
    int i = s_index(&n->store, scope, true);
    crdt_ctx_t *deps = crdt_ctx_dup(crdt_scope_ctx(n->store.scopes[i]));
    crdt_scope_t *delta = NULL;
    assert_int_equal(crdt_mvreg_write(n->store.scopes[i], key, 1, value, strlen(value), &delta), 0);
    assert_int_equal(gossip_engine_local(n->engine, scope, delta, deps, await_ack), 0);
    crdt_scope_destroy(&delta);
    crdt_ctx_destroy(&deps);
}

/*  Writes on node n, acknowledged at once. */
static void s_write(node_t *n, const char *scope, const char *key, const char *value)
{
    s_write_awaiting(n, scope, key, value, true);
}

/*  Writes keys k0..k<count-1> on node n, all in scope, or (scope NULL) in run:a and team:b by
 *  turns. */
static void s_write_keys(node_t *n, int count, const char *scope, const char *value)
{
    for (int i = 0; i < count; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        s_write(n, scope ? scope : i % 2 ? "run:a" : "team:b", key, value);
    }
}

/*  Messages one run may pass before the test fails: far more than any exchange takes, so that
 *  nodes that keep answering each other without a tick fail instead of hanging. */
#define MAX_MESSAGES_PER_RUN 100000

/*  Delivers every queued message among nodes at now_ms until none is left; drops the messages
 *  whose index in the run `drop` says to (NULL: none). Returns how many were delivered. */
static int s_run_at(node_t *nodes, int count, bool (*drop)(int index, uint64_t to), uint64_t now_ms)
{
    int delivered = 0, index = 0;
    for (bool any = true; any;) {
        any = false;
        for (int from = 0; from < count; from++) {
            uint64_t to;
            uint8_t *buf;
            size_t len;
            while (gossip_engine_next(nodes[from].engine, &to, &buf, &len, NULL)) {
                any = true;
                if (index >= MAX_MESSAGES_PER_RUN)
                    fail_msg("the nodes never stop sending: %d messages at %" PRIu64 " ms", index,
                             now_ms);
                for (int t = 0; t < count; t++)
                    if (nodes[t].store.id == to && !(drop && drop(index, to)))
                        gossip_engine_receive(nodes[t].engine, nodes[from].store.id, buf, len,
                                              now_ms);
                index++;
                delivered++;
                free(buf);
            }
        }
    }
    return delivered;
}

static int s_run(node_t *nodes, int count, bool (*drop)(int index, uint64_t to))
{
    return s_run_at(nodes, count, drop, 1000);
}

/*  Runs [from_ms, to_ms): every 100 ms each node ticks, then everything is delivered. */
static void s_tick_run(node_t *nodes, int count, uint64_t from_ms, uint64_t to_ms)
{
    for (uint64_t now = from_ms; now < to_ms; now += 100) {
        for (int i = 0; i < count; i++)
            gossip_engine_tick(nodes[i].engine, now);
        s_run_at(nodes, count, NULL, now);
    }
}

static bool s_same(node_t *a, node_t *b)
{
    for (int i = 0; i < SCOPES; i++) {
        if (!a->store.names[i])
            continue;
        int j = s_index(&b->store, a->store.names[i], false);
        if (j < 0 || !crdt_scope_equal(a->store.scopes[i], b->store.scopes[j]))
            return false;
    }
    return true;
}

/*  Nodes 11 and 22, each the other's peer. */
static void s_pair(node_t nodes[2], size_t budget)
{
    s_node(&nodes[0], 11, budget);
    s_node(&nodes[1], 22, budget);
    gossip_engine_add_peer(nodes[0].engine, 22);
    gossip_engine_add_peer(nodes[1].engine, 11);
}

/*  Checks that the two nodes converged, then frees them. */
static void s_pair_fini(node_t nodes[2])
{
    assert_true(s_same(&nodes[0], &nodes[1]));
    s_node_fini(&nodes[0]);
    s_node_fini(&nodes[1]);
}

static void test_push_reaches_peer(void **state)
{
    (void)state;
    node_t nodes[2];
    s_pair(nodes, 65536);
    s_write(&nodes[0], "run:a", "draft", "hello");
    assert_int_equal(s_run(nodes, 2, NULL), 2); /* one push and its ack, nothing else */
    assert_int_equal(gossip_engine_stats(nodes[1].engine)->pushes_applied, 1);
    assert_true(s_same(&nodes[0], &nodes[1]));
    /* The ack told the origin what its peer holds. */
    const crdt_ctx_t *theirs = gossip_engine_peer_ctx(nodes[0].engine, 22, "run:a");
    assert_non_null(theirs);
    assert_true(crdt_ctx_equal(theirs, crdt_scope_ctx(nodes[1].store.scopes[0])));
    assert_null(gossip_engine_peer_ctx(nodes[0].engine, 22, "team:b"));
    /* ... and the push told the receiver what its origin holds. */
    const crdt_ctx_t *origin = gossip_engine_peer_ctx(nodes[1].engine, 11, "run:a");
    assert_non_null(origin);
    assert_true(crdt_ctx_equal(origin, crdt_scope_ctx(nodes[0].store.scopes[0])));
    s_node_fini(&nodes[0]);
    s_node_fini(&nodes[1]);
}

/*  Whether node `origin` knows that its peer `holder` holds every dot of holder's scope. */
static bool s_known_to_hold(node_t *origin, node_t *holder, const char *scope)
{
    const crdt_ctx_t *known = gossip_engine_peer_ctx(origin->engine, holder->store.id, scope);
    int i = s_index(&holder->store, scope, false);
    return known && i >= 0 && crdt_ctx_covers(known, crdt_scope_ctx(holder->store.scopes[i]));
}

/*  Ticks node n of a pair at now_ms and delivers what follows; returns how many acks n sent,
 *  after checking the other node received every one (its digest, which the tick sends too,
 *  also tells what n holds: only the count shows the acks). */
static uint64_t s_tick_acks(node_t *nodes, int n, uint64_t now_ms)
{
    const gossip_stats_t *sender = gossip_engine_stats(nodes[n].engine);
    const gossip_stats_t *origin = gossip_engine_stats(nodes[1 - n].engine);
    uint64_t sent = sender->acks_sent, received = origin->acks_received;
    gossip_engine_tick(nodes[n].engine, now_ms);
    s_run_at(nodes, 2, NULL, now_ms);
    assert_int_equal(origin->acks_received - received, sender->acks_sent - sent);
    return sender->acks_sent - sent;
}

static void test_acks_wait_for_the_tick_unless_awaited(void **state)
{
    (void)state;
    node_t nodes[2];
    /* digests every 10 s: after the first tick's, only acks tell what the peer holds */
    s_node_staged(&nodes[0], 11, 65536, "", 0, 10000);
    s_node_staged(&nodes[1], 22, 65536, "", 0, 10000);
    gossip_engine_add_peer(nodes[0].engine, 22);
    gossip_engine_add_peer(nodes[1].engine, 11);
    const gossip_stats_t *b = gossip_engine_stats(nodes[1].engine);
    /* Three pushes nothing waits for: applied at once, acknowledged by one ack at the tick. */
    for (int i = 0; i < 3; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        s_write_awaiting(&nodes[0], "run:a", key, "v", false);
        assert_int_equal(s_run(nodes, 2, NULL), 1); /* the push alone */
    }
    assert_int_equal(b->pushes_applied, 3);
    assert_int_equal(b->acks_sent, 0);
    assert_int_equal(b->acks_deferred, 0); /* owed, not sent yet */
    assert_false(s_known_to_hold(&nodes[0], &nodes[1], "run:a"));
    assert_int_equal(s_tick_acks(nodes, 1, 1000), 1);
    assert_int_equal(b->acks_deferred, 1);
    assert_true(s_known_to_hold(&nodes[0], &nodes[1], "run:a"));
    assert_int_equal(s_tick_acks(nodes, 1, 1100), 0); /* paid: nothing owed any more */

    /* The next tick's debts, in two scopes: an ack for each. */
    s_write_awaiting(&nodes[0], "run:a", "k3", "v", false);
    s_write_awaiting(&nodes[0], "team:b", "k3", "v", false);
    assert_int_equal(s_run(nodes, 2, NULL), 2); /* two pushes, no ack */
    assert_false(s_known_to_hold(&nodes[0], &nodes[1], "team:b"));
    assert_int_equal(s_tick_acks(nodes, 1, 1200), 2);
    assert_true(s_known_to_hold(&nodes[0], &nodes[1], "run:a"));
    assert_true(s_known_to_hold(&nodes[0], &nodes[1], "team:b"));

    /* A push that a write waits on is acknowledged at once, also when it carries writes that
     * nothing waits on, coalesced with it ... */
    s_write_awaiting(&nodes[0], "run:a", "k4", "v", false);
    s_write_awaiting(&nodes[0], "run:a", "k5", "v", true);
    assert_int_equal(s_run(nodes, 2, NULL), 2); /* one push and its ack */
    assert_true(s_known_to_hold(&nodes[0], &nodes[1], "run:a"));

    /* ... and that ack pays what was owed before it. */
    s_write_awaiting(&nodes[0], "run:a", "k6", "v", false);
    assert_int_equal(s_run(nodes, 2, NULL), 1);
    assert_int_equal(b->acks_deferred, 3); /* 1 and 2 at the ticks above; this one is owed */
    s_write_awaiting(&nodes[0], "run:a", "k7", "v", true);
    assert_int_equal(s_run(nodes, 2, NULL), 2);
    assert_int_equal(s_tick_acks(nodes, 1, 1300), 0);
    assert_int_equal(b->acks_deferred, 3); /* paid by the ack sent at once */
    assert_true(s_known_to_hold(&nodes[0], &nodes[1], "run:a"));

    /* A replayed push nothing waits for (held already) is acknowledged at the tick too. */
    s_write_awaiting(&nodes[0], "run:a", "k8", "v", false);
    uint64_t to;
    uint8_t *push, *ack;
    size_t len, ack_len;
    bool is_push = false;
    assert_true(gossip_engine_next(nodes[0].engine, &to, &push, &len, &is_push));
    assert_true(is_push); /* what a link that went down does not hold (node/cluster) */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(gossip_engine_receive(nodes[1].engine, 11, push, len, 1300), 0);
        assert_int_equal(b->pushes_redundant, (uint64_t)i);
        assert_int_equal(s_tick_acks(nodes, 1, 1400 + 100 * (uint64_t)i), 1);
    }
    free(push);
    /* an ack owed for a push is no push */
    s_write_awaiting(&nodes[0], "run:a", "k8b", "v", false);
    assert_int_equal(s_run(nodes, 2, NULL), 1);
    gossip_engine_tick(nodes[1].engine, 1550);
    assert_true(gossip_engine_next(nodes[1].engine, &to, &ack, &ack_len, &is_push));
    assert_false(is_push);
    assert_int_equal(gossip_engine_receive(nodes[0].engine, 22, ack, ack_len, 1550), 0);
    free(ack);
    assert_false(gossip_engine_next(nodes[1].engine, &to, &ack, &ack_len, NULL));

    /* A node that has LEFT sends no data: what it owed is dropped. */
    s_write_awaiting(&nodes[0], "run:a", "k9", "v", false);
    assert_int_equal(s_run(nodes, 2, NULL), 1);
    assert_int_equal(gossip_engine_leave(nodes[1].engine, 22, (const uint8_t *)"x", 1), 0);
    assert_int_equal(s_tick_acks(nodes, 1, 1600), 0);
    s_pair_fini(nodes);
}

static bool s_drop_first(int index, uint64_t to)
{
    (void)to;
    return index == 0;
}

/*  The first push is lost; the second depends on it, so it is held back and the gap pulled. */
static void test_held_back_push_pulls_the_gap(void **state)
{
    (void)state;
    node_t nodes[2];
    s_pair(nodes, 65536);
    s_write(&nodes[0], "run:a", "k", "first");
    s_run(nodes, 2, s_drop_first);
    s_write(&nodes[0], "run:a", "k", "second");
    s_run(nodes, 2, NULL);
    const gossip_stats_t *st = gossip_engine_stats(nodes[1].engine);
    assert_int_equal(st->pushes_held_back, 1);
    assert_true(st->pull_deltas_applied >= 1);
    s_pair_fini(nodes);
}

/*  Local operations between two drains of the outbox go out as one push per scope, with the
 *  first one's dependencies; the receiver applies them as one. */
static void test_local_operations_coalesce(void **state)
{
    (void)state;
    node_t nodes[2];
    s_pair(nodes, 65536);
    s_write(&nodes[0], "run:a", "k", "first");
    s_write(&nodes[0], "run:a", "k", "second");
    s_write(&nodes[0], "run:a", "j", "third");
    s_write(&nodes[0], "team:b", "k", "other scope");
    /* two pushes (one per scope) and their two acks */
    assert_int_equal(s_run(nodes, 2, NULL), 4);
    const gossip_stats_t *origin = gossip_engine_stats(nodes[0].engine);
    assert_int_equal(origin->pushes_sent, 2);
    assert_int_equal(origin->pushes_coalesced, 2);
    assert_int_equal(gossip_engine_stats(nodes[1].engine)->pushes_applied, 2);
    assert_int_equal(gossip_engine_stats(nodes[1].engine)->pushes_held_back, 0);
    assert_true(s_same(&nodes[0], &nodes[1]));
    s_pair_fini(nodes);
}

/*  A batch stays within the message budget: past half of it, the operations so far go out as
 *  one push and a new batch starts, so every push is applied (none is left to a pull). */
static void test_coalesced_pushes_keep_the_budget(void **state)
{
    (void)state;
    node_t nodes[2];
    s_pair(nodes, 4096);
    char value[1200];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    const char *keys[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++)
        s_write(&nodes[0], "run:a", keys[i], value);
    s_run(nodes, 2, NULL);
    const gossip_stats_t *origin = gossip_engine_stats(nodes[0].engine);
    assert_true(origin->pushes_sent >= 2);
    assert_int_equal(origin->pushes_sent + origin->pushes_coalesced, 4);
    const gossip_stats_t *peer = gossip_engine_stats(nodes[1].engine);
    assert_int_equal(peer->pushes_applied, origin->pushes_sent);
    assert_int_equal(peer->pull_deltas_applied, 0);
    assert_true(s_same(&nodes[0], &nodes[1]));
    s_pair_fini(nodes);
}

/*  A remote delta applied to a scope seals the batch before it: later local operations
 *  depend on it, so they go out in a push of their own whose dependencies include it. */
static void test_remote_apply_seals_the_batch(void **state)
{
    (void)state;
    node_t nodes[2];
    s_pair(nodes, 65536);
    s_write(&nodes[0], "run:a", "k", "before"); /* pending at node 11 */
    s_write(&nodes[1], "run:a", "r", "remote"); /* pushed by node 22 */
    uint64_t to;
    uint8_t *buf;
    size_t len;
    assert_true(gossip_engine_next(nodes[1].engine, &to, &buf, &len, NULL));
    assert_int_equal(gossip_engine_receive(nodes[0].engine, 22, buf, len, 1000), 0);
    free(buf);
    s_write(&nodes[0], "run:a", "k", "after"); /* depends on "remote" */
    s_run(nodes, 2, NULL);
    const gossip_stats_t *origin = gossip_engine_stats(nodes[0].engine);
    assert_int_equal(origin->pushes_sent, 2);
    assert_int_equal(origin->pushes_coalesced, 0);
    assert_int_equal(gossip_engine_stats(nodes[1].engine)->pushes_held_back, 0);
    assert_true(s_same(&nodes[0], &nodes[1]));
    s_pair_fini(nodes);
}

/*  Operations sealed at each sync and sent once every few syncs (node_cluster_hold) go out as
 *  one push a scope: the later ones join the sealed ones. */
static void test_sealed_operations_join_into_one_push(void **state)
{
    (void)state;
    node_t nodes[2];
    s_pair(nodes, 65536);
    const char *keys[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        s_write_awaiting(&nodes[0], "run:a", keys[i], "v", false);
        gossip_engine_seal(nodes[0].engine);
    }
    s_run(nodes, 2, NULL);
    const gossip_stats_t *origin = gossip_engine_stats(nodes[0].engine);
    assert_int_equal(origin->pushes_sent, 1);
    assert_int_equal(origin->pushes_coalesced, 2);
    assert_int_equal(gossip_engine_stats(nodes[1].engine)->pushes_applied, 1);
    assert_true(s_same(&nodes[0], &nodes[1]));
    s_pair_fini(nodes);
}

/*  Delivers the next message node `from` (id from_id) has queued to node `to`. */
static void s_deliver_next(node_t *from, uint64_t from_id, node_t *to)
{
    uint64_t peer;
    uint8_t *buf;
    size_t len;
    assert_true(gossip_engine_next(from->engine, &peer, &buf, &len, NULL));
    assert_int_equal(gossip_engine_receive(to->engine, from_id, buf, len, 1000), 0);
    free(buf);
}

/*  After a failed sync, drop_data drops what was given since the last seal and keeps (and
 *  pushes) what a seal made durable, so a write held for a later push is not lost with the
 *  turn that failed: also when the sealed operations were queued as a push before the drop (a
 *  remote delta applied to their scope flushes it), and when the storage state already says
 *  no data may leave. */
static void test_drop_keeps_what_was_sealed(void **state)
{
    (void)state;
    enum { PLAIN, FLUSHED, FAILED, CASES };
    for (int c = PLAIN; c < CASES; c++) {
        node_t nodes[2];
        s_pair(nodes, 65536);
        s_write_awaiting(&nodes[0], "run:a", "durable", "v", false); /* dot (11, 1) */
        gossip_engine_seal(nodes[0].engine);
        if (c == FLUSHED) {
            s_write_awaiting(&nodes[1], "run:a", "remote", "v", false);
            s_deliver_next(&nodes[1], 22, &nodes[0]);
        } else if (c == FAILED) {
            gossip_engine_set_storage(nodes[0].engine, GOSSIP_STORAGE_FAILED);
        }
        s_write_awaiting(&nodes[0], "run:a", "in doubt", "v", false); /* dot (11, 2) */
        gossip_engine_drop_data(nodes[0].engine);
        assert_int_equal(gossip_engine_stats(nodes[0].engine)->data_dropped, 1);
        s_run(nodes, 2, NULL);
        assert_int_equal(gossip_engine_stats(nodes[1].engine)->pushes_applied, 1);
        const crdt_ctx_t *held =
            crdt_scope_ctx(nodes[1].store.scopes[s_index(&nodes[1].store, "run:a", false)]);
        assert_true(crdt_ctx_contains(held, (crdt_dot_t){.node = 11, .n = 1}));
        assert_false(crdt_ctx_contains(held, (crdt_dot_t){.node = 11, .n = 2}));
        s_node_fini(&nodes[0]);
        s_node_fini(&nodes[1]);
    }
}

/*  A message queued before a seal (an ack of a push applied in a turn that synced) is durable
 *  too: a drop keeps it. */
static void test_drop_keeps_messages_sealed(void **state)
{
    (void)state;
    node_t nodes[2];
    s_pair(nodes, 65536);
    s_write_awaiting(&nodes[1], "run:a", "remote", "v", true); /* acked at once */
    s_deliver_next(&nodes[1], 22, &nodes[0]);
    gossip_engine_seal(nodes[0].engine);
    gossip_engine_drop_data(nodes[0].engine);
    s_run(nodes, 2, NULL);
    assert_true(s_known_to_hold(&nodes[1], &nodes[0], "run:a"));
    s_pair_fini(nodes);
}

/*  What should not wait: a push whose writer waits for replicas, and the ack it asks for, each
 *  until its node's outbox is sent. */
static void test_awaited_pushes_and_their_acks_are_urgent(void **state)
{
    (void)state;
    node_t nodes[2];
    s_pair(nodes, 65536);
    s_write_awaiting(&nodes[0], "run:a", "k", "v", false);
    assert_false(gossip_engine_urgent(nodes[0].engine));
    s_run(nodes, 2, NULL);
    s_write_awaiting(&nodes[0], "run:a", "j", "v", true);
    assert_true(gossip_engine_urgent(nodes[0].engine));
    assert_false(gossip_engine_urgent(nodes[1].engine));
    s_deliver_next(&nodes[0], 11, &nodes[1]);
    assert_true(gossip_engine_urgent(nodes[1].engine)); /* the ack asked for */
    uint64_t to;
    uint8_t *buf;
    size_t len;
    assert_false(gossip_engine_next(nodes[0].engine, &to, &buf, &len, NULL));
    assert_false(gossip_engine_urgent(nodes[0].engine));
    s_run(nodes, 2, NULL);
    assert_false(gossip_engine_urgent(nodes[1].engine));
    s_pair_fini(nodes);
}

/*  A node that knows nothing pulls every scope, in chunks of a small budget, with parts
 *  delivered twice and in reverse order. */
static void test_new_node_pulls_everything_in_chunks(void **state)
{
    (void)state;
    node_t nodes[2];
    s_node(&nodes[0], 11, 4096);
    s_node(&nodes[1], 22, 4096);
    char value[512];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    s_write_keys(&nodes[0], 60, NULL, value);
    uint8_t *buf;
    size_t len;
    uint64_t to;
    while (gossip_engine_next(nodes[0].engine, &to, &buf, &len, NULL)) /* no peers yet: nothing */
        free(buf);
    gossip_engine_add_peer(nodes[0].engine, 22);
    gossip_engine_add_peer(nodes[1].engine, 11);
    gossip_engine_tick(nodes[1].engine, 1000); /* the new node's first digest (and SWIM) */
    while (gossip_engine_next(nodes[1].engine, &to, &buf, &len, NULL)) {
        assert_int_equal(gossip_engine_receive(nodes[0].engine, 22, buf, len, 1000), 0);
        free(buf);
    }
    /* Collect the answer's chunks, then deliver them reversed and twice. */
    uint8_t *parts[256];
    size_t lens[256], n = 0;
    while (gossip_engine_next(nodes[0].engine, &to, &parts[n], &lens[n], NULL)) {
        assert_true(lens[n] <= 4096);
        n++;
    }
    assert_true(n > 4); /* the answer needed several chunks */
    int applies_before = nodes[1].store.applies;
    for (size_t i = n; i-- > 0;)
        gossip_engine_receive(nodes[1].engine, 11, parts[i], lens[i], 1000);
    for (size_t i = 0; i < n; i++) {
        gossip_engine_receive(nodes[1].engine, 11, parts[i], lens[i], 1000);
        free(parts[i]);
    }
    assert_true(s_same(&nodes[0], &nodes[1]));
    /* One apply per scope for the first delivery (two scopes), whole deltas only. */
    assert_true(nodes[1].store.applies - applies_before >= 2);
    s_node_fini(&nodes[0]);
    s_node_fini(&nodes[1]);
}

/*  Writes on node n with a history step of note_len bytes as the op's note (kept by the store
 *  too, as node/store does), and hands the delta to its engine. */
static void s_write_noted(node_t *n, const char *scope, const char *key, size_t note_len)
{
    int i = s_index(&n->store, scope, true);
    crdt_scope_t *s = n->store.scopes[i];
    crdt_ctx_t *deps = crdt_ctx_dup(crdt_scope_ctx(s));
    crdt_scope_t *delta = NULL;
    assert_int_equal(crdt_mvreg_write(s, key, 1, "v", 1, &delta), 0);
    crdt_dot_t dot = {n->store.id, crdt_ctx_max(crdt_scope_ctx(s), n->store.id)};
    char *note = malloc(note_len);
    assert_non_null(note);
    memset(note, 's', note_len);
    assert_int_equal(crdt_scope_note(delta, dot, note, note_len), 0);
    assert_int_equal(crdt_scope_note(s, dot, note, note_len), 0);
    free(note);
    assert_int_equal(gossip_engine_local(n->engine, scope, delta, deps, true), 0);
    crdt_scope_destroy(&delta);
    crdt_ctx_destroy(&deps);
}

/*  A note's wire form in this store: "L" and the reader's schema minor as a digit, for a note
 *  whose op's entry travels with it. */
static int s_lean_wire(void *store, uint32_t reader_minor, crdt_dot_t op, const uint8_t *note,
                       size_t len, const crdt_dot_entry_t *entry, uint8_t **out, size_t *out_len)
{
    (void)store, (void)op, (void)note, (void)len;
    if (!entry)
        return 0;
    assert_true(reader_minor >= GOSSIP_LEAN_NOTES_MINOR && reader_minor <= ENGRAM_SCHEMA_MINOR);
    *out = malloc(2);
    assert_non_null(*out);
    (*out)[0] = 'L';
    (*out)[1] = (uint8_t)('0' + reader_minor);
    *out_len = 2;
    return 0;
}

/*  Whether note (len bytes) is s_lean_wire's form for a reader of schema minor `minor`. */
static bool s_lean_for(const uint8_t *note, size_t len, uint32_t minor)
{
    return note && len == 2 && note[0] == 'L' && note[1] == '0' + minor;
}

static const gossip_store_t s_lean_store_ops = {s_each,  s_ctx, s_delta_since,
                                                s_apply, NULL,  s_lean_wire};

/*  The note of op in node n's replica of scope (its length in *len), or NULL. */
static const uint8_t *s_note_at(node_t *n, const char *scope, crdt_dot_t op, size_t *len)
{
    int i = s_index(&n->store, scope, false);
    return i < 0 ? NULL : crdt_scope_note_of(n->store.scopes[i], op, len);
}

/*  Makes nodes 11, 22, ... 11 * count each the others' peer. */
static void s_introduce_all(node_t *nodes, int count)
{
    for (int i = 0; i < count; i++)
        for (int j = 0; j < count; j++)
            if (i != j)
                gossip_engine_add_peer(nodes[i].engine, 11 * (uint64_t)(j + 1));
}

/*  Nodes 11, 22, ... 11 * count, each the others' peer, over stores with s_lean_wire, each
 *  pushing to all the others. */
static void s_lean_mesh(node_t *nodes, int count)
{
    for (int i = 0; i < count; i++) {
        memset(&nodes[i], 0, sizeof nodes[i]);
        nodes[i].store.id = 11 * (uint64_t)(i + 1);
        gossip_config_t config = {.node_id = nodes[i].store.id,
                                  .fanout = (unsigned)count - 1,
                                  .max_message_bytes = 65536,
                                  .seed = 7};
        nodes[i].engine = gossip_engine_new(&config, &s_lean_store_ops, &nodes[i].store);
        assert_non_null(nodes[i].engine);
    }
    s_introduce_all(nodes, count);
}

/*  Notes go in the store's wire form only to a peer whose messages say it reads that form
 *  (schema minor GOSSIP_LEAN_NOTES_MINOR or later): not to one never heard from, not to one
 *  whose record changed since it last spoke, and not to one whose latest message gives an
 *  older minor; the origin's own notes stay whole; lean_deltas counts the lean pushes. */
static void test_lean_notes_only_to_peers_that_read_them(void **state)
{
    (void)state;
    node_t nodes[2];
    s_lean_mesh(nodes, 2);
    size_t len = 0;
    s_write_noted(&nodes[0], "run:a", "k", 8); /* 22 never spoke: the note goes whole */
    s_run(nodes, 2, NULL);
    assert_non_null(s_note_at(&nodes[1], "run:a", (crdt_dot_t){11, 1}, &len));
    assert_int_equal(len, 8);
    s_write_noted(&nodes[0], "run:a", "j", 8); /* 22's ack gave this minor: lean */
    s_run(nodes, 2, NULL);
    const uint8_t *note = s_note_at(&nodes[1], "run:a", (crdt_dot_t){11, 2}, &len);
    assert_true(s_lean_for(note, len, ENGRAM_SCHEMA_MINOR));
    assert_int_equal(gossip_engine_stats(nodes[0].engine)->lean_deltas, 1);
    assert_non_null(s_note_at(&nodes[0], "run:a", (crdt_dot_t){11, 2}, &len));
    assert_int_equal(len, 8);

    /* 22's record changes (a new incarnation: it restarted, maybe as another version): whole
     * notes until it speaks again */
    gossip_member_t restarted = {.id = 22, .incarnation = 5, .state = GOSSIP_ALIVE, .endpoint = ""};
    assert_int_equal(gossip_engine_learn(nodes[0].engine, &restarted), 0);
    s_write_noted(&nodes[0], "run:a", "n", 8);
    s_run(nodes, 2, NULL);
    assert_non_null(s_note_at(&nodes[1], "run:a", (crdt_dot_t){11, 3}, &len));
    assert_int_equal(len, 8);

    /* 22 speaks an older minor (a downgrade): whole notes again */
    uint8_t *ctx_buf = NULL, *buf;
    size_t ctx_len = 0;
    assert_int_equal(crdt_ctx_encode(crdt_scope_ctx(nodes[1].store.scopes[0]), &ctx_buf, &ctx_len),
                     0);
    Engram__GossipAck ack = ENGRAM__GOSSIP_ACK__INIT;
    ack.scope = "run:a";
    ack.ctx = (ProtobufCBinaryData){ctx_len, ctx_buf};
    Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
    msg.schema_major = ENGRAM_SCHEMA_MAJOR;
    msg.schema_minor = GOSSIP_LEAN_NOTES_MINOR - 1;
    msg.body_case = ENGRAM__GOSSIP__BODY_ACK;
    msg.ack = &ack;
    buf = malloc(engram__gossip__get_packed_size(&msg));
    assert_non_null(buf);
    size_t n = engram__gossip__pack(&msg, buf);
    assert_int_equal(gossip_engine_receive(nodes[0].engine, 22, buf, n, 1000), 0);
    free(buf);
    free(ctx_buf);
    s_write_noted(&nodes[0], "run:a", "m", 8);
    s_run(nodes, 2, NULL);
    assert_non_null(s_note_at(&nodes[1], "run:a", (crdt_dot_t){11, 4}, &len));
    assert_int_equal(len, 8);
    assert_int_equal(gossip_engine_stats(nodes[0].engine)->lean_deltas, 1);
    s_pair_fini(nodes);
}

/*  History never holds back the state: a push too big only because of its steps is not sent
 *  (counted; the peer pulls it), and an answer too big with its steps goes without them
 *  (counted), so the asker converges and lacks only those steps; small steps travel. */
static void test_steps_never_hold_back_the_state(void **state)
{
    (void)state;
    node_t nodes[2];
    s_pair(nodes, 4096);
    s_write_noted(&nodes[0], "run:a", "small", 100);
    s_run(nodes, 2, NULL);
    assert_int_equal(crdt_scope_notes(nodes[1].store.scopes[0]), 1); /* pushed with its step */
    s_write_noted(&nodes[0], "run:a", "big", 8000); /* over the 4096-byte message budget */
    s_run(nodes, 2, NULL);
    const gossip_stats_t *origin = gossip_engine_stats(nodes[0].engine);
    assert_int_equal(origin->pushes_too_big, 1);
    s_tick_run(nodes, 2, 1000, 2000); /* pulled, in chunks, step included */
    assert_true(s_same(&nodes[0], &nodes[1]));
    assert_int_equal(crdt_scope_notes(nodes[1].store.scopes[0]), 2);
    assert_int_equal(origin->answers_without_steps, 0);
    s_node_fini(&nodes[0]);
    s_node_fini(&nodes[1]);

    /* Receivers that stage at most 128 KiB per peer: steps of 300 KiB make the answer too
     * big with them, not without. */
    s_node_staged(&nodes[0], 11, 4096, "", 128 * 1024, 0);
    s_node_staged(&nodes[1], 22, 4096, "", 128 * 1024, 0);
    gossip_engine_add_peer(nodes[0].engine, 22);
    gossip_engine_add_peer(nodes[1].engine, 11);
    for (int i = 0; i < 3; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        s_write_noted(&nodes[0], "run:a", key, 100 * 1024);
    }
    uint8_t *buf;
    size_t len;
    uint64_t to;
    while (gossip_engine_next(nodes[0].engine, &to, &buf, &len, NULL)) /* the pushes: lost */
        free(buf);
    s_tick_run(nodes, 2, 1000, 2000);
    origin = gossip_engine_stats(nodes[0].engine);
    assert_true(origin->answers_without_steps >= 1);
    assert_int_equal(origin->answers_too_big, 0);
    assert_true(s_same(&nodes[0], &nodes[1]));
    assert_int_equal(crdt_scope_notes(nodes[1].store.scopes[0]), 0);
    s_pair_fini(nodes);
}

/*  Truncations and bit flips of a real push: every message the engine refuses changes
 *  nothing. (A flip can also yield another well-formed push, which is applied as such: frame
 *  integrity on the wire is CurveZMQ's job.) */
static void test_bad_input_changes_nothing(void **state)
{
    (void)state;
    node_t a, b;
    s_node(&a, 11, 65536);
    s_node(&b, 22, 65536);
    gossip_engine_add_peer(a.engine, 22);
    s_write(&a, "run:a", "k", "v");
    uint64_t to;
    uint8_t *buf;
    size_t len;
    assert_true(gossip_engine_next(a.engine, &to, &buf, &len, NULL));
    int cases = prop_cases(3000), refused = 0;
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("gossip_bad_input", c);
        uint8_t *copy = malloc(len);
        memcpy(copy, buf, len);
        size_t n = len;
        if (prop_chance(&rng, 30))
            n = prop_below(&rng, len);
        else
            copy[prop_below(&rng, len)] ^= (uint8_t)(1u << prop_below(&rng, 8));
        int applies = b.store.applies;
        uint64_t digest = b.store.scopes[0] ? crdt_scope_digest(b.store.scopes[0]) : 0;
        if (gossip_engine_receive(b.engine, 11, copy, n, 1000) != 0) {
            refused++;
            PROP_CHECK(b.store.applies == applies);
            PROP_CHECK((b.store.scopes[0] ? crdt_scope_digest(b.store.scopes[0]) : 0) == digest);
        }
        free(copy);
        uint64_t t;
        uint8_t *out;
        size_t olen;
        while (gossip_engine_next(b.engine, &t, &out, &olen, NULL))
            free(out);
    }
    assert_true(refused > cases / 4);
    assert_int_equal(gossip_engine_stats(b.engine)->bad_messages, (uint64_t)refused);
    free(buf);
    s_node_fini(&a);
    s_node_fini(&b);
}

static bool s_drop_to_33(int index, uint64_t to)
{
    (void)index;
    return to == 33;
}

/*  Nodes 11, 22, ... 11 * count, each the others' peer. */
static void s_mesh(node_t *nodes, int count)
{
    for (int i = 0; i < count; i++)
        s_node(&nodes[i], 11 * (uint64_t)(i + 1), 65536);
    s_introduce_all(nodes, count);
}

/*  Nodes 11, 22 and 33, each the others' peer. */
static void s_trio(node_t nodes[3])
{
    s_mesh(nodes, 3);
}

/*  A node that missed a write gets pushes that depend on it from two peers: it asks only the
 *  first for the gap (both would answer with all of it), and still catches up. */
static void test_held_back_pushes_ask_one_peer(void **state)
{
    (void)state;
    node_t nodes[3];
    s_trio(nodes);
    s_write(&nodes[0], "run:a", "k", "missed by 33");
    s_run(nodes, 3, s_drop_to_33);
    uint64_t digests = gossip_engine_stats(nodes[2].engine)->digests_sent;
    s_write(&nodes[0], "run:a", "k", "from 11");
    s_write(&nodes[1], "run:a", "j", "from 22");
    s_run(nodes, 3, NULL);
    const gossip_stats_t *st = gossip_engine_stats(nodes[2].engine);
    assert_int_equal(st->pushes_held_back, 2);
    assert_int_equal(st->digests_sent - digests, 1);
    for (int i = 0; i < 2; i++)
        assert_true(s_same(&nodes[i], &nodes[2]));
    for (int i = 0; i < 3; i++)
        s_node_fini(&nodes[i]);
}

static bool s_drop_to_44(int index, uint64_t to)
{
    (void)index;
    return to == 44;
}

/*  Ticks the count nodes while every message to node `to` is lost, until node 11 holds it
 *  SUSPECT (not yet dead); returns the time reached. */
static uint64_t s_until_suspect(node_t *nodes, int count, bool (*drop)(int index, uint64_t to),
                                uint64_t to)
{
    gossip_member_t m = {0};
    uint64_t now = 1000;
    for (; now < 30000; now += 100) {
        for (int i = 0; i < count; i++)
            gossip_engine_tick(nodes[i].engine, now);
        s_run_at(nodes, count, drop, now);
        assert_true(gossip_engine_member(nodes[0].engine, to, &m));
        if (m.state != GOSSIP_ALIVE)
            break;
    }
    assert_int_equal(m.state, GOSSIP_SUSPECT);
    return now;
}

/*  A member that stops answering probes for a while (a stalled turn, a loaded host) is SUSPECT,
 *  most often still alive: a write is pushed to it all the same, not left for the next digest,
 *  but only in a slot of the fanout no ALIVE member takes. */
static void test_push_reaches_a_suspect_member(void **state)
{
    (void)state;
    node_t nodes[4];
    s_trio(nodes); /* fanout 2: 22, and 33 though suspect */
    uint64_t now = s_until_suspect(nodes, 3, s_drop_to_33, 33);
    s_write(&nodes[0], "run:a", "k", "to a suspect");
    s_run_at(nodes, 3, NULL, now); /* no tick: no digest, only the push can bring it */
    assert_true(s_same(&nodes[0], &nodes[2]));
    for (int i = 0; i < 3; i++)
        s_node_fini(&nodes[i]);

    s_mesh(nodes, 4); /* fanout 2: 22 and 33, alive, before 44, suspect */
    now = s_until_suspect(nodes, 4, s_drop_to_44, 44);
    for (int k = 0; k < 8; k++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", k);
        s_write(&nodes[0], "run:a", key, "to the alive");
        s_run_at(nodes, 4, NULL, now);
    }
    assert_true(s_same(&nodes[0], &nodes[1]));
    assert_true(s_same(&nodes[0], &nodes[2]));
    assert_int_equal(s_index(&nodes[3].store, "run:a", false), -1);
    for (int i = 0; i < 4; i++)
        s_node_fini(&nodes[i]);
}

/*  Acks and digests tell the origin what each peer holds; the stable cut is the meet of them
 *  all, unknown while some member is unknown, held back by a member that missed writes, and
 *  free of a member once it is LEFT. */
static void test_peer_knowledge_and_stable_cut(void **state)
{
    (void)state;
    node_t nodes[3];
    uint64_t ids[3] = {11, 22, 33};
    for (int i = 0; i < 3; i++)
        s_node(&nodes[i], ids[i], 65536);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            gossip_engine_add_peer(nodes[i].engine, ids[j]);
    s_write(&nodes[0], "run:a", "k", "one");
    assert_null(gossip_engine_stable_cut(nodes[1].engine, "run:a")); /* 33's is unknown */
    s_run(nodes, 3, NULL);
    const crdt_ctx_t *ours = crdt_scope_ctx(nodes[0].store.scopes[0]);
    crdt_ctx_t *cut = gossip_engine_stable_cut(nodes[0].engine, "run:a");
    assert_non_null(cut);
    assert_true(crdt_ctx_equal(cut, ours)); /* both acked the one write */
    crdt_ctx_destroy(&cut);
    /* 33 misses the next writes: the cut stays at what 33 holds. */
    crdt_ctx_t *old = crdt_ctx_dup(ours);
    s_write(&nodes[0], "run:a", "k", "two");
    s_write(&nodes[0], "run:a", "k", "three");
    s_run(nodes, 3, s_drop_to_33);
    cut = gossip_engine_stable_cut(nodes[0].engine, "run:a");
    assert_non_null(cut);
    assert_true(crdt_ctx_equal(cut, old));
    assert_false(crdt_ctx_covers(cut, crdt_scope_ctx(nodes[0].store.scopes[0])));
    assert_true(crdt_ctx_covers(crdt_scope_ctx(nodes[2].store.scopes[0]), cut));
    crdt_ctx_destroy(&cut);
    /* 33 is decommissioned: it no longer holds the cut back. */
    assert_int_equal(gossip_engine_leave(nodes[0].engine, 33, (const uint8_t *)"admin", 5), 0);
    cut = gossip_engine_stable_cut(nodes[0].engine, "run:a");
    assert_non_null(cut);
    assert_true(crdt_ctx_equal(cut, crdt_scope_ctx(nodes[0].store.scopes[0])));
    crdt_ctx_destroy(&cut);
    crdt_ctx_destroy(&old);
    for (int i = 0; i < 3; i++)
        s_node_fini(&nodes[i]);
}

/*  Node 11 holds two scopes of large values; node 22 (budget 4096) will pull them in chunks. */
static void s_big_pair(node_t nodes[2])
{
    s_node(&nodes[0], 11, 4096);
    s_node(&nodes[1], 22, 4096);
    char value[512];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    s_write_keys(&nodes[0], 60, NULL, value);
    uint8_t *buf;
    size_t len;
    uint64_t to;
    while (gossip_engine_next(nodes[0].engine, &to, &buf, &len, NULL))
        free(buf);
    gossip_engine_add_peer(nodes[0].engine, 22);
    gossip_engine_add_peer(nodes[1].engine, 11);
}

/*  Node 22's complete digest, straight to node 11 at now; returns the chunks 11 answers with
 *  (decoded; the caller frees them with s_chunks_free). */
static size_t s_pull(node_t nodes[2], uint64_t now, Engram__Gossip **chunks, size_t cap)
{
    uint8_t *buf;
    size_t len, n = 0;
    uint64_t to;
    gossip_engine_tick(nodes[1].engine, now);
    while (gossip_engine_next(nodes[1].engine, &to, &buf, &len, NULL)) {
        gossip_engine_receive(nodes[0].engine, 22, buf, len, now);
        free(buf);
    }
    while (gossip_engine_next(nodes[0].engine, &to, &buf, &len, NULL)) {
        Engram__Gossip *g = test_gossip_unpack(buf, len);
        assert_non_null(g);
        if (g->body_case == ENGRAM__GOSSIP__BODY_CHUNK && n < cap)
            chunks[n++] = g;
        else
            engram__gossip__free_unpacked(g, NULL);
        free(buf);
    }
    return n;
}

static int s_deliver_chunk(node_t *to, uint64_t from, Engram__Gossip *g, uint64_t now)
{
    size_t len = engram__gossip__get_packed_size(g);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    engram__gossip__pack(g, buf);
    int rc = gossip_engine_receive(to->engine, from, buf, len, now);
    free(buf);
    return rc;
}

/*  Parts whose hash does not match their whole are refused as a unit: nothing applied, counted
 *  as bad chunks; the true parts then apply. */
static void test_chunk_hash_is_checked(void **state)
{
    (void)state;
    node_t nodes[2];
    s_big_pair(nodes);
    Engram__Gossip *chunks[256];
    size_t n = s_pull(nodes, 1000, chunks, 256);
    assert_true(n > 4);
    int refused = 0;
    for (size_t i = 0; i < n; i++) {
        chunks[i]->chunk->hash ^= 1; /* another whole, as a peer with a bug would send */
        refused += s_deliver_chunk(&nodes[1], 11, chunks[i], 1000) == ENGRAM_EDECODE;
        chunks[i]->chunk->hash ^= 1;
    }
    assert_int_equal(nodes[1].store.applies, 0);
    assert_int_equal(refused, 2); /* one per transfer, when its last part arrived */
    assert_int_equal(gossip_engine_stats(nodes[1].engine)->bad_chunk, 2);
    assert_int_equal(gossip_engine_staged(nodes[1].engine), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(s_deliver_chunk(&nodes[1], 11, chunks[i], 1000), 0);
        engram__gossip__free_unpacked(chunks[i], NULL);
    }
    s_pair_fini(nodes);
}

/*  A peer cannot make us stage more than 4 transfers, however many it starts (each claiming
 *  65536 parts), and a re-sent answer of equal content fills the holes of the first. */
static void test_staging_is_capped_and_resends_fill_holes(void **state)
{
    (void)state;
    node_t nodes[2];
    s_big_pair(nodes);
    Engram__GossipChunk chunk = ENGRAM__GOSSIP_CHUNK__INIT;
    chunk.scope = "run:a";
    chunk.count = 65536;
    chunk.total = 1000;
    uint8_t data[10] = {0};
    chunk.data = (ProtobufCBinaryData){sizeof data, data};
    Engram__Gossip g = ENGRAM__GOSSIP__INIT;
    g.schema_major = 1;
    g.body_case = ENGRAM__GOSSIP__BODY_CHUNK;
    g.chunk = &chunk;
    for (int i = 0; i < 20; i++) {
        chunk.hash = (uint64_t)i;
        chunk.transfer = (uint64_t)i;
        assert_int_equal(s_deliver_chunk(&nodes[1], 11, &g, 1000), 0);
        assert_true(gossip_engine_staged(nodes[1].engine) <= 4);
    }
    assert_int_equal(gossip_engine_staged(nodes[1].engine), 4);
    /* A real answer, its even parts lost; the re-sent one (after the resend limit) loses its
     * odd parts: together they make the whole. */
    Engram__Gossip *first[256], *second[256];
    size_t n = s_pull(nodes, 2000, first, 256);
    assert_true(n > 4);
    for (int pass = 0; pass < 2; pass++) /* each odd part twice: a duplicate is no overflow */
        for (size_t i = 1; i < n; i += 2)
            assert_int_equal(s_deliver_chunk(&nodes[1], 11, first[i], 2000), 0);
    assert_int_equal(nodes[1].store.applies, 0);
    size_t n2 = s_pull(nodes, 2000 + 1000, second, 256);
    assert_int_equal(n2, n);
    for (size_t i = 0; i < n; i++) {
        if (i % 2 == 0)
            assert_int_equal(s_deliver_chunk(&nodes[1], 11, second[i], 3000), 0);
        engram__gossip__free_unpacked(first[i], NULL);
        engram__gossip__free_unpacked(second[i], NULL);
    }
    s_pair_fini(nodes);
}

/*  A large answer goes out once per ANSWER_RESEND_MS to one peer, not on every digest. */
static void test_large_answers_are_not_resent_every_tick(void **state)
{
    (void)state;
    node_t nodes[2];
    s_big_pair(nodes);
    Engram__Gossip *chunks[256];
    size_t n = s_pull(nodes, 1000, chunks, 256);
    assert_true(n > 4);
    for (size_t i = 0; i < n; i++)
        engram__gossip__free_unpacked(chunks[i], NULL);
    for (uint64_t now = 1100; now < 2000; now += 100) {
        /* 22 asks every tick, as if each ask were lost (else it awaits the answer and asks
         * nothing): the answering side holds the answer back itself */
        gossip_engine_unsent(nodes[1].engine, 11);
        assert_int_equal(s_pull(nodes, now, chunks, 256), 0);
    }
    assert_true(gossip_engine_stats(nodes[0].engine)->answers_deferred >= 9 * 2);
    gossip_engine_unsent(nodes[1].engine, 11);
    n = s_pull(nodes, 2000, chunks, 256);
    assert_true(n > 4);
    for (size_t i = 0; i < n; i++)
        engram__gossip__free_unpacked(chunks[i], NULL);
    s_node_fini(&nodes[0]);
    s_node_fini(&nodes[1]);
}

/*  Hands every message queued on `from` to `to` (one hop; nothing goes back). */
static void s_hop(node_t *from, node_t *to, uint64_t now)
{
    uint64_t peer;
    uint8_t *buf;
    size_t len;
    while (gossip_engine_next(from->engine, &peer, &buf, &len, NULL)) {
        if (peer == to->store.id)
            gossip_engine_receive(to->engine, from->store.id, buf, len, now);
        free(buf);
    }
}

/*  Node 11 as restored from a copy of its "run:a": the copy's state, a new engine. */
static void s_restored(node_t *n, const crdt_scope_t *copy)
{
    s_node(n, 11, 65536);
    n->store.names[0] = "run:a";
    n->store.scopes[0] = crdt_scope_dup(copy, 11);
    assert_non_null(n->store.scopes[0]);
    gossip_engine_add_peer(n->engine, 22);
}

/*  Dot safety at start: node 11 wrote three operations that node 22 holds, then comes back from
 *  a copy taken after the first. Until it asked, it has heard nobody; a digest of 22's shows
 *  that 22 holds dots of replica 11 it lacks (holds_unseen); restored again, it asks, and once
 *  the answers came it holds them again (its next dot is past them) and has heard every
 *  member. */
static void test_asked_digests_bring_back_lost_dots(void **state)
{
    (void)state;
    node_t nodes[2];
    s_pair(nodes, 65536);
    s_write(&nodes[0], "run:a", "k1", "one");
    s_run(nodes, 2, NULL);
    crdt_scope_t *copy = crdt_scope_dup(nodes[0].store.scopes[0], 11);
    s_write(&nodes[0], "run:a", "k2", "two");
    s_write(&nodes[0], "run:a", "k3", "three");
    s_run(nodes, 2, NULL);
    assert_int_equal(crdt_ctx_max(crdt_scope_ctx(nodes[1].store.scopes[0]), 11), 3);

    s_node_fini(&nodes[0]); /* restored: the same replica, the copy's state, a new engine */
    s_restored(&nodes[0], copy);
    unsigned members = 0;
    assert_int_equal(gossip_engine_heard_since(nodes[0].engine, 1000, &members), 0);
    assert_int_equal(members, 1);
    assert_false(gossip_engine_holds_unseen(nodes[0].engine, 11));
    assert_int_equal(gossip_engine_ask_digests(nodes[1].engine, 1000, 1000),
                     0); /* 22's digest, alone */
    s_hop(&nodes[1], &nodes[0], 1000);
    assert_true(gossip_engine_holds_unseen(nodes[0].engine, 11));
    assert_false(gossip_engine_holds_unseen(nodes[0].engine, 22));

    s_node_fini(&nodes[0]); /* restored again; this time it asks */
    s_restored(&nodes[0], copy);
    assert_int_equal(gossip_engine_ask_digests(nodes[0].engine, 1000, 1000), 0);
    s_run(nodes, 2, NULL);
    assert_int_equal(gossip_engine_heard_since(nodes[0].engine, 1000, &members), 1);
    assert_int_equal(crdt_ctx_max(crdt_scope_ctx(nodes[0].store.scopes[0]), 11), 3);
    assert_false(gossip_engine_holds_unseen(nodes[0].engine, 11));
    crdt_scope_destroy(&copy);
    s_pair_fini(nodes);
}

/*  Node n restarted: a new engine on the store it had, knowing the other two of 11, 22, 33. */
static void s_restart(node_t *n, size_t budget)
{
    gossip_engine_destroy(&n->engine);
    gossip_config_t config = {.node_id = n->store.id,
                              .fanout = 2,
                              .max_message_bytes = budget,
                              .seed = 8,
                              .card = (const uint8_t *)"",
                              .card_len = 0};
    n->engine = gossip_engine_new(&config, &s_store_ops, &n->store);
    assert_non_null(n->engine);
    for (uint64_t id = 11; id <= 33; id += 11)
        if (id != n->store.id)
            gossip_engine_add_peer(n->engine, id);
}

static bool s_drop_all(int index, uint64_t to)
{
    (void)index, (void)to;
    return true;
}

/*  A peer whose answer this node refuses (a bug of its, another version's) or cannot store (a
 *  full volume) is not asked again at once by the digest that ends the answer, which would ask
 *  it back and forth as fast as the link goes: it is quiet; once this node takes its deltas
 *  again, its next periodic digest pulls them. */
static void test_refused_answer_is_not_asked_again_at_once(void **state)
{
    (void)state;
    const int refusals[2] = {ENGRAM_EDECODE, ENGRAM_ENOSPC};
    for (int k = 0; k < 2; k++) {
        node_t nodes[2];
        s_pair(nodes, 65536);
        s_write(&nodes[1], "run:a", "k", "missed by 11");
        s_run(nodes, 2, s_drop_all);
        nodes[0].store.refuse = refusals[k];
        uint64_t now = 1000;
        gossip_engine_tick(nodes[1].engine, now); /* 22's digest: 11 asks, cannot take it */
        int delivered = s_run_at(nodes, 2, NULL, now);
        assert_in_range(delivered, 3, 10);
        const gossip_stats_t *st = gossip_engine_stats(nodes[0].engine);
        assert_true(k == 0 ? st->bad_apply >= 1 : st->unstored >= 1);
        assert_false(s_same(&nodes[1], &nodes[0]));
        nodes[0].store.refuse = 0;
        s_tick_run(nodes, 2, now + 100, now + 1000);
        assert_true(s_same(&nodes[1], &nodes[0]));
        s_pair_fini(nodes);
    }
}

/*  Delivers node from's queued messages to node to, each saying schema minor `minor`. */
static void s_deliver_as_minor(node_t *from, node_t *to, uint32_t minor, uint64_t now_ms)
{
    uint64_t peer;
    uint8_t *buf;
    size_t len;
    while (gossip_engine_next(from->engine, &peer, &buf, &len, NULL)) {
        Engram__Gossip *g = test_gossip_unpack(buf, len);
        assert_non_null(g);
        g->schema_minor = minor;
        uint8_t *out = malloc(engram__gossip__get_packed_size(g));
        assert_non_null(out);
        size_t n = engram__gossip__pack(g, out);
        if (peer == to->store.id)
            assert_int_equal(gossip_engine_receive(to->engine, from->store.id, out, n, now_ms), 0);
        free(out);
        engram__gossip__free_unpacked(g, NULL);
        free(buf);
    }
}

/*  Pull answers too go lean only to a peer whose messages say it reads that form, the digest
 *  they answer included: 22's digest that says an older minor is answered with whole notes,
 *  its next one, the first to say the current minor, with lean notes. */
static void test_lean_answers_only_to_peers_that_read_them(void **state)
{
    (void)state;
    node_t nodes[2];
    s_lean_mesh(nodes, 2);
    size_t len = 0;
    s_write_noted(&nodes[0], "run:a", "k", 8);
    s_run(nodes, 2, s_drop_all); /* the push is lost: 22 pulls what it lacks */
    assert_int_equal(gossip_engine_ask_digests(nodes[1].engine, 0, 1000), 0);
    s_deliver_as_minor(&nodes[1], &nodes[0], GOSSIP_LEAN_NOTES_MINOR - 1, 1000);
    s_deliver_as_minor(&nodes[0], &nodes[1], GOSSIP_LEAN_NOTES_MINOR - 1, 1000);
    assert_non_null(s_note_at(&nodes[1], "run:a", (crdt_dot_t){11, 1}, &len));
    assert_int_equal(len, 8);
    assert_int_equal(gossip_engine_stats(nodes[0].engine)->lean_deltas, 0);
    s_run_at(nodes, 2, s_drop_all, 1000); /* 22's acks say nothing to 11 */
    s_write_noted(&nodes[0], "run:a", "j", 8);
    s_run(nodes, 2, s_drop_all);
    assert_int_equal(gossip_engine_stats(nodes[0].engine)->lean_deltas, 0); /* 22 said minor 1 */
    assert_int_equal(gossip_engine_ask_digests(nodes[1].engine, 4000, 5000), 0); /* since 4 s */
    s_run_at(nodes, 2, NULL, 5000);
    const uint8_t *note = s_note_at(&nodes[1], "run:a", (crdt_dot_t){11, 2}, &len);
    assert_true(s_lean_for(note, len, ENGRAM_SCHEMA_MINOR));
    assert_int_equal(gossip_engine_stats(nodes[0].engine)->lean_deltas, 1); /* the answer */
    assert_int_equal(gossip_engine_stats(nodes[0].engine)->pulls_answered, 2);
    s_pair_fini(nodes);
}

/*  One push goes to each peer in the wire form of the schema minor its messages give: 22, heard
 *  at the minor before this node's, gets that minor's form; 33, heard at a minor newer than
 *  this node's, gets this node's newest. */
static void test_push_forms_per_reader_minor(void **state)
{
    (void)state;
    node_t nodes[3];
    s_lean_mesh(nodes, 3);
    size_t len = 0;
    s_write_noted(&nodes[1], "team:b", "k", 8); /* 22 and 33 tell 11 their minors */
    s_write_noted(&nodes[2], "user:c", "k", 8);
    s_deliver_as_minor(&nodes[1], &nodes[0], ENGRAM_SCHEMA_MINOR - 1, 1000);
    s_deliver_as_minor(&nodes[2], &nodes[0], ENGRAM_SCHEMA_MINOR + 1, 1000);
    s_run_at(nodes, 3, s_drop_all, 1000); /* their acks from 11 go nowhere */
    s_write_noted(&nodes[0], "run:a", "k", 8);
    uint64_t peer;
    uint8_t *buf;
    size_t n;
    while (gossip_engine_next(nodes[0].engine, &peer, &buf, &n, NULL)) {
        node_t *to = peer == 22 ? &nodes[1] : &nodes[2];
        assert_int_equal(gossip_engine_receive(to->engine, 11, buf, n, 1000), 0);
        free(buf);
    }
    const uint8_t *note = s_note_at(&nodes[1], "run:a", (crdt_dot_t){11, 1}, &len);
    assert_true(s_lean_for(note, len, ENGRAM_SCHEMA_MINOR - 1));
    note = s_note_at(&nodes[2], "run:a", (crdt_dot_t){11, 1}, &len);
    assert_true(s_lean_for(note, len, ENGRAM_SCHEMA_MINOR));
    assert_int_equal(gossip_engine_stats(nodes[0].engine)->lean_deltas, 2);
    for (int i = 0; i < 3; i++)
        s_node_fini(&nodes[i]);
}

/*  A push goes compressed only to a peer whose messages say it reads compressed ones (schema
 *  minor GOSSIP_COMPRESSED_MINOR or later), and only when that makes it shorter: not to one
 *  never heard from, not when it is short, not when it would shrink past
 *  GOSSIP_COMPRESS_MAX_RATIO (the receiver would refuse it), not to one whose latest message
 *  gives an older minor. Compressed or not, the write arrives, and bytes_sent counts what went on
 * the wire. */
static void test_compression_only_to_peers_that_read_it(void **state)
{
    (void)state;
    node_t nodes[2];
    s_pair(nodes, 65536);
    const gossip_stats_t *st = gossip_engine_stats(nodes[0].engine);
    char text[600];
    for (size_t i = 0; i < sizeof text - 1; i++)
        text[i] = "the quick brown fox jumps over the lazy dog "[i % 44];
    text[sizeof text - 1] = '\0';
    s_write(&nodes[0], "run:a", "k1", text); /* 22 never spoke: as it is */
    s_run(nodes, 2, NULL);
    assert_int_equal(st->compressed_sent, 0);
    assert_true(s_same(&nodes[0], &nodes[1]));

    s_write(&nodes[0], "run:a", "k2", "short"); /* 22's ack said minor 3, but the push is short */
    s_run(nodes, 2, NULL);
    assert_int_equal(st->compressed_sent, 0);
    assert_true(s_same(&nodes[0], &nodes[1]));

    uint64_t before = st->bytes_sent;
    s_write(&nodes[0], "run:a", "k3", text);
    s_run(nodes, 2, NULL);
    assert_int_equal(st->compressed_sent, 1);
    assert_true(st->compression_saved > 400); /* 600 bytes of a repeated phrase */
    assert_true(st->bytes_sent - before < 300);
    assert_true(s_same(&nodes[0], &nodes[1]));
    assert_int_equal(gossip_engine_stats(nodes[1].engine)->bad_messages, 0);

    /* a value that would shrink past GOSSIP_COMPRESS_MAX_RATIO goes as it is, and arrives */
    char *flat = malloc(20001);
    assert_non_null(flat);
    memset(flat, 'x', 20000);
    flat[20000] = '\0';
    s_write(&nodes[0], "run:a", "flat", flat);
    free(flat);
    s_run(nodes, 2, NULL);
    assert_int_equal(st->compressed_sent, 1);
    assert_true(s_same(&nodes[0], &nodes[1]));

    /* 22 speaks an older minor: its next push goes as it is */
    s_write(&nodes[1], "run:a", "from22", "v");
    s_deliver_as_minor(&nodes[1], &nodes[0], GOSSIP_COMPRESSED_MINOR - 1, 1000);
    s_write(&nodes[0], "run:a", "k4", text);
    uint64_t peer;
    uint8_t *buf;
    size_t len;
    int pushes = 0;
    while (
        gossip_engine_next(nodes[0].engine, &peer, &buf, &len, NULL)) { /* its ack, then the push */
        Engram__Gossip *g = engram__gossip__unpack(NULL, len, buf);
        assert_non_null(g);
        assert_int_not_equal(g->body_case, ENGRAM__GOSSIP__BODY_COMPRESSED);
        pushes += g->body_case == ENGRAM__GOSSIP__BODY_PUSH;
        engram__gossip__free_unpacked(g, NULL);
        assert_int_equal(gossip_engine_receive(nodes[1].engine, 11, buf, len, 1000), 0);
        free(buf);
    }
    assert_int_equal(pushes, 1);
    s_run(nodes, 2, NULL);
    assert_int_equal(st->compressed_sent, 1);
    assert_true(s_same(&nodes[0], &nodes[1]));
    s_pair_fini(nodes);
}

/*  A restarted node catching up gets the gap once: 33 missed twenty writes that 11 and 22 both
 *  hold, in two scopes, and its digests at start reach both (twice, as the dot check asks
 *  again before the answers came), but only one of them sends the deltas, once (one answer
 *  per scope applied, not one per peer or per ask) while both send their digests (both
 *  heard). Then 22 holds
 *  a write nobody else has: asked again, 33 gets the gap from one peer and the rest once that
 *  answer is in, and every node converges. */
static void test_restart_pulls_the_gap_from_one_peer(void **state)
{
    (void)state;
    node_t nodes[3];
    s_trio(nodes);
    s_write(&nodes[2], "run:a", "seen", "by all");
    s_run(nodes, 3, NULL);
    s_write_keys(&nodes[0], 20, NULL, "missed by 33");
    s_run(nodes, 3, s_drop_to_33);
    assert_true(s_same(&nodes[0], &nodes[1]));
    assert_false(s_same(&nodes[0], &nodes[2]));

    s_restart(&nodes[2], 65536);
    assert_int_equal(gossip_engine_ask_digests(nodes[2].engine, 1000, 1000), 0);
    /* asked again before any answer came (the dot check re-asks every DOT_ASK_MS) */
    assert_int_equal(gossip_engine_ask_digests(nodes[2].engine, 1000, 1000), 0);
    s_run(nodes, 3, NULL);
    const gossip_stats_t *st = gossip_engine_stats(nodes[2].engine);
    assert_int_equal(st->pull_deltas_applied, 2); /* one answer per scope, from one peer */
    assert_int_equal(gossip_engine_stats(nodes[0].engine)->pulls_answered +
                         gossip_engine_stats(nodes[1].engine)->pulls_answered,
                     2);
    unsigned members = 0;
    assert_int_equal(gossip_engine_heard_since(nodes[2].engine, 1000, &members), 2);
    for (int i = 0; i < 2; i++)
        assert_true(s_same(&nodes[i], &nodes[2]));

    s_write(&nodes[1], "run:a", "only", "on 22");
    s_run(nodes, 3, s_drop_all);
    s_write(&nodes[0], "run:a", "k0", "missed by 33 again");
    s_run(nodes, 3, s_drop_to_33);
    s_restart(&nodes[2], 65536);
    assert_int_equal(gossip_engine_ask_digests(nodes[2].engine, 2000, 2000), 0);
    s_tick_run(nodes, 3, 2000, 4000);
    for (int i = 0; i < 2; i++)
        assert_true(s_same(&nodes[i], &nodes[2]));
    for (int i = 0; i < 3; i++)
        s_node_fini(&nodes[i]);
}

/*  Delivers n's queued messages to the others, except the digest that asks for deltas, which
 *  is lost; returns the peer it was for (0: none). */
static uint64_t s_lose_pull(node_t *nodes, int count, node_t *n, uint64_t now)
{
    uint64_t to, lost = 0;
    uint8_t *buf;
    size_t len;
    while (gossip_engine_next(n->engine, &to, &buf, &len, NULL)) {
        Engram__Gossip *g = test_gossip_unpack(buf, len);
        assert_non_null(g);
        bool pull = g->body_case == ENGRAM__GOSSIP__BODY_DIGEST && !g->digest->no_deltas;
        engram__gossip__free_unpacked(g, NULL);
        for (int t = 0; t < count && !pull; t++)
            if (nodes[t].store.id == to)
                gossip_engine_receive(nodes[t].engine, n->store.id, buf, len, now);
        lost = pull ? to : lost;
        free(buf);
    }
    return lost;
}

/*  An ask that never left (the transport had no connection yet, gossip_engine_unsent) is not
 *  awaited: asked again before the wait would have run out, the peer sends the gap at once.
 *  Without that, the re-ask gets its digest only, and the gap a second ask later. */
static void test_unsent_ask_is_not_awaited(void **state)
{
    (void)state;
    node_t nodes[3];
    s_trio(nodes);
    s_write_keys(&nodes[0], 10, "run:a", "missed by 33");
    s_run(nodes, 3, s_drop_to_33);
    s_restart(&nodes[2], 65536);
    assert_int_equal(gossip_engine_ask_digests(nodes[2].engine, 1000, 1000), 0);
    uint64_t lost = s_lose_pull(nodes, 3, &nodes[2], 1000); /* the other sends its digest */
    assert_true(lost == 11 || lost == 22);
    s_run_at(nodes, 3, NULL, 1000);
    assert_false(s_same(&nodes[0], &nodes[2]));
    gossip_engine_unsent(nodes[2].engine, lost);
    uint64_t digests = gossip_engine_stats(nodes[2].engine)->digests_sent;
    assert_int_equal(gossip_engine_ask_digests(nodes[2].engine, 1000, 1250), 0);
    s_run_at(nodes, 3, NULL, 1250);
    assert_true(s_same(&nodes[0], &nodes[2]));
    /* the re-ask itself pulled: no second ask after 11's digest showed what it holds */
    assert_int_equal(gossip_engine_stats(nodes[2].engine)->digests_sent - digests, 1);
    assert_int_equal(gossip_engine_stats(nodes[2].engine)->pull_deltas_applied, 1);
    for (int i = 0; i < 3; i++)
        s_node_fini(&nodes[i]);
}

/*  The dot check's pull: node 11 comes back from a copy taken after its first write; 22 holds
 *  its later two, 33 missed them. The member asked for the deltas at start is 33 (11's turn),
 *  so once both answered 11 still lacks its own dots (holds_unseen); pull_unseen asks 22,
 *  which holds them, and they come back. */
static void test_pull_unseen_brings_lost_dots_back(void **state)
{
    (void)state;
    node_t nodes[3];
    s_trio(nodes);
    s_write(&nodes[0], "run:a", "k1", "one");
    s_run(nodes, 3, NULL);
    crdt_scope_t *copy = crdt_scope_dup(nodes[0].store.scopes[0], 11);
    s_write(&nodes[0], "run:a", "k2", "two");
    s_write(&nodes[0], "run:a", "k3", "three");
    s_run(nodes, 3, s_drop_to_33);
    crdt_scope_destroy(&nodes[0].store.scopes[0]);
    nodes[0].store.scopes[0] = copy; /* restored: the copy's state, a new engine */
    s_restart(&nodes[0], 65536);
    assert_int_equal(gossip_engine_ask_digests(nodes[0].engine, 1000, 1000), 0);
    s_run_at(nodes, 3, NULL, 1000);
    assert_int_equal(gossip_engine_heard_since(nodes[0].engine, 1000, NULL), 2);
    assert_true(gossip_engine_holds_unseen(nodes[0].engine, 11));
    assert_int_equal(gossip_engine_pull_unseen(nodes[0].engine, 11, 1250), 0);
    s_run_at(nodes, 3, NULL, 1250);
    assert_false(gossip_engine_holds_unseen(nodes[0].engine, 11));
    assert_int_equal(crdt_ctx_max(crdt_scope_ctx(nodes[0].store.scopes[0]), 11), 3);
    for (int i = 0; i < 3; i++)
        s_node_fini(&nodes[i]);
}

/*  Periodic digests go round: in each N - 1 intervals every other member gets exactly one (at
 *  random, eight picks among eight members all differ one time in 400), so every member learns
 *  within a round what this node holds, and this node what it holds. */
static void test_periodic_digests_reach_every_member_each_round(void **state)
{
    (void)state;
    enum { N = 9 };
    node_t nodes[N];
    s_mesh(nodes, N);
    s_write(&nodes[0], "run:a", "k", "v");
    s_run(nodes, N, NULL);
    int heard[N] = {0};
    uint64_t now = 1000;
    for (int round = 1; round <= 3; round++) {
        for (int tick = 0; tick < N - 1; tick++, now += 100) {
            gossip_engine_tick(nodes[0].engine, now);
            uint64_t to;
            uint8_t *buf;
            size_t len;
            while (gossip_engine_next(nodes[0].engine, &to, &buf, &len, NULL)) {
                Engram__Gossip *g = test_gossip_unpack(buf, len);
                assert_non_null(g);
                for (int t = 1; t < N; t++) {
                    if (nodes[t].store.id != to)
                        continue;
                    heard[t] += g->body_case == ENGRAM__GOSSIP__BODY_DIGEST;
                    gossip_engine_receive(nodes[t].engine, 11, buf, len, now);
                }
                engram__gossip__free_unpacked(g, NULL);
                free(buf);
            }
            s_run_at(nodes, N, NULL, now);
        }
        for (int t = 1; t < N; t++)
            assert_int_equal(heard[t], round);
    }
    for (int i = 0; i < N; i++)
        s_node_fini(&nodes[i]);
}

static bool s_drop_to_laggards(int index, uint64_t to)
{
    (void)index;
    return to == 110 || to == 220;
}

/*  The stable cut of a larger cluster, where most members hold one pooled context and the
 *  cut skips a copy it met already: it is still the meet of every member's context, held back
 *  by a laggard in the middle of the members and by one after many equal ones. */
static void test_stable_cut_meets_every_member(void **state)
{
    (void)state;
    enum { N = 20 };
    node_t nodes[N];
    s_mesh(nodes, N);
    s_write(&nodes[0], "run:a", "k", "one");
    s_tick_run(nodes, N, 1000, 6000); /* more than two rounds of digests */
    const crdt_ctx_t *ours = crdt_scope_ctx(nodes[0].store.scopes[0]);
    crdt_ctx_t *cut = gossip_engine_stable_cut(nodes[0].engine, "run:a");
    assert_non_null(cut);
    assert_true(crdt_ctx_equal(cut, ours));
    crdt_ctx_destroy(&cut);
    crdt_ctx_t *before = crdt_ctx_dup(ours);
    /* 110 (the 10th member) and 220 (the last, after 18 equal contexts) miss two writes */
    s_write(&nodes[0], "run:a", "k", "two");
    s_write(&nodes[0], "run:a", "j", "three");
    for (uint64_t now = 6000; now < 11000; now += 100) {
        for (int i = 0; i < N; i++)
            gossip_engine_tick(nodes[i].engine, now);
        s_run_at(nodes, N, s_drop_to_laggards, now);
    }
    crdt_ctx_t *model = crdt_ctx_dup(crdt_scope_ctx(nodes[0].store.scopes[0]));
    for (int i = 1; i < N; i++) {
        const crdt_ctx_t *theirs =
            gossip_engine_peer_ctx(nodes[0].engine, nodes[i].store.id, "run:a");
        assert_non_null(theirs);
        crdt_ctx_t *meet = crdt_ctx_meet(model, theirs);
        crdt_ctx_destroy(&model);
        model = meet;
    }
    cut = gossip_engine_stable_cut(nodes[0].engine, "run:a");
    assert_non_null(cut);
    assert_true(crdt_ctx_equal(cut, model));
    assert_true(crdt_ctx_equal(cut, before));
    crdt_ctx_destroy(&cut);
    /* 220 is decommissioned: 110 alone holds the cut back, until it catches up */
    assert_int_equal(gossip_engine_leave(nodes[0].engine, 220, (const uint8_t *)"admin", 5), 0);
    cut = gossip_engine_stable_cut(nodes[0].engine, "run:a");
    assert_true(crdt_ctx_equal(cut, before));
    crdt_ctx_destroy(&cut);
    s_tick_run(nodes, N, 11000, 16000);
    cut = gossip_engine_stable_cut(nodes[0].engine, "run:a");
    assert_non_null(cut);
    assert_true(crdt_ctx_equal(cut, crdt_scope_ctx(nodes[0].store.scopes[0])));
    crdt_ctx_destroy(&cut);
    crdt_ctx_destroy(&model);
    crdt_ctx_destroy(&before);
    for (int i = 0; i < N; i++)
        s_node_fini(&nodes[i]);
}

/*  Hooks: the only valid card, and the only valid statement, is "ok"; changed counts LEFT
 *  records. */
static bool s_ok(void *arg, uint64_t id, const uint8_t *bytes, size_t len)
{
    (void)arg, (void)id;
    return len == 2 && memcmp(bytes, "ok", 2) == 0;
}

static void s_count_left(void *arg, const gossip_member_t *member)
{
    *(int *)arg += member->state == GOSSIP_LEFT;
}

/*  The engine's membership is its SWIM object's (swim_test.c covers SWIM itself): the hooks
 *  decide (admit refuses 33's card, verify_leave 22's record of a forged decommission of 44,
 *  changed hears of 22's), what SWIM refuses is counted in the engine's stats by kind, SWIM's
 *  counters and health show there (on a stats pointer taken once), and a member that turns
 *  LEFT loses what it was known to hold, no longer counts as a member, and is told so. */
static void test_membership_runs_through_swim(void **state)
{
    (void)state;
    node_t nodes[3];
    s_pair(nodes, 65536);
    int lefts = 0;
    gossip_hooks_t hooks = {s_ok, s_ok, s_count_left, &lefts};
    gossip_engine_set_hooks(nodes[0].engine, &hooks);
    s_node_card(&nodes[2], 33, 65536, "no");
    gossip_member_t seed = {.id = 11, .state = GOSSIP_ALIVE, .endpoint = ""};
    assert_int_equal(gossip_engine_learn(nodes[2].engine, &seed), 0);
    assert_int_equal(gossip_engine_leave(nodes[1].engine, 44, (const uint8_t *)"forged", 6), 0);
    s_write(&nodes[0], "run:a", "k", "v");
    s_tick_run(nodes, 3, 1000, 6000);
    const gossip_stats_t *st = gossip_engine_stats(nodes[0].engine);
    assert_true(st->swim.pings > 0 && st->swim.pongs > 0 && st->swim.syncs > 0);
    assert_int_equal(gossip_engine_health(nodes[0].engine), 0);
    assert_true(st->bad_card > 0);           /* 33's own SWIM messages */
    assert_true(st->bad_unknown_sender > 0); /* 33's digests, which carry no card */
    assert_true(st->bad_leave > 0);          /* 22's record of 44 */
    gossip_member_t m;
    assert_false(gossip_engine_member(nodes[0].engine, 33, &m));
    assert_false(gossip_engine_member(nodes[0].engine, 44, &m));
    assert_non_null(gossip_engine_peer_ctx(nodes[0].engine, 22, "run:a"));
    unsigned members = 0;
    gossip_engine_heard_since(nodes[0].engine, 0, &members);
    assert_int_equal(members, 1);

    assert_int_equal(lefts, 0);
    assert_int_equal(gossip_engine_leave(nodes[0].engine, 22, (const uint8_t *)"ok", 2), 0);
    assert_int_equal(lefts, 1);
    assert_null(gossip_engine_peer_ctx(nodes[0].engine, 22, "run:a"));
    gossip_engine_heard_since(nodes[0].engine, 0, &members);
    assert_int_equal(members, 0);
    uint64_t left_before = st->bad_left_sender;
    s_tick_run(nodes, 3, 6000, 8000);
    assert_true(st->bad_left_sender > left_before); /* 22 spoke until it was told */
    assert_true(gossip_engine_member(nodes[1].engine, 22, &m));
    assert_int_equal(m.state, GOSSIP_LEFT);
    assert_int_equal(st->bad_messages,
                     st->bad_card + st->bad_unknown_sender + st->bad_leave + st->bad_left_sender);
    for (int i = 0; i < 3; i++)
        s_node_fini(&nodes[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_reaches_peer),
        cmocka_unit_test(test_held_back_push_pulls_the_gap),
        cmocka_unit_test(test_local_operations_coalesce),
        cmocka_unit_test(test_coalesced_pushes_keep_the_budget),
        cmocka_unit_test(test_held_back_pushes_ask_one_peer),
        cmocka_unit_test(test_push_reaches_a_suspect_member),
        cmocka_unit_test(test_refused_answer_is_not_asked_again_at_once),
        cmocka_unit_test(test_remote_apply_seals_the_batch),
        cmocka_unit_test(test_sealed_operations_join_into_one_push),
        cmocka_unit_test(test_drop_keeps_what_was_sealed),
        cmocka_unit_test(test_drop_keeps_messages_sealed),
        cmocka_unit_test(test_awaited_pushes_and_their_acks_are_urgent),
        cmocka_unit_test(test_new_node_pulls_everything_in_chunks),
        cmocka_unit_test(test_bad_input_changes_nothing),
        cmocka_unit_test(test_peer_knowledge_and_stable_cut),
        cmocka_unit_test(test_chunk_hash_is_checked),
        cmocka_unit_test(test_staging_is_capped_and_resends_fill_holes),
        cmocka_unit_test(test_large_answers_are_not_resent_every_tick),
        cmocka_unit_test(test_steps_never_hold_back_the_state),
        cmocka_unit_test(test_asked_digests_bring_back_lost_dots),
        cmocka_unit_test(test_restart_pulls_the_gap_from_one_peer),
        cmocka_unit_test(test_unsent_ask_is_not_awaited),
        cmocka_unit_test(test_pull_unseen_brings_lost_dots_back),
        cmocka_unit_test(test_periodic_digests_reach_every_member_each_round),
        cmocka_unit_test(test_stable_cut_meets_every_member),
        cmocka_unit_test(test_lean_notes_only_to_peers_that_read_them),
        cmocka_unit_test(test_push_forms_per_reader_minor),
        cmocka_unit_test(test_lean_answers_only_to_peers_that_read_them),
        cmocka_unit_test(test_compression_only_to_peers_that_read_it),
        cmocka_unit_test(test_acks_wait_for_the_tick_unless_awaited),
        cmocka_unit_test(test_membership_runs_through_swim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
