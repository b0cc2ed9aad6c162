/*  sim: the deterministic multi-node simulation of gossip/.
 *
 *  N gossip engines, each over an in-memory store of crdt_scope_t (one per shared scope name),
 *  run on a simulated network and a simulated clock, both driven by one 64-bit seed: the same
 *  seed replays the same run, message for message. Nothing here reads a real clock or touches
 *  a socket.
 *
 *  The network delivers every message gossip_engine_next hands out after a random delay (so
 *  messages overtake each other), loses it with probability `loss_permille`, delivers it twice
 *  with probability `dup_permille`, and drops it when sender and receiver are on different sides
 *  of a partition at delivery time. A crash destroys the node's engine (chunks it was staging
 *  are gone) and keeps its store; a crash that loses unsynced state also puts the store back to
 *  its snapshot at its last sync point, after which the node takes a new replica id (so it never
 *  issues a dot twice: the old id is never used again). Each node's wall clock has a constant
 *  skew; the HLC stamps of its register and log writes come from its clock, which observes
 *  every stamp of every delta it applies and refuses one past the default drift
 *  (ENGRAM_DEFAULT_MAX_CLOCK_DRIFT_MS), as engramd's store does.
 *
 *  Membership is SWIM's (gossip/swim.c): each node starts knowing one seed, its `--join` host
 *  (node i > 0 a random node below it, so the seeds form a tree; decommissioned hosts are
 *  skipped up the tree), presents a card the sim's admit hook checks, and learns the rest
 *  through the protocol. It learns its seed host's id again whenever it does not know it (a
 *  lossy crash gives the host a new id), as engramd retries its `--join` address. A crash that
 * loses state retires the node's old id: the restarted node decommissions it (gossip_engine_leave)
 * as an admin would. In runs with `decommission`, one live node is decommissioned for good at a
 * random node during the fault phase: it keeps running, takes no more operations, and its
 * operations count as lost (they may survive at peers). Round mode uses a static full membership
 * instead.
 *
 *  A run is a fault phase (random operations of every type on a small key space at random live
 *  nodes, ticks every ~tick_ms per node, and the faults above), then heal and quiesce (no
 *  partition, no loss or duplication, every node up, ticks only) until every replica agrees.
 *  The checks, each a counted and printed violation:
 *  - after every apply, the scope's context is a plain version vector (causal delivery);
 *  - no join is refused and no engine call fails (the network never corrupts a message);
 *  - no message is larger than the engine's budget (max_message_bytes, raised to its floor
 *    GOSSIP_MIN_MESSAGE_BYTES as the engine does): engramd's peers refuse larger frames;
 *  - after quiesce, every node holds equal scopes (context, digest, crdt_scope_equal), the
 *    incremental digest equals the recomputed one (decommissioned nodes excluded);
 *  - after quiesce, every live node sees every live node ALIVE and every other id it knows
 *    (retired by a crash, decommissioned) LEFT; a decommissioned node sees itself LEFT;
 *  - after quiesce, every live node knows the stable cut of every scope it holds, and every
 *    live replica's context covers it;
 *  - no operation is lost: every operation whose origin synced after it (acknowledged), and
 *    every one its origin never lost in a crash, has its dot in the final context, and joining
 *    the acknowledged deltas into the final state changes nothing (final ⊒ each of them);
 *  - the final state is exactly the join of the deltas of the operations that survived, and
 *    the final context holds no dot that no operation issued;
 *  - per type, against the causal pasts recorded at each operation (as tests/support/world.c):
 *    a set element is present iff some surviving add of it was seen by no surviving remove,
 *    add of it or forget of its key (so no removed element comes back and no add is lost);
 *    a register's siblings, a log's entries and a counter's value are what the history says;
 *  - log order follows cause and effect: an append is listed after every entry its node held
 *    when it appended, whatever the clocks' skew (this fails without HLC observation).
 *
 *  Ownership: sim_new returns a simulation the caller destroys with sim_destroy; it owns the
 *  engines, stores, in-flight messages and the operation history. Single-threaded.
 */
#ifndef ENGRAM_TEST_SIM_H
#define ENGRAM_TEST_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crdt/ctx.h"
#include "gossip/engine.h"

#define SIM_MAX_SCOPES 6

typedef struct {
    int nodes;                /* 2 or more */
    int scopes;               /* shared scopes, 1..SIM_MAX_SCOPES */
    bool lazy_scopes;         /* nodes start holding no scope: created by a write or a pull */
    unsigned fanout;          /* gossip_config_t */
    size_t max_message_bytes; /* gossip_config_t */
    bool restart_same_seed;   /* a restarted engine gets its old gossip_config_t.seed again */
    bool rounds;              /* round mode (sim_round): no ticks of its own, no delay, a
                                 static full membership */
    bool decommission;        /* one node is decommissioned during the fault phase */

    uint64_t fault_ms;      /* length of the fault phase */
    uint64_t quiesce_ms;    /* bound on heal + quiesce */
    uint64_t tick_ms;       /* mean tick interval per node, jittered by ±25% */
    uint64_t op_every_ms;   /* mean gap between two operations in the whole cluster */
    uint64_t sync_every_ms; /* mean gap between two sync points of a node */
    int nkeys;              /* keys per type */
    size_t value_max;       /* register, log and set-add values take 8..value_max bytes */

    unsigned loss_permille; /* per message, in the fault phase */
    unsigned dup_permille;
    uint64_t delay_max_ms;  /* delay uniform in [1, delay_max_ms] ... */
    unsigned tail_permille; /* ... or, this often, up to 20 times longer */

    uint64_t partition_every_ms; /* mean gap between partitions; 0: none */
    uint64_t partition_max_ms;   /* a partition lasts 1 s .. this */
    uint64_t crash_every_ms;     /* mean gap between crashes; 0: none */
    uint64_t down_max_ms;        /* a crashed node stays down 0.2 s .. this */
    unsigned lossy_crash_pct;    /* share of crashes that lose unsynced state */
    int64_t skew_max_ms;         /* per-node clock offset in [-skew, +skew] */
    bool clocks_blind;           /* deliberate defect, for the checks' own test: a node's clock
                                    does not observe the stamps it is handed (and refuses none) */
} sim_config_t;

/*  Counters of one or more runs. */
typedef struct {
    uint64_t runs, nodes;
    uint64_t sim_ms, fault_ms;
    uint64_t ops, ops_acked, ops_lost, ops_lost_survived, ops_refused;
    uint64_t clock_refusals;    /* deltas refused: a stamp past the drift allowed */
    uint64_t causal_inversions; /* appends listed before an entry their node held */
    uint64_t msgs_sent, msgs_lost, msgs_dup, msgs_partitioned, msgs_undeliverable;
    uint64_t msgs_delivered, bytes_sent, msg_max_bytes;
    uint64_t msgs_over_budget; /* longer than config.max_message_bytes */
    uint64_t partitions, crashes, crashes_lossy, syncs, applies;
    uint64_t converge_ms_sum, converge_ms_max;
    uint64_t violations;
    /* Membership, as the engines' changed() hooks reported it. */
    uint64_t suspicions_false;     /* a node up (and not retired) suspected (once per
                                      incarnation, however many nodes suspect it) */
    uint64_t suspicions_false_cut; /* ... of which first by a node across a partition */
    uint64_t deaths_false;         /* a node up declared DEAD (once per incarnation) */
    uint64_t deaths_detected;      /* crashes that some node declared DEAD while it was down */
    uint64_t detect_ms_sum, detect_ms_max; /* crash to first DEAD */
    uint64_t decommissions, cuts_checked;
    gossip_stats_t engine; /* summed over every engine, crashed ones included */
} sim_stats_t;

typedef struct sim sim_t;

/*  The fault profile of the CI runs, drawn from seed: 5 to 20 nodes, 1 to 4 scopes, loss up
 *  to 20%, duplication up to 10%, partitions, crashes with and without loss, skew. */
void sim_config_random(sim_config_t *config, uint64_t seed);
/*  A quiet network: no fault, no delay, for round-based measurements. */
void sim_config_quiet(sim_config_t *config, int nodes);

/*  A new simulation of config, every choice drawn from seed. Caller owns. */
sim_t *sim_new(const sim_config_t *config, uint64_t seed);
void sim_destroy(sim_t **self_p);

/*  The fault phase: operations, ticks and faults for config->fault_ms simulated ms. */
void sim_fault_phase(sim_t *self);
/*  Heal and quiesce: true once every replica agrees (after *took_ms simulated ms), false if the
 *  bound passed first. */
bool sim_quiesce(sim_t *self, uint64_t *took_ms);
/*  Every end-of-run check (see above); returns the number of violations found, each printed
 *  with the seed. */
int sim_check(sim_t *self);
/*  One whole run: fault phase, heal, quiesce, checks. Returns the number of violations
 *  (non-convergence counts as one). */
int sim_run(sim_t *self);

/*  Round-based use (config from sim_config_quiet): a register write at node in scope, its
 *  pushes delivered; *dot is the dot it took. */
void sim_write(sim_t *self, int node, int scope, crdt_dot_t *dot);
/*  One round: every live node ticks once, in random order, then every message is delivered
 *  (answers included) until none is left. */
void sim_round(sim_t *self);
/*  How many nodes hold dot in scope. */
int sim_holders(const sim_t *self, int scope, crdt_dot_t dot);

/*  Violations found so far (also counted by the per-apply checks). */
int sim_violations(const sim_t *self);
/*  Simulated ms since the start. */
uint64_t sim_now(const sim_t *self);
/*  A hash of everything delivered and of the final digests: equal for equal runs. */
uint64_t sim_trace(const sim_t *self);
/*  Bytes of the contexts a node's digest would carry now (node 0, every scope encoded). */
size_t sim_digest_bytes(const sim_t *self);
/*  Adds this run's counters (engines still alive included) to *total. */
void sim_stats_add(const sim_t *self, sim_stats_t *total);
/*  Prints the summed counters of total on stdout, one paragraph. */
void sim_stats_print(const char *title, const sim_stats_t *total, double wall_s);

#endif
