/*  Tests of crdt_array_grow: the canonical use (an owner's pointer, count and capacity),
 *  capacity that only doubles, items kept across growth, no change when room exists, and a
 *  size past SIZE_MAX refused with the array unchanged.
 */
#include "world.h"

#include <stdint.h>
#include <stdlib.h>

#include "crdt/array.h"
#include "engram/error.h"

static void test_append_many(void **state)
{
    (void)state;
    uint64_t *items = NULL;
    size_t n = 0, cap = 0, grown = 0;
    for (uint64_t i = 0; i < 10000; i++) {
        size_t before = cap;
        assert_int_equal(crdt_array_grow((void **)&items, &cap, n + 1, sizeof *items), 0);
        assert_true(cap >= n + 1);
        if (cap != before) {
            assert_true(before == 0 || cap == 2 * before);
            grown++;
        }
        items[n++] = i * i;
    }
    assert_true(grown <= 14); /* 4 doubled to 16384: growth is logarithmic */
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(items[i], i * i);
    uint64_t *same = items;
    size_t cap_before = cap;
    assert_int_equal(crdt_array_grow((void **)&items, &cap, cap, sizeof *items), 0);
    assert_ptr_equal(items, same);
    assert_int_equal(cap, cap_before);
    assert_int_equal(crdt_array_grow((void **)&items, &cap, 3 * cap_before, sizeof *items), 0);
    assert_true(cap >= 3 * cap_before);
    assert_int_equal(items[9999], UINT64_C(9999) * 9999);
    free(items);
}

static void test_overflow_refused(void **state)
{
    (void)state;
    uint64_t *items = malloc(sizeof *items);
    assert_non_null(items);
    uint64_t *was = items;
    size_t cap = 1;
    /* the count doubled past SIZE_MAX, and a count whose bytes would not fit */
    assert_int_equal(crdt_array_grow((void **)&items, &cap, SIZE_MAX, sizeof *items),
                     ENGRAM_ENOMEM);
    assert_int_equal(crdt_array_grow((void **)&items, &cap, SIZE_MAX / 4, sizeof *items),
                     ENGRAM_ENOMEM);
    assert_ptr_equal(items, was);
    assert_int_equal(cap, 1);
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_append_many),
                                       cmocka_unit_test(test_overflow_refused)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
