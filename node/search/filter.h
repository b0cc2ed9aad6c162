/*  search_filter: the filter grammar agent developers already use (mem0's), parsed from JSON
 *  (jansson) and evaluated against one memory.
 *
 *  A filter is a JSON object. Each member is a condition, and all of an object's members must
 *  hold (an implicit AND):
 *    {"AND": [F, ...]}   every filter F holds (at least one F)
 *    {"OR":  [F, ...]}   at least one holds (at least one F)
 *    {"NOT": [F, ...]}   none holds (mem0 writes NOT with a list; a single object is taken too)
 *    {FIELD: VALUE}      FIELD equals VALUE (the operator eq)
 *    {FIELD: {OP: VALUE, ...}}  every operator holds, OP one of
 *        eq ne            equal / not equal (a missing field is not equal to anything)
 *        in nin           VALUE is an array: FIELD equals one of its items / none of them
 *        gt gte lt lte    numbers compare as numbers, strings by bytes, times as times
 *        contains         FIELD (a string) holds VALUE (a string) as a substring; FIELD an
 *                         array holds VALUE as an item
 *        icontains        contains, ignoring case (Unicode case folding)
 *    {FIELD: "*"}        FIELD is present (any value, not null)
 *  FIELD is a built-in or a metadata field:
 *    author      the agent that wrote the memory (string)
 *    user        the user it was written for (string)
 *    key         its key (string)
 *    created_at  when the memory was created, updated_at when this version was written: ms
 *                since the Unix epoch; in a filter either a number (ms) or an ISO 8601 UTC
 *                string ("2026-07-01", "2026-07-01T12:00:00Z", "2026-07-01T12:00:00.250Z")
 *    metadata    {"metadata": {F...}}: the conditions inside apply to metadata fields
 *    anything else: the top-level field of that name of the memory's metadata (meta_json,
 *                a JSON object; a memory without it has no such field)
 *  VALUE is a JSON string, number, boolean or null (arrays for in and nin). Equality is JSON
 *  equality of the two values (1 and 1.0 are equal); comparing values of different kinds
 *  (a string with a number) is false, never an error.
 *
 *  Bad input gets an error naming what is wrong and where (the path of the member, e.g.
 *  "AND[1].created_at.gte: not a time"), never a filter that matches something else: unknown
 *  operators, an empty AND/OR/NOT, a filter deeper than SEARCH_FILTER_MAX_DEPTH, more than
 *  SEARCH_FILTER_MAX_NODES conditions (each operator test and each AND, OR and NOT counts), or
 *  text longer than SEARCH_FILTER_MAX_BYTES; also a value an operator cannot take (a string
 *  that is not a time, gt with a boolean or null, icontains with anything but a string, an
 *  array or object but in's and nin's list), a field with no operator ({"x": {}}), and an
 *  empty object inside a filter ({"AND": [{}]}).
 *  An empty object {} is a valid filter that matches everything; callers that must refuse an
 *  empty filter (forget) ask search_filter_is_empty.
 *
 *  Ownership: a filter owns its parsed tree; evaluation never allocates more than the
 *  metadata's parse and, for icontains, the case folding of the field's text.
 */
#ifndef NODE_SEARCH_FILTER_H
#define NODE_SEARCH_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEARCH_FILTER_MAX_BYTES (64 * 1024)
#define SEARCH_FILTER_MAX_DEPTH 16
#define SEARCH_FILTER_MAX_NODES 256

typedef struct search_filter search_filter_t;

/*  What a filter is evaluated against: one memory. Strings may be NULL (absent). */
typedef struct {
    const char *author;
    const char *user;
    const char *key;
    uint64_t created_at_ms;
    uint64_t updated_at_ms;
    const char *meta_json; /* a JSON object, or NULL/"" for none; invalid JSON: no fields */
} search_record_t;

/*  Parses json[0..len) into *self_p. 0, or ENGRAM_EINVAL with a one-line reason in why
 *  (which never quotes more than a field name of the input), or ENGRAM_ENOMEM. */
int search_filter_parse(const char *json, size_t len, search_filter_t **self_p, char *why,
                        size_t why_len);
void search_filter_destroy(search_filter_t **self_p);
/*  Whether the filter is {} (matches everything). */
bool search_filter_is_empty(const search_filter_t *self);
/*  Whether the memory satisfies the filter. */
bool search_filter_match(const search_filter_t *self, const search_record_t *record);

#endif
