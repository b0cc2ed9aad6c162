/*  The agent API end to end: libengram against real engramd processes.
 *
 *  Every operation and every type is driven through libengram (include/engram/engram.h)
 *  against an engramd started by node_harness, and its result read back: registers with
 *  metadata, delete, sets, counters (negative amounts, overflow), logs in order, paged lists,
 *  remember, history, share with provenance, private isolation, TTL expiry and purge,
 *  subscriptions, causal tokens (own, forged and another node's), a restart on the same data.
 *  Every successful result must carry a non-empty causal token (EXPECT_OK, s_token_ok).
 *
 *  Bad input must get its error code, change nothing (checked by reading back and by the
 *  node's write counter) and leave the node serving (a stats call after each): invalid
 *  scopes, keys and elements, wrong types, oversized values, and raw ZeroMQ frames sent with
 *  czmq (empty, random, two frames, unknown op, newer schema, no agent, over the frame size).
 *
 *  Nodes: the group shares node A (--list-limit 3 so that lists page, --purge-interval-ms 100
 *  so that TTL purges are quick, --max-value-bytes 1000, --max-frame-bytes 65536) and node B
 *  (default limits; its tokens name dots A never saw); tests use their own scopes, so they do
 *  not see each other's data. If a test crashes a shared node, the next test's setup
 *  restarts it on its data (s_revive), so one bug fails one test. The restart and subscriber
 *  tests have nodes of their own. Every stop is SIGTERM with exit status 0 required, which
 *  under -DENGRAM_SANITIZE=ON also means no leak in engramd; the last test stops A and B.
 *  Group and test teardowns kill and remove every node and release what the test held (the
 *  s_hold registry), also after a failure.
 *
 *  Access control: every connection's agent is granted for its user on the node it connects
 *  to (node_harness_connect); the agent comes from the connection's key, so a raw request
 *  naming another agent is refused and one naming none acts as the key's. A reader sees a
 *  fragment only while its user may act through every agent that wrote it, so a test in which
 *  one user reads another agent's writes grants that agent for the reader's user too
 *  (s_grant), and test_put_get shows the write hidden until then.
 *
 *  Tests named for a bug (test_share_refusals, test_private_isolation_long_agent_names,
 *  test_ttl_overflow, test_subscriber_backlog, test_reply_to_a_lagging_subscriber,
 *  test_non_utf8_names, test_connection_without_agent_name) state the expected behaviour in
 *  their comment; they fail against an engramd with that bug.
 *
 *  Random frames are seeded (tests/support/prop.h): ENGRAM_SEED replays a run.
 *
 *  Known limits: one node without gossip never has concurrent writes, so a register never
 *  shows siblings here; the tests check that a read returns exactly the one winner.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <czmq.h>
#include <sodium.h>

#include "agent_keys.h"
#include "crdt/codec.h"
#include "crdt/ctx.h"
#include "engram/engram.h"
#include "node_harness.h"
#include "prop.h"
#include "proto/api.pb-c.h"

/*  Node A's settings (see the module comment). */
#define A_LIST_LIMIT    3
#define A_MAX_VALUE     1000
#define A_MAX_FRAME     65536
#define CALL_TIMEOUT_MS 10000
#define TOKEN_VARIANT   sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* clang-format off */
static const char *const s_args_a[] = {
    "--list-limit", "3",
    "--purge-interval-ms", "100",
    "--max-value-bytes", "1000",
    "--max-frame-bytes", "65536",
    NULL};
/* clang-format on */

typedef struct {
    node_harness_t *a;
    node_harness_t *b;
} s_nodes_t;

static s_nodes_t s_nodes;
static node_harness_t *s_own; /* the restart test's node */

/*  --- checks --------------------------------------------------------------------------- */

#define EXPECT_RC(e, want, call)                                                                   \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != (want))                                                                         \
            fail_msg("%s\n  returned %d (%s), expected %d (%s); node said: '%s'", #call, rc_,      \
                     engram_strerror(rc_), (want), engram_strerror(want), engram_last_error(e));   \
    } while (0)

/*  Bad input on node A: the error code, and the node answers a stats call right after. */
#define EXPECT_REFUSED(e, want, call)                                                              \
    do {                                                                                           \
        EXPECT_RC(e, want, call);                                                                  \
        s_serving(s_nodes.a, e);                                                                   \
    } while (0)

/*  A successful call whose result carries a token; the result is destroyed. */
#define EXPECT_OK(e, call, result_p)                                                               \
    do {                                                                                           \
        EXPECT_RC(e, 0, call);                                                                     \
        s_token_ok(*(result_p), #call);                                                            \
        engram_result_destroy(result_p);                                                           \
    } while (0)

/*  A successful call whose result carries a token; the result is kept. */
#define EXPECT_OK_KEEP(e, call, result_p)                                                          \
    do {                                                                                           \
        EXPECT_RC(e, 0, call);                                                                     \
        s_token_ok(*(result_p), #call);                                                            \
    } while (0)

static void s_token_ok(const engram_result_t *r, const char *what)
{
    if (!r || !r->token || !r->token[0])
        fail_msg("%s: the reply carries no causal token", what);
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_sleep_ms(int ms)
{
    zclock_sleep(ms);
}

/*  What a test holds (connections, batches, raw sockets, strings) is registered here and released
 * by the test's teardown, so that a test cut short by a failed assertion leaks nothing either. */
typedef enum { S_HELD_CONN, S_HELD_BATCH, S_HELD_SOCK, S_HELD_MEM } s_held_kind_t;
typedef struct {
    s_held_kind_t kind;
    void *p;
} s_held_t;
#define S_MAX_HELD 64
static s_held_t s_held[S_MAX_HELD];
static size_t s_nheld;

static void *s_hold(s_held_kind_t kind, void *p)
{
    assert_non_null(p);
    assert_true(s_nheld < S_MAX_HELD);
    s_held[s_nheld++] = (s_held_t){kind, p};
    return p;
}

static void s_release(s_held_t *held)
{
    if (held->kind == S_HELD_CONN) {
        engram_t *e = held->p;
        engram_destroy(&e);
    } else if (held->kind == S_HELD_BATCH) {
        engram_batch_t *batch = held->p;
        engram_batch_destroy(&batch);
    } else if (held->kind == S_HELD_SOCK) {
        zsock_t *sock = held->p;
        zsock_destroy(&sock);
    } else {
        free(held->p);
    }
}

static void s_unhold(void *p)
{
    for (size_t i = 0; i < s_nheld; i++)
        if (s_held[i].p == p) {
            memmove(&s_held[i], &s_held[i + 1], (s_nheld - i - 1) * sizeof s_held[0]);
            s_nheld--;
            return;
        }
}

static int s_cleanup(void **state)
{
    (void)state;
    while (s_nheld)
        s_release(&s_held[--s_nheld]);
    return 0;
}

static char *s_hold_str(const char *s)
{
    return s_hold(S_HELD_MEM, strdup(s));
}

static engram_t *s_connect(node_harness_t *node, const char *agent, const char *user)
{
    return s_hold(S_HELD_CONN, node_harness_connect(node, agent, user, CALL_TIMEOUT_MS));
}

/*  user may act through agent on node: a reader acting for user then sees what agent wrote
 *  (node_acl_may_read: every agent of a fragment's provenance must be one of the user's). */
static void s_grant(node_harness_t *node, const char *agent, const char *user)
{
    assert_int_equal(node_harness_grant(node, agent, user), 0);
}

static void s_disconnect(engram_t **e_p)
{
    s_unhold(*e_p);
    engram_destroy(e_p);
}

static void s_stats(node_harness_t *node, engram_t *e, engram_stats_t *stats)
{
    assert_true(node_harness_alive(node));
    EXPECT_RC(e, 0, engram_stats(e, stats));
}

/*  The node still answers (a stats call) and is alive. */
static void s_serving(node_harness_t *node, engram_t *e)
{
    engram_stats_t stats;
    s_stats(node, e, &stats);
}

static void s_put(engram_t *e, const char *scope, const char *key, const char *value)
{
    engram_result_t *r;
    EXPECT_OK(e, engram_put(e, scope, key, value, strlen(value), NULL, 0, &r), &r);
}

/*  get returns exactly one version, holding value. */
static void s_expect_value(engram_t *e, const char *scope, const char *key, const char *value)
{
    engram_result_t *r;
    EXPECT_OK_KEEP(e, engram_get(e, scope, key, NULL, 0, &r), &r);
    assert_int_equal(r->nitems, 1);
    assert_string_equal(r->items[0].type, "reg");
    assert_string_equal(r->items[0].key, key);
    assert_int_equal(r->items[0].len, strlen(value));
    assert_memory_equal(r->items[0].value, value, strlen(value));
    engram_result_destroy(&r);
}

static void s_expect_missing(engram_t *e, const char *scope, const char *key)
{
    engram_result_t *r;
    EXPECT_RC(e, ENGRAM_ENOTFOUND, engram_get(e, scope, key, NULL, 0, &r));
    assert_null(r);
}

/*  The set's members, sorted and joined with ','. */
static void s_expect_members(engram_t *e, const char *scope, const char *key, const char *want)
{
    engram_result_t *r;
    EXPECT_OK_KEEP(e, engram_set_members(e, scope, key, &r), &r);
    char got[4096] = "";
    const char *sorted[64];
    assert_true(r->nitems < 64);
    for (size_t i = 0; i < r->nitems; i++) {
        assert_string_equal(r->items[i].type, "set");
        sorted[i] = (const char *)r->items[i].value;
    }
    for (size_t i = 1; i < r->nitems; i++)
        for (size_t j = i; j > 0 && strcmp(sorted[j - 1], sorted[j]) > 0; j--) {
            const char *t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    for (size_t i = 0; i < r->nitems; i++) {
        assert_true(strlen(got) + strlen(sorted[i]) + 2 <= sizeof got);
        if (i)
            strcat(got, ",");
        strcat(got, sorted[i]);
    }
    engram_result_destroy(&r);
    assert_string_equal(got, want);
}

static int64_t s_counter(engram_t *e, const char *scope, const char *key)
{
    engram_result_t *r;
    EXPECT_OK_KEEP(e, engram_counter_get(e, scope, key, &r), &r);
    int64_t v = r->number;
    engram_result_destroy(&r);
    return v;
}

/*  Held until the test's teardown. */
static char *s_repeat(char c, size_t n)
{
    char *s = s_hold(S_HELD_MEM, malloc(n + 1));
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/*  --- tokens ---------------------------------------------------------------------------- */

/*  The Token a printable token holds. Caller frees with engram__token__free_unpacked. */
static Engram__Token *s_token_unpack(const char *token)
{
    size_t len = strlen(token);
    uint8_t *bin = malloc(len + 1);
    size_t bin_len = 0;
    assert_non_null(bin);
    assert_int_equal(
        sodium_base642bin(bin, len + 1, token, len, NULL, &bin_len, NULL, TOKEN_VARIANT), 0);
    Engram__Token *t = engram__token__unpack(NULL, bin_len, bin);
    free(bin);
    assert_non_null(t);
    return t;
}

/*  The context of the token's only scope. Caller owns. */
static crdt_ctx_t *s_token_ctx(const char *token, const char *scope)
{
    Engram__Token *t = s_token_unpack(token);
    assert_int_equal(t->n_scopes, 1);
    assert_string_equal(t->scopes[0]->scope, scope);
    crdt_ctx_t *ctx = NULL;
    assert_int_equal(crdt_ctx_decode(t->scopes[0]->ctx.data, t->scopes[0]->ctx.len, &ctx), 0);
    engram__token__free_unpacked(t, NULL);
    return ctx;
}

/*  A printable token for scope holding ctx; held until the test's teardown. */
static char *s_token_make(const char *scope, const crdt_ctx_t *ctx, uint32_t schema_major)
{
    uint8_t *buf;
    size_t len;
    assert_int_equal(crdt_ctx_encode(ctx, &buf, &len), 0);
    Engram__ScopeVersion version = ENGRAM__SCOPE_VERSION__INIT;
    version.scope = (char *)scope;
    version.ctx.data = buf;
    version.ctx.len = len;
    Engram__ScopeVersion *versions[1] = {&version};
    Engram__Token token = ENGRAM__TOKEN__INIT;
    token.schema_major = schema_major;
    token.scopes = versions;
    token.n_scopes = 1;
    size_t size = engram__token__get_packed_size(&token);
    uint8_t *packed = malloc(size);
    assert_non_null(packed);
    engram__token__pack(&token, packed);
    size_t b64_size = sodium_base64_ENCODED_LEN(size, TOKEN_VARIANT);
    char *b64 = malloc(b64_size);
    assert_non_null(b64);
    sodium_bin2base64(b64, b64_size, packed, size, TOKEN_VARIANT);
    free(packed);
    free(buf);
    return s_hold(S_HELD_MEM, b64);
}

/*  A copy of token whose context also holds dot max+ahead of the token's first node: a
 *  context the node has not reached. Held until the test's teardown. */
static char *s_token_forge(const char *token, const char *scope, uint64_t ahead)
{
    crdt_ctx_t *ctx = s_token_ctx(token, scope);
    assert_true(crdt_ctx_nodes(ctx) >= 1);
    uint64_t node, base;
    const crdt_range_t *cloud;
    size_t ncloud;
    crdt_ctx_node_at(ctx, 0, &node, &base, &cloud, &ncloud);
    crdt_dot_t dot = {node, crdt_ctx_max(ctx, node) + ahead};
    assert_int_equal(crdt_ctx_insert(ctx, dot), 0);
    char *forged = s_token_make(scope, ctx, ENGRAM_SCHEMA_MAJOR);
    crdt_ctx_destroy(&ctx);
    return forged;
}

/*  True when token `newer` covers everything `older` does, and more. */
static bool s_token_grew(const char *newer, const char *older, const char *scope)
{
    crdt_ctx_t *n = s_token_ctx(newer, scope), *o = s_token_ctx(older, scope);
    bool grew = crdt_ctx_covers(n, o) && !crdt_ctx_equal(n, o);
    crdt_ctx_destroy(&n);
    crdt_ctx_destroy(&o);
    return grew;
}

/*  --- raw frames ------------------------------------------------------------------------ */

static zsock_t *s_dealer(node_harness_t *node)
{
    zsock_t *d = s_hold(S_HELD_SOCK, node_harness_dealer(node, "raw-agent", "alice"));
    zsock_set_linger(d, 0);
    zsock_set_rcvtimeo(d, 5000);
    return d;
}

/*  Sends msg (taken) and returns the one Reply that comes back, or NULL if none came within
 *  the socket's receive timeout or it was not a Reply. Caller frees the reply. */
static void s_close(zsock_t **sock_p)
{
    s_unhold(*sock_p);
    zsock_destroy(sock_p);
}

static Engram__Reply *s_raw_exchange(zsock_t *dealer, zmsg_t **msg_p)
{
    assert_int_equal(zmsg_send(msg_p, dealer), 0);
    zmsg_t *got = zmsg_recv(dealer);
    if (!got)
        return NULL;
    Engram__Reply *reply = NULL;
    if (zmsg_size(got) == 1) {
        zframe_t *f = zmsg_first(got);
        reply = engram__reply__unpack(NULL, zframe_size(f), zframe_data(f));
    }
    zmsg_destroy(&got);
    return reply;
}

static zmsg_t *s_request_msg(const Engram__Request *req)
{
    size_t size = engram__request__get_packed_size(req);
    uint8_t *buf = malloc(size ? size : 1);
    assert_non_null(buf);
    engram__request__pack(req, buf);
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, buf, size);
    free(buf);
    return msg;
}

/*  Sends req and expects a reply with code `want` (and the request's id). */
static void s_raw_expect(zsock_t *dealer, const Engram__Request *req, int want, const char *what)
{
    zmsg_t *msg = s_request_msg(req);
    Engram__Reply *reply = s_raw_exchange(dealer, &msg);
    if (!reply)
        fail_msg("%s: no reply", what);
    if (reply->code != want || reply->id != req->id)
        fail_msg("%s: reply id %" PRIu64 " code %d ('%s'), expected id %" PRIu64 " code %d (%s)",
                 what, reply->id, reply->code, reply->message, req->id, want,
                 engram_strerror(want));
    if (want != 0 && !reply->message[0])
        fail_msg("%s: an error reply without a message", what);
    engram__reply__free_unpacked(reply, NULL);
}

/*  --- fixtures -------------------------------------------------------------------------- */

static int s_group_setup(void **state)
{
    (void)state;
    s_nodes.a = node_harness_new(s_args_a);
    s_nodes.b = node_harness_new(NULL);
    if (!s_nodes.a || !s_nodes.b)
        return -1;
    if (node_harness_start(s_nodes.a) != 0 || node_harness_start(s_nodes.b) != 0)
        return -1;
    return 0;
}

static int s_group_teardown(void **state)
{
    (void)state;
    node_harness_destroy(&s_nodes.a);
    node_harness_destroy(&s_nodes.b);
    return 0;
}

/*  Before each test: a shared node that an earlier test crashed is started again on its data,
 *  so that one bug in engramd fails its own test and not every later one. */
static int s_revive(void **state)
{
    (void)state;
    node_harness_t *nodes[] = {s_nodes.a, s_nodes.b};
    for (size_t i = 0; i < 2; i++) {
        if (node_harness_alive(nodes[i]))
            continue;
        fprintf(stderr, "node %s is down (an earlier test crashed it): restarting it\n",
                node_harness_endpoint(nodes[i]));
        if (node_harness_start(nodes[i]) != 0)
            return -1;
    }
    return 0;
}

static int s_own_setup(void **state)
{
    (void)state;
    s_own = node_harness_new(NULL);
    return s_own && node_harness_start(s_own) == 0 ? 0 : -1;
}

/*  A node that gives up on a subscriber 5 events behind. */
static int s_small_backlog_setup(void **state)
{
    (void)state;
    const char *const args[] = {"--subscriber-backlog", "5", NULL};
    s_own = node_harness_new(args);
    return s_own && node_harness_start(s_own) == 0 ? 0 : -1;
}

static int s_own_teardown(void **state)
{
    s_cleanup(state);
    node_harness_destroy(&s_own);
    return 0;
}

/*  --- every operation, every type --------------------------------------------------- */

/*  The canonical use: put with metadata, get it back with its provenance. */
static void test_put_get(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    const char *meta = "{\"lang\":\"en\",\"n\":1}";
    EXPECT_OK(e, engram_put(e, "user:alice", "greeting", "hello", 5, meta, 0, &r), &r);

    EXPECT_OK_KEEP(e, engram_get(e, "user:alice", "greeting", NULL, 0, &r), &r);
    assert_int_equal(r->nitems, 1); /* winner first, then siblings: one node has no siblings */
    engram_item_t *it = &r->items[0];
    assert_string_equal(it->key, "greeting");
    assert_string_equal(it->type, "reg");
    assert_int_equal(it->len, 5);
    assert_string_equal((char *)it->value, "hello");
    assert_string_equal(it->meta_json, meta);
    assert_string_equal(it->author, "agent-a");
    assert_string_equal(it->user, "alice");
    assert_int_equal(it->nagents, 1);
    assert_string_equal(it->agents[0], "agent-a");
    assert_int_equal(it->expires_at_ms, 0);
    assert_true(it->hlc > 0 && it->created_hlc > 0 && it->node != 0 && it->n > 0);
    uint64_t created = it->created_hlc, hlc = it->hlc, n = it->n;
    engram_result_destroy(&r);

    /* An overwrite replaces the value (no sibling), keeps the creation time and, giving no
     * metadata, the metadata (as mem0's update does). */
    EXPECT_OK(e, engram_put(e, "user:alice", "greeting", "hello again", 11, NULL, 0, &r), &r);
    EXPECT_OK_KEEP(e, engram_get(e, "user:alice", "greeting", NULL, 0, &r), &r);
    assert_int_equal(r->nitems, 1);
    assert_string_equal((char *)r->items[0].value, "hello again");
    assert_string_equal(r->items[0].meta_json, meta);
    assert_int_equal(r->items[0].created_hlc, created);
    assert_true(r->items[0].hlc > hlc);
    assert_true(r->items[0].n > n);
    engram_result_destroy(&r);

    /* Binary values keep every byte; an empty value is a value. */
    uint8_t bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (uint8_t)i;
    EXPECT_OK(e, engram_put(e, "user:alice", "binary", bin, sizeof bin, NULL, 0, &r), &r);
    EXPECT_OK_KEEP(e, engram_get(e, "user:alice", "binary", NULL, 0, &r), &r);
    assert_int_equal(r->nitems, 1);
    assert_int_equal(r->items[0].len, sizeof bin);
    assert_memory_equal(r->items[0].value, bin, sizeof bin);
    engram_result_destroy(&r);
    EXPECT_OK(e, engram_put(e, "user:alice", "empty", "", 0, NULL, 0, &r), &r);
    s_expect_value(e, "user:alice", "empty", "");

    s_expect_missing(e, "user:alice", "never-written");
    /* Another agent of the same scope sees it once its user (bob) may act through the writer
     * (agent-a); until then agent-a's writes are hidden from bob's readers. */
    engram_t *b = s_connect(s_nodes.a, "agent-b", "bob");
    s_expect_missing(b, "user:alice", "greeting");
    s_grant(s_nodes.a, "agent-a", "bob");
    s_expect_value(b, "user:alice", "greeting", "hello again");
    s_disconnect(&b);
    s_disconnect(&e);
}

static void test_delete(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    s_put(e, "run:del", "reg", "doomed");
    s_put(e, "run:del", "keep", "kept");
    EXPECT_OK(e, engram_delete(e, "run:del", "reg", &r), &r);
    s_expect_missing(e, "run:del", "reg");
    s_expect_value(e, "run:del", "keep", "kept");
    EXPECT_RC(e, ENGRAM_ENOTFOUND, engram_delete(e, "run:del", "reg", &r));
    EXPECT_RC(e, ENGRAM_ENOTFOUND, engram_delete(e, "run:del", "never", &r));

    /* Delete forgets any type; the key may then hold another type. */
    EXPECT_OK(e, engram_set_add(e, "run:del", "set", "x", &r), &r);
    EXPECT_OK(e, engram_delete(e, "run:del", "set", &r), &r);
    EXPECT_RC(e, ENGRAM_ENOTFOUND, engram_set_members(e, "run:del", "set", &r));
    s_put(e, "run:del", "set", "now a register");
    s_expect_value(e, "run:del", "set", "now a register");

    EXPECT_OK(e, engram_counter_add(e, "run:del", "ctr", 41, &r), &r);
    EXPECT_OK(e, engram_delete(e, "run:del", "ctr", &r), &r);
    EXPECT_RC(e, ENGRAM_ENOTFOUND, engram_counter_get(e, "run:del", "ctr", &r));
    EXPECT_OK(e, engram_counter_add(e, "run:del", "ctr", 3, &r), &r);
    assert_int_equal(s_counter(e, "run:del", "ctr"), 3);

    EXPECT_OK(e, engram_log_append(e, "run:del", "log", "a", 1, &r), &r);
    EXPECT_OK(e, engram_delete(e, "run:del", "log", &r), &r);
    EXPECT_RC(e, ENGRAM_ENOTFOUND, engram_log_range(e, "run:del", "log", &r));

    /* A deleted key is not listed. */
    EXPECT_OK_KEEP(e, engram_list(e, "run:del", NULL, NULL, 0, &r), &r);
    for (size_t i = 0; i < r->nitems; i++)
        assert_string_not_equal(r->items[i].key, "reg");
    engram_result_destroy(&r);
    s_disconnect(&e);
}

static void test_set(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    EXPECT_OK(e, engram_set_add(e, "team:t", "tags", "red", &r), &r);
    EXPECT_OK(e, engram_set_add(e, "team:t", "tags", "green", &r), &r);
    EXPECT_OK(e, engram_set_add(e, "team:t", "tags", "blue sky", &r), &r);
    EXPECT_OK(e, engram_set_add(e, "team:t", "tags", "red", &r), &r); /* again: no duplicate */
    s_expect_members(e, "team:t", "tags", "blue sky,green,red");
    EXPECT_OK(e, engram_set_remove(e, "team:t", "tags", "green", &r), &r);
    s_expect_members(e, "team:t", "tags", "blue sky,red");
    /* Removing what is not there is refused and changes nothing. */
    EXPECT_RC(e, ENGRAM_ENOTFOUND, engram_set_remove(e, "team:t", "tags", "green", &r));
    EXPECT_RC(e, ENGRAM_ENOTFOUND, engram_set_remove(e, "team:t", "tags", "purple", &r));
    s_expect_members(e, "team:t", "tags", "blue sky,red");
    /* Re-adding a removed element brings it back. */
    EXPECT_OK(e, engram_set_add(e, "team:t", "tags", "green", &r), &r);
    s_expect_members(e, "team:t", "tags", "blue sky,green,red");
    EXPECT_RC(e, ENGRAM_ENOTFOUND, engram_set_members(e, "team:t", "no-such-set", &r));
    s_disconnect(&e);
}

static void test_counter(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    EXPECT_OK_KEEP(e, engram_counter_add(e, "app:c", "visits", 5, &r), &r);
    assert_int_equal(r->number, 5);
    engram_result_destroy(&r);
    EXPECT_OK_KEEP(e, engram_counter_add(e, "app:c", "visits", -8, &r), &r);
    assert_int_equal(r->number, -3);
    engram_result_destroy(&r);
    EXPECT_OK(e, engram_counter_add(e, "app:c", "visits", 2, &r), &r);
    assert_int_equal(s_counter(e, "app:c", "visits"), -1);
    EXPECT_OK(e, engram_counter_add(e, "app:c", "visits", 0, &r), &r);
    assert_int_equal(s_counter(e, "app:c", "visits"), -1);
    EXPECT_RC(e, ENGRAM_ENOTFOUND, engram_counter_get(e, "app:c", "no-such-counter", &r));

    /* Overflow is refused and changes nothing. */
    EXPECT_OK(e, engram_counter_add(e, "app:c", "big", INT64_MAX, &r), &r);
    EXPECT_RC(e, ENGRAM_ERANGE, engram_counter_add(e, "app:c", "big", 1, &r));
    assert_int_equal(s_counter(e, "app:c", "big"), INT64_MAX);
    EXPECT_OK(e, engram_counter_add(e, "app:c", "small", INT64_MIN, &r), &r);
    EXPECT_RC(e, ENGRAM_ERANGE, engram_counter_add(e, "app:c", "small", -1, &r));
    assert_true(s_counter(e, "app:c", "small") == INT64_MIN);
    s_disconnect(&e);
}

static void test_log(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    char text[32];
    for (int i = 0; i < 12; i++) {
        snprintf(text, sizeof text, "entry-%02d", i);
        EXPECT_OK(e, engram_log_append(e, "run:log", "events", text, strlen(text), &r), &r);
    }
    /* The same text twice is two entries. */
    EXPECT_OK(e, engram_log_append(e, "run:log", "events", "entry-11", 8, &r), &r);
    EXPECT_OK_KEEP(e, engram_log_range(e, "run:log", "events", &r), &r);
    assert_int_equal(r->nitems, 13);
    for (size_t i = 0; i < r->nitems; i++) {
        snprintf(text, sizeof text, "entry-%02zu", i < 12 ? i : (size_t)11);
        assert_string_equal(r->items[i].type, "log");
        assert_string_equal((char *)r->items[i].value, text);
        assert_string_equal(r->items[i].author, "agent-a");
        if (i)
            assert_true(r->items[i].hlc > r->items[i - 1].hlc);
    }
    engram_result_destroy(&r);
    EXPECT_RC(e, ENGRAM_ENOTFOUND, engram_log_range(e, "run:log", "no-such-log", &r));
    s_disconnect(&e);
}

/*  Lists every page (limit per call) of scope/prefix into keys "k1,k2,...:type"; checks
 *  that no page is larger than max_page and that only the last has no cursor. */
static void s_list_all(engram_t *e, const char *scope, const char *prefix, unsigned limit,
                       size_t max_page, char *out, size_t out_size, int *pages)
{
    out[0] = '\0';
    *pages = 0;
    char *cursor = NULL;
    do {
        engram_result_t *r;
        EXPECT_OK_KEEP(e, engram_list(e, scope, prefix, cursor, limit, &r), &r);
        (*pages)++;
        assert_true(*pages < 100);
        assert_true(r->nitems <= max_page);
        if (r->next_cursor[0])
            assert_int_equal(r->nitems, max_page); /* only the last page may be short */
        for (size_t i = 0; i < r->nitems; i++) {
            if (prefix)
                assert_memory_equal(r->items[i].key, prefix, strlen(prefix));
            size_t used = strlen(out);
            snprintf(out + used, out_size - used, "%s%s:%s", used ? "," : "", r->items[i].key,
                     r->items[i].type);
        }
        free(cursor);
        cursor = r->next_cursor[0] ? strdup(r->next_cursor) : NULL;
        engram_result_destroy(&r);
    } while (cursor);
}

static void test_list_paging(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    char key[16];
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "p/%02d", i);
        if (i % 4 == 0)
            s_put(e, "run:list", key, "v");
        else if (i % 4 == 1)
            EXPECT_OK(e, engram_set_add(e, "run:list", key, "x", &r), &r);
        else if (i % 4 == 2)
            EXPECT_OK(e, engram_counter_add(e, "run:list", key, 1, &r), &r);
        else
            EXPECT_OK(e, engram_log_append(e, "run:list", key, "l", 1, &r), &r);
    }
    for (int i = 0; i < 6; i++) {
        snprintf(key, sizeof key, "m/%d", i);
        s_put(e, "run:list", key, "v");
    }
    s_put(e, "run:list", "q", "v");
    s_put(e, "run:list", "p", "v"); /* shorter than the prefix "p/": not under it */

    char got[2048];
    int pages;
    const char *want_p = "p/00:reg,p/01:set,p/02:counter,p/03:log,p/04:reg,p/05:set,"
                         "p/06:counter,p/07:log";
    s_list_all(e, "run:list", "p/", 0, A_LIST_LIMIT, got, sizeof got, &pages);
    assert_string_equal(got, want_p);
    assert_int_equal(pages, 3); /* 3 + 3 + 2 */
    /* A smaller limit than the node's pages by it; a larger one is capped. */
    s_list_all(e, "run:list", "p/", 2, 2, got, sizeof got, &pages);
    assert_string_equal(got, want_p);
    assert_int_equal(pages, 4);
    s_list_all(e, "run:list", "p/", 50, A_LIST_LIMIT, got, sizeof got, &pages);
    assert_string_equal(got, want_p);
    /* A multiple of the page size ends without an empty page. */
    s_list_all(e, "run:list", "m/", 0, A_LIST_LIMIT, got, sizeof got, &pages);
    assert_string_equal(got, "m/0:reg,m/1:reg,m/2:reg,m/3:reg,m/4:reg,m/5:reg");
    assert_int_equal(pages, 2);
    /* Everything, in key order. */
    s_list_all(e, "run:list", NULL, 0, A_LIST_LIMIT, got, sizeof got, &pages);
    assert_string_equal(got, "m/0:reg,m/1:reg,m/2:reg,m/3:reg,m/4:reg,m/5:reg,p:reg,"
                             "p/00:reg,p/01:set,p/02:counter,p/03:log,p/04:reg,p/05:set,"
                             "p/06:counter,p/07:log,q:reg");
    assert_int_equal(pages, 6);
    /* No match; a scope never written. */
    s_list_all(e, "run:list", "zzz", 0, A_LIST_LIMIT, got, sizeof got, &pages);
    assert_string_equal(got, "");
    assert_int_equal(pages, 1);
    s_list_all(e, "run:never-written", NULL, 0, A_LIST_LIMIT, got, sizeof got, &pages);
    assert_string_equal(got, "");
    /* A deleted key leaves the listing. */
    EXPECT_OK(e, engram_delete(e, "run:list", "p/03", &r), &r);
    s_list_all(e, "run:list", "p/", 0, A_LIST_LIMIT, got, sizeof got, &pages);
    assert_string_equal(got, "p/00:reg,p/01:set,p/02:counter,p/04:reg,p/05:set,p/06:counter,"
                             "p/07:log");
    s_disconnect(&e);
}

static void test_remember(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    const char *meta = "{\"source\":\"observation\"}";
    EXPECT_OK_KEEP(e, engram_remember(e, "team:mem", "the sky is blue", meta, 0, &r), &r);
    assert_true(strncmp(r->memory_id, "mem-", 4) == 0);
    char *id = s_hold_str(r->memory_id);
    engram_result_destroy(&r);
    EXPECT_OK_KEEP(e, engram_remember(e, "team:mem", "the sky is blue", meta, 0, &r), &r);
    assert_string_not_equal(r->memory_id, id); /* every memory has its own id */
    engram_result_destroy(&r);

    EXPECT_OK_KEEP(e, engram_get(e, "team:mem", id, NULL, 0, &r), &r);
    assert_int_equal(r->nitems, 1);
    assert_string_equal((char *)r->items[0].value, "the sky is blue");
    assert_string_equal(r->items[0].meta_json, meta);
    assert_string_equal(r->items[0].author, "agent-a");
    assert_string_equal(r->items[0].user, "alice");
    engram_result_destroy(&r);
    char listed[1024];
    int pages;
    s_list_all(e, "team:mem", "mem-", 0, A_LIST_LIMIT, listed, sizeof listed, &pages);
    assert_non_null(strstr(listed, id));
    s_disconnect(&e);
}

static void test_history(void **state)
{
    (void)state;
    engram_t *a = s_connect(s_nodes.a, "agent-a", "alice");
    engram_t *b = s_connect(s_nodes.a, "agent-b", "bob");
    s_grant(s_nodes.a, "agent-a", "bob"); /* each reads the other's steps */
    s_grant(s_nodes.a, "agent-b", "alice");
    engram_result_t *r;
    s_put(a, "run:hist", "doc", "v1");
    s_put(b, "run:hist", "doc", "v2");
    EXPECT_OK(a, engram_delete(a, "run:hist", "doc", &r), &r);
    EXPECT_OK_KEEP(b, engram_history(b, "run:hist", "doc", &r), &r);
    assert_int_equal(r->nitems, 3);
    const char *ops[] = {"put", "put", "delete"}, *agents[] = {"agent-a", "agent-b", "agent-a"},
               *users[] = {"alice", "bob", "alice"}, *values[] = {"v1", "v2", ""};
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(r->items[i].key, "doc");
        assert_string_equal(r->items[i].op, ops[i]);
        assert_string_equal(r->items[i].author, agents[i]);
        assert_string_equal(r->items[i].user, users[i]);
        assert_string_equal((char *)r->items[i].value, values[i]);
        if (i)
            assert_true(r->items[i].hlc > r->items[i - 1].hlc);
    }
    engram_result_destroy(&r);

    EXPECT_OK(a, engram_set_add(a, "run:hist", "set", "x", &r), &r);
    EXPECT_OK(b, engram_set_remove(b, "run:hist", "set", "x", &r), &r);
    EXPECT_OK_KEEP(a, engram_history(a, "run:hist", "set", &r), &r);
    assert_int_equal(r->nitems, 2);
    assert_string_equal(r->items[0].op, "set_add");
    assert_string_equal((char *)r->items[0].value, "x");
    assert_string_equal(r->items[1].op, "set_remove");
    assert_string_equal(r->items[1].author, "agent-b");
    engram_result_destroy(&r);

    EXPECT_OK(a, engram_counter_add(a, "run:hist", "ctr", 7, &r), &r);
    EXPECT_OK(b, engram_counter_add(b, "run:hist", "ctr", -2, &r), &r);
    EXPECT_OK_KEEP(a, engram_history(a, "run:hist", "ctr", &r), &r);
    assert_int_equal(r->nitems, 2);
    assert_string_equal(r->items[0].op, "counter_add");
    assert_int_equal(r->items[0].amount, 7);
    assert_int_equal(r->items[1].amount, -2);
    assert_string_equal(r->items[1].author, "agent-b");
    engram_result_destroy(&r);

    EXPECT_OK(a, engram_log_append(a, "run:hist", "log", "first", 5, &r), &r);
    EXPECT_OK_KEEP(a, engram_history(a, "run:hist", "log", &r), &r);
    assert_int_equal(r->nitems, 1);
    assert_string_equal(r->items[0].op, "log_append");
    assert_string_equal((char *)r->items[0].value, "first");
    engram_result_destroy(&r);

    EXPECT_RC(a, ENGRAM_ENOTFOUND, engram_history(a, "run:hist", "never-written", &r));
    s_disconnect(&a);
    s_disconnect(&b);
}

static void test_share(void **state)
{
    (void)state;
    engram_t *a = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    const char *meta = "{\"why\":\"found it\"}";
    EXPECT_OK(a, engram_put(a, "private", "note", "private text", 12, meta, 0, &r), &r);
    EXPECT_OK_KEEP(a, engram_get(a, "private", "note", NULL, 0, &r), &r);
    uint64_t created = r->items[0].created_hlc;
    engram_result_destroy(&r);

    /* The same agent acting for another user shares it: the copy keeps alice's provenance.
     * An agent can share only its own private memory, whose provenance already names it (a
     * private value has one agent, its writer), so "adding the sharer" shows as the sharer
     * being among the agents, not as one more. */
    engram_t *a2 = s_connect(s_nodes.a, "agent-a", "carol");
    EXPECT_OK(a2, engram_share(a2, "note", "team:shared", &r), &r);
    engram_t *b = s_connect(s_nodes.a, "agent-b", "bob");
    s_grant(s_nodes.a, "agent-a", "bob"); /* bob reads what agent-a wrote */
    EXPECT_OK_KEEP(b, engram_get(b, "team:shared", "note", NULL, 0, &r), &r);
    assert_int_equal(r->nitems, 1);
    engram_item_t *it = &r->items[0];
    assert_string_equal((char *)it->value, "private text");
    assert_string_equal(it->meta_json, meta);
    assert_string_equal(it->user, "alice");
    assert_string_equal(it->author, "agent-a");
    assert_int_equal(it->created_hlc, created);
    bool sharer = false;
    for (size_t i = 0; i < it->nagents; i++)
        sharer |= strcmp(it->agents[i], "agent-a") == 0;
    assert_true(sharer);
    engram_result_destroy(&r);
    EXPECT_OK_KEEP(b, engram_history(b, "team:shared", "note", &r), &r);
    assert_int_equal(r->nitems, 1);
    assert_string_equal(r->items[0].op, "share");
    assert_string_equal(r->items[0].author, "agent-a");
    engram_result_destroy(&r);
    /* The private original is untouched. */
    s_expect_value(a, "private", "note", "private text");

    EXPECT_RC(a, ENGRAM_ESCOPE, engram_share(a, "note", "private", &r));
    s_serving(s_nodes.a, a);
    s_disconnect(&a);
    s_disconnect(&a2);
    s_disconnect(&b);
}

/*  SHARE of what the agent's private scope does not hold as a register: not there, another
 *  agent's memory, a set. Each is refused, nothing is written, and the node goes on. */
static void test_share_refusals(void **state)
{
    (void)state;
    engram_t *a = s_connect(s_nodes.a, "agent-a", "alice");
    engram_t *b = s_connect(s_nodes.a, "agent-b", "bob");
    engram_set_timeout(a, 3000); /* a node that crashes does not answer: no need to wait long */
    engram_set_timeout(b, 3000);
    engram_result_t *r;
    s_put(a, "private", "mine", "A's memory");
    EXPECT_OK(a, engram_set_add(a, "private", "a-set", "x", &r), &r);
    engram_stats_t before, after;
    s_stats(s_nodes.a, a, &before);

    EXPECT_RC(a, ENGRAM_ENOTFOUND, engram_share(a, "no-such-note", "team:refused", &r));
    s_serving(s_nodes.a, a);
    EXPECT_RC(b, ENGRAM_ENOTFOUND, engram_share(b, "mine", "team:refused", &r));
    s_serving(s_nodes.a, b);
    EXPECT_RC(a, ENGRAM_ETYPE, engram_share(a, "a-set", "team:refused", &r));
    s_serving(s_nodes.a, a);

    s_stats(s_nodes.a, a, &after);
    assert_true(after.writes == before.writes);
    s_expect_missing(b, "team:refused", "no-such-note");
    s_expect_missing(b, "team:refused", "mine");
    s_expect_missing(b, "team:refused", "a-set");
    s_disconnect(&a);
    s_disconnect(&b);
}

static void test_private_isolation(void **state)
{
    (void)state;
    engram_t *a = s_connect(s_nodes.a, "agent-a", "alice");
    engram_t *b = s_connect(s_nodes.a, "agent-b", "alice"); /* same user, other agent */
    engram_result_t *r;
    s_put(a, "private", "secret", "A's secret");
    EXPECT_OK(a, engram_set_add(a, "private", "a-set", "x", &r), &r);
    s_expect_missing(b, "private", "secret");
    EXPECT_RC(b, ENGRAM_ENOTFOUND, engram_history(b, "private", "secret", &r));
    EXPECT_RC(b, ENGRAM_ENOTFOUND, engram_set_members(b, "private", "a-set", &r));
    EXPECT_OK_KEEP(b, engram_list(b, "private", NULL, NULL, 0, &r), &r);
    assert_int_equal(r->nitems, 0);
    engram_result_destroy(&r);

    /* B's private writes land in B's private scope only. */
    EXPECT_RC(b, 0, engram_subscribe(b, "private"));
    s_put(b, "private", "secret", "B's secret");
    engram_event_t *ev;
    EXPECT_RC(b, 0, engram_next_event(b, 5000, &ev)); /* its own write */
    assert_string_equal(ev->key, "secret");
    engram_event_destroy(&ev);
    s_expect_value(a, "private", "secret", "A's secret");
    s_expect_value(b, "private", "secret", "B's secret");
    EXPECT_OK_KEEP(a, engram_history(a, "private", "secret", &r), &r);
    assert_int_equal(r->nitems, 1);
    assert_string_equal(r->items[0].author, "agent-a");
    engram_result_destroy(&r);
    EXPECT_OK(b, engram_delete(b, "private", "secret", &r), &r);
    EXPECT_RC(b, 0, engram_next_event(b, 5000, &ev));
    assert_string_equal(ev->op, "delete");
    engram_event_destroy(&ev);
    s_expect_missing(b, "private", "secret");
    s_expect_value(a, "private", "secret", "A's secret");
    /* A's private writes are no events for B's subscription to its own private scope. */
    s_put(a, "private", "secret2", "A again");
    EXPECT_RC(b, ENGRAM_ETIMEDOUT, engram_next_event(b, 500, &ev));
    /* Nor are they in any shared scope. */
    EXPECT_OK_KEEP(b, engram_list(b, "agent:agent-a", NULL, NULL, 0, &r), &r);
    assert_int_equal(r->nitems, 0);
    engram_result_destroy(&r);
    s_disconnect(&a);
    s_disconnect(&b);
}

/*  Agent names are not checked for length on SHARE: the private scope id "@agent" is cut to
 *  its buffer, so an agent whose name extends another's (past 256 bytes) reads the other's
 *  private memory. Under access control the thief's name cannot be registered either (it is
 *  longer than ENGRAM_ACL_MAX_NAME_BYTES): its key acts as no agent at all. */
static void test_private_isolation_long_agent_names(void **state)
{
    (void)state;
    char *victim = s_repeat('v', ENGRAM_ACL_MAX_NAME_BYTES); /* the longest name engramd takes */
    char *thief = s_repeat('v', ENGRAM_ACL_MAX_NAME_BYTES + 1);
    engram_t *v = s_connect(s_nodes.a, victim, "alice");
    assert_int_equal(node_harness_grant(s_nodes.a, thief, "mallory"), ENGRAM_ETOOBIG);
    assert_int_equal(agent_keys_make(thief), 0);
    engram_t *t =
        s_hold(S_HELD_CONN, engram_connect(node_harness_endpoint(s_nodes.a), thief, "mallory"));
    engram_set_timeout(t, CALL_TIMEOUT_MS);
    engram_result_t *r;
    s_put(v, "private", "diary", "the victim's private memory");
    s_expect_value(v, "private", "diary", "the victim's private memory");
    /* The thief's requests are refused: its name is too long. */
    EXPECT_RC(t, ENGRAM_EINVAL, engram_get(t, "private", "diary", NULL, 0, &r));
    /* So SHARE must not find any private "diary" of the thief either. */
    int rc = engram_share(t, "diary", "team:leak", &r);
    engram_result_destroy(&r);
    engram_t *o = s_connect(s_nodes.a, "observer", "bob");
    int leaked = engram_get(o, "team:leak", "diary", NULL, 0, &r);
    if (leaked == 0)
        fprintf(stderr,
                "BUG: agent '%.8s...' (129 bytes) shared the private memory of agent "
                "'%.8s...' (128 bytes): team:leak/diary = '%s'\n",
                thief, victim, (char *)r->items[0].value);
    engram_result_destroy(&r);
    s_disconnect(&o);
    s_disconnect(&v);
    s_disconnect(&t);
    assert_int_not_equal(rc, 0);
    assert_int_equal(leaked, ENGRAM_ENOTFOUND);
}

static void test_ttl(void **state)
{
    (void)state;
    enum { TTL_MS = 2000 };
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    engram_stats_t before, after;
    s_stats(s_nodes.a, e, &before);
    int64_t issued = s_now_ms();
    EXPECT_OK(e, engram_put(e, "run:ttl", "short", "brief", 5, NULL, TTL_MS, &r), &r);
    s_put(e, "run:ttl", "long", "lasting");
    EXPECT_OK_KEEP(e, engram_remember(e, "run:ttl", "fleeting", NULL, TTL_MS, &r), &r);
    char *mem = s_hold_str(r->memory_id);
    engram_result_destroy(&r);
    int64_t written = s_now_ms();

    /* Within the TTL: readable and listed. A slow machine may take these reads past the TTL,
     * where the values are rightly gone: what they saw is judged when they all ran before
     * any value could expire (the TTL counts from the put, which came after `issued`). */
    engram_result_t *short_r = NULL, *mem_r = NULL;
    int short_rc = engram_get(e, "run:ttl", "short", NULL, 0, &short_r);
    int mem_rc = engram_get(e, "run:ttl", mem, NULL, 0, &mem_r);
    char listed[1024];
    int pages;
    s_list_all(e, "run:ttl", NULL, 0, A_LIST_LIMIT, listed, sizeof listed, &pages);
    if (s_now_ms() - issued < TTL_MS) {
        EXPECT_RC(e, 0, short_rc);
        assert_int_equal(short_r->nitems, 1);
        assert_string_equal((char *)short_r->items[0].value, "brief");
        assert_true(short_r->items[0].expires_at_ms > 0);
        EXPECT_RC(e, 0, mem_rc);
        assert_int_equal(mem_r->nitems, 1);
        assert_string_equal((char *)mem_r->items[0].value, "fleeting");
        assert_non_null(strstr(listed, "short:reg"));
    } else {
        fprintf(stderr, "test_ttl: the reads ended past the TTL; their answers are not judged\n");
    }
    engram_result_destroy(&short_r);
    engram_result_destroy(&mem_r);

    /* Past the TTL: hidden at once, purged within a few purge intervals. */
    int64_t wait = written + TTL_MS + 200 - s_now_ms();
    if (wait > 0)
        s_sleep_ms((int)wait);
    s_expect_missing(e, "run:ttl", "short");
    s_expect_missing(e, "run:ttl", mem);
    s_expect_value(e, "run:ttl", "long", "lasting");
    s_list_all(e, "run:ttl", NULL, 0, A_LIST_LIMIT, listed, sizeof listed, &pages);
    assert_string_equal(listed, "long:reg");
    int64_t deadline = s_now_ms() + 5000;
    do {
        s_stats(s_nodes.a, e, &after);
        if (after.purged >= before.purged + 2)
            break;
        s_sleep_ms(50);
    } while (s_now_ms() < deadline);
    assert_true(after.purged >= before.purged + 2);
    s_expect_missing(e, "run:ttl", "short");

    /* The key can be written again. */
    s_put(e, "run:ttl", "short", "back");
    s_expect_value(e, "run:ttl", "short", "back");
    s_disconnect(&e);
}

/*  A TTL so large that now + ttl overflows: the put must either be refused with an error, or
 *  the value must be readable (it expires, in effect, never). It must not be acknowledged and
 *  then be invisible. */
static void test_ttl_overflow(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    const uint64_t ttls[] = {(uint64_t)INT64_MAX, UINT64_MAX};
    const char *keys[] = {"int64-max", "uint64-max"};
    int failures = 0;
    for (size_t i = 0; i < 2; i++) {
        int rc = engram_put(e, "run:ttl-overflow", keys[i], "v", 1, NULL, ttls[i], &r);
        engram_result_destroy(&r);
        if (rc != 0) {
            fprintf(stderr, "ttl %" PRIu64 ": refused with %d (%s)\n", ttls[i], rc,
                    engram_strerror(rc));
            continue;
        }
        int got = engram_get(e, "run:ttl-overflow", keys[i], NULL, 0, &r);
        if (got != 0) {
            fprintf(stderr, "BUG: put with ttl_ms %" PRIu64 " acknowledged, then get -> %d (%s)\n",
                    ttls[i], got, engram_strerror(got));
            failures++;
        }
        engram_result_destroy(&r);
    }
    s_serving(s_nodes.a, e);
    assert_int_equal(failures, 0);
}

/*  A node with the default limits takes a value of exactly ENGRAM_MAX_VALUE_BYTES, the limit
 *  limits.h and --max-value-bytes document, and refuses one byte more. */
static void test_value_at_the_default_limit(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.b, "agent-a", "alice");
    engram_result_t *r;
    char *at = s_repeat('m', ENGRAM_MAX_VALUE_BYTES),
         *over = s_repeat('o', ENGRAM_MAX_VALUE_BYTES + 1);
    EXPECT_RC(e, ENGRAM_ETOOBIG,
              engram_put(e, "run:limit", "over", over, strlen(over), NULL, 0, &r));
    s_expect_missing(e, "run:limit", "over");
    EXPECT_RC(e, 0, engram_put(e, "run:limit", "at", at, strlen(at), NULL, 0, &r));
    engram_result_destroy(&r);
    s_expect_value(e, "run:limit", "at", at);
}

static void test_subscribe(void **state)
{
    (void)state;
    engram_t *s = s_connect(s_nodes.a, "agent-s", "alice");
    engram_t *w = s_connect(s_nodes.a, "agent-w", "alice");
    engram_result_t *r;
    engram_event_t *ev;
    EXPECT_RC(s, 0, engram_subscribe(s, "run:sub"));
    EXPECT_RC(s, ENGRAM_ESCOPE, engram_subscribe(s, "bogus"));

    EXPECT_OK(w, engram_put(w, "run:sub", "k1", "v1", 2, "{\"m\":2}", 0, &r), &r);
    EXPECT_RC(s, 0, engram_next_event(s, 5000, &ev));
    assert_string_equal(ev->scope, "run:sub");
    assert_string_equal(ev->key, "k1");
    assert_string_equal(ev->op, "put");
    assert_string_equal((char *)ev->item.value, "v1");
    assert_string_equal(ev->item.type, "reg");
    assert_string_equal(ev->item.author, "agent-w");
    assert_string_equal(ev->item.meta_json, "{\"m\":2}");
    assert_true(ev->token && ev->token[0]);
    engram_event_destroy(&ev);

    /* A write to another scope is no event here. */
    s_put(w, "run:other", "k1", "elsewhere");
    EXPECT_RC(s, ENGRAM_ETIMEDOUT, engram_next_event(s, 300, &ev));

    /* Every type, in commit order. */
    EXPECT_OK(w, engram_set_add(w, "run:sub", "set", "e1", &r), &r);
    EXPECT_OK(w, engram_counter_add(w, "run:sub", "ctr", -4, &r), &r);
    EXPECT_OK(w, engram_log_append(w, "run:sub", "log", "line", 4, &r), &r);
    EXPECT_OK(w, engram_delete(w, "run:sub", "k1", &r), &r);
    const char *keys[] = {"set", "ctr", "log", "k1"};
    const char *ops[] = {"set_add", "counter_add", "log_append", "delete"};
    for (int i = 0; i < 4; i++) {
        EXPECT_RC(s, 0, engram_next_event(s, 5000, &ev));
        assert_string_equal(ev->key, keys[i]);
        assert_string_equal(ev->op, ops[i]);
        if (i == 0)
            assert_string_equal((char *)ev->item.value, "e1");
        if (i == 1)
            assert_int_equal(ev->item.amount, -4);
        if (i == 2)
            assert_string_equal((char *)ev->item.value, "line");
        engram_event_destroy(&ev);
    }
    EXPECT_RC(s, ENGRAM_ETIMEDOUT, engram_next_event(s, 200, &ev));

    /* A subscriber that goes away is dropped; the node goes on. */
    engram_stats_t stats;
    s_stats(s_nodes.a, w, &stats);
    uint64_t subscribers = stats.subscribers;
    assert_true(subscribers >= 1);
    s_disconnect(&s);
    int64_t deadline = s_now_ms() + 5000;
    do {
        s_put(w, "run:sub", "after", "gone");
        s_stats(s_nodes.a, w, &stats);
        if (stats.subscribers < subscribers)
            break;
        s_sleep_ms(50);
    } while (s_now_ms() < deadline);
    assert_true(stats.subscribers < subscribers);
    s_disconnect(&w);
}

typedef struct {
    const char *endpoint;
    const char *token;
    int timeout_ms;
    int rc;
    int64_t elapsed_ms;
    char value[64];
    atomic_bool started; /* set when the get's clock starts, right before it is sent */
} s_waiter_t;

static void *s_wait_get(void *arg)
{
    s_waiter_t *w = arg;
    engram_t *e = engram_connect(w->endpoint, "agent-wait", "alice");
    if (!e) {
        w->rc = ENGRAM_ENOMEM;
        return NULL;
    }
    engram_set_timeout(e, CALL_TIMEOUT_MS);
    engram_result_t *r = NULL;
    int64_t start = s_now_ms();
    atomic_store(&w->started, true);
    w->rc = engram_get(e, "user:tok", "k", w->token, w->timeout_ms, &r);
    w->elapsed_ms = s_now_ms() - start;
    if (w->rc == 0 && r->nitems)
        snprintf(w->value, sizeof w->value, "%s", (char *)r->items[0].value);
    engram_result_destroy(&r);
    engram_destroy(&e);
    return NULL;
}

/*  Waits until the waiter's thread is about to send its get (a thread may start late on a
 *  loaded machine), then ms more for the get to reach the node and park. */
static void s_waiter_parked(s_waiter_t *w, int ms)
{
    int64_t deadline = s_now_ms() + CALL_TIMEOUT_MS;
    while (!atomic_load(&w->started) && s_now_ms() < deadline)
        s_sleep_ms(5);
    assert_true(atomic_load(&w->started));
    s_sleep_ms(ms);
}

static void test_causal_token(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    EXPECT_OK_KEEP(e, engram_put(e, "user:tok", "k", "v1", 2, NULL, 0, &r), &r);
    char *token = s_hold_str(r->token);
    engram_result_destroy(&r);

    /* A token the node has reached: answered at once. */
    int64_t start = s_now_ms();
    EXPECT_OK_KEEP(e, engram_get(e, "user:tok", "k", token, 2000, &r), &r);
    assert_true(s_now_ms() - start < 1000);
    assert_string_equal((char *)r->items[0].value, "v1");
    engram_result_destroy(&r);
    /* A read's token covers the write's. */
    EXPECT_OK_KEEP(e, engram_get(e, "user:tok", "k", NULL, 0, &r), &r);
    crdt_ctx_t *read = s_token_ctx(r->token, "user:tok"), *wrote = s_token_ctx(token, "user:tok");
    assert_true(crdt_ctx_covers(read, wrote));
    crdt_ctx_destroy(&read);
    crdt_ctx_destroy(&wrote);
    engram_result_destroy(&r);

    /* A forged token naming dots the node never issued: ETIMEDOUT after the timeout, while
     * the node keeps serving others. */
    char *forged = s_token_forge(token, "user:tok", 5);
    s_waiter_t waiter = {node_harness_endpoint(s_nodes.a), forged, 800, 0, 0, "", false};
    pthread_t thread;
    s_grant(s_nodes.a, "agent-wait", "alice"); /* s_wait_get's agent */
    assert_int_equal(pthread_create(&thread, NULL, s_wait_get, &waiter), 0);
    s_waiter_parked(&waiter, 100);
    start = s_now_ms();
    s_serving(s_nodes.a, e);
    assert_true(s_now_ms() - start < 500);
    pthread_join(thread, NULL);
    if (waiter.rc != ENGRAM_ETIMEDOUT)
        fail_msg("get --after a forged token: %d (%s), expected ENGRAM_ETIMEDOUT", waiter.rc,
                 engram_strerror(waiter.rc));
    assert_true(waiter.elapsed_ms >= 700 && waiter.elapsed_ms < 800 + 2000);

    /* Another node's token: its dots are not here either. */
    engram_t *eb = s_connect(s_nodes.b, "agent-a", "alice");
    EXPECT_OK_KEEP(eb, engram_put(eb, "user:tok", "k", "on b", 4, NULL, 0, &r), &r);
    char *foreign = s_hold_str(r->token);
    engram_result_destroy(&r);
    start = s_now_ms();
    EXPECT_RC(e, ENGRAM_ETIMEDOUT, engram_get(e, "user:tok", "k", foreign, 500, &r));
    assert_true(s_now_ms() - start >= 400 && s_now_ms() - start < 500 + 2000);
    /* And the other way round. */
    EXPECT_RC(eb, ENGRAM_ETIMEDOUT, engram_get(eb, "user:tok", "k", token, 300, &r));
    s_disconnect(&eb);

    /* A token one dot ahead parks the read until the next write reaches it. */
    char *next = s_token_forge(token, "user:tok", 1);
    s_waiter_t parked = {node_harness_endpoint(s_nodes.a), next, 8000, 0, 0, "", false};
    assert_int_equal(pthread_create(&thread, NULL, s_wait_get, &parked), 0);
    s_waiter_parked(&parked, 300);
    s_put(e, "user:tok", "k", "v2");
    pthread_join(thread, NULL);
    if (parked.rc != 0)
        fail_msg("a parked get: %d (%s)", parked.rc, engram_strerror(parked.rc));
    assert_true(parked.elapsed_ms >= 250 && parked.elapsed_ms < 3000);
    assert_string_equal(parked.value, "v2");

    /* Tokens that are not tokens. */
    EXPECT_RC(e, ENGRAM_EINVAL, engram_get(e, "user:tok", "k", "not base64!", 100, &r));
    EXPECT_RC(e, ENGRAM_EINVAL, engram_get(e, "user:tok", "k", "_____", 100, &r));
    crdt_ctx_t *empty = crdt_ctx_new();
    char *newer = s_token_make("user:tok", empty, ENGRAM_SCHEMA_MAJOR + 1);
    EXPECT_RC(e, ENGRAM_EVERSION, engram_get(e, "user:tok", "k", newer, 100, &r));
    char *bad_scope = s_token_make("bogus", empty, ENGRAM_SCHEMA_MAJOR);
    EXPECT_RC(e, ENGRAM_ESCOPE, engram_get(e, "user:tok", "k", bad_scope, 100, &r));
    crdt_ctx_destroy(&empty);
    s_serving(s_nodes.a, e);
    s_disconnect(&e);
}

/*  A subscriber that does not read falls behind: once its pipe and its backlog are full, its
 *  subscription ends with an error event (server.h), never by silently dropping changes. So
 *  what it reads is every event from the first on, without a gap, then that error. */
static void test_subscriber_backlog(void **state)
{
    (void)state;
    engram_t *s = s_connect(s_own, "agent-s", "alice");
    engram_t *w = s_connect(s_own, "agent-w", "alice");
    EXPECT_RC(s, 0, engram_subscribe(s, "run:flood"));
    enum { WRITES = 6000 };
    char key[32];
    for (int i = 0; i < WRITES; i++) {
        snprintf(key, sizeof key, "k%05d", i);
        s_put(w, "run:flood", key, "x");
    }
    engram_stats_t stats;
    s_stats(s_own, w, &stats);
    int got = 0, end = 0;
    engram_event_t *ev;
    while (got < WRITES) {
        end = engram_next_event(s, 2000, &ev);
        if (end != 0)
            break;
        snprintf(key, sizeof key, "k%05d", got);
        if (strcmp(ev->key, key) != 0)
            fail_msg("event %d is for '%s', expected '%s': an event was lost", got, ev->key, key);
        engram_event_destroy(&ev);
        got++;
    }
    fprintf(stderr,
            "subscriber read %d of %d events, then %d (%s): '%s'; node subscribers=%" PRIu64 "\n",
            got, WRITES, end, engram_strerror(end), engram_last_error(s), stats.subscribers);
    if (got < WRITES && end == ENGRAM_ETIMEDOUT)
        fail_msg("the subscription ended after %d of %d events without an error event: the "
                 "node dropped the rest silently",
                 got, WRITES);
    assert_true(got == WRITES || end != 0);
    s_disconnect(&s);
    s_disconnect(&w);
    assert_int_equal(node_harness_stop(s_own), 0);
}

/*  A connection whose subscription events fill its pipe still gets the replies to its own
 *  calls: a reply is never dropped (the node keeps serving every client). The subscriber is
 *  a raw DEALER that reads nothing until its STATS request has surely been answered, so its
 *  pipe is full when the node sends the reply. */
static void test_reply_to_a_lagging_subscriber(void **state)
{
    (void)state;
    zsock_t *d = s_dealer(s_own);
    engram_t *w = s_connect(s_own, "agent-w", "alice");
    Engram__Request req = ENGRAM__REQUEST__INIT;
    req.schema_major = ENGRAM_SCHEMA_MAJOR;
    req.id = 1;
    req.op = ENGRAM__OP__SUBSCRIBE;
    req.agent = "raw-agent";
    req.user = "alice";
    req.scope = "run:flood";
    s_raw_expect(d, &req, 0, "SUBSCRIBE");
    char key[32];
    for (int i = 0; i < 4000; i++) {
        snprintf(key, sizeof key, "k%05d", i);
        s_put(w, "run:flood", key, "x");
    }
    req.id = 2;
    req.op = ENGRAM__OP__STATS;
    zmsg_t *msg = s_request_msg(&req);
    assert_int_equal(zmsg_send(&msg, d), 0);
    s_serving(s_own, w); /* the node has handled the STATS by now */
    s_sleep_ms(200);

    zsock_set_rcvtimeo(d, 2000);
    size_t events = 0;
    bool answered = false;
    zmsg_t *got;
    while (!answered && (got = zmsg_recv(d))) {
        zframe_t *f = zmsg_first(got);
        Engram__Reply *reply = engram__reply__unpack(NULL, zframe_size(f), zframe_data(f));
        assert_non_null(reply);
        if (reply->id == 2)
            answered = reply->code == 0 && reply->stats;
        else
            events += reply->event != NULL;
        engram__reply__free_unpacked(reply, NULL);
        zmsg_destroy(&got);
    }
    if (!answered)
        fail_msg("the reply to a call from a connection whose pipe was full (%zu events read) "
                 "never came: the node dropped it",
                 events);
    s_close(&d);
    s_disconnect(&w);
    assert_int_equal(node_harness_stop(s_own), 0);
}

/*  --- restart ------------------------------------------------------------------------- */

static void test_restart(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_own, "agent-a", "alice");
    engram_result_t *r;
    EXPECT_OK(e, engram_put(e, "user:r", "reg", "value-1", 7, "{\"v\":1}", 0, &r), &r);
    EXPECT_OK(e, engram_set_add(e, "user:r", "set", "a", &r), &r);
    EXPECT_OK(e, engram_set_add(e, "user:r", "set", "b", &r), &r);
    EXPECT_OK(e, engram_set_remove(e, "user:r", "set", "b", &r), &r);
    EXPECT_OK(e, engram_counter_add(e, "user:r", "ctr", 10, &r), &r);
    EXPECT_OK(e, engram_counter_add(e, "user:r", "ctr", -3, &r), &r);
    for (int i = 0; i < 3; i++) {
        char text[8];
        snprintf(text, sizeof text, "l%d", i);
        EXPECT_OK(e, engram_log_append(e, "user:r", "log", text, strlen(text), &r), &r);
    }
    s_put(e, "private", "p", "private-1");
    EXPECT_OK_KEEP(e, engram_remember(e, "user:r", "memory text", NULL, 0, &r), &r);
    char *mem = s_hold_str(r->memory_id);
    char *token = s_hold_str(r->token);
    engram_result_destroy(&r);
    EXPECT_OK_KEEP(e, engram_get(e, "user:r", "reg", NULL, 0, &r), &r);
    uint64_t old_node = r->items[0].node, old_n = r->items[0].n;
    engram_result_destroy(&r);
    engram_stats_t before, after;
    s_stats(s_own, e, &before);
    s_disconnect(&e);

    /* The stop finds a parked GET and a subscription: it must still exit cleanly. */
    zsock_t *d = s_dealer(s_own);
    char *forged = s_token_forge(token, "user:r", 3);
    Engram__Request req = ENGRAM__REQUEST__INIT;
    req.schema_major = ENGRAM_SCHEMA_MAJOR;
    req.id = 1;
    req.op = ENGRAM__OP__SUBSCRIBE;
    req.agent = "raw-agent";
    req.user = "alice";
    req.scope = "user:r";
    req.key = "reg";
    s_raw_expect(d, &req, 0, "SUBSCRIBE");
    uint8_t *after_bytes = malloc(strlen(forged) + 1);
    size_t after_len = 0;
    assert_non_null(after_bytes);
    assert_int_equal(sodium_base642bin(after_bytes, strlen(forged) + 1, forged, strlen(forged),
                                       NULL, &after_len, NULL, TOKEN_VARIANT),
                     0);
    req.id = 2;
    req.op = ENGRAM__OP__GET;
    req.after.data = after_bytes;
    req.after.len = after_len;
    req.timeout_ms = 60000;
    zmsg_t *msg = s_request_msg(&req);
    assert_int_equal(zmsg_send(&msg, d), 0);
    free(after_bytes);
    s_sleep_ms(200);

    assert_int_equal(node_harness_stop(s_own), 0);
    s_close(&d);
    assert_int_equal(node_harness_start(s_own), 0);

    e = s_connect(s_own, "agent-a", "alice");
    s_stats(s_own, e, &after);
    assert_true(after.node_id == before.node_id);
    assert_true(after.replica_id == before.replica_id); /* a clean stop keeps the replica */
    assert_int_equal(after.scopes, before.scopes);
    /* The node's token from before the restart is reached at once. */
    int64_t start = s_now_ms();
    EXPECT_OK_KEEP(e, engram_get(e, "user:r", "reg", token, 2000, &r), &r);
    assert_true(s_now_ms() - start < 1000);
    assert_int_equal(r->nitems, 1);
    assert_string_equal((char *)r->items[0].value, "value-1");
    assert_string_equal(r->items[0].meta_json, "{\"v\":1}");
    engram_result_destroy(&r);
    s_expect_members(e, "user:r", "set", "a");
    assert_int_equal(s_counter(e, "user:r", "ctr"), 7);
    EXPECT_OK_KEEP(e, engram_log_range(e, "user:r", "log", &r), &r);
    assert_int_equal(r->nitems, 3);
    assert_string_equal((char *)r->items[0].value, "l0");
    assert_string_equal((char *)r->items[2].value, "l2");
    engram_result_destroy(&r);
    s_expect_value(e, "private", "p", "private-1");
    s_expect_value(e, "user:r", mem, "memory text");
    EXPECT_OK_KEEP(e, engram_history(e, "user:r", "set", &r), &r);
    assert_int_equal(r->nitems, 3);
    engram_result_destroy(&r);

    /* New writes continue the node's dots: the token grows, no dot is issued twice. */
    EXPECT_OK_KEEP(e, engram_put(e, "user:r", "reg", "value-2", 7, NULL, 0, &r), &r);
    assert_true(s_token_grew(r->token, token, "user:r"));
    engram_result_destroy(&r);
    EXPECT_OK_KEEP(e, engram_get(e, "user:r", "reg", NULL, 0, &r), &r);
    assert_int_equal(r->nitems, 1);
    assert_string_equal((char *)r->items[0].value, "value-2");
    assert_true(r->items[0].node == old_node);
    assert_true(r->items[0].n > old_n);
    engram_result_destroy(&r);
    EXPECT_OK_KEEP(e, engram_history(e, "user:r", "reg", &r), &r);
    assert_int_equal(r->nitems, 2);
    assert_true(r->items[1].hlc > r->items[0].hlc); /* the clock did not go back */
    engram_result_destroy(&r);
    s_disconnect(&e);
    assert_int_equal(node_harness_stop(s_own), 0);
}

/*  --- bad input through libengram ------------------------------------------------------ */

static void test_wrong_type(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    engram_stats_t before, after;
    s_put(e, "run:wt", "reg", "original");
    EXPECT_OK(e, engram_set_add(e, "run:wt", "set", "x", &r), &r);
    s_stats(s_nodes.a, e, &before);

    EXPECT_REFUSED(e, ENGRAM_ETYPE, engram_set_add(e, "run:wt", "reg", "x", &r));
    EXPECT_REFUSED(e, ENGRAM_ETYPE, engram_set_remove(e, "run:wt", "reg", "x", &r));
    EXPECT_REFUSED(e, ENGRAM_ETYPE, engram_counter_add(e, "run:wt", "reg", 1, &r));
    EXPECT_REFUSED(e, ENGRAM_ETYPE, engram_log_append(e, "run:wt", "reg", "x", 1, &r));
    EXPECT_REFUSED(e, ENGRAM_ETYPE, engram_set_members(e, "run:wt", "reg", &r));
    EXPECT_REFUSED(e, ENGRAM_ETYPE, engram_counter_get(e, "run:wt", "reg", &r));
    EXPECT_REFUSED(e, ENGRAM_ETYPE, engram_log_range(e, "run:wt", "reg", &r));
    EXPECT_REFUSED(e, ENGRAM_ETYPE, engram_put(e, "run:wt", "set", "v", 1, NULL, 0, &r));
    EXPECT_REFUSED(e, ENGRAM_ETYPE, engram_get(e, "run:wt", "set", NULL, 0, &r));
    EXPECT_REFUSED(e, ENGRAM_ETYPE, engram_counter_add(e, "run:wt", "set", 1, &r));
    EXPECT_REFUSED(e, ENGRAM_ETYPE, engram_log_append(e, "run:wt", "set", "x", 1, &r));

    s_stats(s_nodes.a, e, &after);
    assert_true(after.writes == before.writes);
    assert_true(after.errors >= before.errors + 11);
    s_expect_value(e, "run:wt", "reg", "original");
    s_expect_members(e, "run:wt", "set", "x");
    EXPECT_OK_KEEP(e, engram_history(e, "run:wt", "reg", &r), &r);
    assert_int_equal(r->nitems, 1);
    engram_result_destroy(&r);
    s_disconnect(&e);
}

/*  Batches: 100 requests in flight on one connection (more than ENGRAM_BATCH_WINDOW), each
 *  put followed by a get of its key, which must read it (the node handles a connection's
 *  requests in order: node A is alone, so no dot check holds its writes, and the gets carry
 *  no token to park on); a bad request in the middle gets its own code and changes nothing,
 *  and the rest go on; a key never written is ENGRAM_ENOTFOUND; a get parked on its token
 *  until the put queued after it is answered after it, matched by id, and reads it. A batch runs
 * once; reset, it reads every key back; the connection's next plain call gets its own reply. */
static void test_batch(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_stats_t before, after;
    s_stats(s_nodes.a, e, &before);
    engram_batch_t *batch = s_hold(S_HELD_BATCH, engram_batch_new(e));
    enum { PAIRS = 50, BAD = 24 };
    char key[32], value[32];
    const char *too_big = s_repeat('x', 1001); /* node A takes values of up to 1000 bytes */
    for (int i = 0; i < PAIRS; i++) {
        snprintf(key, sizeof key, "k%02d", i);
        snprintf(value, sizeof value, "value %d", i);
        if (i == BAD)
            assert_int_equal(engram_batch_put(batch, "run:batch", key, too_big, 1001), 0);
        else
            assert_int_equal(engram_batch_put(batch, "run:batch", key, value, strlen(value)), 0);
        assert_int_equal(engram_batch_get(batch, "run:batch", key), 0);
    }
    assert_int_equal(engram_batch_size(batch), 2 * PAIRS);
    assert_int_equal(engram_batch_code(batch, 0), ENGRAM_EINVAL); /* not run yet */
    assert_int_equal(engram_batch_run(batch), 0);
    for (int i = 0; i < PAIRS; i++) {
        snprintf(value, sizeof value, "value %d", i);
        const engram_result_t *put = engram_batch_result(batch, 2 * (size_t)i);
        const engram_result_t *got = engram_batch_result(batch, 2 * (size_t)i + 1);
        if (i == BAD) {
            assert_int_equal(engram_batch_code(batch, 2 * (size_t)i), ENGRAM_ETOOBIG);
            assert_true(strlen(engram_batch_error(batch, 2 * (size_t)i)) > 0);
            assert_null(put);
            assert_int_equal(engram_batch_code(batch, 2 * (size_t)i + 1), ENGRAM_ENOTFOUND);
            assert_null(got);
            continue;
        }
        assert_int_equal(engram_batch_code(batch, 2 * (size_t)i), 0);
        assert_string_equal(engram_batch_error(batch, 2 * (size_t)i), "");
        assert_non_null(put);
        assert_true(put->token && put->token[0]);
        assert_int_equal(engram_batch_code(batch, 2 * (size_t)i + 1), 0);
        assert_non_null(got);
        assert_int_equal(got->nitems, 1);
        assert_string_equal((char *)got->items[0].value, value);
    }
    s_stats(s_nodes.a, e, &after);
    assert_int_equal(after.writes - before.writes, PAIRS - 1);

    /* Run once; queue nothing more until reset. */
    assert_int_equal(engram_batch_run(batch), ENGRAM_EINVAL);
    assert_int_equal(engram_batch_get(batch, "run:batch", "k00"), ENGRAM_EINVAL);
    engram_batch_reset(batch);
    assert_int_equal(engram_batch_size(batch), 0);
    for (int i = 0; i < PAIRS; i++) {
        snprintf(key, sizeof key, "k%02d", i);
        assert_int_equal(engram_batch_get(batch, "run:batch", key), 0);
    }
    assert_int_equal(engram_batch_run(batch), 0);
    for (int i = 0; i < PAIRS; i++) {
        snprintf(value, sizeof value, "value %d", i);
        if (i == BAD) {
            assert_int_equal(engram_batch_code(batch, (size_t)i), ENGRAM_ENOTFOUND);
            continue;
        }
        assert_int_equal(engram_batch_code(batch, (size_t)i), 0);
        assert_string_equal((char *)engram_batch_result(batch, (size_t)i)->items[0].value, value);
    }
    s_expect_value(e, "run:batch", "k01", "value 1");

    /* A batch holds at most ENGRAM_BATCH_MAX requests; a bad name is the node's to refuse. */
    engram_batch_reset(batch);
    for (int i = 0; i < ENGRAM_BATCH_MAX; i++)
        assert_int_equal(engram_batch_get(batch, "run:batch", "k00"), 0);
    assert_int_equal(engram_batch_get(batch, "run:batch", "k00"), ENGRAM_EINVAL);
    engram_batch_reset(batch);
    assert_int_equal(engram_batch_get(batch, "not a scope", "k00"), 0);
    assert_int_equal(engram_batch_run(batch), 0);
    assert_int_equal(engram_batch_code(batch, 0), ENGRAM_ESCOPE);

    /* Replies out of order: a get whose token is one dot ahead waits, parked, for the put
     * queued after it; its reply comes second and is matched to it, and it reads that put. */
    engram_result_t *r;
    EXPECT_OK_KEEP(e, engram_put(e, "run:batch-order", "k", "old", 3, NULL, 0, &r), &r);
    char *ahead = s_token_forge(r->token, "run:batch-order", 1);
    engram_result_destroy(&r);
    engram_batch_reset(batch);
    assert_int_equal(engram_set_after(e, ahead, 5000), 0);
    assert_int_equal(engram_batch_get(batch, "run:batch-order", "k"), 0);
    assert_int_equal(engram_set_after(e, NULL, 0), 0);
    assert_int_equal(engram_batch_put(batch, "run:batch-order", "k", "new", 3), 0);
    assert_int_equal(engram_batch_run(batch), 0);
    assert_int_equal(engram_batch_code(batch, 1), 0);
    assert_int_equal(engram_batch_code(batch, 0), 0);
    const engram_result_t *parked = engram_batch_result(batch, 0);
    assert_int_equal(parked->nitems, 1); /* a get's result: a put's has no items */
    assert_string_equal((char *)parked->items[0].value, "new");
    s_serving(s_nodes.a, e);
    s_unhold(batch);
    engram_batch_destroy(&batch); /* before its connection */
    s_disconnect(&e);

    /* No node: the run fails, and so does every request it could not send. */
    engram_t *nowhere =
        s_hold(S_HELD_CONN, engram_connect("ipc:///tmp/engram-no-node.sock", "agent-a", "alice"));
    engram_batch_t *lost = s_hold(S_HELD_BATCH, engram_batch_new(nowhere));
    assert_int_equal(engram_batch_get(lost, "run:batch", "k00"), 0);
    assert_int_equal(engram_batch_get(lost, "run:batch", "k01"), 0);
    assert_int_equal(engram_batch_run(lost), ENGRAM_EUNAVAILABLE);
    assert_int_equal(engram_batch_code(lost, 0), ENGRAM_EUNAVAILABLE);
    assert_int_equal(engram_batch_code(lost, 1), ENGRAM_EUNAVAILABLE);
    assert_null(engram_batch_result(lost, 1));
    assert_true(strlen(engram_last_error(nowhere)) > 0);
}

static void test_oversized_value(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    char *fits = s_repeat('f', A_MAX_VALUE), *big = s_repeat('b', A_MAX_VALUE + 1);
    s_put(e, "run:big", "v", fits);
    engram_stats_t before, after;
    s_stats(s_nodes.a, e, &before);
    EXPECT_REFUSED(e, ENGRAM_ETOOBIG, engram_put(e, "run:big", "v", big, strlen(big), NULL, 0, &r));
    EXPECT_REFUSED(e, ENGRAM_ETOOBIG,
                   engram_put(e, "run:big", "new", big, strlen(big), NULL, 0, &r));
    EXPECT_REFUSED(e, ENGRAM_ETOOBIG, engram_log_append(e, "run:big", "log", big, strlen(big), &r));
    EXPECT_REFUSED(e, ENGRAM_ETOOBIG, engram_remember(e, "run:big", big, NULL, 0, &r));
    s_stats(s_nodes.a, e, &after);
    assert_true(after.writes == before.writes);
    s_expect_value(e, "run:big", "v", fits);
    s_expect_missing(e, "run:big", "new");
    EXPECT_RC(e, ENGRAM_ENOTFOUND, engram_log_range(e, "run:big", "log", &r));
    char listed[256];
    int pages;
    s_list_all(e, "run:big", NULL, 0, A_LIST_LIMIT, listed, sizeof listed, &pages);
    assert_string_equal(listed, "v:reg");
    s_disconnect(&e);
}

static void test_invalid_scopes(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    char *long_id = s_repeat('x', 5 + 252), *longer_id = s_repeat('x', 5 + 252 + 1);
    memcpy(long_id, "user:", 5);   /* 257 bytes: one too many */
    memcpy(longer_id, "user:", 5); /* 258 */
    const char *bad[] = {"",          "bogus",          "user:",   "user:has space", "sys:acl",
                         "USER:x",    "private:x",      ":x",      "user",           "user:\ttab",
                         "user:\x7f", "user:new\nline", "Private", long_id,          longer_id};
    engram_stats_t before, after;
    s_stats(s_nodes.a, e, &before);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *scope = bad[i];
        EXPECT_REFUSED(e, ENGRAM_ESCOPE, engram_put(e, scope, "k", "v", 1, NULL, 0, &r));
        EXPECT_REFUSED(e, ENGRAM_ESCOPE, engram_get(e, scope, "k", NULL, 0, &r));
        EXPECT_REFUSED(e, ENGRAM_ESCOPE, engram_set_add(e, scope, "k", "x", &r));
        EXPECT_REFUSED(e, ENGRAM_ESCOPE, engram_counter_add(e, scope, "k", 1, &r));
        EXPECT_REFUSED(e, ENGRAM_ESCOPE, engram_log_append(e, scope, "k", "x", 1, &r));
        EXPECT_REFUSED(e, ENGRAM_ESCOPE, engram_list(e, scope, NULL, NULL, 0, &r));
        EXPECT_REFUSED(e, ENGRAM_ESCOPE, engram_remember(e, scope, "x", NULL, 0, &r));
        EXPECT_REFUSED(e, ENGRAM_ESCOPE, engram_subscribe(e, scope));
        EXPECT_REFUSED(e, ENGRAM_ESCOPE, engram_share(e, "k", scope, &r));
    }
    s_stats(s_nodes.a, e, &after);
    assert_true(after.writes == before.writes);
    assert_true(after.scopes == before.scopes);

    /* The limits themselves are fine: an id of 251 bytes (a 256-byte scope), every kind. */
    long_id[256] = '\0';
    s_put(e, long_id, "k", "v");
    s_expect_value(e, long_id, "k", "v");
    const char *good[] = {"user:a", "run:a", "app:a", "agent:a", "team:a"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        s_put(e, good[i], "k", "v");
    s_disconnect(&e);
}

/*  Scope names, keys and elements travel in proto3 `string` fields (Request, Item, Event,
 *  Token), which must hold UTF-8: a node that stores a name that is not UTF-8 sends it back
 *  in every token, event and listing, and a client in another language (whose protobuf
 *  runtime checks UTF-8) cannot parse those replies. Such names must be refused like any
 *  other invalid name, and nothing written. */
static void test_non_utf8_names(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    engram_stats_t before, after;
    s_stats(s_nodes.a, e, &before);
    int scope_rc = engram_put(e, "user:\xff\xfe", "k", "v", 1, NULL, 0, &r);
    engram_result_destroy(&r);
    s_serving(s_nodes.a, e);
    int key_rc = engram_put(e, "run:utf8", "key-\xc3\x28", "v", 1, NULL, 0, &r);
    engram_result_destroy(&r);
    s_serving(s_nodes.a, e);
    int elem_rc = engram_set_add(e, "run:utf8", "set", "\xe2\x82", &r);
    engram_result_destroy(&r);
    s_serving(s_nodes.a, e);
    s_stats(s_nodes.a, e, &after);
    fprintf(stderr, "non-UTF-8 scope: %d (%s); key: %d (%s); element: %d (%s)\n", scope_rc,
            engram_strerror(scope_rc), key_rc, engram_strerror(key_rc), elem_rc,
            engram_strerror(elem_rc));
    assert_int_equal(scope_rc, ENGRAM_EINVAL); /* refused on the wire, before any handler */
    assert_int_not_equal(key_rc, 0);
    assert_int_not_equal(elem_rc, 0);
    assert_true(after.writes == before.writes);
}

static Engram__Request s_raw_put(uint64_t id, const char *key);

/*  Packs req after replacing, in its wire bytes, the first '~' of the field holding `marked`
 *  with the byte `byte` (protobuf-c would stop at a NUL given as a C string). */
static zmsg_t *s_request_msg_patched(const Engram__Request *req, const char *marked, char byte)
{
    size_t size = engram__request__get_packed_size(req);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    engram__request__pack(req, buf);
    uint8_t *at = memmem(buf, size, marked, strlen(marked));
    assert_non_null(at);
    *(uint8_t *)memchr(at, '~', strlen(marked)) = (uint8_t)byte;
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, buf, size);
    free(buf);
    return msg;
}

/*  protobuf-c unpacks a string at its first NUL: a key "k\0hidden" wrote `k` and an agent
 *  "raw-agent\0x" acted as raw-agent, answered as success. Every string field is checked on
 *  the wire now: refused with ENGRAM_EINVAL naming the field, never quoting it, and nothing
 *  written. */
static void test_strings_checked_on_the_wire(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    zsock_t *d = s_dealer(s_nodes.a);
    engram_stats_t before, after;
    s_stats(s_nodes.a, e, &before);
    static const struct {
        const char *key, *agent, *marked, *field;
        char byte;
    } cases[] = {
        {"k~hidden", "raw-agent", "k~hidden", "key", '\0'},
        {"nul-agent", "raw-agent~x", "raw-agent~x", "agent", '\0'},
        {"bad-utf8~", "raw-agent", "bad-utf8~", "key", (char)0xc0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Engram__Request req = s_raw_put(100 + i, cases[i].key);
        req.agent = (char *)cases[i].agent;
        zmsg_t *msg = s_request_msg_patched(&req, cases[i].marked, cases[i].byte);
        Engram__Reply *reply = s_raw_exchange(d, &msg);
        assert_non_null(reply);
        assert_int_equal(reply->id, 100 + i);
        assert_int_equal(reply->code, ENGRAM_EINVAL);
        char want[96];
        snprintf(want, sizeof want, "field '%s' is not valid UTF-8 or holds a NUL", cases[i].field);
        assert_string_equal(reply->message, want);
        engram__reply__free_unpacked(reply, NULL);
        s_serving(s_nodes.a, e);
    }
    s_expect_missing(e, "run:raw", "k");
    s_expect_missing(e, "run:raw", "nul-agent");
    s_stats(s_nodes.a, e, &after);
    assert_true(after.writes == before.writes);
    s_close(&d);
    s_disconnect(&e);
}

/*  Scope ids are names: invisible, bidirectional and space characters could make two scopes
 *  look alike, so they are refused (and the message shows them escaped); a key may hold them
 *  (it is data, not an identity) but no control character. */
static void test_names_are_visible(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    engram_stats_t before, after;
    s_stats(s_nodes.a, e, &before);
    const char *spoofs[] = {"run:team\xe2\x80\xae"
                            "evil",
                            "run:a\xe2\x80\x8b",
                            "run:a\xc2\xa0"
                            "b",
                            "run:e\xcc\x81" /* e + combining acute: not NFC */};
    for (size_t i = 0; i < sizeof spoofs / sizeof spoofs[0]; i++) {
        EXPECT_RC(e, ENGRAM_ESCOPE, engram_put(e, spoofs[i], "k", "v", 1, NULL, 0, &r));
        assert_null(strstr(engram_last_error(e), "\xe2\x80"));
        s_serving(s_nodes.a, e);
    }
    EXPECT_RC(e, ENGRAM_ESCOPE, engram_put(e, spoofs[0], "k", "v", 1, NULL, 0, &r));
    if (!strstr(engram_last_error(e), "\\u202E"))
        fail_msg("the message shows no escape: %s", engram_last_error(e));
    EXPECT_REFUSED(e, ENGRAM_EINVAL, engram_put(e, "run:names", "tab\tkey", "v", 1, NULL, 0, &r));
    EXPECT_REFUSED(e, ENGRAM_EINVAL, engram_set_add(e, "run:names", "set", "\x1b[31m", &r));
    s_stats(s_nodes.a, e, &after);
    assert_true(after.writes == before.writes);
    s_put(e, "run:names",
          "emoji\xe2\x80\x8d"
          "key",
          "v");                                  /* a zero-width joiner: data */
    s_put(e, "run:\xc3\xa9t\xc3\xa9", "k", "v"); /* NFC: fine */
    s_disconnect(&e);
}

static void test_key_limits(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_result_t *r;
    char *max_key = s_repeat('k', ENGRAM_MAX_KEY_BYTES),
         *long_key = s_repeat('k', ENGRAM_MAX_KEY_BYTES + 1);
    engram_stats_t before, after;
    s_stats(s_nodes.a, e, &before);
    EXPECT_REFUSED(e, ENGRAM_ETOOBIG, engram_put(e, "run:keys", long_key, "v", 1, NULL, 0, &r));
    EXPECT_REFUSED(e, ENGRAM_ETOOBIG, engram_get(e, "run:keys", long_key, NULL, 0, &r));
    EXPECT_REFUSED(e, ENGRAM_ETOOBIG, engram_set_add(e, "run:keys", long_key, "x", &r));
    EXPECT_REFUSED(e, ENGRAM_ETOOBIG, engram_set_add(e, "run:keys", "set", long_key, &r));
    EXPECT_REFUSED(e, ENGRAM_ETOOBIG, engram_counter_add(e, "run:keys", long_key, 1, &r));
    EXPECT_REFUSED(e, ENGRAM_ETOOBIG, engram_log_append(e, "run:keys", long_key, "x", 1, &r));
    EXPECT_REFUSED(e, ENGRAM_EINVAL, engram_put(e, "run:keys", "", "v", 1, NULL, 0, &r));
    EXPECT_REFUSED(e, ENGRAM_EINVAL, engram_set_add(e, "run:keys", "set", "", &r));
    EXPECT_REFUSED(e, ENGRAM_EINVAL, engram_counter_add(e, "run:keys", "", 1, &r));
    s_stats(s_nodes.a, e, &after);
    assert_true(after.writes == before.writes);
    char listed[256];
    int pages;
    s_list_all(e, "run:keys", NULL, 0, A_LIST_LIMIT, listed, sizeof listed, &pages);
    assert_string_equal(listed, "");

    s_put(e, "run:keys", max_key, "v");
    s_expect_value(e, "run:keys", max_key, "v");
    EXPECT_OK(e, engram_set_add(e, "run:keys", "set", max_key, &r), &r);
    s_expect_members(e, "run:keys", "set", max_key);
    s_disconnect(&e);
}

/*  --- paged reads ----------------------------------------------------------------------- */

#define PAGED_ITEMS  2500
#define PAGED_HIDDEN 10 /* a hidden fragment after every PAGED_HIDDEN-th visible one */

typedef int s_page_fn(engram_t *e, const char *scope, const char *key, const char *cursor,
                      unsigned limit, engram_result_t **result);

/*  What a paged item shows: a set member's or log entry's value, a history step's value. */
static void s_item_text(const engram_item_t *item, char *out, size_t size)
{
    snprintf(out, size, "%.*s", (int)item->len, (const char *)item->value);
}

/*  Pages through KEY with page (limit a page, 0: node A's), checking each page holds at most
 *  that many items and every one but the last exactly that many, and that the concatenation is
 * want[0..n) in order. Returns the number of pages. */
static int s_page_through(engram_t *e, s_page_fn *page, const char *scope, const char *key,
                          unsigned limit, char (*want)[16], size_t n)
{
    char *cursor = NULL;
    size_t seen = 0;
    int pages = 0;
    do {
        engram_result_t *r = NULL;
        EXPECT_RC(e, 0, page(e, scope, key, cursor, limit, &r));
        s_token_ok(r, "a page");
        pages++;
        unsigned size = limit ? limit : A_LIST_LIMIT; /* 0: the node's page */
        assert_true(r->nitems <= size);
        bool last = !*r->next_cursor;
        if (!last && r->nitems != size)
            fail_msg("page %d of %s holds %zu items, not %u, and is not the last", pages, key,
                     r->nitems, size);
        for (size_t i = 0; i < r->nitems; i++) {
            char text[64];
            s_item_text(&r->items[i], text, sizeof text);
            if (seen >= n || strcmp(text, want[seen]) != 0)
                fail_msg("%s: item %zu is '%s', expected '%s'", key, seen, text,
                         seen < n ? want[seen] : "(the end)");
            seen++;
        }
        free(cursor);
        cursor = last ? NULL : strdup(r->next_cursor);
        engram_result_destroy(&r);
    } while (cursor);
    assert_int_equal(seen, n);
    return pages;
}

/*  SET_MEMBERS, LOG_RANGE and HISTORY page with a cursor: 2,500 visible items in pages of 100
 *  come each exactly once, in order, 25 pages; fragments another agent wrote that the reader
 *  may not see (interleaved) appear on no page and are not counted (every page but the last
 *  is full); the whole-object calls gather every page (node A's page is 3 items); a cursor
 *  this read never returned is refused with ENGRAM_EINVAL. */
static void test_paged_reads(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    engram_t *h = s_connect(s_nodes.a, "agent-h", "hank"); /* alice cannot act through it */
    engram_result_t *r;
    static char want[PAGED_ITEMS][16];
    for (int i = 0; i < PAGED_ITEMS; i++) {
        snprintf(want[i], sizeof want[i], "e%04d", i);
        EXPECT_OK(e, engram_set_add(e, "run:pages", "set", want[i], &r), &r);
        EXPECT_OK(e, engram_log_append(e, "run:pages", "log", want[i], 5, &r), &r);
        EXPECT_OK(e, engram_put(e, "run:pages", "reg", want[i], 5, NULL, 0, &r), &r);
        if (i % PAGED_HIDDEN == 0) {
            char hidden[16];
            snprintf(hidden, sizeof hidden, "e%04d-h", i);
            EXPECT_OK(h, engram_set_add(h, "run:pages", "set", hidden, &r), &r);
            EXPECT_OK(h, engram_log_append(h, "run:pages", "log", hidden, 7, &r), &r);
            EXPECT_OK(h, engram_put(h, "run:pages", "reg", hidden, 7, NULL, 0, &r), &r);
        }
    }
    assert_int_equal(
        s_page_through(e, engram_set_members_page, "run:pages", "set", 100, want, PAGED_ITEMS), 25);
    assert_int_equal(s_page_through(e, engram_log_page, "run:pages", "log", 100, want, PAGED_ITEMS),
                     25);
    assert_int_equal(
        s_page_through(e, engram_history_page, "run:pages", "reg", 100, want, PAGED_ITEMS), 25);
    /* odd page sizes, the node's default (3 on node A) */
    s_page_through(e, engram_set_members_page, "run:pages", "set", 7, want, PAGED_ITEMS);
    assert_int_equal(s_page_through(e, engram_log_page, "run:pages", "log", 0, want, PAGED_ITEMS),
                     (PAGED_ITEMS + A_LIST_LIMIT - 1) / A_LIST_LIMIT);
    /* the hidden agent sees its own fragments only where alice's are hidden from hank too */
    EXPECT_OK_KEEP(h, engram_set_members(h, "run:pages", "set", &r), &r);
    assert_int_equal(r->nitems, PAGED_ITEMS / PAGED_HIDDEN);
    engram_result_destroy(&r);

    /* every page, gathered */
    EXPECT_OK_KEEP(e, engram_set_members(e, "run:pages", "set", &r), &r);
    assert_int_equal(r->nitems, PAGED_ITEMS);
    assert_string_equal(r->next_cursor, "");
    for (size_t i = 0; i < r->nitems; i++)
        assert_memory_equal(r->items[i].value, want[i], 6);
    engram_result_destroy(&r);
    EXPECT_OK_KEEP(e, engram_history(e, "run:pages", "reg", &r), &r);
    assert_int_equal(r->nitems, PAGED_ITEMS);
    engram_result_destroy(&r);

    /* cursors that no read returned */
    const char *bad[] = {"garbage", "0000000000000001.0000000000000002",
                         "000000000000000g.0000000000000002.0000000000000003",
                         "0000000000000001-0000000000000002-0000000000000003"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT_RC(e, ENGRAM_EINVAL, engram_log_page(e, "run:pages", "log", bad[i], 10, &r));
        assert_non_null(strstr(engram_last_error(e), "cursor"));
        EXPECT_REFUSED(e, ENGRAM_EINVAL,
                       engram_history_page(e, "run:pages", "reg", bad[i], 10, &r));
    }
    /* past the end: an empty last page, not "not found" */
    EXPECT_OK_KEEP(e, engram_set_members_page(e, "run:pages", "set", "zzz", 10, &r), &r);
    assert_int_equal(r->nitems, 0);
    assert_string_equal(r->next_cursor, "");
    engram_result_destroy(&r);
    /* a cursor may hold what a key may not be created with (a control character): reads and
     * removals take it, so that such an element stored before the rule stays readable */
    EXPECT_OK_KEEP(e, engram_set_members_page(e, "run:pages", "set", "e0001\tx", 1, &r), &r);
    assert_int_equal(r->nitems, 1);
    assert_string_equal((char *)r->items[0].value, "e0002");
    engram_result_destroy(&r);
    EXPECT_RC(e, ENGRAM_ENOTFOUND, engram_set_remove(e, "run:pages", "set", "a\tb", &r));

    /* an object removed between two pages: the later page is an empty last one */
    for (int i = 0; i < 3; i++) {
        EXPECT_OK(e, engram_set_add(e, "run:pages", "gone-set", want[i], &r), &r);
        EXPECT_OK(e, engram_log_append(e, "run:pages", "gone-log", want[i], 5, &r), &r);
    }
    engram_result_t *first_set, *first_log;
    EXPECT_OK_KEEP(e, engram_set_members_page(e, "run:pages", "gone-set", NULL, 1, &first_set),
                   &first_set);
    EXPECT_OK_KEEP(e, engram_log_page(e, "run:pages", "gone-log", NULL, 1, &first_log), &first_log);
    EXPECT_OK(e, engram_delete(e, "run:pages", "gone-set", &r), &r);
    EXPECT_OK(e, engram_delete(e, "run:pages", "gone-log", &r), &r);
    EXPECT_OK_KEEP(
        e, engram_set_members_page(e, "run:pages", "gone-set", first_set->next_cursor, 1, &r), &r);
    assert_int_equal(r->nitems, 0);
    engram_result_destroy(&r);
    EXPECT_OK_KEEP(e, engram_log_page(e, "run:pages", "gone-log", first_log->next_cursor, 1, &r),
                   &r);
    assert_int_equal(r->nitems, 0);
    engram_result_destroy(&r);
    engram_result_destroy(&first_set);
    engram_result_destroy(&first_log);

    s_disconnect(&h);
    s_disconnect(&e);

    /* pages end by bytes too: entries of 900 kB (on node B, of default limits), at most
     * ENGRAM_MAX_PAGE_BYTES of values a page */
    e = s_connect(s_nodes.b, "agent-a", "alice");
    size_t big = 900 * 1000;
    char *value = malloc(big);
    assert_non_null(value);
    memset(value, 'v', big);
    for (int i = 0; i < 6; i++)
        EXPECT_OK(e, engram_log_append(e, "run:pages", "big-log", value, big, &r), &r);
    free(value);
    EXPECT_OK_KEEP(e, engram_log_page(e, "run:pages", "big-log", NULL, 100, &r), &r);
    assert_int_equal(r->nitems, ENGRAM_MAX_PAGE_BYTES / big);
    assert_string_not_equal(r->next_cursor, "");
    engram_result_destroy(&r);
    EXPECT_OK_KEEP(e, engram_log_range(e, "run:pages", "big-log", &r), &r);
    assert_int_equal(r->nitems, 6); /* gathered over two pages */
    engram_result_destroy(&r);
    s_disconnect(&e);
}

/*  --- bad input as raw frames ---------------------------------------------------------- */

static Engram__Request s_raw_put(uint64_t id, const char *key)
{
    Engram__Request req = ENGRAM__REQUEST__INIT;
    req.schema_major = ENGRAM_SCHEMA_MAJOR;
    req.id = id;
    req.op = ENGRAM__OP__PUT;
    req.agent = "raw-agent";
    req.user = "alice";
    req.scope = "run:raw";
    req.key = (char *)key;
    req.value.data = (uint8_t *)"raw";
    req.value.len = 3;
    return req;
}

static void test_raw_frames(void **state)
{
    (void)state;
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    zsock_t *d = s_dealer(s_nodes.a);
    engram_stats_t before, after;
    s_stats(s_nodes.a, e, &before);

    /* A well-formed request over the raw socket works (the control). */
    Engram__Request ok = s_raw_put(1, "control");
    s_raw_expect(d, &ok, 0, "a valid PUT");
    s_expect_value(e, "run:raw", "control", "raw");
    s_stats(s_nodes.a, e, &before);

    /* An empty frame decodes as an empty Request: it acts as the key's agent (it names none),
     * and names neither an operation nor a scope. */
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, "", 0);
    Engram__Reply *reply = s_raw_exchange(d, &msg);
    assert_non_null(reply);
    if (reply->code != ENGRAM_EDECODE && reply->code != ENGRAM_EINVAL &&
        reply->code != ENGRAM_ESCOPE)
        fail_msg("empty frame: code %d", reply->code);
    engram__reply__free_unpacked(reply, NULL);
    s_serving(s_nodes.a, e);

    /* Two frames. */
    msg = s_request_msg(&ok);
    zmsg_addstr(msg, "second");
    reply = s_raw_exchange(d, &msg);
    assert_non_null(reply);
    assert_int_equal(reply->code, ENGRAM_EDECODE);
    assert_true(reply->message[0] != '\0');
    engram__reply__free_unpacked(reply, NULL);
    s_serving(s_nodes.a, e);

    /* Valid protobuf, invalid requests: nothing is written. */
    Engram__Request req = s_raw_put(2, "unknown-op");
    req.op = (Engram__Op)999;
    s_raw_expect(d, &req, ENGRAM_EINVAL, "op 999");
    s_serving(s_nodes.a, e);
    req = s_raw_put(3, "op-none");
    req.op = ENGRAM__OP__OP_NONE;
    s_raw_expect(d, &req, ENGRAM_EINVAL, "op 0");
    req = s_raw_put(4, "schema-2");
    req.schema_major = ENGRAM_SCHEMA_MAJOR + 1;
    s_raw_expect(d, &req, ENGRAM_EVERSION, "schema_major 2");
    s_serving(s_nodes.a, e);
    req = s_raw_put(5, "other-agent");
    req.agent = "agent-a"; /* the connection's key is raw-agent's */
    s_raw_expect(d, &req, ENGRAM_EDENIED, "another agent than the key's");
    s_serving(s_nodes.a, e);
    req = s_raw_put(6, "no-scope");
    req.scope = "";
    s_raw_expect(d, &req, ENGRAM_ESCOPE, "no scope");
    Engram__Request stats_v2 = ENGRAM__REQUEST__INIT;
    stats_v2.schema_major = ENGRAM_SCHEMA_MAJOR + 1;
    stats_v2.id = 7;
    stats_v2.op = ENGRAM__OP__STATS;
    stats_v2.agent = "raw-agent";
    s_raw_expect(d, &stats_v2, ENGRAM_EVERSION, "STATS in schema 2");
    /* Fields another op takes: a PUT with as_of_ms (GET's), with a delete's if_version. */
    req = s_raw_put(10, "as-of");
    req.as_of_ms = 1;
    s_raw_expect(d, &req, ENGRAM_EINVAL, "PUT with as_of_ms");
    req = s_raw_put(11, "if-version");
    req.op = ENGRAM__OP__DELETE;
    req.if_version = (ProtobufCBinaryData){3, (uint8_t *)"tok"};
    s_raw_expect(d, &req, ENGRAM_EINVAL, "DELETE with if_version");
    s_stats(s_nodes.a, e, &after);
    assert_true(after.writes == before.writes);
    const char *never[] = {"unknown-op", "op-none", "schema-2", "other-agent", "as-of"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        s_expect_missing(e, "run:raw", never[i]);

    /* A request that names no agent acts as the agent of the connection's key. */
    req = s_raw_put(9, "no-agent");
    req.agent = "";
    s_raw_expect(d, &req, 0, "no agent");
    engram_result_t *r;
    EXPECT_OK_KEEP(e, engram_get(e, "run:raw", "no-agent", NULL, 0, &r), &r);
    assert_string_equal(r->items[0].author, "raw-agent");
    engram_result_destroy(&r);

    /* Random frames, one at a time: each gets one reply; those that are not a Request get
     * ENGRAM_EDECODE. */
    s_stats(s_nodes.a, e, &before);
    int cases = prop_cases(300), undecodable = 0;
    prop_rng_t rng = prop_case("random frames", 0);
    for (int i = 0; i < cases; i++) {
        uint8_t buf[300];
        size_t len = 1 + prop_below(&rng, sizeof buf);
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)prop_next(&rng);
        Engram__Request *as_req = engram__request__unpack(NULL, len, buf);
        msg = zmsg_new();
        zmsg_addmem(msg, buf, len);
        reply = s_raw_exchange(d, &msg);
        PROP_CHECK(reply != NULL);
        if (!as_req) {
            undecodable++;
            PROP_CHECK(reply->code == ENGRAM_EDECODE);
        } else {
            PROP_CHECK(reply->id == as_req->id);
            engram__request__free_unpacked(as_req, NULL);
        }
        engram__reply__free_unpacked(reply, NULL);
        if (i % 50 == 0)
            s_serving(s_nodes.a, e);
    }
    s_stats(s_nodes.a, e, &after);
    assert_true(after.writes == before.writes);
    assert_true(after.malformed == before.malformed + (uint64_t)undecodable);
    assert_true(undecodable > cases / 2);

    /* The same as a burst: every frame is answered, in one or several loop turns. */
    rng = prop_case("random burst", 0);
    for (int i = 0; i < cases; i++) {
        uint8_t buf[64];
        size_t len = 1 + prop_below(&rng, sizeof buf);
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)prop_next(&rng);
        msg = zmsg_new();
        zmsg_addmem(msg, buf, len);
        assert_int_equal(zmsg_send(&msg, d), 0);
    }
    for (int i = 0; i < cases; i++) {
        zmsg_t *got = zmsg_recv(d);
        PROP_CHECK(got != NULL);
        zmsg_destroy(&got);
    }
    s_stats(s_nodes.a, e, &after);
    assert_true(after.writes == before.writes);

    /* A frame over --max-frame-bytes: libzmq drops it (and the connection); no reply, the
     * node goes on. */
    zsock_t *big = s_dealer(s_nodes.a);
    zsock_set_rcvtimeo(big, 1000);
    size_t big_len = A_MAX_FRAME + 1000;
    uint8_t *payload = calloc(1, big_len);
    assert_non_null(payload);
    msg = zmsg_new();
    zmsg_addmem(msg, payload, big_len);
    free(payload);
    reply = s_raw_exchange(big, &msg);
    assert_null(reply);
    s_close(&big);
    s_serving(s_nodes.a, e);

    /* The raw connection still works after all that. */
    ok = s_raw_put(8, "control-2");
    s_raw_expect(d, &ok, 0, "a valid PUT at the end");
    s_expect_value(e, "run:raw", "control-2", "raw");
    s_close(&d);
    s_disconnect(&e);
}

/*  engram_connect_keys without an agent name: the node takes the agent from the key
 *  (engram.h), so the connection writes and reads as that agent. The request's agent field is
 *  then protobuf-c's static default string, which engramd must not free: it did, to replace
 *  it (node/api/access.c, s_set_field from s_identify), and died of free(): invalid pointer
 *  (SIGABRT) on the first request of such a connection, as on any raw request without an
 *  agent (test_raw_frames). */
static void test_connection_without_agent_name(void **state)
{
    (void)state;
    s_grant(s_nodes.a, "agent-k", "alice");
    zcert_t *cert = agent_keys_cert("agent-k");
    assert_non_null(cert);
    engram_t *e = engram_connect_keys(node_harness_endpoint(s_nodes.a), NULL, "alice",
                                      zcert_public_key(cert), zcert_secret_key(cert), NULL);
    zcert_destroy(&cert);
    s_hold(S_HELD_CONN, e);
    engram_set_timeout(e, 3000); /* a node that crashes does not answer: no need to wait long */
    s_put(e, "run:anon", "k", "v");
    engram_result_t *r;
    EXPECT_OK_KEEP(e, engram_get(e, "run:anon", "k", NULL, 0, &r), &r);
    assert_int_equal(r->nitems, 1);
    assert_string_equal(r->items[0].author, "agent-k");
    engram_result_destroy(&r);
    s_serving(s_nodes.a, e);
}

/*  Successful replies carry a token even when the scope was never written; error replies
 *  carry none. Checked on the wire, under libengram. */
static void test_tokens_on_the_wire(void **state)
{
    (void)state;
    zsock_t *d = s_dealer(s_nodes.a);
    Engram__Request req = ENGRAM__REQUEST__INIT;
    req.schema_major = ENGRAM_SCHEMA_MAJOR;
    req.agent = "raw-agent";
    req.user = "alice";
    req.scope = "run:never-seen";
    req.key = "k";
    const Engram__Op reads[] = {ENGRAM__OP__LIST, ENGRAM__OP__SUBSCRIBE, ENGRAM__OP__UNSUBSCRIBE};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        req.id = 100 + i;
        req.op = reads[i];
        zmsg_t *msg = s_request_msg(&req);
        Engram__Reply *reply = s_raw_exchange(d, &msg);
        assert_non_null(reply);
        assert_int_equal(reply->code, 0);
        assert_true(reply->token.len > 0);
        Engram__Token *t = engram__token__unpack(NULL, reply->token.len, reply->token.data);
        assert_non_null(t);
        assert_int_equal(t->n_scopes, 1);
        assert_string_equal(t->scopes[0]->scope, "run:never-seen");
        engram__token__free_unpacked(t, NULL);
        engram__reply__free_unpacked(reply, NULL);
    }
    /* After UNSUBSCRIBE no event comes. */
    engram_t *e = s_connect(s_nodes.a, "agent-a", "alice");
    s_put(e, "run:never-seen", "k2", "v");
    s_disconnect(&e);
    zsock_set_rcvtimeo(d, 300);
    zmsg_t *none = zmsg_recv(d);
    assert_null(none);
    zsock_set_rcvtimeo(d, 5000);

    req.id = 200;
    req.op = ENGRAM__OP__GET;
    zmsg_t *msg = s_request_msg(&req);
    Engram__Reply *reply = s_raw_exchange(d, &msg);
    assert_non_null(reply);
    assert_int_equal(reply->code, ENGRAM_ENOTFOUND);
    engram__reply__free_unpacked(reply, NULL);
    s_close(&d);
}

/*  Last: both shared nodes stop cleanly (exit 0: no crash, and no leak under ASan). */
static void test_clean_stop(void **state)
{
    (void)state;
    assert_int_equal(node_harness_stop(s_nodes.a), 0);
    assert_int_equal(node_harness_stop(s_nodes.b), 0);
}

/*  A test on the shared nodes: revived if need be before, its holdings released after. */
#define GROUP_TEST(f) cmocka_unit_test_setup_teardown(f, s_revive, s_cleanup)

int main(void)
{
    prop_seed();
    const struct CMUnitTest tests[] = {
        GROUP_TEST(test_put_get),
        GROUP_TEST(test_delete),
        GROUP_TEST(test_set),
        GROUP_TEST(test_counter),
        GROUP_TEST(test_log),
        GROUP_TEST(test_list_paging),
        GROUP_TEST(test_remember),
        GROUP_TEST(test_history),
        GROUP_TEST(test_share),
        GROUP_TEST(test_share_refusals),
        GROUP_TEST(test_private_isolation),
        GROUP_TEST(test_private_isolation_long_agent_names),
        GROUP_TEST(test_ttl),
        GROUP_TEST(test_ttl_overflow),
        GROUP_TEST(test_value_at_the_default_limit),
        GROUP_TEST(test_subscribe),
        GROUP_TEST(test_causal_token),
        cmocka_unit_test_setup_teardown(test_restart, s_own_setup, s_own_teardown),
        cmocka_unit_test_setup_teardown(test_subscriber_backlog, s_small_backlog_setup,
                                        s_own_teardown),
        cmocka_unit_test_setup_teardown(test_reply_to_a_lagging_subscriber, s_small_backlog_setup,
                                        s_own_teardown),
        GROUP_TEST(test_wrong_type),
        GROUP_TEST(test_oversized_value),
        GROUP_TEST(test_batch),
        GROUP_TEST(test_invalid_scopes),
        GROUP_TEST(test_non_utf8_names),
        GROUP_TEST(test_strings_checked_on_the_wire),
        GROUP_TEST(test_names_are_visible),
        GROUP_TEST(test_paged_reads),
        GROUP_TEST(test_key_limits),
        GROUP_TEST(test_raw_frames),
        GROUP_TEST(test_connection_without_agent_name),
        GROUP_TEST(test_tokens_on_the_wire),
        GROUP_TEST(test_clean_stop),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
