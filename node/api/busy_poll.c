/*  node/api busy_poll: the adaptive window of the loop's look for work (busy_poll.h). */
#include "node/api/busy_poll.h"

void busy_poll_init(busy_poll_t *self, uint32_t max_us)
{
    *self = (busy_poll_t){.max_us = max_us};
}

void busy_poll_idled(busy_poll_t *self, uint64_t looked_us, uint64_t idle_us, busy_poll_end_t end)
{
    self->looked_us += looked_us;
    if (end == BUSY_POLL_CAUGHT) {
        self->caught++;
        return;
    }
    /* with max_us 0 every idle time is longer, or opens it to min(start, 0): it stays closed */
    if (end == BUSY_POLL_TIMED_OUT || idle_us > self->max_us) {
        self->window_us /= 2;
        if (self->window_us < BUSY_POLL_GROW_START_US)
            self->window_us = 0;
        return;
    }
    uint64_t grown = self->window_us ? (uint64_t)self->window_us * 2 : BUSY_POLL_GROW_START_US;
    self->window_us = (uint32_t)(grown < self->max_us ? grown : self->max_us);
}
