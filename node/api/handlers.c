/*  node/api handlers: checks a request's names, scope and key, and runs its operation
 *  against the store: one handler per operation, and the dispatch between them.
 *
 *  Every message that mentions what a request sent quotes it with api__quote (reply.c).
 *  Paged reads (SET_MEMBERS, LOG_RANGE, HISTORY; LIST as before) return at most a page of
 *  the items the reader may see: hidden items are skipped and never counted, a cursor is the
 *  position of the last item shown (a set's element; a log entry's or history step's
 *  "HLC.NODE.N"), and next_cursor is "" unless a visible item follows. A set's page and a
 *  history's page seek to the cursor in the store and read only what they show and skip; a
 *  log's page loads and sorts the whole log (its entries are stored by dot, not by HLC). */
#include <arpa/inet.h>
#include <ctype.h>
#include <czmq.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "crdt/array.h"
#include "crdt/awset.h"
#include "crdt/codec.h"
#include "crdt/counter.h"
#include "crdt/ctx.h"
#include "crdt/hlc.h"
#include "crdt/log.h"
#include "crdt/mvreg.h"
#include "crdt/value.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/api/internal.h"
#include "node/api/json.h"
#include "node/common/names.h"
#include "node/common/wire.h"
#include "node/search/filter.h"

/*  About 100 years: a longer TTL is refused rather than overflow expires_at. */
#define MAX_TTL_MS (UINT64_C(100) * 365 * 24 * 3600 * 1000)

/*  --- names ------------------------------------------------------------------------ */

int64_t api__now_ms(void)
{
    return zclock_time();
}

int64_t api__mono_ms(void)
{
    return zclock_mono();
}

static const char *const s_kinds[] = {"user", "run", "app", "agent", "team"};

bool api__name_ok(const char *name)
{
    return !*name || node_name_ok(name, strlen(name), NULL);
}

/*  Resolves the scope an agent named into a storage id ("@agent" for private). */
int api__resolve(const Engram__Request *req, char *sid, api_reply_t *r)
{
    const char *scope = req->scope;
    if (strcmp(scope, "private") == 0) {
        if (snprintf(sid, MAX_SCOPE_BYTES + 2, "@%s", req->agent) > MAX_SCOPE_BYTES + 1)
            return api__fail(r, ENGRAM_ESCOPE, "agent name too long");
        return 0;
    }
    const char *colon = strchr(scope, ':');
    size_t kind_len = colon ? (size_t)(colon - scope) : 0;
    bool known = false;
    for (size_t i = 0; colon && i < sizeof s_kinds / sizeof s_kinds[0]; i++)
        known |= strlen(s_kinds[i]) == kind_len && strncmp(scope, s_kinds[i], kind_len) == 0;
    if (!known)
        return api__fail(r, ENGRAM_ESCOPE,
                         "invalid scope '%s': use private or KIND:ID with KIND one of user, run, "
                         "app, agent, team",
                         api__quote(r, scope));
    const char *id = colon + 1;
    if (!*id || strlen(scope) > MAX_SCOPE_BYTES)
        return api__fail(r, ENGRAM_ESCOPE, "invalid scope '%s': the id must have 1 to %d bytes",
                         api__quote(r, scope), MAX_SCOPE_BYTES);
    const char *why = NULL;
    if (!node_name_ok(id, strlen(id), &why))
        return api__fail(r, ENGRAM_ESCOPE, "invalid scope '%s': the id %s", api__quote(r, scope),
                         why);
    strcpy(sid, scope);
    return 0;
}

/*  Keys and set elements: 1 to ENGRAM_MAX_KEY_BYTES bytes of UTF-8 without NUL (the wire check
 *  refuses those before a handler runs), and a write that may create one (`creates`) refuses
 *  control characters (Cc: C0, DEL, C1), which would break every line-oriented listing and
 *  terminal that shows them; reads, removals and cursors take them, so that one stored before
 *  the rule (or by an older peer) can still be read and removed. Unlike names,
 *  keys may hold format characters (U+200D joins emoji, U+200F/U+202B order right-to-left
 *  text), separators and any assigned or unassigned code point: a key is data an agent
 *  chooses, often derived from content in any script, and never stands for who someone is;
 *  messages quote it escaped (api__quote). */
static int s_check_key(const char *key, const char *what, bool creates, api_reply_t *r)
{
    size_t len = strlen(key);
    if (len == 0)
        return api__fail(r, ENGRAM_EINVAL, "the %s must not be empty", what);
    if (len > ENGRAM_MAX_KEY_BYTES)
        return api__fail(r, ENGRAM_ETOOBIG, "the %s has %zu bytes; the limit is %d", what, len,
                         ENGRAM_MAX_KEY_BYTES);
    if (!node_wire_text_ok(key, len))
        return api__fail(r, ENGRAM_EINVAL, "the %s is not valid UTF-8", what);
    const utf8proc_uint8_t *at = (const utf8proc_uint8_t *)key;
    while (creates && len) { /* valid UTF-8: every step is positive */
        utf8proc_int32_t cp;
        utf8proc_ssize_t step = utf8proc_iterate(at, (utf8proc_ssize_t)len, &cp);
        if (utf8proc_category(cp) == UTF8PROC_CATEGORY_CC)
            return api__fail(r, ENGRAM_EINVAL, "the %s '%s' holds a control character", what,
                             api__quote(r, key));
        at += step;
        len -= (size_t)step;
    }
    return 0;
}

const char *api__type_name(unsigned types)
{
    for (unsigned t = 1; t <= CRDT_TYPE_MAX; t++)
        if (types & (1u << t))
            return crdt_type_by_id(t)->name;
    return "nothing";
}

static int s_check_type(unsigned types, crdt_type_id_t want, const char *key, api_reply_t *r)
{
    if (types & ~(1u << want))
        return api__fail(r, ENGRAM_ETYPE, "'%s' holds a %s, not a %s", api__quote(r, key),
                         api__type_name(types), crdt_type_by_id(want)->name);
    return 0;
}

/*  --- values and items ------------------------------------------------------------- */

static bool s_expired(const crdt_value_t *v, int64_t now)
{
    return v->expires_at_ms && v->expires_at_ms <= (uint64_t)now;
}

static char **s_strv(api_arena_t *a, char **strv, size_t n)
{
    char **copy = api__keep(a, calloc(n ? n : 1, sizeof *copy));
    for (size_t i = 0; copy && i < n; i++)
        copy[i] = api__str(a, strv[i]);
    return copy;
}

/*  Fills item from a stored register or log value; false if it is unreadable, expired, or
 *  (reader not NULL) hidden from the reader by its provenance. */
bool api__item_from_value(api_reply_t *r, Engram__Item *item, const crdt_entry_view_t *e,
                          const char *type, int64_t now, const api_reader_t *reader)
{
    crdt_value_t *v;
    if (crdt_value_decode(e->data, e->len, &v) != 0)
        return false;
    bool live = !s_expired(v, now) && (!reader || api__reader_may(reader, v));
    if (live) {
        item->type = (char *)type;
        uint8_t *data = api__keep(&r->arena, malloc(v->len ? v->len : 1));
        if (data && v->len)
            memcpy(data, v->data, v->len);
        item->value.data = data;
        item->value.len = v->len;
        item->meta_json = api__str(&r->arena, v->meta_json);
        item->author = api__str(&r->arena, v->author);
        item->user = api__str(&r->arena, v->user);
        item->agents = s_strv(&r->arena, v->agents, v->nagents);
        item->n_agents = v->nagents;
        item->resources = s_strv(&r->arena, v->resources, v->nresources);
        item->n_resources = v->nresources;
        item->hlc = e->hlc;
        item->node = e->node;
        item->n = e->n;
        item->created_hlc = v->created_hlc;
        item->expires_at_ms = v->expires_at_ms;
    }
    crdt_value_destroy(&v);
    return live;
}

/*  Builds the value a write stores: payload, metadata and provenance. */
static int s_make_value(const Engram__Request *req, const char *sid, uint64_t hlc,
                        uint64_t created_hlc, const uint8_t *data, size_t len,
                        crdt_value_t **value_p)
{
    crdt_value_t *v = crdt_value_new();
    int rc = v ? 0 : ENGRAM_ENOMEM;
    if (rc == 0) {
        v->created_hlc = created_hlc ? created_hlc : hlc;
        v->updated_hlc = hlc;
        v->expires_at_ms = req->ttl_ms ? (uint64_t)api__now_ms() + req->ttl_ms : 0;
        rc = crdt_value_set_data(v, data, len);
    }
    if (rc == 0)
        rc = crdt_value_set_meta(v, req->meta_json);
    if (rc == 0)
        rc = crdt_value_set_embedding(v, req->embedding.data, req->embedding.len);
    if (rc == 0)
        rc = api__set_provenance(v, req, sid);
    if (rc)
        crdt_value_destroy(&v);
    *value_p = v;
    return rc;
}

/*  --- writes ----------------------------------------------------------------------- */

/*  One mutation in progress: what the mutator function gets and fills. */
typedef struct {
    node_server_t *self;
    const Engram__Request *req;
    const char *sid;
    const char *key;
    crdt_scope_t *view; /* the object as stored, plus the scope's context */
    uint64_t hlc;
    api_reply_t *r;
    crdt_scope_t *delta;        /* out: owned */
    node_history_t history;     /* out */
    Engram__Item *event;        /* out: the item subscribers see */
    bool watched;               /* the scope has subscribers: the event is filled and sent */
    const crdt_value_t *source; /* SHARE: the private value being shared */
} s_op_t;

typedef int (*s_mutator_fn)(s_op_t *op);

static bool s_object_visible(const api_reader_t *reader, const crdt_scope_t *view, const char *key,
                             unsigned types, int64_t now);

/*  Whether what a delete or a set remove would remove is hidden from the writer: then it is
 *  answered as if absent, and nothing is removed. */
static bool s_removes_hidden(const s_op_t *op, unsigned types)
{
    const api_reader_t *reader = op->r->reader;
    if (!reader || !types)
        return false;
    if (op->req->op == ENGRAM__OP__DELETE)
        return !s_object_visible(reader, op->view, op->key, types, api__now_ms());
    if (op->req->op != ENGRAM__OP__SET_REMOVE)
        return false;
    crdt_entry_view_t *adds = NULL;
    size_t n = 0;
    bool visible = false;
    if (crdt_awset_entries(op->view, op->key, op->req->elem, &adds, &n) == 0) {
        for (size_t i = 0; i < n && !visible; i++)
            visible = api__add_visible(reader, &adds[i]);
        free(adds);
        return !visible;
    }
    return false;
}

/*  Runs one mutation: load a view, check the type, mutate, persist, record the event. */
static int s_mutate(node_server_t *self, const Engram__Request *req, api_reply_t *r,
                    const char *sid, const char *key, node_view_t what, const char *elem,
                    crdt_type_id_t type, s_mutator_fn fn, const crdt_value_t *source)
{
    s_op_t op = {.self = self,
                 .req = req,
                 .sid = sid,
                 .key = key,
                 .r = r,
                 .source = source,
                 .watched = api__watched(self, sid)};
    crdt_scope_t *before = NULL;
    unsigned types = 0;
    if (self->cluster && sid[0] != '@' && node_cluster_removed(self->cluster))
        return api__fail(r, ENGRAM_EDENIED,
                         "this node was removed from its cluster: shared "
                         "scopes are read-only here");
    int rc = node_store_view(self->store, sid, key, what, elem, &op.view, &types);
    if (rc)
        return api__fail(r, rc, "cannot read '%s': %s", api__quote(r, key), engram_strerror(rc));
    if (type)
        rc = s_check_type(types, type, key, r);
    if (rc == 0 && s_removes_hidden(&op, types))
        rc = op.req->op == ENGRAM__OP__DELETE
                 ? api__fail(r, ENGRAM_ENOTFOUND, "'%s': %s", api__quote(r, key),
                             engram_strerror(ENGRAM_ENOTFOUND))
                 : api__fail(r, ENGRAM_ENOTFOUND, "'%s' in '%s': %s", api__quote(r, req->elem),
                             api__quote(r, key), engram_strerror(ENGRAM_ENOTFOUND));
    if (rc == 0) {
        before = crdt_scope_dup(op.view, 0);
        op.event = api__keep(&r->arena, malloc(sizeof *op.event));
        rc = before && op.event ? 0 : api__fail(r, ENGRAM_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        engram__item__init(op.event);
        op.event->key = api__str(&r->arena, key);
        op.event->author = (char *)req->agent;
        op.event->user = (char *)req->user;
        op.hlc = node_store_hlc_now(self->store, (uint64_t)api__now_ms());
        op.history = (node_history_t){.agent = req->agent, .user = req->user, .hlc = op.hlc};
        rc = fn(&op);
    }
    if (rc == 0) {
        rc = node_store_apply(self->store, sid, key, before, op.delta, &op.history);
        if (rc)
            api__fail(r, rc, "the write failed: %s", engram_strerror(rc));
    }
    if (rc == 0) {
        r->wrote = true;
        self->stats.writes++;
        if (self->cluster)
            node_cluster_local(self->cluster, sid, op.delta, crdt_scope_ctx(before),
                               req->replicas > 1);
        uint64_t replica = node_store_replica(self->store);
        op.event->node = replica;
        op.event->n = crdt_ctx_max(node_store_ctx(self->store, sid), replica);
        r->dot = (crdt_dot_t){.node = replica, .n = op.event->n};
        Engram__Event *event = op.watched ? api__keep(&r->arena, malloc(sizeof *event)) : NULL;
        if (event) {
            engram__event__init(event);
            event->scope = (char *)r->scope;
            event->key = op.event->key;
            event->op = (char *)op.history.op;
            event->item = op.event;
            event->author = (char *)req->agent;
            r->event = event;
        }
    }
    crdt_scope_destroy(&op.delta);
    crdt_scope_destroy(&before);
    crdt_scope_destroy(&op.view);
    return rc;
}

/*  The value a reader sees an object by: a register's winner (its first live sibling the
 *  reader may read: NULL reader, any), a log's last live entry the reader may read; NULL when
 *  there is none (another type, nothing readable, or out of memory). The caller destroys it. */
static crdt_value_t *s_shown_value(const crdt_scope_t *view, const char *key, crdt_type_id_t type,
                                   const api_reader_t *reader, int64_t now)
{
    crdt_entry_view_t *entries = NULL;
    size_t n = 0;
    int rc = type == CRDT_REG   ? crdt_mvreg_read(view, key, &entries, &n)
             : type == CRDT_LOG ? crdt_log_range(view, key, &entries, &n)
                                : ENGRAM_ENOTFOUND;
    crdt_value_t *shown = NULL;
    for (size_t i = 0; rc == 0 && i < n && !shown; i++) {
        const crdt_entry_view_t *e = &entries[type == CRDT_LOG ? n - 1 - i : i];
        crdt_value_t *v;
        if (crdt_value_decode(e->data, e->len, &v) != 0)
            continue;
        if (!s_expired(v, now) && (!reader || api__reader_may(reader, v)))
            shown = v;
        else
            crdt_value_destroy(&v);
    }
    free(entries);
    return shown;
}

/*  Encodes v, runs `write` with it, and fills the history and the event from it. */
static int s_write_encoded(s_op_t *op, crdt_value_t *v, const char *what, const char *type,
                           bool as_log)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = crdt_value_encode(v, &buf, &len);
    if (rc == 0 && as_log)
        rc = crdt_log_append(op->view, op->key, op->hlc, buf, len, &op->delta);
    else if (rc == 0)
        rc = crdt_mvreg_write(op->view, op->key, op->hlc, buf, len, &op->delta);
    if (rc == 0) {
        op->history.op = what;
        op->history.expires_at_ms = v->expires_at_ms;
        crdt_entry_view_t e = {"", 0, 0, op->hlc, buf, len};
        if (op->watched)
            api__item_from_value(op->r, op->event, &e, type, api__now_ms(), NULL);
        /* The history keeps the encoded value, provenance included, so that its readers are
         * judged as the value's; the arena keeps it alive until the commit. */
        op->history.value = api__keep(&op->r->arena, buf);
        op->history.len = len;
        buf = NULL;
        rc = op->history.value ? 0 : ENGRAM_ENOMEM;
    }
    free(buf);
    crdt_value_destroy(&v);
    return rc ? api__fail(op->r, rc, "'%s': %s", api__quote(op->r, op->key), engram_strerror(rc))
              : 0;
}

/*  The filter a request gives (filter_json), parsed into *filter; NULL when none is given. */
static int s_parse_filter(const Engram__Request *req, api_reply_t *r, search_filter_t **filter)
{
    *filter = NULL;
    if (!req->filter_json[0])
        return 0;
    char why[200];
    int rc =
        search_filter_parse(req->filter_json, strlen(req->filter_json), filter, why, sizeof why);
    return rc ? api__fail(r, rc, "the filter is not valid: %s", why) : 0;
}

/*  A register write. An overwrite keeps the creation time of the winner the writer sees (a
 *  hidden one tells nothing) and, when the write gives no metadata, its metadata too (as
 *  mem0's update does); metadata given replaces it ({} leaves none). */
static int s_put(s_op_t *op)
{
    crdt_value_t *winner = s_shown_value(op->view, op->key, CRDT_REG, op->r->reader, api__now_ms());
    crdt_value_t *v;
    int rc = s_make_value(op->req, op->sid, op->hlc, winner ? winner->created_hlc : 0,
                          op->req->value.data, op->req->value.len, &v);
    if (rc == 0 && winner && !op->req->meta_json[0])
        rc = crdt_value_set_meta(v, winner->meta_json);
    crdt_value_destroy(&winner);
    if (rc) {
        crdt_value_destroy(&v);
        return api__fail(op->r, rc, "%s", engram_strerror(rc));
    }
    return s_write_encoded(op, v, "put", "reg", false);
}

/*  SHARE: a copy of the private value, keeping its user, metadata, expiry and provenance,
 *  with the sharing agent added to the contributors. */
static int s_share(s_op_t *op)
{
    const crdt_value_t *src = op->source;
    crdt_value_t *v;
    int rc = s_make_value(op->req, op->sid, op->hlc, src->created_hlc, src->data, src->len, &v);
    if (rc == 0)
        rc = crdt_value_set_meta(v, src->meta_json);
    if (rc == 0)
        rc = crdt_value_set_user(v, src->user);
    if (rc == 0)
        rc = crdt_value_merge_provenance(v, src);
    if (rc == 0 && !op->req->embedding.len && src->embedding_len) {
        /* the private memory's, unless one is given: of the target scope's dimension */
        rc = api__check_embedding_of(op->self, op->sid, src->embedding, src->embedding_len, op->r);
        if (rc) {
            crdt_value_destroy(&v);
            return rc;
        }
        rc = crdt_value_set_embedding(v, src->embedding, src->embedding_len);
    }
    if (rc) {
        crdt_value_destroy(&v);
        return api__fail(op->r, rc, "%s", engram_strerror(rc));
    }
    v->expires_at_ms = src->expires_at_ms;
    /* what is shared passes the target's write policy, as a write of it would */
    if ((rc = api__redact_shared(op->self, op->sid, op->r, v)) != 0) {
        crdt_value_destroy(&v);
        return rc;
    }
    return s_write_encoded(op, v, "share", "reg", false);
}

static int s_log_append(s_op_t *op)
{
    crdt_value_t *v;
    int rc =
        s_make_value(op->req, op->sid, op->hlc, 0, op->req->value.data, op->req->value.len, &v);
    if (rc)
        return api__fail(op->r, rc, "%s", engram_strerror(rc));
    return s_write_encoded(op, v, "log_append", "log", true);
}

static int s_delete(s_op_t *op)
{
    op->history.op = "delete";
    int rc = crdt_scope_forget(op->view, op->key, &op->delta);
    return rc ? api__fail(op->r, rc, "'%s': %s", api__quote(op->r, op->key), engram_strerror(rc))
              : 0;
}

static int s_set_op(s_op_t *op)
{
    bool add = op->req->op == ENGRAM__OP__SET_ADD;
    op->history.op = add ? "set_add" : "set_remove";
    op->history.elem = op->req->elem;
    op->event->type = "set";
    op->event->value.data = (uint8_t *)op->req->elem;
    op->event->value.len = strlen(op->req->elem);
    if (!add) {
        int rc = crdt_awset_remove(op->view, op->key, op->req->elem, &op->delta);
        return rc ? api__fail(op->r, rc, "'%s' in '%s': %s", api__quote(op->r, op->req->elem),
                              api__quote(op->r, op->key), engram_strerror(rc))
                  : 0;
    }
    /* the add carries its provenance: a value with no payload */
    crdt_value_t *v = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = s_make_value(op->req, op->sid, op->hlc, 0, NULL, 0, &v);
    if (rc == 0)
        rc = crdt_value_encode(v, &buf, &len);
    if (rc == 0)
        rc = crdt_awset_add(op->view, op->key, op->req->elem, buf, len, &op->delta);
    if (rc == 0) { /* the history keeps the add's provenance, judged as the element's */
        op->history.value = api__keep(&op->r->arena, buf);
        op->history.len = len;
        buf = NULL;
        rc = op->history.value ? 0 : ENGRAM_ENOMEM;
    }
    if (rc == 0) {
        op->event->author = api__str(&op->r->arena, v->author);
        op->event->agents = s_strv(&op->r->arena, v->agents, v->nagents);
        op->event->n_agents = v->nagents;
        op->event->resources = s_strv(&op->r->arena, v->resources, v->nresources);
        op->event->n_resources = v->nresources;
    }
    free(buf);
    crdt_value_destroy(&v);
    return rc ? api__fail(op->r, rc, "'%s' in '%s': %s", api__quote(op->r, op->req->elem),
                          api__quote(op->r, op->key), engram_strerror(rc))
              : 0;
}

static int s_counter_add(s_op_t *op)
{
    op->history.op = "counter_add";
    op->history.amount = op->req->amount;
    op->event->type = "counter";
    op->event->amount = op->req->amount;
    /* each (agent, user) keeps its own contribution, so a reader's sum leaves out those it
     * may not see */
    char *contributor = api__keep(
        &op->r->arena, zsys_sprintf("%s%c%s", op->req->agent, API_CONTRIBUTOR_SEP, op->req->user));
    if (!contributor)
        return api__fail(op->r, ENGRAM_ENOMEM, "out of memory");
    int rc = crdt_counter_add(op->view, op->key, contributor, op->req->amount, &op->delta);
    if (rc == 0) {
        api_reader_t reader = {op->self, op->req->agent, op->req->user, op->sid};
        rc = api__visible_sum(&reader, op->view, op->key, &op->r->msg.number);
    }
    return rc ? api__fail(op->r, rc, "counter '%s': %s", api__quote(op->r, op->key),
                          engram_strerror(rc))
              : 0;
}

/*  Keeps an access statement (a packed SignedStatement the acl accepted) in sys:acl, as a
 *  register under the hex of its hash whose value's payload is the statement, unless sys:acl
 *  holds it already: it replicates like any write, and no register is written twice. */
int api__write_statement(node_server_t *self, const Engram__Request *req, api_reply_t *r)
{
    uint8_t hash[16];
    char key[2 * sizeof hash + 1];
    crypto_generichash(hash, sizeof hash, req->statement.data, req->statement.len, NULL, 0);
    sodium_bin2hex(key, sizeof key, hash, sizeof hash);
    crdt_scope_t *view = NULL;
    unsigned types = 0;
    int rc =
        node_store_view(self->store, API_ACL_SCOPE, key, NODE_VIEW_OBJECT, NULL, &view, &types);
    crdt_scope_destroy(&view);
    if (rc)
        return api__fail(r, rc, "cannot read sys:acl: %s", engram_strerror(rc));
    if (types) /* held already: a statement is written once */
        return 0;
    Engram__Request put = *req;
    put.value = req->statement;
    put.meta_json = "";
    put.ttl_ms = 0;
    put.n_sources = 0;
    put.agent = "";
    put.user = "";
    r->sid = API_ACL_SCOPE;
    r->scope = API_ACL_SCOPE;
    return s_mutate(self, &put, r, API_ACL_SCOPE, key, NODE_VIEW_OBJECT, NULL, CRDT_REG, s_put,
                    NULL);
}

/*  --- reads ------------------------------------------------------------------------ */

/*  Whether any reg version, log entry, set element or counter contribution of key in view is
 *  readable by reader (and not expired). */
static bool s_object_visible(const api_reader_t *reader, const crdt_scope_t *view, const char *key,
                             unsigned types, int64_t now)
{
    for (unsigned t = 1; t <= CRDT_TYPE_MAX; t++) {
        if (!(types & (1u << t)))
            continue;
        if (t == CRDT_SET || t == CRDT_COUNTER) {
            if (api__fragments_visible(reader, view, key, t))
                return true;
            continue;
        }
        crdt_entry_view_t *entries = NULL;
        size_t n = 0;
        int rc = t == CRDT_REG ? crdt_mvreg_read(view, key, &entries, &n)
                               : crdt_log_range(view, key, &entries, &n);
        bool visible = false;
        for (size_t i = 0; rc == 0 && i < n && !visible; i++) {
            crdt_value_t *v;
            if (crdt_value_decode(entries[i].data, entries[i].len, &v) == 0) {
                visible = !s_expired(v, now) && api__reader_may(reader, v);
                crdt_value_destroy(&v);
            }
        }
        free(entries);
        if (visible)
            return true;
    }
    return false;
}

static int s_load(node_server_t *self, api_reply_t *r, const char *sid, const char *key,
                  crdt_type_id_t type, crdt_scope_t **view)
{
    unsigned types = 0;
    int rc = node_store_view(self->store, sid, key, NODE_VIEW_OBJECT, NULL, view, &types);
    if (rc)
        return api__fail(r, rc, "cannot read '%s': %s", api__quote(r, key), engram_strerror(rc));
    if ((types & ~(1u << type)) && r->reader &&
        !s_object_visible(r->reader, *view, key, types, api__now_ms()))
        types = 0; /* another type, but hidden: as if nothing were there */
    rc = s_check_type(types, type, key, r);
    if (rc == 0 && !(types & (1u << type)))
        rc = api__fail(r, ENGRAM_ENOTFOUND, "'%s' not found in %s", api__quote(r, key), r->scope);
    if (rc)
        crdt_scope_destroy(view);
    return rc;
}

/*  One item per live value, in the given order; expired values are hidden. */
static int s_add_values(api_reply_t *r, const char *key, const crdt_entry_view_t *entries, size_t n,
                        const char *type, const api_reader_t *reader, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        Engram__Item *item = api__add_item(r);
        if (!item)
            return api__fail(r, ENGRAM_ENOMEM, "out of memory");
        item->key = (char *)key;
        if (!api__item_from_value(r, item, &entries[i], type, now, reader))
            r->msg.n_items--;
    }
    return 0;
}

/*  --- pages: SET_MEMBERS, LOG_RANGE and HISTORY return at most a page of items -------- */

/*  The page size a read gets: its limit, or the node's list limit, at most ENGRAM_MAX_PAGE. */
static unsigned s_page_limit(const node_server_t *self, const Engram__Request *req)
{
    unsigned limit = req->limit ? req->limit : self->config.list_limit;
    return limit && limit < ENGRAM_MAX_PAGE ? limit : ENGRAM_MAX_PAGE;
}

/*  A log's or a history's cursor: the position of the last item shown, "HLC.NODE.N" in 16
 *  lower-case hex digits each. */
#define S_POSITION_CURSOR_CHARS (3 * 16 + 2)

static int s_position_cursor(api_reply_t *r, node_position_t at)
{
    char *cursor = api__keep(&r->arena, malloc(S_POSITION_CURSOR_CHARS + 1));
    if (!cursor)
        return api__fail(r, ENGRAM_ENOMEM, "out of memory");
    snprintf(cursor, S_POSITION_CURSOR_CHARS + 1, "%016" PRIx64 ".%016" PRIx64 ".%016" PRIx64,
             at.hlc, at.dot.node, at.dot.n);
    r->msg.next_cursor = cursor;
    return 0;
}

/*  Reads a cursor s_position_cursor wrote; ENGRAM_EINVAL for anything else. */
static int s_parse_position(api_reply_t *r, const char *cursor, node_position_t *at)
{
    uint64_t parts[3];
    bool ok = strlen(cursor) == S_POSITION_CURSOR_CHARS;
    for (int i = 0; ok && i < 3; i++) {
        const char *part = cursor + 17 * i;
        ok = strspn(part, "0123456789abcdef") >= 16 && (i == 2 || part[16] == '.');
        char hex[17];
        memcpy(hex, part, 16);
        hex[16] = '\0';
        parts[i] = ok ? strtoull(hex, NULL, 16) : 0;
    }
    if (!ok)
        return api__fail(r, ENGRAM_EINVAL,
                         "the cursor '%s' is not one this read returned: give the next_cursor "
                         "of the previous page, or none to start",
                         api__quote(r, cursor));
    *at = (node_position_t){parts[0], {parts[1], parts[2]}};
    return 0;
}

/*  Whether a read found nothing: only a first page that shows no item is "not found" (a later
 *  page may find the rest removed since). */
static int s_page_found(api_reply_t *r, const Engram__Request *req)
{
    if (r->msg.n_items || req->cursor[0])
        return 0;
    return api__fail(r, ENGRAM_ENOTFOUND, "'%s' not found in %s", api__quote(r, req->key),
                     r->scope);
}

/*  A later page (a cursor given) of an object removed since the first: an empty last page,
 *  not ENGRAM_ENOTFOUND, so that a reader gathering pages keeps what it read. */
static int s_later_page_gone(api_reply_t *r, const Engram__Request *req, int rc)
{
    if (rc != ENGRAM_ENOTFOUND || !req->cursor[0])
        return rc;
    r->message[0] = '\0';
    return 0;
}

/*  Whether a page is full before an item of `len` bytes: `limit` items, or the page's values
 *  would pass ENGRAM_MAX_PAGE_BYTES (a first item always fits), so that a reply stays far below
 *  the frame limit whatever the values' sizes. */
static bool s_page_full(const api_reply_t *r, unsigned limit, size_t bytes, size_t len)
{
    return r->msg.n_items >= limit || (r->msg.n_items && bytes + len > ENGRAM_MAX_PAGE_BYTES);
}

/*  A page of set members being filled from the store's entries, in element order. */
typedef struct {
    api_reply_t *r;
    const char *key;
    unsigned limit;
    const char *shown; /* the last element shown (in the arena), NULL before the first */
    size_t bytes;      /* the elements and metadata shown so far */
    bool more;         /* a visible element follows the page */
} s_members_page_t;

static int s_member_entry(void *arg, crdt_type_id_t type, const crdt_entry_view_t *add)
{
    s_members_page_t *page = arg;
    api_reply_t *r = page->r;
    if (type != CRDT_SET || (page->shown && strcmp(page->shown, add->elem) == 0) ||
        !api__add_visible(r->reader, add))
        return 0;
    /* the add's metadata and provenance, kept in a value without payload (s_set_op) */
    Engram__Item shown = ENGRAM__ITEM__INIT;
    api__item_from_value(r, &shown, add, "set", api__now_ms(), NULL);
    size_t len = strlen(add->elem) + strlen(shown.meta_json);
    if (s_page_full(r, page->limit, page->bytes, len)) {
        page->more = true;
        return NODE_STORE_STOP;
    }
    page->bytes += len;
    Engram__Item *item = api__add_item(r);
    char *elem = api__str(&r->arena, add->elem);
    if (!item || !elem)
        return api__fail(r, ENGRAM_ENOMEM, "out of memory");
    *item = shown;
    item->key = (char *)page->key;
    item->type = "set";
    item->value.data = (uint8_t *)elem;
    item->value.len = strlen(elem);
    page->shown = elem;
    return 0;
}

/*  An element is shown when one of its adds is readable; hidden elements are skipped and
 *  never counted. The page reads the set's entries from the cursor's element on, up to the
 *  first visible element past the page (which only says that a further page exists). */
static int s_members(node_server_t *self, const Engram__Request *req, const char *sid,
                     api_reply_t *r)
{
    if (req->cursor[0]) {
        int rc = s_check_key(req->cursor, "cursor (an element)", false, r);
        if (rc)
            return rc;
    }
    crdt_scope_t *view = NULL;
    unsigned types = 0;
    int rc = node_store_view(self->store, sid, req->key, NODE_VIEW_CONTEXT, NULL, &view, &types);
    crdt_scope_destroy(&view);
    if (rc)
        return api__fail(r, rc, "cannot read '%s': %s", api__quote(r, req->key),
                         engram_strerror(rc));
    if (types != 1u << CRDT_SET) { /* absent, or another type: the whole object decides */
        if ((rc = s_load(self, r, sid, req->key, CRDT_SET, &view)) != 0)
            return s_later_page_gone(r, req, rc);
        crdt_scope_destroy(&view);
    }
    s_members_page_t page = {r, req->key, s_page_limit(self, req), NULL, 0, false};
    rc = node_store_object_entries(self->store, sid, req->key, req->cursor, s_member_entry, &page);
    if (rc)
        return r->message[0] ? rc
                             : api__fail(r, rc, "cannot read '%s': %s", api__quote(r, req->key),
                                         engram_strerror(rc));
    if (page.more)
        r->msg.next_cursor = (char *)page.shown;
    return s_page_found(r, req);
}

static int s_counter_get(node_server_t *self, const Engram__Request *req, const char *sid,
                         api_reply_t *r)
{
    crdt_scope_t *view;
    int rc = s_load(self, r, sid, req->key, CRDT_COUNTER, &view);
    if (rc == 0 && !api__fragments_visible(r->reader, view, req->key, CRDT_COUNTER))
        rc = api__fail(r, ENGRAM_ENOTFOUND, "'%s' not found in %s", api__quote(r, req->key),
                       r->scope);
    else if (rc == 0)
        rc = api__visible_sum(r->reader, view, req->key, &r->msg.number);
    crdt_scope_destroy(&view);
    return rc ? (r->message[0] ? rc
                               : api__fail(r, rc, "counter '%s': %s", api__quote(r, req->key),
                                           engram_strerror(rc)))
              : 0;
}

/*  Reads a register's siblings or a log's entries (read: crdt_mvreg_read or crdt_log_range)
 *  into the reply's items. */
static int s_read_values(node_server_t *self, const Engram__Request *req, const char *sid,
                         api_reply_t *r, crdt_type_id_t type,
                         int (*read)(const crdt_scope_t *view, const char *key,
                                     crdt_entry_view_t **entries, size_t *n))
{
    crdt_scope_t *view;
    int rc = s_load(self, r, sid, req->key, type, &view);
    if (rc)
        return rc;
    crdt_entry_view_t *entries;
    size_t n;
    rc = read(view, req->key, &entries, &n);
    if (rc == 0) {
        rc = s_add_values(r, req->key, entries, n, crdt_type_by_id(type)->name, r->reader,
                          api__now_ms());
        free(entries);
    }
    crdt_scope_destroy(&view);
    /* hidden and expired alike: nothing tells a hidden value from no value */
    if (rc == 0 && r->msg.n_items == 0)
        rc = api__fail(r, ENGRAM_ENOTFOUND, "'%s' not found in %s", api__quote(r, req->key),
                       r->scope);
    return rc;
}

/*  GET as of a past time: the register's versions live then, replayed from its history
 *  (node_store_history): each step stamped at or before the time adds the version it wrote
 *  and removes the versions it superseded (the dots it removed; every earlier version for a
 *  step that says removed_all). HLC order respects causality, so a version is always written
 *  before a step removes it. The versions left, not expired at that time, that the reader may
 *  read are the answer, as GET gives them (newest first); none is ENGRAM_ENOTFOUND, whether
 *  hidden, expired, of another type or absent. The history reaches as far back as this node
 *  holds steps (node/store/store.h, "History"); the cost is the object's steps up to the
 *  time, read in order. */
typedef struct {
    crdt_entry_view_t *versions; /* elem "", data owned */
    size_t n;
    size_t cap;
    uint64_t until; /* the last stamp of the time's millisecond */
} s_replay_t;

static void s_replay_remove(s_replay_t *p, size_t j)
{
    free((void *)p->versions[j].data);
    p->versions[j] = p->versions[--p->n];
}

static int s_replay_step(void *arg, const node_step_t *step)
{
    s_replay_t *p = arg;
    if (step->hlc > p->until)
        return NODE_STORE_STOP;
    if (step->removed_all) {
        for (size_t j = p->n; j-- > 0;)
            if (p->versions[j].hlc < step->hlc)
                s_replay_remove(p, j);
    }
    for (size_t i = 0; i < step->nremoved; i++)
        for (size_t j = 0; j < p->n; j++)
            if (p->versions[j].node == step->removed[i].node &&
                p->versions[j].n == step->removed[i].n) {
                s_replay_remove(p, j);
                break;
            }
    if (step->type != CRDT_REG || !step->value)
        return 0;
    if (crdt_array_grow((void **)&p->versions, &p->cap, p->n + 1, sizeof *p->versions))
        return ENGRAM_ENOMEM;
    uint8_t *copy = malloc(step->len);
    if (!copy)
        return ENGRAM_ENOMEM;
    memcpy(copy, step->value, step->len);
    p->versions[p->n++] =
        (crdt_entry_view_t){"", step->dot.node, step->dot.n, step->hlc, copy, step->len};
    return 0;
}

static int s_cmp_newest_first(const void *a, const void *b)
{
    const crdt_entry_view_t *x = a, *y = b;
    if (x->hlc != y->hlc)
        return x->hlc > y->hlc ? -1 : 1;
    if (x->node != y->node)
        return x->node > y->node ? -1 : 1;
    return (x->n < y->n) - (x->n > y->n);
}

static int s_get_as_of(node_server_t *self, const Engram__Request *req, const char *sid,
                       api_reply_t *r)
{
    char when[32];
    time_t seconds = (time_t)(req->as_of_ms / 1000);
    struct tm tm;
    const uint64_t clock_end_ms = (UINT64_C(1) << (64 - ENGRAM_HLC_LOGICAL_BITS)) - 1;
    if (req->as_of_ms >= clock_end_ms || !gmtime_r(&seconds, &tm))
        return api__fail(r, ENGRAM_EINVAL, "as_of_ms %" PRIu64 " is past the clock's range",
                         req->as_of_ms);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    s_replay_t p = {NULL, 0, 0, ((req->as_of_ms + 1) << ENGRAM_HLC_LOGICAL_BITS) - 1};
    int rc = node_store_history(self->store, sid, req->key, NULL, s_replay_step, &p);
    if (rc == 0 && p.n) {
        qsort(p.versions, p.n, sizeof *p.versions, s_cmp_newest_first);
        rc = s_add_values(r, req->key, p.versions, p.n, "reg", r->reader, (int64_t)req->as_of_ms);
    } else if (rc) {
        api__fail(r, rc, "history of '%s': %s", api__quote(r, req->key), engram_strerror(rc));
    }
    for (size_t i = 0; i < p.n; i++)
        free((void *)p.versions[i].data);
    free(p.versions);
    if (rc == 0 && r->msg.n_items == 0) /* hidden, expired, another type or absent alike */
        rc = api__fail(r, ENGRAM_ENOTFOUND, "'%s' had no value in %s at %s",
                       api__quote(r, req->key), r->scope, when);
    return rc;
}

/*  A page of a log in its order (HLC, then dot), after the cursor's position. The store keeps
 *  a log's entries by dot, not by HLC, so the whole log is loaded and sorted for each page;
 *  only the page's values are decoded for the reader. Hidden and expired entries are skipped
 *  and never counted. */
static int s_log_page(node_server_t *self, const Engram__Request *req, const char *sid,
                      api_reply_t *r)
{
    node_position_t after = {0};
    int rc = req->cursor[0] ? s_parse_position(r, req->cursor, &after) : 0;
    crdt_scope_t *view = NULL;
    if (rc)
        return rc;
    if ((rc = s_load(self, r, sid, req->key, CRDT_LOG, &view)) != 0)
        return s_later_page_gone(r, req, rc);
    crdt_entry_view_t *entries = NULL;
    size_t n = 0;
    rc = crdt_log_range(view, req->key, &entries, &n);
    size_t i = 0;
    if (req->cursor[0]) /* entries are sorted by (hlc, node, n): skip those up to the cursor */
        while (i < n && (entries[i].hlc < after.hlc ||
                         (entries[i].hlc == after.hlc &&
                          (entries[i].node < after.dot.node ||
                           (entries[i].node == after.dot.node && entries[i].n <= after.dot.n)))))
            i++;
    unsigned limit = s_page_limit(self, req);
    int64_t now = api__now_ms();
    bool more = false;
    size_t bytes = 0;
    for (; rc == 0 && i < n; i++) {
        Engram__Item item = ENGRAM__ITEM__INIT;
        if (!api__item_from_value(r, &item, &entries[i], "log", now, r->reader))
            continue;
        if (s_page_full(r, limit, bytes, item.value.len + strlen(item.meta_json))) {
            more = true;
            break;
        }
        bytes += item.value.len + strlen(item.meta_json);
        Engram__Item *kept = api__add_item(r);
        if (!kept) {
            rc = api__fail(r, ENGRAM_ENOMEM, "out of memory");
            break;
        }
        *kept = item;
        kept->key = (char *)req->key;
    }
    if (rc == 0 && more) {
        const Engram__Item *last = r->items[r->msg.n_items - 1];
        rc = s_position_cursor(r, (node_position_t){last->hlc, {last->node, last->n}});
    }
    free(entries);
    crdt_scope_destroy(&view);
    return rc ? rc : s_page_found(r, req);
}

/*  A listed key's preview: the first bytes of its value, at most S_PREVIEW_BYTES in all,
 *  cut at a UTF-8 character boundary and ending with U+2026 when cut (a value that is not
 *  UTF-8 is cut before the continuation bytes at the cut, whatever they belong to). */
#define S_PREVIEW_BYTES 80
#define S_ELLIPSIS      "\xe2\x80\xa6"

static int s_preview(api_reply_t *r, Engram__Item *item, const crdt_value_t *v)
{
    size_t keep = v->len;
    bool cut = v->len > S_PREVIEW_BYTES;
    if (cut) {
        keep = S_PREVIEW_BYTES - strlen(S_ELLIPSIS);
        while (keep > 0 && (v->data[keep] & 0xc0) == 0x80)
            keep--;
    }
    uint8_t *preview = api__keep(&r->arena, malloc(S_PREVIEW_BYTES + 1));
    if (!preview)
        return api__fail(r, ENGRAM_ENOMEM, "out of memory");
    if (keep)
        memcpy(preview, v->data, keep);
    if (cut)
        memcpy(preview + keep, S_ELLIPSIS, strlen(S_ELLIPSIS));
    item->value.data = preview;
    item->value.len = keep + (cut ? strlen(S_ELLIPSIS) : 0);
    return 0;
}

/*  Visits one key the reader may see, with the value it sees of a register or a log (NULL
 *  for another type): returns 0 to go on, S_WALK_STOP to stop before the key, or an error. */
#define S_WALK_STOP 1
typedef int (*s_key_fn)(void *arg, const node_listed_t *key, const crdt_value_t *shown);

/*  Walks the keys of sid under req's prefix after req's cursor, in key order, a store page at
 *  a time, and calls fn for each the reader may see (of a type in `types`, a mask of
 *  1 << CRDT_*); hidden keys are skipped unseen. Returns 0 once fn stopped or the keys ran
 *  out, else the error (in r). LIST and FORGET walk with it. */
static int s_walk_keys(node_server_t *self, const Engram__Request *req, const char *sid,
                       api_reply_t *r, unsigned types, s_key_fn fn, void *arg)
{
    int64_t now = api__now_ms();
    char cursor[ENGRAM_MAX_KEY_BYTES + 1];
    snprintf(cursor, sizeof cursor, "%s", req->cursor);
    int rc = 0;
    for (bool more = true; rc == 0 && more;) {
        node_listed_t *keys;
        size_t n;
        rc = node_store_list(self->store, sid, req->prefix, cursor, self->config.list_limit,
                             (uint64_t)now, &keys, &n, &more);
        if (rc)
            return api__fail(r, rc, "cannot list %s: %s", r->scope, engram_strerror(rc));
        for (size_t i = 0; rc == 0 && i < n; i++) {
            if (!(types & (1u << keys[i].type)))
                continue;
            crdt_scope_t *view = NULL;
            unsigned held = 0;
            bool visible = node_store_view(self->store, sid, keys[i].key, NODE_VIEW_OBJECT, NULL,
                                           &view, &held) == 0 &&
                           s_object_visible(r->reader, view, keys[i].key, held, now);
            crdt_value_t *shown =
                visible ? s_shown_value(view, keys[i].key, keys[i].type, r->reader, now) : NULL;
            crdt_scope_destroy(&view);
            if (visible)
                rc = fn(arg, &keys[i], shown);
            crdt_value_destroy(&shown);
        }
        if (n)
            snprintf(cursor, sizeof cursor, "%s", keys[n - 1].key);
        node_store_listed_free(keys, n);
        more = more && n;
    }
    return rc == S_WALK_STOP ? 0 : rc;
}

/*  A filtered page examines at most this many keys the reader may see. */
#define S_LIST_MAX_EXAMINED ENGRAM_MAX_PAGE

/*  A LIST page being filled. */
typedef struct {
    api_reply_t *r;
    const search_filter_t *filter;
    unsigned limit;
    unsigned examined;
    const char *examined_key; /* the last key examined (with a filter) */
    bool next_visible;        /* a key to list follows the full page */
    bool stopped;             /* stopped after S_LIST_MAX_EXAMINED keys */
} s_list_t;

static int s_list_key(void *arg, const node_listed_t *key, const crdt_value_t *shown)
{
    s_list_t *l = arg;
    api_reply_t *r = l->r;
    if (l->filter && l->examined == S_LIST_MAX_EXAMINED) {
        l->stopped = true;
        return S_WALK_STOP;
    }
    if (l->filter) {
        l->examined++;
        if (!(l->examined_key = api__str(&r->arena, key->key)))
            return api__fail(r, ENGRAM_ENOMEM, "out of memory");
        if (!shown || !api__filter_matches(l->filter, key->key, shown))
            return 0;
    }
    if (r->msg.n_items == l->limit) {
        l->next_visible = true;
        return S_WALK_STOP;
    }
    Engram__Item *item = api__add_item(r);
    if (!item || !(item->key = api__str(&r->arena, key->key)))
        return api__fail(r, ENGRAM_ENOMEM, "out of memory");
    item->type = (char *)crdt_type_by_id(key->type)->name;
    return shown ? s_preview(r, item, shown) : 0;
}

/*  The keys of a page are those the agent may see: hidden keys are skipped, pages are filled
 *  past them, and the cursor is the last key shown, so neither the count, the cursor nor an
 *  empty page tells a hidden key exists. A further page is announced only when a visible key
 *  follows. Each item carries its key, its type and, for registers and logs, a preview of
 *  the value the reader sees (s_shown_value, s_preview). With a filter, only registers and
 *  logs whose value matches are shown; a page examines at most S_LIST_MAX_EXAMINED visible
 *  keys, and when it stops there its cursor is the last visible key examined (so a page may
 *  hold fewer items than its limit, even none, and still have a next_cursor). */
static int s_list(node_server_t *self, const Engram__Request *req, const char *sid, api_reply_t *r)
{
    search_filter_t *filter = NULL;
    int rc = s_parse_filter(req, r, &filter);
    if (rc)
        return rc;
    if (filter && search_filter_is_empty(filter))
        search_filter_destroy(&filter);
    s_list_t l = {.r = r,
                  .filter = filter,
                  .limit = req->limit && req->limit < self->config.list_limit
                               ? req->limit
                               : self->config.list_limit};
    rc = s_walk_keys(self, req, sid, r, ~0u, s_list_key, &l);
    search_filter_destroy(&filter);
    if (rc == 0 && l.next_visible && r->msg.n_items)
        r->msg.next_cursor = r->items[r->msg.n_items - 1]->key;
    else if (rc == 0 && l.stopped)
        r->msg.next_cursor = (char *)l.examined_key;
    return rc == 0 && r->arena.failed ? api__fail(r, ENGRAM_ENOMEM, "out of memory") : rc;
}

/*  A page of a history being filled, in HLC order. */
typedef struct {
    api_reply_t *r;
    unsigned limit;
    size_t bytes; /* the values shown so far */
    bool more;    /* a visible step follows the page */
} s_history_page_t;

/*  Whether the reader may see a step: a put, append or set add by its value's provenance (the
 *  history keeps the encoded value), any other step by its agent and the scope. *v gets the
 *  decoded value, if any (caller destroys). */
static bool s_step_visible(const api_reader_t *reader, const node_step_t *step, crdt_value_t **v)
{
    *v = NULL;
    if (step->value && crdt_value_decode(step->value, step->len, v) == 0)
        return api__reader_may(reader, *v);
    const char *agents[1] = {step->agent};
    const char *resources[1] = {reader->sid};
    return api__may_read_provenance(reader->self, reader->agent, reader->user, reader->sid, agents,
                                    1, resources, reader->sid[0] == '@' ? 0 : 1);
}

/*  One step as an item: what it did, who did it and for whom, when (its stamp and dot), and
 *  for a step that wrote a value, the value with its metadata and provenance. */
static int s_history_item(api_reply_t *r, const node_step_t *step, const crdt_value_t *v)
{
    Engram__Item *item = api__add_item(r);
    if (!item)
        return ENGRAM_ENOMEM;
    const crdt_type_t *t = crdt_type_by_id(step->type);
    item->type = (char *)(t ? t->name : "");
    item->op = api__str(&r->arena, step->op);
    item->author = api__str(&r->arena, step->agent);
    item->user = api__str(&r->arena, step->user);
    item->hlc = step->hlc;
    item->node = step->dot.node;
    item->n = step->dot.n;
    item->amount = step->amount;
    const uint8_t *value = v ? v->data : NULL;
    size_t len = v ? v->len : 0;
    if (step->elem && *step->elem) {
        len = strlen(step->elem);
        value = (const uint8_t *)step->elem;
    }
    if (v) {
        item->meta_json = api__str(&r->arena, v->meta_json);
        item->agents = s_strv(&r->arena, v->agents, v->nagents);
        item->n_agents = v->nagents;
        item->resources = s_strv(&r->arena, v->resources, v->nresources);
        item->n_resources = v->nresources;
        item->created_hlc = v->created_hlc;
        item->expires_at_ms = v->expires_at_ms;
    }
    uint8_t *copy = api__keep(&r->arena, malloc(len ? len : 1));
    if (copy && len)
        memcpy(copy, value, len);
    item->value.data = copy;
    item->value.len = len;
    return r->arena.failed ? ENGRAM_ENOMEM : 0;
}

/*  One step of a history, shown if the reader may see it. */
static int s_history_step(void *arg, const node_step_t *step)
{
    s_history_page_t *page = arg;
    api_reply_t *r = page->r;
    crdt_value_t *v = NULL;
    if (!s_step_visible(r->reader, step, &v)) {
        crdt_value_destroy(&v);
        return 0;
    }
    size_t len = v ? v->len : 0;
    if (s_page_full(r, page->limit, page->bytes, len)) {
        crdt_value_destroy(&v);
        page->more = true;
        return NODE_STORE_STOP;
    }
    page->bytes += len;
    int rc = s_history_item(r, step, v);
    crdt_value_destroy(&v);
    return rc;
}

/*  A page of the steps the reader may see, from the step after the cursor's position: the
 *  store seeks there, so a page reads its steps and the hidden ones skipped on the way. */
static int s_history(node_server_t *self, const Engram__Request *req, const char *sid,
                     api_reply_t *r)
{
    node_position_t after = {0};
    int rc = req->cursor[0] ? s_parse_position(r, req->cursor, &after) : 0;
    if (rc)
        return rc;
    s_history_page_t page = {r, s_page_limit(self, req), 0, false};
    rc = node_store_history(self->store, sid, req->key, req->cursor[0] ? &after : NULL,
                            s_history_step, &page);
    if (rc)
        return api__fail(r, rc, "history of '%s': %s", api__quote(r, req->key),
                         engram_strerror(rc));
    if (r->msg.n_items == 0 && !req->cursor[0])
        return api__fail(r, ENGRAM_ENOTFOUND, "'%s' has no history in %s", api__quote(r, req->key),
                         r->scope);
    for (size_t i = 0; i < r->msg.n_items; i++)
        r->items[i]->key = (char *)req->key;
    if (page.more) {
        const Engram__Item *last = r->items[r->msg.n_items - 1];
        return s_position_cursor(r, (node_position_t){last->hlc, {last->node, last->n}});
    }
    return 0;
}

/*  The private value under key, for SHARE. Caller owns *value. */
static int s_private_value(node_server_t *self, const Engram__Request *req, api_reply_t *r,
                           crdt_value_t **value)
{
    *value = NULL;
    char sid[MAX_SCOPE_BYTES + 2];
    snprintf(sid, sizeof sid, "@%s", req->agent); /* api__request checked the agent's length */
    const char *scope = r->scope;
    r->scope = "private";
    crdt_scope_t *view;
    int rc = s_load(self, r, sid, req->key, CRDT_REG, &view);
    r->scope = scope;
    if (rc)
        return rc;
    crdt_entry_view_t *siblings;
    size_t n;
    rc = crdt_mvreg_read(view, req->key, &siblings, &n);
    if (rc == 0) {
        rc = n ? crdt_value_decode(siblings[0].data, siblings[0].len, value) : ENGRAM_ENOTFOUND;
        free(siblings);
    }
    crdt_scope_destroy(&view);
    if (rc == 0 && s_expired(*value, api__now_ms())) {
        crdt_value_destroy(value);
        rc = ENGRAM_ENOTFOUND;
    }
    api_reader_t reader = {self, req->agent, req->user, sid};
    if (rc == 0 && !api__reader_may(&reader, *value)) { /* derived from what it may not read */
        crdt_value_destroy(value);
        rc = ENGRAM_ENOTFOUND;
    }
    return rc ? api__fail(r, rc, "private '%s': %s", api__quote(r, req->key), engram_strerror(rc))
              : 0;
}

/*  --- memory operations: compare-and-set, idempotent remember, forget, vote --------- */

/*  PUT with if_version: the token (as `after`: it names the scope written, which the agent
 *  may read) must cover every live version of the register the writer may read, else someone
 *  wrote it since and the put is refused with ENGRAM_ECONFLICT. A token that covers nothing of
 *  the register (taken before it was first written) makes the put a create-if-absent.
 *  Versions the writer may not read are left out, so that a refusal never tells of them. The
 *  server is single-threaded: nothing is written between this check and the put. */
static int s_check_if_version(node_server_t *self, const Engram__Request *req, const char *sid,
                              api_reply_t *r)
{
    Engram__Request as_after = *req;
    as_after.after = req->if_version;
    api_token_t token;
    int rc = api__token_open(self, &as_after, r, &token);
    if (rc)
        return rc;
    if (token.n != 1 || strcmp(token.scopes[0].sid, sid) != 0)
        rc = api__fail(r, ENGRAM_EINVAL,
                       "the version token must be one of %s, the scope written (a token of a "
                       "get or a write there)",
                       r->scope);
    crdt_scope_t *view = NULL;
    unsigned types = 0;
    if (rc == 0 &&
        (rc = node_store_view(self->store, sid, req->key, NODE_VIEW_OBJECT, NULL, &view, &types)))
        api__fail(r, rc, "cannot read '%s': %s", api__quote(r, req->key), engram_strerror(rc));
    crdt_entry_view_t *siblings = NULL;
    size_t n = 0;
    if (rc == 0 && (types & (1u << CRDT_REG)) &&
        crdt_mvreg_read(view, req->key, &siblings, &n) == 0) {
        int64_t now = api__now_ms();
        for (size_t i = 0; rc == 0 && i < n; i++) {
            crdt_value_t *v;
            if (crdt_value_decode(siblings[i].data, siblings[i].len, &v) != 0)
                continue;
            if (!s_expired(v, now) && api__reader_may(r->reader, v) &&
                !crdt_ctx_contains(token.scopes[0].want,
                                   (crdt_dot_t){.node = siblings[i].node, .n = siblings[i].n}))
                rc = api__fail(r, ENGRAM_ECONFLICT,
                               "'%s' changed since that version: it holds a version by '%s' "
                               "the token does not cover (get it again, then retry)",
                               api__quote(r, req->key), api__quote(r, v->author));
            crdt_value_destroy(&v);
        }
        free(siblings);
    }
    crdt_scope_destroy(&view);
    api__token_close(&token);
    return rc;
}

/*  REMEMBER under the id the request gives (key): the first remember of an id writes it
 *  (Reply.number 1); any later one, whatever its text, writes nothing and is answered with the
 *  id alone (number 0), so that a retried remember stores once. A live version the agent may
 *  not read counts as the memory too: it is not overwritten, and the answer, the same as a
 *  write's, tells nothing of it. */
static int s_remember_id(node_server_t *self, const Engram__Request *req, const char *sid,
                         api_reply_t *r)
{
    int rc = s_check_key(req->key, "memory id", true, r);
    if (rc)
        return rc;
    crdt_scope_t *view = NULL;
    unsigned types = 0;
    rc = node_store_view(self->store, sid, req->key, NODE_VIEW_OBJECT, NULL, &view, &types);
    if (rc)
        return api__fail(r, rc, "cannot read '%s': %s", api__quote(r, req->key),
                         engram_strerror(rc));
    rc = s_check_type(types, CRDT_REG, req->key, r);
    crdt_value_t *held =
        rc == 0 ? s_shown_value(view, req->key, CRDT_REG, NULL, api__now_ms()) : NULL;
    crdt_scope_destroy(&view);
    r->msg.memory_id = (char *)req->key;
    r->msg.number = held ? 0 : 1;
    if (rc == 0 && !held)
        rc = s_mutate(self, req, r, sid, req->key, NODE_VIEW_OBJECT, NULL, CRDT_REG, s_put, NULL);
    crdt_value_destroy(&held);
    return rc;
}

/*  FORGET stops after this many deletions, or this many keys examined, per request. */
#define S_FORGET_MAX ENGRAM_MAX_PAGE

/*  One deletion of FORGET: a DELETE of key, with its own history step and event (an event
 *  alone in the outbox, published once the turn is durable). */
static int s_forget_one(node_server_t *self, const Engram__Request *req, const char *sid,
                        const char *key, api_reply_t *r)
{
    Engram__Request del = *req;
    del.op = ENGRAM__OP__DELETE;
    api_reply_t one;
    api__reply_init(&one);
    one.sid = r->sid;
    one.scope = r->scope;
    one.reader = r->reader;
    one.client_key = r->client_key;
    int rc = s_mutate(self, &del, &one, sid, key, NODE_VIEW_OBJECT, NULL, 0, s_delete, NULL);
    if (rc == 0) {
        r->wrote = true;
        r->dot = one.dot;
        api__queue_reply(self, NULL, 0, 0, &one);
    } else {
        memcpy(r->message, one.message, sizeof r->message);
    }
    api__arena_free(&one.arena);
    return rc;
}

/*  FORGET: deletes every register and log of the scope (under prefix, after cursor) whose
 *  value as the agent sees it (a register's winner, a log's last entry) the filter matches;
 *  keys it may not read are never examined. Each deletion is a DELETE. An empty filter is
 *  refused: mem0's delete_all once wiped every user. A request deletes (dry_run: counts) at
 *  most S_FORGET_MAX keys and examines at most S_FORGET_MAX keys it may read; when it stops
 *  before the end, next_cursor is the last key it examined (give it as cursor to go on), else
 *  "". Reply.number is how many it deleted (would delete). An error stops it; what it deleted
 *  before stays deleted. */
/*  A FORGET under way. */
typedef struct {
    node_server_t *self;
    const Engram__Request *req;
    const char *sid;
    api_reply_t *r;
    const search_filter_t *filter;
    unsigned examined;
    const char *examined_key; /* the last key examined */
    bool stopped;             /* stopped at S_FORGET_MAX */
} s_forget_t;

static int s_forget_key(void *arg, const node_listed_t *key, const crdt_value_t *shown)
{
    s_forget_t *f = arg;
    api_reply_t *r = f->r;
    if (!shown)
        return 0; /* nothing of it the agent may read */
    if (f->examined == S_FORGET_MAX || r->msg.number == S_FORGET_MAX) {
        f->stopped = true;
        return S_WALK_STOP;
    }
    f->examined++;
    if (!(f->examined_key = api__str(&r->arena, key->key)))
        return api__fail(r, ENGRAM_ENOMEM, "out of memory");
    if (!api__filter_matches(f->filter, key->key, shown))
        return 0;
    int rc = f->req->dry_run ? 0 : s_forget_one(f->self, f->req, f->sid, key->key, r);
    if (rc == 0)
        r->msg.number++;
    return rc;
}

static int s_forget(node_server_t *self, const Engram__Request *req, const char *sid,
                    api_reply_t *r)
{
    search_filter_t *filter = NULL;
    int rc = s_parse_filter(req, r, &filter);
    if (rc == 0 && (!filter || search_filter_is_empty(filter)))
        rc = api__fail(r, ENGRAM_EINVAL,
                       "forget needs a filter that names what to forget: an empty filter "
                       "would forget everything in %s",
                       r->scope);
    s_forget_t f = {
        .self = self, .req = req, .sid = sid, .r = r, .filter = filter, .examined_key = ""};
    if (rc == 0)
        rc = s_walk_keys(self, req, sid, r, 1u << CRDT_REG | 1u << CRDT_LOG, s_forget_key, &f);
    search_filter_destroy(&filter);
    if (rc == 0 && f.stopped)
        r->msg.next_cursor = (char *)f.examined_key;
    return rc;
}

/*  VOTE: adds +1 or -1 to the counter KEY#votes, when KEY is a memory (a register or a log)
 *  the agent may read; Reply.number is the counter's sum as the agent sees it. */
static int s_vote(node_server_t *self, const Engram__Request *req, const char *sid, api_reply_t *r)
{
    if (req->amount != 1 && req->amount != -1)
        return api__fail(r, ENGRAM_EINVAL, "a vote is +1 or -1, not %" PRId64, req->amount);
    size_t len = strlen(req->key);
    if (len + strlen(API_VOTES_SUFFIX) > ENGRAM_MAX_KEY_BYTES)
        return api__fail(r, ENGRAM_ETOOBIG,
                         "the key has %zu bytes: its votes' counter (KEY" API_VOTES_SUFFIX
                         ") would pass the limit of %d",
                         len, ENGRAM_MAX_KEY_BYTES);
    crdt_scope_t *view = NULL;
    unsigned types = 0;
    int rc = node_store_view(self->store, sid, req->key, NODE_VIEW_OBJECT, NULL, &view, &types);
    if (rc)
        return api__fail(r, rc, "cannot read '%s': %s", api__quote(r, req->key),
                         engram_strerror(rc));
    int64_t now = api__now_ms();
    unsigned memories = (1u << CRDT_REG) | (1u << CRDT_LOG);
    bool memory = s_object_visible(r->reader, view, req->key, types & memories, now);
    bool other = !memory && s_object_visible(r->reader, view, req->key, types & ~memories, now);
    crdt_scope_destroy(&view);
    if (other)
        return api__fail(r, ENGRAM_ETYPE, "'%s' holds a %s: a vote is for a memory (reg or log)",
                         api__quote(r, req->key), api__type_name(types & ~memories));
    if (!memory)
        return api__fail(r, ENGRAM_ENOTFOUND, "'%s' not found in %s", api__quote(r, req->key),
                         r->scope);
    char *votes = api__keep(&r->arena, malloc(len + sizeof API_VOTES_SUFFIX));
    if (!votes)
        return api__fail(r, ENGRAM_ENOMEM, "out of memory");
    memcpy(votes, req->key, len);
    memcpy(votes + len, API_VOTES_SUFFIX, sizeof API_VOTES_SUFFIX);
    return s_mutate(self, req, r, sid, votes, NODE_VIEW_OBJECT, NULL, CRDT_COUNTER, s_counter_add,
                    NULL);
}

/*  --- cluster administration -------------------------------------------------------- */

bool api__cluster_op(Engram__Op op)
{
    return op == ENGRAM__OP__CLUSTER_STATUS || op == ENGRAM__OP__CLUSTER_REMOVE ||
           op == ENGRAM__OP__CLUSTER_JOIN;
}

static void s_free_status(void *status)
{
    node_cluster_status_free((node_cluster_status_t **)&status);
}

/*  The cluster's status as the reply carries it, every part in the reply's arena (the
 *  strings are the status's own, which the arena keeps too) but page_url, the server's,
 *  which outlives the reply. */
static Engram__ClusterStatus *s_status_message(api_reply_t *r, node_cluster_status_t *status,
                                               const char *page_url)
{
    Engram__ClusterStatus *msg = api__keep(&r->arena, malloc(sizeof *msg));
    Engram__Member **members = api__keep(&r->arena, calloc(status->n_members + 1, sizeof *members));
    Engram__ScopeStatus **scopes =
        api__keep(&r->arena, calloc(status->n_scopes + 1, sizeof *scopes));
    if (!msg || !members || !scopes)
        return NULL;
    engram__cluster_status__init(msg);
    msg->cluster_id = status->cluster_id;
    msg->node_id = status->node_id;
    msg->endpoint = status->endpoint;
    for (size_t i = 0; i < status->n_members; i++) {
        const node_cluster_member_status_t *from = &status->members[i];
        Engram__Member *m = members[i] = api__keep(&r->arena, malloc(sizeof *m));
        if (!m)
            return NULL;
        engram__member__init(m);
        m->id = from->id;
        m->state = (char *)from->state;
        m->incarnation = from->incarnation;
        m->endpoint = from->endpoint;
        m->lag_ops = from->lag_ops;
        m->lag_bytes = from->lag_bytes_known ? from->lag_bytes : 0;
        m->lag_known = from->lag_known;
        m->lag_bytes_unmeasured = from->lag_known && !from->lag_bytes_known;
    }
    for (size_t i = 0; i < status->n_scopes; i++) {
        const node_cluster_scope_status_t *from = &status->scopes[i];
        Engram__ScopeStatus *sc = scopes[i] = api__keep(&r->arena, malloc(sizeof *sc));
        if (!sc)
            return NULL;
        engram__scope_status__init(sc);
        sc->scope = from->scope;
        sc->vector = from->vector;
        sc->ops = from->ops;
        sc->garbage = from->garbage;
    }
    msg->n_members = status->n_members;
    msg->members = members;
    msg->n_scopes = status->n_scopes;
    msg->scopes = scopes;
    msg->pushes_sent = status->pushes_sent;
    msg->pushes_applied = status->pushes_applied;
    msg->pushes_held_back = status->pushes_held_back;
    msg->digests_sent = status->digests_sent;
    msg->pulls_answered = status->pulls_answered;
    msg->pull_deltas_applied = status->pull_deltas_applied;
    msg->lean_deltas = status->lean_deltas;
    msg->compressed_sent = status->compressed_sent;
    msg->compression_saved = status->compression_saved;
    msg->acks_sent = status->acks_sent;
    msg->acks_deferred = status->acks_deferred;
    msg->bytes_sent = status->bytes_sent;
    msg->bytes_received = status->bytes_received;
    msg->bad_messages = status->bad_messages;
    msg->local_health = status->local_health;
    msg->storage = status->storage;
    msg->bad_scope = status->bad_scope;
    msg->status_page = page_url ? (char *)page_url : "";
    return msg;
}

/*  The longest DNS name (RFC 1035: 253 bytes of text) and label. */
#define S_MAX_HOST_BYTES  253
#define S_MAX_LABEL_BYTES 63

/*  Whether host[0..len) is a DNS name: dot-separated labels of 1 to 63 letters, digits and
 *  hyphens, none starting or ending with a hyphen (RFC 1123), one trailing dot allowed. */
static bool s_dns_name(const char *host, size_t len)
{
    if (len && host[len - 1] == '.')
        len--;
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || host[i] == '.') {
            if (label == 0 || label > S_MAX_LABEL_BYTES || host[i - 1] == '-' ||
                host[i - label] == '-')
                return false;
            label = 0;
        } else if (isalnum((unsigned char)host[i]) || host[i] == '-') {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

/*  Why endpoint is not [tcp://]HOST:PORT with HOST a DNS name, an IPv4 address or a bracketed
 *  IPv6 address of at most 253 bytes and PORT 1 to 65535; NULL when it is. */
static const char *s_endpoint_problem(const char *endpoint)
{
    const char *host = endpoint; /* HOST:PORT stands for tcp://HOST:PORT */
    if (strstr(endpoint, "://") && strncmp(endpoint, "tcp://", 6) != 0)
        return "the transport must be tcp://";
    if (strncmp(endpoint, "tcp://", 6) == 0)
        host += 6;
    const char *colon = strrchr(host, ':');
    if (!colon)
        return "it has no :PORT";
    const char *port = colon + 1;
    size_t digits = strspn(port, "0123456789");
    long number = digits && digits <= 5 && !port[digits] ? strtol(port, NULL, 10) : 0;
    if (number < 1 || number > 65535)
        return "the port must be a number from 1 to 65535";
    size_t host_len = (size_t)(colon - host);
    if (host_len == 0)
        return "the host is empty";
    if (host_len > S_MAX_HOST_BYTES)
        return "the host is longer than 253 bytes";
    char name[S_MAX_HOST_BYTES + 1];
    memcpy(name, host, host_len);
    name[host_len] = '\0';
    unsigned char address[16];
    if (name[0] == '[') {
        if (host_len < 3 || name[host_len - 1] != ']')
            return "an IPv6 address is written [ADDRESS]";
        name[host_len - 1] = '\0';
        return inet_pton(AF_INET6, name + 1, address) == 1 ? NULL : "not an IPv6 address";
    }
    if (strspn(name, "0123456789.") == host_len)
        return inet_pton(AF_INET, name, address) == 1 ? NULL : "not an IPv4 address";
    return s_dns_name(name, host_len) ? NULL : "the host is neither a DNS name nor an IP address";
}

static int s_cluster_request(node_server_t *self, const Engram__Request *req, api_reply_t *r)
{
    if (!self->cluster)
        return api__fail(r, ENGRAM_EUNAVAILABLE, "this node runs alone: start it with --gossip");
    if (req->op == ENGRAM__OP__CLUSTER_STATUS) {
        node_cluster_status_t *status = NULL;
        /* the lag in bytes within a budget: measuring it encodes what a member lacks, on this
         * loop, and a member down for long lacks much */
        int rc = node_cluster_status(self->cluster, API_OBSERVE_LAG_BYTES_OPS, &status);
        if (rc)
            return api__fail(r, rc, "cannot report the cluster: %s", engram_strerror(rc));
        if (!api__keep_with(&r->arena, status, s_free_status) ||
            !(r->msg.cluster = s_status_message(r, status, self->observed.page_url)))
            return api__fail(r, ENGRAM_ENOMEM, "out of memory");
        return 0;
    }
    if (req->op == ENGRAM__OP__CLUSTER_JOIN) {
        const char *why = s_endpoint_problem(req->endpoint);
        if (why)
            return api__fail(r, ENGRAM_EINVAL,
                             "join takes a member's gossip endpoint tcp://HOST:PORT, not '%s': %s",
                             api__quote(r, req->endpoint), why);
        int rc = node_cluster_join(self->cluster, req->endpoint);
        return rc ? api__fail(r, rc, "cannot join through '%s': %s", api__quote(r, req->endpoint),
                              engram_strerror(rc))
                  : 0;
    }
    int rc = node_cluster_remove(self->cluster, req->node, req->statement.data, req->statement.len);
    if (rc == ENGRAM_EDENIED)
        return api__fail(r, rc,
                         "the decommission of %016" PRIx64 " is not signed by this "
                         "cluster's admin",
                         req->node);
    if (rc)
        return api__fail(r, rc, "cannot remove %016" PRIx64 ": %s", req->node, engram_strerror(rc));
    zsys_notice("engramd: member %016" PRIx64 " decommissioned by the admin", req->node);
    return 0;
}

/*  SNAPSHOT: the store, checkpointed with the node's files into req->path (store.h). It runs on
 *  the loop's thread: requests wait for the links and the copied logs, none is refused. */
static int s_snapshot(node_server_t *self, const Engram__Request *req, api_reply_t *r)
{
    char why[512] = "";
    int64_t started = api__mono_ms();
    int rc = node_store_snapshot(self->store, req->path, why, sizeof why);
    if (rc)
        return api__fail(r, rc, "no snapshot: %s", why[0] ? why : engram_strerror(rc));
    zsys_notice("engramd: snapshot written to %s in %" PRId64 " ms", req->path,
                api__mono_ms() - started);
    return 0;
}

/*  --- dispatch --------------------------------------------------------------------- */

static int s_dispatch(node_server_t *self, const Engram__Request *req, const char *sid,
                      api_reply_t *r);

int api__dispatch(node_server_t *self, const Engram__Request *req, const char *sid, api_reply_t *r)
{
    api_reader_t reader = {self, req->agent, req->user, sid};
    r->reader = sid ? &reader : NULL;
    int rc = s_dispatch(self, req, sid, r);
    r->reader = NULL;
    return rc;
}

int api__check_input(node_server_t *self, const Engram__Request *req, api_reply_t *r)
{
    bool keyed = req->op != ENGRAM__OP__LIST && req->op != ENGRAM__OP__REMEMBER &&
                 req->op != ENGRAM__OP__STATS && req->op != ENGRAM__OP__SEARCH &&
                 req->op != ENGRAM__OP__CONTEXT && req->op != ENGRAM__OP__FORGET &&
                 !api__admin_op(req->op);
    bool creates = req->op == ENGRAM__OP__PUT || req->op == ENGRAM__OP__SET_ADD ||
                   req->op == ENGRAM__OP__COUNTER_ADD || req->op == ENGRAM__OP__LOG_APPEND ||
                   req->op == ENGRAM__OP__SHARE || req->op == ENGRAM__OP__VOTE;
    if (keyed) {
        int rc = s_check_key(req->key, "key", creates, r);
        if (rc)
            return rc;
    }
    if (req->if_version.len && req->op != ENGRAM__OP__PUT)
        return api__fail(r, ENGRAM_EINVAL, "if_version is taken by put alone");
    if (req->as_of_ms && req->op != ENGRAM__OP__GET)
        return api__fail(r, ENGRAM_EINVAL, "as_of_ms is taken by get alone");
    size_t meta_len = strlen(req->meta_json);
    char why[160];
    if (meta_len && !node_json_valid(req->meta_json, meta_len, why, sizeof why))
        return api__fail(r, ENGRAM_EINVAL, "the metadata is not JSON this node reads: %s", why);
    if (req->value.len + meta_len > self->config.max_value_bytes)
        return api__fail(r, ENGRAM_ETOOBIG,
                         "the value and its metadata have %zu bytes; this node's limit is %zu",
                         req->value.len + meta_len, self->config.max_value_bytes);
    if (req->replicas > 1 && !self->cluster)
        return api__fail(r, ENGRAM_EINVAL, "replicas=%u asked of a node that is in no cluster",
                         req->replicas);
    if (req->ttl_ms > MAX_TTL_MS)
        return api__fail(r, ENGRAM_EINVAL, "a TTL may be at most %" PRIu64 " ms (100 years)",
                         MAX_TTL_MS);
    return 0;
}

static int s_dispatch(node_server_t *self, const Engram__Request *req, const char *sid,
                      api_reply_t *r)
{
    int rc = api__check_input(self, req, r);
    if (rc == 0 && req->embedding.len && req->op != ENGRAM__OP__SEARCH &&
        req->op != ENGRAM__OP__CONTEXT)
        rc = api__check_embedding(self, req, sid, r);
    if (rc)
        return rc;
    switch (req->op) {
    case ENGRAM__OP__PUT:
        if (req->if_version.len && (rc = s_check_if_version(self, req, sid, r)) != 0)
            return rc;
        return s_mutate(self, req, r, sid, req->key, NODE_VIEW_OBJECT, NULL, CRDT_REG, s_put, NULL);
    case ENGRAM__OP__GET:
        return req->as_of_ms ? s_get_as_of(self, req, sid, r)
                             : s_read_values(self, req, sid, r, CRDT_REG, crdt_mvreg_read);
    case ENGRAM__OP__DELETE:
        return s_mutate(self, req, r, sid, req->key, NODE_VIEW_OBJECT, NULL, 0, s_delete, NULL);
    case ENGRAM__OP__SET_ADD:
    case ENGRAM__OP__SET_REMOVE: {
        int rc = s_check_key(req->elem, "element", req->op == ENGRAM__OP__SET_ADD, r);
        return rc ? rc
                  : s_mutate(self, req, r, sid, req->key, NODE_VIEW_ELEM, req->elem, CRDT_SET,
                             s_set_op, NULL);
    }
    case ENGRAM__OP__SET_MEMBERS:
        return s_members(self, req, sid, r);
    case ENGRAM__OP__COUNTER_ADD:
        return s_mutate(self, req, r, sid, req->key, NODE_VIEW_OBJECT, NULL, CRDT_COUNTER,
                        s_counter_add, NULL);
    case ENGRAM__OP__COUNTER_GET:
        return s_counter_get(self, req, sid, r);
    case ENGRAM__OP__LOG_APPEND:
        return s_mutate(self, req, r, sid, req->key, NODE_VIEW_CONTEXT, NULL, CRDT_LOG,
                        s_log_append, NULL);
    case ENGRAM__OP__LOG_RANGE:
        return s_log_page(self, req, sid, r);
    case ENGRAM__OP__LIST:
        return s_list(self, req, sid, r);
    case ENGRAM__OP__REMEMBER: {
        if (req->key[0])
            return s_remember_id(self, req, sid, r);
        uint8_t raw[8];
        randombytes_buf(raw, sizeof raw);
        char *id = api__keep(&r->arena, malloc(4 + 2 * sizeof raw + 1));
        if (!id)
            return api__fail(r, ENGRAM_ENOMEM, "out of memory");
        memcpy(id, "mem-", 4);
        sodium_bin2hex(id + 4, 2 * sizeof raw + 1, raw, sizeof raw);
        r->msg.memory_id = id;
        return s_mutate(self, req, r, sid, id, NODE_VIEW_OBJECT, NULL, CRDT_REG, s_put, NULL);
    }
    case ENGRAM__OP__HISTORY:
        return s_history(self, req, sid, r);
    case ENGRAM__OP__FORGET:
        return s_forget(self, req, sid, r);
    case ENGRAM__OP__VOTE:
        return s_vote(self, req, sid, r);
    case ENGRAM__OP__SEARCH:
        return api__search(self, req, r);
    case ENGRAM__OP__CONTEXT:
        return api__context(self, req, r);
    case ENGRAM__OP__SHARE: {
        if (sid[0] == '@')
            return api__fail(r, ENGRAM_ESCOPE,
                             "share copies a private memory into a shared scope, "
                             "not into private");
        crdt_value_t *source = NULL;
        int rc = s_private_value(self, req, r, &source);
        if (rc == 0)
            rc = s_mutate(self, req, r, sid, req->key, NODE_VIEW_OBJECT, NULL, CRDT_REG, s_share,
                          source);
        crdt_value_destroy(&source);
        return rc;
    }
    case ENGRAM__OP__CLUSTER_STATUS:
    case ENGRAM__OP__CLUSTER_REMOVE:
    case ENGRAM__OP__CLUSTER_JOIN:
        return s_cluster_request(self, req, r);
    case ENGRAM__OP__ACL_SUBMIT:
    case ENGRAM__OP__ACL_SHOW:
    case ENGRAM__OP__ACL_CHECK:
        return api__acl_request(self, req, r);
    case ENGRAM__OP__SNAPSHOT:
        return s_snapshot(self, req, r);
    case ENGRAM__OP__STATS:
        self->stats.uptime_ms = (uint64_t)(api__now_ms() - self->started_ms);
        self->stats.scopes = node_store_scopes(self->store);
        self->stats.replica_id = node_store_replica(self->store); /* the dot check may renew it */
        self->stats.clock_refusals = node_store_clock_refusals(self->store);
        self->stats.hlc = node_store_hlc_last(self->store);
        r->msg.stats = &self->stats;
        return 0;
    default:
        return api__fail(r, ENGRAM_EINVAL, "unknown operation %d", (int)req->op);
    }
}
