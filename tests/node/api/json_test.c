/*  Tests of node_json, the metadata syntax check: valid documents of every kind pass;
 *  truncations, junk and excessive nesting fail; random bytes never crash it.
 */
#include "prop.h"

#include <string.h>

#include "node/api/json.h"

static bool s_valid(const char *text)
{
    return node_json_valid(text, strlen(text));
}

static void test_valid_documents(void **state)
{
    (void)state;
    const char *valid[] = {
        "{}", "[]", "0", "-1.5e+10", "\"x\"", "true", "false", "null", " {\"a\": [1, 2, {\"b\": null}]} ",
        "{\"topic\":\"food\",\"score\":0.93,\"tags\":[\"a\",\"b\"],\"nested\":{\"ok\":true}}",
        "\"\\u00e9\\n\\\"\"", "[[[[]]]]",
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        assert_true(s_valid(valid[i]));
}

static void test_invalid_documents(void **state)
{
    (void)state;
    const char *invalid[] = {
        "", "not json", "{", "}", "[1,]", "{\"a\"}", "{\"a\":}", "{a:1}", "01", "1.", "-",
        "\"unterminated", "\"bad \\x escape\"", "[1 2]", "{} {}", "tru", "nul", "\"\\u12\"",
        "{\"a\":1,}", "\"tab\tinside\"",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        assert_false(s_valid(invalid[i]));
}

static void test_depth_is_bounded(void **state)
{
    (void)state;
    char deep[2 * (NODE_JSON_MAX_DEPTH + 1) + 1];
    memset(deep, '[', NODE_JSON_MAX_DEPTH + 1);
    memset(deep + NODE_JSON_MAX_DEPTH + 1, ']', NODE_JSON_MAX_DEPTH + 1);
    deep[sizeof deep - 1] = '\0';
    assert_false(s_valid(deep));
    assert_true(node_json_valid(deep + 1, sizeof deep - 3)); /* exactly the limit */
}

static void test_random_bytes_never_crash(void **state)
{
    (void)state;
    const char alphabet[] = "{}[]\",:0123456789.eE+-truefalsn \\u";
    int cases = prop_cases(20000);
    int valid = 0;
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("json_random", c);
        char text[32];
        size_t len = prop_below(&rng, sizeof text);
        for (size_t i = 0; i < len; i++)
            text[i] = alphabet[prop_below(&rng, sizeof alphabet - 1)];
        valid += node_json_valid(text, len);
    }
    /* Not a tautology: some random strings are JSON, most are not. */
    assert_true(valid > 0 && valid < cases);
}

static void test_utf8(void **state)
{
    (void)state;
    const char *valid[] = {"", "ascii", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    const char *invalid[] = {"\xff", "\xc3\x28", "\xc0\xaf" /* overlong */,
                             "\xed\xa0\x80" /* surrogate */, "\xf4\x90\x80\x80" /* > U+10FFFF */,
                             "\xe2\x82" /* truncated */};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        assert_true(node_json_utf8_valid(valid[i], strlen(valid[i])));
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        assert_false(node_json_utf8_valid(invalid[i], strlen(invalid[i])));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_documents),
        cmocka_unit_test(test_invalid_documents),
        cmocka_unit_test(test_depth_is_bounded),
        cmocka_unit_test(test_random_bytes_never_crash),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
