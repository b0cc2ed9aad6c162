/*  search_filter: mem0's filter grammar on jansson (filter.h).
 *
 *  Parsing turns the JSON into a tree of conditions: combinators (an object's implicit AND,
 *  AND, OR, NOT) over tests (one field, one operator, one value). Every test's value is checked
 *  when it is parsed (times converted to ms, icontains's value case-folded), so evaluation
 *  never fails: it only reads the record, the metadata's parse and its own tree.
 *
 *  Numbers are read as doubles (JSON_DECODE_INT_AS_REAL), on both sides, as node_json reads
 *  metadata: so 1 and 1.0 are equal, and integers past int64 are numbers too. Times are ms as
 *  doubles, exact up to 2^53 ms (year 287396).
 */
#define _GNU_SOURCE /* memmem, timegm */
#include "node/search/filter.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "engram/error.h"

typedef enum { NODE_ALL, NODE_ANY, NODE_NONE, NODE_TEST } node_kind_t;

typedef enum {
    OP_EQ,
    OP_NE,
    OP_IN,
    OP_NIN,
    OP_GT,
    OP_GTE,
    OP_LT,
    OP_LTE,
    OP_CONTAINS,
    OP_ICONTAINS,
    OP_PRESENT,
} op_t;

typedef enum {
    FIELD_AUTHOR,
    FIELD_USER,
    FIELD_KEY,
    FIELD_CREATED_AT,
    FIELD_UPDATED_AT,
    FIELD_METADATA,
} field_t;

typedef struct filter_node filter_node_t;
struct filter_node {
    node_kind_t kind;
    filter_node_t **kids; /* NODE_ALL, NODE_ANY, NODE_NONE: n of them, owned */
    size_t n;
    field_t field;    /* NODE_TEST from here on */
    const char *name; /* FIELD_METADATA: the field's name, borrowed from the filter's doc */
    op_t op;
    json_t *value;   /* a reference this node holds; NULL for OP_PRESENT */
    uint8_t *folded; /* OP_ICONTAINS: the value case-folded, owned */
    size_t folded_len;
};

struct search_filter {
    json_t *doc;         /* the parsed text, which tests borrow names from */
    filter_node_t *root; /* NULL for {} */
    bool reads_metadata;
};

/*  ---- the tree ---- */

static void s_node_destroy(filter_node_t *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->n; i++)
        s_node_destroy(node->kids[i]);
    free(node->kids);
    json_decref(node->value);
    free(node->folded);
    free(node);
}

void search_filter_destroy(search_filter_t **self_p)
{
    search_filter_t *self = *self_p;
    if (!self)
        return;
    s_node_destroy(self->root);
    json_decref(self->doc);
    free(self);
    *self_p = NULL;
}

bool search_filter_is_empty(const search_filter_t *self)
{
    return self->root == NULL;
}

/*  ---- parsing ---- */

/*  Longest part of a member's name quoted in a reason. */
#define NAME_QUOTED_MAX 64

typedef struct {
    char path[512]; /* where the parser is, e.g. "AND[1].created_at.gte" */
    size_t path_len;
    size_t conditions; /* tests and AND/OR/NOT so far */
    bool reads_metadata;
    char *why;
    size_t why_len;
} parser_t;

__attribute__((format(printf, 2, 3))) static int s_fail(parser_t *p, const char *fmt, ...)
{
    if (!p->why || p->why_len == 0)
        return ENGRAM_EINVAL;
    int at = p->path_len ? snprintf(p->why, p->why_len, "%s: ", p->path) : 0;
    if (at >= 0 && (size_t)at < p->why_len) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(p->why + at, p->why_len - (size_t)at, fmt, args);
        va_end(args);
    }
    return ENGRAM_EINVAL;
}

static void s_path_append(parser_t *p, const char *text, size_t len)
{
    size_t room = sizeof p->path - 1 - p->path_len;
    if (len > room)
        len = room;
    memcpy(p->path + p->path_len, text, len);
    p->path_len += len;
    p->path[p->path_len] = '\0';
}

/*  Appends ".name" (or "name" at the top) to the path and returns the length to restore. The
 *  name is cut at NAME_QUOTED_MAX bytes (on a UTF-8 boundary) and control characters become
 *  '?', so a reason stays one short line. */
static size_t s_path_push_name(parser_t *p, const char *name)
{
    size_t mark = p->path_len;
    if (p->path_len)
        s_path_append(p, ".", 1);
    size_t len = strlen(name);
    bool cut = len > NAME_QUOTED_MAX;
    if (cut) {
        len = NAME_QUOTED_MAX;
        while (len > 0 && ((unsigned char)name[len] & 0xC0) == 0x80)
            len--;
    }
    for (size_t i = 0; i < len; i++) {
        char c = (unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i];
        s_path_append(p, &c, 1);
    }
    if (cut)
        s_path_append(p, "...", 3);
    return mark;
}

static size_t s_path_push_index(parser_t *p, size_t index)
{
    size_t mark = p->path_len;
    char text[32];
    int len = snprintf(text, sizeof text, "[%zu]", index);
    s_path_append(p, text, (size_t)len);
    return mark;
}

static void s_path_pop(parser_t *p, size_t mark)
{
    p->path_len = mark;
    p->path[mark] = '\0';
}

static int s_count_condition(parser_t *p)
{
    if (++p->conditions > SEARCH_FILTER_MAX_NODES)
        return s_fail(p, "more than %d conditions", SEARCH_FILTER_MAX_NODES);
    return 0;
}

static int s_node_new(node_kind_t kind, size_t n, filter_node_t **node_p)
{
    filter_node_t *node = calloc(1, sizeof *node);
    if (node && n)
        node->kids = calloc(n, sizeof *node->kids);
    if (!node || (n && !node->kids)) {
        free(node);
        *node_p = NULL;
        return ENGRAM_ENOMEM;
    }
    node->kind = kind;
    *node_p = node;
    return 0;
}

static bool s_is_scalar(const json_t *value)
{
    return json_is_string(value) || json_is_number(value) || json_is_boolean(value) ||
           json_is_null(value);
}

static bool s_is_time_field(field_t field)
{
    return field == FIELD_CREATED_AT || field == FIELD_UPDATED_AT;
}

/*  Reads digits[0..n) as a decimal number; false unless they are all ASCII digits. */
static bool s_digits(const char *digits, size_t n, int *out)
{
    int value = 0;
    for (size_t i = 0; i < n; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return false;
        value = value * 10 + (digits[i] - '0');
    }
    *out = value;
    return true;
}

static int s_days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

/*  Reads an ISO 8601 UTC time, "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS" with an optional
 *  fraction of a second (1 to 9 digits, read to the ms) and "Z" or "+00:00", into ms since the
 *  epoch. Parsed by hand (no locale, no strptime) and checked field by field, since timegm
 *  would quietly turn February 30 into March 2. */
static bool s_iso_time(const char *text, size_t len, double *ms)
{
    int year, month, day, hour = 0, minute = 0, second = 0, millis = 0;
    if (len < 10 || !s_digits(text, 4, &year) || text[4] != '-' || !s_digits(text + 5, 2, &month) ||
        text[7] != '-' || !s_digits(text + 8, 2, &day))
        return false;
    if (month < 1 || month > 12 || day < 1 || day > s_days_in_month(year, month))
        return false;
    size_t at = 10;
    if (len > at) {
        if (len < 19 || text[10] != 'T' || !s_digits(text + 11, 2, &hour) || text[13] != ':' ||
            !s_digits(text + 14, 2, &minute) || text[16] != ':' || !s_digits(text + 17, 2, &second))
            return false;
        if (hour > 23 || minute > 59 || second > 59)
            return false;
        at = 19;
        if (at < len && text[at] == '.') {
            size_t first = ++at;
            while (at < len && text[at] >= '0' && text[at] <= '9') {
                if (at - first < 3)
                    millis = millis * 10 + (text[at] - '0');
                at++;
            }
            size_t digits = at - first;
            if (digits == 0 || digits > 9)
                return false;
            for (size_t scale = digits; scale < 3; scale++)
                millis *= 10;
        }
        bool zulu = len - at == 1 && text[at] == 'Z';
        bool zero_offset = len - at == 6 && memcmp(text + at, "+00:00", 6) == 0;
        if (!zulu && !zero_offset)
            return false;
    }
    struct tm tm = {
        .tm_year = year - 1900,
        .tm_mon = month - 1,
        .tm_mday = day,
        .tm_hour = hour,
        .tm_min = minute,
        .tm_sec = second,
    };
    time_t seconds = timegm(&tm);
    *ms = (double)seconds * 1000.0 + millis;
    return true;
}

/*  A time in a filter: a number of ms, or an ISO 8601 UTC string. *out gets a new number. */
static int s_time_value(parser_t *p, json_t *value, json_t **out)
{
    double ms;
    if (json_is_number(value))
        ms = json_number_value(value);
    else if (!json_is_string(value) ||
             !s_iso_time(json_string_value(value), json_string_length(value), &ms))
        return s_fail(p, "not a time");
    *out = json_real(ms);
    return *out ? 0 : ENGRAM_ENOMEM;
}

/*  The value of an in or nin test: an array of values (times for a time field). *out gets a
 *  new reference. */
static int s_list_value(parser_t *p, field_t field, json_t *value, json_t **out)
{
    if (!json_is_array(value))
        return s_fail(p, "not an array");
    if (!s_is_time_field(field)) {
        size_t index;
        json_t *item;
        json_array_foreach(value, index, item)
        {
            if (!s_is_scalar(item)) {
                size_t mark = s_path_push_index(p, index);
                int rc = s_fail(p, "not a string, number, boolean or null");
                s_path_pop(p, mark);
                return rc;
            }
        }
        *out = json_incref(value);
        return 0;
    }
    json_t *times = json_array();
    if (!times)
        return ENGRAM_ENOMEM;
    size_t index;
    json_t *item;
    json_array_foreach(value, index, item)
    {
        size_t mark = s_path_push_index(p, index);
        json_t *time = NULL;
        int rc = s_time_value(p, item, &time);
        s_path_pop(p, mark);
        if (rc == 0 && json_array_append_new(times, time) != 0)
            rc = ENGRAM_ENOMEM;
        if (rc) {
            json_decref(times);
            return rc;
        }
    }
    *out = times;
    return 0;
}

static int s_fold(const uint8_t *text, size_t len, uint8_t **folded, size_t *folded_len)
{
    utf8proc_uint8_t *out = NULL;
    utf8proc_ssize_t n = utf8proc_map(text, (utf8proc_ssize_t)len, &out,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD);
    if (n < 0)
        return n == UTF8PROC_ERROR_NOMEM ? ENGRAM_ENOMEM : ENGRAM_EINVAL;
    *folded = out;
    *folded_len = (size_t)n;
    return 0;
}

/*  Checks and keeps the value of one test (the path names the operator). */
static int s_test_value(parser_t *p, filter_node_t *test, json_t *value)
{
    bool time = s_is_time_field(test->field);
    switch (test->op) {
    case OP_IN:
    case OP_NIN:
        return s_list_value(p, test->field, value, &test->value);
    case OP_CONTAINS:
    case OP_ICONTAINS:
        if (time)
            return s_fail(p, "not an operator for times");
        if (test->op == OP_CONTAINS && !s_is_scalar(value))
            return s_fail(p, "not a string, number, boolean or null");
        if (test->op == OP_ICONTAINS) {
            if (!json_is_string(value))
                return s_fail(p, "not a string");
            int rc = s_fold((const uint8_t *)json_string_value(value), json_string_length(value),
                            &test->folded, &test->folded_len);
            if (rc)
                return rc == ENGRAM_ENOMEM ? rc : s_fail(p, "not UTF-8");
        }
        break;
    case OP_GT:
    case OP_GTE:
    case OP_LT:
    case OP_LTE:
        if (!time && !json_is_number(value) && !json_is_string(value))
            return s_fail(p, "not a number or string");
        break;
    default: /* eq, ne */
        if (!time && !s_is_scalar(value))
            return s_fail(p, "not a string, number, boolean or null");
        break;
    }
    if (time)
        return s_time_value(p, value, &test->value);
    test->value = json_incref(value);
    return 0;
}

static const struct {
    const char *name;
    op_t op;
} s_ops[] = {
    {"eq", OP_EQ},
    {"ne", OP_NE},
    {"in", OP_IN},
    {"nin", OP_NIN},
    {"gt", OP_GT},
    {"gte", OP_GTE},
    {"lt", OP_LT},
    {"lte", OP_LTE},
    {"contains", OP_CONTAINS},
    {"icontains", OP_ICONTAINS},
};

/*  One test of field (name for metadata) with operator op on value. */
static int s_parse_test(parser_t *p, field_t field, const char *name, op_t op, json_t *value,
                        filter_node_t **node_p)
{
    int rc = s_count_condition(p);
    if (rc == 0)
        rc = s_node_new(NODE_TEST, 0, node_p);
    if (rc)
        return rc;
    filter_node_t *test = *node_p;
    test->field = field;
    test->name = name;
    test->op = op;
    if (op != OP_PRESENT)
        rc = s_test_value(p, test, value);
    if (rc) {
        s_node_destroy(test);
        *node_p = NULL;
    }
    return rc;
}

/*  {FIELD: VALUE}, {FIELD: "*"} or {FIELD: {OP: VALUE, ...}} (the path names FIELD). */
static int s_parse_field(parser_t *p, field_t field, const char *name, json_t *value,
                         filter_node_t **node_p)
{
    if (field == FIELD_METADATA)
        p->reads_metadata = true;
    if (json_is_string(value) && strcmp(json_string_value(value), "*") == 0 &&
        json_string_length(value) == 1)
        return s_parse_test(p, field, name, OP_PRESENT, NULL, node_p);
    if (!json_is_object(value))
        return s_parse_test(p, field, name, OP_EQ, value, node_p);
    size_t n = json_object_size(value);
    if (n == 0)
        return s_fail(p, "no operator");
    filter_node_t *all = NULL;
    int rc = s_node_new(NODE_ALL, n, &all);
    const char *op_name;
    json_t *op_value;
    json_object_foreach(value, op_name, op_value)
    {
        if (rc)
            break;
        size_t mark = s_path_push_name(p, op_name);
        size_t i = 0;
        while (i < sizeof s_ops / sizeof *s_ops && strcmp(s_ops[i].name, op_name) != 0)
            i++;
        if (i == sizeof s_ops / sizeof *s_ops)
            rc = s_fail(p, "unknown operator");
        else
            rc = s_parse_test(p, field, name, s_ops[i].op, op_value, &all->kids[all->n++]);
        s_path_pop(p, mark);
    }
    if (rc)
        s_node_destroy(all);
    *node_p = rc ? NULL : all;
    return rc;
}

static int s_parse_object(parser_t *p, json_t *object, int depth, bool in_metadata,
                          filter_node_t **node_p);

/*  {"AND": [F, ...]}, {"OR": [...]}, {"NOT": [...]} or {"NOT": F} (the path names the
 *  combinator). */
static int s_parse_combinator(parser_t *p, node_kind_t kind, json_t *value, int depth,
                              bool in_metadata, filter_node_t **node_p)
{
    int rc = s_count_condition(p);
    if (rc)
        return rc;
    bool single = kind == NODE_NONE && json_is_object(value);
    if (!single && !json_is_array(value))
        return s_fail(p, kind == NODE_NONE ? "not an array or object" : "not an array");
    size_t n = single ? 1 : json_array_size(value);
    if (n == 0)
        return s_fail(p, "empty");
    filter_node_t *node = NULL;
    rc = s_node_new(kind, n, &node);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *item = single ? value : json_array_get(value, i);
        size_t mark = single ? p->path_len : s_path_push_index(p, i);
        if (!json_is_object(item))
            rc = s_fail(p, "not an object");
        else
            rc = s_parse_object(p, item, depth + 1, in_metadata, &node->kids[node->n++]);
        s_path_pop(p, mark);
    }
    if (rc)
        s_node_destroy(node);
    *node_p = rc ? NULL : node;
    return rc;
}

static field_t s_builtin(const char *name)
{
    static const struct {
        const char *name;
        field_t field;
    } builtins[] = {
        {"author", FIELD_AUTHOR},
        {"user", FIELD_USER},
        {"key", FIELD_KEY},
        {"created_at", FIELD_CREATED_AT},
        {"updated_at", FIELD_UPDATED_AT},
    };
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
        if (strcmp(builtins[i].name, name) == 0)
            return builtins[i].field;
    return FIELD_METADATA;
}

static int s_parse_member(parser_t *p, const char *name, json_t *value, int depth, bool in_metadata,
                          filter_node_t **node_p)
{
    if (strcmp(name, "AND") == 0)
        return s_parse_combinator(p, NODE_ALL, value, depth, in_metadata, node_p);
    if (strcmp(name, "OR") == 0)
        return s_parse_combinator(p, NODE_ANY, value, depth, in_metadata, node_p);
    if (strcmp(name, "NOT") == 0)
        return s_parse_combinator(p, NODE_NONE, value, depth, in_metadata, node_p);
    if (in_metadata)
        return s_parse_field(p, FIELD_METADATA, name, value, node_p);
    if (strcmp(name, "metadata") == 0) {
        if (!json_is_object(value))
            return s_fail(p, "not an object");
        return s_parse_object(p, value, depth + 1, true, node_p);
    }
    return s_parse_field(p, s_builtin(name), name, value, node_p);
}

/*  An object of conditions at nesting depth (the top is 1), all of which must hold. */
static int s_parse_object(parser_t *p, json_t *object, int depth, bool in_metadata,
                          filter_node_t **node_p)
{
    *node_p = NULL;
    if (depth > SEARCH_FILTER_MAX_DEPTH)
        return s_fail(p, "nested deeper than %d filters", SEARCH_FILTER_MAX_DEPTH);
    size_t n = json_object_size(object);
    if (n == 0)
        return depth == 1 ? 0 : s_fail(p, "an empty filter");
    if (n == 1) {
        const char *name = json_object_iter_key(json_object_iter(object));
        size_t mark = s_path_push_name(p, name);
        int rc = s_parse_member(p, name, json_object_get(object, name), depth, in_metadata, node_p);
        s_path_pop(p, mark);
        return rc;
    }
    filter_node_t *all = NULL;
    int rc = s_node_new(NODE_ALL, n, &all);
    const char *name;
    json_t *value;
    json_object_foreach(object, name, value)
    {
        if (rc)
            break;
        size_t mark = s_path_push_name(p, name);
        rc = s_parse_member(p, name, value, depth, in_metadata, &all->kids[all->n++]);
        s_path_pop(p, mark);
    }
    if (rc)
        s_node_destroy(all);
    *node_p = rc ? NULL : all;
    return rc;
}

int search_filter_parse(const char *json, size_t len, search_filter_t **self_p, char *why,
                        size_t why_len)
{
    *self_p = NULL;
    parser_t p = {.why = why, .why_len = why_len};
    if (why && why_len)
        why[0] = '\0';
    if (len > SEARCH_FILTER_MAX_BYTES)
        return s_fail(&p, "filter longer than %d bytes", SEARCH_FILTER_MAX_BYTES);
    json_error_t error;
    json_t *doc = json_loadb(json, len,
                             JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL |
                                 JSON_ALLOW_NUL,
                             &error);
    if (!doc) {
        /* jansson's own text quotes the input: say where instead. */
        enum json_error_code code = json_error_code(&error);
        if (code == json_error_out_of_memory)
            return ENGRAM_ENOMEM;
        return s_fail(&p, "%s at line %d, column %d",
                      code == json_error_duplicate_key ? "a member given twice" : "not valid JSON",
                      error.line, error.column);
    }
    search_filter_t *self = calloc(1, sizeof *self);
    if (!self) {
        json_decref(doc);
        return ENGRAM_ENOMEM;
    }
    self->doc = doc;
    int rc = json_is_object(doc) ? s_parse_object(&p, doc, 1, false, &self->root)
                                 : s_fail(&p, "the filter is not a JSON object");
    self->reads_metadata = p.reads_metadata;
    if (rc)
        search_filter_destroy(&self);
    *self_p = self;
    return rc;
}

/*  ---- evaluation ---- */

/*  A field's value in one memory. */
typedef struct {
    enum { VALUE_MISSING, VALUE_JSON, VALUE_TEXT, VALUE_TIME } kind;
    const json_t *json; /* VALUE_JSON */
    const char *text;   /* VALUE_TEXT */
    size_t text_len;
    double ms; /* VALUE_TIME */
} field_value_t;

static field_value_t s_field_value(const filter_node_t *test, const search_record_t *record,
                                   const json_t *meta)
{
    field_value_t value = {.kind = VALUE_MISSING};
    const char *text = NULL;
    switch (test->field) {
    case FIELD_AUTHOR:
        text = record->author;
        break;
    case FIELD_USER:
        text = record->user;
        break;
    case FIELD_KEY:
        text = record->key;
        break;
    case FIELD_CREATED_AT:
    case FIELD_UPDATED_AT:
        value.kind = VALUE_TIME;
        value.ms = (double)(test->field == FIELD_CREATED_AT ? record->created_at_ms
                                                            : record->updated_at_ms);
        return value;
    case FIELD_METADATA:
        value.json = meta ? json_object_get(meta, test->name) : NULL;
        value.kind = value.json ? VALUE_JSON : VALUE_MISSING;
        return value;
    }
    if (text) {
        value.kind = VALUE_TEXT;
        value.text = text;
        value.text_len = strlen(text);
    }
    return value;
}

static int s_bytes_cmp(const char *a, size_t a_len, const char *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    if (c)
        return c < 0 ? -1 : 1;
    return a_len < b_len ? -1 : a_len > b_len;
}

static int s_number_cmp(double a, double b)
{
    return a < b ? -1 : a > b;
}

/*  Orders value against want (a filter's scalar): false when they are of different kinds or
 *  of a kind with no order. */
static bool s_order(field_value_t value, const json_t *want, int *order)
{
    if (value.kind == VALUE_JSON && json_is_number(value.json) && json_is_number(want)) {
        *order = s_number_cmp(json_number_value(value.json), json_number_value(want));
        return true;
    }
    if (value.kind == VALUE_JSON && json_is_string(value.json) && json_is_string(want)) {
        *order = s_bytes_cmp(json_string_value(value.json), json_string_length(value.json),
                             json_string_value(want), json_string_length(want));
        return true;
    }
    if (value.kind == VALUE_TEXT && json_is_string(want)) {
        *order = s_bytes_cmp(value.text, value.text_len, json_string_value(want),
                             json_string_length(want));
        return true;
    }
    if (value.kind == VALUE_TIME) { /* parsing made every time value a number */
        *order = s_number_cmp(value.ms, json_number_value(want));
        return true;
    }
    return false;
}

/*  JSON equality of a metadata value and a filter's scalar (arrays and objects equal none). */
static bool s_json_equal(const json_t *have, const json_t *want)
{
    if (json_is_number(have) && json_is_number(want))
        return json_number_value(have) == json_number_value(want);
    if (json_is_string(have) && json_is_string(want))
        return s_bytes_cmp(json_string_value(have), json_string_length(have),
                           json_string_value(want), json_string_length(want)) == 0;
    return (json_is_true(have) && json_is_true(want)) ||
           (json_is_false(have) && json_is_false(want)) ||
           (json_is_null(have) && json_is_null(want));
}

static bool s_equal(field_value_t value, const json_t *want)
{
    if (value.kind == VALUE_JSON)
        return s_json_equal(value.json, want);
    int order;
    return value.kind != VALUE_MISSING && s_order(value, want, &order) && order == 0;
}

static bool s_has_substring(const char *text, size_t len, const char *part, size_t part_len)
{
    return part_len == 0 || memmem(text, len, part, part_len) != NULL;
}

static bool s_contains(field_value_t value, const json_t *want)
{
    if (value.kind == VALUE_TEXT)
        return json_is_string(want) &&
               s_has_substring(value.text, value.text_len, json_string_value(want),
                               json_string_length(want));
    if (value.kind != VALUE_JSON)
        return false;
    if (json_is_string(value.json))
        return json_is_string(want) &&
               s_has_substring(json_string_value(value.json), json_string_length(value.json),
                               json_string_value(want), json_string_length(want));
    size_t index; /* not an array: no items */
    const json_t *item;
    json_array_foreach(value.json, index, item)
    {
        if (s_json_equal(item, want))
            return true;
    }
    return false;
}

/*  Whether text, case-folded, holds the folded needle (whole: equals it). Text that cannot be
 *  folded (not UTF-8, or no memory for its fold) holds nothing. */
static bool s_folded_holds(const char *text, size_t len, const filter_node_t *test, bool whole)
{
    uint8_t *folded = NULL;
    size_t folded_len = 0;
    if (s_fold((const uint8_t *)text, len, &folded, &folded_len) != 0)
        return false;
    bool holds =
        whole ? folded_len == test->folded_len && memcmp(folded, test->folded, folded_len) == 0
              : s_has_substring((const char *)folded, folded_len, (const char *)test->folded,
                                test->folded_len);
    free(folded);
    return holds;
}

static bool s_icontains(field_value_t value, const filter_node_t *test)
{
    if (value.kind == VALUE_TEXT)
        return s_folded_holds(value.text, value.text_len, test, false);
    if (value.kind != VALUE_JSON)
        return false;
    if (json_is_string(value.json))
        return s_folded_holds(json_string_value(value.json), json_string_length(value.json), test,
                              false);
    size_t index; /* not an array: no items */
    const json_t *item;
    json_array_foreach(value.json, index, item)
    {
        if (json_is_string(item) &&
            s_folded_holds(json_string_value(item), json_string_length(item), test, true))
            return true;
    }
    return false;
}

static bool s_in(field_value_t value, const json_t *list)
{
    size_t index;
    const json_t *item;
    json_array_foreach(list, index, item)
    {
        if (s_equal(value, item))
            return true;
    }
    return false;
}

static bool s_test(const filter_node_t *test, const search_record_t *record, const json_t *meta)
{
    field_value_t value = s_field_value(test, record, meta);
    int order;
    switch (test->op) {
    case OP_PRESENT:
        return value.kind != VALUE_MISSING &&
               !(value.kind == VALUE_JSON && json_is_null(value.json));
    case OP_EQ:
        return s_equal(value, test->value);
    case OP_NE:
        return !s_equal(value, test->value);
    case OP_IN:
        return s_in(value, test->value);
    case OP_NIN:
        return !s_in(value, test->value);
    case OP_GT:
        return s_order(value, test->value, &order) && order > 0;
    case OP_GTE:
        return s_order(value, test->value, &order) && order >= 0;
    case OP_LT:
        return s_order(value, test->value, &order) && order < 0;
    case OP_LTE:
        return s_order(value, test->value, &order) && order <= 0;
    case OP_CONTAINS:
        return s_contains(value, test->value);
    case OP_ICONTAINS:
        return s_icontains(value, test);
    }
    return false;
}

static bool s_match(const filter_node_t *node, const search_record_t *record, const json_t *meta)
{
    switch (node->kind) {
    case NODE_TEST:
        return s_test(node, record, meta);
    case NODE_ALL:
        for (size_t i = 0; i < node->n; i++)
            if (!s_match(node->kids[i], record, meta))
                return false;
        return true;
    case NODE_ANY:
        for (size_t i = 0; i < node->n; i++)
            if (s_match(node->kids[i], record, meta))
                return true;
        return false;
    case NODE_NONE:
        for (size_t i = 0; i < node->n; i++)
            if (s_match(node->kids[i], record, meta))
                return false;
        return true;
    }
    return false;
}

bool search_filter_match(const search_filter_t *self, const search_record_t *record)
{
    if (!self->root)
        return true;
    json_t *meta = NULL;
    if (self->reads_metadata && record->meta_json && record->meta_json[0]) {
        meta = json_loads(record->meta_json, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
        if (meta && !json_is_object(meta)) {
            json_decref(meta);
            meta = NULL;
        }
    }
    bool match = s_match(self->root, record, meta);
    json_decref(meta);
    return match;
}
