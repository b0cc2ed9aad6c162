/*  Tests of crdt/value.c: the value header (schema version, HLCs, expiry, provenance) and
 *  payload stored in register and log entries.
 *
 *  What is checked: the canonical use; round trips of random values, with provenance kept
 *  sorted and free of duplicates however it was added or encoded; merge_provenance is a set
 *  union (commutative, idempotent, leaves the source and the rest of self alone); a newer
 *  schema major is ENGRAM_EVERSION and a missing one ENGRAM_EDECODE; payload size limits on
 *  both the setter and the decoder; and damaged input (every truncation, bit flips, random
 *  bytes) either decodes to a value that keeps every invariant or fails with a specific code
 *  and a NULL result, never a crash or a leak (run under ASan or valgrind).
 *
 *  Randomness comes from tests/support/prop.h: failures print ENGRAM_SEED to replay them,
 *  and ENGRAM_PROP_SCALE shrinks the case counts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prop.h"

#include "crdt/value.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "proto/crdt.pb-c.h"

static int s_sentinel;
#define NOT_NULL ((void *)&s_sentinel)

/*  --- checks ----------------------------------------------------------------------- */

static bool s_strv_canonical(char *const *strv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strv[i] || (i > 0 && strcmp(strv[i - 1], strv[i]) >= 0))
            return false;
    return n == 0 || strv != NULL;
}

static bool s_strv_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

static bool s_value_equal(const crdt_value_t *a, const crdt_value_t *b)
{
    return a->schema_major == b->schema_major && a->created_hlc == b->created_hlc &&
           a->updated_hlc == b->updated_hlc && a->expires_at_ms == b->expires_at_ms &&
           strcmp(a->user, b->user) == 0 && strcmp(a->meta_json, b->meta_json) == 0 &&
           s_strv_equal(a->agents, a->nagents, b->agents, b->nagents) &&
           s_strv_equal(a->resources, a->nresources, b->resources, b->nresources) &&
           a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/*  What holds of every value, however it was made. */
static void s_check_invariants(const crdt_value_t *v)
{
    PROP_CHECK(v->user != NULL && v->meta_json != NULL);
    PROP_CHECK(s_strv_canonical(v->agents, v->nagents));
    PROP_CHECK(s_strv_canonical(v->resources, v->nresources));
    PROP_CHECK(v->len <= ENGRAM_MAX_VALUE_BYTES);
    PROP_CHECK(v->len == 0 || v->data != NULL);
    PROP_CHECK(v->schema_major >= 1 && v->schema_major <= ENGRAM_SCHEMA_MAJOR);
}

/*  Encodes v, decodes it, checks the copy equals v and that encoding is deterministic. */
static void s_roundtrip(const crdt_value_t *v)
{
    uint8_t *buf = NULL, *again = NULL;
    size_t len = 0, again_len = 0;
    assert_int_equal(crdt_value_encode(v, &buf, &len), 0);
    crdt_value_t *copy = NOT_NULL;
    PROP_CHECK(crdt_value_decode(buf, len, &copy) == 0);
    PROP_CHECK(copy != NULL && copy != NOT_NULL);
    s_check_invariants(copy);
    PROP_CHECK(s_value_equal(v, copy));
    assert_int_equal(crdt_value_encode(copy, &again, &again_len), 0);
    PROP_CHECK(again_len == len && memcmp(buf, again, len) == 0);
    free(again);
    free(buf);
    crdt_value_destroy(&copy);
}

/*  Untrusted bytes: a value that keeps every invariant, or a specific refusal. */
static int s_decode_untrusted(const uint8_t *buf, size_t len)
{
    crdt_value_t *v = NOT_NULL;
    int rc = crdt_value_decode(buf, len, &v);
    if (rc != 0) {
        PROP_CHECK(rc == ENGRAM_EDECODE || rc == ENGRAM_EVERSION);
        PROP_CHECK(v == NULL);
        return rc;
    }
    PROP_CHECK(v != NULL && v != NOT_NULL);
    s_check_invariants(v);
    s_roundtrip(v);
    crdt_value_destroy(&v);
    return rc;
}

/*  --- canonical use ---------------------------------------------------------------- */

static void test_canonical_use(void **state)
{
    (void)state;
    crdt_value_t *v = crdt_value_new();
    assert_non_null(v);
    assert_int_equal(v->schema_major, ENGRAM_SCHEMA_MAJOR);
    assert_string_equal(v->user, "");
    assert_string_equal(v->meta_json, "");
    assert_int_equal(v->nagents, 0);
    assert_int_equal(v->len, 0);

    assert_int_equal(crdt_value_set_user(v, "alice"), 0);
    assert_int_equal(crdt_value_set_data(v, "prefers tea", 11), 0);
    assert_int_equal(crdt_value_set_meta(v, "{\"topic\":\"drinks\"}"), 0);
    assert_int_equal(crdt_value_add_agent(v, "researcher-1"), 0);
    assert_int_equal(crdt_value_add_agent(v, "planner"), 0);
    assert_int_equal(crdt_value_add_resource(v, "user:alice"), 0);
    v->created_hlc = UINT64_C(1) << 40;
    v->updated_hlc = (UINT64_C(1) << 40) + 7;
    v->expires_at_ms = 1767225600000;

    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(crdt_value_encode(v, &buf, &len), 0);
    crdt_value_t *copy = NULL;
    assert_int_equal(crdt_value_decode(buf, len, &copy), 0);
    assert_string_equal(copy->user, "alice");
    assert_int_equal(copy->len, 11);
    assert_memory_equal(copy->data, "prefers tea", 11);
    assert_string_equal(copy->meta_json, "{\"topic\":\"drinks\"}");
    assert_int_equal(copy->nagents, 2);
    assert_string_equal(copy->agents[0], "planner"); /* sorted */
    assert_string_equal(copy->agents[1], "researcher-1");
    assert_int_equal(copy->nresources, 1);
    assert_string_equal(copy->resources[0], "user:alice");
    assert_int_equal(copy->created_hlc, v->created_hlc);
    assert_int_equal(copy->updated_hlc, v->updated_hlc);
    assert_int_equal(copy->expires_at_ms, v->expires_at_ms);
    assert_int_equal(copy->schema_major, ENGRAM_SCHEMA_MAJOR);
    assert_int_equal(copy->schema_minor, ENGRAM_SCHEMA_MINOR);
    free(buf);
    crdt_value_destroy(&copy);
    crdt_value_destroy(&v);
    assert_null(v);
    crdt_value_destroy(&v); /* idempotent */
}

/*  --- round trips ------------------------------------------------------------------ */

static const char *const s_names[] = {"a",         "b",       "agent-7", "researcher-1",
                                      "planner",   "user:al", "",        "run:q3-proposal",
                                      "zz-last",   "A",       "ä-utf8",  "agent-10"};
#define NNAMES (sizeof s_names / sizeof *s_names)

static int s_strcmp_p(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*  The sorted distinct names of picks[0..n). Returns how many. */
static size_t s_expected_set(const char **picks, size_t n, const char **out)
{
    memcpy(out, picks, n * sizeof *picks);
    if (n)
        qsort(out, n, sizeof *out, s_strcmp_p);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || strcmp(out[m - 1], out[i]) != 0)
            out[m++] = out[i];
    return m;
}

static void s_random_string(prop_rng_t *rng, char *buf, size_t cap)
{
    size_t len = prop_below(rng, cap);
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)(1 + prop_below(rng, 255)); /* any byte but NUL */
    buf[len] = '\0';
}

static crdt_value_t *s_random_value(prop_rng_t *rng)
{
    crdt_value_t *v = crdt_value_new();
    assert_non_null(v);
    char text[64];
    s_random_string(rng, text, sizeof text);
    assert_int_equal(crdt_value_set_user(v, text), 0);
    s_random_string(rng, text, sizeof text);
    assert_int_equal(crdt_value_set_meta(v, text), 0);
    size_t len = prop_chance(rng, 10) ? 0 : prop_below(rng, prop_chance(rng, 10) ? 5000 : 200);
    uint8_t *data = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)prop_next(rng);
    assert_int_equal(crdt_value_set_data(v, data, len), 0);
    free(data);
    v->created_hlc = prop_next(rng);
    v->updated_hlc = prop_next(rng);
    v->expires_at_ms = prop_chance(rng, 50) ? 0 : prop_next(rng);

    const char *picks[32], *expected[32];
    size_t n = prop_below(rng, 20);
    for (size_t i = 0; i < n; i++) {
        picks[i] = s_names[prop_below(rng, NNAMES)];
        assert_int_equal(crdt_value_add_agent(v, picks[i]), 0);
    }
    size_t m = s_expected_set(picks, n, expected);
    PROP_CHECK(v->nagents == m);
    for (size_t i = 0; i < m && i < v->nagents; i++)
        PROP_CHECK(strcmp(v->agents[i], expected[i]) == 0);
    n = prop_below(rng, 20);
    for (size_t i = 0; i < n; i++) {
        picks[i] = s_names[prop_below(rng, NNAMES)];
        assert_int_equal(crdt_value_add_resource(v, picks[i]), 0);
    }
    m = s_expected_set(picks, n, expected);
    PROP_CHECK(v->nresources == m);
    for (size_t i = 0; i < m && i < v->nresources; i++)
        PROP_CHECK(strcmp(v->resources[i], expected[i]) == 0);
    s_check_invariants(v);
    return v;
}

static void test_roundtrip_random(void **state)
{
    (void)state;
    int cases = prop_cases(5000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("roundtrip_random", c);
        crdt_value_t *v = s_random_value(&rng);
        s_roundtrip(v);
        crdt_value_destroy(&v);
    }
}

static void test_roundtrip_edges(void **state)
{
    (void)state;
    crdt_value_t *v = crdt_value_new();
    s_roundtrip(v); /* all defaults */
    v->created_hlc = UINT64_MAX;
    v->updated_hlc = UINT64_MAX;
    v->expires_at_ms = UINT64_MAX;
    uint8_t zeros[16] = {0};
    assert_int_equal(crdt_value_set_data(v, zeros, sizeof zeros), 0);
    s_roundtrip(v);
    /* The largest payload allowed. */
    uint8_t *big = malloc(ENGRAM_MAX_VALUE_BYTES);
    assert_non_null(big);
    memset(big, 0xa5, ENGRAM_MAX_VALUE_BYTES);
    assert_int_equal(crdt_value_set_data(v, big, ENGRAM_MAX_VALUE_BYTES), 0);
    s_roundtrip(v);
    free(big);
    crdt_value_destroy(&v);
}

/*  --- provenance ------------------------------------------------------------------- */

static void test_provenance_sorted_unique(void **state)
{
    (void)state;
    crdt_value_t *v = crdt_value_new();
    const char *adds[] = {"b", "a", "b", "c", "a", "", ""};
    for (size_t i = 0; i < sizeof adds / sizeof *adds; i++) {
        assert_int_equal(crdt_value_add_agent(v, adds[i]), 0);
        assert_int_equal(crdt_value_add_resource(v, adds[sizeof adds / sizeof *adds - 1 - i]),
                         0);
    }
    assert_int_equal(v->nagents, 4);
    assert_string_equal(v->agents[0], "");
    assert_string_equal(v->agents[1], "a");
    assert_string_equal(v->agents[2], "b");
    assert_string_equal(v->agents[3], "c");
    assert_true(s_strv_equal(v->agents, v->nagents, v->resources, v->nresources));
    crdt_value_destroy(&v);

    /* A peer's encoding with unsorted, repeated provenance decodes to the canonical form. */
    char *agents[] = {"zed", "amy", "zed", "bob", "amy"};
    char *resources[] = {"user:x", "user:x"};
    Engram__Provenance p = ENGRAM__PROVENANCE__INIT;
    p.user = "alice";
    p.agents = agents;
    p.n_agents = 5;
    p.resources = resources;
    p.n_resources = 2;
    Engram__Value msg = ENGRAM__VALUE__INIT;
    msg.schema_major = ENGRAM_SCHEMA_MAJOR;
    msg.provenance = &p;
    size_t len = engram__value__get_packed_size(&msg);
    uint8_t *buf = malloc(len);
    assert_int_equal(engram__value__pack(&msg, buf), len);
    assert_int_equal(crdt_value_decode(buf, len, &v), 0);
    free(buf);
    assert_int_equal(v->nagents, 3);
    assert_string_equal(v->agents[0], "amy");
    assert_string_equal(v->agents[1], "bob");
    assert_string_equal(v->agents[2], "zed");
    assert_int_equal(v->nresources, 1);
    assert_string_equal(v->user, "alice");
    s_check_invariants(v);
    crdt_value_destroy(&v);
}

static void test_merge_provenance(void **state)
{
    (void)state;
    crdt_value_t *a = crdt_value_new(), *b = crdt_value_new();
    assert_int_equal(crdt_value_set_user(a, "alice"), 0);
    assert_int_equal(crdt_value_set_data(a, "x", 1), 0);
    assert_int_equal(crdt_value_add_agent(a, "writer"), 0);
    assert_int_equal(crdt_value_add_agent(a, "critic"), 0);
    assert_int_equal(crdt_value_add_resource(a, "run:1"), 0);
    assert_int_equal(crdt_value_set_user(b, "bob"), 0);
    assert_int_equal(crdt_value_add_agent(b, "critic"), 0);
    assert_int_equal(crdt_value_add_agent(b, "analyst"), 0);
    assert_int_equal(crdt_value_add_resource(b, "user:bob"), 0);
    assert_int_equal(crdt_value_add_resource(b, "run:1"), 0);

    assert_int_equal(crdt_value_merge_provenance(a, b), 0);
    assert_int_equal(a->nagents, 3);
    assert_string_equal(a->agents[0], "analyst");
    assert_string_equal(a->agents[1], "critic");
    assert_string_equal(a->agents[2], "writer");
    assert_int_equal(a->nresources, 2);
    assert_string_equal(a->resources[0], "run:1");
    assert_string_equal(a->resources[1], "user:bob");
    /* Only provenance moves: self's user and payload stay, the source is untouched. */
    assert_string_equal(a->user, "alice");
    assert_int_equal(a->len, 1);
    assert_string_equal(b->user, "bob");
    assert_int_equal(b->nagents, 2);
    assert_int_equal(b->nresources, 2);
    /* Idempotent, and merging a value into itself changes nothing. */
    assert_int_equal(crdt_value_merge_provenance(a, b), 0);
    assert_int_equal(crdt_value_merge_provenance(a, a), 0);
    assert_int_equal(a->nagents, 3);
    assert_int_equal(a->nresources, 2);
    crdt_value_destroy(&a);
    crdt_value_destroy(&b);
}

/*  merge is a set union: commutative, associative, idempotent on random provenance. */
static void test_merge_provenance_random(void **state)
{
    (void)state;
    int cases = prop_cases(2000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("merge_provenance_random", c);
        crdt_value_t *x = s_random_value(&rng), *y = s_random_value(&rng);
        crdt_value_t *z = s_random_value(&rng);
        crdt_value_t *xy = crdt_value_new(), *yx = crdt_value_new(), *xyz = crdt_value_new();
        crdt_value_t *zyx = crdt_value_new();
        assert_int_equal(crdt_value_merge_provenance(xy, x), 0);
        assert_int_equal(crdt_value_merge_provenance(xy, y), 0);
        assert_int_equal(crdt_value_merge_provenance(yx, y), 0);
        assert_int_equal(crdt_value_merge_provenance(yx, x), 0);
        PROP_CHECK(s_value_equal(xy, yx));
        assert_int_equal(crdt_value_merge_provenance(xyz, xy), 0);
        assert_int_equal(crdt_value_merge_provenance(xyz, z), 0);
        assert_int_equal(crdt_value_merge_provenance(zyx, z), 0);
        assert_int_equal(crdt_value_merge_provenance(zyx, yx), 0);
        assert_int_equal(crdt_value_merge_provenance(zyx, zyx), 0);
        PROP_CHECK(s_value_equal(xyz, zyx));
        s_check_invariants(xyz);
        /* Every member of an input is in the union; the union has nothing else. */
        size_t from_inputs = 0;
        for (size_t i = 0; i < xy->nagents; i++) {
            bool in_x = false, in_y = false;
            for (size_t k = 0; k < x->nagents; k++)
                in_x |= strcmp(x->agents[k], xy->agents[i]) == 0;
            for (size_t k = 0; k < y->nagents; k++)
                in_y |= strcmp(y->agents[k], xy->agents[i]) == 0;
            PROP_CHECK(in_x || in_y);
            from_inputs += in_x + in_y;
        }
        PROP_CHECK(from_inputs == x->nagents + y->nagents);
        crdt_value_t *all[] = {x, y, z, xy, yx, xyz, zyx};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++)
            crdt_value_destroy(&all[i]);
    }
}

/*  --- versions and limits ---------------------------------------------------------- */

static void s_expect(const Engram__Value *msg, int expected)
{
    size_t len = engram__value__get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    assert_int_equal(engram__value__pack(msg, buf), len);
    crdt_value_t *v = NOT_NULL;
    int rc = crdt_value_decode(buf, len, &v);
    free(buf);
    assert_int_equal(rc, expected);
    if (expected) {
        assert_null(v);
    } else {
        assert_true(v != NULL && v != NOT_NULL);
        s_check_invariants(v);
        crdt_value_destroy(&v);
    }
}

static void test_schema_versions(void **state)
{
    (void)state;
    Engram__Provenance p = ENGRAM__PROVENANCE__INIT;
    char *agents[] = {"a"};
    p.agents = agents;
    p.n_agents = 1;
    Engram__Value msg = ENGRAM__VALUE__INIT;
    msg.provenance = &p;
    msg.data.data = (uint8_t *)"payload";
    msg.data.len = 7;

    msg.schema_major = ENGRAM_SCHEMA_MAJOR;
    s_expect(&msg, 0);
    msg.schema_major = ENGRAM_SCHEMA_MAJOR + 1;
    s_expect(&msg, ENGRAM_EVERSION);
    msg.schema_major = UINT32_MAX;
    s_expect(&msg, ENGRAM_EVERSION);
    /* A newer major is refused whatever else it carries. */
    msg.data.len = ENGRAM_MAX_VALUE_BYTES + 1;
    msg.data.data = calloc(1, msg.data.len);
    s_expect(&msg, ENGRAM_EVERSION);
    free(msg.data.data);
    msg.data.data = (uint8_t *)"payload";
    msg.data.len = 7;
    /* 0 is "field missing". */
    msg.schema_major = 0;
    s_expect(&msg, ENGRAM_EDECODE);
    s_expect(&(Engram__Value)ENGRAM__VALUE__INIT, ENGRAM_EDECODE);
    /* A newer minor only adds fields: it decodes, and says so. */
    msg.schema_major = ENGRAM_SCHEMA_MAJOR;
    msg.schema_minor = ENGRAM_SCHEMA_MINOR + 5;
    uint8_t buf[64];
    size_t len = engram__value__pack(&msg, buf);
    crdt_value_t *v = NULL;
    assert_int_equal(crdt_value_decode(buf, len, &v), 0);
    assert_int_equal(v->schema_minor, ENGRAM_SCHEMA_MINOR + 5);
    assert_int_equal(v->len, 7);
    crdt_value_destroy(&v);
    /* No provenance at all: empty provenance. */
    msg.provenance = NULL;
    assert_true(engram__value__get_packed_size(&msg) <= sizeof buf);
    len = engram__value__pack(&msg, buf);
    assert_int_equal(crdt_value_decode(buf, len, &v), 0);
    assert_string_equal(v->user, "");
    assert_int_equal(v->nagents, 0);
    crdt_value_destroy(&v);
}

static void test_oversized_data(void **state)
{
    (void)state;
    uint8_t *big = calloc(1, ENGRAM_MAX_VALUE_BYTES + 1);
    assert_non_null(big);
    crdt_value_t *v = crdt_value_new();
    assert_int_equal(crdt_value_set_data(v, "keep", 4), 0);
    assert_int_equal(crdt_value_set_data(v, big, ENGRAM_MAX_VALUE_BYTES + 1), ENGRAM_ETOOBIG);
    assert_int_equal(v->len, 4); /* unchanged */
    assert_memory_equal(v->data, "keep", 4);
    crdt_value_destroy(&v);

    Engram__Value msg = ENGRAM__VALUE__INIT;
    msg.schema_major = ENGRAM_SCHEMA_MAJOR;
    msg.data.data = big;
    msg.data.len = ENGRAM_MAX_VALUE_BYTES + 1;
    s_expect(&msg, ENGRAM_EDECODE);
    msg.data.len = ENGRAM_MAX_VALUE_BYTES;
    s_expect(&msg, 0);
    free(big);
}

/*  --- damaged input ---------------------------------------------------------------- */

static void test_truncations(void **state)
{
    (void)state;
    int cases = prop_cases(200);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("truncations", c);
        crdt_value_t *v = s_random_value(&rng);
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(crdt_value_encode(v, &buf, &len), 0);
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *prefix = malloc(cut ? cut : 1);
            memcpy(prefix, buf, cut);
            s_decode_untrusted(prefix, cut);
            free(prefix);
        }
        free(buf);
        crdt_value_destroy(&v);
    }
}

static void test_bit_flips(void **state)
{
    (void)state;
    int cases = prop_cases(300);
    size_t accepted = 0, refused = 0;
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("bit_flips", c);
        crdt_value_t *v = s_random_value(&rng);
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(crdt_value_encode(v, &buf, &len), 0);
        /* Single flips everywhere in small values, sampled in large ones. */
        size_t bits = len * 8;
        for (size_t f = 0; f < bits && f < 2000; f++) {
            size_t bit = bits <= 2000 ? f : prop_below(&rng, bits);
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            int rc = s_decode_untrusted(buf, len);
            accepted += rc == 0;
            refused += rc != 0;
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        /* Then several at once. */
        for (int round = 0; round < 20; round++) {
            uint8_t *copy = malloc(len ? len : 1);
            memcpy(copy, buf, len);
            int flips = 2 + (int)prop_below(&rng, 10);
            for (int f = 0; f < flips && len; f++) {
                size_t bit = prop_below(&rng, bits);
                copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            }
            s_decode_untrusted(copy, len);
            free(copy);
        }
        free(buf);
        crdt_value_destroy(&v);
    }
    assert_true(accepted > 0);
    assert_true(refused > 0);
}

static void test_random_bytes(void **state)
{
    (void)state;
    int cases = prop_cases(100000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("random_bytes", c);
        uint8_t buf[128];
        size_t len = prop_below(&rng, sizeof buf + 1);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)prop_next(&rng);
        if (len >= 2 && prop_chance(&rng, 50)) { /* schema_major 1 first */
            buf[0] = 0x08;
            buf[1] = 0x01;
        }
        s_decode_untrusted(buf, len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_use),
        cmocka_unit_test(test_roundtrip_random),
        cmocka_unit_test(test_roundtrip_edges),
        cmocka_unit_test(test_provenance_sorted_unique),
        cmocka_unit_test(test_merge_provenance),
        cmocka_unit_test(test_merge_provenance_random),
        cmocka_unit_test(test_schema_versions),
        cmocka_unit_test(test_oversized_data),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_random_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
