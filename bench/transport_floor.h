/*  The transport floor (transport_floor.c): the cost of one request over ZeroMQ DEALER/ROUTER
 *  on ipc://, with and without CURVE, when the server does nothing but answer. What engramd
 *  and libengram spend beyond it is theirs; what they cannot go below is this. */
#ifndef BENCH_TRANSPORT_FLOOR_H
#define BENCH_TRANSPORT_FLOOR_H

#include <stddef.h>

/*  Prints a table: for CURVE then plain, each client count, `duration` seconds per cell, the
 *  server's socket in dir. Returns the number of cells whose calls failed. */
int transport_floor_print(const char *dir, const unsigned *clients, size_t nclients,
                          double duration);

/*  The floor's server (engram-node-bench --floor-server ENDPOINT CERT): a ROUTER bound to
 *  endpoint, CURVE with the certificate saved at CERT ("-": plain), answering until stopped.
 *  Returns the process's exit status. */
int transport_floor_serve(const char *endpoint, const char *cert_path);

#endif
