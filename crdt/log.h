/*  crdt_log: append-only log objects of a scope.
 *
 *  State: DotFun<entry>. append(v) takes a fresh dot d and adds d -> (hlc, v); it removes
 *  nothing, so every append survives until the whole log is forgotten. A range read orders
 *  the entries by (hlc, node, n): one total order on every replica, close to real time.
 */
#ifndef CRDT_LOG_H
#define CRDT_LOG_H

#include "crdt/scope.h"

int crdt_log_append(crdt_scope_t *self, const char *key, uint64_t hlc, const void *data,
                    size_t len, crdt_scope_t **delta_p);
/*  Every entry in log order. *entries is the caller's to free(); data pointers are borrowed
 *  until the next change of self. ENGRAM_ENOTFOUND if there is no log under key. */
int crdt_log_range(const crdt_scope_t *self, const char *key, crdt_entry_view_t **entries,
                   size_t *n);

extern const crdt_type_t crdt__log_type;

#endif
