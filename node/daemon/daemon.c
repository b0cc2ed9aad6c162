/*  node_daemon: engramd's composition root (see daemon.h). */
#include "node/daemon/daemon.h"

#include <czmq.h>

#include "engram/error.h"
#include "node/api/server.h"
#include "node/cluster/cluster.h"
#include "node/store/store.h"
#include "node/trust/zap.h"

int node_daemon_run(const node_config_t *config)
{
    char why[512] = "";
    node_store_t *store = NULL;
    node_cluster_t *cluster = NULL;
    node_server_t *server = NULL;
    /* the ZAP handler first and last: it decides every CURVE handshake of the sockets below */
    char *peers_dir = zsys_sprintf("%s/%s", config->data_dir, NODE_CLUSTER_PEERS_DIR);
    zactor_t *zap = peers_dir ? node_zap_new(peers_dir) : NULL;
    zstr_free(&peers_dir);
    if (!zap) {
        zsys_error("engramd: cannot start the ZAP handler (out of memory?)");
        return ENGRAM_ENOMEM;
    }
    int rc =
        node_store_open(config->data_dir, config->api.durability_sync, &store, why, sizeof why);
    if (rc)
        goto out_stop_zap;
    node_store_set_min_free(store, config->min_free_bytes);
    /* the API socket first: a node that cannot serve touches nothing of its cluster state */
    rc = node_server_new(&config->api, config->api_endpoint, store, &server, why, sizeof why);
    if (rc)
        goto out_close_store;
    if (config->gossip_endpoint) {
        node_cluster_config_t cluster_config = {.data_dir = config->data_dir,
                                                .gossip_endpoint = config->gossip_endpoint,
                                                .admission_path = config->admission_path,
                                                .join = config->join,
                                                .fanout = config->fanout,
                                                .gossip_interval_ms = config->gossip_interval_ms,
                                                .max_message_bytes = config->max_gossip_bytes};
        rc = node_cluster_new(&cluster_config, store, &cluster, why, sizeof why);
        if (rc)
            goto out_destroy_server;
        node_server_set_cluster(server, cluster);
    }
    /* last: the published key (PATH.pub beside an ipc socket) says the node is up */
    rc = node_server_publish(server, config->data_dir, why, sizeof why);
    if (rc)
        goto out_destroy_server;
    zsys_info("engramd: serving agents on %s, data in %s, durability %s", config->api_endpoint,
              config->data_dir, config->api.durability_sync ? "sync" : "async");
    if (config->gossip_endpoint)
        zsys_info("engramd: gossip on %s%s%s", config->gossip_endpoint,
                  config->join ? ", joining through " : "", config->join ? config->join : "");
    rc = node_server_run(server);
    zsys_info("engramd: stopping");
out_destroy_server:
    node_server_destroy(&server); /* first: it borrows the cluster */
    node_cluster_destroy(&cluster);
out_close_store:
    node_store_close(&store);
out_stop_zap:
    zactor_destroy(&zap);
    if (rc && why[0])
        zsys_error("engramd: %s", why);
    return rc;
}
