/*  Tests of node_words_distance: the canonical use (a slip is near its word), each kind of
 *  edit counting one, symmetry, and words past NODE_WORDS_MAX never near anything.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/common/words.h"

static void test_edits(void **state)
{
    (void)state;
    assert_int_equal(node_words_distance("durability", "durability"), 0);
    assert_int_equal(node_words_distance("durabilty", "durability"), 1);  /* deletion */
    assert_int_equal(node_words_distance("durabiliity", "durability"), 1); /* insertion */
    assert_int_equal(node_words_distance("durabilify", "durability"), 1); /* substitution */
    assert_int_equal(node_words_distance("clsuter", "cluster"), 1);       /* swap */
    assert_int_equal(node_words_distance("", "stats"), 5);
    assert_int_equal(node_words_distance("ab", "ba"), 1);
    assert_int_equal(node_words_distance("abc", "ca"), 3); /* OSA: no edit of a swapped pair */
    const char *words[] = {"put", "get", "gossip", "gosip", "fanout", "", "x"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        for (size_t j = 0; j < sizeof words / sizeof words[0]; j++)
            assert_int_equal(node_words_distance(words[i], words[j]),
                             node_words_distance(words[j], words[i]));
}

static void test_long_words(void **state)
{
    (void)state;
    char longest[NODE_WORDS_MAX + 2];
    memset(longest, 'a', sizeof longest - 1);
    longest[NODE_WORDS_MAX] = '\0';
    assert_int_equal(node_words_distance(longest, longest), 0);
    assert_int_equal(node_words_distance(longest, ""), NODE_WORDS_MAX);
    longest[NODE_WORDS_MAX] = 'a';
    longest[NODE_WORDS_MAX + 1] = '\0';
    assert_int_equal(node_words_distance(longest, longest), SIZE_MAX);
    assert_int_equal(node_words_distance("a", longest), SIZE_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edits),
        cmocka_unit_test(test_long_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
