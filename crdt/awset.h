/*  crdt_awset: add-wins observed-remove set objects of a scope.
 *
 *  State: DotMap<elem, DotSet>. add(e) takes a fresh dot d and replaces the dots e holds here
 *  with {d}; remove(e) takes a fresh dot and removes the dots e holds here. A remove therefore
 *  cancels exactly the adds it observed: an add concurrent with it keeps the element
 *  (add wins), and no remove can cancel an add it did not see.
 */
#ifndef CRDT_AWSET_H
#define CRDT_AWSET_H

#include "crdt/scope.h"

/*  ENGRAM_ETYPE if key names an object of another type; ENGRAM_EINVAL for an empty key or
 *  element; ENGRAM_ETOOBIG past ENGRAM_MAX_KEY_BYTES. The delta is the caller's if delta_p. */
int crdt_awset_add(crdt_scope_t *self, const char *key, const char *elem,
                   crdt_scope_t **delta_p);
/*  ENGRAM_ENOTFOUND, and no operation, if the element is not in the set here. */
int crdt_awset_remove(crdt_scope_t *self, const char *key, const char *elem,
                      crdt_scope_t **delta_p);
bool crdt_awset_contains(const crdt_scope_t *self, const char *key, const char *elem);
/*  The members in strcmp order. *members is the caller's to free(); the strings are borrowed
 *  until the next change of self. ENGRAM_ENOTFOUND if there is no set under key. */
int crdt_awset_members(const crdt_scope_t *self, const char *key, const char ***members,
                       size_t *n);

extern const crdt_type_t crdt__awset_type;

#endif
