/*  Tests of node_zap, engramd's ZAP handler, with real sockets in this process: CURVE servers
 *  on the two domains, over ipc and tcp, clients with and without admitted keys, NULL-mechanism
 *  clients, and raw ZAP requests written by hand.
 *
 *  A process has one ZAP handler: every test starts its own and stops it before it ends.
 */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <czmq.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/trust/zap.h"

/*  How long a message that should pass may take, and how long one that must not is waited for. */
#define S_PASS_MS  5000
#define S_BLOCK_MS 500

typedef struct {
    char dir[64];   /* a temporary directory: sockets and the peers directory live here */
    char peers[96]; /* dir/peers, created by the test that needs it */
    zactor_t *zap;
    zcert_t *server; /* the server's key pair */
} s_fixture_t;

static int s_remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int s_setup(void **state)
{
    s_fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/engram-zap-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->peers, sizeof f->peers, "%s/peers", f->dir);
    f->zap = node_zap_new(f->peers);
    f->server = zcert_new();
    *state = f;
    return f->zap && f->server ? 0 : -1;
}

static int s_teardown(void **state)
{
    s_fixture_t *f = *state;
    zactor_destroy(&f->zap);
    zcert_destroy(&f->server);
    nftw(f->dir, s_remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/*  A ROUTER bound to endpoint (ipc://DIR/NAME or tcp://127.0.0.1:*), a CURVE server with the
 *  fixture's key on domain unless curve is false. Writes what it bound to into bound. */
static zsock_t *s_server(s_fixture_t *f, const char *endpoint, const char *domain, bool curve,
                         char *bound, size_t bound_len)
{
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    assert_non_null(router);
    zsock_set_linger(router, 0);
    if (curve) {
        zcert_apply(f->server, router);
        zsock_set_curve_server(router, 1);
    }
    if (domain)
        zsock_set_zap_domain(router, domain);
    assert_true(zsock_bind(router, "%s", endpoint) >= 0);
    snprintf(bound, bound_len, "%s", zsock_endpoint(router));
    return router;
}

/*  A DEALER connected to endpoint: a CURVE client with cert for f's server, or NULL. */
static zsock_t *s_client(s_fixture_t *f, zcert_t *cert, const char *endpoint)
{
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    assert_non_null(dealer);
    zsock_set_linger(dealer, 0);
    if (cert) {
        zcert_apply(cert, dealer);
        zsock_set_curve_serverkey(dealer, zcert_public_txt(f->server));
    }
    assert_int_equal(zsock_connect(dealer, "%s", endpoint), 0);
    return dealer;
}

/*  Sends one frame from client and returns the User-Id the server saw with it (a copy, the
 *  caller frees it; "" when the message had none), or NULL if nothing came within wait_ms. */
static char *s_exchange(zsock_t *client, zsock_t *server, int wait_ms)
{
    zsock_set_sndtimeo(client, 0);
    zstr_send(client, "hello"); /* queued until the handshake is done, dropped if it fails */
    zsock_set_rcvtimeo(server, wait_ms);
    zmsg_t *msg = zmsg_recv(server);
    if (!msg)
        return NULL;
    assert_int_equal(zmsg_size(msg), 2);
    const char *user = zframe_meta(zmsg_last(msg), "User-Id");
    char *copy = strdup(user ? user : "");
    zmsg_destroy(&msg);
    return copy;
}

/*  The engram-api domain admits any CURVE client, and its User-Id is the client's public key
 *  in Z85: over ipc and over tcp. */
static void test_api_domain_user_id_is_the_client_key(void **state)
{
    s_fixture_t *f = *state;
    char ipc[128], bound[256];
    snprintf(ipc, sizeof ipc, "ipc://%s/api.sock", f->dir);
    const char *endpoints[] = {ipc, "tcp://127.0.0.1:*"};
    for (size_t i = 0; i < 2; i++) {
        zsock_t *server = s_server(f, endpoints[i], NODE_ZAP_API, true, bound, sizeof bound);
        for (int k = 0; k < 2; k++) { /* two clients, two keys, each seen as its own */
            zcert_t *cert = zcert_new();
            assert_non_null(cert);
            zsock_t *client = s_client(f, cert, bound);
            char *user = s_exchange(client, server, S_PASS_MS);
            if (!user)
                fail_msg("a CURVE client on %s got nothing through", bound);
            assert_string_equal(user, zcert_public_txt(cert));
            assert_int_equal(strlen(user), 40);
            free(user);
            zsock_destroy(&client);
            zcert_destroy(&cert);
        }
        zsock_destroy(&server);
    }
}

/*  Writes cert's public certificate into dir as NAME.cert, whole (beside it, then renamed), as
 *  node/cluster does. */
static void s_admit(const char *dir, const char *name, zcert_t *cert)
{
    char path[256], tmp[256];
    snprintf(path, sizeof path, "%s/%s.cert", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    assert_int_equal(zcert_save_public(cert, tmp), 0);
    assert_int_equal(rename(tmp, path), 0);
}

/*  The engram-gossip domain admits a key iff its certificate is in the peers directory, which
 *  may appear after the handler started and gains certificates while it runs. */
static void test_gossip_domain_admits_only_directory_keys(void **state)
{
    s_fixture_t *f = *state;
    char bound[256];
    zsock_t *server = s_server(f, "tcp://127.0.0.1:*", NODE_ZAP_GOSSIP, true, bound, sizeof bound);
    zcert_t *member = zcert_new(), *stranger = zcert_new();
    assert_true(member && stranger);

    /* no directory yet: nobody */
    zsock_t *client = s_client(f, member, bound);
    char *user = s_exchange(client, server, S_BLOCK_MS);
    if (user)
        fail_msg("a key with no certificate anywhere got through as '%s'", user);
    zsock_destroy(&client);

    /* the directory with the member's certificate: the member, and only the member */
    assert_int_equal(zsys_dir_create("%s", f->peers), 0);
    s_admit(f->peers, "member", member);
    client = s_client(f, member, bound);
    user = s_exchange(client, server, S_PASS_MS);
    if (!user)
        fail_msg("an admitted member's key got nothing through");
    assert_string_equal(user, zcert_public_txt(member));
    free(user);
    zsock_destroy(&client);
    client = s_client(f, stranger, bound);
    user = s_exchange(client, server, S_BLOCK_MS);
    if (user)
        fail_msg("a key whose certificate is not in the directory got through as '%s'", user);
    zsock_destroy(&client);

    /* a certificate that appears while the handler runs admits its key from then on */
    s_admit(f->peers, "stranger", stranger);
    client = s_client(f, stranger, bound);
    user = s_exchange(client, server, S_PASS_MS);
    if (!user)
        fail_msg("a key admitted while the handler ran got nothing through");
    assert_string_equal(user, zcert_public_txt(stranger));
    free(user);
    zsock_destroy(&client);

    zcert_destroy(&member);
    zcert_destroy(&stranger);
    zsock_destroy(&server);
}

/*  A NULL-mechanism client never gets a message through to a CURVE server, on either domain;
 *  a NULL server on one of engram's domains is refused too (ZAP answers 400 for NULL), while a
 *  NULL socket without a domain (the cluster's introduction socket) is none of ZAP's business. */
static void test_null_mechanism_never_gets_through(void **state)
{
    s_fixture_t *f = *state;
    char ipc[128], bound[256];
    snprintf(ipc, sizeof ipc, "ipc://%s/null.sock", f->dir);
    const char *domains[] = {NODE_ZAP_API, NODE_ZAP_GOSSIP};
    for (size_t i = 0; i < 2; i++) {
        zsock_t *server = s_server(f, ipc, domains[i], true, bound, sizeof bound);
        zsock_t *client = s_client(f, NULL, bound);
        char *user = s_exchange(client, server, S_BLOCK_MS);
        if (user)
            fail_msg("a NULL client got through to a CURVE server on %s", domains[i]);
        zsock_destroy(&client);
        zsock_destroy(&server);

        server = s_server(f, ipc, domains[i], false, bound, sizeof bound);
        client = s_client(f, NULL, bound);
        user = s_exchange(client, server, S_BLOCK_MS);
        if (user)
            fail_msg("a NULL client got through to a NULL server on %s", domains[i]);
        zsock_destroy(&client);
        zsock_destroy(&server);
    }
    zsock_t *server = s_server(f, ipc, NULL, false, bound, sizeof bound);
    zsock_t *client = s_client(f, NULL, bound);
    char *user = s_exchange(client, server, S_PASS_MS);
    if (!user)
        fail_msg("a NULL socket without a ZAP domain stopped working under the handler");
    free(user);
    zsock_destroy(&client);
    zsock_destroy(&server);
}

/*  A CURVE server on a domain the handler does not know admits nobody. */
static void test_unknown_domain_is_refused(void **state)
{
    s_fixture_t *f = *state;
    char bound[256];
    zsock_t *server = s_server(f, "tcp://127.0.0.1:*", "global", true, bound, sizeof bound);
    zcert_t *cert = zcert_new();
    assert_non_null(cert);
    zsock_t *client = s_client(f, cert, bound);
    char *user = s_exchange(client, server, S_BLOCK_MS);
    if (user)
        fail_msg("a client got through on an unknown domain as '%s'", user);
    zsock_destroy(&client);
    zcert_destroy(&cert);
    zsock_destroy(&server);
}

/*  Sends a hand-made request of n frames to the handler and checks its answer: six frames,
 *  version 1.0, the request id echoed (or empty), the status, and the User-Id. */
static void s_zap_expect(zsock_t *req, const char *const *frames, const size_t *sizes, size_t n,
                         const char *status, const char *user)
{
    zmsg_t *msg = zmsg_new();
    for (size_t i = 0; i < n; i++)
        zmsg_addmem(msg, frames[i], sizes ? sizes[i] : strlen(frames[i]));
    assert_int_equal(zmsg_send(&msg, req), 0);
    zmsg_t *reply = zmsg_recv(req);
    assert_non_null(reply);
    assert_int_equal(zmsg_size(reply), 6);
    char *version = zmsg_popstr(reply), *id = zmsg_popstr(reply), *code = zmsg_popstr(reply);
    char *text = zmsg_popstr(reply), *user_id = zmsg_popstr(reply);
    assert_string_equal(version, "1.0");
    assert_string_equal(id, n >= 2 ? frames[1] : "");
    assert_string_equal(code, status);
    assert_true(strlen(text) > 0);
    assert_string_equal(user_id, user);
    zstr_free(&version);
    zstr_free(&id);
    zstr_free(&code);
    zstr_free(&text);
    zstr_free(&user_id);
    zmsg_destroy(&reply);
}

/*  Requests that are not well-formed ZAP 1.0 are each answered 400, so libzmq never waits and
 *  the handler keeps answering; a well-formed one is then still answered 200. */
static void test_malformed_requests_get_400(void **state)
{
    (void)state;
    zsock_t *req = zsock_new_req("inproc://zeromq.zap.01");
    assert_non_null(req);
    zsock_set_rcvtimeo(req, S_PASS_MS);
    uint8_t key[32];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    char key_txt[41];
    zmq_z85_encode(key_txt, key, 32);
    const char *curve[] = {"1.0", "7", NODE_ZAP_API, "127.0.0.1", "", "CURVE", (char *)key};
    const size_t curve_sizes[] = {3, 1, strlen(NODE_ZAP_API), 9, 0, 5, 32};

    s_zap_expect(req, curve, NULL, 1, "400", "");        /* one frame: no id */
    s_zap_expect(req, curve, curve_sizes, 3, "400", ""); /* too few frames */
    const char *old[] = {"0.9", "8", NODE_ZAP_API, "127.0.0.1", "", "CURVE", (char *)key};
    s_zap_expect(req, old, curve_sizes, 7, "400", ""); /* another version */
    const size_t short_key[] = {3, 1, strlen(NODE_ZAP_API), 9, 0, 5, 31};
    s_zap_expect(req, curve, short_key, 7, "400", ""); /* a key of 31 bytes */
    const char *null[] = {"1.0", "9", NODE_ZAP_API, "127.0.0.1", "", "NULL"};
    s_zap_expect(req, null, NULL, 6, "400", ""); /* the NULL mechanism */
    const char *plain[] = {"1.0", "10", NODE_ZAP_API, "127.0.0.1", "", "PLAIN", "u", "p"};
    s_zap_expect(req, plain, NULL, 8, "400", ""); /* the PLAIN mechanism */
    const char *many[] = {"1.0", "11", NODE_ZAP_API, "a", "", "CURVE", "x", "y", "z"};
    s_zap_expect(req, many, NULL, 9, "400", ""); /* too many frames */
    s_zap_expect(req, curve, curve_sizes, 7, "200", key_txt);
    zsock_destroy(&req);
}

/*  A process has one ZAP handler: a second one does not start. */
static void test_second_handler_refused(void **state)
{
    s_fixture_t *f = *state;
    zactor_t *second = node_zap_new(f->peers);
    assert_null(second);
}

int main(void)
{
    zsys_init();
    zsys_handler_set(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_api_domain_user_id_is_the_client_key, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_gossip_domain_admits_only_directory_keys, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_null_mechanism_never_gets_through, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_domain_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_requests_get_400, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_second_handler_refused, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
