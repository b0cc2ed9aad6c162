/*  crdt_awset: add-wins observed-remove set (see awset.h). */
#include "crdt/awset.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/array.h"
#include "crdt/internal.h"
#include "engram/error.h"
#include "engram/limits.h"

static int s_check_type(const crdt_scope_t *self, const char *key, const char *elem)
{
    if (crdt_scope_types_of(self, key) & ~(1u << CRDT_SET))
        return ENGRAM_ETYPE;
    if (!*elem)
        return ENGRAM_EINVAL;
    return 0;
}

#ifdef ENGRAM_FAULT_REMOVE_DROPS_UNOBSERVED
/*  The deliberate defect: a remove's context also claims the next dots of every other replica,
 *  unobserved here, so it drops the adds they make concurrently (and never takes them here). */
typedef struct {
    uint64_t self;
    crdt_dot_t **dots;
    size_t *n, *cap;
} s_fault_t;

static int s_fault_claim(void *arg, uint64_t node, uint64_t lo, uint64_t hi)
{
    s_fault_t *f = arg;
    (void)lo;
    if (node == f->self)
        return 0;
    if (crdt_array_grow((void **)f->dots, f->cap, *f->n + 64, sizeof **f->dots))
        return ENGRAM_ENOMEM;
    for (uint64_t k = 1; k <= 64; k++)
        (*f->dots)[(*f->n)++] = (crdt_dot_t){node, hi + k};
    return 0;
}

static int s_fault_claim_unobserved(crdt_scope_t *self, crdt_dot_t **dots, size_t *n, size_t *cap)
{
    s_fault_t f = {crdt_scope_replica(self), dots, n, cap};
    return crdt__ctx_foreach_range(crdt_scope_ctx(self), s_fault_claim, &f);
}
#endif

/*  Removes the entries elem holds here (observed), with a fresh dot; adds elem with data if
 *  `add`. */
static int s_update(crdt_scope_t *self, const char *key, const char *elem, bool add,
                    const void *data, size_t len, crdt_scope_t **delta_p)
{
    int rc = s_check_type(self, key, elem);
    if (rc)
        return rc;
    const crdt__object_t *set = crdt__scope_object(self, CRDT_SET, key);
    crdt_dot_t *observed = NULL;
    size_t n = 0, cap = 0;
    rc = crdt__object_dots(set, elem, &observed, &n, &cap);
#ifdef ENGRAM_FAULT_REMOVE_DROPS_UNOBSERVED /* deliberate defect for jepsen/ */
    if (rc == 0 && !add && n > 0)
        rc = s_fault_claim_unobserved(self, &observed, &n, &cap);
#endif
    if (rc == 0 && !add && n == 0)
        rc = ENGRAM_ENOTFOUND;
    if (rc == 0)
        rc = crdt__scope_operate(self, CRDT_SET, key, add ? elem : NULL, 0, data, len, observed, n,
                                 delta_p);
    free(observed);
    return rc;
}

int crdt_awset_add(crdt_scope_t *self, const char *key, const char *elem, const void *data,
                   size_t len, crdt_scope_t **delta_p)
{
    assert(data || len == 0);
    return s_update(self, key, elem, true, data, len, delta_p);
}

int crdt_awset_remove(crdt_scope_t *self, const char *key, const char *elem, crdt_scope_t **delta_p)
{
    return s_update(self, key, elem, false, NULL, 0, delta_p);
}

bool crdt_awset_contains(const crdt_scope_t *self, const char *key, const char *elem)
{
    const crdt__object_t *set = crdt__scope_object(self, CRDT_SET, key);
    return set && crdt__object_leaf(set, elem);
}

static int s_strcmp_p(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int crdt_awset_members(const crdt_scope_t *self, const char *key, const char ***members, size_t *n)
{
    const crdt__object_t *set = crdt__scope_object(self, CRDT_SET, key);
    if (!set)
        return ENGRAM_ENOTFOUND;
    size_t count = crdt__hmap_count(set->leaves), at = 0;
    *members = malloc((count ? count : 1) * sizeof **members);
    if (!*members)
        return ENGRAM_ENOMEM;
    for (size_t i = 0; i < crdt__hmap_slots(set->leaves); i++) {
        void *leaf;
        if (crdt__hmap_at(set->leaves, i, NULL, NULL, &leaf))
            (*members)[at++] = ((crdt__leaf_t *)leaf)->elem;
    }
    qsort(*members, count, sizeof **members, s_strcmp_p);
    *n = count;
    return 0;
}

/*  Element order, then dot order. */
static int s_elem_dot_order(const void *a, const void *b)
{
    const crdt_entry_view_t *x = a, *y = b;
    int c = strcmp(x->elem, y->elem);
    if (c)
        return c;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    return x->n < y->n ? -1 : (x->n > y->n);
}

int crdt_awset_entries(const crdt_scope_t *self, const char *key, const char *elem,
                       crdt_entry_view_t **entries, size_t *n)
{
    const crdt__object_t *set = crdt__scope_object(self, CRDT_SET, key);
    if (!set)
        return ENGRAM_ENOTFOUND;
    if (!elem) {
        int rc = crdt__object_views(set, entries, n);
        if (rc == 0)
            qsort(*entries, *n, sizeof **entries, s_elem_dot_order);
        return rc;
    }
    const crdt__leaf_t *leaf = crdt__object_leaf(set, elem);
    if (!leaf)
        return ENGRAM_ENOTFOUND;
    *entries = calloc(leaf->n ? leaf->n : 1, sizeof **entries);
    if (!*entries)
        return ENGRAM_ENOMEM;
    for (size_t k = 0; k < leaf->n; k++) { /* a leaf keeps its entries in dot order */
        const crdt__entry_t *e = &leaf->entries[k];
        (*entries)[k] =
            (crdt_entry_view_t){leaf->elem, e->dot.node, e->dot.n, e->hlc, e->data, e->len};
    }
    *n = leaf->n;
    return 0;
}

/*  Data is the add's, opaque: empty (adds from before sets carried provenance) or not. */
static int s_check_entry(const char *elem, const uint8_t *data, size_t len)
{
    (void)data;
    return (*elem && len <= ENGRAM_MAX_ENTRY_BYTES) ? 0 : ENGRAM_EDECODE;
}

const crdt_type_t crdt__awset_type = {CRDT_SET, "set", s_check_entry};
