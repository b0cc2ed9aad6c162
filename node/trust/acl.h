/*  node_acl: access control as two time-varying graphs (Rezazadeh et al., "Collaborative
 *  Memory", 2025), derived from admin-signed statements (proto/acl.proto).
 *
 *  G_UA(t), user -> agent: agent a may act for user u at t; A(u, t) is the set of such agents.
 *  G_AR(t), agent -> resource with read and/or write: a shared scope, a scope pattern ending in
 *  '*', or a named external resource. R(a, t) is what a may read at t.
 *
 *  Statements: node_acl_add verifies a SignedStatement's Ed25519 signature once, on receipt,
 *  and keeps it by id (a second copy of a statement is a replay and changes nothing; two
 *  different statements claiming one id, which only a forger or a broken random source makes,
 *  are both kept, so that no arrival order lets one shadow the other). Whether a statement
 *  counts depends on whether its signer was an admin at its issued_ms, which other statements
 *  decide (admin added, admin retired): whenever the verified set grows, the effective
 *  graphs become what the whole set gives, so they are a pure function of the set, whatever
 *  order statements arrived in:
 *    - admin statements are processed in (issued_ms, id) order, each effective when its
 *      signer is an admin at its issued_ms given the admin statements before it. admin_add
 *      makes its key an admin from its issued_ms; admin_retire lowers the key's until to
 *      at_ms, and nothing raises it again (a retired key stays retired: add a new key). The
 *      root admin (the cluster's, from the node's card or trust file) is an admin at every
 *      time and cannot be retired (a retirement of it is kept and changes nothing);
 *    - every other statement is effective when its signer is an admin at its issued_ms by
 *      the final admin intervals: a retirement back-dated to a key's compromise voids the
 *      grants the key signed since at_ms, but not the admin statements it signed before the
 *      retirement's own issued_ms (retire the admins it added too). issued_ms is the signer's
 *      own claim: a stolen admin key can still sign admin statements dated before its
 *      retirement, so retiring a key contains an honest holder's mistakes, not a thief (a
 *      stolen key means a new cluster root);
 *    - an effective revocation lowers the until of every statement with its target id that
 *      is an agent registration, an edge or a policy, to at_ms, whatever their order; a
 *      revocation of any other statement changes nothing (admins leave by admin_retire).
 *  Agent registrations and policies are valid [issued_ms, until); edges [from_ms, until_ms).
 *  Agent names, user names and keys are indexed in hash tables: a decision costs hash lookups
 *  and a walk of the agent's own edges (policies excepted: node_acl_policy walks them all).
 *
 *  Resources and patterns: an edge's resource (and a policy's scope pattern) is a name, "*",
 *  or KIND:PREFIX then '*' ("run:*", "run:q*"); '*' anywhere else, a private scope ("@...")
 *  or an empty one is refused. A name matches itself; "*" matches every "kind:id" name except
 *  private ("@...") and system ("sys:...") ones, so user scopes and external resources too,
 *  but not "cluster"; a prefix pattern matches every name with that prefix ("run:*" matches
 *  "run:q3", not "runs:x" nor "app:run"). No edge opens a private scope.
 *
 *  Decisions (default deny), for agent a acting for user u at time t (ms):
 *    - act:   (u, a) in G_UA(t);
 *    - scope: sid is a's private scope ("@a"), or "user:u", or an edge (a, r, read|write)
 *             valid at t whose resource r is sid or a pattern matching it;
 *    - read of fragment m of sid: act, scope read, and the retrospective check: every agent of
 *             A(m) is in A(u, t) and every resource of R(m) is readable by a at t (as above;
 *             "user:u" and "@a" count as readable). A revocation thus hides old fragments at
 *             once, without deleting them;
 *    - write: act and scope write.
 *  Cluster administration (status, join, remove, acl show/check) needs an admin key valid at
 *  t, or an agent with an edge to the resource "cluster" (read to look, write to change).
 *
 *  Write policy: node_acl_policy gathers what the policies valid at t say about a scope:
 *  block, and the redaction patterns (node/trust/redact.h applies them).
 *
 *  Thread: one thread owns an acl.
 */
#ifndef NODE_ACL_H
#define NODE_ACL_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NODE_ACL_ID_BYTES 16
#define NODE_ACL_FOREVER  UINT64_MAX

typedef struct node_acl node_acl_t;

/*  The provenance of one fragment (a register version, log entry, set element add or counter
 *  contribution): the agents that contributed to it and the resources it was derived from.
 *  Borrowed strings. */
typedef struct {
    const char *const *agents;
    size_t nagents;
    const char *const *resources;
    size_t nresources;
} node_provenance_t;

/*  An acl whose root admin is root_admin (Ed25519 public key); NULL when out of memory or
 *  when root_admin is no Ed25519 public key. */
node_acl_t *node_acl_new(const uint8_t root_admin[crypto_sign_PUBLICKEYBYTES]);
void node_acl_destroy(node_acl_t **self_p);

/*  Adds a packed SignedStatement. 0: new and kept (it may still have no effect: its signer is
 *  no admin at its time, which why then says); 1: this statement (same packed Statement) is
 *  already kept (a replay: nothing changes); refused, counted, nothing changes:
 *  ENGRAM_EDECODE (malformed: no id of NODE_ACL_ID_BYTES, no 32-byte signer, no body, an
 *  empty name, a key or revocation target of the wrong size, an admin key that is no Ed25519
 *  public key, an interval with from_ms >= until_ms != 0, an edge granting neither read nor
 *  write, a policy with no action, an empty pattern, a bad resource or scope pattern),
 *  ENGRAM_ETOOBIG (past an ENGRAM_ACL_MAX_* limit of engram/limits.h), ENGRAM_EVERSION
 *  (schema_major newer than ENGRAM_SCHEMA_MAJOR), ENGRAM_EDENIED (the signature does not
 *  verify); not counted: ENGRAM_ENOMEM, nothing changes. why (may be NULL) gets a reason for
 *  refusals. *id (may be NULL) gets the statement's id when the result is 0 or 1. */
int node_acl_add(node_acl_t *self, const uint8_t *signed_statement, size_t len,
                 uint8_t id[NODE_ACL_ID_BYTES], char *why, size_t why_len);
/*  Statements refused by node_acl_add, and statements kept that have no effect because their
 *  signer was not an admin at their time (recounted at each change of the set). */
uint64_t node_acl_refused(const node_acl_t *self);
uint64_t node_acl_ineffective(const node_acl_t *self);
/*  Statements kept. */
size_t node_acl_size(const node_acl_t *self);

/*  --- identity -------------------------------------------------------------------------- */

/*  The agent whose registered CURVE key this is, valid at t; NULL if none. When one key is
 *  registered for several names, the registration valid at t first in (issued_ms, id) order
 *  wins. Borrowed until node_acl_destroy. */
const char *node_acl_agent_of(const node_acl_t *self, const uint8_t curve_key[32], uint64_t t);
/*  The same, and *home_node (may be NULL) gets the node the registration names (0: any). */
const char *node_acl_agent_home(const node_acl_t *self, const uint8_t curve_key[32], uint64_t t,
                                uint64_t *home_node);
/*  Whether curve_key has a registration that is not valid at t but will be (issued later than
 *  t by this node's clock): for a clear refusal on a node whose clock is behind. */
bool node_acl_key_pending(const node_acl_t *self, const uint8_t curve_key[32], uint64_t t);
/*  Whether curve_key is the CURVE form (crypto_sign_ed25519_pk_to_curve25519) of an admin's
 *  Ed25519 key valid at t: how an admin's client authenticates to the agent API. */
bool node_acl_admin_curve(const node_acl_t *self, const uint8_t curve_key[32], uint64_t t);
bool node_acl_is_admin(const node_acl_t *self, const uint8_t ed_key[crypto_sign_PUBLICKEYBYTES],
                       uint64_t t);

/*  --- decisions ------------------------------------------------------------------------- */

/*  (user, agent) in G_UA(t). */
bool node_acl_may_act(const node_acl_t *self, const char *agent, const char *user, uint64_t t);
/*  Whether agent acting for user may read (write) scope sid at t: act, and sid is "@agent",
 *  "user:<user>", or an edge allows it. Nothing about fragments: see node_acl_may_read. */
bool node_acl_may_read_scope(const node_acl_t *self, const char *agent, const char *user,
                             const char *sid, uint64_t t);
bool node_acl_may_write_scope(const node_acl_t *self, const char *agent, const char *user,
                              const char *sid, uint64_t t);
/*  The whole read decision for fragment m of sid (scope read plus the retrospective check);
 *  m NULL: a fragment without provenance. */
bool node_acl_may_read(const node_acl_t *self, const char *agent, const char *user, const char *sid,
                       const node_provenance_t *m, uint64_t t);
/*  Whether the connection key (CURVE) may look at (write false) or change (write true) the
 *  cluster's administration at t: an admin, or a registered agent with an edge to "cluster". */
bool node_acl_may_administer(const node_acl_t *self, const uint8_t curve_key[32], bool write,
                             uint64_t t);

/*  Explains the decision for agent acting for user on scope sid at t, as one line per step
 *  (act, read, write) into buf, truncated to len and terminated when len > 0:
 *    "may act for U: edge ID [FROM, UNTIL)" or "denied: no user->agent edge for (U, A) at T";
 *    "may read SID: edge ID to RESOURCE [FROM, UNTIL)", "may read SID: private scope of A",
 *    "may read SID: user scope of U", or "denied: no read edge for (A, SID) at T"; the same
 *    for write. UNTIL is "open" for NODE_ACL_FOREVER. Returns whether reading is allowed;
 *    *may_write (may be NULL) gets whether writing is. */
bool node_acl_explain(const node_acl_t *self, const char *agent, const char *user, const char *sid,
                      uint64_t t, bool *may_write, char *buf, size_t len);

/*  --- write policy ---------------------------------------------------------------------- */

/*  What the policies valid at t say about shared scope sid: *block, and the redaction
 *  patterns of every matching redact policy, each once, in (issued_ms, id) order of the
 *  policies (*patterns borrowed until the next node_acl_policy or node_acl_add; a redact
 *  policy with no pattern adds "@email", "@phone", "@card" and "@secret"). Returns whether
 *  any policy matches. Costs a walk of every effective policy. */
bool node_acl_policy(const node_acl_t *self, const char *sid, uint64_t t, bool *block,
                     const char *const **patterns, size_t *npatterns);

/*  --- listing --------------------------------------------------------------------------- */

/*  One statement as `engram acl show` lists it: its kind ("admin_add", "admin_retire", "agent",
 *  "user_agent", "agent_resource", "revocation", "policy"), id in hex, signer in hex,
 *  issued_ms, its effective [from_ms, until_ms) after revocations (until NODE_ACL_FOREVER:
 *  open), whether it has effect at all (signed by an admin at its time) and, at the time
 *  asked, whether it is valid (effective and in its interval). The interval of an edge is its
 *  own; of a registration or policy [issued_ms, until revoked); of an effective admin_add
 *  [issued_ms, its key's retirement); of a retirement or revocation [at_ms, open). The packed
 *  Statement is given too for the details. Strings and bytes borrowed for the call. */
typedef struct {
    const char *kind;
    const char *id_hex;
    const char *signer_hex;
    uint64_t issued_ms;
    uint64_t from_ms;
    uint64_t until_ms;
    bool effective;
    bool valid_at;
    const uint8_t *statement; /* packed engram.Statement */
    size_t statement_len;
} node_acl_entry_t;

/*  Calls fn for every kept statement in (issued_ms, id) order with valid_at computed for t;
 *  stops at and returns fn's first non-zero result. */
typedef int (*node_acl_visit_fn)(void *arg, const node_acl_entry_t *entry);
int node_acl_each(const node_acl_t *self, uint64_t t, node_acl_visit_fn fn, void *arg);

/*  --- signing (the CLI and tests) ------------------------------------------------------- */

/*  Packs and signs a Statement with its header filled (schema version, a fresh random id, the
 *  signer's public key from secret_key, issued_ms): *signed_out is a packed SignedStatement
 *  the caller frees with free(). `statement` is an Engram__Statement (proto/acl.pb-c.h)
 *  whose body the caller has set; it is read, never changed (the header goes into a copy),
 *  and not checked: node_acl_add judges what it signed. 0, ENGRAM_ENOMEM, or ENGRAM_EIO if
 *  libsodium cannot initialise. */
int node_acl_sign(void *statement, const uint8_t secret_key[crypto_sign_SECRETKEYBYTES],
                  uint64_t issued_ms, uint8_t **signed_out, size_t *len);

#endif
