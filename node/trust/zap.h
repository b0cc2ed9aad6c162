/*  node_zap: engramd's ZAP handler (ZeroMQ RFC 27), the one place that decides which CURVE
 *  clients complete a handshake with a socket of this process.
 *
 *  libzmq asks the process's ZAP handler (a REP socket bound to inproc://zeromq.zap.01; one per
 *  process, which is why this replaces czmq's zauth rather than sitting beside it) about every
 *  handshake on a socket that has a ZAP domain, and the socket's domain says which policy
 *  applies:
 *    - "engram-gossip" (NODE_ZAP_GOSSIP): a CURVE client is admitted iff its public key's
 *      certificate is in the peers directory (DATA/peers, which node/cluster keeps: exactly the
 *      members whose admission card this node verified). The directory is a zcertstore, read
 *      again whenever its files change, so a member admitted meanwhile connects at once; the
 *      directory may appear after the handler starts.
 *    - "engram-api" (NODE_ZAP_API): every CURVE client is admitted. Who the client is, and what
 *      it may do, is decided per request by access control from its key: an unknown key then
 *      gets a clear ENGRAM_EDENIED reply instead of a handshake that fails without a word.
 *  An admitted client's User-Id is the Z85 text of its CURVE public key (40 characters), which
 *  each message it sends carries as the "User-Id" property (zframe_meta). Everything else is
 *  refused with status 400: the NULL and PLAIN mechanisms, an unknown or empty domain, a
 *  request that is not a well-formed ZAP 1.0 request.
 *
 *  Bounds: a request is a handful of small frames that libzmq itself writes, over inproc, in
 *  this process; the handler reads one whole request at a time and answers each, so libzmq
 *  never waits on it (a malformed request is answered 400, echoing its request id if it has
 *  one). It keeps no state per client.
 *
 *  Commands the actor takes on its pipe: "$TERM" (ends it; zactor_destroy sends it). It
 *  replies nothing. Interrupts (SIGINT, SIGTERM) do not end it: the process that started it
 *  stops it, after the sockets it guards.
 *
 *  Thread: the actor's thread owns the REP socket and the zcertstore.
 */
#ifndef NODE_ZAP_H
#define NODE_ZAP_H

#include <czmq.h>

#define NODE_ZAP_GOSSIP "engram-gossip"
#define NODE_ZAP_API    "engram-api"

/*  Starts the handler, admitting gossip clients from peers_dir (copied). Caller owns return
 *  value and must destroy it with zactor_destroy; NULL if the handler's endpoint is taken
 *  (another ZAP handler runs in this process) or memory ran out. */
zactor_t *node_zap_new(const char *peers_dir);

#endif
