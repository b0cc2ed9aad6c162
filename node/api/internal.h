/*  node/api internals: the state of the agent API server and the helpers its files share.
 *
 *  The server is single-threaded: every field below is touched only by the thread that runs
 *  node_server_run. Its files, one concern each:
 *    server.c    the loop: a turn reads requests (each with its connection's CURVE key and
 *                socket), runs them, syncs once, then answers (group commit); connections as
 *                the socket monitor reports them; reads parked for their causal token, writes
 *                held for the dot check; the CURVE socket and its published key
 *    token.c     causal tokens: issued with every reply, decoded once for a read that waits
 *    handlers.c  validation of names, scopes and keys, and one handler per operation
 *    reply.c     the per-request arena and the Reply under construction
 *    delivery.c  the outbox, per-connection queues and their byte budget, subscriptions and
 *                events, replica waits
 *    remote.c    events for the changes other nodes make (remote deltas)
 *    access.c    identity from the connection's key, access decisions, write policy, the
 *                statements of sys:acl and the ACL operations
 *    search.c    SEARCH and CONTEXT: rankings over the store's index, filters, boosts, the
 *                prompt block; the check of a write's embedding
 *    observe.c   monitoring: replies by operation, code and latency, group commits, samples
 *                of the totals, and the JSON documents the HTTP listener (node/http) asks for
 *    busy_poll.c how long the loop looks for work before it sleeps (--busy-poll-us), a
 *                window adapted to how close together requests come
 *
 *  Invariants: a reply that acknowledges a write leaves only after the write is durable
 *  (api__flush_outbox after node_store_sync); a connection's replies are dropped only when
 *  it is cut: when what waits for it passes ENGRAM_CONNECTION_BYTE_BUDGET, its queue, parked
 *  reads and subscriptions go and it gets one ENGRAM_EBUSY reply (id 0), after which nothing
 *  more is sent to it nor any request of it answered until it disconnects; everything a Reply
 *  points at lives in its arena until it is encoded. What a connection holds (subscriptions,
 *  parked reads, queued replies, replica waits) goes when libzmq reports it disconnected, and
 *  is bounded while it lasts: ENGRAM_MAX_SUBSCRIPTIONS_PER_CONNECTION,
 *  ENGRAM_MAX_PARKED_PER_CONNECTION (and ENGRAM_MAX_PARKED in all), ENGRAM_MAX_REPLICA_WAITS
 *  in all (each its reply only; a turn's writes may pass it by max_batch), the byte budget,
 *  plus what libzmq's own pipes hold: at most API_PIPE_IN_HWM requests in, and out at most
 *  API_PIPE_OUT_HWM messages and, counted by the connection's pipe gauge, API_PIPE_OUT_BYTES
 *  bytes (or one message, if larger). The outbox holds at most one turn's replies: the
 *  requests it read (up to max_batch) and what it released (held writes, parked reads), sent
 *  at its end or sooner.
 */
#ifndef NODE_API_INTERNAL_H
#define NODE_API_INTERNAL_H

#include <czmq.h>
#include <jansson.h>
#include <stdatomic.h>

#include "crdt/hlc.h"
#include "crdt/value.h"
#include "node/api/busy_poll.h"
#include "node/api/server.h"
#include "node/cluster/cluster.h"
#include "node/search/filter.h"
#include "node/store/store.h"
#include "node/trust/acl.h"
#include "proto/api.pb-c.h"

#define MAX_SCOPE_BYTES 256
#define MAX_NAME_BYTES  128       /* agent and user names; "@" + agent must fit a scope id */
#define API_ACL_SCOPE   "sys:acl" /* the access statements: no agent can name a sys: scope */
/*  A counter contribution's name: "<agent> SEP <user>" (no name holds a control character). */
#define API_CONTRIBUTOR_SEP '\x1f'
/*  A causal token names the scope a read touches: one, its context at most this large (a
 *  version vector of thousands of nodes); a larger token is refused before it is decoded. */
#define API_TOKEN_MAX_SCOPES 1
#define API_TOKEN_MAX_BYTES  (16 * 1024)
/*  A parked read keeps its request packed again without its value, metadata and token: its
 *  names, scope, key, prefix, cursor and filter, at most this large. */
#define API_PARKED_READ_MAX_BYTES (8 * 1024)
/*  What libzmq keeps in the pipe of one connection. In: requests (ZMQ_RCVHWM), up to a megabyte
 *  each. Out: replies and events (ZMQ_SNDHWM), and at most API_PIPE_OUT_BYTES of them by the
 *  connection's gauge (api_gauge_t; a larger message passes alone), since libzmq counts
 *  messages, not bytes: its default of 1000 held a gigabyte for one client that does not read.
 *  Past either, what is sent waits in the connection's queue, under its byte budget, and is
 *  tried again each turn and at least every 10 ms (nothing wakes the loop when the I/O thread
 *  empties a pipe). The out pipe holds many messages because a pipe of a few paces a
 *  subscriber's events: libzmq lets the writer refill only after the I/O thread took half of
 *  them and told the loop (16 messages held a subscriber on another node to lag seconds
 *  behind 10k writes/s, README). */
#define API_PIPE_IN_HWM    16
#define API_PIPE_OUT_HWM   1024
#define API_PIPE_OUT_BYTES (1024 * 1024)

/*  The bytes of a connection's replies and events in libzmq's pipe: added when one is sent,
 *  taken off by libzmq's free callback once its I/O thread has taken that message from the
 *  pipe (the callback may run on that thread, hence atomics). Owned by the connection and by
 *  each message in flight together: the last to let go frees it (api__gauge_release). */
typedef struct {
    atomic_size_t bytes;
    atomic_size_t holders;
} api_gauge_t;

api_gauge_t *api__gauge_new(void);
void api__gauge_release(api_gauge_t *gauge);

/*  The longest a write with replicas waits for them: a larger timeout_ms is clamped. */
#define API_MAX_REPLICAS_TIMEOUT_MS ENGRAM_MAX_AFTER_TIMEOUT_MS

/*  A connection to the API socket, from libzmq's ACCEPTED until its DISCONNECTED (the socket
 *  monitor's events, which name its file descriptor, as ZMQ_SRCFD names each message's). */
typedef struct {
    int fd;
    api_gauge_t *pipe;       /* held: the bytes its out pipe holds */
    zframe_t *routing;       /* owned: its routing id; NULL until its first request */
    char *id;                /* owned: the hex of routing, its key in routes; NULL until then */
    zhashx_t *subscriptions; /* sid -> api_subscriber_t *, owned */
    size_t parked;           /* its reads parked for their token */
    bool cut; /* it left more than its byte budget unread: nothing more is sent to it (but its
                 EBUSY reply) nor any request of it answered */
} api_conn_t;

/*  One subscription: owned by its connection's subscriptions, listed (not owned) in the
 *  server's subscribers under its scope. Each event is judged for its agent and user, and
 *  only while client_key is still registered as that agent, living on this node (a key's
 *  registration can be revoked or end while it subscribes: the subscription then ends). */
typedef struct {
    api_conn_t *conn; /* borrowed: the subscriber's connection (it owns this) */
    uint64_t request_id;
    char *sid;              /* owned */
    char *agent;            /* owned: who subscribed, for whom: each event is judged for them */
    char *user;             /* owned */
    uint8_t client_key[32]; /* the CURVE key the SUBSCRIBE came with */
    void *handle;           /* its place in the server's list of sid's subscribers */
} api_subscriber_t;

/*  A connection whose pipe was full: what it has still to receive, in order. Events past
 *  subscriber_backlog end the connection's subscriptions; past the byte budget the
 *  connection is cut (the queue holds only its EBUSY reply). */
typedef struct {
    zframe_t *routing; /* owned */
    zlist_t *queue;    /* api_queued_t *, owned */
    size_t events;     /* how many queued items are subscription events */
    size_t bytes;      /* the queued payloads' bytes */
    bool cut;          /* past the budget: nothing more is queued */
} api_peer_t;

typedef struct {
    zframe_t *payload; /* owned */
    bool event;
} api_queued_t;

/*  A shared write waiting for the dot check. */
typedef struct {
    zframe_t *routing;        /* owned */
    Engram__Request *request; /* owned (unpacked) */
    uint8_t client_key[32];   /* the CURVE key the request came with */
    int64_t started_us;       /* when it was first handled (zclock_usecs) */
} api_parked_t;

/*  One scope a causal token names: its storage id and the context the read waits for. */
typedef struct {
    char sid[MAX_SCOPE_BYTES + 2];
    crdt_ctx_t *want; /* owned */
} api_token_scope_t;

/*  A causal token, decoded (api__token_open); closed with api__token_close. */
typedef struct {
    api_token_scope_t scopes[API_TOKEN_MAX_SCOPES];
    size_t n;
    uint64_t hlc; /* the issuing node's clock; 0: none sent */
} api_token_t;

/*  A read parked until the node has seen its causal token, or its deadline. */
typedef struct {
    api_conn_t *conn;  /* borrowed: the connection it came on (it outlives this) */
    zframe_t *routing; /* owned */
    uint8_t *request;  /* owned: the request packed again without `after` or a value */
    size_t request_len;
    uint8_t client_key[32]; /* the CURVE key the request came with */
    api_token_t token;      /* owned: what it waits for */
    int64_t deadline_ms;    /* api__mono_ms */
    uint32_t timeout_ms;    /* as clamped, for the timeout's message */
    Engram__Op op;          /* for monitoring: the read's operation, and when it was first */
    int64_t started_us;     /* handled (zclock_usecs) */
} api_waiting_t;

/*  One reply of this turn, sent once the turn's writes are durable. */
typedef struct {
    zframe_t *routing; /* owned */
    uint64_t id;
    uint8_t *reply; /* owned: the encoded success (or error) Reply */
    size_t reply_len;
    bool wrote;      /* acknowledges a write: replaced by an error if the sync fails */
    bool remote;     /* only the event of a change another node made: in a turn whose outbox
                      * holds nothing else, it leaves before the sync (api__publish_remote) */
    char *event_sid; /* owned: scope whose subscribers get event, or NULL */
    uint8_t *event;  /* owned: encoded Event */
    size_t event_len;
    unsigned replicas; /* > 1: the reply waits until that many nodes hold the write */
    unsigned holders;  /* how many did when last looked at (this one included) */
    char *write_sid;   /* owned, with replicas: the scope and the write's dot */
    crdt_dot_t dot;
    int64_t deadline_ms; /* api__mono_ms */
    Engram__Op op;       /* for monitoring: the request's operation, code and start */
    int code;
    int64_t started_us; /* zclock_usecs */
} api_out_t;

/*  Monitoring (observe.c). Operations and codes past these bounds are counted as "other". */
#define API_OBSERVE_OPS     48
#define API_OBSERVE_CODES   32
#define API_LATENCY_BUCKETS 17 /* upper bounds in observe.c, then +Inf */
#define API_COUNT_BUCKETS   10 /* counts a turn: 1, 2, 4 ... 512, then +Inf */
#define API_SAMPLE_MS       5000
#define API_SAMPLES         72 /* six minutes of rates for the status page */
/*  The metrics and status documents cost what the cluster's status costs (node/cluster's
 *  node_cluster_status: every scope's op records counted, each member's lag measured): each is
 *  made at most once in this long, however many ask, and a member's lag in bytes is measured
 *  only within this many operations encoded per document, or per CLUSTER_STATUS request (its
 *  engram_member_t.lag_bytes says UINT64_MAX past it). */
#define API_OBSERVE_REFRESH_MS    2000
#define API_OBSERVE_LAG_BYTES_OPS 10000

/*  A histogram of counts (api__observe_count): how many were at most 1, 2, 4 ... 512, and
 *  above, not cumulative; and their sum. */
typedef struct {
    uint64_t buckets[API_COUNT_BUCKETS + 1];
    uint64_t sum;
} api_counts_t;

typedef struct {
    int64_t at_ms;
    uint64_t requests, errors, writes, bytes_sent, bytes_received, deltas_applied;
} api_sample_t;

typedef struct {
    uint64_t replies[API_OBSERVE_OPS][API_OBSERVE_CODES];
    uint64_t latency[API_OBSERVE_OPS][API_LATENCY_BUCKETS + 1]; /* not cumulative */
    double latency_sum[API_OBSERVE_OPS];                        /* seconds */
    api_counts_t commits;              /* writes a group commit acknowledged */
    api_counts_t gossip_reads;         /* gossip messages a turn read, turns that read any */
    api_sample_t samples[API_SAMPLES]; /* a ring: the oldest at next_sample once full */
    size_t n_samples, next_sample;
    int64_t next_sample_ms;
    zsock_t *socket;      /* PAIR to the HTTP listener's thread (node_server_observe), or NULL */
    char *cached[2];      /* owned: the last metrics and status documents (JSON), or NULL */
    char *page_url;       /* owned: the listener's status page (cluster status names it), or NULL */
    int64_t cached_at[2]; /* api__mono_ms when each was made */
} api_observed_t;

struct node_server {
    node_server_config_t config;
    busy_poll_t busy_poll;    /* the loop's look for work before it sleeps (--busy-poll-us) */
    node_store_t *store;      /* borrowed: the daemon opens and closes it */
    zsock_t *router;          /* CURVE server, ZAP domain NODE_ZAP_API */
    uint8_t curve_public[32]; /* the router's CURVE key, derived from the node's identity */
    char *published;          /* owned: PATH.pub of an ipc://PATH endpoint once published */
    zsock_t *monitor;         /* PAIR: the router's ACCEPTED and DISCONNECTED events */
    zhash_t *conns;           /* fd (decimal) -> api_conn_t *, owned: the open connections */
    zhash_t *routes;          /* routing id (hex) -> api_conn_t * (in conns) */
    zhash_t *subscribers;     /* sid -> zlistx_t * of api_subscriber_t * (the connections' own) */
    zhash_t *peers;  /* routing id (hex) -> api_peer_t *, owned: connections with a backlog */
    zlist_t *parked; /* api_waiting_t *, owned: reads waiting for their token */
    int64_t parked_next_ms; /* the earliest deadline of parked */
    zhashx_t *changed;      /* sid -> "": scopes whose context grew since parked was checked */
    zlist_t *held;          /* api_parked_t *: shared writes waiting for the dot check, in order */
    zlist_t *outbox;        /* api_out_t *, this turn's replies */
    zlist_t *replicating;   /* api_out_t *, durable writes waiting for replicas */
    zlist_t *removals; /* api_removal_t *, owned: what the remote delta being applied removes */
    crdt_ctx_t *held_before;     /* owned: the scope's context before that delta (its entries
                                    already held get no event), or NULL */
    node_cluster_t *cluster;     /* borrowed; NULL: a single node */
    node_acl_t *acl;             /* borrowed: the daemon's */
    zlist_t *pending_statements; /* zframe_t *: imported statements not yet in sys:acl */
    uint64_t denials;            /* requests refused with ENGRAM_EDENIED */
    uint64_t redactions;         /* matches the write policy replaced */
    int64_t started_ms;
    int64_t next_purge_ms;
    /* held: the gauge of the out pipes of connections not in conns (inproc, or not yet
     * reported by the monitor) */
    api_gauge_t *unrecorded_pipe;
    Engram__Stats stats;
    api_observed_t observed;
};

typedef struct {
    void *ptr;
    void (*destroy)(void *ptr);
} api_owned_t;

typedef struct {
    api_owned_t *owned;
    size_t n;
    size_t cap;
    bool failed;
} api_arena_t;

/*  Who reads, for the provenance checks of the fragments a read returns. */
typedef struct {
    node_server_t *self;
    const char *agent;
    const char *user;
    const char *sid;
} api_reader_t;

/*  The reply under construction. */
typedef struct {
    Engram__Reply msg;
    Engram__Item **items;
    size_t cap;
    api_arena_t arena;
    const char *sid;   /* the scope touched, for the token */
    const char *scope; /* its name as the agent wrote it */
    bool wrote;
    crdt_dot_t dot;    /* the write's dot */
    unsigned replicas; /* nodes that must hold the write before the reply */
    uint32_t timeout_ms;
    Engram__Event *event;       /* in the arena: published with the reply (server.h) */
    const api_reader_t *reader; /* scoped operations: whose reads are filtered */
    bool admin;                 /* the connection's key is an admin's */
    Engram__Op op;              /* the request's operation (OP_NONE: not a request) */
    int64_t started_us;         /* zclock_usecs when the node began handling it */
    const uint8_t *client_key;  /* 32 bytes: the request's CURVE key; NULL: no request's (a
                                 * remote change, a statement of acl.init) */
    bool remote;                /* only the event of a change another node made */
    char message[256];
} api_reply_t;

/*  A live entry a remote delta is about to remove, with its provenance (read before it goes,
 *  so that its removal's event is judged as the entry was). */
typedef struct {
    char *key;
    char *elem;
    crdt_type_id_t type;
    crdt_value_t *provenance; /* owned; NULL when the entry had none */
} api_removal_t;

Engram__Item *api__add_item(api_reply_t *r);

void api__arena_free(api_arena_t *a);

/*  Answers the writes waiting for replicas that now have them, or whose time is up: the
 *  write stays durable here either way, and the reply says how many nodes held it. */
void api__check_replicating(node_server_t *self);

/*  The checks api__dispatch makes of every request before its operation (key, metadata,
 *  sizes, replicas, TTL): 0 or the refusal (in r). */
int api__check_input(node_server_t *self, const Engram__Request *req, api_reply_t *r);

bool api__cluster_op(Engram__Op op);

/*  Drops what a connection holds in delivery (its subscriptions, queue and replica waits) and
 *  its parked reads (server.c); the connection itself stays. */
void api__forget_delivery(node_server_t *self, api_conn_t *conn);
void api__drop_parked(node_server_t *self, api_conn_t *conn);

/*  The operations that read a scope; each may wait for a causal token (`after`). */
bool api__op_reads(Engram__Op op);

int api__dispatch(node_server_t *self, const Engram__Request *req, const char *sid, api_reply_t *r);

/*  Formats the reply's error message (cut at a character boundary if it is too long); returns
 *  code. What a request sent is shown only through api__quote. */
int api__fail(api_reply_t *r, int code, const char *fmt, ...);

/*  The longest quote api__quote makes, in bytes. */
#define API_QUOTE_BYTES 64
/*  text (what a request sent) as an error message may show it, in the reply's arena: each
 *  character that is not visible (control, format, separator but the ASCII space, surrogate,
 *  private use, unassigned) written \u and four hex digits (\U and eight past U+FFFF), a
 *  backslash \\, a byte that is not UTF-8 \x and two hex digits; cut at a character boundary with
 * "..." past API_QUOTE_BYTES. "" when memory runs out. */
const char *api__quote(api_reply_t *r, const char *text);

/*  Refuses a request one of whose string fields (field, NULL: unknown) is not UTF-8 or holds
 *  a NUL (node_wire_check_strings) with ENGRAM_EINVAL, running nothing. Takes routing and
 *  *req_p. */
void api__refuse_bad_string(node_server_t *self, zframe_t *routing, Engram__Request **req_p,
                            const char *field);

/*  Sends this turn's replies once its writes are durable (sync_rc 0); if the sync failed,
 *  every write's acknowledgement becomes an error and its event is not published. */
void api__flush_outbox(node_server_t *self, int sync_rc);

/*  Publishes the outbox ahead of the turn's fsync if it holds nothing but events of changes
 *  other nodes made (a turn in which no request was answered or wrote), once the turn's
 *  writes are in the WAL's file (node_store_write_out). Anything else in it keeps all of it
 *  for after the fsync: a reply must come before events it does not reflect
 *  (a SUBSCRIBE's before its first event), and an event's token and totals would show the
 *  turn's own unsynced writes. */
void api__publish_remote(node_server_t *self);

/*  Sends what full connections have queued, as far as their pipes now take it. */
void api__flush_peers(node_server_t *self);

/*  Fills item from a stored register or log value; false if it is unreadable, expired, or
 *  (reader not NULL) hidden from the reader by its provenance. */
bool api__item_from_value(api_reply_t *r, Engram__Item *item, const crdt_entry_view_t *e,
                          const char *type, int64_t now, const api_reader_t *reader);

/*  --- search (search.c) --- */

/*  SEARCH: ranked results of every scope searched that the agent may read. */
int api__search(node_server_t *self, const Engram__Request *req, api_reply_t *r);
/*  What VOTE appends to a memory's key: the counter of its votes, in the same scope (listed,
 *  and read with COUNTER_GET, as any counter), which SEARCH's usefulness boost reads. */
#define API_VOTES_SUFFIX "#votes"
/*  Whether the value v a reader sees key by matches filter (author, user, key, created_at
 *  and updated_at in ms, metadata): SEARCH, LIST and FORGET alike. */
bool api__filter_matches(const search_filter_t *filter, const char *key, const crdt_value_t *v);
/*  CONTEXT: a prompt block of the best memories within a token budget. */
int api__context(node_server_t *self, const Engram__Request *req, api_reply_t *r);
/*  A write's embedding (Request.embedding): well-formed (node/search/vector.h), on a write of
 *  text, and of the dimension scope sid's embeddings have, if it has any. */
int api__check_embedding(node_server_t *self, const Engram__Request *req, const char *sid,
                         api_reply_t *r);
/*  The same for an embedding's bytes (SHARE: the private memory's). */
int api__check_embedding_of(node_server_t *self, const char *sid, const uint8_t *bytes, size_t len,
                            api_reply_t *r);

/*  --- access (access.c) --- */

/*  Cluster and ACL operations: they need an admin's key or an operator agent. */
bool api__admin_op(Engram__Op op);
/*  Takes the acting agent from the connection's key into req->agent (or marks an admin), and
 *  checks administration rights. ENGRAM_EDENIED for an unregistered key, an agent acting as
 *  another, or administration without the right. */
int api__identify(node_server_t *self, Engram__Request *req, api_reply_t *r);
/*  Checks that the identified agent may act for the user and read or write scope sid, then
 *  applies the write policy to the request (block, or redact its value, element and
 *  metadata in place and drop its embedding). */
int api__authorize(node_server_t *self, Engram__Request *req, const char *sid, api_reply_t *r);
/*  The write policy of shared scope sid applied to a value about to be stored there (what
 *  SHARE copies from a private scope): refused if blocked, its payload and metadata
 *  redacted in place and, if anything was, its embedding dropped. */
int api__redact_shared(node_server_t *self, const char *sid, api_reply_t *r, crdt_value_t *v);
/*  The retrospective check of one fragment (node_acl_may_read) for agent acting for user. */
bool api__may_read_provenance(node_server_t *self, const char *agent, const char *user,
                              const char *sid, const char *const *agents, size_t nagents,
                              const char *const *resources, size_t nresources);
/*  The same for a stored value. */
bool api__reader_may(const api_reader_t *reader, const crdt_value_t *v);
/*  Whether any element add (CRDT_SET) or contribution (CRDT_COUNTER) of key is readable. */
bool api__fragments_visible(const api_reader_t *reader, const crdt_scope_t *view, const char *key,
                            crdt_type_id_t type);
/*  Whether a set element's add is readable (its data is an encoded value with provenance). */
bool api__add_visible(const api_reader_t *reader, const crdt_entry_view_t *add);
/*  The length of the agent part of a counter contribution's name ("<agent> SEP <user>"). */
size_t api__contributor_agent_len(const char *contributor);
/*  The sum of the counter's contributions reader may see. */
int api__visible_sum(const api_reader_t *reader, const crdt_scope_t *view, const char *key,
                     int64_t *sum);
/*  Sets the provenance a write records: user, agent, the shared scope and declared sources. */
int api__set_provenance(crdt_value_t *v, const Engram__Request *req, const char *sid);
/*  Loads every statement of sys:acl into the acl (at start). */
int api__acl_load(node_server_t *self);
/*  Adds the statements a remote delta of sys:acl brought. */
void api__acl_ingest(node_server_t *self, const crdt_scope_t *delta);
/*  ACL_SUBMIT, ACL_SHOW, ACL_CHECK. */
int api__acl_request(node_server_t *self, const Engram__Request *req, api_reply_t *r);
/*  Keeps the statement (req->statement) the acl accepted in sys:acl, under the hex of its
 *  BLAKE2b-128 hash, so that no other statement, even one claiming its id, can displace it
 *  (handlers.c). */
int api__write_statement(node_server_t *self, const Engram__Request *req, api_reply_t *r);
uint64_t api__acl_now(void);

void *api__keep(api_arena_t *a, void *p);

/*  Hands p to the arena, which calls destroy(p) when it is freed; NULL (after destroying p)
 *  if p is NULL or memory ran out. */
void *api__keep_with(api_arena_t *a, void *p, void (*destroy)(void *ptr));

/*  Whether name is empty or a name (node/common/names.h: NFC, visible characters only). */
bool api__name_ok(const char *name);

/*  Wall-clock ms (HLC stamps, TTLs, access-control times). */
int64_t api__now_ms(void);
/*  Monotonic ms, for deadlines (parked reads, replica waits): a clock step never stretches or
 *  ends a wait. */
int64_t api__mono_ms(void);

void api__out_free(api_out_t **out_p);

/*  Encodes the reply (and its event) into the outbox. */
void api__queue_reply(node_server_t *self, zframe_t *routing, uint64_t id, int code,
                      api_reply_t *r);

/*  A delta from another node: before it is applied, the local entries it removes are noted;
 *  after, its new entries and those removals become events for the scope's subscribers. */
void api__remote_applied(void *arg, const char *sid, const crdt_scope_t *delta, bool applied);

void api__removal_free(void *item);

/*  Initialises reply with the protocol's header: schema version, request id and code. */
void api__reply_header(Engram__Reply *reply, uint64_t id, int code);

/*  Starts an empty reply under construction, with its header. */
void api__reply_init(api_reply_t *r);

/*  Handles one request that came on conn (NULL: a connection already gone, which gets no
 *  subscription or parked read) with the CURVE key client_key (32 bytes, borrowed for the
 *  call); takes ownership of routing and req (parking them, or freeing them once the reply is
 *  queued). started_us: when it was first handled (zclock_usecs), for its latency; 0: now. */
void api__request(node_server_t *self, api_conn_t *conn, zframe_t *routing, Engram__Request *req,
                  const uint8_t client_key[32], int64_t started_us);

/*  Resolves the scope an agent named into a storage id ("@agent" for private). */
int api__resolve(const Engram__Request *req, char *sid, api_reply_t *r);

char *api__str(api_arena_t *a, const char *s);

/*  SUBSCRIBE or UNSUBSCRIBE for conn; 0 or the refusal (in r): ENGRAM_EBUSY past
 *  ENGRAM_MAX_SUBSCRIPTIONS_PER_CONNECTION. */
int api__subscribe(node_server_t *self, api_conn_t *conn, const Engram__Request *req,
                   const char *sid, api_reply_t *r);

void api__subscriber_free(api_subscriber_t **sub_p);
/*  Whether any connection subscribes to sid now: a write made while none does builds no event
 *  (a subscription made later in the same turn has its reply's token, which covers the write). */
bool api__watched(node_server_t *self, const char *sid);
/*  The same as a zhashx destructor (api_conn_t.subscriptions). */
void api__subscriber_destroy(void **item);

/*  --- causal tokens (token.c) --- */

/*  The reply's causal token: the context of the scope it touched and the node's clock. */
int api__token(node_server_t *self, api_reply_t *r);
/*  Decodes the request's token (req->after) once into token; 0, or an error (in r) for a
 *  token that is not one, too large, naming too many scopes or one the agent may not read. On
 *  success the caller closes token (api__token_close); on error it holds nothing. */
int api__token_open(node_server_t *self, const Engram__Request *req, api_reply_t *r,
                    api_token_t *token);
void api__token_close(api_token_t *token);
/*  Whether this node has seen everything the token covers. */
bool api__token_reached(node_server_t *self, const api_token_t *token);
/*  Observes the token's clock, so that the holder's next write here is stamped after what it
 *  read; a clock too far ahead is refused (ENGRAM_ERANGE, in r) and changes nothing. */
int api__token_observe(node_server_t *self, const api_token_t *token, api_reply_t *r);

const char *api__type_name(unsigned types);

/*  --- monitoring (observe.c) --- */

/*  Counts a reply as it leaves: its operation, code and latency. */
void api__observe_reply(node_server_t *self, const api_out_t *out, int code);
/*  Counts n in counts: a group commit's acknowledgements, a turn's gossip messages. */
void api__observe_count(api_counts_t *counts, size_t n);
/*  Takes a sample of the totals when one is due (every API_SAMPLE_MS); returns when the next is. */
int64_t api__observe_tick(node_server_t *self, int64_t now_ms);
/*  Answers what waits on the listener's socket. */
void api__observe_answer(node_server_t *self);
/*  Frees the cached documents and the page URL (node_server_destroy; safe to call twice). */
void api__observe_fini(node_server_t *self);
/*  The access statements valid at `at`, as ACL_SHOW answers: {at_ms, statements, refused,
 *  ineffective}. NULL when memory runs out. */
json_t *api__acl_document(node_server_t *self, uint64_t at);

#endif
