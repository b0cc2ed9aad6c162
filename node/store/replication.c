/*  node/store replication: the store as the gossip engine sees it (catch-up deltas from the
 *  ops index, remote deltas applied with the removals they make). */
#include <assert.h>
#include <czmq.h>
#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "crdt/array.h"
#include "crdt/codec.h"
#include "crdt/value.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/common/names.h"
#include "node/store/internal.h"
#include "node/trust/identity.h"
#include "proto/store.pb-c.h"

/*  --- the store as the gossip engine sees it ---------------------------------------------- */

bool store__shared(const char *scope)
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
        if (store__shared(sid))
            fn(arg, sid);
    zlist_destroy(&names);
}

static const crdt_ctx_t *s_g_ctx(void *state, const char *scope)
{
    return store__shared(scope) ? node_store_ctx(state, scope) : NULL;
}

/*  sid \0 node n: the ops dot index. */
void store__op_key(store_key_t *k, const char *sid, crdt_dot_t dot)
{
    k->len = 0;
    store__key_str0(k, sid);
    store__key_u64(k, dot.node);
    store__key_u64(k, dot.n);
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

/*  Calls fn for every op record of sid whose dot is in ctx, by range seeks on the ops index:
 *  the cost tracks the dots of ctx that have records, not the scope. With the scope's own
 *  context, every op record of the scope. */
int store__scan_ops_in(node_store_t *self, const char *sid, const crdt_ctx_t *ctx, store_op_fn fn,
                       void *arg)
{
    store_key_t seek = {0};
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
            store__op_key(&seek, sid, (crdt_dot_t){node, range.lo});
            if (seek.failed) {
                rc = ENGRAM_ENOMEM;
                break;
            }
            for (rocksdb_iter_seek(it, (const char *)seek.data, seek.len);
                 rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
                size_t klen, vlen;
                const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
                if (klen != plen + 16 || memcmp(k, seek.data, plen) != 0 ||
                    store__get_be64(k + plen) != node)
                    break;
                crdt_dot_t dot = {node, store__get_be64(k + plen + 8)};
                if (dot.n > range.hi)
                    break;
                const char *v = rocksdb_iter_value(it, &vlen);
                Engram__StoredOp *op = s_unpack_op(sid, dot, v, vlen);
                if (op) {
                    rc = fn(arg, dot, op);
                    engram__stored_op__free_unpacked(op, NULL);
                }
            }
            if (rc == 0) /* a read error ends a range early: the next seek would hide it */
                rc = store__iter_error(it);
        }
    }
    return store__iter_end(it, &seek, rc);
}

/*  The live entry an op added, if it is still there: *entry (caller frees) or NULL. */
int store__get_added(node_store_t *self, const char *sid, crdt_dot_t dot,
                     const Engram__StoredOp *op, store_key_t *key, Engram__StoredEntry **entry)
{
    *entry = NULL;
    if (!op->added)
        return 0;
    key->len = 0;
    store__entry_key(key, sid, op->key, op->elem, dot.node, dot.n);
    if (key->failed)
        return ENGRAM_ENOMEM;
    char *err = NULL;
    size_t vlen;
    char *v = rocksdb_get_cf(self->db, self->read_options, self->cf[CF_ENTRIES],
                             (const char *)key->data, key->len, &vlen, &err);
    if (err)
        return store__rocks_error(&err);
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
    if (!store__shared(sid))
        return ENGRAM_ESCOPE;
    store_key_t k = {0};
    store__op_key(&k, sid, dot);
    if (k.failed)
        return ENGRAM_ENOMEM;
    char *err = NULL;
    size_t vlen;
    char *v = rocksdb_get_cf(self->db, self->read_options, self->cf[CF_OPS], (const char *)k.data,
                             k.len, &vlen, &err);
    int rc = err ? store__rocks_error(&err) : v ? 0 : ENGRAM_ENOTFOUND;
    Engram__StoredOp *op = rc == 0 ? s_unpack_op(sid, dot, v, vlen) : NULL;
    rocksdb_free(v);
    Engram__StoredEntry *entry = NULL;
    if (rc == 0 && !op)
        rc = ENGRAM_ENOTFOUND;
    if (rc == 0)
        rc = store__get_added(self, sid, dot, op, &k, &entry);
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

/*  The op's history step (its record names the step's stamp) as its note in delta. */
static int s_note_step(node_store_t *self, const char *sid, crdt_dot_t dot,
                       const Engram__StoredOp *op, store_key_t *key, crdt_scope_t *delta)
{
    if (!op->hlc || !op->key[0])
        return 0;
    store__history_key(key, sid, op->key, op->hlc, dot);
    if (key->failed)
        return ENGRAM_ENOMEM;
    char *err = NULL;
    size_t vlen;
    char *v = rocksdb_get_cf(self->db, self->read_options, self->cf[CF_HISTORY],
                             (const char *)key->data, key->len, &vlen, &err);
    int rc = err ? store__rocks_error(&err) : 0;
    if (rc == 0 && v && vlen)
        rc = crdt_scope_note(delta, dot, v, vlen);
    rocksdb_free(v);
    return rc == ENGRAM_EINVAL ? 0 : rc; /* a step too big to carry stays here */
}

typedef struct {
    node_store_t *self;
    const char *sid;
    crdt_scope_t *view;
    store_key_t key;
} s_restore_t;

static int s_restore_record(void *arg, crdt_dot_t dot, const Engram__StoredOp *op)
{
    s_restore_t *r = arg;
    if (op->n_removed >= 2)
        crdt_scope_restore_record(r->view, dot, (const crdt_dot_t *)op->removed, op->n_removed / 2);
    return s_note_step(r->self, r->sid, dot, op, &r->key, r->view);
}

/*  The whole scope as a kernel view: entries, removal records and the steps of the ops whose
 *  records are kept, context and prune cut. */
static int s_full_view(node_store_t *self, const char *sid, crdt_scope_t **view)
{
    store_view_t v = {crdt_scope_new(0), 0};
    if (!v.view)
        return ENGRAM_ENOMEM;
    s_restore_t restore = {self, sid, v.view, {0}};
    int rc = crdt_scope_restore_ctx(v.view, node_store_ctx(self, sid));
    if (rc == 0)
        rc = store__scan_entries(self, sid, NULL, NULL, false, store__restore_entry, &v);
    if (rc == 0)
        rc = store__scan_ops_in(self, sid, node_store_ctx(self, sid), s_restore_record, &restore);
    free(restore.key.data);
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
    store_key_t key;
} s_ship_t;

/*  One op the asker lacks: its entry if still alive, its removal record, its step. */
static int s_ship_op(void *arg, crdt_dot_t dot, const Engram__StoredOp *op)
{
    s_ship_t *s = arg;
    Engram__StoredEntry *entry;
    int rc = s_note_step(s->self, s->sid, dot, op, &s->key, s->delta);
    if (rc)
        return rc;
    rc = store__get_added(s->self, s->sid, dot, op, &s->key, &entry);
    if (rc == 0 && entry) {
        crdt_entry_view_t view = {op->elem,   dot.node,         dot.n,
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
    if (crdt_array_grow((void **)&s->recs, &s->cap, s->nrecs + 1, sizeof *s->recs))
        return ENGRAM_ENOMEM;
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
        rc = store__scan_ops_in(self, sid, missing, s_ship_op, &s);
    if (rc == 0) /* removed dots the asker may still hold live */
        rc = crdt_scope_restore_ctx(s.delta, s.removed);
    for (size_t i = 0; i < s.nrecs; i++) {
        if (rc == 0)
            rc = crdt_scope_restore_record(s.delta, s.recs[i].op, s.recs[i].removed, s.recs[i].n);
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
    if (!store__shared(scope) || !node_store_ctx(self, scope))
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
    if (crdt_array_grow((void **)&d->dots, &d->cap, d->n + 1, sizeof *d->dots))
        return ENGRAM_ENOMEM;
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
    if (crdt_array_grow((void **)&d->recs, &d->cap, d->n + 1, sizeof *d->recs))
        return ENGRAM_ENOMEM;
    d->recs[d->n++] = (s_drec_t){op, removed, n};
    return 0;
}

/*  The delta's notes (history steps) of ops this node did not hold, checked, sorted by dot. */
typedef struct {
    crdt_dot_t op;               /* first: compared by s_cmp_dot */
    Engram__StoredHistory *step; /* owned */
    const uint8_t *data;         /* the note as it came, borrowed from the delta */
    size_t len;
    bool stored; /* a lean note's step, its value put back, is in the batch already */
} s_dnote_t;

typedef struct {
    s_dnote_t *notes;
    size_t n;
    size_t cap;
    const crdt_ctx_t *old;
    const crdt_scope_t *delta;
    uint64_t max_hlc;
} s_dnotes_t;

/*  Whether a name from a peer's step is within bounds. */
static bool s_step_name_ok(const char *name, bool may_be_empty)
{
    size_t len = strlen(name);
    return len <= ENGRAM_MAX_KEY_BYTES && (len || may_be_empty);
}

/*  A lean step that leaves its key, type and stamp to its op's entry (key_in_entry) gets them
 *  back from that entry in the delta. 0; ENGRAM_EDECODE if it carries any of them, does not
 *  leave its value to the entry too, or the delta lacks the entry; or ENGRAM_ENOMEM. */
static int s_key_from_entry(Engram__StoredHistory *step, const crdt_scope_t *delta, crdt_dot_t op)
{
    crdt_dot_entry_t e;
    if (!step->value_in_entry || step->key[0] || step->type || step->hlc ||
        !crdt_scope_dot_entry(delta, op, &e))
        return ENGRAM_EDECODE;
    char *key = strdup(e.key);
    if (!key)
        return ENGRAM_ENOMEM;
    if (step->key != protobuf_c_empty_string)
        free(step->key); /* an empty key sent as such: unpacked with the default allocator */
    step->key = key;     /* freed with the step */
    step->type = e.type;
    step->hlc = e.entry.hlc;
    return 0;
}

/*  A step from a peer is checked before anything is written: it decodes; its key, type and
 *  stamp are put back from its op's entry if it left them there; its names are within
 *  bounds; it names an operation, a key, a type and a stamp; its removals are dots, at most a
 *  step's worth. What it says of the op's entry and removals is checked against them where
 *  the delta carries them (s_add_remote_entry, s_put_steps). */
static int s_collect_note(void *arg, crdt_dot_t op, const uint8_t *data, size_t len)
{
    s_dnotes_t *d = arg;
    if (crdt_ctx_contains(d->old, op))
        return 0; /* an op held already: its step is here, or never will be */
    Engram__StoredHistory *step = engram__stored_history__unpack(NULL, len, data);
    int rc = step && step->key_in_entry ? s_key_from_entry(step, d->delta, op) : 0;
    if (rc == ENGRAM_ENOMEM) {
        engram__stored_history__free_unpacked(step, NULL);
        return rc;
    }
    bool ok = step && rc == 0 && s_step_name_ok(step->op, false) &&
              s_step_name_ok(step->key, false) && s_step_name_ok(step->agent, true) &&
              s_step_name_ok(step->user, true) && s_step_name_ok(step->elem, true) &&
              step->type <= CRDT_TYPE_MAX && step->hlc && step->n_removed % 2 == 0 &&
              step->n_removed <= 2 * STORE_STEP_MAX_REMOVED &&
              !(step->removed_all && step->n_removed) && !(step->value_in_entry && step->value.len);
    for (size_t i = 0; ok && i < step->n_removed; i += 2)
        ok = step->removed[i] && step->removed[i + 1];
    if (!ok) {
        if (step)
            engram__stored_history__free_unpacked(step, NULL);
        return ENGRAM_EDECODE;
    }
    if (crdt_array_grow((void **)&d->notes, &d->cap, d->n + 1, sizeof *d->notes)) {
        engram__stored_history__free_unpacked(step, NULL);
        return ENGRAM_ENOMEM;
    }
    d->notes[d->n++] = (s_dnote_t){op, step, data, len, false};
    if (step->hlc > d->max_hlc)
        d->max_hlc = step->hlc;
    return 0;
}

static s_dnote_t *s_note_of(const s_dnotes_t *d, crdt_dot_t dot)
{
    s_dnote_t probe = {dot, NULL, NULL, 0, false};
    return d->n ? bsearch(&probe, d->notes, d->n, sizeof probe, s_cmp_dot) : NULL;
}

static void s_dnotes_free(s_dnotes_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        engram__stored_history__free_unpacked(d->notes[i].step, NULL);
    free(d->notes);
}

typedef struct {
    node_store_t *self;
    rocksdb_writebatch_t *batch;
    const char *sid;
    const crdt_ctx_t *old; /* the context before the delta */
    const crdt_scope_t *delta;
    s_dots_t dots;           /* the dots of the delta's entries */
    s_drecs_t recs;          /* the delta's removal records */
    const s_dnotes_t *notes; /* the steps of the ops this node did not hold */
    bool whole;              /* the delta is a whole state (it carries a prune cut) */
    store_key_t key;
    int rc;
    store_index_batch_t *ib; /* the search index's changes */
} s_remote_t;

static void s_put_op(s_remote_t *r, crdt_dot_t dot, const char *key, crdt_type_id_t type,
                     const char *elem, bool added)
{
    s_drec_t probe = {dot, NULL, 0};
    const s_drec_t *found =
        r->recs.n ? bsearch(&probe, r->recs.recs, r->recs.n, sizeof probe, s_cmp_dot) : NULL;
    const s_dnote_t *note = s_note_of(r->notes, dot);
    Engram__StoredOp op = ENGRAM__STORED_OP__INIT;
    op.key = (char *)(key[0] || !note ? key : note->step->key);
    op.type = type;
    op.elem = (char *)elem;
    op.added = added;
    op.hlc = note ? note->step->hlc : 0;
    op.n_removed = found ? 2 * found->n : 0;
    op.removed = found ? (uint64_t *)found->removed : NULL; /* crdt_dot_t is (node, n) */
    size_t size = engram__stored_op__get_packed_size(&op);
    uint8_t *buf = malloc(size ? size : 1);
    store__op_key(&r->key, r->sid, dot);
    if (!buf || r->key.failed) {
        r->rc = ENGRAM_ENOMEM;
    } else {
        engram__stored_op__pack(&op, buf);
        rocksdb_writebatch_put_cf(r->batch, r->self->cf[CF_OPS], (char *)r->key.data, r->key.len,
                                  (char *)buf, size);
    }
    free(buf);
}

/*  A lean note's step (value_in_entry), its value put back from its op's entry e, into the
 *  history family: stored whole, byte for byte as its origin stored it. */
static int s_put_step_whole(s_remote_t *r, s_dnote_t *note, const crdt_entry_view_t *e)
{
    Engram__StoredHistory *step = note->step;
    bool key_in_entry = step->key_in_entry; /* its key, type and stamp are back already */
    step->value = (ProtobufCBinaryData){e->len, (uint8_t *)e->data};
    step->value_in_entry = false;
    step->key_in_entry = false;
    size_t len = engram__stored_history__get_packed_size(step);
    uint8_t *whole = malloc(len ? len : 1);
    if (whole)
        engram__stored_history__pack(step, whole);
    step->value = (ProtobufCBinaryData){0, NULL}; /* the delta's bytes, not the step's */
    step->value_in_entry = true;
    step->key_in_entry = key_in_entry;
    store__history_key(&r->key, r->sid, step->key, step->hlc, note->op);
    if (!whole || r->key.failed) {
        free(whole);
        return r->rc = ENGRAM_ENOMEM;
    }
    rocksdb_writebatch_put_cf(r->batch, r->self->cf[CF_HISTORY], (char *)r->key.data, r->key.len,
                              (char *)whole, len);
    free(whole);
    note->stored = true;
    return 0;
}

/*  An entry of the delta this node has not seen: store it and its op record. */
static int s_add_remote_entry(void *arg, crdt_type_id_t type, const char *key,
                              const crdt_entry_view_t *e)
{
    s_remote_t *r = arg;
    crdt_dot_t dot = {e->node, e->n};
    if (crdt_ctx_contains(r->old, dot))
        return 0; /* held already, or removed here */
    s_dnote_t *note = s_note_of(r->notes, dot);
    Engram__StoredHistory *step = note ? note->step : NULL;
    if (step &&
        (strcmp(step->key, key) != 0 || (e->hlc && step->hlc != e->hlc) || step->type != type ||
         (step->value.len &&
          (step->value.len != e->len || memcmp(step->value.data, e->data, e->len) != 0))))
        return r->rc = ENGRAM_EDECODE; /* a step that is not its op's */
    if (step && step->value_in_entry && s_put_step_whole(r, note, e) != 0)
        return r->rc;
    Engram__StoredEntry stored = ENGRAM__STORED_ENTRY__INIT;
    stored.type = type;
    stored.hlc = e->hlc;
    stored.data = (ProtobufCBinaryData){e->len, (uint8_t *)e->data};
    size_t size = engram__stored_entry__get_packed_size(&stored);
    uint8_t *buf = malloc(size ? size : 1);
    r->key.len = 0;
    store__entry_key(&r->key, r->sid, key, e->elem, e->node, e->n);
    if (!buf || r->key.failed) {
        free(buf);
        return r->rc = ENGRAM_ENOMEM;
    }
    engram__stored_entry__pack(&stored, buf);
    rocksdb_writebatch_put_cf(r->batch, r->self->cf[CF_ENTRIES], (char *)r->key.data, r->key.len,
                              (char *)buf, size);
    free(buf);
    uint64_t expires = store__expires_at(&stored);
    if (expires) {
        store_key_t exp = {0};
        store__key_u64(&exp, expires);
        store__entry_key(&exp, r->sid, key, e->elem, e->node, e->n);
        if (!exp.failed)
            rocksdb_writebatch_put_cf(r->batch, r->self->cf[CF_EXPIRY], (char *)exp.data, exp.len,
                                      "", 0);
        free(exp.data);
    }
    s_put_op(r, dot, key, type, e->elem, true);
    if (r->rc == 0)
        r->rc = store__index_add(r->self, r->ib, r->batch, r->sid, key, e->elem, dot, type, e->data,
                                 e->len);
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
        store__op_key(&r->key, r->sid, dot);
        char *err = NULL;
        size_t vlen;
        char *v = rocksdb_get_cf(r->self->db, r->self->read_options, r->self->cf[CF_OPS],
                                 (char *)r->key.data, r->key.len, &vlen, &err);
        if (err) {
            r->rc = store__rocks_error(&err);
            break;
        }
        Engram__StoredOp *stored = v ? s_unpack_op(r->sid, dot, v, vlen) : NULL;
        rocksdb_free(v);
        if (stored && stored->added) {
            r->key.len = 0;
            store__entry_key(&r->key, r->sid, stored->key, stored->elem, dot.node, dot.n);
            if (!r->key.failed)
                rocksdb_writebatch_delete_cf(r->batch, r->self->cf[CF_ENTRIES], (char *)r->key.data,
                                             r->key.len);
            r->rc = store__entry_removed(r->self, r->ib, r->batch, r->sid, stored->key,
                                         stored->elem, dot);
        }
        if (stored)
            engram__stored_op__free_unpacked(stored, NULL);
    }
    if (r->rc == 0 && !crdt_ctx_contains(r->old, op) && !s_dots_has(&r->dots, op))
        s_put_op(r, op, "", CRDT_REG, "", false);
    return r->rc;
}

/*  The steps of the ops this node did not hold, into the history family; an op that brought
 *  neither an entry nor a removal record (its entry is gone since) gets its op record here,
 *  so that this node can carry its step on. */
static int s_put_steps(s_remote_t *r)
{
    for (size_t i = 0; i < r->notes->n && r->rc == 0; i++) {
        const s_dnote_t *note = &r->notes->notes[i];
        store__history_key(&r->key, r->sid, note->step->key, note->step->hlc, note->op);
        if (r->key.failed)
            return r->rc = ENGRAM_ENOMEM;
        if (note->step->value_in_entry && !note->stored)
            return r->rc = ENGRAM_EDECODE; /* it leaves its value to an entry not carried */
        if (!note->stored)
            rocksdb_writebatch_put_cf(r->batch, r->self->cf[CF_HISTORY], (char *)r->key.data,
                                      r->key.len, (const char *)note->data, note->len);
        s_drec_t probe = {note->op, NULL, 0};
        const s_drec_t *rec =
            r->recs.n ? bsearch(&probe, r->recs.recs, r->recs.n, sizeof probe, s_cmp_dot) : NULL;
        const Engram__StoredHistory *step = note->step;
        if (rec && (step->removed_all ? rec->n <= STORE_STEP_MAX_REMOVED
                                      : step->n_removed != 2 * rec->n ||
                                            memcmp(step->removed, rec->removed,
                                                   rec->n * sizeof *rec->removed) != 0))
            return r->rc = ENGRAM_EDECODE; /* the step's removals are not its op's */
        if (!rec && !s_dots_has(&r->dots, note->op))
            s_put_op(r, note->op, note->step->key, (crdt_type_id_t)note->step->type,
                     note->step->elem, false);
    }
    return r->rc;
}

/*  The join of a whole state: every local entry whose dot the delta's context holds but whose
 *  entry the delta lacks was removed elsewhere. One pass over the scope's live entries. */
static int s_remove_unseen(s_remote_t *r)
{
    store_key_t prefix = {0};
    store__key_str0(&prefix, r->sid);
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
        if (store__parse_entry_key(k, klen, prefix.len, &key, &elem, &dot) &&
            crdt_ctx_contains(theirs, dot) && !s_dots_has(&r->dots, dot)) {
            rocksdb_writebatch_delete_cf(r->batch, r->self->cf[CF_ENTRIES], k, klen);
            int rc = store__entry_removed(r->self, r->ib, r->batch, r->sid, key, elem, dot);
            if (rc)
                return store__iter_end(it, &prefix, rc);
        }
    }
    return store__iter_end(it, &prefix, 0);
}

/*  Puts "<prefix><sid>" -> the encoded ctx into the batch. */
int store__put_meta_ctx(node_store_t *self, rocksdb_writebatch_t *batch, const char *prefix,
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

/*  Records the largest stamp of the delta's entries. */
static int s_max_stamp(void *arg, crdt_type_id_t type, const char *key, const crdt_entry_view_t *e)
{
    (void)type, (void)key;
    uint64_t *max = arg;
    if (e->hlc > *max)
        *max = e->hlc;
    return 0;
}

uint64_t store__hlc_lease(node_store_t *self, rocksdb_writebatch_t *batch, uint64_t stamp)
{
    if (stamp <= self->hlc_ceiling)
        return self->hlc_ceiling;
    uint64_t lease = (uint64_t)ENGRAM_HLC_LEASE_MS << ENGRAM_HLC_LOGICAL_BITS;
    uint64_t ceiling = stamp + (UINT64_MAX - stamp < 2 * lease ? 0 : lease); /* never wraps */
    char raw[8];
    store__le64(raw, ceiling);
    rocksdb_writebatch_put_cf(batch, self->cf[CF_META], "hlc", 3, raw, 8);
    return ceiling;
}

static int s_g_apply(void *state, const char *scope, const crdt_scope_t *delta)
{
    node_store_t *self = state;
    if (!store__shared(scope))
        return ENGRAM_ESCOPE;
    if (self->failed)
        return self->failed;
    if (store__volume_full(self))
        return ENGRAM_ENOSPC;
    const crdt_ctx_t *old = node_store_ctx(self, scope);
    crdt_ctx_t *empty = crdt_ctx_new();
    s_dnotes_t notes = {NULL, 0, 0, old ? old : empty, delta, 0};
    int notes_rc = empty ? crdt_scope_foreach_note(delta, s_collect_note, &notes) : ENGRAM_ENOMEM;
    if (notes_rc) {
        s_dnotes_free(&notes);
        crdt_ctx_destroy(&empty);
        return notes_rc;
    }
    if (notes.n)
        qsort(notes.notes, notes.n, sizeof *notes.notes, s_cmp_dot);
    uint64_t stamp = notes.max_hlc;
    crdt_scope_foreach_entry(delta, s_max_stamp, &stamp);
#ifdef ENGRAM_FAULT_NO_HLC_OBSERVE /* deliberate defect for jepsen/: remote stamps unobserved */
    stamp = 0;
#endif
    if (stamp && node_store_hlc_observe(self, stamp, (uint64_t)zclock_time()) != 0) {
        s_dnotes_free(&notes);
        crdt_ctx_destroy(&empty);
        return ENGRAM_ERANGE; /* too far ahead of this node's clock: refused, counted */
    }
    const crdt_ctx_t *theirs_pruned = crdt_scope_pruned(delta);
    const crdt_ctx_t *our_pruned = node_store_pruned(self, scope);
    crdt_ctx_t *ctx = old ? crdt_ctx_dup(old) : crdt_ctx_new();
    crdt_ctx_t *pruned = NULL; /* the joined prune cut, if it grows */
    s_remote_t r = {self,
                    rocksdb_writebatch_create(),
                    scope,
                    old ? old : empty,
                    delta,
                    {0},
                    {0},
                    &notes,
                    !crdt_ctx_is_empty(theirs_pruned),
                    {0},
                    0,
                    store__index_batch_new()};
    if (!r.ib)
        r.rc = ENGRAM_ENOMEM;
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
    if (r.rc == 0)
        s_put_steps(&r);
    int rc = r.rc ? r.rc : store__index_finish(self, r.ib, r.batch);
    if (rc == 0)
        rc = store__put_meta_ctx(self, r.batch, "ctx/", scope, ctx);
    if (rc == 0 && pruned)
        rc = store__put_meta_ctx(self, r.batch, "prune/", scope, pruned);
    uint64_t ceiling = rc == 0 ? store__hlc_lease(self, r.batch, node_store_hlc_last(self)) : 0;
    if (rc == 0)
        rc = store__write_batch(self, r.batch);
    if (rc == 0)
        store__index_written(self, r.ib);
    free(r.key.data);
    free(r.dots.dots);
    free(r.recs.recs);
    s_dnotes_free(&notes);
    store__index_batch_destroy(&r.ib);
    rocksdb_writebatch_destroy(r.batch);
    crdt_ctx_destroy(&empty);
    if (rc) {
        crdt_ctx_destroy(&ctx);
        crdt_ctx_destroy(&pruned);
        return rc;
    }
    store__put_ctx(self->contexts, scope, &ctx);
    if (pruned)
        store__put_ctx(self->prunes, scope, &pruned);
    self->hlc_ceiling = ceiling;
    return 0;
}

/*  A scope name from a peer is held to the rule agents' names are (node/common/names.h). */
static bool s_g_scope_ok(void *state, const char *scope)
{
    (void)state;
    return node_scope_name_ok(scope, strlen(scope), NULL);
}

/*  The first schema minor whose stores take a lean step's key, type and stamp from its op's
 *  entry too (key_in_entry). */
#define KEY_IN_ENTRY_MINOR 4

/*  The note that carries step in a delta: step without its value, flagged value_in_entry, when
 *  `entry` (the op's entry in that same delta, NULL if none) is exactly that value; and, for a
 *  reader of KEY_IN_ENTRY_MINOR or later, without its key, type and stamp too when they are
 *  the entry's (key_in_entry). Else NULL (the step goes whole). *len is set when a note is
 *  returned; caller frees. step is left as it was. */
static uint8_t *s_note_without_value(const Engram__StoredHistory *step,
                                     const crdt_dot_entry_t *entry, uint32_t reader_minor,
                                     size_t *len)
{
    if (!entry || !step->value.len || step->value_in_entry || step->key_in_entry ||
        step->value.len != entry->entry.len ||
        memcmp(step->value.data, entry->entry.data, entry->entry.len) != 0)
        return NULL;
    Engram__StoredHistory lean = *step; /* shallow: only its own fields change */
    lean.value = (ProtobufCBinaryData){0, NULL};
    lean.value_in_entry = true;
    if (reader_minor >= KEY_IN_ENTRY_MINOR && strcmp(step->key, entry->key) == 0 &&
        step->type == entry->type && step->hlc == entry->entry.hlc) {
        lean.key = (char *)protobuf_c_empty_string;
        lean.type = 0;
        lean.hlc = 0;
        lean.key_in_entry = true;
    }
    *len = engram__stored_history__get_packed_size(&lean);
    uint8_t *note = malloc(*len ? *len : 1);
    if (note)
        engram__stored_history__pack(&lean, note);
    return note;
}

/*  A step's wire form for a reader of reader_minor: without what its op's entry in the same
 *  delta carries. */
static int s_g_note_wire(void *state, uint32_t reader_minor, crdt_dot_t op, const uint8_t *note,
                         size_t len, const crdt_dot_entry_t *entry, uint8_t **out, size_t *out_len)
{
    (void)state, (void)op;
    if (!entry || !entry->entry.len)
        return 0;
    Engram__StoredHistory *step = engram__stored_history__unpack(NULL, len, note);
    if (!step)
        return 0; /* not a step of ours: it goes as it is */
    *out = s_note_without_value(step, entry, reader_minor, out_len);
    engram__stored_history__free_unpacked(step, NULL);
    return 0;
}

const gossip_store_t node_store_gossip = {s_g_each_scope, s_g_ctx,      s_g_delta_since,
                                          s_g_apply,      s_g_scope_ok, s_g_note_wire};
