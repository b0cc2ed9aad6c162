/*  crdt__hmap: byte-string keyed open-addressing hash map (see internal.h).
 *
 *  Invariants: capacity is a power of two; the load factor stays at or below 3/4; every key
 *  lives in the probe run that starts at its home bucket (backward-shift deletion keeps it so).
 */
#include "crdt/internal.h"

#include <stdlib.h>
#include <string.h>

#include "crdt/hash.h"
#include "engram/error.h"

#define HMAP_MIN_SLOTS 8

typedef struct {
    uint8_t *key; /* owned copy; NULL marks a free slot */
    size_t klen;
    uint64_t hash;
    void *value; /* borrowed */
} s_slot_t;

struct crdt__hmap {
    s_slot_t *slots;
    size_t nslots; /* power of two */
    size_t count;
};

crdt__hmap_t *crdt__hmap_new(void)
{
    crdt__hmap_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->slots = calloc(HMAP_MIN_SLOTS, sizeof *self->slots);
    if (!self->slots) {
        free(self);
        return NULL;
    }
    self->nslots = HMAP_MIN_SLOTS;
    return self;
}

void crdt__hmap_destroy(crdt__hmap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    crdt__hmap_t *self = *self_p;
    for (size_t i = 0; i < self->nslots; i++)
        free(self->slots[i].key);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

size_t crdt__hmap_count(const crdt__hmap_t *self)
{
    return self->count;
}

static size_t s_find(const crdt__hmap_t *self, const void *key, size_t klen, uint64_t hash)
{
    size_t mask = self->nslots - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const s_slot_t *slot = &self->slots[i];
        if (!slot->key)
            return i;
        if (slot->hash == hash && slot->klen == klen && memcmp(slot->key, key, klen) == 0)
            return i;
    }
}

void *crdt__hmap_get(const crdt__hmap_t *self, const void *key, size_t klen)
{
    uint64_t hash = crdt_hash(key, klen, 0);
    const s_slot_t *slot = &self->slots[s_find(self, key, klen, hash)];
    return slot->key ? slot->value : NULL;
}

static int s_resize(crdt__hmap_t *self, size_t nslots)
{
    s_slot_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return ENGRAM_ENOMEM;
    for (size_t i = 0; i < self->nslots; i++) {
        if (!self->slots[i].key)
            continue;
        size_t j = self->slots[i].hash & (nslots - 1);
        while (slots[j].key)
            j = (j + 1) & (nslots - 1);
        slots[j] = self->slots[i];
    }
    free(self->slots);
    self->slots = slots;
    self->nslots = nslots;
    return 0;
}

int crdt__hmap_put(crdt__hmap_t *self, const void *key, size_t klen, void *value)
{
    if ((self->count + 1) * 4 > self->nslots * 3) {
        int rc = s_resize(self, self->nslots * 2);
        if (rc)
            return rc;
    }
    uint64_t hash = crdt_hash(key, klen, 0);
    s_slot_t *slot = &self->slots[s_find(self, key, klen, hash)];
    if (!slot->key) {
        slot->key = malloc(klen ? klen : 1);
        if (!slot->key)
            return ENGRAM_ENOMEM;
        memcpy(slot->key, key, klen);
        slot->klen = klen;
        slot->hash = hash;
        self->count++;
    }
    slot->value = value;
    return 0;
}

void *crdt__hmap_del(crdt__hmap_t *self, const void *key, size_t klen)
{
    uint64_t hash = crdt_hash(key, klen, 0);
    size_t mask = self->nslots - 1;
    size_t hole = s_find(self, key, klen, hash);
    if (!self->slots[hole].key)
        return NULL;
    void *value = self->slots[hole].value;
    free(self->slots[hole].key);
    self->slots[hole].key = NULL;
    self->count--;
    /* Backward shift: pull later members of the run into the hole when their home bucket
     * does not lie (cyclically) between the hole and their current slot. */
    for (size_t i = (hole + 1) & mask; self->slots[i].key; i = (i + 1) & mask) {
        size_t home = self->slots[i].hash & mask;
        bool stays = (hole <= i) ? (hole < home && home <= i) : (hole < home || home <= i);
        if (stays)
            continue;
        self->slots[hole] = self->slots[i];
        self->slots[i].key = NULL;
        hole = i;
    }
    return value;
}

size_t crdt__hmap_slots(const crdt__hmap_t *self)
{
    return self->nslots;
}

bool crdt__hmap_at(const crdt__hmap_t *self, size_t slot, const void **key, size_t *klen,
                   void **value)
{
    const s_slot_t *s = &self->slots[slot];
    if (!s->key)
        return false;
    if (key)
        *key = s->key;
    if (klen)
        *klen = s->klen;
    if (value)
        *value = s->value;
    return true;
}
