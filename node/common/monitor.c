/*  node_monitor (monitor.h): a socket's monitor on an inproc PAIR, read without blocking. */
#include "node/common/monitor.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

zsock_t *node_monitor_start(zsock_t *sock, int events)
{
    /* a name never used before in the process: a stopped monitor's endpoint may stay bound a
     * while (libzmq closes its socket later), and a new socket may have the old one's address */
    static atomic_uint_fast64_t monitors;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://engram-monitor-%p-%" PRIuFAST64,
             (void *)&monitors, atomic_fetch_add(&monitors, 1)); /* a copy of this library a
                                                                    process holds: its own */
    if (zmq_socket_monitor(zsock_resolve(sock), endpoint, events) != 0)
        return NULL;
    zsock_t *monitor = zsock_new(ZMQ_PAIR);
    if (monitor) {
        zsock_set_rcvhwm(monitor, 0);
        if (zsock_connect(monitor, "%s", endpoint) != 0)
            zsock_destroy(&monitor);
    }
    if (!monitor)
        zmq_socket_monitor(zsock_resolve(sock), NULL, 0);
    return monitor;
}

void node_monitor_stop(zsock_t *sock, zsock_t **monitor_p)
{
    if (!*monitor_p)
        return;
    zmq_socket_monitor(zsock_resolve(sock), NULL, 0);
    zsock_destroy(monitor_p);
}

bool node_monitor_next(zsock_t *monitor, uint16_t *event, uint32_t *value)
{
    void *handle = zsock_resolve(monitor);
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, handle, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&part);
        return false;
    }
    *event = 0;
    *value = 0;
    if (zmq_msg_size(&part) >= 6) {
        memcpy(event, zmq_msg_data(&part), 2);
        memcpy(value, (uint8_t *)zmq_msg_data(&part) + 2, 4);
    }
    bool more = zmq_msg_more(&part);
    while (more) { /* the endpoint's address */
        zmq_msg_close(&part);
        zmq_msg_init(&part);
        more = zmq_msg_recv(&part, handle, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&part);
    }
    zmq_msg_close(&part);
    return true;
}
