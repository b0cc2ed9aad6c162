/*  Tests of crdt_mvreg, the multi-value register: the canonical use, concurrent writes become
 *  siblings with one deterministic winner, a later write replaces what it saw, and, over
 *  random histories, the converged siblings are exactly the writes no later write or forget
 *  had in its causal past, the winner the highest (hlc, node, n).
 */
#include "world.h"

#include <stdlib.h>
#include <string.h>

#include "engram/error.h"

static void test_write_read(void **state)
{
    (void)state;
    crdt_scope_t *s = crdt_scope_new(1);
    assert_int_equal(crdt_mvreg_write(s, "summary", 100, "first", 5, NULL), 0);
    assert_int_equal(crdt_mvreg_write(s, "summary", 200, "second", 6, NULL), 0);
    crdt_entry_view_t *v;
    size_t n;
    assert_int_equal(crdt_mvreg_read(s, "summary", &v, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].len, 6);
    assert_memory_equal(v[0].data, "second", 6);
    assert_int_equal(v[0].hlc, 200);
    free(v);
    assert_int_equal(crdt_mvreg_read(s, "absent", &v, &n), ENGRAM_ENOTFOUND);
    crdt_scope_destroy(&s);
}

static void test_concurrent_writes_are_siblings(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2), *da = NULL, *db = NULL;
    assert_int_equal(crdt_mvreg_write(a, "k", 500, "from-a", 6, &da), 0);
    assert_int_equal(crdt_mvreg_write(b, "k", 400, "from-b", 6, &db), 0);
    assert_int_equal(crdt_scope_join(a, db), 0);
    assert_int_equal(crdt_scope_join(b, da), 0);
    crdt_entry_view_t *va, *vb;
    size_t na, nb;
    assert_int_equal(crdt_mvreg_read(a, "k", &va, &na), 0);
    assert_int_equal(crdt_mvreg_read(b, "k", &vb, &nb), 0);
    assert_int_equal(na, 2);
    assert_int_equal(nb, 2);
    /* Same winner on both replicas: the higher HLC. */
    assert_memory_equal(va[0].data, "from-a", 6);
    assert_memory_equal(vb[0].data, "from-a", 6);
    free(va);
    free(vb);
    /* A write that saw both replaces both. */
    crdt_scope_t *dm = NULL;
    assert_int_equal(crdt_mvreg_write(b, "k", 600, "merged", 6, &dm), 0);
    assert_int_equal(crdt_scope_join(a, dm), 0);
    assert_int_equal(crdt_mvreg_read(a, "k", &va, &na), 0);
    assert_int_equal(na, 1);
    assert_memory_equal(va[0].data, "merged", 6);
    free(va);
    crdt_scope_destroy(&da);
    crdt_scope_destroy(&db);
    crdt_scope_destroy(&dm);
    crdt_scope_destroy(&a);
    crdt_scope_destroy(&b);
}

static void test_random_histories_match_specification(void **state)
{
    (void)state;
    unsigned kinds = (1u << OP_REG_WRITE) | (1u << OP_FORGET);
    int cases = prop_cases(2000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("mvreg_spec", c);
        world_t w;
        world_converged(&w, &rng, kinds);
        const crdt_scope_t *x = w.replicas[0];
        for (size_t i = 0; i < w.nops; i++) {
            const char *key = w.ops[i].key;
            /* Expected siblings: writes on key that no later write or forget saw. */
            size_t expected = 0;
            const world_op_t *winner = NULL;
            for (size_t a = 0; a < w.nops; a++) {
                const world_op_t *op = &w.ops[a];
                if (op->kind != OP_REG_WRITE || strcmp(op->key, key) != 0 ||
                    world_superseded(&w, a, 1u << OP_REG_WRITE, key, NULL))
                    continue;
                expected++;
                if (!winner || op->hlc > winner->hlc ||
                    (op->hlc == winner->hlc && (op->dot.node > winner->dot.node ||
                                                (op->dot.node == winner->dot.node &&
                                                 op->dot.n > winner->dot.n))))
                    winner = op;
            }
            crdt_entry_view_t *v = NULL;
            size_t n = 0;
            int rc = crdt_mvreg_read(x, key, &v, &n);
            if (expected == 0) {
                PROP_CHECK(rc == ENGRAM_ENOTFOUND);
                continue;
            }
            PROP_CHECK(rc == 0);
            PROP_CHECK(n == expected);
            /* Each sibling is one of those writes. */
            for (size_t s = 0; s < n; s++) {
                bool found = false;
                for (size_t a = 0; a < w.nops && !found; a++)
                    found = w.ops[a].kind == OP_REG_WRITE && w.ops[a].dot.node == v[s].node &&
                            w.ops[a].dot.n == v[s].n && strcmp(w.ops[a].key, key) == 0 &&
                            !world_superseded(&w, a, 1u << OP_REG_WRITE, key, NULL);
                PROP_CHECK(found);
            }
            PROP_CHECK(v[0].node == winner->dot.node && v[0].n == winner->dot.n);
            PROP_CHECK(v[0].len == strlen(winner->value) &&
                       memcmp(v[0].data, winner->value, v[0].len) == 0);
            free(v);
        }
        world_fini(&w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_read),
        cmocka_unit_test(test_concurrent_writes_are_siblings),
        cmocka_unit_test(test_random_histories_match_specification),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
