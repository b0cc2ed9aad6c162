/*  node_http: engramd's monitoring listener (see http.h). */
#include "node/http/http.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <string.h>

#include "engram/error.h"
#include "node/http/assets.h"
#include "node/http/exposition.h"

struct node_http {
    struct MHD_Daemon *daemon;
    zsock_t *loop;     /* PAIR to the node's loop: used only by the listener's thread */
    char endpoint[64]; /* its inproc endpoint */
    uint64_t sequence; /* of the last question: a late answer to an earlier one is skipped */
    char url[300];     /* "http://HOST:PORT/", HOST as given (bracketed if V6) or the default */
};

/*  Asks the loop a question (node/api/observe.c) and returns its JSON answer, malloc'd, or
 *  NULL if none came in time (or it was empty: the loop ran out of memory). */
static char *s_ask(node_http_t *self, const char *kind)
{
    uint64_t sequence = ++self->sequence;
    zmsg_t *question = zmsg_new();
    zmsg_addmem(question, &sequence, sizeof sequence);
    zmsg_addstr(question, kind);
    if (zmsg_send(&question, self->loop) != 0) {
        zmsg_destroy(&question);
        return NULL;
    }
    int64_t deadline = zclock_mono() + NODE_HTTP_ANSWER_MS;
    zpoller_t *poller = zpoller_new(self->loop, NULL);
    char *answer = NULL;
    while (poller && !answer) {
        int64_t left = deadline - zclock_mono();
        if (left <= 0 || !zpoller_wait(poller, (int)left))
            break;
        zmsg_t *msg = zmsg_recv(self->loop);
        zframe_t *seq = msg ? zmsg_first(msg) : NULL;
        bool ours = seq && zframe_size(seq) == sizeof sequence &&
                    memcmp(zframe_data(seq), &sequence, sizeof sequence) == 0;
        if (ours) {
            zframe_t *body = zmsg_next(msg);
            answer = body && zframe_size(body) ? zframe_strdup(body) : NULL;
            zmsg_destroy(&msg);
            break;
        }
        zmsg_destroy(&msg);
    }
    zpoller_destroy(&poller);
    return answer;
}

static enum MHD_Result s_send(struct MHD_Connection *connection, unsigned status, const char *type,
                              void *body, size_t len, bool owned)
{
    struct MHD_Response *response =
        owned ? MHD_create_response_from_buffer_with_free_callback(len, body, free)
              : MHD_create_response_from_buffer(len, body, MHD_RESPMEM_PERSISTENT);
    if (!response) {
        if (owned)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(response, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    enum MHD_Result rc = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return rc;
}

static enum MHD_Result s_text(struct MHD_Connection *connection, unsigned status, const char *text)
{
    return s_send(connection, status, "text/plain; charset=utf-8", (void *)text, strlen(text),
                  false);
}

static enum MHD_Result s_json(struct MHD_Connection *connection, unsigned status, char *json)
{
    return s_send(connection, status, "application/json", json, strlen(json), true);
}

static const char *const s_no_answer =
    "the node's loop did not answer in time (busy, or stopping)\n";

static enum MHD_Result s_metrics(node_http_t *self, struct MHD_Connection *connection)
{
    char *json = s_ask(self, "metrics");
    size_t len = 0;
    char *text = json ? node_http_exposition(json, &len) : NULL;
    free(json);
    if (!text)
        return s_text(connection, MHD_HTTP_SERVICE_UNAVAILABLE, s_no_answer);
    return s_send(connection, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len,
                  true);
}

/*  /healthz and /readyz: the loop's "ready" answer. */
static enum MHD_Result s_probe(node_http_t *self, struct MHD_Connection *connection, bool ready)
{
    char *json = s_ask(self, "ready");
    if (!json)
        return s_text(connection, MHD_HTTP_SERVICE_UNAVAILABLE, s_no_answer);
    if (!ready) {
        free(json);
        return s_text(connection, MHD_HTTP_OK, "ok\n");
    }
    json_t *doc = json_loads(json, 0, NULL);
    bool is_ready = json_is_true(json_object_get(doc, "ready"));
    json_decref(doc);
    return s_json(connection, is_ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, json);
}

static enum MHD_Result s_answer(void *cls, struct MHD_Connection *connection, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **state)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)state;
    node_http_t *self = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return s_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (strcmp(url, "/metrics") == 0)
        return s_metrics(self, connection);
    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0)
        return s_probe(self, connection, url[1] == 'r');
    if (strcmp(url, "/api/status") == 0 || strcmp(url, "/api/access") == 0) {
        char *json = s_ask(self, url + 5);
        return json ? s_json(connection, MHD_HTTP_OK, json)
                    : s_text(connection, MHD_HTTP_SERVICE_UNAVAILABLE, s_no_answer);
    }
    const node_http_asset_t *asset = node_http_asset(url);
    if (asset)
        return s_send(connection, MHD_HTTP_OK, asset->type, (void *)asset->data, asset->len, false);
    return s_text(connection, MHD_HTTP_NOT_FOUND,
                  "not found: /metrics, /healthz, /readyz, /api/status, /api/access, /\n");
}

static void s_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[256];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    zsys_warning("engramd: metrics listener: %s", line);
}

/*  A host as an address names it (at most 255 bytes), with the brackets of a V6 one. */
#define S_URL_HOST_BYTES (256 + 2)

/*  Splits "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT" and resolves it (numerically: no DNS)
 *  into *addr; host_out gets HOST as a URL writes it (bracketed if V6; the default if none). */
static int s_address(const char *address, struct sockaddr_storage *addr,
                     char host_out[S_URL_HOST_BYTES], char *why, size_t why_len)
{
    char host[256] = NODE_HTTP_DEFAULT_HOST, port[16];
    const char *colon = strrchr(address, ':');
    const char *port_text = colon ? colon + 1 : address;
    size_t host_len = colon ? (size_t)(colon - address) : 0;
    if (host_len >= 2 && address[0] == '[' && address[host_len - 1] == ']') {
        address++; /* [V6] */
        host_len -= 2;
    }
    bool port_ok = *port_text && strlen(port_text) < sizeof port &&
                   strspn(port_text, "0123456789") == strlen(port_text) && atol(port_text) < 65536;
    if (!port_ok || host_len >= sizeof host) {
        snprintf(why, why_len,
                 "--metrics takes HOST:PORT (HOST an address, by default %s; PORT 0-65535)",
                 NODE_HTTP_DEFAULT_HOST);
        return ENGRAM_EINVAL;
    }
    if (host_len) {
        memcpy(host, address, host_len);
        host[host_len] = '\0';
    }
    snprintf(port, sizeof port, "%s", port_text);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *found = NULL;
    int rc = strcmp(host, "localhost") == 0
                 ? getaddrinfo(NODE_HTTP_DEFAULT_HOST, port, &hints, &found)
                 : getaddrinfo(host, port, &hints, &found);
    if (rc != 0 || !found || found->ai_addrlen > sizeof *addr) {
        snprintf(why, why_len, "--metrics: '%s' is not an IP address (nor localhost)", host);
        if (found)
            freeaddrinfo(found);
        return ENGRAM_EINVAL;
    }
    memcpy(addr, found->ai_addr, found->ai_addrlen);
    bool v6 = found->ai_family == AF_INET6;
    freeaddrinfo(found);
    snprintf(host_out, S_URL_HOST_BYTES, v6 ? "[%s]" : "%s", host);
    return 0;
}

int node_http_new(const char *address, node_http_t **self_p, char *why, size_t why_len)
{
    *self_p = NULL;
    struct sockaddr_storage addr = {0};
    char host[S_URL_HOST_BYTES];
    int rc = s_address(address, &addr, host, why, why_len);
    if (rc)
        return rc;
    node_http_t *self = calloc(1, sizeof *self);
    if (!self)
        return ENGRAM_ENOMEM;
    snprintf(self->endpoint, sizeof self->endpoint, "inproc://engram-observe-%p", (void *)self);
    self->loop = zsock_new(ZMQ_PAIR);
    if (!self->loop || zsock_bind(self->loop, "%s", self->endpoint) != 0) {
        node_http_destroy(&self);
        return ENGRAM_ENOMEM;
    }
    /* a loop that takes no more questions gets the request a 503, never a stuck listener */
    zsock_set_sndtimeo(self->loop, NODE_HTTP_ANSWER_MS);
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* the logger first: libmicrohttpd logs through it only what comes after it */
    self->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, s_answer, self, MHD_OPTION_EXTERNAL_LOGGER, s_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)NODE_HTTP_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)NODE_HTTP_IDLE_SECONDS, MHD_OPTION_END);
    if (!self->daemon) {
        snprintf(why, why_len, "--metrics: cannot listen on %s (in use, or not this host's)",
                 address);
        node_http_destroy(&self);
        return ENGRAM_EUNAVAILABLE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(self->url, sizeof self->url, "http://%s:%u/", host, info ? info->port : 0u);
    *self_p = self;
    return 0;
}

const char *node_http_observe_endpoint(const node_http_t *self)
{
    return self->endpoint;
}

const char *node_http_url(const node_http_t *self)
{
    return self->url;
}

void node_http_destroy(node_http_t **self_p)
{
    node_http_t *self = *self_p;
    if (!self)
        return;
    if (self->daemon)
        MHD_stop_daemon(self->daemon); /* joins the listener's thread: the PAIR is ours again */
    zsock_destroy(&self->loop);
    free(self);
    *self_p = NULL;
}
