/*  engram init: the single-node quick start, offline. It gives a data directory DIR all that
 *  engramd needs to serve one agent for one user under access control:
 *    - the admin: $ENGRAM_HOME's cluster and admin key, created when there are none;
 *    - DIR/trust: the node's trust root when it has no admission card (DIR/admission), a copy
 *      of $ENGRAM_HOME/cluster (zconfig: cluster/id, cluster/admin_key). An existing one that
 *      differs is never overwritten (the statements the node keeps were judged against it); a
 *      node with a card takes its root from the card, which must then name this admin;
 *    - the agent's key pair under $ENGRAM_HOME/agents (keys.c), reused when it exists;
 *    - two statements signed by the admin, the agent's registration (any home node) and the
 *      user's edge to it from now on, appended to DIR/acl.init (a packed StatementList,
 *      proto/acl.proto), which engramd imports at every start. Running init again appends two
 *      more: the same grants under new ids, which change nothing.
 */
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "node/cli/cli.h"

/*  The largest acl.init read: far more statements than a quick start writes. */
#define S_ACL_INIT_MAX_BYTES (16 * 1024 * 1024)
/*  The largest cluster file or card read. */
#define S_TRUST_MAX_BYTES 4096

int cli_check_init(const cli_command_t *command, const cli_opts_t *opts)
{
    if (!opts->data)
        return cli_usage(command, "--data DIR is needed: the node's data directory");
    int rc = cli_check_agent(command, opts->agent);
    return rc ? rc : cli_check_user(command, opts->user);
}

/*  The admin's cluster and secret key from home, created first when home has no cluster
 *  (*created). */
static int s_admin(const char *home, node_trust_t *trust,
                   uint8_t secret[crypto_sign_SECRETKEYBYTES], bool *created)
{
    char path[4200], why[512];
    snprintf(path, sizeof path, "%s/cluster", home);
    *created = !zsys_file_exists(path);
    int rc = *created ? node_admin_init(home, trust, why, sizeof why) : 0;
    if (rc == 0)
        rc = node_admin_load(home, trust, secret, why, sizeof why);
    return rc ? cli_fail(rc, "%s", why) : 0;
}

/*  Where the node's trust root is. */
typedef enum {
    S_TRUST_CARD,    /* its card, DIR/admission, names this admin */
    S_TRUST_WRITTEN, /* DIR/trust, written now */
    S_TRUST_KEPT,    /* DIR/trust, which held this admin's cluster already */
} s_trust_t;

/*  The admission card data (len bytes, from path) must name trust's admin: otherwise what this
 *  admin signs would have no effect on the node. */
static int s_check_card(const char *path, const uint8_t *data, size_t len,
                        const node_trust_t *trust)
{
    node_trust_t card;
    uint8_t node_key[crypto_sign_PUBLICKEYBYTES];
    int rc = node_admission_open_card(data, len, &card, node_key);
    if (rc != 0)
        return cli_fail(rc, "%s is not an admission card", path);
    if (sodium_memcmp(card.admin_key, trust->admin_key, sizeof card.admin_key) != 0)
        return cli_fail(ENGRAM_EINVAL,
                        "%s admits the node to a cluster of another admin: what this admin signs "
                        "would have no effect there",
                        path);
    return 0;
}

/*  dir/trust: written from home/cluster, or kept when it holds the same already. */
static int s_trust_file(const char *home, const char *dir, s_trust_t *done)
{
    char path[4200];
    uint8_t *data = NULL, *have = NULL;
    size_t len = 0, have_len = 0;
    snprintf(path, sizeof path, "%s/cluster", home);
    int rc = node_admission_read_file(path, S_TRUST_MAX_BYTES, &data, &len);
    if (rc != 0)
        return cli_fail(rc, "cannot read %s", path);
    snprintf(path, sizeof path, "%s/trust", dir);
    rc = node_admission_read_file(path, S_TRUST_MAX_BYTES, &have, &have_len);
    if (rc == 0 && (have_len != len || memcmp(have, data, len) != 0))
        rc = cli_fail(ENGRAM_EINVAL,
                      "%s holds another trust root; it is never overwritten (the statements the "
                      "node holds were judged against it)",
                      path);
    else if (rc == 0)
        *done = S_TRUST_KEPT;
    else if (rc == ENGRAM_ENOTFOUND && (rc = node_admission_write_file(path, data, len, 0600)) == 0)
        *done = S_TRUST_WRITTEN;
    else
        rc = cli_fail(rc, "cannot read or write %s", path);
    free(have);
    free(data);
    return rc;
}

/*  The node's trust root in dir: its card when it has one, else dir/trust. */
static int s_trust(const char *home, const char *dir, const node_trust_t *trust, s_trust_t *done)
{
    char path[4200];
    uint8_t *card = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/admission", dir);
    int rc = node_admission_read_file(path, S_TRUST_MAX_BYTES, &card, &len);
    if (rc == ENGRAM_ENOTFOUND)
        return s_trust_file(home, dir, done);
    if (rc != 0)
        return cli_fail(rc, "cannot read %s", path);
    rc = s_check_card(path, card, len, trust);
    free(card);
    if (rc == 0)
        *done = S_TRUST_CARD;
    return rc;
}

/*  Appends the n packed SignedStatements of add to path, a packed StatementList (created when
 *  missing), through a new file and a rename. */
static int s_append(const char *path, ProtobufCBinaryData *add, size_t n)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = node_admission_read_file(path, S_ACL_INIT_MAX_BYTES, &data, &len);
    if (rc != 0 && rc != ENGRAM_ENOTFOUND)
        return cli_fail(rc, "cannot read %s", path);
    Engram__StatementList *old = rc == 0 ? engram__statement_list__unpack(NULL, len, data) : NULL;
    free(data);
    if (rc == 0 && !old)
        return cli_fail(ENGRAM_EDECODE, "%s is not a list of statements", path);
    size_t nold = old ? old->n_statements : 0;
    Engram__StatementList list = ENGRAM__STATEMENT_LIST__INIT;
    list.statements = calloc(nold + n, sizeof *list.statements);
    rc = list.statements ? 0 : cli_fail(ENGRAM_ENOMEM, "appending to %s", path);
    uint8_t *packed = NULL;
    if (rc == 0) {
        for (size_t i = 0; i < nold; i++)
            list.statements[list.n_statements++] = old->statements[i];
        for (size_t i = 0; i < n; i++)
            list.statements[list.n_statements++] = add[i];
        len = engram__statement_list__get_packed_size(&list);
        if (!(packed = malloc(len ? len : 1)))
            rc = cli_fail(ENGRAM_ENOMEM, "appending to %s", path);
    }
    if (rc == 0) {
        engram__statement_list__pack(&list, packed);
        if ((rc = node_admission_write_file(path, packed, len, 0600)) != 0)
            cli_fail(rc, "cannot write %s", path);
    }
    free(packed);
    free(list.statements);
    if (old)
        engram__statement_list__free_unpacked(old, NULL);
    return rc;
}

/*  Signs the agent's registration and the user's edge to it, and appends them to
 *  dir/acl.init; ids gets their ids. */
static int s_statements(const char *dir, const uint8_t secret[crypto_sign_SECRETKEYBYTES],
                        const cli_opts_t *opts, const uint8_t key[32],
                        char ids[2][CLI_ACL_ID_CHARS + 1])
{
    ProtobufCBinaryData signed_statements[2] = {{0}};
    int rc = cli_acl_sign_agent(secret, opts->agent, key, 0, &signed_statements[0].data,
                                &signed_statements[0].len);
    if (rc == 0)
        rc = cli_acl_sign_user_agent(secret, opts->user, opts->agent, cli_now_ms(), 0,
                                     &signed_statements[1].data, &signed_statements[1].len);
    for (size_t i = 0; i < 2 && rc == 0; i++)
        rc = cli_acl_id(signed_statements[i].data, signed_statements[i].len, ids[i]);
    char path[4200];
    snprintf(path, sizeof path, "%s/acl.init", dir);
    if (rc == 0)
        rc = s_append(path, signed_statements, 2);
    free(signed_statements[0].data);
    free(signed_statements[1].data);
    return rc;
}

int cli_cmd_init(engram_t *engram, const cli_opts_t *opts)
{
    (void)engram;
    const char *dir = opts->data;
    char home[4096];
    node_admin_home(home, sizeof home);
    node_trust_t trust;
    uint8_t secret[crypto_sign_SECRETKEYBYTES], key[32];
    bool admin_created, key_created;
    s_trust_t trust_done = S_TRUST_CARD;
    char ids[2][CLI_ACL_ID_CHARS + 1];
    int rc = s_admin(home, &trust, secret, &admin_created);
    if (rc == 0)
        rc = cli_mkdirs(dir);
    if (rc == 0)
        rc = s_trust(home, dir, &trust, &trust_done);
    if (rc == 0)
        rc = cli_agent_key(opts->agent, key, &key_created);
    if (rc == 0)
        rc = s_statements(dir, secret, opts, key, ids);
    sodium_memzero(secret, sizeof secret);
    if (rc != 0)
        return rc;
    static const char *const trust_json[] = {
        [S_TRUST_CARD] = "card", [S_TRUST_WRITTEN] = "written", [S_TRUST_KEPT] = "kept"};
    char cluster[2 * NODE_CLUSTER_ID_BYTES + 1], z85[CLI_KEY_Z85_CHARS + 1];
    sodium_bin2hex(cluster, sizeof cluster, trust.cluster_id, sizeof trust.cluster_id);
    zmq_z85_encode(z85, key, sizeof key);
    if (opts->json)
        return cli_json_print(json_pack("{s:s, s:o, s:o, s:s, s:s, s:s, s:o, s:{s:s, s:s}}",
                                        "cluster", cluster, "home", cli_json_str(home), "data",
                                        cli_json_str(dir), "trust", trust_json[trust_done], "agent",
                                        opts->agent, "key", z85, "user", cli_json_str(opts->user),
                                        "statements", "agent", ids[0], "user_agent", ids[1]));
    printf("admin: %s in %s (cluster %s)\n", admin_created ? "created" : "loaded", home, cluster);
    if (trust_done == S_TRUST_CARD)
        printf("node trust root: %s/admission, its card, which names this admin\n", dir);
    else
        printf("node trust root: %s/trust (%s)\n", dir,
               trust_done == S_TRUST_WRITTEN ? "written" : "there already");
    printf("agent %s: key %s %s in %s/agents\n", opts->agent, z85,
           key_created ? "created" : "reused", home);
    printf("statement %s: agent %s registered\n", ids[0], opts->agent);
    printf("statement %s: user ", ids[1]);
    cli_print_field((const uint8_t *)opts->user, strlen(opts->user));
    printf(" may act through agent %s\n", opts->agent);
    printf("appended to %s/acl.init; start the node with: engramd --data %s\n", dir, dir);
    return 0;
}
