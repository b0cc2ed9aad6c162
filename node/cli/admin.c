/*  Cluster administration: the admin key under $ENGRAM_HOME (cli_admin_load, which every
 *  command signing or connecting as the admin uses), the commands that sign with it (cluster
 *  init, node admit, cluster remove) and those that ask a node about its cluster (cluster
 *  status, cluster join) or its data (snapshot).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/cli/cli.h"
#include "node/trust/admission.h"
#include "node/trust/identity.h"

int cli_cmd_cluster_init(engram_t *engram, const cli_opts_t *opts)
{
    (void)engram;
    char home[4096], why[512];
    node_admin_home(home, sizeof home);
    node_trust_t trust;
    int rc = node_admin_init(home, &trust, why, sizeof why);
    if (rc)
        return cli_fail(rc, "%s", why);
    char id[2 * NODE_CLUSTER_ID_BYTES + 1];
    sodium_bin2hex(id, sizeof id, trust.cluster_id, sizeof trust.cluster_id);
    if (opts->json)
        return cli_json_print(json_pack("{s:s, s:o}", "cluster", id, "home", cli_json_str(home)));
    printf("cluster=%s home=%s\n", id, home);
    return 0;
}

int cli_admin_load(node_trust_t *trust, uint8_t secret[crypto_sign_SECRETKEYBYTES])
{
    char home[4096], why[512];
    node_admin_home(home, sizeof home);
    int rc = node_admin_load(home, trust, secret, why, sizeof why);
    return rc ? cli_fail(rc, "%s", why) : 0;
}

int cli_cmd_node_admit(engram_t *engram, const cli_opts_t *opts)
{
    (void)engram;
    uint8_t key[crypto_sign_PUBLICKEYBYTES], secret[crypto_sign_SECRETKEYBYTES];
    size_t got = 0;
    const char *hex = opts->args[0];
    if (sodium_hex2bin(key, sizeof key, hex, strlen(hex), NULL, &got, NULL) != 0 ||
        got != sizeof key)
        return cli_fail(ENGRAM_EINVAL, "KEY is a node's public key, 64 hex digits, as `engramd "
                                       "--data DIR --identity` prints it");
    if (!opts->out)
        return cli_fail(ENGRAM_EINVAL, "--out FILE is needed: where the node's card goes");
    node_trust_t trust;
    int rc = cli_admin_load(&trust, secret);
    uint8_t *card = NULL;
    size_t len = 0;
    if (rc == 0)
        rc = node_admin_admit(&trust, secret, key, (uint64_t)time(NULL) * 1000, &card, &len);
    sodium_memzero(secret, sizeof secret);
    if (rc == 0 && (rc = node_admission_write_file(opts->out, card, len, 0644)) != 0)
        cli_fail(rc, "cannot write %s", opts->out);
    free(card);
    if (rc != 0)
        return rc;
    char id[CLI_NODE_ID_CHARS + 1];
    cli_node_id(node_identity_id_of(key), id);
    if (opts->json)
        return cli_json_print(json_pack("{s:s, s:o}", "node", id, "card", cli_json_str(opts->out)));
    printf("node=%s card=%s\n", id, opts->out);
    return 0;
}

int cli_cmd_cluster_remove(engram_t *engram, const cli_opts_t *opts)
{
    uint64_t node;
    if (!cli_parse_node(opts->args[0], &node))
        return cli_fail(ENGRAM_EINVAL, "NODE is a node id, 16 hex digits, as `engram cluster "
                                       "status` shows it");
    node_trust_t trust;
    uint8_t secret[crypto_sign_SECRETKEYBYTES];
    int rc = cli_admin_load(&trust, secret);
    uint8_t *statement = NULL;
    size_t len = 0;
    if (rc == 0)
        rc = node_admin_decommission(&trust, secret, node, (uint64_t)time(NULL) * 1000, &statement,
                                     &len);
    sodium_memzero(secret, sizeof secret);
    if (rc == 0)
        rc = engram_cluster_remove(engram, node, statement, len);
    free(statement);
    if (rc != 0)
        return rc;
    char id[CLI_NODE_ID_CHARS + 1];
    cli_node_id(node, id);
    if (opts->json)
        return cli_json_print(json_pack("{s:s}", "removed", id));
    printf("removed %s\n", id);
    return 0;
}

int cli_cmd_cluster_join(engram_t *engram, const cli_opts_t *opts)
{
    int rc = engram_cluster_join(engram, opts->args[0]);
    if (rc != 0)
        return rc;
    if (opts->json)
        return cli_json_print(json_pack("{s:o}", "joining", cli_json_str(opts->args[0])));
    printf("joining through %s\n", opts->args[0]);
    return 0;
}

int cli_cmd_snapshot(engram_t *engram, const cli_opts_t *opts)
{
    engram_set_timeout(engram, (opts->given & CLI_OPT_TIMEOUT)
                                   ? opts->timeout_ms
                                   : ENGRAM_DEFAULT_SNAPSHOT_TIMEOUT_MS);
    int rc = engram_snapshot(engram, opts->args[0]);
    if (rc != 0)
        return rc;
    if (opts->json)
        return cli_json_print(json_pack("{s:o}", "snapshot", cli_json_str(opts->args[0])));
    printf("snapshot written to %s\n", opts->args[0]);
    return 0;
}

/*  A member as cluster status --json shows it; its lag is null while unknown (its bytes also
 *  when the node did not measure them: too many operations). */
static json_t *s_member_json(const engram_member_t *m)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "node", cli_json_node(m->id), "state",
                     cli_json_str(m->state), "incarnation", cli_json_u64(m->incarnation),
                     "endpoint", cli_json_str(m->endpoint), "lag_ops",
                     m->lag_known ? cli_json_u64(m->lag_ops) : json_null(), "lag_bytes",
                     m->lag_known && m->lag_bytes != UINT64_MAX ? cli_json_u64(m->lag_bytes)
                                                                : json_null());
}

static json_t *s_scope_json(const engram_scope_status_t *sc)
{
    return json_pack("{s:o, s:o, s:o, s:o}", "scope", cli_json_str(sc->scope), "vector",
                     cli_json_str(sc->vector), "ops", cli_json_u64(sc->ops), "garbage",
                     cli_json_u64(sc->garbage));
}

static json_t *s_cluster_json(const engram_cluster_t *c)
{
    json_t *members = json_array(), *scopes = json_array();
    for (size_t i = 0; i < c->nmembers; i++)
        members = cli_json_append(members, s_member_json(&c->members[i]));
    for (size_t i = 0; i < c->nscopes; i++)
        scopes = cli_json_append(scopes, s_scope_json(&c->scopes[i]));
    json_t *gossip = json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I}", "pushes_sent",
        cli_json_u64(c->pushes_sent), "pushes_applied", cli_json_u64(c->pushes_applied),
        "pushes_held_back", cli_json_u64(c->pushes_held_back), "digests_sent",
        cli_json_u64(c->digests_sent), "pulls_answered", cli_json_u64(c->pulls_answered),
        "pull_deltas_applied", cli_json_u64(c->pull_deltas_applied), "bytes_sent",
        cli_json_u64(c->bytes_sent), "bytes_received", cli_json_u64(c->bytes_received),
        "bad_messages", cli_json_u64(c->bad_messages), "local_health", (json_int_t)c->local_health);
    if (gossip &&
        (json_object_set_new(gossip, "bad_scope", cli_json_u64(c->bad_scope)) != 0 ||
         json_object_set_new(gossip, "lean_deltas", cli_json_u64(c->lean_deltas)) != 0 ||
         json_object_set_new(gossip, "compressed_sent", cli_json_u64(c->compressed_sent)) != 0 ||
         json_object_set_new(gossip, "compression_saved", cli_json_u64(c->compression_saved)) !=
             0 ||
         json_object_set_new(gossip, "acks_sent", cli_json_u64(c->acks_sent)) != 0 ||
         json_object_set_new(gossip, "acks_deferred", cli_json_u64(c->acks_deferred)) != 0))
        gossip = NULL;
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "cluster",
                     cli_json_str(c->cluster_id), "node", cli_json_node(c->node_id), "endpoint",
                     cli_json_str(c->endpoint), "status_page", cli_json_str(c->status_page),
                     "storage", cli_json_str(c->storage), "members", members, "scopes", scopes,
                     "gossip", gossip);
}

static void s_cluster_text(const engram_cluster_t *c)
{
    char id[CLI_NODE_ID_CHARS + 1];
    cli_node_id(c->node_id, id);
    printf("cluster %s, node %s at %s\n", c->cluster_id, id, c->endpoint);
    if (*c->status_page)
        printf("status page: %s\n", c->status_page);
    printf("storage: %s\n", c->storage);
    printf("members:\n");
    for (size_t i = 0; i < c->nmembers; i++) {
        const engram_member_t *m = &c->members[i];
        cli_node_id(m->id, id);
        printf("  %s %-7s incarnation %" PRIu64 " %s", id, m->state, m->incarnation, m->endpoint);
        if (strcmp(m->state, "self") == 0 || strcmp(m->state, "left") == 0)
            putchar('\n');
        else if (m->lag_known && m->lag_bytes == UINT64_MAX)
            printf(" lag %" PRIu64 " ops (too many to measure in bytes)\n", m->lag_ops);
        else if (m->lag_known)
            printf(" lag %" PRIu64 " ops %" PRIu64 " bytes\n", m->lag_ops, m->lag_bytes);
        else
            printf(" lag unknown\n");
    }
    printf("scopes:\n");
    for (size_t i = 0; i < c->nscopes; i++)
        printf("  %s ops %" PRIu64 " garbage %" PRIu64 " vector %s\n", c->scopes[i].scope,
               c->scopes[i].ops, c->scopes[i].garbage, c->scopes[i].vector);
    printf("gossip: pushes sent %" PRIu64 " applied %" PRIu64 " held back %" PRIu64
           ", digests sent %" PRIu64 ", pulls answered %" PRIu64 ", pulled deltas applied %" PRIu64
           ", bytes sent %" PRIu64 " received %" PRIu64 ", bad messages %" PRIu64
           ", local health %u, bad scope names %" PRIu64 ", lean deltas %" PRIu64
           ", compressed %" PRIu64 " (saved %" PRIu64 " bytes), acks sent %" PRIu64 " (%" PRIu64
           " at the tick)\n",
           c->pushes_sent, c->pushes_applied, c->pushes_held_back, c->digests_sent,
           c->pulls_answered, c->pull_deltas_applied, c->bytes_sent, c->bytes_received,
           c->bad_messages, c->local_health, c->bad_scope, c->lean_deltas, c->compressed_sent,
           c->compression_saved, c->acks_sent, c->acks_deferred);
}

int cli_cmd_cluster_status(engram_t *engram, const cli_opts_t *opts)
{
    engram_cluster_t *status = NULL;
    int rc = engram_cluster_status(engram, &status);
    if (rc)
        return rc;
    if (opts->json)
        rc = cli_json_print(s_cluster_json(status));
    else
        s_cluster_text(status);
    engram_cluster_destroy(&status);
    return rc;
}
