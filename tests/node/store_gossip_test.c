/*  Tests of node_store_gossip: engramd's RocksDB store replicating through gossip engines.
 *  Two (or three) real stores in temporary directories, ops made as the server makes them
 *  (view, mutator, node_store_apply), pushes and pulls passed by hand with random loss, one
 *  store closed and reopened in the middle: afterwards every store holds the same state per
 *  scope (compared as whole-scope views), removals included, and private scopes never leave.
 */
#include "prop.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/awset.h"
#include "crdt/counter.h"
#include "crdt/log.h"
#include "crdt/mvreg.h"
#include "engram/error.h"
#include "gossip/engine.h"
#include "node/store.h"

#define NODES 3

typedef struct {
    char dir[64];
    node_store_t *store;
    gossip_engine_t *engine;
} node_t;

static void s_open(node_t *n)
{
    char why[256];
    assert_int_equal(node_store_open(n->dir, true, &n->store, why, sizeof why), 0);
    node_store_set_min_free(n->store, 0);
    gossip_config_t config = {.node_id = node_store_replica(n->store), .fanout = 2,
                              .max_message_bytes = 2048, .seed = 3};
    n->engine = gossip_engine_new(&config, &node_store_gossip, n->store);
    assert_non_null(n->engine);
}

static void s_close(node_t *n)
{
    gossip_engine_destroy(&n->engine);
    node_store_close(&n->store);
}

static void s_connect(node_t *nodes)
{
    for (int i = 0; i < NODES; i++)
        for (int j = 0; j < NODES; j++)
            gossip_engine_add_peer(nodes[i].engine, node_store_replica(nodes[j].store));
}

/*  One random op at node n, as the server does it, handed to its engine. */
static void s_random_op(node_t *n, prop_rng_t *rng)
{
    static const char *const scopes[] = {"run:a", "team:b", "@agent-1"};
    const char *sid = scopes[prop_below(rng, 3)];
    char key[8];
    snprintf(key, sizeof key, "k%d", (int)prop_below(rng, 4));
    crdt_scope_t *view = NULL, *delta = NULL;
    unsigned types = 0;
    assert_int_equal(node_store_view(n->store, sid, key, NODE_VIEW_OBJECT, NULL, &view, &types),
                     0);
    crdt_scope_t *before = crdt_scope_dup(view, 0);
    crdt_ctx_t *deps = crdt_ctx_dup(crdt_scope_ctx(view));
    char value[32];
    snprintf(value, sizeof value, "v%d", (int)prop_below(rng, 1000));
    int rc;
    switch (prop_below(rng, 6)) {
    case 0:
        rc = crdt_mvreg_write(view, key, 1, value, strlen(value), &delta);
        break;
    case 1:
        rc = crdt_awset_add(view, key, value + (value[1] % 2), &delta); /* "vNN" or "NN" */
        break;
    case 2: {
        const char **members;
        size_t count;
        rc = crdt_awset_members(view, key, &members, &count);
        if (rc == 0) {
            rc = crdt_awset_remove(view, key, members[0], &delta);
            free(members);
        }
        break;
    }
    case 3:
        rc = crdt_counter_add(view, key, 1 + (int64_t)prop_below(rng, 5), &delta);
        break;
    case 4:
        rc = crdt_log_append(view, key, 1, value, strlen(value), &delta);
        break;
    default:
        rc = crdt_scope_forget(view, key, &delta);
    }
    if (rc == 0) {
        node_history_t history = {.op = "op", .agent = "agent-1", .user = "u", .hlc = 1};
        assert_int_equal(node_store_apply(n->store, sid, key, before, delta, &history), 0);
        if (sid[0] != '@')
            assert_int_equal(gossip_engine_local(n->engine, sid, delta, deps), 0);
    } else {
        if (rc != ENGRAM_ETYPE && rc != ENGRAM_ENOTFOUND)
            print_error("op on %s/%s failed: %s\n", sid, key, engram_strerror(rc));
        PROP_CHECK(rc == ENGRAM_ETYPE || rc == ENGRAM_ENOTFOUND);
    }
    crdt_ctx_destroy(&deps);
    crdt_scope_destroy(&delta);
    crdt_scope_destroy(&before);
    crdt_scope_destroy(&view);
}

/*  Delivers queued messages, each lost with probability loss%. */
static void s_deliver(node_t *nodes, prop_rng_t *rng, unsigned loss, uint64_t now)
{
    for (bool any = true; any;) {
        any = false;
        for (int from = 0; from < NODES; from++) {
            uint64_t to;
            uint8_t *buf;
            size_t len;
            while (gossip_engine_next(nodes[from].engine, &to, &buf, &len)) {
                any = true;
                for (int t = 0; t < NODES && !prop_chance(rng, loss); t++)
                    if (node_store_replica(nodes[t].store) == to)
                        gossip_engine_receive(nodes[t].engine,
                                              node_store_replica(nodes[from].store), buf, len,
                                              now);
                free(buf);
            }
        }
    }
}

/*  The whole scope of a store as a kernel scope (the catch-up delta from nothing). */
static crdt_scope_t *s_whole(node_t *n, const char *scope)
{
    crdt_ctx_t *empty = crdt_ctx_new();
    crdt_scope_t *whole = node_store_gossip.delta_since(n->store, scope, empty);
    crdt_ctx_destroy(&empty);
    return whole;
}

static void test_stores_converge_through_gossip(void **state)
{
    (void)state;
    int cases = prop_cases(12);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("store_gossip", c);
        node_t nodes[NODES];
        for (int i = 0; i < NODES; i++) {
            snprintf(nodes[i].dir, sizeof nodes[i].dir, "/tmp/engram-sg-XXXXXX");
            assert_non_null(mkdtemp(nodes[i].dir));
            s_open(&nodes[i]);
        }
        s_connect(nodes);
        uint64_t now = 1000;
        for (int step = 0; step < 120; step++) {
            s_random_op(&nodes[prop_below(&rng, NODES)], &rng);
            if (prop_chance(&rng, 30))
                gossip_engine_tick(nodes[prop_below(&rng, NODES)].engine, now += 100);
            s_deliver(nodes, &rng, 25, now);
            if (step == 60) { /* a restart: replicated state must be on disk */
                int r = (int)prop_below(&rng, NODES);
                assert_int_equal(node_store_sync(nodes[r].store), 0);
                s_close(&nodes[r]);
                s_open(&nodes[r]);
                s_connect(nodes);
            }
        }
        /* Heal: no loss, a few rounds of ticks. */
        for (int round = 0; round < 6; round++) {
            for (int i = 0; i < NODES; i++)
                gossip_engine_tick(nodes[i].engine, now += 100);
            s_deliver(nodes, &rng, 0, now);
        }
        static const char *const shared[] = {"run:a", "team:b"};
        for (int s = 0; s < 2; s++) {
            crdt_scope_t *first = s_whole(&nodes[0], shared[s]);
            for (int i = 1; i < NODES; i++) {
                crdt_scope_t *other = s_whole(&nodes[i], shared[s]);
                PROP_CHECK((first == NULL) == (other == NULL));
                if (first && other) {
                    PROP_CHECK(crdt_scope_equal(first, other));
                    PROP_CHECK(crdt_ctx_is_vv(crdt_scope_ctx(other)));
                }
                crdt_scope_destroy(&other);
            }
            crdt_scope_destroy(&first);
        }
        /* Private scopes never left their node: nobody lists or serves them. */
        for (int i = 0; i < NODES; i++) {
            PROP_CHECK(node_store_gossip.ctx(nodes[i].store, "@agent-1") == NULL);
            PROP_CHECK(s_whole(&nodes[i], "@agent-1") == NULL);
            PROP_CHECK(node_store_gossip.apply(nodes[i].store, "@agent-1", NULL) ==
                       ENGRAM_ESCOPE);
        }
        for (int i = 0; i < NODES; i++) {
            s_close(&nodes[i]);
            zdir_t *dir = zdir_new(nodes[i].dir, NULL);
            zdir_remove(dir, true);
            zdir_destroy(&dir);
            assert_false(zsys_file_exists(nodes[i].dir));
        }
    }
}

int main(void)
{
    zsys_handler_set(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stores_converge_through_gossip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
