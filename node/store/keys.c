/*  node/store keys: the encoding of RocksDB keys (layout in store.h). */
#include <assert.h>
#include <czmq.h>
#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "crdt/array.h"
#include "crdt/codec.h"
#include "crdt/value.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/store/internal.h"
#include "node/trust/identity.h"
#include "proto/store.pb-c.h"

/*  --- keys ---------------------------------------------------------------------------- */

void store__be64(uint8_t *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

uint64_t store__get_be64(const uint8_t *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

void store__key_add(store_key_t *k, const void *bytes, size_t len)
{
    if (k->failed)
        return;
    if (crdt_array_grow((void **)&k->data, &k->cap, k->len + len, 1)) {
        k->failed = true;
        return;
    }
    memcpy(k->data + k->len, bytes, len);
    k->len += len;
}

void store__key_str0(store_key_t *k, const char *s)
{
    store__key_add(k, s, strlen(s) + 1);
}

void store__key_u64(store_key_t *k, uint64_t v)
{
    uint8_t b[8];
    store__be64(b, v);
    store__key_add(k, b, 8);
}

/*  sid \0 key \0 elem \0 node n */
void store__entry_key(store_key_t *k, const char *sid, const char *key, const char *elem,
                      uint64_t node, uint64_t n)
{
    store__key_str0(k, sid);
    store__key_str0(k, key);
    store__key_str0(k, elem);
    store__key_u64(k, node);
    store__key_u64(k, n);
}

/*  Splits an entry key (after `skip` bytes) into key, elem and dot; false if malformed. */
bool store__parse_entry_key(const char *raw, size_t len, size_t skip, const char **key,
                            const char **elem, crdt_dot_t *dot)
{
    if (len < skip + 2 + 16)
        return false;
    const char *end = raw + len - 16;
    const char *k = raw + skip;
    const char *k_end = memchr(k, '\0', (size_t)(end - k));
    if (!k_end)
        return false;
    const char *e = k_end + 1;
    const char *e_end = memchr(e, '\0', (size_t)(end - e));
    if (!e_end || e_end + 1 != end)
        return false;
    *key = k;
    *elem = e;
    dot->node = store__get_be64((const uint8_t *)end);
    dot->n = store__get_be64((const uint8_t *)end + 8);
    return true;
}

bool store__is_private(const char *sid)
{
    return sid[0] == '@';
}

rocksdb_column_family_handle_t *store__entries_cf(const node_store_t *self, const char *sid)
{
    return self->cf[store__is_private(sid) ? CF_PRIVATE : CF_ENTRIES];
}
