/*  node_cluster: the gossip engine over CurveZMQ, admission, membership persistence (see
 *  cluster.h). */
#include "node/cluster/cluster.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/codec.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/trust/admission.h"
#include "node/trust/identity.h"
#include "proto/cluster.pb-c.h"

#define CARD_MAX_BYTES 4096
/*  The engine budgets every message it sends by max_message_bytes, so a larger frame is bad
 *  input: counted and refused here. ZeroMQ itself drops (with the connection, uncounted) only
 *  frames past this many budgets, so that what an oversized frame costs stays bounded. */
#define GOSSIP_FRAME_HARD_LIMIT 4
/*  How often a joiner repeats its introduction until a member answers. */
#define INTRO_RETRY_MS 1000
/*  The engine's timer. */
#define TICK_MS 50
/*  Messages queued for one peer before further ones are dropped. */
#define PEER_SNDHWM 10000
/*  libzmq never retries a CURVE handshake that the peer's ZAP handler refused, and that
 *  happens whenever we learn of a member before it learns of us (gossip reaches nodes in any
 *  order): a monitor on each link reports the refusal, and the link is made anew this long
 *  after it was made. */
#define RELINK_MS 250
/*  How often op records below the stable cut are collected. */
#define GC_INTERVAL_MS 10000
/*  Bad frames are logged this often at most (each is counted). */
#define BAD_LOG_INTERVAL_MS 1000
/*  The dot check at start (s_check_dots): how long shared writes wait for the members' digests
 *  at most, and how often they are asked again meanwhile (the first asks may find no link up). */
#define DOT_CHECK_MS 3000
#define DOT_ASK_MS   250

/*  A connection to one member. */
typedef struct {
    uint64_t id;
    char *endpoint;     /* owned */
    zsock_t *dealer;    /* owned */
    char key_txt[41];   /* its CURVE public key, Z85 */
    zsock_t *monitor;   /* owned: PAIR receiving the dealer's handshake failures */
    uint64_t created_ms;
    bool refused;       /* a handshake failed: connect anew */
    bool left;          /* decommissioned: no longer counts as a holder of anything */
} s_link_t;

struct node_cluster {
    node_cluster_config_t config; /* strings owned */
    node_store_t *store;
    gossip_engine_t *engine;
    gossip_store_t store_ops; /* node_store_gossip, apply observed */
    node_trust_t trust;
    char cluster_hex[2 * NODE_CLUSTER_ID_BYTES + 1];
    uint64_t node_id;
    uint8_t *card; /* owned: this node's admission */
    size_t card_len;
    zcert_t *cert; /* this node's CURVE key pair */
    zactor_t *auth;
    char *peers_dir;    /* owned: DATA/peers, the keys zauth admits */
    char *members_path; /* owned: DATA/members */
    char *intro_endpoint;
    zsock_t *gossip;
    zsock_t *intro;
    zhash_t *links;     /* id (hex) -> s_link_t *, owned */
    zhash_t *by_key;    /* CURVE key (Z85) -> s_link_t *, borrowed from links */
    char *join;         /* owned: a member's gossip endpoint while joining, else NULL */
    zsock_t *joiner;    /* owned: DEALER to that member's introduction socket */
    uint64_t next_intro_ms;
    uint64_t next_tick_ms;
    uint64_t links_made; /* names the links' monitor endpoints */
    uint64_t next_gc_ms;
    uint64_t collected;  /* op records dropped below stable cuts */
    uint64_t last_bad_log_ms;
    uint64_t last_intro_log_ms;
    uint64_t intros_refused; /* also counted in bad_frames */
    uint64_t bad_frames;
    uint64_t incarnation; /* at start; the engine raises it to refute suspicion */
    bool applied;
    bool members_dirty;
    bool removed; /* an admin decommissioned this node: it no longer replicates */
    bool dots_pending;      /* shared writes wait for the dot check (s_check_dots) */
    uint64_t dots_since_ms; /* when it began */
    uint64_t dots_asked_ms; /* when the members were last asked for their digests */
    node_cluster_applied_fn on_applied;
    void *on_applied_arg;
};

static uint64_t s_now_ms(void)
{
    return (uint64_t)zclock_time();
}

/*  "tcp://HOST:PORT" -> the same host with PORT + delta. NULL if it is not of that form. */
static char *s_port_plus(const char *endpoint, int delta)
{
    const char *colon = strrchr(endpoint, ':');
    if (strncmp(endpoint, "tcp://", 6) != 0 || !colon || colon == endpoint + 5)
        return NULL;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port + delta > 65535 || port + delta <= 0)
        return NULL;
    if (strchr(endpoint + 6, '*'))
        return NULL;
    return zsys_sprintf("%.*s:%ld", (int)(colon - endpoint), endpoint, port + delta);
}

/*  --- links and DATA/peers ------------------------------------------------------------ */

static void s_link_free(void *item)
{
    s_link_t *link = item;
    if (link->dealer && link->monitor)
        zmq_socket_monitor(zsock_resolve(link->dealer), NULL, 0);
    zsock_destroy(&link->monitor);
    zsock_destroy(&link->dealer);
    free(link->endpoint);
    free(link);
}

static void s_key_of(uint64_t id, char hex[17])
{
    snprintf(hex, 17, "%016" PRIx64, id);
}

/*  Writes the member's public CURVE certificate where zauth looks, so it may connect.
 *  zauth's thread reads DATA/peers whenever a peer connects, so a certificate appears there
 *  whole (written beside the directory, then renamed in) and is written once: the key of an
 *  id never changes (the id is the key's hash), and a rewrite on each change of the member's
 *  state would let zauth see it truncated and refuse the member's handshake. */
static void s_admit_key(node_cluster_t *self, uint64_t id, const uint8_t curve_public[32])
{
    char name[17];
    s_key_of(id, name);
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
    s_key_of(id, name);
    s_link_t *link = zhash_lookup(self->links, name);
    if (link) {
        zhash_delete(self->by_key, link->key_txt);
        zhash_delete(self->links, name);
    }
}

/*  Makes sure a DEALER to the member's endpoint exists. */
static void s_ensure_link(node_cluster_t *self, uint64_t id, const char *endpoint,
                          const uint8_t curve_public[32])
{
    char name[17];
    s_key_of(id, name);
    s_link_t *link = zhash_lookup(self->links, name);
    if (link && streq(link->endpoint, endpoint))
        return;
    if (link)
        s_drop_link(self, id);
    link = calloc(1, sizeof *link);
    if (!link)
        return;
    link->id = id;
    link->created_ms = s_now_ms();
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

/*  --- membership -------------------------------------------------------------------- */

/*  Makes anew the links whose handshake a member refused (see RELINK_MS). */
static void s_relink(node_cluster_t *self, uint64_t now)
{
    zlist_t *redo = zlist_new();
    for (s_link_t *link = zhash_first(self->links); link; link = zhash_next(self->links)) {
        zmsg_t *event;
        while (link->monitor && (event = zmsg_recv(link->monitor))) {
            link->refused = true;
            zmsg_destroy(&event);
        }
        if (link->refused && !link->left && now >= link->created_ms + RELINK_MS)
            zlist_append(redo, link);
    }
    s_link_t *link;
    while ((link = zlist_pop(redo))) {
        uint64_t id = link->id;
        uint8_t curve_public[32];
        char *endpoint = strdup(link->endpoint);
        bool ok = endpoint && zmq_z85_decode(curve_public, link->key_txt) != NULL;
        s_drop_link(self, id);
        if (ok)
            s_ensure_link(self, id, endpoint, curve_public);
        free(endpoint);
    }
    zlist_destroy(&redo);
}

static bool s_admit(void *arg, uint64_t id, const uint8_t *card, size_t len)
{
    node_cluster_t *self = arg;
    return node_admission_check_card(&self->trust, id, card, len, NULL);
}

static bool s_verify_leave(void *arg, uint64_t id, const uint8_t *statement, size_t len)
{
    node_cluster_t *self = arg;
    return node_admission_check_leave(&self->trust, id, statement, len);
}

static const char *s_state_name(gossip_state_t state)
{
    static const char *names[] = {"alive", "suspect", "dead", "left"};
    return state <= GOSSIP_LEFT ? names[state] : "?";
}

static void s_changed(void *arg, const gossip_member_t *member)
{
    node_cluster_t *self = arg;
    self->members_dirty = true;
    if (member->id == self->node_id) {
        if (member->state == GOSSIP_LEFT && !self->removed)
            zsys_error("engramd: this node was removed from cluster %s for good; it no longer "
                       "replicates and refuses writes to shared scopes",
                       self->cluster_hex);
        self->removed |= member->state == GOSSIP_LEFT;
        return;
    }
    zsys_info("engramd: member %016" PRIx64 " %s (incarnation %" PRIu64 ") at %s", member->id,
              s_state_name(member->state), member->incarnation, member->endpoint);
    if (member->state == GOSSIP_LEFT) {
        /* its key may still connect, but the engine refuses every frame it sends and answers
           with the decommission, so that a removed node learns it even after a restart */
        char name[17];
        s_key_of(member->id, name);
        s_link_t *link = zhash_lookup(self->links, name);
        if (link)
            link->left = true;
        return;
    }
    uint8_t node_key[crypto_sign_PUBLICKEYBYTES], curve_public[32];
    if (!node_admission_check_card(&self->trust, member->id, member->card, member->card_len,
                                   node_key) ||
        node_admission_curve_keys(node_key, NULL, curve_public, NULL) != 0)
        return;
    s_admit_key(self, member->id, curve_public);
    if (*member->endpoint)
        s_ensure_link(self, member->id, member->endpoint, curve_public);
}

typedef struct {
    Engram__MemberRecord *records;
    Engram__MemberRecord **ptrs;
    size_t n, cap;
} s_records_t;

static void s_collect(void *arg, const gossip_member_t *member)
{
    s_records_t *r = arg;
    if (r->n == r->cap)
        return;
    Engram__MemberRecord *rec = &r->records[r->n];
    engram__member_record__init(rec);
    rec->id = member->id;
    rec->endpoint = (char *)member->endpoint;
    rec->incarnation = member->incarnation;
    rec->state = member->state;
    rec->card = (ProtobufCBinaryData){member->card_len, (uint8_t *)member->card};
    rec->leave = (ProtobufCBinaryData){member->leave_len, (uint8_t *)member->leave};
    r->ptrs[r->n++] = rec;
}

static void s_count(void *arg, const gossip_member_t *member)
{
    (void)member;
    (*(size_t *)arg)++;
}

/*  Rewrites DATA/members from the engine's view. */
static void s_save_members(node_cluster_t *self)
{
    size_t count = 0;
    gossip_engine_each_member(self->engine, s_count, &count);
    s_records_t r = {.cap = count};
    r.records = calloc(count ? count : 1, sizeof *r.records);
    r.ptrs = calloc(count ? count : 1, sizeof *r.ptrs);
    if (r.records && r.ptrs) {
        gossip_engine_each_member(self->engine, s_collect, &r);
        Engram__Members members = ENGRAM__MEMBERS__INIT;
        members.members = r.ptrs;
        members.n_members = r.n;
        size_t len = engram__members__get_packed_size(&members);
        uint8_t *buf = malloc(len ? len : 1);
        if (buf) {
            engram__members__pack(&members, buf);
            if (node_admission_write_file(self->members_path, buf, len, 0644) == 0)
                self->members_dirty = false;
            free(buf);
        }
    }
    free(r.records);
    free(r.ptrs);
}

/*  The membership remembered from the last run (DATA/members), NULL when there is none or it
 *  is unreadable (then the cluster is relearned through --join). */
static Engram__Members *s_read_members(node_cluster_t *self)
{
    uint8_t *buf;
    size_t len;
    if (node_admission_read_file(self->members_path, 64 * 1024 * 1024, &buf, &len) != 0)
        return NULL;
    Engram__Members *members = engram__members__unpack(NULL, len, buf);
    free(buf);
    if (!members)
        zsys_warning("engramd: %s is unreadable; the cluster is relearned through --join",
                     self->members_path);
    return members;
}

/*  The incarnation this run starts at: its start time in ms, so that a restart outranks what
 *  peers suspected of the last run, and above the one the last run reached, so that a clock
 *  stepped back cannot start it below its own past (peers would ignore it until it refuted). */
static uint64_t s_start_incarnation(const node_cluster_t *self, const Engram__Members *remembered,
                                    uint64_t now_ms)
{
    for (size_t i = 0; remembered && i < remembered->n_members; i++) {
        const Engram__MemberRecord *rec = remembered->members[i];
        if (rec->id == self->node_id && rec->incarnation >= now_ms)
            return rec->incarnation + 1;
    }
    return now_ms;
}

/*  Learns every member remembered from the last run (their current state comes from the
 *  cluster; a removal is kept as it is, for good). */
static void s_learn_members(node_cluster_t *self, const Engram__Members *members)
{
    for (size_t i = 0; members && i < members->n_members; i++) {
        Engram__MemberRecord *rec = members->members[i];
        if (rec->id == self->node_id) {
            if (rec->state == GOSSIP_LEFT && rec->leave.len) /* removed for good, restarts too */
                gossip_engine_leave(self->engine, rec->id, rec->leave.data, rec->leave.len);
            continue;
        }
        gossip_member_t member = {.id = rec->id,
                                  .incarnation = rec->incarnation,
                                  .state = GOSSIP_ALIVE,
                                  .endpoint = rec->endpoint,
                                  .card = rec->card.data,
                                  .card_len = rec->card.len};
        if (gossip_engine_learn(self->engine, &member) != 0)
            continue;
        if (rec->state == GOSSIP_LEFT && rec->leave.len)
            gossip_engine_leave(self->engine, rec->id, rec->leave.data, rec->leave.len);
    }
}

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
    char *check = s_port_plus(in->endpoint, 1);
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
static void s_serve_introduction(node_cluster_t *self)
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
        uint64_t now = s_now_ms();
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
static void s_joined(node_cluster_t *self)
{
    zframe_t *frame = zframe_recv(self->joiner);
    if (!frame)
        return;
    Engram__Introduction *in =
        engram__introduction__unpack(NULL, zframe_size(frame), zframe_data(frame));
    zframe_destroy(&frame);
    uint64_t id = 0;
    const char *error = !in ? "the answer is not an engram.Introduction"
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

static void s_introduce(node_cluster_t *self, uint64_t now)
{
    if (!self->join || now < self->next_intro_ms)
        return;
    self->next_intro_ms = now + INTRO_RETRY_MS;
    zsock_destroy(&self->joiner); /* a fresh connection: no stale answer, no queued retries */
    char *intro = s_port_plus(self->join, 1);
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
    char *intro = full ? s_port_plus(full, 1) : NULL;
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

/*  --- the engine's store, observed ---------------------------------------------------- */

static int s_store_apply(void *state, const char *scope, const crdt_scope_t *delta)
{
    node_cluster_t *self = state;
    if (self->on_applied)
        self->on_applied(self->on_applied_arg, scope, delta, false);
    int rc = node_store_gossip.apply(self->store, scope, delta);
    if (rc == 0) {
        self->applied = true;
        if (self->on_applied)
            self->on_applied(self->on_applied_arg, scope, delta, true);
    }
    return rc;
}

static void s_store_each(void *state, void (*fn)(void *arg, const char *scope), void *arg)
{
    node_cluster_t *self = state;
    node_store_gossip.each_scope(self->store, fn, arg);
}

static const crdt_ctx_t *s_store_ctx(void *state, const char *scope)
{
    node_cluster_t *self = state;
    return node_store_gossip.ctx(self->store, scope);
}

static crdt_scope_t *s_store_delta(void *state, const char *scope, const crdt_ctx_t *since)
{
    node_cluster_t *self = state;
    return node_store_gossip.delta_since(self->store, scope, since);
}

/*  --- life -------------------------------------------------------------------------- */

static int s_fail(node_cluster_t **self_p, int rc, char *why, size_t why_len, const char *fmt,
                  ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(why, why_len, fmt, args);
    va_end(args);
    node_cluster_destroy(self_p);
    return rc;
}

static int s_load_card(node_cluster_t *self, char *why, size_t why_len)
{
    int rc = node_admission_read_file(self->config.admission_path, CARD_MAX_BYTES, &self->card,
                                      &self->card_len);
    if (rc) {
        snprintf(why, why_len,
                 "no admission card at %s (%s): an admin signs one with `engram node admit "
                 "KEY --out %s`; `engramd --data DIR --identity` prints KEY",
                 self->config.admission_path, engram_strerror(rc), self->config.admission_path);
        return rc;
    }
    uint8_t node_key[crypto_sign_PUBLICKEYBYTES];
    const node_identity_t *identity = node_store_identity(self->store);
    if (node_admission_open_card(self->card, self->card_len, &self->trust, node_key) != 0) {
        snprintf(why, why_len, "%s is not a signed admission", self->config.admission_path);
        return ENGRAM_EDECODE;
    }
    if (sodium_memcmp(node_key, identity->public_key, sizeof node_key) != 0) {
        snprintf(why, why_len, "%s admits another node's key, not this node's",
                 self->config.admission_path);
        return ENGRAM_EDENIED;
    }
    sodium_bin2hex(self->cluster_hex, sizeof self->cluster_hex, self->trust.cluster_id,
                   sizeof self->trust.cluster_id);
    return 0;
}

static int s_open_sockets(node_cluster_t *self, char *why, size_t why_len)
{
    const node_identity_t *identity = node_store_identity(self->store);
    uint8_t curve_public[32], curve_secret[32];
    node_admission_curve_keys(identity->public_key, identity->secret_key, curve_public,
                              curve_secret);
    self->cert = zcert_new_from(curve_public, curve_secret);
    sodium_memzero(curve_secret, sizeof curve_secret);
    self->peers_dir = zsys_sprintf("%s/peers", self->config.data_dir);
    self->members_path = zsys_sprintf("%s/members", self->config.data_dir);
    self->intro_endpoint = s_port_plus(self->config.gossip_endpoint, 1);
    if (!self->cert || !self->peers_dir || !self->members_path)
        return ENGRAM_ENOMEM;
    if (!self->intro_endpoint) {
        snprintf(why, why_len, "the gossip endpoint must be tcp://HOST:PORT with a concrete "
                               "host and port (port + 1 serves introductions), not '%s'",
                 self->config.gossip_endpoint);
        return ENGRAM_EINVAL;
    }
    if (zsys_dir_create("%s", self->peers_dir) != 0) {
        snprintf(why, why_len, "cannot create %s", self->peers_dir);
        return ENGRAM_EIO;
    }
    self->auth = zactor_new(zauth, NULL);
    if (!self->auth)
        return ENGRAM_ENOMEM;
    zstr_sendx(self->auth, "CURVE", self->peers_dir, NULL);
    zsock_wait(self->auth);
    size_t max_frame = self->config.max_message_bytes * GOSSIP_FRAME_HARD_LIMIT;
    self->gossip = zsock_new(ZMQ_ROUTER);
    self->intro = zsock_new(ZMQ_ROUTER);
    if (!self->gossip || !self->intro)
        return ENGRAM_ENOMEM;
    zcert_apply(self->cert, self->gossip);
    zsock_set_curve_server(self->gossip, 1);
    zsock_set_zap_domain(self->gossip, "engram-gossip");
    zsock_set_maxmsgsize(self->gossip, (int64_t)max_frame);
    zsock_set_rcvtimeo(self->gossip, 0);
    zsock_set_linger(self->gossip, 0);
    zsock_set_maxmsgsize(self->intro, CARD_MAX_BYTES * 2);
    zsock_set_rcvtimeo(self->intro, 0);
    zsock_set_sndtimeo(self->intro, 0);
    zsock_set_linger(self->intro, 0);
    if (zsock_bind(self->gossip, "%s", self->config.gossip_endpoint) < 0 ||
        zsock_bind(self->intro, "%s", self->intro_endpoint) < 0) {
        snprintf(why, why_len, "cannot bind gossip on %s and introductions on %s: %s",
                 self->config.gossip_endpoint, self->intro_endpoint, zmq_strerror(zmq_errno()));
        return ENGRAM_EUNAVAILABLE;
    }
    return 0;
}

/*  Takes a new replica id for the writes from now on, saying why. */
static void s_renew_replica(node_cluster_t *self, const char *why)
{
    uint64_t old = node_store_replica(self->store);
    int rc = node_store_renew_replica(self->store);
    if (rc)
        zsys_error("engramd: %s, but it cannot take a new replica id: %s", why,
                   engram_strerror(rc));
    else
        zsys_warning("engramd: %s: replica %016" PRIx64 " becomes %016" PRIx64, why, old,
                     node_store_replica(self->store));
}

/*  Whether this replica wrote to a shared scope the store holds. */
typedef struct {
    node_cluster_t *self;
    bool wrote;
} s_wrote_t;

static void s_wrote_scope(void *arg, const char *sid)
{
    s_wrote_t *w = arg;
    const crdt_ctx_t *ctx = node_store_ctx(w->self->store, sid);
    w->wrote |= ctx && crdt_ctx_max(ctx, node_store_replica(w->self->store)) > 0;
}

int node_cluster_new(const node_cluster_config_t *config, node_store_t *store,
                     node_cluster_t **self_p, char *why, size_t why_len)
{
    node_cluster_t *self = *self_p = calloc(1, sizeof *self);
    if (!self)
        return ENGRAM_ENOMEM;
    self->config = *config;
    self->config.data_dir = strdup(config->data_dir);
    self->config.gossip_endpoint = strdup(config->gossip_endpoint);
    self->config.admission_path = strdup(config->admission_path);
    self->config.join = NULL;
    if (self->config.max_message_bytes < GOSSIP_MIN_MESSAGE_BYTES)
        self->config.max_message_bytes = GOSSIP_MIN_MESSAGE_BYTES; /* as the engine does */
    self->store = store;
    self->node_id = node_store_node_id(store);
    self->links = zhash_new();
    self->by_key = zhash_new();
    if (!self->config.data_dir || !self->config.gossip_endpoint ||
        !self->config.admission_path || !self->links || !self->by_key)
        return s_fail(self_p, ENGRAM_ENOMEM, why, why_len, "out of memory");
    int rc = s_load_card(self, why, why_len);
    if (rc) {
        node_cluster_destroy(self_p);
        return rc;
    }
    rc = s_open_sockets(self, why, why_len);
    if (rc) {
        if (rc == ENGRAM_ENOMEM)
            snprintf(why, why_len, "out of memory");
        node_cluster_destroy(self_p);
        return rc;
    }
    self->store_ops = (gossip_store_t){.each_scope = s_store_each,
                                       .ctx = s_store_ctx,
                                       .delta_since = s_store_delta,
                                       .apply = s_store_apply};
    Engram__Members *remembered = s_read_members(self);
    self->incarnation = s_start_incarnation(self, remembered, s_now_ms());
    gossip_config_t engine_config = {.node_id = self->node_id,
                                     .fanout = config->fanout,
                                     .max_message_bytes = self->config.max_message_bytes,
                                     .seed = node_identity_random_replica(),
                                     .endpoint = self->config.gossip_endpoint,
                                     .card = self->card,
                                     .card_len = self->card_len,
                                     .incarnation = self->incarnation,
                                     .gossip_interval_ms = config->gossip_interval_ms};
    self->engine = gossip_engine_new(&engine_config, &self->store_ops, self);
    if (!self->engine) {
        engram__members__free_unpacked(remembered, NULL);
        return s_fail(self_p, ENGRAM_ENOMEM, why, why_len, "out of memory");
    }
    gossip_hooks_t hooks = {.admit = s_admit,
                            .verify_leave = s_verify_leave,
                            .changed = s_changed,
                            .arg = self};
    gossip_engine_set_hooks(self->engine, &hooks);
    s_learn_members(self, remembered);
    bool members_lost = !remembered; /* no DATA/members, or unreadable */
    engram__members__free_unpacked(remembered, NULL);
    unsigned members = 0;
    gossip_engine_heard_since(self->engine, 0, &members);
    if (members && !self->removed) {
        self->dots_pending = true;
        self->dots_since_ms = s_now_ms();
    } else if (!self->removed && members_lost) {
        s_wrote_t wrote = {self, false};
        node_store_gossip.each_scope(self->store, s_wrote_scope, &wrote);
        if (wrote.wrote) /* nobody to ask: its members were lost (a partial copy?) */
            s_renew_replica(self, "this node wrote to shared scopes but its list of members "
                                  "is gone, so it cannot ask them about its dot counters");
    }
    if (config->join && node_cluster_join(self, config->join) != 0)
        return s_fail(self_p, ENGRAM_EINVAL, why, why_len,
                      "--join takes a member's gossip endpoint, HOST:PORT or tcp://HOST:PORT, "
                      "not '%s'",
                      config->join);
    return 0;
}

void node_cluster_destroy(node_cluster_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    node_cluster_t *self = *self_p;
    if (self->engine && self->members_dirty)
        s_save_members(self);
    gossip_engine_destroy(&self->engine);
    zhash_destroy(&self->by_key);
    zhash_destroy(&self->links);
    zsock_destroy(&self->joiner);
    zsock_destroy(&self->gossip);
    zsock_destroy(&self->intro);
    zactor_destroy(&self->auth);
    zcert_destroy(&self->cert);
    free(self->card);
    zstr_free(&self->peers_dir);
    zstr_free(&self->members_path);
    zstr_free(&self->intro_endpoint);
    zstr_free(&self->join);
    free((char *)self->config.data_dir);
    free((char *)self->config.gossip_endpoint);
    free((char *)self->config.admission_path);
    free(self);
    *self_p = NULL;
}

/*  --- the loop's calls ------------------------------------------------------------- */

zsock_t *node_cluster_gossip_socket(node_cluster_t *self)
{
    return self->gossip;
}

zsock_t *node_cluster_intro_socket(node_cluster_t *self)
{
    return self->intro;
}

gossip_engine_t *node_cluster_engine(node_cluster_t *self)
{
    return self->engine;
}

const char *node_cluster_id_hex(const node_cluster_t *self)
{
    return self->cluster_hex;
}

void node_cluster_on_applied(node_cluster_t *self, node_cluster_applied_fn fn, void *arg)
{
    self->on_applied = fn;
    self->on_applied_arg = arg;
}

bool node_cluster_removed(const node_cluster_t *self)
{
    return self->removed;
}

const char *node_cluster_endpoint(const node_cluster_t *self)
{
    return self->config.gossip_endpoint;
}

void node_cluster_local(node_cluster_t *self, const char *sid, const crdt_scope_t *delta,
                        const crdt_ctx_t *deps)
{
    if (sid[0] != '@')
        gossip_engine_local(self->engine, sid, delta, deps);
}

/*  Counts (unless the engine already did, in its bad_messages) and logs a refused frame. */
static void s_bad_frame(node_cluster_t *self, uint64_t now, const char *what, int rc,
                        bool engine_counted)
{
    if (!engine_counted)
        self->bad_frames++;
    if (now >= self->last_bad_log_ms + BAD_LOG_INTERVAL_MS) {
        self->last_bad_log_ms = now;
        zsys_warning("engramd: gossip frame refused (%s: %s); %" PRIu64 " refused so far", what,
                     engram_strerror(rc),
                     self->bad_frames + gossip_engine_stats(self->engine)->bad_messages);
    }
}

static void s_receive_gossip(node_cluster_t *self, uint64_t now)
{
    zmsg_t *msg = zmsg_recv(self->gossip);
    if (!msg)
        return;
    zframe_t *payload = zmsg_size(msg) == 2 ? zmsg_last(msg) : NULL;
    const char *key = payload ? zframe_meta(payload, "User-Id") : NULL;
    s_link_t *link = key ? zhash_lookup(self->by_key, key) : NULL;
    if (!payload) {
        s_bad_frame(self, now, "not one frame", ENGRAM_EDECODE, false);
    } else if (zframe_size(payload) > self->config.max_message_bytes) {
        s_bad_frame(self, now, "larger than --max-gossip-bytes", ENGRAM_ETOOBIG, false);
    } else if (!link) {
        /* admitted by zauth, but its member has been removed since */
        s_bad_frame(self, now, "sender is not a member", ENGRAM_EDENIED, false);
    } else {
        int rc = gossip_engine_receive(self->engine, link->id, zframe_data(payload),
                                       zframe_size(payload), now);
        if (rc)
            s_bad_frame(self, now, "engine refused it", rc, true);
    }
    zmsg_destroy(&msg);
}

/*  Drops the op records of one scope below its stable cut: every member that is not LEFT
 *  is known to hold the cut, so no replica will ever ask for them. */
static void s_collect_scope(void *arg, const char *scope)
{
    node_cluster_t *self = arg;
    crdt_ctx_t *cut = gossip_engine_stable_cut(self->engine, scope);
    const crdt_ctx_t *pruned = node_store_pruned(self->store, scope);
    uint64_t dropped = 0;
    if (cut && !crdt_ctx_is_empty(cut) && !(pruned && crdt_ctx_covers(pruned, cut))) {
        int rc = node_store_gc(self->store, scope, cut, &dropped);
        if (rc)
            zsys_warning("engramd: collecting %s below its stable cut failed: %s", scope,
                         engram_strerror(rc));
        self->collected += dropped;
    }
    crdt_ctx_destroy(&cut);
}

/*  Dot safety at start (gossip_engine_ask_digests): a node that remembers members asks them
 *  for their digests and holds shared writes until every one answered or DOT_CHECK_MS passed.
 *  Their answers carry this replica's dots that its store lacks (a data directory restored
 *  from an older plain copy), so its counters move past them before it writes. If a member is
 *  still known to hold such a dot, or one did not answer (the counters cannot be proven
 *  current: it may be the one that holds them), the store takes a new replica id: a reused
 *  dot would make replicas diverge silently. */
static void s_check_dots(node_cluster_t *self, uint64_t now_ms)
{
    if (now_ms < self->dots_since_ms)
        self->dots_since_ms = now_ms; /* the clock stepped back: the wait starts again */
    unsigned members = 0;
    unsigned heard = gossip_engine_heard_since(self->engine, self->dots_since_ms, &members);
    if (heard < members && now_ms < self->dots_since_ms + DOT_CHECK_MS) {
        if (now_ms >= self->dots_asked_ms + DOT_ASK_MS) {
            gossip_engine_ask_digests(self->engine, self->dots_since_ms);
            self->dots_asked_ms = now_ms;
        }
        return;
    }
    self->dots_pending = false;
    uint64_t old = node_store_replica(self->store);
    bool unseen = gossip_engine_holds_unseen(self->engine, old);
    if (!unseen && heard == members) {
        zsys_info("engramd: dot counters checked against all %u members", members);
        return;
    }
    s_renew_replica(self, unseen ? "members hold dots of this replica that this node lacks "
                                   "(its data directory is older than its last run, e.g. "
                                   "restored from a copy)"
                                 : "not every member answered in time, so this node cannot "
                                   "prove its dot counters current");
}

bool node_cluster_dots_checked(const node_cluster_t *self)
{
    return !self->dots_pending;
}

bool node_cluster_receive(node_cluster_t *self, unsigned max, uint64_t now_ms)
{
    self->applied = false;
    for (unsigned i = 0; i < max; i++) {
        bool any = false;
        if (zsock_events(self->gossip) & ZMQ_POLLIN) {
            s_receive_gossip(self, now_ms);
            any = true;
        }
        if (zsock_events(self->intro) & ZMQ_POLLIN) {
            s_serve_introduction(self);
            any = true;
        }
        if (self->joiner && (zsock_events(self->joiner) & ZMQ_POLLIN)) {
            s_joined(self);
            any = true;
        }
        if (!any)
            break;
    }
    s_introduce(self, now_ms);
    if (now_ms >= self->next_tick_ms) {
        gossip_engine_tick(self->engine, now_ms);
        self->next_tick_ms = now_ms + TICK_MS;
    }
    s_relink(self, now_ms);
    if (self->dots_pending)
        s_check_dots(self, now_ms);
    if (now_ms >= self->next_gc_ms) {
        node_store_gossip.each_scope(self->store, s_collect_scope, self);
        self->next_gc_ms = now_ms + GC_INTERVAL_MS;
    }
    if (self->members_dirty)
        s_save_members(self);
    return self->applied;
}

void node_cluster_send(node_cluster_t *self)
{
    uint64_t peer;
    uint8_t *buf;
    size_t len;
    while (gossip_engine_next(self->engine, &peer, &buf, &len)) {
        char name[17];
        s_key_of(peer, name);
        s_link_t *link = zhash_lookup(self->links, name);
        if (link) {
            zframe_t *frame = zframe_new(buf, len);
            if (frame && zframe_send(&frame, link->dealer, ZFRAME_DONTWAIT) != 0)
                zframe_destroy(&frame); /* not connected or full: anti-entropy repairs it */
        }
        free(buf);
    }
}

int node_cluster_timeout(node_cluster_t *self, uint64_t now_ms)
{
    uint64_t until = self->next_tick_ms;
    if (self->join && self->next_intro_ms < until)
        until = self->next_intro_ms;
    return until <= now_ms ? 0 : (int)(until - now_ms);
}

unsigned node_cluster_holders(node_cluster_t *self, const char *sid, uint64_t node, uint64_t n)
{
    unsigned holders = 0;
    crdt_dot_t dot = {.node = node, .n = n};
    for (s_link_t *link = zhash_first(self->links); link; link = zhash_next(self->links)) {
        if (link->left)
            continue;
        const crdt_ctx_t *ctx = gossip_engine_peer_ctx(self->engine, link->id, sid);
        if (ctx && crdt_ctx_contains(ctx, dot))
            holders++;
    }
    return holders;
}

int node_cluster_remove(node_cluster_t *self, uint64_t id, const uint8_t *statement, size_t len)
{
    if (!node_admission_check_leave(&self->trust, id, statement, len))
        return ENGRAM_EDENIED;
    return gossip_engine_leave(self->engine, id, statement, len);
}

/*  --- status ------------------------------------------------------------------------ */

/*  "node:max node:max ..." with the cloud's extra dots counted, e.g. "1a2b:17 3c4d:5+2". */
static char *s_vector_text(const crdt_ctx_t *ctx)
{
    size_t nodes = crdt_ctx_nodes(ctx);
    char *text = calloc(1, nodes * 48 + 1);
    if (!text)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < nodes; i++) {
        uint64_t node, base;
        const crdt_range_t *cloud;
        size_t ncloud;
        crdt_ctx_node_at(ctx, i, &node, &base, &cloud, &ncloud);
        uint64_t extra = 0;
        for (size_t c = 0; c < ncloud; c++)
            extra += cloud[c].hi - cloud[c].lo + 1;
        at += (size_t)sprintf(text + at, "%s%016" PRIx64 ":%" PRIu64, i ? " " : "", node, base);
        if (extra)
            at += (size_t)sprintf(text + at, "+%" PRIu64, extra);
    }
    return text;
}

typedef struct {
    node_cluster_t *self;
    Engram__ClusterStatus *status;
    bool failed;
} s_status_t;

static void s_status_scope(void *arg, const char *scope)
{
    s_status_t *st = arg;
    Engram__ClusterStatus *status = st->status;
    const crdt_ctx_t *ctx = node_store_ctx(st->self->store, scope);
    Engram__ScopeStatus **grown = realloc(status->scopes,
                                          (status->n_scopes + 1) * sizeof *grown);
    Engram__ScopeStatus *item = calloc(1, sizeof *item);
    if (grown)
        status->scopes = grown;
    if (!grown || !item || !ctx) {
        free(item);
        st->failed |= !grown || !item;
        return;
    }
    engram__scope_status__init(item);
    item->scope = strdup(scope);
    item->vector = s_vector_text(ctx);
    item->ops = crdt_ctx_count(ctx);
    uint64_t garbage = 0;
    if (node_store_garbage(st->self->store, scope, &garbage) == 0)
        item->garbage = garbage;
    status->scopes[status->n_scopes++] = item;
    st->failed |= !item->scope || !item->vector;
}

/*  What member is known to lack of every scope: operations and the bytes of the delta. */
static void s_member_lag(node_cluster_t *self, Engram__ClusterStatus *status,
                         Engram__Member *m)
{
    m->lag_known = true;
    for (size_t i = 0; i < status->n_scopes; i++) {
        const char *scope = status->scopes[i]->scope;
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
        crdt_scope_t *delta = node_store_gossip.delta_since(self->store, scope, theirs);
        uint8_t *buf = NULL;
        size_t len = 0;
        if (delta && crdt_scope_encode(delta, &buf, &len) == 0)
            m->lag_bytes += len;
        free(buf);
        crdt_scope_destroy(&delta);
    }
}

typedef struct {
    node_cluster_t *self;
    Engram__ClusterStatus *status;
    bool failed;
} s_members_t;

static void s_status_member(void *arg, const gossip_member_t *member)
{
    s_members_t *st = arg;
    Engram__ClusterStatus *status = st->status;
    Engram__Member **grown = realloc(status->members, (status->n_members + 1) * sizeof *grown);
    Engram__Member *m = calloc(1, sizeof *m);
    if (grown)
        status->members = grown;
    if (!grown || !m) {
        free(m);
        st->failed = true;
        return;
    }
    engram__member__init(m);
    m->id = member->id;
    bool me = member->id == st->self->node_id;
    m->state = strdup(me ? "self" : s_state_name(member->state));
    m->incarnation = member->incarnation;
    m->endpoint = strdup(member->endpoint);
    status->members[status->n_members++] = m;
    st->failed |= !m->state || !m->endpoint;
    if (!me && member->state != GOSSIP_LEFT)
        s_member_lag(st->self, status, m);
}

int node_cluster_status(node_cluster_t *self, Engram__ClusterStatus **status_p)
{
    Engram__ClusterStatus *status = *status_p = calloc(1, sizeof *status);
    if (!status)
        return ENGRAM_ENOMEM;
    engram__cluster_status__init(status);
    status->cluster_id = strdup(self->cluster_hex);
    status->endpoint = strdup(self->config.gossip_endpoint);
    status->node_id = self->node_id;
    s_status_t scopes = {self, status, false};
    node_store_gossip.each_scope(self->store, s_status_scope, &scopes);
    s_members_t members = {self, status, false};
    gossip_engine_each_member(self->engine, s_status_member, &members);
    const gossip_stats_t *stats = gossip_engine_stats(self->engine);
    status->pushes_sent = stats->pushes_sent;
    status->pushes_applied = stats->pushes_applied;
    status->pushes_held_back = stats->pushes_held_back;
    status->digests_sent = stats->digests_sent;
    status->pulls_answered = stats->pulls_answered;
    status->pull_deltas_applied = stats->pull_deltas_applied;
    status->bytes_sent = stats->bytes_sent;
    status->bytes_received = stats->bytes_received;
    status->bad_messages = stats->bad_messages + self->bad_frames;
    status->local_health = gossip_engine_health(self->engine);
    if (scopes.failed || members.failed || !status->cluster_id || !status->endpoint) {
        node_cluster_status_free(status_p);
        return ENGRAM_ENOMEM;
    }
    return 0;
}

void node_cluster_status_free(Engram__ClusterStatus **status_p)
{
    Engram__ClusterStatus *status = *status_p;
    if (!status)
        return;
    for (size_t i = 0; i < status->n_members; i++) {
        free(status->members[i]->state);
        free(status->members[i]->endpoint);
        free(status->members[i]);
    }
    for (size_t i = 0; i < status->n_scopes; i++) {
        free(status->scopes[i]->scope);
        free(status->scopes[i]->vector);
        free(status->scopes[i]);
    }
    free(status->members);
    free(status->scopes);
    free(status->cluster_id);
    free(status->endpoint);
    free(status);
    *status_p = NULL;
}
