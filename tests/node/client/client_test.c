/*  Tests of libengram's requests against a fake node in this process: a CURVE ROUTER on an ipc
 *  socket (its key published beside it, as engramd does) that answers every Request with a
 *  canned Reply and hands the Request it got to the test, which checks what libengram put in
 *  it: the sources declared for writes (engram_set_sources), the causal token every read
 *  carries (engram_set_after), the pages the whole-object reads gather (it answers a paged
 *  read in two pages) and the access-control calls (engram_acl_submit, engram_acl_show,
 *  engram_acl_check) with their answers; and what the client does when the node cuts its
 *  connection, floods it, stops, hangs or starts again.
 */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <czmq.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_keys.h"
#include "engram/engram.h"
#include "proto/api.pb-c.h"

#define CALL_MS 5000
/*  What the fake node answers. */
#define S_JSON         "{\"answer\": true}"
#define S_ID_BYTE      0xab
#define S_ID_BYTES     16
#define S_DENIED_AGENT "denied" /* ACL_CHECK of this agent: ENGRAM_EDENIED */
#define S_CUT_KEY      "cut"    /* a read of it: the connection is cut, as engramd's s_cut */
#define S_CUT_MESSAGE  "this connection left too much unread: connect again"
#define S_FLOOD_KEY    "flood" /* a read of it: first more events than a client may queue */
#define S_STOP_KEY     "stop"  /* a read of it: the node stops, unanswered */
#define S_EVENT_KEY    "event" /* a read of it: first one event to the last subscription */
#define S_SLOW_KEY     "slow"  /* a read of it: answered 200 ms late */
#define S_END_KEY      "end"   /* a read of it: first the end of the last subscription */
#define S_FLOOD_STOP_KEY                                                                           \
    "flood-stop" /* a read of it: answered, then S_FLOODED events, then                            \
                    the node stops */
#define S_FLOODED  5000
#define S_MUTE_KEY "mute" /* a read of it: answered; then nothing more on that connection */
#define S_PROBE_MS 1000   /* the least silence before a probe, and wait for its answer */

typedef struct {
    const char *endpoint;
    zcert_t *cert;
} s_node_args_t;

/*  Unbinds router from its ipc endpoint, the path removed first: a client connecting again
 *  while the listener closes could otherwise complete a handshake with it, on a connection
 *  then left without a socket (seen: its calls waited out their timeouts). */
static void s_unbind(zsock_t *router, const char *endpoint)
{
    unlink(endpoint + strlen("ipc://"));
    zsock_unbind(router, "%s", endpoint);
}

/*  Sends n events of the subscription to the connection routing names. */
static void s_send_events(zsock_t *router, zframe_t *routing, uint64_t subscription, int n)
{
    Engram__Event event = ENGRAM__EVENT__INIT;
    event.op = "put";
    event.key = "k";
    Engram__Reply reply = ENGRAM__REPLY__INIT;
    reply.schema_major = ENGRAM_SCHEMA_MAJOR;
    reply.id = subscription;
    reply.event = &event;
    for (int i = 0; i < n; i++) {
        zframe_t *frame = zframe_new(NULL, engram__reply__get_packed_size(&reply));
        engram__reply__pack(&reply, zframe_data(frame));
        zframe_t *to = zframe_dup(routing);
        zframe_send(&to, router, ZFRAME_MORE);
        zframe_send(&frame, router, 0);
    }
}

/*  The fake node: answers each request, and sends the request's frame to the test. */
static void s_fake_node(zsock_t *pipe, void *args)
{
    s_node_args_t *a = args;
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    assert(router);
    zcert_apply(a->cert, router);
    zsock_set_curve_server(router, 1);
    zsock_set_linger(router, 0);
    zsock_set_sndhwm(router, 0); /* a flood is queued whole, not dropped at the HWM */
    char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "%s", a->endpoint);
    int bound = zsock_bind(router, "%s", endpoint);
    zsock_signal(pipe, bound == 0 ? 0 : 1); /* a is the test's no longer */
    zpoller_t *poller = zpoller_new(pipe, router, NULL);
    zhash_t *cut = zhash_new();   /* the connections cut: nothing more is answered on them */
    uint64_t subscription = 0;    /* the id of the last SUBSCRIBE */
    zhash_t *muted = zhash_new(); /* connections S_MUTE_KEY was read on: open, unanswered */
    while (bound == 0) {
        void *which = zpoller_wait(poller, -1);
        if (which == pipe) {
            char *command = zstr_recv(pipe);
            bool end = !command || streq(command, "$TERM");
            zstr_free(&command);
            if (end)
                break;
            continue;
        }
        if (which != router)
            continue;
        zmsg_t *msg = zmsg_recv(router);
        zframe_t *routing = zmsg_pop(msg);
        zframe_t *payload = zmsg_pop(msg);
        zmsg_destroy(&msg);
        Engram__Request *req =
            engram__request__unpack(NULL, zframe_size(payload), zframe_data(payload));
        Engram__Reply reply = ENGRAM__REPLY__INIT;
        reply.schema_major = ENGRAM_SCHEMA_MAJOR;
        reply.id = req ? req->id : 0;
        char *who = zframe_strhex(routing);
        bool mute = zhash_lookup(muted, who) != NULL;
        if (mute)
            zframe_send(&payload, pipe, 0);   /* the test sees what a hung node gets */
        if (mute || zhash_lookup(cut, who)) { /* unanswered */
            engram__request__free_unpacked(req, NULL);
            zframe_destroy(&routing);
            zframe_destroy(&payload);
            zstr_free(&who);
            continue;
        }
        if (req && req->op == ENGRAM__OP__SUBSCRIBE)
            subscription = req->id;
        if (req && streq(req->key, S_MUTE_KEY))
            zhash_insert(muted, who, (void *)1);
        if (req && streq(req->key, S_SLOW_KEY))
            zclock_sleep(200);
        if (req && streq(req->key, S_END_KEY)) {
            Engram__Reply end = ENGRAM__REPLY__INIT;
            end.schema_major = ENGRAM_SCHEMA_MAJOR;
            end.id = subscription;
            end.code = ENGRAM_ELAGGED;
            end.message = "lagged";
            zframe_t *frame = zframe_new(NULL, engram__reply__get_packed_size(&end));
            engram__reply__pack(&end, zframe_data(frame));
            zframe_t *to = zframe_dup(routing);
            zframe_send(&to, router, ZFRAME_MORE);
            zframe_send(&frame, router, 0);
        }
        bool flood_stop = req && streq(req->key, S_FLOOD_STOP_KEY);
        if (req && streq(req->key, S_STOP_KEY)) { /* its connections close; it binds no more */
            s_unbind(router, endpoint);
            engram__request__free_unpacked(req, NULL);
            zframe_destroy(&routing);
            zframe_destroy(&payload);
            zstr_free(&who);
            continue;
        }
        if (req && (streq(req->key, S_FLOOD_KEY) || streq(req->key, S_EVENT_KEY)))
            s_send_events(router, routing, subscription,
                          streq(req->key, S_EVENT_KEY) ? 1
                                                       : ENGRAM_DEFAULT_SUBSCRIBER_BACKLOG + 10);
        if (req && streq(req->key, S_CUT_KEY)) { /* cut: one reply, id 0 */
            zhash_insert(cut, who, (void *)1);
            reply.id = 0;
            reply.code = ENGRAM_EBUSY;
            reply.message = S_CUT_MESSAGE;
        }
        zstr_free(&who);
        uint8_t id[S_ID_BYTES];
        memset(id, S_ID_BYTE, sizeof id);
        if (req && req->op == ENGRAM__OP__ACL_SUBMIT) {
            reply.statement_id.data = id;
            reply.statement_id.len = sizeof id;
        }
        if (req && req->op == ENGRAM__OP__ACL_CHECK && streq(req->check_agent, S_DENIED_AGENT)) {
            reply.code = ENGRAM_EDENIED;
            reply.message = "not for you";
        } else if (reply.code == 0) {
            reply.json = S_JSON;
        }
        /* paged reads: two pages, "first" then (after cursor "c1") "second"; for key "loop"
         * the second page names the same cursor again */
        Engram__Item item = ENGRAM__ITEM__INIT;
        Engram__Item *items[1] = {&item};
        if (req && (req->op == ENGRAM__OP__SET_MEMBERS || req->op == ENGRAM__OP__LOG_RANGE ||
                    req->op == ENGRAM__OP__HISTORY)) {
            bool first = !req->cursor[0];
            item.value.data = (uint8_t *)(first ? "first" : "second");
            item.value.len = strlen((char *)item.value.data);
            reply.items = items;
            reply.n_items = 1;
            reply.next_cursor = first || streq(req->key, "loop") ? "c1" : "";
        }
        engram__request__free_unpacked(req, NULL);
        zframe_t *answer = zframe_new(NULL, engram__reply__get_packed_size(&reply));
        engram__reply__pack(&reply, zframe_data(answer));
        zframe_t *to = flood_stop ? zframe_dup(routing) : NULL;
        zmsg_t *out = zmsg_new();
        zmsg_append(out, &routing);
        zmsg_append(out, &answer);
        zmsg_send(&out, router);
        zframe_send(&payload, pipe, 0);
        if (flood_stop) { /* the client reads none of it before its connection ends */
            s_send_events(router, to, subscription, S_FLOODED);
            zclock_sleep(500); /* sent: an unbinding drops what its connections did not send */
            s_unbind(router, endpoint);
            zframe_destroy(&to);
        }
    }
    zhash_destroy(&cut);
    zhash_destroy(&muted);
    zpoller_destroy(&poller);
    s_unbind(router, endpoint);
    zsock_destroy(&router);
}

static char s_dir[64];
static char s_endpoint[128];
static zcert_t *s_cert; /* the fake node's, the same when it starts again */
static zactor_t *s_node;
static engram_t *s_engram;

static int s_remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int s_setup(void **state)
{
    (void)state;
    snprintf(s_dir, sizeof s_dir, "/tmp/engram-client-XXXXXX");
    if (!mkdtemp(s_dir) || !agent_keys_home() || agent_keys_make("agent-a") != 0)
        return -1;
    char published[128];
    snprintf(s_endpoint, sizeof s_endpoint, "ipc://%s/api.sock", s_dir);
    snprintf(published, sizeof published, "%s/api.sock.pub", s_dir);
    s_cert = zcert_new();
    s_node_args_t args = {s_endpoint, s_cert};
    s_node = s_cert ? zactor_new(s_fake_node, &args) : NULL;
    bool ok = s_node && zcert_save_public(s_cert, published) == 0;
    s_engram = ok ? engram_connect(s_endpoint, "agent-a", "alice") : NULL;
    if (!s_engram)
        return -1;
    engram_set_timeout(s_engram, CALL_MS);
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    engram_destroy(&s_engram);
    zactor_destroy(&s_node);
    zcert_destroy(&s_cert);
    nftw(s_dir, s_remove_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/*  The fake node stops (if it still runs) and starts again on its endpoint, with its key. */
static void s_restart_node(void)
{
    zactor_destroy(&s_node);
    s_node_args_t args = {s_endpoint, s_cert};
    s_node = zactor_new(s_fake_node, &args);
    assert_non_null(s_node);
}

/*  The request the fake node got last. Caller frees it with engram__request__free_unpacked. */
static Engram__Request *s_last_request(void)
{
    zsock_set_rcvtimeo(s_node, CALL_MS);
    zframe_t *frame = zframe_recv(s_node);
    assert_non_null(frame);
    Engram__Request *req = engram__request__unpack(NULL, zframe_size(frame), zframe_data(frame));
    zframe_destroy(&frame);
    assert_non_null(req);
    return req;
}

static void s_ok(int rc)
{
    if (rc)
        fail_msg("%s: %s", engram_strerror(rc), engram_last_error(s_engram));
}

/*  The connection up (a call answered), then the node restarts while the client waits for
 *  nothing, long enough for libzmq to connect again (it tries every 100 ms). */
static void s_restart_while_idle(void)
{
    engram_result_t *r = NULL;
    s_ok(engram_get(s_engram, "run:x", "k", NULL, 0, &r));
    engram_result_destroy(&r);
    s_restart_node();
    zclock_sleep(1000);
}

/*  The requests the fake node got while the test waited, until none came for `quiet` ms: how
 *  many of them were op. */
static int s_requests_of(Engram__Op op, int quiet)
{
    int n = 0;
    zsock_set_rcvtimeo(s_node, quiet);
    zframe_t *frame;
    while ((frame = zframe_recv(s_node))) {
        Engram__Request *req =
            engram__request__unpack(NULL, zframe_size(frame), zframe_data(frame));
        n += req && req->op == op;
        engram__request__free_unpacked(req, NULL);
        zframe_destroy(&frame);
    }
    return n;
}

/*  The fake node sends the subscription to run:x one event, and engram_next_event returns it. */
static void s_an_event_comes(void)
{
    engram_result_t *r = NULL;
    s_ok(engram_get(s_engram, "run:x", S_EVENT_KEY, NULL, 0, &r));
    engram_result_destroy(&r);
    engram_event_t *ev = NULL;
    s_ok(engram_next_event(s_engram, CALL_MS, &ev));
    engram_event_destroy(&ev);
}

/*  A node that hangs with its connection open: while events are awaited, libengram asks it
 *  (a STATS probe) after a call timeout of silence (a second at least), and when nothing comes
 *  within as long, the subscription ends with ENGRAM_EUNAVAILABLE and the client connects
 *  anew: the node answers the new connection. */
static void test_a_hung_node_ends_the_subscription(void **state)
{
    (void)state;
    s_ok(engram_subscribe(s_engram, "run:x"));
    int64_t started = zclock_mono();
    engram_result_t *r = NULL;
    s_ok(engram_get(s_engram, "run:x", S_MUTE_KEY, NULL, 0, &r));
    engram_result_destroy(&r);
    engram_set_timeout(s_engram, S_PROBE_MS / 4); /* the probe's times: a second still */
    engram_event_t *ev = NULL;
    assert_int_equal(engram_next_event(s_engram, 20 * 1000, &ev), ENGRAM_EUNAVAILABLE);
    engram_set_timeout(s_engram, CALL_MS);
    assert_true(zclock_mono() - started >= 2 * S_PROBE_MS); /* silence, then the probe's wait */
    assert_non_null(strstr(engram_last_error(s_engram), "did not answer"));
    assert_int_equal(s_requests_of(ENGRAM__OP__STATS, 500), 1);
    assert_int_equal(engram_next_event(s_engram, 0, &ev), ENGRAM_EINVAL); /* none left */
    s_ok(engram_subscribe(s_engram, "run:x")); /* answered: a connection not muted */
    s_an_event_comes();
}

static void s_no_op(int sig)
{
    (void)sig;
}

/*  Sends SIGUSR1 to the thread arg names, a little after a probe's time. */
static void *s_signal_later(void *arg)
{
    zclock_sleep(S_PROBE_MS * 3 / 2);
    pthread_kill(*(pthread_t *)arg, SIGUSR1);
    return NULL;
}

/*  A signal ends engram_next_event(-1) with ENGRAM_ETIMEDOUT, probes or not (engram.h: so
 *  that a program waiting for events can check its own flags). */
static void test_a_signal_ends_the_wait_for_events(void **state)
{
    (void)state;
    struct sigaction action = {.sa_handler = s_no_op}, before;
    sigemptyset(&action.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &action, &before), 0); /* no SA_RESTART */
    engram_set_timeout(s_engram, S_PROBE_MS);
    s_ok(engram_subscribe(s_engram, "run:x"));
    pthread_t me = pthread_self(), signaller;
    assert_int_equal(pthread_create(&signaller, NULL, s_signal_later, &me), 0);
    engram_event_t *ev = NULL;
    int rc = engram_next_event(s_engram, -1, &ev);
    pthread_join(signaller, NULL);
    sigaction(SIGUSR1, &before, NULL);
    assert_int_equal(rc, ENGRAM_ETIMEDOUT);
    s_an_event_comes(); /* the subscription lasts */
}

/*  A program away longer than the probe's times: the probe's answer waiting on the socket is
 *  heard, and the subscription lasts. */
static void test_an_answer_waiting_unread_is_heard(void **state)
{
    (void)state;
    engram_set_timeout(s_engram, S_PROBE_MS);
    s_ok(engram_subscribe(s_engram, "run:x"));
    engram_event_t *ev = NULL;
    for (int i = 0; i < 3; i++) { /* a probe goes; its answer comes while the program is away */
        zclock_sleep(S_PROBE_MS + 200);
        assert_int_equal(engram_next_event(s_engram, 0, &ev), ENGRAM_ETIMEDOUT);
    }
    s_an_event_comes();
}

/*  A live node that has nothing to send is asked again and again, and the subscription lasts. */
static void test_an_idle_node_that_answers_keeps_the_subscription(void **state)
{
    (void)state;
    engram_set_timeout(s_engram, S_PROBE_MS);
    s_ok(engram_subscribe(s_engram, "run:x"));
    engram_event_t *ev = NULL;
    assert_int_equal(engram_next_event(s_engram, 7 * S_PROBE_MS / 2, &ev), ENGRAM_ETIMEDOUT);
    assert_true(s_requests_of(ENGRAM__OP__STATS, 100) >= 2);
    s_an_event_comes();
}

/*  A connection the node cut (its reply with id 0 and an error, after which it answers
 *  nothing on it): the call waiting fails at once with the node's code and message, the
 *  subscriptions end with them, and the next call is answered on a new connection. */
static void test_a_cut_connection_says_so_and_connects_anew(void **state)
{
    (void)state;
    s_ok(engram_subscribe(s_engram, "run:x"));
    engram_result_t *r = NULL;
    int64_t started = zclock_mono();
    assert_int_equal(engram_get(s_engram, "run:x", S_CUT_KEY, NULL, 0, &r), ENGRAM_EBUSY);
    assert_true(zclock_mono() - started < CALL_MS); /* not its timeout */
    assert_non_null(strstr(engram_last_error(s_engram), S_CUT_MESSAGE));
    assert_non_null(strstr(engram_last_error(s_engram), "connected anew"));
    engram_event_t *event = NULL;
    assert_int_equal(engram_next_event(s_engram, 1000, &event), ENGRAM_EBUSY);
    assert_null(event);
    assert_int_equal(engram_next_event(s_engram, 0, &event), ENGRAM_EINVAL); /* none left */
    s_ok(engram_get(s_engram, "run:x", "k", NULL, 0, &r));
    engram_result_destroy(&r);
}

/*  A batch on a connection the node cuts: the run fails at once with the cut's code, what
 *  was answered before keeps its answer, what waits gets the cut's code. */
static void test_a_cut_batch_says_so(void **state)
{
    (void)state;
    engram_batch_t *batch = engram_batch_new(s_engram);
    assert_non_null(batch);
    s_ok(engram_batch_get(batch, "run:x", "k1"));
    s_ok(engram_batch_get(batch, "run:x", S_CUT_KEY));
    s_ok(engram_batch_get(batch, "run:x", "k2"));
    int64_t started = zclock_mono();
    assert_int_equal(engram_batch_run(batch), ENGRAM_EBUSY);
    assert_true(zclock_mono() - started < CALL_MS); /* not its timeout */
    assert_non_null(strstr(engram_last_error(s_engram), S_CUT_MESSAGE));
    assert_int_equal(engram_batch_code(batch, 0), 0);
    assert_int_equal(engram_batch_code(batch, 1), ENGRAM_EBUSY);
    assert_int_equal(engram_batch_code(batch, 2), ENGRAM_EBUSY);
    engram_batch_destroy(&batch);
    engram_result_t *r = NULL;
    s_ok(engram_get(s_engram, "run:x", "k", NULL, 0, &r)); /* on a new connection */
    engram_result_destroy(&r);
}

/*  A node that restarts holds no subscription: the client's end with ENGRAM_EUNAVAILABLE
 *  (they waited for ever), and the next calls go on the new connection. */
static void test_a_restarted_node_ends_the_subscription(void **state)
{
    (void)state;
    s_ok(engram_subscribe(s_engram, "run:x"));
    s_restart_node();
    engram_event_t *event = NULL;
    assert_int_equal(engram_next_event(s_engram, 30000, &event), ENGRAM_EUNAVAILABLE);
    assert_null(event);
    assert_non_null(strstr(engram_last_error(s_engram), "was lost"));
    assert_non_null(strstr(engram_last_error(s_engram), "subscribe again"));
    assert_int_equal(engram_next_event(s_engram, 0, &event), ENGRAM_EINVAL); /* none left */
    s_ok(engram_subscribe(s_engram, "run:x"));
    assert_int_equal(engram_next_event(s_engram, 200, &event), ENGRAM_ETIMEDOUT); /* once */
}

/*  A call made after the node restarted while the client was idle goes on the new connection
 *  and is answered: the old connection's end, reported before it was sent and read while it
 *  waits (it is answered late), is not its. */
static void test_a_call_after_a_restart_is_answered(void **state)
{
    (void)state;
    s_restart_while_idle();
    engram_result_t *r = NULL;
    s_ok(engram_get(s_engram, "run:x", S_SLOW_KEY, NULL, 0, &r));
    engram_result_destroy(&r);
}

/*  A subscription made after the node restarted while the client was idle lasts: the old
 *  connection's end, reported before its SUBSCRIBE was sent, does not end it. */
static void test_a_subscription_after_a_restart_lasts(void **state)
{
    (void)state;
    s_restart_while_idle();
    s_ok(engram_subscribe(s_engram, "run:x"));
    engram_event_t *event = NULL;
    assert_int_equal(engram_next_event(s_engram, 500, &event), ENGRAM_ETIMEDOUT);
}

/*  More events than the socket's high-water mark came while the client read nothing (libzmq
 *  stopped reading the connection), then the connection ended: the events libzmq took in come,
 *  then the subscription's end (what it had not taken in is dropped with the connection,
 *  among the events missed). Under ZMTP heartbeats, libzmq 4.3.4 aborts here (client.c). */
static void test_a_loss_with_events_unread_is_told(void **state)
{
    (void)state;
    s_ok(engram_subscribe(s_engram, "run:x"));
    engram_result_t *r = NULL;
    s_ok(engram_get(s_engram, "run:x", S_FLOOD_STOP_KEY, NULL, 0, &r));
    engram_result_destroy(&r);
    zclock_sleep(3000); /* the node's connection ends meanwhile */
    int events = 0, rc;
    engram_event_t *event = NULL;
    while ((rc = engram_next_event(s_engram, 30000, &event)) == 0) {
        events++;
        engram_event_destroy(&event);
    }
    assert_int_equal(rc, ENGRAM_EUNAVAILABLE);
    assert_in_range(events, 1, S_FLOODED - 1); /* some dropped with the connection */
}

/*  A subscription the node ended, its end not read yet, when the connection is lost: its end
 *  is told once, the node's. */
static void test_a_subscription_ends_once(void **state)
{
    (void)state;
    s_ok(engram_subscribe(s_engram, "run:x"));
    engram_result_t *r = NULL;
    s_ok(engram_get(s_engram, "run:x", S_END_KEY, NULL, 0, &r)); /* the end queued */
    engram_result_destroy(&r);
    s_restart_node();
    zclock_sleep(1000);
    s_ok(engram_get(s_engram, "run:x", S_SLOW_KEY, NULL, 0, &r)); /* reads the loss */
    engram_result_destroy(&r);
    engram_event_t *event = NULL;
    assert_int_equal(engram_next_event(s_engram, 0, &event), ENGRAM_ELAGGED);
    assert_int_equal(engram_next_event(s_engram, 0, &event), ENGRAM_EINVAL); /* no second */
}

/*  A program waiting for events in short slices is told the connection was lost too. */
static void test_short_waits_see_a_loss(void **state)
{
    (void)state;
    s_ok(engram_subscribe(s_engram, "run:x"));
    s_restart_node();
    engram_event_t *event = NULL;
    int rc = ENGRAM_ETIMEDOUT;
    for (int i = 0; i < 200 && rc == ENGRAM_ETIMEDOUT; i++)
        rc = engram_next_event(s_engram, 20, &event);
    assert_int_equal(rc, ENGRAM_EUNAVAILABLE);
}

/*  A call waiting when the node stops fails at once, saying the connection was lost, not
 *  after its timeout. */
static void test_a_call_waiting_when_the_node_stops_fails_at_once(void **state)
{
    (void)state;
    engram_set_timeout(s_engram, 60000);
    engram_result_t *r = NULL;
    assert_int_equal(engram_get(s_engram, "run:x", S_STOP_KEY, NULL, 0, &r), ENGRAM_EUNAVAILABLE);
    assert_non_null(strstr(engram_last_error(s_engram), "lost while waiting"));
    assert_non_null(strstr(engram_last_error(s_engram), "unknown"));
    s_restart_node();
    s_ok(engram_get(s_engram, "run:x", "k", NULL, 0, &r));
    engram_result_destroy(&r);
}

/*  engram_unsubscribe ends a subscription: the node is told, the events queued here are
 *  dropped; one scope is subscribed to once a connection, and what is not subscribed to
 *  cannot be ended. */
static void test_unsubscribe(void **state)
{
    (void)state;
    s_ok(engram_subscribe(s_engram, "run:x"));
    assert_int_equal(engram_subscribe(s_engram, "run:x"), ENGRAM_EINVAL);
    engram_result_t *r = NULL;
    s_ok(engram_get(s_engram, "run:x", S_EVENT_KEY, NULL, 0, &r)); /* an event queued */
    engram_result_destroy(&r);
    s_ok(engram_unsubscribe(s_engram, "run:x"));
    Engram__Op seen[3];
    for (int i = 0; i < 3; i++) { /* SUBSCRIBE, GET, UNSUBSCRIBE */
        Engram__Request *req = s_last_request();
        seen[i] = req->op;
        if (i == 2)
            assert_string_equal(req->scope, "run:x");
        engram__request__free_unpacked(req, NULL);
    }
    assert_int_equal(seen[0], ENGRAM__OP__SUBSCRIBE);
    assert_int_equal(seen[2], ENGRAM__OP__UNSUBSCRIBE);
    engram_event_t *event = NULL;
    assert_int_equal(engram_next_event(s_engram, 0, &event), ENGRAM_EINVAL); /* dropped */
    assert_null(event);
    assert_int_equal(engram_unsubscribe(s_engram, "run:x"), ENGRAM_EINVAL);
    s_ok(engram_subscribe(s_engram, "run:x"));
}

/*  Events taken in by calls and never read are bounded: past ENGRAM_DEFAULT_SUBSCRIBER_BACKLOG
 *  the client drops them and ends the subscription with ENGRAM_ELAGGED, as the node would. */
static void test_unread_events_are_bounded(void **state)
{
    (void)state;
    s_ok(engram_subscribe(s_engram, "run:x"));
    engram_result_t *r = NULL;
    s_ok(engram_get(s_engram, "run:x", S_FLOOD_KEY, NULL, 0, &r)); /* takes the flood in */
    engram_result_destroy(&r);
    engram_event_t *event = NULL;
    assert_int_equal(engram_next_event(s_engram, 1000, &event), ENGRAM_ELAGGED);
    assert_null(event);
    assert_non_null(strstr(engram_last_error(s_engram), "subscribe again"));
    assert_int_equal(engram_next_event(s_engram, 0, &event), ENGRAM_EINVAL); /* none left */
}

/*  The request of the last call declares exactly sources (n of them). */
static void s_expect_sources(Engram__Op op, const char *const *sources, size_t n)
{
    Engram__Request *req = s_last_request();
    assert_int_equal(req->op, op);
    assert_int_equal(req->n_sources, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(req->sources[i], sources[i]);
    engram__request__free_unpacked(req, NULL);
}

/*  engram_set_sources: every write that brings content declares the sources (a copy of the
 *  caller's), reads declare none, and n 0 clears them. */
static void test_sources_go_with_writes(void **state)
{
    (void)state;
    char first[] = "crm:q3-export";
    const char *sources[] = {first, "kb:pricing"};
    s_ok(engram_set_sources(s_engram, sources, 2));
    first[0] = 'X'; /* the connection kept its own copy */
    const char *expected[] = {"crm:q3-export", "kb:pricing"};

    engram_result_t *r = NULL;
    s_ok(engram_put(s_engram, "run:a", "k", "v", 1, NULL, 0, &r));
    engram_result_destroy(&r);
    s_expect_sources(ENGRAM__OP__PUT, expected, 2);
    s_ok(engram_put_replicated(s_engram, "run:a", "k", "v", 1, NULL, 0, 1, 100, &r));
    engram_result_destroy(&r);
    s_expect_sources(ENGRAM__OP__PUT, expected, 2);
    s_ok(engram_log_append(s_engram, "run:a", "log", "line", 4, &r));
    engram_result_destroy(&r);
    s_expect_sources(ENGRAM__OP__LOG_APPEND, expected, 2);
    s_ok(engram_remember(s_engram, "run:a", "a memory", NULL, 0, &r));
    engram_result_destroy(&r);
    s_expect_sources(ENGRAM__OP__REMEMBER, expected, 2);
    s_ok(engram_share(s_engram, "note", "run:a", &r));
    engram_result_destroy(&r);
    s_expect_sources(ENGRAM__OP__SHARE, expected, 2);
    s_ok(engram_get(s_engram, "run:a", "k", NULL, 0, &r));
    engram_result_destroy(&r);
    s_expect_sources(ENGRAM__OP__GET, NULL, 0);

    s_ok(engram_set_sources(s_engram, NULL, 0));
    s_ok(engram_put(s_engram, "run:a", "k", "v", 1, NULL, 0, &r));
    engram_result_destroy(&r);
    s_expect_sources(ENGRAM__OP__PUT, NULL, 0);
}

/*  The causal token and timeout of the last request. */
static void s_expect_after(Engram__Op op, const char *after, uint32_t timeout_ms)
{
    Engram__Request *req = s_last_request();
    assert_int_equal(req->op, op);
    assert_int_equal(req->after.len, strlen(after));
    if (req->after.len)
        assert_memory_equal(req->after.data, after, req->after.len);
    assert_int_equal(req->timeout_ms, timeout_ms);
    engram__request__free_unpacked(req, NULL);
}

/*  engram_set_after: every read of the connection carries the token and its timeout (get,
 *  set members, counter get, log range, list, history, and their pages); writes carry none;
 *  engram_get's own token takes precedence; NULL clears; a token that is not base64url is
 *  refused and the one set stays. */
static void test_after_goes_with_reads(void **state)
{
    (void)state;
    engram_result_t *r = NULL;
    s_ok(engram_set_after(s_engram, "YWJj", 1234)); /* base64url of "abc" */
#define S_READ(call, op)                                                                           \
    do {                                                                                           \
        s_ok(call);                                                                                \
        engram_result_destroy(&r);                                                                 \
        s_expect_after(op, "abc", 1234);                                                           \
    } while (0)
    S_READ(engram_get(s_engram, "run:a", "k", NULL, 0, &r), ENGRAM__OP__GET);
    S_READ(engram_counter_get(s_engram, "run:a", "k", &r), ENGRAM__OP__COUNTER_GET);
    S_READ(engram_list(s_engram, "run:a", NULL, NULL, 0, &r), ENGRAM__OP__LIST);
    S_READ(engram_set_members_page(s_engram, "run:a", "k", "c1", 5, &r), ENGRAM__OP__SET_MEMBERS);
    S_READ(engram_log_page(s_engram, "run:a", "k", "c1", 5, &r), ENGRAM__OP__LOG_RANGE);
    S_READ(engram_history_page(s_engram, "run:a", "k", "c1", 5, &r), ENGRAM__OP__HISTORY);
    s_ok(engram_log_range(s_engram, "run:a", "k", &r)); /* two pages, both with the token */
    engram_result_destroy(&r);
    s_expect_after(ENGRAM__OP__LOG_RANGE, "abc", 1234);
    s_expect_after(ENGRAM__OP__LOG_RANGE, "abc", 1234);
#undef S_READ
    s_ok(engram_put(s_engram, "run:a", "k", "v", 1, NULL, 0, &r));
    engram_result_destroy(&r);
    s_expect_after(ENGRAM__OP__PUT, "", 0);
    s_ok(engram_get(s_engram, "run:a", "k", "eHl6", 99, &r)); /* its own: "xyz" */
    engram_result_destroy(&r);
    s_expect_after(ENGRAM__OP__GET, "xyz", 99);
    assert_int_equal(engram_set_after(s_engram, "not base64!", 0), ENGRAM_EINVAL);
    s_ok(engram_counter_get(s_engram, "run:a", "k", &r));
    engram_result_destroy(&r);
    s_expect_after(ENGRAM__OP__COUNTER_GET, "abc", 1234);
    s_ok(engram_set_after(s_engram, NULL, 0));
    s_ok(engram_counter_get(s_engram, "run:a", "k", &r));
    engram_result_destroy(&r);
    s_expect_after(ENGRAM__OP__COUNTER_GET, "", 0);
}

/*  The whole-object reads fetch every page, in order, asking each after the previous page's
 *  cursor; the one-page calls pass cursor and limit; a node that names the same cursor again
 *  is an error, not a loop. */
static void test_pages_gathered(void **state)
{
    (void)state;
    engram_result_t *r = NULL;
    int (*whole[])(engram_t *, const char *, const char *,
                   engram_result_t **) = {engram_set_members, engram_log_range, engram_history};
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        s_ok(whole[i](s_engram, "run:a", "k", &r));
        assert_int_equal(r->nitems, 2);
        assert_string_equal((char *)r->items[0].value, "first");
        assert_string_equal((char *)r->items[1].value, "second");
        assert_string_equal(r->next_cursor, "");
        engram_result_destroy(&r);
        Engram__Request *req = s_last_request();
        assert_string_equal(req->cursor, "");
        assert_int_equal(req->limit, ENGRAM_MAX_PAGE); /* one request, one snapshot, when it fits */
        engram__request__free_unpacked(req, NULL);
        req = s_last_request();
        assert_string_equal(req->cursor, "c1");
        engram__request__free_unpacked(req, NULL);
    }
    s_ok(engram_set_members_page(s_engram, "run:a", "k", NULL, 7, &r));
    assert_int_equal(r->nitems, 1);
    assert_string_equal(r->next_cursor, "c1");
    engram_result_destroy(&r);
    Engram__Request *req = s_last_request();
    assert_string_equal(req->cursor, "");
    assert_int_equal(req->limit, 7);
    engram__request__free_unpacked(req, NULL);

    assert_int_equal(engram_history(s_engram, "run:a", "loop", &r), ENGRAM_EIO);
    assert_null(r);
    engram__request__free_unpacked(s_last_request(), NULL);
    engram__request__free_unpacked(s_last_request(), NULL);
}

/*  The access-control calls: what each request carries and what the caller gets back. */
static void test_acl_calls(void **state)
{
    (void)state;
    const uint8_t statement[] = {1, 2, 3, 4, 5};
    char *id = NULL;
    s_ok(engram_acl_submit(s_engram, statement, sizeof statement, &id));
    Engram__Request *req = s_last_request();
    assert_int_equal(req->op, ENGRAM__OP__ACL_SUBMIT);
    assert_int_equal(req->statement.len, sizeof statement);
    assert_memory_equal(req->statement.data, statement, sizeof statement);
    engram__request__free_unpacked(req, NULL);
    assert_string_equal(id, "abababababababababababababababab");
    free(id);
    s_ok(engram_acl_submit(s_engram, statement, sizeof statement, NULL)); /* id not wanted */
    engram__request__free_unpacked(s_last_request(), NULL);

    char *json = NULL;
    s_ok(engram_acl_show(s_engram, 1234, &json));
    req = s_last_request();
    assert_int_equal(req->op, ENGRAM__OP__ACL_SHOW);
    assert_int_equal(req->at_ms, 1234);
    engram__request__free_unpacked(req, NULL);
    assert_string_equal(json, S_JSON);
    free(json);

    s_ok(engram_acl_check(s_engram, "researcher-1", "bob", "run:q3", 99, &json));
    req = s_last_request();
    assert_int_equal(req->op, ENGRAM__OP__ACL_CHECK);
    assert_string_equal(req->check_agent, "researcher-1");
    assert_string_equal(req->check_user, "bob");
    assert_string_equal(req->scope, "run:q3");
    assert_int_equal(req->at_ms, 99);
    engram__request__free_unpacked(req, NULL);
    assert_string_equal(json, S_JSON);
    free(json);

    /* the node's refusal is the caller's code and message, and no document */
    json = (char *)"untouched";
    assert_int_equal(engram_acl_check(s_engram, S_DENIED_AGENT, "bob", "run:q3", 0, &json),
                     ENGRAM_EDENIED);
    assert_null(json);
    assert_string_equal(engram_last_error(s_engram), "not for you");
    engram__request__free_unpacked(s_last_request(), NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sources_go_with_writes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unread_events_are_bounded, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unsubscribe, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_a_hung_node_ends_the_subscription, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_an_idle_node_that_answers_keeps_the_subscription,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_an_answer_waiting_unread_is_heard, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_a_signal_ends_the_wait_for_events, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_a_restarted_node_ends_the_subscription, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_a_call_after_a_restart_is_answered, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_a_subscription_after_a_restart_lasts, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_a_loss_with_events_unread_is_told, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_short_waits_see_a_loss, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_a_subscription_ends_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_a_call_waiting_when_the_node_stops_fails_at_once,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_a_cut_batch_says_so, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_a_cut_connection_says_so_and_connects_anew, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_acl_calls, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_after_goes_with_reads, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_pages_gathered, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
