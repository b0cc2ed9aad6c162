/*  bench_acl: the access control of the engramd nodes the benchmarks start (bench_util.h);
 *  apart from bench_util.c so that benchmarks that start no node need neither engram_trust
 *  nor the tests' agent keys.
 *
 *  Every statement is signed by the benchmark's admin, which is the node's root admin (its
 *  DATA/trust or its card names the same key), so every statement has effect.
 *
 *  The graph of bench_acl_graph, for the n benchmark agents B and scope S ("run:..."), user U;
 *  times relative to now: "old" 30 days ago, "revoked" 1 day ago, "recent" 1 hour ago:
 *    - BENCH_ACL_GRAPH_AGENTS other agents agent-K (random CURVE keys: nobody connects with
 *      them), each registered, acting for user-(K mod 250), with five resource edges since
 *      old: run:proj-(K mod 200) read+write (exact), run:q* read (pattern), tool:web-search
 *      or tool:calculator read (external), kb:handbook read, and app:support or team:tNN
 *      read+write; every tenth one also has a team:ops edge revoked at "revoked";
 *    - BENCH_ACL_GRAPH_POLICIES write policies since old, redacting or blocking other scopes
 *      (app:support, app:crm*, team:legal, run:archive-*, kb:*, run:proj-0*, team:*, run:q*,
 *      app:deprecated, run:customer-*): none matches S, so nothing is redacted, but every write
 *      to a shared scope walks them all (node_acl_policy);
 *    - each agent of B: registered since old; a user edge (U, B) from old revoked at
 *      "revoked", and a new one since recent; a read+write edge to S itself from old revoked at
 *      "revoked"; four edges since old to other resources (tool:web-search read, kb:handbook
 *      read, app:support read+write, team:bench read); and, the last of its edges, the grant
 *      that lets it work: read+write on the pattern run:* since recent.
 *  So a decision for B walks its own edges in their order (the revoked ones first, the grant
 *  last) and its user edges (the revoked one first), and a read checks the fragment's
 *  provenance again (its writing agent may act for U, and each of its resources, S and the
 *  declared sources, is readable: tool:web-search and kb:handbook are, through B's edges).
 *  The allow-all policy (bench_acl_allow_all) gives each agent one user edge and one edge to
 *  "*" instead, and no policy exists.
 */
#include <czmq.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engram/error.h"
#include "node/trust/acl.h"
#include "node/trust/admission.h"
#include "proto/acl.pb-c.h"

#include "agent_keys.h"
#include "bench_util.h"

#define S_DAY_MS             (24 * 3600 * UINT64_C(1000))
#define S_HOUR_MS            (3600 * UINT64_C(1000))
#define S_ACL_INIT_MAX_BYTES (64 * 1024 * 1024) /* what engramd reads of DATA/acl.init */

const char *const bench_acl_sources[2] = {"tool:web-search", "kb:handbook"};

struct bench_acl {
    char home[512];
    node_trust_t trust;
    uint8_t secret[crypto_sign_SECRETKEYBYTES];
    ProtobufCBinaryData *statements; /* packed SignedStatements, owned, in signing order */
    size_t n, cap;
};

uint64_t bench_acl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bench_acl_t *bench_acl_new(const char *home)
{
    bench_acl_t *self = calloc(1, sizeof *self);
    if (!self || sodium_init() < 0) {
        fprintf(stderr, "bench_acl: out of memory, or libsodium cannot start\n");
        free(self);
        return NULL;
    }
    snprintf(self->home, sizeof self->home, "%s", home);
    char path[600], why[512] = "";
    snprintf(path, sizeof path, "%s/cluster", home);
    int rc = 0;
    if (!zsys_file_exists(path))
        rc = node_admin_init(home, &self->trust, why, sizeof why);
    if (rc == 0)
        rc = node_admin_load(home, &self->trust, self->secret, why, sizeof why);
    if (rc) {
        fprintf(stderr, "bench_acl: no admin in %s: %s (%s)\n", home, why, engram_strerror(rc));
        bench_acl_destroy(&self);
    }
    return self;
}

void bench_acl_destroy(bench_acl_t **self_p)
{
    bench_acl_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n; i++)
        free(self->statements[i].data);
    free(self->statements);
    sodium_memzero(self->secret, sizeof self->secret);
    free(self);
    *self_p = NULL;
}

size_t bench_acl_size(const bench_acl_t *self)
{
    return self->n;
}

void bench_acl_admin_curve(const bench_acl_t *self, uint8_t public_key[32], uint8_t secret_key[32])
{
    int rc = node_admission_curve_keys(self->trust.admin_key, self->secret, public_key, secret_key);
    if (rc != 0)
        BENCH_DIE("the admin's key has no CURVE form");
}

/*  --- signing ------------------------------------------------------------------------ */

/*  Signs statement (its body set) as issued at issued_ms; its id into id (may be NULL); kept
 *  when out is NULL, else handed out. 0 or -1. */
static int s_sign(bench_acl_t *self, Engram__Statement *statement, uint64_t issued_ms,
                  uint8_t id[16], uint8_t **out, size_t *out_len)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = node_acl_sign(statement, self->secret, issued_ms, &data, &len);
    if (rc) {
        fprintf(stderr, "bench_acl: cannot sign a statement: %s\n", engram_strerror(rc));
        return -1;
    }
    if (id) {
        Engram__SignedStatement *s = engram__signed_statement__unpack(NULL, len, data);
        Engram__Statement *m =
            s ? engram__statement__unpack(NULL, s->statement.len, s->statement.data) : NULL;
        if (m && m->id.len == 16)
            memcpy(id, m->id.data, 16);
        else
            rc = -1;
        engram__statement__free_unpacked(m, NULL);
        engram__signed_statement__free_unpacked(s, NULL);
        if (rc) {
            fprintf(stderr, "bench_acl: a statement just signed has no id\n");
            free(data);
            return -1;
        }
    }
    if (out) {
        *out = data;
        *out_len = len;
        return 0;
    }
    if (self->n == self->cap) {
        size_t cap = self->cap ? 2 * self->cap : 64;
        ProtobufCBinaryData *grown = realloc(self->statements, cap * sizeof *grown);
        if (!grown) {
            fprintf(stderr, "bench_acl: out of memory\n");
            free(data);
            return -1;
        }
        self->statements = grown;
        self->cap = cap;
    }
    self->statements[self->n++] = (ProtobufCBinaryData){len, data};
    return 0;
}

static int s_register(bench_acl_t *self, const char *agent, const uint8_t key[32],
                      uint64_t issued_ms)
{
    Engram__AgentRegister body = ENGRAM__AGENT_REGISTER__INIT;
    body.name = (char *)agent;
    body.curve_key = (ProtobufCBinaryData){32, (uint8_t *)key};
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.body_case = ENGRAM__STATEMENT__BODY_AGENT;
    st.agent = &body;
    return s_sign(self, &st, issued_ms, NULL, NULL, NULL);
}

static int s_user_agent(bench_acl_t *self, const char *user, const char *agent, uint64_t from_ms,
                        uint8_t id[16])
{
    Engram__UserAgentEdge body = ENGRAM__USER_AGENT_EDGE__INIT;
    body.user = (char *)user;
    body.agent = (char *)agent;
    body.from_ms = from_ms;
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.body_case = ENGRAM__STATEMENT__BODY_USER_AGENT;
    st.user_agent = &body;
    return s_sign(self, &st, from_ms, id, NULL, NULL);
}

/*  An edge from from_ms on; handed out when out is not NULL, else kept. */
static int s_edge(bench_acl_t *self, const char *agent, const char *resource, bool read, bool write,
                  uint64_t from_ms, uint8_t id[16], uint8_t **out, size_t *len)
{
    Engram__AgentResourceEdge body = ENGRAM__AGENT_RESOURCE_EDGE__INIT;
    body.agent = (char *)agent;
    body.resource = (char *)resource;
    body.read = read;
    body.write = write;
    body.from_ms = from_ms;
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.body_case = ENGRAM__STATEMENT__BODY_AGENT_RESOURCE;
    st.agent_resource = &body;
    return s_sign(self, &st, from_ms, id, out, len);
}

static int s_revocation(bench_acl_t *self, const uint8_t id[16], uint64_t at_ms, uint8_t **out,
                        size_t *len)
{
    Engram__Revocation body = ENGRAM__REVOCATION__INIT;
    body.target = (ProtobufCBinaryData){16, (uint8_t *)id};
    body.at_ms = at_ms;
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.body_case = ENGRAM__STATEMENT__BODY_REVOCATION;
    st.revocation = &body;
    return s_sign(self, &st, at_ms, NULL, out, len);
}

static int s_policy(bench_acl_t *self, const char *scope_pattern, bool block,
                    const char *const *patterns, size_t npatterns, uint64_t issued_ms)
{
    Engram__WritePolicy body = ENGRAM__WRITE_POLICY__INIT;
    body.scope_pattern = (char *)scope_pattern;
    body.action =
        block ? ENGRAM__POLICY_ACTION__POLICY_BLOCK : ENGRAM__POLICY_ACTION__POLICY_REDACT;
    body.patterns = (char **)patterns;
    body.n_patterns = npatterns;
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.body_case = ENGRAM__STATEMENT__BODY_POLICY;
    st.policy = &body;
    return s_sign(self, &st, issued_ms, NULL, NULL, NULL);
}

/*  agent's CURVE public key from the tests' key store (made on first use). */
static int s_agent_key(const char *agent, uint8_t key[32])
{
    zcert_t *cert = agent_keys_cert(agent);
    if (!cert)
        return -1;
    memcpy(key, zcert_public_key(cert), 32);
    zcert_destroy(&cert);
    return 0;
}

/*  --- what the benchmarks ask for --------------------------------------------------- */

int bench_acl_register(bench_acl_t *self, const char *user, const char *agent)
{
    uint8_t key[32];
    uint64_t now = bench_acl_now_ms();
    if (s_agent_key(agent, key) != 0 || s_register(self, agent, key, now) != 0)
        return -1;
    return s_user_agent(self, user, agent, now, NULL);
}

int bench_acl_allow_all(bench_acl_t *self, const char *user, const char *agent, bool cluster)
{
    uint64_t now = bench_acl_now_ms();
    if (bench_acl_register(self, user, agent) != 0 ||
        s_edge(self, agent, "*", true, true, now, NULL, NULL, NULL) != 0)
        return -1;
    return cluster ? s_edge(self, agent, "cluster", true, false, now, NULL, NULL, NULL) : 0;
}

/*  The other agents of the graph, and the revocations of every tenth one's team:ops edge. */
static int s_graph_others(bench_acl_t *self, uint64_t old, uint64_t revoked)
{
    for (unsigned k = 0; k < BENCH_ACL_GRAPH_AGENTS; k++) {
        char agent[32], user[32], proj[32], team[32];
        uint8_t key[32], id[16];
        snprintf(agent, sizeof agent, "agent-%04u", k);
        snprintf(user, sizeof user, "user-%03u", k % 250);
        snprintf(proj, sizeof proj, "run:proj-%03u", k % 200);
        snprintf(team, sizeof team, "team:t%02u", k % 40);
        randombytes_buf(key, sizeof key);
        uint64_t t = old + k; /* spread: a realistic order of issue */
        int rc = s_register(self, agent, key, t);
        if (rc == 0)
            rc = s_user_agent(self, user, agent, t, NULL);
        if (rc == 0)
            rc = s_edge(self, agent, proj, true, true, t, NULL, NULL, NULL);
        if (rc == 0)
            rc = s_edge(self, agent, "run:q*", true, false, t, NULL, NULL, NULL);
        if (rc == 0)
            rc = s_edge(self, agent, k % 2 ? "tool:web-search" : "tool:calculator", true, false, t,
                        NULL, NULL, NULL);
        if (rc == 0)
            rc = s_edge(self, agent, "kb:handbook", true, false, t, NULL, NULL, NULL);
        if (rc == 0)
            rc = s_edge(self, agent, k % 3 ? team : "app:support", true, true, t, NULL, NULL, NULL);
        if (rc == 0 && k % 10 == 0) {
            rc = s_edge(self, agent, "team:ops", true, true, t, id, NULL, NULL);
            if (rc == 0)
                rc = s_revocation(self, id, revoked, NULL, NULL);
        }
        if (rc)
            return -1;
    }
    return 0;
}

static int s_graph_policies(bench_acl_t *self, uint64_t old)
{
    static const char *const contact[] = {"@email", "@phone"}, *const secret[] = {"@secret"},
                             *const card[] = {"@card"},
                             *const ssn[] = {"ssn-[0-9]{3}-[0-9]{2}-[0-9]{4}"};
    static const struct {
        const char *scope;
        bool block;
        const char *const *patterns;
        size_t n;
    } policies[BENCH_ACL_GRAPH_POLICIES] = {
        {"app:support", false, NULL, 0},   {"app:crm*", false, contact, 2},
        {"team:legal", true, NULL, 0},     {"run:archive-*", true, NULL, 0},
        {"kb:*", false, secret, 1},        {"run:proj-0*", false, secret, 1},
        {"team:*", false, card, 1},        {"run:q*", false, ssn, 1},
        {"app:deprecated", true, NULL, 0}, {"run:customer-*", false, NULL, 0},
    };
    for (size_t i = 0; i < BENCH_ACL_GRAPH_POLICIES; i++)
        if (s_policy(self, policies[i].scope, policies[i].block, policies[i].patterns,
                     policies[i].n, old + i) != 0)
            return -1;
    return 0;
}

int bench_acl_graph(bench_acl_t *self, const char *user, const char *const *agents, size_t n,
                    const char *scope)
{
    uint64_t now = bench_acl_now_ms();
    uint64_t old = now - 30 * S_DAY_MS, revoked = now - S_DAY_MS, recent = now - S_HOUR_MS;
    if (strncmp(scope, "run:", 4) != 0) {
        fprintf(stderr, "bench_acl: the graph's scope must be run:...\n");
        return -1;
    }
    if (s_graph_others(self, old, revoked) != 0 || s_graph_policies(self, old) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *a = agents[i];
        uint8_t key[32], old_user[16], old_scope[16];
        int rc = s_agent_key(a, key);
        if (rc == 0)
            rc = s_register(self, a, key, old);
        if (rc == 0)
            rc = s_user_agent(self, user, a, old, old_user);
        if (rc == 0)
            rc = s_edge(self, a, scope, true, true, old, old_scope, NULL, NULL);
        if (rc == 0)
            rc = s_edge(self, a, bench_acl_sources[0], true, false, old, NULL, NULL, NULL);
        if (rc == 0)
            rc = s_edge(self, a, bench_acl_sources[1], true, false, old, NULL, NULL, NULL);
        if (rc == 0)
            rc = s_edge(self, a, "app:support", true, true, old, NULL, NULL, NULL);
        if (rc == 0)
            rc = s_edge(self, a, "team:bench", true, false, old, NULL, NULL, NULL);
        if (rc == 0)
            rc = s_revocation(self, old_user, revoked, NULL, NULL);
        if (rc == 0)
            rc = s_revocation(self, old_scope, revoked, NULL, NULL);
        if (rc == 0)
            rc = s_user_agent(self, user, a, recent, NULL);
        if (rc == 0)
            rc = s_edge(self, a, "run:*", true, true, recent, NULL, NULL, NULL);
        if (rc)
            return -1;
    }
    return 0;
}

int bench_acl_sign_edge(bench_acl_t *self, const char *agent, const char *resource, bool read,
                        bool write, uint8_t id[16], uint8_t **signed_out, size_t *len)
{
    return s_edge(self, agent, resource, read, write, bench_acl_now_ms(), id, signed_out, len);
}

int bench_acl_sign_revocation(bench_acl_t *self, const uint8_t id[16], uint64_t at_ms,
                              uint8_t **signed_out, size_t *len)
{
    return s_revocation(self, id, at_ms, signed_out, len);
}

/*  --- files ------------------------------------------------------------------------- */

int bench_acl_write(const bench_acl_t *self, const char *data_dir, bool trust)
{
    if (zsys_dir_create("%s", data_dir) != 0) {
        fprintf(stderr, "bench_acl: cannot create %s\n", data_dir);
        return -1;
    }
    char path[600];
    int rc = 0;
    if (trust) {
        uint8_t *cluster = NULL;
        size_t len = 0;
        snprintf(path, sizeof path, "%s/cluster", self->home);
        rc = node_admission_read_file(path, 4096, &cluster, &len);
        snprintf(path, sizeof path, "%s/trust", data_dir);
        if (rc == 0)
            rc = node_admission_write_file(path, cluster, len, 0600);
        free(cluster);
        if (rc) {
            fprintf(stderr, "bench_acl: cannot write %s: %s\n", path, engram_strerror(rc));
            return -1;
        }
    }
    Engram__StatementList list = ENGRAM__STATEMENT_LIST__INIT;
    list.statements = self->statements;
    list.n_statements = self->n;
    size_t len = engram__statement_list__get_packed_size(&list);
    uint8_t *packed = malloc(len ? len : 1);
    if (!packed) {
        fprintf(stderr, "bench_acl: out of memory\n");
        return -1;
    }
    engram__statement_list__pack(&list, packed);
    snprintf(path, sizeof path, "%s/acl.init", data_dir);
    if (len > S_ACL_INIT_MAX_BYTES)
        rc = ENGRAM_ETOOBIG;
    else
        rc = node_admission_write_file(path, packed, len, 0600);
    free(packed);
    if (rc) {
        fprintf(stderr, "bench_acl: cannot write %s: %s\n", path, engram_strerror(rc));
        return -1;
    }
    return 0;
}

/*  --- the decisions, in this process ------------------------------------------------ */

/*  A node_acl_t holding the statements, and the request whose decisions are timed. */
struct bench_acl_decider {
    node_acl_t *acl;
    uint8_t key[32]; /* the agent's CURVE key: what identifies a connection */
    char *user, *scope;
    const char *resources[8]; /* the fragment's provenance: scope and sources */
    const char *agents[1];
    node_provenance_t m;
    unsigned calls; /* per timing, calibrated on the first */
};

/*  What a write costs: identify (the connection key's agent), act, scope write, policy. */
static bool s_decide_write(const bench_acl_decider_t *d)
{
    uint64_t t = bench_acl_now_ms();
    const char *agent = node_acl_agent_of(d->acl, d->key, t);
    bool block = false;
    const char *const *patterns;
    size_t npatterns;
    if (!agent || !node_acl_may_write_scope(d->acl, agent, d->user, d->scope, t))
        return false;
    node_acl_policy(d->acl, d->scope, t, &block, &patterns, &npatterns);
    return !block && npatterns == 0;
}

/*  What a read of one fragment costs: identify, act, scope read, then the fragment's check. */
static bool s_decide_read(const bench_acl_decider_t *d)
{
    uint64_t t = bench_acl_now_ms();
    const char *agent = node_acl_agent_of(d->acl, d->key, t);
    return agent && node_acl_may_read_scope(d->acl, agent, d->user, d->scope, t) &&
           node_acl_may_read(d->acl, agent, d->user, d->scope, &d->m, t);
}

void bench_acl_decider_destroy(bench_acl_decider_t **self_p)
{
    bench_acl_decider_t *self = *self_p;
    if (!self)
        return;
    node_acl_destroy(&self->acl);
    free(self->user);
    free(self->scope);
    free(self);
    *self_p = NULL;
}

bench_acl_decider_t *bench_acl_decider_new(const bench_acl_t *acl, const char *agent,
                                           const char *user, const char *scope,
                                           const char *const *sources, size_t nsources,
                                           double *import_s)
{
    bench_acl_decider_t *self = calloc(1, sizeof *self);
    if (!self || !(self->user = strdup(user)) || !(self->scope = strdup(scope)) ||
        s_agent_key(agent, self->key) != 0) {
        fprintf(stderr, "bench_acl: out of memory, or no key for %s\n", agent);
        bench_acl_decider_destroy(&self);
        return NULL;
    }
    double t0 = bench_now();
    self->acl = node_acl_new(acl->trust.admin_key);
    for (size_t i = 0; self->acl && i < acl->n; i++) {
        char why[256];
        int rc = node_acl_add(self->acl, acl->statements[i].data, acl->statements[i].len, NULL, why,
                              sizeof why);
        if (rc < 0) {
            fprintf(stderr, "bench_acl: statement %zu refused: %s\n", i, why);
            node_acl_destroy(&self->acl);
        }
    }
    *import_s = bench_now() - t0;
    if (!self->acl) {
        bench_acl_decider_destroy(&self);
        return NULL;
    }
    size_t n = 0;
    self->resources[n++] = self->scope;
    for (size_t i = 0; i < nsources && n < 8; i++)
        self->resources[n++] = sources[i];
    /* the author is the agent itself: its own user edge is checked again, as engramd does */
    self->agents[0] = node_acl_agent_of(self->acl, self->key, bench_acl_now_ms());
    self->m = (node_provenance_t){self->agents, 1, self->resources, n};
    if (!self->agents[0] || !s_decide_write(self) || !s_decide_read(self)) {
        fprintf(stderr, "bench_acl: %s acting for %s may not write and read %s\n", agent, user,
                scope);
        bench_acl_decider_destroy(&self);
    }
    return self;
}

/*  Nanoseconds per call of fn over self->calls calls. */
static double s_time(const bench_acl_decider_t *self, bool (*fn)(const bench_acl_decider_t *))
{
    uint64_t t0 = bench_now_ns();
    for (unsigned i = 0; i < self->calls; i++)
        if (!fn(self))
            BENCH_DIE("a decision changed its answer");
    return (double)(bench_now_ns() - t0) / self->calls;
}

void bench_acl_decider_time(bench_acl_decider_t *self, double *write_ns, double *read_ns)
{
    if (self->calls == 0) { /* enough calls of the slower one for about 5 ms */
        self->calls = 100;
        while (self->calls < (1u << 24) && s_time(self, s_decide_read) * self->calls < 5e6)
            self->calls *= 2;
    }
    *write_ns = s_time(self, s_decide_write);
    *read_ns = s_time(self, s_decide_read);
}
