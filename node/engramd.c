/*  engramd: the engram node. Runs in the foreground, logs through zsys, stops cleanly on
 *  SIGTERM or SIGINT. See node/config.h for every setting and node/server.h for the API.
 *
 *    engramd --data DIR [--api ENDPOINT] [--config FILE] [--durability sync|async] ...
 *
 *  Exit status: 0 after a clean stop, 1 if the node could not start, 2 for a usage error.
 */
#include <czmq.h>
#include <stdio.h>

#include "node/config.h"
#include "node/server.h"

int main(int argc, char **argv)
{
    node_config_t config;
    char why[512];
    if (node_config_parse(&config, argc, argv, why, sizeof why) != 0) {
        fprintf(stderr, "engramd: %s\nusage: engramd --data DIR [--api ENDPOINT] "
                        "[--config FILE] [--durability sync|async]\n",
                why);
        node_config_fini(&config);
        return 2;
    }
    zsys_init();
    zsys_set_logident("engramd");
    node_server_t *server;
    if (node_server_new(&config, &server, why, sizeof why) != 0) {
        zsys_error("engramd: %s", why);
        node_config_fini(&config);
        return 1;
    }
    zsys_info("engramd: serving agents on %s, data in %s, durability %s", config.api_endpoint,
              config.data_dir, config.durability_sync ? "sync" : "async");
    node_server_run(server);
    zsys_info("engramd: stopping");
    node_server_destroy(&server);
    node_config_fini(&config);
    return 0;
}
