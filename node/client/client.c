/*  libengram: the client side of the agent API (include/engram/engram.h, proto/api.proto).
 *
 *  A connection is one czmq DEALER socket connected to the node's ROUTER. A call packs one
 *  Request with a fresh id (a per-connection counter from 1), sends it as one frame and reads
 *  frames until the Reply carrying that id arrives or the call's time is up. Frames are
 *  sorted as they arrive:
 *    - a Reply for a subscription this connection holds (its id is the SUBSCRIBE request's)
 *      that carries an Event, or an error code, is queued for engram_next_event; an error
 *      ends the subscription (the node gives up on a subscriber that does not keep up);
 *    - the Reply with the awaited id is the answer;
 *    - anything else is dropped: a late reply to a call that already gave up with
 *      ENGRAM_EUNAVAILABLE, or a frame that is not one Reply.
 *  Ids are never reused on a connection, so a late reply can never be taken for the answer
 *  to a later call. A batch (engram_batch_t) is the same with several requests in flight:
 *  packed as they are queued, sent in order with at most ENGRAM_BATCH_WINDOW awaiting a reply,
 *  each reply matched to its request by id; its time runs from the last reply that came.
 *
 *  The socket is ZMQ_IMMEDIATE: a request is only queued on a live connection, so a call
 *  made while no node listens fails after its timeout without leaving a stale request behind
 *  to be executed whenever a node comes up. A request that reached the node before the call
 *  gave up may still be executed; the caller cannot tell.
 *
 *  Lost connections: the socket's monitor (node/common/monitor.h) reports each connection's
 *  handshake and its end. When a connection that was up ends (the node stopped or restarted),
 *  nothing sent on it will be answered: the call waiting fails at once with
 *  ENGRAM_EUNAVAILABLE ("whether it was done is unknown"), and every subscription ends with
 *  ENGRAM_EUNAVAILABLE, since a restarted node holds none of them and events of the time
 *  between are missed (and so may be some the connection brought and no call read: libzmq
 *  drops what it had not taken in yet with it). libzmq connects again by itself; the next
 *  call goes on the new connection. Reports are read while a call or engram_next_event waits
 *  (s_pump), and before a SUBSCRIBE is sent, so that an end reported late never ends the
 *  subscription it makes.
 *  A node that hangs without closing its connections (stopped, or its loop blocked) is found
 *  by a probe: while engram_next_event waits and nothing has come from the node for the
 *  connection's call timeout (S_PROBE_MIN_MS at least), a STATS request goes (s_probe); when
 *  nothing at all comes within as long after it, every subscription ends with
 *  ENGRAM_EUNAVAILABLE ("did not answer") and the socket connects anew, so a program waiting
 *  for events is told within twice that. Any frame is an answer: an event, a late reply, the
 *  probe's reply, even a refusal; so is one waiting unread on the socket. A call needs no
 *  probe: its own timeout ends it. ZMTP heartbeats are not used for this:
 *  libzmq 4.3.4 aborts the process when a connection whose reading it stopped (a full pipe: a
 *  reader behind) ends under heartbeats (zeromq/libzmq#3937), and reading without a
 *  high-water mark would let a reader that is behind hold unbounded memory, where now the
 *  node's backlog ends its subscriptions (tests/node/client/client_test.c,
 *  test_a_loss_with_events_unread_is_told).
 *
 *  Keys: the socket is a CURVE client. engram_connect finds the agent's key pair in
 *  $ENGRAM_HOME/agents/AGENT.cert_secret and the node's public key in ENGRAM_SERVER_KEY or, for
 *  ipc://PATH, in the certificate the node publishes at PATH.pub (both zcert files, read as
 *  zconfig text). The socket connects only once all three keys are known: until then each call
 *  looks for what is missing again and, not finding it, fails with ENGRAM_EDENIED, saying
 *  which file is missing and what makes it; or with ENGRAM_EUNAVAILABLE when PATH.pub does not
 *  exist, since engramd publishes it while it serves PATH. So a client may start before its
 *  node, and it never talks to a node without having pinned its key: with another key the
 *  CURVE handshake fails, the connection never comes up and calls end with
 *  ENGRAM_EUNAVAILABLE.
 *
 *  Causal tokens travel as the bytes of an encoded Token; callers see them as base64url
 *  without padding (libsodium), so a token can be printed, passed on a command line and given
 *  back as `after`. The library never looks inside a token. engram_set_after keeps one (decoded)
 *  that every following read carries, with its timeout; a read that carries a token waits
 *  that much longer for its reply, since the node may hold it until it has caught up.
 *
 *  Paged reads: engram_set_members_page, engram_log_page and engram_history_page ask for one
 *  page (Request.cursor and limit); engram_set_members, engram_log_range and engram_history
 *  ask page after page, each after the previous page's next_cursor, and return the items of
 *  them all with the last page's token, in the largest pages a node serves (ENGRAM_MAX_PAGE),
 *  so an object of up to that many items is read in one request, as one snapshot. A larger one
 *  is not: a write between two pages may be seen by the later one, and a remote log entry
 *  stamped before the cursor and arriving between two pages is missed by that read. A node
 *  that names the cursor it was given again is an error (ENGRAM_EIO), never a loop.
 *
 *  Ownership: an engram_t owns its socket and its monitor, the queued subscription Replies
 *  (protobuf-c unpacked messages, freed with engram__reply__free_unpacked) and the last
 *  error message. Results and events are deep copies the caller owns; nothing in them points
 *  into protobuf-c memory. One thread at a time may use an engram_t (ZeroMQ sockets are not
 *  thread-safe).
 *
 *  czmq starts once for the process, at the first connection, under pthread_once: its start
 *  is not safe from two threads at once, and connections made by several threads at once
 *  would race in it (an assertion aborts the process).
 *
 *  Signals: the library installs no signal handler (zsys_handler_set(NULL)). A signal that
 *  interrupts the wait of a call is ignored and the wait resumes until the call's deadline;
 *  one that interrupts engram_next_event ends it early with ENGRAM_ETIMEDOUT, so that a
 *  program waiting for events can check its own flags.
 *
 *  Known limit: a request larger than ENGRAM_DEFAULT_MAX_FRAME_BYTES is refused here with
 *  ENGRAM_ETOOBIG, because the node's libzmq would drop it unseen.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>
#include <sodium.h>

#include "crdt/array.h"
#include "engram/engram.h"
#include "node/common/monitor.h"
#include "proto/api.pb-c.h"

#define S_TOKEN_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING
/*  A deadline that never comes: engram_next_event(self, -1, ...). */
#define S_FOREVER INT64_MAX
/*  How long a wait polls the socket alone before it polls the monitor too (s_pump). */
#define S_SOCKET_ALONE_MS 100
/*  The least silence before a probe, and the least wait for its answer (s_probe): a short call
 *  timeout does not end subscriptions at every stall of the node. */
#define S_PROBE_MIN_MS 1000
/*  s_pump's word for a wait a signal cut short (engram_next_event then ends); no ENGRAM_E*
 *  code, nor a batch's pending mark. */
#define S_INTERRUPTED 1000

/*  A subscription: the id of its SUBSCRIBE request, which its events carry, and its scope. */
typedef struct {
    uint64_t id;
    char *scope; /* owned */
} s_subscription_t;

struct engram {
    zsock_t *sock;    /* DEALER, connected to the node's agent API once keyed */
    zsock_t *monitor; /* PAIR: sock's handshakes and disconnections (node_monitor) */
    bool up;          /* a connection's handshake was reported and not its end */
    char *endpoint;   /* where sock connects; for error messages */
    bool keyed;       /* sock has its CURVE keys and is connected */
    bool key_given;   /* engram_connect_keys without the node's key: the client's are these */
    uint8_t given_public[32];
    uint8_t given_secret[32];
    char *key_path;    /* the agent's AGENT.cert_secret, until keyed */
    char *server_path; /* PATH.pub of an ipc://PATH endpoint without ENGRAM_SERVER_KEY */
    char *server_env;  /* ENGRAM_SERVER_KEY as it was at connect, or NULL */
    char *server_from; /* where the pinned server key came from, for error messages */
    char *agent;       /* Request.agent of every call */
    char *user;        /* Request.user of every call */
    char **sources;    /* Request.sources of every write (engram_set_sources), owned */
    size_t nsources;
    ProtobufCBinaryData after; /* Request.after of every read (engram_set_after), owned */
    uint32_t after_timeout_ms; /* Request.timeout_ms with it */
    int timeout_ms;            /* how long a call waits for its reply */
    uint64_t next_id;          /* id of the next request */
    s_subscription_t *subs;    /* those the node acknowledged and did not end, owned */
    size_t nsubs;
    zlist_t *events;  /* queued subscription Replies (Engram__Reply *), oldest first */
    char *error;      /* the node's (or our) message for the last call; NULL: none */
    int64_t heard_ms; /* zclock_mono when the last frame came from the node (or sock was made) */
    int64_t probe_ms; /* zclock_mono when the unanswered probe went (s_probe); 0: none */
};

static const Engram__Item s_empty_item = ENGRAM__ITEM__INIT;

/*  protobuf-c's string fields are `char *`; packing only reads them. */
static char *s_str(const char *s)
{
    return (char *)(s ? s : "");
}

static char *s_strdup(const char *s)
{
    return strdup(s ? s : "");
}

static void s_clear_error(engram_t *self)
{
    zstr_free(&self->error);
}

/*  Keeps a message for engram_last_error and returns code. */
static int s_fail(engram_t *self, int code, const char *format, ...)
{
    s_clear_error(self);
    va_list args;
    va_start(args, format);
    self->error = zsys_vprintf(format, args);
    va_end(args);
    return code;
}

/*  Milliseconds until deadline for zmq_poll: -1 for S_FOREVER, else 0 or more. */
static int s_remaining(int64_t deadline)
{
    if (deadline == S_FOREVER)
        return -1;
    int64_t left = deadline - zclock_mono();
    if (left < 0)
        return 0;
    return left > INT_MAX ? INT_MAX : (int)left;
}

static int64_t s_deadline(int64_t wait_ms)
{
    return zclock_mono() + wait_ms;
}

static bool s_subscribed(const engram_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->nsubs; i++)
        if (self->subs[i].id == id)
            return true;
    return false;
}

static void s_unsubscribed(engram_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->nsubs; i++)
        if (self->subs[i].id == id) {
            free(self->subs[i].scope);
            self->subs[i] = self->subs[--self->nsubs];
            return;
        }
}

/*  ---------------------------------------------------------------------------------------
 *  Tokens: Token bytes <-> base64url without padding.
 */

/*  Caller owns return value and must free it; NULL when out of memory. */
static char *s_token_encode(const ProtobufCBinaryData *token)
{
    size_t size = sodium_base64_ENCODED_LEN(token->len, S_TOKEN_VARIANT);
    char *b64 = malloc(size);
    if (!b64)
        return NULL;
    if (token->len == 0)
        b64[0] = '\0';
    else
        sodium_bin2base64(b64, size, token->data, token->len, S_TOKEN_VARIANT);
    return b64;
}

/*  Decodes a printable token into out (out->data is the caller's to free; NULL and 0 for a
 *  NULL or empty token). ENGRAM_EINVAL if it is not base64url. */
static int s_token_decode(engram_t *self, const char *after, ProtobufCBinaryData *out)
{
    out->data = NULL;
    out->len = 0;
    if (!after || !*after)
        return 0;
    size_t b64_len = strlen(after);
    size_t max = b64_len / 4 * 3 + 3;
    uint8_t *bin = malloc(max);
    if (!bin)
        return s_fail(self, ENGRAM_ENOMEM, "decoding the token");
    size_t bin_len = 0;
    if (sodium_base642bin(bin, max, after, b64_len, NULL, &bin_len, NULL, S_TOKEN_VARIANT) != 0) {
        free(bin);
        return s_fail(self, ENGRAM_EINVAL, "the token is not base64url");
    }
    out->data = bin;
    out->len = bin_len;
    return 0;
}

/*  ---------------------------------------------------------------------------------------
 *  Replies -> owned results.
 */

static void s_strv_free(char **strv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(strv[i]);
    free(strv);
}

/*  Caller owns return value (n strings) and frees it with s_strv_free; NULL when out of
 *  memory. */
static char **s_strv_dup(char *const *src, size_t n)
{
    char **strv = calloc(n + 1, sizeof *strv);
    if (!strv)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(strv[i] = s_strdup(src[i]))) {
            s_strv_free(strv, n);
            return NULL;
        }
    return strv;
}

static void s_item_fini(engram_item_t *item)
{
    free(item->key);
    free(item->type);
    free(item->value);
    free(item->meta_json);
    free(item->author);
    free(item->user);
    if (item->agents)
        s_strv_free(item->agents, item->nagents);
    if (item->resources)
        s_strv_free(item->resources, item->nresources);
    free(item->op);
    free(item->scope);
    free(item->explain_json);
    memset(item, 0, sizeof *item);
}

/*  Fills dst with a deep copy of src (NULL: an empty item). On ENGRAM_ENOMEM dst is left
 *  empty. */
static int s_item_init(engram_item_t *dst, const Engram__Item *src)
{
    if (!src)
        src = &s_empty_item;
    memset(dst, 0, sizeof *dst);
    dst->key = s_strdup(src->key);
    dst->type = s_strdup(src->type);
    dst->value = malloc(src->value.len + 1);
    if (dst->value) {
        if (src->value.len)
            memcpy(dst->value, src->value.data, src->value.len);
        dst->value[src->value.len] = '\0';
        dst->len = src->value.len;
    }
    dst->meta_json = s_strdup(src->meta_json);
    dst->author = s_strdup(src->author);
    dst->user = s_strdup(src->user);
    if ((dst->agents = s_strv_dup(src->agents, src->n_agents)))
        dst->nagents = src->n_agents;
    if ((dst->resources = s_strv_dup(src->resources, src->n_resources)))
        dst->nresources = src->n_resources;
    dst->hlc = src->hlc;
    dst->node = src->node;
    dst->n = src->n;
    dst->created_hlc = src->created_hlc;
    dst->expires_at_ms = src->expires_at_ms;
    dst->op = s_strdup(src->op);
    dst->amount = src->amount;
    dst->scope = s_strdup(src->scope);
    dst->score = src->score;
    dst->explain_json = s_strdup(src->explain_json);
    if (!dst->key || !dst->type || !dst->value || !dst->meta_json || !dst->author || !dst->user ||
        !dst->agents || !dst->resources || !dst->op || !dst->scope || !dst->explain_json) {
        s_item_fini(dst);
        return ENGRAM_ENOMEM;
    }
    return 0;
}

void engram_result_destroy(engram_result_t **self_p)
{
    assert(self_p);
    engram_result_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nitems; i++)
        s_item_fini(&self->items[i]);
    free(self->items);
    free(self->memory_id);
    free(self->next_cursor);
    free(self->token);
    free(self->context);
    free(self);
    *self_p = NULL;
}

/*  Caller owns *result_p and must destroy it with engram_result_destroy. */
static int s_result_new(const Engram__Reply *reply, engram_result_t **result_p)
{
    engram_result_t *self = calloc(1, sizeof *self);
    if (!self)
        return ENGRAM_ENOMEM;
    self->items = calloc(reply->n_items + 1, sizeof *self->items);
    self->number = reply->number;
    self->memory_id = s_strdup(reply->memory_id);
    self->next_cursor = s_strdup(reply->next_cursor);
    self->token = s_token_encode(&reply->token);
    self->replicas = reply->replicas;
    self->context = s_strdup(reply->context);
    if (!self->items || !self->memory_id || !self->next_cursor || !self->token || !self->context)
        goto out_destroy;
    for (; self->nitems < reply->n_items; self->nitems++)
        if (s_item_init(&self->items[self->nitems], reply->items[self->nitems]) != 0)
            goto out_destroy;
    *result_p = self;
    return 0;

out_destroy:
    engram_result_destroy(&self);
    return ENGRAM_ENOMEM;
}

void engram_event_destroy(engram_event_t **self_p)
{
    assert(self_p);
    engram_event_t *self = *self_p;
    if (!self)
        return;
    free(self->scope);
    free(self->key);
    free(self->op);
    s_item_fini(&self->item);
    free(self->token);
    free(self);
    *self_p = NULL;
}

/*  Caller owns *event_p and must destroy it with engram_event_destroy. */
static int s_event_new(const Engram__Event *event, engram_event_t **event_p)
{
    engram_event_t *self = calloc(1, sizeof *self);
    if (!self)
        return ENGRAM_ENOMEM;
    self->scope = s_strdup(event->scope);
    self->key = s_strdup(event->key);
    self->op = s_strdup(event->op);
    self->token = s_token_encode(&event->token);
    if (!self->scope || !self->key || !self->op || !self->token ||
        s_item_init(&self->item, event->item) != 0) {
        engram_event_destroy(&self);
        return ENGRAM_ENOMEM;
    }
    *event_p = self;
    return 0;
}

/*  ---------------------------------------------------------------------------------------
 *  Keys.
 */

/*  The largest certificate file read: a zcert file is a few hundred bytes. */
#define S_CERT_MAX_BYTES (64 * 1024)

/*  Decodes 40 Z85 characters into key; false if text is not that. */
static bool s_z85_key(const char *text, uint8_t key[32])
{
    return text && strlen(text) == 40 && zmq_z85_decode(key, text) != NULL;
}

/*  Reads the zcert file at path: its public key and, if secret is not NULL, its secret key.
 *  NULL, or why it cannot, with errno set: the file's (ENOENT: there is none), or EINVAL for a
 *  file that is not such a certificate. The file is read as zconfig text, as zcert_load does;
 *  zcert_load itself would cut paths longer than 255 bytes and fall back from NAME_secret to
 *  NAME without a word. */
static const char *s_load_cert(const char *path, uint8_t public_key[32], uint8_t secret_key[32])
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return strerror(errno);
    char *text = malloc(S_CERT_MAX_BYTES + 1);
    size_t size = text ? fread(text, 1, S_CERT_MAX_BYTES + 1, file) : 0;
    fclose(file);
    zconfig_t *root = NULL;
    if (text && size <= S_CERT_MAX_BYTES) {
        text[size] = '\0';
        root = zconfig_str_load(text);
    }
    if (text)
        sodium_memzero(text, size);
    free(text);
    bool ok = root && s_z85_key(zconfig_get(root, "curve/public-key", NULL), public_key) &&
              (!secret_key || s_z85_key(zconfig_get(root, "curve/secret-key", NULL), secret_key));
    zconfig_destroy(&root);
    errno = ok ? 0 : EINVAL;
    return ok           ? NULL
           : secret_key ? "not a secret CURVE certificate (zcert)"
                        : "not a CURVE certificate";
}

/*  Sets the three keys on the socket and connects it. 0, or ENGRAM_EINVAL for an endpoint
 *  libzmq refuses. */
static int s_key(engram_t *self, const uint8_t public_key[32], const uint8_t secret_key[32],
                 const uint8_t server_key[32])
{
    zsock_set_curve_serverkey_bin(self->sock, server_key);
    zsock_set_curve_publickey_bin(self->sock, public_key);
    zsock_set_curve_secretkey_bin(self->sock, secret_key);
    if (zsock_connect(self->sock, "%s", self->endpoint) != 0)
        return s_fail(self, ENGRAM_EINVAL, "cannot connect to '%s': %s", self->endpoint,
                      zmq_strerror(zmq_errno()));
    self->keyed = true;
    zstr_free(&self->key_path);
    return 0;
}

/*  Finds what the connection lacks of its keys (see the top of this file) and, once all three
 *  are known, connects. 0, or ENGRAM_EDENIED with the missing file and what makes it
 *  (ENGRAM_EUNAVAILABLE: no PATH.pub, so no node; ENGRAM_EINVAL: libzmq refused the endpoint). */
static int s_keys(engram_t *self)
{
    if (self->keyed)
        return 0;
    if (!self->key_path && !self->key_given)
        return s_fail(self, ENGRAM_EDENIED,
                      "'%s' is not an agent name, so it has no key ($ENGRAM_HOME/agents/AGENT)",
                      self->agent);
    uint8_t public_key[32], secret_key[32], server_key[32];
    const char *why = NULL;
    if (self->key_given) {
        memcpy(public_key, self->given_public, sizeof public_key);
        memcpy(secret_key, self->given_secret, sizeof secret_key);
    } else {
        why = s_load_cert(self->key_path, public_key, secret_key);
    }
    if (why)
        return s_fail(self, ENGRAM_EDENIED,
                      "no key for agent '%s': %s: %s (`engram agent create %s` makes it)",
                      self->agent, self->key_path, why, self->agent);
    int rc;
    if (self->server_env && !s_z85_key(self->server_env, server_key))
        rc = s_fail(self, ENGRAM_EDENIED,
                    "ENGRAM_SERVER_KEY is not a node's key: 40 Z85 characters, as `engramd "
                    "--data DIR --identity` prints after api=");
    else if (!self->server_env && !self->server_path)
        rc = s_fail(self, ENGRAM_EDENIED,
                    "no key for the node at %s: set ENGRAM_SERVER_KEY (`engramd --data DIR "
                    "--identity` prints it after api=)",
                    self->endpoint);
    else if (!self->server_env && (why = s_load_cert(self->server_path, server_key, NULL)))
        /* engramd publishes PATH.pub while it serves PATH: none there is no node there */
        rc = s_fail(self, errno == ENOENT ? ENGRAM_EUNAVAILABLE : ENGRAM_EDENIED,
                    "no key for the node at %s: %s: %s (start engramd, which publishes %s, or "
                    "set ENGRAM_SERVER_KEY)",
                    self->endpoint, self->server_path, why, self->server_path);
    else
        rc = s_key(self, public_key, secret_key, server_key);
    sodium_memzero(secret_key, sizeof secret_key);
    return rc;
}

/*  ---------------------------------------------------------------------------------------
 *  Transport.
 */

/*  A DEALER for the node's API with its monitor, not connected; false
 *  (both NULL) when out of memory. */
static bool s_socket_new(zsock_t **sock_p, zsock_t **monitor_p)
{
    *monitor_p = NULL;
    *sock_p = zsock_new(ZMQ_DEALER);
    if (*sock_p) {
        zsock_set_linger(*sock_p, ENGRAM_CLIENT_LINGER_MS);
        zsock_set_immediate(*sock_p, 1);
        *monitor_p =
            node_monitor_start(*sock_p, ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED);
    }
    if (!*monitor_p) {
        zsock_destroy(sock_p);
        return false;
    }
    return true;
}

/*  Destroys the socket and its monitor. */
static void s_socket_destroy(zsock_t **sock_p, zsock_t **monitor_p)
{
    if (*sock_p)
        node_monitor_stop(*sock_p, monitor_p);
    zsock_destroy(sock_p);
}

/*  A new connection in place of the socket, with its keys: a new socket, since the old one's
 *  disconnection is not done when the next request goes (it would leave on the old pipe).
 *  Left as it was when that cannot be made (the next call then times out). */
static void s_connect_anew(engram_t *self)
{
    zsock_t *fresh, *monitor;
    if (!s_socket_new(&fresh, &monitor))
        return;
    uint8_t server[32], public_key[32], secret[32];
    size_t len = sizeof server;
    bool keys = zmq_getsockopt(zsock_resolve(self->sock), ZMQ_CURVE_SERVERKEY, server, &len) == 0;
    len = sizeof public_key;
    keys = keys &&
           zmq_getsockopt(zsock_resolve(self->sock), ZMQ_CURVE_PUBLICKEY, public_key, &len) == 0;
    len = sizeof secret;
    keys =
        keys && zmq_getsockopt(zsock_resolve(self->sock), ZMQ_CURVE_SECRETKEY, secret, &len) == 0;
    if (keys) {
        zsock_set_curve_serverkey_bin(fresh, server);
        zsock_set_curve_publickey_bin(fresh, public_key);
        zsock_set_curve_secretkey_bin(fresh, secret);
    }
    sodium_memzero(secret, sizeof secret);
    if (keys && zsock_connect(fresh, "%s", self->endpoint) == 0) {
        s_socket_destroy(&self->sock, &self->monitor);
        self->sock = fresh;
        self->monitor = monitor;
        self->up = false;
        self->heard_ms = zclock_mono();
        self->probe_ms = 0;
        return;
    }
    s_socket_destroy(&fresh, &monitor);
}

/*  Whether reply is the node's word that it cut this connection (engramd's s_cut: id 0,
 *  ENGRAM_EBUSY; an id-0 ENGRAM_EDECODE is its word on a frame it could not read): nothing
 *  more is answered on it, and its subscriptions ended. */
static bool s_is_cut(const Engram__Reply *reply)
{
    return reply->id == 0 && reply->code == ENGRAM_EBUSY;
}

/*  Whether the end of the subscription id is queued already (the node's, or ours). */
static bool s_end_queued(engram_t *self, uint64_t id)
{
    for (Engram__Reply *queued = zlist_first(self->events); queued;
         queued = zlist_next(self->events))
        if (queued->id == id && queued->code != 0)
            return true;
    return false;
}

/*  Ends every subscription whose end is not queued yet with code and message, queued after
 *  the events already queued (engram_next_event reports it once each, and then forgets the
 *  subscription), as the node ends them. */
static void s_end_subscriptions(engram_t *self, int code, const char *message)
{
    for (size_t i = 0; i < self->nsubs; i++) {
        if (s_end_queued(self, self->subs[i].id))
            continue;
        Engram__Reply end = ENGRAM__REPLY__INIT;
        end.schema_major = ENGRAM_SCHEMA_MAJOR;
        end.id = self->subs[i].id;
        end.code = code;
        end.message = s_str(message);
        size_t len = engram__reply__get_packed_size(&end);
        uint8_t *buf = malloc(len ? len : 1);
        Engram__Reply *queued = NULL;
        if (buf) {
            engram__reply__pack(&end, buf);
            queued = engram__reply__unpack(NULL, len, buf);
            free(buf);
        }
        if (queued && zlist_append(self->events, queued) != 0)
            engram__reply__free_unpacked(queued, NULL);
    }
}

/*  After the node cut the connection (cut, its reply): each subscription ends with the cut's
 *  code and message, and the socket connects anew, so that the next call is answered on a new
 *  connection. */
static void s_after_cut(engram_t *self, const Engram__Reply *cut)
{
    s_end_subscriptions(self, cut->code, cut->message);
    s_connect_anew(self);
}

/*  A program that reads no events while its calls take them in: past
 *  ENGRAM_DEFAULT_SUBSCRIBER_BACKLOG queued, they are dropped and every subscription ends with
 *  ENGRAM_ELAGGED, as the node ends a subscriber that falls behind (events of the ended
 *  subscriptions that still come are dropped). */
static void s_events_overflow(engram_t *self)
{
    zlist_t *ends = zlist_new(); /* the subscriptions' ends already queued are kept */
    Engram__Reply *queued;
    while ((queued = zlist_pop(self->events))) {
        if (queued->code != 0 && ends && zlist_append(ends, queued) == 0) {
            s_unsubscribed(self, queued->id);
            continue;
        }
        engram__reply__free_unpacked(queued, NULL);
    }
    while (ends && (queued = zlist_pop(ends)))
        if (zlist_append(self->events, queued) != 0)
            engram__reply__free_unpacked(queued, NULL);
    zlist_destroy(&ends);
    char message[160];
    snprintf(message, sizeof message,
             "more than %d events waited in this client, unread: they were dropped and the "
             "subscription ended; subscribe again",
             ENGRAM_DEFAULT_SUBSCRIBER_BACKLOG);
    s_end_subscriptions(self, ENGRAM_ELAGGED, message);
    for (size_t i = 0; i < self->nsubs; i++) /* their events that still come are dropped */
        free(self->subs[i].scope);
    self->nsubs = 0;
}

/*  Reads the frame waiting on the socket. Returns 0 and *reply_p, the Reply it held, for the
 *  caller to free with engram__reply__free_unpacked; or NULL when the frame was queued as a
 *  subscription event or dropped. A Reply that says the node cut the connection (s_is_cut)
 *  is handed up after s_after_cut. */
static int s_take_frame(engram_t *self, Engram__Reply **reply_p)
{
    *reply_p = NULL;
    zmsg_t *msg = zmsg_recv(self->sock);
    if (!msg)
        return 0;
    self->heard_ms = zclock_mono();
    Engram__Reply *reply = NULL;
    if (zmsg_size(msg) == 1) {
        zframe_t *frame = zmsg_first(msg);
        reply = engram__reply__unpack(NULL, zframe_size(frame), zframe_data(frame));
    }
    zmsg_destroy(&msg);
    if (!reply)
        return 0;
    if (s_is_cut(reply))
        s_after_cut(self, reply);
    else if (s_subscribed(self, reply->id) && (reply->event || reply->code != 0)) {
        if (reply->code == 0 && zlist_size(self->events) >= ENGRAM_DEFAULT_SUBSCRIBER_BACKLOG) {
            engram__reply__free_unpacked(reply, NULL);
            s_events_overflow(self);
            return 0;
        }
        if (zlist_append(self->events, reply) != 0) {
            engram__reply__free_unpacked(reply, NULL);
            return ENGRAM_ENOMEM;
        }
        return 0;
    }
    *reply_p = reply;
    return 0;
}

/*  Applies the monitor's reports: a handshake marks a connection up; the end of one that was
 *  up is a loss, after which every subscription ends with ENGRAM_EUNAVAILABLE. Returns
 *  whether a connection was lost. The caller reads the frames waiting on the socket first,
 *  so that those still there come before the ends; what libzmq had not taken in from an ended
 *  connection is dropped with it, among the events missed. */
static bool s_watch_connection(engram_t *self)
{
    bool lost = false;
    uint16_t event;
    uint32_t fd;
    while (node_monitor_next(self->monitor, &event, &fd)) {
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            self->up = true;
        else if (event == ZMQ_EVENT_DISCONNECTED && self->up) {
            self->up = false;
            lost = true;
        }
    }
    if (lost && self->nsubs) {
        char message[256];
        snprintf(message, sizeof message,
                 "the connection to the node at %s was lost (the node stopped or restarted): "
                 "the subscription ended, and events may have been missed; subscribe again",
                 self->endpoint);
        s_end_subscriptions(self, ENGRAM_EUNAVAILABLE, message);
    }
    return lost;
}

/*  Reads at most one frame, or the monitor's reports, waiting until deadline. The socket is
 *  polled alone for the first S_SOCKET_ALONE_MS of a wait: a reply usually comes within it,
 *  and each poll of the monitor too costs a system call. Returns ENGRAM_ETIMEDOUT if nothing
 *  came in time; S_INTERRUPTED when, interruptible, a signal cut the wait short;
 *  ENGRAM_EUNAVAILABLE, with its message, when the reports leave the connection lost
 *  (nothing sent on it will be answered; s_watch_connection ended the subscriptions). A
 *  loss followed by a new connection's handshake is not the waiting call's: its request may
 *  have gone on the new one (reports are read late when calls are answered at once), and if
 *  it did not, its timeout ends the wait. Otherwise as s_take_frame. */
static int s_pump(engram_t *self, int64_t deadline, bool interruptible, Engram__Reply **reply_p)
{
    *reply_p = NULL;
    zmq_pollitem_t items[2] = {{zsock_resolve(self->sock), 0, ZMQ_POLLIN, 0},
                               {zsock_resolve(self->monitor), 0, ZMQ_POLLIN, 0}};
    int64_t alone_until = zclock_mono() + S_SOCKET_ALONE_MS;
    for (;;) {
        int64_t alone_left = alone_until - zclock_mono();
        int wait = s_remaining(deadline);
        if (alone_left > 0 && (wait < 0 || wait > alone_left))
            wait = (int)alone_left;
        int ready = zmq_poll(items, alone_left > 0 ? 1 : 2, wait);
        if (ready > 0)
            break;
        if (ready < 0 && interruptible)
            return S_INTERRUPTED;
        if (deadline != S_FOREVER && s_remaining(deadline) == 0) {
            /* the monitor too, whatever the wait: one of short waits would never read it */
            if (!(zsock_events(self->sock) & ZMQ_POLLIN) &&
                !(zsock_events(self->monitor) & ZMQ_POLLIN))
                return ENGRAM_ETIMEDOUT;
            break;
        }
    }
    if ((items[0].revents & ZMQ_POLLIN) || (zsock_events(self->sock) & ZMQ_POLLIN))
        return s_take_frame(self, reply_p);
    if (!s_watch_connection(self) || self->up)
        return 0;
    return s_fail(self, ENGRAM_EUNAVAILABLE,
                  "the connection to the node at %s was lost while waiting (the node stopped "
                  "or restarted): whether the request was done is unknown",
                  self->endpoint);
}

/*  The frames waiting on the socket (events queued, late replies dropped), then the monitor's
 *  reports: before a SUBSCRIBE goes, so that the end of a connection reported late never ends
 *  the subscription it makes. */
static void s_read_reports(engram_t *self)
{
    Engram__Reply *stale;
    while ((zsock_events(self->sock) & ZMQ_POLLIN) && s_take_frame(self, &stale) == 0)
        if (stale) /* the answer to a call that gave up, or a cut (handled) */
            engram__reply__free_unpacked(stale, NULL);
    s_watch_connection(self);
}

/*  req as the frame that carries it: stamped with the schema, the next id, the agent and the
 *  user. NULL with a code in *rc_p (and the message kept) if it is too big or memory ran out. */
static zframe_t *s_pack(engram_t *self, Engram__Request *req, int *rc_p)
{
    req->schema_major = ENGRAM_SCHEMA_MAJOR;
    req->schema_minor = ENGRAM_SCHEMA_MINOR;
    req->id = self->next_id++;
    req->agent = self->agent;
    req->user = self->user;
    size_t size = engram__request__get_packed_size(req);
    if (size > ENGRAM_DEFAULT_MAX_FRAME_BYTES) {
        *rc_p = s_fail(self, ENGRAM_ETOOBIG, "a request of %zu bytes exceeds the frame limit of %d",
                       size, ENGRAM_DEFAULT_MAX_FRAME_BYTES);
        return NULL;
    }
    zframe_t *frame = zframe_new(NULL, size);
    if (!frame) {
        *rc_p = ENGRAM_ENOMEM;
        return NULL;
    }
    engram__request__pack(req, zframe_data(frame));
    return frame;
}

/*  Sends frame (kept: ZFRAME_REUSE) before deadline. With ZMQ_IMMEDIATE the send blocks until
 *  a connection to the node is up; a signal may interrupt it, so it is retried. */
static int s_send(engram_t *self, zframe_t *frame, int64_t deadline, int64_t wait_ms)
{
    int sent;
    do {
        zsock_set_sndtimeo(self->sock, s_remaining(deadline));
        sent = zframe_send(&frame, self->sock, ZFRAME_REUSE);
    } while (sent != 0 && errno == EINTR && s_remaining(deadline) > 0);
    if (sent != 0)
        return s_fail(self, ENGRAM_EUNAVAILABLE,
                      "no node at %s within %lld ms (a node whose key is not the one pinned "
                      "from %s is never connected to)",
                      self->endpoint, (long long)wait_ms, self->server_from);
    return 0;
}

/*  The outcome of a reply: 0, or its code with *message_p its message (the caller frees it). */
static int s_outcome(const Engram__Reply *reply, char **message_p)
{
    *message_p = NULL;
    if (reply->schema_major > ENGRAM_SCHEMA_MAJOR) {
        *message_p = zsys_sprintf("the node answered in schema %u.%u", reply->schema_major,
                                  reply->schema_minor);
        return ENGRAM_EVERSION;
    }
    if (reply->code > 0) {
        *message_p = zsys_sprintf("the node answered with code %d", reply->code);
        return ENGRAM_EDECODE;
    }
    if (reply->code < 0)
        *message_p = strdup(reply->message ? reply->message : "");
    return reply->code;
}

/*  Sends req and waits up to wait_ms for its reply. On 0, *reply_p is the node's successful
 *  answer; caller owns it and must free it with engram__reply__free_unpacked. Otherwise
 *  *reply_p is NULL and the code is the node's, or the transport's. */
static int s_call(engram_t *self, Engram__Request *req, int64_t wait_ms, Engram__Reply **reply_p)
{
    *reply_p = NULL;
    s_clear_error(self);
    int rc = s_keys(self);
    if (rc != 0)
        return rc;
    zframe_t *frame = s_pack(self, req, &rc);
    if (!frame)
        return rc;
    int64_t deadline = s_deadline(wait_ms);
    rc = s_send(self, frame, deadline, wait_ms);
    zframe_destroy(&frame);
    if (rc != 0)
        return rc;

    Engram__Reply *reply = NULL;
    while (true) {
        rc = s_pump(self, deadline, false, &reply);
        if (rc == ENGRAM_ETIMEDOUT)
            return s_fail(self, ENGRAM_EUNAVAILABLE, "no reply from %s within %lld ms",
                          self->endpoint, (long long)wait_ms);
        if (rc != 0)
            return rc;
        if (reply && (reply->id == req->id || s_is_cut(reply)))
            break; /* cut: this request's answer never comes, whether it was done or not */
        if (reply)
            engram__reply__free_unpacked(reply, NULL);
    }

    char *message;
    rc = s_outcome(reply, &message);
    if (rc != 0) {
        s_fail(self, rc, "%s%s", message ? message : "",
               s_is_cut(reply) ? " (libengram connected anew; whether this request was done "
                                 "is unknown)"
                               : "");
        free(message);
        engram__reply__free_unpacked(reply, NULL);
        return rc;
    }
    *reply_p = reply;
    return 0;
}

/*  s_call with the connection's timeout, and the reply turned into a result. */
static int s_call_result(engram_t *self, Engram__Request *req, int64_t wait_ms,
                         engram_result_t **result)
{
    Engram__Reply *reply = NULL;
    int rc = s_call(self, req, wait_ms, &reply);
    if (rc != 0)
        return rc;
    rc = s_result_new(reply, result);
    engram__reply__free_unpacked(reply, NULL);
    return rc;
}

/*  ---------------------------------------------------------------------------------------
 *  Connection.
 */

/*  czmq's start, once for the process: the host program keeps its signals. */
static void s_start_czmq(void)
{
    zsys_handler_set(NULL);
    zsys_init();
}

/*  A connection with its socket, not yet connected: the keys decide when it connects. NULL
 *  when out of memory. */
static engram_t *s_new(const char *endpoint, const char *agent, const char *user)
{
    static pthread_once_t czmq_started = PTHREAD_ONCE_INIT;
    if (sodium_init() < 0 || pthread_once(&czmq_started, s_start_czmq) != 0)
        return NULL;
    if (!endpoint) {
        endpoint = getenv("ENGRAM_SOCKET");
        if (!endpoint || !*endpoint)
            endpoint = ENGRAM_DEFAULT_API_ENDPOINT;
    }
    engram_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->timeout_ms = ENGRAM_DEFAULT_CLIENT_TIMEOUT_MS;
    self->next_id = 1;
    self->endpoint = s_strdup(endpoint);
    self->agent = s_strdup(agent);
    self->user = s_strdup(user);
    self->events = zlist_new();
    self->heard_ms = zclock_mono();
    if (!self->endpoint || !self->agent || !self->user || !self->events ||
        !s_socket_new(&self->sock, &self->monitor)) {
        engram_destroy(&self);
        return NULL;
    }
    return self;
}

/*  Whether name can name a file of $ENGRAM_HOME/agents. */
static bool s_agent_file_name(const char *name)
{
    return name && *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

/*  Where the node's key is to be found: ENGRAM_SERVER_KEY, else PATH.pub for ipc://PATH.
 *  false when out of memory. */
static bool s_find_server(engram_t *self)
{
    const char *server_env = getenv("ENGRAM_SERVER_KEY");
    const char *path = strncmp(self->endpoint, "ipc://", 6) == 0 ? self->endpoint + 6 : NULL;
    if (server_env && *server_env) {
        self->server_env = strdup(server_env);
        self->server_from = strdup("ENGRAM_SERVER_KEY");
        return self->server_env && self->server_from;
    }
    if (path && *path && *path != '@' && strcmp(path, "*") != 0) {
        self->server_path = zsys_sprintf("%s.pub", path);
        self->server_from = self->server_path ? strdup(self->server_path) : NULL;
        return self->server_from != NULL;
    }
    return true;
}

engram_t *engram_connect(const char *endpoint, const char *agent, const char *user)
{
    engram_t *self = s_new(endpoint, agent, user);
    if (!self)
        return NULL;
    bool ok = true;
    if (s_agent_file_name(agent)) {
        const char *home = getenv("ENGRAM_HOME");
        const char *user_home = getenv("HOME");
        self->key_path = home && *home ? zsys_sprintf("%s/agents/%s.cert_secret", home, agent)
                                       : zsys_sprintf("%s/.engram/agents/%s.cert_secret",
                                                      user_home ? user_home : ".", agent);
        ok = self->key_path != NULL;
    }
    /*  Connects now if the keys are there: an endpoint libzmq refuses is refused here. */
    if (!ok || !s_find_server(self) || s_keys(self) == ENGRAM_EINVAL) {
        engram_destroy(&self);
        return NULL;
    }
    s_clear_error(self);
    return self;
}

engram_t *engram_connect_keys(const char *endpoint, const char *agent, const char *user,
                              const uint8_t public_key[32], const uint8_t secret_key[32],
                              const uint8_t server_key[32])
{
    assert(public_key && secret_key);
    engram_t *self = s_new(endpoint, agent, user);
    if (self && !server_key) { /* the node's key found as engram_connect finds it */
        memcpy(self->given_public, public_key, sizeof self->given_public);
        memcpy(self->given_secret, secret_key, sizeof self->given_secret);
        self->key_given = true;
        if (!s_find_server(self) || s_keys(self) == ENGRAM_EINVAL)
            engram_destroy(&self);
        else
            s_clear_error(self);
        return self;
    }
    if (self && !(self->server_from = strdup("the caller of engram_connect_keys")))
        engram_destroy(&self);
    if (self && s_key(self, public_key, secret_key, server_key) != 0)
        engram_destroy(&self);
    return self;
}

void engram_destroy(engram_t **self_p)
{
    assert(self_p);
    engram_t *self = *self_p;
    if (!self)
        return;
    sodium_memzero(self->given_secret, sizeof self->given_secret);
    s_socket_destroy(&self->sock, &self->monitor);
    if (self->events) {
        Engram__Reply *reply;
        while ((reply = zlist_pop(self->events)))
            engram__reply__free_unpacked(reply, NULL);
        zlist_destroy(&self->events);
    }
    for (size_t i = 0; i < self->nsubs; i++)
        free(self->subs[i].scope);
    free(self->subs);
    free(self->endpoint);
    zstr_free(&self->key_path);
    zstr_free(&self->server_path);
    free(self->server_env);
    free(self->server_from);
    free(self->agent);
    free(self->user);
    if (self->sources)
        s_strv_free(self->sources, self->nsources);
    free(self->after.data);
    zstr_free(&self->error);
    free(self);
    *self_p = NULL;
}

void engram_set_timeout(engram_t *self, int timeout_ms)
{
    assert(self);
    assert(timeout_ms > 0);
    self->timeout_ms = timeout_ms;
}

const char *engram_last_error(const engram_t *self)
{
    assert(self);
    return self->error ? self->error : "";
}

/*  ---------------------------------------------------------------------------------------
 *  Calls.
 */

static Engram__Request s_request(Engram__Op op, const char *scope, const char *key)
{
    Engram__Request req = ENGRAM__REQUEST__INIT;
    req.op = op;
    req.scope = s_str(scope);
    req.key = s_str(key);
    return req;
}

/*  A write that brings content (put, log append, remember, share): it declares the sources
 *  the connection's writes derive from. The request borrows them until the next
 *  engram_set_sources. */
static Engram__Request s_write(const engram_t *self, Engram__Op op, const char *scope,
                               const char *key)
{
    Engram__Request req = s_request(op, scope, key);
    req.sources = self->sources;
    req.n_sources = self->nsources;
    return req;
}

int engram_set_after(engram_t *self, const char *token, int timeout_ms)
{
    assert(self && timeout_ms >= 0);
    ProtobufCBinaryData decoded;
    int rc = s_token_decode(self, token, &decoded);
    if (rc != 0)
        return rc;
    free(self->after.data);
    self->after = decoded;
    self->after_timeout_ms = (uint32_t)timeout_ms;
    return 0;
}

/*  How long a read waits for its reply: the connection's timeout, plus what the node may hold
 *  it for its causal token (timeout_ms, or the node's default when 0). */
static int64_t s_read_wait(const engram_t *self, const Engram__Request *req)
{
    int64_t wait_ms = self->timeout_ms;
    if (req->after.len)
        wait_ms += req->timeout_ms ? req->timeout_ms : ENGRAM_DEFAULT_AFTER_TIMEOUT_MS;
    return wait_ms;
}

/*  A read of scope and key, carrying the connection's causal token (engram_set_after). The
 *  request borrows the token until the next engram_set_after. */
static Engram__Request s_read_request(const engram_t *self, Engram__Op op, const char *scope,
                                      const char *key)
{
    Engram__Request req = s_request(op, scope, key);
    req.after = self->after;
    req.timeout_ms = self->after_timeout_ms;
    return req;
}

int engram_set_sources(engram_t *self, const char *const *sources, size_t n)
{
    assert(self && (sources || n == 0));
    for (size_t i = 0; i < n; i++)
        assert(sources[i]);
    char **copy = NULL;
    if (n && !(copy = s_strv_dup((char *const *)sources, n)))
        return s_fail(self, ENGRAM_ENOMEM, "copying the sources");
    if (self->sources)
        s_strv_free(self->sources, self->nsources);
    self->sources = copy;
    self->nsources = n;
    return 0;
}

int engram_put(engram_t *self, const char *scope, const char *key, const void *value, size_t len,
               const char *meta_json, uint64_t ttl_ms, engram_result_t **result)
{
    return engram_put_embedded(self, scope, key, value, len, meta_json, ttl_ms, NULL, 0, result);
}

/*  An embedding as the wire carries it: the float32 values' bytes (this little-endian host's
 *  own layout, as the node's CMakeLists.txt requires). */
static ProtobufCBinaryData s_embedding(const float *embedding, size_t dims)
{
    return (ProtobufCBinaryData){dims * sizeof *embedding, (uint8_t *)embedding};
}

int engram_put_embedded(engram_t *self, const char *scope, const char *key, const void *value,
                        size_t len, const char *meta_json, uint64_t ttl_ms, const float *embedding,
                        size_t dims, engram_result_t **result)
{
    assert(self && scope && key && (value || len == 0) && (embedding || dims == 0) && result);
    *result = NULL;
    Engram__Request req = s_write(self, ENGRAM__OP__PUT, scope, key);
    req.value.data = (uint8_t *)value;
    req.value.len = len;
    req.meta_json = s_str(meta_json);
    req.ttl_ms = ttl_ms;
    req.embedding = s_embedding(embedding, dims);
    return s_call_result(self, &req, self->timeout_ms, result);
}

int engram_get(engram_t *self, const char *scope, const char *key, const char *after,
               int timeout_ms, engram_result_t **result)
{
    assert(self && scope && key && timeout_ms >= 0 && result);
    *result = NULL;
    Engram__Request req = s_read_request(self, ENGRAM__OP__GET, scope, key);
    ProtobufCBinaryData own = {0, NULL};
    int rc = s_token_decode(self, after, &own);
    if (rc != 0)
        return rc;
    if (own.len) { /* its own token takes precedence over the connection's */
        req.after = own;
        req.timeout_ms = (uint32_t)timeout_ms;
    }
    /*  The node holds a read with a token until it has caught up: the reply may take that
     *  much longer. */
    rc = s_call_result(self, &req, s_read_wait(self, &req), result);
    free(own.data);
    return rc;
}

int engram_get_as_of(engram_t *self, const char *scope, const char *key, uint64_t as_of_ms,
                     engram_result_t **result)
{
    assert(self && scope && key && result);
    *result = NULL;
    if (as_of_ms == 0)
        return ENGRAM_EINVAL; /* 0 means now to the node: a time is asked for */
    Engram__Request req = s_read_request(self, ENGRAM__OP__GET, scope, key);
    req.as_of_ms = as_of_ms;
    return s_call_result(self, &req, s_read_wait(self, &req), result);
}

int engram_delete(engram_t *self, const char *scope, const char *key, engram_result_t **result)
{
    assert(self && scope && key && result);
    *result = NULL;
    Engram__Request req = s_request(ENGRAM__OP__DELETE, scope, key);
    return s_call_result(self, &req, self->timeout_ms, result);
}

static int s_set_op(engram_t *self, Engram__Op op, const char *scope, const char *key,
                    const char *elem, const char *meta_json, engram_result_t **result)
{
    assert(self && scope && key && elem && result);
    *result = NULL;
    Engram__Request req = s_request(op, scope, key);
    req.elem = s_str(elem);
    req.meta_json = s_str(meta_json);
    return s_call_result(self, &req, self->timeout_ms, result);
}

int engram_set_add(engram_t *self, const char *scope, const char *key, const char *elem,
                   engram_result_t **result)
{
    return s_set_op(self, ENGRAM__OP__SET_ADD, scope, key, elem, NULL, result);
}

int engram_set_add_meta(engram_t *self, const char *scope, const char *key, const char *elem,
                        const char *meta_json, engram_result_t **result)
{
    return s_set_op(self, ENGRAM__OP__SET_ADD, scope, key, elem, meta_json, result);
}

int engram_set_remove(engram_t *self, const char *scope, const char *key, const char *elem,
                      engram_result_t **result)
{
    return s_set_op(self, ENGRAM__OP__SET_REMOVE, scope, key, elem, NULL, result);
}

/*  The reads that take only scope and key. */
static int s_read(engram_t *self, Engram__Op op, const char *scope, const char *key,
                  engram_result_t **result)
{
    assert(self && scope && key && result);
    *result = NULL;
    Engram__Request req = s_read_request(self, op, scope, key);
    return s_call_result(self, &req, s_read_wait(self, &req), result);
}

/*  One page of a paged read (SET_MEMBERS, LOG_RANGE, HISTORY). */
static int s_page(engram_t *self, Engram__Op op, const char *scope, const char *key,
                  const char *cursor, unsigned limit, engram_result_t **result)
{
    assert(self && scope && key && result);
    *result = NULL;
    Engram__Request req = s_read_request(self, op, scope, key);
    req.cursor = s_str(cursor);
    req.limit = limit;
    return s_call_result(self, &req, s_read_wait(self, &req), result);
}

/*  Moves the items of page to the end of all's (page keeps none). */
static int s_take_items(engram_t *self, engram_result_t *all, engram_result_t *page)
{
    engram_item_t *items = realloc(all->items, (all->nitems + page->nitems + 1) * sizeof *items);
    if (!items)
        return s_fail(self, ENGRAM_ENOMEM, "gathering the pages");
    memcpy(items + all->nitems, page->items, page->nitems * sizeof *items);
    all->items = items;
    all->nitems += page->nitems;
    page->nitems = 0;
    return 0;
}

/*  Every page of a paged read, gathered into one result (the last page's token). */
static int s_all_pages(engram_t *self, Engram__Op op, const char *scope, const char *key,
                       engram_result_t **result)
{
    engram_result_t *all = NULL;
    int rc = s_page(self, op, scope, key, NULL, ENGRAM_MAX_PAGE, &all);
    while (rc == 0 && *all->next_cursor) {
        engram_result_t *page = NULL;
        rc = s_page(self, op, scope, key, all->next_cursor, ENGRAM_MAX_PAGE, &page);
        if (rc == 0 && strcmp(page->next_cursor, all->next_cursor) == 0 && *page->next_cursor)
            rc = s_fail(self, ENGRAM_EIO, "the node repeated the cursor %s", page->next_cursor);
        if (rc == 0)
            rc = s_take_items(self, all, page);
        if (rc == 0) { /* the last page's cursor and token stand for the whole */
            char *swap = all->next_cursor;
            all->next_cursor = page->next_cursor;
            page->next_cursor = swap;
            swap = all->token;
            all->token = page->token;
            page->token = swap;
        }
        engram_result_destroy(&page);
    }
    if (rc != 0)
        engram_result_destroy(&all);
    *result = all;
    return rc;
}

int engram_set_members(engram_t *self, const char *scope, const char *key, engram_result_t **result)
{
    return s_all_pages(self, ENGRAM__OP__SET_MEMBERS, scope, key, result);
}

int engram_set_members_page(engram_t *self, const char *scope, const char *key, const char *cursor,
                            unsigned limit, engram_result_t **result)
{
    return s_page(self, ENGRAM__OP__SET_MEMBERS, scope, key, cursor, limit, result);
}

int engram_counter_add(engram_t *self, const char *scope, const char *key, int64_t amount,
                       engram_result_t **result)
{
    assert(self && scope && key && result);
    *result = NULL;
    Engram__Request req = s_request(ENGRAM__OP__COUNTER_ADD, scope, key);
    req.amount = amount;
    return s_call_result(self, &req, self->timeout_ms, result);
}

int engram_counter_get(engram_t *self, const char *scope, const char *key, engram_result_t **result)
{
    return s_read(self, ENGRAM__OP__COUNTER_GET, scope, key, result);
}

int engram_log_append(engram_t *self, const char *scope, const char *key, const void *text,
                      size_t len, engram_result_t **result)
{
    return engram_log_append_meta(self, scope, key, text, len, NULL, 0, result);
}

int engram_log_append_meta(engram_t *self, const char *scope, const char *key, const void *text,
                           size_t len, const char *meta_json, uint64_t ttl_ms,
                           engram_result_t **result)
{
    assert(self && scope && key && (text || len == 0) && result);
    *result = NULL;
    Engram__Request req = s_write(self, ENGRAM__OP__LOG_APPEND, scope, key);
    req.value.data = (uint8_t *)text;
    req.value.len = len;
    req.meta_json = s_str(meta_json);
    req.ttl_ms = ttl_ms;
    return s_call_result(self, &req, self->timeout_ms, result);
}

int engram_log_range(engram_t *self, const char *scope, const char *key, engram_result_t **result)
{
    return s_all_pages(self, ENGRAM__OP__LOG_RANGE, scope, key, result);
}

int engram_log_page(engram_t *self, const char *scope, const char *key, const char *cursor,
                    unsigned limit, engram_result_t **result)
{
    return s_page(self, ENGRAM__OP__LOG_RANGE, scope, key, cursor, limit, result);
}

int engram_list(engram_t *self, const char *scope, const char *prefix, const char *cursor,
                unsigned limit, engram_result_t **result)
{
    return engram_list_filtered(self, scope, prefix, NULL, cursor, limit, result);
}

int engram_list_filtered(engram_t *self, const char *scope, const char *prefix,
                         const char *filter_json, const char *cursor, unsigned limit,
                         engram_result_t **result)
{
    assert(self && scope && result);
    *result = NULL;
    Engram__Request req = s_read_request(self, ENGRAM__OP__LIST, scope, NULL);
    req.filter_json = s_str(filter_json);
    req.prefix = s_str(prefix);
    req.cursor = s_str(cursor);
    req.limit = limit;
    return s_call_result(self, &req, s_read_wait(self, &req), result);
}

int engram_remember(engram_t *self, const char *scope, const char *text, const char *meta_json,
                    uint64_t ttl_ms, engram_result_t **result)
{
    return engram_remember_embedded(self, scope, NULL, text, meta_json, ttl_ms, NULL, 0, result);
}

int engram_remember_id(engram_t *self, const char *scope, const char *id, const char *text,
                       const char *meta_json, uint64_t ttl_ms, engram_result_t **result)
{
    return engram_remember_embedded(self, scope, id, text, meta_json, ttl_ms, NULL, 0, result);
}

int engram_remember_embedded(engram_t *self, const char *scope, const char *id, const char *text,
                             const char *meta_json, uint64_t ttl_ms, const float *embedding,
                             size_t dims, engram_result_t **result)
{
    assert(self && scope && text && (embedding || dims == 0) && result);
    *result = NULL;
    Engram__Request req = s_write(self, ENGRAM__OP__REMEMBER, scope, id);
    req.value.data = (uint8_t *)text;
    req.value.len = strlen(text);
    req.meta_json = s_str(meta_json);
    req.ttl_ms = ttl_ms;
    req.embedding = s_embedding(embedding, dims);
    return s_call_result(self, &req, self->timeout_ms, result);
}

int engram_history(engram_t *self, const char *scope, const char *key, engram_result_t **result)
{
    return s_all_pages(self, ENGRAM__OP__HISTORY, scope, key, result);
}

int engram_history_page(engram_t *self, const char *scope, const char *key, const char *cursor,
                        unsigned limit, engram_result_t **result)
{
    return s_page(self, ENGRAM__OP__HISTORY, scope, key, cursor, limit, result);
}

int engram_share(engram_t *self, const char *key, const char *scope, engram_result_t **result)
{
    assert(self && key && scope && result);
    *result = NULL;
    Engram__Request req = s_write(self, ENGRAM__OP__SHARE, scope, key);
    return s_call_result(self, &req, self->timeout_ms, result);
}

/*  SEARCH or CONTEXT (tokens > 0). */
static int s_search(engram_t *self, const char *query, const engram_search_options_t *options,
                    unsigned tokens, engram_result_t **result)
{
    assert(self && query && result);
    *result = NULL;
    static const engram_search_options_t defaults;
    if (!options)
        options = &defaults;
    Engram__Request req =
        s_read_request(self, tokens ? ENGRAM__OP__CONTEXT : ENGRAM__OP__SEARCH, NULL, NULL);
    req.tokens = tokens;
    req.query = (char *)query;
    req.scopes = (char **)options->scopes;
    req.n_scopes = options->scopes ? options->nscopes : 0;
    req.filter_json = s_str(options->filter_json);
    req.top_k = options->top_k;
    req.threshold = options->threshold;
    req.mode = s_str(options->mode);
    req.embedding = s_embedding(options->embedding, options->embedding ? options->dims : 0);
    req.half_life_ms = options->half_life_ms;
    req.votes = options->votes;
    req.explain = options->explain;
    return s_call_result(self, &req, s_read_wait(self, &req), result);
}

int engram_search(engram_t *self, const char *query, const engram_search_options_t *options,
                  engram_result_t **result)
{
    return s_search(self, query, options, 0, result);
}

int engram_context(engram_t *self, const char *query, const engram_search_options_t *options,
                   unsigned tokens, engram_result_t **result)
{
    if (tokens == 0)
        return s_fail(self, ENGRAM_EINVAL, "a context needs a budget of tokens");
    return s_search(self, query, options, tokens, result);
}

/*  The subscription to scope, or NULL. */
static s_subscription_t *s_subscription_of(engram_t *self, const char *scope)
{
    for (size_t i = 0; i < self->nsubs; i++)
        if (strcmp(self->subs[i].scope, scope) == 0)
            return &self->subs[i];
    return NULL;
}

int engram_subscribe(engram_t *self, const char *scope)
{
    assert(self && scope);
    s_clear_error(self);
    if (s_subscription_of(self, scope)) /* the node holds one a (connection, scope) */
        return s_fail(self, ENGRAM_EINVAL, "%s is subscribed to on this connection already", scope);
    s_subscription_t *subs = realloc(self->subs, (self->nsubs + 1) * sizeof *subs);
    if (!subs)
        return s_fail(self, ENGRAM_ENOMEM, "subscribing");
    self->subs = subs;
    char *kept = s_strdup(scope);
    if (!kept)
        return s_fail(self, ENGRAM_ENOMEM, "subscribing");
    s_read_reports(self);
    Engram__Request req = s_request(ENGRAM__OP__SUBSCRIBE, scope, NULL);
    Engram__Reply *reply = NULL;
    int rc = s_call(self, &req, self->timeout_ms, &reply);
    if (rc != 0) {
        free(kept);
        return rc;
    }
    engram__reply__free_unpacked(reply, NULL);
    self->subs[self->nsubs++] = (s_subscription_t){req.id, kept};
    return 0;
}

int engram_unsubscribe(engram_t *self, const char *scope)
{
    assert(self && scope);
    s_clear_error(self);
    s_subscription_t *sub = s_subscription_of(self, scope);
    if (!sub)
        return s_fail(self, ENGRAM_EINVAL, "no subscription to %s on this connection", scope);
    uint64_t id = sub->id;
    s_unsubscribed(self, id); /* its events, queued or still to come, are dropped */
    zlist_t *kept = zlist_new();
    Engram__Reply *queued;
    while (kept && (queued = zlist_pop(self->events)))
        if (queued->id == id || zlist_append(kept, queued) != 0)
            engram__reply__free_unpacked(queued, NULL);
    if (kept) {
        zlist_destroy(&self->events);
        self->events = kept;
    }
    Engram__Request req = s_request(ENGRAM__OP__UNSUBSCRIBE, scope, NULL);
    Engram__Reply *reply = NULL;
    int rc = s_call(self, &req, self->timeout_ms, &reply);
    if (rc == 0)
        engram__reply__free_unpacked(reply, NULL);
    return rc;
}

/*  The liveness of a node that events are awaited from (the header says why): after the call
 *  timeout (S_PROBE_MIN_MS at least) with no frame from the node, a STATS request goes as a
 *  probe; no frame within as long after it ends every subscription with ENGRAM_EUNAVAILABLE
 *  and connects anew. A frame waiting unread counts as heard. Returns when to look again. A
 *  probe the socket cannot take at once (no connection up, or a full pipe: the node reads
 *  nothing) counts as sent: a node that never answers is taken as hung. */
static int64_t s_probe(engram_t *self)
{
    int64_t now = zclock_mono(), limit = self->timeout_ms;
    if (limit < S_PROBE_MIN_MS)
        limit = S_PROBE_MIN_MS;
    bool due = self->probe_ms || now - self->heard_ms >= limit; /* else no system call */
    if (due && (zsock_events(self->sock) & ZMQ_POLLIN))
        self->heard_ms = now; /* the program was away; the node was not */
    if (self->probe_ms && self->heard_ms >= self->probe_ms)
        self->probe_ms = 0; /* answered */
    if (self->probe_ms && now - self->probe_ms >= limit) {
        char message[256];
        snprintf(message, sizeof message,
                 "the node at %s did not answer for %lld ms (it hangs, or cannot be reached): "
                 "the subscription ended, and events may have been missed; subscribe again",
                 self->endpoint, (long long)limit);
        s_end_subscriptions(self, ENGRAM_EUNAVAILABLE, message);
        s_connect_anew(self); /* what the hung connection brings later is not taken (unless
                               * no new socket could be made: the old one then stays) */
        return zclock_mono() + limit;
    }
    if (self->probe_ms)
        return self->probe_ms + limit;
    if (now - self->heard_ms < limit)
        return self->heard_ms + limit;
    Engram__Request req = s_request(ENGRAM__OP__STATS, NULL, NULL);
    int rc = 0;
    zframe_t *frame = s_pack(self, &req, &rc);
    if (!frame)
        return now + limit; /* out of memory: no probe went, none is awaited */
    zframe_send(&frame, self->sock, ZFRAME_DONTWAIT | ZFRAME_REUSE);
    zframe_destroy(&frame);
    self->probe_ms = now;
    return now + limit;
}

int engram_next_event(engram_t *self, int timeout_ms, engram_event_t **event)
{
    assert(self && timeout_ms >= -1 && event);
    *event = NULL;
    s_clear_error(self);
    int64_t deadline = timeout_ms < 0 ? S_FOREVER : s_deadline(timeout_ms);
    while (zlist_size(self->events) == 0) {
        if (self->nsubs == 0)
            return s_fail(self, ENGRAM_EINVAL, "no subscription on this connection");
        int64_t look_again = s_probe(self);
        if (zlist_size(self->events))
            break; /* the node did not answer the probe */
        Engram__Reply *reply = NULL;
        int rc = s_pump(self, look_again < deadline ? look_again : deadline, true, &reply);
        if (rc == ENGRAM_ETIMEDOUT && look_again < deadline)
            continue; /* time to look at the probe, not the caller's deadline */
        if (rc == S_INTERRUPTED)
            return ENGRAM_ETIMEDOUT;
        if (rc != 0 && rc != ENGRAM_EUNAVAILABLE) /* a loss: the subscriptions' ends queued */
            return rc;
        if (reply)
            engram__reply__free_unpacked(reply, NULL);
    }
    Engram__Reply *reply = zlist_pop(self->events);
    int rc;
    if (reply->code != 0) {
        s_unsubscribed(self, reply->id);
        rc = s_fail(self, reply->code < 0 ? reply->code : ENGRAM_EDECODE, "%s", reply->message);
    } else if (reply->schema_major > ENGRAM_SCHEMA_MAJOR)
        rc = s_fail(self, ENGRAM_EVERSION, "the node sent an event in schema %u.%u",
                    reply->schema_major, reply->schema_minor);
    else
        rc = s_event_new(reply->event, event);
    engram__reply__free_unpacked(reply, NULL);
    return rc;
}

int engram_stats(engram_t *self, engram_stats_t *stats)
{
    assert(self && stats);
    memset(stats, 0, sizeof *stats);
    Engram__Request req = s_request(ENGRAM__OP__STATS, NULL, NULL);
    Engram__Reply *reply = NULL;
    int rc = s_call(self, &req, self->timeout_ms, &reply);
    if (rc != 0)
        return rc;
    const Engram__Stats *s = reply->stats;
    if (!s)
        rc = s_fail(self, ENGRAM_EDECODE, "the node's reply carries no stats");
    else {
        stats->node_id = s->node_id;
        stats->replica_id = s->replica_id;
        stats->uptime_ms = s->uptime_ms;
        stats->requests = s->requests;
        stats->errors = s->errors;
        stats->writes = s->writes;
        stats->commits = s->commits;
        stats->scopes = s->scopes;
        stats->subscribers = s->subscribers;
        stats->purged = s->purged;
        stats->malformed = s->malformed;
        stats->clock_refusals = s->clock_refusals;
        stats->parked = s->parked;
        stats->busy_refusals = s->busy_refusals;
        stats->connections_cut = s->connections_cut;
        stats->connections = s->connections;
        stats->hlc = s->hlc;
        snprintf(stats->durability, sizeof stats->durability, "%s", s_str(s->durability));
    }
    engram__reply__free_unpacked(reply, NULL);
    return rc;
}

int engram_put_if_version(engram_t *self, const char *scope, const char *key, const void *value,
                          size_t len, const char *meta_json, uint64_t ttl_ms, const char *token,
                          engram_result_t **result)
{
    assert(self && scope && key && (value || len == 0) && token && result);
    *result = NULL;
    Engram__Request req = s_write(self, ENGRAM__OP__PUT, scope, key);
    req.value.data = (uint8_t *)value;
    req.value.len = len;
    req.meta_json = s_str(meta_json);
    req.ttl_ms = ttl_ms;
    int rc = s_token_decode(self, token, &req.if_version);
    if (rc == 0 && !req.if_version.len)
        rc = s_fail(self, ENGRAM_EINVAL, "the version token is empty");
    if (rc == 0)
        rc = s_call_result(self, &req, self->timeout_ms, result);
    free(req.if_version.data);
    return rc;
}

int engram_forget(engram_t *self, const char *scope, const char *filter_json, bool dry_run,
                  int64_t *count)
{
    assert(self && scope && count);
    *count = 0;
    char *cursor = NULL;
    int rc = 0;
    do {
        Engram__Request req = s_request(ENGRAM__OP__FORGET, scope, NULL);
        req.filter_json = s_str(filter_json);
        req.dry_run = dry_run;
        req.cursor = s_str(cursor);
        Engram__Reply *reply = NULL;
        rc = s_call(self, &req, self->timeout_ms, &reply);
        if (rc != 0)
            break;
        *count += reply->number;
        const char *next = s_str(reply->next_cursor);
        if (*next && cursor && strcmp(next, cursor) == 0)
            rc = s_fail(self, ENGRAM_EIO, "the node repeated the cursor %s", next);
        free(cursor);
        cursor = rc == 0 && *next ? s_strdup(next) : NULL;
        if (rc == 0 && *next && !cursor)
            rc = s_fail(self, ENGRAM_ENOMEM, "forgetting");
        engram__reply__free_unpacked(reply, NULL);
    } while (rc == 0 && cursor);
    free(cursor);
    return rc;
}

int engram_vote(engram_t *self, const char *scope, const char *key, int amount,
                engram_result_t **result)
{
    assert(self && scope && key && result);
    *result = NULL;
    Engram__Request req = s_request(ENGRAM__OP__VOTE, scope, key);
    req.amount = amount;
    return s_call_result(self, &req, self->timeout_ms, result);
}

int engram_put_replicated(engram_t *self, const char *scope, const char *key, const void *value,
                          size_t len, const char *meta_json, uint64_t ttl_ms, unsigned replicas,
                          int timeout_ms, engram_result_t **result)
{
    assert(self && scope && key && (value || len == 0) && timeout_ms >= 0 && result);
    *result = NULL;
    Engram__Request req = s_write(self, ENGRAM__OP__PUT, scope, key);
    req.value.data = (uint8_t *)value;
    req.value.len = len;
    req.meta_json = s_str(meta_json);
    req.ttl_ms = ttl_ms;
    req.replicas = replicas;
    req.timeout_ms = (uint32_t)timeout_ms;
    int64_t wait = timeout_ms ? timeout_ms : ENGRAM_DEFAULT_REPLICAS_TIMEOUT_MS;
    return s_call_result(self, &req, self->timeout_ms + wait, result);
}

void engram_cluster_destroy(engram_cluster_t **self_p)
{
    assert(self_p);
    engram_cluster_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nmembers; i++)
        free(self->members[i].endpoint);
    for (size_t i = 0; i < self->nscopes; i++) {
        free(self->scopes[i].scope);
        free(self->scopes[i].vector);
    }
    free(self->members);
    free(self->scopes);
    free(self->cluster_id);
    free(self->endpoint);
    free(self->status_page);
    free(self);
    *self_p = NULL;
}

static int s_cluster_new(const Engram__ClusterStatus *c, engram_cluster_t **status)
{
    engram_cluster_t *self = calloc(1, sizeof *self);
    if (!self)
        return ENGRAM_ENOMEM;
    self->cluster_id = s_strdup(c->cluster_id);
    self->node_id = c->node_id;
    self->endpoint = s_strdup(c->endpoint);
    self->members = calloc(c->n_members + 1, sizeof *self->members);
    self->scopes = calloc(c->n_scopes + 1, sizeof *self->scopes);
    bool ok = self->cluster_id && self->endpoint && self->members && self->scopes;
    for (size_t i = 0; ok && i < c->n_members; i++, self->nmembers++) {
        const Engram__Member *m = c->members[i];
        engram_member_t *out = &self->members[i];
        out->id = m->id;
        snprintf(out->state, sizeof out->state, "%s", s_str(m->state));
        out->incarnation = m->incarnation;
        out->endpoint = s_strdup(m->endpoint);
        out->lag_known = m->lag_known;
        out->lag_ops = m->lag_ops;
        out->lag_bytes = m->lag_bytes_unmeasured ? UINT64_MAX : m->lag_bytes;
        ok = out->endpoint != NULL;
    }
    for (size_t i = 0; ok && i < c->n_scopes; i++, self->nscopes++) {
        const Engram__ScopeStatus *sc = c->scopes[i];
        self->scopes[i].scope = s_strdup(sc->scope);
        self->scopes[i].vector = s_strdup(sc->vector);
        self->scopes[i].ops = sc->ops;
        self->scopes[i].garbage = sc->garbage;
        ok = self->scopes[i].scope && self->scopes[i].vector;
    }
    self->pushes_sent = c->pushes_sent;
    self->pushes_applied = c->pushes_applied;
    self->pushes_held_back = c->pushes_held_back;
    self->digests_sent = c->digests_sent;
    self->pulls_answered = c->pulls_answered;
    self->pull_deltas_applied = c->pull_deltas_applied;
    self->lean_deltas = c->lean_deltas;
    self->compressed_sent = c->compressed_sent;
    self->compression_saved = c->compression_saved;
    self->acks_sent = c->acks_sent;
    self->acks_deferred = c->acks_deferred;
    self->bytes_sent = c->bytes_sent;
    self->bytes_received = c->bytes_received;
    self->bad_messages = c->bad_messages;
    self->local_health = c->local_health;
    snprintf(self->storage, sizeof self->storage, "%s", s_str(c->storage));
    self->bad_scope = c->bad_scope;
    self->status_page = s_strdup(c->status_page);
    ok = ok && self->status_page;
    if (!ok) {
        engram_cluster_destroy(&self);
        return ENGRAM_ENOMEM;
    }
    *status = self;
    return 0;
}

int engram_cluster_status(engram_t *self, engram_cluster_t **status)
{
    assert(self && status);
    *status = NULL;
    Engram__Request req = s_request(ENGRAM__OP__CLUSTER_STATUS, NULL, NULL);
    Engram__Reply *reply = NULL;
    int rc = s_call(self, &req, self->timeout_ms, &reply);
    if (rc != 0)
        return rc;
    rc = reply->cluster ? s_cluster_new(reply->cluster, status)
                        : s_fail(self, ENGRAM_EDECODE, "the node's reply carries no cluster");
    engram__reply__free_unpacked(reply, NULL);
    return rc;
}

int engram_cluster_remove(engram_t *self, uint64_t node_id, const void *statement, size_t len)
{
    assert(self && statement);
    Engram__Request req = s_request(ENGRAM__OP__CLUSTER_REMOVE, NULL, NULL);
    req.node = node_id;
    req.statement.data = (uint8_t *)statement;
    req.statement.len = len;
    Engram__Reply *reply = NULL;
    int rc = s_call(self, &req, self->timeout_ms, &reply);
    if (rc == 0)
        engram__reply__free_unpacked(reply, NULL);
    return rc;
}

int engram_cluster_join(engram_t *self, const char *endpoint)
{
    assert(self && endpoint);
    Engram__Request req = s_request(ENGRAM__OP__CLUSTER_JOIN, NULL, NULL);
    req.endpoint = (char *)endpoint;
    Engram__Reply *reply = NULL;
    int rc = s_call(self, &req, self->timeout_ms, &reply);
    if (rc == 0)
        engram__reply__free_unpacked(reply, NULL);
    return rc;
}

int engram_snapshot(engram_t *self, const char *dir)
{
    assert(self && dir);
    Engram__Request req = s_request(ENGRAM__OP__SNAPSHOT, NULL, NULL);
    req.path = (char *)dir;
    Engram__Reply *reply = NULL;
    int rc = s_call(self, &req, self->timeout_ms, &reply);
    if (rc == 0)
        engram__reply__free_unpacked(reply, NULL);
    return rc;
}

/*  ---------------------------------------------------------------------------------------
 *  Access control.
 */

int engram_acl_submit(engram_t *self, const void *statement, size_t len, char **id_hex)
{
    assert(self && statement && len);
    if (id_hex)
        *id_hex = NULL;
    Engram__Request req = s_request(ENGRAM__OP__ACL_SUBMIT, NULL, NULL);
    req.statement.data = (uint8_t *)statement;
    req.statement.len = len;
    Engram__Reply *reply = NULL;
    int rc = s_call(self, &req, self->timeout_ms, &reply);
    if (rc != 0)
        return rc;
    if (id_hex) {
        size_t size = 2 * reply->statement_id.len + 1;
        *id_hex = malloc(size);
        if (*id_hex)
            sodium_bin2hex(*id_hex, size, reply->statement_id.data, reply->statement_id.len);
        else
            rc = s_fail(self, ENGRAM_ENOMEM, "the statement's id");
    }
    engram__reply__free_unpacked(reply, NULL);
    return rc;
}

/*  Runs req and hands the caller the JSON document of its reply (*json, the caller's to
 *  free). */
static int s_call_json(engram_t *self, Engram__Request *req, char **json)
{
    Engram__Reply *reply = NULL;
    int rc = s_call(self, req, self->timeout_ms, &reply);
    if (rc != 0)
        return rc;
    if (!(*json = strdup(s_str(reply->json))))
        rc = s_fail(self, ENGRAM_ENOMEM, "the node's answer");
    engram__reply__free_unpacked(reply, NULL);
    return rc;
}

int engram_acl_show(engram_t *self, uint64_t at_ms, char **json)
{
    assert(self && json);
    *json = NULL;
    Engram__Request req = s_request(ENGRAM__OP__ACL_SHOW, NULL, NULL);
    req.at_ms = at_ms;
    return s_call_json(self, &req, json);
}

int engram_acl_check(engram_t *self, const char *agent, const char *user, const char *scope,
                     uint64_t at_ms, char **json)
{
    assert(self && agent && user && scope && json);
    *json = NULL;
    Engram__Request req = s_request(ENGRAM__OP__ACL_CHECK, scope, NULL);
    req.check_agent = (char *)agent;
    req.check_user = (char *)user;
    req.at_ms = at_ms;
    return s_call_json(self, &req, json);
}

/*  ---------------------------------------------------------------------------------------
 *  Batches: requests packed as they are queued, sent in order with at most
 *  ENGRAM_BATCH_WINDOW awaiting their replies, each reply matched to its request by id.
 */

typedef struct {
    zframe_t *frame;         /* the packed request; freed once sent */
    uint64_t id;             /* its Request.id */
    int64_t wait_ms;         /* how long its reply may take (a read with a token waits) */
    int code;                /* its outcome; 1 while it awaits one */
    char *message;           /* the node's message with a code, else NULL */
    engram_result_t *result; /* with code 0 */
} s_batched_t;

struct engram_batch {
    engram_t *engram; /* borrowed */
    s_batched_t *requests;
    size_t n, cap;
    bool ran;
};

engram_batch_t *engram_batch_new(engram_t *engram)
{
    assert(engram);
    engram_batch_t *self = calloc(1, sizeof *self);
    if (self)
        self->engram = engram;
    return self;
}

void engram_batch_reset(engram_batch_t *self)
{
    assert(self);
    for (size_t i = 0; i < self->n; i++) {
        zframe_destroy(&self->requests[i].frame);
        free(self->requests[i].message);
        engram_result_destroy(&self->requests[i].result);
    }
    self->n = 0;
    self->ran = false;
}

void engram_batch_destroy(engram_batch_t **self_p)
{
    assert(self_p);
    engram_batch_t *self = *self_p;
    if (!self)
        return;
    engram_batch_reset(self);
    free(self->requests);
    free(self);
    *self_p = NULL;
}

/*  Packs req as the batch's next request. */
static int s_batch_add(engram_batch_t *self, Engram__Request *req, int64_t wait_ms)
{
    s_clear_error(self->engram);
    if (self->ran || self->n == ENGRAM_BATCH_MAX)
        return s_fail(self->engram, ENGRAM_EINVAL,
                      self->ran ? "the batch has run: engram_batch_reset empties it"
                                : "a batch holds at most %d requests",
                      ENGRAM_BATCH_MAX);
    if (crdt_array_grow((void **)&self->requests, &self->cap, self->n + 1,
                        sizeof *self->requests) != 0)
        return ENGRAM_ENOMEM;
    int rc = 0;
    zframe_t *frame = s_pack(self->engram, req, &rc);
    if (!frame)
        return rc;
    self->requests[self->n++] =
        (s_batched_t){.frame = frame, .id = req->id, .wait_ms = wait_ms, .code = 1};
    return 0;
}

int engram_batch_put(engram_batch_t *self, const char *scope, const char *key, const void *value,
                     size_t len)
{
    assert(self && scope && key && (value || len == 0));
    Engram__Request req = s_write(self->engram, ENGRAM__OP__PUT, scope, key);
    req.value.data = (uint8_t *)value;
    req.value.len = len;
    return s_batch_add(self, &req, self->engram->timeout_ms);
}

int engram_batch_get(engram_batch_t *self, const char *scope, const char *key)
{
    assert(self && scope && key);
    Engram__Request req = s_read_request(self->engram, ENGRAM__OP__GET, scope, key);
    return s_batch_add(self, &req, s_read_wait(self->engram, &req));
}

/*  The request that reply answers, if it is one of the batch's sent and still awaiting;
 *  replies come in order but for parked reads, so the search starts at the oldest awaiting. */
static s_batched_t *s_batch_match(engram_batch_t *self, size_t oldest, size_t sent,
                                  const Engram__Reply *reply)
{
    for (size_t i = oldest; i < sent; i++)
        if (self->requests[i].id == reply->id && self->requests[i].code == 1)
            return &self->requests[i];
    return NULL;
}

int engram_batch_run(engram_batch_t *self)
{
    assert(self);
    engram_t *engram = self->engram;
    s_clear_error(engram);
    if (self->ran)
        return s_fail(engram, ENGRAM_EINVAL, "the batch has run: engram_batch_reset empties it");
    self->ran = true;
    int rc = s_keys(engram);
    size_t sent = 0, answered = 0, oldest = 0;
    int64_t wait_ms = engram->timeout_ms;
    for (size_t i = 0; i < self->n; i++)
        if (self->requests[i].wait_ms > wait_ms)
            wait_ms = self->requests[i].wait_ms;
    int64_t deadline = s_deadline(wait_ms); /* moved on by every reply */
    while (rc == 0 && answered < self->n) {
        if (sent < self->n && sent - answered < ENGRAM_BATCH_WINDOW) {
            rc = s_send(engram, self->requests[sent].frame, deadline, wait_ms);
            zframe_destroy(&self->requests[sent].frame);
            sent += rc == 0;
            continue;
        }
        Engram__Reply *reply = NULL;
        rc = s_pump(engram, deadline, false, &reply);
        if (rc == ENGRAM_ETIMEDOUT)
            rc = s_fail(engram, ENGRAM_EUNAVAILABLE, "no reply from %s within %lld ms",
                        engram->endpoint, (long long)wait_ms);
        if (reply && s_is_cut(reply)) /* what waits is never answered: the batch stops */
            rc = s_fail(engram, reply->code,
                        "%s (libengram connected anew; whether the requests sent and not "
                        "answered were done is unknown)",
                        s_str(reply->message));
        s_batched_t *req = reply && rc == 0 ? s_batch_match(self, oldest, sent, reply) : NULL;
        if (req) {
            req->code = s_outcome(reply, &req->message);
            if (req->code == 0)
                req->code = s_result_new(reply, &req->result);
            answered++;
            while (oldest < self->n && self->requests[oldest].code != 1)
                oldest++;
            deadline = s_deadline(wait_ms);
        }
        if (reply)
            engram__reply__free_unpacked(reply, NULL);
    }
    for (size_t i = 0; i < self->n; i++) {
        zframe_destroy(&self->requests[i].frame);
        if (self->requests[i].code == 1)
            self->requests[i].code = rc;
    }
    return rc;
}

size_t engram_batch_size(const engram_batch_t *self)
{
    assert(self);
    return self->n;
}

int engram_batch_code(const engram_batch_t *self, size_t i)
{
    assert(self && i < self->n);
    return self->ran ? self->requests[i].code : ENGRAM_EINVAL;
}

const char *engram_batch_error(const engram_batch_t *self, size_t i)
{
    assert(self && i < self->n);
    return self->requests[i].message ? self->requests[i].message : "";
}

const engram_result_t *engram_batch_result(const engram_batch_t *self, size_t i)
{
    assert(self && i < self->n);
    return self->requests[i].result;
}
