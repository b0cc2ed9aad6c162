/*  node/cluster links: a CurveZMQ DEALER per member, the keys ZAP admits (DATA/peers), and
 *  links made anew after a refused handshake. */
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

static void s_link_free(void *item)
{
    cluster_link_t *link = item;
    if (link->dealer && link->monitor)
        zmq_socket_monitor(zsock_resolve(link->dealer), NULL, 0);
    zsock_destroy(&link->monitor);
    zsock_destroy(&link->dealer);
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

/*  Makes sure a DEALER to the member's endpoint exists. */
void cluster__ensure_link(node_cluster_t *self, uint64_t id, const char *endpoint,
                          const uint8_t curve_public[32])
{
    char name[17];
    cluster__key_of(id, name);
    cluster_link_t *link = zhash_lookup(self->links, name);
    if (link && streq(link->endpoint, endpoint))
        return;
    if (link)
        s_drop_link(self, id);
    link = calloc(1, sizeof *link);
    if (!link)
        return;
    link->id = id;
    link->created_ms = cluster__now_ms();
    link->endpoint = strdup(endpoint);
    zmq_z85_encode(link->key_txt, curve_public, 32);
    link->dealer = zsock_new(ZMQ_DEALER);
    if (!link->endpoint || !link->dealer) {
        s_link_free(link);
        return;
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
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0) {
        link->monitor = zsock_new(ZMQ_PAIR);
        if (link->monitor && zsock_connect(link->monitor, "%s", monitor) == 0)
            zsock_set_rcvtimeo(link->monitor, 0);
        else
            zsock_destroy(&link->monitor);
    }
    if (zsock_connect(link->dealer, "%s", endpoint) != 0) {
        zsys_warning("engramd: member %s has an unusable endpoint '%s'", name, endpoint);
        s_link_free(link);
        return;
    }
    zhash_insert(self->links, name, link);
    zhash_freefn(self->links, name, s_link_free);
    zhash_insert(self->by_key, link->key_txt, link);
}

/*  Makes anew the links whose handshake a member refused (see RELINK_MS). */
void cluster__relink(node_cluster_t *self, uint64_t now)
{
    zlist_t *redo = zlist_new();
    for (cluster_link_t *link = zhash_first(self->links); link; link = zhash_next(self->links)) {
        zmsg_t *event;
        while (link->monitor && (event = zmsg_recv(link->monitor))) {
            link->refused = true;
            zmsg_destroy(&event);
        }
        if (link->refused && !link->left && now >= link->created_ms + RELINK_MS)
            zlist_append(redo, link);
    }
    cluster_link_t *link;
    while ((link = zlist_pop(redo))) {
        uint64_t id = link->id;
        uint8_t curve_public[32];
        char *endpoint = strdup(link->endpoint);
        bool ok = endpoint && zmq_z85_decode(curve_public, link->key_txt) != NULL;
        s_drop_link(self, id);
        if (ok)
            cluster__ensure_link(self, id, endpoint, curve_public);
        free(endpoint);
    }
    zlist_destroy(&redo);
}
