/*  Tests of search_text: the tokenizer (NFKC and case folding, stemming, word separators,
 *  default-ignorables, invalid UTF-8, over-long words, languages) and the BM25 formulas
 *  against numbers computed by hand.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <utf8proc.h>

#include "engram/error.h"
#include "node/search/text.h"

/*  cmocka 1.1's float assertions compare in float: these need double. */
#define assert_near(have, want)                                                                    \
    do {                                                                                           \
        double have_ = (have), want_ = (want);                                                     \
        if (!(fabs(have_ - want_) <= 1e-12))                                                       \
            fail_msg("%s is %.17g, not %.17g", #have, have_, want_);                               \
    } while (0)

static int s_setup(void **state)
{
    search_tokenizer_t *tokenizer = NULL;
    int rc = search_tokenizer_new(SEARCH_DEFAULT_LANGUAGE, &tokenizer);
    *state = tokenizer;
    return rc;
}

static int s_teardown(void **state)
{
    search_tokenizer_t *tokenizer = *state;
    search_tokenizer_destroy(&tokenizer);
    return 0;
}

/*  Asserts that text's terms are exactly `expected`, a space-separated list ("" for none). */
static void s_terms(search_tokenizer_t *tokenizer, const char *text, const char *expected)
{
    search_terms_t terms;
    assert_int_equal(search_tokenize(tokenizer, text, strlen(text), &terms), 0);
    char joined[1024] = "";
    for (size_t i = 0; i < terms.n; i++) {
        if (i)
            strcat(joined, " ");
        strcat(joined, terms.terms[i]);
    }
    search_terms_free(&terms);
    assert_null(terms.terms);
    assert_int_equal(terms.n, 0);
    if (strcmp(joined, expected) != 0)
        fail_msg("\"%s\" gave \"%s\", expected \"%s\"", text, joined, expected);
}

static void test_normalisation(void **state)
{
    search_tokenizer_t *tokenizer = *state;
    /* The ligature, capitals and full-width letters are one word (NFKC, case folding). */
    s_terms(tokenizer, "\xef\xac\x81le FILE \xef\xbd\x86\xef\xbd\x89\xef\xbd\x8c\xef\xbd\x85",
            "file file file");
    /* Composed and decomposed "é" alike; Greek final sigma folds to sigma. */
    s_terms(tokenizer, "caf\xc3\xa9 cafe\xcc\x81", "caf\xc3\xa9 caf\xc3\xa9");
    s_terms(tokenizer,
            "\xce\xa3\xce\x9f\xce\xa6\xce\x9f\xce\xa3 \xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x82",
            "\xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x83 \xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x83");
    /* A default-ignorable (U+200B zero width space) is removed, so it joins the word. */
    s_terms(tokenizer, "pass\xe2\x80\x8bword", "password");
}

/*  ASCII text is folded without utf8proc (text.c): its terms are the ones utf8proc's NFKC and
 *  case folding give, which a trailing "é" forces, for every ASCII byte in every position. */
static void test_ascii_folds_as_unicode(void **state)
{
    search_tokenizer_t *tokenizer = *state;
    char ascii[512], mixed[520];
    size_t len = 0;
    for (int c = 1; c < 0x80; c++) {
        ascii[len++] = (char)c;
        ascii[len++] = (char)("aZ9"[c % 3]);
        if (c % 5 == 0)
            ascii[len++] = ' ';
    }
    ascii[len] = '\0';
    snprintf(mixed, sizeof mixed, "%s \xc3\xa9", ascii);
    search_terms_t fast, full;
    assert_int_equal(search_tokenize(tokenizer, ascii, len, &fast), 0);
    assert_int_equal(search_tokenize(tokenizer, mixed, strlen(mixed), &full), 0);
    assert_true(fast.n > 10);
    assert_int_equal(full.n, fast.n + 1);
    for (size_t i = 0; i < fast.n; i++)
        assert_string_equal(fast.terms[i], full.terms[i]);
    assert_string_equal(full.terms[fast.n], "\xc3\xa9");
    search_terms_free(&fast);
    search_terms_free(&full);
}

/*  ASCII word characters are decided without utf8proc (text.c): for every ASCII byte c,
 *  "qq" c "zz" is one term exactly when c's Unicode category is a letter, mark or number. */
static void test_ascii_word_chars(void **state)
{
    search_tokenizer_t *tokenizer = *state;
    for (int c = 1; c < 0x80; c++) {
        const char text[] = {'q', 'q', (char)c, 'z', 'z'};
        search_terms_t terms;
        assert_int_equal(search_tokenize(tokenizer, text, sizeof text, &terms), 0);
        utf8proc_category_t category = utf8proc_category(c);
        size_t want = category >= UTF8PROC_CATEGORY_LU && category <= UTF8PROC_CATEGORY_NO ? 1 : 2;
        if (terms.n != want)
            fail_msg("byte 0x%02x gave %zu terms, its category %d wants %zu", c, terms.n,
                     (int)category, want);
        search_terms_free(&terms);
    }
}

static void test_stemming(void **state)
{
    search_tokenizer_t *tokenizer = *state;
    s_terms(tokenizer, "requirements required Requirement", "requir requir requir");
    s_terms(tokenizer, "client needs ROI figures", "client need roi figur");
    assert_string_equal(search_tokenizer_language(tokenizer), "english");
}

static void test_separators(void **state)
{
    search_tokenizer_t *tokenizer = *state;
    /* Punctuation (connectors included), symbols and spaces separate; digits make words. */
    s_terms(tokenizer, "tea,coffee-milk_sugar  water.\tjuice/soda",
            "tea coffe milk sugar water "
            "juic soda");
    s_terms(tokenizer,
            "v2 2026 \xe2\x82\xac"
            "5 \xf0\x9f\x99\x82ok",
            "v2 2026 5 ok");
    s_terms(tokenizer, "tea tea", "tea tea"); /* repeats kept, in order */
    s_terms(tokenizer, "", "");
    s_terms(tokenizer, " ,.;!? ", "");
    /* Marks belong to their word: "naïve" with a combining diaeresis stays one word. */
    s_terms(tokenizer, "nai\xcc\x88ve", "na\xc3\xafv");
}

static void test_invalid_utf8(void **state)
{
    search_tokenizer_t *tokenizer = *state;
    const char *bad[] = {"tea \xff", "\xc3", "\xed\xa0\x80", "\xc0\xaf", "ok \xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        search_terms_t terms = {.n = 99};
        assert_int_equal(search_tokenize(tokenizer, bad[i], strlen(bad[i]), &terms), ENGRAM_EINVAL);
        assert_int_equal(terms.n, 0);
        assert_null(terms.terms);
    }
}

static void test_long_words(void **state)
{
    search_tokenizer_t *tokenizer = *state;
    char text[512], longest[SEARCH_MAX_TERM_BYTES + 1];
    memset(longest, 'x', SEARCH_MAX_TERM_BYTES);
    longest[SEARCH_MAX_TERM_BYTES] = '\0';
    /* A word of exactly SEARCH_MAX_TERM_BYTES is kept; one byte more is dropped, alone. */
    strcpy(text, "k ");
    strcat(text, longest);
    strcat(text, " b ");
    strcat(text, longest);
    strcat(text, "x c");
    char expected[512];
    strcpy(expected, "k ");
    strcat(expected, longest);
    strcat(expected, " b c");
    s_terms(tokenizer, text, expected);
    /* Far longer (a hash, base64): dropped. */
    memset(text, 'q', 300);
    strcpy(text + 300, " tail");
    s_terms(tokenizer, text, "tail");
}

static void test_language(void **state)
{
    (void)state;
    search_tokenizer_t *tokenizer = (search_tokenizer_t *)&tokenizer;
    assert_int_equal(search_tokenizer_new("klingon", &tokenizer), ENGRAM_EINVAL);
    assert_null(tokenizer);
    assert_int_equal(search_tokenizer_new("french", &tokenizer), 0);
    assert_string_equal(search_tokenizer_language(tokenizer), "french");
    s_terms(tokenizer, "continuellement", "continuel");
    search_tokenizer_destroy(&tokenizer);
    assert_null(tokenizer);
    search_tokenizer_destroy(&tokenizer); /* destroying NULL is nothing */
}

/*  English drops Lucene's 33 stop words, whatever their case; other languages keep them. */
static void test_stop_words(void **state)
{
    search_tokenizer_t *tokenizer = *state;
    s_terms(tokenizer, "The client AND the format, as it is", "client format");
    s_terms(tokenizer, "a an and are as at be but by", "");
    s_terms(tokenizer, "andes them other", "andes them other"); /* near a stop word: kept */
    search_tokenizer_t *french = NULL;
    assert_int_equal(search_tokenizer_new("french", &french), 0);
    s_terms(french, "the and", "the and");
    search_tokenizer_destroy(&french);
}

static void test_bm25(void **state)
{
    (void)state;
    /* idf = ln(1 + (N - df + 0.5) / (df + 0.5)) */
    assert_near(search_bm25_idf(10, 2), log(4.4));      /* 1 + 8.5/2.5 */
    assert_near(search_bm25_idf(1, 1), log(4.0 / 3.0)); /* 1 + 0.5/1.5 */
    assert_near(search_bm25_idf(1000, 1), log(1.0 + 999.5 / 1.5));
    assert_true(search_bm25_idf(100, 100) > 0.0); /* Lucene's idf is never negative */
    assert_true(search_bm25_idf(100, 1) > search_bm25_idf(100, 50));
    /* term = idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * dl / avgdl)) */
    assert_near(search_bm25_term(1.0, 1, 10, 10.0), 1.0);        /* 2.2 / 2.2 */
    assert_near(search_bm25_term(2.0, 3, 20, 10.0), 13.2 / 5.1); /* 3 + 1.2 * 1.75 */
    assert_near(search_bm25_term(1.5, 2, 5, 10.0), 6.6 / 2.75);  /* 2 + 1.2 * 0.625 */
    assert_near(search_bm25_term(1.0, 1, 7, 0.0), 1.0);          /* no mean: as if dl = avgdl */
    /* More occurrences score more, but saturate below idf * (k1 + 1). */
    assert_true(search_bm25_term(1.0, 2, 10, 10.0) > search_bm25_term(1.0, 1, 10, 10.0));
    assert_true(search_bm25_term(1.0, 1000000, 10, 10.0) < 2.2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalisation),    cmocka_unit_test(test_ascii_folds_as_unicode),
        cmocka_unit_test(test_ascii_word_chars), cmocka_unit_test(test_stemming),
        cmocka_unit_test(test_separators),       cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_long_words),       cmocka_unit_test(test_language),
        cmocka_unit_test(test_stop_words),       cmocka_unit_test(test_bm25),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
