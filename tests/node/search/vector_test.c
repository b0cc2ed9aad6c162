/*  Tests of search_vector: embeddings decoded from little-endian float32 (and each refusal with
 *  its reason, the caller's buffer untouched), cosine of known vectors, reciprocal-rank fusion
 *  and recency decay.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engram/error.h"
#include "node/search/vector.h"

/*  cmocka 1.1's float assertions compare in float: these need double. */
#define assert_near(have, want, tolerance)                                                         \
    do {                                                                                           \
        double have_ = (have), want_ = (want);                                                     \
        if (!(fabs(have_ - want_) <= (tolerance)))                                                 \
            fail_msg("%s is %.17g, not %.17g", #have, have_, want_);                               \
    } while (0)

/*  Writes value as 4 little-endian bytes at out. */
static void s_put(uint8_t *out, float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(bits >> (8 * i));
}

static void test_decode_good(void **state)
{
    (void)state;
    /* 1.0f is 00 00 80 3f little-endian; -2.5f is 00 00 20 c0. */
    const uint8_t bytes[] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0, 0, 0, 0, 0};
    float out[ENGRAM_MAX_EMBEDDING_DIMS];
    uint32_t dims = 0;
    char why[128] = "";
    assert_int_equal(search_embedding_decode(bytes, sizeof bytes, out, &dims, why, sizeof why), 0);
    assert_int_equal(dims, 3);
    assert_true(out[0] == 1.0f && out[1] == -2.5f && out[2] == 0.0f);
    /* Only checking: out may be NULL. */
    dims = 0;
    assert_int_equal(search_embedding_decode(bytes, sizeof bytes, NULL, &dims, why, sizeof why), 0);
    assert_int_equal(dims, 3);
    /* The most dimensions there may be, one non-zero. */
    static uint8_t most[4 * ENGRAM_MAX_EMBEDDING_DIMS];
    memset(most, 0, sizeof most);
    s_put(most + sizeof most - 4, 1e-45f); /* a subnormal is finite and not zero */
    assert_int_equal(search_embedding_decode(most, sizeof most, out, &dims, why, sizeof why), 0);
    assert_int_equal(dims, ENGRAM_MAX_EMBEDDING_DIMS);
    assert_true(out[ENGRAM_MAX_EMBEDDING_DIMS - 1] > 0.0f);
    assert_true(search_vector_norm(out, dims) > 0.0);
}

/*  Decoding bytes[0..len) fails with a reason holding `reason`, and leaves out as it was. */
static void s_refused(const uint8_t *bytes, size_t len, const char *reason)
{
    float out[ENGRAM_MAX_EMBEDDING_DIMS];
    out[0] = 42.0f;
    uint32_t dims = 7;
    char why[128] = "";
    assert_int_equal(search_embedding_decode(bytes, len, out, &dims, why, sizeof why),
                     ENGRAM_EINVAL);
    assert_non_null(strstr(why, reason));
    assert_null(strchr(why, '\n'));
    assert_true(out[0] == 42.0f);
    assert_int_equal(dims, 7);
}

static void test_decode_bad(void **state)
{
    (void)state;
    static uint8_t bytes[4 * (ENGRAM_MAX_EMBEDDING_DIMS + 1)];
    memset(bytes, 0, sizeof bytes);
    s_put(bytes, 0.5f);
    s_refused(bytes, 0, "empty");
    s_refused(bytes, 5, "5 bytes, not a multiple of 4");
    s_refused(bytes, 3, "not a multiple of 4");
    s_refused(bytes, sizeof bytes, "4097 dimensions, more than 4096");
    s_put(bytes + 8, NAN);
    s_refused(bytes, 16, "value 2 is NaN");
    s_put(bytes + 8, 1.0f);
    s_put(bytes + 12, -INFINITY);
    s_refused(bytes, 16, "value 3 is infinite");
    uint8_t zeros[16] = {0};
    s_refused(zeros, sizeof zeros, "zeros");
    s_put(zeros + 4, -0.0f); /* negative zero is zero too */
    s_refused(zeros, sizeof zeros, "zeros");
    /* why may be NULL. */
    uint32_t dims;
    assert_int_equal(search_embedding_decode(zeros, 3, NULL, &dims, NULL, 0), ENGRAM_EINVAL);
}

static void test_cosine(void **state)
{
    (void)state;
    const float a[] = {1, 0, 0}, b[] = {0, 2, 0}, c[] = {3, 4, 0}, d[] = {-6, -8, 0};
    assert_near(search_vector_norm(c, 3), 5.0, 1e-12);
    double na = search_vector_norm(a, 3), nb = search_vector_norm(b, 3);
    double nc = search_vector_norm(c, 3), nd = search_vector_norm(d, 3);
    assert_near(search_cosine(a, na, b, nb, 3), 0.0, 1e-12);  /* orthogonal */
    assert_near(search_cosine(a, na, c, nc, 3), 0.6, 1e-12);  /* 3/5 */
    assert_near(search_cosine(b, nb, c, nc, 3), 0.8, 1e-12);  /* 8/10 */
    assert_near(search_cosine(c, nc, d, nd, 3), -1.0, 1e-12); /* opposite */
    assert_near(search_cosine(c, nc, c, nc, 3), 1.0, 1e-12);  /* itself */
    /* Accumulated in double: float accumulation of 1e8 + 1 - 1e8 over these would lose 1. */
    const float big[] = {1e4f, 1.0f, 1e4f}, small[] = {1e4f, 1.0f, -1e4f};
    double dot = search_cosine(big, 1.0, small, 1.0, 3);
    assert_near(dot, 1.0, 1e-9);
    /* Never past [-1, 1], whatever the rounding: sqrt(3)^2 is 3 less an ulp, so the raw
     * quotient for (1, 1, 1) is 1 + 2^-52. */
    const float ones[] = {1, 1, 1}, minus[] = {-1, -1, -1};
    double n3 = search_vector_norm(ones, 3);
    assert_true(search_cosine(ones, n3, ones, n3, 3) == 1.0);
    assert_true(search_cosine(ones, n3, minus, n3, 3) == -1.0);
    float many[384];
    for (int i = 0; i < 384; i++)
        many[i] = 0.1f * (float)(i % 7) + 0.01f;
    double nm = search_vector_norm(many, 384);
    double self = search_cosine(many, nm, many, nm, 384);
    assert_true(self <= 1.0 && self > 1.0 - 1e-12);
}

static void test_rrf(void **state)
{
    (void)state;
    assert_near(search_rrf(1), 1.0 / 61.0, 1e-15);
    assert_near(search_rrf(10), 1.0 / 70.0, 1e-15);
    /* First in one ranking and third in another beats second in both. */
    assert_true(search_rrf(1) + search_rrf(3) > search_rrf(2) + search_rrf(2));
    assert_true(search_rrf(1) > search_rrf(2));
}

static void test_recency(void **state)
{
    (void)state;
    assert_near(search_recency(0, 1000), 1.0, 0);
    assert_near(search_recency(-5, 1000), 1.0, 0); /* from the future: as new */
    assert_near(search_recency(1000, 1000), 0.5, 1e-15);
    assert_near(search_recency(3000, 1000), 0.125, 1e-15);
    assert_near(search_recency(500, 1000), M_SQRT1_2, 1e-15);
    assert_near(search_recency(1, 0), 0.0, 0);
    assert_near(search_recency(0, 0), 1.0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_good), cmocka_unit_test(test_decode_bad),
        cmocka_unit_test(test_cosine),      cmocka_unit_test(test_rrf),
        cmocka_unit_test(test_recency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
