/*  gossip_round: visiting members in rounds. A round holds the ids of the members that were
 *  candidates when it began, in a random order; each is handed out once, and a new round, in
 *  a new order, begins only when this one is used up. SWIM probes its members this way and the
 *  engine sends its periodic digests this way, so that every member is reached once per round
 *  of N - 1 intervals (a sender picking at random takes about N ln N picks to reach them all).
 *
 *  Invariants: after gossip_round_shuffle, ids[0..n) is a permutation of the ids added since
 *  gossip_round_begin, drawn by Fisher-Yates from the end with one draw of the caller's random
 *  source per position after the first; gossip_round_next hands each out once, in that order. A
 * member that changed state since the round began is still handed out: callers check it again.
 *
 *  Ownership: the round owns ids (freed by gossip_round_free). Single-threaded.
 */
#ifndef GOSSIP_ROUND_H
#define GOSSIP_ROUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *ids; /* this round's members, in their order */
    size_t n, at, cap;
} gossip_round_t;

/*  Empties the round and makes room for up to `members` ids. 0 or ENGRAM_ENOMEM. */
int gossip_round_begin(gossip_round_t *self, size_t members);
/*  Adds a member to the round being built: at most the number given to begin (asserted; an
 *  add past the room begin made is dropped where asserts are off). */
void gossip_round_add(gossip_round_t *self, uint64_t id);
/*  Puts the round's members in a random order, from draw(arg) (a uniform 64-bit number). */
void gossip_round_shuffle(gossip_round_t *self, uint64_t (*draw)(void *arg), void *arg);
/*  The round's next member: false when it is used up (begin a new one). */
bool gossip_round_next(gossip_round_t *self, uint64_t *id);
void gossip_round_free(gossip_round_t *self);

#endif
