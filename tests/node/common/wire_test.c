/*  Tests of node_wire_check_strings on hand-built wire bytes: the canonical use (a Request that
 *  protobuf-c unpacks with a key cut at its NUL is refused, naming the field), each way a
 *  string can be bad (NUL, overlong, surrogate, past U+10FFFF, truncated sequence), strings in
 *  nested and repeated messages, what is not a string (bytes, unknown fields) left alone, and
 *  bytes that are not a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engram/error.h"
#include "node/common/wire.h"
#include "proto/api.pb-c.h"

/*  Appends field number `field` as a length-delimited value (wire type 2) to buf at *len. */
static void s_put_bytes(uint8_t *buf, size_t *len, unsigned field, const void *data, size_t n)
{
    assert_true(n < 128 && field < 16);
    buf[(*len)++] = (uint8_t)(field << 3 | 2);
    buf[(*len)++] = (uint8_t)n;
    memcpy(buf + *len, data, n);
    *len += n;
}

static int s_check_request_key(const char *key, size_t n, const char **field)
{
    uint8_t buf[256];
    size_t len = 0;
    s_put_bytes(buf, &len, 7, "run:x", 5); /* scope */
    s_put_bytes(buf, &len, 8, key, n);     /* key */
    return node_wire_check_strings(&engram__request__descriptor, buf, len, field);
}

static void test_embedded_nul_is_refused(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t len = 0;
    s_put_bytes(buf, &len, 8, "k\0hidden", 8);
    /* what protobuf-c makes of it: "k" */
    Engram__Request *req = engram__request__unpack(NULL, len, buf);
    assert_non_null(req);
    assert_string_equal(req->key, "k");
    engram__request__free_unpacked(req, NULL);

    const char *field = "unset";
    assert_int_equal(node_wire_check_strings(&engram__request__descriptor, buf, len, &field),
                     ENGRAM_EINVAL);
    assert_string_equal(field, "key");
}

static void test_valid_text_passes(void **state)
{
    (void)state;
    const char *field = "unset";
    const char *text = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"; /* é, €, an emoji */
    assert_int_equal(s_check_request_key(text, strlen(text), &field), 0);
    assert_null(field);
    assert_int_equal(s_check_request_key("", 0, &field), 0);
    assert_int_equal(node_wire_check_strings(&engram__request__descriptor, NULL, 0, &field), 0);
}

static void test_malformed_utf8_is_refused(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t n;
    } bad[] = {
        {"\xc0\xaf", 2},         /* overlong '/' */
        {"\xe0\x80\xaf", 3},     /* overlong, three bytes */
        {"\xf0\x80\x80\xaf", 4}, /* overlong, four bytes */
        {"\xed\xa0\x80", 3},     /* a UTF-16 surrogate */
        {"\xf4\x90\x80\x80", 4}, /* past U+10FFFF */
        {"a\xe2\x82", 3},        /* truncated sequence at the end */
        {"\xe2\x82"
         "a",
         3},         /* truncated sequence in the middle */
        {"\x80", 1}, /* a lone continuation byte */
        {"\xff", 1},
        {"\xc0\x80", 2}, /* the overlong NUL of "modified UTF-8" */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *field = NULL;
        assert_int_equal(s_check_request_key(bad[i].bytes, bad[i].n, &field), ENGRAM_EINVAL);
        assert_string_equal(field, "key");
    }
}

/*  A Reply's items are messages; each holds strings and repeated strings. */
static void test_nested_and_repeated_strings(void **state)
{
    (void)state;
    uint8_t item1[64], item2[64], reply[160];
    size_t n1 = 0, n2 = 0, n = 0;
    s_put_bytes(item1, &n1, 1, "k1", 2);     /* Item.key */
    s_put_bytes(item1, &n1, 7, "agent", 5);  /* Item.agents */
    s_put_bytes(item2, &n2, 1, "k2", 2);     /* Item.key */
    s_put_bytes(item2, &n2, 7, "a", 1);      /* Item.agents[0] */
    s_put_bytes(item2, &n2, 7, "a\0b", 3);   /* Item.agents[1]: bad */
    s_put_bytes(item2, &n2, 3, "\0\xff", 2); /* Item.value is bytes: anything goes */
    s_put_bytes(reply, &n, 5, "fine", 4);    /* Reply.message */
    s_put_bytes(reply, &n, 7, item1, n1);    /* Reply.items[0] */
    const char *field = "unset";
    assert_int_equal(node_wire_check_strings(&engram__reply__descriptor, reply, n, &field), 0);
    s_put_bytes(reply, &n, 7, item2, n2); /* Reply.items[1] */
    assert_int_equal(node_wire_check_strings(&engram__reply__descriptor, reply, n, &field),
                     ENGRAM_EINVAL);
    assert_string_equal(field, "agents");

    /* Token -> ScopeVersion.scope, two levels down */
    uint8_t version[32], token[48];
    size_t nv = 0, nt = 0;
    s_put_bytes(version, &nv, 1, "run:\xe2\x80", 6);
    s_put_bytes(token, &nt, 3, version, nv);
    assert_int_equal(node_wire_check_strings(&engram__token__descriptor, token, nt, &field),
                     ENGRAM_EINVAL);
    assert_string_equal(field, "scope");
}

static void test_other_fields_are_skipped(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t len = 0;
    buf[len++] = 1 << 3 | 0; /* Request.id, a varint */
    buf[len++] = 0x96;
    buf[len++] = 0x01;
    s_put_bytes(buf, &len, 10, "\0\xc0", 2); /* Request.value: bytes */
    s_put_bytes(buf, &len, 15, "\0\xc0", 2); /* field 15 (timeout_ms) sent as bytes: unknown form */
    buf[len++] = 14 << 3 | 1;                /* an unknown fixed64 under a known number */
    memset(buf + len, 0, 8);
    len += 8;
    buf[len++] = (uint8_t)(99 << 3 | 5) | 0x80; /* field 99, fixed32: a two-byte key */
    buf[len++] = (99 << 3 | 5) >> 7;
    memset(buf + len, 0xff, 4);
    len += 4;
    const char *field = "unset";
    assert_int_equal(node_wire_check_strings(&engram__request__descriptor, buf, len, &field), 0);
}

static void test_bytes_that_are_no_message(void **state)
{
    (void)state;
    const char *field;
    uint8_t truncated[] = {8 << 3 | 2, 5, 'a', 'b'}; /* says 5 bytes, holds 2 */
    assert_int_equal(
        node_wire_check_strings(&engram__request__descriptor, truncated, sizeof truncated, &field),
        ENGRAM_EDECODE);
    uint8_t group[] = {8 << 3 | 3};
    assert_int_equal(
        node_wire_check_strings(&engram__request__descriptor, group, sizeof group, &field),
        ENGRAM_EDECODE);
    uint8_t varint[] = {1 << 3, 0x80, 0x80};
    assert_int_equal(
        node_wire_check_strings(&engram__request__descriptor, varint, sizeof varint, &field),
        ENGRAM_EDECODE);
    uint8_t zero_field[] = {0, 0};
    assert_int_equal(node_wire_check_strings(&engram__request__descriptor, zero_field,
                                             sizeof zero_field, &field),
                     ENGRAM_EDECODE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedded_nul_is_refused),
        cmocka_unit_test(test_valid_text_passes),
        cmocka_unit_test(test_malformed_utf8_is_refused),
        cmocka_unit_test(test_nested_and_repeated_strings),
        cmocka_unit_test(test_other_fields_are_skipped),
        cmocka_unit_test(test_bytes_that_are_no_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
