/*  libFuzzer target for search_filter_parse (node/search/filter.h): filters arrive from agents
 *  in SEARCH, ls and forget, and forget deletes what its filter matches.
 *
 *  Any input must either be refused with ENGRAM_EINVAL, a NULL filter and a one-line reason,
 *  or parse to a filter that evaluates against a few memories (with and without metadata of
 *  every JSON kind) without failing; an empty filter matches all of them; and the same filter
 *  wrapped in {"NOT": ...}, when that parses, matches exactly the memories it does not. A
 *  violation abort()s so libFuzzer saves the input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/error.h"
#include "fuzz_check.h"
#include "node/search/filter.h"

static int s_sentinel;
#define NOT_NULL ((void *)&s_sentinel)

static const search_record_t s_records[] = {
    {0},
    {.author = "researcher",
     .user = "alice",
     .key = "client/format",
     .created_at_ms = UINT64_C(1767225600000),
     .updated_at_ms = UINT64_C(1767225600250),
     .meta_json = "{\"topic\": \"Slide Decks\", \"tags\": [\"Tea\", 3, null, {\"a\": 1}], "
                  "\"priority\": 2, \"score\": -1.5e300, \"done\": false, \"note\": null, "
                  "\"city\": \"Stra\\u00dfe\", \"nul\": \"a\\u0000b\", \"nested\": {\"a\": 1}, "
                  "\"a\": 1, \"x\": \"\", \"created_at\": \"2026-01-01\"}"},
    {.author = "",
     .key = "\xff not UTF-8",
     .created_at_ms = UINT64_MAX,
     .updated_at_ms = 1,
     .meta_json = "[\"not\", \"an object\"]"},
    {.author = "writer", .meta_json = "{\"broken\": "},
};
#define NRECORDS (sizeof s_records / sizeof *s_records)

/*  Parses data; on success fills matches[] and returns the filter's emptiness in *empty. */
static int s_parse_and_match(const char *data, size_t size, bool matches[NRECORDS], bool *empty)
{
    search_filter_t *filter = NOT_NULL;
    char why[256];
    memset(why, 'x', sizeof why);
    int rc = search_filter_parse(data, size, &filter, why, sizeof why);
    if (rc != 0) {
        CHECK(rc == ENGRAM_EINVAL || rc == ENGRAM_ENOMEM);
        CHECK(filter == NULL);
        CHECK(memchr(why, '\0', sizeof why) != NULL);
        CHECK(rc == ENGRAM_ENOMEM || why[0] != '\0');
        CHECK(strchr(why, '\n') == NULL && strchr(why, '\r') == NULL);
        return rc;
    }
    CHECK(filter && filter != NOT_NULL);
    *empty = search_filter_is_empty(filter);
    for (size_t i = 0; i < NRECORDS; i++) {
        matches[i] = search_filter_match(filter, &s_records[i]);
        CHECK(matches[i] == search_filter_match(filter, &s_records[i])); /* no state */
        CHECK(!*empty || matches[i]);
    }
    search_filter_destroy(&filter);
    CHECK(filter == NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool matches[NRECORDS], empty = false;
    if (s_parse_and_match((const char *)data, size, matches, &empty) != 0)
        return 0;
    static const char open[] = "{\"NOT\": ", close[] = "}";
    size_t wrapped_len = sizeof open - 1 + size + sizeof close - 1;
    char *wrapped = malloc(wrapped_len);
    CHECK(wrapped);
    memcpy(wrapped, open, sizeof open - 1);
    memcpy(wrapped + sizeof open - 1, data, size);
    memcpy(wrapped + sizeof open - 1 + size, close, sizeof close - 1);
    bool negated[NRECORDS], negated_empty = true;
    if (s_parse_and_match(wrapped, wrapped_len, negated, &negated_empty) == 0) {
        CHECK(!empty && !negated_empty); /* NOT of {} is refused: {} inside a filter */
        for (size_t i = 0; i < NRECORDS; i++)
            CHECK(negated[i] == !matches[i]);
    }
    free(wrapped);
    return 0;
}
