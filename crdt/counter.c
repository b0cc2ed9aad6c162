/*  crdt_counter: causal counter (see counter.h). Entry values are 8-byte little-endian int64
 *  totals; the HLC of an entry is unused (0). */
#include "crdt/counter.h"

#include <stdlib.h>

#include "crdt/internal.h"
#include "engram/error.h"

#define TOTAL_BYTES 8

static int64_t s_total(const uint8_t *data)
{
    uint64_t v = 0;
    for (int i = TOTAL_BYTES - 1; i >= 0; i--)
        v = (v << 8) | data[i];
    return (int64_t)v;
}

static void s_put_total(uint8_t *data, int64_t total)
{
    uint64_t v = (uint64_t)total;
    for (int i = 0; i < TOTAL_BYTES; i++, v >>= 8)
        data[i] = (uint8_t)v;
}

int crdt_counter_add(crdt_scope_t *self, const char *key, int64_t amount,
                     crdt_scope_t **delta_p)
{
    if (crdt_scope_types_of(self, key) & ~(1u << CRDT_COUNTER))
        return ENGRAM_ETYPE;
    const crdt__object_t *counter = crdt__scope_object(self, CRDT_COUNTER, key);
    const crdt__leaf_t *leaf = counter ? crdt__object_leaf(counter, "") : NULL;
    /* This replica's running total. Under causal delivery it is one entry; a state joined out
     * of causal order may hold several (an old total whose removal it has not seen beside a
     * newer one started after a reset), and the increment replaces them all. */
    crdt_dot_t *own = malloc((leaf && leaf->n ? leaf->n : 1) * sizeof *own);
    if (!own)
        return ENGRAM_ENOMEM;
    size_t nown = 0;
    int64_t total = 0;
    int rc = 0;
    for (size_t i = 0; leaf && i < leaf->n; i++) {
        if (leaf->entries[i].dot.node != crdt_scope_replica(self))
            continue;
        own[nown++] = leaf->entries[i].dot;
        if (__builtin_add_overflow(total, s_total(leaf->entries[i].data), &total))
            rc = ENGRAM_ERANGE;
    }
    if (rc == 0 && __builtin_add_overflow(total, amount, &total))
        rc = ENGRAM_ERANGE;
    uint8_t data[TOTAL_BYTES];
    s_put_total(data, total);
    if (rc == 0)
        rc = crdt__scope_operate(self, CRDT_COUNTER, key, "", 0, data, sizeof data, own, nown,
                                 delta_p);
    free(own);
    return rc;
}

int crdt_counter_value(const crdt_scope_t *self, const char *key, int64_t *value)
{
    const crdt__object_t *counter = crdt__scope_object(self, CRDT_COUNTER, key);
    const crdt__leaf_t *leaf = counter ? crdt__object_leaf(counter, "") : NULL;
    if (!leaf)
        return ENGRAM_ENOTFOUND;
    int64_t sum = 0;
    for (size_t i = 0; i < leaf->n; i++)
        if (__builtin_add_overflow(sum, s_total(leaf->entries[i].data), &sum))
            return ENGRAM_ERANGE;
    *value = sum;
    return 0;
}

static int s_check_entry(const char *elem, const uint8_t *data, size_t len)
{
    (void)data;
    return (*elem || len != TOTAL_BYTES) ? ENGRAM_EDECODE : 0;
}

const crdt_type_t crdt__counter_type = {CRDT_COUNTER, "counter", s_check_entry};
