/*  crdt_hlc: hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014).
 *
 *  A timestamp is one uint64: wall-clock milliseconds in the high 48 bits, a logical counter
 *  in the low ENGRAM_HLC_LOGICAL_BITS. Timestamps a clock issues strictly increase, never fall
 *  behind the wall clock passed in, and exceed every timestamp the clock has observed, so
 *  ordering by HLC respects causality and stays close to real time. Pure: `now_ms` is always
 *  passed in, never read here. When the logical counter would overflow, the physical part
 *  moves one millisecond ahead of the wall clock instead.
 */
#ifndef CRDT_HLC_H
#define CRDT_HLC_H

#include <stdint.h>

typedef struct {
    uint64_t last; /* the largest timestamp issued or observed */
} crdt_hlc_t;

/*  A timestamp for a local event (a write, a send). */
uint64_t crdt_hlc_now(crdt_hlc_t *clock, uint64_t now_ms);
/*  Merges a timestamp received from elsewhere and returns one for the receive event. A remote
 *  timestamp more than max_drift_ms ahead of now_ms is refused with ENGRAM_ERANGE and leaves
 *  the clock unchanged: one peer with a bad clock must not drag every clock forward. So is a
 *  timestamp in the last millisecond of the range, after which no clock could advance. */
int crdt_hlc_observe(crdt_hlc_t *clock, uint64_t remote, uint64_t now_ms, uint64_t max_drift_ms,
                     uint64_t *stamp);

uint64_t crdt_hlc_physical_ms(uint64_t stamp);
uint64_t crdt_hlc_logical(uint64_t stamp);

#endif
