/*  crdt_counter: causal counter objects of a scope.
 *
 *  State: DotFun<total>. Each writing node holds one entry, its running total; its next
 *  increment takes a fresh dot and replaces that entry (the old dot goes into the delta's
 *  context). The value is the sum of the entries. A forget of the object removes the entries
 *  it observed, so increments concurrent with it survive (a reset that never loses an
 *  unobserved increment). Totals are int64: an increment that would overflow a node's total,
 *  or a sum that overflows, is ENGRAM_ERANGE.
 */
#ifndef CRDT_COUNTER_H
#define CRDT_COUNTER_H

#include "crdt/scope.h"

int crdt_counter_add(crdt_scope_t *self, const char *key, int64_t amount,
                     crdt_scope_t **delta_p);
/*  ENGRAM_ENOTFOUND if there is no counter under key. */
int crdt_counter_value(const crdt_scope_t *self, const char *key, int64_t *value);

extern const crdt_type_t crdt__counter_type;

#endif
