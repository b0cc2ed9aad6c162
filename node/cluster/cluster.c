/*  node_cluster: the gossip engine over CurveZMQ (see cluster.h): life, the loop's calls, the
 *  engine's store observed, GC below the stable cut. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/codec.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/cluster/internal.h"
#include "node/trust/zap.h" /* the gossip socket's ZAP domain; the daemon runs the handler */
#include "proto/cluster.pb-c.h"

uint64_t cluster__now_ms(void)
{
    return (uint64_t)zclock_time();
}

/*  "tcp://HOST:PORT" -> the same host with PORT + delta. NULL if it is not of that form. */
char *cluster__port_plus(const char *endpoint, int delta)
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

/*  --- the engine's store, observed ---------------------------------------------------- */

static int s_store_apply(void *state, const char *scope, const crdt_scope_t *delta)
{
    node_cluster_t *self = state;
    if (self->on_applied)
        self->on_applied(self->on_applied_arg, scope, delta, false);
    int rc = node_store_gossip.apply(self->store, scope, delta);
    if (rc == 0 && self->on_applied)
        self->on_applied(self->on_applied_arg, scope, delta, true);
    return rc;
}

static void s_store_each(void *state, void (*fn)(void *arg, const char *scope), void *arg)
{
    node_cluster_t *self = state;
    node_store_gossip.each_scope(self->store, fn, arg);
}

static int s_store_note_wire(void *state, uint32_t reader_minor, crdt_dot_t op, const uint8_t *note,
                             size_t len, const crdt_dot_entry_t *entry, uint8_t **out,
                             size_t *out_len)
{
    node_cluster_t *self = state;
    return node_store_gossip.note_wire(self->store, reader_minor, op, note, len, entry, out,
                                       out_len);
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

static bool s_store_scope_ok(void *state, const char *scope)
{
    node_cluster_t *self = state;
    return node_store_gossip.scope_ok(self->store, scope);
}

/*  --- life -------------------------------------------------------------------------- */

static int s_fail(node_cluster_t **self_p, int rc, char *why, size_t why_len, const char *fmt, ...)
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
    self->peers_dir = zsys_sprintf("%s/%s", self->config.data_dir, NODE_CLUSTER_PEERS_DIR);
    self->members_path = zsys_sprintf("%s/members", self->config.data_dir);
    self->intro_endpoint = cluster__port_plus(self->config.gossip_endpoint, 1);
    if (!self->cert || !self->peers_dir || !self->members_path)
        return ENGRAM_ENOMEM;
    if (!self->intro_endpoint) {
        snprintf(why, why_len,
                 "the gossip endpoint must be tcp://HOST:PORT with a concrete "
                 "host and port (port + 1 serves introductions), not '%s'",
                 self->config.gossip_endpoint);
        return ENGRAM_EINVAL;
    }
    if (zsys_dir_create("%s", self->peers_dir) != 0) {
        snprintf(why, why_len, "cannot create %s", self->peers_dir);
        return ENGRAM_EIO;
    }
    size_t max_frame = self->config.max_message_bytes * GOSSIP_FRAME_HARD_LIMIT;
    self->gossip = zsock_new(ZMQ_ROUTER);
    self->intro = zsock_new(ZMQ_ROUTER);
    if (!self->gossip || !self->intro)
        return ENGRAM_ENOMEM;
    zcert_apply(self->cert, self->gossip);
    zsock_set_curve_server(self->gossip, 1);
    zsock_set_zap_domain(self->gossip, NODE_ZAP_GOSSIP);
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
    if (!self->config.data_dir || !self->config.gossip_endpoint || !self->config.admission_path ||
        !self->links || !self->by_key)
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
                                       .apply = s_store_apply,
                                       .scope_ok = s_store_scope_ok,
                                       .note_wire = s_store_note_wire};
    Engram__Members *remembered = cluster__read_members(self);
    self->incarnation = cluster__start_incarnation(self, remembered, cluster__now_ms());
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
    gossip_hooks_t hooks = {.admit = cluster__admit,
                            .verify_leave = cluster__verify_leave,
                            .changed = cluster__changed,
                            .arg = self};
    gossip_engine_set_hooks(self->engine, &hooks);
    cluster__learn_members(self, remembered);
    bool members_lost = !remembered; /* no DATA/members, or unreadable */
    engram__members__free_unpacked(remembered, NULL);
    unsigned members = 0;
    gossip_engine_heard_since(self->engine, 0, &members);
    if (members && !self->removed) {
        self->dots_pending = true;
        self->dots_since_ms = cluster__now_ms();
    } else if (!self->removed && members_lost) {
        /* Nobody to ask. A node that wrote lost its members (a partial copy?); one that holds
         * nothing may be new, or its data was wiped while its identity was kept: then the
         * others hold dots of its old replica that its fresh counters would issue again. A new
         * node loses nothing by a fresh replica id, so every such node takes one. */
        s_wrote_t wrote = {self, false};
        node_store_gossip.each_scope(self->store, s_wrote_scope, &wrote);
        cluster__renew_replica(self, wrote.wrote
                                         ? "this node wrote to shared scopes but its list of "
                                           "members is gone, so it cannot ask them about its dot "
                                           "counters"
                                         : "this node starts with no list of members (new, or "
                                           "its data was wiped): a replica id of its own, so that "
                                           "no dot it issues was issued before");
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
        cluster__save_members(self);
    gossip_engine_destroy(&self->engine);
    zlist_destroy(&self->gc_round);
    crdt_ctx_destroy(&self->gc_cut);
    zhash_destroy(&self->by_key);
    zhash_destroy(&self->links);
    zsock_destroy(&self->joiner);
    zsock_destroy(&self->gossip);
    zsock_destroy(&self->intro);
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

void node_cluster_on_applied(node_cluster_t *self, node_cluster_applied_fn fn, void *arg)
{
    self->on_applied = fn;
    self->on_applied_arg = arg;
}

bool node_cluster_removed(const node_cluster_t *self)
{
    return self->removed;
}

typedef struct {
    uint64_t self_id;
    size_t alive; /* other members alive */
} s_alive_t;

static void s_count_alive(void *arg, const gossip_member_t *member)
{
    s_alive_t *count = arg;
    if (member->id != count->self_id && member->state == GOSSIP_ALIVE)
        count->alive++;
}

bool node_cluster_joined(node_cluster_t *self)
{
    if (self->removed)
        return false;
    if (!self->join)
        return true;
    /* joining (again, after a restart with --join): in as soon as another member is alive */
    s_alive_t count = {self->node_id, 0};
    gossip_engine_each_member(self->engine, s_count_alive, &count);
    return count.alive > 0;
}

void node_cluster_local(node_cluster_t *self, const char *sid, const crdt_scope_t *delta,
                        const crdt_ctx_t *deps, bool await_ack)
{
    if (sid[0] != '@') {
        gossip_engine_local(self->engine, sid, delta, deps, await_ack);
        self->local_queued = true;
    }
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
    cluster_link_t *link = key ? zhash_lookup(self->by_key, key) : NULL;
    if (!payload) {
        s_bad_frame(self, now, "not one frame", ENGRAM_EDECODE, false);
    } else if (zframe_size(payload) > self->config.max_message_bytes) {
        s_bad_frame(self, now, "larger than --max-gossip-bytes", ENGRAM_ETOOBIG, false);
    } else if (!link) {
        /* admitted by the ZAP handler, but its member has been removed since */
        s_bad_frame(self, now, "sender is not a member", ENGRAM_EDENIED, false);
    } else {
        uint64_t id = link->id;
        cluster__heard_from(self, id, now); /* may make the link anew */
        int rc = gossip_engine_receive(self->engine, id, zframe_data(payload), zframe_size(payload),
                                       now);
        if (rc)
            s_bad_frame(self, now, "engine refused it", rc, true);
    }
    zmsg_destroy(&msg);
}

/*  Drops the op records of the round's first scope below its stable cut (as the round reached
 *  it: self->gc_cut): every member that is not LEFT is known to hold the cut, so no replica
 *  will ever ask for them. Visits records until until_us; true if it left some for the next
 *  pass. */
static bool s_collect_scope(node_cluster_t *self, const char *scope, int64_t until_us,
                            uint64_t now_ms)
{
    if (!self->gc_cut)
        self->gc_cut = gossip_engine_stable_cut(self->engine, scope);
    bool more = false;
    if (self->gc_cut && !crdt_ctx_is_empty(self->gc_cut)) {
        node_store_gc_t done;
        int rc = node_store_gc(self->store, scope, self->gc_cut, UINT64_MAX, until_us, &done);
        if (rc) { /* passes follow each other every few ms: one warning a while */
            if (now_ms >= self->gc_warned_ms + GC_INTERVAL_MS) {
                zsys_warning("engramd: collecting %s below its stable cut failed: %s", scope,
                             engram_strerror(rc));
                self->gc_warned_ms = now_ms;
            }
        } else {
            self->gc_dropped += done.dropped;
            more = done.more;
        }
    }
    if (!more)
        crdt_ctx_destroy(&self->gc_cut);
    return more;
}

/*  each_scope's visitor: a shared scope into the round's list (a copy: autofree). One it has
 *  no memory for waits for the next round. */
static void s_round_scope(void *arg, const char *scope)
{
    zlist_append(arg, (void *)scope);
}

/*  One pass of the collection round (internal.h, GC_PASS_US): a round begins with the list of
 *  the shared scopes; the pass collects them in order until its time is up, a scope it leaves
 *  records of being where the next pass goes on. A scope made during a round waits for the
 *  next. */
static void s_collect(node_cluster_t *self, uint64_t now_ms)
{
    if (!self->gc_round) {
        self->gc_round = zlist_new();
        if (!self->gc_round) { /* tried again at the next pass */
            self->next_gc_ms = now_ms + GC_RESUME_MS;
            return;
        }
        zlist_autofree(self->gc_round);
        node_store_gossip.each_scope(self->store, s_round_scope, self->gc_round);
        self->gc_round_ms = now_ms;
    }
    int64_t until_us = zclock_usecs() + GC_PASS_US;
    const char *scope;
    while ((scope = zlist_first(self->gc_round)) && zclock_usecs() < until_us &&
           !node_store_failure(self->store) && !s_collect_scope(self, scope, until_us, now_ms))
        free(zlist_pop(self->gc_round));
    if (zlist_size(self->gc_round) == 0) {
        zlist_destroy(&self->gc_round);
        self->gc_rounds++;
        self->next_gc_ms = now_ms + GC_INTERVAL_MS;
    } else if (now_ms - self->gc_round_ms < GC_INTERVAL_MS) {
        self->next_gc_ms = now_ms + GC_RESUME_MS;
    } else {
        self->next_gc_ms = now_ms + GC_RESUME_BEHIND_MS;
    }
}

/*  What the store can do, told to the engine (see gossip_engine_set_storage): a change is
 *  logged once. */
static void s_update_storage(node_cluster_t *self)
{
    gossip_storage_t storage = GOSSIP_STORAGE_OK;
    if (node_store_failure(self->store))
        storage = node_store_failure_durable(self->store) ? GOSSIP_STORAGE_READ_ONLY
                                                          : GOSSIP_STORAGE_FAILED;
    if (storage == gossip_engine_storage(self->engine))
        return;
    gossip_engine_set_storage(self->engine, storage);
    if (storage == GOSSIP_STORAGE_READ_ONLY)
        zsys_warning("engramd: the store takes no writes (%s): this node stays a member, serves "
                     "what it holds to its peers and applies nothing from them",
                     engram_strerror(node_store_failure(self->store)));
    else if (storage == GOSSIP_STORAGE_FAILED)
        zsys_warning("engramd: the store failed (%s) with writes in doubt: this node stays a "
                     "member but sends its peers no more data",
                     engram_strerror(node_store_failure(self->store)));
}

unsigned node_cluster_receive(node_cluster_t *self, unsigned max, uint64_t now_ms)
{
    s_update_storage(self);
    unsigned gossip_read = 0;
    for (unsigned i = 0; i < max; i++) {
        bool any = false;
        if (zsock_events(self->gossip) & ZMQ_POLLIN) {
            s_receive_gossip(self, now_ms);
            gossip_read++;
            any = true;
        }
        if (zsock_events(self->intro) & ZMQ_POLLIN) {
            cluster__serve_introduction(self);
            any = true;
        }
        if (self->joiner && (zsock_events(self->joiner) & ZMQ_POLLIN)) {
            cluster__joined(self);
            any = true;
        }
        if (!any)
            break;
    }
    cluster__introduce(self, now_ms);
    /* the dot check's asks before the tick's digest: one peer is asked for what this node
     * lacks, and the digest then waits for that answer instead of asking another peer */
    if (self->dots_pending)
        cluster__check_dots(self, now_ms);
    if (now_ms >= self->next_tick_ms) {
        gossip_engine_tick(self->engine, now_ms);
        self->next_tick_ms = now_ms + TICK_MS;
    }
    cluster__relink(self, now_ms);
    if (now_ms >= self->next_gc_ms && !node_store_failure(self->store))
        s_collect(self, now_ms);
    if (self->members_dirty)
        cluster__save_members(self);
    return gossip_read;
}

bool node_cluster_hold(node_cluster_t *self)
{
    self->hold_turn = self->local_queued && !gossip_engine_urgent(self->engine) &&
                      gossip_engine_storage(self->engine) == GOSSIP_STORAGE_OK &&
                      zclock_usecs() - self->sent_us < (int64_t)self->config.hold_ms * 1000;
    return self->hold_turn;
}

void node_cluster_send(node_cluster_t *self, bool durable, bool synced)
{
    bool hold = self->hold_turn;
    self->hold_turn = false;
    if (durable) {
        if (synced)
            gossip_engine_seal(self->engine);
        if (hold) {
            self->held = true;
            self->sends_held++;
            return;
        }
    }
    if (self->local_queued) /* the hold counts from the last push of this node's writes */
        self->sent_us = zclock_usecs();
    self->held = self->local_queued = false;
    uint64_t peer;
    uint8_t *buf;
    size_t len;
    /* a failed store fails every sync; what its data messages announce is lost only if
       writes were in doubt when it failed (then nothing is written since). What the syncs
       of held turns sealed still goes: drop_data keeps it and pushes it. */
    if (!durable && !(node_store_failure(self->store) && node_store_failure_durable(self->store)))
        gossip_engine_drop_data(self->engine);
    s_update_storage(self);
    uint64_t now = cluster__now_ms();
    bool push;
    while (gossip_engine_next(self->engine, &peer, &buf, &len, &push)) {
        /* no link, a full pipe, a push a link that went down does not hold, or nothing more
           may be held: pushes and digests come back through anti-entropy, SWIM's messages
           through its next probes. A push is never an ask: one still held for the peer stays
           awaited. */
        if (!cluster__link_send(self, peer, buf, len, push, now) && !push)
            gossip_engine_unsent(self->engine, peer);
        free(buf);
    }
}

bool node_cluster_has_data(const node_cluster_t *self)
{
    return gossip_engine_has_data(self->engine);
}

int node_cluster_timeout(node_cluster_t *self, uint64_t now_ms)
{
    uint64_t until = self->next_tick_ms;
    if (self->join && self->next_intro_ms < until)
        until = self->next_intro_ms;
    /* a collection pass to resume (none while the store has failed: no pass runs then) */
    if (self->gc_round && !node_store_failure(self->store) && self->next_gc_ms < until)
        until = self->next_gc_ms;
    int timeout = until <= now_ms ? 0 : (int)(until - now_ms);
    if (self->held) { /* in whole milliseconds, rounded up: never before the hold's end */
        int64_t left_us = self->sent_us + (int64_t)self->config.hold_ms * 1000 - zclock_usecs();
        int held = left_us <= 0 ? 0 : (int)((left_us + 999) / 1000);
        if (held < timeout)
            timeout = held;
    }
    return timeout;
}

unsigned node_cluster_holders(node_cluster_t *self, const char *sid, uint64_t node, uint64_t n)
{
    unsigned holders = 0;
    crdt_dot_t dot = {.node = node, .n = n};
    for (cluster_link_t *link = zhash_first(self->links); link; link = zhash_next(self->links)) {
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
