/*  The floors (transport_floor.c): the cost of one request over ZeroMQ DEALER/ROUTER on ipc://,
 *  with and without CURVE, when the server does nothing but answer; of one put when the server
 *  does nothing but answer and write an engramd put's RocksDB keys, synced or not; and of one
 *  put held by three replicas when three such servers do nothing else. What engramd and
 *  libengram spend beyond them is theirs; what they cannot go below is this. */
#ifndef BENCH_TRANSPORT_FLOOR_H
#define BENCH_TRANSPORT_FLOOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*  One floor cell's figures. */
typedef struct {
    double ops_s;
    uint64_t p50, p99;              /* ns */
    double cpu_server, cpu_clients; /* % of one core: the servers summed, this process */
    int errors;
} floor_result_t;

/*  Prints the transport floor's table: for CURVE then plain, each client count, `duration`
 *  seconds per cell, the server's socket in dir. Unless redis_put is NULL, then the put floor's
 *  (sync, then async; its stores in dir too), each cell beside redis_put[0] (sync) or [1]
 *  (async), [mode][i] Redis's put ops/s at clients[i] in this run (a NULL mode or 0: not
 *  run). Returns the number of cells whose calls failed. */
int transport_floor_print(const char *dir, const unsigned *clients, size_t nclients,
                          double duration, const double *redis_put[2]);

/*  The replication floor: the least a write held by three replicas costs with engram's
 *  transport, storage layout and rule that data leaves a node only once it is durable there
 *  (so the primary's fsync and its backups' run in series). Three servers (children): a
 *  primary on an ipc:// endpoint and two backups on loopback TCP, CURVE everywhere. The primary
 *  stores a turn of its clients' puts as the put floor does (four keys each, one batch a turn,
 *  fsynced), then pushes the turn to both backups in one message each (480 bytes a put: about
 *  engramd's delta of such a put); a backup stores and fsyncs each turn of pushes it read the
 *  same way and acknowledges each; the primary answers a turn's clients once both backups
 *  acknowledged it, and does not wait for that before its next turn. `clients` client threads
 *  as in the other floors, for `duration` seconds; its stores and sockets in dir. False if
 *  calls failed. */
bool transport_floor_replicated(const char *dir, unsigned clients, double duration,
                                floor_result_t *out);

/*  The lag floor, for engram-cluster-bench's lag cells: the least the replication lag from a
 *  write on A to an event on B can be with engram's transport, storage layout and durability
 *  rules: a write is answered, and leaves its node, only once fsynced there; a replica may
 *  show what it applied (events, reads) before its fsync, which comes at its tick. Three
 *  servers (children), CURVE everywhere: a primary on an ipc:// endpoint stores a turn of its
 *  writers' puts as the put floor does (four keys each, one batch a turn), and once the turn
 *  is fsynced answers it, then pushes it to two backups on loopback TCP (one message each,
 *  PUSH_RECORD_BYTES a put), awaiting nothing. Its loop fsyncs each turn before the next, as
 *  engramd does, or with fsync_thread a thread of its own fsyncs while the loop goes on with
 *  the next turns. A backup stores a turn of pushes the same way and writes it out, then
 *  sends every subscriber one FLOOR_EVENT_BYTES event a put; it fsyncs every 50 ms (engramd's
 *  gossip tick, when a replica acknowledges; the floor's backups acknowledge nothing). A
 *  writer's request is FLOOR_REQUEST_BYTES, its first FLOOR_SEQ_BYTES its sequence number,
 *  answered with FLOOR_REPLY_BYTES; a subscriber is a DEALER on `subscribe` that sends
 *  FLOOR_SUBSCRIBE once and gets it back, then receives events whose first FLOOR_SEQ_BYTES
 *  are the sequence numbers of the puts they carry. */
#define FLOOR_REQUEST_BYTES 320 /* about a put's Request of a 256-byte value */
#define FLOOR_REPLY_BYTES   96  /* about a put's reply, its causal token */
#define FLOOR_EVENT_BYTES   320 /* the value and its key, less than an engramd event */
#define FLOOR_SEQ_BYTES     8
#define FLOOR_SUBSCRIBE     "sub"
typedef struct {
    pid_t pids[3];       /* primary, backup B (the subscribers'), backup C */
    char primary[300];   /* the writers' endpoint */
    char subscribe[300]; /* backup B's */
    char cert_path[300]; /* the servers' certificate (zcert_load): its public key is theirs */
} floor_lag_t;

/*  Starts a lag floor, its stores and sockets in dir; false if it cannot. */
bool transport_floor_lag_start(const char *dir, bool fsync_thread, floor_lag_t *out);
void transport_floor_lag_stop(floor_lag_t *floor);

/*  A floor's server (engram-node-bench --floor-server ENDPOINT CERT REPLY_BYTES STORE [DIR],
 *  given the arguments after --floor-server): a ROUTER bound to ENDPOINT, CURVE with the
 *  certificate saved at CERT ("-": plain), answering every request with REPLY_BYTES bytes until
 *  stopped; STORE "sync" or "async" writes each request as a put in a RocksDB store at DIR
 *  ("sync-turn", "async-turn": a turn's puts in one batch), "none" nothing; "backup" and
 *  "primary" [DIR BACKUP BACKUP] are transport_floor_replicated's, "lag-backup",
 *  "lag-primary" and "lag-primary-fsync-thread" the lag floor's. Returns the process's exit
 *  status. */
int transport_floor_serve(int argc, char **argv);

#endif
