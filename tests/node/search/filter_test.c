/*  Tests of search_filter: every operator on built-in and metadata fields, AND/OR/NOT and the
 *  implicit AND, `*`, "metadata": {...} nesting, times given as ms and as ISO 8601, values of
 *  another kind never matching, metadata that is not an object having no fields, and every
 *  refusal with its exact reason (which names the member's path and quotes no value).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/error.h"
#include "node/search/filter.h"

#define JAN_1_2026  UINT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define JUL_1_2026  UINT64_C(1782907200000) /* 2026-07-01T12:00:00Z */
#define FEB_29_2024 UINT64_C(1709164800000) /* 2024-02-29T00:00:00Z */

/*  Two memories: a researcher's with rich metadata, a writer's with none and no user. */
static const search_record_t s_research = {
    .author = "researcher",
    .user = "alice",
    .key = "client/format",
    .created_at_ms = JAN_1_2026,
    .updated_at_ms = JAN_1_2026 + 250,
    .meta_json = "{\"topic\": \"Slide Decks\", \"tags\": [\"Tea\", \"urgent\", 3], "
                 "\"priority\": 2, \"score\": 1.5, \"done\": false, \"note\": null, "
                 "\"city\": \"Straße\", \"author\": \"bob\", \"nested\": {\"a\": 1}}",
};
static const search_record_t s_writing = {
    .author = "writer",
    .key = "draft",
    .created_at_ms = JUL_1_2026,
    .updated_at_ms = JUL_1_2026,
};

/*  Whether filter (which must parse) matches record. */
static bool s_matches(const char *filter, const search_record_t *record)
{
    search_filter_t *parsed = NULL;
    char why[256] = "";
    int rc = search_filter_parse(filter, strlen(filter), &parsed, why, sizeof why);
    if (rc != 0)
        fail_msg("%s: %s", filter, why);
    bool match = search_filter_match(parsed, record);
    search_filter_destroy(&parsed);
    assert_null(parsed);
    return match;
}

/*  Filter matches the researcher's memory and not the writer's. */
static void s_research_only(const char *filter)
{
    if (!s_matches(filter, &s_research) || s_matches(filter, &s_writing))
        fail_msg("%s should match the research memory only", filter);
}

static void s_neither(const char *filter)
{
    if (s_matches(filter, &s_research) || s_matches(filter, &s_writing))
        fail_msg("%s should match nothing", filter);
}

static void s_both(const char *filter)
{
    if (!s_matches(filter, &s_research) || !s_matches(filter, &s_writing))
        fail_msg("%s should match both", filter);
}

/*  Filter text[0..len) is refused with exactly reason. */
static void s_refused_n(const char *text, size_t len, const char *reason)
{
    search_filter_t *parsed = (search_filter_t *)&parsed; /* must become NULL */
    char why[256] = "";
    assert_int_equal(search_filter_parse(text, len, &parsed, why, sizeof why), ENGRAM_EINVAL);
    assert_null(parsed);
    if (strcmp(why, reason) != 0)
        fail_msg("%.80s: got \"%s\", expected \"%s\"", text, why, reason);
}

static void s_refused(const char *text, const char *reason)
{
    s_refused_n(text, strlen(text), reason);
}

static void test_empty(void **state)
{
    (void)state;
    const char *empties[] = {"{}", " {\n} "};
    for (size_t i = 0; i < 2; i++) {
        search_filter_t *parsed = NULL;
        assert_int_equal(search_filter_parse(empties[i], strlen(empties[i]), &parsed, NULL, 0), 0);
        assert_true(search_filter_is_empty(parsed));
        assert_true(search_filter_match(parsed, &s_research));
        assert_true(search_filter_match(parsed, &s_writing));
        search_filter_destroy(&parsed);
    }
    search_filter_t *parsed = NULL;
    assert_int_equal(search_filter_parse("{\"user\": \"*\"}", 13, &parsed, NULL, 0), 0);
    assert_false(search_filter_is_empty(parsed));
    search_filter_destroy(&parsed);
    search_filter_destroy(&parsed); /* destroying NULL is nothing */
}

static void test_eq_ne(void **state)
{
    (void)state;
    s_research_only("{\"author\": \"researcher\"}");
    s_research_only("{\"author\": {\"eq\": \"researcher\"}}");
    s_research_only("{\"user\": \"alice\"}");
    s_research_only("{\"key\": \"client/format\"}");
    s_neither("{\"author\": \"research\"}"); /* equal, not a prefix */
    s_research_only("{\"priority\": 2}");
    s_research_only("{\"priority\": 2.0}"); /* 1 and 1.0 are equal */
    s_research_only("{\"score\": {\"eq\": 1.5}}");
    s_research_only("{\"done\": false}");
    s_research_only("{\"note\": null}");
    s_neither("{\"priority\": \"2\"}"); /* a string is not a number */
    s_neither("{\"done\": 0}");         /* nor a boolean */
    s_neither("{\"absent\": null}");    /* a missing field equals nothing */
    s_neither("{\"user\": null}");      /* the writer has no user */
    s_neither("{\"tags\": \"Tea\"}");   /* an array is not its item */
    s_neither("{\"nested\": 1}");
    s_neither("{\"author\": 5}"); /* another kind: false, not an error */
    /* ne is not eq; a missing field is not equal to anything. */
    s_research_only("{\"author\": {\"ne\": \"writer\"}}");
    s_both("{\"priority\": {\"ne\": 3}}");
    s_both("{\"absent\": {\"ne\": 1}}");
}

static void test_user_ne_missing(void **state)
{
    (void)state;
    /* The writer has no user, and a missing field is not equal to "bob" either. */
    s_both("{\"user\": {\"ne\": \"bob\"}}");
    s_research_only("{\"user\": {\"nin\": [\"bob\"], \"eq\": \"alice\"}}");
}

static void test_in_nin(void **state)
{
    (void)state;
    s_research_only("{\"author\": {\"in\": [\"editor\", \"researcher\"]}}");
    s_both("{\"author\": {\"in\": [\"writer\", \"researcher\"]}}");
    s_neither("{\"author\": {\"in\": []}}");
    s_research_only("{\"priority\": {\"in\": [1, 2.0, \"x\"]}}");
    s_neither("{\"priority\": {\"in\": [\"2\"]}}");
    s_research_only("{\"author\": {\"nin\": [\"writer\"]}}");
    s_both("{\"author\": {\"nin\": []}}");
    s_both("{\"absent\": {\"nin\": [1]}}"); /* missing: in none of them */
    s_neither("{\"absent\": {\"in\": [null]}}");
}

static void test_order(void **state)
{
    (void)state;
    s_research_only("{\"priority\": {\"gt\": 1}}");
    s_neither("{\"priority\": {\"gt\": 2}}");
    s_research_only("{\"priority\": {\"gte\": 2}}");
    s_research_only("{\"priority\": {\"lt\": 2.5}}");
    s_neither("{\"priority\": {\"lt\": 2}}");
    s_research_only("{\"priority\": {\"lte\": 2}}");
    s_research_only("{\"priority\": {\"gt\": 1, \"lt\": 3}}"); /* every operator holds */
    s_neither("{\"priority\": {\"gt\": 1, \"lt\": 2}}");
    s_neither("{\"priority\": {\"gt\": \"1\"}}"); /* a number with a string: false */
    s_neither("{\"topic\": {\"gt\": 1}}");
    s_neither("{\"absent\": {\"lt\": 1}}");
    /* Strings by bytes: "S" (0x53) < "s" (0x73); a prefix comes first. */
    s_research_only("{\"topic\": {\"gt\": \"Slide\"}}");
    s_research_only("{\"topic\": {\"lt\": \"slide\"}}");
    s_research_only("{\"topic\": {\"gte\": \"Slide Decks\", \"lte\": \"Slide Decks\"}}");
    s_research_only("{\"author\": {\"lt\": \"s\"}}"); /* "researcher" < "s" < "writer" */
    s_both("{\"author\": {\"gte\": \"r\"}}");
    s_research_only("{\"city\": {\"gt\": \"Strasse\"}}"); /* "ß" is 0xC3 0x9F > "s" */
}

static void test_contains(void **state)
{
    (void)state;
    s_research_only("{\"topic\": {\"contains\": \"Deck\"}}");
    s_neither("{\"topic\": {\"contains\": \"deck\"}}"); /* case matters */
    s_research_only("{\"topic\": {\"contains\": \"\"}}");
    s_research_only("{\"author\": {\"contains\": \"search\"}}");
    s_research_only("{\"key\": {\"contains\": \"/\"}}");
    s_research_only("{\"tags\": {\"contains\": \"urgent\"}}"); /* an array's item */
    s_research_only("{\"tags\": {\"contains\": 3.0}}");
    s_neither("{\"tags\": {\"contains\": \"urg\"}}"); /* items whole */
    s_neither("{\"tags\": {\"contains\": \"tea\"}}");
    s_neither("{\"priority\": {\"contains\": 2}}"); /* a number holds nothing */
    s_neither("{\"topic\": {\"contains\": 2}}");
    s_neither("{\"nested\": {\"contains\": \"a\"}}");
}

static void test_icontains(void **state)
{
    (void)state;
    s_research_only("{\"topic\": {\"icontains\": \"slide deck\"}}");
    s_research_only("{\"topic\": {\"icontains\": \"SLIDE DECKS\"}}");
    s_research_only("{\"author\": {\"icontains\": \"RESEARCH\"}}");
    s_research_only("{\"city\": {\"icontains\": \"STRASSE\"}}"); /* full case folding: ß = ss */
    s_research_only("{\"city\": {\"icontains\": \"straße\"}}");
    /* Composed and decomposed forms fold alike: "Ame\u0301lie" holds "AMÉ". */
    const search_record_t amelie = {.meta_json = "{\"name\": \"Ame\\u0301lie\"}"};
    assert_true(s_matches("{\"name\": {\"icontains\": \"AM\\u00c9\"}}", &amelie));
    assert_false(s_matches("{\"name\": {\"icontains\": \"AMF\"}}", &amelie));
    s_research_only("{\"tags\": {\"icontains\": \"TEA\"}}"); /* an item, ignoring case */
    s_neither("{\"tags\": {\"icontains\": \"te\"}}");
    s_neither("{\"topic\": {\"icontains\": \"slides\"}}");
    s_neither("{\"priority\": {\"icontains\": \"2\"}}");
}

static void test_present(void **state)
{
    (void)state;
    s_research_only("{\"topic\": \"*\"}");
    s_research_only("{\"metadata\": {\"tags\": \"*\"}}");
    s_neither("{\"note\": \"*\"}"); /* null is not present */
    s_neither("{\"absent\": \"*\"}");
    s_research_only("{\"user\": \"*\"}");
    s_both("{\"author\": \"*\", \"created_at\": \"*\", \"updated_at\": \"*\"}");
    /* "*" in an operator is a plain string. */
    s_neither("{\"author\": {\"eq\": \"*\"}}");
    const search_record_t star = {.author = "*"};
    assert_true(s_matches("{\"author\": {\"eq\": \"*\"}}", &star));
}

static void test_logic(void **state)
{
    (void)state;
    s_research_only("{\"AND\": [{\"author\": \"researcher\"}, {\"priority\": 2}]}");
    s_neither("{\"AND\": [{\"author\": \"researcher\"}, {\"priority\": 3}]}");
    s_both("{\"OR\": [{\"author\": \"researcher\"}, {\"author\": \"writer\"}]}");
    s_research_only("{\"OR\": [{\"author\": \"nobody\"}, {\"priority\": 2}]}");
    s_neither("{\"OR\": [{\"author\": \"nobody\"}]}");
    s_research_only("{\"NOT\": [{\"author\": \"writer\"}]}");
    s_research_only("{\"NOT\": {\"author\": \"writer\"}}"); /* a single object too */
    s_neither("{\"NOT\": [{\"author\": \"writer\"}, {\"author\": \"researcher\"}]}");
    /* The members of one object all hold (an implicit AND), combinators included. */
    s_research_only("{\"author\": \"researcher\", \"user\": \"alice\"}");
    s_neither("{\"author\": \"researcher\", \"user\": \"bob\"}");
    s_research_only("{\"OR\": [{\"author\": \"writer\"}, {\"user\": \"alice\"}], "
                    "\"priority\": 2}");
    const char *writer_only = "{\"OR\": [{\"author\": \"writer\"}, {\"user\": \"alice\"}], "
                              "\"NOT\": [{\"priority\": 2}]}";
    assert_false(s_matches(writer_only, &s_research));
    assert_true(s_matches(writer_only, &s_writing));
    /* Nested. */
    s_research_only("{\"AND\": [{\"OR\": [{\"key\": \"draft\"}, {\"key\": \"client/format\"}]}, "
                    "{\"NOT\": [{\"OR\": [{\"done\": true}, {\"author\": \"writer\"}]}]}]}");
}

static void test_metadata_fields(void **state)
{
    (void)state;
    /* Outside "metadata", author is the built-in; inside, the metadata's own field. */
    s_research_only("{\"metadata\": {\"author\": \"bob\"}}");
    s_neither("{\"author\": \"bob\"}");
    s_research_only("{\"metadata\": {\"topic\": \"Slide Decks\", \"priority\": {\"gt\": 1}}}");
    s_research_only("{\"metadata\": {\"OR\": [{\"author\": \"x\"}, {\"author\": \"bob\"}]}}");
    s_research_only("{\"AND\": [{\"metadata\": {\"done\": false}}, {\"author\": "
                    "\"researcher\"}]}");
    /* Inside metadata, "metadata" names a metadata field. */
    const search_record_t self = {.meta_json = "{\"metadata\": \"yes\"}"};
    assert_true(s_matches("{\"metadata\": {\"metadata\": \"yes\"}}", &self));
    /* Metadata that is not a JSON object has no fields. */
    const char *nothing[] = {NULL, "", "not json", "[1, 2]", "7", "{\"topic\": }"};
    for (size_t i = 0; i < sizeof nothing / sizeof *nothing; i++) {
        const search_record_t bare = {.meta_json = nothing[i]};
        assert_false(s_matches("{\"topic\": \"*\"}", &bare));
        assert_true(s_matches("{\"topic\": {\"ne\": 1}}", &bare));
        assert_true(s_matches("{\"author\": {\"ne\": 1}}", &bare));
    }
    /* Numbers past int64 are numbers. */
    const search_record_t huge = {.meta_json = "{\"n\": 123456789012345678901234}"};
    assert_true(s_matches("{\"n\": {\"gt\": 1e23}}", &huge));
}

static void test_times(void **state)
{
    (void)state;
    /* ms since the epoch, or ISO 8601 UTC: a date, a time with or without a fraction. */
    s_research_only("{\"created_at\": 1767225600000}");
    s_research_only("{\"created_at\": \"2026-01-01\"}");
    s_research_only("{\"created_at\": \"2026-01-01T00:00:00Z\"}");
    s_research_only("{\"created_at\": \"2026-01-01T00:00:00+00:00\"}");
    s_research_only("{\"updated_at\": \"2026-01-01T00:00:00.250Z\"}");
    s_research_only("{\"updated_at\": \"2026-01-01T00:00:00.25Z\"}");
    s_research_only("{\"updated_at\": \"2026-01-01T00:00:00.250999999Z\"}"); /* to the ms */
    s_neither("{\"updated_at\": \"2026-01-01T00:00:00.251Z\"}");
    s_neither("{\"created_at\": \"2026-01-01T00:00:00.001Z\"}");
    s_research_only("{\"created_at\": {\"lt\": \"2026-07-01\"}}");
    s_both("{\"created_at\": {\"gte\": \"2026-01-01\", \"lte\": \"2026-07-01T12:00:00Z\"}}");
    s_research_only("{\"updated_at\": {\"lt\": 1767225600251}}");
    s_neither("{\"created_at\": {\"gt\": \"2026-07-01T12:00:00Z\"}}");
    s_both("{\"created_at\": {\"gt\": -1}}");
    s_both("{\"created_at\": {\"gt\": \"1969-12-31T23:59:59Z\"}}"); /* before the epoch */
    s_research_only("{\"created_at\": {\"in\": [\"2024-02-29\", 1767225600000.0]}}");
    s_research_only("{\"created_at\": {\"nin\": [\"2026-07-01T12:00:00Z\"]}}");
    s_research_only("{\"created_at\": {\"ne\": 1782907200000}}");
    /* A leap day. */
    const search_record_t leap = {.created_at_ms = FEB_29_2024};
    assert_true(s_matches("{\"created_at\": \"2024-02-29\"}", &leap));
    assert_true(
        s_matches("{\"created_at\": {\"lt\": \"2024-03-01\", \"gt\": \"2024-02-28\"}}", &leap));
    /* "created_at" inside metadata is a metadata field, compared as what it is. */
    const search_record_t meta_time = {.meta_json = "{\"created_at\": \"2026-01-01\"}"};
    assert_true(s_matches("{\"metadata\": {\"created_at\": \"2026-01-01\"}}", &meta_time));
    assert_false(s_matches("{\"created_at\": \"2026-01-01\"}", &meta_time));
}

static void test_bad_times(void **state)
{
    (void)state;
    const char *bad[] = {
        "\"yesterday\"",
        "\"2026-02-29\"", /* not a leap year */
        "\"2100-02-29\"", /* nor is 2100 */
        "\"2026-04-31\"",
        "\"2026-13-01\"",
        "\"2026-00-10\"",
        "\"2026-01-00\"",
        "\"2026-1-01\"",
        "\"2026-01-01T12:00:00\"", /* no zone */
        "\"2026-01-01T12:00Z\"",
        "\"2026-01-01T24:00:00Z\"",
        "\"2026-01-01T12:60:00Z\"",
        "\"2026-01-01T12:00:60Z\"",
        "\"2026-01-01T12:00:00+01:00\"",
        "\"2026-01-01T12:00:00-00:00\"",
        "\"2026-01-01T12:00:00.Z\"",
        "\"2026-01-01T12:00:00.1234567890Z\"",
        "\"2026-01-01 12:00:00Z\"",
        "\"2026-01-01T12:00:00Zjunk\"",
        "\"+2026-01-01\"",
        "\"2026-01-01\\u0000\"",
        "true",
        "null",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char filter[128];
        snprintf(filter, sizeof filter, "{\"AND\": [{\"a\": 1}, {\"created_at\": {\"gte\": %s}}]}",
                 bad[i]);
        s_refused(filter, "AND[1].created_at.gte: not a time");
    }
    s_refused("{\"updated_at\": \"2026\"}", "updated_at: not a time");
    s_refused("{\"updated_at\": {\"in\": [1, \"x\"]}}", "updated_at.in[1]: not a time");
    s_refused("{\"created_at\": {\"contains\": \"2026\"}}",
              "created_at.contains: not an operator for times");
    /* The good forms next to these parse. */
    assert_true(
        s_matches("{\"created_at\": {\"gte\": \"2000-02-29T23:59:59.9+00:00\"}}", &s_research));
}

static void test_bad_inputs(void **state)
{
    (void)state;
    s_refused("{\"x\": {\"like\": 1}}", "x.like: unknown operator");
    s_refused("{\"x\": {\"eq\": 1, \"EQ\": 1}}", "x.EQ: unknown operator");
    s_refused("{\"AND\": []}", "AND: empty");
    s_refused("{\"OR\": []}", "OR: empty");
    s_refused("{\"NOT\": []}", "NOT: empty");
    s_refused("{\"OR\": {\"a\": 1}}", "OR: not an array");
    s_refused("{\"NOT\": 5}", "NOT: not an array or object");
    s_refused("{\"AND\": [{\"a\": 1}, 2]}", "AND[1]: not an object");
    s_refused("{\"AND\": [{}]}", "AND[0]: an empty filter");
    s_refused("{\"metadata\": {}}", "metadata: an empty filter");
    s_refused("{\"metadata\": 5}", "metadata: not an object");
    s_refused("{\"x\": {}}", "x: no operator");
    s_refused("{\"x\": {\"in\": \"a\"}}", "x.in: not an array");
    s_refused("{\"x\": {\"nin\": 1}}", "x.nin: not an array");
    s_refused("{\"x\": {\"in\": [1, [2]]}}", "x.in[1]: not a string, number, boolean or null");
    s_refused("{\"x\": [1]}", "x: not a string, number, boolean or null");
    s_refused("{\"x\": {\"ne\": {}}}", "x.ne: not a string, number, boolean or null");
    s_refused("{\"x\": {\"contains\": [1]}}", "x.contains: not a string, number, boolean or null");
    s_refused("{\"x\": {\"gt\": true}}", "x.gt: not a number or string");
    s_refused("{\"x\": {\"lte\": null}}", "x.lte: not a number or string");
    s_refused("{\"x\": {\"icontains\": 5}}", "x.icontains: not a string");
    s_refused("{\"metadata\": {\"OR\": [{\"a\": {\"gt\": []}}]}}",
              "metadata.OR[0].a.gt: not a number or string");
    /* Not an object. */
    s_refused("[{\"a\": 1}]", "the filter is not a JSON object");
    s_refused("5", "the filter is not a JSON object");
    s_refused("\"x\"", "the filter is not a JSON object");
    s_refused("null", "the filter is not a JSON object");
    /* Not JSON: the place is named, the text not quoted. */
    s_refused("{\"a\": secret}", "not valid JSON at line 1, column 12");
    s_refused("{\"a\": 1} {}", "not valid JSON at line 1, column 10");
    s_refused("", "not valid JSON at line 1, column 0");
    s_refused_n("{\"a\": 1}\0", 9, "not valid JSON at line 1, column 9");
    s_refused("{\"a\": \"\\ud800\"}", "not valid JSON at line 1, column 14");
    s_refused("{\"a\": 1, \"a\": 2}", "a member given twice at line 1, column 12");
    /* Values are never quoted; names are, cut short and without control characters. */
    search_filter_t *parsed = NULL;
    char why[256];
    const char *secret = "{\"created_at\": {\"gte\": \"my-secret-token\"}}";
    assert_int_equal(search_filter_parse(secret, strlen(secret), &parsed, why, sizeof why),
                     ENGRAM_EINVAL);
    assert_null(strstr(why, "secret"));
    s_refused("{\"a\\nb\": {\"zz\": 1}}", "a?b.zz: unknown operator");
    char name[100];
    memset(name, 'n', sizeof name);
    char filter[256];
    snprintf(filter, sizeof filter, "{\"%.100s\": {\"zz\": 1}}", name);
    char reason[256];
    snprintf(reason, sizeof reason, "%.64s....zz: unknown operator", name);
    s_refused(filter, reason);
    /* "é" is two bytes: a cut at 64 bytes backs off to keep UTF-8 whole. */
    char accents[256] = "{\"n";
    for (int i = 0; i < 40; i++)
        strcat(accents, "\xc3\xa9");
    strcat(accents, "\": {\"zz\": 1}}");
    snprintf(reason, sizeof reason, "n");
    for (int i = 0; i < 31; i++)
        strcat(reason, "\xc3\xa9");
    strcat(reason, "....zz: unknown operator");
    s_refused(accents, reason);
    /* A NULL or short why is fine. */
    assert_int_equal(search_filter_parse("[]", 2, &parsed, NULL, 0), ENGRAM_EINVAL);
    assert_int_equal(search_filter_parse("{\"AND\": []}", 11, &parsed, why, 4), ENGRAM_EINVAL);
    assert_string_equal(why, "AND");
}

/*  A filter of `levels` nested ANDs around {"a": 1}. */
static char *s_nested(int levels)
{
    size_t size = (size_t)levels * 16 + 16;
    char *text = malloc(size);
    assert_non_null(text);
    text[0] = '\0';
    for (int i = 0; i < levels; i++)
        strcat(text, "{\"AND\": [");
    strcat(text, "{\"a\": 1}");
    for (int i = 0; i < levels; i++)
        strcat(text, "]}");
    return text;
}

static void test_limits(void **state)
{
    (void)state;
    /* Depth: the top object is level 1, each AND item one more. */
    char *deepest = s_nested(SEARCH_FILTER_MAX_DEPTH - 1);
    const search_record_t a1 = {.meta_json = "{\"a\": 1}"};
    assert_true(s_matches(deepest, &a1));
    free(deepest);
    char *deeper = s_nested(SEARCH_FILTER_MAX_DEPTH);
    char reason[512] = "";
    for (int i = 0; i < SEARCH_FILTER_MAX_DEPTH; i++)
        strcat(reason, i ? ".AND[0]" : "AND[0]");
    strcat(reason, ": nested deeper than 16 filters");
    s_refused(deeper, reason);
    free(deeper);
    /* Nodes: AND and its items' tests, 256 in all, then one more. */
    char *text = malloc(16 * 300);
    assert_non_null(text);
    strcpy(text, "{\"AND\": [{\"a\": 1}");
    for (int i = 1; i < SEARCH_FILTER_MAX_NODES - 1; i++)
        strcat(text, ", {\"a\": 1}");
    strcat(text, "]}");
    assert_true(s_matches(text, &a1));
    text[strlen(text) - 2] = '\0';
    strcat(text, ", {\"a\": 1}]}");
    s_refused(text, "AND[255].a: more than 256 conditions");
    /* Several operators of one field count one each. */
    strcpy(text, "{\"AND\": [{\"a\": {\"gte\": 1, \"lte\": 1}}");
    for (int i = 1; i < SEARCH_FILTER_MAX_NODES / 2; i++)
        strcat(text, ", {\"a\": {\"gte\": 1, \"lte\": 1}}");
    strcat(text, "]}");
    s_refused(text, "AND[127].a.lte: more than 256 conditions");
    free(text);
    /* Size: exactly the limit parses (whitespace counts), one byte more does not. */
    char *big = malloc(SEARCH_FILTER_MAX_BYTES + 1);
    assert_non_null(big);
    memset(big, ' ', SEARCH_FILTER_MAX_BYTES + 1);
    memcpy(big, "{\"a\": 1}", 8);
    search_filter_t *parsed = NULL;
    assert_int_equal(search_filter_parse(big, SEARCH_FILTER_MAX_BYTES, &parsed, NULL, 0), 0);
    assert_true(search_filter_match(parsed, &a1));
    search_filter_destroy(&parsed);
    s_refused_n(big, SEARCH_FILTER_MAX_BYTES + 1, "filter longer than 65536 bytes");
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),           cmocka_unit_test(test_eq_ne),
        cmocka_unit_test(test_user_ne_missing), cmocka_unit_test(test_in_nin),
        cmocka_unit_test(test_order),           cmocka_unit_test(test_contains),
        cmocka_unit_test(test_icontains),       cmocka_unit_test(test_present),
        cmocka_unit_test(test_logic),           cmocka_unit_test(test_metadata_fields),
        cmocka_unit_test(test_times),           cmocka_unit_test(test_bad_times),
        cmocka_unit_test(test_bad_inputs),      cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
