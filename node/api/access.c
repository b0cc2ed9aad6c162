/*  node/api access: who a request acts as and what it may do (node/trust/acl.h).
 *
 *  Identity comes from the connection's CURVE key (the ZAP User-Id, node/trust/zap.h), never
 *  from the request: the key of a registered agent acts as that agent (a request naming
 *  another agent is refused), an admin's key administers, any other key is refused with
 *  ENGRAM_EDENIED on every request (api__identify). Before an operation runs, api__authorize
 *  checks that the agent may act for the user and may read or write the scope; the handlers then
 * filter every fragment they return by its provenance (api__may_read_value and friends), so a
 * revocation hides what was written before it. Write policy (block, redact) runs here too, on the
 *  request, before anything is stored: redacted text never reaches the store or the wire.
 *
 *  The statements themselves live in the replicated scope sys:acl, one register per statement
 *  id whose value's payload is the packed SignedStatement. The acl is loaded from it when the
 *  server starts, and grows with each statement an admin submits here (ACL_SUBMIT) or another
 *  node's delta brings (api__acl_ingest).
 */
#include <czmq.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/awset.h"
#include "crdt/counter.h"
#include "crdt/mvreg.h"
#include "crdt/value.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/api/internal.h"
#include "node/trust/redact.h"
#include "proto/acl.pb-c.h"

/*  --- identity and admission -------------------------------------------------------- */

static bool s_acl_op(Engram__Op op)
{
    return op == ENGRAM__OP__ACL_SUBMIT || op == ENGRAM__OP__ACL_SHOW ||
           op == ENGRAM__OP__ACL_CHECK;
}

/*  Administration: looking (status, acl show/check) or changing (join, remove, submit,
 *  snapshot). */
bool api__admin_op(Engram__Op op)
{
    return api__cluster_op(op) || s_acl_op(op) || op == ENGRAM__OP__SNAPSHOT;
}

static bool s_admin_changes(Engram__Op op)
{
    return op == ENGRAM__OP__CLUSTER_JOIN || op == ENGRAM__OP__CLUSTER_REMOVE ||
           op == ENGRAM__OP__ACL_SUBMIT;
}

/*  Operations that need read access: the reads, and a subscription (its events are reads). */
static bool s_reads(Engram__Op op)
{
    return api__op_reads(op) || op == ENGRAM__OP__SUBSCRIBE;
}

uint64_t api__acl_now(void)
{
    return (uint64_t)api__now_ms();
}

/*  Replaces a string field of the unpacked request: protobuf-c frees it with free(), unless
 *  it is its shared empty string (a field that was not sent), which nobody frees. */
static int s_set_field(char **field, const char *text)
{
    char *copy = strdup(text);
    if (!copy)
        return ENGRAM_ENOMEM;
    if (*field != protobuf_c_empty_string)
        free(*field);
    *field = copy;
    return 0;
}

/*  Who the connection is: r->admin for an admin's key, else req->agent := the agent its key
 *  is registered as. ENGRAM_EDENIED for any other key, or a request naming another agent. */
static int s_identify(node_server_t *self, Engram__Request *req, api_reply_t *r, uint64_t now)
{
    char z85[41] = "";
    if (r->client_key)
        zmq_z85_encode(z85, r->client_key, 32);
    if (!r->client_key)
        return api__fail(r, ENGRAM_EDENIED, "the connection did not authenticate with CURVE");
    if (node_acl_admin_curve(self->acl, r->client_key, now)) {
        r->admin = true;
        if (api__admin_op(req->op) || req->op == ENGRAM__OP__STATS)
            return 0;
        return api__fail(r, ENGRAM_EDENIED,
                         "an admin's key administers the cluster; memory is read and written "
                         "with an agent's key (engram agent create)");
    }
    uint64_t home = 0, here = node_store_node_id(self->store);
    const char *agent = node_acl_agent_home(self->acl, r->client_key, now, &home);
    if (!agent && node_acl_key_pending(self->acl, r->client_key, now))
        return api__fail(r, ENGRAM_EDENIED,
                         "the key %s is registered from a time this node's clock has not "
                         "reached yet (is its clock behind?)",
                         z85);
    if (!agent)
        return api__fail(r, ENGRAM_EDENIED,
                         "the key %s is not registered to any agent on this node (engram agent "
                         "create NAME registers one)",
                         z85);
    if (home && home != here)
        return api__fail(r, ENGRAM_EDENIED,
                         "agent '%s' lives on node %016" PRIx64 "; this is node %016" PRIx64
                         ": an agent talks to its own node",
                         agent, home, here);
    if (req->agent[0] && strcmp(req->agent, agent) != 0)
        return api__fail(r, ENGRAM_EDENIED,
                         "this connection's key belongs to agent '%s'; it cannot act as '%s'",
                         agent, api__quote(r, req->agent));
    if (!req->agent[0] && s_set_field(&req->agent, agent) != 0)
        return api__fail(r, ENGRAM_ENOMEM, "out of memory");
    return 0;
}

/*  One buffer a redaction may replace: bytes with a length, or a NUL-terminated string. */
typedef struct {
    uint8_t **data;
    size_t *len; /* NULL: a string */
} s_field_t;

/*  Write policy: refuses a write into a blocked scope, and redacts the fields of one into a
 *  scope with redaction, in place, before anything is stored; *redacted tells whether any
 *  field changed (the write's embedding then goes: it was computed from the text before). */
static int s_apply_policy(node_server_t *self, const char *sid, api_reply_t *r, uint64_t now,
                          const s_field_t *fields, size_t nfields, bool *redacted)
{
    *redacted = false;
    bool block = false;
    const char *const *patterns = NULL;
    size_t npatterns = 0;
    if (!node_acl_policy(self->acl, sid, now, &block, &patterns, &npatterns))
        return 0;
    if (block)
        return api__fail(r, ENGRAM_EDENIED, "writes to %s are blocked by the cluster's policy",
                         r->scope);
    if (npatterns == 0)
        return 0;
    node_redactor_t *redactor = NULL;
    char why[256];
    int rc = node_redactor_new(patterns, npatterns, &redactor, why, sizeof why);
    if (rc)
        return api__fail(r, rc, "the write policy of %s cannot be applied: %s", r->scope, why);
    for (size_t i = 0; rc == 0 && i < nfields; i++) {
        bool text = !fields[i].len;
        size_t len = text ? strlen((char *)*fields[i].data) : *fields[i].len;
        uint8_t *out = NULL;
        size_t out_len = 0, matches = 0;
        if (len == 0)
            continue;
        rc = node_redact(redactor, *fields[i].data, len, &out, &out_len, &matches);
        if (rc) {
            api__fail(r, rc, "the write policy of %s cannot be applied: %s", r->scope,
                      engram_strerror(rc));
            break;
        }
        if (matches == 0) {
            free(out);
            continue;
        }
        if (text) { /* NUL-terminate: elements and metadata are strings */
            uint8_t *terminated = realloc(out, out_len + 1);
            if (!terminated) {
                free(out);
                rc = api__fail(r, ENGRAM_ENOMEM, "out of memory");
                break;
            }
            terminated[out_len] = '\0';
            out = terminated;
        }
        free(*fields[i].data);
        *fields[i].data = out;
        if (!text)
            *fields[i].len = out_len;
        self->redactions += matches;
        *redacted = true;
    }
    node_redactor_destroy(&redactor);
    return rc;
}

int api__redact_shared(node_server_t *self, const char *sid, api_reply_t *r, crdt_value_t *v)
{
    s_field_t fields[] = {{&v->data, &v->len}, {(uint8_t **)&v->meta_json, NULL}};
    bool redacted = false;
    int rc = s_apply_policy(self, sid, r, api__acl_now(), fields, 2, &redacted);
    if (rc == 0 && redacted) /* computed from the text before its redaction: it would tell */
        rc = crdt_value_set_embedding(v, NULL, 0);
    return rc;
}

/*  Who the connection is (see s_identify), and for administration whether it may. */
int api__identify(node_server_t *self, Engram__Request *req, api_reply_t *r)
{
    uint64_t now = api__acl_now();
    int rc = s_identify(self, req, r, now);
    if (rc == 0 && req->op == ENGRAM__OP__SNAPSHOT && !r->admin)
        /* it writes every agent's private memory and the node's secret key to a path of the
         * caller's choosing on this host: no grant short of the admin key covers that */
        rc = api__fail(r, ENGRAM_EDENIED, "a snapshot takes an admin's key");
    else if (rc == 0 && api__admin_op(req->op)) {
        bool changes = s_admin_changes(req->op);
        if (!r->admin && !node_acl_may_administer(self->acl, r->client_key, changes, now))
            rc = api__fail(r, ENGRAM_EDENIED,
                           "%s needs an admin's key or an agent with %s access to the resource "
                           "'cluster'",
                           changes ? "changing the cluster" : "reading the cluster's state",
                           changes ? "write" : "read");
    }
    if (rc == ENGRAM_EDENIED)
        self->denials++;
    return rc;
}

/*  What an identified agent may do with scope sid: act for the user, read or write the scope,
 *  name valid sources; then the write policy. */
int api__authorize(node_server_t *self, Engram__Request *req, const char *sid, api_reply_t *r)
{
    uint64_t now = api__acl_now();
    bool reads = s_reads(req->op), writes = !reads && req->op != ENGRAM__OP__UNSUBSCRIBE;
    int rc = 0;
    if (!req->user[0])
        rc = api__fail(r, ENGRAM_EINVAL, "a request must name the user the agent acts for");
    else if (!node_acl_may_act(self->acl, req->agent, req->user, now))
        rc = api__fail(r, ENGRAM_EDENIED, "agent '%s' may not act for user '%s'", req->agent,
                       req->user);
    else if (writes && !node_acl_may_write_scope(self->acl, req->agent, req->user, sid, now))
        rc = api__fail(r, ENGRAM_EDENIED, "agent '%s' acting for '%s' may not write %s", req->agent,
                       req->user, r->scope);
    else if (reads && !node_acl_may_read_scope(self->acl, req->agent, req->user, sid, now))
        rc = api__fail(r, ENGRAM_EDENIED, "agent '%s' acting for '%s' may not read %s", req->agent,
                       req->user, r->scope);
    for (size_t i = 0; rc == 0 && i < req->n_sources; i++)
        if (!req->sources[i][0] || strlen(req->sources[i]) > MAX_SCOPE_BYTES ||
            !api__name_ok(req->sources[i]))
            rc = api__fail(r, ENGRAM_EINVAL,
                           "a source is a resource name: 1 to %d bytes of visible characters "
                           "in Unicode normalisation form C (no space, control, invisible or "
                           "formatting character)",
                           MAX_SCOPE_BYTES);
    /* deletions (DELETE, FORGET) store nothing the policy could redact or block */
    if (rc == 0 && writes && sid[0] != '@' && req->op != ENGRAM__OP__DELETE &&
        req->op != ENGRAM__OP__FORGET) {
        s_field_t fields[] = {{&req->value.data, &req->value.len},
                              {(uint8_t **)&req->elem, NULL},
                              {(uint8_t **)&req->meta_json, NULL}};
        bool redacted = false;
        rc = s_apply_policy(self, sid, r, now, fields, 3, &redacted);
        if (redacted) /* computed from the text before its redaction: it would tell */
            req->embedding.len = 0;
    }
    if (rc == ENGRAM_EDENIED)
        self->denials++;
    return rc;
}

/*  --- fragments ---------------------------------------------------------------------- */

bool api__may_read_provenance(node_server_t *self, const char *agent, const char *user,
                              const char *sid, const char *const *agents, size_t nagents,
                              const char *const *resources, size_t nresources)
{
    node_provenance_t m = {agents, nagents, resources, nresources};
    return node_acl_may_read(self->acl, agent, user, sid, &m, api__acl_now());
}

bool api__reader_may(const api_reader_t *reader, const crdt_value_t *v)
{
#ifdef ENGRAM_FAULT_SKIP_RETROSPECTIVE /* deliberate defect for jepsen/: provenance unchecked */
    return true;
#endif
    return api__may_read_provenance(reader->self, reader->agent, reader->user, reader->sid,
                                    (const char *const *)v->agents, v->nagents,
                                    (const char *const *)v->resources, v->nresources);
}

/*  An element add: its data is an encoded value carrying the provenance (none for adds made
 *  before access control: those count as the scope's). */
bool api__add_visible(const api_reader_t *reader, const crdt_entry_view_t *add)
{
    if (add->len == 0)
        return api__may_read_provenance(reader->self, reader->agent, reader->user, reader->sid,
                                        NULL, 0, NULL, 0);
    crdt_value_t *v = NULL;
    if (crdt_value_decode(add->data, add->len, &v) != 0)
        return false;
    bool visible = api__reader_may(reader, v);
    crdt_value_destroy(&v);
    return visible;
}

size_t api__contributor_agent_len(const char *contributor)
{
    const char *sep = strchr(contributor, API_CONTRIBUTOR_SEP);
    return sep ? (size_t)(sep - contributor) : strlen(contributor);
}

/*  A counter contribution, "<agent> SEP <user>": the contributing agent and the scope. */
static bool s_contribution_visible(const api_reader_t *reader, const char *contributor)
{
    char agent[MAX_NAME_BYTES + 1];
    size_t len = api__contributor_agent_len(contributor);
    if (len > MAX_NAME_BYTES)
        return false;
    memcpy(agent, contributor, len);
    agent[len] = '\0';
    const char *agents[1] = {agent}, *resources[1] = {reader->sid};
    return api__may_read_provenance(reader->self, reader->agent, reader->user, reader->sid, agents,
                                    len ? 1 : 0, resources, reader->sid[0] == '@' ? 0 : 1);
}

int api__visible_sum(const api_reader_t *reader, const crdt_scope_t *view, const char *key,
                     int64_t *sum)
{
    crdt_counter_contribution_t *parts = NULL;
    size_t n = 0;
    int rc = crdt_counter_contributions(view, key, &parts, &n);
    *sum = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (s_contribution_visible(reader, parts[i].contributor) &&
            __builtin_add_overflow(*sum, parts[i].total, sum))
            rc = ENGRAM_ERANGE;
    free(parts);
    return rc;
}

bool api__fragments_visible(const api_reader_t *reader, const crdt_scope_t *view, const char *key,
                            crdt_type_id_t type)
{
    bool visible = false;
    if (type == CRDT_SET) {
        crdt_entry_view_t *adds = NULL;
        size_t n = 0;
        if (crdt_awset_entries(view, key, NULL, &adds, &n) == 0) {
            for (size_t i = 0; i < n && !visible; i++)
                visible = api__add_visible(reader, &adds[i]);
            free(adds);
        }
    } else if (type == CRDT_COUNTER) {
        crdt_counter_contribution_t *parts = NULL;
        size_t n = 0;
        if (crdt_counter_contributions(view, key, &parts, &n) == 0) {
            for (size_t i = 0; i < n && !visible; i++)
                visible = s_contribution_visible(reader, parts[i].contributor);
            free(parts);
        }
    }
    return visible;
}

/*  The provenance a write records: the user, the writing agent, and the resources it derives
 *  from: the shared scope it is written to and the sources the request declares. */
int api__set_provenance(crdt_value_t *v, const Engram__Request *req, const char *sid)
{
    int rc = crdt_value_set_user(v, req->user);
    if (rc == 0)
        rc = crdt_value_set_author(v, req->agent);
    if (rc == 0)
        rc = crdt_value_add_agent(v, req->agent);
    if (rc == 0 && sid[0] != '@')
        rc = crdt_value_add_resource(v, sid);
    for (size_t i = 0; rc == 0 && i < req->n_sources; i++)
        rc = crdt_value_add_resource(v, req->sources[i]);
    return rc;
}

/*  --- statements in sys:acl --------------------------------------------------------- */

/*  Adds the statement a sys:acl register value holds; refusals are counted by the acl. */
static void s_ingest_value(node_server_t *self, const uint8_t *data, size_t len)
{
    crdt_value_t *v = NULL;
    char why[256];
    if (crdt_value_decode(data, len, &v) != 0) {
        zsys_warning("engramd: a sys:acl entry is not a value; ignored");
        return;
    }
    int rc = node_acl_add(self->acl, v->data, v->len, NULL, why, sizeof why);
    if (rc < 0)
        zsys_warning("engramd: an access statement was refused: %s", why);
    crdt_value_destroy(&v);
}

static int s_ingest_entry(void *arg, crdt_type_id_t type, const char *key,
                          const crdt_entry_view_t *entry)
{
    (void)key;
    if (type == CRDT_REG)
        s_ingest_value(arg, entry->data, entry->len);
    return 0;
}

void api__acl_ingest(node_server_t *self, const crdt_scope_t *delta)
{
    crdt_scope_foreach_entry(delta, s_ingest_entry, self);
}

int api__acl_load(node_server_t *self)
{
    char cursor[ENGRAM_MAX_KEY_BYTES + 1] = "";
    bool more = true;
    while (more) {
        node_listed_t *keys = NULL;
        size_t n = 0;
        int rc = node_store_list(self->store, API_ACL_SCOPE, "", cursor, 256,
                                 (uint64_t)api__now_ms(), &keys, &n, &more);
        if (rc)
            return rc;
        for (size_t i = 0; i < n; i++) {
            crdt_scope_t *view = NULL;
            unsigned types = 0;
            crdt_entry_view_t *siblings = NULL;
            size_t nsiblings = 0;
            if (node_store_view(self->store, API_ACL_SCOPE, keys[i].key, NODE_VIEW_OBJECT, NULL,
                                &view, &types) == 0 &&
                crdt_mvreg_read(view, keys[i].key, &siblings, &nsiblings) == 0) {
                for (size_t j = 0; j < nsiblings; j++)
                    s_ingest_value(self, siblings[j].data, siblings[j].len);
                free(siblings);
            }
            crdt_scope_destroy(&view);
        }
        if (n)
            snprintf(cursor, sizeof cursor, "%s", keys[n - 1].key);
        node_store_listed_free(keys, n);
        more = more && n;
    }
    return 0;
}

/*  --- the ACL operations ------------------------------------------------------------ */

static json_t *s_hex(const uint8_t *data, size_t len)
{
    char *hex = malloc(2 * len + 1);
    if (!hex)
        return NULL;
    sodium_bin2hex(hex, 2 * len + 1, data, len);
    json_t *s = json_string(hex);
    free(hex);
    return s;
}

static json_t *s_time(uint64_t ms)
{
    return ms == NODE_ACL_FOREVER ? json_null() : json_integer((json_int_t)ms);
}

/*  The details of one statement's body, as acl show lists them. */
static int s_body_json(json_t *doc, const uint8_t *packed, size_t len)
{
    Engram__Statement *s = engram__statement__unpack(NULL, len, packed);
    if (!s)
        return ENGRAM_EDECODE;
    switch (s->body_case) {
    case ENGRAM__STATEMENT__BODY_ADMIN_ADD:
        json_object_set_new(doc, "key", s_hex(s->admin_add->key.data, s->admin_add->key.len));
        break;
    case ENGRAM__STATEMENT__BODY_ADMIN_RETIRE:
        json_object_set_new(doc, "key", s_hex(s->admin_retire->key.data, s->admin_retire->key.len));
        json_object_set_new(doc, "at_ms", json_integer((json_int_t)s->admin_retire->at_ms));
        break;
    case ENGRAM__STATEMENT__BODY_AGENT: {
        char z85[41] = "";
        if (s->agent->curve_key.len == 32)
            zmq_z85_encode(z85, s->agent->curve_key.data, 32);
        json_object_set_new(doc, "agent", json_string(s->agent->name));
        json_object_set_new(doc, "curve_key", json_string(z85));
        char node[17];
        snprintf(node, sizeof node, "%016" PRIx64, s->agent->home_node);
        json_object_set_new(doc, "home_node",
                            s->agent->home_node ? json_string(node) : json_null());
        break;
    }
    case ENGRAM__STATEMENT__BODY_USER_AGENT:
        json_object_set_new(doc, "user", json_string(s->user_agent->user));
        json_object_set_new(doc, "agent", json_string(s->user_agent->agent));
        break;
    case ENGRAM__STATEMENT__BODY_AGENT_RESOURCE: {
        Engram__AgentResourceEdge *e = s->agent_resource;
        json_object_set_new(doc, "agent", json_string(e->agent));
        json_object_set_new(doc, "resource", json_string(e->resource));
        json_object_set_new(doc, "read", json_boolean(e->read));
        json_object_set_new(doc, "write", json_boolean(e->write));
        break;
    }
    case ENGRAM__STATEMENT__BODY_REVOCATION:
        json_object_set_new(doc, "target",
                            s_hex(s->revocation->target.data, s->revocation->target.len));
        json_object_set_new(doc, "at_ms", json_integer((json_int_t)s->revocation->at_ms));
        break;
    case ENGRAM__STATEMENT__BODY_POLICY: {
        json_t *patterns = json_array();
        for (size_t i = 0; i < s->policy->n_patterns; i++)
            json_array_append_new(patterns, json_string(s->policy->patterns[i]));
        json_object_set_new(doc, "scope_pattern", json_string(s->policy->scope_pattern));
        json_object_set_new(doc, "action",
                            json_string(s->policy->action == ENGRAM__POLICY_ACTION__POLICY_BLOCK
                                            ? "block"
                                            : "redact"));
        json_object_set_new(doc, "patterns", patterns);
        break;
    }
    default:
        break;
    }
    engram__statement__free_unpacked(s, NULL);
    return 0;
}

static int s_show_entry(void *arg, const node_acl_entry_t *entry)
{
    json_t *doc =
        json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:b, s:b}", "kind", entry->kind, "id",
                  entry->id_hex, "signer", entry->signer_hex, "issued_ms",
                  (json_int_t)entry->issued_ms, "from_ms", s_time(entry->from_ms), "until_ms",
                  s_time(entry->until_ms), "effective", entry->effective, "valid", entry->valid_at);
    if (!doc || s_body_json(doc, entry->statement, entry->statement_len) != 0 ||
        json_array_append_new(arg, doc) != 0)
        return ENGRAM_ENOMEM;
    return 0;
}

static int s_reply_json(api_reply_t *r, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!(r->msg.json = api__keep(&r->arena, text)))
        return api__fail(r, ENGRAM_ENOMEM, "out of memory");
    return 0;
}

json_t *api__acl_document(node_server_t *self, uint64_t at)
{
    json_t *statements = json_array();
    if (!statements || node_acl_each(self->acl, at, s_show_entry, statements) != 0) {
        json_decref(statements);
        return NULL;
    }
    return json_pack("{s:I, s:o, s:I, s:I}", "at_ms", (json_int_t)at, "statements", statements,
                     "refused", (json_int_t)node_acl_refused(self->acl), "ineffective",
                     (json_int_t)node_acl_ineffective(self->acl));
}

static int s_acl_show(node_server_t *self, const Engram__Request *req, api_reply_t *r)
{
    json_t *doc = api__acl_document(self, req->at_ms ? req->at_ms : api__acl_now());
    if (!doc)
        return api__fail(r, ENGRAM_ENOMEM, "out of memory");
    return s_reply_json(r, doc);
}

static int s_acl_check(node_server_t *self, const Engram__Request *req, api_reply_t *r)
{
    uint64_t at = req->at_ms ? req->at_ms : api__acl_now();
    Engram__Request as = *req;
    as.agent = req->check_agent;
    as.user = req->check_user;
    char sid[MAX_SCOPE_BYTES + 2];
    if (!req->check_agent[0] || !req->check_user[0])
        return api__fail(r, ENGRAM_EINVAL, "acl check needs an agent, a user and a scope");
    if (strlen(req->check_agent) > MAX_NAME_BYTES || strlen(req->check_user) > MAX_NAME_BYTES ||
        !api__name_ok(req->check_agent) || !api__name_ok(req->check_user))
        return api__fail(r, ENGRAM_EINVAL,
                         "agent and user names are visible characters in Unicode normalisation "
                         "form C (no space, control, invisible or formatting character), at "
                         "most %d bytes",
                         MAX_NAME_BYTES);
    int rc = api__resolve(&as, sid, r);
    if (rc)
        return rc;
    char explain[2048];
    bool may_write = false;
    bool may_read = node_acl_explain(self->acl, req->check_agent, req->check_user, sid, at,
                                     &may_write, explain, sizeof explain);
    json_t *lines = json_array();
    for (char *line = explain, *end; line && *line; line = end ? end + 1 : NULL) {
        end = strchr(line, '\n');
        json_array_append_new(lines,
                              end ? json_stringn(line, (size_t)(end - line)) : json_string(line));
    }
    return s_reply_json(r, json_pack("{s:s, s:s, s:s, s:I, s:b, s:b, s:o}", "agent",
                                     req->check_agent, "user", req->check_user, "scope", req->scope,
                                     "at_ms", (json_int_t)at, "read", may_read, "write", may_write,
                                     "explain", lines));
}

static int s_acl_submit(node_server_t *self, const Engram__Request *req, api_reply_t *r)
{
    uint8_t id[NODE_ACL_ID_BYTES];
    char why[256] = "";
    int rc = node_acl_add(self->acl, req->statement.data, req->statement.len, id, why, sizeof why);
    if (rc < 0)
        return api__fail(r, rc, "the statement was refused: %s", why);
    uint8_t *copy = api__keep(&r->arena, malloc(sizeof id));
    if (!copy)
        return api__fail(r, ENGRAM_ENOMEM, "out of memory");
    memcpy(copy, id, sizeof id);
    r->msg.statement_id.data = copy;
    r->msg.statement_id.len = sizeof id;
    /* new, or held already (a replay changes nothing), yet perhaps not stored: an earlier
     * submission whose write failed; so written unless sys:acl holds it */
    return api__write_statement(self, req, r);
}

int api__acl_request(node_server_t *self, const Engram__Request *req, api_reply_t *r)
{
    switch (req->op) {
    case ENGRAM__OP__ACL_SUBMIT:
        return s_acl_submit(self, req, r);
    case ENGRAM__OP__ACL_SHOW:
        return s_acl_show(self, req, r);
    default:
        return s_acl_check(self, req, r);
    }
}
