/*  gossip_engine: one node's replication protocol as a sans-I/O state machine (DESIGN.md
 *  section 6). No socket, file or clock is touched here: the engine consumes events (a local
 *  operation, a message from a peer, a timer tick with `now`) and produces messages for the
 *  transport to send (gossip_engine_next). The same engine runs in engramd over ZeroMQ and in
 *  tests/sim/ over a simulated network.
 *
 *  Push: a local operation's delta goes at once to `fanout` random peers with its
 *  dependencies (the scope's context just before it). A receiver applies a push only when its
 *  context covers the dependencies, so every node applies a scope's operations in causal order;
 *  otherwise it drops it and pulls from the sender. Pushes are never forwarded, so a peer never
 *  gets back what it sent.
 *
 *  Pull (Scuttlebutt-style anti-entropy by version vectors): on each tick the engine sends one
 *  random peer a digest, its context per scope; the peer answers, per scope the asker lacks
 *  anything of, with crdt_scope_delta_since: traffic proportional to what the asker misses. An
 *  answer larger than max_message_bytes is cut into chunks that the receiver stages and applies
 *  as one unit, so pulls keep causal order too.
 *
 *  Bad input from peers (undecodable, truncated, oversized, replayed, out-of-order) is counted
 *  in the stats, logged by the caller if it likes, and changes nothing.
 *
 *  Membership is a static peer list for now (gossip_engine_add_peer / remove_peer); SWIM
 *  probing comes on top of this engine. Not thread-safe: one owner.
 */
#ifndef GOSSIP_ENGINE_H
#define GOSSIP_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crdt/ctx.h"
#include "crdt/scope.h"

/*  What the engine replicates: the node's shared scopes, behind an interface so that engramd
 *  (RocksDB) and the simulator (memory) provide their own. It can name shared scopes only. */
typedef struct {
    /*  Calls fn for every shared scope the store holds. */
    void (*each_scope)(void *store, void (*fn)(void *arg, const char *scope), void *arg);
    /*  The scope's context; NULL if the store does not hold it. Borrowed until the next apply. */
    const crdt_ctx_t *(*ctx)(void *store, const char *scope);
    /*  The catch-up delta for a replica at `since`, or NULL. Caller owns. */
    crdt_scope_t *(*delta_since)(void *store, const char *scope, const crdt_ctx_t *since);
    /*  Joins a causally ready delta into the scope (creating it), as one unit. 0 or a code. */
    int (*apply)(void *store, const char *scope, const crdt_scope_t *delta);
} gossip_store_t;

typedef struct {
    uint64_t node_id;          /* this node */
    unsigned fanout;           /* peers each push goes to */
    size_t max_message_bytes;  /* budget of one message; larger pulls are chunked. At least
                                  2 * (ENGRAM_MAX_KEY_BYTES + 64) = 2176: a smaller budget is
                                  raised to that, so a chunk always fits its scope name. A push
                                  over the budget is not sent (the peers pull it). */
    uint64_t seed;             /* for the choice of peers */
} gossip_config_t;

typedef struct {
    uint64_t pushes_sent, pushes_applied, pushes_held_back, pushes_redundant;
    uint64_t digests_sent, pulls_answered, pull_deltas_applied, chunks_sent, chunks_received;
    uint64_t bytes_sent, bytes_received, bad_messages;
} gossip_stats_t;

typedef struct gossip_engine gossip_engine_t;

gossip_engine_t *gossip_engine_new(const gossip_config_t *config, const gossip_store_t *store,
                                   void *store_state);
void gossip_engine_destroy(gossip_engine_t **self_p);

void gossip_engine_add_peer(gossip_engine_t *self, uint64_t peer);
void gossip_engine_remove_peer(gossip_engine_t *self, uint64_t peer);

/*  A local operation on scope: delta is what the mutator returned, deps the scope's context
 *  just before it. Queues the pushes. */
int gossip_engine_local(gossip_engine_t *self, const char *scope, const crdt_scope_t *delta,
                        const crdt_ctx_t *deps);
/*  A message from peer `from`. Returns 0, or ENGRAM_EDECODE etc. for bad input (counted,
 *  nothing changed). */
int gossip_engine_receive(gossip_engine_t *self, uint64_t from, const uint8_t *msg, size_t len,
                          uint64_t now_ms);
/*  The timer: sends one digest to a random peer, drops stale chunk staging. */
void gossip_engine_tick(gossip_engine_t *self, uint64_t now_ms);

/*  Pops the next message to send: true and (*peer, *buf, *len) with *buf the caller's to
 *  free(), or false when there is none. */
bool gossip_engine_next(gossip_engine_t *self, uint64_t *peer, uint8_t **buf, size_t *len);

const gossip_stats_t *gossip_engine_stats(const gossip_engine_t *self);

#endif
