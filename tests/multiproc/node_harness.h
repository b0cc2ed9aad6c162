/*  node_harness: real engramd processes for the multi-process tests.
 *
 *  A harness owns one fresh temporary directory (mkdtemp under /tmp, short enough for an
 *  ipc:// path) holding the node's data directory `data/`, its API socket `api.sock` and its
 *  log `engramd.log` (stdout and stderr of every run, appended). It starts the built engramd
 *  (ENGRAM_ENGRAMD, a compile definition) by fork and exec with
 *  `--data DIR/data --api ipc://DIR/api.sock` plus the caller's extra flags, and a start
 *  returns only once the node answers engram_stats (on the admin's connection, below). The same
 * harness restarts the node on the same directory, so a test can stop or kill a node and look at
 * what survived.
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
 *  Keys: the node's agent API is CURVE. Every agent gets a key pair on its first use
 *  (tests/support/agent_keys.h: a temporary $ENGRAM_HOME for the test process) and libengram
 *  pins the node's key from the certificate the node publishes beside its socket
 *  (api.sock.pub).
 *
 *  Access control: engramd refuses to start without a trust root, takes every request's agent
 *  from the connection's key, and serves an agent only what admin-signed statements allow
 *  (node/trust/acl.h). So every harness node has an admin (node_harness_admin_t), kept in the
 *  harness: a member the cluster's admin of node_harness_admit, whose card is its trust root;
 *  a lone node (never admitted) a fresh admin of its own, made (node_harness_admin_init) with
 *  its trust file DATA/trust (the cluster file `engram init` writes) before its first start
 *  or grant. node_harness_admin_connect connects with the admin's key, which administers
 *  (cluster status, join and remove, acl submit, show and check) and reads stats, but holds
 *  no memory; the harness uses it to see that a node answers after a start.
 *
 *  node_harness_grant(agent, user) makes the agent's key pair and has the admin sign what an
 *  agent of the tests needs: the key's registration as the agent (AgentRegister), the user's
 *  edge to it (UserAgentEdge, from now on) and the agent's read and write edge to "*", every
 *  shared scope (AgentResourceEdge). node_harness_submit hands a statement to the node: a
 *  running node gets it online (engram_acl_submit, which keeps it in the replicated scope
 *  sys:acl: durable, so a restart keeps it); a node not running finds it in DATA/acl.init,
 *  which engramd imports at every start (a StatementList, proto/acl.proto). The harness
 *  remembers the pairs it granted and grants each once per node; node_harness_connect and
 *  node_harness_dealer grant their pair on first use, so a test names agents and users as it
 *  likes. A test that calls engram_connect itself (a thread's own connection) grants first.
 *
 *  Grants in a cluster: statements replicate (sys:acl), but asynchronously, so each node is
 *  granted on its own: the harness of the node a test connects to signs and submits the
 *  grant there, whatever the other nodes hold (a grant replicated here already is granted
 *  again under new ids, which changes nothing). So a connection never waits for replication,
 *  and nothing races it. What a reader sees is judged by the acl of the node it
 *  reads from: a fragment written by agent X counts for a reader acting for user U only while
 *  X may act for U there (node_acl_may_read), so a test reading another agent's writes grants
 *  that agent for the reader's user too; and subscription events are judged once, at
 *  delivery, so a node must know the writers' grants before their writes reach it.
 *
 *  Ownership: the harness owns its directory, the child process, its strings and its copy of
 *  the admin's keys (the secret zeroed by destroy). One thread at a time may use a harness.
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

/*  A cluster's admin (or a lone node's): its cluster id, public and secret key. */
typedef struct {
    node_trust_t trust;
    uint8_t secret_key[crypto_sign_SECRETKEYBYTES];
} node_harness_admin_t;

/*  Creates the temporary directory; the node is not started. args: extra engramd flags
 *  (NULL-terminated; NULL for none), copied. Caller owns return value and must destroy it;
 *  NULL if the directory cannot be made. */
node_harness_t *node_harness_new(const char *const *args);
/*  Kills and reaps a running node, removes the directory, frees, nulls *self_p. */
void node_harness_destroy(node_harness_t **self_p);

/*  Starts engramd and waits (up to NODE_HARNESS_START_MS) until it answers engram_stats on
 *  the admin's connection; a lone node gets its admin and DATA/trust first if it has none.
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

/*  A libengram connection to the node as agent acting for user, with the given call timeout;
 *  the pair is granted first (node_harness_grant) if it was not yet. Caller owns return value
 *  and must destroy it with engram_destroy; NULL on failure (said on stderr). */
engram_t *node_harness_connect(node_harness_t *self, const char *agent, const char *user,
                               int timeout_ms);
/*  A raw ZeroMQ DEALER connected to the node's API with agent's CURVE key pair and the key
 *  the running node published, for tests that write frames by hand; the pair (agent, user)
 *  is granted first as for node_harness_connect (the frames may name user, or another one).
 *  Caller owns return value and must destroy it with zsock_destroy; NULL on failure (said on
 *  stderr), e.g. when the node has not published its key (is not running). */
zsock_t *node_harness_dealer(node_harness_t *self, const char *agent, const char *user);
/*  A libengram connection with the admin's key (its CURVE form, node_admission_curve_keys)
 *  and the key the running node published, with the given call timeout. Caller owns return
 *  value and must destroy it with engram_destroy; NULL when the node has no admin yet or has
 *  not published its key (is not running). */
engram_t *node_harness_admin_connect(const node_harness_t *self, int timeout_ms);
/*  Makes e's reads wait (up to wait_ms) for token, and waits for it with a read of scope (the
 *  scope the token names), so that a write made next on e comes after what it covers (writes
 *  themselves do not wait for a token). 0, or the code of the call that failed. */
int node_harness_after(engram_t *e, const char *scope, const char *token, int wait_ms);
/*  Runs the engram CLI (the binary at cli) on the node as agent acting for user, with the
 *  arguments argv (NULL-terminated, at most 24); its standard output into *out (caller frees;
 *  NULL on failure to run). The agent is granted first if it was not yet (its key pair must
 *  exist under $ENGRAM_HOME for the CLI to find it). Returns the CLI's exit code, or -1. */
int node_harness_cli(node_harness_t *self, const char *cli, const char *agent, const char *user,
                     const char *const *argv, char **out);
/*  Hands the node a packed SignedStatement (node_acl_sign by the harness's admin, or any
 *  other: the node judges it): online to a running node, else appended to DATA/acl.init for
 *  its next start. A lone node's admin is made first if need be. 0, or an ENGRAM_E* code (said
 *  on stderr): the node's refusal, or why the admin, its trust file or acl.init could not be
 *  made. */
int node_harness_submit(node_harness_t *self, const uint8_t *signed_statement, size_t len);
/*  Lets agent act for user on the node and read and write every shared scope (see above);
 *  nothing when this harness granted the pair already. 0, or an ENGRAM_E* code: what
 *  node_harness_submit returned for the first statement that failed (e.g. ENGRAM_ETOOBIG from
 *  a running node for a name longer than ENGRAM_ACL_MAX_NAME_BYTES), or ENGRAM_EIO if the
 *  agent's key pair cannot be made; the pair is then not remembered. */
int node_harness_grant(node_harness_t *self, const char *agent, const char *user);
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

/*  A new cluster (node_admin_init in a temporary $ENGRAM_HOME, loaded back and removed).
 *  0 or -1. */
int node_harness_admin_init(node_harness_admin_t *admin);
/*  A random base port P in [NODE_HARNESS_PORT_MIN, NODE_HARNESS_PORT_MAX - count) such that
 *  127.0.0.1:P .. P + count - 1 can be bound right now; -1 if none was found. */
int node_harness_free_ports(unsigned count);

/*  Creates the node's identity (engramd --identity) and has admin sign its card into
 *  DIR/admission; admin becomes the node's (copied). The node must not be running, nor have
 *  another admin already (a lone node's, made by its first start or grant). 0 or -1. */
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
