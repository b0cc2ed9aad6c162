/*  search_vector: client-supplied embeddings, their similarity, and the fusion of rankings.
 *
 *  engram computes no embedding (it calls no model): a client that wants search by meaning
 *  sends one with each memory and with each query. An embedding travels and is stored as
 *  little-endian IEEE 754 float32 values, 1 to ENGRAM_MAX_EMBEDDING_DIMS of them, every one
 *  finite, not all zero (a zero vector has no direction). A scope's dimension is fixed by its
 *  first embedding; the store refuses others.
 *
 *  Similarity is the cosine, in [-1, 1], computed in double. Ranks are fused by reciprocal
 *  rank fusion (Cormack, Clarke and Buettcher 2009): a result at 1-based rank r of a ranking
 *  gets 1 / (k + r), summed over the rankings it is in, with k = SEARCH_RRF_K.
 *  Recency decays as 2^(-age / half_life).
 */
#ifndef NODE_SEARCH_VECTOR_H
#define NODE_SEARCH_VECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "engram/limits.h"

#define SEARCH_RRF_K 60.0

/*  Checks bytes[0..len) as an embedding and decodes it into out (caller's, room for
 *  ENGRAM_MAX_EMBEDDING_DIMS floats; may be NULL to only check). *dims gets the dimension.
 *  0, or ENGRAM_EINVAL with a one-line reason in why (length not a multiple of 4, empty, too
 *  many dimensions, a NaN or infinite value and its index, all zero). */
int search_embedding_decode(const uint8_t *bytes, size_t len, float *out, uint32_t *dims,
                            char *why, size_t why_len);
/*  The Euclidean norm of v. */
double search_vector_norm(const float *v, uint32_t dims);
/*  cos(a, b) given their norms (both non-zero). */
double search_cosine(const float *a, double norm_a, const float *b, double norm_b,
                     uint32_t dims);
/*  1 / (SEARCH_RRF_K + rank), rank from 1. */
double search_rrf(uint32_t rank);
/*  2^(-age_ms / half_life_ms); 1 for age 0 or less, else 0 for a half-life of 0. */
double search_recency(int64_t age_ms, uint64_t half_life_ms);

#endif
