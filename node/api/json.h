/*  node_json: the checks the agent API makes on text an agent sends: that metadata is one JSON
 *  value, and that names and keys are UTF-8. Both are jansson's own checks (RFC 8259, strict
 *  UTF-8), so the node and the CLI, which prints metadata through jansson, agree on what JSON
 *  is. Nothing built here outlives a call.
 *
 *  Known limit, jansson's: every number is read as a double, so a number past the double range
 *  (1e400, valid RFC 8259 text) is refused; integers past int64 are read, as doubles. The text
 *  the node stores is always the agent's own, never a re-encoding.
 */
#ifndef NODE_JSON_H
#define NODE_JSON_H

#include <stdbool.h>
#include <stddef.h>

/*  Nesting of arrays and objects a metadata document may have. */
#define NODE_JSON_MAX_DEPTH 64

/*  True when text[0..len) is exactly one JSON value with optional whitespace around it, its
 *  strings well-formed UTF-8 ("\u0000" and duplicate keys allowed, lone surrogate escapes not),
 *  nested at most NODE_JSON_MAX_DEPTH deep. Otherwise false, with the reason written into why
 *  (why_len bytes; why may be NULL). False also when memory runs out. */
bool node_json_valid(const char *text, size_t len, char *why, size_t why_len);
/*  True when text[0..len) is well-formed UTF-8 (no overlong forms, surrogates or code points
 *  past U+10FFFF), as JSON text and protobuf strings must be. False also when memory runs out. */
bool node_json_utf8_valid(const char *text, size_t len);

#endif
