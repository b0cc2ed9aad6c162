/*  Tests of crdt_scope: the one join and its laws over random states, delivery-order
 *  independence, catch-up deltas (crdt_scope_delta_since) with and without pruned records,
 *  causal delivery keeping contexts plain version vectors, refusals that change nothing, and
 *  op notes travelling with their ops (joins, catch-up deltas, whole states, the codec).
 *  Random states come from tests/support/world.c; every case is replayable by its seed.
 */
#include "world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/awset.h"
#include "crdt/codec.h"
#include "crdt/mvreg.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "proto/crdt.pb-c.h"

/*  The canonical use: two replicas of one scope write, ship deltas, and converge. */
static void test_two_replicas_converge(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2);
    crdt_scope_t *d1 = NULL, *d2 = NULL;
    assert_int_equal(crdt_mvreg_write(a, "goal", 10, "draft", 5, &d1), 0);
    assert_int_equal(crdt_awset_add(b, "sources", "arxiv:2505.18279", NULL, 0, &d2), 0);
    assert_int_equal(crdt_scope_join(b, d1), 0);
    assert_int_equal(crdt_scope_join(a, d2), 0);
    assert_true(crdt_scope_equal(a, b));
    assert_int_equal(crdt_scope_digest(a), crdt_scope_digest(b));
    assert_true(crdt_awset_contains(a, "sources", "arxiv:2505.18279"));
    crdt_entry_view_t *siblings;
    size_t n;
    assert_int_equal(crdt_mvreg_read(b, "goal", &siblings, &n), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(siblings[0].data, "draft", 5);
    free(siblings);
    /* Both replicas' dots are in both contexts, with no cloud. */
    assert_int_equal(crdt_ctx_base(crdt_scope_ctx(a), 1), 1);
    assert_int_equal(crdt_ctx_base(crdt_scope_ctx(a), 2), 1);
    assert_true(crdt_ctx_is_vv(crdt_scope_ctx(a)));
    crdt_scope_destroy(&d1);
    crdt_scope_destroy(&d2);
    crdt_scope_destroy(&a);
    crdt_scope_destroy(&b);
}

/*  A world with random ops and random partial, out-of-order, duplicated delivery. */
static void s_random_world(world_t *w, prop_rng_t *rng, int nreplicas, int nops)
{
    world_init(w, rng, nreplicas, WORLD_ALL_KINDS, 3);
    for (int i = 0; i < nops; i++) {
        world_random_op(w, -1);
        if (w->nops && prop_chance(rng, 60)) {
            size_t op = prop_below(rng, w->nops);
            world_deliver(w, op, (int)prop_below(rng, (uint64_t)nreplicas));
        }
    }
}

static crdt_scope_t *s_join2(const crdt_scope_t *a, const crdt_scope_t *b)
{
    crdt_scope_t *out = crdt_scope_dup(a, 0);
    assert_non_null(out);
    PROP_CHECK(crdt_scope_join(out, b) == 0);
    PROP_CHECK(crdt_scope_digest(out) == crdt_scope_digest_recompute(out));
    return out;
}

static void test_join_laws(void **state)
{
    (void)state;
    int cases = prop_cases(2000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("join_laws", c);
        world_t w;
        s_random_world(&w, &rng, 3, 10 + (int)prop_below(&rng, 60));
        crdt_scope_t *a = w.replicas[0], *b = w.replicas[1], *x = w.replicas[2];
        /* Operands are states and deltas alike. */
        if (w.nops && prop_chance(&rng, 30))
            x = w.ops[prop_below(&rng, w.nops)].delta;

        crdt_scope_t *ab = s_join2(a, b), *ba = s_join2(b, a);
        PROP_CHECK(crdt_scope_equal(ab, ba)); /* commutative */
        crdt_scope_t *ab_x = s_join2(ab, x), *bx = s_join2(b, x), *a_bx = s_join2(a, bx);
        PROP_CHECK(crdt_scope_equal(ab_x, a_bx)); /* associative */
        crdt_scope_t *aa = s_join2(a, a);
        PROP_CHECK(crdt_scope_equal(aa, a)); /* idempotent */
        crdt_scope_t *ab_b = s_join2(ab, b);
        PROP_CHECK(crdt_scope_equal(ab_b, ab)); /* absorbs what it holds */
        /* The join is an upper bound: it holds both contexts. */
        PROP_CHECK(crdt_ctx_covers(crdt_scope_ctx(ab), crdt_scope_ctx(a)));
        PROP_CHECK(crdt_ctx_covers(crdt_scope_ctx(ab), crdt_scope_ctx(b)));

        crdt_scope_destroy(&ab);
        crdt_scope_destroy(&ba);
        crdt_scope_destroy(&ab_x);
        crdt_scope_destroy(&bx);
        crdt_scope_destroy(&a_bx);
        crdt_scope_destroy(&aa);
        crdt_scope_destroy(&ab_b);
        world_fini(&w);
    }
}

/*  Replicas that receive the same deltas in any order, with duplicates, are equal. */
static void test_delivery_order_does_not_matter(void **state)
{
    (void)state;
    int cases = prop_cases(1000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("delivery_order", c);
        world_t w;
        s_random_world(&w, &rng, 2 + (int)prop_below(&rng, 4), 20 + (int)prop_below(&rng, 80));
        world_deliver_all(&w);
        for (int r = 1; r < w.nreplicas; r++) {
            PROP_CHECK(crdt_scope_digest(w.replicas[r]) == crdt_scope_digest(w.replicas[0]));
            PROP_CHECK(crdt_scope_equal(w.replicas[r], w.replicas[0]));
        }
        /* A replica that only ever saw the deltas, in reverse order, agrees too. */
        crdt_scope_t *fresh = crdt_scope_new(world_replica_id(7));
        for (size_t i = w.nops; i-- > 0;)
            PROP_CHECK(crdt_scope_join(fresh, w.ops[i].delta) == 0);
        PROP_CHECK(crdt_scope_equal(fresh, w.replicas[0]));
        crdt_scope_destroy(&fresh);
        world_fini(&w);
    }
}

/*  Gives replica `lag` a random causally closed subset of the ops (ops are numbered in an
 *  order that extends causality, so one pass suffices). */
static void s_random_subset(world_t *w, int lag, unsigned percent)
{
    for (size_t op = 0; op < w->nops; op++)
        if (world_deliverable(w, op, lag) && prop_chance(w->rng, percent))
            world_deliver(w, op, lag);
}

static void s_check_catch_up(const crdt_scope_t *full, const crdt_scope_t *lagging)
{
    crdt_scope_t *delta = crdt_scope_delta_since(full, crdt_scope_ctx(lagging));
    PROP_CHECK(delta != NULL);
    PROP_CHECK(crdt_scope_entries(delta) <= crdt_scope_entries(full));
    crdt_scope_t *caught_up = s_join2(lagging, delta);
    PROP_CHECK(crdt_scope_equal(caught_up, full));
    crdt_scope_destroy(&caught_up);
    crdt_scope_destroy(&delta);
}

/*  "The delta for context C" brings a replica at C to the state of one that got everything. */
static void test_catch_up_delta(void **state)
{
    (void)state;
    int cases = prop_cases(1000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("catch_up", c);
        world_t w;
        world_init(&w, &rng, 4, WORLD_ALL_KINDS, 3);
        int nops = 10 + (int)prop_below(&rng, 100);
        for (int i = 0; i < nops; i++)
            world_random_op(&w, (int)prop_below(&rng, 3)); /* replica 3 never writes */
        /* Replica 0 gets everything; 3 a random subset; 1 and 2 keep what they wrote. */
        for (size_t op = 0; op < w.nops; op++)
            world_deliver(&w, op, 0);
        s_random_subset(&w, 3, (unsigned)prop_below(&rng, 101));
        crdt_scope_t *full = w.replicas[0];

        s_check_catch_up(full, w.replicas[3]);
        s_check_catch_up(full, w.replicas[1]);

        /* An up-to-date replica is sent nothing: traffic tracks what the asker misses. */
        crdt_scope_t *nothing = crdt_scope_delta_since(full, crdt_scope_ctx(full));
        PROP_CHECK(crdt_scope_entries(nothing) == 0);
        PROP_CHECK(crdt_ctx_is_empty(crdt_scope_ctx(nothing)));
        PROP_CHECK(crdt_scope_records(nothing) == 0);
        crdt_scope_destroy(&nothing);

        /* A replica that caught up from another can serve a third (records travel along). */
        crdt_scope_t *relay = crdt_scope_dup(w.replicas[3], world_replica_id(3));
        crdt_scope_t *d = crdt_scope_delta_since(full, crdt_scope_ctx(relay));
        PROP_CHECK(crdt_scope_join(relay, d) == 0);
        crdt_scope_destroy(&d);
        s_check_catch_up(relay, w.replicas[2]);
        crdt_scope_destroy(&relay);

        /* Prune at a cut the lagging replica has reached: the small delta still works. */
        crdt_ctx_t *cut = crdt_ctx_meet(crdt_scope_ctx(full), crdt_scope_ctx(w.replicas[3]));
        size_t before = crdt_scope_records(full);
        PROP_CHECK(crdt_scope_prune(full, cut) == 0);
        PROP_CHECK(crdt_scope_records(full) <= before);
        s_check_catch_up(full, w.replicas[3]);
        crdt_ctx_destroy(&cut);

        /* Prune past it: records it needs are gone, so it is sent the whole state. */
        crdt_ctx_t *all = crdt_ctx_dup(crdt_scope_ctx(full));
        PROP_CHECK(crdt_scope_prune(full, all) == 0);
        PROP_CHECK(crdt_scope_records(full) == 0);
        s_check_catch_up(full, w.replicas[3]);
        s_check_catch_up(full, w.replicas[1]);
        crdt_ctx_destroy(&all);
        world_fini(&w);
    }
}

/*  Under causal delivery a scope's context stays a plain version vector, and so it does when
 *  a replica catches up by one catch-up delta. */
static void test_causal_delivery_keeps_version_vectors(void **state)
{
    (void)state;
    int cases = prop_cases(300);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("causal_vv", c);
        world_t w;
        world_init(&w, &rng, 4, WORLD_ALL_KINDS, 2);
        int nops = 10 + (int)prop_below(&rng, 50);
        for (int i = 0; i < nops; i++) {
            world_random_op(&w, (int)prop_below(&rng, 3));
            /* Deliver a few causally ready deltas to replicas 0..2; 3 stays behind. */
            for (int k = 0; k < 3; k++) {
                size_t op = prop_below(&rng, w.nops ? w.nops : 1);
                int r = (int)prop_below(&rng, 3);
                if (w.nops && world_deliverable(&w, op, r))
                    world_deliver(&w, op, r);
                PROP_CHECK(crdt_ctx_is_vv(crdt_scope_ctx(w.replicas[r])));
            }
        }
        crdt_scope_t *behind = w.replicas[3];
        crdt_scope_t *d = crdt_scope_delta_since(w.replicas[0], crdt_scope_ctx(behind));
        PROP_CHECK(crdt_scope_join(behind, d) == 0);
        PROP_CHECK(crdt_ctx_is_vv(crdt_scope_ctx(behind)));
        crdt_scope_destroy(&d);
        world_deliver_causally(&w); /* checks is_vv after every delivery */
        for (int r = 1; r < w.nreplicas; r++)
            PROP_CHECK(crdt_scope_equal(w.replicas[r], w.replicas[0]));
        world_fini(&w);
    }
}

/*  Two replicas that share a replica id (a restore from an old snapshot that kept its id)
 *  issue one dot twice: the join refuses instead of diverging silently. */
static void test_dot_reuse_is_refused(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(5), *twin = crdt_scope_new(5), *d = NULL;
    assert_int_equal(crdt_mvreg_write(a, "k", 1, "one", 3, NULL), 0);
    assert_int_equal(crdt_mvreg_write(twin, "k", 1, "two", 3, &d), 0);
    crdt_scope_t *before = crdt_scope_dup(a, 5);
    assert_int_equal(crdt_scope_join(a, d), ENGRAM_EDOTREUSE);
    assert_true(crdt_scope_equal(a, before));
    crdt_scope_destroy(&d);
    crdt_scope_destroy(&before);
    crdt_scope_destroy(&a);
    crdt_scope_destroy(&twin);
}

/*  Bad arguments get an error code and change nothing. */
static void test_refusals_change_nothing(void **state)
{
    (void)state;
    crdt_scope_t *s = crdt_scope_new(9), *d = NULL;
    assert_int_equal(crdt_awset_add(s, "tags", "x", NULL, 0, NULL), 0);
    crdt_scope_t *before = crdt_scope_dup(s, 9);
    char long_key[ENGRAM_MAX_KEY_BYTES + 2];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    static char big[ENGRAM_MAX_ENTRY_BYTES + 1];

    assert_int_equal(crdt_mvreg_write(s, "tags", 1, "v", 1, &d), ENGRAM_ETYPE);
    assert_int_equal(crdt_mvreg_write(s, "", 1, "v", 1, &d), ENGRAM_EINVAL);
    assert_int_equal(crdt_mvreg_write(s, long_key, 1, "v", 1, &d), ENGRAM_ETOOBIG);
    assert_int_equal(crdt_mvreg_write(s, "big", 1, big, sizeof big, &d), ENGRAM_ETOOBIG);
    assert_int_equal(crdt_awset_add(s, "tags", "", NULL, 0, &d), ENGRAM_EINVAL);
    assert_int_equal(crdt_awset_remove(s, "tags", "absent", &d), ENGRAM_ENOTFOUND);
    assert_int_equal(crdt_scope_forget(s, "absent", &d), ENGRAM_ENOTFOUND);
    assert_null(d);
    assert_true(crdt_scope_equal(s, before));

    /* A delta or read-only copy (replica 0) never issues dots. */
    crdt_scope_t *ro = crdt_scope_dup(s, 0);
    assert_int_equal(crdt_awset_add(ro, "tags", "y", NULL, 0, NULL), ENGRAM_EINVAL);
    assert_true(crdt_scope_equal(ro, before));

    /* A stable cut the scope has not reached is refused. */
    crdt_ctx_t *cut = crdt_ctx_new();
    assert_int_equal(crdt_ctx_insert(cut, (crdt_dot_t){77, 1}), 0);
    assert_int_equal(crdt_scope_prune(s, cut), ENGRAM_EINVAL);
    assert_true(crdt_ctx_is_empty(crdt_scope_pruned(s)));
    crdt_ctx_destroy(&cut);
    crdt_scope_destroy(&ro);
    crdt_scope_destroy(&before);
    crdt_scope_destroy(&s);
}

/*  Concurrent creation of one key with two types keeps both objects on every replica. */
static void test_concurrent_types_coexist(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2), *da = NULL, *db = NULL;
    assert_int_equal(crdt_mvreg_write(a, "plan", 1, "v", 1, &da), 0);
    assert_int_equal(crdt_awset_add(b, "plan", "step", NULL, 0, &db), 0);
    assert_int_equal(crdt_scope_join(a, db), 0);
    assert_int_equal(crdt_scope_join(b, da), 0);
    unsigned both = (1u << CRDT_REG) | (1u << CRDT_SET);
    assert_int_equal(crdt_scope_types_of(a, "plan"), both);
    assert_true(crdt_scope_equal(a, b));
    /* Now that both exist, either type's mutators refuse on this replica... */
    assert_int_equal(crdt_awset_add(a, "plan", "other", NULL, 0, NULL), ENGRAM_ETYPE);
    /* ...until a forget removes both. */
    assert_int_equal(crdt_scope_forget(a, "plan", NULL), 0);
    assert_int_equal(crdt_scope_types_of(a, "plan"), 0);
    assert_int_equal(crdt_awset_add(a, "plan", "other", NULL, 0, NULL), 0);
    crdt_scope_destroy(&da);
    crdt_scope_destroy(&db);
    crdt_scope_destroy(&a);
    crdt_scope_destroy(&b);
}

/*  Removal records are the garbage: one per removing op, gone once below a stable cut. */
static void test_records_are_collected_at_stable_cut(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2), *d = NULL;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(crdt_mvreg_write(a, "k", (uint64_t)i, "v", 1, &d), 0);
        assert_int_equal(crdt_scope_join(b, d), 0);
        crdt_scope_destroy(&d);
    }
    /* The first write removed nothing; the nine after it each removed one value. */
    assert_int_equal(crdt_scope_records(a), 9);
    assert_int_equal(crdt_scope_records(b), 9);
    crdt_ctx_t *cut = crdt_ctx_meet(crdt_scope_ctx(a), crdt_scope_ctx(b));
    assert_int_equal(crdt_scope_prune(a, cut), 0);
    assert_int_equal(crdt_scope_records(a), 0);
    assert_int_equal(crdt_scope_entries(a), 1);
    crdt_ctx_destroy(&cut);
    crdt_scope_destroy(&a);
    crdt_scope_destroy(&b);
}

/*  Counts the notes a scope holds whose content is "step <n>" for their own dot. */
static int s_note_matches(void *arg, crdt_dot_t op, const uint8_t *data, size_t len)
{
    char want[32];
    snprintf(want, sizeof want, "step %llu", (unsigned long long)op.n);
    if (len == strlen(want) && memcmp(data, want, len) == 0)
        (*(size_t *)arg)++;
    return 0;
}

static size_t s_good_notes(const crdt_scope_t *scope)
{
    size_t good = 0;
    crdt_scope_foreach_note(scope, s_note_matches, &good);
    return good;
}

/*  An entry is found by its dot while it lives, with its object's type and key, its element
 *  and stamp, and no longer once superseded (the codec hands it to a note's wire form:
 *  codec_test.c); an empty one gives "" as its data. */
static void test_entries_by_dot(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1), *d1 = NULL, *d2 = NULL, *d3 = NULL, *d4 = NULL;
    assert_int_equal(crdt_mvreg_write(a, "goal", 1, "v1", 2, &d1), 0);
    crdt_dot_entry_t e;
    assert_true(crdt_scope_dot_entry(a, (crdt_dot_t){1, 1}, &e));
    assert_int_equal(e.type, CRDT_REG);
    assert_string_equal(e.key, "goal");
    assert_true(e.entry.node == 1 && e.entry.n == 1 && e.entry.hlc == 1);
    assert_int_equal(e.entry.len, 2);
    assert_memory_equal(e.entry.data, "v1", 2);
    assert_false(crdt_scope_dot_entry(a, (crdt_dot_t){1, 2}, &e));
    assert_int_equal(crdt_mvreg_write(a, "other", 2, "w", 1, &d2), 0);
    assert_int_equal(crdt_mvreg_write(a, "goal", 3, "v3", 2, &d3), 0);
    assert_false(crdt_scope_dot_entry(a, (crdt_dot_t){1, 1}, &e)); /* superseded */
    assert_true(crdt_scope_dot_entry(d3, (crdt_dot_t){1, 3}, &e));
    assert_true(crdt_scope_dot_entry(a, (crdt_dot_t){1, 2}, &e));
    assert_string_equal(e.key, "other");
    assert_int_equal(e.entry.len, 1);
    assert_int_equal(crdt_awset_add(a, "tags", "urgent", NULL, 0, &d4), 0);
    assert_true(crdt_scope_dot_entry(a, (crdt_dot_t){1, 4}, &e));
    assert_int_equal(e.type, CRDT_SET);
    assert_string_equal(e.key, "tags");
    assert_string_equal(e.entry.elem, "urgent");
    assert_true(e.entry.data && e.entry.len == 0);
    crdt_scope_destroy(&d1);
    crdt_scope_destroy(&d2);
    crdt_scope_destroy(&d3);
    crdt_scope_destroy(&d4);
    crdt_scope_destroy(&a);
}

/*  A note rides with its op: a replica that joins the op's delta, catches up from a replica
 *  holding it (also after the op's entry was overwritten and its records pruned), or decodes
 *  it, holds the note; a catch-up delta carries only the notes of ops the asker lacks; a dot's
 *  first note stays; notes outside the context are refused, by the API and by the decoder. */
static void test_notes_travel_with_their_ops(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2);
    for (int i = 1; i <= 3; i++) {
        crdt_scope_t *d = NULL;
        char value[16], note[32];
        snprintf(value, sizeof value, "v%d", i);
        assert_int_equal(crdt_mvreg_write(a, "goal", (uint64_t)i, value, strlen(value), &d), 0);
        snprintf(note, sizeof note, "step %d", i);
        crdt_dot_t dot = {1, (uint64_t)i};
        assert_int_equal(crdt_scope_note(d, dot, note, strlen(note)), 0);
        assert_int_equal(crdt_scope_note(d, dot, "other", 5), 0); /* the first stays */
        assert_int_equal(crdt_scope_join(a, d), 0);
        if (i == 1)
            assert_int_equal(crdt_scope_join(b, d), 0);
        crdt_scope_destroy(&d);
    }
    assert_int_equal(crdt_scope_notes(a), 3);
    assert_int_equal(s_good_notes(a), 3);
    assert_int_equal(crdt_scope_notes(b), 1);
    /* Refused: outside the context, empty, too big. */
    assert_int_equal(crdt_scope_note(a, (crdt_dot_t){1, 9}, "x", 1), ENGRAM_EINVAL);
    assert_int_equal(crdt_scope_note(a, (crdt_dot_t){1, 1}, "x", 0), ENGRAM_EINVAL);
    crdt_scope_t *fresh = crdt_scope_new(4), *d4 = NULL;
    assert_int_equal(crdt_mvreg_write(fresh, "k", 1, "v", 1, &d4), 0);
    char *huge = calloc(1, CRDT_MAX_NOTE_BYTES + 1);
    assert_non_null(huge);
    assert_int_equal(crdt_scope_note(d4, (crdt_dot_t){4, 1}, huge, CRDT_MAX_NOTE_BYTES + 1),
                     ENGRAM_EINVAL);
    assert_int_equal(crdt_scope_note(d4, (crdt_dot_t){4, 1}, huge, CRDT_MAX_NOTE_BYTES), 0);
    free(huge);
    crdt_scope_drop_notes(d4); /* a delta too big with its notes goes without */
    assert_int_equal(crdt_scope_notes(d4), 0);
    assert_int_equal(crdt_scope_entries(d4), 1);
    crdt_scope_destroy(&d4);
    crdt_scope_destroy(&fresh);
    /* Catch-up: b lacks ops 2 and 3 (op 2's entry is gone: overwritten by 3). */
    crdt_scope_t *up = crdt_scope_delta_since(a, crdt_scope_ctx(b));
    assert_non_null(up);
    assert_int_equal(crdt_scope_notes(up), 2);
    assert_int_equal(crdt_scope_join(b, up), 0);
    crdt_scope_destroy(&up);
    assert_int_equal(s_good_notes(b), 3);
    /* Pruned records: a new replica gets the whole state, notes included. */
    assert_int_equal(crdt_scope_prune(a, crdt_scope_ctx(a)), 0);
    crdt_scope_t *empty = crdt_scope_new(3);
    crdt_scope_t *whole = crdt_scope_delta_since(a, crdt_scope_ctx(empty));
    assert_int_equal(s_good_notes(whole), 3);
    /* The codec keeps them. */
    uint8_t *buf;
    size_t len;
    assert_int_equal(crdt_scope_encode(whole, &buf, &len), 0);
    crdt_scope_t *decoded = NULL;
    assert_int_equal(crdt_scope_decode(buf, len, 0, &decoded), 0);
    assert_int_equal(s_good_notes(decoded), 3);
    crdt_scope_destroy(&decoded);
    /* The decoder refuses a note whose dot is outside the context, and a dot's second note:
     * the same encoding with one note changed by hand, its valid twin decoding. */
    Engram__Scope *msg = engram__scope__unpack(NULL, len, buf);
    assert_non_null(msg);
    assert_int_equal(msg->n_notes, 3);
    uint64_t n0 = msg->notes[0]->n;
    const uint64_t bad[] = {7, msg->notes[1]->n, n0};
    const int want[] = {ENGRAM_EDECODE, ENGRAM_EDECODE, 0};
    for (size_t i = 0; i < 3; i++) {
        msg->notes[0]->n = bad[i];
        size_t size = engram__scope__get_packed_size(msg);
        uint8_t *out = malloc(size);
        engram__scope__pack(msg, out);
        decoded = (crdt_scope_t *)1;
        assert_int_equal(crdt_scope_decode(out, size, 0, &decoded), want[i]);
        if (want[i])
            assert_null(decoded);
        crdt_scope_destroy(&decoded);
        free(out);
    }
    engram__scope__free_unpacked(msg, NULL);
    free(buf);
    crdt_scope_destroy(&whole);
    crdt_scope_destroy(&empty);
    crdt_scope_destroy(&a);
    crdt_scope_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_replicas_converge),
        cmocka_unit_test(test_join_laws),
        cmocka_unit_test(test_delivery_order_does_not_matter),
        cmocka_unit_test(test_catch_up_delta),
        cmocka_unit_test(test_causal_delivery_keeps_version_vectors),
        cmocka_unit_test(test_dot_reuse_is_refused),
        cmocka_unit_test(test_refusals_change_nothing),
        cmocka_unit_test(test_concurrent_types_coexist),
        cmocka_unit_test(test_records_are_collected_at_stable_cut),
        cmocka_unit_test(test_notes_travel_with_their_ops),
        cmocka_unit_test(test_entries_by_dot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
