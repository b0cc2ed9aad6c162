/*  engramd: the engram node. Runs in the foreground, logs through zsys, stops cleanly on
 *  SIGTERM or SIGINT. `engramd --help` lists every setting (node/daemon/config.h);
 *  node/api/server.h is the API.
 *
 *    engramd --data DIR [--api ENDPOINT] [--config FILE] [--durability sync|async] ...
 *    engramd --data DIR [--gossip tcp://HOST:PORT [--join tcp://MEMBER:PORT]] ...
 *    engramd --data DIR --identity
 *    engramd --data DIR --reindex ...
 *    engramd --data DIR --metrics HOST:PORT ...
 *    engramd --data DIR --restore SNAPSHOT ...
 *    engramd --help | --version
 *
 *  With --gossip the node replicates its shared scopes with the cluster its admission card
 *  (DATA/admission, from `engram node admit`) names; --identity creates the data directory if
 *  needed, prints "node=ID key=PUBLIC_KEY api=API_KEY" and exits: KEY (Ed25519, hex) is what an
 *  admin admits, API_KEY (CURVE, Z85) is what clients of the agent API pin (ENGRAM_SERVER_KEY;
 *  a running node also publishes it in DATA/api.pub and beside an ipc socket). --reindex
 *  rebuilds the search index from the stored memories, then serves as usual. --restore fills
 *  the data directory, which must be absent or empty, from a snapshot (`engram snapshot DIR`,
 *  node/store/store.h: table files hard-linked where they can be, the rest copied) before
 *  anything opens it; the node then starts as usual, under a new replica id. --metrics serves
 *  Prometheus metrics, health and readiness probes and a status page over HTTP (node/http).
 *
 *  Exit status: 0 after a clean stop (or --help), 1 if the node could not start (among the
 *  reasons: another node on this host serves its API endpoint or holds its data directory,
 *  checked before anything is opened: node/daemon/preflight.h), 2 for a usage error (an
 *  unknown flag or config key is one: node/daemon/config.h).
 */
#define _GNU_SOURCE /* SCHED_BATCH */
#include <czmq.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/error.h"
#include "engram/limits.h"
#include "node/daemon/config.h"
#include "node/daemon/daemon.h"
#include "node/daemon/preflight.h"
#include "node/store/store.h"
#include "node/trust/admission.h"

/*  ZeroMQ's I/O threads (and its reaper) are to run SCHED_BATCH: on a busy host a reply or a
 *  delta the loop hands them does not preempt the loop, which finishes its turn's sends first
 *  (the I/O thread runs then, or at once on an idle core). With the bound on a turn's gossip
 *  (node/api/server.c) it shortens the tail of a write's arrival on its peers (README,
 *  "Measured", "A replica's backlog a turn at a time"). libzmq gives each of its threads
 *  SCHED_BATCH with the priority it inherited, and aborts the process if that fails (from
 *  SCHED_FIFO or SCHED_RR it is invalid even for root; from SCHED_IDLE refused without
 *  privilege): so only from SCHED_OTHER without SCHED_RESET_ON_FORK (a policy the host
 *  chose, chrt or systemd's CPUSchedulingPolicy, is left to every thread), only once this
 *  thread, the only one yet, could take SCHED_BATCH and go back, and never over czmq's own
 *  ZSYS_THREAD_SCHED_POLICY. Before any socket (czmq asserts it): the context's threads
 *  take the policy when they start. */
static void s_batch_zeromq_threads(void)
{
    struct sched_param param = {0};
    if (getenv("ZSYS_THREAD_SCHED_POLICY") || sched_getscheduler(0) != SCHED_OTHER ||
        sched_setscheduler(0, SCHED_BATCH, &param) != 0)
        return;
    if (sched_setscheduler(0, SCHED_OTHER, &param) != 0)
        return; /* not expected (going back needs no privilege): every thread stays batch */
    zsys_set_thread_sched_policy(SCHED_BATCH);
}

/*  Prints the node's id, its Ed25519 public key and its API's CURVE public key (creating its
 *  store on first use). */
static int s_identity(const node_config_t *config)
{
    node_store_t *store;
    char why[512];
    if (node_store_open(config->data_dir, true, 0, &store, why, sizeof why) != 0) {
        fprintf(stderr, "engramd: %s\n", why);
        return 1;
    }
    const node_identity_t *identity = node_store_identity(store);
    char hex[2 * sizeof identity->public_key + 1];
    sodium_bin2hex(hex, sizeof hex, identity->public_key, sizeof identity->public_key);
    uint8_t curve_public[32];
    char api[41];
    int rc = node_admission_curve_keys(identity->public_key, NULL, curve_public, NULL);
    if (rc == 0) {
        zmq_z85_encode(api, curve_public, sizeof curve_public);
        printf("node=%016" PRIx64 " key=%s api=%s\n", identity->node_id, hex, api);
    } else {
        fprintf(stderr, "engramd: the node's key has no CURVE form: %s\n", engram_strerror(rc));
    }
    node_store_close(&store);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    node_config_t config;
    char why[1024];
    if (node_config_parse(&config, argc, argv, why, sizeof why) != 0) {
        fprintf(stderr, "engramd: %s\n`engramd --help` lists every flag and its default\n", why);
        node_config_fini(&config);
        return 2;
    }
    if (config.help) {
        node_config_help(stdout);
        node_config_fini(&config);
        return 0;
    }
    if (config.version) {
        printf("engramd %s\nschema %d.%d (API, gossip and stored messages)\n", ENGRAM_VERSION,
               ENGRAM_SCHEMA_MAJOR, ENGRAM_SCHEMA_MINOR);
        node_config_fini(&config);
        return 0;
    }
    /* Before anything is opened or bound: a node already running here is left unharmed. */
    if (node_preflight_data(config.data_dir, why, sizeof why) != 0 ||
        (!config.identity && node_preflight_api(config.api_endpoint, why, sizeof why) != 0)) {
        fprintf(stderr, "engramd: %s\n", why);
        node_config_fini(&config);
        return 1;
    }
    s_batch_zeromq_threads();
    zsys_init();
    zsys_set_logident("engramd");
    /* a snapshot fills the data directory before anything opens it; the store then takes a
     * new replica id (its "restored" mark), and in a cluster the dot check runs as after any
     * restart */
    if (config.restore_dir &&
        node_store_restore(config.restore_dir, config.data_dir, why, sizeof why) != 0) {
        fprintf(stderr, "engramd: %s\n", why);
        node_config_fini(&config);
        return 1;
    }
    if (config.identity) {
        zsys_set_logstream(stderr); /* stdout is the one line a script reads */
        int rc = s_identity(&config);
        node_config_fini(&config);
        return rc;
    }
    int rc = node_daemon_run(&config);
    node_config_fini(&config);
    return rc ? 1 : 0;
}
