/*  libengram: the client library agents use to talk to their local engram node.
 *
 *  A connection (engram_t) is a ZeroMQ DEALER to the node's agent API (proto/api.proto).
 *  Every call sends one request and waits for its reply (engram_set_timeout, default
 *  ENGRAM_DEFAULT_CLIENT_TIMEOUT_MS); no reply in time is ENGRAM_EUNAVAILABLE, and so is a
 *  connection lost while the call waited (the node stopped or restarted), at once: whether
 *  the request was done is then unknown, and the next call goes on the connection libzmq
 *  makes anew. A batch
 *  (engram_batch_t, below) keeps several requests in flight on the connection, and
 *  engram_next_event, waiting on a quiet node, sends it STATS requests of its own (a probe:
 *  see engram_subscribe). Calls return 0
 *  or a negative ENGRAM_E* code (engram_strerror); on an error the node's message is kept for
 *  engram_last_error. Results are owned structs the caller destroys.
 *
 *  Scopes: "private" is the calling agent's own memory and never leaves its node; shared
 *  scopes are "kind:id" (user:alice, run:q3-proposal, app:support, agent:researcher-1,
 *  team:...). Every result carries the causal token of the scopes it touched: pass it as
 *  `after` to a read (on any node) to wait until that node has seen everything it covers.
 *
 *  Thread safety: one engram_t per thread.
 */
#ifndef ENGRAM_ENGRAM_H
#define ENGRAM_ENGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engram/error.h"
#include "engram/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct engram engram_t;

/*  One row of a result: a register value or sibling, a set member, a log entry, a listed
 *  key, or a history step. Strings are never NULL ("" when absent). */
typedef struct {
    char *key;
    char *type;     /* reg, set, counter, log */
    uint8_t *value; /* reg/log payload or set element; NUL-terminated for convenience */
    size_t len;
    char *meta_json;
    char *author; /* agent that wrote this version */
    char *user;
    char **agents; /* provenance */
    size_t nagents;
    char **resources;
    size_t nresources;
    uint64_t hlc;
    uint64_t node; /* the version's dot */
    uint64_t n;
    uint64_t created_hlc;
    uint64_t expires_at_ms; /* 0: never */
    char *op;               /* history: put, delete, set_add, ... */
    int64_t amount;         /* history of counters */
    char *scope;            /* search: the scope the result is in */
    double score;           /* search: its score, higher first */
    char *explain_json;     /* search with explain: the score's components, as JSON */
} engram_item_t;

typedef struct {
    engram_item_t *items; /* get: winner first, then siblings; members; entries; keys; steps */
    size_t nitems;
    int64_t number;    /* counter value */
    char *memory_id;   /* remember */
    char *next_cursor; /* paged reads: "" when there is no further page */
    char *token;       /* the causal token, printable (base64url) */
    unsigned replicas; /* engram_put_replicated: nodes that held the write when answered */
    char *context;     /* engram_context: the prompt block */
} engram_result_t;

typedef struct {
    char *scope;
    char *key;
    char *op;
    engram_item_t item;
    char *token;
} engram_event_t;

typedef struct {
    uint64_t node_id;
    uint64_t replica_id;
    uint64_t uptime_ms;
    uint64_t requests;
    uint64_t errors;
    uint64_t writes;
    uint64_t commits;
    uint64_t scopes;
    uint64_t subscribers;
    uint64_t purged;
    uint64_t malformed;
    uint64_t clock_refusals;  /* stamps from other nodes refused: too far ahead of this clock */
    uint64_t hlc;             /* the node's hybrid logical clock */
    uint64_t parked;          /* reads waiting now for their causal token */
    uint64_t busy_refusals;   /* requests refused with ENGRAM_EBUSY */
    uint64_t connections_cut; /* connections cut for leaving their byte budget unread */
    uint64_t connections;     /* API connections open now */
    char durability[16];
} engram_stats_t;

/*  Connects to the node at endpoint (NULL: $ENGRAM_SOCKET, else ENGRAM_DEFAULT_API_ENDPOINT)
 *  as agent acting for user, over CURVE. The agent's key pair is the one `engram agent
 *  create` wrote: $ENGRAM_HOME/agents/AGENT.cert_secret (ENGRAM_HOME defaults to ~/.engram).
 *  The node's public key is pinned, never taken on first use: ENGRAM_SERVER_KEY (40 Z85
 *  characters) if set, else, for ipc://PATH, the certificate the node publishes beside its
 *  socket (PATH.pub). Without either key every call fails with ENGRAM_EDENIED and
 *  engram_last_error says which file is missing (ENGRAM_EUNAVAILABLE while PATH.pub does not
 *  exist: the node publishes it while it serves); each call looks for a missing key again, and
 *  the connection is made once both are found (a client may start before its node). NULL if
 *  the socket cannot be created or libzmq refuses the endpoint; an unreachable node, or one
 *  whose key is not the pinned one, shows as ENGRAM_EUNAVAILABLE on the first call. */
engram_t *engram_connect(const char *endpoint, const char *agent, const char *user);
/*  The same with explicit CURVE keys (32 bytes each): the client's key pair and the node's
 *  public key (NULL: found as engram_connect finds it). agent may be NULL or "": the node
 *  takes the agent from the key either way. */
engram_t *engram_connect_keys(const char *endpoint, const char *agent, const char *user,
                              const uint8_t public_key[32], const uint8_t secret_key[32],
                              const uint8_t server_key[32]);
void engram_destroy(engram_t **self_p);
void engram_set_timeout(engram_t *self, int timeout_ms);
/*  The node's message for the last failed call; "" if none. Valid until the next call. */
const char *engram_last_error(const engram_t *self);

void engram_result_destroy(engram_result_t **self_p);
void engram_event_destroy(engram_event_t **self_p);

/*  Batches: several requests in flight on one connection. engram_batch_put and
 *  engram_batch_get queue requests (packed at once, with a copy of what they are given and the
 *  connection's sources and causal token, as engram_put and engram_get take them; a batch
 *  holds its packed requests until they are sent, up to ENGRAM_BATCH_MAX of up to the frame
 *  limit each). engram_batch_run sends them in order, keeps up to ENGRAM_BATCH_WINDOW of them
 *  awaiting their replies, and matches each reply to its request by id. The node handles one
 *  connection's requests in the order they came, so a get after a put of the same key in one
 *  batch reads that put, with two exceptions: a get with a causal token waits (parked) until
 *  the node has reached the token, and a clustered node in its first seconds holds shared
 *  writes (not reads) until it has checked its dots. Request i (counting the queue calls that
 *  returned 0) has its own outcome once the batch has run: engram_batch_code (0 or ENGRAM_E*;
 *  ENGRAM_EINVAL before the run), engram_batch_error (the node's message, "" if none) and
 *  engram_batch_result (NULL unless its code is 0; the batch owns it). engram_batch_run
 *  returns 0 when every request got its answer; otherwise the code of what stopped it
 *  (ENGRAM_EUNAVAILABLE: no node, or no reply within the longest wait of its requests, the
 *  connection's timeout plus a token's wait, counted from the last reply; engram_last_error
 *  says which), and each request left unanswered has that code, sent or not: as with a plain
 *  call, such a request may have been executed. A queue call returns ENGRAM_EINVAL for a batch
 *  already run or holding ENGRAM_BATCH_MAX requests, and ENGRAM_ETOOBIG for a request past the
 *  frame limit; engram_batch_reset empties a batch for reuse. The batch borrows its
 *  connection, which it must not outlive. */
typedef struct engram_batch engram_batch_t;
engram_batch_t *engram_batch_new(engram_t *engram);
void engram_batch_destroy(engram_batch_t **self_p);
int engram_batch_put(engram_batch_t *self, const char *scope, const char *key, const void *value,
                     size_t len);
int engram_batch_get(engram_batch_t *self, const char *scope, const char *key);
int engram_batch_run(engram_batch_t *self);
size_t engram_batch_size(const engram_batch_t *self);
int engram_batch_code(const engram_batch_t *self, size_t i);
const char *engram_batch_error(const engram_batch_t *self, size_t i);
const engram_result_t *engram_batch_result(const engram_batch_t *self, size_t i);
void engram_batch_reset(engram_batch_t *self);

/*  Registers (multi-value). ttl_ms 0: never expires. meta_json may be NULL. */
int engram_put(engram_t *self, const char *scope, const char *key, const void *value, size_t len,
               const char *meta_json, uint64_t ttl_ms, engram_result_t **result);
/*  after: a token from an earlier result, or NULL; timeout_ms bounds the wait for it
 *  (ENGRAM_ETIMEDOUT). */
int engram_get(engram_t *self, const char *scope, const char *key, const char *after,
               int timeout_ms, engram_result_t **result);
/*  Forgets the object under key, whatever its type. */
int engram_delete(engram_t *self, const char *scope, const char *key, engram_result_t **result);

int engram_set_add(engram_t *self, const char *scope, const char *key, const char *elem,
                   engram_result_t **result);
/*  engram_set_add keeping JSON metadata with this add of elem (NULL: none); members show it. */
int engram_set_add_meta(engram_t *self, const char *scope, const char *key, const char *elem,
                        const char *meta_json, engram_result_t **result);
int engram_set_remove(engram_t *self, const char *scope, const char *key, const char *elem,
                      engram_result_t **result);
/*  Every member, fetched page by page; each item is an element (value) with the metadata and
 *  provenance of one of its adds. */
int engram_set_members(engram_t *self, const char *scope, const char *key,
                       engram_result_t **result);
/*  One page of members in element order: at most limit (0: the node's default page), after
 *  cursor (NULL: from the start); result->next_cursor resumes ("" at the end). */
int engram_set_members_page(engram_t *self, const char *scope, const char *key, const char *cursor,
                            unsigned limit, engram_result_t **result);

int engram_counter_add(engram_t *self, const char *scope, const char *key, int64_t amount,
                       engram_result_t **result);
int engram_counter_get(engram_t *self, const char *scope, const char *key,
                       engram_result_t **result);

int engram_log_append(engram_t *self, const char *scope, const char *key, const void *text,
                      size_t len, engram_result_t **result);
/*  engram_log_append with the entry's JSON metadata (NULL: none) and a TTL (0: never expires). */
int engram_log_append_meta(engram_t *self, const char *scope, const char *key, const void *text,
                           size_t len, const char *meta_json, uint64_t ttl_ms,
                           engram_result_t **result);
/*  Every entry in log order, fetched page by page. */
int engram_log_range(engram_t *self, const char *scope, const char *key, engram_result_t **result);
/*  One page of entries in log order, as engram_set_members_page. */
int engram_log_page(engram_t *self, const char *scope, const char *key, const char *cursor,
                    unsigned limit, engram_result_t **result);

/*  Keys of scope starting with prefix (NULL: all), in key order, at most limit (0: the
 *  node's default page), after cursor (NULL: from the start). Each item has key and type and,
 *  for a register or a log, a preview of its value in value/len: the winner's (a log's last
 *  entry's) first bytes, at most 80, cut at a UTF-8 character boundary and ending with "…"
 *  (U+2026) when cut. */
int engram_list(engram_t *self, const char *scope, const char *prefix, const char *cursor,
                unsigned limit, engram_result_t **result);
/*  A memory: text under a generated id (result->memory_id), with JSON metadata. */
int engram_remember(engram_t *self, const char *scope, const char *text, const char *meta_json,
                    uint64_t ttl_ms, engram_result_t **result);
/*  Every step, oldest first, fetched page by page. */
int engram_history(engram_t *self, const char *scope, const char *key, engram_result_t **result);
/*  The register's value(s) at a past time (ms since the epoch), as engram_get gives them,
 *  replayed from the object's history: ENGRAM_ENOTFOUND if it had none the caller may read then
 *  (not yet written, deleted, expired, or hidden). The history reaches as far back as the node
 *  holds steps. */
int engram_get_as_of(engram_t *self, const char *scope, const char *key, uint64_t as_of_ms,
                     engram_result_t **result);
/*  One page of steps, as engram_set_members_page. */
int engram_history_page(engram_t *self, const char *scope, const char *key, const char *cursor,
                        unsigned limit, engram_result_t **result);
/*  Copies the private memory under key into the shared scope, keeping its provenance. */
int engram_share(engram_t *self, const char *key, const char *scope, engram_result_t **result);

/*  engram_put and engram_remember_id (id may be NULL) with the memory's embedding (dims float32
 *  values computed by the client's model: engram computes none); a scope's embeddings all
 *  have one dimension. */
int engram_put_embedded(engram_t *self, const char *scope, const char *key, const void *value,
                        size_t len, const char *meta_json, uint64_t ttl_ms, const float *embedding,
                        size_t dims, engram_result_t **result);
int engram_remember_embedded(engram_t *self, const char *scope, const char *id, const char *text,
                             const char *meta_json, uint64_t ttl_ms, const float *embedding,
                             size_t dims, engram_result_t **result);

/*  What a search asks besides its query; zeroed means every default. */
typedef struct {
    const char *const *scopes; /* the scopes searched; NULL or none: every scope the agent may
                                  read for its user (its private scope included) */
    size_t nscopes;
    const char *filter_json; /* mem0's filter grammar, e.g. {"AND":[{"author":"researcher"}]};
                                NULL: none */
    unsigned top_k;          /* at most this many results (0: ENGRAM_DEFAULT_TOP_K) */
    double threshold;        /* results scoring below are left out (0: none; cosines may be
                                negative) */
    const char *mode;        /* "keyword" (BM25), "vector" (cosine of embeddings) or "hybrid"
                                (reciprocal-rank fusion of both); NULL: hybrid with an
                                embedding, else keyword */
    const float *embedding;  /* the query's embedding (same model as the memories'), or NULL */
    size_t dims;
    double half_life_ms; /* > 0: recent memories score up to twice as much */
    bool votes;          /* memories' usefulness votes (engram_vote) boost their score */
    bool explain;        /* each item's explain_json shows its score's components */
} engram_search_options_t;

/*  Searches memories (register values and log entries) by their words (BM25 over the text of
 *  each scope searched, with Unicode folding and English stemming: the node's README), by
 *  meaning (the cosine of client-supplied embeddings) or both, best first; only what the
 *  agent may read is searched, scored or counted. The connection's causal
 *  token (engram_set_after) makes the node wait until it has seen the writes it covers.
 *  options may be NULL. Items carry scope, key, value, provenance and score. */
int engram_search(engram_t *self, const char *query, const engram_search_options_t *options,
                  engram_result_t **result);
/*  A ready prompt block of the memories a search finds, best first, within a budget of tokens
 *  (counted as one per 4 bytes): a header line, then per memory "- WHEN UTC, AUTHOR in SCOPE
 *  (KEY): TEXT", duplicates collapsed, at most options->top_k (default 10). result->context is
 *  the block, result->items the memories in it, result->number its tokens. */
int engram_context(engram_t *self, const char *query, const engram_search_options_t *options,
                   unsigned tokens, engram_result_t **result);

/*  Subscribes this connection to the changes of scope; then engram_next_event returns them
 *  in commit order (timeout_ms -1: wait for ever; ENGRAM_ETIMEDOUT when none came). A
 *  subscription ends with an error that engram_next_event returns once: ENGRAM_ELAGGED when
 *  the node, or this client (past ENGRAM_DEFAULT_SUBSCRIBER_BACKLOG events taken in by other
 *  calls and not read: every subscription ends, and the node's events for them are dropped
 *  as they come), let it fall behind; ENGRAM_EBUSY when the node cut the connection
 *  (libengram then connects anew); ENGRAM_EDENIED when the connection's key is no longer
 *  registered as its agent on the node (a new SUBSCRIBE is refused too); ENGRAM_EUNAVAILABLE
 *  when the connection was lost (a restarted node holds no subscription, and the events of
 *  the time between are missed), or when the node did not answer: while engram_next_event
 *  waits and nothing came from the node for the call timeout (engram_set_timeout; a second
 *  at least), a STATS request goes to it, and nothing at all within as long after it ends
 *  every subscription (the node hangs; libengram then connects anew). Subscribe again to go
 *  on. */
int engram_subscribe(engram_t *self, const char *scope);
int engram_next_event(engram_t *self, int timeout_ms, engram_event_t **event);
/*  Ends this connection's subscription to scope: its events still queued here are dropped
 *  (an end the node sent and engram_next_event has not returned yet with them), and so are
 *  those that still come; ENGRAM_EINVAL when scope is not subscribed to here (one whose end
 *  engram_next_event returned is not). The node holds one subscription a (connection,
 *  scope): engram_subscribe refuses a second one with ENGRAM_EINVAL. */
int engram_unsubscribe(engram_t *self, const char *scope);

int engram_stats(engram_t *self, engram_stats_t *stats);

/*  engram_put that answers once `replicas` nodes (this one included) hold the write, or after
 *  timeout_ms (0: ENGRAM_DEFAULT_REPLICAS_TIMEOUT_MS) with ENGRAM_EREPLICAS: the write is then
 *  durable on this node and on fewer others than asked. */
int engram_put_replicated(engram_t *self, const char *scope, const char *key, const void *value,
                          size_t len, const char *meta_json, uint64_t ttl_ms, unsigned replicas,
                          int timeout_ms, engram_result_t **result);

/*  --- memory operations: compare-and-set, idempotent remember, forget, vote, filtered ls --- */

/*  engram_put that is refused with ENGRAM_ECONFLICT if the register under key changed since
 *  token (a causal token of scope, from a get or a write there): if it holds a version the
 *  token does not cover, someone wrote it since. A token taken before the key was first
 *  written makes the put a create-if-absent. A token of another scope is ENGRAM_EINVAL. */
int engram_put_if_version(engram_t *self, const char *scope, const char *key, const void *value,
                          size_t len, const char *meta_json, uint64_t ttl_ms, const char *token,
                          engram_result_t **result);
/*  engram_remember under the given id (a key): the first call writes the memory
 *  (result->number 1), a later one with the same id writes nothing, whatever its text, and
 *  answers the same id (result->number 0): a retried remember stores once. */
int engram_remember_id(engram_t *self, const char *scope, const char *id, const char *text,
                       const char *meta_json, uint64_t ttl_ms, engram_result_t **result);
/*  Deletes every memory (register and log) of scope whose value matches filter_json (mem0's
 *  grammar, as engram_search's; the winner, a log's last entry), each as engram_delete does;
 *  only what the agent may read is considered. An empty filter ({} or none) is refused with
 *  ENGRAM_EINVAL. dry_run: counts and deletes nothing. *count: how many were (would be)
 *  deleted. The node deletes at most ENGRAM_MAX_PAGE a request: this asks again until done;
 *  on an error, *count says how many were deleted before it. */
int engram_forget(engram_t *self, const char *scope, const char *filter_json, bool dry_run,
                  int64_t *count);
/*  Votes for (amount +1) or against (-1) the memory under key, which must exist and be
 *  readable (else ENGRAM_ENOTFOUND): adds amount to the counter KEY#votes of scope
 *  (engram_counter_get reads it; result->number is its sum). */
int engram_vote(engram_t *self, const char *scope, const char *key, int amount,
                engram_result_t **result);
/*  engram_list keeping only the registers and logs whose value matches filter_json (NULL: all
 *  keys). A page examines a bounded number of keys: it may hold fewer than limit items, even
 *  none, while result->next_cursor goes on ("" at the end). */
int engram_list_filtered(engram_t *self, const char *scope, const char *prefix,
                         const char *filter_json, const char *cursor, unsigned limit,
                         engram_result_t **result);

/*  The causal token every following read of this connection carries (get, set members,
 *  counter get, log range, list, history): the node answers once it has seen what the token
 *  covers, or fails with ENGRAM_ETIMEDOUT after timeout_ms (0: ENGRAM_DEFAULT_AFTER_TIMEOUT_MS;
 *  the node clamps it to ENGRAM_MAX_AFTER_TIMEOUT_MS). NULL clears. Copied. engram_get's own
 *  `after`, when given, takes precedence for that call. */
int engram_set_after(engram_t *self, const char *token, int timeout_ms);

/*  The resources the following writes of this connection declare they were derived from
 *  (their provenance: a reader needs read access to each); n 0 clears. Copied. */
int engram_set_sources(engram_t *self, const char *const *sources, size_t n);

/*  Access control (an admin's or operator's connection). Hands the node a packed
 *  SignedStatement (proto/acl.proto; `engram acl` builds them); *id_hex (may be NULL) gets its
 *  id, the caller's to free(). */
int engram_acl_submit(engram_t *self, const void *statement, size_t len, char **id_hex);
/*  The statements the node holds and which are valid at at_ms (0: now), as a JSON document
 *  the caller frees with free(). */
int engram_acl_show(engram_t *self, uint64_t at_ms, char **json);
/*  The decision for agent acting for user on scope at at_ms (0: now), explained, as JSON. */
int engram_acl_check(engram_t *self, const char *agent, const char *user, const char *scope,
                     uint64_t at_ms, char **json);

/*  The cluster as the local node sees it (engram cluster status). */
typedef struct {
    uint64_t id;
    char state[16]; /* self, alive, suspect, dead, left */
    uint64_t incarnation;
    char *endpoint;
    int lag_known;      /* 0 until the member has told what it holds */
    uint64_t lag_ops;   /* operations this node holds that the member lacks */
    uint64_t lag_bytes; /* size of the delta that would bring it up to date; UINT64_MAX: not
                           measured (the node encodes at most 10,000 operations a status) */
} engram_member_t;

typedef struct {
    char *scope;
    char *vector; /* the version vector: "node:n ..." */
    uint64_t ops;
    uint64_t garbage; /* op records waiting for the stable cut */
} engram_scope_status_t;

typedef struct {
    char *cluster_id;
    uint64_t node_id;
    char *endpoint;
    engram_member_t *members;
    size_t nmembers;
    engram_scope_status_t *scopes;
    size_t nscopes;
    uint64_t pushes_sent, pushes_applied, pushes_held_back;
    uint64_t digests_sent, pulls_answered, pull_deltas_applied;
    uint64_t bytes_sent, bytes_received, bad_messages;
    unsigned local_health;    /* Lifeguard score 0..8: 0 while this node's own probes and links
                                 work; it stretches its probe interval by (score + 1) */
    char storage[96];         /* "ok", "read-only" or "failed: ERROR": whether the node's store
                                 takes writes (if not, it still serves reads and its peers) */
    uint64_t bad_scope;       /* gossip messages refused for a scope name (in bad_messages) */
    uint64_t lean_deltas;     /* pushes and answers sent with a history step's value left to its
                                 entry (to peers of schema minor 2 or later) */
    char *status_page;        /* "http://HOST:PORT/" of the node's status page (engramd --metrics),
                                 or "" */
    uint64_t compressed_sent; /* gossip messages sent compressed with Zstandard (to peers of
                                 schema minor 3 or later, when that made them shorter) */
    uint64_t compression_saved; /* bytes their compression kept off the wire */
    uint64_t acks_sent;         /* acks of pushes sent: what this node holds, to their origin */
    uint64_t acks_deferred;     /* of them, those sent at a tick for the pushes nothing waited
                                   on since the last (one ack per sender and scope a tick) */
} engram_cluster_t;

int engram_cluster_status(engram_t *self, engram_cluster_t **status);
void engram_cluster_destroy(engram_cluster_t **self_p);
/*  Hands the node an admin-signed decommission of node_id (see engram CLI: cluster remove). */
int engram_cluster_remove(engram_t *self, uint64_t node_id, const void *statement, size_t len);
/*  Asks the node to join (again) through a member's gossip endpoint. */
int engram_cluster_join(engram_t *self, const char *endpoint);
/*  Asks the node to write a snapshot of its data directory into dir, an absolute path on the
 *  node's host that must not exist (an admin's connection only; engram snapshot). */
int engram_snapshot(engram_t *self, const char *dir);

#ifdef __cplusplus
}
#endif

#endif
