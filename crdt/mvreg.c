/*  crdt_mvreg: multi-value register (see mvreg.h). */
#include "crdt/mvreg.h"

#include <stdlib.h>

#include "crdt/internal.h"
#include "engram/error.h"

int crdt_mvreg_write(crdt_scope_t *self, const char *key, uint64_t hlc, const void *data,
                     size_t len, crdt_scope_t **delta_p)
{
    if (crdt_scope_types_of(self, key) & ~(1u << CRDT_REG))
        return ENGRAM_ETYPE;
    crdt_dot_t *observed = NULL;
    size_t n = 0, cap = 0;
    int rc = crdt__object_dots(crdt__scope_object(self, CRDT_REG, key), NULL, &observed, &n,
                               &cap);
    if (rc == 0)
        rc = crdt__scope_operate(self, CRDT_REG, key, "", hlc, data, len, observed, n, delta_p);
    free(observed);
    return rc;
}

/*  Winner first: descending (hlc, node, n). */
static int s_newest_first(const void *a, const void *b)
{
    const crdt_entry_view_t *x = a, *y = b;
    if (x->hlc != y->hlc)
        return x->hlc > y->hlc ? -1 : 1;
    if (x->node != y->node)
        return x->node > y->node ? -1 : 1;
    return x->n > y->n ? -1 : (x->n < y->n);
}

int crdt_mvreg_read(const crdt_scope_t *self, const char *key, crdt_entry_view_t **siblings,
                    size_t *n)
{
    const crdt__object_t *reg = crdt__scope_object(self, CRDT_REG, key);
    if (!reg)
        return ENGRAM_ENOTFOUND;
    int rc = crdt__object_views(reg, siblings, n);
    if (rc == 0)
        qsort(*siblings, *n, sizeof **siblings, s_newest_first);
    return rc;
}

static int s_check_entry(const char *elem, const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    return *elem ? ENGRAM_EDECODE : 0;
}

const crdt_type_t crdt__mvreg_type = {CRDT_REG, "reg", s_check_entry};
