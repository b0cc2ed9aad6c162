/*  crdt_log: append-only log (see log.h). */
#include "crdt/log.h"

#include <stdlib.h>

#include "crdt/internal.h"
#include "engram/error.h"

int crdt_log_append(crdt_scope_t *self, const char *key, uint64_t hlc, const void *data,
                    size_t len, crdt_scope_t **delta_p)
{
    if (crdt_scope_types_of(self, key) & ~(1u << CRDT_LOG))
        return ENGRAM_ETYPE;
    return crdt__scope_operate(self, CRDT_LOG, key, "", hlc, data, len, NULL, 0, delta_p);
}

static int s_log_order(const void *a, const void *b)
{
    const crdt_entry_view_t *x = a, *y = b;
    if (x->hlc != y->hlc)
        return x->hlc < y->hlc ? -1 : 1;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    return x->n < y->n ? -1 : (x->n > y->n);
}

int crdt_log_range(const crdt_scope_t *self, const char *key, crdt_entry_view_t **entries,
                   size_t *n)
{
    const crdt__object_t *log = crdt__scope_object(self, CRDT_LOG, key);
    if (!log)
        return ENGRAM_ENOTFOUND;
    int rc = crdt__object_views(log, entries, n);
    if (rc == 0)
        qsort(*entries, *n, sizeof **entries, s_log_order);
    return rc;
}

static int s_check_entry(const char *elem, const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    return *elem ? ENGRAM_EDECODE : 0;
}

const crdt_type_t crdt__log_type = {CRDT_LOG, "log", s_check_entry};
