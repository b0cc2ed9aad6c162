/*  node_daemon: engramd's composition root. It starts the process's ZAP handler
 *  (node/trust/zap.h: which CURVE clients may connect to gossip and to the agent API), opens
 *  the store, creates the agent API server and, when the node gossips, the cluster, runs the
 *  server's loop, and closes them in reverse order, the ZAP handler last. It is the only place
 *  that wires the rooms of node/ together: no handler opens the store or creates the cluster.
 */
#ifndef NODE_DAEMON_H
#define NODE_DAEMON_H

#include "node/daemon/config.h"

/*  Serves until SIGINT or SIGTERM. 0 after a clean stop; a code, logged with its reason, if
 *  the node could not start. */
int node_daemon_run(const node_config_t *config);

#endif
