/*  libFuzzer target for crdt_scope_decode (crdt/codec.h): scope states and deltas from peers.
 *
 *  Any input must either be refused with ENGRAM_EDECODE or ENGRAM_EVERSION and a NULL result,
 *  or decode to a scope that keeps every invariant of scope.h. For an accepted input this
 *  target checks that the incremental digest matches a recomputation; the prune cut lies in
 *  the context; the scope re-encodes and decodes to an equal scope (context, prune cut,
 *  records, digest, encoded size); it joins into an empty replica and into itself; a full
 *  catch-up delta (crdt_scope_delta_since from the empty context) crosses the wire and
 *  rebuilds it; a catch-up from its own context is empty; and decoded as a replica it accepts
 *  a new operation. A violation abort()s so libFuzzer saves the input. ASan, UBSan
 *  (UBSAN_OPTIONS=halt_on_error=1) and LeakSanitizer catch the rest.
 *
 *  Run: fuzz_scope_decode -max_len=4096 <work dir> <seed corpus dir> (see CMakeLists.txt).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "crdt/awset.h"
#include "crdt/codec.h"
#include "crdt/scope.h"
#include "engram/error.h"
#include "fuzz_check.h"

static int s_sentinel;
#define NOT_NULL ((void *)&s_sentinel)

/*  b is a faithful copy of a. */
static void s_check_same(const crdt_scope_t *a, const crdt_scope_t *b)
{
    CHECK(crdt_scope_equal(a, b) && crdt_scope_equal(b, a));
    CHECK(crdt_scope_digest(a) == crdt_scope_digest(b));
    CHECK(crdt_scope_digest(b) == crdt_scope_digest_recompute(b));
    CHECK(crdt_scope_entries(a) == crdt_scope_entries(b));
    CHECK(crdt_ctx_equal(crdt_scope_ctx(a), crdt_scope_ctx(b)));
}

/*  Encodes s and decodes the bytes; the copy must be s. Returns the copy. */
static crdt_scope_t *s_roundtrip(const crdt_scope_t *s, uint64_t replica, size_t *len_p)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(crdt_scope_encode(s, &buf, &len) == 0);
    crdt_scope_t *copy = NOT_NULL;
    CHECK(crdt_scope_decode(buf, len, replica, &copy) == 0);
    CHECK(copy && copy != NOT_NULL);
    free(buf);
    s_check_same(s, copy);
    CHECK(crdt_ctx_equal(crdt_scope_pruned(s), crdt_scope_pruned(copy)));
    CHECK(crdt_scope_records(s) == crdt_scope_records(copy));
    if (len_p)
        *len_p = len;
    return copy;
}

static void s_check_scope(const crdt_scope_t *s)
{
    CHECK(crdt_scope_digest(s) == crdt_scope_digest_recompute(s));
    CHECK(crdt_ctx_covers(crdt_scope_ctx(s), crdt_scope_pruned(s)));

    size_t len1 = 0, len2 = 0;
    crdt_scope_t *copy = s_roundtrip(s, 0, &len1);
    crdt_scope_t *again = s_roundtrip(copy, 0, &len2);
    CHECK(len1 == len2); /* same content, same size, whatever the order */
    crdt_scope_destroy(&again);
    crdt_scope_destroy(&copy);

    crdt_scope_t *dup = crdt_scope_dup(s, 0);
    CHECK(dup != NULL);
    s_check_same(s, dup);
    CHECK(crdt_scope_join(dup, s) == 0);
    s_check_same(s, dup);
    crdt_scope_destroy(&dup);

    /* A replica that has seen nothing catches up over the wire. */
    crdt_ctx_t *empty = crdt_ctx_new();
    crdt_scope_t *full = crdt_scope_delta_since(s, empty);
    CHECK(full != NULL);
    crdt_scope_t *wire = s_roundtrip(full, 0, NULL);
    crdt_scope_t *fresh = crdt_scope_new(0);
    CHECK(crdt_scope_join(fresh, wire) == 0);
    s_check_same(s, fresh);
    crdt_scope_destroy(&fresh);
    crdt_scope_destroy(&wire);
    crdt_scope_destroy(&full);
    crdt_ctx_destroy(&empty);

    /* A replica that has seen everything needs nothing. */
    crdt_scope_t *none = crdt_scope_delta_since(s, crdt_scope_ctx(s));
    CHECK(none != NULL && crdt_scope_entries(none) == 0);
    CHECK(crdt_ctx_is_empty(crdt_scope_ctx(none)));
    crdt_scope_destroy(&none);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crdt_scope_t *s = NOT_NULL;
    int rc = crdt_scope_decode(data, size, 0, &s);
    if (rc != 0) {
        CHECK(rc == ENGRAM_EDECODE || rc == ENGRAM_EVERSION);
        CHECK(s == NULL);
        return 0;
    }
    CHECK(s != NULL && s != NOT_NULL);
    s_check_scope(s);
    crdt_scope_destroy(&s);

    /* The same bytes as a replica's state: it issues its next dot. */
    s = NOT_NULL;
    CHECK(crdt_scope_decode(data, size, 3, &s) == 0);
    crdt_scope_t *delta = NULL;
    rc = crdt_awset_add(s, "fuzz-key", "fuzz-elem", "fuzz-data", 9, &delta);
    CHECK(rc == 0 || rc == ENGRAM_ETYPE || rc == ENGRAM_ERANGE);
    CHECK(crdt_scope_digest(s) == crdt_scope_digest_recompute(s));
    if (rc == 0) {
        CHECK(crdt_awset_contains(s, "fuzz-key", "fuzz-elem"));
        crdt_scope_t *copy = s_roundtrip(delta, 0, NULL);
        crdt_scope_destroy(&copy);
    }
    crdt_scope_destroy(&delta);
    crdt_scope_destroy(&s);
    return 0;
}
