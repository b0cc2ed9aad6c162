/*  Tests of node_names: what a name or scope id may hold. ASCII names are judged by a fast path
 *  (names.c); each case here is decided on one side of it or the other, and the two agree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "node/common/names.h"

static bool s_ok(const char *name)
{
    return node_name_ok(name, strlen(name), NULL);
}

static void test_ascii(void **state)
{
    (void)state;
    assert_true(s_ok("researcher-1"));
    assert_true(s_ok("a.b_c:d/e@f~!#$%&*+=?^|{}[]()<>,;'\"`\\"));
    assert_false(s_ok(""));
    assert_false(s_ok("two words"));
    assert_false(s_ok("tab\there"));
    assert_false(s_ok("bell\x07"));
    assert_false(s_ok("del\x7f"));
    /* every ASCII byte alone: accepted exactly when printable and not the space */
    for (int c = 1; c < 0x80; c++) {
        char name[2] = {(char)c, '\0'};
        assert_int_equal(s_ok(name), c > ' ' && c < 0x7f);
    }
}

static void test_unicode(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_true(s_ok("caf\xc3\xa9"));
    assert_false(node_name_ok("cafe\xcc\x81", 6, &why)); /* decomposed: not NFC */
    assert_string_equal(why, "is not in Unicode normalisation form C");
    assert_false(node_name_ok("admin\xe2\x80\xae", 8, &why)); /* U+202E */
    assert_string_equal(why, "holds an invisible or formatting character");
    assert_false(node_name_ok("a\xc2\xa0"
                              "b",
                              4, &why)); /* U+00A0 */
    assert_string_equal(why, "holds a space or line separator");
    assert_false(node_name_ok("a\xff", 2, &why));
    assert_string_equal(why, "is not valid UTF-8");
    /* an ASCII prefix does not let the rest through */
    assert_false(s_ok("plain-ascii-then\xe2\x80\x8b"));
}

static void test_scopes(void **state)
{
    (void)state;
    assert_true(node_scope_name_ok("user:alice", 10, NULL));
    assert_false(node_scope_name_ok("user:", 5, NULL));
    assert_false(node_scope_name_ok("user:a b", 8, NULL));
    assert_false(node_scope_name_ok("blob:alice", 10, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii),
        cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_scopes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
