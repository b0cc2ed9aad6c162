/*  Tests of crdt_counter, the causal counter: the canonical use, one entry per writing node
 *  whatever the number of increments, the value equals the sum of every increment after any
 *  delivery order, overflow is refused, and a forget (reset) removes only what it observed.
 */
#include "world.h"

#include <stdlib.h>
#include <string.h>

#include "engram/error.h"

static void test_add_value(void **state)
{
    (void)state;
    crdt_scope_t *s = crdt_scope_new(1);
    assert_int_equal(crdt_counter_add(s, "tokens", 40, NULL), 0);
    assert_int_equal(crdt_counter_add(s, "tokens", 2, NULL), 0);
    assert_int_equal(crdt_counter_add(s, "tokens", -10, NULL), 0);
    int64_t v = 0;
    assert_int_equal(crdt_counter_value(s, "tokens", &v), 0);
    assert_int_equal(v, 32);
    /* Three increments, one entry: the running total replaced its predecessor. */
    assert_int_equal(crdt_scope_entries(s), 1);
    assert_int_equal(crdt_counter_value(s, "absent", &v), ENGRAM_ENOTFOUND);
    crdt_scope_destroy(&s);
}

static void test_overflow_is_refused(void **state)
{
    (void)state;
    crdt_scope_t *s = crdt_scope_new(1);
    assert_int_equal(crdt_counter_add(s, "c", INT64_MAX, NULL), 0);
    crdt_scope_t *before = crdt_scope_dup(s, 1);
    assert_int_equal(crdt_counter_add(s, "c", 1, NULL), ENGRAM_ERANGE);
    assert_true(crdt_scope_equal(s, before));
    /* Two nodes whose totals are each valid can still overflow the sum. */
    crdt_scope_t *b = crdt_scope_new(2), *d = NULL;
    assert_int_equal(crdt_counter_add(b, "c", 1, &d), 0);
    assert_int_equal(crdt_scope_join(s, d), 0);
    int64_t v;
    assert_int_equal(crdt_counter_value(s, "c", &v), ENGRAM_ERANGE);
    crdt_scope_destroy(&d);
    crdt_scope_destroy(&b);
    crdt_scope_destroy(&before);
    crdt_scope_destroy(&s);
}

static void test_sum_of_all_increments(void **state)
{
    (void)state;
    int cases = prop_cases(2000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("counter_sum", c);
        world_t w;
        world_converged(&w, &rng, 1u << OP_COUNTER_ADD);
        for (int r = 0; r < w.nreplicas; r++) {
            for (size_t i = 0; i < w.nops; i++) {
                int64_t expected = 0, value = 0;
                for (size_t a = 0; a < w.nops; a++)
                    if (strcmp(w.ops[a].key, w.ops[i].key) == 0)
                        expected += w.ops[a].amount;
                PROP_CHECK(crdt_counter_value(w.replicas[r], w.ops[i].key, &value) == 0);
                PROP_CHECK(value == expected);
            }
            /* At most one entry per writing node per counter. */
            PROP_CHECK(crdt_scope_entries(w.replicas[r]) <= (size_t)w.nreplicas * 3);
        }
        world_fini(&w);
    }
}

/*  A reset removes exactly the totals it observed. B's increment concurrent with A's reset
 *  replaces B's own total, which the reset never saw, so B's whole running total survives
 *  (the causal counter of Almeida et al.: a reset cancels observed entries, not increments). */
static void test_reset_removes_only_what_it_observed(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2), *d1 = NULL, *d2 = NULL,
                 *reset = NULL, *inc = NULL;
    assert_int_equal(crdt_counter_add(a, "c", 5, &d1), 0);
    assert_int_equal(crdt_counter_add(b, "c", 7, &d2), 0);
    assert_int_equal(crdt_scope_join(a, d2), 0);
    assert_int_equal(crdt_scope_join(b, d1), 0);
    assert_int_equal(crdt_scope_forget(a, "c", &reset), 0);
    assert_int_equal(crdt_counter_add(b, "c", 1, &inc), 0);
    assert_int_equal(crdt_scope_join(a, inc), 0);
    assert_int_equal(crdt_scope_join(b, reset), 0);
    int64_t va, vb;
    assert_int_equal(crdt_counter_value(a, "c", &va), 0);
    assert_int_equal(crdt_counter_value(b, "c", &vb), 0);
    assert_int_equal(va, 8); /* A's 5 is gone; B's total 7 + 1 was not observed */
    assert_int_equal(vb, 8);
    /* A reset that observed everything leaves nothing. */
    assert_int_equal(crdt_scope_forget(a, "c", NULL), 0);
    assert_int_equal(crdt_counter_value(a, "c", &va), ENGRAM_ENOTFOUND);
    crdt_scope_destroy(&d1);
    crdt_scope_destroy(&d2);
    crdt_scope_destroy(&reset);
    crdt_scope_destroy(&inc);
    crdt_scope_destroy(&a);
    crdt_scope_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_value),
        cmocka_unit_test(test_overflow_is_refused),
        cmocka_unit_test(test_sum_of_all_increments),
        cmocka_unit_test(test_reset_removes_only_what_it_observed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
