/*  gossip_engine: one node's replication protocol as a sans-I/O state machine. No socket, file
 *  or clock is touched here: the engine consumes events (a local operation, a message from a
 *  peer, a timer tick with `now`) and produces messages for the transport to send
 *  (gossip_engine_next). The same engine runs in engramd over ZeroMQ and in tests/sim/ over a
 *  simulated network. engine.c holds the data plane, swim.c the membership.
 *
 *  Membership is SWIM with Lifeguard (gossip/swim.h): the engine owns a gossip_swim_t, hands
 *  it the SWIM messages and ticks, sends what it emits, and learns of members through its
 *  callbacks. The membership calls below (learn, leave, each_member, member, add_peer,
 *  remove_peer, health) are SWIM's, on the engine's clock (the `now` of its latest event); the
 *  hooks reach SWIM through the engine. A LEFT node (gossip_engine_leave of its own id, or
 *  hearing a verified statement about itself) stops pushing, pulling and probing. What each
 *  member is known to hold, and when it answered gossip_engine_ask_digests, live in the
 *  engine's peer table, keyed by member id; an entry goes when its member turns LEFT or is
 *  removed.
 *
 *  Storage (gossip_engine_set_storage): the node's store may stop taking writes (a read-only
 *  data directory, a latched I/O error). Membership goes on whatever the store does, so the
 *  node stays ALIVE to its peers. A store that takes no delta applies nothing received (pushes
 *  and chunks are dropped, counted in `unstored`, never as bad input) and asks for nothing;
 *  if what it holds is durable (GOSSIP_STORAGE_READ_ONLY) it still answers digests from it,
 *  acknowledges pushes it already holds, and instead of a digest (which would make the peer
 *  send what it lacks, in vain) reports its context of every scope as acks, so that peers
 *  know what it holds and their stable cuts move up to it. If what it holds may not be
 *  durable (GOSSIP_STORAGE_FAILED: writes since the last sync are in doubt) no data message
 *  leaves but what was sealed before (gossip_engine_seal: durable when queued).
 *  gossip_engine_drop_data drops the queued data messages of a turn whose sync failed (what
 *  they announce is not durable), and keeps what an earlier sync sealed but its caller has not
 *  sent yet.
 *
 *  Push: a local operation's delta (its history step included, as the op's note) goes with
 *  the caller's next send (gossip_engine_next; a caller busy with writes may wait a few ms and
 *  seal several syncs' operations into one push, gossip_engine_seal) to `fanout` random ALIVE
 *  members, then SUSPECT ones for the slots left (a suspect is most often only slow) with its
 *  dependencies (the scope's context just before it). A receiver
 *  applies a push only when its context covers the dependencies, so every node applies a
 *  scope's operations in causal order; otherwise it drops it and pulls from the sender. Pushes
 *  are never forwarded, so a peer never gets back what it sent. A receiver that applied a push,
 *  or already held it, answers with a GossipAck carrying its context of the scope (through the
 *  outbox, so after the node's fsync): the origin learns what each peer holds
 *  (gossip_engine_peer_ctx). It answers at once when the push asks for it (an operation whose
 *  caller waits for replicas: gossip_engine_local's await_ack); otherwise (`ack_later`) at its
 *  next tick, one ack per (sender, scope) for every such push since, with the context of then;
 *  an ack sent at once pays what was owed to that (sender, scope). Pushes far outnumber what
 *  waits on their acks: an ack per push was 4-7% of the bytes of replicating a 64-byte write.
 *  What the origin knows of a peer (its stable cut, `engram cluster status` lag) trails by up
 *  to a tick more. A node that has LEFT drops what it owes.
 *
 *  Deltas (pushes and pull answers) carry their notes in the store's wire form (note_wire) to
 *  a peer whose latest message gives schema minor GOSSIP_LEAN_NOTES_MINOR or later, in the
 *  form of that minor (the store's forms grow with the schema), and as they are to others (one
 *  never heard yet, or an older version in a rolling upgrade). A push is encoded once per
 *  minor among its targets.
 *
 *  Pull (Scuttlebutt-style anti-entropy by version vectors): every gossip interval the engine
 *  sends one ALIVE or SUSPECT member a digest, its context per scope, going round the members
 *  in shuffled rounds (each hears from it once per round of N - 1 intervals); the peer answers,
 *  per scope the asker lacks anything of, with crdt_scope_delta_since: traffic proportional to
 *  what the asker misses. Digests received also tell what their sender holds.
 *
 *  One peer is asked at a time, or every peer would send the same gap (a node catching up K
 *  writes received 2x the delta it needed). An ask that is awaited (a periodic digest to a peer
 *  known to hold more, or of which nothing is known yet; a digest showing what its sender
 *  holds; a held-back push; the dot check's asks) carries `reply`, so the peer's answer digest
 *  follows its deltas. The wait ends with that digest, or ASK_WAIT_MS after the last part of
 *  the answer (or the ask) arrived, or when the transport could not send the ask
 *  (gossip_engine_unsent). While it lasts, digests carry no_deltas (to the awaited peer too: it
 *  would send the gap again) and what digests show this node lacks is not asked. A peer whose
 *  awaited answer brought nothing (it had nothing it could send, a failed store, a lossy link)
 *  or a part this node refused, could not read or could not store (a peer's bug, another
 *  version's, a full volume: else the digest ending that answer would ask for it again at once,
 *  back and forth) is quiet for QUIET_MS: periodic digests to it await nothing (they still pull
 *  what it holds), its digests prompt no ask of it, and the dot check does not pick it to send
 *  the gap (but asks it for lost dots it is known to hold: gossip_engine_pull_unseen). An
 *  answer larger than max_message_bytes is cut into chunks that the receiver stages and applies
 *  as one unit, so pulls keep causal order too. Each chunk carries the whole answer's length
 *  and SipHash, checked before the apply; parts of equal (length, hash) from one peer fill one
 *  staging slot, so a re-sent answer completes a lossy first one. At most 4 transfers are
 *  staged per peer (the oldest goes); parts are copied as they arrive, never more bytes than
 *  the transfer's claimed total, within max_staged_peer_bytes per peer and max_staged_bytes in
 *  all (a part past either drops its transfer, counted in staging_refused); the whole is
 *  assembled only once every part is in and their lengths add up to the total (so a peer's
 *  claim allocates nothing). A multi-part answer for one (peer, scope) is sent at most once per
 *  ANSWER_RESEND_MS; an answer larger than max_staged_peer_bytes (the most a receiver stages)
 *  is not sent (answers_too_big): the scope cannot be pulled until the budget grows. An answer
 *  too big only with the history steps its operations carry as notes goes without them
 *  (answers_without_steps): history never holds back the state; the asker then lacks those
 *  steps for good. An answer is built whole in memory (the delta, its encoding, then its parts
 *  in the outbox): at most about three times max_staged_peer_bytes while it is cut.
 *
 *  Compression: a message of GOSSIP_COMPRESS_MIN_BYTES or more (a push, a chunk of an answer, a
 *  digest of many scopes, a membership exchange) to a peer whose latest message gives schema
 *  minor GOSSIP_COMPRESSED_MINOR or later goes as one Zstandard frame (level 1) in a Gossip
 *  whose body is `compressed`, when that is shorter; to other peers as it is. Deltas repeat
 *  their metadata from op to op (scope, agents, keys' prefixes, stamps close together) and
 *  text values compress too, so a push of a few 64-byte writes shrinks to about 0.4 of its
 *  size (engram-cluster-bench --only bytes). The envelope must hold exactly one frame of the
 *  current Zstandard format (no legacy, skippable or trailing frame), which records its size,
 *  at most max_message_bytes (every message is budgeted by it before compression) and less
 *  than GOSSIP_COMPRESS_MAX_RATIO times the frame's length, and inflates to exactly that; the
 *  inner message must not be compressed again; otherwise the message is bad input
 *  (bad_decode), and nothing is allocated for it. The envelope's schema fields are the
 *  sender's word for the inner message. A message that would shrink past the ratio goes as
 *  it is. bytes_sent and bytes_received count what crosses the wire; compressed_sent the
 *  messages queued compressed and compression_saved the bytes that saved.
 *
 *  Outbox: at most max_outbox_bytes of data messages are queued (more are dropped and counted
 *  in outbox_dropped; anti-entropy brings their content later), membership messages up to
 *  twice that, so a caller that stops draining it cannot make it grow without end.
 *
 *  Garbage: gossip_engine_stable_cut is the meet of this node's context and what every member
 *  that is not LEFT is known to hold; a DEAD member blocks it until it is decommissioned.
 *
 *  Peer knowledge: what each peer holds is kept per scope in a hash table (keyed by SipHash
 *  with a per-engine random key), the contexts in a gossip_ctx_pool_t (equal ones are one
 *  copy); so is the schema minor of its latest message, which says whether it reads notes in
 *  the store's wire form (note_wire) and compressed messages. The scopes this node holds
 *  itself are bounded by its own
 *  store; of the others, a peer may make it remember at most max_peer_scopes: a message that
 *  would pass that is refused (bad_peer_scopes), and one naming only scopes this node holds
 *  never is, however many there are.
 *
 *  Bad input from peers (undecodable, truncated, oversized, replayed, out-of-order, from an
 *  unknown or LEFT sender, a card or statement the hooks refuse, a scope name the store's
 *  scope_ok refuses in any push, ack, chunk or digest entry) is counted in the stats (one
 *  counter per kind, bad_messages the total), logged by the caller if it likes, and changes
 *  nothing, except that the valid records of a membership message with one bad record are
 *  still merged.
 *
 *  gossip_engine_add_peer / remove_peer remain for static setups and tests: add_peer admits
 *  an id without a card (ALIVE, incarnation 0), remove_peer forgets it. Not thread-safe: one
 *  owner.
 */
#ifndef GOSSIP_ENGINE_H
#define GOSSIP_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crdt/codec.h"
#include "crdt/ctx.h"
#include "crdt/scope.h"
#include "engram/limits.h"
#include "gossip/swim.h" /* gossip_state_t, gossip_member_t, the GOSSIP_DEFAULT_* of SWIM */

/*  What the engine replicates: the node's shared scopes, behind an interface so that engramd
 *  (RocksDB) and the simulator (memory) provide their own. It can name shared scopes only. */
typedef struct {
    /*  Calls fn for every shared scope the store holds. */
    void (*each_scope)(void *store, void (*fn)(void *arg, const char *scope), void *arg);
    /*  The scope's context; NULL if the store does not hold it. Borrowed until the next apply. */
    const crdt_ctx_t *(*ctx)(void *store, const char *scope);
    /*  The catch-up delta for a replica at `since`, or NULL. Caller owns. */
    crdt_scope_t *(*delta_since)(void *store, const char *scope, const crdt_ctx_t *since);
    /*  Joins a causally ready delta into the scope (creating it), as one unit. 0 or a code;
     *  ENGRAM_EIO, ENGRAM_ENOSPC and ENGRAM_EREADONLY say the store cannot write (counted in
     *  `unstored`, not as the peer's fault). */
    int (*apply)(void *store, const char *scope, const crdt_scope_t *delta);
    /*  Whether a scope name from a peer is one this store could hold. Checked for every scope
     *  named in every data message before anything else. NULL: gossip_engine_scope_ok. */
    bool (*scope_ok)(void *store, const char *scope);
    /*  The wire form of an op's note for a peer whose messages give schema minor
     *  reader_minor (GOSSIP_LEAN_NOTES_MINOR or later, at most this node's), as
     *  crdt_note_wire_fn: a shorter one the receiving store expands from the op's entry in the
     *  same delta, in a form that minor reads. NULL: notes go as they are. */
    int (*note_wire)(void *store, uint32_t reader_minor, crdt_dot_t op, const uint8_t *note,
                     size_t len, const crdt_dot_entry_t *entry, uint8_t **out, size_t *out_len);
} gossip_store_t;

/*  The first schema minor whose stores expand notes sent in their wire form (note_wire). */
#define GOSSIP_LEAN_NOTES_MINOR 2
/*  The first schema minor whose engines read compressed messages (Gossip.compressed). */
#define GOSSIP_COMPRESSED_MINOR 3
/*  Messages shorter than this go as they are: Zstandard's frame would take what it saves. */
#define GOSSIP_COMPRESS_MIN_BYTES 256
/*  A frame inflates to less than this many times its own length, or it is refused (and a
 *  message that would compress better goes as it is): a peer's 30-byte frame cannot make
 *  this node allocate and decode a whole message budget. Deltas compress about 2.5 times. */
#define GOSSIP_COMPRESS_MAX_RATIO 64

/*  The default scope check: KIND:ID, both non-empty, at most ENGRAM_MAX_KEY_BYTES bytes, no
 *  ASCII control byte. */
bool gossip_engine_scope_ok(const char *scope);

/*  What the node's store can do (gossip_engine_set_storage). */
typedef enum {
    GOSSIP_STORAGE_OK,        /* it takes deltas */
    GOSSIP_STORAGE_READ_ONLY, /* it takes none, and everything it holds is durable */
    GOSSIP_STORAGE_FAILED,    /* it takes none, and what it holds may not be durable */
} gossip_storage_t;

typedef struct {
    /*  True when card admits node id to this cluster (node/ checks an admin Ed25519 signature
     *  and that id matches the key). A member whose card fails is never added and the message
     *  is counted bad. NULL: every member is admitted (tests). */
    bool (*admit)(void *arg, uint64_t id, const uint8_t *card, size_t len);
    /*  True when stmt is a valid admin decommission of node id. NULL: accept. */
    bool (*verify_leave)(void *arg, uint64_t id, const uint8_t *stmt, size_t len);
    /*  Called after a member is added or its state, incarnation or endpoint changes (also for
     *  LEFT, and for this node's own refutations). NULL: none. Hooks run inside engine calls:
     *  they must not call back into the engine. All three reach SWIM as its callbacks. */
    void (*changed)(void *arg, const gossip_member_t *member);
    void *arg;
} gossip_hooks_t;

/*  The smallest message budget: a smaller one is raised to it, so that a chunk always fits
 *  its scope name (one chunk's framing is at most half of it). */
#define GOSSIP_CHUNK_OVERHEAD    (ENGRAM_MAX_KEY_BYTES + 64)
#define GOSSIP_MIN_MESSAGE_BYTES (2 * GOSSIP_CHUNK_OVERHEAD)

/*  The probe, suspicion and sync fields are passed to the SWIM object (gossip_swim_config_t; a
 *  zero takes the GOSSIP_DEFAULT_* of swim.h), with node_id, endpoint, card, incarnation and
 *  the budget. */
typedef struct {
    uint64_t node_id;         /* this node */
    unsigned fanout;          /* peers each push goes to */
    size_t max_message_bytes; /* budget of one message; larger pulls are chunked. At least
                                 GOSSIP_MIN_MESSAGE_BYTES (2176). A push over the budget is
                                 not sent (the peers pull it). */
    uint64_t seed;            /* for every random choice (push targets, probes, partners) */
    const char *endpoint;     /* this node's gossip endpoint (copied); NULL: "" */
    const uint8_t *card;      /* this node's admission certificate (copied); may be empty */
    size_t card_len;
    uint64_t incarnation;        /* start value: engramd passes its start time in ms, so that a
                                    restart always refutes what others remember of it */
    uint64_t probe_interval_ms;  /* one probe per interval */
    uint64_t probe_timeout_ms;   /* direct ping unanswered this long: ping-req */
    unsigned suspicion_mult;     /* SUSPECT -> DEAD after mult * log10(N+1) probe intervals */
    uint64_t gossip_interval_ms; /* one digest per interval; 0: one per tick */
    unsigned indirect_probes;    /* k: members asked to ping on our behalf */
    uint64_t sync_interval_ms;   /* full membership exchange with one member per interval */
    /* Memory bounds (0: the GOSSIP_DEFAULT_* below). */
    size_t max_peer_scopes;       /* scopes this node does not hold remembered per peer */
    size_t max_staged_peer_bytes; /* chunk bytes staged per peer; also the largest answer */
    size_t max_staged_bytes;      /* chunk bytes staged in all */
    size_t max_outbox_bytes;      /* data messages queued; membership ones up to twice it */
} gossip_config_t;

#define GOSSIP_DEFAULT_MAX_PEER_SCOPES 65536
/*  In message budgets, a budget below GOSSIP_DEFAULT_BUDGET_FLOOR counting as that: 64 MiB,
 *  256 MiB and 128 MiB at the default 1 MiB budget and below. */
#define GOSSIP_DEFAULT_BUDGET_FLOOR        (1024 * 1024)
#define GOSSIP_DEFAULT_STAGED_PEER_BUDGETS 64
#define GOSSIP_DEFAULT_STAGED_BUDGETS      256
#define GOSSIP_DEFAULT_OUTBOX_BUDGETS      128

typedef struct {
    uint64_t pushes_sent, pushes_applied, pushes_held_back, pushes_redundant;
    uint64_t pushes_coalesced; /* local operations joined into a push of an earlier one */
    uint64_t digests_sent, pulls_answered, pull_deltas_applied, chunks_sent, chunks_received;
    uint64_t lean_deltas; /* pushes and answers sent with a note in its wire form (note_wire) */
    uint64_t bytes_sent, bytes_received, bad_messages;
    uint64_t compressed_sent;   /* messages sent compressed (Gossip.compressed) */
    uint64_t compression_saved; /* bytes their compression kept off the wire */
    /* Each rejected message counted once, by its first fault (they add up to bad_messages). */
    uint64_t bad_decode;         /* undecodable, newer major schema, invalid field */
    uint64_t bad_chunk;          /* a part contradicting its transfer, wrong length or hash */
    uint64_t bad_unknown_sender; /* from an id that is not a member */
    uint64_t bad_left_sender;    /* from a LEFT member */
    uint64_t bad_card;           /* a card the admit hook refused */
    uint64_t bad_leave;          /* a decommission the verify_leave hook refused */
    uint64_t bad_apply;          /* a delta the store refused */
    uint64_t bad_scope;          /* a scope name scope_ok refused */
    uint64_t bad_peer_scopes;    /* more scopes than a peer may make this node remember */
    /* Replication extras. */
    uint64_t acks_sent, acks_received, answers_deferred;
    /* of acks_sent, those sent at a tick for the pushes with ack_later since the last one (one
       per peer and scope) */
    uint64_t acks_deferred;
    uint64_t unstored;              /* pushes and chunks received while the store takes no delta */
    uint64_t staging_refused;       /* transfers dropped: past a staging bound */
    uint64_t answers_too_big;       /* answers not sent: larger than max_staged_peer_bytes */
    uint64_t answers_without_steps; /* answers sent without their history steps (notes):
                                       too big with them */
    uint64_t pushes_too_big;        /* pushes not sent: over max_message_bytes (peers pull them) */
    uint64_t outbox_dropped;        /* messages not queued: the outbox was full */
    uint64_t data_dropped;          /* data messages dropped by the storage state or drop_data */
    gossip_swim_stats_t swim;       /* membership: its SWIM object's counters (gossip/swim.h) */
} gossip_stats_t;

typedef struct gossip_engine gossip_engine_t;

gossip_engine_t *gossip_engine_new(const gossip_config_t *config, const gossip_store_t *store,
                                   void *store_state);
void gossip_engine_destroy(gossip_engine_t **self_p);

void gossip_engine_set_hooks(gossip_engine_t *self, const gossip_hooks_t *hooks);
/*  A member known from elsewhere: a seed reached through `--join`, or one remembered from the
 *  last run. Checked with admit (LEFT: with verify_leave) and merged like a received record.
 *  0, ENGRAM_EINVAL (refused) or ENGRAM_ENOMEM. */
int gossip_engine_learn(gossip_engine_t *self, const gossip_member_t *member);
/*  Decommission for good: marks id LEFT (stmt checked with verify_leave) and gossips the
 *  statement so every node does. 0, ENGRAM_EINVAL (refused) or ENGRAM_ENOMEM. A LEFT member
 *  never returns, whatever incarnation it claims; messages from it are dropped and counted. If
 *  id is this node, the engine stops pushing, pulling and probing. */
int gossip_engine_leave(gossip_engine_t *self, uint64_t id, const uint8_t *stmt, size_t len);
/*  Visits every member this node knows (itself included), in ascending id order. */
void gossip_engine_each_member(gossip_engine_t *self,
                               void (*fn)(void *arg, const gossip_member_t *member), void *arg);
/*  The member's record, or false if unknown. The pointers in *member are borrowed until the
 *  next call into the engine. */
bool gossip_engine_member(gossip_engine_t *self, uint64_t id, gossip_member_t *member);
/*  What peer is known to hold of scope: from its digests and from its acks of pushes (the
 *  latest report wins). NULL if unknown. Borrowed until the next call into the engine. */
const crdt_ctx_t *gossip_engine_peer_ctx(gossip_engine_t *self, uint64_t peer, const char *scope);
/*  Dot safety at start: a data directory restored from a plain copy holds dot counters older
 *  than what its peers have seen of this replica; a write now would reuse a dot, which peers
 *  would take for one they already have. Before writing to shared scopes, a restarted node
 *  sends every member a complete digest asking for theirs back (gossip_engine_ask_digests,
 *  now_ms: the engine's clock); one ALIVE member, in turn from the node's id, answers what
 *  the node lacks (the deltas carry the replica's own lost dots, so its counters move past
 *  them) and then its digest, the others their digest only (no_deltas). Asked again while
 *  that answer is awaited, every member sends its digest only; once the wait ended, the next
 *  member in turn is asked for the deltas. Once every member was heard
 *  (gossip_engine_heard_since), the node may write. gossip_engine_holds_unseen says whether
 *  some member is known to hold a dot of `replica` that this node lacks (then its counters
 *  cannot be trusted: the caller pulls from it, gossip_engine_pull_unseen, or takes a new
 *  replica id). */
int gossip_engine_ask_digests(gossip_engine_t *self, uint64_t since_ms, uint64_t now_ms);
/*  How many of the members that are neither LEFT nor this node (*members) answered such a
 *  request at or after since_ms (ms on the engine's clock: the `now` of its events): their
 *  whole digest arrived, after the deltas it made them send. ask_digests asks only the others. */
unsigned gossip_engine_heard_since(gossip_engine_t *self, uint64_t since_ms, unsigned *members);
bool gossip_engine_holds_unseen(gossip_engine_t *self, uint64_t replica);
/*  Asks an ALIVE member known to hold such a dot for what this node lacks (its deltas bring
 *  the dot back), unless an answer is awaited already. For the dot check: the member that
 *  ask_digests asked for deltas may not have held them. */
int gossip_engine_pull_unseen(gossip_engine_t *self, uint64_t replica, uint64_t now_ms);

/*  The scope's stable cut: the meet of this node's context and the contexts every member that
 *  is not LEFT is known to hold; NULL when some member's is unknown (or out of memory). Caller
 *  owns return value and must destroy it. */
crdt_ctx_t *gossip_engine_stable_cut(gossip_engine_t *self, const char *scope);

/*  Static membership (tests, fixed setups): add_peer admits id as ALIVE without a card,
 *  remove_peer forgets it (unlike leave, it may be learned again). */
void gossip_engine_add_peer(gossip_engine_t *self, uint64_t peer);
void gossip_engine_remove_peer(gossip_engine_t *self, uint64_t peer);

/*  A local operation on scope: delta is what the mutator returned, deps the scope's context
 *  just before it. Queues the pushes. await_ack: the caller waits for peers to hold the
 *  operation (a write with replicas > 1, answered through gossip_engine_peer_ctx), so its push
 *  asks to be acknowledged at once; else receivers acknowledge it with their next tick's acks
 *  (see "Push" above). */
int gossip_engine_local(gossip_engine_t *self, const char *scope, const crdt_scope_t *delta,
                        const crdt_ctx_t *deps, bool await_ack);
/*  A message from peer `from` (the id bound to its CURVE key). Returns 0, or a code for bad
 *  input, counted: ENGRAM_EDECODE (malformed, bad chunk), ENGRAM_EVERSION, ENGRAM_ENOTFOUND
 *  (unknown sender), ENGRAM_EUNAVAILABLE (LEFT sender), ENGRAM_EINVAL (a card or statement
 *  refused), ENGRAM_ESCOPE (a scope name refused), ENGRAM_ETOOBIG (too many scopes), or the
 *  store's code for a delta it refused. */
int gossip_engine_receive(gossip_engine_t *self, uint64_t from, const uint8_t *msg, size_t len,
                          uint64_t now_ms);
/*  The timer (call it at least every probe_timeout_ms / 2): probes, suspicion timeouts, the
 *  membership exchange, the acks owed for pushes (see "Push"), one digest per gossip
 *  interval, drops stale chunk staging. */
void gossip_engine_tick(gossip_engine_t *self, uint64_t now_ms);

/*  Pops the next message to send: true and (*peer, *buf, *len) with *buf the caller's to
 *  free(), or false when there is none. *push (unless NULL): whether it is a push (never an
 *  ask), which a transport may drop rather than keep for a peer it lost: the peer pulls what
 *  it lacks (its digests, a later push held back), and a push kept for a peer that restarted
 *  reached it beside the pull answer that brought the same operations
 *  (node/cluster/internal.h, LINK_HOLD_MS). */
bool gossip_engine_next(gossip_engine_t *self, uint64_t *peer, uint8_t **buf, size_t *len,
                        bool *push);

/*  Tells the engine what the store can do now (see the top of this file); GOSSIP_STORAGE_OK
 *  at start. */
void gossip_engine_set_storage(gossip_engine_t *self, gossip_storage_t storage);
gossip_storage_t gossip_engine_storage(const gossip_engine_t *self);
/*  Drops the data messages (pushes, acks, digests, chunks) queued and the local operations
 *  given since the last gossip_engine_seal, counted in data_dropped; membership messages and
 *  what was sealed stay, the sealed operations queued as pushes now (which go whatever the
 *  storage state). For a turn whose sync failed: what those announce is not durable. */
void gossip_engine_drop_data(gossip_engine_t *self);
/*  Marks everything queued so far, messages and local operations not yet pushed, as durable:
 *  call after a sync that succeeded (one that covered every delta applied and every message
 *  queued), when the messages are not all sent at once. Operations
 *  given later join the sealed ones of their scope at the next seal, so a caller that seals
 *  at every sync and sends once every few syncs pushes one delta a scope and peer for them
 *  all (node/cluster/cluster.h, node_cluster_hold). */
void gossip_engine_seal(gossip_engine_t *self);
/*  Whether something queued should leave without waiting: a local operation whose caller
 *  waits for replicas (await_ack) or an ack sent at once (one such an operation's push asked
 *  for, or one that could not be deferred). Until gossip_engine_next finds nothing more. */
bool gossip_engine_urgent(const gossip_engine_t *self);
/*  Whether a data message is queued, or a local operation waits to be pushed: what the next
 *  gossip_engine_next calls would send that needs the node's writes durable first. */
bool gossip_engine_has_data(const gossip_engine_t *self);
/*  Tells the engine that a message it gave for peer (gossip_engine_next) could not be sent (no
 *  connection yet, or a full queue): if a pull answer from peer was awaited, it is not, so the
 *  next ask may go to any peer at once. */
void gossip_engine_unsent(gossip_engine_t *self, uint64_t peer);

const gossip_stats_t *gossip_engine_stats(const gossip_engine_t *self);
/*  This node's Lifeguard local health score: 0 (healthy) .. 8; its probe interval and timeout
 *  are stretched by (score + 1). */
unsigned gossip_engine_health(const gossip_engine_t *self);
/*  Pull answers being staged now (transfers with parts still missing). */
size_t gossip_engine_staged(const gossip_engine_t *self);
/*  The bytes of their parts. */
size_t gossip_engine_staged_bytes(const gossip_engine_t *self);
/*  The bytes of the messages queued to send. */
size_t gossip_engine_outbox_bytes(const gossip_engine_t *self);

#endif
