/*  The forms of output: JSON values and the fields of line-oriented records (see cli.h for
 *  the contract they keep).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "node/cli/cli.h"

/*  Nesting a meta document may have and still be embedded as JSON. */
#define S_JSON_MAX_DEPTH 64

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

void cli_json_bytes(const uint8_t *p, size_t len)
{
    putchar('"');
    for (size_t i = 0; i < len;) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\') {
            putchar('\\');
            putchar(c);
        } else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7F)
            printf("\\u%04x", c);
        else if (c < 0x80)
            putchar(c);
        else {
            size_t n = s_utf8_len(p + i, len - i);
            if (n == 0)
                printf("\\u%04x", c);
            else {
                fwrite(p + i, 1, n, stdout);
                i += n;
                continue;
            }
        }
        i++;
    }
    putchar('"');
}

void cli_json_str(const char *s)
{
    cli_json_bytes((const uint8_t *)s, strlen(s));
}

/*  A recursive-descent check of RFC 8259 over [p, end), to decide whether meta can be
 *  embedded as it is. */
typedef struct {
    const char *p;
    const char *end;
    int depth;
} s_json_parser_t;

static bool s_jp_value(s_json_parser_t *jp);

static void s_jp_space(s_json_parser_t *jp)
{
    while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
        jp->p++;
}

static bool s_jp_accept(s_json_parser_t *jp, char c)
{
    s_jp_space(jp);
    if (jp->p < jp->end && *jp->p == c) {
        jp->p++;
        return true;
    }
    return false;
}

static bool s_jp_literal(s_json_parser_t *jp, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(jp->end - jp->p) < n || memcmp(jp->p, word, n) != 0)
        return false;
    jp->p += n;
    return true;
}

static bool s_jp_digits(s_json_parser_t *jp)
{
    const char *start = jp->p;
    while (jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9')
        jp->p++;
    return jp->p > start;
}

static bool s_jp_number(s_json_parser_t *jp)
{
    if (jp->p < jp->end && *jp->p == '-')
        jp->p++;
    if (jp->p < jp->end && *jp->p == '0')
        jp->p++;
    else if (!s_jp_digits(jp))
        return false;
    if (jp->p < jp->end && *jp->p == '.') {
        jp->p++;
        if (!s_jp_digits(jp))
            return false;
    }
    if (jp->p < jp->end && (*jp->p == 'e' || *jp->p == 'E')) {
        jp->p++;
        if (jp->p < jp->end && (*jp->p == '+' || *jp->p == '-'))
            jp->p++;
        if (!s_jp_digits(jp))
            return false;
    }
    return true;
}

static bool s_jp_string(s_json_parser_t *jp)
{
    if (!s_jp_accept(jp, '"'))
        return false;
    while (jp->p < jp->end) {
        uint8_t c = (uint8_t)*jp->p;
        if (c == '"') {
            jp->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (++jp->p == jp->end)
                return false;
            if (*jp->p == 'u') {
                for (int i = 0; i < 4; i++)
                    if (++jp->p == jp->end || !strchr("0123456789abcdefABCDEF", *jp->p))
                        return false;
            } else if (!strchr("\"\\/bfnrt", *jp->p))
                return false;
            jp->p++;
        } else if (c >= 0x80) {
            size_t n = s_utf8_len((const uint8_t *)jp->p, (size_t)(jp->end - jp->p));
            if (n == 0)
                return false;
            jp->p += n;
        } else
            jp->p++;
    }
    return false;
}

/*  The members of an object or the elements of an array, after its opening bracket. */
static bool s_jp_members(s_json_parser_t *jp, char close, bool object)
{
    if (s_jp_accept(jp, close))
        return true;
    do {
        if (object && (!s_jp_string(jp) || !s_jp_accept(jp, ':')))
            return false;
        if (!s_jp_value(jp))
            return false;
    } while (s_jp_accept(jp, ','));
    return s_jp_accept(jp, close);
}

static bool s_jp_value(s_json_parser_t *jp)
{
    s_jp_space(jp);
    if (jp->p == jp->end)
        return false;
    char c = *jp->p;
    if (c == '{' || c == '[') {
        if (++jp->depth > S_JSON_MAX_DEPTH)
            return false;
        jp->p++;
        bool ok = s_jp_members(jp, c == '{' ? '}' : ']', c == '{');
        jp->depth--;
        return ok;
    }
    if (c == '"')
        return s_jp_string(jp);
    if (c == 't')
        return s_jp_literal(jp, "true");
    if (c == 'f')
        return s_jp_literal(jp, "false");
    if (c == 'n')
        return s_jp_literal(jp, "null");
    return s_jp_number(jp);
}

static bool s_json_valid(const char *s)
{
    s_json_parser_t jp = {s, s + strlen(s), 0};
    if (!s_jp_value(&jp))
        return false;
    s_jp_space(&jp);
    return jp.p == jp.end;
}

static void s_json_meta(const char *meta)
{
    if (!*meta)
        fputs("null", stdout);
    else if (s_json_valid(meta))
        fputs(meta, stdout);
    else
        cli_json_str(meta);
}

static void s_json_strv(char *const *strv, size_t n)
{
    putchar('[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            putchar(',');
        cli_json_str(strv[i]);
    }
    putchar(']');
}

void cli_json_item_fields(const engram_item_t *item)
{
    fputs("\"value\":", stdout);
    cli_json_bytes(item->value, item->len);
    fputs(",\"meta\":", stdout);
    s_json_meta(item->meta_json);
    fputs(",\"author\":", stdout);
    cli_json_str(item->author);
    fputs(",\"user\":", stdout);
    cli_json_str(item->user);
    fputs(",\"agents\":", stdout);
    s_json_strv(item->agents, item->nagents);
    fputs(",\"resources\":", stdout);
    s_json_strv(item->resources, item->nresources);
    printf(",\"hlc\":%" PRIu64 ",\"created_hlc\":%" PRIu64 ",\"expires_at_ms\":%" PRIu64
           ",\"node\":%" PRIu64 ",\"n\":%" PRIu64,
           item->hlc, item->created_hlc, item->expires_at_ms, item->node, item->n);
}

void cli_json_item(const engram_item_t *item, const char *op)
{
    putchar('{');
    if (op) {
        fputs("\"op\":", stdout);
        cli_json_str(op);
        printf(",\"amount\":%" PRId64 ",", item->amount);
    }
    cli_json_item_fields(item);
    putchar('}');
}

void cli_json_token(const engram_result_t *result)
{
    fputs("{\"token\":", stdout);
    cli_json_str(result->token);
    fputs("}\n", stdout);
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

void cli_print_token(const engram_result_t *result)
{
    printf("%s\n", result->token);
}
