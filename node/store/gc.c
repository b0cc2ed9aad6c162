/*  node/store gc: garbage below the stable cut, pending-garbage counts and checkpoints. */
#include <assert.h>
#include <czmq.h>
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

/*  --- garbage ----------------------------------------------------------------------- */

const crdt_ctx_t *node_store_pruned(const node_store_t *self, const char *sid)
{
    return zhash_lookup(self->prunes, sid);
}

typedef struct {
    node_store_t *self;
    const char *sid;
    rocksdb_writebatch_t *batch;
    store_key_t key;
    uint64_t dropped;
    uint64_t max_visits; /* the budget: records this collection may visit */
    uint64_t visited;
    int64_t until_us; /* and when it ends (zclock_usecs), 0 if never */
    bool paused;      /* it ran out before the last record */
    crdt_dot_t last;  /* the last record visited */
} s_gc_t;

/*  An op at or below the cut: dropped if its entry is gone, else kept without its removals
 *  (no replica at or above the cut needs them). */
static int s_gc_op(void *arg, crdt_dot_t dot, const Engram__StoredOp *op)
{
    s_gc_t *g = arg;
    bool out_of_time = g->until_us && g->visited && g->visited % NODE_STORE_GC_CLOCK_EVERY == 0 &&
                       zclock_usecs() >= g->until_us;
    if (g->visited == g->max_visits || out_of_time) {
        g->paused = true;
        return NODE_STORE_STOP;
    }
    g->visited++;
    g->last = dot;
    Engram__StoredEntry *entry;
    int rc = store__get_added(g->self, g->sid, dot, op, &g->key, &entry);
    if (rc)
        return rc;
    bool alive = entry != NULL;
    if (entry)
        engram__stored_entry__free_unpacked(entry, NULL);
    if (alive && op->n_removed == 0)
        return 0;
    store__op_key(&g->key, g->sid, dot);
    if (g->key.failed)
        return ENGRAM_ENOMEM;
    if (!alive) {
        rocksdb_writebatch_delete_cf(g->batch, g->self->cf[CF_OPS], (char *)g->key.data,
                                     g->key.len);
        g->dropped++;
        return 0;
    }
    Engram__StoredOp kept = *op;
    kept.n_removed = 0;
    kept.removed = NULL;
    size_t size = engram__stored_op__get_packed_size(&kept);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return ENGRAM_ENOMEM;
    engram__stored_op__pack(&kept, buf);
    rocksdb_writebatch_put_cf(g->batch, g->self->cf[CF_OPS], (char *)g->key.data, g->key.len,
                              (char *)buf, size);
    free(buf);
    return 0;
}

/*  Joins into collected the dots of visit that a scan stopped after last has passed: the
 *  scan (store__scan_ops_in) goes node by node in visit's order, each node's ranges upwards,
 *  so these are the ranges of the nodes before last's and those of last's node up to it. */
static int s_collect_visited(crdt_ctx_t *collected, const crdt_ctx_t *visit, crdt_dot_t last)
{
    for (size_t i = 0; i < crdt_ctx_nodes(visit); i++) {
        uint64_t node, base;
        const crdt_range_t *cloud;
        size_t ncloud;
        crdt_ctx_node_at(visit, i, &node, &base, &cloud, &ncloud);
        for (size_t j = base ? 0 : 1; j <= ncloud; j++) {
            crdt_range_t range = j == 0 ? (crdt_range_t){1, base} : cloud[j - 1];
            bool stop = node == last.node && range.hi >= last.n;
            if (stop)
                range.hi = last.n;
            if (crdt_ctx_insert_range(collected, node, range.lo, range.hi) != 0)
                return ENGRAM_ENOMEM;
            if (stop)
                return 0;
        }
    }
    return 0;
}

int node_store_gc(node_store_t *self, const char *sid, const crdt_ctx_t *stable_cut,
                  uint64_t max_visits, int64_t until_us, node_store_gc_t *done)
{
    assert(self && sid && stable_cut && done && max_visits > 0);
    *done = (node_store_gc_t){0, 0, false};
    if (!store__shared(sid))
        return ENGRAM_ESCOPE;
    if (self->failed)
        return self->failed;
    const crdt_ctx_t *ctx = node_store_ctx(self, sid);
    if (!ctx || !crdt_ctx_covers(ctx, stable_cut))
        return ENGRAM_EINVAL;
    const crdt_ctx_t *old = node_store_pruned(self, sid);
    crdt_ctx_t *cut = old ? crdt_ctx_dup(old) : crdt_ctx_new();
    if (!cut || crdt_ctx_join(cut, stable_cut) != 0) {
        crdt_ctx_destroy(&cut);
        return ENGRAM_ENOMEM;
    }
    /* Only the dots no collection has visited: a record visited and kept belongs to a live
     * entry, and the write that removes that entry deletes it (store__entry_removed). A
     * store without "gc/" (written before it existed) visits its whole cut, in as many
     * collections as its budget takes. */
    const crdt_ctx_t *collected = zhash_lookup(self->collected, sid);
    crdt_ctx_t *visit = collected ? crdt_ctx_diff(cut, collected) : crdt_ctx_dup(cut);
    /* Nothing new: the cut is in collected, so in old too. No write. */
    if (visit && crdt_ctx_is_empty(visit)) {
        crdt_ctx_destroy(&visit);
        crdt_ctx_destroy(&cut);
        return 0;
    }
    crdt_ctx_t *now_collected = collected ? crdt_ctx_dup(collected) : crdt_ctx_new();
    if (!visit || !now_collected) {
        crdt_ctx_destroy(&visit);
        crdt_ctx_destroy(&now_collected);
        crdt_ctx_destroy(&cut);
        return ENGRAM_ENOMEM;
    }
    s_gc_t g = {.self = self,
                .sid = sid,
                .batch = rocksdb_writebatch_create(),
                .max_visits = max_visits,
                .until_us = until_us};
    int rc = store__scan_ops_in(self, sid, visit, s_gc_op, &g);
    if (rc == NODE_STORE_STOP)
        rc = 0;
    if (rc == 0) /* every collected dot is in the old cut, so in this one */
        rc = g.paused ? s_collect_visited(now_collected, visit, g.last)
                      : crdt_ctx_join(now_collected, cut);
    crdt_ctx_destroy(&visit);
    if (rc == 0)
        rc = store__put_meta_ctx(self, g.batch, "prune/", sid, cut);
    if (rc == 0)
        rc = store__put_meta_ctx(self, g.batch, "gc/", sid, now_collected);
    rc = store__finish_write(self, rc, g.batch, &g.key, self->prunes, sid, &cut);
    if (rc) {
        crdt_ctx_destroy(&now_collected);
        return rc;
    }
    store__put_ctx(self->collected, sid, &now_collected);
    *done = (node_store_gc_t){g.visited, g.dropped, g.paused};
    return 0;
}

int store__entry_removed(node_store_t *self, store_index_batch_t *ib, rocksdb_writebatch_t *batch,
                         const char *sid, const char *key, const char *elem, crdt_dot_t dot)
{
    const crdt_ctx_t *collected = zhash_lookup(self->collected, sid);
    if (collected && crdt_ctx_contains(collected, dot)) {
        store_key_t op_key = {0};
        store__op_key(&op_key, sid, dot);
        if (!op_key.failed)
            rocksdb_writebatch_delete_cf(batch, self->cf[CF_OPS], (char *)op_key.data, op_key.len);
        free(op_key.data);
        if (op_key.failed)
            return ENGRAM_ENOMEM;
    }
    return store__index_remove(self, ib, batch, sid, key, elem, dot);
}

/*  How many keys of cf start with sid \0. */
static int s_count_prefix(node_store_t *self, int cf, const char *sid, uint64_t *count)
{
    *count = 0;
    size_t plen = strlen(sid) + 1;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db, self->read_options, self->cf[cf]);
    for (rocksdb_iter_seek(it, sid, plen); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, sid, plen) != 0)
            break;
        (*count)++;
    }
    return store__iter_end(it, NULL, 0);
}

int node_store_garbage(node_store_t *self, const char *sid, uint64_t *pending)
{
    assert(self && sid && pending);
    *pending = 0;
    if (!store__shared(sid))
        return ENGRAM_ESCOPE;
    uint64_t ops, entries;
    int rc = s_count_prefix(self, CF_OPS, sid, &ops);
    if (rc == 0)
        rc = s_count_prefix(self, CF_ENTRIES, sid, &entries);
    if (rc == 0) /* every live entry has exactly one op record: its own */
        *pending = ops > entries ? ops - entries : 0;
    return rc;
}

/*  --- checkpoints ------------------------------------------------------------------- */

int node_store_checkpoint(node_store_t *self, const char *dir)
{
    assert(self && dir);
    char *err = NULL;
    /* what the turn applied goes to the log's file first, a refused write taking the store's
     * own way out (node_store_write_out: the process stops); a failure latched before leaves
     * what the store holds to copy */
    node_store_write_out(self);
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(self->db, &err);
    /* No flush first while the live logs are under STORE_CHECKPOINT_LOG_BYTES: the memtables'
     * writes are in them, which the checkpoint links (the last one copied). The store's
     * flushes are paced (flush_bytes_per_s): flushing here held the loop 2.9 s, against 0.2 s
     * unpaced, with 40k writes of 1 KiB in the memtables (README, "Flushes paced, collection
     * spread"). Past that size the copy's open would replay more than the flush writes. */
    if (!err)
        rocksdb_checkpoint_create(cp, dir, STORE_CHECKPOINT_LOG_BYTES, &err);
    if (cp)
        rocksdb_checkpoint_object_destroy(cp);
    int rc = store__rocks_error(&err);
    if (rc)
        return rc;
    /* Mark the copy, so that a store opened from it takes a new replica id (its counters
     * will be behind once this store issues more dots). Opened with RocksDB's defaults and
     * whole-key bloom filters, which do not pace the flush of what it replays from the copied
     * logs, on this thread (the table files it writes carry no prefix extractor: reads of them
     * use no prefix filter, and find the same keys). */
    rocksdb_options_t *copy_options = rocksdb_options_create();
    rocksdb_options_set_info_log_level(copy_options, STORE_ROCKSDB_INFO_LEVEL);
    rocksdb_block_based_table_options_t *copy_tables = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_filter_policy(
        copy_tables, rocksdb_filterpolicy_create_bloom_full(STORE_BLOOM_BITS_PER_KEY));
    rocksdb_options_set_block_based_table_factory(copy_options, copy_tables);
    const rocksdb_options_t *cf_options[CF_COUNT];
    for (int i = 0; i < CF_COUNT; i++)
        cf_options[i] = copy_options;
    rocksdb_column_family_handle_t *cf[CF_COUNT] = {0};
    rocksdb_t *db = rocksdb_open_column_families(copy_options, dir, CF_COUNT, store__cf_names,
                                                 cf_options, cf, &err);
    if (!err) {
        rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
        rocksdb_writeoptions_set_sync(wo, 1);
        rocksdb_put_cf(db, wo, cf[CF_META], "running", 7, "restored", 8, &err);
        rocksdb_writeoptions_destroy(wo);
        for (int i = 0; i < CF_COUNT; i++)
            rocksdb_column_family_handle_destroy(cf[i]);
        rocksdb_close(db);
    }
    rocksdb_options_destroy(copy_options);
    rocksdb_block_based_options_destroy(copy_tables);
    return store__rocks_error(&err);
}
