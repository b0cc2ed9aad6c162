/*  libFuzzer target for the MCP request decoder (node/cli/mcp.h): every line an MCP client
 *  writes to `engram mcp` goes through mcp_message_decode, and a tools/call's params through
 *  mcp_call_check against the server's own tool catalog, before anything reaches a node.
 *
 *  Any input must either be refused with a JSON-RPC error code (-32700, -32600) and an id
 *  that may answer it (null, a string or an integer), or decode to a message whose parts have
 *  the types the server relies on; a tools/call's check must end in one of its three outcomes,
 *  with arguments that are an object fitting the tool's schema when it passes; and every reply
 *  built from it must encode as a single line. A violation abort()s so libFuzzer saves the
 *  input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "node/cli/mcp.h"

static json_t *s_tools;

/*  reply (taken) encodes as one line. */
static void s_one_line(json_t *reply)
{
    CHECK(reply != NULL);
    char *text = json_dumps(reply, JSON_COMPACT);
    CHECK(text != NULL);
    CHECK(strchr(text, '\n') == NULL);
    free(text);
    json_decref(reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_tools) {
        s_tools = mcp_catalog_tools();
        CHECK(s_tools != NULL);
    }
    mcp_message_t message;
    json_t *error_id = NULL;
    char why[256] = "";
    int code = mcp_message_decode((const char *)data, size, &message, &error_id, why, sizeof why);
    if (code != 0) {
        CHECK(code == MCP_PARSE_ERROR || code == MCP_INVALID_REQUEST);
        CHECK(json_is_null(error_id) || json_is_string(error_id) || json_is_integer(error_id));
        CHECK(why[0] != '\0');
        CHECK(message.root == NULL);
        s_one_line(mcp_error(error_id, code, why));
        json_decref(error_id);
        return 0;
    }
    CHECK(json_is_object(message.root));
    CHECK(!message.id || json_is_string(message.id) || json_is_integer(message.id));
    /* a request or a notification has its method; a response (taken, never answered) its
     * "result" or "error" */
    CHECK(message.method || json_object_get(message.root, "result") ||
          json_object_get(message.root, "error"));
    CHECK(!message.params || json_is_object(message.params));
    if (message.method && strcmp(message.method, "initialize") == 0) {
        const char *version = mcp_negotiate_version(
            json_string_value(json_object_get(message.params, "protocolVersion")));
        CHECK(strcmp(version, MCP_PROTOCOL_LATEST) == 0 || strcmp(version, "2025-06-18") == 0 ||
              strcmp(version, "2025-03-26") == 0 || strcmp(version, "2024-11-05") == 0);
    }
    if (message.method && strcmp(message.method, "tools/call") == 0) {
        const char *name = NULL;
        json_t *args = NULL;
        char reason[1024] = "";
        int rc = mcp_call_check(s_tools, message.params, &name, &args, reason, sizeof reason);
        CHECK(rc == 0 || rc == MCP_INVALID_PARAMS || rc == MCP_TOOL_REFUSED);
        if (rc == 0) {
            const json_t *tool = mcp_catalog_find(s_tools, name);
            CHECK(tool != NULL && json_is_object(args));
            char again[512];
            CHECK(mcp_schema_check(json_object_get(tool, "inputSchema"), args, "arguments", again,
                                   sizeof again));
            s_one_line(mcp_result(message.id ? message.id : json_null(),
                                  mcp_tool_result_json(json_incref(args))));
        } else {
            CHECK(args == NULL && reason[0] != '\0');
            s_one_line(rc == MCP_TOOL_REFUSED ? mcp_tool_error("%s", reason)
                                              : mcp_error(json_null(), rc, reason));
        }
        json_decref(args);
    }
    mcp_message_fini(&message);
    return 0;
}
