/*  Tests of gossip_round: every round hands out each member added once, in an order drawn
 *  from the caller's random source, a new one each round; a used-up round says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gossip/round.h"

static uint64_t s_counter_draw(void *arg)
{
    uint64_t *state = arg;
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

#define MEMBERS 50

/*  Builds a round of ids 100..100+n-1 and returns how they came out in order[]. */
static void s_round(gossip_round_t *round, size_t n, uint64_t *rng, uint64_t order[MEMBERS])
{
    assert_int_equal(gossip_round_begin(round, n), 0);
    for (size_t i = 0; i < n; i++)
        gossip_round_add(round, 100 + i);
    gossip_round_shuffle(round, s_counter_draw, rng);
    for (size_t i = 0; i < n; i++)
        assert_true(gossip_round_next(round, &order[i]));
    uint64_t extra;
    assert_false(gossip_round_next(round, &extra));
}

static void test_each_member_once_per_round(void **state)
{
    (void)state;
    gossip_round_t round = {0};
    uint64_t rng = 7, first[MEMBERS], second[MEMBERS];
    s_round(&round, MEMBERS, &rng, first);
    s_round(&round, MEMBERS, &rng, second);
    bool seen[MEMBERS] = {0}, seen2[MEMBERS] = {0};
    for (size_t i = 0; i < MEMBERS; i++) {
        assert_true(first[i] >= 100 && first[i] < 100 + MEMBERS);
        assert_false(seen[first[i] - 100]);
        seen[first[i] - 100] = true;
        assert_true(second[i] >= 100 && second[i] < 100 + MEMBERS);
        assert_false(seen2[second[i] - 100]);
        seen2[second[i] - 100] = true;
    }
    /* shuffled, and anew each round (50! orders: equal ones would be a broken shuffle) */
    bool sorted = true;
    for (size_t i = 1; i < MEMBERS; i++)
        sorted &= first[i] > first[i - 1];
    assert_false(sorted);
    assert_memory_not_equal(first, second, sizeof first);
    gossip_round_free(&round);
}

static void test_rounds_follow_the_members(void **state)
{
    (void)state;
    gossip_round_t round = {0};
    uint64_t rng = 11, order[MEMBERS], id;
    assert_false(gossip_round_next(&round, &id)); /* a round never begun is used up */
    s_round(&round, 3, &rng, order);
    s_round(&round, 1, &rng, order); /* fewer members: only they */
    assert_int_equal(order[0], 100);
    assert_int_equal(gossip_round_begin(&round, 0), 0);
    assert_false(gossip_round_next(&round, &id)); /* nobody: an empty round */
    gossip_round_free(&round);
    assert_null(round.ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_member_once_per_round),
        cmocka_unit_test(test_rounds_follow_the_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
