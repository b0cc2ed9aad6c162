/*  node_server: engramd's agent API (proto/api.proto) over a ZeroMQ ROUTER socket.
 *
 *  One thread runs the loop. Each turn reads every request waiting (up to max_batch), handles
 *  them in arrival order against the store (each write one WriteBatch, unsynced), applies what
 *  its peers sent (up to max_batch gossip messages, in order: a replica's backlog takes several
 *  turns, and a membership message behind it in the same peer's stream waits for them;
 *  node/cluster), then makes the turn's writes durable with one WAL fsync (group commit,
 *  durability=sync), and only then sends the replies and the subscription events of its own
 *  writes (a turn with only events of what peers sent may send them first: "A replica's
 *  fsync"). A reply is never sent for a write that is not yet durable; under durability=async
 *  the fsync is skipped, the replies to the requests the turn read go out together once they
 *  are all handled, before its gossip, and what it answers later (released writes, parked
 *  reads) goes at its end, as under sync. Either way a turn's writes reach the WAL's file, at
 *  its sync or with node_store_write_out (under async, before the batch's replies and again at
 *  the turn's end), before any reply, event or delta about them leaves: a process that dies
 *  loses none of them that was answered (a power loss may, under async). If the file refuses
 *  the bytes, the process stops there (node_store_write_out), before anything about them
 *  leaves.
 *
 *  A replica's fsync (durability=sync): a turn in which no request wrote and that has no gossip
 *  data to send (node_cluster_has_data: it only applied what peers pushed, whose acks wait for
 *  the tick, or pulled) skips the fsync, and so does a turn without writes whose messages wait
 *  for a later turn's (node_cluster_hold: nothing leaves in it). What it applied becomes
 *  durable at the latest with the next turn in which a request writes or that sends data: the
 *  tick's acks (node/cluster/internal.h TICK_MS) for a push, the next digest or any other data
 *  message for a pull answer. It leaves the node in no ack, digest or delta before that, so a
 *  peer never counts it as held (--replicas, the stable cut) before it is durable here. Its
 *  events and reads may show it first (a power loss here would hide it again until anti-entropy
 *  brings it back): a peer sends a delta only after its own fsync, so what they show is durable
 *  on the node it came from if that node runs durability=sync. So a turn that fsyncs with
 *  nothing to send but events of changes other nodes made (no request was answered or wrote in
 *  it) sends them before the fsync, once the WAL's file holds them (api__publish_remote): a
 *  replica's subscribers do not wait for the fsync that precedes its acks. A reply in the turn
 *  keeps them for after it, in order: a reply comes before events it does not reflect (a
 *  SUBSCRIBE's before its first event), and an event's token and counter totals, read from the
 *  store, would show the turn's own unsynced writes. Writes no request made (TTL purges,
 *  collection passes) wait for the next sync too: both are done again after a crash.
 *  tests/cli/replica_sync_test.py counts a replica's fsyncs, shows that a replica whose fsync
 *  fails never counts as a holder, that its subscribers hear of a push while the fsync before
 *  its ack is held, and that a subscription answered in such a turn is answered before its
 *  first event.
 *
 *  Transport: the ROUTER is a CURVE server on every endpoint, ipc:// included, with the node's
 *  CURVE key (derived from its Ed25519 identity, node/trust/admission.h) and ZAP domain
 *  NODE_ZAP_API: the process's ZAP handler (node/trust/zap.h) lets any CURVE client connect, and
 *  every request is handled with the 32-byte key its connection authenticated with (the ZAP
 *  User-Id; a frame without one is refused with ENGRAM_EDENIED). Access control maps the key to
 *  an agent (a request naming another is refused); the request names the user. Clients pin the
 *  node's public key, never take it on first use: node_server_publish writes it where they
 *  look (libengram: include/engram/engram.h).
 *
 *  Every reply carries the causal token of the scope it touched and the node's clock. A read
 *  with `after` (any read op) waits (parked, the loop goes on) until the node's contexts cover
 *  the token or its timeout passes (ENGRAM_ETIMEDOUT), within the bounds of internal.h.
 *
 *  Subscriptions are kept per connection and scope, and end when the connection does; events
 *  go to the subscriber on its own DEALER connection. A subscriber whose pipe is full gets its
 *  events queued up to subscriber_backlog; past that its subscription ends with an error
 *  event, never a silent drop. A connection that leaves more than its byte budget unread is
 *  cut with one ENGRAM_EBUSY reply.
 *
 *  Bad input (a frame that is not a Request, an unknown op, an invalid scope or key, a wrong
 *  type, an oversized value) gets an error reply and changes nothing.
 */
#ifndef NODE_SERVER_H
#define NODE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/cluster/cluster.h"
#include "node/store/store.h"
#include "node/trust/acl.h"

/*  The server's settings (node/daemon/config.h documents each). */
typedef struct {
    bool durability_sync;
    size_t max_value_bytes;
    unsigned max_batch;
    uint64_t purge_interval_ms;
    unsigned list_limit;
    size_t subscriber_backlog;
    size_t max_frame_bytes;
    unsigned busy_poll_us; /* the most the loop looks for work before it sleeps; 0: never */
} node_server_config_t;

typedef struct node_server node_server_t;

/*  The file of the data directory that holds the API's public key (a zcert public
 *  certificate); `engramd --identity` prints the same key. */
#define NODE_SERVER_KEY_FILE "api.pub"

/*  Binds the API socket to endpoint, for a single node until node_server_set_cluster. The
 *  store stays the caller's and must outlive the server. On failure returns a code and writes
 *  a one-line reason into why. */
int node_server_new(const node_server_config_t *config, const char *endpoint, node_store_t *store,
                    node_acl_t *acl, node_server_t **self_p, char *why, size_t why_len);

/*  Hands the server a packed SignedStatement the node was started with (DATA/acl.init): the
 *  acl takes it at once, and one new to the node is kept in sys:acl (and so replicated) as soon
 *  as the node may write shared scopes. A statement the acl refuses is logged and dropped. */
void node_server_import(node_server_t *self, const uint8_t *statement, size_t len);

/*  Publishes the API's public CURVE key for the clients of this host, each a zcert public
 *  certificate ("curve public-key = Z85") written whole (a temporary file renamed): when the
 *  endpoint bound is ipc://PATH, beside the socket as PATH.pub, which node_server_destroy
 *  removes again; and in DATA/NODE_SERVER_KEY_FILE unless it holds the key already (a copy:
 *  failing to write it, on a read-only or full volume, is only logged). Call it once everything
 *  else has started: PATH.pub then also says that the node is up. 0, or a code with a one-line
 *  reason in why. */
int node_server_publish(node_server_t *self, const char *data_dir, char *why, size_t why_len);

/*  Answers the monitoring questions of engramd's HTTP listener (node/http) on an inproc PAIR
 *  it connects to endpoint: between two turns, on the loop thread, each [sequence][kind] gets
 *  [sequence][a JSON document] (node/api/observe.c says which kinds). page_url, the listener's
 *  status page, is what cluster status names. 0, or a code. */
int node_server_observe(node_server_t *self, const char *endpoint, const char *page_url);

/*  Makes the server a cluster member's: replica waits, the dot check's hold, cluster admin and
 *  the events of remote changes use cluster, which stays the caller's and must outlive the
 *  server. Called once, before node_server_run. */
void node_server_set_cluster(node_server_t *self, node_cluster_t *cluster);

/*  Serves until SIGINT or SIGTERM (czmq's handler sets zsys_interrupted). */
int node_server_run(node_server_t *self);

void node_server_destroy(node_server_t **self_p);

#endif
