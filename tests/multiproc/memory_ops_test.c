/*  The memory operations mem0 users keep asking for, end to end against a real engramd:
 *  put --if-version (compare-and-set), remember --id (idempotent add), forget --filter
 *  [--dry-run], vote, an overwrite that keeps the memory's metadata, and ls with previews and
 *  --filter. Driven through libengram (include/engram/engram.h), and the CLI (the built
 *  `engram`, run as a child with the test's $ENGRAM_HOME, agent_keys.h) for put --if-version,
 *  remember --id, forget --dry-run, vote and ls.
 *
 *  Each refusal is checked for its code and for changing nothing: a conflicting put leaves
 *  the other writer's value, a dry run and an empty filter delete nothing, a vote on a missing
 *  key writes no counter. Threads that increment one register by get and put --if-version lose
 *  no update, which a put without the check would. Each deletion of a forget reaches the
 *  scope's subscribers as a delete event.
 *
 *  One node for the group (--list-limit 3, so that lists page; --durability async, so that
 *  the thousand writes of the forget bound are quick); each test uses scopes of its own.
 *  Access control: the agents are granted for their users on first connection
 *  (node_harness_connect); a memory written by an agent not granted for the reader's user is
 *  hidden from that reader (node_acl_may_read), which the forget test uses.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_keys.h"
#include "engram/engram.h"
#include "node_harness.h"

#define CALL_TIMEOUT_MS 10000
#define CAS_THREADS     4
#define CAS_INCREMENTS  15

/* clang-format off */
static const char *const s_args[] = {
    "--list-limit", "3",
    "--durability", "async",
    NULL,
};
/* clang-format on */

static node_harness_t *s_node;

static int s_setup(void **state)
{
    (void)state;
    if (!agent_keys_home())
        return -1;
    s_node = node_harness_new(s_args);
    return s_node && node_harness_start(s_node) == 0 ? 0 : -1;
}

static int s_teardown(void **state)
{
    (void)state;
    int status = s_node && node_harness_alive(s_node) ? node_harness_stop(s_node) : 0;
    node_harness_destroy(&s_node);
    return status == 0 ? 0 : -1;
}

static engram_t *s_connect(const char *agent, const char *user)
{
    engram_t *e = node_harness_connect(s_node, agent, user, CALL_TIMEOUT_MS);
    assert_non_null(e);
    return e;
}

#define EXPECT_RC(want, e, call)                                                                   \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != (want))                                                                         \
            fail_msg("%s: %d (%s), expected %d", #call, rc_, engram_last_error(e), (want));        \
    } while (0)

/*  A put that must succeed; returns its token (the caller frees it). */
static char *s_put(engram_t *e, const char *scope, const char *key, const char *value,
                   const char *meta)
{
    engram_result_t *r = NULL;
    EXPECT_RC(0, e, engram_put(e, scope, key, value, strlen(value), meta, 0, &r));
    char *token = strdup(r->token);
    engram_result_destroy(&r);
    return token;
}

/*  The winner under key (value and metadata, copied into the caller's buffers); the code of
 *  the get. */
static int s_get(engram_t *e, const char *scope, const char *key, char *value, size_t value_len,
                 char *meta, size_t meta_len)
{
    engram_result_t *r = NULL;
    int rc = engram_get(e, scope, key, NULL, 0, &r);
    if (rc == 0) {
        assert_true(r->nitems >= 1);
        snprintf(value, value_len, "%s", (const char *)r->items[0].value);
        if (meta)
            snprintf(meta, meta_len, "%s", r->items[0].meta_json);
    }
    engram_result_destroy(&r);
    return rc;
}

/*  The token of a get of key (the caller frees it). */
static char *s_get_token(engram_t *e, const char *scope, const char *key)
{
    engram_result_t *r = NULL;
    EXPECT_RC(0, e, engram_get(e, scope, key, NULL, 0, &r));
    char *token = strdup(r->token);
    engram_result_destroy(&r);
    return token;
}

/*  Every key of scope (every page, filtered by filter_json unless NULL), with its preview,
 *  as "KEY=PREVIEW;" in one string, into out. Also counts the pages. */
static void s_list_all(engram_t *e, const char *scope, const char *filter, unsigned limit,
                       char *out, size_t out_len, int *pages)
{
    char *cursor = NULL;
    out[0] = '\0';
    *pages = 0;
    do {
        engram_result_t *r = NULL;
        EXPECT_RC(0, e, engram_list_filtered(e, scope, NULL, filter, cursor, limit, &r));
        assert_true(r->nitems <= limit);
        for (size_t i = 0; i < r->nitems; i++) {
            size_t used = strlen(out);
            snprintf(out + used, out_len - used, "%s=%.*s;", r->items[i].key, (int)r->items[i].len,
                     (const char *)r->items[i].value);
        }
        free(cursor);
        cursor = *r->next_cursor ? strdup(r->next_cursor) : NULL;
        engram_result_destroy(&r);
        (*pages)++;
    } while (cursor);
}

/*  Runs the built engram CLI as agent for user against the node, with args (NULL-terminated),
 *  its stdout into out; returns its exit status (-1 if it did not exit). */
static int s_cli(const char *agent, const char *user, char *out, size_t out_len, ...)
{
    const char *argv[32] = {ENGRAM_CLI, "--socket", node_harness_endpoint(s_node), "--agent", agent,
                            "--user",   user};
    size_t argc = 7;
    va_list args;
    va_start(args, out_len);
    for (const char *arg; (arg = va_arg(args, const char *)) && argc < 31;)
        argv[argc++] = arg;
    va_end(args);
    argv[argc] = NULL;
    assert_int_equal(node_harness_grant(s_node, agent, user), 0);
    int pipe_fd[2];
    assert_int_equal(pipe(pipe_fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipe_fd[1], STDOUT_FILENO);
        close(pipe_fd[0]);
        close(pipe_fd[1]);
        execv(ENGRAM_CLI, (char *const *)argv);
        _exit(127);
    }
    close(pipe_fd[1]);
    size_t used = 0;
    ssize_t got;
    while (used + 1 < out_len && (got = read(pipe_fd[0], out + used, out_len - 1 - used)) > 0)
        used += (size_t)got;
    out[used] = '\0';
    close(pipe_fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*  --- put --if-version ------------------------------------------------------------------ */

static void test_if_version(void **state)
{
    (void)state;
    engram_t *e = s_connect("cas", "alice");
    engram_t *other = s_connect("cas2", "alice");
    const char *scope = "run:cas";
    char *before = s_put(e, scope, "unrelated", "x", NULL); /* taken before k existed */
    char *t1 = s_put(e, scope, "k", "v1", NULL);
    engram_result_t *r = NULL;

    /* the token of the last write: the put goes through */
    EXPECT_RC(0, e, engram_put_if_version(e, scope, "k", "v2", 2, NULL, 0, t1, &r));
    char *t2 = strdup(r->token);
    engram_result_destroy(&r);

    /* another writer writes since t2: a put with t2 is refused, and changes nothing */
    char *t3 = s_put(other, scope, "k", "theirs", NULL);
    EXPECT_RC(ENGRAM_ECONFLICT, e,
              engram_put_if_version(e, scope, "k", "mine", 4, NULL, 0, t2, &r));
    assert_null(r);
    assert_non_null(strstr(engram_last_error(e), "changed since that version"));
    char value[256];
    assert_int_equal(s_get(e, scope, "k", value, sizeof value, NULL, 0), 0);
    assert_string_equal(value, "theirs");
    /* an older token still: refused */
    EXPECT_RC(ENGRAM_ECONFLICT, e,
              engram_put_if_version(e, scope, "k", "mine", 4, NULL, 0, t1, &r));

    /* a token of a get after that write: through */
    char *got = s_get_token(e, scope, "k");
    EXPECT_RC(0, e, engram_put_if_version(e, scope, "k", "mine", 4, NULL, 0, got, &r));
    engram_result_destroy(&r);
    assert_int_equal(s_get(e, scope, "k", value, sizeof value, NULL, 0), 0);
    assert_string_equal(value, "mine");

    /* create-if-absent: a token from before the key existed */
    EXPECT_RC(0, e, engram_put_if_version(e, scope, "fresh", "1", 1, NULL, 0, before, &r));
    engram_result_destroy(&r);
    EXPECT_RC(ENGRAM_ECONFLICT, e,
              engram_put_if_version(e, scope, "fresh", "2", 1, NULL, 0, before, &r));
    /* after a delete, the key is absent again: the old token covers nothing live */
    EXPECT_RC(0, e, engram_delete(e, scope, "fresh", &r));
    engram_result_destroy(&r);
    EXPECT_RC(0, e, engram_put_if_version(e, scope, "fresh", "3", 1, NULL, 0, before, &r));
    engram_result_destroy(&r);

    /* a token of another scope, and one that is not a token: EINVAL */
    char *elsewhere = s_put(e, "run:cas-other", "k", "v", NULL);
    EXPECT_RC(ENGRAM_EINVAL, e,
              engram_put_if_version(e, scope, "k", "x", 1, NULL, 0, elsewhere, &r));
    EXPECT_RC(ENGRAM_EINVAL, e, engram_put_if_version(e, scope, "k", "x", 1, NULL, 0, "AAAA", &r));
    assert_int_equal(s_get(e, scope, "k", value, sizeof value, NULL, 0), 0);
    assert_string_equal(value, "mine");

    free(before);
    free(t1);
    free(t2);
    free(t3);
    free(got);
    free(elsewhere);
    engram_destroy(&other);
    engram_destroy(&e);
}

/*  One thread of the concurrent writers: CAS_INCREMENTS times, read the number, write it plus
 *  one with the read's token, and retry on a conflict. */
typedef struct {
    engram_t *e;
    int conflicts;
    int failures;
} s_incrementer_t;

static void *s_increment(void *arg)
{
    s_incrementer_t *self = arg;
    for (int done = 0; done < CAS_INCREMENTS;) {
        engram_result_t *r = NULL;
        if (engram_get(self->e, "run:cas-race", "n", NULL, 0, &r) != 0) {
            self->failures++;
            return NULL;
        }
        long n = strtol((const char *)r->items[0].value, NULL, 10);
        char next[32];
        snprintf(next, sizeof next, "%ld", n + 1);
        engram_result_t *w = NULL;
        int rc = engram_put_if_version(self->e, "run:cas-race", "n", next, strlen(next), NULL, 0,
                                       r->token, &w);
        engram_result_destroy(&r);
        engram_result_destroy(&w);
        if (rc == 0)
            done++;
        else if (rc == ENGRAM_ECONFLICT)
            self->conflicts++;
        else {
            self->failures++;
            return NULL;
        }
    }
    return NULL;
}

static void test_if_version_concurrent_writers(void **state)
{
    (void)state;
    engram_t *e = s_connect("racer", "alice");
    free(s_put(e, "run:cas-race", "n", "0", NULL));
    s_incrementer_t threads[CAS_THREADS];
    pthread_t ids[CAS_THREADS];
    for (int i = 0; i < CAS_THREADS; i++) {
        threads[i] = (s_incrementer_t){.e = s_connect("racer", "alice")};
        assert_int_equal(pthread_create(&ids[i], NULL, s_increment, &threads[i]), 0);
    }
    int conflicts = 0;
    for (int i = 0; i < CAS_THREADS; i++) {
        pthread_join(ids[i], NULL);
        assert_int_equal(threads[i].failures, 0);
        conflicts += threads[i].conflicts;
        engram_destroy(&threads[i].e);
    }
    char value[64];
    assert_int_equal(s_get(e, "run:cas-race", "n", value, sizeof value, NULL, 0), 0);
    /* no update lost: every successful put counted once */
    assert_int_equal(strtol(value, NULL, 10), CAS_THREADS * CAS_INCREMENTS);
    print_message("concurrent writers: %d conflicts retried\n", conflicts);
    engram_destroy(&e);
}

/*  --- remember --id -------------------------------------------------------------------- */

static void test_remember_id(void **state)
{
    (void)state;
    engram_t *e = s_connect("rem", "alice");
    const char *scope = "run:rem";
    engram_result_t *r = NULL;
    EXPECT_RC(0, e, engram_remember_id(e, scope, "m-1", "first text", "{\"a\":1}", 0, &r));
    assert_string_equal(r->memory_id, "m-1");
    assert_int_equal(r->number, 1);
    engram_result_destroy(&r);
    /* the same id again, other text: nothing written, the same id answered */
    EXPECT_RC(0, e, engram_remember_id(e, scope, "m-1", "second text", NULL, 0, &r));
    assert_string_equal(r->memory_id, "m-1");
    assert_int_equal(r->number, 0);
    engram_result_destroy(&r);
    char value[256], meta[256];
    assert_int_equal(s_get(e, scope, "m-1", value, sizeof value, meta, sizeof meta), 0);
    assert_string_equal(value, "first text");
    assert_string_equal(meta, "{\"a\":1}");
    EXPECT_RC(0, e, engram_history(e, scope, "m-1", &r));
    assert_int_equal(r->nitems, 1);
    engram_result_destroy(&r);
    /* an id that holds another type: refused; a bad id: refused */
    EXPECT_RC(0, e, engram_set_add(e, scope, "a-set", "x", &r));
    engram_result_destroy(&r);
    EXPECT_RC(ENGRAM_ETYPE, e, engram_remember_id(e, scope, "a-set", "t", NULL, 0, &r));
    EXPECT_RC(ENGRAM_EINVAL, e, engram_remember_id(e, scope, "bad\nid", "t", NULL, 0, &r));
    /* without an id: a new memory each time */
    EXPECT_RC(0, e, engram_remember_id(e, scope, NULL, "t", NULL, 0, &r));
    assert_int_equal(strncmp(r->memory_id, "mem-", 4), 0);
    engram_result_destroy(&r);

    /* the CLI */
    char out[512];
    assert_int_equal(s_cli("rem", "alice", out, sizeof out, "remember", scope, "cli text", "--id",
                           "m-cli", NULL),
                     0);
    assert_string_equal(out, "m-cli\n");
    assert_int_equal(
        s_cli("rem", "alice", out, sizeof out, "remember", scope, "other", "--id", "m-cli", NULL),
        0);
    assert_string_equal(out, "m-cli\n");
    assert_int_equal(s_get(e, scope, "m-cli", value, sizeof value, NULL, 0), 0);
    assert_string_equal(value, "cli text");
    engram_destroy(&e);
}

/*  --- update keeps metadata ------------------------------------------------------------- */

static void test_update_keeps_metadata(void **state)
{
    (void)state;
    engram_t *e = s_connect("upd", "alice");
    const char *scope = "run:upd";
    char value[256], meta[256];
    free(s_put(e, scope, "k", "v1", "{\"topic\":\"food\"}"));
    free(s_put(e, scope, "k", "v2", NULL)); /* no metadata: kept */
    assert_int_equal(s_get(e, scope, "k", value, sizeof value, meta, sizeof meta), 0);
    assert_string_equal(value, "v2");
    assert_string_equal(meta, "{\"topic\":\"food\"}");
    free(s_put(e, scope, "k", "v3", "{\"topic\":\"travel\"}")); /* given: replaced */
    assert_int_equal(s_get(e, scope, "k", value, sizeof value, meta, sizeof meta), 0);
    assert_string_equal(meta, "{\"topic\":\"travel\"}");
    free(s_put(e, scope, "k", "v4", "{}")); /* {} empties it */
    assert_int_equal(s_get(e, scope, "k", value, sizeof value, meta, sizeof meta), 0);
    assert_string_equal(meta, "{}");
    /* a remembered memory updated by a put on its id keeps its metadata */
    engram_result_t *r = NULL;
    EXPECT_RC(0, e, engram_remember(e, scope, "likes tea", "{\"kind\":\"pref\"}", 0, &r));
    char id[64];
    snprintf(id, sizeof id, "%s", r->memory_id);
    engram_result_destroy(&r);
    free(s_put(e, scope, id, "likes coffee", NULL));
    assert_int_equal(s_get(e, scope, id, value, sizeof value, meta, sizeof meta), 0);
    assert_string_equal(value, "likes coffee");
    assert_string_equal(meta, "{\"kind\":\"pref\"}");
    /* the put with if_version keeps it too */
    char *token = s_get_token(e, scope, id);
    EXPECT_RC(0, e, engram_put_if_version(e, scope, id, "likes water", 11, NULL, 0, token, &r));
    engram_result_destroy(&r);
    free(token);
    assert_int_equal(s_get(e, scope, id, value, sizeof value, meta, sizeof meta), 0);
    assert_string_equal(meta, "{\"kind\":\"pref\"}");
    engram_destroy(&e);
}

/*  --- forget ------------------------------------------------------------------------------ */

static void test_forget(void **state)
{
    (void)state;
    engram_t *e = s_connect("forgetter", "alice");
    engram_t *hidden = s_connect("outsider", "bob"); /* never granted for alice */
    const char *scope = "run:forget";
    engram_result_t *r = NULL;
    free(s_put(e, scope, "a1", "alpha one", "{\"topic\":\"a\"}"));
    free(s_put(e, scope, "a2", "alpha two", "{\"topic\":\"a\"}"));
    free(s_put(e, scope, "b1", "beta", "{\"topic\":\"b\"}"));
    EXPECT_RC(0, e, engram_log_append(e, scope, "alog", "old", 3, &r));
    engram_result_destroy(&r);
    EXPECT_RC(0, e, engram_log_append(e, scope, "alog", "newest", 6, &r));
    engram_result_destroy(&r);
    EXPECT_RC(0, e, engram_set_add(e, scope, "tags", "a", &r)); /* a set: never forgotten */
    engram_result_destroy(&r);
    free(s_put(hidden, scope, "secret", "bob's", "{\"topic\":\"a\"}"));
    const char *topic_a = "{\"topic\":\"a\"}";

    /* empty filters are refused, and delete nothing */
    int64_t count = -1;
    EXPECT_RC(ENGRAM_EINVAL, e, engram_forget(e, scope, "{}", false, &count));
    assert_non_null(strstr(engram_last_error(e), "empty filter"));
    EXPECT_RC(ENGRAM_EINVAL, e, engram_forget(e, scope, NULL, false, &count));
    EXPECT_RC(ENGRAM_EINVAL, e,
              engram_forget(e, scope, "{\"topic\":{\"bogus\":1}}", false, &count));
    char value[256];
    assert_int_equal(s_get(e, scope, "a1", value, sizeof value, NULL, 0), 0);

    /* a dry run counts (the two a's it may read, not bob's) and deletes nothing */
    EXPECT_RC(0, e, engram_forget(e, scope, topic_a, true, &count));
    assert_int_equal(count, 2);
    assert_int_equal(s_get(e, scope, "a1", value, sizeof value, NULL, 0), 0);
    assert_int_equal(s_get(e, scope, "a2", value, sizeof value, NULL, 0), 0);

    /* a log is matched by its last entry */
    EXPECT_RC(
        0, e,
        engram_forget(e, scope, "{\"key\":\"alog\",\"created_at\":{\"gt\":0}}", true, &count));
    assert_int_equal(count, 1);

    /* the forget */
    EXPECT_RC(0, e, engram_forget(e, scope, topic_a, false, &count));
    assert_int_equal(count, 2);
    assert_int_equal(s_get(e, scope, "a1", value, sizeof value, NULL, 0), ENGRAM_ENOTFOUND);
    assert_int_equal(s_get(e, scope, "a2", value, sizeof value, NULL, 0), ENGRAM_ENOTFOUND);
    assert_int_equal(s_get(e, scope, "b1", value, sizeof value, NULL, 0), 0);
    /* what the agent may not read was neither counted nor forgotten */
    assert_int_equal(s_get(hidden, scope, "secret", value, sizeof value, NULL, 0), 0);
    /* each deletion is a delete in the history */
    EXPECT_RC(0, e, engram_history(e, scope, "a1", &r));
    assert_int_equal(r->nitems, 2);
    assert_string_equal(r->items[1].op, "delete");
    assert_string_equal(r->items[1].author, "forgetter");
    engram_result_destroy(&r);
    /* nothing left to forget */
    EXPECT_RC(0, e, engram_forget(e, scope, topic_a, false, &count));
    assert_int_equal(count, 0);
    EXPECT_RC(0, e,
              engram_forget(e, scope, "{\"key\":{\"in\":[\"alog\",\"tags\"]}}", false, &count));
    assert_int_equal(count, 1); /* the log; the set is no memory */
    EXPECT_RC(0, e, engram_set_members(e, scope, "tags", &r));
    assert_int_equal(r->nitems, 1);
    engram_result_destroy(&r);

    /* the CLI: --dry-run prints the count and deletes nothing; an empty filter exits 4 */
    char out[512];
    assert_int_equal(s_cli("forgetter", "alice", out, sizeof out, "forget", scope, "--filter",
                           "{\"topic\":\"b\"}", "--dry-run", NULL),
                     0);
    assert_string_equal(out, "1\n");
    assert_int_equal(s_get(e, scope, "b1", value, sizeof value, NULL, 0), 0);
    assert_int_equal(
        s_cli("forgetter", "alice", out, sizeof out, "forget", scope, "--filter", "{}", NULL), 4);
    assert_int_equal(s_get(e, scope, "b1", value, sizeof value, NULL, 0), 0);
    assert_int_equal(s_cli("forgetter", "alice", out, sizeof out, "forget", scope, "--filter",
                           "{\"topic\":\"b\"}", NULL),
                     0);
    assert_string_equal(out, "1\n");
    assert_int_equal(s_get(e, scope, "b1", value, sizeof value, NULL, 0), ENGRAM_ENOTFOUND);
    engram_destroy(&hidden);
    engram_destroy(&e);
}

/*  Each deletion of a forget is an event for the scope's subscribers, as a delete is. */
static void test_forget_events(void **state)
{
    (void)state;
    engram_t *e = s_connect("forgetter", "alice");
    engram_t *watcher = s_connect("forgetter", "alice");
    const char *scope = "run:forget-events";
    free(s_put(e, scope, "e1", "x", "{\"gone\":true}"));
    free(s_put(e, scope, "e2", "x", "{\"gone\":true}"));
    free(s_put(e, scope, "e3", "x", "{\"gone\":false}"));
    EXPECT_RC(0, watcher, engram_subscribe(watcher, scope));
    int64_t count = 0;
    EXPECT_RC(0, e, engram_forget(e, scope, "{\"gone\":true}", false, &count));
    assert_int_equal(count, 2);
    const char *want[] = {"e1", "e2"};
    for (int i = 0; i < 2; i++) {
        engram_event_t *event = NULL;
        EXPECT_RC(0, watcher, engram_next_event(watcher, CALL_TIMEOUT_MS, &event));
        assert_string_equal(event->key, want[i]);
        assert_string_equal(event->op, "delete");
        assert_true(event->token[0]);
        engram_event_destroy(&event);
    }
    engram_event_t *event = NULL;
    EXPECT_RC(ENGRAM_ETIMEDOUT, watcher, engram_next_event(watcher, 200, &event));
    engram_destroy(&watcher);
    engram_destroy(&e);
}

/*  More matches than a request deletes (ENGRAM_MAX_PAGE): engram_forget goes on until all
 *  are gone, and a dry run counts them all. */
static void test_forget_more_than_a_page(void **state)
{
    (void)state;
    engram_t *e = s_connect("bulk", "alice");
    const char *scope = "run:forget-bulk";
    int total = ENGRAM_MAX_PAGE + 7;
    for (int i = 0; i < total; i++) {
        char key[32];
        snprintf(key, sizeof key, "m%05d", i);
        free(s_put(e, scope, key, "x", "{\"bulk\":true}"));
    }
    free(s_put(e, scope, "keep", "x", "{\"bulk\":false}"));
    int64_t count = 0;
    EXPECT_RC(0, e, engram_forget(e, scope, "{\"bulk\":true}", true, &count));
    assert_int_equal(count, total);
    EXPECT_RC(0, e, engram_forget(e, scope, "{\"bulk\":true}", false, &count));
    assert_int_equal(count, total);
    char listed[256];
    int pages = 0;
    s_list_all(e, scope, NULL, 100, listed, sizeof listed, &pages);
    assert_string_equal(listed, "keep=x;");
    engram_destroy(&e);
}

/*  --- vote -------------------------------------------------------------------------------- */

static void test_vote(void **state)
{
    (void)state;
    engram_t *e = s_connect("voter", "alice");
    const char *scope = "run:vote";
    engram_result_t *r = NULL;
    /* no memory: refused, and no counter written */
    EXPECT_RC(ENGRAM_ENOTFOUND, e, engram_vote(e, scope, "nothing", 1, &r));
    EXPECT_RC(ENGRAM_ENOTFOUND, e, engram_counter_get(e, scope, "nothing#votes", &r));
    free(s_put(e, scope, "fact", "the sky is blue", NULL));
    EXPECT_RC(ENGRAM_EINVAL, e, engram_vote(e, scope, "fact", 2, &r));
    EXPECT_RC(ENGRAM_EINVAL, e, engram_vote(e, scope, "fact", 0, &r));
    EXPECT_RC(ENGRAM_ENOTFOUND, e, engram_counter_get(e, scope, "fact#votes", &r));
    EXPECT_RC(0, e, engram_vote(e, scope, "fact", 1, &r));
    assert_int_equal(r->number, 1);
    assert_true(r->token[0]);
    engram_result_destroy(&r);
    EXPECT_RC(0, e, engram_vote(e, scope, "fact", 1, &r));
    engram_result_destroy(&r);
    EXPECT_RC(0, e, engram_vote(e, scope, "fact", -1, &r));
    assert_int_equal(r->number, 1);
    engram_result_destroy(&r);
    EXPECT_RC(0, e, engram_counter_get(e, scope, "fact#votes", &r));
    assert_int_equal(r->number, 1);
    engram_result_destroy(&r);
    /* a log is a memory too; a set is not */
    EXPECT_RC(0, e, engram_log_append(e, scope, "journal", "x", 1, &r));
    engram_result_destroy(&r);
    EXPECT_RC(0, e, engram_vote(e, scope, "journal", -1, &r));
    engram_result_destroy(&r);
    EXPECT_RC(0, e, engram_set_add(e, scope, "tags", "x", &r));
    engram_result_destroy(&r);
    EXPECT_RC(ENGRAM_ETYPE, e, engram_vote(e, scope, "tags", 1, &r));
    /* a deleted memory takes no vote */
    EXPECT_RC(0, e, engram_delete(e, scope, "journal", &r));
    engram_result_destroy(&r);
    EXPECT_RC(ENGRAM_ENOTFOUND, e, engram_vote(e, scope, "journal", 1, &r));
    /* the counter is listed beside the memory */
    char listed[512];
    int pages = 0;
    s_list_all(e, scope, NULL, 100, listed, sizeof listed, &pages);
    assert_string_equal(listed, "fact=the sky is blue;fact#votes=;journal#votes=;tags=;");

    /* the CLI: prints the token; +1 and -1 only (usage, exit 2); a missing memory exits 3 */
    char out[512];
    assert_int_equal(s_cli("voter", "alice", out, sizeof out, "vote", scope, "fact", "+1", NULL),
                     0);
    assert_true(strlen(out) > 10 && out[strlen(out) - 1] == '\n');
    assert_int_equal(s_cli("voter", "alice", out, sizeof out, "vote", scope, "fact", "-1", NULL),
                     0);
    assert_int_equal(s_cli("voter", "alice", out, sizeof out, "vote", scope, "fact", "+2", NULL),
                     2);
    assert_int_equal(s_cli("voter", "alice", out, sizeof out, "vote", scope, "nope", "+1", NULL),
                     3);
    EXPECT_RC(0, e, engram_counter_get(e, scope, "fact#votes", &r));
    assert_int_equal(r->number, 1);
    engram_result_destroy(&r);
    engram_destroy(&e);
}

/*  --- ls: previews and --filter ------------------------------------------------------------ */

static void test_ls_previews(void **state)
{
    (void)state;
    engram_t *e = s_connect("lister", "alice");
    const char *scope = "run:ls-preview";
    engram_result_t *r = NULL;
    char value[128];
    /* 100 bytes of "é" (2 bytes each): cut to at most 80 bytes with the ellipsis (3 bytes), at
     * a character boundary: 38 characters (76 bytes), then "…" */
    char accents[101] = "";
    for (int i = 0; i < 50; i++)
        strcat(accents, "\xc3\xa9");
    free(s_put(e, scope, "accents", accents, NULL));
    memset(value, 'a', 80);
    value[80] = '\0';
    free(s_put(e, scope, "exactly80", value, NULL));
    value[80] = 'b';
    value[81] = '\0';
    free(s_put(e, scope, "eighty1", value, NULL));
    free(s_put(e, scope, "short", "tiny", NULL));
    EXPECT_RC(0, e, engram_log_append(e, scope, "zlog", "first", 5, &r));
    engram_result_destroy(&r);
    EXPECT_RC(0, e, engram_log_append(e, scope, "zlog", "last", 4, &r));
    engram_result_destroy(&r);

    EXPECT_RC(0, e, engram_list(e, scope, NULL, NULL, 100, &r));
    assert_int_equal(r->nitems, 3); /* --list-limit 3 */
    engram_result_destroy(&r);
    char listed[1024];
    int pages = 0;
    s_list_all(e, scope, NULL, 100, listed, sizeof listed, &pages);
    char want[1024], a38[77] = "", a77[78], a80[81];
    for (int i = 0; i < 38; i++)
        strcat(a38, "\xc3\xa9");
    memset(a77, 'a', 77);
    a77[77] = '\0';
    memset(a80, 'a', 80);
    a80[80] = '\0';
    snprintf(want, sizeof want,
             "accents=%s\xe2\x80\xa6;eighty1=%s\xe2\x80\xa6;exactly80=%s;short=tiny;zlog=last;",
             a38, a77, a80);
    assert_string_equal(listed, want);

    /* the CLI: KEY, a tab, the preview; --json "preview" */
    char out[1024];
    assert_int_equal(s_cli("lister", "alice", out, sizeof out, "ls", scope, "s", NULL), 0);
    assert_string_equal(out, "short\ttiny\n");
    assert_int_equal(s_cli("lister", "alice", out, sizeof out, "--json", "ls", scope, "z", NULL),
                     0);
    assert_string_equal(out, "[{\"key\":\"zlog\",\"type\":\"log\",\"preview\":\"last\"}]\n");
    engram_destroy(&e);
}

static void test_ls_filter(void **state)
{
    (void)state;
    engram_t *e = s_connect("filterer", "alice");
    const char *scope = "run:ls-filter";
    /* ten keys, every third matching */
    for (int i = 0; i < 10; i++) {
        char key[16], meta[64];
        snprintf(key, sizeof key, "k%d", i);
        snprintf(meta, sizeof meta, "{\"pick\":%s}", i % 3 == 0 ? "true" : "false");
        free(s_put(e, scope, key, key, meta));
    }
    engram_result_t *r = NULL;
    EXPECT_RC(0, e, engram_set_add(e, scope, "k99-set", "x", &r));
    engram_result_destroy(&r);
    char listed[512];
    int pages = 0;
    s_list_all(e, scope, "{\"pick\":true}", 2, listed, sizeof listed, &pages);
    assert_string_equal(listed, "k0=k0;k3=k3;k6=k6;k9=k9;");
    assert_true(pages >= 2);
    /* a filter on the key skips the set too: only registers and logs are matched */
    s_list_all(e, scope, "{\"key\":{\"contains\":\"9\"}}", 3, listed, sizeof listed, &pages);
    assert_string_equal(listed, "k9=k9;");
    /* the empty filter lists everything, the set included */
    s_list_all(e, scope, "{}", 100, listed, sizeof listed, &pages);
    assert_non_null(strstr(listed, "k99-set=;"));
    /* a bad filter is refused */
    EXPECT_RC(ENGRAM_EINVAL, e, engram_list_filtered(e, scope, NULL, "[1]", NULL, 0, &r));
    /* the CLI */
    char out[512];
    assert_int_equal(s_cli("filterer", "alice", out, sizeof out, "ls", scope, "--filter",
                           "{\"pick\":true}", NULL),
                     0);
    assert_string_equal(out, "k0\tk0\nk3\tk3\nk6\tk6\nk9\tk9\n");
    engram_destroy(&e);
}

/*  --- the CLI's put --if-version -------------------------------------------------------------- */

static void test_cli_if_version(void **state)
{
    (void)state;
    engram_t *e = s_connect("clicas", "alice");
    const char *scope = "run:cli-cas";
    char *token = s_put(e, scope, "k", "v1", NULL);
    char out[1024];
    assert_int_equal(s_cli("clicas", "alice", out, sizeof out, "put", scope, "k", "v2",
                           "--if-version", token, NULL),
                     0);
    assert_true(strlen(out) > 10);
    /* the same token again: k changed since (exit 4), and keeps v2 */
    assert_int_equal(s_cli("clicas", "alice", out, sizeof out, "put", scope, "k", "v3",
                           "--if-version", token, NULL),
                     4);
    char value[64];
    assert_int_equal(s_get(e, scope, "k", value, sizeof value, NULL, 0), 0);
    assert_string_equal(value, "v2");
    free(token);
    engram_destroy(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_if_version),
        cmocka_unit_test(test_if_version_concurrent_writers),
        cmocka_unit_test(test_remember_id),
        cmocka_unit_test(test_update_keeps_metadata),
        cmocka_unit_test(test_forget),
        cmocka_unit_test(test_forget_events),
        cmocka_unit_test(test_forget_more_than_a_page),
        cmocka_unit_test(test_vote),
        cmocka_unit_test(test_ls_previews),
        cmocka_unit_test(test_ls_filter),
        cmocka_unit_test(test_cli_if_version),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
