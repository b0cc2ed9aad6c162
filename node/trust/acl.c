/*  node_acl: the access-control graphs and decisions (see acl.h for the contract).
 *
 *  Two layers. The kept statements (s_stmt_t) are immutable once verified and live in
 *  self->stmts, sorted by (issued_ms, id, packed bytes). Everything derived from them lives in
 *  one s_graph_t: per statement a fact (effective or not, its interval after revocations) and
 *  the hash indexes the decisions use; index lists keep the statements' order, so that the
 *  first match a decision finds is a function of the set too. A new admin statement or
 *  revocation builds a whole new graph from the sorted statements and swaps it in; any other
 *  statement changes no other fact and only adds its own, which gives the graph a build would
 *  (s_graph_insert). Either way the graph is a pure function of the set, and running out of
 *  memory leaves the old one in place (where we allocate: czmq's containers abort instead).
 *
 *  Building a graph, in the statements' order:
 *    1. admin_add and admin_retire statements, each effective when its signer is an admin at
 *       its issued_ms given the admin statements before it, build the admin intervals;
 *    2. every other statement is effective when its signer is an admin at its issued_ms by
 *       the final intervals (so a retirement back-dated to a key's compromise voids the
 *       grants it signed since);
 *    3. each fact gets its interval, and every effective revocation lowers its targets' until;
 *    4. effective registrations, edges and policies go into the indexes.
 *
 *  Known limit: a build costs O(n) for n statements kept (hash inserts, no signature checks),
 *  so adding n admin statements or revocations one by one costs O(n^2); other statements
 *  cost O(log n) plus moving n pointers.
 *
 *  Ownership: self owns the statements (each its unpacked message and its packed bytes) and
 *  the graph; the graph owns its facts, lists and admins; index lists point at facts, facts
 *  at statements. Strings handed out point into statements, which live until destroy.
 */
#include "node/trust/acl.h"
#include "crdt/array.h"

#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/error.h"
#include "engram/limits.h"
#include "node/common/names.h"
#include "proto/acl.pb-c.h"

#define KEY_HEX_BYTES (2 * crypto_sign_PUBLICKEYBYTES + 1)
#define ID_HEX_BYTES  (2 * NODE_ACL_ID_BYTES + 1)
/*  "<user length>:<user><agent>": a key naming one (user, agent) pair unambiguously. */
#define PAIR_KEY_BYTES (24 + 2 * ENGRAM_ACL_MAX_NAME_BYTES)
/*  Room for every index key: a pair key, an agent name, a key or id in hex. */
#define INDEX_KEY_BYTES PAIR_KEY_BYTES
/*  The built-in redactions a redact policy without patterns stands for. */
static const char *const s_default_patterns[] = {"@email", "@phone", "@card", "@secret"};
#define NDEFAULT_PATTERNS (sizeof s_default_patterns / sizeof s_default_patterns[0])

/*  A verified statement. Never changes once kept. */
typedef struct {
    Engram__Statement *msg; /* unpacked from packed */
    uint8_t *packed;        /* the signed bytes: a packed Statement */
    size_t packed_len;
    char id_hex[ID_HEX_BYTES];
    char signer_hex[KEY_HEX_BYTES];
} s_stmt_t;

/*  What the current set makes of one statement. */
typedef struct {
    const s_stmt_t *stmt;
    bool effective; /* its signer was an admin at its issued_ms */
    uint64_t from_ms;
    uint64_t until_ms; /* after revocations; NODE_ACL_FOREVER: open */
} s_fact_t;

/*  Borrowed facts, in the statements' order. */
typedef struct {
    s_fact_t **items;
    size_t n, cap;
} s_list_t;

/*  An Ed25519 key's admin interval [from_ms, until_ms); from_ms NODE_ACL_FOREVER when a
 *  retirement came first in the order and no admin_add yet. */
typedef struct s_admin {
    uint8_t curve[32];
    uint64_t from_ms;
    uint64_t until_ms;
    bool root;                  /* admin at every time, whatever its interval says */
    struct s_admin *next_curve; /* another admin with the same CURVE form (P and -P) */
} s_admin_t;

typedef struct {
    s_fact_t **facts; /* one per kept statement, owned, in self->stmts' order */
    size_t nfacts, cap;
    zhashx_t *admins;        /* Ed25519 key hex -> s_admin_t, owned */
    zhashx_t *admin_curves;  /* CURVE key hex -> first s_admin_t of its next_curve chain */
    zhashx_t *revocations;   /* target id hex -> s_list_t of effective revocation facts */
    zhashx_t *agent_edges;   /* agent -> s_list_t of its effective agent_resource facts */
    zhashx_t *act_edges;     /* pair key -> s_list_t of its effective user_agent facts */
    zhashx_t *registrations; /* CURVE key hex -> s_list_t of effective agent facts */
    s_list_t policies;       /* effective policy facts */
    /* node_acl_policy's answer, written by that (const) call: room for patterns_room, every
       pattern of every effective redact policy, so it never allocates. */
    const char **patterns;
    size_t patterns_room;
    uint64_t ineffective;
} s_graph_t;

struct node_acl {
    uint8_t root[crypto_sign_PUBLICKEYBYTES];
    s_stmt_t **stmts; /* kept statements, sorted by s_stmt_cmp, owned */
    size_t nstmts, cap;
    s_graph_t *graph; /* derived from stmts, owned; never NULL */
    uint64_t refused;
};

/*  --- small helpers ---------------------------------------------------------------------- */

static uint64_t s_min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/*  Makes room for one more item. */
static int s_list_reserve(s_list_t *list)
{
    return crdt_array_grow((void **)&list->items, &list->cap, list->n + 1, sizeof *list->items);
}

static void s_list_destroy(void **item)
{
    s_list_t *list = *item;
    if (list) {
        free(list->items);
        free(list);
        *item = NULL;
    }
}

static void s_free(void **item)
{
    free(*item);
    *item = NULL;
}

static zhashx_t *s_index_new(zhashx_destructor_fn *destructor)
{
    zhashx_t *index = zhashx_new();
    if (index && destructor)
        zhashx_set_destructor(index, destructor);
    return index;
}

/*  Writes the pair key of (user, agent); false when a name is too long to be in any edge. */
static bool s_pair_key(char key[PAIR_KEY_BYTES], const char *user, const char *agent)
{
    size_t ulen = strlen(user);
    if (ulen > ENGRAM_ACL_MAX_NAME_BYTES || strlen(agent) > ENGRAM_ACL_MAX_NAME_BYTES)
        return false;
    snprintf(key, PAIR_KEY_BYTES, "%zu:%s%s", ulen, user, agent);
    return true;
}

static bool s_valid(const s_fact_t *fact, uint64_t t)
{
    return fact->effective && fact->from_ms <= t && t < fact->until_ms;
}

static bool s_admin_valid(const s_admin_t *admin, uint64_t t)
{
    return admin && (admin->root || (admin->from_ms <= t && t < admin->until_ms));
}

/*  Whether resource or scope pattern `pattern` covers `name`: equal; or "*", which covers
 *  every "kind:id" name except private ("@...") and system ("sys:...") ones; or a prefix
 *  then '*', which covers the names with that prefix. */
static bool s_match(const char *pattern, const char *name)
{
    size_t n = strlen(pattern);
    if (n == 0 || pattern[n - 1] != '*')
        return strcmp(pattern, name) == 0;
    if (n == 1) {
        const char *colon = strchr(name, ':');
        return name[0] != '@' && colon && colon != name && colon[1] &&
               strncmp(name, "sys:", 4) != 0;
    }
    return strncmp(name, pattern, n - 1) == 0;
}

/*  --- statements ------------------------------------------------------------------------- */

static void s_stmt_destroy(s_stmt_t **stmt_p)
{
    s_stmt_t *stmt = *stmt_p;
    if (stmt) {
        engram__statement__free_unpacked(stmt->msg, NULL);
        free(stmt->packed);
        free(stmt);
        *stmt_p = NULL;
    }
}

/*  A kept statement from its verified message (taken: *msg_p becomes NULL) and a copy of its
 *  packed bytes; NULL when out of memory. */
static s_stmt_t *s_stmt_new(Engram__Statement **msg_p, const ProtobufCBinaryData *packed)
{
    Engram__Statement *msg = *msg_p;
    *msg_p = NULL;
    s_stmt_t *stmt = calloc(1, sizeof *stmt);
    uint8_t *copy = malloc(packed->len);
    if (!stmt || !copy) {
        free(stmt);
        free(copy);
        engram__statement__free_unpacked(msg, NULL);
        return NULL;
    }
    stmt->msg = msg;
    stmt->packed = memcpy(copy, packed->data, packed->len);
    stmt->packed_len = packed->len;
    sodium_bin2hex(stmt->id_hex, sizeof stmt->id_hex, msg->id.data, msg->id.len);
    sodium_bin2hex(stmt->signer_hex, sizeof stmt->signer_hex, msg->signer.data, msg->signer.len);
    return stmt;
}

/*  The order every pass follows: issued_ms, then id, then (only two different statements
 *  claiming one id tie so far) the packed bytes. */
static int s_stmt_cmp(const s_stmt_t *a, const s_stmt_t *b)
{
    if (a->msg->issued_ms != b->msg->issued_ms)
        return a->msg->issued_ms < b->msg->issued_ms ? -1 : 1;
    int c = memcmp(a->msg->id.data, b->msg->id.data, NODE_ACL_ID_BYTES);
    if (c)
        return c;
    c = memcmp(a->packed, b->packed, s_min(a->packed_len, b->packed_len));
    if (c)
        return c;
    return a->packed_len < b->packed_len ? -1 : a->packed_len > b->packed_len;
}

static const char *s_kind(const Engram__Statement *msg)
{
    switch (msg->body_case) {
    case ENGRAM__STATEMENT__BODY_ADMIN_ADD:
        return "admin_add";
    case ENGRAM__STATEMENT__BODY_ADMIN_RETIRE:
        return "admin_retire";
    case ENGRAM__STATEMENT__BODY_AGENT:
        return "agent";
    case ENGRAM__STATEMENT__BODY_USER_AGENT:
        return "user_agent";
    case ENGRAM__STATEMENT__BODY_AGENT_RESOURCE:
        return "agent_resource";
    case ENGRAM__STATEMENT__BODY_REVOCATION:
        return "revocation";
    case ENGRAM__STATEMENT__BODY_POLICY:
        return "policy";
    default:
        return "none";
    }
}

static bool s_is_admin_statement(const Engram__Statement *msg)
{
    return msg->body_case == ENGRAM__STATEMENT__BODY_ADMIN_ADD ||
           msg->body_case == ENGRAM__STATEMENT__BODY_ADMIN_RETIRE;
}

/*  Formats a refusal's reason into why (may be NULL) and returns rc. */
static int s_why(int rc, char *why, size_t why_len, const char *fmt, ...)
{
    if (why && why_len) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(why, why_len, fmt, args);
        va_end(args);
    }
    return rc;
}

static int s_check_name(const char *name, const char *what, char *why, size_t why_len)
{
    if (!*name)
        return s_why(ENGRAM_EDECODE, why, why_len, "no %s name", what);
    if (strlen(name) > ENGRAM_ACL_MAX_NAME_BYTES)
        return s_why(ENGRAM_ETOOBIG, why, why_len, "%s name longer than %d bytes", what,
                     ENGRAM_ACL_MAX_NAME_BYTES);
    const char *problem = NULL; /* the agent API's rule for names (node/common/names.h) */
    if (!node_name_ok(name, strlen(name), &problem))
        return s_why(ENGRAM_EDECODE, why, why_len, "the %s name %s", what, problem);
    return 0;
}

/*  A resource or scope pattern: not empty, not private, and '*' only as the last byte of
 *  "*" or of a prefix that names a kind ("run:*", "run:q*"). */
static int s_check_resource(const char *resource, const char *what, char *why, size_t why_len)
{
    size_t len = strlen(resource);
    if (len == 0)
        return s_why(ENGRAM_EDECODE, why, why_len, "no %s", what);
    if (len > ENGRAM_ACL_MAX_RESOURCE_BYTES)
        return s_why(ENGRAM_ETOOBIG, why, why_len, "%s longer than %d bytes", what,
                     ENGRAM_ACL_MAX_RESOURCE_BYTES);
    if (resource[0] == '@')
        return s_why(ENGRAM_EDECODE, why, why_len, "the %s names a private scope", what);
    const char *star = strchr(resource, '*');
    if (star && (star[1] || (star != resource && !memchr(resource, ':', len - 1))))
        return s_why(ENGRAM_EDECODE, why, why_len,
                     "the %s is not a pattern: '*' or KIND:PREFIX then one final '*'", what);
    return 0;
}

static int s_check_interval(uint64_t from_ms, uint64_t until_ms, char *why, size_t why_len)
{
    if (until_ms != 0 && from_ms >= until_ms)
        return s_why(ENGRAM_EDECODE, why, why_len, "empty interval [%" PRIu64 ", %" PRIu64 ")",
                     from_ms, until_ms);
    return 0;
}

static int s_check_key(const ProtobufCBinaryData *key, const char *what, char *why, size_t why_len)
{
    uint8_t curve[32];
    if (key->len != crypto_sign_PUBLICKEYBYTES ||
        crypto_sign_ed25519_pk_to_curve25519(curve, key->data) != 0)
        return s_why(ENGRAM_EDECODE, why, why_len, "%s is no Ed25519 public key", what);
    return 0;
}

/*  Everything node_acl_add checks of a statement besides its signature and version. */
static int s_check_body(const Engram__Statement *msg, char *why, size_t why_len)
{
    int rc = 0;
    switch (msg->body_case) {
    case ENGRAM__STATEMENT__BODY_ADMIN_ADD:
        return s_check_key(&msg->admin_add->key, "admin key", why, why_len);
    case ENGRAM__STATEMENT__BODY_ADMIN_RETIRE:
        return s_check_key(&msg->admin_retire->key, "admin key", why, why_len);
    case ENGRAM__STATEMENT__BODY_AGENT:
        if ((rc = s_check_name(msg->agent->name, "agent", why, why_len)) != 0)
            return rc;
        if (msg->agent->curve_key.len != 32)
            return s_why(ENGRAM_EDECODE, why, why_len, "agent CURVE key is not 32 bytes");
        return 0;
    case ENGRAM__STATEMENT__BODY_USER_AGENT: {
        const Engram__UserAgentEdge *e = msg->user_agent;
        if ((rc = s_check_name(e->user, "user", why, why_len)) != 0 ||
            (rc = s_check_name(e->agent, "agent", why, why_len)) != 0)
            return rc;
        return s_check_interval(e->from_ms, e->until_ms, why, why_len);
    }
    case ENGRAM__STATEMENT__BODY_AGENT_RESOURCE: {
        const Engram__AgentResourceEdge *e = msg->agent_resource;
        if ((rc = s_check_name(e->agent, "agent", why, why_len)) != 0 ||
            (rc = s_check_resource(e->resource, "resource", why, why_len)) != 0)
            return rc;
        if (!e->read && !e->write)
            return s_why(ENGRAM_EDECODE, why, why_len, "edge grants neither read nor write");
        return s_check_interval(e->from_ms, e->until_ms, why, why_len);
    }
    case ENGRAM__STATEMENT__BODY_REVOCATION:
        if (msg->revocation->target.len != NODE_ACL_ID_BYTES)
            return s_why(ENGRAM_EDECODE, why, why_len, "revocation target is not %d bytes",
                         NODE_ACL_ID_BYTES);
        return 0;
    case ENGRAM__STATEMENT__BODY_POLICY: {
        const Engram__WritePolicy *p = msg->policy;
        if (p->action != ENGRAM__POLICY_ACTION__POLICY_BLOCK &&
            p->action != ENGRAM__POLICY_ACTION__POLICY_REDACT)
            return s_why(ENGRAM_EDECODE, why, why_len, "policy has no action");
        if ((rc = s_check_resource(p->scope_pattern, "scope pattern", why, why_len)) != 0)
            return rc;
        if (p->n_patterns > ENGRAM_ACL_MAX_PATTERNS)
            return s_why(ENGRAM_ETOOBIG, why, why_len, "more than %d patterns",
                         ENGRAM_ACL_MAX_PATTERNS);
        for (size_t i = 0; i < p->n_patterns; i++) {
            size_t len = strlen(p->patterns[i]);
            if (len == 0)
                return s_why(ENGRAM_EDECODE, why, why_len, "empty pattern");
            if (len > ENGRAM_ACL_MAX_PATTERN_BYTES)
                return s_why(ENGRAM_ETOOBIG, why, why_len, "pattern longer than %d bytes",
                             ENGRAM_ACL_MAX_PATTERN_BYTES);
        }
        return 0;
    }
    default:
        return s_why(ENGRAM_EDECODE, why, why_len, "statement has no body");
    }
}

/*  Unpacks and verifies a SignedStatement into a new s_stmt_t (caller owns), or refuses it. */
static int s_open(const uint8_t *data, size_t len, s_stmt_t **stmt_p, char *why, size_t why_len)
{
    *stmt_p = NULL;
    if (len > ENGRAM_ACL_MAX_STATEMENT_BYTES)
        return s_why(ENGRAM_ETOOBIG, why, why_len, "statement larger than %d bytes",
                     ENGRAM_ACL_MAX_STATEMENT_BYTES);
    Engram__SignedStatement *signed_msg = engram__signed_statement__unpack(NULL, len, data);
    if (!signed_msg)
        return s_why(ENGRAM_EDECODE, why, why_len, "not a SignedStatement");
    int rc = 0;
    Engram__Statement *msg =
        engram__statement__unpack(NULL, signed_msg->statement.len, signed_msg->statement.data);
    if (!msg)
        rc = s_why(ENGRAM_EDECODE, why, why_len, "no Statement in the SignedStatement");
    else if (msg->schema_major > ENGRAM_SCHEMA_MAJOR)
        rc = s_why(ENGRAM_EVERSION, why, why_len, "statement of schema %u.%u (this node reads %d)",
                   msg->schema_major, msg->schema_minor, ENGRAM_SCHEMA_MAJOR);
    else if (msg->id.len != NODE_ACL_ID_BYTES)
        rc = s_why(ENGRAM_EDECODE, why, why_len, "statement id is not %d bytes", NODE_ACL_ID_BYTES);
    else if (msg->signer.len != crypto_sign_PUBLICKEYBYTES)
        rc = s_why(ENGRAM_EDECODE, why, why_len, "signer is not an Ed25519 public key");
    else
        rc = s_check_body(msg, why, why_len);
    if (rc == 0 &&
        (signed_msg->signature.len != crypto_sign_BYTES ||
         crypto_sign_verify_detached(signed_msg->signature.data, signed_msg->statement.data,
                                     signed_msg->statement.len, msg->signer.data) != 0))
        rc = s_why(ENGRAM_EDENIED, why, why_len, "the signature does not verify");
    if (rc == 0) {
        *stmt_p = s_stmt_new(&msg, &signed_msg->statement);
        if (!*stmt_p)
            rc = s_why(ENGRAM_ENOMEM, why, why_len, "out of memory");
    }
    if (msg)
        engram__statement__free_unpacked(msg, NULL);
    engram__signed_statement__free_unpacked(signed_msg, NULL);
    return rc;
}

/*  --- the graph -------------------------------------------------------------------------- */

/*  Inserts fact into list in the statements' order (room reserved): a walk back from the end,
 *  where a graph built in order appends. */
static void s_list_insert(s_list_t *list, s_fact_t *fact)
{
    assert(list->n < list->cap);
    size_t i = list->n;
    while (i > 0 && s_stmt_cmp(list->items[i - 1]->stmt, fact->stmt) > 0) {
        list->items[i] = list->items[i - 1];
        i--;
    }
    list->items[i] = fact;
    list->n++;
}

static void s_graph_destroy(s_graph_t **graph_p)
{
    s_graph_t *graph = *graph_p;
    if (graph) {
        zhashx_destroy(&graph->registrations);
        zhashx_destroy(&graph->act_edges);
        zhashx_destroy(&graph->agent_edges);
        zhashx_destroy(&graph->revocations);
        zhashx_destroy(&graph->admin_curves);
        zhashx_destroy(&graph->admins);
        for (size_t i = 0; i < graph->nfacts; i++)
            free(graph->facts[i]);
        free(graph->facts);
        free(graph->policies.items);
        free(graph->patterns);
        free(graph);
        *graph_p = NULL;
    }
}

static s_admin_t *s_admin_of(const s_graph_t *graph, const uint8_t key[32])
{
    char hex[KEY_HEX_BYTES];
    sodium_bin2hex(hex, sizeof hex, key, crypto_sign_PUBLICKEYBYTES);
    return zhashx_lookup(graph->admins, hex);
}

/*  The admin entry of key, created (not yet an admin: from NODE_ACL_FOREVER) if new. */
static s_admin_t *s_admin_ensure(s_graph_t *graph, const uint8_t key[32])
{
    char hex[KEY_HEX_BYTES];
    sodium_bin2hex(hex, sizeof hex, key, crypto_sign_PUBLICKEYBYTES);
    s_admin_t *admin = zhashx_lookup(graph->admins, hex);
    if (admin)
        return admin;
    admin = calloc(1, sizeof *admin);
    if (!admin)
        return NULL;
    /* Keys were checked on receipt (s_check_key) or by node_acl_new. */
    int rc = crypto_sign_ed25519_pk_to_curve25519(admin->curve, key);
    assert(rc == 0);
    admin->from_ms = NODE_ACL_FOREVER;
    admin->until_ms = NODE_ACL_FOREVER;
    zhashx_insert(graph->admins, hex, admin);
    char curve_hex[KEY_HEX_BYTES];
    sodium_bin2hex(curve_hex, sizeof curve_hex, admin->curve, sizeof admin->curve);
    admin->next_curve = zhashx_lookup(graph->admin_curves, curve_hex);
    zhashx_update(graph->admin_curves, curve_hex, admin);
    return admin;
}

static bool s_signer_admin(const s_graph_t *graph, const Engram__Statement *msg)
{
    return s_admin_valid(s_admin_of(graph, msg->signer.data), msg->issued_ms);
}

/*  Step 1: the admin intervals, from the admin statements in order. */
static int s_graph_admins(s_graph_t *graph)
{
    for (size_t i = 0; i < graph->nfacts; i++) {
        s_fact_t *fact = graph->facts[i];
        const Engram__Statement *msg = fact->stmt->msg;
        if (!s_is_admin_statement(msg))
            continue;
        fact->effective = s_signer_admin(graph, msg);
        if (!fact->effective)
            continue;
        bool add = msg->body_case == ENGRAM__STATEMENT__BODY_ADMIN_ADD;
        s_admin_t *admin =
            s_admin_ensure(graph, add ? msg->admin_add->key.data : msg->admin_retire->key.data);
        if (!admin)
            return ENGRAM_ENOMEM;
        if (add)
            admin->from_ms = s_min(admin->from_ms, msg->issued_ms);
        else
            admin->until_ms = s_min(admin->until_ms, msg->admin_retire->at_ms);
    }
    return 0;
}

/*  A fact's interval: its statement's own, lowered by the effective revocations of its id
 *  when it is a registration, an edge or a policy. */
static void s_fact_interval(const s_graph_t *graph, s_fact_t *fact)
{
    const Engram__Statement *msg = fact->stmt->msg;
    fact->from_ms = msg->issued_ms;
    fact->until_ms = NODE_ACL_FOREVER;
    switch (msg->body_case) {
    case ENGRAM__STATEMENT__BODY_ADMIN_ADD:
        if (fact->effective)
            fact->until_ms = s_admin_of(graph, msg->admin_add->key.data)->until_ms;
        return;
    case ENGRAM__STATEMENT__BODY_ADMIN_RETIRE:
        fact->from_ms = msg->admin_retire->at_ms;
        return;
    case ENGRAM__STATEMENT__BODY_REVOCATION:
        fact->from_ms = msg->revocation->at_ms;
        return;
    case ENGRAM__STATEMENT__BODY_USER_AGENT:
        fact->from_ms = msg->user_agent->from_ms;
        if (msg->user_agent->until_ms)
            fact->until_ms = msg->user_agent->until_ms;
        break;
    case ENGRAM__STATEMENT__BODY_AGENT_RESOURCE:
        fact->from_ms = msg->agent_resource->from_ms;
        if (msg->agent_resource->until_ms)
            fact->until_ms = msg->agent_resource->until_ms;
        break;
    default: /* agent, policy: from issued_ms until revoked */
        break;
    }
    const s_list_t *revocations = zhashx_lookup(graph->revocations, fact->stmt->id_hex);
    for (size_t i = 0; revocations && i < revocations->n; i++)
        fact->until_ms = s_min(fact->until_ms, revocations->items[i]->stmt->msg->revocation->at_ms);
}

/*  *list gets the index list an effective fact belongs in, created if missing and with room
 *  for it (NULL for admin statements, which are in no list). 0 or ENGRAM_ENOMEM. */
static int s_index_of(s_graph_t *graph, const s_fact_t *fact, s_list_t **list)
{
    const Engram__Statement *msg = fact->stmt->msg;
    char key[INDEX_KEY_BYTES];
    zhashx_t *index;
    *list = NULL;
    switch (msg->body_case) {
    case ENGRAM__STATEMENT__BODY_AGENT:
        index = graph->registrations;
        sodium_bin2hex(key, sizeof key, msg->agent->curve_key.data, msg->agent->curve_key.len);
        break;
    case ENGRAM__STATEMENT__BODY_USER_AGENT:
        index = graph->act_edges;
        s_pair_key(key, msg->user_agent->user, msg->user_agent->agent);
        break;
    case ENGRAM__STATEMENT__BODY_AGENT_RESOURCE:
        index = graph->agent_edges;
        snprintf(key, sizeof key, "%s", msg->agent_resource->agent);
        break;
    case ENGRAM__STATEMENT__BODY_REVOCATION:
        index = graph->revocations;
        sodium_bin2hex(key, sizeof key, msg->revocation->target.data, NODE_ACL_ID_BYTES);
        break;
    case ENGRAM__STATEMENT__BODY_POLICY:
        *list = &graph->policies;
        return s_list_reserve(*list);
    default:
        return 0;
    }
    *list = zhashx_lookup(index, key);
    if (!*list) {
        *list = calloc(1, sizeof **list);
        if (!*list)
            return ENGRAM_ENOMEM;
        zhashx_insert(index, key, *list);
    }
    return s_list_reserve(*list);
}

/*  How many patterns an effective statement adds to node_acl_policy's answer at most. */
static size_t s_pattern_room(const Engram__Statement *msg)
{
    if (msg->body_case != ENGRAM__STATEMENT__BODY_POLICY ||
        msg->policy->action != ENGRAM__POLICY_ACTION__POLICY_REDACT)
        return 0;
    return msg->policy->n_patterns ? msg->policy->n_patterns : NDEFAULT_PATTERNS;
}

static int s_reserve_patterns(s_graph_t *graph, size_t more)
{
    const char **patterns =
        realloc(graph->patterns, (graph->patterns_room + more + 1) * sizeof *patterns);
    if (!patterns)
        return ENGRAM_ENOMEM;
    graph->patterns = patterns;
    graph->patterns_room += more;
    return 0;
}

/*  Puts an effective fact into its index list. */
static int s_index(s_graph_t *graph, s_fact_t *fact)
{
    s_list_t *list;
    int rc = s_index_of(graph, fact, &list);
    if (rc == 0 && list)
        s_list_insert(list, fact);
    return rc;
}

/*  A new graph of the kept statements (steps 1 to 4); NULL when out of memory. */
static s_graph_t *s_graph_new(const node_acl_t *self)
{
    size_t n = self->nstmts;
    s_graph_t *graph = calloc(1, sizeof *graph);
    if (!graph)
        return NULL;
    graph->cap = n ? n : 1;
    graph->facts = calloc(graph->cap, sizeof *graph->facts);
    graph->admins = s_index_new(s_free);
    graph->admin_curves = s_index_new(NULL);
    graph->revocations = s_index_new(s_list_destroy);
    graph->agent_edges = s_index_new(s_list_destroy);
    graph->act_edges = s_index_new(s_list_destroy);
    graph->registrations = s_index_new(s_list_destroy);
    int rc = graph->facts && graph->admins && graph->admin_curves && graph->revocations &&
                     graph->agent_edges && graph->act_edges && graph->registrations
                 ? 0
                 : ENGRAM_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        s_fact_t *fact = calloc(1, sizeof *fact);
        if (!fact) {
            rc = ENGRAM_ENOMEM;
            break;
        }
        fact->stmt = self->stmts[i];
        graph->facts[graph->nfacts++] = fact;
    }
    s_admin_t *root = rc == 0 ? s_admin_ensure(graph, self->root) : NULL;
    if (root) {
        root->root = true;
        root->from_ms = 0;
        rc = s_graph_admins(graph);
    } else {
        rc = ENGRAM_ENOMEM;
    }
    /* Step 2: the other statements' effect, and the effective revocations' index. */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        s_fact_t *fact = graph->facts[i];
        if (!s_is_admin_statement(fact->stmt->msg))
            fact->effective = s_signer_admin(graph, fact->stmt->msg);
        graph->ineffective += !fact->effective;
        if (fact->effective && fact->stmt->msg->body_case == ENGRAM__STATEMENT__BODY_REVOCATION)
            rc = s_index(graph, fact);
    }
    /* Step 3: intervals. Step 4: the other indexes. */
    for (size_t i = 0; rc == 0 && i < n; i++)
        s_fact_interval(graph, graph->facts[i]);
    size_t patterns = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        s_fact_t *fact = graph->facts[i];
        if (fact->effective && fact->stmt->msg->body_case != ENGRAM__STATEMENT__BODY_REVOCATION) {
            patterns += s_pattern_room(fact->stmt->msg);
            rc = s_index(graph, fact);
        }
    }
    if (rc == 0)
        rc = s_reserve_patterns(graph, patterns);
    if (rc)
        s_graph_destroy(&graph);
    return graph;
}

/*  Adds the fact of a new statement, kept at position `at`, that is not an admin statement:
 *  it changes no admin interval, so the graph s_graph_new would build is this one plus its
 *  fact and, for an effective revocation, the intervals of its targets lowered (found by a
 *  scan of the facts: O(n) comparisons, no allocation). 0, or ENGRAM_ENOMEM and nothing
 *  changes (an empty index list aside). */
static int s_graph_insert(s_graph_t *graph, size_t at, const s_stmt_t *stmt)
{
    assert(!s_is_admin_statement(stmt->msg));
    if (crdt_array_grow((void **)&graph->facts, &graph->cap, graph->nfacts + 1,
                        sizeof *graph->facts))
        return ENGRAM_ENOMEM;
    s_fact_t *fact = calloc(1, sizeof *fact);
    if (!fact)
        return ENGRAM_ENOMEM;
    fact->stmt = stmt;
    fact->effective = s_signer_admin(graph, stmt->msg);
    s_fact_interval(graph, fact);
    s_list_t *list = NULL;
    int rc = fact->effective ? s_index_of(graph, fact, &list) : 0;
    if (rc == 0 && fact->effective && s_pattern_room(stmt->msg))
        rc = s_reserve_patterns(graph, s_pattern_room(stmt->msg));
    if (rc) {
        free(fact);
        return rc;
    }
    memmove(&graph->facts[at + 1], &graph->facts[at], (graph->nfacts - at) * sizeof *graph->facts);
    graph->facts[at] = fact;
    graph->nfacts++;
    if (list)
        s_list_insert(list, fact);
    graph->ineffective += !fact->effective;
    if (fact->effective && stmt->msg->body_case == ENGRAM__STATEMENT__BODY_REVOCATION) {
        char target[2 * NODE_ACL_ID_BYTES + 1];
        sodium_bin2hex(target, sizeof target, stmt->msg->revocation->target.data,
                       NODE_ACL_ID_BYTES);
        for (size_t i = 0; i < graph->nfacts; i++)
            if (strcmp(graph->facts[i]->stmt->id_hex, target) == 0)
                s_fact_interval(graph, graph->facts[i]);
    }
    return 0;
}

/*  --- the acl --------------------------------------------------------------------------- */

node_acl_t *node_acl_new(const uint8_t root_admin[crypto_sign_PUBLICKEYBYTES])
{
    assert(root_admin);
    uint8_t curve[32];
    if (sodium_init() < 0 || crypto_sign_ed25519_pk_to_curve25519(curve, root_admin) != 0)
        return NULL;
    node_acl_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    memcpy(self->root, root_admin, sizeof self->root);
    self->graph = s_graph_new(self);
    if (!self->graph)
        node_acl_destroy(&self);
    return self;
}

void node_acl_destroy(node_acl_t **self_p)
{
    assert(self_p);
    node_acl_t *self = *self_p;
    if (self) {
        s_graph_destroy(&self->graph);
        for (size_t i = 0; i < self->nstmts; i++)
            s_stmt_destroy(&self->stmts[i]);
        free(self->stmts);
        free(self);
        *self_p = NULL;
    }
}

/*  Where stmt belongs in the sorted statements; *same when an identical one is there. */
static size_t s_position(const node_acl_t *self, const s_stmt_t *stmt, bool *same)
{
    size_t lo = 0, hi = self->nstmts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = s_stmt_cmp(self->stmts[mid], stmt);
        if (c == 0) {
            *same = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *same = false;
    return lo;
}

int node_acl_add(node_acl_t *self, const uint8_t *signed_statement, size_t len,
                 uint8_t id[NODE_ACL_ID_BYTES], char *why, size_t why_len)
{
    assert(self);
    assert(signed_statement || len == 0);
    s_stmt_t *stmt = NULL;
    int rc = s_open(signed_statement, len, &stmt, why, why_len);
    if (rc) {
        self->refused += rc != ENGRAM_ENOMEM;
        return rc;
    }
    if (id)
        memcpy(id, stmt->msg->id.data, NODE_ACL_ID_BYTES);
    bool same = false;
    size_t at = s_position(self, stmt, &same);
    if (same) {
        s_stmt_destroy(&stmt);
        return s_why(1, why, why_len, "already kept");
    }
    if (crdt_array_grow((void **)&self->stmts, &self->cap, self->nstmts + 1, sizeof *self->stmts)) {
        s_stmt_destroy(&stmt);
        return s_why(ENGRAM_ENOMEM, why, why_len, "out of memory");
    }
    memmove(&self->stmts[at + 1], &self->stmts[at], (self->nstmts - at) * sizeof *self->stmts);
    self->stmts[at] = stmt;
    self->nstmts++;
    /* Admin statements change which other statements count: the graph is built anew. */
    if (s_is_admin_statement(stmt->msg)) {
        s_graph_t *graph = s_graph_new(self);
        rc = graph ? 0 : ENGRAM_ENOMEM;
        if (graph) {
            s_graph_destroy(&self->graph);
            self->graph = graph;
        }
    } else {
        rc = s_graph_insert(self->graph, at, stmt);
    }
    if (rc) {
        self->nstmts--;
        memmove(&self->stmts[at], &self->stmts[at + 1], (self->nstmts - at) * sizeof *self->stmts);
        s_stmt_destroy(&stmt);
        return s_why(rc, why, why_len, "out of memory");
    }
    if (self->graph->facts[at]->effective)
        return s_why(0, why, why_len, "");
    return s_why(0, why, why_len, "kept, without effect: its signer is no admin at %" PRIu64,
                 stmt->msg->issued_ms);
}

uint64_t node_acl_refused(const node_acl_t *self)
{
    assert(self);
    return self->refused;
}

uint64_t node_acl_ineffective(const node_acl_t *self)
{
    assert(self);
    return self->graph->ineffective;
}

size_t node_acl_size(const node_acl_t *self)
{
    assert(self);
    return self->nstmts;
}

/*  --- identity -------------------------------------------------------------------------- */

const char *node_acl_agent_of(const node_acl_t *self, const uint8_t curve_key[32], uint64_t t)
{
    return node_acl_agent_home(self, curve_key, t, NULL);
}

const char *node_acl_agent_home(const node_acl_t *self, const uint8_t curve_key[32], uint64_t t,
                                uint64_t *home_node)
{
    assert(self && curve_key);
    char hex[KEY_HEX_BYTES];
    sodium_bin2hex(hex, sizeof hex, curve_key, 32);
    const s_list_t *regs = zhashx_lookup(self->graph->registrations, hex);
    for (size_t i = 0; regs && i < regs->n; i++)
        if (s_valid(regs->items[i], t)) {
            if (home_node)
                *home_node = regs->items[i]->stmt->msg->agent->home_node;
            return regs->items[i]->stmt->msg->agent->name;
        }
    return NULL;
}

bool node_acl_key_pending(const node_acl_t *self, const uint8_t curve_key[32], uint64_t t)
{
    assert(self && curve_key);
    char hex[KEY_HEX_BYTES];
    sodium_bin2hex(hex, sizeof hex, curve_key, 32);
    const s_list_t *regs = zhashx_lookup(self->graph->registrations, hex);
    for (size_t i = 0; regs && i < regs->n; i++)
        if (regs->items[i]->effective && t < regs->items[i]->from_ms &&
            regs->items[i]->from_ms < regs->items[i]->until_ms)
            return true;
    return false;
}

bool node_acl_admin_curve(const node_acl_t *self, const uint8_t curve_key[32], uint64_t t)
{
    assert(self && curve_key);
    char hex[KEY_HEX_BYTES];
    sodium_bin2hex(hex, sizeof hex, curve_key, 32);
    for (const s_admin_t *a = zhashx_lookup(self->graph->admin_curves, hex); a; a = a->next_curve)
        if (s_admin_valid(a, t))
            return true;
    return false;
}

bool node_acl_is_admin(const node_acl_t *self, const uint8_t ed_key[crypto_sign_PUBLICKEYBYTES],
                       uint64_t t)
{
    assert(self && ed_key);
    return s_admin_valid(s_admin_of(self->graph, ed_key), t);
}

/*  --- decisions ------------------------------------------------------------------------- */

/*  The first user_agent edge letting agent act for user at t, or NULL. */
static const s_fact_t *s_act_edge(const node_acl_t *self, const char *agent, const char *user,
                                  uint64_t t)
{
    char key[PAIR_KEY_BYTES];
    if (!s_pair_key(key, user, agent))
        return NULL;
    const s_list_t *edges = zhashx_lookup(self->graph->act_edges, key);
    for (size_t i = 0; edges && i < edges->n; i++)
        if (s_valid(edges->items[i], t))
            return edges->items[i];
    return NULL;
}

/*  Why sid is open to agent acting for user at t for reading (write false) or writing, the
 *  act edge aside: OPEN_PRIVATE, OPEN_USER, OPEN_EDGE (*edge set), or OPEN_NOT. */
typedef enum { OPEN_NOT, OPEN_PRIVATE, OPEN_USER, OPEN_EDGE } s_open_t;

static s_open_t s_scope_open(const node_acl_t *self, const char *agent, const char *user,
                             const char *sid, bool write, uint64_t t, const s_fact_t **edge)
{
    *edge = NULL;
    if (sid[0] == '@')
        return strcmp(sid + 1, agent) == 0 ? OPEN_PRIVATE : OPEN_NOT;
    if (strncmp(sid, "user:", 5) == 0 && strcmp(sid + 5, user) == 0)
        return OPEN_USER;
    const s_list_t *edges = zhashx_lookup(self->graph->agent_edges, agent);
    for (size_t i = 0; edges && i < edges->n; i++) {
        const Engram__AgentResourceEdge *e = edges->items[i]->stmt->msg->agent_resource;
        if (s_valid(edges->items[i], t) && (write ? e->write : e->read) &&
            s_match(e->resource, sid)) {
            *edge = edges->items[i];
            return OPEN_EDGE;
        }
    }
    return OPEN_NOT;
}

bool node_acl_may_act(const node_acl_t *self, const char *agent, const char *user, uint64_t t)
{
    assert(self && agent && user);
    return s_act_edge(self, agent, user, t) != NULL;
}

static bool s_may(const node_acl_t *self, const char *agent, const char *user, const char *sid,
                  bool write, uint64_t t)
{
    assert(self && agent && user && sid);
    const s_fact_t *edge;
    return s_act_edge(self, agent, user, t) &&
           s_scope_open(self, agent, user, sid, write, t, &edge) != OPEN_NOT;
}

bool node_acl_may_read_scope(const node_acl_t *self, const char *agent, const char *user,
                             const char *sid, uint64_t t)
{
    return s_may(self, agent, user, sid, false, t);
}

bool node_acl_may_write_scope(const node_acl_t *self, const char *agent, const char *user,
                              const char *sid, uint64_t t)
{
    return s_may(self, agent, user, sid, true, t);
}

bool node_acl_may_read(const node_acl_t *self, const char *agent, const char *user, const char *sid,
                       const node_provenance_t *m, uint64_t t)
{
    if (!s_may(self, agent, user, sid, false, t))
        return false;
    if (!m)
        return true;
    for (size_t i = 0; i < m->nagents; i++)
        if (!s_act_edge(self, m->agents[i], user, t))
            return false;
    const s_fact_t *edge;
    for (size_t i = 0; i < m->nresources; i++)
        if (s_scope_open(self, agent, user, m->resources[i], false, t, &edge) == OPEN_NOT)
            return false;
    return true;
}

bool node_acl_may_administer(const node_acl_t *self, const uint8_t curve_key[32], bool write,
                             uint64_t t)
{
    if (node_acl_admin_curve(self, curve_key, t))
        return true;
    const char *agent = node_acl_agent_of(self, curve_key, t);
    const s_list_t *edges = agent ? zhashx_lookup(self->graph->agent_edges, agent) : NULL;
    for (size_t i = 0; edges && i < edges->n; i++) {
        const Engram__AgentResourceEdge *e = edges->items[i]->stmt->msg->agent_resource;
        if (s_valid(edges->items[i], t) && (write ? e->write : e->read) &&
            strcmp(e->resource, "cluster") == 0)
            return true;
    }
    return false;
}

/*  --- explain --------------------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, used;
} s_text_t;

static void s_say(s_text_t *text, const char *fmt, ...)
{
    if (text->used + 1 >= text->len)
        return;
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(text->buf + text->used, text->len - text->used, fmt, args);
    va_end(args);
    if (n > 0)
        text->used += s_min((size_t)n, text->len - text->used - 1);
}

/*  "[from, until)", with "open" for NODE_ACL_FOREVER. */
static const char *s_interval(char out[48], const s_fact_t *fact)
{
    if (fact->until_ms == NODE_ACL_FOREVER)
        snprintf(out, 48, "[%" PRIu64 ", open)", fact->from_ms);
    else
        snprintf(out, 48, "[%" PRIu64 ", %" PRIu64 ")", fact->from_ms, fact->until_ms);
    return out;
}

static bool s_explain_scope(const node_acl_t *self, const char *agent, const char *user,
                            const char *sid, bool write, uint64_t t, s_text_t *text)
{
    const char *verb = write ? "write" : "read";
    const s_fact_t *edge;
    char interval[48];
    switch (s_scope_open(self, agent, user, sid, write, t, &edge)) {
    case OPEN_PRIVATE:
        s_say(text, "may %s %s: private scope of %s\n", verb, sid, agent);
        return true;
    case OPEN_USER:
        s_say(text, "may %s %s: user scope of %s\n", verb, sid, user);
        return true;
    case OPEN_EDGE:
        s_say(text, "may %s %s: edge %s to %s %s\n", verb, sid, edge->stmt->id_hex,
              edge->stmt->msg->agent_resource->resource, s_interval(interval, edge));
        return true;
    default:
        s_say(text, "denied: no %s edge for (%s, %s) at %" PRIu64 "\n", verb, agent, sid, t);
        return false;
    }
}

bool node_acl_explain(const node_acl_t *self, const char *agent, const char *user, const char *sid,
                      uint64_t t, bool *may_write, char *buf, size_t len)
{
    assert(self && agent && user && sid && (buf || len == 0));
    s_text_t text = {buf, len, 0};
    if (len)
        buf[0] = '\0';
    char interval[48];
    const s_fact_t *act = s_act_edge(self, agent, user, t);
    if (act)
        s_say(&text, "may act for %s: edge %s %s\n", user, act->stmt->id_hex,
              s_interval(interval, act));
    else
        s_say(&text, "denied: no user->agent edge for (%s, %s) at %" PRIu64 "\n", user, agent, t);
    bool read = s_explain_scope(self, agent, user, sid, false, t, &text);
    bool write = s_explain_scope(self, agent, user, sid, true, t, &text);
    if (may_write)
        *may_write = act && write;
    return act && read;
}

/*  --- write policy ---------------------------------------------------------------------- */

bool node_acl_policy(const node_acl_t *self, const char *sid, uint64_t t, bool *block,
                     const char *const **patterns, size_t *npatterns)
{
    assert(self && sid && block && patterns && npatterns);
    const s_graph_t *graph = self->graph;
    bool any = false;
    size_t n = 0;
    *block = false;
    for (size_t i = 0; i < graph->policies.n; i++) {
        const s_fact_t *fact = graph->policies.items[i];
        const Engram__WritePolicy *p = fact->stmt->msg->policy;
        if (!s_valid(fact, t) || !s_match(p->scope_pattern, sid))
            continue;
        any = true;
        if (p->action == ENGRAM__POLICY_ACTION__POLICY_BLOCK) {
            *block = true;
            continue;
        }
        size_t count = p->n_patterns ? p->n_patterns : NDEFAULT_PATTERNS;
        for (size_t j = 0; j < count; j++) {
            const char *pattern = p->n_patterns ? p->patterns[j] : s_default_patterns[j];
            size_t k = 0;
            while (k < n && strcmp(graph->patterns[k], pattern) != 0)
                k++;
            if (k == n)
                graph->patterns[n++] = pattern;
        }
    }
    *patterns = graph->patterns;
    *npatterns = n;
    return any;
}

/*  --- listing --------------------------------------------------------------------------- */

int node_acl_each(const node_acl_t *self, uint64_t t, node_acl_visit_fn fn, void *arg)
{
    assert(self && fn);
    for (size_t i = 0; i < self->nstmts; i++) {
        const s_fact_t *fact = self->graph->facts[i];
        const s_stmt_t *stmt = fact->stmt;
        node_acl_entry_t entry = {
            .kind = s_kind(stmt->msg),
            .id_hex = stmt->id_hex,
            .signer_hex = stmt->signer_hex,
            .issued_ms = stmt->msg->issued_ms,
            .from_ms = fact->from_ms,
            .until_ms = fact->until_ms,
            .effective = fact->effective,
            .valid_at = s_valid(fact, t),
            .statement = stmt->packed,
            .statement_len = stmt->packed_len,
        };
        int rc = fn(arg, &entry);
        if (rc)
            return rc;
    }
    return 0;
}

/*  --- signing --------------------------------------------------------------------------- */

int node_acl_sign(void *statement, const uint8_t secret_key[crypto_sign_SECRETKEYBYTES],
                  uint64_t issued_ms, uint8_t **signed_out, size_t *len)
{
    assert(statement && secret_key && signed_out && len);
    *signed_out = NULL;
    *len = 0;
    if (sodium_init() < 0)
        return ENGRAM_EIO;
    /* A shallow copy carries the header, so the caller's struct is never changed and no
       field of it ever points at this function's buffers. */
    Engram__Statement msg = *(const Engram__Statement *)statement;
    assert(msg.base.descriptor == &engram__statement__descriptor);
    uint8_t id[NODE_ACL_ID_BYTES];
    uint8_t signer[crypto_sign_PUBLICKEYBYTES];
    randombytes_buf(id, sizeof id);
    crypto_sign_ed25519_sk_to_pk(signer, secret_key);
    msg.schema_major = ENGRAM_SCHEMA_MAJOR;
    msg.schema_minor = ENGRAM_SCHEMA_MINOR;
    msg.id = (ProtobufCBinaryData){sizeof id, id};
    msg.signer = (ProtobufCBinaryData){sizeof signer, signer};
    msg.issued_ms = issued_ms;
    size_t packed_len = engram__statement__get_packed_size(&msg);
    uint8_t *packed = malloc(packed_len);
    if (!packed)
        return ENGRAM_ENOMEM;
    engram__statement__pack(&msg, packed);
    uint8_t signature[crypto_sign_BYTES];
    crypto_sign_detached(signature, NULL, packed, packed_len, secret_key);
    Engram__SignedStatement signed_msg = ENGRAM__SIGNED_STATEMENT__INIT;
    signed_msg.statement = (ProtobufCBinaryData){packed_len, packed};
    signed_msg.signature = (ProtobufCBinaryData){sizeof signature, signature};
    size_t out_len = engram__signed_statement__get_packed_size(&signed_msg);
    uint8_t *out = malloc(out_len);
    if (out) {
        engram__signed_statement__pack(&signed_msg, out);
        *signed_out = out;
        *len = out_len;
    }
    free(packed);
    return out ? 0 : ENGRAM_ENOMEM;
}
