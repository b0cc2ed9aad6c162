/*  Tests of crdt_counter, the causal counter: the canonical use, one entry per writing node
 *  and contributor whatever the number of increments, an increment replaces only its own
 *  contributor's total, the value (and each contributor's share) equals the sum of every
 *  increment after any delivery order, overflow is refused, and a forget (reset) removes only
 *  what it observed, of every contributor.
 */
#include "world.h"

#include <stdlib.h>
#include <string.h>

#include "engram/error.h"
#include "engram/limits.h"

static void test_add_value(void **state)
{
    (void)state;
    crdt_scope_t *s = crdt_scope_new(1);
    /* The contributor: node/ names it "<agent>\x1f<user>"; the kernel treats it as opaque. */
    assert_int_equal(crdt_counter_add(s, "tokens", "ann\x1fu1", 40, NULL), 0);
    assert_int_equal(crdt_counter_add(s, "tokens", "ann\x1fu1", 2, NULL), 0);
    assert_int_equal(crdt_counter_add(s, "tokens", "ann\x1fu1", -10, NULL), 0);
    int64_t v = 0;
    assert_int_equal(crdt_counter_value(s, "tokens", &v), 0);
    assert_int_equal(v, 32);
    /* Three increments, one entry: the running total replaced its predecessor. */
    assert_int_equal(crdt_scope_entries(s), 1);
    assert_int_equal(crdt_counter_value(s, "absent", &v), ENGRAM_ENOTFOUND);
    crdt_scope_destroy(&s);
}

/*  Node 1 counts for two contributors, node 2 for one of them: the value is the sum of all,
 *  the contributions are per contributor whatever node counted them, and an increment
 *  replaces only its own (node, contributor) total. */
static void test_contributions(void **state)
{
    (void)state;
    static const char *const ann = "ann\x1fu1", *const bob = "bob\x1fu1";
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2), *d1 = NULL, *d2 = NULL, *d3 = NULL,
                 *inc = NULL;
    assert_int_equal(crdt_counter_add(a, "tokens", ann, 5, &d1), 0);
    assert_int_equal(crdt_counter_add(a, "tokens", bob, 3, &d2), 0);
    assert_int_equal(crdt_counter_add(b, "tokens", ann, 10, &d3), 0);
    assert_int_equal(crdt_scope_join(a, d3), 0);
    assert_int_equal(crdt_scope_join(b, d1), 0);
    assert_int_equal(crdt_scope_join(b, d2), 0);
    assert_true(crdt_scope_equal(a, b));
    assert_int_equal(crdt_scope_entries(a), 3);
    int64_t v = 0;
    assert_int_equal(crdt_counter_value(a, "tokens", &v), 0);
    assert_int_equal(v, 18);
    crdt_counter_contribution_t *shares = NULL;
    size_t n = 0;
    assert_int_equal(crdt_counter_contributions(a, "tokens", &shares, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(shares[0].contributor, ann);
    assert_int_equal(shares[0].total, 15);
    assert_string_equal(shares[1].contributor, bob);
    assert_int_equal(shares[1].total, 3);
    free(shares);

    /* Node 1 counts for ann again: its ann total (1, 1) is replaced, its bob total (1, 2) and
     * node 2's ann total (2, 1) are left as they are. */
    assert_int_equal(crdt_counter_add(a, "tokens", ann, 1, &inc), 0);
    assert_int_equal(crdt_scope_entries(inc), 1);
    const crdt_ctx_t *ctx = crdt_scope_ctx(inc);
    assert_true(crdt_ctx_contains(ctx, (crdt_dot_t){1, 1}));
    assert_false(crdt_ctx_contains(ctx, (crdt_dot_t){1, 2}));
    assert_false(crdt_ctx_contains(ctx, (crdt_dot_t){2, 1}));
    assert_int_equal(crdt_scope_join(b, inc), 0);
    assert_true(crdt_scope_equal(a, b));
    assert_int_equal(crdt_scope_entries(b), 3);
    assert_int_equal(crdt_counter_contributions(b, "tokens", &shares, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(shares[0].total, 16); /* node 1's 6 and node 2's 10 */
    assert_int_equal(shares[1].total, 3);
    free(shares);
    assert_int_equal(crdt_counter_value(b, "tokens", &v), 0);
    assert_int_equal(v, 19);

    /* The legacy contributor "" is one more contributor. */
    assert_int_equal(crdt_counter_add(b, "tokens", "", -4, NULL), 0);
    assert_int_equal(crdt_counter_contributions(b, "tokens", &shares, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(shares[0].contributor, "");
    assert_int_equal(shares[0].total, -4);
    free(shares);
    assert_int_equal(crdt_counter_value(b, "tokens", &v), 0);
    assert_int_equal(v, 15);
    assert_int_equal(crdt_counter_contributions(b, "absent", &shares, &n), ENGRAM_ENOTFOUND);

    crdt_scope_destroy(&inc);
    crdt_scope_destroy(&d3);
    crdt_scope_destroy(&d2);
    crdt_scope_destroy(&d1);
    crdt_scope_destroy(&b);
    crdt_scope_destroy(&a);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    crdt_scope_t *s = crdt_scope_new(1);
    char big[ENGRAM_MAX_KEY_BYTES + 2];
    memset(big, 'c', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(crdt_counter_add(s, "c", big, 1, NULL), ENGRAM_ETOOBIG);
    big[ENGRAM_MAX_KEY_BYTES] = '\0'; /* the longest contributor */
    assert_int_equal(crdt_counter_add(s, "c", big, 1, NULL), 0);
    assert_int_equal(crdt_counter_add(s, "", "x", 1, NULL), ENGRAM_EINVAL);
    assert_int_equal(crdt_awset_add(s, "set", "e", NULL, 0, NULL), 0);
    assert_int_equal(crdt_counter_add(s, "set", "x", 1, NULL), ENGRAM_ETYPE);
    assert_int_equal(crdt_scope_entries(s), 2);
    crdt_scope_destroy(&s);
}

static void test_overflow_is_refused(void **state)
{
    (void)state;
    crdt_scope_t *s = crdt_scope_new(1);
    assert_int_equal(crdt_counter_add(s, "c", "", INT64_MAX, NULL), 0);
    crdt_scope_t *before = crdt_scope_dup(s, 1);
    assert_int_equal(crdt_counter_add(s, "c", "", 1, NULL), ENGRAM_ERANGE);
    assert_true(crdt_scope_equal(s, before));
    /* Another contributor's total is its own. */
    assert_int_equal(crdt_counter_add(s, "c", "x", -1, NULL), 0);
    int64_t v;
    assert_int_equal(crdt_counter_value(s, "c", &v), 0);
    assert_int_equal(v, INT64_MAX - 1);
    /* Two nodes whose totals are each valid can still overflow the sum, and one contributor's
     * share. */
    crdt_scope_t *b = crdt_scope_new(2), *d = NULL;
    assert_int_equal(crdt_counter_add(b, "c", "", 2, &d), 0);
    assert_int_equal(crdt_scope_join(s, d), 0);
    assert_int_equal(crdt_counter_value(s, "c", &v), ENGRAM_ERANGE);
    crdt_counter_contribution_t *shares = NULL;
    size_t n = 0;
    assert_int_equal(crdt_counter_contributions(s, "c", &shares, &n), ENGRAM_ERANGE);
    assert_null(shares);
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
        /* first_share[a]: op a is the first of its (key, contributor); pairs: the distinct
         * (key, writing node, contributor). */
        bool *first_share = calloc(w.nops + 1, sizeof *first_share);
        assert_non_null(first_share);
        size_t pairs = 0;
        for (size_t a = 0; a < w.nops; a++) {
            const world_op_t *o = &w.ops[a];
            bool first_pair = true;
            first_share[a] = true;
            for (size_t b = 0; b < a; b++) {
                if (strcmp(w.ops[b].key, o->key) != 0 || strcmp(w.ops[b].elem, o->elem) != 0)
                    continue;
                first_share[a] = false;
                first_pair = first_pair && w.ops[b].origin != o->origin;
            }
            pairs += first_pair;
        }
        for (int r = 0; r < w.nreplicas; r++) {
            for (size_t i = 0; i < w.nops; i++) {
                const world_op_t *op = &w.ops[i];
                int64_t expected = 0, share = 0, value = 0;
                size_t contributors = 0;
                for (size_t a = 0; a < w.nops; a++) {
                    if (strcmp(w.ops[a].key, op->key) != 0)
                        continue;
                    expected += w.ops[a].amount;
                    contributors += first_share[a];
                    if (strcmp(w.ops[a].elem, op->elem) == 0)
                        share += w.ops[a].amount;
                }
                PROP_CHECK(crdt_counter_value(w.replicas[r], op->key, &value) == 0);
                PROP_CHECK(value == expected);
                /* Each contributor's share is the sum of its increments, wherever made. */
                crdt_counter_contribution_t *shares = NULL;
                size_t n = 0;
                PROP_CHECK(crdt_counter_contributions(w.replicas[r], op->key, &shares, &n) == 0);
                PROP_CHECK(n == contributors);
                bool found = false;
                for (size_t k = 0; k < n; k++) {
                    PROP_CHECK(k == 0 ||
                               strcmp(shares[k - 1].contributor, shares[k].contributor) < 0);
                    if (strcmp(shares[k].contributor, op->elem) == 0) {
                        found = true;
                        PROP_CHECK(shares[k].total == share);
                    }
                }
                PROP_CHECK(found);
                free(shares);
            }
            /* One entry per writing node and contributor per counter. */
            PROP_CHECK(crdt_scope_entries(w.replicas[r]) == pairs);
        }
        free(first_share);
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
    assert_int_equal(crdt_counter_add(a, "c", "", 5, &d1), 0);
    assert_int_equal(crdt_counter_add(b, "c", "", 7, &d2), 0);
    assert_int_equal(crdt_scope_join(a, d2), 0);
    assert_int_equal(crdt_scope_join(b, d1), 0);
    assert_int_equal(crdt_scope_forget(a, "c", &reset), 0);
    assert_int_equal(crdt_counter_add(b, "c", "", 1, &inc), 0);
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

/*  The same across contributors: a reset removes the totals it observed, of every contributor;
 *  the totals B wrote concurrently (one replacing an observed total, one new) survive whole. */
static void test_reset_across_contributors(void **state)
{
    (void)state;
    static const char *const ann = "ann\x1fu1", *const bob = "bob\x1fu1";
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2), *d = NULL, *reset = NULL,
                 *inc_ann = NULL, *inc_bob = NULL;
    assert_int_equal(crdt_counter_add(a, "c", ann, 5, NULL), 0);
    assert_int_equal(crdt_counter_add(a, "c", bob, 3, NULL), 0);
    assert_int_equal(crdt_counter_add(b, "c", ann, 10, &d), 0);
    assert_int_equal(crdt_scope_join(a, d), 0);
    assert_int_equal(crdt_scope_join(b, a), 0);
    assert_int_equal(crdt_scope_forget(a, "c", &reset), 0); /* observed all three */
    assert_int_equal(crdt_scope_entries(a), 0);
    assert_int_equal(crdt_counter_add(b, "c", ann, 1, &inc_ann), 0); /* replaces (2, 1) */
    assert_int_equal(crdt_counter_add(b, "c", bob, 2, &inc_bob), 0); /* a new total */
    assert_int_equal(crdt_scope_join(a, inc_ann), 0);
    assert_int_equal(crdt_scope_join(a, inc_bob), 0);
    assert_int_equal(crdt_scope_join(b, reset), 0);
    assert_true(crdt_scope_equal(a, b));
    int64_t v = 0;
    assert_int_equal(crdt_counter_value(a, "c", &v), 0);
    assert_int_equal(v, 13);
    crdt_counter_contribution_t *shares = NULL;
    size_t n = 0;
    assert_int_equal(crdt_counter_contributions(b, "c", &shares, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(shares[0].contributor, ann);
    assert_int_equal(shares[0].total, 11);
    assert_string_equal(shares[1].contributor, bob);
    assert_int_equal(shares[1].total, 2);
    free(shares);
    /* A reset that observed everything leaves nothing, of any contributor. */
    crdt_scope_destroy(&reset);
    assert_int_equal(crdt_scope_forget(b, "c", &reset), 0);
    assert_int_equal(crdt_scope_join(a, reset), 0);
    assert_int_equal(crdt_scope_entries(a), 0);
    assert_int_equal(crdt_counter_value(a, "c", &v), ENGRAM_ENOTFOUND);
    assert_true(crdt_scope_equal(a, b));
    crdt_scope_destroy(&inc_bob);
    crdt_scope_destroy(&inc_ann);
    crdt_scope_destroy(&reset);
    crdt_scope_destroy(&d);
    crdt_scope_destroy(&b);
    crdt_scope_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_value),
        cmocka_unit_test(test_contributions),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_overflow_is_refused),
        cmocka_unit_test(test_sum_of_all_increments),
        cmocka_unit_test(test_reset_removes_only_what_it_observed),
        cmocka_unit_test(test_reset_across_contributors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
