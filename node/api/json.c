/*  node_json: a recursive-descent JSON syntax checker (see json.h). */
#include "node/api/json.h"

#include <stdint.h>
#include <string.h>

typedef struct {
    const char *at;
    const char *end;
    int depth;
} s_json_t;

static void s_space(s_json_t *j)
{
    while (j->at < j->end && strchr(" \t\r\n", *j->at) && *j->at)
        j->at++;
}

static bool s_literal(s_json_t *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->at) < n || memcmp(j->at, word, n) != 0)
        return false;
    j->at += n;
    return true;
}

static bool s_digits(s_json_t *j)
{
    const char *start = j->at;
    while (j->at < j->end && *j->at >= '0' && *j->at <= '9')
        j->at++;
    return j->at > start;
}

static bool s_number(s_json_t *j)
{
    if (j->at < j->end && *j->at == '-')
        j->at++;
    if (j->at < j->end && *j->at == '0')
        j->at++;
    else if (!s_digits(j))
        return false;
    if (j->at < j->end && *j->at == '.') {
        j->at++;
        if (!s_digits(j))
            return false;
    }
    if (j->at < j->end && (*j->at == 'e' || *j->at == 'E')) {
        j->at++;
        if (j->at < j->end && (*j->at == '+' || *j->at == '-'))
            j->at++;
        if (!s_digits(j))
            return false;
    }
    return true;
}

static bool s_string(s_json_t *j)
{
    j->at++; /* the opening quote */
    while (j->at < j->end) {
        unsigned char c = (unsigned char)*j->at++;
        if (c == '"')
            return true;
        if (c < 0x20)
            return false;
        if (c != '\\')
            continue;
        if (j->at >= j->end)
            return false;
        c = (unsigned char)*j->at++;
        if (c == 'u') {
            for (int i = 0; i < 4; i++, j->at++)
                if (j->at >= j->end || !strchr("0123456789abcdefABCDEF", *j->at) || !*j->at)
                    return false;
        } else if (!strchr("\"\\/bfnrt", c) || !c) {
            return false;
        }
    }
    return false;
}

static bool s_value(s_json_t *j);

/*  An object or array: open, values (members: "key": value) separated by commas, close. */
static bool s_container(s_json_t *j, char close, bool members)
{
    if (++j->depth > NODE_JSON_MAX_DEPTH)
        return false;
    j->at++;
    s_space(j);
    if (j->at < j->end && *j->at == close) {
        j->at++;
        j->depth--;
        return true;
    }
    for (;;) {
        if (members) {
            s_space(j);
            if (j->at >= j->end || *j->at != '"' || !s_string(j))
                return false;
            s_space(j);
            if (j->at >= j->end || *j->at++ != ':')
                return false;
        }
        if (!s_value(j))
            return false;
        s_space(j);
        if (j->at >= j->end)
            return false;
        char c = *j->at++;
        if (c == close) {
            j->depth--;
            return true;
        }
        if (c != ',')
            return false;
    }
}

static bool s_value(s_json_t *j)
{
    s_space(j);
    if (j->at >= j->end)
        return false;
    switch (*j->at) {
    case '{':
        return s_container(j, '}', true);
    case '[':
        return s_container(j, ']', false);
    case '"':
        return s_string(j);
    case 't':
        return s_literal(j, "true");
    case 'f':
        return s_literal(j, "false");
    case 'n':
        return s_literal(j, "null");
    default:
        return s_number(j);
    }
}

bool node_json_valid(const char *text, size_t len)
{
    s_json_t j = {text, text + len, 0};
    if (!s_value(&j))
        return false;
    s_space(&j);
    return j.at == j.end;
}

bool node_json_utf8_valid(const char *text, size_t len)
{
    const unsigned char *c = (const unsigned char *)text, *end = c + len;
    while (c < end) {
        if (*c < 0x80) {
            c++;
            continue;
        }
        int extra;
        uint32_t cp, min;
        if ((*c & 0xe0) == 0xc0) {
            extra = 1, cp = *c & 0x1f, min = 0x80;
        } else if ((*c & 0xf0) == 0xe0) {
            extra = 2, cp = *c & 0x0f, min = 0x800;
        } else if ((*c & 0xf8) == 0xf0) {
            extra = 3, cp = *c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (end - c <= extra)
            return false;
        for (int i = 1; i <= extra; i++) {
            if ((c[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (c[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        c += extra + 1;
    }
    return true;
}
