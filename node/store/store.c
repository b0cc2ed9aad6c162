/*  node_store: engramd's RocksDB storage (see store.h for the layout and its invariants):
 *  open and close, identity and replica id, the error latch. */
#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "crdt/codec.h"
#include "crdt/value.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/store/internal.h"
#include "node/trust/identity.h"
#include "proto/store.pb-c.h"

const char *const store__cf_names[CF_COUNT] = {"default", "entries", "private", "ops",
                                               "history", "expiry",  "meta",    "search"};

/*  --- errors ------------------------------------------------------------------------- */

int store__rocks_error(char **err)
{
    if (!*err)
        return 0;
    int code = ENGRAM_EIO;
    if (strstr(*err, "No space left"))
        code = ENGRAM_ENOSPC;
    else if (strstr(*err, "Read-only file system") || strstr(*err, "ermission denied"))
        code = ENGRAM_EREADONLY;
    zsys_error("rocksdb: %s", *err);
    rocksdb_free(*err);
    *err = NULL;
    return code;
}

/*  Records the first storage failure. RocksDB does not recover a WAL that failed a write
 *  (its C API has no resume, and syncing again trips its own assertions), so from here on
 *  writes are refused with this error, reads go on, and a restart recovers from the WAL. */
void store__latch(node_store_t *self, int rc)
{
    if (self->failed)
        return;
    self->failed = rc;
    self->failed_unsynced = self->unsynced;
    zsys_error("engramd: storage failure (%s): writes are refused until engramd restarts; "
               "reads go on",
               engram_strerror(rc));
}

/*  Writes a batch (unsynced: node_store_sync makes it durable); a failure is latched. */
int store__write_batch(node_store_t *self, rocksdb_writebatch_t *batch)
{
    store__drop_entry_iters(self);
    char *err = NULL;
    rocksdb_write(self->db, self->write_options, batch, &err);
    int rc = store__rocks_error(&err);
    if (rc)
        store__latch(self, rc);
    else
        self->unsynced = self->unwritten = true;
    return rc;
}

static void s_ctx_free(void *item);

/*  map[sid] := *ctx_p (owned, the old one freed). */
void store__put_ctx(zhash_t *map, const char *sid, crdt_ctx_t **ctx_p)
{
    zhash_update(map, sid, *ctx_p);
    zhash_freefn(map, sid, s_ctx_free);
    *ctx_p = NULL;
}

void store__drop_entry_iters(node_store_t *self)
{
    for (size_t i = 0; i < sizeof self->entry_iters / sizeof self->entry_iters[0]; i++)
        if (self->entry_iters[i]) {
            rocksdb_iter_destroy(self->entry_iters[i]);
            self->entry_iters[i] = NULL;
        }
}

int store__iter_error(rocksdb_iterator_t *it)
{
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    return store__rocks_error(&err);
}

int store__iter_end(rocksdb_iterator_t *it, store_key_t *key, int rc)
{
    int iter_rc = store__iter_error(it);
    rocksdb_iter_destroy(it);
    if (key) {
        free(key->data);
        key->data = NULL;
    }
    return rc ? rc : iter_rc;
}

int store__finish_write(node_store_t *self, int rc, rocksdb_writebatch_t *batch, store_key_t *key,
                        zhash_t *map, const char *sid, crdt_ctx_t **ctx_p)
{
    if (rc == 0)
        rc = store__write_batch(self, batch);
    rocksdb_writebatch_destroy(batch);
    free(key->data);
    key->data = NULL;
    if (rc)
        crdt_ctx_destroy(ctx_p);
    else
        store__put_ctx(map, sid, ctx_p);
    return rc;
}

/*  --- open / close ------------------------------------------------------------------- */

static void s_ctx_free(void *item)
{
    crdt_ctx_t *ctx = item;
    crdt_ctx_destroy(&ctx);
}

static int s_meta_get(node_store_t *self, const char *name, char **value, size_t *len)
{
    char *err = NULL;
    *value = rocksdb_get_cf(self->db, self->read_options, self->cf[CF_META], name, strlen(name),
                            len, &err);
    return store__rocks_error(&err);
}

static int s_meta_put_sync(node_store_t *self, const char *name, const void *value, size_t len)
{
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(wo, 1);
    char *err = NULL;
    rocksdb_put_cf(self->db, wo, self->cf[CF_META], name, strlen(name), value, len, &err);
    rocksdb_writeoptions_destroy(wo);
    return store__rocks_error(&err);
}

uint64_t store__get_le64(const char *in)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | (uint8_t)in[i];
    return v;
}

void store__le64(char *out, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        out[i] = (char)(uint8_t)v;
}

/*  Identity, replica id and the running mark (see store.h, "Dot safety"). */
static int s_load_identity(node_store_t *self, char *why, size_t why_len)
{
    char *value;
    size_t len;
    int rc = s_meta_get(self, "identity", &value, &len);
    if (rc == 0 && value) {
        if (len != sizeof self->identity.public_key + sizeof self->identity.secret_key) {
            snprintf(why, why_len, "the stored node identity is corrupt");
            rc = ENGRAM_EIO;
        } else {
            memcpy(self->identity.public_key, value, sizeof self->identity.public_key);
            memcpy(self->identity.secret_key, value + sizeof self->identity.public_key,
                   sizeof self->identity.secret_key);
            self->identity.node_id = node_identity_id_of(self->identity.public_key);
        }
        rocksdb_free(value);
    } else if (rc == 0 && self->read_only) {
        snprintf(why, why_len, "the data directory is read-only and holds no node identity");
        rc = ENGRAM_EREADONLY;
    } else if (rc == 0) {
        uint8_t both[sizeof self->identity.public_key + sizeof self->identity.secret_key];
        rc = node_identity_generate(&self->identity);
        memcpy(both, self->identity.public_key, sizeof self->identity.public_key);
        memcpy(both + sizeof self->identity.public_key, self->identity.secret_key,
               sizeof self->identity.secret_key);
        if (rc == 0)
            rc = s_meta_put_sync(self, "identity", both, sizeof both);
        sodium_memzero(both, sizeof both);
        if (rc == 0)
            zsys_info("engramd: new node identity %016" PRIx64, self->identity.node_id);
    }
    if (rc)
        return rc;

    self->replica = self->identity.node_id;
    rc = s_meta_get(self, "replica", &value, &len);
    if (rc == 0 && value && len == 8)
        self->replica = store__get_le64(value);
    rocksdb_free(value);
    rc = rc ? rc : s_meta_get(self, "running", &value, &len);
    if (rc)
        return rc;
    bool crashed_async = value && len == 5 && memcmp(value, "async", 5) == 0;
    bool restored = value && len == 8 && memcmp(value, "restored", 8) == 0;
    rocksdb_free(value);
    if (crashed_async || restored) {
        uint64_t old = self->replica;
        self->replica = node_identity_random_replica();
        zsys_warning("engramd: %s; its dot counters may be behind, so replica %016" PRIx64
                     " becomes %016" PRIx64,
                     restored ? "the data directory is a restored checkpoint"
                              : "the last run (durability=async) did not stop cleanly",
                     old, self->replica);
    }
    if (self->read_only)
        return 0; /* it issues no dots, so its replica id does not matter */
    char raw[8];
    store__le64(raw, self->replica);
    rc = s_meta_put_sync(self, "replica", raw, 8);
    const char *mode = self->durability_sync ? "sync" : "async";
    return rc ? rc : s_meta_put_sync(self, "running", mode, strlen(mode));
}

/*  Loads every context stored under a meta prefix ("ctx/", "prune/", "gc/") into map. */
static int s_load_ctx_map(node_store_t *self, const char *prefix, zhash_t *map)
{
    size_t plen = strlen(prefix);
    int rc = 0;
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(self->db, self->read_options, self->cf[CF_META]);
    rocksdb_iter_seek(it, prefix, plen);
    for (; rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, prefix, plen) != 0)
            break;
        const char *v = rocksdb_iter_value(it, &vlen);
        char *sid = strndup(k + plen, klen - plen);
        crdt_ctx_t *ctx = NULL;
        rc = sid ? crdt_ctx_decode((const uint8_t *)v, vlen, &ctx) : ENGRAM_ENOMEM;
        if (rc == 0) {
            store__put_ctx(map, sid, &ctx);
        } else {
            zsys_error("engramd: the stored %s of scope '%s' is unreadable: %s", prefix,
                       sid ? sid : "?", engram_strerror(rc));
        }
        free(sid);
    }
    return store__iter_end(it, NULL, rc);
}

/*  Loads every scope's context, prune cut and collected dots, and the HLC ceiling. */
static int s_load_meta(node_store_t *self)
{
    char *value;
    size_t len;
    int rc = s_meta_get(self, "hlc", &value, &len);
    if (rc == 0 && value && len == 8)
        self->clock.last = self->hlc_ceiling = store__get_le64(value);
    rocksdb_free(value);
    if (rc == 0)
        rc = s_load_ctx_map(self, "ctx/", self->contexts);
    if (rc == 0)
        rc = s_load_ctx_map(self, "prune/", self->prunes);
    if (rc == 0)
        rc = s_load_ctx_map(self, "gc/", self->collected);
    return rc;
}

/*  Rebuilds the search index of a store written without it (or in another format). */
static int s_check_index(node_store_t *self, char *why, size_t why_len)
{
    char *mark = NULL;
    size_t len = 0;
    int rc = s_meta_get(self, STORE_INDEX_MARK, &mark, &len);
    bool current =
        mark && len == strlen(STORE_INDEX_VERSION) && memcmp(mark, STORE_INDEX_VERSION, len) == 0;
    rocksdb_free(mark);
    if (rc || current)
        return rc;
    if (self->read_only) {
        zsys_warning("engramd: the search index of this read-only store is not current: "
                     "searches may miss memories until it is opened writable");
        return 0;
    }
    uint64_t indexed = 0;
    rc = node_store_reindex(self, &indexed);
    if (rc)
        snprintf(why, why_len, "cannot build the search index: %s", engram_strerror(rc));
    else if (indexed)
        zsys_info("engramd: search index built from %" PRIu64 " entries", indexed);
    return rc;
}

/*  Replays the search index's df journal (a store that stopped without flushing its counters);
 *  a journal that does not parse is the index's loss, not the store's: it is rebuilt. */
static int s_load_journal(node_store_t *self, char *why, size_t why_len)
{
    int rc = store__index_load_journal(self);
    if (rc != ENGRAM_EDECODE)
        return rc;
    if (self->read_only) {
        zsys_warning("engramd: the search index's journal does not parse and this store is "
                     "read-only: searches may count memories wrong until it is opened writable");
        return 0;
    }
    zsys_warning("engramd: the search index's journal does not parse: rebuilding the index");
    uint64_t indexed = 0;
    rc = node_store_reindex(self, &indexed);
    if (rc)
        snprintf(why, why_len, "cannot rebuild the search index: %s", engram_strerror(rc));
    self->journal_loaded = rc == 0; /* none left: the rebuild flushed its counters */
    return rc;
}

search_tokenizer_t *node_store_tokenizer(node_store_t *self)
{
    return self->tokenizer;
}

/*  Of each entries family's write buffer (64 MiB by default), the share its memtable's bloom
 *  filter of object prefixes takes. */
#define ENTRIES_MEMTABLE_BLOOM_RATIO 0.05

/*  Where an entry key's object, sid \0 key \0 (keys.c), ends: just past its second NUL;
 *  NULL for a key that does not hold one. */
static const char *s_object_end(const char *key, size_t len)
{
    const char *sid_end = memchr(key, 0, len);
    const char *key_end =
        sid_end ? memchr(sid_end + 1, 0, len - (size_t)(sid_end + 1 - key)) : NULL;
    return key_end ? key_end + 1 : NULL;
}

/*  The entries families' prefix extractor: an entry key's object. */
static char *s_object_prefix(void *state, const char *key, size_t len, size_t *prefix_len)
{
    (void)state;
    const char *end = s_object_end(key, len);
    *prefix_len = end ? (size_t)(end - key) : len;
    return (char *)key;
}

static void s_object_prefix_free(void *state)
{
    (void)state; /* stateless; RocksDB calls this when its last options object goes */
}

static unsigned char s_object_in_domain(void *state, const char *key, size_t len)
{
    (void)state;
    return s_object_end(key, len) != NULL;
}

static unsigned char s_object_in_range(void *state, const char *key, size_t len)
{
    (void)state, (void)key, (void)len;
    return 0; /* unused by RocksDB */
}

/*  Recorded in each table: a table written under another extractor is not filtered by this
 *  one. */
static const char *s_object_prefix_name(void *state)
{
    (void)state;
    return "engram.object.1";
}

/*  Each column family's options, in the order of the enum (the entries families have their
 *  own: entries_options). */
static void s_cf_options(const node_store_t *self, const rocksdb_options_t *cf_options[CF_COUNT])
{
    for (int i = 0; i < CF_COUNT; i++)
        cf_options[i] = i == CF_ENTRIES || i == CF_PRIVATE ? self->entries_options : self->options;
}

int node_store_open(const char *dir, bool durability_sync, uint64_t flush_bytes_per_s,
                    node_store_t **self_p, char *why, size_t why_len)
{
    *self_p = NULL;
    why[0] = '\0';
    node_store_t *self = calloc(1, sizeof *self);
    if (!self)
        return ENGRAM_ENOMEM;
    self->durability_sync = durability_sync;
    self->dir = strdup(dir);
    self->min_free = ENGRAM_DEFAULT_MIN_FREE_BYTES;
    self->max_drift_ms = ENGRAM_DEFAULT_MAX_CLOCK_DRIFT_MS;
    self->contexts = zhash_new();
    self->counter_cache_max = STORE_COUNTER_CACHE_BYTES;
    self->journal_max = STORE_JOURNAL_MAX;
    self->prunes = zhash_new();
    self->collected = zhash_new();
    /* RocksDB counts every key comparison into a thread-local perf context unless told not
     * to, and nothing here reads it: the counting was a fifth of a memtable insert's CPU
     * (README, "Measured"). The level is the calling thread's, the one that uses the store. */
    rocksdb_set_perf_level(rocksdb_disable);
    self->options = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(self->options, 1);
    rocksdb_options_set_create_missing_column_families(self->options, 1);
    /* A write goes to the WAL's buffer in this process; node_store_write_out (once a turn) and
     * node_store_sync write it to the file: one write() a turn, not one a put (a tenth of the
     * loop thread's CPU in the put profile, README "Measured"). */
    rocksdb_options_set_manual_wal_flush(self->options, 1);
    /* Flushes and compactions paced (limits.h, ENGRAM_DEFAULT_FLUSH_RATE_MB), in slices of
     * STORE_FLUSH_REFILL_US; the options keep the limiter (a shared pointer) once set. With a
     * limiter RocksDB also syncs the files they write every MiB (bytes_per_sync). */
    assert(flush_bytes_per_s <= INT64_MAX);
    if (flush_bytes_per_s) {
        rocksdb_ratelimiter_t *limiter = rocksdb_ratelimiter_create(
            (int64_t)flush_bytes_per_s, STORE_FLUSH_REFILL_US, STORE_FLUSH_FAIRNESS);
        rocksdb_options_set_ratelimiter(self->options, limiter);
        rocksdb_ratelimiter_destroy(limiter);
    }
    /* RocksDB's own log is what an operator reads (flushes, compactions, stalls): at INFO.
     * A librocksdb built without NDEBUG, as Debian's, logs at DEBUG unless told
     * (rocksdb/options.h): a line for each WAL write-out and sync, two a turn (18,305 lines,
     * 1.7 MB, in node A's log over a 5 s cluster cell at 10k puts/s), in a file rolled only
     * at the next open. */
    rocksdb_options_set_info_log_level(self->options, STORE_ROCKSDB_INFO_LEVEL);
    rocksdb_options_set_max_log_file_size(self->options, STORE_LOG_FILE_BYTES);
    rocksdb_options_set_keep_log_file_num(self->options, STORE_LOG_FILES);
    /* Reads are served from a block cache sized for a node's working set, with index and
     * filter blocks in it, and whole-key bloom filters for the point lookups (meta, ops). */
    self->block_cache = rocksdb_cache_create_lru(ENGRAM_DEFAULT_BLOCK_CACHE_BYTES);
    self->table_options = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(self->table_options, self->block_cache);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(self->table_options, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(self->table_options, 1);
    rocksdb_block_based_options_set_filter_policy(
        self->table_options, rocksdb_filterpolicy_create_bloom_full(STORE_BLOOM_BITS_PER_KEY));
    rocksdb_options_set_block_based_table_factory(self->options, self->table_options);
    self->write_options = rocksdb_writeoptions_create();
    self->read_options = rocksdb_readoptions_create();
    /* scans across objects (a scope, a listing): RocksDB's rule with a prefix extractor */
    rocksdb_readoptions_set_total_order_seek(self->read_options, 1);
    self->object_read_options = rocksdb_readoptions_create();
    rocksdb_readoptions_set_prefix_same_as_start(self->object_read_options, 1);
    self->entries_options = rocksdb_options_create_copy(self->options);
    rocksdb_options_set_prefix_extractor(
        self->entries_options,
        rocksdb_slicetransform_create(NULL, s_object_prefix_free, s_object_prefix,
                                      s_object_in_domain, s_object_in_range, s_object_prefix_name));
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(self->entries_options,
                                                         ENTRIES_MEMTABLE_BLOOM_RATIO);

    const rocksdb_options_t *cf_options[CF_COUNT];
    s_cf_options(self, cf_options);
    char *err = NULL;
    if (zsys_dir_create("%s", dir) != 0) {
        snprintf(why, why_len, "cannot create data directory '%s'", dir);
        node_store_close(&self);
        return ENGRAM_EIO;
    }
    self->db = rocksdb_open_column_families(self->options, dir, CF_COUNT, store__cf_names,
                                            cf_options, self->cf, &err);
    if (err && strstr(err, "Read-only file system")) {
        /* A read-only data directory: serve what it holds, refuse every write. */
        rocksdb_free(err);
        err = NULL;
        self->db = rocksdb_open_for_read_only_column_families(
            self->options, dir, CF_COUNT, store__cf_names, cf_options, self->cf, 0, &err);
        if (!err) {
            self->read_only = true;
            self->failed = ENGRAM_EREADONLY;
            zsys_warning("engramd: the data directory '%s' is read-only: serving reads, "
                         "refusing writes",
                         dir);
        }
    }
    if (err) {
        snprintf(why, why_len, "cannot open RocksDB in '%s': %s", dir, err);
        int rc = store__rocks_error(&err);
        node_store_close(&self);
        return rc;
    }
    int rc = search_tokenizer_new(SEARCH_DEFAULT_LANGUAGE, &self->tokenizer);
    if (rc == 0)
        rc = s_load_identity(self, why, why_len);
    if (rc == 0)
        rc = s_load_meta(self);
    if (rc == 0)
        rc = s_check_index(self, why, why_len);
    if (rc == 0)
        rc = s_load_journal(self, why, why_len);
    if (rc) {
        if (!why[0])
            snprintf(why, why_len, "cannot read the node's metadata: %s", engram_strerror(rc));
        node_store_close(&self);
        return rc;
    }
    *self_p = self;
    return 0;
}

void node_store_close(node_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    node_store_t *self = *self_p;
    store__drop_entry_iters(self);
    if (self->db) {
        if (self->journal_loaded && !self->failed)
            store__index_flush_counters(self);
        node_store_sync(self);
        if (self->identity.node_id && !self->failed) { /* opened fully: a clean stop */
            char *err = NULL;
            rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
            rocksdb_writeoptions_set_sync(wo, 1);
            rocksdb_delete_cf(self->db, wo, self->cf[CF_META], "running", 7, &err);
            rocksdb_writeoptions_destroy(wo);
            store__rocks_error(&err);
        }
        for (int i = 0; i < CF_COUNT; i++)
            if (self->cf[i])
                rocksdb_column_family_handle_destroy(self->cf[i]);
        rocksdb_close(self->db);
    }
    rocksdb_options_destroy(self->options);
    rocksdb_options_destroy(self->entries_options);
    rocksdb_block_based_options_destroy(self->table_options);
    rocksdb_cache_destroy(self->block_cache);
    rocksdb_writeoptions_destroy(self->write_options);
    rocksdb_readoptions_destroy(self->read_options);
    rocksdb_readoptions_destroy(self->object_read_options);
    search_tokenizer_destroy(&self->tokenizer);
    zhash_destroy(&self->contexts);
    zhashx_destroy(&self->counter_cache);
    zhash_destroy(&self->prunes);
    zhash_destroy(&self->collected);
    free(self->dir);
    sodium_memzero(&self->identity, sizeof self->identity);
    free(self);
    *self_p = NULL;
}

int node_store_failure(const node_store_t *self)
{
    return self->failed;
}

void node_store_state_text(const node_store_t *self, char *buf, size_t len)
{
    if (!self->failed)
        snprintf(buf, len, "ok");
    else if (self->read_only)
        snprintf(buf, len, "read-only");
    else
        snprintf(buf, len, "failed: %s", engram_strerror(self->failed));
}

bool node_store_read_only(const node_store_t *self)
{
    return self->read_only;
}

bool node_store_failure_durable(const node_store_t *self)
{
    return self->read_only || !self->failed_unsynced;
}

bool node_store_writable(node_store_t *self)
{
    return !self->failed && !store__volume_full(self);
}

void node_store_figures(node_store_t *self, node_store_figures_t *figures)
{
    static const char *const properties[] = {"rocksdb.cur-size-all-mem-tables",
                                             "rocksdb.total-sst-files-size",
                                             "rocksdb.estimate-pending-compaction-bytes"};
    uint64_t *sums[] = {&figures->memtable_bytes, &figures->sst_bytes,
                        &figures->pending_compaction_bytes};
    for (size_t p = 0; p < sizeof properties / sizeof *properties; p++) {
        *sums[p] = 0;
        for (int i = 0; i < CF_COUNT; i++) {
            uint64_t value = 0;
            if (rocksdb_property_int_cf(self->db, self->cf[i], properties[p], &value) == 0)
                *sums[p] += value;
        }
    }
    figures->wal_syncs = self->wal_syncs;
}

uint64_t node_store_node_id(const node_store_t *self)
{
    return self->identity.node_id;
}

const node_identity_t *node_store_identity(const node_store_t *self)
{
    return &self->identity;
}

uint64_t node_store_replica(const node_store_t *self)
{
    return self->replica;
}

int node_store_renew_replica(node_store_t *self)
{
    if (self->read_only)
        return ENGRAM_EREADONLY;
    uint64_t fresh = node_identity_random_replica();
    char raw[8];
    store__le64(raw, fresh);
    int rc = s_meta_put_sync(self, "replica", raw, 8);
    if (rc == 0)
        self->replica = fresh;
    return rc;
}

uint64_t node_store_hlc_now(node_store_t *self, uint64_t now_ms)
{
    return crdt_hlc_now(&self->clock, now_ms);
}

int node_store_hlc_observe(node_store_t *self, uint64_t stamp, uint64_t now_ms)
{
    uint64_t merged;
    int rc = crdt_hlc_observe(&self->clock, stamp, now_ms, self->max_drift_ms, &merged);
    if (rc)
        self->clock_refusals++;
    return rc;
}

uint64_t node_store_hlc_last(const node_store_t *self)
{
    return self->clock.last;
}

void node_store_set_max_drift(node_store_t *self, uint64_t max_drift_ms)
{
    self->max_drift_ms = max_drift_ms;
}

uint64_t node_store_max_drift(const node_store_t *self)
{
    return self->max_drift_ms;
}

uint64_t node_store_clock_refusals(const node_store_t *self)
{
    return self->clock_refusals;
}

size_t node_store_scopes(const node_store_t *self)
{
    return zhash_size(self->contexts);
}

const crdt_ctx_t *node_store_ctx(const node_store_t *self, const char *sid)
{
    return zhash_lookup(self->contexts, sid);
}
