/*  Tests of crdt_log, the append-only log: the canonical use, entries ordered by (hlc, node,
 *  n) on every replica, and over random histories every append present exactly until a
 *  forget that saw it.
 */
#include "world.h"

#include <stdlib.h>
#include <string.h>

#include "engram/error.h"

static void test_append_range(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2), *d = NULL;
    assert_int_equal(crdt_log_append(a, "notes", 30, "third", 5, NULL), 0);
    assert_int_equal(crdt_log_append(a, "notes", 10, "first", 5, NULL), 0);
    assert_int_equal(crdt_log_append(b, "notes", 20, "second", 6, &d), 0);
    assert_int_equal(crdt_scope_join(a, d), 0);
    crdt_entry_view_t *e;
    size_t n;
    assert_int_equal(crdt_log_range(a, "notes", &e, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(e[0].data, "first", 5);
    assert_memory_equal(e[1].data, "second", 6);
    assert_memory_equal(e[2].data, "third", 5);
    free(e);
    assert_int_equal(crdt_log_range(a, "absent", &e, &n), ENGRAM_ENOTFOUND);
    crdt_scope_destroy(&d);
    crdt_scope_destroy(&a);
    crdt_scope_destroy(&b);
}

static int s_log_order(const world_op_t *x, const world_op_t *y)
{
    if (x->hlc != y->hlc)
        return x->hlc < y->hlc ? -1 : 1;
    if (x->dot.node != y->dot.node)
        return x->dot.node < y->dot.node ? -1 : 1;
    return x->dot.n < y->dot.n ? -1 : (x->dot.n > y->dot.n);
}

static void test_random_histories_match_specification(void **state)
{
    (void)state;
    int cases = prop_cases(2000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("log_spec", c);
        world_t w;
        world_converged(&w, &rng, (1u << OP_LOG_APPEND) | (1u << OP_FORGET));
        for (int r = 0; r < w.nreplicas; r++) {
            for (size_t i = 0; i < w.nops; i++) {
                const char *key = w.ops[i].key;
                /* Expected: appends on key that no forget saw, in (hlc, node, n) order. */
                const world_op_t *expected[256];
                size_t nexp = 0;
                for (size_t a = 0; a < w.nops; a++) {
                    if (w.ops[a].kind != OP_LOG_APPEND || strcmp(w.ops[a].key, key) ||
                        world_superseded(&w, a, 0, key, NULL))
                        continue;
                    size_t at = nexp++;
                    while (at > 0 && s_log_order(expected[at - 1], &w.ops[a]) > 0) {
                        expected[at] = expected[at - 1];
                        at--;
                    }
                    expected[at] = &w.ops[a];
                }
                crdt_entry_view_t *e = NULL;
                size_t n = 0;
                int rc = crdt_log_range(w.replicas[r], key, &e, &n);
                PROP_CHECK(rc == (nexp ? 0 : ENGRAM_ENOTFOUND));
                PROP_CHECK(n == nexp);
                for (size_t k = 0; k < n && k < nexp; k++) {
                    PROP_CHECK(e[k].node == expected[k]->dot.node &&
                               e[k].n == expected[k]->dot.n);
                    PROP_CHECK(e[k].len == strlen(expected[k]->value) &&
                               memcmp(e[k].data, expected[k]->value, e[k].len) == 0);
                }
                free(e);
            }
        }
        world_fini(&w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_range),
        cmocka_unit_test(test_random_histories_match_specification),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
