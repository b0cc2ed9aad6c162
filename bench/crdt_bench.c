/*  engram-crdt-bench: what the CRDT kernel (crdt/) costs, in time and in bytes, and whether
 *  the answers it gives while being measured are right.
 *
 *  Everything runs in one process on in-memory replicas; nothing touches the network or disk.
 *  It prints one table per question:
 *
 *  1. Throughput per object type (reg, set, counter, log) over a realistic key space (1000
 *     keys, operations spread over them at random with a fixed seed):
 *     a. mutators on one replica, each returning its delta (ops/s);
 *     b. delta apply: those deltas joined in order into a second replica (crdt_scope_join);
 *     c. the join of two whole replica states (10k entries each) that diverged by 10%.
 *  2. Anti-entropy for a scope of 10k, 100k and 1M registers (one writer, distinct keys,
 *     64-byte values): encoded bytes of a one-entry delta, of the catch-up delta
 *     crdt_scope_delta_since(full, ctx(lagging)) for a replica that missed 1% of the writes
 *     (chosen at random with a fixed seed), and of the full state; the time to compute,
 *     encode, decode and join the catch-up; then crdt_scope_equal(lagging, full).
 *     2c: the cost of one in-order delta apply as the receiver's context holds more gaps, and
 *     of decoding such a context. 2d: the catch-up again when writes overwrite each other.
 *  3. Causal context size after 1M updates by 5 writers (200k each, interleaved, each delta
 *     joined into the other writers at once): nodes, cloud ranges and encoded bytes, which
 *     should stay a handful of bytes per writer whatever the number of updates; and an
 *     observer that gets the same deltas out of causal order, whose context has a dot cloud
 *     while it receives and none once every delta is in.
 *
 *  Every table that measures a result also checks it (PASS/FAIL): a benchmark that measures
 *  a wrong answer is worthless. Exit status: 0 if every check passed, 1 if one failed, 2 on a
 *  kernel error (the failing call is printed).
 *
 *  Run (Release or RelWithDebInfo, not sanitized, for numbers):
 *      cmake -S . -B build-bench-rel -DCMAKE_BUILD_TYPE=Release
 *      cmake --build build-bench-rel -j2 --target engram-crdt-bench
 *      build-bench-rel/bench/engram-crdt-bench              # full size, about a minute
 *      build-bench-rel/bench/engram-crdt-bench --quick      # smoke run, under a second
 *      build-bench-rel/bench/engram-crdt-bench --section 2 --sizes 10000,50000
 *  Under ASan or valgrind use --quick: everything is freed before exit.
 *
 *  Method: times come from clock_gettime(CLOCK_MONOTONIC) around the measured calls only;
 *  keys, values and operation plans are built outside the timed loops. Section 1 prints the
 *  median of 3 runs, 1c the median of its repetitions, 2b the median of 3 for everything but
 *  the join (which changes the replica), because the 2-core machine this runs on is often
 *  shared. The lagging replica of section 2 joins its deltas through a merge tree rather than
 *  one by one (same state, since join is associative; see s_merger_t and 2c for why).
 *
 *  Limits: single-threaded, in-memory only; no RocksDB, gossip or codec of values; the
 *  workloads are synthetic (fixed seeds), not traces.
 */
#include <assert.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crdt/awset.h"
#include "crdt/codec.h"
#include "crdt/counter.h"
#include "crdt/ctx.h"
#include "crdt/hlc.h"
#include "crdt/log.h"
#include "crdt/mvreg.h"
#include "crdt/scope.h"
#include "bench_util.h"
#include "engram/error.h"

#ifndef ENGRAM_BENCH_BUILD_TYPE
#define ENGRAM_BENCH_BUILD_TYPE "unknown"
#endif

#define VALUE_BYTES  64                      /* register values and log entries */
#define SET_ELEMS    32                      /* elements per set in section 1 */
#define HLC_EPOCH_MS UINT64_C(1700000000000) /* wall clock handed to the HLC */
#define SEED         UINT64_C(0x656e6772616d)
#define MAX_SIZES    8

typedef struct {
    bool quick;
    size_t ops;         /* section 1: operations per type */
    size_t keys;        /* section 1: key space */
    size_t state;       /* section 1c: entries of each diverged state */
    double join_budget; /* section 1c: seconds spent repeating one join */
    size_t sizes[MAX_SIZES];
    size_t nsizes;        /* section 2: scope sizes */
    size_t overwrite_max; /* section 2d: largest of those sizes to repeat with overwrites */
    size_t gaps[MAX_SIZES];
    size_t ngaps;      /* section 2c: cloud ranges of the receiver */
    size_t writers;    /* section 3 */
    size_t per_writer; /* section 3: operations per writer */
    size_t window;     /* section 3: observer's reorder window (deltas) */
    unsigned sections; /* bit s set: run section s */
} s_config_t;

static int s_failures;

/*  --- helpers ------------------------------------------------------------------------ */

/*  A kernel error is a bug in the kernel or in this benchmark: stop at once. */
#define CHECK(call) s_check_rc((call), #call, __LINE__)
static void s_check_rc(int rc, const char *what, int line)
{
    if (rc == 0)
        return;
    fprintf(stderr, "crdt_bench.c:%d: %s failed: %s (%d)\n", line, what, engram_strerror(rc), rc);
    exit(2);
}

#define CHECK_PTR(ptr) s_check_ptr((ptr), #ptr, __LINE__)
static void *s_check_ptr(void *ptr, const char *what, int line)
{
    if (ptr)
        return ptr;
    fprintf(stderr, "crdt_bench.c:%d: %s returned NULL\n", line, what);
    exit(2);
}

static const char *s_verdict(bool ok)
{
    if (!ok)
        s_failures++;
    return ok ? "PASS" : "FAIL";
}

static size_t s_below(uint64_t *state, size_t n)
{
    return (size_t)(bench_rand(state) % n);
}

/*  Microseconds, milliseconds or seconds, whichever reads better. */
static const char *s_dur(char *buf, size_t size, double seconds)
{
    if (seconds < 1e-3)
        snprintf(buf, size, "%.2f us", seconds * 1e6);
    else if (seconds < 1.0)
        snprintf(buf, size, "%.2f ms", seconds * 1e3);
    else
        snprintf(buf, size, "%.2f s", seconds);
    return buf;
}

static size_t s_scope_bytes(const crdt_scope_t *scope)
{
    uint8_t *buf;
    size_t len;
    CHECK(crdt_scope_encode(scope, &buf, &len));
    free(buf);
    return len;
}

static size_t s_ctx_bytes(const crdt_ctx_t *ctx)
{
    uint8_t *buf;
    size_t len;
    CHECK(crdt_ctx_encode(ctx, &buf, &len));
    free(buf);
    return len;
}

/*  A table of names ("<prefix><i>"), built before any timed loop. */
typedef struct {
    char **names;
    char *text;
    size_t n;
} s_names_t;

static s_names_t s_names_new(const char *prefix, size_t n)
{
    enum { WIDTH = 48 };
    s_names_t t = {.n = n};
    t.names = CHECK_PTR(calloc(n, sizeof *t.names));
    t.text = CHECK_PTR(calloc(n, WIDTH));
    for (size_t i = 0; i < n; i++) {
        t.names[i] = t.text + i * WIDTH;
        snprintf(t.names[i], WIDTH, "%s%05zu", prefix, i);
    }
    return t;
}

static void s_names_free(s_names_t *t)
{
    free(t->names);
    free(t->text);
    *t = (s_names_t){0};
}

/*  A 64-byte value: fixed text with the operation number stamped into it, so no two
 *  values are equal and nothing is formatted inside a timed loop. */
static void s_value_init(uint8_t *val)
{
    static const char text[] =
        "{\"text\":\"................\",\"by\":\"researcher-1\",\"topic\":\"q3\"}";
    _Static_assert(sizeof text - 1 <= VALUE_BYTES, "the value text fits");
    memset(val, ' ', VALUE_BYTES);
    memcpy(val, text, sizeof text - 1);
}

static void s_value_stamp(uint8_t *val, uint64_t i)
{
    static const char hex[] = "0123456789abcdef";
    for (int d = 15; d >= 0; d--, i >>= 4)
        val[9 + d] = (uint8_t)hex[i & 15];
}

static uint64_t s_hlc(crdt_hlc_t *clock, uint64_t i)
{
    return crdt_hlc_now(clock, HLC_EPOCH_MS + i / 16);
}

/*  Joins a stream of deltas through a MERGE_FANIN-ary tree: level 0 joins MERGE_FANIN
 *  consecutive deltas in order, level l joins MERGE_FANIN consecutive level l-1 results.
 *  Join is associative and commutative, so the result equals joining the deltas one by one
 *  in order; but joining them one by one into the replica would be far slower once its
 *  context has many gaps, because the kernel's cost of a join grows with the square of the
 *  receiver's cloud (see section 2c). Inside the tree the clouds stay small, and each entry
 *  is copied once per level. */
#define MERGE_FANIN  256
#define MERGE_LEVELS 8

typedef struct {
    crdt_scope_t *acc[MERGE_LEVELS];
    size_t count[MERGE_LEVELS];
} s_merger_t;

static void s_merger_add(s_merger_t *m, crdt_scope_t **delta_p)
{
    crdt_scope_t *carry = *delta_p;
    *delta_p = NULL;
    for (size_t l = 0; l < MERGE_LEVELS; l++) {
        if (!m->acc[l]) {
            m->acc[l] = carry;
        } else {
            CHECK(crdt_scope_join(m->acc[l], carry));
            crdt_scope_destroy(&carry);
        }
        if (++m->count[l] < MERGE_FANIN)
            return;
        carry = m->acc[l];
        m->acc[l] = NULL;
        m->count[l] = 0;
    }
    assert(!"merge tree overflow");
}

static void s_merger_finish(s_merger_t *m, crdt_scope_t *into)
{
    for (size_t l = MERGE_LEVELS; l-- > 0;) {
        if (m->acc[l]) {
            CHECK(crdt_scope_join(into, m->acc[l]));
            crdt_scope_destroy(&m->acc[l]);
            m->count[l] = 0;
        }
    }
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/*  The median of n samples (sorts them). The machine may be shared: a median of a few runs
 *  is steadier than one run or a mean. */
static double s_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, s_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*  --- section 1: throughput per type ------------------------------------------------- */

typedef struct {
    uint32_t key;
    uint32_t arg; /* set: element; counter: amount */
    bool add;     /* set: add or remove */
} s_op_t;

static const char *s_type_name(crdt_type_id_t type)
{
    switch (type) {
    case CRDT_REG:
        return "reg";
    case CRDT_SET:
        return "set";
    case CRDT_COUNTER:
        return "counter";
    case CRDT_LOG:
        return "log";
    }
    return "?";
}

/*  A random plan of n operations over nkeys keys. Sets remove only elements present (the
 *  plan tracks presence: one replica executes it), about one op in four. */
static s_op_t *s_plan(crdt_type_id_t type, size_t n, size_t nkeys, uint64_t *rng)
{
    s_op_t *ops = CHECK_PTR(calloc(n, sizeof *ops));
    bool *present = type == CRDT_SET ? CHECK_PTR(calloc(nkeys * SET_ELEMS, 1)) : NULL;
    for (size_t i = 0; i < n; i++) {
        ops[i].key = (uint32_t)s_below(rng, nkeys);
        if (type == CRDT_SET) {
            ops[i].arg = (uint32_t)s_below(rng, SET_ELEMS);
            bool *p = &present[ops[i].key * SET_ELEMS + ops[i].arg];
            ops[i].add = !*p || s_below(rng, 2) == 0;
            *p = ops[i].add;
        } else if (type == CRDT_COUNTER) {
            ops[i].arg = 1 + (uint32_t)s_below(rng, 10);
        }
    }
    free(present);
    return ops;
}

typedef struct {
    const s_names_t *keys;
    const s_names_t *elems;
    crdt_hlc_t clock;
    uint8_t val[VALUE_BYTES];
} s_workload_t;

static int s_do(crdt_type_id_t type, crdt_scope_t *r, s_workload_t *w, const s_op_t *op, uint64_t i,
                crdt_scope_t **delta_p)
{
    const char *key = w->keys->names[op->key];
    switch (type) {
    case CRDT_REG:
        s_value_stamp(w->val, i);
        return crdt_mvreg_write(r, key, s_hlc(&w->clock, i), w->val, VALUE_BYTES, delta_p);
    case CRDT_SET:
        if (op->add)
            return crdt_awset_add(r, key, w->elems->names[op->arg], NULL, 0, delta_p);
        return crdt_awset_remove(r, key, w->elems->names[op->arg], delta_p);
    case CRDT_COUNTER:
        return crdt_counter_add(r, key, "", op->arg, delta_p);
    case CRDT_LOG:
        s_value_stamp(w->val, i);
        return crdt_log_append(r, key, s_hlc(&w->clock, i), w->val, VALUE_BYTES, delta_p);
    }
    return ENGRAM_EINVAL;
}

static const char *s_workload_text(crdt_type_id_t type)
{
    switch (type) {
    case CRDT_REG:
        return "write 64 B value";
    case CRDT_SET:
        return "add / remove of 32 elems";
    case CRDT_COUNTER:
        return "add 1..10";
    case CRDT_LOG:
        return "append 64 B entry";
    }
    return "?";
}

#define RUNS 3 /* section 1a/1b: runs per type; the median is printed */

static void s_throughput(const s_config_t *cfg, crdt_type_id_t type, const s_names_t *elems)
{
    uint64_t rng = SEED + type;
    s_names_t keys = s_names_new("user:alice/mem-", cfg->keys);
    s_op_t *ops = s_plan(type, cfg->ops, cfg->keys, &rng);
    crdt_scope_t **deltas = CHECK_PTR(calloc(cfg->ops, sizeof *deltas));
    double mutate_s[RUNS], apply_s[RUNS];
    size_t entries = 0;
    bool same = true;
    for (size_t run = 0; run < RUNS; run++) {
        s_workload_t w = {.keys = &keys, .elems = elems};
        s_value_init(w.val);
        crdt_scope_t *a = CHECK_PTR(crdt_scope_new(1));
        crdt_scope_t *b = CHECK_PTR(crdt_scope_new(2));
        double t0 = bench_now();
        for (size_t i = 0; i < cfg->ops; i++)
            CHECK(s_do(type, a, &w, &ops[i], i, &deltas[i]));
        double t1 = bench_now();
        for (size_t i = 0; i < cfg->ops; i++)
            CHECK(crdt_scope_join(b, deltas[i]));
        double t2 = bench_now();
        mutate_s[run] = t1 - t0;
        apply_s[run] = t2 - t1;
        same = same && crdt_scope_equal(a, b) &&
               crdt_scope_digest(a) == crdt_scope_digest_recompute(b);
        entries = crdt_scope_entries(a);
        for (size_t i = 0; i < cfg->ops; i++)
            crdt_scope_destroy(&deltas[i]);
        crdt_scope_destroy(&a);
        crdt_scope_destroy(&b);
    }
    double m = s_median(mutate_s, RUNS), ap = s_median(apply_s, RUNS);
    char r1[16], r2[16], d1[16], d2[16];
    printf("  %-8s %-26s %8zu %9s %10s %9s %10s %8zu  %s\n", s_type_name(type),
           s_workload_text(type), cfg->ops, bench_si(r1, sizeof r1, cfg->ops / m),
           s_dur(d1, sizeof d1, m / cfg->ops), bench_si(r2, sizeof r2, cfg->ops / ap),
           s_dur(d2, sizeof d2, ap / cfg->ops), entries, s_verdict(same));
    free(deltas);
    free(ops);
    s_names_free(&keys);
}

/*  Two replicas share a base of cfg->state entries, then each applies state/10 operations
 *  of its own; the join of the two whole states is timed (into a fresh copy each time). */
static void s_state_join(const s_config_t *cfg, crdt_type_id_t type, const s_names_t *elems)
{
    uint64_t rng = SEED * 3 + type;
    /* reg and counter: one entry per key; set and log: ten entries per key. */
    size_t per_key = (type == CRDT_SET || type == CRDT_LOG) ? 10 : 1;
    size_t nkeys = cfg->state / per_key;
    s_names_t keys = s_names_new("run:q3-proposal/obj-", nkeys);
    s_workload_t w = {.keys = &keys, .elems = elems};
    s_value_init(w.val);

    crdt_scope_t *a = CHECK_PTR(crdt_scope_new(1));
    for (size_t i = 0; i < nkeys * per_key; i++) {
        s_op_t op = {.key = (uint32_t)(i % nkeys), .arg = (uint32_t)(i / nkeys), .add = true};
        if (type == CRDT_COUNTER)
            op.arg = 1;
        CHECK(s_do(type, a, &w, &op, i, NULL));
    }
    crdt_scope_t *b = CHECK_PTR(crdt_scope_dup(a, 2));
    crdt_scope_t *sides[2] = {a, b};
    size_t diverge = cfg->state / 10;
    for (size_t s = 0; s < 2; s++) {
        for (size_t i = 0; i < diverge; i++) {
            s_op_t op = {.key = (uint32_t)s_below(&rng, nkeys), .add = true};
            op.arg = type == CRDT_COUNTER ? 1 : (uint32_t)s_below(&rng, 2 * per_key);
            if (type == CRDT_SET && op.arg < per_key)
                op.add = !crdt_awset_contains(sides[s], keys.names[op.key], elems->names[op.arg]);
            CHECK(s_do(type, sides[s], &w, &op, cfg->state + s * diverge + i, NULL));
        }
    }

    enum { MAX_REPS = 1000 };
    double spent = 0, times[MAX_REPS];
    size_t reps = 0;
    while (reps < 5 || (spent < cfg->join_budget && reps < MAX_REPS)) {
        crdt_scope_t *c = CHECK_PTR(crdt_scope_dup(a, 3));
        double t0 = bench_now();
        CHECK(crdt_scope_join(c, b));
        times[reps] = bench_now() - t0;
        spent += times[reps++];
        crdt_scope_destroy(&c);
    }
    double join_s = s_median(times, reps);
    crdt_scope_t *ab = CHECK_PTR(crdt_scope_dup(a, 3));
    crdt_scope_t *ba = CHECK_PTR(crdt_scope_dup(b, 3));
    CHECK(crdt_scope_join(ab, b));
    CHECK(crdt_scope_join(ba, a));
    bool commutes = crdt_scope_equal(ab, ba);

    char r1[16], r2[16], d1[16];
    printf("  %-8s %9zu %9zu %9zu %9s %10s %11s %8zu  %s\n", s_type_name(type),
           crdt_scope_entries(a), crdt_scope_entries(b), crdt_scope_entries(ab),
           bench_si(r1, sizeof r1, 1 / join_s), s_dur(d1, sizeof d1, join_s),
           bench_si(r2, sizeof r2, crdt_scope_entries(b) / join_s), reps, s_verdict(commutes));
    crdt_scope_destroy(&ab);
    crdt_scope_destroy(&ba);
    crdt_scope_destroy(&a);
    crdt_scope_destroy(&b);
    s_names_free(&keys);
}

static void s_section1(const s_config_t *cfg)
{
    static const crdt_type_id_t types[] = {CRDT_REG, CRDT_SET, CRDT_COUNTER, CRDT_LOG};
    s_names_t elems = s_names_new("tag-", 2 * SET_ELEMS);
    printf("\n1. Throughput per type (one replica mutates, a second joins its deltas in order)\n"
           "   %zu ops per type over %zu keys, chosen at random (seed fixed); set: ~25%% of ops\n"
           "   remove a present element. Median of %d runs.\n\n",
           cfg->ops, cfg->keys, RUNS);
    printf("  %-8s %-26s %8s %9s %10s %9s %10s %8s  %s\n", "type", "op", "ops", "mutator", "per op",
           "apply", "per op", "entries", "b == a");
    printf("  %-8s %-26s %8s %9s %10s %9s\n", "", "", "", "ops/s", "", "ops/s");
    for (size_t t = 0; t < sizeof types / sizeof *types; t++)
        s_throughput(cfg, types[t], &elems);

    printf("\n1c. Join of two whole states: a common base of %zu entries, then each replica "
           "applies %zu\n    ops of its own; median time of crdt_scope_join(copy of A, B) over the "
           "reps\n\n",
           cfg->state, cfg->state / 10);
    printf("  %-8s %9s %9s %9s %9s %10s %11s %8s  %s\n", "type", "A entries", "B entries", "joined",
           "joins/s", "per join", "B entries/s", "reps", "A⊔B == B⊔A");
    for (size_t t = 0; t < sizeof types / sizeof *types; t++)
        s_state_join(cfg, types[t], &elems);
    s_names_free(&elems);
}

/*  --- section 2: anti-entropy sizes -------------------------------------------------- */

typedef struct {
    size_t n, keys, missed, lag_cloud, lag_ctx_bytes, heap_per_entry;
    size_t one_bytes, catchup_bytes, catchup_entries, catchup_records, full_bytes;
    size_t full_entries, lag_entries;
    double write_s, lag_s, since_s, encode_s, decode_s, join_s;
    bool ctx_equal_before, equal;
} s_catchup_t;

/*  Heap bytes in use (glibc); 0 where the allocator does not say (e.g. under ASan). */
static size_t s_heap_in_use(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    return mallinfo2().uordblks;
#else
    return 0;
#endif
}

/*  One writer does n reg writes: to n distinct keys when keys == n, else to keys chosen at
 *  random among `keys` (overwrites). A lagging replica joins the deltas of all but a random
 *  1% of the writes, then catches up with crdt_scope_delta_since. */
static s_catchup_t s_catchup(size_t n, size_t keys)
{
    s_catchup_t res = {.n = n, .keys = keys, .missed = n / 100};
    uint64_t rng = SEED + n + keys;
    /* Exactly n/100 missed operations. Without overwrites no op depends on another's
     * removals, so any 1% may go missing (uniformly at random, Floyd's sampling). With
     * overwrites the lagging replica must be causally consistent, as every replica that
     * applies pushes only when their dependencies are met is (crdt_scope_delta_since's
     * precondition): it misses the writer's last 1%. */
    bool *missed = CHECK_PTR(calloc(n, 1));
    for (size_t j = n - res.missed; j < n; j++) {
        size_t t = keys == n ? s_below(&rng, j + 1) : j;
        missed[missed[t] ? j : t] = true;
    }
    crdt_scope_t *full = CHECK_PTR(crdt_scope_new(1));
    crdt_scope_t *lag = CHECK_PTR(crdt_scope_new(2));
    crdt_scope_t *one = NULL;
    s_merger_t merger = {0};
    crdt_hlc_t clock = {0};
    uint8_t val[VALUE_BYTES];
    s_value_init(val);

    for (size_t i = 0; i < n; i++) {
        char key[48];
        snprintf(key, sizeof key, "user:alice/mem-%07zu", keys == n ? i : s_below(&rng, keys));
        s_value_stamp(val, i);
        crdt_scope_t *delta;
        double t0 = bench_now();
        CHECK(crdt_mvreg_write(full, key, s_hlc(&clock, i), val, VALUE_BYTES, &delta));
        double t1 = bench_now();
        res.write_s += t1 - t0;
        if (i == n - 1) { /* the last delta: the largest dot, the most bytes */
            one = delta;
            if (missed[i])
                continue;
            delta = CHECK_PTR(crdt_scope_dup(one, 0));
            t1 = bench_now();
        } else if (missed[i]) {
            crdt_scope_destroy(&delta);
            continue;
        }
        s_merger_add(&merger, &delta);
        res.lag_s += bench_now() - t1;
    }
    double t0 = bench_now();
    s_merger_finish(&merger, lag);
    res.lag_s += bench_now() - t0;
    res.lag_cloud = crdt_ctx_cloud_ranges(crdt_scope_ctx(lag));
    res.lag_ctx_bytes = s_ctx_bytes(crdt_scope_ctx(lag));
    res.ctx_equal_before = crdt_ctx_equal(crdt_scope_ctx(lag), crdt_scope_ctx(full));

    /* Compute, encode and decode are repeated (median of 3); the join changes the lagging
     * replica, so it runs once. */
    double since[3], encode[3], decode[3];
    crdt_scope_t *catchup = NULL, *decoded = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    for (size_t r = 0; r < 3; r++) {
        crdt_scope_destroy(&catchup);
        crdt_scope_destroy(&decoded);
        free(buf);
        t0 = bench_now();
        catchup = CHECK_PTR(crdt_scope_delta_since(full, crdt_scope_ctx(lag)));
        double t1 = bench_now();
        CHECK(crdt_scope_encode(catchup, &buf, &len));
        double t2 = bench_now();
        CHECK(crdt_scope_decode(buf, len, 0, &decoded));
        double t3 = bench_now();
        since[r] = t1 - t0;
        encode[r] = t2 - t1;
        decode[r] = t3 - t2;
    }
    t0 = bench_now();
    CHECK(crdt_scope_join(lag, decoded));
    res.join_s = bench_now() - t0;
    res.since_s = s_median(since, 3);
    res.encode_s = s_median(encode, 3);
    res.decode_s = s_median(decode, 3);
    res.catchup_bytes = len;
    res.catchup_entries = crdt_scope_entries(catchup);
    res.catchup_records = crdt_scope_records(catchup);
    res.one_bytes = s_scope_bytes(one);
    res.full_bytes = s_scope_bytes(full);
    res.full_entries = crdt_scope_entries(full);
    res.lag_entries = crdt_scope_entries(lag);
    res.equal =
        crdt_scope_equal(lag, full) && crdt_scope_digest(lag) == crdt_scope_digest_recompute(lag);
    if (keys == n) /* no overwrites: the catch-up is exactly the missed writes */
        res.equal = res.equal && crdt_scope_entries(catchup) == res.missed;
    free(buf);
    crdt_scope_destroy(&decoded);
    crdt_scope_destroy(&catchup);
    crdt_scope_destroy(&one);
    crdt_scope_destroy(&lag);
    size_t heap = s_heap_in_use();
    crdt_scope_destroy(&full);
    size_t freed = heap - s_heap_in_use();
    res.heap_per_entry = heap && freed < heap ? freed / res.full_entries : 0;
    free(missed);
    return res;
}

/*  How long one in-order delta apply takes when the receiver's context has `gaps` cloud
 *  ranges (it missed every other operation of the writer), and how long decoding that
 *  context takes. */
static void s_gap_apply(size_t gaps, double budget)
{
    crdt_scope_t *writer = CHECK_PTR(crdt_scope_new(1));
    crdt_scope_t *rcv = CHECK_PTR(crdt_scope_new(2));
    crdt_hlc_t clock = {0};
    uint8_t val[VALUE_BYTES];
    s_value_init(val);
    s_merger_t merger = {0};
    size_t pre = gaps ? 2 * gaps : 1000, i = 0;
    for (; i < pre; i++) {
        char key[48];
        snprintf(key, sizeof key, "user:alice/mem-%07zu", i);
        s_value_stamp(val, i);
        crdt_scope_t *delta;
        CHECK(crdt_mvreg_write(writer, key, s_hlc(&clock, i), val, VALUE_BYTES, &delta));
        if (gaps && i % 2 == 0)
            crdt_scope_destroy(&delta); /* dots 1, 3, 5, ... never arrive */
        else
            s_merger_add(&merger, &delta);
    }
    s_merger_finish(&merger, rcv);
    size_t cloud = crdt_ctx_cloud_ranges(crdt_scope_ctx(rcv));

    uint8_t *buf;
    size_t len;
    CHECK(crdt_ctx_encode(crdt_scope_ctx(rcv), &buf, &len));
    double t0 = bench_now();
    crdt_ctx_t *decoded;
    CHECK(crdt_ctx_decode(buf, len, &decoded));
    double decode_s = bench_now() - t0;
    bool same_ctx = crdt_ctx_equal(decoded, crdt_scope_ctx(rcv));
    crdt_ctx_destroy(&decoded);
    free(buf);

    double spent = 0;
    size_t joins = 0;
    while (joins < 3 || (spent < budget && joins < 1000)) {
        char key[48];
        snprintf(key, sizeof key, "user:alice/mem-%07zu", i);
        s_value_stamp(val, i);
        crdt_scope_t *delta;
        CHECK(crdt_mvreg_write(writer, key, s_hlc(&clock, i), val, VALUE_BYTES, &delta));
        i++;
        t0 = bench_now();
        CHECK(crdt_scope_join(rcv, delta));
        spent += bench_now() - t0;
        joins++;
        crdt_scope_destroy(&delta);
    }
    char r1[16], d1[16], d2[16];
    printf("  %12zu %10zu %9s %12s %8zu %14s %9zu  %s\n", cloud, crdt_scope_entries(rcv),
           bench_si(r1, sizeof r1, joins / spent), s_dur(d1, sizeof d1, spent / joins), joins,
           s_dur(d2, sizeof d2, decode_s), len, s_verdict(same_ctx));
    crdt_scope_destroy(&writer);
    crdt_scope_destroy(&rcv);
}

static void s_section2(const s_config_t *cfg)
{
    printf("\n2. Anti-entropy: one writer, reg writes to distinct keys (\"user:alice/mem-NNNNNNN\","
           "\n   64 B values), so the scope has one entry per write. The lagging replica missed "
           "1%% of\n   the writes (random, seed fixed) and joined the deltas of the other 99%%.\n"
           "   catch-up = crdt_scope_delta_since(full, ctx(lagging)). heap/entry: bytes the full "
           "replica\n   held in memory per entry (glibc mallinfo2).\n\n");
    printf("  %9s %9s %10s %11s %9s %13s %9s %8s %10s\n", "entries", "one-entry", "catch-up",
           "full state", "full/one", "full/catch-up", "lag cloud", "lag ctx", "heap/entry");
    printf("  %9s %9s %10s %11s %9s %13s %9s %8s %10s\n", "", "bytes", "bytes", "bytes", "", "",
           "ranges", "bytes", "bytes");
    s_catchup_t res[MAX_SIZES];
    for (size_t s = 0; s < cfg->nsizes; s++) {
        res[s] = s_catchup(cfg->sizes[s], cfg->sizes[s]);
        const s_catchup_t *r = &res[s];
        char heap[24] = "n/a";
        if (r->heap_per_entry)
            snprintf(heap, sizeof heap, "%zu", r->heap_per_entry);
        printf("  %9zu %9zu %10zu %11zu %9.0f %13.1f %9zu %8zu %10s\n", r->n, r->one_bytes,
               r->catchup_bytes, r->full_bytes, (double)r->full_bytes / r->one_bytes,
               (double)r->full_bytes / r->catchup_bytes, r->lag_cloud, r->lag_ctx_bytes, heap);
        fflush(stdout);
    }

    printf("\n2b. Catch-up timing: compute (delta_since), encode, decode (median of 3), join into "
           "the\n    lagging replica; then crdt_scope_equal(lagging, full)\n\n");
    printf("  %9s %9s %10s %10s %10s %10s %10s %10s %10s  %s\n", "entries", "catch-up", "compute",
           "encode", "decode", "join", "total", "writes", "joins", "lag == full");
    printf("  %9s %9s %10s %10s %10s %10s %10s %10s %10s\n", "", "entries", "", "", "", "", "",
           "(full)", "(lagging)");
    for (size_t s = 0; s < cfg->nsizes; s++) {
        const s_catchup_t *r = &res[s];
        char d1[16], d2[16], d3[16], d4[16], d5[16], d6[16], d7[16];
        printf("  %9zu %9zu %10s %10s %10s %10s %10s %10s %10s  %s\n", r->n, r->catchup_entries,
               s_dur(d1, sizeof d1, r->since_s), s_dur(d2, sizeof d2, r->encode_s),
               s_dur(d3, sizeof d3, r->decode_s), s_dur(d4, sizeof d4, r->join_s),
               s_dur(d5, sizeof d5, r->since_s + r->encode_s + r->decode_s + r->join_s),
               s_dur(d6, sizeof d6, r->write_s), s_dur(d7, sizeof d7, r->lag_s),
               s_verdict(r->equal));
    }
    printf("\n    writes: the n mutator calls on the full replica; joins: the 99%% of their "
           "deltas joined\n    into the lagging replica (through a %d-ary merge tree: see "
           "s_merger_t)\n",
           MERGE_FANIN);

    printf("\n2c. One in-order delta apply (a reg write to a new key) into a replica whose "
           "context has\n    N cloud ranges (it missed every other write); and "
           "crdt_ctx_decode of that context\n\n");
    printf("  %12s %10s %9s %12s %8s %14s %9s  %s\n", "cloud ranges", "entries", "joins/s",
           "per join", "joins", "ctx decode", "ctx bytes", "decode == ctx");
    for (size_t g = 0; g < cfg->ngaps; g++) {
        s_gap_apply(cfg->gaps[g], cfg->quick ? 0.05 : 0.5);
        fflush(stdout);
    }

    printf("\n2d. The same catch-up when writes overwrite: reg writes to keys chosen at random, "
           "about\n    10 writes per key, so most ops remove the entry an earlier op wrote; "
           "the lagging\n    replica is a causal prefix: it missed the writer's last 1%%\n\n");
    printf("  %9s %8s %8s %10s %10s %10s %12s %12s  %s\n", "writes", "keys", "missed", "catch-up",
           "catch-up", "catch-up", "ctx equal", "entries", "lag == full");
    printf("  %9s %8s %8s %10s %10s %10s %12s %12s\n", "", "", "", "entries", "records", "bytes",
           "before", "lag / full");
    for (size_t s = 0; s < cfg->nsizes && cfg->sizes[s] <= cfg->overwrite_max; s++) {
        s_catchup_t r = s_catchup(cfg->sizes[s], cfg->sizes[s] / 10);
        char entries[32];
        snprintf(entries, sizeof entries, "%zu / %zu", r.lag_entries, r.full_entries);
        printf("  %9zu %8zu %8zu %10zu %10zu %10zu %12s %12s  %s\n", r.n, r.keys, r.missed,
               r.catchup_entries, r.catchup_records, r.catchup_bytes,
               r.ctx_equal_before ? "yes" : "no", entries, s_verdict(r.equal));
        fflush(stdout);
    }
}

/*  --- section 3: context size --------------------------------------------------------- */

/*  The stable cut the observer may prune to: the version-vector part both have. */
static crdt_ctx_t *s_vv_meet(const crdt_ctx_t *a, const crdt_ctx_t *b)
{
    crdt_ctx_t *cut = CHECK_PTR(crdt_ctx_new());
    for (size_t i = 0; i < crdt_ctx_nodes(a); i++) {
        uint64_t node, base;
        const crdt_range_t *cloud;
        size_t ncloud;
        crdt_ctx_node_at(a, i, &node, &base, &cloud, &ncloud);
        uint64_t other = crdt_ctx_base(b, node);
        uint64_t m = base < other ? base : other;
        if (m)
            CHECK(crdt_ctx_insert_range(cut, node, 1, m));
    }
    return cut;
}

static void s_section3(const s_config_t *cfg)
{
    enum { REG_KEYS = 1000, COUNTER_KEYS = 100, PRUNE_EVERY = 1000 };
    size_t nw = cfg->writers, total = nw * cfg->per_writer;
    printf("\n3. Causal context after %zu updates by %zu writers (%zu each, round robin; each "
           "delta is\n   joined into the other writers at once). Ops: 70%% reg writes over %d "
           "keys, 30%% counter\n   adds over %d keys; removal records pruned to the stable cut "
           "every %d rounds.\n   An observer gets the same deltas out of causal order: each "
           "delivery picks one at\n   random from the last %zu produced.\n\n",
           total, nw, cfg->per_writer, REG_KEYS, COUNTER_KEYS, PRUNE_EVERY, cfg->window);
    s_names_t regs = s_names_new("team:infra/fact-", REG_KEYS);
    s_names_t counters = s_names_new("team:infra/count-", COUNTER_KEYS);
    crdt_scope_t **w = CHECK_PTR(calloc(nw, sizeof *w));
    for (size_t i = 0; i < nw; i++)
        w[i] = CHECK_PTR(crdt_scope_new(i + 1));
    crdt_scope_t *obs = CHECK_PTR(crdt_scope_new(nw + 1));
    crdt_scope_t **window = CHECK_PTR(calloc(cfg->window, sizeof *window));
    size_t nwindow = 0, delivered = 0, max_cloud = 0, cloudy = 0;
    uint64_t rng = SEED * 7;
    crdt_hlc_t *clocks = CHECK_PTR(calloc(nw, sizeof *clocks));
    uint8_t val[VALUE_BYTES];
    s_value_init(val);

    printf("  %10s %7s %13s %10s %12s  |  %s\n", "updates", "nodes", "cloud ranges", "ctx bytes",
           "bytes/writer", "observer: cloud ranges now");
    size_t next_report = 1000;
    double exchange_s = 0, observe_s = 0;
    double t_start = bench_now();
    for (size_t op = 0; op < total; op++) {
        size_t from = op % nw;
        crdt_scope_t *delta;
        double t0 = bench_now();
        if (s_below(&rng, 10) < 7) {
            s_value_stamp(val, op);
            CHECK(crdt_mvreg_write(w[from], regs.names[s_below(&rng, REG_KEYS)],
                                   s_hlc(&clocks[from], op), val, VALUE_BYTES, &delta));
        } else {
            CHECK(crdt_counter_add(w[from], counters.names[s_below(&rng, COUNTER_KEYS)], "", 1,
                                   &delta));
        }
        for (size_t i = 0; i < nw; i++)
            if (i != from)
                CHECK(crdt_scope_join(w[i], delta));
        double t1 = bench_now();
        exchange_s += t1 - t0;

        /* The observer: the window holds the newest deltas; deliver a random one. */
        if (nwindow < cfg->window) {
            window[nwindow++] = delta;
        } else {
            size_t pick = s_below(&rng, nwindow);
            CHECK(crdt_scope_join(obs, window[pick]));
            crdt_scope_destroy(&window[pick]);
            window[pick] = delta;
            delivered++;
            size_t cloud = crdt_ctx_cloud_ranges(crdt_scope_ctx(obs));
            max_cloud = cloud > max_cloud ? cloud : max_cloud;
            cloudy += cloud > 0;
        }
        observe_s += bench_now() - t1;

        if ((op + 1) % (PRUNE_EVERY * nw) == 0) {
            /* Every writer has every op so far: its context is the stable cut. */
            crdt_ctx_t *cut = CHECK_PTR(crdt_ctx_dup(crdt_scope_ctx(w[0])));
            for (size_t i = 0; i < nw; i++)
                CHECK(crdt_scope_prune(w[i], cut));
            crdt_ctx_t *obs_cut = s_vv_meet(cut, crdt_scope_ctx(obs));
            CHECK(crdt_scope_prune(obs, obs_cut));
            crdt_ctx_destroy(&obs_cut);
            crdt_ctx_destroy(&cut);
        }
        if (op + 1 == next_report || op + 1 == total) {
            const crdt_ctx_t *ctx = crdt_scope_ctx(w[0]);
            size_t bytes = s_ctx_bytes(ctx);
            printf("  %10zu %7zu %13zu %10zu %12.1f  |  %zu\n", op + 1, crdt_ctx_nodes(ctx),
                   crdt_ctx_cloud_ranges(ctx), bytes, (double)bytes / crdt_ctx_nodes(ctx),
                   crdt_ctx_cloud_ranges(crdt_scope_ctx(obs)));
            next_report *= 10;
        }
    }
    double t0 = bench_now();
    /* Every writer has finished: the window drains in random order. */
    while (nwindow) {
        size_t pick = s_below(&rng, nwindow);
        CHECK(crdt_scope_join(obs, window[pick]));
        crdt_scope_destroy(&window[pick]);
        window[pick] = window[--nwindow];
        delivered++;
        size_t cloud = crdt_ctx_cloud_ranges(crdt_scope_ctx(obs));
        max_cloud = cloud > max_cloud ? cloud : max_cloud;
        cloudy += cloud > 0;
    }
    observe_s += bench_now() - t0;
    double elapsed = bench_now() - t_start;

    const crdt_ctx_t *ctx = crdt_scope_ctx(w[0]);
    bool writers_equal = true;
    for (size_t i = 1; i < nw; i++)
        writers_equal = writers_equal && crdt_scope_equal(w[0], w[i]);
    bool full_vv = crdt_ctx_is_vv(ctx) && crdt_ctx_nodes(ctx) == nw && crdt_ctx_count(ctx) == total;
    size_t final_cloud = crdt_ctx_cloud_ranges(crdt_scope_ctx(obs));
    bool obs_equal = crdt_scope_equal(obs, w[0]);
    char r1[16], r2[16];
    printf("\n  writers: %zu updates, %zu delta joins in %.2f s (%s updates/s, %s joins/s "
           "incl. the mutators)\n",
           total, total * (nw - 1), exchange_s, bench_si(r1, sizeof r1, total / exchange_s),
           bench_si(r2, sizeof r2, total * (nw - 1) / exchange_s));
    printf("  context of writer 1: %zu nodes, %" PRIu64 " dots, %zu cloud ranges, %zu bytes "
           "encoded (%zu live entries)\n",
           crdt_ctx_nodes(ctx), crdt_ctx_count(ctx), crdt_ctx_cloud_ranges(ctx), s_ctx_bytes(ctx),
           crdt_scope_entries(w[0]));
    printf("  context is a version vector with one entry per writer covering all %zu "
           "updates: %s\n",
           total, s_verdict(full_vv));
    printf("  all writers equal: %s\n", s_verdict(writers_equal));
    printf("  observer: %zu out-of-order deliveries in %.2f s; cloud ranges while receiving: "
           "max %zu,\n            non-zero after %zu of %zu deliveries (%.0f%%); after all "
           "are in: %zu  %s\n",
           delivered, observe_s, max_cloud, cloudy, delivered, 100.0 * cloudy / delivered,
           final_cloud, s_verdict(final_cloud == 0 && max_cloud > 0));
    printf("  observer equals writer 1: %s   (section total %.1f s)\n", s_verdict(obs_equal),
           elapsed);

    for (size_t i = 0; i < nw; i++)
        crdt_scope_destroy(&w[i]);
    free(w);
    free(window);
    free(clocks);
    crdt_scope_destroy(&obs);
    s_names_free(&regs);
    s_names_free(&counters);
}

/*  --- main ---------------------------------------------------------------------------- */

static void s_usage(FILE *out)
{
    fprintf(out, "usage: engram-crdt-bench [--quick] [--sizes N[,N...]] [--section 1|2|3]...\n"
                 "  --quick     small sizes: a smoke run for sanitizers and CI\n"
                 "  --sizes     scope sizes for section 2, each at least 100 (default "
                 "10000,100000,1000000;\n"
                 "              2d repeats those up to 100000 with overwrites)\n"
                 "  --section   run only this section (repeatable; default all three)\n");
}

static bool s_parse_sizes(s_config_t *cfg, const char *text)
{
    cfg->nsizes = 0;
    while (*text) {
        char *end;
        unsigned long long v = strtoull(text, &end, 10);
        if (end == text || v < 100 || cfg->nsizes == MAX_SIZES)
            return false;
        cfg->sizes[cfg->nsizes++] = (size_t)v;
        text = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return false;
    }
    return cfg->nsizes > 0;
}

int main(int argc, char **argv)
{
    s_config_t cfg = {
        .ops = 200000,
        .keys = 1000,
        .state = 10000,
        .join_budget = 1.0,
        .sizes = {10000, 100000, 1000000},
        .nsizes = 3,
        .overwrite_max = 100000,
        .gaps = {0, 10, 100, 1000, 10000},
        .ngaps = 5,
        .writers = 5,
        .per_writer = 200000,
        .window = 64,
        .sections = 0xe,
    };
    const char *sizes = NULL;
    bool only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            cfg.quick = true;
        } else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
            sizes = argv[++i];
        } else if (strncmp(argv[i], "--sizes=", 8) == 0) {
            sizes = argv[i] + 8;
        } else if (strcmp(argv[i], "--section") == 0 && i + 1 < argc) {
            unsigned long s = strtoul(argv[++i], NULL, 10);
            if (s < 1 || s > 3) {
                s_usage(stderr);
                return 2;
            }
            cfg.sections = only ? cfg.sections | 1u << s : 1u << s;
            only = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else {
            s_usage(stderr);
            return 2;
        }
    }
    if (cfg.quick) {
        cfg.ops = 5000;
        cfg.state = 2000;
        cfg.join_budget = 0.05;
        cfg.sizes[0] = 1000;
        cfg.sizes[1] = 10000;
        cfg.nsizes = 2;
        cfg.ngaps = 3;
        cfg.per_writer = 2000;
    }
    if (sizes && !s_parse_sizes(&cfg, sizes)) {
        s_usage(stderr);
        return 2;
    }

    printf("engram-crdt-bench: CRDT kernel throughput and sizes (build %s%s)\n",
           ENGRAM_BENCH_BUILD_TYPE, cfg.quick ? ", --quick" : "");
    if (strstr(ENGRAM_BENCH_BUILD_TYPE, "sanitize") || strstr(ENGRAM_BENCH_BUILD_TYPE, "Debug"))
        printf("note: this build is not optimized or is sanitized; its times mean little\n");
    double t0 = bench_now();
    if (cfg.sections & 1u << 1)
        s_section1(&cfg);
    fflush(stdout);
    if (cfg.sections & 1u << 2)
        s_section2(&cfg);
    fflush(stdout);
    if (cfg.sections & 1u << 3)
        s_section3(&cfg);
    printf("\n%s: %d check(s) failed; total %.1f s\n", s_failures ? "FAIL" : "PASS", s_failures,
           bench_now() - t0);
    return s_failures ? 1 : 0;
}
