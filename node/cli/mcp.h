/*  node/cli/mcp: `engram mcp`, the Model Context Protocol server of an agent, on stdio.
 *
 *  An MCP client (an agent's host: Claude Desktop, an IDE, the MCP SDKs) starts
 *  `engram [--agent NAME] [--user NAME] mcp [--scope S]...` and talks JSON-RPC 2.0 to it, one
 *  message a line on stdin and stdout (stdout carries nothing but protocol; logs go to
 *  stderr). Every tool runs through libengram as that agent, with its key, so the node's access
 *  control decides each one; the server holds no state of its own besides the connection.
 *
 *  Files: mcp_protocol.c (a line to a request, a tool call checked against its schema, and the
 *  JSON-RPC replies), mcp_catalog.c (the tools' definitions) — both pure jansson, the part the
 *  fuzzer drives —, mcp_graph.c (the knowledge graph tools of the official MCP memory server
 *  on engram's CRDTs, and the JSONL of its file for import and export), mcp_tools.c (engram's
 *  own memory_* tools), mcp_server.c (the session: initialize, tools, resources, the
 *  subscription thread, the stdin loop).
 *
 *  Invariants:
 *    - a request gets exactly one answer, a notification none; every answer and notification
 *      is one line of compact JSON written whole under one lock (the subscription thread
 *      writes too);
 *    - a message longer than MCP_MAX_LINE_BYTES is refused (-32600) and skipped without being
 *      held in memory, one of more than MCP_MAX_VALUES values before it is parsed; JSON
 *      nesting is bounded by jansson's parser depth; a refusal goes to
 *      the id the message names (mcp_scan_id), null when none is found;
 *    - stdout carries JSON-RPC alone (mcp_claim_stdout);
 *    - a tool's failure (bad arguments, access denied, a missing entity) is a result with
 *      isError and a message a model can act on, never a protocol error; a graph tool that
 *      fails on its arguments writes nothing.
 */
#ifndef NODE_CLI_MCP_H
#define NODE_CLI_MCP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "engram/engram.h"

/*  The protocol versions served, newest first: the answer to an initialize asking for another
 *  is the newest. */
#define MCP_PROTOCOL_LATEST "2025-11-25"
#define MCP_MAX_LINE_BYTES  (8 * 1024 * 1024)
/*  The most values (objects, arrays and the elements and members separated by commas) a
 *  message may hold: jansson spends tens of bytes a value, 80 times the line for a line of
 *  empty objects, so a message past it is refused before it is parsed. A knowledge graph
 *  call of 500 entities holds a few thousand. */
#define MCP_MAX_VALUES 100000

/*  JSON-RPC 2.0 error codes. */
#define MCP_PARSE_ERROR      -32700
#define MCP_INVALID_REQUEST  -32600
#define MCP_METHOD_NOT_FOUND -32601
#define MCP_INVALID_PARAMS   -32602
#define MCP_INTERNAL_ERROR   -32603

/*  --- mcp_protocol.c --------------------------------------------------------------------- */

/*  One decoded message. id is NULL for a notification (and for a response the client sends,
 *  which has no method: method is then NULL too). The json_t pointers borrow from root. */
typedef struct {
    json_t *root;       /* owned: the parsed line */
    json_t *id;         /* a string or a number; NULL: a notification */
    const char *method; /* NULL: the client's response to a request of ours */
    json_t *params;     /* an object, or NULL when absent */
} mcp_message_t;

/*  Decodes one line (len bytes, no newline) into message. Returns 0, or a JSON-RPC error code
 *  (MCP_PARSE_ERROR, MCP_INVALID_REQUEST) with a reason in why (why_len bytes) and, in
 *  *error_id, the id to answer with (a new reference; JSON null when none could be read: for a
 *  line that does not parse, mcp_scan_id's). A lone UTF-16 surrogate escape (half of a pair, as
 *  a client that cut a string inside an emoji sends) decodes as U+FFFD, which jansson would
 *  refuse. On success the caller releases the message with mcp_message_fini. */
int mcp_message_decode(const char *line, size_t len, mcp_message_t *message, json_t **error_id,
                       char *why, size_t why_len);
/*  The top-level "id" of text (len bytes) that does not parse, or of a line's first part, read
 *  by a scan that follows strings and nesting only: a string, or an integer within int64 (a new
 *  reference), else JSON null, also when a top-level "result" or "error" without a "method"
 *  shows a response. So that a refusal still reaches the request it refuses, and never a
 *  response's id. */
json_t *mcp_scan_id(const char *text, size_t len);
/*  Whether text (len bytes) holds at most MCP_MAX_VALUES values, counted by a scan that
 *  follows strings: each '{', '[' and ',' outside them. */
bool mcp_values_within(const char *text, size_t len);
/*  The same for a parsed message (taken: the message owns it, or it is released), as one
 *  element of a batch is. */
int mcp_message_from(json_t *root, mcp_message_t *message, json_t **error_id, char *why,
                     size_t why_len);
void mcp_message_fini(mcp_message_t *message);

/*  snprintf into text, cut back to a whole UTF-8 sequence when the text was cut: what it
 *  writes is well-formed UTF-8, as a JSON string must be, whenever its parts were (a cut in the
 *  middle of a character would make jansson refuse the reply). Every message that may quote
 *  what a client sent is written with it. */
void mcp_format(char *text, size_t text_len, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/*  The reply lines, each a new object the caller owns (NULL when memory runs out). id is
 *  borrowed. */
json_t *mcp_result(json_t *id, json_t *result); /* takes result */
json_t *mcp_error(json_t *id, int code, const char *message);
json_t *mcp_notification(const char *method, json_t *params); /* takes params */

/*  The protocol version to answer an initialize that asked for requested (NULL: none). */
const char *mcp_negotiate_version(const char *requested);

/*  A tool result: content is one text item; structured (taken; may be NULL) is its
 *  structuredContent. */
json_t *mcp_tool_result(const char *text, json_t *structured);
/*  A tool result whose text is structured as JSON.stringify(structured, null, 2) writes it. */
json_t *mcp_tool_result_json(json_t *structured);
/*  A failed tool: isError with the message as its text. */
json_t *mcp_tool_error(const char *format, ...) __attribute__((format(printf, 1, 2)));

/*  Whether value fits schema, for the JSON Schema that tools' input schemas use: type (object,
 *  array, string, integer, number, boolean), properties, required, items, enum, minimum,
 *  maximum; other keywords are not checked. When not, why says where (path names value) and
 *  what. Recursion follows the schema, which is the server's own. */
bool mcp_schema_check(const json_t *schema, const json_t *value, const char *path, char *why,
                      size_t why_len);

/*  A tools/call's params against the catalog (mcp_catalog_tools). Returns 0 with the tool's
 *  name in *name (borrowed from params) and its arguments in *args (a new reference: {} when
 *  absent), which fit its input schema; MCP_INVALID_PARAMS when params are not a call (no
 *  "name", "arguments" not an object): a protocol error; or MCP_TOOL_REFUSED when the tool is
 *  unknown or the arguments do not fit: a tool error. why says which, as the MCP SDK words it. */
#define MCP_TOOL_REFUSED 1
int mcp_call_check(const json_t *tools, const json_t *params, const char **name, json_t **args,
                   char *why, size_t why_len);

/*  --- mcp_catalog.c: the tools' definitions ---------------------------------------------- */

/*  Every tool (name, title, description, inputSchema, annotations; the graph tools also
 *  outputSchema and execution): the nine graph tools, then engram's. NULL when memory runs
 *  out. */
json_t *mcp_catalog_tools(void);
const json_t *mcp_catalog_find(const json_t *tools, const char *name);
/*  The schema of an entity {name, entityType, observations} and of a relation {from, to,
 *  relationType}, as create_entities and create_relations take them. */
json_t *mcp_catalog_entity_schema(void);
json_t *mcp_catalog_relation_schema(void);

/*  --- mcp_graph.c: the official memory server's tools ------------------------------------ */
/*  Whether name is one of the nine; *result gets the tool result (a new reference). args fit
 *  the tool's input schema (mcp_schema_check). */
bool mcp_graph_call(engram_t *engram, const char *scope, const char *name, json_t *args,
                    json_t **result);
/*  The whole graph of scope as {entities, relations}, into *graph (new reference). Returns 0 or
 *  an ENGRAM_E* code (engram_last_error says more). */
int mcp_graph_read(engram_t *engram, const char *scope, json_t **graph);
/*  The key prefix of the graph's objects in a scope: a change to a key starting with it is a
 *  change to the graph. */
#define MCP_GRAPH_KEY_PREFIX "kg/"
/*  The longest text (a name, a type, an observation) a graph tool writes. */
#define MCP_GRAPH_MAX_TEXT_BYTES (256 * 1024)

/*  The official server's file (MEMORY_FILE_PATH), one JSON object a line: every entity, then
 *  every relation. mcp_graph_import checks the whole text first (a line it cannot read is
 *  ENGRAM_EINVAL with its number in why, and nothing is written), then merges it into scope as
 *  create_entities, add_observations and create_relations would; *entities and *relations say
 *  how many lines of each it read. mcp_graph_export writes scope's graph to out. */
int mcp_graph_import(engram_t *engram, const char *scope, const char *text, size_t len,
                     size_t *entities, size_t *relations, char *why, size_t why_len);
int mcp_graph_export(engram_t *engram, const char *scope, FILE *out);

/*  --- mcp_tools.c: engram's own tools ---------------------------------------------------- */

/*  What engram's tools default to: the scope of a write or a read without "scope" (the
 *  session's first --scope), and the scopes a search covers without "scope(s)" (every --scope
 *  given; none: every scope the agent may read). */
typedef struct {
    const char *scope;
    const char *const *search_scopes;
    size_t nsearch_scopes;
} mcp_defaults_t;

/*  The isError result of a failed libengram call rc on scope: the error, the node's message
 *  and what to do about it. */
json_t *mcp_engram_error(engram_t *engram, int rc, const char *scope);
/*  As mcp_graph_call, for engram's tools. */
bool mcp_tools_call(engram_t *engram, const mcp_defaults_t *defaults, const char *name,
                    json_t *args, json_t **result);

/*  --- mcp_server.c ------------------------------------------------------------------------ */

/*  Keeps the process's stdout for JSON-RPC alone: the session writes to a copy of it, and fd 1
 *  becomes a copy of stderr, where whatever a library prints goes (czmq's zconfig prints a key
 *  file's parse error with printf). Called once, before connecting; 0, or ENGRAM_EIO (stdout
 *  left as it was). */
int mcp_claim_stdout(void);

/*  Serves the session on stdin/stdout until stdin ends. engram is the session's connection;
 *  endpoint, agent and user open the second one that watches the graph's scope for
 *  resources/subscribe. scopes: the --scope values (the first holds the graph; none: user:USER).
 *  Returns 0, or an ENGRAM_E* code when the session could not run at all. */
int mcp_serve(engram_t *engram, const char *endpoint, const char *agent, const char *user,
              const char *const *scopes, size_t nscopes);

#endif
