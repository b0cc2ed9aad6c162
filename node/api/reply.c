/*  node/api reply: the per-request arena and the Reply under construction (internal.h).
 *
 *  A Reply's message is proto3 `string`, so it must be UTF-8 that any client's runtime
 *  decodes: what an agent sent is shown only through api__quote (escaped, bounded, cut at a
 *  character boundary), and api__fail cuts a message too long for its buffer at a character
 *  boundary too, so no message ever ends inside a character. */
#include <czmq.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

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
#include "node/common/wire.h"

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
    r->started_us = zclock_usecs();
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
    int full = vsnprintf(r->message, sizeof r->message, fmt, args);
    va_end(args);
    size_t len = strlen(r->message);
    if (full > 0 && (size_t)full >= sizeof r->message) { /* cut by vsnprintf: at a character */
        len = sizeof r->message - 4;
        while (len > 0 && ((unsigned char)r->message[len] & 0xc0) == 0x80)
            len--;
        memcpy(r->message + len, "...", 4);
        len += 3;
    }
    /* Every caller quotes what it was sent (api__quote); should one forget, a byte that is not
     * UTF-8 still never reaches the wire. */
    if (!node_wire_text_ok(r->message, len))
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)r->message[i] >= 0x80)
                r->message[i] = '?';
    return code;
}

/*  Whether a character may stand in a message as it is: visible, or the ASCII space. */
static bool s_shown_as_is(utf8proc_int32_t cp)
{
    if (cp == ' ')
        return true;
    if (cp == '\\')
        return false;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
        return false;
    default:
        return true;
    }
}

const char *api__quote(api_reply_t *r, const char *text)
{
    char out[API_QUOTE_BYTES + 1];
    size_t n = 0, fits = 0, len = text ? strlen(text) : 0; /* fits: where "..." would go */
    const utf8proc_uint8_t *at = (const utf8proc_uint8_t *)text;
    while (len) {
        char piece[16];
        utf8proc_int32_t cp;
        utf8proc_ssize_t step = utf8proc_iterate(at, (utf8proc_ssize_t)len, &cp);
        size_t size;
        if (step <= 0) { /* not UTF-8: the byte's value */
            size = (size_t)snprintf(piece, sizeof piece, "\\x%02X", at[0]);
            step = 1;
        } else if (cp == '\\') {
            size = (size_t)snprintf(piece, sizeof piece, "\\\\");
        } else if (!s_shown_as_is(cp)) {
            size = (size_t)snprintf(piece, sizeof piece, cp > 0xffff ? "\\U%08X" : "\\u%04X",
                                    (unsigned)cp);
        } else {
            memcpy(piece, at, (size_t)step);
            size = (size_t)step;
        }
        if (n + size > API_QUOTE_BYTES) { /* too long: cut after the last piece that leaves
                                              room for "..." */
            memcpy(out + fits, "...", 3);
            n = fits + 3;
            break;
        }
        memcpy(out + n, piece, size);
        n += size;
        if (n <= API_QUOTE_BYTES - 3)
            fits = n;
        at += step;
        len -= (size_t)step;
    }
    out[n] = '\0';
    char *quoted = api__str(&r->arena, out);
    return quoted ? quoted : "";
}

void api__refuse_bad_string(node_server_t *self, zframe_t *routing, Engram__Request **req_p,
                            const char *field)
{
    api_reply_t r;
    api__reply_init(&r);
    int rc = api__fail(&r, ENGRAM_EINVAL, "field '%s' is not valid UTF-8 or holds a NUL",
                       field ? field : "?");
    api__queue_reply(self, routing, (*req_p)->id, rc, &r);
    api__arena_free(&r.arena);
    engram__request__free_unpacked(*req_p, NULL);
    *req_p = NULL;
}
