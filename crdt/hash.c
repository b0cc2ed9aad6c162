/*  crdt_hash: SipHash-2-4 with a seeded key (see hash.h). */
#include "crdt/hash.h"

#include <string.h>

/*  SipHash-2-4 (Aumasson and Bernstein), key (seed, ~seed). */
static inline uint64_t s_rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = s_rotl(v1, 13);                                                                       \
        v1 ^= v0;                                                                                  \
        v0 = s_rotl(v0, 32);                                                                       \
        v2 += v3;                                                                                  \
        v3 = s_rotl(v3, 16);                                                                       \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = s_rotl(v3, 21);                                                                       \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = s_rotl(v1, 17);                                                                       \
        v1 ^= v2;                                                                                  \
        v2 = s_rotl(v2, 32);                                                                       \
    } while (0)

uint64_t crdt_hash(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *in = data;
    uint64_t k0 = seed ^ 0x0706050403020100ULL, k1 = ~seed ^ 0x0f0e0d0c0b0a0908ULL;
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    size_t whole = len - (len % 8);
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m;
        memcpy(&m, in + i, 8); /* little-endian hosts only; see CMakeLists.txt */
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < len % 8; i++)
        b |= (uint64_t)in[whole + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}
