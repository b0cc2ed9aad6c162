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

/*  (bench_redis.c) A hiredis connection to 127.0.0.1:port that answered PING, with a 10 s command timeout;
 *  NULL if it cannot connect within timeout_ms or PING fails. Caller owns return value and
 *  must redisFree it. */
struct redisContext *bench_redis_connect(int port, int timeout_ms);

#endif
