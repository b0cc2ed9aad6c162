/*  Test support: gossip frames read through their compression (gossip_frame.h). */
#include "gossip_frame.h"

#include <stdlib.h>
#include <zstd.h>

Engram__Gossip *test_gossip_unpack(const uint8_t *buf, size_t len)
{
    Engram__Gossip *g = engram__gossip__unpack(NULL, len, buf);
    if (!g || g->body_case != ENGRAM__GOSSIP__BODY_COMPRESSED)
        return g;
    unsigned long long size = ZSTD_getFrameContentSize(g->compressed.data, g->compressed.len);
    uint8_t *raw = size < (1ull << 32) ? malloc(size ? (size_t)size : 1) : NULL;
    Engram__Gossip *inner = NULL;
    if (raw && ZSTD_decompress(raw, (size_t)size, g->compressed.data, g->compressed.len) == size)
        inner = engram__gossip__unpack(NULL, (size_t)size, raw);
    if (inner) {
        inner->schema_major = g->schema_major;
        inner->schema_minor = g->schema_minor;
    }
    free(raw);
    engram__gossip__free_unpacked(g, NULL);
    return inner;
}
