/*  Tests of crdt/hlc.c: the hybrid logical clock.
 *
 *  What is checked: the canonical use; timestamps a clock issues strictly increase and never
 *  fall behind the wall clock passed in, even when the wall clock stalls or steps back;
 *  observe() returns a stamp above the remote one and above everything the clock issued; a
 *  remote too far ahead is refused with ENGRAM_ERANGE and leaves the clock unchanged (the
 *  bound itself is accepted, and a bound near UINT64_MAX must not overflow into refusing
 *  everything); the top of the timestamp space never wraps the clock back to 0; a full
 *  logical counter carries into the physical part; and in random interleavings of local
 *  events, sends and receives across several clocks with skewed, jumping wall clocks,
 *  timestamps respect happened-before (checked against vector clocks over every pair of
 *  events) and stay close to the fastest wall clock.
 *
 *  Randomness comes from tests/support/prop.h: failures print ENGRAM_SEED to replay them,
 *  and ENGRAM_PROP_SCALE shrinks the case counts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prop.h"

#include "crdt/hlc.h"
#include "engram/error.h"
#include "engram/limits.h"

#define LOGICAL_MAX ((UINT64_C(1) << ENGRAM_HLC_LOGICAL_BITS) - 1)
#define STAMP(ms, logical) (((uint64_t)(ms) << ENGRAM_HLC_LOGICAL_BITS) | (uint64_t)(logical))

/*  A realistic wall clock: 2026 in milliseconds since the epoch. */
#define NOW_2026 UINT64_C(1767225600000)

static void test_canonical_use(void **state)
{
    (void)state;
    crdt_hlc_t clock = {0};
    uint64_t t1 = crdt_hlc_now(&clock, NOW_2026);
    assert_int_equal(crdt_hlc_physical_ms(t1), NOW_2026);
    assert_int_equal(crdt_hlc_logical(t1), 0);
    uint64_t t2 = crdt_hlc_now(&clock, NOW_2026); /* same millisecond: logical ticks */
    assert_true(t2 > t1);
    assert_int_equal(crdt_hlc_physical_ms(t2), NOW_2026);
    assert_int_equal(crdt_hlc_logical(t2), 1);
    uint64_t t3 = crdt_hlc_now(&clock, NOW_2026 + 5); /* wall clock moved: logical resets */
    assert_int_equal(t3, STAMP(NOW_2026 + 5, 0));
    assert_int_equal(clock.last, t3);

    /* A message stamped by a clock 3 ms ahead is received: the receive stamp is above it. */
    uint64_t remote = STAMP(NOW_2026 + 8, 4), stamp = 0;
    assert_int_equal(crdt_hlc_observe(&clock, remote, NOW_2026 + 5, 1000, &stamp), 0);
    assert_int_equal(stamp, STAMP(NOW_2026 + 8, 5));
    assert_int_equal(clock.last, stamp);
    assert_true(crdt_hlc_now(&clock, NOW_2026 + 6) > stamp);
}

static void test_physical_and_logical_parts(void **state)
{
    (void)state;
    int cases = prop_cases(10000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("parts", c);
        uint64_t ms = prop_below(&rng, UINT64_C(1) << (64 - ENGRAM_HLC_LOGICAL_BITS));
        uint64_t logical = prop_below(&rng, LOGICAL_MAX + 1);
        uint64_t stamp = STAMP(ms, logical);
        PROP_CHECK(crdt_hlc_physical_ms(stamp) == ms);
        PROP_CHECK(crdt_hlc_logical(stamp) == logical);
    }
    assert_int_equal(crdt_hlc_physical_ms(UINT64_MAX), (UINT64_C(1) << 48) - 1);
    assert_int_equal(crdt_hlc_logical(UINT64_MAX), LOGICAL_MAX);
}

/*  One clock, a wall clock that advances, stalls and steps back. */
static void test_now_strictly_increases(void **state)
{
    (void)state;
    int cases = prop_cases(300);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("now_strictly_increases", c);
        crdt_hlc_t clock = {0};
        uint64_t wall = NOW_2026 + prop_below(&rng, 1000000), prev = 0;
        for (int i = 0; i < 2000; i++) {
            /* Half the time the wall clock stalls (many events in one millisecond). */
            uint64_t move = prop_below(&rng, 100);
            if (move >= 50 && move < 90)
                wall += 1 + prop_below(&rng, 20);
            else if (move >= 90)
                wall -= prop_below(&rng, 500); /* NTP steps the clock back */
            uint64_t t = crdt_hlc_now(&clock, wall);
            PROP_CHECK(t > prev);
            PROP_CHECK(crdt_hlc_physical_ms(t) >= wall);
            PROP_CHECK(clock.last == t);
            prev = t;
        }
    }
}

/*  observe() exceeds the remote and the clock's past, never falls behind the wall clock. */
static void test_observe_exceeds_remote(void **state)
{
    (void)state;
    int cases = prop_cases(20000);
    const uint64_t drift = 60000;
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("observe_exceeds_remote", c);
        uint64_t wall = NOW_2026 + prop_below(&rng, 1000);
        crdt_hlc_t clock = {STAMP(wall - 500 + prop_below(&rng, 1000), prop_below(&rng, 5))};
        if (prop_chance(&rng, 10))
            clock.last = 0; /* a fresh clock */
        uint64_t remote_ms = wall - 1000 + prop_below(&rng, 1000 + drift + 1);
        uint64_t remote = STAMP(remote_ms, prop_below(&rng, LOGICAL_MAX + 1));
        uint64_t before = clock.last, stamp = 0;
        PROP_CHECK(crdt_hlc_observe(&clock, remote, wall, drift, &stamp) == 0);
        PROP_CHECK(stamp > remote);
        PROP_CHECK(stamp > before);
        PROP_CHECK(crdt_hlc_physical_ms(stamp) >= wall);
        PROP_CHECK(clock.last == stamp);
        /* The smallest such stamp: no logical jump when the clock is not ahead. */
        uint64_t floor = remote > before ? remote : before;
        uint64_t wall_stamp = STAMP(wall, 0);
        PROP_CHECK(stamp == (wall_stamp > floor ? wall_stamp : floor + 1));
    }
}

static void test_remote_too_far_ahead(void **state)
{
    (void)state;
    const uint64_t drift = 60000;
    crdt_hlc_t clock = {0};
    uint64_t t = crdt_hlc_now(&clock, NOW_2026);
    uint64_t stamp = 12345;

    /* One millisecond past the bound, any logical part: refused, nothing moves. */
    uint64_t remote = STAMP(NOW_2026 + drift + 1, 0);
    assert_int_equal(crdt_hlc_observe(&clock, remote, NOW_2026, drift, &stamp), ENGRAM_ERANGE);
    assert_int_equal(clock.last, t);
    assert_int_equal(stamp, 12345);
    assert_int_equal(crdt_hlc_observe(&clock, UINT64_MAX, NOW_2026, drift, &stamp),
                     ENGRAM_ERANGE);
    assert_int_equal(clock.last, t);
    /* The next local stamp is what it would have been. */
    assert_int_equal(crdt_hlc_now(&clock, NOW_2026), t + 1);

    /* Exactly at the bound, even with a full logical part: accepted. */
    remote = STAMP(NOW_2026 + drift, LOGICAL_MAX - 1);
    assert_int_equal(crdt_hlc_observe(&clock, remote, NOW_2026, drift, &stamp), 0);
    assert_int_equal(stamp, remote + 1);
    /* No drift allowed: only stamps at or behind the wall clock. */
    crdt_hlc_t strict = {0};
    assert_int_equal(crdt_hlc_observe(&strict, STAMP(NOW_2026, 9), NOW_2026, 0, &stamp), 0);
    assert_int_equal(stamp, STAMP(NOW_2026, 10));
    assert_int_equal(crdt_hlc_observe(&strict, STAMP(NOW_2026 + 1, 0), NOW_2026, 0, &stamp),
                     ENGRAM_ERANGE);
    assert_int_equal(strict.last, STAMP(NOW_2026, 10));

    /* Random remotes around the bound. */
    int cases = prop_cases(20000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("remote_too_far_ahead", c);
        uint64_t wall = NOW_2026 + prop_below(&rng, 100000);
        uint64_t max_drift = prop_below(&rng, 100000);
        crdt_hlc_t h = {STAMP(wall - prop_below(&rng, 50), prop_below(&rng, 100))};
        uint64_t r_ms = wall + max_drift - 5 + prop_below(&rng, 10);
        uint64_t r = STAMP(r_ms, prop_below(&rng, LOGICAL_MAX + 1));
        uint64_t last = h.last, out = 7;
        int rc = crdt_hlc_observe(&h, r, wall, max_drift, &out);
        if (r_ms > wall + max_drift) {
            PROP_CHECK(rc == ENGRAM_ERANGE);
            PROP_CHECK(h.last == last && out == 7);
        } else {
            PROP_CHECK(rc == 0);
            PROP_CHECK(out > r && out > last);
        }
    }
}

/*  A max drift so large that now + max_drift does not fit in 64 bits means "accept any
 *  remote"; it must not wrap around into "refuse everything". */
static void test_huge_max_drift(void **state)
{
    (void)state;
    crdt_hlc_t clock = {0};
    uint64_t stamp = 0;
    /* A remote at our own wall clock: now_ms + max_drift_ms wraps to now_ms - 1. */
    int rc = crdt_hlc_observe(&clock, STAMP(NOW_2026, 3), NOW_2026, UINT64_MAX, &stamp);
    if (rc != 0)
        print_error("observe(remote at the wall clock, max_drift UINT64_MAX) gave %d (%s)\n", rc,
                    engram_strerror(rc));
    assert_int_equal(rc, 0);
    assert_int_equal(stamp, STAMP(NOW_2026, 4));
    /* An hour ahead, with a drift bound far past an hour. */
    rc = crdt_hlc_observe(&clock, STAMP(NOW_2026 + 3600000, 0), NOW_2026,
                          UINT64_MAX - NOW_2026 / 2, &stamp);
    assert_int_equal(rc, 0);
    assert_int_equal(stamp, STAMP(NOW_2026 + 3600000, 1));
}

/*  A remote at the very top of the timestamp space leaves no stamp above it: observe must
 *  refuse it rather than wrap the clock around to 0, and no remote may leave the clock where
 *  its next local stamp wraps (only reachable when max_drift_ms does not bound the remote,
 *  e.g. UINT64_MAX for "no limit"). */
static void test_remote_at_top_of_range(void **state)
{
    (void)state;
    crdt_hlc_t clock = {0};
    uint64_t t = crdt_hlc_now(&clock, NOW_2026), stamp = 0;
    int rc = crdt_hlc_observe(&clock, UINT64_MAX, NOW_2026, UINT64_MAX, &stamp);
    if (rc == 0)
        print_error("observe(UINT64_MAX) accepted, stamp %llu, clock now %llu\n",
                    (unsigned long long)stamp, (unsigned long long)clock.last);
    assert_int_equal(rc, ENGRAM_ERANGE);
    assert_int_equal(clock.last, t);
    assert_true(crdt_hlc_now(&clock, NOW_2026) > t);

    /* One below the top: if accepted, the clock sits at UINT64_MAX and must still never
     * issue a stamp that does not increase. */
    crdt_hlc_t top = {0};
    rc = crdt_hlc_observe(&top, UINT64_MAX - 1, NOW_2026, UINT64_MAX, &stamp);
    assert_true(rc == 0 || rc == ENGRAM_ERANGE);
    if (rc == 0) {
        assert_true(stamp > UINT64_MAX - 1);
        uint64_t next = crdt_hlc_now(&top, NOW_2026);
        if (next <= stamp)
            print_error("after observe(UINT64_MAX - 1) gave %llu, now() gave %llu\n",
                        (unsigned long long)stamp, (unsigned long long)next);
        assert_true(next > stamp);
    }
}

/*  A full logical counter carries into the physical part: the clock runs one millisecond
 *  ahead of the wall clock rather than wrap. */
static void test_logical_overflow_carries(void **state)
{
    (void)state;
    crdt_hlc_t clock = {0};
    uint64_t prev = crdt_hlc_now(&clock, NOW_2026);
    for (uint64_t i = 1; i <= LOGICAL_MAX; i++) {
        uint64_t t = crdt_hlc_now(&clock, NOW_2026);
        assert_true(t > prev);
        prev = t;
    }
    assert_int_equal(prev, STAMP(NOW_2026, LOGICAL_MAX));
    uint64_t t = crdt_hlc_now(&clock, NOW_2026);
    assert_int_equal(crdt_hlc_physical_ms(t), NOW_2026 + 1);
    assert_int_equal(crdt_hlc_logical(t), 0);
    assert_true(t > prev);
    /* The wall clock reaching that millisecond does not repeat the stamp. */
    uint64_t t2 = crdt_hlc_now(&clock, NOW_2026 + 1);
    assert_int_equal(t2, STAMP(NOW_2026 + 1, 1));

    /* Through observe: a remote with a full logical part. */
    crdt_hlc_t other = {0};
    uint64_t stamp = 0;
    uint64_t remote = STAMP(NOW_2026 + 2, LOGICAL_MAX);
    assert_int_equal(crdt_hlc_observe(&other, remote, NOW_2026, 1000, &stamp), 0);
    assert_int_equal(stamp, STAMP(NOW_2026 + 3, 0));
    assert_true(stamp > remote);
}

/*  --- happened-before across clocks ---------------------------------------------------- */

#define MAX_CLOCKS 5
#define MAX_EVENTS 400
#define MAX_INFLIGHT 64

typedef struct {
    uint64_t stamp;
    size_t clock;
    uint32_t vc[MAX_CLOCKS]; /* vector clock: events of each clock this one has seen */
} event_t;

typedef struct {
    uint64_t stamp;
    uint32_t vc[MAX_CLOCKS];
    size_t send_event;
} message_t;

/*  e happened before f (strictly) in the vector-clock order. */
static bool s_before(const event_t *e, const event_t *f, size_t n)
{
    bool strictly = false;
    for (size_t i = 0; i < n; i++) {
        if (e->vc[i] > f->vc[i])
            return false;
        strictly |= e->vc[i] < f->vc[i];
    }
    return strictly;
}

static void test_happened_before_random(void **state)
{
    (void)state;
    int cases = prop_cases(1500);
    size_t receives = 0, refusals = 0;
    static event_t events[MAX_EVENTS];
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("happened_before_random", c);
        size_t n = 2 + prop_below(&rng, MAX_CLOCKS - 1);
        crdt_hlc_t clocks[MAX_CLOCKS] = {{0}};
        int64_t skew[MAX_CLOCKS];
        uint32_t vc[MAX_CLOCKS][MAX_CLOCKS] = {{0}};
        uint64_t last[MAX_CLOCKS] = {0};
        /* Drift bound: some cases large enough for every skew, some small enough to refuse. */
        uint64_t max_drift = prop_chance(&rng, 70) ? 5000 : prop_below(&rng, 300);
        for (size_t i = 0; i < n; i++)
            skew[i] = (int64_t)prop_below(&rng, 2001) - 1000;
        message_t inflight[MAX_INFLIGHT];
        size_t ninflight = 0, nevents = 0;
        uint64_t global = NOW_2026, max_wall = 0;
        while (nevents < MAX_EVENTS) {
            global += prop_below(&rng, 3); /* real time: often several events per ms */
            size_t i = prop_below(&rng, n);
            if (prop_chance(&rng, 3))
                skew[i] -= (int64_t)prop_below(&rng, 200); /* this wall clock steps back */
            uint64_t wall = (uint64_t)((int64_t)global + skew[i]);
            for (size_t k = 0; k < n; k++) {
                uint64_t w = (uint64_t)((int64_t)global + skew[k]);
                if (w > max_wall)
                    max_wall = w;
            }
            uint64_t kind = prop_below(&rng, 100);
            event_t *e = &events[nevents];
            if (kind < 55 || ninflight == 0) { /* local event or send */
                e->stamp = crdt_hlc_now(&clocks[i], wall);
                vc[i][i]++;
                if (kind >= 20 && ninflight < MAX_INFLIGHT) {
                    message_t *m = &inflight[ninflight++];
                    m->stamp = e->stamp;
                    memcpy(m->vc, vc[i], sizeof m->vc);
                    m->send_event = nevents;
                }
            } else { /* a receive, of any message in flight (reordering) */
                size_t k = prop_below(&rng, ninflight);
                message_t m = inflight[k];
                inflight[k] = inflight[--ninflight];
                uint64_t before = clocks[i].last, stamp = 0;
                int rc = crdt_hlc_observe(&clocks[i], m.stamp, wall, max_drift, &stamp);
                if (rc != 0) {
                    PROP_CHECK(rc == ENGRAM_ERANGE);
                    PROP_CHECK(crdt_hlc_physical_ms(m.stamp) > wall + max_drift);
                    PROP_CHECK(clocks[i].last == before);
                    refusals++;
                    continue; /* dropped: no event */
                }
                PROP_CHECK(stamp > m.stamp); /* receive after send */
                PROP_CHECK(stamp > events[m.send_event].stamp);
                e->stamp = stamp;
                for (size_t q = 0; q < n; q++)
                    if (m.vc[q] > vc[i][q])
                        vc[i][q] = m.vc[q];
                vc[i][i]++;
                receives++;
            }
            PROP_CHECK(e->stamp > last[i]); /* each clock strictly increases */
            PROP_CHECK(crdt_hlc_physical_ms(e->stamp) >= wall);
            /* Close to real time: never ahead of the fastest wall clock so far (the logical
             * part does not overflow with this few events per millisecond). */
            PROP_CHECK(crdt_hlc_physical_ms(e->stamp) <= max_wall);
            last[i] = e->stamp;
            e->clock = i;
            memcpy(e->vc, vc[i], sizeof e->vc);
            nevents++;
        }
        /* Every pair ordered by happened-before is ordered by timestamp. */
        for (size_t a = 0; a < nevents; a++)
            for (size_t b = 0; b < nevents; b++)
                if (s_before(&events[a], &events[b], n))
                    PROP_CHECK(events[a].stamp < events[b].stamp);
    }
    assert_true(receives > 0);
    assert_true(refusals > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_use),
        cmocka_unit_test(test_physical_and_logical_parts),
        cmocka_unit_test(test_now_strictly_increases),
        cmocka_unit_test(test_observe_exceeds_remote),
        cmocka_unit_test(test_remote_too_far_ahead),
        cmocka_unit_test(test_huge_max_drift),
        cmocka_unit_test(test_remote_at_top_of_range),
        cmocka_unit_test(test_logical_overflow_carries),
        cmocka_unit_test(test_happened_before_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
