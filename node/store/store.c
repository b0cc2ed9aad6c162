/*  node_store: engramd's RocksDB storage (see store.h for the layout and its invariants). */
#include "node/store/store.h"

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
#include "node/trust/identity.h"
#include "proto/store.pb-c.h"

enum { CF_DEFAULT, CF_ENTRIES, CF_PRIVATE, CF_OPS, CF_HISTORY, CF_EXPIRY, CF_META, CF_COUNT };
static const char *const s_cf_names[CF_COUNT] = {"default", "entries", "private", "ops",
                                                 "history", "expiry",  "meta"};

struct node_store {
    rocksdb_t *db;
    rocksdb_options_t *options;
    rocksdb_column_family_handle_t *cf[CF_COUNT];
    rocksdb_writeoptions_t *write_options; /* never sync: node_store_sync does the fsync */
    rocksdb_readoptions_t *read_options;
    bool durability_sync;
    node_identity_t identity;
    uint64_t replica;
    uint64_t hlc_floor;  /* the largest HLC ever persisted */
    zhash_t *contexts;   /* sid -> crdt_ctx_t *, owned: every scope ever written */
    zhash_t *prunes;     /* sid -> crdt_ctx_t *, owned: the prune cut of every collected scope */
    bool unsynced;       /* applied since the last sync */
    int failed;          /* the first storage failure: every later write is refused with it */
    bool read_only;      /* opened on a read-only data directory: reads only */
    char *dir;           /* owned: the data directory, for free-space checks */
    uint64_t min_free;   /* writes are refused below this much free space */
    int64_t space_checked_ms; /* when the free space was last measured */
    bool volume_full;    /* the last measurement found less than min_free */
};

/*  --- keys ---------------------------------------------------------------------------- */

static void s_be64(uint8_t *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

static uint64_t s_get_be64(const uint8_t *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

/*  A growable key buffer; every key is built in one. */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool failed;
} s_key_t;

static void s_key_add(s_key_t *k, const void *bytes, size_t len)
{
    if (k->failed)
        return;
    if (k->len + len > k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 128;
        while (cap < k->len + len)
            cap *= 2;
        uint8_t *grown = realloc(k->data, cap);
        if (!grown) {
            k->failed = true;
            return;
        }
        k->data = grown;
        k->cap = cap;
    }
    memcpy(k->data + k->len, bytes, len);
    k->len += len;
}

static void s_key_str0(s_key_t *k, const char *s)
{
    s_key_add(k, s, strlen(s) + 1);
}

static void s_key_u64(s_key_t *k, uint64_t v)
{
    uint8_t b[8];
    s_be64(b, v);
    s_key_add(k, b, 8);
}

/*  sid \0 key \0 elem \0 node n */
static void s_entry_key(s_key_t *k, const char *sid, const char *key, const char *elem,
                        uint64_t node, uint64_t n)
{
    s_key_str0(k, sid);
    s_key_str0(k, key);
    s_key_str0(k, elem);
    s_key_u64(k, node);
    s_key_u64(k, n);
}

/*  Splits an entry key (after `skip` bytes) into key, elem and dot; false if malformed. */
static bool s_parse_entry_key(const char *raw, size_t len, size_t skip, const char **key,
                              const char **elem, crdt_dot_t *dot)
{
    if (len < skip + 2 + 16)
        return false;
    const char *end = raw + len - 16;
    const char *k = raw + skip;
    const char *k_end = memchr(k, '\0', (size_t)(end - k));
    if (!k_end)
        return false;
    const char *e = k_end + 1;
    const char *e_end = memchr(e, '\0', (size_t)(end - e));
    if (!e_end || e_end + 1 != end)
        return false;
    *key = k;
    *elem = e;
    dot->node = s_get_be64((const uint8_t *)end);
    dot->n = s_get_be64((const uint8_t *)end + 8);
    return true;
}

static bool s_is_private(const char *sid)
{
    return sid[0] == '@';
}

static rocksdb_column_family_handle_t *s_entries_cf(const node_store_t *self, const char *sid)
{
    return self->cf[s_is_private(sid) ? CF_PRIVATE : CF_ENTRIES];
}

/*  --- errors ------------------------------------------------------------------------- */

static int s_rocks_error(char **err)
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
static void s_latch(node_store_t *self, int rc)
{
    if (self->failed)
        return;
    self->failed = rc;
    zsys_error("engramd: storage failure (%s): writes are refused until engramd restarts; "
               "reads go on",
               engram_strerror(rc));
}

/*  Writes a batch (unsynced: node_store_sync makes it durable); a failure is latched. */
static int s_write_batch(node_store_t *self, rocksdb_writebatch_t *batch)
{
    char *err = NULL;
    rocksdb_write(self->db, self->write_options, batch, &err);
    int rc = s_rocks_error(&err);
    if (rc)
        s_latch(self, rc);
    else
        self->unsynced = true;
    return rc;
}

static void s_ctx_free(void *item);

/*  map[sid] := *ctx_p (owned, the old one freed). */
static void s_put_ctx(zhash_t *map, const char *sid, crdt_ctx_t **ctx_p)
{
    zhash_update(map, sid, *ctx_p);
    zhash_freefn(map, sid, s_ctx_free);
    *ctx_p = NULL;
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
    return s_rocks_error(&err);
}

static int s_meta_put_sync(node_store_t *self, const char *name, const void *value, size_t len)
{
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(wo, 1);
    char *err = NULL;
    rocksdb_put_cf(self->db, wo, self->cf[CF_META], name, strlen(name), value, len, &err);
    rocksdb_writeoptions_destroy(wo);
    return s_rocks_error(&err);
}

static uint64_t s_get_le64(const char *in)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | (uint8_t)in[i];
    return v;
}

static void s_le64(char *out, uint64_t v)
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
        self->replica = s_get_le64(value);
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
    s_le64(raw, self->replica);
    rc = s_meta_put_sync(self, "replica", raw, 8);
    const char *mode = self->durability_sync ? "sync" : "async";
    return rc ? rc : s_meta_put_sync(self, "running", mode, strlen(mode));
}

/*  Loads every context stored under a meta prefix ("ctx/", "prune/") into map. */
static int s_load_ctx_map(node_store_t *self, const char *prefix, zhash_t *map)
{
    size_t plen = strlen(prefix);
    int rc = 0;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db, self->read_options,
                                                        self->cf[CF_META]);
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
            s_put_ctx(map, sid, &ctx);
        } else {
            zsys_error("engramd: the stored %s of scope '%s' is unreadable: %s", prefix,
                       sid ? sid : "?", engram_strerror(rc));
        }
        free(sid);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    return rc ? rc : s_rocks_error(&err);
}

/*  Loads every scope's context and prune cut, and the HLC floor. */
static int s_load_meta(node_store_t *self)
{
    char *value;
    size_t len;
    int rc = s_meta_get(self, "hlc", &value, &len);
    if (rc == 0 && value && len == 8)
        self->hlc_floor = s_get_le64(value);
    rocksdb_free(value);
    if (rc == 0)
        rc = s_load_ctx_map(self, "ctx/", self->contexts);
    if (rc == 0)
        rc = s_load_ctx_map(self, "prune/", self->prunes);
    return rc;
}

int node_store_open(const char *dir, bool durability_sync, node_store_t **self_p, char *why,
                    size_t why_len)
{
    *self_p = NULL;
    why[0] = '\0';
    node_store_t *self = calloc(1, sizeof *self);
    if (!self)
        return ENGRAM_ENOMEM;
    self->durability_sync = durability_sync;
    self->dir = strdup(dir);
    self->min_free = ENGRAM_DEFAULT_MIN_FREE_BYTES;
    self->contexts = zhash_new();
    self->prunes = zhash_new();
    self->options = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(self->options, 1);
    rocksdb_options_set_create_missing_column_families(self->options, 1);
    self->write_options = rocksdb_writeoptions_create();
    self->read_options = rocksdb_readoptions_create();

    const rocksdb_options_t *cf_options[CF_COUNT];
    for (int i = 0; i < CF_COUNT; i++)
        cf_options[i] = self->options;
    char *err = NULL;
    if (zsys_dir_create("%s", dir) != 0) {
        snprintf(why, why_len, "cannot create data directory '%s'", dir);
        node_store_close(&self);
        return ENGRAM_EIO;
    }
    self->db = rocksdb_open_column_families(self->options, dir, CF_COUNT, s_cf_names,
                                            cf_options, self->cf, &err);
    if (err && strstr(err, "Read-only file system")) {
        /* A read-only data directory: serve what it holds, refuse every write. */
        rocksdb_free(err);
        err = NULL;
        self->db = rocksdb_open_for_read_only_column_families(
            self->options, dir, CF_COUNT, s_cf_names, cf_options, self->cf, 0, &err);
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
        int rc = s_rocks_error(&err);
        node_store_close(&self);
        return rc;
    }
    int rc = s_load_identity(self, why, why_len);
    if (rc == 0)
        rc = s_load_meta(self);
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
    if (self->db) {
        node_store_sync(self);
        if (self->identity.node_id && !self->failed) { /* opened fully: a clean stop */
            char *err = NULL;
            rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
            rocksdb_writeoptions_set_sync(wo, 1);
            rocksdb_delete_cf(self->db, wo, self->cf[CF_META], "running", 7, &err);
            rocksdb_writeoptions_destroy(wo);
            s_rocks_error(&err);
        }
        for (int i = 0; i < CF_COUNT; i++)
            if (self->cf[i])
                rocksdb_column_family_handle_destroy(self->cf[i]);
        rocksdb_close(self->db);
    }
    rocksdb_options_destroy(self->options);
    rocksdb_writeoptions_destroy(self->write_options);
    rocksdb_readoptions_destroy(self->read_options);
    zhash_destroy(&self->contexts);
    zhash_destroy(&self->prunes);
    free(self->dir);
    sodium_memzero(&self->identity, sizeof self->identity);
    free(self);
    *self_p = NULL;
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
    s_le64(raw, fresh);
    int rc = s_meta_put_sync(self, "replica", raw, 8);
    if (rc == 0)
        self->replica = fresh;
    return rc;
}

uint64_t node_store_hlc_floor(const node_store_t *self)
{
    return self->hlc_floor;
}

size_t node_store_scopes(const node_store_t *self)
{
    return zhash_size(self->contexts);
}

const crdt_ctx_t *node_store_ctx(const node_store_t *self, const char *sid)
{
    return zhash_lookup(self->contexts, sid);
}

/*  --- views and writes -------------------------------------------------------------- */

/*  Calls fn for every stored entry of one object (all types), in key order. */
typedef int (*s_entry_fn)(void *arg, const char *key, const char *elem, crdt_dot_t dot,
                          const Engram__StoredEntry *entry);

/*  Calls fn for the stored entries of sid whose key starts with sid \0 key \0 [elem \0],
 *  in key order; with `first_only`, for the first one only. */
static int s_scan_object(node_store_t *self, const char *sid, const char *key, const char *elem,
                         bool first_only, s_entry_fn fn, void *arg)
{
    s_key_t prefix = {0};
    s_key_str0(&prefix, sid);
    s_key_str0(&prefix, key);
    if (elem)
        s_key_str0(&prefix, elem);
    if (prefix.failed) {
        free(prefix.data);
        return ENGRAM_ENOMEM;
    }
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(self->db, self->read_options, s_entries_cf(self, sid));
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
        if (!s_parse_entry_key(k, klen, skip, &ekey, &eelem, &dot) || !entry)
            zsys_error("engramd: skipping an unreadable entry of %s/%s", sid, key);
        else
            rc = fn(arg, ekey, eelem, dot, entry);
        if (entry)
            engram__stored_entry__free_unpacked(entry, NULL);
        if (first_only)
            break;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    free(prefix.data);
    return rc ? rc : s_rocks_error(&err);
}

typedef struct {
    crdt_scope_t *view; /* NULL: probe types only */
    unsigned types;
} s_view_t;

static int s_restore_entry(void *arg, const char *key, const char *elem, crdt_dot_t dot,
                           const Engram__StoredEntry *entry)
{
    s_view_t *v = arg;
    if (entry->type >= 1 && entry->type <= CRDT_TYPE_MAX)
        v->types |= 1u << entry->type;
    if (!v->view)
        return 0;
    crdt_entry_view_t view = {elem, dot.node, dot.n, entry->hlc, entry->data.data,
                              entry->data.len};
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
    s_view_t v = {crdt_scope_new(self->replica), 0};
    *view = NULL;
    if (!v.view)
        return ENGRAM_ENOMEM;
    const crdt_ctx_t *ctx = node_store_ctx(self, sid);
    int rc = ctx ? crdt_scope_restore_ctx(v.view, ctx) : 0;
    if (rc == 0 && what != NODE_VIEW_OBJECT) {
        /* The type of the object, from its first entry. */
        s_view_t probe = {NULL, 0};
        rc = s_scan_object(self, sid, key, NULL, true, s_restore_entry, &probe);
        v.types = probe.types;
    }
    if (rc == 0 && what != NODE_VIEW_CONTEXT)
        rc = s_scan_object(self, sid, key, what == NODE_VIEW_ELEM ? elem : NULL, false,
                           s_restore_entry, &v);
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
    s_key_t key;
    Engram__StoredOp *op; /* the op record under construction (shared scopes) */
} s_apply_t;

static int s_put_added(void *arg, crdt_type_id_t type, const char *key,
                       const crdt_entry_view_t *e)
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
    s_entry_key(&a->key, a->sid, key, e->elem, e->node, e->n);
    if (a->key.failed) {
        free(buf);
        return ENGRAM_ENOMEM;
    }
    rocksdb_writebatch_put_cf(a->batch, s_entries_cf(a->self, a->sid), (char *)a->key.data,
                              a->key.len, (char *)buf, size);
    free(buf);
    if (a->history->expires_at_ms) {
        s_key_t exp = {0};
        s_key_u64(&exp, a->history->expires_at_ms);
        s_entry_key(&exp, a->sid, key, e->elem, e->node, e->n);
        if (!exp.failed)
            rocksdb_writebatch_put_cf(a->batch, a->self->cf[CF_EXPIRY], (char *)exp.data,
                                      exp.len, "", 0);
        free(exp.data);
        if (exp.failed)
            return ENGRAM_ENOMEM;
    }
    if (a->op) {
        a->op->type = type;
        a->op->added = true;
        a->op->elem = (char *)e->elem;
    }
    return 0;
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
    s_entry_key(&a->key, a->sid, key, e->elem, e->node, e->n);
    if (a->key.failed)
        return ENGRAM_ENOMEM;
    rocksdb_writebatch_delete_cf(a->batch, s_entries_cf(a->self, a->sid), (char *)a->key.data,
                                 a->key.len);
    return 0;
}

static int s_put_record(void *arg, crdt_dot_t op, const crdt_dot_t *removed, size_t n)
{
    s_apply_t *a = arg;
    (void)op;
    if (!a->op)
        return 0;
    a->op->n_removed = 2 * n;
    a->op->removed = (uint64_t *)removed; /* crdt_dot_t is (node, n) */
    return 0;
}

static void s_put_history(s_apply_t *a, const char *key, crdt_dot_t dot, crdt_type_id_t type)
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
    size_t size = engram__stored_history__get_packed_size(&stored);
    uint8_t *buf = malloc(size ? size : 1);
    s_key_t k = {0};
    s_key_str0(&k, a->sid);
    s_key_str0(&k, key);
    s_key_u64(&k, h->hlc);
    s_key_u64(&k, dot.node);
    s_key_u64(&k, dot.n);
    if (buf && !k.failed) {
        engram__stored_history__pack(&stored, buf);
        rocksdb_writebatch_put_cf(a->batch, a->self->cf[CF_HISTORY], (char *)k.data, k.len,
                                  (char *)buf, size);
    }
    free(buf);
    free(k.data);
}

void node_store_set_min_free(node_store_t *self, uint64_t bytes)
{
    self->min_free = bytes;
}

/*  Measures the free space at most every ENGRAM_FREE_SPACE_CHECK_MS (a statvfs per write
 *  cost 4% of the write path). A burst in between may eat into the reserve, never through it
 *  unless it writes more than the reserve in that time. */
static bool s_volume_full(node_store_t *self)
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
                     const crdt_scope_t *before, const crdt_scope_t *delta,
                     const node_history_t *history)
{
    if (self->failed)
        return self->failed;
    if (s_volume_full(self))
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
    s_apply_t a = {self, rocksdb_writebatch_create(), sid, delta, history, {0},
                   s_is_private(sid) ? NULL : &op};
    int rc = crdt_scope_foreach_entry(before, s_delete_removed, &a);
    if (rc == 0)
        rc = crdt_scope_foreach_entry(delta, s_put_added, &a);
    if (rc == 0)
        rc = crdt_scope_foreach_record(delta, s_put_record, &a);
    if (rc == 0 && a.op) { /* ops: sid \0 node n */
        s_key_t k = {0};
        s_key_str0(&k, sid);
        s_key_u64(&k, dot.node);
        s_key_u64(&k, dot.n);
        size_t size = engram__stored_op__get_packed_size(&op);
        uint8_t *buf = malloc(size ? size : 1);
        if (buf && !k.failed) {
            engram__stored_op__pack(&op, buf);
            rocksdb_writebatch_put_cf(a.batch, self->cf[CF_OPS], (char *)k.data, k.len,
                                      (char *)buf, size);
        } else {
            rc = ENGRAM_ENOMEM;
        }
        free(buf);
        free(k.data);
    }
    if (rc == 0) {
        s_put_history(&a, key, dot, (crdt_type_id_t)op.type);
        uint8_t *buf;
        size_t len;
        rc = crdt_ctx_encode(ctx, &buf, &len);
        if (rc == 0) {
            char name[8 + ENGRAM_MAX_KEY_BYTES];
            snprintf(name, sizeof name, "ctx/%s", sid);
            rocksdb_writebatch_put_cf(a.batch, self->cf[CF_META], name, strlen(name),
                                      (char *)buf, len);
            free(buf);
        }
        if (history->hlc > self->hlc_floor) {
            char raw[8];
            s_le64(raw, history->hlc);
            rocksdb_writebatch_put_cf(a.batch, self->cf[CF_META], "hlc", 3, raw, 8);
        }
    }
    if (rc == 0)
        rc = s_write_batch(self, a.batch);
    rocksdb_writebatch_destroy(a.batch);
    free(a.key.data);
    if (rc) {
        crdt_ctx_destroy(&ctx);
        return rc;
    }
    s_put_ctx(self->contexts, sid, &ctx);
    if (history->hlc > self->hlc_floor)
        self->hlc_floor = history->hlc;
    return 0;
}

int node_store_sync(node_store_t *self)
{
    if (self->failed)
        return self->failed;
    if (!self->unsynced)
        return 0;
    char *err = NULL;
    rocksdb_flush_wal(self->db, 1, &err);
    int rc = s_rocks_error(&err);
    if (rc == 0)
        self->unsynced = false;
    else
        s_latch(self, rc);
    return rc;
}

/*  --- reads ------------------------------------------------------------------------- */

/*  When a stored entry expires: registers and logs hold an encoded crdt_value_t. */
static uint64_t s_expires_at(const Engram__StoredEntry *entry)
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

static int s_grow_listed(node_listed_t **keys, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    node_listed_t *grown = realloc(*keys, ncap * sizeof *grown);
    if (!grown)
        return ENGRAM_ENOMEM;
    *keys = grown;
    *cap = ncap;
    return 0;
}

int node_store_list(node_store_t *self, const char *sid, const char *prefix, const char *cursor,
                    unsigned limit, uint64_t now_ms, node_listed_t **keys, size_t *n, bool *more)
{
    *keys = NULL;
    *n = 0;
    *more = false;
    s_key_t seek = {0};
    s_key_str0(&seek, sid);
    size_t scope_len = seek.len;
    if (cursor[0] && strcmp(cursor, prefix) >= 0) {
        s_key_add(&seek, cursor, strlen(cursor));
        s_key_add(&seek, "\1", 1); /* past every entry of the cursor's key */
    } else {
        s_key_add(&seek, prefix, strlen(prefix));
    }
    if (seek.failed) {
        free(seek.data);
        return ENGRAM_ENOMEM;
    }
    size_t cap = 0;
    int rc = 0;
    char *current = NULL;  /* the key whose entries are being read */
    bool current_live = false;
    crdt_type_id_t current_type = CRDT_REG;
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(self->db, self->read_options, s_entries_cf(self, sid));
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
                !s_parse_entry_key(k, klen, scope_len, &ekey, &elem, &dot) ||
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
                if (s_grow_listed(keys, &cap, *n + 1)) {
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
            uint64_t expires = s_expires_at(entry);
            if (expires == 0 || expires > now_ms) {
                current_live = true;
                current_type = (crdt_type_id_t)entry->type;
            }
        }
        if (entry)
            engram__stored_entry__free_unpacked(entry, NULL);
    }
    free(current);
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    free(seek.data);
    rc = rc ? rc : s_rocks_error(&err);
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

int node_store_history(node_store_t *self, const char *sid, const char *key, node_history_fn fn,
                       void *arg)
{
    s_key_t prefix = {0};
    s_key_str0(&prefix, sid);
    s_key_str0(&prefix, key);
    if (prefix.failed) {
        free(prefix.data);
        return ENGRAM_ENOMEM;
    }
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(self->db, self->read_options, self->cf[CF_HISTORY]);
    int rc = 0;
    for (rocksdb_iter_seek(it, (const char *)prefix.data, prefix.len);
         rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (klen != prefix.len + 24 || memcmp(k, prefix.data, prefix.len) != 0)
            break;
        const uint8_t *tail = k + prefix.len;
        const char *v = rocksdb_iter_value(it, &vlen);
        Engram__StoredHistory *h =
            engram__stored_history__unpack(NULL, vlen, (const uint8_t *)v);
        if (!h)
            continue;
        rc = fn(arg, s_get_be64(tail), (crdt_dot_t){s_get_be64(tail + 8), s_get_be64(tail + 16)},
                h->op, h->agent, h->user, (crdt_type_id_t)h->type, h->elem, h->value.data,
                h->value.len, h->amount);
        engram__stored_history__free_unpacked(h, NULL);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    free(prefix.data);
    return rc ? rc : s_rocks_error(&err);
}

int node_store_purge(node_store_t *self, uint64_t now_ms, uint64_t *purged)
{
    *purged = 0;
    if (self->failed)
        return self->failed;
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(self->db, self->read_options, self->cf[CF_EXPIRY]);
    rocksdb_writebatch_t *batch = rocksdb_writebatch_create();
    char *err = NULL;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < 8 || s_get_be64((const uint8_t *)k) > now_ms)
            break;
        /* The entry itself may be gone already (overwritten): deleting it again is harmless,
         * and the context is untouched, so the purge cannot be undone by any replica. */
        const char *sid = k + 8;
        size_t sid_len = strnlen(sid, klen - 8);
        if (sid_len < klen - 8) {
            rocksdb_column_family_handle_t *cf = s_entries_cf(self, sid);
            size_t vlen;
            char *present = rocksdb_get_cf(self->db, self->read_options, cf, k + 8, klen - 8,
                                           &vlen, &err);
            if (present) {
                rocksdb_writebatch_delete_cf(batch, cf, k + 8, klen - 8);
                (*purged)++;
            }
            rocksdb_free(present);
            if (err)
                break;
        }
        rocksdb_writebatch_delete_cf(batch, self->cf[CF_EXPIRY], k, klen);
    }
    if (!err)
        rocksdb_iter_get_error(it, &err);
    int rc = s_rocks_error(&err);
    if (rc == 0 && rocksdb_writebatch_count(batch) > 0)
        rc = s_write_batch(self, batch);
    rocksdb_writebatch_destroy(batch);
    rocksdb_iter_destroy(it);
    if (rc)
        *purged = 0;
    return rc;
}

/*  --- the store as the gossip engine sees it ---------------------------------------------- */

static bool s_shared(const char *scope)
{
    return scope[0] && scope[0] != '@' && strchr(scope, ':');
}

typedef struct {
    void (*fn)(void *arg, const char *scope);
    void *arg;
} s_each_t;

static void s_g_each_scope(void *state, void (*fn)(void *arg, const char *scope), void *arg)
{
    node_store_t *self = state;
    zlist_t *names = zhash_keys(self->contexts);
    for (char *sid = zlist_first(names); sid; sid = zlist_next(names))
        if (s_shared(sid))
            fn(arg, sid);
    zlist_destroy(&names);
}

static const crdt_ctx_t *s_g_ctx(void *state, const char *scope)
{
    return s_shared(scope) ? node_store_ctx(state, scope) : NULL;
}

/*  sid \0 node n: the ops dot index. */
static void s_op_key(s_key_t *k, const char *sid, crdt_dot_t dot)
{
    k->len = 0;
    s_key_str0(k, sid);
    s_key_u64(k, dot.node);
    s_key_u64(k, dot.n);
}

/*  Unpacks an op record; NULL (logged) if it is unreadable or its removals are not dots. */
static Engram__StoredOp *s_unpack_op(const char *sid, crdt_dot_t dot, const char *v, size_t vlen)
{
    Engram__StoredOp *op = engram__stored_op__unpack(NULL, vlen, (const uint8_t *)v);
    if (op && op->n_removed % 2 == 0)
        return op;
    zsys_error("engramd: skipping the unreadable op record (%" PRIu64 ",%" PRIu64 ") of %s",
               dot.node, dot.n, sid);
    if (op)
        engram__stored_op__free_unpacked(op, NULL);
    return NULL;
}

/*  Visits one op record. */
typedef int (*s_op_fn)(void *arg, crdt_dot_t dot, const Engram__StoredOp *op);

/*  Calls fn for every op record of sid whose dot is in ctx, by range seeks on the ops index:
 *  the cost tracks the dots of ctx that have records, not the scope. With the scope's own
 *  context, every op record of the scope. */
static int s_scan_ops_in(node_store_t *self, const char *sid, const crdt_ctx_t *ctx, s_op_fn fn,
                         void *arg)
{
    s_key_t seek = {0};
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(self->db, self->read_options, self->cf[CF_OPS]);
    size_t plen = strlen(sid) + 1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < crdt_ctx_nodes(ctx); i++) {
        uint64_t node, base;
        const crdt_range_t *cloud;
        size_t ncloud;
        crdt_ctx_node_at(ctx, i, &node, &base, &cloud, &ncloud);
        for (size_t j = base ? 0 : 1; rc == 0 && j <= ncloud; j++) {
            crdt_range_t range = j == 0 ? (crdt_range_t){1, base} : cloud[j - 1];
            s_op_key(&seek, sid, (crdt_dot_t){node, range.lo});
            if (seek.failed) {
                rc = ENGRAM_ENOMEM;
                break;
            }
            for (rocksdb_iter_seek(it, (const char *)seek.data, seek.len);
                 rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
                size_t klen, vlen;
                const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
                if (klen != plen + 16 || memcmp(k, seek.data, plen) != 0 ||
                    s_get_be64(k + plen) != node)
                    break;
                crdt_dot_t dot = {node, s_get_be64(k + plen + 8)};
                if (dot.n > range.hi)
                    break;
                const char *v = rocksdb_iter_value(it, &vlen);
                Engram__StoredOp *op = s_unpack_op(sid, dot, v, vlen);
                if (op) {
                    rc = fn(arg, dot, op);
                    engram__stored_op__free_unpacked(op, NULL);
                }
            }
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    free(seek.data);
    return rc ? rc : s_rocks_error(&err);
}

/*  The live entry an op added, if it is still there: *entry (caller frees) or NULL. */
static int s_get_added(node_store_t *self, const char *sid, crdt_dot_t dot,
                       const Engram__StoredOp *op, s_key_t *key, Engram__StoredEntry **entry)
{
    *entry = NULL;
    if (!op->added)
        return 0;
    key->len = 0;
    s_entry_key(key, sid, op->key, op->elem, dot.node, dot.n);
    if (key->failed)
        return ENGRAM_ENOMEM;
    char *err = NULL;
    size_t vlen;
    char *v = rocksdb_get_cf(self->db, self->read_options, self->cf[CF_ENTRIES],
                             (const char *)key->data, key->len, &vlen, &err);
    if (err)
        return s_rocks_error(&err);
    if (v) {
        *entry = engram__stored_entry__unpack(NULL, vlen, (const uint8_t *)v);
        if (!*entry)
            zsys_error("engramd: skipping an unreadable entry of %s/%s", sid, op->key);
    }
    rocksdb_free(v);
    return 0;
}

int node_store_entry_of(node_store_t *self, const char *sid, crdt_dot_t dot, char **key,
                        char **elem, crdt_type_id_t *type)
{
    *key = *elem = NULL;
    if (!s_shared(sid))
        return ENGRAM_ESCOPE;
    s_key_t k = {0};
    s_op_key(&k, sid, dot);
    if (k.failed)
        return ENGRAM_ENOMEM;
    char *err = NULL;
    size_t vlen;
    char *v = rocksdb_get_cf(self->db, self->read_options, self->cf[CF_OPS], (const char *)k.data,
                             k.len, &vlen, &err);
    int rc = err ? s_rocks_error(&err) : v ? 0 : ENGRAM_ENOTFOUND;
    Engram__StoredOp *op = rc == 0 ? s_unpack_op(sid, dot, v, vlen) : NULL;
    rocksdb_free(v);
    Engram__StoredEntry *entry = NULL;
    if (rc == 0 && !op)
        rc = ENGRAM_ENOTFOUND;
    if (rc == 0)
        rc = s_get_added(self, sid, dot, op, &k, &entry);
    if (rc == 0 && !entry)
        rc = ENGRAM_ENOTFOUND;
    if (rc == 0) {
        *key = strdup(op->key);
        *elem = strdup(op->elem);
        *type = (crdt_type_id_t)op->type;
        if (!*key || !*elem) {
            free(*key);
            free(*elem);
            *key = *elem = NULL;
            rc = ENGRAM_ENOMEM;
        }
    }
    if (entry)
        engram__stored_entry__free_unpacked(entry, NULL);
    if (op)
        engram__stored_op__free_unpacked(op, NULL);
    free(k.data);
    return rc;
}

static int s_restore_record(void *arg, crdt_dot_t dot, const Engram__StoredOp *op)
{
    if (op->n_removed >= 2)
        crdt_scope_restore_record(arg, dot, (const crdt_dot_t *)op->removed, op->n_removed / 2);
    return 0;
}

/*  The whole scope as a kernel view: entries, removal records, context and prune cut. */
static int s_full_view(node_store_t *self, const char *sid, crdt_scope_t **view)
{
    s_view_t v = {crdt_scope_new(0), 0};
    if (!v.view)
        return ENGRAM_ENOMEM;
    int rc = crdt_scope_restore_ctx(v.view, node_store_ctx(self, sid));
    s_key_t prefix = {0};
    s_key_str0(&prefix, sid);
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(self->db, self->read_options, self->cf[CF_ENTRIES]);
    for (rocksdb_iter_seek(it, (const char *)prefix.data, prefix.len);
         rc == 0 && !prefix.failed && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < prefix.len || memcmp(k, prefix.data, prefix.len) != 0)
            break;
        const char *key, *elem;
        crdt_dot_t dot;
        const char *val = rocksdb_iter_value(it, &vlen);
        Engram__StoredEntry *entry =
            engram__stored_entry__unpack(NULL, vlen, (const uint8_t *)val);
        if (entry && s_parse_entry_key(k, klen, prefix.len, &key, &elem, &dot))
            rc = s_restore_entry(&v, key, elem, dot, entry);
        if (entry)
            engram__stored_entry__free_unpacked(entry, NULL);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rc = rc ? rc : prefix.failed ? ENGRAM_ENOMEM : s_rocks_error(&err);
    free(prefix.data);
    if (rc == 0)
        rc = s_scan_ops_in(self, sid, node_store_ctx(self, sid), s_restore_record, v.view);
    const crdt_ctx_t *pruned = node_store_pruned(self, sid);
    if (rc == 0 && pruned)
        rc = crdt_scope_prune(v.view, pruned); /* drops records kept for live entries */
    if (rc)
        crdt_scope_destroy(&v.view);
    *view = v.view;
    return rc;
}

/*  A removal record found for a catch-up delta; restored once its dots are in the delta's
 *  context. */
typedef struct {
    crdt_dot_t op;
    crdt_dot_t *removed; /* owned */
    size_t n;
} s_rec_t;

typedef struct {
    node_store_t *self;
    const char *sid;
    crdt_scope_t *delta;
    crdt_ctx_t *removed; /* every dot the shipped records removed */
    s_rec_t *recs;
    size_t nrecs;
    size_t cap;
    s_key_t key;
} s_ship_t;

/*  One op the asker lacks: its entry if still alive, its removal record. */
static int s_ship_op(void *arg, crdt_dot_t dot, const Engram__StoredOp *op)
{
    s_ship_t *s = arg;
    Engram__StoredEntry *entry;
    int rc = s_get_added(s->self, s->sid, dot, op, &s->key, &entry);
    if (rc == 0 && entry) {
        crdt_entry_view_t view = {op->elem,   dot.node,          dot.n,
                                  entry->hlc, entry->data.data, entry->data.len};
        rc = crdt_scope_restore(s->delta, (crdt_type_id_t)entry->type, op->key, &view);
        if (rc && rc != ENGRAM_ENOMEM) {
            zsys_error("engramd: stored entry (%" PRIu64 ",%" PRIu64 ") of '%s' does not fit "
                       "its scope: %s",
                       dot.node, dot.n, op->key, engram_strerror(rc));
            rc = 0;
        }
    }
    if (entry)
        engram__stored_entry__free_unpacked(entry, NULL);
    if (rc || op->n_removed == 0)
        return rc;
    if (s->nrecs == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        s_rec_t *grown = realloc(s->recs, cap * sizeof *grown);
        if (!grown)
            return ENGRAM_ENOMEM;
        s->recs = grown;
        s->cap = cap;
    }
    size_t n = op->n_removed / 2;
    s_rec_t *rec = &s->recs[s->nrecs];
    rec->op = dot;
    rec->n = n;
    rec->removed = malloc(n * sizeof *rec->removed);
    if (!rec->removed)
        return ENGRAM_ENOMEM;
    s->nrecs++;
    for (size_t i = 0; i < n; i++) {
        rec->removed[i] = (crdt_dot_t){op->removed[2 * i], op->removed[2 * i + 1]};
        if (crdt_ctx_insert(s->removed, rec->removed[i]) != 0)
            return ENGRAM_ENOMEM;
    }
    return 0;
}

/*  The catch-up delta read from the ops index by range (see store.h). */
static crdt_scope_t *s_catch_up(node_store_t *self, const char *sid, const crdt_ctx_t *since)
{
    const crdt_ctx_t *ctx = node_store_ctx(self, sid);
    crdt_ctx_t *missing = crdt_ctx_diff(ctx, since);
    s_ship_t s = {self, sid, crdt_scope_new(0), crdt_ctx_new(), NULL, 0, 0, {0}};
    int rc = missing && s.delta && s.removed ? 0 : ENGRAM_ENOMEM;
    if (rc == 0)
        rc = crdt_scope_restore_ctx(s.delta, missing);
    if (rc == 0)
        rc = s_scan_ops_in(self, sid, missing, s_ship_op, &s);
    if (rc == 0) /* removed dots the asker may still hold live */
        rc = crdt_scope_restore_ctx(s.delta, s.removed);
    for (size_t i = 0; i < s.nrecs; i++) {
        if (rc == 0)
            rc = crdt_scope_restore_record(s.delta, s.recs[i].op, s.recs[i].removed,
                                           s.recs[i].n);
        free(s.recs[i].removed);
    }
    free(s.recs);
    free(s.key.data);
    crdt_ctx_destroy(&s.removed);
    crdt_ctx_destroy(&missing);
    if (rc)
        crdt_scope_destroy(&s.delta);
    return s.delta;
}

static crdt_scope_t *s_g_delta_since(void *state, const char *scope, const crdt_ctx_t *since)
{
    node_store_t *self = state;
    if (!s_shared(scope) || !node_store_ctx(self, scope))
        return NULL;
    const crdt_ctx_t *pruned = node_store_pruned(self, scope);
    if (!crdt_ctx_is_empty(since) && (!pruned || crdt_ctx_covers(since, pruned)))
        return s_catch_up(self, scope, since);
    /* Records the asker would need are gone, or it has nothing (a new node): the whole state,
     * as crdt_scope_delta_since answers, read in one pass over the scope rather than one point
     * read per op. */
    crdt_scope_t *view = NULL;
    s_full_view(self, scope, &view);
    return view;
}

/*  A sorted array of dots, for membership tests against a delta's entries. */
typedef struct {
    crdt_dot_t *dots;
    size_t n;
    size_t cap;
} s_dots_t;

static int s_cmp_dot(const void *a, const void *b)
{
    const crdt_dot_t *x = a, *y = b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    return (x->n > y->n) - (x->n < y->n);
}

static int s_collect_dot(void *arg, crdt_type_id_t type, const char *key,
                         const crdt_entry_view_t *e)
{
    (void)type;
    (void)key;
    s_dots_t *d = arg;
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 64;
        crdt_dot_t *grown = realloc(d->dots, cap * sizeof *grown);
        if (!grown)
            return ENGRAM_ENOMEM;
        d->dots = grown;
        d->cap = cap;
    }
    d->dots[d->n++] = (crdt_dot_t){e->node, e->n};
    return 0;
}

static bool s_dots_has(const s_dots_t *d, crdt_dot_t dot)
{
    return d->n && bsearch(&dot, d->dots, d->n, sizeof dot, s_cmp_dot);
}

/*  The delta's removal records, sorted by op, for lookup by dot. */
typedef struct {
    crdt_dot_t op; /* first: compared by s_cmp_dot */
    const crdt_dot_t *removed;
    size_t n;
} s_drec_t;

typedef struct {
    s_drec_t *recs;
    size_t n;
    size_t cap;
} s_drecs_t;

static int s_collect_record(void *arg, crdt_dot_t op, const crdt_dot_t *removed, size_t n)
{
    s_drecs_t *d = arg;
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 64;
        s_drec_t *grown = realloc(d->recs, cap * sizeof *grown);
        if (!grown)
            return ENGRAM_ENOMEM;
        d->recs = grown;
        d->cap = cap;
    }
    d->recs[d->n++] = (s_drec_t){op, removed, n};
    return 0;
}

typedef struct {
    node_store_t *self;
    rocksdb_writebatch_t *batch;
    const char *sid;
    const crdt_ctx_t *old;     /* the context before the delta */
    const crdt_scope_t *delta;
    s_dots_t dots;             /* the dots of the delta's entries */
    s_drecs_t recs;            /* the delta's removal records */
    bool whole;                /* the delta is a whole state (it carries a prune cut) */
    s_key_t key;
    int rc;
} s_remote_t;

static void s_put_op(s_remote_t *r, crdt_dot_t dot, const char *key, crdt_type_id_t type,
                     const char *elem, bool added)
{
    s_drec_t probe = {dot, NULL, 0};
    const s_drec_t *found =
        r->recs.n ? bsearch(&probe, r->recs.recs, r->recs.n, sizeof probe, s_cmp_dot) : NULL;
    Engram__StoredOp op = ENGRAM__STORED_OP__INIT;
    op.key = (char *)key;
    op.type = type;
    op.elem = (char *)elem;
    op.added = added;
    op.n_removed = found ? 2 * found->n : 0;
    op.removed = found ? (uint64_t *)found->removed : NULL; /* crdt_dot_t is (node, n) */
    size_t size = engram__stored_op__get_packed_size(&op);
    uint8_t *buf = malloc(size ? size : 1);
    s_op_key(&r->key, r->sid, dot);
    if (!buf || r->key.failed) {
        r->rc = ENGRAM_ENOMEM;
    } else {
        engram__stored_op__pack(&op, buf);
        rocksdb_writebatch_put_cf(r->batch, r->self->cf[CF_OPS], (char *)r->key.data, r->key.len,
                                  (char *)buf, size);
    }
    free(buf);
}

/*  An entry of the delta this node has not seen: store it and its op record. */
static int s_add_remote_entry(void *arg, crdt_type_id_t type, const char *key,
                              const crdt_entry_view_t *e)
{
    s_remote_t *r = arg;
    crdt_dot_t dot = {e->node, e->n};
    if (crdt_ctx_contains(r->old, dot))
        return 0; /* held already, or removed here */
    Engram__StoredEntry stored = ENGRAM__STORED_ENTRY__INIT;
    stored.type = type;
    stored.hlc = e->hlc;
    stored.data = (ProtobufCBinaryData){e->len, (uint8_t *)e->data};
    size_t size = engram__stored_entry__get_packed_size(&stored);
    uint8_t *buf = malloc(size ? size : 1);
    r->key.len = 0;
    s_entry_key(&r->key, r->sid, key, e->elem, e->node, e->n);
    if (!buf || r->key.failed) {
        free(buf);
        return r->rc = ENGRAM_ENOMEM;
    }
    engram__stored_entry__pack(&stored, buf);
    rocksdb_writebatch_put_cf(r->batch, r->self->cf[CF_ENTRIES], (char *)r->key.data,
                              r->key.len, (char *)buf, size);
    free(buf);
    uint64_t expires = s_expires_at(&stored);
    if (expires) {
        s_key_t exp = {0};
        s_key_u64(&exp, expires);
        s_entry_key(&exp, r->sid, key, e->elem, e->node, e->n);
        if (!exp.failed)
            rocksdb_writebatch_put_cf(r->batch, r->self->cf[CF_EXPIRY], (char *)exp.data,
                                      exp.len, "", 0);
        free(exp.data);
    }
    s_put_op(r, dot, key, type, e->elem, true);
    return r->rc;
}

/*  A record of the delta: the op's removals, found through the ops dot index (a whole state
 *  removes by its context instead, s_remove_unseen); and the op's own record when it brought
 *  no entry (a remove or a forget). */
static int s_apply_remote_record(void *arg, crdt_dot_t op, const crdt_dot_t *removed, size_t n)
{
    s_remote_t *r = arg;
    for (size_t i = 0; i < n && r->rc == 0 && !r->whole; i++) {
        crdt_dot_t dot = removed[i];
        if (s_dots_has(&r->dots, dot))
            continue;
        s_op_key(&r->key, r->sid, dot);
        char *err = NULL;
        size_t vlen;
        char *v = rocksdb_get_cf(r->self->db, r->self->read_options, r->self->cf[CF_OPS],
                                 (char *)r->key.data, r->key.len, &vlen, &err);
        if (err) {
            r->rc = s_rocks_error(&err);
            break;
        }
        Engram__StoredOp *stored = v ? s_unpack_op(r->sid, dot, v, vlen) : NULL;
        rocksdb_free(v);
        if (stored && stored->added) {
            r->key.len = 0;
            s_entry_key(&r->key, r->sid, stored->key, stored->elem, dot.node, dot.n);
            if (!r->key.failed)
                rocksdb_writebatch_delete_cf(r->batch, r->self->cf[CF_ENTRIES],
                                             (char *)r->key.data, r->key.len);
        }
        if (stored)
            engram__stored_op__free_unpacked(stored, NULL);
    }
    if (r->rc == 0 && !crdt_ctx_contains(r->old, op) && !s_dots_has(&r->dots, op))
        s_put_op(r, op, "", CRDT_REG, "", false);
    return r->rc;
}

/*  The join of a whole state: every local entry whose dot the delta's context holds but whose
 *  entry the delta lacks was removed elsewhere. One pass over the scope's live entries. */
static int s_remove_unseen(s_remote_t *r)
{
    s_key_t prefix = {0};
    s_key_str0(&prefix, r->sid);
    if (prefix.failed)
        return ENGRAM_ENOMEM;
    const crdt_ctx_t *theirs = crdt_scope_ctx(r->delta);
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(r->self->db, r->self->read_options, r->self->cf[CF_ENTRIES]);
    for (rocksdb_iter_seek(it, (const char *)prefix.data, prefix.len); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < prefix.len || memcmp(k, prefix.data, prefix.len) != 0)
            break;
        const char *key, *elem;
        crdt_dot_t dot;
        if (s_parse_entry_key(k, klen, prefix.len, &key, &elem, &dot) &&
            crdt_ctx_contains(theirs, dot) && !s_dots_has(&r->dots, dot))
            rocksdb_writebatch_delete_cf(r->batch, r->self->cf[CF_ENTRIES], k, klen);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    free(prefix.data);
    return s_rocks_error(&err);
}

/*  Puts "<prefix><sid>" -> the encoded ctx into the batch. */
static int s_put_meta_ctx(node_store_t *self, rocksdb_writebatch_t *batch, const char *prefix,
                          const char *sid, const crdt_ctx_t *ctx)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = crdt_ctx_encode(ctx, &buf, &len);
    if (rc)
        return rc;
    char name[8 + ENGRAM_MAX_KEY_BYTES];
    snprintf(name, sizeof name, "%s%s", prefix, sid);
    rocksdb_writebatch_put_cf(batch, self->cf[CF_META], name, strlen(name), (char *)buf, len);
    free(buf);
    return 0;
}

static int s_g_apply(void *state, const char *scope, const crdt_scope_t *delta)
{
    node_store_t *self = state;
    if (!s_shared(scope))
        return ENGRAM_ESCOPE;
    if (self->failed)
        return self->failed;
    if (s_volume_full(self))
        return ENGRAM_ENOSPC;
    const crdt_ctx_t *theirs_pruned = crdt_scope_pruned(delta);
    const crdt_ctx_t *our_pruned = node_store_pruned(self, scope);
    crdt_ctx_t *empty = crdt_ctx_new();
    const crdt_ctx_t *old = node_store_ctx(self, scope);
    crdt_ctx_t *ctx = old ? crdt_ctx_dup(old) : crdt_ctx_new();
    crdt_ctx_t *pruned = NULL; /* the joined prune cut, if it grows */
    s_remote_t r = {self, rocksdb_writebatch_create(), scope, old ? old : empty, delta,
                    {0}, {0}, !crdt_ctx_is_empty(theirs_pruned), {0}, 0};
    if (r.whole && !(our_pruned && crdt_ctx_covers(our_pruned, theirs_pruned))) {
        pruned = our_pruned ? crdt_ctx_dup(our_pruned) : crdt_ctx_new();
        if (!pruned || crdt_ctx_join(pruned, theirs_pruned) != 0)
            r.rc = ENGRAM_ENOMEM;
    }
    if (!empty || !ctx || crdt_ctx_join(ctx, crdt_scope_ctx(delta)) != 0)
        r.rc = ENGRAM_ENOMEM;
    if (r.rc == 0)
        r.rc = crdt_scope_foreach_entry(delta, s_collect_dot, &r.dots);
    if (r.rc == 0)
        r.rc = crdt_scope_foreach_record(delta, s_collect_record, &r.recs);
    if (r.rc == 0) {
        if (r.dots.n)
            qsort(r.dots.dots, r.dots.n, sizeof *r.dots.dots, s_cmp_dot);
        if (r.recs.n)
            qsort(r.recs.recs, r.recs.n, sizeof *r.recs.recs, s_cmp_dot);
        crdt_scope_foreach_record(delta, s_apply_remote_record, &r);
    }
    if (r.rc == 0 && r.whole)
        r.rc = s_remove_unseen(&r);
    if (r.rc == 0)
        crdt_scope_foreach_entry(delta, s_add_remote_entry, &r);
    int rc = r.rc ? r.rc : s_put_meta_ctx(self, r.batch, "ctx/", scope, ctx);
    if (rc == 0 && pruned)
        rc = s_put_meta_ctx(self, r.batch, "prune/", scope, pruned);
    if (rc == 0)
        rc = s_write_batch(self, r.batch);
    free(r.key.data);
    free(r.dots.dots);
    free(r.recs.recs);
    rocksdb_writebatch_destroy(r.batch);
    crdt_ctx_destroy(&empty);
    if (rc) {
        crdt_ctx_destroy(&ctx);
        crdt_ctx_destroy(&pruned);
        return rc;
    }
    s_put_ctx(self->contexts, scope, &ctx);
    if (pruned)
        s_put_ctx(self->prunes, scope, &pruned);
    return 0;
}

const gossip_store_t node_store_gossip = {s_g_each_scope, s_g_ctx, s_g_delta_since, s_g_apply};

/*  --- garbage ----------------------------------------------------------------------- */

const crdt_ctx_t *node_store_pruned(const node_store_t *self, const char *sid)
{
    return zhash_lookup(self->prunes, sid);
}

typedef struct {
    node_store_t *self;
    const char *sid;
    rocksdb_writebatch_t *batch;
    s_key_t key;
    uint64_t dropped;
} s_gc_t;

/*  An op at or below the cut: dropped if its entry is gone, else kept without its removals
 *  (no replica at or above the cut needs them). */
static int s_gc_op(void *arg, crdt_dot_t dot, const Engram__StoredOp *op)
{
    s_gc_t *g = arg;
    Engram__StoredEntry *entry;
    int rc = s_get_added(g->self, g->sid, dot, op, &g->key, &entry);
    if (rc)
        return rc;
    bool alive = entry != NULL;
    if (entry)
        engram__stored_entry__free_unpacked(entry, NULL);
    if (alive && op->n_removed == 0)
        return 0;
    s_op_key(&g->key, g->sid, dot);
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

int node_store_gc(node_store_t *self, const char *sid, const crdt_ctx_t *stable_cut,
                  uint64_t *dropped)
{
    assert(self && sid && stable_cut && dropped);
    *dropped = 0;
    if (!s_shared(sid))
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
    s_gc_t g = {self, sid, rocksdb_writebatch_create(), {0}, 0};
    int rc = s_scan_ops_in(self, sid, cut, s_gc_op, &g);
    if (rc == 0)
        rc = s_put_meta_ctx(self, g.batch, "prune/", sid, cut);
    if (rc == 0)
        rc = s_write_batch(self, g.batch);
    rocksdb_writebatch_destroy(g.batch);
    free(g.key.data);
    if (rc) {
        crdt_ctx_destroy(&cut);
        return rc;
    }
    s_put_ctx(self->prunes, sid, &cut);
    *dropped = g.dropped;
    return 0;
}

/*  How many keys of cf start with sid \0. */
static int s_count_prefix(node_store_t *self, int cf, const char *sid, uint64_t *count)
{
    *count = 0;
    size_t plen = strlen(sid) + 1;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db, self->read_options,
                                                        self->cf[cf]);
    for (rocksdb_iter_seek(it, sid, plen); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, sid, plen) != 0)
            break;
        (*count)++;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    return s_rocks_error(&err);
}

int node_store_garbage(node_store_t *self, const char *sid, uint64_t *pending)
{
    assert(self && sid && pending);
    *pending = 0;
    if (!s_shared(sid))
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
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(self->db, &err);
    if (!err)
        rocksdb_checkpoint_create(cp, dir, 0, &err);
    if (cp)
        rocksdb_checkpoint_object_destroy(cp);
    int rc = s_rocks_error(&err);
    if (rc)
        return rc;
    /* Mark the copy, so that a store opened from it takes a new replica id (its counters
     * will be behind once this store issues more dots). */
    const rocksdb_options_t *cf_options[CF_COUNT];
    for (int i = 0; i < CF_COUNT; i++)
        cf_options[i] = self->options;
    rocksdb_column_family_handle_t *cf[CF_COUNT] = {0};
    rocksdb_t *db = rocksdb_open_column_families(self->options, dir, CF_COUNT, s_cf_names,
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
    return s_rocks_error(&err);
}
