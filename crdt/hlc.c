/*  crdt_hlc: hybrid logical clock (see hlc.h). */
#include "crdt/hlc.h"

#include "engram/error.h"
#include "engram/limits.h"

#define LOGICAL_MASK ((UINT64_C(1) << ENGRAM_HLC_LOGICAL_BITS) - 1)
#define PHYSICAL_MAX (UINT64_MAX >> ENGRAM_HLC_LOGICAL_BITS)

uint64_t crdt_hlc_physical_ms(uint64_t stamp)
{
    return stamp >> ENGRAM_HLC_LOGICAL_BITS;
}

uint64_t crdt_hlc_logical(uint64_t stamp)
{
    return stamp & LOGICAL_MASK;
}

/*  The smallest timestamp above both `floor` and the wall clock. Adding 1 to a timestamp whose
 *  logical part is full carries into the physical part, which is the overflow rule. */
static uint64_t s_next(uint64_t floor, uint64_t now_ms)
{
    if (now_ms > PHYSICAL_MAX)
        now_ms = PHYSICAL_MAX; /* the year 10889: clamp rather than wrap */
    uint64_t wall = now_ms << ENGRAM_HLC_LOGICAL_BITS;
    return wall > floor ? wall : floor + 1;
}

uint64_t crdt_hlc_now(crdt_hlc_t *clock, uint64_t now_ms)
{
    clock->last = s_next(clock->last, now_ms);
    return clock->last;
}

int crdt_hlc_observe(crdt_hlc_t *clock, uint64_t remote, uint64_t now_ms, uint64_t max_drift_ms,
                     uint64_t *stamp)
{
    uint64_t remote_ms = crdt_hlc_physical_ms(remote);
    if (remote_ms > now_ms && remote_ms - now_ms > max_drift_ms) /* no overflow */
        return ENGRAM_ERANGE;
    if (remote_ms >= PHYSICAL_MAX || crdt_hlc_physical_ms(clock->last) >= PHYSICAL_MAX)
        return ENGRAM_ERANGE; /* the last millisecond of the range: no room to issue after it */
    clock->last = s_next(remote > clock->last ? remote : clock->last, now_ms);
    *stamp = clock->last;
    return 0;
}
