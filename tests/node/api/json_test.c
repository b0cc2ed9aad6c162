/*  Tests of node_json, the agent API's metadata and UTF-8 checks (on jansson): documents of
 *  every kind pass; truncations, trailing text, ill-formed UTF-8, lone surrogate escapes,
 *  numbers past jansson's types and nesting past NODE_JSON_MAX_DEPTH fail; the length given
 *  is the text (no NUL is looked for); random bytes never crash it.
 */
#include "prop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/api/json.h"

static bool s_valid(const char *text)
{
    return node_json_valid(text, strlen(text), NULL, 0);
}

/*  What an agent attaches to a memory, and every kind of value at the top. */
static void test_valid_documents(void **state)
{
    (void)state;
    const char *valid[] = {
        "{\"topic\":\"food\",\"score\":0.93,\"tags\":[\"a\",\"b\"],\"nested\":{\"ok\":true}}",
        "{}", "[]", "0", "-0", "-1.5e+10", "1E2", "\"x\"", "true", "false", "null",
        " \t\r\n{\"a\": [1, 2, {\"b\": null}]} \n", "[[[[]]]]", "\"\\u00e9\\n\\\"\\/\"",
        "9223372036854775807", "-9223372036854775808",
        "{\"a\":1,\"a\":2}",  /* duplicate keys: RFC 8259 allows them */
        "\"\\u0000\"",        /* an escaped NUL is a character like any other */
        "\"\\ud83d\\ude00\"", /* a surrogate pair: U+1F600 */
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        if (!s_valid(valid[i]))
            fail_msg("refused valid JSON: %s", valid[i]);
}

static void test_invalid_documents(void **state)
{
    (void)state;
    const char *invalid[] = {
        "", " ", "not json", "{", "}", "[1,]", "{\"a\"}", "{\"a\":}", "{a:1}", "01", "1.", "-",
        ".5", "+1", "\"unterminated", "\"bad \\x escape\"", "[1 2]", "tru", "nul", "\"\\u12\"",
        "{\"a\":1,}", "\"tab\tinside\"", "'single'", "NaN", "Infinity", "[1]]",
        /* trailing text after the one value */
        "{} {}", "[1] x", "1 2", "null,", "\"a\"\"b\"", "{}\f",
        /* a byte order mark is not whitespace */
        "\xef\xbb\xbf{}",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        if (s_valid(invalid[i]))
            fail_msg("accepted invalid JSON: %s", invalid[i]);
}

static void test_strings_must_be_utf8(void **state)
{
    (void)state;
    const char *invalid[] = {
        "\"\xff\"", "\"\xc3\x28\"", "\"\xc0\xaf\"" /* overlong '/' */,
        "\"\xed\xa0\x80\"" /* an encoded surrogate */, "\"\xf4\x90\x80\x80\"" /* > U+10FFFF */,
        "\"\xe2\x82\"" /* truncated */, "{\"\xff\":1}" /* in a key */,
        "\"\\ud800\"" /* lone high surrogate escape */, "\"\\udc00\"" /* lone low */,
        "\"\\ude00\\ud83d\"" /* a pair in the wrong order */, "\"\\ud83dx\"",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        if (s_valid(invalid[i]))
            fail_msg("accepted ill-formed text: %s", invalid[i]);
}

/*  Integers past int64 are JSON (read as doubles); a number past the double range is refused
 *  (json.h's known limit), with a reason that says so. */
static void test_numbers_past_jansson_types(void **state)
{
    (void)state;
    assert_true(s_valid("9223372036854775808"));
    assert_true(s_valid("[123456789012345678901234567890]"));
    assert_true(s_valid("1e300"));
    char why[160] = "";
    assert_false(node_json_valid("[1e400]", 7, why, sizeof why));
    assert_non_null(strstr(why, "at byte"));
    assert_false(node_json_valid("[1,]", 4, why, sizeof why));
    assert_non_null(strstr(why, "at byte"));
}

/*  n arrays, or objects {"k": ...}, nested around a 0: depth n. Caller frees. */
static char *s_nested(int n, bool objects)
{
    const char *open = objects ? "{\"k\":" : "[", *close = objects ? "}" : "]";
    size_t len = (size_t)n * (strlen(open) + strlen(close)) + 1;
    char *text = malloc(len + 1);
    assert_non_null(text);
    char *at = text;
    for (int i = 0; i < n; i++)
        at = stpcpy(at, open);
    at = stpcpy(at, "0");
    for (int i = 0; i < n; i++)
        at = stpcpy(at, close);
    return text;
}

static void test_depth_is_bounded(void **state)
{
    (void)state;
    for (int objects = 0; objects <= 1; objects++) {
        char *at_limit = s_nested(NODE_JSON_MAX_DEPTH, objects);
        char *past = s_nested(NODE_JSON_MAX_DEPTH + 1, objects);
        assert_true(s_valid(at_limit));
        assert_false(s_valid(past));
        free(at_limit);
        free(past);
    }
    /*  Mixed: the limit counts arrays and objects alike. */
    char *arrays = s_nested(NODE_JSON_MAX_DEPTH, false);
    char *mixed = malloc(strlen(arrays) + 8);
    assert_non_null(mixed);
    sprintf(mixed, "{\"k\":%s}", arrays);
    assert_false(s_valid(mixed));
    free(mixed);
    free(arrays);
    /*  A bomb far past jansson's own parser limit is refused without exhausting the stack. */
    size_t bomb_len = 1000000;
    char *bomb = malloc(bomb_len);
    assert_non_null(bomb);
    memset(bomb, '[', bomb_len);
    assert_false(node_json_valid(bomb, bomb_len, NULL, 0));
    free(bomb);
}

/*  The text is text[0..len): what lies past len is not read, a NUL inside is not an end. */
static void test_length_is_the_text(void **state)
{
    (void)state;
    assert_true(node_json_valid("[1]garbage", 3, NULL, 0));
    assert_false(node_json_valid("[1]", 2, NULL, 0));
    assert_false(node_json_valid("[1]\0", 4, NULL, 0));
    assert_false(node_json_valid("\"a\0b\"", 5, NULL, 0)); /* a raw NUL is a control character */
}

static void test_random_bytes_never_crash(void **state)
{
    (void)state;
    const char alphabet[] = "{}[]\",:0123456789.eE+-truefalsn \\u\xc3\xa9\xff";
    int cases = prop_cases(20000);
    int valid = 0;
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("json_random", c);
        char text[32];
        size_t len = prop_below(&rng, sizeof text);
        for (size_t i = 0; i < len; i++)
            text[i] = alphabet[prop_below(&rng, sizeof alphabet - 1)];
        valid += node_json_valid(text, len, NULL, 0);
        node_json_utf8_valid(text, len);
    }
    /* Not a tautology: some random strings are JSON, most are not. */
    assert_true(valid > 0 && valid < cases);
}

static void test_utf8(void **state)
{
    (void)state;
    const char *valid[] = {"", "ascii", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                           "\xf4\x8f\xbf\xbf" /* U+10FFFF */, "\xed\x9f\xbf" /* U+D7FF */};
    const char *invalid[] = {"\xff", "\xc3\x28", "\xc0\xaf" /* overlong */,
                             "\xe0\x80\xaf" /* overlong, 3 bytes */,
                             "\xed\xa0\x80" /* surrogate */, "\xf4\x90\x80\x80" /* > U+10FFFF */,
                             "\xe2\x82" /* truncated */, "a\x80" /* a lone continuation */};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        if (!node_json_utf8_valid(valid[i], strlen(valid[i])))
            fail_msg("refused UTF-8 case %zu", i);
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        if (node_json_utf8_valid(invalid[i], strlen(invalid[i])))
            fail_msg("accepted ill-formed UTF-8 case %zu", i);
    assert_true(node_json_utf8_valid("a\0b", 3));      /* U+0000 is UTF-8 */
    assert_true(node_json_utf8_valid("\xc3\xa9\xff", 2)); /* only len bytes are read */
    assert_false(node_json_utf8_valid("\xc3\xa9", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_documents),
        cmocka_unit_test(test_invalid_documents),
        cmocka_unit_test(test_strings_must_be_utf8),
        cmocka_unit_test(test_numbers_past_jansson_types),
        cmocka_unit_test(test_depth_is_bounded),
        cmocka_unit_test(test_length_is_the_text),
        cmocka_unit_test(test_random_bytes_never_crash),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
