/*  node/cluster status: what `engram cluster status` shows (node_cluster_status_t in
 *  cluster.h), gathered from the engine, the store and the cluster's own counters. The arrays
 *  are sized before they are filled (members and scopes are counted first), so nothing grows. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/codec.h"
#include "engram/error.h"
#include "node/cluster/internal.h"

typedef struct {
    node_cluster_t *self;
    node_cluster_status_t *status;
    size_t cap;
    bool failed;
    uint64_t budget; /* operations that may still be encoded to measure lag in bytes */
} s_gather_t;

static void s_count_member(void *arg, const gossip_member_t *member)
{
    (void)member;
    (*(size_t *)arg)++;
}

static void s_scope(void *arg, const char *scope)
{
    s_gather_t *g = arg;
    node_cluster_status_t *status = g->status;
    const crdt_ctx_t *ctx = node_store_ctx(g->self->store, scope);
    if (!ctx || status->n_scopes == g->cap)
        return;
    node_cluster_scope_status_t *item = &status->scopes[status->n_scopes++];
    item->scope = strdup(scope);
    item->vector = crdt_ctx_text(ctx);
    item->ops = crdt_ctx_count(ctx);
    uint64_t garbage = 0;
    if (node_store_garbage(g->self->store, scope, &garbage) == 0)
        item->garbage = garbage;
    g->failed |= !item->scope || !item->vector;
}

/*  A step's wire form towards a member of this version. */
static int s_note_wire_of_this_version(void *store, crdt_dot_t op, const uint8_t *note, size_t len,
                                       const crdt_dot_entry_t *entry, uint8_t **out,
                                       size_t *out_len)
{
    return node_store_gossip.note_wire(store, ENGRAM_SCHEMA_MINOR, op, note, len, entry, out,
                                       out_len);
}

/*  What member is known to lack of every scope: operations and, within the budget, the bytes
 *  of the delta, its steps in their wire form (as a member of this version gets them). */
static void s_member_lag(s_gather_t *g, node_cluster_member_status_t *m)
{
    node_cluster_t *self = g->self;
    const node_cluster_status_t *status = g->status;
    m->lag_known = true;
    m->lag_bytes_known = true;
    for (size_t i = 0; i < status->n_scopes; i++) {
        const char *scope = status->scopes[i].scope;
        const crdt_ctx_t *theirs = gossip_engine_peer_ctx(self->engine, m->id, scope);
        const crdt_ctx_t *ours = node_store_ctx(self->store, scope);
        if (!theirs) {
            m->lag_known = false;
            continue;
        }
        crdt_ctx_t *missing = ours ? crdt_ctx_diff(ours, theirs) : NULL;
        uint64_t ops = missing ? crdt_ctx_count(missing) : 0;
        crdt_ctx_destroy(&missing);
        if (ops == 0)
            continue;
        m->lag_ops += ops;
        if (!m->lag_bytes_known || ops > g->budget) {
            m->lag_bytes_known = false;
            continue;
        }
        g->budget -= ops;
        crdt_scope_t *delta = node_store_gossip.delta_since(self->store, scope, theirs);
        uint8_t *buf = NULL;
        size_t len = 0;
        if (delta && crdt_scope_encode_wire(delta, s_note_wire_of_this_version, self->store, &buf,
                                            &len) == 0)
            m->lag_bytes += len;
        free(buf);
        crdt_scope_destroy(&delta);
    }
}

static void s_member(void *arg, const gossip_member_t *member)
{
    s_gather_t *g = arg;
    node_cluster_status_t *status = g->status;
    if (status->n_members == g->cap)
        return;
    node_cluster_member_status_t *m = &status->members[status->n_members++];
    m->id = member->id;
    bool me = member->id == g->self->node_id;
    m->state = me ? "self" : cluster__state_name(member->state);
    m->incarnation = member->incarnation;
    m->endpoint = strdup(member->endpoint);
    g->failed |= !m->endpoint;
    if (!me && member->state != GOSSIP_LEFT)
        s_member_lag(g, m);
}

int node_cluster_status(node_cluster_t *self, uint64_t lag_bytes_budget,
                        node_cluster_status_t **status_p)
{
    node_cluster_status_t *status = *status_p = calloc(1, sizeof *status);
    if (!status)
        return ENGRAM_ENOMEM;
    memcpy(status->cluster_id, self->cluster_hex, sizeof status->cluster_id);
    status->node_id = self->node_id;
    status->endpoint = strdup(self->config.gossip_endpoint);
    size_t scopes = node_store_scopes(self->store), members = 0;
    gossip_engine_each_member(self->engine, s_count_member, &members);
    status->scopes = calloc(scopes ? scopes : 1, sizeof *status->scopes);
    status->members = calloc(members ? members : 1, sizeof *status->members);
    bool failed = !status->endpoint || !status->scopes || !status->members;
    if (!failed) {
        s_gather_t g = {self, status, scopes, false, lag_bytes_budget};
        node_store_gossip.each_scope(self->store, s_scope, &g);
        g.cap = members;
        gossip_engine_each_member(self->engine, s_member, &g);
        failed = g.failed;
    }
    const gossip_stats_t *stats = gossip_engine_stats(self->engine);
    status->pushes_sent = stats->pushes_sent;
    status->pushes_applied = stats->pushes_applied;
    status->pushes_held_back = stats->pushes_held_back;
    status->digests_sent = stats->digests_sent;
    status->pulls_answered = stats->pulls_answered;
    status->pull_deltas_applied = stats->pull_deltas_applied;
    status->lean_deltas = stats->lean_deltas;
    status->compressed_sent = stats->compressed_sent;
    status->compression_saved = stats->compression_saved;
    status->acks_sent = stats->acks_sent;
    status->acks_deferred = stats->acks_deferred;
    status->sends_held = self->sends_held;
    status->gc_rounds = self->gc_rounds;
    status->gc_dropped = self->gc_dropped;
    status->bytes_sent = stats->bytes_sent;
    status->bytes_received = stats->bytes_received;
    status->bad_messages = stats->bad_messages + self->bad_frames;
    status->local_health = gossip_engine_health(self->engine);
    status->bad_scope = stats->bad_scope;
    node_store_state_text(self->store, status->storage, sizeof status->storage);
    if (failed) {
        node_cluster_status_free(status_p);
        return ENGRAM_ENOMEM;
    }
    return 0;
}

void node_cluster_traffic(node_cluster_t *self, node_cluster_traffic_t *traffic)
{
    const gossip_stats_t *stats = gossip_engine_stats(self->engine);
    traffic->bytes_sent = stats->bytes_sent;
    traffic->bytes_received = stats->bytes_received;
    traffic->deltas_applied = stats->pushes_applied + stats->pull_deltas_applied;
}

void node_cluster_status_free(node_cluster_status_t **status_p)
{
    node_cluster_status_t *status = *status_p;
    if (!status)
        return;
    for (size_t i = 0; i < status->n_members; i++)
        free(status->members[i].endpoint);
    for (size_t i = 0; i < status->n_scopes; i++) {
        free(status->scopes[i].scope);
        free(status->scopes[i].vector);
    }
    free(status->members);
    free(status->scopes);
    free(status->endpoint);
    free(status);
    *status_p = NULL;
}

static void s_count_holder(void *arg, const gossip_member_t *member)
{
    s_gather_t *g = arg;
    if (member->id != g->self->node_id && member->state != GOSSIP_LEFT)
        g->cap++;
}

unsigned node_cluster_possible_holders(node_cluster_t *self)
{
    s_gather_t g = {self, NULL, 0, false, 0};
    gossip_engine_each_member(self->engine, s_count_holder, &g);
    return 1 + (unsigned)g.cap;
}
