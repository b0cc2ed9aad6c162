/*  node/cluster intro: the introduction protocol on gossip port + 1 (see cluster.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/codec.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/cluster/internal.h"
#include "proto/cluster.pb-c.h"

/*  --- introduction ------------------------------------------------------------------ */

static zframe_t *s_introduction(node_cluster_t *self, const char *error)
{
    Engram__Introduction intro = ENGRAM__INTRODUCTION__INIT;
    if (!error) /* a refusal tells nothing of this node to whoever sent junk */
        intro.card = (ProtobufCBinaryData){self->card_len, self->card};
    intro.endpoint = (char *)self->config.gossip_endpoint;
    intro.incarnation = self->incarnation;
    intro.error = (char *)(error ? error : "");
    size_t len = engram__introduction__get_packed_size(&intro);
    zframe_t *frame = zframe_new(NULL, len);
    if (frame)
        engram__introduction__pack(&intro, zframe_data(frame));
    return frame;
}

/*  Checks an introduction's card; learns its sender. NULL, or why it is refused. */
static const char *s_accept_introduction(node_cluster_t *self, const Engram__Introduction *in,
                                         uint64_t *id)
{
    node_trust_t theirs;
    uint8_t node_key[crypto_sign_PUBLICKEYBYTES];
    if (node_admission_open_card(in->card.data, in->card.len, &theirs, node_key) != 0)
        return "the card is not a signed admission";
    if (memcmp(&theirs, &self->trust, sizeof theirs) != 0)
        return "the card was signed for another cluster";
    *id = node_identity_id_of(node_key);
    char *check = cluster__port_plus(in->endpoint, 1);
    bool endpoint_ok = check != NULL;
    zstr_free(&check);
    if (!endpoint_ok && !streq(in->endpoint, ""))
        return "the gossip endpoint is not tcp://HOST:PORT";
    /* Nothing here is authenticated: a card is public (every member shows it), so anyone may
       present a member's card with an endpoint and an incarnation of their choosing. A member
       already known keeps its record, which changes only through its own CurveZMQ messages
       (a restarted member's pings carry its new endpoint at a higher incarnation), and a new
       one is learned at incarnation 0, so that its first authenticated record outranks
       whatever this introduction claimed. */
    gossip_member_t known;
    if (gossip_engine_member(self->engine, *id, &known))
        return NULL;
    gossip_member_t member = {.id = *id,
                              .incarnation = 0,
                              .state = GOSSIP_ALIVE,
                              .endpoint = in->endpoint,
                              .card = in->card.data,
                              .card_len = in->card.len};
    int rc = gossip_engine_learn(self->engine, &member);
    if (rc)
        return rc == ENGRAM_EDENIED ? "this node was removed from the cluster"
                                    : "the member cannot be learned";
    return NULL;
}

/*  A joiner's introduction on our introduction socket: answer with our card or an error. */
void cluster__serve_introduction(node_cluster_t *self)
{
    zmsg_t *msg = zmsg_recv(self->intro);
    if (!msg)
        return;
    zframe_t *routing = zmsg_pop(msg);
    zframe_t *payload = zmsg_first(msg);
    const char *error = "an introduction is one engram.Introduction frame";
    Engram__Introduction *in = NULL;
    if (routing && zmsg_size(msg) == 1)
        in = engram__introduction__unpack(NULL, zframe_size(payload), zframe_data(payload));
    uint64_t id = 0;
    if (in)
        error = s_accept_introduction(self, in, &id);
    if (error) {
        /* anyone may connect here: refusals are counted, and logged at most once per
           BAD_LOG_INTERVAL_MS, so that noise at any rate cannot fill the log */
        self->bad_frames++;
        self->intros_refused++;
        uint64_t now = cluster__now_ms();
        if (now >= self->last_intro_log_ms + BAD_LOG_INTERVAL_MS) {
            self->last_intro_log_ms = now;
            zsys_warning("engramd: introduction refused: %s; %" PRIu64 " refused so far", error,
                         self->intros_refused);
        }
    } else {
        zsys_info("engramd: member %016" PRIx64 " introduced itself from %s", id, in->endpoint);
    }
    zframe_t *answer = s_introduction(self, error);
    if (routing && answer) {
        zframe_send(&routing, self->intro, ZFRAME_MORE | ZFRAME_DONTWAIT);
        zframe_send(&answer, self->intro, ZFRAME_DONTWAIT);
    }
    zframe_destroy(&routing);
    zframe_destroy(&answer);
    if (in)
        engram__introduction__free_unpacked(in, NULL);
    zmsg_destroy(&msg);
}

/*  The member's answer to our introduction: its card, or a refusal. */
void cluster__joined(node_cluster_t *self)
{
    zframe_t *frame = zframe_recv(self->joiner);
    if (!frame)
        return;
    Engram__Introduction *in =
        engram__introduction__unpack(NULL, zframe_size(frame), zframe_data(frame));
    zframe_destroy(&frame);
    uint64_t id = 0;
    const char *error = !in          ? "the answer is not an engram.Introduction"
                        : *in->error ? in->error
                                     : s_accept_introduction(self, in, &id);
    if (error) {
        zsys_error("engramd: joining through %s failed: %s", self->join, error);
    } else {
        zsys_info("engramd: joined the cluster through member %016" PRIx64 " at %s", id,
                  self->join);
        zsock_destroy(&self->joiner);
        zstr_free(&self->join);
    }
    if (in)
        engram__introduction__free_unpacked(in, NULL);
}

void cluster__introduce(node_cluster_t *self, uint64_t now)
{
    if (!self->join || now < self->next_intro_ms)
        return;
    self->next_intro_ms = now + INTRO_RETRY_MS;
    zsock_destroy(&self->joiner); /* a fresh connection: no stale answer, no queued retries */
    char *intro = cluster__port_plus(self->join, 1);
    self->joiner = zsock_new(ZMQ_DEALER);
    if (!intro || !self->joiner) {
        zstr_free(&intro);
        return;
    }
    zsock_set_linger(self->joiner, 0);
    zsock_set_sndtimeo(self->joiner, 0);
    zsock_set_maxmsgsize(self->joiner, CARD_MAX_BYTES * 2);
    zsock_connect(self->joiner, "%s", intro);
    zframe_t *frame = s_introduction(self, NULL);
    if (frame)
        zframe_send(&frame, self->joiner, ZFRAME_DONTWAIT);
    zframe_destroy(&frame);
    zstr_free(&intro);
}

int node_cluster_join(node_cluster_t *self, const char *endpoint)
{
    /* HOST:PORT is taken as tcp://HOST:PORT */
    char *full = strstr(endpoint, "://") ? strdup(endpoint) : zsys_sprintf("tcp://%s", endpoint);
    char *intro = full ? cluster__port_plus(full, 1) : NULL;
    if (!intro) {
        free(full);
        return full ? ENGRAM_EINVAL : ENGRAM_ENOMEM;
    }
    zstr_free(&intro);
    zstr_free(&self->join);
    self->join = full;
    self->next_intro_ms = 0;
    return 0;
}
