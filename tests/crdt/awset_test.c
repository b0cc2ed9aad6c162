/*  Tests of crdt_awset, the add-wins observed-remove set: the canonical use, add wins over a
 *  concurrent remove, a remove never cancels an add it did not observe, and, over random
 *  histories, the converged members are exactly the adds that no later op on the element (or
 *  forget of the set) had in its causal past.
 */
#include "world.h"

#include <stdlib.h>
#include <string.h>

#include "engram/error.h"

static void test_add_remove_members(void **state)
{
    (void)state;
    crdt_scope_t *s = crdt_scope_new(1);
    assert_int_equal(crdt_awset_add(s, "tools", "search", NULL), 0);
    assert_int_equal(crdt_awset_add(s, "tools", "browse", NULL), 0);
    assert_int_equal(crdt_awset_add(s, "tools", "search", NULL), 0); /* re-add: still one */
    assert_int_equal(crdt_awset_remove(s, "tools", "browse", NULL), 0);
    const char **members;
    size_t n;
    assert_int_equal(crdt_awset_members(s, "tools", &members, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(members[0], "search");
    free(members);
    assert_int_equal(crdt_scope_entries(s), 1); /* the re-add replaced the first dot */
    assert_int_equal(crdt_awset_remove(s, "tools", "search", NULL), 0);
    assert_int_equal(crdt_awset_members(s, "tools", &members, &n), ENGRAM_ENOTFOUND);
    crdt_scope_destroy(&s);
}

/*  A and B both hold x. A removes it while B concurrently re-adds it: x survives. */
static void test_add_wins(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2), *d = NULL, *rm = NULL,
                 *add = NULL;
    assert_int_equal(crdt_awset_add(a, "s", "x", &d), 0);
    assert_int_equal(crdt_scope_join(b, d), 0);
    assert_int_equal(crdt_awset_remove(a, "s", "x", &rm), 0);
    assert_int_equal(crdt_awset_add(b, "s", "x", &add), 0);
    assert_int_equal(crdt_scope_join(a, add), 0);
    assert_int_equal(crdt_scope_join(b, rm), 0);
    assert_true(crdt_awset_contains(a, "s", "x"));
    assert_true(crdt_awset_contains(b, "s", "x"));
    assert_true(crdt_scope_equal(a, b));
    crdt_scope_destroy(&d);
    crdt_scope_destroy(&rm);
    crdt_scope_destroy(&add);
    crdt_scope_destroy(&a);
    crdt_scope_destroy(&b);
}

/*  B adds x without A knowing; A's remove of its own x cannot cancel B's add. */
static void test_remove_keeps_unobserved_add(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2), *rm = NULL, *add = NULL;
    assert_int_equal(crdt_awset_add(a, "s", "x", NULL), 0);
    assert_int_equal(crdt_awset_add(b, "s", "x", &add), 0);
    assert_int_equal(crdt_awset_remove(a, "s", "x", &rm), 0);
    assert_false(crdt_awset_contains(a, "s", "x"));
    assert_int_equal(crdt_scope_join(a, add), 0);
    assert_int_equal(crdt_scope_join(b, rm), 0);
    assert_true(crdt_awset_contains(a, "s", "x"));
    assert_true(crdt_scope_equal(a, b));
    crdt_scope_destroy(&rm);
    crdt_scope_destroy(&add);
    crdt_scope_destroy(&a);
    crdt_scope_destroy(&b);
}

static void test_random_histories_match_specification(void **state)
{
    (void)state;
    unsigned kinds = (1u << OP_SET_ADD) | (1u << OP_SET_REMOVE) | (1u << OP_FORGET);
    unsigned set_ops = (1u << OP_SET_ADD) | (1u << OP_SET_REMOVE);
    int cases = prop_cases(2000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("awset_spec", c);
        world_t w;
        world_converged(&w, &rng, kinds);
        const crdt_scope_t *x = w.replicas[0];
        /* Every (key, elem) any op touched: present iff some add survives. */
        for (size_t i = 0; i < w.nops; i++) {
            const world_op_t *op = &w.ops[i];
            if (op->kind != OP_SET_ADD && op->kind != OP_SET_REMOVE)
                continue;
            bool expected = false;
            for (size_t a = 0; a < w.nops && !expected; a++)
                expected = w.ops[a].kind == OP_SET_ADD && strcmp(w.ops[a].key, op->key) == 0 &&
                           strcmp(w.ops[a].elem, op->elem) == 0 &&
                           !world_superseded(&w, a, set_ops, op->key, op->elem);
            PROP_CHECK(crdt_awset_contains(x, op->key, op->elem) == expected);
        }
        world_fini(&w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_remove_members),
        cmocka_unit_test(test_add_wins),
        cmocka_unit_test(test_remove_keeps_unobserved_add),
        cmocka_unit_test(test_random_histories_match_specification),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
