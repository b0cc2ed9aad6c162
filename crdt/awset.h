/*  crdt_awset: add-wins observed-remove set objects of a scope.
 *
 *  State: DotMap<elem, DotFun<data>>. add(e, data) takes a fresh dot d and replaces the entries
 *  e holds here with {d -> data}; remove(e) takes a fresh dot and removes the entries e holds
 *  here. A remove therefore cancels exactly the adds it observed: an add concurrent with it
 *  keeps the element (add wins), and no remove can cancel an add it did not see. Concurrent
 *  adds of one element all survive, each with its own data, until an operation that observed
 *  them replaces or removes them.
 *
 *  An add's data is opaque here. node/ stores there an encoded crdt_value_t with an empty
 *  payload, whose provenance (user, agents, resources) says who may see the element; adds
 *  written before sets carried provenance have no data (len 0). Like every entry, an add's
 *  data is immutable: a later add replaces the entry, never edits it.
 */
#ifndef CRDT_AWSET_H
#define CRDT_AWSET_H

#include "crdt/scope.h"

/*  Adds elem with data (len bytes, copied; NULL when len is 0). ENGRAM_ETYPE if key names an
 *  object of another type; ENGRAM_EINVAL for an empty key or element; ENGRAM_ETOOBIG for a key
 *  or element past ENGRAM_MAX_KEY_BYTES or data past ENGRAM_MAX_ENTRY_BYTES. The delta is the
 *  caller's if delta_p. */
int crdt_awset_add(crdt_scope_t *self, const char *key, const char *elem, const void *data,
                   size_t len, crdt_scope_t **delta_p);
/*  ENGRAM_ENOTFOUND, and no operation, if the element is not in the set here. */
int crdt_awset_remove(crdt_scope_t *self, const char *key, const char *elem,
                      crdt_scope_t **delta_p);
bool crdt_awset_contains(const crdt_scope_t *self, const char *key, const char *elem);
/*  The members in strcmp order. *members is the caller's to free(); the strings are borrowed
 *  until the next change of self. ENGRAM_ENOTFOUND if there is no set under key. */
int crdt_awset_members(const crdt_scope_t *self, const char *key, const char ***members, size_t *n);
/*  The live adds of elem (one per concurrent add; each view's elem is the element, its data
 *  the add's data), in dot order; or, when elem is NULL, the live adds of every member, by
 *  element in strcmp order, then dot. A reader that may see only some adds shows an element
 *  when one of its adds is readable. *entries is the caller's to free(); the strings and data
 *  are borrowed until the next change of self. ENGRAM_ENOTFOUND if there is no set under key
 *  or elem is not in it. */
int crdt_awset_entries(const crdt_scope_t *self, const char *key, const char *elem,
                       crdt_entry_view_t **entries, size_t *n);

extern const crdt_type_t crdt__awset_type;

#endif
