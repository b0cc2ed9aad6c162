/*  Tests of the engine's SWIM membership (gossip/swim.c) on a tiny hand-driven network with a
 *  clock: a joiner learns everyone through one seed (the canonical use), a node that stops
 *  answering becomes suspect then dead, a node that comes back refutes by incarnation, LEFT
 *  absorbs everything and needs a statement verify_leave accepts, a card admit refuses keeps
 *  its node out, ping-req carries a probe around a cut link, nacks keep healthy probers'
 *  local health at 0, and confirmations shorten suspicion (Lifeguard). The stores are empty: this is
 *  membership only (engine_test.c covers the data plane; tests/sim/ all of it under faults).
 */
#include "prop.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/error.h"
#include "gossip/engine.h"
#include "proto/gossip.pb-c.h"

#define MAXN    6
#define STEP_MS 100

typedef struct {
    uint64_t id;
    gossip_engine_t *engine; /* NULL: never started */
    bool down;               /* not ticked; messages to it are lost */
    bool bad_card;           /* presents a card admit refuses */
    int suspected, died;     /* changed() calls that reported another member so */
} snode_t;

typedef struct {
    snode_t nodes[MAXN];
    int count;
    uint64_t now;
    bool (*cut)(uint64_t from, uint64_t to); /* NULL: no link cut */
} net_t;

static void s_each_scope(void *store, void (*fn)(void *arg, const char *scope), void *arg)
{
    (void)store, (void)fn, (void)arg;
}

static const crdt_ctx_t *s_ctx(void *store, const char *scope)
{
    (void)store, (void)scope;
    return NULL;
}

static crdt_scope_t *s_delta_since(void *store, const char *scope, const crdt_ctx_t *since)
{
    (void)store, (void)scope, (void)since;
    return NULL;
}

static int s_apply(void *store, const char *scope, const crdt_scope_t *delta)
{
    (void)store, (void)scope, (void)delta;
    return ENGRAM_EINVAL;
}

static const gossip_store_t s_empty_store = {s_each_scope, s_ctx, s_delta_since, s_apply};

static void s_card(uint64_t id, char *out, size_t cap)
{
    snprintf(out, cap, "card-%" PRIu64, id);
}

/*  A card is "card-<id>"; a statement "leave-<id>". */
static bool s_admit(void *arg, uint64_t id, const uint8_t *card, size_t len)
{
    (void)arg;
    char want[32];
    s_card(id, want, sizeof want);
    return len == strlen(want) && memcmp(card, want, len) == 0;
}

static bool s_verify_leave(void *arg, uint64_t id, const uint8_t *stmt, size_t len)
{
    (void)arg;
    char want[32];
    snprintf(want, sizeof want, "leave-%" PRIu64, id);
    return len == strlen(want) && memcmp(stmt, want, len) == 0;
}

static void s_changed(void *arg, const gossip_member_t *member)
{
    snode_t *n = arg;
    assert_non_null(member->endpoint);
    if (member->id == n->id)
        return;
    n->suspected += member->state == GOSSIP_SUSPECT;
    n->died += member->state == GOSSIP_DEAD;
}

static void s_start(net_t *net, int i, uint64_t incarnation)
{
    snode_t *n = &net->nodes[i];
    char card[32], endpoint[32];
    s_card(n->bad_card ? n->id + 1 : n->id, card, sizeof card);
    snprintf(endpoint, sizeof endpoint, "tcp://n%" PRIu64 ":7101", n->id);
    gossip_config_t config = {.node_id = n->id,
                              .fanout = 2,
                              .max_message_bytes = 65536,
                              .seed = 7 + n->id,
                              .endpoint = endpoint,
                              .card = (const uint8_t *)card,
                              .card_len = strlen(card),
                              .incarnation = incarnation};
    gossip_engine_destroy(&n->engine);
    n->engine = gossip_engine_new(&config, &s_empty_store, NULL);
    assert_non_null(n->engine);
    gossip_hooks_t hooks = {s_admit, s_verify_leave, s_changed, n};
    gossip_engine_set_hooks(n->engine, &hooks);
    n->down = false;
}

static void s_net(net_t *net, int count)
{
    memset(net, 0, sizeof *net);
    net->count = count;
    net->now = 1000;
    for (int i = 0; i < count; i++) {
        net->nodes[i].id = 100 + (uint64_t)i;
        s_start(net, i, 1);
    }
}

static void s_net_fini(net_t *net)
{
    for (int i = 0; i < net->count; i++)
        gossip_engine_destroy(&net->nodes[i].engine);
}

/*  Node i learns node j as a seed (id, endpoint and card as --join would give them). */
static void s_learn(net_t *net, int i, int j)
{
    char card[32];
    s_card(net->nodes[j].id, card, sizeof card);
    gossip_member_t seed = {.id = net->nodes[j].id,
                            .state = GOSSIP_ALIVE,
                            .endpoint = "tcp://seed",
                            .card = (const uint8_t *)card,
                            .card_len = strlen(card)};
    assert_int_equal(gossip_engine_learn(net->nodes[i].engine, &seed), 0);
}

static int s_index(net_t *net, uint64_t id)
{
    for (int i = 0; i < net->count; i++)
        if (net->nodes[i].id == id)
            return i;
    return -1;
}

/*  Delivers every queued message until none is left. */
static void s_deliver(net_t *net)
{
    for (bool any = true; any;) {
        any = false;
        for (int i = 0; i < net->count; i++) {
            uint64_t to;
            uint8_t *buf;
            size_t len;
            while (net->nodes[i].engine &&
                   gossip_engine_next(net->nodes[i].engine, &to, &buf, &len)) {
                any = true;
                int t = s_index(net, to);
                if (t >= 0 && !net->nodes[i].down && !net->nodes[t].down && net->nodes[t].engine &&
                    !(net->cut && net->cut(net->nodes[i].id, to)))
                    gossip_engine_receive(net->nodes[t].engine, net->nodes[i].id, buf, len,
                                          net->now);
                free(buf);
            }
        }
    }
}

/*  Runs ms of time: every STEP_MS each node that is up ticks, then everything is delivered. */
static void s_run(net_t *net, uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t += STEP_MS) {
        net->now += STEP_MS;
        for (int i = 0; i < net->count; i++)
            if (!net->nodes[i].down && net->nodes[i].engine)
                gossip_engine_tick(net->nodes[i].engine, net->now);
        s_deliver(net);
    }
}

/*  The state of node j in node i's view, or -1 when i does not know j. */
static int s_state(net_t *net, int i, int j)
{
    gossip_member_t m;
    if (!gossip_engine_member(net->nodes[i].engine, net->nodes[j].id, &m))
        return -1;
    return (int)m.state;
}

static bool s_all_alive(net_t *net, int count)
{
    for (int i = 0; i < count; i++)
        for (int j = 0; j < count; j++)
            if (s_state(net, i, j) != GOSSIP_ALIVE)
                return false;
    return true;
}

/*  Every node knows only node 0; node 0 knows nobody. */
static void s_join_all(net_t *net)
{
    for (int i = 1; i < net->count; i++)
        s_learn(net, i, 0);
    s_run(net, 10000);
    assert_true(s_all_alive(net, net->count));
}

typedef struct {
    int count;
    bool saw_self;
    bool endpoints_ok;
} s_visit_t;

static void s_visit(void *arg, const gossip_member_t *m)
{
    s_visit_t *v = arg;
    v->count++;
    char want[32];
    snprintf(want, sizeof want, "tcp://n%" PRIu64 ":7101", m->id);
    v->endpoints_ok = v->endpoints_ok && strcmp(m->endpoint, want) == 0 && m->card_len > 0;
}

/*  The canonical use: five nodes that each know one seed end up knowing everyone, with the
 *  endpoints and cards the members announced themselves. */
static void test_joiner_learns_everyone_through_one_seed(void **state)
{
    (void)state;
    net_t net;
    s_net(&net, 5);
    for (int i = 1; i < net.count; i++)
        s_learn(&net, i, 0);
    assert_int_equal(s_state(&net, 4, 3), -1);
    s_run(&net, 10000);
    assert_true(s_all_alive(&net, 5));
    for (int i = 0; i < net.count; i++) {
        s_visit_t v = {0, false, true};
        gossip_engine_each_member(net.nodes[i].engine, s_visit, &v);
        assert_int_equal(v.count, 5);
        assert_true(v.endpoints_ok); /* the seed's "tcp://seed" was replaced by its own */
        assert_true(gossip_engine_stats(net.nodes[i].engine)->pings > 0);
        /* While they join, digests reach members that do not know their sender yet (digests
         * carry no card): dropped, and nothing else is. */
        const gossip_stats_t *st = gossip_engine_stats(net.nodes[i].engine);
        assert_int_equal(st->bad_messages, st->bad_unknown_sender);
    }
    s_net_fini(&net);
}

/*  A node that stops answering is suspected, then declared dead, by every other. */
static void test_silent_node_becomes_suspect_then_dead(void **state)
{
    (void)state;
    net_t net;
    s_net(&net, 4);
    s_join_all(&net);
    net.nodes[3].down = true;
    s_run(&net, 3000);
    bool suspect_seen = false;
    for (int i = 0; i < 3; i++)
        suspect_seen = suspect_seen || s_state(&net, i, 3) == GOSSIP_SUSPECT;
    assert_true(suspect_seen);
    s_run(&net, 30000);
    uint64_t suspects = 0, deaths = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s_state(&net, i, 3), GOSSIP_DEAD);
        assert_true(net.nodes[i].suspected > 0 && net.nodes[i].died > 0);
        for (int j = 0; j < 3; j++)
            assert_int_equal(s_state(&net, i, j), GOSSIP_ALIVE);
        suspects += gossip_engine_stats(net.nodes[i].engine)->suspects;
        deaths += gossip_engine_stats(net.nodes[i].engine)->deaths;
    }
    assert_true(suspects > 0 && deaths > 0);
    s_net_fini(&net);
}

/*  A node cut off long enough to be declared dead comes back: it hears of its death and
 *  refutes it with a higher incarnation. A restarted node (new engine, a later start time as
 *  incarnation) is ALIVE again too, knowing only its seed. */
static void test_refutation_by_incarnation(void **state)
{
    (void)state;
    net_t net;
    s_net(&net, 4);
    s_join_all(&net);
    net.nodes[3].down = true;
    s_run(&net, 40000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(s_state(&net, i, 3), GOSSIP_DEAD);
    gossip_member_t before;
    assert_true(gossip_engine_member(net.nodes[3].engine, net.nodes[3].id, &before));
    net.nodes[3].down = false;
    s_run(&net, 20000);
    assert_true(s_all_alive(&net, 4));
    gossip_member_t after;
    assert_true(gossip_engine_member(net.nodes[0].engine, net.nodes[3].id, &after));
    assert_true(after.incarnation > before.incarnation);
    assert_true(gossip_engine_stats(net.nodes[3].engine)->refutes > 0);

    /* A crash and restart: a new engine starting at a later incarnation, knowing one seed. */
    net.nodes[2].down = true;
    s_run(&net, 40000);
    assert_int_equal(s_state(&net, 0, 2), GOSSIP_DEAD);
    s_start(&net, 2, net.now);
    s_learn(&net, 2, 0);
    s_run(&net, 20000);
    assert_true(s_all_alive(&net, 4));
    s_net_fini(&net);
}

/*  Crafts a GossipMembers message carrying one record ("" endpoint: none). */
static uint8_t *s_members_msg_by(uint64_t sender, uint64_t id, uint64_t incarnation,
                                 uint32_t state, uint64_t suspector, const char *endpoint,
                                 const char *card, const char *leave, size_t *len)
{
    char sender_card[32];
    s_card(sender, sender_card, sizeof sender_card);
    Engram__GossipMember from = ENGRAM__GOSSIP_MEMBER__INIT, record = ENGRAM__GOSSIP_MEMBER__INIT;
    from.id = sender;
    from.incarnation = 1;
    from.endpoint = "";
    from.card = (ProtobufCBinaryData){strlen(sender_card), (uint8_t *)sender_card};
    record.id = id;
    record.incarnation = incarnation;
    record.state = state;
    record.endpoint = (char *)endpoint;
    record.card = (ProtobufCBinaryData){strlen(card), (uint8_t *)card};
    record.leave = (ProtobufCBinaryData){strlen(leave), (uint8_t *)leave};
    record.suspector = suspector;
    Engram__GossipMember *ptr = &record;
    Engram__GossipMembers body = ENGRAM__GOSSIP_MEMBERS__INIT;
    body.sender = &from;
    body.members = &ptr;
    body.n_members = 1;
    Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
    msg.schema_major = 1;
    msg.body_case = ENGRAM__GOSSIP__BODY_MEMBERS;
    msg.members = &body;
    *len = engram__gossip__get_packed_size(&msg);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    engram__gossip__pack(&msg, buf);
    return buf;
}

static uint8_t *s_members_msg(uint64_t sender, uint64_t id, uint64_t incarnation, uint32_t state,
                              const char *endpoint, const char *card, const char *leave,
                              size_t *len)
{
    return s_members_msg_by(sender, id, incarnation, state, 0, endpoint, card, leave, len);
}

/*  A member relaying a record about another cannot redirect it (its endpoint changes only by
 *  its own word), and an incarnation no one could refute past is refused. */
static void test_relayed_records_cannot_redirect(void **state)
{
    (void)state;
    net_t net;
    s_net(&net, 3);
    s_join_all(&net);
    char card[32];
    s_card(net.nodes[2].id, card, sizeof card);
    size_t len;
    /* node 1 claims node 2 moved, at a higher incarnation */
    uint8_t *msg = s_members_msg(net.nodes[1].id, net.nodes[2].id, 50, GOSSIP_ALIVE,
                                 "tcp://elsewhere:1", card, "", &len);
    assert_int_equal(gossip_engine_receive(net.nodes[0].engine, net.nodes[1].id, msg, len, net.now),
                     0);
    free(msg);
    gossip_member_t m;
    assert_true(gossip_engine_member(net.nodes[0].engine, net.nodes[2].id, &m));
    assert_string_equal(m.endpoint, "tcp://n102:7101");
    assert_int_equal(m.incarnation, 50);
    /* node 2 itself announces a move: taken */
    msg = s_members_msg(net.nodes[2].id, net.nodes[2].id, 60, GOSSIP_ALIVE, "tcp://n102:7202",
                        card, "", &len);
    assert_int_equal(gossip_engine_receive(net.nodes[0].engine, net.nodes[2].id, msg, len, net.now),
                     0);
    free(msg);
    assert_true(gossip_engine_member(net.nodes[0].engine, net.nodes[2].id, &m));
    assert_string_equal(m.endpoint, "tcp://n102:7202");
    /* a member first heard of through a relay takes the relay's endpoint: the first word */
    char other[32];
    s_card(999, other, sizeof other);
    msg = s_members_msg(net.nodes[1].id, 999, 3, GOSSIP_ALIVE, "tcp://n999:7101", other, "",
                        &len);
    assert_int_equal(gossip_engine_receive(net.nodes[0].engine, net.nodes[1].id, msg, len, net.now),
                     0);
    free(msg);
    assert_true(gossip_engine_member(net.nodes[0].engine, 999, &m));
    assert_string_equal(m.endpoint, "tcp://n999:7101");
    /* an incarnation past any refutation: refused, counted, nothing changed */
    uint64_t bad = gossip_engine_stats(net.nodes[0].engine)->bad_decode;
    msg = s_members_msg(net.nodes[1].id, net.nodes[2].id, UINT64_MAX, GOSSIP_DEAD, "", card, "",
                        &len);
    assert_int_not_equal(
        gossip_engine_receive(net.nodes[0].engine, net.nodes[1].id, msg, len, net.now), 0);
    free(msg);
    assert_int_equal(gossip_engine_stats(net.nodes[0].engine)->bad_decode, bad + 1);
    assert_true(gossip_engine_member(net.nodes[0].engine, net.nodes[2].id, &m));
    assert_int_equal(m.incarnation, 60);
    assert_int_equal(m.state, GOSSIP_ALIVE);
    s_net_fini(&net);
}

/*  LEFT needs a statement verify_leave accepts, reaches every node (the node itself included,
 *  which falls silent), and absorbs any later claim; the LEFT node's messages are dropped. */
static void test_left_absorbs_and_needs_a_valid_statement(void **state)
{
    (void)state;
    net_t net;
    s_net(&net, 4);
    s_join_all(&net);
    gossip_engine_t *e0 = net.nodes[0].engine;
    /* Refused statements: locally, and relayed by a member. */
    assert_int_equal(gossip_engine_leave(e0, net.nodes[3].id, (const uint8_t *)"forged", 6),
                     ENGRAM_EINVAL);
    size_t len;
    uint8_t *msg =
        s_members_msg(net.nodes[1].id, net.nodes[2].id, 5, GOSSIP_LEFT, "", "", "leave-9",
                      &len);
    assert_int_equal(gossip_engine_receive(e0, net.nodes[1].id, msg, len, net.now), ENGRAM_EINVAL);
    free(msg);
    assert_int_equal(gossip_engine_stats(e0)->bad_leave, 1);
    assert_int_equal(s_state(&net, 0, 2), GOSSIP_ALIVE);
    assert_int_equal(s_state(&net, 0, 3), GOSSIP_ALIVE);

    assert_int_equal(gossip_engine_leave(e0, net.nodes[3].id, (const uint8_t *)"leave-103", 9), 0);
    s_run(&net, 10000);
    for (int i = 0; i < 4; i++)
        assert_int_equal(s_state(&net, i, 3), GOSSIP_LEFT);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            assert_int_equal(s_state(&net, i, j), GOSSIP_ALIVE);
    /* Absorbing: a later ALIVE claim at any incarnation changes nothing. */
    char card[32];
    s_card(net.nodes[3].id, card, sizeof card);
    gossip_member_t claim = {.id = net.nodes[3].id,
                             .incarnation = UINT64_C(1) << 62, /* the largest taken */
                             .state = GOSSIP_ALIVE,
                             .endpoint = "",
                             .card = (const uint8_t *)card,
                             .card_len = strlen(card)};
    assert_int_equal(gossip_engine_learn(e0, &claim), 0);
    assert_int_equal(s_state(&net, 0, 3), GOSSIP_LEFT);
    /* The LEFT node fell silent; a message from it is dropped and counted. */
    s_run(&net, 20000);
    uint64_t to;
    uint8_t *buf;
    gossip_engine_tick(net.nodes[3].engine, net.now + 5000);
    assert_false(gossip_engine_next(net.nodes[3].engine, &to, &buf, &len));
    msg = s_members_msg(net.nodes[3].id, net.nodes[3].id, 99, GOSSIP_ALIVE, "", card, "", &len);
    uint64_t before = gossip_engine_stats(e0)->bad_left_sender;
    assert_int_equal(gossip_engine_receive(e0, net.nodes[3].id, msg, len, net.now),
                     ENGRAM_EUNAVAILABLE);
    free(msg);
    assert_int_equal(gossip_engine_stats(e0)->bad_left_sender, before + 1);
    assert_int_equal(s_state(&net, 0, 3), GOSSIP_LEFT);
    s_net_fini(&net);
}

/*  A node whose card admit refuses never becomes a member anywhere, whether it speaks for
 *  itself or a member relays its record; an unknown sender without a card is dropped. */
static void test_admit_refuses_bad_cards(void **state)
{
    (void)state;
    net_t net;
    memset(&net, 0, sizeof net);
    net.count = 3;
    net.now = 1000;
    for (int i = 0; i < 3; i++) {
        net.nodes[i].id = 100 + (uint64_t)i;
        net.nodes[i].bad_card = i == 2;
        s_start(&net, i, 1);
    }
    s_learn(&net, 1, 0);
    s_learn(&net, 2, 0);
    s_run(&net, 10000);
    assert_int_equal(s_state(&net, 0, 1), GOSSIP_ALIVE);
    assert_int_equal(s_state(&net, 1, 0), GOSSIP_ALIVE);
    assert_int_equal(s_state(&net, 0, 2), -1);
    assert_int_equal(s_state(&net, 1, 2), -1);
    const gossip_stats_t *st = gossip_engine_stats(net.nodes[0].engine);
    assert_true(st->bad_card > 0);
    assert_int_equal(st->bad_messages, st->bad_card + st->bad_unknown_sender);
    /* A member relays a record whose card is bad: refused, the rest of the table unchanged. */
    size_t len;
    uint8_t *msg = s_members_msg(101, 555, 1, GOSSIP_ALIVE, "", "card-556", "", &len);
    uint64_t before = st->bad_card;
    assert_int_equal(gossip_engine_receive(net.nodes[0].engine, 101, msg, len, net.now),
                     ENGRAM_EINVAL);
    free(msg);
    assert_int_equal(st->bad_card, before + 1);
    gossip_member_t m;
    assert_false(gossip_engine_member(net.nodes[0].engine, 555, &m));
    /* An unknown sender that carries no card (a ping-less message) is dropped. */
    Engram__GossipAck ack = ENGRAM__GOSSIP_ACK__INIT;
    ack.scope = "run:a";
    Engram__Gossip g = ENGRAM__GOSSIP__INIT;
    g.schema_major = 1;
    g.body_case = ENGRAM__GOSSIP__BODY_ACK;
    g.ack = &ack;
    uint8_t buf[64];
    len = engram__gossip__pack(&g, buf);
    before = st->bad_unknown_sender;
    assert_int_equal(gossip_engine_receive(net.nodes[0].engine, 777, buf, len, net.now),
                     ENGRAM_ENOTFOUND);
    assert_int_equal(st->bad_unknown_sender, before + 1);
    s_net_fini(&net);
}

static bool s_cut_0_2(uint64_t from, uint64_t to)
{
    return (from == 100 && to == 102) || (from == 102 && to == 100);
}

/*  The direct link 0-2 is cut: node 1 pings on their behalf and neither suspects the other.
 *  With node 1 down as well, the probes fail and 2 is suspected (so the first half can fail). */
static void test_ping_req_around_a_cut_link(void **state)
{
    (void)state;
    net_t net;
    s_net(&net, 3);
    s_join_all(&net);
    net.cut = s_cut_0_2;
    s_run(&net, 30000);
    assert_true(s_all_alive(&net, 3));
    for (int i = 0; i < 3; i++)
        assert_int_equal(net.nodes[i].suspected, 0);
    assert_true(gossip_engine_stats(net.nodes[0].engine)->ping_reqs > 0);
    assert_true(gossip_engine_stats(net.nodes[2].engine)->ping_reqs > 0);
    net.nodes[1].down = true;
    s_run(&net, 10000);
    assert_true(net.nodes[0].suspected > 0);
    assert_int_not_equal(s_state(&net, 0, 2), GOSSIP_ALIVE);
    s_net_fini(&net);
}

/*  Runs until every node in [0, count) but `except` has node j SUSPECT or worse, at most ms. */
static void s_run_until_suspected(net_t *net, int count, int except, int j, uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t += STEP_MS) {
        bool all = true;
        for (int i = 0; i < count; i++)
            all = all && (i == except || s_state(net, i, j) != GOSSIP_ALIVE);
        if (all)
            return;
        s_run(net, STEP_MS);
    }
    fail_msg("node %d was not suspected within %" PRIu64 " ms", j, ms);
}

/*  Lifeguard's nacks: a crashed node's probers ask others to ping it, those answer with nacks,
 *  so the probers know their own links work and keep a local health of 0. A node that hears
 *  nothing from anyone (its incoming links cut) gets neither pongs nor nacks: its score rises. */
static bool s_cut_into_0(uint64_t from, uint64_t to)
{
    return to == 100 && from != 100;
}

static void test_nacks_keep_healthy_probers_healthy(void **state)
{
    (void)state;
    net_t net;
    s_net(&net, 5);
    s_join_all(&net);
    net.nodes[4].down = true;
    unsigned worst = 0; /* sampled after each tick (a probe fails there), before delivery */
    for (uint64_t t = 0; t < 20000; t += STEP_MS) {
        net.now += STEP_MS;
        for (int i = 0; i < 4; i++) {
            gossip_engine_tick(net.nodes[i].engine, net.now);
            if (gossip_engine_health(net.nodes[i].engine) > worst)
                worst = gossip_engine_health(net.nodes[i].engine);
        }
        s_deliver(&net);
    }
    assert_int_equal(worst, 0);
    uint64_t nacks = 0;
    for (int i = 0; i < 4; i++) {
        assert_int_not_equal(s_state(&net, i, 4), GOSSIP_ALIVE);
        nacks += gossip_engine_stats(net.nodes[i].engine)->nacks_received;
    }
    assert_true(nacks > 0);
    s_net_fini(&net);

    s_net(&net, 5);
    s_join_all(&net);
    net.cut = s_cut_into_0;
    s_run(&net, 10000);
    assert_true(gossip_engine_health(net.nodes[0].engine) > 0);
    assert_int_equal(gossip_engine_stats(net.nodes[0].engine)->nacks_received, 0);
    for (int i = 1; i < 5; i++)
        assert_int_equal(gossip_engine_health(net.nodes[i].engine), 0);
    s_net_fini(&net);
}

/*  Lifeguard's dynamic suspicion, 6 nodes (k = 2 confirmations expected; the shortest
 *  suspicion is 4 probe intervals = 4 s). A crashed node is suspected by all five others, each
 *  a confirmation: DEAD everywhere within the shortest suspicion (plus slack for the records
 *  to spread). A lone accuser (node 0, which hears nothing: everyone it probes fails) gets no
 *  confirmation, since its victims refute and suspect nobody but it: it declares nobody dead
 *  for 6x as long. */
static void test_confirmations_shorten_suspicion(void **state)
{
    (void)state;
    net_t net;
    s_net(&net, 6);
    s_join_all(&net);
    net.nodes[5].down = true;
    s_run_until_suspected(&net, 5, -1, 5, 30000);
    s_run(&net, 4000 + 2000);
    for (int i = 0; i < 5; i++)
        assert_int_equal(s_state(&net, i, 5), GOSSIP_DEAD);
    s_net_fini(&net);

    s_net(&net, 6);
    s_join_all(&net);
    net.cut = s_cut_into_0;
    for (uint64_t t = 0; net.nodes[0].suspected == 0; t += STEP_MS) {
        assert_true(t < 10000);
        s_run(&net, STEP_MS);
    }
    s_run(&net, 4000 + 12000);
    assert_int_equal(net.nodes[0].died, 0);
    for (int i = 1; i < 6; i++) {
        assert_int_equal(s_state(&net, 0, i) == GOSSIP_DEAD, false);
        for (int j = 1; j < 6; j++) /* they refuted 0's word; only 0 is lost to them */
            assert_int_equal(s_state(&net, i, j), GOSSIP_ALIVE);
    }
    s_run(&net, 20000); /* past 6 x 4 s: it does declare them dead in the end */
    assert_true(net.nodes[0].died > 0);
    s_net_fini(&net);
}

/*  The suspector of member id in the last record about it that node i's queued messages
 *  carry (0: none); the messages are dropped. */
static uint64_t s_told_suspector(net_t *net, int i, uint64_t id)
{
    uint64_t to, told = 0;
    uint8_t *buf;
    size_t len;
    while (gossip_engine_next(net->nodes[i].engine, &to, &buf, &len)) {
        Engram__Gossip *g = engram__gossip__unpack(NULL, len, buf);
        free(buf);
        assert_non_null(g);
        Engram__GossipMember **records = NULL;
        size_t n = 0;
        if (g->body_case == ENGRAM__GOSSIP__BODY_PING)
            records = g->ping->updates, n = g->ping->n_updates;
        else if (g->body_case == ENGRAM__GOSSIP__BODY_PING_REQ)
            records = g->ping_req->updates, n = g->ping_req->n_updates;
        else if (g->body_case == ENGRAM__GOSSIP__BODY_PONG)
            records = g->pong->updates, n = g->pong->n_updates;
        for (size_t r = 0; r < n; r++)
            if (records[r]->id == id && records[r]->state == GOSSIP_SUSPECT)
                told = records[r]->suspector;
        engram__gossip__free_unpacked(g, NULL);
    }
    return told;
}

/*  Node 0 hears that node 3 is suspected by node 1, then by node 2: a confirmation, which its
 *  messages pass on (the record then names node 2), so that every node counts it. A suspector
 *  that is not a member, or is the suspect itself, is no confirmation. */
static void test_confirmations_are_passed_on(void **state)
{
    (void)state;
    net_t net;
    s_net(&net, 5);
    s_join_all(&net);
    gossip_member_t three;
    assert_true(gossip_engine_member(net.nodes[0].engine, net.nodes[3].id, &three));
    uint64_t inc = three.incarnation;
    size_t len;
    uint8_t *msg = s_members_msg_by(net.nodes[1].id, net.nodes[3].id, inc, GOSSIP_SUSPECT,
                                    net.nodes[1].id, "", "", "", &len);
    assert_int_equal(gossip_engine_receive(net.nodes[0].engine, net.nodes[1].id, msg, len,
                                           net.now), 0);
    free(msg);
    assert_int_equal(s_state(&net, 0, 3), GOSSIP_SUSPECT);
    uint64_t not_confirmations[] = {777, net.nodes[3].id};
    for (int k = 0; k < 2; k++) {
        msg = s_members_msg_by(net.nodes[2].id, net.nodes[3].id, inc, GOSSIP_SUSPECT,
                               not_confirmations[k], "", "", "", &len);
        gossip_engine_receive(net.nodes[0].engine, net.nodes[2].id, msg, len, net.now);
        free(msg);
    }
    net.now += 1000; /* a probe goes out, with the record */
    gossip_engine_tick(net.nodes[0].engine, net.now);
    assert_int_equal(s_told_suspector(&net, 0, net.nodes[3].id), net.nodes[1].id);
    msg = s_members_msg_by(net.nodes[2].id, net.nodes[3].id, inc, GOSSIP_SUSPECT,
                           net.nodes[2].id, "", "", "", &len);
    assert_int_equal(gossip_engine_receive(net.nodes[0].engine, net.nodes[2].id, msg, len,
                                           net.now), 0);
    free(msg);
    net.now += 1000;
    gossip_engine_tick(net.nodes[0].engine, net.now);
    assert_int_equal(s_told_suspector(&net, 0, net.nodes[3].id), net.nodes[2].id);
    s_net_fini(&net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_joiner_learns_everyone_through_one_seed),
        cmocka_unit_test(test_silent_node_becomes_suspect_then_dead),
        cmocka_unit_test(test_refutation_by_incarnation),
        cmocka_unit_test(test_relayed_records_cannot_redirect),
        cmocka_unit_test(test_left_absorbs_and_needs_a_valid_statement),
        cmocka_unit_test(test_admit_refuses_bad_cards),
        cmocka_unit_test(test_ping_req_around_a_cut_link),
        cmocka_unit_test(test_nacks_keep_healthy_probers_healthy),
        cmocka_unit_test(test_confirmations_shorten_suspicion),
        cmocka_unit_test(test_confirmations_are_passed_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
