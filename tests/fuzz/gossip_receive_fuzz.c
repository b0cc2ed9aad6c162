/*  libFuzzer target for gossip_engine_receive (gossip/engine.h): any frame a peer may send,
 *  as it is and as the message inside a compressed envelope (Gossip.compressed), so that the
 *  inflate path sees valid Zstandard frames around arbitrary messages as well as arbitrary
 *  frames.
 *
 *  Each input goes to a fresh engine (node 22, peer 11 admitted, an in-memory store of at most
 *  8 scopes). Checked after every receive: the result is 0 or one of engram/error.h's codes,
 *  and every refusal but ENGRAM_ENOMEM is counted once in bad_messages; staged
 *  chunk bytes stay within the engine's bound; what the engine queues to send drains. ASan,
 *  UBSan and LeakSanitizer catch the rest.
 *
 *  Run: fuzz_gossip_receive -max_len=4096 <work dir> <seed corpus dir> (see CMakeLists.txt).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "crdt/codec.h"
#include "crdt/scope.h"
#include "engram/error.h"
#include "fuzz_check.h"
#include "gossip/engine.h"
#include "proto/gossip.pb-c.h"

#define BUDGET     4096
#define MAX_SCOPES 8
#define STAGED     (8 * BUDGET)

typedef struct {
    char *names[MAX_SCOPES];
    crdt_scope_t *scopes[MAX_SCOPES];
    int n;
} s_store_t;

static int s_index(s_store_t *s, const char *scope, bool create)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], scope) == 0)
            return i;
    if (!create || s->n == MAX_SCOPES)
        return -1;
    char *name = strdup(scope);
    crdt_scope_t *fresh = crdt_scope_new(22);
    if (!name || !fresh) {
        free(name);
        crdt_scope_destroy(&fresh);
        return -1;
    }
    s->names[s->n] = name;
    s->scopes[s->n] = fresh;
    return s->n++;
}

static void s_each(void *store, void (*fn)(void *arg, const char *scope), void *arg)
{
    s_store_t *s = store;
    for (int i = 0; i < s->n; i++)
        fn(arg, s->names[i]);
}

static const crdt_ctx_t *s_ctx(void *store, const char *scope)
{
    int i = s_index(store, scope, false);
    return i < 0 ? NULL : crdt_scope_ctx(((s_store_t *)store)->scopes[i]);
}

static crdt_scope_t *s_delta_since(void *store, const char *scope, const crdt_ctx_t *since)
{
    int i = s_index(store, scope, false);
    return i < 0 ? NULL : crdt_scope_delta_since(((s_store_t *)store)->scopes[i], since);
}

static int s_apply(void *store, const char *scope, const crdt_scope_t *delta)
{
    int i = s_index(store, scope, true);
    return i < 0 ? ENGRAM_ENOMEM : crdt_scope_join(((s_store_t *)store)->scopes[i], delta);
}

static const gossip_store_t s_store_ops = {s_each, s_ctx, s_delta_since, s_apply, NULL, NULL};

/*  Feeds one frame; checks the outcome and the bounds; drains what the engine would send. */
static void s_receive(gossip_engine_t *engine, const uint8_t *frame, size_t len)
{
    const gossip_stats_t *st = gossip_engine_stats(engine);
    uint64_t bad = st->bad_messages;
    int rc = gossip_engine_receive(engine, 11, frame, len, 1000);
    CHECK(rc <= 0 && rc >= ENGRAM_ECONFLICT); /* 0 or one of engram/error.h's codes */
    CHECK(st->bad_messages == bad + (rc != 0 && rc != ENGRAM_ENOMEM));
    CHECK(gossip_engine_staged_bytes(engine) <= STAGED);
    uint64_t to;
    uint8_t *buf;
    size_t out_len;
    while (gossip_engine_next(engine, &to, &buf, &out_len, NULL))
        free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_store_t store = {0};
    gossip_config_t config = {.node_id = 22,
                              .fanout = 2,
                              .max_message_bytes = BUDGET,
                              .seed = 7,
                              .max_staged_peer_bytes = STAGED,
                              .max_staged_bytes = STAGED};
    gossip_engine_t *engine = gossip_engine_new(&config, &s_store_ops, &store);
    CHECK(engine);
    gossip_engine_add_peer(engine, 11);
    s_receive(engine, data, size);

    size_t cap = ZSTD_compressBound(size);
    uint8_t *frame = malloc(cap ? cap : 1);
    CHECK(frame);
    size_t frame_len = ZSTD_compress(frame, cap, data, size, 1);
    CHECK(!ZSTD_isError(frame_len));
    Engram__Gossip envelope = ENGRAM__GOSSIP__INIT;
    envelope.schema_major = 1;
    envelope.schema_minor = GOSSIP_COMPRESSED_MINOR;
    envelope.body_case = ENGRAM__GOSSIP__BODY_COMPRESSED;
    envelope.compressed = (ProtobufCBinaryData){frame_len, frame};
    size_t len = engram__gossip__get_packed_size(&envelope);
    uint8_t *packed = malloc(len);
    CHECK(packed);
    engram__gossip__pack(&envelope, packed);
    s_receive(engine, packed, len);
    free(packed);
    free(frame);

    gossip_engine_destroy(&engine);
    for (int i = 0; i < store.n; i++) {
        free(store.names[i]);
        crdt_scope_destroy(&store.scopes[i]);
    }
    return 0;
}
