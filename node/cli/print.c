/*  The forms of output (cli.h has the contract they keep): JSON values built with jansson and
 *  printed by cli_json_print, the fields of line-oriented records, and node ids.
 *
 *  JSON builders return a new reference, or NULL when memory runs out. json_pack's "o" takes
 *  their results as they are: on a NULL it fails and releases every other value it was given,
 *  so a document is built in one expression and its failure shows once, at cli_json_print.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/cli/cli.h"

/*  Length of the well-formed UTF-8 sequence of 2 to 4 bytes at p, or 0 if there is none
 *  (overlong forms, surrogates and code points past U+10FFFF are not well-formed). */
static size_t s_utf8_len(const uint8_t *p, size_t avail)
{
    uint8_t c = p[0];
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF; /* the range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

json_t *cli_json_bytes(const uint8_t *p, size_t len)
{
    json_t *string = json_stringn((const char *)p, len);
    if (string || len > SIZE_MAX / 2)
        return string;
    /*  Not UTF-8, which a JSON string must be: each byte outside a well-formed sequence
     *  stands for the code point of its value, U+0080 to U+00FF, two bytes in UTF-8. */
    char *utf8 = malloc(2 * len);
    if (!utf8)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < len;) {
        size_t n = p[i] < 0x80 ? 1 : s_utf8_len(p + i, len - i);
        if (n) {
            memcpy(utf8 + at, p + i, n);
            at += n;
            i += n;
        } else {
            utf8[at++] = (char)(0xC0 | p[i] >> 6);
            utf8[at++] = (char)(0x80 | (p[i] & 0x3F));
            i++;
        }
    }
    string = json_stringn(utf8, at);
    free(utf8);
    return string;
}

json_t *cli_json_str(const char *s)
{
    return cli_json_bytes((const uint8_t *)s, strlen(s));
}

json_t *cli_json_u64(uint64_t v)
{
    /*  jansson's integers are int64. Past that (an HLC gets there in the year 4400), the
     *  nearest double. */
    return v <= INT64_MAX ? json_integer((json_int_t)v) : json_real((double)v);
}

void cli_node_id(uint64_t id, char text[CLI_NODE_ID_CHARS + 1])
{
    snprintf(text, CLI_NODE_ID_CHARS + 1, "%016" PRIx64, id);
}

void cli_format_time(uint64_t ms, char text[CLI_TIME_CHARS + 1])
{
    /*  The first millisecond of the year 10000, past which a year takes five digits. */
    const uint64_t year_10000_ms = UINT64_C(253402300800000);
    struct tm tm;
    time_t seconds = (time_t)(ms / 1000);
    if (ms >= year_10000_ms || !gmtime_r(&seconds, &tm)) {
        snprintf(text, CLI_TIME_CHARS + 1, "%" PRIu64, ms);
        return;
    }
    size_t n = strftime(text, CLI_TIME_CHARS + 1, "%Y-%m-%dT%H:%M:%S", &tm);
    if (ms % 1000)
        snprintf(text + n, CLI_TIME_CHARS + 1 - n, ".%03uZ", (unsigned)(ms % 1000));
    else
        snprintf(text + n, CLI_TIME_CHARS + 1 - n, "Z");
}

json_t *cli_json_node(uint64_t id)
{
    char text[CLI_NODE_ID_CHARS + 1];
    cli_node_id(id, text);
    return json_string(text);
}

/*  Metadata: embedded as the JSON value it holds, with the node's reading of JSON (jansson,
 *  as node/api/json.h: integers stay integers unless one is past int64, then every number is
 *  read as a double); as a string when it is not JSON (written before the node checked); null
 *  when there is none. */
static json_t *s_json_meta(const char *meta)
{
    if (!*meta)
        return json_null();
    json_t *doc = json_loads(meta, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!doc)
        doc = json_loads(meta, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
    return doc ? doc : cli_json_str(meta);
}

static json_t *s_json_strv(char *const *strv, size_t n)
{
    json_t *array = json_array();
    for (size_t i = 0; i < n; i++)
        array = cli_json_append(array, cli_json_str(strv[i]));
    return array;
}

json_t *cli_json_item(const engram_item_t *item)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "value",
                     cli_json_bytes(item->value, item->len), "meta", s_json_meta(item->meta_json),
                     "author", cli_json_str(item->author), "user", cli_json_str(item->user),
                     "agents", s_json_strv(item->agents, item->nagents), "resources",
                     s_json_strv(item->resources, item->nresources), "hlc", cli_json_u64(item->hlc),
                     "created_hlc", cli_json_u64(item->created_hlc), "expires_at_ms",
                     cli_json_u64(item->expires_at_ms), "node", cli_json_node(item->node), "n",
                     cli_json_u64(item->n));
}

json_t *cli_json_merge(json_t *object, json_t *more)
{
    if (object && more && json_object_update(object, more) == 0) {
        json_decref(more);
        return object;
    }
    json_decref(object);
    json_decref(more);
    return NULL;
}

json_t *cli_json_append(json_t *array, json_t *value)
{
    if (!array || !value) {
        json_decref(array);
        json_decref(value);
        return NULL;
    }
    if (json_array_append_new(array, value) != 0) { /* it has released value */
        json_decref(array);
        return NULL;
    }
    return array;
}

/*  The fewest significant digits (1..17) that print every real of doc so that it reads back
 *  as the same double: 0.93 prints as 0.93, not as its 17-digit expansion. */
static int s_real_precision(const json_t *doc)
{
    int precision = 1;
    if (json_is_real(doc)) {
        double value = json_real_value(doc);
        char text[32];
        for (; precision < 17; precision++) {
            snprintf(text, sizeof text, "%.*g", precision, value);
            if (strtod(text, NULL) == value)
                break;
        }
    } else if (json_is_array(doc)) {
        size_t i;
        const json_t *item;
        json_array_foreach(doc, i, item)
        {
            int p = s_real_precision(item);
            precision = p > precision ? p : precision;
        }
    } else if (json_is_object(doc)) {
        const char *key;
        const json_t *item;
        json_object_foreach((json_t *)doc, key, item)
        {
            int p = s_real_precision(item);
            precision = p > precision ? p : precision;
        }
    }
    return precision;
}

int cli_json_print(json_t *doc)
{
    char *text =
        doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(s_real_precision(doc))) : NULL;
    json_decref(doc);
    if (!text)
        return cli_fail(ENGRAM_ENOMEM, "building the JSON output");
    puts(text);
    free(text);
    return 0;
}

void cli_print_field(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\n')
            fputs("\\n", stdout);
        else if (p[i] == '\r')
            fputs("\\r", stdout);
        else
            putchar(p[i]);
    }
}

void cli_print_str(const char *s)
{
    cli_print_field((const uint8_t *)(*s ? s : "-"), *s ? strlen(s) : 1);
}

void cli_print_item_value(const engram_item_t *item, const char *op)
{
    if (item->len) {
        putchar(' ');
        cli_print_field(item->value, item->len);
    } else if (strncmp(op, "counter", strlen("counter")) == 0 || strcmp(item->type, "counter") == 0)
        printf(" %" PRId64, item->amount);
}
