/*  node_identity: a node's long-term Ed25519 key pair (libsodium) and the node id derived from
 *  its public key: the first 8 bytes, little-endian, of BLAKE2b(public key), never 0. The id
 *  names the node in version vectors; a node that cannot prove its dot counters current takes
 *  a fresh random replica id instead (node/store/store.c), but keeps its identity.
 */
#ifndef NODE_IDENTITY_H
#define NODE_IDENTITY_H

#include <sodium.h>
#include <stdint.h>

typedef struct {
    uint8_t public_key[crypto_sign_PUBLICKEYBYTES];
    uint8_t secret_key[crypto_sign_SECRETKEYBYTES];
    uint64_t node_id;
} node_identity_t;

/*  A new key pair. 0 or ENGRAM_EIO if libsodium cannot initialise. */
int node_identity_generate(node_identity_t *self);
/*  The node id of a public key. */
uint64_t node_identity_id_of(const uint8_t public_key[crypto_sign_PUBLICKEYBYTES]);
/*  A random non-zero replica id. */
uint64_t node_identity_random_replica(void);

#endif
