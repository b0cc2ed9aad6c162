/*  node/api reply: the per-request arena and the Reply under construction (internal.h). */
#include <czmq.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/array.h"
#include "crdt/awset.h"
#include "crdt/codec.h"
#include "crdt/counter.h"
#include "crdt/hlc.h"
#include "crdt/log.h"
#include "crdt/mvreg.h"
#include "crdt/value.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/api/internal.h"
#include "node/api/json.h"

/*  --- per-request arena: everything a Reply points at ---------------------------------- */

/*  Hands p to the arena, which calls destroy(p) when it is freed; NULL (after destroying p)
 *  if p is NULL or memory ran out. */
void *api__keep_with(api_arena_t *a, void *p, void (*destroy)(void *ptr))
{
    if (!p || a->failed) {
        a->failed = true;
        if (p)
            destroy(p);
        return NULL;
    }
    if (crdt_array_grow((void **)&a->owned, &a->cap, a->n + 1, sizeof *a->owned)) {
        a->failed = true;
        destroy(p);
        return NULL;
    }
    a->owned[a->n++] = (api_owned_t){p, destroy};
    return p;
}

void *api__keep(api_arena_t *a, void *p)
{
    return api__keep_with(a, p, free);
}

char *api__str(api_arena_t *a, const char *s)
{
    return api__keep(a, strdup(s ? s : ""));
}

void api__arena_free(api_arena_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        a->owned[i].destroy(a->owned[i].ptr);
    free(a->owned);
    memset(a, 0, sizeof *a);
}

void api__reply_header(Engram__Reply *reply, uint64_t id, int code)
{
    engram__reply__init(reply);
    reply->schema_major = ENGRAM_SCHEMA_MAJOR;
    reply->schema_minor = ENGRAM_SCHEMA_MINOR;
    reply->id = id;
    reply->code = code;
}

void api__reply_init(api_reply_t *r)
{
    memset(r, 0, sizeof *r);
    api__reply_header(&r->msg, 0, 0);
}

Engram__Item *api__add_item(api_reply_t *r)
{
    Engram__Item *item = api__keep(&r->arena, malloc(sizeof *item));
    if (!item)
        return NULL;
    engram__item__init(item);
    if (r->msg.n_items == r->cap) {
        /* the arena owns every block, so the array moves to a new one (no realloc) */
        size_t cap = r->cap ? r->cap * 2 : 8;
        Engram__Item **grown = api__keep(&r->arena, malloc(cap * sizeof *grown));
        if (!grown)
            return NULL;
        if (r->msg.n_items)
            memcpy(grown, r->items, r->msg.n_items * sizeof *grown);
        r->items = grown;
        r->cap = cap;
    }
    r->items[r->msg.n_items++] = item;
    r->msg.items = r->items;
    return item;
}

int api__fail(api_reply_t *r, int code, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, args);
    va_end(args);
    return code;
}
