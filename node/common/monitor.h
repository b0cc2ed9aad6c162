/*  node_monitor: a ZeroMQ socket's monitor, read without blocking.
 *
 *  libzmq reports a socket's connections (accepted, handshake done, closed) on an inproc PAIR
 *  it binds (zmq_socket_monitor); each report is two frames: 6 bytes (the event, a uint16, and
 *  its value, a uint32: a file descriptor for the connection events) and the endpoint's
 *  address. node_monitor_start makes that PAIR and connects to it before the socket connects
 *  or binds, so that no connection's first event is missed; its pipe has no high-water mark,
 *  since an event libzmq could not queue would be lost for good. node_monitor_next reads one
 *  report. engramd's agent API and libengram both read their sockets' connections this way.
 *
 *  Owner: the caller owns the PAIR; node_monitor_stop stops libzmq's side and destroys it,
 *  before the monitored socket is destroyed.
 */
#ifndef NODE_MONITOR_H
#define NODE_MONITOR_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

/*  A PAIR reading sock's events of the mask events (ZMQ_EVENT_*), or NULL when libzmq or
 *  memory refuses (errno says). */
zsock_t *node_monitor_start(zsock_t *sock, int events);

/*  Stops the monitor of sock and destroys *monitor_p (NULL: nothing to stop). */
void node_monitor_stop(zsock_t *sock, zsock_t **monitor_p);

/*  Reads the next report waiting on monitor: true with *event and *value, or false when none
 *  waits. A report cut short (not 6 bytes) reads as event 0. */
bool node_monitor_next(zsock_t *monitor, uint16_t *event, uint32_t *value);

#endif
