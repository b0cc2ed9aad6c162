/*  search_vector: embeddings, cosine, rank fusion and recency (vector.h).
 *
 *  A checked embedding's norm is finite and non-zero in double: a float32's square is within
 *  [2^-298, 2^256], so neither a square nor a sum of ENGRAM_MAX_EMBEDDING_DIMS of them
 *  overflows or underflows to zero.
 */
#include "node/search/vector.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "engram/error.h"

static float s_float_le(const uint8_t *bytes)
{
    uint32_t bits = (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 |
                    (uint32_t)bytes[3] << 24;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

__attribute__((format(printf, 3, 4))) static int s_refuse(char *why, size_t why_len,
                                                          const char *fmt, ...)
{
    if (why && why_len) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(why, why_len, fmt, args);
        va_end(args);
    }
    return ENGRAM_EINVAL;
}

int search_embedding_decode(const uint8_t *bytes, size_t len, float *out, uint32_t *dims, char *why,
                            size_t why_len)
{
    if (len == 0)
        return s_refuse(why, why_len, "an empty embedding");
    if (len % 4 != 0)
        return s_refuse(why, why_len, "embedding of %zu bytes, not a multiple of 4", len);
    size_t n = len / 4;
    if (n > ENGRAM_MAX_EMBEDDING_DIMS)
        return s_refuse(why, why_len, "embedding of %zu dimensions, more than %d", n,
                        ENGRAM_MAX_EMBEDDING_DIMS);
    bool any_nonzero = false;
    for (size_t i = 0; i < n; i++) {
        float value = s_float_le(bytes + 4 * i);
        if (isnan(value))
            return s_refuse(why, why_len, "embedding value %zu is NaN", i);
        if (isinf(value))
            return s_refuse(why, why_len, "embedding value %zu is infinite", i);
        any_nonzero |= value != 0.0f;
    }
    if (!any_nonzero)
        return s_refuse(why, why_len, "embedding of zeros only (%zu dimensions)", n);
    for (size_t i = 0; out && i < n; i++)
        out[i] = s_float_le(bytes + 4 * i);
    *dims = (uint32_t)n;
    return 0;
}

double search_vector_norm(const float *v, uint32_t dims)
{
    double sum = 0.0;
    for (uint32_t i = 0; i < dims; i++)
        sum += (double)v[i] * (double)v[i];
    return sqrt(sum);
}

double search_cosine(const float *a, double norm_a, const float *b, double norm_b, uint32_t dims)
{
    double dot = 0.0;
    for (uint32_t i = 0; i < dims; i++)
        dot += (double)a[i] * (double)b[i];
    double cosine = dot / (norm_a * norm_b);
    /* Rounding may take a vector's cosine with itself a hair past 1. */
    return cosine > 1.0 ? 1.0 : cosine < -1.0 ? -1.0 : cosine;
}

double search_rrf(uint32_t rank)
{
    return 1.0 / (SEARCH_RRF_K + (double)rank);
}

double search_recency(int64_t age_ms, uint64_t half_life_ms)
{
    if (age_ms <= 0)
        return 1.0;
    if (half_life_ms == 0)
        return 0.0;
    return exp2(-(double)age_ms / (double)half_life_ms);
}
