/*  node_daemon: engramd's composition root (see daemon.h). */
#include "node/daemon/daemon.h"

#include <czmq.h>

#include "engram/error.h"
#include "node/api/server.h"
#include "node/cluster/cluster.h"
#include "node/http/http.h"
#include "node/store/store.h"
#include "node/trust/acl.h"
#include "node/trust/admission.h"
#include "node/trust/zap.h"
#include "proto/acl.pb-c.h"

/*  The root of the node's access control: the admin key of its card (a cluster member's, or
 *  a lone node's DATA/admission), else of DATA/trust (`engram init --data DIR`). */
static int s_trust_root(const node_config_t *config, node_trust_t *trust, char *why, size_t why_len)
{
    char *card_path = config->admission_path ? strdup(config->admission_path)
                                             : zsys_sprintf("%s/admission", config->data_dir);
    char *trust_path = zsys_sprintf("%s/trust", config->data_dir);
    int rc = card_path && trust_path ? 0 : ENGRAM_ENOMEM;
    if (rc == 0 && zsys_file_exists(card_path)) {
        uint8_t *card = NULL;
        size_t len = 0;
        uint8_t node_key[crypto_sign_PUBLICKEYBYTES];
        rc = node_admission_read_file(card_path, 64 * 1024, &card, &len);
        if (rc == 0)
            rc = node_admission_open_card(card, len, trust, node_key);
        if (rc)
            snprintf(why, why_len, "%s is not an admission card this node can read", card_path);
        free(card);
    } else if (rc == 0 && zsys_file_exists(trust_path)) {
        rc = node_admin_load_file(trust_path, trust, why, why_len);
    } else if (rc == 0) {
        snprintf(why, why_len,
                 "no trust root in %s: a lone node needs `engram init --data %s`, a cluster "
                 "member its card (engram node admit)",
                 config->data_dir, config->data_dir);
        rc = ENGRAM_ENOTFOUND;
    }
    free(card_path);
    zstr_free(&trust_path);
    return rc;
}

/*  The statements the node is started with (DATA/acl.init, a StatementList `engram init`
 *  writes), handed to the server, which keeps those new to it in sys:acl. */
static int s_import_statements(const node_config_t *config, node_server_t *server, char *why,
                               size_t why_len)
{
    char *path = zsys_sprintf("%s/acl.init", config->data_dir);
    if (!path)
        return ENGRAM_ENOMEM;
    int rc = 0;
    if (zsys_file_exists(path)) {
        uint8_t *data = NULL;
        size_t len = 0;
        rc = node_admission_read_file(path, 64 * 1024 * 1024, &data, &len);
        Engram__StatementList *list =
            rc == 0 ? engram__statement_list__unpack(NULL, len, data) : NULL;
        if (!list) {
            snprintf(why, why_len, "%s is not a list of statements", path);
            rc = rc ? rc : ENGRAM_EDECODE;
        }
        for (size_t i = 0; list && i < list->n_statements; i++)
            node_server_import(server, list->statements[i].data, list->statements[i].len);
        engram__statement_list__free_unpacked(list, NULL);
        free(data);
    }
    zstr_free(&path);
    return rc;
}

int node_daemon_run(const node_config_t *config)
{
    char why[512] = "";
    node_store_t *store = NULL;
    node_cluster_t *cluster = NULL;
    node_server_t *server = NULL;
    node_http_t *http = NULL;
    node_acl_t *acl = NULL;
    node_trust_t trust;
    /* the ZAP handler first and last: it decides every CURVE handshake of the sockets below */
    char *peers_dir = zsys_sprintf("%s/%s", config->data_dir, NODE_CLUSTER_PEERS_DIR);
    zactor_t *zap = peers_dir ? node_zap_new(peers_dir) : NULL;
    zstr_free(&peers_dir);
    if (!zap) {
        zsys_error("engramd: cannot start the ZAP handler (out of memory?)");
        return ENGRAM_ENOMEM;
    }
    /* the trust root before the store: a node that may not serve creates nothing */
    int rc = s_trust_root(config, &trust, why, sizeof why);
    if (rc == 0 && !(acl = node_acl_new(trust.admin_key)))
        rc = ENGRAM_ENOMEM;
    if (rc == 0)
        rc = node_store_open(config->data_dir, config->api.durability_sync,
                             config->flush_rate_mb << 20, &store, why, sizeof why);
    if (rc)
        goto out_close_store;
    node_store_set_min_free(store, config->min_free_bytes);
    node_store_set_max_drift(store, config->max_clock_drift_ms);
    if (config->reindex) {
        uint8_t before[32], after[32];
        uint64_t indexed = 0, records_before = 0, records_after = 0;
        rc = node_store_index_digest(store, before, &records_before);
        if (rc == 0)
            rc = node_store_reindex(store, &indexed);
        if (rc == 0)
            rc = node_store_index_digest(store, after, &records_after);
        if (rc) {
            snprintf(why, sizeof why, "cannot rebuild the search index: %s", engram_strerror(rc));
            goto out_close_store;
        }
        bool same = records_before == records_after && memcmp(before, after, 32) == 0;
        zsys_info("engramd: search index rebuilt from %" PRIu64 " entries: %" PRIu64 " records, %s",
                  indexed, records_after,
                  same ? "identical to the index it replaced"
                       : "different from the index it replaced (it had drifted)");
    }
    /* the API socket first: a node that cannot serve touches nothing of its cluster state */
    rc = node_server_new(&config->api, config->api_endpoint, store, acl, &server, why, sizeof why);
    if (rc == 0)
        rc = s_import_statements(config, server, why, sizeof why);
    if (rc)
        goto out_destroy_server;
    if (config->gossip_endpoint) {
        node_cluster_config_t cluster_config = {.data_dir = config->data_dir,
                                                .gossip_endpoint = config->gossip_endpoint,
                                                .admission_path = config->admission_path,
                                                .join = config->join,
                                                .fanout = config->fanout,
                                                .gossip_interval_ms = config->gossip_interval_ms,
                                                .max_message_bytes = config->max_gossip_bytes,
                                                .hold_ms = config->gossip_hold_ms};
        rc = node_cluster_new(&cluster_config, store, &cluster, why, sizeof why);
        if (rc)
            goto out_destroy_server;
        node_server_set_cluster(server, cluster);
    }
    if (config->metrics) {
        rc = node_http_new(config->metrics, &http, why, sizeof why);
        if (rc == 0)
            rc = node_server_observe(server, node_http_observe_endpoint(http), node_http_url(http));
        if (rc)
            goto out_destroy_server;
        zsys_info("engramd: metrics and status page on %s", node_http_url(http));
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
    node_http_destroy(&http);     /* first: its thread asks the server's loop */
    node_server_destroy(&server); /* it borrows the cluster */
    node_cluster_destroy(&cluster);
out_close_store:
    node_acl_destroy(&acl);
    node_store_close(&store);
    zactor_destroy(&zap);
    if (rc && why[0])
        zsys_error("engramd: %s", why);
    return rc;
}
