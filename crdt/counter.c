/*  crdt_counter: causal counter (see counter.h). Entry values are 8-byte little-endian int64
 *  totals under the contributor's element; the HLC of an entry is unused (0). */
#include "crdt/counter.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

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

int crdt_counter_add(crdt_scope_t *self, const char *key, const char *contributor, int64_t amount,
                     crdt_scope_t **delta_p)
{
    assert(contributor);
    if (crdt_scope_types_of(self, key) & ~(1u << CRDT_COUNTER))
        return ENGRAM_ETYPE;
    const crdt__object_t *counter = crdt__scope_object(self, CRDT_COUNTER, key);
    const crdt__leaf_t *leaf = counter ? crdt__object_leaf(counter, contributor) : NULL;
    /* This replica's running total for contributor. Under causal delivery it is one entry; a
     * state joined out of causal order may hold several (an old total whose removal it has not
     * seen beside a newer one started after a reset), and the increment replaces them all. */
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
        rc = crdt__scope_operate(self, CRDT_COUNTER, key, contributor, 0, data, sizeof data, own,
                                 nown, delta_p);
    free(own);
    return rc;
}

/*  The sum of one contributor's totals; false on overflow. */
static bool s_leaf_sum(const crdt__leaf_t *leaf, int64_t *sum)
{
    *sum = 0;
    for (size_t i = 0; i < leaf->n; i++)
        if (__builtin_add_overflow(*sum, s_total(leaf->entries[i].data), sum))
            return false;
    return true;
}

int crdt_counter_value(const crdt_scope_t *self, const char *key, int64_t *value)
{
    const crdt__object_t *counter = crdt__scope_object(self, CRDT_COUNTER, key);
    if (!counter)
        return ENGRAM_ENOTFOUND;
    int64_t sum = 0;
    for (size_t i = 0; i < crdt__hmap_slots(counter->leaves); i++) {
        void *slot;
        if (!crdt__hmap_at(counter->leaves, i, NULL, NULL, &slot))
            continue;
        const crdt__leaf_t *leaf = slot;
        for (size_t k = 0; k < leaf->n; k++)
            if (__builtin_add_overflow(sum, s_total(leaf->entries[k].data), &sum))
                return ENGRAM_ERANGE;
    }
    *value = sum;
    return 0;
}

static int s_by_contributor(const void *a, const void *b)
{
    const crdt_counter_contribution_t *x = a, *y = b;
    return strcmp(x->contributor, y->contributor);
}

int crdt_counter_contributions(const crdt_scope_t *self, const char *key,
                               crdt_counter_contribution_t **contributions, size_t *n)
{
    const crdt__object_t *counter = crdt__scope_object(self, CRDT_COUNTER, key);
    if (!counter)
        return ENGRAM_ENOTFOUND;
    size_t count = crdt__hmap_count(counter->leaves), at = 0;
    crdt_counter_contribution_t *list = malloc((count ? count : 1) * sizeof *list);
    if (!list)
        return ENGRAM_ENOMEM;
    for (size_t i = 0; i < crdt__hmap_slots(counter->leaves); i++) {
        void *slot;
        if (!crdt__hmap_at(counter->leaves, i, NULL, NULL, &slot))
            continue;
        const crdt__leaf_t *leaf = slot;
        list[at].contributor = leaf->elem;
        if (!s_leaf_sum(leaf, &list[at].total)) {
            free(list);
            return ENGRAM_ERANGE;
        }
        at++;
    }
    qsort(list, count, sizeof *list, s_by_contributor);
    *contributions = list;
    *n = count;
    return 0;
}

/*  Any contributor, "" included; the value is a total. */
static int s_check_entry(const char *elem, const uint8_t *data, size_t len)
{
    (void)elem;
    (void)data;
    return len == TOTAL_BYTES ? 0 : ENGRAM_EDECODE;
}

const crdt_type_t crdt__counter_type = {CRDT_COUNTER, "counter", s_check_entry};
