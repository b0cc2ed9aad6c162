/*  gossip_swim: one node's membership as a sans-I/O object: SWIM (Das et al. 2002, as
 *  HashiCorp memberlist) with Lifeguard (Dadgar et al. 2018). It consumes events (a message
 *  from a member, a timer tick with `now`, a member the owner learned, added, removed or
 *  decommissioned) and emits its messages through the send callback and every change of a
 *  record through the changed callback. It knows nothing of scopes, stores or version vectors:
 *  gossip_engine (engine.h) owns one, hands it the SWIM messages, and keeps its own per-peer
 *  replication state beside it, keyed by member id.
 *
 *  Records. Every node keeps a record per member it knows, itself included: (id, incarnation,
 *  state, endpoint, card, leave statement). Records merge as a lattice: the higher incarnation
 *  wins, at equal incarnation the higher state rank (ALIVE < SUSPECT < DEAD); LEFT absorbs
 *  everything, for good, whatever incarnation is claimed later. Only the member itself raises
 *  its incarnation: when it hears that it is suspect or dead (or finds a record of itself from
 *  a previous life), it refutes with a higher incarnation; engramd starts at its start time in
 *  ms, so a restarted node always outranks what others remember of it. Incarnations above
 *  2^62 are refused, so that a member can always refute by one more.
 *  - Probing: every probe interval the node pings one member, round-robin over a shuffled list
 *    (dead members too, one time in four, so a dead node that came back is seen again). No pong
 *    within the probe timeout: it asks `indirect_probes` others to ping it on its behalf
 *    (ping-req; their pongs are relayed back). Still none by the end of the interval: the
 *    member becomes SUSPECT, unless a record of a later incarnation of it came meanwhile (it
 *    refuted, or restarted): the probe tested a past life, and ends without a verdict.
 *    Lifeguard, as memberlist does it:
 *    - local health: a score (0..8) that stretches our own probe interval and timeout; every
 *      probe that succeeds lowers it; a failed probe raises it by the nacks that did not come
 *      (a member asked to ping-req answers with a nack when the target is silent to it too:
 *      if every nack comes, our links work and the target is the one at fault), or by one
 *      when nobody was asked; so does hearing that we are suspected. A node that is itself slow
 *      or cut off thus probes more gently and accuses later.
 *    - dynamic suspicion: SUSPECT lasts from max = 6 * min down to min = suspicion_mult *
 *      log10(N+1) probe intervals (at least one), shrinking with each independent
 *      confirmation: a member that suspects it too (a record names a suspector, the first,
 *      then each confirmation a node learns or makes with its own failed probe, passed on
 *      like a change; only members count) by max - (max - min) *
 *      log(c+1) / log(k+1) for c confirmations of k = suspicion_mult - 2 expected (0 below
 *      k + 2 members: then min). A lone slow accuser gives its victim 6x the time to refute;
 *      a member everyone lost goes DEAD as fast as before. Then: DEAD.
 *  - Dissemination: every ping, ping-req and pong piggybacks the latest changed records, each
 *    retransmitted 3 * ceil(log10(N+1)) times, and the record the receiver has in our view when
 *    that is not ALIVE (so it can refute at once). Each carries its sender's own record, card
 *    included. Every sync interval the node also exchanges its whole table with one random
 *    member (push-pull, dead ones included): a joiner learns everyone from one seed, and both
 *    sides of a healed partition see each other refute. The first exchange is at the first
 *    tick, and it is tried again every probe interval until a members message has come in (a
 *    joiner may know nobody yet at its first tick, or lose its first exchange). Every
 *    message stays within max_message_bytes (a whole table goes in parts), except one that
 *    carries a single record larger than it.
 *  - Admission: a member is added only if its card passes the admit callback (each node checks
 *    the admin signature itself, so it never trusts the relay); a LEFT record only if its
 *    statement passes verify_leave. `from` is the id the transport bound to the peer's CURVE
 *    key; ids inside messages are never taken as the sender. Messages from a sender that is
 *    unknown or LEFT are refused, except a SWIM message that carries the sender's own valid
 *    card (a joiner's first ping or push-pull), which admits it. A LEFT sender is told so. A
 *    known member's endpoint changes only by its own word (or by its first word, when a relay
 *    introduced it).
 *  - A LEFT node (gossip_swim_leave of its own id, or hearing a verified statement about
 *    itself) stops probing, tells a few members and falls silent.
 *
 *  Bad input (a malformed record, an unknown or LEFT sender, a card or statement the callbacks
 *  refuse) changes nothing and is reported as a code and a gossip_swim_fault_t, which the owner
 *  counts; the valid records of a message with one bad record are still merged.
 *
 *  Ownership: the object owns its table (copies of every endpoint, card and statement). The
 *  pointers in a gossip_member_t it hands out, and the indexes of gossip_swim_at, are valid
 *  until the next call that takes `now` or changes the table. Not thread-safe: one owner.
 *  Callbacks run inside its calls and must not call back into it.
 */
#ifndef GOSSIP_SWIM_H
#define GOSSIP_SWIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/gossip.pb-c.h"

/*  Defaults of gossip_swim_config_t (a zero field takes them). */
#ifndef GOSSIP_DEFAULT_PROBE_INTERVAL_MS
#define GOSSIP_DEFAULT_PROBE_INTERVAL_MS 1000
#endif
#ifndef GOSSIP_DEFAULT_PROBE_TIMEOUT_MS
#define GOSSIP_DEFAULT_PROBE_TIMEOUT_MS 400
#endif
#ifndef GOSSIP_DEFAULT_SUSPICION_MULT
#define GOSSIP_DEFAULT_SUSPICION_MULT 4
#endif
#ifndef GOSSIP_DEFAULT_INDIRECT_PROBES
#define GOSSIP_DEFAULT_INDIRECT_PROBES 3
#endif
#ifndef GOSSIP_DEFAULT_SYNC_INTERVAL_MS
#define GOSSIP_DEFAULT_SYNC_INTERVAL_MS 10000
#endif

typedef enum { GOSSIP_ALIVE = 0, GOSSIP_SUSPECT, GOSSIP_DEAD, GOSSIP_LEFT } gossip_state_t;

/*  A member's record. Handed out: every pointer is borrowed (see above). Handed in
 *  (gossip_swim_learn): read during the call only. */
typedef struct {
    uint64_t id; /* node id */
    uint64_t incarnation;
    gossip_state_t state;
    const char *endpoint; /* where its gossip socket listens (e.g. "tcp://127.0.0.1:7101");
                             never NULL */
    const uint8_t *card;  /* its admission certificate, opaque here; may be empty */
    size_t card_len;
    const uint8_t *leave; /* LEFT only: the admin statement that removed it, opaque */
    size_t leave_len;
    uint64_t suspector; /* SUSPECT only: the member whose failed probe began it (0: unknown) */
} gossip_member_t;

typedef struct {
    uint64_t node_id;     /* this node, never 0 */
    const char *endpoint; /* this node's gossip endpoint (copied); NULL: "" */
    const uint8_t *card;  /* this node's admission certificate (copied); may be empty */
    size_t card_len;
    uint64_t incarnation;       /* start value (see Records above) */
    size_t max_message_bytes;   /* budget of one message: piggybacked records and the parts
                                   of a table exchange stay within it */
    uint64_t probe_interval_ms; /* one probe per interval */
    uint64_t probe_timeout_ms;  /* direct ping unanswered this long: ping-req (at most half
                                   the interval) */
    unsigned suspicion_mult;    /* SUSPECT -> DEAD after mult * log10(N+1) probe intervals */
    unsigned indirect_probes;   /* k: members asked to ping on our behalf */
    uint64_t sync_interval_ms;  /* full table exchange with one member per interval */
} gossip_swim_config_t;

typedef struct {
    /*  Sends msg, a SWIM message (ping, ping-req, pong, nack or members), to member `to`. msg
     *  is borrowed for the call: the owner packs it (and sets the schema version) before
     *  returning. 0 or ENGRAM_ENOMEM. Required. */
    int (*send)(void *arg, uint64_t to, Engram__Gossip *msg);
    /*  Called after a member is added or its state, incarnation or endpoint changes (LEFT
     *  included, and this node's own refutations and LEFT). NULL: none. */
    void (*changed)(void *arg, const gossip_member_t *member);
    /*  A uniformly random 64-bit number. Every random choice (probe order, dead probes,
     *  ping-req helpers, sync partner, gossip_swim_pick) draws from it, so that the owner
     *  drives a node from one seeded stream. Required. */
    uint64_t (*random)(void *arg);
    /*  True when card admits node id to this cluster. NULL: every member is admitted. */
    bool (*admit)(void *arg, uint64_t id, const uint8_t *card, size_t len);
    /*  True when stmt is a valid admin decommission of node id. NULL: accept. */
    bool (*verify_leave)(void *arg, uint64_t id, const uint8_t *stmt, size_t len);
    void *arg;
} gossip_swim_callbacks_t;

/*  Why input was refused: the first fault met in one call (for the owner's counters). */
typedef enum {
    GOSSIP_SWIM_FAULT_NONE = 0,
    GOSSIP_SWIM_FAULT_DECODE,         /* a malformed record, or not a SWIM message */
    GOSSIP_SWIM_FAULT_UNKNOWN_SENDER, /* from an id that is not a member, or this node's own */
    GOSSIP_SWIM_FAULT_LEFT_SENDER,    /* from a LEFT member */
    GOSSIP_SWIM_FAULT_CARD,           /* a card the admit callback refused */
    GOSSIP_SWIM_FAULT_LEAVE,          /* a statement the verify_leave callback refused */
} gossip_swim_fault_t;

typedef struct {
    uint64_t pings, ping_reqs, pongs, nacks; /* sent */
    uint64_t nacks_received;                 /* for probes of ours (Lifeguard) */
    uint64_t suspects, deaths;               /* members this node suspected / declared dead */
    uint64_t refutes;                        /* times this node raised its own incarnation */
    uint64_t syncs;                          /* full table exchanges started */
} gossip_swim_stats_t;

typedef struct gossip_swim gossip_swim_t;

/*  A table holding this node alone (ALIVE, at config->incarnation), or NULL when out of
 *  memory. Both structs are copied. Caller owns return value and must destroy it. */
gossip_swim_t *gossip_swim_new(const gossip_swim_config_t *config,
                               const gossip_swim_callbacks_t *callbacks);
void gossip_swim_destroy(gossip_swim_t **self_p);

/*  Whether a message from `from` may be handled at all (any message, SWIM or not): 0, or a
 *  code with *fault set. For SWIM messages the sender's own record (with its card) is merged
 *  first, so that a joiner's first message admits it. A LEFT sender is told that it is.
 *  Codes: ENGRAM_ENOTFOUND (unknown sender), ENGRAM_EUNAVAILABLE (LEFT sender),
 *  ENGRAM_EDECODE, ENGRAM_EINVAL (card or statement refused), ENGRAM_ENOMEM. */
int gossip_swim_check_sender(gossip_swim_t *self, uint64_t from, const Engram__Gossip *msg,
                             uint64_t now_ms, gossip_swim_fault_t *fault);
/*  Handles a ping, ping-req, pong, nack or members message whose sender passed
 *  gossip_swim_check_sender: merges its records and answers. Any other body is refused
 *  (ENGRAM_EDECODE). 0, or the first record's code with *fault set (the others are merged). */
int gossip_swim_receive(gossip_swim_t *self, uint64_t from, const Engram__Gossip *msg,
                        uint64_t now_ms, gossip_swim_fault_t *fault);
/*  The timer (call it at least every probe_timeout_ms / 2): suspicion timeouts, probes, the
 *  nacks of relayed pings, the table exchange. */
void gossip_swim_tick(gossip_swim_t *self, uint64_t now_ms);

/*  A member known from elsewhere (a seed, one remembered from the last run): checked with
 *  admit (LEFT: with verify_leave) and merged like a received record; a record of this node
 *  is ignored. 0, ENGRAM_EINVAL (refused), ENGRAM_EDECODE (malformed) or ENGRAM_ENOMEM. */
int gossip_swim_learn(gossip_swim_t *self, const gossip_member_t *member, uint64_t now_ms);
/*  Decommission for good: marks id LEFT with stmt (checked with verify_leave), to be gossiped.
 *  0, ENGRAM_EINVAL (refused) or ENGRAM_ENOMEM. */
int gossip_swim_leave(gossip_swim_t *self, uint64_t id, const uint8_t *stmt, size_t len,
                      uint64_t now_ms);
/*  Static membership (tests, fixed setups): add admits id as ALIVE without a card (if it is
 *  neither known nor this node); remove forgets it without a word to anyone (it may be learned
 *  again; this node's own record stays). */
void gossip_swim_add(gossip_swim_t *self, uint64_t id, uint64_t now_ms);
void gossip_swim_remove(gossip_swim_t *self, uint64_t id);

/*  The member's record, or false if unknown. */
bool gossip_swim_member(const gossip_swim_t *self, uint64_t id, gossip_member_t *member);
/*  The members this node knows, itself included; gossip_swim_at gives the index-th in
 *  ascending id order (index < gossip_swim_size). */
size_t gossip_swim_size(const gossip_swim_t *self);
void gossip_swim_at(const gossip_swim_t *self, size_t index, gossip_member_t *member);
/*  A random member other than this node whose state is in mask (bit 1 << state): true and
 *  *id, or false when there is none. */
bool gossip_swim_pick(gossip_swim_t *self, unsigned mask, uint64_t *id);

/*  Lifeguard's local health score: 0 (healthy) .. 8; the probe interval and timeout are
 *  stretched by (score + 1). */
unsigned gossip_swim_health(const gossip_swim_t *self);
const gossip_swim_stats_t *gossip_swim_stats(const gossip_swim_t *self);

#endif
