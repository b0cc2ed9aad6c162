/*  gossip_engine: push with dependencies, pull by version vectors, chunked answers applied as
 *  one unit (see engine.h for the protocol and its guarantees).
 *
 *  State: the peer list (with when each was last sent a digest), the outbox of encoded
 *  messages in send order, and the staging area of pull answers whose parts are still
 *  arriving. Everything else lives in the store. Staged transfers expire after
 *  STAGE_TIMEOUT_MS: a lost part costs one more pull, never a partial apply.
 */
#include "gossip/engine.h"

#include <stdlib.h>
#include <string.h>

#include "crdt/codec.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "proto/gossip.pb-c.h"

#define STAGE_TIMEOUT_MS 30000
#define MAX_CHUNKS 65536
/*  Protobuf framing around a chunk's data: scope name, ids, tags. */
#define CHUNK_OVERHEAD (ENGRAM_MAX_KEY_BYTES + 64)
/*  A held-back push asks its sender for a pull at most this often. */
#define ASK_INTERVAL_MS 50

typedef struct {
    uint64_t id;
    uint64_t asked_ms; /* when it was last sent a digest because of a held-back push */
} s_peer_t;

typedef struct {
    uint64_t peer;
    uint8_t *buf; /* owned */
    size_t len;
} s_msg_t;

/*  A pull answer whose parts are arriving. */
typedef struct {
    uint64_t from;
    uint64_t transfer;
    char *scope;        /* owned */
    uint32_t count;
    uint32_t received;
    uint8_t **parts;    /* owned, count entries, NULL until received */
    size_t *lens;
    uint64_t started_ms;
} s_stage_t;

struct gossip_engine {
    gossip_config_t config;
    const gossip_store_t *store;
    void *state;
    s_peer_t *peers;
    size_t npeers, peers_cap;
    s_msg_t *outbox; /* a FIFO: [head, n) are queued */
    size_t head, n, outbox_cap;
    s_stage_t *stages;
    size_t nstages, stages_cap;
    uint64_t rng;
    uint64_t next_transfer; /* 0 until the first event with a clock: see s_clock */
    uint64_t now_ms;
    gossip_stats_t stats;
};

/*  --- basics ------------------------------------------------------------------------ */

static uint64_t s_random(gossip_engine_t *self)
{
    uint64_t z = (self->rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static int s_grow(void **items, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *grown = realloc(*items, ncap * size);
    if (!grown)
        return ENGRAM_ENOMEM;
    *items = grown;
    *cap = ncap;
    return 0;
}

gossip_engine_t *gossip_engine_new(const gossip_config_t *config, const gossip_store_t *store,
                                   void *store_state)
{
    gossip_engine_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    if (self->config.max_message_bytes < 2 * CHUNK_OVERHEAD)
        self->config.max_message_bytes = 2 * CHUNK_OVERHEAD;
    self->store = store;
    self->state = store_state;
    self->rng = config->seed ^ config->node_id;
    return self;
}

static void s_stage_free(s_stage_t *stage)
{
    for (uint32_t i = 0; i < stage->count; i++)
        free(stage->parts[i]);
    free(stage->parts);
    free(stage->lens);
    free(stage->scope);
}

void gossip_engine_destroy(gossip_engine_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gossip_engine_t *self = *self_p;
    for (size_t i = self->head; i < self->n; i++)
        free(self->outbox[i].buf);
    free(self->outbox);
    for (size_t i = 0; i < self->nstages; i++)
        s_stage_free(&self->stages[i]);
    free(self->stages);
    free(self->peers);
    free(self);
    *self_p = NULL;
}

void gossip_engine_add_peer(gossip_engine_t *self, uint64_t peer)
{
    if (peer == self->config.node_id)
        return;
    for (size_t i = 0; i < self->npeers; i++)
        if (self->peers[i].id == peer)
            return;
    if (s_grow((void **)&self->peers, &self->peers_cap, self->npeers + 1, sizeof *self->peers))
        return;
    self->peers[self->npeers++] = (s_peer_t){peer, 0};
}

void gossip_engine_remove_peer(gossip_engine_t *self, uint64_t peer)
{
    for (size_t i = 0; i < self->npeers; i++) {
        if (self->peers[i].id == peer) {
            self->peers[i] = self->peers[--self->npeers];
            return;
        }
    }
}

const gossip_stats_t *gossip_engine_stats(const gossip_engine_t *self)
{
    return &self->stats;
}

bool gossip_engine_next(gossip_engine_t *self, uint64_t *peer, uint8_t **buf, size_t *len)
{
    if (self->head == self->n)
        return false;
    s_msg_t *msg = &self->outbox[self->head++];
    *peer = msg->peer;
    *buf = msg->buf;
    *len = msg->len;
    if (self->head == self->n)
        self->head = self->n = 0;
    return true;
}

/*  Packs a Gossip into the outbox for peer. */
static int s_send(gossip_engine_t *self, uint64_t peer, Engram__Gossip *msg)
{
    msg->schema_major = ENGRAM_SCHEMA_MAJOR;
    msg->schema_minor = ENGRAM_SCHEMA_MINOR;
    size_t len = engram__gossip__get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf || s_grow((void **)&self->outbox, &self->outbox_cap, self->n + 1,
                       sizeof *self->outbox)) {
        free(buf);
        return ENGRAM_ENOMEM;
    }
    engram__gossip__pack(msg, buf);
    self->outbox[self->n++] = (s_msg_t){peer, buf, len};
    self->stats.bytes_sent += len;
    return 0;
}

/*  Takes the clock of an event. The first one also seeds the ids of this engine's pull
 *  transfers: an engine restarted with the same seed (a crashed node) must not reuse the ids of
 *  its previous life, or a receiver could stage parts of two transfers as one. Mixing in the
 *  clock keeps replays of a simulation deterministic. */
static void s_clock(gossip_engine_t *self, uint64_t now_ms)
{
    self->now_ms = now_ms;
    if (self->next_transfer == 0) {
        self->rng ^= now_ms * UINT64_C(0xd6e8feb86659fd93);
        self->next_transfer = s_random(self) | 1;
    }
}

/*  --- push ------------------------------------------------------------------------- */

int gossip_engine_local(gossip_engine_t *self, const char *scope, const crdt_scope_t *delta,
                        const crdt_ctx_t *deps)
{
    uint8_t *deps_buf = NULL, *delta_buf = NULL;
    size_t deps_len = 0, delta_len = 0;
    int rc = crdt_ctx_encode(deps, &deps_buf, &deps_len);
    if (rc == 0)
        rc = crdt_scope_encode(delta, &delta_buf, &delta_len);
    if (rc == 0 && deps_len + delta_len + CHUNK_OVERHEAD > self->config.max_message_bytes) {
        rc = 0; /* too big to push: the peers will pull it */
        goto out_free;
    }
    Engram__GossipPush push = ENGRAM__GOSSIP_PUSH__INIT;
    push.scope = (char *)scope;
    push.deps = (ProtobufCBinaryData){deps_len, deps_buf};
    push.delta = (ProtobufCBinaryData){delta_len, delta_buf};
    Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
    msg.body_case = ENGRAM__GOSSIP__BODY_PUSH;
    msg.push = &push;
    /* A partial Fisher-Yates shuffle picks `fanout` distinct peers. */
    size_t targets = self->config.fanout < self->npeers ? self->config.fanout : self->npeers;
    for (size_t i = 0; rc == 0 && i < targets; i++) {
        size_t j = i + s_random(self) % (self->npeers - i);
        s_peer_t tmp = self->peers[i];
        self->peers[i] = self->peers[j];
        self->peers[j] = tmp;
        rc = s_send(self, self->peers[i].id, &msg);
        self->stats.pushes_sent += rc == 0;
    }
out_free:
    free(deps_buf);
    free(delta_buf);
    return rc;
}

/*  --- pull ------------------------------------------------------------------------- */

typedef struct {
    gossip_engine_t *self;
    Engram__GossipVersion *versions; /* owned array */
    Engram__GossipVersion **ptrs;
    uint8_t **bufs;                  /* owned encodings */
    size_t n, cap;
    int rc;
} s_digest_t;

static int s_digest_add(s_digest_t *d, const char *scope, const crdt_ctx_t *ctx)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        Engram__GossipVersion *v = realloc(d->versions, cap * sizeof *v);
        if (v)
            d->versions = v;
        uint8_t **b = realloc(d->bufs, cap * sizeof *b);
        if (b)
            d->bufs = b;
        if (!v || !b)
            return ENGRAM_ENOMEM;
        d->cap = cap;
    }
    crdt_ctx_t *empty = ctx ? NULL : crdt_ctx_new();
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = crdt_ctx_encode(ctx ? ctx : empty, &buf, &len);
    crdt_ctx_destroy(&empty);
    if (rc)
        return rc;
    char *name = strdup(scope);
    if (!name) {
        free(buf);
        return ENGRAM_ENOMEM;
    }
    engram__gossip_version__init(&d->versions[d->n]);
    d->versions[d->n].scope = name;
    d->versions[d->n].ctx = (ProtobufCBinaryData){len, buf};
    d->bufs[d->n++] = buf;
    return 0;
}

static void s_digest_fini(s_digest_t *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->versions[i].scope);
        free(d->bufs[i]);
    }
    free(d->versions);
    free(d->bufs);
    free(d->ptrs);
}

/*  Sends the digest to peer, split into messages within the budget (all parts partial if it
 *  had to be split, so that no part reads as "I hold nothing else"). */
static int s_send_digest(gossip_engine_t *self, uint64_t peer, s_digest_t *d, bool complete)
{
    d->ptrs = calloc(d->n ? d->n : 1, sizeof *d->ptrs);
    if (!d->ptrs)
        return ENGRAM_ENOMEM;
    size_t total = 0;
    for (size_t i = 0; i < d->n; i++) {
        d->ptrs[i] = &d->versions[i];
        total += strlen(d->versions[i].scope) + d->versions[i].ctx.len + 16;
    }
    bool split = total + 64 > self->config.max_message_bytes;
    int rc = 0;
    size_t start = 0;
    do {
        size_t end = start, size = 64;
        while (end < d->n && (end == start || size + strlen(d->versions[end].scope) +
                                                       d->versions[end].ctx.len + 16 <=
                                                   self->config.max_message_bytes)) {
            size += strlen(d->versions[end].scope) + d->versions[end].ctx.len + 16;
            end++;
        }
        Engram__GossipDigest digest = ENGRAM__GOSSIP_DIGEST__INIT;
        digest.complete = complete && !split;
        digest.versions = d->ptrs + start;
        digest.n_versions = end - start;
        Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
        msg.body_case = ENGRAM__GOSSIP__BODY_DIGEST;
        msg.digest = &digest;
        rc = s_send(self, peer, &msg);
        self->stats.digests_sent += rc == 0;
        start = end;
    } while (rc == 0 && start < d->n);
    return rc;
}

static void s_add_own(void *arg, const char *scope)
{
    s_digest_t *d = arg;
    if (d->rc == 0)
        d->rc = s_digest_add(d, scope, d->self->store->ctx(d->self->state, scope));
}

/*  A complete digest of every scope this node holds, to peer. */
static int s_send_full_digest(gossip_engine_t *self, uint64_t peer)
{
    s_digest_t d = {.self = self};
    self->store->each_scope(self->state, s_add_own, &d);
    int rc = d.rc ? d.rc : s_send_digest(self, peer, &d, true);
    s_digest_fini(&d);
    return rc;
}

/*  Answers one scope of a digest: the delta since their context, in chunks. */
static int s_answer(gossip_engine_t *self, uint64_t peer, const char *scope,
                    const crdt_ctx_t *theirs)
{
    crdt_scope_t *delta = self->store->delta_since(self->state, scope, theirs);
    if (!delta)
        return 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = crdt_scope_encode(delta, &buf, &len);
    crdt_scope_destroy(&delta);
    if (rc)
        return rc;
    size_t part = self->config.max_message_bytes - CHUNK_OVERHEAD;
    size_t count = len ? (len + part - 1) / part : 1;
    if (count > MAX_CHUNKS) {
        free(buf);
        return ENGRAM_ETOOBIG;
    }
    uint64_t transfer = self->next_transfer++;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        Engram__GossipChunk chunk = ENGRAM__GOSSIP_CHUNK__INIT;
        chunk.scope = (char *)scope;
        chunk.transfer = transfer;
        chunk.index = (uint32_t)i;
        chunk.count = (uint32_t)count;
        size_t at = i * part;
        chunk.data = (ProtobufCBinaryData){len - at < part ? len - at : part, buf + at};
        Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
        msg.body_case = ENGRAM__GOSSIP__BODY_CHUNK;
        msg.chunk = &chunk;
        rc = s_send(self, peer, &msg);
        self->stats.chunks_sent += rc == 0;
    }
    free(buf);
    self->stats.pulls_answered += rc == 0;
    return rc;
}

typedef struct {
    gossip_engine_t *self;
    uint64_t peer;
    const Engram__GossipDigest *digest;
    crdt_ctx_t **theirs; /* decoded contexts, one per digest version */
    int rc;
} s_answer_t;

static void s_answer_unlisted(void *arg, const char *scope)
{
    s_answer_t *a = arg;
    for (size_t i = 0; i < a->digest->n_versions; i++)
        if (strcmp(a->digest->versions[i]->scope, scope) == 0)
            return;
    crdt_ctx_t *empty = crdt_ctx_new();
    if (a->rc == 0)
        a->rc = empty ? s_answer(a->self, a->peer, scope, empty) : ENGRAM_ENOMEM;
    crdt_ctx_destroy(&empty);
}

static int s_on_digest(gossip_engine_t *self, uint64_t from, const Engram__GossipDigest *digest)
{
    s_answer_t a = {self, from, digest, calloc(digest->n_versions + 1, sizeof(crdt_ctx_t *)), 0};
    if (!a.theirs)
        return ENGRAM_ENOMEM;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < digest->n_versions; i++) {
        const Engram__GossipVersion *v = digest->versions[i];
        if (!v->scope[0])
            rc = ENGRAM_EDECODE;
        else
            rc = crdt_ctx_decode(v->ctx.data, v->ctx.len, &a.theirs[i]);
    }
    /* Answers: what they lack of the scopes they listed, and of the ones they lack entirely. */
    s_digest_t ask = {.self = self};
    for (size_t i = 0; rc == 0 && i < digest->n_versions; i++) {
        const char *scope = digest->versions[i]->scope;
        const crdt_ctx_t *ours = self->store->ctx(self->state, scope);
        if (ours && !crdt_ctx_covers(a.theirs[i], ours))
            rc = s_answer(self, from, scope, a.theirs[i]);
        /* Asks: what they have that we lack. */
        if (rc == 0 && !(ours ? crdt_ctx_covers(ours, a.theirs[i])
                              : crdt_ctx_is_empty(a.theirs[i])))
            rc = s_digest_add(&ask, scope, ours);
    }
    if (rc == 0 && digest->complete) {
        self->store->each_scope(self->state, s_answer_unlisted, &a);
        rc = a.rc;
    }
    if (rc == 0 && ask.n)
        rc = s_send_digest(self, from, &ask, false);
    s_digest_fini(&ask);
    for (size_t i = 0; i < digest->n_versions; i++)
        crdt_ctx_destroy(&a.theirs[i]);
    free(a.theirs);
    return rc;
}

/*  --- receiving --------------------------------------------------------------------- */

/*  Asks `from` for a pull (at most every ASK_INTERVAL_MS per peer). */
static int s_ask(gossip_engine_t *self, uint64_t from)
{
    for (size_t i = 0; i < self->npeers; i++) {
        if (self->peers[i].id != from)
            continue;
        if (self->peers[i].asked_ms && self->now_ms - self->peers[i].asked_ms < ASK_INTERVAL_MS)
            return 0;
        self->peers[i].asked_ms = self->now_ms;
        return s_send_full_digest(self, from);
    }
    return 0; /* not a peer we know: it will pull from us, or we from it, in time */
}

static int s_on_push(gossip_engine_t *self, uint64_t from, const Engram__GossipPush *push)
{
    crdt_ctx_t *deps = NULL;
    crdt_scope_t *delta = NULL;
    int rc = push->scope[0] ? crdt_ctx_decode(push->deps.data, push->deps.len, &deps)
                            : ENGRAM_EDECODE;
    if (rc == 0)
        rc = crdt_scope_decode(push->delta.data, push->delta.len, 0, &delta);
    if (rc == 0) {
        const crdt_ctx_t *ours = self->store->ctx(self->state, push->scope);
        if (ours && crdt_ctx_covers(ours, crdt_scope_ctx(delta))) {
            self->stats.pushes_redundant++; /* a duplicate or replay: nothing to do */
        } else if (crdt_ctx_is_empty(deps) || (ours && crdt_ctx_covers(ours, deps))) {
            rc = self->store->apply(self->state, push->scope, delta);
            self->stats.pushes_applied += rc == 0;
        } else {
            self->stats.pushes_held_back++; /* its cause has not arrived: pull instead */
            rc = s_ask(self, from);
        }
    }
    crdt_ctx_destroy(&deps);
    crdt_scope_destroy(&delta);
    return rc;
}

/*  Applies a complete pull answer. */
static int s_apply_answer(gossip_engine_t *self, const char *scope, const uint8_t *buf,
                          size_t len)
{
    crdt_scope_t *delta = NULL;
    int rc = crdt_scope_decode(buf, len, 0, &delta);
    if (rc == 0)
        rc = self->store->apply(self->state, scope, delta);
    self->stats.pull_deltas_applied += rc == 0;
    crdt_scope_destroy(&delta);
    return rc;
}

static int s_on_chunk(gossip_engine_t *self, uint64_t from, const Engram__GossipChunk *chunk)
{
    self->stats.chunks_received++;
    if (!chunk->scope[0] || chunk->count == 0 || chunk->count > MAX_CHUNKS ||
        chunk->index >= chunk->count)
        return ENGRAM_EDECODE;
    if (chunk->count == 1)
        return s_apply_answer(self, chunk->scope, chunk->data.data, chunk->data.len);
    s_stage_t *stage = NULL;
    for (size_t i = 0; i < self->nstages && !stage; i++)
        if (self->stages[i].from == from && self->stages[i].transfer == chunk->transfer)
            stage = &self->stages[i];
    if (!stage) {
        if (s_grow((void **)&self->stages, &self->stages_cap, self->nstages + 1,
                   sizeof *self->stages))
            return ENGRAM_ENOMEM;
        stage = &self->stages[self->nstages];
        *stage = (s_stage_t){.from = from, .transfer = chunk->transfer, .count = chunk->count,
                             .started_ms = self->now_ms};
        stage->scope = strdup(chunk->scope);
        stage->parts = calloc(chunk->count, sizeof *stage->parts);
        stage->lens = calloc(chunk->count, sizeof *stage->lens);
        if (!stage->scope || !stage->parts || !stage->lens) {
            s_stage_free(stage);
            return ENGRAM_ENOMEM;
        }
        self->nstages++;
    }
    if (stage->count != chunk->count || strcmp(stage->scope, chunk->scope) != 0)
        return ENGRAM_EDECODE; /* a part that contradicts its transfer */
    if (stage->parts[chunk->index])
        return 0; /* a duplicate part */
    stage->parts[chunk->index] = malloc(chunk->data.len ? chunk->data.len : 1);
    if (!stage->parts[chunk->index])
        return ENGRAM_ENOMEM;
    memcpy(stage->parts[chunk->index], chunk->data.data, chunk->data.len);
    stage->lens[chunk->index] = chunk->data.len;
    if (++stage->received < stage->count)
        return 0;
    /* Every part is here: apply the whole delta as one unit. */
    size_t total = 0;
    for (uint32_t i = 0; i < stage->count; i++)
        total += stage->lens[i];
    uint8_t *whole = malloc(total ? total : 1);
    int rc = whole ? 0 : ENGRAM_ENOMEM;
    for (uint32_t i = 0, at = 0; rc == 0 && i < stage->count; at += stage->lens[i], i++)
        memcpy(whole + at, stage->parts[i], stage->lens[i]);
    if (rc == 0)
        rc = s_apply_answer(self, stage->scope, whole, total);
    free(whole);
    s_stage_free(stage);
    *stage = self->stages[--self->nstages];
    return rc;
}

int gossip_engine_receive(gossip_engine_t *self, uint64_t from, const uint8_t *msg, size_t len,
                          uint64_t now_ms)
{
    s_clock(self, now_ms);
    self->stats.bytes_received += len;
    Engram__Gossip *gossip = engram__gossip__unpack(NULL, len, msg);
    int rc = gossip ? 0 : ENGRAM_EDECODE;
    if (rc == 0 && gossip->schema_major > ENGRAM_SCHEMA_MAJOR)
        rc = ENGRAM_EVERSION;
    if (rc == 0) {
        switch (gossip->body_case) {
        case ENGRAM__GOSSIP__BODY_PUSH:
            rc = s_on_push(self, from, gossip->push);
            break;
        case ENGRAM__GOSSIP__BODY_DIGEST:
            rc = s_on_digest(self, from, gossip->digest);
            break;
        case ENGRAM__GOSSIP__BODY_CHUNK:
            rc = s_on_chunk(self, from, gossip->chunk);
            break;
        default:
            rc = ENGRAM_EDECODE;
        }
    }
    if (gossip)
        engram__gossip__free_unpacked(gossip, NULL);
    self->stats.bad_messages += rc != 0 && rc != ENGRAM_ENOMEM;
    return rc;
}

void gossip_engine_tick(gossip_engine_t *self, uint64_t now_ms)
{
    s_clock(self, now_ms);
    for (size_t i = 0; i < self->nstages;) {
        if (now_ms - self->stages[i].started_ms > STAGE_TIMEOUT_MS) {
            s_stage_free(&self->stages[i]);
            self->stages[i] = self->stages[--self->nstages];
        } else {
            i++;
        }
    }
    if (self->npeers)
        s_send_full_digest(self, self->peers[s_random(self) % self->npeers].id);
}
