/*  Tests of crdt_hash: its values are pinned (digests and chunk checks cross the network and
 *  versions, so the function must never change; the values below are those of the kernel's
 *  hash before it became public), and it depends on every input bit, on the length and on the
 *  seed.
 */
#include "world.h"

#include <stdlib.h>
#include <string.h>

#include "crdt/hash.h"

static void test_pinned_values(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t seed;
        uint64_t hash;
    } pinned[] = {
        {"", UINT64_C(0x0), UINT64_C(0x61616bd1878fca01)},
        {"", UINT64_C(0x1), UINT64_C(0xfdb4e7ed8d3808fe)},
        {"a", UINT64_C(0x0), UINT64_C(0xd461db308979fe2e)},
        {"a", UINT64_C(0x9e3779b97f4a7c15), UINT64_C(0x88ae265c2e22d20d)},
        {"engram", UINT64_C(0x1), UINT64_C(0x9a5e0228acba2cb3)},
        {"the quick brown fox jumps over the lazy dog", UINT64_C(0x0),
         UINT64_C(0x553c65616969e454)},
        {"the quick brown fox jumps over the lazy dog", UINT64_C(0x9e3779b97f4a7c15),
         UINT64_C(0xd6971b836c335c2f)},
    };
    for (size_t i = 0; i < sizeof pinned / sizeof pinned[0]; i++)
        assert_int_equal(crdt_hash(pinned[i].text, strlen(pinned[i].text), pinned[i].seed),
                         pinned[i].hash);
}

/*  Every single-bit change of a 67-byte input (whole 8-byte blocks and a tail) changes the
 *  hash, as do the seed and a trailing zero byte; all prefixes hash apart. */
static void test_depends_on_every_bit(void **state)
{
    (void)state;
    uint8_t data[68] = {0};
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 37 + 11);
    const size_t len = 67;
    uint64_t base = crdt_hash(data, len, 42);
    assert_int_equal(crdt_hash(data, len, 42), base);
    assert_int_not_equal(crdt_hash(data, len, 43), base);
    for (size_t bit = 0; bit < len * 8; bit++) {
        data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(crdt_hash(data, len, 42), base);
        data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    data[len] = 0;
    assert_int_not_equal(crdt_hash(data, len + 1, 42), base);
    uint64_t prefixes[68];
    for (size_t n = 0; n <= len; n++) {
        prefixes[n] = crdt_hash(data, n, 42);
        for (size_t m = 0; m < n; m++)
            assert_int_not_equal(prefixes[m], prefixes[n]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pinned_values),
        cmocka_unit_test(test_depends_on_every_bit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
