/*  Helpers shared inside gossip/, not part of its API: the engine's state (struct
 *  gossip_engine), which engine.c (data plane) and swim.c (membership) both work on.
 *
 *  Ownership: the engine owns everything reachable from it. The member table is an array
 *  sorted by id (binary search); inserting may move entries, so a gossip__member_t pointer is
 *  valid only until the next member is added or removed. Single-threaded, as the engine.
 */
#ifndef GOSSIP_INTERNAL_H
#define GOSSIP_INTERNAL_H

#include "gossip/engine.h"
#include "proto/gossip.pb-c.h"

/*  What a peer is known to hold of one scope. */
typedef struct {
    char *scope;     /* owned */
    crdt_ctx_t *ctx; /* owned */
} gossip__known_t;

/*  One multi-part pull answer sent recently to a peer, for the resend limit. */
typedef struct {
    uint64_t scope_hash;
    uint64_t sent_ms;
} gossip__answered_t;

#define GOSSIP__ANSWERED_SLOTS 4
/*  Suspectors remembered per suspect member: the first and up to 3 confirmations (Lifeguard's
 *  k is capped there). */
#define GOSSIP__MAX_SUSPECTORS 4

/*  One member, this node included. */
typedef struct {
    uint64_t id;
    uint64_t incarnation;
    gossip_state_t state;
    char *endpoint; /* owned, never NULL */
    uint8_t *card;  /* owned, NULL when card_len is 0 */
    size_t card_len;
    uint8_t *leave; /* owned, LEFT only */
    size_t leave_len;
    uint64_t since_ms;      /* when state last changed (suspicion starts here) */
    /* SUSPECT: the distinct members that suspected it at this incarnation, the first at [0];
     * the others are Lifeguard's confirmations. Its record names the latest of them as its
     * suspector (retransmitted like a change, as memberlist re-broadcasts confirmations). */
    uint64_t suspectors[GOSSIP__MAX_SUSPECTORS];
    unsigned nsuspectors;
    uint32_t transmits;     /* piggyback retransmissions left for this record */
    uint64_t asked_ms;      /* when it was last sent a digest because of a held-back push */
    uint64_t answered_ms;   /* when its last answer to our `reply` digest ended (0: never) */
    gossip__known_t *known; /* what it holds, per scope */
    size_t nknown, known_cap;
    gossip__answered_t answered[GOSSIP__ANSWERED_SLOTS];
} gossip__member_t;

typedef struct {
    uint64_t peer;
    uint8_t *buf; /* owned */
    size_t len;
} gossip__msg_t;

/*  One received part of a staged transfer. */
typedef struct {
    uint32_t index;
    uint8_t *buf; /* owned */
    size_t len;
} gossip__part_t;

/*  A pull answer whose parts are arriving: keyed by (from, total, hash). */
typedef struct {
    uint64_t from;
    uint64_t total;
    uint64_t hash;
    char *scope; /* owned */
    uint32_t count;
    gossip__part_t *parts; /* owned, sorted by index, allocated as parts arrive */
    size_t nparts, parts_cap;
    uint64_t received_bytes;
    uint64_t started_ms;
} gossip__stage_t;

/*  A ping this node sends on behalf of another (ping-req), whose pong it forwards. */
typedef struct {
    uint64_t seq;        /* of our ping */
    uint64_t origin;     /* who asked */
    uint64_t origin_seq; /* the seq the origin used */
    uint64_t target;
    uint64_t sent_ms;
    bool nacked; /* the origin was told the target is silent to us too */
} gossip__relay_t;

/*  The probe in progress. */
typedef struct {
    bool active;
    uint64_t target;
    uint64_t seq;
    uint64_t sent_ms;
    bool indirect; /* the ping-reqs went out */
    unsigned nacks_expected; /* ping-reqs sent */
    unsigned nacks;          /* nacks received for them */
} gossip__probe_t;

/*  Local operations on one scope not yet pushed: joined into one delta, with the
 *  dependencies of the first (see gossip_engine_local). */
typedef struct {
    char *scope;          /* owned */
    crdt_scope_t *delta;  /* owned */
    crdt_ctx_t *deps;     /* owned */
    size_t bytes;         /* the operations' entries, summed: about their encoded size */
} gossip__pending_t;

struct gossip_engine {
    gossip_config_t config; /* endpoint and card point into self_member's copies */
    gossip_hooks_t hooks;
    const gossip_store_t *store;
    void *state;
    gossip__member_t *members; /* sorted by id; this node is one of them */
    size_t nmembers, members_cap;
    gossip__msg_t *outbox; /* a FIFO: [head, n) are queued */
    size_t head, n, outbox_cap;
    gossip__stage_t *stages;
    size_t nstages, stages_cap;
    gossip__pending_t *pending; /* pushes being coalesced, one per scope */
    size_t npending, pending_cap;
    uint64_t rng;
    uint64_t next_transfer; /* 0 until the first event with a clock: see s_clock */
    uint64_t now_ms;
    bool started; /* the first tick set the timers */
    bool left;    /* this node is LEFT: no push, pull or probe */
    /* Membership timers and state. */
    uint64_t next_probe_ms, next_sync_ms, next_digest_ms;
    uint64_t asking_until_ms; /* a held-back push's pull is awaited until then (s_ask) */
    uint64_t next_seq;
    gossip__probe_t probe;
    uint64_t *probe_order; /* shuffled ids, round-robin */
    size_t probe_n, probe_at, probe_cap;
    gossip__relay_t *relays;
    size_t nrelays, relays_cap;
    unsigned health; /* Lifeguard local health score, 0..GOSSIP__MAX_HEALTH */
    uint64_t *fault; /* the stats counter of the current message's first fault, or NULL */
    gossip_stats_t stats;
};

#define GOSSIP__MAX_HEALTH 8
/*  Incarnations above this are refused: engramd's are start times in ms, far below it, and a
 *  member must always be able to refute by one more. */
#define GOSSIP__MAX_INCARNATION (UINT64_C(1) << 62)

/*  engine.c */
uint64_t gossip__random(gossip_engine_t *self);
/*  Packs msg into the outbox for peer. 0 or ENGRAM_ENOMEM. */
int gossip__send(gossip_engine_t *self, uint64_t peer, Engram__Gossip *msg);
/*  Drops what is staged from peer and what it is known to hold. */
void gossip__forget_peer(gossip_engine_t *self, uint64_t peer);

/*  swim.c */
gossip__member_t *gossip__member(gossip_engine_t *self, uint64_t id);
void gossip__member_fini(gossip__member_t *m);
/*  A random member other than this node whose state is in mask (1 << state), or NULL. */
gossip__member_t *gossip__pick(gossip_engine_t *self, unsigned mask);
/*  Whether a message from `from` may be handled: 0, or a code (counted by the caller). For
 *  SWIM messages the sender's own record (with its card) is merged first, so that a joiner's
 *  first message admits it. */
int gossip__check_sender(gossip_engine_t *self, uint64_t from, const Engram__Gossip *msg);
/*  Handles a ping, ping-req, pong or members message. */
int gossip__swim_receive(gossip_engine_t *self, uint64_t from, const Engram__Gossip *msg);
void gossip__swim_tick(gossip_engine_t *self);
int gossip__swim_init(gossip_engine_t *self);
void gossip__swim_fini(gossip_engine_t *self);

#endif
