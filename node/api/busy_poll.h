/*  node/api busy_poll: how long the loop keeps looking for work before it sleeps (engramd
 *  --busy-poll-us, off by default), a window adapted as Linux's haltpoll cpuidle governor
 *  adapts its own.
 *
 *  Why: a request that finds the loop asleep in poll() waits for its thread to be woken, and
 *  on a host whose idle CPUs halt (a VM whose guest does not poll before HLT) that wake-up is
 *  the largest single cost of a short request (README, "Measured", "Busy polling": one
 *  client's get p50 about 1.5x shorter with it). Looking costs CPU, so the window opens only
 *  for a node served in a tight loop, and closes again when requests stop coming that close
 *  together.
 *
 *  The window starts at 0 (the loop sleeps at once, as without the setting). After each idle
 *  time (from a turn's end, when no work waits, to what ends it: the look, then the sleep if
 *  the look found nothing), the loop says how long it was and how it ended. Caught by the
 *  look: the window stays. Woken by work within max_us (a wider window would have caught it):
 *  the window grows, to BUSY_POLL_GROW_START_US (or max_us, if smaller), then doubling, up to
 *  max_us. Woken later, or ended by one of the loop's deadlines with no work (a timer is no
 *  client): it halves, and below the start it closes. The look never runs past the loop's
 *  next deadline. So a node whose agents ask now and then barely spins; one client asking in a
 *  loop keeps the window just wide enough, at the cost of up to one core's time while it
 *  asks; the look after a turn lasts at most max_us (and one try).
 *
 *  Pure state, no clock: the loop measures and tells (tests/node/api/busy_poll_test.c).
 */
#ifndef NODE_API_BUSY_POLL_H
#define NODE_API_BUSY_POLL_H

#include <stdint.h>

/*  The window a first grow opens, in microseconds (haltpoll starts at 50). */
#define BUSY_POLL_GROW_START_US 25

typedef struct {
    uint32_t max_us;    /* the setting; 0: never look, the window stays closed */
    uint32_t window_us; /* how long the loop looks before its next sleep; 0: it does not */
    uint64_t caught;    /* idle times the look ended by finding work */
    uint64_t looked_us; /* time spent looking, in all */
} busy_poll_t;

/*  How an idle time ended. */
typedef enum {
    BUSY_POLL_CAUGHT,    /* the look found work */
    BUSY_POLL_WOKEN,     /* work woke the sleep */
    BUSY_POLL_TIMED_OUT, /* a deadline of the loop's came first, with no work */
} busy_poll_end_t;

/*  A closed window that may open up to max_us. */
void busy_poll_init(busy_poll_t *self, uint32_t max_us);

/*  An idle time ended after idle_us, of which the loop looked looked_us. */
void busy_poll_idled(busy_poll_t *self, uint64_t looked_us, uint64_t idle_us, busy_poll_end_t end);

#endif
