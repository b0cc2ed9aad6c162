/*  crdt_counter: causal counter objects of a scope.
 *
 *  State: DotMap<contributor, DotFun<total>>. Each (writing node, contributor) pair holds one
 *  entry, its running total, under the element `contributor`; the next increment of that pair
 *  takes a fresh dot and replaces that entry (the old dot goes into the delta's context),
 *  leaving the entries of every other contributor, here and elsewhere, as they are. The value
 *  is the sum of all the entries. A forget of the object removes every entry it observed, of
 *  every contributor, so increments concurrent with it survive (a reset that never loses an
 *  unobserved increment). Totals are int64: an increment that would overflow a pair's total,
 *  or a sum that overflows, is ENGRAM_ERANGE.
 *
 *  The contributor is opaque here: any name of at most ENGRAM_MAX_KEY_BYTES, "" included (the
 *  contributor of counters written before contributions carried provenance, or an unknown
 *  one). node/ uses "<agent>\x1f<user>" (\x1f cannot occur in agent or user names), so that
 *  a reader may be shown only the contributions whose provenance it may see
 *  (crdt_counter_contributions).
 */
#ifndef CRDT_COUNTER_H
#define CRDT_COUNTER_H

#include "crdt/scope.h"

/*  Adds amount to this replica's total for contributor. ENGRAM_ETYPE if key names an object of
 *  another type; ENGRAM_EINVAL for an empty key; ENGRAM_ETOOBIG for a key or contributor past
 *  ENGRAM_MAX_KEY_BYTES; ENGRAM_ERANGE, and no operation, if the total would overflow. The
 *  delta is the caller's if delta_p. */
int crdt_counter_add(crdt_scope_t *self, const char *key, const char *contributor, int64_t amount,
                     crdt_scope_t **delta_p);
/*  The sum of every contributor's totals. ENGRAM_ENOTFOUND if there is no counter under key. */
int crdt_counter_value(const crdt_scope_t *self, const char *key, int64_t *value);

/*  One contributor's share of a counter: the sum of its totals over every writing node. */
typedef struct {
    const char *contributor;
    int64_t total;
} crdt_counter_contribution_t;

/*  One item per contributor with an entry, in strcmp order. *contributions is the caller's to
 *  free(); the strings are borrowed until the next change of self. ENGRAM_ENOTFOUND if there
 *  is no counter under key; ENGRAM_ERANGE if a contributor's sum overflows. */
int crdt_counter_contributions(const crdt_scope_t *self, const char *key,
                               crdt_counter_contribution_t **contributions, size_t *n);

extern const crdt_type_t crdt__counter_type;

#endif
