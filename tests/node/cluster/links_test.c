/*  Tests of node/cluster links (links.c): what a link that is not up holds, within which
 *  bounds, for how long, and that it arrives, in order, once the member takes it.
 *
 *  A bare cluster (no store, no sockets of its own: links.c uses only the fields set here)
 *  links to a member played by a CurveZMQ ROUTER of this process, on an ipc:// endpoint of
 *  the test's own directory (no port another process could hold). The test passes the
 *  clock (`now`) to every call, so LINK_HOLD_MS and RELINK_MS run out when the test says,
 *  never because the host is slow (a link's creation time, which links.c takes from the
 *  wall clock, is clamped to the `now` a call passes).
 *
 *    test_held_until_up           frames sent before the member listens arrive in order once
 *                                 it does; nothing stays held
 *    test_pushes_not_held_once_down
 *                                 a new link holds a push; once it was up and went down (the
 *                                 member stopped) it drops pushes, before or behind what it
 *                                 holds, and delivers the rest when the member is back
 *    test_held_frames_expire      what waited LINK_HOLD_MS is dropped, the count goes to zero
 *    test_hold_bounds             LINK_HOLD_FRAMES a link; large frames within one budget a
 *                                 link and LINK_HOLD_BUDGETS - 1 over all links, while small
 *                                 ones (pings, acks; LINK_HOLD_SMALL bytes and less) still
 *                                 fit; LINK_HOLD_BUDGETS in all. Each bound is filled
 *                                 exactly, so that it is off by no frame
 *    test_refused_then_admitted   a member whose ZAP handler refuses our key; once it admits
 *                                 it, the link made anew after RELINK_MS delivers what the
 *                                 refused one held
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <czmq.h>

#include "node/cluster/internal.h"

#define MEMBER_ID  7
#define WAIT_MS    10000
#define SMALL_SIZE 100
#define LARGE_SIZE (LINK_HOLD_SMALL + 1)
/*  The message budget: sixteen large frames exactly; BUDGET / FILL_SIZE frames exactly. */
#define BUDGET    (16 * LARGE_SIZE)
#define FILL_SIZE (16 * 17) /* LARGE_SIZE is 17 * 241 */

typedef struct {
    node_cluster_t cluster;
    gossip_store_t no_store;
    zcert_t *member_cert; /* the member's CURVE key pair */
    char dir[64];         /* the test's directory */
    char endpoint[96];    /* where the member listens, once it does: ipc:// in dir */
    zsock_t *member;      /* its ROUTER, NULL until it listens */
    zactor_t *auth;       /* its ZAP handler, when it has one */
    char peers_dir[96];   /* the keys its ZAP handler admits: dir/peers */
    char our_cert[128];   /* our key there, once the member admits it */
} s_fixture_t;

static int s_setup(void **state)
{
    s_fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->cluster.config.max_message_bytes = BUDGET;
    f->cluster.links = zhash_new();
    f->cluster.by_key = zhash_new();
    f->cluster.cert = zcert_new();
    gossip_config_t config = {.node_id = 1, .max_message_bytes = BUDGET, .seed = 1};
    f->cluster.engine = gossip_engine_new(&config, &f->no_store, NULL);
    f->member_cert = zcert_new();
    assert_true(f->cluster.links && f->cluster.by_key && f->cluster.cert && f->cluster.engine &&
                f->member_cert);
    snprintf(f->dir, sizeof f->dir, "/tmp/engram-links-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->endpoint, sizeof f->endpoint, "ipc://%s/member.sock", f->dir);
    snprintf(f->peers_dir, sizeof f->peers_dir, "%s/peers", f->dir);
    snprintf(f->our_cert, sizeof f->our_cert, "%s/us.cert", f->peers_dir);
    assert_int_equal(zsys_dir_create("%s", f->peers_dir), 0);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fixture_t *f = *state;
    zhash_destroy(&f->cluster.by_key);
    zhash_destroy(&f->cluster.links);
    zcert_destroy(&f->cluster.cert);
    gossip_engine_destroy(&f->cluster.engine);
    zsock_destroy(&f->member);
    zactor_destroy(&f->auth);
    zcert_destroy(&f->member_cert);
    remove(f->our_cert);
    zsys_dir_delete("%s", f->peers_dir);
    char socket[128];
    snprintf(socket, sizeof socket, "%s/member.sock", f->dir);
    remove(socket);
    zsys_dir_delete("%s", f->dir);
    free(f);
    return 0;
}

static cluster_link_t *s_link(s_fixture_t *f)
{
    char name[17];
    cluster__key_of(MEMBER_ID, name);
    return zhash_lookup(f->cluster.links, name);
}

static void s_link_to_member(s_fixture_t *f)
{
    cluster__ensure_link(&f->cluster, MEMBER_ID, f->endpoint, zcert_public_key(f->member_cert));
    assert_non_null(s_link(f));
}

/*  The member starts listening; with a ZAP handler that admits only the keys in peers_dir
 *  when `checked`, else admitting any key (libzmq without a handler). */
static void s_member_listens(s_fixture_t *f, bool checked)
{
    if (checked) {
        f->auth = zactor_new(zauth, NULL);
        assert_non_null(f->auth);
        assert_int_equal(zstr_sendx(f->auth, "CURVE", f->peers_dir, NULL), 0);
        assert_int_equal(zsock_wait(f->auth), 0);
    }
    f->member = zsock_new(ZMQ_ROUTER);
    assert_non_null(f->member);
    zcert_apply(f->member_cert, f->member);
    zsock_set_curve_server(f->member, 1);
    zsock_set_rcvtimeo(f->member, 50);
    if (zsock_bind(f->member, "%s", f->endpoint) < 0)
        fail_msg("cannot bind %s: %s", f->endpoint, zmq_strerror(zmq_errno()));
}

/*  Sends a frame of len bytes whose first byte is tag, a push or not. */
static bool s_send_as(s_fixture_t *f, size_t len, uint8_t tag, bool push, uint64_t now)
{
    uint8_t *buf = calloc(1, len);
    assert_non_null(buf);
    buf[0] = tag;
    bool ok = cluster__link_send(&f->cluster, MEMBER_ID, buf, len, push, now);
    free(buf);
    return ok;
}

static bool s_send(s_fixture_t *f, size_t len, uint8_t tag, uint64_t now)
{
    return s_send_as(f, len, tag, false, now);
}

/*  Runs the link's loop turns at `now` until the member received count frames, checking that
 *  their first bytes are first, first + 1, ... */
static void s_member_receives_from(s_fixture_t *f, uint8_t first, size_t count, uint64_t now)
{
    size_t got = 0;
    int64_t deadline = zclock_mono() + WAIT_MS;
    while (got < count && zclock_mono() < deadline) {
        cluster__relink(&f->cluster, now);
        zmsg_t *msg = zmsg_recv(f->member);
        if (!msg)
            continue;
        zframe_t *payload = zmsg_last(msg);
        assert_int_equal(zmsg_size(msg), 2); /* routing id, frame */
        assert_int_equal(zframe_data(payload)[0], (uint8_t)(first + got));
        got++;
        zmsg_destroy(&msg);
    }
    assert_int_equal(got, count);
}

/*  The same, from tag 0. */
static void s_member_receives(s_fixture_t *f, size_t count, uint64_t now)
{
    s_member_receives_from(f, 0, count, now);
}

static void test_held_until_up(void **state)
{
    s_fixture_t *f = *state;
    uint64_t now = cluster__now_ms();
    s_link_to_member(f);
    for (uint8_t i = 0; i < 3; i++)
        assert_true(s_send(f, SMALL_SIZE, i, now));
    cluster_link_t *link = s_link(f);
    assert_false(link->up);
    assert_int_equal(zlist_size(link->held), 3);
    assert_int_equal(f->cluster.held_bytes, 3 * SMALL_SIZE);

    s_member_listens(f, false);
    s_member_receives(f, 3, now);      /* within LINK_HOLD_MS of the sends: the clock stands */
    assert_ptr_equal(s_link(f), link); /* never made anew: never refused */
    assert_true(link->up);
    assert_int_equal(zlist_size(link->held), 0);
    assert_int_equal(link->held_bytes, 0);
    assert_int_equal(f->cluster.held_bytes, 0);
    /* up: a frame goes at once, nothing is held */
    assert_true(s_send(f, SMALL_SIZE, 3, now));
    assert_int_equal(zlist_size(link->held), 0);
    s_member_receives_from(f, 3, 1, now);
}

static void test_pushes_not_held_once_down(void **state)
{
    s_fixture_t *f = *state;
    uint64_t now = cluster__now_ms();
    s_link_to_member(f);
    assert_true(s_send_as(f, SMALL_SIZE, 0, true, now)); /* a new link holds a push */
    s_member_listens(f, false);
    s_member_receives(f, 1, now);
    cluster_link_t *link = s_link(f);
    assert_true(link->up);

    zsock_destroy(&f->member); /* the member goes away */
    for (int64_t end = zclock_mono() + WAIT_MS; link->up && zclock_mono() < end;) {
        cluster__relink(&f->cluster, now);
        zclock_sleep(10);
    }
    assert_false(link->up);
    /* a message from the member (its restart's first ping) makes the link anew: it still
       went down */
    uint64_t made_before = f->cluster.links_made;
    now += RELINK_MS;
    cluster__heard_from(&f->cluster, MEMBER_ID, now);
    assert_int_equal(f->cluster.links_made, made_before + 1);
    link = s_link(f);
    assert_false(s_send_as(f, SMALL_SIZE, 9, true, now)); /* a push: dropped */
    assert_true(s_send(f, SMALL_SIZE, 1, now));           /* anything else: held */
    assert_false(s_send_as(f, SMALL_SIZE, 9, true, now)); /* behind it: dropped too */
    assert_int_equal(zlist_size(link->held), 1);
    assert_int_equal(f->cluster.held_bytes, SMALL_SIZE);

    s_member_listens(f, false);                          /* back, as a restarted member */
    s_member_receives_from(f, 1, 1, now);                /* no push before it */
    assert_true(s_send_as(f, SMALL_SIZE, 2, true, now)); /* up again: a push goes at once */
    assert_int_equal(zlist_size(link->held), 0);
    s_member_receives_from(f, 2, 1, now); /* no push held behind the frame */
}

static void test_held_frames_expire(void **state)
{
    s_fixture_t *f = *state;
    uint64_t now = cluster__now_ms();
    s_link_to_member(f);
    assert_true(s_send(f, SMALL_SIZE, 0, now));
    assert_true(s_send(f, SMALL_SIZE, 1, now + LINK_HOLD_MS / 2));
    cluster_link_t *link = s_link(f);
    cluster__relink(&f->cluster, now + LINK_HOLD_MS - 1);
    assert_int_equal(zlist_size(link->held), 2); /* the first waited less than LINK_HOLD_MS */
    cluster__relink(&f->cluster, now + LINK_HOLD_MS);
    assert_int_equal(zlist_size(link->held), 0); /* all of it goes with the oldest */
    assert_int_equal(link->held_bytes, 0);
    assert_int_equal(f->cluster.held_bytes, 0);
    /* what is sent afterwards is held afresh, and goes once the member listens */
    assert_true(s_send(f, SMALL_SIZE, 0, now + LINK_HOLD_MS));
    s_member_listens(f, false);
    s_member_receives(f, 1, now + LINK_HOLD_MS);
}

/*  Drops what the link holds, as links.c would (the test's way to make room again). */
static void s_link_empty(s_fixture_t *f, cluster_link_t *link)
{
    zframe_t *frame;
    while ((frame = zlist_pop(link->held))) {
        link->held_bytes -= zframe_size(frame);
        f->cluster.held_bytes -= zframe_size(frame);
        zframe_destroy(&frame);
    }
}

static void test_hold_bounds(void **state)
{
    s_fixture_t *f = *state;
    uint64_t now = cluster__now_ms();
    s_link_to_member(f);
    cluster_link_t *link = s_link(f);
    /* large frames: one budget on this link, exactly sixteen of them */
    size_t large = 0;
    while (s_send(f, LARGE_SIZE, 0, now))
        large++;
    assert_int_equal(large, BUDGET / LARGE_SIZE);
    assert_int_equal(link->held_bytes, BUDGET);
    /* the largest small frame still fits, and small ones up to LINK_HOLD_FRAMES a link */
    assert_true(s_send(f, LINK_HOLD_SMALL, 0, now));
    size_t small = 1;
    while (s_send(f, SMALL_SIZE, 0, now))
        small++;
    assert_int_equal(zlist_size(link->held), LINK_HOLD_FRAMES);
    assert_int_equal(large + small, LINK_HOLD_FRAMES);
    assert_int_equal(f->cluster.held_bytes, link->held_bytes);
    assert_int_equal(link->held_bytes, BUDGET + LINK_HOLD_SMALL + (small - 1) * SMALL_SIZE);

    /* over all links: large frames within LINK_HOLD_BUDGETS - 1 budgets, every frame within
       LINK_HOLD_BUDGETS. This link empties; the other links' share is played by the count,
       one large frame short of the large frames' share. */
    s_link_empty(f, link);
    size_t others = (LINK_HOLD_BUDGETS - 1) * BUDGET - LARGE_SIZE;
    f->cluster.held_bytes = others;
    assert_true(s_send(f, LARGE_SIZE, 0, now));  /* the last that fits */
    assert_false(s_send(f, LARGE_SIZE, 0, now)); /* the large frames' share is full */
    size_t fill = 0;
    while (s_send(f, FILL_SIZE, 0, now))
        fill++;
    assert_int_equal(fill, BUDGET / FILL_SIZE); /* the last budget, exactly */
    assert_int_equal(f->cluster.held_bytes, LINK_HOLD_BUDGETS * BUDGET);
    f->cluster.held_bytes -= others; /* the other links' share goes with them */
}

/*  Writes our key where the member's ZAP handler looks. */
static void s_member_admits_us(s_fixture_t *f)
{
    zcert_t *public_only = zcert_new_from(zcert_public_key(f->cluster.cert), (uint8_t[32]){0});
    assert_int_equal(zcert_save_public(public_only, f->our_cert), 0);
    zcert_destroy(&public_only);
}

static void test_refused_then_admitted(void **state)
{
    s_fixture_t *f = *state;
    s_member_listens(f, true); /* admits no one yet */
    uint64_t now = cluster__now_ms();
    s_link_to_member(f);
    assert_true(s_send(f, SMALL_SIZE, 0, now));
    cluster_link_t *link = s_link(f);
    for (int64_t end = zclock_mono() + WAIT_MS; !link->refused && zclock_mono() < end;) {
        zclock_sleep(10);
        cluster__relink(&f->cluster, now); /* RELINK_MS not passed: the link stays */
        assert_ptr_equal(s_link(f), link);
    }
    assert_true(link->refused);
    assert_int_equal(zlist_size(link->held), 1);

    s_member_admits_us(f);
    /* a refused handshake is no link that went down: a push is held too (a seed's first
       pushes to a joiner that has not read its card yet) */
    assert_true(s_send_as(f, SMALL_SIZE, 1, true, now));
    /* RELINK_MS later: made anew, carrying what the refused one held */
    uint64_t made_before = f->cluster.links_made;
    uint64_t later = now + RELINK_MS;
    cluster__relink(&f->cluster, later);
    assert_int_equal(f->cluster.links_made, made_before + 1);
    /* the new link may be up within the remake itself (the ZAP handler now admits us), so
     * what it held may be gone already: only its arrival, in order, is certain */
    s_member_receives(f, 2, later);
    assert_false(s_link(f)->refused);
    assert_int_equal(f->cluster.held_bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_held_until_up, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_pushes_not_held_once_down, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_held_frames_expire, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_hold_bounds, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_refused_then_admitted, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
