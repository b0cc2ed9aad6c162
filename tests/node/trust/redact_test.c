/*  Tests of node_redact: the canonical use (a redactor from a policy's patterns, one call per
 *  write, the caller frees the output), each built-in's catches and misses, user regular
 *  expressions, several patterns at once (earliest wins, then longest, then first listed), NUL
 *  bytes, empty input and empty matches, refused patterns and their reasons, the output bound,
 *  and inputs that would cost the square of their size without the search's bounds (these fail
 *  by the test's timeout). Key-shaped strings are split in two literals so that secret scanners
 *  reading this source do not take them for leaked keys; all are fakes or published examples.
 */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/error.h"
#include "node/trust/redact.h"

#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/*  Redacts in[0..in_len) with patterns and checks the output and the number of replacements. */
static void s_expect_n(const char *const *patterns, size_t npatterns, const char *in, size_t in_len,
                       const char *want, size_t want_len, size_t want_matches)
{
    node_redactor_t *r = NULL;
    char why[256];
    assert_int_equal(node_redactor_new(patterns, npatterns, &r, why, sizeof why), 0);
    uint8_t *out = NULL;
    size_t out_len = 0, matches = 0;
    assert_int_equal(node_redact(r, (const uint8_t *)in, in_len, &out, &out_len, &matches), 0);
    if (out_len != want_len || memcmp(out, want, want_len) != 0)
        print_message("in   \"%.*s\"\ngot  \"%.*s\"\nwant \"%.*s\"\n", (int)in_len, in,
                      (int)out_len, (const char *)out, (int)want_len, want);
    assert_non_null(out);
    assert_int_equal(out_len, want_len);
    if (want_len > 0)
        assert_memory_equal(out, want, want_len);
    assert_int_equal(matches, want_matches);
    free(out);
    node_redactor_destroy(&r);
    assert_null(r);
}

static void s_expect(const char *pattern, const char *in, const char *want, size_t matches)
{
    s_expect_n(&pattern, 1, in, strlen(in), want, strlen(want), matches);
}

static void s_keep(const char *pattern, const char *in)
{
    s_expect(pattern, in, in, 0);
}

/*  The reason node_redactor_new gives for refusing patterns; fails if they are taken. */
static const char *s_refused(const char *const *patterns, size_t n)
{
    static char why[512];
    node_redactor_t *r = NULL;
    memset(why, 0, sizeof why);
    assert_int_equal(node_redactor_new(patterns, n, &r, why, sizeof why), ENGRAM_EINVAL);
    assert_null(r);
    assert_true(why[0] != '\0');
    return why;
}

static void test_canonical(void **state)
{
    (void)state;
    /* What a redact policy with these patterns does to a write, at its origin. */
    const char *patterns[] = {"@email", "@secret"};
    node_redactor_t *r = NULL;
    char why[256];
    assert_int_equal(node_redactor_new(patterns, 2, &r, why, sizeof why), 0);
    const char *in = "Ask bob@example.com; OPENAI_API_KEY=sk-"
                     "proj-Ab3dEf9hIjKlMnOpQrStUv in .env";
    const char *want = "Ask [redacted:email]; OPENAI_API_KEY=[redacted:secret] in .env";
    uint8_t *out = NULL;
    size_t out_len = 0, matches = 0;
    assert_int_equal(node_redact(r, (const uint8_t *)in, strlen(in), &out, &out_len, &matches), 0);
    assert_int_equal(out_len, strlen(want));
    assert_memory_equal(out, want, out_len);
    assert_int_equal(matches, 2);
    free(out);
    node_redactor_destroy(&r);
    assert_null(r);
    node_redactor_destroy(&r); /* idempotent */
}

static void test_email(void **state)
{
    (void)state;
    s_expect("@email", "write to alice.smith+tag@mail.example.co.uk.", "write to [redacted:email].",
             1);
    s_expect("@email", "a@b.io, C_D%x@sub-domain.example.com", "[redacted:email], [redacted:email]",
             2);
    s_expect("@email", "<bob@example.org>", "<[redacted:email]>", 1);
    s_expect("@email", "bob@example.com-", "[redacted:email]-", 1);
    s_expect("@email", "Mail:BOB@EXAMPLE.COM!", "Mail:[redacted:email]!", 1);
    s_keep("@email", "user@localhost");
    s_keep("@email", "@handle mentions");
    s_keep("@email", "a@b and x@y.c");
    s_keep("@email", "foo@bar.c0m");
    s_keep("@email", "mail@ or a@b..com");
    s_keep("@email", "name @ example.com");
}

static void test_phone(void **state)
{
    (void)state;
    s_expect("@phone", "+44 20 7946 0958", "[redacted:phone]", 1);
    s_expect("@phone", "call (555) 123-4567 now", "call [redacted:phone] now", 1);
    s_expect("@phone", "555-123-4567", "[redacted:phone]", 1);
    s_expect("@phone", "555.123.4567", "[redacted:phone]", 1);
    s_expect("@phone", "555 123 4567", "[redacted:phone]", 1);
    s_expect("@phone", "(555)123-4567", "[redacted:phone]", 1);
    /* One match from the '+' or the "1", not a North American number inside it. */
    s_expect("@phone", "+1 555 123 4567", "[redacted:phone]", 1);
    s_expect("@phone", "+1-555-123-4567", "[redacted:phone]", 1);
    s_expect("@phone", "+1 (555) 123-4567", "[redacted:phone]", 1);
    s_expect("@phone", "dial 1-555-123-4567.", "dial [redacted:phone].", 1);
    s_expect("@phone", "+442079460958", "[redacted:phone]", 1);
    s_expect("@phone", "+44 (0)20 7946 0958", "[redacted:phone]", 1);
    s_expect("@phone", "Tel: +33 1 23 45 67 89.", "Tel: [redacted:phone].", 1);
    s_expect("@phone", "555-123-4567, 555-765-4321", "[redacted:phone], [redacted:phone]", 2);
    s_keep("@phone", "released 2024-01-15, at 2024-01-15T10:30:00Z");
    s_keep("@phone", "12345 and 911");
    s_keep("@phone", "555-1234");
    s_keep("@phone", "5551234567");
    s_keep("@phone", "123-45-6789");
    s_keep("@phone", "555-123-4567-89");
    s_keep("@phone", "ip 192.168.100.200");
    s_keep("@phone", "v1.555.123.4567");
    s_keep("@phone", "x555-123-4567");
    s_keep("@phone", "555-123-45678");
    s_keep("@phone", "+12345");
    s_keep("@phone", "+1234567890123456");
    s_keep("@phone", "a+44 20 7946 0958");
}

static void test_card(void **state)
{
    (void)state;
    /* The networks' published test numbers. */
    const char *cards[] = {
        "4111111111111111",    "4111 1111 1111 1111", "4111-1111-1111-1111", /* Visa */
        "4012888888881881",    "4222222222222",                              /* Visa, 13 */
        "5555 5555 5555 4444", "5105105105105100",    "2223003122003222",    /* Mastercard */
        "3782 822463 10005",   "378282246310005",     "3714-496353-98431",   /* Amex */
        "6011111111111117",    "3056 930902 5904",                           /* Discover, Diners */
    };
    for (size_t i = 0; i < S_COUNT(cards); i++)
        s_expect("@card", cards[i], "[redacted:card]", 1);
    s_expect("@card", "card: 4111 1111 1111 1111, exp 12/25", "card: [redacted:card], exp 12/25",
             1);
    s_expect("@card", "4111 1111 1111 1111 5555 5555 5555 4444", "[redacted:card] [redacted:card]",
             2);
    s_expect("@card", "(4111111111111111)", "([redacted:card])", 1);
    s_keep("@card", "order 1234 5678 9012 3456"); /* fails the Luhn check */
    s_keep("@card", "4111111111111112");
    s_keep("@card", "4111 1111 1111 1112");
    s_keep("@card", "0000 0000 0000");       /* Luhn-valid, 12 digits */
    s_keep("@card", "00000000000000000000"); /* Luhn-valid, 20 digits */
    s_keep("@card", "x4111111111111111");    /* inside a word */
    s_keep("@card", "4111111111111111x");
    s_keep("@card", "pi is 3.4111111111111111"); /* a decimal */
    s_keep("@card", "41 1111 1111 1111 11");     /* not a printed layout */
    s_keep("@card", "4111  1111  1111  1111");   /* two spaces */
}

static void test_secret(void **state)
{
    (void)state;
    const char *jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
                      "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    char in[512];
    snprintf(in, sizeof in, "Authorization: Bearer %s", jwt);
    s_expect("@secret", in, "Authorization: Bearer [redacted:secret]", 1);
    snprintf(in, sizeof in, "token %s.", jwt);
    s_expect("@secret", in, "token [redacted:secret].", 1);
    s_expect("@secret", "curl -H 'Authorization: Bearer abcDEF0123456789xyz' https://x",
             "curl -H 'Authorization: Bearer [redacted:secret]' https://x", 1);
    s_expect("@secret", "header bearer\tabcDEF0123456789xyz==;",
             "header bearer\t[redacted:secret];", 1);
    s_expect("@secret",
             "Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic [redacted:secret]",
             1);
    s_expect("@secret",
             "key sk-"
             "ant-api03-AbCdEf0123456789AbCdEf0123456789 here",
             "key [redacted:secret] here", 1);
    s_expect("@secret",
             "sk_"
             "live_4eC39HqLyjWDarjtT1zdp7dc",
             "[redacted:secret]", 1);
    s_expect("@secret",
             "ghp"
             "_1234567890abcdefghijklmnopqrstuvwxyz!",
             "[redacted:secret]!", 1);
    s_expect("@secret",
             "github"
             "_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
             "[redacted:secret]", 1);
    s_expect("@secret", "id AKIAIOSFODNN7EXAMPLE, ASIAIOSFODNN7EXAMPLE",
             "id [redacted:secret], [redacted:secret]", 2);
    s_expect("@secret",
             "xox"
             "b-1234567890-abcdefghij",
             "[redacted:secret]", 1);
    s_expect("@secret",
             "glpat"
             "-AbCdEfGhIjKlMnOpQrSt",
             "[redacted:secret]", 1);
    s_expect("@secret",
             "AI"
             "zaSyA1234567890abcdefghijklmnopqrstuv",
             "[redacted:secret]", 1);
    s_expect("@secret", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
             "aws_secret_access_key = [redacted:secret]", 1);
    s_expect("@secret", "{\"api_key\": \"abcd1234efgh5678\", \"user\": \"bob\"}",
             "{\"api_key\": \"[redacted:secret]\", \"user\": \"bob\"}", 1);
    s_expect("@secret", "https://x/?password=hunter2hunter2&user=bob",
             "https://x/?password=[redacted:secret]&user=bob", 1);
    s_expect("@secret", "GITHUB_TOKEN: 0123456789abcdef\nnext",
             "GITHUB_TOKEN: [redacted:secret]\nnext", 1);
    s_expect("@secret", "db.Password := 'correct horse battery'",
             "db.Password := '[redacted:secret]'", 1);
    s_expect("@secret",
             "x\n-----BEGIN RSA "
             "PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n"
             "-----END RSA PRIVATE KEY-----\ny",
             "x\n[redacted:secret]\ny", 1);
    s_expect("@secret",
             "-----BEGIN OPENSSH "
             "PRIVATE KEY-----\nb3BlbnNzaC1rZXk",
             "[redacted:secret]", 1);
    s_keep("@secret", "the bearer of bad news, Bearer short");
    s_keep("@secret", "pip install sk-learn-tutorial-for-beginners-2024");
    s_keep("@secret", "task-manager ask-AbCdEf0123456789AbCdEf");
    s_keep("@secret", "AKIAIOSFODNN7EXAMPL AKIAIOSFODNN7EXAMPLE1 xAKIAIOSFODNN7EXAMPLE");
    s_keep("@secret", "max_tokens=4096, prompt_tokens: 1234567890, token_count: 123456789");
    s_keep("@secret", "password: none, secret: the meeting");
    s_keep("@secret", "ghp_short and https://example.com/path");
    s_keep("@secret", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
    s_keep("@secret", "eyJhbGciOiJIUzI1NiJ9 alone");
}

static void test_user_pattern(void **state)
{
    (void)state;
    s_expect("ACME-[0-9]{4}", "tickets ACME-1234 and ACME-99",
             "tickets [redacted:pattern] and ACME-99", 1);
    /* REG_NEWLINE: '.' stops at the end of the line, ^ matches after a newline. */
    s_expect("password:.*", "password: hunter2\nnext line", "[redacted:pattern]\nnext line", 1);
    s_expect("^internal", "internal x\nnot internal\ninternal y",
             "[redacted:pattern] x\nnot internal\n[redacted:pattern] y", 2);
    /* '@' followed by a bracket is a regular expression, not a built-in's name. */
    s_expect("@[a-z]+", "ping @alice", "ping [redacted:pattern]", 1);
    /* Non-overlapping, left to right. */
    s_expect("aa", "aaaaa", "[redacted:pattern][redacted:pattern]a", 2);
    s_expect("\\bcat\\b", "cat concat cat", "[redacted:pattern] concat [redacted:pattern]", 2);
}

static void test_several_patterns(void **state)
{
    (void)state;
    const char *longest[] = {"abc", "abcde"};
    s_expect_n(longest, 2, "xabcdey", 7, "x[redacted:pattern]y", 20, 1);
    const char *earliest[] = {"cdef", "bcd"};
    s_expect_n(earliest, 2, "abcdefg", 7, "a[redacted:pattern]efg", 22, 1);
    const char *kinds[] = {"@email", "example"};
    const char *in = "bob@example.com and example";
    const char *want = "[redacted:email] and [redacted:pattern]";
    s_expect_n(kinds, 2, in, strlen(in), want, strlen(want), 2);
    /* The same span: the pattern listed first names it. */
    const char *email_first[] = {"@email", "[a-z]+@[a-z]+[.]com"};
    s_expect_n(email_first, 2, "bob@example.com", 15, "[redacted:email]", 16, 1);
    const char *regex_first[] = {"[a-z]+@[a-z]+[.]com", "@email"};
    s_expect_n(regex_first, 2, "bob@example.com", 15, "[redacted:pattern]", 18, 1);
    const char *all[] = {"@email", "@phone", "@card", "@secret"};
    in = "Call +1 555 123 4567 or mail jo@ex.com, card 4111 1111 1111 1111, token=abcdefgh12345678";
    want = "Call [redacted:phone] or mail [redacted:email], card [redacted:card], "
           "token=[redacted:secret]";
    s_expect_n(all, 4, in, strlen(in), want, strlen(want), 4);
    /* A match that ends inside an address: the rest of it is still one. */
    const char *inside[] = {"<jo", "@email"};
    s_expect_n(inside, 2, "<john@x.com>", 12, "[redacted:pattern][redacted:email]>", 35, 2);
    /* A match that ends between a key and its value: the value is still found. */
    const char *keyword[] = {"AAAAAAAA token=", "@secret"};
    in = "token=AAAAAAAA token=BBBBBBBB";
    want = "token=[redacted:pattern][redacted:secret]";
    s_expect_n(keyword, 2, in, strlen(in), want, strlen(want), 2);
}

static void test_nul_bytes(void **state)
{
    (void)state;
    const char *builtins[] = {"@email", "@phone"};
    const char in[] = "bob@example.com\0+44 20 7946 0958\0tail";
    const char want[] = "[redacted:email]\0[redacted:phone]\0tail";
    s_expect_n(builtins, 2, in, sizeof in - 1, want, sizeof want - 1, 2);
    /* NUL is an ordinary byte to a regular expression, which '.' does not match. */
    const char *bracket = "k[^ ]*v";
    s_expect_n(&bracket, 1, "k\0v w", 5, "[redacted:pattern] w", 20, 1);
    const char *dot = "k.v";
    s_expect_n(&dot, 1, "k\0v", 3, "k\0v", 3, 0);
    const char *word = "secret";
    s_expect_n(&word, 1, "\0\0secret\0", 9, "\0\0[redacted:pattern]\0", 21, 1);
}

static void test_empty(void **state)
{
    (void)state;
    const char *patterns[] = {"@email", "x*"};
    node_redactor_t *r = NULL;
    assert_int_equal(node_redactor_new(patterns, 2, &r, NULL, 0), 0);
    uint8_t *out = NULL;
    size_t out_len = 7, matches = 7;
    assert_int_equal(node_redact(r, NULL, 0, &out, &out_len, &matches), 0);
    assert_non_null(out);
    assert_int_equal(out_len, 0);
    assert_int_equal(matches, 0);
    free(out);
    node_redactor_destroy(&r);
    /* No pattern: a copy. */
    assert_int_equal(node_redactor_new(NULL, 0, &r, NULL, 0), 0);
    s_expect_n(NULL, 0, "bob@example.com", 15, "bob@example.com", 15, 0);
    assert_int_equal(node_redact(r, (const uint8_t *)"bob@example.com", 15, &out, &out_len, NULL),
                     0);
    assert_int_equal(out_len, 15);
    assert_memory_equal(out, "bob@example.com", 15);
    free(out);
    node_redactor_destroy(&r);
}

static void test_empty_matches(void **state)
{
    (void)state;
    s_expect("x*", "abxxc", "ab[redacted:pattern]c", 1);
    s_keep("x*", "abc");
    s_keep("$", "abc");
    s_keep("^", "a\nb");
    s_expect("b?", "abba", "a[redacted:pattern][redacted:pattern]a", 2);
}

static void test_refused(void **state)
{
    (void)state;
    const char *bad[] = {"[a-"};
    const char *why = s_refused(bad, 1);
    regex_t re;
    char message[128];
    int rc = regcomp(&re, "[a-", REG_EXTENDED | REG_NEWLINE);
    assert_int_not_equal(rc, 0);
    regerror(rc, &re, message, sizeof message);
    assert_non_null(strstr(why, message));
    assert_non_null(strstr(why, "in pattern 1 (\"[a-\")"));
    const char *second[] = {"@email", "(unclosed"};
    assert_non_null(strstr(s_refused(second, 2), "pattern 2"));
    const char *typo[] = {"@emial"};
    assert_non_null(strstr(s_refused(typo, 1), "did you mean \"@email\""));
    const char *unknown[] = {"@nothing"};
    assert_non_null(strstr(s_refused(unknown, 1), "unknown built-in \"@nothing\""));
    const char *empty[] = {"@card", ""};
    assert_non_null(strstr(s_refused(empty, 2), "pattern 2 is empty"));
    const char *backref[] = {"(a)\\1"};
    assert_non_null(strstr(s_refused(backref, 1), "back-references"));

    char reason[256] = "stale";
    assert_true(node_redact_pattern_ok("@card", reason, sizeof reason));
    assert_string_equal(reason, "");
    assert_true(node_redact_pattern_ok("[0-9]+", NULL, 0));
    assert_true(node_redact_pattern_ok("[\\1]", NULL, 0)); /* a backslash in a bracket */
    assert_true(node_redact_pattern_ok("\\\\1", NULL, 0)); /* a backslash, then 1 */
    assert_true(node_redact_pattern_ok("[[:digit:]\\1]", NULL, 0));
    assert_false(node_redact_pattern_ok("a(b", reason, sizeof reason));
    assert_non_null(strstr(reason, "pattern 1"));
    assert_false(node_redact_pattern_ok("@secrets", NULL, 0));
    assert_false(node_redact_pattern_ok("x(y)\\1", NULL, 0));
}

static void test_no_match(void **state)
{
    (void)state;
    const char *all[] = {"@email", "@phone", "@card", "@secret", "zzz"};
    uint8_t in[256];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(255 - i);
    node_redactor_t *r = NULL;
    assert_int_equal(node_redactor_new(all, S_COUNT(all), &r, NULL, 0), 0);
    uint8_t *out = NULL;
    size_t out_len = 0, matches = 7;
    assert_int_equal(node_redact(r, in, sizeof in, &out, &out_len, &matches), 0);
    assert_ptr_not_equal(out, in);
    assert_int_equal(out_len, sizeof in);
    assert_memory_equal(out, in, sizeof in);
    assert_int_equal(matches, 0);
    free(out);
    node_redactor_destroy(&r);
}

static void test_count(void **state)
{
    (void)state;
    s_expect("@email", "a@b.io b@c.io c@d.io d@e.io e@f.io",
             "[redacted:email] [redacted:email] [redacted:email] [redacted:email] "
             "[redacted:email]",
             5);
}

/*  A redactor of "a" over n bytes of 'b' with k 'a's spread out, the first at 0. */
static int s_redact_spread(size_t n, size_t k, uint8_t **out, size_t *out_len, size_t *matches)
{
    const char *a = "a";
    node_redactor_t *r = NULL;
    assert_int_equal(node_redactor_new(&a, 1, &r, NULL, 0), 0);
    uint8_t *in = malloc(n);
    assert_non_null(in);
    memset(in, 'b', n);
    for (size_t i = 0; i < k; i++)
        in[i * (n / k)] = 'a';
    int rc = node_redact(r, in, n, out, out_len, matches);
    free(in);
    node_redactor_destroy(&r);
    return rc;
}

static void test_output_bound(void **state)
{
    (void)state;
    /* A longer input is refused, even where the output would be short. */
    const char *letters = "[a-z]+";
    node_redactor_t *r = NULL;
    assert_int_equal(node_redactor_new(&letters, 1, &r, NULL, 0), 0);
    size_t n = NODE_REDACT_MAX_BYTES + 1;
    uint8_t *in = malloc(n);
    assert_non_null(in);
    memset(in, 'a', n);
    uint8_t *out = in;
    size_t out_len = 7, matches = 7;
    assert_int_equal(node_redact(r, in, n, &out, &out_len, &matches), ENGRAM_ETOOBIG);
    assert_null(out);
    assert_int_equal(out_len, 0);
    assert_int_equal(matches, 0);
    /* One byte shorter, it is taken: matches are cut at NODE_REDACT_MAX_MATCH bytes. */
    assert_int_equal(node_redact(r, in, n - 1, &out, &out_len, &matches), 0);
    assert_int_equal(matches, (n - 1 + NODE_REDACT_MAX_MATCH - 1) / NODE_REDACT_MAX_MATCH);
    assert_int_equal(out_len, 18 * matches);
    free(out);
    node_redactor_destroy(&r);
    /* 18 bytes for each byte: past the bound long before the end of the input. */
    const char *a = "a";
    assert_int_equal(node_redactor_new(&a, 1, &r, NULL, 0), 0);
    assert_int_equal(node_redact(r, in, NODE_REDACT_MAX_BYTES / 2, &out, &out_len, &matches),
                     ENGRAM_ETOOBIG);
    assert_null(out);
    free(in);
    node_redactor_destroy(&r);

    /* k matches each add 17 bytes: an output of exactly the bound is made, one more byte is
       refused. */
    size_t k = 1000, len = NODE_REDACT_MAX_BYTES - 17 * k;
    assert_int_equal(s_redact_spread(len, k, &out, &out_len, &matches), 0);
    assert_int_equal(out_len, NODE_REDACT_MAX_BYTES);
    assert_int_equal(matches, k);
    assert_memory_equal(out, "[redacted:pattern]b", 19);
    free(out);
    assert_int_equal(s_redact_spread(len + 1, k, &out, &out_len, &matches), ENGRAM_ETOOBIG);
    assert_null(out);
}

static void test_long_matches(void **state)
{
    (void)state;
    /* A match longer than a window is extended from its start, up to NODE_REDACT_MAX_MATCH. */
    const char *pw = "pw=[^ ]*";
    size_t n = 3 + 3000 + 4;
    char *in = malloc(NODE_REDACT_MAX_MATCH * 2);
    assert_non_null(in);
    memcpy(in, "pw=", 3);
    memset(in + 3, 'x', 3000);
    memcpy(in + 3003, " end", 4);
    s_expect_n(&pw, 1, in, n, "[redacted:pattern] end", 22, 1);
    /* Past it, the match is cut and the rest, no longer a match, stays. */
    size_t long_value = NODE_REDACT_MAX_MATCH + 900;
    memset(in + 3, 'x', long_value);
    memcpy(in + 3 + long_value, " end", 4);
    char *want = malloc(NODE_REDACT_MAX_MATCH * 2);
    assert_non_null(want);
    size_t kept = 3 + long_value - NODE_REDACT_MAX_MATCH;
    memcpy(want, "[redacted:pattern]", 18);
    memset(want + 18, 'x', kept);
    memcpy(want + 18 + kept, " end", 4);
    s_expect_n(&pw, 1, in, 3 + long_value + 4, want, 18 + kept + 4, 1);
    free(want);

    /* A match that fits in a span is found where it starts, even across a window's end: "k"
       at 1.5 spans, its "q" past 2 spans, a lone "z" before that, in the first window. */
    const char *kq = "k[a-z]*q|z";
    size_t k = NODE_REDACT_SPAN + NODE_REDACT_SPAN / 2, q = 2 * NODE_REDACT_SPAN + 30;
    memset(in, '.', q + 2);
    memset(in + k, 'a', q - k);
    in[k] = 'k';
    in[2 * NODE_REDACT_SPAN - 6] = 'z';
    in[q] = 'q';
    want = malloc(k + 18 + 1);
    assert_non_null(want);
    memset(want, '.', k);
    memcpy(want + k, "[redacted:pattern].", 19);
    s_expect_n(&kq, 1, in, q + 2, want, k + 19, 1);
    free(want);
    free(in);
}

static void test_quadratic_inputs(void **state)
{
    (void)state;
    /* Searched from every start to the end, "[a-z]+@corp" over these letters costs hours: in
       windows, seconds. Only the letters within two spans of the '@' are found. */
    const char *corp = "[a-z]+@corp";
    node_redactor_t *r = NULL;
    assert_int_equal(node_redactor_new(&corp, 1, &r, NULL, 0), 0);
    size_t n = NODE_REDACT_MAX_BYTES;
    uint8_t *in = malloc(n);
    assert_non_null(in);
    memset(in, 'a', n - 5);
    memcpy(in + n - 5, "@corp", 5);
    uint8_t *out = NULL;
    size_t out_len = 0, matches = 0;
    assert_int_equal(node_redact(r, in, n, &out, &out_len, &matches), 0);
    assert_int_equal(matches, 1);
    size_t kept = out_len - 18;
    assert_true(kept >= n - 2 * NODE_REDACT_SPAN && kept < n - NODE_REDACT_SPAN);
    assert_memory_equal(out + kept, "[redacted:pattern]", 18);
    assert_true(out[0] == 'a' && out[kept - 1] == 'a');
    free(out);
    node_redactor_destroy(&r);

    /* Each built-in over a repetition that keeps restarting a candidate: linear, so these end
       well inside the timeout. */
    const struct {
        const char *pattern;
        const char *unit;
        size_t matches;
    } cases[] = {
        {"@email", "a@", 0},           {"@email", "a@b.", 0},    {"@phone", "+1 ", 0},
        {"@phone", "555 ", 0},         {"@card", "1111 ", 0},    {"@secret", "-sk-", 0},
        {"@secret", "-sk-Ab1", 1},     {"@secret", "eyJ-", 0},   {"@secret", "bearer ", 0},
        {"@secret", "-----BEGIN ", 0}, {"@secret", "token=", 1}, {"@secret", "\"token\": ", 0},
    };
    for (size_t c = 0; c < S_COUNT(cases); c++) {
        size_t u = strlen(cases[c].unit), m = n / u * u;
        for (size_t i = 0; i < m; i += u)
            memcpy(in + i, cases[c].unit, u);
        assert_int_equal(node_redactor_new(&cases[c].pattern, 1, &r, NULL, 0), 0);
        assert_int_equal(node_redact(r, in, m, &out, &out_len, &matches), 0);
        if (matches != cases[c].matches)
            print_message("%s over \"%s\"...: %zu matches\n", cases[c].pattern, cases[c].unit,
                          matches);
        assert_int_equal(matches, cases[c].matches);
        free(out);
        node_redactor_destroy(&r);
    }
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_card),
        cmocka_unit_test(test_secret),
        cmocka_unit_test(test_user_pattern),
        cmocka_unit_test(test_several_patterns),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_empty_matches),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_no_match),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_output_bound),
        cmocka_unit_test(test_long_matches),
        cmocka_unit_test(test_quadratic_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
