/*  engram-cluster-bench: what replication between engramd nodes costs, beside the peers an
 *  operator would otherwise pick: Redis with replicas (asynchronous replication, optionally
 *  WAIT) and a 3-member etcd cluster (Raft). Everything runs on this host's loopback.
 *
 *  Five measurements, each printed as a table with the command that reproduces it:
 *
 *    lag      Replication lag. A 3-node engram cluster (deploy/local-cluster.sh); writers on
 *             node A, open loop at 1k and 10k writes/s (LAG_WRITERS threads, one request in
 *             flight each; a write issued late counts from its scheduled time, so queueing is
 *             in the figure); a subscriber on node B (engram_subscribe) timestamps the event of
 *             every key. Lag = arrival on B - scheduled write time on A. Beside it Redis, a
 *             primary and a replica (`--replicaof`), the replica's keyspace events
 *             (__keyevent@0__:set) timestamped the same way; and the lag floor
 *             (transport_floor_lag_start, bench/transport_floor.h: a primary and two backups
 *             with no engram code, only engram's transport and a put's RocksDB keys, fsynced
 *             on the primary before it answers or pushes them, backup B sending its
 *             subscriber an event a put once it wrote the push out, fsyncing at a tick as an
 *             engramd replica), once with the primary fsyncing each turn before the next as
 *             engramd does and once with an fsync thread. Each cell starts once the host is
 *             quiet (the servers of the cell before may still compact or deliver). Writes that
 *             never arrived within the grace period are counted, then looked up with a point
 *             read on B: "missing" is what B cannot read at all (replication broken: the run
 *             fails; the floor's cannot be read, so all it did not deliver is missing).
 *    put      Replicated write throughput, 64 clients (one thread and connection each, one
 *             request in flight, closed loop): engram plain puts (local durability sync,
 *             replication asynchronous) and puts with --replicas 3 (answered once all three
 *             nodes hold the write), every client on node A and spread over the 3 nodes;
 *             etcd 3.4 with 3 members, puts through its gRPC gateway (HTTP/1.1 JSON POST
 *             /v3/kv/put, a minimal keep-alive client per thread: not etcdctl), all clients on
 *             member 1 and spread; Redis primary with two replicas, SET (asynchronous
 *             replication) and SET followed by WAIT 2 1000 (both replicas acknowledged); and
 *             the replication floor (transport_floor_replicated, bench/transport_floor.h): a
 *             primary and two backups with no engram code, only engram's transport and a
 *             put's RocksDB keys, fsynced on all three, clients on the primary.
 *    bytes    Bytes of replication per write against the payload (64 B, 1 KiB, 16 KiB), while
 *             the cluster replicates N writes made on A: the gossip bytes the engines count
 *             (cluster status bytes_sent summed over the three nodes: encoded gossip messages,
 *             pushes, acks and digests), and the TCP payload bytes of the gossip connections
 *             (`ss -ti` bytes_sent, so ZMTP and CurveZMQ framing included), both net of the
 *             idle gossip measured just before. Beside it Redis with two replicas: the
 *             primary's replication output plus input (INFO total_net_repl_*_bytes). Each
 *             payload twice: values of random letters and digits (text, about 6 bits a byte)
 *             and of random bytes (incompressible). engram compresses its gossip (zstd), Redis
 *             its replication stream not: the floor for three full replicas is 2 x payload
 *             uncompressed, about 1.5 x for the text.
 *    revoke   Revocation across three nodes: per round (50; --quick 5) the admin grants agent
 *             bench-revoke-reader read on a fresh scope run:revoke-N through node A (an
 *             admin's connection: engram_connect_keys with the admin's CURVE key pair,
 *             engram_acl_submit), waits until that agent reads a key of the scope on node C,
 *             then revokes the edge through node B (Revocation{target: the edge's id, at_ms:
 *             now}). Measured: from engram_acl_submit of the revocation returning on B to the
 *             first read refused (ENGRAM_EDENIED) on C, reads on C polled back to back; the
 *             grant's own way from A to C beside it. p50/p99/max; the gossip settings are
 *             printed (engramd's defaults, as local-cluster.sh starts the nodes, plus
 *             $ENGRAM_NODE_FLAGS, which the script passes on). A round whose grant or
 *             revocation never shows on C within 10 s fails the run.
 *    catchup  Bytes to bring back a node that missed K writes: with T keys written beforehand
 *             (T = 10k, then 100k), node C is stopped (SIGTERM), K writes go to A, C restarts
 *             (`local-cluster.sh restart`) and the time until C's version vector of the scope
 *             equals A's is measured, with the gossip bytes C received since its start
 *             (its cluster status bytes_received: the counters start at 0 with the process).
 *             K = 0 is the baseline (a restart that missed nothing). It must track K, not T.
 *
 *  Run (Release, not sanitized, for numbers):
 *      cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2
 *      build/bench/engram-cluster-bench                      # all five, about 3 minutes
 *      build/bench/engram-cluster-bench --only lag,bytes     # some of them
 *      build/bench/engram-cluster-bench --quick              # smoke run, < 30 s (a CTest)
 *  --no-redis, --no-etcd leave the peers out; without their binaries (deploy/install-deps.sh
 *  --bench) they are skipped and the table says so. --duration S sets the seconds per lag and
 *  put cell, --clients N the put clients, --rates A,B the lag cells' writes/s. The lag and put
 *  cells write one run of letters and digits, longer than a search term, so the index drops
 *  it; --values text writes a stamp and words instead, which every node indexes, as an
 *  agent's text memories.
 *
 *  Access control: before local-cluster.sh first starts a cluster in DIR, the benchmark makes
 *  the cluster's admin in DIR/home itself (bench_acl_new: node_admin_init; the script then
 *  signs the nodes' cards with it instead of running `engram cluster init`) and writes every
 *  node's DIR/nI/data/acl.init (bench_acl_write): the script's probe agent (local-cluster, its
 *  key made through `local-cluster.sh agents`) registered, every agent the benchmark connects
 *  as registered for user "bench" with one allow-all edge ("*"; bench-control also reads
 *  "cluster", for cluster status), and bench-revoke-reader registered with no edge. The
 *  agents' keys live in this process's $ENGRAM_HOME (tests/support/agent_keys.h).
 *
 *  Processes: engram nodes are started by deploy/local-cluster.sh (ENGRAM_BIN = this build's
 *  node directory, ENGRAM_BASE_PORT random in 20000-60000); they detach (setsid), so this
 *  process makes itself their subreaper and stops them by pid at exit, after a failure or a
 *  SIGINT/SIGTERM. redis-server and etcd are its own children with PR_SET_PDEATHSIG. A
 *  SIGKILL of the benchmark leaves the engram nodes running (their pids are in DIR/n*\/pid).
 *  Exit status: 0; 1 if a measurement failed (a write never arrived, operations failed, a node
 *  never caught up); 2 if a system could not be started.
 *
 *  Limits: every server and client shares the machine's cores (2 where this was written), so
 *  a cluster of three is three processes competing for the same CPUs, and loopback has no
 *  network latency: lag here is processing and batching delay, not distance.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

#include "engram/engram.h"

#include "agent_keys.h"
#include "bench_util.h"
#include "transport_floor.h"

#ifndef ENGRAM_BENCH_BUILD_TYPE
#define ENGRAM_BENCH_BUILD_TYPE "unknown"
#endif
#ifndef ENGRAM_BIN_DIR
#define ENGRAM_BIN_DIR "build/bin"
#endif
#ifndef LOCAL_CLUSTER_SH
#define LOCAL_CLUSTER_SH "deploy/local-cluster.sh"
#endif
#ifndef REDIS_SERVER_PATH
#define REDIS_SERVER_PATH "redis-server"
#endif
#ifndef ETCD_PATH
#define ETCD_PATH "etcd"
#endif

#define VALUE_BYTES         256 /* lag, put and catchup writes */
#define NODES               3
#define MAX_CLIENTS         256
#define MAX_RATES           4
#define LAG_WRITERS         16 /* open-loop writer threads of a lag cell */
#define LOAD_THREADS        16 /* closed-loop writers that fill the catchup scope */
#define BYTES_THREADS       8
#define START_WAIT_S        20.0
#define SETTLE_WAIT_S       120.0
#define PORT_MIN            20000
#define PORT_MAX            60000
#define SCOPE_LAG           "run:lag"
#define SCOPE_PUT           "run:put"
#define SCOPE_BYTES         "run:bytes"
#define SCOPE_CATCH         "run:catchup"
#define SCOPE_REVOKE        "run:revoke-" /* then the round's number */
#define USER                "bench"
#define REVOKE_ROUNDS       50
#define REVOKE_ROUNDS_QUICK 5
#define REVOKE_WAIT_S       10.0 /* a grant or revocation not seen on C by then: the round fails */
/*  The agent deploy/local-cluster.sh checks a node with (`engram stats`, keys in DIR/home). */
/*  The agent of the revoke cell whose access is granted and revoked, and its writer. */
#define REVOKE_READER "bench-revoke-reader"
#define REVOKE_WRITER "bench-revoke-writer"

enum { M_LAG, M_PUT, M_BYTES, M_REVOKE, M_CATCHUP, M_COUNT };
static const char *const s_m_names[M_COUNT] = {"lag", "put", "bytes", "revoke", "catchup"};

/*  Every agent the benchmark connects as, each with one allow-all edge (bench_acl_allow_all);
 *  the control agent reads the cluster's status too. REVOKE_READER is registered without any
 *  edge: the revoke cell grants and revokes its access. */
static const char *const s_agents[] = {"bench-control", "bench-writer", "bench-reader",
                                       "bench-check",   "bench-put",    "bench-load",
                                       REVOKE_WRITER};

typedef struct {
    bool quick;
    bool only[M_COUNT];
    double duration; /* seconds per lag and put cell */
    double grace;    /* seconds a lag cell waits for late arrivals */
    unsigned rates[MAX_RATES];
    size_t nrates;
    unsigned clients;
    bool redis, etcd;
    bool text_values; /* lag and put values are words the search index indexes */
    const char *redis_path, *etcd_path, *bin_dir, *script;
    const char *argv0;
} s_config_t;

/*  --- what has to be cleaned up, also from a failure path ---------------------------- */

typedef struct {
    char dir[300];
    int base;
    pid_t pid[NODES + 1];     /* [1..NODES]; 0 while stopped */
    char api[NODES + 1][400]; /* ipc://DIR/nI/api.sock */
    engram_t *ctl[NODES + 1]; /* status connections, main thread only */
    uint64_t id[NODES + 1];   /* node ids */
    bench_acl_t *acl;         /* the cluster's admin (DIR/home) and what its nodes start with */
} s_cluster_t;

static char s_tmpdir[256];
static s_cluster_t *s_live; /* the running engram cluster */
static atomic_bool s_stop;  /* the running cell ends */
static const s_config_t *s_cfg;

static void s_cluster_release(s_cluster_t *c)
{
    for (int i = 1; i <= NODES; i++)
        if (c->ctl[i])
            engram_destroy(&c->ctl[i]);
}

static void s_cluster_stop(s_cluster_t *c)
{
    s_cluster_release(c);
    bench_acl_destroy(&c->acl);
    for (int i = 1; i <= NODES; i++) {
        bench_stop(c->pid[i]);
        c->pid[i] = 0;
    }
    if (c->dir[0])
        bench_rm_tree(c->dir);
    if (s_live == c)
        s_live = NULL;
}

static void s_cleanup(void)
{
    if (s_live)
        s_cluster_stop(s_live);
    bench_children_stop();
    if (s_tmpdir[0]) {
        bench_rm_tree(s_tmpdir);
        s_tmpdir[0] = '\0';
    }
}

/*  What must go before czmq's atexit handler when the benchmark gives up. */
static void s_release(void)
{
    if (s_live)
        s_cluster_release(s_live);
}

#define DIE(...) BENCH_DIE(__VA_ARGS__)

/*  --- helpers ------------------------------------------------------------------------ */

/*  Sleeps until ns (CLOCK_MONOTONIC); returns at once if that has passed: a writer behind its
 *  schedule arms no timer (an hrtimer armed in the past still fires an interrupt, about 18 us
 *  of CPU a put on this project's VM, taken from the systems measured). */
static void s_sleep_until_ns(uint64_t ns)
{
    if (bench_now_ns() >= ns)
        return;
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR &&
           !atomic_load_explicit(&s_stop, memory_order_relaxed))
        ;
}

static uint64_t s_port_rng;

static const char *s_ratio(char *buf, size_t size, double e, double peer)
{
    if (!(peer > 0) || isnan(e))
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, e / peer >= 100 ? "%.0f" : e / peer >= 10 ? "%.1f" : "%.2f", e / peer);
    return buf;
}

static void *s_alloc(size_t n)
{
    void *p = calloc(n ? n : 1, 1);
    if (!p)
        DIE("out of memory");
    return p;
}

static void s_push(uint64_t **array, size_t *n, size_t *cap, uint64_t value)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4096;
        uint64_t *grown = realloc(*array, *cap * sizeof *grown);
        if (!grown)
            DIE("out of memory");
        *array = grown;
    }
    (*array)[(*n)++] = value;
}

static bool s_port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/*  A random base in PORT_MIN..PORT_MAX such that base + offsets[i] are all free. */
static int s_port_base(const int *offsets, size_t n, int span)
{
    for (int attempt = 0; attempt < 200; attempt++) {
        int base =
            PORT_MIN + (int)(bench_rand(&s_port_rng) % (uint64_t)(PORT_MAX - PORT_MIN - span));
        bool ok = true;
        for (size_t i = 0; ok && i < n; i++)
            ok = s_port_free(base + offsets[i]);
        if (ok)
            return base;
    }
    DIE("no free ports found in %d-%d", PORT_MIN, PORT_MAX);
}

static bool s_executable(const char *path)
{
    if (strchr(path, '/'))
        return access(path, X_OK) == 0;
    const char *p = getenv("PATH");
    char buf[1024];
    while (p && *p) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        snprintf(buf, sizeof buf, "%.*s/%s", (int)len, p, path);
        if (access(buf, X_OK) == 0)
            return true;
        p = colon ? colon + 1 : NULL;
    }
    return false;
}

/*  The most CPU (100 = one core) that processes other than this one and the servers it runs
 *  used during a cell of the running table: other work on the host disturbing the figures. */
static double s_other_max;

typedef struct {
    double host, self, servers, wall;
} s_usage_t;

static s_usage_t s_usage_at(double servers)
{
    return (s_usage_t){bench_host_cpu_seconds(), bench_self_cpu_seconds(), servers, bench_now()};
}

static void s_usage_note(s_usage_t a, s_usage_t b)
{
    double other = 100.0 * ((b.host - a.host) - (b.self - a.self) - (b.servers - a.servers)) /
                   (b.wall - a.wall);
    if (other > s_other_max)
        s_other_max = other;
}

static void s_other_print(void)
{
    if (s_other_max > 15)
        printf("  note: other processes kept the host up to %.0f%% busy (of %ld00%%) during these "
               "cells: the figures are disturbed\n",
               s_other_max, sysconf(_SC_NPROCESSORS_ONLN));
    else
        printf("  host: other processes used at most %.0f%% of a core during these cells\n",
               s_other_max < 0 ? 0 : s_other_max);
    s_other_max = 0;
}

/*  Waits, at most max_s seconds, until the host is quiet: processes other than this one busy
 *  less than QUIET_CPU % of a core over a quarter of a second (a cell's servers may work on
 *  after it, compacting or delivering a backlog, and would disturb the next cell). */
#define QUIET_CPU 20.0
static void s_wait_quiet(double max_s)
{
    double busy = 0;
    for (double deadline = bench_now() + max_s; bench_now() < deadline && !bench_interrupted;) {
        s_usage_t a = s_usage_at(0);
        bench_sleep(0.25);
        s_usage_t b = s_usage_at(0);
        busy = 100.0 * ((b.host - a.host) - (b.self - a.self)) / (b.wall - a.wall);
        if (busy < QUIET_CPU)
            return;
    }
    if (!bench_interrupted)
        printf("  note: the host was not quiet after %.0f s (other processes %.0f%% of a core): "
               "the next cell starts anyway\n",
               max_s, busy);
}

static double s_cpu_sum(const pid_t *pids, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        if (pids[i] > 0)
            sum += bench_cpu_seconds(pids[i]);
    return sum;
}

/*  TCP payload bytes sent by every established socket with one of ports at either end (both
 *  ends of a loopback connection are listed, each counting what it sent): `ss -ti`. -1 when
 *  ss is missing. */
static bool s_have_ss;
static int64_t s_tcp_bytes(const int *ports, size_t n)
{
    if (!s_have_ss)
        return -1;
    char cmd[1024] = "ss -tinH state established '(";
    size_t at = strlen(cmd);
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(cmd + at, sizeof cmd - at, "%s sport = :%d or dport = :%d",
                               i ? " or" : "", ports[i], ports[i]);
    snprintf(cmd + at, sizeof cmd - at, " )' 2>/dev/null");
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[4096];
    int64_t sum = 0;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, " bytes_sent:");
        if (p)
            sum += strtoll(p + 12, NULL, 10);
    }
    pclose(f);
    return sum;
}

static void s_key(char *buf, size_t size, const char *prefix, uint64_t i)
{
    snprintf(buf, size, "%s%08" PRIu64, prefix, i);
}

/*  Fills a value with random letters and digits (about 6 bits of entropy a byte: neither
 *  engram nor Redis's RDB/LZF can shrink it much, so byte counts compare fairly). */
static void s_value_fill(uint8_t *val, size_t len, uint64_t seed)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint64_t state = seed;
    for (size_t i = 0; i < len; i++)
        val[i] = (uint8_t)alnum[bench_rand(&state) % 62];
}

/*  The value a lag or put worker writes, before its stamp: random letters and digits, one run
 *  longer than a search term (SEARCH_MAX_TERM_BYTES), so the index drops it; or, with --values
 *  text, words it indexes (the worker's own mix, written again and again: the best case of
 *  the store's counter cache and df journal). */
static void s_worker_value(uint8_t *val, size_t len, unsigned worker)
{
    s_value_fill(val, len, worker + 1);
    if (s_cfg->text_values) /* the stamp, 0..16, is a word of its own */
        bench_words_fill(val, 17, len, worker + 1);
}

/*  A value of len bytes with the thread and operation number stamped into its start. */
static void s_value_stamp(uint8_t *val, size_t len, unsigned thread, uint64_t i)
{
    static const char hex[] = "0123456789abcdef";
    if (len < 17)
        return;
    val[0] = (uint8_t)hex[thread & 15];
    for (int d = 15; d >= 0; d--, i >>= 4)
        val[1 + d] = (uint8_t)hex[i & 15];
}

/*  --- engram: the cluster through deploy/local-cluster.sh ---------------------------- */

/*  Runs local-cluster.sh with a1 a2 [a3] for cluster c; its stdout into out. Exit status. */
static int s_script(const s_cluster_t *c, char *out, size_t size, const char *a1, const char *a2,
                    const char *a3)
{
    int fds[2];
    if (pipe(fds) != 0)
        DIE("pipe: %s", strerror(errno));
    char base[16];
    snprintf(base, sizeof base, "%d", c->base);
    pid_t pid = fork();
    if (pid < 0)
        DIE("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(fds[1], 1);
        close_range(3, ~0U, 0);
        setenv("ENGRAM_BIN", s_cfg->bin_dir, 1);
        setenv("ENGRAM_BASE_PORT", base, 1);
        execl("/bin/bash", "bash", s_cfg->script, a1, a2, a3, (char *)NULL);
        fprintf(stderr, "exec bash %s: %s\n", s_cfg->script, strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    size_t at = 0;
    ssize_t r;
    while ((r = read(fds[0], out + at, size - 1 - at)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0)
            at += (size_t)r;
    out[at] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/*  Takes "node=I api=EP gossip=EP http=URL pid=PID" lines. */
static void s_cluster_parse(s_cluster_t *c, const char *out)
{
    for (const char *line = out; line && *line;) {
        int i = 0, pid = 0;
        char api[400];
        if (sscanf(line, "node=%d api=%399s gossip=%*s http=%*s pid=%d", &i, api, &pid) == 3 &&
            i >= 1 && i <= NODES) {
            c->pid[i] = pid;
            snprintf(c->api[i], sizeof c->api[i], "%s", api);
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
}

static engram_t *s_engram_connect(const char *endpoint, const char *agent, int timeout_ms)
{
    engram_t *e = agent_keys_make(agent) == 0 ? engram_connect(endpoint, agent, USER) : NULL;
    if (!e)
        return NULL;
    engram_set_timeout(e, timeout_ms);
    engram_stats_t st;
    if (engram_stats(e, &st) != 0) {
        engram_destroy(&e);
        return NULL;
    }
    engram_set_timeout(e, ENGRAM_DEFAULT_CLIENT_TIMEOUT_MS);
    return e;
}

static engram_cluster_t *s_status(s_cluster_t *c, int i)
{
    engram_cluster_t *st = NULL;
    int rc = engram_cluster_status(c->ctl[i], &st);
    if (rc)
        DIE("cluster status of node %d: %s %s", i, engram_strerror(rc),
            engram_last_error(c->ctl[i]));
    return st;
}

static const engram_scope_status_t *s_scope_of(const engram_cluster_t *st, const char *scope)
{
    for (size_t i = 0; i < st->nscopes; i++)
        if (strcmp(st->scopes[i].scope, scope) == 0)
            return &st->scopes[i];
    return NULL;
}

/*  Every running node sees every other running node alive with no lag. */
static bool s_cluster_settled(s_cluster_t *c)
{
    int up = 0;
    for (int i = 1; i <= NODES; i++)
        up += c->pid[i] > 0;
    for (int i = 1; i <= NODES; i++) {
        if (c->pid[i] <= 0)
            continue;
        engram_cluster_t *st = s_status(c, i);
        int alive = 0;
        bool lagging = false;
        for (size_t m = 0; m < st->nmembers; m++) {
            const engram_member_t *mb = &st->members[m];
            if (strcmp(mb->state, "alive") != 0)
                continue;
            alive++;
            lagging |= !mb->lag_known || mb->lag_ops != 0;
        }
        engram_cluster_destroy(&st);
        if (lagging || alive < up - 1)
            return false;
    }
    return true;
}

static double s_cluster_wait_settled(s_cluster_t *c, double timeout_s)
{
    double t0 = bench_now();
    while (!s_cluster_settled(c)) {
        if (bench_now() - t0 > timeout_s || bench_interrupted)
            return -1;
        bench_sleep(0.02);
    }
    return bench_now() - t0;
}

/*  Gossip bytes sent, summed over the running nodes; their pushes sent and pulls answered
 *  into *pushes and *pulls if not NULL. */
static uint64_t s_bytes_sent(s_cluster_t *c, uint64_t *pushes, uint64_t *pulls)
{
    uint64_t sum = 0, pu = 0, pa = 0;
    for (int i = 1; i <= NODES; i++) {
        if (c->pid[i] <= 0)
            continue;
        engram_cluster_t *st = s_status(c, i);
        sum += st->bytes_sent;
        pu += st->pushes_sent;
        pa += st->pulls_answered;
        engram_cluster_destroy(&st);
    }
    if (pushes)
        *pushes = pu;
    if (pulls)
        *pulls = pa;
    return sum;
}

static void s_cluster_ports(const s_cluster_t *c, int ports[NODES])
{
    for (int i = 1; i <= NODES; i++)
        ports[i - 1] = c->base + 10 * i;
}

static void s_cluster_connect(s_cluster_t *c, int i)
{
    double deadline = bench_now() + START_WAIT_S;
    while (!(c->ctl[i] = s_engram_connect(c->api[i], "bench-control", 500)))
        if (bench_now() > deadline || bench_interrupted)
            DIE("node %d (%s) does not answer", i, c->api[i]);
    engram_cluster_t *st = s_status(c, i);
    c->id[i] = st->node_id;
    engram_cluster_destroy(&st);
}

/*  Before local-cluster.sh first starts the nodes of c: the admin in DIR/home (the script
 *  then signs the nodes' cards with it rather than make one, and probes the nodes with its
 *  key), and DIR/nI/data/acl.init for every node: every agent of the benchmark allowed,
 *  REVOKE_READER registered without an edge. */
static void s_cluster_provision(s_cluster_t *c)
{
    char path[600];
    snprintf(path, sizeof path, "%s/home", c->dir);
    if (!(c->acl = bench_acl_new(path)))
        DIE("no admin for the cluster in %s", path);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof s_agents / sizeof s_agents[0]; i++)
        rc = bench_acl_allow_all(c->acl, USER, s_agents[i], i == 0);
    if (rc == 0)
        rc = bench_acl_register(c->acl, USER, REVOKE_READER);
    for (int i = 1; rc == 0 && i <= NODES; i++) {
        snprintf(path, sizeof path, "%s/n%d/data", c->dir, i);
        rc = bench_acl_write(c->acl, path, false);
    }
    if (rc)
        DIE("cannot provision the access control of %s", c->dir);
}

static void s_cluster_start(s_cluster_t *c, const char *name)
{
    *c = (s_cluster_t){0};
    snprintf(c->dir, sizeof c->dir, "%s/%s", s_tmpdir, name);
    int offsets[3 * NODES]; /* gossip, introductions, metrics (deploy/local-cluster.sh) */
    for (int i = 1; i <= NODES; i++) {
        offsets[3 * i - 3] = 10 * i;
        offsets[3 * i - 2] = 10 * i + 1;
        offsets[3 * i - 1] = 10 * i + 2;
    }
    c->base = s_port_base(offsets, 3 * NODES, 10 * NODES + 3);
    s_live = c;
    s_cluster_provision(c);
    char out[4096], n[8];
    snprintf(n, sizeof n, "%d", NODES);
    int rc = s_script(c, out, sizeof out, n, c->dir, NULL);
    s_cluster_parse(c, out);
    for (int i = 1; i <= NODES; i++)
        if (c->pid[i] <= 0)
            rc = rc ? rc : 1;
    if (rc) {
        fputs(out, stderr);
        DIE("%s %d %s failed (exit %d)", s_cfg->script, NODES, c->dir, rc);
    }
    for (int i = 1; i <= NODES; i++)
        s_cluster_connect(c, i);
    if (s_cluster_wait_settled(c, START_WAIT_S) < 0)
        DIE("the %d engram nodes of %s do not see each other", NODES, c->dir);
    fprintf(stderr,
            "engram-cluster-bench: engram cluster %s, gossip ports %d/%d/%d, pids %d %d %d\n",
            c->dir, c->base + 10, c->base + 20, c->base + 30, (int)c->pid[1], (int)c->pid[2],
            (int)c->pid[3]);
}

/*  --- Redis: a primary and replicas -------------------------------------------------- */

typedef struct {
    int nodes; /* primary + replicas */
    bool rdb;  /* RDB snapshots (saved at shutdown, with the replication offset) instead of AOF */
    pid_t pid[NODES];
    int port[NODES];
    char dir[300];
    char version[32];
} s_redis_t;

/*  An INFO field as an integer; -1 if absent. */
static int64_t s_redis_info(redisContext *r, const char *section, const char *field)
{
    redisReply *reply = redisCommand(r, "INFO %s", section);
    int64_t v = -1;
    if (reply && reply->type == REDIS_REPLY_STRING) {
        char pat[96];
        snprintf(pat, sizeof pat, "\n%s:", field);
        const char *p = strstr(reply->str, pat);
        if (p)
            v = strtoll(p + strlen(pat), NULL, 10);
    }
    if (reply)
        freeReplyObject(reply);
    return v;
}

static bool s_redis_info_has(redisContext *r, const char *section, const char *text)
{
    redisReply *reply = redisCommand(r, "INFO %s", section);
    bool has = reply && reply->type == REDIS_REPLY_STRING && strstr(reply->str, text);
    if (reply)
        freeReplyObject(reply);
    return has;
}

/*  Starts member i (0: the primary) and waits until it answers; connected to it. */
static redisContext *s_redis_spawn(s_redis_t *rs, int i)
{
    char dir[400], log[420], logfile[420], port[16], primary[16];
    snprintf(dir, sizeof dir, "%s/r%d", rs->dir, i);
    mkdir(dir, 0755);
    snprintf(log, sizeof log, "%s/stdout", dir);
    snprintf(logfile, sizeof logfile, "%s/redis.log", dir);
    snprintf(port, sizeof port, "%d", rs->port[i]);
    snprintf(primary, sizeof primary, "%d", rs->port[0]);
    char *argv[] = {(char *)s_cfg->redis_path,
                    "--port",
                    port,
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    dir,
                    "--appendonly",
                    rs->rdb ? "no" : "yes",
                    "--appendfsync",
                    "always",
                    "--save",
                    rs->rdb ? "3600 1" : "",
                    "--protected-mode",
                    "no",
                    "--daemonize",
                    "no",
                    "--logfile",
                    logfile,
                    i ? "--replicaof" : NULL,
                    "127.0.0.1",
                    primary,
                    NULL};
    rs->pid[i] = bench_spawn(argv, log);
    if (rs->pid[i] < 0)
        DIE("cannot start %s: %s", argv[0], strerror(errno));
    double deadline = bench_now() + START_WAIT_S;
    redisContext *r;
    while (!(r = bench_redis_connect(rs->port[i], 200))) {
        if (!bench_alive(rs->pid[i]) || bench_now() > deadline || bench_interrupted) {
            bench_show_log(logfile);
            DIE("redis-server %d did not start", i);
        }
        usleep(5000);
    }
    return r;
}

static void s_redis_start(s_redis_t *rs, int nodes, bool rdb)
{
    *rs = (s_redis_t){.nodes = nodes, .rdb = rdb};
    snprintf(rs->dir, sizeof rs->dir, "%s/redis%s", s_tmpdir, rdb ? "-rdb" : "");
    mkdir(rs->dir, 0755);
    int offsets[NODES] = {0, 1, 2};
    int base = s_port_base(offsets, (size_t)nodes, nodes);
    for (int i = 0; i < nodes; i++)
        rs->port[i] = base + i;
    for (int i = 0; i < nodes; i++) {
        redisContext *r = s_redis_spawn(rs, i);
        if (i == 0) {
            redisReply *reply = redisCommand(r, "INFO server");
            if (reply && reply->type == REDIS_REPLY_STRING) {
                const char *v = strstr(reply->str, "redis_version:");
                if (v)
                    sscanf(v + 14, "%31[^\r\n]", rs->version);
            }
            if (reply)
                freeReplyObject(reply);
        }
        redisFree(r);
    }
    /* Every replica linked and in sync. */
    double deadline = bench_now() + START_WAIT_S;
    for (int i = 1; i < nodes; i++) {
        redisContext *r = bench_redis_connect(rs->port[i], 1000);
        while (!r || !s_redis_info_has(r, "replication", "master_link_status:up")) {
            if (bench_now() > deadline || bench_interrupted)
                DIE("redis replica %d does not link to its primary", i);
            usleep(20000);
        }
        redisFree(r);
    }
    fprintf(stderr, "engram-cluster-bench: redis-server %s primary on %d, %d replicas\n",
            rs->version, base, nodes - 1);
}

static void s_redis_stop(s_redis_t *rs)
{
    for (int i = rs->nodes - 1; i >= 0; i--) {
        bench_stop(rs->pid[i]);
    }
    bench_rm_tree(rs->dir);
    rs->nodes = 0;
}

/*  Waits until every replica's offset reached the primary's. */
static bool s_redis_wait_synced(const s_redis_t *rs, double timeout_s)
{
    redisContext *p = bench_redis_connect(rs->port[0], 1000);
    if (!p)
        return false;
    int64_t target = s_redis_info(p, "replication", "master_repl_offset");
    redisFree(p);
    double deadline = bench_now() + timeout_s;
    for (int i = 1; i < rs->nodes; i++) {
        redisContext *r = bench_redis_connect(rs->port[i], 1000);
        while (!r || s_redis_info(r, "replication", "slave_repl_offset") < target) {
            if (bench_now() > deadline || bench_interrupted) {
                if (r)
                    redisFree(r);
                return false;
            }
            usleep(5000);
        }
        redisFree(r);
    }
    return true;
}

/*  --- etcd: three members, HTTP/1.1 JSON through the gRPC gateway -------------------- */

typedef struct {
    pid_t pid[NODES];
    int client[NODES], peer[NODES];
    char dir[300];
    char version[64];
} s_etcd_t;

typedef struct {
    int fd;
    int port;
    char buf[16384];
} s_http_t;

static bool s_http_connect(s_http_t *h, int port)
{
    h->port = port;
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {10, 0};
    setsockopt(h->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(h->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(h->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(h->fd);
        h->fd = -1;
        return false;
    }
    return true;
}

static void s_http_close(s_http_t *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
}

/*  One request on the keep-alive connection; the HTTP status, or -1 if the connection
 *  failed. The body (NUL-terminated, truncated to the buffer) is left in h->buf. */
static int s_http(s_http_t *h, const char *method, const char *path, const char *body, size_t len,
                  const char **resp_body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, h->port, len);
    struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = body ? 2 : 1};
    size_t want = (size_t)n + (body ? len : 0);
    ssize_t sent = sendmsg(h->fd, &msg, MSG_NOSIGNAL);
    if (sent != (ssize_t)want)
        return -1;
    size_t at = 0;
    char *end = NULL;
    while (!end) {
        if (at + 1 >= sizeof h->buf)
            return -1;
        ssize_t r = recv(h->fd, h->buf + at, sizeof h->buf - 1 - at, 0);
        if (r <= 0)
            return -1;
        at += (size_t)r;
        h->buf[at] = '\0';
        end = strstr(h->buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(h->buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    size_t hlen = (size_t)(end + 4 - h->buf);
    long clen = -1;
    bool chunked = false;
    for (char *line = strstr(h->buf, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
            clen = strtol(line + 17, NULL, 10);
        else if (strncasecmp(line + 2, "Transfer-Encoding:", 18) == 0 && strstr(line, "chunked"))
            chunked = true;
    }
    /* The body: by Content-Length, or chunks up to the terminating "0\r\n\r\n". */
    for (;;) {
        size_t have = at - hlen;
        if (clen >= 0 && have >= (size_t)clen)
            break;
        if (chunked && have >= 5 && (memcmp(h->buf + at - 5, "0\r\n\r\n", 5) == 0) &&
            (have == 5 || h->buf[at - 6] == '\n'))
            break;
        if (clen < 0 && !chunked)
            break;
        if (at + 1 >= sizeof h->buf)
            return -1; /* larger than any answer expected here */
        ssize_t r = recv(h->fd, h->buf + at, sizeof h->buf - 1 - at, 0);
        if (r <= 0)
            return -1;
        at += (size_t)r;
        h->buf[at] = '\0';
    }
    if (resp_body)
        *resp_body = h->buf + hlen;
    return status;
}

static size_t s_base64(char *out, const uint8_t *in, size_t len)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < len ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? t[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

/*  A put: 200, or the HTTP status / -1. */
static int s_etcd_put(s_http_t *h, const char *key, const uint8_t *value, size_t len)
{
    char body[1024];
    char k64[128], v64[512];
    s_base64(k64, (const uint8_t *)key, strlen(key));
    s_base64(v64, value, len);
    int n = snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", k64, v64);
    const char *resp = NULL;
    int status = s_http(h, "POST", "/v3/kv/put", body, (size_t)n, &resp);
    if (status == 200 && !strstr(resp, "\"header\""))
        status = 599; /* not a put answer */
    return status;
}

static void s_etcd_start(s_etcd_t *es)
{
    *es = (s_etcd_t){0};
    snprintf(es->dir, sizeof es->dir, "%s/etcd", s_tmpdir);
    mkdir(es->dir, 0755);
    int offsets[2 * NODES];
    for (int i = 0; i < 2 * NODES; i++)
        offsets[i] = i;
    int base = s_port_base(offsets, 2 * NODES, 2 * NODES);
    char initial[512] = "";
    for (int i = 0; i < NODES; i++) {
        es->client[i] = base + 2 * i;
        es->peer[i] = base + 2 * i + 1;
        size_t at = strlen(initial);
        snprintf(initial + at, sizeof initial - at, "%se%d=http://127.0.0.1:%d", i ? "," : "", i,
                 es->peer[i]);
    }
    for (int i = 0; i < NODES; i++) {
        char name[8], data[400], log[420], curl[64], purl[64];
        snprintf(name, sizeof name, "e%d", i);
        snprintf(data, sizeof data, "%s/e%d", es->dir, i);
        snprintf(log, sizeof log, "%s/e%d.log", es->dir, i);
        snprintf(curl, sizeof curl, "http://127.0.0.1:%d", es->client[i]);
        snprintf(purl, sizeof purl, "http://127.0.0.1:%d", es->peer[i]);
        char *argv[] = {(char *)s_cfg->etcd_path,
                        "--name",
                        name,
                        "--data-dir",
                        data,
                        "--listen-client-urls",
                        curl,
                        "--advertise-client-urls",
                        curl,
                        "--listen-peer-urls",
                        purl,
                        "--initial-advertise-peer-urls",
                        purl,
                        "--initial-cluster",
                        initial,
                        "--initial-cluster-state",
                        "new",
                        "--initial-cluster-token",
                        "engram-cluster-bench",
                        "--logger",
                        "zap",
                        "--log-level",
                        "warn",
                        NULL};
        es->pid[i] = bench_spawn(argv, log);
        if (es->pid[i] < 0)
            DIE("cannot start %s: %s", argv[0], strerror(errno));
    }
    /* Up when a put through every member succeeds (a leader is elected). */
    double deadline = bench_now() + START_WAIT_S;
    for (int i = 0; i < NODES; i++) {
        for (;;) {
            s_http_t h = {.fd = -1};
            int status = -1;
            if (s_http_connect(&h, es->client[i]))
                status = s_etcd_put(&h, "bench-probe", (const uint8_t *)"x", 1);
            if (status == 200 && i == 0) {
                const char *body = NULL;
                if (s_http(&h, "GET", "/version", NULL, 0, &body) == 200)
                    snprintf(es->version, sizeof es->version, "%.60s", body);
            }
            s_http_close(&h);
            if (status == 200)
                break;
            if (!bench_alive(es->pid[i]) || bench_now() > deadline || bench_interrupted) {
                char log[420];
                snprintf(log, sizeof log, "%s/e%d.log", es->dir, i);
                bench_show_log(log);
                DIE("etcd member %d did not start", i);
            }
            usleep(50000);
        }
    }
    fprintf(stderr, "engram-cluster-bench: etcd %s, client ports %d/%d/%d\n", es->version,
            es->client[0], es->client[1], es->client[2]);
}

static void s_etcd_stop(s_etcd_t *es)
{
    for (int i = 0; i < NODES; i++) {
        bench_stop(es->pid[i]);
    }
    bench_rm_tree(es->dir);
}

/*  --- lag: write on A, time until B has it ----------------------------------------- */

typedef enum { SYS_ENGRAM, SYS_REDIS, SYS_FLOOR } s_sys_t;
static const char *const s_sys_names[] = {"engram", "redis", "floor"};

typedef struct {
    s_sys_t sys;
    double rate;
    size_t n;
    uint64_t t0;
    uint64_t *sched, *ack; /* ns; ack 0: the write failed */
    _Atomic uint64_t *arrive;
    char prefix[32];
    size_t plen;
    const char *write_ep; /* engram: node A's API; floor: its primary */
    int write_port;       /* redis: the primary */
    engram_t *sub;        /* engram: B, subscribed */
    redisContext *rsub;   /* redis: the replica, subscribed */
    zsock_t *fsub;        /* floor: backup B, subscribed */
    zcert_t *fcert;       /* floor: the servers' certificate */
    atomic_bool stop_reader;
    atomic_size_t arrived;
    atomic_size_t errors;
    atomic_size_t resubscribed;
    char error[256];
    pthread_mutex_t lock;
    pthread_barrier_t ready;
} s_lag_t;

typedef struct {
    s_lag_t *cell;
    unsigned id;
    pthread_t thread;
} s_lag_writer_t;

static void s_lag_error(s_lag_t *cell, const char *what, const char *detail)
{
    pthread_mutex_lock(&cell->lock);
    if (atomic_fetch_add(&cell->errors, 1) == 0)
        snprintf(cell->error, sizeof cell->error, "%s: %s", what, detail);
    pthread_mutex_unlock(&cell->lock);
}

static void s_lag_arrived_seq(s_lag_t *cell, uint64_t seq, uint64_t now)
{
    if (seq >= cell->n)
        return;
    uint64_t expect = 0;
    if (atomic_compare_exchange_strong(&cell->arrive[seq], &expect, now))
        atomic_fetch_add(&cell->arrived, 1);
}

static void s_lag_arrived(s_lag_t *cell, const char *key, uint64_t now)
{
    if (strncmp(key, cell->prefix, cell->plen) != 0)
        return;
    char *end;
    unsigned long long seq = strtoull(key + cell->plen, &end, 10);
    if (!*end)
        s_lag_arrived_seq(cell, seq, now);
}

/*  A DEALER with CURVE to the floor's servers (cert's public key) at endpoint; NULL if it
 *  cannot connect. */
static zsock_t *s_floor_connect(const char *endpoint, zcert_t *cert)
{
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    zcert_t *mine = zcert_new();
    if (dealer && mine) {
        zcert_apply(mine, dealer);
        zsock_set_curve_serverkey_bin(dealer, zcert_public_key(cert));
        zsock_set_rcvtimeo(dealer, 5000);
    }
    zcert_destroy(&mine);
    if (dealer && zsock_connect(dealer, "%s", endpoint) < 0)
        zsock_destroy(&dealer);
    return dealer;
}

/*  One put on the lag floor's primary: a request led by seq, its reply awaited. */
static bool s_floor_put(zsock_t *dealer, uint64_t seq)
{
    uint8_t request[FLOOR_REQUEST_BYTES];
    memset(request, 'q', sizeof request);
    memcpy(request, &seq, FLOOR_SEQ_BYTES);
    if (zsock_send(dealer, "b", request, sizeof request) != 0)
        return false;
    zframe_t *reply = zframe_recv(dealer);
    bool ok = reply && zframe_size(reply) == FLOOR_REPLY_BYTES;
    zframe_destroy(&reply);
    return ok;
}

static void *s_lag_writer(void *arg)
{
    s_lag_writer_t *w = arg;
    s_lag_t *cell = w->cell;
    engram_t *e = NULL;
    redisContext *r = NULL;
    zsock_t *f = NULL;
    if (cell->sys == SYS_ENGRAM)
        e = s_engram_connect(cell->write_ep, "bench-writer", 5000);
    else if (cell->sys == SYS_REDIS)
        r = bench_redis_connect(cell->write_port, 5000);
    else
        f = s_floor_connect(cell->write_ep, cell->fcert);
    if (!e && !r && !f)
        s_lag_error(cell, "connect", "writer cannot connect");
    pthread_barrier_wait(&cell->ready); /* connected */
    pthread_barrier_wait(&cell->ready); /* t0 and the schedule are set */
    uint8_t value[VALUE_BYTES];
    s_worker_value(value, sizeof value, w->id);
    char key[64];
    for (size_t seq = w->id; (e || r || f) && seq < cell->n; seq += LAG_WRITERS) {
        s_sleep_until_ns(cell->sched[seq]);
        if (atomic_load_explicit(&s_stop, memory_order_relaxed))
            break;
        s_key(key, sizeof key, cell->prefix, seq);
        s_value_stamp(value, sizeof value, w->id, seq);
        bool ok;
        if (e) {
            engram_result_t *res = NULL;
            int rc = engram_put(e, SCOPE_LAG, key, value, sizeof value, NULL, 0, &res);
            ok = rc == 0;
            if (!ok)
                s_lag_error(cell, engram_strerror(rc), engram_last_error(e));
            engram_result_destroy(&res);
        } else if (f) {
            ok = s_floor_put(f, seq);
            if (!ok)
                s_lag_error(cell, "floor", "no reply, or a short one");
        } else {
            redisReply *reply = redisCommand(r, "SET %s %b", key, value, sizeof value);
            ok = reply && reply->type == REDIS_REPLY_STATUS;
            if (!ok)
                s_lag_error(cell, "SET", reply ? reply->str : r->errstr);
            if (reply)
                freeReplyObject(reply);
        }
        if (ok)
            cell->ack[seq] = bench_now_ns();
        if (r && r->err)
            break;
    }
    if (e)
        engram_destroy(&e);
    if (r)
        redisFree(r);
    zsock_destroy(&f);
    return NULL;
}

static void *s_lag_reader(void *arg)
{
    s_lag_t *cell = arg;
    while (!atomic_load(&cell->stop_reader)) {
        if (cell->sys == SYS_ENGRAM) {
            engram_event_t *ev = NULL;
            int rc = engram_next_event(cell->sub, 100, &ev);
            if (rc == ENGRAM_ETIMEDOUT)
                continue;
            if (rc) {
                /* The node ended the subscription (it fell behind): take it up again; the
                 * events lost meanwhile show as "no event" and are checked by reads. */
                atomic_fetch_add(&cell->resubscribed, 1);
                if (engram_subscribe(cell->sub, SCOPE_LAG) != 0)
                    bench_sleep(0.01);
                continue;
            }
            s_lag_arrived(cell, ev->key, bench_now_ns());
            engram_event_destroy(&ev);
        } else if (cell->sys == SYS_FLOOR) {
            zframe_t *event = zframe_recv(cell->fsub); /* NULL: its 100 ms timeout */
            uint64_t seq;
            if (event && zframe_size(event) >= FLOOR_SEQ_BYTES) {
                memcpy(&seq, zframe_data(event), sizeof seq);
                s_lag_arrived_seq(cell, seq, bench_now_ns());
            }
            zframe_destroy(&event);
        } else {
            void *reply = NULL;
            if (redisReaderGetReply(cell->rsub->reader, &reply) != REDIS_OK)
                break;
            if (!reply) {
                struct pollfd p = {.fd = cell->rsub->fd, .events = POLLIN};
                if (poll(&p, 1, 100) > 0 && redisBufferRead(cell->rsub) != REDIS_OK)
                    break;
                continue;
            }
            uint64_t now = bench_now_ns();
            redisReply *m = reply;
            if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
                m->element[2]->type == REDIS_REPLY_STRING)
                s_lag_arrived(cell, m->element[2]->str, now);
            freeReplyObject(m);
        }
    }
    return NULL;
}

typedef struct {
    bool ran;
    double rate;     /* offered */
    double achieved; /* writes acknowledged per second */
    size_t n, acked, arrived;
    size_t no_event; /* acknowledged, no event, but readable on B at the end */
    size_t missing;  /* acknowledged and not readable on B at the end */
    uint64_t p50, p99, max, ack50, ack99;
    uint64_t after50, after99; /* arrival on B - answer on A (0 when B had it first) */
    size_t errors, resubscribed;
    double cpu_servers; /* the system's three servers while the writers ran, % of one core */
} s_lag_result_t;

/*  One lag cell. For engram, ep_a/ep_b are node A's and B's API endpoints; for redis, the
 *  primary's and the replica's ports; for the floor, its primary's and backup B's endpoints
 *  and the certificate saved at floor_cert. */
static s_lag_result_t s_lag_run(s_sys_t sys, double rate, double duration, const char *ep_a,
                                const char *ep_b, int port_a, int port_b, const char *floor_cert,
                                unsigned cellno, const pid_t servers[NODES])
{
    s_lag_result_t res = {.ran = true, .rate = rate};
    s_lag_t *cell = s_alloc(sizeof *cell);
    cell->sys = sys;
    cell->rate = rate;
    cell->n = (size_t)(rate * duration);
    if (cell->n < LAG_WRITERS)
        cell->n = LAG_WRITERS;
    snprintf(cell->prefix, sizeof cell->prefix, "lag%u-", cellno);
    cell->plen = strlen(cell->prefix);
    cell->sched = s_alloc(cell->n * sizeof *cell->sched);
    cell->ack = s_alloc(cell->n * sizeof *cell->ack);
    cell->arrive = s_alloc(cell->n * sizeof *cell->arrive);
    cell->write_ep = ep_a;
    cell->write_port = port_a;
    pthread_mutex_init(&cell->lock, NULL);
    pthread_barrier_init(&cell->ready, NULL, LAG_WRITERS + 1);
    atomic_store(&s_stop, false);
    if (sys == SYS_ENGRAM) {
        if (!(cell->sub = s_engram_connect(ep_b, "bench-reader", 5000)))
            DIE("cannot connect to %s", ep_b);
        if (engram_subscribe(cell->sub, SCOPE_LAG) != 0)
            DIE("subscribe on %s: %s", ep_b, engram_last_error(cell->sub));
    } else if (sys == SYS_FLOOR) {
        if (!(cell->fcert = zcert_load(floor_cert)))
            DIE("cannot load %s", floor_cert);
        if (!(cell->fsub = s_floor_connect(ep_b, cell->fcert)))
            DIE("cannot connect to the floor's backup at %s", ep_b);
        /* subscribed once the backup echoes the request back */
        zsock_send(cell->fsub, "s", FLOOR_SUBSCRIBE);
        char *echo = zstr_recv(cell->fsub);
        bool subscribed = echo && strcmp(echo, FLOOR_SUBSCRIBE) == 0;
        zstr_free(&echo);
        if (!subscribed)
            DIE("the floor's backup at %s did not take the subscription", ep_b);
        zsock_set_rcvtimeo(cell->fsub, 100);
    } else {
        if (!(cell->rsub = bench_redis_connect(port_b, 5000)))
            DIE("cannot connect to the redis replica on %d", port_b);
        redisReply *r = redisCommand(cell->rsub, "CONFIG SET notify-keyspace-events E$");
        if (r)
            freeReplyObject(r);
        r = redisCommand(cell->rsub, "SUBSCRIBE __keyevent@0__:set");
        if (!r || r->type != REDIS_REPLY_ARRAY)
            DIE("SUBSCRIBE on the redis replica failed");
        freeReplyObject(r);
    }
    pthread_t reader;
    if (pthread_create(&reader, NULL, s_lag_reader, cell) != 0)
        DIE("pthread_create");
    s_lag_writer_t writers[LAG_WRITERS];
    for (unsigned t = 0; t < LAG_WRITERS; t++) {
        writers[t] = (s_lag_writer_t){.cell = cell, .id = t};
        if (pthread_create(&writers[t].thread, NULL, s_lag_writer, &writers[t]) != 0)
            DIE("pthread_create");
    }
    pthread_barrier_wait(&cell->ready);
    cell->t0 = bench_now_ns() + 50000000u;
    for (size_t i = 0; i < cell->n; i++)
        cell->sched[i] = cell->t0 + (uint64_t)((double)i * 1e9 / rate);
    pthread_barrier_wait(&cell->ready);
    s_usage_t u0 = s_usage_at(s_cpu_sum(servers, NODES));
    for (unsigned t = 0; t < LAG_WRITERS; t++)
        pthread_join(writers[t].thread, NULL);
    s_usage_t u1 = s_usage_at(s_cpu_sum(servers, NODES));
    s_usage_note(u0, u1);
    res.cpu_servers = 100.0 * (u1.servers - u0.servers) / (u1.wall - u0.wall);
    uint64_t last_ack = cell->t0;
    for (size_t i = 0; i < cell->n; i++) {
        if (cell->ack[i]) {
            res.acked++;
            if (cell->ack[i] > last_ack)
                last_ack = cell->ack[i];
        }
    }
    double deadline = bench_now() + s_cfg->grace;
    while (atomic_load(&cell->arrived) < res.acked && bench_now() < deadline && !bench_interrupted)
        bench_sleep(0.005);
    atomic_store(&cell->stop_reader, true);
    pthread_join(reader, NULL);
    res.arrived = atomic_load(&cell->arrived);
    res.errors = atomic_load(&cell->errors);
    res.resubscribed = atomic_load(&cell->resubscribed);
    if (res.errors)
        fprintf(stderr, "engram-cluster-bench: lag %s %.0f/s: %zu writes failed, first: %s\n",
                s_sys_names[sys], rate, res.errors, cell->error);
    /* What never came as an event: can B read it at all? */
    /* (the floor's backups cannot be read: what never came counts as missing) */
    engram_t *check = sys == SYS_ENGRAM ? s_engram_connect(ep_b, "bench-check", 5000) : NULL;
    redisContext *rcheck = sys == SYS_REDIS ? bench_redis_connect(port_b, 5000) : NULL;
    char key[64];
    for (size_t i = 0; i < cell->n; i++) {
        if (!cell->ack[i] || atomic_load(&cell->arrive[i]))
            continue;
        s_key(key, sizeof key, cell->prefix, i);
        bool found = false;
        if (check) {
            engram_result_t *r = NULL;
            found = engram_get(check, SCOPE_LAG, key, NULL, 0, &r) == 0 && r->nitems > 0;
            engram_result_destroy(&r);
        } else if (rcheck) {
            redisReply *r = redisCommand(rcheck, "EXISTS %s", key);
            found = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
            if (r)
                freeReplyObject(r);
        }
        if (found)
            res.no_event++;
        else
            res.missing++;
    }
    if (check)
        engram_destroy(&check);
    if (rcheck)
        redisFree(rcheck);
    uint64_t *lag = s_alloc(cell->n * sizeof *lag), *ack = s_alloc(cell->n * sizeof *ack);
    uint64_t *after = s_alloc(cell->n * sizeof *after);
    size_t nl = 0, na = 0, nf = 0;
    for (size_t i = 0; i < cell->n; i++) {
        uint64_t a = atomic_load(&cell->arrive[i]);
        if (a)
            lag[nl++] = a > cell->sched[i] ? a - cell->sched[i] : 0;
        if (cell->ack[i])
            ack[na++] = cell->ack[i] - cell->sched[i];
        if (a && cell->ack[i])
            after[nf++] = a > cell->ack[i] ? a - cell->ack[i] : 0;
    }
    qsort(lag, nl, sizeof *lag, bench_cmp_u64);
    qsort(ack, na, sizeof *ack, bench_cmp_u64);
    qsort(after, nf, sizeof *after, bench_cmp_u64);
    res.after50 = bench_percentile(after, nf, 0.50);
    res.after99 = bench_percentile(after, nf, 0.99);
    free(after);
    res.n = cell->n;
    res.p50 = bench_percentile(lag, nl, 0.50);
    res.p99 = bench_percentile(lag, nl, 0.99);
    res.max = nl ? lag[nl - 1] : 0;
    res.ack50 = bench_percentile(ack, na, 0.50);
    res.ack99 = bench_percentile(ack, na, 0.99);
    res.achieved = (double)res.acked / ((double)(last_ack - cell->t0) * 1e-9);
    free(lag);
    free(ack);
    if (cell->sub)
        engram_destroy(&cell->sub);
    if (cell->rsub)
        redisFree(cell->rsub);
    zsock_destroy(&cell->fsub);
    zcert_destroy(&cell->fcert);
    pthread_barrier_destroy(&cell->ready);
    pthread_mutex_destroy(&cell->lock);
    free(cell->sched);
    free(cell->ack);
    free((void *)cell->arrive);
    free(cell);
    return res;
}

static void s_lag_text(char *buf, size_t size, const s_lag_result_t *r)
{
    char a[16], b[16], c[16], d[16], e[16], f[16], g[16], h[16], lost[48];
    snprintf(lost, sizeof lost, "%zu", r->missing);
    if (r->no_event)
        snprintf(lost, sizeof lost, "%zu+%zu", r->missing, r->no_event);
    snprintf(buf, size, "%7s %8s %8s %8s   %8s %8s   %8s %8s %7s %4.0f",
             bench_si(a, sizeof a, r->achieved), bench_lat(b, sizeof b, r->p50),
             bench_lat(c, sizeof c, r->p99), bench_lat(d, sizeof d, r->max),
             bench_lat(e, sizeof e, r->ack50), bench_lat(f, sizeof f, r->ack99),
             bench_lat(g, sizeof g, r->after50), bench_lat(h, sizeof h, r->after99), lost,
             r->cpu_servers);
}

/*  --- put: closed-loop throughput of N clients --------------------------------------- */

typedef enum {
    TP_ENGRAM,
    TP_ENGRAM_REP,
    TP_ETCD,
    TP_REDIS,
    TP_REDIS_WAIT,
    TP_FLOOR, /* transport_floor_replicated: no engram code, one node only */
    TP_COUNT
} s_tp_kind_t;
static const char *const s_tp_names[TP_COUNT] = {"engram put (async replication, local sync)",
                                                 "engram put --replicas 3",
                                                 "etcd put (Raft, 3 members)",
                                                 "redis SET (async replication)",
                                                 "redis SET + WAIT 2 1000",
                                                 "floor: 3 replicas, transport + RocksDB"};
static const char *const s_tp_short[TP_COUNT] = {"engram put", "engram --replicas 3", "etcd put",
                                                 "redis SET",  "redis SET+WAIT 2",    "floor"};

typedef struct {
    s_tp_kind_t kind;
    bool spread;
    const s_cluster_t *cluster;
    const s_etcd_t *etcd;
    const s_redis_t *redis;
    pthread_barrier_t ready;
} s_tp_t;

typedef struct {
    s_tp_t *cell;
    unsigned id;
    pthread_t thread;
    uint64_t *lat;
    size_t n, cap;
    uint64_t errors, shortfall;
    char error[200];
    double t_end;
} s_tp_worker_t;

typedef struct {
    bool ran;
    double ops_s;
    uint64_t p50, p99, errors, shortfall;
    double cpu; /* the three servers, % of one core */
} s_tp_result_t;

#define S_TP_ERROR(w, ...) bench_error(&(w)->errors, (w)->error, sizeof(w)->error, __VA_ARGS__)

static void *s_tp_worker(void *arg)
{
    s_tp_worker_t *w = arg;
    s_tp_t *cell = w->cell;
    int target = cell->spread ? (int)(w->id % NODES) : 0;
    engram_t *e = NULL;
    redisContext *r = NULL;
    s_http_t h = {.fd = -1};
    bool ready = false;
    switch (cell->kind) {
    case TP_ENGRAM:
    case TP_ENGRAM_REP:
        ready = (e = s_engram_connect(cell->cluster->api[target + 1], "bench-put", 5000));
        break;
    case TP_ETCD:
        ready = s_http_connect(&h, cell->etcd->client[target]);
        break;
    default:
        ready = (r = bench_redis_connect(cell->redis->port[0], 5000));
        break;
    }
    if (!ready)
        S_TP_ERROR(w, "cannot connect");
    uint8_t value[VALUE_BYTES];
    s_worker_value(value, sizeof value, w->id);
    char key[64], prefix[32];
    snprintf(prefix, sizeof prefix, "p%d%c%u-", (int)cell->kind, cell->spread ? 's' : 'a', w->id);
    pthread_barrier_wait(&cell->ready);
    for (uint64_t i = 0; ready && !atomic_load_explicit(&s_stop, memory_order_relaxed); i++) {
        s_key(key, sizeof key, prefix, i);
        s_value_stamp(value, sizeof value, w->id, i);
        uint64_t t0 = bench_now_ns();
        bool ok = true;
        switch (cell->kind) {
        case TP_ENGRAM:
        case TP_ENGRAM_REP: {
            engram_result_t *res = NULL;
            int rc = cell->kind == TP_ENGRAM
                         ? engram_put(e, SCOPE_PUT, key, value, sizeof value, NULL, 0, &res)
                         : engram_put_replicated(e, SCOPE_PUT, key, value, sizeof value, NULL, 0,
                                                 NODES, 5000, &res);
            if (rc == ENGRAM_EREPLICAS)
                w->shortfall++;
            else if (rc) {
                ok = false;
                S_TP_ERROR(w, "put: %s %s", engram_strerror(rc), engram_last_error(e));
            }
            engram_result_destroy(&res);
            break;
        }
        case TP_ETCD: {
            int status = s_etcd_put(&h, key, value, sizeof value);
            if (status != 200) {
                ok = false;
                S_TP_ERROR(w, "etcd put: HTTP %d %.100s", status,
                           status > 0 ? strstr(h.buf, "\r\n\r\n") : "");
                if (status < 0) {
                    s_http_close(&h);
                    ready = s_http_connect(&h, cell->etcd->client[target]);
                }
            }
            break;
        }
        default: {
            redisAppendCommand(r, "SET %s %b", key, value, sizeof value);
            if (cell->kind == TP_REDIS_WAIT)
                redisAppendCommand(r, "WAIT %d %d", NODES - 1, 1000);
            for (int k = 0; k < (cell->kind == TP_REDIS_WAIT ? 2 : 1); k++) {
                void *reply = NULL;
                if (redisGetReply(r, &reply) != REDIS_OK) {
                    ok = false;
                    S_TP_ERROR(w, "redis: %s", r->errstr);
                    ready = false;
                    break;
                }
                redisReply *rr = reply;
                if (k == 0 && rr->type != REDIS_REPLY_STATUS) {
                    ok = false;
                    S_TP_ERROR(w, "SET: %s", rr->type == REDIS_REPLY_ERROR ? rr->str : "?");
                } else if (k == 1 && (rr->type != REDIS_REPLY_INTEGER || rr->integer < NODES - 1)) {
                    w->shortfall++;
                }
                freeReplyObject(rr);
            }
            break;
        }
        }
        uint64_t t1 = bench_now_ns();
        if (ok)
            s_push(&w->lat, &w->n, &w->cap, t1 - t0);
    }
    w->t_end = bench_now();
    if (e)
        engram_destroy(&e);
    if (r)
        redisFree(r);
    s_http_close(&h);
    return NULL;
}

static s_tp_result_t s_tp_run(s_tp_kind_t kind, bool spread, unsigned clients, double duration,
                              const s_cluster_t *cluster, const s_etcd_t *etcd,
                              const s_redis_t *redis)
{
    s_tp_result_t res = {.ran = true};
    s_tp_t cell = {
        .kind = kind, .spread = spread, .cluster = cluster, .etcd = etcd, .redis = redis};
    pthread_barrier_init(&cell.ready, NULL, clients + 1);
    s_tp_worker_t *workers = s_alloc(clients * sizeof *workers);
    atomic_store(&s_stop, false);
    for (unsigned t = 0; t < clients; t++) {
        workers[t] = (s_tp_worker_t){.cell = &cell, .id = t};
        if (pthread_create(&workers[t].thread, NULL, s_tp_worker, &workers[t]) != 0)
            DIE("pthread_create: %s", strerror(errno));
    }
    pid_t pids[NODES] = {0};
    for (int i = 0; i < NODES; i++)
        pids[i] = kind <= TP_ENGRAM_REP ? cluster->pid[i + 1]
                  : kind == TP_ETCD     ? etcd->pid[i]
                  : i < redis->nodes    ? redis->pid[i]
                                        : 0;
    pthread_barrier_wait(&cell.ready);
    double cpu0 = s_cpu_sum(pids, NODES);
    s_usage_t u0 = s_usage_at(cpu0);
    double t0 = bench_now();
    bench_sleep(duration);
    atomic_store(&s_stop, true);
    double t_end = t0;
    size_t total = 0;
    for (unsigned t = 0; t < clients; t++) {
        pthread_join(workers[t].thread, NULL);
        if (workers[t].t_end > t_end)
            t_end = workers[t].t_end;
        total += workers[t].n;
    }
    double cpu1 = s_cpu_sum(pids, NODES);
    s_usage_note(u0, s_usage_at(cpu1));
    uint64_t *all = s_alloc(total * sizeof *all);
    size_t at = 0;
    for (unsigned t = 0; t < clients; t++) {
        s_tp_worker_t *w = &workers[t];
        memcpy(all + at, w->lat, w->n * sizeof *all);
        at += w->n;
        if (w->errors && res.errors == 0)
            fprintf(stderr, "engram-cluster-bench: %s (%s), client %u: %s\n", s_tp_names[kind],
                    spread ? "spread" : "one node", t, w->error);
        res.errors += w->errors;
        res.shortfall += w->shortfall;
        free(w->lat);
    }
    qsort(all, total, sizeof *all, bench_cmp_u64);
    res.ops_s = (double)total / (t_end - t0);
    res.p50 = bench_percentile(all, total, 0.50);
    res.p99 = bench_percentile(all, total, 0.99);
    res.cpu = 100.0 * (cpu1 - cpu0) / (t_end - t0);
    if (total == 0 && res.errors == 0)
        res.errors = 1;
    free(all);
    free(workers);
    pthread_barrier_destroy(&cell.ready);
    return res;
}

/*  --- bytes: replication bytes per write ------------------------------------------- */

typedef struct {
    const char *ep;
    int port; /* redis primary when ep is NULL */
    size_t payload;
    size_t from, n; /* writes [from, from+n) of this payload */
    unsigned id, threads;
    uint64_t errors;
    pthread_t thread;
} s_loader_t;

/*  Closed-loop writes of keys prefix%08u, i in [from, from+n) stepping by threads; their values
 *  random letters and digits, or random bytes when s_load_binary. */
static char s_load_prefix[32];
static const char *s_load_scope;
static bool s_load_binary;
static void *s_loader(void *arg)
{
    s_loader_t *l = arg;
    engram_t *e = l->ep ? s_engram_connect(l->ep, "bench-load", 5000) : NULL;
    redisContext *r = l->ep ? NULL : bench_redis_connect(l->port, 5000);
    if (!e && !r) {
        l->errors++;
        return NULL;
    }
    uint8_t *value = s_alloc(l->payload);
    char key[64];
    for (size_t i = l->from + l->id; i < l->from + l->n && !bench_interrupted; i += l->threads) {
        s_key(key, sizeof key, s_load_prefix, i);
        /* a value of its own per write: values repeated from write to write would flatter
         * compressed gossip */
        uint64_t state = i + 1;
        if (s_load_binary)
            for (size_t b = 0; b < l->payload; b++)
                value[b] = (uint8_t)bench_rand(&state);
        else
            s_value_fill(value, l->payload, i + 1);
        s_value_stamp(value, l->payload, l->id, i);
        if (e) {
            engram_result_t *res = NULL;
            int rc = engram_put(e, s_load_scope, key, value, l->payload, NULL, 0, &res);
            engram_result_destroy(&res);
            if (rc && l->errors++ == 0)
                fprintf(stderr, "engram-cluster-bench: put %s: %s %s\n", key, engram_strerror(rc),
                        engram_last_error(e));
        } else {
            redisReply *reply = redisCommand(r, "SET %s %b", key, value, l->payload);
            if (!reply || reply->type != REDIS_REPLY_STATUS)
                l->errors++;
            if (reply)
                freeReplyObject(reply);
            if (r->err)
                break;
        }
    }
    free(value);
    if (e)
        engram_destroy(&e);
    if (r)
        redisFree(r);
    return NULL;
}

/*  Writes n keys (prefix, from `from`) with threads clients; the errors. */
static uint64_t s_load(const char *ep, int port, const char *scope, const char *prefix,
                       size_t payload, size_t from, size_t n, unsigned threads)
{
    snprintf(s_load_prefix, sizeof s_load_prefix, "%s", prefix);
    s_load_scope = scope;
    s_loader_t l[LOAD_THREADS];
    if (threads > LOAD_THREADS)
        threads = LOAD_THREADS;
    for (unsigned t = 0; t < threads; t++) {
        l[t] = (s_loader_t){.ep = ep,
                            .port = port,
                            .payload = payload,
                            .from = from,
                            .n = n,
                            .id = t,
                            .threads = threads};
        if (pthread_create(&l[t].thread, NULL, s_loader, &l[t]) != 0)
            DIE("pthread_create");
    }
    uint64_t errors = 0;
    for (unsigned t = 0; t < threads; t++) {
        pthread_join(l[t].thread, NULL);
        errors += l[t].errors;
    }
    return errors;
}

typedef struct {
    size_t payload, n;
    bool binary;        /* random bytes, not random letters and digits */
    double seconds;     /* writes + until settled */
    double gossip, tcp; /* engram bytes per write, net of idle; tcp < 0: unknown */
    double redis;       /* redis replication bytes per write; < 0: not run */
    double pushes;      /* gossip pushes sent per write, all nodes */
    double pulls;       /* pulls answered per write, all nodes (answers to digests) */
    uint64_t errors;
} s_bytes_result_t;

/*  --- catchup: bring back a node that missed K writes -------------------------------- */

typedef struct {
    bool ran, ok;
    size_t total; /* keys written before the cell (preload and earlier cells) */
    uint64_t ops; /* operations in the scope on A after the K writes */
    size_t k;
    uint64_t lag_ops;  /* what A saw C lack before the restart */
    uint64_t delta;    /* A's lag_bytes for C: the size of the delta C needs */
    uint64_t received; /* gossip bytes C received from its start until caught up */
    double seconds;    /* restart command until C holds every operation A holds */
    uint64_t errors;
} s_catch_result_t;

/*  Stops node C, writes k keys on A, restarts C and waits until its context of SCOPE_CATCH
 *  counts as many operations as A's. *written numbers the keys. */
static s_catch_result_t s_catch_cell(s_cluster_t *c, size_t total, size_t k, size_t *written)
{
    s_catch_result_t res = {.ran = true, .total = total, .k = k};
    if (s_cluster_wait_settled(c, SETTLE_WAIT_S) < 0)
        DIE("the cluster does not settle before a catchup cell");
    engram_destroy(&c->ctl[3]);
    bench_stop(c->pid[3]);
    c->pid[3] = 0;
    res.errors = s_load(c->api[1], 0, SCOPE_CATCH, "m", VALUE_BYTES, *written, k, LOAD_THREADS);
    *written += k;
    /* the node measures lag in bytes within 10,000 operations a status, all members together:
     * asked again (for up to 5 s) while B's lag leaves none for C's; 0 (shown "-") if never */
    res.delta = UINT64_MAX;
    for (int tries = 0; tries < 50 && res.delta == UINT64_MAX; tries++) {
        if (tries)
            bench_sleep(0.1);
        engram_cluster_t *st = s_status(c, 1);
        const engram_scope_status_t *sc = s_scope_of(st, SCOPE_CATCH);
        res.ops = sc ? sc->ops : 0;
        for (size_t m = 0; m < st->nmembers; m++)
            if (st->members[m].id == c->id[3]) {
                res.lag_ops = st->members[m].lag_ops;
                res.delta = st->members[m].lag_bytes;
            }
        engram_cluster_destroy(&st);
    }
    if (res.delta == UINT64_MAX)
        res.delta = 0;
    double t0 = bench_now();
    char out[4096];
    int rc = s_script(c, out, sizeof out, "restart", c->dir, "3");
    s_cluster_parse(c, out);
    if (rc || c->pid[3] <= 0) {
        fputs(out, stderr);
        DIE("%s restart %s 3 failed (exit %d)", s_cfg->script, c->dir, rc);
    }
    s_cluster_connect(c, 3);
    double deadline = t0 + 60.0;
    while (!bench_interrupted && bench_now() < deadline) {
        engram_cluster_t *st = s_status(c, 3);
        const engram_scope_status_t *sc = s_scope_of(st, SCOPE_CATCH);
        bool done = sc && sc->ops >= res.ops;
        if (done) {
            res.seconds = bench_now() - t0;
            res.received = st->bytes_received;
            res.ok = true;
        }
        engram_cluster_destroy(&st);
        if (done)
            break;
        bench_sleep(0.005);
    }
    return res;
}

/*  The same with Redis: replica 2 stopped (SIGTERM: it saves its RDB with the replication
 *  offset), k SETs on the primary, the replica restarted; until its offset reaches the
 *  primary's. Its total_net_repl_input_bytes is what it received; *full says whether the
 *  primary answered with a full resynchronisation (the backlog did not hold the gap). */
static s_catch_result_t s_redis_catch_cell(s_redis_t *rs, size_t total, size_t k, size_t *written,
                                           bool *full)
{
    s_catch_result_t res = {.ran = true, .total = total, .k = k, .lag_ops = k};
    if (!s_redis_wait_synced(rs, SETTLE_WAIT_S))
        DIE("the redis replicas do not catch up before a catchup cell");
    bench_stop(rs->pid[2]);
    redisContext *p = bench_redis_connect(rs->port[0], 5000);
    if (!p)
        DIE("cannot connect to the redis primary");
    int64_t off0 = s_redis_info(p, "replication", "master_repl_offset");
    res.errors = s_load(NULL, rs->port[0], NULL, "m", VALUE_BYTES, *written, k, LOAD_THREADS);
    *written += k;
    int64_t target = s_redis_info(p, "replication", "master_repl_offset");
    int64_t full0 = s_redis_info(p, "stats", "sync_full");
    res.delta = (uint64_t)(target - off0);
    redisReply *size = redisCommand(p, "DBSIZE");
    if (size && size->type == REDIS_REPLY_INTEGER)
        res.ops = (uint64_t)size->integer;
    if (size)
        freeReplyObject(size);
    double t0 = bench_now();
    redisContext *r = s_redis_spawn(rs, 2);
    double deadline = t0 + 60.0;
    while (!bench_interrupted && bench_now() < deadline) {
        if (s_redis_info_has(r, "replication", "master_link_status:up") &&
            s_redis_info(r, "replication", "slave_repl_offset") >= target) {
            res.seconds = bench_now() - t0;
            res.received = (uint64_t)s_redis_info(r, "stats", "total_net_repl_input_bytes");
            res.ok = true;
            break;
        }
        usleep(5000);
    }
    *full = s_redis_info(p, "stats", "sync_full") > full0;
    redisFree(r);
    redisFree(p);
    return res;
}

/*  --- revocation: how soon a node refuses what another node's admin revoked ------------ */

typedef struct {
    bool ran;
    size_t rounds, done; /* asked, completed */
    uint64_t *grant_ns;  /* per completed round: grant submitted on A until readable on C */
    uint64_t *revoke_ns; /* revocation submitted on B until the first refusal on C */
    uint64_t reads;      /* reads polled on C while waiting for the refusals */
    uint64_t errors;     /* rounds that failed */
    char error[256];     /* the first failure */
} s_revoke_result_t;

/*  An admin's connection to node i (the admin's CURVE key: node_acl_admin_curve). */
static engram_t *s_admin_connect(s_cluster_t *c, int i)
{
    uint8_t public_key[32], secret_key[32];
    bench_acl_admin_curve(c->acl, public_key, secret_key);
    engram_t *e = engram_connect_keys(c->api[i], NULL, USER, public_key, secret_key, NULL);
    memset(secret_key, 0, sizeof secret_key);
    if (!e)
        DIE("cannot connect to node %d as the admin", i);
    return e;
}

/*  Reads key of scope on C through e: 1 when it is there, 0 when the node refuses
 *  (ENGRAM_EDENIED), -1 for anything else (not there yet, or another error). */
static int s_revoke_read(engram_t *e, const char *scope, const char *key)
{
    engram_result_t *res = NULL;
    int rc = engram_get(e, scope, key, NULL, 0, &res);
    int seen = rc == ENGRAM_EDENIED ? 0 : rc == 0 && res->nitems > 0 ? 1 : -1;
    engram_result_destroy(&res);
    return seen;
}

/*  Polls s_revoke_read until it answers want; the nanoseconds from t0, or 0 after
 *  REVOKE_WAIT_S. *reads counts the reads. */
static uint64_t s_revoke_until(engram_t *e, const char *scope, const char *key, int want,
                               uint64_t t0, uint64_t *reads)
{
    uint64_t deadline = t0 + (uint64_t)(REVOKE_WAIT_S * 1e9);
    while (!bench_interrupted) {
        int seen = s_revoke_read(e, scope, key);
        uint64_t now = bench_now_ns();
        if (reads)
            (*reads)++;
        if (seen == want)
            return now - t0 ? now - t0 : 1;
        if (now > deadline)
            break;
    }
    return 0;
}

#define S_REVOKE_FAIL(res, ...)                                                                    \
    (bench_error(&(res)->errors, (res)->error, sizeof(res)->error, __VA_ARGS__), false)

/*  The connections of the revoke cell. */
typedef struct {
    engram_t *admin_a, *admin_b; /* the admin on A and on B */
    engram_t *writer, *check;    /* REVOKE_WRITER on A and on C */
    engram_t *reader;            /* REVOKE_READER on C */
} s_revoke_links_t;

/*  Round r (see s_revoke_run); false when it failed (counted in res). */
static bool s_revoke_round(s_cluster_t *c, const s_revoke_links_t *l, size_t r,
                           s_revoke_result_t *res)
{
    char scope[64];
    snprintf(scope, sizeof scope, "%s%zu", SCOPE_REVOKE, r);
    engram_result_t *put = NULL;
    int rc = engram_put(l->writer, scope, "k", "revocable", 9, NULL, 0, &put);
    engram_result_destroy(&put);
    if (rc)
        return S_REVOKE_FAIL(res, "round %zu: put on A: %s %s", r, engram_strerror(rc),
                             engram_last_error(l->writer));
    if (!s_revoke_until(l->check, scope, "k", 1, bench_now_ns(), NULL))
        return S_REVOKE_FAIL(res, "round %zu: the key never reached C", r);
    if (s_revoke_read(l->reader, scope, "k") != 0)
        return S_REVOKE_FAIL(res, "round %zu: %s is not refused %s before its grant", r,
                             REVOKE_READER, scope);
    uint8_t id[16], *statement = NULL;
    size_t len = 0;
    if (bench_acl_sign_edge(c->acl, REVOKE_READER, scope, true, false, id, &statement, &len) != 0)
        DIE("cannot sign a grant");
    rc = engram_acl_submit(l->admin_a, statement, len, NULL);
    free(statement);
    uint64_t t_grant = bench_now_ns();
    if (rc)
        return S_REVOKE_FAIL(res, "round %zu: grant on A: %s %s", r, engram_strerror(rc),
                             engram_last_error(l->admin_a));
    uint64_t grant = s_revoke_until(l->reader, scope, "k", 1, t_grant, NULL);
    if (!grant)
        return S_REVOKE_FAIL(res, "round %zu: C never let %s read %s", r, REVOKE_READER, scope);
    if (bench_acl_sign_revocation(c->acl, id, bench_acl_now_ms(), &statement, &len) != 0)
        DIE("cannot sign a revocation");
    rc = engram_acl_submit(l->admin_b, statement, len, NULL);
    free(statement);
    uint64_t t_revoke = bench_now_ns();
    if (rc)
        return S_REVOKE_FAIL(res, "round %zu: revocation on B: %s %s", r, engram_strerror(rc),
                             engram_last_error(l->admin_b));
    uint64_t revoke = s_revoke_until(l->reader, scope, "k", 0, t_revoke, &res->reads);
    if (!revoke)
        return S_REVOKE_FAIL(res, "round %zu: C still lets %s read %s %.0f s after the revocation",
                             r, REVOKE_READER, scope, REVOKE_WAIT_S);
    res->grant_ns[res->done] = grant;
    res->revoke_ns[res->done++] = revoke;
    return true;
}

/*  Per round N: REVOKE_WRITER writes a key into run:revoke-N on A and it is awaited on C; the
 *  admin grants REVOKE_READER read on run:revoke-N through A (engram_acl_submit) and the reader
 *  polls the key on C until it reads it; then the admin revokes that edge through B, at once,
 *  and the reader polls on C until the node refuses (ENGRAM_EDENIED). Nodes 1, 2, 3 are A, B,
 *  C. */
static s_revoke_result_t s_revoke_run(s_cluster_t *c, size_t rounds)
{
    s_revoke_result_t res = {.ran = true, .rounds = rounds};
    res.grant_ns = s_alloc(rounds * sizeof *res.grant_ns);
    res.revoke_ns = s_alloc(rounds * sizeof *res.revoke_ns);
    if (s_cluster_wait_settled(c, SETTLE_WAIT_S) < 0)
        DIE("the cluster does not settle before the revoke cell");
    s_revoke_links_t l = {.admin_a = s_admin_connect(c, 1),
                          .admin_b = s_admin_connect(c, 2),
                          .writer = s_engram_connect(c->api[1], REVOKE_WRITER, 5000),
                          .check = s_engram_connect(c->api[3], REVOKE_WRITER, 5000),
                          .reader = s_engram_connect(c->api[3], REVOKE_READER, 5000)};
    if (!l.writer || !l.check || !l.reader)
        DIE("the agents of the revoke cell cannot connect (not registered?)");
    s_usage_t u0 = s_usage_at(s_cpu_sum(c->pid + 1, NODES));
    for (size_t r = 0; r < rounds && !bench_interrupted; r++)
        s_revoke_round(c, &l, r, &res);
    s_usage_note(u0, s_usage_at(s_cpu_sum(c->pid + 1, NODES)));
    engram_destroy(&l.reader);
    engram_destroy(&l.check);
    engram_destroy(&l.writer);
    engram_destroy(&l.admin_b);
    engram_destroy(&l.admin_a);
    return res;
}

/*  --- the tables --------------------------------------------------------------------- */

static void s_repro(const char *what)
{
    printf("  reproduce: %s --only %s%s\n", s_cfg->argv0, what, s_cfg->quick ? " --quick" : "");
}

static const char *s_bytes_text(char *buf, size_t size, double b)
{
    if (b < 0 || isnan(b))
        snprintf(buf, size, "-");
    else if (b >= 1e6)
        snprintf(buf, size, "%.2f MB", b / 1e6);
    else if (b >= 1e4)
        snprintf(buf, size, "%.1f kB", b / 1e3);
    else
        snprintf(buf, size, "%.0f B", b);
    return buf;
}

/*  --- main ------------------------------------------------------------------------- */

/*  What the lag and put cells' values are, for their headers. */
static const char *s_values_kind(void)
{
    return s_cfg->text_values ? " (text: a stamp and words, each indexed)"
                              : " (one run of letters and digits: not indexed)";
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: engram-cluster-bench [--quick] [--only lag,put,bytes,revoke,catchup]\n"
            "                            [--duration SECONDS] [--rates 1000,10000] [--clients N]\n"
            "                            [--no-redis] [--no-etcd] [--redis-server PATH]\n"
            "                            [--etcd PATH] [--engram-bin DIR] [--script PATH]\n"
            "                            [--values token|text]\n");
}

static void s_parse(s_config_t *cfg, int argc, char **argv)
{
    *cfg = (s_config_t){.duration = 3.0,
                        .grace = 5.0,
                        .rates = {1000, 10000},
                        .nrates = 2,
                        .clients = 64,
                        .redis = true,
                        .etcd = true,
                        .only = {true, true, true, true, true},
                        .redis_path = REDIS_SERVER_PATH,
                        .etcd_path = ETCD_PATH,
                        .bin_dir = ENGRAM_BIN_DIR,
                        .script = LOCAL_CLUSTER_SH,
                        .argv0 = argv[0]};
    bool duration_set = false, rates_set = false, clients_set = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "--quick") == 0) {
            cfg->quick = true;
            continue;
        } else if (strcmp(a, "--no-redis") == 0) {
            cfg->redis = false;
            continue;
        } else if (strcmp(a, "--no-etcd") == 0) {
            cfg->etcd = false;
            continue;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            s_usage(stdout);
            exit(0);
        } else if (!v) {
            ok = false;
        } else if (strcmp(a, "--only") == 0) {
            memset(cfg->only, 0, sizeof cfg->only);
            char *copy = strdup(v), *save = NULL;
            for (char *tok = strtok_r(copy, ",", &save); ok && tok;
                 tok = strtok_r(NULL, ",", &save)) {
                int m = 0;
                while (m < M_COUNT && strcmp(tok, s_m_names[m]) != 0)
                    m++;
                ok = m < M_COUNT;
                if (ok)
                    cfg->only[m] = true;
            }
            free(copy);
        } else if (strcmp(a, "--duration") == 0) {
            char *end;
            cfg->duration = strtod(v, &end);
            ok = *end == '\0' && cfg->duration > 0 && cfg->duration < 3600;
            duration_set = true;
        } else if (strcmp(a, "--rates") == 0) {
            cfg->nrates = 0;
            char *copy = strdup(v), *save = NULL;
            for (char *tok = strtok_r(copy, ",", &save); ok && tok;
                 tok = strtok_r(NULL, ",", &save)) {
                char *end;
                unsigned long n = strtoul(tok, &end, 10);
                ok = *end == '\0' && n >= 1 && n <= 1000000 && cfg->nrates < MAX_RATES;
                if (ok)
                    cfg->rates[cfg->nrates++] = (unsigned)n;
            }
            free(copy);
            ok = ok && cfg->nrates > 0;
            rates_set = true;
        } else if (strcmp(a, "--clients") == 0) {
            char *end;
            unsigned long n = strtoul(v, &end, 10);
            ok = *end == '\0' && n >= 1 && n <= MAX_CLIENTS;
            cfg->clients = (unsigned)n;
            clients_set = true;
        } else if (strcmp(a, "--redis-server") == 0) {
            cfg->redis_path = v;
        } else if (strcmp(a, "--etcd") == 0) {
            cfg->etcd_path = v;
        } else if (strcmp(a, "--engram-bin") == 0) {
            cfg->bin_dir = v;
        } else if (strcmp(a, "--script") == 0) {
            cfg->script = v;
        } else if (strcmp(a, "--values") == 0) {
            ok = strcmp(v, "token") == 0 || strcmp(v, "text") == 0;
            cfg->text_values = strcmp(v, "text") == 0;
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "engram-cluster-bench: bad option '%s%s%s'\n", a, v ? " " : "",
                    v ? v : "");
            s_usage(stderr);
            exit(2);
        }
        i++;
    }
    if (cfg->quick) {
        if (!duration_set)
            cfg->duration = 0.5;
        if (!rates_set) {
            cfg->rates[0] = 500;
            cfg->nrates = 1;
        }
        if (!clients_set)
            cfg->clients = 8;
        cfg->grace = 3.0;
    }
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--floor-server") == 0)
        return transport_floor_serve(argc - 2, argv + 2);
    s_config_t cfg;
    s_parse(&cfg, argc, argv);
    s_cfg = &cfg;
    s_port_rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ bench_now_ns();

    const char *base = getenv("TMPDIR");
    snprintf(s_tmpdir, sizeof s_tmpdir, "%s/engram-cluster-bench.XXXXXX",
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
    /* The nodes local-cluster.sh detaches become our children when the script exits. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    s_have_ss = system("ss -V >/dev/null 2>&1") == 0;

    bool have_redis = cfg.redis && s_executable(cfg.redis_path);
    bool have_etcd = cfg.etcd && s_executable(cfg.etcd_path);
    printf("engram-cluster-bench (%s build): %d engram nodes on loopback (%s), %ld CPUs\n",
           ENGRAM_BENCH_BUILD_TYPE, NODES, cfg.script, sysconf(_SC_NPROCESSORS_ONLN));
    printf("peers: redis-server %s, etcd %s\n",
           have_redis  ? cfg.redis_path
           : cfg.redis ? "SKIPPED (not installed)"
                       : "off (--no-redis)",
           have_etcd  ? cfg.etcd_path
           : cfg.etcd ? "SKIPPED (not installed)"
                      : "off (--no-etcd)");
    fflush(stdout);

    int failures = 0;
    s_cluster_t cluster;
    s_redis_t redis = {0};
    s_etcd_t etcd = {0};
    bool need_cluster =
        cfg.only[M_LAG] || cfg.only[M_PUT] || cfg.only[M_BYTES] || cfg.only[M_REVOKE];
    if (need_cluster)
        s_cluster_start(&cluster, "cluster");
    if (have_redis && (cfg.only[M_LAG] || cfg.only[M_PUT] || cfg.only[M_BYTES]))
        s_redis_start(&redis, NODES, false);

    /* 1. lag */
    if (cfg.only[M_LAG] && !bench_interrupted) {
        s_lag_result_t e[MAX_RATES] = {{0}}, r[MAX_RATES] = {{0}};
        s_lag_result_t f[2][MAX_RATES] = {{{0}}}; /* the floor in turns, with an fsync thread */
        unsigned cellno = 0;
        /* each cell once the host is quiet: servers may work on after a cell (compactions, a
         * subscriber's backlog); a fresh floor a cell, stopped after it */
        for (size_t i = 0; i < cfg.nrates && !bench_interrupted; i++) {
            s_wait_quiet(10);
            e[i] = s_lag_run(SYS_ENGRAM, cfg.rates[i], cfg.duration, cluster.api[1], cluster.api[2],
                             0, 0, NULL, cellno++, cluster.pid + 1);
            s_wait_quiet(10);
            if (have_redis && !bench_interrupted)
                r[i] = s_lag_run(SYS_REDIS, cfg.rates[i], cfg.duration, NULL, NULL, redis.port[0],
                                 redis.port[1], NULL, cellno++, redis.pid);
            for (int thread = 0; thread < 2 && !bench_interrupted; thread++) {
                floor_lag_t floor;
                if (!transport_floor_lag_start(s_tmpdir, thread, &floor))
                    DIE("the lag floor cannot start");
                s_wait_quiet(10);
                f[thread][i] =
                    s_lag_run(SYS_FLOOR, cfg.rates[i], cfg.duration, floor.primary, floor.subscribe,
                              0, 0, floor.cert_path, cellno++, floor.pids);
                transport_floor_lag_stop(&floor);
            }
        }
        printf("\n1. Replication lag: write on A (open loop, %d writer threads, %d-byte values%s, "
               "%.1f s per cell) until visible on B\n",
               LAG_WRITERS, VALUE_BYTES, s_values_kind(), cfg.duration);
        printf("   engram: 3-node cluster, engram_put on node A, engram_subscribe on node B | "
               "redis: primary + 2 replicas (AOF always), SET on the primary, keyspace events "
               "on replica 1\n");
        printf("   lag = arrival on B - scheduled write time; ack = put answered - scheduled; "
               "lost = not readable on B %.0f s after the last write (+ readable but no event)\n",
               cfg.grace);
        printf("   after ack = arrival on B - put answered on A (0 if B had it first); cpu: the "
               "system's three servers\n   while the writers ran, 100 = one core\n");
        printf("   floor: no engram code: a primary and two backups that only store a put's four "
               "RocksDB keys (a batch\n   a turn); the primary answers a turn once fsynced, then "
               "pushes it to both backups; backup B sends its\n   subscriber an event a put once "
               "its turn is written out (the backups fsync every 50 ms, as engramd\n   replicas "
               "at their tick); CURVE everywhere; the primary's loop fsyncs each turn before the "
               "next\n   as engramd's (\"floor\"), or a thread fsyncs while it goes on "
               "(\"floor+t\") (bench/transport_floor.h)\n");
        printf("%7s %-7s %7s %8s %8s %8s   %8s %8s   %8s %8s %7s %4s   %s\n", "offered", "system",
               "w/s", "lag p50", "lag p99", "lag max", "ack p50", "ack p99", "after50", "after99",
               "lost", "cpu", "engram/redis lag p50 p99");
        for (size_t i = 0; i < cfg.nrates; i++) {
            char text[256], q50[16], q99[16];
            s_lag_text(text, sizeof text, &e[i]);
            s_ratio(q50, sizeof q50, r[i].ran ? (double)e[i].p50 : NAN, (double)r[i].p50);
            s_ratio(q99, sizeof q99, r[i].ran ? (double)e[i].p99 : NAN, (double)r[i].p99);
            printf("%7u %-7s %s   %s %s\n", cfg.rates[i], "engram", text, q50, q99);
            if (r[i].ran) {
                s_lag_text(text, sizeof text, &r[i]);
                printf("%7u %-7s %s\n", cfg.rates[i], "redis", text);
            }
            for (int thread = 0; thread < 2; thread++) {
                if (f[thread][i].ran) {
                    s_lag_text(text, sizeof text, &f[thread][i]);
                    printf("%7u %-7s %s\n", cfg.rates[i], thread ? "floor+t" : "floor", text);
                }
            }
            if (e[i].achieved < 0.95 * cfg.rates[i])
                printf("        engram did not keep up with %u/s (%d writers in flight): its lag "
                       "is mostly queueing on A (see ack)\n",
                       cfg.rates[i], LAG_WRITERS);
        }
        for (size_t i = 0; i < cfg.nrates; i++) {
            if (e[i].missing || e[i].errors) {
                printf("  FAIL: engram at %u/s: %zu writes never reached B, %zu writes failed\n",
                       cfg.rates[i], e[i].missing, e[i].errors);
                failures++;
            }
            if (e[i].resubscribed)
                printf("  note: engram at %u/s: B ended the subscription %zu times (subscriber "
                       "backlog); arrivals of the lost events were not timed\n",
                       cfg.rates[i], e[i].resubscribed);
            if (r[i].missing || r[i].errors)
                printf("  note: redis at %u/s: %zu writes never reached the replica, %zu failed\n",
                       cfg.rates[i], r[i].missing, r[i].errors);
            for (int thread = 0; thread < 2; thread++) {
                if (f[thread][i].missing || f[thread][i].errors) {
                    printf("  FAIL: the floor%s at %u/s: %zu writes never reached B, %zu "
                           "failed\n",
                           thread ? " with an fsync thread" : "", cfg.rates[i],
                           f[thread][i].missing, f[thread][i].errors);
                    failures++;
                }
            }
        }
        if (!have_redis)
            printf("  redis: skipped (%s)\n",
                   cfg.redis ? "redis-server not installed" : "--no-redis");
        s_other_print();
        s_repro("lag");
        fflush(stdout);
    }

    /* 2. put throughput */
    if (cfg.only[M_PUT] && !bench_interrupted) {
        if (have_etcd)
            s_etcd_start(&etcd);
        s_tp_result_t res[TP_COUNT][2] = {{{0}}};
        for (int k = 0; k < TP_COUNT && !bench_interrupted; k++) {
            bool redis_kind = k == TP_REDIS || k == TP_REDIS_WAIT;
            if ((redis_kind && !have_redis) || (k == TP_ETCD && !have_etcd))
                continue;
            if (k == TP_FLOOR) {
                floor_result_t f;
                bool ok = transport_floor_replicated(s_tmpdir, cfg.clients, cfg.duration, &f);
                res[k][0] = (s_tp_result_t){.ran = true,
                                            .ops_s = f.ops_s,
                                            .p50 = f.p50,
                                            .p99 = f.p99,
                                            .errors = ok ? 0 : (uint64_t)(f.errors ? f.errors : 1),
                                            .cpu = f.cpu_server};
                continue;
            }
            for (int s = 0; s < 2 && !bench_interrupted; s++) {
                if (redis_kind && s == 1)
                    continue; /* writes go to the primary */
                res[k][s] = s_tp_run((s_tp_kind_t)k, s == 1, cfg.clients, cfg.duration, &cluster,
                                     &etcd, &redis);
            }
        }
        if (have_etcd)
            s_etcd_stop(&etcd);
        printf("\n2. Replicated write throughput: %u clients (a thread and connection each, one "
               "request in flight), %d-byte values%s, %.1f s per cell\n",
               cfg.clients, VALUE_BYTES, s_values_kind(), cfg.duration);
        printf("   engram: libengram over ipc; etcd: HTTP/1.1 JSON POST /v3/kv/put (gRPC "
               "gateway, keep-alive, not etcdctl); redis: hiredis, AOF always on all three\n");
        printf("   one node: every client on node A / etcd member 1 / the redis primary; spread: "
               "client i on node i %% 3; cpu: the three servers, 100 = one core\n");
        printf("%-44s %-8s %8s %8s %8s %6s %6s %5s\n", "system", "clients", "ops/s", "p50", "p99",
               "errors", "short", "cpu");
        for (int k = 0; k < TP_COUNT; k++)
            for (int s = 0; s < 2; s++) {
                const s_tp_result_t *r = &res[k][s];
                if (!r->ran)
                    continue;
                char a[16], b[16], c[16];
                printf("%-44s %-8s %8s %8s %8s %6" PRIu64 " %6" PRIu64 " %5.0f\n", s_tp_names[k],
                       s ? "spread" : "one node", bench_si(a, sizeof a, r->ops_s),
                       bench_lat(b, sizeof b, r->p50), bench_lat(c, sizeof c, r->p99), r->errors,
                       r->shortfall, r->cpu);
                if (r->errors)
                    failures += k <= TP_ENGRAM_REP || k == TP_FLOOR;
            }
        printf("   short: --replicas 3 answered ENGRAM_EREPLICAS (not all nodes within 5 s) / "
               "WAIT saw fewer than 2 replicas within 1 s\n");
        printf("   floor: no engram code: a primary and two backups that only store a put's "
               "four RocksDB keys\n   (a batch and an fsync a turn each), push a turn to both "
               "backups once durable and answer it once both\n   acknowledged it, CURVE "
               "everywhere (bench/transport_floor.h): the least --replicas 3 can cost\n   with "
               "engram's transport, storage layout and rule that data leaves a node only once "
               "durable there\n");
        printf("ratios of ops/s                              one node   spread\n");
        static const struct {
            s_tp_kind_t e, peer;
        } pairs[] = {{TP_ENGRAM, TP_REDIS},     {TP_ENGRAM_REP, TP_REDIS_WAIT},
                     {TP_ENGRAM_REP, TP_ETCD},  {TP_ENGRAM, TP_ETCD},
                     {TP_ENGRAM_REP, TP_FLOOR}, {TP_FLOOR, TP_REDIS_WAIT},
                     {TP_FLOOR, TP_ETCD}};
        for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
            const s_tp_result_t *e = res[pairs[p].e], *x = res[pairs[p].peer];
            char r0[16], r1[16], label[64];
            bool one = pairs[p].peer == TP_REDIS || pairs[p].peer == TP_REDIS_WAIT ||
                       pairs[p].peer == TP_FLOOR || pairs[p].e == TP_FLOOR;
            s_ratio(r0, sizeof r0, x[0].ran && e[0].ran ? e[0].ops_s : NAN, x[0].ops_s);
            s_ratio(r1, sizeof r1, x[one ? 0 : 1].ran && e[1].ran ? e[1].ops_s : NAN,
                    x[one ? 0 : 1].ops_s);
            snprintf(label, sizeof label, "%s / %s", s_tp_short[pairs[p].e],
                     s_tp_short[pairs[p].peer]);
            printf("  %-42s %8s %8s\n", label, r0, r1);
        }
        printf("  (against redis and the floor both engram columns divide by the primary's "
               "figure; the floor's row is one node's)\n");
        if (!have_redis)
            printf("  redis: skipped (%s)\n",
                   cfg.redis ? "redis-server not installed" : "--no-redis");
        if (!have_etcd)
            printf("  etcd: skipped (%s)\n", cfg.etcd ? "etcd not installed" : "--no-etcd");
        s_other_print();
        s_repro("put");
        fflush(stdout);
    }

    /* 3. bytes per replicated write */
    if (cfg.only[M_BYTES] && !bench_interrupted) {
        static const size_t payloads[] = {64, 1024, 16384};
        size_t counts[] = {2000, 2000, 500};
        if (cfg.quick)
            counts[0] = counts[1] = counts[2] = 100;
        int ports[NODES];
        s_cluster_ports(&cluster, ports);
        if (s_cluster_wait_settled(&cluster, SETTLE_WAIT_S) < 0)
            DIE("the cluster does not settle before the bytes cells");
        /* Idle gossip (digests, membership), subtracted from the cells. */
        double idle_s = cfg.quick ? 0.5 : 2.0;
        uint64_t g0 = s_bytes_sent(&cluster, NULL, NULL);
        int64_t t0 = s_tcp_bytes(ports, NODES);
        double w0 = bench_now();
        bench_sleep(idle_s);
        double idle_g = (double)(s_bytes_sent(&cluster, NULL, NULL) - g0) / (bench_now() - w0);
        double idle_t =
            t0 < 0 ? NAN : (double)(s_tcp_bytes(ports, NODES) - t0) / (bench_now() - w0);
        s_bytes_result_t br[6] = {{0}};
        for (int p = 0; p < 6 && !bench_interrupted; p++) {
            s_bytes_result_t *b = &br[p];
            b->payload = payloads[p % 3];
            b->n = counts[p % 3];
            b->binary = p >= 3;
            b->redis = -1;
            s_load_binary = b->binary;
            char prefix[32];
            snprintf(prefix, sizeof prefix, "b%zu%s-", b->payload, b->binary ? "r" : "");
            uint64_t p0 = 0, p1 = 0, q0 = 0, q1 = 0;
            uint64_t a0 = s_bytes_sent(&cluster, &p0, &q0);
            int64_t c0 = s_tcp_bytes(ports, NODES);
            double s0 = bench_now();
            b->errors =
                s_load(cluster.api[1], 0, SCOPE_BYTES, prefix, b->payload, 0, b->n, BYTES_THREADS);
            if (s_cluster_wait_settled(&cluster, SETTLE_WAIT_S) < 0) {
                printf("  FAIL: the cluster did not settle after %zu writes of %zu bytes\n", b->n,
                       b->payload);
                failures++;
            }
            b->seconds = bench_now() - s0;
            uint64_t a1 = s_bytes_sent(&cluster, &p1, &q1);
            b->pushes = (double)(p1 - p0) / (double)b->n;
            b->pulls = (double)(q1 - q0) / (double)b->n;
            int64_t c1 = s_tcp_bytes(ports, NODES);
            b->gossip = ((double)(a1 - a0) - idle_g * b->seconds) / (double)b->n;
            b->tcp =
                c0 < 0 || c1 < 0 ? -1 : ((double)(c1 - c0) - idle_t * b->seconds) / (double)b->n;
            failures += b->errors != 0;
            if (have_redis) {
                redisContext *r = bench_redis_connect(redis.port[0], 5000);
                if (!r)
                    DIE("cannot connect to the redis primary");
                s_redis_wait_synced(&redis, 30);
                int64_t o0 = s_redis_info(r, "stats", "total_net_repl_output_bytes");
                int64_t i0 = s_redis_info(r, "stats", "total_net_repl_input_bytes");
                s_load(NULL, redis.port[0], NULL, prefix, b->payload, 0, b->n, BYTES_THREADS);
                if (!s_redis_wait_synced(&redis, 30))
                    printf("  note: the redis replicas did not catch up\n");
                int64_t o1 = s_redis_info(r, "stats", "total_net_repl_output_bytes");
                int64_t i1 = s_redis_info(r, "stats", "total_net_repl_input_bytes");
                if (o0 >= 0 && o1 >= 0)
                    b->redis = (double)(o1 - o0 + (i1 - i0)) / (double)b->n;
                redisFree(r);
            }
        }
        char ig[24], it[24];
        printf("\n3. Bytes on the wire per replicated write (3 nodes: every write goes to 2 "
               "others, floor 2.0 x payload uncompressed)\n");
        printf("   values: text (random letters and digits, about 6 bits a byte) or random "
               "bytes (incompressible); engram compresses gossip (zstd), redis does not\n");
        printf("   writes on node A by %d closed-loop clients until every node holds them; "
               "gossip: cluster status bytes_sent summed over the nodes (encoded messages);\n",
               BYTES_THREADS);
        printf("   tcp: ss bytes_sent of the gossip connections (ZMTP + CurveZMQ framing "
               "included); both net of idle gossip (%s/s engine, %s/s tcp);\n",
               s_bytes_text(ig, sizeof ig, idle_g), s_bytes_text(it, sizeof it, idle_t));
        printf("   redis: primary + 2 replicas, INFO total_net_repl_output+input_bytes of the "
               "primary\n");
        printf("%8s %6s %7s %8s %8s %8s   %11s %7s %11s %7s   %11s %7s   %12s\n", "payload",
               "values", "writes", "time", "pushes/w", "pulls/w", "gossip/w", "x pay", "tcp/w",
               "x pay", "redis/w", "x pay", "engram/redis");
        for (int p = 0; p < 6; p++) {
            const s_bytes_result_t *b = &br[p];
            if (!b->n)
                continue;
            char g[24], t[24], rr[24], q[16], tx[16] = "-", rx[16] = "-";
            double pay = (double)b->payload;
            if (b->tcp >= 0)
                snprintf(tx, sizeof tx, "%.2f", b->tcp / pay);
            if (b->redis >= 0)
                snprintf(rx, sizeof rx, "%.2f", b->redis / pay);
            printf("%8zu %6s %7zu %7.2fs %8.2f %8.3f   %11s %7.2f %11s %7s   %11s %7s   %12s\n",
                   b->payload, b->binary ? "bytes" : "text", b->n, b->seconds, b->pushes, b->pulls,
                   s_bytes_text(g, sizeof g, b->gossip), b->gossip / pay,
                   s_bytes_text(t, sizeof t, b->tcp), tx, s_bytes_text(rr, sizeof rr, b->redis), rx,
                   s_ratio(q, sizeof q, b->gossip, b->redis));
        }
        if (!have_redis)
            printf("  redis: skipped (%s)\n",
                   cfg.redis ? "redis-server not installed" : "--no-redis");
        s_repro("bytes");
        fflush(stdout);
    }

    if (have_redis && redis.nodes)
        s_redis_stop(&redis);

    /* 4. revocation */
    if (cfg.only[M_REVOKE] && !bench_interrupted) {
        size_t rounds = cfg.quick ? REVOKE_ROUNDS_QUICK : REVOKE_ROUNDS;
        s_revoke_result_t rv = s_revoke_run(&cluster, rounds);
        const char *flags = getenv("ENGRAM_NODE_FLAGS");
        printf("\n4. Revocation across three nodes: per round the admin grants agent %s read on "
               "a fresh scope %sN through node A (engram_acl_submit), %s reads a key there on "
               "node C once it can;\n   then the admin revokes that edge through node B "
               "(Revocation, at_ms = now); revoke: from engram_acl_submit returning on B until a "
               "read on C is first refused (ENGRAM_EDENIED),\n   reads on C polled back to back "
               "(each a full request); grant: from the grant's submit returning on A until the "
               "first read on C that finds the key\n",
               REVOKE_READER, SCOPE_REVOKE, REVOKE_READER);
        printf("   gossip: every node with engramd's defaults (local-cluster.sh), interval %d ms "
               "(digests; new operations, statements included, are pushed to fanout peers after "
               "their local commit), fanout %d; ENGRAM_NODE_FLAGS: "
               "%s\n",
               ENGRAM_DEFAULT_GOSSIP_INTERVAL_MS, ENGRAM_DEFAULT_FANOUT,
               flags && *flags ? flags : "(none)");
        qsort(rv.revoke_ns, rv.done, sizeof *rv.revoke_ns, bench_cmp_u64);
        qsort(rv.grant_ns, rv.done, sizeof *rv.grant_ns, bench_cmp_u64);
        char a[16], b[16], d[16], e[16], f[16], g[16];
        printf("%7s %6s   %9s %9s %9s   %9s %9s %9s   %12s\n", "rounds", "done", "revoke50",
               "revoke99", "revokemax", "grant50", "grant99", "grantmax", "reads/revoke");
        printf("%7zu %6zu   %9s %9s %9s   %9s %9s %9s   %12.1f\n", rv.rounds, rv.done,
               bench_lat(a, sizeof a, bench_percentile(rv.revoke_ns, rv.done, 0.50)),
               bench_lat(b, sizeof b, bench_percentile(rv.revoke_ns, rv.done, 0.99)),
               bench_lat(d, sizeof d, rv.done ? rv.revoke_ns[rv.done - 1] : 0),
               bench_lat(e, sizeof e, bench_percentile(rv.grant_ns, rv.done, 0.50)),
               bench_lat(f, sizeof f, bench_percentile(rv.grant_ns, rv.done, 0.99)),
               bench_lat(g, sizeof g, rv.done ? rv.grant_ns[rv.done - 1] : 0),
               rv.done ? (double)rv.reads / (double)rv.done : 0.0);
        if (rv.done < 100)
            printf("   (p99 of fewer than 100 rounds is their maximum or next to it: nearest rank)"
                   "\n");
        if (rv.errors) {
            printf("  FAIL: %" PRIu64 " round(s) failed; the first: %s\n", rv.errors, rv.error);
            failures++;
        }
        free(rv.grant_ns);
        free(rv.revoke_ns);
        s_other_print();
        s_repro("revoke");
        fflush(stdout);
    }
    if (need_cluster)
        s_cluster_stop(&cluster);

    /* 5. catch-up */
    if (cfg.only[M_CATCHUP] && !bench_interrupted) {
        s_cluster_t cc;
        s_cluster_start(&cc, "catchup");
        static const size_t totals_full[] = {10000, 100000}, ks_full[] = {0, 100, 1000, 10000};
        static const size_t totals_quick[] = {1000}, ks_quick[] = {0, 100};
        const size_t *totals = cfg.quick ? totals_quick : totals_full;
        const size_t *ks = cfg.quick ? ks_quick : ks_full;
        size_t ntotals = cfg.quick ? 1 : 2, nks = cfg.quick ? 2 : 4;
        s_catch_result_t res[2][4] = {{{0}}};
        size_t preloaded = 0, missed = 0;
        double load_s[2] = {0};
        for (size_t t = 0; t < ntotals && !bench_interrupted; t++) {
            double l0 = bench_now();
            uint64_t errors = s_load(cc.api[1], 0, SCOPE_CATCH, "pre", VALUE_BYTES, preloaded,
                                     totals[t] - preloaded, LOAD_THREADS);
            preloaded = totals[t];
            load_s[t] = bench_now() - l0;
            if (errors) {
                printf("  FAIL: %" PRIu64 " preload writes failed\n", errors);
                failures++;
            }
            for (size_t i = 0; i < nks && !bench_interrupted; i++) {
                res[t][i] = s_catch_cell(&cc, preloaded + missed, ks[i], &missed);
                if (!res[t][i].ok || res[t][i].errors)
                    failures++;
            }
        }
        s_cluster_stop(&cc);
        /* Redis: the same cells against a primary with two replicas, replica 2 restarted. */
        s_catch_result_t rres[2][4] = {{{0}}};
        bool rfull[2][4] = {{0}};
        if (have_redis && !bench_interrupted) {
            s_redis_t rr;
            s_redis_start(&rr, NODES, true);
            preloaded = missed = 0;
            for (size_t t = 0; t < ntotals && !bench_interrupted; t++) {
                s_load(NULL, rr.port[0], NULL, "pre", VALUE_BYTES, preloaded, totals[t] - preloaded,
                       LOAD_THREADS);
                preloaded = totals[t];
                for (size_t i = 0; i < nks && !bench_interrupted; i++)
                    rres[t][i] =
                        s_redis_catch_cell(&rr, preloaded + missed, ks[i], &missed, &rfull[t][i]);
            }
            s_redis_stop(&rr);
        }
        printf("\n5. Bringing back a node that missed K writes: node C stopped (SIGTERM), K "
               "writes of %d B on node A, C restarted (local-cluster.sh restart)\n",
               VALUE_BYTES);
        printf("   keys: written to the scope before the cell (T preloaded, then the earlier "
               "cells' K); delta: A's lag_bytes for C before the restart (the encoded delta C "
               "needs);\n   received: gossip bytes C received from its start until its "
               "context held all of A's operations; time: restart command until then\n");
        printf("%8s %9s %7s %7s %11s %12s %10s %9s %8s %8s\n", "keys", "ops on A", "K", "A lag",
               "delta", "received", "recv/K", "net/K", "x delta", "time");
        for (size_t t = 0; t < ntotals; t++) {
            uint64_t base = res[t][0].ran && res[t][0].k == 0 ? res[t][0].received : 0;
            for (size_t i = 0; i < nks; i++) {
                const s_catch_result_t *r = &res[t][i];
                if (!r->ran)
                    continue;
                char d[24], rv[24], pk[24], nk[24], x[16];
                printf(
                    "%8zu %9" PRIu64 " %7zu %7" PRIu64 " %11s %12s %10s %9s %8s %7.2fs%s\n",
                    r->total, r->ops, r->k, r->lag_ops, s_bytes_text(d, sizeof d, (double)r->delta),
                    s_bytes_text(rv, sizeof rv, (double)r->received),
                    s_bytes_text(pk, sizeof pk, r->k ? (double)r->received / (double)r->k : -1),
                    s_bytes_text(nk, sizeof nk,
                                 r->k ? ((double)r->received - (double)base) / (double)r->k : -1),
                    s_ratio(x, sizeof x, (double)r->received, (double)r->delta), r->seconds,
                    r->ok ? "" : "  FAIL: never caught up");
            }
            printf("   (preloading to %zu keys took %.1f s)\n", totals[t], load_s[t]);
        }
        printf("   net/K: (received - received at K=0 for the same keys) / K\n");
        if (have_redis) {
            printf("   redis: primary + 2 replicas with RDB snapshots (a replica saves its "
                   "replication offset at shutdown and asks for a partial resync), default "
                   "repl-backlog-size;\n   replica 2 stopped, K SETs, restarted; delta: the "
                   "primary's replication stream for the K writes; received: the replica's "
                   "total_net_repl_input_bytes\n");
            printf("%8s %9s %7s %11s %12s %10s %8s %8s %8s   %s\n", "keys", "dbsize", "K", "delta",
                   "received", "recv/K", "sync", "x delta", "time", "engram/redis received");
            for (size_t t = 0; t < ntotals; t++)
                for (size_t i = 0; i < nks; i++) {
                    const s_catch_result_t *r = &rres[t][i];
                    if (!r->ran)
                        continue;
                    char d[24], rv[24], pk[24], x[16], q[16];
                    printf(
                        "%8zu %9" PRIu64 " %7zu %11s %12s %10s %8s %8s %7.2fs   %s%s\n", r->total,
                        r->ops, r->k, s_bytes_text(d, sizeof d, (double)r->delta),
                        s_bytes_text(rv, sizeof rv, (double)r->received),
                        s_bytes_text(pk, sizeof pk, r->k ? (double)r->received / (double)r->k : -1),
                        rfull[t][i] ? "full" : "partial",
                        s_ratio(x, sizeof x, (double)r->received, (double)r->delta), r->seconds,
                        s_ratio(q, sizeof q, res[t][i].ran ? (double)res[t][i].received : NAN,
                                (double)r->received),
                        r->ok ? "" : "  (never caught up)");
                }
        } else {
            printf("  redis: skipped (%s)\n",
                   cfg.redis ? "redis-server not installed" : "--no-redis");
        }
        s_repro("catchup");
        fflush(stdout);
    }

    (void)failures;
    return failures ? 1 : 0;
}
