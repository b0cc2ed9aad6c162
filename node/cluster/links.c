/*  node/cluster links: a CurveZMQ DEALER per member, the keys ZAP admits (DATA/peers), what a
 *  new link holds until its first handshake (LINK_QUEUE_MS), and links made anew after a
 *  refused handshake (RELINK_MS). */
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

/*  Destroys a list of frames. */
static void s_frames_destroy(zlist_t **frames_p)
{
    zframe_t *frame;
    while (*frames_p && (frame = zlist_pop(*frames_p)))
        zframe_destroy(&frame);
    zlist_destroy(frames_p);
}

static void s_link_free(void *item)
{
    cluster_link_t *link = item;
    if (link->dealer && link->monitor)
        zmq_socket_monitor(zsock_resolve(link->dealer), NULL, 0);
    zsock_destroy(&link->monitor);
    zsock_destroy(&link->dealer);
    s_frames_destroy(&link->queue);
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
    link->queue = zlist_new();
    zmq_z85_encode(link->key_txt, curve_public, 32);
    link->dealer = zsock_new(ZMQ_DEALER);
    if (!link->endpoint || !link->queue || !link->dealer) {
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
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0) {
        link->monitor = zsock_new(ZMQ_PAIR);
        if (link->monitor && zsock_connect(link->monitor, "%s", monitor) == 0)
            zsock_set_rcvtimeo(link->monitor, 0);
        else
            zsock_destroy(&link->monitor);
    }
    link->connected = !link->monitor; /* no handshake events to wait for: sends go straight */
    if (zsock_connect(link->dealer, "%s", endpoint) != 0) {
        zsys_warning("engramd: member %s has an unusable endpoint '%s'", name, endpoint);
        s_link_free(link);
        return NULL;
    }
    zhash_insert(self->links, name, link);
    zhash_freefn(self->links, name, s_link_free);
    zhash_insert(self->by_key, link->key_txt, link);
    return link;
}

void cluster__ensure_link(node_cluster_t *self, uint64_t id, const char *endpoint,
                          const uint8_t curve_public[32])
{
    s_make_link(self, id, endpoint, curve_public);
}

/*  Sends what the link held, in order, now that its handshake succeeded. */
static void s_queue_flush(node_cluster_t *self, cluster_link_t *link)
{
    zframe_t *frame;
    bool sent = true;
    while ((frame = zlist_pop(link->queue))) {
        sent = sent && zframe_send(&frame, link->dealer, ZFRAME_DONTWAIT) == 0;
        zframe_destroy(&frame); /* a frame that did not go: anti-entropy repairs it */
    }
    link->queue_bytes = 0;
    if (!sent)
        gossip_engine_unsent(self->engine, link->id);
}

/*  Reads the link's handshake events: up (its queue goes out), or refused. */
static void s_read_events(node_cluster_t *self, cluster_link_t *link)
{
    zmsg_t *event;
    while (link->monitor && (event = zmsg_recv(link->monitor))) {
        zframe_t *head = zmsg_first(event);
        uint16_t kind = 0;
        if (head && zframe_size(head) >= sizeof kind)
            memcpy(&kind, zframe_data(head), sizeof kind);
        zmsg_destroy(&event);
        if (kind == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            link->connected = true;
            s_queue_flush(self, link);
        } else {
            link->refused = true;
        }
    }
}

/*  Makes the link anew, to the same endpoint, keeping what it held for its first handshake. */
static void s_remake(node_cluster_t *self, cluster_link_t *link, bool hastened)
{
    uint64_t id = link->id;
    uint8_t curve_public[32];
    char *endpoint = strdup(link->endpoint);
    zlist_t *queue = link->queue;
    size_t queue_bytes = link->queue_bytes;
    uint64_t queue_until_ms = link->queue_until_ms;
    link->queue = NULL;
    bool ok = endpoint && zmq_z85_decode(curve_public, link->key_txt) != NULL;
    s_drop_link(self, id);
    cluster_link_t *made = ok ? s_make_link(self, id, endpoint, curve_public) : NULL;
    if (made) {
        made->hastened = hastened;
        s_frames_destroy(&made->queue);
        made->queue = queue;
        made->queue_bytes = queue_bytes;
        made->queue_until_ms = queue_until_ms;
    } else {
        s_frames_destroy(&queue);
    }
    free(endpoint);
}

void cluster__relink(node_cluster_t *self, uint64_t now)
{
    zlist_t *redo = zlist_new();
    for (cluster_link_t *link = zhash_first(self->links); link; link = zhash_next(self->links)) {
        s_read_events(self, link);
        if (zlist_size(link->queue) && now >= link->queue_until_ms) {
            s_frames_destroy(&link->queue);
            link->queue = zlist_new();
            link->queue_bytes = 0;
            gossip_engine_unsent(self->engine, link->id);
        }
        if (link->refused && !link->left && now >= link->created_ms + RELINK_MS)
            zlist_append(redo, link);
    }
    cluster_link_t *link;
    while ((link = zlist_pop(redo)))
        s_remake(self, link, false);
    zlist_destroy(&redo);
}

void cluster__heard_from(node_cluster_t *self, uint64_t id)
{
    cluster_link_t *link = s_link(self, id);
    if (!link || link->connected)
        return;
    s_read_events(self, link);
    if (link->refused && !link->left && !link->hastened)
        s_remake(self, link, true);
}

bool cluster__link_send(node_cluster_t *self, uint64_t id, const uint8_t *buf, size_t len,
                        uint64_t now)
{
    cluster_link_t *link = s_link(self, id);
    if (!link)
        return false;
    if (!link->connected)
        s_read_events(self, link);
    bool queued = !link->connected;
    if (queued && (zlist_size(link->queue) >= LINK_QUEUE_FRAMES ||
                   link->queue_bytes + len > self->config.max_message_bytes))
        return false;
    zframe_t *frame = zframe_new(buf, len);
    if (!frame)
        return false;
    if (!queued) {
        bool sent = zframe_send(&frame, link->dealer, ZFRAME_DONTWAIT) == 0;
        zframe_destroy(&frame);
        return sent;
    }
    if (zlist_size(link->queue) == 0)
        link->queue_until_ms = now + LINK_QUEUE_MS;
    if (zlist_append(link->queue, frame) != 0) {
        zframe_destroy(&frame);
        return false;
    }
    link->queue_bytes += len;
    return true;
}
