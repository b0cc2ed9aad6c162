/*  node/api remote: the changes other nodes make, told to the scope's subscribers. */
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

/*  --- changes from other nodes ------------------------------------------------------- */

typedef struct {
    node_server_t *self;
    const char *sid;
    int64_t now;
} s_remote_t;

/*  An event for a change another node made, built in its own reply's arena. */
typedef struct {
    api_reply_t r;
    Engram__Item *item;
    Engram__Event *event;
} s_remote_event_t;

/*  Starts the event of key (an item of type, to be filled in); false when out of memory,
 *  after which only s_remote_event_send is called, and sends nothing. */
static bool s_remote_event_init(s_remote_event_t *e, const char *sid, const char *key,
                                crdt_type_id_t type)
{
    api__reply_init(&e->r);
    e->r.sid = sid;
    e->r.scope = sid;
    e->item = api__keep(&e->r.arena, malloc(sizeof *e->item));
    e->event = api__keep(&e->r.arena, malloc(sizeof *e->event));
    if (!e->item || !e->event)
        return false;
    engram__item__init(e->item);
    engram__event__init(e->event);
    e->item->key = (char *)key;
    e->item->type = (char *)api__type_name(1u << type);
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
        e->r.remote = true;
        api__queue_reply(self, NULL, 0, 0, &e->r);
    }
    api__arena_free(&e->r.arena);
}

/*  One entry a remote delta brought: an event for the scope's subscribers, sent with this
 *  turn's replies and local events, or before its fsync when it has none
 *  (api__publish_remote). */
static int s_remote_entry(void *arg, crdt_type_id_t type, const char *key,
                          const crdt_entry_view_t *entry)
{
    static const char *ops[] = {"", "put", "set_add", "counter_changed", "log_append"};
    s_remote_t *remote = arg;
    if (remote->self->held_before &&
        crdt_ctx_contains(remote->self->held_before, (crdt_dot_t){entry->node, entry->n}))
        return 0; /* held already (a pull answer overlapping a push): told once, before */
    s_remote_event_t e;
    const char *op = type <= CRDT_TYPE_MAX ? ops[type] : NULL;
    if (s_remote_event_init(&e, remote->sid, key, type)) {
        Engram__Item *item = e.item;
        if (type == CRDT_REG || type == CRDT_LOG) {
            if (!api__item_from_value(&e.r, item, entry, item->type, remote->now, NULL))
                op = NULL;             /* expired */
        } else if (type == CRDT_SET) { /* the add's data: a value holding its provenance */
            if (entry->len)
                api__item_from_value(&e.r, item, entry, item->type, remote->now, NULL);
            item->value.data = (uint8_t *)entry->elem;
            item->value.len = strlen(entry->elem);
        } else { /* the entry is a contributor's running total: show the counter's value */
            item->author = api__keep(&e.r.arena,
                                     strndup(entry->elem, api__contributor_agent_len(entry->elem)));
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

void api__removal_free(void *item)
{
    api_removal_t *removal = item;
    free(removal->key);
    free(removal->elem);
    crdt_value_destroy(&removal->provenance);
    free(removal);
}

typedef struct {
    crdt_dot_t dot;
    api_removal_t *removal;
} s_find_t;

/*  The provenance of the entry with the removal's dot: its value's (reg, log, set add), or
 *  for a counter contribution its agent. */
static int s_note_provenance(void *arg, crdt_type_id_t type, const char *key,
                             const crdt_entry_view_t *entry)
{
    (void)key;
    s_find_t *find = arg;
    if (entry->node != find->dot.node || entry->n != find->dot.n || find->removal->provenance)
        return 0;
    if (type == CRDT_COUNTER) {
        char *agent = strndup(entry->elem, api__contributor_agent_len(entry->elem));
        crdt_value_t *v = crdt_value_new();
        if (v && agent && *agent && crdt_value_add_agent(v, agent) == 0)
            find->removal->provenance = v;
        else
            crdt_value_destroy(&v);
        free(agent);
    } else if (entry->len) {
        crdt_value_decode(entry->data, entry->len, &find->removal->provenance);
    }
    return 0;
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
        api_removal_t *removal = calloc(1, sizeof *removal);
        if (!removal)
            return ENGRAM_ENOMEM;
        if (node_store_entry_of(c->self->store, c->sid, removed[i], &removal->key, &removal->elem,
                                &removal->type) != 0) {
            api__removal_free(removal);
            continue;
        }
        crdt_scope_t *view = NULL;
        unsigned types = 0;
        s_find_t find = {removed[i], removal};
        if (node_store_view(c->self->store, c->sid, removal->key,
                            removal->elem[0] ? NODE_VIEW_ELEM : NODE_VIEW_OBJECT, removal->elem,
                            &view, &types) == 0)
            crdt_scope_foreach_entry(view, s_note_provenance, &find);
        crdt_scope_destroy(&view);
        zlist_append(c->self->removals, removal);
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
static void s_publish_removals(node_server_t *self, const char *sid, const crdt_scope_t *delta)
{
    zhash_t *written = zhash_new(), *told = zhash_new();
    crdt_scope_foreach_entry(delta, s_note_written, written);
    api_removal_t *removal;
    while ((removal = zlist_pop(self->removals))) {
        bool set = removal->type == CRDT_SET;
        char *what =
            set ? zsys_sprintf("%s%c%s", removal->key, 1, removal->elem) : strdup(removal->key);
        if (what && removal->type != CRDT_COUNTER && !zhash_lookup(written, what) &&
            !zhash_lookup(told, what)) {
            zhash_insert(told, what, "");
            s_remote_event_t e;
            bool ready = s_remote_event_init(&e, sid, removal->key, removal->type);
            if (ready && set) {
                e.item->value.data = (uint8_t *)removal->elem;
                e.item->value.len = strlen(removal->elem);
            }
            const crdt_value_t *p = removal->provenance;
            if (ready && p) { /* judged at delivery as the entry it removed */
                e.item->author = p->author;
                e.item->agents = p->agents;
                e.item->n_agents = p->nagents;
                e.item->resources = p->resources;
                e.item->n_resources = p->nresources;
            }
            s_remote_event_send(self, &e, set ? "set_remove" : "delete");
        }
        free(what);
        api__removal_free(removal);
    }
    zhash_destroy(&written);
    zhash_destroy(&told);
}

/*  The entries of one delta, to be told in causal order: a pull answer holds entries of many
 *  operations, which its encoding lists by key and dot, while their stamps (which observe
 *  every stamp their writers had seen) order each after what caused it. */
typedef struct {
    crdt_type_id_t type;
    const char *key;        /* the delta's */
    crdt_entry_view_t view; /* pointing into the delta */
} s_entry_t;

typedef struct {
    s_entry_t *at;
    size_t n, cap;
    bool failed;
} s_entries_t;

static int s_collect_entry(void *arg, crdt_type_id_t type, const char *key,
                           const crdt_entry_view_t *entry)
{
    s_entries_t *entries = arg;
    if (crdt_array_grow((void **)&entries->at, &entries->cap, entries->n + 1,
                        sizeof *entries->at)) {
        entries->failed = true;
        return ENGRAM_ENOMEM;
    }
    entries->at[entries->n++] = (s_entry_t){type, key, *entry};
    return 0;
}

static int s_by_stamp(const void *a, const void *b)
{
    const crdt_entry_view_t *x = &((const s_entry_t *)a)->view, *y = &((const s_entry_t *)b)->view;
    if (x->hlc != y->hlc)
        return x->hlc < y->hlc ? -1 : 1;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    return x->n < y->n ? -1 : x->n > y->n;
}

/*  A delta from another node: before it is applied, the local entries it removes are noted;
 *  after, its new entries and those removals become events for the scope's subscribers, the
 *  statements it brings to sys:acl go to the acl, and the reads parked on the scope are
 *  checked. */
void api__remote_applied(void *arg, const char *sid, const crdt_scope_t *delta, bool applied)
{
    node_server_t *self = arg;
    if (applied && strcmp(sid, API_ACL_SCOPE) == 0)
        api__acl_ingest(self, delta); /* access statements from another node */
    if (applied)
        zhashx_insert(self->changed, sid, ""); /* parked reads may wait for it */
    if (!zhash_lookup(self->subscribers, sid))
        return;
    if (!applied) {
        api_removal_t *stale;
        while ((stale = zlist_pop(self->removals))) /* a delta that failed to apply */
            api__removal_free(stale);
        crdt_ctx_destroy(&self->held_before);
        const crdt_ctx_t *held = node_store_ctx(self->store, sid);
        self->held_before = held ? crdt_ctx_dup(held) : NULL;
        s_collect_t collect = {self, sid};
        crdt_scope_foreach_record(delta, s_collect_removed, &collect);
        return;
    }
    s_remote_t remote = {self, sid, api__now_ms()};
    s_entries_t entries = {0};
    crdt_scope_foreach_entry(delta, s_collect_entry, &entries);
    if (entries.failed) /* out of memory: told in the delta's order rather than not at all */
        crdt_scope_foreach_entry(delta, s_remote_entry, &remote);
    else if (entries.n) {
        qsort(entries.at, entries.n, sizeof *entries.at, s_by_stamp);
        for (size_t i = 0; i < entries.n; i++)
            s_remote_entry(&remote, entries.at[i].type, entries.at[i].key, &entries.at[i].view);
    }
    free(entries.at);
    crdt_ctx_destroy(&self->held_before);
    s_publish_removals(self, sid, delta);
}
