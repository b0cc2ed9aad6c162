/*  mcp_catalog: the tools `engram mcp` lists, with their input and output schemas and
 *  annotations: the official MCP memory server's nine (names, titles, descriptions, schemas and
 *  annotations as @modelcontextprotocol/server-memory lists them, so that a client configured
 *  for it sees no difference), then engram's memory_* tools. Pure jansson: the fuzzer checks
 *  requests against the same catalog the server does.
 *
 *  Invariant: every tool's inputSchema uses only the keywords mcp_schema_check checks, so a
 *  call that passes the check has arguments of the types each tool reads.
 */
#include <string.h>

#include "engram/limits.h"
#include "node/cli/mcp.h"

/*  --- the official memory server's nine tools, as it lists them ----------------------------- */

static json_t *s_string_prop(const char *description)
{
    return description ? json_pack("{s:s, s:s}", "type", "string", "description", description)
                       : json_pack("{s:s}", "type", "string");
}

static json_t *s_strings_prop(const char *description)
{
    return description ? json_pack("{s:s, s:{s:s}, s:s}", "type", "array", "items", "type",
                                   "string", "description", description)
                       : json_pack("{s:s, s:{s:s}}", "type", "array", "items", "type", "string");
}

/*  An object schema of the given properties, all required (none: no "required"); strict (the output schemas) adds
 *  additionalProperties false. Takes properties. */
static json_t *s_object(json_t *properties, bool strict)
{
    json_t *required = json_array();
    const char *name;
    json_t *value;
    json_object_foreach(properties, name, value) json_array_append_new(required, json_string(name));
    json_t *object = json_pack("{s:s, s:o}", "type", "object", "properties", properties);
    if (object && json_array_size(required) > 0) /* as zod writes it: no empty list */
        json_object_set(object, "required", required);
    json_decref(required);
    if (object && strict)
        json_object_set_new(object, "additionalProperties", json_false());
    return object;
}

static json_t *s_array_of(json_t *items, const char *description)
{
    json_t *array = json_pack("{s:s, s:o}", "type", "array", "items", items);
    if (array && description)
        json_object_set_new(array, "description", json_string(description));
    return array;
}

static json_t *s_entity_schema(bool strict)
{
    return s_object(json_pack("{s:o, s:o, s:o}", "name", s_string_prop("The name of the entity"),
                              "entityType", s_string_prop("The type of the entity"), "observations",
                              s_strings_prop("An array of observation contents associated with "
                                             "the entity")),
                    strict);
}

static json_t *s_relation_schema(bool strict)
{
    return s_object(json_pack("{s:o, s:o, s:o}", "from",
                              s_string_prop("The name of the entity where the relation starts"),
                              "to", s_string_prop("The name of the entity where the relation ends"),
                              "relationType", s_string_prop("The type of the relation")),
                    strict);
}

/*  A top-level schema: an object of properties, all required, draft-07. Takes properties. */
static json_t *s_top(json_t *properties, bool strict)
{
    json_t *schema = s_object(properties, strict);
    if (schema)
        json_object_set_new(schema, "$schema",
                            json_string("http://json-schema.org/draft-07/schema#"));
    return schema;
}

static json_t *s_graph_output(void)
{
    return s_top(json_pack("{s:o, s:o}", "entities", s_array_of(s_entity_schema(true), NULL),
                           "relations", s_array_of(s_relation_schema(true), NULL)),
                 true);
}

static json_t *s_status_output(void)
{
    return s_top(
        json_pack("{s:{s:s}, s:{s:s}}", "success", "type", "boolean", "message", "type", "string"),
        true);
}

static json_t *s_tool(const char *name, const char *title, const char *description, json_t *input,
                      json_t *output, bool read_only, bool destructive, bool idempotent)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:{s:b, s:b, s:b, s:b}, s:{s:s}}", "name", name,
                     "title", title, "description", description, "inputSchema", input,
                     "outputSchema", output, "annotations", "readOnlyHint", read_only,
                     "destructiveHint", destructive, "idempotentHint", idempotent, "openWorldHint",
                     false, "execution", "taskSupport", "forbidden");
}

static int s_graph_tools(json_t *tools)
{
    json_t *observation =
        s_object(json_pack("{s:o, s:o}", "entityName",
                           s_string_prop("The name of the entity to add the observations to"),
                           "contents", s_strings_prop("An array of observation contents to add")),
                 false);
    json_t *added = s_object(json_pack("{s:o, s:o}", "entityName", s_string_prop(NULL),
                                       "addedObservations", s_strings_prop(NULL)),
                             true);
    json_t *deletion =
        s_object(json_pack("{s:o, s:o}", "entityName",
                           s_string_prop("The name of the entity containing the observations"),
                           "observations", s_strings_prop("An array of observations to delete")),
                 false);
    json_t *list[] = {
        s_tool(
            "create_entities", "Create Entities",
            "Create multiple new entities in the knowledge graph",
            s_top(json_pack("{s:o}", "entities", s_array_of(s_entity_schema(false), NULL)), false),
            s_top(json_pack("{s:o}", "entities", s_array_of(s_entity_schema(true), NULL)), true),
            false, false, false),
        s_tool(
            "create_relations", "Create Relations",
            "Create multiple new relations between entities in the knowledge graph. "
            "Relations should be in active voice",
            s_top(json_pack("{s:o}", "relations", s_array_of(s_relation_schema(false), NULL)),
                  false),
            s_top(json_pack("{s:o}", "relations", s_array_of(s_relation_schema(true), NULL)), true),
            false, false, false),
        s_tool("add_observations", "Add Observations",
               "Add new observations to existing entities in the knowledge graph",
               s_top(json_pack("{s:o}", "observations", s_array_of(observation, NULL)), false),
               s_top(json_pack("{s:o}", "results", s_array_of(added, NULL)), true), false, false,
               false),
        s_tool("delete_entities", "Delete Entities",
               "Delete multiple entities and their associated relations from the knowledge "
               "graph",
               s_top(json_pack("{s:o}", "entityNames",
                               s_strings_prop("An array of entity names to delete")),
                     false),
               s_status_output(), false, true, true),
        s_tool("delete_observations", "Delete Observations",
               "Delete specific observations from entities in the knowledge graph",
               s_top(json_pack("{s:o}", "deletions", s_array_of(deletion, NULL)), false),
               s_status_output(), false, true, true),
        s_tool("delete_relations", "Delete Relations",
               "Delete multiple relations from the knowledge graph",
               s_top(json_pack(
                         "{s:o}", "relations",
                         s_array_of(s_relation_schema(false), "An array of relations to delete")),
                     false),
               s_status_output(), false, true, true),
        s_tool("read_graph", "Read Graph", "Read the entire knowledge graph",
               s_top(json_object(), false), s_graph_output(), true, false, true),
        s_tool("search_nodes", "Search Nodes",
               "Search for nodes in the knowledge graph based on a query",
               s_top(json_pack("{s:o}", "query",
                               s_string_prop("The search query to match against entity names, "
                                             "types, and observation content")),
                     false),
               s_graph_output(), true, false, true),
        s_tool("open_nodes", "Open Nodes",
               "Open specific nodes in the knowledge graph by their names",
               s_top(json_pack("{s:o}", "names",
                               s_strings_prop("An array of entity names to retrieve")),
                     false),
               s_graph_output(), true, false, true),
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        if (!list[i] || json_array_append_new(tools, list[i]) != 0)
            rc = -1;
    return rc;
}

/*  --- engram's memory_* tools ---------------------------------------------------------------- */

static json_t *s_prop(const char *type, const char *description)
{
    return json_pack("{s:s, s:s}", "type", type, "description", description);
}

/*  An input schema of properties (taken), of which the names in required (NULL-terminated)
 *  are required. */
static json_t *s_input(json_t *properties, const char *const *required)
{
    json_t *names = json_array();
    for (size_t i = 0; required && required[i]; i++)
        json_array_append_new(names, json_string(required[i]));
    return json_pack("{s:s, s:o, s:o}", "type", "object", "properties", properties, "required",
                     names);
}

static json_t *s_memory_tool(const char *name, const char *title, const char *description,
                             json_t *input, bool read_only, bool destructive, bool idempotent)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:b, s:b, s:b, s:b}}", "name", name, "title",
                     title, "description", description, "inputSchema", input, "annotations",
                     "title", title, "readOnlyHint", read_only, "destructiveHint", destructive,
                     "idempotentHint", idempotent, "openWorldHint", false);
}

#define S_SCOPE_DOC                                                                                \
    "The scope: \"private\" (this agent's own memory, never leaves its node) or a shared "         \
    "scope \"kind:id\" (user:alice, run:q3-proposal, app:support); default: the session's"
#define S_SCOPES_DOC                                                                               \
    "The scopes searched, besides scope if given; default (neither given): the session's "         \
    "--scope values, or every scope the agent may read"
#define S_FILTERS_DOC                                                                              \
    "mem0's filter grammar on the memories' metadata and provenance, e.g. "                        \
    "{\"AND\":[{\"author\":\"researcher\"},{\"topic\":{\"in\":[\"pricing\"]}}]}"

static json_t *s_scope_prop(void)
{
    return s_prop("string", S_SCOPE_DOC);
}

static json_t *s_scopes_prop(void)
{
    return json_pack("{s:s, s:{s:s}, s:s}", "type", "array", "items", "type", "string",
                     "description", S_SCOPES_DOC);
}

static json_t *s_top_k_prop(void)
{
    return json_pack("{s:s, s:i, s:i, s:s}", "type", "integer", "minimum", 1, "maximum",
                     ENGRAM_MAX_TOP_K, "description", "At most this many results (default 10)");
}

static int s_memory_tools(json_t *tools)
{
    static const char *const text_req[] = {"text", NULL}, *const query_req[] = {"query", NULL},
                             *const key_req[] = {"key", NULL},
                             *const update_req[] = {"key", "text", "version", NULL},
                             *const forget_req[] = {"filters", NULL},
                             *const share_req[] = {"key", "scope", NULL};
    json_t *list[] = {
        s_memory_tool(
            "memory_add", "Add a memory",
            "Stores a memory (a text, with optional JSON metadata) in a scope and returns its "
            "id. With an id, a repeated add stores once.",
            s_input(json_pack("{s:o, s:o, s:o, s:o}", "text", s_prop("string", "What to remember"),
                              "scope", s_scope_prop(), "metadata",
                              s_prop("object", "JSON metadata that filters can match"), "id",
                              s_prop("string", "An id of the caller's (idempotent add)")),
                    text_req),
            false, false, false),
        s_memory_tool("memory_search", "Search memories",
                      "Finds memories by their words (BM25, stemmed), best first, among what this "
                      "agent may read. Each result has its scope, key, text, author and score.",
                      s_input(json_pack("{s:o, s:o, s:o, s:o, s:o}", "query",
                                        s_prop("string", "What to look for"), "scope",
                                        s_scope_prop(), "scopes", s_scopes_prop(), "filters",
                                        s_prop("object", S_FILTERS_DOC), "top_k", s_top_k_prop()),
                              query_req),
                      true, false, true),
        s_memory_tool(
            "memory_get", "Get a memory",
            "Reads the memory under a key: its value, author, metadata, concurrent versions "
            "if any, and the version memory_update expects.",
            s_input(json_pack("{s:o, s:o}", "key", s_prop("string", "The memory's key or id"),
                              "scope", s_scope_prop()),
                    key_req),
            true, false, true),
        s_memory_tool(
            "memory_list", "List memories",
            "Lists a scope's keys in order, one page at a time, each with its type and a "
            "preview; next_cursor (empty at the end) asks for the next page.",
            s_input(json_pack("{s:o, s:o, s:o, s:o, s:o}", "scope", s_scope_prop(), "prefix",
                              s_prop("string", "Only keys starting with this"), "filters",
                              s_prop("object", S_FILTERS_DOC), "cursor",
                              s_prop("string", "next_cursor of the previous page"), "limit",
                              json_pack("{s:s, s:i, s:i, s:s}", "type", "integer", "minimum", 1,
                                        "maximum", ENGRAM_MAX_PAGE, "description",
                                        "At most this many keys (default 100)")),
                    NULL),
            true, false, true),
        s_memory_tool(
            "memory_update", "Update a memory",
            "Replaces a memory's text, only if nobody changed it since the version "
            "memory_get gave; otherwise fails and changes nothing.",
            s_input(json_pack("{s:o, s:o, s:o, s:o, s:o}", "key", s_prop("string", "The key"),
                              "text", s_prop("string", "The new text"), "version",
                              s_prop("string", "The version memory_get returned"), "scope",
                              s_scope_prop(), "metadata",
                              s_prop("object", "The new JSON metadata")),
                    update_req),
            false, true, false),
        s_memory_tool("memory_delete", "Delete a memory", "Deletes the memory under a key.",
                      s_input(json_pack("{s:o, s:o}", "key", s_prop("string", "The key"), "scope",
                                        s_scope_prop()),
                              key_req),
                      false, true, true),
        s_memory_tool("memory_forget", "Forget memories",
                      "Deletes every memory of a scope whose metadata matches a filter. A dry run "
                      "(the default) only counts them: call again with dry_run false to delete.",
                      s_input(json_pack("{s:o, s:o, s:o}", "filters",
                                        s_prop("object", S_FILTERS_DOC), "scope", s_scope_prop(),
                                        "dry_run", s_prop("boolean", "Only count (default true)")),
                              forget_req),
                      false, true, true),
        s_memory_tool("memory_history", "History of a memory",
                      "Every change to the memory under a key, oldest first: when, what, by whom.",
                      s_input(json_pack("{s:o, s:o}", "key", s_prop("string", "The key"), "scope",
                                        s_scope_prop()),
                              key_req),
                      true, false, true),
        s_memory_tool(
            "memory_context", "Memory context for a prompt",
            "A ready prompt block of the memories relevant to a query, best first, within a "
            "budget of tokens.",
            s_input(
                json_pack("{s:o, s:o, s:o, s:o, s:o}", "query",
                          s_prop("string", "What the prompt is about"), "tokens",
                          json_pack("{s:s, s:i, s:i, s:s}", "type", "integer", "minimum", 1,
                                    "maximum", 100000, "description", "The budget (default 500)"),
                          "scope", s_scope_prop(), "scopes", s_scopes_prop(), "top_k",
                          s_top_k_prop()),
                query_req),
            true, false, true),
        s_memory_tool(
            "memory_share", "Share a private memory",
            "Copies a memory of this agent's private scope into a shared scope, keeping its "
            "provenance.",
            s_input(json_pack("{s:o, s:o}", "key", s_prop("string", "The private memory's key"),
                              "scope", s_prop("string", "The shared scope to copy it into")),
                    share_req),
            false, false, true),
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        if (!list[i] || json_array_append_new(tools, list[i]) != 0)
            rc = -1;
    return rc;
}

json_t *mcp_catalog_entity_schema(void)
{
    return s_entity_schema(false);
}

json_t *mcp_catalog_relation_schema(void)
{
    return s_relation_schema(false);
}

json_t *mcp_catalog_tools(void)
{
    json_t *tools = json_array();
    if (tools && (s_graph_tools(tools) != 0 || s_memory_tools(tools) != 0)) {
        json_decref(tools);
        return NULL;
    }
    return tools;
}

const json_t *mcp_catalog_find(const json_t *tools, const char *name)
{
    size_t i;
    json_t *tool;
    json_array_foreach(tools, i, tool)
    {
        if (strcmp(json_string_value(json_object_get(tool, "name")), name) == 0)
            return tool;
    }
    return NULL;
}
