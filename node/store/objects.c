/*  node/store objects: the object read/write path (views, one WriteBatch per mutation,
 *  lists, history, TTL purge, the group commit's sync). */
#include <assert.h>
#include <czmq.h>
#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "crdt/array.h"
#include "crdt/codec.h"
#include "crdt/value.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/store/internal.h"
#include "node/trust/identity.h"
#include "proto/store.pb-c.h"

/*  --- views and writes -------------------------------------------------------------- */

int store__scan_entries(node_store_t *self, const char *sid, const char *key, const char *elem,
                        bool first_only, store_entry_fn fn, void *arg)
{
    store_key_t prefix = {0};
    store__key_str0(&prefix, sid);
    if (key)
        store__key_str0(&prefix, key);
    if (key && elem)
        store__key_str0(&prefix, elem);
    if (prefix.failed) {
        free(prefix.data);
        return ENGRAM_ENOMEM;
    }
    /* one object: the kept iterator, in prefix mode; a whole scope: a new one in total order */
    rocksdb_iterator_t **kept = key ? &self->entry_iters[store__is_private(sid)] : NULL;
    if (kept && !*kept)
        *kept = rocksdb_create_iterator_cf(self->db, self->object_read_options,
                                           store__entries_cf(self, sid));
    rocksdb_iterator_t *it = kept ? *kept
                                  : rocksdb_create_iterator_cf(self->db, self->read_options,
                                                               store__entries_cf(self, sid));
    int rc = 0;
    size_t skip = strlen(sid) + 1;
    for (rocksdb_iter_seek(it, (const char *)prefix.data, prefix.len);
         rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < prefix.len || memcmp(k, prefix.data, prefix.len) != 0)
            break;
        const char *ekey, *eelem;
        crdt_dot_t dot;
        const char *v = rocksdb_iter_value(it, &vlen);
        Engram__StoredEntry *entry = engram__stored_entry__unpack(NULL, vlen, (const uint8_t *)v);
        if (!store__parse_entry_key(k, klen, skip, &ekey, &eelem, &dot) || !entry) {
            if (key) /* a whole-scope scan serves anti-entropy, again and again: no log flood */
                zsys_error("engramd: skipping an unreadable entry of %s/%s", sid, key);
        } else
            rc = fn(arg, ekey, eelem, dot, entry);
        if (entry)
            engram__stored_entry__free_unpacked(entry, NULL);
        if (first_only)
            break;
    }
    if (!kept)
        return store__iter_end(it, &prefix, rc);
    free(prefix.data);
    int iter_rc = store__iter_error(it);
    if (iter_rc) /* a kept iterator that failed is not kept */
        store__drop_entry_iters(self);
    return rc ? rc : iter_rc;
}

int store__restore_entry(void *arg, const char *key, const char *elem, crdt_dot_t dot,
                         const Engram__StoredEntry *entry)
{
    store_view_t *v = arg;
    if (entry->type >= 1 && entry->type <= CRDT_TYPE_MAX)
        v->types |= 1u << entry->type;
    if (!v->view)
        return 0;
    crdt_entry_view_t view = {elem, dot.node, dot.n, entry->hlc, entry->data.data, entry->data.len};
    int rc = crdt_scope_restore(v->view, (crdt_type_id_t)entry->type, key, &view);
    if (rc)
        zsys_error("engramd: stored entry (%" PRIu64 ",%" PRIu64 ") of '%s' does not fit its "
                   "scope: %s",
                   dot.node, dot.n, key, engram_strerror(rc));
    return 0; /* one bad entry must not make the object unreadable */
}

int node_store_view(node_store_t *self, const char *sid, const char *key, node_view_t what,
                    const char *elem, crdt_scope_t **view, unsigned *types)
{
    store_view_t v = {crdt_scope_new(self->replica), 0};
    *view = NULL;
    if (!v.view)
        return ENGRAM_ENOMEM;
    const crdt_ctx_t *ctx = node_store_ctx(self, sid);
    int rc = ctx ? crdt_scope_restore_ctx(v.view, ctx) : 0;
    if (rc == 0 && what != NODE_VIEW_OBJECT) {
        /* The type of the object, from its first entry. */
        store_view_t probe = {NULL, 0};
        rc = store__scan_entries(self, sid, key, NULL, true, store__restore_entry, &probe);
        v.types = probe.types;
    }
    if (rc == 0 && what != NODE_VIEW_CONTEXT)
        rc = store__scan_entries(self, sid, key, what == NODE_VIEW_ELEM ? elem : NULL, false,
                                 store__restore_entry, &v);
    if (rc) {
        crdt_scope_destroy(&v.view);
        return rc;
    }
    *view = v.view;
    *types = v.types;
    return 0;
}

typedef struct {
    node_store_t *self;
    rocksdb_writebatch_t *batch;
    const char *sid;
    const crdt_scope_t *delta;
    const node_history_t *history;
    store_key_t key;
    Engram__StoredOp *op;      /* the op record under construction (shared scopes) */
    const crdt_dot_t *removed; /* the dots the operation removed (its removal record) */
    size_t nremoved;
    crdt_type_id_t type;     /* of the entry the operation added; 0: none */
    store_index_batch_t *ib; /* the search index's changes */
} s_apply_t;

static int s_put_added(void *arg, crdt_type_id_t type, const char *key, const crdt_entry_view_t *e)
{
    s_apply_t *a = arg;
    Engram__StoredEntry stored = ENGRAM__STORED_ENTRY__INIT;
    stored.type = type;
    stored.hlc = e->hlc;
    stored.data.data = (uint8_t *)e->data;
    stored.data.len = e->len;
    size_t size = engram__stored_entry__get_packed_size(&stored);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return ENGRAM_ENOMEM;
    engram__stored_entry__pack(&stored, buf);
    a->key.len = 0;
    store__entry_key(&a->key, a->sid, key, e->elem, e->node, e->n);
    if (a->key.failed) {
        free(buf);
        return ENGRAM_ENOMEM;
    }
    rocksdb_writebatch_put_cf(a->batch, store__entries_cf(a->self, a->sid), (char *)a->key.data,
                              a->key.len, (char *)buf, size);
    free(buf);
    if (a->history->expires_at_ms) {
        store_key_t exp = {0};
        store__key_u64(&exp, a->history->expires_at_ms);
        store__entry_key(&exp, a->sid, key, e->elem, e->node, e->n);
        if (!exp.failed)
            rocksdb_writebatch_put_cf(a->batch, a->self->cf[CF_EXPIRY], (char *)exp.data, exp.len,
                                      "", 0);
        free(exp.data);
        if (exp.failed)
            return ENGRAM_ENOMEM;
    }
    a->type = type;
    if (a->op) {
        a->op->type = type;
        a->op->added = true;
        a->op->elem = (char *)e->elem;
    }
    return store__index_add(a->self, a->ib, a->batch, a->sid, key, e->elem,
                            (crdt_dot_t){e->node, e->n}, type, e->data, e->len);
}

/*  Entries of the view the delta's context covers are the ones the operation removed. */
static int s_delete_removed(void *arg, crdt_type_id_t type, const char *key,
                            const crdt_entry_view_t *e)
{
    (void)type;
    s_apply_t *a = arg;
    if (!crdt_ctx_contains(crdt_scope_ctx(a->delta), (crdt_dot_t){e->node, e->n}))
        return 0;
    a->key.len = 0;
    store__entry_key(&a->key, a->sid, key, e->elem, e->node, e->n);
    if (a->key.failed)
        return ENGRAM_ENOMEM;
    rocksdb_writebatch_delete_cf(a->batch, store__entries_cf(a->self, a->sid), (char *)a->key.data,
                                 a->key.len);
    return store__entry_removed(a->self, a->ib, a->batch, a->sid, key, e->elem,
                                (crdt_dot_t){e->node, e->n});
}

static int s_put_record(void *arg, crdt_dot_t op, const crdt_dot_t *removed, size_t n)
{
    s_apply_t *a = arg;
    (void)op;
    a->removed = removed;
    a->nremoved = n;
    if (a->op) {
        a->op->n_removed = 2 * n;
        a->op->removed = (uint64_t *)removed; /* crdt_dot_t is (node, n) */
    }
    return 0;
}

/*  sid \0 key \0 hlc node n: the history key of a step. */
void store__history_key(store_key_t *k, const char *sid, const char *key, uint64_t hlc,
                        crdt_dot_t dot)
{
    k->len = 0;
    store__key_str0(k, sid);
    store__key_str0(k, key);
    store__key_u64(k, hlc);
    store__key_u64(k, dot.node);
    store__key_u64(k, dot.n);
}

/*  The operation's history step, encoded (*step, caller frees), put into the history family. */
static int s_put_history(s_apply_t *a, const char *key, crdt_dot_t dot, crdt_type_id_t type,
                         uint8_t **step, size_t *len)
{
    const node_history_t *h = a->history;
    Engram__StoredHistory stored = ENGRAM__STORED_HISTORY__INIT;
    stored.op = (char *)h->op;
    stored.agent = (char *)h->agent;
    stored.user = (char *)h->user;
    stored.type = type;
    stored.elem = (char *)(h->elem ? h->elem : "");
    stored.value.data = (uint8_t *)h->value;
    stored.value.len = h->value ? h->len : 0;
    stored.amount = h->amount;
    stored.key = (char *)key;
    stored.hlc = h->hlc;
    if (a->nremoved <= STORE_STEP_MAX_REMOVED) {
        stored.n_removed = 2 * a->nremoved;
        stored.removed = (uint64_t *)a->removed; /* crdt_dot_t is (node, n) */
    } else {
        stored.removed_all = true;
    }
    *len = engram__stored_history__get_packed_size(&stored);
    *step = malloc(*len ? *len : 1);
    store_key_t k = {0};
    store__history_key(&k, a->sid, key, h->hlc, dot);
    int rc = *step && !k.failed ? 0 : ENGRAM_ENOMEM;
    if (rc == 0) {
        engram__stored_history__pack(&stored, *step);
        rocksdb_writebatch_put_cf(a->batch, a->self->cf[CF_HISTORY], (char *)k.data, k.len,
                                  (char *)*step, *len);
    }
    free(k.data);
    return rc;
}

void node_store_set_min_free(node_store_t *self, uint64_t bytes)
{
    self->min_free = bytes;
}

/*  Measures the free space at most every ENGRAM_FREE_SPACE_CHECK_MS (a statvfs per write
 *  cost 4% of the write path). A burst in between may eat into the reserve, never through it
 *  unless it writes more than the reserve in that time. */
bool store__volume_full(node_store_t *self)
{
    int64_t now = zclock_mono();
    if (now - self->space_checked_ms < ENGRAM_FREE_SPACE_CHECK_MS && self->space_checked_ms)
        return self->volume_full;
    struct statvfs vfs;
    self->space_checked_ms = now;
    self->volume_full = self->min_free && statvfs(self->dir, &vfs) == 0 &&
                        (uint64_t)vfs.f_bavail * vfs.f_frsize < self->min_free;
    return self->volume_full;
}

int node_store_apply(node_store_t *self, const char *sid, const char *key,
                     const crdt_scope_t *before, crdt_scope_t *delta, const node_history_t *history)
{
    if (self->failed)
        return self->failed;
    if (store__volume_full(self))
        return ENGRAM_ENOSPC;
    /* The operation's dot: the one dot of this replica the delta adds to the context. */
    const crdt_ctx_t *old = node_store_ctx(self, sid);
    crdt_dot_t dot = {self->replica, (old ? crdt_ctx_max(old, self->replica) : 0) + 1};
    if (!crdt_ctx_contains(crdt_scope_ctx(delta), dot))
        return ENGRAM_EINVAL;
    crdt_ctx_t *ctx = old ? crdt_ctx_dup(old) : crdt_ctx_new();
    if (!ctx || crdt_ctx_join(ctx, crdt_scope_ctx(delta)) != 0) {
        crdt_ctx_destroy(&ctx);
        return ENGRAM_ENOMEM;
    }
    Engram__StoredOp op = ENGRAM__STORED_OP__INIT;
    op.key = (char *)key;
    op.elem = "";
    s_apply_t a = {self,
                   rocksdb_writebatch_create(),
                   sid,
                   delta,
                   history,
                   {0},
                   store__is_private(sid) ? NULL : &op,
                   NULL,
                   0,
                   0,
                   store__index_batch_new()};
    uint8_t *step = NULL;
    size_t step_len = 0;
    uint64_t ceiling = self->hlc_ceiling;
    int rc = a.ib ? crdt_scope_foreach_entry(before, s_delete_removed, &a) : ENGRAM_ENOMEM;
    if (rc == 0)
        rc = crdt_scope_foreach_entry(delta, s_put_added, &a);
    if (rc == 0)
        rc = crdt_scope_foreach_record(delta, s_put_record, &a);
    if (rc == 0)
        rc = s_put_history(&a, key, dot, a.type, &step, &step_len);
    if (rc == 0 && a.op) { /* the step rides with the op: in its record and its delta */
        rc = crdt_scope_note(delta, dot, step, step_len);
        if (rc == ENGRAM_EINVAL) /* too big to carry: it stays in this node's history */
            rc = 0;
        else if (rc == 0)
            op.hlc = history->hlc;
    }
    if (rc == 0 && a.op) { /* ops: sid \0 node n */
        store_key_t k = {0};
        store__key_str0(&k, sid);
        store__key_u64(&k, dot.node);
        store__key_u64(&k, dot.n);
        size_t size = engram__stored_op__get_packed_size(&op);
        uint8_t *buf = malloc(size ? size : 1);
        if (buf && !k.failed) {
            engram__stored_op__pack(&op, buf);
            rocksdb_writebatch_put_cf(a.batch, self->cf[CF_OPS], (char *)k.data, k.len, (char *)buf,
                                      size);
        } else {
            rc = ENGRAM_ENOMEM;
        }
        free(buf);
        free(k.data);
    }
    free(step);
    if (rc == 0) {
        uint8_t *buf;
        size_t len;
        rc = crdt_ctx_encode(ctx, &buf, &len);
        if (rc == 0) {
            char name[8 + ENGRAM_MAX_KEY_BYTES];
            snprintf(name, sizeof name, "ctx/%s", sid);
            rocksdb_writebatch_put_cf(a.batch, self->cf[CF_META], name, strlen(name), (char *)buf,
                                      len);
            free(buf);
        }
        ceiling = store__hlc_lease(self, a.batch, history->hlc);
    }
    if (rc == 0)
        rc = store__index_finish(self, a.ib, a.batch);
    rc = store__finish_write(self, rc, a.batch, &a.key, self->contexts, sid, &ctx);
    if (rc == 0)
        store__index_written(self, a.ib);
    store__index_batch_destroy(&a.ib);
    if (rc)
        return rc;
    self->hlc_ceiling = ceiling;
    return 0;
}

int node_store_write_out(node_store_t *self)
{
    if (self->unwritten) { /* even after a latched failure: what was applied reaches the log */
        char *err = NULL;
        rocksdb_flush_wal(self->db, 0, &err);
        if (err) {
            /* The file refused the bytes (EIO, ENOSPC): the memtable holds writes, readable,
             * that no restart would find, and their dots would be issued again. Nothing about
             * them has left the process (the server writes out before it sends), so it stops
             * here; the restart recovers what the log holds, as after a crash just before
             * those writes (store.h). */
            zsys_error("engramd: cannot write the write-ahead log (%s): stopping before "
                       "anything about the writes it holds leaves; a restart recovers what "
                       "the log holds",
                       err);
            rocksdb_free(err);
            _exit(EXIT_FAILURE);
        }
        self->unwritten = false;
    }
    return self->failed;
}

int node_store_sync(node_store_t *self)
{
    node_store_write_out(self);
    if (self->failed)
        return self->failed;
    if (!self->unsynced)
        return 0;
    char *err = NULL;
    rocksdb_flush_wal(self->db, 1, &err); /* the buffer is written out: the fsync alone */
    int rc = store__rocks_error(&err);
    if (rc == 0) {
        self->unsynced = self->unwritten = false;
        self->wal_syncs++;
    } else {
        store__latch(self, rc);
    }
    return rc;
}

/*  --- reads ------------------------------------------------------------------------- */

/*  When a stored entry expires: registers and logs hold an encoded crdt_value_t. */
uint64_t store__expires_at(const Engram__StoredEntry *entry)
{
    if (entry->type != CRDT_REG && entry->type != CRDT_LOG)
        return 0;
    crdt_value_t *value;
    if (crdt_value_decode(entry->data.data, entry->data.len, &value) != 0)
        return 0;
    uint64_t expires = value->expires_at_ms;
    crdt_value_destroy(&value);
    return expires;
}

int node_store_list(node_store_t *self, const char *sid, const char *prefix, const char *cursor,
                    unsigned limit, uint64_t now_ms, node_listed_t **keys, size_t *n, bool *more)
{
    *keys = NULL;
    *n = 0;
    *more = false;
    store_key_t seek = {0};
    store__key_str0(&seek, sid);
    size_t scope_len = seek.len;
    if (cursor[0] && strcmp(cursor, prefix) >= 0) {
        store__key_add(&seek, cursor, strlen(cursor));
        store__key_add(&seek, "\1", 1); /* past every entry of the cursor's key */
    } else {
        store__key_add(&seek, prefix, strlen(prefix));
    }
    if (seek.failed) {
        free(seek.data);
        return ENGRAM_ENOMEM;
    }
    size_t cap = 0;
    int rc = 0;
    char *current = NULL; /* the key whose entries are being read */
    bool current_live = false;
    crdt_type_id_t current_type = CRDT_REG;
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(self->db, self->read_options, store__entries_cf(self, sid));
    size_t plen = strlen(prefix);
    for (rocksdb_iter_seek(it, (const char *)seek.data, seek.len);; rocksdb_iter_next(it)) {
        const char *ekey = NULL, *elem;
        crdt_dot_t dot;
        Engram__StoredEntry *entry = NULL;
        bool valid = rocksdb_iter_valid(it);
        if (valid) {
            size_t klen, vlen;
            const char *k = rocksdb_iter_key(it, &klen);
            if (klen < scope_len || memcmp(k, seek.data, scope_len) != 0 ||
                !store__parse_entry_key(k, klen, scope_len, &ekey, &elem, &dot) ||
                strncmp(ekey, prefix, plen) != 0) {
                valid = false;
            } else {
                const char *v = rocksdb_iter_value(it, &vlen);
                entry = engram__stored_entry__unpack(NULL, vlen, (const uint8_t *)v);
            }
        }
        /* A key ends: emit it if one of its entries is live. */
        if (current && (!valid || strcmp(current, ekey) != 0)) {
            if (current_live) {
                if (*n == limit) {
                    *more = true;
                    free(current);
                    current = NULL;
                    if (entry)
                        engram__stored_entry__free_unpacked(entry, NULL);
                    break;
                }
                if (crdt_array_grow((void **)keys, &cap, *n + 1, sizeof **keys)) {
                    rc = ENGRAM_ENOMEM;
                } else {
                    (*keys)[(*n)++] = (node_listed_t){current, current_type};
                    current = NULL;
                }
            }
            free(current);
            current = NULL;
        }
        if (!valid || rc) {
            if (entry)
                engram__stored_entry__free_unpacked(entry, NULL);
            break;
        }
        if (!current) {
            current = strdup(ekey);
            current_live = false;
            if (!current)
                rc = ENGRAM_ENOMEM;
        }
        if (entry && !current_live) {
            uint64_t expires = store__expires_at(entry);
            if (expires == 0 || expires > now_ms) {
                current_live = true;
                current_type = (crdt_type_id_t)entry->type;
            }
        }
        if (entry)
            engram__stored_entry__free_unpacked(entry, NULL);
    }
    free(current);
    rc = store__iter_end(it, &seek, rc);
    if (rc) {
        node_store_listed_free(*keys, *n);
        *keys = NULL;
        *n = 0;
    }
    return rc;
}

void node_store_listed_free(node_listed_t *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i].key);
    free(keys);
}

int node_store_history(node_store_t *self, const char *sid, const char *key,
                       const node_position_t *after, node_history_fn fn, void *arg)
{
    store_key_t prefix = {0};
    store__key_str0(&prefix, sid);
    store__key_str0(&prefix, key);
    store_key_t seek = {0};
    store__key_add(&seek, prefix.data, prefix.len);
    if (after) { /* every key holds 24 bytes after the prefix: one more byte seeks past it */
        store__key_u64(&seek, after->hlc);
        store__key_u64(&seek, after->dot.node);
        store__key_u64(&seek, after->dot.n);
        store__key_add(&seek, "", 1);
    }
    if (prefix.failed || seek.failed) {
        free(prefix.data);
        free(seek.data);
        return ENGRAM_ENOMEM;
    }
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(self->db, self->read_options, self->cf[CF_HISTORY]);
    int rc = 0;
    for (rocksdb_iter_seek(it, (const char *)seek.data, seek.len);
         rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (klen != prefix.len + 24 || memcmp(k, prefix.data, prefix.len) != 0)
            break;
        const uint8_t *tail = k + prefix.len;
        const char *v = rocksdb_iter_value(it, &vlen);
        Engram__StoredHistory *h = engram__stored_history__unpack(NULL, vlen, (const uint8_t *)v);
        if (!h)
            continue;
        node_step_t step = {store__get_be64(tail),
                            {store__get_be64(tail + 8), store__get_be64(tail + 16)},
                            h->op,
                            h->agent,
                            h->user,
                            (crdt_type_id_t)h->type,
                            h->elem,
                            h->value.len ? h->value.data : NULL,
                            h->value.len,
                            h->amount,
                            (const crdt_dot_t *)h->removed,
                            h->n_removed / 2,
                            h->removed_all || !h->hlc};
        rc = fn(arg, &step);
        engram__stored_history__free_unpacked(h, NULL);
    }
    free(seek.data);
    rc = store__iter_end(it, &prefix, rc);
    return rc == NODE_STORE_STOP ? 0 : rc;
}

int node_store_object_entries(node_store_t *self, const char *sid, const char *key,
                              const char *after, node_entry_fn fn, void *arg)
{
    store_key_t prefix = {0};
    store__key_str0(&prefix, sid);
    store__key_str0(&prefix, key);
    store_key_t seek = {0};
    store__key_add(&seek, prefix.data, prefix.len);
    if (after && *after) { /* past every entry of element `after`: elem \0 sorts first */
        store__key_add(&seek, after, strlen(after));
        store__key_add(&seek, "\1", 1);
    }
    if (prefix.failed || seek.failed) {
        free(prefix.data);
        free(seek.data);
        return ENGRAM_ENOMEM;
    }
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(self->db, self->read_options, store__entries_cf(self, sid));
    size_t skip = strlen(sid) + 1;
    int rc = 0;
    for (rocksdb_iter_seek(it, (const char *)seek.data, seek.len);
         rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < prefix.len || memcmp(k, prefix.data, prefix.len) != 0)
            break;
        const char *ekey, *elem;
        crdt_dot_t dot;
        const char *v = rocksdb_iter_value(it, &vlen);
        Engram__StoredEntry *entry = engram__stored_entry__unpack(NULL, vlen, (const uint8_t *)v);
        if (!store__parse_entry_key(k, klen, skip, &ekey, &elem, &dot) || !entry) {
            zsys_error("engramd: skipping an unreadable entry of %s/%s", sid, key);
        } else {
            crdt_entry_view_t view = {elem,       dot.node,         dot.n,
                                      entry->hlc, entry->data.data, entry->data.len};
            rc = fn(arg, (crdt_type_id_t)entry->type, &view);
        }
        if (entry)
            engram__stored_entry__free_unpacked(entry, NULL);
    }
    free(seek.data);
    rc = store__iter_end(it, &prefix, rc);
    return rc == NODE_STORE_STOP ? 0 : rc;
}

int node_store_purge(node_store_t *self, uint64_t now_ms, uint64_t *purged)
{
    *purged = 0;
    store__drop_entry_iters(self); /* on the purge timer: a kept iterator pins what it saw */
    if (self->failed)
        return self->failed;
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(self->db, self->read_options, self->cf[CF_EXPIRY]);
    rocksdb_writebatch_t *batch = rocksdb_writebatch_create();
    store_index_batch_t *ib = store__index_batch_new();
    char *err = NULL;
    int rc = ib ? 0 : ENGRAM_ENOMEM;
    for (rocksdb_iter_seek_to_first(it); rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < 8 || store__get_be64((const uint8_t *)k) > now_ms)
            break;
        /* The entry itself may be gone already (overwritten): deleting it again is harmless,
         * and the context is untouched, so the purge cannot be undone by any replica. */
        const char *sid = k + 8;
        size_t sid_len = strnlen(sid, klen - 8);
        if (sid_len < klen - 8) {
            rocksdb_column_family_handle_t *cf = store__entries_cf(self, sid);
            size_t vlen;
            char *present =
                rocksdb_get_cf(self->db, self->read_options, cf, k + 8, klen - 8, &vlen, &err);
            const char *key, *elem;
            crdt_dot_t dot;
            if (present) {
                rocksdb_writebatch_delete_cf(batch, cf, k + 8, klen - 8);
                (*purged)++;
                if (store__parse_entry_key(k + 8, klen - 8, sid_len + 1, &key, &elem, &dot))
                    rc = store__entry_removed(self, ib, batch, sid, key, elem, dot);
            }
            rocksdb_free(present);
            if (err)
                break;
        }
        rocksdb_writebatch_delete_cf(batch, self->cf[CF_EXPIRY], k, klen);
    }
    if (!err)
        rocksdb_iter_get_error(it, &err);
    int read_rc = store__rocks_error(&err);
    rc = rc ? rc : read_rc;
    if (rc == 0)
        rc = store__index_finish(self, ib, batch);
    if (rc == 0 && rocksdb_writebatch_count(batch) > 0)
        rc = store__write_batch(self, batch);
    if (rc == 0)
        store__index_written(self, ib);
    store__index_batch_destroy(&ib);
    rocksdb_writebatch_destroy(batch);
    rocksdb_iter_destroy(it);
    if (rc)
        *purged = 0;
    return rc;
}
