/*  node_harness: real engramd processes for the multi-process tests.
 *
 *  A harness owns one fresh temporary directory (mkdtemp under /tmp, short enough for an
 *  ipc:// path) holding the node's data directory `data/`, its API socket `api.sock` and its
 *  log `engramd.log` (stdout and stderr of every run, appended). It starts the built engramd
 *  (ENGRAM_ENGRAMD, a compile definition) by fork and exec with
 *  `--data DIR/data --api ipc://DIR/api.sock` plus the caller's extra flags, and a start
 *  returns only once the node answers engram_stats. The same harness restarts the node on the
 *  same directory, so a test can stop or kill a node and look at what survived.
 *
 *  Stopping is SIGTERM and a wait for the exit status, which a clean stop makes 0 (under
 *  -DENGRAM_SANITIZE=ON a leak or a sanitizer report makes it non-zero, so every clean stop
 *  also checks the node for leaks). Killing is SIGKILL, a simulated process crash. Whenever
 *  a node exits in any other way than asked, or a start or stop fails, the harness prints
 *  the tail of its log to stderr, so a failing test shows why.
 *
 *  node_harness_destroy always kills and reaps a node still running and removes the whole
 *  directory: call it from a cmocka teardown, so nothing is left behind on a failure either.
 *  The child gets PR_SET_PDEATHSIG(SIGKILL), so a test process that dies unexpectedly does
 *  not leave a node running.
 *
 *  Ownership: the harness owns its directory, the child process and its strings. One thread
 *  at a time may use a harness.
 */
#ifndef ENGRAM_TEST_NODE_HARNESS_H
#define ENGRAM_TEST_NODE_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

#include "engram/engram.h"

typedef struct node_harness node_harness_t;

/*  Creates the temporary directory; the node is not started. args: extra engramd flags
 *  (NULL-terminated; NULL for none), copied. Caller owns return value and must destroy it;
 *  NULL if the directory cannot be made. */
node_harness_t *node_harness_new(const char *const *args);
/*  Kills and reaps a running node, removes the directory, frees, nulls *self_p. */
void node_harness_destroy(node_harness_t **self_p);

/*  Starts engramd and waits (up to NODE_HARNESS_START_MS) until it answers engram_stats.
 *  0, or -1 if it could not be started, exited, or did not answer (it is then killed). */
int node_harness_start(node_harness_t *self);
/*  Replaces the extra flags used by the next start (NULL-terminated; NULL for none). */
int node_harness_set_args(node_harness_t *self, const char *const *args);
/*  SIGTERM, then waits up to NODE_HARNESS_STOP_MS for the exit. Returns the exit status
 *  (0 after a clean stop), or -1 if the node died of a signal, did not stop in time (it is
 *  then killed) or was not running. */
int node_harness_stop(node_harness_t *self);
/*  SIGKILL and reap: a crash. No-op if the node is not running. */
void node_harness_kill(node_harness_t *self);
/*  True while the started node has not exited (reaps it, and prints its log, if it has). */
bool node_harness_alive(node_harness_t *self);

/*  "ipc://DIR/api.sock". Valid as long as the harness. */
const char *node_harness_endpoint(const node_harness_t *self);
/*  The node's data directory. Valid as long as the harness. */
const char *node_harness_data_dir(const node_harness_t *self);
pid_t node_harness_pid(const node_harness_t *self);

/*  A libengram connection to the node as agent/user, with the given call timeout. Caller
 *  owns return value and must destroy it with engram_destroy; NULL on failure. */
engram_t *node_harness_connect(const node_harness_t *self, const char *agent, const char *user,
                               int timeout_ms);
/*  Prints the last lines of the node's log to stderr under a title. */
void node_harness_dump_log(const node_harness_t *self, const char *title);

#endif
