/*  node_names: the one rule for the names people read (agent and user names, scope ids) and for
 *  scope names, applied alike to what agents send and to what peers gossip.
 *
 *  A name is non-empty UTF-8 in Unicode normalisation form C, holding only characters that
 *  are visible: no control (Cc), format (Cf: zero-width and bidirectional marks such as
 *  U+200B and U+202E), separator (Zs, Zl, Zp: every kind of space, U+00A0 included),
 *  surrogate, private-use or unassigned code point. So two names that look alike are the same
 *  bytes, and none can hide text or reorder what a person sees. Categories and normalisation
 *  come from utf8proc (Debian's libutf8proc), never from tables of our own.
 *
 *  A shared scope name is KIND:ID with KIND one of NODE_SCOPE_KINDS and ID a name; at most
 *  NODE_MAX_SCOPE_BYTES bytes in all.
 */
#ifndef NODE_NAMES_H
#define NODE_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define NODE_MAX_SCOPE_BYTES 256
#define NODE_SCOPE_KINDS     "user, run, app, agent, team, sys"

/*  Whether name[0..len) is a name. When it is not and why is not NULL, *why is a static phrase
 *  saying what is wrong ("holds an invisible or formatting character", ...) that never quotes
 *  the input. */
bool node_name_ok(const char *name, size_t len, const char **why);
/*  Whether scope[0..len) is a shared scope name (KIND:ID, as above). why as node_name_ok. */
bool node_scope_name_ok(const char *scope, size_t len, const char **why);

#endif
