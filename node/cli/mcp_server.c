/*  mcp_server: the MCP session of `engram mcp`. Reads JSON-RPC messages from stdin one line at
 *  a time, answers each request on stdout, and, once the client subscribed to
 *  memory://knowledge-graph, sends notifications/resources/updated when the graph's scope
 *  changes (on any node: a second connection subscribes to the scope on the node, and a thread
 *  turns its events into notifications, a burst of changes into one).
 *
 *  Methods: initialize (versions negotiated: mcp_negotiate_version), ping, tools/list,
 *  tools/call, resources/list, resources/templates/list, resources/read, resources/subscribe,
 *  resources/unsubscribe; notifications are taken and ignored; anything else is -32601.
 *  A tool call's arguments are checked against the tool's input schema (mcp_call_check)
 *  before it runs.
 *
 *  A session that negotiated 2025-03-26 may send JSON-RPC batches (an array of messages on one
 *  line), answered with an array of the answers; later versions have no batches.
 *
 *  Invariants: the main thread owns the session's connection, the watcher thread its own; both
 *  write whole lines under out_lock; a request gets exactly one answer, even when building it
 *  failed (an internal error then, without what the client sent); a line longer than
 * MCP_MAX_LINE_BYTES is answered with -32600 and dropped while it streams in, so memory stays
 * bounded whatever the client sends; stdin's end ends the session, and the watcher is joined before
 * the connections go.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "node/cli/cli.h"
#include "node/cli/mcp.h"

#define S_RESOURCE_URI "memory://knowledge-graph"
#define S_READ_CHUNK   65536
/*  The watcher: it waits S_WATCH_QUIET_MS for more changes before it notifies of a burst, but
 *  notifies at most S_WATCH_MAX_DELAY_MS after the first. When its subscription ends (the
 *  node let it lag, cut the connection, no longer knows its key, or the connection was lost:
 *  libengram says so) it subscribes again at once, and, while that fails, every
 *  S_WATCH_CHECK_MS. */
#define S_WATCH_QUIET_MS     50
#define S_WATCH_MAX_DELAY_MS 250
#define S_WATCH_POLL_MS      250 /* under 1000: also a nanosleep's tv_nsec (s_watch) */
#define S_WATCH_CHECK_MS     2000
#define S_WHY_BYTES          512

typedef struct {
    engram_t *engram;
    mcp_defaults_t defaults;
    json_t *tools; /* the tools/list array, graph tools first */
    bool batches;  /* the session speaks 2025-03-26, which has JSON-RPC batches */
    pthread_mutex_t out_lock;
    atomic_bool out_failed; /* stdout is gone: the session ends */
    /* the watcher */
    const char *endpoint, *agent, *user;
    engram_t *watch; /* the watcher thread's connection: only that thread uses it once started */
    pthread_t watcher;
    bool watching;
    atomic_bool subscribed;
    atomic_bool stop;
} s_session_t;

static uint64_t s_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/*  Where JSON-RPC goes: the process's stdout as it was before mcp_claim_stdout, else stdout. */
static FILE *s_protocol_out;

int mcp_claim_stdout(void)
{
    fflush(stdout);
    int fd = dup(STDOUT_FILENO);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!out || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        if (out)
            fclose(out);
        else if (fd >= 0)
            close(fd);
        return ENGRAM_EIO;
    }
    s_protocol_out = out;
    return 0;
}

/*  Writes msg (taken; NULL: nothing) as one line. */
static void s_send(s_session_t *session, json_t *msg)
{
    if (!msg)
        return;
    FILE *out = s_protocol_out ? s_protocol_out : stdout;
    pthread_mutex_lock(&session->out_lock);
    if (json_dumpf(msg, out, JSON_COMPACT) != 0 || fputc('\n', out) == EOF || fflush(out) != 0)
        atomic_store(&session->out_failed, true);
    pthread_mutex_unlock(&session->out_lock);
    json_decref(msg);
}

/*  --- the watcher ------------------------------------------------------------------------- */

static void *s_watch(void *arg)
{
    s_session_t *session = arg;
    bool pending = false;
    uint64_t first_pending = 0, last_check = s_now_ms();
    while (!atomic_load(&session->stop)) {
        engram_event_t *event = NULL;
        int rc =
            engram_next_event(session->watch, pending ? S_WATCH_QUIET_MS : S_WATCH_POLL_MS, &event);
        uint64_t now = s_now_ms();
        if (rc == 0) {
            if (!pending &&
                strncmp(event->key, MCP_GRAPH_KEY_PREFIX, strlen(MCP_GRAPH_KEY_PREFIX)) == 0) {
                pending = true;
                first_pending = now;
            }
            engram_event_destroy(&event);
            if (!pending || now - first_pending < S_WATCH_MAX_DELAY_MS)
                continue;
        }
        if (pending && atomic_load(&session->subscribed))
            s_send(session, mcp_notification("notifications/resources/updated",
                                             json_pack("{s:s}", "uri", S_RESOURCE_URI)));
        pending = false;
        /* no subscription (the last SUBSCRIBE failed: a revoked key, a node still down):
         * wait, and try again at the next check only */
        bool none = rc == ENGRAM_EINVAL;
        _Static_assert(S_WATCH_POLL_MS < 1000, "tv_nsec");
        if (none)
            nanosleep(&(struct timespec){0, S_WATCH_POLL_MS * 1000000L}, NULL);
        /* the subscription ended (lagged, cut, its key no longer the agent's, connection lost) */
        bool again = rc != 0 && rc != ENGRAM_ETIMEDOUT && !none;
        if (none && now - last_check >= S_WATCH_CHECK_MS) {
            again = true;
            last_check = now;
        }
        if (again && engram_subscribe(session->watch, session->defaults.scope) == 0) {
            fprintf(stderr, "engram mcp: subscribed to %s again\n", session->defaults.scope);
            pending = true; /* changes may have been missed meanwhile */
            first_pending = now;
        }
    }
    return NULL;
}

/*  Starts the watcher (once). Returns 0 or an ENGRAM_E* code, with the node's message in why. */
static int s_watch_start(s_session_t *session, char *why, size_t why_len)
{
    if (session->watching)
        return 0;
    session->watch = engram_connect(session->endpoint, session->agent, session->user);
    if (!session->watch) {
        snprintf(why, why_len, "cannot connect");
        return ENGRAM_EUNAVAILABLE;
    }
    int rc = engram_subscribe(session->watch, session->defaults.scope);
    if (rc != 0)
        mcp_format(why, why_len, "%s", engram_last_error(session->watch));
    else if (pthread_create(&session->watcher, NULL, s_watch, session) != 0) {
        snprintf(why, why_len, "cannot start the watcher thread");
        rc = ENGRAM_ENOMEM;
    }
    if (rc != 0)
        engram_destroy(&session->watch);
    session->watching = rc == 0;
    return rc;
}

static void s_watch_stop(s_session_t *session)
{
    if (!session->watching)
        return;
    atomic_store(&session->stop, true);
    pthread_join(session->watcher, NULL);
    engram_destroy(&session->watch);
    session->watching = false;
}

/*  --- methods ------------------------------------------------------------------------------ */

static json_t *s_initialize(s_session_t *session, const json_t *params)
{
    const char *version =
        mcp_negotiate_version(json_string_value(json_object_get(params, "protocolVersion")));
    session->batches = strcmp(version, "2025-03-26") == 0;
    char instructions[S_WHY_BYTES];
    mcp_format(instructions, sizeof instructions,
               "engram: shared memory for agents, replicated between hosts. The knowledge graph "
               "tools keep their graph in %s; the memory_* tools store and search memories "
               "(scopes: \"private\", or kind:id such as user:alice, run:task-1).",
               session->defaults.scope);
    return json_pack("{s:s, s:{s:{s:b}, s:{s:b, s:b}}, s:{s:s, s:s, s:s}, s:s}", "protocolVersion",
                     version, "capabilities", "tools", "listChanged", false, "resources",
                     "subscribe", true, "listChanged", false, "serverInfo", "name", "engram",
                     "title", "engram shared memory", "version", ENGRAM_VERSION_STRING,
                     "instructions", instructions);
}

/*  tools/call: a result, or NULL with *code and why set for a protocol error. */
static json_t *s_call(s_session_t *session, const json_t *params, int *code, char *why,
                      size_t why_len)
{
    const char *name;
    json_t *args = NULL, *result = NULL;
    int rc = mcp_call_check(session->tools, params, &name, &args, why, why_len);
    if (rc == MCP_INVALID_PARAMS) {
        *code = rc;
        return NULL;
    }
    if (rc == MCP_TOOL_REFUSED)
        result = mcp_tool_error("%s", why);
    else if (!mcp_graph_call(session->engram, session->defaults.scope, name, args, &result))
        mcp_tools_call(session->engram, &session->defaults, name, args, &result);
    json_decref(args);
    if (!result) {
        *code = MCP_INTERNAL_ERROR;
        snprintf(why, why_len, "out of memory");
    }
    return result;
}

static json_t *s_resources(void)
{
    return json_pack("{s:[{s:s, s:s, s:s, s:s, s:s}]}", "resources", "name", "knowledge-graph",
                     "title", "Knowledge Graph", "uri", S_RESOURCE_URI, "description",
                     "The full knowledge graph with all entities and relations", "mimeType",
                     "application/json");
}

/*  The resource methods: a result, or NULL with *code and why set. */
static json_t *s_resource(s_session_t *session, const char *method, const json_t *params, int *code,
                          char *why, size_t why_len)
{
    const char *uri = json_string_value(json_object_get(params, "uri"));
    if (!uri || strcmp(uri, S_RESOURCE_URI) != 0) {
        *code = MCP_INVALID_PARAMS;
        mcp_format(why, why_len, "Resource %s not found", uri ? uri : "(no uri)");
        return NULL;
    }
    int rc = 0;
    char reason[S_WHY_BYTES] = "";
    json_t *result = NULL;
    if (strcmp(method, "resources/read") == 0) {
        json_t *graph = NULL;
        rc = mcp_graph_read(session->engram, session->defaults.scope, &graph);
        if (rc != 0)
            mcp_format(reason, sizeof reason, "%s", engram_last_error(session->engram));
        char *text = rc == 0 ? json_dumps(graph, JSON_INDENT(2)) : NULL;
        if (text)
            result = json_pack("{s:[{s:s, s:s, s:s}]}", "contents", "uri", S_RESOURCE_URI,
                               "mimeType", "application/json", "text", text);
        free(text);
        json_decref(graph);
    } else if (strcmp(method, "resources/subscribe") == 0) {
        rc = s_watch_start(session, reason, sizeof reason);
        if (rc == 0)
            atomic_store(&session->subscribed, true);
        result = rc == 0 ? json_object() : NULL;
    } else {
        atomic_store(&session->subscribed, false);
        result = json_object();
    }
    if (!result) {
        *code = MCP_INTERNAL_ERROR;
        mcp_format(why, why_len, "%s %s: %s%s%s", method, session->defaults.scope,
                   engram_strerror(rc ? rc : ENGRAM_ENOMEM), *reason ? ": " : "", reason);
    }
    return result;
}

/*  The answer to one decoded message: NULL for a notification or a response. */
static json_t *s_answer(s_session_t *session, const mcp_message_t *message)
{
    if (!message->id || !message->method)
        return NULL;
    const char *method = message->method;
    json_t *params = message->params;
    json_t *result = NULL;
    int code = MCP_METHOD_NOT_FOUND;
    char why[S_WHY_BYTES];
    mcp_format(why, sizeof why, "Method not found: %s", method);
    if (strcmp(method, "initialize") == 0)
        result = s_initialize(session, params);
    else if (strcmp(method, "ping") == 0)
        result = json_object();
    else if (strcmp(method, "tools/list") == 0)
        result = json_pack("{s:O}", "tools", session->tools);
    else if (strcmp(method, "tools/call") == 0)
        result = s_call(session, params, &code, why, sizeof why);
    else if (strcmp(method, "resources/list") == 0)
        result = s_resources();
    else if (strcmp(method, "resources/templates/list") == 0)
        result = json_pack("{s:[]}", "resourceTemplates");
    else if (strcmp(method, "resources/read") == 0 || strcmp(method, "resources/subscribe") == 0 ||
             strcmp(method, "resources/unsubscribe") == 0)
        result = s_resource(session, method, params, &code, why, sizeof why);
    json_t *reply = result ? mcp_result(message->id, result) : mcp_error(message->id, code, why);
    if (!reply) /* building it failed: answer without what the client sent */
        reply = mcp_error(message->id, MCP_INTERNAL_ERROR, "the reply could not be built");
    return reply;
}

/*  The answer to a parsed message (taken), or to a refusal of it. */
static json_t *s_answer_root(s_session_t *session, json_t *root)
{
    mcp_message_t message;
    json_t *error_id = NULL;
    char why[S_WHY_BYTES];
    if (mcp_message_from(root, &message, &error_id, why, sizeof why) != 0) {
        json_t *reply = mcp_error(error_id, MCP_INVALID_REQUEST, why);
        json_decref(error_id);
        return reply;
    }
    json_t *reply = s_answer(session, &message);
    mcp_message_fini(&message);
    return reply;
}

/*  A batch (2025-03-26): every element answered, the answers in one array (none: no line). */
static void s_batch(s_session_t *session, const char *line, size_t len)
{
    if (!mcp_values_within(line, len)) {
        json_t *null_id = json_null();
        s_send(session, mcp_error(null_id, MCP_INVALID_REQUEST,
                                  "Invalid request: a batch holds too many values"));
        json_decref(null_id);
        return;
    }
    json_t *batch = json_loadb(line, len, 0, NULL), *replies = json_array();
    size_t i;
    json_t *element;
    json_array_foreach(batch, i, element)
    {
        json_t *reply = s_answer_root(session, json_incref(element));
        if (reply)
            json_array_append_new(replies, reply);
    }
    if (json_array_size(batch) == 0) { /* unreadable or empty: answered as one message */
        json_t *null_id = json_null();
        s_send(session,
               mcp_error(null_id, batch ? MCP_INVALID_REQUEST : MCP_PARSE_ERROR,
                         batch ? "Invalid request: an empty batch" : "Parse error: a batch"));
        json_decref(null_id);
    } else if (json_array_size(replies) > 0)
        s_send(session, json_incref(replies));
    json_decref(batch);
    json_decref(replies);
}

static void s_handle_line(s_session_t *session, const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    size_t start = 0;
    while (start < len && (line[start] == ' ' || line[start] == '\t'))
        start++;
    if (start == len)
        return;
    if (session->batches && line[start] == '[') {
        s_batch(session, line + start, len - start);
        return;
    }
    mcp_message_t message;
    json_t *error_id = NULL;
    char why[S_WHY_BYTES];
    int code = mcp_message_decode(line + start, len - start, &message, &error_id, why, sizeof why);
    if (code != 0) {
        json_t *reply = mcp_error(error_id, code, why);
        if (!reply) /* building it failed: answer without what the client sent */
            reply = mcp_error(error_id, MCP_INTERNAL_ERROR, "the reply could not be built");
        s_send(session, reply);
        json_decref(error_id);
        return;
    }
    s_send(session, s_answer(session, &message));
    mcp_message_fini(&message);
}

/*  Reads stdin to its end, a line at a time, within MCP_MAX_LINE_BYTES. */
static int s_loop(s_session_t *session)
{
    size_t cap = S_READ_CHUNK, len = 0;
    char *buf = malloc(cap);
    bool discarding = false; /* inside a line too long to hold */
    if (!buf)
        return ENGRAM_ENOMEM;
    for (;;) {
        if (len == cap) {
            size_t grown_cap = cap * 2 > MCP_MAX_LINE_BYTES ? MCP_MAX_LINE_BYTES : cap * 2;
            char *grown = grown_cap > cap ? realloc(buf, grown_cap) : NULL;
            if (!grown) {
                /* the line is too long (or memory ran out): refuse it, drop what came (the
                 * refusal to the id its first part names) */
                json_t *id = discarding ? json_null() : mcp_scan_id(buf, len);
                s_send(session, mcp_error(id, MCP_INVALID_REQUEST,
                                          "Invalid request: a message is at most 8 MiB"));
                json_decref(id);
                discarding = true;
                len = 0;
                continue;
            }
            buf = grown;
            cap = grown_cap;
        }
        ssize_t got = read(STDIN_FILENO, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        size_t scan = len;
        len += (size_t)got;
        size_t line_start = 0;
        for (size_t i = scan; i < len; i++) {
            if (buf[i] != '\n')
                continue;
            if (!discarding)
                s_handle_line(session, buf + line_start, i - line_start);
            discarding = false;
            line_start = i + 1;
        }
        memmove(buf, buf + line_start, len - line_start);
        len -= line_start;
        if (discarding)
            len = 0;
        if (atomic_load(&session->out_failed))
            break;
    }
    if (len > 0 && !discarding && !atomic_load(&session->out_failed))
        s_handle_line(session, buf, len);
    free(buf);
    return 0;
}

int mcp_serve(engram_t *engram, const char *endpoint, const char *agent, const char *user,
              const char *const *scopes, size_t nscopes)
{
    char user_scope[ENGRAM_ACL_MAX_NAME_BYTES + sizeof "user:"];
    mcp_format(user_scope, sizeof user_scope, "user:%s", user);
    s_session_t session = {
        .engram = engram,
        .defaults = {.scope = nscopes ? scopes[0] : user_scope,
                     .search_scopes = scopes,
                     .nsearch_scopes = nscopes},
        .tools = mcp_catalog_tools(),
        .endpoint = endpoint,
        .agent = agent,
        .user = user,
    };
    if (!session.tools)
        return cli_fail(ENGRAM_ENOMEM, "building the tool list");
    pthread_mutex_init(&session.out_lock, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client gone shows as a failed write, which ends the session */
    fprintf(stderr, "engram mcp: agent %s for user %s; the knowledge graph is in %s\n", agent, user,
            session.defaults.scope);
    int rc = s_loop(&session);
    s_watch_stop(&session);
    pthread_mutex_destroy(&session.out_lock);
    json_decref(session.tools);
    return rc;
}

/*  --- the commands ---------------------------------------------------------------------------- */

int cli_cmd_mcp(engram_t *engram, const cli_opts_t *opts)
{
    return mcp_serve(engram, opts->socket, opts->agent, opts->user, opts->scopes.items,
                     opts->scopes.n);
}
