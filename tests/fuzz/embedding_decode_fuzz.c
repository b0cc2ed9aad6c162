/*  libFuzzer target for search_embedding_decode (node/search/vector.h): embeddings arrive from
 *  agents with memories and queries, and the store keeps them.
 *
 *  Any input must either be refused with ENGRAM_EINVAL and a one-line reason, leaving the
 *  caller's buffer and dimension as they were, or decode to dims values with dims * 4 equal to
 *  the input's length, dims within 1..ENGRAM_MAX_EMBEDDING_DIMS, every value finite and the
 *  same bits as the input's little-endian float32, not all zero; its norm is finite and
 *  positive, its cosine with itself 1 and with another vector within [-1, 1]; checking without
 *  a buffer agrees. A violation abort()s so libFuzzer saves the input.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/error.h"
#include "fuzz_check.h"
#include "node/search/vector.h"

static float s_out[ENGRAM_MAX_EMBEDDING_DIMS];
static float s_other[ENGRAM_MAX_EMBEDDING_DIMS];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const float sentinel = 12345.0f;
    s_out[0] = sentinel;
    uint32_t dims = 0xdeadbeef, checked_dims = 0xdeadbeef;
    char why[128];
    memset(why, 'x', sizeof why);
    int rc = search_embedding_decode(data, size, s_out, &dims, why, sizeof why);
    int checked = search_embedding_decode(data, size, NULL, &checked_dims, NULL, 0);
    CHECK(rc == checked);
    if (rc != 0) {
        CHECK(rc == ENGRAM_EINVAL);
        CHECK(memchr(why, '\0', sizeof why) != NULL && why[0] != '\0');
        CHECK(strchr(why, '\n') == NULL);
        CHECK(s_out[0] == sentinel && dims == 0xdeadbeef && checked_dims == 0xdeadbeef);
        return 0;
    }
    CHECK(dims == checked_dims);
    CHECK(dims >= 1 && dims <= ENGRAM_MAX_EMBEDDING_DIMS && (size_t)dims * 4 == size);
    bool nonzero = false;
    for (uint32_t i = 0; i < dims; i++) {
        CHECK(isfinite(s_out[i]));
        uint32_t bits = (uint32_t)data[4 * i] | (uint32_t)data[4 * i + 1] << 8 |
                        (uint32_t)data[4 * i + 2] << 16 | (uint32_t)data[4 * i + 3] << 24;
        uint32_t decoded;
        memcpy(&decoded, &s_out[i], sizeof decoded);
        CHECK(bits == decoded);
        nonzero |= s_out[i] != 0.0f;
        s_other[i] = (float)((i * 2654435761u) % 17) - 8.0f; /* a fixed, non-zero vector */
    }
    CHECK(nonzero);
    double norm = search_vector_norm(s_out, dims);
    CHECK(isfinite(norm) && norm > 0.0);
    double self = search_cosine(s_out, norm, s_out, norm, dims);
    CHECK(self <= 1.0 && self >= 1.0 - 1e-9);
    double other_norm = search_vector_norm(s_other, dims);
    if (other_norm > 0.0) {
        double cosine = search_cosine(s_out, norm, s_other, other_norm, dims);
        CHECK(isfinite(cosine) && cosine >= -1.0 && cosine <= 1.0);
    }
    return 0;
}
