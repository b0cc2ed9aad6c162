/*  Tests of what an error reply shows of a request (reply.c): api__quote escapes what is not
 *  visible and cuts at a character boundary within API_QUOTE_BYTES; api__fail never ends a
 *  message inside a character; and, for many random byte strings quoted into a message, the
 *  encoded Reply decodes and its message is well-formed UTF-8 without control characters
 *  (checked by a strict decoder of this file's own, not the node's).
 */
#include "prop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/error.h"
#include "node/api/internal.h"

/*  Strict UTF-8 (RFC 3629): no overlong form, no surrogate, nothing past U+10FFFF, no NUL;
 *  with no_controls, no C0, DEL or C1 control either. */
static bool s_strict_utf8(const char *text, size_t len, bool no_controls)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        unsigned c = s[i], n, cp;
        if (c < 0x80)
            n = 0, cp = c;
        else if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07;
        else
            return false;
        if (i + n >= len + (n ? 0 : 1) && n)
            return false;
        for (unsigned k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp == 0)
            return false;
        if (no_controls && (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)))
            return false;
        i += n + 1;
    }
    return true;
}

static void test_quote_escapes_what_is_not_visible(void **state)
{
    (void)state;
    api_reply_t r;
    api__reply_init(&r);
    assert_string_equal(api__quote(&r, "plain key"), "plain key");
    assert_string_equal(api__quote(&r, "caf\xc3\xa9"), "caf\xc3\xa9");
    assert_string_equal(api__quote(&r, "a\xe2\x80\xae"
                                       "b"),
                        "a\\u202Eb"); /* RTL override */
    assert_string_equal(api__quote(&r, "a\xe2\x80\x8b"
                                       "b"),
                        "a\\u200Bb"); /* zero width */
    assert_string_equal(api__quote(&r, "a\xc2\xa0"
                                       "b"),
                        "a\\u00A0b"); /* no-break space */
    assert_string_equal(api__quote(&r, "a\nb\x1b[31m"), "a\\u000Ab\\u001B[31m");
    assert_string_equal(api__quote(&r, "back\\slash"), "back\\\\slash");
    assert_string_equal(api__quote(&r, "bad\xff"
                                       "byte"),
                        "bad\\xFFbyte");
    assert_string_equal(api__quote(&r, "\xf3\xa0\x80\x81"), "\\U000E0001"); /* a tag character */
    assert_string_equal(api__quote(&r, NULL), "");
    api__arena_free(&r.arena);
}

static void test_quote_cuts_at_a_character(void **state)
{
    (void)state;
    api_reply_t r;
    api__reply_init(&r);
    char text[400] = "";
    for (int i = 0; i < 100; i++)
        strcat(text, "\xe2\x82\xac"); /* 300 bytes of euro signs */
    const char *q = api__quote(&r, text);
    size_t len = strlen(q);
    assert_true(len <= API_QUOTE_BYTES);
    assert_true(len > API_QUOTE_BYTES - 6);
    assert_string_equal(q + len - 3, "...");
    assert_true(s_strict_utf8(q, len, true));
    assert_int_equal((len - 3) % 3, 0); /* whole euro signs only */
    /* exactly the limit: shown whole */
    memset(text, 'k', API_QUOTE_BYTES);
    text[API_QUOTE_BYTES] = '\0';
    assert_string_equal(api__quote(&r, text), text);
    text[API_QUOTE_BYTES] = 'k';
    text[API_QUOTE_BYTES + 1] = '\0';
    q = api__quote(&r, text);
    assert_int_equal(strlen(q), API_QUOTE_BYTES);
    assert_string_equal(q + API_QUOTE_BYTES - 3, "...");
    api__arena_free(&r.arena);
}

static void test_fail_cuts_a_long_message_at_a_character(void **state)
{
    (void)state;
    api_reply_t r;
    api__reply_init(&r);
    char text[600] = "";
    for (int i = 0; i < 150; i++)
        strcat(text, "\xe2\x82\xac");
    for (size_t shift = 0; shift < 3; shift++) {
        assert_int_equal(api__fail(&r, ENGRAM_EINVAL, "%.*s%s", (int)shift, "xx", text),
                         ENGRAM_EINVAL);
        size_t len = strlen(r.message);
        assert_true(len < sizeof r.message);
        assert_string_equal(r.message + len - 3, "...");
        assert_true(s_strict_utf8(r.message, len, true));
    }
    /* a caller that printed raw bytes: they never reach the wire as they are */
    api__fail(&r, ENGRAM_EINVAL, "raw %s", "\xc3(\xff");
    assert_true(s_strict_utf8(r.message, strlen(r.message), false));
    api__arena_free(&r.arena);
}

/*  A random string: raw bytes, random code points of every plane, controls and the
 *  invisible characters names are refused for. */
static size_t s_random_text(prop_rng_t *rng, char *out, size_t cap)
{
    static const char *const marks[] = {"\xe2\x80\xae", "\xe2\x80\x8b", "\xc2\xa0", "\x1b",
                                        "\n",           "\\",           "'",        "\xef\xbb\xbf"};
    size_t n = 0, want = (size_t)prop_below(rng, cap - 8);
    while (n < want) {
        switch (prop_below(rng, 4)) {
        case 0:
            out[n++] = (char)(1 + prop_below(rng, 255));
            break;
        case 1: {
            const char *m = marks[prop_below(rng, sizeof marks / sizeof marks[0])];
            memcpy(out + n, m, strlen(m));
            n += strlen(m);
            break;
        }
        default: { /* a code point, encoded (surrogates and all) */
            uint32_t cp = (uint32_t)(1 + prop_below(rng, 0x10ffff));
            if (cp < 0x80)
                out[n++] = (char)cp;
            else if (cp < 0x800)
                out[n++] = (char)(0xc0 | cp >> 6), out[n++] = (char)(0x80 | (cp & 0x3f));
            else if (cp < 0x10000)
                out[n++] = (char)(0xe0 | cp >> 12), out[n++] = (char)(0x80 | (cp >> 6 & 0x3f)),
                out[n++] = (char)(0x80 | (cp & 0x3f));
            else
                out[n++] = (char)(0xf0 | cp >> 18), out[n++] = (char)(0x80 | (cp >> 12 & 0x3f)),
                out[n++] = (char)(0x80 | (cp >> 6 & 0x3f)), out[n++] = (char)(0x80 | (cp & 0x3f));
        }
        }
    }
    out[n] = '\0';
    return n;
}

static void test_random_inputs_make_decodable_replies(void **state)
{
    (void)state;
    int cases = prop_cases(10000);
    for (int i = 0; i < cases; i++) {
        prop_rng_t rng = prop_case("reply message", i);
        char key[600], elem[80];
        s_random_text(&rng, key, sizeof key);
        s_random_text(&rng, elem, sizeof elem);
        api_reply_t r;
        api__reply_init(&r);
        int code = api__fail(&r, ENGRAM_ENOTFOUND, "'%s' in '%s': %s", api__quote(&r, elem),
                             api__quote(&r, key), engram_strerror(ENGRAM_ENOTFOUND));
        r.msg.code = code;
        r.msg.message = r.message;
        size_t size = engram__reply__get_packed_size(&r.msg);
        uint8_t *buf = malloc(size);
        assert_non_null(buf);
        engram__reply__pack(&r.msg, buf);
        Engram__Reply *back = engram__reply__unpack(NULL, size, buf);
        PROP_CHECK(back != NULL);
        PROP_CHECK(s_strict_utf8(back->message, strlen(back->message), true));
        PROP_CHECK(strlen(back->message) <= 2 * API_QUOTE_BYTES + 64);
        engram__reply__free_unpacked(back, NULL);
        free(buf);
        api__arena_free(&r.arena);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quote_escapes_what_is_not_visible),
        cmocka_unit_test(test_quote_cuts_at_a_character),
        cmocka_unit_test(test_fail_cuts_a_long_message_at_a_character),
        cmocka_unit_test(test_random_inputs_make_decodable_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
