/*  Tests of crdt/codec.c: the protobuf encodings of causal contexts and scopes.
 *
 *  What is checked:
 *  - round trips: random scopes built by 2-4 replicas doing every kind of operation (set
 *    adds and removes, register writes, counter adds, log appends, forgets) and exchanging
 *    their deltas out of order, with losses, anti-entropy (crdt_scope_delta_since) and
 *    pruning. Every state, every delta and every catch-up delta decodes to a scope equal to
 *    the original: same context, same entries, same digest, same prune cut, same removal
 *    records. Replicas also restart from their own encoding and carry on, and deltas travel
 *    only as bytes, so convergence at the end is a check of the codec too;
 *  - set adds carry their data (the provenance node/ puts there) and counter totals their
 *    contributor across the wire, in states, deltas and catch-up deltas;
 *  - contexts (with dot clouds) round-trip through crdt_ctx_encode/crdt_ctx_decode;
 *  - malformed input: every truncation, single and multiple bit flips, random bytes, and
 *    hand-built protobuf messages that parse but break one invariant each (bad type, key,
 *    dot, non-canonical context, entry its type forbids, duplicate object, record outside
 *    the context, newer schema). Each is refused with the specific code, leaves the out
 *    pointer NULL and leaks nothing (run under ASan or valgrind). Every hand-built case is
 *    paired with a valid twin that decodes, so a refusal is due to the one broken rule;
 *  - an input that decodes after random damage still satisfies every invariant of scope.h.
 *
 *  Randomness comes from tests/support/prop.h: failures print ENGRAM_SEED to replay them,
 *  and ENGRAM_PROP_SCALE shrinks the case counts (e.g. 0.05 under valgrind).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prop.h"

#include "crdt/awset.h"
#include "crdt/codec.h"
#include "crdt/counter.h"
#include "crdt/ctx.h"
#include "crdt/log.h"
#include "crdt/mvreg.h"
#include "crdt/scope.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "proto/crdt.pb-c.h"

/*  A non-NULL pointer decoders must overwrite with NULL on failure. */
static int s_sentinel;
#define NOT_NULL ((void *)&s_sentinel)

/*  --- checks shared by every test ---------------------------------------------------- */

static int s_dotcmp(const void *a, const void *b)
{
    const crdt_dot_t *x = a, *y = b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    return x->n < y->n ? -1 : (x->n > y->n);
}

static int s_record_cmp(const void *a, const void *b)
{
    const Engram__Record *x = *(Engram__Record *const *)a, *y = *(Engram__Record *const *)b;
    crdt_dot_t dx = {x->node, x->n}, dy = {y->node, y->n};
    return s_dotcmp(&dx, &dy);
}

/*  True when two scope encodings hold the same removal records (op -> set of removed dots).
 *  The scope API exposes only the count, so this compares what the encoder wrote. */
static bool s_same_records(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    Engram__Scope *x = engram__scope__unpack(NULL, alen, a);
    Engram__Scope *y = engram__scope__unpack(NULL, blen, b);
    bool same = x && y && x->n_records == y->n_records;
    if (same && x->n_records) {
        qsort(x->records, x->n_records, sizeof *x->records, s_record_cmp);
        qsort(y->records, y->n_records, sizeof *y->records, s_record_cmp);
    }
    for (size_t i = 0; same && i < x->n_records; i++) {
        Engram__Record *p = x->records[i], *q = y->records[i];
        same = p->node == q->node && p->n == q->n && p->n_removed == q->n_removed &&
               p->n_removed % 2 == 0;
        if (!same)
            break;
        if (p->n_removed == 0)
            continue;
        qsort(p->removed, p->n_removed / 2, sizeof(crdt_dot_t), s_dotcmp);
        qsort(q->removed, q->n_removed / 2, sizeof(crdt_dot_t), s_dotcmp);
        same = memcmp(p->removed, q->removed, p->n_removed * sizeof *p->removed) == 0;
    }
    if (x)
        engram__scope__free_unpacked(x, NULL);
    if (y)
        engram__scope__free_unpacked(y, NULL);
    return same;
}

/*  b is a faithful copy of a (b's encoding is produced here; a's is given). */
static void s_check_same_scope(const crdt_scope_t *a, const uint8_t *abuf, size_t alen,
                               const crdt_scope_t *b)
{
    PROP_CHECK(crdt_scope_equal(a, b));
    PROP_CHECK(crdt_scope_equal(b, a));
    PROP_CHECK(crdt_scope_digest(a) == crdt_scope_digest(b));
    PROP_CHECK(crdt_scope_digest(b) == crdt_scope_digest_recompute(b));
    PROP_CHECK(crdt_scope_entries(a) == crdt_scope_entries(b));
    PROP_CHECK(crdt_ctx_equal(crdt_scope_ctx(a), crdt_scope_ctx(b)));
    PROP_CHECK(crdt_ctx_equal(crdt_scope_pruned(a), crdt_scope_pruned(b)));
    PROP_CHECK(crdt_scope_records(a) == crdt_scope_records(b));
    uint8_t *bbuf = NULL;
    size_t blen = 0;
    assert_int_equal(crdt_scope_encode(b, &bbuf, &blen), 0);
    PROP_CHECK(s_same_records(abuf, alen, bbuf, blen));
    free(bbuf);
}

/*  Encodes s, decodes it as `replica`, checks the copy and returns it (caller destroys). */
static crdt_scope_t *s_roundtrip_as(const crdt_scope_t *s, uint64_t replica)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(crdt_scope_encode(s, &buf, &len), 0);
    crdt_scope_t *copy = NOT_NULL;
    int rc = crdt_scope_decode(buf, len, replica, &copy);
    if (rc != 0)
        print_error("decoding a valid encoding gave %d (%s)\n", rc, engram_strerror(rc));
    PROP_CHECK(rc == 0);
    PROP_CHECK(copy != NULL && copy != NOT_NULL);
    PROP_CHECK(crdt_scope_replica(copy) == replica);
    s_check_same_scope(s, buf, len, copy);
    free(buf);
    return copy;
}

static void s_roundtrip(const crdt_scope_t *s)
{
    crdt_scope_t *copy = s_roundtrip_as(s, crdt_scope_replica(s));
    crdt_scope_destroy(&copy);
}

static void s_ctx_roundtrip(const crdt_ctx_t *ctx)
{
    uint8_t *buf = NULL, *again = NULL;
    size_t len = 0, again_len = 0;
    assert_int_equal(crdt_ctx_encode(ctx, &buf, &len), 0);
    crdt_ctx_t *copy = NOT_NULL;
    PROP_CHECK(crdt_ctx_decode(buf, len, &copy) == 0);
    PROP_CHECK(copy != NULL && copy != NOT_NULL);
    PROP_CHECK(crdt_ctx_equal(ctx, copy));
    PROP_CHECK(crdt_ctx_count(ctx) == crdt_ctx_count(copy));
    PROP_CHECK(crdt_ctx_cloud_ranges(ctx) == crdt_ctx_cloud_ranges(copy));
    /* Canonical form: equal contexts encode to equal bytes. */
    assert_int_equal(crdt_ctx_encode(copy, &again, &again_len), 0);
    PROP_CHECK(again_len == len && memcmp(buf, again, len) == 0);
    free(again);
    free(buf);
    crdt_ctx_destroy(&copy);
}

/*  What must hold of any scope a decoder returned, whatever bytes it came from. */
static void s_check_decoded(const crdt_scope_t *s)
{
    PROP_CHECK(crdt_scope_digest(s) == crdt_scope_digest_recompute(s));
    PROP_CHECK(crdt_ctx_covers(crdt_scope_ctx(s), crdt_scope_pruned(s)));
    crdt_scope_t *again = s_roundtrip_as(s, 0);
    crdt_scope_destroy(&again);
    /* Joinable without further checks: into an empty replica and into itself. */
    crdt_scope_t *copy = crdt_scope_dup(s, 0);
    PROP_CHECK(copy != NULL && crdt_scope_equal(copy, s));
    PROP_CHECK(crdt_scope_join(copy, s) == 0);
    PROP_CHECK(crdt_scope_equal(copy, s));
    PROP_CHECK(crdt_scope_digest(copy) == crdt_scope_digest_recompute(copy));
    crdt_scope_destroy(&copy);
    /* A replica that has seen nothing catches up from it over the wire. */
    crdt_ctx_t *empty = crdt_ctx_new();
    crdt_scope_t *full = crdt_scope_delta_since(s, empty);
    PROP_CHECK(full != NULL);
    crdt_scope_t *wire = s_roundtrip_as(full, 0), *fresh = crdt_scope_new(0);
    PROP_CHECK(crdt_scope_join(fresh, wire) == 0);
    PROP_CHECK(crdt_scope_equal(fresh, s));
    crdt_scope_destroy(&fresh);
    crdt_scope_destroy(&wire);
    crdt_scope_destroy(&full);
    crdt_ctx_destroy(&empty);
}

/*  Decodes untrusted bytes as a delta and as a replica: either a specific refusal with a NULL
 *  result, or a scope that satisfies every invariant and accepts a new operation. Returns
 *  the decoder's code. */
static int s_decode_untrusted(const uint8_t *buf, size_t len)
{
    crdt_scope_t *s = NOT_NULL;
    int rc = crdt_scope_decode(buf, len, 0, &s);
    if (rc != 0) {
        PROP_CHECK(rc == ENGRAM_EDECODE || rc == ENGRAM_EVERSION);
        PROP_CHECK(s == NULL);
    } else {
        PROP_CHECK(s != NULL && s != NOT_NULL);
        s_check_decoded(s);
        crdt_scope_destroy(&s);
    }
    s = NOT_NULL;
    int rc2 = crdt_scope_decode(buf, len, 3, &s);
    PROP_CHECK(rc2 == rc);
    if (rc2 == 0) {
        crdt_scope_t *delta = NULL;
        int op = crdt_awset_add(s, "untrusted-key", "e", NULL, 0, &delta);
        PROP_CHECK(op == 0 || op == ENGRAM_ETYPE || op == ENGRAM_ERANGE);
        PROP_CHECK(crdt_scope_digest(s) == crdt_scope_digest_recompute(s));
        if (op == 0) {
            PROP_CHECK(crdt_awset_contains(s, "untrusted-key", "e"));
            s_roundtrip(delta);
        }
        crdt_scope_destroy(&delta);
    } else {
        PROP_CHECK(s == NULL);
    }
    crdt_scope_destroy(&s);
    return rc;
}

/*  Same for contexts. */
static int s_ctx_decode_untrusted(const uint8_t *buf, size_t len)
{
    crdt_ctx_t *ctx = NOT_NULL;
    int rc = crdt_ctx_decode(buf, len, &ctx);
    if (rc != 0) {
        PROP_CHECK(rc == ENGRAM_EDECODE || rc == ENGRAM_EVERSION);
        PROP_CHECK(ctx == NULL);
        return rc;
    }
    PROP_CHECK(ctx != NULL && ctx != NOT_NULL);
    s_ctx_roundtrip(ctx);
    crdt_ctx_t *dup = crdt_ctx_dup(ctx);
    PROP_CHECK(dup && crdt_ctx_equal(dup, ctx) && crdt_ctx_covers(dup, ctx));
    crdt_ctx_destroy(&dup);
    crdt_ctx_destroy(&ctx);
    return rc;
}

/*  --- canonical use ------------------------------------------------------------------ */

/*  A replica writes one object of every type, removes, forgets; its state and the delta of
 *  its last operation go to bytes and come back equal. */
static void test_canonical_use(void **state)
{
    (void)state;
    crdt_scope_t *alice = crdt_scope_new(1);
    assert_non_null(alice);
    assert_int_equal(crdt_awset_add(alice, "tags", "urgent", NULL, 0, NULL), 0);
    assert_int_equal(crdt_awset_add(alice, "tags", "draft", NULL, 0, NULL), 0);
    assert_int_equal(crdt_awset_remove(alice, "tags", "draft", NULL), 0);
    assert_int_equal(crdt_mvreg_write(alice, "title", 100, "Q3 plan", 7, NULL), 0);
    assert_int_equal(crdt_counter_add(alice, "visits", "", 5, NULL), 0);
    assert_int_equal(crdt_counter_add(alice, "visits", "", -2, NULL), 0);
    assert_int_equal(crdt_log_append(alice, "journal", 101, "started", 7, NULL), 0);
    assert_int_equal(crdt_mvreg_write(alice, "scratch", 102, "tmp", 3, NULL), 0);
    crdt_scope_t *delta = NULL;
    assert_int_equal(crdt_scope_forget(alice, "scratch", &delta), 0);

    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(crdt_scope_encode(alice, &buf, &len), 0);
    crdt_scope_t *copy = NULL;
    assert_int_equal(crdt_scope_decode(buf, len, 1, &copy), 0);
    assert_true(crdt_scope_equal(copy, alice));
    assert_int_equal(crdt_scope_digest(copy), crdt_scope_digest(alice));
    assert_true(crdt_ctx_equal(crdt_scope_ctx(copy), crdt_scope_ctx(alice)));
    assert_int_equal(crdt_scope_records(copy), crdt_scope_records(alice));
    assert_true(crdt_scope_records(copy) > 0);
    int64_t visits = 0;
    assert_int_equal(crdt_counter_value(copy, "visits", &visits), 0);
    assert_int_equal(visits, 3);
    assert_true(crdt_awset_contains(copy, "tags", "urgent"));
    assert_false(crdt_awset_contains(copy, "tags", "draft"));
    assert_int_equal(crdt_scope_types_of(copy, "scratch"), 0);
    /* The restarted replica carries on issuing dots after its last one. */
    assert_int_equal(crdt_log_append(copy, "journal", 103, "resumed", 7, NULL), 0);
    assert_int_equal(crdt_ctx_max(crdt_scope_ctx(copy), 1),
                     crdt_ctx_max(crdt_scope_ctx(alice), 1) + 1);
    free(buf);

    /* A delta travels the same way and applies to another replica. */
    assert_int_equal(crdt_scope_encode(delta, &buf, &len), 0);
    crdt_scope_t *wire = NULL;
    assert_int_equal(crdt_scope_decode(buf, len, 0, &wire), 0);
    assert_true(crdt_scope_equal(wire, delta));
    assert_int_equal(crdt_scope_records(wire), 1);
    crdt_scope_t *bob = crdt_scope_new(2);
    assert_int_equal(crdt_scope_join(bob, alice), 0);
    assert_int_equal(crdt_scope_join(bob, wire), 0);
    assert_true(crdt_scope_equal(bob, alice));
    free(buf);

    /* A context alone. */
    assert_int_equal(crdt_ctx_encode(crdt_scope_ctx(alice), &buf, &len), 0);
    crdt_ctx_t *ctx = NULL;
    assert_int_equal(crdt_ctx_decode(buf, len, &ctx), 0);
    assert_true(crdt_ctx_equal(ctx, crdt_scope_ctx(alice)));
    free(buf);

    crdt_ctx_destroy(&ctx);
    crdt_scope_destroy(&bob);
    crdt_scope_destroy(&wire);
    crdt_scope_destroy(&delta);
    crdt_scope_destroy(&copy);
    crdt_scope_destroy(&alice);
}

/*  --- random worlds: replicas exchanging deltas as bytes ----------------------------- */

#define W_MAX_REPLICAS 4
#define W_MAX_PENDING  64

typedef struct {
    uint8_t *buf;
    size_t len;
} w_msg_t;

typedef struct {
    prop_rng_t *rng;
    size_t n;
    uint64_t ids[W_MAX_REPLICAS];
    crdt_scope_t *rep[W_MAX_REPLICAS];
    w_msg_t pending[W_MAX_REPLICAS][W_MAX_PENDING]; /* encoded deltas on their way */
    size_t npending[W_MAX_REPLICAS];
    uint64_t hlc;
    size_t ops, removals, prunes;
    crdt_dot_t *removed; /* every dot any operation removed, for s_check_divergence_is_known */
    size_t nremoved, cap_removed;
} world_t;

static const char *const s_keys[] = {"k", "tags", "title", "visits", "journal", "x"};
static const char *const s_elems[] = {"a", "b", "c", "a-much-longer-element-name"};
#define NKEYS  (sizeof s_keys / sizeof *s_keys)
#define NELEMS (sizeof s_elems / sizeof *s_elems)

static void s_world_init(world_t *w, prop_rng_t *rng)
{
    memset(w, 0, sizeof *w);
    w->rng = rng;
    w->n = 2 + prop_below(rng, W_MAX_REPLICAS - 1);
    for (size_t i = 0; i < w->n; i++) {
        /* Small ids and ids that need ten varint bytes. */
        uint64_t id = prop_chance(rng, 50) ? i + 1 : (prop_next(rng) | 1) + i;
        for (size_t j = 0; j < i; j++)
            if (w->ids[j] == id)
                id = i + 1;
        w->ids[i] = id ? id : i + 1;
        w->rep[i] = crdt_scope_new(w->ids[i]);
        assert_non_null(w->rep[i]);
    }
}

/*  Decodes msg as a delta and joins it into replica r. */
static void s_world_apply(world_t *w, size_t r, const w_msg_t *msg)
{
    crdt_scope_t *delta = NULL;
    PROP_CHECK(crdt_scope_decode(msg->buf, msg->len, 0, &delta) == 0);
    PROP_CHECK(crdt_scope_join(w->rep[r], delta) == 0);
    PROP_CHECK(crdt_ctx_covers(crdt_scope_ctx(w->rep[r]), crdt_scope_ctx(delta)));
    PROP_CHECK(crdt_scope_digest(w->rep[r]) == crdt_scope_digest_recompute(w->rep[r]));
    crdt_scope_destroy(&delta);
}

static void s_world_deliver(world_t *w, size_t r, size_t index)
{
    w_msg_t msg = w->pending[r][index];
    w->pending[r][index] = w->pending[r][--w->npending[r]];
    s_world_apply(w, r, &msg);
    free(msg.buf);
}

/*  Ships a fresh delta of replica `from` to the others: lost sometimes, duplicated sometimes,
 *  always as bytes. */
static void s_world_send(world_t *w, size_t from, const crdt_scope_t *delta)
{
    for (size_t r = 0; r < w->n; r++) {
        if (r == from || prop_chance(w->rng, 15))
            continue;
        int copies = prop_chance(w->rng, 10) ? 2 : 1;
        for (int c = 0; c < copies; c++) {
            if (w->npending[r] == W_MAX_PENDING)
                s_world_deliver(w, r, prop_below(w->rng, w->npending[r]));
            w_msg_t *msg = &w->pending[r][w->npending[r]++];
            assert_int_equal(crdt_scope_encode(delta, &msg->buf, &msg->len), 0);
        }
    }
}

/*  Adds the dots the operation of this delta removed to w->removed. */
static void s_world_note_removed(world_t *w, const crdt_scope_t *delta)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(crdt_scope_encode(delta, &buf, &len), 0);
    Engram__Scope *msg = engram__scope__unpack(NULL, len, buf);
    assert_non_null(msg);
    for (size_t i = 0; i < msg->n_records; i++) {
        for (size_t d = 0; d + 1 < msg->records[i]->n_removed; d += 2) {
            if (w->nremoved == w->cap_removed) {
                w->cap_removed = w->cap_removed ? 2 * w->cap_removed : 64;
                w->removed = realloc(w->removed, w->cap_removed * sizeof *w->removed);
                assert_non_null(w->removed);
            }
            w->removed[w->nremoved++] =
                (crdt_dot_t){msg->records[i]->removed[d], msg->records[i]->removed[d + 1]};
        }
    }
    engram__scope__free_unpacked(msg, NULL);
    free(buf);
}

static void s_world_local_op(world_t *w, size_t r)
{
    crdt_scope_t *s = w->rep[r], *delta = NULL;
    const char *key = s_keys[prop_below(w->rng, NKEYS)];
    const char *elem = s_elems[prop_below(w->rng, NELEMS)];
    uint8_t data[40];
    size_t len = prop_below(w->rng, sizeof data + 1);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)prop_next(w->rng);
    uint64_t kind = prop_below(w->rng, 100);
    int rc;
    bool removes = false;
    if (kind < 22) {
        rc = crdt_awset_add(s, key, elem, data, len, &delta); /* len 0: an old add */
    } else if (kind < 34) {
        rc = crdt_awset_remove(s, key, elem, &delta);
        removes = true;
    } else if (kind < 52) {
        rc = crdt_mvreg_write(s, key, ++w->hlc, data, len, &delta);
    } else if (kind < 70) {
        const char *contributor = prop_chance(w->rng, 25) ? "" : elem;
        rc = crdt_counter_add(s, key, contributor, (int64_t)prop_below(w->rng, 201) - 100, &delta);
    } else if (kind < 88) {
        rc = crdt_log_append(s, key, ++w->hlc, data, len, &delta);
    } else {
        rc = crdt_scope_forget(s, key, &delta);
        removes = true;
    }
    PROP_CHECK(rc == 0 || rc == ENGRAM_ETYPE || rc == ENGRAM_ENOTFOUND);
    if (rc != 0)
        return;
    w->ops++;
    w->removals += removes;
    s_world_note_removed(w, delta);
    s_roundtrip(delta); /* every delta, as produced */
    s_world_send(w, r, delta);
    crdt_scope_destroy(&delta);
    if (prop_chance(w->rng, 30))
        s_roundtrip(s);
}

/*  Replica r catches up from replica from: r sends its context (an empty one when `full`, to
 *  get the whole state), from answers with crdt_scope_delta_since; both travel as bytes. */
static void s_world_anti_entropy(world_t *w, size_t r, size_t from, bool full)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    crdt_ctx_t *empty = crdt_ctx_new();
    const crdt_ctx_t *mine = full ? empty : crdt_scope_ctx(w->rep[r]);
    s_ctx_roundtrip(mine);
    assert_int_equal(crdt_ctx_encode(mine, &buf, &len), 0);
    crdt_ctx_destroy(&empty);
    crdt_ctx_t *since = NULL;
    PROP_CHECK(crdt_ctx_decode(buf, len, &since) == 0);
    free(buf);
    crdt_scope_t *delta = crdt_scope_delta_since(w->rep[from], since);
    assert_non_null(delta);
    crdt_scope_t *wire = s_roundtrip_as(delta, 0);
    PROP_CHECK(crdt_scope_join(w->rep[r], wire) == 0);
    PROP_CHECK(crdt_scope_digest(w->rep[r]) == crdt_scope_digest_recompute(w->rep[r]));
    crdt_scope_destroy(&wire);
    PROP_CHECK(crdt_ctx_covers(crdt_scope_ctx(w->rep[r]), crdt_scope_ctx(w->rep[from])));
    crdt_scope_destroy(&delta);
    crdt_ctx_destroy(&since);
}

/*  Prunes some replicas at the stable cut (the meet of every replica's context). */
static void s_world_prune(world_t *w)
{
    crdt_ctx_t *cut = crdt_ctx_dup(crdt_scope_ctx(w->rep[0]));
    assert_non_null(cut);
    for (size_t r = 1; r < w->n; r++) {
        crdt_ctx_t *meet = crdt_ctx_meet(cut, crdt_scope_ctx(w->rep[r]));
        assert_non_null(meet);
        crdt_ctx_destroy(&cut);
        cut = meet;
    }
    s_ctx_roundtrip(cut);
    for (size_t r = 0; r < w->n; r++) {
        if (prop_chance(w->rng, 30))
            continue;
        PROP_CHECK(crdt_scope_prune(w->rep[r], cut) == 0);
        PROP_CHECK(crdt_ctx_covers(crdt_scope_pruned(w->rep[r]), cut));
        s_roundtrip(w->rep[r]);
    }
    w->prunes++;
    crdt_ctx_destroy(&cut);
}

/*  Replica r restarts from its own encoding and carries on from the decoded copy. */
static void s_world_restart(world_t *w, size_t r)
{
    crdt_scope_t *copy = s_roundtrip_as(w->rep[r], w->ids[r]);
    crdt_scope_destroy(&w->rep[r]);
    w->rep[r] = copy;
}

static void s_world_step(world_t *w)
{
    size_t r = prop_below(w->rng, w->n);
    uint64_t what = prop_below(w->rng, 100);
    if (what < 55) {
        s_world_local_op(w, r);
    } else if (what < 80) {
        if (w->npending[r])
            s_world_deliver(w, r, prop_below(w->rng, w->npending[r]));
    } else if (what < 88) {
        size_t from = prop_below(w->rng, w->n);
        if (from != r)
            s_world_anti_entropy(w, r, from, false);
    } else if (what < 92) {
        s_world_prune(w);
    } else if (what < 97) {
        s_world_restart(w, r);
    } else {
        s_roundtrip(w->rep[r]);
    }
}

static size_t s_known_divergence; /* worlds that needed full states to converge */

static bool s_world_converged(const world_t *w)
{
    for (size_t r = 1; r < w->n; r++)
        if (!crdt_scope_equal(w->rep[0], w->rep[r]))
            return false;
    return true;
}

/*  After catch-up deltas the replicas hold equal contexts; every entry live at one replica and
 *  gone at another must be one that some operation removed: a removal that never reached
 *  that replica, the signature of test_catch_up_after_lost_delta. Anything else (an entry
 *  lost that nobody removed) is a new bug. */
static void s_check_divergence_is_known(const world_t *w)
{
    Engram__Scope *msg[W_MAX_REPLICAS];
    for (size_t r = 0; r < w->n; r++) {
        PROP_CHECK(crdt_ctx_equal(crdt_scope_ctx(w->rep[0]), crdt_scope_ctx(w->rep[r])));
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(crdt_scope_encode(w->rep[r], &buf, &len), 0);
        msg[r] = engram__scope__unpack(NULL, len, buf);
        assert_non_null(msg[r]);
        free(buf);
    }
    for (size_t r = 0; r < w->n; r++) {
        for (size_t o = 0; o < msg[r]->n_objects; o++) {
            for (size_t e = 0; e < msg[r]->objects[o]->n_entries; e++) {
                const Engram__Entry *entry = msg[r]->objects[o]->entries[e];
                bool everywhere = true;
                for (size_t q = 0; q < w->n && everywhere; q++) {
                    bool found = false;
                    for (size_t p = 0; p < msg[q]->n_objects && !found; p++)
                        for (size_t k = 0; k < msg[q]->objects[p]->n_entries && !found; k++)
                            found = msg[q]->objects[p]->entries[k]->node == entry->node &&
                                    msg[q]->objects[p]->entries[k]->n == entry->n;
                    everywhere = found;
                }
                bool removed = false;
                for (size_t k = 0; !everywhere && !removed && k < w->nremoved; k++)
                    removed = w->removed[k].node == entry->node && w->removed[k].n == entry->n;
                if (!everywhere && !removed)
                    print_error("replica %zu holds (%llu, %llu), gone elsewhere, and no "
                                "operation removed it\n",
                                r, (unsigned long long)entry->node, (unsigned long long)entry->n);
                PROP_CHECK(everywhere || removed);
            }
        }
    }
    for (size_t r = 0; r < w->n; r++)
        engram__scope__free_unpacked(msg[r], NULL);
}

/*  Delivers everything and runs anti-entropy until every replica holds the same state.
 *  These worlds join pushes out of causal order, which crdt_scope_delta_since's precondition
 *  rules out (scope.h; the gossip layer holds such pushes back, see
 *  test_catch_up_after_lost_delta), so catch-up deltas alone may not converge them; they
 *  then exchange whole states, which must, and the divergence must be of that one kind. */
static void s_world_settle(world_t *w)
{
    for (size_t r = 0; r < w->n; r++)
        while (w->npending[r])
            s_world_deliver(w, r, prop_below(w->rng, w->npending[r]));
    for (int round = 0; round < 2; round++)
        for (size_t r = 0; r < w->n; r++)
            for (size_t from = 0; from < w->n; from++)
                if (from != r)
                    s_world_anti_entropy(w, r, from, false);
    if (s_world_converged(w))
        return;
    s_known_divergence++;
    s_check_divergence_is_known(w);
    for (int round = 0; round < 2; round++)
        for (size_t r = 0; r < w->n; r++)
            for (size_t from = 0; from < w->n; from++)
                if (from != r)
                    s_world_anti_entropy(w, r, from, true);
    PROP_CHECK(s_world_converged(w));
}

static void s_world_fini(world_t *w)
{
    for (size_t r = 0; r < w->n; r++) {
        for (size_t i = 0; i < w->npending[r]; i++)
            free(w->pending[r][i].buf);
        crdt_scope_destroy(&w->rep[r]);
    }
    free(w->removed);
}

/*  Builds a random world of `steps` steps and returns one replica's encoded state (caller
 *  frees), for the malformed-input tests. */
static void s_random_encoding(prop_rng_t *rng, int steps, uint8_t **buf, size_t *len)
{
    world_t w;
    s_world_init(&w, rng);
    for (int i = 0; i < steps; i++)
        s_world_step(&w);
    size_t r = prop_below(rng, w.n);
    assert_int_equal(crdt_scope_encode(w.rep[r], buf, len), 0);
    s_world_fini(&w);
}

static void test_roundtrip_random_worlds(void **state)
{
    (void)state;
    int cases = prop_cases(2000);
    size_t ops = 0, removals = 0, prunes = 0, clouds = 0;
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("roundtrip_random_worlds", c);
        world_t w;
        s_world_init(&w, &rng);
        int steps = 20 + (int)prop_below(&rng, 120);
        for (int i = 0; i < steps; i++) {
            s_world_step(&w);
            for (size_t r = 0; r < w.n; r++)
                clouds += !crdt_ctx_is_vv(crdt_scope_ctx(w.rep[r]));
        }
        for (size_t r = 0; r < w.n; r++)
            s_roundtrip(w.rep[r]);
        s_world_settle(&w);
        for (size_t r = 0; r < w.n; r++)
            s_roundtrip(w.rep[r]);
        ops += w.ops;
        removals += w.removals;
        prunes += w.prunes;
        s_world_fini(&w);
    }
    print_message("worlds: %zu operations, %zu removals, %zu prunes; %zu of %d worlds needed "
                  "whole states to converge (out-of-causal-order joins)\n",
                  ops, removals, prunes, s_known_divergence, cases);
    /* The generator did reach what it is meant to cover. */
    assert_true(ops > (size_t)cases * 5);
    assert_true(removals > 0);
    assert_true(prunes > 0);
    assert_true(clouds > 0);
}

/*  Set adds carry their data (node/ puts the add's provenance there) and counter totals their
 *  contributor across the wire: in an add's delta, an increment's delta, a whole state and a
 *  catch-up delta. */
static void test_roundtrip_provenance(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2), *add = NULL, *inc = NULL;
    assert_int_equal(crdt_awset_add(a, "sources", "crm", "prov-a", 6, NULL), 0);
    assert_int_equal(crdt_awset_add(a, "sources", "old", NULL, 0, NULL), 0); /* no data */
    assert_int_equal(crdt_counter_add(a, "tokens", "ann\x1fu1", 5, NULL), 0);
    assert_int_equal(crdt_counter_add(a, "tokens", "", 2, NULL), 0);
    assert_int_equal(crdt_awset_add(b, "sources", "crm", "prov-b", 6, &add), 0);
    assert_int_equal(crdt_counter_add(b, "tokens", "bob\x1fu1", 7, &inc), 0);
    crdt_scope_t *add_wire = s_roundtrip_as(add, 0), *inc_wire = s_roundtrip_as(inc, 0);
    assert_int_equal(crdt_scope_join(a, add_wire), 0);
    assert_int_equal(crdt_scope_join(a, inc_wire), 0);

    crdt_scope_t *copy = s_roundtrip_as(a, 1);
    crdt_entry_view_t *entries = NULL;
    size_t n = 0;
    assert_int_equal(crdt_awset_entries(copy, "sources", "crm", &entries, &n), 0);
    assert_int_equal(n, 2); /* concurrent adds: both, in dot order */
    assert_int_equal(entries[0].node, 1);
    assert_int_equal(entries[0].len, 6);
    assert_memory_equal(entries[0].data, "prov-a", 6);
    assert_int_equal(entries[1].node, 2);
    assert_int_equal(entries[1].len, 6);
    assert_memory_equal(entries[1].data, "prov-b", 6);
    free(entries);
    assert_int_equal(crdt_awset_entries(copy, "sources", "old", &entries, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(entries[0].len, 0);
    free(entries);
    crdt_counter_contribution_t *shares = NULL;
    assert_int_equal(crdt_counter_contributions(copy, "tokens", &shares, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(shares[0].contributor, "");
    assert_int_equal(shares[0].total, 2);
    assert_string_equal(shares[1].contributor, "ann\x1fu1");
    assert_int_equal(shares[1].total, 5);
    assert_string_equal(shares[2].contributor, "bob\x1fu1");
    assert_int_equal(shares[2].total, 7);
    free(shares);

    /* b catches up through the wire and holds the same entries, data and contributors. */
    crdt_scope_t *catch_up = crdt_scope_delta_since(a, crdt_scope_ctx(b));
    assert_non_null(catch_up);
    crdt_scope_t *wire = s_roundtrip_as(catch_up, 0);
    assert_int_equal(crdt_scope_join(b, wire), 0);
    assert_true(crdt_scope_equal(a, b));
    assert_true(crdt_scope_equal(copy, b));

    crdt_scope_destroy(&wire);
    crdt_scope_destroy(&catch_up);
    crdt_scope_destroy(&copy);
    crdt_scope_destroy(&inc_wire);
    crdt_scope_destroy(&add_wire);
    crdt_scope_destroy(&inc);
    crdt_scope_destroy(&add);
    crdt_scope_destroy(&b);
    crdt_scope_destroy(&a);
}

static void test_roundtrip_empty(void **state)
{
    (void)state;
    crdt_scope_t *empty = crdt_scope_new(0);
    s_roundtrip(empty);
    crdt_scope_t *copy = s_roundtrip_as(empty, 42);
    assert_int_equal(crdt_scope_entries(copy), 0);
    assert_true(crdt_ctx_is_empty(crdt_scope_ctx(copy)));
    /* A decoded empty replica issues its first dot. */
    assert_int_equal(crdt_awset_add(copy, "k", "e", NULL, 0, NULL), 0);
    assert_int_equal(crdt_ctx_max(crdt_scope_ctx(copy), 42), 1);
    crdt_scope_destroy(&copy);
    crdt_scope_destroy(&empty);
    crdt_ctx_t *ctx = crdt_ctx_new();
    s_ctx_roundtrip(ctx);
    /* NULL encodes the empty context, byte for byte (a scope never written has none). */
    uint8_t *of_empty = NULL, *of_null = NULL;
    size_t empty_len = 0, null_len = 0;
    assert_int_equal(crdt_ctx_encode(ctx, &of_empty, &empty_len), 0);
    assert_int_equal(crdt_ctx_encode(NULL, &of_null, &null_len), 0);
    assert_int_equal(null_len, empty_len);
    assert_memory_equal(of_null, of_empty, empty_len);
    crdt_ctx_t *decoded = NULL;
    assert_int_equal(crdt_ctx_decode(of_null, null_len, &decoded), 0);
    assert_true(crdt_ctx_is_empty(decoded));
    crdt_ctx_destroy(&decoded);
    free(of_null);
    free(of_empty);
    crdt_ctx_destroy(&ctx);
}

/*  Deltas holding only removals: one with a dot cloud (a remove that arrives before the adds
 *  it observed) and one of a forget. */
static void test_roundtrip_removal_only_delta(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(5);
    for (int i = 0; i < 4; i++)
        assert_int_equal(crdt_awset_add(a, "s", s_elems[i], NULL, 0, NULL), 0);
    crdt_scope_t *remove = NULL, *forget = NULL;
    assert_int_equal(crdt_awset_remove(a, "s", "b", &remove), 0);
    assert_int_equal(crdt_scope_entries(remove), 0);
    assert_int_equal(crdt_scope_records(remove), 1);
    assert_false(crdt_ctx_is_vv(crdt_scope_ctx(remove)));
    s_roundtrip(remove);
    assert_int_equal(crdt_scope_forget(a, "s", &forget), 0);
    assert_int_equal(crdt_scope_entries(forget), 0);
    s_roundtrip(forget);
    crdt_scope_t *b = crdt_scope_new(6);
    assert_int_equal(crdt_scope_join(b, remove), 0);
    assert_false(crdt_ctx_is_vv(crdt_scope_ctx(b)));
    s_roundtrip(b);
    assert_int_equal(crdt_scope_join(b, forget), 0);
    s_roundtrip(b);
    assert_int_equal(crdt_scope_records(b), 2);
    crdt_scope_destroy(&b);
    crdt_scope_destroy(&forget);
    crdt_scope_destroy(&remove);
    crdt_scope_destroy(&a);
}

/*  A catch-up delta from a replica that has pruned must cross the wire like any other. (It
 *  once carried the sender's whole prune cut beside a context holding only the difference,
 *  which the decoder rightly refuses: a prune cut must lie inside the context.) */
static void test_delta_since_after_prune(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2);
    assert_int_equal(crdt_awset_add(a, "s", "x", NULL, 0, NULL), 0);
    assert_int_equal(crdt_awset_add(a, "s", "x", NULL, 0, NULL), 0); /* replaces (1,1): a record */
    assert_int_equal(crdt_scope_join(b, a), 0);
    crdt_ctx_t *cut = crdt_ctx_meet(crdt_scope_ctx(a), crdt_scope_ctx(b));
    assert_int_equal(crdt_scope_prune(a, cut), 0);
    assert_int_equal(crdt_scope_prune(b, cut), 0);
    assert_int_equal(crdt_awset_add(a, "s", "y", NULL, 0, NULL), 0);

    crdt_scope_t *delta = crdt_scope_delta_since(a, crdt_scope_ctx(b));
    assert_non_null(delta);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(crdt_scope_encode(delta, &buf, &len), 0);
    crdt_scope_t *wire = NOT_NULL;
    int rc = crdt_scope_decode(buf, len, 0, &wire);
    if (rc != 0)
        print_error("delta_since after prune: decode gave %d (%s); delta prune cut covered by "
                    "its context: %s\n",
                    rc, engram_strerror(rc),
                    crdt_ctx_covers(crdt_scope_ctx(delta), crdt_scope_pruned(delta)) ? "yes"
                                                                                     : "no");
    assert_int_equal(rc, 0);
    assert_int_equal(crdt_scope_join(b, wire), 0);
    assert_true(crdt_scope_equal(a, b));
    crdt_scope_destroy(&wire);
    free(buf);
    crdt_scope_destroy(&delta);
    crdt_ctx_destroy(&cut);
    crdt_scope_destroy(&b);
    crdt_scope_destroy(&a);
}

/*  A state every replica can reach by joining valid deltas must encode and decode. Here node
 *  1's counter total is forgotten by node 2, node 1 (having seen the forget) starts a new
 *  total, and node 3 receives the new total before the forget: it holds two totals of node 1
 *  until the forget arrives. (The decoder once refused counters with two totals of one node,
 *  so node 3 could neither persist nor ship its state.) */
static void test_counter_two_totals_after_forget(void **state)
{
    (void)state;
    crdt_scope_t *n1 = crdt_scope_new(1), *n2 = crdt_scope_new(2), *n3 = crdt_scope_new(3);
    crdt_scope_t *first = NULL, *forget = NULL, *second = NULL;
    assert_int_equal(crdt_counter_add(n1, "c", "", 5, &first), 0);
    assert_int_equal(crdt_scope_join(n2, first), 0);
    assert_int_equal(crdt_scope_join(n3, first), 0);
    assert_int_equal(crdt_scope_forget(n2, "c", &forget), 0);
    assert_int_equal(crdt_scope_join(n1, forget), 0);
    assert_int_equal(crdt_counter_add(n1, "c", "", 7, &second), 0);
    assert_int_equal(crdt_scope_join(n3, second), 0); /* the forget is still on its way */
    assert_int_equal(crdt_scope_entries(n3), 2);

    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(crdt_scope_encode(n3, &buf, &len), 0);
    crdt_scope_t *copy = NOT_NULL;
    int rc = crdt_scope_decode(buf, len, 3, &copy);
    if (rc != 0)
        print_error("a reachable counter state: decode gave %d (%s)\n", rc, engram_strerror(rc));
    assert_int_equal(rc, 0);
    assert_true(crdt_scope_equal(copy, n3));
    /* Once the forget arrives, everyone agrees on node 1's new total. */
    assert_int_equal(crdt_scope_join(copy, forget), 0);
    int64_t value = 0;
    assert_int_equal(crdt_counter_value(copy, "c", &value), 0);
    assert_int_equal(value, 7);
    crdt_scope_destroy(&copy);
    free(buf);
    crdt_scope_destroy(&second);
    crdt_scope_destroy(&forget);
    crdt_scope_destroy(&first);
    crdt_scope_destroy(&n3);
    crdt_scope_destroy(&n2);
    crdt_scope_destroy(&n1);
}

/*  Replica 1 sees node 2's first add of "e" and misses the re-add that replaced it. The
 *  remove of the re-add depends on the re-add (its context holds the re-add's dot), so a
 *  replica that applies deltas in causal order, as the gossip layer does and as
 *  crdt_scope_delta_since requires of the asker, must hold it back; anti-entropy then brings
 *  replica 1 to node 2's state through the wire, removal of (2, 1) included. (Joining the
 *  remove anyway would put the re-add's dot in replica 1's context without its removal, the
 *  state scope.h's precondition rules out.) */
static void test_catch_up_after_lost_delta(void **state)
{
    (void)state;
    crdt_scope_t *n2 = crdt_scope_new(2), *n1 = crdt_scope_new(1);
    crdt_scope_t *add = NULL, *readd = NULL, *remove = NULL;
    crdt_ctx_t *remove_deps = NULL;
    assert_int_equal(crdt_awset_add(n2, "s", "e", NULL, 0, &add), 0);   /* (2,1) */
    assert_int_equal(crdt_awset_add(n2, "s", "e", NULL, 0, &readd), 0); /* (2,2) removes (2,1) */
    remove_deps = crdt_ctx_dup(crdt_scope_ctx(n2));
    assert_int_equal(crdt_awset_remove(n2, "s", "e", &remove), 0); /* (2,3) removes (2,2) */
    assert_false(crdt_awset_contains(n2, "s", "e"));
    assert_int_equal(crdt_scope_join(n1, add), 0);
    /* `readd` is lost: the remove's dependencies are not met, so it is held back. */
    assert_false(crdt_ctx_covers(crdt_scope_ctx(n1), remove_deps));

    /* Anti-entropy: n1 asks n2 for what it lacks, over the wire. */
    crdt_scope_t *catch_up = crdt_scope_delta_since(n2, crdt_scope_ctx(n1));
    assert_non_null(catch_up);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(crdt_scope_encode(catch_up, &buf, &len), 0);
    crdt_scope_t *wire = NULL;
    assert_int_equal(crdt_scope_decode(buf, len, 0, &wire), 0);
    free(buf);
    assert_int_equal(crdt_scope_join(n1, wire), 0);
    assert_false(crdt_awset_contains(n1, "s", "e"));
    assert_true(crdt_scope_equal(n1, n2));
    assert_true(crdt_ctx_is_vv(crdt_scope_ctx(n1)));
    /* The held-back remove, delivered late, changes nothing. */
    assert_int_equal(crdt_scope_join(n1, remove), 0);
    assert_true(crdt_scope_equal(n1, n2));

    crdt_ctx_destroy(&remove_deps);
    crdt_scope_destroy(&wire);
    crdt_scope_destroy(&catch_up);
    crdt_scope_destroy(&remove);
    crdt_scope_destroy(&readd);
    crdt_scope_destroy(&add);
    crdt_scope_destroy(&n1);
    crdt_scope_destroy(&n2);
}

/*  --- contexts ---------------------------------------------------------------------- */

static void test_ctx_roundtrip_random(void **state)
{
    (void)state;
    int cases = prop_cases(20000);
    size_t with_cloud = 0;
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("ctx_roundtrip_random", c);
        crdt_ctx_t *ctx = crdt_ctx_new();
        int inserts = (int)prop_below(&rng, 40);
        for (int i = 0; i < inserts; i++) {
            uint64_t node = prop_chance(&rng, 70) ? 1 + prop_below(&rng, 5) : prop_next(&rng);
            if (node == 0)
                node = 1;
            uint64_t lo, hi;
            if (prop_chance(&rng, 10)) { /* near the top of the dot space */
                hi = CRDT_DOT_MAX - prop_below(&rng, 3);
                lo = hi - prop_below(&rng, 5);
            } else {
                lo = 1 + prop_below(&rng, 60);
                hi = lo + prop_below(&rng, 4);
            }
            assert_int_equal(crdt_ctx_insert_range(ctx, node, lo, hi), 0);
        }
        with_cloud += !crdt_ctx_is_vv(ctx);
        s_ctx_roundtrip(ctx);
        crdt_ctx_destroy(&ctx);
    }
    assert_true(with_cloud > (size_t)cases / 4);
}

static void test_ctx_roundtrip_edges(void **state)
{
    (void)state;
    crdt_ctx_t *ctx = crdt_ctx_new();
    assert_int_equal(crdt_ctx_insert_range(ctx, 1, 1, CRDT_DOT_MAX), 0);
    assert_int_equal(crdt_ctx_insert_range(ctx, UINT64_MAX, CRDT_DOT_MAX, CRDT_DOT_MAX), 0);
    assert_int_equal(crdt_ctx_insert_range(ctx, 7, 3, 3), 0);
    assert_int_equal(crdt_ctx_insert_range(ctx, 7, 5, 9), 0);
    s_ctx_roundtrip(ctx);
    crdt_ctx_destroy(&ctx);
}

/*  --- damaged encodings ------------------------------------------------------------- */

static void test_truncations(void **state)
{
    (void)state;
    int cases = prop_cases(40);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("truncations", c);
        uint8_t *buf = NULL;
        size_t len = 0;
        s_random_encoding(&rng, 10 + (int)prop_below(&rng, 60), &buf, &len);
        /* A scope always ends with its prune cut: no proper prefix is a valid scope. */
        for (size_t cut = 0; cut < len; cut++) {
            crdt_scope_t *s = NOT_NULL;
            uint8_t *prefix = malloc(cut ? cut : 1);
            memcpy(prefix, buf, cut);
            PROP_CHECK(crdt_scope_decode(prefix, cut, 0, &s) == ENGRAM_EDECODE);
            PROP_CHECK(s == NULL);
            free(prefix);
        }
        /* A context's prefix may end between nodes: then it is a valid smaller context. */
        crdt_scope_t *full = NULL;
        PROP_CHECK(crdt_scope_decode(buf, len, 0, &full) == 0);
        uint8_t *cbuf = NULL;
        size_t clen = 0;
        assert_int_equal(crdt_ctx_encode(crdt_scope_ctx(full), &cbuf, &clen), 0);
        for (size_t cut = 0; cut < clen; cut++) {
            uint8_t *prefix = malloc(cut ? cut : 1);
            memcpy(prefix, cbuf, cut);
            crdt_ctx_t *ctx = NOT_NULL;
            int rc = crdt_ctx_decode(prefix, cut, &ctx);
            if (rc == 0) {
                PROP_CHECK(crdt_ctx_covers(crdt_scope_ctx(full), ctx));
                PROP_CHECK(!crdt_ctx_equal(crdt_scope_ctx(full), ctx));
                s_ctx_roundtrip(ctx);
            } else {
                PROP_CHECK(rc == ENGRAM_EDECODE);
                PROP_CHECK(ctx == NULL);
            }
            crdt_ctx_destroy(&ctx);
            free(prefix);
        }
        free(cbuf);
        crdt_scope_destroy(&full);
        free(buf);
    }
}

static void test_single_bit_flips(void **state)
{
    (void)state;
    int cases = prop_cases(20);
    size_t accepted = 0, refused = 0;
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("single_bit_flips", c);
        uint8_t *buf = NULL;
        size_t len = 0;
        s_random_encoding(&rng, 10 + (int)prop_below(&rng, 50), &buf, &len);
        size_t bits = len * 8, flips = (size_t)prop_cases(20000);
        for (size_t f = 0; f < bits && f < flips; f++) {
            size_t bit = flips >= bits ? f : prop_below(&rng, bits);
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            int rc = s_decode_untrusted(buf, len);
            accepted += rc == 0;
            refused += rc != 0;
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        free(buf);
    }
    /* Flips in hlc or value bytes are harmless, flips in tags and dots are not. */
    assert_true(accepted > 0);
    assert_true(refused > 0);
}

static void test_multi_bit_flips(void **state)
{
    (void)state;
    int cases = prop_cases(20000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("multi_bit_flips", c);
        uint8_t *buf = NULL;
        size_t len = 0;
        s_random_encoding(&rng, 5 + (int)prop_below(&rng, 20), &buf, &len);
        int flips = 2 + (int)prop_below(&rng, 8);
        for (int f = 0; f < flips; f++) {
            size_t bit = prop_below(&rng, len * 8);
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        s_decode_untrusted(buf, len);
        free(buf);
    }
}

static void test_ctx_bit_flips(void **state)
{
    (void)state;
    int cases = prop_cases(1000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("ctx_bit_flips", c);
        crdt_ctx_t *ctx = crdt_ctx_new();
        for (int i = 0; i < 12; i++) {
            uint64_t lo = 1 + prop_below(&rng, 30);
            assert_int_equal(
                crdt_ctx_insert_range(ctx, 1 + prop_below(&rng, 4), lo, lo + prop_below(&rng, 3)),
                0);
        }
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(crdt_ctx_encode(ctx, &buf, &len), 0);
        for (size_t bit = 0; bit < len * 8; bit++) {
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            s_ctx_decode_untrusted(buf, len);
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        free(buf);
        crdt_ctx_destroy(&ctx);
    }
}

static void test_random_bytes(void **state)
{
    (void)state;
    int cases = prop_cases(200000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("random_bytes", c);
        uint8_t buf[96];
        size_t len = prop_below(&rng, sizeof buf + 1);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)prop_next(&rng);
        /* Half of the inputs start like a scope (schema_major 1, then a ctx field) so the
         * decoder gets past the first field more often. */
        if (len >= 4 && prop_chance(&rng, 50)) {
            buf[0] = 0x08;
            buf[1] = 0x01;
            buf[2] = 0x1a;
            buf[3] = (uint8_t)prop_below(&rng, (uint64_t)(len - 3));
        }
        s_decode_untrusted(buf, len);
        s_ctx_decode_untrusted(buf, len);
    }
}

/*  --- hand-built messages ----------------------------------------------------------- */

/*  A Context message under construction; up to 4 nodes of up to 3 cloud ranges. */
typedef struct {
    Engram__Context msg;
    Engram__CtxNode node[5];
    Engram__CtxNode *node_p[5];
    uint64_t cloud[5][8];
} ctxb_t;

static void ctxb_init(ctxb_t *b)
{
    memset(b, 0, sizeof *b);
    engram__context__init(&b->msg);
    b->msg.schema_major = ENGRAM_SCHEMA_MAJOR;
    b->msg.schema_minor = ENGRAM_SCHEMA_MINOR;
    b->msg.nodes = b->node_p;
}

/*  Appends a node; cloud is a flat (lo, hi, ...) list of ncloud numbers (odd on purpose in
 *  one test). */
static void ctxb_node(ctxb_t *b, uint64_t node, uint64_t vv, const uint64_t *cloud, size_t ncloud)
{
    size_t i = b->msg.n_nodes++;
    assert_true(i < 5 && ncloud <= 8);
    engram__ctx_node__init(&b->node[i]);
    b->node[i].node = node;
    b->node[i].vv = vv;
    if (ncloud)
        memcpy(b->cloud[i], cloud, ncloud * sizeof *cloud);
    b->node[i].cloud = b->cloud[i];
    b->node[i].n_cloud = ncloud;
    b->node_p[i] = &b->node[i];
}

#define CLOUD(...) (const uint64_t[]){__VA_ARGS__}, sizeof((const uint64_t[]){__VA_ARGS__}) / 8

/*  The baseline context: node 1 holds 1..5, node 2 holds 1..2 and 5..6. */
static void ctxb_baseline(ctxb_t *b)
{
    ctxb_init(b);
    ctxb_node(b, 1, 5, NULL, 0);
    ctxb_node(b, 2, 2, CLOUD(5, 6));
}

/*  A Scope message under construction. */
#define M_OBJECTS 8
#define M_ENTRIES 4
#define M_RECORDS 3

typedef struct {
    Engram__Scope msg;
    ctxb_t ctx, pruned;
    Engram__Object obj[M_OBJECTS];
    Engram__Object *obj_p[M_OBJECTS];
    Engram__Entry ent[M_OBJECTS][M_ENTRIES];
    Engram__Entry *ent_p[M_OBJECTS][M_ENTRIES];
    Engram__Record rec[M_RECORDS];
    Engram__Record *rec_p[M_RECORDS];
    uint64_t removed[M_RECORDS][8];
} msgb_t;

static uint8_t s_total_5[8] = {5, 0, 0, 0, 0, 0, 0, 0};
static uint8_t s_total_minus_3[8] = {0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static ProtobufCBinaryData s_bytes(const void *data, size_t len)
{
    return (ProtobufCBinaryData){.len = len, .data = (uint8_t *)(uintptr_t)data};
}

static ProtobufCBinaryData s_str(const char *text)
{
    return s_bytes(text, strlen(text));
}

static size_t msgb_object(msgb_t *m, unsigned type, ProtobufCBinaryData key)
{
    size_t i = m->msg.n_objects++;
    assert_true(i < M_OBJECTS);
    engram__object__init(&m->obj[i]);
    m->obj[i].type = type;
    m->obj[i].key = key;
    m->obj[i].entries = m->ent_p[i];
    m->obj_p[i] = &m->obj[i];
    return i;
}

static Engram__Entry *msgb_entry(msgb_t *m, size_t object, ProtobufCBinaryData elem, uint64_t node,
                                 uint64_t n, uint64_t hlc, ProtobufCBinaryData data)
{
    size_t i = m->obj[object].n_entries++;
    assert_true(i < M_ENTRIES);
    Engram__Entry *e = &m->ent[object][i];
    engram__entry__init(e);
    e->elem = elem;
    e->node = node;
    e->n = n;
    e->hlc = hlc;
    e->data = data;
    m->ent_p[object][i] = e;
    return e;
}

static Engram__Record *msgb_record(msgb_t *m, uint64_t node, uint64_t n, const uint64_t *removed,
                                   size_t nremoved)
{
    size_t i = m->msg.n_records++;
    assert_true(i < M_RECORDS && nremoved <= 8);
    Engram__Record *r = &m->rec[i];
    engram__record__init(r);
    r->node = node;
    r->n = n;
    if (nremoved)
        memcpy(m->removed[i], removed, nremoved * sizeof *removed);
    r->removed = m->removed[i];
    r->n_removed = nremoved;
    m->rec_p[i] = r;
    return r;
}

/*  Object indexes of the baseline. */
enum { B_REG, B_SET, B_COUNTER, B_LOG };

/*  A valid scope with every type: context ctxb_baseline, prune cut node 1 up to 2;
 *  reg "reg" siblings (1,1) and (2,5); set "set" {a: (1,2), b: (2,1)}; counter "ctr" totals 5
 *  from (1,3) and -3 from (2,2); log "log" one entry (2,6); a record: op (1,5) removed (1,4). */
static void msgb_baseline(msgb_t *m)
{
    memset(m, 0, sizeof *m);
    engram__scope__init(&m->msg);
    m->msg.schema_major = ENGRAM_SCHEMA_MAJOR;
    m->msg.schema_minor = ENGRAM_SCHEMA_MINOR;
    ctxb_baseline(&m->ctx);
    ctxb_init(&m->pruned);
    ctxb_node(&m->pruned, 1, 2, NULL, 0);
    m->msg.ctx = &m->ctx.msg;
    m->msg.pruned = &m->pruned.msg;
    m->msg.objects = m->obj_p;
    m->msg.records = m->rec_p;
    size_t reg = msgb_object(m, CRDT_REG, s_str("reg"));
    msgb_entry(m, reg, s_str(""), 1, 1, 100, s_str("v1"));
    msgb_entry(m, reg, s_str(""), 2, 5, 101, s_str("v2"));
    size_t set = msgb_object(m, CRDT_SET, s_str("set"));
    msgb_entry(m, set, s_str("a"), 1, 2, 0, s_str(""));
    msgb_entry(m, set, s_str("b"), 2, 1, 0, s_str(""));
    size_t ctr = msgb_object(m, CRDT_COUNTER, s_str("ctr"));
    msgb_entry(m, ctr, s_str(""), 1, 3, 0, s_bytes(s_total_5, 8));
    msgb_entry(m, ctr, s_str(""), 2, 2, 0, s_bytes(s_total_minus_3, 8));
    size_t log = msgb_object(m, CRDT_LOG, s_str("log"));
    msgb_entry(m, log, s_str(""), 2, 6, 7, s_str("line"));
    msgb_record(m, 1, 5, CLOUD(1, 4));
    assert_int_equal(reg, B_REG);
    assert_int_equal(set, B_SET);
    assert_int_equal(ctr, B_COUNTER);
    assert_int_equal(log, B_LOG);
}

static void s_pack(const ProtobufCMessage *msg, uint8_t **buf, size_t *len)
{
    size_t size = protobuf_c_message_get_packed_size(msg);
    *buf = malloc(size ? size : 1);
    assert_non_null(*buf);
    *len = protobuf_c_message_pack(msg, *buf);
    assert_int_equal(*len, size);
}

/*  Packs m and decodes it as a delta and as a replica; both give `expected`. A successful
 *  decode must satisfy every invariant. */
static void s_expect_scope(const msgb_t *m, int expected)
{
    uint8_t *buf;
    size_t len;
    s_pack(&m->msg.base, &buf, &len);
    crdt_scope_t *s = NOT_NULL;
    int rc = crdt_scope_decode(buf, len, 0, &s);
    if (rc != expected)
        print_error("crdt_scope_decode gave %d (%s), expected %d (%s)\n", rc, engram_strerror(rc),
                    expected, engram_strerror(expected));
    assert_int_equal(rc, expected);
    if (expected == 0) {
        assert_true(s != NULL && s != NOT_NULL);
        s_check_decoded(s);
        crdt_scope_destroy(&s);
    } else {
        assert_null(s);
    }
    s = NOT_NULL;
    assert_int_equal(crdt_scope_decode(buf, len, 1, &s), expected);
    if (expected)
        assert_null(s);
    crdt_scope_destroy(&s);
    free(buf);
}

static void s_expect_ctx(const ctxb_t *b, int expected)
{
    uint8_t *buf;
    size_t len;
    s_pack(&b->msg.base, &buf, &len);
    crdt_ctx_t *ctx = NOT_NULL;
    int rc = crdt_ctx_decode(buf, len, &ctx);
    if (rc != expected)
        print_error("crdt_ctx_decode gave %d (%s), expected %d (%s)\n", rc, engram_strerror(rc),
                    expected, engram_strerror(expected));
    assert_int_equal(rc, expected);
    if (expected == 0) {
        assert_true(ctx != NULL && ctx != NOT_NULL);
        s_ctx_roundtrip(ctx);
    } else {
        assert_null(ctx);
    }
    crdt_ctx_destroy(&ctx);
    free(buf);
}

/*  The baseline is valid and means what it says, so each test below breaks one rule. */
static void test_handbuilt_baseline(void **state)
{
    (void)state;
    msgb_t m;
    msgb_baseline(&m);
    s_expect_scope(&m, 0);
    s_expect_ctx(&m.ctx, 0);

    uint8_t *buf;
    size_t len;
    s_pack(&m.msg.base, &buf, &len);
    crdt_scope_t *s = NULL;
    assert_int_equal(crdt_scope_decode(buf, len, 2, &s), 0);
    free(buf);
    assert_int_equal(crdt_scope_entries(s), 7);
    assert_int_equal(crdt_scope_records(s), 1);
    assert_int_equal(crdt_ctx_count(crdt_scope_ctx(s)), 9);
    assert_int_equal(crdt_ctx_cloud_ranges(crdt_scope_ctx(s)), 1);
    assert_int_equal(crdt_ctx_base(crdt_scope_pruned(s), 1), 2);
    int64_t total = 0;
    assert_int_equal(crdt_counter_value(s, "ctr", &total), 0);
    assert_int_equal(total, 2);
    crdt_entry_view_t *views = NULL;
    size_t n = 0;
    assert_int_equal(crdt_mvreg_read(s, "reg", &views, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(views[0].hlc, 101);
    assert_memory_equal(views[0].data, "v2", 2);
    free(views);
    assert_int_equal(crdt_log_range(s, "log", &views, &n), 0);
    assert_int_equal(n, 1);
    free(views);
    assert_true(crdt_awset_contains(s, "set", "a") && crdt_awset_contains(s, "set", "b"));
    /* Replica 2 issues (2, 7), after the top of its cloud. */
    assert_int_equal(crdt_counter_add(s, "ctr", "", 1, NULL), 0);
    assert_int_equal(crdt_ctx_max(crdt_scope_ctx(s), 2), 7);
    assert_int_equal(crdt_counter_value(s, "ctr", &total), 0);
    assert_int_equal(total, 3);
    crdt_scope_destroy(&s);

    /* Valid variations: boundaries and things a newer minor may carry. */
    msgb_baseline(&m);
    m.msg.schema_minor = 99;
    m.ctx.msg.schema_minor = 99;
    s_expect_scope(&m, 0);
    msgb_baseline(&m);
    msgb_object(&m, CRDT_SET, s_str("reg")); /* one key, two types: both objects exist */
    msgb_entry(&m, 4, s_str("z"), 1, 4, 0, s_str(""));
    s_expect_scope(&m, 0);
    msgb_baseline(&m);
    m.msg.n_records = 0;
    ctxb_baseline(&m.pruned); /* prune cut equal to the context */
    s_expect_scope(&m, 0);
    msgb_baseline(&m);
    ctxb_init(&m.pruned); /* empty prune cut */
    s_expect_scope(&m, 0);
}

/*  --- malformed: objects and entries ---------------------------------------------- */

static void test_malformed_type_id(void **state)
{
    (void)state;
    const unsigned bad[] = {0, CRDT_TYPE_MAX + 1, 99, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        msgb_t m;
        msgb_baseline(&m);
        m.obj[B_LOG].type = bad[i];
        s_expect_scope(&m, ENGRAM_EDECODE);
    }
}

static void test_malformed_keys(void **state)
{
    (void)state;
    static char big[ENGRAM_MAX_KEY_BYTES + 1];
    memset(big, 'k', sizeof big);
    msgb_t m;

    msgb_baseline(&m);
    m.obj[B_REG].key = s_str("");
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    m.obj[B_SET].key = s_bytes("a\0b", 3);
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    m.obj[B_SET].key = s_bytes("set\0", 4);
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    m.obj[B_COUNTER].key = s_bytes(big, ENGRAM_MAX_KEY_BYTES + 1);
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    m.obj[B_COUNTER].key = s_bytes(big, ENGRAM_MAX_KEY_BYTES); /* the largest allowed */
    s_expect_scope(&m, 0);

    /* Set elements obey the same rules. */
    msgb_baseline(&m);
    m.ent[B_SET][0].elem = s_bytes(big, ENGRAM_MAX_KEY_BYTES + 1);
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    m.ent[B_SET][0].elem = s_bytes(big, ENGRAM_MAX_KEY_BYTES);
    s_expect_scope(&m, 0);
    msgb_baseline(&m);
    m.ent[B_SET][0].elem = s_bytes("a\0", 2);
    s_expect_scope(&m, ENGRAM_EDECODE);
}

static void test_malformed_entry_dots(void **state)
{
    (void)state;
    /* (node, n) pairs each placed on the log entry (2, 6). */
    const crdt_dot_t bad[] = {
        {1, 6},                   /* past node 1's base */
        {2, 3},                   /* in node 2's gap */
        {2, 7},                   /* past node 2's cloud */
        {3, 1},                   /* a node the context lacks */
        {1, 0},                   /* n = 0 */
        {0, 1},                   /* node = 0 */
        {2, CRDT_DOT_MAX + 1},    /* n past the dot space */
        {UINT64_MAX, UINT64_MAX}, /* both */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        msgb_t m;
        msgb_baseline(&m);
        m.ent[B_LOG][0].node = bad[i].node;
        m.ent[B_LOG][0].n = bad[i].n;
        s_expect_scope(&m, ENGRAM_EDECODE);
    }

    /* n up to CRDT_DOT_MAX is fine when the context holds it, one past is not. */
    msgb_t m;
    msgb_baseline(&m);
    ctxb_node(&m.ctx, 3, 0, CLOUD(CRDT_DOT_MAX - 1, CRDT_DOT_MAX));
    m.ent[B_LOG][0].node = 3;
    m.ent[B_LOG][0].n = CRDT_DOT_MAX;
    s_expect_scope(&m, 0);
    m.ent[B_LOG][0].n = CRDT_DOT_MAX + 1;
    s_expect_scope(&m, ENGRAM_EDECODE);
}

static void test_malformed_dot_twice(void **state)
{
    (void)state;
    msgb_t m;
    /* Across objects: the set's (1, 2) also labels the register's first value. */
    msgb_baseline(&m);
    m.ent[B_REG][0].n = 2;
    s_expect_scope(&m, ENGRAM_EDECODE);
    /* Twice in one register, identical content. */
    msgb_baseline(&m);
    msgb_entry(&m, B_LOG, s_str(""), 2, 6, 7, s_str("line"));
    s_expect_scope(&m, ENGRAM_EDECODE);
    /* Two set elements, one dot. */
    msgb_baseline(&m);
    m.ent[B_SET][1].node = 1;
    m.ent[B_SET][1].n = 2;
    s_expect_scope(&m, ENGRAM_EDECODE);
    /* One element twice with one dot. */
    msgb_baseline(&m);
    msgb_entry(&m, B_SET, s_str("a"), 1, 2, 0, s_str(""));
    s_expect_scope(&m, ENGRAM_EDECODE);
    /* Same dot in two objects of one key, different types. */
    msgb_baseline(&m);
    size_t o = msgb_object(&m, CRDT_SET, s_str("log"));
    msgb_entry(&m, o, s_str("e"), 2, 6, 0, s_str(""));
    s_expect_scope(&m, ENGRAM_EDECODE);
}

static void test_malformed_entries_by_type(void **state)
{
    (void)state;
    msgb_t m;
    /* A set entry is a non-empty element with the add's data, if any (opaque here). */
    msgb_baseline(&m);
    m.ent[B_SET][0].data = s_str("x");
    s_expect_scope(&m, 0);
    msgb_baseline(&m);
    m.ent[B_SET][1].elem = s_str("");
    s_expect_scope(&m, ENGRAM_EDECODE);
    /* A counter total's element is its contributor: any name, "" included. */
    msgb_baseline(&m);
    m.ent[B_COUNTER][0].elem = s_str("e");
    s_expect_scope(&m, 0);
    msgb_baseline(&m);
    m.ent[B_COUNTER][0].elem = s_str("agent\x1fuser");
    m.ent[B_COUNTER][1].elem = s_str("agent\x1fuser");
    s_expect_scope(&m, 0);
    /* Registers and logs keep their values under the empty element. */
    msgb_baseline(&m);
    m.ent[B_REG][1].elem = s_str("e");
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    m.ent[B_LOG][0].elem = s_str("e");
    s_expect_scope(&m, ENGRAM_EDECODE);
    /* Entry size limit: a value plus its header; set data obeys it too. */
    uint8_t *huge = calloc(1, ENGRAM_MAX_ENTRY_BYTES + 1);
    assert_non_null(huge);
    msgb_baseline(&m);
    m.ent[B_REG][0].data = s_bytes(huge, ENGRAM_MAX_ENTRY_BYTES + 1);
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    m.ent[B_LOG][0].data = s_bytes(huge, ENGRAM_MAX_ENTRY_BYTES + 1);
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    m.ent[B_SET][0].data = s_bytes(huge, ENGRAM_MAX_ENTRY_BYTES + 1);
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    m.ent[B_REG][0].data = s_bytes(huge, ENGRAM_MAX_ENTRY_BYTES);
    s_expect_scope(&m, 0);
    msgb_baseline(&m);
    m.ent[B_SET][0].data = s_bytes(huge, ENGRAM_MAX_ENTRY_BYTES);
    s_expect_scope(&m, 0);
    free(huge);
}

static void test_malformed_counter(void **state)
{
    (void)state;
    static const uint8_t nine[9] = {1};
    const size_t bad_len[] = {0, 1, 7, 9};
    for (size_t i = 0; i < sizeof bad_len / sizeof *bad_len; i++) {
        msgb_t m;
        msgb_baseline(&m);
        m.ent[B_COUNTER][1].data = s_bytes(nine, bad_len[i]);
        s_expect_scope(&m, ENGRAM_EDECODE);
    }
    /* Two running totals of node 1: a state joined out of causal order holds them (see
     * test_counter_two_totals_after_forget), so the decoder must take them. */
    msgb_t m;
    msgb_baseline(&m);
    msgb_entry(&m, B_COUNTER, s_str(""), 1, 4, 0, s_bytes(s_total_5, 8));
    s_expect_scope(&m, 0);
}

static void test_malformed_objects(void **state)
{
    (void)state;
    msgb_t m;
    /* An object with no entries is bottom: it is never stored nor sent. */
    msgb_baseline(&m);
    msgb_object(&m, CRDT_REG, s_str("empty"));
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    m.obj[B_SET].n_entries = 0;
    s_expect_scope(&m, ENGRAM_EDECODE);
    /* The same (type, key) twice, with disjoint dots. */
    msgb_baseline(&m);
    size_t o = msgb_object(&m, CRDT_REG, s_str("reg"));
    msgb_entry(&m, o, s_str(""), 1, 4, 102, s_str("v3"));
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    o = msgb_object(&m, CRDT_SET, s_str("set"));
    msgb_entry(&m, o, s_str("c"), 1, 4, 0, s_str(""));
    s_expect_scope(&m, ENGRAM_EDECODE);
}

/*  --- malformed: contexts ---------------------------------------------------------- */

typedef struct {
    const char *name;
    void (*bad)(ctxb_t *);   /* breaks canonical form or the dot space */
    void (*canon)(ctxb_t *); /* the valid context closest to it */
} ctx_case_t;

static void nc_unsorted_nodes(ctxb_t *b)
{
    ctxb_init(b);
    ctxb_node(b, 2, 2, CLOUD(5, 6));
    ctxb_node(b, 1, 5, NULL, 0);
}

static void nc_duplicate_node(ctxb_t *b)
{
    ctxb_init(b);
    ctxb_node(b, 1, 5, NULL, 0);
    ctxb_node(b, 1, 5, NULL, 0);
    ctxb_node(b, 2, 2, CLOUD(5, 6));
}

static void nc_split_node(ctxb_t *b)
{
    ctxb_init(b);
    ctxb_node(b, 1, 5, NULL, 0);
    ctxb_node(b, 2, 2, NULL, 0);
    ctxb_node(b, 2, 0, CLOUD(5, 6));
}

static void nc_overlapping(ctxb_t *b)
{
    ctxb_init(b);
    ctxb_node(b, 1, 5, NULL, 0);
    ctxb_node(b, 2, 2, CLOUD(5, 6, 6, 8));
}

static void nc_contained(ctxb_t *b)
{
    ctxb_init(b);
    ctxb_node(b, 1, 5, NULL, 0);
    ctxb_node(b, 2, 2, CLOUD(5, 8, 6, 7));
}

static void nc_adjacent(ctxb_t *b)
{
    ctxb_init(b);
    ctxb_node(b, 1, 5, NULL, 0);
    ctxb_node(b, 2, 2, CLOUD(5, 6, 7, 8));
}

static void canon_5_8(ctxb_t *b)
{
    ctxb_init(b);
    ctxb_node(b, 1, 5, NULL, 0);
    ctxb_node(b, 2, 2, CLOUD(5, 8));
}

static void nc_unsorted_ranges(ctxb_t *b)
{
    ctxb_init(b);
    ctxb_node(b, 1, 5, NULL, 0);
    ctxb_node(b, 2, 2, CLOUD(9, 9, 5, 6));
}

static void canon_5_6_9(ctxb_t *b)
{
    ctxb_init(b);
    ctxb_node(b, 1, 5, NULL, 0);
    ctxb_node(b, 2, 2, CLOUD(5, 6, 9, 9));
}

static void nc_range_at_base_plus_1(ctxb_t *b)
{
    ctxb_init(b);
    ctxb_node(b, 1, 5, NULL, 0);
    ctxb_node(b, 2, 2, CLOUD(3, 3, 5, 6));
}

static void nc_range_inside_base(ctxb_t *b)
{
    ctxb_init(b);
    ctxb_node(b, 1, 5, NULL, 0);
    ctxb_node(b, 2, 2, CLOUD(2, 3, 5, 6));
}

static void canon_base_3(ctxb_t *b)
{
    ctxb_init(b);
    ctxb_node(b, 1, 5, NULL, 0);
    ctxb_node(b, 2, 3, CLOUD(5, 6));
}

static void nc_cloud_from_1(ctxb_t *b)
{
    ctxb_baseline(b);
    ctxb_node(b, 3, 0, CLOUD(1, 2));
}

static void canon_node3_base_2(ctxb_t *b)
{
    ctxb_baseline(b);
    ctxb_node(b, 3, 2, NULL, 0);
}

static void nc_cloud_from_0(ctxb_t *b)
{
    ctxb_baseline(b);
    ctxb_node(b, 3, 0, CLOUD(0, 2));
}

static void nc_odd_cloud(ctxb_t *b)
{
    ctxb_init(b);
    ctxb_node(b, 1, 5, NULL, 0);
    ctxb_node(b, 2, 2, CLOUD(5, 6, 9));
}

static void nc_lo_above_hi(ctxb_t *b)
{
    ctxb_init(b);
    ctxb_node(b, 1, 5, NULL, 0);
    ctxb_node(b, 2, 2, CLOUD(6, 5));
}

static void nc_empty_node(ctxb_t *b)
{
    ctxb_baseline(b);
    ctxb_node(b, 3, 0, NULL, 0);
}

static void nc_node_0(ctxb_t *b)
{
    ctxb_init(b);
    ctxb_node(b, 0, 1, NULL, 0);
    ctxb_node(b, 1, 5, NULL, 0);
    ctxb_node(b, 2, 2, CLOUD(5, 6));
}

static void nc_base_past_max(ctxb_t *b)
{
    ctxb_baseline(b);
    ctxb_node(b, 3, CRDT_DOT_MAX + 1, NULL, 0);
}

static void canon_base_max(ctxb_t *b)
{
    ctxb_baseline(b);
    ctxb_node(b, 3, CRDT_DOT_MAX, NULL, 0);
}

static void nc_base_uint64_max(ctxb_t *b)
{
    ctxb_baseline(b);
    ctxb_node(b, 3, UINT64_MAX, NULL, 0);
}

static void nc_cloud_past_max(ctxb_t *b)
{
    ctxb_baseline(b);
    ctxb_node(b, 3, 0, CLOUD(5, CRDT_DOT_MAX + 1));
}

static void canon_cloud_max(ctxb_t *b)
{
    ctxb_baseline(b);
    ctxb_node(b, 3, 0, CLOUD(5, CRDT_DOT_MAX));
}

static void nc_cloud_uint64_max(ctxb_t *b)
{
    ctxb_baseline(b);
    ctxb_node(b, 3, 1, CLOUD(UINT64_MAX, UINT64_MAX));
}

static const ctx_case_t s_ctx_cases[] = {
    {"unsorted nodes", nc_unsorted_nodes, ctxb_baseline},
    {"duplicate node", nc_duplicate_node, ctxb_baseline},
    {"one node split in two", nc_split_node, ctxb_baseline},
    {"overlapping cloud ranges", nc_overlapping, canon_5_8},
    {"cloud range inside another", nc_contained, canon_5_8},
    {"adjacent cloud ranges", nc_adjacent, canon_5_8},
    {"unsorted cloud ranges", nc_unsorted_ranges, canon_5_6_9},
    {"cloud range at base + 1", nc_range_at_base_plus_1, canon_base_3},
    {"cloud range overlapping base", nc_range_inside_base, canon_base_3},
    {"cloud from 1 with base 0", nc_cloud_from_1, canon_node3_base_2},
    {"cloud from 0", nc_cloud_from_0, canon_node3_base_2},
    {"odd cloud array", nc_odd_cloud, ctxb_baseline},
    {"cloud range lo > hi", nc_lo_above_hi, ctxb_baseline},
    {"node without dots", nc_empty_node, ctxb_baseline},
    {"node 0", nc_node_0, ctxb_baseline},
    {"base past CRDT_DOT_MAX", nc_base_past_max, canon_base_max},
    {"base UINT64_MAX", nc_base_uint64_max, canon_base_max},
    {"cloud past CRDT_DOT_MAX", nc_cloud_past_max, canon_cloud_max},
    {"cloud at UINT64_MAX", nc_cloud_uint64_max, canon_base_max},
};

/*  Each bad context is refused alone, as a scope's context and as its prune cut, while its
 *  canonical twin is accepted in the same three places. */
static void test_malformed_contexts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_ctx_cases / sizeof *s_ctx_cases; i++) {
        const ctx_case_t *c = &s_ctx_cases[i];
        print_message("context case: %s\n", c->name);
        ctxb_t b;
        c->canon(&b);
        s_expect_ctx(&b, 0);
        c->bad(&b);
        s_expect_ctx(&b, ENGRAM_EDECODE);

        msgb_t m;
        msgb_baseline(&m);
        c->canon(&m.ctx);
        s_expect_scope(&m, 0);
        c->bad(&m.ctx);
        s_expect_scope(&m, ENGRAM_EDECODE);

        msgb_baseline(&m);
        c->canon(&m.ctx);
        c->canon(&m.pruned);
        s_expect_scope(&m, 0);
        c->bad(&m.pruned);
        s_expect_scope(&m, ENGRAM_EDECODE);
    }
}

static void test_malformed_pruned_not_covered(void **state)
{
    (void)state;
    msgb_t m;
    msgb_baseline(&m);
    ctxb_init(&m.pruned);
    ctxb_node(&m.pruned, 1, 6, NULL, 0);
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    ctxb_init(&m.pruned);
    ctxb_node(&m.pruned, 2, 0, CLOUD(3, 3));
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    ctxb_init(&m.pruned);
    ctxb_node(&m.pruned, 9, 1, NULL, 0);
    s_expect_scope(&m, ENGRAM_EDECODE);
}

static void test_malformed_missing_contexts(void **state)
{
    (void)state;
    msgb_t m;
    msgb_baseline(&m);
    m.msg.ctx = NULL;
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    m.msg.pruned = NULL;
    s_expect_scope(&m, ENGRAM_EDECODE);
}

/*  --- malformed: records -------------------------------------------------------------- */

static void test_malformed_records(void **state)
{
    (void)state;
    msgb_t m;
    msgb_baseline(&m);
    m.rec[0].n = 6; /* op outside the context */
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    m.rec[0].node = 3;
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    m.rec[0].n = 0;
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    m.rec[0].node = 0;
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    msgb_record(&m, 2, 5, CLOUD(2, 3)); /* removed dot in the gap of node 2 */
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    msgb_record(&m, 2, 5, CLOUD(1, 4, 4, 1)); /* the second removed dot is not in ctx */
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    msgb_record(&m, 2, 5, CLOUD(0, 1));
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    msgb_record(&m, 2, 5, CLOUD(1, 0));
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    msgb_record(&m, 2, 5, CLOUD(1, 4, 2)); /* odd removed array */
    s_expect_scope(&m, ENGRAM_EDECODE);
    /* The valid twin: a second record, removed dots inside the context. */
    msgb_baseline(&m);
    msgb_record(&m, 2, 5, CLOUD(1, 4, 2, 2));
    s_expect_scope(&m, 0);
}

/*  A record that removed nothing is no operation's output (only operations that remove dots
 *  leave one). Refusing it or keeping it are both fine; reading a NULL array is not (protobuf-c
 *  leaves `removed` NULL when the field is empty, and memcpy(dst, NULL, 0) is undefined
 *  behaviour, which -DENGRAM_SANITIZE=ON turns into an abort). */
static void test_record_removing_nothing(void **state)
{
    (void)state;
    msgb_t m;
    msgb_baseline(&m);
    msgb_record(&m, 2, 5, NULL, 0);
    uint8_t *buf;
    size_t len;
    s_pack(&m.msg.base, &buf, &len);
    crdt_scope_t *s = NOT_NULL;
    int rc = crdt_scope_decode(buf, len, 0, &s);
    free(buf);
    if (rc == 0) {
        assert_int_equal(crdt_scope_records(s), 2);
        s_check_decoded(s);
    } else {
        assert_int_equal(rc, ENGRAM_EDECODE);
        assert_null(s);
    }
    crdt_scope_destroy(&s);
}

/*  Two records for one op, saying different things: an op removed one set of dots, so this
 *  is no encoder's output, and the decoder cannot know which to keep. */
static void test_malformed_record_twice(void **state)
{
    (void)state;
    msgb_t m;
    msgb_baseline(&m);
    msgb_record(&m, 1, 5, CLOUD(2, 2));
    s_expect_scope(&m, ENGRAM_EDECODE);
}

/*  --- versions ------------------------------------------------------------------------ */

static void test_schema_versions(void **state)
{
    (void)state;
    msgb_t m;
    /* 0 is "field missing": not a version at all. */
    msgb_baseline(&m);
    m.msg.schema_major = 0;
    s_expect_scope(&m, ENGRAM_EDECODE);
    msgb_baseline(&m);
    m.ctx.msg.schema_major = 0;
    s_expect_scope(&m, ENGRAM_EDECODE);
    s_expect_ctx(&m.ctx, ENGRAM_EDECODE);
    msgb_baseline(&m);
    m.pruned.msg.schema_major = 0;
    s_expect_scope(&m, ENGRAM_EDECODE);

    const uint32_t newer[] = {ENGRAM_SCHEMA_MAJOR + 1, UINT32_MAX};
    for (size_t i = 0; i < 2; i++) {
        msgb_baseline(&m);
        m.msg.schema_major = newer[i];
        s_expect_scope(&m, ENGRAM_EVERSION);
        /* A newer major may mean anything: the version is judged before the content. */
        m.msg.ctx = NULL;
        m.obj[B_REG].type = 77;
        s_expect_scope(&m, ENGRAM_EVERSION);
        msgb_baseline(&m);
        m.ctx.msg.schema_major = newer[i];
        s_expect_scope(&m, ENGRAM_EVERSION);
        s_expect_ctx(&m.ctx, ENGRAM_EVERSION);
        ctxb_t b;
        nc_unsorted_nodes(&b);
        b.msg.schema_major = newer[i];
        s_expect_ctx(&b, ENGRAM_EVERSION);
        msgb_baseline(&m);
        m.pruned.msg.schema_major = newer[i];
        s_expect_scope(&m, ENGRAM_EVERSION);
    }
}

/*  A note's wire form: fn sees each note with its op's live entry (none for an op whose entry
 *  a later write removed) and may send a shorter form; the scope keeps its notes; an error
 *  from fn fails the encoding. */
typedef struct {
    int calls, with_entry;
    int fail;
} s_wire_t;

static int s_wire_lean(void *arg, crdt_dot_t op, const uint8_t *note, size_t len,
                       const crdt_dot_entry_t *entry, uint8_t **out, size_t *out_len)
{
    s_wire_t *w = arg;
    (void)note, (void)len;
    w->calls++;
    if (w->fail)
        return ENGRAM_ENOMEM;
    if (!entry)
        return 0;
    w->with_entry++;
    /* the op's entry, with its object's type and key */
    assert_int_equal(entry->type, CRDT_REG);
    assert_string_equal(entry->key, "goal");
    assert_true(entry->entry.node == op.node && entry->entry.n == op.n);
    assert_int_equal(entry->entry.hlc, 3);
    assert_true(entry->entry.len == 2 && memcmp(entry->entry.data, "v3", 2) == 0);
    *out = malloc(4);
    assert_non_null(*out);
    memcpy(*out, "lean", 4);
    *out_len = 4;
    return 0;
}

static void test_notes_wire_form(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1);
    for (int i = 1; i <= 3; i += 2) {
        crdt_scope_t *d = NULL;
        char value[4];
        snprintf(value, sizeof value, "v%d", i);
        assert_int_equal(crdt_mvreg_write(a, "goal", (uint64_t)i, value, 2, &d), 0);
        crdt_scope_destroy(&d);
    }
    assert_int_equal(crdt_scope_note(a, (crdt_dot_t){1, 1}, "step one", 8), 0);
    assert_int_equal(crdt_scope_note(a, (crdt_dot_t){1, 2}, "step two", 8), 0);
    s_wire_t w = {0};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(crdt_scope_encode_wire(a, s_wire_lean, &w, &buf, &len), 0);
    assert_int_equal(w.calls, 2);
    assert_int_equal(w.with_entry, 1); /* op 1's entry is gone: op 2 overwrote it */
    crdt_scope_t *b = NULL;
    assert_int_equal(crdt_scope_decode(buf, len, 0, &b), 0);
    free(buf);
    size_t n;
    const uint8_t *note = crdt_scope_note_of(b, (crdt_dot_t){1, 2}, &n);
    assert_true(note && n == 4 && memcmp(note, "lean", 4) == 0);
    note = crdt_scope_note_of(b, (crdt_dot_t){1, 1}, &n);
    assert_true(note && n == 8 && memcmp(note, "step one", 8) == 0);
    note = crdt_scope_note_of(a, (crdt_dot_t){1, 2}, &n); /* the scope's own stays whole */
    assert_true(note && n == 8 && memcmp(note, "step two", 8) == 0);
    crdt_scope_destroy(&b);
    /* without fn, or with one that fails */
    assert_int_equal(crdt_scope_encode_wire(a, NULL, NULL, &buf, &len), 0);
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    assert_int_equal(crdt_scope_encode(a, &plain, &plain_len), 0);
    assert_true(len == plain_len && memcmp(buf, plain, len) == 0);
    free(buf);
    free(plain);
    w.fail = 1;
    buf = NULL;
    assert_int_equal(crdt_scope_encode_wire(a, s_wire_lean, &w, &buf, &len), ENGRAM_ENOMEM);
    assert_null(buf);
    crdt_scope_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_use),
        cmocka_unit_test(test_roundtrip_provenance),
        cmocka_unit_test(test_roundtrip_empty),
        cmocka_unit_test(test_roundtrip_removal_only_delta),
        cmocka_unit_test(test_delta_since_after_prune),
        cmocka_unit_test(test_counter_two_totals_after_forget),
        cmocka_unit_test(test_catch_up_after_lost_delta),
        cmocka_unit_test(test_roundtrip_random_worlds),
        cmocka_unit_test(test_ctx_roundtrip_random),
        cmocka_unit_test(test_ctx_roundtrip_edges),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_single_bit_flips),
        cmocka_unit_test(test_multi_bit_flips),
        cmocka_unit_test(test_ctx_bit_flips),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_handbuilt_baseline),
        cmocka_unit_test(test_malformed_type_id),
        cmocka_unit_test(test_malformed_keys),
        cmocka_unit_test(test_malformed_entry_dots),
        cmocka_unit_test(test_malformed_dot_twice),
        cmocka_unit_test(test_malformed_entries_by_type),
        cmocka_unit_test(test_malformed_counter),
        cmocka_unit_test(test_malformed_objects),
        cmocka_unit_test(test_malformed_contexts),
        cmocka_unit_test(test_malformed_pruned_not_covered),
        cmocka_unit_test(test_malformed_missing_contexts),
        cmocka_unit_test(test_malformed_records),
        cmocka_unit_test(test_malformed_record_twice),
        cmocka_unit_test(test_record_removing_nothing),
        cmocka_unit_test(test_schema_versions),
        cmocka_unit_test(test_notes_wire_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
