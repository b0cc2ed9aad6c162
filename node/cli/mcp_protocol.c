/*  mcp_protocol: JSON-RPC 2.0 as MCP's stdio transport carries it, one message a line. Decodes
 *  a line into a request, a notification or a client's response, and builds the replies and
 *  tool results. Pure jansson, no I/O: tests/fuzz drives mcp_message_decode with any bytes.
 *
 *  Invariants: a decoded message is an object with "jsonrpc": "2.0"; its id, when present, is
 *  a string or an integer (JSON-RPC forbids null ids for requests, and MCP forbids them too);
 *  its method a string; its params, when present, an object. Anything else is refused with the
 *  id it carried, when it carried a usable one, so that the client can match the error.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/cli/mcp.h"

/*  vsnprintf, then the end cut back to a whole UTF-8 sequence. */
static void s_vformat(char *text, size_t text_len, const char *format, va_list args)
{
    vsnprintf(text, text_len, format, args);
    size_t len = strlen(text), start = len;
    while (start > 0 && len - start < 4 && ((unsigned char)text[start - 1] & 0xC0) == 0x80)
        start--;
    if (start == 0)
        return;
    unsigned char lead = (unsigned char)text[start - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (len - (start - 1) < need)
        text[start - 1] = '\0';
}

void mcp_format(char *text, size_t text_len, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    s_vformat(text, text_len, format, args);
    va_end(args);
}

/*  2024-11-05, the official memory server's and older hosts', lacks only what its clients
 *  ignore (tool titles, structured content); it has no batches either. */
static const char *const s_versions[] = {MCP_PROTOCOL_LATEST, "2025-06-18", "2025-03-26",
                                         "2024-11-05"};

const char *mcp_negotiate_version(const char *requested)
{
    for (size_t i = 0; requested && i < sizeof s_versions / sizeof s_versions[0]; i++)
        if (strcmp(requested, s_versions[i]) == 0)
            return s_versions[i];
    return MCP_PROTOCOL_LATEST;
}

static bool s_usable_id(const json_t *id)
{
    return json_is_string(id) || json_is_integer(id);
}

int mcp_message_from(json_t *root, mcp_message_t *message, json_t **error_id, char *why,
                     size_t why_len)
{
    *message = (mcp_message_t){0};
    *error_id = NULL;
    const char *reason = NULL;
    json_t *id = json_is_object(root) ? json_object_get(root, "id") : NULL;
    json_t *method = json_is_object(root) ? json_object_get(root, "method") : NULL;
    json_t *params = json_is_object(root) ? json_object_get(root, "params") : NULL;
    const char *version =
        json_is_object(root) ? json_string_value(json_object_get(root, "jsonrpc")) : NULL;
    bool response = json_is_object(root) && !method &&
                    (json_object_get(root, "result") || json_object_get(root, "error"));
    if (response) { /* never answered, whatever its id or version: taken as it is */
        message->root = root;
        message->id = s_usable_id(id) ? id : NULL;
        message->method = NULL;
        message->params = NULL;
        return 0;
    }
    if (json_is_array(root))
        reason = "a batch (supported with protocol version 2025-03-26 only)";
    else if (!json_is_object(root))
        reason = "a message is a JSON object";
    else if (!version || strcmp(version, "2.0") != 0)
        reason = "\"jsonrpc\" must be \"2.0\"";
    else if (id && !s_usable_id(id))
        reason = "\"id\" must be a string or an integer";
    else if (method && !json_is_string(method))
        reason = "\"method\" must be a string";
    else if (!method)
        reason = "a message has a \"method\" (a request) or an \"id\" and a \"result\" or "
                 "\"error\" (a response)";
    else if (params && !json_is_object(params))
        reason = "\"params\" must be an object";
    if (reason) {
        snprintf(why, why_len, "Invalid request: %s", reason);
        *error_id = s_usable_id(id) ? json_incref(id) : json_null();
        json_decref(root);
        return MCP_INVALID_REQUEST;
    }
    message->root = root;
    message->id = id;
    message->method = method ? json_string_value(method) : NULL;
    message->params = params;
    return 0;
}

/*  The index past the string that opens at text[at] (a '"'), following its escapes; len + 1
 *  if it does not end within len. */
static size_t s_string_end(const char *text, size_t len, size_t at)
{
    for (size_t i = at + 1; i < len; i++) {
        if (text[i] == '\\')
            i++;
        else if (text[i] == '"')
            return i + 1;
    }
    return len + 1;
}

static size_t s_skip_space(const char *text, size_t len, size_t at)
{
    while (at < len && strchr(" \t\r\n", text[at]) && text[at])
        at++;
    return at;
}

/*  An id's value at text: a string as JSON decodes it, or an integer within int64; else NULL. */
static json_t *s_id_value(const char *text, size_t len)
{
    if (len && text[0] == '"') {
        size_t end = s_string_end(text, len, 0);
        json_t *id = end <= len ? json_loadb(text, end, JSON_DECODE_ANY, NULL) : NULL;
        if (json_is_string(id))
            return id;
        json_decref(id);
        return NULL;
    }
    char digits[24];
    size_t n = 0;
    while (n < len && n < sizeof digits - 1 && (isdigit((unsigned char)text[n]) || text[n] == '-'))
        n++;
    if (n == 0 || n == sizeof digits - 1 || (n < len && strchr(".eE", text[n]) && text[n]))
        return NULL;
    memcpy(digits, text, n);
    digits[n] = '\0';
    char *end;
    errno = 0;
    long long value = strtoll(digits, &end, 10);
    return errno == 0 && *end == '\0' ? json_integer(value) : NULL;
}

/*  Whether the key text[at..end) (quotes included) is name. */
static bool s_key_is(const char *text, size_t at, size_t end, const char *name)
{
    size_t n = strlen(name);
    return end - at == n + 2 && memcmp(text + at + 1, name, n) == 0;
}

json_t *mcp_scan_id(const char *text, size_t len)
{
    int depth = 0;
    json_t *found = NULL;
    bool response = false, request = false; /* a "result" or "error", a "method", at the top */
    for (size_t i = 0; i < len;) {
        if (text[i] == '"') {
            size_t end = s_string_end(text, len, i);
            if (end > len)
                break;
            size_t next = s_skip_space(text, len, end);
            if (depth == 1 && next < len && text[next] == ':') {
                size_t value = s_skip_space(text, len, next + 1);
                if (!found && s_key_is(text, i, end, "id"))
                    found = s_id_value(text + value, len - value);
                response |= s_key_is(text, i, end, "result") || s_key_is(text, i, end, "error");
                request |= s_key_is(text, i, end, "method");
            }
            i = end;
            continue;
        }
        if (text[i] == '{' || text[i] == '[')
            depth++;
        else if (text[i] == '}' || text[i] == ']')
            depth--;
        i++;
    }
    if (found && (request || !response))
        return found;
    json_decref(found);
    return json_null();
}

/*  The value of the four hex digits at text, or -1. */
static long s_hex4(const char *text)
{
    long value = 0;
    for (int i = 0; i < 4; i++) {
        int c = (unsigned char)text[i];
        int digit = isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
        if (digit < 0)
            return -1;
        value = value * 16 + digit;
    }
    return value;
}

/*  Rewrites, in place, each \\u escape of a lone UTF-16 surrogate (one that is not half of a
 *  pair) as \\ufffd, the replacement character: a client that cut a string inside an emoji
 *  sends them, and jansson refuses the whole message. Whether any was. */
static bool s_mend_surrogates(char *text, size_t len)
{
    bool mended = false;
    for (size_t i = 0; i + 6 <= len; i++) {
        if (text[i] != '\\')
            continue;
        long unit = text[i + 1] == 'u' ? s_hex4(text + i + 2) : -1;
        if (unit >= 0xD800 && unit <= 0xDBFF && i + 12 <= len && text[i + 6] == '\\' &&
            text[i + 7] == 'u' && s_hex4(text + i + 8) >= 0xDC00 &&
            s_hex4(text + i + 8) <= 0xDFFF) {
            i += 11; /* a pair */
        } else if (unit >= 0xD800 && unit <= 0xDFFF) {
            memcpy(text + i + 2, "fffd", 4);
            mended = true;
            i += 5;
        } else {
            i++; /* the escaped character: a backslash escaped is not an escape's start */
        }
    }
    return mended;
}

bool mcp_values_within(const char *text, size_t len)
{
    size_t values = 0;
    for (size_t i = 0; i < len && values <= MCP_MAX_VALUES; i++) {
        if (text[i] == '"')
            i = s_string_end(text, len, i) - 1;
        else if (text[i] == '{' || text[i] == '[' || text[i] == ',')
            values++;
    }
    return values <= MCP_MAX_VALUES;
}

int mcp_message_decode(const char *line, size_t len, mcp_message_t *message, json_t **error_id,
                       char *why, size_t why_len)
{
    if (!mcp_values_within(line, len)) {
        *message = (mcp_message_t){0};
        mcp_format(why, why_len, "Invalid request: a message holds at most %d values",
                   MCP_MAX_VALUES);
        *error_id = mcp_scan_id(line, len);
        return MCP_INVALID_REQUEST;
    }
    json_error_t error;
    json_t *root = json_loadb(line, len, JSON_DECODE_ANY, &error);
    char *mended = root ? NULL : malloc(len ? len : 1);
    if (mended) {
        memcpy(mended, line, len);
        if (s_mend_surrogates(mended, len))
            root = json_loadb(mended, len, JSON_DECODE_ANY, &error);
        free(mended);
    }
    if (!root) {
        *message = (mcp_message_t){0};
        /* jansson's message may quote the bytes it stopped at, which need not be UTF-8: only
         * printable ASCII of it is kept, so the reply always encodes */
        for (char *c = error.text; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
                *c = '?';
        mcp_format(why, why_len, "Parse error: %s", error.text);
        *error_id = mcp_scan_id(line, len); /* so that the client can match the refusal */
        return MCP_PARSE_ERROR;
    }
    return mcp_message_from(root, message, error_id, why, why_len);
}

void mcp_message_fini(mcp_message_t *message)
{
    json_decref(message->root);
    *message = (mcp_message_t){0};
}

json_t *mcp_result(json_t *id, json_t *result)
{
    return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result);
}

json_t *mcp_error(json_t *id, int code, const char *message)
{
    return json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id, "error", "code", code,
                     "message", message);
}

json_t *mcp_notification(const char *method, json_t *params)
{
    return json_pack("{s:s, s:s, s:o}", "jsonrpc", "2.0", "method", method, "params", params);
}

json_t *mcp_tool_result(const char *text, json_t *structured)
{
    json_t *result = json_pack("{s:[{s:s, s:s}]}", "content", "type", "text", "text", text);
    if (result && structured && json_object_set(result, "structuredContent", structured) != 0) {
        json_decref(result);
        result = NULL;
    }
    json_decref(structured);
    return result;
}

json_t *mcp_tool_result_json(json_t *structured)
{
    char *text = structured ? json_dumps(structured, JSON_INDENT(2)) : NULL;
    json_t *result = text ? mcp_tool_result(text, json_incref(structured)) : NULL;
    free(text);
    json_decref(structured);
    return result;
}

json_t *mcp_tool_error(const char *format, ...)
{
    char text[1024];
    va_list args;
    va_start(args, format);
    s_vformat(text, sizeof text, format, args);
    va_end(args);
    json_t *result = mcp_tool_result(text, NULL);
    if (result && json_object_set_new(result, "isError", json_true()) != 0) {
        json_decref(result);
        return NULL;
    }
    return result;
}

static const char *s_type_of(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

/*  An integer, for a schema: JSON's integers, and reals with no fraction that a double holds
 *  exactly (5.0 is 5, as JSON Schema says). */
static bool s_is_integral(const json_t *value)
{
    if (json_is_integer(value))
        return true;
    double x = json_real_value(value);
    return json_is_real(value) && fabs(x) <= 9007199254740992.0 && x == trunc(x);
}

static bool s_has_type(const json_t *value, const char *type)
{
    if (strcmp(type, "integer") == 0)
        return s_is_integral(value);
    if (strcmp(type, "number") == 0)
        return json_is_number(value);
    return strcmp(type, s_type_of(value)) == 0;
}

bool mcp_schema_check(const json_t *schema, const json_t *value, const char *path, char *why,
                      size_t why_len)
{
    const char *type = json_string_value(json_object_get(schema, "type"));
    if (type && !s_has_type(value, type)) {
        snprintf(why, why_len, "%s: expected %s, received %s", path, type, s_type_of(value));
        return false;
    }
    json_t *choices = json_object_get(schema, "enum");
    if (choices) {
        bool found = false;
        size_t i;
        json_t *choice;
        json_array_foreach(choices, i, choice) found = found || json_equal(choice, value);
        if (!found) {
            snprintf(why, why_len, "%s: not one of the values allowed", path);
            return false;
        }
    }
    json_t *minimum = json_object_get(schema, "minimum");
    json_t *maximum = json_object_get(schema, "maximum");
    if ((minimum && json_number_value(value) < json_number_value(minimum)) ||
        (maximum && json_number_value(value) > json_number_value(maximum))) {
        snprintf(why, why_len, "%s: out of range [%g, %g]", path,
                 minimum ? json_number_value(minimum) : -INFINITY,
                 maximum ? json_number_value(maximum) : INFINITY);
        return false;
    }
    char inner[256];
    if (json_is_array(value) && json_object_get(schema, "items")) {
        size_t i;
        json_t *item;
        json_array_foreach(value, i, item)
        {
            snprintf(inner, sizeof inner, "%s[%zu]", path, i);
            if (!mcp_schema_check(json_object_get(schema, "items"), item, inner, why, why_len))
                return false;
        }
    }
    if (json_is_object(value)) {
        size_t i;
        json_t *name;
        json_array_foreach(json_object_get(schema, "required"), i, name)
        {
            if (!json_object_get(value, json_string_value(name))) {
                snprintf(why, why_len, "%s.%s: required", path, json_string_value(name));
                return false;
            }
        }
        const char *key;
        json_t *property;
        json_object_foreach(json_object_get(schema, "properties"), key, property)
        {
            json_t *field = json_object_get(value, key);
            snprintf(inner, sizeof inner, "%s.%s", path, key);
            if (field && !mcp_schema_check(property, field, inner, why, why_len))
                return false;
        }
    }
    return true;
}

int mcp_call_check(const json_t *tools, const json_t *params, const char **name, json_t **args,
                   char *why, size_t why_len)
{
    *name = json_string_value(json_object_get(params, "name"));
    json_t *given = json_object_get(params, "arguments");
    *args = NULL;
    if (!*name || (given && !json_is_object(given))) {
        snprintf(why, why_len, "tools/call takes a \"name\" and an \"arguments\" object");
        return MCP_INVALID_PARAMS;
    }
    const json_t *tool = mcp_catalog_find(tools, *name);
    if (!tool) {
        mcp_format(why, why_len, "MCP error %d: Tool %s not found", MCP_INVALID_PARAMS, *name);
        return MCP_TOOL_REFUSED;
    }
    char reason[512];
    json_t *checked = given ? json_incref(given) : json_object();
    if (!mcp_schema_check(json_object_get(tool, "inputSchema"), checked, "arguments", reason,
                          sizeof reason)) {
        mcp_format(why, why_len,
                   "MCP error %d: Input validation error: Invalid arguments for tool %s: %s",
                   MCP_INVALID_PARAMS, *name, reason);
        json_decref(checked);
        return MCP_TOOL_REFUSED;
    }
    *args = checked;
    return 0;
}
