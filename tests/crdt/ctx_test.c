/*  Tests of crdt_ctx, the causal context: the canonical use, then every operation checked
 *  against a naive model (a bitset of dots) over thousands of random contexts: insert,
 *  contains, join, diff, meet, covers, equality (structural equality must coincide with set
 *  equality, which holds only if every function keeps the compact form), base, max, count,
 *  and the version-vector test.
 */
#include "prop.h"

#include <stdlib.h>
#include <string.h>

#include "crdt/ctx.h"
#include "engram/error.h"

#define NODES 4
#define DOTS 48

static void test_version_vector_and_cloud(void **state)
{
    (void)state;
    crdt_ctx_t *c = crdt_ctx_new();
    assert_int_equal(crdt_ctx_insert(c, (crdt_dot_t){7, 1}), 0);
    assert_int_equal(crdt_ctx_insert(c, (crdt_dot_t){7, 2}), 0);
    assert_true(crdt_ctx_is_vv(c));
    assert_int_equal(crdt_ctx_base(c, 7), 2);
    /* A gap: 4 arrives before 3, so it sits in the cloud... */
    assert_int_equal(crdt_ctx_insert(c, (crdt_dot_t){7, 4}), 0);
    assert_false(crdt_ctx_is_vv(c));
    assert_false(crdt_ctx_contains(c, (crdt_dot_t){7, 3}));
    assert_int_equal(crdt_ctx_max(c, 7), 4);
    /* ...until 3 closes it and the cloud folds into the vector. */
    assert_int_equal(crdt_ctx_insert(c, (crdt_dot_t){7, 3}), 0);
    assert_true(crdt_ctx_is_vv(c));
    assert_int_equal(crdt_ctx_base(c, 7), 4);
    assert_int_equal(crdt_ctx_count(c), 4);
    /* Invalid dots are refused and change nothing. */
    assert_int_equal(crdt_ctx_insert(c, (crdt_dot_t){0, 1}), ENGRAM_EINVAL);
    assert_int_equal(crdt_ctx_insert(c, (crdt_dot_t){7, 0}), ENGRAM_EINVAL);
    assert_int_equal(crdt_ctx_insert_range(c, 7, 9, 8), ENGRAM_EINVAL);
    assert_int_equal(crdt_ctx_insert_range(c, 7, 1, CRDT_DOT_MAX + 1), ENGRAM_EINVAL);
    assert_int_equal(crdt_ctx_count(c), 4);
    crdt_ctx_destroy(&c);
    crdt_ctx_destroy(&c); /* idempotent */
}

typedef struct {
    unsigned char has[NODES + 1][DOTS + 1];
} model_t;

static void s_random(prop_rng_t *rng, crdt_ctx_t *ctx, model_t *m)
{
    memset(m, 0, sizeof *m);
    int ops = (int)prop_below(rng, 12);
    for (int i = 0; i < ops; i++) {
        uint64_t node = 1 + prop_below(rng, NODES);
        uint64_t lo = 1 + prop_below(rng, DOTS);
        uint64_t hi = prop_chance(rng, 50) ? lo : lo + prop_below(rng, DOTS - lo + 1);
        PROP_CHECK(crdt_ctx_insert_range(ctx, node, lo, hi) == 0);
        for (uint64_t n = lo; n <= hi; n++)
            m->has[node][n] = 1;
    }
}

static void s_check_matches(const crdt_ctx_t *ctx, const model_t *m)
{
    uint64_t count = 0;
    bool vv = true;
    size_t nodes = 0;
    for (uint64_t node = 1; node <= NODES; node++) {
        uint64_t base = 0, max = 0;
        bool gap = false, any = false;
        for (uint64_t n = 1; n <= DOTS; n++) {
            PROP_CHECK(crdt_ctx_contains(ctx, (crdt_dot_t){node, n}) == m->has[node][n]);
            if (m->has[node][n]) {
                count++;
                max = n;
                any = true;
                if (!gap)
                    base = n;
                else
                    vv = false;
            } else {
                gap = true;
            }
        }
        nodes += any;
        PROP_CHECK(crdt_ctx_base(ctx, node) == base);
        PROP_CHECK(crdt_ctx_max(ctx, node) == max);
    }
    PROP_CHECK(crdt_ctx_count(ctx) == count);
    PROP_CHECK(crdt_ctx_is_vv(ctx) == vv);
    PROP_CHECK(crdt_ctx_nodes(ctx) == nodes);
    PROP_CHECK(crdt_ctx_is_empty(ctx) == (count == 0));
}

static void test_operations_match_model(void **state)
{
    (void)state;
    int cases = prop_cases(5000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("ctx_model", c);
        crdt_ctx_t *a = crdt_ctx_new(), *b = crdt_ctx_new();
        model_t ma, mb, expect;
        s_random(&rng, a, &ma);
        s_random(&rng, b, &mb);
        s_check_matches(a, &ma);

        crdt_ctx_t *joined = crdt_ctx_dup(a);
        PROP_CHECK(crdt_ctx_join(joined, b) == 0);
        crdt_ctx_t *diff = crdt_ctx_diff(a, b), *meet = crdt_ctx_meet(a, b);
        bool subset = true, same = true;
        for (int node = 1; node <= NODES; node++)
            for (int n = 1; n <= DOTS; n++) {
                expect.has[node][n] = ma.has[node][n] | mb.has[node][n];
                subset &= !mb.has[node][n] || ma.has[node][n];
                same &= ma.has[node][n] == mb.has[node][n];
            }
        s_check_matches(joined, &expect);
        for (int node = 1; node <= NODES; node++)
            for (int n = 1; n <= DOTS; n++)
                expect.has[node][n] = ma.has[node][n] && !mb.has[node][n];
        s_check_matches(diff, &expect);
        for (int node = 1; node <= NODES; node++)
            for (int n = 1; n <= DOTS; n++)
                expect.has[node][n] = ma.has[node][n] && mb.has[node][n];
        s_check_matches(meet, &expect);
        PROP_CHECK(crdt_ctx_covers(a, b) == subset);
        PROP_CHECK(crdt_ctx_equal(a, b) == same);
        /* Join laws: commutative, idempotent; diff then join restores the union. */
        crdt_ctx_t *ba = crdt_ctx_dup(b);
        PROP_CHECK(crdt_ctx_join(ba, a) == 0);
        PROP_CHECK(crdt_ctx_equal(ba, joined));
        PROP_CHECK(crdt_ctx_join(ba, a) == 0);
        PROP_CHECK(crdt_ctx_equal(ba, joined));
        crdt_ctx_t *restored = crdt_ctx_dup(b);
        PROP_CHECK(crdt_ctx_join(restored, diff) == 0);
        PROP_CHECK(crdt_ctx_equal(restored, joined));

        crdt_ctx_destroy(&restored);
        crdt_ctx_destroy(&ba);
        crdt_ctx_destroy(&meet);
        crdt_ctx_destroy(&diff);
        crdt_ctx_destroy(&joined);
        crdt_ctx_destroy(&a);
        crdt_ctx_destroy(&b);
    }
}

/*  Large ranges stay O(1): a million-dot context is one entry per node. */
static void test_ranges_stay_compact(void **state)
{
    (void)state;
    crdt_ctx_t *c = crdt_ctx_new();
    for (uint64_t node = 1; node <= 5; node++)
        for (uint64_t n = 1; n <= 200000; n++)
            assert_int_equal(crdt_ctx_insert(c, (crdt_dot_t){node, n}), 0);
    assert_int_equal(crdt_ctx_nodes(c), 5);
    assert_int_equal(crdt_ctx_cloud_ranges(c), 0);
    assert_int_equal(crdt_ctx_count(c), 1000000);
    assert_int_equal(crdt_ctx_insert_range(c, 9, 1, CRDT_DOT_MAX), 0);
    assert_int_equal(crdt_ctx_count(c), 1000000 + CRDT_DOT_MAX);
    crdt_ctx_destroy(&c);
}

/*  The text form: empty, a plain vector, a cloud counted after "+", and the widest values
 *  (largest node id, counters near CRDT_DOT_MAX, a cloud of 2^61 dots) fit exactly. */
static void test_text(void **state)
{
    (void)state;
    crdt_ctx_t *ctx = crdt_ctx_new();
    char *text = crdt_ctx_text(ctx);
    assert_string_equal(text, "");
    free(text);
    assert_int_equal(crdt_ctx_insert_range(ctx, 0x1a2, 1, 17), 0);
    assert_int_equal(crdt_ctx_insert_range(ctx, 0x3c4d, 1, 5), 0);
    assert_int_equal(crdt_ctx_insert(ctx, (crdt_dot_t){0x3c4d, 9}), 0);
    assert_int_equal(crdt_ctx_insert(ctx, (crdt_dot_t){0x3c4d, 11}), 0);
    text = crdt_ctx_text(ctx);
    assert_string_equal(text, "00000000000001a2:17 0000000000003c4d:5+2");
    free(text);
    crdt_ctx_destroy(&ctx);

    ctx = crdt_ctx_new();
    for (uint64_t node = UINT64_MAX; node > UINT64_MAX - 3; node--) {
        assert_int_equal(crdt_ctx_insert_range(ctx, node, 1, CRDT_DOT_MAX / 2 - 1), 0);
        assert_int_equal(crdt_ctx_insert_range(ctx, node, CRDT_DOT_MAX / 2 + 1, CRDT_DOT_MAX),
                         0);
    }
    text = crdt_ctx_text(ctx);
    const char *one = "ffffffffffffffff:2305843009213693951+2305843009213693952";
    assert_int_equal(strlen(text), 3 * strlen(one) + 2);
    assert_non_null(strstr(text, one));
    free(text);
    crdt_ctx_destroy(&ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_vector_and_cloud),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_operations_match_model),
        cmocka_unit_test(test_ranges_stay_compact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
