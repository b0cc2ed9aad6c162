/*  Crash safety of engramd: SIGKILL under load, restart on the same data, and check that
 *  every acknowledged write survived, whole.
 *
 *  A round: WORKERS client threads (one engram_t each, as libengram requires) write a seeded
 *  mix of operations into the round's scope (run:crash-R): puts of fresh keys and overwrites
 *  of their own keys (values unique and self-describing), set adds and removes, counter adds
 *  and log appends. Each thread records every operation it sent and whether the node
 *  acknowledged it; a thread stops at its first failure, so at most its last operation is
 *  "in flight" (sent, not acknowledged: it may or may not have been applied). At a seeded
 *  moment 100-800 ms after the first acknowledgement the test SIGKILLs engramd (a process
 *  crash), joins the threads and restarts engramd on the same directory.
 *
 *  What must hold after the restart (s_verify):
 *    - every acknowledged write is there: a register holds the value of its last
 *      acknowledged put, or of the in-flight put after it; a set holds exactly the members
 *      its acknowledged adds and removes leave, give or take the in-flight element; a log
 *      holds the acknowledged entries in order, maybe followed by the in-flight one; a counter
 *      lies between the acknowledged sum and that sum plus the in-flight amount;
 *    - nothing is half-written (one operation is one WriteBatch): a register's value is in
 *      its history exactly when the write that made it is; a counter equals the sum of the
 *      amounts in its history; a log has as many history steps as entries; every listed key
 *      is one the load wrote, has the type it wrote, and is readable;
 *    - the node's context still covers every acknowledged token, and its next write takes a
 *      fresh dot: under durability=sync the same replica id with a larger counter than any
 *      dot seen before the crash; under durability=async, where a crash may lose the
 *      counter, a new replica id (the dot-safety rule of node/store/store.h).
 *  Under async durability a SIGKILL is a process crash, not a power loss: a turn writes its
 *  WAL buffer out to the OS before its replies (node_store_write_out), so nothing
 *  acknowledged may be lost either (it fails if the buffer is not written out).
 *
 *  Access control: the workers and the verifier are granted on the running node, online
 *  (node_harness_grant, kept in sys:acl) and once per node; so every call they make after a
 *  restart also checks that those statements survived the crash before it.
 *
 *  test_sync_kills runs SYNC_ROUNDS rounds on one node, verifying each round after its
 *  restart and every round again at the end; test_async_kill runs one round under
 *  --durability async and checks that clean stops keep the replica id. The seed
 *  (tests/support/prop.h, ENGRAM_SEED) fixes the operations and the kill moments; thread
 *  timing does not replay exactly.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <czmq.h>
#include <sodium.h>

#include "crdt/codec.h"
#include "crdt/ctx.h"
#include "engram/engram.h"
#include "node_harness.h"
#include "prop.h"
#include "proto/api.pb-c.h"

#define WORKERS      4
#define SYNC_ROUNDS  5
#define MAX_ROUNDS   (SYNC_ROUNDS + 1)
#define KILL_MIN_MS  100
#define KILL_SPAN_MS 700
/*  A worker's call timeout: long enough for any group commit, short enough that the calls
 *  cut off by the kill end soon. */
#define WORKER_TIMEOUT_MS 2000
#define VERIFY_TIMEOUT_MS 10000
#define TOKEN_VARIANT     sodium_base64_VARIANT_URLSAFE_NO_PADDING

typedef enum { S_PUT, S_SET_ADD, S_SET_REMOVE, S_COUNTER, S_LOG } s_kind_t;

/*  One operation a worker sent. */
typedef struct {
    s_kind_t kind;
    int target;    /* S_PUT: key index; set ops: element index */
    char text[80]; /* S_PUT: value; set ops: element; S_LOG: entry */
    int64_t amount;
    bool acked;
} s_op_t;

/*  One client thread of one round. Written by its thread until joined, then read by the
 *  main thread only. */
typedef struct {
    int round;
    int index;
    const char *endpoint;
    char scope[32];
    char agent[32];
    prop_rng_t rng;
    atomic_int *stop;
    atomic_int *acks; /* acknowledgements so far, shared by the round's workers */
    s_op_t *ops;      /* every operation sent, in order; only the last may be unacknowledged */
    size_t nops;
    size_t cap;
    int nkeys;   /* put keys used: t<index>/p0000 .. */
    int nelems;  /* set elements used */
    char *token; /* the token of the last acknowledged write, owned */
    int last_rc; /* the failure that stopped the worker */
} s_worker_t;

typedef struct {
    s_worker_t workers[WORKERS];
    int kill_ms;
    bool async;
} s_round_t;

static node_harness_t *s_node;
static engram_t *s_conn; /* the verifier's connection */
static s_round_t s_rounds[MAX_ROUNDS];
static int s_nrounds;

/*  --- time ------------------------------------------------------------------------------ */

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*  --- the load ----------------------------------------------------------------------- */

/*  The key of put key index i (what NULL), or of the worker's set, ctr or log. */
static void s_key_of(const s_worker_t *w, const char *what, int i, char *key, size_t size)
{
    if (what)
        snprintf(key, size, "t%d/%s", w->index, what);
    else
        snprintf(key, size, "t%d/p%04d", w->index, i);
}

/*  Whether the acknowledged operations so far leave element `elem` in the worker's set. */
static bool s_member_acked(const s_worker_t *w, int elem)
{
    bool in = false;
    for (size_t i = 0; i < w->nops; i++)
        if (w->ops[i].acked && w->ops[i].target == elem &&
            (w->ops[i].kind == S_SET_ADD || w->ops[i].kind == S_SET_REMOVE))
            in = w->ops[i].kind == S_SET_ADD;
    return in;
}

/*  Picks the next operation. */
static s_op_t s_next_op(s_worker_t *w)
{
    s_op_t op = {0};
    uint64_t dice = prop_below(&w->rng, 100);
    if (dice < 40 || (dice < 50 && w->nkeys == 0)) {
        op.kind = S_PUT;
        op.target = w->nkeys++;
    } else if (dice < 50) {
        op.kind = S_PUT;
        op.target = (int)prop_below(&w->rng, (uint64_t)w->nkeys);
    } else if (dice < 65) {
        op.kind = S_SET_ADD;
        op.target = w->nelems++;
    } else if (dice < 72 && w->nelems > 0) {
        op.kind = S_SET_REMOVE;
        op.target = (int)prop_below(&w->rng, (uint64_t)w->nelems);
        if (!s_member_acked(w, op.target)) { /* remove only what is there */
            op.kind = S_SET_ADD;
        }
    } else if (dice < 86) {
        op.kind = S_COUNTER;
        op.amount = 1 + (int64_t)prop_below(&w->rng, 100);
    } else {
        op.kind = S_LOG;
    }
    size_t n = w->nops;
    if (op.kind == S_PUT)
        snprintf(op.text, sizeof op.text, "v|r%d|t%d|k%d|o%zu|%016" PRIx64, w->round, w->index,
                 op.target, n, prop_next(&w->rng));
    else if (op.kind == S_SET_ADD || op.kind == S_SET_REMOVE)
        snprintf(op.text, sizeof op.text, "e%05d", op.target);
    else if (op.kind == S_LOG)
        snprintf(op.text, sizeof op.text, "l|r%d|t%d|o%zu", w->round, w->index, n);
    return op;
}

static int s_send_op(s_worker_t *w, engram_t *e, const s_op_t *op, engram_result_t **r)
{
    char key[32];
    switch (op->kind) {
    case S_PUT:
        s_key_of(w, NULL, op->target, key, sizeof key);
        return engram_put(e, w->scope, key, op->text, strlen(op->text), NULL, 0, r);
    case S_SET_ADD:
        s_key_of(w, "set", -1, key, sizeof key);
        return engram_set_add(e, w->scope, key, op->text, r);
    case S_SET_REMOVE:
        s_key_of(w, "set", -1, key, sizeof key);
        return engram_set_remove(e, w->scope, key, op->text, r);
    case S_COUNTER:
        s_key_of(w, "ctr", -1, key, sizeof key);
        return engram_counter_add(e, w->scope, key, op->amount, r);
    case S_LOG:
        s_key_of(w, "log", -1, key, sizeof key);
        return engram_log_append(e, w->scope, key, op->text, strlen(op->text), r);
    }
    return ENGRAM_EINVAL;
}

static void *s_worker_run(void *arg)
{
    s_worker_t *w = arg;
    engram_t *e = engram_connect(w->endpoint, w->agent, "crash-user");
    if (!e) {
        w->last_rc = ENGRAM_ENOMEM;
        return NULL;
    }
    engram_set_timeout(e, WORKER_TIMEOUT_MS);
    while (!atomic_load(w->stop)) {
        if (w->nops == w->cap) {
            size_t cap = w->cap ? 2 * w->cap : 256;
            s_op_t *grown = realloc(w->ops, cap * sizeof *grown);
            if (!grown) {
                w->last_rc = ENGRAM_ENOMEM;
                break;
            }
            w->ops = grown;
            w->cap = cap;
        }
        w->ops[w->nops] = s_next_op(w);
        s_op_t *op = &w->ops[w->nops++];
        engram_result_t *r = NULL;
        int rc = s_send_op(w, e, op, &r);
        if (rc == 0) {
            op->acked = true;
            atomic_fetch_add(w->acks, 1);
            free(w->token);
            w->token = strdup(r->token);
        }
        engram_result_destroy(&r);
        if (rc != 0) {
            w->last_rc = rc;
            break;
        }
    }
    engram_destroy(&e);
    return NULL;
}

/*  Runs one round of load and, at the round's seeded moment, kills the node (SIGKILL) or,
 *  with `term`, stops it (SIGTERM), which must then end with exit status 0. The moment counts
 *  from the first acknowledgement: on a loaded machine the workers' first calls may take
 *  longer than KILL_MIN_MS, and a kill before any answer would test nothing. */
static void s_load_and_stop(s_round_t *round, int index, bool term)
{
    atomic_int stop = 0, acks = 0;
    pthread_t threads[WORKERS];
    prop_rng_t rng = prop_case("kill moment", index);
    round->kill_ms = KILL_MIN_MS + (int)prop_below(&rng, KILL_SPAN_MS + 1);
    for (int t = 0; t < WORKERS; t++) {
        s_worker_t *w = &round->workers[t];
        memset(w, 0, sizeof *w);
        w->round = index;
        w->index = t;
        w->endpoint = node_harness_endpoint(s_node);
        snprintf(w->scope, sizeof w->scope, "run:crash-%d", index);
        snprintf(w->agent, sizeof w->agent, "worker-%d", t);
        assert_int_equal(node_harness_grant(s_node, w->agent, "crash-user"), 0);
        w->rng = prop_case("worker", index * 100 + t);
        w->stop = &stop;
        w->acks = &acks;
        assert_int_equal(pthread_create(&threads[t], NULL, s_worker_run, w), 0);
    }
    int64_t first_deadline = s_now_ms() + VERIFY_TIMEOUT_MS;
    while (atomic_load(&acks) == 0 && s_now_ms() < first_deadline)
        zclock_sleep(5);
    zclock_sleep(round->kill_ms);
    int status = 0;
    if (term)
        status = node_harness_stop(s_node);
    else
        node_harness_kill(s_node);
    atomic_store(&stop, 1);
    for (int t = 0; t < WORKERS; t++)
        pthread_join(threads[t], NULL);
    size_t sent = 0, acked = 0;
    for (int t = 0; t < WORKERS; t++)
        for (size_t i = 0; i < round->workers[t].nops; i++) {
            sent++;
            acked += round->workers[t].ops[i].acked;
        }
    fprintf(stderr, "round %d (%s): %s after %d ms; %zu operations sent, %zu acknowledged\n", index,
            round->async ? "async" : "sync", term ? "SIGTERM" : "SIGKILL", round->kill_ms, sent,
            acked);
    if (term && status != 0)
        fail_msg("engramd stopped by SIGTERM under load: exit status %d, expected 0", status);
    /* Some load was acknowledged, and the only failure a worker met is the kill's. */
    assert_true(acked > 0);
    for (int t = 0; t < WORKERS; t++)
        if (round->workers[t].last_rc != 0 && round->workers[t].last_rc != ENGRAM_EUNAVAILABLE)
            fail_msg("worker %d stopped on %d (%s) before the kill", t, round->workers[t].last_rc,
                     engram_strerror(round->workers[t].last_rc));
}

static void s_round_free(s_round_t *round)
{
    for (int t = 0; t < WORKERS; t++) {
        free(round->workers[t].ops);
        free(round->workers[t].token);
    }
    memset(round, 0, sizeof *round);
}

/*  --- verification --------------------------------------------------------------------- */

#define EXPECT_RC(e, want, call)                                                                   \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != (want))                                                                         \
            fail_msg("%s\n  returned %d (%s), expected %d (%s); node said: '%s'", #call, rc_,      \
                     engram_strerror(rc_), (want), engram_strerror(want), engram_last_error(e));   \
    } while (0)

/*  The context of a token's only scope. Caller owns. */
static crdt_ctx_t *s_token_ctx(const char *token)
{
    size_t len = strlen(token);
    uint8_t *bin = malloc(len + 1);
    size_t bin_len = 0;
    assert_non_null(bin);
    assert_int_equal(
        sodium_base642bin(bin, len + 1, token, len, NULL, &bin_len, NULL, TOKEN_VARIANT), 0);
    Engram__Token *t = engram__token__unpack(NULL, bin_len, bin);
    free(bin);
    assert_non_null(t);
    assert_int_equal(t->n_scopes, 1);
    crdt_ctx_t *ctx = NULL;
    assert_int_equal(crdt_ctx_decode(t->scopes[0]->ctx.data, t->scopes[0]->ctx.len, &ctx), 0);
    engram__token__free_unpacked(t, NULL);
    return ctx;
}

/*  What the verification of one round (one scope: dots count per scope) learnt: the largest
 *  n of `replica` seen. */
typedef struct {
    uint64_t replica;
    uint64_t max_n;
} s_dots_t;

static void s_saw_dot(s_dots_t *dots, uint64_t node, uint64_t n)
{
    if (node == dots->replica && n > dots->max_n)
        dots->max_n = n;
}

/*  The history of key: how many steps, their amounts' sum, and whether `value` is one of
 *  the steps' values. */
static void s_history(engram_t *e, const char *scope, const char *key, const char *value,
                      size_t *steps, int64_t *sum, bool *has_value)
{
    engram_result_t *r;
    *steps = 0;
    *sum = 0;
    *has_value = false;
    int rc = engram_history(e, scope, key, &r);
    if (rc == ENGRAM_ENOTFOUND)
        return;
    EXPECT_RC(e, 0, rc);
    *steps = r->nitems;
    for (size_t i = 0; i < r->nitems; i++) {
        *sum += r->items[i].amount;
        if (value && strcmp((char *)r->items[i].value, value) == 0)
            *has_value = true;
    }
    engram_result_destroy(&r);
}

static void s_verify_puts(const s_worker_t *w, engram_t *e, s_dots_t *dots)
{
    const s_op_t *last = w->nops ? &w->ops[w->nops - 1] : NULL;
    const s_op_t *inflight = last && !last->acked ? last : NULL;
    char key[32];
    for (int k = 0; k < w->nkeys; k++) {
        const s_op_t *acked = NULL;
        for (size_t i = 0; i < w->nops; i++)
            if (w->ops[i].kind == S_PUT && w->ops[i].target == k && w->ops[i].acked)
                acked = &w->ops[i];
        const s_op_t *maybe =
            inflight && inflight->kind == S_PUT && inflight->target == k ? inflight : NULL;
        s_key_of(w, NULL, k, key, sizeof key);
        engram_result_t *r;
        int rc = engram_get(e, w->scope, key, NULL, 0, &r);
        if (rc == ENGRAM_ENOTFOUND) {
            if (acked)
                fail_msg("%s/%s: acknowledged put '%s' lost", w->scope, key, acked->text);
            assert_non_null(maybe);
            bool in_history;
            size_t steps;
            int64_t sum;
            s_history(e, w->scope, key, maybe->text, &steps, &sum, &in_history);
            if (in_history)
                fail_msg("%s/%s: half-written: the history has '%s', the register nothing",
                         w->scope, key, maybe->text);
            continue;
        }
        EXPECT_RC(e, 0, rc);
        if (r->nitems != 1)
            fail_msg("%s/%s: %zu versions", w->scope, key, r->nitems);
        const char *got = (char *)r->items[0].value;
        bool is_acked = acked && strcmp(got, acked->text) == 0;
        bool is_maybe = maybe && strcmp(got, maybe->text) == 0;
        if (!is_acked && !is_maybe)
            fail_msg("%s/%s = '%s'; expected '%s'%s%s", w->scope, key, got,
                     acked ? acked->text : "(nothing)", maybe ? " or in flight " : "",
                     maybe ? maybe->text : "");
        assert_string_equal(r->items[0].author, w->agent);
        assert_string_equal(r->items[0].user, "crash-user");
        s_saw_dot(dots, r->items[0].node, r->items[0].n);
        /* The reply's token covers the dot of the version it returned. */
        crdt_ctx_t *ctx = s_token_ctx(r->token);
        assert_true(crdt_ctx_contains(ctx, (crdt_dot_t){r->items[0].node, r->items[0].n}));
        crdt_ctx_destroy(&ctx);
        engram_result_destroy(&r);
        /* One WriteBatch: the in-flight put is in the history iff its value is visible. */
        size_t steps;
        int64_t sum;
        bool in_history;
        if (maybe) {
            s_history(e, w->scope, key, maybe->text, &steps, &sum, &in_history);
            if (in_history != is_maybe)
                fail_msg("%s/%s: half-written: value %s, history %s the in-flight put", w->scope,
                         key, is_maybe ? "is the in-flight put" : "is the acked one",
                         in_history ? "has" : "lacks");
        }
        if (acked) {
            s_history(e, w->scope, key, acked->text, &steps, &sum, &in_history);
            if (!in_history)
                fail_msg("%s/%s: the history lost the acknowledged put '%s'", w->scope, key,
                         acked->text);
        }
    }
}

static void s_verify_set(const s_worker_t *w, engram_t *e)
{
    const s_op_t *last = w->nops ? &w->ops[w->nops - 1] : NULL;
    int maybe = last && !last->acked && (last->kind == S_SET_ADD || last->kind == S_SET_REMOVE)
                    ? last->target
                    : -1;
    char key[32];
    s_key_of(w, "set", -1, key, sizeof key);
    engram_result_t *r;
    int rc = engram_set_members(e, w->scope, key, &r);
    bool *present = calloc((size_t)w->nelems + 1, sizeof *present);
    assert_non_null(present);
    if (rc == 0) {
        for (size_t i = 0; i < r->nitems; i++) {
            int elem = -1;
            if (sscanf((char *)r->items[i].value, "e%d", &elem) != 1 || elem < 0 ||
                elem >= w->nelems)
                fail_msg("%s/%s: unknown member '%s'", w->scope, key, (char *)r->items[i].value);
            if (present[elem])
                fail_msg("%s/%s: member '%s' twice", w->scope, key, (char *)r->items[i].value);
            present[elem] = true;
        }
        engram_result_destroy(&r);
    } else if (rc != ENGRAM_ENOTFOUND) {
        EXPECT_RC(e, 0, rc);
    }
    for (int elem = 0; elem < w->nelems; elem++) {
        bool want = s_member_acked(w, elem);
        if (elem != maybe && present[elem] != want)
            fail_msg("%s/%s: e%05d is %s, but the acknowledged operations leave it %s", w->scope,
                     key, elem, present[elem] ? "a member" : "missing", want ? "in" : "out");
    }
    free(present);
}

static void s_verify_counter(const s_worker_t *w, engram_t *e)
{
    int64_t acked = 0, inflight = 0;
    size_t nacked = 0;
    for (size_t i = 0; i < w->nops; i++) {
        if (w->ops[i].kind != S_COUNTER)
            continue;
        if (w->ops[i].acked) {
            acked += w->ops[i].amount;
            nacked++;
        } else {
            inflight += w->ops[i].amount;
        }
    }
    char key[32];
    s_key_of(w, "ctr", -1, key, sizeof key);
    engram_result_t *r;
    int rc = engram_counter_get(e, w->scope, key, &r);
    int64_t value = 0;
    if (rc == ENGRAM_ENOTFOUND) {
        if (nacked)
            fail_msg("%s/%s: the counter is gone; %zu adds (sum %" PRId64 ") were acknowledged",
                     w->scope, key, nacked, acked);
    } else {
        EXPECT_RC(e, 0, rc);
        value = r->number;
        engram_result_destroy(&r);
    }
    if (value < acked || value > acked + inflight)
        fail_msg("%s/%s = %" PRId64 "; acknowledged %" PRId64 ", in flight %" PRId64, w->scope, key,
                 value, acked, inflight);
    size_t steps;
    int64_t sum;
    bool unused;
    s_history(e, w->scope, key, NULL, &steps, &sum, &unused);
    if (sum != value || steps < nacked || steps > nacked + (inflight != 0))
        fail_msg("%s/%s: half-written: value %" PRId64 ", history %zu steps summing to %" PRId64
                 " (%zu acknowledged)",
                 w->scope, key, value, steps, sum, nacked);
}

static void s_verify_log(const s_worker_t *w, engram_t *e)
{
    const s_op_t *last = w->nops ? &w->ops[w->nops - 1] : NULL;
    const s_op_t *maybe = last && !last->acked && last->kind == S_LOG ? last : NULL;
    char key[32];
    s_key_of(w, "log", -1, key, sizeof key);
    engram_result_t *r;
    int rc = engram_log_range(e, w->scope, key, &r);
    size_t n = 0;
    if (rc == 0)
        n = r->nitems;
    else
        EXPECT_RC(e, ENGRAM_ENOTFOUND, rc);
    size_t at = 0;
    for (size_t i = 0; i < w->nops; i++) {
        if (w->ops[i].kind != S_LOG || !w->ops[i].acked)
            continue;
        if (at >= n || strcmp((char *)r->items[at].value, w->ops[i].text) != 0)
            fail_msg("%s/%s: entry %zu is '%s', expected the acknowledged '%s'", w->scope, key, at,
                     at < n ? (char *)r->items[at].value : "(none)", w->ops[i].text);
        at++;
    }
    if (at < n) {
        if (!maybe || at + 1 != n || strcmp((char *)r->items[at].value, maybe->text) != 0)
            fail_msg("%s/%s: unexpected entry '%s' after the acknowledged ones", w->scope, key,
                     (char *)r->items[at].value);
    }
    if (rc == 0)
        engram_result_destroy(&r);
    size_t steps;
    int64_t sum;
    bool unused;
    s_history(e, w->scope, key, NULL, &steps, &sum, &unused);
    if (steps != n)
        fail_msg("%s/%s: half-written: %zu entries, %zu history steps", w->scope, key, n, steps);
}

/*  Every key listed in the round's scope is one the load wrote, with its type, readable; and
 *  every key with an acknowledged write is listed. */
static void s_verify_listing(const s_round_t *round, engram_t *e)
{
    const char *scope = round->workers[0].scope;
    size_t listed = 0;
    char *cursor = NULL;
    bool seen_set[WORKERS] = {0}, seen_ctr[WORKERS] = {0}, seen_log[WORKERS] = {0};
    size_t puts_listed[WORKERS] = {0};
    do {
        engram_result_t *r;
        EXPECT_RC(e, 0, engram_list(e, scope, NULL, cursor, 0, &r));
        for (size_t i = 0; i < r->nitems; i++) {
            const char *key = r->items[i].key, *type = r->items[i].type;
            int t = -1, k = -1;
            char what[8] = "";
            listed++;
            if (strncmp(key, "verify/", 7) == 0)
                continue;
            if (sscanf(key, "t%d/p%d", &t, &k) == 2 && t >= 0 && t < WORKERS && k >= 0 &&
                k < round->workers[t].nkeys) {
                assert_string_equal(type, "reg");
                puts_listed[t]++;
            } else if (sscanf(key, "t%d/%7s", &t, what) == 2 && t >= 0 && t < WORKERS) {
                if (strcmp(what, "set") == 0 && strcmp(type, "set") == 0)
                    seen_set[t] = true;
                else if (strcmp(what, "ctr") == 0 && strcmp(type, "counter") == 0)
                    seen_ctr[t] = true;
                else if (strcmp(what, "log") == 0 && strcmp(type, "log") == 0)
                    seen_log[t] = true;
                else
                    fail_msg("%s: listed '%s' as %s: not something the load wrote", scope, key,
                             type);
            } else {
                fail_msg("%s: listed '%s' (%s): not something the load wrote", scope, key, type);
            }
        }
        free(cursor);
        cursor = r->next_cursor[0] ? strdup(r->next_cursor) : NULL;
        engram_result_destroy(&r);
    } while (cursor);
    for (int t = 0; t < WORKERS; t++) {
        const s_worker_t *w = &round->workers[t];
        size_t acked_keys = 0;
        bool acked_ctr = false, acked_log = false;
        for (int k = 0; k < w->nkeys; k++)
            for (size_t i = 0; i < w->nops; i++)
                if (w->ops[i].kind == S_PUT && w->ops[i].target == k && w->ops[i].acked) {
                    acked_keys++;
                    break;
                }
        for (size_t i = 0; i < w->nops; i++) {
            acked_ctr |= w->ops[i].kind == S_COUNTER && w->ops[i].acked;
            acked_log |= w->ops[i].kind == S_LOG && w->ops[i].acked;
        }
        assert_true(puts_listed[t] >= acked_keys && puts_listed[t] <= acked_keys + 1);
        assert_true(!acked_ctr || seen_ctr[t]);
        assert_true(!acked_log || seen_log[t]);
        (void)seen_set;
    }
    (void)listed;
}

/*  Verifies a round against the running node; dots->replica is the replica the round's
 *  writes were issued by. */
static void s_verify_round(const s_round_t *round, engram_t *e, s_dots_t *dots)
{
    for (int t = 0; t < WORKERS; t++) {
        const s_worker_t *w = &round->workers[t];
        s_verify_puts(w, e, dots);
        s_verify_set(w, e);
        s_verify_counter(w, e);
        s_verify_log(w, e);
    }
    s_verify_listing(round, e);
    /* The node's context covers every acknowledged token: a read's token is the scope's
     * context, and a read after the newest token answers at once. */
    engram_result_t *r;
    EXPECT_RC(e, 0, engram_list(e, round->workers[0].scope, "verify/", NULL, 1, &r));
    crdt_ctx_t *now = s_token_ctx(r->token);
    engram_result_destroy(&r);
    for (int t = 0; t < WORKERS; t++) {
        const s_worker_t *w = &round->workers[t];
        if (!w->token)
            continue;
        crdt_ctx_t *acked = s_token_ctx(w->token);
        if (!crdt_ctx_covers(now, acked))
            fail_msg("%s: the restarted node's context lost dots of an acknowledged token "
                     "(worker %d)",
                     w->scope, t);
        uint64_t node, base;
        const crdt_range_t *cloud;
        size_t ncloud;
        for (size_t i = 0; i < crdt_ctx_nodes(acked); i++) {
            crdt_ctx_node_at(acked, i, &node, &base, &cloud, &ncloud);
            s_saw_dot(dots, node, crdt_ctx_max(acked, node));
        }
        crdt_ctx_destroy(&acked);
        int64_t start = s_now_ms();
        char key[32];
        s_key_of(w, "ctr", -1, key, sizeof key);
        int rc = engram_get(e, w->scope, key, w->token, 2000, &r);
        assert_true(rc == 0 || rc == ENGRAM_ENOTFOUND || rc == ENGRAM_ETYPE);
        assert_true(s_now_ms() - start < 1500);
        engram_result_destroy(&r);
    }
    crdt_ctx_destroy(&now);
}

/*  After a restart: a new write in the round's scope takes a dot never issued before. Under
 *  sync the replica is the same and its counter moved past every dot seen; under async the
 *  replica is new. */
static void s_verify_fresh_dot(const s_round_t *round, int index, engram_t *e, const s_dots_t *dots,
                               bool new_replica)
{
    char key[32];
    snprintf(key, sizeof key, "verify/%d", index);
    engram_result_t *r;
    EXPECT_RC(e, 0, engram_put(e, round->workers[0].scope, key, "after", 5, NULL, 0, &r));
    engram_result_destroy(&r);
    EXPECT_RC(e, 0, engram_get(e, round->workers[0].scope, key, NULL, 0, &r));
    uint64_t node = r->items[0].node, n = r->items[0].n;
    engram_result_destroy(&r);
    if (new_replica) {
        assert_true(node != dots->replica);
    } else {
        assert_true(node == dots->replica);
        if (n <= dots->max_n)
            fail_msg("dot reuse: the write after the restart took (%016" PRIx64 ", %" PRIu64
                     "), but dots up to %" PRIu64 " were issued before the crash",
                     node, n, dots->max_n);
    }
}

/*  --- fixtures and tests ---------------------------------------------------------------- */

static int s_setup_sync(void **state)
{
    (void)state;
    const char *const args[] = {"--durability", "sync", NULL};
    s_node = node_harness_new(args);
    return s_node && node_harness_start(s_node) == 0 ? 0 : -1;
}

static int s_setup_async(void **state)
{
    (void)state;
    const char *const args[] = {"--durability", "async", NULL};
    s_node = node_harness_new(args);
    return s_node && node_harness_start(s_node) == 0 ? 0 : -1;
}

static int s_teardown(void **state)
{
    (void)state;
    engram_destroy(&s_conn);
    node_harness_destroy(&s_node);
    for (int i = 0; i < s_nrounds; i++)
        s_round_free(&s_rounds[i]);
    s_nrounds = 0;
    return 0;
}

/*  The verifying connection; at most one at a time, closed by the teardown if a failure cut
 *  the test short. */
static engram_t *s_verifier(void)
{
    assert_null(s_conn);
    s_conn = node_harness_connect(s_node, "verifier", "crash-user", VERIFY_TIMEOUT_MS);
    assert_non_null(s_conn);
    return s_conn;
}

static void s_disconnect(engram_t **e_p)
{
    if (*e_p == s_conn)
        s_conn = NULL;
    engram_destroy(e_p);
}

static void s_stats(engram_t *e, engram_stats_t *stats)
{
    EXPECT_RC(e, 0, engram_stats(e, stats));
}

static void test_sync_kills(void **state)
{
    (void)state;
    engram_t *e = s_verifier();
    engram_stats_t stats;
    s_stats(e, &stats);
    assert_string_equal(stats.durability, "sync");
    uint64_t replica = stats.replica_id;
    s_disconnect(&e);
    for (int i = 0; i < SYNC_ROUNDS; i++) {
        s_round_t *round = &s_rounds[s_nrounds++];
        round->async = false;
        s_load_and_stop(round, i, false);
        assert_int_equal(node_harness_start(s_node), 0);
        e = s_verifier();
        s_stats(e, &stats);
        /* A sync node proves its counters current: no new replica id after a crash. */
        assert_true(stats.replica_id == replica);
        s_dots_t dots = {replica, 0};
        s_verify_round(round, e, &dots);
        s_verify_fresh_dot(round, i, e, &dots, false);
        s_disconnect(&e);
    }
    /* Every round again, after all the crashes. */
    e = s_verifier();
    for (int i = 0; i < s_nrounds; i++) {
        s_dots_t dots = {replica, 0};
        s_verify_round(&s_rounds[i], e, &dots);
    }
    s_disconnect(&e);
    assert_int_equal(node_harness_stop(s_node), 0);
}

static void test_async_kill(void **state)
{
    (void)state;
    engram_t *e = s_verifier();
    engram_stats_t stats;
    s_stats(e, &stats);
    assert_string_equal(stats.durability, "async");
    uint64_t replica = stats.replica_id;
    s_disconnect(&e);

    /* A clean stop under async keeps the replica id. */
    assert_int_equal(node_harness_stop(s_node), 0);
    assert_int_equal(node_harness_start(s_node), 0);
    e = s_verifier();
    s_stats(e, &stats);
    assert_true(stats.replica_id == replica);
    s_disconnect(&e);

    s_round_t *round = &s_rounds[s_nrounds++];
    round->async = true;
    s_load_and_stop(round, SYNC_ROUNDS, false);
    assert_int_equal(node_harness_start(s_node), 0);
    e = s_verifier();
    s_stats(e, &stats);
    if (stats.replica_id == replica)
        fail_msg("after a crash under durability=async the node kept replica %016" PRIx64
                 ": it may issue a dot twice",
                 replica);
    s_dots_t dots = {replica, 0};
    s_verify_round(round, e, &dots);
    s_verify_fresh_dot(round, SYNC_ROUNDS, e, &dots, true);
    uint64_t new_replica = stats.replica_id;
    s_disconnect(&e);

    /* And a clean stop after that keeps the new one. */
    assert_int_equal(node_harness_stop(s_node), 0);
    assert_int_equal(node_harness_start(s_node), 0);
    e = s_verifier();
    s_stats(e, &stats);
    assert_true(stats.replica_id == new_replica);
    s_verify_round(round, e, &dots);
    s_disconnect(&e);
    assert_int_equal(node_harness_stop(s_node), 0);
}

/*  SIGTERM in the middle of the load: the node finishes its turn and exits 0 (no leak under
 *  ASan), keeps its replica id, and everything acknowledged is there. */
static void test_sigterm_under_load(void **state)
{
    (void)state;
    engram_t *e = s_verifier();
    engram_stats_t stats;
    s_stats(e, &stats);
    uint64_t replica = stats.replica_id;
    s_disconnect(&e);
    s_round_t *round = &s_rounds[s_nrounds++];
    round->async = false;
    s_load_and_stop(round, SYNC_ROUNDS + 1, true);
    assert_int_equal(node_harness_start(s_node), 0);
    e = s_verifier();
    s_stats(e, &stats);
    assert_true(stats.replica_id == replica);
    s_dots_t dots = {replica, 0};
    s_verify_round(round, e, &dots);
    s_verify_fresh_dot(round, SYNC_ROUNDS + 1, e, &dots, false);
    s_disconnect(&e);
    assert_int_equal(node_harness_stop(s_node), 0);
}

int main(void)
{
    prop_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sync_kills, s_setup_sync, s_teardown),
        cmocka_unit_test_setup_teardown(test_async_kill, s_setup_async, s_teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_under_load, s_setup_sync, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
