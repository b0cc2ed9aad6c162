/*  Tests of node_grow: an empty array gets its first size, a full one doubles and keeps its
 *  items, one with room is left as it is, and a size past SIZE_MAX is refused with the array
 *  unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "engram/error.h"
#include "node/common/grow.h"

typedef struct {
    uint64_t a, b;
} s_pair_t;

static void test_grows_by_doubling(void **state)
{
    (void)state;
    s_pair_t *items = NULL;
    size_t n = 0, cap = 0;
    for (uint64_t i = 0; i < 100; i++) {
        size_t before = cap;
        assert_int_equal(NODE_GROW(items, cap, n, 4), 0);
        if (n < before)
            assert_int_equal(cap, before); /* room left: unchanged */
        else
            assert_int_equal(cap, before ? 2 * before : 4);
        items[n++] = (s_pair_t){i, ~i};
    }
    assert_int_equal(cap, 128);
    for (uint64_t i = 0; i < 100; i++) { /* every item kept through the moves */
        assert_int_equal(items[i].a, i);
        assert_int_equal(items[i].b, ~i);
    }
    free(items);
}

static void test_overflow_refused(void **state)
{
    (void)state;
    s_pair_t *items = malloc(sizeof *items);
    assert_non_null(items);
    s_pair_t *was = items;
    size_t cap = SIZE_MAX / sizeof *items / 2 + 1; /* doubled, it overflows the byte count */
    assert_int_equal(NODE_GROW(items, cap, cap, 4), ENGRAM_ENOMEM);
    assert_ptr_equal(items, was);
    assert_int_equal(cap, SIZE_MAX / sizeof *items / 2 + 1);
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grows_by_doubling),
        cmocka_unit_test(test_overflow_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
