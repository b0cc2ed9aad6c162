/*  node/api busy_poll: how long the loop keeps looking for work before it sleeps (engramd
 *  --busy-poll-us, off by default), a window adapted as Linux's haltpoll cpuidle governor
 *  adapts its own.
 *
 *  Why: a request that finds the loop asleep in poll() waits for its thread to be woken, and
 *  on a host whose idle CPUs halt (a VM whose guest does not poll before HLT) that wake-up is
 *  the largest single cost of a short request: one client's get round trip measured 90 us
 *  with the loop sleeping and 63-65 us with it looking for 150 us first, Redis 53 us (README,
 *  "Busy polling"). Looking costs CPU, so the window opens only for a node served in a tight
 *  loop, and closes again when the requests stop coming that close together.
 *
 *  The window starts at 0 (the loop sleeps at once, as without the setting). After each idle
 *  time (from the end of a turn to the work that ends it: the look, then the sleep if the look
 *  found nothing), the loop says how long it was and whether the look caught the work. Caught:
 *  the window stays. Not caught but the work came within max_us (a wider window would have
 *  caught it): the window grows, to BUSY_POLL_GROW_START_US (or max_us, if smaller), then
 *  doubling, up to max_us. Longer: it halves, and below the start it closes. So a node whose
 *  agents ask now and then never spins; one client asking in a loop keeps the window just
 *  wide enough, at the cost of up to one core's time while it asks; the CPU spent looking is
 *  at most max_us after each turn.
 *
 *  Pure state, no clock: the loop measures and tells (tests/node/api/busy_poll_test.c).
 */
#ifndef NODE_API_BUSY_POLL_H
#define NODE_API_BUSY_POLL_H

#include <stdbool.h>
#include <stdint.h>

/*  The window a first grow opens, in microseconds (haltpoll starts at 50). */
#define BUSY_POLL_GROW_START_US 25

typedef struct {
    uint32_t max_us;    /* the setting; 0: never look, the window stays closed */
    uint32_t window_us; /* how long the loop looks before its next sleep; 0: it does not */
    uint64_t caught;    /* idle times whose work the look caught */
    uint64_t looked_us; /* time spent looking, in all */
} busy_poll_t;

/*  A closed window that may open up to max_us. */
void busy_poll_init(busy_poll_t *self, uint32_t max_us);

/*  An idle time ended after idle_us, of which the loop looked looked_us; caught: within the
 *  look (the window). */
void busy_poll_idled(busy_poll_t *self, uint64_t looked_us, uint64_t idle_us, bool caught);

#endif
