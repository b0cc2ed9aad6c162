/*  node/api delivery: the outbox of a turn, the queues of connections whose pipe is full and
 *  their byte budget, subscriptions and their events, and writes waiting for replicas.
 *
 *  A subscription belongs to its connection (api_conn_t, keyed by scope there) and is listed
 *  under its scope in the server's subscribers, so subscribing, unsubscribing and publishing
 *  never walk every subscription. A connection's queue holds what its full pipe did not take;
 *  past ENGRAM_CONNECTION_BYTE_BUDGET bytes the connection is cut (s_cut). */
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
    out->remote = r->remote;
    out->op = r->op;
    out->code = code;
    out->started_us = r->started_us;
    if (routing) { /* no routing: only an event */
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
    if (out->wrote)
        zhashx_insert(self->changed, r->sid, ""); /* parked reads may wait for it */
    if (out->wrote && r->replicas > 1) {
        uint32_t timeout = r->timeout_ms ? r->timeout_ms : ENGRAM_DEFAULT_REPLICAS_TIMEOUT_MS;
        out->replicas = r->replicas;
        out->write_sid = strdup(r->sid);
        out->dot = r->dot;
        out->deadline_ms =
            api__mono_ms() +
            (timeout < API_MAX_REPLICAS_TIMEOUT_MS ? timeout : API_MAX_REPLICAS_TIMEOUT_MS);
    }
    zlist_append(self->outbox, out);
}

/*  --- the pipe gauge (internal.h) ----------------------------------------------------- */

api_gauge_t *api__gauge_new(void)
{
    api_gauge_t *gauge = malloc(sizeof *gauge);
    if (gauge) {
        atomic_init(&gauge->bytes, 0);
        atomic_init(&gauge->holders, 1);
    }
    return gauge;
}

void api__gauge_release(api_gauge_t *gauge)
{
    if (atomic_fetch_sub(&gauge->holders, 1) == 1)
        free(gauge);
}

/*  A payload in libzmq's pipe, counted by its connection's gauge: this header, then the
 *  bytes. */
typedef struct {
    api_gauge_t *gauge; /* held */
    size_t len;
} s_counted_t;

/*  libzmq's free callback of a counted payload (on whichever thread lets go of it last). */
static void s_counted_free(void *data, void *hint)
{
    (void)data;
    s_counted_t *counted = hint;
    atomic_fetch_sub(&counted->gauge->bytes, counted->len);
    api__gauge_release(counted->gauge);
    free(counted);
}

/*  Sends [routing][data] without waiting: 0 sent, 1 the pipe is full (by libzmq's message
 *  count, or by gauge's bytes unless it holds none), -1 the peer is gone. The payload is
 *  counted by gauge until libzmq lets go of it. */
static int s_transmit(node_server_t *self, zframe_t *routing, api_gauge_t *gauge, const void *data,
                      size_t len)
{
    size_t held = atomic_load(&gauge->bytes);
    if (held && held + len > API_PIPE_OUT_BYTES)
        return 1;
    /* the payload first: once the routing frame is taken, the message must be completed */
    s_counted_t *counted = malloc(sizeof *counted + len);
    if (!counted)
        return 1; /* tried again later, from the connection's queue */
    *counted = (s_counted_t){gauge, len};
    memcpy(counted + 1, data, len);
    zmq_msg_t head, body;
    if (zmq_msg_init_data(&body, counted + 1, len, s_counted_free, counted) != 0) {
        free(counted);
        return 1;
    }
    atomic_fetch_add(&gauge->holders, 1);
    atomic_fetch_add(&gauge->bytes, len);
    if (zmq_msg_init_size(&head, zframe_size(routing)) != 0) {
        zmq_msg_close(&body); /* its free callback lowers the gauge again */
        return 1;
    }
    memcpy(zmq_msg_data(&head), zframe_data(routing), zframe_size(routing));
    void *router = zsock_resolve(self->router);
    if (zmq_msg_send(&head, router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        int err = zmq_errno();
        zmq_msg_close(&head);
        zmq_msg_close(&body);
        return err == EHOSTUNREACH ? -1 : 1;
    }
    /* A ROUTER takes a message's further parts once it took its first (ROUTER_MANDATORY
     * refuses a full pipe or a gone peer at the first); a signal may interrupt the call. */
    int rc;
    while ((rc = zmq_msg_send(&body, router, ZMQ_DONTWAIT)) < 0 && zmq_errno() == EINTR)
        ;
    if (rc < 0) /* the context is ending */
        zmq_msg_close(&body);
    return 0;
}

/*  The out pipe's gauge of conn, or the server's for a connection it has no record of. */
static api_gauge_t *s_gauge_of(node_server_t *self, const api_conn_t *conn)
{
    return conn ? conn->pipe : self->unrecorded_pipe;
}

void api__subscriber_free(api_subscriber_t **sub_p)
{
    api_subscriber_t *sub = *sub_p;
    free(sub->sid);
    free(sub->agent);
    free(sub->user);
    free(sub);
    *sub_p = NULL;
}

static void s_list_destroy(void *item)
{
    zlistx_destroy((zlistx_t **)&item);
}

void api__subscriber_destroy(void **item)
{
    api__subscriber_free((api_subscriber_t **)item);
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

/*  Takes sub out of the server's list of its scope's subscribers (its connection still owns
 *  it). */
static void s_unlist(node_server_t *self, api_subscriber_t *sub)
{
    zlistx_t *list = zhash_lookup(self->subscribers, sub->sid);
    if (list) {
        zlistx_delete(list, sub->handle);
        if (zlistx_size(list) == 0)
            zhash_delete(self->subscribers, sub->sid);
    }
    self->stats.subscribers--;
}

/*  Ends every subscription of a connection: with an error reply to each (code 0: the
 *  connection is gone or cut, nothing to tell). */
static void s_end_subscriptions(node_server_t *self, api_conn_t *conn, int code)
{
    size_t n = zhashx_size(conn->subscriptions);
    if (n == 0)
        return;
    uint64_t *ids = code ? calloc(n, sizeof *ids) : NULL;
    size_t told = 0;
    for (api_subscriber_t *sub = zhashx_first(conn->subscriptions); sub;
         sub = zhashx_next(conn->subscriptions)) {
        if (ids)
            ids[told++] = sub->request_id;
        s_unlist(self, sub);
    }
    zhashx_purge(conn->subscriptions); /* frees them */
    if (code)
        zsys_warning("engramd: a subscriber fell more than %zu events behind; its %zu "
                     "subscriptions end",
                     self->config.subscriber_backlog, n);
    for (size_t i = 0; i < told; i++) {
        Engram__Reply reply;
        api__reply_header(&reply, ids[i], code);
        reply.message = "the subscriber fell too far behind; subscribe again";
        uint8_t buf[256];
        size_t len = engram__reply__pack(&reply, buf);
        s_output(self, conn->routing, buf, len, false);
    }
    free(ids);
}

/*  Drops the writes waiting for replicas whose reply goes to routing. */
static void s_drop_replicating(node_server_t *self, const zframe_t *routing)
{
    zlist_t *kept = zlist_new();
    api_out_t *out;
    while ((out = zlist_pop(self->replicating))) {
        if (out->routing && zframe_eq(out->routing, (zframe_t *)routing))
            api__out_free(&out);
        else
            zlist_append(kept, out);
    }
    zlist_destroy(&self->replicating);
    self->replicating = kept;
}

void api__forget_delivery(node_server_t *self, api_conn_t *conn)
{
    s_end_subscriptions(self, conn, 0);
    if (conn->id)
        zhash_delete(self->peers, conn->id);
    if (conn->routing)
        s_drop_replicating(self, conn->routing);
}

/*  Cuts a connection whose queue would pass its byte budget: the queue, its subscriptions
 *  and parked reads go, and it is left one EBUSY reply, after which nothing more is sent to
 *  it nor any request of it answered until it disconnects (or, for a connection the monitor
 *  did not report, until that reply has left). */
static void s_cut(node_server_t *self, api_peer_t *peer, const char *id)
{
    api_queued_t *q;
    while ((q = zlist_pop(peer->queue))) {
        zframe_destroy(&q->payload);
        free(q);
    }
    peer->bytes = 0;
    peer->events = 0;
    peer->cut = true;
    self->stats.connections_cut++;
    zsys_warning("engramd: a connection left more than %d bytes of replies and events unread; "
                 "it is cut",
                 ENGRAM_CONNECTION_BYTE_BUDGET);
    api_conn_t *conn = zhash_lookup(self->routes, id);
    if (conn) {
        conn->cut = true;
        s_end_subscriptions(self, conn, 0);
        api__drop_parked(self, conn);
    }
    Engram__Reply reply;
    api__reply_header(&reply, 0, ENGRAM_EBUSY);
    char message[200];
    snprintf(message, sizeof message,
             "this connection left more than %d bytes of replies unread: they were dropped, "
             "with its subscriptions and waiting reads, and nothing more is answered on it; "
             "connect again",
             ENGRAM_CONNECTION_BYTE_BUDGET);
    reply.message = message;
    size_t len = engram__reply__get_packed_size(&reply);
    q = calloc(1, sizeof *q);
    if (q && (q->payload = zframe_new(NULL, len)) != NULL) {
        engram__reply__pack(&reply, zframe_data(q->payload));
        peer->bytes = len;
        zlist_append(peer->queue, q);
    } else {
        free(q);
    }
}

/*  Sends a reply or an event to a connection, after whatever it has queued; queues it if the
 *  pipe is full, within the connection's byte budget. */
static void s_output(node_server_t *self, zframe_t *routing, const void *data, size_t len,
                     bool event)
{
    char *id = zframe_strhex(routing);
    api_peer_t *peer = id ? zhash_lookup(self->peers, id) : NULL;
    api_conn_t *conn = id ? zhash_lookup(self->routes, id) : NULL;
    if ((peer && peer->cut) || (conn && conn->cut)) { /* nothing more after its EBUSY reply */
        free(id);
        return;
    }
    if (!peer) {
        int rc = s_transmit(self, routing, s_gauge_of(self, conn), data, len);
        if (rc == -1 && conn) /* the peer is gone */
            s_end_subscriptions(self, conn, 0);
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
    if (event && peer->events >= self->config.subscriber_backlog) {
        if (conn)
            s_end_subscriptions(self, conn, ENGRAM_ELAGGED);
        free(id);
        return;
    }
    if (peer->bytes + len > ENGRAM_CONNECTION_BYTE_BUDGET) {
        s_cut(self, peer, id);
        free(id);
        return;
    }
    free(id);
    api_queued_t *q = calloc(1, sizeof *q);
    if (!q)
        return;
    q->payload = zframe_new(data, len);
    q->event = event;
    peer->events += event;
    peer->bytes += len;
    zlist_append(peer->queue, q);
}

/*  Sends what full connections have queued, as far as their pipes now take it. */
void api__flush_peers(node_server_t *self)
{
    zlist_t *done = zlist_new();
    zlist_autofree(done);
    for (api_peer_t *peer = zhash_first(self->peers); peer; peer = zhash_next(self->peers)) {
        api_gauge_t *gauge =
            s_gauge_of(self, zhash_lookup(self->routes, zhash_cursor(self->peers)));
        api_queued_t *q;
        int rc = 0;
        while ((q = zlist_first(peer->queue)) &&
               (rc = s_transmit(self, peer->routing, gauge, zframe_data(q->payload),
                                zframe_size(q->payload))) == 0) {
            zlist_pop(peer->queue);
            peer->events -= q->event;
            peer->bytes -= zframe_size(q->payload);
            zframe_destroy(&q->payload);
            free(q);
        }
        if (rc == -1 || zlist_size(peer->queue) == 0)
            zlist_append(done, (void *)zhash_cursor(self->peers));
    }
    for (char *id = zlist_first(done); id; id = zlist_next(done)) {
        api_conn_t *conn = zhash_lookup(self->routes, id);
        api_peer_t *peer = zhash_lookup(self->peers, id);
        if (conn && zlist_size(peer->queue)) /* the peer is gone */
            s_end_subscriptions(self, conn, 0);
        zhash_delete(self->peers, id);
    }
    zlist_destroy(&done);
}

/*  Whether sub's key is still registered as its agent, living on this node (s_identify's
 *  rule for a request). */
static bool s_still_identified(node_server_t *self, const api_subscriber_t *sub)
{
    uint64_t home = 0;
    const char *agent = node_acl_agent_home(self->acl, sub->client_key, api__acl_now(), &home);
    return agent && strcmp(agent, sub->agent) == 0 &&
           (!home || home == node_store_node_id(self->store));
}

/*  Ends one subscription whose key no longer identifies its agent, telling its client. */
static void s_end_unidentified(node_server_t *self, api_subscriber_t *sub)
{
    api_conn_t *conn = sub->conn;
    Engram__Reply reply;
    api__reply_header(&reply, sub->request_id, ENGRAM_EDENIED);
    reply.message = "this connection's key is no longer registered to the agent that "
                    "subscribed (revoked, ended, or moved to another node): the subscription "
                    "ends";
    uint8_t buf[512];
    size_t len = engram__reply__pack(&reply, buf);
    s_unlist(self, sub);
    char *sid = sub->sid; /* the key it is found by outlives it */
    sub->sid = NULL;
    zhashx_delete(conn->subscriptions, sid); /* frees sub */
    free(sid);
    s_output(self, conn->routing, buf, len, false);
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

/*  A subscriber as s_publish holds it while it sends: sending may end subscriptions, but no
 *  connection ends and no subscription starts meanwhile. */
typedef struct {
    api_conn_t *conn;
    api_subscriber_t *sub;
} s_target_t;

bool api__watched(node_server_t *self, const char *sid)
{
    zlistx_t *list = zhash_lookup(self->subscribers, sid);
    return list && zlistx_size(list);
}

static void s_publish(node_server_t *self, const api_out_t *out)
{
    zlistx_t *list = zhash_lookup(self->subscribers, out->event_sid);
    size_t n = list ? zlistx_size(list) : 0;
    if (n == 0)
        return;
    Engram__Event *event = engram__event__unpack(NULL, out->event_len, out->event);
    s_target_t *targets = event ? calloc(n, sizeof *targets) : NULL;
    size_t k = 0;
    for (api_subscriber_t *sub = targets ? zlistx_first(list) : NULL; sub && k < n;
         sub = zlistx_next(list))
        targets[k++] = (s_target_t){sub->conn, sub};
    bool total = event && event->item && strcmp(event->op, "counter_changed") == 0;
    for (size_t i = 0; i < k; i++) {
        api_subscriber_t *sub = targets[i].sub;
        if (zhashx_lookup(targets[i].conn->subscriptions, out->event_sid) != sub)
            continue; /* ended while this event went to others */
        if (!s_still_identified(self, sub)) {
            s_end_unidentified(self, sub);
            continue;
        }
        if (!s_event_visible(self, sub, event))
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
        s_output(self, targets[i].conn->routing, buf, len, true);
        free(buf);
    }
    free(targets);
    if (event)
        engram__event__free_unpacked(event, NULL);
}

/*  Sends this turn's replies once its writes are durable (sync_rc 0); if the sync failed,
 *  every write's acknowledgement becomes an error that says its outcome is unknown (its bytes
 *  reached the log unsynced: reads may show it, and a restart may keep it) and its event is
 *  not published. */
void api__flush_outbox(node_server_t *self, int sync_rc)
{
    api_out_t *out;
    while ((out = zlist_pop(self->outbox))) {
        if (out->wrote && sync_rc && !out->routing) { /* an event alone (one of FORGET's) */
            free(out->event);
            out->event = NULL;
        } else if (out->wrote && sync_rc) {
            Engram__Reply reply;
            api__reply_header(&reply, out->id, sync_rc);
            reply.message = "the write could not be made durable: whether it is kept is "
                            "unknown (it may be read, now or after the node restarts)";
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
            free(out->event); /* published: the wait keeps its reply only */
            out->event = NULL;
            zlist_append(self->replicating, out); /* durable here; answered once replicated */
            continue;
        }
        if (out->reply) {
            api__observe_reply(self, out, out->wrote && sync_rc ? sync_rc : out->code);
            s_output(self, out->routing, out->reply, out->reply_len, false);
        }
        api__out_free(&out);
    }
}

void api__publish_remote(node_server_t *self)
{
    for (api_out_t *out = zlist_first(self->outbox); out; out = zlist_next(self->outbox))
        if (!out->remote)
            return; /* a reply or a local write's event: all wait for the fsync (server.h) */
    if (zlist_size(self->outbox) == 0)
        return;
    node_store_write_out(self->store); /* exits if the file refuses them: none leaves */
    api__flush_peers(self);
    api__flush_outbox(self, 0);
}

/*  Answers the writes waiting for replicas that now have them, or whose time is up: the
 *  write stays durable here either way, and the reply says how many nodes held it. */
void api__check_replicating(node_server_t *self)
{
    int64_t now = api__mono_ms();
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
            api__observe_reply(self, out, reply->code);
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

int api__subscribe(node_server_t *self, api_conn_t *conn, const Engram__Request *req,
                   const char *sid, api_reply_t *r)
{
    if (!conn)
        return api__fail(r, ENGRAM_EUNAVAILABLE,
                         "the connection is gone (or its transport reports no disconnection)");
    api_subscriber_t *old = zhashx_lookup(conn->subscriptions, sid);
    if (old) { /* subscribing again replaces it */
        s_unlist(self, old);
        zhashx_delete(conn->subscriptions, sid);
    }
    if (req->op != ENGRAM__OP__SUBSCRIBE)
        return 0;
    if (zhashx_size(conn->subscriptions) >= ENGRAM_MAX_SUBSCRIPTIONS_PER_CONNECTION) {
        self->stats.busy_refusals++;
        return api__fail(r, ENGRAM_EBUSY, "a connection may hold at most %d subscriptions",
                         ENGRAM_MAX_SUBSCRIPTIONS_PER_CONNECTION);
    }
    zlistx_t *list = zhash_lookup(self->subscribers, sid);
    if (!list && (list = zlistx_new()) != NULL) {
        zhash_insert(self->subscribers, sid, list);
        zhash_freefn(self->subscribers, sid, s_list_destroy);
    }
    api_subscriber_t *sub = calloc(1, sizeof *sub);
    if (sub) {
        sub->conn = conn;
        sub->request_id = req->id;
        sub->sid = strdup(sid);
        sub->agent = strdup(req->agent);
        sub->user = strdup(req->user);
        memcpy(sub->client_key, r->client_key, sizeof sub->client_key); /* set: identified */
    }
    if (!list || !sub || !sub->sid || !sub->agent || !sub->user ||
        zhashx_insert(conn->subscriptions, sid, sub) != 0) {
        if (sub)
            api__subscriber_free(&sub);
        if (list && zlistx_size(list) == 0)
            zhash_delete(self->subscribers, sid);
        return api__fail(r, ENGRAM_ENOMEM, "out of memory");
    }
    sub->handle = zlistx_add_end(list, sub);
    self->stats.subscribers++;
    return 0;
}
