/*  Tests of the MCP server's pure part (node/cli/mcp.h): the decoding of a line into a
 *  request, a notification or a response, and each way a line is refused with the id that
 *  can answer it; the negotiation of protocol versions; the tool catalog (the nine graph tools
 *  and engram's ten, each annotated); the check of a tools/call against it (unknown tool,
 *  a missing or mistyped argument at any depth, integers, ranges, absent arguments); and
 *  messages cut to fit that stay UTF-8 whatever a client sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/cli/mcp.h"

/*  Decodes line; returns the code, with the message in *message (fini'd by the caller when 0)
 *  and the error id's compact JSON in id_text (error cases). */
static int s_decode(const char *line, mcp_message_t *message, char *id_text, size_t id_len)
{
    json_t *error_id = NULL;
    char why[256] = "";
    int code = mcp_message_decode(line, strlen(line), message, &error_id, why, sizeof why);
    if (code != 0) {
        assert_non_null(error_id);
        assert_true(why[0] != '\0');
        json_t *reply = mcp_error(error_id, code, why); /* the refusal can be sent */
        assert_non_null(reply);
        json_decref(reply);
        char *text = json_dumps(error_id, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf(id_text, id_len, "%s", text);
        free(text);
        json_decref(error_id);
    } else {
        assert_null(error_id);
    }
    return code;
}

static void test_requests_notifications_and_responses(void **state)
{
    (void)state;
    mcp_message_t m;
    char id[64];
    assert_int_equal(
        s_decode("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/list\"}", &m, id, sizeof id), 0);
    assert_string_equal(m.method, "tools/list");
    assert_int_equal(json_integer_value(m.id), 7);
    assert_null(m.params);
    mcp_message_fini(&m);

    assert_int_equal(s_decode("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\","
                              "\"params\":{}}",
                              &m, id, sizeof id),
                     0);
    assert_null(m.id);
    assert_true(json_is_object(m.params));
    mcp_message_fini(&m);

    assert_int_equal(
        s_decode("{\"jsonrpc\":\"2.0\",\"id\":\"r1\",\"result\":{}}", &m, id, sizeof id), 0);
    assert_null(m.method);
    assert_string_equal(json_string_value(m.id), "r1");
    mcp_message_fini(&m);

    /* a response is taken (and never answered) whatever its id: null, or none at all */
    assert_int_equal(s_decode("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":1,"
                              "\"message\":\"x\"}}",
                              &m, id, sizeof id),
                     0);
    assert_null(m.method);
    assert_null(m.id);
    mcp_message_fini(&m);
    assert_int_equal(s_decode("{\"jsonrpc\":\"2.0\",\"error\":{\"code\":1,\"message\":\"x\"}}", &m,
                              id, sizeof id),
                     0);
    assert_null(m.id);
    mcp_message_fini(&m);
    /* found by fuzz_mcp_request: a response's params were not checked; a response is taken
     * without them, whatever they, its id or its version are */
    assert_int_equal(s_decode("{\"jsonrpc\":\"1.0\",\"id\":true,\"result\":{},\"params\":\"0\"}",
                              &m, id, sizeof id),
                     0);
    assert_null(m.method);
    assert_null(m.id);
    assert_null(m.params);
    mcp_message_fini(&m);
}

static void test_refusals_carry_the_id_that_answers_them(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        int code;
        const char *id;
    } cases[] = {
        {"not json", MCP_PARSE_ERROR, "null"},
        /* found by fuzz_mcp_request: jansson's message quoted a byte that is not UTF-8 */
        {"{\"jsonrpc\":\"2.0\",\"me\\\xd3\xbc\":1}", MCP_PARSE_ERROR, "null"},
        /* valid JSON that is no request is an invalid request, not a parse error */
        {"5", MCP_INVALID_REQUEST, "null"},
        {"\"ping\"", MCP_INVALID_REQUEST, "null"},
        /* a line that does not parse is refused to the id a scan finds in it */
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"", MCP_PARSE_ERROR, "1"},
        {"{\"jsonrpc\":\"2.0\",\"id\":\"a\\\"b\",\"method\":\"x\",\"params\":{\"t\":\"\\u0000\"}}",
         MCP_PARSE_ERROR, "\"a\\\"b\""},
        {"{\"params\":{\"id\":3},\"id\" : 12,\"n\":99999999999999999999}", MCP_PARSE_ERROR, "12"},
        {"{\"jsonrpc\":\"2.0\",\"id\":123456789012345678901,\"x\":1e400}", MCP_PARSE_ERROR, "null"},
        {"{\"jsonrpc\":\"2.0\",\"id\":7.5,\"x\":1e400}", MCP_PARSE_ERROR, "null"},
        {"[{\"id\":4}, 1e400]", MCP_PARSE_ERROR, "null"},
        {"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", MCP_INVALID_REQUEST, "null"},
        {"{\"id\":3,\"method\":\"ping\"}", MCP_INVALID_REQUEST, "3"},
        {"{\"jsonrpc\":\"1.0\",\"id\":\"q\",\"method\":\"ping\"}", MCP_INVALID_REQUEST, "\"q\""},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", MCP_INVALID_REQUEST, "null"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", MCP_INVALID_REQUEST, "null"},
        {"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}", MCP_INVALID_REQUEST, "null"},
        {"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":5}", MCP_INVALID_REQUEST, "4"},
        {"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\",\"params\":[]}", MCP_INVALID_REQUEST,
         "5"},
        {"{\"jsonrpc\":\"2.0\"}", MCP_INVALID_REQUEST, "null"},
        {"{\"jsonrpc\":\"2.0\",\"id\":8}", MCP_INVALID_REQUEST, "8"},
        /* a response that does not parse is refused to no id: its id is the client's own */
        {"{\"jsonrpc\":\"2.0\",\"id\":6,\"error\":{\"code\":1,\"message\":\"\\u0000\"}}",
         MCP_PARSE_ERROR, "null"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mcp_message_t m;
        char id[64] = "";
        int code = s_decode(cases[i].line, &m, id, sizeof id);
        if (code != cases[i].code || strcmp(id, cases[i].id) != 0)
            fail_msg("%s: code %d id %s", cases[i].line, code, id);
        assert_null(m.root);
    }
}

/*  A lone surrogate escape (a client that cut a string inside an emoji) decodes as U+FFFD; a
 *  pair stays the character it makes, and an escaped backslash before "ud83d" is no escape. */
static void test_lone_surrogates_are_mended(void **state)
{
    (void)state;
    static const struct {
        const char *text, *decoded;
    } cases[] = {
        {"cut \\ud83d", "cut \xef\xbf\xbd"},
        {"\\ude00 low first", "\xef\xbf\xbd low first"},
        {"pair \\ud83d\\ude00", "pair \xf0\x9f\x98\x80"},
        {"two \\ud83d\\ud83d\\ude00", "two \xef\xbf\xbd\xf0\x9f\x98\x80"},
        {"not one \\\\ud83d", "not one \\ud83d"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char line[256];
        snprintf(line, sizeof line,
                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"t\":\"%s\"}}",
                 cases[i].text);
        mcp_message_t m;
        char id[64];
        if (s_decode(line, &m, id, sizeof id) != 0)
            fail_msg("%s: refused", line);
        assert_string_equal(json_string_value(json_object_get(m.params, "t")), cases[i].decoded);
        mcp_message_fini(&m);
    }
}

/*  A message of more than MCP_MAX_VALUES values is refused before it is parsed, to the id it
 *  names; commas and brackets inside strings are not values. */
static void test_values_are_bounded(void **state)
{
    (void)state;
    size_t n = MCP_MAX_VALUES + 1, cap = 3 * n + 256;
    char *line = malloc(cap);
    assert_non_null(line);
    for (size_t count = 1000; count <= n; count += n - 1000) {
        size_t at = (size_t)snprintf(line, cap,
                                     "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\","
                                     "\"params\":{\"x\":\"[,{\",\"y\":[");
        for (size_t i = 0; i < count; i++)
            at += (size_t)snprintf(line + at, cap - at, i ? ",1" : "1");
        snprintf(line + at, cap - at, "]}}");
        mcp_message_t m;
        char id[64] = "";
        int code = s_decode(line, &m, id, sizeof id);
        if (count < n) { /* about 1,000 values: read */
            assert_int_equal(code, 0);
            mcp_message_fini(&m);
        } else {
            assert_int_equal(code, MCP_INVALID_REQUEST);
            assert_string_equal(id, "5");
        }
    }
    free(line);
}

/*  Whether text is well-formed UTF-8, as jansson checks its strings. */
static bool s_utf8(const char *text)
{
    json_t *string = json_string(text);
    json_decref(string);
    return string != NULL;
}

static void test_cut_messages_stay_utf8(void **state)
{
    (void)state;
    char euros[3 * 400 + 1] = "";
    for (int i = 0; i < 400; i++)
        strcat(euros, "\xe2\x82\xac"); /* U+20AC, three bytes */
    char text[100];
    for (size_t cap = 1; cap <= sizeof text; cap++) {
        mcp_format(text, cap, "Tool %s not found", euros);
        if (!s_utf8(text))
            fail_msg("cut at %zu bytes: not UTF-8", cap);
    }
    assert_int_equal(strlen(text), 5 + 3 * 31); /* "Tool " and the whole euros that fit */

    /* a call of a tool whose long name is cut in the message: still a tool error */
    json_t *tools = mcp_catalog_tools();
    json_t *params = json_pack("{s:s, s:{}}", "name", euros, "arguments");
    const char *name;
    json_t *args = NULL;
    char why[1024];
    assert_int_equal(mcp_call_check(tools, params, &name, &args, why, sizeof why),
                     MCP_TOOL_REFUSED);
    assert_true(s_utf8(why));
    json_t *result = mcp_tool_error("%s", why);
    assert_non_null(result);
    json_decref(result);
    json_decref(params);
    json_decref(tools);
}

static void test_versions(void **state)
{
    (void)state;
    assert_string_equal(mcp_negotiate_version("2025-03-26"), "2025-03-26");
    assert_string_equal(mcp_negotiate_version("2025-06-18"), "2025-06-18");
    assert_string_equal(mcp_negotiate_version("2025-11-25"), "2025-11-25");
    assert_string_equal(mcp_negotiate_version("2024-11-05"), "2024-11-05");
    assert_string_equal(mcp_negotiate_version("2024-10-07"), MCP_PROTOCOL_LATEST);
    assert_string_equal(mcp_negotiate_version("banana"), MCP_PROTOCOL_LATEST);
    assert_string_equal(mcp_negotiate_version(NULL), MCP_PROTOCOL_LATEST);
}

static void test_catalog(void **state)
{
    (void)state;
    json_t *tools = mcp_catalog_tools();
    assert_non_null(tools);
    assert_int_equal(json_array_size(tools), 19);
    static const char *const graph[] = {
        "create_entities", "create_relations",    "add_observations",
        "delete_entities", "delete_observations", "delete_relations",
        "read_graph",      "search_nodes",        "open_nodes"};
    for (size_t i = 0; i < 9; i++) {
        const json_t *tool = json_array_get(tools, i);
        assert_string_equal(json_string_value(json_object_get(tool, "name")), graph[i]);
        assert_non_null(json_object_get(tool, "outputSchema"));
    }
    size_t i;
    json_t *tool;
    json_array_foreach(tools, i, tool)
    {
        const char *name = json_string_value(json_object_get(tool, "name"));
        assert_ptr_equal(mcp_catalog_find(tools, name), tool);
        json_t *hints = json_object_get(tool, "annotations");
        assert_true(json_is_boolean(json_object_get(hints, "readOnlyHint")));
        assert_true(json_is_boolean(json_object_get(hints, "destructiveHint")));
        assert_true(json_is_boolean(json_object_get(hints, "idempotentHint")));
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(tool, "inputSchema"), "type")),
            "object");
    }
    /* a reading tool is read-only, a deleting one destructive */
    assert_true(json_is_true(json_object_get(
        json_object_get(mcp_catalog_find(tools, "memory_search"), "annotations"), "readOnlyHint")));
    assert_true(json_is_true(
        json_object_get(json_object_get(mcp_catalog_find(tools, "memory_forget"), "annotations"),
                        "destructiveHint")));
    assert_null(mcp_catalog_find(tools, "nope"));
    json_decref(tools);
}

/*  Checks the call params_text; returns the outcome, the reason in why. */
static int s_check(const json_t *tools, const char *params_text, char *why, size_t why_len)
{
    json_t *params = json_loads(params_text, 0, NULL);
    assert_non_null(params);
    const char *name = NULL;
    json_t *args = NULL;
    why[0] = '\0';
    int rc = mcp_call_check(tools, params, &name, &args, why, why_len);
    if (rc == 0) {
        assert_true(json_is_object(args));
        assert_string_equal(name, json_string_value(json_object_get(params, "name")));
    } else {
        assert_null(args);
    }
    json_decref(args);
    json_decref(params);
    return rc;
}

static void test_calls_are_checked_against_the_schema(void **state)
{
    (void)state;
    json_t *tools = mcp_catalog_tools();
    char why[1024];
    assert_int_equal(s_check(tools,
                             "{\"name\":\"create_entities\",\"arguments\":{\"entities\":[{\"name\":"
                             "\"A\",\"entityType\":\"t\",\"observations\":[\"o\"]}]}}",
                             why, sizeof why),
                     0);
    /* absent arguments are {}: fine for read_graph, not for open_nodes */
    assert_int_equal(s_check(tools, "{\"name\":\"read_graph\"}", why, sizeof why), 0);
    assert_int_equal(s_check(tools, "{\"name\":\"open_nodes\"}", why, sizeof why),
                     MCP_TOOL_REFUSED);
    assert_non_null(strstr(why, "Input validation error"));
    assert_non_null(strstr(why, "arguments.names: required"));

    assert_int_equal(s_check(tools, "{\"name\":\"nope\",\"arguments\":{}}", why, sizeof why),
                     MCP_TOOL_REFUSED);
    assert_string_equal(why, "MCP error -32602: Tool nope not found");

    assert_int_equal(s_check(tools, "{\"arguments\":{}}", why, sizeof why), MCP_INVALID_PARAMS);
    assert_int_equal(s_check(tools, "{\"name\":\"read_graph\",\"arguments\":[]}", why, sizeof why),
                     MCP_INVALID_PARAMS);

    /* a mistyped field deep inside, named by its path */
    assert_int_equal(s_check(tools,
                             "{\"name\":\"create_entities\",\"arguments\":{\"entities\":[{\"name\":"
                             "\"A\",\"entityType\":\"t\",\"observations\":[\"o\",3]}]}}",
                             why, sizeof why),
                     MCP_TOOL_REFUSED);
    assert_non_null(strstr(why, "arguments.entities[0].observations[1]: expected string"));
    assert_int_equal(s_check(tools,
                             "{\"name\":\"add_observations\",\"arguments\":{\"observations\":[{"
                             "\"entityName\":\"A\"}]}}",
                             why, sizeof why),
                     MCP_TOOL_REFUSED);
    assert_non_null(strstr(why, "arguments.observations[0].contents: required"));

    /* integers and their ranges: 5.0 is the integer 5, as JSON Schema says */
    assert_int_equal(
        s_check(tools, "{\"name\":\"memory_search\",\"arguments\":{\"query\":\"q\",\"top_k\":5.0}}",
                why, sizeof why),
        0);
    assert_int_equal(
        s_check(tools,
                "{\"name\":\"memory_search\",\"arguments\":{\"query\":\"q\",\"top_k\":1e300}}", why,
                sizeof why),
        MCP_TOOL_REFUSED);
    assert_int_equal(
        s_check(tools, "{\"name\":\"memory_search\",\"arguments\":{\"query\":\"q\",\"top_k\":5}}",
                why, sizeof why),
        0);
    assert_int_equal(s_check(tools,
                             "{\"name\":\"memory_search\",\"arguments\":{\"query\":\"q\",\"top_k\":"
                             "2.5}}",
                             why, sizeof why),
                     MCP_TOOL_REFUSED);
    assert_int_equal(
        s_check(tools, "{\"name\":\"memory_search\",\"arguments\":{\"query\":\"q\",\"top_k\":0}}",
                why, sizeof why),
        MCP_TOOL_REFUSED);
    assert_non_null(strstr(why, "out of range"));
    assert_int_equal(s_check(tools,
                             "{\"name\":\"memory_forget\",\"arguments\":{\"filters\":\"x\"}}", why,
                             sizeof why),
                     MCP_TOOL_REFUSED);
    assert_non_null(strstr(why, "arguments.filters: expected object, received string"));
    json_decref(tools);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_notifications_and_responses),
        cmocka_unit_test(test_refusals_carry_the_id_that_answers_them),
        cmocka_unit_test(test_lone_surrogates_are_mended),
        cmocka_unit_test(test_values_are_bounded),
        cmocka_unit_test(test_cut_messages_stay_utf8),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_catalog),
        cmocka_unit_test(test_calls_are_checked_against_the_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
