/*  node_store: engramd's durable state in RocksDB (DESIGN.md section 4).
 *
 *  Scopes are addressed by a storage id: a shared scope by its name ("run:q3"), an agent's
 *  private scope as "@agent". Private scopes live in their own column family and have no op
 *  records, so nothing that reads the entries and ops families can reach them; the interface
 *  the gossip layer will get accepts only shared names.
 *
 *  Column families and keys (every integer big-endian, so keys sort numerically):
 *    entries   sid \0 key \0 elem \0 node n      -> StoredEntry    live entries, shared scopes
 *    private   @agent \0 key \0 elem \0 node n   -> StoredEntry    live entries, private scopes
 *    ops       sid \0 node n                     -> StoredOp       the dot index (shared only)
 *    history   sid \0 key \0 hlc node n          -> StoredHistory  who did what, when
 *    expiry    expires_at_ms sid \0 key \0 elem \0 node n -> ""    TTL index
 *    meta      "identity" -> public key | secret key;  "replica" -> u64;  "hlc" -> u64;
 *              "running" -> durability of the live process;  "ctx/" sid -> Context
 *
 *  Writing: the caller loads an object into a view (node_store_view), runs a CRDT mutator on
 *  it, and hands the delta to node_store_apply, which writes everything the operation changes
 *  (entries added and removed, op record, history step, TTL index, the scope's context, which
 *  holds the node's dot counter, and the HLC high-water mark) as one WriteBatch, without
 *  syncing. node_store_sync then makes every write since the last sync durable with one fsync
 *  of the WAL: the server's group commit. Only a write that returned 0 changes the in-memory
 *  contexts.
 *
 *  Dot safety: under durability=async a crash may lose acknowledged writes and the counters
 *  with them. A store that finds the "running" mark of an async process that did not stop
 *  cleanly takes a new random replica id, so it never issues a dot twice.
 *
 *  Storage failures: writes are refused with ENGRAM_ENOSPC while the volume's free space is
 *  below a reserve (RocksDB does not survive a full disk while running), and the first I/O
 *  error of a write or sync is latched: every later write is refused with it, reads go on,
 *  and a restart recovers from the WAL. A read-only data directory opens read-only.
 *
 *  Thread: one thread owns a store.
 */
#ifndef NODE_STORE_H
#define NODE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crdt/scope.h"
#include "gossip/engine.h"
#include "node/identity.h"

typedef struct node_store node_store_t;

/*  What one operation records besides its delta. */
typedef struct {
    const char *op;    /* put, delete, set_add, ... */
    const char *agent;
    const char *user;
    uint64_t hlc;
    const char *elem;  /* set ops */
    const void *value; /* put/log: the encoded value; may be NULL */
    size_t len;
    int64_t amount;         /* counter */
    uint64_t expires_at_ms; /* 0: the entry never expires */
} node_history_t;

/*  A listed key. */
typedef struct {
    char *key;
    crdt_type_id_t type;
} node_listed_t;

/*  Opens (creating on first start) the store in dir. On failure returns a code and writes a
 *  one-line reason into why. */
int node_store_open(const char *dir, bool durability_sync, node_store_t **self_p, char *why,
                    size_t why_len);
/*  Writes are refused with ENGRAM_ENOSPC while the data volume has less free space. */
void node_store_set_min_free(node_store_t *self, uint64_t bytes);
/*  Syncs, clears the running mark and closes. */
void node_store_close(node_store_t **self_p);

uint64_t node_store_node_id(const node_store_t *self);
/*  The node's long-term key pair (node/identity.h); borrowed for the store's life. */
const node_identity_t *node_store_identity(const node_store_t *self);
uint64_t node_store_replica(const node_store_t *self);
uint64_t node_store_hlc_floor(const node_store_t *self);
size_t node_store_scopes(const node_store_t *self);
/*  The scope's context; NULL for a scope never written. Borrowed until the next apply. */
const crdt_ctx_t *node_store_ctx(const node_store_t *self, const char *sid);

/*  What a view loads: every entry of the object, the entries of one set element, or none
 *  (an append needs only the context and the object's type). */
typedef enum { NODE_VIEW_OBJECT, NODE_VIEW_ELEM, NODE_VIEW_CONTEXT } node_view_t;

/*  Loads (part of) the object under key into a new view holding the scope's context, so that
 *  mutators run on it issue the node's next dots. *types gets bit (1 << type) for each type
 *  the object has (from its first entry unless the whole object is loaded). Caller owns
 *  *view. */
int node_store_view(node_store_t *self, const char *sid, const char *key, node_view_t what,
                    const char *elem, crdt_scope_t **view, unsigned *types);
/*  Persists one operation: the delta a mutator returned for `before` (the view it ran on). */
int node_store_apply(node_store_t *self, const char *sid, const char *key,
                     const crdt_scope_t *before, const crdt_scope_t *delta,
                     const node_history_t *history);
/*  Makes every apply since the last sync durable (one WAL fsync). */
int node_store_sync(node_store_t *self);

/*  Keys of sid starting with prefix, in key order, after cursor ("" from the start), at most
 *  limit; entries whose value expired by now_ms do not count. *more tells whether a further
 *  page exists. Caller frees with node_store_listed_free. */
int node_store_list(node_store_t *self, const char *sid, const char *prefix, const char *cursor,
                    unsigned limit, uint64_t now_ms, node_listed_t **keys, size_t *n, bool *more);
void node_store_listed_free(node_listed_t *keys, size_t n);

/*  Visits the history of one object in HLC order. */
typedef int (*node_history_fn)(void *arg, uint64_t hlc, crdt_dot_t dot, const char *op,
                               const char *agent, const char *user, crdt_type_id_t type,
                               const char *elem, const uint8_t *value, size_t len,
                               int64_t amount);
int node_store_history(node_store_t *self, const char *sid, const char *key, node_history_fn fn,
                       void *arg);

/*  The store as the replication engine sees it (gossip/engine.h), with the node_store_t as its
 *  state. It names shared scopes only: "@agent" private ids are neither listed nor accepted.
 *  delta_since loads the scope's entries and removal records into a view and asks the kernel;
 *  apply writes a remote delta in one batch: its entries, op records for the ops it brings
 *  (so this node can serve them on), removals found through the ops dot index, the joined
 *  context. Applies are unsynced like node_store_apply; node_store_sync makes them durable. */
extern const gossip_store_t node_store_gossip;

/*  Deletes every entry whose expires_at_ms is at or before now_ms (a local purge: the context
 *  keeps their dots, so no replica can bring them back). *purged counts them. */
int node_store_purge(node_store_t *self, uint64_t now_ms, uint64_t *purged);

#endif
