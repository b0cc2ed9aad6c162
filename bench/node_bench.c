/*  engram-node-bench: what one engramd serves to local agents, put and get, beside the two
 *  things it should be judged against on the same machine: redis-server (the usual answer to
 *  "a shared in-memory store for agents", with an append-only file for durability) and raw
 *  RocksDB puts and gets through its C API (engramd's own storage engine: the physical limit
 *  of its write path).
 *
 *  For each durability mode it starts, in a fresh temporary directory, three systems:
 *    sync:   engramd --durability sync; redis-server appendonly yes, appendfsync always;
 *            RocksDB with WriteOptions.sync=true (one fsync per put, shared by RocksDB's own
 *            write group when threads write at once)
 *    async:  engramd --durability async; redis-server appendonly yes, appendfsync everysec;
 *            RocksDB with sync=false (the WAL is written, not synced)
 *  then measures each for 1, 16 and 64 concurrent clients (one thread each, one request in
 *  flight per client, no pipelining; --pipeline N: rounds of N, below), a fixed duration per
 *  cell:
 *    put: 256-byte values under random keys "k%08u" drawn from a 10M-key space; the values
 *         are one run of letters, which the search index drops (a term is at most 64 bytes),
 *         or with --values text words that it indexes, as an agent's text memories;
 *    get: keys the put cells of the same system wrote (every get must find 256 bytes).
 *  Clients: engramd, one libengram connection (engram_t) per thread on an ipc:// endpoint,
 *  scope "run:bench"; redis, one hiredis connection per thread over loopback TCP, SET/GET;
 *  RocksDB, rocksdb_put/rocksdb_get on one handle shared by the threads.
 *
 *  Printed per cell: throughput (ops/s over the cell's wall time), latency p50 and p99 from
 *  every operation's CLOCK_MONOTONIC time (nearest rank over all samples of all threads), the
 *  CPU of the server process and of this process (utime+stime over wall time, 100 = one
 *  core), for engramd sync the average group commit (writes per commit, from engram_stats),
 *  the ratios engram/redis and engram/rocksdb of ops/s, and how busy the rest of the host was
 *  (a figure measured while other processes ran is disturbed, and the table says so).
 *
 *  Run (Release, not sanitized, for numbers):
 *      cmake -S . -B build-nb -DCMAKE_BUILD_TYPE=Release && cmake --build build-nb -j2
 *      build-nb/bench/engram-node-bench                 # 3 s per cell, about 2.5 minutes
 *      build-nb/bench/engram-node-bench --quick         # 0.2 s per cell, smoke run
 *      build-nb/bench/engram-node-bench --modes sync --ops put --clients 64 --duration 30
 *  --pipeline N runs rounds of N requests per client: a libengram batch of N (engram_batch_t,
 *  which keeps at most ENGRAM_BATCH_WINDOW awaiting their replies) and N hiredis commands
 *  appended before their replies are read; RocksDB stays one call at a time.
 *  Each request's latency is its round's.
 *      build-nb/bench/engram-node-bench --pipeline 16 --systems engram,redis --clients 1,4
 *  The last form is for profiling: engramd's pid is printed on stderr when it starts.
 *  --systems engram,redis,rocksdb, --modes and --ops pick cells; --max-batch N and
 *  --busy-poll-us N are passed to engramd; --engramd PATH and --redis-server PATH run other
 *  binaries.
 *
 *  Access control: engramd serves only registered agents, so each engramd it starts gets, in
 *  its data directory, a trust file (the benchmark's admin, made with node_admin_init under
 *  the temporary directory) and an acl.init it imports at start (bench/bench_acl.c): in the
 *  tables above, every agent (bench-0.., bench-control) is registered, may act for user
 *  "bench", and has one allow-all edge ("*", read and write).
 *
 *  --acl-compare: what access control costs a request, "a realistic graph against one
 *  allow-all edge" (the goal: under 10%). Instead of the tables, two engramd --durability sync
 *  run at once, the same except for their statements:
 *    allow-all  as above: per agent a registration, a user edge and one edge to "*";
 *    graph      about 7.9k statements: 1,000 other agents with a user edge and five resource
 *               edges each (exact scopes, the pattern run:q*, tool:..., kb:handbook, app:/team:;
 *               every tenth with a revoked edge), 10 write policies on other scopes (none on
 *               run:bench, so nothing is redacted, but every put walks them), and the bench
 *               agents granted run:bench only through the pattern edge "run:*", behind a
 *               revoked user edge, a revoked run:bench edge and four other edges (the shape is
 *               described in bench/bench_acl.c);
 *  and the same cells against each: put then get, 1 and 64 clients (--clients changes them),
 *  scope run:bench, each put declaring two sources (tool:web-search, kb:handbook), so every
 *  fragment carries provenance that each get checks again (the writer's user edge, and each
 *  resource readable by the reader). The cells run in --rounds rounds (3; --quick 1) with the
 *  policies' order alternating, and the table gives each cell's medians, the ratios
 *  graph/allow-all of ops/s and p50, and the range of the per-round ratios (the noise). Before
 *  the cells, the decisions of one put and one get are timed in this process against each
 *  policy's statements (node_acl_* as engramd calls them), which measures the check itself
 *  where the end-to-end ratio drowns it in the request's own cost.
 *      build-nb/bench/engram-node-bench --acl-compare              # 3 rounds, about 1.5 minutes
 *      build-nb/bench/engram-node-bench --acl-compare --quick      # a smoke run (a CTest)
 *      build-nb/bench/engram-node-bench --acl graph --ops put --clients 64 --duration 30
 *  --acl allow-all,graph picks the policies (and implies --acl-compare); --modes, --systems
 *  are ignored there (engramd, durability sync only).
 *
 *  Everything it starts (engramd, redis-server) is stopped and its directory removed at exit,
 *  also after a failure or SIGINT/SIGTERM; the children get PR_SET_PDEATHSIG so that even a
 *  SIGKILL of the benchmark leaves no server running. Exit status: 0, 1 if an operation
 *  failed or a get missed (the table shows the error count), 2 if a server could not start.
 *
 *  Limits: clients, servers and RocksDB share the machine's cores (2 where this was written),
 *  so the client side's CPU is part of every figure, equally for every system. One key per
 *  operation, no batching or pipelining anywhere; redis talks TCP, engramd ipc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>
#include <rocksdb/c.h>

#include "engram/engram.h"
#include "engram/limits.h"

#include "agent_keys.h"
#include "bench_util.h"
#include "transport_floor.h"

#ifndef ENGRAM_BENCH_BUILD_TYPE
#define ENGRAM_BENCH_BUILD_TYPE "unknown"
#endif
#ifndef ENGRAMD_PATH
#define ENGRAMD_PATH "engramd"
#endif
#ifndef REDIS_SERVER_PATH
#define REDIS_SERVER_PATH "redis-server"
#endif
#ifndef ENGRAM_BENCH_ROCKSDB_VERSION
#define ENGRAM_BENCH_ROCKSDB_VERSION "?"
#endif

#define VALUE_BYTES      256
#define KEY_SPACE        10000000u /* "k%08u" */
#define SCOPE            "run:bench"
#define SEED             UINT64_C(0x656e6772616d)
#define MAX_CLIENTS      256
#define MAX_LEVELS       8
#define START_WAIT_S     15.0 /* a server must answer within this after its start */
#define USER             "bench"
#define MAX_ROUNDS       16 /* of the access-control comparison */
#define DECISION_TIMINGS 25 /* of the access decisions, in this process */

typedef enum { SYS_ENGRAM, SYS_REDIS, SYS_ROCKSDB, SYS_COUNT } s_sys_t;
typedef enum { OP_PUT, OP_GET, OP_COUNT } s_op_t;
typedef enum { POL_ALLOW, POL_GRAPH, POL_COUNT } s_policy_t;
static const char *const s_sys_names[SYS_COUNT] = {"engram", "redis", "rocksdb"};
static const char *const s_op_names[OP_COUNT] = {"put", "get"};
static const char *const s_policy_names[POL_COUNT] = {"allow-all", "graph"};

typedef struct {
    bool quick;
    double duration; /* seconds per cell */
    unsigned clients[MAX_LEVELS];
    size_t nclients;
    bool modes[2]; /* [0] sync, [1] async */
    bool ops[OP_COUNT];
    bool systems[SYS_COUNT];
    unsigned max_batch;    /* 0: engramd's default */
    unsigned busy_poll_us; /* 0: engramd's default (no busy polling) */
    const char *engramd;
    const char *redis;
    bool acl_compare;         /* the access-control comparison instead of the tables */
    bool policies[POL_COUNT]; /* the policies it runs */
    unsigned rounds;          /* its rounds */
    unsigned depth;           /* requests in flight per client (--pipeline); 1: one at a time */
} s_config_t;

/*  --- what has to be cleaned up, also from a failure path ---------------------------- */

static char s_tmpdir[256];
static atomic_bool s_stop; /* the running cell ends */

static engram_t **s_control[POL_COUNT]; /* the running engramds' stats connections */

static void s_controls_destroy(void)
{
    for (int i = 0; i < POL_COUNT; i++)
        if (s_control[i] && *s_control[i])
            engram_destroy(s_control[i]);
}

static void s_cleanup(void)
{
    s_controls_destroy();
    bench_children_stop();
    if (s_tmpdir[0]) {
        bench_rm_tree(s_tmpdir);
        s_tmpdir[0] = '\0';
    }
}

/*  What must go before czmq's atexit handler when the benchmark gives up. */
static void s_release(void)
{
    s_controls_destroy();
}

#define DIE(...) BENCH_DIE(__VA_ARGS__)

/*  --- helpers ------------------------------------------------------------------------ */

static void s_key(char *buf, uint32_t idx)
{
    snprintf(buf, 16, "k%08u", idx);
}

/*  --values text: values are words (a term each for the search index) instead of one 256-byte
 *  run of letters, which the index drops as longer than SEARCH_MAX_TERM_BYTES; so the put
 *  cells pay for indexing as an agent's text memories do. Each client repeats its words
 *  (only the stamp changes), so after its first put the store's counter cache holds every
 *  counter it updates but its stamp's, and its df journal changes the same counters again
 *  and again: the best case of both. */
static bool s_text_values;

/*  A value's bytes after its stamp: 'v's, or words (bench_words_fill), the worker's own mix. */
static void s_value_fill(uint8_t *val, unsigned thread)
{
    memset(val, 'v', VALUE_BYTES);
    if (s_text_values) /* the stamp, 0..16, is a word of its own */
        bench_words_fill(val, 17, VALUE_BYTES, thread + 1);
}

/*  A 256-byte value with the thread and operation number stamped into it. */
static void s_value_stamp(uint8_t *val, unsigned thread, uint64_t i)
{
    static const char hex[] = "0123456789abcdef";
    val[0] = (uint8_t)hex[thread & 15];
    for (int d = 15; d >= 0; d--, i >>= 4)
        val[1 + d] = (uint8_t)hex[i & 15];
}

/*  The free loopback port the kernel hands out for port 0. */
static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        DIE("socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        DIE("cannot find a free port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

/*  --- the systems ------------------------------------------------------------------- */

typedef struct {
    bool sync;
    char dir[320];
    /* engramd */
    const bench_acl_t *acl; /* its access control: DATA/trust and DATA/acl.init */
    bool sources;           /* puts declare bench_acl_sources (engram_set_sources) */
    int slot;               /* in s_control */
    pid_t engramd;
    char endpoint[400];
    double started_s;  /* from its start until it answered */
    engram_t *control; /* stats */
    /* redis-server */
    pid_t redis;
    int port;
    char redis_version[32];
    /* RocksDB */
    rocksdb_t *db;
    rocksdb_options_t *options;
    rocksdb_writeoptions_t *wo;
    rocksdb_readoptions_t *ro;
    /* keys each system's put cells wrote: what its get cells read */
    uint32_t *written[SYS_COUNT];
    size_t nwritten[SYS_COUNT];
} s_mode_t;

static void s_engramd_start(s_mode_t *m, const s_config_t *cfg)
{
    char data[400], log[400], batch[16], busy_poll[16];
    snprintf(data, sizeof data, "%s/engramd", m->dir);
    snprintf(log, sizeof log, "%s/engramd.log", m->dir);
    snprintf(m->endpoint, sizeof m->endpoint, "ipc://%s/api.sock", m->dir);
    snprintf(batch, sizeof batch, "%u", cfg->max_batch);
    snprintf(busy_poll, sizeof busy_poll, "%u", cfg->busy_poll_us);
    if (bench_acl_write(m->acl, data, true) != 0)
        DIE("cannot give engramd in %s its trust root and statements", data);
    char *argv[] = {
        (char *)cfg->engramd,       "--data", data, "--api", m->endpoint, "--durability",
        m->sync ? "sync" : "async", NULL,     NULL, NULL,    NULL,        NULL};
    size_t argc = 7;
    if (cfg->max_batch) {
        argv[argc++] = "--max-batch";
        argv[argc++] = batch;
    }
    if (cfg->busy_poll_us) {
        argv[argc++] = "--busy-poll-us";
        argv[argc++] = busy_poll;
    }
    double t0 = bench_now();
    m->engramd = bench_spawn(argv, log);
    if (m->engramd < 0)
        DIE("cannot start %s: %s", argv[0], strerror(errno));
    m->control = agent_keys_make("bench-control") == 0
                     ? engram_connect(m->endpoint, "bench-control", USER)
                     : NULL;
    if (!m->control)
        DIE("engram_connect(%s) failed", m->endpoint);
    s_control[m->slot] = &m->control;
    engram_set_timeout(m->control, 200);
    engram_stats_t st;
    double deadline = bench_now() + START_WAIT_S;
    while (engram_stats(m->control, &st) != 0) {
        if (!bench_alive(m->engramd) || bench_now() > deadline || bench_interrupted) {
            bench_show_log(log);
            DIE("engramd (%s) did not start", m->sync ? "sync" : "async");
        }
    }
    m->started_s = bench_now() - t0;
    engram_set_timeout(m->control, ENGRAM_DEFAULT_CLIENT_TIMEOUT_MS);
    if (strcmp(st.durability, m->sync ? "sync" : "async") != 0)
        DIE("engramd reports durability '%s'", st.durability);
    fprintf(stderr,
            "engram-node-bench: engramd --durability %s pid %d on %s (%zu statements, "
            "answered after %.2f s)\n",
            m->sync ? "sync" : "async", (int)m->engramd, m->endpoint, bench_acl_size(m->acl),
            m->started_s);
}

static void s_redis_start(s_mode_t *m, const s_config_t *cfg)
{
    char dir[400], log[400], port[16];
    snprintf(dir, sizeof dir, "%s/redis", m->dir);
    snprintf(log, sizeof log, "%s/redis.stdout", m->dir);
    if (mkdir(dir, 0755) != 0)
        DIE("mkdir %s: %s", dir, strerror(errno));
    char logfile[420];
    snprintf(logfile, sizeof logfile, "%s/redis.log", dir);
    m->port = s_free_port();
    snprintf(port, sizeof port, "%d", m->port);
    char *argv[] = {(char *)cfg->redis,
                    "--port",
                    port,
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    dir,
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    m->sync ? "always" : "everysec",
                    "--save",
                    "",
                    "--protected-mode",
                    "no",
                    "--daemonize",
                    "no",
                    "--logfile",
                    logfile,
                    NULL};
    m->redis = bench_spawn(argv, log);
    if (m->redis < 0)
        DIE("cannot start %s: %s", argv[0], strerror(errno));
    double deadline = bench_now() + START_WAIT_S;
    redisContext *c;
    while (!(c = bench_redis_connect(m->port, 200))) {
        if (!bench_alive(m->redis) || bench_now() > deadline || bench_interrupted) {
            bench_show_log(log);
            bench_show_log(logfile);
            DIE("redis-server (appendfsync %s) did not start", m->sync ? "always" : "everysec");
        }
        usleep(20000);
    }
    redisReply *r = redisCommand(c, "CONFIG GET appendfsync");
    bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
              strcmp(r->element[1]->str, m->sync ? "always" : "everysec") == 0;
    if (r)
        freeReplyObject(r);
    r = redisCommand(c, "INFO server");
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *v = strstr(r->str, "redis_version:");
        if (v)
            sscanf(v + 14, "%31[^\r\n]", m->redis_version);
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
    if (!ok)
        DIE("redis-server does not run with the appendfsync asked for");
    fprintf(stderr, "engram-node-bench: redis-server appendfsync %s pid %d on 127.0.0.1:%d\n",
            m->sync ? "always" : "everysec", (int)m->redis, m->port);
}

static void s_rocksdb_open(s_mode_t *m)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/rocksdb", m->dir);
    m->options = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(m->options, 1);
    rocksdb_options_set_info_log_level(m->options, BENCH_ROCKSDB_INFO_LEVEL); /* as engramd */
    char *err = NULL;
    m->db = rocksdb_open(m->options, dir, &err);
    if (err)
        DIE("rocksdb_open(%s): %s", dir, err);
    m->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(m->wo, m->sync);
    m->ro = rocksdb_readoptions_create();
}

/*  Starts the systems asked for in a fresh directory s_tmpdir/name; engramd under acl, as the
 *  running engramd number slot. */
static void s_mode_start(s_mode_t *m, const s_config_t *cfg, bool sync,
                         const bool systems[SYS_COUNT], const char *name, const bench_acl_t *acl,
                         int slot)
{
    m->sync = sync;
    m->acl = acl;
    m->slot = slot;
    snprintf(m->dir, sizeof m->dir, "%s/%s", s_tmpdir, name);
    if (mkdir(m->dir, 0755) != 0)
        DIE("mkdir %s: %s", m->dir, strerror(errno));
    if (systems[SYS_ENGRAM])
        s_engramd_start(m, cfg);
    if (systems[SYS_REDIS])
        s_redis_start(m, cfg);
    if (systems[SYS_ROCKSDB])
        s_rocksdb_open(m);
}

static void s_mode_stop(s_mode_t *m)
{
    if (m->control)
        engram_destroy(&m->control);
    s_control[m->slot] = NULL;
    if (m->engramd) {
        bench_stop(m->engramd);
    }
    if (m->redis) {
        bench_stop(m->redis);
    }
    if (m->db) {
        rocksdb_close(m->db);
        rocksdb_options_destroy(m->options);
        rocksdb_writeoptions_destroy(m->wo);
        rocksdb_readoptions_destroy(m->ro);
    }
    for (int s = 0; s < SYS_COUNT; s++)
        free(m->written[s]);
    bench_rm_tree(m->dir);
    *m = (s_mode_t){0};
}

/*  --- one cell: one system, one operation, N client threads -------------------------- */

typedef struct {
    s_mode_t *mode;
    s_sys_t sys;
    s_op_t op;
    unsigned depth; /* requests in flight per client */
    pthread_barrier_t ready;
} s_cell_t;

typedef struct {
    s_cell_t *cell;
    unsigned id;
    pthread_t thread;
    uint64_t *lat; /* ns per operation */
    size_t n, cap;
    uint32_t *wrote; /* put: key indices written */
    size_t nwrote, wcap;
    uint64_t errors;
    char error[200]; /* the first */
    double t_end;
} s_worker_t;

static void s_push(void **array, size_t *n, size_t *cap, size_t elem, const void *value)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4096;
        void *grown = realloc(*array, *cap * elem);
        if (!grown)
            DIE("out of memory");
        *array = grown;
    }
    memcpy((char *)*array + *n * elem, value, elem);
    (*n)++;
}

#define S_WORKER_ERROR(w, ...) bench_error(&(w)->errors, (w)->error, sizeof(w)->error, __VA_ARGS__)

/*  The key of a worker's next request: a random one for a put (its value stamped), one the
 *  put cells wrote for a get. */
static uint32_t s_next_key(s_worker_t *w, uint64_t *rng, uint8_t *value, uint64_t i, char *key)
{
    s_cell_t *cell = w->cell;
    s_mode_t *m = cell->mode;
    uint32_t idx;
    if (cell->op == OP_PUT) {
        idx = (uint32_t)(bench_rand(rng) % KEY_SPACE);
        s_value_stamp(value, w->id, i);
    } else {
        idx = m->written[cell->sys][bench_rand(rng) % m->nwritten[cell->sys]];
    }
    s_key(key, idx);
    return idx;
}

/*  One round of cell->depth requests in flight on the worker's connection: one libengram
 *  batch, or the hiredis commands appended before their replies are read. Each request that
 *  succeeded is recorded with the round's latency. */
static void s_pipelined_round(s_worker_t *w, engram_batch_t *batch, redisContext *redis,
                              uint64_t *rng, uint8_t *value, uint64_t *i)
{
    s_cell_t *cell = w->cell;
    unsigned depth = cell->depth, queued = 0;
    uint32_t idx[depth];
    char key[16];
    bool ok[depth];
    uint64_t t0 = bench_now_ns();
    for (unsigned r = 0; r < depth; r++) {
        idx[queued] = s_next_key(w, rng, value, (*i)++, key);
        int rc = 0;
        if (batch)
            rc = cell->op == OP_PUT ? engram_batch_put(batch, SCOPE, key, value, VALUE_BYTES)
                                    : engram_batch_get(batch, SCOPE, key);
        else
            rc = cell->op == OP_PUT
                     ? redisAppendCommand(redis, "SET %s %b", key, value, (size_t)VALUE_BYTES)
                     : redisAppendCommand(redis, "GET %s", key);
        if (rc == 0)
            queued++;
        else
            S_WORKER_ERROR(w, "%s %s: cannot queue it", s_op_names[cell->op], key);
    }
    if (batch)
        engram_batch_run(batch); /* each request's outcome is read below */
    for (unsigned r = 0; r < queued; r++) {
        if (batch) {
            const engram_result_t *res = engram_batch_result(batch, r);
            ok[r] = res &&
                    (cell->op == OP_PUT || (res->nitems >= 1 && res->items[0].len == VALUE_BYTES));
            if (!ok[r])
                S_WORKER_ERROR(w, "%s in a batch: %s %s", s_op_names[cell->op],
                               engram_strerror(engram_batch_code(batch, r)),
                               engram_batch_error(batch, r));
            continue;
        }
        redisReply *reply = NULL;
        ok[r] =
            redisGetReply(redis, (void **)&reply) == REDIS_OK && reply &&
            (cell->op == OP_PUT ? reply->type == REDIS_REPLY_STATUS
                                : reply->type == REDIS_REPLY_STRING && reply->len == VALUE_BYTES);
        if (!ok[r])
            S_WORKER_ERROR(w, "%s pipelined: %s", s_op_names[cell->op],
                           !reply                             ? redis->errstr
                           : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                              : "wrong reply");
        if (reply)
            freeReplyObject(reply);
    }
    uint64_t ns = bench_now_ns() - t0;
    for (unsigned r = 0; r < queued; r++) {
        if (!ok[r])
            continue;
        s_push((void **)&w->lat, &w->n, &w->cap, sizeof ns, &ns);
        if (cell->op == OP_PUT)
            s_push((void **)&w->wrote, &w->nwrote, &w->wcap, sizeof idx[r], &idx[r]);
    }
    if (batch)
        engram_batch_reset(batch);
}

static void *s_worker_run(void *arg)
{
    s_worker_t *w = arg;
    s_cell_t *cell = w->cell;
    s_mode_t *m = cell->mode;
    uint64_t rng = SEED ^ ((uint64_t)cell->sys << 56) ^ ((uint64_t)cell->op << 48) ^
                   ((uint64_t)w->id << 32) ^ (uint64_t)m->nwritten[cell->sys];
    engram_t *engram = NULL;
    redisContext *redis = NULL;
    bool ready = true;

    /* Connect outside the measured window; one call makes sure the connection is up. */
    if (cell->sys == SYS_ENGRAM) {
        char agent[32];
        snprintf(agent, sizeof agent, "bench-%u", w->id);
        engram = agent_keys_make(agent) == 0 ? engram_connect(m->endpoint, agent, USER) : NULL;
        engram_stats_t st;
        int rc = engram ? engram_stats(engram, &st) : ENGRAM_ENOMEM;
        if (rc == 0 && m->sources)
            rc = engram_set_sources(engram, bench_acl_sources, 2);
        if (rc) {
            S_WORKER_ERROR(w, "connect: %s %s", engram_strerror(rc),
                           engram ? engram_last_error(engram) : "");
            ready = false;
        }
    } else if (cell->sys == SYS_REDIS) {
        redis = bench_redis_connect(m->port, 5000);
        if (!redis) {
            S_WORKER_ERROR(w, "cannot connect to redis-server on port %d", m->port);
            ready = false;
        }
    }
    uint8_t value[VALUE_BYTES];
    s_value_fill(value, w->id);
    char key[16];
    uint64_t i = 0;
    engram_batch_t *batch = engram && cell->depth > 1 ? engram_batch_new(engram) : NULL;
    if (engram && cell->depth > 1 && !batch) {
        S_WORKER_ERROR(w, "out of memory");
        ready = false;
    }
    pthread_barrier_wait(&cell->ready);

    while (ready && !atomic_load_explicit(&s_stop, memory_order_relaxed)) {
        if (cell->depth > 1) {
            s_pipelined_round(w, batch, redis, &rng, value, &i);
            if (redis && redis->err)
                break; /* the connection is gone */
            continue;
        }
        uint32_t idx = s_next_key(w, &rng, value, i, key);
        bool ok = true;
        uint64_t t0 = bench_now_ns();
        switch (cell->sys) {
        case SYS_ENGRAM: {
            engram_result_t *res = NULL;
            int rc = cell->op == OP_PUT
                         ? engram_put(engram, SCOPE, key, value, VALUE_BYTES, NULL, 0, &res)
                         : engram_get(engram, SCOPE, key, NULL, 0, &res);
            if (rc) {
                ok = false;
                S_WORKER_ERROR(w, "%s %s: %s %s", s_op_names[cell->op], key, engram_strerror(rc),
                               engram_last_error(engram));
            } else if (cell->op == OP_GET &&
                       (res->nitems < 1 || res->items[0].len != VALUE_BYTES)) {
                ok = false;
                S_WORKER_ERROR(w, "get %s: %zu items, first %zu bytes", key, res->nitems,
                               res->nitems ? res->items[0].len : 0);
            }
            engram_result_destroy(&res);
            break;
        }
        case SYS_REDIS: {
            redisReply *r = cell->op == OP_PUT
                                ? redisCommand(redis, "SET %s %b", key, value, (size_t)VALUE_BYTES)
                                : redisCommand(redis, "GET %s", key);
            if (!r) {
                ok = false;
                S_WORKER_ERROR(w, "%s %s: %s", s_op_names[cell->op], key, redis->errstr);
            } else if (cell->op == OP_PUT
                           ? r->type != REDIS_REPLY_STATUS
                           : r->type != REDIS_REPLY_STRING || r->len != VALUE_BYTES) {
                ok = false;
                S_WORKER_ERROR(w, "%s %s: reply type %d %s", s_op_names[cell->op], key, r->type,
                               r->type == REDIS_REPLY_ERROR ? r->str : "");
            }
            if (r)
                freeReplyObject(r);
            break;
        }
        case SYS_ROCKSDB: {
            char *err = NULL;
            if (cell->op == OP_PUT) {
                rocksdb_put(m->db, m->wo, key, 9, (const char *)value, VALUE_BYTES, &err);
            } else {
                size_t len = 0;
                char *v = rocksdb_get(m->db, m->ro, key, 9, &len, &err);
                if (!err && (!v || len != VALUE_BYTES)) {
                    ok = false;
                    S_WORKER_ERROR(w, "get %s: %s", key, v ? "wrong length" : "not found");
                }
                rocksdb_free(v);
            }
            if (err) {
                ok = false;
                S_WORKER_ERROR(w, "%s %s: %s", s_op_names[cell->op], key, err);
                rocksdb_free(err);
            }
            break;
        }
        default:
            break;
        }
        uint64_t t1 = bench_now_ns();
        i++;
        if (!ok) {
            if (cell->sys == SYS_REDIS && redis->err)
                break; /* the connection is gone */
            continue;
        }
        uint64_t ns = t1 - t0;
        s_push((void **)&w->lat, &w->n, &w->cap, sizeof ns, &ns);
        if (cell->op == OP_PUT)
            s_push((void **)&w->wrote, &w->nwrote, &w->wcap, sizeof idx, &idx);
    }
    w->t_end = bench_now();
    engram_batch_destroy(&batch);
    if (engram)
        engram_destroy(&engram);
    if (redis)
        redisFree(redis);
    return NULL;
}

typedef struct {
    bool ran;
    double ops_s;
    uint64_t p50, p99; /* ns */
    uint64_t errors;
    double cpu;   /* server process, % of one core; NAN: in process */
    double cli;   /* this process (the clients; RocksDB itself for rocksdb), % of a core */
    double other; /* the rest of the host: other processes disturbing the cell */
    double group; /* engramd sync: writes per commit; NAN: none */
} s_result_t;

static s_result_t s_cell_run(const s_config_t *cfg, s_mode_t *m, s_sys_t sys, s_op_t op,
                             unsigned clients)
{
    s_result_t res = {.ran = true, .cpu = NAN, .group = NAN};
    if (op == OP_GET && m->nwritten[sys] == 0) {
        fprintf(stderr, "engram-node-bench: %s get: no keys were written\n", s_sys_names[sys]);
        res.errors = 1;
        return res;
    }
    s_cell_t cell = {.mode = m, .sys = sys, .op = op, .depth = sys == SYS_ROCKSDB ? 1 : cfg->depth};
    pthread_barrier_init(&cell.ready, NULL, clients + 1);
    s_worker_t *workers = calloc(clients, sizeof *workers);
    if (!workers)
        DIE("out of memory");
    atomic_store(&s_stop, false);
    for (unsigned t = 0; t < clients; t++) {
        workers[t] = (s_worker_t){.cell = &cell, .id = t};
        if (pthread_create(&workers[t].thread, NULL, s_worker_run, &workers[t]) != 0)
            DIE("pthread_create: %s", strerror(errno));
    }
    engram_stats_t st0 = {0}, st1 = {0};
    pid_t server = sys == SYS_ENGRAM ? m->engramd : sys == SYS_REDIS ? m->redis : 0;
    pthread_barrier_wait(&cell.ready); /* every client is connected */
    if (sys == SYS_ENGRAM && engram_stats(m->control, &st0) != 0)
        DIE("engram_stats: %s", engram_last_error(m->control));
    double cpu0 = server ? bench_cpu_seconds(server) : NAN;
    double self0 = bench_self_cpu_seconds(), host0 = bench_host_cpu_seconds();
    double t0 = bench_now();
    bench_sleep(cfg->duration);
    atomic_store(&s_stop, true);
    double t_end = t0;
    size_t total = 0;
    for (unsigned t = 0; t < clients; t++) {
        pthread_join(workers[t].thread, NULL);
        if (workers[t].t_end > t_end)
            t_end = workers[t].t_end;
        total += workers[t].n;
    }
    double cpu1 = server ? bench_cpu_seconds(server) : NAN;
    double self1 = bench_self_cpu_seconds(), host1 = bench_host_cpu_seconds();
    if (sys == SYS_ENGRAM && engram_stats(m->control, &st1) != 0)
        DIE("engram_stats: %s", engram_last_error(m->control));
    uint64_t *all = malloc((total ? total : 1) * sizeof *all);
    if (!all)
        DIE("out of memory");
    size_t at = 0;
    for (unsigned t = 0; t < clients; t++) {
        s_worker_t *w = &workers[t];
        memcpy(all + at, w->lat, w->n * sizeof *all);
        at += w->n;
        if (w->errors && res.errors == 0)
            fprintf(stderr, "engram-node-bench: %s %s, %u clients, client %u: %s\n",
                    s_sys_names[sys], s_op_names[op], clients, t, w->error);
        res.errors += w->errors;
        free(w->lat);
    }
    /* The keys written, for the get cells (grown once, not key by key). */
    size_t nw = 0;
    for (unsigned t = 0; t < clients; t++)
        nw += workers[t].nwrote;
    if (nw) {
        uint32_t *grown = realloc(m->written[sys], (m->nwritten[sys] + nw) * sizeof *grown);
        if (!grown)
            DIE("out of memory");
        m->written[sys] = grown;
        for (unsigned t = 0; t < clients; t++) {
            memcpy(grown + m->nwritten[sys], workers[t].wrote, workers[t].nwrote * sizeof *grown);
            m->nwritten[sys] += workers[t].nwrote;
        }
    }
    for (unsigned t = 0; t < clients; t++)
        free(workers[t].wrote);
    qsort(all, total, sizeof *all, bench_cmp_u64);
    res.ops_s = (double)total / (t_end - t0);
    res.p50 = bench_percentile(all, total, 0.50);
    res.p99 = bench_percentile(all, total, 0.99);
    if (server)
        res.cpu = 100.0 * (cpu1 - cpu0) / (t_end - t0);
    res.cli = 100.0 * (self1 - self0) / (t_end - t0);
    res.other = 100.0 * (host1 - host0) / (t_end - t0) - res.cli - (server ? res.cpu : 0);
    if (sys == SYS_ENGRAM && m->sync && op == OP_PUT && st1.commits > st0.commits)
        res.group = (double)(st1.writes - st0.writes) / (double)(st1.commits - st0.commits);
    if (total == 0 && res.errors == 0)
        res.errors = 1; /* nothing completed: as good as failed */
    free(all);
    free(workers);
    pthread_barrier_destroy(&cell.ready);
    return res;
}

/*  --- the table ---------------------------------------------------------------------- */

static void s_cell_text(char *buf, size_t size, const s_result_t *r, bool cpu, bool group)
{
    char a[16], b[16], c[16], d[16], e[16];
    if (!r->ran) {
        snprintf(buf, size, "%8s %8s %8s%s %7s", "-", "-", "-", group ? "      " : "", "-");
        return;
    }
    if (isnan(r->group))
        snprintf(d, sizeof d, "-");
    else
        snprintf(d, sizeof d, "%.1f", r->group);
    if (isnan(r->cpu))
        snprintf(e, sizeof e, "%.0f", r->cli);
    else
        snprintf(e, sizeof e, "%.0f+%.0f", r->cpu, r->cli);
    int n = snprintf(buf, size, "%8s %8s %8s", bench_si(a, sizeof a, r->ops_s),
                     bench_lat(b, sizeof b, r->p50), bench_lat(c, sizeof c, r->p99));
    if (group)
        n += snprintf(buf + n, size - (size_t)n, " %5s", d);
    (void)cpu;
    snprintf(buf + n, size - (size_t)n, " %7s", e);
}

static void s_ratio_text(char *buf, size_t size, const s_result_t *e, const s_result_t *x)
{
    if (!e->ran || !x->ran || x->ops_s <= 0 || e->errors || x->errors)
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%.2f", e->ops_s / x->ops_s);
}

static void s_print_table(const s_config_t *cfg, const s_mode_t *m, s_op_t op,
                          s_result_t res[][SYS_COUNT])
{
    const char *redis_mode = m->sync ? "appendfsync always" : "appendfsync everysec";
    const char *rocks_mode = m->sync ? "sync=true" : "sync=false";
    printf("\n%s, %d-byte values, durability %s: engramd --durability %s | redis-server AOF "
           "%s | RocksDB %s\n",
           s_op_names[op], VALUE_BYTES, m->sync ? "sync" : "async", m->sync ? "sync" : "async",
           redis_mode, op == OP_PUT ? rocks_mode : "rocksdb_get");
    printf("        %-40s   %-34s   %-34s   %s\n", "---------------- engramd ---------------",
           "---------- redis-server ----------", "---------- RocksDB C API ----------",
           "--- ops/s ratio ---");
    printf("clients %8s %8s %8s %5s %7s   %8s %8s %8s %7s   %8s %8s %8s %7s   %7s %10s %6s\n",
           "ops/s", "p50", "p99", "group", "cpu s+c", "ops/s", "p50", "p99", "cpu s+c", "ops/s",
           "p50", "p99", "cpu", "e/redis", "e/rocksdb", "other");
    for (size_t c = 0; c < cfg->nclients; c++) {
        char e[96], r[96], k[96], rr[16], rk[16];
        s_cell_text(e, sizeof e, &res[c][SYS_ENGRAM], true, true);
        s_cell_text(r, sizeof r, &res[c][SYS_REDIS], true, false);
        s_cell_text(k, sizeof k, &res[c][SYS_ROCKSDB], false, false);
        s_ratio_text(rr, sizeof rr, &res[c][SYS_ENGRAM], &res[c][SYS_REDIS]);
        s_ratio_text(rk, sizeof rk, &res[c][SYS_ENGRAM], &res[c][SYS_ROCKSDB]);
        double other = 0;
        for (int s = 0; s < SYS_COUNT; s++)
            if (res[c][s].ran && res[c][s].other > other)
                other = res[c][s].other;
        printf("%7u %s   %s   %s   %7s %10s %6.0f\n", cfg->clients[c], e, r, k, rr, rk, other);
    }
    double other = 0;
    for (size_t c = 0; c < cfg->nclients; c++)
        for (int s = 0; s < SYS_COUNT; s++)
            if (res[c][s].ran && res[c][s].other > other)
                other = res[c][s].other;
    if (other > 15)
        printf("  note: other processes kept the host up to %.0f%% busy (of %ld00%%) during "
               "these cells: the figures are disturbed\n",
               other, sysconf(_SC_NPROCESSORS_ONLN));
    for (size_t c = 0; c < cfg->nclients; c++)
        for (int s = 0; s < SYS_COUNT; s++)
            if (res[c][s].errors)
                printf("  FAIL: %s %s, %u clients: %" PRIu64 " operations failed (see stderr)\n",
                       s_sys_names[s], s_op_names[op], cfg->clients[c], res[c][s].errors);
    fflush(stdout);
}

/*  --- access control: a realistic graph against one allow-all edge --------------------- */

/*  The median of n doubles (n <= MAX_ROUNDS); NAN for none. */
static double s_median(const double *v, size_t n)
{
    double sorted[MAX_ROUNDS];
    if (n == 0)
        return NAN;
    memcpy(sorted, v, n * sizeof *v);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            double t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/*  One cell of the comparison over its rounds. */
typedef struct {
    double ops_s[MAX_ROUNDS], p50[MAX_ROUNDS], p99[MAX_ROUNDS];
    double cpu_op[MAX_ROUNDS]; /* engramd's CPU microseconds per operation */
    double other;              /* the most of the rounds */
    size_t n;
    uint64_t errors;
} s_rounds_t;

static void s_rounds_add(s_rounds_t *r, const s_result_t *res)
{
    r->errors += res->errors;
    if (res->errors || r->n == MAX_ROUNDS)
        return;
    r->ops_s[r->n] = res->ops_s;
    r->p50[r->n] = (double)res->p50;
    r->p99[r->n] = (double)res->p99;
    r->cpu_op[r->n] = res->ops_s > 0 ? res->cpu / 100 * 1e6 / res->ops_s : NAN;
    if (res->other > r->other)
        r->other = res->other;
    r->n++;
}

static const char *s_ratio2(char *buf, size_t size, double a, double b)
{
    if (!(b > 0) || isnan(a))
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%.2f", a / b);
    return buf;
}

/*  Runs engramd (durability sync) under each policy asked for, both running at once, and the
 *  same put and get cells against each, in rounds whose policy order alternates; prints the
 *  medians and the ratios graph/allow-all. Returns the number of cells that failed. */
static int s_acl_compare(const s_config_t *cfg, bench_acl_t *const acl[POL_COUNT],
                         size_t max_clients)
{
    static const bool engram_only[SYS_COUNT] = {[SYS_ENGRAM] = true};
    s_mode_t modes[POL_COUNT] = {{0}};
    double write_ns[POL_COUNT] = {NAN, NAN}, read_ns[POL_COUNT] = {NAN, NAN};
    double import_s[POL_COUNT] = {NAN, NAN};
    bench_acl_decider_t *decider[POL_COUNT] = {NULL, NULL};
    for (int p = 0; p < POL_COUNT; p++) {
        if (!cfg->policies[p])
            continue;
        decider[p] = bench_acl_decider_new(acl[p], "bench-0", USER, SCOPE, bench_acl_sources, 2,
                                           &import_s[p]);
        if (!decider[p])
            DIE("the %s statements do not let bench-0 work on %s", s_policy_names[p], SCOPE);
    }
    /* the policies alternate, so that both see the same disturbances; the least counts */
    for (int t = 0; t < DECISION_TIMINGS; t++)
        for (int p = 0; p < POL_COUNT; p++) {
            double w, r;
            if (!decider[p])
                continue;
            bench_acl_decider_time(decider[p], &w, &r);
            write_ns[p] = t == 0 || w < write_ns[p] ? w : write_ns[p];
            read_ns[p] = t == 0 || r < read_ns[p] ? r : read_ns[p];
        }
    for (int p = 0; p < POL_COUNT; p++) {
        bench_acl_decider_destroy(&decider[p]);
        if (!cfg->policies[p])
            continue;
        modes[p].sources = true;
        s_mode_start(&modes[p], cfg, true, engram_only, s_policy_names[p], acl[p], p);
    }
    printf("\naccess control: engramd --durability sync under two policies, the same cells, "
           "%u round(s) of %.1f s cells, the policies' order alternating each round\n",
           cfg->rounds, cfg->duration);
    printf("  put: %d-byte values into %s, each put declaring the sources %s and %s (kept as "
           "its provenance); get: keys those puts wrote (the fragment's provenance is checked "
           "again at each read)\n",
           VALUE_BYTES, SCOPE, bench_acl_sources[0], bench_acl_sources[1]);
    if (cfg->policies[POL_ALLOW])
        printf("  allow-all: %zu statements: each of the %zu agents registered, one user edge, "
               "one edge to \"*\"; no write policy\n",
               bench_acl_size(acl[POL_ALLOW]), max_clients + 1);
    if (cfg->policies[POL_GRAPH])
        printf("  graph:     %zu statements: %d other agents (user edge, 5 resource edges: "
               "exact, run:q*, tool:, kb:, app:/team:; a tenth with a revoked edge), %d write "
               "policies on other scopes; the %zu bench agents granted through \"run:*\" behind "
               "a revoked user edge, a revoked %s edge and 4 other edges (bench/bench_acl.c)\n",
               bench_acl_size(acl[POL_GRAPH]), BENCH_ACL_GRAPH_AGENTS, BENCH_ACL_GRAPH_POLICIES,
               max_clients, SCOPE);
    printf("  the decisions of one request, timed in this process (node_acl_*: identify + act + "
           "scope, then the write policy for a put, the fragment's provenance for a get; the "
           "least of %d timings of each, the policies alternating):\n",
           DECISION_TIMINGS);
    for (int p = 0; p < POL_COUNT; p++)
        if (cfg->policies[p])
            printf("    %-9s put %6.0f ns, get %6.0f ns; node_acl_add of its statements %.3f s "
                   "(engramd: start to first answer %.2f s)\n",
                   s_policy_names[p], write_ns[p], read_ns[p], import_s[p], modes[p].started_s);
    fflush(stdout);

    s_rounds_t res[OP_COUNT][MAX_LEVELS][POL_COUNT];
    memset(res, 0, sizeof res);
    for (unsigned r = 0; r < cfg->rounds && !bench_interrupted; r++)
        for (int op = 0; op < OP_COUNT && !bench_interrupted; op++) {
            if (!cfg->ops[op])
                continue;
            for (size_t c = 0; c < cfg->nclients && !bench_interrupted; c++)
                for (int i = 0; i < POL_COUNT && !bench_interrupted; i++) {
                    int p = r % 2 ? POL_COUNT - 1 - i : i;
                    if (!cfg->policies[p])
                        continue;
                    s_result_t one =
                        s_cell_run(cfg, &modes[p], SYS_ENGRAM, (s_op_t)op, cfg->clients[c]);
                    s_rounds_add(&res[op][c][p], &one);
                }
        }

    printf("%-4s %7s   %-34s   %-34s   %-38s\n", "", "", "------------ allow-all -------------",
           "--------------- graph --------------", "----------- graph/allow-all ----------");
    printf("%-4s %7s   %8s %8s %8s %7s   %8s %8s %8s %7s   %6s %6s %6s %14s %6s\n", "op", "clients",
           "ops/s", "p50", "p99", "cpu/op", "ops/s", "p50", "p99", "cpu/op", "ops/s", "p50",
           "cpu/op", "ops/s rounds", "other");
    int failures = 0;
    for (int op = 0; op < OP_COUNT; op++) {
        if (!cfg->ops[op])
            continue;
        for (size_t c = 0; c < cfg->nclients; c++) {
            char cols[POL_COUNT][64], a[16], b[16], d[16], q[2][16], spread[32] = "-";
            double ops[POL_COUNT], p50[POL_COUNT], cpu_op[POL_COUNT], other = 0;
            char q2[16];
            for (int p = 0; p < POL_COUNT; p++) {
                const s_rounds_t *x = &res[op][c][p];
                ops[p] = s_median(x->ops_s, x->n);
                p50[p] = s_median(x->p50, x->n);
                cpu_op[p] = s_median(x->cpu_op, x->n);
                if (x->other > other)
                    other = x->other;
                failures += x->errors != 0;
                if (!cfg->policies[p] || x->n == 0) {
                    snprintf(cols[p], sizeof cols[p], "%8s %8s %8s %7s", "-", "-", "-", "-");
                    continue;
                }
                snprintf(cols[p], sizeof cols[p], "%8s %8s %8s %5.0fus",
                         bench_si(a, sizeof a, ops[p]), bench_lat(b, sizeof b, (uint64_t)p50[p]),
                         bench_lat(d, sizeof d, (uint64_t)s_median(x->p99, x->n)), cpu_op[p]);
            }
            /* the spread of the per-round ratios: how much to trust the median's */
            const s_rounds_t *x = &res[op][c][POL_ALLOW], *y = &res[op][c][POL_GRAPH];
            if (x->n == y->n && x->n > 1) {
                double lo = INFINITY, hi = -INFINITY;
                for (size_t i = 0; i < x->n; i++) {
                    double ratio = y->ops_s[i] / x->ops_s[i];
                    lo = ratio < lo ? ratio : lo;
                    hi = ratio > hi ? ratio : hi;
                }
                snprintf(spread, sizeof spread, "%.2f..%.2f", lo, hi);
            }
            printf("%-4s %7u   %s   %s   %6s %6s %6s %14s %6.0f\n", s_op_names[op], cfg->clients[c],
                   cols[POL_ALLOW], cols[POL_GRAPH],
                   s_ratio2(q[0], sizeof q[0], ops[POL_GRAPH], ops[POL_ALLOW]),
                   s_ratio2(q[1], sizeof q[1], p50[POL_GRAPH], p50[POL_ALLOW]),
                   s_ratio2(q2, sizeof q2, cpu_op[POL_GRAPH], cpu_op[POL_ALLOW]), spread, other);
        }
    }
    printf("  medians over the rounds; cpu/op: engramd's CPU time per operation (less disturbed "
           "by other processes than ops/s: it counts only engramd's own work, though cache "
           "misses still grow with the host's load); ratios: graph / allow-all (ops/s below 1, "
           "p50 and cpu/op above 1: the graph costs; the goal: under 10%%); ops/s rounds: the "
           "lowest and highest ratio of a single round; other: the most CPU the rest of the host "
           "used\n");
    for (int op = 0; op < OP_COUNT; op++)
        for (size_t c = 0; c < cfg->nclients; c++)
            for (int p = 0; p < POL_COUNT; p++)
                if (res[op][c][p].errors)
                    printf("  FAIL: %s %s, %u clients: %" PRIu64 " operations failed (see "
                           "stderr)\n",
                           s_policy_names[p], s_op_names[op], cfg->clients[c],
                           res[op][c][p].errors);
    fflush(stdout);
    for (int p = 0; p < POL_COUNT; p++)
        if (cfg->policies[p])
            s_mode_stop(&modes[p]);
    return failures;
}

/*  --- main ------------------------------------------------------------------------- */

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: engram-node-bench [--quick] [--duration SECONDS] [--clients 1,16,64]\n"
            "                         [--modes sync,async] [--ops put,get]\n"
            "                         [--systems engram,redis,rocksdb] [--max-batch N]\n"
            "                         [--busy-poll-us N] [--pipeline N] [--values token|text]\n"
            "                         [--engramd PATH] [--redis-server PATH]\n"
            "       engram-node-bench --acl-compare [--acl allow-all,graph] [--rounds N]\n"
            "                         [--quick] [--duration SECONDS] [--clients 1,64]\n"
            "                         [--ops put,get] [--max-batch N] [--busy-poll-us N]\n"
            "                         [--engramd PATH]\n");
}

/*  Parses "a,b,c" of names into flags. */
static bool s_parse_names(const char *arg, const char *const *names, size_t count, bool *flags)
{
    memset(flags, 0, count * sizeof *flags);
    char *copy = strdup(arg), *save = NULL;
    bool ok = copy != NULL;
    for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; ok && tok;
         tok = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        while (i < count && strcmp(tok, names[i]) != 0)
            i++;
        if (i == count)
            ok = false;
        else
            flags[i] = true;
    }
    free(copy);
    return ok;
}

static void s_parse(s_config_t *cfg, int argc, char **argv)
{
    *cfg = (s_config_t){.duration = 3.0,
                        .clients = {1, 16, 64},
                        .nclients = 3,
                        .modes = {true, true},
                        .ops = {true, true},
                        .systems = {true, true, true},
                        .engramd = ENGRAMD_PATH,
                        .redis = REDIS_SERVER_PATH,
                        .policies = {true, true},
                        .rounds = 3,
                        .depth = 1};
    bool duration_set = false, clients_set = false, rounds_set = false;
    static const char *const mode_names[] = {"sync", "async"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "--quick") == 0) {
            cfg->quick = true;
            continue;
        } else if (strcmp(a, "--acl-compare") == 0) {
            cfg->acl_compare = true;
            continue;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            s_usage(stdout);
            exit(0);
        } else if (!v) {
            ok = false;
        } else if (strcmp(a, "--duration") == 0) {
            char *end;
            cfg->duration = strtod(v, &end);
            ok = *end == '\0' && cfg->duration > 0 && cfg->duration < 3600;
            duration_set = true;
        } else if (strcmp(a, "--clients") == 0) {
            cfg->nclients = 0;
            char *copy = strdup(v), *save = NULL;
            for (char *tok = strtok_r(copy, ",", &save); ok && tok;
                 tok = strtok_r(NULL, ",", &save)) {
                char *end;
                unsigned long n = strtoul(tok, &end, 10);
                ok = *end == '\0' && n >= 1 && n <= MAX_CLIENTS && cfg->nclients < MAX_LEVELS;
                if (ok)
                    cfg->clients[cfg->nclients++] = (unsigned)n;
            }
            free(copy);
            ok = ok && cfg->nclients > 0;
            clients_set = true;
        } else if (strcmp(a, "--acl") == 0) {
            ok = s_parse_names(v, s_policy_names, POL_COUNT, cfg->policies);
            cfg->acl_compare = true;
        } else if (strcmp(a, "--rounds") == 0) {
            char *end;
            unsigned long n = strtoul(v, &end, 10);
            ok = *end == '\0' && n >= 1 && n <= MAX_ROUNDS;
            cfg->rounds = (unsigned)n;
            rounds_set = true;
        } else if (strcmp(a, "--modes") == 0) {
            ok = s_parse_names(v, mode_names, 2, cfg->modes);
        } else if (strcmp(a, "--ops") == 0) {
            ok = s_parse_names(v, s_op_names, OP_COUNT, cfg->ops);
        } else if (strcmp(a, "--systems") == 0) {
            ok = s_parse_names(v, s_sys_names, SYS_COUNT, cfg->systems);
        } else if (strcmp(a, "--pipeline") == 0) {
            char *end;
            unsigned long n = strtoul(v, &end, 10);
            ok = *end == '\0' && n >= 1 && n <= 1024;
            cfg->depth = (unsigned)n;
        } else if (strcmp(a, "--max-batch") == 0) {
            char *end;
            unsigned long n = strtoul(v, &end, 10);
            ok = *end == '\0' && n >= 1 && n <= 1000000;
            cfg->max_batch = (unsigned)n;
        } else if (strcmp(a, "--busy-poll-us") == 0) {
            char *end;
            unsigned long n = strtoul(v, &end, 10);
            ok = *end == '\0' && n >= 1 && n <= ENGRAM_MAX_BUSY_POLL_US;
            cfg->busy_poll_us = (unsigned)n;
        } else if (strcmp(a, "--values") == 0) {
            ok = strcmp(v, "token") == 0 || strcmp(v, "text") == 0;
            s_text_values = strcmp(v, "text") == 0;
        } else if (strcmp(a, "--engramd") == 0) {
            cfg->engramd = v;
        } else if (strcmp(a, "--redis-server") == 0) {
            cfg->redis = v;
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "engram-node-bench: bad option '%s%s%s'\n", a, v ? " " : "",
                    v ? v : "");
            s_usage(stderr);
            exit(2);
        }
        i++;
    }
    if (cfg->quick && !duration_set)
        cfg->duration = 0.2;
    if (cfg->acl_compare && !clients_set) {
        cfg->clients[0] = 1;
        cfg->clients[1] = 64;
        cfg->nclients = 2;
    }
    if (cfg->quick && !rounds_set)
        cfg->rounds = 1;
    if (cfg->ops[OP_GET] && !cfg->ops[OP_PUT]) {
        fprintf(stderr, "engram-node-bench: gets read the keys the puts wrote: add put\n");
        exit(2);
    }
}

/*  The statements of each policy, signed by one admin (s_tmpdir/admin): allow-all for the
 *  tables and the comparison, graph for the comparison. The control agent has one allow-all
 *  edge in both. */
static void s_acls_provision(const s_config_t *cfg, bench_acl_t *acl[POL_COUNT], size_t max_clients)
{
    char home[300];
    snprintf(home, sizeof home, "%s/admin", s_tmpdir);
    const char **names = calloc(max_clients, sizeof *names);
    char(*buf)[32] = calloc(max_clients, sizeof *buf);
    if (!names || !buf)
        DIE("out of memory");
    for (size_t i = 0; i < max_clients; i++) {
        snprintf(buf[i], sizeof buf[i], "bench-%zu", i);
        names[i] = buf[i];
    }
    for (int p = 0; p < POL_COUNT; p++) {
        if (p == POL_GRAPH && !(cfg->acl_compare && cfg->policies[POL_GRAPH]))
            continue;
        if (!(acl[p] = bench_acl_new(home)))
            DIE("no admin for engramd's access control");
        if (bench_acl_allow_all(acl[p], USER, "bench-control", false) != 0)
            DIE("cannot sign the statements of bench-control");
        int rc = 0;
        if (p == POL_ALLOW)
            for (size_t i = 0; i < max_clients && rc == 0; i++)
                rc = bench_acl_allow_all(acl[p], USER, names[i], false);
        else
            rc = bench_acl_graph(acl[p], USER, names, max_clients, SCOPE);
        if (rc != 0)
            DIE("cannot sign the statements of the %s policy", s_policy_names[p]);
    }
    free(buf);
    free(names);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--floor-server") == 0)
        return transport_floor_serve(argc - 2, argv + 2);
    s_config_t cfg;
    s_parse(&cfg, argc, argv);

    const char *base = getenv("TMPDIR");
    snprintf(s_tmpdir, sizeof s_tmpdir, "%s/engram-node-bench.XXXXXX",
             base && *base && strlen(base) < 100 ? base : "/tmp");
    if (!mkdtemp(s_tmpdir)) {
        s_tmpdir[0] = '\0';
        DIE("mkdtemp: %s", strerror(errno));
    }
    bench_start(&s_stop, s_release, s_cleanup);
    /* the agents' keys (engramd's API is CURVE), before any thread: it sets ENGRAM_HOME */
    if (!agent_keys_home())
        DIE("no $ENGRAM_HOME for the agents' keys");
    signal(SIGPIPE, SIG_IGN);
    /* the access control of every engramd: one admin; its statements for each policy */
    size_t max_clients = 0;
    for (size_t c = 0; c < cfg.nclients; c++)
        max_clients = cfg.clients[c] > max_clients ? cfg.clients[c] : max_clients;
    bench_acl_t *acl[POL_COUNT] = {NULL, NULL};
    s_acls_provision(&cfg, acl, max_clients);

    printf("engram-node-bench (%s build): %.1f s per cell, %d-byte values (%s), keys k%%08u of "
           "%u, scope %s, %ld CPUs\n",
           ENGRAM_BENCH_BUILD_TYPE, cfg.duration, VALUE_BYTES,
           s_text_values ? "text: a stamp and words, each indexed"
                         : "one run of letters, longer than a search term: not indexed",
           KEY_SPACE, SCOPE, sysconf(_SC_NPROCESSORS_ONLN));
    printf("engramd %s (ipc, one engram_t per client), redis-server (TCP loopback, one hiredis "
           "connection per client), RocksDB %s C API (one handle shared by the client threads)\n",
           cfg.engramd, ENGRAM_BENCH_ROCKSDB_VERSION);
    if (cfg.depth > 1)
        printf("pipelined: rounds of %u requests per client: an engram_batch_t of %u (at most %d "
               "awaiting replies, ENGRAM_BATCH_WINDOW), %u hiredis commands appended, then their "
               "replies read; latency is the round's\n",
               cfg.depth, cfg.depth, ENGRAM_BATCH_WINDOW, cfg.depth);
    else
        printf("one request in flight per client, no pipelining\n");
    if (cfg.max_batch)
        printf("engramd --max-batch %u\n", cfg.max_batch);
    if (cfg.busy_poll_us)
        printf("engramd --busy-poll-us %u\n", cfg.busy_poll_us);
    printf("ops/s over the cell's wall time; p50/p99 latency per operation (all samples); group: "
           "engramd writes per group commit;\ncpu s+c: CPU of the server process + of this "
           "process (the clients; for RocksDB the store itself), 100 = one core;\nother: the "
           "most CPU the rest of the host used during the row's cells (kernel threads, other "
           "processes): the noise\n");
    printf("access control: every agent registered, acting for user %s with one edge to \"*\" "
           "(allow-all)%s\n",
           USER, cfg.acl_compare ? "; against a realistic graph below" : "");
    fflush(stdout);

    int failures = 0;
    double redis_put[2][MAX_LEVELS] = {{0}}; /* [sync, async][client level]: for the put floor */
    if (cfg.acl_compare)
        failures += s_acl_compare(&cfg, acl, max_clients);
    for (int mi = 0; mi < 2 && !bench_interrupted && !cfg.acl_compare; mi++) {
        if (!cfg.modes[mi])
            continue;
        s_mode_t mode = {0};
        s_mode_start(&mode, &cfg, mi == 0, cfg.systems, mi == 0 ? "sync" : "async", acl[POL_ALLOW],
                     0);
        if (mode.redis_version[0] && mi == 0)
            printf("redis-server %s\n", mode.redis_version);
        for (int op = 0; op < OP_COUNT && !bench_interrupted; op++) {
            if (!cfg.ops[op])
                continue;
            s_result_t res[MAX_LEVELS][SYS_COUNT] = {{{0}}};
            for (size_t c = 0; c < cfg.nclients && !bench_interrupted; c++)
                for (int s = 0; s < SYS_COUNT && !bench_interrupted; s++)
                    if (cfg.systems[s])
                        res[c][s] = s_cell_run(&cfg, &mode, (s_sys_t)s, (s_op_t)op, cfg.clients[c]);
            s_print_table(&cfg, &mode, (s_op_t)op, res);
            /* the floor sends one token-sized put at a time: not beside pipelined or text cells */
            bool comparable = cfg.depth <= 1 && !s_text_values;
            for (size_t c = 0; c < cfg.nclients && op == OP_PUT && comparable; c++)
                redis_put[mi][c] = res[c][SYS_REDIS].ran ? res[c][SYS_REDIS].ops_s : 0;
            for (size_t c = 0; c < cfg.nclients; c++)
                for (int s = 0; s < SYS_COUNT; s++)
                    failures += res[c][s].errors != 0;
        }
        if (cfg.systems[SYS_ENGRAM] && !bench_interrupted) {
            engram_stats_t st;
            if (engram_stats(mode.control, &st) == 0)
                printf("engramd (%s) totals: %" PRIu64 " requests, %" PRIu64 " errors, %" PRIu64
                       " writes, %" PRIu64 " group commits\n",
                       mode.sync ? "sync" : "async", st.requests, st.errors, st.writes, st.commits);
        }
        s_mode_stop(&mode);
    }
    if (cfg.systems[SYS_ENGRAM] && !cfg.acl_compare && !bench_interrupted)
        failures += transport_floor_print(
            s_tmpdir, cfg.clients, cfg.nclients, cfg.duration,
            cfg.ops[OP_PUT] ? (const double *[2]){redis_put[0], redis_put[1]} : NULL);
    for (int p = 0; p < POL_COUNT; p++)
        bench_acl_destroy(&acl[p]);
    if (bench_interrupted) {
        fprintf(stderr, "engram-node-bench: interrupted\n");
        return 130;
    }
    if (failures)
        printf("\n%d cell(s) had failed operations\n", failures);
    return failures ? 1 : 0;
}
