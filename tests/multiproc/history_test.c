/*  History that is the same on every node, and reads as of a past time, end to end: a
 *  three-node cluster of real engramd processes (A, B, C; gossip every 50 ms), driven through
 *  libengram and the engram CLI. The tests share the cluster and use scopes of their own.
 *
 *    test_same_history_everywhere  a memory written on A by the researcher (with metadata),
 *                                  updated on B by the writer (without: the metadata stays),
 *                                  deleted on A: A, B and C show the same three steps, each
 *                                  with its author, user, dot and stamp, the puts with their
 *                                  value and metadata; the CLI prints them with a readable
 *                                  time, author and user
 *    test_as_of                    get --as-of (libengram and CLI) on C: before the first
 *                                  write nothing, between the writes the first value, after
 *                                  the update the second, after the delete nothing again
 *    test_node_away                C is stopped while a memory is written and overwritten on
 *                                  A and B; once back and caught up, C shows both steps (the
 *                                  first value was gone from every node's state before C
 *                                  heard of it) and reads it as of the time between them
 *    test_as_of_within_rights      a version written by an agent the reader's user may not
 *                                  read is neither shown in history nor returned as of any
 *                                  time; the reader's own later version is
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_keys.h"
#include "engram/engram.h"
#include "node_harness.h"

#define NODES   3
#define CALL_MS 20000
#define WAIT_MS 20000
#define USER    "alice"

enum { A = 0, B = 1, C = 2 };

static node_harness_admin_t s_admin;
static node_harness_t *s_node[NODES];

static int s_setup(void **state)
{
    (void)state;
    if (!agent_keys_home() || node_harness_admin_init(&s_admin) != 0)
        return -1;
    static const char *const extra[] = {"--gossip-interval-ms", "50", NULL};
    for (int i = 0; i < NODES; i++) {
        s_node[i] = node_harness_new(NULL);
        if (!s_node[i] || node_harness_admit(s_node[i], &s_admin) != 0)
            return -1;
        const char *join = i ? node_harness_gossip_endpoint(s_node[0]) : NULL;
        if (node_harness_start_member(s_node[i], join, extra) != 0)
            return -1;
    }
    /* Every agent granted on every node, so that each node knows whom every value's author
     * acts for without waiting for the grants to spread (a value whose author a node does not
     * know to act for the reader's user is hidden from that reader there). */
    static const char *const pairs[][2] = {
        {"researcher", USER}, {"writer", USER}, {"editor", USER}, {"stranger", "bob"}};
    for (int i = 0; i < NODES; i++)
        for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++)
            if (node_harness_grant(s_node[i], pairs[p][0], pairs[p][1]) != 0)
                return -1;
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NODES; i++)
        node_harness_destroy(&s_node[i]);
    return 0;
}

static void s_expect(engram_t *e, int rc, int want, const char *what)
{
    if (rc != want)
        fail_msg("%s: %d (%s), expected %d (%s); node said: '%s'", what, rc, engram_strerror(rc),
                 want, engram_strerror(want), e ? engram_last_error(e) : "");
}

#define EXPECT_RC(e, want, call) s_expect((e), (call), (want), #call)

static engram_t *s_conn(int i, const char *agent, const char *user)
{
    engram_t *e = node_harness_connect(s_node[i], agent, user, CALL_MS);
    assert_non_null(e);
    return e;
}

static uint64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*  The wall-clock time between two writes, with room on both sides. */
static uint64_t s_pause(void)
{
    usleep(100 * 1000);
    uint64_t mid = s_wall_ms();
    usleep(100 * 1000);
    return mid;
}

/*  Puts value (meta may be NULL) and returns the causal token (caller frees). */
static char *s_put(engram_t *e, const char *scope, const char *key, const char *value,
                   const char *meta)
{
    engram_result_t *r = NULL;
    EXPECT_RC(e, 0, engram_put(e, scope, key, value, strlen(value), meta, 0, &r));
    char *token = strdup(r->token);
    engram_result_destroy(&r);
    return token;
}

static char *s_delete(engram_t *e, const char *scope, const char *key)
{
    engram_result_t *r = NULL;
    EXPECT_RC(e, 0, engram_delete(e, scope, key, &r));
    char *token = strdup(r->token);
    engram_result_destroy(&r);
    return token;
}

/*  Makes e's reads wait for token (and frees it), and waits for it with a read of scope (the
 *  scope the token names): a write made next on e comes after what it covers (writes
 *  themselves do not wait for a token). */
static void s_after(engram_t *e, const char *scope, char *token)
{
    EXPECT_RC(e, 0, node_harness_after(e, scope, token, WAIT_MS));
    free(token);
}

/*  The value key had at as_of_ms on e into value ("" and the code when there is none). */
static int s_as_of(engram_t *e, const char *scope, const char *key, uint64_t as_of_ms, char *value,
                   size_t len)
{
    engram_result_t *r = NULL;
    int rc = engram_get_as_of(e, scope, key, as_of_ms, &r);
    value[0] = '\0';
    if (rc == 0) {
        assert_true(r->nitems >= 1);
        snprintf(value, len, "%.*s", (int)r->items[0].len, (const char *)r->items[0].value);
    }
    engram_result_destroy(&r);
    return rc;
}

/*  Runs the engram CLI against node i as agent for USER (arguments up to a NULL); its
 *  stdout into out (caller frees). Returns the exit code. */
static int s_cli(int i, const char *agent, char **out, ...)
{
    const char *argv[24];
    size_t n = 0;
    va_list ap;
    va_start(ap, out);
    for (const char *arg; n < 23 && (arg = va_arg(ap, const char *)) != NULL;)
        argv[n++] = arg;
    va_end(ap);
    argv[n] = NULL;
    int code = node_harness_cli(s_node[i], ENGRAM_CLI, agent, USER, argv, out);
    assert_non_null(*out);
    return code;
}

/*  Two histories are the same step for step: op, author, user, stamp, dot, value, metadata. */
static void s_same_history(const engram_result_t *x, const engram_result_t *y)
{
    assert_int_equal(x->nitems, y->nitems);
    for (size_t i = 0; i < x->nitems; i++) {
        const engram_item_t *a = &x->items[i], *b = &y->items[i];
        assert_string_equal(a->op, b->op);
        assert_string_equal(a->author, b->author);
        assert_string_equal(a->user, b->user);
        assert_string_equal(a->meta_json, b->meta_json);
        assert_true(a->hlc == b->hlc && a->node == b->node && a->n == b->n);
        assert_int_equal(a->len, b->len);
        if (a->len)
            assert_memory_equal(a->value, b->value, a->len);
    }
}

static void test_same_history_everywhere(void **state)
{
    (void)state;
    const char *scope = "run:history";
    engram_t *researcher = s_conn(A, "researcher", USER);
    engram_t *writer = s_conn(B, "writer", USER);
    engram_t *editor = s_conn(C, "editor", USER);
    s_after(writer, scope,
            s_put(researcher, scope, "brief", "Client needs an executive summary",
                  "{\"stage\":\"draft\"}"));
    s_after(researcher, scope,
            s_put(writer, scope, "brief", "Summary first, then ROI figures", NULL));
    /* every node's history is read once it holds the delete (B's too: it wrote before) */
    char *deleted = s_delete(researcher, scope, "brief");
    s_after(writer, scope, strdup(deleted));
    s_after(editor, scope, deleted);
    engram_result_t *seen[NODES] = {0};
    EXPECT_RC(editor, 0, engram_history(editor, scope, "brief", &seen[C]));
    EXPECT_RC(writer, 0, engram_history(writer, scope, "brief", &seen[B]));
    EXPECT_RC(researcher, 0, engram_history(researcher, scope, "brief", &seen[A]));
    const engram_result_t *h = seen[C];
    assert_int_equal(h->nitems, 3);
    assert_string_equal(h->items[0].op, "put");
    assert_string_equal(h->items[0].author, "researcher");
    assert_string_equal(h->items[0].value, "Client needs an executive summary");
    assert_string_equal(h->items[0].meta_json, "{\"stage\":\"draft\"}");
    assert_string_equal(h->items[1].op, "put");
    assert_string_equal(h->items[1].author, "writer");
    assert_string_equal(h->items[1].value, "Summary first, then ROI figures");
    assert_string_equal(h->items[1].meta_json, "{\"stage\":\"draft\"}"); /* kept on update */
    assert_string_equal(h->items[2].op, "delete");
    assert_string_equal(h->items[2].author, "researcher");
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(h->items[i].user, USER);
    assert_true(h->items[0].node != h->items[1].node); /* written on two nodes */
    assert_true(h->items[0].hlc < h->items[1].hlc && h->items[1].hlc < h->items[2].hlc);
    s_same_history(seen[A], seen[C]);
    s_same_history(seen[B], seen[C]);
    for (int i = 0; i < NODES; i++)
        engram_result_destroy(&seen[i]);

    /* The CLI: one line per step, its time in UTC, op, author, user and value. */
    char *out = NULL;
    assert_int_equal(s_cli(C, "editor", &out, "history", scope, "brief", NULL), 0);
    char time[32], op[16], author[32], user[32];
    const char *line = out;
    static const char *const ops[] = {"put", "put", "delete"};
    static const char *const authors[] = {"researcher", "writer", "researcher"};
    for (int i = 0; i < 3; i++) {
        assert_non_null(line);
        assert_int_equal(sscanf(line, "%31s %15s %31s %31s", time, op, author, user), 4);
        assert_int_equal(strlen(time) >= 20 && time[4] == '-' && time[10] == 'T', true);
        assert_int_equal(time[strlen(time) - 1], 'Z');
        assert_string_equal(op, ops[i]);
        assert_string_equal(author, authors[i]);
        assert_string_equal(user, USER);
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    assert_non_null(strstr(out, "Summary first, then ROI figures"));
    free(out);
    engram_destroy(&researcher);
    engram_destroy(&writer);
    engram_destroy(&editor);
}

static void test_as_of(void **state)
{
    (void)state;
    const char *scope = "run:asof";
    engram_t *researcher = s_conn(A, "researcher", USER);
    engram_t *writer = s_conn(B, "writer", USER);
    engram_t *editor = s_conn(C, "editor", USER);
    uint64_t before = s_pause();
    s_after(writer, scope, s_put(researcher, scope, "plan", "one", NULL));
    uint64_t between = s_pause();
    s_after(researcher, scope, s_put(writer, scope, "plan", "two", NULL));
    uint64_t updated = s_pause();
    s_after(editor, scope, s_delete(researcher, scope, "plan"));
    uint64_t deleted = s_pause();
    char value[64];
    assert_int_equal(s_as_of(editor, scope, "plan", before, value, sizeof value), ENGRAM_ENOTFOUND);
    assert_int_equal(s_as_of(editor, scope, "plan", between, value, sizeof value), 0);
    assert_string_equal(value, "one");
    assert_int_equal(s_as_of(editor, scope, "plan", updated, value, sizeof value), 0);
    assert_string_equal(value, "two");
    assert_int_equal(s_as_of(editor, scope, "plan", deleted, value, sizeof value),
                     ENGRAM_ENOTFOUND);
    /* The same through the CLI, with the time as milliseconds and as ISO 8601 UTC. */
    char *out = NULL, ms[24], iso[40];
    snprintf(ms, sizeof ms, "%" PRIu64, between);
    assert_int_equal(s_cli(C, "editor", &out, "get", scope, "plan", "--as-of", ms, NULL), 0);
    assert_string_equal(out, "one\n");
    free(out);
    time_t seconds = (time_t)(updated / 1000);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    size_t n = strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(iso + n, sizeof iso - n, ".%03uZ", (unsigned)(updated % 1000));
    assert_int_equal(s_cli(C, "editor", &out, "get", scope, "plan", "--as-of", iso, NULL), 0);
    assert_string_equal(out, "two\n");
    free(out);
    assert_int_equal(s_cli(C, "editor", &out, "get", scope, "plan", "--as-of", "now", NULL), 3);
    free(out);
    /* Refused: a time that is not one; no time at all. */
    assert_int_equal(s_cli(C, "editor", &out, "get", scope, "plan", "--as-of", "yesterday", NULL),
                     2);
    free(out);
    engram_result_t *r = NULL;
    assert_int_equal(engram_get_as_of(editor, scope, "plan", 0, &r), ENGRAM_EINVAL);
    engram_destroy(&researcher);
    engram_destroy(&writer);
    engram_destroy(&editor);
}

static void test_node_away(void **state)
{
    (void)state;
    const char *scope = "run:away";
    engram_t *researcher = s_conn(A, "researcher", USER);
    engram_t *writer = s_conn(B, "writer", USER);
    assert_int_equal(node_harness_stop(s_node[C]), 0);
    s_after(writer, scope, s_put(researcher, scope, "finding", "first finding", NULL));
    uint64_t between = s_pause();
    char *token = s_put(writer, scope, "finding", "second finding", NULL);
    engram_result_t *on_b = NULL;
    EXPECT_RC(writer, 0, engram_history(writer, scope, "finding", &on_b));
    assert_int_equal(node_harness_start(s_node[C]), 0);
    engram_t *editor = s_conn(C, "editor", USER);
    s_after(editor, scope, token);
    engram_result_t *on_c = NULL;
    EXPECT_RC(editor, 0, engram_history(editor, scope, "finding", &on_c));
    assert_int_equal(on_c->nitems, 2);
    assert_string_equal(on_c->items[0].value, "first finding");
    s_same_history(on_b, on_c);
    char value[64];
    assert_int_equal(s_as_of(editor, scope, "finding", between, value, sizeof value), 0);
    assert_string_equal(value, "first finding");
    engram_result_destroy(&on_b);
    engram_result_destroy(&on_c);
    engram_destroy(&researcher);
    engram_destroy(&writer);
    engram_destroy(&editor);
}

static void test_as_of_within_rights(void **state)
{
    (void)state;
    const char *scope = "run:rights";
    /* The stranger acts for bob, whom alice's agents may not read for. */
    engram_t *stranger = s_conn(A, "stranger", "bob");
    engram_t *editor = s_conn(C, "editor", USER);
    s_after(editor, scope, s_put(stranger, scope, "note", "bob's secret", NULL));
    uint64_t between = s_pause();
    char value[64];
    assert_int_equal(s_as_of(editor, scope, "note", between, value, sizeof value),
                     ENGRAM_ENOTFOUND);
    engram_result_t *r = NULL;
    assert_int_equal(engram_history(editor, scope, "note", &r), ENGRAM_ENOTFOUND);
    engram_result_destroy(&r);
    /* The stranger itself reads it, as of then. */
    assert_int_equal(s_as_of(stranger, scope, "note", between, value, sizeof value), 0);
    assert_string_equal(value, "bob's secret");
    /* The editor's own version, written over it, is the editor's to read. */
    s_after(stranger, scope, s_put(editor, scope, "note", "alice's note", NULL));
    uint64_t after = s_pause();
    assert_int_equal(s_as_of(editor, scope, "note", after, value, sizeof value), 0);
    assert_string_equal(value, "alice's note");
    EXPECT_RC(editor, 0, engram_history(editor, scope, "note", &r));
    assert_int_equal(r->nitems, 1);
    assert_string_equal(r->items[0].author, "editor");
    engram_result_destroy(&r);
    engram_destroy(&stranger);
    engram_destroy(&editor);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_history_everywhere),
        cmocka_unit_test(test_as_of),
        cmocka_unit_test(test_node_away),
        cmocka_unit_test(test_as_of_within_rights),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
