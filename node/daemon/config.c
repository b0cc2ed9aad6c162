/*  node_config: defaults, then zconfig file, then flags (see config.h). */
#include "node/daemon/config.h"

#include <czmq.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engram/error.h"
#include "engram/limits.h"

typedef enum { S_STRING, S_SIZE, S_UINT, S_U64, S_DURABILITY } s_kind_t;

typedef struct {
    const char *flag;
    const char *path;
    s_kind_t kind;
    size_t offset;
    uint64_t max; /* numeric settings: largest accepted value */
} s_setting_t;

#define FIELD(f) offsetof(node_config_t, f)
static const s_setting_t s_settings[] = {
    {"--data", "engram/data", S_STRING, FIELD(data_dir), 0},
    {"--api", "engram/api", S_STRING, FIELD(api_endpoint), 0},
    {"--durability", "engram/durability", S_DURABILITY, FIELD(durability_sync), 0},
    {"--max-value-bytes", "engram/max_value_bytes", S_SIZE, FIELD(max_value_bytes),
     ENGRAM_MAX_VALUE_BYTES},
    {"--max-batch", "engram/max_batch", S_UINT, FIELD(max_batch), 65536},
    {"--purge-interval-ms", "engram/purge_interval_ms", S_U64, FIELD(purge_interval_ms),
     86400000},
    {"--list-limit", "engram/list_limit", S_UINT, FIELD(list_limit), 100000},
    {"--subscriber-backlog", "engram/subscriber_backlog", S_SIZE, FIELD(subscriber_backlog),
     100000000},
    {"--max-frame-bytes", "engram/max_frame_bytes", S_SIZE, FIELD(max_frame_bytes),
     256 * 1024 * 1024},
    {"--min-free-bytes", "engram/min_free_bytes", S_U64, FIELD(min_free_bytes),
     UINT64_C(1) << 50},
    {"--gossip", "engram/gossip", S_STRING, FIELD(gossip_endpoint), 0},
    {"--join", "engram/join", S_STRING, FIELD(join), 0},
    {"--admission", "engram/admission", S_STRING, FIELD(admission_path), 0},
    {"--fanout", "engram/fanout", S_UINT, FIELD(fanout), 64},
    {"--gossip-interval-ms", "engram/gossip_interval_ms", S_U64, FIELD(gossip_interval_ms),
     3600000},
    {"--max-gossip-bytes", "engram/max_gossip_bytes", S_SIZE, FIELD(max_gossip_bytes),
     256 * 1024 * 1024},
};
#define NSETTINGS (sizeof s_settings / sizeof s_settings[0])

static int s_set(node_config_t *self, const s_setting_t *s, const char *text, char *why,
                 size_t why_len)
{
    void *field = (char *)self + s->offset;
    if (s->kind == S_STRING) {
        char *copy = strdup(text);
        if (!copy)
            return ENGRAM_ENOMEM;
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    if (s->kind == S_DURABILITY) {
        if (strcmp(text, "sync") && strcmp(text, "async")) {
            snprintf(why, why_len, "%s must be sync or async, not '%s'", s->flag, text);
            return ENGRAM_EINVAL;
        }
        *(bool *)field = strcmp(text, "sync") == 0;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v == 0 || v > s->max) {
        snprintf(why, why_len, "%s must be a number from 1 to %llu, not '%s'", s->flag,
                 (unsigned long long)s->max, text);
        return ENGRAM_EINVAL;
    }
    if (s->kind == S_SIZE)
        *(size_t *)field = (size_t)v;
    else if (s->kind == S_UINT)
        *(unsigned *)field = (unsigned)v;
    else
        *(uint64_t *)field = v;
    return 0;
}

static const s_setting_t *s_by_flag(const char *flag)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(s_settings[i].flag, flag) == 0)
            return &s_settings[i];
    return NULL;
}

int node_config_parse(node_config_t *self, int argc, char **argv, char *why, size_t why_len)
{
    memset(self, 0, sizeof *self);
    why[0] = '\0';
    self->durability_sync = strcmp(ENGRAM_DEFAULT_DURABILITY, "sync") == 0;
    self->max_value_bytes = ENGRAM_MAX_VALUE_BYTES;
    self->max_batch = ENGRAM_DEFAULT_MAX_BATCH;
    self->purge_interval_ms = ENGRAM_DEFAULT_PURGE_INTERVAL_MS;
    self->list_limit = ENGRAM_DEFAULT_LIST_LIMIT;
    self->subscriber_backlog = ENGRAM_DEFAULT_SUBSCRIBER_BACKLOG;
    self->max_frame_bytes = ENGRAM_DEFAULT_MAX_FRAME_BYTES;
    self->min_free_bytes = ENGRAM_DEFAULT_MIN_FREE_BYTES;
    self->fanout = ENGRAM_DEFAULT_FANOUT;
    self->gossip_interval_ms = ENGRAM_DEFAULT_GOSSIP_INTERVAL_MS;
    self->max_gossip_bytes = ENGRAM_DEFAULT_MAX_GOSSIP_BYTES;
    self->api_endpoint = strdup(ENGRAM_DEFAULT_API_ENDPOINT);
    if (!self->api_endpoint)
        return ENGRAM_ENOMEM;

    /* The config file first, so that flags override it wherever they stand. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") != 0)
            continue;
        if (i + 1 >= argc) {
            snprintf(why, why_len, "--config needs a file");
            return ENGRAM_EINVAL;
        }
        zconfig_t *file = zconfig_load(argv[i + 1]);
        if (!file) {
            snprintf(why, why_len, "cannot read config file '%s'", argv[i + 1]);
            return ENGRAM_EINVAL;
        }
        int rc = 0;
        for (size_t s = 0; rc == 0 && s < NSETTINGS; s++) {
            const char *text = zconfig_get(file, s_settings[s].path, NULL);
            if (text)
                rc = s_set(self, &s_settings[s], text, why, why_len);
        }
        zconfig_destroy(&file);
        if (rc)
            return rc;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            i++;
            continue;
        }
        const s_setting_t *s = s_by_flag(argv[i]);
        if (!s) {
            snprintf(why, why_len, "unknown option '%s'", argv[i]);
            return ENGRAM_EINVAL;
        }
        if (i + 1 >= argc) {
            snprintf(why, why_len, "%s needs a value", argv[i]);
            return ENGRAM_EINVAL;
        }
        int rc = s_set(self, s, argv[++i], why, why_len);
        if (rc)
            return rc;
    }
    if (!self->data_dir) {
        snprintf(why, why_len, "--data DIR is required");
        return ENGRAM_EINVAL;
    }
    if ((self->join || self->admission_path) && !self->gossip_endpoint) {
        snprintf(why, why_len, "--join and --admission need --gossip tcp://HOST:PORT");
        return ENGRAM_EINVAL;
    }
    if (self->gossip_endpoint && !self->admission_path) {
        self->admission_path = zsys_sprintf("%s/admission", self->data_dir);
        if (!self->admission_path)
            return ENGRAM_ENOMEM;
    }
    return 0;
}

void node_config_fini(node_config_t *self)
{
    free(self->data_dir);
    free(self->api_endpoint);
    free(self->gossip_endpoint);
    free(self->join);
    free(self->admission_path);
    memset(self, 0, sizeof *self);
}
