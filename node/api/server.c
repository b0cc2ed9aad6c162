/*  node_server: the agent API loop with group commit (see server.h). */
#include "node/api/server.h"

#include <czmq.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/awset.h"
#include "crdt/codec.h"
#include "crdt/counter.h"
#include "crdt/hlc.h"
#include "crdt/log.h"
#include "crdt/mvreg.h"
#include "crdt/value.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/cluster/cluster.h"
#include "node/api/json.h"
#include "node/store/store.h"
#include "proto/api.pb-c.h"

#define MAX_SCOPE_BYTES 256
#define MAX_NAME_BYTES 128 /* agent and user names; "@" + agent must fit a scope id */
/*  About 100 years: a longer TTL is refused rather than overflow expires_at. */
#define MAX_TTL_MS (UINT64_C(100) * 365 * 24 * 3600 * 1000)

typedef struct {
    zframe_t *routing; /* owned: the subscriber's connection */
    uint64_t request_id;
    char *sid;         /* owned */
} s_subscriber_t;

/*  A connection whose pipe was full: what it has still to receive, in order. Replies are
 *  never dropped; events past subscriber_backlog end the connection's subscriptions. */
typedef struct {
    zframe_t *routing; /* owned */
    zlist_t *queue;    /* s_queued_t *, owned */
    size_t events;     /* how many queued items are subscription events */
} s_peer_t;

typedef struct {
    zframe_t *payload; /* owned */
    bool event;
} s_queued_t;

/*  A GET waiting for its causal token, or a shared write waiting for the dot check. */
typedef struct {
    zframe_t *routing;        /* owned */
    Engram__Request *request; /* owned (unpacked) */
    int64_t deadline_ms;      /* GETs */
} s_parked_t;

/*  One reply of this turn, sent once the turn's writes are durable. */
typedef struct {
    zframe_t *routing; /* owned */
    uint64_t id;
    uint8_t *reply;    /* owned: the encoded success (or error) Reply */
    size_t reply_len;
    bool wrote;        /* acknowledges a write: replaced by an error if the sync fails */
    char *event_sid;   /* owned: scope whose subscribers get event, or NULL */
    uint8_t *event;    /* owned: encoded Event */
    size_t event_len;
    unsigned replicas; /* > 1: the reply waits until that many nodes hold the write */
    unsigned holders;  /* how many did when last looked at (this one included) */
    char *write_sid;   /* owned, with replicas: the scope and the write's dot */
    crdt_dot_t dot;
    int64_t deadline_ms;
} s_out_t;

struct node_server {
    node_config_t config;
    node_store_t *store;
    zsock_t *router;
    crdt_hlc_t clock;
    zlist_t *subscribers; /* s_subscriber_t * */
    zhash_t *peers;       /* routing id (hex) -> s_peer_t *, owned: connections with a backlog */
    zlist_t *parked;      /* s_parked_t *: GETs waiting for their token */
    zlist_t *held;        /* s_parked_t *: shared writes waiting for the dot check, in order */
    zlist_t *outbox;      /* s_out_t *, this turn's replies */
    zlist_t *replicating; /* s_out_t *, durable writes waiting for replicas */
    zlist_t *removals;    /* s_removal_t *, owned: what the remote delta being applied removes */
    node_cluster_t *cluster; /* NULL: a single node */
    int64_t started_ms;
    int64_t next_purge_ms;
    Engram__Stats stats;
};

/*  --- per-request arena: everything a Reply points at ---------------------------------- */

typedef struct {
    void *ptr;
    void (*destroy)(void *ptr);
} s_owned_t;

typedef struct {
    s_owned_t *owned;
    size_t n;
    size_t cap;
    bool failed;
} s_arena_t;

/*  Hands p to the arena, which calls destroy(p) when it is freed; NULL (after destroying p)
 *  if p is NULL or memory ran out. */
static void *s_keep_with(s_arena_t *a, void *p, void (*destroy)(void *ptr))
{
    if (!p || a->failed) {
        a->failed = true;
        if (p)
            destroy(p);
        return NULL;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        s_owned_t *grown = realloc(a->owned, cap * sizeof *grown);
        if (!grown) {
            a->failed = true;
            destroy(p);
            return NULL;
        }
        a->owned = grown;
        a->cap = cap;
    }
    a->owned[a->n++] = (s_owned_t){p, destroy};
    return p;
}

static void *s_keep(s_arena_t *a, void *p)
{
    return s_keep_with(a, p, free);
}

static char *s_str(s_arena_t *a, const char *s)
{
    return s_keep(a, strdup(s ? s : ""));
}

static void s_arena_free(s_arena_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        a->owned[i].destroy(a->owned[i].ptr);
    free(a->owned);
    memset(a, 0, sizeof *a);
}

/*  The reply under construction. */
typedef struct {
    Engram__Reply msg;
    Engram__Item **items;
    size_t cap;
    s_arena_t arena;
    const char *sid;     /* the scope touched, for the token */
    const char *scope;   /* its name as the agent wrote it */
    bool wrote;
    crdt_dot_t dot;       /* the write's dot */
    unsigned replicas;    /* nodes that must hold the write before the reply */
    uint32_t timeout_ms;
    Engram__Event *event; /* in the arena: published after the sync */
    char message[256];
} s_reply_t;

static void s_reply_init(s_reply_t *r)
{
    memset(r, 0, sizeof *r);
    engram__reply__init(&r->msg);
}

static Engram__Item *s_add_item(s_reply_t *r)
{
    Engram__Item *item = s_keep(&r->arena, malloc(sizeof *item));
    if (!item)
        return NULL;
    engram__item__init(item);
    if (r->msg.n_items == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        Engram__Item **grown = s_keep(&r->arena, malloc(cap * sizeof *grown));
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

static int s_fail(s_reply_t *r, int code, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, args);
    va_end(args);
    return code;
}

/*  --- names ------------------------------------------------------------------------ */

static int64_t s_now_ms(void)
{
    return zclock_time();
}

static const char *const s_kinds[] = {"user", "run", "app", "agent", "team"};

/*  Names (agents, users, scope ids) are UTF-8 without spaces or control characters. */
static bool s_name_ok(const char *name)
{
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        if (*c <= ' ' || *c == 0x7f)
            return false;
    return node_json_utf8_valid(name, strlen(name));
}

/*  Resolves the scope an agent named into a storage id ("@agent" for private). */
static int s_resolve(const Engram__Request *req, char *sid, s_reply_t *r)
{
    const char *scope = req->scope;
    if (strcmp(scope, "private") == 0) {
        if (snprintf(sid, MAX_SCOPE_BYTES + 2, "@%s", req->agent) > MAX_SCOPE_BYTES + 1)
            return s_fail(r, ENGRAM_ESCOPE, "agent name too long");
        return 0;
    }
    const char *colon = strchr(scope, ':');
    size_t kind_len = colon ? (size_t)(colon - scope) : 0;
    bool known = false;
    for (size_t i = 0; colon && i < sizeof s_kinds / sizeof s_kinds[0]; i++)
        known |= strlen(s_kinds[i]) == kind_len && strncmp(scope, s_kinds[i], kind_len) == 0;
    if (!known)
        return s_fail(r, ENGRAM_ESCOPE,
                      "invalid scope '%.64s': use private or KIND:ID with KIND one of user, run, "
                      "app, agent, team",
                      scope);
    const char *id = colon + 1;
    if (!*id || strlen(scope) > MAX_SCOPE_BYTES)
        return s_fail(r, ENGRAM_ESCOPE, "invalid scope '%.64s': the id must have 1 to %d bytes",
                      scope, MAX_SCOPE_BYTES);
    if (!s_name_ok(id))
        return s_fail(r, ENGRAM_ESCOPE, "invalid scope '%.64s': the id is UTF-8 without "
                                        "spaces or control characters",
                      scope);
    strcpy(sid, scope);
    return 0;
}

static int s_check_key(const char *key, const char *what, s_reply_t *r)
{
    size_t len = strlen(key);
    if (len == 0)
        return s_fail(r, ENGRAM_EINVAL, "the %s must not be empty", what);
    if (len > ENGRAM_MAX_KEY_BYTES)
        return s_fail(r, ENGRAM_ETOOBIG, "the %s has %zu bytes; the limit is %d", what, len,
                      ENGRAM_MAX_KEY_BYTES);
    if (!node_json_utf8_valid(key, len))
        return s_fail(r, ENGRAM_EINVAL, "the %s is not valid UTF-8", what);
    return 0;
}

static const char *s_type_name(unsigned types)
{
    for (unsigned t = 1; t <= CRDT_TYPE_MAX; t++)
        if (types & (1u << t))
            return crdt_type_by_id(t)->name;
    return "nothing";
}

static int s_check_type(unsigned types, crdt_type_id_t want, const char *key, s_reply_t *r)
{
    if (types & ~(1u << want))
        return s_fail(r, ENGRAM_ETYPE, "'%.64s' holds a %s, not a %s", key, s_type_name(types),
                      crdt_type_by_id(want)->name);
    return 0;
}

/*  --- values and items ------------------------------------------------------------- */

static bool s_expired(const crdt_value_t *v, int64_t now)
{
    return v->expires_at_ms && v->expires_at_ms <= (uint64_t)now;
}

static char **s_strv(s_arena_t *a, char **strv, size_t n)
{
    char **copy = s_keep(a, calloc(n ? n : 1, sizeof *copy));
    for (size_t i = 0; copy && i < n; i++)
        copy[i] = s_str(a, strv[i]);
    return copy;
}

/*  Fills item from a stored register or log value; false if it is unreadable or expired. */
static bool s_item_from_value(s_reply_t *r, Engram__Item *item, const crdt_entry_view_t *e,
                              const char *type, int64_t now)
{
    crdt_value_t *v;
    if (crdt_value_decode(e->data, e->len, &v) != 0)
        return false;
    bool live = !s_expired(v, now);
    if (live) {
        item->type = (char *)type;
        uint8_t *data = s_keep(&r->arena, malloc(v->len ? v->len : 1));
        if (data && v->len)
            memcpy(data, v->data, v->len);
        item->value.data = data;
        item->value.len = v->len;
        item->meta_json = s_str(&r->arena, v->meta_json);
        item->author = s_str(&r->arena, v->author);
        item->user = s_str(&r->arena, v->user);
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
static int s_make_value(node_server_t *self, const Engram__Request *req, uint64_t hlc,
                        uint64_t created_hlc, const uint8_t *data, size_t len,
                        crdt_value_t **value_p)
{
    crdt_value_t *v = crdt_value_new();
    int rc = v ? 0 : ENGRAM_ENOMEM;
    if (rc == 0) {
        v->created_hlc = created_hlc ? created_hlc : hlc;
        v->updated_hlc = hlc;
        v->expires_at_ms = req->ttl_ms ? (uint64_t)s_now_ms() + req->ttl_ms : 0;
        rc = crdt_value_set_data(v, data, len);
    }
    if (rc == 0)
        rc = crdt_value_set_meta(v, req->meta_json);
    if (rc == 0)
        rc = crdt_value_set_user(v, req->user);
    if (rc == 0)
        rc = crdt_value_set_author(v, req->agent);
    if (rc == 0)
        rc = crdt_value_add_agent(v, req->agent);
    if (rc)
        crdt_value_destroy(&v);
    *value_p = v;
    (void)self;
    return rc;
}

/*  --- writes ----------------------------------------------------------------------- */

/*  One mutation in progress: what the mutator function gets and fills. */
typedef struct {
    node_server_t *self;
    const Engram__Request *req;
    const char *key;
    crdt_scope_t *view;      /* the object as stored, plus the scope's context */
    uint64_t hlc;
    s_reply_t *r;
    crdt_scope_t *delta;     /* out: owned */
    node_history_t history;  /* out */
    Engram__Item *event;     /* out: the item subscribers see */
    const crdt_value_t *source; /* SHARE: the private value being shared */
} s_op_t;

typedef int (*s_mutator_fn)(s_op_t *op);

/*  Runs one mutation: load a view, check the type, mutate, persist, record the event. */
static int s_mutate(node_server_t *self, const Engram__Request *req, s_reply_t *r,
                    const char *sid, const char *key, node_view_t what, const char *elem,
                    crdt_type_id_t type, s_mutator_fn fn, const crdt_value_t *source)
{
    s_op_t op = {.self = self, .req = req, .key = key, .r = r, .source = source};
    crdt_scope_t *before = NULL;
    unsigned types = 0;
    if (self->cluster && sid[0] != '@' && node_cluster_removed(self->cluster))
        return s_fail(r, ENGRAM_EDENIED, "this node was removed from its cluster: shared "
                                         "scopes are read-only here");
    int rc = node_store_view(self->store, sid, key, what, elem, &op.view, &types);
    if (rc)
        return s_fail(r, rc, "cannot read '%.64s': %s", key, engram_strerror(rc));
    if (type)
        rc = s_check_type(types, type, key, r);
    if (rc == 0) {
        before = crdt_scope_dup(op.view, 0);
        op.event = s_keep(&r->arena, malloc(sizeof *op.event));
        rc = before && op.event ? 0 : s_fail(r, ENGRAM_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        engram__item__init(op.event);
        op.event->key = s_str(&r->arena, key);
        op.event->author = (char *)req->agent;
        op.event->user = (char *)req->user;
        op.hlc = crdt_hlc_now(&self->clock, (uint64_t)s_now_ms());
        op.history = (node_history_t){.agent = req->agent, .user = req->user, .hlc = op.hlc};
        rc = fn(&op);
    }
    if (rc == 0) {
        rc = node_store_apply(self->store, sid, key, before, op.delta, &op.history);
        if (rc)
            s_fail(r, rc, "the write failed: %s", engram_strerror(rc));
    }
    if (rc == 0) {
        r->wrote = true;
        self->stats.writes++;
        if (self->cluster)
            node_cluster_local(self->cluster, sid, op.delta, crdt_scope_ctx(before));
        uint64_t replica = node_store_replica(self->store);
        op.event->node = replica;
        op.event->n = crdt_ctx_max(node_store_ctx(self->store, sid), replica);
        r->dot = (crdt_dot_t){.node = replica, .n = op.event->n};
        Engram__Event *event = s_keep(&r->arena, malloc(sizeof *event));
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

/*  The register's current winner's creation time, so an overwrite keeps it. */
static uint64_t s_created_hlc(const crdt_scope_t *view, const char *key)
{
    crdt_entry_view_t *siblings;
    size_t n;
    uint64_t created = 0;
    if (crdt_mvreg_read(view, key, &siblings, &n) != 0)
        return 0;
    crdt_value_t *v;
    if (n && crdt_value_decode(siblings[0].data, siblings[0].len, &v) == 0) {
        created = v->created_hlc;
        crdt_value_destroy(&v);
    }
    free(siblings);
    return created;
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
        /* The history keeps the payload; the arena keeps it alive until the commit. */
        op->history.value = s_keep(&op->r->arena, v->data);
        op->history.len = v->len;
        v->data = NULL;
        v->len = 0;
        crdt_entry_view_t e = {"", 0, 0, op->hlc, buf, len};
        s_item_from_value(op->r, op->event, &e, type, s_now_ms());
    }
    free(buf);
    crdt_value_destroy(&v);
    return rc ? s_fail(op->r, rc, "'%.64s': %s", op->key, engram_strerror(rc)) : 0;
}

static int s_put(s_op_t *op)
{
    crdt_value_t *v;
    int rc = s_make_value(op->self, op->req, op->hlc, s_created_hlc(op->view, op->key),
                          op->req->value.data, op->req->value.len, &v);
    if (rc)
        return s_fail(op->r, rc, "%s", engram_strerror(rc));
    return s_write_encoded(op, v, "put", "reg", false);
}

/*  SHARE: a copy of the private value, keeping its user, metadata, expiry and provenance,
 *  with the sharing agent added to the contributors. */
static int s_share(s_op_t *op)
{
    const crdt_value_t *src = op->source;
    crdt_value_t *v;
    int rc = s_make_value(op->self, op->req, op->hlc, src->created_hlc, src->data, src->len, &v);
    if (rc == 0)
        rc = crdt_value_set_meta(v, src->meta_json);
    if (rc == 0)
        rc = crdt_value_set_user(v, src->user);
    if (rc == 0)
        rc = crdt_value_merge_provenance(v, src);
    if (rc) {
        crdt_value_destroy(&v);
        return s_fail(op->r, rc, "%s", engram_strerror(rc));
    }
    v->expires_at_ms = src->expires_at_ms;
    return s_write_encoded(op, v, "share", "reg", false);
}

static int s_log_append(s_op_t *op)
{
    crdt_value_t *v;
    int rc = s_make_value(op->self, op->req, op->hlc, 0, op->req->value.data,
                          op->req->value.len, &v);
    if (rc)
        return s_fail(op->r, rc, "%s", engram_strerror(rc));
    return s_write_encoded(op, v, "log_append", "log", true);
}

static int s_delete(s_op_t *op)
{
    op->history.op = "delete";
    int rc = crdt_scope_forget(op->view, op->key, &op->delta);
    return rc ? s_fail(op->r, rc, "'%.64s': %s", op->key, engram_strerror(rc)) : 0;
}

static int s_set_op(s_op_t *op)
{
    bool add = op->req->op == ENGRAM__OP__SET_ADD;
    op->history.op = add ? "set_add" : "set_remove";
    op->history.elem = op->req->elem;
    op->event->type = "set";
    op->event->value.data = (uint8_t *)op->req->elem;
    op->event->value.len = strlen(op->req->elem);
    int rc = add ? crdt_awset_add(op->view, op->key, op->req->elem, &op->delta)
                 : crdt_awset_remove(op->view, op->key, op->req->elem, &op->delta);
    return rc ? s_fail(op->r, rc, "'%.64s' in '%.64s': %s", op->req->elem, op->key,
                       engram_strerror(rc))
              : 0;
}

static int s_counter_add(s_op_t *op)
{
    op->history.op = "counter_add";
    op->history.amount = op->req->amount;
    op->event->type = "counter";
    op->event->amount = op->req->amount;
    int rc = crdt_counter_add(op->view, op->key, op->req->amount, &op->delta);
    if (rc == 0)
        rc = crdt_counter_value(op->view, op->key, &op->r->msg.number);
    return rc ? s_fail(op->r, rc, "counter '%.64s': %s", op->key, engram_strerror(rc)) : 0;
}

/*  --- reads ------------------------------------------------------------------------ */

static int s_load(node_server_t *self, s_reply_t *r, const char *sid, const char *key,
                  crdt_type_id_t type, crdt_scope_t **view)
{
    unsigned types = 0;
    int rc = node_store_view(self->store, sid, key, NODE_VIEW_OBJECT, NULL, view, &types);
    if (rc)
        return s_fail(r, rc, "cannot read '%.64s': %s", key, engram_strerror(rc));
    rc = s_check_type(types, type, key, r);
    if (rc == 0 && !(types & (1u << type)))
        rc = s_fail(r, ENGRAM_ENOTFOUND, "'%.64s' not found in %s", key, r->scope);
    if (rc)
        crdt_scope_destroy(view);
    return rc;
}

/*  One item per live value, in the given order; expired values are hidden. */
static int s_add_values(s_reply_t *r, const char *key, const crdt_entry_view_t *entries,
                        size_t n, const char *type)
{
    for (size_t i = 0; i < n; i++) {
        Engram__Item *item = s_add_item(r);
        if (!item)
            return s_fail(r, ENGRAM_ENOMEM, "out of memory");
        item->key = (char *)key;
        if (!s_item_from_value(r, item, &entries[i], type, s_now_ms()))
            r->msg.n_items--;
    }
    return 0;
}

static int s_get(node_server_t *self, const Engram__Request *req, const char *sid, s_reply_t *r)
{
    crdt_scope_t *view;
    int rc = s_load(self, r, sid, req->key, CRDT_REG, &view);
    if (rc)
        return rc;
    crdt_entry_view_t *siblings;
    size_t n;
    rc = crdt_mvreg_read(view, req->key, &siblings, &n);
    if (rc == 0) {
        rc = s_add_values(r, req->key, siblings, n, "reg");
        free(siblings);
    }
    crdt_scope_destroy(&view);
    if (rc == 0 && r->msg.n_items == 0)
        rc = s_fail(r, ENGRAM_ENOTFOUND, "'%.64s' not found in %s (expired)", req->key,
                    r->scope);
    return rc;
}

static int s_members(node_server_t *self, const Engram__Request *req, const char *sid,
                     s_reply_t *r)
{
    crdt_scope_t *view;
    int rc = s_load(self, r, sid, req->key, CRDT_SET, &view);
    if (rc)
        return rc;
    const char **members;
    size_t n;
    rc = crdt_awset_members(view, req->key, &members, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        Engram__Item *item = s_add_item(r);
        char *elem = s_str(&r->arena, members[i]);
        if (!item || !elem) {
            free(members);
            crdt_scope_destroy(&view);
            return s_fail(r, ENGRAM_ENOMEM, "out of memory");
        }
        item->key = (char *)req->key;
        item->type = "set";
        item->value.data = (uint8_t *)elem;
        item->value.len = strlen(elem);
    }
    if (rc == 0)
        free(members);
    crdt_scope_destroy(&view);
    return rc;
}

static int s_counter_get(node_server_t *self, const Engram__Request *req, const char *sid,
                         s_reply_t *r)
{
    crdt_scope_t *view;
    int rc = s_load(self, r, sid, req->key, CRDT_COUNTER, &view);
    if (rc == 0)
        rc = crdt_counter_value(view, req->key, &r->msg.number);
    crdt_scope_destroy(&view);
    return rc;
}

static int s_log_range(node_server_t *self, const Engram__Request *req, const char *sid,
                       s_reply_t *r)
{
    crdt_scope_t *view;
    int rc = s_load(self, r, sid, req->key, CRDT_LOG, &view);
    if (rc)
        return rc;
    crdt_entry_view_t *entries;
    size_t n;
    rc = crdt_log_range(view, req->key, &entries, &n);
    if (rc == 0) {
        rc = s_add_values(r, req->key, entries, n, "log");
        free(entries);
    }
    crdt_scope_destroy(&view);
    return rc;
}

static int s_list(node_server_t *self, const Engram__Request *req, const char *sid,
                  s_reply_t *r)
{
    node_listed_t *keys;
    size_t n;
    bool more;
    unsigned limit = req->limit && req->limit < self->config.list_limit ? req->limit
                                                                         : self->config.list_limit;
    int rc = node_store_list(self->store, sid, req->prefix, req->cursor, limit,
                             (uint64_t)s_now_ms(), &keys, &n, &more);
    if (rc)
        return s_fail(r, rc, "cannot list %s: %s", r->scope, engram_strerror(rc));
    for (size_t i = 0; i < n; i++) {
        Engram__Item *item = s_add_item(r);
        if (!item)
            break;
        item->key = s_str(&r->arena, keys[i].key);
        item->type = (char *)crdt_type_by_id(keys[i].type)->name;
    }
    if (more && n)
        r->msg.next_cursor = s_str(&r->arena, keys[n - 1].key);
    node_store_listed_free(keys, n);
    return r->arena.failed ? s_fail(r, ENGRAM_ENOMEM, "out of memory") : 0;
}

static int s_history_step(void *arg, uint64_t hlc, crdt_dot_t dot, const char *op,
                          const char *agent, const char *user, crdt_type_id_t type,
                          const char *elem, const uint8_t *value, size_t len, int64_t amount)
{
    s_reply_t *r = arg;
    Engram__Item *item = s_add_item(r);
    if (!item)
        return ENGRAM_ENOMEM;
    const crdt_type_t *t = crdt_type_by_id(type);
    item->type = (char *)(t ? t->name : "");
    item->op = s_str(&r->arena, op);
    item->author = s_str(&r->arena, agent);
    item->user = s_str(&r->arena, user);
    item->hlc = hlc;
    item->node = dot.node;
    item->n = dot.n;
    item->amount = amount;
    if (elem && *elem) {
        len = strlen(elem);
        value = (const uint8_t *)elem;
    }
    uint8_t *copy = s_keep(&r->arena, malloc(len ? len : 1));
    if (copy && len)
        memcpy(copy, value, len);
    item->value.data = copy;
    item->value.len = len;
    return r->arena.failed ? ENGRAM_ENOMEM : 0;
}

static int s_history(node_server_t *self, const Engram__Request *req, const char *sid,
                     s_reply_t *r)
{
    int rc = node_store_history(self->store, sid, req->key, s_history_step, r);
    if (rc)
        return s_fail(r, rc, "history of '%.64s': %s", req->key, engram_strerror(rc));
    if (r->msg.n_items == 0)
        return s_fail(r, ENGRAM_ENOTFOUND, "'%.64s' has no history in %s", req->key, r->scope);
    for (size_t i = 0; i < r->msg.n_items; i++)
        r->items[i]->key = (char *)req->key;
    return 0;
}

/*  The private value under key, for SHARE. Caller owns *value. */
static int s_private_value(node_server_t *self, const Engram__Request *req, s_reply_t *r,
                           crdt_value_t **value)
{
    *value = NULL;
    char sid[MAX_SCOPE_BYTES + 2];
    snprintf(sid, sizeof sid, "@%s", req->agent); /* s_request checked the agent's length */
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
    if (rc == 0 && s_expired(*value, s_now_ms())) {
        crdt_value_destroy(value);
        rc = ENGRAM_ENOTFOUND;
    }
    return rc ? s_fail(r, rc, "private '%.64s': %s", req->key, engram_strerror(rc)) : 0;
}

/*  --- tokens ----------------------------------------------------------------------- */

/*  The reply's causal token: the context of the scope it touched. */
static int s_token(node_server_t *self, s_reply_t *r)
{
    const crdt_ctx_t *ctx = node_store_ctx(self->store, r->sid);
    crdt_ctx_t *empty = ctx ? NULL : crdt_ctx_new();
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = crdt_ctx_encode(ctx ? ctx : empty, &buf, &len);
    crdt_ctx_destroy(&empty);
    if (rc)
        return rc;
    s_keep(&r->arena, buf);
    Engram__ScopeVersion version = ENGRAM__SCOPE_VERSION__INIT;
    version.scope = (char *)r->scope;
    version.ctx.data = buf;
    version.ctx.len = len;
    Engram__ScopeVersion *versions[1] = {&version};
    Engram__Token token = ENGRAM__TOKEN__INIT;
    token.schema_major = ENGRAM_SCHEMA_MAJOR;
    token.schema_minor = ENGRAM_SCHEMA_MINOR;
    token.scopes = versions;
    token.n_scopes = 1;
    size_t size = engram__token__get_packed_size(&token);
    uint8_t *out = s_keep(&r->arena, malloc(size ? size : 1));
    if (!out)
        return ENGRAM_ENOMEM;
    engram__token__pack(&token, out);
    r->msg.token.data = out;
    r->msg.token.len = size;
    return 0;
}

/*  0 when the node has seen everything the token covers, ENGRAM_EAGAIN-like 1 when not yet,
 *  or an error for a token that is not one. */
static int s_token_reached(node_server_t *self, const Engram__Request *req, s_reply_t *r)
{
    Engram__Token *token = engram__token__unpack(NULL, req->after.len, req->after.data);
    if (!token)
        return s_fail(r, ENGRAM_EINVAL, "the causal token is malformed");
    int rc = token->schema_major > ENGRAM_SCHEMA_MAJOR ? ENGRAM_EVERSION : 0;
    for (size_t i = 0; rc == 0 && i < token->n_scopes; i++) {
        Engram__Request scoped = *req;
        scoped.scope = token->scopes[i]->scope;
        char sid[MAX_SCOPE_BYTES + 2];
        crdt_ctx_t *want = NULL;
        rc = s_resolve(&scoped, sid, r);
        if (rc == 0 && crdt_ctx_decode(token->scopes[i]->ctx.data, token->scopes[i]->ctx.len,
                                       &want) != 0)
            rc = s_fail(r, ENGRAM_EINVAL, "the causal token is malformed");
        if (rc == 0) {
            const crdt_ctx_t *have = node_store_ctx(self->store, sid);
            if (!crdt_ctx_is_empty(want) && (!have || !crdt_ctx_covers(have, want)))
                rc = 1;
        }
        crdt_ctx_destroy(&want);
    }
    engram__token__free_unpacked(token, NULL);
    return rc;
}

/*  --- cluster administration -------------------------------------------------------- */

static bool s_cluster_op(Engram__Op op)
{
    return op == ENGRAM__OP__CLUSTER_STATUS || op == ENGRAM__OP__CLUSTER_REMOVE ||
           op == ENGRAM__OP__CLUSTER_JOIN;
}

static void s_free_status(void *status)
{
    node_cluster_status_free((Engram__ClusterStatus **)&status);
}

static int s_cluster_request(node_server_t *self, const Engram__Request *req, s_reply_t *r)
{
    if (!self->cluster)
        return s_fail(r, ENGRAM_EUNAVAILABLE, "this node runs alone: start it with --gossip");
    if (req->op == ENGRAM__OP__CLUSTER_STATUS) {
        Engram__ClusterStatus *status = NULL;
        int rc = node_cluster_status(self->cluster, &status);
        if (rc)
            return s_fail(r, rc, "cannot report the cluster: %s", engram_strerror(rc));
        if (!s_keep_with(&r->arena, status, s_free_status))
            return s_fail(r, ENGRAM_ENOMEM, "out of memory");
        r->msg.cluster = status;
        return 0;
    }
    if (req->op == ENGRAM__OP__CLUSTER_JOIN) {
        int rc = node_cluster_join(self->cluster, req->endpoint);
        return rc ? s_fail(r, rc, "join takes a member's gossip endpoint tcp://HOST:PORT, "
                                  "not '%.128s'",
                           req->endpoint)
                  : 0;
    }
    int rc = node_cluster_remove(self->cluster, req->node, req->statement.data,
                                 req->statement.len);
    if (rc == ENGRAM_EDENIED)
        return s_fail(r, rc, "the decommission of %016" PRIx64 " is not signed by this "
                             "cluster's admin",
                      req->node);
    if (rc)
        return s_fail(r, rc, "cannot remove %016" PRIx64 ": %s", req->node,
                      engram_strerror(rc));
    zsys_notice("engramd: member %016" PRIx64 " decommissioned by the admin", req->node);
    return 0;
}

/*  --- dispatch --------------------------------------------------------------------- */

static int s_dispatch(node_server_t *self, const Engram__Request *req, const char *sid,
                      s_reply_t *r)
{
    bool keyed = req->op != ENGRAM__OP__LIST && req->op != ENGRAM__OP__REMEMBER &&
                 req->op != ENGRAM__OP__STATS && !s_cluster_op(req->op);
    if (keyed) {
        int rc = s_check_key(req->key, "key", r);
        if (rc)
            return rc;
    }
    size_t meta_len = strlen(req->meta_json);
    if (meta_len && !node_json_valid(req->meta_json, meta_len))
        return s_fail(r, ENGRAM_EINVAL, "the metadata is not valid JSON");
    if (req->value.len + meta_len > self->config.max_value_bytes)
        return s_fail(r, ENGRAM_ETOOBIG,
                      "the value and its metadata have %zu bytes; this node's limit is %zu",
                      req->value.len + meta_len, self->config.max_value_bytes);
    if (req->replicas > 1 && !self->cluster)
        return s_fail(r, ENGRAM_EINVAL, "replicas=%u asked of a node that is in no cluster",
                      req->replicas);
    if (req->ttl_ms > MAX_TTL_MS)
        return s_fail(r, ENGRAM_EINVAL, "a TTL may be at most %" PRIu64 " ms (100 years)",
                      MAX_TTL_MS);
    switch (req->op) {
    case ENGRAM__OP__PUT:
        return s_mutate(self, req, r, sid, req->key, NODE_VIEW_OBJECT, NULL, CRDT_REG, s_put,
                        NULL);
    case ENGRAM__OP__GET:
        return s_get(self, req, sid, r);
    case ENGRAM__OP__DELETE:
        return s_mutate(self, req, r, sid, req->key, NODE_VIEW_OBJECT, NULL, 0, s_delete, NULL);
    case ENGRAM__OP__SET_ADD:
    case ENGRAM__OP__SET_REMOVE: {
        int rc = s_check_key(req->elem, "element", r);
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
        return s_log_range(self, req, sid, r);
    case ENGRAM__OP__LIST:
        return s_list(self, req, sid, r);
    case ENGRAM__OP__REMEMBER: {
        uint8_t raw[8];
        randombytes_buf(raw, sizeof raw);
        char *id = s_keep(&r->arena, malloc(4 + 2 * sizeof raw + 1));
        if (!id)
            return s_fail(r, ENGRAM_ENOMEM, "out of memory");
        memcpy(id, "mem-", 4);
        sodium_bin2hex(id + 4, 2 * sizeof raw + 1, raw, sizeof raw);
        r->msg.memory_id = id;
        return s_mutate(self, req, r, sid, id, NODE_VIEW_OBJECT, NULL, CRDT_REG, s_put, NULL);
    }
    case ENGRAM__OP__HISTORY:
        return s_history(self, req, sid, r);
    case ENGRAM__OP__SHARE: {
        if (sid[0] == '@')
            return s_fail(r, ENGRAM_ESCOPE, "share copies a private memory into a shared scope, "
                                            "not into private");
        crdt_value_t *source = NULL;
        int rc = s_private_value(self, req, r, &source);
        if (rc == 0)
            rc = s_mutate(self, req, r, sid, req->key, NODE_VIEW_OBJECT, NULL, CRDT_REG,
                          s_share, source);
        crdt_value_destroy(&source);
        return rc;
    }
    case ENGRAM__OP__CLUSTER_STATUS:
    case ENGRAM__OP__CLUSTER_REMOVE:
    case ENGRAM__OP__CLUSTER_JOIN:
        return s_cluster_request(self, req, r);
    case ENGRAM__OP__STATS:
        self->stats.uptime_ms = (uint64_t)(s_now_ms() - self->started_ms);
        self->stats.scopes = node_store_scopes(self->store);
        self->stats.subscribers = zlist_size(self->subscribers);
        self->stats.replica_id = node_store_replica(self->store); /* the dot check may renew it */
        r->msg.stats = &self->stats;
        return 0;
    default:
        return s_fail(r, ENGRAM_EINVAL, "unknown operation %d", (int)req->op);
    }
}

/*  --- replies, events, subscriptions ----------------------------------------------- */

static void s_out_free(s_out_t **out_p)
{
    s_out_t *out = *out_p;
    zframe_destroy(&out->routing);
    free(out->reply);
    free(out->write_sid);
    free(out->event_sid);
    free(out->event);
    free(out);
    *out_p = NULL;
}

/*  Encodes the reply (and its event) into the outbox. */
static void s_queue_reply(node_server_t *self, zframe_t *routing, uint64_t id, int code,
                          s_reply_t *r)
{
    r->msg.schema_major = ENGRAM_SCHEMA_MAJOR;
    r->msg.schema_minor = ENGRAM_SCHEMA_MINOR;
    r->msg.id = id;
    r->msg.code = code;
    if (code) {
        self->stats.errors++;
        r->msg.message = r->message[0] ? r->message : (char *)engram_strerror(code);
        r->msg.n_items = 0;
        r->msg.stats = NULL;
        r->msg.token.len = 0;
        r->event = NULL;
    } else if (r->sid && s_token(self, r) == 0 && r->event) {
        r->event->token = r->msg.token;
    }
    s_out_t *out = calloc(1, sizeof *out);
    if (!out) {
        if (routing)
            zframe_destroy(&routing);
        return;
    }
    out->routing = routing;
    out->id = id;
    out->wrote = r->wrote && code == 0;
    if (routing) { /* no routing: only an event, from another node's write */
        out->reply_len = engram__reply__get_packed_size(&r->msg);
        out->reply = malloc(out->reply_len ? out->reply_len : 1);
        if (out->reply)
            engram__reply__pack(&r->msg, out->reply);
    }
    if (r->event && code == 0) {
        out->event_len = engram__event__get_packed_size(r->event);
        out->event = malloc(out->event_len ? out->event_len : 1);
        out->event_sid = strdup(r->sid);
        if (out->event)
            engram__event__pack(r->event, out->event);
    }
    if (out->wrote && r->replicas > 1) {
        out->replicas = r->replicas;
        out->write_sid = strdup(r->sid);
        out->dot = r->dot;
        out->deadline_ms = s_now_ms() + (r->timeout_ms ? r->timeout_ms
                                                       : ENGRAM_DEFAULT_REPLICAS_TIMEOUT_MS);
    }
    zlist_append(self->outbox, out);
}

/*  Sends [routing][payload] now: 0 sent, 1 the peer's pipe is full, -1 the peer is gone. */
static int s_transmit(node_server_t *self, zframe_t *routing, const void *data, size_t len)
{
    zmsg_t *msg = zmsg_new();
    zmsg_append(msg, &(zframe_t *){zframe_dup(routing)});
    zmsg_addmem(msg, data, len);
    int rc = zmsg_send(&msg, self->router);
    int err = zmq_errno();
    zmsg_destroy(&msg);
    if (rc == 0)
        return 0;
    return err == EHOSTUNREACH ? -1 : 1;
}

static void s_subscriber_free(s_subscriber_t **sub_p)
{
    s_subscriber_t *sub = *sub_p;
    zframe_destroy(&sub->routing);
    free(sub->sid);
    free(sub);
    *sub_p = NULL;
}

static void s_peer_free(void *item)
{
    s_peer_t *peer = item;
    s_queued_t *q;
    while ((q = zlist_pop(peer->queue))) {
        zframe_destroy(&q->payload);
        free(q);
    }
    zlist_destroy(&peer->queue);
    zframe_destroy(&peer->routing);
    free(peer);
}

static void s_output(node_server_t *self, zframe_t *routing, const void *data, size_t len,
                     bool event);

/*  Ends every subscription of a connection: with an error reply to each (code 0: the
 *  connection is gone, nothing to tell). */
static void s_end_subscriptions(node_server_t *self, zframe_t *routing, int code)
{
    zlist_t *ended = zlist_new();
    for (s_subscriber_t *sub = zlist_first(self->subscribers); sub;
         sub = zlist_next(self->subscribers))
        if (zframe_eq(sub->routing, routing))
            zlist_append(ended, sub);
    s_subscriber_t *sub;
    while ((sub = zlist_pop(ended))) {
        zlist_remove(self->subscribers, sub);
        if (code) {
            zsys_warning("engramd: a subscriber of %s fell more than %zu events behind; its "
                         "subscription ends",
                         sub->sid, self->config.subscriber_backlog);
            Engram__Reply reply = ENGRAM__REPLY__INIT;
            reply.schema_major = ENGRAM_SCHEMA_MAJOR;
            reply.schema_minor = ENGRAM_SCHEMA_MINOR;
            reply.id = sub->request_id;
            reply.code = code;
            reply.message = "the subscriber fell too far behind; subscribe again";
            uint8_t buf[256];
            size_t len = engram__reply__pack(&reply, buf);
            s_output(self, routing, buf, len, false);
        }
        s_subscriber_free(&sub);
    }
    zlist_destroy(&ended);
}

/*  Sends a reply or an event to a connection, after whatever it has queued; queues it if the
 *  pipe is full. */
static void s_output(node_server_t *self, zframe_t *routing, const void *data, size_t len,
                     bool event)
{
    char *id = zframe_strhex(routing);
    s_peer_t *peer = id ? zhash_lookup(self->peers, id) : NULL;
    if (!peer) {
        int rc = s_transmit(self, routing, data, len);
        if (rc == -1)
            s_end_subscriptions(self, routing, 0);
        if (rc != 1 || !id) {
            free(id);
            return;
        }
        peer = calloc(1, sizeof *peer);
        if (!peer) {
            free(id);
            return;
        }
        peer->routing = zframe_dup(routing);
        peer->queue = zlist_new();
        zhash_insert(self->peers, id, peer);
        zhash_freefn(self->peers, id, s_peer_free);
    }
    free(id);
    if (event && peer->events >= self->config.subscriber_backlog) {
        s_end_subscriptions(self, routing, ENGRAM_ELAGGED);
        return;
    }
    s_queued_t *q = calloc(1, sizeof *q);
    if (!q)
        return;
    q->payload = zframe_new(data, len);
    q->event = event;
    peer->events += event;
    zlist_append(peer->queue, q);
}

/*  Sends what full connections have queued, as far as their pipes now take it. */
static void s_flush_peers(node_server_t *self)
{
    zlist_t *done = zlist_new();
    zlist_autofree(done);
    for (s_peer_t *peer = zhash_first(self->peers); peer; peer = zhash_next(self->peers)) {
        s_queued_t *q;
        int rc = 0;
        while ((q = zlist_first(peer->queue)) &&
               (rc = s_transmit(self, peer->routing, zframe_data(q->payload),
                                zframe_size(q->payload))) == 0) {
            zlist_pop(peer->queue);
            peer->events -= q->event;
            zframe_destroy(&q->payload);
            free(q);
        }
        if (rc == -1 || zlist_size(peer->queue) == 0)
            zlist_append(done, (void *)zhash_cursor(self->peers));
        if (rc == -1)
            s_end_subscriptions(self, peer->routing, 0);
    }
    for (char *id = zlist_first(done); id; id = zlist_next(done))
        zhash_delete(self->peers, id);
    zlist_destroy(&done);
}

static void s_publish(node_server_t *self, const s_out_t *out)
{
    Engram__Event *event = engram__event__unpack(NULL, out->event_len, out->event);
    if (!event)
        return;
    zlist_t *targets = zlist_new(); /* s_output may end subscriptions while we iterate */
    for (s_subscriber_t *sub = zlist_first(self->subscribers); sub;
         sub = zlist_next(self->subscribers))
        if (strcmp(sub->sid, out->event_sid) == 0)
            zlist_append(targets, sub);
    for (s_subscriber_t *sub = zlist_first(targets); sub; sub = zlist_next(targets)) {
        if (!zlist_exists(self->subscribers, sub))
            continue;
        Engram__Reply reply = ENGRAM__REPLY__INIT;
        reply.schema_major = ENGRAM_SCHEMA_MAJOR;
        reply.schema_minor = ENGRAM_SCHEMA_MINOR;
        reply.id = sub->request_id;
        reply.event = event;
        size_t len = engram__reply__get_packed_size(&reply);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf)
            continue;
        engram__reply__pack(&reply, buf);
        zframe_t *routing = zframe_dup(sub->routing);
        s_output(self, routing, buf, len, true);
        zframe_destroy(&routing);
        free(buf);
    }
    zlist_destroy(&targets);
    engram__event__free_unpacked(event, NULL);
}

/*  Sends this turn's replies once its writes are durable (sync_rc 0); if the sync failed,
 *  every write's acknowledgement becomes an error and its event is not published. */
static void s_flush_outbox(node_server_t *self, int sync_rc)
{
    s_out_t *out;
    while ((out = zlist_pop(self->outbox))) {
        if (out->wrote && sync_rc) {
            Engram__Reply reply = ENGRAM__REPLY__INIT;
            char message[128];
            snprintf(message, sizeof message, "the write could not be made durable: %s",
                     engram_strerror(sync_rc));
            reply.schema_major = ENGRAM_SCHEMA_MAJOR;
            reply.schema_minor = ENGRAM_SCHEMA_MINOR;
            reply.id = out->id;
            reply.code = sync_rc;
            reply.message = message;
            free(out->reply);
            free(out->event);
            out->event = NULL;
            out->reply_len = engram__reply__get_packed_size(&reply);
            out->reply = malloc(out->reply_len);
            if (out->reply)
                engram__reply__pack(&reply, out->reply);
            self->stats.errors++;
        }
        if (out->event)
            s_publish(self, out);
        if (out->replicas > 1 && sync_rc == 0 && out->write_sid) {
            zlist_append(self->replicating, out); /* durable here; answered once replicated */
            continue;
        }
        if (out->reply)
            s_output(self, out->routing, out->reply, out->reply_len, false);
        s_out_free(&out);
    }
}

/*  Answers the writes waiting for replicas that now have them, or whose time is up: the
 *  write stays durable here either way, and the reply says how many nodes held it. */
static void s_check_replicating(node_server_t *self)
{
    int64_t now = s_now_ms();
    zlist_t *ready = zlist_new();
    for (s_out_t *out = zlist_first(self->replicating); out;
         out = zlist_next(self->replicating)) {
        out->holders =
            1 + node_cluster_holders(self->cluster, out->write_sid, out->dot.node, out->dot.n);
        if (out->holders >= out->replicas || now >= out->deadline_ms)
            zlist_append(ready, out);
    }
    s_out_t *out;
    while ((out = zlist_pop(ready))) {
        zlist_remove(self->replicating, out);
        unsigned holders = out->holders;
        Engram__Reply *reply = engram__reply__unpack(NULL, out->reply_len, out->reply);
        char message[160];
        if (reply) {
            char *unpacked_message = reply->message;
            reply->replicas = holders;
            if (holders < out->replicas) {
                snprintf(message, sizeof message,
                         "the write is durable here, but %u of the %u nodes asked for held it "
                         "in time",
                         holders, out->replicas);
                reply->code = ENGRAM_EREPLICAS;
                reply->message = message;
                self->stats.errors++;
            }
            size_t len = engram__reply__get_packed_size(reply);
            uint8_t *buf = malloc(len ? len : 1);
            if (buf) {
                engram__reply__pack(reply, buf);
                s_output(self, out->routing, buf, len, false);
                free(buf);
            }
            reply->message = unpacked_message; /* the unpacker frees its own */
            engram__reply__free_unpacked(reply, NULL);
        }
        s_out_free(&out);
    }
    zlist_destroy(&ready);
}

/*  --- changes from other nodes ------------------------------------------------------- */

typedef struct {
    node_server_t *self;
    const char *sid;
    int64_t now;
} s_remote_t;

/*  An event for a change another node made, built in its own reply's arena. */
typedef struct {
    s_reply_t r;
    Engram__Item *item;
    Engram__Event *event;
} s_remote_event_t;

/*  Starts the event of key (an item of type, to be filled in); false when out of memory,
 *  after which only s_remote_event_send is called, and sends nothing. */
static bool s_remote_event_init(s_remote_event_t *e, const char *sid, const char *key,
                                crdt_type_id_t type)
{
    s_reply_init(&e->r);
    e->r.sid = sid;
    e->r.scope = sid;
    e->item = s_keep(&e->r.arena, malloc(sizeof *e->item));
    e->event = s_keep(&e->r.arena, malloc(sizeof *e->event));
    if (!e->item || !e->event)
        return false;
    engram__item__init(e->item);
    engram__event__init(e->event);
    e->item->key = (char *)key;
    e->item->type = (char *)s_type_name(1u << type);
    return true;
}

/*  Queues the event (op NULL: drops it) for the scope's subscribers and frees its arena. */
static void s_remote_event_send(node_server_t *self, s_remote_event_t *e, const char *op)
{
    if (op && e->item && e->event) {
        e->event->scope = (char *)e->r.sid;
        e->event->key = e->item->key;
        e->event->op = (char *)op;
        e->event->item = e->item;
        e->event->author = e->item->author;
        e->r.event = e->event;
        s_queue_reply(self, NULL, 0, 0, &e->r);
    }
    s_arena_free(&e->r.arena);
}

/*  One entry a remote delta brought: an event for the scope's subscribers, sent with this
 *  turn's replies (after the sync). */
static int s_remote_entry(void *arg, crdt_type_id_t type, const char *key,
                          const crdt_entry_view_t *entry)
{
    static const char *ops[] = {"", "put", "set_add", "counter_changed", "log_append"};
    s_remote_t *remote = arg;
    s_remote_event_t e;
    const char *op = type <= CRDT_TYPE_MAX ? ops[type] : NULL;
    if (s_remote_event_init(&e, remote->sid, key, type)) {
        Engram__Item *item = e.item;
        if (type == CRDT_REG || type == CRDT_LOG) {
            if (!s_item_from_value(&e.r, item, entry, item->type, remote->now))
                op = NULL; /* expired */
        } else if (type == CRDT_SET) { /* a set element: no value header */
            item->value.data = (uint8_t *)entry->elem;
            item->value.len = strlen(entry->elem);
        } else { /* the entry is its writer's running total: show the counter's value */
            crdt_scope_t *view = NULL;
            unsigned types = 0;
            if (node_store_view(remote->self->store, remote->sid, key, NODE_VIEW_OBJECT, NULL,
                                &view, &types) == 0)
                crdt_counter_value(view, key, &item->amount);
            crdt_scope_destroy(&view);
        }
        if (type != CRDT_REG && type != CRDT_LOG) {
            item->hlc = entry->hlc;
            item->node = entry->node;
            item->n = entry->n;
        }
    }
    s_remote_event_send(remote->self, &e, op);
    return 0;
}

/*  A live entry a remote delta is about to remove. */
typedef struct {
    char *key;
    char *elem;
    crdt_type_id_t type;
} s_removal_t;

static void s_removal_free(void *item)
{
    s_removal_t *removal = item;
    free(removal->key);
    free(removal->elem);
    free(removal);
}

typedef struct {
    node_server_t *self;
    const char *sid;
} s_collect_t;

/*  Notes the local entries a removal record of the delta removes. */
static int s_collect_removed(void *arg, crdt_dot_t op, const crdt_dot_t *removed, size_t n)
{
    (void)op;
    s_collect_t *c = arg;
    for (size_t i = 0; i < n; i++) {
        s_removal_t *removal = calloc(1, sizeof *removal);
        if (!removal)
            return ENGRAM_ENOMEM;
        if (node_store_entry_of(c->self->store, c->sid, removed[i], &removal->key,
                                &removal->elem, &removal->type) == 0)
            zlist_append(c->self->removals, removal);
        else
            s_removal_free(removal);
    }
    return 0;
}

/*  "key\0elem" of every entry of the delta, and "key" alone: what it writes anew. */
static int s_note_written(void *arg, crdt_type_id_t type, const char *key,
                          const crdt_entry_view_t *entry)
{
    (void)type;
    zhash_t *written = arg;
    char *both = zsys_sprintf("%s%c%s", key, 1, entry->elem);
    if (both)
        zhash_insert(written, both, "");
    zstr_free(&both);
    zhash_insert(written, key, "");
    return 0;
}

/*  Events for what a remote delta removed: a set element that it does not add again
 *  (set_remove), a register or log that it does not write again (delete). A counter's entries
 *  are replaced on every increment: its change shows as counter_changed. */
static void s_publish_removals(node_server_t *self, const char *sid,
                               const crdt_scope_t *delta)
{
    zhash_t *written = zhash_new(), *told = zhash_new();
    crdt_scope_foreach_entry(delta, s_note_written, written);
    s_removal_t *removal;
    while ((removal = zlist_pop(self->removals))) {
        bool set = removal->type == CRDT_SET;
        char *what = set ? zsys_sprintf("%s%c%s", removal->key, 1, removal->elem)
                         : strdup(removal->key);
        if (what && removal->type != CRDT_COUNTER && !zhash_lookup(written, what) &&
            !zhash_lookup(told, what)) {
            zhash_insert(told, what, "");
            s_remote_event_t e;
            if (s_remote_event_init(&e, sid, removal->key, removal->type) && set) {
                e.item->value.data = (uint8_t *)removal->elem;
                e.item->value.len = strlen(removal->elem);
            }
            s_remote_event_send(self, &e, set ? "set_remove" : "delete");
        }
        free(what);
        s_removal_free(removal);
    }
    zhash_destroy(&written);
    zhash_destroy(&told);
}

/*  A delta from another node: before it is applied, the local entries it removes are noted;
 *  after, its new entries and those removals become events for the scope's subscribers. */
static void s_remote_applied(void *arg, const char *sid, const crdt_scope_t *delta,
                             bool applied)
{
    node_server_t *self = arg;
    bool subscribed = false;
    for (s_subscriber_t *sub = zlist_first(self->subscribers); sub && !subscribed;
         sub = zlist_next(self->subscribers))
        subscribed = strcmp(sub->sid, sid) == 0;
    if (!subscribed)
        return;
    if (!applied) {
        s_removal_t *stale;
        while ((stale = zlist_pop(self->removals))) /* a delta that failed to apply */
            s_removal_free(stale);
        s_collect_t collect = {self, sid};
        crdt_scope_foreach_record(delta, s_collect_removed, &collect);
        return;
    }
    s_remote_t remote = {self, sid, s_now_ms()};
    crdt_scope_foreach_entry(delta, s_remote_entry, &remote);
    s_publish_removals(self, sid, delta);
}

/*  --- requests --------------------------------------------------------------------- */

static void s_subscribe(node_server_t *self, zframe_t *routing, const Engram__Request *req,
                        const char *sid, s_reply_t *r)
{
    bool subscribe = req->op == ENGRAM__OP__SUBSCRIBE;
    for (s_subscriber_t *sub = zlist_first(self->subscribers); sub;
         sub = zlist_next(self->subscribers)) {
        if (zframe_eq(sub->routing, routing) && strcmp(sub->sid, sid) == 0) {
            zlist_remove(self->subscribers, sub);
            s_subscriber_free(&sub);
            break;
        }
    }
    if (!subscribe)
        return;
    s_subscriber_t *sub = calloc(1, sizeof *sub);
    if (sub) {
        sub->routing = zframe_dup(routing);
        sub->request_id = req->id;
        sub->sid = strdup(sid);
    }
    if (!sub || !sub->sid) {
        if (sub)
            s_subscriber_free(&sub);
        s_fail(r, ENGRAM_ENOMEM, "out of memory");
        return;
    }
    zlist_append(self->subscribers, sub);
}

static bool s_op_writes(Engram__Op op)
{
    switch (op) {
    case ENGRAM__OP__PUT:
    case ENGRAM__OP__DELETE:
    case ENGRAM__OP__SET_ADD:
    case ENGRAM__OP__SET_REMOVE:
    case ENGRAM__OP__COUNTER_ADD:
    case ENGRAM__OP__LOG_APPEND:
    case ENGRAM__OP__REMEMBER:
    case ENGRAM__OP__SHARE:
        return true;
    default:
        return false;
    }
}

/*  Handles one request; takes ownership of routing and req (parking them, or freeing them
 *  once the reply is queued). */
static void s_request(node_server_t *self, zframe_t *routing, Engram__Request *req)
{
    s_reply_t r;
    s_reply_init(&r);
    char sid[MAX_SCOPE_BYTES + 2];
    int rc = 0;
    if (req->schema_major > ENGRAM_SCHEMA_MAJOR)
        rc = s_fail(&r, ENGRAM_EVERSION, "request schema %u is newer than this node's %d",
                    req->schema_major, ENGRAM_SCHEMA_MAJOR);
    else if (!req->agent[0])
        rc = s_fail(&r, ENGRAM_EINVAL, "a request must name its agent");
    else if (strlen(req->agent) > MAX_NAME_BYTES || strlen(req->user) > MAX_NAME_BYTES ||
             !s_name_ok(req->agent) || !s_name_ok(req->user))
        rc = s_fail(&r, ENGRAM_EINVAL, "agent and user names are UTF-8 without spaces or control "
                                       "characters, at most %d bytes",
                    MAX_NAME_BYTES);
    bool scoped = req->op != ENGRAM__OP__STATS && !s_cluster_op(req->op);
    if (rc == 0 && scoped && (rc = s_resolve(req, sid, &r)) == 0) {
        r.sid = sid;
        r.scope = req->scope;
    }
    r.replicas = req->replicas;
    r.timeout_ms = req->timeout_ms;
    if (rc == 0 && scoped && sid[0] != '@' && s_op_writes(req->op) && self->cluster &&
        !node_cluster_dots_checked(self->cluster)) {
        /* the node may not issue dots yet (node_cluster_dots_checked): held, in order */
        s_parked_t *held = calloc(1, sizeof *held);
        if (held) {
            held->routing = routing;
            held->request = req;
            zlist_append(self->held, held);
            s_arena_free(&r.arena);
            return;
        }
        rc = s_fail(&r, ENGRAM_ENOMEM, "out of memory");
    }
    if (rc == 0 && req->op == ENGRAM__OP__GET && req->after.len) {
        rc = s_token_reached(self, req, &r);
        if (rc == 1) { /* not yet: park it */
            s_parked_t *parked = calloc(1, sizeof *parked);
            if (parked) {
                parked->routing = routing;
                parked->request = req;
                parked->deadline_ms = s_now_ms() + (req->timeout_ms ? req->timeout_ms
                                                                   : ENGRAM_DEFAULT_AFTER_TIMEOUT_MS);
                zlist_append(self->parked, parked);
                s_arena_free(&r.arena);
                return;
            }
            rc = s_fail(&r, ENGRAM_ENOMEM, "out of memory");
        }
    }
    if (rc == 0 && (req->op == ENGRAM__OP__SUBSCRIBE || req->op == ENGRAM__OP__UNSUBSCRIBE)) {
        s_subscribe(self, routing, req, sid, &r);
        rc = r.message[0] ? ENGRAM_ENOMEM : 0;
    } else if (rc == 0) {
        rc = s_dispatch(self, req, scoped ? sid : NULL, &r);
    }
    s_queue_reply(self, routing, req->id, rc, &r);
    s_arena_free(&r.arena);
    engram__request__free_unpacked(req, NULL);
}

/*  Answers a frame that is not a request: an error reply, nothing else. */
static void s_malformed(node_server_t *self, zframe_t *routing, const char *why)
{
    self->stats.malformed++;
    s_reply_t r;
    s_reply_init(&r);
    s_fail(&r, ENGRAM_EDECODE, "%s", why);
    s_queue_reply(self, routing, 0, ENGRAM_EDECODE, &r);
    s_arena_free(&r.arena);
}

static void s_receive(node_server_t *self, zmsg_t *msg)
{
    self->stats.requests++;
    zframe_t *routing = zmsg_pop(msg);
    if (zmsg_size(msg) != 1) {
        s_malformed(self, routing, "a request is exactly one frame");
    } else {
        zframe_t *payload = zmsg_first(msg);
        Engram__Request *req =
            engram__request__unpack(NULL, zframe_size(payload), zframe_data(payload));
        if (req)
            s_request(self, routing, req);
        else
            s_malformed(self, routing, "the frame is not an engram.Request");
    }
    zmsg_destroy(&msg);
}

/*  Answers the parked GETs whose token is now reached or whose time is up. */
static void s_check_parked(node_server_t *self)
{
    int64_t now = s_now_ms();
    zlist_t *ready = zlist_new();
    for (s_parked_t *p = zlist_first(self->parked); p; p = zlist_next(self->parked)) {
        s_reply_t r;
        s_reply_init(&r);
        int rc = s_token_reached(self, p->request, &r);
        s_arena_free(&r.arena);
        if (rc != 1 || now >= p->deadline_ms)
            zlist_append(ready, p);
    }
    s_parked_t *p;
    while ((p = zlist_pop(ready))) {
        zlist_remove(self->parked, p);
        s_reply_t r;
        s_reply_init(&r);
        int rc = s_token_reached(self, p->request, &r);
        if (rc == 1) {
            s_fail(&r, ENGRAM_ETIMEDOUT, "this node has not seen the token's writes after %u ms",
                   p->request->timeout_ms ? p->request->timeout_ms
                                          : ENGRAM_DEFAULT_AFTER_TIMEOUT_MS);
            s_queue_reply(self, p->routing, p->request->id, ENGRAM_ETIMEDOUT, &r);
            s_arena_free(&r.arena);
            engram__request__free_unpacked(p->request, NULL);
        } else {
            s_arena_free(&r.arena);
            p->request->after.len = 0; /* reached: answer it as a plain GET */
            s_request(self, p->routing, p->request);
        }
        free(p);
    }
    zlist_destroy(&ready);
}

/*  Runs the shared writes held for the dot check, in the order they came, once it is done. */
static void s_release_held(node_server_t *self)
{
    if (!node_cluster_dots_checked(self->cluster))
        return;
    s_parked_t *held;
    while ((held = zlist_pop(self->held))) {
        s_request(self, held->routing, held->request);
        free(held);
    }
}

/*  One turn: every waiting request, one group commit, then the replies. */
static void s_turn(node_server_t *self)
{
    for (unsigned i = 0; i < self->config.max_batch; i++) {
        zmsg_t *msg = zmsg_recv(self->router);
        if (!msg)
            break;
        s_receive(self, msg);
        if (!self->config.durability_sync)
            s_flush_outbox(self, 0); /* nothing to wait for: answer at once */
    }
    int64_t now = s_now_ms();
    if (self->cluster) {
        node_cluster_receive(self->cluster, self->config.max_batch * 8, (uint64_t)now);
        s_release_held(self);
    }
    if (now >= self->next_purge_ms) {
        uint64_t purged = 0;
        if (node_store_purge(self->store, (uint64_t)now, &purged) == 0)
            self->stats.purged += purged;
        self->next_purge_ms = now + (int64_t)self->config.purge_interval_ms;
    }
    s_check_parked(self);
    int sync_rc = 0;
    if (self->config.durability_sync) {
        bool wrote = false;
        for (s_out_t *out = zlist_first(self->outbox); out; out = zlist_next(self->outbox))
            wrote |= out->wrote;
        sync_rc = node_store_sync(self->store);
        if (wrote && sync_rc == 0)
            self->stats.commits++;
    }
    s_flush_peers(self);
    s_flush_outbox(self, sync_rc);
    if (self->cluster) {
        if (sync_rc == 0)
            node_cluster_send(self->cluster); /* what it announces is durable now */
        s_check_replicating(self);
    }
}

/*  How long the loop may sleep: until the next purge or parked deadline. */
static int s_timeout(node_server_t *self)
{
    int64_t now = s_now_ms(), until = self->next_purge_ms;
    for (s_parked_t *p = zlist_first(self->parked); p; p = zlist_next(self->parked))
        if (p->deadline_ms < until)
            until = p->deadline_ms;
    if (zhash_size(self->peers))
        until = now + 10; /* retry full connections soon */
    if ((zlist_size(self->parked) || zlist_size(self->held)) && until > now + 50)
        until = now + 50; /* a parked token may be reached by another's write */
    for (s_out_t *out = zlist_first(self->replicating); out;
         out = zlist_next(self->replicating))
        if (out->deadline_ms < until)
            until = out->deadline_ms;
    if (self->cluster) {
        int cluster = node_cluster_timeout(self->cluster, (uint64_t)now);
        if (now + cluster < until)
            until = now + cluster;
    }
    return until <= now ? 0 : (int)(until - now);
}

/*  --- life -------------------------------------------------------------------------- */

int node_server_new(const node_config_t *config, node_server_t **self_p, char *why,
                    size_t why_len)
{
    *self_p = NULL;
    node_server_t *self = calloc(1, sizeof *self);
    if (!self)
        return ENGRAM_ENOMEM;
    self->config = *config;
    self->config.data_dir = strdup(config->data_dir);
    self->config.api_endpoint = strdup(config->api_endpoint);
    /* the cluster's settings are read once, below; the caller keeps owning them */
    self->config.gossip_endpoint = NULL;
    self->config.join = NULL;
    self->config.admission_path = NULL;
    self->subscribers = zlist_new();
    self->peers = zhash_new();
    self->parked = zlist_new();
    self->held = zlist_new();
    self->outbox = zlist_new();
    self->replicating = zlist_new();
    self->removals = zlist_new();
    engram__stats__init(&self->stats);
    self->stats.durability = config->durability_sync ? "sync" : "async";
    self->started_ms = s_now_ms();
    if (!self->config.data_dir || !self->config.api_endpoint) {
        node_server_destroy(&self);
        return ENGRAM_ENOMEM;
    }
    int rc = node_store_open(config->data_dir, config->durability_sync, &self->store, why,
                             why_len);
    if (rc) {
        node_server_destroy(&self);
        return rc;
    }
    node_store_set_min_free(self->store, config->min_free_bytes);
    self->stats.node_id = node_store_node_id(self->store);
    self->clock.last = node_store_hlc_floor(self->store);
    self->router = zsock_new(ZMQ_ROUTER);
    if (self->router) {
        zsock_set_maxmsgsize(self->router, (int64_t)config->max_frame_bytes);
        zsock_set_router_mandatory(self->router, 1);
        zsock_set_rcvtimeo(self->router, 0);
        zsock_set_sndtimeo(self->router, 0);
        zsock_set_linger(self->router, 100);
    }
    if (!self->router || zsock_bind(self->router, "%s", config->api_endpoint) < 0) {
        snprintf(why, why_len, "cannot bind the agent API to '%s': %s", config->api_endpoint,
                 zmq_strerror(zmq_errno()));
        node_server_destroy(&self);
        return ENGRAM_EUNAVAILABLE;
    }
    if (config->gossip_endpoint) {
        node_cluster_config_t cluster = {.data_dir = config->data_dir,
                                         .gossip_endpoint = config->gossip_endpoint,
                                         .admission_path = config->admission_path,
                                         .join = config->join,
                                         .fanout = config->fanout,
                                         .gossip_interval_ms = config->gossip_interval_ms,
                                         .max_message_bytes = config->max_gossip_bytes};
        rc = node_cluster_new(&cluster, self->store, &self->cluster, why, why_len);
        if (rc) {
            node_server_destroy(&self);
            return rc;
        }
        node_cluster_on_applied(self->cluster, s_remote_applied, self);
    }
    *self_p = self;
    return 0;
}

int node_server_run(node_server_t *self)
{
    zpoller_t *poller = zpoller_new(self->router, NULL);
    if (poller && self->cluster) {
        zpoller_add(poller, node_cluster_gossip_socket(self->cluster));
        zpoller_add(poller, node_cluster_intro_socket(self->cluster));
    }
    if (!poller)
        return ENGRAM_ENOMEM;
    while (!zsys_interrupted) {
        zpoller_wait(poller, s_timeout(self));
        if (zpoller_terminated(poller))
            break;
        s_turn(self);
    }
    zpoller_destroy(&poller);
    return 0;
}

void node_server_destroy(node_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    node_server_t *self = *self_p;
    s_subscriber_t *sub;
    while (self->subscribers && (sub = zlist_pop(self->subscribers)))
        s_subscriber_free(&sub);
    s_parked_t *p;
    while (self->parked && (p = zlist_pop(self->parked))) {
        zframe_destroy(&p->routing);
        engram__request__free_unpacked(p->request, NULL);
        free(p);
    }
    while (self->held && (p = zlist_pop(self->held))) {
        zframe_destroy(&p->routing);
        engram__request__free_unpacked(p->request, NULL);
        free(p);
    }
    zlist_destroy(&self->held);
    s_out_t *out;
    while (self->outbox && (out = zlist_pop(self->outbox)))
        s_out_free(&out);
    while (self->replicating && (out = zlist_pop(self->replicating)))
        s_out_free(&out);
    zlist_destroy(&self->replicating);
    s_removal_t *removal;
    while (self->removals && (removal = zlist_pop(self->removals)))
        s_removal_free(removal);
    zlist_destroy(&self->removals);
    node_cluster_destroy(&self->cluster);
    zlist_destroy(&self->subscribers);
    zhash_destroy(&self->peers);
    zlist_destroy(&self->parked);
    zlist_destroy(&self->outbox);
    zsock_destroy(&self->router);
    node_store_close(&self->store);
    node_config_fini(&self->config);
    free(self);
    *self_p = NULL;
}
