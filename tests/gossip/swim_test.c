/*  Tests of SWIM alone (gossip/swim.c), through its callbacks, on a tiny hand-driven network
 *  with a clock: a joiner learns everyone through one seed (the canonical use), also when it
 *  ticked before it knew the seed and lost its first messages, a node that stops answering
 *  becomes suspect then dead, a node that comes back refutes by incarnation, a probe that
 *  straddles its target's restart suspects no one, LEFT absorbs
 *  everything and needs a statement verify_leave accepts, a card admit refuses keeps its node
 *  out, ping-req carries a probe around a cut link, nacks keep healthy probers' local health
 *  at 0, and confirmations shorten suspicion (Lifeguard). No engine and no store: each node's
 *  send callback queues packed messages, the network delivers them with
 *  gossip_swim_check_sender and gossip_swim_receive, and counts what they refuse by fault, as
 *  the engine does (engine_test.c covers that wiring and the data plane; tests/sim/ all of it
 *  under faults).
 */
#include "prop.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/array.h"
#include "engram/error.h"
#include "gossip/swim.h"
#include "proto/gossip.pb-c.h"

#define MAXN    6
#define STEP_MS 100

typedef struct {
    uint64_t to;
    uint8_t *buf; /* owned */
    size_t len;
} smsg_t;

typedef struct {
    uint64_t id;
    gossip_swim_t *swim; /* NULL: never started */
    bool down;           /* not ticked; messages to it are lost */
    bool bad_card;       /* presents a card admit refuses */
    int suspected, died; /* changed() calls that reported another member so */
    prop_rng_t rng;      /* its random callback's stream */
    smsg_t *out;         /* what its send callback queued, a FIFO: [head, n) */
    size_t head, n, cap;
    uint64_t refused;                             /* messages it refused */
    uint64_t faults[GOSSIP_SWIM_FAULT_LEAVE + 1]; /* the same, by fault */
} snode_t;

typedef struct {
    snode_t nodes[MAXN];
    int count;
    uint64_t now;
    bool (*cut)(uint64_t from, uint64_t to); /* NULL: no link cut */
} net_t;

static int s_send(void *arg, uint64_t to, Engram__Gossip *msg)
{
    snode_t *n = arg;
    size_t len = engram__gossip__get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    assert_int_equal(crdt_array_grow((void **)&n->out, &n->cap, n->n + 1, sizeof *n->out), 0);
    engram__gossip__pack(msg, buf);
    n->out[n->n++] = (smsg_t){to, buf, len};
    return 0;
}

/*  Pops node n's next queued message: true and *msg (its buf the caller's to free). */
static bool s_next(snode_t *n, smsg_t *msg)
{
    if (n->head == n->n) {
        n->head = n->n = 0;
        return false;
    }
    *msg = n->out[n->head++];
    return true;
}

static void s_drop_queued(snode_t *n)
{
    smsg_t msg;
    while (s_next(n, &msg))
        free(msg.buf);
}

static uint64_t s_random(void *arg)
{
    return prop_next(&((snode_t *)arg)->rng);
}

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
    gossip_swim_config_t config = {.node_id = n->id,
                                   .endpoint = endpoint,
                                   .card = (const uint8_t *)card,
                                   .card_len = strlen(card),
                                   .incarnation = incarnation,
                                   .max_message_bytes = 65536};
    gossip_swim_callbacks_t callbacks = {s_send, s_changed, s_random, s_admit, s_verify_leave, n};
    gossip_swim_destroy(&n->swim);
    s_drop_queued(n); /* a restart loses what its last life had not sent */
    n->rng = (prop_rng_t){7 + n->id};
    n->swim = gossip_swim_new(&config, &callbacks);
    assert_non_null(n->swim);
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
    for (int i = 0; i < net->count; i++) {
        gossip_swim_destroy(&net->nodes[i].swim);
        s_drop_queued(&net->nodes[i]);
        free(net->nodes[i].out);
    }
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
    assert_int_equal(gossip_swim_learn(net->nodes[i].swim, &seed, net->now), 0);
}

static int s_index(net_t *net, uint64_t id)
{
    for (int i = 0; i < net->count; i++)
        if (net->nodes[i].id == id)
            return i;
    return -1;
}

/*  Node t receives a message from `from` at net->now, as the engine hands one to SWIM: the
 *  sender is checked, then the message handled. Counts a refusal by its fault (every refusal
 *  names one, and only a refusal does). Returns the code. */
static int s_receive(net_t *net, int t, uint64_t from, const uint8_t *buf, size_t len)
{
    snode_t *n = &net->nodes[t];
    Engram__Gossip *msg = engram__gossip__unpack(NULL, len, buf);
    assert_non_null(msg);
    gossip_swim_fault_t fault = GOSSIP_SWIM_FAULT_NONE;
    int rc = gossip_swim_check_sender(n->swim, from, msg, net->now, &fault);
    if (rc == 0)
        rc = gossip_swim_receive(n->swim, from, msg, net->now, &fault);
    engram__gossip__free_unpacked(msg, NULL);
    assert_int_equal(rc != 0, fault != GOSSIP_SWIM_FAULT_NONE);
    if (rc) {
        n->refused++;
        n->faults[fault]++;
    }
    return rc;
}

/*  Delivers every queued message until none is left. */
static void s_deliver(net_t *net)
{
    for (bool any = true; any;) {
        any = false;
        for (int i = 0; i < net->count; i++) {
            smsg_t msg;
            while (s_next(&net->nodes[i], &msg)) {
                any = true;
                int t = s_index(net, msg.to);
                if (t >= 0 && !net->nodes[i].down && !net->nodes[t].down && net->nodes[t].swim &&
                    !(net->cut && net->cut(net->nodes[i].id, msg.to)))
                    s_receive(net, t, net->nodes[i].id, msg.buf, msg.len);
                free(msg.buf);
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
            if (!net->nodes[i].down && net->nodes[i].swim)
                gossip_swim_tick(net->nodes[i].swim, net->now);
        s_deliver(net);
    }
}

/*  The state of node j in node i's view, or -1 when i does not know j. */
static int s_state(net_t *net, int i, int j)
{
    gossip_member_t m;
    if (!gossip_swim_member(net->nodes[i].swim, net->nodes[j].id, &m))
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
        for (size_t k = 0; k < gossip_swim_size(net.nodes[i].swim); k++) {
            gossip_member_t m;
            gossip_swim_at(net.nodes[i].swim, k, &m);
            s_visit(&v, &m);
        }
        assert_int_equal(v.count, 5);
        assert_true(v.endpoints_ok); /* the seed's "tcp://seed" was replaced by its own */
        assert_true(gossip_swim_stats(net.nodes[i].swim)->pings > 0);
        /* Every SWIM message carries its sender's record and card: none is refused while they
         * join, not even by a member that did not know its sender yet. */
        assert_int_equal(net.nodes[i].refused, 0);
    }
    s_net_fini(&net);
}

static bool s_joiner_unlinked; /* s_cut_joiner drops what node 105 sends */

static bool s_cut_joiner(uint64_t from, uint64_t to)
{
    (void)to;
    return s_joiner_unlinked && from == 105;
}

/*  A node that ticks before it knows any member (engramd's first tick comes before its seed
 *  answers the introduction: a new node, or one whose data was wiped), and whose first
 *  messages to its seed are lost (sent before the link is up), still knows every member
 *  within a few probe intervals: it tries the table exchange again until one comes in. It
 *  used to wait a whole sync interval (10 s), meanwhile knowing only the members whose
 *  records happened to reach it (jepsen: a joined node knew its seed alone for 10 s). */
static void test_joiner_that_ticked_alone_learns_everyone_at_once(void **state)
{
    (void)state;
    net_t net;
    s_net(&net, 6);
    net.nodes[5].down = true;
    for (int i = 1; i < 5; i++)
        s_learn(&net, i, 0);
    s_run(&net, 20000); /* the five know each other; no record is still being retransmitted */
    assert_true(s_all_alive(&net, 5));
    net.nodes[5].down = false;
    gossip_swim_tick(net.nodes[5].swim, net.now); /* its first tick: it knows nobody */
    s_deliver(&net);
    s_learn(&net, 5, 0);
    net.cut = s_cut_joiner;
    s_joiner_unlinked = true;
    s_run(&net, 1100); /* its first exchange with the seed (a probe interval on) is lost */
    assert_int_equal(gossip_swim_stats(net.nodes[5].swim)->syncs, 1);
    s_joiner_unlinked = false;
    s_run(&net, 1000); /* the next, a probe interval later, not a sync interval */
    for (int j = 0; j < 5; j++)
        if (s_state(&net, 5, j) == -1)
            fail_msg("the joiner does not know node %d 2.1 s after its first tick", j);
    /* a table came in: the retries end, the next exchange waits for the sync interval */
    uint64_t syncs = gossip_swim_stats(net.nodes[5].swim)->syncs;
    assert_int_equal(syncs, 2);
    s_run(&net, 5000);
    assert_int_equal(gossip_swim_stats(net.nodes[5].swim)->syncs, syncs);
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
        suspects += gossip_swim_stats(net.nodes[i].swim)->suspects;
        deaths += gossip_swim_stats(net.nodes[i].swim)->deaths;
    }
    assert_true(suspects > 0 && deaths > 0);
    s_net_fini(&net);
}

/*  A node cut off long enough to be declared dead comes back: it hears of its death and
 *  refutes it with a higher incarnation. A restarted node (new object, a later start time as
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
    assert_true(gossip_swim_member(net.nodes[3].swim, net.nodes[3].id, &before));
    net.nodes[3].down = false;
    s_run(&net, 20000);
    assert_true(s_all_alive(&net, 4));
    gossip_member_t after;
    assert_true(gossip_swim_member(net.nodes[0].swim, net.nodes[3].id, &after));
    assert_true(after.incarnation > before.incarnation);
    assert_true(gossip_swim_stats(net.nodes[3].swim)->refutes > 0);

    /* A crash and restart: a new object starting at a later incarnation, knowing one seed. */
    net.nodes[2].down = true;
    s_run(&net, 40000);
    assert_int_equal(s_state(&net, 0, 2), GOSSIP_DEAD);
    s_start(&net, 2, net.now);
    s_learn(&net, 2, 0);
    s_run(&net, 20000);
    assert_true(s_all_alive(&net, 4));
    s_net_fini(&net);
}

/*  Messages to node 2 (id 102) are lost until s_reachable_ms: the others' connections to a
 *  restarted node come back after a while (libzmq reconnects with a backoff), while what it
 *  sends them arrives at once. */
static uint64_t s_reachable_ms;
static const net_t *s_reconnecting;

static bool s_cut_until_reconnected(uint64_t from, uint64_t to)
{
    (void)from;
    return to == 102 && s_reconnecting->now < s_reachable_ms;
}

/*  A probe that was under way when its target restarted tested the last life, not the new
 *  one: once the new incarnation is known, its failure suspects no one. Node 2 restarts
 *  after every delay of a sweep over eight probe intervals (it is suspected, then dead, in
 *  the longer ones), so that probes of it by nodes 0 and 1 straddle the restart, and the
 *  others reach the new life only 300 ms after it started (less than a probe's timeout, so
 *  that a probe begun after the restart succeeds through its ping-reqs). The new life never
 *  has to refute, and all end alive. Before the probe kept its target's incarnation, a
 *  restart after 2.3 s down or more (26 of the 81 delays) made it refute. */
static void test_probe_of_a_past_life_suspects_no_one(void **state)
{
    (void)state;
    for (uint64_t down_ms = 0; down_ms <= 8 * GOSSIP_DEFAULT_PROBE_INTERVAL_MS;
         down_ms += STEP_MS) {
        net_t net;
        s_net(&net, 3);
        s_join_all(&net);
        net.nodes[2].down = true;
        s_run(&net, down_ms);
        s_start(&net, 2, net.now);
        s_learn(&net, 2, 0);
        s_reconnecting = &net;
        s_reachable_ms = net.now + 300;
        net.cut = s_cut_until_reconnected;
        s_run(&net, 10000);
        if (gossip_swim_stats(net.nodes[2].swim)->refutes != 0)
            fail_msg("down %" PRIu64 " ms: the restarted node had to refute a suspicion", down_ms);
        assert_true(s_all_alive(&net, 3));
        s_net_fini(&net);
    }
}

/*  Crafts a GossipMembers message carrying one record ("" endpoint: none). */
static uint8_t *s_members_msg_by(uint64_t sender, uint64_t id, uint64_t incarnation, uint32_t state,
                                 uint64_t suspector, const char *endpoint, const char *card,
                                 const char *leave, size_t *len)
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
    assert_int_equal(s_receive(&net, 0, net.nodes[1].id, msg, len), 0);
    free(msg);
    gossip_member_t m;
    assert_true(gossip_swim_member(net.nodes[0].swim, net.nodes[2].id, &m));
    assert_string_equal(m.endpoint, "tcp://n102:7101");
    assert_int_equal(m.incarnation, 50);
    /* node 2 itself announces a move: taken */
    msg = s_members_msg(net.nodes[2].id, net.nodes[2].id, 60, GOSSIP_ALIVE, "tcp://n102:7202", card,
                        "", &len);
    assert_int_equal(s_receive(&net, 0, net.nodes[2].id, msg, len), 0);
    free(msg);
    assert_true(gossip_swim_member(net.nodes[0].swim, net.nodes[2].id, &m));
    assert_string_equal(m.endpoint, "tcp://n102:7202");
    /* a member first heard of through a relay takes the relay's endpoint: the first word */
    char other[32];
    s_card(999, other, sizeof other);
    msg = s_members_msg(net.nodes[1].id, 999, 3, GOSSIP_ALIVE, "tcp://n999:7101", other, "", &len);
    assert_int_equal(s_receive(&net, 0, net.nodes[1].id, msg, len), 0);
    free(msg);
    assert_true(gossip_swim_member(net.nodes[0].swim, 999, &m));
    assert_string_equal(m.endpoint, "tcp://n999:7101");
    /* an incarnation past any refutation: refused, counted, nothing changed */
    uint64_t bad = net.nodes[0].faults[GOSSIP_SWIM_FAULT_DECODE];
    msg = s_members_msg(net.nodes[1].id, net.nodes[2].id, UINT64_MAX, GOSSIP_DEAD, "", card, "",
                        &len);
    assert_int_not_equal(s_receive(&net, 0, net.nodes[1].id, msg, len), 0);
    free(msg);
    assert_int_equal(net.nodes[0].faults[GOSSIP_SWIM_FAULT_DECODE], bad + 1);
    assert_true(gossip_swim_member(net.nodes[0].swim, net.nodes[2].id, &m));
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
    snode_t *n0 = &net.nodes[0];
    /* Refused statements: locally, and relayed by a member. */
    assert_int_equal(
        gossip_swim_leave(n0->swim, net.nodes[3].id, (const uint8_t *)"forged", 6, net.now),
        ENGRAM_EINVAL);
    size_t len;
    uint8_t *msg =
        s_members_msg(net.nodes[1].id, net.nodes[2].id, 5, GOSSIP_LEFT, "", "", "leave-9", &len);
    assert_int_equal(s_receive(&net, 0, net.nodes[1].id, msg, len), ENGRAM_EINVAL);
    free(msg);
    assert_int_equal(n0->faults[GOSSIP_SWIM_FAULT_LEAVE], 1);
    assert_int_equal(s_state(&net, 0, 2), GOSSIP_ALIVE);
    assert_int_equal(s_state(&net, 0, 3), GOSSIP_ALIVE);

    assert_int_equal(
        gossip_swim_leave(n0->swim, net.nodes[3].id, (const uint8_t *)"leave-103", 9, net.now), 0);
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
    assert_int_equal(gossip_swim_learn(n0->swim, &claim, net.now), 0);
    assert_int_equal(s_state(&net, 0, 3), GOSSIP_LEFT);
    /* The LEFT node fell silent; a message from it is dropped and counted. */
    s_run(&net, 20000);
    gossip_swim_tick(net.nodes[3].swim, net.now + 5000);
    smsg_t out;
    assert_false(s_next(&net.nodes[3], &out));
    msg = s_members_msg(net.nodes[3].id, net.nodes[3].id, 99, GOSSIP_ALIVE, "", card, "", &len);
    uint64_t before = n0->faults[GOSSIP_SWIM_FAULT_LEFT_SENDER];
    assert_int_equal(s_receive(&net, 0, net.nodes[3].id, msg, len), ENGRAM_EUNAVAILABLE);
    free(msg);
    assert_int_equal(n0->faults[GOSSIP_SWIM_FAULT_LEFT_SENDER], before + 1);
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
    const uint64_t *faults = net.nodes[0].faults;
    assert_true(faults[GOSSIP_SWIM_FAULT_CARD] > 0);
    assert_int_equal(net.nodes[0].refused,
                     faults[GOSSIP_SWIM_FAULT_CARD] + faults[GOSSIP_SWIM_FAULT_UNKNOWN_SENDER]);
    /* A member relays a record whose card is bad: refused, the rest of the table unchanged. */
    size_t len;
    uint8_t *msg = s_members_msg(101, 555, 1, GOSSIP_ALIVE, "", "card-556", "", &len);
    uint64_t before = faults[GOSSIP_SWIM_FAULT_CARD];
    assert_int_equal(s_receive(&net, 0, 101, msg, len), ENGRAM_EINVAL);
    free(msg);
    assert_int_equal(faults[GOSSIP_SWIM_FAULT_CARD], before + 1);
    gossip_member_t m;
    assert_false(gossip_swim_member(net.nodes[0].swim, 555, &m));
    /* An unknown sender that carries no card (a ping-less message) is dropped. */
    Engram__GossipAck ack = ENGRAM__GOSSIP_ACK__INIT;
    ack.scope = "run:a";
    Engram__Gossip g = ENGRAM__GOSSIP__INIT;
    g.schema_major = 1;
    g.body_case = ENGRAM__GOSSIP__BODY_ACK;
    g.ack = &ack;
    uint8_t buf[64];
    len = engram__gossip__pack(&g, buf);
    before = faults[GOSSIP_SWIM_FAULT_UNKNOWN_SENDER];
    assert_int_equal(s_receive(&net, 0, 777, buf, len), ENGRAM_ENOTFOUND);
    assert_int_equal(faults[GOSSIP_SWIM_FAULT_UNKNOWN_SENDER], before + 1);
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
    assert_true(gossip_swim_stats(net.nodes[0].swim)->ping_reqs > 0);
    assert_true(gossip_swim_stats(net.nodes[2].swim)->ping_reqs > 0);
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
            gossip_swim_tick(net.nodes[i].swim, net.now);
            if (gossip_swim_health(net.nodes[i].swim) > worst)
                worst = gossip_swim_health(net.nodes[i].swim);
        }
        s_deliver(&net);
    }
    assert_int_equal(worst, 0);
    uint64_t nacks = 0;
    for (int i = 0; i < 4; i++) {
        assert_int_not_equal(s_state(&net, i, 4), GOSSIP_ALIVE);
        nacks += gossip_swim_stats(net.nodes[i].swim)->nacks_received;
    }
    assert_true(nacks > 0);
    s_net_fini(&net);

    s_net(&net, 5);
    s_join_all(&net);
    net.cut = s_cut_into_0;
    s_run(&net, 10000);
    assert_true(gossip_swim_health(net.nodes[0].swim) > 0);
    assert_int_equal(gossip_swim_stats(net.nodes[0].swim)->nacks_received, 0);
    for (int i = 1; i < 5; i++)
        assert_int_equal(gossip_swim_health(net.nodes[i].swim), 0);
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
    uint64_t told = 0;
    smsg_t msg;
    while (s_next(&net->nodes[i], &msg)) {
        Engram__Gossip *g = engram__gossip__unpack(NULL, msg.len, msg.buf);
        free(msg.buf);
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
    assert_true(gossip_swim_member(net.nodes[0].swim, net.nodes[3].id, &three));
    uint64_t inc = three.incarnation;
    size_t len;
    uint8_t *msg = s_members_msg_by(net.nodes[1].id, net.nodes[3].id, inc, GOSSIP_SUSPECT,
                                    net.nodes[1].id, "", "", "", &len);
    assert_int_equal(s_receive(&net, 0, net.nodes[1].id, msg, len), 0);
    free(msg);
    assert_int_equal(s_state(&net, 0, 3), GOSSIP_SUSPECT);
    uint64_t not_confirmations[] = {777, net.nodes[3].id};
    for (int k = 0; k < 2; k++) {
        msg = s_members_msg_by(net.nodes[2].id, net.nodes[3].id, inc, GOSSIP_SUSPECT,
                               not_confirmations[k], "", "", "", &len);
        s_receive(&net, 0, net.nodes[2].id, msg, len);
        free(msg);
    }
    net.now += 1000; /* a probe goes out, with the record */
    gossip_swim_tick(net.nodes[0].swim, net.now);
    assert_int_equal(s_told_suspector(&net, 0, net.nodes[3].id), net.nodes[1].id);
    msg = s_members_msg_by(net.nodes[2].id, net.nodes[3].id, inc, GOSSIP_SUSPECT, net.nodes[2].id,
                           "", "", "", &len);
    assert_int_equal(s_receive(&net, 0, net.nodes[2].id, msg, len), 0);
    free(msg);
    /* Half an interval on, the probe above (its ping dropped) has timed out, so its ping-reqs
     * go out with the record, but it has not failed: were its target node 3, a failure would
     * add node 0's own confirmation, named instead. */
    net.now += 500;
    gossip_swim_tick(net.nodes[0].swim, net.now);
    assert_int_equal(s_told_suspector(&net, 0, net.nodes[3].id), net.nodes[2].id);
    s_net_fini(&net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_joiner_learns_everyone_through_one_seed),
        cmocka_unit_test(test_joiner_that_ticked_alone_learns_everyone_at_once),
        cmocka_unit_test(test_silent_node_becomes_suspect_then_dead),
        cmocka_unit_test(test_refutation_by_incarnation),
        cmocka_unit_test(test_probe_of_a_past_life_suspects_no_one),
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
