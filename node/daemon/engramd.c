/*  engramd: the engram node. Runs in the foreground, logs through zsys, stops cleanly on
 *  SIGTERM or SIGINT. See node/config.h for every setting and node/server.h for the API.
 *
 *    engramd --data DIR [--api ENDPOINT] [--config FILE] [--durability sync|async] ...
 *    engramd --data DIR [--gossip tcp://HOST:PORT [--join tcp://MEMBER:PORT]] ...
 *    engramd --data DIR --identity
 *
 *  With --gossip the node replicates its shared scopes with the cluster its admission card
 *  (DATA/admission, from `engram node admit`) names; --identity creates the data directory if
 *  needed, prints "node=ID key=PUBLIC_KEY" (what an admin admits) and exits.
 *
 *  Exit status: 0 after a clean stop, 1 if the node could not start, 2 for a usage error.
 */
#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "node/daemon/config.h"
#include "node/daemon/daemon.h"
#include "node/store/store.h"

/*  Prints the node's id and Ed25519 public key (creating its store on first use). */
static int s_identity(const node_config_t *config)
{
    node_store_t *store;
    char why[512];
    if (node_store_open(config->data_dir, true, &store, why, sizeof why) != 0) {
        fprintf(stderr, "engramd: %s\n", why);
        return 1;
    }
    const node_identity_t *identity = node_store_identity(store);
    char hex[2 * sizeof identity->public_key + 1];
    sodium_bin2hex(hex, sizeof hex, identity->public_key, sizeof identity->public_key);
    printf("node=%016" PRIx64 " key=%s\n", identity->node_id, hex);
    node_store_close(&store);
    return 0;
}

int main(int argc, char **argv)
{
    node_config_t config;
    char why[512];
    bool identity = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--identity") == 0) {
            identity = true;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof *argv);
            argc--;
            break;
        }
    }
    if (node_config_parse(&config, argc, argv, why, sizeof why) != 0) {
        fprintf(stderr, "engramd: %s\nusage: engramd --data DIR [--api ENDPOINT] "
                        "[--config FILE] [--durability sync|async]\n",
                why);
        node_config_fini(&config);
        return 2;
    }
    zsys_init();
    zsys_set_logident("engramd");
    if (identity) {
        zsys_set_logstream(stderr); /* stdout is the one line a script reads */
        int rc = s_identity(&config);
        node_config_fini(&config);
        return rc;
    }
    int rc = node_daemon_run(&config);
    node_config_fini(&config);
    return rc ? 1 : 0;
}

