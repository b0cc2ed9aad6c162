/*  node_admission: cluster files, admin signatures, card checks (see admission.h). */
#include "node/trust/admission.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engram/error.h"
#include "node/trust/identity.h"
#include "proto/cluster.pb-c.h"

/*  Cards and statements are a few hundred bytes; anything larger is not one. */
#define MAX_STATEMENT_BYTES 4096

void node_admin_home(char *buf, size_t len)
{
    const char *home = getenv("ENGRAM_HOME");
    if (home && *home)
        snprintf(buf, len, "%s", home);
    else
        snprintf(buf, len, "%s/.engram", getenv("HOME") ? getenv("HOME") : ".");
}

int node_admission_read_file(const char *path, size_t max, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? ENGRAM_ENOTFOUND : ENGRAM_EIO;
    uint8_t *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    bool failed = ferror(f);
    fclose(f);
    if (!buf)
        return ENGRAM_ENOMEM;
    if (failed || n > max) {
        free(buf);
        return failed ? ENGRAM_EIO : ENGRAM_ETOOBIG;
    }
    *data = buf;
    *len = n;
    return 0;
}

int node_admission_write_file(const char *path, const uint8_t *data, size_t len, int mode)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return ENGRAM_EINVAL;
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return ENGRAM_EIO;
    bool ok = chmod(tmp, (mode_t)mode) == 0 && fwrite(data, 1, len, f) == len;
    ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return ENGRAM_EIO;
    }
    return 0;
}

/*  --- the admin's side ------------------------------------------------------------- */

static int s_hex_field(zconfig_t *config, const char *path, uint8_t *out, size_t len)
{
    const char *hex = zconfig_get(config, path, NULL);
    size_t got = 0;
    if (!hex || sodium_hex2bin(out, len, hex, strlen(hex), NULL, &got, NULL) != 0 || got != len)
        return ENGRAM_EDECODE;
    return 0;
}

int node_admin_load_file(const char *path, node_trust_t *trust, char *why, size_t why_len)
{
    zconfig_t *config = zconfig_load(path);
    if (!config) {
        snprintf(why, why_len, "cannot read %s", path);
        return ENGRAM_ENOTFOUND;
    }
    int rc = s_hex_field(config, "cluster/id", trust->cluster_id, sizeof trust->cluster_id);
    if (rc == 0)
        rc = s_hex_field(config, "cluster/admin_key", trust->admin_key, sizeof trust->admin_key);
    zconfig_destroy(&config);
    if (rc)
        snprintf(why, why_len, "%s is not a cluster file", path);
    return rc;
}

int node_admin_load(const char *home, node_trust_t *trust,
                    uint8_t secret_key[crypto_sign_SECRETKEYBYTES], char *why, size_t why_len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/cluster", home);
    int rc = node_admin_load_file(path, trust, why, why_len);
    if (rc == ENGRAM_ENOTFOUND)
        snprintf(why, why_len, "no cluster in %s: run `engram cluster init` first", home);
    if (rc || !secret_key)
        return rc;
    snprintf(path, sizeof path, "%s/admin.key", home);
    uint8_t *hex;
    size_t len, got = 0;
    rc = node_admission_read_file(path, 2 * crypto_sign_SECRETKEYBYTES + 2, &hex, &len);
    if (rc) {
        snprintf(why, why_len, "cannot read the admin key %s: %s", path, engram_strerror(rc));
        return rc;
    }
    while (len && (hex[len - 1] == '\n' || hex[len - 1] == '\r'))
        len--;
    uint8_t derived[crypto_sign_PUBLICKEYBYTES];
    if (sodium_hex2bin(secret_key, crypto_sign_SECRETKEYBYTES, (char *)hex, len, NULL, &got,
                       NULL) != 0 ||
        got != crypto_sign_SECRETKEYBYTES ||
        crypto_sign_ed25519_sk_to_pk(derived, secret_key) != 0 ||
        sodium_memcmp(derived, trust->admin_key, sizeof derived) != 0)
        rc = ENGRAM_EDECODE;
    sodium_memzero(hex, len);
    free(hex);
    if (rc)
        snprintf(why, why_len, "%s is not the secret key of this cluster's admin", path);
    return rc;
}

int node_admin_init(const char *home, node_trust_t *trust, char *why, size_t why_len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/cluster", home);
    if (zsys_file_exists(path)) {
        snprintf(why, why_len, "%s already holds a cluster; it is never overwritten", home);
        return ENGRAM_EINVAL;
    }
    if (zsys_dir_create("%s", home) != 0) {
        snprintf(why, why_len, "cannot create %s", home);
        return ENGRAM_EIO;
    }
    uint8_t secret[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(trust->admin_key, secret);
    randombytes_buf(trust->cluster_id, sizeof trust->cluster_id);
    char hex[2 * crypto_sign_SECRETKEYBYTES + 2];
    sodium_bin2hex(hex, sizeof hex, secret, sizeof secret);
    sodium_memzero(secret, sizeof secret);
    strcat(hex, "\n");
    char keypath[4096];
    snprintf(keypath, sizeof keypath, "%s/admin.key", home);
    int rc = node_admission_write_file(keypath, (uint8_t *)hex, strlen(hex), 0600);
    sodium_memzero(hex, sizeof hex);
    zconfig_t *config = zconfig_new("root", NULL);
    char id_hex[2 * NODE_CLUSTER_ID_BYTES + 1], key_hex[2 * crypto_sign_PUBLICKEYBYTES + 1];
    sodium_bin2hex(id_hex, sizeof id_hex, trust->cluster_id, sizeof trust->cluster_id);
    sodium_bin2hex(key_hex, sizeof key_hex, trust->admin_key, sizeof trust->admin_key);
    zconfig_put(config, "cluster/id", id_hex);
    zconfig_put(config, "cluster/admin_key", key_hex);
    zconfig_set_comment(config, " engram cluster: its id and its admin's public key");
    if (rc == 0 && zconfig_save(config, path) != 0)
        rc = ENGRAM_EIO;
    zconfig_destroy(&config);
    if (rc)
        snprintf(why, why_len, "cannot write the cluster into %s", home);
    return rc;
}

/*  Packs body, signs it, packs the Signed envelope. */
static int s_sign(const ProtobufCMessage *body, const uint8_t *secret_key, uint8_t **out,
                  size_t *len)
{
    size_t body_len = protobuf_c_message_get_packed_size(body);
    uint8_t *packed = malloc(body_len ? body_len : 1);
    if (!packed)
        return ENGRAM_ENOMEM;
    protobuf_c_message_pack(body, packed);
    uint8_t signature[crypto_sign_BYTES];
    crypto_sign_detached(signature, NULL, packed, body_len, secret_key);
    Engram__Signed signed_msg = ENGRAM__SIGNED__INIT;
    signed_msg.body = (ProtobufCBinaryData){.len = body_len, .data = packed};
    signed_msg.signature = (ProtobufCBinaryData){.len = sizeof signature, .data = signature};
    *len = engram__signed__get_packed_size(&signed_msg);
    *out = malloc(*len);
    if (*out)
        engram__signed__pack(&signed_msg, *out);
    free(packed);
    return *out ? 0 : ENGRAM_ENOMEM;
}

int node_admin_admit(const node_trust_t *trust, const uint8_t *secret_key,
                     const uint8_t node_key[crypto_sign_PUBLICKEYBYTES], uint64_t now_ms,
                     uint8_t **card, size_t *len)
{
    Engram__Admission admission = ENGRAM__ADMISSION__INIT;
    admission.cluster_id = (ProtobufCBinaryData){sizeof trust->cluster_id,
                                                 (uint8_t *)trust->cluster_id};
    admission.admin_key = (ProtobufCBinaryData){sizeof trust->admin_key,
                                                (uint8_t *)trust->admin_key};
    admission.node_key = (ProtobufCBinaryData){crypto_sign_PUBLICKEYBYTES, (uint8_t *)node_key};
    admission.issued_ms = now_ms;
    return s_sign(&admission.base, secret_key, card, len);
}

int node_admin_decommission(const node_trust_t *trust, const uint8_t *secret_key,
                            uint64_t node_id, uint64_t now_ms, uint8_t **statement,
                            size_t *len)
{
    Engram__Decommission removal = ENGRAM__DECOMMISSION__INIT;
    removal.cluster_id = (ProtobufCBinaryData){sizeof trust->cluster_id,
                                               (uint8_t *)trust->cluster_id};
    removal.admin_key = (ProtobufCBinaryData){sizeof trust->admin_key,
                                              (uint8_t *)trust->admin_key};
    removal.node_id = node_id;
    removal.issued_ms = now_ms;
    return s_sign(&removal.base, secret_key, statement, len);
}

/*  --- a node's side ---------------------------------------------------------------- */

/*  Unpacks a Signed envelope and its body (of the given descriptor), checking the signature
 *  against the admin key the body names, which the caller then compares with its trust. */
static ProtobufCMessage *s_open(const uint8_t *data, size_t len,
                                const ProtobufCMessageDescriptor *descriptor,
                                const ProtobufCBinaryData *(*admin_of)(const ProtobufCMessage *))
{
    if (!data || len == 0 || len > MAX_STATEMENT_BYTES)
        return NULL;
    Engram__Signed *signed_msg = engram__signed__unpack(NULL, len, data);
    if (!signed_msg)
        return NULL;
    ProtobufCMessage *body = NULL;
    if (signed_msg->signature.len == crypto_sign_BYTES)
        body = protobuf_c_message_unpack(descriptor, NULL, signed_msg->body.len,
                                         signed_msg->body.data);
    const ProtobufCBinaryData *admin = body ? admin_of(body) : NULL;
    if (body && (admin->len != crypto_sign_PUBLICKEYBYTES ||
                 crypto_sign_verify_detached(signed_msg->signature.data, signed_msg->body.data,
                                             signed_msg->body.len, admin->data) != 0)) {
        protobuf_c_message_free_unpacked(body, NULL);
        body = NULL;
    }
    engram__signed__free_unpacked(signed_msg, NULL);
    return body;
}

static const ProtobufCBinaryData *s_admission_admin(const ProtobufCMessage *body)
{
    return &((const Engram__Admission *)body)->admin_key;
}

static const ProtobufCBinaryData *s_decommission_admin(const ProtobufCMessage *body)
{
    return &((const Engram__Decommission *)body)->admin_key;
}

static bool s_same_cluster(const node_trust_t *trust, const ProtobufCBinaryData *cluster_id,
                           const ProtobufCBinaryData *admin_key)
{
    return cluster_id->len == sizeof trust->cluster_id &&
           memcmp(cluster_id->data, trust->cluster_id, sizeof trust->cluster_id) == 0 &&
           admin_key->len == sizeof trust->admin_key &&
           memcmp(admin_key->data, trust->admin_key, sizeof trust->admin_key) == 0;
}

int node_admission_open_card(const uint8_t *card, size_t len, node_trust_t *trust,
                             uint8_t node_key[crypto_sign_PUBLICKEYBYTES])
{
    Engram__Admission *admission = (Engram__Admission *)s_open(
        card, len, &engram__admission__descriptor, s_admission_admin);
    if (!admission)
        return ENGRAM_EDECODE;
    int rc = admission->cluster_id.len == sizeof trust->cluster_id &&
                     admission->node_key.len == crypto_sign_PUBLICKEYBYTES
                 ? 0
                 : ENGRAM_EDECODE;
    if (rc == 0) {
        memcpy(trust->cluster_id, admission->cluster_id.data, sizeof trust->cluster_id);
        memcpy(trust->admin_key, admission->admin_key.data, sizeof trust->admin_key);
        memcpy(node_key, admission->node_key.data, crypto_sign_PUBLICKEYBYTES);
    }
    engram__admission__free_unpacked(admission, NULL);
    return rc;
}

bool node_admission_check_card(const node_trust_t *trust, uint64_t id, const uint8_t *card,
                               size_t len, uint8_t *node_key)
{
    Engram__Admission *admission = (Engram__Admission *)s_open(
        card, len, &engram__admission__descriptor, s_admission_admin);
    if (!admission)
        return false;
    bool ok = s_same_cluster(trust, &admission->cluster_id, &admission->admin_key) &&
              admission->node_key.len == crypto_sign_PUBLICKEYBYTES &&
              node_identity_id_of(admission->node_key.data) == id;
    if (ok && node_key)
        memcpy(node_key, admission->node_key.data, crypto_sign_PUBLICKEYBYTES);
    engram__admission__free_unpacked(admission, NULL);
    return ok;
}

bool node_admission_check_leave(const node_trust_t *trust, uint64_t id,
                                const uint8_t *statement, size_t len)
{
    Engram__Decommission *removal = (Engram__Decommission *)s_open(
        statement, len, &engram__decommission__descriptor, s_decommission_admin);
    if (!removal)
        return false;
    bool ok = s_same_cluster(trust, &removal->cluster_id, &removal->admin_key) &&
              removal->node_id == id;
    engram__decommission__free_unpacked(removal, NULL);
    return ok;
}

int node_admission_curve_keys(const uint8_t *ed_public, const uint8_t *ed_secret,
                              uint8_t curve_public[32], uint8_t curve_secret[32])
{
    if (crypto_sign_ed25519_pk_to_curve25519(curve_public, ed_public) != 0)
        return ENGRAM_EINVAL;
    if (ed_secret && crypto_sign_ed25519_sk_to_curve25519(curve_secret, ed_secret) != 0)
        return ENGRAM_EINVAL;
    return 0;
}
