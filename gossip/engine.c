/*  gossip_engine: push with dependencies and acks, pull by version vectors, chunked answers
 *  applied as one unit, peer knowledge and the stable cut (see engine.h for the protocol and
 *  its guarantees). The membership is a gossip_swim_t (swim.h) the engine owns: it hands SWIM
 *  its messages and ticks, sends what SWIM emits, and learns of members through its callbacks;
 *  SWIM never calls the engine otherwise.
 *
 *  State: the SWIM object; the peer table, one entry per member that is neither this node nor
 *  LEFT, made on first use, with what that peer is known to hold per scope (contexts held in a
 *  gossip_ctx_pool_t, so equal ones are one copy), when it answered
 *  gossip_engine_ask_digests, when a held-back push last asked it for a pull and the
 *  multi-part answers recently sent to it (an entry goes when its member turns LEFT or is
 *  removed); the outbox of encoded messages in send order; the staging area of pull answers
 *  whose parts are still arriving, with their bytes counted; the pushes being coalesced; what
 *  the store can do now; this round's order of periodic digest targets; the acks owed to
 *  peers until the next tick (per peer, the scopes; the peers that have any). Everything else lives
 *  in the store. Staged transfers expire after STAGE_TIMEOUT_MS: a lost part costs one more
 *  pull, never a partial apply.
 *
 *  Ownership: the engine owns everything reachable from it. Arrays may move when they grow, so
 *  a pointer into one is valid only until the next insertion. Single-threaded: one owner.
 */
#include "gossip/engine.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "crdt/array.h"
#include "crdt/codec.h"
#include "crdt/hash.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "gossip/ctx_pool.h"
#include "gossip/round.h"
#include "gossip/swim.h"
#include "proto/gossip.pb-c.h"

#define STAGE_TIMEOUT_MS 30000
#define MAX_CHUNKS       65536
/*  Protobuf framing around a chunk's data (scope name, ids, tags): GOSSIP_CHUNK_OVERHEAD. */
#define CHUNK_OVERHEAD GOSSIP_CHUNK_OVERHEAD
/*  A held-back push asks its sender for a pull at most this often. */
#define ASK_INTERVAL_MS 50
/*  After one peer was asked for a pull (a held-back push, a digest showing what it holds, a
 *  restart's digests), no other is asked until its answer digest came or this long passed
 *  without a part of its answer: several asked peers would each send the whole gap. */
#define ASK_WAIT_MS 1000
/*  A peer whose awaited answer brought nothing (it had nothing it could send, or never
 *  answered: a failed store, a lossy link) is quiet this long: periodic digests do not await
 *  it, its digests prompt no ask of it, and it is not picked to send a restarted node its gap. */
#define QUIET_MS 10000
/*  Transfers staged per peer at most; a new one evicts that peer's oldest. */
#define MAX_STAGES_PER_PEER 4
/*  A multi-part answer for one (peer, scope) goes out at most this often. */
#define ANSWER_RESEND_MS 1000
/*  Multi-part answers remembered per peer for that limit. */
#define ANSWERED_SLOTS 4
/*  The key of the chunk hashes. */
#define CHUNK_HASH_SEED UINT64_C(0x656e6772616d)

/*  What a peer is known to hold of one scope: a slot of the peer's open-addressing table. */
typedef struct {
    char *scope;           /* owned; NULL: a free slot */
    const crdt_ctx_t *ctx; /* held in the engine's known_pool */
    bool ack_owed;         /* a push of scope from the peer awaits its ack at the next tick */
    bool ack_listed;       /* scope is in the peer's owed list (so at most once) */
} s_known_t;

/*  One multi-part pull answer sent recently to a peer, for the resend limit. */
typedef struct {
    uint64_t scope_hash;
    uint64_t sent_ms;
} s_answered_t;

/*  The replication state of one peer: a member that is neither this node nor LEFT. */
typedef struct {
    uint64_t id;
    uint64_t asked_ms;       /* when it was last sent a digest because of a held-back push */
    uint64_t answered_ms;    /* when its last answer to our `reply` digest ended (0: never) */
    uint64_t quiet_until_ms; /* not awaited until then (QUIET_MS) */
    uint32_t schema_minor;   /* of its latest message (0: none heard): what it reads */
    s_known_t *known;        /* what it holds, per scope: known_cap slots (0 or a power of two, at
                                most half full), linear probing, no deletion */
    size_t nknown, known_cap;
    size_t nforeign;   /* of nknown, the scopes this node did not hold when they were learned */
    const char **owed; /* owned array of borrowed names (its slots' scopes): the slots whose
                          ack_listed is set, each once; while non-empty, the peer's id is in
                          the engine's owing list */
    size_t nowed, owed_cap;
    s_answered_t answered[ANSWERED_SLOTS];
} s_peer_t;

typedef struct {
    uint64_t peer;
    uint8_t *buf; /* owned */
    size_t len;
    bool data;    /* push, ack, digest or chunk (else membership) */
    bool push;    /* a push (gossip_engine_next) */
    bool durable; /* what it announces was durable when queued (gossip_engine_seal) */
} s_msg_t;

/*  One received part of a staged transfer. */
typedef struct {
    uint32_t index;
    uint8_t *buf; /* owned */
    size_t len;
} s_part_t;

/*  A pull answer whose parts are arriving: keyed by (from, total, hash). */
typedef struct {
    uint64_t from;
    uint64_t total;
    uint64_t hash;
    char *scope; /* owned */
    uint32_t count;
    s_part_t *parts; /* owned, sorted by index, allocated as parts arrive */
    size_t nparts, parts_cap;
    uint64_t received_bytes;
    uint64_t started_ms;
} s_stage_t;

/*  Local operations on one scope not yet pushed: joined into one delta, with the
 *  dependencies of the first (see gossip_engine_local). */
typedef struct {
    char *scope;         /* owned */
    crdt_scope_t *delta; /* owned */
    crdt_ctx_t *deps;    /* owned */
    size_t bytes;        /* the operations' entries, summed: about their encoded size */
    bool await_ack;      /* one of them waits for its peers' acks: the push asks for them at once */
    bool sealed;         /* durable (gossip_engine_seal): drop_data keeps it */
} s_pending_t;

struct gossip_engine {
    gossip_config_t config; /* endpoint and card are NULL: the SWIM object keeps the copies */
    gossip_hooks_t hooks;
    const gossip_store_t *store;
    void *state;
    gossip_swim_t *swim; /* the membership */
    s_peer_t *peers;     /* the peer table, sorted by id */
    size_t npeers, peers_cap;
    s_msg_t *outbox; /* a FIFO: [head, n) are queued */
    size_t head, n, outbox_cap;
    size_t outbox_bytes; /* of [head, n) */
    s_stage_t *stages;
    size_t nstages, stages_cap;
    size_t staged_bytes;           /* of every staged part */
    uint64_t known_seed;           /* the key of the peer tables' hash */
    gossip_ctx_pool_t *known_pool; /* the contexts of the peer tables, equal ones shared */
    gossip_storage_t storage;
    s_pending_t *pending; /* pushes being coalesced, one per scope and sealed state */
    size_t npending, pending_cap;
    bool urgent;          /* a push asking for acks at once, or an ack sent at once, waits */
    bool queuing_durable; /* the pushes being queued are of sealed operations */
    uint64_t *owing;      /* ids of the peers with owed acks (s_ack_push), emptied at every tick; an
                             id may be stale (its peer forgotten since) or there more than once
                             (forgotten and learned again): the tick skips what it finds no debt for */
    size_t nowing, owing_cap;
    uint64_t rng;
    uint64_t next_transfer; /* 0 until the first event with a clock: see s_clock */
    uint64_t now_ms;
    uint64_t next_digest_ms;
    uint64_t asking_until_ms; /* a pull asked of asking_peer is awaited until then (s_asked) */
    uint64_t asking_peer;     /* the peer last asked for a pull and awaited */
    bool asking_progress;     /* a part of asking_peer's answer arrived since the ask */
    bool asking_refused;      /* a part of its answer refused, unreadable or unstored */
    uint64_t ask_turn;        /* which ALIVE member ask_digests asks for the deltas next: from the
                                 node id on, so restarted nodes spread their first pulls */
    gossip_round_t digests;   /* the members this round of periodic digests goes to */
    uint64_t *fault;          /* the stats counter of the current message's first fault, or NULL */
    ZSTD_CCtx *zc;            /* made at the first message compressed, then reused */
    ZSTD_DCtx *zd;            /* made at the first compressed message received, then reused */
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

static bool s_is_data(const Engram__Gossip *msg)
{
    return msg->body_case == ENGRAM__GOSSIP__BODY_PUSH ||
           msg->body_case == ENGRAM__GOSSIP__BODY_DIGEST ||
           msg->body_case == ENGRAM__GOSSIP__BODY_CHUNK ||
           msg->body_case == ENGRAM__GOSSIP__BODY_ACK;
}

/*  Whether the outbox has room for len more bytes of data (or membership) messages. */
static bool s_outbox_room(const gossip_engine_t *self, size_t len, bool data)
{
    size_t max = self->config.max_outbox_bytes * (data ? 1 : 2);
    return self->outbox_bytes <= max && len <= max - self->outbox_bytes;
}

/*  --- compression (engine.h, "Compression") ------------------------------------------- */

/*  Zstandard's fastest regular level: deltas are small, and its cost is per byte. */
#define COMPRESS_LEVEL 1

static s_peer_t *s_peer_find(const gossip_engine_t *self, uint64_t id);

/*  Whether peer reads compressed messages: its latest message says so. */
static bool s_reads_compressed(const gossip_engine_t *self, uint64_t peer)
{
    const s_peer_t *p = s_peer_find(self, peer);
    return p && p->schema_minor >= GOSSIP_COMPRESSED_MINOR;
}

/*  The compressed envelope of the encoded message buf (len bytes) in *out (*out_len bytes),
 *  when it is shorter and its frame is within GOSSIP_COMPRESS_MAX_RATIO of what it inflates
 *  to; else *out NULL. Compression is optional: a message it cannot compress (out of memory
 *  included) goes as it is. */
static void s_compress(gossip_engine_t *self, const uint8_t *buf, size_t len, uint8_t **out,
                       size_t *out_len)
{
    *out = NULL;
    if (!self->zc && !(self->zc = ZSTD_createCCtx()))
        return;
    size_t cap = ZSTD_compressBound(len);
    uint8_t *frame = malloc(cap);
    if (!frame)
        return;
    /* a one-shot frame records its content size, which the receiver checks first */
    size_t frame_len = ZSTD_compressCCtx(self->zc, frame, cap, buf, len, COMPRESS_LEVEL);
    Engram__Gossip envelope = ENGRAM__GOSSIP__INIT;
    envelope.schema_major = ENGRAM_SCHEMA_MAJOR;
    envelope.schema_minor = ENGRAM_SCHEMA_MINOR;
    envelope.body_case = ENGRAM__GOSSIP__BODY_COMPRESSED;
    envelope.compressed = (ProtobufCBinaryData){frame_len, frame};
    bool usable = !ZSTD_isError(frame_len) && len / frame_len < GOSSIP_COMPRESS_MAX_RATIO;
    size_t envelope_len = usable ? engram__gossip__get_packed_size(&envelope) : len;
    if (envelope_len < len && (*out = malloc(envelope_len)) != NULL) {
        engram__gossip__pack(&envelope, *out);
        *out_len = envelope_len;
    }
    free(frame);
}

/*  The message inside a compressed envelope, with the envelope's schema fields; NULL and *rc
 *  ENGRAM_EDECODE for anything but one frame of the current Zstandard format (a legacy or
 *  skippable frame, or more frames after it, are refused), a frame that does not record its
 *  size, records more than max_message_bytes or GOSSIP_COMPRESS_MAX_RATIO times its own
 *  length, or inflates to anything else, or a message inside that does not decode or is
 *  compressed again; NULL and ENGRAM_ENOMEM. Nothing is allocated for a frame refused. */
static Engram__Gossip *s_inflate(gossip_engine_t *self, const Engram__Gossip *envelope, int *rc)
{
    const ProtobufCBinaryData *frame = &envelope->compressed;
    *rc = ENGRAM_EDECODE;
    uint32_t magic = frame->len < 4
                         ? 0
                         : (uint32_t)frame->data[0] | (uint32_t)frame->data[1] << 8 |
                               (uint32_t)frame->data[2] << 16 | (uint32_t)frame->data[3] << 24;
    if (magic != ZSTD_MAGICNUMBER ||
        ZSTD_findFrameCompressedSize(frame->data, frame->len) != frame->len)
        return NULL;
    unsigned long long size = ZSTD_getFrameContentSize(frame->data, frame->len);
    if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR ||
        size > self->config.max_message_bytes || size / frame->len >= GOSSIP_COMPRESS_MAX_RATIO)
        return NULL;
    *rc = ENGRAM_ENOMEM;
    if (!self->zd && !(self->zd = ZSTD_createDCtx()))
        return NULL;
    uint8_t *buf = malloc(size ? (size_t)size : 1);
    if (!buf)
        return NULL;
    size_t got = ZSTD_decompressDCtx(self->zd, buf, (size_t)size, frame->data, frame->len);
    Engram__Gossip *inner =
        !ZSTD_isError(got) && got == size ? engram__gossip__unpack(NULL, (size_t)size, buf) : NULL;
    free(buf);
    if (inner && inner->body_case == ENGRAM__GOSSIP__BODY_COMPRESSED) {
        engram__gossip__free_unpacked(inner, NULL);
        inner = NULL;
    }
    *rc = inner ? 0 : ENGRAM_EDECODE;
    if (inner) {
        inner->schema_major = envelope->schema_major;
        inner->schema_minor = envelope->schema_minor;
    }
    return inner;
}

/*  A message on its way to one or more peers: encoded once, compressed at most once (for the
 *  first peer that reads compressed messages), whatever the number of peers it goes to. */
typedef struct {
    Engram__Gossip *msg;
    uint8_t *packed; /* NULL until packed */
    size_t packed_len;
    uint8_t *zipped; /* its compressed envelope, or NULL */
    size_t zipped_len;
    bool zip_tried;
} s_outgoing_t;

static void s_outgoing_fini(s_outgoing_t *w)
{
    free(w->packed);
    free(w->zipped);
}

/*  Queues w's message for peer, compressed if the peer reads that and it is shorter. 0 or
 *  ENGRAM_ENOMEM. A data message is dropped (and counted) while the store may hold what is
 *  not durable, unless it is a push of sealed operations (queuing_durable: durable), and any
 *  message when the outbox is full: both return 0, as a message lost on the way would. The
 *  outbox gets its own copy of the bytes. */
static int s_send_outgoing(gossip_engine_t *self, uint64_t peer, s_outgoing_t *w)
{
    w->msg->schema_major = ENGRAM_SCHEMA_MAJOR;
    w->msg->schema_minor = ENGRAM_SCHEMA_MINOR;
    bool data = s_is_data(w->msg);
    if (data && self->storage == GOSSIP_STORAGE_FAILED && !self->queuing_durable) {
        self->stats.data_dropped++;
        return 0;
    }
    if (!s_outbox_room(self, 0, data)) { /* full already: not worth packing */
        self->stats.outbox_dropped++;
        return 0;
    }
    if (!w->packed) {
        w->packed_len = engram__gossip__get_packed_size(w->msg);
        if (!(w->packed = malloc(w->packed_len ? w->packed_len : 1)))
            return ENGRAM_ENOMEM;
        engram__gossip__pack(w->msg, w->packed);
    }
    bool zip = w->packed_len >= GOSSIP_COMPRESS_MIN_BYTES && s_reads_compressed(self, peer);
    if (zip && !w->zip_tried) {
        w->zip_tried = true;
        s_compress(self, w->packed, w->packed_len, &w->zipped, &w->zipped_len);
    }
    zip = zip && w->zipped;
    const uint8_t *bytes = zip ? w->zipped : w->packed;
    size_t len = zip ? w->zipped_len : w->packed_len;
    if (!s_outbox_room(self, len, data)) {
        self->stats.outbox_dropped++;
        return 0;
    }
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf || crdt_array_grow((void **)&self->outbox, &self->outbox_cap, self->n + 1,
                                sizeof *self->outbox)) {
        free(buf);
        return ENGRAM_ENOMEM;
    }
    memcpy(buf, bytes, len);
    self->stats.compressed_sent += zip;
    self->stats.compression_saved += w->packed_len - len;
    self->outbox[self->n++] = (s_msg_t){
        .peer = peer,
        .buf = buf,
        .len = len,
        .data = data,
        .push = w->msg->body_case == ENGRAM__GOSSIP__BODY_PUSH,
        .durable = self->queuing_durable,
    };
    self->outbox_bytes += len;
    self->stats.bytes_sent += len;
    return 0;
}

/*  Queues msg for one peer (s_send_outgoing). */
static int s_send(gossip_engine_t *self, uint64_t peer, Engram__Gossip *msg)
{
    s_outgoing_t w = {.msg = msg};
    int rc = s_send_outgoing(self, peer, &w);
    s_outgoing_fini(&w);
    return rc;
}

/*  This node is LEFT: it no longer pushes, pulls or digests. */
static bool s_left(const gossip_engine_t *self)
{
    gossip_member_t me;
    return gossip_swim_member(self->swim, self->config.node_id, &me) && me.state == GOSSIP_LEFT;
}

bool gossip_engine_scope_ok(const char *scope)
{
    size_t len = strnlen(scope, ENGRAM_MAX_KEY_BYTES + 1);
    const char *colon = memchr(scope, ':', len);
    if (len > ENGRAM_MAX_KEY_BYTES || !colon || colon == scope || colon == scope + len - 1)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)scope[i] < 0x20 || scope[i] == 0x7f)
            return false;
    return true;
}

/*  Whether a scope name from a peer passes the store's check (else the message's fault). */
static bool s_scope_checked(gossip_engine_t *self, const char *scope)
{
    bool ok = self->store->scope_ok ? self->store->scope_ok(self->state, scope)
                                    : gossip_engine_scope_ok(scope);
    if (!ok)
        self->fault = &self->stats.bad_scope;
    return ok;
}

/*  --- the peer table ----------------------------------------------------------------- */

static int s_peer_cmp(const void *key, const void *entry)
{
    uint64_t id = *(const uint64_t *)key, other = ((const s_peer_t *)entry)->id;
    return id < other ? -1 : id > other;
}

/*  The entry of peer id, or NULL. */
static s_peer_t *s_peer_find(const gossip_engine_t *self, uint64_t id)
{
    return self->npeers ? bsearch(&id, self->peers, self->npeers, sizeof *self->peers, s_peer_cmp)
                        : NULL;
}

/*  Sets *peer_p to the entry of id, made on first use, or to NULL when id is not a peer
 *  (unknown, LEFT or this node). 0 or ENGRAM_ENOMEM. */
static int s_peer(gossip_engine_t *self, uint64_t id, s_peer_t **peer_p)
{
    gossip_member_t m;
    *peer_p = s_peer_find(self, id);
    if (*peer_p || id == self->config.node_id || !gossip_swim_member(self->swim, id, &m) ||
        m.state == GOSSIP_LEFT)
        return 0;
    if (crdt_array_grow((void **)&self->peers, &self->peers_cap, self->npeers + 1,
                        sizeof *self->peers))
        return ENGRAM_ENOMEM;
    size_t at = 0;
    while (at < self->npeers && self->peers[at].id < id)
        at++;
    memmove(&self->peers[at + 1], &self->peers[at], (self->npeers - at) * sizeof *self->peers);
    self->npeers++;
    self->peers[at] = (s_peer_t){.id = id};
    *peer_p = &self->peers[at];
    return 0;
}

static void s_peer_fini(gossip_engine_t *self, s_peer_t *p)
{
    for (size_t i = 0; i < p->known_cap; i++) {
        free(p->known[i].scope);
        gossip_ctx_pool_release(self->known_pool, &p->known[i].ctx);
    }
    free(p->known);
    free(p->owed);
}

/*  The slot of scope in p's table: its own, or the free one where it would go. p->known_cap
 *  must be non-zero. */
static s_known_t *s_known_slot(const gossip_engine_t *self, const s_peer_t *p, const char *scope)
{
    size_t mask = p->known_cap - 1;
    size_t i = (size_t)crdt_hash(scope, strlen(scope), self->known_seed) & mask;
    while (p->known[i].scope && strcmp(p->known[i].scope, scope) != 0)
        i = (i + 1) & mask;
    return &p->known[i];
}

/*  What p is known to hold of scope, or NULL. */
static const crdt_ctx_t *s_known_ctx(const gossip_engine_t *self, const s_peer_t *p,
                                     const char *scope)
{
    return p && p->known_cap ? s_known_slot(self, p, scope)->ctx : NULL;
}

/*  Makes room for one more scope in p's table (doubling it past half full). 0 or ENOMEM. */
static int s_known_reserve(const gossip_engine_t *self, s_peer_t *p)
{
    if (2 * (p->nknown + 1) <= p->known_cap)
        return 0;
    size_t cap = p->known_cap ? 2 * p->known_cap : 16;
    s_known_t *old = p->known;
    size_t old_cap = p->known_cap;
    p->known = calloc(cap, sizeof *p->known);
    if (!p->known) {
        p->known = old;
        return ENGRAM_ENOMEM;
    }
    p->known_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].scope)
            *s_known_slot(self, p, old[i].scope) = old[i];
    free(old);
    return 0;
}

static void s_stage_drop(gossip_engine_t *self, size_t i);

/*  Drops what is staged from peer and its entry: it is LEFT or removed. */
static void s_forget_peer(gossip_engine_t *self, uint64_t peer)
{
    for (size_t i = 0; i < self->nstages;) {
        if (self->stages[i].from == peer)
            s_stage_drop(self, i);
        else
            i++;
    }
    s_peer_t *p = s_peer_find(self, peer);
    if (!p)
        return;
    s_peer_fini(self, p);
    size_t at = (size_t)(p - self->peers);
    memmove(p, p + 1, (self->npeers - at - 1) * sizeof *p);
    self->npeers--;
}

/*  --- SWIM's callbacks: the engine's side of the membership --------------------------- */

static int s_swim_send(void *arg, uint64_t to, Engram__Gossip *msg)
{
    return s_send(arg, to, msg);
}

/*  The engine's random source as a callback (SWIM's, the rounds' shuffles). */
static uint64_t s_random_of(void *arg)
{
    return s_random(arg);
}

static void s_swim_changed(void *arg, const gossip_member_t *member)
{
    gossip_engine_t *self = arg;
    if (self->hooks.changed)
        self->hooks.changed(self->hooks.arg, member);
    if (member->state == GOSSIP_LEFT) {
        s_forget_peer(self, member->id);
        return;
    }
    /* a new incarnation may be another version (a restart, a downgrade), and a member in
     * doubt may come back as one: whole notes until its next message says what it reads */
    s_peer_t *p = s_peer_find(self, member->id);
    if (p)
        p->schema_minor = 0;
}

static bool s_swim_admit(void *arg, uint64_t id, const uint8_t *card, size_t len)
{
    gossip_engine_t *self = arg;
    return !self->hooks.admit || self->hooks.admit(self->hooks.arg, id, card, len);
}

static bool s_swim_verify_leave(void *arg, uint64_t id, const uint8_t *stmt, size_t len)
{
    gossip_engine_t *self = arg;
    return !self->hooks.verify_leave || self->hooks.verify_leave(self->hooks.arg, id, stmt, len);
}

/*  The stats counter of a fault SWIM reported, or NULL for none. */
static uint64_t *s_swim_fault(gossip_engine_t *self, gossip_swim_fault_t fault)
{
    switch (fault) {
    case GOSSIP_SWIM_FAULT_NONE:
        return NULL;
    case GOSSIP_SWIM_FAULT_DECODE:
        return &self->stats.bad_decode;
    case GOSSIP_SWIM_FAULT_UNKNOWN_SENDER:
        return &self->stats.bad_unknown_sender;
    case GOSSIP_SWIM_FAULT_LEFT_SENDER:
        return &self->stats.bad_left_sender;
    case GOSSIP_SWIM_FAULT_CARD:
        return &self->stats.bad_card;
    case GOSSIP_SWIM_FAULT_LEAVE:
        return &self->stats.bad_leave;
    }
    return NULL;
}

/*  Copies SWIM's counters into the engine's stats: after every call into SWIM that may move
 *  them, so that a caller's pointer to the stats stays current. */
static void s_swim_stats(gossip_engine_t *self)
{
    self->stats.swim = *gossip_swim_stats(self->swim);
}

gossip_engine_t *gossip_engine_new(const gossip_config_t *config, const gossip_store_t *store,
                                   void *store_state)
{
    gossip_engine_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    if (self->config.max_message_bytes < GOSSIP_MIN_MESSAGE_BYTES)
        self->config.max_message_bytes = GOSSIP_MIN_MESSAGE_BYTES;
    /* the bounds scale with the budget, from a floor that small budgets share */
    size_t budget = self->config.max_message_bytes < GOSSIP_DEFAULT_BUDGET_FLOOR
                        ? GOSSIP_DEFAULT_BUDGET_FLOOR
                        : self->config.max_message_bytes;
    if (!self->config.max_peer_scopes)
        self->config.max_peer_scopes = GOSSIP_DEFAULT_MAX_PEER_SCOPES;
    if (!self->config.max_staged_peer_bytes)
        self->config.max_staged_peer_bytes = GOSSIP_DEFAULT_STAGED_PEER_BUDGETS * budget;
    if (!self->config.max_staged_bytes)
        self->config.max_staged_bytes = GOSSIP_DEFAULT_STAGED_BUDGETS * budget;
    if (!self->config.max_outbox_bytes)
        self->config.max_outbox_bytes = GOSSIP_DEFAULT_OUTBOX_BUDGETS * budget;
    self->store = store;
    self->state = store_state;
    self->rng = config->seed ^ config->node_id;
    self->ask_turn = config->node_id;
    self->known_seed = s_random(self);
    self->known_pool = gossip_ctx_pool_new(self->known_seed);
    gossip_swim_config_t swim = {.node_id = config->node_id,
                                 .endpoint = config->endpoint,
                                 .card = config->card,
                                 .card_len = config->card_len,
                                 .incarnation = config->incarnation,
                                 .max_message_bytes = self->config.max_message_bytes,
                                 .probe_interval_ms = config->probe_interval_ms,
                                 .probe_timeout_ms = config->probe_timeout_ms,
                                 .suspicion_mult = config->suspicion_mult,
                                 .indirect_probes = config->indirect_probes,
                                 .sync_interval_ms = config->sync_interval_ms};
    gossip_swim_callbacks_t callbacks = {s_swim_send,  s_swim_changed,      s_random_of,
                                         s_swim_admit, s_swim_verify_leave, self};
    self->config.endpoint = NULL;
    self->config.card = NULL;
    self->swim = gossip_swim_new(&swim, &callbacks);
    if (!self->swim || !self->known_pool)
        gossip_engine_destroy(&self);
    return self;
}

static void s_stage_free(s_stage_t *stage)
{
    for (size_t i = 0; i < stage->nparts; i++)
        free(stage->parts[i].buf);
    free(stage->parts);
    free(stage->scope);
}

static void s_stage_drop(gossip_engine_t *self, size_t i)
{
    self->staged_bytes -= self->stages[i].received_bytes;
    s_stage_free(&self->stages[i]);
    self->stages[i] = self->stages[--self->nstages];
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
    for (size_t i = 0; i < self->npending; i++) {
        free(self->pending[i].scope);
        crdt_scope_destroy(&self->pending[i].delta);
        crdt_ctx_destroy(&self->pending[i].deps);
    }
    free(self->pending);
    free(self->owing);
    for (size_t i = 0; i < self->npeers; i++)
        s_peer_fini(self, &self->peers[i]);
    free(self->peers);
    gossip_round_free(&self->digests);
    gossip_ctx_pool_destroy(&self->known_pool);
    gossip_swim_destroy(&self->swim);
    ZSTD_freeCCtx(self->zc);
    ZSTD_freeDCtx(self->zd);
    free(self);
    *self_p = NULL;
}

/*  --- membership, through SWIM ----------------------------------------------------- */

void gossip_engine_set_hooks(gossip_engine_t *self, const gossip_hooks_t *hooks)
{
    assert(self && hooks);
    self->hooks = *hooks;
}

int gossip_engine_learn(gossip_engine_t *self, const gossip_member_t *member)
{
    int rc = gossip_swim_learn(self->swim, member, self->now_ms);
    s_swim_stats(self);
    return rc;
}

int gossip_engine_leave(gossip_engine_t *self, uint64_t id, const uint8_t *stmt, size_t len)
{
    int rc = gossip_swim_leave(self->swim, id, stmt, len, self->now_ms);
    s_swim_stats(self);
    return rc;
}

void gossip_engine_each_member(gossip_engine_t *self,
                               void (*fn)(void *arg, const gossip_member_t *member), void *arg)
{
    for (size_t i = 0; i < gossip_swim_size(self->swim); i++) {
        gossip_member_t view;
        gossip_swim_at(self->swim, i, &view);
        fn(arg, &view);
    }
}

bool gossip_engine_member(gossip_engine_t *self, uint64_t id, gossip_member_t *member)
{
    return gossip_swim_member(self->swim, id, member);
}

void gossip_engine_add_peer(gossip_engine_t *self, uint64_t peer)
{
    gossip_swim_add(self->swim, peer, self->now_ms);
}

void gossip_engine_remove_peer(gossip_engine_t *self, uint64_t peer)
{
    if (peer == self->config.node_id)
        return;
    s_forget_peer(self, peer);
    gossip_swim_remove(self->swim, peer);
}

unsigned gossip_engine_health(const gossip_engine_t *self)
{
    return gossip_swim_health(self->swim);
}

const gossip_stats_t *gossip_engine_stats(const gossip_engine_t *self)
{
    return &self->stats;
}

size_t gossip_engine_staged(const gossip_engine_t *self)
{
    return self->nstages;
}

size_t gossip_engine_staged_bytes(const gossip_engine_t *self)
{
    return self->staged_bytes;
}

size_t gossip_engine_outbox_bytes(const gossip_engine_t *self)
{
    return self->outbox_bytes;
}

void gossip_engine_set_storage(gossip_engine_t *self, gossip_storage_t storage)
{
    assert(self);
    self->storage = storage;
}

gossip_storage_t gossip_engine_storage(const gossip_engine_t *self)
{
    return self->storage;
}

static int s_flush_scope(gossip_engine_t *self, const char *scope);
static int s_flush_pending(gossip_engine_t *self, size_t i);

void gossip_engine_drop_data(gossip_engine_t *self)
{
    for (size_t i = 0; i < self->npending;) {
        s_pending_t *p = &self->pending[i];
        if (p->sealed) {
            i++;
            continue;
        }
        free(p->scope);
        crdt_scope_destroy(&p->delta);
        crdt_ctx_destroy(&p->deps);
        self->stats.data_dropped++;
        self->pending[i] = self->pending[--self->npending];
    }
    size_t kept = self->head;
    for (size_t i = self->head; i < self->n; i++) {
        s_msg_t msg = self->outbox[i];
        if (msg.data && !msg.durable) {
            self->outbox_bytes -= msg.len;
            free(msg.buf);
            self->stats.data_dropped++;
        } else {
            self->outbox[kept++] = msg;
        }
    }
    self->n = kept;
    if (self->head == self->n)
        self->head = self->n = 0;
    s_flush_scope(self, NULL); /* the sealed operations: durable pushes, whatever the storage */
}

bool gossip_engine_has_data(const gossip_engine_t *self)
{
    if (self->npending)
        return true;
    for (size_t i = self->head; i < self->n; i++)
        if (self->outbox[i].data)
            return true;
    return false;
}

void gossip_engine_unsent(gossip_engine_t *self, uint64_t peer)
{
    if (peer == self->asking_peer)
        self->asking_until_ms = 0; /* the ask may not have left: nothing to blame it for */
}

bool gossip_engine_next(gossip_engine_t *self, uint64_t *peer, uint8_t **buf, size_t *len,
                        bool *push)
{
    if (self->npending)
        s_flush_scope(self, NULL); /* the local operations since the last call, coalesced */
    if (self->head == self->n) {
        self->urgent = false;
        return false;
    }
    s_msg_t *msg = &self->outbox[self->head++];
    *peer = msg->peer;
    *buf = msg->buf;
    *len = msg->len;
    if (push)
        *push = msg->push;
    self->outbox_bytes -= msg->len;
    if (self->head == self->n)
        self->head = self->n = 0;
    return true;
}

void gossip_engine_seal(gossip_engine_t *self)
{
    for (size_t i = self->head; i < self->n; i++)
        self->outbox[i].durable = true;
    for (size_t i = 0; i < self->npending;) {
        s_pending_t *open = &self->pending[i];
        if (open->sealed) {
            i++;
            continue;
        }
        s_pending_t *kept = NULL;
        for (size_t k = 0; k < self->npending && !kept; k++)
            if (self->pending[k].sealed && strcmp(self->pending[k].scope, open->scope) == 0)
                kept = &self->pending[k];
        /* one push stays within the budget (gossip_engine_local): a full one goes as it is */
        if (kept &&
            kept->bytes + open->bytes + CHUNK_OVERHEAD > self->config.max_message_bytes / 2) {
            size_t at = (size_t)(kept - self->pending);
            s_flush_pending(self, at); /* an error loses the push: anti-entropy brings it */
            i = 0;                     /* the flush moved the last entry into `at` */
            continue;
        }
        if (kept && crdt_scope_join(kept->delta, open->delta) == 0) {
            kept->bytes += open->bytes;
            kept->await_ack |= open->await_ack;
            self->stats.pushes_coalesced++;
            free(open->scope);
            crdt_scope_destroy(&open->delta);
            crdt_ctx_destroy(&open->deps);
            self->pending[i] = self->pending[--self->npending];
            continue;
        }
        if (kept) { /* out of memory joining: the sealed one goes first, then this one */
            size_t at = (size_t)(kept - self->pending);
            s_flush_pending(self, at);
            i = 0;
            continue;
        }
        open->sealed = true;
        i++;
    }
}

bool gossip_engine_urgent(const gossip_engine_t *self)
{
    return self->urgent;
}

static void s_awaited_end(gossip_engine_t *self);

/*  Takes the clock of an event. The first one also seeds the ids of this engine's pull
 *  transfers: an engine restarted with the same seed (a crashed node) must not reuse the ids of
 *  its previous life, or a receiver could stage parts of two transfers as one. Mixing in the
 *  clock keeps replays of a simulation deterministic. A pull answer awaited past its time is
 *  no longer awaited (s_awaited_end). */
static void s_clock(gossip_engine_t *self, uint64_t now_ms)
{
    self->now_ms = now_ms;
    if (self->asking_until_ms > now_ms + ASK_WAIT_MS)
        self->asking_until_ms = now_ms + ASK_WAIT_MS; /* the clock stepped back */
    if (self->asking_until_ms && now_ms >= self->asking_until_ms)
        s_awaited_end(self); /* the wait ran out */
    if (self->next_transfer == 0) {
        self->rng ^= now_ms * UINT64_C(0xd6e8feb86659fd93);
        self->next_transfer = s_random(self) | 1;
    }
}

/*  --- push ------------------------------------------------------------------------- */

/*  The schema minor whose wire form of notes (the store's note_wire) peer reads: that of its
 *  messages, as far as this node knows its forms; 0 when it reads none (notes go whole). */
static uint32_t s_reader_minor(const gossip_engine_t *self, uint64_t peer)
{
    const s_peer_t *p = s_peer_find(self, peer);
    if (!self->store->note_wire || !p || p->schema_minor < GOSSIP_LEAN_NOTES_MINOR)
        return 0;
    return p->schema_minor < ENGRAM_SCHEMA_MINOR ? p->schema_minor : ENGRAM_SCHEMA_MINOR;
}

typedef struct {
    gossip_engine_t *self;
    uint32_t reader_minor;
    size_t lean; /* notes the store put in a shorter form */
} s_wire_t;

static int s_note_wire(void *arg, crdt_dot_t op, const uint8_t *note, size_t len,
                       const crdt_dot_entry_t *entry, uint8_t **out, size_t *out_len)
{
    s_wire_t *w = arg;
    int rc = w->self->store->note_wire(w->self->state, w->reader_minor, op, note, len, entry, out,
                                       out_len);
    w->lean += rc == 0 && *out;
    return rc;
}

/*  Encodes delta for peers of schema minor reader_minor (s_reader_minor: 0, notes whole);
 *  *lean_notes (if not NULL): how many notes went in their wire form. */
static int s_encode_delta(gossip_engine_t *self, const crdt_scope_t *delta, uint32_t reader_minor,
                          uint8_t **buf, size_t *len, size_t *lean_notes)
{
    s_wire_t w = {self, reader_minor, 0};
    int rc = reader_minor ? crdt_scope_encode_wire(delta, s_note_wire, &w, buf, len)
                          : crdt_scope_encode(delta, buf, len);
    if (lean_notes)
        *lean_notes = w.lean;
    return rc;
}

/*  Sends a push of delta with deps to `fanout` random members, ALIVE ones first, then SUSPECT
 *  ones, its notes in their wire form to those that read it; with ack_later unless await_ack.
 *  A SUSPECT member is most often alive and merely slow (a loaded host, a stalled turn):
 *  skipping it would leave it without the write until the next digest, for the sake of saving
 *  one message to a member that may be gone (memberlist, SWIM's best-known implementation,
 *  gossips to suspects too). */
static int s_push(gossip_engine_t *self, const char *scope, const crdt_scope_t *delta,
                  const crdt_ctx_t *deps, bool await_ack)
{
    uint8_t *deps_buf = NULL, *delta_buf = NULL;
    size_t deps_len = 0, delta_len = 0;
    int rc = crdt_ctx_encode(deps, &deps_buf, &deps_len);
    if (rc == 0)
        rc = crdt_scope_encode(delta, &delta_buf, &delta_len);
    if (rc == 0 && deps_len + delta_len + CHUNK_OVERHEAD > self->config.max_message_bytes) {
        rc = 0; /* too big to push: the peers will pull it */
        self->stats.pushes_too_big++;
        free(deps_buf);
        free(delta_buf);
        return rc;
    }
    Engram__GossipPush push = ENGRAM__GOSSIP_PUSH__INIT;
    push.scope = (char *)scope;
    push.deps = (ProtobufCBinaryData){deps_len, deps_buf};
    push.ack_later = !await_ack;
    Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
    msg.body_case = ENGRAM__GOSSIP__BODY_PUSH;
    msg.push = &push;
    /* One form of the delta per schema minor its targets read (forms[0]: notes whole), each
     * encoded, packed and compressed once for every peer it goes to, at first use. */
    struct {
        uint8_t *buf;
        size_t len, lean_notes;
        s_outgoing_t out;
    } forms[ENGRAM_SCHEMA_MINOR + 1] = {{delta_buf, delta_len, 0, {.msg = &msg}}};
    for (size_t f = 1; f <= ENGRAM_SCHEMA_MINOR; f++)
        forms[f].out.msg = &msg;
    /* A partial Fisher-Yates shuffle picks `fanout` distinct members: ALIVE ones first (live[0,
     * nalive)), SUSPECT ones (live[nalive, nlive)) for the slots left, so that a member that
     * is really gone takes no slot from a live one. */
    size_t nmembers = gossip_swim_size(self->swim);
    uint64_t *live = malloc((nmembers ? nmembers : 1) * sizeof *live);
    size_t nalive = 0, nlive = 0;
    if (!live)
        rc = ENGRAM_ENOMEM;
    for (int pass = 0; live && pass < 2; pass++) {
        for (size_t i = 0; i < nmembers; i++) {
            gossip_member_t m;
            gossip_swim_at(self->swim, i, &m);
            if (m.state == (pass ? GOSSIP_SUSPECT : GOSSIP_ALIVE) && m.id != self->config.node_id)
                live[nlive++] = m.id;
        }
        nalive = pass ? nalive : nlive;
    }
    size_t targets = self->config.fanout < nlive ? self->config.fanout : nlive;
    for (size_t i = 0; rc == 0 && i < targets; i++) {
        size_t j = i + s_random(self) % ((i < nalive ? nalive : nlive) - i);
        uint64_t tmp = live[i];
        live[i] = live[j];
        live[j] = tmp;
        uint32_t minor = s_reader_minor(self, live[i]);
        if (!forms[minor].buf)
            rc = s_encode_delta(self, delta, minor, &forms[minor].buf, &forms[minor].len,
                                &forms[minor].lean_notes);
        push.delta = (ProtobufCBinaryData){forms[minor].len, forms[minor].buf};
        if (rc == 0)
            rc = s_send_outgoing(self, live[i], &forms[minor].out);
        self->stats.pushes_sent += rc == 0;
        self->stats.lean_deltas += rc == 0 && forms[minor].lean_notes > 0;
    }
    free(live);
    for (size_t f = 0; f <= ENGRAM_SCHEMA_MINOR; f++) {
        free(forms[f].buf);
        s_outgoing_fini(&forms[f].out);
    }
    free(deps_buf);
    return rc;
}

/*  Pushes the coalesced operations of pending[i] and forgets them. */
static int s_flush_pending(gossip_engine_t *self, size_t i)
{
    s_pending_t *p = &self->pending[i];
    self->queuing_durable = p->sealed;
    int rc = s_left(self) ? 0 : s_push(self, p->scope, p->delta, p->deps, p->await_ack);
    self->queuing_durable = false;
    free(p->scope);
    crdt_scope_destroy(&p->delta);
    crdt_ctx_destroy(&p->deps);
    self->pending[i] = self->pending[--self->npending];
    return rc;
}

/*  Pushes what is pending for scope (NULL: for every scope), the sealed operations of a scope
 *  before the later ones, which depend on them. */
static int s_flush_scope(gossip_engine_t *self, const char *scope)
{
    int rc = 0;
    for (int sealed = 1; sealed >= 0; sealed--) {
        for (size_t i = 0; i < self->npending;) {
            s_pending_t *p = &self->pending[i];
            if (p->sealed == sealed && (!scope || strcmp(p->scope, scope) == 0)) {
                int r = s_flush_pending(self, i);
                rc = rc ? rc : r;
            } else {
                i++;
            }
        }
    }
    return rc;
}

/*  Adds what an entry weighs in an encoded delta, near enough to budget a push (the dot, times
 *  and tags are within the 32). Encoding every operation to learn its size would encode it
 *  twice: once here, once in its push. */
static int s_add_entry_bytes(void *arg, crdt_type_id_t type, const char *key,
                             const crdt_entry_view_t *entry)
{
    (void)type;
    *(size_t *)arg += strlen(key) + strlen(entry->elem) + entry->len + 32;
    return 0;
}

/*  Adds what a note (an operation's history step) weighs, likewise. */
static int s_add_note_bytes(void *arg, crdt_dot_t op, const uint8_t *data, size_t len)
{
    (void)op, (void)data;
    *(size_t *)arg += len + 32;
    return 0;
}

int gossip_engine_local(gossip_engine_t *self, const char *scope, const crdt_scope_t *delta,
                        const crdt_ctx_t *deps, bool await_ack)
{
    if (s_left(self))
        return 0;
    size_t len = 0;
    crdt_scope_foreach_entry(delta, s_add_entry_bytes, &len);
    crdt_scope_foreach_note(delta, s_add_note_bytes, &len);
    int rc = 0;
    self->urgent |= await_ack;
    s_pending_t *p = NULL;
    for (size_t i = 0; i < self->npending && !p; i++)
        if (!self->pending[i].sealed && strcmp(self->pending[i].scope, scope) == 0)
            p = &self->pending[i];
    /* one push stays within the budget: past half of it, the batch goes out as it is (after
     * the scope's sealed one, on which it depends) */
    if (p && p->bytes + len + CHUNK_OVERHEAD > self->config.max_message_bytes / 2) {
        rc = s_flush_scope(self, scope);
        p = NULL;
        if (rc)
            return rc;
    }
    if (p) {
        rc = crdt_scope_join(p->delta, delta);
        if (rc == 0) {
            p->bytes += len;
            p->await_ack |= await_ack;
            self->stats.pushes_coalesced++;
        }
        return rc;
    }
    if (crdt_array_grow((void **)&self->pending, &self->pending_cap, self->npending + 1,
                        sizeof *self->pending))
        return ENGRAM_ENOMEM;
    p = &self->pending[self->npending];
    *p = (s_pending_t){.scope = strdup(scope),
                       .delta = crdt_scope_dup(delta, 0),
                       .deps = crdt_ctx_dup(deps),
                       .bytes = len,
                       .await_ack = await_ack};
    if (!p->scope || !p->delta || !p->deps) {
        free(p->scope);
        crdt_scope_destroy(&p->delta);
        crdt_ctx_destroy(&p->deps);
        return ENGRAM_ENOMEM;
    }
    self->npending++;
    return 0;
}

/*  --- peer knowledge ------------------------------------------------------------------ */

/*  Records that peer holds ctx of scope (the latest report wins: a peer restored from an old
 *  snapshot must not be credited with what it lost). */
static int s_know(gossip_engine_t *self, uint64_t peer, const char *scope, const crdt_ctx_t *ctx)
{
    s_peer_t *p;
    int rc = s_peer(self, peer, &p);
    if (rc || !p)
        return rc;
    s_known_t *slot = p->known_cap ? s_known_slot(self, p, scope) : NULL;
    bool foreign = !(slot && slot->scope) && !self->store->ctx(self->state, scope);
    if (foreign && p->nforeign >= self->config.max_peer_scopes)
        return 0; /* s_may_know refused the message already; a defensive stop */
    const crdt_ctx_t *copy = gossip_ctx_pool_hold(self->known_pool, ctx);
    if (!copy)
        return ENGRAM_ENOMEM;
    if (slot && slot->scope) {
        gossip_ctx_pool_release(self->known_pool, &slot->ctx);
        slot->ctx = copy;
        return 0;
    }
    char *name = strdup(scope);
    if (!name || s_known_reserve(self, p)) {
        free(name);
        gossip_ctx_pool_release(self->known_pool, &copy);
        return ENGRAM_ENOMEM;
    }
    *s_known_slot(self, p, scope) = (s_known_t){.scope = name, .ctx = copy};
    p->nknown++;
    p->nforeign += foreign;
    return 0;
}

/*  Whether peer may make this node remember the scopes named in a message: the scope `one`,
 *  or else the n scopes of versions (some may be known already, some held here: those do not
 *  count). False (the message's fault set) when its foreign scopes would pass
 *  max_peer_scopes. */
static bool s_may_know(gossip_engine_t *self, uint64_t peer, const char *one,
                       Engram__GossipVersion *const *versions, size_t n)
{
    const s_peer_t *p = s_peer_find(self, peer);
    size_t known = p ? p->nforeign : 0, fresh = 0;
    for (size_t i = 0; i < (one ? 1 : n); i++) {
        const char *scope = one ? one : versions[i]->scope;
        fresh += !(p && p->known_cap && s_known_slot(self, p, scope)->scope) &&
                 !self->store->ctx(self->state, scope);
    }
    if (fresh == 0 || known + fresh <= self->config.max_peer_scopes)
        return true;
    self->fault = &self->stats.bad_peer_scopes;
    return false;
}

const crdt_ctx_t *gossip_engine_peer_ctx(gossip_engine_t *self, uint64_t peer, const char *scope)
{
    assert(self && scope);
    return s_known_ctx(self, s_peer_find(self, peer), scope);
}

crdt_ctx_t *gossip_engine_stable_cut(gossip_engine_t *self, const char *scope)
{
    assert(self && scope);
    const crdt_ctx_t *ours = self->store->ctx(self->state, scope);
    crdt_ctx_t *cut = ours ? crdt_ctx_dup(ours) : crdt_ctx_new();
    /* peers mostly hold equal contexts, one pooled copy: a copy met already (among the last
     * few) is not met again (meet is idempotent) */
    enum { MET = 16 };
    const crdt_ctx_t *met[MET] = {0};
    size_t nmet = 0;
    for (size_t i = 0; cut && i < gossip_swim_size(self->swim); i++) {
        gossip_member_t m;
        gossip_swim_at(self->swim, i, &m);
        if (m.id == self->config.node_id || m.state == GOSSIP_LEFT)
            continue;
        const crdt_ctx_t *theirs = gossip_engine_peer_ctx(self, m.id, scope);
        bool seen = false;
        for (size_t k = 0; theirs && k < MET && !seen; k++)
            seen = met[k] == theirs;
        if (seen)
            continue;
        crdt_ctx_t *meet = theirs ? crdt_ctx_meet(cut, theirs) : NULL;
        crdt_ctx_destroy(&cut);
        cut = meet;
        met[nmet++ % MET] = theirs;
    }
    return cut;
}

/*  Tells the sender of a push what we now hold of its scope. */
static int s_send_ack(gossip_engine_t *self, uint64_t peer, const char *scope)
{
    const crdt_ctx_t *ours = self->store->ctx(self->state, scope);
    if (!ours)
        return 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = crdt_ctx_encode(ours, &buf, &len);
    if (rc)
        return rc;
    Engram__GossipAck ack = ENGRAM__GOSSIP_ACK__INIT;
    ack.scope = (char *)scope;
    ack.ctx = (ProtobufCBinaryData){len, buf};
    Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
    msg.body_case = ENGRAM__GOSSIP__BODY_ACK;
    msg.ack = &ack;
    rc = s_send(self, peer, &msg);
    self->stats.acks_sent += rc == 0;
    free(buf);
    return rc;
}

/*  Acknowledges a push of scope from peer: at once, or with the next tick's acks when the
 *  push said nothing waits for its ack (ack_later), one for every such push until then. An
 *  ack sent at once carries what an owed one would: the debt is paid. A peer whose slot for
 *  scope is missing (s_know ran out of memory) gets its ack at once, and so does one whose
 *  debt cannot be listed (out of memory). Each owed list holds a scope at most once and
 *  the owing list a peer at most once per life between ticks: bounded by what peers are known
 *  to hold, whatever they send. */
static int s_ack_push(gossip_engine_t *self, uint64_t peer, const char *scope, bool later)
{
    s_peer_t *p = s_peer_find(self, peer);
    s_known_t *slot = p && p->known_cap ? s_known_slot(self, p, scope) : NULL;
    if (!slot || !slot->scope || !later) {
        if (slot && slot->scope)
            slot->ack_owed = false;
        self->urgent = true;
        return s_send_ack(self, peer, scope);
    }
    if (!slot->ack_listed) {
        if ((p->nowed == 0 && crdt_array_grow((void **)&self->owing, &self->owing_cap,
                                              self->nowing + 1, sizeof *self->owing)) ||
            crdt_array_grow((void **)&p->owed, &p->owed_cap, p->nowed + 1, sizeof *p->owed))
            return s_send_ack(self, peer, scope);
        if (p->nowed == 0)
            self->owing[self->nowing++] = peer;
        p->owed[p->nowed++] = slot->scope; /* slots keep their names for the peer's life */
        slot->ack_listed = true;
    }
    slot->ack_owed = true;
    return 0;
}

/*  Settles the acks owed (s_ack_push): sends each with the scope's context as it is now, or,
 *  when this node has LEFT (it sends no data any more), drops them. */
static void s_settle_owed_acks(gossip_engine_t *self)
{
    bool send = !s_left(self);
    for (size_t i = 0; i < self->nowing; i++) {
        s_peer_t *p = s_peer_find(self, self->owing[i]);
        for (size_t k = 0; p && k < p->nowed; k++) {
            s_known_t *slot = s_known_slot(self, p, p->owed[k]);
            slot->ack_listed = false;
            uint64_t sent = self->stats.acks_sent;
            if (slot->ack_owed && send)
                s_send_ack(self, p->id, slot->scope);
            self->stats.acks_deferred += self->stats.acks_sent - sent;
            slot->ack_owed = false;
        }
        if (p)
            p->nowed = 0;
    }
    self->nowing = 0;
}

static int s_on_ack(gossip_engine_t *self, uint64_t from, const Engram__GossipAck *ack)
{
    if (!s_scope_checked(self, ack->scope))
        return ENGRAM_ESCOPE;
    if (!s_may_know(self, from, ack->scope, NULL, 0))
        return ENGRAM_ETOOBIG;
    crdt_ctx_t *theirs = NULL;
    int rc = crdt_ctx_decode(ack->ctx.data, ack->ctx.len, &theirs);
    if (rc == 0) {
        self->stats.acks_received++;
        rc = s_know(self, from, ack->scope, theirs);
    }
    crdt_ctx_destroy(&theirs);
    return rc;
}

/*  --- pull ------------------------------------------------------------------------- */

typedef struct {
    gossip_engine_t *self;
    Engram__GossipVersion *versions; /* owned array, with each scope and ctx.data */
    Engram__GossipVersion **ptrs;
    size_t n, cap;
    int rc;
} s_digest_t;

static int s_digest_add(s_digest_t *d, const char *scope, const crdt_ctx_t *ctx)
{
    if (crdt_array_grow((void **)&d->versions, &d->cap, d->n + 1, sizeof *d->versions))
        return ENGRAM_ENOMEM;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = crdt_ctx_encode(ctx, &buf, &len); /* NULL: the empty context */
    if (rc)
        return rc;
    char *name = strdup(scope);
    if (!name) {
        free(buf);
        return ENGRAM_ENOMEM;
    }
    engram__gossip_version__init(&d->versions[d->n]);
    d->versions[d->n].scope = name;
    d->versions[d->n++].ctx = (ProtobufCBinaryData){len, buf};
    return 0;
}

static void s_digest_fini(s_digest_t *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->versions[i].scope);
        free(d->versions[i].ctx.data);
    }
    free(d->versions);
    free(d->ptrs);
}

/*  What a digest says besides its versions (Engram__GossipDigest's flags). */
enum {
    DIGEST_COMPLETE = 1,  /* every scope the sender holds */
    DIGEST_REPLY = 2,     /* asks for the receiver's complete digest back */
    DIGEST_ANSWER = 4,    /* is that digest */
    DIGEST_NO_DELTAS = 8, /* answer with no deltas (with REPLY: with the digest only) */
};

/*  Sends the digest d to peer in parts within the budget (all partial if it had to be split,
 *  so that no part reads as "I hold nothing else"). REPLY and ANSWER are set on the last part
 *  only (so the answer comes after the deltas, and marks the end of the sender's whole
 *  knowledge); NO_DELTAS on every part, since each is answered. */
static int s_send_digest(gossip_engine_t *self, uint64_t peer, s_digest_t *d, unsigned flags)
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
        digest.complete = (flags & DIGEST_COMPLETE) && !split;
        digest.reply = (flags & DIGEST_REPLY) && end == d->n;
        digest.answer = (flags & DIGEST_ANSWER) && end == d->n;
        digest.no_deltas = (flags & DIGEST_NO_DELTAS) != 0;
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

/*  A complete digest of every scope this node holds, to peer (flags besides COMPLETE: see
 *  s_send_digest). */
static int s_send_full_digest(gossip_engine_t *self, uint64_t peer, unsigned flags)
{
    s_digest_t d = {.self = self};
    self->store->each_scope(self->state, s_add_own, &d);
    int rc = d.rc ? d.rc : s_send_digest(self, peer, &d, DIGEST_COMPLETE | flags);
    s_digest_fini(&d);
    return rc;
}

/*  Whether peer's whole digest, answering our `reply` one, arrived at or after since_ms. */
static bool s_answered_since(const gossip_engine_t *self, uint64_t peer, uint64_t since_ms)
{
    const s_peer_t *p = s_peer_find(self, peer);
    return p && p->answered_ms && p->answered_ms >= since_ms;
}

/*  --- one peer asked at a time ------------------------------------------------------- */

/*  Whether a pull answer is awaited (from asking_peer). */
static bool s_awaiting(const gossip_engine_t *self)
{
    return self->now_ms < self->asking_until_ms;
}

/*  Whether peer is not to be awaited now (QUIET_MS). */
static bool s_quiet(const gossip_engine_t *self, uint64_t peer)
{
    const s_peer_t *p = s_peer_find(self, peer);
    return p && self->now_ms < p->quiet_until_ms;
}

/*  Whether a periodic digest to peer now may await it: nothing is awaited and peer is not
 *  quiet (a peer that never answers would hold every pull for ASK_WAIT_MS at each pick). An
 *  awaited ask carries DIGEST_REPLY, so that the peer's answer digest, after its deltas, ends
 *  the wait. */
static bool s_may_await(const gossip_engine_t *self, uint64_t peer)
{
    return !s_awaiting(self) && !s_quiet(self, peer);
}

/*  Awaits peer's answer to an ask sent now (the caller checked that nothing is awaited). */
static void s_asked(gossip_engine_t *self, uint64_t peer)
{
    self->asking_peer = peer;
    self->asking_until_ms = self->now_ms + ASK_WAIT_MS;
    self->asking_progress = false;
    self->asking_refused = false;
}

/*  The wait ends (its answer digest came, or it ran out): a peer that sent nothing of an
 *  answer, or a part this node refused, could not read or could not store, is quiet for
 *  QUIET_MS. Else an answer this node cannot take (a peer's bug, another version's, a full volume)
 * would be asked for again at once by the digest that ends it, and sent again, as fast as the link
 *  goes. */
static void s_awaited_end(gossip_engine_t *self)
{
    bool progress = self->asking_progress && !self->asking_refused;
    s_peer_t *p = progress ? NULL : s_peer_find(self, self->asking_peer);
    if (p)
        p->quiet_until_ms = self->now_ms + QUIET_MS;
    self->asking_until_ms = 0;
}

/*  A chunk from `from` arrived: from the awaited peer, it renews the wait, so a long answer is
 *  not asked of another peer meanwhile. */
static void s_awaited_part(gossip_engine_t *self, uint64_t from)
{
    if (s_awaiting(self) && from == self->asking_peer) {
        self->asking_progress = true;
        self->asking_until_ms = self->now_ms + ASK_WAIT_MS;
    }
}

/*  Whether peer is known to hold, of some scope, what this node lacks. */
static bool s_holds_more(gossip_engine_t *self, uint64_t peer)
{
    const s_peer_t *p = s_peer_find(self, peer);
    for (size_t k = 0; p && k < p->known_cap; k++) {
        if (!p->known[k].scope)
            continue;
        const crdt_ctx_t *ours = self->store->ctx(self->state, p->known[k].scope);
        if (ours ? !crdt_ctx_covers(ours, p->known[k].ctx) : !crdt_ctx_is_empty(p->known[k].ctx))
            return true;
    }
    return false;
}

/*  Whether ask_digests asks member m (neither this node, LEFT, nor heard since since_ms). */
static bool s_ask_digest_of(gossip_engine_t *self, const gossip_member_t *m, uint64_t since_ms)
{
    return m->id != self->config.node_id && m->state != GOSSIP_LEFT &&
           !s_answered_since(self, m->id, since_ms);
}

int gossip_engine_ask_digests(gossip_engine_t *self, uint64_t since_ms, uint64_t now_ms)
{
    s_clock(self, now_ms);
    /* One ALIVE member sends what this node lacks, the others their digests only. While its
     * answer is awaited, asking again asks every member for its digest only; once the wait
     * ran out, the next ALIVE member in turn is asked for the deltas (the last one may be
     * down, or its answer lost). */
    size_t alive = 0;
    for (size_t i = 0; i < gossip_swim_size(self->swim); i++) {
        gossip_member_t m;
        gossip_swim_at(self->swim, i, &m);
        alive +=
            s_ask_digest_of(self, &m, since_ms) && m.state == GOSSIP_ALIVE && !s_quiet(self, m.id);
    }
    bool take = self->storage == GOSSIP_STORAGE_OK;
    size_t pull_at = take && !s_awaiting(self) && alive ? self->ask_turn++ % alive : SIZE_MAX;
    int rc = 0;
    for (size_t i = 0, at = 0; rc == 0 && i < gossip_swim_size(self->swim); i++) {
        gossip_member_t m;
        gossip_swim_at(self->swim, i, &m);
        if (!s_ask_digest_of(self, &m, since_ms))
            continue;
        bool pull = m.state == GOSSIP_ALIVE && !s_quiet(self, m.id) && at++ == pull_at;
        rc = s_send_full_digest(self, m.id, DIGEST_REPLY | (pull ? 0 : DIGEST_NO_DELTAS));
        if (rc == 0 && pull)
            s_asked(self, m.id);
    }
    return rc;
}

unsigned gossip_engine_heard_since(gossip_engine_t *self, uint64_t since_ms, unsigned *members)
{
    unsigned heard = 0, of = 0;
    for (size_t i = 0; i < gossip_swim_size(self->swim); i++) {
        gossip_member_t m;
        gossip_swim_at(self->swim, i, &m);
        if (m.id == self->config.node_id || m.state == GOSSIP_LEFT)
            continue;
        of++;
        heard += s_answered_since(self, m.id, since_ms);
    }
    if (members)
        *members = of;
    return heard;
}

/*  Whether p is known to hold a dot of replica that this node lacks. */
static bool s_peer_holds_unseen(gossip_engine_t *self, const s_peer_t *p, uint64_t replica)
{
    for (size_t k = 0; k < p->known_cap; k++) {
        if (!p->known[k].scope)
            continue;
        const crdt_ctx_t *ours = self->store->ctx(self->state, p->known[k].scope);
        if (crdt_ctx_max(p->known[k].ctx, replica) > (ours ? crdt_ctx_max(ours, replica) : 0))
            return true;
    }
    return false;
}

bool gossip_engine_holds_unseen(gossip_engine_t *self, uint64_t replica)
{
    for (size_t i = 0; i < self->npeers; i++)
        if (s_peer_holds_unseen(self, &self->peers[i], replica))
            return true;
    return false;
}

int gossip_engine_pull_unseen(gossip_engine_t *self, uint64_t replica, uint64_t now_ms)
{
    s_clock(self, now_ms);
    if (self->storage != GOSSIP_STORAGE_OK || s_awaiting(self))
        return 0;
    for (size_t i = 0; i < self->npeers; i++) {
        uint64_t id = self->peers[i].id;
        gossip_member_t m;
        if (gossip_swim_member(self->swim, id, &m) && m.state == GOSSIP_ALIVE &&
            s_peer_holds_unseen(self, &self->peers[i], replica)) {
            s_asked(self, id);
            return s_send_full_digest(self, id, DIGEST_REPLY);
        }
    }
    return 0;
}

/*  True when a multi-part answer for (peer, scope) went out less than ANSWER_RESEND_MS ago (it
 *  may still be arriving); otherwise records this one. */
static bool s_answer_deferred(gossip_engine_t *self, uint64_t peer, const char *scope)
{
    s_peer_t *p;
    if (s_peer(self, peer, &p) || !p)
        return false;
    uint64_t key = crdt_hash(scope, strlen(scope), CHUNK_HASH_SEED);
    s_answered_t *slot = &p->answered[0];
    for (size_t i = 0; i < ANSWERED_SLOTS; i++) {
        s_answered_t *a = &p->answered[i];
        if (a->scope_hash == key && a->sent_ms) {
            if (self->now_ms - a->sent_ms < ANSWER_RESEND_MS)
                return true;
            slot = a;
            break;
        }
        if (a->sent_ms < slot->sent_ms)
            slot = a;
    }
    *slot = (s_answered_t){key, self->now_ms ? self->now_ms : 1};
    return false;
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
    size_t lean_notes = 0;
    int rc = s_encode_delta(self, delta, s_reader_minor(self, peer), &buf, &len, &lean_notes);
    size_t part = self->config.max_message_bytes - CHUNK_OVERHEAD;
    size_t count = len ? (len + part - 1) / part : 1;
    if (rc == 0 && (count > MAX_CHUNKS || len > self->config.max_staged_peer_bytes) &&
        crdt_scope_notes(delta)) {
        /* History never holds the state back: the answer goes without its steps. */
        free(buf);
        buf = NULL;
        crdt_scope_drop_notes(delta);
        lean_notes = 0;
        rc = s_encode_delta(self, delta, 0, &buf, &len, NULL);
        count = len ? (len + part - 1) / part : 1;
        self->stats.answers_without_steps++;
    }
    crdt_scope_destroy(&delta);
    if (rc)
        return rc;
    if (count > MAX_CHUNKS || len > self->config.max_staged_peer_bytes) {
        free(buf); /* more than a receiver stages: the scope waits for a larger budget */
        self->stats.answers_too_big++;
        return 0;
    }
    if (!s_outbox_room(self, len + count * CHUNK_OVERHEAD, true)) {
        free(buf); /* not half an answer: none, and the next digest asks again */
        self->stats.outbox_dropped++;
        return 0;
    }
    if (count > 1 && s_answer_deferred(self, peer, scope)) {
        free(buf);
        self->stats.answers_deferred++;
        return 0;
    }
    uint64_t transfer = self->next_transfer++;
    uint64_t hash = crdt_hash(buf, len, CHUNK_HASH_SEED);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        Engram__GossipChunk chunk = ENGRAM__GOSSIP_CHUNK__INIT;
        chunk.scope = (char *)scope;
        chunk.transfer = transfer;
        chunk.index = (uint32_t)i;
        chunk.count = (uint32_t)count;
        size_t at = i * part;
        chunk.data = (ProtobufCBinaryData){len - at < part ? len - at : part, buf + at};
        chunk.total = len;
        chunk.hash = hash;
        Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
        msg.body_case = ENGRAM__GOSSIP__BODY_CHUNK;
        msg.chunk = &chunk;
        rc = s_send(self, peer, &msg);
        self->stats.chunks_sent += rc == 0;
    }
    free(buf);
    self->stats.pulls_answered += rc == 0;
    self->stats.lean_deltas += rc == 0 && lean_notes > 0;
    return rc;
}

typedef struct {
    gossip_engine_t *self;
    uint64_t peer;
    const Engram__GossipDigest *digest;
    crdt_ctx_t **theirs; /* decoded contexts, one per digest version */
    size_t *listed;      /* a hash set of the versions' scopes: 1 + index, 0 free */
    size_t listed_cap;   /* a power of two, at least twice n_versions */
    bool serve;          /* answers may go: what the store holds is durable */
    int rc;
} s_answer_t;

/*  The slot of scope in a->listed: the one holding it, or the free one where it would go. */
static size_t *s_listed_slot(const s_answer_t *a, const char *scope)
{
    size_t mask = a->listed_cap - 1;
    size_t i = (size_t)crdt_hash(scope, strlen(scope), a->self->known_seed) & mask;
    while (a->listed[i] && strcmp(a->digest->versions[a->listed[i] - 1]->scope, scope) != 0)
        i = (i + 1) & mask;
    return &a->listed[i];
}

static void s_answer_unlisted(void *arg, const char *scope)
{
    s_answer_t *a = arg;
    if (*s_listed_slot(a, scope))
        return;
    crdt_ctx_t *empty = crdt_ctx_new();
    if (a->rc == 0)
        a->rc = empty ? s_know(a->self, a->peer, scope, empty) : ENGRAM_ENOMEM;
    if (a->rc == 0 && a->serve)
        a->rc = s_answer(a->self, a->peer, scope, empty);
    crdt_ctx_destroy(&empty);
}

static int s_on_digest(gossip_engine_t *self, uint64_t from, const Engram__GossipDigest *digest)
{
    for (size_t i = 0; i < digest->n_versions; i++)
        if (!s_scope_checked(self, digest->versions[i]->scope))
            return ENGRAM_ESCOPE;
    if (!s_may_know(self, from, NULL, digest->versions, digest->n_versions))
        return ENGRAM_ETOOBIG;
    s_answer_t a = {self,
                    from,
                    digest,
                    calloc(digest->n_versions + 1, sizeof(crdt_ctx_t *)),
                    NULL,
                    16,
                    self->storage != GOSSIP_STORAGE_FAILED && !digest->no_deltas,
                    0};
    while (a.listed_cap < 2 * digest->n_versions)
        a.listed_cap *= 2;
    a.listed = calloc(a.listed_cap, sizeof *a.listed);
    int rc = a.theirs && a.listed ? 0 : ENGRAM_ENOMEM;
    for (size_t i = 0; rc == 0 && i < digest->n_versions; i++) {
        const Engram__GossipVersion *v = digest->versions[i];
        rc = crdt_ctx_decode(v->ctx.data, v->ctx.len, &a.theirs[i]);
        size_t *slot = rc == 0 ? s_listed_slot(&a, v->scope) : NULL;
        if (slot && !*slot)
            *slot = i + 1;
    }
    for (size_t i = 0; rc == 0 && i < digest->n_versions; i++)
        rc = s_know(self, from, digest->versions[i]->scope, a.theirs[i]);
    /* Answers: what they lack of the scopes they listed, and of the ones they lack entirely
     * (only from a store whose state is durable). Asks: what they hold that we lack (only
     * when the store takes deltas). */
    bool take = self->storage == GOSSIP_STORAGE_OK;
    s_digest_t ask = {.self = self};
    for (size_t i = 0; rc == 0 && i < digest->n_versions; i++) {
        const char *scope = digest->versions[i]->scope;
        const crdt_ctx_t *ours = self->store->ctx(self->state, scope);
        if (a.serve && ours && !crdt_ctx_covers(a.theirs[i], ours))
            rc = s_answer(self, from, scope, a.theirs[i]);
        if (rc == 0 && take &&
            !(ours ? crdt_ctx_covers(ours, a.theirs[i]) : crdt_ctx_is_empty(a.theirs[i])))
            rc = s_digest_add(&ask, scope, ours);
    }
    if (rc == 0 && digest->complete) {
        self->store->each_scope(self->state, s_answer_unlisted, &a);
        rc = a.rc;
    }
    if (digest->answer && s_awaiting(self) && from == self->asking_peer)
        s_awaited_end(self); /* its deltas came before this digest */
    /* One peer asked at a time: an awaited one may already be sending the same gap, and once
     * its answer is in, what is still missing shows in the next digests. The peer answers,
     * so its answer digest ends the wait even when it has nothing it can send; then it is
     * quiet, and not asked again on its digests (they would ask it back and forth while its
     * answer is deferred): periodic digests to it pull what it holds. */
    if (rc == 0 && ask.n && !s_awaiting(self) && !s_quiet(self, from)) {
        rc = s_send_digest(self, from, &ask, DIGEST_REPLY);
        if (rc == 0)
            s_asked(self, from);
    }
    if (rc == 0 && digest->reply && self->storage != GOSSIP_STORAGE_FAILED)
        rc = s_send_full_digest(self, from, DIGEST_ANSWER); /* after the answers: ask_digests */
    s_peer_t *sender = NULL;
    if (rc == 0 && digest->answer)
        rc = s_peer(self, from, &sender);
    if (sender) /* its whole knowledge is in (s_know) */
        sender->answered_ms = self->now_ms;
    s_digest_fini(&ask);
    for (size_t i = 0; a.theirs && i < digest->n_versions; i++)
        crdt_ctx_destroy(&a.theirs[i]);
    free(a.theirs);
    free(a.listed);
    return rc;
}

/*  --- receiving --------------------------------------------------------------------- */

/*  Asks `from` for a pull (at most every ASK_INTERVAL_MS per peer). */
static int s_ask(gossip_engine_t *self, uint64_t from)
{
    s_peer_t *p;
    int rc = s_peer(self, from, &p);
    if (rc || !p || (p->asked_ms && self->now_ms - p->asked_ms < ASK_INTERVAL_MS) ||
        s_awaiting(self))
        return rc;
    p->asked_ms = self->now_ms;
    s_asked(self, from);
    return s_send_full_digest(self, from, DIGEST_REPLY);
}

/*  What s_apply returns when the store could not write (not the peer's fault: counted in
 *  `unstored`, and gossip_engine_receive returns 0 for it). */
#define S_UNSTORED 1

static int s_apply(gossip_engine_t *self, const char *scope, const crdt_scope_t *delta)
{
    /* later local operations will depend on this delta: what is pending goes out first, with
       the dependencies it was written on */
    s_flush_scope(self, scope);
    int rc = self->store->apply(self->state, scope, delta);
    if (rc == ENGRAM_EIO || rc == ENGRAM_ENOSPC || rc == ENGRAM_EREADONLY) {
        self->stats.unstored++;
        return S_UNSTORED;
    }
    if (rc && rc != ENGRAM_ENOMEM && !self->fault)
        self->fault = &self->stats.bad_apply;
    return rc;
}

static int s_on_push(gossip_engine_t *self, uint64_t from, const Engram__GossipPush *push)
{
    if (!s_scope_checked(self, push->scope))
        return ENGRAM_ESCOPE;
    if (!s_may_know(self, from, push->scope, NULL, 0))
        return ENGRAM_ETOOBIG;
    crdt_ctx_t *deps = NULL;
    crdt_scope_t *delta = NULL;
    int rc = crdt_ctx_decode(push->deps.data, push->deps.len, &deps);
    if (rc == 0)
        rc = crdt_scope_decode(push->delta.data, push->delta.len, 0, &delta);
    if (rc == 0) {
        const crdt_ctx_t *ours = self->store->ctx(self->state, push->scope);
        bool ack = false;
        if (ours && crdt_ctx_covers(ours, crdt_scope_ctx(delta))) {
            self->stats.pushes_redundant++; /* a duplicate or replay: held already */
            ack = true;
        } else if (self->storage != GOSSIP_STORAGE_OK) {
            self->stats.unstored++; /* nothing to apply it to, nor to pull into */
        } else if (crdt_ctx_is_empty(deps) || (ours && crdt_ctx_covers(ours, deps))) {
            rc = s_apply(self, push->scope, delta);
            self->stats.pushes_applied += rc == 0;
            ack = rc == 0;
        } else {
            self->stats.pushes_held_back++; /* its cause has not arrived: pull instead */
            rc = s_ask(self, from);
        }
        /* its sender holds what it pushed and what that depended on */
        const crdt_ctx_t *known = gossip_engine_peer_ctx(self, from, push->scope);
        crdt_ctx_t *holds = known ? crdt_ctx_dup(known) : crdt_ctx_new();
        if (holds && crdt_ctx_join(holds, deps) == 0 &&
            crdt_ctx_join(holds, crdt_scope_ctx(delta)) == 0 && rc == 0)
            rc = s_know(self, from, push->scope, holds);
        crdt_ctx_destroy(&holds);
        if (ack) { /* after s_know, which makes the slot an owed ack is kept in */
            int acked = s_ack_push(self, from, push->scope, push->ack_later);
            rc = rc ? rc : acked;
        }
    }
    crdt_ctx_destroy(&deps);
    crdt_scope_destroy(&delta);
    return rc;
}

/*  Applies a complete pull answer after checking its length and hash. */
static int s_apply_answer(gossip_engine_t *self, const char *scope, const uint8_t *buf, size_t len,
                          const Engram__GossipChunk *chunk)
{
    if (len != chunk->total || crdt_hash(buf, len, CHUNK_HASH_SEED) != chunk->hash) {
        self->fault = &self->stats.bad_chunk;
        return ENGRAM_EDECODE;
    }
    crdt_scope_t *delta = NULL;
    int rc = crdt_scope_decode(buf, len, 0, &delta);
    if (rc == 0)
        rc = s_apply(self, scope, delta);
    self->stats.pull_deltas_applied += rc == 0;
    crdt_scope_destroy(&delta);
    return rc;
}

/*  The staged transfer of (from, total, hash), or a new one (evicting from's oldest when it
 *  has MAX_STAGES_PER_PEER). NULL when out of memory. */
static s_stage_t *s_stage(gossip_engine_t *self, uint64_t from, const Engram__GossipChunk *chunk)
{
    size_t mine = 0, oldest = SIZE_MAX;
    for (size_t i = 0; i < self->nstages; i++) {
        s_stage_t *st = &self->stages[i];
        if (st->from != from)
            continue;
        if (st->total == chunk->total && st->hash == chunk->hash)
            return st;
        mine++;
        if (oldest == SIZE_MAX || st->started_ms < self->stages[oldest].started_ms)
            oldest = i;
    }
    if (mine >= MAX_STAGES_PER_PEER)
        s_stage_drop(self, oldest);
    if (crdt_array_grow((void **)&self->stages, &self->stages_cap, self->nstages + 1,
                        sizeof *self->stages))
        return NULL;
    s_stage_t *st = &self->stages[self->nstages];
    *st = (s_stage_t){.from = from,
                      .total = chunk->total,
                      .hash = chunk->hash,
                      .count = chunk->count,
                      .started_ms = self->now_ms};
    if (!(st->scope = strdup(chunk->scope)))
        return NULL;
    self->nstages++;
    return st;
}

/*  The bytes staged from peer. */
static size_t s_staged_from(const gossip_engine_t *self, uint64_t peer)
{
    size_t bytes = 0;
    for (size_t i = 0; i < self->nstages; i++)
        if (self->stages[i].from == peer)
            bytes += self->stages[i].received_bytes;
    return bytes;
}

static int s_on_chunk(gossip_engine_t *self, uint64_t from, const Engram__GossipChunk *chunk)
{
    self->stats.chunks_received++;
    if (!s_scope_checked(self, chunk->scope))
        return ENGRAM_ESCOPE;
    /* a sender cuts parts within its budget, which is ours: a frame over it was refused */
    if (chunk->count == 0 || chunk->count > MAX_CHUNKS || chunk->index >= chunk->count ||
        chunk->data.len > chunk->total ||
        chunk->total > (uint64_t)chunk->count * self->config.max_message_bytes) {
        self->fault = &self->stats.bad_chunk;
        return ENGRAM_EDECODE;
    }
    s_awaited_part(self, from); /* the awaited answer is arriving: renew its wait */
    if (self->storage != GOSSIP_STORAGE_OK) {
        self->stats.unstored++;
        return 0;
    }
    if (chunk->count == 1)
        return s_apply_answer(self, chunk->scope, chunk->data.data, chunk->data.len, chunk);
    if (chunk->total > self->config.max_staged_peer_bytes) {
        self->stats.staging_refused++; /* more than we stage: never allocated */
        return 0;
    }
    s_stage_t *stage = s_stage(self, from, chunk);
    if (!stage)
        return ENGRAM_ENOMEM;
    if (stage->count != chunk->count || strcmp(stage->scope, chunk->scope) != 0) {
        self->fault = &self->stats.bad_chunk; /* a part that contradicts its transfer */
        return ENGRAM_EDECODE;
    }
    size_t lo = 0, hi = stage->nparts;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (stage->parts[mid].index < chunk->index)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < stage->nparts && stage->parts[lo].index == chunk->index)
        return 0; /* a duplicate part, or the same part of a re-sent answer */
    if (stage->received_bytes + chunk->data.len > stage->total) {
        self->fault = &self->stats.bad_chunk; /* more bytes than the whole */
        return ENGRAM_EDECODE;
    }
    if (s_staged_from(self, from) + chunk->data.len > self->config.max_staged_peer_bytes ||
        self->staged_bytes + chunk->data.len > self->config.max_staged_bytes) {
        self->stats.staging_refused++; /* the transfer goes: a later pull may fit */
        s_stage_drop(self, (size_t)(stage - self->stages));
        return 0;
    }
    uint8_t *copy = malloc(chunk->data.len ? chunk->data.len : 1);
    if (!copy || crdt_array_grow((void **)&stage->parts, &stage->parts_cap, stage->nparts + 1,
                                 sizeof *stage->parts)) {
        free(copy);
        return ENGRAM_ENOMEM;
    }
    if (chunk->data.len) /* an empty part's data is NULL */
        memcpy(copy, chunk->data.data, chunk->data.len);
    memmove(&stage->parts[lo + 1], &stage->parts[lo], (stage->nparts - lo) * sizeof *stage->parts);
    stage->parts[lo] = (s_part_t){chunk->index, copy, chunk->data.len};
    stage->nparts++;
    stage->received_bytes += chunk->data.len;
    self->staged_bytes += chunk->data.len;
    if (stage->nparts < stage->count)
        return 0;
    /* Every part is here: check, then apply the whole delta as one unit. The parts add up to
       the total before the whole is allocated, so its size is what arrived. */
    int rc = 0;
    uint8_t *whole = NULL;
    if (stage->received_bytes != stage->total) {
        self->fault = &self->stats.bad_chunk;
        rc = ENGRAM_EDECODE;
    } else if (!(whole = malloc(stage->total ? stage->total : 1))) {
        rc = ENGRAM_ENOMEM;
    }
    size_t at = 0;
    for (size_t i = 0; rc == 0 && i < stage->nparts; i++) {
        memcpy(whole + at, stage->parts[i].buf, stage->parts[i].len);
        at += stage->parts[i].len;
    }
    if (rc == 0)
        rc = s_apply_answer(self, stage->scope, whole, at, chunk);
    free(whole);
    s_stage_drop(self, (size_t)(stage - self->stages));
    return rc;
}

int gossip_engine_receive(gossip_engine_t *self, uint64_t from, const uint8_t *msg, size_t len,
                          uint64_t now_ms)
{
    s_clock(self, now_ms);
    self->stats.bytes_received += len;
    self->fault = NULL;
    Engram__Gossip *gossip = engram__gossip__unpack(NULL, len, msg);
    int rc = gossip ? 0 : ENGRAM_EDECODE;
    if (rc == 0 && gossip->schema_major > ENGRAM_SCHEMA_MAJOR)
        rc = ENGRAM_EVERSION;
    if (rc == 0 && gossip->body_case == ENGRAM__GOSSIP__BODY_COMPRESSED) {
        Engram__Gossip *inner = s_inflate(self, gossip, &rc);
        engram__gossip__free_unpacked(gossip, NULL);
        gossip = inner;
    }
    bool answer_part = !gossip; /* a chunk, or a message that could not be read as any */
    gossip_swim_fault_t fault = GOSSIP_SWIM_FAULT_NONE;
    if (rc == 0)
        rc = gossip_swim_check_sender(self->swim, from, gossip, now_ms, &fault);
    /* What the sender reads, from this message on (its own answer included): the envelope
     * says so whatever its body turns out to be, once SWIM admitted the sender. */
    s_peer_t *sender = NULL;
    if (rc == 0 && s_peer(self, from, &sender) == 0 && sender)
        sender->schema_minor = gossip->schema_minor;
    if (rc == 0) {
        switch (gossip->body_case) {
        case ENGRAM__GOSSIP__BODY_PUSH:
            rc = s_left(self) ? 0 : s_on_push(self, from, gossip->push);
            break;
        case ENGRAM__GOSSIP__BODY_DIGEST:
            rc = s_left(self) ? 0 : s_on_digest(self, from, gossip->digest);
            break;
        case ENGRAM__GOSSIP__BODY_CHUNK:
            rc = s_left(self) ? 0 : s_on_chunk(self, from, gossip->chunk);
            answer_part = true;
            break;
        case ENGRAM__GOSSIP__BODY_ACK:
            rc = s_on_ack(self, from, gossip->ack);
            break;
        default:
            rc = gossip_swim_receive(self->swim, from, gossip, now_ms, &fault);
        }
    }
    s_swim_stats(self);
    /* A part of the awaited answer refused, unreadable, or that the store could not write:
     * no progress (s_awaited_end). */
    if (rc != 0 && rc != ENGRAM_ENOMEM && answer_part && s_awaiting(self) &&
        from == self->asking_peer)
        self->asking_refused = true;
    /* and again after any change of its record the message made (a restart it announces) */
    if ((rc == 0 || rc == S_UNSTORED) && s_peer(self, from, &sender) == 0 && sender)
        sender->schema_minor = gossip->schema_minor;
    if (gossip)
        engram__gossip__free_unpacked(gossip, NULL);
    if (rc == S_UNSTORED)
        rc = 0;
    if (rc != 0 && rc != ENGRAM_ENOMEM) {
        self->stats.bad_messages++;
        /* a fault is SWIM's or the data plane's, never both: SWIM admits the sender first */
        uint64_t *counter = self->fault ? self->fault : s_swim_fault(self, fault);
        (*(counter ? counter : &self->stats.bad_decode))++;
    }
    return rc;
}

typedef struct {
    gossip_engine_t *self;
    uint64_t peer;
} s_report_t;

static void s_report_scope(void *arg, const char *scope)
{
    s_report_t *r = arg;
    s_send_ack(r->self, r->peer, scope);
}

/*  The member the next periodic digest goes to: ALIVE or SUSPECT members in rounds, each round
 *  a new shuffle of them all, so that every member hears this node's digest, and learns what
 *  it holds, once per round of N - 1 intervals (as this node hears theirs in their rounds).
 *  Random picks took N log N / 2 intervals to reach every member: a 1,000-node simulation did
 *  not know its stable cuts after 300 s. A member that joins mid-round is in the next one.
 *  False when there is none. */
static bool s_digest_peer(gossip_engine_t *self, uint64_t *peer)
{
    const unsigned targets = 1u << GOSSIP_ALIVE | 1u << GOSSIP_SUSPECT;
    for (int rounds = 0; rounds < 2; rounds++) {
        while (gossip_round_next(&self->digests, peer)) {
            gossip_member_t m;
            if (gossip_swim_member(self->swim, *peer, &m) && (targets & 1u << m.state))
                return true;
        }
        size_t size = gossip_swim_size(self->swim);
        if (gossip_round_begin(&self->digests, size))
            return gossip_swim_pick(self->swim, targets, peer); /* out of memory: at random */
        for (size_t i = 0; i < size; i++) {
            gossip_member_t m;
            gossip_swim_at(self->swim, i, &m);
            if (m.id != self->config.node_id && (targets & 1u << m.state))
                gossip_round_add(&self->digests, m.id);
        }
        gossip_round_shuffle(&self->digests, s_random_of, self);
    }
    return false;
}

void gossip_engine_tick(gossip_engine_t *self, uint64_t now_ms)
{
    s_clock(self, now_ms);
    for (size_t i = 0; i < self->nstages;) {
        if (now_ms - self->stages[i].started_ms > STAGE_TIMEOUT_MS)
            s_stage_drop(self, i);
        else
            i++;
    }
    gossip_swim_tick(self->swim, now_ms);
    s_swim_stats(self);
    s_settle_owed_acks(self);
    if (s_left(self) || now_ms < self->next_digest_ms || self->storage == GOSSIP_STORAGE_FAILED)
        return;
    self->next_digest_ms = now_ms + self->config.gossip_interval_ms;
    uint64_t peer;
    if (!s_digest_peer(self, &peer))
        return;
    if (self->storage == GOSSIP_STORAGE_OK) {
        /* While an answer is awaited (from this peer too: it would send the gap again), this
         * digest reports and asks for nothing. A peer known to hold more is awaited; so is
         * one of which nothing is known yet (a node just started), asked for its digest
         * back, which ends the wait at once if it had nothing to send. */
        const s_peer_t *p = s_peer_find(self, peer);
        bool await = s_may_await(self, peer) && (!p || p->nknown == 0 || s_holds_more(self, peer));
        unsigned flags = s_awaiting(self) ? DIGEST_NO_DELTAS : await ? DIGEST_REPLY : 0;
        if (s_send_full_digest(self, peer, flags) == 0 && await)
            s_asked(self, peer);
    } else { /* a report of what it holds, which asks for nothing (see engine.h) */
        s_report_t report = {self, peer};
        self->store->each_scope(self->state, s_report_scope, &report);
    }
}
