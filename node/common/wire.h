/*  node_wire: checks the text of a protobuf message before anyone reads it as C strings.
 *
 *  protobuf-c unpacks a `string` field into a NUL-terminated char * without looking at its
 *  bytes, so an embedded NUL silently cuts it short ("k\0hidden" reads as "k") and bytes that
 *  are not UTF-8 reach every later printf, log and reply. node_wire_check_strings walks the
 *  encoded bytes of a message with its protobuf-c descriptor and verifies that every field the
 *  descriptor declares `string` (in sub-messages too, repeated ones included, at any depth up
 *  to NODE_WIRE_MAX_DEPTH) is well-formed UTF-8 (no overlong form, no surrogate, nothing past
 *  U+10FFFF: utf8proc's decoder) and holds no NUL. Fields the descriptor does not know, and
 *  every other type, are skipped as the wire format says. It never quotes the input: a
 *  refusal names the field (the descriptor's own static name), nothing else.
 *
 *  Generic: any message of proto/ (a Request from an agent, a gossip message from a peer).
 *  No state, no allocation; the cost is one pass over the bytes.
 */
#ifndef NODE_WIRE_H
#define NODE_WIRE_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  Sub-messages nested deeper than this are refused as malformed (protobuf-c itself recurses
 *  without a bound). */
#define NODE_WIRE_MAX_DEPTH 32

/*  0 when every string field of the message of type desc encoded in data[0..len) is valid
 *  UTF-8 without NUL. ENGRAM_EINVAL when one is not: *field (if not NULL) is that field's
 *  name, static. ENGRAM_EDECODE when the bytes are not a message of that shape (truncated,
 *  a group, nested too deep): *field is the field where the walk stopped, or NULL. */
int node_wire_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                            const char **field);

/*  Whether text[0..len) is valid UTF-8 without NUL: the rule above for one string. */
bool node_wire_text_ok(const char *text, size_t len);

#endif
