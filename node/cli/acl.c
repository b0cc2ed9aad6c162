/*  Access control's statements (proto/acl.proto): `agent create` and the `acl` commands build
 *  a Statement, sign it with the admin key (node_acl_sign) and hand it to the node
 *  (engram_acl_submit), which verifies and keeps it; `acl show` and `acl check` print what the
 *  node holds and decides. engram init signs its two statements here too, offline.
 *
 *  Every argument is checked (the command's check, before main connects) so that nothing
 *  malformed is signed: a statement, once signed and spread, is never deleted, only revoked.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "node/cli/cli.h"
#include "node/common/names.h"
#include "node/trust/redact.h"

/*  Signs st (its body set) with secret at now into *out, a packed SignedStatement the caller
 *  frees. */
static int s_sign(Engram__Statement *st, const uint8_t secret[crypto_sign_SECRETKEYBYTES],
                  uint8_t **out, size_t *len)
{
    int rc = node_acl_sign(st, secret, cli_now_ms(), out, len);
    return rc ? cli_fail(rc, "cannot sign the statement") : 0;
}

/*  Signs st with the admin key, hands it to the node and prints the id the node kept it by
 *  (--json: {"statement": id} merged with extra, which it takes; extra may be NULL). */
static int s_submit(engram_t *engram, const cli_opts_t *opts, Engram__Statement *st, json_t *extra)
{
    node_trust_t trust;
    uint8_t secret[crypto_sign_SECRETKEYBYTES];
    uint8_t *signed_statement = NULL;
    size_t len = 0;
    char *id = NULL;
    int rc = cli_admin_load(&trust, secret);
    if (rc == 0)
        rc = s_sign(st, secret, &signed_statement, &len);
    sodium_memzero(secret, sizeof secret);
    if (rc == 0)
        rc = engram_acl_submit(engram, signed_statement, len, &id);
    free(signed_statement);
    if (rc == 0 && !id)
        rc = cli_fail(ENGRAM_EDECODE, "the node's answer names no statement id");
    if (rc == 0 && opts->json) {
        rc = cli_json_print(
            cli_json_merge(json_pack("{s:s}", "statement", id), extra ? extra : json_object()));
    } else {
        json_decref(extra);
        if (rc == 0)
            printf("%s\n", id);
    }
    free(id);
    return rc;
}

/*  The interval of an edge: --from (default now) and --until (default 0: open). */
static void s_interval(const cli_opts_t *opts, uint64_t *from_ms, uint64_t *until_ms)
{
    *from_ms = (opts->given & CLI_OPT_FROM) ? opts->from_ms : cli_now_ms();
    *until_ms = (opts->given & CLI_OPT_UNTIL) ? opts->until_ms : 0;
}

/*  Checks the interval of an edge: --until, when given, after --from. */
static int s_check_interval(const cli_command_t *command, const cli_opts_t *opts)
{
    uint64_t from_ms, until_ms;
    s_interval(opts, &from_ms, &until_ms);
    if ((opts->given & CLI_OPT_UNTIL) && until_ms <= from_ms)
        return cli_usage(command, "--until must be later than --from (default now)");
    return 0;
}

static int s_check_user(const cli_command_t *command, const char *user)
{
    return cli_check_user(command, user);
}

/*  --- the statements --------------------------------------------------------------------- */

/*  An agent's registration, pointing at body, agent and curve_key. */
static void s_agent(Engram__Statement *st, Engram__AgentRegister *body, const char *agent,
                    const uint8_t curve_key[32], uint64_t home_node)
{
    engram__agent_register__init(body);
    body->name = (char *)agent;
    body->curve_key = (ProtobufCBinaryData){32, (uint8_t *)curve_key};
    body->home_node = home_node;
    engram__statement__init(st);
    st->body_case = ENGRAM__STATEMENT__BODY_AGENT;
    st->agent = body;
}

/*  G_UA: user may act through agent during [from_ms, until_ms). */
static void s_user_agent(Engram__Statement *st, Engram__UserAgentEdge *body, const char *user,
                         const char *agent, uint64_t from_ms, uint64_t until_ms)
{
    engram__user_agent_edge__init(body);
    body->user = (char *)user;
    body->agent = (char *)agent;
    body->from_ms = from_ms;
    body->until_ms = until_ms;
    engram__statement__init(st);
    st->body_case = ENGRAM__STATEMENT__BODY_USER_AGENT;
    st->user_agent = body;
}

int cli_acl_sign_agent(const uint8_t secret[crypto_sign_SECRETKEYBYTES], const char *agent,
                       const uint8_t curve_key[32], uint64_t home_node, uint8_t **out, size_t *len)
{
    Engram__Statement st;
    Engram__AgentRegister body;
    s_agent(&st, &body, agent, curve_key, home_node);
    return s_sign(&st, secret, out, len);
}

int cli_acl_sign_user_agent(const uint8_t secret[crypto_sign_SECRETKEYBYTES], const char *user,
                            const char *agent, uint64_t from_ms, uint64_t until_ms, uint8_t **out,
                            size_t *len)
{
    Engram__Statement st;
    Engram__UserAgentEdge body;
    s_user_agent(&st, &body, user, agent, from_ms, until_ms);
    return s_sign(&st, secret, out, len);
}

int cli_acl_id(const uint8_t *signed_statement, size_t len, char hex[CLI_ACL_ID_CHARS + 1])
{
    Engram__SignedStatement *outer = engram__signed_statement__unpack(NULL, len, signed_statement);
    Engram__Statement *st =
        outer ? engram__statement__unpack(NULL, outer->statement.len, outer->statement.data) : NULL;
    bool ok = st && st->id.len == NODE_ACL_ID_BYTES;
    if (ok)
        sodium_bin2hex(hex, CLI_ACL_ID_CHARS + 1, st->id.data, st->id.len);
    if (st)
        engram__statement__free_unpacked(st, NULL);
    if (outer)
        engram__signed_statement__free_unpacked(outer, NULL);
    return ok ? 0 : cli_fail(ENGRAM_EDECODE, "a signed statement without an id");
}

/*  --- agent create ------------------------------------------------------------------------ */

int cli_check_agent_create(const cli_command_t *command, const cli_opts_t *opts)
{
    return cli_check_agent(command, opts->args[0]);
}

int cli_cmd_agent_create(engram_t *engram, const cli_opts_t *opts)
{
    const char *agent = opts->args[0];
    uint8_t key[32];
    bool created;
    int rc = cli_agent_key(agent, key, &created);
    if (rc != 0)
        return rc;
    char z85[CLI_KEY_Z85_CHARS + 1];
    zmq_z85_encode(z85, key, sizeof key);
    Engram__Statement st;
    Engram__AgentRegister body;
    s_agent(&st, &body, agent, key, opts->node);
    return s_submit(engram, opts, &st, json_pack("{s:s, s:s}", "agent", agent, "key", z85));
}

/*  --- acl allow-user, allow, revoke, policy ----------------------------------------------- */

int cli_check_acl_allow_user(const cli_command_t *command, const cli_opts_t *opts)
{
    int rc = s_check_user(command, opts->args[0]);
    if (rc == 0)
        rc = cli_check_agent(command, opts->args[1]);
    return rc ? rc : s_check_interval(command, opts);
}

int cli_cmd_acl_allow_user(engram_t *engram, const cli_opts_t *opts)
{
    uint64_t from_ms, until_ms;
    s_interval(opts, &from_ms, &until_ms);
    Engram__Statement st;
    Engram__UserAgentEdge body;
    s_user_agent(&st, &body, opts->args[0], opts->args[1], from_ms, until_ms);
    return s_submit(engram, opts, &st, NULL);
}

/*  ACCESS of acl allow: read, write or read,write. */
static bool s_parse_access(const char *s, bool *read, bool *write)
{
    *read = strcmp(s, "read") == 0 || strcmp(s, "read,write") == 0;
    *write = strcmp(s, "write") == 0 || strcmp(s, "read,write") == 0;
    return *read || *write;
}

int cli_check_acl_allow(const cli_command_t *command, const cli_opts_t *opts)
{
    bool read, write;
    int rc = cli_check_agent(command, opts->args[0]);
    const char *why = NULL;
    if (rc == 0 && !node_name_ok(opts->args[1], strlen(opts->args[1]), &why))
        rc = cli_usage(command, "RESOURCE %s", why);
    if (rc == 0 && !s_parse_access(opts->args[2], &read, &write))
        rc = cli_usage(command, "ACCESS is read, write or read,write, not '%s'", opts->args[2]);
    return rc ? rc : s_check_interval(command, opts);
}

int cli_cmd_acl_allow(engram_t *engram, const cli_opts_t *opts)
{
    Engram__AgentResourceEdge body = ENGRAM__AGENT_RESOURCE_EDGE__INIT;
    body.agent = (char *)opts->args[0];
    body.resource = (char *)opts->args[1];
    bool read, write;
    bool parsed = s_parse_access(opts->args[2], &read, &write);
    assert(parsed);
    (void)parsed;
    body.read = read;
    body.write = write;
    s_interval(opts, &body.from_ms, &body.until_ms);
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.body_case = ENGRAM__STATEMENT__BODY_AGENT_RESOURCE;
    st.agent_resource = &body;
    return s_submit(engram, opts, &st, NULL);
}

/*  A statement id: 32 hex digits. */
static bool s_parse_id(const char *s, uint8_t id[NODE_ACL_ID_BYTES])
{
    size_t got = 0;
    return strlen(s) == CLI_ACL_ID_CHARS &&
           sodium_hex2bin(id, NODE_ACL_ID_BYTES, s, CLI_ACL_ID_CHARS, NULL, &got, NULL) == 0 &&
           got == NODE_ACL_ID_BYTES;
}

int cli_check_acl_revoke(const cli_command_t *command, const cli_opts_t *opts)
{
    uint8_t id[NODE_ACL_ID_BYTES];
    if (!s_parse_id(opts->args[0], id))
        return cli_usage(command,
                         "ID is a statement id, 32 hex digits, as the acl commands print it and "
                         "`acl show` lists it; not '%s'",
                         opts->args[0]);
    return 0;
}

int cli_cmd_acl_revoke(engram_t *engram, const cli_opts_t *opts)
{
    uint8_t id[NODE_ACL_ID_BYTES];
    bool parsed = s_parse_id(opts->args[0], id);
    assert(parsed);
    (void)parsed;
    Engram__Revocation body = ENGRAM__REVOCATION__INIT;
    body.target = (ProtobufCBinaryData){sizeof id, id};
    body.at_ms = (opts->given & CLI_OPT_AT) ? opts->at_ms : cli_now_ms();
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.body_case = ENGRAM__STATEMENT__BODY_REVOCATION;
    st.revocation = &body;
    return s_submit(engram, opts, &st, NULL);
}

int cli_check_acl_policy(const cli_command_t *command, const cli_opts_t *opts)
{
    const char *action = opts->args[1];
    if (!*opts->args[0])
        return cli_usage(command, "SCOPE_PATTERN is empty");
    if (strcmp(action, "block") != 0 && strcmp(action, "redact") != 0)
        return cli_usage(command, "the action is block or redact, not '%s'", action);
    if (strcmp(action, "block") == 0 && opts->patterns.n)
        return cli_usage(command, "--pattern goes with redact: block refuses the whole write");
    for (size_t i = 0; i < opts->patterns.n; i++) {
        char why[256];
        if (!node_redact_pattern_ok(opts->patterns.items[i], why, sizeof why))
            return cli_usage(command, "--pattern '%s': %s", opts->patterns.items[i], why);
    }
    return 0;
}

int cli_cmd_acl_policy(engram_t *engram, const cli_opts_t *opts)
{
    Engram__WritePolicy body = ENGRAM__WRITE_POLICY__INIT;
    body.scope_pattern = (char *)opts->args[0];
    body.action = strcmp(opts->args[1], "block") == 0 ? ENGRAM__POLICY_ACTION__POLICY_BLOCK
                                                      : ENGRAM__POLICY_ACTION__POLICY_REDACT;
    body.n_patterns = opts->patterns.n;
    body.patterns = (char **)opts->patterns.items;
    Engram__Statement st = ENGRAM__STATEMENT__INIT;
    st.body_case = ENGRAM__STATEMENT__BODY_POLICY;
    st.policy = &body;
    return s_submit(engram, opts, &st, NULL);
}

/*  --- acl show, check --------------------------------------------------------------------- */

/*  The node's JSON answer, as a document. Takes *text (frees it). NULL, after cli_fail's
 *  message, when it is not JSON. */
static json_t *s_answer(char **text)
{
    json_error_t error = {.text = "empty"};
    json_t *doc = *text ? json_loads(*text, 0, &error) : NULL;
    free(*text);
    *text = NULL;
    if (!doc)
        cli_fail(ENGRAM_EDECODE, "the node's answer is not JSON: %s", error.text);
    return doc;
}

/*  A time of acl show: ISO 8601; null (open) as "open". */
static void s_print_time(const json_t *ms)
{
    char text[CLI_TIME_CHARS + 1];
    if (!json_is_integer(ms)) {
        fputs("open", stdout);
        return;
    }
    cli_format_time((uint64_t)json_integer_value(ms), text);
    fputs(text, stdout);
}

/*  A detail of a statement, as a field of a line: strings as they are and arrays with their
 *  items separated by commas ("-" when empty or null), anything else as JSON. */
static void s_print_detail(const json_t *value)
{
    if (!value || json_is_null(value)) {
        putchar('-');
    } else if (json_is_string(value)) {
        const char *s = json_string_value(value);
        cli_print_field((const uint8_t *)(*s ? s : "-"), *s ? json_string_length(value) : 1);
    } else if (json_is_array(value)) {
        if (json_array_size(value) == 0)
            putchar('-');
        for (size_t i = 0; i < json_array_size(value); i++) {
            if (i)
                putchar(',');
            s_print_detail(json_array_get(value, i));
        }
    } else {
        char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        fputs(text ? text : "?", stdout);
        free(text);
    }
}

/*  Whether key is one of the members every statement of acl show has (the rest are the
 *  details of its kind). */
static bool s_header_member(const char *key)
{
    static const char *const header[] = {"kind",    "id",       "signer",    "issued_ms",
                                         "from_ms", "until_ms", "effective", "valid"};
    for (size_t i = 0; i < sizeof header / sizeof header[0]; i++)
        if (strcmp(key, header[i]) == 0)
            return true;
    return false;
}

/*  A statement on a line: id, kind, its details (name=value), [from, until) and its state at
 *  the time asked: valid, pending (not yet valid), expired (revoked or past its until), or
 *  ineffective (its signer was no admin at its time). */
static void s_print_statement(const json_t *statement, uint64_t at_ms)
{
    const json_t *from = json_object_get(statement, "from_ms");
    const char *state;
    if (!json_is_true(json_object_get(statement, "effective")))
        state = "ineffective";
    else if (json_is_true(json_object_get(statement, "valid")))
        state = "valid";
    else if (json_is_integer(from) && (uint64_t)json_integer_value(from) > at_ms)
        state = "pending";
    else
        state = "expired";
    s_print_detail(json_object_get(statement, "id"));
    putchar(' ');
    s_print_detail(json_object_get(statement, "kind"));
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)statement, key, value)
    {
        if (s_header_member(key))
            continue;
        printf(" %s=", key);
        s_print_detail(value);
    }
    fputs(" [", stdout);
    s_print_time(from);
    fputs(", ", stdout);
    s_print_time(json_object_get(statement, "until_ms"));
    printf(") %s\n", state);
}

int cli_cmd_acl_show(engram_t *engram, const cli_opts_t *opts)
{
    char *text = NULL;
    int rc = engram_acl_show(engram, (opts->given & CLI_OPT_AT) ? opts->at_ms : 0, &text);
    if (rc != 0)
        return rc;
    json_t *doc = s_answer(&text);
    if (!doc)
        return ENGRAM_EDECODE;
    if (opts->json)
        return cli_json_print(doc);
    const json_t *at = json_object_get(doc, "at_ms");
    const json_t *statements = json_object_get(doc, "statements");
    if (!json_is_integer(at) || !json_is_array(statements)) {
        json_decref(doc);
        return cli_fail(ENGRAM_EDECODE, "the node's answer has no at_ms and statements");
    }
    for (size_t i = 0; i < json_array_size(statements); i++)
        s_print_statement(json_array_get(statements, i), (uint64_t)json_integer_value(at));
    json_decref(doc);
    return 0;
}

int cli_check_acl_check(const cli_command_t *command, const cli_opts_t *opts)
{
    int rc = cli_check_agent(command, opts->args[0]);
    return rc ? rc : s_check_user(command, opts->args[1]);
}

int cli_cmd_acl_check(engram_t *engram, const cli_opts_t *opts)
{
    const char *agent = opts->args[0], *user = opts->args[1], *scope = opts->args[2];
    char *text = NULL;
    int rc = engram_acl_check(engram, agent, user, scope,
                              (opts->given & CLI_OPT_AT) ? opts->at_ms : 0, &text);
    if (rc != 0)
        return rc;
    json_t *doc = s_answer(&text);
    if (!doc)
        return ENGRAM_EDECODE;
    bool read = json_is_true(json_object_get(doc, "read"));
    if (opts->json) {
        rc = cli_json_print(doc);
    } else {
        bool write = json_is_true(json_object_get(doc, "write"));
        printf("read %s, write %s\n", read ? "allowed" : "denied", write ? "allowed" : "denied");
        const json_t *lines = json_object_get(doc, "explain");
        for (size_t i = 0; i < json_array_size(lines); i++) {
            s_print_detail(json_array_get(lines, i));
            putchar('\n');
        }
        json_decref(doc);
    }
    if (rc == 0 && !read)
        rc = cli_fail(ENGRAM_EDENIED, "%s acting for %s may not read %s", agent, user, scope);
    return rc;
}
