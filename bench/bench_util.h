/*  bench_util: the plumbing engram-node-bench and engram-cluster-bench share, so that both
 *  measure with the same clocks, format with the same units and manage their servers the same
 *  way. It is part of no library and serves only the benchmarks in bench/.
 *
 *  - Time: CLOCK_MONOTONIC seconds and nanoseconds; bench_sleep() ends early once
 *    bench_interrupted is set (a SIGINT/SIGTERM handler sets it).
 *  - Numbers: splitmix64, "1.23M"/"45.6k" and "87us"/"1.23ms" text, nearest-rank percentiles.
 *  - Processes: bench_spawn() starts a server as a child that dies with the benchmark and
 *    records it in a table of at most BENCH_MAX_CHILDREN children; bench_stop() stops one
 *    (also a process that is not our child, as a detached engramd reparented to a subreaper)
 *    and bench_children_stop() stops every recorded child, for an atexit handler.
 *  - CPU: of a process, of this process, of the whole host.
 *  - Files: bench_rm_tree() removes a directory tree, best effort.
 *  - Life: bench_start() installs the SIGINT/SIGTERM handler and the cleanup; BENCH_DIE()
 *    reports where a benchmark gave up and exits 2 after releasing what must go first.
 *  - Redis: bench_redis_connect(), in bench_redis.c (the only part that needs hiredis).
 *  - Access control: bench_acl_*(), in bench_acl.c (the part that needs engram_trust and the
 *    tests' agent keys): what an engramd a benchmark starts needs before it serves anyone.
 *
 *  All of it is for the main thread only, except the time, number and CPU functions, which any
 *  thread may call. The child table is process-wide state.
 */
#ifndef ENGRAM_BENCH_UTIL_H
#define ENGRAM_BENCH_UTIL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_MAX_CHILDREN 16

/*  The RocksDB log level of the stores a benchmark opens itself (the floors, the raw RocksDB
 *  peer): INFO, as engramd's store sets it (node/store/internal.h); a librocksdb built without
 *  NDEBUG, as Debian's, logs at DEBUG, a line for each WAL write-out and sync. */
#define BENCH_ROCKSDB_INFO_LEVEL 1

struct redisContext;

/*  Set by the benchmark's signal handler; bench_sleep() returns early once it is set. */
extern volatile sig_atomic_t bench_interrupted;

/*  SIGINT and SIGTERM set bench_interrupted and *stop (may be NULL); cleanup (may be NULL)
 *  runs at exit; release (may be NULL) runs in bench_die() before exit, for what must be freed
 *  before czmq's own atexit handler. */
void bench_start(atomic_bool *stop, void (*release)(void), void (*cleanup)(void));
/*  Prints "file:line: message" to stderr and exits 2. */
#define BENCH_DIE(...) bench_die(__FILE__, __LINE__, __VA_ARGS__)
__attribute__((format(printf, 3, 4), noreturn)) void bench_die(const char *file, int line,
                                                               const char *format, ...);

/*  Counts an error of a worker, keeping the text of the first one in buf. */
__attribute__((format(printf, 4, 5))) void bench_error(uint64_t *count, char *buf, size_t size,
                                                       const char *format, ...);

/*  CLOCK_MONOTONIC, in seconds and in nanoseconds. */
double bench_now(void);
uint64_t bench_now_ns(void);
/*  Sleeps for seconds, resuming after a signal unless bench_interrupted is set. */
void bench_sleep(double seconds);

/*  splitmix64: a fixed seed gives the same sequence on every run. */
uint64_t bench_rand(uint64_t *state);
/*  Words for the search index, as an agent's text memories hold: fills val[from, len) with a
 *  space and words of 3-8 letters from a vocabulary of 4,096, separated by spaces, the mix of
 *  them seed's own (one seed gives the same words every time). */
void bench_words_fill(uint8_t *val, size_t from, size_t len, uint64_t seed);

/*  "1.23G", "45.6k", "789": three significant digits. Returns buf. */
const char *bench_si(char *buf, size_t size, double v);
/*  Latency from nanoseconds: "87us", "1.23ms", "1.50s". Returns buf. */
const char *bench_lat(char *buf, size_t size, uint64_t ns);

/*  qsort comparator for uint64_t. */
int bench_cmp_u64(const void *a, const void *b);
/*  Nearest rank: the smallest of n sorted samples with at least p of them at or below it;
 *  0 when n is 0. */
uint64_t bench_percentile(const uint64_t *sorted, size_t n, double p);

/*  Starts argv[0] (searched in PATH) with stdout and stderr into the file log and no other
 *  descriptors; the child ignores SIGINT and dies with this process (PR_SET_PDEATHSIG).
 *  Records it in the child table. Returns its pid, or -1 with errno set if fork failed or the
 *  table is full (EMFILE). */
pid_t bench_spawn(char *const argv[], const char *log);
/*  False once the child has exited (and then it is reaped and forgotten). */
bool bench_alive(pid_t pid);
/*  Stops pid: SIGTERM, 10 s for a clean stop, then SIGKILL; reaps it if it is our child and
 *  forgets it. Does nothing for pid <= 0 or a process that is gone. */
void bench_stop(pid_t pid);
/*  bench_stop() of every recorded child, most recent first. */
void bench_children_stop(void);
/*  Copies the file log to stderr under a "--- log ---" line; nothing if it cannot be read. */
void bench_show_log(const char *log);

/*  CPU seconds (user + system) of process pid, from /proc/PID/stat; NAN if unknown. */
double bench_cpu_seconds(pid_t pid);
/*  CPU seconds this process (every thread) has used. */
double bench_self_cpu_seconds(void);
/*  CPU seconds the whole host has been busy (every CPU, /proc/stat: all but idle and
 *  iowait); NAN if unknown. */
double bench_host_cpu_seconds(void);

/*  Removes dir and everything under it, without following symlinks; errors are ignored. */
void bench_rm_tree(const char *dir);

/*  (bench_redis.c) A hiredis connection to 127.0.0.1:port that answered PING, with a 10 s command
 * timeout; NULL if it cannot connect within timeout_ms or PING fails. Caller owns return value and
 *  must redisFree it. */
struct redisContext *bench_redis_connect(int port, int timeout_ms);

/*  --- access control (bench_acl.c) ----------------------------------------------------
 *
 *  engramd refuses to start without a trust root, and serves a connection only when its
 *  CURVE key is registered to an agent that may act for the request's user and may read or
 *  write its scope (node/trust/acl.h). A bench_acl_t is the benchmarks' admin: an Ed25519
 *  key pair made by node_admin_init in a directory of the benchmark's (the format of an
 *  $ENGRAM_HOME: `cluster`, `admin.key`, so the engram CLI and deploy/local-cluster.sh can
 *  use it to sign admission cards), and the statements it signed so far, which
 *  bench_acl_write hands a node as DATA/acl.init (imported at every start), with DATA/trust
 *  for a lone node. Agents' keys are the engram_test_keys ones (agent_keys.h), made on first
 *  use in the process's $ENGRAM_HOME. Every failure is said on stderr. Main thread only. */

typedef struct bench_acl bench_acl_t;

/*  The admin of home: loaded when home holds a cluster already, else created there (and home
 *  with it). NULL on failure. Caller owns return value and must destroy it. */
bench_acl_t *bench_acl_new(const char *home);
void bench_acl_destroy(bench_acl_t **self_p);
/*  Statements kept so far. */
size_t bench_acl_size(const bench_acl_t *self);

/*  agent (its key pair made if needed) registered, and allowed to act for user. 0 or -1. */
int bench_acl_register(bench_acl_t *self, const char *user, const char *agent);
/*  The same, and one allow-all edge: read and write on "*" (every shared scope and external
 *  resource); with cluster, read on "cluster" too (status, acl show). 0 or -1. */
int bench_acl_allow_all(bench_acl_t *self, const char *user, const char *agent, bool cluster);
/*  A realistic graph around the n agents (registered here, acting for user): see bench_acl.c
 *  for its shape. They reach scope through a pattern edge ("run:*"), behind revoked older
 *  edges and edges to other resources, among BENCH_ACL_GRAPH_AGENTS other agents and
 *  BENCH_ACL_GRAPH_POLICIES write policies, none of which matches scope. scope must be
 *  "run:..." and match none of the other agents' exact resources. 0 or -1. */
#define BENCH_ACL_GRAPH_AGENTS   1000
#define BENCH_ACL_GRAPH_POLICIES 10
int bench_acl_graph(bench_acl_t *self, const char *user, const char *const *agents, size_t n,
                    const char *scope);
/*  The external resources the graph's agents (the n above included) may read: what a
 *  benchmark may declare as the sources of its writes (engram_set_sources). */
extern const char *const bench_acl_sources[2];

/*  Writes data_dir/acl.init (every statement kept, a packed engram.StatementList) and, with
 *  trust, data_dir/trust (the admin's cluster: a lone node's trust root); creates data_dir.
 *  0 or -1. */
int bench_acl_write(const bench_acl_t *self, const char *data_dir, bool trust);

/*  Signed now, not kept: an edge (agent, resource, read, write) from now on, its id into id;
 *  a revocation of the statement id at at_ms. *signed_out (a packed SignedStatement, for
 *  engram_acl_submit) is the caller's to free(). 0 or -1. */
int bench_acl_sign_edge(bench_acl_t *self, const char *agent, const char *resource, bool read,
                        bool write, uint8_t id[16], uint8_t **signed_out, size_t *len);
int bench_acl_sign_revocation(bench_acl_t *self, const uint8_t id[16], uint64_t at_ms,
                              uint8_t **signed_out, size_t *len);
/*  The admin's CURVE key pair: engram_connect_keys with it administers a node. */
void bench_acl_admin_curve(const bench_acl_t *self, uint8_t public_key[32], uint8_t secret_key[32]);
/*  Wall-clock milliseconds, the statements' time. */
uint64_t bench_acl_now_ms(void);

/*  The access decisions of one request, timed in this process: a node_acl_t holding the
 *  statements acl kept (node_acl_add of them all, in order, took *import_s seconds), and agent
 *  acting for user on scope. NULL (said on stderr) unless both decisions below allow. Caller
 *  owns return value and must destroy it. */
typedef struct bench_acl_decider bench_acl_decider_t;
bench_acl_decider_t *bench_acl_decider_new(const bench_acl_t *acl, const char *agent,
                                           const char *user, const char *scope,
                                           const char *const *sources, size_t nsources,
                                           double *import_s);
void bench_acl_decider_destroy(bench_acl_decider_t **self_p);
/*  One timing (about 5 ms of calls each) of the decisions as engramd's request path makes
 *  them: *write_ns per put (identify the connection's key, act, scope write, the write
 *  policy), *read_ns per get of one fragment the agent wrote declaring the nsources sources
 *  (identify, act, scope read, then the fragment's check: act and scope again, its author's
 *  user edge, each of its resources readable). Take the least of several, alternating with
 *  whatever it is compared with: other processes only ever add time. */
void bench_acl_decider_time(bench_acl_decider_t *self, double *write_ns, double *read_ns);

#endif
