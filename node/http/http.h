/*  node_http: engramd's monitoring listener (`engramd --metrics HOST:PORT`), over libmicrohttpd.
 *
 *    GET /metrics      Prometheus's text format (exposition.h)
 *    GET /healthz      200 while the node's loop answers, else 503
 *    GET /readyz       200 when the store takes writes, the dot check is done and the node is in
 *                      its cluster, else 503; the body says which check failed (JSON)
 *    GET /api/status   the node, its members and their lag, its scopes' version vectors, rates
 *    GET /api/access   the access statements valid now
 *    GET /             the status page (page/: static HTML, CSS and JavaScript, built in)
 *  Anything else is 404, a method other than GET or HEAD 405.
 *
 *  Threads: libmicrohttpd serves connections on its own thread; every answer but the page is
 *  asked of the node's loop over an inproc PAIR (node_server_observe, node/api/observe.c): the
 *  loop owns the state, so nothing is shared and nothing is locked. A loop that does not
 *  answer within NODE_HTTP_ANSWER_MS gets the request a 503.
 *
 *  Bounds: at most NODE_HTTP_MAX_CONNECTIONS connections, each idle at most
 *  NODE_HTTP_IDLE_SECONDS and within libmicrohttpd's per-connection memory limit (the request
 *  line and headers); no request body is read. The listener binds loopback unless HOST says
 *  otherwise, and serves only what it is built with: the page fetches nothing from elsewhere
 *  (its Content-Security-Policy says so to the browser).
 */
#ifndef NODE_HTTP_H
#define NODE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define NODE_HTTP_ANSWER_MS       2000
#define NODE_HTTP_MAX_CONNECTIONS 32
#define NODE_HTTP_IDLE_SECONDS    10
#define NODE_HTTP_DEFAULT_HOST    "127.0.0.1"

typedef struct node_http node_http_t;

/*  Listens on address ("HOST:PORT", "[V6]:PORT", ":PORT" or "PORT"; HOST defaults to loopback,
 *  PORT 0 takes any free one). 0, or a code with a one-line reason in why. */
int node_http_new(const char *address, node_http_t **self_p, char *why, size_t why_len);

/*  The inproc endpoint the node's server connects to (node_server_observe). */
const char *node_http_observe_endpoint(const node_http_t *self);

/*  The status page's URL, "http://HOST:PORT/": HOST as the address gave it (bracketed if V6),
 *  or the default; PORT the one listened on. */
const char *node_http_url(const node_http_t *self);

/*  Stops serving (waits for the listener's thread) and frees everything. */
void node_http_destroy(node_http_t **self_p);

#endif
