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
 *  Keys: the node's agent API is CURVE. node_harness_connect gives the agent a key pair on its
 *  first use (tests/support/agent_keys.h: a temporary $ENGRAM_HOME for the test process) and
 *  libengram pins the node's key from the certificate the node publishes beside its socket
 *  (api.sock.pub); a test that calls engram_connect itself calls agent_keys_make first.
 *
 *  Cluster members (below): the harness also makes an admin's cluster and the node's admission
 *  card, and starts the node with gossip on a free random port (retried if another process
 *  takes it first).
 *
 *  Ownership: the harness owns its directory, the child process and its strings. One thread
 *  at a time may use a harness.
 */
#ifndef ENGRAM_TEST_NODE_HARNESS_H
#define ENGRAM_TEST_NODE_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <czmq.h>

#include "engram/engram.h"
#include "node/trust/admission.h"

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

/*  A libengram connection to the node as agent/user, with the given call timeout; the agent
 *  gets a key pair on its first use. Caller owns return value and must destroy it with
 *  engram_destroy; NULL on failure. */
engram_t *node_harness_connect(const node_harness_t *self, const char *agent, const char *user,
                               int timeout_ms);
/*  A raw ZeroMQ DEALER connected to the node's API with agent's CURVE key pair (made on first
 *  use) and the key the running node published, for tests that write frames by hand. Caller
 *  owns return value and must destroy it with zsock_destroy; NULL on failure (said on
 *  stderr), e.g. when the node has not published its key (is not running). */
zsock_t *node_harness_dealer(const node_harness_t *self, const char *agent);
/*  Prints the last lines of the node's log to stderr under a title. */
void node_harness_dump_log(const node_harness_t *self, const char *title);
/*  Whether the node's log (every run so far) contains needle. */
bool node_harness_log_contains(const node_harness_t *self, const char *needle);
/*  The harness's temporary directory (holds data/, the log and, for a member, its card).
 *  Valid as long as the harness. */
const char *node_harness_dir(const node_harness_t *self);

/*  CLOCK_MONOTONIC in milliseconds. */
int64_t node_harness_now_ms(void);
/*  Polls cond(arg) every few milliseconds until it holds (true) or timeout_ms have passed
 *  (false, after one last try). A condition may say why it does not hold yet with
 *  node_harness_because; node_harness_why returns the last reason ("" when none was given
 *  since the poll started), for the failure message. */
bool node_harness_poll(int timeout_ms, bool (*cond)(void *arg), void *arg);
void node_harness_because(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *node_harness_why(void);

/*  --- cluster members ------------------------------------------------------------------
 *
 *  A cluster member runs with `--gossip tcp://127.0.0.1:PORT --admission DIR/admission`: the
 *  admin (node_harness_admin_t, made in-process with node/trust/admission.c as `engram cluster
 *  init` does) signs the card of the node's identity (`engramd --identity`). PORT is picked at
 *  random in [NODE_HARNESS_PORT_MIN, NODE_HARNESS_PORT_MAX) with PORT + 1 (introductions) free
 *  too, so that two test runs on one host rarely meet; a start that fails because the port
 *  was taken in the meantime is retried on another. The member keeps its port across
 *  restarts. */

#define NODE_HARNESS_PORT_MIN 20000
#define NODE_HARNESS_PORT_MAX 60000

/*  A cluster's admin: its id, public and secret key. */
typedef struct {
    node_trust_t trust;
    uint8_t secret_key[crypto_sign_SECRETKEYBYTES];
} node_harness_admin_t;

/*  A new cluster (node_admin_init in a temporary $ENGRAM_HOME, loaded back and removed).
 *  0 or -1. */
int node_harness_admin_init(node_harness_admin_t *admin);
/*  A random base port P in [NODE_HARNESS_PORT_MIN, NODE_HARNESS_PORT_MAX - count) such that
 *  127.0.0.1:P .. P + count - 1 can be bound right now; -1 if none was found. */
int node_harness_free_ports(unsigned count);

/*  Creates the node's identity (engramd --identity) and has admin sign its card into
 *  DIR/admission. The node must not be running. 0 or -1. */
int node_harness_admit(node_harness_t *self, const node_harness_admin_t *admin);
/*  Starts the admitted node as a member: gossip on a fresh port, joining through join (a
 *  member's gossip endpoint, or NULL), with extra flags (NULL-terminated, or NULL). Later
 *  node_harness_start calls restart it with the same flags and port. 0 or -1. */
int node_harness_start_member(node_harness_t *self, const char *join, const char *const *extra);
/*  The member's node id and Ed25519 public key (after node_harness_admit). */
uint64_t node_harness_node_id(const node_harness_t *self);
const uint8_t *node_harness_public_key(const node_harness_t *self);
/*  "tcp://127.0.0.1:PORT" once started as a member, else "". Valid as long as the harness. */
const char *node_harness_gossip_endpoint(const node_harness_t *self);

#endif
