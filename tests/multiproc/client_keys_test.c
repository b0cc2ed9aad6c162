/*  The agent API's keys end to end, with a real engramd and libengram: the node publishes its
 *  CURVE key where clients pin it from, a client without its own key or without the node's is
 *  refused with ENGRAM_EDENIED and told which file is missing and what makes it, and a client
 *  never talks to a node whose key is not the one it pinned (an impostor on the socket, or a
 *  wrong ENGRAM_SERVER_KEY): the CURVE handshake fails, the call ends ENGRAM_EUNAVAILABLE and
 *  the node never sees the request. A NULL-mechanism client gets nothing through either.
 *
 *    test_published_key_is_pinned     DATA/api.pub and PATH.pub hold the key `engramd
 *                                     --identity` prints; PATH.pub goes with a clean stop and
 *                                     comes back with the next start
 *    test_missing_agent_key           EDENIED naming AGENT.cert_secret and `engram agent
 *                                     create`; then, the key made, EDENIED by the node for a
 *                                     key no statement registers; the same connection works
 *                                     once the admin has registered the key
 *    test_missing_server_key          EUNAVAILABLE naming PATH.pub while no node serves
 *                                     there, and the client (granted before the node's start,
 *                                     through DATA/acl.init) works once one does; EDENIED for
 *                                     a PATH.pub that is not a certificate, and naming
 *                                     ENGRAM_SERVER_KEY (tcp, or a malformed key)
 *    test_wrong_server_key            ENGRAM_SERVER_KEY of another key, an impostor node on
 *                                     the endpoint, engram_connect_keys with a wrong
 *                                     key: EUNAVAILABLE, and the node counts no request
 *    test_null_client_gets_nothing    a plain DEALER's request is never answered
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <czmq.h>

#include "agent_keys.h"
#include "engram/engram.h"
#include "node_harness.h"
#include "proto/api.pb-c.h"

#define CALL_MS 5000
/*  How long a call that must not get through is given: its handshake fails at once, so the
 *  call waits out its whole timeout. */
#define REFUSED_MS 1000

static node_harness_t *s_node;  /* the node of every test */
static node_harness_t *s_other; /* an impostor, in test_wrong_server_key */

static int s_setup(void **state)
{
    (void)state;
    s_node = node_harness_new(NULL);
    return s_node && agent_keys_home() ? 0 : -1;
}

static int s_teardown(void **state)
{
    (void)state;
    unsetenv("ENGRAM_SERVER_KEY");
    node_harness_destroy(&s_node);
    node_harness_destroy(&s_other);
    return 0;
}

/*  The API key `engramd --data DIR --identity` prints after api= (the node must not run). */
static void s_identity_api(node_harness_t *node, char api[41])
{
    char *command = NULL;
    assert_true(asprintf(&command, "%s --data %s --identity 2>/dev/null", ENGRAM_ENGRAMD,
                         node_harness_data_dir(node)) > 0);
    FILE *out = popen(command, "r");
    free(command);
    assert_non_null(out);
    char line[512] = "";
    char *got = fgets(line, sizeof line, out);
    assert_int_equal(pclose(out), 0);
    assert_non_null(got);
    const char *at = strstr(line, " api=");
    if (!at || strlen(at + 5) < 40)
        fail_msg("engramd --identity printed '%s', with no api=KEY", line);
    memcpy(api, at + 5, 40);
    api[40] = '\0';
}

/*  The public key of the certificate at path (Z85), or "" when there is none. */
static void s_cert_key(const char *path, char key[41])
{
    zcert_t *cert = zcert_load(path);
    snprintf(key, 41, "%s", cert ? zcert_public_txt(cert) : "");
    zcert_destroy(&cert);
}

/*  PATH.pub of the node's ipc://PATH endpoint. */
static void s_published_path(node_harness_t *node, char *path, size_t len)
{
    snprintf(path, len, "%s.pub", node_harness_endpoint(node) + strlen("ipc://"));
}

static uint64_t s_requests(engram_t *e)
{
    engram_stats_t stats;
    int rc = engram_stats(e, &stats);
    if (rc)
        fail_msg("stats: %s: %s", engram_strerror(rc), engram_last_error(e));
    return stats.requests;
}

/*  Whether the last error of e contains needle (failing with the message if not). */
static void s_error_says(engram_t *e, const char *needle)
{
    if (!strstr(engram_last_error(e), needle))
        fail_msg("the error '%s' does not say '%s'", engram_last_error(e), needle);
}

/*  The canonical use: the node publishes the key `engramd --identity` prints, beside its socket
 *  and in its data directory, and a client pins it from there. */
static void test_published_key_is_pinned(void **state)
{
    (void)state;
    char api[41], published[512], data_key[512], key[41];
    s_identity_api(s_node, api);
    assert_int_equal(node_harness_start(s_node), 0);
    s_published_path(s_node, published, sizeof published);
    snprintf(data_key, sizeof data_key, "%s/api.pub", node_harness_data_dir(s_node));
    s_cert_key(published, key);
    assert_string_equal(key, api);
    s_cert_key(data_key, key);
    assert_string_equal(key, api);

    engram_t *e = node_harness_connect(s_node, "agent-a", "alice", CALL_MS);
    assert_non_null(e);
    engram_result_t *r = NULL;
    int rc = engram_put(e, "run:keys", "k", "v", 1, NULL, 0, &r);
    if (rc)
        fail_msg("put: %s: %s", engram_strerror(rc), engram_last_error(e));
    engram_result_destroy(&r);
    engram_destroy(&e);

    assert_int_equal(node_harness_stop(s_node), 0);
    if (zsys_file_exists(published))
        fail_msg("%s is still there after a clean stop", published);
    s_cert_key(data_key, key);
    assert_string_equal(key, api); /* the data directory keeps it */
    assert_int_equal(node_harness_start(s_node), 0);
    s_cert_key(published, key);
    assert_string_equal(key, api);
    assert_int_equal(node_harness_stop(s_node), 0);
}

/*  An agent without a key pair is refused, told which file and which command; with a key the
 *  node does not know it is refused by the node; the same connection works once the admin has
 *  registered the key (node_harness_grant). */
static void test_missing_agent_key(void **state)
{
    (void)state;
    assert_int_equal(node_harness_start(s_node), 0);
    engram_t *e = engram_connect(node_harness_endpoint(s_node), "nobody", "alice");
    assert_non_null(e);
    engram_set_timeout(e, CALL_MS);
    engram_stats_t stats;
    assert_int_equal(engram_stats(e, &stats), ENGRAM_EDENIED);
    s_error_says(e, "/agents/nobody.cert_secret");
    s_error_says(e, "engram agent create nobody");
    engram_result_t *r = NULL;
    assert_int_equal(engram_put(e, "run:keys", "k", "v", 1, NULL, 0, &r), ENGRAM_EDENIED);
    assert_null(r);

    assert_int_equal(agent_keys_make("nobody"), 0);
    assert_int_equal(engram_stats(e, &stats), ENGRAM_EDENIED);
    s_error_says(e, "is not registered");
    assert_int_equal(node_harness_grant(s_node, "nobody", "alice"), 0);
    int rc = engram_stats(e, &stats);
    if (rc)
        fail_msg("with its key made and registered, the agent's call failed: %s: %s",
                 engram_strerror(rc), engram_last_error(e));
    engram_destroy(&e);

    e = engram_connect(node_harness_endpoint(s_node), "../escape", "alice");
    assert_non_null(e);
    assert_int_equal(engram_stats(e, &stats), ENGRAM_EDENIED);
    s_error_says(e, "not an agent name");
    engram_destroy(&e);
    assert_int_equal(node_harness_stop(s_node), 0);
}

/*  Without the node's key a client is refused and told where it looks; one made before its node
 *  started works once the node publishes its key (its agent granted before the start, in
 *  DATA/acl.init). */
static void test_missing_server_key(void **state)
{
    (void)state;
    char published[512];
    s_published_path(s_node, published, sizeof published);
    assert_int_equal(node_harness_grant(s_node, "agent-a", "alice"), 0);
    engram_t *e = engram_connect(node_harness_endpoint(s_node), "agent-a", "alice");
    assert_non_null(e);
    engram_set_timeout(e, CALL_MS);
    engram_stats_t stats;
    assert_int_equal(engram_stats(e, &stats), ENGRAM_EUNAVAILABLE); /* no node: no PATH.pub */
    s_error_says(e, published);
    s_error_says(e, "start engramd");
    s_error_says(e, "ENGRAM_SERVER_KEY");

    /* a PATH.pub that is not a certificate pins nothing */
    char fake[512];
    snprintf(fake, sizeof fake, "ipc://%s/fake.sock", node_harness_dir(s_node));
    char fake_pub[600];
    snprintf(fake_pub, sizeof fake_pub, "%s.pub", fake + strlen("ipc://"));
    FILE *junk = fopen(fake_pub, "w");
    assert_non_null(junk);
    fputs("curve\n    public-key = \"short\"\n", junk);
    fclose(junk);
    engram_t *f = engram_connect(fake, "agent-a", "alice");
    assert_non_null(f);
    assert_int_equal(engram_stats(f, &stats), ENGRAM_EDENIED);
    s_error_says(f, "not a CURVE certificate");
    engram_destroy(&f);

    assert_int_equal(node_harness_start(s_node), 0);
    int rc = engram_stats(e, &stats);
    if (rc)
        fail_msg("a client made before its node did not get through once the node was up: "
                 "%s: %s",
                 engram_strerror(rc), engram_last_error(e));
    engram_destroy(&e);

    /* tcp has no file beside it: ENGRAM_SERVER_KEY it is, and it must be a key */
    e = engram_connect("tcp://127.0.0.1:9", "agent-a", "alice");
    assert_non_null(e);
    assert_int_equal(engram_stats(e, &stats), ENGRAM_EDENIED);
    s_error_says(e, "ENGRAM_SERVER_KEY");
    engram_destroy(&e);
    setenv("ENGRAM_SERVER_KEY", "not a key", 1);
    e = engram_connect(node_harness_endpoint(s_node), "agent-a", "alice");
    assert_non_null(e);
    assert_int_equal(engram_stats(e, &stats), ENGRAM_EDENIED);
    s_error_says(e, "ENGRAM_SERVER_KEY is not");
    engram_destroy(&e);
    unsetenv("ENGRAM_SERVER_KEY");
    assert_int_equal(node_harness_stop(s_node), 0);
}

/*  A call through a connection that pinned another key than the node's: EUNAVAILABLE after
 *  its timeout, and the node counts no request of it (control's own calls aside). */
static void s_never_through(engram_t *control, engram_t *e, const char *what)
{
    uint64_t before = s_requests(control);
    engram_set_timeout(e, REFUSED_MS);
    engram_result_t *r = NULL;
    int rc = engram_put(e, "run:keys", "impostor", "v", 1, NULL, 0, &r);
    engram_result_destroy(&r);
    if (rc != ENGRAM_EUNAVAILABLE)
        fail_msg("%s: the call ended %s (%s), not ENGRAM_EUNAVAILABLE", what, engram_strerror(rc),
                 engram_last_error(e));
    uint64_t after = s_requests(control);
    if (after != before + 1) /* the second stats call itself */
        fail_msg("%s: the node counted %" PRIu64 " requests meanwhile", what, after - before - 1);
}

static void test_wrong_server_key(void **state)
{
    (void)state;
    assert_int_equal(node_harness_start(s_node), 0);
    engram_t *control = node_harness_connect(s_node, "control", "alice", CALL_MS);
    assert_non_null(control);

    /* ENGRAM_SERVER_KEY names another key */
    zcert_t *stranger = zcert_new();
    assert_non_null(stranger);
    setenv("ENGRAM_SERVER_KEY", zcert_public_txt(stranger), 1);
    engram_t *e = node_harness_connect(s_node, "agent-a", "alice", CALL_MS);
    unsetenv("ENGRAM_SERVER_KEY");
    assert_non_null(e);
    s_never_through(control, e, "ENGRAM_SERVER_KEY of another key");
    s_error_says(e, "ENGRAM_SERVER_KEY");
    engram_destroy(&e);

    /* explicit keys: the agent's own and the node's work, the node's replaced do not */
    char published[512], node_key_txt[41];
    s_published_path(s_node, published, sizeof published);
    s_cert_key(published, node_key_txt);
    uint8_t node_key[32];
    assert_non_null(zmq_z85_decode(node_key, node_key_txt));
    zcert_t *agent = agent_keys_cert("agent-a");
    assert_non_null(agent);
    e = engram_connect_keys(node_harness_endpoint(s_node), "agent-a", "alice",
                            zcert_public_key(agent), zcert_secret_key(agent), node_key);
    assert_non_null(e);
    engram_set_timeout(e, CALL_MS);
    int rc = engram_stats(e, &(engram_stats_t){0});
    if (rc)
        fail_msg("engram_connect_keys with the right keys: %s: %s", engram_strerror(rc),
                 engram_last_error(e));
    engram_destroy(&e);
    e = engram_connect_keys(node_harness_endpoint(s_node), "agent-a", "alice",
                            zcert_public_key(agent), zcert_secret_key(agent),
                            zcert_public_key(stranger));
    assert_non_null(e);
    s_never_through(control, e, "engram_connect_keys with another server key");
    engram_destroy(&e);

    /* an impostor: another node (another key) where the client expects the one it pinned */
    engram_destroy(&control);
    assert_int_equal(node_harness_stop(s_node), 0);
    s_other = node_harness_new(NULL);
    assert_non_null(s_other);
    assert_int_equal(node_harness_start(s_other), 0);
    setenv("ENGRAM_SERVER_KEY", node_key_txt, 1);
    e = engram_connect(node_harness_endpoint(s_other), "agent-a", "alice");
    unsetenv("ENGRAM_SERVER_KEY");
    assert_non_null(e);
    control = node_harness_connect(s_other, "control", "alice", CALL_MS);
    assert_non_null(control);
    s_never_through(control, e, "an impostor node");
    engram_destroy(&e);
    engram_destroy(&control);
    zcert_destroy(&agent);
    zcert_destroy(&stranger);
    assert_int_equal(node_harness_stop(s_other), 0);
}

/*  A NULL-mechanism DEALER (no keys at all) sends a valid request: no answer ever comes, and
 *  the node does not count it. */
static void test_null_client_gets_nothing(void **state)
{
    (void)state;
    assert_int_equal(node_harness_start(s_node), 0);
    engram_t *control = node_harness_connect(s_node, "control", "alice", CALL_MS);
    assert_non_null(control);
    uint64_t before = s_requests(control);

    zsock_t *plain = zsock_new(ZMQ_DEALER);
    assert_non_null(plain);
    zsock_set_linger(plain, 0);
    zsock_set_rcvtimeo(plain, REFUSED_MS);
    assert_int_equal(zsock_connect(plain, "%s", node_harness_endpoint(s_node)), 0);
    Engram__Request req = ENGRAM__REQUEST__INIT;
    req.schema_major = ENGRAM_SCHEMA_MAJOR;
    req.id = 1;
    req.op = ENGRAM__OP__STATS;
    req.agent = "plain";
    uint8_t buf[64];
    size_t len = engram__request__pack(&req, buf);
    zframe_t *frame = zframe_new(buf, len);
    assert_int_equal(zframe_send(&frame, plain, 0), 0);
    zmsg_t *got = zmsg_recv(plain);
    if (got) {
        zmsg_destroy(&got);
        fail_msg("a client without CURVE got an answer from the agent API");
    }
    zsock_destroy(&plain);
    if (s_requests(control) != before + 1)
        fail_msg("the node counted a request of a client without CURVE");
    engram_destroy(&control);
    assert_int_equal(node_harness_stop(s_node), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_published_key_is_pinned, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_missing_agent_key, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_missing_server_key, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_server_key, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_null_client_gets_nothing, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
