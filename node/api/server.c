/*  node_server: the agent API loop with group commit (see server.h). */
#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
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
#include "node/common/wire.h"
#include "node/trust/admission.h"
#include "node/trust/zap.h"

static bool s_op_writes(Engram__Op op)
{
    switch (op) {
    case ENGRAM__OP__PUT:
    case ENGRAM__OP__DELETE:
    case ENGRAM__OP__SET_ADD:
    case ENGRAM__OP__SET_REMOVE:
    case ENGRAM__OP__COUNTER_ADD:
    case ENGRAM__OP__LOG_APPEND:
    case ENGRAM__OP__REMEMBER:
    case ENGRAM__OP__SHARE:
        return true;
    default:
        return false;
    }
}

/*  Keeps a request (a GET waiting for its token, a write waiting for the dot check) with its
 *  routing and the key it came with; NULL when out of memory. */
static api_parked_t *s_park(zlist_t *list, zframe_t *routing, Engram__Request *req,
                            const uint8_t client_key[32])
{
    api_parked_t *parked = calloc(1, sizeof *parked);
    if (!parked)
        return NULL;
    parked->routing = routing;
    parked->request = req;
    memcpy(parked->client_key, client_key, sizeof parked->client_key);
    zlist_append(list, parked);
    return parked;
}

void api__request(node_server_t *self, zframe_t *routing, Engram__Request *req,
                  const uint8_t client_key[32])
{
    api_reply_t r;
    api__reply_init(&r);
    r.client_key = client_key;
    char sid[MAX_SCOPE_BYTES + 2];
    int rc = 0;
    if (req->schema_major > ENGRAM_SCHEMA_MAJOR)
        rc = api__fail(&r, ENGRAM_EVERSION, "request schema %u is newer than this node's %d",
                       req->schema_major, ENGRAM_SCHEMA_MAJOR);
    else if (strlen(req->agent) > MAX_NAME_BYTES || strlen(req->user) > MAX_NAME_BYTES ||
             !api__name_ok(req->agent) || !api__name_ok(req->user))
        rc = api__fail(&r, ENGRAM_EINVAL,
                       "agent and user names are UTF-8 without spaces or control "
                       "characters, at most %d bytes",
                       MAX_NAME_BYTES);
    else /* who acts: from the connection's key (req->agent is set from it) */
        rc = api__identify(self, req, &r);
    bool scoped = req->op != ENGRAM__OP__STATS && !api__admin_op(req->op);
    if (rc == 0 && scoped && (rc = api__resolve(req, sid, &r)) == 0) {
        r.sid = sid;
        r.scope = req->scope;
        rc = api__authorize(self, req, sid, &r);
    }
    r.replicas = req->replicas;
    r.timeout_ms = req->timeout_ms;
    bool shared_write = (scoped && sid[0] != '@' && s_op_writes(req->op)) ||
                        req->op == ENGRAM__OP__ACL_SUBMIT; /* statements go to sys:acl */
    if (rc == 0 && shared_write && self->cluster && !node_cluster_dots_checked(self->cluster)) {
        /* the node may not issue dots yet (node_cluster_dots_checked): held, in order */
        if (s_park(self->held, routing, req, client_key)) {
            api__arena_free(&r.arena);
            return;
        }
        rc = api__fail(&r, ENGRAM_ENOMEM, "out of memory");
    }
    if (rc == 0 && req->after.len) { /* any read carrying a token waits until it is covered */
        rc = api__token_reached(self, req, &r);
        if (rc == 1) { /* not yet: park it */
            api_parked_t *parked = s_park(self->parked, routing, req, client_key);
            if (parked) {
                parked->deadline_ms =
                    api__now_ms() +
                    (req->timeout_ms ? req->timeout_ms : ENGRAM_DEFAULT_AFTER_TIMEOUT_MS);
                api__arena_free(&r.arena);
                return;
            }
            rc = api__fail(&r, ENGRAM_ENOMEM, "out of memory");
        }
    }
    if (rc == 0 && (req->op == ENGRAM__OP__SUBSCRIBE || req->op == ENGRAM__OP__UNSUBSCRIBE)) {
        api__subscribe(self, routing, req, sid, &r);
        rc = r.message[0] ? ENGRAM_ENOMEM : 0;
    } else if (rc == 0) {
        rc = api__dispatch(self, req, scoped ? sid : NULL, &r);
    }
    api__queue_reply(self, routing, req->id, rc, &r);
    api__arena_free(&r.arena);
    engram__request__free_unpacked(req, NULL);
}

/*  Answers a frame that is not a request: an error reply, nothing else. */
static void s_malformed(node_server_t *self, zframe_t *routing, const char *why)
{
    self->stats.malformed++;
    api_reply_t r;
    api__reply_init(&r);
    api__fail(&r, ENGRAM_EDECODE, "%s", why);
    api__queue_reply(self, routing, 0, ENGRAM_EDECODE, &r);
    api__arena_free(&r.arena);
}

/*  The CURVE key a frame came with: the ZAP handler's User-Id, the key's Z85 text. */
static bool s_client_key(zframe_t *payload, uint8_t key[32])
{
    const char *user = zframe_meta(payload, "User-Id");
    return user && strlen(user) == 40 && zmq_z85_decode(key, user) != NULL;
}

static void s_receive(node_server_t *self, zmsg_t *msg)
{
    self->stats.requests++;
    zframe_t *routing = zmsg_pop(msg);
    zframe_t *payload = zmsg_first(msg);
    Engram__Request *req = zmsg_size(msg) == 1 ? engram__request__unpack(NULL, zframe_size(payload),
                                                                         zframe_data(payload))
                                               : NULL;
    uint8_t client_key[32];
    const char *field = NULL;
    if (zmsg_size(msg) != 1) {
        s_malformed(self, routing, "a request is exactly one frame");
    } else if (!req) {
        s_malformed(self, routing, "the frame is not an engram.Request");
    } else if (node_wire_check_strings(&engram__request__descriptor, zframe_data(payload),
                                       zframe_size(payload), &field) != 0) {
        api__refuse_bad_string(self, routing, &req, field); /* a NUL or not UTF-8 */
    } else if (!s_client_key(payload, client_key)) {
        /* cannot happen on a CURVE socket under engramd's ZAP handler; refused all the same */
        api_reply_t r;
        api__reply_init(&r);
        api__fail(&r, ENGRAM_EDENIED, "the connection carries no CURVE key (no ZAP User-Id)");
        api__queue_reply(self, routing, req->id, ENGRAM_EDENIED, &r);
        api__arena_free(&r.arena);
        engram__request__free_unpacked(req, NULL);
    } else {
        api__request(self, routing, req, client_key);
    }
    zmsg_destroy(&msg);
}

/*  Answers the parked GETs whose token is now reached or whose time is up. */
static void s_check_parked(node_server_t *self)
{
    int64_t now = api__now_ms();
    zlist_t *ready = zlist_new();
    for (api_parked_t *p = zlist_first(self->parked); p; p = zlist_next(self->parked)) {
        api_reply_t r;
        api__reply_init(&r);
        int rc = api__token_reached(self, p->request, &r);
        api__arena_free(&r.arena);
        if (rc != 1 || now >= p->deadline_ms)
            zlist_append(ready, p);
    }
    api_parked_t *p;
    while ((p = zlist_pop(ready))) {
        zlist_remove(self->parked, p);
        api_reply_t r;
        api__reply_init(&r);
        int rc = api__token_reached(self, p->request, &r);
        if (rc == 1) {
            api__fail(&r, ENGRAM_ETIMEDOUT, "this node has not seen the token's writes after %u ms",
                      p->request->timeout_ms ? p->request->timeout_ms
                                             : ENGRAM_DEFAULT_AFTER_TIMEOUT_MS);
            api__queue_reply(self, p->routing, p->request->id, ENGRAM_ETIMEDOUT, &r);
            api__arena_free(&r.arena);
            engram__request__free_unpacked(p->request, NULL);
        } else {
            api__arena_free(&r.arena);
            p->request->after.len = 0; /* reached: answer it as the plain request */
            api__request(self, p->routing, p->request, p->client_key);
        }
        free(p);
    }
    zlist_destroy(&ready);
}

/*  Runs the shared writes held for the dot check, in the order they came, once it is done. */
static void s_release_held(node_server_t *self)
{
    if (!node_cluster_dots_checked(self->cluster))
        return;
    api_parked_t *held;
    while ((held = zlist_pop(self->held))) {
        api__request(self, held->routing, held->request, held->client_key);
        free(held);
    }
}

/*  Keeps the imported statements in sys:acl, once the node may issue dots. */
static void s_keep_imported(node_server_t *self)
{
    if (self->cluster && !node_cluster_dots_checked(self->cluster))
        return;
    zframe_t *statement;
    while ((statement = zlist_pop(self->pending_statements))) {
        api_reply_t r;
        api__reply_init(&r);
        Engram__Request req = ENGRAM__REQUEST__INIT;
        req.statement.data = zframe_data(statement);
        req.statement.len = zframe_size(statement);
        int rc = api__write_statement(self, &req, &r);
        if (rc)
            zsys_warning("engramd: cannot keep a statement of acl.init: %s", r.message);
        api__queue_reply(self, NULL, 0, rc, &r);
        api__arena_free(&r.arena);
        zframe_destroy(&statement);
    }
}

/*  One turn: every waiting request, one group commit, then the replies. */
static void s_turn(node_server_t *self)
{
    for (unsigned i = 0; i < self->config.max_batch; i++) {
        zmsg_t *msg = zmsg_recv(self->router);
        if (!msg)
            break;
        s_receive(self, msg);
        if (!self->config.durability_sync)
            api__flush_outbox(self, 0); /* nothing to wait for: answer at once */
    }
    int64_t now = api__now_ms();
    if (self->cluster) {
        node_cluster_receive(self->cluster, self->config.max_batch * 8, (uint64_t)now);
        s_release_held(self);
    }
    s_keep_imported(self);
    if (now >= self->next_purge_ms) {
        uint64_t purged = 0;
        if (node_store_purge(self->store, (uint64_t)now, &purged) == 0)
            self->stats.purged += purged;
        self->next_purge_ms = now + (int64_t)self->config.purge_interval_ms;
    }
    s_check_parked(self);
#ifdef ENGRAM_FAULT_ACK_BEFORE_FSYNC /* deliberate defect for jepsen/: replies before the sync */
    api__flush_outbox(self, 0);
#endif
    int sync_rc = 0;
    if (self->config.durability_sync) {
        bool wrote = false;
        for (api_out_t *out = zlist_first(self->outbox); out; out = zlist_next(self->outbox))
            wrote |= out->wrote;
        sync_rc = node_store_sync(self->store);
        if (wrote && sync_rc == 0)
            self->stats.commits++;
    }
    api__flush_peers(self);
    api__flush_outbox(self, sync_rc);
    if (self->cluster) {
        if (sync_rc == 0)
            node_cluster_send(self->cluster); /* what it announces is durable now */
        api__check_replicating(self);
    }
}

/*  How long the loop may sleep: until the next purge or parked deadline. */
static int s_timeout(node_server_t *self)
{
    int64_t now = api__now_ms(), until = self->next_purge_ms;
    for (api_parked_t *p = zlist_first(self->parked); p; p = zlist_next(self->parked))
        if (p->deadline_ms < until)
            until = p->deadline_ms;
    if (zhash_size(self->peers))
        until = now + 10; /* retry full connections soon */
    if ((zlist_size(self->parked) || zlist_size(self->held)) && until > now + 50)
        until = now + 50; /* a parked token may be reached by another's write */
    for (api_out_t *out = zlist_first(self->replicating); out; out = zlist_next(self->replicating))
        if (out->deadline_ms < until)
            until = out->deadline_ms;
    if (self->cluster) {
        int cluster = node_cluster_timeout(self->cluster, (uint64_t)now);
        if (now + cluster < until)
            until = now + cluster;
    }
    return until <= now ? 0 : (int)(until - now);
}

/*  --- life -------------------------------------------------------------------------- */

int node_server_new(const node_server_config_t *config, const char *endpoint, node_store_t *store,
                    node_acl_t *acl, node_server_t **self_p, char *why, size_t why_len)
{
    *self_p = NULL;
    node_server_t *self = calloc(1, sizeof *self);
    if (!self)
        return ENGRAM_ENOMEM;
    self->config = *config;
    self->store = store;
    self->acl = acl;
    self->pending_statements = zlist_new();
    self->subscribers = zlist_new();
    self->peers = zhash_new();
    self->parked = zlist_new();
    self->held = zlist_new();
    self->outbox = zlist_new();
    self->replicating = zlist_new();
    self->removals = zlist_new();
    engram__stats__init(&self->stats);
    self->stats.durability = config->durability_sync ? "sync" : "async";
    self->started_ms = api__now_ms();
    self->stats.node_id = node_store_node_id(store);
    const node_identity_t *identity = node_store_identity(store);
    uint8_t curve_secret[32];
    bool keyed = node_admission_curve_keys(identity->public_key, identity->secret_key,
                                           self->curve_public, curve_secret) == 0;
    self->router = keyed ? zsock_new(ZMQ_ROUTER) : NULL;
    if (self->router) {
        zsock_set_curve_server(self->router, 1);
        zsock_set_curve_publickey_bin(self->router, self->curve_public);
        zsock_set_curve_secretkey_bin(self->router, curve_secret);
        zsock_set_zap_domain(self->router, NODE_ZAP_API);
        zsock_set_maxmsgsize(self->router, (int64_t)config->max_frame_bytes);
        zsock_set_router_mandatory(self->router, 1);
        zsock_set_rcvtimeo(self->router, 0);
        zsock_set_sndtimeo(self->router, 0);
        zsock_set_linger(self->router, 100);
    }
    sodium_memzero(curve_secret, sizeof curve_secret);
    if (!self->router || zsock_bind(self->router, "%s", endpoint) < 0) {
        snprintf(why, why_len, "cannot bind the agent API to '%s': %s", endpoint,
                 zmq_strerror(zmq_errno()));
        node_server_destroy(&self);
        return ENGRAM_EUNAVAILABLE;
    }
    int rc = api__acl_load(self);
    if (rc) {
        snprintf(why, why_len, "cannot read the access statements (sys:acl): %s",
                 engram_strerror(rc));
        node_server_destroy(&self);
        return rc;
    }
    *self_p = self;
    return 0;
}

void node_server_import(node_server_t *self, const uint8_t *statement, size_t len)
{
    char why[256] = "";
    int rc = node_acl_add(self->acl, statement, len, NULL, why, sizeof why);
    if (rc < 0)
        zsys_warning("engramd: a statement of acl.init was refused: %s", why);
    else if (rc == 0) /* new here: kept in sys:acl once shared writes may go */
        zlist_append(self->pending_statements, zframe_new(statement, len));
}

/*  Writes the public certificate of key to path whole: beside it, then renamed over it. */
static int s_write_key(const uint8_t key[32], uint64_t node_id, const char *path, char *why,
                       size_t why_len)
{
    uint8_t no_secret[32] = {0};
    zcert_t *cert = zcert_new_from(key, no_secret);
    char *tmp = zsys_sprintf("%s.tmp", path);
    int rc = cert && tmp ? 0 : ENGRAM_ENOMEM;
    if (rc == 0) {
        zcert_set_meta(cert, "node", "%016" PRIx64, node_id);
        if (zcert_save_public(cert, tmp) != 0 || rename(tmp, path) != 0) {
            snprintf(why, why_len, "cannot write the API's public key to %s: %s", path,
                     strerror(errno));
            remove(tmp);
            rc = ENGRAM_EIO;
        }
    }
    zstr_free(&tmp);
    zcert_destroy(&cert);
    return rc;
}

int node_server_publish(node_server_t *self, const char *data_dir, char *why, size_t why_len)
{
    assert(self && data_dir && !self->published);
    uint64_t node_id = node_store_node_id(self->store);
    char *path = zsys_sprintf("%s/%s", data_dir, NODE_SERVER_KEY_FILE);
    if (!path)
        return ENGRAM_ENOMEM;
    /* the data directory's copy: written when it does not hold the key yet; a node on a
     * read-only or full volume still serves (the key is the identity's, which it keeps) */
    zcert_t *held = zcert_load(path);
    bool current = held && memcmp(zcert_public_key(held), self->curve_public, 32) == 0;
    zcert_destroy(&held);
    char copy_why[512];
    if (!current && s_write_key(self->curve_public, node_id, path, copy_why, sizeof copy_why))
        zsys_warning("engramd: %s (`engramd --identity` prints it too)", copy_why);
    zstr_free(&path);
    /* the endpoint bound, with a wildcard resolved; "@NAME" is abstract, not a file */
    int rc = 0;
    const char *bound = zsock_endpoint(self->router);
    if (bound && strncmp(bound, "ipc://", 6) == 0 && bound[6] && bound[6] != '@') {
        path = zsys_sprintf("%s.pub", bound + 6);
        rc = path ? s_write_key(self->curve_public, node_id, path, why, why_len) : ENGRAM_ENOMEM;
        if (rc == 0)
            self->published = path;
        else
            zstr_free(&path);
    }
    return rc;
}

void node_server_set_cluster(node_server_t *self, node_cluster_t *cluster)
{
    assert(self && cluster && !self->cluster);
    self->cluster = cluster;
    node_cluster_on_applied(cluster, api__remote_applied, self);
}

int node_server_run(node_server_t *self)
{
    zpoller_t *poller = zpoller_new(self->router, NULL);
    if (poller && self->cluster) {
        zpoller_add(poller, node_cluster_gossip_socket(self->cluster));
        zpoller_add(poller, node_cluster_intro_socket(self->cluster));
    }
    if (!poller)
        return ENGRAM_ENOMEM;
    while (!zsys_interrupted) {
        zpoller_wait(poller, s_timeout(self));
        if (zpoller_terminated(poller))
            break;
        s_turn(self);
    }
    zpoller_destroy(&poller);
    return 0;
}

void node_server_destroy(node_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    node_server_t *self = *self_p;
    api_subscriber_t *sub;
    while (self->subscribers && (sub = zlist_pop(self->subscribers)))
        api__subscriber_free(&sub);
    api_parked_t *p;
    while (self->parked && (p = zlist_pop(self->parked))) {
        zframe_destroy(&p->routing);
        engram__request__free_unpacked(p->request, NULL);
        free(p);
    }
    while (self->held && (p = zlist_pop(self->held))) {
        zframe_destroy(&p->routing);
        engram__request__free_unpacked(p->request, NULL);
        free(p);
    }
    zlist_destroy(&self->held);
    zframe_t *statement;
    while (self->pending_statements && (statement = zlist_pop(self->pending_statements)))
        zframe_destroy(&statement);
    zlist_destroy(&self->pending_statements);
    api_out_t *out;
    while (self->outbox && (out = zlist_pop(self->outbox)))
        api__out_free(&out);
    while (self->replicating && (out = zlist_pop(self->replicating)))
        api__out_free(&out);
    zlist_destroy(&self->replicating);
    api_removal_t *removal;
    while (self->removals && (removal = zlist_pop(self->removals)))
        api__removal_free(removal);
    zlist_destroy(&self->removals);
    if (self->cluster)
        node_cluster_on_applied(self->cluster, NULL, NULL);
    zlist_destroy(&self->subscribers);
    zhash_destroy(&self->peers);
    zlist_destroy(&self->parked);
    zlist_destroy(&self->outbox);
    zsock_destroy(&self->router);
    if (self->published)
        remove(self->published); /* the socket is gone: so is the key clients pin for it */
    zstr_free(&self->published);
    free(self);
    *self_p = NULL;
}
