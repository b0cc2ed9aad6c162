/*  engram-store-catchup-bench: what node_store_gossip.delta_since costs a node that answers a
 *  peer which missed K operations of one scope, as the scope grows (the
 *  traffic and the work must track what the asker misses, not the data set).
 *
 *  One RocksDB store in a temporary directory, one shared scope of N registers (distinct keys,
 *  64-byte values) written as engramd writes them (view, mutator, node_store_apply). Then, for
 *  each K, the context is noted, K overwrites of random keys follow (each removes one entry
 *  and adds one), and delta_since(noted context) is timed (median of 5) and encoded; the
 *  whole-state answer (delta_since of the empty context, what a new node gets) is timed as the
 *  O(scope) reference. Each answer is checked against the kernel's
 *  crdt_scope_delta_since(whole state, noted context) (PASS/FAIL): same context and entries,
 *  as many removal records. Last, the garbage: node_store_garbage, node_store_gc at the
 *  store's own context (one replica: everything is stable), and the whole-state answer an
 *  asker from before the cut then gets.
 *
 *  Run (Release, not sanitized, for numbers):
 *      cmake -S . -B build-bench-rel -DCMAKE_BUILD_TYPE=Release
 *      cmake --build build-bench-rel -j2 --target engram-store-catchup-bench
 *      build-bench-rel/bench/engram-store-catchup-bench            # N = 1k and 100k
 *      build-bench-rel/bench/engram-store-catchup-bench --quick    # N = 1k, smoke run
 *  Exit status: 0 if every check passed, 1 if one failed, 2 on an error.
 *
 *  Limits: one writer, registers only, a warm block cache (the store was just written), an
 *  unsynced store (durability is not what is measured).
 */
#include <czmq.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crdt/codec.h"
#include "crdt/mvreg.h"
#include "engram/error.h"
#include "node/store/store.h"

#define SCOPE "run:bench"
#define REPS  5

static double s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void s_die(const char *what, int rc)
{
    fprintf(stderr, "store_catchup_bench: %s: %s\n", what, engram_strerror(rc));
    exit(2);
}

/*  One register write, as the server does it. */
static void s_write(node_store_t *store, unsigned k, uint64_t hlc)
{
    char key[16], value[64];
    snprintf(key, sizeof key, "k%07u", k);
    memset(value, 'a' + (int)(hlc % 26), sizeof value);
    crdt_scope_t *view = NULL, *delta = NULL;
    unsigned types;
    int rc = node_store_view(store, SCOPE, key, NODE_VIEW_OBJECT, NULL, &view, &types);
    crdt_scope_t *before = rc == 0 ? crdt_scope_dup(view, 0) : NULL;
    if (rc == 0)
        rc = crdt_mvreg_write(view, key, hlc, value, sizeof value, &delta);
    node_history_t history = {.op = "put", .agent = "bench", .user = "bench", .hlc = hlc};
    if (rc == 0)
        rc = node_store_apply(store, SCOPE, key, before, delta, &history);
    if (rc)
        s_die("write", rc);
    crdt_scope_destroy(&delta);
    crdt_scope_destroy(&before);
    crdt_scope_destroy(&view);
}

/*  Same state and as many removal records (tests/node/store/replication_test.c compares the
 *  records themselves). */
static bool s_same(const crdt_scope_t *a, const crdt_scope_t *b)
{
    return crdt_scope_equal(a, b) && crdt_scope_records(a) == crdt_scope_records(b);
}

static int s_run(unsigned n_entries, const unsigned *ks, size_t nk)
{
    char dir[] = "/tmp/engram-catchup-XXXXXX";
    if (!mkdtemp(dir))
        s_die("mkdtemp", ENGRAM_EIO);
    node_store_t *store;
    char why[256];
    int rc = node_store_open(dir, false, 0, &store, why, sizeof why);
    if (rc) {
        fprintf(stderr, "%s\n", why);
        s_die("open", rc);
    }
    node_store_set_min_free(store, 0);
    uint64_t hlc = 1;
    double t0 = s_now_us();
    for (unsigned k = 0; k < n_entries; k++)
        s_write(store, k, hlc++);
    double fill = s_now_us() - t0;
    printf("N = %u registers (filled in %.1f s, %.1f us/write)\n", n_entries, fill / 1e6,
           fill / n_entries);
    printf("  %6s  %14s  %12s  %16s  %12s  %s\n", "K", "delta_since us", "delta bytes",
           "whole-state us", "whole bytes", "check");
    int failed = 0;
    uint64_t seed = 42;
    crdt_ctx_t *empty = crdt_ctx_new();
    for (size_t i = 0; i < nk; i++) {
        crdt_ctx_t *since = crdt_ctx_dup(node_store_ctx(store, SCOPE));
        for (unsigned j = 0; j < ks[i]; j++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            s_write(store, (unsigned)((seed >> 33) % n_entries), hlc++);
        }
        double t[REPS], w[REPS];
        crdt_scope_t *delta = NULL, *whole = NULL;
        for (int r = 0; r < REPS; r++) {
            crdt_scope_destroy(&delta);
            crdt_scope_destroy(&whole);
            double a = s_now_us();
            delta = node_store_gossip.delta_since(store, SCOPE, since);
            double b = s_now_us();
            whole = node_store_gossip.delta_since(store, SCOPE, empty);
            t[r] = b - a;
            w[r] = s_now_us() - b;
        }
        if (!delta || !whole)
            s_die("delta_since", ENGRAM_ENOMEM);
        qsort(t, REPS, sizeof *t, s_cmp_double);
        qsort(w, REPS, sizeof *w, s_cmp_double);
        uint8_t *buf;
        size_t dlen = 0, wlen = 0;
        if (crdt_scope_encode(delta, &buf, &dlen) == 0)
            free(buf);
        if (crdt_scope_encode(whole, &buf, &wlen) == 0)
            free(buf);
        crdt_scope_t *expected = crdt_scope_delta_since(whole, since);
        bool ok = expected && s_same(delta, expected);
        failed |= !ok;
        printf("  %6u  %14.1f  %12zu  %16.1f  %12zu  %s\n", ks[i], t[REPS / 2], dlen, w[REPS / 2],
               wlen, ok ? "PASS" : "FAIL");
        crdt_scope_destroy(&expected);
        crdt_scope_destroy(&delta);
        crdt_scope_destroy(&whole);
        crdt_ctx_destroy(&since);
    }
    /* Garbage: everything is stable (one replica); then an asker from before the cut. */
    uint64_t pending = 0;
    node_store_gc_t done = {0, 0, false};
    double a = s_now_us();
    rc = node_store_garbage(store, SCOPE, &pending);
    double b = s_now_us();
    rc = rc ? rc : node_store_gc(store, SCOPE, node_store_ctx(store, SCOPE), UINT64_MAX, 0, &done);
    double g = s_now_us();
    if (rc)
        s_die("gc", rc);
    crdt_scope_t *whole = node_store_gossip.delta_since(store, SCOPE, empty);
    double w = s_now_us() - g;
    size_t wlen = 0;
    uint8_t *buf;
    if (whole && crdt_scope_encode(whole, &buf, &wlen) == 0)
        free(buf);
    bool ok = whole && done.dropped == pending && crdt_scope_entries(whole) == n_entries;
    failed |= !ok;
    printf("  garbage: %" PRIu64 " pending (counted in %.1f ms); gc dropped %" PRIu64
           " in %.1f ms; whole state after gc %.1f ms, %zu bytes  %s\n",
           pending, (b - a) / 1e3, done.dropped, (g - b) / 1e3, w / 1e3, wlen,
           ok ? "PASS" : "FAIL");
    crdt_scope_destroy(&whole);
    crdt_ctx_destroy(&empty);
    node_store_close(&store);
    zdir_t *d = zdir_new(dir, NULL);
    if (d)
        zdir_remove(d, true);
    zdir_destroy(&d);
    return failed;
}

int main(int argc, char **argv)
{
    zsys_handler_set(NULL);
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    static const unsigned ks[] = {1, 10, 100, 1000};
    printf("engram-store-catchup-bench (%s)\n", ENGRAM_BENCH_BUILD_TYPE);
    int failed = s_run(1000, ks, quick ? 3 : 4);
    if (!quick)
        failed |= s_run(100000, ks, 4);
    printf("%s\n", failed ? "FAIL" : "all checks PASS");
    return failed ? 1 : 0;
}
