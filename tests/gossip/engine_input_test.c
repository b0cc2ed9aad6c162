/*  Tests of gossip_engine against what a peer may send and what the node's store may do: scope
 *  names the store's scope_ok refuses (here engramd's own rule, node_scope_name_ok) are
 *  refused in every message that names a scope and change nothing; a peer cannot make the
 *  node remember more scopes than the bound, and the per-peer table finds what it holds among
 *  many; chunk parts claiming a huge total allocate only what arrives (the staged-bytes stat),
 *  within the per-peer and overall caps; a node whose store takes no writes stays ALIVE,
 *  applies nothing, and sends only what is durable; the outbox stays bounded when nobody
 *  drains it; compressed messages that are no frame of the current format, do not record
 *  their size, record more than the budget or the ratio, or hold anything but one frame of
 *  one message are refused.
 */
#include "prop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "crdt/codec.h"
#include "crdt/hash.h"
#include "crdt/mvreg.h"
#include "engram/error.h"
#include "gossip/engine.h"
#include "node/common/names.h"
#include "proto/gossip.pb-c.h"

#define BUDGET 65536

/*  An in-memory store of any number of valid scopes (a tiny linear table: tests only). */
typedef struct {
    char *names[64];
    crdt_scope_t *scopes[64];
    int n;
    uint64_t id;
    int applies;
} store_t;

static int s_index(store_t *s, const char *scope, bool create)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], scope) == 0)
            return i;
    if (!create || s->n == 64)
        return -1;
    s->names[s->n] = strdup(scope);
    s->scopes[s->n] = crdt_scope_new(s->id);
    return s->n++;
}

static void s_each(void *store, void (*fn)(void *arg, const char *scope), void *arg)
{
    store_t *s = store;
    for (int i = 0; i < s->n; i++)
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
    int i = s_index(s, scope, true);
    if (i < 0)
        return ENGRAM_EINVAL;
    int rc = crdt_scope_join(s->scopes[i], delta);
    s->applies += rc == 0;
    return rc;
}

static bool s_scope_ok(void *store, const char *scope)
{
    (void)store;
    return node_scope_name_ok(scope, strlen(scope), NULL);
}

static const gossip_store_t s_store_ops = {s_each, s_ctx, s_delta_since, s_apply, s_scope_ok, NULL};

typedef struct {
    store_t store;
    gossip_engine_t *engine;
} node_t;

static void s_node_config(node_t *n, uint64_t id, const gossip_config_t *extra)
{
    memset(n, 0, sizeof *n);
    n->store.id = id;
    gossip_config_t config = extra ? *extra : (gossip_config_t){0};
    config.node_id = id;
    config.fanout = 2;
    config.max_message_bytes = BUDGET;
    config.seed = 7;
    n->engine = gossip_engine_new(&config, &s_store_ops, &n->store);
    assert_non_null(n->engine);
}

static void s_node_fini(node_t *n)
{
    gossip_engine_destroy(&n->engine);
    for (int i = 0; i < n->store.n; i++) {
        free(n->store.names[i]);
        crdt_scope_destroy(&n->store.scopes[i]);
    }
}

/*  Drops what n would send; returns how many messages that was. */
static int s_drain(node_t *n)
{
    uint64_t to;
    uint8_t *buf;
    size_t len;
    int count = 0;
    while (gossip_engine_next(n->engine, &to, &buf, &len, NULL)) {
        free(buf);
        count++;
    }
    return count;
}

/*  Delivers everything queued among the nodes at now_ms. */
static void s_run(node_t *nodes, int count, uint64_t now_ms)
{
    for (bool any = true; any;) {
        any = false;
        for (int from = 0; from < count; from++) {
            uint64_t to;
            uint8_t *buf;
            size_t len;
            while (gossip_engine_next(nodes[from].engine, &to, &buf, &len, NULL)) {
                any = true;
                for (int t = 0; t < count; t++)
                    if (nodes[t].store.id == to)
                        gossip_engine_receive(nodes[t].engine, nodes[from].store.id, buf, len,
                                              now_ms);
                free(buf);
            }
        }
    }
}

/*  A local write on n; await_ack: its caller waits for replicas. */
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

static void s_write(node_t *n, const char *scope, const char *key, const char *value)
{
    s_write_awaiting(n, scope, key, value, true);
}

/*  Hands to `to` everything `from` would send it (nothing goes back); how many messages. */
static int s_deliver(node_t *from, node_t *to, uint64_t now_ms)
{
    uint64_t peer;
    uint8_t *buf;
    size_t len;
    int count = 0;
    while (gossip_engine_next(from->engine, &peer, &buf, &len, NULL)) {
        if (peer == to->store.id) {
            gossip_engine_receive(to->engine, from->store.id, buf, len, now_ms);
            count++;
        }
        free(buf);
    }
    return count;
}

/*  Packs msg; caller frees *buf. */
static size_t s_pack(Engram__Gossip *msg, uint8_t **buf)
{
    msg->schema_major = 1;
    size_t len = engram__gossip__get_packed_size(msg);
    *buf = malloc(len);
    assert_non_null(*buf);
    engram__gossip__pack(msg, *buf);
    return len;
}

/*  A message of kind naming scope, otherwise well formed: a push of a fresh write of value
 *  (value_len bytes), an ack, a single-part chunk of that write, or a digest listing "run:ok"
 *  then scope. */
static size_t s_message_of(int kind, const char *scope, const char *value, size_t value_len,
                           uint8_t **buf)
{
    crdt_scope_t *source = crdt_scope_new(11);
    crdt_scope_t *delta = NULL;
    assert_int_equal(crdt_mvreg_write(source, "k", 1, value, value_len, &delta), 0);
    uint8_t *delta_buf = NULL, *ctx_buf = NULL, *empty_buf = NULL;
    size_t delta_len = 0, ctx_len = 0, empty_len = 0;
    assert_int_equal(crdt_scope_encode(delta, &delta_buf, &delta_len), 0);
    assert_int_equal(crdt_ctx_encode(crdt_scope_ctx(source), &ctx_buf, &ctx_len), 0);
    assert_int_equal(crdt_ctx_encode(NULL, &empty_buf, &empty_len), 0);
    Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
    Engram__GossipPush push = ENGRAM__GOSSIP_PUSH__INIT;
    Engram__GossipAck ack = ENGRAM__GOSSIP_ACK__INIT;
    Engram__GossipChunk chunk = ENGRAM__GOSSIP_CHUNK__INIT;
    Engram__GossipDigest digest = ENGRAM__GOSSIP_DIGEST__INIT;
    Engram__GossipVersion good = ENGRAM__GOSSIP_VERSION__INIT, bad = ENGRAM__GOSSIP_VERSION__INIT;
    Engram__GossipVersion *versions[2] = {&good, &bad};
    switch (kind) {
    case 0:
        push.scope = (char *)scope;
        push.delta = (ProtobufCBinaryData){delta_len, delta_buf};
        push.deps = (ProtobufCBinaryData){empty_len, empty_buf};
        msg.body_case = ENGRAM__GOSSIP__BODY_PUSH;
        msg.push = &push;
        break;
    case 1:
        ack.scope = (char *)scope;
        ack.ctx = (ProtobufCBinaryData){ctx_len, ctx_buf};
        msg.body_case = ENGRAM__GOSSIP__BODY_ACK;
        msg.ack = &ack;
        break;
    case 2:
        chunk.scope = (char *)scope;
        chunk.count = 1;
        chunk.total = delta_len;
        chunk.hash = crdt_hash(delta_buf, delta_len, UINT64_C(0x656e6772616d)); /* engine.c's */
        chunk.data = (ProtobufCBinaryData){delta_len, delta_buf};
        msg.body_case = ENGRAM__GOSSIP__BODY_CHUNK;
        msg.chunk = &chunk;
        break;
    default:
        good.scope = "run:ok";
        good.ctx = (ProtobufCBinaryData){ctx_len, ctx_buf};
        bad.scope = (char *)scope;
        bad.ctx = (ProtobufCBinaryData){ctx_len, ctx_buf};
        digest.versions = versions;
        digest.n_versions = 2;
        digest.complete = true;
        digest.reply = true;
        msg.body_case = ENGRAM__GOSSIP__BODY_DIGEST;
        msg.digest = &digest;
    }
    size_t len = s_pack(&msg, buf);
    free(delta_buf);
    free(ctx_buf);
    free(empty_buf);
    crdt_scope_destroy(&delta);
    crdt_scope_destroy(&source);
    return len;
}

/*  s_message_of with the value "v". */
static size_t s_message(int kind, const char *scope, uint8_t **buf)
{
    return s_message_of(kind, scope, "v", 1, buf);
}

/*  The canonical refusal: every message naming a scope the store's rule refuses is counted in
 *  bad_scope (and bad_messages), applies nothing, remembers nothing and answers nothing. */
static void test_bad_scope_names_are_refused(void **state)
{
    (void)state;
    node_t b;
    s_node_config(&b, 22, NULL);
    gossip_engine_add_peer(b.engine, 11);
    s_drain(&b);
    size_t huge_len = 1024 * 1024;
    char *huge = malloc(huge_len + 1);
    assert_non_null(huge);
    memcpy(huge, "team:", 5);
    memset(huge + 5, 'a', huge_len - 5);
    huge[huge_len] = '\0';
    const char *names[] = {
        "cult:x",             /* unknown kind */
        "team:",              /* empty id */
        huge,                 /* 1 MiB */
        "team:\xff\xfe",      /* invalid UTF-8 */
        "team:a\xe2\x80\xae", /* U+202E RIGHT-TO-LEFT OVERRIDE */
        "",                   /* nothing */
        "run",                /* no kind */
        "@victim",            /* a private scope */
    };
    const char *kinds[] = {"push", "ack", "chunk", "digest"};
    const gossip_stats_t *st = gossip_engine_stats(b.engine);
    for (size_t n = 0; n < sizeof names / sizeof *names; n++) {
        for (int kind = 0; kind < 4; kind++) {
            uint8_t *buf;
            size_t len = s_message(kind, names[n], &buf);
            uint64_t bad = st->bad_messages, bad_scope = st->bad_scope;
            int rc = gossip_engine_receive(b.engine, 11, buf, len, 1000);
            free(buf);
            if (rc == 0 || st->bad_messages != bad + 1)
                fail_msg("a %s naming scope #%zu was taken (rc %d)", kinds[kind], n, rc);
            /* protobuf-c refuses invalid UTF-8 in a string before the engine sees it */
            if (st->bad_scope != bad_scope + 1 && !(n == 3 && st->bad_decode))
                fail_msg("a %s naming scope #%zu was not counted in bad_scope", kinds[kind], n);
            assert_int_equal(b.store.applies, 0);
            assert_int_equal(b.store.n, 0);
            assert_null(gossip_engine_peer_ctx(b.engine, 11, "run:ok"));
            assert_null(gossip_engine_peer_ctx(b.engine, 11, names[n]));
            assert_int_equal(s_drain(&b), 0); /* no ack, answer or digest back */
        }
    }
    assert_int_equal(st->bad_messages, st->bad_scope + st->bad_decode);
    /* the same messages with a good name are taken */
    for (int kind = 0; kind < 4; kind++) {
        uint8_t *buf;
        size_t len = s_message(kind, "run:ok", &buf);
        assert_int_equal(gossip_engine_receive(b.engine, 11, buf, len, 1000), 0);
        free(buf);
    }
    assert_true(b.store.applies >= 1);
    assert_non_null(gossip_engine_peer_ctx(b.engine, 11, "run:ok"));
    free(huge);
    s_node_fini(&b);
}

/*  The default check, for stores without a rule of their own. */
static void test_default_scope_check(void **state)
{
    (void)state;
    assert_true(gossip_engine_scope_ok("team:x"));
    assert_false(gossip_engine_scope_ok(""));
    assert_false(gossip_engine_scope_ok("team:"));
    assert_false(gossip_engine_scope_ok(":x"));
    assert_false(gossip_engine_scope_ok("teamx"));
    assert_false(gossip_engine_scope_ok("team:a\nb"));
    char *long_name = malloc(ENGRAM_MAX_KEY_BYTES + 2);
    memset(long_name, 'a', ENGRAM_MAX_KEY_BYTES + 1);
    memcpy(long_name, "team:", 5);
    long_name[ENGRAM_MAX_KEY_BYTES + 1] = '\0';
    assert_false(gossip_engine_scope_ok(long_name));
    long_name[ENGRAM_MAX_KEY_BYTES] = '\0';
    assert_true(gossip_engine_scope_ok(long_name));
    free(long_name);
}

/*  A digest of `count` scopes team:sFIRST.. from peer 11 to b. */
static int s_digest_of(node_t *b, int first, int count)
{
    Engram__GossipVersion *versions = calloc((size_t)count, sizeof *versions);
    Engram__GossipVersion **ptrs = calloc((size_t)count, sizeof *ptrs);
    char(*names)[32] = calloc((size_t)count, sizeof *names);
    uint8_t *empty = NULL;
    size_t empty_len = 0;
    assert_int_equal(crdt_ctx_encode(NULL, &empty, &empty_len), 0);
    for (int i = 0; i < count; i++) {
        engram__gossip_version__init(&versions[i]);
        snprintf(names[i], sizeof names[i], "team:s%d", first + i);
        versions[i].scope = names[i];
        versions[i].ctx = (ProtobufCBinaryData){empty_len, empty};
        ptrs[i] = &versions[i];
    }
    Engram__GossipDigest digest = ENGRAM__GOSSIP_DIGEST__INIT;
    digest.versions = ptrs;
    digest.n_versions = (size_t)count;
    Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
    msg.body_case = ENGRAM__GOSSIP__BODY_DIGEST;
    msg.digest = &digest;
    uint8_t *buf;
    size_t len = s_pack(&msg, &buf);
    int rc = gossip_engine_receive(b->engine, 11, buf, len, 1000);
    free(buf);
    free(names);
    free(empty);
    free(ptrs);
    free(versions);
    s_drain(b);
    return rc;
}

/*  A peer makes this node remember at most max_peer_scopes scopes it does not hold: a digest
 *  past the bound is refused whole (nothing of it remembered); within it, every scope is found
 *  again; scopes the node holds never count. */
static void test_peer_scopes_are_bounded(void **state)
{
    (void)state;
    node_t b;
    gossip_config_t bounds = {.max_peer_scopes = 1000};
    s_node_config(&b, 22, &bounds);
    gossip_engine_add_peer(b.engine, 11);
    const gossip_stats_t *st = gossip_engine_stats(b.engine);
    assert_int_equal(s_digest_of(&b, 0, 1001), ENGRAM_ETOOBIG);
    assert_int_equal(st->bad_peer_scopes, 1);
    assert_int_equal(st->bad_messages, 1);
    assert_null(gossip_engine_peer_ctx(b.engine, 11, "team:s0"));
    assert_int_equal(s_digest_of(&b, 0, 600), 0);
    assert_int_equal(s_digest_of(&b, 300, 700), 0); /* 300 known again, 400 new: 1000 */
    for (int i = 0; i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "team:s%d", i);
        if (!gossip_engine_peer_ctx(b.engine, 11, name))
            fail_msg("%s is not remembered", name);
    }
    assert_int_equal(s_digest_of(&b, 999, 2), ENGRAM_ETOOBIG); /* one more is too many */
    assert_null(gossip_engine_peer_ctx(b.engine, 11, "team:s1000"));
    assert_int_equal(st->bad_peer_scopes, 2);
    assert_int_equal(s_digest_of(&b, 0, 1000), 0); /* what it holds may change as often */
    s_node_fini(&b);

    /* only the scopes this node does not hold count: with a bound of 10 and 40 held here, a
     * digest of 50 (10 foreign) is taken, one of 51 is not */
    node_t c;
    gossip_config_t small = {.max_peer_scopes = 10};
    s_node_config(&c, 33, &small);
    gossip_engine_add_peer(c.engine, 11);
    for (int i = 0; i < 40; i++) {
        char name[32];
        snprintf(name, sizeof name, "team:s%d", i);
        assert_true(s_index(&c.store, name, true) >= 0);
    }
    assert_int_equal(s_digest_of(&c, 0, 50), 0);
    assert_non_null(gossip_engine_peer_ctx(c.engine, 11, "team:s49"));
    assert_int_equal(s_digest_of(&c, 0, 51), ENGRAM_ETOOBIG);
    assert_int_equal(s_digest_of(&c, 0, 40), 0); /* its own scopes, whatever the count */
    s_node_fini(&c);
}

/*  Part `index` of a transfer claiming (count, total), with len bytes of data. */
static int s_chunk(node_t *b, uint64_t from, const char *scope, uint32_t index, uint32_t count,
                   uint64_t total, uint64_t hash, size_t len)
{
    uint8_t *data = calloc(len ? len : 1, 1);
    Engram__GossipChunk chunk = ENGRAM__GOSSIP_CHUNK__INIT;
    chunk.scope = (char *)scope;
    chunk.index = index;
    chunk.count = count;
    chunk.total = total;
    chunk.hash = hash;
    chunk.data = (ProtobufCBinaryData){len, data};
    Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
    msg.body_case = ENGRAM__GOSSIP__BODY_CHUNK;
    msg.chunk = &chunk;
    uint8_t *buf;
    size_t n = s_pack(&msg, &buf);
    int rc = gossip_engine_receive(b->engine, from, buf, n, 1000);
    free(buf);
    free(data);
    return rc;
}

/*  Chunk parts claiming a huge whole stage only what arrives: the staged-bytes stat follows
 *  the parts, never the claim, and stays within the per-peer and overall caps. */
static void test_chunk_claims_allocate_nothing(void **state)
{
    (void)state;
    node_t b;
    gossip_config_t bounds = {.max_staged_peer_bytes = 4 * BUDGET, .max_staged_bytes = 5 * BUDGET};
    s_node_config(&b, 22, &bounds);
    gossip_engine_add_peer(b.engine, 11);
    gossip_engine_add_peer(b.engine, 33);
    const gossip_stats_t *st = gossip_engine_stats(b.engine);
    /* a claim beyond what count parts of the budget can carry: bad */
    assert_int_equal(s_chunk(&b, 11, "run:a", 0, 65536, (uint64_t)65536 * BUDGET * 64, 1, 10),
                     ENGRAM_EDECODE);
    assert_int_equal(st->bad_chunk, 1);
    /* a claim beyond what is staged per peer: refused before anything is staged */
    assert_int_equal(s_chunk(&b, 11, "run:a", 0, 65536, (uint64_t)65536 * BUDGET, 1, 10), 0);
    assert_int_equal(st->staging_refused, 1);
    assert_int_equal(gossip_engine_staged(b.engine), 0);
    /* a claim within the caps: only the parts' bytes are held */
    assert_int_equal(s_chunk(&b, 11, "run:a", 0, 4, 4 * (uint64_t)BUDGET, 2, 100), 0);
    assert_int_equal(gossip_engine_staged_bytes(b.engine), 100);
    /* every part in, but short of the claimed total: bad, and nothing stays */
    for (uint32_t i = 1; i < 4; i++)
        s_chunk(&b, 11, "run:a", i, 4, 4 * (uint64_t)BUDGET, 2, 100);
    assert_int_equal(st->bad_chunk, 2);
    assert_int_equal(gossip_engine_staged(b.engine), 0);
    assert_int_equal(gossip_engine_staged_bytes(b.engine), 0);
    /* real parts: a second transfer of the same peer past its cap is dropped */
    size_t part = BUDGET - GOSSIP_CHUNK_OVERHEAD;
    uint64_t total = 4 * (uint64_t)part;
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(s_chunk(&b, 11, "run:a", i, 4, total, 3, part), 0);
    assert_int_equal(gossip_engine_staged_bytes(b.engine), 3 * part);
    assert_int_equal(s_chunk(&b, 11, "run:a", 0, 4, total, 4, part), 0);
    assert_int_equal(gossip_engine_staged_bytes(b.engine), 4 * part);
    assert_int_equal(s_chunk(&b, 11, "run:a", 1, 4, total, 4, part), 0);
    assert_int_equal(st->staging_refused, 2);
    assert_int_equal(gossip_engine_staged_bytes(b.engine), 3 * part);
    /* another peer within its own cap, past the overall one */
    assert_int_equal(s_chunk(&b, 33, "run:a", 0, 4, total, 5, part), 0);
    assert_int_equal(s_chunk(&b, 33, "run:a", 1, 4, total, 5, part), 0);
    assert_int_equal(gossip_engine_staged_bytes(b.engine), 5 * part);
    assert_int_equal(s_chunk(&b, 33, "run:a", 2, 4, total, 5, part), 0);
    assert_int_equal(st->staging_refused, 3);
    assert_int_equal(gossip_engine_staged_bytes(b.engine), 3 * part);
    assert_int_equal(gossip_engine_staged(b.engine), 1);
    /* an empty part (its data NULL once unpacked) stages nothing and is no fault */
    assert_int_equal(s_chunk(&b, 33, "run:b", 0, 2, 10, 6, 0), 0);
    assert_int_equal(gossip_engine_staged(b.engine), 2);
    assert_int_equal(gossip_engine_staged_bytes(b.engine), 3 * part);
    assert_int_equal(st->bad_messages, 2);
    s_node_fini(&b);
}

/*  An envelope (Gossip.compressed) around frame (len bytes); caller frees *buf. */
static size_t s_envelope(const uint8_t *frame, size_t len, uint8_t **buf)
{
    Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
    msg.schema_minor = GOSSIP_COMPRESSED_MINOR;
    msg.body_case = ENGRAM__GOSSIP__BODY_COMPRESSED;
    msg.compressed = (ProtobufCBinaryData){len, (uint8_t *)frame};
    return s_pack(&msg, buf);
}

/*  What follows the frame in s_zipped's envelope. */
typedef enum { TAIL_NONE, TAIL_SAME, TAIL_SKIPPABLE, TAIL_EMPTY, TAIL_LEGACY } s_tail_t;

/*  The envelope of src compressed as one Zstandard frame; with_size false: a frame that does
 *  not record its content size; tail: the frame again, a skippable frame or a frame of nothing
 *  after it, or (TAIL_LEGACY) its magic number made the v0.7 format's. */
static size_t s_zipped(const uint8_t *src, size_t len, bool with_size, s_tail_t tail, uint8_t **buf)
{
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    assert_non_null(cctx);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, with_size)));
    size_t cap = ZSTD_compressBound(len);
    uint8_t *frame = malloc(2 * cap + 64);
    assert_non_null(frame);
    size_t n = ZSTD_compress2(cctx, frame, cap, src, len);
    assert_false(ZSTD_isError(n));
    if (tail == TAIL_SAME) {
        memcpy(frame + n, frame, n);
        n *= 2;
    } else if (tail == TAIL_SKIPPABLE) {
        static const uint8_t skippable[] = {0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 'n', 'o', 't', 'e'};
        memcpy(frame + n, skippable, sizeof skippable);
        n += sizeof skippable;
    } else if (tail == TAIL_EMPTY) {
        size_t empty = ZSTD_compress2(cctx, frame + n, cap + 64, "", 0);
        assert_false(ZSTD_isError(empty));
        n += empty;
    } else if (tail == TAIL_LEGACY) {
        static const uint8_t v07[] = {0x27, 0xb5, 0x2f, 0xfd};
        memcpy(frame, v07, sizeof v07);
    }
    ZSTD_freeCCtx(cctx);
    size_t out = s_envelope(frame, n, buf);
    free(frame);
    return out;
}

/*  A compressed message is read like the one it carries; a bad one is refused as undecodable
 *  (bad_decode) and applies nothing: bytes that are no Zstandard frame, a frame that does not
 *  record its size or records more than the message budget or GOSSIP_COMPRESS_MAX_RATIO
 *  times its length (refused before anything is allocated for it), anything after the frame
 *  (the frame again, a skippable frame, an empty frame), a frame of the legacy format, a
 *  message inside that does not decode, or one compressed twice. */
static void test_compressed_input(void **state)
{
    (void)state;
    node_t b;
    s_node_config(&b, 22, NULL);
    gossip_engine_add_peer(b.engine, 11);
    const gossip_stats_t *st = gossip_engine_stats(b.engine);
    uint8_t *push = NULL, *big = NULL, *flat = NULL;
    size_t push_len = s_message(0, "run:ok", &push);
    char *value = malloc(BUDGET);
    assert_non_null(value);
    uint64_t seed = 1;
    for (size_t i = 0; i < BUDGET; i++) /* letters that compress about 1.6 times */
        value[i] = (char)('a' + (seed = seed * 6364136223846793005u + 1442695040888963407u) % 26);
    size_t big_len = s_message_of(0, "run:big", value, BUDGET, &big); /* valid, past the budget */
    assert_true(big_len > BUDGET);
    memset(value, 'x', 20000);
    size_t flat_len = s_message_of(0, "run:flat", value, 20000, &flat); /* shrinks past the ratio */
    free(value);
    uint8_t garbage[64];
    memset(garbage, 0xa5, sizeof garbage);
    uint8_t *inner = NULL;
    size_t inner_len = s_zipped(push, push_len, true, TAIL_NONE, &inner);
    static const char *what[] = {"no frame",
                                 "no size",
                                 "past the budget",
                                 "past the ratio",
                                 "two frames",
                                 "a skippable frame after",
                                 "an empty frame after",
                                 "a legacy frame",
                                 "no message",
                                 "compressed twice"};
    enum { NBAD = sizeof what / sizeof *what };
    uint8_t *bad[NBAD];
    size_t bad_len[NBAD], n = 0;
    bad_len[n] = s_envelope(garbage, sizeof garbage, &bad[n]), n++;
    bad_len[n] = s_zipped(push, push_len, false, TAIL_NONE, &bad[n]), n++;
    bad_len[n] = s_zipped(big, big_len, true, TAIL_NONE, &bad[n]), n++;
    bad_len[n] = s_zipped(flat, flat_len, true, TAIL_NONE, &bad[n]), n++;
    bad_len[n] = s_zipped(push, push_len, true, TAIL_SAME, &bad[n]), n++;
    bad_len[n] = s_zipped(push, push_len, true, TAIL_SKIPPABLE, &bad[n]), n++;
    bad_len[n] = s_zipped(push, push_len, true, TAIL_EMPTY, &bad[n]), n++;
    bad_len[n] = s_zipped(push, push_len, true, TAIL_LEGACY, &bad[n]), n++;
    bad_len[n] = s_zipped(garbage, sizeof garbage, true, TAIL_NONE, &bad[n]), n++;
    bad_len[n] = s_zipped(inner, inner_len, true, TAIL_NONE, &bad[n]), n++;
    assert_int_equal(n, NBAD);
    for (size_t i = 0; i < NBAD; i++) {
        print_message("%s\n", what[i]);
        assert_int_equal(gossip_engine_receive(b.engine, 11, bad[i], bad_len[i], 1000),
                         ENGRAM_EDECODE);
        assert_int_equal(st->bad_decode, (uint64_t)i + 1);
        assert_int_equal(b.store.applies, 0);
        free(bad[i]);
    }
    assert_int_equal(st->bad_messages, NBAD);
    assert_int_equal(s_drain(&b), 0); /* answered nothing */

    /* the same push compressed once: applied and acknowledged */
    assert_int_equal(gossip_engine_receive(b.engine, 11, inner, inner_len, 1000), 0);
    assert_int_equal(b.store.applies, 1);
    assert_int_equal(st->bad_messages, NBAD);
    assert_int_equal(s_drain(&b), 1);
    free(inner);
    free(big);
    free(flat);
    free(push);
    s_node_fini(&b);
}

/*  A node whose store takes no writes stays ALIVE through membership, applies nothing, asks
 *  for nothing; read-only, it reports what it holds (acks, no digest) and answers digests;
 *  failed, it sends no data at all. */
static void test_storage_states(void **state)
{
    (void)state;
    node_t nodes[2];
    s_node_config(&nodes[0], 11, NULL);
    s_node_config(&nodes[1], 22, NULL);
    gossip_engine_add_peer(nodes[0].engine, 22);
    gossip_engine_add_peer(nodes[1].engine, 11);
    s_write(&nodes[0], "run:a", "k", "before");
    s_run(nodes, 2, 1000);
    assert_int_equal(nodes[1].store.applies, 1);
    gossip_engine_set_storage(nodes[1].engine, GOSSIP_STORAGE_READ_ONLY);
    const gossip_stats_t *b = gossip_engine_stats(nodes[1].engine);
    s_write(&nodes[0], "run:a", "k", "after");
    uint64_t digests = b->digests_sent, acks = b->acks_sent;
    s_run(nodes, 2, 1100);
    assert_int_equal(nodes[1].store.applies, 1); /* not applied */
    assert_int_equal(b->unstored, 1);
    assert_int_equal(b->bad_messages, 0);
    assert_int_equal(b->acks_sent, acks); /* nothing new to acknowledge */
    /* ticks for a minute: still ALIVE on both sides; reports, never digests */
    for (uint64_t now = 1200; now < 61200; now += 100) {
        gossip_engine_tick(nodes[0].engine, now);
        gossip_engine_tick(nodes[1].engine, now);
        s_run(nodes, 2, now);
    }
    gossip_member_t m;
    assert_true(gossip_engine_member(nodes[0].engine, 22, &m));
    assert_int_equal(m.state, GOSSIP_ALIVE);
    assert_int_equal(b->digests_sent, digests);
    assert_true(b->acks_sent > acks);
    assert_int_equal(nodes[1].store.applies, 1);
    assert_int_equal(b->bad_messages, 0);
    /* what it reports is what it holds, so the cut moves up to it */
    const crdt_ctx_t *known = gossip_engine_peer_ctx(nodes[0].engine, 22, "run:a");
    assert_non_null(known);
    assert_true(crdt_ctx_equal(known, crdt_scope_ctx(nodes[1].store.scopes[0])));
    crdt_ctx_t *cut = gossip_engine_stable_cut(nodes[0].engine, "run:a");
    assert_true(crdt_ctx_equal(cut, known));
    crdt_ctx_destroy(&cut);
    /* failed: no data message leaves; membership still does */
    gossip_engine_set_storage(nodes[1].engine, GOSSIP_STORAGE_FAILED);
    uint64_t sent = b->bytes_sent;
    acks = b->acks_sent;
    s_write(&nodes[1], "run:b", "k", "unsynced");
    gossip_engine_drop_data(nodes[1].engine);
    assert_true(b->data_dropped >= 1);
    for (uint64_t now = 61200; now < 121200; now += 100) {
        gossip_engine_tick(nodes[0].engine, now);
        gossip_engine_tick(nodes[1].engine, now);
        s_run(nodes, 2, now);
    }
    assert_true(gossip_engine_member(nodes[0].engine, 22, &m));
    assert_int_equal(m.state, GOSSIP_ALIVE);
    assert_int_equal(b->acks_sent, acks);
    assert_int_equal(b->digests_sent, digests);
    assert_int_equal(b->pulls_answered, 0);
    assert_true(b->bytes_sent > sent); /* pings and their answers */
    assert_null(gossip_engine_peer_ctx(nodes[0].engine, 22, "run:b"));
    assert_int_equal(s_index(&nodes[0].store, "run:b", false), -1);
    /* back to ok: it catches up */
    gossip_engine_set_storage(nodes[1].engine, GOSSIP_STORAGE_OK);
    for (uint64_t now = 121200; now < 124200; now += 100) {
        gossip_engine_tick(nodes[0].engine, now);
        gossip_engine_tick(nodes[1].engine, now);
        s_run(nodes, 2, now);
    }
    assert_true(crdt_scope_equal(nodes[0].store.scopes[0], nodes[1].store.scopes[0]));
    s_node_fini(&nodes[0]);
    s_node_fini(&nodes[1]);
}

/*  gossip_engine_has_data, which the server asks before it skips a turn's fsync: a local write
 *  waiting to be pushed is data; a replica that applied a push nobody waits on has nothing to
 *  send until its tick acks it (so it need not sync the push at once), and acks one that a
 *  caller waits on at once. */
static void test_has_data(void **state)
{
    (void)state;
    node_t a, b;
    gossip_config_t digests_apart = {.gossip_interval_ms = 1000000};
    s_node_config(&a, 11, NULL);
    s_node_config(&b, 22, &digests_apart);
    gossip_engine_add_peer(a.engine, 22);
    gossip_engine_add_peer(b.engine, 11);
    gossip_engine_tick(b.engine, 5); /* its first digest; the next is far off */
    s_drain(&a);
    s_drain(&b);
    assert_false(gossip_engine_has_data(a.engine));
    assert_false(gossip_engine_has_data(b.engine));
    /* membership alone (SWIM's probes; digests far apart) is no data */
    node_t m;
    gossip_config_t probes_only = {.probe_interval_ms = 10, .gossip_interval_ms = 1000000};
    s_node_config(&m, 33, &probes_only);
    gossip_engine_add_peer(m.engine, 11);
    gossip_engine_tick(m.engine, 10); /* the first digest */
    s_drain(&m);
    uint64_t digests = gossip_engine_stats(m.engine)->digests_sent;
    for (uint64_t now = 20; now < 1000 && gossip_engine_outbox_bytes(m.engine) == 0; now += 10)
        gossip_engine_tick(m.engine, now);
    assert_true(gossip_engine_outbox_bytes(m.engine) > 0);
    assert_int_equal(gossip_engine_stats(m.engine)->digests_sent, digests);
    assert_false(gossip_engine_has_data(m.engine));
    s_node_fini(&m);
    s_write_awaiting(&a, "run:a", "k", "v1", false);
    assert_true(gossip_engine_has_data(a.engine)); /* pending, encoded when sent */
    assert_int_equal(s_deliver(&a, &b, 1000), 1);
    assert_false(gossip_engine_has_data(a.engine));
    assert_int_equal(b.store.applies, 1);
    const gossip_stats_t *st = gossip_engine_stats(b.engine);
    assert_int_equal(st->acks_sent, 0);
    assert_false(gossip_engine_has_data(b.engine)); /* its ack waits for the tick */
    uint64_t b_digests = st->digests_sent;
    gossip_engine_tick(b.engine, 1001);
    assert_int_equal(st->acks_sent, 1);
    assert_int_equal(st->digests_sent, b_digests); /* the ack alone is the data */
    assert_true(gossip_engine_has_data(b.engine));
    s_drain(&b);
    assert_false(gossip_engine_has_data(b.engine));
    s_write_awaiting(&a, "run:a", "k", "v2", true);
    assert_int_equal(s_deliver(&a, &b, 1002), 1);
    assert_int_equal(b.store.applies, 2);
    assert_int_equal(st->acks_sent, 2); /* at once */
    assert_true(gossip_engine_has_data(b.engine));
    /* a failed store's data is dropped: nothing left to send */
    gossip_engine_drop_data(b.engine);
    assert_false(gossip_engine_has_data(b.engine));
    s_node_fini(&a);
    s_node_fini(&b);
}

/*  Nobody drains the outbox (a caller that stopped sending): data stops at max_outbox_bytes,
 *  membership still finds room up to twice that, and what is dropped is counted. */
static void test_outbox_is_bounded(void **state)
{
    (void)state;
    node_t a;
    gossip_config_t bounds = {.max_outbox_bytes = 4 * BUDGET};
    s_node_config(&a, 11, &bounds);
    gossip_engine_add_peer(a.engine, 22);
    gossip_engine_add_peer(a.engine, 33);
    char value[1024];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    for (int i = 0; i < 2000; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        s_write(&a, "run:a", key, value);
        assert_true(gossip_engine_outbox_bytes(a.engine) <= 4 * (size_t)BUDGET);
    }
    const gossip_stats_t *st = gossip_engine_stats(a.engine);
    assert_true(st->outbox_dropped > 0);
    size_t full = gossip_engine_outbox_bytes(a.engine);
    assert_true(full > 3 * (size_t)BUDGET);
    uint64_t pings = st->swim.pings;
    for (uint64_t now = 1000; now < 3000; now += 100)
        gossip_engine_tick(a.engine, now);
    assert_true(st->swim.pings > pings); /* membership still goes */
    assert_true(gossip_engine_outbox_bytes(a.engine) > full);
    assert_true(gossip_engine_outbox_bytes(a.engine) <= 8 * (size_t)BUDGET);
    assert_true(s_drain(&a) > 0);
    assert_int_equal(gossip_engine_outbox_bytes(a.engine), 0);
    s_node_fini(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_scope_names_are_refused),
        cmocka_unit_test(test_default_scope_check),
        cmocka_unit_test(test_peer_scopes_are_bounded),
        cmocka_unit_test(test_chunk_claims_allocate_nothing),
        cmocka_unit_test(test_storage_states),
        cmocka_unit_test(test_outbox_is_bounded),
        cmocka_unit_test(test_has_data),
        cmocka_unit_test(test_compressed_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
