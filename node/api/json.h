/*  node_json: checks that text is one JSON value (RFC 8259), for the metadata agents attach to
 *  memories, and that names are UTF-8. Syntax only: nothing is built. Nesting deeper than NODE_JSON_MAX_DEPTH is refused
 *  so that hostile input cannot exhaust the stack.
 */
#ifndef NODE_JSON_H
#define NODE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define NODE_JSON_MAX_DEPTH 64

/*  True when text[0..len) is exactly one JSON value, with optional surrounding whitespace. */
bool node_json_valid(const char *text, size_t len);
/*  True when text[0..len) is well-formed UTF-8 (no overlong forms, surrogates or code points
 *  past U+10FFFF), as JSON text and protobuf strings must be. */
bool node_json_utf8_valid(const char *text, size_t len);

#endif
