/*  Bad input from an admitted peer: a member of the cluster that sends malformed, truncated,
 *  oversized, replayed and out-of-order gossip frames, and frames about a private scope.
 *  Every bad frame must be counted (bad_messages in `engram cluster status`, exactly one per
 *  frame) and logged, and change nothing; the node keeps serving agents and replicating.
 *
 *  The test is the member: it makes an Ed25519 identity in-process, has the test's admin sign
 *  its card, introduces itself on node A's introduction port (gossip port + 1) with that card
 *  and the endpoint of a CurveZMQ ROUTER it binds (A's messages to it arrive there; it answers
 *  A's pings so it stays alive), then connects a CurveZMQ DEALER with the CURVE keys of its
 *  identity (node_admission_curve_keys) to A's gossip port. It writes its own deltas with the
 *  CRDT kernel (crdt_scope_new with its node id, crdt_mvreg_write of engram values) and sends
 *  them as Gossip pushes (proto/gossip.proto), good and bad.
 *
 *  Ordering: A handles one peer's frames in the order they were sent, so after each step the
 *  test pushes a marker write (scope team:marker) and waits until A serves it: by then every
 *  earlier frame has been handled, and the counters can be compared exactly. A second node B
 *  (joined through A) shows at the end that A still replicates, the peer's good writes
 *  included.
 *
 *    test_push_replayed          the member joins; a good push applies once, sent again twice
 *                                it is redundant
 *    test_malformed_frames       random bytes, an empty frame, a push cut in half or short of
 *                                its last byte, two frames, a newer schema, truncated deps or
 *                                delta inside a valid frame, no body, a chunk past its count
 *    test_forbidden_scopes       pushes into a private scope (@victim) and an invalid name
 *    test_malformed_scope_names  a push, an ack, a chunk and a digest naming a scope of an
 *                                unknown kind, with an empty id, far too long, in invalid
 *                                UTF-8, or holding U+202E: each refused, counted in bad_scope
 *                                (and bad_messages) of `engram cluster status`, nothing held
 *    test_frame_above_budget     a push above --max-gossip-bytes but within the socket's slack
 *    test_frame_far_above_budget a push ZeroMQ cuts off: nothing changes, the peer reconnects
 *    test_out_of_order           a push before its dependency is held back without effect
 *    test_bad_introductions      noise, and a card of another cluster, on the intro port
 *    test_push_asks_for_ack_when_awaited  A's push of a plain put has ack_later, that of a
 *                                put waiting for replicas not
 *    test_still_replicating      the peer is still alive on A, B converges with A, clean stops
 *
 *  test_frame_above_budget fails against an engramd that applies such a frame (engine.h
 *  promises that oversized input is counted and changes nothing; the node/cluster/ socket
 *  admits frames up to GOSSIP_FRAME_HARD_LIMIT (4) budgets).
 *
 *  Access control: the fake member's values name agent "peer" acting for USER, and A and B
 *  show a fragment to a reader acting for USER only while its agents may act for USER there;
 *  so "peer" is granted on both nodes, with the test's agents, before they start
 *  (DATA/acl.init: no grant is submitted while counters are compared). Cluster status takes the
 * admin's connection (node_harness_admin_connect).
 *
 *  Sizes: A runs with --max-gossip-bytes MAX_GOSSIP. A frame above that budget but below the
 *  socket's own limit (budget + slack) reaches the engine and must be refused there; a frame
 *  far above it is cut off by ZeroMQ (ZMQ_MAXMSGSIZE closes the connection before engramd sees
 *  it, so it cannot be counted): it must change nothing, and the peer's DEALER reconnects.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <czmq.h>
#include <sodium.h>

#include "crdt/codec.h"
#include "crdt/ctx.h"
#include "crdt/hlc.h"
#include "crdt/mvreg.h"
#include "crdt/scope.h"
#include "crdt/value.h"
#include "engram/engram.h"
#include "gossip_frame.h"
#include "node/trust/admission.h"
#include "node/trust/identity.h"
#include "node_harness.h"
#include "proto/cluster.pb-c.h"
#include "proto/gossip.pb-c.h"

#define CALL_TIMEOUT_MS 10000
#define WAIT_MS         20000
/*  Node A's gossip budget, and how much above it a frame must be for ZeroMQ to cut it off
 *  (past GOSSIP_FRAME_HARD_LIMIT, 4, budgets in node/cluster/). */
#define MAX_GOSSIP     4096
#define MAX_GOSSIP_TXT "4096"
#define FAR_ABOVE      (64 * 1024)
/*  A marker is re-sent this often until A serves it (a frame may be lost with a connection
 *  that ZeroMQ closed). */
#define RESEND_MS 500
#define USER      "alice"
#define SCOPE     "team:peer"

/*  The fake member. */
typedef struct {
    node_identity_t identity;
    uint8_t *card; /* owned */
    size_t card_len;
    zcert_t *cert;   /* its CURVE key pair */
    zsock_t *router; /* where A's messages to it arrive */
    char endpoint[64];
    zsock_t *dealer; /* to A's gossip port */
    uint64_t incarnation;
    crdt_hlc_t clock;
    crdt_scope_t *scope;  /* its replica of SCOPE */
    crdt_scope_t *marker; /* its replica of team:marker */
    int markers;
    uint64_t pongs;
    uint64_t pushes_ack_later, pushes_ack_now; /* A's pushes of SCOPE received, by ack_later */
} s_peer_t;

static node_harness_admin_t s_admin;
static node_harness_t *s_a, *s_b;
static engram_t *s_ea, *s_eb; /* the test's agent on A and B */
static engram_t *s_aa, *s_ab; /* the admin's connections to A and B */
static s_peer_t s_peer;

/*  --- checks --------------------------------------------------------------------------- */

static void s_expect(engram_t *e, int rc, int want, const char *what)
{
    if (rc != want)
        fail_msg("%s: %d (%s), expected %d (%s); node said: '%s'", what, rc, engram_strerror(rc),
                 want, engram_strerror(want), e ? engram_last_error(e) : "");
}

static engram_cluster_t *s_status(void)
{
    engram_cluster_t *status = NULL;
    s_expect(s_aa, engram_cluster_status(s_aa, &status), 0, "cluster status of A");
    return status;
}

typedef struct {
    uint64_t bad;
    uint64_t applied;
    uint64_t held_back;
    char vector[4096]; /* A's vector of SCOPE */
    size_t nscopes;
} s_counts_t;

static s_counts_t s_counts(void)
{
    engram_cluster_t *status = s_status();
    s_counts_t c = {status->bad_messages, status->pushes_applied, status->pushes_held_back, "",
                    status->nscopes};
    for (size_t i = 0; i < status->nscopes; i++)
        if (strcmp(status->scopes[i].scope, SCOPE) == 0)
            snprintf(c.vector, sizeof c.vector, "%s", status->scopes[i].vector);
    engram_cluster_destroy(&status);
    return c;
}

/*  The register's winner on node e (NULL: absent). Caller frees. */
static char *s_get(engram_t *e, const char *scope, const char *key)
{
    engram_result_t *r = NULL;
    int rc = engram_get(e, scope, key, NULL, 0, &r);
    if (rc != 0 && rc != ENGRAM_ENOTFOUND)
        s_expect(e, rc, 0, "get");
    char *value = NULL;
    if (rc == 0 && r->nitems)
        value = strndup((const char *)r->items[0].value, r->items[0].len);
    engram_result_destroy(&r);
    return value;
}

static void s_expect_absent(engram_t *e, const char *scope, const char *key)
{
    char *value = s_get(e, scope, key);
    if (value) {
        char message[256];
        snprintf(message, sizeof message, "%s %s is '%.64s'", scope, key, value);
        free(value);
        fail_msg("%s, expected nothing", message);
    }
}

/*  Node A answers a stats call: it is alive and serving. */
static void s_serving(void)
{
    engram_stats_t stats;
    assert_true(node_harness_alive(s_a));
    s_expect(s_ea, engram_stats(s_ea, &stats), 0, "stats of A");
}

/*  --- the fake member's wire -------------------------------------------------------------- */

/*  The member's gossip record of itself, for SWIM messages. Borrows the peer's strings. */
static void s_self_record(Engram__GossipMember *m)
{
    engram__gossip_member__init(m);
    m->id = s_peer.identity.node_id;
    m->incarnation = s_peer.incarnation;
    m->state = 0; /* alive */
    m->endpoint = s_peer.endpoint;
    m->card = (ProtobufCBinaryData){s_peer.card_len, s_peer.card};
}

/*  A packed Gossip (schema 1.0 unless major says otherwise). Caller frees. */
static zframe_t *s_pack(Engram__Gossip *msg, uint32_t major)
{
    msg->schema_major = major;
    msg->schema_minor = 0;
    zframe_t *frame = zframe_new(NULL, engram__gossip__get_packed_size(msg));
    assert_non_null(frame);
    engram__gossip__pack(msg, zframe_data(frame));
    return frame;
}

static void s_send_frame(zframe_t *frame)
{
    zframe_t *copy = zframe_dup(frame);
    assert_int_equal(zframe_send(&copy, s_peer.dealer, 0), 0);
}

/*  Answers A's pings (the member stays alive, refuting any suspicion); counts A's pushes of
 *  SCOPE by whether they ask for their ack at once; drops everything else A sends (digests,
 *  acks, pull answers, membership). */
static void s_pump(void)
{
    while (zsock_events(s_peer.router) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv(s_peer.router);
        if (!msg)
            break;
        zframe_t *payload = zmsg_last(msg);
        Engram__Gossip *in = zmsg_size(msg) == 2
                                 ? test_gossip_unpack(zframe_data(payload), zframe_size(payload))
                                 : NULL;
        zmsg_destroy(&msg);
        if (in && in->body_case == ENGRAM__GOSSIP__BODY_PUSH && strcmp(in->push->scope, SCOPE) == 0)
            (*(in->push->ack_later ? &s_peer.pushes_ack_later : &s_peer.pushes_ack_now))++;
        if (in && in->body_case == ENGRAM__GOSSIP__BODY_PING) {
            /* Refutes a suspicion about itself, as a member must (engine.h). */
            for (size_t i = 0; i < in->ping->n_updates; i++) {
                const Engram__GossipMember *u = in->ping->updates[i];
                if (u->id == s_peer.identity.node_id && u->state != 0 &&
                    u->incarnation >= s_peer.incarnation)
                    s_peer.incarnation = u->incarnation + 1;
            }
            Engram__GossipMember me;
            s_self_record(&me);
            Engram__GossipPong pong = ENGRAM__GOSSIP_PONG__INIT;
            pong.seq = in->ping->seq;
            pong.target = s_peer.identity.node_id;
            pong.sender = &me;
            Engram__Gossip out = ENGRAM__GOSSIP__INIT;
            out.body_case = ENGRAM__GOSSIP__BODY_PONG;
            out.pong = &pong;
            zframe_t *frame = s_pack(&out, ENGRAM_SCHEMA_MAJOR);
            zframe_send(&frame, s_peer.dealer, ZFRAME_DONTWAIT);
            zframe_destroy(&frame);
            s_peer.pongs++;
        }
        if (in)
            engram__gossip__free_unpacked(in, NULL);
    }
}

/*  A write of key = text on the peer's replica `scope` (SCOPE's or another), as the Gossip push
 *  of its delta under scope name sid; `pad` more bytes of payload make it as large as needed.
 *  Caller owns the frame. */
static zframe_t *s_write(crdt_scope_t *scope, const char *sid, const char *key, const char *text,
                         size_t pad)
{
    uint64_t hlc = crdt_hlc_now(&s_peer.clock, (uint64_t)zclock_time());
    size_t len = strlen(text) + pad;
    char *payload = malloc(len + 1);
    assert_non_null(payload);
    memset(payload, 'p', len);
    memcpy(payload, text, strlen(text));
    crdt_value_t *v = crdt_value_new();
    assert_non_null(v);
    v->created_hlc = v->updated_hlc = hlc;
    assert_int_equal(crdt_value_set_data(v, payload, len), 0);
    assert_int_equal(crdt_value_set_user(v, USER), 0);
    assert_int_equal(crdt_value_set_author(v, "peer"), 0);
    assert_int_equal(crdt_value_add_agent(v, "peer"), 0);
    free(payload);
    uint8_t *value = NULL, *deps = NULL, *delta_buf = NULL;
    size_t value_len = 0, deps_len = 0, delta_len = 0;
    assert_int_equal(crdt_value_encode(v, &value, &value_len), 0);
    crdt_value_destroy(&v);
    assert_int_equal(crdt_ctx_encode(crdt_scope_ctx(scope), &deps, &deps_len), 0);
    crdt_scope_t *delta = NULL;
    assert_int_equal(crdt_mvreg_write(scope, key, hlc, value, value_len, &delta), 0);
    free(value);
    assert_int_equal(crdt_scope_encode(delta, &delta_buf, &delta_len), 0);
    crdt_scope_destroy(&delta);
    Engram__GossipPush push = ENGRAM__GOSSIP_PUSH__INIT;
    push.scope = (char *)sid;
    push.deps = (ProtobufCBinaryData){deps_len, deps};
    push.delta = (ProtobufCBinaryData){delta_len, delta_buf};
    Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
    msg.body_case = ENGRAM__GOSSIP__BODY_PUSH;
    msg.push = &push;
    zframe_t *frame = s_pack(&msg, ENGRAM_SCHEMA_MAJOR);
    free(deps);
    free(delta_buf);
    return frame;
}

/*  A write on a fresh replica of its own (a scope the peer's main chains never touch). */
static zframe_t *s_write_alone(const char *sid, const char *key, size_t pad)
{
    crdt_scope_t *scope = crdt_scope_new(s_peer.identity.node_id);
    assert_non_null(scope);
    zframe_t *frame = s_write(scope, sid, key, key, pad);
    crdt_scope_destroy(&scope);
    return frame;
}

typedef struct {
    const char *key;
    zframe_t *frame;
    int64_t next_send_ms;
} s_marker_t;

static bool s_marker_served(void *arg)
{
    s_marker_t *m = arg;
    s_pump();
    if (node_harness_now_ms() >= m->next_send_ms) {
        s_send_frame(m->frame);
        m->next_send_ms = node_harness_now_ms() + RESEND_MS;
    }
    char *value = s_get(s_ea, "team:marker", m->key);
    bool served = value != NULL;
    free(value);
    node_harness_because("A does not serve the marker %s", m->key);
    return served;
}

/*  Pushes the next marker and waits until A serves it: every frame sent before it has been
 *  handled. Counts one applied push. */
static void s_sync(void)
{
    char key[32];
    snprintf(key, sizeof key, "m%04d", s_peer.markers++);
    s_marker_t m = {key, s_write(s_peer.marker, "team:marker", key, key, 0), 0};
    bool served = node_harness_poll(WAIT_MS, s_marker_served, &m);
    zframe_destroy(&m.frame);
    if (!served)
        fail_msg("%s within %d ms", node_harness_why(), WAIT_MS);
}

/*  --- joining -------------------------------------------------------------------------- */

/*  Introduces the peer on A's introduction port with card; returns A's answer. */
static Engram__Introduction *s_introduce(const uint8_t *card, size_t card_len)
{
    const char *gossip = node_harness_gossip_endpoint(s_a);
    const char *colon = strrchr(gossip, ':');
    zsock_t *intro = zsock_new(ZMQ_DEALER);
    assert_non_null(intro);
    zsock_set_linger(intro, 0);
    zsock_set_rcvtimeo(intro, WAIT_MS);
    assert_int_equal(
        zsock_connect(intro, "%.*s:%d", (int)(colon - gossip), gossip, atoi(colon + 1) + 1), 0);
    Engram__Introduction hello = ENGRAM__INTRODUCTION__INIT;
    hello.card = (ProtobufCBinaryData){card_len, (uint8_t *)card};
    hello.endpoint = s_peer.endpoint;
    hello.incarnation = s_peer.incarnation;
    zframe_t *frame = zframe_new(NULL, engram__introduction__get_packed_size(&hello));
    assert_non_null(frame);
    engram__introduction__pack(&hello, zframe_data(frame));
    assert_int_equal(zframe_send(&frame, intro, 0), 0);
    zframe_t *answer = zframe_recv(intro);
    zsock_destroy(&intro);
    if (!answer)
        fail_msg("A did not answer the introduction within %d ms", WAIT_MS);
    Engram__Introduction *in =
        engram__introduction__unpack(NULL, zframe_size(answer), zframe_data(answer));
    zframe_destroy(&answer);
    assert_non_null(in);
    return in;
}

/*  Binds the peer's ROUTER on a free port (retried if it is taken meanwhile). */
static void s_bind_router(void)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        int port = node_harness_free_ports(1);
        assert_true(port > 0);
        snprintf(s_peer.endpoint, sizeof s_peer.endpoint, "tcp://127.0.0.1:%d", port);
        if (zsock_bind(s_peer.router, "%s", s_peer.endpoint) >= 0)
            return;
    }
    fail_msg("the peer's ROUTER could not bind a port");
}

/*  The peer becomes a member of A's cluster and connects to A's gossip port. */
static void s_peer_join(void)
{
    assert_int_equal(node_identity_generate(&s_peer.identity), 0);
    assert_int_equal(node_admin_admit(&s_admin.trust, s_admin.secret_key,
                                      s_peer.identity.public_key, (uint64_t)zclock_time(),
                                      &s_peer.card, &s_peer.card_len),
                     0);
    uint8_t curve_public[32], curve_secret[32];
    assert_int_equal(node_admission_curve_keys(s_peer.identity.public_key,
                                               s_peer.identity.secret_key, curve_public,
                                               curve_secret),
                     0);
    s_peer.cert = zcert_new_from(curve_public, curve_secret);
    assert_non_null(s_peer.cert);
    s_peer.incarnation = (uint64_t)zclock_time();
    s_peer.scope = crdt_scope_new(s_peer.identity.node_id);
    s_peer.marker = crdt_scope_new(s_peer.identity.node_id);
    s_peer.router = zsock_new(ZMQ_ROUTER);
    assert_true(s_peer.scope && s_peer.marker && s_peer.router);
    zcert_apply(s_peer.cert, s_peer.router);
    zsock_set_curve_server(s_peer.router, 1);
    zsock_set_linger(s_peer.router, 0);
    s_bind_router();

    Engram__Introduction *answer = s_introduce(s_peer.card, s_peer.card_len);
    if (answer->error[0])
        fail_msg("A refused the admitted peer's introduction: %s", answer->error);
    node_trust_t trust;
    uint8_t a_key[crypto_sign_PUBLICKEYBYTES];
    assert_int_equal(node_admission_open_card(answer->card.data, answer->card.len, &trust, a_key),
                     0);
    engram__introduction__free_unpacked(answer, NULL);
    assert_memory_equal(a_key, node_harness_public_key(s_a), sizeof a_key);
    uint8_t a_curve[32];
    assert_int_equal(node_admission_curve_keys(a_key, NULL, a_curve, NULL), 0);
    char server_key[41];
    zmq_z85_encode(server_key, a_curve, 32);

    s_peer.dealer = zsock_new(ZMQ_DEALER);
    assert_non_null(s_peer.dealer);
    zcert_apply(s_peer.cert, s_peer.dealer);
    zsock_set_curve_serverkey(s_peer.dealer, server_key);
    zsock_set_linger(s_peer.dealer, 0);
    zsock_set_sndtimeo(s_peer.dealer, WAIT_MS);
    assert_int_equal(zsock_connect(s_peer.dealer, "%s", node_harness_gossip_endpoint(s_a)), 0);
}

/*  --- fixtures ------------------------------------------------------------------------- */

static int s_teardown(void **state)
{
    (void)state;
    engram_destroy(&s_ea);
    engram_destroy(&s_eb);
    engram_destroy(&s_aa);
    engram_destroy(&s_ab);
    node_harness_destroy(&s_a);
    node_harness_destroy(&s_b);
    zsock_destroy(&s_peer.dealer);
    zsock_destroy(&s_peer.router);
    zcert_destroy(&s_peer.cert);
    crdt_scope_destroy(&s_peer.scope);
    crdt_scope_destroy(&s_peer.marker);
    free(s_peer.card);
    memset(&s_peer, 0, sizeof s_peer);
    return 0;
}

static int s_setup(void **state)
{
    (void)state;
    static const char *const extra[] = {"--max-gossip-bytes", MAX_GOSSIP_TXT,
                                        "--gossip-interval-ms", "100", NULL};
    if (node_harness_admin_init(&s_admin) != 0)
        return -1;
    s_a = node_harness_new(NULL);
    s_b = node_harness_new(NULL);
    bool up = s_a && s_b && node_harness_admit(s_a, &s_admin) == 0 &&
              node_harness_admit(s_b, &s_admin) == 0;
    const char *agents[] = {"agent-p", "peer", "victim"};
    for (size_t i = 0; up && i < sizeof agents / sizeof agents[0]; i++)
        up = node_harness_grant(s_a, agents[i], USER) == 0 &&
             node_harness_grant(s_b, agents[i], USER) == 0;
    up = up && node_harness_start_member(s_a, NULL, extra) == 0 &&
         node_harness_start_member(s_b, node_harness_gossip_endpoint(s_a), extra) == 0;
    if (up) {
        s_ea = node_harness_connect(s_a, "agent-p", USER, CALL_TIMEOUT_MS);
        s_eb = node_harness_connect(s_b, "agent-p", USER, CALL_TIMEOUT_MS);
        s_aa = node_harness_admin_connect(s_a, CALL_TIMEOUT_MS);
        s_ab = node_harness_admin_connect(s_b, CALL_TIMEOUT_MS);
        up = s_ea && s_eb && s_aa && s_ab;
    }
    if (!up) /* cmocka runs no group teardown after a failed group setup */
        s_teardown(state);
    return up ? 0 : -1;
}

/*  --- the test ------------------------------------------------------------------------- */

/*  Sends msg (taken), then a marker; expects exactly one more bad message, no change of
 *  SCOPE on A, and A serving. */
static void s_expect_bad_msg(zmsg_t **msg_p, const char *what)
{
    s_counts_t before = s_counts();
    assert_int_equal(zmsg_send(msg_p, s_peer.dealer), 0);
    s_sync();
    s_counts_t after = s_counts();
    if (after.bad != before.bad + 1)
        fail_msg("%s: bad_messages went from %" PRIu64 " to %" PRIu64 ", expected one more "
                 "(A holds %zu scopes, was %zu)",
                 what, before.bad, after.bad, after.nscopes, before.nscopes);
    if (strcmp(after.vector, before.vector) != 0)
        fail_msg("%s changed A's vector of " SCOPE ": [%s] -> [%s]", what, before.vector,
                 after.vector);
    if (after.applied != before.applied + 1) /* the marker's */
        fail_msg("%s: pushes_applied went from %" PRIu64 " to %" PRIu64 " (the marker is one)",
                 what, before.applied, after.applied);
    s_serving();
}

/*  The same for a one-frame message (taken). */
static void s_expect_bad(zframe_t **frame_p, const char *what)
{
    zmsg_t *msg = zmsg_new();
    assert_non_null(msg);
    zmsg_append(msg, frame_p);
    s_expect_bad_msg(&msg, what);
}

/*  A frame the engine takes: expects no bad message, `applied` more pushes applied (the
 *  marker's not included) and `held` more held back. */
static void s_expect_good(zframe_t *frame, unsigned applied, unsigned held, const char *what)
{
    s_counts_t before = s_counts();
    s_send_frame(frame);
    s_sync();
    s_counts_t after = s_counts();
    if (after.bad != before.bad)
        fail_msg("%s was counted bad: bad_messages %" PRIu64 " -> %" PRIu64, what, before.bad,
                 after.bad);
    if (after.applied != before.applied + applied + 1)
        fail_msg("%s: pushes_applied %" PRIu64 " -> %" PRIu64 ", expected %u more and the "
                 "marker",
                 what, before.applied, after.applied, applied);
    if (after.held_back != before.held_back + held)
        fail_msg("%s: pushes_held_back %" PRIu64 " -> %" PRIu64 ", expected %u more", what,
                 before.held_back, after.held_back, held);
    s_serving();
}

static void s_expect_value(engram_t *e, const char *key, const char *want)
{
    char *value = s_get(e, SCOPE, key);
    if (!value || strcmp(value, want) != 0) {
        char got[128];
        snprintf(got, sizeof got, "%.100s", value ? value : "(nothing)");
        free(value);
        fail_msg(SCOPE " %s is %s, expected %s", key, got, want);
    }
    free(value);
}

/*  The canonical use: an admitted member introduces itself, connects, and its pushes are
 *  served; a push is applied once, however often it comes. */
static void test_push_replayed(void **state)
{
    (void)state;
    s_peer_join();
    s_sync(); /* connected, admitted, heard */
    zframe_t *w1 = s_write(s_peer.scope, SCOPE, "k1", "v1", 0);
    s_expect_good(w1, 1, 0, "a push");
    s_expect_value(s_ea, "k1", "v1");
    s_expect_good(w1, 0, 0, "the push replayed");
    s_expect_good(w1, 0, 0, "the push replayed again");
    s_expect_value(s_ea, "k1", "v1");
    zframe_destroy(&w1);
}

static void test_malformed_frames(void **state)
{
    (void)state;
    uint8_t noise[512];
    randombytes_buf(noise, sizeof noise);
    noise[0] = 0x07; /* field 0, wire type 7: never a protobuf */
    zframe_t *frame = zframe_new(noise, sizeof noise);
    s_expect_bad(&frame, "random bytes");
    frame = zframe_new(NULL, 0);
    s_expect_bad(&frame, "an empty frame");
    zframe_t *good = s_write_alone("team:cut", "whole", 0);
    frame = zframe_new(zframe_data(good), zframe_size(good) / 2);
    s_expect_bad(&frame, "a push cut in half");
    frame = zframe_new(zframe_data(good), zframe_size(good) - 1);
    s_expect_bad(&frame, "a push without its last byte");
    zmsg_t *two = zmsg_new();
    zmsg_addmem(two, zframe_data(good), zframe_size(good));
    zmsg_addmem(two, zframe_data(good), zframe_size(good));
    s_expect_bad_msg(&two, "a push in two frames");
    Engram__Gossip *parsed = engram__gossip__unpack(NULL, zframe_size(good), zframe_data(good));
    assert_non_null(parsed);
    zframe_destroy(&good);
    frame = s_pack(parsed, ENGRAM_SCHEMA_MAJOR + 1);
    s_expect_bad(&frame, "a push of a newer schema");
    parsed->push->deps.len -= 1; /* a context cut short inside a valid frame (its last field
                                    loses a byte; half of an empty context may still parse) */
    frame = s_pack(parsed, ENGRAM_SCHEMA_MAJOR);
    s_expect_bad(&frame, "a push whose deps are truncated");
    parsed->push->delta.len /= 2;
    parsed->push->deps.len = 0;
    frame = s_pack(parsed, ENGRAM_SCHEMA_MAJOR);
    s_expect_bad(&frame, "a push whose delta is truncated");
    engram__gossip__free_unpacked(parsed, NULL);
    Engram__Gossip empty = ENGRAM__GOSSIP__INIT;
    frame = s_pack(&empty, ENGRAM_SCHEMA_MAJOR);
    s_expect_bad(&frame, "a Gossip without a body");
    Engram__GossipChunk chunk = ENGRAM__GOSSIP_CHUNK__INIT;
    chunk.scope = SCOPE;
    chunk.index = 3;
    chunk.count = 2;
    chunk.data = (ProtobufCBinaryData){sizeof noise, noise};
    Engram__Gossip chunk_msg = ENGRAM__GOSSIP__INIT;
    chunk_msg.body_case = ENGRAM__GOSSIP__BODY_CHUNK;
    chunk_msg.chunk = &chunk;
    frame = s_pack(&chunk_msg, ENGRAM_SCHEMA_MAJOR);
    s_expect_bad(&frame, "a chunk past its count");
    s_expect_absent(s_ea, "team:cut", "whole");
    assert_true(node_harness_log_contains(s_a, "gossip frame refused"));
}

/*  Scopes a peer may not write: an agent's private memory, a name no agent could use. */
static void test_forbidden_scopes(void **state)
{
    (void)state;
    zframe_t *frame = s_write_alone("@victim", "secret", 0);
    s_expect_bad(&frame, "a push into the private scope @victim");
    engram_t *victim = node_harness_connect(s_a, "victim", USER, CALL_TIMEOUT_MS);
    assert_non_null(victim);
    s_expect_absent(victim, "private", "secret");
    engram_destroy(&victim);
    frame = s_write_alone("no-kind", "k", 0);
    s_expect_bad(&frame, "a push into the invalid scope name no-kind");
    engram_cluster_t *status = s_status();
    char name[64] = "";
    for (size_t i = 0; i < status->nscopes; i++)
        if (strcmp(status->scopes[i].scope, "no-kind") == 0 || status->scopes[i].scope[0] == '@')
            snprintf(name, sizeof name, "%s", status->scopes[i].scope);
    engram_cluster_destroy(&status);
    if (name[0])
        fail_msg("A holds the scope '%s' a peer pushed", name);
}

/*  A frame of kind 0 push, 1 ack, 2 chunk, 3 digest naming scope (otherwise well formed).
 *  Caller owns it. */
static zframe_t *s_named(int kind, const char *scope)
{
    if (kind == 0)
        return s_write_alone(scope, "k", 0);
    uint8_t *ctx = NULL;
    size_t ctx_len = 0;
    assert_int_equal(crdt_ctx_encode(crdt_scope_ctx(s_peer.scope), &ctx, &ctx_len), 0);
    Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
    Engram__GossipAck ack = ENGRAM__GOSSIP_ACK__INIT;
    Engram__GossipChunk chunk = ENGRAM__GOSSIP_CHUNK__INIT;
    Engram__GossipDigest digest = ENGRAM__GOSSIP_DIGEST__INIT;
    Engram__GossipVersion version = ENGRAM__GOSSIP_VERSION__INIT, *versions[] = {&version};
    if (kind == 1) {
        ack.scope = (char *)scope;
        ack.ctx = (ProtobufCBinaryData){ctx_len, ctx};
        msg.body_case = ENGRAM__GOSSIP__BODY_ACK;
        msg.ack = &ack;
    } else if (kind == 2) {
        chunk.scope = (char *)scope;
        chunk.count = 1;
        chunk.total = ctx_len;
        chunk.data = (ProtobufCBinaryData){ctx_len, ctx};
        msg.body_case = ENGRAM__GOSSIP__BODY_CHUNK;
        msg.chunk = &chunk;
    } else {
        version.scope = (char *)scope;
        version.ctx = (ProtobufCBinaryData){ctx_len, ctx};
        digest.versions = versions;
        digest.n_versions = 1;
        msg.body_case = ENGRAM__GOSSIP__BODY_DIGEST;
        msg.digest = &digest;
    }
    zframe_t *frame = s_pack(&msg, ENGRAM_SCHEMA_MAJOR);
    free(ctx);
    return frame;
}

/*  Scope names engramd's rule refuses (node/common/names.h), in every message that names a
 *  scope: each is counted once in bad_scope and bad_messages, and A holds none of them. */
static void test_malformed_scope_names(void **state)
{
    (void)state;
    char long_name[2048];
    memset(long_name, 'a', sizeof long_name - 1);
    memcpy(long_name, "team:", 5);
    long_name[sizeof long_name - 1] = '\0';
    const char *names[] = {"cult:x", "team:", long_name, "team:\xc3\x28", "team:evil\xe2\x80\xae"};
    const char *kinds[] = {"push", "ack", "chunk", "digest"};
    for (size_t n = 0; n < sizeof names / sizeof *names; n++) {
        for (int kind = 0; kind < 4; kind++) {
            engram_cluster_t *status = s_status();
            uint64_t bad_scope = status->bad_scope;
            engram_cluster_destroy(&status);
            zframe_t *frame = s_named(kind, names[n]);
            char what[96];
            snprintf(what, sizeof what, "a %s naming bad scope #%zu", kinds[kind], n);
            s_expect_bad(&frame, what);
            status = s_status();
            /* protobuf-c may refuse invalid UTF-8 itself: counted bad all the same */
            if (status->bad_scope != bad_scope + 1 && n != 3)
                fail_msg("%s: bad_scope went from %" PRIu64 " to %" PRIu64, what, bad_scope,
                         status->bad_scope);
            for (size_t i = 0; i < status->nscopes; i++)
                if (strcmp(status->scopes[i].scope, names[n]) == 0)
                    fail_msg("%s: A holds that scope", what);
            engram_cluster_destroy(&status);
        }
    }
    assert_true(node_harness_log_contains(s_a, "gossip frame refused"));
}

/*  A frame above --max-gossip-bytes that the socket still lets through (it allows some slack
 *  for framing): engine.h counts oversized input as bad, changing nothing. */
static void test_frame_above_budget(void **state)
{
    (void)state;
    zframe_t *frame = s_write_alone("team:big", "big", MAX_GOSSIP + 1024);
    assert_true(zframe_size(frame) > MAX_GOSSIP && zframe_size(frame) < MAX_GOSSIP + 4096);
    s_expect_bad(&frame, "a push above --max-gossip-bytes");
    s_expect_absent(s_ea, "team:big", "big");
}

/*  Far above the budget ZeroMQ cuts the connection off before engramd sees the frame: it
 *  cannot be counted, but it must change nothing, and the member's next frames get through
 *  on a new connection. */
static void test_frame_far_above_budget(void **state)
{
    (void)state;
    s_counts_t before = s_counts();
    zframe_t *frame = s_write_alone("team:huge", "huge", FAR_ABOVE);
    assert_int_equal(zframe_send(&frame, s_peer.dealer, 0), 0);
    s_sync(); /* re-sent until it gets through the new connection */
    s_counts_t after = s_counts();
    if (strcmp(after.vector, before.vector) != 0 || after.nscopes != before.nscopes)
        fail_msg("a frame far above the limit changed A's scopes");
    s_expect_absent(s_ea, "team:huge", "huge");
    s_serving();
}

/*  w3 depends on w2, which A lacks: held back, no effect until w2 has come. */
static void test_out_of_order(void **state)
{
    (void)state;
    zframe_t *w2 = s_write(s_peer.scope, SCOPE, "k2", "v2", 0);
    zframe_t *w3 = s_write(s_peer.scope, SCOPE, "k3", "v3", 0);
    s_expect_good(w3, 0, 1, "a push whose dependency has not arrived");
    s_expect_absent(s_ea, SCOPE, "k3");
    s_expect_good(w2, 1, 0, "its dependency");
    s_expect_value(s_ea, "k2", "v2");
    /* w3 may have been kept and applied with w2; if it was dropped, it applies now. */
    char *k3 = s_get(s_ea, SCOPE, "k3");
    bool kept = k3 != NULL;
    free(k3);
    if (!kept)
        s_expect_good(w3, 1, 0, "the held-back push sent again");
    s_expect_value(s_ea, "k3", "v3");
    zframe_destroy(&w2);
    zframe_destroy(&w3);
}

/*  On the introduction port: noise, and a card another cluster's admin signed. Each is
 *  answered with an error, counted and logged; the member stays what it was. */
static void test_bad_introductions(void **state)
{
    (void)state;
    s_counts_t before = s_counts();
    uint8_t noise[256];
    randombytes_buf(noise, sizeof noise);
    noise[0] = 0x07;
    Engram__Introduction *answer = s_introduce(noise, sizeof noise);
    bool refused = answer->error[0] != '\0';
    engram__introduction__free_unpacked(answer, NULL);
    node_harness_admin_t other;
    assert_int_equal(node_harness_admin_init(&other), 0);
    uint8_t *card = NULL;
    size_t card_len = 0;
    assert_int_equal(node_admin_admit(&other.trust, other.secret_key, s_peer.identity.public_key,
                                      (uint64_t)zclock_time(), &card, &card_len),
                     0);
    answer = s_introduce(card, card_len);
    free(card);
    refused &= answer->error[0] != '\0';
    engram__introduction__free_unpacked(answer, NULL);
    s_counts_t after = s_counts();
    if (!refused)
        fail_msg("a bad introduction was answered without an error");
    if (after.bad != before.bad + 2)
        fail_msg("two bad introductions: bad_messages %" PRIu64 " -> %" PRIu64, before.bad,
                 after.bad);
    assert_true(node_harness_log_contains(s_a, "introduction refused"));
    s_sync(); /* the member's connection is unaffected */
}

/*  Every scope A holds, B holds alike (same vector). */
static bool s_b_like_a(void *arg)
{
    (void)arg;
    engram_cluster_t *a = s_status(), *b = NULL;
    s_expect(s_ab, engram_cluster_status(s_ab, &b), 0, "cluster status of B");
    bool differs = false;
    for (size_t i = 0; i < a->nscopes && !differs; i++) {
        const char *theirs = "(none)";
        for (size_t j = 0; j < b->nscopes; j++)
            if (strcmp(a->scopes[i].scope, b->scopes[j].scope) == 0)
                theirs = b->scopes[j].vector;
        differs = strcmp(a->scopes[i].vector, theirs) != 0;
        if (differs)
            node_harness_because("%s: A has [%s], B has [%s]", a->scopes[i].scope,
                                 a->scopes[i].vector, theirs);
    }
    engram_cluster_destroy(&a);
    engram_cluster_destroy(&b);
    return !differs;
}

/*  After all that: the member is still alive on A, A still replicates (B gets the member's
 *  writes by pulling from A, and A's own), and both nodes stop cleanly. */
/*  True once the peer has received more of A's pushes of the kind *arg counts than *arg's
 *  baseline (arg: {counter, baseline}). */
static bool s_pushes_grew(void *arg)
{
    const uint64_t *const *c = arg;
    s_pump();
    return *c[0] > *c[1];
}

/*  A's push of a plain write says nothing waits for its ack (acknowledged at the receiver's
 *  next tick); the push of a write waiting for replicas asks for its ack at once. */
static void test_push_asks_for_ack_when_awaited(void **state)
{
    (void)state;
    uint64_t later = s_peer.pushes_ack_later, now = s_peer.pushes_ack_now;
    engram_result_t *r = NULL;
    s_expect(s_ea, engram_put(s_ea, SCOPE, "k5", "v5", 2, NULL, 0, &r), 0, "put on A");
    engram_result_destroy(&r);
    const uint64_t *plain[2] = {&s_peer.pushes_ack_later, &later};
    if (!node_harness_poll(WAIT_MS, s_pushes_grew, plain))
        fail_msg("the peer got no push of the plain put with ack_later");
    assert_int_equal(s_peer.pushes_ack_now, now);
    /* B holds it once it has what the push depends on, the fake member's writes included,
     * which it may first pull from A: on a loaded host that took more than the default 5 s
     * once; the wait stays within the test's call timeout */
    s_expect(
        s_ea,
        engram_put_replicated(s_ea, SCOPE, "k6", "v6", 2, NULL, 0, 2, CALL_TIMEOUT_MS - 1000, &r),
        0, "put --replicas 2 on A");
    engram_result_destroy(&r);
    const uint64_t *awaited[2] = {&s_peer.pushes_ack_now, &now};
    if (!node_harness_poll(WAIT_MS, s_pushes_grew, awaited))
        fail_msg("the peer got no push of the replicated put asking for its ack at once");
}

/*  Whether A lists the peer alive, answering A's pings meanwhile: the fake member answers only
 *  while the test pumps, so on a loaded host A may suspect it between two pumps, and the
 *  member refutes that at A's next ping. A member A dropped, or no longer pings, is never
 *  listed alive again. */
static bool s_peer_listed_alive(void *arg)
{
    (void)arg;
    s_pump();
    engram_cluster_t *status = s_status();
    bool alive = false;
    for (size_t i = 0; i < status->nmembers; i++)
        alive |= status->members[i].id == s_peer.identity.node_id &&
                 strcmp(status->members[i].state, "alive") == 0;
    engram_cluster_destroy(&status);
    node_harness_because("A does not list the peer alive (it answered %" PRIu64 " pings)",
                         s_peer.pongs);
    return alive;
}

static void test_still_replicating(void **state)
{
    (void)state;
    s_sync();
    if (!node_harness_poll(WAIT_MS, s_peer_listed_alive, NULL))
        fail_msg("%s", node_harness_why());
    engram_result_t *r = NULL;
    s_expect(s_ea, engram_put(s_ea, SCOPE, "k4", "v4", 2, NULL, 0, &r), 0, "put on A");
    engram_result_destroy(&r);
    if (!node_harness_poll(WAIT_MS, s_b_like_a, NULL))
        fail_msg("B: %s", node_harness_why());
    s_expect_value(s_eb, "k1", "v1");
    s_expect_value(s_eb, "k4", "v4");
    engram_destroy(&s_ea);
    engram_destroy(&s_eb);
    engram_destroy(&s_aa);
    engram_destroy(&s_ab);
    assert_int_equal(node_harness_stop(s_b), 0);
    assert_int_equal(node_harness_stop(s_a), 0);
}

/*  Before each later test: both nodes still up and the member joined (a crash or a failed
 *  join fails the setup of every later test, not silently). */
static int s_up(void **state)
{
    (void)state;
    return node_harness_alive(s_a) && node_harness_alive(s_b) && s_peer.dealer ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_replayed),
        cmocka_unit_test_setup(test_malformed_frames, s_up),
        cmocka_unit_test_setup(test_forbidden_scopes, s_up),
        cmocka_unit_test_setup(test_malformed_scope_names, s_up),
        cmocka_unit_test_setup(test_frame_above_budget, s_up),
        cmocka_unit_test_setup(test_frame_far_above_budget, s_up),
        cmocka_unit_test_setup(test_out_of_order, s_up),
        cmocka_unit_test_setup(test_bad_introductions, s_up),
        cmocka_unit_test_setup(test_push_asks_for_ack_when_awaited, s_up),
        cmocka_unit_test_setup(test_still_replicating, s_up),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
