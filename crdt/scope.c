/*  crdt_scope: the flattened dot store of one scope, its join, catch-up deltas and removal
 *  records (see scope.h for the model and invariants).
 *
 *  Layout: `objects` maps (type byte, key) to an object, an object maps elem to a leaf, a leaf
 *  holds its entries sorted by dot. `dots` indexes every live entry by dot, so a join finds
 *  the entries a delta removes without scanning the scope, and so a second use of one dot is
 *  caught. Objects and leaves are heap-allocated and never move, so the index can point at
 *  them; an empty leaf or object is freed at once (the join's "prune bottom" step).
 */
#include "crdt/scope.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/array.h"
#include "crdt/hash.h"
#include "crdt/internal.h"
#include "engram/error.h"
#include "engram/limits.h"

typedef struct {
    crdt_dot_t op;
    crdt_dot_t *removed; /* owned */
    size_t n;
} s_record_t;

typedef struct {
    crdt_dot_t op;
    uint8_t *data; /* owned */
    size_t len;
} s_note_t;

struct crdt_scope {
    uint64_t replica;      /* issues dots (replica, n); 0 for deltas */
    crdt_ctx_t *ctx;       /* owned */
    crdt_ctx_t *pruned;    /* owned: records of ops in here are gone */
    crdt__hmap_t *objects; /* (type, key) -> crdt__object_t *, owned */
    crdt__hmap_t *dots;    /* dot -> crdt__leaf_t * holding it, borrowed from objects */
    crdt__hmap_t *records; /* op dot -> s_record_t *, owned */
    crdt__hmap_t *notes;   /* op dot -> s_note_t *, owned */
    uint64_t digest;       /* XOR of the live entries' hashes */
    size_t nentries;       /* live entries */
    bool broken;           /* a join ran out of memory half-way: refuse changes */
};

/*  --- keys --------------------------------------------------------------------------- */

typedef struct {
    uint64_t node;
    uint64_t n;
} s_dotkey_t;

static s_dotkey_t s_dotkey(crdt_dot_t dot)
{
    return (s_dotkey_t){dot.node, dot.n};
}

/*  (type byte, key bytes); false if the key cannot name an object. */
static bool s_objkey(crdt_type_id_t type, const char *key, uint8_t *buf, size_t *len)
{
    size_t klen = strlen(key);
    if (klen == 0 || klen > ENGRAM_MAX_KEY_BYTES)
        return false;
    buf[0] = (uint8_t)type;
    memcpy(buf + 1, key, klen);
    *len = klen + 1;
    return true;
}

bool crdt__name_ok(const char *name, size_t len, bool may_be_empty)
{
    if (len > ENGRAM_MAX_KEY_BYTES || (len && memchr(name, '\0', len)))
        return false;
    return len > 0 || may_be_empty;
}

static uint64_t s_entry_hash(crdt_type_id_t type, const char *key, const char *elem, crdt_dot_t dot,
                             uint64_t hlc, const uint8_t *data, size_t len)
{
    uint64_t fixed[4] = {type, dot.node, dot.n, hlc};
    uint64_t h = crdt_hash(fixed, sizeof fixed, 0x656e6772616dULL);
    h = crdt_hash(key, strlen(key) + 1, h);
    h = crdt_hash(elem, strlen(elem) + 1, h);
    return crdt_hash(data, len, h);
}

/*  --- construction ------------------------------------------------------------------- */

crdt_scope_t *crdt_scope_new(uint64_t replica)
{
    crdt_scope_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->replica = replica;
    self->ctx = crdt_ctx_new();
    self->pruned = crdt_ctx_new();
    self->objects = crdt__hmap_new();
    self->dots = crdt__hmap_new();
    self->records = crdt__hmap_new();
    self->notes = crdt__hmap_new();
    if (!self->ctx || !self->pruned || !self->objects || !self->dots || !self->records ||
        !self->notes)
        crdt_scope_destroy(&self);
    return self;
}

static void s_leaf_free(crdt__leaf_t *leaf)
{
    for (size_t i = 0; i < leaf->n; i++)
        free(leaf->entries[i].data);
    free(leaf->entries);
    free(leaf->elem);
    free(leaf);
}

static void s_object_free(crdt__object_t *object)
{
    if (object->leaves) {
        for (size_t i = 0; i < crdt__hmap_slots(object->leaves); i++) {
            void *leaf;
            if (crdt__hmap_at(object->leaves, i, NULL, NULL, &leaf))
                s_leaf_free(leaf);
        }
        crdt__hmap_destroy(&object->leaves);
    }
    free(object->key);
    free(object);
}

static void s_record_free(s_record_t *record)
{
    free(record->removed);
    free(record);
}

static void s_note_free(s_note_t *note)
{
    free(note->data);
    free(note);
}

void crdt_scope_destroy(crdt_scope_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    crdt_scope_t *self = *self_p;
    if (self->objects) {
        for (size_t i = 0; i < crdt__hmap_slots(self->objects); i++) {
            void *object;
            if (crdt__hmap_at(self->objects, i, NULL, NULL, &object))
                s_object_free(object);
        }
    }
    if (self->records) {
        for (size_t i = 0; i < crdt__hmap_slots(self->records); i++) {
            void *record;
            if (crdt__hmap_at(self->records, i, NULL, NULL, &record))
                s_record_free(record);
        }
    }
    if (self->notes) {
        for (size_t i = 0; i < crdt__hmap_slots(self->notes); i++) {
            void *note;
            if (crdt__hmap_at(self->notes, i, NULL, NULL, &note))
                s_note_free(note);
        }
    }
    crdt__hmap_destroy(&self->objects);
    crdt__hmap_destroy(&self->dots);
    crdt__hmap_destroy(&self->records);
    crdt__hmap_destroy(&self->notes);
    crdt_ctx_destroy(&self->ctx);
    crdt_ctx_destroy(&self->pruned);
    free(self);
    *self_p = NULL;
}

crdt_scope_t *crdt_scope_dup(const crdt_scope_t *self, uint64_t replica)
{
    crdt_scope_t *copy = crdt_scope_new(replica);
    if (copy && crdt_scope_join(copy, self) != 0)
        crdt_scope_destroy(&copy);
    return copy;
}

/*  --- accessors ---------------------------------------------------------------------- */

uint64_t crdt_scope_replica(const crdt_scope_t *self)
{
    return self->replica;
}

const crdt_ctx_t *crdt_scope_ctx(const crdt_scope_t *self)
{
    return self->ctx;
}

crdt_ctx_t *crdt__scope_ctx_mut(crdt_scope_t *self)
{
    return self->ctx;
}

const crdt_ctx_t *crdt_scope_pruned(const crdt_scope_t *self)
{
    return self->pruned;
}

crdt_ctx_t *crdt__scope_pruned_mut(crdt_scope_t *self)
{
    return self->pruned;
}

uint64_t crdt_scope_digest(const crdt_scope_t *self)
{
    return self->digest;
}

size_t crdt_scope_entries(const crdt_scope_t *self)
{
    return self->nentries;
}

size_t crdt_scope_records(const crdt_scope_t *self)
{
    return crdt__hmap_count(self->records);
}

const crdt__object_t *crdt__scope_object(const crdt_scope_t *self, crdt_type_id_t type,
                                         const char *key)
{
    uint8_t buf[ENGRAM_MAX_KEY_BYTES + 1];
    size_t len;
    if (!s_objkey(type, key, buf, &len))
        return NULL;
    return crdt__hmap_get(self->objects, buf, len);
}

const crdt__leaf_t *crdt__object_leaf(const crdt__object_t *object, const char *elem)
{
    return crdt__hmap_get(object->leaves, elem, strlen(elem));
}

unsigned crdt_scope_types_of(const crdt_scope_t *self, const char *key)
{
    unsigned types = 0;
    for (unsigned t = 1; t <= CRDT_TYPE_MAX; t++)
        if (crdt__scope_object(self, (crdt_type_id_t)t, key))
            types |= 1u << t;
    return types;
}

/*  --- entries ------------------------------------------------------------------------ */

static int s_dotcmp(crdt_dot_t a, crdt_dot_t b)
{
    if (a.node != b.node)
        return a.node < b.node ? -1 : 1;
    if (a.n != b.n)
        return a.n < b.n ? -1 : 1;
    return 0;
}

/*  Index of dot in leaf, or of where it would go; *found says which. */
static size_t s_leaf_find(const crdt__leaf_t *leaf, crdt_dot_t dot, bool *found)
{
    size_t lo = 0, hi = leaf->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s_dotcmp(leaf->entries[mid].dot, dot) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < leaf->n && s_dotcmp(leaf->entries[lo].dot, dot) == 0;
    return lo;
}

static const crdt__entry_t *s_lookup(const crdt_scope_t *self, crdt_dot_t dot,
                                     const crdt__leaf_t **leaf_p)
{
    s_dotkey_t k = s_dotkey(dot);
    const crdt__leaf_t *leaf = crdt__hmap_get(self->dots, &k, sizeof k);
    if (!leaf)
        return NULL;
    bool found;
    size_t i = s_leaf_find(leaf, dot, &found);
    if (leaf_p)
        *leaf_p = leaf;
    return found ? &leaf->entries[i] : NULL;
}

int crdt__scope_insert(crdt_scope_t *self, crdt_type_id_t type, const char *key, const char *elem,
                       crdt_dot_t dot, uint64_t hlc, const uint8_t *data, size_t len)
{
    uint8_t okey[ENGRAM_MAX_KEY_BYTES + 1];
    size_t oklen;
    if (!s_objkey(type, key, okey, &oklen) || !crdt__name_ok(elem, strlen(elem), true))
        return ENGRAM_EINVAL;
    s_dotkey_t dk = s_dotkey(dot);
    if (crdt__hmap_get(self->dots, &dk, sizeof dk))
        return ENGRAM_EDOTREUSE;

    crdt__object_t *object = crdt__hmap_get(self->objects, okey, oklen);
    bool new_object = !object;
    if (new_object) {
        object = calloc(1, sizeof *object);
        if (!object)
            return ENGRAM_ENOMEM;
        object->type = type;
        object->key = strdup(key);
        object->leaves = crdt__hmap_new();
        if (!object->key || !object->leaves ||
            crdt__hmap_put(self->objects, okey, oklen, object) != 0) {
            s_object_free(object);
            return ENGRAM_ENOMEM;
        }
    }
    crdt__leaf_t *leaf = crdt__hmap_get(object->leaves, elem, strlen(elem));
    bool new_leaf = !leaf;
    if (new_leaf) {
        leaf = calloc(1, sizeof *leaf);
        if (!leaf || !(leaf->elem = strdup(elem)) ||
            crdt__hmap_put(object->leaves, elem, strlen(elem), leaf) != 0) {
            if (leaf)
                free(leaf->elem);
            free(leaf);
            goto out_undo_object;
        }
        leaf->object = object;
    }
    crdt__entry_t entry = {.dot = dot, .hlc = hlc, .len = len};
    if (len) {
        entry.data = malloc(len);
        if (!entry.data)
            goto out_undo_leaf;
        memcpy(entry.data, data, len);
    }
    if (crdt_array_grow((void **)&leaf->entries, &leaf->cap, leaf->n + 1, sizeof *leaf->entries) ||
        crdt__hmap_put(self->dots, &dk, sizeof dk, leaf) != 0) {
        free(entry.data);
        goto out_undo_leaf;
    }
    entry.hash = s_entry_hash(type, key, elem, dot, hlc, data, len);
    bool found;
    size_t at = s_leaf_find(leaf, dot, &found);
    memmove(&leaf->entries[at + 1], &leaf->entries[at], (leaf->n - at) * sizeof entry);
    leaf->entries[at] = entry;
    leaf->n++;
    self->digest ^= entry.hash;
    self->nentries++;
    return 0;

out_undo_leaf:
    if (new_leaf) {
        crdt__hmap_del(object->leaves, elem, strlen(elem));
        s_leaf_free(leaf);
    }
out_undo_object:
    if (new_object) {
        crdt__hmap_del(self->objects, okey, oklen);
        s_object_free(object);
    }
    return ENGRAM_ENOMEM;
}

/*  Removes the live entry with this dot, freeing its leaf and object when they empty. */
static void s_remove(crdt_scope_t *self, crdt_dot_t dot)
{
    s_dotkey_t dk = s_dotkey(dot);
    crdt__leaf_t *leaf = crdt__hmap_del(self->dots, &dk, sizeof dk);
    if (!leaf)
        return;
    bool found;
    size_t at = s_leaf_find(leaf, dot, &found);
    if (!found)
        return;
    self->digest ^= leaf->entries[at].hash;
    self->nentries--;
    free(leaf->entries[at].data);
    memmove(&leaf->entries[at], &leaf->entries[at + 1], (leaf->n - at - 1) * sizeof *leaf->entries);
    leaf->n--;
    if (leaf->n)
        return;
    crdt__object_t *object = leaf->object;
    crdt__hmap_del(object->leaves, leaf->elem, strlen(leaf->elem));
    s_leaf_free(leaf);
    if (crdt__hmap_count(object->leaves))
        return;
    uint8_t okey[ENGRAM_MAX_KEY_BYTES + 1];
    size_t oklen = 0;
    bool named = s_objkey(object->type, object->key, okey, &oklen);
    assert(named); /* the object was stored under this key */
    (void)named;
    crdt__hmap_del(self->objects, okey, oklen);
    s_object_free(object);
}

/*  True when `self` holds the entry `dot` of `leaf` (from another scope) with the same place
 *  and content. */
static bool s_same_entry(const crdt_scope_t *self, const crdt__leaf_t *leaf,
                         const crdt__entry_t *entry)
{
    const crdt__leaf_t *mine;
    const crdt__entry_t *e = s_lookup(self, entry->dot, &mine);
    return e && mine->object->type == leaf->object->type &&
           strcmp(mine->object->key, leaf->object->key) == 0 &&
           strcmp(mine->elem, leaf->elem) == 0 && e->hlc == entry->hlc && e->len == entry->len &&
           (e->len == 0 || memcmp(e->data, entry->data, e->len) == 0);
}

/*  Visits every live entry of self (in index order). The visitor must not change self. */
static int s_foreach_entry(const crdt_scope_t *self,
                           int (*fn)(void *arg, const crdt__leaf_t *leaf,
                                     const crdt__entry_t *entry),
                           void *arg)
{
    for (size_t i = 0; i < crdt__hmap_slots(self->objects); i++) {
        void *object;
        if (!crdt__hmap_at(self->objects, i, NULL, NULL, &object))
            continue;
        crdt__hmap_t *leaves = ((crdt__object_t *)object)->leaves;
        for (size_t j = 0; j < crdt__hmap_slots(leaves); j++) {
            void *leaf;
            if (!crdt__hmap_at(leaves, j, NULL, NULL, &leaf))
                continue;
            const crdt__leaf_t *l = leaf;
            for (size_t k = 0; k < l->n; k++) {
                int rc = fn(arg, l, &l->entries[k]);
                if (rc)
                    return rc;
            }
        }
    }
    return 0;
}

/*  --- records ------------------------------------------------------------------------ */

int crdt__scope_add_record(crdt_scope_t *self, crdt_dot_t op, const crdt_dot_t *removed,
                           size_t nremoved)
{
    s_dotkey_t dk = s_dotkey(op);
    if (crdt__hmap_get(self->records, &dk, sizeof dk) || crdt_ctx_contains(self->pruned, op))
        return 0;
    s_record_t *record = calloc(1, sizeof *record);
    if (!record)
        return ENGRAM_ENOMEM;
    record->op = op;
    record->n = nremoved;
    record->removed = malloc((nremoved ? nremoved : 1) * sizeof *removed);
    if (!record->removed || crdt__hmap_put(self->records, &dk, sizeof dk, record) != 0) {
        s_record_free(record);
        return ENGRAM_ENOMEM;
    }
    if (nremoved)
        memcpy(record->removed, removed, nremoved * sizeof *removed);
    return 0;
}

bool crdt__scope_has_record(const crdt_scope_t *self, crdt_dot_t op)
{
    s_dotkey_t dk = s_dotkey(op);
    return crdt__hmap_get(self->records, &dk, sizeof dk) != NULL;
}

/*  Drops every record whose op is in self->pruned. */
static void s_drop_pruned_records(crdt_scope_t *self)
{
    size_t i = 0;
    while (i < crdt__hmap_slots(self->records)) {
        void *value;
        if (crdt__hmap_at(self->records, i, NULL, NULL, &value) &&
            crdt_ctx_contains(self->pruned, ((s_record_t *)value)->op)) {
            s_record_t *record = value;
            s_dotkey_t dk = s_dotkey(record->op);
            crdt__hmap_del(self->records, &dk, sizeof dk);
            s_record_free(record);
            continue; /* backward shift may have moved another record into slot i */
        }
        i++;
    }
}

int crdt_scope_foreach_record(const crdt_scope_t *self, crdt_scope_record_fn fn, void *arg)
{
    for (size_t i = 0; i < crdt__hmap_slots(self->records); i++) {
        void *value;
        if (!crdt__hmap_at(self->records, i, NULL, NULL, &value))
            continue;
        const s_record_t *record = value;
        int rc = fn(arg, record->op, record->removed, record->n);
        if (rc)
            return rc;
    }
    return 0;
}

int crdt__scope_foreach_object(const crdt_scope_t *self,
                               int (*fn)(void *arg, const crdt__object_t *object), void *arg)
{
    for (size_t i = 0; i < crdt__hmap_slots(self->objects); i++) {
        void *object;
        if (!crdt__hmap_at(self->objects, i, NULL, NULL, &object))
            continue;
        int rc = fn(arg, object);
        if (rc)
            return rc;
    }
    return 0;
}

int crdt__object_views(const crdt__object_t *object, crdt_entry_view_t **views, size_t *n)
{
    size_t total = 0, at = 0;
    for (size_t i = 0; i < crdt__hmap_slots(object->leaves); i++) {
        void *leaf;
        if (crdt__hmap_at(object->leaves, i, NULL, NULL, &leaf))
            total += ((crdt__leaf_t *)leaf)->n;
    }
    *views = calloc(total ? total : 1, sizeof **views);
    if (!*views)
        return ENGRAM_ENOMEM;
    for (size_t i = 0; i < crdt__hmap_slots(object->leaves); i++) {
        void *value;
        if (!crdt__hmap_at(object->leaves, i, NULL, NULL, &value))
            continue;
        const crdt__leaf_t *leaf = value;
        for (size_t k = 0; k < leaf->n; k++) {
            const crdt__entry_t *e = &leaf->entries[k];
            (*views)[at++] =
                (crdt_entry_view_t){leaf->elem, e->dot.node, e->dot.n, e->hlc, e->data, e->len};
        }
    }
    *n = total;
    return 0;
}

/*  --- notes -------------------------------------------------------------------------- */

int crdt_scope_note(crdt_scope_t *self, crdt_dot_t op, const void *data, size_t len)
{
    if (self->broken)
        return ENGRAM_ENOMEM;
    if (len == 0 || len > CRDT_MAX_NOTE_BYTES || !crdt_ctx_contains(self->ctx, op))
        return ENGRAM_EINVAL;
    s_dotkey_t dk = s_dotkey(op);
    if (crdt__hmap_get(self->notes, &dk, sizeof dk))
        return 0; /* an op's note never changes: the first one stays */
    s_note_t *note = calloc(1, sizeof *note);
    if (!note)
        return ENGRAM_ENOMEM;
    note->op = op;
    note->len = len;
    note->data = malloc(len);
    if (!note->data || crdt__hmap_put(self->notes, &dk, sizeof dk, note) != 0) {
        s_note_free(note);
        return ENGRAM_ENOMEM;
    }
    memcpy(note->data, data, len);
    return 0;
}

const uint8_t *crdt_scope_note_of(const crdt_scope_t *self, crdt_dot_t op, size_t *len)
{
    s_dotkey_t dk = s_dotkey(op);
    const s_note_t *note = crdt__hmap_get(self->notes, &dk, sizeof dk);
    *len = note ? note->len : 0;
    return note ? note->data : NULL;
}

int crdt_scope_foreach_note(const crdt_scope_t *self, crdt_scope_note_fn fn, void *arg)
{
    for (size_t i = 0; i < crdt__hmap_slots(self->notes); i++) {
        void *value;
        if (!crdt__hmap_at(self->notes, i, NULL, NULL, &value))
            continue;
        const s_note_t *note = value;
        int rc = fn(arg, note->op, note->data, note->len);
        if (rc)
            return rc;
    }
    return 0;
}

size_t crdt_scope_notes(const crdt_scope_t *self)
{
    return crdt__hmap_count(self->notes);
}

void crdt_scope_drop_notes(crdt_scope_t *self)
{
    crdt__hmap_t *empty = crdt__hmap_new();
    if (!empty)
        return; /* out of memory: the notes stay */
    for (size_t i = 0; i < crdt__hmap_slots(self->notes); i++) {
        void *note;
        if (crdt__hmap_at(self->notes, i, NULL, NULL, &note))
            s_note_free(note);
    }
    crdt__hmap_destroy(&self->notes);
    self->notes = empty;
}

/*  --- join --------------------------------------------------------------------------- */

typedef struct {
    crdt_scope_t *self;
    const crdt_scope_t *delta;
    crdt_dot_t *doomed; /* owned: dots of self to remove */
    size_t ndoomed;
    size_t cap;
} s_join_t;

static int s_check_entry(void *arg, const crdt__leaf_t *leaf, const crdt__entry_t *entry)
{
    const crdt_scope_t *self = arg;
    s_dotkey_t dk = s_dotkey(entry->dot);
    if (crdt__hmap_get(self->dots, &dk, sizeof dk) && !s_same_entry(self, leaf, entry))
        return ENGRAM_EDOTREUSE;
    return 0;
}

static int s_doom(s_join_t *join, crdt_dot_t dot)
{
    s_dotkey_t dk = s_dotkey(dot);
    if (!crdt__hmap_get(join->self->dots, &dk, sizeof dk) ||
        crdt__hmap_get(join->delta->dots, &dk, sizeof dk))
        return 0;
    if (crdt_array_grow((void **)&join->doomed, &join->cap, join->ndoomed + 1,
                        sizeof *join->doomed))
        return ENGRAM_ENOMEM;
    join->doomed[join->ndoomed++] = dot;
    return 0;
}

static int s_doom_range(void *arg, uint64_t node, uint64_t lo, uint64_t hi)
{
    for (uint64_t n = lo; n <= hi; n++) {
        int rc = s_doom(arg, (crdt_dot_t){node, n});
        if (rc)
            return rc;
    }
    return 0;
}

static int s_doom_if_covered(void *arg, const crdt__leaf_t *leaf, const crdt__entry_t *entry)
{
    (void)leaf;
    s_join_t *join = arg;
    if (!crdt_ctx_contains(join->delta->ctx, entry->dot))
        return 0;
    return s_doom(join, entry->dot);
}

static int s_add_unseen(void *arg, const crdt__leaf_t *leaf, const crdt__entry_t *entry)
{
    s_join_t *join = arg;
    if (crdt_ctx_contains(join->self->ctx, entry->dot))
        return 0;
    return crdt__scope_insert(join->self, leaf->object->type, leaf->object->key, leaf->elem,
                              entry->dot, entry->hlc, entry->data, entry->len);
}

static int s_copy_record(void *arg, crdt_dot_t op, const crdt_dot_t *removed, size_t n)
{
    return crdt__scope_add_record(arg, op, removed, n);
}

static int s_copy_note(void *arg, crdt_dot_t op, const uint8_t *data, size_t len)
{
    return crdt_scope_note(arg, op, data, len);
}

bool crdt_scope_dot_entry(const crdt_scope_t *self, crdt_dot_t dot, crdt_dot_entry_t *out)
{
    assert(self && out);
    const crdt__leaf_t *leaf;
    const crdt__entry_t *entry = s_lookup(self, dot, &leaf);
    if (!entry)
        return false;
    *out = (crdt_dot_entry_t){.type = leaf->object->type,
                              .key = leaf->object->key,
                              .entry = {.elem = leaf->elem,
                                        .node = dot.node,
                                        .n = dot.n,
                                        .hlc = entry->hlc,
                                        .data = entry->data ? entry->data : (const uint8_t *)"",
                                        .len = entry->len}};
    return true;
}

int crdt_scope_join(crdt_scope_t *self, const crdt_scope_t *delta)
{
    if (self->broken)
        return ENGRAM_ENOMEM;
    int rc = s_foreach_entry(delta, s_check_entry, self);
    if (rc)
        return rc;
    crdt_ctx_t *ctx = crdt_ctx_dup(self->ctx);
    crdt_ctx_t *pruned = crdt_ctx_dup(self->pruned);
    if (!ctx || !pruned || crdt_ctx_join(ctx, delta->ctx) || crdt_ctx_join(pruned, delta->pruned)) {
        crdt_ctx_destroy(&ctx);
        crdt_ctx_destroy(&pruned);
        return ENGRAM_ENOMEM;
    }
    bool pruned_grew = !crdt_ctx_covers(self->pruned, delta->pruned);
    /* Nothing has changed yet; from here on a failure breaks the scope. */
    s_join_t join = {.self = self, .delta = delta};
    if (crdt_ctx_count(delta->ctx) <= self->nentries)
        rc = crdt__ctx_foreach_range(delta->ctx, s_doom_range, &join);
    else
        rc = s_foreach_entry(self, s_doom_if_covered, &join);
    for (size_t i = 0; rc == 0 && i < join.ndoomed; i++)
        s_remove(self, join.doomed[i]);
    free(join.doomed);
    if (rc == 0)
        rc = s_foreach_entry(delta, s_add_unseen, &join);
    crdt_ctx_destroy(&self->ctx);
    self->ctx = ctx;
    crdt_ctx_destroy(&self->pruned);
    self->pruned = pruned;
    if (rc == 0)
        rc = crdt_scope_foreach_record(delta, s_copy_record, self);
    if (rc == 0)
        rc = crdt_scope_foreach_note(delta, s_copy_note, self);
    if (pruned_grew)
        s_drop_pruned_records(self);
    if (rc)
        self->broken = true;
    return rc;
}

/*  --- operations --------------------------------------------------------------------- */

int crdt__scope_operate(crdt_scope_t *self, crdt_type_id_t type, const char *key, const char *elem,
                        uint64_t hlc, const void *data, size_t len, const crdt_dot_t *removed,
                        size_t nremoved, crdt_scope_t **delta_p)
{
    if (self->broken)
        return ENGRAM_ENOMEM;
    if (self->replica == 0)
        return ENGRAM_EINVAL;
    size_t klen = strlen(key);
    if (klen > ENGRAM_MAX_KEY_BYTES || (elem && strlen(elem) > ENGRAM_MAX_KEY_BYTES) ||
        len > ENGRAM_MAX_ENTRY_BYTES)
        return ENGRAM_ETOOBIG;
    if (klen == 0)
        return ENGRAM_EINVAL;
    uint64_t next = crdt_ctx_max(self->ctx, self->replica) + 1;
    if (next > CRDT_DOT_MAX)
        return ENGRAM_ERANGE;
    crdt_dot_t dot = {self->replica, next};

    crdt_scope_t *delta = crdt_scope_new(0);
    if (!delta)
        return ENGRAM_ENOMEM;
    int rc = crdt_ctx_insert(delta->ctx, dot);
    for (size_t i = 0; rc == 0 && i < nremoved; i++)
        rc = crdt_ctx_insert(delta->ctx, removed[i]);
    if (rc == 0 && elem)
        rc = crdt__scope_insert(delta, type, key, elem, dot, hlc, data, len);
    if (rc == 0 && nremoved)
        rc = crdt__scope_add_record(delta, dot, removed, nremoved);
    if (rc == 0)
        rc = crdt_scope_join(self, delta);
    if (rc == 0 && delta_p)
        *delta_p = delta;
    else
        crdt_scope_destroy(&delta);
    return rc;
}

static int s_append_leaf_dots(const crdt__leaf_t *leaf, crdt_dot_t **dots, size_t *n, size_t *cap)
{
    if (crdt_array_grow((void **)dots, cap, *n + leaf->n, sizeof **dots))
        return ENGRAM_ENOMEM;
    for (size_t k = 0; k < leaf->n; k++)
        (*dots)[(*n)++] = leaf->entries[k].dot;
    return 0;
}

int crdt__object_dots(const crdt__object_t *object, const char *elem, crdt_dot_t **dots, size_t *n,
                      size_t *cap)
{
    if (!object)
        return 0;
    if (elem) {
        const crdt__leaf_t *leaf = crdt__object_leaf(object, elem);
        return leaf ? s_append_leaf_dots(leaf, dots, n, cap) : 0;
    }
    for (size_t i = 0; i < crdt__hmap_slots(object->leaves); i++) {
        void *leaf;
        if (crdt__hmap_at(object->leaves, i, NULL, NULL, &leaf)) {
            int rc = s_append_leaf_dots(leaf, dots, n, cap);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int crdt_scope_forget(crdt_scope_t *self, const char *key, crdt_scope_t **delta_p)
{
    crdt_dot_t *dots = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (unsigned t = 1; rc == 0 && t <= CRDT_TYPE_MAX; t++) {
        rc = crdt__object_dots(crdt__scope_object(self, (crdt_type_id_t)t, key), NULL, &dots, &n,
                               &cap);
    }
    if (rc == 0 && n == 0)
        rc = ENGRAM_ENOTFOUND;
    if (rc == 0)
        rc = crdt__scope_operate(self, CRDT_REG, key, NULL, 0, NULL, 0, dots, n, delta_p);
    free(dots);
    return rc;
}

/*  --- anti-entropy ------------------------------------------------------------------- */

typedef struct {
    const crdt_scope_t *self;
    const crdt_ctx_t *since;
    crdt_scope_t *delta;
} s_since_t;

static int s_ship_entry(s_since_t *since, const crdt__leaf_t *leaf, const crdt__entry_t *entry)
{
    return crdt__scope_insert(since->delta, leaf->object->type, leaf->object->key, leaf->elem,
                              entry->dot, entry->hlc, entry->data, entry->len);
}

static int s_ship_unseen(void *arg, const crdt__leaf_t *leaf, const crdt__entry_t *entry)
{
    s_since_t *since = arg;
    if (crdt_ctx_contains(since->since, entry->dot))
        return 0;
    return s_ship_entry(since, leaf, entry);
}

static int s_ship_range(void *arg, uint64_t node, uint64_t lo, uint64_t hi)
{
    s_since_t *since = arg;
    for (uint64_t n = lo; n <= hi; n++) {
        const crdt__leaf_t *leaf;
        const crdt__entry_t *entry = s_lookup(since->self, (crdt_dot_t){node, n}, &leaf);
        if (entry) {
            int rc = s_ship_entry(since, leaf, entry);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int s_ship_record(void *arg, crdt_dot_t op, const crdt_dot_t *removed, size_t n)
{
    s_since_t *since = arg;
    if (crdt_ctx_contains(since->since, op))
        return 0;
    int rc = crdt__scope_add_record(since->delta, op, removed, n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = crdt_ctx_insert(since->delta->ctx, removed[i]);
    return rc;
}

/*  The note of an op the asker lacks (its dot is in the delta's context: the difference). */
static int s_ship_note(void *arg, crdt_dot_t op, const uint8_t *data, size_t len)
{
    s_since_t *since = arg;
    if (crdt_ctx_contains(since->since, op))
        return 0;
    return crdt_scope_note(since->delta, op, data, len);
}

crdt_scope_t *crdt_scope_delta_since(const crdt_scope_t *self, const crdt_ctx_t *since)
{
    if (!crdt_ctx_covers(since, self->pruned))
        return crdt_scope_dup(self, 0);
    s_since_t ship = {.self = self, .since = since, .delta = crdt_scope_new(0)};
    if (!ship.delta)
        return NULL;
    crdt_ctx_t *missing = crdt_ctx_diff(self->ctx, since);
    int rc = missing ? 0 : ENGRAM_ENOMEM;
    if (rc == 0) {
        crdt_ctx_destroy(&ship.delta->ctx);
        ship.delta->ctx = missing;
    }
    if (rc == 0 && crdt_ctx_count(missing) <= self->nentries)
        rc = crdt__ctx_foreach_range(missing, s_ship_range, &ship);
    else if (rc == 0)
        rc = s_foreach_entry(self, s_ship_unseen, &ship);
    if (rc == 0)
        rc = crdt_scope_foreach_record(self, s_ship_record, &ship);
    if (rc == 0)
        rc = crdt_scope_foreach_note(self, s_ship_note, &ship);
    if (rc)
        crdt_scope_destroy(&ship.delta);
    return ship.delta;
}

int crdt_scope_prune(crdt_scope_t *self, const crdt_ctx_t *stable_cut)
{
    if (self->broken)
        return ENGRAM_ENOMEM;
    if (!crdt_ctx_covers(self->ctx, stable_cut))
        return ENGRAM_EINVAL;
    crdt_ctx_t *pruned = crdt_ctx_dup(self->pruned);
    if (!pruned || crdt_ctx_join(pruned, stable_cut)) {
        crdt_ctx_destroy(&pruned);
        return ENGRAM_ENOMEM;
    }
    crdt_ctx_destroy(&self->pruned);
    self->pruned = pruned;
    s_drop_pruned_records(self);
    return 0;
}

/*  --- storage views ------------------------------------------------------------------ */

int crdt_scope_restore_ctx(crdt_scope_t *self, const crdt_ctx_t *ctx)
{
    if (self->broken)
        return ENGRAM_ENOMEM;
    return crdt_ctx_join(self->ctx, ctx);
}

int crdt_scope_restore(crdt_scope_t *self, crdt_type_id_t type, const char *key,
                       const crdt_entry_view_t *entry)
{
    crdt_dot_t dot = {entry->node, entry->n};
    const crdt_type_t *t = crdt_type_by_id(type);
    if (!t || !crdt_ctx_contains(self->ctx, dot) ||
        t->check_entry(entry->elem, entry->data, entry->len) != 0)
        return ENGRAM_EINVAL;
    return crdt__scope_insert(self, type, key, entry->elem, dot, entry->hlc, entry->data,
                              entry->len);
}

int crdt_scope_restore_record(crdt_scope_t *self, crdt_dot_t op, const crdt_dot_t *removed,
                              size_t nremoved)
{
    if (nremoved == 0 || !crdt_ctx_contains(self->ctx, op))
        return ENGRAM_EINVAL;
    for (size_t i = 0; i < nremoved; i++)
        if (!crdt_ctx_contains(self->ctx, removed[i]))
            return ENGRAM_EINVAL;
    return crdt__scope_add_record(self, op, removed, nremoved);
}

typedef struct {
    crdt_scope_entry_fn fn;
    void *arg;
} s_visit_t;

static int s_visit_entry(void *arg, const crdt__leaf_t *leaf, const crdt__entry_t *entry)
{
    s_visit_t *visit = arg;
    crdt_entry_view_t view = {leaf->elem, entry->dot.node, entry->dot.n,
                              entry->hlc, entry->data,     entry->len};
    return visit->fn(visit->arg, leaf->object->type, leaf->object->key, &view);
}

int crdt_scope_foreach_entry(const crdt_scope_t *self, crdt_scope_entry_fn fn, void *arg)
{
    s_visit_t visit = {fn, arg};
    return s_foreach_entry(self, s_visit_entry, &visit);
}

/*  --- comparison ---------------------------------------------------------------------- */

static int s_held_by(void *arg, const crdt__leaf_t *leaf, const crdt__entry_t *entry)
{
    return s_same_entry(arg, leaf, entry) ? 0 : 1;
}

bool crdt_scope_equal(const crdt_scope_t *self, const crdt_scope_t *other)
{
    return self->nentries == other->nentries && self->digest == other->digest &&
           crdt_ctx_equal(self->ctx, other->ctx) &&
           s_foreach_entry(self, s_held_by, (void *)other) == 0;
}

static int s_rehash(void *arg, const crdt__leaf_t *leaf, const crdt__entry_t *entry)
{
    *(uint64_t *)arg ^= s_entry_hash(leaf->object->type, leaf->object->key, leaf->elem, entry->dot,
                                     entry->hlc, entry->data, entry->len);
    return 0;
}

uint64_t crdt_scope_digest_recompute(const crdt_scope_t *self)
{
    uint64_t digest = 0;
    s_foreach_entry(self, s_rehash, &digest);
    return digest;
}
