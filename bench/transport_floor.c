/*  The transport floor of engram-node-bench (transport_floor.h): what a request costs when the
 *  server does nothing but answer, over the transport libengram and engramd use.
 *
 *  The server is this program run again (`--floor-server`: its CPU is measured apart, and a
 *  fork of a process whose ZeroMQ context runs threads could not use ZeroMQ): one ROUTER on an
 *  ipc:// endpoint, CURVE server or plain, answering every message with a 300-byte frame (about
 *  a get's reply of a 256-byte value). Each client is a thread with its own DEALER, CURVE
 *  client or plain, doing what libengram does for one call: zframe_send of a 64-byte request
 *  (about a get's Request), zpoller_wait, zmsg_recv. One request in flight per client, no
 *  pipelining, as the node tables.
 */
#include "transport_floor.h"

#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"

#define REQUEST_BYTES 64
#define REPLY_BYTES   300

typedef struct {
    const char *endpoint;
    zcert_t *server_cert; /* NULL: plain */
    atomic_bool *stop;
    pthread_barrier_t *ready;
    uint64_t *lat; /* owned: one latency per call */
    size_t n, cap;
    double t_end;
    int errors;
} s_client_t;

int transport_floor_serve(const char *endpoint, const char *cert_path)
{
    zcert_t *cert = strcmp(cert_path, "-") ? zcert_load(cert_path) : NULL;
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    if (!router || (strcmp(cert_path, "-") && !cert))
        return 2;
    if (cert) {
        zcert_apply(cert, router);
        zsock_set_curve_server(router, 1);
    }
    if (zsock_bind(router, "%s", endpoint) < 0)
        return 2;
    uint8_t reply[REPLY_BYTES];
    memset(reply, 'r', sizeof reply);
    while (!zsys_interrupted) {
        zmsg_t *msg = zmsg_recv(router);
        if (!msg)
            break;
        zframe_t *identity = zmsg_pop(msg);
        zmsg_destroy(&msg);
        zmsg_t *out = zmsg_new();
        zmsg_append(out, &identity);
        zmsg_addmem(out, reply, sizeof reply);
        zmsg_send(&out, router);
    }
    zsock_destroy(&router);
    zcert_destroy(&cert);
    return 0;
}

static void *s_client_run(void *arg)
{
    s_client_t *c = arg;
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    zcert_t *mine = c->server_cert ? zcert_new() : NULL;
    if (dealer && mine) {
        zcert_apply(mine, dealer);
        zsock_set_curve_serverkey_bin(dealer, zcert_public_key(c->server_cert));
    }
    zpoller_t *poller = dealer ? zpoller_new(dealer, NULL) : NULL;
    if (!poller || zsock_connect(dealer, "%s", c->endpoint) < 0)
        c->errors++;
    uint8_t request[REQUEST_BYTES];
    memset(request, 'q', sizeof request);
    bool first = true;
    while (c->errors == 0 && (first || !atomic_load(c->stop))) {
        uint64_t t0 = bench_now_ns();
        zframe_t *frame = zframe_new(request, sizeof request);
        zmsg_t *reply = NULL;
        if (zframe_send(&frame, dealer, 0) == 0 && zpoller_wait(poller, 5000))
            reply = zmsg_recv(dealer);
        if (!reply || zframe_size(zmsg_last(reply)) != REPLY_BYTES) {
            zframe_destroy(&frame);
            c->errors++;
        } else if (first) { /* the connection is up: the measured window may start */
            first = false;
            pthread_barrier_wait(c->ready);
        } else {
            if (c->n == c->cap) {
                c->cap = c->cap ? 2 * c->cap : 4096;
                uint64_t *grown = realloc(c->lat, c->cap * sizeof *grown);
                if (!grown) {
                    c->errors++;
                    zmsg_destroy(&reply);
                    break;
                }
                c->lat = grown;
            }
            c->lat[c->n++] = bench_now_ns() - t0;
        }
        zmsg_destroy(&reply);
    }
    if (first) /* never connected: the others must not wait for it */
        pthread_barrier_wait(c->ready);
    c->t_end = bench_now();
    zpoller_destroy(&poller);
    zsock_destroy(&dealer);
    zcert_destroy(&mine);
    return NULL;
}

/*  One cell: `clients` threads against a fresh server for `duration` seconds; its row into
 *  row. Returns false if calls failed or none completed. */
static bool s_cell(const char *dir, bool curve, unsigned clients, double duration, char *row,
                   size_t size)
{
    char endpoint[300];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/floor-%s-%u.sock", dir, curve ? "curve" : "plain",
             clients);
    char cert_path[300] = "-", log[300];
    zcert_t *cert = curve ? zcert_new() : NULL;
    if (cert)
        snprintf(cert_path, sizeof cert_path, "%s/floor-%u.cert", dir, clients);
    snprintf(log, sizeof log, "%s/floor.log", dir);
    char *argv[] = {"/proc/self/exe", "--floor-server", endpoint, cert_path, NULL};
    pid_t server = cert && zcert_save(cert, cert_path) != 0 ? -1 : bench_spawn(argv, log);
    atomic_bool stop = false;
    pthread_barrier_t ready;
    pthread_barrier_init(&ready, NULL, clients + 1);
    s_client_t *cs = calloc(clients, sizeof *cs);
    pthread_t *threads = calloc(clients, sizeof *threads);
    if (server < 0 || !cs || !threads)
        BENCH_DIE("the transport floor cannot start: %s", strerror(errno));
    for (unsigned t = 0; t < clients; t++) {
        cs[t] =
            (s_client_t){.endpoint = endpoint, .server_cert = cert, .stop = &stop, .ready = &ready};
        if (pthread_create(&threads[t], NULL, s_client_run, &cs[t]) != 0)
            BENCH_DIE("pthread_create: %s", strerror(errno));
    }
    pthread_barrier_wait(&ready);
    double cpu0 = bench_cpu_seconds(server), self0 = bench_self_cpu_seconds();
    double t0 = bench_now();
    bench_sleep(duration);
    atomic_store(&stop, true);
    size_t total = 0;
    int errors = 0;
    double t_end = t0;
    for (unsigned t = 0; t < clients; t++) {
        pthread_join(threads[t], NULL);
        total += cs[t].n;
        errors += cs[t].errors;
        t_end = cs[t].t_end > t_end ? cs[t].t_end : t_end;
    }
    double cpu1 = bench_cpu_seconds(server), self1 = bench_self_cpu_seconds();
    bench_stop(server);
    uint64_t *all = malloc((total ? total : 1) * sizeof *all);
    size_t at = 0;
    for (unsigned t = 0; t < clients; t++) {
        if (all)
            memcpy(all + at, cs[t].lat, cs[t].n * sizeof *all);
        at += cs[t].n;
        free(cs[t].lat);
    }
    double wall = t_end - t0;
    bool ok = all && total && !errors;
    if (!ok) {
        snprintf(row, size, "failed (%d errors)", errors);
    } else {
        qsort(all, total, sizeof *all, bench_cmp_u64);
        char ops[16], p50[16], p99[16];
        double per = 1e6 / ((double)total / wall); /* us of wall per call */
        snprintf(row, size, "%8s %8s %8s %7.0f+%-4.0f %6.1f+%-5.1f",
                 bench_si(ops, sizeof ops, (double)total / wall),
                 bench_lat(p50, sizeof p50, bench_percentile(all, total, 0.5)),
                 bench_lat(p99, sizeof p99, bench_percentile(all, total, 0.99)),
                 100.0 * (cpu1 - cpu0) / wall, 100.0 * (self1 - self0) / wall,
                 per * (cpu1 - cpu0) / wall, per * (self1 - self0) / wall);
    }
    free(all);
    free(cs);
    free(threads);
    pthread_barrier_destroy(&ready);
    zcert_destroy(&cert);
    return ok;
}

int transport_floor_print(const char *dir, const unsigned *clients, size_t nclients,
                          double duration)
{
    printf("\ntransport floor: a ROUTER that only answers (a child process), one DEALER per client "
           "thread,\n  %d-byte request, %d-byte reply, ipc://, one call in flight per client, as "
           "libengram makes one\n  cpu s+c: server + clients, 100 = one core; us/op s+c: CPU "
           "microseconds per call, server + clients\n",
           REQUEST_BYTES, REPLY_BYTES);
    printf("transport         clients    ops/s      p50      p99  cpu s+c   us/op s+c\n");
    int failures = 0;
    for (int curve = 1; curve >= 0; curve--) {
        for (size_t c = 0; c < nclients && !bench_interrupted; c++) {
            char row[160];
            failures += !s_cell(dir, curve, clients[c], duration, row, sizeof row);
            printf("%-17s %7u %s\n", curve ? "zmq + CURVE" : "zmq, plain", clients[c], row);
            fflush(stdout);
        }
    }
    return failures;
}
