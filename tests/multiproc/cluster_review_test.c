/*  The cluster transport against an unauthenticated party: what anyone who can reach a
 *  member's introduction port (gossip port + 1, no CURVE) can and cannot do to the cluster.
 *
 *  Every test makes a cluster of two real engramd processes (node_harness), A the seed and B
 *  joined through it, and plays the outsider with a raw ZeroMQ DEALER on A's introduction
 *  port. The outsider holds no secret: it may hold a member's card, which is public (every
 *  member shows it to every peer it meets).
 *
 *    test_replayed_card_redirects_nothing  an introduction with B's card, a dead endpoint and
 *                                          the highest incarnation does not change A's record
 *                                          of B: A still lists B at its own endpoint and
 *                                          incarnation, and A's writes still reach B
 *    test_noise_is_logged_sparingly        a thousand junk introductions are each counted
 *                                          (bad_messages) but logged only a few times, and a
 *                                          refusal carries no card
 *    test_peer_cert_written_once           A writes B's certificate into DATA/peers (where
 *                                          the ZAP handler reads it) once: B's restart, a new
 *                                          incarnation, leaves the file as it was
 *
 *  Both stop every node with SIGTERM, exit status 0 required (no leak under ASan). Cluster
 *  status takes the admin's connection (node_harness_admin_connect).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <czmq.h>
#include <sodium.h>

#include "engram/engram.h"
#include "node/trust/admission.h"
#include "node_harness.h"
#include "proto/cluster.pb-c.h"

#define CALL_TIMEOUT_MS 10000
#define CONVERGE_MS     20000
#define GOSSIP_INTERVAL "100"
#define USER            "alice"
#define AGENT           "agent-r"
#define SCOPE           "team:review"
#define NOISE           1000
/*  engramd logs a refused introduction at most once a second: the noise takes less than a
 *  few seconds, so a handful of lines at most. */
#define NOISE_LOG_MAX 20

static node_harness_admin_t s_admin;
static node_harness_t *s_a, *s_b;
static engram_t *s_ea, *s_eb; /* the test's agent on A and B */
static engram_t *s_aa, *s_ab; /* the admin's connections to A and B */

static void s_expect(engram_t *e, int rc, int want, const char *what)
{
    if (rc != want)
        fail_msg("%s: %d (%s), expected %d (%s); node said: '%s'", what, rc, engram_strerror(rc),
                 want, engram_strerror(want), e ? engram_last_error(e) : "");
}

static engram_cluster_t *s_status(engram_t *e)
{
    engram_cluster_t *status = NULL;
    s_expect(e, engram_cluster_status(e, &status), 0, "cluster status");
    return status;
}

/*  The member record node e has of id, copied; false if it does not know it. */
static bool s_member(engram_t *e, uint64_t id, engram_member_t *out, char *endpoint, size_t size)
{
    engram_cluster_t *status = s_status(e);
    bool known = false;
    for (size_t m = 0; m < status->nmembers; m++)
        if (status->members[m].id == id) {
            *out = status->members[m];
            snprintf(endpoint, size, "%s", status->members[m].endpoint);
            out->endpoint = endpoint;
            known = true;
        }
    engram_cluster_destroy(&status);
    return known;
}

static bool s_alive_both_ways(void *arg)
{
    (void)arg;
    engram_member_t m;
    char endpoint[128];
    if (!s_member(s_aa, node_harness_node_id(s_b), &m, endpoint, sizeof endpoint) ||
        strcmp(m.state, "alive") != 0) {
        node_harness_because("A does not see B alive");
        return false;
    }
    if (!s_member(s_ab, node_harness_node_id(s_a), &m, endpoint, sizeof endpoint) ||
        strcmp(m.state, "alive") != 0) {
        node_harness_because("B does not see A alive");
        return false;
    }
    return true;
}

static int s_up(void **state)
{
    (void)state;
    static const char *const extra[] = {"--gossip-interval-ms", GOSSIP_INTERVAL, NULL};
    assert_int_equal(node_harness_admin_init(&s_admin), 0);
    s_a = node_harness_new(NULL);
    s_b = node_harness_new(NULL);
    assert_true(s_a && s_b);
    assert_int_equal(node_harness_admit(s_a, &s_admin), 0);
    assert_int_equal(node_harness_admit(s_b, &s_admin), 0);
    assert_int_equal(node_harness_start_member(s_a, NULL, extra), 0);
    assert_int_equal(node_harness_start_member(s_b, node_harness_gossip_endpoint(s_a), extra), 0);
    s_ea = node_harness_connect(s_a, AGENT, USER, CALL_TIMEOUT_MS);
    s_eb = node_harness_connect(s_b, AGENT, USER, CALL_TIMEOUT_MS);
    s_aa = node_harness_admin_connect(s_a, CALL_TIMEOUT_MS);
    s_ab = node_harness_admin_connect(s_b, CALL_TIMEOUT_MS);
    assert_true(s_ea && s_eb && s_aa && s_ab);
    if (!node_harness_poll(CONVERGE_MS, s_alive_both_ways, NULL))
        fail_msg("the cluster did not come up: %s", node_harness_why());
    return 0;
}

/*  Closes every connection (before the nodes stop). */
static void s_disconnect(void)
{
    engram_destroy(&s_ea);
    engram_destroy(&s_eb);
    engram_destroy(&s_aa);
    engram_destroy(&s_ab);
}

static int s_down(void **state)
{
    (void)state;
    s_disconnect();
    node_harness_destroy(&s_a);
    node_harness_destroy(&s_b);
    return 0;
}

static void s_stop_all(void)
{
    s_disconnect();
    if (node_harness_stop(s_a) != 0)
        fail_msg("A did not stop cleanly");
    if (node_harness_stop(s_b) != 0)
        fail_msg("B did not stop cleanly");
}

/*  A DEALER on A's introduction port. */
static zsock_t *s_intro_socket(void)
{
    const char *gossip = node_harness_gossip_endpoint(s_a);
    const char *colon = strrchr(gossip, ':');
    zsock_t *intro = zsock_new(ZMQ_DEALER);
    assert_non_null(intro);
    zsock_set_linger(intro, 0);
    zsock_set_rcvtimeo(intro, CALL_TIMEOUT_MS);
    zsock_set_sndhwm(intro, NOISE * 2);
    assert_int_equal(
        zsock_connect(intro, "%.*s:%d", (int)(colon - gossip), gossip, atoi(colon + 1) + 1), 0);
    return intro;
}

static void s_send_intro(zsock_t *intro, const uint8_t *card, size_t card_len, const char *endpoint,
                         uint64_t incarnation)
{
    Engram__Introduction hello = ENGRAM__INTRODUCTION__INIT;
    hello.card = (ProtobufCBinaryData){card_len, (uint8_t *)card};
    hello.endpoint = (char *)endpoint;
    hello.incarnation = incarnation;
    zframe_t *frame = zframe_new(NULL, engram__introduction__get_packed_size(&hello));
    assert_non_null(frame);
    engram__introduction__pack(&hello, zframe_data(frame));
    assert_int_equal(zframe_send(&frame, intro, 0), 0);
}

static Engram__Introduction *s_answer(zsock_t *intro)
{
    zframe_t *answer = zframe_recv(intro);
    if (!answer)
        fail_msg("A did not answer an introduction within %d ms", CALL_TIMEOUT_MS);
    Engram__Introduction *in =
        engram__introduction__unpack(NULL, zframe_size(answer), zframe_data(answer));
    zframe_destroy(&answer);
    assert_non_null(in);
    return in;
}

static bool s_b_has(void *arg)
{
    const char *key = arg;
    engram_result_t *r = NULL;
    int rc = engram_get(s_eb, SCOPE, key, NULL, 0, &r);
    bool found = rc == 0 && r->nitems > 0;
    engram_result_destroy(&r);
    node_harness_because("B does not have %s %s (%s)", SCOPE, key, engram_strerror(rc));
    return found;
}

/*  The outsider replays B's card on A's introduction port, claiming B now listens on a dead
 *  port with the highest incarnation there is. Were A to take that record, it would send B
 *  nothing any more, and B could never refute it (no incarnation is higher). */
static void test_replayed_card_redirects_nothing(void **state)
{
    (void)state;
    uint64_t b = node_harness_node_id(s_b);
    engram_member_t before;
    char endpoint_before[128];
    assert_true(s_member(s_aa, b, &before, endpoint_before, sizeof endpoint_before));
    assert_string_equal(endpoint_before, node_harness_gossip_endpoint(s_b));

    char path[4096];
    snprintf(path, sizeof path, "%s/admission", node_harness_dir(s_b));
    uint8_t *card;
    size_t card_len;
    assert_int_equal(node_admission_read_file(path, 4096, &card, &card_len), 0);
    int dead = node_harness_free_ports(2);
    assert_true(dead > 0);
    char evil[64];
    snprintf(evil, sizeof evil, "tcp://127.0.0.1:%d", dead);
    zsock_t *intro = s_intro_socket();
    s_send_intro(intro, card, card_len, evil, UINT64_MAX);
    Engram__Introduction *answer = s_answer(intro);
    engram__introduction__free_unpacked(answer, NULL);
    zsock_destroy(&intro);
    free(card);

    engram_member_t after;
    char endpoint_after[128];
    assert_true(s_member(s_aa, b, &after, endpoint_after, sizeof endpoint_after));
    if (strcmp(endpoint_after, endpoint_before) != 0 || after.incarnation == UINT64_MAX)
        fail_msg("an unauthenticated introduction moved B on A: %s incarnation %" PRIu64
                 " -> %s incarnation %" PRIu64,
                 endpoint_before, before.incarnation, endpoint_after, after.incarnation);

    /* and A still reaches B: a write on A arrives (B pulls, A answers through its link) */
    engram_result_t *r = NULL;
    s_expect(s_ea, engram_put(s_ea, SCOPE, "after-replay", "v", 1, NULL, 0, &r), 0, "put on A");
    engram_result_destroy(&r);
    if (!node_harness_poll(CONVERGE_MS, s_b_has, (void *)"after-replay"))
        fail_msg("A's write after the replay: %s", node_harness_why());
    s_stop_all();
}

/*  Lines of A's log that contain needle. */
static size_t s_log_count(const char *needle)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/engramd.log", node_harness_dir(s_a));
    uint8_t *log;
    size_t len;
    assert_int_equal(node_admission_read_file(path, 256 * 1024 * 1024, &log, &len), 0);
    log = realloc(log, len + 1);
    assert_non_null(log);
    log[len] = 0;
    size_t count = 0;
    for (const char *at = (const char *)log; (at = strstr(at, needle)); at += strlen(needle))
        count++;
    free(log);
    return count;
}

static bool s_counted(void *arg)
{
    uint64_t want = *(uint64_t *)arg;
    engram_cluster_t *status = s_status(s_aa);
    uint64_t bad = status->bad_messages;
    engram_cluster_destroy(&status);
    node_harness_because("A counted %" PRIu64 " bad messages, expected %" PRIu64, bad, want);
    return bad >= want;
}

static void test_noise_is_logged_sparingly(void **state)
{
    (void)state;
    engram_cluster_t *status = s_status(s_aa);
    uint64_t want = status->bad_messages + NOISE;
    engram_cluster_destroy(&status);

    zsock_t *intro = s_intro_socket();
    static const uint8_t junk[] = {0xff, 0x01, 0x02, 0x03};
    for (int i = 0; i < NOISE; i++)
        assert_int_equal(zsock_send(intro, "b", junk, sizeof junk), 0);
    for (int i = 0; i < NOISE; i++) {
        Engram__Introduction *answer = s_answer(intro);
        if (!answer->error[0])
            fail_msg("junk was answered without an error");
        if (answer->card.len)
            fail_msg("a refusal carries A's card (%zu bytes)", answer->card.len);
        engram__introduction__free_unpacked(answer, NULL);
    }
    zsock_destroy(&intro);
    if (!node_harness_poll(CONVERGE_MS, s_counted, &want))
        fail_msg("the noise was not counted: %s", node_harness_why());
    size_t lines = s_log_count("introduction refused");
    if (lines == 0 || lines > NOISE_LOG_MAX)
        fail_msg("%d junk introductions made %zu log lines (expected 1 to %d)", NOISE, lines,
                 NOISE_LOG_MAX);
    s_stop_all();
}

/*  A's DATA/peers certificate of B. */
static struct stat s_b_cert(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/peers/%016" PRIx64 ".cert", node_harness_data_dir(s_a),
             node_harness_node_id(s_b));
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("A has no certificate of B at %s", path);
    return st;
}

typedef struct {
    uint64_t id;
    uint64_t above;
} s_newer_t;

static bool s_newer_alive(void *arg)
{
    const s_newer_t *want = arg;
    engram_member_t m;
    char endpoint[128];
    bool known = s_member(s_aa, want->id, &m, endpoint, sizeof endpoint);
    node_harness_because("A sees B %s at incarnation %" PRIu64 ", expected alive above %" PRIu64,
                         known ? m.state : "nowhere", known ? m.incarnation : 0, want->above);
    return known && strcmp(m.state, "alive") == 0 && m.incarnation > want->above;
}

static void test_peer_cert_written_once(void **state)
{
    (void)state;
    struct stat before = s_b_cert();
    engram_member_t m;
    char endpoint[128];
    s_newer_t want = {node_harness_node_id(s_b), 0};
    assert_true(s_member(s_aa, want.id, &m, endpoint, sizeof endpoint));
    want.above = m.incarnation;
    engram_destroy(&s_eb);
    engram_destroy(&s_ab);
    if (node_harness_stop(s_b) != 0)
        fail_msg("B did not stop cleanly");
    zclock_sleep(20); /* a rewrite would get another mtime */
    if (node_harness_start(s_b) != 0)
        fail_msg("B did not restart");
    s_eb = node_harness_connect(s_b, AGENT, USER, CALL_TIMEOUT_MS);
    s_ab = node_harness_admin_connect(s_b, CALL_TIMEOUT_MS);
    assert_true(s_eb && s_ab);
    if (!node_harness_poll(CONVERGE_MS, s_newer_alive, &want))
        fail_msg("B's restart: %s", node_harness_why());
    struct stat after = s_b_cert();
    if (after.st_ino != before.st_ino || after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
        after.st_mtim.tv_nsec != before.st_mtim.tv_nsec)
        fail_msg("A rewrote B's certificate in DATA/peers on a change of B's record");
    s_stop_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replayed_card_redirects_nothing, s_up, s_down),
        cmocka_unit_test_setup_teardown(test_noise_is_logged_sparingly, s_up, s_down),
        cmocka_unit_test_setup_teardown(test_peer_cert_written_once, s_up, s_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
