/*  crdt_hash: SipHash-2-4 (Aumasson and Bernstein) keyed by a 64-bit seed, the key being
 *  (seed, ~seed) mixed with fixed constants. The kernel uses it for hash-map buckets and for
 *  the entry hashes that make up a scope's digest; gossip uses it to check and name chunked
 *  transfers.
 *
 *  Invariant: the same bytes and seed give the same value on every host and in every version
 *  (digests and chunk checks cross the network), so the function never changes. Hosts are
 *  little-endian (checked in CMakeLists.txt).
 *
 *  Known limits: the keys are public, so it is no defence against collisions a peer chooses;
 *  callers use it where a collision costs a probe or a refused transfer, never correctness.
 */
#ifndef CRDT_HASH_H
#define CRDT_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t crdt_hash(const void *data, size_t len, uint64_t seed);

#endif
