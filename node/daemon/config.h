/*  node_config: engramd's settings, from defaults (include/engram/limits.h), then a config
 *  file in czmq's zconfig format, then command-line flags, each later source overriding the
 *  earlier. Every setting has a flag and a config path:
 *
 *    flag                   zconfig path             default
 *    --data DIR             engram/data              (required)
 *    --api ENDPOINT         engram/api               ENGRAM_DEFAULT_API_ENDPOINT
 *    --durability sync|async engram/durability       ENGRAM_DEFAULT_DURABILITY
 *    --max-value-bytes N    engram/max_value_bytes   ENGRAM_MAX_VALUE_BYTES (may only lower)
 *    --max-batch N          engram/max_batch         ENGRAM_DEFAULT_MAX_BATCH
 *    --purge-interval-ms N  engram/purge_interval_ms ENGRAM_DEFAULT_PURGE_INTERVAL_MS
 *    --list-limit N         engram/list_limit        ENGRAM_DEFAULT_LIST_LIMIT
 *    --subscriber-backlog N engram/subscriber_backlog ENGRAM_DEFAULT_SUBSCRIBER_BACKLOG
 *    --max-frame-bytes N    engram/max_frame_bytes   ENGRAM_DEFAULT_MAX_FRAME_BYTES
 *    --min-free-bytes N     engram/min_free_bytes    ENGRAM_DEFAULT_MIN_FREE_BYTES
 *    --gossip ENDPOINT      engram/gossip            (none: a single node, no replication)
 *    --join ENDPOINT        engram/join              (none) a member's gossip endpoint
 *    --admission FILE       engram/admission         DATA/admission (the node's card)
 *    --fanout N             engram/fanout            ENGRAM_DEFAULT_FANOUT
 *    --gossip-interval-ms N engram/gossip_interval_ms ENGRAM_DEFAULT_GOSSIP_INTERVAL_MS
 *    --max-gossip-bytes N   engram/max_gossip_bytes  ENGRAM_DEFAULT_MAX_GOSSIP_BYTES
 *    --config FILE          (the file itself)
 */
#ifndef NODE_CONFIG_H
#define NODE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data_dir;     /* owned */
    char *api_endpoint; /* owned */
    bool durability_sync;
    size_t max_value_bytes;
    unsigned max_batch;
    uint64_t purge_interval_ms;
    unsigned list_limit;
    size_t subscriber_backlog;
    size_t max_frame_bytes;
    uint64_t min_free_bytes;
    char *gossip_endpoint; /* owned; NULL: no cluster */
    char *join;            /* owned; NULL: none */
    char *admission_path;  /* owned; set whenever gossip_endpoint is */
    unsigned fanout;
    uint64_t gossip_interval_ms;
    size_t max_gossip_bytes;
} node_config_t;

/*  Parses argv (argv[0] is the program). 0, or ENGRAM_EINVAL with a one-line reason written
 *  into why (why_len bytes). The caller frees with node_config_fini either way. */
int node_config_parse(node_config_t *self, int argc, char **argv, char *why, size_t why_len);
void node_config_fini(node_config_t *self);

#endif
