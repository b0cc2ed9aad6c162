/*  node_zap: engramd's ZAP handler (see zap.h). */
#include "node/trust/zap.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

#define S_ENDPOINT "inproc://zeromq.zap.01"
#define S_VERSION  "1.0"
/*  A ZAP 1.0 request: version, request id, domain, address, routing id, mechanism, then the
 *  mechanism's credentials (none for NULL, one for CURVE, two for PLAIN). */
#define S_MIN_FRAMES 6
#define S_MAX_FRAMES 8
/*  The request id is echoed in the answer; libzmq's are a few bytes. */
#define S_MAX_ID_BYTES    255
#define S_CURVE_KEY_BYTES 32

/*  What node_zap_new hands the actor: the directory, and the actor's answer whether it bound
 *  the endpoint. Lives on node_zap_new's stack until the actor's first signal. */
typedef struct {
    const char *peers_dir;
    bool bound;
} s_start_t;

typedef struct {
    zsock_t *pipe;       /* borrowed from zactor */
    zsock_t *handler;    /* owned: REP bound to S_ENDPOINT */
    zcertstore_t *peers; /* owned: the gossip domain's admitted keys */
    zpoller_t *poller;   /* owned */
    bool terminated;
} self_t;

/*  The decision on one request: status code, text and (on 200) the User-Id. */
typedef struct {
    const char *status;
    const char *text;
    char user[41];
} s_verdict_t;

static bool s_frame_is(zframe_t *frame, const char *text)
{
    return zframe_size(frame) == strlen(text) &&
           memcmp(zframe_data(frame), text, zframe_size(frame)) == 0;
}

/*  Decides a request of n frames (S_MIN_FRAMES..S_MAX_FRAMES, checked by the caller). */
static void s_decide(self_t *self, zframe_t **frames, size_t n, s_verdict_t *v)
{
    zframe_t *domain = frames[2], *mechanism = frames[5];
    bool gossip = s_frame_is(domain, NODE_ZAP_GOSSIP), api = s_frame_is(domain, NODE_ZAP_API);
    v->status = "400";
    if (!gossip && !api) {
        v->text = "unknown ZAP domain";
        return;
    }
    if (!s_frame_is(mechanism, "CURVE") || n != S_MIN_FRAMES + 1 ||
        zframe_size(frames[6]) != S_CURVE_KEY_BYTES) {
        v->text = "engram admits CURVE clients only";
        return;
    }
    zmq_z85_encode(v->user, zframe_data(frames[6]), S_CURVE_KEY_BYTES);
    if (gossip && !zcertstore_lookup(self->peers, v->user)) {
        v->user[0] = '\0';
        v->text = "not an admitted member's key";
        return;
    }
    v->status = "200";
    v->text = "OK";
}

/*  Reads one request and answers it, whatever it holds: a REP socket must answer before it
 *  reads again, and libzmq's handshake waits for the answer. */
static void s_answer(self_t *self)
{
    zmsg_t *request = zmsg_recv(self->handler);
    if (!request)
        return; /* interrupted before a request came */
    zframe_t *frames[S_MAX_FRAMES] = {NULL};
    size_t n = zmsg_size(request);
    size_t i = 0;
    for (zframe_t *f = zmsg_first(request); f && i < S_MAX_FRAMES; f = zmsg_next(request))
        frames[i++] = f;
    bool has_id = n >= 2 && zframe_size(frames[1]) <= S_MAX_ID_BYTES;
    s_verdict_t v = {.status = "400", .text = "malformed ZAP request", .user = ""};
    if (n >= S_MIN_FRAMES && n <= S_MAX_FRAMES && has_id && s_frame_is(frames[0], S_VERSION))
        s_decide(self, frames, n, &v);
    zmsg_t *reply = zmsg_new();
    if (reply) {
        zmsg_addstr(reply, S_VERSION);
        if (has_id)
            zmsg_addmem(reply, zframe_data(frames[1]), zframe_size(frames[1]));
        else
            zmsg_addmem(reply, NULL, 0);
        zmsg_addstr(reply, v.status);
        zmsg_addstr(reply, v.text);
        zmsg_addstr(reply, v.user);
        zmsg_addmem(reply, NULL, 0); /* no metadata */
        if (zmsg_send(&reply, self->handler) != 0)
            zmsg_destroy(&reply);
    }
    zmsg_destroy(&request);
}

static void s_command(self_t *self)
{
    char *command = zstr_recv(self->pipe);
    if (!command)
        return;
    if (streq(command, "$TERM"))
        self->terminated = true;
    else
        zsys_error("node_zap: unknown command '%s'", command);
    zstr_free(&command);
}

static void s_actor(zsock_t *pipe, void *args)
{
    s_start_t *start = args;
    self_t self = {.pipe = pipe};
    self.handler = zsock_new(ZMQ_REP);
    self.peers = zcertstore_new(start->peers_dir);
    self.poller = zpoller_new(pipe, NULL);
    bool bound = self.handler && zsock_bind(self.handler, S_ENDPOINT) == 0;
    start->bound =
        bound && self.peers && self.poller && zpoller_add(self.poller, self.handler) == 0;
    zsock_signal(pipe, 0); /* start is node_zap_new's no longer */
    if (self.poller)
        zpoller_set_nonstop(self.poller, true); /* only $TERM ends it */
    else
        self.terminated = true;
    while (!self.terminated) {
        zsock_t *which = zpoller_wait(self.poller, -1);
        if (which == pipe)
            s_command(&self);
        else if (which == self.handler)
            s_answer(&self);
    }
    zpoller_destroy(&self.poller);
    zcertstore_destroy(&self.peers);
    /* unbound now, not whenever libzmq's reaper closes the socket: a handler started right
     * after this one ends (a test's next case) finds the endpoint free */
    if (bound)
        zsock_unbind(self.handler, S_ENDPOINT);
    zsock_destroy(&self.handler);
}

zactor_t *node_zap_new(const char *peers_dir)
{
    assert(peers_dir);
    s_start_t start = {.peers_dir = peers_dir, .bound = false};
    zactor_t *actor = zactor_new(s_actor, &start);
    if (actor && !start.bound)
        zactor_destroy(&actor);
    return actor;
}
