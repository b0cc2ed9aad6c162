/*  Tests of node_store_gossip: engramd's RocksDB store replicating through gossip engines.
 *  Two (or three) real stores in temporary directories, ops made as the server makes them
 *  (view, mutator, node_store_apply), pushes and pulls passed by hand with random loss, one
 *  store closed and reopened in the middle: afterwards every store holds the same state per
 *  scope (compared as whole-scope views), removals included, and private scopes never leave.
 *
 *  Each store is shadowed by an in-memory kernel scope (its mirror) that joins every delta the
 *  store applies, local or remote: the store's catch-up deltas, read from its ops index by
 *  range, must equal crdt_scope_delta_since on the mirror for any causally consistent context,
 *  removal records included, before and after stable-cut garbage collection (node_store_gc).
 *  Replicas left below a prune cut (one kept away, one restored from a checkpoint) catch up
 *  through the whole-state path without resurrecting anything, and the cut survives restarts.
 *  A collection visits each op record once (across restarts; a store without "gc/" visits its
 *  cut once), in calls of a bounded number of visits that the random histories leave partway;
 *  a record it kept goes with the write, replicated removal, whole-state join or purge that
 *  removes its entry, so that no dead record is left once every node collected the last cut.
 *
 *  Registers and logs hold text values (as the server writes them), so every store's search
 *  index is checked wherever convergence is: the index kept incrementally by local writes,
 *  remote deltas, whole states and removals equals, record for record, the one
 *  node_store_reindex rebuilds from the entries; TTL purges, overwrites and forgets unindex.
 *
 *  History is replicated: each op's step travels as its note, so catch-up deltas carry the
 *  same notes as the mirror's, and converged stores hold the same history of every shared
 *  scope, step for step, also for a node that was away while an object was written and
 *  overwritten; a delta whose step is unreadable or not its op's is refused, changing nothing.
 *  The engines send steps lean (value, and key, type and stamp, left to the entry,
 *  node_store_gossip.note_wire) once they heard each other: the stores put them back, byte for
 *  byte (the mirror joins the steps whole), and refuse a lean step without its entry, with a
 *  value of its own, or that leaves its key to the entry and carries one (or a type or stamp).
 *
 *  Object reads run on a kept iterator: a read after a write, local or replicated, sees it,
 *  and the purge timer lets go of what it pinned; they filter by object (a prefix bloom), in
 *  memtables and tables alike.
 *
 *  RocksDB's own log holds no record a write, and keeps STORE_LOG_FILES files at most.
 */
#include "prop.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/awset.h"
#include "crdt/counter.h"
#include "crdt/hash.h"
#include "crdt/log.h"
#include "crdt/mvreg.h"
#include "crdt/value.h"
#include "engram/error.h"
#include "gossip/engine.h"
#include "node/store/internal.h" /* test_half_built_index: the index's mark */
#include "node/store/store.h"
#include "proto/store.pb-c.h"

#define NODES  3
#define SHARED 2

static const char *const s_shared[SHARED] = {"run:a", "team:b"};

typedef struct {
    char dir[64];
    node_store_t *store;
    gossip_engine_t *engine;
    crdt_scope_t *mirror[SHARED]; /* every delta the store applied, joined in memory */
    bool away;                    /* cut off: nothing is delivered to or from it */
} node_t;

static crdt_scope_t *s_mirror(node_t *n, const char *scope)
{
    for (int s = 0; s < SHARED; s++)
        if (strcmp(scope, s_shared[s]) == 0)
            return n->mirror[s];
    return NULL;
}

/*  The engine's store: node_store_gossip, with every applied delta joined into the mirror. */
static void s_m_each_scope(void *state, void (*fn)(void *arg, const char *scope), void *arg)
{
    node_store_gossip.each_scope(((node_t *)state)->store, fn, arg);
}

static const crdt_ctx_t *s_m_ctx(void *state, const char *scope)
{
    return node_store_gossip.ctx(((node_t *)state)->store, scope);
}

static crdt_scope_t *s_m_delta_since(void *state, const char *scope, const crdt_ctx_t *since)
{
    return node_store_gossip.delta_since(((node_t *)state)->store, scope, since);
}

/*  Lean notes the stores applied (value left to the entry), and of them those that left their
 *  key, type and stamp to it too (key_in_entry), for the tests to see they flow. */
static uint64_t s_lean_notes, s_keyless_notes;

/*  Puts the note of op back in whole into copy (a lean note's value, and its key, type and
 *  stamp if it left them, are its entry's in delta, as the store puts them back). */
static int s_whole_note(void *arg, crdt_dot_t op, const uint8_t *data, size_t len)
{
    crdt_scope_t *copy = arg;
    Engram__StoredHistory *step = engram__stored_history__unpack(NULL, len, data);
    if (!step || !step->value_in_entry) {
        if (step)
            engram__stored_history__free_unpacked(step, NULL);
        return crdt_scope_note(copy, op, data, len);
    }
    crdt_dot_entry_t e;
    assert_true(crdt_scope_dot_entry(copy, op, &e)); /* the store refused the delta otherwise */
    s_lean_notes++;
    char *wire_key = step->key;
    step->value = (ProtobufCBinaryData){e.entry.len, (uint8_t *)e.entry.data};
    step->value_in_entry = false;
    if (step->key_in_entry) {
        s_keyless_notes++;
        step->key = (char *)e.key;
        step->type = e.type;
        step->hlc = e.entry.hlc;
        step->key_in_entry = false;
    }
    size_t whole_len = engram__stored_history__get_packed_size(step);
    uint8_t *whole = malloc(whole_len);
    assert_non_null(whole);
    engram__stored_history__pack(step, whole);
    step->value = (ProtobufCBinaryData){0, NULL};
    step->key = wire_key;
    engram__stored_history__free_unpacked(step, NULL);
    int rc = crdt_scope_note(copy, op, whole, whole_len);
    free(whole);
    return rc;
}

/*  The mirror joins what the store applied, notes whole (the kernel keeps notes as they are). */
static int s_m_apply(void *state, const char *scope, const crdt_scope_t *delta)
{
    node_t *n = state;
    int rc = node_store_gossip.apply(n->store, scope, delta);
    if (rc == 0 && s_mirror(n, scope)) {
        crdt_scope_t *copy = crdt_scope_dup(delta, 0);
        assert_non_null(copy);
        crdt_scope_drop_notes(copy);
        PROP_CHECK(crdt_scope_foreach_note(delta, s_whole_note, copy) == 0);
        PROP_CHECK(crdt_scope_join(s_mirror(n, scope), copy) == 0);
        crdt_scope_destroy(&copy);
    }
    return rc;
}

static int s_m_note_wire(void *state, uint32_t reader_minor, crdt_dot_t op, const uint8_t *note,
                         size_t len, const crdt_dot_entry_t *entry, uint8_t **out, size_t *out_len)
{
    return node_store_gossip.note_wire(((node_t *)state)->store, reader_minor, op, note, len, entry,
                                       out, out_len);
}

static const gossip_store_t s_mirrored = {s_m_each_scope, s_m_ctx, s_m_delta_since,
                                          s_m_apply,      NULL,    s_m_note_wire};

static void s_open(node_t *n)
{
    char why[256];
    assert_int_equal(node_store_open(n->dir, true, 0, &n->store, why, sizeof why), 0);
    node_store_set_min_free(n->store, 0);
    gossip_config_t config = {
        .node_id = node_store_replica(n->store), .fanout = 2, .max_message_bytes = 2048, .seed = 3};
    n->engine = gossip_engine_new(&config, &s_mirrored, n);
    assert_non_null(n->engine);
}

static void s_close(node_t *n)
{
    gossip_engine_destroy(&n->engine);
    node_store_close(&n->store);
}

static void s_remove_dir(const char *path)
{
    zdir_t *dir = zdir_new(path, NULL);
    zdir_remove(dir, true);
    zdir_destroy(&dir);
    assert_false(zsys_file_exists(path));
}

static void s_start(node_t *nodes)
{
    for (int i = 0; i < NODES; i++) {
        memset(&nodes[i], 0, sizeof nodes[i]);
        snprintf(nodes[i].dir, sizeof nodes[i].dir, "/tmp/engram-sg-XXXXXX");
        assert_non_null(mkdtemp(nodes[i].dir));
        s_open(&nodes[i]);
        for (int s = 0; s < SHARED; s++)
            assert_non_null(nodes[i].mirror[s] = crdt_scope_new(0));
    }
}

static void s_stop(node_t *nodes)
{
    for (int i = 0; i < NODES; i++) {
        s_close(&nodes[i]);
        s_remove_dir(nodes[i].dir);
        for (int s = 0; s < SHARED; s++)
            crdt_scope_destroy(&nodes[i].mirror[s]);
    }
}

static void s_connect(node_t *nodes)
{
    for (int i = 0; i < NODES; i++)
        for (int j = 0; j < NODES; j++)
            gossip_engine_add_peer(nodes[i].engine, node_store_replica(nodes[j].store));
}

typedef enum { OP_PUT, OP_ADD, OP_REMOVE, OP_COUNT, OP_APPEND, OP_FORGET } op_t;

/*  A register or log value as the server stores it (crdt_value_t), holding text the search
 *  index takes: words drawn from `value`'s digits, written by one of two agents (two
 *  provenance classes). Caller frees *buf. */
static void s_text_value(const char *value, uint8_t **buf, size_t *len)
{
    static const char *const words[] = {"client", "summary", "slides", "format", "figures",
                                        "draft",  "review",  "needs",  "pages",  "budget"};
    char text[128] = "";
    for (const char *p = value; *p; p++)
        if (*p >= '0' && *p <= '9')
            snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s", text[0] ? " " : "",
                     words[*p - '0']);
    const char *agent = strlen(value) % 2 ? "agent-1" : "agent-2";
    crdt_value_t *v = crdt_value_new();
    assert_non_null(v);
    assert_int_equal(crdt_value_set_data(v, text, strlen(text)), 0);
    assert_int_equal(crdt_value_set_author(v, agent), 0);
    assert_int_equal(crdt_value_add_agent(v, agent), 0);
    assert_int_equal(crdt_value_encode(v, buf, len), 0);
    crdt_value_destroy(&v);
}

/*  Counter contributors, as node/ names them (agent \x1f user), and the legacy "". */
static const char *const s_contributors[] = {"", "agent-1\x1fu", "agent-2\x1fu"};

/*  One clock for every node: s_do stamps its ops with it, in the order they happen. */
static uint64_t s_clock;

/*  One op at node n, as the server does it, handed to its engine and joined into the mirror.
 *  OP_REMOVE removes `value` from the set (its first member if value is NULL). Returns the
 *  mutator's code (ENGRAM_ETYPE, ENGRAM_ENOTFOUND: nothing happened). */
static int s_do(node_t *n, const char *sid, const char *key, op_t what, const char *value)
{
    crdt_scope_t *view = NULL, *delta = NULL;
    unsigned types = 0;
    assert_int_equal(node_store_view(n->store, sid, key, NODE_VIEW_OBJECT, NULL, &view, &types), 0);
    crdt_scope_t *before = crdt_scope_dup(view, 0);
    crdt_ctx_t *deps = crdt_ctx_dup(crdt_scope_ctx(view));
    int rc;
    uint8_t *text = NULL;
    size_t text_len = 0;
    uint64_t hlc = ++s_clock;
    if (what == OP_PUT || what == OP_APPEND)
        s_text_value(value, &text, &text_len);
    switch (what) {
    case OP_PUT:
        rc = crdt_mvreg_write(view, key, hlc, text, text_len, &delta);
        break;
    case OP_ADD:
        rc = crdt_awset_add(view, key, value, value, strlen(value), &delta); /* data: any bytes */
        break;
    case OP_REMOVE: {
        const char **members;
        size_t count;
        rc = crdt_awset_members(view, key, &members, &count);
        if (rc == 0) {
            rc = crdt_awset_remove(view, key, value ? value : members[0], &delta);
            free(members);
        }
        break;
    }
    case OP_COUNT:
        rc = crdt_counter_add(view, key, s_contributors[value[1] % 3],
                              1 + (int64_t)(strlen(value) % 5), &delta);
        break;
    case OP_APPEND:
        rc = crdt_log_append(view, key, hlc, text, text_len, &delta);
        break;
    default:
        rc = crdt_scope_forget(view, key, &delta);
    }
    if (rc == 0) {
        node_history_t history = {.op = "op",
                                  .agent = "agent-1",
                                  .user = "u",
                                  .hlc = hlc,
                                  .value = text,
                                  .len = text_len};
        assert_int_equal(node_store_apply(n->store, sid, key, before, delta, &history), 0);
        if (sid[0] != '@') {
            assert_int_equal(gossip_engine_local(n->engine, sid, delta, deps, true), 0);
            PROP_CHECK(crdt_scope_join(s_mirror(n, sid), delta) == 0);
        }
    }
    free(text);
    crdt_ctx_destroy(&deps);
    crdt_scope_destroy(&delta);
    crdt_scope_destroy(&before);
    crdt_scope_destroy(&view);
    return rc;
}

/*  One random op at node n. */
static void s_random_op(node_t *n, prop_rng_t *rng)
{
    static const char *const scopes[] = {"run:a", "team:b", "@agent-1"};
    const char *sid = scopes[prop_below(rng, 3)];
    char key[8];
    snprintf(key, sizeof key, "k%d", (int)prop_below(rng, 4));
    char value[32];
    snprintf(value, sizeof value, "v%d", (int)prop_below(rng, 1000));
    op_t what = (op_t)prop_below(rng, 6);
    /* set elements: "vNN" or "NN" */
    int rc = s_do(n, sid, key, what, what == OP_ADD ? value + (value[1] % 2) : value);
    if (rc != 0 && rc != ENGRAM_ETYPE && rc != ENGRAM_ENOTFOUND)
        print_error("op on %s/%s failed: %s\n", sid, key, engram_strerror(rc));
    PROP_CHECK(rc == 0 || rc == ENGRAM_ETYPE || rc == ENGRAM_ENOTFOUND);
}

/*  Messages one delivery may pass without a tick before the test fails: far more than any
 *  exchange takes, so that nodes that keep answering each other fail instead of hanging. */
#define MAX_MESSAGES_PER_DELIVERY 100000

/*  Delivers queued messages, each lost with probability loss%; nothing to or from a node
 *  that is away. */
static void s_deliver(node_t *nodes, prop_rng_t *rng, unsigned loss, uint64_t now)
{
    int messages = 0;
    for (bool any = true; any;) {
        any = false;
        for (int from = 0; from < NODES; from++) {
            uint64_t to;
            uint8_t *buf;
            size_t len;
            while (gossip_engine_next(nodes[from].engine, &to, &buf, &len, NULL)) {
                any = true;
                if (++messages > MAX_MESSAGES_PER_DELIVERY)
                    fail_msg("the nodes never stop sending: more than %d messages without a tick",
                             MAX_MESSAGES_PER_DELIVERY);
                for (int t = 0; t < NODES && !nodes[from].away && !prop_chance(rng, loss); t++)
                    if (node_store_replica(nodes[t].store) == to && !nodes[t].away)
                        gossip_engine_receive(nodes[t].engine,
                                              node_store_replica(nodes[from].store), buf, len, now);
                free(buf);
            }
        }
    }
}

/*  Rounds of 100 ms: a tick of every node, then every message delivered, none lost. A node may
 *  be awaiting a peer's answer when the heal begins (the engine asks one peer at a time, for
 *  up to ASK_WAIT_MS, 1 s): a heal that must end converged lasts longer than that. */
static void s_heal(node_t *nodes, prop_rng_t *rng, uint64_t *now, int rounds)
{
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < NODES; i++)
            gossip_engine_tick(nodes[i].engine, *now += 100);
        s_deliver(nodes, rng, 0, *now);
    }
}

/*  A random op at a random node, sometimes a tick, and delivery with 25% loss. */
static void s_random_step(node_t *nodes, prop_rng_t *rng, uint64_t *now)
{
    s_random_op(&nodes[prop_below(rng, NODES)], rng);
    if (prop_chance(rng, 30))
        gossip_engine_tick(nodes[prop_below(rng, NODES)].engine, *now += 100);
    s_deliver(nodes, rng, 25, *now);
}

/*  Restarts a random node: replicated state must be on disk. */
static void s_restart_one(node_t *nodes, prop_rng_t *rng)
{
    int r = (int)prop_below(rng, NODES);
    assert_int_equal(node_store_sync(nodes[r].store), 0);
    s_close(&nodes[r]);
    s_open(&nodes[r]);
    s_connect(nodes);
}

/*  The whole scope of a store as a kernel scope (the catch-up delta from nothing). */
static crdt_scope_t *s_whole(node_t *n, const char *scope)
{
    crdt_ctx_t *empty = crdt_ctx_new();
    crdt_scope_t *whole = node_store_gossip.delta_since(n->store, scope, empty);
    crdt_ctx_destroy(&empty);
    return whole;
}

typedef struct {
    crdt_dot_t op;
    const crdt_dot_t *removed;
    size_t n;
    bool same;
} s_record_t;

static int s_find_record(void *arg, crdt_dot_t op, const crdt_dot_t *removed, size_t n)
{
    s_record_t *r = arg;
    if (op.node != r->op.node || op.n != r->op.n)
        return 0;
    r->same = n == r->n && memcmp(removed, r->removed, n * sizeof *removed) == 0;
    return 1;
}

static int s_record_held(void *arg, crdt_dot_t op, const crdt_dot_t *removed, size_t n)
{
    s_record_t r = {op, removed, n, false};
    crdt_scope_foreach_record(arg, s_find_record, &r);
    return r.same ? 0 : 1;
}

static int s_note_held(void *arg, crdt_dot_t op, const uint8_t *data, size_t len)
{
    size_t other_len;
    const uint8_t *other = crdt_scope_note_of(arg, op, &other_len);
    return other && other_len == len && memcmp(other, data, len) == 0 ? 0 : 1;
}

/*  The same notes (history steps), byte for byte. */
static bool s_same_notes(const crdt_scope_t *a, const crdt_scope_t *b)
{
    return crdt_scope_notes(a) == crdt_scope_notes(b) &&
           crdt_scope_foreach_note(a, s_note_held, (void *)b) == 0;
}

/*  A digest of the history family's records of scope sid (keys and steps) and their count. */
static uint64_t s_history_digest(node_t *n, const char *sid, uint64_t *steps)
{
    node_store_t *store = n->store;
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(store->db, store->read_options, store->cf[CF_HISTORY]);
    size_t plen = strlen(sid) + 1;
    uint64_t digest = 0;
    *steps = 0;
    for (rocksdb_iter_seek(it, sid, plen); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, sid, plen) != 0)
            break;
        const char *v = rocksdb_iter_value(it, &vlen);
        digest ^= crdt_hash(v, vlen, crdt_hash(k, klen, 1));
        (*steps)++;
    }
    rocksdb_iter_destroy(it);
    return digest;
}

/*  Same context, entries, removal records and prune cut. */
static bool s_same(const crdt_scope_t *a, const crdt_scope_t *b)
{
    return a && b && crdt_scope_equal(a, b) && crdt_scope_records(a) == crdt_scope_records(b) &&
           crdt_scope_foreach_record(a, s_record_held, (void *)b) == 0 &&
           crdt_ctx_equal(crdt_scope_pruned(a), crdt_scope_pruned(b));
}

/*  Every store serves every scope the mirror of its state would serve. */
static void s_check_mirrors(node_t *nodes, crdt_ctx_t *const *since, size_t nsince)
{
    for (int i = 0; i < NODES; i++)
        for (int s = 0; s < SHARED; s++) {
            if (!node_store_ctx(nodes[i].store, s_shared[s]))
                continue;
            for (size_t c = 0; c < nsince; c++) {
                crdt_scope_t *got =
                    node_store_gossip.delta_since(nodes[i].store, s_shared[s], since[c]);
                crdt_scope_t *want = crdt_scope_delta_since(nodes[i].mirror[s], since[c]);
                PROP_CHECK(s_same(got, want));
                /* The steps too, unless records were collected (a whole state carries the
                 * steps of the records kept; the kernel never drops a note). */
                if (crdt_ctx_is_empty(crdt_scope_pruned(got)))
                    PROP_CHECK(s_same_notes(got, want));
                crdt_scope_destroy(&got);
                crdt_scope_destroy(&want);
            }
        }
}

/*  Every store holds the same state of every shared scope, and its mirror's. */
/*  The search index every write kept up to date incrementally (local writes, remote deltas,
 *  whole states, removals) is exactly the one rebuilt from the entries, record for record. */
static void s_check_index(node_t *n)
{
    uint8_t incremental[32], rebuilt[32];
    uint64_t records = 0, records_rebuilt = 0, indexed = 0;
    PROP_CHECK(node_store_index_digest(n->store, incremental, &records) == 0);
    PROP_CHECK(node_store_reindex(n->store, &indexed) == 0);
    PROP_CHECK(node_store_index_digest(n->store, rebuilt, &records_rebuilt) == 0);
    if (records != records_rebuilt || memcmp(incremental, rebuilt, sizeof rebuilt) != 0)
        print_error("the incremental index (%" PRIu64 " records) differs from the rebuilt one "
                    "(%" PRIu64 " records, from %" PRIu64 " entries)\n",
                    records, records_rebuilt, indexed);
    PROP_CHECK(records == records_rebuilt && memcmp(incremental, rebuilt, sizeof rebuilt) == 0);
}

static void s_check_converged(node_t *nodes)
{
    for (int i = 0; i < NODES; i++)
        s_check_index(&nodes[i]);
    for (int s = 0; s < SHARED; s++) {
        crdt_scope_t *first = s_whole(&nodes[0], s_shared[s]);
        for (int i = 0; i < NODES; i++) {
            crdt_scope_t *other = s_whole(&nodes[i], s_shared[s]);
            PROP_CHECK((first == NULL) == (other == NULL));
            if (first && other) {
                PROP_CHECK(crdt_scope_equal(first, other));
                PROP_CHECK(crdt_scope_equal(other, nodes[i].mirror[s]));
                PROP_CHECK(crdt_ctx_is_vv(crdt_scope_ctx(other)));
            }
            crdt_scope_destroy(&other);
        }
        crdt_scope_destroy(&first);
    }
}

static void test_stores_converge_through_gossip(void **state)
{
    (void)state;
    int cases = prop_cases(12);
    s_lean_notes = s_keyless_notes = 0;
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("store_gossip", c);
        node_t nodes[NODES];
        s_start(nodes);
        s_connect(nodes);
        uint64_t now = 1000;
        for (int step = 0; step < 120; step++) {
            s_random_step(nodes, &rng, &now);
            if (step == 60)
                s_restart_one(nodes, &rng);
        }
        s_heal(nodes, &rng, &now, 20);
        s_check_converged(nodes);
        /* Every node holds the same history of every shared scope, byte for byte, also where
         * steps came lean (their values put back from their entries). */
        for (int s = 0; s < SHARED; s++) {
            uint64_t steps0, steps;
            uint64_t digest0 = s_history_digest(&nodes[0], s_shared[s], &steps0);
            for (int i = 1; i < NODES; i++) {
                PROP_CHECK(s_history_digest(&nodes[i], s_shared[s], &steps) == digest0);
                PROP_CHECK(steps == steps0);
            }
        }
        /* Private scopes never left their node: nobody lists or serves them. */
        for (int i = 0; i < NODES; i++) {
            PROP_CHECK(node_store_gossip.ctx(nodes[i].store, "@agent-1") == NULL);
            PROP_CHECK(s_whole(&nodes[i], "@agent-1") == NULL);
            PROP_CHECK(node_store_gossip.apply(nodes[i].store, "@agent-1", NULL) == ENGRAM_ESCOPE);
        }
        s_stop(nodes);
    }
    PROP_CHECK(s_lean_notes > 0);    /* steps went lean, and came back whole */
    PROP_CHECK(s_keyless_notes > 0); /* some without their key, type and stamp too */
}

/*  The meet of the contexts of the nodes in mask (a stable cut if every node is in it). */
static crdt_ctx_t *s_cut(node_t *nodes, unsigned mask, const char *sid)
{
    crdt_ctx_t *cut = NULL;
    for (int i = 0; i < NODES; i++) {
        if (!(mask & (1u << i)))
            continue;
        const crdt_ctx_t *ctx = node_store_ctx(nodes[i].store, sid);
        crdt_ctx_t *next = !ctx  ? crdt_ctx_new()
                           : cut ? crdt_ctx_meet(cut, ctx)
                                 : crdt_ctx_dup(ctx);
        crdt_ctx_destroy(&cut);
        cut = next;
    }
    return cut;
}

/*  Dead op records of sid at n (node_store_garbage). */
static uint64_t s_garbage(node_t *n, const char *sid)
{
    uint64_t pending = 0;
    assert_int_equal(node_store_garbage(n->store, sid, &pending), 0);
    return pending;
}

static uint64_t s_gc_paused; /* collection calls that left records for another */

/*  Collects garbage at node g, in the store and in its mirror: calls of at most budget visits
 *  each until nothing is left or, given rng, maybe before (the rest is left to later
 *  collections, with writes, joins and restarts between). The records dropped. */
static uint64_t s_gc(node_t *g, const char *sid, const crdt_ctx_t *cut, uint64_t budget,
                     prop_rng_t *rng)
{
    uint64_t dropped = 0;
    if (!node_store_ctx(g->store, sid))
        return 0;
    node_store_gc_t done;
    do {
        PROP_CHECK(node_store_gc(g->store, sid, cut, budget, 0, &done) == 0);
        PROP_CHECK(done.visited <= budget && done.dropped <= done.visited);
        PROP_CHECK(!done.more || done.visited == budget);
        dropped += done.dropped;
        s_gc_paused += done.more;
    } while (done.more && (!rng || prop_chance(rng, 60)));
    PROP_CHECK(crdt_scope_prune(s_mirror(g, sid), cut) == 0);
    return dropped;
}

/*  A collection's budget of visits: a few (collections that stop partway) or none at all. */
static uint64_t s_budget(prop_rng_t *rng)
{
    return prop_chance(rng, 50) ? 1 + prop_below(rng, 4) : UINT64_MAX;
}

/*  Random histories with losses, restarts and garbage collection at stable cuts and at cuts
 *  that leave one replica behind (as if an admin had removed it): the store answers every
 *  catch-up exactly as the kernel would from the same state, and all replicas converge. */
static void test_catch_up_matches_kernel(void **state)
{
    (void)state;
    int cases = prop_cases(10);
    uint64_t dropped_in_all = 0;
    s_gc_paused = 0;
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("store_catch_up", c);
        node_t nodes[NODES];
        s_start(nodes);
        s_connect(nodes);
        enum { MAX_SINCE = 24 };
        crdt_ctx_t *since[MAX_SINCE];
        size_t nsince = 0;
        since[nsince++] = crdt_ctx_new();
        uint64_t now = 1000, dropped = 0;
        for (int step = 0; step < 160; step++) {
            s_random_step(nodes, &rng, &now);
            const char *sid = s_shared[prop_below(&rng, SHARED)];
            node_t *n = &nodes[prop_below(&rng, NODES)];
            if (prop_chance(&rng, 15) && nsince < MAX_SINCE && node_store_ctx(n->store, sid))
                since[nsince++] = crdt_ctx_dup(node_store_ctx(n->store, sid));
            if (prop_chance(&rng, 8)) {
                /* Everyone, or two of three: the third is left below the cut. */
                unsigned mask = prop_chance(&rng, 50) ? 7u : 7u & ~(1u << prop_below(&rng, 3));
                crdt_ctx_t *cut = s_cut(nodes, mask, sid);
                for (int i = 0; i < NODES; i++)
                    if (mask & (1u << i) && prop_chance(&rng, 70))
                        dropped += s_gc(&nodes[i], sid, cut, s_budget(&rng), &rng);
                crdt_ctx_destroy(&cut);
            }
            if (step % 40 == 39)
                s_check_mirrors(nodes, since, nsince);
            if (step == 100)
                s_restart_one(nodes, &rng);
        }
        s_heal(nodes, &rng, &now, 20);
        s_check_mirrors(nodes, since, nsince);
        s_check_converged(nodes);
        /* Collected at the cut all reached, no dead op record is left anywhere, whatever the
         * collections before it visited: a record they kept is gone with its entry. */
        for (int s = 0; s < SHARED; s++) {
            crdt_ctx_t *cut = s_cut(nodes, 7u, s_shared[s]);
            for (int i = 0; i < NODES; i++) {
                dropped += s_gc(&nodes[i], s_shared[s], cut, s_budget(&rng), NULL);
                PROP_CHECK(s_garbage(&nodes[i], s_shared[s]) == 0);
            }
            crdt_ctx_destroy(&cut);
        }
        dropped_in_all += dropped;
        for (size_t i = 0; i < nsince; i++)
            crdt_ctx_destroy(&since[i]);
        s_stop(nodes);
    }
    PROP_CHECK(dropped_in_all > 0); /* the collection did collect (in some case: which ones
                                     * depends on the random path and the random node ids) */
    PROP_CHECK(s_gc_paused > 0);    /* and some collections stopped partway */
}

/*  Whether the store holds a live entry under key. */
static bool s_has_key(node_t *n, const char *sid, const char *key)
{
    crdt_scope_t *view = NULL;
    unsigned types = 0;
    assert_int_equal(node_store_view(n->store, sid, key, NODE_VIEW_OBJECT, NULL, &view, &types), 0);
    bool has = crdt_scope_entries(view) > 0;
    crdt_scope_destroy(&view);
    return has;
}

/*  The canonical story of garbage: A, B and C share a scope; C goes away; A and B remove
 *  things and collect the removal records at the cut they both reached (an admin removed C);
 *  a checkpoint of A taken before the removals is restored. C and the restored A hold entries
 *  whose removal records no longer exist anywhere: they catch up through whole states and
 *  end with the others' state, nothing resurrected. The prune cut survives restarts. */
static void test_gc_lagging_and_restored_replicas(void **state)
{
    (void)state;
    prop_rng_t rng = prop_case("store_gc_story", 0);
    const char *sid = "run:a";
    node_t nodes[NODES], *a = &nodes[0], *b = &nodes[1], *c = &nodes[2];
    s_start(nodes);
    s_connect(nodes);
    uint64_t now = 1000;
    assert_int_equal(s_do(a, sid, "doomed", OP_PUT, "v1"), 0);
    assert_int_equal(s_do(a, sid, "kept", OP_PUT, "v1"), 0);
    assert_int_equal(s_do(b, sid, "over", OP_PUT, "v1"), 0);
    assert_int_equal(s_do(b, sid, "set", OP_ADD, "x"), 0);
    assert_int_equal(s_do(b, sid, "set", OP_ADD, "y"), 0);
    s_heal(nodes, &rng, &now, 3);
    s_check_converged(nodes);

    char copy[80];
    snprintf(copy, sizeof copy, "%s-copy", a->dir);
    assert_int_equal(node_store_checkpoint(a->store, copy), 0);

    c->away = true;
    crdt_ctx_t *c_old = crdt_ctx_dup(node_store_ctx(c->store, sid));
    assert_int_equal(s_do(a, sid, "doomed", OP_FORGET, NULL), 0);
    assert_int_equal(s_do(b, sid, "over", OP_PUT, "v2"), 0);
    assert_int_equal(s_do(b, sid, "set", OP_REMOVE, "x"), 0);
    assert_int_equal(s_do(a, sid, "new", OP_PUT, "v1"), 0);
    s_heal(nodes, &rng, &now, 3);
    assert_true(s_has_key(c, sid, "doomed"));
    assert_false(s_has_key(a, sid, "doomed"));

    /* Five dead op records at A and B: doomed's put and its forget, over's first put, x's
     * add and its removal. */
    assert_int_equal(s_garbage(a, sid), 5);
    crdt_ctx_t *cut = s_cut(nodes, 3u, sid);
    uint64_t dropped_a = s_gc(a, sid, cut, UINT64_MAX, NULL),
             dropped_b = s_gc(b, sid, cut, 2, NULL);
    assert_int_equal(dropped_a, 5);
    assert_int_equal(dropped_b, 5);
    assert_int_equal(s_garbage(a, sid), 0);
    assert_true(crdt_ctx_equal(node_store_pruned(a->store, sid), cut));
    /* Nothing below the cut is left to drop. */
    assert_int_equal(s_gc(a, sid, cut, UINT64_MAX, NULL), 0);
    /* A record a collection visited and kept (its entry was live) goes with the write that
     * removes its entry, since no collection visits it again: "kept" is overwritten at B (a
     * local removal) and the write replicated to A (a remote one). */
    assert_int_equal(s_do(b, sid, "kept", OP_PUT, "v2"), 0);
    s_heal(nodes, &rng, &now, 3);
    assert_int_equal(s_garbage(a, sid), 0);
    assert_int_equal(s_garbage(b, sid), 0);

    /* C is below the cut: A answers it with the whole state, which C joins as one. */
    crdt_scope_t *answer = node_store_gossip.delta_since(a->store, sid, c_old);
    assert_non_null(answer);
    assert_true(crdt_ctx_equal(crdt_scope_pruned(answer), cut));
    assert_int_equal(crdt_scope_entries(answer), 4); /* kept, over v2, y in set, new */
    crdt_scope_destroy(&answer);
    c->away = false;
    s_heal(nodes, &rng, &now, 4);
    s_check_converged(nodes);
    assert_false(s_has_key(c, sid, "doomed"));
    assert_true(crdt_ctx_equal(node_store_pruned(c->store, sid), cut));

    /* A is restored from its old copy: a new replica id, its old state, catches up. */
    uint64_t old_replica = node_store_replica(a->store);
    s_close(a);
    s_remove_dir(a->dir);
    assert_int_equal(rename(copy, a->dir), 0);
    s_open(a);
    assert_true(node_store_replica(a->store) != old_replica);
    assert_true(s_has_key(a, sid, "doomed"));
    crdt_scope_destroy(&a->mirror[0]);
    a->mirror[0] = s_whole(a, sid);
    s_connect(nodes);
    s_heal(nodes, &rng, &now, 4);
    s_check_converged(nodes);
    assert_false(s_has_key(a, sid, "doomed"));
    /* And writes again, with dots nobody has seen. */
    assert_int_equal(s_do(a, sid, "after", OP_PUT, "v1"), 0);
    s_heal(nodes, &rng, &now, 3);
    s_check_converged(nodes);
    assert_true(s_has_key(c, sid, "after"));

    /* Restarts keep the prune cut, the garbage count and the whole-state answer. */
    uint64_t pending = s_garbage(b, sid);
    for (int i = 0; i < NODES; i++) {
        s_close(&nodes[i]);
        s_open(&nodes[i]);
    }
    s_connect(nodes);
    for (int i = 0; i < NODES; i++) /* B collected; A and C joined whole states */
        assert_true(crdt_ctx_equal(node_store_pruned(nodes[i].store, sid), cut));
    assert_int_equal(s_garbage(b, sid), pending);
    answer = node_store_gossip.delta_since(b->store, sid, c_old);
    assert_true(crdt_ctx_equal(crdt_scope_pruned(answer), cut));
    crdt_scope_destroy(&answer);
    s_check_converged(nodes);

    crdt_ctx_destroy(&cut);
    crdt_ctx_destroy(&c_old);
    s_stop(nodes);
}

typedef struct {
    uint64_t steps;
    bool removed_all; /* the last step's */
    size_t nremoved;
} s_history_last_t;

static int s_history_last(void *arg, const node_step_t *step)
{
    s_history_last_t *last = arg;
    last->steps++;
    last->removed_all = step->removed_all;
    last->nremoved = step->nremoved;
    return 0;
}

typedef struct {
    char op[16];
    char value[16];
    crdt_dot_t dot;
    crdt_dot_t removed[4];
    size_t nremoved;
} s_seen_step_t;

typedef struct {
    s_seen_step_t steps[8];
    size_t n;
} s_seen_t;

static int s_see_step(void *arg, const node_step_t *step)
{
    s_seen_t *seen = arg;
    assert_true(seen->n < 8);
    s_seen_step_t *out = &seen->steps[seen->n++];
    snprintf(out->op, sizeof out->op, "%s", step->op);
    out->value[0] = '\0';
    crdt_value_t *v;
    if (step->value && crdt_value_decode(step->value, step->len, &v) == 0) {
        snprintf(out->value, sizeof out->value, "%.*s", (int)v->len, (const char *)v->data);
        crdt_value_destroy(&v);
    }
    out->dot = step->dot;
    assert_true(step->nremoved <= 4);
    out->nremoved = step->nremoved;
    if (step->nremoved)
        memcpy(out->removed, step->removed, step->nremoved * sizeof *step->removed);
    return 0;
}

/*  Members of the set under key as node n reads it now. */
static size_t s_members(node_t *n, const char *sid, const char *key)
{
    crdt_scope_t *view = NULL;
    unsigned types = 0;
    assert_int_equal(node_store_view(n->store, sid, key, NODE_VIEW_OBJECT, NULL, &view, &types), 0);
    const char **members = NULL;
    size_t count = 0;
    int rc = crdt_awset_members(view, key, &members, &count);
    assert_true(rc == 0 || rc == ENGRAM_ENOTFOUND);
    free(members);
    crdt_scope_destroy(&view);
    return rc == 0 ? count : 0;
}

/*  Object reads share a kept iterator of the entries (store__scan_entries): every read after
 *  a write, local or replicated, in a shared scope or a private one, sees that write. */
static void test_reads_follow_writes(void **state)
{
    (void)state;
    prop_rng_t rng = prop_case("store_reads_follow_writes", 0);
    node_t nodes[NODES], *a = &nodes[0], *b = &nodes[1];
    s_start(nodes);
    s_connect(nodes);
    uint64_t now = 1000;
    const char *const sids[] = {"run:a", "@agent-1"};
    for (size_t i = 0; i < 2; i++) {
        assert_false(s_has_key(a, sids[i], "s"));
        assert_int_equal(s_do(a, sids[i], "s", OP_ADD, "x"), 0);
        assert_int_equal(s_members(a, sids[i], "s"), 1);
        assert_int_equal(s_do(a, sids[i], "s", OP_ADD, "y"), 0);
        assert_int_equal(s_members(a, sids[i], "s"), 2);
        assert_int_equal(s_do(a, sids[i], "s", OP_REMOVE, "x"), 0);
        assert_int_equal(s_members(a, sids[i], "s"), 1);
    }
    /* b reads before and after each delta it applies */
    assert_int_equal(s_members(b, "run:a", "s"), 0);
    s_heal(nodes, &rng, &now, 3);
    assert_int_equal(s_members(b, "run:a", "s"), 1);
    assert_int_equal(s_do(a, "run:a", "s", OP_ADD, "z"), 0);
    s_heal(nodes, &rng, &now, 3);
    assert_int_equal(s_members(b, "run:a", "s"), 2);
    assert_false(s_has_key(b, "@agent-1", "s")); /* private scopes stay home */
    assert_int_equal(s_do(a, "run:a", "s", OP_FORGET, NULL), 0);
    assert_false(s_has_key(a, "run:a", "s"));
    s_heal(nodes, &rng, &now, 3);
    assert_false(s_has_key(b, "run:a", "s"));
    s_stop(nodes);
}

/*  The HLC ceiling ("hlc" in meta), as the store holds it. */
static uint64_t s_stored_ceiling(node_t *n)
{
    char *err = NULL;
    size_t len = 0;
    char *raw = rocksdb_get_cf(n->store->db, n->store->read_options, n->store->cf[CF_META], "hlc",
                               3, &len, &err);
    assert_null(err);
    uint64_t ceiling = raw && len == 8 ? store__get_le64(raw) : 0;
    free(raw);
    return ceiling;
}

/*  The HLC ceiling (store__hlc_lease): every stamp a store issued or observed is at most the
 *  ceiling it persisted, so a reopened store's clock starts above them all, even with its wall
 *  clock set back a minute, and at most ENGRAM_HLC_LEASE_MS above the largest; writes spread
 *  over four leases rewrite the ceiling a few times, not once a write. */
static void test_clock_restarts_above_its_stamps(void **state)
{
    (void)state;
    prop_rng_t rng = prop_case("store_clock_restarts", 0);
    node_t nodes[NODES], *a = &nodes[0], *b = &nodes[1];
    s_start(nodes);
    s_connect(nodes);
    const uint64_t wall = (uint64_t)zclock_time() - 120000; /* behind the applies' drift bound */
    const uint64_t clock_before = s_clock;
    const uint64_t lease = (uint64_t)ENGRAM_HLC_LEASE_MS << ENGRAM_HLC_LOGICAL_BITS;
    const int writes = 200;
    uint64_t ceiling = s_stored_ceiling(a), last = 0;
    int rewrites = 0;
    for (int i = 0; i < writes; i++) {
        uint64_t now_ms = wall + (uint64_t)i * 4 * ENGRAM_HLC_LEASE_MS / writes;
        last = node_store_hlc_now(a->store, now_ms);
        s_clock = last - 1;
        char key[8];
        snprintf(key, sizeof key, "k%d", i % 7);
        assert_int_equal(s_do(a, i % 2 ? "run:a" : "@agent-1", key, OP_PUT, "12"), 0);
        uint64_t stored = s_stored_ceiling(a);
        assert_true(stored >= last);
        rewrites += stored != ceiling;
        ceiling = stored;
    }
    assert_in_range(rewrites, 1, 6);
    uint64_t gossip_ms = 1000;
    s_heal(nodes, &rng, &gossip_ms, 3); /* b applies a's shared writes and observes their stamps */
    uint64_t b_last = node_store_hlc_last(b->store);
    assert_true(b_last >= last);
    assert_true(s_stored_ceiling(b) >= b_last);
    for (int i = 0; i < 2; i++) {
        s_close(&nodes[i]);
        s_open(&nodes[i]);
    }
    uint64_t first = node_store_hlc_now(a->store, wall - 60000);
    assert_true(first > last);
    assert_true(first <= last + lease + 1);
    assert_true(node_store_hlc_last(b->store) >= b_last);
    assert_true(node_store_hlc_last(b->store) <= b_last + lease);
    s_stop(nodes);
    s_clock = clock_before; /* the tests after this one stamp from where they were */
}

/*  Writes the store's entries families to tables (RocksDB flushes their memtables). */
static void s_flush_entries(node_t *n)
{
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    node_store_t *st = n->store;
    const int cfs[] = {CF_ENTRIES, CF_PRIVATE};
    for (size_t i = 0; i < 2; i++) {
        char *err = NULL;
        rocksdb_flush_cf(st->db, fo, st->cf[cfs[i]], &err);
        assert_null(err);
    }
    rocksdb_flushoptions_destroy(fo);
}

/*  The entries families filter by object (sid \0 key \0) in their memtables and tables: each
 *  object is found whole wherever its entries are (a table, a memtable, both), also beside
 *  keys it is a prefix of, one element of it too, and nothing else is; a whole scope is still
 *  read across objects. It fails with an extractor that takes more than the object (the
 *  filters would hide it); it cannot tell whether the filters are used at all, nor whether
 *  scans across objects need total_order_seek (their seek keys, sid \0 alone, are outside
 *  the extractor's domain, which RocksDB reads in total order anyway). */
static void test_objects_read_from_tables(void **state)
{
    (void)state;
    node_t nodes[NODES], *a = &nodes[0];
    s_start(nodes);
    const char *const sids[] = {"run:a", "@agent-1"};
    const char *const keys[] = {"a", "ab", "a b", "b"};
    const char *const elems[] = {"x", "y", "z", "w"};
    for (size_t s = 0; s < 2; s++)
        for (size_t k = 0; k < 4; k++)
            for (size_t e = 0; e <= k; e++)
                assert_int_equal(s_do(a, sids[s], keys[k], OP_ADD, elems[e]), 0);
    s_flush_entries(a);
    assert_int_equal(s_do(a, "run:a", "ab", OP_ADD, "v"), 0); /* in the memtable */
    for (size_t s = 0; s < 2; s++) {
        for (size_t k = 0; k < 4; k++) {
            size_t extra = s == 0 && k == 1;
            assert_int_equal(s_members(a, sids[s], keys[k]), k + 1 + extra);
            crdt_scope_t *view = NULL;
            unsigned types = 0;
            assert_int_equal(
                node_store_view(a->store, sids[s], keys[k], NODE_VIEW_ELEM, "x", &view, &types), 0);
            assert_int_equal(types, 1u << CRDT_SET);
            assert_int_equal(crdt_scope_entries(view), 1);
            crdt_scope_destroy(&view);
        }
        assert_false(s_has_key(a, sids[s], "aa"));
        assert_false(s_has_key(a, sids[s], "c"));
        assert_false(s_has_key(a, sids[s], "a b "));
    }
    crdt_scope_t *whole = s_whole(a, "run:a");
    assert_non_null(whole);
    assert_int_equal(crdt_scope_entries(whole), 1 + 2 + 3 + 4 + 1);
    crdt_scope_destroy(&whole);
    s_stop(nodes);
}

/*  Bytes of the entries family's memtables: the live ones, or all (pinned ones too). */
static uint64_t s_memtable_bytes(node_t *n, const char *property)
{
    uint64_t bytes = 0;
    assert_int_equal(
        rocksdb_property_int_cf(n->store->db, n->store->cf[CF_ENTRIES], property, &bytes), 0);
    return bytes;
}

/*  The kept iterator pins the memtable it read once that memtable is flushed; the purge timer
 *  drops it, writes or not, and the memtable is freed. */
static void test_purge_unpins_what_reads_kept(void **state)
{
    (void)state;
    node_t nodes[NODES], *a = &nodes[0];
    s_start(nodes);
    for (int i = 0; i < 50; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(s_do(a, "run:a", key, OP_ADD, "x"), 0);
    }
    assert_true(s_has_key(a, "run:a", "k1")); /* the kept iterator holds this memtable */
    s_flush_entries(a);
    uint64_t live = s_memtable_bytes(a, "rocksdb.cur-size-all-mem-tables");
    uint64_t all = s_memtable_bytes(a, "rocksdb.size-all-mem-tables");
    assert_true(all > live); /* the flushed memtable, pinned */
    uint64_t purged = 0;
    assert_int_equal(node_store_purge(a->store, 1000, &purged), 0);
    assert_int_equal(s_memtable_bytes(a, "rocksdb.size-all-mem-tables"),
                     s_memtable_bytes(a, "rocksdb.cur-size-all-mem-tables"));
    assert_true(s_has_key(a, "run:a", "k1")); /* read again, from the table */
    s_stop(nodes);
}

/*  An object written on A, overwritten on B, then deleted on B, while C was away: once C is
 *  back, its history of the object is A's and B's, step for step, each with what it removed,
 *  though the first value was gone from every store's entries before C heard of it. */
static void test_history_is_replicated(void **state)
{
    (void)state;
    prop_rng_t rng = prop_case("store_history", 0);
    const char *sid = "run:a";
    node_t nodes[NODES], *a = &nodes[0], *b = &nodes[1], *c = &nodes[2];
    s_start(nodes);
    s_connect(nodes);
    uint64_t now = 1000;
    c->away = true;
    assert_int_equal(s_do(a, sid, "k", OP_PUT, "v1"), 0); /* "summary" */
    s_heal(nodes, &rng, &now, 3);
    assert_int_equal(s_do(b, sid, "k", OP_PUT, "v2"), 0); /* "slides" */
    s_heal(nodes, &rng, &now, 3);
    assert_int_equal(s_do(b, sid, "k", OP_FORGET, NULL), 0);
    s_heal(nodes, &rng, &now, 3);
    c->away = false;
    s_heal(nodes, &rng, &now, 4);
    s_check_converged(nodes);
    s_seen_t seen[NODES] = {0};
    for (int i = 0; i < NODES; i++)
        assert_int_equal(node_store_history(nodes[i].store, sid, "k", NULL, s_see_step, &seen[i]),
                         0);
    assert_int_equal(seen[2].n, 3);
    assert_string_equal(seen[2].steps[0].value, "summary");
    assert_string_equal(seen[2].steps[1].value, "slides");
    assert_int_equal(seen[2].steps[0].nremoved, 0);
    assert_int_equal(seen[2].steps[1].nremoved, 1); /* the second put superseded the first */
    assert_true(seen[2].steps[1].removed[0].node == seen[2].steps[0].dot.node &&
                seen[2].steps[1].removed[0].n == seen[2].steps[0].dot.n);
    assert_int_equal(seen[2].steps[2].nremoved, 1);
    for (int i = 0; i < 2; i++)
        assert_memory_equal(&seen[i], &seen[2], sizeof seen[2]);
    s_stop(nodes);
}

static int s_restore_into(void *arg, crdt_type_id_t type, const char *key,
                          const crdt_entry_view_t *e)
{
    return crdt_scope_restore(arg, type, key, e);
}

/*  What a forged step changes of the real one. */
typedef enum {
    FORGE_KEY,
    FORGE_HLC,
    FORGE_TYPE,
    FORGE_VALUE,
    FORGE_REMOVED,
    FORGE_GARBAGE,
    FORGE_KINDS
} s_forge_t;

/*  The step note with one thing changed, into out; returns its length. */
static size_t s_forge(const uint8_t *note, size_t len, s_forge_t how, uint8_t *out, size_t cap)
{
    if (how == FORGE_GARBAGE) {
        memcpy(out, "\xff\xff\xff", 3);
        return 3;
    }
    Engram__StoredHistory *step = engram__stored_history__unpack(NULL, len, note);
    assert_non_null(step);
    char *own_key = step->key;
    uint8_t *own_value = step->value.data;
    uint8_t other_value[] = {'x'};
    uint64_t other_removed[] = {7, 7};
    uint64_t *own_removed = step->removed;
    size_t own_nremoved = step->n_removed;
    if (how == FORGE_KEY)
        step->key = "other";
    else if (how == FORGE_HLC)
        step->hlc++;
    else if (how == FORGE_TYPE)
        step->type = CRDT_LOG;
    else if (how == FORGE_VALUE)
        step->value = (ProtobufCBinaryData){1, other_value};
    else {
        step->removed = other_removed;
        step->n_removed = 2;
    }
    assert_true(engram__stored_history__get_packed_size(step) <= cap);
    size_t n = engram__stored_history__pack(step, out);
    step->key = own_key;
    step->value.data = own_value;
    step->removed = own_removed;
    step->n_removed = own_nremoved;
    engram__stored_history__free_unpacked(step, NULL);
    return n;
}

static int s_restore_record_into(void *arg, crdt_dot_t op, const crdt_dot_t *removed, size_t n)
{
    return crdt_scope_restore_record(arg, op, removed, n);
}

/*  A delta whose step does not decode, or says of its op what the op is not (another key,
 *  stamp, type, value, or other removals), or leaves what it should not to its entry (see
 *  below), is refused and changes nothing; the same delta with its own steps, one of them
 *  lean in either form, is applied and stored whole. */
static void test_bad_steps_are_refused(void **state)
{
    (void)state;
    const char *sid = "run:a";
    node_t nodes[NODES], *a = &nodes[0], *b = &nodes[1];
    s_start(nodes);
    assert_int_equal(s_do(a, sid, "k", OP_PUT, "v1"), 0);
    assert_int_equal(s_do(a, sid, "k", OP_PUT, "v2"), 0); /* removes the first: a record */
    crdt_ctx_t *empty = crdt_ctx_new();
    crdt_scope_t *good = node_store_gossip.delta_since(a->store, sid, empty);
    assert_int_equal(crdt_scope_notes(good), 2);
    assert_int_equal(crdt_scope_records(good), 1);
    crdt_dot_t first = {node_store_replica(a->store), 1}, second = {first.node, 2};
    size_t len, first_len;
    const uint8_t *note = crdt_scope_note_of(good, second, &len);
    const uint8_t *first_note = crdt_scope_note_of(good, first, &first_len);
    assert_non_null(note);
    assert_non_null(first_note);
    for (s_forge_t how = 0; how < FORGE_KINDS; how++) {
        uint8_t forged[512];
        size_t forged_len = s_forge(note, len, how, forged, sizeof forged);
        /* The good delta's context, entry and record, with the bad step as its op's note. */
        crdt_scope_t *delta = crdt_scope_new(0);
        assert_int_equal(crdt_scope_restore_ctx(delta, crdt_scope_ctx(good)), 0);
        assert_int_equal(crdt_scope_foreach_entry(good, s_restore_into, delta), 0);
        assert_int_equal(crdt_scope_foreach_record(good, s_restore_record_into, delta), 0);
        assert_int_equal(crdt_scope_note(delta, first, first_note, first_len), 0);
        assert_int_equal(crdt_scope_note(delta, second, forged, forged_len), 0);
        if (node_store_gossip.apply(b->store, sid, delta) != ENGRAM_EDECODE)
            fail_msg("a step forged by way %d was not refused", (int)how);
        assert_null(node_store_ctx(b->store, sid));
        crdt_scope_destroy(&delta);
    }
    /* Lean steps: the live put's step in its wire forms is taken, what it left to its entry
     * put back: its value only (value_in_entry, for a reader of the minor before this one's,
     * while this minor is the first to leave the key: KEY_IN_ENTRY_MINOR in replication.c),
     * and its key, type and stamp too (key_in_entry, for a reader of this minor). Refused: a step
     * that leaves its value to an entry the delta lacks (the first put's is gone), or says so and
     * carries a value too; one that leaves its key to the entry and carries a key (even the
     * right one), a type or a stamp, or carries its value, or whose entry the delta lacks. */
    uint8_t *lean = NULL, *keyed = NULL, *first_lean = NULL;
    size_t lean_len = 0, keyed_len = 0, first_lean_len = 0;
    crdt_dot_entry_t entry;
    assert_true(crdt_scope_dot_entry(good, second, &entry));
    assert_int_equal(node_store_gossip.note_wire(b->store, ENGRAM_SCHEMA_MINOR, second, note, len,
                                                 &entry, &lean, &lean_len),
                     0);
    assert_int_equal(node_store_gossip.note_wire(b->store, ENGRAM_SCHEMA_MINOR - 1, second, note,
                                                 len, &entry, &keyed, &keyed_len),
                     0);
    assert_true(lean && keyed && lean_len < keyed_len && keyed_len < len);
    assert_int_equal(node_store_gossip.note_wire(b->store, ENGRAM_SCHEMA_MINOR, first, first_note,
                                                 first_len, NULL, &first_lean, &first_lean_len),
                     0);
    assert_null(first_lean); /* no entry: the note goes whole */
    Engram__StoredHistory *step = engram__stored_history__unpack(NULL, keyed_len, keyed);
    assert_true(step && step->value_in_entry && !step->key_in_entry && !step->value.len);
    assert_string_equal(step->key, "k");
    engram__stored_history__free_unpacked(step, NULL);
    step = engram__stored_history__unpack(NULL, lean_len, lean);
    assert_true(step && step->value_in_entry && step->key_in_entry && !step->value.len);
    assert_true(!step->key[0] && !step->type && !step->hlc);
    engram__stored_history__free_unpacked(step, NULL);
    enum {
        FIRST_LEAN,
        WITH_VALUE,
        KEYLESS_WITH_KEY,
        KEYLESS_WITH_TYPE,
        KEYLESS_WITH_HLC,
        KEYLESS_WITH_VALUE,
        FIRST_KEYLESS,
        BAD_KINDS
    };
    for (int k = 0; k < BAD_KINDS; k++) {
        /* first: the first op's step, made lean though the delta lacks its entry */
        bool bad_first = k == FIRST_LEAN || k == FIRST_KEYLESS;
        step = bad_first ? engram__stored_history__unpack(NULL, first_len, first_note)
                         : engram__stored_history__unpack(NULL, lean_len, lean);
        assert_non_null(step);
        char *own_key = step->key;
        ProtobufCBinaryData own_value = step->value;
        uint8_t x = 'x';
        if (bad_first) {
            step->value = (ProtobufCBinaryData){0, NULL};
            step->value_in_entry = true;
            if (k == FIRST_KEYLESS) {
                step->key = (char *)protobuf_c_empty_string;
                step->type = 0;
                step->hlc = 0;
                step->key_in_entry = true;
            }
        } else if (k == WITH_VALUE) {
            step->key_in_entry = false;
            step->key = "k";
            step->type = entry.type;
            step->hlc = entry.entry.hlc;
            step->value = (ProtobufCBinaryData){1, &x};
        } else if (k == KEYLESS_WITH_KEY) {
            step->key = "k";
        } else if (k == KEYLESS_WITH_TYPE) {
            step->type = entry.type;
        } else if (k == KEYLESS_WITH_HLC) {
            step->hlc = entry.entry.hlc;
        } else if (k == KEYLESS_WITH_VALUE) {
            step->value_in_entry = false;
            step->value = (ProtobufCBinaryData){entry.entry.len, (uint8_t *)entry.entry.data};
        }
        uint8_t forged[512];
        assert_true(engram__stored_history__get_packed_size(step) <= sizeof forged);
        size_t forged_len = engram__stored_history__pack(step, forged);
        step->key = own_key;
        step->value = own_value;
        engram__stored_history__free_unpacked(step, NULL);
        crdt_scope_t *delta = crdt_scope_new(0);
        assert_int_equal(crdt_scope_restore_ctx(delta, crdt_scope_ctx(good)), 0);
        assert_int_equal(crdt_scope_foreach_entry(good, s_restore_into, delta), 0);
        assert_int_equal(crdt_scope_foreach_record(good, s_restore_record_into, delta), 0);
        assert_int_equal(crdt_scope_note(delta, first, bad_first ? forged : first_note,
                                         bad_first ? forged_len : first_len),
                         0);
        assert_int_equal(crdt_scope_note(delta, second, bad_first ? lean : forged,
                                         bad_first ? lean_len : forged_len),
                         0);
        if (node_store_gossip.apply(b->store, sid, delta) != ENGRAM_EDECODE)
            fail_msg("a lean step forged by way %d was not refused", k);
        assert_null(node_store_ctx(b->store, sid));
        crdt_scope_destroy(&delta);
    }
    /* Both lean forms are applied: each store holds both steps whole, as a stores them. */
    node_t *targets[2] = {b, &nodes[2]};
    const uint8_t *forms[2] = {lean, keyed};
    const size_t form_lens[2] = {lean_len, keyed_len};
    for (int k = 0; k < 2; k++) {
        crdt_scope_t *delta = crdt_scope_new(0);
        assert_int_equal(crdt_scope_restore_ctx(delta, crdt_scope_ctx(good)), 0);
        assert_int_equal(crdt_scope_foreach_entry(good, s_restore_into, delta), 0);
        assert_int_equal(crdt_scope_foreach_record(good, s_restore_record_into, delta), 0);
        assert_int_equal(crdt_scope_note(delta, first, first_note, first_len), 0);
        assert_int_equal(crdt_scope_note(delta, second, forms[k], form_lens[k]), 0);
        assert_int_equal(node_store_gossip.apply(targets[k]->store, sid, delta), 0);
        crdt_scope_destroy(&delta);
        uint64_t steps_a, steps_t;
        assert_int_equal(s_history_digest(a, sid, &steps_a),
                         s_history_digest(targets[k], sid, &steps_t));
        assert_int_equal(steps_a, 2);
        assert_int_equal(steps_t, 2);
    }
    free(lean);
    free(keyed);
    crdt_scope_destroy(&good);
    crdt_ctx_destroy(&empty);
    s_stop(nodes);
}

/*  Forgetting a log of more entries than a step lists: the write is taken, its step says
 *  removed_all, replicates, and is the same on the other node. */
static void test_big_forget_step(void **state)
{
    (void)state;
    prop_rng_t rng = prop_case("store_big_forget", 0);
    const char *sid = "run:a";
    node_t nodes[NODES], *a = &nodes[0], *b = &nodes[1];
    s_start(nodes);
    s_connect(nodes);
    uint64_t now = 1000;
    for (int i = 0; i < STORE_STEP_MAX_REMOVED + 44; i++)
        assert_int_equal(s_do(a, sid, "log", OP_APPEND, "v12"), 0);
    assert_int_equal(s_do(a, sid, "log", OP_FORGET, NULL), 0);
    s_heal(nodes, &rng, &now, 4);
    s_check_converged(nodes);
    s_history_last_t last[2] = {0};
    assert_int_equal(node_store_history(a->store, sid, "log", NULL, s_history_last, &last[0]), 0);
    assert_int_equal(node_store_history(b->store, sid, "log", NULL, s_history_last, &last[1]), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(last[i].steps, STORE_STEP_MAX_REMOVED + 45);
        assert_true(last[i].removed_all);
        assert_int_equal(last[i].nremoved, 0);
    }
    s_stop(nodes);
}

static bool s_visible_all(void *arg, const char *const *agents, size_t nagents,
                          const char *const *resources, size_t nresources)
{
    (void)arg, (void)agents, (void)nagents, (void)resources, (void)nresources;
    return true;
}

/*  Documents of sid holding term. */
static size_t s_found(node_t *n, const char *sid, const char *term)
{
    node_search_hits_t hits;
    const char *terms[1] = {term};
    assert_int_equal(node_store_search_terms(n->store, sid, terms, 1, s_visible_all, NULL, &hits),
                     0);
    size_t found = hits.n;
    node_search_hits_free(&hits);
    return found;
}

/*  A TTL purge unindexes what it deletes, in its batch; overwrites and forgets unindex too. */
static void test_index_follows_purge(void **state)
{
    (void)state;
    node_t nodes[NODES], *a = &nodes[0];
    s_start(nodes);
    const char *sid = "run:a";
    crdt_scope_t *view = NULL, *delta = NULL;
    unsigned types = 0;
    assert_int_equal(node_store_view(a->store, sid, "short", NODE_VIEW_OBJECT, NULL, &view, &types),
                     0);
    crdt_value_t *v = crdt_value_new();
    assert_non_null(v);
    v->expires_at_ms = 5000;
    assert_int_equal(crdt_value_set_data(v, "ephemeral budget", 16), 0);
    uint8_t *buf;
    size_t len;
    assert_int_equal(crdt_value_encode(v, &buf, &len), 0);
    crdt_value_destroy(&v);
    crdt_scope_t *before = crdt_scope_dup(view, 0);
    assert_int_equal(crdt_mvreg_write(view, "short", 1, buf, len, &delta), 0);
    node_history_t history = {
        .op = "put", .agent = "a", .user = "u", .hlc = 1, .expires_at_ms = 5000};
    assert_int_equal(node_store_apply(a->store, sid, "short", before, delta, &history), 0);
    free(buf);
    crdt_scope_destroy(&delta);
    crdt_scope_destroy(&before);
    crdt_scope_destroy(&view);
    assert_int_equal(s_do(a, sid, "long", OP_PUT, "v9"), 0); /* "budget" */
    assert_int_equal(s_found(a, sid, "budget"), 2);
    assert_int_equal(s_found(a, sid, "ephemer"), 1);
    /* Both ops collected (their records kept: their entries are live), then both entries
     * go, by the purge and by an overwrite: their records go with them. */
    node_store_gc_t done;
    assert_int_equal(node_store_gc(a->store, sid, node_store_ctx(a->store, sid), 8, 0, &done), 0);
    assert_int_equal(done.visited, 2);
    assert_int_equal(done.dropped, 0);
    assert_false(done.more);
    uint64_t purged = 0;
    assert_int_equal(node_store_purge(a->store, 4999, &purged), 0);
    assert_int_equal(purged, 0);
    assert_int_equal(node_store_purge(a->store, 5000, &purged), 0);
    assert_int_equal(purged, 1);
    assert_int_equal(s_garbage(a, sid), 0);
    assert_int_equal(s_found(a, sid, "ephemer"), 0);
    assert_int_equal(s_found(a, sid, "budget"), 1);
    s_check_index(a);
    assert_int_equal(s_do(a, sid, "long", OP_PUT, "v0"), 0); /* overwritten: "client" */
    assert_int_equal(s_garbage(a, sid), 0);
    assert_int_equal(s_found(a, sid, "budget"), 0);
    assert_int_equal(s_found(a, sid, "client"), 1);
    assert_int_equal(s_do(a, sid, "long", OP_FORGET, NULL), 0);
    assert_int_equal(s_found(a, sid, "client"), 0);
    s_check_index(a);
    s_stop(nodes);
}

/*  A rebuild killed after its first batch (the index and its mark dropped, nothing rebuilt
 *  yet) leaves a store that rebuilds its index when it next opens, never one that trusts a
 *  partial index. */
static void test_half_built_index(void **state)
{
    (void)state;
    node_t nodes[NODES], *a = &nodes[0];
    s_start(nodes);
    assert_int_equal(s_do(a, "run:a", "k1", OP_PUT, "v90"), 0); /* budget client */
    assert_int_equal(s_do(a, "@agent-1", "k2", OP_PUT, "v19"), 0);
    assert_int_equal(s_found(a, "run:a", "budget"), 1);
    /* what node_store_reindex writes first, and then the process dies */
    rocksdb_writebatch_t *batch = rocksdb_writebatch_create();
    const char first[1] = {0}, last[1] = {(char)0xff};
    rocksdb_writebatch_delete_range_cf(batch, a->store->cf[CF_SEARCH], first, 1, last, 1);
    rocksdb_writebatch_delete_cf(batch, a->store->cf[CF_META], STORE_INDEX_MARK,
                                 strlen(STORE_INDEX_MARK));
    char *err = NULL;
    rocksdb_write(a->store->db, a->store->write_options, batch, &err);
    rocksdb_writebatch_destroy(batch);
    assert_null(err);
    assert_int_equal(s_found(a, "run:a", "budget"), 0);
    s_close(a);
    s_open(a);
    assert_int_equal(s_found(a, "run:a", "budget"), 1);
    assert_int_equal(s_found(a, "@agent-1", "budget"), 1);
    s_check_index(a);
    s_stop(nodes);
}

/*  One collection of sid at n at its own context, without a budget: what it visited. */
static uint64_t s_gc_visits(node_t *n, const char *sid)
{
    node_store_gc_t done;
    assert_int_equal(
        node_store_gc(n->store, sid, node_store_ctx(n->store, sid), UINT64_MAX, 0, &done), 0);
    assert_false(done.more);
    return done.visited;
}

/*  A collection given an end in the past still visits NODE_STORE_GC_CLOCK_EVERY records (it
 *  reads the clock that often), then stops and says more are left; the next calls go on from
 *  there, and one without an end finishes: every dot is visited once, the overwritten
 *  records dropped. */
static void test_gc_stops_at_its_end(void **state)
{
    (void)state;
    node_t nodes[NODES], *a = &nodes[0];
    s_start(nodes);
    const char *sid = "run:a";
    char key[16];
    for (int i = 0; i < 50; i++) { /* k30..k39 twice: their first records, dots 31-40, go */
        snprintf(key, sizeof key, "k%d", i < 40 ? i : i - 10);
        assert_int_equal(s_do(a, sid, key, OP_PUT, i % 2 ? "v1" : "v2"), 0);
    }
    assert_int_equal(s_garbage(a, sid), 10);
    node_store_gc_t done;
    uint64_t visited = 0, dropped = 0;
    for (int call = 0; call < 2; call++) {
        assert_int_equal(
            node_store_gc(a->store, sid, node_store_ctx(a->store, sid), UINT64_MAX, 1, &done), 0);
        assert_int_equal(done.visited, NODE_STORE_GC_CLOCK_EVERY);
        assert_true(done.more);
        visited += done.visited;
        dropped += done.dropped;
    }
    assert_int_equal(dropped, 2); /* dots 31 and 32 */
    assert_int_equal(s_garbage(a, sid), 8);
    assert_int_equal(node_store_gc(a->store, sid, node_store_ctx(a->store, sid), UINT64_MAX,
                                   zclock_usecs() + 60 * 1000000, &done),
                     0);
    assert_false(done.more);
    visited += done.visited;
    dropped += done.dropped;
    assert_int_equal(visited, 50);
    assert_int_equal(dropped, 10);
    assert_int_equal(s_garbage(a, sid), 0);
    assert_int_equal(s_gc_visits(a, sid), 0);
    s_stop(nodes);
}

/*  A collection visits each op record once, across restarts ("gc/" in meta); a store written
 *  before "gc/" existed visits its whole cut once, then only what is new. */
static void test_gc_visits_each_record_once(void **state)
{
    (void)state;
    node_t nodes[NODES], *a = &nodes[0];
    s_start(nodes);
    const char *sid = "run:a";
    assert_int_equal(s_do(a, sid, "k1", OP_PUT, "v1"), 0);
    assert_int_equal(s_do(a, sid, "k2", OP_PUT, "v2"), 0);
    assert_int_equal(s_do(a, sid, "k3", OP_PUT, "v3"), 0);
    assert_int_equal(s_gc_visits(a, sid), 3);
    assert_int_equal(s_gc_visits(a, sid), 0);
    assert_int_equal(s_do(a, sid, "k1", OP_PUT, "v4"), 0); /* k1's first record goes with it */
    assert_int_equal(s_gc_visits(a, sid), 1);
    assert_int_equal(s_garbage(a, sid), 0);
    s_close(a);
    s_open(a);
    assert_int_equal(s_gc_visits(a, sid), 0);
    /* as an engramd from before "gc/" left it: a prune cut, no visited dots */
    char *err = NULL;
    rocksdb_delete_cf(a->store->db, a->store->write_options, a->store->cf[CF_META], "gc/run:a", 8,
                      &err);
    assert_null(err);
    s_close(a);
    s_open(a);
    assert_non_null(node_store_pruned(a->store, sid));
    assert_int_equal(s_gc_visits(a, sid), 3); /* k1's second record, k2's, k3's */
    assert_int_equal(s_gc_visits(a, sid), 0);
    assert_int_equal(s_garbage(a, sid), 0);
    s_stop(nodes);
}

/*  Bad input changes nothing. */
static void test_gc_refuses(void **state)
{
    (void)state;
    prop_rng_t rng = prop_case("store_gc_refuses", 0);
    (void)rng;
    node_t nodes[NODES];
    s_start(nodes);
    assert_int_equal(s_do(&nodes[0], "run:a", "k", OP_PUT, "v"), 0);
    assert_int_equal(s_do(&nodes[0], "@agent-1", "k", OP_PUT, "v"), 0);
    crdt_ctx_t *beyond = crdt_ctx_new();
    assert_int_equal(crdt_ctx_insert(beyond, (crdt_dot_t){42, 1}), 0);
    uint64_t pending = 7;
    node_store_gc_t done = {7, 7, true};
    assert_int_equal(node_store_gc(nodes[0].store, "run:a", beyond, 1, 0, &done), ENGRAM_EINVAL);
    assert_int_equal(done.dropped, 0);
    assert_false(done.more);
    assert_null(node_store_pruned(nodes[0].store, "run:a"));
    assert_int_equal(node_store_gc(nodes[0].store, "team:none", beyond, 1, 0, &done),
                     ENGRAM_EINVAL);
    assert_int_equal(node_store_gc(nodes[0].store, "@agent-1", beyond, 1, 0, &done), ENGRAM_ESCOPE);
    assert_int_equal(node_store_garbage(nodes[0].store, "@agent-1", &pending), ENGRAM_ESCOPE);
    assert_int_equal(node_store_garbage(nodes[0].store, "run:a", &pending), 0);
    assert_int_equal(pending, 0);
    crdt_ctx_destroy(&beyond);
    s_stop(nodes);
}

/*  How many records a store's RocksDB log holds (DIR/LOG): lines that begin with a record's
 *  date (YYYY/MM/DD-...), so that one record of many lines (a stats dump) counts once. */
static size_t s_log_records(const node_t *n)
{
    char path[96];
    snprintf(path, sizeof path, "%s/LOG", n->dir);
    FILE *log = fopen(path, "r");
    assert_non_null(log);
    size_t records = 0;
    char line[512];
    bool line_start = true;
    while (fgets(line, sizeof line, log)) {
        if (line_start && strlen(line) > 5 && line[4] == '/' && line[0] >= '0' && line[0] <= '9')
            records++;
        line_start = strchr(line, '\n') != NULL;
    }
    fclose(log);
    return records;
}

/*  How many files of RocksDB's log (LOG, LOG.old.*) a store's directory holds. */
static size_t s_log_files(const node_t *n)
{
    zdir_t *dir = zdir_new(n->dir, "-");
    assert_non_null(dir);
    zlist_t *files = zdir_list(dir);
    size_t count = 0;
    for (zfile_t *file = zlist_first(files); file; file = zlist_next(files))
        count += strncmp(zfile_filename(file, n->dir), "LOG", 3) == 0;
    zlist_destroy(&files);
    zdir_destroy(&dir);
    return count;
}

/*  RocksDB's log says what an operator needs (flushes, compactions), not a record a write:
 *  each open starts a new DIR/LOG and a close flushes it, and the log of an open with 400
 *  synced writes holds fewer than 100 records more than that of an open without (at DEBUG,
 *  two a write: some 800). The log is bounded: it rolls at every open, and after more opens
 *  than it keeps files, STORE_LOG_FILES remain. */
static void test_rocksdb_log_not_a_line_a_write(void **state)
{
    (void)state;
    node_t nodes[NODES];
    s_start(nodes);
    s_close(&nodes[0]);
    s_open(&nodes[0]);
    s_close(&nodes[0]);
    size_t idle = s_log_records(&nodes[0]);
    s_open(&nodes[0]);
    for (int i = 0; i < 400; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(s_do(&nodes[0], "run:a", key, OP_PUT, "v"), 0);
        assert_int_equal(node_store_sync(nodes[0].store), 0);
    }
    s_close(&nodes[0]);
    size_t written = s_log_records(&nodes[0]);
    assert_true(idle > 0 && written > 0);
    assert_true(written < idle + 100);
    for (int i = 0; i < STORE_LOG_FILES; i++) {
        s_open(&nodes[0]);
        s_close(&nodes[0]);
    }
    assert_int_equal(s_log_files(&nodes[0]), STORE_LOG_FILES);
    s_open(&nodes[0]);
    s_stop(nodes);
}

int main(void)
{
    zsys_handler_set(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gc_lagging_and_restored_replicas),
        cmocka_unit_test(test_stores_converge_through_gossip),
        cmocka_unit_test(test_history_is_replicated),
        cmocka_unit_test(test_reads_follow_writes),
        cmocka_unit_test(test_clock_restarts_above_its_stamps),
        cmocka_unit_test(test_objects_read_from_tables),
        cmocka_unit_test(test_purge_unpins_what_reads_kept),
        cmocka_unit_test(test_bad_steps_are_refused),
        cmocka_unit_test(test_big_forget_step),
        cmocka_unit_test(test_catch_up_matches_kernel),
        cmocka_unit_test(test_gc_visits_each_record_once),
        cmocka_unit_test(test_gc_stops_at_its_end),
        cmocka_unit_test(test_gc_refuses),
        cmocka_unit_test(test_index_follows_purge),
        cmocka_unit_test(test_half_built_index),
        cmocka_unit_test(test_rocksdb_log_not_a_line_a_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
