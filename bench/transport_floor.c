/*  The floors of engram-node-bench and engram-cluster-bench (transport_floor.h): what a
 *  request costs when the server does nothing but answer, over the transport libengram and
 *  engramd use; what a put costs when the server does nothing but answer and store it as
 *  engramd's storage layout does; and what a put held by three replicas costs when three such
 *  servers do nothing else.
 *
 *  Each server is this program run again (`--floor-server`: its CPU is measured apart, and a
 *  fork of a process whose ZeroMQ context runs threads could not use ZeroMQ): a ROUTER, CURVE
 *  server or plain, on an ipc:// endpoint (a backup of the replication floor: loopback TCP),
 *  its log in dir/floor-N.log. Each client is a thread with its own DEALER, CURVE client or
 *  plain, doing what libengram does for one call: zframe_send of the request, zpoller_wait,
 *  zmsg_recv. One request in flight per client, no pipelining, as the node tables.
 *
 *  The transport floor: 64-byte requests (about a get's Request) answered with 300-byte frames
 *  (about a get's reply of a 256-byte value), in turns as below (before 2026-12-05 one request
 *  at a time; the figures moved within their noise).
 *
 *  The put floor: 320-byte requests (about a put's Request of a 256-byte value) answered with
 *  96-byte frames (about a put's reply, its causal token). The server works in turns as engramd
 *  does: it takes the requests that are ready, at most ENGRAM_DEFAULT_MAX_BATCH (engramd's
 *  turn; larger turns made engramd slower, see README); puts into a WriteBatch the four keys an
 *  engramd put of the bench's value writes, with their sizes (an entry, an op record, a history
 *  step, the scope's context; measured on engramd's store, see s_put_keys), and writes it: one
 *  rocksdb_write a put as engramd, or one a turn (the "turn" rows, which engramd's reads of
 *  the turn's earlier writes would not allow without a WriteBatchWithIndex); then writes the
 *  WAL to the file and, for sync, fsyncs it (RocksDB with manual_wal_flush, as engramd); then
 *  answers the turn. RocksDB's options are its defaults otherwise. The faster of the two (they
 *  are within each other's noise) is the least a put costs with engram's transport, storage
 *  layout and turns, whatever the code around them.
 *
 *  The replication floor: transport_floor_replicated (transport_floor.h). Its primary and
 *  backups store as the put floor's "turn" rows, fsynced.
 *
 *  The lag floor: transport_floor_lag_start (transport_floor.h), for engram-cluster-bench's
 *  lag cells. Its primary stores as the put floor's "turn" rows and fsyncs each turn (in its
 *  loop, or on a thread of its own) before answering and pushing it; its backups write each
 *  turn of pushes out and send their subscribers its events before fsyncing, at a tick, as
 *  engramd replicas do.
 */
#include "transport_floor.h"

#include "bench_util.h"

#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engram/limits.h"

#include "bench_util.h"

/*  What a floor's server does with a request besides answering it. */
typedef enum {
    STORE_NONE,
    STORE_SYNC,
    STORE_ASYNC,
    STORE_SYNC_TURN,
    STORE_ASYNC_TURN,
    STORE_BACKUP,                   /* the replication floor's: sync, a turn's puts in one batch */
    STORE_PRIMARY,                  /* the same */
    STORE_LAG_BACKUP,               /* the lag floor's: the same */
    STORE_LAG_PRIMARY,              /* the same */
    STORE_LAG_PRIMARY_FSYNC_THREAD, /* the same, fsynced by a thread of its own */
    STORE_COUNT
} s_store_t;

/*  A kind of floor: what the clients send and get back, and what the server does between. */
typedef struct {
    const char *name;
    size_t request_bytes, reply_bytes;
    s_store_t store;
} s_kind_t;

static const char *const s_store_names[STORE_COUNT] = {
    "none",   "sync",    "async",      "sync-turn",   "async-turn",
    "backup", "primary", "lag-backup", "lag-primary", "lag-primary-fsync-thread"};

typedef struct {
    const char *endpoint;
    const s_kind_t *kind;
    zcert_t *server_cert; /* NULL: plain */
    atomic_bool *stop;
    pthread_barrier_t *ready;
    uint64_t *lat; /* owned: one latency per call */
    size_t n, cap;
    double t_end;
    int errors;
} s_client_t;

/*  The keys an engramd put of the bench's value (256 bytes, one word, scope run:bench) writes,
 *  with their sizes: measured by listing an engramd store after such puts (key bytes -> value
 *  bytes). The history step holds the value again, the entry its record. */
static const struct {
    const char *family;
    size_t key_bytes, value_bytes;
} s_put_keys[] = {
    {"entries", 37, 323},
    {"ops", 26, 25},
    {"history", 44, 347},
    {"meta", 13, 18},
};
#define PUT_KEYS (sizeof s_put_keys / sizeof s_put_keys[0])

/*  What the replication floor's primary pushes a backup per put: about an engramd push of one
 *  put of the bench's value (the delta, 285 bytes with a 64-byte value; README, "bytes"). */
#define PUSH_RECORD_BYTES 480

/*  The put floor's store: the four families and a key counter, so that every put writes new
 *  keys as the bench's random keys mostly do. A store that writes by turn gathers the turn's
 *  puts in one WriteBatch, written at the turn's end. */
typedef struct {
    rocksdb_options_t *options;
    rocksdb_writeoptions_t *write_options;
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf[PUT_KEYS + 1]; /* [0]: default */
    rocksdb_writebatch_t *batch;
    uint64_t next_key;
    char key[64]; /* the next key: the counter, then padding */
    char value[512];
    bool sync, by_turn;
} s_store_db_t;

static void s_store_close(s_store_db_t *st)
{
    for (size_t i = 0; i <= PUT_KEYS; i++)
        if (st->cf[i])
            rocksdb_column_family_handle_destroy(st->cf[i]);
    if (st->db)
        rocksdb_close(st->db);
    if (st->write_options)
        rocksdb_writeoptions_destroy(st->write_options);
    if (st->batch)
        rocksdb_writebatch_destroy(st->batch);
    if (st->options)
        rocksdb_options_destroy(st->options);
}

static bool s_store_open(s_store_db_t *st, const char *dir, s_store_t mode)
{
    *st = (s_store_db_t){.sync = mode != STORE_ASYNC && mode != STORE_ASYNC_TURN,
                         .by_turn = mode != STORE_SYNC && mode != STORE_ASYNC};
    st->batch = rocksdb_writebatch_create();
    memset(st->key, 'k', sizeof st->key);
    memset(st->value, 'v', sizeof st->value);
    st->options = rocksdb_options_create();
    st->write_options = rocksdb_writeoptions_create();
    rocksdb_options_set_create_if_missing(st->options, 1);
    rocksdb_options_set_create_missing_column_families(st->options, 1);
    rocksdb_options_set_manual_wal_flush(st->options, 1);
    rocksdb_options_set_info_log_level(st->options, BENCH_ROCKSDB_INFO_LEVEL);
    const char *names[PUT_KEYS + 1] = {"default"};
    const rocksdb_options_t *cf_options[PUT_KEYS + 1] = {st->options};
    for (size_t i = 0; i < PUT_KEYS; i++) {
        names[i + 1] = s_put_keys[i].family;
        cf_options[i + 1] = st->options;
    }
    char *err = NULL;
    st->db = rocksdb_open_column_families(st->options, dir, PUT_KEYS + 1, names, cf_options, st->cf,
                                          &err);
    if (err) {
        fprintf(stderr, "floor: cannot open %s: %s\n", dir, err);
        free(err);
        st->db = NULL;
        s_store_close(st);
        return false;
    }
    return true;
}

static bool s_store_write(s_store_db_t *st)
{
    char *err = NULL;
    rocksdb_write(st->db, st->write_options, st->batch, &err);
    rocksdb_writebatch_clear(st->batch);
    bool ok = !err;
    free(err);
    return ok;
}

/*  One request: the put's four keys into the batch; written now (one rocksdb_write a put, as
 *  engramd) unless the store writes by turn. */
static bool s_store_put(s_store_db_t *st)
{
    uint64_t n = st->next_key++;
    memcpy(st->key, &n, sizeof n);
    for (size_t i = 0; i < PUT_KEYS; i++)
        rocksdb_writebatch_put_cf(st->batch, st->cf[i + 1], st->key, s_put_keys[i].key_bytes,
                                  st->value, s_put_keys[i].value_bytes);
    return st->by_turn || s_store_write(st);
}

/*  The WAL to the file, and to the disk if sync; false if RocksDB refused. */
static bool s_store_flush_wal(s_store_db_t *st, bool sync)
{
    char *err = NULL;
    rocksdb_flush_wal(st->db, sync, &err);
    bool ok = !err;
    free(err);
    return ok;
}

/*  The end of a turn: a store that writes by turn writes the turn's batch; then the WAL goes to
 *  the file, and for sync to the disk. */
static bool s_store_turn_end(s_store_db_t *st)
{
    if (st->by_turn && !s_store_write(st))
        return false;
    return s_store_flush_wal(st, st->sync);
}

/*  A backup's bound endpoint, for the primary: "tcp://127.0.0.1:*" with the port taken, written
 *  to dir/endpoint (renamed into place, so a reader sees it whole). */
static bool s_endpoint_publish(const char *dir, const char *endpoint, int port)
{
    char path[400], tmp[410];
    snprintf(path, sizeof path, "%s/endpoint", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    const char *star = strrchr(endpoint, '*');
    FILE *f = star ? fopen(tmp, "w") : NULL;
    if (!f)
        return false;
    bool ok = fprintf(f, "%.*s%d", (int)(star - endpoint), endpoint, port) > 0;
    ok = fclose(f) == 0 && ok;
    return ok && rename(tmp, path) == 0;
}

/*  Reads a turn from router: at most max requests, the first awaited (up to the socket's
 *  receive timeout), the others only if ready. Each one's identity into who[], the rest of it
 *  into bodies[] unless bodies is NULL. Returns how many. */
static size_t s_turn_read(zsock_t *router, zframe_t **who, zmsg_t **bodies, size_t max)
{
    size_t n = 0;
    while (n < max && (n == 0 || (zsock_events(router) & ZMQ_POLLIN))) {
        zmsg_t *msg = zmsg_recv(router);
        if (!msg)
            break;
        who[n] = zmsg_pop(msg);
        if (bodies)
            bodies[n] = msg;
        else
            zmsg_destroy(&msg);
        n++;
    }
    return n;
}

/*  Sends each of who[0..n) (taking them) a reply of bytes, from reply; n of them. */
static void s_turn_answer(zsock_t *router, zframe_t **who, size_t n, const void *reply,
                          size_t bytes)
{
    for (size_t i = 0; i < n; i++) {
        zmsg_t *out = zmsg_new();
        zmsg_append(out, &who[i]);
        zmsg_addmem(out, reply, bytes);
        zmsg_send(&out, router);
    }
}

/*  The transport and put floors' server: a turn read, stored if it stores, answered. */
static int s_serve_answer(zsock_t *router, s_store_db_t *st, const uint8_t *reply,
                          size_t reply_bytes)
{
    zframe_t *who[ENGRAM_DEFAULT_MAX_BATCH];
    int rc = 0;
    while (!zsys_interrupted && rc == 0) {
        size_t n = s_turn_read(router, who, NULL, ENGRAM_DEFAULT_MAX_BATCH);
        if (n == 0) /* timed out or interrupted: the loop's condition decides */
            continue;
        for (size_t i = 0; i < n && st && rc == 0; i++)
            rc = !s_store_put(st);
        if (st && rc == 0)
            rc = !s_store_turn_end(st);
        /* a short reply on failure: the client counts it */
        s_turn_answer(router, who, n, reply, rc == 0 ? reply_bytes : 1);
    }
    return rc;
}

/*  The replication floor's backup: each request is a primary's push, [turn id][its puts'
 *  records], stored; a turn's pushes synced together, then each acknowledged with its id. */
static int s_serve_backup(zsock_t *router, s_store_db_t *st)
{
    zframe_t *who[ENGRAM_DEFAULT_MAX_BATCH];
    zmsg_t *bodies[ENGRAM_DEFAULT_MAX_BATCH];
    int rc = 0;
    while (!zsys_interrupted && rc == 0) {
        size_t n = s_turn_read(router, who, bodies, ENGRAM_DEFAULT_MAX_BATCH);
        uint64_t ids[ENGRAM_DEFAULT_MAX_BATCH];
        for (size_t i = 0; i < n; i++) {
            zframe_t *id = zmsg_first(bodies[i]), *records = zmsg_next(bodies[i]);
            if (!id || zframe_size(id) != sizeof ids[i] || !records)
                rc = 1;
            else
                memcpy(&ids[i], zframe_data(id), sizeof ids[i]);
            for (size_t k = 0; rc == 0 && k < zframe_size(records) / PUSH_RECORD_BYTES; k++)
                rc = !s_store_put(st);
            zmsg_destroy(&bodies[i]);
        }
        if (n == 0)
            continue;
        if (rc == 0)
            rc = !s_store_turn_end(st);
        for (size_t i = 0; i < n && rc == 0; i++) {
            zmsg_t *ack = zmsg_new();
            zmsg_append(ack, &who[i]);
            zmsg_addmem(ack, &ids[i], sizeof ids[i]);
            zmsg_send(&ack, router);
        }
        for (size_t i = 0; i < n; i++)
            zframe_destroy(&who[i]);
    }
    return rc;
}

/*  A primary's two DEALERs, connected to its backups with CURVE (a certificate of its own,
 *  into *mine; the backups' server key is cert's). 0, or 1 if one cannot be made. */
static int s_backups_connect(zsock_t *dealer[2], zcert_t **mine, zcert_t *cert, char **backups)
{
    dealer[0] = zsock_new(ZMQ_DEALER);
    dealer[1] = zsock_new(ZMQ_DEALER);
    *mine = zcert_new();
    int rc = dealer[0] && dealer[1] && *mine ? 0 : 1;
    for (int b = 0; b < 2 && rc == 0; b++) {
        zcert_apply(*mine, dealer[b]);
        zsock_set_curve_serverkey_bin(dealer[b], zcert_public_key(cert));
        rc = zsock_connect(dealer[b], "%s", backups[b]) < 0;
    }
    return rc;
}

static void s_backups_disconnect(zsock_t *dealer[2], zcert_t **mine)
{
    zsock_destroy(&dealer[0]);
    zsock_destroy(&dealer[1]);
    zcert_destroy(mine);
}

/*  Pushes a turn's records to both backups, one message each, led by its id unless NULL. */
static void s_push_both(zsock_t *dealer[2], const uint64_t *id, const uint8_t *records,
                        size_t bytes)
{
    zmsg_t *push = zmsg_new();
    if (id)
        zmsg_addmem(push, id, sizeof *id);
    zmsg_addmem(push, records, bytes);
    zmsg_t *copy = zmsg_dup(push);
    zmsg_send(&push, dealer[0]);
    zmsg_send(&copy, dealer[1]);
}

/*  A turn of the replication floor's primary, awaiting its backups' acknowledgements. */
typedef struct {
    uint64_t id;
    size_t n;
    zframe_t *who[ENGRAM_DEFAULT_MAX_BATCH];
} s_turn_t;

/*  The replication floor's primary: a turn of clients' puts stored and synced, pushed to both
 *  backups (one message each), and answered once both acknowledged it. */
static int s_serve_primary(zsock_t *router, s_store_db_t *st, const uint8_t *reply,
                           size_t reply_bytes, zcert_t *cert, char **backups)
{
    static uint8_t records[ENGRAM_DEFAULT_MAX_BATCH * PUSH_RECORD_BYTES];
    memset(records, 'd', sizeof records);
    zsock_t *dealer[2];
    zcert_t *mine = NULL;
    zlist_t *pending = zlist_new();
    int rc = s_backups_connect(dealer, &mine, cert, backups);
    zpoller_t *poller = rc == 0 && pending ? zpoller_new(router, dealer[0], dealer[1], NULL) : NULL;
    rc = poller ? rc : 1;
    uint64_t next_id = 1, acked[2] = {0, 0};
    while (!zsys_interrupted && rc == 0) {
        if (zpoller_wait(poller, 100) == router) {
            s_turn_t *t = calloc(1, sizeof *t);
            if (!t || zlist_append(pending, t) != 0) {
                free(t);
                rc = 1;
                break;
            }
            t->id = next_id++;
            t->n = s_turn_read(router, t->who, NULL, ENGRAM_DEFAULT_MAX_BATCH);
            for (size_t i = 0; i < t->n && rc == 0; i++)
                rc = !s_store_put(st);
            if (rc == 0)
                rc = !s_store_turn_end(st);
            if (rc != 0) /* a short reply: the clients count it */
                break;
            s_push_both(dealer, &t->id, records, t->n * PUSH_RECORD_BYTES);
        }
        /* whatever woke the loop, every ack that came, from both backups */
        for (int b = 0; b < 2; b++)
            while (zsock_events(dealer[b]) & ZMQ_POLLIN) {
                zmsg_t *ack = zmsg_recv(dealer[b]);
                zframe_t *id = ack ? zmsg_first(ack) : NULL;
                uint64_t n = 0;
                if (id && zframe_size(id) == sizeof n)
                    memcpy(&n, zframe_data(id), sizeof n);
                acked[b] = n > acked[b] ? n : acked[b];
                zmsg_destroy(&ack);
            }
        uint64_t both = acked[0] < acked[1] ? acked[0] : acked[1];
        for (s_turn_t *t = zlist_first(pending); t && t->id <= both; t = zlist_first(pending)) {
            zlist_remove(pending, t);
            s_turn_answer(router, t->who, t->n, reply, reply_bytes);
            free(t);
        }
    }
    /* stopped or failed: what still waits gets a short reply, which its client counts */
    for (s_turn_t *t = pending ? zlist_pop(pending) : NULL; t; t = zlist_pop(pending)) {
        s_turn_answer(router, t->who, t->n, reply, 1);
        free(t);
    }
    zlist_destroy(&pending);
    zpoller_destroy(&poller);
    s_backups_disconnect(dealer, &mine);
    return rc;
}

/*  A turn of the lag floor's primary: its writers, and a record a put for the backups, led by
 *  the first FLOOR_SEQ_BYTES of its request (the writer's sequence number). */
typedef struct {
    size_t n;
    zframe_t *who[ENGRAM_DEFAULT_MAX_BATCH];
    uint8_t records[ENGRAM_DEFAULT_MAX_BATCH * PUSH_RECORD_BYTES];
} s_lag_turn_t;

/*  A durable turn: answered (a short reply if it failed: the client counts it), then pushed
 *  to both backups in one message each; freed. */
static void s_lag_release(zsock_t *router, zsock_t *dealer[2], s_lag_turn_t **turn_p,
                          const uint8_t *reply, size_t reply_bytes, bool failed)
{
    s_lag_turn_t *turn = *turn_p;
    s_turn_answer(router, turn->who, turn->n, reply, failed ? 1 : reply_bytes);
    if (!failed)
        s_push_both(dealer, NULL, turn->records, turn->n * PUSH_RECORD_BYTES);
    free(turn);
    *turn_p = NULL;
}

/*  The lag floor's fsync thread: each "SYNC" fsyncs the store's WAL (what the loop wrote out
 *  before asking), then signals SYNCED, or SYNC_FAILED. It ends at $TERM only (a receive a
 *  signal interrupted is tried again), since zactor signals 0 when its thread ends. */
#define SYNCED      1
#define SYNC_FAILED 2
static void s_lag_syncer(zsock_t *pipe, void *args)
{
    s_store_db_t *st = args;
    zsock_signal(pipe, 0);
    for (;;) {
        char *command = zstr_recv(pipe);
        if (!command && zmq_errno() == EINTR)
            continue;
        if (!command || strcmp(command, "SYNC") != 0) { /* $TERM, or the context is ending */
            zstr_free(&command);
            break;
        }
        zsock_signal(pipe, s_store_flush_wal(st, true) ? SYNCED : SYNC_FAILED);
        zstr_free(&command);
    }
}

/*  The lag floor's primary: a turn of its writers' puts stored and written out, then once it
 *  is fsynced answered and pushed (s_lag_release), awaiting nothing from the backups. In turns
 *  (syncer NULL) the loop fsyncs each turn itself before the next, as engramd does; with an
 *  fsync thread (syncer) it goes on with the next turns while the thread syncs, and the turns
 *  written out meanwhile wait for the thread's next fsync. */
static int s_serve_lag_primary(zsock_t *router, s_store_db_t *st, const uint8_t *reply,
                               size_t reply_bytes, zcert_t *cert, char **backups, zactor_t *syncer)
{
    zsock_t *dealer[2];
    zcert_t *mine = NULL;
    int rc = s_backups_connect(dealer, &mine, cert, backups);
    zlist_t *written = zlist_new(), *syncing = zlist_new();
    zpoller_t *poller = zpoller_new(router, NULL);
    if (!written || !syncing || !poller || (syncer && zpoller_add(poller, syncer) != 0))
        rc = 1;
    zmsg_t *bodies[ENGRAM_DEFAULT_MAX_BATCH];
    s_lag_turn_t *turn = NULL;
    while (!zsys_interrupted && rc == 0) {
        void *ready = zpoller_wait(poller, 100);
        if (syncer && ready == syncer) { /* the fsync covers the turns it was asked for */
            bool failed = zsock_wait(syncer) != SYNCED; /* 0: the thread ended */
            while ((turn = zlist_pop(syncing)))
                s_lag_release(router, dealer, &turn, reply, reply_bytes, failed);
            rc = failed;
        }
        if (ready == router && rc == 0) {
            if (!(turn = calloc(1, sizeof *turn)) || zlist_append(written, turn) != 0) {
                free(turn);
                rc = 1;
                break;
            }
            turn->n = s_turn_read(router, turn->who, bodies, ENGRAM_DEFAULT_MAX_BATCH);
            if (turn->n == 0) { /* the socket's timeout, or interrupted */
                zlist_remove(written, turn);
                free(turn);
                continue;
            }
            for (size_t i = 0; i < turn->n; i++) {
                zframe_t *request = zmsg_first(bodies[i]);
                if (!request || zframe_size(request) < FLOOR_SEQ_BYTES)
                    rc = 1;
                else
                    memcpy(turn->records + i * PUSH_RECORD_BYTES, zframe_data(request),
                           FLOOR_SEQ_BYTES);
                zmsg_destroy(&bodies[i]);
                if (rc == 0)
                    rc = !s_store_put(st);
            }
            if (rc == 0) /* written out; fsynced too unless a thread does that */
                rc = !s_store_turn_end(st);
        }
        if (!syncer) {
            while ((turn = zlist_pop(written)))
                s_lag_release(router, dealer, &turn, reply, reply_bytes, rc != 0);
        } else if (rc == 0 && zlist_size(written) && zlist_size(syncing) == 0) {
            while ((turn = zlist_pop(written)))
                zlist_append(syncing, turn);
            zstr_send(syncer, "SYNC");
        }
    }
    /* stopped or failed: what still waits gets a short reply, which its client counts */
    if (syncer && zlist_size(syncing))
        zsock_wait(syncer);
    for (zlist_t *list = written; list; list = list == written ? syncing : NULL)
        while ((turn = zlist_pop(list)))
            s_lag_release(router, dealer, &turn, reply, reply_bytes, true);
    zpoller_destroy(&poller);
    zlist_destroy(&written);
    zlist_destroy(&syncing);
    s_backups_disconnect(dealer, &mine);
    return rc;
}

/*  The lag floor's backup: each request is a primary's push (its records, stored) or a
 *  subscriber's FLOOR_SUBSCRIBE (echoed; at most LAG_SUBSCRIBERS are kept). A turn's pushes
 *  are written out together, then every subscriber is sent one event a record, led by the
 *  record's sequence number; the WAL is fsynced at most every LAG_BACKUP_SYNC_MS, as an
 *  engramd replica fsyncs what it only applied at its gossip tick (node/api/server.h). */
#define LAG_SUBSCRIBERS    4
#define LAG_BACKUP_SYNC_MS 50 /* engramd's TICK_MS (node/cluster/internal.h) */
static int s_serve_lag_backup(zsock_t *router, s_store_db_t *st)
{
    static uint64_t seqs[ENGRAM_DEFAULT_MAX_BATCH * ENGRAM_DEFAULT_MAX_BATCH];
    static uint8_t event[FLOOR_EVENT_BYTES];
    memset(event, 'e', sizeof event);
    zframe_t *subscribers[LAG_SUBSCRIBERS] = {NULL};
    size_t nsubscribers = 0;
    zframe_t *who[ENGRAM_DEFAULT_MAX_BATCH];
    zmsg_t *bodies[ENGRAM_DEFAULT_MAX_BATCH];
    int64_t next_sync_ms = zclock_mono() + LAG_BACKUP_SYNC_MS;
    bool unsynced = false;
    int rc = 0;
    while (!zsys_interrupted && rc == 0) {
        size_t n = s_turn_read(router, who, bodies, ENGRAM_DEFAULT_MAX_BATCH), nseqs = 0;
        for (size_t i = 0; i < n; i++) {
            zframe_t *body = zmsg_first(bodies[i]);
            size_t size = body ? zframe_size(body) : 0, records = size / PUSH_RECORD_BYTES;
            if (size == strlen(FLOOR_SUBSCRIBE) &&
                memcmp(zframe_data(body), FLOOR_SUBSCRIBE, size) == 0) {
                if (nsubscribers < LAG_SUBSCRIBERS) { /* echoed: the subscriber is known */
                    subscribers[nsubscribers++] = zframe_dup(who[i]);
                    zmsg_t *echo = zmsg_new();
                    zmsg_addmem(echo, zframe_data(who[i]), zframe_size(who[i]));
                    zmsg_addstr(echo, FLOOR_SUBSCRIBE);
                    zmsg_send(&echo, router);
                }
            } else if (size == 0 || size % PUSH_RECORD_BYTES ||
                       nseqs + records > sizeof seqs / sizeof seqs[0]) {
                rc = 1;
            }
            for (size_t k = 0; rc == 0 && body && k < records; k++) {
                memcpy(&seqs[nseqs++], zframe_data(body) + k * PUSH_RECORD_BYTES, FLOOR_SEQ_BYTES);
                rc = !s_store_put(st);
            }
            zmsg_destroy(&bodies[i]);
            zframe_destroy(&who[i]);
        }
        if (nseqs && rc == 0) /* written out, not synced (st->sync is off) */
            rc = !s_store_turn_end(st);
        for (size_t s = 0; s < nsubscribers && rc == 0; s++)
            for (size_t k = 0; k < nseqs; k++) {
                memcpy(event, &seqs[k], FLOOR_SEQ_BYTES);
                zmsg_t *out = zmsg_new();
                zmsg_addmem(out, zframe_data(subscribers[s]), zframe_size(subscribers[s]));
                zmsg_addmem(out, event, sizeof event);
                zmsg_send(&out, router);
            }
        unsynced |= nseqs > 0;
        if (unsynced && rc == 0 && zclock_mono() >= next_sync_ms) {
            rc = !s_store_flush_wal(st, true);
            unsynced = false;
            next_sync_ms = zclock_mono() + LAG_BACKUP_SYNC_MS;
        }
    }
    for (size_t s = 0; s < nsubscribers; s++)
        zframe_destroy(&subscribers[s]);
    return rc;
}

int transport_floor_serve(int argc, char **argv)
{
    /* ENDPOINT CERT REPLY_BYTES STORE [DIR [BACKUP_ENDPOINT BACKUP_ENDPOINT]] */
    if (argc < 4)
        return 2;
    const char *endpoint = argv[0], *cert_path = argv[1], *store = argv[3];
    size_t reply_bytes = strtoul(argv[2], NULL, 10);
    s_store_t mode = STORE_NONE;
    while (mode < STORE_COUNT && strcmp(store, s_store_names[mode]) != 0)
        mode++;
    bool primary = mode == STORE_PRIMARY || mode == STORE_LAG_PRIMARY ||
                   mode == STORE_LAG_PRIMARY_FSYNC_THREAD,
         backup = mode == STORE_BACKUP || mode == STORE_LAG_BACKUP;
    if (mode == STORE_COUNT || (mode != STORE_NONE && argc < 5) || (primary && argc < 7))
        return 2;
    s_store_db_t st = {0};
    bool storing = mode != STORE_NONE && s_store_open(&st, argv[4], mode);
    zcert_t *cert = strcmp(cert_path, "-") ? zcert_load(cert_path) : NULL;
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    uint8_t *reply = calloc(1, reply_bytes ? reply_bytes : 1);
    int rc = 2; /* until it serves */
    if (router && reply && (storing || mode == STORE_NONE) && (cert || !strcmp(cert_path, "-"))) {
        if (cert) {
            zcert_apply(cert, router);
            zsock_set_curve_server(router, 1);
        }
        /* SIGTERM may reach one of ZeroMQ's or RocksDB's threads and interrupt no receive:
         * the loop looks at zsys_interrupted at least this often */
        zsock_set_rcvtimeo(router, 100);
        if (mode == STORE_LAG_BACKUP) /* a subscriber's events are never dropped */
            zsock_set_sndhwm(router, 0);
        int port = zsock_bind(router, "%s", endpoint);
        memset(reply, 'r', reply_bytes);
        if (port < 0 || (backup && !s_endpoint_publish(argv[4], endpoint, port)))
            rc = 2;
        else if (mode == STORE_BACKUP)
            rc = s_serve_backup(router, &st);
        else if (mode == STORE_LAG_BACKUP) {
            st.sync = false; /* a turn is written out; the WAL is fsynced at a tick */
            rc = s_serve_lag_backup(router, &st);
        } else if (mode == STORE_PRIMARY)
            rc = s_serve_primary(router, &st, reply, reply_bytes, cert, argv + 5);
        else if (mode == STORE_LAG_PRIMARY)
            rc = s_serve_lag_primary(router, &st, reply, reply_bytes, cert, argv + 5, NULL);
        else if (mode == STORE_LAG_PRIMARY_FSYNC_THREAD) {
            st.sync = false; /* the loop writes the WAL out, the thread fsyncs it */
            zactor_t *syncer = zactor_new(s_lag_syncer, &st);
            rc = syncer
                     ? s_serve_lag_primary(router, &st, reply, reply_bytes, cert, argv + 5, syncer)
                     : 1;
            zactor_destroy(&syncer);
        } else
            rc = s_serve_answer(router, storing ? &st : NULL, reply, reply_bytes);
    }
    free(reply);
    zsock_destroy(&router);
    zcert_destroy(&cert);
    if (storing)
        s_store_close(&st);
    return rc;
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
    uint8_t *request = malloc(c->kind->request_bytes);
    if (!request)
        c->errors++;
    else
        memset(request, 'q', c->kind->request_bytes);
    bool first = true;
    while (c->errors == 0 && (first || !atomic_load(c->stop))) {
        uint64_t t0 = bench_now_ns();
        zframe_t *frame = zframe_new(request, c->kind->request_bytes);
        zmsg_t *reply = NULL;
        if (zframe_send(&frame, dealer, 0) == 0 && zpoller_wait(poller, 5000))
            reply = zmsg_recv(dealer);
        if (!reply || zframe_size(zmsg_last(reply)) != c->kind->reply_bytes) {
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
    free(request);
    zpoller_destroy(&poller);
    zsock_destroy(&dealer);
    zcert_destroy(&mine);
    return NULL;
}

/*  Starts a floor's server: this program again with --floor-server and args (at most 7); its
 *  log in dir/floor-N.log, N counting the servers started. */
static pid_t s_server_spawn(const char *dir, char *const args[], size_t nargs)
{
    static unsigned server_no;
    char log[300];
    snprintf(log, sizeof log, "%s/floor-%u.log", dir, server_no++);
    char *argv[10] = {"/proc/self/exe", "--floor-server"};
    for (size_t i = 0; i < nargs && i < 7; i++)
        argv[2 + i] = args[i];
    pid_t pid = bench_spawn(argv, log);
    if (pid < 0)
        BENCH_DIE("the floor's server cannot start: %s", strerror(errno));
    return pid;
}

/*  A cell's clients: `clients` threads calling endpoint (CURVE to cert's key unless NULL) with
 *  kind's requests for `duration` seconds, the servers' CPU the sum over pids. Its figures
 *  into *out; false if calls failed or none completed. */
static bool s_measure(const char *endpoint, zcert_t *cert, const s_kind_t *kind, const pid_t *pids,
                      size_t npids, unsigned clients, double duration, floor_result_t *out)
{
    atomic_bool stop = false;
    pthread_barrier_t ready;
    pthread_barrier_init(&ready, NULL, clients + 1);
    s_client_t *cs = calloc(clients, sizeof *cs);
    pthread_t *threads = calloc(clients, sizeof *threads);
    if (!cs || !threads)
        BENCH_DIE("out of memory");
    for (unsigned t = 0; t < clients; t++) {
        cs[t] = (s_client_t){.endpoint = endpoint,
                             .kind = kind,
                             .server_cert = cert,
                             .stop = &stop,
                             .ready = &ready};
        if (pthread_create(&threads[t], NULL, s_client_run, &cs[t]) != 0)
            BENCH_DIE("pthread_create: %s", strerror(errno));
    }
    pthread_barrier_wait(&ready);
    double cpu0 = 0, self0 = bench_self_cpu_seconds();
    for (size_t i = 0; i < npids; i++)
        cpu0 += bench_cpu_seconds(pids[i]);
    double t0 = bench_now();
    bench_sleep(duration);
    atomic_store(&stop, true);
    size_t total = 0;
    double t_end = t0;
    *out = (floor_result_t){0};
    for (unsigned t = 0; t < clients; t++) {
        pthread_join(threads[t], NULL);
        total += cs[t].n;
        out->errors += cs[t].errors;
        t_end = cs[t].t_end > t_end ? cs[t].t_end : t_end;
    }
    double cpu1 = 0, self1 = bench_self_cpu_seconds();
    for (size_t i = 0; i < npids; i++)
        cpu1 += bench_cpu_seconds(pids[i]);
    uint64_t *all = malloc((total ? total : 1) * sizeof *all);
    size_t at = 0;
    for (unsigned t = 0; t < clients; t++) {
        if (all)
            memcpy(all + at, cs[t].lat, cs[t].n * sizeof *all);
        at += cs[t].n;
        free(cs[t].lat);
    }
    double wall = t_end - t0;
    bool ok = all && total && !out->errors;
    if (ok) {
        qsort(all, total, sizeof *all, bench_cmp_u64);
        out->ops_s = (double)total / wall;
        out->p50 = bench_percentile(all, total, 0.5);
        out->p99 = bench_percentile(all, total, 0.99);
        out->cpu_server = 100.0 * (cpu1 - cpu0) / wall;
        out->cpu_clients = 100.0 * (self1 - self0) / wall;
    }
    free(all);
    free(cs);
    free(threads);
    pthread_barrier_destroy(&ready);
    return ok;
}

/*  One cell: a fresh server of kind in dir, CURVE or plain, and its clients; its row into row,
 *  its calls a second into *ops_s (0 if it failed). Returns false if calls failed or none
 *  completed. */
static bool s_cell(const char *dir, const s_kind_t *kind, bool curve, unsigned clients,
                   double duration, char *row, size_t size, double *ops_s)
{
    static unsigned cell_no;
    unsigned no = cell_no++;
    char endpoint[300], cert_path[300] = "-", store_dir[300], reply_bytes[24];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/floor-%u.sock", dir, no);
    snprintf(store_dir, sizeof store_dir, "%s/floor-%u.db", dir, no);
    snprintf(reply_bytes, sizeof reply_bytes, "%zu", kind->reply_bytes);
    zcert_t *cert = curve ? zcert_new() : NULL;
    if (cert) {
        snprintf(cert_path, sizeof cert_path, "%s/floor-%u.cert", dir, no);
        if (zcert_save(cert, cert_path) != 0)
            BENCH_DIE("cannot save %s", cert_path);
    }
    char *args[] = {endpoint, cert_path, reply_bytes, (char *)s_store_names[kind->store],
                    store_dir};
    pid_t server = s_server_spawn(dir, args, 5);
    floor_result_t r;
    bool ok = s_measure(endpoint, cert, kind, &server, 1, clients, duration, &r);
    bench_stop(server);
    *ops_s = ok ? r.ops_s : 0;
    if (!ok) {
        snprintf(row, size, "failed (%d errors)", r.errors);
    } else {
        char ops[16], p50[16], p99[16];
        double per = 1e6 / r.ops_s; /* us of wall per call */
        snprintf(row, size, "%8s %8s %8s %7.0f+%-4.0f %6.1f+%-5.1f",
                 bench_si(ops, sizeof ops, r.ops_s), bench_lat(p50, sizeof p50, r.p50),
                 bench_lat(p99, sizeof p99, r.p99), r.cpu_server, r.cpu_clients,
                 per * r.cpu_server / 100.0, per * r.cpu_clients / 100.0);
    }
    zcert_destroy(&cert);
    return ok;
}

static size_t s_put_bytes(void)
{
    size_t bytes = 0;
    for (size_t i = 0; i < PUT_KEYS; i++)
        bytes += s_put_keys[i].key_bytes + s_put_keys[i].value_bytes;
    return bytes;
}

static const s_kind_t s_transport = {"transport", 64, 300, STORE_NONE};
static const s_kind_t s_put_kinds[] = {
    {"put sync", 320, 96, STORE_SYNC},
    {"put sync, turn", 320, 96, STORE_SYNC_TURN},
    {"put async", 320, 96, STORE_ASYNC},
    {"put async, turn", 320, 96, STORE_ASYNC_TURN},
};

int transport_floor_print(const char *dir, const unsigned *clients, size_t nclients,
                          double duration, const double *redis_put[2])
{
    printf("\ntransport floor: a ROUTER that only answers (a child process), one DEALER per client "
           "thread,\n  %zu-byte request, %zu-byte reply, ipc://, one call in flight per client, as "
           "libengram makes one\n  cpu s+c: server + clients, 100 = one core; us/op s+c: CPU "
           "microseconds per call, server + clients\n",
           s_transport.request_bytes, s_transport.reply_bytes);
    printf("transport         clients    ops/s      p50      p99  cpu s+c   us/op s+c\n");
    int failures = 0;
    for (int curve = 1; curve >= 0; curve--) {
        for (size_t c = 0; c < nclients && !bench_interrupted; c++) {
            char row[160];
            double ops_s;
            failures +=
                !s_cell(dir, &s_transport, curve, clients[c], duration, row, sizeof row, &ops_s);
            printf("%-17s %7u %s\n", curve ? "zmq + CURVE" : "zmq, plain", clients[c], row);
            fflush(stdout);
        }
    }
    if (!redis_put)
        return failures;
    printf("\nput floor: the same with CURVE, %zu-byte requests, %zu-byte replies; the server "
           "writes each request as\n  an engramd put's four RocksDB keys (entry, op, history "
           "step, context: %zu bytes) in turns of at most %d ready\n  requests: one WriteBatch "
           "and rocksdb_write a put, as engramd, or one a turn (\"turn\"); the "
           "WAL\n  written (async) and fsynced (sync) once a turn, before the turn's replies; "
           "/redis: against this run's\n  redis put cell of the same durability and clients\n",
           s_put_kinds[0].request_bytes, s_put_kinds[0].reply_bytes, s_put_bytes(),
           ENGRAM_DEFAULT_MAX_BATCH);
    printf(
        "floor             clients    ops/s      p50      p99  cpu s+c   us/op s+c     /redis\n");
    for (size_t k = 0; k < sizeof s_put_kinds / sizeof s_put_kinds[0]; k++) {
        for (size_t c = 0; c < nclients && !bench_interrupted; c++) {
            char row[160];
            double ops_s = 0;
            failures +=
                !s_cell(dir, &s_put_kinds[k], true, clients[c], duration, row, sizeof row, &ops_s);
            bool sync =
                s_put_kinds[k].store == STORE_SYNC || s_put_kinds[k].store == STORE_SYNC_TURN;
            double redis = redis_put[!sync] ? redis_put[!sync][c] : 0;
            char ratio[16] = "-";
            if (redis > 0 && ops_s > 0)
                snprintf(ratio, sizeof ratio, "%.2fx", ops_s / redis);
            printf("%-17s %7u %s %8s\n", s_put_kinds[k].name, clients[c], row, ratio);
            fflush(stdout);
        }
    }
    return failures;
}

/*  Starts two backups of mode (children, their stores stores[1] and stores[2], pids[1] and
 *  pids[2]) and reads the endpoints they bound into backups. */
static void s_backups_start(const char *dir, char *cert_path, char *mode, char stores[3][300],
                            pid_t pids[3], char backups[2][300])
{
    for (int b = 0; b < 2; b++) {
        char *args[] = {"tcp://127.0.0.1:*", cert_path, "0", mode, stores[b + 1]};
        backups[b][0] = '\0';
        pids[b + 1] = s_server_spawn(dir, args, 5);
    }
    for (double deadline = bench_now() + 10;
         bench_now() < deadline && (!*backups[0] || !*backups[1]);) {
        for (int b = 0; b < 2; b++) {
            char path[400];
            snprintf(path, sizeof path, "%s/endpoint", stores[b + 1]);
            FILE *f = fopen(path, "r");
            if (f && !fgets(backups[b], 300, f))
                backups[b][0] = '\0';
            if (f)
                fclose(f);
        }
        if (!*backups[0] || !*backups[1])
            bench_sleep(0.01);
    }
    if (!*backups[0] || !*backups[1])
        BENCH_DIE("a floor's backups did not start (see %s/floor-*.log)", dir);
}

bool transport_floor_replicated(const char *dir, unsigned clients, double duration,
                                floor_result_t *out)
{
    static unsigned cell_no;
    unsigned no = cell_no++;
    static const s_kind_t put = {"replicated put", 320, 96, STORE_PRIMARY};
    char cert_path[300], reply_bytes[24], endpoint[300], stores[3][300], backups[2][300] = {"", ""};
    snprintf(cert_path, sizeof cert_path, "%s/replicated-%u.cert", dir, no);
    snprintf(reply_bytes, sizeof reply_bytes, "%zu", put.reply_bytes);
    snprintf(endpoint, sizeof endpoint, "ipc://%s/replicated-%u.sock", dir, no);
    zcert_t *cert = zcert_new();
    if (!cert || zcert_save(cert, cert_path) != 0)
        BENCH_DIE("cannot save %s", cert_path);
    pid_t pids[3];
    for (int i = 0; i < 3; i++)
        snprintf(stores[i], sizeof stores[i], "%s/replicated-%u-%d.db", dir, no, i);
    s_backups_start(dir, cert_path, "backup", stores, pids, backups);
    char *args[] = {endpoint, cert_path, reply_bytes, "primary", stores[0], backups[0], backups[1]};
    pids[0] = s_server_spawn(dir, args, 7);
    bool ok = s_measure(endpoint, cert, &put, pids, 3, clients, duration, out);
    for (int i = 0; i < 3; i++)
        bench_stop(pids[i]);
    zcert_destroy(&cert);
    return ok;
}

bool transport_floor_lag_start(const char *dir, bool fsync_thread, floor_lag_t *out)
{
    static unsigned cell_no;
    unsigned no = cell_no++;
    *out = (floor_lag_t){0};
    char stores[3][300], backups[2][300], reply_bytes[24];
    snprintf(out->cert_path, sizeof out->cert_path, "%s/lag-%u.cert", dir, no);
    snprintf(out->primary, sizeof out->primary, "ipc://%s/lag-%u.sock", dir, no);
    snprintf(reply_bytes, sizeof reply_bytes, "%d", FLOOR_REPLY_BYTES);
    zcert_t *cert = zcert_new();
    bool ok = cert && zcert_save(cert, out->cert_path) == 0;
    zcert_destroy(&cert);
    if (!ok)
        return false;
    for (int i = 0; i < 3; i++)
        snprintf(stores[i], sizeof stores[i], "%s/lag-%u-%d.db", dir, no, i);
    s_backups_start(dir, out->cert_path, "lag-backup", stores, out->pids, backups);
    snprintf(out->subscribe, sizeof out->subscribe, "%s", backups[0]);
    char *args[] = {out->primary, out->cert_path,
                    reply_bytes,  fsync_thread ? "lag-primary-fsync-thread" : "lag-primary",
                    stores[0],    backups[0],
                    backups[1]};
    out->pids[0] = s_server_spawn(dir, args, 7);
    return true;
}

void transport_floor_lag_stop(floor_lag_t *floor)
{
    for (int i = 0; i < 3; i++)
        if (floor->pids[i] > 0)
            bench_stop(floor->pids[i]);
    *floor = (floor_lag_t){0};
}
