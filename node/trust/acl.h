/*  node_acl: access control as two time-varying graphs (Rezazadeh et al., "Collaborative
 *  Memory", 2025), derived from admin-signed statements (proto/acl.proto).
 *
 *  G_UA(t), user -> agent: agent a may act for user u at t; A(u, t) is the set of such agents.
 *  G_AR(t), agent -> resource with read and/or write: a shared scope, a scope pattern ending in
 *  '*', or a named external resource. R(a, t) is what a may read at t.
 *
 *  Statements: node_acl_add verifies a SignedStatement's Ed25519 signature once, on receipt,
 *  and keeps it by id (a second copy of an id is a replay and changes nothing). Whether a
 *  statement counts depends on whether its signer was an admin at its issued_ms, which other
 *  statements decide (admin added, admin retired): the effective graphs are recomputed from
 *  the whole verified set whenever it grows, processing admin statements in (issued_ms, id)
 *  order, so they are a pure function of the set, whatever order statements arrived in. The
 *  root admin (the cluster's, from the node's card or trust file) is an admin at every time.
 *  A revocation only lowers its target's until. Agent names, user names and keys are indexed
 *  in hash tables: a decision costs hash lookups and a walk of the agent's own edges.
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
#define NODE_ACL_FOREVER UINT64_MAX

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

/*  An acl whose root admin is root_admin (Ed25519 public key); NULL when out of memory. */
node_acl_t *node_acl_new(const uint8_t root_admin[crypto_sign_PUBLICKEYBYTES]);
void node_acl_destroy(node_acl_t **self_p);

/*  Adds a packed SignedStatement. 0: new and kept (it may still have no effect: its signer is
 *  no admin at its time); 1: a statement with this id is already kept (a replay: nothing
 *  changes); ENGRAM_EDECODE (malformed), ENGRAM_EDENIED (the signature does not verify) or
 *  ENGRAM_EVERSION: refused, counted, nothing changes. why gets a reason for refusals. *id
 *  (may be NULL) gets the statement's id. */
int node_acl_add(node_acl_t *self, const uint8_t *signed_statement, size_t len,
                 uint8_t id[NODE_ACL_ID_BYTES], char *why, size_t why_len);
/*  Statements refused by node_acl_add, and statements kept that have no effect because their
 *  signer was not an admin at their time (recounted at each change of the set). */
uint64_t node_acl_refused(const node_acl_t *self);
uint64_t node_acl_ineffective(const node_acl_t *self);
/*  Statements kept. */
size_t node_acl_size(const node_acl_t *self);

/*  --- identity -------------------------------------------------------------------------- */

/*  The agent whose registered CURVE key this is, valid at t; NULL if none. Borrowed until the
 *  next node_acl_add. */
const char *node_acl_agent_of(const node_acl_t *self, const uint8_t curve_key[32], uint64_t t);
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
/*  The whole read decision for fragment m of sid (scope read plus the retrospective check). */
bool node_acl_may_read(const node_acl_t *self, const char *agent, const char *user,
                       const char *sid, const node_provenance_t *m, uint64_t t);
/*  Whether the connection key (CURVE) may look at (write false) or change (write true) the
 *  cluster's administration at t: an admin, or a registered agent with an edge to "cluster". */
bool node_acl_may_administer(const node_acl_t *self, const uint8_t curve_key[32], bool write,
                             uint64_t t);

/*  Explains the decision for agent acting for user on scope sid at t, as one line per step
 *  into buf ("allowed by ..." with the statement ids, or "denied: no ... edge"). Returns
 *  whether reading is allowed; *may_write (may be NULL) gets whether writing is. */
bool node_acl_explain(const node_acl_t *self, const char *agent, const char *user,
                      const char *sid, uint64_t t, bool *may_write, char *buf, size_t len);

/*  --- write policy ---------------------------------------------------------------------- */

/*  What the policies valid at t say about shared scope sid: *block, and the redaction
 *  patterns of every matching redact policy (*patterns borrowed until the next
 *  node_acl_add; a redact policy with no pattern adds "@email", "@phone", "@card" and
 *  "@secret"). Returns whether any policy matches. */
bool node_acl_policy(const node_acl_t *self, const char *sid, uint64_t t, bool *block,
                     const char *const **patterns, size_t *npatterns);

/*  --- listing --------------------------------------------------------------------------- */

/*  One statement as `engram acl show` lists it: its kind ("admin_add", "admin_retire", "agent",
 *  "user_agent", "agent_resource", "revocation", "policy"), id in hex, signer in hex,
 *  issued_ms, its effective [from_ms, until_ms) after revocations (until NODE_ACL_FOREVER:
 *  open), whether it has effect at all (signed by an admin at its time) and, at the time
 *  asked, whether it is valid. The packed Statement is given too for the details. */
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

/*  Fills the header of a Statement being built (schema version, a fresh random id, the
 *  signer's public key from secret_key, issued_ms), then packs and signs it: *signed_out is a
 *  packed SignedStatement the caller frees with free(). `statement` is an
 *  Engram__Statement (proto/acl.pb-c.h) whose body the caller has set. */
int node_acl_sign(void *statement, const uint8_t secret_key[crypto_sign_SECRETKEYBYTES],
                  uint64_t issued_ms, uint8_t **signed_out, size_t *len);

#endif
