/*  crdt_ctx: causal context as version vector plus dot cloud (see ctx.h for the invariants).
 *
 *  Representation: `entries` sorted by node, each with `base` and a sorted array of cloud
 *  ranges, every range.lo > base + 1 and ranges separated by at least one missing dot. An
 *  entry is "range list" view [1, base] ∪ cloud when base > 0, so every set operation below is
 *  one sweep over two sorted range lists.
 */
#include "crdt/ctx.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/array.h"
#include "crdt/internal.h"
#include "engram/error.h"

typedef struct {
    uint64_t node;
    uint64_t base;
    crdt_range_t *cloud; /* owned */
    size_t ncloud;
    size_t cap;
} s_entry_t;

struct crdt_ctx {
    s_entry_t *entries; /* owned, sorted by node, no empty entry */
    size_t n;
    size_t cap;
};

crdt_ctx_t *crdt_ctx_new(void)
{
    return calloc(1, sizeof(crdt_ctx_t));
}

void crdt_ctx_destroy(crdt_ctx_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    crdt_ctx_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++)
        free(self->entries[i].cloud);
    free(self->entries);
    free(self);
    *self_p = NULL;
}

crdt_ctx_t *crdt_ctx_dup(const crdt_ctx_t *self)
{
    crdt_ctx_t *copy = crdt_ctx_new();
    if (!copy || !self->n)
        return copy;
    copy->entries = calloc(self->n, sizeof *copy->entries);
    if (!copy->entries) {
        crdt_ctx_destroy(&copy);
        return NULL;
    }
    copy->cap = self->n;
    for (size_t i = 0; i < self->n; i++) {
        const s_entry_t *e = &self->entries[i];
        copy->entries[i] = (s_entry_t){.node = e->node, .base = e->base};
        copy->n = i + 1;
        if (!e->ncloud)
            continue;
        copy->entries[i].cloud = malloc(e->ncloud * sizeof *e->cloud);
        if (!copy->entries[i].cloud) {
            crdt_ctx_destroy(&copy);
            return NULL;
        }
        memcpy(copy->entries[i].cloud, e->cloud, e->ncloud * sizeof *e->cloud);
        copy->entries[i].ncloud = copy->entries[i].cap = e->ncloud;
    }
    return copy;
}

/*  Binary search; returns the index of node or where it would be inserted. */
static size_t s_lower(const crdt_ctx_t *self, uint64_t node)
{
    size_t lo = 0, hi = self->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->entries[mid].node < node)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const s_entry_t *s_entry(const crdt_ctx_t *self, uint64_t node)
{
    size_t i = s_lower(self, node);
    return (i < self->n && self->entries[i].node == node) ? &self->entries[i] : NULL;
}

static size_t s_nranges(const s_entry_t *e)
{
    return e->ncloud + (e->base > 0);
}

static crdt_range_t s_range(const s_entry_t *e, size_t i)
{
    if (e->base > 0) {
        if (i == 0)
            return (crdt_range_t){1, e->base};
        i--;
    }
    return e->cloud[i];
}

/*  Adds [lo, hi] to an entry, merging overlapping and adjacent ranges, then folds into base
 *  every range that now touches it. */
static int s_entry_add(s_entry_t *e, uint64_t lo, uint64_t hi)
{
    if (hi <= e->base)
        return 0;
    if (lo <= e->base + 1) {
        e->base = hi;
    } else {
        /* First cloud range that ends at or after lo - 1 (could merge with [lo, hi]): binary
         * search, so that building a context in ascending order is linear, not quadratic. */
        size_t first = 0, end = e->ncloud;
        while (first < end) {
            size_t mid = first + (end - first) / 2;
            if (e->cloud[mid].hi + 1 < lo)
                first = mid + 1;
            else
                end = mid;
        }
        size_t last = first; /* one past the ranges that merge */
        while (last < e->ncloud && e->cloud[last].lo <= hi + 1) {
            if (e->cloud[last].lo < lo)
                lo = e->cloud[last].lo;
            if (e->cloud[last].hi > hi)
                hi = e->cloud[last].hi;
            last++;
        }
        if (first == last) {
            int rc = crdt_array_grow((void **)&e->cloud, &e->cap, e->ncloud + 1, sizeof *e->cloud);
            if (rc)
                return rc;
            memmove(&e->cloud[first + 1], &e->cloud[first], (e->ncloud - first) * sizeof *e->cloud);
            e->ncloud++;
        } else if (last - first > 1) {
            memmove(&e->cloud[first + 1], &e->cloud[last], (e->ncloud - last) * sizeof *e->cloud);
            e->ncloud -= last - first - 1;
        }
        e->cloud[first] = (crdt_range_t){lo, hi};
        return 0;
    }
    /* base grew: fold the cloud ranges it now reaches. */
    size_t folded = 0;
    while (folded < e->ncloud && e->cloud[folded].lo <= e->base + 1) {
        if (e->cloud[folded].hi > e->base)
            e->base = e->cloud[folded].hi;
        folded++;
    }
    if (folded) {
        memmove(e->cloud, &e->cloud[folded], (e->ncloud - folded) * sizeof *e->cloud);
        e->ncloud -= folded;
    }
    return 0;
}

static s_entry_t *s_entry_get_or_add(crdt_ctx_t *self, uint64_t node)
{
    size_t i = s_lower(self, node);
    if (i < self->n && self->entries[i].node == node)
        return &self->entries[i];
    if (crdt_array_grow((void **)&self->entries, &self->cap, self->n + 1, sizeof *self->entries))
        return NULL;
    memmove(&self->entries[i + 1], &self->entries[i], (self->n - i) * sizeof *self->entries);
    self->entries[i] = (s_entry_t){.node = node};
    self->n++;
    return &self->entries[i];
}

/*  Drops the entry at index i if it holds no dot (keeps "no empty entry"). */
static void s_drop_if_empty(crdt_ctx_t *self, uint64_t node)
{
    size_t i = s_lower(self, node);
    if (i >= self->n || self->entries[i].node != node)
        return;
    if (self->entries[i].base || self->entries[i].ncloud)
        return;
    free(self->entries[i].cloud);
    memmove(&self->entries[i], &self->entries[i + 1], (self->n - i - 1) * sizeof *self->entries);
    self->n--;
}

int crdt_ctx_insert_range(crdt_ctx_t *self, uint64_t node, uint64_t lo, uint64_t hi)
{
    if (node == 0 || lo == 0 || lo > hi || hi > CRDT_DOT_MAX)
        return ENGRAM_EINVAL;
    s_entry_t *e = s_entry_get_or_add(self, node);
    if (!e)
        return ENGRAM_ENOMEM;
    int rc = s_entry_add(e, lo, hi);
    s_drop_if_empty(self, node);
    return rc;
}

int crdt_ctx_insert(crdt_ctx_t *self, crdt_dot_t dot)
{
    return crdt_ctx_insert_range(self, dot.node, dot.n, dot.n);
}

bool crdt_ctx_contains(const crdt_ctx_t *self, crdt_dot_t dot)
{
    const s_entry_t *e = s_entry(self, dot.node);
    if (!e || dot.n == 0)
        return false;
    if (dot.n <= e->base)
        return true;
    size_t lo = 0, hi = e->ncloud;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e->cloud[mid].hi < dot.n)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < e->ncloud && e->cloud[lo].lo <= dot.n;
}

int crdt_ctx_join(crdt_ctx_t *self, const crdt_ctx_t *other)
{
    for (size_t i = 0; i < other->n; i++) {
        const s_entry_t *o = &other->entries[i];
        for (size_t r = 0; r < s_nranges(o); r++) {
            crdt_range_t range = s_range(o, r);
            int rc = crdt_ctx_insert_range(self, o->node, range.lo, range.hi);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/*  One sweep over a's and b's range lists for one node, emitting a \ b (keep_common false)
 *  or a ∩ b (keep_common true) into out. */
static int s_sweep(crdt_ctx_t *out, uint64_t node, const s_entry_t *a, const s_entry_t *b,
                   bool keep_common)
{
    size_t na = a ? s_nranges(a) : 0, nb = b ? s_nranges(b) : 0, j = 0;
    for (size_t i = 0; i < na; i++) {
        crdt_range_t r = s_range(a, i);
        uint64_t cur = r.lo;
        while (j < nb && s_range(b, j).hi < cur)
            j++;
        for (size_t k = j; k < nb && cur <= r.hi; k++) {
            crdt_range_t s = s_range(b, k);
            if (s.lo > r.hi)
                break;
            uint64_t clo = s.lo > cur ? s.lo : cur;
            uint64_t chi = s.hi < r.hi ? s.hi : r.hi;
            int rc = 0;
            if (keep_common)
                rc = crdt_ctx_insert_range(out, node, clo, chi);
            else if (s.lo > cur)
                rc = crdt_ctx_insert_range(out, node, cur, s.lo - 1);
            if (rc)
                return rc;
            cur = chi + 1;
        }
        if (!keep_common && cur <= r.hi) {
            int rc = crdt_ctx_insert_range(out, node, cur, r.hi);
            if (rc)
                return rc;
        }
    }
    return 0;
}

crdt_ctx_t *crdt_ctx_diff(const crdt_ctx_t *self, const crdt_ctx_t *other)
{
    crdt_ctx_t *out = crdt_ctx_new();
    if (!out)
        return NULL;
    for (size_t i = 0; i < self->n; i++) {
        const s_entry_t *a = &self->entries[i];
        if (s_sweep(out, a->node, a, s_entry(other, a->node), false) != 0) {
            crdt_ctx_destroy(&out);
            break;
        }
    }
    return out;
}

crdt_ctx_t *crdt_ctx_meet(const crdt_ctx_t *self, const crdt_ctx_t *other)
{
    crdt_ctx_t *out = crdt_ctx_new();
    if (!out)
        return NULL;
    for (size_t i = 0; i < self->n; i++) {
        const s_entry_t *a = &self->entries[i];
        const s_entry_t *b = s_entry(other, a->node);
        if (b && s_sweep(out, a->node, a, b, true) != 0) {
            crdt_ctx_destroy(&out);
            break;
        }
    }
    return out;
}

bool crdt_ctx_covers(const crdt_ctx_t *self, const crdt_ctx_t *other)
{
    for (size_t i = 0; i < other->n; i++) {
        const s_entry_t *o = &other->entries[i];
        const s_entry_t *s = s_entry(self, o->node);
        if (!s)
            return false;
        /* Every range of o must sit inside one range of s (ranges of s are maximal). */
        size_t j = 0, ns = s_nranges(s);
        for (size_t r = 0; r < s_nranges(o); r++) {
            crdt_range_t want = s_range(o, r);
            while (j < ns && s_range(s, j).hi < want.lo)
                j++;
            if (j == ns || s_range(s, j).lo > want.lo || s_range(s, j).hi < want.hi)
                return false;
        }
    }
    return true;
}

bool crdt_ctx_equal(const crdt_ctx_t *self, const crdt_ctx_t *other)
{
    if (self->n != other->n)
        return false;
    for (size_t i = 0; i < self->n; i++) {
        const s_entry_t *a = &self->entries[i], *b = &other->entries[i];
        if (a->node != b->node || a->base != b->base || a->ncloud != b->ncloud)
            return false;
        if (a->ncloud && memcmp(a->cloud, b->cloud, a->ncloud * sizeof *a->cloud) != 0)
            return false;
    }
    return true;
}

bool crdt_ctx_is_vv(const crdt_ctx_t *self)
{
    return crdt_ctx_cloud_ranges(self) == 0;
}

bool crdt_ctx_is_empty(const crdt_ctx_t *self)
{
    return self->n == 0;
}

uint64_t crdt_ctx_base(const crdt_ctx_t *self, uint64_t node)
{
    const s_entry_t *e = s_entry(self, node);
    return e ? e->base : 0;
}

uint64_t crdt_ctx_max(const crdt_ctx_t *self, uint64_t node)
{
    const s_entry_t *e = s_entry(self, node);
    if (!e)
        return 0;
    return e->ncloud ? e->cloud[e->ncloud - 1].hi : e->base;
}

uint64_t crdt_ctx_count(const crdt_ctx_t *self)
{
    uint64_t total = 0;
    for (size_t i = 0; i < self->n; i++) {
        const s_entry_t *e = &self->entries[i];
        for (size_t r = 0; r < s_nranges(e); r++) {
            crdt_range_t range = s_range(e, r);
            if (__builtin_add_overflow(total, range.hi - range.lo + 1, &total))
                return UINT64_MAX;
        }
    }
    return total;
}

size_t crdt_ctx_cloud_ranges(const crdt_ctx_t *self)
{
    size_t total = 0;
    for (size_t i = 0; i < self->n; i++)
        total += self->entries[i].ncloud;
    return total;
}

size_t crdt_ctx_nodes(const crdt_ctx_t *self)
{
    return self->n;
}

void crdt_ctx_node_at(const crdt_ctx_t *self, size_t index, uint64_t *node, uint64_t *base,
                      const crdt_range_t **cloud, size_t *ncloud)
{
    const s_entry_t *e = &self->entries[index];
    *node = e->node;
    *base = e->base;
    *cloud = e->cloud;
    *ncloud = e->ncloud;
}

int crdt__ctx_foreach_range(const crdt_ctx_t *ctx, crdt__range_fn fn, void *arg)
{
    for (size_t i = 0; i < ctx->n; i++) {
        const s_entry_t *e = &ctx->entries[i];
        for (size_t r = 0; r < s_nranges(e); r++) {
            crdt_range_t range = s_range(e, r);
            int rc = fn(arg, e->node, range.lo, range.hi);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/*  Room for one node's text: 16 hex digits, ':', the base and '+' with the cloud's count
 *  (each at most 20 digits), and the separating space. */
#define CTX_NODE_TEXT 64

char *crdt_ctx_text(const crdt_ctx_t *self)
{
    size_t nodes = crdt_ctx_nodes(self);
    size_t size = nodes * CTX_NODE_TEXT + 1;
    char *text = calloc(1, size);
    if (!text)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < nodes; i++) {
        uint64_t node, base;
        const crdt_range_t *cloud;
        size_t ncloud;
        crdt_ctx_node_at(self, i, &node, &base, &cloud, &ncloud);
        uint64_t extra = 0;
        for (size_t c = 0; c < ncloud; c++)
            extra += cloud[c].hi - cloud[c].lo + 1;
        int n =
            snprintf(text + at, size - at, "%s%016" PRIx64 ":%" PRIu64, i ? " " : "", node, base);
        at += (size_t)n;
        if (extra) {
            n = snprintf(text + at, size - at, "+%" PRIu64, extra);
            at += (size_t)n;
        }
    }
    return text;
}
