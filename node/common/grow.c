/*  node_grow (grow.h): doubling growth of a caller's array. */
#include "node/common/grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engram/error.h"

int node_grow(void *items_p, size_t *cap, size_t n, size_t item_size, size_t first)
{
    if (n < *cap)
        return 0;
    size_t grown = *cap ? 2 * *cap : first;
    if (grown <= *cap || grown > SIZE_MAX / item_size)
        return ENGRAM_ENOMEM;
    void *items;
    memcpy(&items, items_p, sizeof items); /* a T *, whatever T */
    void *more = realloc(items, grown * item_size);
    if (!more)
        return ENGRAM_ENOMEM;
    memcpy(items_p, &more, sizeof more);
    *cap = grown;
    return 0;
}
