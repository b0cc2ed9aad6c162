/*  Tests of node_acl, the access-control graphs and decisions.
 *
 *  One world of statements signed with generated Ed25519 keys (the root admin, admins it adds
 *  and retires, a rogue key) and a table of decisions {agent, user, sid, provenance, t, read,
 *  write} covering: each interval's edges (from inclusive, until exclusive), revoked edges
 *  (user -> agent and agent -> resource, revocations ordered before and after their targets),
 *  the retrospective check (a revocation hides fragments written or derived earlier, nothing
 *  deleted), derived fragments, patterns, private and user scopes, non-admin signers, admins
 *  added and retired (back-dated too), and the root's permanence. The table holds for the world
 *  added in many orders (reversed, random, and with the statements that rebuild the graph
 *  first or last), which also agree on every other answer (the graphs are a pure function of
 *  the set), and fails closed on an empty acl. Then identity (agent_of, administration),
 *  write policies, listing, explanations, every refusal of node_acl_add, and two statements
 *  claiming one id.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/error.h"
#include "engram/limits.h"
#include "node/trust/acl.h"
#include "proto/acl.pb-c.h"

#define OPEN 0 /* until_ms 0 in a statement: open-ended */

typedef struct {
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
} ed_t;

/*  A signed statement (owned data), its id, and whether it is an admin statement (which
 *  makes node_acl_add rebuild its graph rather than add to it). */
typedef struct {
    uint8_t *data;
    size_t len;
    uint8_t id[NODE_ACL_ID_BYTES];
    bool rebuilds;
} blob_t;

static void s_ed(ed_t *key)
{
    crypto_sign_keypair(key->pk, key->sk);
}

static void s_curve(uint8_t curve[32])
{
    uint8_t secret[32];
    crypto_box_keypair(curve, secret);
}

static void s_curve_of(uint8_t curve[32], const ed_t *key)
{
    assert_int_equal(crypto_sign_ed25519_pk_to_curve25519(curve, key->pk), 0);
}

/*  --- statement builders ------------------------------------------------------------------ */

static blob_t s_sign(const ed_t *by, uint64_t issued_ms, Engram__Statement *st)
{
    blob_t blob = {0};
    assert_int_equal(node_acl_sign(st, by->sk, issued_ms, &blob.data, &blob.len), 0);
    /* node_acl_sign leaves the caller's statement as it was. */
    assert_int_equal(st->id.len, 0);
    assert_int_equal(st->issued_ms, 0);
    Engram__SignedStatement *signed_msg =
        engram__signed_statement__unpack(NULL, blob.len, blob.data);
    assert_non_null(signed_msg);
    Engram__Statement *msg =
        engram__statement__unpack(NULL, signed_msg->statement.len, signed_msg->statement.data);
    assert_non_null(msg);
    assert_int_equal(msg->id.len, NODE_ACL_ID_BYTES);
    assert_int_equal(msg->schema_major, ENGRAM_SCHEMA_MAJOR);
    assert_int_equal(msg->issued_ms, issued_ms);
    assert_memory_equal(msg->signer.data, by->pk, crypto_sign_PUBLICKEYBYTES);
    memcpy(blob.id, msg->id.data, NODE_ACL_ID_BYTES);
    blob.rebuilds = msg->body_case == ENGRAM__STATEMENT__BODY_ADMIN_ADD ||
                    msg->body_case == ENGRAM__STATEMENT__BODY_ADMIN_RETIRE;
    engram__statement__free_unpacked(msg, NULL);
    engram__signed_statement__free_unpacked(signed_msg, NULL);
    return blob;
}

static blob_t s_admin_add(const ed_t *by, uint64_t issued_ms, const ed_t *key)
{
    Engram__AdminAdd body = ENGRAM__ADMIN_ADD__INIT;
    body.key = (ProtobufCBinaryData){sizeof key->pk, (uint8_t *)key->pk};
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.body_case = ENGRAM__STATEMENT__BODY_ADMIN_ADD;
    st.admin_add = &body;
    return s_sign(by, issued_ms, &st);
}

static blob_t s_admin_retire(const ed_t *by, uint64_t issued_ms, const ed_t *key, uint64_t at)
{
    Engram__AdminRetire body = ENGRAM__ADMIN_RETIRE__INIT;
    body.key = (ProtobufCBinaryData){sizeof key->pk, (uint8_t *)key->pk};
    body.at_ms = at;
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.body_case = ENGRAM__STATEMENT__BODY_ADMIN_RETIRE;
    st.admin_retire = &body;
    return s_sign(by, issued_ms, &st);
}

static blob_t s_agent(const ed_t *by, uint64_t issued_ms, const char *name, const uint8_t curve[32])
{
    Engram__AgentRegister body = ENGRAM__AGENT_REGISTER__INIT;
    body.name = (char *)name;
    body.curve_key = (ProtobufCBinaryData){32, (uint8_t *)curve};
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.body_case = ENGRAM__STATEMENT__BODY_AGENT;
    st.agent = &body;
    return s_sign(by, issued_ms, &st);
}

static blob_t s_ua(const ed_t *by, uint64_t issued_ms, const char *user, const char *agent,
                   uint64_t from, uint64_t until)
{
    Engram__UserAgentEdge body = ENGRAM__USER_AGENT_EDGE__INIT;
    body.user = (char *)user;
    body.agent = (char *)agent;
    body.from_ms = from;
    body.until_ms = until;
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.body_case = ENGRAM__STATEMENT__BODY_USER_AGENT;
    st.user_agent = &body;
    return s_sign(by, issued_ms, &st);
}

enum { R = 1, W = 2 };

static blob_t s_ar(const ed_t *by, uint64_t issued_ms, const char *agent, const char *resource,
                   int rights, uint64_t from, uint64_t until)
{
    Engram__AgentResourceEdge body = ENGRAM__AGENT_RESOURCE_EDGE__INIT;
    body.agent = (char *)agent;
    body.resource = (char *)resource;
    body.read = (rights & R) != 0;
    body.write = (rights & W) != 0;
    body.from_ms = from;
    body.until_ms = until;
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.body_case = ENGRAM__STATEMENT__BODY_AGENT_RESOURCE;
    st.agent_resource = &body;
    return s_sign(by, issued_ms, &st);
}

static blob_t s_revoke(const ed_t *by, uint64_t issued_ms, const blob_t *target, uint64_t at)
{
    Engram__Revocation body = ENGRAM__REVOCATION__INIT;
    body.target = (ProtobufCBinaryData){NODE_ACL_ID_BYTES, (uint8_t *)target->id};
    body.at_ms = at;
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.body_case = ENGRAM__STATEMENT__BODY_REVOCATION;
    st.revocation = &body;
    return s_sign(by, issued_ms, &st);
}

static blob_t s_policy(const ed_t *by, uint64_t issued_ms, const char *scope_pattern,
                       Engram__PolicyAction action, const char *const *patterns, size_t npatterns)
{
    Engram__WritePolicy body = ENGRAM__WRITE_POLICY__INIT;
    body.scope_pattern = (char *)scope_pattern;
    body.action = action;
    body.patterns = (char **)patterns;
    body.n_patterns = npatterns;
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.body_case = ENGRAM__STATEMENT__BODY_POLICY;
    st.policy = &body;
    return s_sign(by, issued_ms, &st);
}

/*  --- the world --------------------------------------------------------------------------- */

#define MAX_STATEMENTS 64

typedef struct {
    ed_t root, a2, a3, a4, a5, rogue;
    uint8_t kbot[32], khelp[32], kwriter[32], kscout[32], kops[32], ktemp[32], kdup[32], knone[32];
    blob_t stmts[MAX_STATEMENTS];
    size_t n;
    /* statements the checks look up */
    blob_t *grant_a2, *retire_a3, *alice_bot, *bot_run, *temp, *app_y, *app_y_out, *frank,
        *writer_act;
    uint64_t ineffective; /* how many statements the world's signers could not make */
} world_t;

static blob_t *s_keep(world_t *w, blob_t blob)
{
    assert_true(w->n < MAX_STATEMENTS);
    w->stmts[w->n] = blob;
    return &w->stmts[w->n++];
}

/*  Times are small numbers of ms; comments give each statement's effect. */
static void s_world(world_t *w)
{
    memset(w, 0, sizeof *w);
    ed_t *keys[] = {&w->root, &w->a2, &w->a3, &w->a4, &w->a5, &w->rogue};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        s_ed(keys[i]);
    uint8_t *curves[] = {w->kbot, w->khelp, w->kwriter, w->kscout,
                         w->kops, w->ktemp, w->kdup,    w->knone};
    for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++)
        s_curve(curves[i]);
    const ed_t *root = &w->root;

    /* Admins: a2 [100, 5000) (adding it again or retiring it later changes neither end); a3
       [100, 250) by a retirement back-dated at 400; a4 added by a3 at 300, before a3's
       retirement was issued: it stands; a5 [20, 700), retired before it was added. The root
       cannot be retired. */
    w->grant_a2 = s_keep(w, s_admin_add(root, 100, &w->a2));
    s_keep(w, s_admin_add(root, 1000, &w->a2));
    s_keep(w, s_admin_add(root, 100, &w->a3));
    s_keep(w, s_admin_retire(root, 4000, &w->a2, 5000));
    s_keep(w, s_admin_retire(root, 4100, &w->a2, 8000));
    s_keep(w, s_admin_retire(root, 10, &w->a5, 700));
    s_keep(w, s_admin_add(root, 20, &w->a5));
    s_keep(w, s_ua(&w->a5, 600, "henry", "bot", 0, OPEN));
    s_keep(w, s_ua(&w->a5, 700, "ivan", "bot", 0, OPEN)); /* ineffective */
    s_keep(w, s_admin_add(&w->a3, 300, &w->a4));
    w->frank = s_keep(w, s_ua(&w->a3, 300, "frank", "bot", 0, OPEN)); /* a3 retired at 250 */
    w->retire_a3 = s_keep(w, s_admin_retire(root, 400, &w->a3, 250));
    s_keep(w, s_ua(&w->a4, 500, "gina", "bot", 0, OPEN));
    s_keep(w, s_admin_retire(root, 50, &w->root, 60));
    s_keep(w, s_revoke(root, 20, w->grant_a2, 150)); /* admin statements are not revoked */
    /* a2's grants: before its retirement, after its retirement was issued but before at_ms,
       and after. */
    s_keep(w, s_ua(&w->a2, 200, "carol", "bot", 0, OPEN));
    s_keep(w, s_ua(&w->a2, 4500, "erin", "bot", 0, OPEN));
    s_keep(w, s_ua(&w->a2, 6000, "dave", "bot", 0, OPEN)); /* ineffective */
    /* The rogue key is no admin: nothing it signs counts, not even its own promotion. */
    s_keep(w, s_admin_add(&w->rogue, 50, &w->rogue));
    s_keep(w, s_ua(&w->rogue, 60, "mallory", "bot", 0, OPEN));
    w->ineffective = 5; /* ivan, frank, dave, and these two; one more below */

    /* Agents. temp's registration is revoked at 2000; one key registered for two names. */
    s_keep(w, s_agent(root, 10, "bot", w->kbot));
    s_keep(w, s_agent(root, 10, "helper", w->khelp));
    s_keep(w, s_agent(root, 10, "writer", w->kwriter));
    s_keep(w, s_agent(root, 10, "scout", w->kscout));
    s_keep(w, s_agent(root, 10, "ops", w->kops));
    w->temp = s_keep(w, s_agent(root, 10, "temp", w->ktemp));
    s_keep(w, s_revoke(root, 2000, w->temp, 2000));
    blob_t *twin1 = s_keep(w, s_agent(root, 30, "twin1", w->kdup));
    s_keep(w, s_agent(root, 40, "twin2", w->kdup));
    s_keep(w, s_revoke(root, 60, twin1, 60));

    /* bot acts for alice during [1000, 2000) and uses run:* during [1500, 3000). */
    w->alice_bot = s_keep(w, s_ua(root, 20, "alice", "bot", 1000, 2000));
    w->bot_run = s_keep(w, s_ar(root, 20, "bot", "run:*", R | W, 1500, 3000));

    /* helper reads team:x and kb:handbook, and app:y until a revocation issued before the
       edge (at 2100, the edge at 2200) ends it at 2500. */
    s_keep(w, s_ua(root, 20, "alice", "helper", 1000, OPEN));
    blob_t *helper_act = &w->stmts[w->n - 1];
    s_keep(w, s_ar(root, 20, "helper", "team:x", R, 1000, OPEN));
    s_keep(w, s_ar(root, 20, "helper", "kb:handbook", R, 1000, OPEN));
    w->app_y = s_keep(w, s_ar(root, 2200, "helper", "app:y", R, 1000, OPEN));
    w->app_y_out = s_keep(w, s_revoke(root, 2100, w->app_y, 2500));
    s_keep(w, s_revoke(&w->rogue, 70, helper_act, 0)); /* ineffective */
    w->ineffective++;

    /* writer writes team:x until its user edge is revoked at 3000; a revocation of that
       revocation changes nothing. */
    w->writer_act = s_keep(w, s_ua(root, 20, "alice", "writer", 1000, OPEN));
    s_keep(w, s_ar(root, 20, "writer", "team:x", R | W, 1000, OPEN));
    blob_t *writer_out = s_keep(w, s_revoke(root, 3000, w->writer_act, 3000));
    s_keep(w, s_revoke(root, 3100, writer_out, 0));

    /* scout reads everything shared; ops looks at the cluster. */
    s_keep(w, s_ua(root, 20, "alice", "scout", 0, OPEN));
    s_keep(w, s_ar(root, 20, "scout", "*", R, 0, OPEN));
    s_keep(w, s_ar(root, 20, "ops", "cluster", R, 0, OPEN));

    /* Write policies. */
    const char *q_patterns[] = {"@email", "foo[0-9]+"};
    const char *app_patterns[] = {"x"};
    s_keep(w, s_policy(root, 10, "team:*", ENGRAM__POLICY_ACTION__POLICY_BLOCK, NULL, 0));
    s_keep(w, s_policy(root, 10, "run:*", ENGRAM__POLICY_ACTION__POLICY_REDACT, NULL, 0));
    s_keep(w, s_policy(root, 20, "run:q*", ENGRAM__POLICY_ACTION__POLICY_REDACT, q_patterns, 2));
    blob_t *app = s_keep(
        w, s_policy(root, 10, "app:*", ENGRAM__POLICY_ACTION__POLICY_REDACT, app_patterns, 1));
    s_keep(w, s_revoke(root, 2000, app, 2000));
}

static void s_world_free(world_t *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->stmts[i].data);
}

/*  An acl holding the world's statements, added in order[] (NULL: as built). */
static node_acl_t *s_acl_of(const world_t *w, const size_t *order)
{
    node_acl_t *acl = node_acl_new(w->root.pk);
    assert_non_null(acl);
    for (size_t i = 0; i < w->n; i++) {
        const blob_t *b = &w->stmts[order ? order[i] : i];
        uint8_t id[NODE_ACL_ID_BYTES];
        char why[128];
        assert_int_equal(node_acl_add(acl, b->data, b->len, id, why, sizeof why), 0);
        assert_memory_equal(id, b->id, NODE_ACL_ID_BYTES);
    }
    assert_int_equal(node_acl_size(acl), w->n);
    assert_int_equal(node_acl_refused(acl), 0);
    return acl;
}

/*  --- the decision table ------------------------------------------------------------------ */

typedef struct {
    const char *agent, *user, *sid;
    const char *agents[3];    /* A(m), NULL-terminated */
    const char *resources[3]; /* R(m), NULL-terminated */
    uint64_t t;
    bool read, write;
} row_t;

/* clang-format off */
#define NONE {NULL} /* no agent, or no resource */
/* clang-format on */

static const row_t s_rows[] = {
    /* alice/bot: act [1000, 2000), run:* [1500, 3000) */
    {"bot", "alice", "run:q3", NONE, NONE, 999, false, false},
    {"bot", "alice", "run:q3", NONE, NONE, 1000, false, false}, /* acts, no edge yet */
    {"bot", "alice", "@bot", NONE, NONE, 999, false, false},
    {"bot", "alice", "@bot", NONE, NONE, 1000, true, true}, /* from inclusive */
    {"bot", "alice", "run:q3", NONE, NONE, 1499, false, false},
    {"bot", "alice", "run:q3", NONE, NONE, 1500, true, true},
    {"bot", "alice", "run:q3", NONE, NONE, 1999, true, true},
    {"bot", "alice", "run:q3", NONE, NONE, 2000, false, false}, /* until exclusive */
    {"bot", "alice", "@bot", NONE, NONE, 1999, true, true},
    {"bot", "alice", "@bot", NONE, NONE, 2000, false, false},
    /* carol/bot: act always (a2's grant), so run:*'s own interval shows */
    {"bot", "carol", "run:q3", NONE, NONE, 1499, false, false},
    {"bot", "carol", "run:q3", NONE, NONE, 1500, true, true},
    {"bot", "carol", "run:q3", NONE, NONE, 2999, true, true},
    {"bot", "carol", "run:q3", NONE, NONE, 3000, false, false},
    /* patterns */
    {"bot", "carol", "runs:x", NONE, NONE, 2000, false, false},
    {"bot", "carol", "app:run", NONE, NONE, 2000, false, false},
    {"bot", "carol", "run:", NONE, NONE, 2000, true, true}, /* a prefix match */
    {"scout", "alice", "app:y", NONE, NONE, 100, true, false},
    {"scout", "alice", "team:x", NONE, NONE, 100, true, false},
    {"scout", "alice", "user:bob", NONE, NONE, 100, true, false}, /* "*" covers user scopes */
    {"scout", "alice", "@bot", NONE, NONE, 100, false, false},
    {"scout", "alice", "sys:acl", NONE, NONE, 100, false, false},
    {"scout", "alice", "noscope", NONE, NONE, 100, false, false},
    {"scout", "alice", "@scout", NONE, NONE, 100, true, true},
    {"scout", "alice", "team:x", NONE, {"tool:web", "kb:any"}, 100, true, false},
    /* private and user scopes */
    {"helper", "alice", "user:alice", NONE, NONE, 1000, true, true},
    {"helper", "alice", "user:alice", NONE, NONE, 999, false, false},
    {"helper", "alice", "user:bob", NONE, NONE, 1000, false, false},
    {"helper", "alice", "@helper", NONE, NONE, 1000, true, true},
    {"helper", "alice", "@bot", NONE, NONE, 1000, false, false},
    {"helper", "bob", "@helper", NONE, NONE, 1000, false, false}, /* no edge for bob */
    {"helper", "bob", "user:bob", NONE, NONE, 1000, false, false},
    /* derived fragments: helper reads team:x and kb:handbook, not tool:web */
    {"helper", "alice", "team:x", NONE, NONE, 1000, true, false},
    {"helper", "alice", "team:x", NONE, {"kb:handbook"}, 1000, true, false},
    {"helper", "alice", "team:x", NONE, {"tool:web"}, 1000, false, false},
    {"helper", "alice", "team:x", NONE, {"kb:handbook", "tool:web"}, 1000, false, false},
    {"helper", "alice", "team:x", NONE, {"user:alice", "@helper"}, 1000, true, false},
    {"helper", "alice", "team:x", NONE, {"@writer"}, 1000, false, false},
    {"helper", "alice", "team:x", NONE, {"user:bob"}, 1000, false, false},
    /* a revoked agent -> resource edge (revocation ordered before its edge) hides app:y and
       what was derived from it */
    {"helper", "alice", "app:y", NONE, NONE, 2499, true, false},
    {"helper", "alice", "app:y", NONE, NONE, 2500, false, false},
    {"helper", "alice", "team:x", {"writer"}, {"app:y"}, 2499, true, false},
    {"helper", "alice", "team:x", NONE, {"app:y"}, 2500, false, false},
    /* retrospective: writer's user edge revoked at 3000 hides what writer wrote */
    {"helper", "alice", "team:x", {"writer"}, NONE, 2999, true, false},
    {"helper", "alice", "team:x", {"writer"}, NONE, 3000, false, false},
    {"helper", "alice", "team:x", {"helper", "writer"}, NONE, 1500, true, false},
    {"helper", "alice", "team:x", {"helper", "writer"}, NONE, 3000, false, false},
    {"writer", "alice", "team:x", NONE, NONE, 2999, true, true},
    {"writer", "alice", "team:x", NONE, NONE, 3000, false, false},
    {"helper", "alice", "team:x", {"bot"}, NONE, 1500, true, false},
    {"helper", "alice", "team:x", {"bot"}, NONE, 2500, false, false}, /* bot's edge ended */
    {"helper", "alice", "team:x", {"nobody"}, NONE, 1500, false, false},
    /* admins */
    {"bot", "carol", "@bot", NONE, NONE, 200, true, true},     /* revoking an admin_add: no-op */
    {"bot", "erin", "@bot", NONE, NONE, 100, true, true},      /* a2 signed before at_ms */
    {"bot", "dave", "@bot", NONE, NONE, 7000, false, false},   /* a2 signed after at_ms */
    {"bot", "mallory", "@bot", NONE, NONE, 100, false, false}, /* rogue */
    {"bot", "frank", "@bot", NONE, NONE, 1000, false, false},  /* back-dated retirement */
    {"bot", "gina", "@bot", NONE, NONE, 1000, true, true},     /* a4 was added before it */
    {"bot", "henry", "@bot", NONE, NONE, 1000, true, true},
    {"bot", "ivan", "@bot", NONE, NONE, 1000, false, false},
    /* default deny */
    {"nobody", "alice", "@nobody", NONE, NONE, 1000, false, false},
    {"nobody", "nobody", "team:x", NONE, NONE, 1000, false, false},
};
#define NROWS (sizeof s_rows / sizeof s_rows[0])

static size_t s_count(const char *const *list)
{
    size_t n = 0;
    while (n < 3 && list[n])
        n++;
    return n;
}

/*  Checks every row against acl (everything false when deny_all). */
static void s_check_rows(const node_acl_t *acl, bool deny_all)
{
    for (size_t i = 0; i < NROWS; i++) {
        const row_t *row = &s_rows[i];
        node_provenance_t m = {row->agents, s_count(row->agents), row->resources,
                               s_count(row->resources)};
        bool read = node_acl_may_read(acl, row->agent, row->user, row->sid, &m, row->t);
        bool write = node_acl_may_write_scope(acl, row->agent, row->user, row->sid, row->t);
        bool want_read = row->read && !deny_all, want_write = row->write && !deny_all;
        if (read != want_read || write != want_write)
            fail_msg("row %zu (%s for %s on %s at %" PRIu64 "): read %d write %d, expected %d %d",
                     i, row->agent, row->user, row->sid, row->t, read, write, want_read,
                     want_write);
        if (m.nagents || m.nresources)
            continue;
        /* Without provenance the fragment decision is the scope decision, and explain
           agrees with both. */
        assert_int_equal(node_acl_may_read_scope(acl, row->agent, row->user, row->sid, row->t),
                         want_read);
        assert_int_equal(node_acl_may_read(acl, row->agent, row->user, row->sid, NULL, row->t),
                         want_read);
        bool may_write = !want_write;
        char text[512];
        assert_int_equal(node_acl_explain(acl, row->agent, row->user, row->sid, row->t, &may_write,
                                          text, sizeof text),
                         want_read);
        assert_int_equal(may_write, want_write);
    }
}

/*  The table, on the world added in the order it was built. */
static void test_decisions(void **state)
{
    (void)state;
    world_t w;
    s_world(&w);
    node_acl_t *acl = s_acl_of(&w, NULL);
    assert_int_equal(node_acl_ineffective(acl), w.ineffective);
    s_check_rows(acl, false);
    assert_true(node_acl_may_act(acl, "bot", "alice", 1000));
    assert_false(node_acl_may_act(acl, "alice", "bot", 1000)); /* (user, agent), not reversed */
    assert_false(node_acl_may_act(acl, "bot", "alice", 2000));
    node_acl_destroy(&acl);
    node_acl_destroy(&acl); /* idempotent */
    s_world_free(&w);
}

/*  Default deny: no statement, no access, whatever is asked. */
static void test_default_deny(void **state)
{
    (void)state;
    world_t w;
    s_world(&w);
    node_acl_t *acl = node_acl_new(w.root.pk);
    assert_non_null(acl);
    s_check_rows(acl, true);
    uint8_t root_curve[32];
    s_curve_of(root_curve, &w.root);
    assert_null(node_acl_agent_of(acl, w.kbot, 100));
    assert_false(node_acl_may_administer(acl, w.kops, false, 100));
    assert_true(node_acl_may_administer(acl, root_curve, true, 0)); /* the root only */
    bool block = true;
    const char *const *patterns = NULL;
    size_t npatterns = 1;
    assert_false(node_acl_policy(acl, "run:q3", 100, &block, &patterns, &npatterns));
    assert_false(block);
    assert_int_equal(npatterns, 0);
    assert_int_equal(node_acl_size(acl), 0);
    assert_int_equal(node_acl_ineffective(acl), 0);
    node_acl_destroy(&acl);
    s_world_free(&w);
}

/*  --- order independence ------------------------------------------------------------------ */

/*  A growing text. */
typedef struct {
    char *text;
    size_t len, cap;
} text_t;

static void s_append(text_t *text, const char *fmt, ...)
{
    char line[1024];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    assert_true(n >= 0 && (size_t)n < sizeof line);
    if (text->len + (size_t)n + 1 > text->cap) {
        text->cap = 2 * (text->cap + (size_t)n + 1);
        text->text = realloc(text->text, text->cap);
        assert_non_null(text->text);
    }
    memcpy(text->text + text->len, line, (size_t)n + 1);
    text->len += (size_t)n;
}

static int s_list_entry(void *arg, const node_acl_entry_t *e)
{
    s_append(arg, "%s %s %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %d %d\n", e->kind, e->id_hex,
             e->signer_hex, e->issued_ms, e->from_ms, e->until_ms, e->effective, e->valid_at);
    return 0;
}

/*  `engram acl show` of acl at t, as text (caller frees). */
static char *s_listing(const node_acl_t *acl, uint64_t t)
{
    text_t text = {0};
    assert_int_equal(node_acl_each(acl, t, s_list_entry, &text), 0);
    return text.text;
}

/*  Everything the world's acl answers beyond the table, as text (caller frees): the listing,
 *  the explanation of each row, which agent each key is, who may administer, and the
 *  policies of some scopes, at times around the world's boundaries. */
static char *s_answers(const node_acl_t *acl, const world_t *w)
{
    text_t text = {0};
    assert_int_equal(node_acl_each(acl, 1500, s_list_entry, &text), 0);
    for (size_t i = 0; i < NROWS; i++) {
        const row_t *row = &s_rows[i];
        char buf[1024];
        bool may_write;
        bool read = node_acl_explain(acl, row->agent, row->user, row->sid, row->t, &may_write, buf,
                                     sizeof buf);
        s_append(&text, "%d %d %s", read, may_write, buf);
    }
    const uint8_t *keys[] = {w->kbot, w->khelp, w->kwriter, w->kscout,
                             w->kops, w->ktemp, w->kdup,    w->knone};
    const uint64_t times[] = {9, 10, 19, 20, 35, 59, 60, 100, 1999, 2000, 5000};
    const char *sids[] = {"team:x", "run:q3", "run:z", "app:y", "@bot"};
    for (size_t k = 0; k < sizeof times / sizeof times[0]; k++) {
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const char *agent = node_acl_agent_of(acl, keys[i], times[k]);
            s_append(&text, "%s %d %d\n", agent ? agent : "-",
                     node_acl_may_administer(acl, keys[i], false, times[k]),
                     node_acl_may_administer(acl, keys[i], true, times[k]));
        }
        for (size_t i = 0; i < sizeof sids / sizeof sids[0]; i++) {
            bool block;
            const char *const *patterns;
            size_t n;
            s_append(&text, "%d", node_acl_policy(acl, sids[i], times[k], &block, &patterns, &n));
            s_append(&text, " %d", block);
            for (size_t j = 0; j < n; j++)
                s_append(&text, " %s", patterns[j]);
            s_append(&text, "\n");
        }
    }
    return text.text;
}

static uint64_t s_rand(uint64_t *seed)
{
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    return *seed;
}

/*  Fills order with the world's statements in order number `round`: reversed; the ones that
 *  rebuild the graph first (everything else, reversed, is then added to a graph), or last
 *  (everything else is first judged without the admins and revocations); then random
 *  shuffles. */
static void s_order(const world_t *w, int round, uint64_t *seed, size_t *order)
{
    size_t n = 0;
    if (round == 0)
        for (size_t i = 0; i < w->n; i++)
            order[n++] = w->n - 1 - i;
    for (int pass = 0; round == 1 && pass < 2; pass++)
        for (size_t i = 0; i < w->n; i++)
            if (w->stmts[pass ? w->n - 1 - i : i].rebuilds == (pass == 0))
                order[n++] = pass ? w->n - 1 - i : i;
    for (int pass = 0; round == 2 && pass < 2; pass++)
        for (size_t i = 0; i < w->n; i++)
            if (w->stmts[i].rebuilds == (pass == 1))
                order[n++] = i;
    if (round < 3) {
        assert_int_equal(n, w->n);
        return;
    }
    for (size_t i = 0; i < w->n; i++)
        order[i] = i;
    for (size_t i = w->n - 1; i > 0; i--) {
        size_t j = (size_t)(s_rand(seed) % (i + 1));
        size_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

/*  The same statements in many orders give the same graphs: every decision of the table, the
 *  same answers to everything else, and replays change nothing. */
static void test_order_independence(void **state)
{
    (void)state;
    world_t w;
    s_world(&w);
    node_acl_t *first = s_acl_of(&w, NULL);
    char *expected = s_answers(first, &w);
    size_t order[MAX_STATEMENTS];
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int round = 0; round < 24; round++) {
        s_order(&w, round, &seed, order);
        node_acl_t *acl = s_acl_of(&w, order);
        assert_int_equal(node_acl_ineffective(acl), w.ineffective);
        s_check_rows(acl, false);
        char *answers = s_answers(acl, &w);
        assert_string_equal(answers, expected);
        free(answers);
        for (size_t i = 0; i < w.n; i++) {
            char why[64] = "";
            assert_int_equal(
                node_acl_add(acl, w.stmts[i].data, w.stmts[i].len, NULL, why, sizeof why), 1);
            assert_true(why[0] != '\0');
        }
        assert_int_equal(node_acl_size(acl), w.n);
        assert_int_equal(node_acl_refused(acl), 0);
        answers = s_answers(acl, &w);
        assert_string_equal(answers, expected);
        free(answers);
        node_acl_destroy(&acl);
    }
    free(expected);
    node_acl_destroy(&first);
    s_world_free(&w);
}

/*  --- identity and administration ------------------------------------------------------- */

static void test_identity(void **state)
{
    (void)state;
    world_t w;
    s_world(&w);
    node_acl_t *acl = s_acl_of(&w, NULL);
    /* A registration is valid from its issued_ms until revoked. */
    assert_null(node_acl_agent_of(acl, w.kbot, 9));
    assert_string_equal(node_acl_agent_of(acl, w.kbot, 10), "bot");
    assert_string_equal(node_acl_agent_of(acl, w.kbot, UINT64_MAX - 1), "bot");
    assert_null(node_acl_agent_of(acl, w.knone, 100));
    assert_string_equal(node_acl_agent_of(acl, w.ktemp, 1999), "temp");
    assert_null(node_acl_agent_of(acl, w.ktemp, 2000));
    /* One key, two names: the first registration valid at t. */
    assert_null(node_acl_agent_of(acl, w.kdup, 29));
    assert_string_equal(node_acl_agent_of(acl, w.kdup, 35), "twin1");
    assert_string_equal(node_acl_agent_of(acl, w.kdup, 59), "twin1");
    assert_string_equal(node_acl_agent_of(acl, w.kdup, 60), "twin2");

    /* Admin intervals: the root always (its retirement is void), a2 [100, 5000), a3
       [100, 250), a4 [300, open), the rogue never. */
    assert_true(node_acl_is_admin(acl, w.root.pk, 0));
    assert_true(node_acl_is_admin(acl, w.root.pk, UINT64_MAX));
    assert_false(node_acl_is_admin(acl, w.a2.pk, 99));
    assert_true(node_acl_is_admin(acl, w.a2.pk, 100));
    assert_true(node_acl_is_admin(acl, w.a2.pk, 4999));
    assert_false(node_acl_is_admin(acl, w.a2.pk, 5000));
    assert_false(node_acl_is_admin(acl, w.a5.pk, 19));
    assert_true(node_acl_is_admin(acl, w.a5.pk, 20));
    assert_false(node_acl_is_admin(acl, w.a5.pk, 700));
    assert_true(node_acl_is_admin(acl, w.a3.pk, 249));
    assert_false(node_acl_is_admin(acl, w.a3.pk, 250));
    assert_false(node_acl_is_admin(acl, w.a4.pk, 299));
    assert_true(node_acl_is_admin(acl, w.a4.pk, 300));
    assert_false(node_acl_is_admin(acl, w.rogue.pk, 100));

    uint8_t root_curve[32], a2_curve[32], rogue_curve[32];
    s_curve_of(root_curve, &w.root);
    s_curve_of(a2_curve, &w.a2);
    s_curve_of(rogue_curve, &w.rogue);
    assert_true(node_acl_admin_curve(acl, root_curve, 0));
    assert_true(node_acl_admin_curve(acl, a2_curve, 4999));
    assert_false(node_acl_admin_curve(acl, a2_curve, 5000));
    assert_false(node_acl_admin_curve(acl, rogue_curve, 100));
    assert_false(node_acl_admin_curve(acl, w.kbot, 100)); /* an agent is no admin */

    /* Administration: admins look and change; ops (cluster, read) only looks; "*" does not
       cover "cluster"; other agents and unknown keys do neither. */
    assert_true(node_acl_may_administer(acl, root_curve, true, 7000));
    assert_true(node_acl_may_administer(acl, a2_curve, true, 4999));
    assert_false(node_acl_may_administer(acl, a2_curve, false, 5000));
    assert_true(node_acl_may_administer(acl, w.kops, false, 100));
    assert_false(node_acl_may_administer(acl, w.kops, true, 100));
    assert_false(node_acl_may_administer(acl, w.kops, false, 9)); /* not registered yet */
    assert_false(node_acl_may_administer(acl, w.kscout, false, 100));
    assert_false(node_acl_may_administer(acl, w.kbot, false, 1500));
    assert_false(node_acl_may_administer(acl, w.knone, false, 100));
    assert_false(node_acl_may_administer(acl, rogue_curve, false, 100));
    node_acl_destroy(&acl);
    s_world_free(&w);
}

/*  --- write policy ---------------------------------------------------------------------- */

static void s_expect_policy(const node_acl_t *acl, const char *sid, uint64_t t, bool matches,
                            bool block, const char *const *want, size_t nwant)
{
    bool got_block = !block;
    const char *const *patterns = NULL;
    size_t n = SIZE_MAX;
    assert_int_equal(node_acl_policy(acl, sid, t, &got_block, &patterns, &n), matches);
    assert_int_equal(got_block, block);
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < nwant; i++)
        assert_string_equal(patterns[i], want[i]);
}

static void test_policy(void **state)
{
    (void)state;
    world_t w;
    s_world(&w);
    node_acl_t *acl = s_acl_of(&w, NULL);
    const char *defaults[] = {"@email", "@phone", "@card", "@secret"};
    const char *q3[] = {"@email", "@phone", "@card", "@secret", "foo[0-9]+"};
    const char *app[] = {"x"};
    s_expect_policy(acl, "team:x", 100, true, true, NULL, 0);
    s_expect_policy(acl, "team:x", 9, false, false, NULL, 0); /* before its issued_ms */
    s_expect_policy(acl, "run:z", 100, true, false, defaults, 4);
    s_expect_policy(acl, "run:q3", 19, true, false, defaults, 4);
    s_expect_policy(acl, "run:q3", 20, true, false, q3, 5); /* "@email" once */
    s_expect_policy(acl, "app:y", 1999, true, false, app, 1);
    s_expect_policy(acl, "app:y", 2000, false, false, NULL, 0); /* revoked */
    s_expect_policy(acl, "user:alice", 100, false, false, NULL, 0);
    s_expect_policy(acl, "@bot", 100, false, false, NULL, 0);
    node_acl_destroy(&acl);

    /* "*" covers every shared scope, not private nor system ones. */
    acl = node_acl_new(w.root.pk);
    assert_non_null(acl);
    blob_t all = s_policy(&w.root, 10, "*", ENGRAM__POLICY_ACTION__POLICY_BLOCK, NULL, 0);
    assert_int_equal(node_acl_add(acl, all.data, all.len, NULL, NULL, 0), 0);
    free(all.data);
    s_expect_policy(acl, "team:x", 100, true, true, NULL, 0);
    s_expect_policy(acl, "user:alice", 100, true, true, NULL, 0);
    s_expect_policy(acl, "@bot", 100, false, false, NULL, 0);
    s_expect_policy(acl, "@bot:x", 100, false, false, NULL, 0);
    s_expect_policy(acl, "sys:acl", 100, false, false, NULL, 0);
    s_expect_policy(acl, "cluster", 100, false, false, NULL, 0);
    node_acl_destroy(&acl);
    s_world_free(&w);
}

/*  --- listing and explanations ------------------------------------------------------------ */

typedef struct {
    const uint8_t *id;
    node_acl_entry_t entry;
    size_t seen;
    uint64_t last_issued;
} find_t;

static int s_find(void *arg, const node_acl_entry_t *e)
{
    find_t *find = arg;
    assert_true(e->issued_ms >= find->last_issued); /* (issued_ms, id) order */
    find->last_issued = e->issued_ms;
    find->seen++;
    char hex[2 * NODE_ACL_ID_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, find->id, NODE_ACL_ID_BYTES);
    if (strcmp(hex, e->id_hex) == 0) {
        find->entry = *e;
        /* The packed statement is the one signed. */
        Engram__Statement *msg = engram__statement__unpack(NULL, e->statement_len, e->statement);
        assert_non_null(msg);
        assert_memory_equal(msg->id.data, find->id, NODE_ACL_ID_BYTES);
        engram__statement__free_unpacked(msg, NULL);
    }
    return 0;
}

static node_acl_entry_t s_entry(const node_acl_t *acl, const blob_t *blob, uint64_t t)
{
    find_t find = {.id = blob->id};
    assert_int_equal(node_acl_each(acl, t, s_find, &find), 0);
    assert_int_equal(find.seen, node_acl_size(acl));
    assert_non_null(find.entry.kind);
    return find.entry;
}

static int s_stop_at_third(void *arg, const node_acl_entry_t *e)
{
    (void)e;
    return ++*(int *)arg == 3 ? 7 : 0;
}

static void test_listing(void **state)
{
    (void)state;
    world_t w;
    s_world(&w);
    node_acl_t *acl = s_acl_of(&w, NULL);
    node_acl_entry_t e = s_entry(acl, w.alice_bot, 1500);
    assert_string_equal(e.kind, "user_agent");
    assert_int_equal(e.from_ms, 1000);
    assert_int_equal(e.until_ms, 2000);
    assert_true(e.effective && e.valid_at);
    char root_hex[2 * crypto_sign_PUBLICKEYBYTES + 1];
    sodium_bin2hex(root_hex, sizeof root_hex, w.root.pk, sizeof w.root.pk);
    assert_string_equal(e.signer_hex, root_hex);
    e = s_entry(acl, w.alice_bot, 2000);
    assert_false(e.valid_at);
    e = s_entry(acl, w.temp, 1500); /* a registration lowered by its revocation */
    assert_string_equal(e.kind, "agent");
    assert_int_equal(e.from_ms, 10);
    assert_int_equal(e.until_ms, 2000);
    assert_true(e.valid_at);
    e = s_entry(acl, w.app_y, 1500);
    assert_string_equal(e.kind, "agent_resource");
    assert_int_equal(e.issued_ms, 2200);
    assert_int_equal(e.until_ms, 2500);
    e = s_entry(acl, w.writer_act, 1500); /* the revocation of its revocation is void */
    assert_int_equal(e.until_ms, 3000);
    e = s_entry(acl, w.bot_run, 1500);
    assert_int_equal(e.until_ms, 3000);
    e = s_entry(acl, w.grant_a2, 1500);
    assert_string_equal(e.kind, "admin_add");
    assert_int_equal(e.from_ms, 100);
    assert_int_equal(e.until_ms, 5000);
    e = s_entry(acl, w.app_y_out, 1500); /* a revocation: from its at_ms */
    assert_string_equal(e.kind, "revocation");
    assert_int_equal(e.issued_ms, 2100);
    assert_int_equal(e.from_ms, 2500);
    assert_int_equal(e.until_ms, NODE_ACL_FOREVER);
    assert_false(e.valid_at);
    assert_true(s_entry(acl, w.app_y_out, 2500).valid_at);
    e = s_entry(acl, w.retire_a3, 1500); /* a retirement: likewise */
    assert_string_equal(e.kind, "admin_retire");
    assert_int_equal(e.issued_ms, 400);
    assert_int_equal(e.from_ms, 250);
    assert_true(e.effective && e.valid_at);
    e = s_entry(acl, w.frank, 1500);
    assert_false(e.effective);
    assert_false(e.valid_at);
    int calls = 0;
    assert_int_equal(node_acl_each(acl, 0, s_stop_at_third, &calls), 7);
    assert_int_equal(calls, 3);
    node_acl_destroy(&acl);
    s_world_free(&w);
}

static void test_explain(void **state)
{
    (void)state;
    world_t w;
    s_world(&w);
    node_acl_t *acl = s_acl_of(&w, NULL);
    char text[1024], act_id[2 * NODE_ACL_ID_BYTES + 1], run_id[2 * NODE_ACL_ID_BYTES + 1];
    char line[256];
    sodium_bin2hex(act_id, sizeof act_id, w.alice_bot->id, NODE_ACL_ID_BYTES);
    sodium_bin2hex(run_id, sizeof run_id, w.bot_run->id, NODE_ACL_ID_BYTES);
    bool may_write = false;
    assert_true(
        node_acl_explain(acl, "bot", "alice", "run:q3", 1500, &may_write, text, sizeof text));
    assert_true(may_write);
    snprintf(line, sizeof line, "may act for alice: edge %s [1000, 2000)\n", act_id);
    assert_non_null(strstr(text, line));
    snprintf(line, sizeof line, "may read run:q3: edge %s to run:* [1500, 3000)\n", run_id);
    assert_non_null(strstr(text, line));
    snprintf(line, sizeof line, "may write run:q3: edge %s to run:* [1500, 3000)\n", run_id);
    assert_non_null(strstr(text, line));

    assert_false(
        node_acl_explain(acl, "bot", "alice", "run:q3", 2500, &may_write, text, sizeof text));
    assert_false(may_write);
    assert_non_null(strstr(text, "denied: no user->agent edge for (alice, bot) at 2500\n"));
    assert_non_null(strstr(text, "may read run:q3: edge"));

    assert_true(node_acl_explain(acl, "helper", "alice", "team:x", 1000, NULL, text, sizeof text));
    assert_non_null(strstr(text, "denied: no write edge for (helper, team:x) at 1000\n"));
    assert_true(node_acl_explain(acl, "helper", "alice", "@helper", 1000, NULL, text, sizeof text));
    assert_non_null(strstr(text, "may read @helper: private scope of helper\n"));
    assert_true(
        node_acl_explain(acl, "helper", "alice", "user:alice", 1000, NULL, text, sizeof text));
    assert_non_null(strstr(text, "may write user:alice: user scope of alice\n"));
    assert_true(node_acl_explain(acl, "scout", "alice", "team:x", 1000, NULL, text, sizeof text));
    assert_non_null(strstr(text, " to * [0, open)\n"));

    /* A short buffer holds a truncated, terminated text; none at all is fine too. */
    char small[12];
    memset(small, 'x', sizeof small);
    assert_true(node_acl_explain(acl, "bot", "alice", "run:q3", 1500, NULL, small, sizeof small));
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_true(node_acl_explain(acl, "bot", "alice", "run:q3", 1500, NULL, NULL, 0));
    node_acl_destroy(&acl);
    s_world_free(&w);
}

/*  --- refusals ---------------------------------------------------------------------------- */

/*  Packs st as given (its header too) and signs it with sk: statements node_acl_sign would
 *  not make. */
static blob_t s_craft(Engram__Statement *st, const uint8_t *sk)
{
    size_t len = engram__statement__get_packed_size(st);
    uint8_t *packed = malloc(len ? len : 1);
    assert_non_null(packed);
    engram__statement__pack(st, packed);
    uint8_t signature[crypto_sign_BYTES];
    crypto_sign_detached(signature, NULL, packed, len, sk);
    Engram__SignedStatement signed_msg = ENGRAM__SIGNED_STATEMENT__INIT;
    signed_msg.statement = (ProtobufCBinaryData){len, packed};
    signed_msg.signature = (ProtobufCBinaryData){sizeof signature, signature};
    blob_t blob = {0};
    blob.len = engram__signed_statement__get_packed_size(&signed_msg);
    blob.data = malloc(blob.len);
    assert_non_null(blob.data);
    engram__signed_statement__pack(&signed_msg, blob.data);
    free(packed);
    return blob;
}

/*  Expects acl to refuse blob with rc (and count it), keeping nothing; frees blob. */
static void s_refused(node_acl_t *acl, blob_t blob, int rc, const char *what)
{
    uint64_t refused = node_acl_refused(acl);
    size_t size = node_acl_size(acl);
    char why[128] = "";
    int got = node_acl_add(acl, blob.data, blob.len, NULL, why, sizeof why);
    if (got != rc)
        fail_msg("%s: %s (%d), expected %d: %s", what, engram_strerror(got), got, rc, why);
    assert_true(why[0] != '\0');
    assert_int_equal(node_acl_refused(acl), refused + 1);
    assert_int_equal(node_acl_size(acl), size);
    free(blob.data);
}

/*  Expects acl to keep blob; frees it. */
static void s_kept(node_acl_t *acl, blob_t blob)
{
    char why[128] = "";
    int rc = node_acl_add(acl, blob.data, blob.len, NULL, why, sizeof why);
    if (rc != 0)
        fail_msg("refused (%d): %s", rc, why);
    free(blob.data);
}

static char *s_string(size_t len)
{
    char *s = malloc(len + 1);
    assert_non_null(s);
    memset(s, 'n', len);
    s[len] = '\0';
    memcpy(s, "kb:", len < 3 ? len : 3); /* a valid resource name too */
    return s;
}

static void test_refusals(void **state)
{
    (void)state;
    ed_t root, rogue;
    s_ed(&root);
    s_ed(&rogue);
    node_acl_t *acl = node_acl_new(root.pk);
    assert_non_null(acl);
    uint8_t curve[32];
    s_curve(curve);

    /* Not a statement at all, or too large to be one. */
    blob_t garbage = {.data = (uint8_t *)strdup("not a statement"), .len = 15};
    s_refused(acl, garbage, ENGRAM_EDECODE, "garbage");
    s_refused(acl, (blob_t){.data = calloc(1, 1)}, ENGRAM_EDECODE, "empty");
    blob_t huge = {.data = calloc(1, ENGRAM_ACL_MAX_STATEMENT_BYTES + 1),
                   .len = ENGRAM_ACL_MAX_STATEMENT_BYTES + 1};
    s_refused(acl, huge, ENGRAM_ETOOBIG, "huge");

    /* Signatures: a flipped signature byte, a changed statement, a signer that did not sign. */
    blob_t b = s_ua(&root, 10, "alice", "bot", 0, OPEN);
    b.data[b.len - 1] ^= 1;
    s_refused(acl, b, ENGRAM_EDENIED, "flipped signature");
    b = s_ua(&root, 10, "alice", "bot", 0, OPEN);
    size_t at = 0;
    while (at + 5 <= b.len && memcmp(b.data + at, "alice", 5) != 0)
        at++;
    assert_true(at + 5 <= b.len);
    b.data[at + 4] = 'f'; /* "alicf": still a statement, no longer the one signed */
    s_refused(acl, b, ENGRAM_EDENIED, "changed statement");
    uint8_t id[NODE_ACL_ID_BYTES];
    randombytes_buf(id, sizeof id);
    Engram__UserAgentEdge ua = ENGRAM__USER_AGENT_EDGE__INIT;
    ua.user = "alice";
    ua.agent = "bot";
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.schema_major = 1;
    st.id = (ProtobufCBinaryData){sizeof id, id};
    st.signer = (ProtobufCBinaryData){sizeof root.pk, root.pk};
    st.body_case = ENGRAM__STATEMENT__BODY_USER_AGENT;
    st.user_agent = &ua;
    s_refused(acl, s_craft(&st, rogue.sk), ENGRAM_EDENIED, "forged signer");
    /* Headers: a newer schema, ids and signers of the wrong size, no body. */
    st.schema_major = ENGRAM_SCHEMA_MAJOR + 1;
    s_refused(acl, s_craft(&st, root.sk), ENGRAM_EVERSION, "newer schema");
    st.schema_major = ENGRAM_SCHEMA_MAJOR;
    st.id.len = NODE_ACL_ID_BYTES - 1;
    s_refused(acl, s_craft(&st, root.sk), ENGRAM_EDECODE, "short id");
    st.id.len = NODE_ACL_ID_BYTES;
    st.signer.len = crypto_sign_PUBLICKEYBYTES - 1;
    s_refused(acl, s_craft(&st, root.sk), ENGRAM_EDECODE, "short signer");
    st.signer.len = crypto_sign_PUBLICKEYBYTES;
    st.body_case = ENGRAM__STATEMENT__BODY__NOT_SET;
    s_refused(acl, s_craft(&st, root.sk), ENGRAM_EDECODE, "no body");
    st.body_case = ENGRAM__STATEMENT__BODY_USER_AGENT;
    s_kept(acl, s_craft(&st, root.sk)); /* the same, well made */
    assert_int_equal(node_acl_size(acl), 1);

    /* Bodies. */
    s_refused(acl, s_ua(&root, 10, "", "bot", 0, OPEN), ENGRAM_EDECODE, "empty user");
    s_refused(acl, s_ua(&root, 10, "alice", "", 0, OPEN), ENGRAM_EDECODE, "empty agent");
    /* names follow node/common/names.h: nothing invisible, bidirectional or spaced */
    s_refused(acl,
              s_ua(&root, 10,
                   "ali\xe2\x80\xae"
                   "ce",
                   "bot", 0, OPEN),
              ENGRAM_EDECODE, "user with U+202E");
    s_refused(acl, s_ua(&root, 10, "alice", "b\xe2\x80\x8bot", 0, OPEN), ENGRAM_EDECODE,
              "agent with U+200B");
    s_refused(acl,
              s_ua(&root, 10,
                   "ali\xc2\xa0"
                   "ce",
                   "bot", 0, OPEN),
              ENGRAM_EDECODE, "user with U+00A0");
    s_refused(acl, s_ua(&root, 10, "alice", "bot", 10, 10), ENGRAM_EDECODE, "empty interval");
    s_refused(acl, s_ua(&root, 10, "alice", "bot", 11, 10), ENGRAM_EDECODE, "reversed interval");
    s_kept(acl, s_ua(&root, 10, "alice", "bot", 10, 11));
    char *longest = s_string(ENGRAM_ACL_MAX_NAME_BYTES);
    char *too_long = s_string(ENGRAM_ACL_MAX_NAME_BYTES + 1);
    s_kept(acl, s_ua(&root, 10, longest, "bot", 0, OPEN));
    s_refused(acl, s_ua(&root, 10, too_long, "bot", 0, OPEN), ENGRAM_ETOOBIG, "long user");
    s_refused(acl, s_agent(&root, 10, too_long, curve), ENGRAM_ETOOBIG, "long agent");
    free(longest);
    free(too_long);
    longest = s_string(ENGRAM_ACL_MAX_RESOURCE_BYTES);
    too_long = s_string(ENGRAM_ACL_MAX_RESOURCE_BYTES + 1);
    s_kept(acl, s_ar(&root, 10, "bot", longest, R, 0, OPEN));
    s_refused(acl, s_ar(&root, 10, "bot", too_long, R, 0, OPEN), ENGRAM_ETOOBIG, "long resource");
    free(longest);
    free(too_long);
    const char *bad_resources[] = {"", "run*", "ru*n:", "*x", "run:*x", "**", "@bot", "@*"};
    for (size_t i = 0; i < sizeof bad_resources / sizeof bad_resources[0]; i++)
        s_refused(acl, s_ar(&root, 10, "bot", bad_resources[i], R, 0, OPEN), ENGRAM_EDECODE,
                  bad_resources[i]);
    s_kept(acl, s_ar(&root, 10, "bot", "run:q*", R, 0, OPEN));
    s_kept(acl, s_ar(&root, 10, "bot", "*", W, 0, OPEN));
    s_refused(acl, s_ar(&root, 10, "bot", "run:x", 0, 0, OPEN), ENGRAM_EDECODE, "no rights");
    s_refused(acl, s_ar(&root, 10, "bot", "run:x", R, 5, 5), ENGRAM_EDECODE, "empty edge");
    Engram__AgentRegister reg = ENGRAM__AGENT_REGISTER__INIT;
    reg.name = "bot";
    reg.curve_key = (ProtobufCBinaryData){31, curve};
    Engram__Statement reg_st = ENGRAM__STATEMENT__INIT;
    reg_st.body_case = ENGRAM__STATEMENT__BODY_AGENT;
    reg_st.agent = &reg;
    s_refused(acl, s_sign(&root, 10, &reg_st), ENGRAM_EDECODE, "short curve key");
    s_refused(acl, s_agent(&root, 10, "", curve), ENGRAM_EDECODE, "empty agent name");
    Engram__Revocation revocation = ENGRAM__REVOCATION__INIT;
    revocation.target = (ProtobufCBinaryData){NODE_ACL_ID_BYTES - 1, id};
    Engram__Statement rev_st = ENGRAM__STATEMENT__INIT;
    rev_st.body_case = ENGRAM__STATEMENT__BODY_REVOCATION;
    rev_st.revocation = &revocation;
    s_refused(acl, s_sign(&root, 10, &rev_st), ENGRAM_EDECODE, "short target");
    ed_t zero = {{0}, {0}}; /* a small-order point: no key */
    s_refused(acl, s_admin_add(&root, 10, &zero), ENGRAM_EDECODE, "no admin key");
    s_refused(acl, s_admin_retire(&root, 10, &zero, 20), ENGRAM_EDECODE, "no retired key");

    /* Policies. */
    s_refused(acl, s_policy(&root, 10, "run:*", ENGRAM__POLICY_ACTION__POLICY_NONE, NULL, 0),
              ENGRAM_EDECODE, "no action");
    s_refused(acl, s_policy(&root, 10, "run:*", (Engram__PolicyAction)7, NULL, 0), ENGRAM_EDECODE,
              "unknown action");
    s_refused(acl, s_policy(&root, 10, "", ENGRAM__POLICY_ACTION__POLICY_BLOCK, NULL, 0),
              ENGRAM_EDECODE, "no scope pattern");
    s_refused(acl, s_policy(&root, 10, "r*n:", ENGRAM__POLICY_ACTION__POLICY_BLOCK, NULL, 0),
              ENGRAM_EDECODE, "bad scope pattern");
    const char *patterns[ENGRAM_ACL_MAX_PATTERNS + 1];
    for (size_t i = 0; i <= ENGRAM_ACL_MAX_PATTERNS; i++)
        patterns[i] = "x+";
    s_kept(acl, s_policy(&root, 10, "run:*", ENGRAM__POLICY_ACTION__POLICY_REDACT, patterns,
                         ENGRAM_ACL_MAX_PATTERNS));
    s_refused(acl,
              s_policy(&root, 10, "run:*", ENGRAM__POLICY_ACTION__POLICY_REDACT, patterns,
                       ENGRAM_ACL_MAX_PATTERNS + 1),
              ENGRAM_ETOOBIG, "too many patterns");
    char *pattern = s_string(ENGRAM_ACL_MAX_PATTERN_BYTES);
    patterns[0] = pattern;
    s_kept(acl, s_policy(&root, 10, "run:*", ENGRAM__POLICY_ACTION__POLICY_REDACT, patterns, 1));
    free(pattern);
    pattern = s_string(ENGRAM_ACL_MAX_PATTERN_BYTES + 1);
    patterns[0] = pattern;
    s_refused(acl, s_policy(&root, 10, "run:*", ENGRAM__POLICY_ACTION__POLICY_REDACT, patterns, 1),
              ENGRAM_ETOOBIG, "long pattern");
    free(pattern);
    patterns[0] = "";
    s_refused(acl, s_policy(&root, 10, "run:*", ENGRAM__POLICY_ACTION__POLICY_REDACT, patterns, 1),
              ENGRAM_EDECODE, "empty pattern");

    /* A statement by a non-admin is kept, without effect, and said so. */
    size_t size = node_acl_size(acl);
    blob_t rogue_grant = s_ua(&rogue, 10, "mallory", "bot", 0, OPEN);
    char why[128] = "";
    assert_int_equal(node_acl_add(acl, rogue_grant.data, rogue_grant.len, id, why, sizeof why), 0);
    assert_memory_equal(id, rogue_grant.id, NODE_ACL_ID_BYTES);
    assert_non_null(strstr(why, "without effect"));
    assert_int_equal(node_acl_size(acl), size + 1);
    assert_int_equal(node_acl_ineffective(acl), 1);
    assert_false(node_acl_may_act(acl, "bot", "mallory", 10));
    /* A replay changes nothing and counts as no refusal. */
    uint64_t refused = node_acl_refused(acl);
    assert_int_equal(node_acl_add(acl, rogue_grant.data, rogue_grant.len, NULL, NULL, 0), 1);
    assert_int_equal(node_acl_size(acl), size + 1);
    assert_int_equal(node_acl_refused(acl), refused);
    free(rogue_grant.data);
    node_acl_destroy(&acl);

    /* No acl without a root key. */
    assert_null(node_acl_new(zero.pk));
}

/*  Two different statements claiming one id are both kept, whichever came first: a forger
 *  copying an admin's id cannot shadow the admin's statement; a revocation of the id lowers
 *  both. */
static void test_same_id(void **state)
{
    (void)state;
    ed_t root, rogue;
    s_ed(&root);
    s_ed(&rogue);
    uint8_t id[NODE_ACL_ID_BYTES];
    randombytes_buf(id, sizeof id);
    Engram__UserAgentEdge ua = ENGRAM__USER_AGENT_EDGE__INIT;
    ua.user = "alice";
    ua.agent = "bot";
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.schema_major = 1;
    st.issued_ms = 10;
    st.id = (ProtobufCBinaryData){sizeof id, id};
    st.signer = (ProtobufCBinaryData){sizeof root.pk, root.pk};
    st.body_case = ENGRAM__STATEMENT__BODY_USER_AGENT;
    st.user_agent = &ua;
    blob_t real = s_craft(&st, root.sk);
    st.signer = (ProtobufCBinaryData){sizeof rogue.pk, rogue.pk};
    ua.agent = "bad"; /* as long as "bot": only the bytes tell them apart */
    blob_t forged = s_craft(&st, rogue.sk);
    blob_t target = {.id = {0}};
    memcpy(target.id, id, sizeof id);
    blob_t revoke = s_revoke(&root, 20, &target, 100);
    char *listings[2];
    for (int order = 0; order < 2; order++) {
        node_acl_t *acl = node_acl_new(root.pk);
        assert_non_null(acl);
        const blob_t *first = order ? &forged : &real, *second = order ? &real : &forged;
        assert_int_equal(node_acl_add(acl, first->data, first->len, NULL, NULL, 0), 0);
        assert_int_equal(node_acl_add(acl, second->data, second->len, NULL, NULL, 0), 0);
        assert_int_equal(node_acl_size(acl), 2);
        assert_int_equal(node_acl_ineffective(acl), 1);
        assert_true(node_acl_may_act(acl, "bot", "alice", 50));
        assert_false(node_acl_may_act(acl, "bad", "alice", 50));
        assert_int_equal(node_acl_add(acl, revoke.data, revoke.len, NULL, NULL, 0), 0);
        assert_true(node_acl_may_act(acl, "bot", "alice", 99));
        assert_false(node_acl_may_act(acl, "bot", "alice", 100));
        listings[order] = s_listing(acl, 50);
        node_acl_destroy(&acl);
    }
    assert_string_equal(listings[0], listings[1]);
    free(listings[0]);
    free(listings[1]);
    free(real.data);
    free(forged.data);
    free(revoke.data);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_default_deny),
        cmocka_unit_test(test_order_independence),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_listing),
        cmocka_unit_test(test_explain),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_same_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
