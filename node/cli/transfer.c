/*  Moving a scope's memory out and in: `engram export SCOPE` and `engram import FILE SCOPE`, in
 *  engram's JSON lines (the default; --format jsonl) or as the official MCP memory server's
 *  file (--mcp-memory: mcp_graph.c).
 *
 *  engram's JSON lines: one object a line, one per object of the scope, in key order:
 *      {"scope": S, "key": K, "type": "reg" | "set" | "log", "values": [VERSION, ...]}
 *      {"scope": S, "key": K, "type": "counter", "value": N}
 *  A VERSION is a register's version (the winner first, then its concurrent siblings), a set's
 *  element (with the metadata and provenance of one of its adds) or a log's entry (in log
 *  order), with the fields every JSON form of an item has (cli_json_item): value, meta (null:
 *  none), author, user, agents, resources, hlc, created_hlc, expires_at_ms, and node and n (the
 *  version's dot). A value that is not UTF-8, or holds a NUL, is written in base64 with
 *  "encoding": "base64". A counter is its value as the exporting agent reads it (the node
 *  keeps no provenance per contribution to export). Export reads what the agent may read, page
 *  by page: it is not a snapshot of a moment (engram snapshot is).
 *
 *  Import writes each object into SCOPE through the node, as the calling agent: identity comes
 *  from the agent's key, never from the file, so every version written is the importer's, with
 *  a new dot and stamp. What the file says of a version's origin is kept as data, in the
 *  metadata of the version written, under "engram_origin": the line's scope and the version's
 *  author, user, agents, resources, hlc, created_hlc, node and n. Metadata that has an
 *  "engram_origin" already (imported before) keeps it, so the first origin travels on;
 *  metadata that is not a JSON object is kept under "engram_meta". A register gets its winner
 *  only (one agent's write cannot make concurrent siblings), a set each element, a log each
 *  entry in order, a counter its value added; an expiry still ahead becomes a TTL, a version
 *  already expired is skipped. Sources are not declared again: they would make readers of
 *  SCOPE need read access to the resources of where the data came from (the original scope
 *  among them); the origin records them.
 *
 *  Every line is checked before anything is written: JSON, its fields and their types, a key
 *  on one line only, a value with its metadata within ENGRAM_MAX_VALUE_BYTES, and SCOPE holding
 *  none of the file's keys with another type. A bad line is refused with its number and nothing
 *  is written. What the node alone can refuse (a key it does not take, a smaller value limit,
 *  access, a write policy) stops the import at that line: the lines before it stay written, and
 *  the message says how many.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crdt/array.h"
#include "node/cli/cli.h"
#include "node/cli/mcp.h"

#define S_READ_CHUNK 65536
#define S_ORIGIN     "engram_origin"
#define S_META       "engram_meta"

/*  The members a line and a version may have. */
static const char *const s_line_fields[] = {"scope", "key", "type", "values", "value", NULL};
static const char *const s_version_fields[] = {
    "value", "encoding",    "meta",          "author", "user", "agents", "resources",
    "hlc",   "created_hlc", "expires_at_ms", "node",   "n",    NULL};
/*  The fields of a version its origin records (with the line's scope). */
static const char *const s_origin_fields[] = {"author",      "user", "agents", "resources", "hlc",
                                              "created_hlc", "node", "n",      NULL};

int cli_check_transfer(const cli_command_t *command, const cli_opts_t *opts)
{
    if ((opts->given & CLI_OPT_MCP_MEMORY) && (opts->given & CLI_OPT_FORMAT))
        return cli_usage(command, "--mcp-memory and --format both name the file's format");
    if ((opts->given & CLI_OPT_FORMAT) && strcmp(opts->format, "jsonl") != 0)
        return cli_usage(command,
                         "--format takes jsonl (engram's JSON lines; --mcp-memory is the "
                         "official MCP memory server's file), not '%s'",
                         opts->format);
    return 0;
}

/*  The whole of path ("-": stdin) into *text, NUL-terminated. 0 or an ENGRAM_E* code. */
static int s_read_file(const char *path, char **text, size_t *len)
{
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!in)
        return cli_fail(ENGRAM_ENOTFOUND, "%s: %s", path, strerror(errno));
    size_t cap = S_READ_CHUNK, n = 0;
    char *buf = malloc(cap + 1);
    int rc = buf ? 0 : ENGRAM_ENOMEM;
    while (rc == 0) {
        if (n == cap) {
            char *grown = realloc(buf, 2 * cap + 1);
            if (!grown) {
                rc = ENGRAM_ENOMEM;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, in);
        n += got;
        if (got == 0) {
            if (ferror(in))
                rc = cli_fail(ENGRAM_EIO, "reading %s: %s", path, strerror(errno));
            break;
        }
    }
    if (in != stdin)
        fclose(in);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

/*  --- export ------------------------------------------------------------------------------ */

/*  A version as the file holds it. Caller owns return value; NULL when memory runs out. */
static json_t *s_version_json(const engram_item_t *item)
{
    json_t *version = cli_json_item(item);
    bool text = item->len == 0 || !memchr(item->value, '\0', item->len);
    json_t *value = text ? json_stringn((const char *)item->value, item->len) : NULL;
    if (!value) { /* not UTF-8 */
        text = false;
        size_t cap = sodium_base64_encoded_len(item->len, sodium_base64_VARIANT_ORIGINAL);
        char *base64 = malloc(cap);
        if (base64)
            value = json_string(sodium_bin2base64(base64, cap, item->value, item->len,
                                                  sodium_base64_VARIANT_ORIGINAL));
        free(base64);
    }
    if (!version || !value) {
        json_decref(version);
        json_decref(value);
        return NULL;
    }
    if (json_object_set_new(version, "value", value) != 0 ||
        (!text && json_object_set_new(version, "encoding", json_string("base64")) != 0)) {
        json_decref(version);
        return NULL;
    }
    return version;
}

/*  The line of one listed object, written to out; an object gone since it was listed is left
 *  out. 0 or an ENGRAM_E* code. */
static int s_export_object(engram_t *engram, const char *scope, const engram_item_t *listed,
                           FILE *out)
{
    engram_result_t *result = NULL;
    const char *type = listed->type;
    bool counter = strcmp(type, "counter") == 0;
    int rc = strcmp(type, "reg") == 0   ? engram_get(engram, scope, listed->key, NULL, 0, &result)
             : strcmp(type, "set") == 0 ? engram_set_members(engram, scope, listed->key, &result)
             : strcmp(type, "log") == 0 ? engram_log_range(engram, scope, listed->key, &result)
             : counter
                 ? engram_counter_get(engram, scope, listed->key, &result)
                 : cli_fail(ENGRAM_EDECODE, "'%s' has an unknown type '%s'", listed->key, type);
    if (rc == ENGRAM_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    json_t *line = json_pack("{s:o, s:o, s:s}", "scope", cli_json_str(scope), "key",
                             cli_json_str(listed->key), "type", type);
    if (counter) {
        line = cli_json_merge(line, json_pack("{s:I}", "value", (json_int_t)result->number));
    } else {
        json_t *values = json_array();
        for (size_t i = 0; i < result->nitems; i++)
            values = cli_json_append(values, s_version_json(&result->items[i]));
        line = cli_json_merge(line, json_pack("{s:o}", "values", values));
    }
    engram_result_destroy(&result);
    if (!line)
        return cli_fail(ENGRAM_ENOMEM, "exporting '%s'", listed->key);
    if (json_dumpf(line, out, JSON_COMPACT) != 0 || fputc('\n', out) == EOF)
        rc = cli_fail(ENGRAM_EIO, "writing the export: %s", strerror(errno));
    json_decref(line);
    return rc;
}

/*  Calls each(arg, item) for every key of scope the agent may read, page by page, until one
 *  returns other than 0. 0 or the first code. */
static int s_each_key(engram_t *engram, const char *scope,
                      int (*each)(void *arg, const engram_item_t *listed), void *arg)
{
    char *cursor = NULL;
    int rc = 0;
    do {
        engram_result_t *page = NULL;
        rc = engram_list(engram, scope, NULL, cursor, 0, &page);
        free(cursor);
        cursor = NULL;
        for (size_t i = 0; rc == 0 && i < page->nitems; i++)
            rc = each(arg, &page->items[i]);
        if (rc == 0 && page->next_cursor[0] && !(cursor = strdup(page->next_cursor)))
            rc = cli_fail(ENGRAM_ENOMEM, "listing %s", scope);
        engram_result_destroy(&page);
    } while (rc == 0 && cursor);
    return rc;
}

typedef struct {
    engram_t *engram;
    const char *scope;
    FILE *out;
} s_export_t;

static int s_export_each(void *arg, const engram_item_t *listed)
{
    s_export_t *e = arg;
    return s_export_object(e->engram, e->scope, listed, e->out);
}

int cli_cmd_export(engram_t *engram, const cli_opts_t *opts)
{
    if (opts->given & CLI_OPT_MCP_MEMORY)
        return mcp_graph_export(engram, opts->args[0], stdout);
    s_export_t e = {engram, opts->args[0], stdout};
    return s_each_key(engram, opts->args[0], s_export_each, &e);
}

/*  --- import ------------------------------------------------------------------------------ */

/*  One write an import makes, prepared from a checked line. */
typedef struct {
    size_t line;      /* its number in the file */
    const char *key;  /* borrowed from the line's JSON */
    const char *type; /* likewise */
    uint8_t *value;   /* owned: the payload (set: the element, NUL-terminated) */
    size_t len;
    char *meta;      /* owned: the metadata written, the origin in it */
    uint64_t ttl_ms; /* 0: never expires */
    int64_t amount;  /* counter */
} s_write_t;

typedef struct {
    s_write_t *writes;
    size_t n, cap;
    size_t skipped; /* versions expired before the import */
} s_plan_t;

static void s_plan_fini(s_plan_t *plan)
{
    for (size_t i = 0; i < plan->n; i++) {
        free(plan->writes[i].value);
        free(plan->writes[i].meta);
    }
    free(plan->writes);
}

static s_write_t *s_plan_add(s_plan_t *plan)
{
    if (crdt_array_grow((void **)&plan->writes, &plan->cap, plan->n + 1, sizeof *plan->writes))
        return NULL;
    s_write_t *w = &plan->writes[plan->n++];
    memset(w, 0, sizeof *w);
    return w;
}

/*  Whether object has only members named in fields; *unknown gets the first other one. */
static bool s_known_fields(json_t *object, const char *const *fields, const char **unknown)
{
    const char *name;
    json_t *member;
    json_object_foreach(object, name, member)
    {
        size_t i = 0;
        while (fields[i] && strcmp(fields[i], name) != 0)
            i++;
        if (!fields[i]) {
            *unknown = name;
            return false;
        }
    }
    return true;
}

static bool s_strings(json_t *array)
{
    if (!json_is_array(array))
        return false;
    for (size_t i = 0; i < json_array_size(array); i++)
        if (!json_is_string(json_array_get(array, i)))
            return false;
    return true;
}

/*  Whether version (of a line of type) is one an import takes; if not, why says what is wrong. */
static bool s_version_ok(json_t *version, const char *type, char *why, size_t why_len)
{
    static const char *const texts[] = {"author", "user", "node", NULL};
    static const char *const lists[] = {"agents", "resources", NULL};
    static const char *const counts[] = {"hlc", "created_hlc", "expires_at_ms", "n", NULL};
    const char *unknown = NULL;
    json_t *encoding = json_object_get(version, "encoding");
    if (!json_is_object(version))
        snprintf(why, why_len, "each of \"values\" is an object");
    else if (!s_known_fields(version, s_version_fields, &unknown))
        snprintf(why, why_len, "a version has an unknown field \"%s\"", unknown);
    else if (!json_is_string(json_object_get(version, "value")))
        snprintf(why, why_len, "a version needs \"value\", a string");
    else if (encoding &&
             (!json_is_string(encoding) || strcmp(json_string_value(encoding), "base64") != 0))
        snprintf(why, why_len, "\"encoding\" can only be \"base64\"");
    else if (encoding && strcmp(type, "set") == 0)
        snprintf(why, why_len, "a set's element is text: it has no \"encoding\"");
    else
        why[0] = '\0';
    for (size_t i = 0; !why[0] && texts[i]; i++) {
        json_t *field = json_object_get(version, texts[i]);
        if (field && !json_is_string(field))
            snprintf(why, why_len, "\"%s\" is a string", texts[i]);
    }
    for (size_t i = 0; !why[0] && lists[i]; i++) {
        json_t *field = json_object_get(version, lists[i]);
        if (field && !s_strings(field))
            snprintf(why, why_len, "\"%s\" is an array of strings", lists[i]);
    }
    for (size_t i = 0; !why[0] && counts[i]; i++) {
        json_t *field = json_object_get(version, counts[i]);
        if (field && (!json_is_integer(field) || json_integer_value(field) < 0))
            snprintf(why, why_len, "\"%s\" is a whole number", counts[i]);
    }
    return !why[0];
}

/*  The origin of version, of a line of scope (NULL: none given): the line's scope and the
 *  version's provenance fields. Caller owns return value; NULL when memory runs out. */
static json_t *s_origin(json_t *version, json_t *scope)
{
    json_t *origin = json_object();
    if (origin && scope && json_object_set(origin, "scope", scope) != 0) {
        json_decref(origin);
        return NULL;
    }
    for (size_t i = 0; origin && s_origin_fields[i]; i++) {
        json_t *field = json_object_get(version, s_origin_fields[i]);
        if (field && json_object_set(origin, s_origin_fields[i], field) != 0) {
            json_decref(origin);
            return NULL;
        }
    }
    return origin;
}

/*  The metadata an import writes for version: the version's, kept whole under S_META unless it
 *  is an object, with its origin added under S_ORIGIN unless it has one. Caller owns return
 *  value; NULL when memory runs out. */
static char *s_meta_with_origin(json_t *version, json_t *scope)
{
    json_t *meta = json_object_get(version, "meta");
    json_t *out = json_is_object(meta) ? json_copy(meta) : json_object();
    bool ok = out != NULL;
    if (ok && meta && !json_is_object(meta) && !json_is_null(meta))
        ok = json_object_set(out, S_META, meta) == 0;
    if (ok && !json_object_get(out, S_ORIGIN))
        ok = json_object_set_new(out, S_ORIGIN, s_origin(version, scope)) == 0;
    char *text = ok ? json_dumps(out, JSON_COMPACT) : NULL;
    json_decref(out);
    return text;
}

/*  Prepares the writes of version into plan. 0, ENGRAM_EINVAL with the reason in why, or
 *  ENGRAM_ENOMEM. */
static int s_plan_version(s_plan_t *plan, size_t number, json_t *line, json_t *version,
                          uint64_t now_ms, char *why, size_t why_len)
{
    const char *type = json_string_value(json_object_get(line, "type"));
    if (!s_version_ok(version, type, why, why_len))
        return ENGRAM_EINVAL;
    json_t *expires = json_object_get(version, "expires_at_ms");
    uint64_t expires_at = expires ? (uint64_t)json_integer_value(expires) : 0;
    if (expires_at && expires_at <= now_ms) {
        plan->skipped++;
        return 0;
    }
    json_t *value = json_object_get(version, "value");
    const char *text = json_string_value(value);
    size_t text_len = json_string_length(value);
    if (strcmp(type, "set") == 0 && (text_len == 0 || memchr(text, '\0', text_len))) {
        snprintf(why, why_len, "a set's element is text, not empty, without NUL");
        return ENGRAM_EINVAL;
    }
    s_write_t *w = s_plan_add(plan);
    if (!w)
        return ENGRAM_ENOMEM;
    w->line = number;
    w->key = json_string_value(json_object_get(line, "key"));
    w->type = type;
    w->ttl_ms = expires_at ? expires_at - now_ms : 0;
    w->meta = s_meta_with_origin(version, json_object_get(line, "scope"));
    w->value = malloc(text_len + 1);
    if (!w->meta || !w->value)
        return ENGRAM_ENOMEM;
    if (!json_object_get(version, "encoding")) {
        memcpy(w->value, text, text_len + 1);
        w->len = text_len;
    } else if (sodium_base642bin(w->value, text_len + 1, text, text_len, NULL, &w->len, NULL,
                                 sodium_base64_VARIANT_ORIGINAL) != 0) {
        snprintf(why, why_len, "\"value\" is not base64");
        return ENGRAM_EINVAL;
    }
    if (w->len + strlen(w->meta) > ENGRAM_MAX_VALUE_BYTES) {
        snprintf(why, why_len,
                 "the value and its metadata (with its origin) have %zu bytes; a "
                 "node takes at most %d",
                 w->len + strlen(w->meta), ENGRAM_MAX_VALUE_BYTES);
        return ENGRAM_EINVAL;
    }
    return 0;
}

/*  Checks one line and prepares its writes into plan; seen maps each key to its line. */
static int s_plan_line(s_plan_t *plan, json_t *seen, size_t number, json_t *line, uint64_t now_ms,
                       char *why, size_t why_len)
{
    const char *unknown = NULL;
    if (!json_is_object(line)) {
        snprintf(why, why_len, "not a JSON object");
        return ENGRAM_EINVAL;
    }
    if (!s_known_fields(line, s_line_fields, &unknown)) {
        snprintf(why, why_len, "unknown field \"%s\"", unknown);
        return ENGRAM_EINVAL;
    }
    json_t *key = json_object_get(line, "key");
    const char *type = json_string_value(json_object_get(line, "type"));
    json_t *scope = json_object_get(line, "scope");
    if (!json_is_string(key) || json_string_length(key) == 0 ||
        strlen(json_string_value(key)) != json_string_length(key)) {
        snprintf(why, why_len, "\"key\" is a string, not empty, without NUL");
        return ENGRAM_EINVAL;
    }
    if (scope && !json_is_string(scope)) {
        snprintf(why, why_len, "\"scope\" is a string");
        return ENGRAM_EINVAL;
    }
    if (!type || (strcmp(type, "reg") && strcmp(type, "set") && strcmp(type, "log") &&
                  strcmp(type, "counter"))) {
        snprintf(why, why_len, "\"type\" is reg, set, counter or log");
        return ENGRAM_EINVAL;
    }
    json_t *before = json_object_get(seen, json_string_value(key));
    if (before) {
        snprintf(why, why_len, "key '%s' is on line %" JSON_INTEGER_FORMAT " already",
                 json_string_value(key), json_integer_value(before));
        return ENGRAM_EINVAL;
    }
    if (json_object_set_new(seen, json_string_value(key), json_integer((json_int_t)number)) != 0)
        return ENGRAM_ENOMEM;
    json_t *values = json_object_get(line, "values");
    json_t *value = json_object_get(line, "value");
    if (strcmp(type, "counter") == 0) {
        if (!json_is_integer(value) || values) {
            snprintf(why, why_len, "a counter has \"value\", a whole number, and no \"values\"");
            return ENGRAM_EINVAL;
        }
        s_write_t *w = s_plan_add(plan);
        if (!w)
            return ENGRAM_ENOMEM;
        *w = (s_write_t){.line = number,
                         .key = json_string_value(key),
                         .type = type,
                         .amount = (int64_t)json_integer_value(value)};
        return 0;
    }
    if (!json_is_array(values) || json_array_size(values) == 0 || value) {
        snprintf(why, why_len, "a %s has \"values\", an array of at least one version", type);
        return ENGRAM_EINVAL;
    }
    /* a register gets its winner, the first version: the others are its siblings */
    size_t n = strcmp(type, "reg") == 0 ? 1 : json_array_size(values);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = s_plan_version(plan, number, line, json_array_get(values, i), now_ms, why, why_len);
    for (size_t i = n; rc == 0 && i < json_array_size(values); i++) /* checked all the same */
        if (!s_version_ok(json_array_get(values, i), type, why, why_len))
            rc = ENGRAM_EINVAL;
    return rc;
}

/*  What the check that SCOPE holds no key of the file with another type needs. */
typedef struct {
    const char *scope;
    json_t *seen;  /* each key of the file -> its line's number */
    json_t *lines; /* the lines, in order */
    char *why;
    size_t why_len;
} s_types_t;

static int s_check_type(void *arg, const engram_item_t *held)
{
    s_types_t *t = arg;
    json_int_t number = json_integer_value(json_object_get(t->seen, held->key));
    if (!number)
        return 0;
    const char *type =
        json_string_value(json_object_get(json_array_get(t->lines, (size_t)number - 1), "type"));
    if (strcmp(type, held->type) == 0)
        return 0;
    snprintf(t->why, t->why_len,
             "line %" JSON_INTEGER_FORMAT ": %s holds '%s' as a %s; the line "
             "has a %s",
             number, t->scope, held->key, held->type, type);
    return ENGRAM_EINVAL;
}

/*  One prepared write. */
static int s_write(engram_t *engram, const char *scope, const s_write_t *w)
{
    engram_result_t *result = NULL;
    int rc;
    if (strcmp(w->type, "reg") == 0)
        rc = engram_put(engram, scope, w->key, w->value, w->len, w->meta, w->ttl_ms, &result);
    else if (strcmp(w->type, "set") == 0)
        rc = engram_set_add_meta(engram, scope, w->key, (const char *)w->value, w->meta, &result);
    else if (strcmp(w->type, "log") == 0)
        rc = engram_log_append_meta(engram, scope, w->key, w->value, w->len, w->meta, w->ttl_ms,
                                    &result);
    else
        rc = engram_counter_add(engram, scope, w->key, w->amount, &result);
    engram_result_destroy(&result);
    return rc;
}

static int s_import_jsonl(engram_t *engram, const cli_opts_t *opts, const char *text, size_t len)
{
    const char *path = opts->args[0], *scope = opts->args[1];
    s_plan_t plan = {0};
    json_t *seen = json_object();
    json_t *lines = json_array(); /* the parsed lines, which the plan borrows from */
    char why[512] = "";
    int rc = seen && lines ? 0 : ENGRAM_ENOMEM;
    uint64_t now_ms = (uint64_t)time(NULL) * 1000;
    size_t number = 0, objects = 0;
    for (const char *at = text; rc == 0 && at < text + len; number++) {
        const char *end = memchr(at, '\n', (size_t)(text + len - at));
        size_t line_len = end ? (size_t)(end - at) : (size_t)(text + len - at);
        json_error_t error;
        json_t *line = json_loadb(at, line_len, JSON_REJECT_DUPLICATES, &error);
        if (!line) {
            snprintf(why, sizeof why, "%s", line_len ? error.text : "an empty line");
            rc = ENGRAM_EINVAL;
        } else if (json_array_append_new(lines, line) != 0) {
            rc = ENGRAM_ENOMEM;
        } else {
            rc = s_plan_line(&plan, seen, number + 1, line, now_ms, why, sizeof why);
        }
        at += line_len + 1;
    }
    if (rc == ENGRAM_EINVAL)
        rc = cli_fail(rc, "%s line %zu: %s (nothing was imported)", path, number, why);
    s_types_t types = {scope, seen, lines, why, sizeof why};
    if (rc == 0 && (rc = s_each_key(engram, scope, s_check_type, &types)) == ENGRAM_EINVAL)
        cli_fail(rc, "%s %s (nothing was imported)", path, why);
    for (size_t i = 0; rc == 0 && i < plan.n; i++) {
        rc = s_write(engram, scope, &plan.writes[i]);
        if (rc != 0)
            cli_fail(rc, "%s line %zu: %s (the %zu lines before it were imported)", path,
                     plan.writes[i].line, engram_last_error(engram), objects);
        else if (i + 1 == plan.n || plan.writes[i + 1].line != plan.writes[i].line)
            objects++;
    }
    if (rc == 0 && opts->json)
        rc = cli_json_print(json_pack("{s:I, s:I, s:I}", "objects", (json_int_t)objects, "versions",
                                      (json_int_t)plan.n, "skipped_expired",
                                      (json_int_t)plan.skipped));
    else if (rc == 0)
        printf("%zu objects imported into %s (%zu versions; %zu expired, skipped)\n", objects,
               scope, plan.n, plan.skipped);
    s_plan_fini(&plan);
    json_decref(seen);
    json_decref(lines);
    return rc;
}

/*  The official MCP memory server's file (mcp.h: mcp_graph_import). */
static int s_import_mcp(engram_t *engram, const cli_opts_t *opts, const char *text, size_t len)
{
    size_t entities = 0, relations = 0;
    char why[256] = "";
    int rc =
        mcp_graph_import(engram, opts->args[1], text, len, &entities, &relations, why, sizeof why);
    if (rc == ENGRAM_EINVAL && *why)
        return cli_fail(rc, "%s: %s (nothing was imported)", opts->args[0], why);
    if (rc != 0)
        return rc;
    if (opts->json)
        return cli_json_print(json_pack("{s:I, s:I}", "entities", (json_int_t)entities, "relations",
                                        (json_int_t)relations));
    printf("%zu entities, %zu relations\n", entities, relations);
    return 0;
}

int cli_cmd_import(engram_t *engram, const cli_opts_t *opts)
{
    char *text = NULL;
    size_t len = 0;
    int rc = s_read_file(opts->args[0], &text, &len);
    if (rc == 0)
        rc = opts->given & CLI_OPT_MCP_MEMORY ? s_import_mcp(engram, opts, text, len)
                                              : s_import_jsonl(engram, opts, text, len);
    free(text);
    return rc;
}
