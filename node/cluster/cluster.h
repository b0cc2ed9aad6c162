/*  node_cluster: engramd's replication, the gossip engine (gossip/engine.h) over ZeroMQ.
 *
 *  Sockets, all owned by the server's thread:
 *    - gossip: a ROUTER bound to the node's gossip endpoint (tcp://HOST:PORT), CurveZMQ server
 *      with the node's CURVE key (derived from its Ed25519 identity), ZAP domain
 *      NODE_ZAP_GOSSIP. The process's ZAP handler (node/trust/zap.h, which the daemon runs, not
 *      this module) admits a connecting key only if DATA/peers holds its certificate, and
 *      DATA/peers holds exactly the keys of members whose admission card this node verified:
 *      a peer without an admitted key cannot connect. Every frame's sender is the member the CURVE
 * key belongs to (ZeroMQ's User-Id), never an id the frame claims. A removed member may still
 *      connect, but the engine refuses all it sends and answers with the admin's
 *      decommission, so that the removed node learns it (and then refuses shared writes).
 *    - one DEALER per member, CurveZMQ client, connected to the member's gossip endpoint:
 *      messages to a member go out on its DEALER, answers come back on the gossip ROUTER.
 *      Sends never block (ZMQ_IMMEDIATE, no wait): a message a peer cannot take now is
 *      dropped and its content comes back through anti-entropy. A link that is not up yet
 *      (new, or reconnecting) holds what its dealer refuses until it takes it, bounded in
 *      size and time (LINK_HOLD_* in internal.h).
 *    - introduction: a ROUTER on the gossip port + 1 with no CURVE, because a joiner does not
 *      yet know any member's key. It takes one message, an Introduction with the joiner's
 *      admission card (proto/cluster.proto); a card the cluster's admin signed makes the
 *      joiner a member (its key goes into DATA/peers) and the answer carries this node's
 *      card, from which the joiner takes the key to connect with. Nothing else is accepted
 *      there. Nothing there is authenticated either (cards are public): an introduction
 *      never changes the record of a member already known, and a new member is learned at
 *      incarnation 0, so its endpoint and incarnation come from its own CurveZMQ messages. A
 *      refusal carries no card and is logged at most once a second.
 *
 *  Ordering with the server's group commit: the server calls node_cluster_receive during its
 *  turn (remote deltas are applied to the store unsynced, like local writes), syncs if one of
 *  the turn's requests wrote or node_cluster_has_data (unless node_cluster_hold keeps the
 *  turn's messages for a later turn, which syncs before it sends them), then calls
 *  node_cluster_send: pushes of
 *  local writes, acks of applied pushes, digests and pull answers leave only once what they
 *  announce is durable (under durability=async: written out to the WAL's file). What a turn
 *  applied and sent nothing about stays unsynced until such a turn.
 *
 *  Storage failures: a node whose store stops taking writes (a read-only data directory, a
 *  latched I/O error; node_store_failure) stays a member: SWIM goes on, so its peers keep it
 *  ALIVE and their stable cuts are bounded only by what it holds. Each turn the engine is told
 *  what the store can do (gossip_engine_set_storage): if everything the store holds is durable
 *  (node_store_failure_durable) it answers digests from it and reports what it holds; if writes
 *  are in doubt it sends no data but what earlier syncs made durable and it had not sent yet
 *  (held: node_cluster_hold). A replica holds what it applied unsynced from each
 *  apply until its next data message (a tick for a push), so a write error latched while it
 *  takes pushes usually leaves writes in doubt (a failed sync always does). It applies
 *  nothing, and collects no garbage.
 *  `engram cluster status` shows the state (storage: ok, read-only, failed: ERROR).
 *
 *  Membership (alive, suspect, dead, left, by incarnation) is the engine's; this module keeps
 *  the sockets and DATA/peers in step with it and persists it in DATA/members, so a restarted
 *  node knows its peers and a removed node stays removed.
 */
#ifndef NODE_CLUSTER_H
#define NODE_CLUSTER_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "gossip/engine.h"
#include "node/store/store.h"
#include "node/trust/admission.h"

typedef struct {
    const char *data_dir;        /* DATA/peers and DATA/members live here */
    const char *gossip_endpoint; /* tcp://HOST:PORT, PORT explicit */
    const char *admission_path;  /* the node's card (engram node admit) */
    const char *join;            /* a member's gossip endpoint, or NULL */
    unsigned fanout;
    uint64_t gossip_interval_ms; /* how often a digest goes out */
    size_t max_message_bytes;    /* gossip message budget (below the sockets' max size) */
    uint64_t hold_ms;            /* how long a busy node's pushes may wait (node_cluster_hold) */
} node_cluster_config_t;

typedef struct node_cluster node_cluster_t;

/*  The folder of the data directory that holds the admitted members' certificates. */
#define NODE_CLUSTER_PEERS_DIR "peers"

/*  Loads the card, binds the sockets, learns the remembered members. Gossip is authenticated
 *  only while the process runs a ZAP handler over DATA/NODE_CLUSTER_PEERS_DIR (node_zap_new):
 *  without one, libzmq would admit any CURVE client. On failure returns a code and writes a
 *  one-line reason into why. */
int node_cluster_new(const node_cluster_config_t *config, node_store_t *store,
                     node_cluster_t **self_p, char *why, size_t why_len);
void node_cluster_destroy(node_cluster_t **self_p);

/*  The sockets the server polls. */
zsock_t *node_cluster_gossip_socket(node_cluster_t *self);
zsock_t *node_cluster_intro_socket(node_cluster_t *self);

/*  A local write on shared scope sid: delta from the mutator, deps the context before it;
 *  await_ack when its reply waits for replicas (node_cluster_holders). */
void node_cluster_local(node_cluster_t *self, const char *sid, const crdt_scope_t *delta,
                        const crdt_ctx_t *deps, bool await_ack);
/*  Reads what waits on the cluster's sockets (at most max messages from each: what is left
 *  waits for the next call), runs the engine's timers. Returns the gossip messages read. */
unsigned node_cluster_receive(node_cluster_t *self, unsigned max, uint64_t now_ms);
/*  Whether this turn's messages wait for a later turn's (the hold), decided once a turn
 *  before its sync, for node_cluster_send: yes if this node's writes were queued since their
 *  last push, that push was less than config.hold_ms ago, nothing queued is urgent (a write
 *  whose reply waits for replicas, or an ack such a write's push asked for:
 *  gossip_engine_urgent) and the store is sound. A node busy with writes so pushes to a peer
 *  once every hold_ms instead of once a turn, one delta a scope for the writes of all its
 *  turns since (gossip_engine_seal), and its replicas apply fewer, larger deltas (README,
 *  "Gossip held while a node is busy"). A held write is durable and answered; its push leaves
 *  up to hold_ms later with the turn's other messages (SWIM's among them: at hold_ms <= 50,
 *  well within a probe's timeout). node_cluster_timeout wakes the loop when the hold ends. A
 *  turn that holds need not sync for its peers' data: nothing leaves in it. */
bool node_cluster_hold(node_cluster_t *self);
/*  Sends the engine's queued messages, unless node_cluster_hold decided to hold them; call
 *  after the turn's sync, every turn, with whether it failed (durable: it did not) and whether
 *  the turn synced (under async: wrote out) at all. A synced turn seals what is queued
 *  (gossip_engine_seal): it is durable. After a failed sync the data messages and writes
 *  queued since the last seal are dropped, what was sealed still goes (whatever the storage
 *  state), and membership messages go whatever the store does (see "Storage failures"
 *  above). */
void node_cluster_send(node_cluster_t *self, bool durable, bool synced);
/*  Whether data (pushes, acks, digests, pull answers) is queued: what announces the node's
 *  writes, so they must be durable before node_cluster_send sends it (in a turn that holds,
 *  it sends none). Membership messages need not. */
bool node_cluster_has_data(const node_cluster_t *self);
/*  Milliseconds until the cluster needs the loop again (a held send's time included). */
int node_cluster_timeout(node_cluster_t *self, uint64_t now_ms);

/*  How many members other than this node are known to hold dot (node, n) of sid. */
unsigned node_cluster_holders(node_cluster_t *self, const char *sid, uint64_t node, uint64_t n);
/*  How many nodes could ever hold a write: this one and every member that has not left. */
unsigned node_cluster_possible_holders(node_cluster_t *self);
/*  Decommissions a node for good with an admin statement (a node not yet known is banned
 *  before it ever joins). 0, or ENGRAM_EDENIED for a statement this cluster's admin did not
 *  sign. */
int node_cluster_remove(node_cluster_t *self, uint64_t id, const uint8_t *statement, size_t len);
/*  Starts (or restarts) joining through a member's gossip endpoint. */
int node_cluster_join(node_cluster_t *self, const char *endpoint);

/*  One member as this node sees it. Lag is what the member is known to lack of this node's
 *  shared scopes (from its digests and push acknowledgements). */
typedef struct {
    uint64_t id;
    const char *state; /* static text: alive, suspect, dead, left; "self" for this node */
    uint64_t incarnation;
    char *endpoint;       /* owned */
    uint64_t lag_ops;     /* operations this node holds that the member is not known to */
    uint64_t lag_bytes;   /* encoded size of the delta that would bring it up to date */
    bool lag_known;       /* false until the member has told what it holds */
    bool lag_bytes_known; /* false also when measuring it was past the budget (see below) */
} node_cluster_member_status_t;

/*  One shared scope of this node. */
typedef struct {
    char *scope;      /* owned */
    char *vector;     /* owned: the version vector, "node:n ..." (hex node ids) */
    uint64_t ops;     /* operations in the context */
    uint64_t garbage; /* op records waiting for the stable cut */
} node_cluster_scope_status_t;

/*  The facts of `engram cluster status`. */
typedef struct {
    char cluster_id[2 * NODE_CLUSTER_ID_BYTES + 1]; /* hex */
    uint64_t node_id;
    char *endpoint;                        /* owned: this node's gossip endpoint */
    node_cluster_member_status_t *members; /* owned, n_members of them */
    size_t n_members;
    node_cluster_scope_status_t *scopes; /* owned, n_scopes of them */
    size_t n_scopes;
    uint64_t pushes_sent, pushes_applied, pushes_held_back, digests_sent;
    uint64_t pulls_answered, pull_deltas_applied, bytes_sent, bytes_received;
    uint64_t lean_deltas;       /* deltas sent with a step's value left to its entry */
    uint64_t compressed_sent;   /* gossip messages sent compressed */
    uint64_t compression_saved; /* bytes their compression kept off the wire */
    uint64_t acks_sent;         /* acks of pushes sent */
    uint64_t acks_deferred;     /* of them, those sent at a tick for the pushes since */
    uint64_t sends_held;        /* turns whose messages waited for a later one (hold_ms) */
    uint64_t gc_rounds;         /* collection rounds finished (each scope once, in passes; one
                                 * whose stable cut was not known yet waits for the next) */
    uint64_t gc_dropped;        /* op records they dropped below stable cuts */
    uint64_t bad_messages;      /* the engine's and the transport's */
    unsigned local_health;      /* Lifeguard score 0..8 */
    char storage[96];           /* "ok", "read-only" or "failed: ERROR" */
    uint64_t bad_scope;         /* messages refused for a scope name (in bad_messages) */
} node_cluster_status_t;

/*  The gossip engine's traffic so far: cheap, unlike node_cluster_status (no lag computed). */
typedef struct {
    uint64_t bytes_sent, bytes_received;
    uint64_t deltas_applied; /* pushed and pulled */
} node_cluster_traffic_t;
void node_cluster_traffic(node_cluster_t *self, node_cluster_traffic_t *traffic);

/*  Gathers the cluster's status. A member's lag in bytes is measured by building and encoding
 *  the delta it lacks, which costs what that delta holds: it is measured only while the
 *  operations encoded for this status stay within lag_bytes_budget (UINT64_MAX: always).
 *  Caller owns *status_p and frees it with node_cluster_status_free. 0 or ENGRAM_ENOMEM. */
int node_cluster_status(node_cluster_t *self, uint64_t lag_bytes_budget,
                        node_cluster_status_t **status_p);
void node_cluster_status_free(node_cluster_status_t **status_p);

/*  Called with each remote delta just before (applied false) and just after (applied true) it
 *  is applied to the store (unsynced), e.g. to tell the scope's subscribers what it changes. */
typedef void (*node_cluster_applied_fn)(void *arg, const char *sid, const crdt_scope_t *delta,
                                        bool applied);
void node_cluster_on_applied(node_cluster_t *self, node_cluster_applied_fn fn, void *arg);

/*  Whether an admin removed this node from the cluster (it then refuses shared writes). */
bool node_cluster_removed(const node_cluster_t *self);
/*  Whether the node is in its cluster: not decommissioned, and either not joining (a --join
 *  or `engram cluster join` whose member has not answered yet) or holding another member alive
 *  (a restarted node that knows its members is in even while the one it joins through is
 *  down). */
bool node_cluster_joined(node_cluster_t *self);
/*  False while the dot check at start runs (at most DOT_CHECK_MS, 3 s): shared writes wait. */
bool node_cluster_dots_checked(const node_cluster_t *self);

#endif
