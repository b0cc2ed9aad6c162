/*  gossip_round: members visited in rounds, each round in a new random order (round.h). */
#include "gossip/round.h"

#include <assert.h>
#include <stdlib.h>

#include "crdt/array.h"

int gossip_round_begin(gossip_round_t *self, size_t members)
{
    self->n = self->at = 0;
    return crdt_array_grow((void **)&self->ids, &self->cap, members, sizeof *self->ids);
}

void gossip_round_add(gossip_round_t *self, uint64_t id)
{
    assert(self->n < self->cap);
    if (self->n < self->cap)
        self->ids[self->n++] = id;
}

void gossip_round_shuffle(gossip_round_t *self, uint64_t (*draw)(void *arg), void *arg)
{
    for (size_t i = self->n; i > 1; i--) {
        size_t j = (size_t)(draw(arg) % i);
        uint64_t tmp = self->ids[i - 1];
        self->ids[i - 1] = self->ids[j];
        self->ids[j] = tmp;
    }
}

bool gossip_round_next(gossip_round_t *self, uint64_t *id)
{
    if (self->at >= self->n)
        return false;
    *id = self->ids[self->at++];
    return true;
}

void gossip_round_free(gossip_round_t *self)
{
    free(self->ids);
    *self = (gossip_round_t){0};
}
