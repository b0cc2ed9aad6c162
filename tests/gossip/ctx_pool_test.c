/*  Tests of gossip_ctx_pool against a model: random holds and releases of contexts drawn from
 *  a small space (so that equal ones meet often and the table's runs wrap and shift), checking
 *  after every step that equal contexts share one pointer, that the pool counts exactly the
 *  distinct contexts still held, and that every held one is still found (a removal that broke
 *  a probe run would hand out a second copy). ASan checks that the last release frees.
 */
#include "prop.h"

#include <stdlib.h>

#include "crdt/ctx.h"
#include "gossip/ctx_pool.h"

#define SPACE 64  /* distinct contexts the tests draw from */
#define STEPS 600 /* holds and releases per case */

/*  Context number k of the space: up to three nodes' bases, and a cloud dot for odd k. */
static crdt_ctx_t *s_ctx(int k)
{
    crdt_ctx_t *ctx = crdt_ctx_new();
    assert_non_null(ctx);
    for (uint64_t node = 1; node <= 3; node++) {
        uint64_t base = (uint64_t)(k >> (2 * (node - 1))) & 3;
        if (base)
            assert_int_equal(crdt_ctx_insert_range(ctx, node, 1, base), 0);
    }
    if (k & 1)
        assert_int_equal(crdt_ctx_insert(ctx, (crdt_dot_t){.node = 9, .n = 5}), 0);
    return ctx;
}

/*  Holds a fresh copy of context k. */
static const crdt_ctx_t *s_hold(gossip_ctx_pool_t *pool, int k)
{
    crdt_ctx_t *ctx = s_ctx(k);
    const crdt_ctx_t *held = gossip_ctx_pool_hold(pool, ctx);
    assert_non_null(held);
    PROP_CHECK(held != ctx && crdt_ctx_equal(held, ctx));
    crdt_ctx_destroy(&ctx);
    return held;
}

static void test_model(void **state)
{
    (void)state;
    for (int c = 0; c < prop_cases(40); c++) {
        prop_rng_t rng = prop_case("model", c);
        gossip_ctx_pool_t *pool = gossip_ctx_pool_new(prop_next(&rng));
        assert_non_null(pool);
        const crdt_ctx_t *shared[SPACE] = {0}; /* the pointer of each held context */
        size_t holds[SPACE] = {0};
        int held_keys[STEPS], nheld = 0; /* one entry per hold */
        for (int step = 0; step < STEPS; step++) {
            if (nheld == 0 || prop_chance(&rng, 55)) {
                int k = (int)prop_below(&rng, SPACE);
                const crdt_ctx_t *got = s_hold(pool, k);
                PROP_CHECK(holds[k] == 0 || got == shared[k]);
                shared[k] = got;
                holds[k]++;
                held_keys[nheld++] = k;
            } else {
                int at = (int)prop_below(&rng, (uint64_t)nheld);
                int k = held_keys[at];
                held_keys[at] = held_keys[--nheld];
                const crdt_ctx_t *ptr = shared[k];
                gossip_ctx_pool_release(pool, &ptr);
                PROP_CHECK(ptr == NULL);
                holds[k]--;
            }
            size_t distinct = 0;
            for (int k = 0; k < SPACE; k++) {
                distinct += holds[k] > 0;
                if (!holds[k])
                    continue;
                const crdt_ctx_t *again = s_hold(pool, k); /* still found */
                PROP_CHECK(again == shared[k]);
                gossip_ctx_pool_release(pool, &again);
            }
            PROP_CHECK(gossip_ctx_pool_size(pool) == distinct);
        }
        /* what is still held is freed by destroy */
        gossip_ctx_pool_destroy(&pool);
        assert_null(pool);
    }
}

static void test_release_null_and_empty_context(void **state)
{
    (void)state;
    gossip_ctx_pool_t *pool = gossip_ctx_pool_new(7);
    const crdt_ctx_t *none = NULL;
    gossip_ctx_pool_release(pool, &none); /* nothing */
    crdt_ctx_t *empty = crdt_ctx_new();
    const crdt_ctx_t *a = gossip_ctx_pool_hold(pool, empty);
    const crdt_ctx_t *b = gossip_ctx_pool_hold(pool, empty);
    assert_non_null(a);
    assert_ptr_equal(a, b);
    assert_true(crdt_ctx_is_empty(a));
    assert_int_equal(gossip_ctx_pool_size(pool), 1);
    gossip_ctx_pool_release(pool, &a);
    assert_int_equal(gossip_ctx_pool_size(pool), 1);
    gossip_ctx_pool_release(pool, &b);
    assert_int_equal(gossip_ctx_pool_size(pool), 0);
    crdt_ctx_destroy(&empty);
    gossip_ctx_pool_destroy(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_release_null_and_empty_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
