/*  crdt_scope: one shared scope, the unit of causality: a delta-state CRDT holding every
 *  object of the scope under one causal context.
 *
 *  Model (Almeida, Shoker, Baquero, "Delta State Replicated Data Types", 2018). A scope is
 *  DotMap<(type, key), DotMap<elem, DotFun<value>>> with one context. Every type is an
 *  instance of that one shape: an AWSet is DotMap<elem, DotFun<data>> (each add's data, which
 *  may be empty: then a DotSet), a causal counter is DotMap<contributor, DotFun<total>>, and
 *  MVReg and Log are a DotFun under the empty element.
 *  Flattened, the state is a set of entries (type, key, elem, dot) -> (hlc, value) plus the
 *  context, and the one join for every store is
 *      S ⊔ S' = (S ∩ S') ∪ {e ∈ S : dot(e) ∉ c'} ∪ {e ∈ S' : dot(e) ∉ c},   c ⊔ c' = c ∪ c'
 *  with empty DotFuns and DotMaps pruned, exactly the paper's nested join. The object type is
 *  part of the map key, so two replicas that concurrently create one key with different types
 *  never conflict inside the lattice: both objects exist and crdt_scope_types_of reports both.
 *
 *  Invariants kept by every function:
 *  - every live entry's dot is in the context, and no dot labels two entries;
 *  - the digest is the XOR of the hashes of the live entries (order-independent, incremental);
 *  - a replica's own dots are issued from its context: the next dot of replica r is
 *    (r, max_r + 1), so the counter is persisted exactly when the context is;
 *  - for every operation that removed dots, a removal record (op dot -> removed dots) is kept
 *    until the op is below a stable cut handed to crdt_scope_prune. Joins carry records along,
 *    so every replica can serve catch-up deltas to any other;
 *  - the prune cut is inside the context. Only a whole state carries its prune cut to another
 *    replica (which then lacks the same records); a catch-up delta carries none.
 *
 *  Deltas are scopes too (replica 0: they never issue dots). Mutators (in awset.h, mvreg.h,
 *  counter.h, log.h) change the scope and return the delta m^δ(x), with x ⊔ m^δ(x) = m(x).
 *
 *  Ownership: a scope owns all its entries, values, records and notes. Functions returning
 *  crdt_scope_t * give the caller a new scope to destroy. Not thread-safe.
 *
 *  Cost: a join visits the delta's entries plus, for removals, whichever is smaller: the dots of
 *  the delta's context or the scope's live entries. crdt_scope_delta_since scans the live
 *  entries once (O(entries)); node/ answers anti-entropy from its RocksDB ops index instead.
 *
 *  ENGRAM_ENOMEM in the middle of a join leaves the scope unusable: it is marked broken and
 *  every later change returns ENGRAM_ENOMEM (reads still work). Discard it and reload.
 */
#ifndef CRDT_SCOPE_H
#define CRDT_SCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crdt/ctx.h"
#include "crdt/type.h"
#include "engram/limits.h"

typedef struct crdt_scope crdt_scope_t;

/*  A new empty scope whose mutations issue dots as `replica` (0: a delta or a read-only copy,
 *  whose mutators refuse with ENGRAM_EINVAL). */
crdt_scope_t *crdt_scope_new(uint64_t replica);
void crdt_scope_destroy(crdt_scope_t **self_p);
/*  A copy with the same state, records and prune cut, issuing dots as `replica`. Caller owns. */
crdt_scope_t *crdt_scope_dup(const crdt_scope_t *self, uint64_t replica);

uint64_t crdt_scope_replica(const crdt_scope_t *self);
/*  The causal context; borrowed until the next change of self. */
const crdt_ctx_t *crdt_scope_ctx(const crdt_scope_t *self);
uint64_t crdt_scope_digest(const crdt_scope_t *self);
/*  Number of live entries. */
size_t crdt_scope_entries(const crdt_scope_t *self);
/*  Number of removal records held (garbage waiting for a stable cut). */
size_t crdt_scope_records(const crdt_scope_t *self);
/*  Removal records of ops at or below this cut are gone; borrowed until the next change. */
const crdt_ctx_t *crdt_scope_pruned(const crdt_scope_t *self);
/*  Bit (1u << type) is set for every type that has an object under key. */
unsigned crdt_scope_types_of(const crdt_scope_t *self, const char *key);

/*  Op notes: an immutable blob attached to an operation's dot, carried with the op wherever
 *  its dot goes: joins copy them, crdt_scope_delta_since ships the notes of the ops the asker
 *  lacks (a whole state: every note), the codec keeps them. A note decides nothing in a join
 *  and is no part of the state's digest or equality; it is never pruned. One note per dot:
 *  the first one held stays (an op's note never changes). node/ carries each operation's
 *  history step in its note, so that every replica holding the op shows the same history.
 *  On the wire a note may go in a shorter form its receiver expands from the op's entry in
 *  the same delta (crdt_scope_encode_wire): a decoded delta holds that form until then.
 *  crdt_scope_note refuses (ENGRAM_EINVAL) an empty note, one larger than
 *  CRDT_MAX_NOTE_BYTES, or one whose dot is not in the context. */
#define CRDT_MAX_NOTE_BYTES (ENGRAM_MAX_ENTRY_BYTES + 64 * 1024)
int crdt_scope_note(crdt_scope_t *self, crdt_dot_t op, const void *data, size_t len);
/*  The note of op, or NULL; borrowed until the next change of self. */
const uint8_t *crdt_scope_note_of(const crdt_scope_t *self, crdt_dot_t op, size_t *len);
typedef int (*crdt_scope_note_fn)(void *arg, crdt_dot_t op, const uint8_t *data, size_t len);
/*  Calls fn for every note, in no order; a non-zero return stops and is returned. */
int crdt_scope_foreach_note(const crdt_scope_t *self, crdt_scope_note_fn fn, void *arg);
size_t crdt_scope_notes(const crdt_scope_t *self);
/*  Drops every note (a delta too big to send with them goes without: gossip/engine.h). Out
 *  of memory, they stay. */
void crdt_scope_drop_notes(crdt_scope_t *self);

/*  self := self ⊔ delta. Refuses with ENGRAM_EDOTREUSE, changing nothing, when a dot of the
 *  delta labels different content here (a replica issued one dot twice: joining would make
 *  replicas diverge silently). */
int crdt_scope_join(crdt_scope_t *self, const crdt_scope_t *delta);

/*  The delta that brings a replica whose context is `since` up to date: the live entries whose
 *  dots `since` lacks, the removed dots of every op `since` lacks (dots it may still hold
 *  live), and the context difference, with the removal records of those ops. If `since` does
 *  not cover the prune cut (records it would need are gone), the whole state. Caller owns;
 *  NULL when out of memory.
 *  Precondition: `since` is the context of a causally consistent replica, one that holds a
 *  dot only with the effects of its operation, as replicas that apply pushes in causal order
 *  and pulls as one unit always are. A replica that joined deltas out of causal order may
 *  hold an operation's dot (carried by a later delta that removed its entry) without its
 *  removals; this delta would not repeat them. */
crdt_scope_t *crdt_scope_delta_since(const crdt_scope_t *self, const crdt_ctx_t *since);

/*  Drops the removal records of ops in stable_cut (a context every live replica has reached).
 *  ENGRAM_EINVAL, changing nothing, if self does not cover the cut. */
int crdt_scope_prune(crdt_scope_t *self, const crdt_ctx_t *stable_cut);

/*  Removes every object under key, whatever its type: one operation with a fresh dot that
 *  removes every entry it observes. ENGRAM_ENOTFOUND if there is none. */
int crdt_scope_forget(crdt_scope_t *self, const char *key, crdt_scope_t **delta_p);

/*  For storage layers that keep a scope outside memory (node/ keeps entries in RocksDB and
 *  loads one object at a time into a view): joins ctx into self's context, then restores
 *  stored entries one by one. ENGRAM_EINVAL if the entry's dot is not in the context,
 *  ENGRAM_EDOTREUSE if it is already used. */
int crdt_scope_restore_ctx(crdt_scope_t *self, const crdt_ctx_t *ctx);
int crdt_scope_restore(crdt_scope_t *self, crdt_type_id_t type, const char *key,
                       const crdt_entry_view_t *entry);
/*  Restores a stored removal record: op removed those dots. ENGRAM_EINVAL unless the op and
 *  every removed dot are in the context and nremoved > 0. */
int crdt_scope_restore_record(crdt_scope_t *self, crdt_dot_t op, const crdt_dot_t *removed,
                              size_t nremoved);

/*  Visits every live entry (object by object) and every removal record, for storage layers
 *  that persist a delta. The visitor must not change self; a non-zero return stops the walk
 *  and is returned. */
typedef int (*crdt_scope_entry_fn)(void *arg, crdt_type_id_t type, const char *key,
                                   const crdt_entry_view_t *entry);
typedef int (*crdt_scope_record_fn)(void *arg, crdt_dot_t op, const crdt_dot_t *removed,
                                    size_t nremoved);
int crdt_scope_foreach_entry(const crdt_scope_t *self, crdt_scope_entry_fn fn, void *arg);
int crdt_scope_foreach_record(const crdt_scope_t *self, crdt_scope_record_fn fn, void *arg);

/*  The live entry whose dot is `dot`, with its object's type and key (entry.data is never
 *  NULL, "" for an empty entry). Borrowed until the next change of the scope. */
typedef struct {
    crdt_type_id_t type;
    const char *key;
    crdt_entry_view_t entry;
} crdt_dot_entry_t;
/*  Whether self holds a live entry whose dot is `dot`; if so, *out is set to it. */
bool crdt_scope_dot_entry(const crdt_scope_t *self, crdt_dot_t dot, crdt_dot_entry_t *out);

/*  Same context and same live entries (records and prune cut are bookkeeping, not state). */
bool crdt_scope_equal(const crdt_scope_t *self, const crdt_scope_t *other);
/*  Recomputes the digest from scratch; tests compare it with the incremental one. */
uint64_t crdt_scope_digest_recompute(const crdt_scope_t *self);

#endif
