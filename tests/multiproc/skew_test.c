/*  Causal time across real nodes whose clocks disagree: one engramd runs under libfaketime
 *  with its wall clock ahead, and what the others do after reading its writes must still be
 *  stamped after them (DESIGN.md section 3: every remote stamp is observed), while a stamp too
 *  far ahead is refused and counted, and taken once the clocks allow it.
 *
 *    test_effect_follows_cause_under_skew  node A runs 30 s ahead. A appends "question" to a
 *                                          log and writes v1 to a register; node B reads both,
 *                                          then appends "answer" and writes v2. On both nodes
 *                                          the log lists question before answer, v2 wins the
 *                                          register (without observation B's stamps are 30 s
 *                                          older, and A's writes win on both nodes)
 *    test_stamp_past_drift_is_refused      node A runs 4 s ahead, node B allows 1 s of drift:
 *                                          B refuses A's write and counts it (clock_refusals),
 *                                          keeps serving, and holds the write once its own
 *                                          clock is within the drift of the stamp: late, not
 *                                          lost
 *
 *  Skipped (77) when libfaketime is not installed.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engram/engram.h"
#include "node_harness.h"

#define FAKETIME_LIB "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
#define CALL_MS      5000
#define CONVERGE_MS  30000
#define AGENT        "skewed"
#define USER         "tester"
#define SCOPE        "team:skew"

static node_harness_admin_t s_admin;
static node_harness_t *s_nodes[2];
static engram_t *s_conns[2];

static int s_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        engram_destroy(&s_conns[i]);
        node_harness_destroy(&s_nodes[i]);
    }
    return 0;
}

/*  Starts node i as a member (joining node 0 unless it is node 0), with its clock `offset`
 *  ahead ("+30s"; NULL: the real clock) and extra flags. */
static void s_start(int i, const char *offset, const char *const *extra)
{
    s_nodes[i] = node_harness_new(NULL);
    assert_non_null(s_nodes[i]);
    assert_int_equal(node_harness_admit(s_nodes[i], &s_admin), 0);
    assert_int_equal(node_harness_grant(s_nodes[i], AGENT, USER), 0);
    if (offset) { /* the child inherits the environment at its fork */
        setenv("LD_PRELOAD", FAKETIME_LIB, 1);
        setenv("FAKETIME", offset, 1);
        setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
        setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
    }
    int rc = node_harness_start_member(s_nodes[i],
                                       i ? node_harness_gossip_endpoint(s_nodes[0]) : NULL, extra);
    unsetenv("LD_PRELOAD");
    unsetenv("FAKETIME");
    if (rc != 0)
        fail_msg("node %d did not start", i);
    s_conns[i] = node_harness_connect(s_nodes[i], AGENT, USER, CALL_MS);
    assert_non_null(s_conns[i]);
}

static void s_cluster(const char *offset_a, const char *const *extra_b)
{
    static const char *const fast[] = {"--gossip-interval-ms", "50", NULL};
    assert_int_equal(node_harness_admin_init(&s_admin), 0);
    s_start(0, offset_a, fast);
    s_start(1, NULL, extra_b ? extra_b : fast);
}

/*  Whether node i's log `key` holds an entry whose text is `text`. */
typedef struct {
    int node;
    const char *key;
    const char *text;
} s_holds_t;

static bool s_log_holds(void *arg)
{
    const s_holds_t *h = arg;
    engram_result_t *result = NULL;
    int rc = engram_log_range(s_conns[h->node], SCOPE, h->key, &result);
    bool found = false;
    for (size_t i = 0; rc == 0 && i < result->nitems; i++)
        found |= strcmp((const char *)result->items[i].value, h->text) == 0;
    engram_result_destroy(&result);
    if (!found)
        node_harness_because("node %d's log %s lacks '%s' (rc %d)", h->node, h->key, h->text, rc);
    return found;
}

static bool s_reg_is(void *arg)
{
    const s_holds_t *h = arg;
    engram_result_t *result = NULL;
    int rc = engram_get(s_conns[h->node], SCOPE, h->key, NULL, 0, &result);
    bool is =
        rc == 0 && result->nitems && strcmp((const char *)result->items[0].value, h->text) == 0;
    if (!is)
        node_harness_because("node %d's register %s: rc %d, winner '%s'", h->node, h->key, rc,
                             rc == 0 && result->nitems ? (const char *)result->items[0].value : "");
    engram_result_destroy(&result);
    return is;
}

/*  Node i's stats, read with the admin's key. */
static int s_stats(int i, engram_stats_t *stats)
{
    engram_t *admin = node_harness_admin_connect(s_nodes[i], CALL_MS);
    int rc = admin ? engram_stats(admin, stats) : ENGRAM_EUNAVAILABLE;
    engram_destroy(&admin);
    return rc;
}

static void s_eventually(bool (*cond)(void *), void *arg)
{
    if (!node_harness_poll(CONVERGE_MS, cond, arg))
        fail_msg("not within %d ms: %s", CONVERGE_MS, node_harness_why());
}

static void s_append(int node, const char *key, const char *text)
{
    engram_result_t *result = NULL;
    assert_int_equal(engram_log_append(s_conns[node], SCOPE, key, text, strlen(text), &result), 0);
    engram_result_destroy(&result);
}

static void s_put(int node, const char *key, const char *value)
{
    engram_result_t *result = NULL;
    assert_int_equal(engram_put(s_conns[node], SCOPE, key, value, strlen(value), NULL, 0, &result),
                     0);
    engram_result_destroy(&result);
}

static void test_effect_follows_cause_under_skew(void **state)
{
    (void)state;
    s_cluster("+30s", NULL);
    s_append(0, "thread", "question");
    /* A stamped it 30 s ahead (libfaketime took): without that this test would prove nothing */
    engram_stats_t skewed;
    assert_int_equal(s_stats(0, &skewed), 0);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    int64_t ahead_ms = (int64_t)(skewed.hlc >> 16) - (wall.tv_sec * 1000 + wall.tv_nsec / 1000000);
    if (ahead_ms < 25000)
        fail_msg("node 0's clock is %" PRId64 " ms ahead, not 30 s: libfaketime did not take",
                 ahead_ms);
    s_put(0, "answer", "v1");
    /* B reads what A wrote (it arrives by gossip), then acts on it */
    s_eventually(s_log_holds, &(s_holds_t){1, "thread", "question"});
    s_eventually(s_reg_is, &(s_holds_t){1, "answer", "v1"});
    s_append(1, "thread", "answer");
    s_put(1, "answer", "v2");
    for (int node = 0; node < 2; node++) {
        s_eventually(s_log_holds, &(s_holds_t){node, "thread", "answer"});
        engram_result_t *result = NULL;
        assert_int_equal(engram_log_range(s_conns[node], SCOPE, "thread", &result), 0);
        assert_int_equal(result->nitems, 2);
        if (strcmp((const char *)result->items[0].value, "question") != 0)
            fail_msg("node %d lists '%s' (hlc %" PRIu64 ") before '%s' (hlc %" PRIu64 ")", node,
                     (const char *)result->items[0].value, result->items[0].hlc,
                     (const char *)result->items[1].value, result->items[1].hlc);
        assert_true(result->items[0].hlc < result->items[1].hlc);
        engram_result_destroy(&result);
        /* the later write wins everywhere: no sibling, v2 */
        s_eventually(s_reg_is, &(s_holds_t){node, "answer", "v2"});
        assert_int_equal(engram_get(s_conns[node], SCOPE, "answer", NULL, 0, &result), 0);
        assert_int_equal(result->nitems, 1);
        engram_result_destroy(&result);
    }
    /* nothing was refused: 30 s is within the default drift */
    engram_stats_t stats;
    assert_int_equal(s_stats(1, &stats), 0);
    assert_int_equal(stats.clock_refusals, 0);
}

static bool s_refused(void *arg)
{
    (void)arg;
    engram_stats_t stats = {0};
    int rc = s_stats(1, &stats);
    if (rc != 0 || stats.clock_refusals == 0)
        node_harness_because("node 1: stats rc %d, clock_refusals %" PRIu64, rc,
                             stats.clock_refusals);
    return rc == 0 && stats.clock_refusals > 0;
}

static void test_stamp_past_drift_is_refused(void **state)
{
    (void)state;
    static const char *const strict[] = {"--gossip-interval-ms", "50", "--max-clock-drift-ms",
                                         "1000", NULL};
    s_cluster("+4s", strict);
    int64_t written = node_harness_now_ms();
    s_append(0, "thread", "early");
    s_eventually(s_refused, NULL);
    /* refused, not lost: B serves meanwhile, and holds the entry once its clock is near */
    engram_result_t *result = NULL;
    int rc = engram_log_range(s_conns[1], SCOPE, "thread", &result);
    assert_true(rc == 0 || rc == ENGRAM_ENOTFOUND);
    bool early = rc == 0 && result->nitems > 0;
    engram_result_destroy(&result);
    if (early && node_harness_now_ms() - written < 2000)
        fail_msg("node 1 took a stamp 4 s ahead at once, with 1 s of drift allowed");
    s_eventually(s_log_holds, &(s_holds_t){1, "thread", "early"});
    assert_true(node_harness_now_ms() - written >= 2000);
}

int main(void)
{
    if (access(FAKETIME_LIB, R_OK) != 0) {
        fprintf(stderr, "skew_test: %s is missing (Debian package libfaketime): skipped\n",
                FAKETIME_LIB);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_effect_follows_cause_under_skew, s_teardown),
        cmocka_unit_test_teardown(test_stamp_past_drift_is_refused, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
