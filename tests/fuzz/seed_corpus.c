/*  Writes the seed corpora of the decoder fuzzers: a few valid encodings each, so libFuzzer
 *  starts from well-formed messages instead of discovering protobuf from nothing.
 *
 *  Usage: fuzz_seed_corpus <dir>. Creates <dir>/scope_decode, <dir>/ctx_decode,
 *  <dir>/value_decode, <dir>/filter_parse, <dir>/embedding_decode, <dir>/mcp_request and
 *  <dir>/gossip_receive (the directories must not need more than one level of creation) and
 *  fills them with: scopes
 *  holding every object type, removal records, a dot cloud and a prune cut, plus an empty scope
 *  and one delta; contexts with and without clouds; values with and without provenance; filters
 *  using every operator, combinator and time form; embeddings of one, a few and 384 dimensions;
 *  MCP messages (requests, a notification, a response, a batch); gossip frames (a push, an ack,
 *  a digest, a single-part chunk, and a push compressed). Deterministic, so the corpus
 *  is the same on every build.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include "crdt/awset.h"
#include "crdt/codec.h"
#include "crdt/counter.h"
#include "crdt/hash.h"
#include "crdt/log.h"
#include "crdt/mvreg.h"
#include "crdt/value.h"
#include "proto/gossip.pb-c.h"

static const char *s_root;

static void s_die(const char *what)
{
    fprintf(stderr, "fuzz_seed_corpus: %s\n", what);
    exit(1);
}

static void s_ok(int rc, const char *what)
{
    if (rc != 0)
        s_die(what);
}

static void s_write(const char *dir, const char *name, uint8_t *buf, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", s_root, dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
        s_die(path);
    free(buf);
}

static void s_write_scope(const char *name, const crdt_scope_t *scope)
{
    uint8_t *buf;
    size_t len;
    s_ok(crdt_scope_encode(scope, &buf, &len), "encode scope");
    s_write("scope_decode", name, buf, len);
}

static void s_write_ctx(const char *name, const crdt_ctx_t *ctx)
{
    uint8_t *buf;
    size_t len;
    s_ok(crdt_ctx_encode(ctx, &buf, &len), "encode ctx");
    s_write("ctx_decode", name, buf, len);
}

static void s_scopes(void)
{
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(0x123456789abcdefULL);
    crdt_scope_t *delta = NULL, *lost = NULL;
    s_write_scope("empty", a);
    s_ok(crdt_awset_add(a, "tags", "urgent", NULL, 0, NULL), "add"); /* an old add: no data */
    s_ok(crdt_awset_add(a, "tags", "draft", "provenance", 10, &delta), "add");
    s_write_scope("delta-add", delta);
    crdt_scope_destroy(&delta);
    s_ok(crdt_awset_remove(a, "tags", "draft", NULL), "remove");
    s_ok(crdt_mvreg_write(a, "title", 100, "Q3 plan", 7, NULL), "write");
    s_ok(crdt_counter_add(a, "visits", "", 5, NULL), "counter");
    s_ok(crdt_counter_add(a, "visits", "agent\x1fuser", -2, NULL), "counter");
    s_ok(crdt_log_append(a, "journal", 101, "started", 7, NULL), "append");
    s_ok(crdt_scope_join(b, a), "join");
    s_ok(crdt_mvreg_write(b, "title", 102, "Q3 plan v2", 10, NULL), "write");
    s_ok(crdt_mvreg_write(a, "title", 103, "Q3 draft", 8, NULL), "write"); /* siblings */
    s_ok(crdt_log_append(b, "journal", 104, "lost", 4, &lost), "append");
    s_ok(crdt_counter_add(b, "visits", "agent\x1fuser", 9, &delta), "counter");
    s_ok(crdt_scope_join(a, delta), "join"); /* `lost` never arrives: a cloud */
    s_write_scope("delta-counter", delta);
    s_write_scope("state-cloud", a);
    s_ok(crdt_scope_join(a, lost), "join");
    crdt_ctx_t *cut = crdt_ctx_meet(crdt_scope_ctx(a), crdt_scope_ctx(b));
    if (!cut)
        s_die("meet");
    s_write_ctx("vv", cut);
    s_ok(crdt_scope_prune(b, cut), "prune");
    s_write_scope("state-pruned", b);
    s_ok(crdt_scope_forget(b, "tags", NULL), "forget");
    s_write_scope("state-forgot", b);
    s_write_ctx("cloud", crdt_scope_ctx(b));
    crdt_ctx_t *empty = crdt_ctx_new();
    s_write_ctx("empty", empty);
    s_ok(crdt_ctx_insert_range(empty, 7, 3, 5), "insert");
    s_ok(crdt_ctx_insert_range(empty, 7, 9, 9), "insert");
    s_ok(crdt_ctx_insert_range(empty, 9, 1, 4), "insert");
    s_write_ctx("clouds", empty);
    crdt_ctx_destroy(&empty);
    crdt_ctx_destroy(&cut);
    crdt_scope_destroy(&lost);
    crdt_scope_destroy(&delta);
    crdt_scope_destroy(&b);
    crdt_scope_destroy(&a);
}

static void s_values(void)
{
    crdt_value_t *v = crdt_value_new();
    uint8_t *buf;
    size_t len;
    s_ok(crdt_value_encode(v, &buf, &len), "encode value");
    s_write("value_decode", "empty", buf, len);
    s_ok(crdt_value_set_user(v, "alice"), "user");
    s_ok(crdt_value_set_data(v, "prefers tea", 11), "data");
    s_ok(crdt_value_set_meta(v, "{\"topic\":\"drinks\"}"), "meta");
    s_ok(crdt_value_add_agent(v, "researcher-1"), "agent");
    s_ok(crdt_value_add_agent(v, "planner"), "agent");
    s_ok(crdt_value_add_resource(v, "user:alice"), "resource");
    v->created_hlc = UINT64_C(1767225600000) << 16;
    v->updated_hlc = v->created_hlc + 3;
    v->expires_at_ms = UINT64_C(1767225600000) + 86400000;
    s_ok(crdt_value_encode(v, &buf, &len), "encode value");
    s_write("value_decode", "full", buf, len);
    crdt_value_destroy(&v);
}

/*  Writes each text of texts (n of them) as a seed of target, named prefix-I. */
static void s_texts(const char *target, const char *prefix, const char *const *texts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s-%zu", prefix, i);
        size_t len = strlen(texts[i]);
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy)
            s_die("out of memory");
        memcpy(copy, texts[i], len);
        s_write(target, name, copy, len);
    }
}

static void s_mcp_requests(void)
{
    static const char *const requests[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
        "\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":"
        "\"c\",\"version\":\"1\"}}}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"tools/call\",\"params\":{\"name\":"
        "\"create_entities\",\"arguments\":{\"entities\":[{\"name\":\"Alice\",\"entityType\":"
        "\"person\",\"observations\":[\"likes tea\"]}]}}}",
        "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":"
        "\"add_observations\",\"arguments\":{\"observations\":[{\"entityName\":\"Alice\","
        "\"contents\":[\"x\"]}]}}}",
        "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":"
        "\"memory_search\",\"arguments\":{\"query\":\"client\",\"scopes\":[\"user:alice\"],"
        "\"top_k\":5,\"filters\":{\"author\":\"writer\"}}}}",
        ("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"resources/read\",\"params\":{"
         "\"uri\":\"memory://knowledge-graph\"}}"), /* two literals: clang asks for parentheses */
        "{\"jsonrpc\":\"2.0\",\"id\":6,\"result\":{}}",
        "[{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}]",
    };
    s_texts("mcp_request", "request", requests, sizeof requests / sizeof *requests);
    /* a tool name of 400 three-byte characters: every message quoting it must be cut whole */
    char call[2048];
    int at = snprintf(call, sizeof call,
                      "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":"
                      "\"tools/call\",\"params\":{\"name\":\"");
    for (int i = 0; i < 400; i++)
        at += snprintf(call + at, sizeof call - (size_t)at, "\xe2\x82\xac");
    snprintf(call + at, sizeof call - (size_t)at, "\",\"arguments\":{}}}");
    const char *const long_name[] = {call};
    s_texts("mcp_request", "long-name", long_name, 1);
}

static void s_filters(void)
{
    static const char *const filters[] = {
        "{}",
        "{\"author\": \"researcher\", \"user\": {\"ne\": \"bob\"}}",
        "{\"AND\": [{\"key\": {\"in\": [\"a\", \"b\"]}}, {\"OR\": [{\"topic\": \"*\"}, "
        "{\"NOT\": [{\"priority\": {\"gte\": 2, \"lt\": 5.5}}]}]}]}",
        "{\"created_at\": {\"gte\": \"2026-01-01\", \"lt\": \"2026-07-01T12:00:00.250Z\"}, "
        "\"updated_at\": {\"nin\": [1767225600000, \"2026-01-01T00:00:00+00:00\"]}}",
        "{\"metadata\": {\"tags\": {\"contains\": \"Tea\"}, \"city\": {\"icontains\": "
        "\"STRASSE\"}, \"done\": false, \"note\": null}}",
        "{\"NOT\": {\"author\": {\"icontains\": \"WRIT\"}}, \"score\": {\"lte\": -1e300}}",
    };
    s_texts("filter_parse", "filter", filters, sizeof filters / sizeof *filters);
}

/*  An embedding of dims little-endian float32 values, each value_at(i). */
static void s_embedding(const char *name, size_t dims, float (*value_at)(size_t))
{
    uint8_t *bytes = malloc(4 * dims);
    if (!bytes)
        s_die("out of memory");
    for (size_t i = 0; i < dims; i++) {
        float value = value_at(i);
        uint32_t bits;
        memcpy(&bits, &value, sizeof bits);
        for (int b = 0; b < 4; b++)
            bytes[4 * i + b] = (uint8_t)(bits >> (8 * b));
    }
    s_write("embedding_decode", name, bytes, 4 * dims);
}

static float s_one(size_t i)
{
    (void)i;
    return 1.0f;
}

static float s_wave(size_t i)
{
    return (float)((int)(i % 13) - 6) / 7.0f;
}

static void s_embeddings(void)
{
    s_embedding("one", 1, s_one);
    s_embedding("few", 8, s_wave);
    s_embedding("d384", 384, s_wave);
}

/*  Writes msg, packed, as gossip_receive/name. */
static void s_write_gossip(const char *name, Engram__Gossip *msg)
{
    msg->schema_major = 1;
    size_t len = engram__gossip__get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        s_die("out of memory");
    engram__gossip__pack(msg, buf);
    s_write("gossip_receive", name, buf, len);
}

static void s_gossip(void)
{
    crdt_scope_t *source = crdt_scope_new(11);
    crdt_scope_t *delta = NULL;
    s_ok(crdt_mvreg_write(source, "title", 100, "a plan for the quarter", 22, &delta), "write");
    uint8_t *delta_buf, *ctx_buf, *empty_buf;
    size_t delta_len, ctx_len, empty_len;
    s_ok(crdt_scope_encode(delta, &delta_buf, &delta_len), "encode delta");
    s_ok(crdt_ctx_encode(crdt_scope_ctx(source), &ctx_buf, &ctx_len), "encode ctx");
    s_ok(crdt_ctx_encode(NULL, &empty_buf, &empty_len), "encode ctx");
    Engram__GossipPush push = ENGRAM__GOSSIP_PUSH__INIT;
    push.scope = "run:seed";
    push.delta = (ProtobufCBinaryData){delta_len, delta_buf};
    push.deps = (ProtobufCBinaryData){empty_len, empty_buf};
    Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
    msg.body_case = ENGRAM__GOSSIP__BODY_PUSH;
    msg.push = &push;
    s_write_gossip("push", &msg);

    size_t len = engram__gossip__get_packed_size(&msg);
    uint8_t *packed = malloc(len), *frame = malloc(ZSTD_compressBound(len));
    if (!packed || !frame)
        s_die("out of memory");
    engram__gossip__pack(&msg, packed);
    size_t frame_len = ZSTD_compress(frame, ZSTD_compressBound(len), packed, len, 1);
    if (ZSTD_isError(frame_len))
        s_die("compress");
    Engram__Gossip envelope = ENGRAM__GOSSIP__INIT;
    envelope.schema_minor = 3;
    envelope.body_case = ENGRAM__GOSSIP__BODY_COMPRESSED;
    envelope.compressed = (ProtobufCBinaryData){frame_len, frame};
    s_write_gossip("push-compressed", &envelope);
    free(packed);
    free(frame);

    Engram__GossipAck ack = ENGRAM__GOSSIP_ACK__INIT;
    ack.scope = "run:seed";
    ack.ctx = (ProtobufCBinaryData){ctx_len, ctx_buf};
    msg.body_case = ENGRAM__GOSSIP__BODY_ACK;
    msg.ack = &ack;
    s_write_gossip("ack", &msg);

    Engram__GossipVersion version = ENGRAM__GOSSIP_VERSION__INIT;
    Engram__GossipVersion *versions[] = {&version};
    version.scope = "run:seed";
    version.ctx = (ProtobufCBinaryData){empty_len, empty_buf};
    Engram__GossipDigest digest = ENGRAM__GOSSIP_DIGEST__INIT;
    digest.complete = true;
    digest.reply = true;
    digest.versions = versions;
    digest.n_versions = 1;
    msg.body_case = ENGRAM__GOSSIP__BODY_DIGEST;
    msg.digest = &digest;
    s_write_gossip("digest", &msg);

    Engram__GossipChunk chunk = ENGRAM__GOSSIP_CHUNK__INIT;
    chunk.scope = "run:seed";
    chunk.count = 1;
    chunk.total = delta_len;
    chunk.hash = crdt_hash(delta_buf, delta_len, UINT64_C(0x656e6772616d)); /* engine.c's key */
    chunk.data = (ProtobufCBinaryData){delta_len, delta_buf};
    msg.body_case = ENGRAM__GOSSIP__BODY_CHUNK;
    msg.chunk = &chunk;
    s_write_gossip("chunk", &msg);

    free(delta_buf);
    free(ctx_buf);
    free(empty_buf);
    crdt_scope_destroy(&delta);
    crdt_scope_destroy(&source);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        s_die("usage: fuzz_seed_corpus <dir>");
    s_root = argv[1];
    const char *dirs[] = {"",
                          "/scope_decode",
                          "/ctx_decode",
                          "/value_decode",
                          "/filter_parse",
                          "/embedding_decode",
                          "/mcp_request",
                          "/gossip_receive"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s%s", s_root, dirs[i]);
        mkdir(path, 0777); /* may exist already */
    }
    s_scopes();
    s_values();
    s_filters();
    s_embeddings();
    s_mcp_requests();
    s_gossip();
    return 0;
}
