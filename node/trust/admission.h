/*  node_admission: the cluster's root of trust.
 *
 *  `engram cluster init` gives a cluster a random 16-byte id and an admin Ed25519 key pair,
 *  kept under $ENGRAM_HOME (default ~/.engram): `cluster` (a zconfig file with the id and the
 *  admin public key) and `admin.key` (the secret key in hex, mode 0600). The admin signs:
 *    - an admission ("card") for each node's Ed25519 public key: a node presents its card to
 *      every peer it meets, and a peer admits it only if the card names the peer's own cluster
 *      id and admin key, the signature verifies, and the node id it claims is the id of the
 *      card's key (node/trust/identity.h);
 *    - a decommission of a node id, which every node verifies the same way before it marks
 *      the node left for good.
 *  A node learns its cluster (id and admin key) from its own card, which the operator put in
 *  its data directory; it never takes a trust root from a peer.
 *
 *  A node's CURVE key pair (the ZeroMQ transport) is derived from its Ed25519 identity
 *  (libsodium's ed25519 -> curve25519 conversion), so an admission of the Ed25519 key also
 *  names the CURVE key a peer must connect with: no second key to distribute.
 */
#ifndef NODE_ADMISSION_H
#define NODE_ADMISSION_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NODE_CLUSTER_ID_BYTES 16

typedef struct {
    uint8_t cluster_id[NODE_CLUSTER_ID_BYTES];
    uint8_t admin_key[crypto_sign_PUBLICKEYBYTES];
} node_trust_t;

/*  $ENGRAM_HOME, else ~/.engram, into buf. */
void node_admin_home(char *buf, size_t len);
/*  Creates a new cluster in home (creating the directory). ENGRAM_EEXISTS-like refusal
 *  (ENGRAM_EINVAL with a reason) if home already holds one. */
int node_admin_init(const char *home, node_trust_t *trust, char *why, size_t why_len);
/*  Loads the cluster of home and, if secret_key is not NULL, the admin's secret key. */
int node_admin_load(const char *home, node_trust_t *trust,
                    uint8_t secret_key[crypto_sign_SECRETKEYBYTES], char *why, size_t why_len);
/*  Reads a cluster file (the format of $ENGRAM_HOME/cluster: its id and admin public key),
 *  such as the trust file `engram init` writes into a lone node's data directory. */
int node_admin_load_file(const char *path, node_trust_t *trust, char *why, size_t why_len);
/*  Signs an admission of node_key; *card is the caller's to free(). */
int node_admin_admit(const node_trust_t *trust, const uint8_t *secret_key,
                     const uint8_t node_key[crypto_sign_PUBLICKEYBYTES], uint64_t now_ms,
                     uint8_t **card, size_t *len);
/*  Signs the decommission of node_id; *statement is the caller's to free(). */
int node_admin_decommission(const node_trust_t *trust, const uint8_t *secret_key,
                            uint64_t node_id, uint64_t now_ms, uint8_t **statement,
                            size_t *len);

/*  Reads a node's own card: checks its signature by the admin key it names and returns that
 *  cluster as the node's trust root, and the key it admits. */
int node_admission_open_card(const uint8_t *card, size_t len, node_trust_t *trust,
                             uint8_t node_key[crypto_sign_PUBLICKEYBYTES]);
/*  Whether card admits node `id` to trust's cluster; node_key (may be NULL) gets its key. */
bool node_admission_check_card(const node_trust_t *trust, uint64_t id, const uint8_t *card,
                               size_t len, uint8_t *node_key);
/*  Whether statement is trust's admin decommissioning node `id`. */
bool node_admission_check_leave(const node_trust_t *trust, uint64_t id,
                                const uint8_t *statement, size_t len);

/*  The CURVE key pair of an Ed25519 identity. 0 or ENGRAM_EINVAL. */
int node_admission_curve_keys(const uint8_t *ed_public, const uint8_t *ed_secret,
                              uint8_t curve_public[32], uint8_t curve_secret[32]);

/*  Reads a whole small file (at most max bytes); *data is the caller's to free(). */
int node_admission_read_file(const char *path, size_t max, uint8_t **data, size_t *len);
/*  Writes data to path through a temporary file and a rename, with the given mode. */
int node_admission_write_file(const char *path, const uint8_t *data, size_t len, int mode);

#endif
