/*  node/cluster links: a CurveZMQ DEALER per member, the keys ZAP admits (DATA/peers), what a
 *  link holds while it is not up (LINK_HOLD_MS), and links made anew after a refused
 *  handshake (RELINK_MS) or on a message from their member. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/codec.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/cluster/internal.h"
#include "proto/cluster.pb-c.h"

/*  --- links and DATA/peers ------------------------------------------------------------ */

/*  Destroys the frames of a list (NULL: none), keeping the list. Whether there were any. */
static bool s_frames_clear(zlist_t *frames)
{
    zframe_t *frame;
    bool any = false;
    while (frames && (frame = zlist_pop(frames))) {
        zframe_destroy(&frame);
        any = true;
    }
    return any;
}

/*  Drops what the link holds, telling the engine if anything was (an ask may be among it). */
static void s_held_drop(node_cluster_t *self, cluster_link_t *link)
{
    bool any = s_frames_clear(link->held);
    self->held_bytes -= link->held_bytes;
    link->held_bytes = 0;
    if (any)
        gossip_engine_unsent(self->engine, link->id);
}

/*  The hash's destructor: what the link holds was dropped before (s_drop_link), or goes with
 *  the whole cluster. */
static void s_link_free(void *item)
{
    cluster_link_t *link = item;
    if (link->dealer && link->monitor)
        zmq_socket_monitor(zsock_resolve(link->dealer), NULL, 0);
    zsock_destroy(&link->monitor);
    zsock_destroy(&link->dealer);
    s_frames_clear(link->held);
    zlist_destroy(&link->held);
    free(link->endpoint);
    free(link);
}

void cluster__key_of(uint64_t id, char hex[17])
{
    snprintf(hex, 17, "%016" PRIx64, id);
}

/*  Writes the member's public CURVE certificate where the ZAP handler looks, so it may connect.
 *  The handler's thread reads DATA/peers whenever a peer connects, so a certificate appears
 *  there whole (written beside the directory, then renamed in) and is written once: the key of
 *  an id never changes (the id is the key's hash), and a rewrite on each change of the member's
 *  state would let the handler see it truncated and refuse the member's handshake. */
void cluster__admit_key(node_cluster_t *self, uint64_t id, const uint8_t curve_public[32])
{
    char name[17];
    cluster__key_of(id, name);
    char *path = zsys_sprintf("%s/%s.cert", self->peers_dir, name);
    char *tmp = zsys_sprintf("%s/peers-%s.cert.tmp", self->config.data_dir, name);
    uint8_t no_secret[32] = {0};
    zcert_t *cert = zcert_new_from(curve_public, no_secret);
    if (path && tmp && cert && !zsys_file_exists(path)) {
        zcert_set_meta(cert, "node", "%s", name);
        if (zcert_save_public(cert, tmp) != 0 || rename(tmp, path) != 0) {
            zsys_error("engramd: cannot write %s: peer %s cannot connect", path, name);
            remove(tmp);
        }
    }
    zcert_destroy(&cert);
    zstr_free(&tmp);
    zstr_free(&path);
}

static void s_drop_link(node_cluster_t *self, uint64_t id)
{
    char name[17];
    cluster__key_of(id, name);
    cluster_link_t *link = zhash_lookup(self->links, name);
    if (link) {
        s_held_drop(self, link);
        zhash_delete(self->by_key, link->key_txt);
        zhash_delete(self->links, name);
    }
}

static cluster_link_t *s_link(node_cluster_t *self, uint64_t id)
{
    char name[17];
    cluster__key_of(id, name);
    return zhash_lookup(self->links, name);
}

/*  Makes a DEALER to the member's endpoint (replacing one to another endpoint), NULL if it
 *  cannot. */
static cluster_link_t *s_make_link(node_cluster_t *self, uint64_t id, const char *endpoint,
                                   const uint8_t curve_public[32])
{
    char name[17];
    cluster__key_of(id, name);
    cluster_link_t *link = zhash_lookup(self->links, name);
    if (link && streq(link->endpoint, endpoint))
        return link;
    if (link)
        s_drop_link(self, id);
    link = calloc(1, sizeof *link);
    if (!link)
        return NULL;
    link->id = id;
    link->created_ms = cluster__now_ms();
    link->endpoint = strdup(endpoint);
    link->held = zlist_new();
    zmq_z85_encode(link->key_txt, curve_public, 32);
    link->dealer = zsock_new(ZMQ_DEALER);
    if (!link->endpoint || !link->held || !link->dealer) {
        s_link_free(link);
        return NULL;
    }
    zcert_apply(self->cert, link->dealer);
    zsock_set_curve_serverkey(link->dealer, link->key_txt);
    zsock_set_immediate(link->dealer, 1);
    zsock_set_sndhwm(link->dealer, PEER_SNDHWM);
    zsock_set_sndtimeo(link->dealer, 0);
    zsock_set_linger(link->dealer, 0);
    zsock_set_reconnect_ivl_max(link->dealer, 2000);
    char monitor[64];
    /* named after this cluster object too: inproc names are per process */
    snprintf(monitor, sizeof monitor, "inproc://engram-link-%p-%" PRIu64, (void *)self,
             self->links_made++);
    if (zmq_socket_monitor(zsock_resolve(link->dealer), monitor,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0) {
        link->monitor = zsock_new(ZMQ_PAIR);
        if (link->monitor && zsock_connect(link->monitor, "%s", monitor) == 0)
            zsock_set_rcvtimeo(link->monitor, 0);
        else
            zsock_destroy(&link->monitor);
    }
    link->retry_ms = RELINK_MS;
    if (zsock_connect(link->dealer, "%s", endpoint) != 0) {
        zsys_warning("engramd: member %s has an unusable endpoint '%s'", name, endpoint);
        s_link_free(link);
        return NULL;
    }
    if (zhash_insert(self->links, name, link) != 0) {
        s_link_free(link);
        return NULL;
    }
    zhash_freefn(self->links, name, s_link_free);
    if (zhash_insert(self->by_key, link->key_txt, link) != 0) {
        zhash_delete(self->links, name);
        return NULL;
    }
    return link;
}

void cluster__ensure_link(node_cluster_t *self, uint64_t id, const char *endpoint,
                          const uint8_t curve_public[32])
{
    s_make_link(self, id, endpoint, curve_public);
}

/*  Sends what the link holds, in order, as far as its dealer takes it (ZMQ_IMMEDIATE: only
 *  once a connection is up; a send that goes shows the link is up), or drops all of it once
 *  it waited LINK_HOLD_MS. Whether nothing is held any more. */
static bool s_held_send(node_cluster_t *self, cluster_link_t *link, uint64_t now)
{
    if (zlist_size(link->held) && now >= link->held_until_ms) {
        s_held_drop(self, link);
        return true;
    }
    zframe_t *frame;
    while ((frame = zlist_first(link->held))) {
        size_t len = zframe_size(frame);
        if (zframe_send(&frame, link->dealer, ZFRAME_DONTWAIT) != 0)
            return false;      /* the frame stays first in the list */
        zlist_pop(link->held); /* sent and destroyed */
        link->held_bytes -= len;
        self->held_bytes -= len;
        link->up = true;
    }
    return true;
}

/*  Reads the link's events: up (what it holds goes out), down again, or refused. */
static void s_read_events(node_cluster_t *self, cluster_link_t *link, uint64_t now)
{
    zmsg_t *event;
    while (link->monitor && (event = zmsg_recv(link->monitor))) {
        zframe_t *head = zmsg_first(event);
        uint16_t kind = 0;
        if (head && zframe_size(head) >= sizeof kind)
            memcpy(&kind, zframe_data(head), sizeof kind);
        zmsg_destroy(&event);
        if (kind == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            link->up = true;
            link->refused = false;
            link->retry_ms = RELINK_MS;
            s_held_send(self, link, now);
        } else if (kind == ZMQ_EVENT_DISCONNECTED) {
            /* libzmq reports a failed handshake as a disconnection too: only a link that was
               up went down */
            link->went_down = link->went_down || link->up;
            link->up = false;
        } else {
            link->refused = true;
        }
    }
}

/*  Makes the link anew, to the same endpoint, keeping what it holds. */
static void s_remake(node_cluster_t *self, cluster_link_t *link, bool hastened, uint64_t now)
{
    uint64_t id = link->id;
    uint8_t curve_public[32];
    char *endpoint = strdup(link->endpoint);
    bool ok = endpoint && zmq_z85_decode(curve_public, link->key_txt) != NULL;
    zlist_t *held = link->held;
    size_t held_bytes = link->held_bytes;
    uint64_t held_until_ms = link->held_until_ms;
    uint64_t retry_ms = link->retry_ms;
    bool went_down = link->went_down;
    link->held = zlist_new();
    link->held_bytes = 0;
    self->held_bytes -= held_bytes;
    s_drop_link(self, id);
    cluster_link_t *made = ok && held ? s_make_link(self, id, endpoint, curve_public) : NULL;
    if (made) {
        made->hastened = hastened;
        made->retry_ms = retry_ms;
        if (hastened)
            made->retry_ms = 2 * retry_ms < RELINK_MAX_MS ? 2 * retry_ms : RELINK_MAX_MS;
        zlist_destroy(&made->held); /* empty */
        made->held = held;
        made->held_bytes = held_bytes;
        made->held_until_ms = held_until_ms;
        made->went_down = went_down;
        self->held_bytes += held_bytes;
        s_held_send(self, made, now);
    } else {
        s_frames_clear(held);
        zlist_destroy(&held);
        if (held_bytes)
            gossip_engine_unsent(self->engine, id);
    }
    free(endpoint);
}

void cluster__relink(node_cluster_t *self, uint64_t now)
{
    zlist_t *redo = zlist_new();
    for (cluster_link_t *link = zhash_first(self->links); link; link = zhash_next(self->links)) {
        /* the wall clock may step back: no timer of a link lies further ahead than it can */
        if (link->created_ms > now)
            link->created_ms = now;
        if (link->held_until_ms > now + LINK_HOLD_MS)
            link->held_until_ms = now + LINK_HOLD_MS;
        s_read_events(self, link, now);
        s_held_send(self, link, now);
        if (link->refused && !link->left && now >= link->created_ms + RELINK_MS)
            zlist_append(redo, link);
    }
    cluster_link_t *link;
    while ((link = zlist_pop(redo)))
        s_remake(self, link, false, now);
    zlist_destroy(&redo);
}

void cluster__heard_from(node_cluster_t *self, uint64_t id, uint64_t now)
{
    cluster_link_t *link = s_link(self, id);
    if (!link || link->up)
        return;
    s_read_events(self, link, now);
    if (link->up || link->left)
        return;
    if ((link->refused && !link->hastened) || now >= link->created_ms + link->retry_ms)
        s_remake(self, link, true, now);
}

/*  Whether the link may hold len more bytes (LINK_HOLD_*). */
static bool s_may_hold(const node_cluster_t *self, const cluster_link_t *link, size_t len)
{
    size_t budget = self->config.max_message_bytes;
    if (zlist_size(link->held) >= LINK_HOLD_FRAMES ||
        self->held_bytes + len > LINK_HOLD_BUDGETS * budget)
        return false;
    return len <= LINK_HOLD_SMALL || (link->held_bytes + len <= budget &&
                                      self->held_bytes + len <= (LINK_HOLD_BUDGETS - 1) * budget);
}

bool cluster__link_send(node_cluster_t *self, uint64_t id, const uint8_t *buf, size_t len,
                        bool push, uint64_t now)
{
    cluster_link_t *link = s_link(self, id);
    if (!link)
        return false;
    if (!link->up)
        s_read_events(self, link, now);
    zframe_t *frame = zframe_new(buf, len);
    if (!frame)
        return false;
    bool behind = !s_held_send(self, link, now); /* frames held before it go first */
    if (!behind) {
        if (zframe_send(&frame, link->dealer, ZFRAME_DONTWAIT) == 0) {
            link->up = true;
            return true;
        }
        if (link->up) { /* a full pipe, or down since the last events: dropped */
            zframe_destroy(&frame);
            return false;
        }
    }
    if ((push && link->went_down) || !s_may_hold(self, link, len) ||
        zlist_append(link->held, frame) != 0) {
        zframe_destroy(&frame);
        return false;
    }
    if (zlist_size(link->held) == 1)
        link->held_until_ms = now + LINK_HOLD_MS;
    link->held_bytes += len;
    self->held_bytes += len;
    return true;
}
