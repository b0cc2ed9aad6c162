/*  The floors (transport_floor.c): the cost of one request over ZeroMQ DEALER/ROUTER on ipc://,
 *  with and without CURVE, when the server does nothing but answer; and of one put when the
 *  server does nothing but answer and write an engramd put's RocksDB keys, synced or not. What
 *  engramd and libengram spend beyond them is theirs; what they cannot go below is this. */
#ifndef BENCH_TRANSPORT_FLOOR_H
#define BENCH_TRANSPORT_FLOOR_H

#include <stddef.h>

/*  Prints the transport floor's table: for CURVE then plain, each client count, `duration`
 *  seconds per cell, the server's socket in dir. Unless redis_put is NULL, then the put floor's
 *  (sync, then async; its stores in dir too), each cell beside redis_put[0] (sync) or [1]
 *  (async), [mode][i] Redis's put ops/s at clients[i] in this run (a NULL mode or 0: not
 *  run). Returns the number of cells whose calls failed. */
int transport_floor_print(const char *dir, const unsigned *clients, size_t nclients,
                          double duration, const double *redis_put[2]);

/*  A floor's server (engram-node-bench --floor-server ENDPOINT CERT REPLY_BYTES STORE [DIR],
 *  given the arguments after --floor-server): a ROUTER bound to ENDPOINT, CURVE with the
 *  certificate saved at CERT ("-": plain), answering every request with REPLY_BYTES bytes until
 *  stopped; STORE "sync" or "async" writes each request as a put in a RocksDB store at DIR
 *  ("sync-turn", "async-turn": a turn's puts in one batch), "none" nothing. Returns the
 *  process's exit status. */
int transport_floor_serve(int argc, char **argv);

#endif
