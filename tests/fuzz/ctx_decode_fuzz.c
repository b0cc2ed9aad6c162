/*  libFuzzer target for crdt_ctx_decode (crdt/codec.h): causal contexts from peers (the
 *  `since` of an anti-entropy request).
 *
 *  Any input must either be refused with ENGRAM_EDECODE or ENGRAM_EVERSION and a NULL result,
 *  or decode to a context in canonical form. For an accepted input this target checks that
 *  it re-encodes and decodes to an equal context whose encoding is byte-for-byte the same
 *  (equal contexts have one representation); that the counts agree with the structure; and
 *  that the lattice operations treat it as a set (join and meet with itself are itself, the
 *  difference with itself is empty, it covers itself and its copy). A violation abort()s so
 *  libFuzzer saves the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/codec.h"
#include "crdt/ctx.h"
#include "engram/error.h"
#include "fuzz_check.h"

static int s_sentinel;
#define NOT_NULL ((void *)&s_sentinel)

static void s_check_ctx(const crdt_ctx_t *ctx)
{
    uint8_t *buf = NULL, *again = NULL;
    size_t len = 0, again_len = 0;
    CHECK(crdt_ctx_encode(ctx, &buf, &len) == 0);
    crdt_ctx_t *copy = NOT_NULL;
    CHECK(crdt_ctx_decode(buf, len, &copy) == 0);
    CHECK(copy && copy != NOT_NULL);
    CHECK(crdt_ctx_equal(ctx, copy));
    CHECK(crdt_ctx_encode(copy, &again, &again_len) == 0);
    CHECK(again_len == len && memcmp(buf, again, len) == 0);
    free(again);
    free(buf);

    /* Structure: nodes ascending, non-zero, none empty; clouds canonical. */
    size_t clouds = 0;
    uint64_t prev = 0;
    for (size_t i = 0; i < crdt_ctx_nodes(ctx); i++) {
        uint64_t node, base;
        const crdt_range_t *cloud;
        size_t ncloud;
        crdt_ctx_node_at(ctx, i, &node, &base, &cloud, &ncloud);
        CHECK(node > prev);
        CHECK(base > 0 || ncloud > 0);
        CHECK(base <= CRDT_DOT_MAX);
        uint64_t floor = base + 1;
        for (size_t r = 0; r < ncloud; r++) {
            CHECK(cloud[r].lo > floor && cloud[r].lo <= cloud[r].hi);
            CHECK(cloud[r].hi <= CRDT_DOT_MAX);
            CHECK(crdt_ctx_contains(ctx, (crdt_dot_t){node, cloud[r].lo}));
            CHECK(!crdt_ctx_contains(ctx, (crdt_dot_t){node, cloud[r].lo - 1}));
            floor = cloud[r].hi + 1;
        }
        CHECK(crdt_ctx_base(ctx, node) == base);
        CHECK(crdt_ctx_max(ctx, node) == (ncloud ? cloud[ncloud - 1].hi : base));
        clouds += ncloud;
        prev = node;
    }
    CHECK(crdt_ctx_cloud_ranges(ctx) == clouds);
    CHECK(crdt_ctx_is_vv(ctx) == (clouds == 0));
    CHECK(crdt_ctx_is_empty(ctx) == (crdt_ctx_nodes(ctx) == 0));
    CHECK(crdt_ctx_count(ctx) >= crdt_ctx_nodes(ctx));

    /* Lattice: idempotent join and meet, empty self-difference. */
    CHECK(crdt_ctx_covers(ctx, copy) && crdt_ctx_covers(copy, ctx));
    CHECK(crdt_ctx_join(copy, ctx) == 0 && crdt_ctx_equal(copy, ctx));
    crdt_ctx_t *meet = crdt_ctx_meet(ctx, copy);
    CHECK(meet && crdt_ctx_equal(meet, ctx));
    crdt_ctx_t *diff = crdt_ctx_diff(ctx, copy);
    CHECK(diff && crdt_ctx_is_empty(diff));
    crdt_ctx_destroy(&diff);
    crdt_ctx_destroy(&meet);
    crdt_ctx_destroy(&copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crdt_ctx_t *ctx = NOT_NULL;
    int rc = crdt_ctx_decode(data, size, &ctx);
    if (rc != 0) {
        CHECK(rc == ENGRAM_EDECODE || rc == ENGRAM_EVERSION);
        CHECK(ctx == NULL);
        return 0;
    }
    CHECK(ctx != NULL && ctx != NOT_NULL);
    s_check_ctx(ctx);
    crdt_ctx_destroy(&ctx);
    return 0;
}
