/*  node/store internals: the store's state and the helpers its files share.
 *
 *  Files, one concern each:
 *    store.c        open and close, the column families, identity and replica id, the error
 *                   latch, the in-memory contexts and prune cuts
 *    keys.c         the encoding of RocksDB keys (every integer big-endian)
 *    objects.c      the object read/write path: views, one WriteBatch per mutation, listing,
 *                   history, TTL purge, group commit (node_store_sync)
 *    replication.c  the store as the gossip engine sees it: catch-up deltas read from the ops
 *                   index, remote deltas applied (removals found through the ops index)
 *    gc.c           garbage below the stable cut, pending-garbage counts, checkpoints
 *    snapshot.c     snapshots (a checkpoint and the node's files, renamed into place) and
 *                   restores from them into an empty data directory
 *    index.c        the search index: postings and df counters written and removed with
 *                   what they index, BM25 queries over them (the best k by a threshold
 *                   algorithm, or every match), the rebuild (engramd --reindex)
 *
 *  Thread: one thread owns a store and every field below.
 */
#ifndef NODE_STORE_INTERNAL_H
#define NODE_STORE_INTERNAL_H

#include <rocksdb/c.h>

#include "crdt/hlc.h"
#include "node/search/text.h"
#include "node/store/store.h"
#include "proto/store.pb-c.h"

enum {
    CF_DEFAULT,
    CF_ENTRIES,
    CF_PRIVATE,
    CF_OPS,
    CF_HISTORY,
    CF_EXPIRY,
    CF_META,
    CF_SEARCH,
    CF_COUNT
};
/*  The column families' names, in the order of the enum. */
extern const char *const store__cf_names[CF_COUNT];

struct node_store {
    rocksdb_t *db;
    rocksdb_options_t *options;
    rocksdb_block_based_table_options_t *table_options; /* the block cache and bloom filters */
    rocksdb_cache_t *block_cache;
    rocksdb_column_family_handle_t *cf[CF_COUNT];
    rocksdb_writeoptions_t *write_options; /* never sync: node_store_sync does the fsync */
    rocksdb_readoptions_t *read_options;   /* total order: scans may cross objects */
    /* The entries families (CF_ENTRIES, CF_PRIVATE) know an object's prefix, sid \0 key \0
     * (store.c): their memtables and tables keep bloom filters of it, so a read of an object
     * that is not in a memtable or a table skips it without a seek. The cost: each memtable
     * of those families allocates its bloom up front (ENTRIES_MEMTABLE_BLOOM_RATIO of the
     * 64 MiB write buffer, 3.2 MiB), and their tables' filters hold prefixes beside keys. */
    rocksdb_options_t *entries_options;
    rocksdb_readoptions_t *object_read_options; /* prefix mode: one object's entries */
    bool durability_sync;
    node_identity_t identity;
    uint64_t replica;
    crdt_hlc_t clock; /* the node's HLC: every local write's stamp, every remote one observed */
    /* The HLC ceiling persisted ("hlc" in meta): no stamp a write or an apply stored is above
     * the ceiling persisted with or before it, so the clock restarts there (store__hlc_lease).
     * Clocks only observed (a token's) or issued to a write that failed are not covered. */
    uint64_t hlc_ceiling;
    uint64_t max_drift_ms;   /* a remote stamp further ahead of the wall clock is refused */
    uint64_t clock_refusals; /* remote stamps refused for being too far ahead */
    zhash_t *contexts;       /* sid -> crdt_ctx_t *, owned: every scope ever written */
    zhash_t *prunes; /* sid -> crdt_ctx_t *, owned: the prune cut of every collected scope */
    /* sid -> crdt_ctx_t *, owned: the dots whose op records node_store_gc has visited ("gc/"
     * in meta). A collection visits only the dots of its cut not in here; an entry removed
     * once its dot is in here has its op record deleted by the write that removes it
     * (store__entry_removed), since no collection will visit that record again. */
    zhash_t *collected;
    bool unsynced;            /* applied since the last sync */
    bool unwritten;           /* applied since the WAL's buffer was last written out */
    uint64_t wal_syncs;       /* fsyncs of the WAL node_store_sync made */
    int failed;               /* the first storage failure: every later write is refused with it */
    bool failed_unsynced;     /* writes were waiting for a sync when it failed: they are in doubt */
    bool read_only;           /* opened on a read-only data directory: reads only */
    char *dir;                /* owned: the data directory, for free-space checks and snapshots */
    uint64_t min_free;        /* writes are refused below this much free space */
    int64_t space_checked_ms; /* when the free space was last measured */
    bool volume_full;         /* the last measurement found less than min_free */
    search_tokenizer_t *tokenizer; /* the index's terms (English) */
    /* The index's counters as written or journaled (index.c, "Counter cache and df
     * journal"): hex of a df or dims key -> store_counter_t *, owned, made on first use; what
     * its entries cost, at most counter_cache_max (STORE_COUNTER_CACHE_BYTES) after every
     * write (a write's dirty counts are flushed first when they do not fit; a journal
     * replayed at open may exceed it until the next write). */
    zhashx_t *counter_cache;
    size_t counter_cache_bytes;
    size_t counter_cache_max;
    size_t counters_dirty;    /* cached counts only the journal holds (< STORE_DIRTY_MAX) */
    uint64_t journal_first;   /* the records written and reported: seqs [first, written) */
    uint64_t journal_written; /* one past the last record written and reported */
    uint64_t journal_next;    /* the next record's seq */
    size_t journal_max;       /* records flushed at (STORE_JOURNAL_MAX; tests set it lower) */
    bool journal_loaded;      /* replayed at open: from then on the close flushes */
    /* An object read seeks an iterator of its entries' column family (store__scan_entries).
     * Making one cost a get about a quarter of what its seek costs, so one per family (in
     * prefix mode, object_read_options) is kept while nothing is written: store__write_batch,
     * the only writer of those families, drops both, so a kept iterator always sees what a new
     * one would. An iterator pins the memtables and tables it was made on (a flushed memtable's
     * memory, compacted tables' disk space), so node_store_purge, on the server's purge timer
     * (every second by default), drops them too, writes or not. */
    rocksdb_iterator_t *entry_iters[2]; /* CF_ENTRIES, CF_PRIVATE; NULL: none kept */
};

/*  The meta key whose value names the index's format; a store without it (written before the
 *  index, or by another format) is reindexed when it opens. */
#define STORE_INDEX_MARK    "index"
#define STORE_INDEX_VERSION "bm25-impact-vectors-english-stop-journal-5"

/*  The index changes of one WriteBatch (index.c): every write that adds or removes entries
 *  calls store__index_add / store__index_remove for each, then store__index_finish once,
 *  before the batch is written. */
typedef struct store_index_batch store_index_batch_t;
store_index_batch_t *store__index_batch_new(void);
void store__index_batch_destroy(store_index_batch_t **self_p);
/*  Indexes a live entry being put into batch (only registers and logs whose payload is text
 *  have terms; anything else is left alone). */
int store__index_add(node_store_t *self, store_index_batch_t *ib, rocksdb_writebatch_t *batch,
                     const char *sid, const char *key, const char *elem, crdt_dot_t dot,
                     crdt_type_id_t type, const uint8_t *data, size_t len);
/*  Unindexes an entry being deleted by batch (nothing if it was not indexed; once per batch
 *  however often it is named). */
int store__index_remove(node_store_t *self, store_index_batch_t *ib, rocksdb_writebatch_t *batch,
                        const char *sid, const char *key, const char *elem, crdt_dot_t dot);
/*  Puts the changed totals of every provenance class, the changed dims counters, and one df
 *  journal record with the new counts of every (term, class) the batch touched. Once per ib:
 *  each counter is read as the store holds it before the batch, so a second finish of the
 *  same batch would count wrong. The record takes the journal's next seq: the batch must be
 *  written (or dropped) and reported before anything else writes to the store. */
int store__index_finish(node_store_t *self, store_index_batch_t *ib, rocksdb_writebatch_t *batch);
/*  The batch of ib was written: its counters go into the counter cache, its df counters as
 *  dirty (its journal record holds them); the counters are flushed once the journal holds
 *  journal_max records, STORE_DIRTY_MAX counters are dirty or the cache is full. Every write
 *  of a batch with index changes must report it, and a batch not written (failed, or
 *  dropped) must not be passed: a dirty count is the latest. */
void store__index_written(node_store_t *self, store_index_batch_t *ib);
/*  Writes the dirty counters and deletes the journal's records, in one batch. */
int store__index_flush_counters(node_store_t *self);
/*  Replays the journal's records (a store that stopped without flushing) into the cache, at
 *  open; ENGRAM_EDECODE for a record that does not parse. */
int store__index_load_journal(node_store_t *self);
/*  Empties the counter cache, dirty counts included, and forgets the journal (a rebuild drops
 *  every counter and every record). */
void store__index_forget_counters(node_store_t *self);
/*  How many journal records wait for a flush: the seqs written and reported since the last
 *  (a batch finished but dropped leaves a gap, counted: it only makes the flush come sooner). */
size_t store__index_journal_records(const node_store_t *self);
/*  How many counters the cache holds (tests). */
size_t store__index_cached_counters(const node_store_t *self);
/*  What the counter cache's entries may cost in all (keys' hex and overhead), by default;
 *  tests set counter_cache_max lower to make it fill. */
#define STORE_COUNTER_CACHE_BYTES (4 * 1024 * 1024)
/*  Journal records (one per batch that changed df counters) between two flushes. */
#define STORE_JOURNAL_MAX 1024
/*  Dirty counters that make a flush: one flush writes at most this many keys (plus what one
 *  batch adds), some 15-20 ms of the loop thread at the 4-5 us a key of this project's
 *  machine. */
#define STORE_DIRTY_MAX 4096
/*  RocksDB's own log (DATA/LOG, then LOG.old.*), at INFO (rocksdb/env.h's INFO_LEVEL; the C
 *  API names no levels). A file is rolled past STORE_LOG_FILE_BYTES and at every open of the
 *  store (engramd, --identity, --reindex); the newest STORE_LOG_FILES, the current one
 *  included, are kept: at most 128 MiB however long the node runs. */
#define STORE_ROCKSDB_INFO_LEVEL 1
#define STORE_LOG_FILE_BYTES     (16 * 1024 * 1024)
#define STORE_LOG_FILES          8
/*  The pacing of flushes and compactions (node_store_open's flush_bytes_per_s): the limiter
 *  grants writes in slices this long (so a 32 MiB/s bound lets 320 KiB go at once, where
 *  RocksDB's 100 ms default lets 3.2 MiB), and its fairness (RocksDB's default: a
 *  compaction's write is served before a flush's one time in 10). */
#define STORE_FLUSH_REFILL_US 10000
#define STORE_FLUSH_FAIRNESS  10
/*  A checkpoint (node_store_checkpoint) flushes the memtables first, at the store's pace, only
 *  once the live write-ahead logs reach this size (RocksDB lets them grow to 4 GiB, 4 times
 *  the memtables' bound, before it flushes what pins the oldest); below it, it links them and
 *  the copy replays them. */
#define STORE_CHECKPOINT_LOG_BYTES (256ull * 1024 * 1024)
/*  Bits a key of the tables' whole-key bloom filters (the store's and a checkpoint copy's). */
#define STORE_BLOOM_BITS_PER_KEY 10
/*  The longest counter key (a tag, a sid, a term, a class): far above what names allow. */
#define STORE_MAX_COUNTER_KEY 1024
/*  A cached counter: its latest count, and whether only the journal holds it. */
typedef struct {
    uint64_t count;
    bool dirty;
} store_counter_t;

/*  Which way node_store_search_top goes: by its cost estimate (index.c), or, for tests
 *  (small stores would always be read whole), always one way. Process-wide. */
typedef enum { STORE_SEARCH_AUTO, STORE_SEARCH_THRESHOLD, STORE_SEARCH_WHOLE } store_search_way_t;
void store__search_way(store_search_way_t way);

/*  Called for every batch that holds or follows stamps up to `stamp`: if stamp is above the
 *  persisted ceiling, puts a new one ENGRAM_HLC_LEASE_MS ahead of it ("hlc" in meta) into
 *  batch. Returns the ceiling to set hlc_ceiling to once batch is written. A write in the WAL
 *  is recovered only with every write before it, so no recovered stamp is above the recovered
 *  ceiling. */
uint64_t store__hlc_lease(node_store_t *self, rocksdb_writebatch_t *batch, uint64_t stamp);

/*  A growable key buffer; every key is built in one. */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool failed;
} store_key_t;

/*  Visits one stored entry. */
typedef int (*store_entry_fn)(void *arg, const char *key, const char *elem, crdt_dot_t dot,
                              const Engram__StoredEntry *entry);

/*  Calls fn for the stored entries of sid whose key starts with sid \0 key \0 [elem \0]
 *  (key NULL: every entry of the scope), in key order; with `first_only`, for the first one
 *  only. Unreadable entries are skipped (and logged when an object is read). fn must neither
 *  write nor scan entries: the scan runs on the store's kept iterator. */
int store__scan_entries(node_store_t *self, const char *sid, const char *key, const char *elem,
                        bool first_only, store_entry_fn fn, void *arg);

/*  Visits one op record. */
typedef int (*store_op_fn)(void *arg, crdt_dot_t dot, const Engram__StoredOp *op);

/*  A view of one object being loaded: the entries, or only their types. */
typedef struct {
    crdt_scope_t *view; /* NULL: probe types only */
    unsigned types;
} store_view_t;

rocksdb_column_family_handle_t *store__entries_cf(const node_store_t *self, const char *sid);

/*  sid \0 key \0 elem \0 node n */
void store__entry_key(store_key_t *k, const char *sid, const char *key, const char *elem,
                      uint64_t node, uint64_t n);

/*  When a stored entry expires: registers and logs hold an encoded crdt_value_t. */
uint64_t store__expires_at(const Engram__StoredEntry *entry);

/*  The live entry an op added, if it is still there: *entry (caller frees) or NULL. */
int store__get_added(node_store_t *self, const char *sid, crdt_dot_t dot,
                     const Engram__StoredOp *op, store_key_t *key, Engram__StoredEntry **entry);

/*  v as 8 bytes, big-endian (the order of integers in keys), and back. */
void store__be64(uint8_t *out, uint64_t v);
uint64_t store__get_be64(const uint8_t *in);

bool store__is_private(const char *sid);

void store__key_add(store_key_t *k, const void *bytes, size_t len);

void store__key_str0(store_key_t *k, const char *s);

void store__key_u64(store_key_t *k, uint64_t v);

/*  Records the first storage failure. RocksDB does not recover a WAL that failed a write
 *  (its C API has no resume, and syncing again trips its own assertions), so from here on
 *  writes are refused with this error, reads go on, and a restart recovers from the WAL. */
void store__latch(node_store_t *self, int rc);

/*  The 8-byte little-endian integers of meta ("replica", "hlc"): written, read. */
void store__le64(char *out, uint64_t v);
uint64_t store__get_le64(const char *in);

/*  sid \0 node n: the ops dot index. */
void store__op_key(store_key_t *k, const char *sid, crdt_dot_t dot);
/*  A step lists at most this many removed dots; an operation that removed more (a forget of a
 *  large set or log) says removed_all instead, so its step stays small. */
#define STORE_STEP_MAX_REMOVED 256

/*  sid \0 key \0 hlc node n: the history key of a step. */
void store__history_key(store_key_t *k, const char *sid, const char *key, uint64_t hlc,
                        crdt_dot_t dot);

/*  Splits an entry key (after `skip` bytes) into key, elem and dot; false if malformed. */
bool store__parse_entry_key(const char *raw, size_t len, size_t skip, const char **key,
                            const char **elem, crdt_dot_t *dot);

/*  map[sid] := *ctx_p (owned, the old one freed). */
void store__put_ctx(zhash_t *map, const char *sid, crdt_ctx_t **ctx_p);

/*  The iterator's error (logged), or 0. */
int store__iter_error(rocksdb_iterator_t *it);
/*  Ends a scan: destroys the iterator and key's buffer (key may be NULL); returns rc, or if
 *  rc is 0 the iterator's error. */
int store__iter_end(rocksdb_iterator_t *it, store_key_t *key, int rc);
/*  Destroys the kept entries iterators (see entry_iters). */
void store__drop_entry_iters(node_store_t *self);

/*  Ends a write: writes batch unless rc is already an error, destroys it and key's buffer;
 *  then *ctx_p (taken) becomes sid's entry in map, or is destroyed if the write failed.
 *  Returns rc or the write's error. */
int store__finish_write(node_store_t *self, int rc, rocksdb_writebatch_t *batch, store_key_t *key,
                        zhash_t *map, const char *sid, crdt_ctx_t **ctx_p);

/*  Puts "<prefix><sid>" -> the encoded ctx into the batch. */
int store__put_meta_ctx(node_store_t *self, rocksdb_writebatch_t *batch, const char *prefix,
                        const char *sid, const crdt_ctx_t *ctx);

int store__restore_entry(void *arg, const char *key, const char *elem, crdt_dot_t dot,
                         const Engram__StoredEntry *entry);

int store__rocks_error(char **err);

/*  Calls fn for every op record of sid whose dot is in ctx, by range seeks on the ops index:
 *  the cost tracks the dots of ctx that have records, not the scope. With the scope's own
 *  context, every op record of the scope. */
int store__scan_ops_in(node_store_t *self, const char *sid, const crdt_ctx_t *ctx, store_op_fn fn,
                       void *arg);

bool store__shared(const char *scope);
/*  What goes, in batch, with an entry of sid removed (the caller deletes the entry itself):
 *  its search index records (store__index_remove) and, if a collection visited its dot
 *  already, its op record (gc.c), which is garbage that no collection will see again. Every
 *  path that deletes an entry calls it: local and remote removals, whole-state joins, purges. */
int store__entry_removed(node_store_t *self, store_index_batch_t *ib, rocksdb_writebatch_t *batch,
                         const char *sid, const char *key, const char *elem, crdt_dot_t dot);

/*  Measures the free space at most every ENGRAM_FREE_SPACE_CHECK_MS (a statvfs per write
 *  cost 4% of the write path). A burst in between may eat into the reserve, never through it
 *  unless it writes more than the reserve in that time. */
bool store__volume_full(node_store_t *self);

/*  Writes a batch (unsynced: node_store_sync makes it durable); a failure is latched. */
int store__write_batch(node_store_t *self, rocksdb_writebatch_t *batch);

#endif
