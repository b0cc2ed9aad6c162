/*  node_config: engramd's command line and settings, from defaults (include/engram/limits.h),
 *  then a config file in czmq's zconfig format, then command-line flags, each later source
 *  overriding the earlier.
 *
 *  One table in config.c lists every flag with its value, default, limits and one line of help;
 *  the parser reads it and `engramd --help` prints it, so the two cannot disagree. A setting's
 *  config key is its flag's name under `engram`, dashes turned into underscores:
 *
 *    engram
 *        data = "/var/lib/engram"          # --data /var/lib/engram
 *        max_batch = 64                    # --max-batch 64
 *
 *  A key, a section or a flag that the table does not know is refused, naming the nearest one
 *  it does know: a misspelled setting never passes silently as its default.
 */
#ifndef NODE_CONFIG_H
#define NODE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "node/api/server.h"

typedef struct {
    char *data_dir;           /* owned */
    char *api_endpoint;       /* owned */
    node_server_config_t api; /* the API server's settings */
    uint64_t min_free_bytes;
    uint64_t flush_rate_mb; /* 0: no limit */
    uint64_t max_clock_drift_ms;
    char *gossip_endpoint; /* owned; NULL: no cluster */
    char *join;            /* owned; NULL: none */
    char *admission_path;  /* owned; set whenever gossip_endpoint is */
    unsigned fanout;
    uint64_t gossip_interval_ms;
    size_t max_gossip_bytes;
    uint64_t gossip_hold_ms;
    char *metrics;     /* owned: the HTTP listener's HOST:PORT; NULL: none */
    bool identity;     /* --identity: print the node's id and keys, then exit */
    bool reindex;      /* --reindex: rebuild the search index before serving */
    char *restore_dir; /* owned; --restore: the snapshot the data directory is filled from */
    bool help;         /* --help: print node_config_help, then exit; nothing else is parsed */
    bool version;      /* --version: print the version, then exit; nothing else is parsed */
} node_config_t;

/*  Parses argv (argv[0] is the program). 0, or ENGRAM_EINVAL with a one-line reason written
 *  into why (why_len bytes). The caller frees with node_config_fini either way. */
int node_config_parse(node_config_t *self, int argc, char **argv, char *why, size_t why_len);
void node_config_fini(node_config_t *self);

/*  Writes the usage and every flag with its one-line description and default to out. */
void node_config_help(FILE *out);

#endif
