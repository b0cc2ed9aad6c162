/*  node_store: engramd's durable state in RocksDB.
 *
 *  Scopes are addressed by a storage id: a shared scope by its name ("run:q3"), an agent's
 *  private scope as "@agent". Private scopes live in their own column family and have no op
 *  records, so nothing that reads the entries and ops families can reach them; the interface
 *  the gossip engine gets (node_store_gossip) accepts only shared names.
 *
 *  Column families and keys (every integer big-endian, so keys sort numerically):
 *    entries   sid \0 key \0 elem \0 node n      -> StoredEntry    live entries, shared scopes
 *    private   @agent \0 key \0 elem \0 node n   -> StoredEntry    live entries, private scopes
 *    ops       sid \0 node n                     -> StoredOp       the dot index (shared only)
 *    history   sid \0 key \0 hlc node n          -> StoredHistory  who did what, when
 *    expiry    expires_at_ms sid \0 key \0 elem \0 node n -> ""    TTL index
 *    search    the full-text index (index.c): postings in impact order, documents,
 *              per-provenance totals and document frequencies, embeddings
 *    meta      "identity" -> public key | secret key;  "replica" -> u64;
 *              "hlc" -> u64, the clock's ceiling (node_store_hlc_now);
 *              "running" -> durability of the live process, or "restored";
 *              "ctx/" sid -> Context;  "prune/" sid -> Context (the scope's prune cut);
 *              "gc/" sid -> Context (the dots whose op records a collection visited)
 *  The entries and private families know an object's prefix, sid \0 key \0: their memtables
 *  and tables keep bloom filters of it, so reading an object skips every memtable and table
 *  that holds none of its entries (writing to a new key reads one first).
 *
 *  Writing: the caller loads an object into a view (node_store_view), runs a CRDT mutator on
 *  it, and hands the delta to node_store_apply, which writes everything the operation changes
 *  (entries added and removed, op record, history step, TTL index, the scope's context, which
 *  holds the node's dot counter, and the HLC ceiling if the stamp passed it) as one WriteBatch,
 *  without syncing, into the WAL's buffer in this process (RocksDB's manual_wal_flush).
 *  node_store_write_out writes that buffer to the WAL's file (a kill -9 loses nothing after
 *  it); node_store_sync writes it and makes every write since the last sync durable with one
 *  fsync: the server's group commit. Only a write that returned 0 changes the
 *  in-memory contexts.
 *
 *  Dot safety: under durability=async a crash may lose acknowledged writes and the counters
 *  with them. A store that finds the "running" mark of an async process that did not stop
 *  cleanly takes a new random replica id, so it never issues a dot twice. A checkpoint
 *  (node_store_checkpoint) is marked "restored" for the same reason.
 *
 *  The ops dot index (shared scopes). Invariants kept by every write:
 *  - every live entry of a shared scope has exactly one op record, its own dot's, with
 *    added = true and the entry's key and elem: a dot finds its entry with one point read.
 *    An op record outlives its entry (added stays true; the entry is looked up);
 *  - every op whose removal record the kernel would hold (op -> removed dots) has an op record
 *    listing those dots, unless the op is at or below the scope's prune cut;
 *  - every op record's dot is in the scope's context, and the prune cut is inside it.
 *  So the catch-up delta for an asker at `since` (node_store_gossip.delta_since) is read by
 *  range: for each node, the op records above what `since` holds (one seek per node and per
 *  dot-cloud range of ctx - since), their entries if still alive and their removal records,
 *  under the context difference plus the removed dots. It is the delta crdt_scope_delta_since
 *  would compute on the whole scope, at a cost that tracks what the asker misses. An asker
 *  whose context does not cover the prune cut gets the whole state (every live entry, every
 *  record kept, the whole context and the prune cut), as the kernel answers.
 *
 *  History: every operation writes its step (what, who, for whom, when, the dots it removed)
 *  into the history family, which is never collected. In a shared scope the step is also the
 *  op's note (crdt/scope.h): node_store_apply adds it to the delta that is pushed; the op
 *  record keeps the step's stamp, so a catch-up delta and a whole state carry the steps of
 *  the ops whose records they read; a remote delta's notes are checked (a step that does not
 *  decode, or names another key than the entry of its dot, refuses the delta) and written
 *  into the history family by the batch that applies the delta, for the ops this node did
 *  not hold. On the wire a step may be lean (node_store_gossip.note_wire: its value left to
 *  its op's entry in the same delta, value_in_entry; to a peer of schema minor 4 or later its
 *  key, type and stamp too, key_in_entry); the receiver puts them back before writing it, and
 *  refuses a lean step without that entry, with a value of its own, or that leaves its key to
 *  the entry but not its value, or leaves its key and still carries a key, type or stamp. So
 *  every node that holds an op shows the same step, byte for byte (as long as its origin's
 *  peers sent the bytes protobuf-c packs: a step that came whole is stored as it came, a lean
 *  one repacked). A node that arrives after
 *  ops were collected at a stable cut lacks the steps of what they overwrote: their records
 *  are gone with them.
 *
 *  Garbage: node_store_gc drops the op records at or below a stable cut whose entries are
 *  gone, strips the removals from those whose entries live, and joins the cut into the
 *  scope's prune cut. It visits each record once (the scope's collected dots, "gc/" in meta),
 *  a bounded number a call, each call one batch; a record it kept goes with the write that
 *  removes its entry. The prune cut is joined by the first call, so it may run ahead of the
 *  visited dots (records below it that are still to visit harm nothing: no replica at or
 *  above the cut asks for them). History is user-facing and never collected. A whole-state
 *  delta (one that carries a prune cut) is applied as the join of a whole state: every local
 *  entry whose dot its context holds but whose entry it lacks is deleted (one pass over the
 *  scope's entries), so a replica restored from an old copy, or back after the records it
 *  needed were dropped, converges without resurrecting anything. Its prune cut is joined into
 *  ours: we may lack records below it too.
 *
 *  Storage failures: writes are refused with ENGRAM_ENOSPC while the volume's free space is
 *  below a reserve (RocksDB does not survive a full disk while running), and the first I/O
 *  error of a write or sync is latched: every later write is refused with it, reads go on,
 *  and a restart recovers from the WAL. A read-only data directory opens read-only.
 *
 *  Search index: every live register or log entry whose payload is text (valid UTF-8 with at
 *  least one term, node/search/text.h) is indexed for BM25, in the batch that writes it, and
 *  unindexed in the batch that deletes it: local writes, remote deltas (entries brought, entries
 *  removed, a whole state's join), TTL purges. So the index never drifts from the entries,
 *  after a crash too; node_store_reindex rebuilds it from them (a store opened without the
 *  index's mark, e.g. written by an older engramd, is rebuilt at open). Index records are
 *  per node, never gossiped: each node derives its own from the entries it holds.
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
#include "node/search/text.h"
#include "node/trust/identity.h"

typedef struct node_store node_store_t;

/*  What one operation records besides its delta. */
typedef struct {
    const char *op; /* put, delete, set_add, ... */
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

/*  Opens (creating on first start) the store in dir. flush_bytes_per_s bounds what RocksDB's
 *  background flushes and compactions write a second (0: no bound; a write's own WAL record
 *  is never held by it). On failure returns a code and writes a one-line reason into why. */
int node_store_open(const char *dir, bool durability_sync, uint64_t flush_bytes_per_s,
                    node_store_t **self_p, char *why, size_t why_len);
/*  Writes are refused with ENGRAM_ENOSPC while the data volume has less free space. */
void node_store_set_min_free(node_store_t *self, uint64_t bytes);
/*  The storage failure: 0 while writes are taken; ENGRAM_EREADONLY for a read-only data
 *  directory, else the first I/O error of a write or sync (latched until a restart). */
int node_store_failure(const node_store_t *self);
/*  The storage state in words, into buf: "ok", "read-only" or "failed: ERROR". */
void node_store_state_text(const node_store_t *self, char *buf, size_t len);
/*  Whether the store opened on a read-only data directory. */
bool node_store_read_only(const node_store_t *self);
/*  After a failure: whether everything the store holds (and serves) is durable. True on a
 *  read-only data directory, and when the failure came with no write waiting for a sync;
 *  false when writes since the last sync are in doubt (a sync failed, or durability=async). */
bool node_store_failure_durable(const node_store_t *self);
/*  Figures for monitoring: RocksDB's properties summed over the column families, and the WAL
 *  fsyncs node_store_sync made since the store opened. */
typedef struct {
    uint64_t memtable_bytes;           /* rocksdb.cur-size-all-mem-tables */
    uint64_t sst_bytes;                /* rocksdb.total-sst-files-size */
    uint64_t pending_compaction_bytes; /* rocksdb.estimate-pending-compaction-bytes */
    uint64_t wal_syncs;
} node_store_figures_t;
void node_store_figures(node_store_t *self, node_store_figures_t *figures);
/*  Whether a write would be taken now: no storage failure, and the volume above its reserve
 *  (as last measured). */
bool node_store_writable(node_store_t *self);
/*  Syncs, clears the running mark and closes. */
void node_store_close(node_store_t **self_p);

uint64_t node_store_node_id(const node_store_t *self);
/*  The node's long-term key pair (node/trust/identity.h); borrowed for the store's life. */
const node_identity_t *node_store_identity(const node_store_t *self);
uint64_t node_store_replica(const node_store_t *self);
/*  Takes a new random replica id for the dots written from now on, durably: for a store whose
 *  counters cannot be trusted (peers hold dots of its replica that it lacks, or it could not
 *  ask them; node/cluster/dots.c). 0 or a code (the old id stays). */
int node_store_renew_replica(node_store_t *self);
/*  The node's hybrid logical clock (crdt/hlc.h), kept by the store so that it covers every stamp
 *  the store holds: it starts at the persisted ceiling, at most ENGRAM_HLC_LEASE_MS ahead of the
 *  largest stamp issued or observed before, issues the stamps of local writes (node_store_hlc_now),
 *  and observes every stamp that arrives from another node (the entries of a remote delta, in the
 *  apply that stores them; a causal token, through node_store_hlc_observe), so an effect is stamped
 *  after its cause across nodes too. A stamp more than the maximum drift
 *  (ENGRAM_DEFAULT_MAX_CLOCK_DRIFT_MS unless set) ahead of the wall clock is refused with
 *  ENGRAM_ERANGE and counted, never adopted: a remote delta holding one is not applied
 *  (anti-entropy brings it again once the clocks allow). A write or an apply whose stamp passes the
 *  ceiling puts a new one in its own batch. */
uint64_t node_store_hlc_now(node_store_t *self, uint64_t now_ms);
int node_store_hlc_observe(node_store_t *self, uint64_t stamp, uint64_t now_ms);
/*  The largest stamp issued or observed; after a restart, the ceiling the clock started at. */
uint64_t node_store_hlc_last(const node_store_t *self);
void node_store_set_max_drift(node_store_t *self, uint64_t max_drift_ms);
uint64_t node_store_max_drift(const node_store_t *self);
/*  How many remote stamps were refused for drift. */
uint64_t node_store_clock_refusals(const node_store_t *self);
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
/*  In a shared scope the operation's history step is added to delta as its op's note
 *  (crdt/scope.h), so that the delta gossiped carries it. */
int node_store_apply(node_store_t *self, const char *sid, const char *key,
                     const crdt_scope_t *before, crdt_scope_t *delta,
                     const node_history_t *history);
/*  Makes every apply since the last sync durable (one WAL fsync). */
int node_store_sync(node_store_t *self);
/*  Writes the WAL's buffer out to the file, without an fsync: what was applied survives the
 *  process's end from here on, not a power loss. It writes out even after a latched failure
 *  (what was applied and can be read reaches the log) and returns the latched failure, or 0.
 *  If the file refuses the bytes, the process exits at once (EXIT_FAILURE, logged): its
 *  memtable holds readable writes the log lacks, and nothing about them may leave. So the
 *  caller writes out before it sends anything about the writes. node_store_sync writes out
 *  first too. */
int node_store_write_out(node_store_t *self);

/*  Keys of sid starting with prefix, in key order, after cursor ("" from the start), at most
 *  limit; entries whose value expired by now_ms do not count. *more tells whether a further
 *  page exists. Caller frees with node_store_listed_free. */
int node_store_list(node_store_t *self, const char *sid, const char *prefix, const char *cursor,
                    unsigned limit, uint64_t now_ms, node_listed_t **keys, size_t *n, bool *more);
void node_store_listed_free(node_listed_t *keys, size_t n);

/*  A position in a history or a log: entries are ordered by HLC, then dot. */
typedef struct {
    uint64_t hlc;
    crdt_dot_t dot;
} node_position_t;

/*  One step of an object's history, borrowed for the call. */
typedef struct {
    uint64_t hlc;
    crdt_dot_t dot;
    const char *op; /* put, delete, set_add, ... */
    const char *agent;
    const char *user;
    crdt_type_id_t type;  /* of the entry it added; 0: none */
    const char *elem;     /* set ops; "" */
    const uint8_t *value; /* put/append/set_add: the encoded value; NULL for none */
    size_t len;
    int64_t amount;            /* counter_add */
    const crdt_dot_t *removed; /* the dots the step removed */
    size_t nremoved;
    bool removed_all; /* it removed more than a step lists, or it was written before steps
                         listed their removals: take it as removing every earlier version */
} node_step_t;

/*  Visits the history of one object in HLC order, from the step after `after` (NULL: from
 *  the first), seeking there directly: the cost is the steps visited. fn returns 0 to go on,
 *  NODE_STORE_STOP to stop (then node_store_history returns 0), or an error, returned.
 *  In a shared scope the history holds the steps of every operation this node holds whose
 *  step reached it: its own, and those other nodes' deltas carried (store.h, "History"). */
#define NODE_STORE_STOP 1
typedef int (*node_history_fn)(void *arg, const node_step_t *step);
int node_store_history(node_store_t *self, const char *sid, const char *key,
                       const node_position_t *after, node_history_fn fn, void *arg);

/*  Visits the live entries of the object under key in storage order (element, then dot),
 *  from the first entry of the first element after `after` (NULL or "": from the first),
 *  seeking there directly: the cost is the entries visited, so a page of a set's members
 *  reads that page (and the hidden elements skipped on the way). The view's strings and data
 *  are borrowed for the call. fn returns as for node_store_history. */
typedef int (*node_entry_fn)(void *arg, crdt_type_id_t type, const crdt_entry_view_t *entry);
int node_store_object_entries(node_store_t *self, const char *sid, const char *key,
                              const char *after, node_entry_fn fn, void *arg);

/*  The store as the replication engine sees it (gossip/engine.h), with the node_store_t as its
 *  state. It names shared scopes only: "@agent" private ids are neither listed nor accepted.
 *  delta_since reads the ops dot index by range (see the top of this file; the whole state
 *  for an asker below the prune cut); apply writes a remote delta in one batch: its entries, op
 *  records for the ops it brings (so this node can serve them on), removals found through the
 *  ops dot index (for a whole state: through its context), the joined context and prune cut.
 *  Applies are unsynced like node_store_apply; node_store_sync makes them durable.
 *  Cost: delta_since is O(K log S) for K missed ops (one point read per missed live entry);
 *  a whole-state answer and a whole-state apply are O(scope). */
extern const gossip_store_t node_store_gossip;

/*  Stable-cut garbage collection of one shared scope: stable_cut is a context every live
 *  replica has reached (the meet of their version vectors). Visits, in one batch, the op
 *  records at or below the scope's prune cut joined with stable_cut that no collection
 *  visited before, at most max_visits (> 0) of them, and none begun once the monotonic clock
 *  (zclock_usecs) has reached until_us (0: no end; the clock is read every
 *  NODE_STORE_GC_CLOCK_EVERY visits, so a call visits at least that many if there are as
 *  many, and stops at most that many visits late): drops those whose entries are gone,
 *  keeps those whose entries live without their removals, and persists the joined prune cut
 *  and the visited dots. *done counts the records visited and dropped, and says whether
 *  records were left for another call. A record kept here is deleted later by the write that
 *  removes its entry (local and remote removals, a whole state's join, the TTL purge), since
 *  no collection visits it again. Writes nothing when there is nothing new. ENGRAM_EINVAL,
 *  changing nothing, if the scope's context does not cover the cut; ENGRAM_ESCOPE for a
 *  private scope. Unsynced, like apply.
 *  Cost: O(records visited), one point read each, and at most max_visits of them: the first
 *  collections of a store written before the visited dots were kept visit its whole cut. */
#define NODE_STORE_GC_CLOCK_EVERY 16
typedef struct {
    uint64_t visited; /* op records visited */
    uint64_t dropped; /* of which dropped */
    bool more;        /* records are left for another call */
} node_store_gc_t;
int node_store_gc(node_store_t *self, const char *sid, const crdt_ctx_t *stable_cut,
                  uint64_t max_visits, int64_t until_us, node_store_gc_t *done);
/*  The scope's prune cut (removal records of ops in it may be gone); NULL if never collected.
 *  Borrowed until the next apply or gc. */
const crdt_ctx_t *node_store_pruned(const node_store_t *self, const char *sid);
/*  *pending := the op records of the scope whose entries are gone and that gc has not dropped
 *  (records waiting for a stable cut), for `engram cluster status`. Two key-only scans of the
 *  scope (its op records minus its live entries): O(scope), not for a hot path. */
int node_store_garbage(node_store_t *self, const char *sid, uint64_t *pending);

/*  Writes a consistent copy of the store into dir (a RocksDB checkpoint: hard links where it
 *  can), marked "restored" so that a store opened from it takes a new replica id. dir must not
 *  exist. Every write applied before the call is in it, synced or not: the log's buffer is
 *  written out first, and while the live write-ahead logs are under
 *  STORE_CHECKPOINT_LOG_BYTES the memtables are not flushed (the store's flushes are paced):
 *  the checkpoint links the logs (the last one copied) and the copy, opened once on this
 *  thread to be marked, replays and flushes them unpaced; past it, the memtables are flushed
 *  first, at the pace. Blocks the calling thread for all of it. */
int node_store_checkpoint(node_store_t *self, const char *dir);

/*  The node's own files beside RocksDB in its data directory, which a snapshot carries: its
 *  trust root (node/daemon/daemon.c: DATA/admission, DATA/trust), the statements it starts
 *  with (DATA/acl.init) and the members it remembers (node/cluster: DATA/members, so that a
 *  restored node asks them about its dots). Keep in step with those rooms. */
#define NODE_STORE_NODE_FILES "admission", "trust", "acl.init", "members"

/*  A snapshot of the running node (snapshot.c): a checkpoint (node_store_checkpoint) and the
 *  node's files that exist, written into the absolute path dir, which must not exist; built
 *  beside it in a directory of mode 0700 and renamed into place whole, so dir never holds half
 *  a snapshot. 0, or a code with a one-line reason in why (ENGRAM_EINVAL for a dir that is not
 *  absolute or exists, or whose parent is missing). */
int node_store_snapshot(node_store_t *self, const char *dir, char *why, size_t why_len);

/*  Fills data_dir, which must be absent or empty, from a snapshot: table files hard-linked
 *  where the filesystem allows, every other file copied. The store opened on it then takes a
 *  new replica id (the snapshot's "restored" mark). 0, or a code with a one-line reason in
 *  why (ENGRAM_EINVAL for a snapshot that is none or a data directory that is not empty); on
 *  failure data_dir is left as it was. */
int node_store_restore(const char *snapshot, const char *data_dir, char *why, size_t why_len);

/*  The live entry of shared scope sid with this dot, found through the ops index: its key,
 *  element ("" for none) and type; *key and *elem are the caller's to free(). ENGRAM_ENOTFOUND
 *  if no live entry has the dot (never written here, or removed already). */
int node_store_entry_of(node_store_t *self, const char *sid, crdt_dot_t dot, char **key,
                        char **elem, crdt_type_id_t *type);

/*  Deletes every entry whose expires_at_ms is at or before now_ms (a local purge: the context
 *  keeps their dots, so no replica can bring them back). *purged counts them. */
int node_store_purge(node_store_t *self, uint64_t now_ms, uint64_t *purged);

/*  --- search ----------------------------------------------------------------------------- */

/*  Whether the reader may see documents with this provenance (the API's retrospective check). */
typedef bool (*node_visible_fn)(void *arg, const char *const *agents, size_t nagents,
                                const char *const *resources, size_t nresources);

/*  A document holding at least one query term. */
typedef struct {
    char *key;  /* in tf's allocation, as elem */
    char *elem; /* "" for none */
    crdt_dot_t dot;
    uint32_t dl;  /* its length in terms */
    uint32_t *tf; /* owned (with key and elem): how often it holds each query term */
    double bm25;
} node_search_hit_t;

/*  The documents of one scope matching a query, with the statistics their scores came from,
 *  all counted over the documents the reader may see. */
typedef struct {
    node_search_hit_t *hits; /* unordered */
    size_t n;
    uint64_t docs; /* N: documents the reader may see */
    double avgdl;
    uint64_t *df; /* per query term: documents holding it */
    size_t nterms;
    bool more; /* node_store_search_top: documents beyond the hits may match */
} node_search_hits_t;

/*  Every document of sid holding at least one of terms (query terms, node/search/text.h; a
 *  term given twice counts twice) that the reader may see (visible), with its BM25 score.
 *  A document it may not see is neither returned nor counted in docs, avgdl or df.
 *  Cost: every posting of the terms read and sorted (a doc's postings side by side), plus
 *  one visibility decision per provenance class of the scope: a common term costs as many
 *  reads as documents hold it. For rankings that need every match (a hybrid search's text
 *  ranks). Caller frees with node_search_hits_free. */
int node_store_search_terms(node_store_t *self, const char *sid, const char *const *terms,
                            size_t nterms, node_visible_fn visible, void *arg,
                            node_search_hits_t *out);
/*  The best k of those documents, best first (ties: key, element, dot), exactly the first k
 *  of node_store_search_terms's hits in that order, with the same scores and statistics;
 *  out->more tells whether further documents may match (then a larger k finds them).
 *  Cost: one seek per term (its per-class df counters lead its postings; while the index's
 *  df journal holds counts, a hash lookup per class and term besides), one visibility
 *  decision per provenance class; then, for a query whose postings are few or not mostly one
 *  term's, a read of them all (as node_store_search_terms); else a threshold algorithm over
 *  the terms' postings in impact order (tf descending, then length; one more seek per tf
 *  group a term's cursor reaches, up to 32 groups per term): it consumes the posting
 *  with the highest bound on what it can add, scores its document in full the first time
 *  (one point read of its term list when the query has several terms), and stops once no
 *  document unmet can rank among the best k. Common terms are read only as far as their best
 *  postings can still matter; postings the reader may not see are skipped, one by one. */
int node_store_search_top(node_store_t *self, const char *sid, const char *const *terms,
                          size_t nterms, size_t k, node_visible_fn visible, void *arg,
                          node_search_hits_t *out);
void node_search_hits_free(node_search_hits_t *hits);
/*  A document whose embedding is near the query's. */
typedef struct {
    char *key;  /* owned, with elem in the same allocation */
    char *elem; /* "" for none */
    crdt_dot_t dot;
    double cosine;
} node_vector_hit_t;

typedef struct {
    node_vector_hit_t *hits; /* best first */
    size_t n;
    size_t compared;     /* embeddings of the query's dimension the reader may see */
    uint32_t other_dims; /* a dimension of other embeddings the reader may see; 0: none */
} node_vector_hits_t;

/*  The `keep` documents of sid the reader may see whose embeddings are nearest to query (exact
 *  cosine over every embedding of the scope: O(embeddings x dims)), best first. A scope whose
 *  embeddings have another dimension has no hits. Caller frees with node_vector_hits_free. */
int node_store_search_vector(node_store_t *self, const char *sid, const float *query, uint32_t dims,
                             size_t keep, node_visible_fn visible, void *arg,
                             node_vector_hits_t *out);
void node_vector_hits_free(node_vector_hits_t *hits);
/*  The dimensions of sid's embeddings, ascending, at most max into dims (*n: how many): none
 *  while it holds no embedding (the next one fixes its dimension); two only when two nodes
 *  gave a new scope its first embeddings at once. */
int node_store_vector_dims(node_store_t *self, const char *sid, uint32_t *dims, size_t max,
                           size_t *n);
/*  The tokenizer the index uses (for the query's terms). Borrowed. */
search_tokenizer_t *node_store_tokenizer(node_store_t *self);
/*  The live entry (sid, key, elem, dot): its type, HLC and data (*data the caller's to free()).
 *  ENGRAM_ENOTFOUND if it is gone. */
int node_store_entry_get(node_store_t *self, const char *sid, const char *key, const char *elem,
                         crdt_dot_t dot, crdt_type_id_t *type, uint64_t *hlc, uint8_t **data,
                         size_t *len);
/*  A BLAKE2b digest of every record of the search index, and how many there are: equal
 *  before and after node_store_reindex when the incremental index was exact (engramd
 *  --reindex reports it; tests compare). Flushes the index's counters first (a write: on a
 *  store that cannot write while its df journal holds counts, it fails with the store's
 *  failure). O(index). */
int node_store_index_digest(node_store_t *self, uint8_t digest[32], uint64_t *records);
/*  Drops the whole search index and rebuilds it from the live entries (engramd --reindex);
 *  *indexed counts the entries read. Synced. */
int node_store_reindex(node_store_t *self, uint64_t *indexed);

#endif
