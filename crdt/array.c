/*  crdt_array: see array.h. */
#include "crdt/array.h"

#include <stdint.h>
#include <stdlib.h>

#include "engram/error.h"

int crdt_array_grow(void **items, size_t *cap, size_t need, size_t item_size)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 4;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return ENGRAM_ENOMEM;
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / item_size)
        return ENGRAM_ENOMEM;
    void *grown = realloc(*items, ncap * item_size);
    if (!grown)
        return ENGRAM_ENOMEM;
    *items = grown;
    *cap = ncap;
    return 0;
}
