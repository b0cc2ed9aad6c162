/*  node_identity: key pair and node id (see identity.h). */
#include "node/trust/identity.h"

#include "engram/error.h"

uint64_t node_identity_id_of(const uint8_t public_key[crypto_sign_PUBLICKEYBYTES])
{
    uint8_t hash[crypto_generichash_BYTES_MIN];
    crypto_generichash(hash, sizeof hash, public_key, crypto_sign_PUBLICKEYBYTES, NULL, 0);
    uint64_t id = 0;
    for (int i = 7; i >= 0; i--)
        id = (id << 8) | hash[i];
    return id ? id : 1;
}

int node_identity_generate(node_identity_t *self)
{
    if (sodium_init() < 0)
        return ENGRAM_EIO;
    crypto_sign_keypair(self->public_key, self->secret_key);
    self->node_id = node_identity_id_of(self->public_key);
    return 0;
}

uint64_t node_identity_random_replica(void)
{
    uint64_t id = 0;
    while (id == 0)
        randombytes_buf(&id, sizeof id);
    return id;
}
