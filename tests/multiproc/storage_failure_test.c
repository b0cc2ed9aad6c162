/*  A member whose store cannot write stays a member: real engramd processes, one of which is
 *  restarted on a read-only data directory (its data directory bind-mounted read-only onto
 *  itself, so that even root cannot write there: RocksDB opens read-only, store.h).
 *
 *    test_read_only_member   three nodes; node 0 (just restarted, so that it collects
 *                            garbage only 10 s later) writes and deletes in team:ro, every
 *                            node holds it; node 0 stops, node 2 comes back read-only, node 0
 *                            comes back (knowing nothing of what its peers hold). Then: node 2's
 * cluster status says "read-only"; it serves reads and refuses writes; nodes 0 and 1 never see
 * it dead for WATCH_MS (several suspicion timeouts: a passing suspicion, which a busy machine
 * gives and node 2 refutes, is counted, not failed) and see it alive after; node 0 learns
 * what node 2 holds and collects the
 *                            garbage of team:ro (its stable cut is not blocked by node 2);
 *                            nodes 0 and 1 still replicate; every node stops cleanly.
 *
 *  Before the fix (engramd sent nothing after a failed sync, node/api/server.c), node 2 went
 *  silent: its peers declared it dead within a few seconds and node 0 never learned what it
 *  held, so its garbage stayed.
 *
 *  Needs root (a bind mount); skipped otherwise. Every expectation is polled with a deadline.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include <cmocka.h>
#include <czmq.h>

#include "engram/engram.h"
#include "node_harness.h"

#define NODES           3
#define CALL_TIMEOUT_MS 10000
#define CONVERGE_MS     30000
/*  Well past SWIM's suspicion timeout (4 * log10(4) probe intervals of 1 s, about 2.4 s). */
#define WATCH_MS 10000
#define SCOPE    "team:ro"
#define USER     "alice"
#define AGENT    "agent-ro"

static node_harness_admin_t s_admin;
static node_harness_t *s_nodes[NODES];
static engram_t *s_conns[NODES], *s_admins[NODES];
static bool s_mounted;

static void s_expect(engram_t *e, int rc, int want, const char *what)
{
    if (rc != want)
        fail_msg("%s: %d (%s), expected %d (%s); node said: '%s'", what, rc, engram_strerror(rc),
                 want, engram_strerror(want), e ? engram_last_error(e) : "");
}

static engram_t *s_conn(int i)
{
    if (!s_conns[i])
        s_conns[i] = node_harness_connect(s_nodes[i], AGENT, USER, CALL_TIMEOUT_MS);
    assert_non_null(s_conns[i]);
    return s_conns[i];
}

static engram_cluster_t *s_status(int i)
{
    if (!s_admins[i])
        s_admins[i] = node_harness_admin_connect(s_nodes[i], CALL_TIMEOUT_MS);
    assert_non_null(s_admins[i]);
    engram_cluster_t *status = NULL;
    s_expect(s_admins[i], engram_cluster_status(s_admins[i], &status), 0, "cluster status");
    return status;
}

static void s_disconnect(int i)
{
    engram_destroy(&s_conns[i]);
    engram_destroy(&s_admins[i]);
}

/*  The state node `of` lists for node `who` into state. */
static void s_state(int of, int who, char state[16])
{
    engram_cluster_t *status = s_status(of);
    snprintf(state, 16, "unknown");
    for (size_t m = 0; m < status->nmembers; m++)
        if (status->members[m].id == node_harness_node_id(s_nodes[who]))
            snprintf(state, 16, "%s", status->members[m].state);
    engram_cluster_destroy(&status);
}

static bool s_all_alive(void *arg)
{
    (void)arg;
    for (int i = 0; i < NODES; i++)
        for (int j = 0; j < NODES; j++) {
            char state[16];
            s_state(i, j, state);
            if (strcmp(state, i == j ? "self" : "alive") != 0) {
                node_harness_because("node %d sees node %d as %s", i, j, state);
                return false;
            }
        }
    return true;
}

/*  Node 2 is dead (or left, or unknown) for node 0 or node 1; *suspected counts the times
 *  one of them sees it suspect (SWIM's passing doubt on a busy machine, refuted at once). */
static bool s_two_gone(int *suspected)
{
    for (int i = 0; i < 2; i++) {
        char state[16];
        s_state(i, 2, state);
        if (strcmp(state, "suspect") == 0) {
            (*suspected)++;
        } else if (strcmp(state, "alive") != 0) {
            node_harness_because("node %d sees the read-only node 2 as %s", i, state);
            return true;
        }
    }
    return false;
}

/*  The scope's vector and garbage on node i ("" and 0 if it does not hold it). */
static void s_scope(int i, char *vector, size_t size, uint64_t *garbage)
{
    engram_cluster_t *status = s_status(i);
    snprintf(vector, size, "%s", "");
    *garbage = 0;
    for (size_t k = 0; k < status->nscopes; k++)
        if (strcmp(status->scopes[k].scope, SCOPE) == 0) {
            snprintf(vector, size, "%s", status->scopes[k].vector);
            *garbage = status->scopes[k].garbage;
        }
    engram_cluster_destroy(&status);
}

static bool s_vectors_equal(void *arg)
{
    (void)arg;
    char first[1024], other[1024];
    uint64_t garbage;
    s_scope(0, first, sizeof first, &garbage);
    for (int i = 1; i < NODES; i++) {
        s_scope(i, other, sizeof other, &garbage);
        if (!first[0] || strcmp(first, other) != 0) {
            node_harness_because("node 0 holds [%s], node %d [%s]", first, i, other);
            return false;
        }
    }
    return true;
}

static bool s_collected(void *arg)
{
    int i = *(int *)arg;
    char vector[1024];
    uint64_t garbage;
    s_scope(i, vector, sizeof vector, &garbage);
    node_harness_because("node %d holds %" PRIu64 " garbage op records of " SCOPE, i, garbage);
    return vector[0] && garbage == 0;
}

/*  Whether node i serves key with value. */
static bool s_serves(int i, const char *key, const char *value)
{
    engram_result_t *r = NULL;
    int rc = engram_get(s_conn(i), SCOPE, key, NULL, 0, &r);
    bool ok = rc == 0 && r->nitems > 0 && r->items[0].len == strlen(value) &&
              memcmp(r->items[0].value, value, r->items[0].len) == 0;
    engram_result_destroy(&r);
    return ok;
}

typedef struct {
    int node;
    const char *key, *value;
} s_read_t;

static bool s_served(void *arg)
{
    s_read_t *r = arg;
    node_harness_because("node %d does not serve %s", r->node, r->key);
    return s_serves(r->node, r->key, r->value);
}

static void s_put(int i, const char *key, const char *value)
{
    engram_result_t *r = NULL;
    s_expect(s_conn(i), engram_put(s_conn(i), SCOPE, key, value, strlen(value), NULL, 0, &r), 0,
             "put");
    engram_result_destroy(&r);
}

static void s_restart(int i)
{
    s_disconnect(i);
    assert_int_equal(node_harness_stop(s_nodes[i]), 0);
    if (node_harness_start(s_nodes[i]) != 0)
        fail_msg("node %d did not restart", i);
}

static void s_unmount(void)
{
    if (s_mounted && umount2(node_harness_data_dir(s_nodes[2]), MNT_DETACH) == 0)
        s_mounted = false;
}

static int s_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NODES; i++) {
        s_disconnect(i);
        if (i == 2 && s_nodes[2]) {
            node_harness_kill(s_nodes[2]);
            s_unmount();
        }
        node_harness_destroy(&s_nodes[i]);
    }
    return 0;
}

static void test_read_only_member(void **state)
{
    (void)state;
    static const char *const extra[] = {"--gossip-interval-ms", "100", NULL};
    assert_int_equal(node_harness_admin_init(&s_admin), 0);
    for (int i = 0; i < NODES; i++) {
        s_nodes[i] = node_harness_new(NULL);
        assert_non_null(s_nodes[i]);
        assert_int_equal(node_harness_admit(s_nodes[i], &s_admin), 0);
        assert_int_equal(node_harness_grant(s_nodes[i], AGENT, USER), 0);
        const char *join = i ? node_harness_gossip_endpoint(s_nodes[0]) : NULL;
        if (node_harness_start_member(s_nodes[i], join, extra) != 0)
            fail_msg("node %d did not start", i);
    }
    if (!node_harness_poll(CONVERGE_MS, s_all_alive, NULL))
        fail_msg("cluster up: %s", node_harness_why());
    /* node 0 restarts now, so that its next collection is GC_INTERVAL_MS (10 s) away */
    s_restart(0);
    if (!node_harness_poll(CONVERGE_MS, s_all_alive, NULL))
        fail_msg("node 0 back: %s", node_harness_why());

    /* garbage: a put whose entry a delete removes; every node holds both */
    s_put(0, "gone", "soon");
    s_put(0, "kept", "here");
    engram_result_t *r = NULL;
    s_expect(s_conn(0), engram_delete(s_conn(0), SCOPE, "gone", &r), 0, "delete");
    engram_result_destroy(&r);
    if (!node_harness_poll(CONVERGE_MS, s_vectors_equal, NULL))
        fail_msg("replicated: %s", node_harness_why());
    engram_cluster_t *status = s_status(2);
    assert_string_equal(status->storage, "ok");
    engram_cluster_destroy(&status);
    char vector[1024];
    uint64_t garbage;
    s_scope(0, vector, sizeof vector, &garbage);
    assert_true(garbage > 0); /* not collected yet */

    /* node 0 stops; node 2 comes back on a read-only data directory, then node 0, which
       knows nothing of what its peers hold until they tell it */
    s_disconnect(0);
    assert_int_equal(node_harness_stop(s_nodes[0]), 0);
    s_disconnect(2);
    assert_int_equal(node_harness_stop(s_nodes[2]), 0);
    const char *dir = node_harness_data_dir(s_nodes[2]);
    if (mount(dir, dir, NULL, MS_BIND, NULL) != 0) {
        if (errno == EPERM)
            skip(); /* needs root */
        fail_msg("bind mount of %s: %s", dir, strerror(errno));
    }
    s_mounted = true;
    if (mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0)
        fail_msg("read-only remount of %s: %s", dir, strerror(errno));
    if (node_harness_start(s_nodes[2]) != 0)
        fail_msg("node 2 did not start on a read-only data directory");
    if (node_harness_start(s_nodes[0]) != 0)
        fail_msg("node 0 did not restart");
    s_scope(0, vector, sizeof vector, &garbage);
    assert_true(garbage > 0);

    status = s_status(2);
    assert_string_equal(status->storage, "read-only");
    engram_cluster_destroy(&status);
    assert_true(s_serves(2, "kept", "here"));
    engram_result_t *w = NULL;
    int rc = engram_put(s_conn(2), SCOPE, "refused", "x", 1, NULL, 0, &w);
    engram_result_destroy(&w);
    assert_int_not_equal(rc, 0);

    /* it stays alive for its peers, well past the suspicion timeout */
    if (!node_harness_poll(CONVERGE_MS, s_all_alive, NULL))
        fail_msg("all alive after the restarts: %s", node_harness_why());
    int64_t until = node_harness_now_ms() + WATCH_MS;
    int suspected = 0;
    while (node_harness_now_ms() < until) {
        if (s_two_gone(&suspected))
            fail_msg("%s", node_harness_why());
        zclock_sleep(200);
    }
    printf("read-only member: seen suspect %d times in %d ms, never dead\n", suspected, WATCH_MS);
    if (!node_harness_poll(CONVERGE_MS, s_all_alive, NULL))
        fail_msg("all alive after the watch: %s", node_harness_why());
    /* node 0 learns what node 2 holds: its stable cut, and so its collection, go on */
    int zero = 0;
    if (!node_harness_poll(CONVERGE_MS, s_collected, &zero))
        fail_msg("garbage collected: %s", node_harness_why());
    /* the others still replicate; node 2 still serves what it held */
    s_put(0, "after", "v");
    s_read_t after = {1, "after", "v"};
    if (!node_harness_poll(CONVERGE_MS, s_served, &after))
        fail_msg("%s", node_harness_why());
    assert_true(s_serves(2, "kept", "here"));
    assert_false(s_serves(2, "after", "v"));

    for (int i = 0; i < NODES; i++) {
        s_disconnect(i);
        if (node_harness_stop(s_nodes[i]) != 0)
            fail_msg("node %d did not stop cleanly", i);
    }
    s_unmount();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_read_only_member, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
