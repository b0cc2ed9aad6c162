/*  The seeded multi-node simulation of gossip_engine (sim.h): many runs of N engines on a
 *  simulated network with loss, duplication, reordering, partitions, crashes with and without
 *  loss of unsynced state, and clock skew; each run ends with heal + quiesce and checks that
 *  every replica converged, causal order held throughout and no acknowledged write was lost.
 *
 *  Environment:
 *    ENGRAM_SEED=<n>             base seed of every test (prop.h); a failure prints it.
 *    ENGRAM_SIM_REPLAY=<t>:<s>   replays the one run s of test t (printed with each failure).
 *    ENGRAM_SIM_ONLY=<t>         runs test t alone (faults, chunks, digests, same_seed, rounds,
 *                                blind_clocks, large, huge, ...).
 *    ENGRAM_SIM_SEEDS=<n>        long mode: n runs of the fault test instead of 500 (50 in a
 *                                sanitizer build).
 *    ENGRAM_SIM_KEEP_GOING=1     carries on past failing runs and lists them all at the end.
 *    ENGRAM_SIM_LARGE=1          the benchmark: rounds to converge up to 1000 nodes, and fault
 *                                runs on 100 and 1000 nodes.
 *    ENGRAM_PROP_SCALE=<x>       scales the number of runs (e.g. 0.01 under valgrind).
 */
#include "sim.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prop.h"

/*  Sanitizers slow the simulation about tenfold: their builds run a tenth of the seeds by
 *  default (the release build runs them all; ENGRAM_SIM_SEEDS still sets the fault runs). */
#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define SIM_SANITIZER_DIV 10
#elif defined(__has_feature) /* clang (the fuzz build) */
#if __has_feature(address_sanitizer)
#define SIM_SANITIZER_DIV 10
#endif
#endif
#ifndef SIM_SANITIZER_DIV
#define SIM_SANITIZER_DIV 1
#endif

/*  Runs of a test: n scaled by ENGRAM_PROP_SCALE and the sanitizer divisor, at least 1. */
static int s_cases(int n)
{
    return prop_cases(n / SIM_SANITIZER_DIV ? n / SIM_SANITIZER_DIV : 1);
}

static double s_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool s_env_flag(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/*  The run of test `name` that ENGRAM_SIM_REPLAY names: 1 and *seed set, 0 if it names none,
 *  -1 if it names another test's (or ENGRAM_SIM_ONLY names another test). */
static int s_replay(const char *name, uint64_t *seed)
{
    const char *only = getenv("ENGRAM_SIM_ONLY");
    if (only && *only && strcmp(only, name) != 0)
        return -1;
    const char *v = getenv("ENGRAM_SIM_REPLAY");
    if (!v || !*v)
        return 0;
    const char *colon = strchr(v, ':');
    if (!colon || (size_t)(colon - v) != strlen(name) || strncmp(v, name, strlen(name)) != 0)
        return -1;
    *seed = strtoull(colon + 1, NULL, 0);
    return 1;
}

static void s_config_print(const sim_config_t *c)
{
    fprintf(stderr,
            "  config: %d nodes, %d scopes%s, fanout %u, budget %zu B, fault phase %" PRIu64
            " ms, op every %" PRIu64 " ms, sync every %" PRIu64 " ms, values <= %zu B, loss %u‰,"
            " dup %u‰, delay <= %" PRIu64 " ms (tail %u‰), partitions every %" PRIu64
            " ms, crashes every %" PRIu64 " ms (%u%% lossy), skew <= %" PRId64 " ms%s\n",
            c->nodes, c->scopes, c->lazy_scopes ? " (lazy)" : "", c->fanout, c->max_message_bytes,
            c->fault_ms, c->op_every_ms, c->sync_every_ms, c->value_max, c->loss_permille,
            c->dup_permille, c->delay_max_ms, c->tail_permille, c->partition_every_ms,
            c->crash_every_ms, c->lossy_crash_pct, c->skew_max_ms,
            c->restart_same_seed ? ", restarts reuse the engine seed" : "");
}

/*  True (and says so) when ENGRAM_SIM_REPLAY names a run of another test than `name`. */
static bool s_skipped(const char *name)
{
    uint64_t seed;
    if (s_replay(name, &seed) >= 0)
        return false;
    printf("%s: skipped (ENGRAM_SIM_REPLAY or ENGRAM_SIM_ONLY names another test)\n", name);
    return true;
}

typedef void (*s_configure_fn)(sim_config_t *config, uint64_t seed);

/*  Runs `cases` simulations of test `name`, each configured from its own seed, and adds up
 *  their counters in *total. Fails (with the seeds to replay) if any run found a violation. */
static void s_run_seeds(const char *name, int cases, s_configure_fn configure, sim_stats_t *total,
                        size_t *digest_max)
{
    uint64_t replay_seed = 0;
    int replay = s_replay(name, &replay_seed);
    assert_true(replay >= 0);
    bool keep_going = s_env_flag("ENGRAM_SIM_KEEP_GOING");
    int failures = 0, first_failure = -1;
    for (int i = 0; i < (replay ? 1 : cases); i++) {
        prop_rng_t rng = prop_case(name, i);
        uint64_t seed = replay ? replay_seed : prop_next(&rng);
        sim_config_t config;
        configure(&config, seed);
        sim_t *sim = sim_new(&config, seed);
        int violations = sim_run(sim);
        sim_stats_add(sim, total);
        if (digest_max && sim_digest_bytes(sim) > *digest_max)
            *digest_max = sim_digest_bytes(sim);
        sim_destroy(&sim);
        if (violations) {
            fprintf(stderr, "%s run #%d: %d violations; replay: ENGRAM_SIM_REPLAY=%s:%" PRIu64 "\n",
                    name, i, violations, name, seed);
            s_config_print(&config);
            if (first_failure < 0)
                first_failure = i;
            failures++;
            if (!keep_going)
                break;
        }
    }
    if (failures) {
        fprintf(stderr, "%s: %d failing runs\n", name, failures);
        prop_case(name, first_failure);
    }
    PROP_CHECK(failures == 0);
}

/*  The canonical use: five nodes, operations on three scopes over a network that only delays,
 *  then quiesce and every check. */
static void test_sim_canonical(void **state)
{
    (void)state;
    if (s_skipped("canonical"))
        return;
    sim_config_t config;
    sim_config_quiet(&config, 5);
    config.rounds = false;
    config.scopes = 3;
    config.fault_ms = 5000;
    config.delay_max_ms = 20;
    sim_t *sim = sim_new(&config, prop_seed());
    sim_fault_phase(sim);
    uint64_t took = 0;
    PROP_CHECK(sim_quiesce(sim, &took));
    PROP_CHECK(sim_check(sim) == 0);
    sim_destroy(&sim);
}

/*  The CI fault profile: 500 runs (ENGRAM_SIM_SEEDS to change) on 5 to 20 nodes. */
static void test_sim_faults(void **state)
{
    (void)state;
    if (s_skipped("faults"))
        return;
    const char *seeds = getenv("ENGRAM_SIM_SEEDS");
    int cases = seeds && *seeds ? atoi(seeds) : s_cases(500);
    sim_stats_t total = {0};
    double start = s_wall();
    s_run_seeds("faults", cases, sim_config_random, &total, NULL);
    sim_stats_print("sim faults", &total, s_wall() - start);
}

/*  Tiny message budget, large values: pull answers travel in many chunks, which the network
 *  loses, duplicates and reorders, and which crashes throw away mid-transfer. */
static void s_config_chunks(sim_config_t *config, uint64_t seed)
{
    sim_config_random(config, seed);
    prop_rng_t rng = {seed ^ UINT64_C(0xc4c4c4c4)};
    config->nodes = 5 + (int)prop_below(&rng, 4);
    config->max_message_bytes = 512;
    config->value_max = 2000 + prop_below(&rng, 6000);
    config->fault_ms = 20000 + 1000 * prop_below(&rng, 20);
    config->op_every_ms = 100 + prop_below(&rng, 200);
    config->loss_permille = 50 + (unsigned)prop_below(&rng, 150);
    config->dup_permille = 100;
    config->tail_permille = 100;
    config->partition_every_ms = 5000;
    config->crash_every_ms = 4000;
}

static void test_sim_chunks(void **state)
{
    (void)state;
    if (s_skipped("chunks"))
        return;
    sim_stats_t total = {0};
    double start = s_wall();
    s_run_seeds("chunks", s_cases(40), s_config_chunks, &total, NULL);
    sim_stats_print("sim chunks", &total, s_wall() - start);
    /* Transfers of several parts happened, and parts arrived. */
    PROP_CHECK(total.engine.chunks_sent > total.engine.pulls_answered);
    PROP_CHECK(total.engine.chunks_received > 0);
}

/*  An engine restarted after a crash with the seed it had before (a fixed seed from a config,
 *  as tests/node/store/replication_test.c passes): chunked answers of its new life must not
 *  mix with parts of its old life still staged at the receivers. When transfer ids came from
 *  the seed alone they repeated after such a restart, and mixed parts were refused as malformed,
 *  rejected as dot reuse, or decoded into a wrong entry that no pull ever repaired (equal
 *  version vectors, different digests: ENGRAM_SIM_REPLAY=same_seed:6188295701936677656). */
static void s_config_same_seed(sim_config_t *config, uint64_t seed)
{
    s_config_chunks(config, seed);
    config->restart_same_seed = true;
    config->lossy_crash_pct = 0;
    config->crash_every_ms = 2000;
    config->down_max_ms = 1000;
}

static void test_sim_restart_same_seed(void **state)
{
    (void)state;
    if (s_skipped("same_seed"))
        return;
    sim_stats_t total = {0};
    double start = s_wall();
    s_run_seeds("same_seed", s_cases(20), s_config_same_seed, &total, NULL);
    sim_stats_print("sim restart with the same engine seed", &total, s_wall() - start);
}

/*  Many scopes and many writers (every crash loses state, so every restart is a new writer):
 *  a node's digest outgrows the message budget and goes out in partial parts, which answer
 *  only for the scopes they list. */
static void s_config_digests(sim_config_t *config, uint64_t seed)
{
    sim_config_random(config, seed);
    prop_rng_t rng = {seed ^ UINT64_C(0xd19e57)};
    config->nodes = 12 + (int)prop_below(&rng, 9);
    config->scopes = SIM_MAX_SCOPES;
    config->max_message_bytes = 512;
    config->fault_ms = 30000 + 1000 * prop_below(&rng, 30);
    config->op_every_ms = 20 + prop_below(&rng, 40);
    config->crash_every_ms = 1000;
    config->down_max_ms = 3000;
    config->lossy_crash_pct = 100;
}

static void test_sim_digests(void **state)
{
    (void)state;
    if (s_skipped("digests"))
        return;
    sim_stats_t total = {0};
    size_t digest_max = 0;
    double start = s_wall();
    s_run_seeds("digests", s_cases(20), s_config_digests, &total, &digest_max);
    sim_stats_print("sim split digests", &total, s_wall() - start);
    printf("  largest final digest: %zu bytes of contexts\n", digest_max);
    /* The engine's smallest budget is 2176 bytes (twice its chunk overhead). */
    PROP_CHECK(digest_max > 2176);
}

/*  One seed, run twice: the same run, message for message. */
static void test_sim_deterministic(void **state)
{
    (void)state;
    if (s_skipped("deterministic"))
        return;
    prop_rng_t rng = prop_case("deterministic", 0);
    uint64_t seed = prop_next(&rng);
    uint64_t traces[2];
    sim_stats_t stats[2];
    for (int i = 0; i < 2; i++) {
        sim_config_t config;
        sim_config_random(&config, seed);
        sim_t *sim = sim_new(&config, seed);
        sim_run(sim);
        traces[i] = sim_trace(sim);
        memset(&stats[i], 0, sizeof stats[i]);
        sim_stats_add(sim, &stats[i]);
        sim_destroy(&sim);
    }
    PROP_CHECK(traces[0] == traces[1]);
    PROP_CHECK(memcmp(&stats[0], &stats[1], sizeof stats[0]) == 0);
    PROP_CHECK(stats[0].msgs_delivered > 0);
}

/*  Rounds for one write to reach all n nodes (no fault): each round every node ticks once and
 *  every message is delivered. Returns the rounds; *msgs gets the messages sent. */
static int s_rounds(int n, uint64_t seed, uint64_t *msgs, uint64_t *bytes)
{
    sim_config_t config;
    sim_config_quiet(&config, n);
    sim_t *sim = sim_new(&config, seed);
    crdt_dot_t dot;
    sim_write(sim, 0, 0, &dot);
    int rounds = 0;
    while (sim_holders(sim, 0, dot) < n && rounds < 1000) {
        sim_round(sim);
        rounds++;
    }
    PROP_CHECK(sim_holders(sim, 0, dot) == n);
    PROP_CHECK(sim_violations(sim) == 0);
    sim_stats_t stats = {0};
    sim_stats_add(sim, &stats);
    PROP_CHECK(stats.engine.bad_messages == 0);
    *msgs = stats.msgs_sent;
    *bytes = stats.bytes_sent;
    sim_destroy(&sim);
    return rounds;
}

static void s_rounds_table(const int *sizes, int nsizes, int trials)
{
    printf("rounds for one write to reach every node (fanout 3, one digest per node per round, "
           "%d trials each):\n",
           trials);
    for (int i = 0; i < nsizes; i++) {
        int n = sizes[i], max = 0;
        double sum = 0, msgs = 0, bytes = 0;
        for (int t = 0; t < trials; t++) {
            prop_rng_t rng = prop_case("rounds", n * 1000 + t);
            uint64_t m = 0, b = 0;
            int r = s_rounds(n, prop_next(&rng), &m, &b);
            sum += r;
            msgs += (double)m;
            bytes += (double)b;
            if (r > max)
                max = r;
        }
        double mean = sum / trials;
        printf("  N=%5d  rounds mean %5.1f  max %3d  (log2 N = %4.1f)  messages per node per "
               "round %.2f, bytes per node per round %.0f\n",
               n, mean, max, log2(n), msgs / trials / n / (mean + 1),
               bytes / trials / n / (mean + 1));
        /* Anti-entropy spreads epidemically: O(log N) rounds. */
        PROP_CHECK(max <= 2 * (int)ceil(log2(n)) + 4);
    }
    fflush(stdout);
}

static void test_sim_rounds(void **state)
{
    (void)state;
    if (s_skipped("rounds"))
        return;
    static const int sizes[] = {10, 50, 100, 200};
    s_rounds_table(sizes, 4, 5);
}

/*  The checks can fail: with clocks 30 s apart and every node's clock blind to the stamps it
 *  receives (the defect the HLC observation fixes), a node behind stamps an append before an
 *  entry it already held, and the causal-order check must say so; the same runs with clocks
 *  that observe find nothing. */
static void s_config_skewed(sim_config_t *config)
{
    sim_config_quiet(config, 5);
    config->rounds = false;
    config->fault_ms = 10000;
    config->op_every_ms = 40;
    config->delay_max_ms = 20;
    config->skew_max_ms = 30000;
}

static void test_sim_blind_clocks(void **state)
{
    (void)state;
    if (s_skipped("blind_clocks"))
        return;
    for (int blind = 1; blind >= 0; blind--) {
        sim_stats_t total = {0};
        int violations = 0;
        for (int i = 0; i < 5; i++) { /* a few simulated seconds each: not scaled down */
            prop_rng_t rng = prop_case("blind_clocks", i);
            uint64_t seed = prop_next(&rng);
            sim_config_t config;
            s_config_skewed(&config);
            config.clocks_blind = blind;
            sim_t *sim = sim_new(&config, seed);
            violations += sim_run(sim);
            sim_stats_add(sim, &total);
            sim_destroy(&sim);
        }
        printf("sim blind_clocks: clocks %s, %" PRIu64 " causal inversions, %d violations\n",
               blind ? "blind" : "observing", total.causal_inversions, violations);
        if (blind)
            PROP_CHECK(total.causal_inversions > 0 && violations > 0);
        else
            PROP_CHECK(violations == 0);
    }
}

/*  The benchmark (ENGRAM_SIM_LARGE=1): rounds up to 1000 nodes, and whole fault runs on 100
 *  and 1000 nodes. */
static void s_config_large(sim_config_t *config, uint64_t seed)
{
    sim_config_random(config, seed);
    config->nodes = 100;
    config->scopes = 3;
    config->fault_ms = 30000;
    config->op_every_ms = 50;
}

static void s_config_huge(sim_config_t *config, uint64_t seed)
{
    s_config_large(config, seed);
    config->nodes = 1000;
    config->fault_ms = 20000;
}

static void test_sim_large(void **state)
{
    (void)state;
    if (!s_env_flag("ENGRAM_SIM_LARGE")) {
        printf("sim large: skipped (ENGRAM_SIM_LARGE=1 runs it)\n");
        return;
    }
    uint64_t seed;
    if (s_replay("rounds", &seed) >= 0) {
        static const int sizes[] = {10, 50, 100, 200, 500, 1000};
        s_rounds_table(sizes, 6, 3);
    }
    sim_stats_t total = {0};
    double start = s_wall();
    if (s_replay("large", &seed) >= 0) {
        s_run_seeds("large", s_cases(5), s_config_large, &total, NULL);
        sim_stats_print("sim 100 nodes", &total, s_wall() - start);
    }
    if (s_replay("huge", &seed) >= 0) {
        memset(&total, 0, sizeof total);
        start = s_wall();
        s_run_seeds("huge", 1, s_config_huge, &total, NULL);
        sim_stats_print("sim 1000 nodes", &total, s_wall() - start);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_canonical), cmocka_unit_test(test_sim_deterministic),
        cmocka_unit_test(test_sim_rounds),    cmocka_unit_test(test_sim_chunks),
        cmocka_unit_test(test_sim_digests),   cmocka_unit_test(test_sim_restart_same_seed),
        cmocka_unit_test(test_sim_faults),    cmocka_unit_test(test_sim_blind_clocks),
        cmocka_unit_test(test_sim_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
