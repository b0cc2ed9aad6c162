/*  node/api delivery: the outbox of a turn, the queues of connections whose pipe is full,
 *  subscriptions and their events, and writes waiting for replicas. */
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
#include "node/api/internal.h"
#include "node/api/json.h"

/*  --- replies, events, subscriptions ----------------------------------------------- */

void api__out_free(api_out_t **out_p)
{
    api_out_t *out = *out_p;
    zframe_destroy(&out->routing);
    free(out->reply);
    free(out->write_sid);
    free(out->event_sid);
    free(out->event);
    free(out);
    *out_p = NULL;
}

/*  Encodes the reply (and its event) into the outbox. */
void api__queue_reply(node_server_t *self, zframe_t *routing, uint64_t id, int code, api_reply_t *r)
{
    r->msg.id = id;
    r->msg.code = code;
    if (code) {
        self->stats.errors++;
        r->msg.message = r->message[0] ? r->message : (char *)engram_strerror(code);
        r->msg.n_items = 0;
        r->msg.stats = NULL;
        r->msg.token.len = 0;
        r->event = NULL;
    } else if (r->sid && api__token(self, r) == 0 && r->event) {
        r->event->token = r->msg.token;
    }
    api_out_t *out = calloc(1, sizeof *out);
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
        out->deadline_ms =
            api__now_ms() + (r->timeout_ms ? r->timeout_ms : ENGRAM_DEFAULT_REPLICAS_TIMEOUT_MS);
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

void api__subscriber_free(api_subscriber_t **sub_p)
{
    api_subscriber_t *sub = *sub_p;
    zframe_destroy(&sub->routing);
    free(sub->sid);
    free(sub->agent);
    free(sub->user);
    free(sub);
    *sub_p = NULL;
}

static void s_peer_free(void *item)
{
    api_peer_t *peer = item;
    api_queued_t *q;
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
    for (api_subscriber_t *sub = zlist_first(self->subscribers); sub;
         sub = zlist_next(self->subscribers))
        if (zframe_eq(sub->routing, routing))
            zlist_append(ended, sub);
    api_subscriber_t *sub;
    while ((sub = zlist_pop(ended))) {
        zlist_remove(self->subscribers, sub);
        if (code) {
            zsys_warning("engramd: a subscriber of %s fell more than %zu events behind; its "
                         "subscription ends",
                         sub->sid, self->config.subscriber_backlog);
            Engram__Reply reply;
            api__reply_header(&reply, sub->request_id, code);
            reply.message = "the subscriber fell too far behind; subscribe again";
            uint8_t buf[256];
            size_t len = engram__reply__pack(&reply, buf);
            s_output(self, routing, buf, len, false);
        }
        api__subscriber_free(&sub);
    }
    zlist_destroy(&ended);
}

/*  Sends a reply or an event to a connection, after whatever it has queued; queues it if the
 *  pipe is full. */
static void s_output(node_server_t *self, zframe_t *routing, const void *data, size_t len,
                     bool event)
{
    char *id = zframe_strhex(routing);
    api_peer_t *peer = id ? zhash_lookup(self->peers, id) : NULL;
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
    api_queued_t *q = calloc(1, sizeof *q);
    if (!q)
        return;
    q->payload = zframe_new(data, len);
    q->event = event;
    peer->events += event;
    zlist_append(peer->queue, q);
}

/*  Sends what full connections have queued, as far as their pipes now take it. */
void api__flush_peers(node_server_t *self)
{
    zlist_t *done = zlist_new();
    zlist_autofree(done);
    for (api_peer_t *peer = zhash_first(self->peers); peer; peer = zhash_next(self->peers)) {
        api_queued_t *q;
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

/*  Whether sub may read the event now: by its item's provenance, or for a change that has
 *  none (a delete, a set remove, a counter's new total) by its author and the scope. */
static bool s_event_visible(node_server_t *self, const api_subscriber_t *sub,
                            const Engram__Event *event)
{
    const Engram__Item *item = event->item;
    const char *author[1] = {event->author}, *scope[1] = {sub->sid};
    bool has_agents = item && item->n_agents;
    return api__may_read_provenance(
        self, sub->agent, sub->user, sub->sid,
        has_agents ? (const char *const *)item->agents : author,
        has_agents ? item->n_agents : (event->author[0] ? 1 : 0),
        item && item->n_resources ? (const char *const *)item->resources : scope,
        item && item->n_resources ? item->n_resources : (sub->sid[0] == '@' ? 0 : 1));
}

/*  A counter's new value as sub may see it: the sum of the contributions it may read, into
 *  the event's item (another node's increment reports the counter's value). */
static int s_visible_total(node_server_t *self, const api_subscriber_t *sub, Engram__Event *event)
{
    crdt_scope_t *view = NULL;
    unsigned types = 0;
    api_reader_t reader = {self, sub->agent, sub->user, sub->sid};
    int rc =
        node_store_view(self->store, sub->sid, event->key, NODE_VIEW_OBJECT, NULL, &view, &types);
    if (rc == 0)
        rc = api__visible_sum(&reader, view, event->key, &event->item->amount);
    crdt_scope_destroy(&view);
    return rc;
}

static void s_publish(node_server_t *self, const api_out_t *out)
{
    Engram__Event *event = engram__event__unpack(NULL, out->event_len, out->event);
    if (!event)
        return;
    zlist_t *targets = zlist_new(); /* s_output may end subscriptions while we iterate */
    for (api_subscriber_t *sub = zlist_first(self->subscribers); sub;
         sub = zlist_next(self->subscribers))
        if (strcmp(sub->sid, out->event_sid) == 0)
            zlist_append(targets, sub);
    bool total = event->item && strcmp(event->op, "counter_changed") == 0;
    for (api_subscriber_t *sub = zlist_first(targets); sub; sub = zlist_next(targets)) {
        if (!zlist_exists(self->subscribers, sub) || !s_event_visible(self, sub, event))
            continue;
        if (total && s_visible_total(self, sub, event) != 0)
            continue;
        Engram__Reply reply;
        api__reply_header(&reply, sub->request_id, 0);
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
void api__flush_outbox(node_server_t *self, int sync_rc)
{
    api_out_t *out;
    while ((out = zlist_pop(self->outbox))) {
        if (out->wrote && sync_rc) {
            Engram__Reply reply;
            api__reply_header(&reply, out->id, sync_rc);
            char message[128];
            snprintf(message, sizeof message, "the write could not be made durable: %s",
                     engram_strerror(sync_rc));
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
        api__out_free(&out);
    }
}

/*  Answers the writes waiting for replicas that now have them, or whose time is up: the
 *  write stays durable here either way, and the reply says how many nodes held it. */
void api__check_replicating(node_server_t *self)
{
    int64_t now = api__now_ms();
    zlist_t *ready = zlist_new();
    for (api_out_t *out = zlist_first(self->replicating); out;
         out = zlist_next(self->replicating)) {
        out->holders =
            1 + node_cluster_holders(self->cluster, out->write_sid, out->dot.node, out->dot.n);
        if (out->holders >= out->replicas || now >= out->deadline_ms)
            zlist_append(ready, out);
    }
    api_out_t *out;
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
        api__out_free(&out);
    }
    zlist_destroy(&ready);
}

/*  --- requests --------------------------------------------------------------------- */

void api__subscribe(node_server_t *self, zframe_t *routing, const Engram__Request *req,
                    const char *sid, api_reply_t *r)
{
    bool subscribe = req->op == ENGRAM__OP__SUBSCRIBE;
    for (api_subscriber_t *sub = zlist_first(self->subscribers); sub;
         sub = zlist_next(self->subscribers)) {
        if (zframe_eq(sub->routing, routing) && strcmp(sub->sid, sid) == 0) {
            zlist_remove(self->subscribers, sub);
            api__subscriber_free(&sub);
            break;
        }
    }
    if (!subscribe)
        return;
    api_subscriber_t *sub = calloc(1, sizeof *sub);
    if (sub) {
        sub->routing = zframe_dup(routing);
        sub->request_id = req->id;
        sub->sid = strdup(sid);
        sub->agent = strdup(req->agent);
        sub->user = strdup(req->user);
    }
    if (!sub || !sub->sid || !sub->agent || !sub->user) {
        if (sub)
            api__subscriber_free(&sub);
        api__fail(r, ENGRAM_ENOMEM, "out of memory");
        return;
    }
    zlist_append(self->subscribers, sub);
}
