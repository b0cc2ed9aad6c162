/*  crdt_mvreg: multi-value register objects of a scope.
 *
 *  State: DotFun<value>. write(v) takes a fresh dot d, stores d -> (hlc, v) and removes every
 *  value it observed. Concurrent writes all survive as siblings; a read returns them all,
 *  winner first, the winner being the highest (hlc, node, n): deterministic on every replica
 *  whatever the order of delivery, and the newest by hybrid logical clock.
 */
#ifndef CRDT_MVREG_H
#define CRDT_MVREG_H

#include "crdt/scope.h"

/*  ENGRAM_ETYPE if key names an object of another type; ENGRAM_ETOOBIG for a value past
 *  ENGRAM_MAX_VALUE_BYTES. */
int crdt_mvreg_write(crdt_scope_t *self, const char *key, uint64_t hlc, const void *data,
                     size_t len, crdt_scope_t **delta_p);
/*  The siblings, winner first. *siblings is the caller's to free(); its data pointers are
 *  borrowed until the next change of self. ENGRAM_ENOTFOUND if there is no register. */
int crdt_mvreg_read(const crdt_scope_t *self, const char *key, crdt_entry_view_t **siblings,
                    size_t *n);

extern const crdt_type_t crdt__mvreg_type;

#endif
