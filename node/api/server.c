/*  node_server: the agent API loop with group commit (see server.h). */
#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
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
#include "node/common/monitor.h"
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
    case ENGRAM__OP__FORGET:
    case ENGRAM__OP__VOTE:
        return true;
    default:
        return false;
    }
}

bool api__op_reads(Engram__Op op)
{
    switch (op) {
    case ENGRAM__OP__GET:
    case ENGRAM__OP__SET_MEMBERS:
    case ENGRAM__OP__COUNTER_GET:
    case ENGRAM__OP__LOG_RANGE:
    case ENGRAM__OP__LIST:
    case ENGRAM__OP__HISTORY:
    case ENGRAM__OP__SEARCH:
    case ENGRAM__OP__CONTEXT:
        return true;
    default:
        return false;
    }
}

/*  Keeps a shared write waiting for the dot check with its routing and the key it came with;
 *  NULL when out of memory. */
static api_parked_t *s_hold(zlist_t *list, zframe_t *routing, Engram__Request *req,
                            const uint8_t client_key[32], int64_t started_us)
{
    api_parked_t *held = calloc(1, sizeof *held);
    if (!held)
        return NULL;
    held->routing = routing;
    held->request = req;
    held->started_us = started_us;
    memcpy(held->client_key, client_key, sizeof held->client_key);
    zlist_append(list, held);
    return held;
}

/*  --- reads parked for their causal token ------------------------------------------------ */

static void s_waiting_free(api_waiting_t **w_p)
{
    api_waiting_t *w = *w_p;
    zframe_destroy(&w->routing);
    free(w->request);
    api__token_close(&w->token);
    free(w);
    *w_p = NULL;
}

/*  The read as a parked one keeps it: what its answer needs (who, where, which key, prefix,
 *  page, filter; a search's query, scopes, options and embedding), packed; never its value,
 *  metadata or token. Caller owns *buf_p. */
static int s_pack_read(const Engram__Request *req, uint8_t **buf_p, size_t *len_p)
{
    Engram__Request read = ENGRAM__REQUEST__INIT;
    read.schema_major = req->schema_major;
    read.schema_minor = req->schema_minor;
    read.id = req->id;
    read.op = req->op;
    read.agent = req->agent;
    read.user = req->user;
    read.scope = req->scope;
    read.key = req->key;
    read.prefix = req->prefix;
    read.cursor = req->cursor;
    read.limit = req->limit;
    read.filter_json = req->filter_json;
    /* SEARCH and CONTEXT */
    read.query = req->query;
    read.scopes = req->scopes;
    read.n_scopes = req->n_scopes;
    read.top_k = req->top_k;
    read.threshold = req->threshold;
    read.mode = req->mode;
    read.embedding = req->embedding;
    read.explain = req->explain;
    read.half_life_ms = req->half_life_ms;
    read.votes = req->votes;
    read.tokens = req->tokens;
    *len_p = engram__request__get_packed_size(&read);
    if (*len_p > API_PARKED_READ_MAX_BYTES)
        return ENGRAM_ETOOBIG;
    *buf_p = malloc(*len_p ? *len_p : 1);
    if (!*buf_p)
        return ENGRAM_ENOMEM;
    engram__request__pack(&read, *buf_p);
    return 0;
}

/*  Parks a read whose token this node has not reached, taking *routing_p, *token (closed
 *  here either way) and read, the request as s_pack_read kept it; 0, or the refusal in r:
 *  ENGRAM_EBUSY past either cap. */
static int s_park_read(node_server_t *self, api_conn_t *conn, zframe_t **routing_p,
                       const Engram__Request *req, uint8_t *read, size_t read_len,
                       const uint8_t client_key[32], api_token_t *token, api_reply_t *r)
{
    int rc = 0;
    if (!conn)
        rc = api__fail(r, ENGRAM_EUNAVAILABLE,
                       "the connection is gone (or its transport reports no disconnection): "
                       "its read cannot wait");
    else if (conn->parked >= ENGRAM_MAX_PARKED_PER_CONNECTION ||
             zlist_size(self->parked) >= ENGRAM_MAX_PARKED) {
        self->stats.busy_refusals++;
        rc = api__fail(r, ENGRAM_EBUSY,
                       "%zu reads of this connection and %zu in all wait for their causal "
                       "token; the limits are %d and %d: retry later",
                       conn->parked, zlist_size(self->parked), ENGRAM_MAX_PARKED_PER_CONNECTION,
                       ENGRAM_MAX_PARKED);
    }
    if (rc == 0)
        rc = api__token_observe(self, token, r);
    api_waiting_t *w = rc == 0 ? calloc(1, sizeof *w) : NULL;
    if (rc == 0 && !w)
        rc = api__fail(r, ENGRAM_ENOMEM, "out of memory");
    if (rc) {
        free(read);
        api__token_close(token);
        return rc;
    }
    uint32_t timeout = req->timeout_ms ? req->timeout_ms : ENGRAM_DEFAULT_AFTER_TIMEOUT_MS;
    if (timeout > ENGRAM_MAX_AFTER_TIMEOUT_MS)
        timeout = ENGRAM_MAX_AFTER_TIMEOUT_MS;
    w->conn = conn;
    w->routing = *routing_p;
    *routing_p = NULL;
    w->request = read;
    w->request_len = read_len;
    memcpy(w->client_key, client_key, sizeof w->client_key);
    w->token = *token; /* the contexts move */
    token->n = 0;
    w->timeout_ms = timeout;
    w->deadline_ms = api__mono_ms() + timeout;
    w->op = req->op;
    w->started_us = r->started_us;
    zlist_append(self->parked, w);
    conn->parked++;
    self->stats.parked = zlist_size(self->parked);
    if (w->deadline_ms < self->parked_next_ms)
        self->parked_next_ms = w->deadline_ms;
    return 0;
}

void api__drop_parked(node_server_t *self, api_conn_t *conn)
{
    if (!conn->parked)
        return;
    zlist_t *kept = zlist_new();
    api_waiting_t *w;
    while ((w = zlist_pop(self->parked))) {
        if (w->conn == conn)
            s_waiting_free(&w);
        else
            zlist_append(kept, w);
    }
    zlist_destroy(&self->parked);
    self->parked = kept;
    conn->parked = 0;
    self->stats.parked = zlist_size(self->parked);
}

/*  Whether a scope the parked read waits for has changed since the last check. */
static bool s_waits_on_changed(node_server_t *self, const api_waiting_t *w)
{
    for (size_t i = 0; i < w->token.n; i++)
        if (zhashx_lookup(self->changed, w->token.scopes[i].sid))
            return true;
    return false;
}

/*  Answers a parked read: as a plain read once its token is reached, else ENGRAM_ETIMEDOUT. */
static void s_answer_parked(node_server_t *self, api_waiting_t *w)
{
    w->conn->parked--;
    api_reply_t r;
    api__reply_init(&r);
    r.op = w->op;
    r.started_us = w->started_us;
    Engram__Request *req = engram__request__unpack(NULL, w->request_len, w->request);
    if (!req) {
        api__fail(&r, ENGRAM_ENOMEM, "out of memory");
        api__queue_reply(self, w->routing, 0, ENGRAM_ENOMEM, &r);
        w->routing = NULL;
    } else if (!api__token_reached(self, &w->token)) {
        api__fail(&r, ENGRAM_ETIMEDOUT, "this node has not seen the token's writes after %u ms",
                  w->timeout_ms);
        api__queue_reply(self, w->routing, req->id, ENGRAM_ETIMEDOUT, &r);
        w->routing = NULL;
        engram__request__free_unpacked(req, NULL);
    } else {
        api__request(self, w->conn, w->routing, req, w->client_key, w->started_us); /* takes both */
        w->routing = NULL;
    }
    api__arena_free(&r.arena);
    s_waiting_free(&w);
}

/*  Answers the parked reads whose token is now reached or whose time is up. Only reads
 *  waiting on a scope that changed since the last check are compared (their decoded
 *  contexts against the store's), and none when nothing changed and no deadline passed. */
static void s_check_parked(node_server_t *self)
{
    int64_t now = api__mono_ms();
    bool changed = zhashx_size(self->changed) > 0;
    if (zlist_size(self->parked) && (changed || now >= self->parked_next_ms)) {
        zlist_t *kept = zlist_new(), *ready = zlist_new();
        self->parked_next_ms = INT64_MAX;
        api_waiting_t *w;
        while ((w = zlist_pop(self->parked))) {
            if (now >= w->deadline_ms ||
                (changed && s_waits_on_changed(self, w) && api__token_reached(self, &w->token)))
                zlist_append(ready, w);
            else {
                zlist_append(kept, w);
                if (w->deadline_ms < self->parked_next_ms)
                    self->parked_next_ms = w->deadline_ms;
            }
        }
        zlist_destroy(&self->parked);
        self->parked = kept;
        self->stats.parked = zlist_size(self->parked);
        while ((w = zlist_pop(ready)))
            s_answer_parked(self, w);
        zlist_destroy(&ready);
    }
    zhashx_purge(self->changed);
}

/*  --- requests ---------------------------------------------------------------------------- */

/*  Refuses replicas that no cluster could give: more than this node and its members that
 *  have not left, or more than one for a write to a private scope (sid "@..."), which never
 *  leaves its node; and (ENGRAM_EBUSY) a write that would wait for replicas while
 *  ENGRAM_MAX_REPLICA_WAITS do. */
static int s_check_replicas(node_server_t *self, const Engram__Request *req, const char *sid,
                            api_reply_t *r)
{
    if (req->replicas <= 1 || !s_op_writes(req->op))
        return 0;
    if (sid && sid[0] == '@')
        return api__fail(r, ENGRAM_EINVAL,
                         "replicas=%u, but a private scope stays on its agent's node: only "
                         "shared scopes are replicated",
                         req->replicas);
    if (!self->cluster)
        return 0;
    if (zlist_size(self->replicating) >= ENGRAM_MAX_REPLICA_WAITS) {
        self->stats.busy_refusals++;
        return api__fail(r, ENGRAM_EBUSY,
                         "%zu writes wait for their replicas, the most a node keeps: retry "
                         "later, or ask fewer replicas",
                         zlist_size(self->replicating));
    }
    unsigned could = node_cluster_possible_holders(self->cluster);
    if (req->replicas > could)
        return api__fail(r, ENGRAM_EINVAL,
                         "replicas=%u, but at most %u nodes could ever hold the write (this "
                         "node and the members that have not left)",
                         req->replicas, could);
    return 0;
}

/*  A read with `after`: validated whole, its token decoded once, then parked until the node
 *  has seen the token (taking *routing_p; 1) or answered now (0, after observing the token's
 *  clock), or refused (an error in r). */
static int s_read_after(node_server_t *self, api_conn_t *conn, zframe_t **routing_p,
                        const Engram__Request *req, const uint8_t client_key[32], api_reply_t *r)
{
    int rc = api__check_input(self, req, r);
    /* whether it waits or not: a read with a token too big to keep when waiting is refused
     * either way, so that the answer never depends on how far replication got */
    uint8_t *packed = NULL;
    size_t packed_len = 0;
    if (rc == 0 && (rc = s_pack_read(req, &packed, &packed_len)) != 0)
        rc = api__fail(r, rc,
                       "a read with a causal token keeps at most its names, key, prefix, cursor, "
                       "filter and a search's query, options and embedding, %zu bytes here; the "
                       "limit is %d",
                       packed_len, API_PARKED_READ_MAX_BYTES);
    api_token_t token;
    if (rc == 0)
        rc = api__token_open(self, req, r, &token);
    if (rc) {
        free(packed);
        return rc;
    }
    if (!api__token_reached(self, &token)) {
        rc = s_park_read(self, conn, routing_p, req, packed, packed_len, client_key, &token, r);
        return rc ? rc : 1;
    }
    free(packed);
    rc = api__token_observe(self, &token, r);
    api__token_close(&token);
    return rc;
}

void api__request(node_server_t *self, api_conn_t *conn, zframe_t *routing, Engram__Request *req,
                  const uint8_t client_key[32], int64_t started_us)
{
    api_reply_t r;
    api__reply_init(&r);
    if (started_us)
        r.started_us = started_us;
    r.client_key = client_key;
    r.op = req->op;
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
    /* SEARCH and CONTEXT resolve and authorize each scope they search themselves (search.c) */
    bool scoped = req->op != ENGRAM__OP__STATS && req->op != ENGRAM__OP__SEARCH &&
                  req->op != ENGRAM__OP__CONTEXT && !api__admin_op(req->op);
    if (rc == 0 && scoped && (rc = api__resolve(req, sid, &r)) == 0) {
        r.sid = sid;
        r.scope = req->scope;
        rc = api__authorize(self, req, sid, &r);
    }
    if (rc == 0)
        rc = s_check_replicas(self, req, scoped ? sid : NULL, &r);
    r.replicas = req->replicas;
    r.timeout_ms = req->timeout_ms;
    bool shared_write = (scoped && sid[0] != '@' && s_op_writes(req->op)) ||
                        req->op == ENGRAM__OP__ACL_SUBMIT; /* statements go to sys:acl */
    if (rc == 0 && shared_write && self->cluster && !node_cluster_dots_checked(self->cluster)) {
        /* the node may not issue dots yet (node_cluster_dots_checked): held, in order */
        if (s_hold(self->held, routing, req, client_key, r.started_us)) {
            api__arena_free(&r.arena);
            return;
        }
        rc = api__fail(&r, ENGRAM_ENOMEM, "out of memory");
    }
    if (rc == 0 && api__op_reads(req->op) && req->after.len) {
        rc = s_read_after(self, conn, &routing, req, client_key, &r);
        if (rc == 1) { /* parked: it keeps what it needs of req */
            api__arena_free(&r.arena);
            engram__request__free_unpacked(req, NULL);
            return;
        }
    } else if (rc == 0 && req->after.len) { /* nothing waits for it, but its clock counts */
        api_token_t token;
        rc = api__token_open(self, req, &r, &token);
        if (rc == 0) {
            rc = api__token_observe(self, &token, &r);
            api__token_close(&token);
        }
    }
    if (rc == 0 && (req->op == ENGRAM__OP__SUBSCRIBE || req->op == ENGRAM__OP__UNSUBSCRIBE))
        rc = api__subscribe(self, conn, req, sid, &r);
    else if (rc == 0)
        rc = api__dispatch(self, req, scoped ? sid : NULL, &r);
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

/*  --- connections ------------------------------------------------------------------------- */

static void s_conn_free(void *item)
{
    api_conn_t *conn = item;
    if (conn->pipe)
        api__gauge_release(conn->pipe);
    zframe_destroy(&conn->routing);
    zstr_free(&conn->id);
    zhashx_destroy(&conn->subscriptions);
    free(conn);
}

/*  Ends a connection libzmq reported gone (or whose fd another connection now has): its
 *  parked reads, subscriptions, queue and replica waits go, then the record. */
static void s_conn_end(node_server_t *self, api_conn_t *conn)
{
    api__drop_parked(self, conn);
    api__forget_delivery(self, conn);
    if (conn->id && zhash_lookup(self->routes, conn->id) == conn)
        zhash_delete(self->routes, conn->id);
    char fd[16];
    snprintf(fd, sizeof fd, "%d", conn->fd);
    zhash_delete(self->conns, fd); /* frees conn */
    self->stats.connections = zhash_size(self->conns);
}

static void s_conn_open(node_server_t *self, int fd)
{
    char key[16];
    snprintf(key, sizeof key, "%d", fd);
    api_conn_t *stale = zhash_lookup(self->conns, key);
    if (stale) /* its DISCONNECTED was lost: the fd is another connection's now */
        s_conn_end(self, stale);
    api_conn_t *conn = calloc(1, sizeof *conn);
    if (!conn)
        return;
    conn->fd = fd;
    conn->pipe = api__gauge_new();
    conn->subscriptions = zhashx_new();
    if (conn->subscriptions)
        zhashx_set_destructor(conn->subscriptions, api__subscriber_destroy);
    if (!conn->pipe || !conn->subscriptions || zhash_insert(self->conns, key, conn) != 0) {
        s_conn_free(conn);
        return;
    }
    zhash_freefn(self->conns, key, s_conn_free);
    self->stats.connections = zhash_size(self->conns);
}

/*  Applies the socket monitor's events, in order: a connection opens with ACCEPTED and ends
 *  with DISCONNECTED, each naming its fd. */
static void s_drain_monitor(node_server_t *self)
{
    uint16_t event;
    uint32_t fd;
    while (node_monitor_next(self->monitor, &event, &fd)) {
        char key[16];
        snprintf(key, sizeof key, "%d", (int)fd);
        api_conn_t *conn = zhash_lookup(self->conns, key);
        if (event == ZMQ_EVENT_ACCEPTED)
            s_conn_open(self, (int)fd);
        else if (event == ZMQ_EVENT_DISCONNECTED && conn)
            s_conn_end(self, conn);
    }
}

/*  The connection a request came on (its fd, ZMQ_SRCFD), given its routing id on the first
 *  one; NULL when libzmq has reported it gone already. */
static api_conn_t *s_conn_of(node_server_t *self, int fd, zframe_t *routing)
{
    char key[16];
    snprintf(key, sizeof key, "%d", fd);
    api_conn_t *conn = fd >= 0 ? zhash_lookup(self->conns, key) : NULL;
    if (conn && conn->routing && !zframe_eq(conn->routing, routing)) {
        s_conn_end(self, conn); /* events were lost: the fd holds another connection now */
        s_conn_open(self, fd);
        conn = zhash_lookup(self->conns, key);
    }
    if (conn && !conn->routing) {
        conn->routing = zframe_dup(routing);
        conn->id = zframe_strhex(routing);
        if (conn->id)
            zhash_update(self->routes, conn->id, conn);
    }
    return conn;
}

/*  --- receiving ------------------------------------------------------------------------ */

/*  Whether the connection was cut (its replies past the byte budget): then its requests are
 *  not answered. */
static bool s_cut(node_server_t *self, const api_conn_t *conn, zframe_t *routing)
{
    if (conn && conn->cut)
        return true;
    if (!zhash_size(self->peers))
        return false;
    char *id = conn && conn->id ? NULL : zframe_strhex(routing);
    const char *key = id ? id : conn && conn->id ? conn->id : NULL;
    api_peer_t *peer = key ? zhash_lookup(self->peers, key) : NULL;
    free(id);
    return peer && peer->cut;
}

/*  Handles one message: [routing][payload] (more parts are malformed); user_id is the ZAP
 *  User-Id of its connection, NULL if none. */
static void s_receive(node_server_t *self, api_conn_t *conn, zframe_t *routing, size_t parts,
                      const void *data, size_t len, const char *user_id)
{
    self->stats.requests++;
    if (s_cut(self, conn, routing)) {
        zframe_destroy(&routing);
        return;
    }
    Engram__Request *req = parts == 1 ? engram__request__unpack(NULL, len, data) : NULL;
    uint8_t client_key[32];
    const char *field = NULL;
    if (parts != 1) {
        s_malformed(self, routing, "a request is exactly one frame");
    } else if (!req) {
        s_malformed(self, routing, "the frame is not an engram.Request");
    } else if (node_wire_check_strings(&engram__request__descriptor, data, len, &field) != 0) {
        api__refuse_bad_string(self, routing, &req, field); /* a NUL or not UTF-8 */
    } else if (!user_id || strlen(user_id) != 40 || !zmq_z85_decode(client_key, user_id)) {
        /* cannot happen on a CURVE socket under engramd's ZAP handler; refused all the same */
        api_reply_t r;
        api__reply_init(&r);
        api__fail(&r, ENGRAM_EDENIED, "the connection carries no CURVE key (no ZAP User-Id)");
        api__queue_reply(self, routing, req->id, ENGRAM_EDENIED, &r);
        api__arena_free(&r.arena);
        engram__request__free_unpacked(req, NULL);
    } else {
        api__request(self, conn, routing, req, client_key, 0);
    }
}

/*  Reads one message from the router and handles it; false when none waits. Each message is
 *  read with the fd it came on (ZMQ_SRCFD of its payload: the routing id part, which the
 *  ROUTER makes, carries none) and the monitor's events are applied after it is read and
 *  before it is handled: libzmq queued the ACCEPTED of its connection, and the DISCONNECTED
 *  of an earlier connection that had the same fd, before the message, so an fd libzmq
 *  reuses is never taken for the connection it had before. A message whose connection was
 *  reported gone in between gets no connection (nothing it asks is kept). */
static bool s_receive_one(node_server_t *self)
{
    void *router = zsock_resolve(self->router);
    zmq_msg_t head, payload;
    zmq_msg_init(&head);
    if (zmq_msg_recv(&head, router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&head);
        return false;
    }
    zmq_msg_init(&payload);
    size_t parts = 0;
    bool more = zmq_msg_more(&head);
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            break;
        }
        more = zmq_msg_more(&part);
        if (parts++ == 0)
            zmq_msg_move(&payload, &part);
        zmq_msg_close(&part);
    }
    int fd = zmq_msg_get(parts ? &payload : &head, ZMQ_SRCFD);
    s_drain_monitor(self);
    zframe_t *routing = zframe_new(zmq_msg_data(&head), zmq_msg_size(&head));
    if (routing)
        s_receive(self, s_conn_of(self, fd, routing), routing, parts, zmq_msg_data(&payload),
                  zmq_msg_size(&payload), parts ? zmq_msg_gets(&payload, "User-Id") : NULL);
    zmq_msg_close(&payload);
    zmq_msg_close(&head);
    return true;
}

/*  Runs the shared writes held for the dot check, in the order they came, once it is done. */
static void s_release_held(node_server_t *self)
{
    if (!node_cluster_dots_checked(self->cluster))
        return;
    api_parked_t *held;
    while ((held = zlist_pop(self->held))) {
        api__request(self, NULL, held->routing, held->request, held->client_key, held->started_us);
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
    s_drain_monitor(self);
    for (unsigned i = 0; i < self->config.max_batch; i++) {
        if (!s_receive_one(self))
            break;
    }
    if (!self->config.durability_sync) { /* the batch's replies go together, once in the WAL */
#ifdef ENGRAM_FAULT_ASYNC_REPLY_BEFORE_WRITE_OUT /* deliberate defect for jepsen/ */
        api__flush_outbox(self, 0);
#endif
        api__flush_outbox(self, node_store_write_out(self->store));
    }
    int64_t now = api__now_ms();
    if (self->cluster) {
        /* as many gossip messages as requests at most: a replica behind its peers applies
         * a backlog over several turns, each sending the events and replies of what it
         * applied, rather than all of it before any (README, "Measured", "A replica's
         * backlog a turn at a time") */
        unsigned gossip_read =
            node_cluster_receive(self->cluster, self->config.max_batch, (uint64_t)now);
        if (gossip_read)
            api__observe_count(&self->observed.gossip_reads, gossip_read);
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
    size_t wrote = 0;       /* acknowledgements, not FORGET's events */
    bool wrote_any = false; /* any write of this turn's requests (items with `wrote`) */
    for (api_out_t *out = self->config.durability_sync ? zlist_first(self->outbox) : NULL; out;
         out = zlist_next(self->outbox)) {
        wrote += out->wrote && out->routing;
        wrote_any |= out->wrote;
    }
#ifdef ENGRAM_FAULT_ACK_BEFORE_FSYNC /* deliberate defect for jepsen/: replies before the sync */
    api__flush_outbox(self, 0);
#endif
    int sync_rc = 0;
    /* decided before the sync: a turn whose messages wait sends no data (cluster.h) */
    bool hold = self->cluster && node_cluster_hold(self->cluster);
    bool synced = !self->config.durability_sync; /* under async: once written out, below */
    if (self->config.durability_sync) {
        /* deltas applied from peers alone wait for the turn that sends data (server.h) */
        if (wrote_any || (self->cluster && !hold && node_cluster_has_data(self->cluster))) {
            api__publish_remote(self); /* a replica's turn: its peers' events go first */
            sync_rc = node_store_sync(self->store);
            synced = true;
        }
        if (wrote && sync_rc == 0) {
            self->stats.commits++;
            api__observe_count(&self->observed.commits, wrote);
        }
    }
#ifndef ENGRAM_FAULT_ACK_BEFORE_FSYNC
    /* what the turn wrote and did not sync is in the WAL's file before anything about it
     * leaves: a reply, an event, a delta (server.h) */
    if (sync_rc == 0)
        sync_rc = node_store_write_out(self->store);
#endif
    api__flush_peers(self);
    api__flush_outbox(self, sync_rc);
    if (self->cluster) {
        /* data only once it is durable */
        node_cluster_send(self->cluster, sync_rc == 0, synced && sync_rc == 0);
        api__check_replicating(self);
    }
    api__observe_tick(self, now);
    if (self->observed.socket)
        api__observe_answer(self);
}

/*  How long the loop may sleep: until the next purge, parked deadline or replica deadline. */
static int s_timeout(node_server_t *self)
{
    int64_t now = api__now_ms(), until = self->next_purge_ms;
    if (self->observed.next_sample_ms < until)
        until = self->observed.next_sample_ms;
    int64_t to_wall = now - api__mono_ms(); /* deadlines are monotonic: moved onto wall time */
    if (zlist_size(self->parked) && self->parked_next_ms + to_wall < until)
        until = self->parked_next_ms + to_wall; /* a token reached wakes the loop */
    if (zhash_size(self->peers))
        until = now + 10; /* retry full connections soon */
    if (zlist_size(self->held) && until > now + 50)
        until = now + 50; /* the dot check ends */
    for (api_out_t *out = zlist_first(self->replicating); out; out = zlist_next(self->replicating))
        if (out->deadline_ms + to_wall < until)
            until = out->deadline_ms + to_wall;
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
    busy_poll_init(&self->busy_poll, config->busy_poll_us);
    self->store = store;
    self->acl = acl;
    self->pending_statements = zlist_new();
    self->conns = zhash_new();
    self->routes = zhash_new();
    self->subscribers = zhash_new();
    self->peers = zhash_new();
    self->parked = zlist_new();
    self->parked_next_ms = INT64_MAX;
    self->changed = zhashx_new();
    self->held = zlist_new();
    self->outbox = zlist_new();
    self->replicating = zlist_new();
    self->removals = zlist_new();
    self->unrecorded_pipe = api__gauge_new();
    if (!self->unrecorded_pipe) {
        snprintf(why, why_len, "out of memory");
        node_server_destroy(&self);
        return ENGRAM_ENOMEM;
    }
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
        zsock_set_sndhwm(self->router, API_PIPE_OUT_HWM);
        zsock_set_rcvhwm(self->router, API_PIPE_IN_HWM);
    }
    sodium_memzero(curve_secret, sizeof curve_secret);
    /* before the bind, so that every connection's ACCEPTED is seen */
    if (self->router && !(self->monitor = node_monitor_start(
                              self->router, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED))) {
        snprintf(why, why_len, "cannot monitor the agent API's connections: %s",
                 zmq_strerror(zmq_errno()));
        node_server_destroy(&self);
        return ENGRAM_EUNAVAILABLE;
    }
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

int node_server_observe(node_server_t *self, const char *endpoint, const char *page_url)
{
    assert(self && endpoint && page_url && !self->observed.socket);
    self->observed.socket = zsock_new(ZMQ_PAIR);
    self->observed.page_url = strdup(page_url);
    if (!self->observed.socket || !self->observed.page_url) {
        zsock_destroy(&self->observed.socket);
        api__observe_fini(self);
        return ENGRAM_ENOMEM;
    }
    zsock_set_sndtimeo(self->observed.socket, 0); /* the loop never waits: an answer the
                                                      listener has no room for is dropped */
    if (zsock_connect(self->observed.socket, "%s", endpoint) != 0) {
        zsock_destroy(&self->observed.socket);
        api__observe_fini(self);
        return ENGRAM_EINVAL;
    }
    return 0;
}

/*  Waits for work on poller up to timeout_ms, as zpoller_wait, first looking for it while the
 *  busy-poll window is open (busy_poll.h), never past the timeout; work already waiting ends
 *  it at once and is no idle time. */
static void s_idle(node_server_t *self, zpoller_t *poller, int timeout_ms)
{
    if (zpoller_wait(poller, 0) || zpoller_terminated(poller))
        return;
    busy_poll_t *look = &self->busy_poll;
    int64_t idle_from = zclock_usecs(), now = idle_from;
    int64_t deadline = idle_from + (int64_t)timeout_ms * 1000;
    int64_t look_until =
        idle_from + look->window_us < deadline ? idle_from + look->window_us : deadline;
    bool caught = false, woken = false;
    while (!caught && now < look_until && !zpoller_terminated(poller)) {
        /* yielding: on a CPU another thread waits for (the client, libzmq's I/O thread),
         * the look would otherwise hold back the very work it waits for */
        sched_yield();
        caught = zpoller_wait(poller, 0) != NULL;
        now = zclock_usecs();
    }
    int64_t looked_us = now - idle_from;
    if (!caught && now < deadline && !zpoller_terminated(poller))
        woken = zpoller_wait(poller, (int)((deadline - now + 999) / 1000)) != NULL;
    if (zpoller_terminated(poller))
        return;
    busy_poll_idled(look, (uint64_t)looked_us, (uint64_t)(zclock_usecs() - idle_from),
                    caught  ? BUSY_POLL_CAUGHT
                    : woken ? BUSY_POLL_WOKEN
                            : BUSY_POLL_TIMED_OUT);
}

int node_server_run(node_server_t *self)
{
    zpoller_t *poller = zpoller_new(self->router, self->monitor, NULL);
    if (poller && self->cluster) {
        zpoller_add(poller, node_cluster_gossip_socket(self->cluster));
        zpoller_add(poller, node_cluster_intro_socket(self->cluster));
    }
    if (poller && self->observed.socket)
        zpoller_add(poller, self->observed.socket);
    if (!poller)
        return ENGRAM_ENOMEM;
    while (!zsys_interrupted) {
        int timeout_ms = s_timeout(self);
        if (self->busy_poll.max_us)
            s_idle(self, poller, timeout_ms);
        else
            zpoller_wait(poller, timeout_ms);
        if (zpoller_terminated(poller))
            break;
        s_turn(self);
    }
    /* what the last turns held is queued before the node stops, once durable (cluster.h) */
    if (self->cluster && node_cluster_has_data(self->cluster)) {
        bool durable = node_store_sync(self->store) == 0;
        node_cluster_send(self->cluster, durable, durable);
    }
    zpoller_destroy(&poller);
    return 0;
}

void node_server_destroy(node_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    node_server_t *self = *self_p;
    api_conn_t *conn;
    while (self->conns && (conn = zhash_first(self->conns)))
        s_conn_end(self, conn); /* its subscriptions and parked reads */
    zhash_destroy(&self->conns);
    zhash_destroy(&self->routes);
    zhash_destroy(&self->subscribers);
    zhashx_destroy(&self->changed);
    api_waiting_t *w;
    while (self->parked && (w = zlist_pop(self->parked)))
        s_waiting_free(&w); /* none are left: each was its connection's */
    api_parked_t *p;
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
    crdt_ctx_destroy(&self->held_before);
    if (self->cluster)
        node_cluster_on_applied(self->cluster, NULL, NULL);
    zhash_destroy(&self->peers);
    zlist_destroy(&self->parked);
    zlist_destroy(&self->outbox);
    node_monitor_stop(self->router, &self->monitor);
    zsock_destroy(&self->router);
    if (self->unrecorded_pipe)
        api__gauge_release(self->unrecorded_pipe);
    zsock_destroy(&self->observed.socket);
    api__observe_fini(self);
    if (self->published)
        remove(self->published); /* the socket is gone: so is the key clients pin for it */
    zstr_free(&self->published);
    free(self);
    *self_p = NULL;
}
