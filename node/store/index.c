/*  The search index: BM25 postings of every text memory, kept in the column family "search"
 *  by the same WriteBatch that writes or removes what they index (store.h, "Search index"),
 *  and the queries over it.
 *
 *  Keys (after the one-byte tag; "doc" is key \0 elem \0 node n, as in an entry key):
 *    'i' sid \0 term \0 ~tf u32 dl u32 doc -> prov u64   a posting, in impact order: a
 *                             term's postings by tf descending, then length ascending, then doc
 *    'i' sid \0 term \0 0 u32 prov u64 -> df u64   the class's documents holding the term,
 *                             first in the term's range (~tf is never 0): one seek finds both
 *    'd' sid \0 doc          -> prov u64, dl u32, 0 u32, then (term \0 tf u32)...   what a doc
 *                             indexed, its terms in byte order
 *    'n' sid \0 prov u64     -> docs u64, terms u64, vectors u64  a provenance class's totals
 *    'g' sid \0 prov u64     -> agents \0 ... \1 resources \0 ... the class's provenance
 *    'v' sid \0 doc          -> prov u64, norm f64, float32 x dims   an embedding
 *    'm' sid \0 dims u32 (BE) -> count u64                       the scope's embeddings of dims
 *    'j' seq u64             -> (len u16, key, count u64)...   a df journal record: the new
 *                             counts of the df counters one batch changed, not yet written
 *                             (see "Counter cache and df journal")
 *  Integers in keys are big-endian, in values little-endian. A provenance class is the set
 *  of documents whose values carry the same contributing agents and source resources (prov
 *  is the first 8 bytes of their BLAKE2b): access control judges a document by that pair
 *  only, so one decision per class decides every posting of it, and N, avgdl and df are
 *  counted over the classes the reader may see: a document it may not read is neither scored
 *  nor counted.
 *
 *  Queries. node_store_search_top answers the best k: df from the counters; then either
 *  every posting of the query's terms read and sorted by doc (few postings, or postings not
 *  mostly one term's), or a threshold algorithm (Fagin's, with MaxScore's rule): each term's
 *  cursor walks its postings in impact order, where BM25's term score only falls within a tf
 *  group and each group's best (its tf, its shortest doc) is found by one seek, so the cursor
 *  bounds what any posting it has not reached can add; the cursor of the highest bound is
 *  consumed, a document met for the first time is scored in full from its 'd' record, and
 *  the walk ends when no document unmet can rank among the best k. The answer is the
 *  exhaustive ranking's first k, in the same order with the same scores (the same function
 *  of the same statistics; index_test checks them within 1e-9). node_store_search_terms
 *  answers every match (hybrid rankings, checks).
 *
 *  Invariants (kept by every write, checked by `engramd --reindex` in tests):
 *  - a live register or log entry whose value's payload is valid UTF-8 with at least one term
 *    has exactly one 'd' record and one posting per distinct term; nothing else has any;
 *  - the df counter of a term and class, overlaid by the journal's records (the last count
 *    of a key winning), counts its postings in the class (gone at 0);
 *  - a live register or log entry whose value carries a valid embedding (node/search/vector.h)
 *    has exactly one 'v' record, and 'm' counts the scope's embeddings of each dimension
 *    (gone with the last one). A write here is refused an embedding of another dimension
 *    than the scope's; two nodes that gave a new scope its first embedding at once may leave
 *    it with two dimensions, both indexed (the order things arrive in decides nothing, so
 *    a rebuilt index equals the incremental one), each found by queries of its dimension;
 *  - 'n' sid prov holds the number of text documents of the class, the sum of their lengths
 *    and the number of its embeddings; it and its 'g' record are gone when both counts are 0,
 *    and 'g' is there exactly when 'n' is (both written by the batch that makes the class).
 */
#include <czmq.h>
#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/array.h"
#include "crdt/value.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/search/text.h"
#include "node/search/vector.h"
#include "node/store/internal.h"

#define TAG_IMPACT  'i'
#define TAG_DOC     'd'
#define TAG_TOTALS  'n'
#define TAG_PROV    'g'
#define TAG_VECTOR  'v'
#define TAG_DIMS    'm'
#define TAG_JOURNAL 'j'

/*  A class's totals changed by the batch. */
typedef struct {
    char *sid;
    uint64_t prov;
    int64_t docs;
    int64_t terms;
    int64_t vectors;
    uint8_t *provenance; /* the 'g' value, when the batch added a document of the class */
    size_t provenance_len;
} s_delta_t;

/*  A term's document frequency in one class changed by the batch. */
typedef struct {
    char *sid;
    char *term;
    uint64_t prov;
    int64_t docs;
} s_df_t;

/*  A scope's embeddings of one dimension changed by the batch. */
typedef struct {
    char *sid;
    uint32_t dims;
    int64_t count;
} s_vectors_t;

struct store_index_batch { /* each map NULL until first used (s_map) */
    zhash_t *deltas;       /* sid \x1f prov hex -> s_delta_t */
    zhash_t *dfs;          /* prov hex sid \x1f term -> s_df_t */
    zhash_t *vectors;      /* sid \x1f dims hex -> s_vectors_t */
    zhash_t *removed;      /* hex of the 'd' and 'v' keys removed by this batch: each once */
    zhash_t *staged;   /* hex of a counter key -> store_counter_t *: the counts this batch puts */
    zchunk_t *journal; /* the batch's df counts, as its 'j' record holds them (NULL: none) */
    uint64_t journal_seq; /* the record's seq, once store__index_finish put it */
};

static void s_delta_free(void *item)
{
    s_delta_t *d = item;
    free(d->sid);
    free(d->provenance);
    free(d);
}

store_index_batch_t *store__index_batch_new(void)
{
    store_index_batch_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    return self;
}

void store__index_batch_destroy(store_index_batch_t **self_p)
{
    store_index_batch_t *self = *self_p;
    if (!self)
        return;
    zhash_destroy(&self->deltas);
    zhash_destroy(&self->dfs);
    zhash_destroy(&self->vectors);
    zhash_destroy(&self->removed);
    zhash_destroy(&self->staged);
    zchunk_destroy(&self->journal);
    free(self);
    *self_p = NULL;
}

static void s_le32(uint8_t *out, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t s_get_le32(const uint8_t *in)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)in[i] << (8 * i);
    return v;
}

static uint32_t s_get_be32(const uint8_t *in)
{
    return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
}

static uint64_t s_get_le64(const uint8_t *in)
{
    return (uint64_t)s_get_le32(in) | (uint64_t)s_get_le32(in + 4) << 32;
}

static void s_doc_suffix(store_key_t *k, const char *key, const char *elem, crdt_dot_t dot)
{
    store__key_str0(k, key);
    store__key_str0(k, elem);
    store__key_u64(k, dot.node);
    store__key_u64(k, dot.n);
}

static void s_tagged(store_key_t *k, char tag, const char *sid)
{
    k->len = 0;
    store__key_add(k, &tag, 1);
    store__key_str0(k, sid);
}

/*  'i' sid \0 term \0 ~tf dl doc: a posting in impact order (tf descending, then dl). */
static void s_impact_key(store_key_t *k, const char *sid, const char *term, uint32_t tf,
                         uint32_t dl, const char *key, const char *elem, crdt_dot_t dot)
{
    s_tagged(k, TAG_IMPACT, sid);
    store__key_str0(k, term);
    uint32_t rank[2] = {~tf, dl};
    for (int i = 0; i < 2; i++) {
        uint8_t be[4] = {(uint8_t)(rank[i] >> 24), (uint8_t)(rank[i] >> 16),
                         (uint8_t)(rank[i] >> 8), (uint8_t)rank[i]};
        store__key_add(k, be, sizeof be);
    }
    s_doc_suffix(k, key, elem, dot);
}

/*  The provenance a class is named by: agents \0 ... \1 resources \0 ... */
static int s_provenance(const crdt_value_t *v, uint8_t **out, size_t *len, uint64_t *prov)
{
    store_key_t k = {0};
    for (size_t i = 0; i < v->nagents; i++)
        store__key_str0(&k, v->agents[i]);
    store__key_add(&k, "\1", 1);
    for (size_t i = 0; i < v->nresources; i++)
        store__key_str0(&k, v->resources[i]);
    if (k.failed) {
        free(k.data);
        return ENGRAM_ENOMEM;
    }
    uint8_t hash[crypto_generichash_BYTES_MIN];
    crypto_generichash(hash, sizeof hash, k.data, k.len, NULL, 0);
    *prov = s_get_le64(hash);
    *out = k.data;
    *len = k.len;
    return 0;
}

/*  One of a batch's maps, made on first use: most writes touch few of them or none, and a zhash
 *  allocates its table up front (five per write were a twentieth of a put's CPU). NULL: out
 *  of memory. */
static zhash_t *s_map(zhash_t **map)
{
    if (!*map)
        *map = zhash_new();
    return *map;
}

static s_delta_t *s_delta(store_index_batch_t *ib, const char *sid, uint64_t prov)
{
    char name[ENGRAM_MAX_KEY_BYTES + 32];
    snprintf(name, sizeof name, "%s\x1f%016" PRIx64, sid, prov);
    if (!s_map(&ib->deltas))
        return NULL;
    s_delta_t *d = zhash_lookup(ib->deltas, name);
    if (d)
        return d;
    d = calloc(1, sizeof *d);
    if (!d || !(d->sid = strdup(sid))) {
        free(d);
        return NULL;
    }
    d->prov = prov;
    zhash_insert(ib->deltas, name, d);
    zhash_freefn(ib->deltas, name, s_delta_free);
    return d;
}

static void s_df_free(void *item)
{
    s_df_t *d = item;
    free(d->sid);
    free(d->term);
    free(d);
}

/*  The pending change of term's document frequency in class prov of sid. */
static s_df_t *s_df(store_index_batch_t *ib, const char *sid, const char *term, uint64_t prov)
{
    char *name = zsys_sprintf("%016" PRIx64 "%s\x1f%s", prov, sid, term);
    s_df_t *d = name && s_map(&ib->dfs) ? zhash_lookup(ib->dfs, name) : NULL;
    if (d || !name || !ib->dfs) {
        zstr_free(&name);
        return d;
    }
    d = calloc(1, sizeof *d);
    if (!d || !(d->sid = strdup(sid)) || !(d->term = strdup(term))) {
        if (d)
            free(d->sid);
        free(d);
        zstr_free(&name);
        return NULL;
    }
    d->prov = prov;
    zhash_insert(ib->dfs, name, d);
    zhash_freefn(ib->dfs, name, s_df_free);
    zstr_free(&name);
    return d;
}

static void s_vectors_free(void *item)
{
    s_vectors_t *v = item;
    free(v->sid);
    free(v);
}

static s_vectors_t *s_vectors(store_index_batch_t *ib, const char *sid, uint32_t dims)
{
    char name[ENGRAM_MAX_KEY_BYTES + 16];
    snprintf(name, sizeof name, "%s\x1f%08x", sid, dims);
    if (!s_map(&ib->vectors))
        return NULL;
    s_vectors_t *v = zhash_lookup(ib->vectors, name);
    if (v)
        return v;
    v = calloc(1, sizeof *v);
    if (!v || !(v->sid = strdup(sid))) {
        free(v);
        return NULL;
    }
    v->dims = dims;
    zhash_insert(ib->vectors, name, v);
    zhash_freefn(ib->vectors, name, s_vectors_free);
    return v;
}

static int s_cmp_term(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*  'm' sid \0 dims: the count of the scope's embeddings of that dimension. */
static void s_dims_key(store_key_t *k, const char *sid, uint32_t dims)
{
    s_tagged(k, TAG_DIMS, sid);
    uint8_t be[4] = {(uint8_t)(dims >> 24), (uint8_t)(dims >> 16), (uint8_t)(dims >> 8),
                     (uint8_t)dims};
    store__key_add(k, be, sizeof be);
}

int node_store_vector_dims(node_store_t *self, const char *sid, uint32_t *dims, size_t max,
                           size_t *n)
{
    *n = 0;
    store_key_t prefix = {0};
    s_tagged(&prefix, TAG_DIMS, sid);
    if (prefix.failed) {
        free(prefix.data);
        return ENGRAM_ENOMEM;
    }
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(self->db, self->read_options, self->cf[CF_SEARCH]);
    for (rocksdb_iter_seek(it, (char *)prefix.data, prefix.len); rocksdb_iter_valid(it) && *n < max;
         rocksdb_iter_next(it)) {
        size_t klen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (klen != prefix.len + 4 || memcmp(k, prefix.data, prefix.len) != 0)
            break;
        const uint8_t *d = k + prefix.len;
        dims[(*n)++] = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
    }
    return store__iter_end(it, &prefix, 0);
}

/*  Puts the terms of a text document: its postings and its 'd' record. */
static int s_add_terms(node_store_t *self, store_index_batch_t *ib, rocksdb_writebatch_t *batch,
                       const char *sid, const char *key, const char *elem, crdt_dot_t dot,
                       uint64_t prov, search_terms_t *terms)
{
    uint32_t dl = (uint32_t)terms->n;
    qsort(terms->terms, terms->n, sizeof *terms->terms, s_cmp_term);
    store_key_t k = {0}, doc = {0};
    uint8_t head[16];
    store__le64((char *)head, prov);
    s_le32(head + 8, dl);
    s_le32(head + 12, 0);
    store__key_add(&doc, head, sizeof head);
    for (size_t i = 0; i < terms->n;) {
        size_t j = i + 1;
        while (j < terms->n && strcmp(terms->terms[j], terms->terms[i]) == 0)
            j++;
        uint8_t tf[4], class[8];
        s_le32(tf, (uint32_t)(j - i));
        store__le64((char *)class, prov);
        s_impact_key(&k, sid, terms->terms[i], (uint32_t)(j - i), dl, key, elem, dot);
        if (!k.failed)
            rocksdb_writebatch_put_cf(batch, self->cf[CF_SEARCH], (char *)k.data, k.len,
                                      (char *)class, sizeof class);
        s_df_t *df = s_df(ib, sid, terms->terms[i], prov);
        if (!df)
            k.failed = true;
        else
            df->docs++;
        store__key_str0(&doc, terms->terms[i]);
        store__key_add(&doc, tf, sizeof tf);
        i = j;
    }
    s_tagged(&k, TAG_DOC, sid);
    s_doc_suffix(&k, key, elem, dot);
    int rc = k.failed || doc.failed ? ENGRAM_ENOMEM : 0;
    if (rc == 0)
        rocksdb_writebatch_put_cf(batch, self->cf[CF_SEARCH], (char *)k.data, k.len,
                                  (char *)doc.data, doc.len);
    free(k.data);
    free(doc.data);
    return rc;
}

/*  Puts an embedding's 'v' record and counts it under its dimension. */
static int s_add_vector(node_store_t *self, store_index_batch_t *ib, rocksdb_writebatch_t *batch,
                        const char *sid, const char *key, const char *elem, crdt_dot_t dot,
                        uint64_t prov, const float *vector, uint32_t dims)
{
    s_vectors_t *pending = s_vectors(ib, sid, dims);
    store_key_t k = {0};
    s_tagged(&k, TAG_VECTOR, sid);
    s_doc_suffix(&k, key, elem, dot);
    size_t len = 16 + 4 * (size_t)dims;
    uint8_t *record = malloc(len);
    if (!pending || !record || k.failed) {
        free(record);
        free(k.data);
        return ENGRAM_ENOMEM;
    }
    store__le64((char *)record, prov);
    double norm = search_vector_norm(vector, dims);
    memcpy(record + 8, &norm, 8);
    memcpy(record + 16, vector, 4 * (size_t)dims); /* little-endian host (CMakeLists.txt) */
    rocksdb_writebatch_put_cf(batch, self->cf[CF_SEARCH], (char *)k.data, k.len, (char *)record,
                              len);
    free(record);
    free(k.data);
    pending->count++;
    return 0;
}

int store__index_add(node_store_t *self, store_index_batch_t *ib, rocksdb_writebatch_t *batch,
                     const char *sid, const char *key, const char *elem, crdt_dot_t dot,
                     crdt_type_id_t type, const uint8_t *data, size_t len)
{
    if (type != CRDT_REG && type != CRDT_LOG)
        return 0;
    crdt_value_t *v = NULL;
    if (crdt_value_decode(data, len, &v) != 0)
        return 0; /* not a value this build reads: nothing to index */
    search_terms_t terms = {0};
    int rc = search_tokenize(self->tokenizer, (const char *)v->data, v->len, &terms);
    if (rc == ENGRAM_EINVAL)
        rc = 0; /* binary: no terms */
    float *vector = v->embedding_len ? malloc(v->embedding_len) : NULL;
    uint32_t dims = 0;
    if (rc == 0 && v->embedding_len && !vector)
        rc = ENGRAM_ENOMEM;
    bool has_vector =
        rc == 0 && vector &&
        search_embedding_decode(v->embedding, v->embedding_len, vector, &dims, NULL, 0) == 0;
    if (rc || (terms.n == 0 && !has_vector)) {
        free(vector);
        search_terms_free(&terms);
        crdt_value_destroy(&v);
        return rc;
    }
    uint8_t *provenance = NULL;
    size_t provenance_len = 0;
    uint64_t prov = 0;
    rc = s_provenance(v, &provenance, &provenance_len, &prov);
    crdt_value_destroy(&v);
    s_delta_t *delta = rc == 0 ? s_delta(ib, sid, prov) : NULL;
    if (rc == 0 && !delta)
        rc = ENGRAM_ENOMEM;
    if (rc == 0 && terms.n) {
        rc = s_add_terms(self, ib, batch, sid, key, elem, dot, prov, &terms);
        if (rc == 0) {
            delta->docs++;
            delta->terms += (int64_t)terms.n;
        }
    }
    if (rc == 0 && has_vector)
        rc = s_add_vector(self, ib, batch, sid, key, elem, dot, prov, vector, dims);
    if (rc == 0 && has_vector)
        delta->vectors++;
    if (rc == 0 && !delta->provenance) {
        delta->provenance = provenance;
        delta->provenance_len = provenance_len;
        provenance = NULL;
    }
    free(provenance);
    free(vector);
    search_terms_free(&terms);
    return rc;
}

/*  Reads the record at k unless this batch removed it already (*found false then); marks it
 *  removed. */
static int s_take_record(node_store_t *self, store_index_batch_t *ib, const store_key_t *k,
                         char **value, size_t *len)
{
    *value = NULL;
    char *err = NULL;
    char *v = rocksdb_get_cf(self->db, self->read_options, self->cf[CF_SEARCH], (char *)k->data,
                             k->len, len, &err);
    int rc = store__rocks_error(&err);
    if (rc || !v)
        return rc;
    char *seen = malloc(2 * k->len + 1);
    if (!seen) {
        rocksdb_free(v);
        return ENGRAM_ENOMEM;
    }
    sodium_bin2hex(seen, 2 * k->len + 1, k->data, k->len);
    if (!s_map(&ib->removed)) {
        free(seen);
        rocksdb_free(v);
        return ENGRAM_ENOMEM;
    }
    if (zhash_lookup(ib->removed, seen)) {
        rocksdb_free(v);
    } else {
        zhash_insert(ib->removed, seen, (void *)1);
        *value = v;
    }
    free(seen);
    return 0;
}

/*  Deletes a text document's postings and 'd' record (k holds its 'd' key). */
static int s_remove_terms(node_store_t *self, store_index_batch_t *ib, rocksdb_writebatch_t *batch,
                          const char *sid, const char *key, const char *elem, crdt_dot_t dot,
                          store_key_t *k)
{
    char *doc = NULL;
    size_t len = 0;
    int rc = s_take_record(self, ib, k, &doc, &len);
    if (rc || !doc || len < 16) {
        rocksdb_free(doc);
        return rc;
    }
    rocksdb_writebatch_delete_cf(batch, self->cf[CF_SEARCH], (char *)k->data, k->len);
    const uint8_t *p = (const uint8_t *)doc, *end = p + len;
    uint64_t prov = s_get_le64(p);
    uint32_t dl = s_get_le32(p + 8);
    for (p += 16; p < end;) {
        const uint8_t *nul = memchr(p, '\0', (size_t)(end - p));
        if (!nul || end - nul < 5)
            break; /* written by this file: cannot happen short of corruption */
        s_impact_key(k, sid, (const char *)p, s_get_le32(nul + 1), dl, key, elem, dot);
        if (!k->failed)
            rocksdb_writebatch_delete_cf(batch, self->cf[CF_SEARCH], (char *)k->data, k->len);
        s_df_t *df = s_df(ib, sid, (const char *)p, prov);
        if (!df)
            k->failed = true;
        else
            df->docs--;
        p = nul + 1 + 4;
    }
    rocksdb_free(doc);
    s_delta_t *delta = k->failed ? NULL : s_delta(ib, sid, prov);
    if (!delta)
        return ENGRAM_ENOMEM;
    delta->docs--;
    delta->terms -= dl;
    return 0;
}

/*  Deletes an embedding's 'v' record (k holds its key). */
static int s_remove_vector(node_store_t *self, store_index_batch_t *ib, rocksdb_writebatch_t *batch,
                           const char *sid, store_key_t *k)
{
    char *record = NULL;
    size_t len = 0;
    int rc = s_take_record(self, ib, k, &record, &len);
    if (rc || !record || len < 16) {
        rocksdb_free(record);
        return rc;
    }
    rocksdb_writebatch_delete_cf(batch, self->cf[CF_SEARCH], (char *)k->data, k->len);
    uint64_t prov = s_get_le64((uint8_t *)record);
    uint32_t dims = (uint32_t)((len - 16) / 4);
    rocksdb_free(record);
    s_delta_t *delta = s_delta(ib, sid, prov);
    s_vectors_t *vectors = s_vectors(ib, sid, dims);
    if (!delta || !vectors)
        return ENGRAM_ENOMEM;
    delta->vectors--;
    vectors->count--;
    return 0;
}

int store__index_remove(node_store_t *self, store_index_batch_t *ib, rocksdb_writebatch_t *batch,
                        const char *sid, const char *key, const char *elem, crdt_dot_t dot)
{
    store_key_t k = {0};
    s_tagged(&k, TAG_DOC, sid);
    s_doc_suffix(&k, key, elem, dot);
    int rc = k.failed ? ENGRAM_ENOMEM : s_remove_terms(self, ib, batch, sid, key, elem, dot, &k);
    if (rc == 0) {
        s_tagged(&k, TAG_VECTOR, sid);
        s_doc_suffix(&k, key, elem, dot);
        rc = k.failed ? ENGRAM_ENOMEM : s_remove_vector(self, ib, batch, sid, &k);
    }
    free(k.data);
    return rc;
}

/*  Puts a class's changed totals ('n' docs, terms, vectors), and its provenance ('g') when
 *  the class is new (a class is named by its provenance's hash, so an existing class's 'g'
 *  already holds those bytes: rewriting it cost a memtable insert a write); both go when the
 *  class has nothing left. */
static int s_finish_class(node_store_t *self, rocksdb_writebatch_t *batch, const s_delta_t *d,
                          store_key_t *k)
{
    s_tagged(k, TAG_TOTALS, d->sid);
    store__key_u64(k, d->prov);
    if (k->failed)
        return ENGRAM_ENOMEM;
    char *err = NULL;
    size_t len = 0;
    char *old = rocksdb_get_cf(self->db, self->read_options, self->cf[CF_SEARCH], (char *)k->data,
                               k->len, &len, &err);
    int rc = store__rocks_error(&err);
    uint64_t totals[3] = {0, 0, 0};
    for (int i = 0; old && len == sizeof totals && i < 3; i++)
        totals[i] = s_get_le64((uint8_t *)old + 8 * i);
    rocksdb_free(old);
    if (rc)
        return rc;
    bool existed = totals[0] || totals[2]; /* then its 'g' is there */
    totals[0] += (uint64_t)d->docs;
    totals[1] += (uint64_t)d->terms;
    totals[2] += (uint64_t)d->vectors;
    if (totals[0] == 0 && totals[2] == 0) {
        rocksdb_writebatch_delete_cf(batch, self->cf[CF_SEARCH], (char *)k->data, k->len);
        k->data[0] = TAG_PROV;
        rocksdb_writebatch_delete_cf(batch, self->cf[CF_SEARCH], (char *)k->data, k->len);
        return 0;
    }
    char raw[sizeof totals];
    for (int i = 0; i < 3; i++)
        store__le64(raw + 8 * i, totals[i]);
    rocksdb_writebatch_put_cf(batch, self->cf[CF_SEARCH], (char *)k->data, k->len, raw, sizeof raw);
    if (d->provenance && !existed) {
        k->data[0] = TAG_PROV;
        rocksdb_writebatch_put_cf(batch, self->cf[CF_SEARCH], (char *)k->data, k->len,
                                  (char *)d->provenance, d->provenance_len);
    }
    return 0;
}

/*  'i' sid \0 term \0 0 u32 prov: how many documents of the class hold the term (before
 *  the term's postings, whose ~tf is never 0, so that one seek finds both). */
static void s_df_key(store_key_t *k, const char *sid, const char *term, uint64_t prov)
{
    s_tagged(k, TAG_IMPACT, sid);
    store__key_str0(k, term);
    store__key_add(k, "\0\0\0\0", 4);
    store__key_u64(k, prov);
}

/*  --- Counter cache and df journal ---------------------------------------------------------
 *  Each distinct term of a text written changes its df counter. Reading each back from
 *  RocksDB cost a quarter of an indexed put's CPU, and writing each a memtable insert: half
 *  of a text's keys (about 35 of 70) were counters. So:
 *
 *  - The store keeps the counters it wrote or journaled, with their latest count, in a cache
 *    (counter_cache: hex of the key -> store_counter_t). A count enters it only once its batch
 *    is written (store__index_written), so a batch that fails or is dropped leaves the cache
 *    as the store is. Every path that writes a batch with index changes reports it, before
 *    anything else writes: the next batch counts from what the cache holds.
 *  - A batch does not put its df counters: it puts one journal record, 'j' seq u64 (BE) ->
 *    (key length u16, key, count u64)... (LE), the new count of each counter it changed, and
 *    the cache holds those counts as dirty, the only copy besides the journal. The counters are
 *    written, and the records written and reported deleted (one range), together by
 *    store__index_flush_counters: once STORE_JOURNAL_MAX records or STORE_DIRTY_MAX dirty
 *    counters wait, when the cache is full, before a digest, after a rebuild and when the
 *    store closes. A counter changed by many batches in between is written once. The flush's
 *    batch is not synced on its own: the records it deletes are, and the WAL keeps order.
 *  - The store's df counts are then the counters in RocksDB overlaid by the journal: a
 *    store that stopped without flushing (a crash, a checkpoint) replays its journal into the
 *    cache when it opens (store__index_load_journal), the records in order, the last count of a
 *    key winning. Queries take a term's counts from the cache where it has them, from RocksDB
 *    where not (s_term_open).
 *  - A clean counter leaves the cache when a batch stages a new value for it (s_stage_count),
 *    so a batch never reported costs a read, never a stale count; a dirty one stays, as the
 *    latest count. Bounded by counter_cache_max bytes of keys (each counted with
 *    COUNTER_ENTRY_OVERHEAD): when a write's counts do not fit, the counters are flushed and
 *    the cache emptied, then given that write's counts back; the common terms come back at
 *    their next write. A rebuild, whose range delete drops the journal too, empties it. The
 *    dims counters ('m') are few and written directly. */

/*  What one cached counter costs beyond its key's hex: the hash item, the count, malloc. */
#define COUNTER_ENTRY_OVERHEAD 64

/*  'j' seq (big-endian): a journal record's key. */
static void s_journal_key(char key[9], uint64_t seq)
{
    key[0] = TAG_JOURNAL;
    store__be64((uint8_t *)key + 1, seq);
}

static void s_count_free(void **item)
{
    free(*item);
    *item = NULL;
}

/*  The cached counter whose key's hex is hex, or NULL. */
static store_counter_t *s_cached(node_store_t *self, const char *hex)
{
    return self->counter_cache ? zhashx_lookup(self->counter_cache, hex) : NULL;
}

/*  Drops the clean counter whose key's hex is hex from the cache, if it is there. */
static void s_uncache_clean(node_store_t *self, const char *hex)
{
    store_counter_t *cached = s_cached(self, hex);
    if (cached && !cached->dirty) {
        zhashx_delete(self->counter_cache, hex);
        self->counter_cache_bytes -= strlen(hex) + COUNTER_ENTRY_OVERHEAD;
    }
}

/*  Sets the cached counter of hex to count, dirty or not; false when out of memory. */
static bool s_cache_count(node_store_t *self, const char *hex, uint64_t count, bool dirty)
{
    if (!self->counter_cache) {
        self->counter_cache = zhashx_new();
        if (!self->counter_cache)
            return false;
        zhashx_set_destructor(self->counter_cache, s_count_free);
    }
    store_counter_t *cached = s_cached(self, hex);
    if (!cached) {
        cached = calloc(1, sizeof *cached);
        if (!cached || zhashx_insert(self->counter_cache, hex, cached) != 0) {
            free(cached);
            return false;
        }
        self->counter_cache_bytes += strlen(hex) + COUNTER_ENTRY_OVERHEAD;
    }
    if (dirty && !cached->dirty)
        self->counters_dirty++;
    else if (!dirty && cached->dirty)
        self->counters_dirty--;
    cached->count = count;
    cached->dirty = dirty;
    return true;
}

int store__index_flush_counters(node_store_t *self)
{
    if (self->counters_dirty == 0 && self->journal_first == self->journal_written)
        return 0;
    if (self->failed)
        return self->failed;
    rocksdb_writebatch_t *batch = rocksdb_writebatch_create();
    uint8_t key[STORE_MAX_COUNTER_KEY];
    int rc = 0;
    for (store_counter_t *c = self->counter_cache ? zhashx_first(self->counter_cache) : NULL;
         c && rc == 0; c = zhashx_next(self->counter_cache)) {
        const char *hex = zhashx_cursor(self->counter_cache);
        size_t len = 0;
        if (!c->dirty)
            continue;
        if (sodium_hex2bin(key, sizeof key, hex, strlen(hex), NULL, &len, NULL) != 0)
            rc = ENGRAM_EINVAL; /* never: the cache's keys are the hex of counter keys */
        else if (c->count == 0) {
            rocksdb_writebatch_delete_cf(batch, self->cf[CF_SEARCH], (char *)key, len);
        } else {
            char raw[8];
            store__le64(raw, c->count);
            rocksdb_writebatch_put_cf(batch, self->cf[CF_SEARCH], (char *)key, len, raw,
                                      sizeof raw);
        }
    }
    /* the records written and reported: one finished but not written yet stays */
    char first[9], end[9];
    s_journal_key(first, self->journal_first);
    s_journal_key(end, self->journal_written);
    rocksdb_writebatch_delete_range_cf(batch, self->cf[CF_SEARCH], first, sizeof first, end,
                                       sizeof end);
    if (rc == 0)
        rc = store__write_batch(self, batch);
    rocksdb_writebatch_destroy(batch);
    if (rc)
        return rc;
    for (store_counter_t *c = self->counter_cache ? zhashx_first(self->counter_cache) : NULL;
         c && self->counters_dirty; c = zhashx_next(self->counter_cache))
        if (c->dirty) {
            c->dirty = false;
            self->counters_dirty--;
        }
    self->journal_first = self->journal_written;
    return 0;
}

/*  Replays one journal record into the cache: 0, ENGRAM_EDECODE when it does not parse, or
 *  ENGRAM_ENOMEM. */
static int s_replay(node_store_t *self, const uint8_t *v, size_t len)
{
    char hex[2 * STORE_MAX_COUNTER_KEY + 1];
    for (size_t at = 0; at < len;) {
        if (len - at < 2)
            return ENGRAM_EDECODE;
        size_t klen = (size_t)v[at] | (size_t)v[at + 1] << 8;
        at += 2;
        if (klen == 0 || klen > STORE_MAX_COUNTER_KEY || len - at < klen + 8)
            return ENGRAM_EDECODE;
        sodium_bin2hex(hex, sizeof hex, v + at, klen);
        if (!s_cache_count(self, hex, s_get_le64(v + at + klen), true))
            return ENGRAM_ENOMEM;
        at += klen + 8;
    }
    return 0;
}

int store__index_load_journal(node_store_t *self)
{
    char first[9];
    s_journal_key(first, 0);
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(self->db, self->read_options, self->cf[CF_SEARCH]);
    int rc = 0;
    bool any = false;
    for (rocksdb_iter_seek(it, first, 1); rc == 0 && rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (klen == 0 || k[0] != TAG_JOURNAL)
            break;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        rc = klen == 9 ? s_replay(self, v, vlen) : ENGRAM_EDECODE;
        if (rc)
            break;
        uint64_t seq = store__get_be64(k + 1);
        if (!any)
            self->journal_first = seq;
        self->journal_next = self->journal_written = seq + 1;
        any = true;
    }
    rc = store__iter_end(it, NULL, rc);
    self->journal_loaded = rc == 0;
    return rc;
}

/*  Caches the counts ib staged; dirty ones (journaled) as dirty unless clean (written since).
 *  A clean count that does not fit within the bound is left out: read from RocksDB next
 *  time. */
static void s_cache_staged(node_store_t *self, store_index_batch_t *ib, bool clean)
{
    for (store_counter_t *c = ib->staged ? zhash_first(ib->staged) : NULL; c;
         c = zhash_next(ib->staged)) {
        const char *hex = zhash_cursor(ib->staged);
        bool dirty = c->dirty && !clean;
        if (!dirty && self->counter_cache_bytes + strlen(hex) + COUNTER_ENTRY_OVERHEAD >
                          self->counter_cache_max)
            continue;
        /* a dirty count the cache cannot take is lost to queries and to the next batches:
         * the store stops writing (the journal still holds it, replayed at the next open) */
        if (!s_cache_count(self, hex, c->count, dirty) && dirty)
            store__latch(self, ENGRAM_ENOMEM);
    }
}

void store__index_written(node_store_t *self, store_index_batch_t *ib)
{
    if (!ib)
        return;
    s_cache_staged(self, ib, false);
    if (ib->journal)
        self->journal_written = ib->journal_seq + 1;
    if (store__index_journal_records(self) < self->journal_max &&
        self->counters_dirty < STORE_DIRTY_MAX &&
        self->counter_cache_bytes <= self->counter_cache_max)
        return;
    if (store__index_flush_counters(self) == 0 &&
        self->counter_cache_bytes > self->counter_cache_max) {
        /* full: emptied, then holding this batch's counts, the likeliest to come again */
        store__index_forget_counters(self);
        s_cache_staged(self, ib, true);
    }
}

void store__index_forget_counters(node_store_t *self)
{
    if (self->counter_cache)
        zhashx_purge(self->counter_cache);
    self->counter_cache_bytes = 0;
    self->counters_dirty = 0;
    self->journal_first = self->journal_written = self->journal_next;
}

size_t store__index_journal_records(const node_store_t *self)
{
    return (size_t)(self->journal_written - self->journal_first);
}

size_t store__index_cached_counters(const node_store_t *self)
{
    return self->counter_cache ? zhashx_size(self->counter_cache) : 0;
}

/*  The count of the counter at k (hex its key's hex), as the store holds it: the cache's, or
 *  RocksDB's (0 when there is none). */
static int s_current_count(node_store_t *self, const store_key_t *k, const char *hex,
                           uint64_t *count)
{
    store_counter_t *cached = s_cached(self, hex);
    if (cached) {
        *count = cached->count;
        return 0;
    }
    char *err = NULL;
    size_t len = 0;
    char *old = rocksdb_get_cf(self->db, self->read_options, self->cf[CF_SEARCH], (char *)k->data,
                               k->len, &len, &err);
    int rc = store__rocks_error(&err);
    *count = old && len == 8 ? s_get_le64((uint8_t *)old) : 0;
    rocksdb_free(old);
    return rc;
}

/*  Adds delta to the u64 count at k (gone at 0), staging the new count in ib: a df counter
 *  (journaled) into ib's journal record, a dims counter into batch. */
static int s_stage_count(node_store_t *self, store_index_batch_t *ib, rocksdb_writebatch_t *batch,
                         const store_key_t *k, int64_t delta, bool journaled)
{
    if (k->len > STORE_MAX_COUNTER_KEY)
        return ENGRAM_EINVAL; /* longer than any sid and term the store takes */
    char hex[2 * STORE_MAX_COUNTER_KEY + 1];
    sodium_bin2hex(hex, sizeof hex, k->data, k->len);
    uint64_t count = 0;
    int rc = s_current_count(self, k, hex, &count);
    if (rc)
        return rc;
    count += (uint64_t)delta;
    store_counter_t *staged = s_map(&ib->staged) ? malloc(sizeof *staged) : NULL;
    if (!staged)
        return ENGRAM_ENOMEM;
    *staged = (store_counter_t){.count = count, .dirty = journaled};
    if (journaled) {
        uint8_t head[2] = {(uint8_t)k->len, (uint8_t)(k->len >> 8)}, raw[8];
        store__le64((char *)raw, count);
        if (!ib->journal)
            ib->journal = zchunk_new(NULL, 1024);
        if (!ib->journal || !zchunk_extend(ib->journal, head, sizeof head) ||
            !zchunk_extend(ib->journal, k->data, k->len) ||
            !zchunk_extend(ib->journal, raw, sizeof raw)) {
            free(staged);
            return ENGRAM_ENOMEM;
        }
    } else if (count == 0) {
        rocksdb_writebatch_delete_cf(batch, self->cf[CF_SEARCH], (char *)k->data, k->len);
    } else {
        char raw[8];
        store__le64(raw, count);
        rocksdb_writebatch_put_cf(batch, self->cf[CF_SEARCH], (char *)k->data, k->len, raw,
                                  sizeof raw);
    }
    s_uncache_clean(self, hex); /* back once the batch is written */
    zhash_update(ib->staged, hex, staged);
    zhash_freefn(ib->staged, hex, free);
    return 0;
}

int store__index_finish(node_store_t *self, store_index_batch_t *ib, rocksdb_writebatch_t *batch)
{
    int rc = 0;
    store_key_t k = {0};
    for (s_delta_t *d = ib->deltas ? zhash_first(ib->deltas) : NULL; d && rc == 0;
         d = zhash_next(ib->deltas))
        if (d->docs || d->terms || d->vectors)
            rc = s_finish_class(self, batch, d, &k);
    for (s_df_t *d = ib->dfs ? zhash_first(ib->dfs) : NULL; d && rc == 0; d = zhash_next(ib->dfs)) {
        if (d->docs == 0)
            continue;
        s_df_key(&k, d->sid, d->term, d->prov);
        if (k.failed) {
            rc = ENGRAM_ENOMEM;
            break;
        }
        rc = s_stage_count(self, ib, batch, &k, d->docs, true);
    }
    for (s_vectors_t *v = ib->vectors ? zhash_first(ib->vectors) : NULL; v && rc == 0;
         v = zhash_next(ib->vectors)) {
        if (v->count == 0)
            continue;
        s_dims_key(&k, v->sid, v->dims);
        if (k.failed) {
            rc = ENGRAM_ENOMEM;
            break;
        }
        rc = s_stage_count(self, ib, batch, &k, v->count, false);
    }
    if (rc == 0 && ib->journal) {
        char key[9];
        ib->journal_seq = self->journal_next++;
        s_journal_key(key, ib->journal_seq);
        rocksdb_writebatch_put_cf(batch, self->cf[CF_SEARCH], key, sizeof key,
                                  (char *)zchunk_data(ib->journal), zchunk_size(ib->journal));
    }
    free(k.data);
    return rc;
}

/*  --- queries ---------------------------------------------------------------------------- */

/*  A provenance class and whether the reader may see it. */
typedef struct {
    uint64_t prov;
    bool visible;
} s_class_t;

typedef struct {
    node_store_t *self;
    const char *sid;
    node_visible_fn visible;
    void *arg;
    s_class_t *classes; /* sorted by prov */
    size_t n;
    rocksdb_iterator_t *it; /* the query's iterator for short scans (totals, df, postings) */
} s_classes_t;

static int s_cmp_class(const void *a, const void *b)
{
    uint64_t x = ((const s_class_t *)a)->prov, y = ((const s_class_t *)b)->prov;
    return x < y ? -1 : x > y;
}

/*  Decides one class from its 'g' record. */
static bool s_decide(s_classes_t *c, const uint8_t *p, size_t len)
{
    size_t names = 0;
    for (size_t i = 0; i < len; i++)
        names += p[i] == '\0';
    const char **agents = calloc(names + 1, sizeof *agents);
    const char **resources = calloc(names + 1, sizeof *resources);
    size_t na = 0, nr = 0;
    bool in_resources = false, readable = agents && resources;
    for (const uint8_t *end = p + len; readable && p < end;) {
        if (*p == 1 && !in_resources) {
            in_resources = true;
            p++;
            continue;
        }
        const uint8_t *nul = memchr(p, '\0', (size_t)(end - p));
        if (!nul) {
            readable = false; /* unreadable: never shown */
            break;
        }
        if (in_resources)
            resources[nr++] = (const char *)p;
        else
            agents[na++] = (const char *)p;
        p = nul + 1;
    }
    bool visible = readable && c->visible(c->arg, agents, na, resources, nr);
    free(agents);
    free(resources);
    return visible;
}

/*  Loads the classes of sid and the totals of the visible ones; the query's iterator is made
 *  here and ended, with the classes, by s_classes_end (whatever this returned). */
static int s_load_classes(s_classes_t *c, uint64_t *docs, uint64_t *terms)
{
    *docs = *terms = 0;
    store_key_t prefix = {0};
    s_tagged(&prefix, TAG_TOTALS, c->sid);
    if (prefix.failed)
        return ENGRAM_ENOMEM;
    store_key_t g = {0};
    int rc = 0;
    size_t cap = 0;
    rocksdb_iterator_t *it = c->it =
        rocksdb_create_iterator_cf(c->self->db, c->self->read_options, c->self->cf[CF_SEARCH]);
    for (rocksdb_iter_seek(it, (char *)prefix.data, prefix.len); rc == 0 && rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen != prefix.len + 8 || memcmp(k, prefix.data, prefix.len) != 0)
            break;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        if (vlen != 24)
            continue;
        if ((rc = crdt_array_grow((void **)&c->classes, &cap, c->n + 1, sizeof *c->classes)) != 0)
            break;
        s_class_t *class = &c->classes[c->n++];
        class->prov = store__get_be64((const uint8_t *)k + prefix.len);
        g.len = 0;
        store__key_add(&g, k, klen);
        if (g.failed) {
            rc = ENGRAM_ENOMEM;
            break;
        }
        g.data[0] = TAG_PROV;
        char *err = NULL;
        size_t glen = 0;
        char *provenance =
            rocksdb_get_cf(c->self->db, c->self->read_options, c->self->cf[CF_SEARCH],
                           (char *)g.data, g.len, &glen, &err);
        rc = store__rocks_error(&err);
        class->visible = rc == 0 && provenance && s_decide(c, (uint8_t *)provenance, glen);
        rocksdb_free(provenance);
        if (class->visible) {
            *docs += s_get_le64(v);
            *terms += s_get_le64(v + 8);
        }
    }
    free(g.data);
    free(prefix.data);
    if (rc == 0 && c->n)
        qsort(c->classes, c->n, sizeof *c->classes, s_cmp_class);
    return rc;
}

static int s_classes_end(s_classes_t *c, int rc)
{
    free(c->classes);
    return c->it ? store__iter_end(c->it, NULL, rc) : rc;
}

/*  The class prov of the scope, or NULL. */
static const s_class_t *s_class_find(const s_classes_t *c, uint64_t prov)
{
    s_class_t probe = {prov, false};
    return bsearch(&probe, c->classes, c->n, sizeof probe, s_cmp_class);
}

static bool s_class_visible(const s_classes_t *c, uint64_t prov)
{
    const s_class_t *found = s_class_find(c, prov);
    return found && found->visible;
}

/*  A document's BM25 score from its frequencies of the query's terms, summed in the order of
 *  the terms (one function, so that every path gives the same bits). */
static double s_bm25(const node_search_hits_t *stats, const uint32_t *tf, uint32_t dl)
{
    double bm25 = 0;
    for (size_t t = 0; t < stats->nterms; t++)
        if (tf[t])
            bm25 += search_bm25_term(search_bm25_idf(stats->docs, stats->df[t]), tf[t], dl,
                                     stats->avgdl);
    return bm25;
}

void node_search_hits_free(node_search_hits_t *hits)
{
    for (size_t i = 0; i < hits->n; i++)
        free(hits->hits[i].tf); /* key and elem live in the same allocation */
    free(hits->hits);
    free(hits->df);
    memset(hits, 0, sizeof *hits);
}

/*  Appends a hit: its key, element and term frequencies in one allocation (tf first, for
 *  alignment), owned through hit->tf. */
static int s_add_hit(node_search_hits_t *out, size_t *cap, const uint8_t *doc, size_t doc_len,
                     uint32_t dl, const uint32_t *tf)
{
    const char *key, *elem;
    crdt_dot_t dot;
    if (!store__parse_entry_key((const char *)doc, doc_len, 0, &key, &elem, &dot))
        return 0; /* corrupt: skipped */
    if (crdt_array_grow((void **)&out->hits, cap, out->n + 1, sizeof *out->hits))
        return ENGRAM_ENOMEM;
    size_t klen = strlen(key), elen = strlen(elem), tf_bytes = out->nterms * sizeof *tf;
    uint32_t *block = malloc(tf_bytes + klen + 1 + elen + 1);
    if (!block)
        return ENGRAM_ENOMEM;
    memcpy(block, tf, tf_bytes);
    char *both = (char *)block + tf_bytes;
    memcpy(both, key, klen + 1);
    memcpy(both + klen + 1, elem, elen + 1);
    out->hits[out->n++] = (node_search_hit_t){both, both + klen + 1, dot, dl, block, 0};
    return 0;
}

/*  The tf groups (distinct frequencies) a cursor bounds one by one, at most; the postings
 *  below the last are bounded as if they were as short as a document can be. */
#define IMPACT_GROUPS 32

/*  A term's postings of one tf, and the shortest document among them. */
typedef struct {
    uint32_t tf;
    uint32_t min_dl;
} s_group_t;

/*  One query term's cursor over its postings in impact order ('i': tf descending, then dl
 *  ascending), with a bound of what any posting not consumed yet can add to a score. */
typedef struct {
    rocksdb_iterator_t *it;
    store_key_t prefix; /* 'i' sid \0 term \0 */
    double idf;
    s_group_t groups[IMPACT_GROUPS + 1];
    double below[IMPACT_GROUPS + 1]; /* below[g]: the bound of every group after g */
    size_t ngroups;
    bool open_ended;    /* the last group stands for every tf up to its own */
    size_t group;       /* the current posting's */
    uint32_t tf, dl;    /* the current posting's */
    const uint8_t *doc; /* the current posting's doc part, or NULL at the end */
    size_t doc_len;
    double bound; /* of the current posting and every one after it; 0 at the end */
} s_impact_t;

/*  The count of a df counter as the store holds it (the cache's latest, over RocksDB's
 *  stored one): the journal's dirty counts are in the cache only. */
static uint64_t s_df_count(const node_store_t *self, const uint8_t *key, size_t len,
                           uint64_t stored)
{
    char hex[2 * STORE_MAX_COUNTER_KEY + 1];
    if (self->counters_dirty == 0 || len > STORE_MAX_COUNTER_KEY)
        return stored;
    sodium_bin2hex(hex, sizeof hex, key, len);
    const store_counter_t *cached = zhashx_lookup(self->counter_cache, hex);
    return cached ? cached->count : stored;
}

/*  Opens term's cursor ('i' sid \0 term \0): *df := the documents holding the term in the
 *  classes the reader may see (its counters, first in its range, overlaid by the journal's
 *  dirty counts); the cursor is left on the term's first posting. */
static int s_term_open(const s_classes_t *c, const char *term, s_impact_t *cursor, uint64_t *df)
{
    *df = 0;
    s_tagged(&cursor->prefix, TAG_IMPACT, c->sid);
    store__key_str0(&cursor->prefix, term);
    if (cursor->prefix.failed)
        return ENGRAM_ENOMEM;
    const store_key_t *prefix = &cursor->prefix;
    const node_store_t *self = c->self;
    bool *stored = self->counters_dirty && c->n ? calloc(c->n, sizeof *stored) : NULL;
    if (self->counters_dirty && c->n && !stored)
        return ENGRAM_ENOMEM;
    rocksdb_iterator_t *it = cursor->it =
        rocksdb_create_iterator_cf(self->db, self->read_options, self->cf[CF_SEARCH]);
    for (rocksdb_iter_seek(it, (char *)prefix->data, prefix->len); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (klen != prefix->len + 12 || memcmp(k, prefix->data, prefix->len) != 0 ||
            s_get_be32(k + prefix->len) != 0)
            break;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        const s_class_t *class = s_class_find(c, store__get_be64(k + prefix->len + 4));
        if (!class || !class->visible || vlen != 8)
            continue;
        if (stored)
            stored[class - c->classes] = true;
        *df += s_df_count(self, k, klen, s_get_le64(v));
    }
    /* counters the journal made that RocksDB does not hold yet */
    store_key_t k = {0};
    for (size_t i = 0; stored && i < c->n; i++) {
        if (!c->classes[i].visible || stored[i])
            continue;
        s_df_key(&k, c->sid, term, c->classes[i].prov);
        if (k.failed)
            break;
        *df += s_df_count(self, k.data, k.len, 0);
    }
    bool failed = k.failed;
    free(k.data);
    free(stored);
    return failed ? ENGRAM_ENOMEM : 0;
}

/*  Ends the cursors of nterms terms (those opened); returns rc, or an iterator's error. */
static int s_terms_end(s_impact_t *cursors, size_t nterms, int rc)
{
    for (size_t t = 0; cursors && t < nterms; t++) {
        if (cursors[t].it)
            rc = store__iter_end(cursors[t].it, &cursors[t].prefix, rc);
        else
            free(cursors[t].prefix.data);
    }
    free(cursors);
    return rc;
}

/*  A visible posting of one query term: its doc (at `at` in the postings' buffer), which
 *  query term, its tf and its doc's length. */
typedef struct {
    uint64_t hash; /* of the doc (FNV-1a), so that most comparisons need not read it */
    const uint8_t *doc;
    size_t at, doc_len, term;
    uint32_t tf, dl;
} s_posting_t;

static uint64_t s_fnv1a(const uint8_t *p, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return h;
}

/*  An order that puts a doc's postings side by side (by hash, then bytes). */
static int s_cmp_posting(const void *a, const void *b)
{
    const s_posting_t *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    size_t n = x->doc_len < y->doc_len ? x->doc_len : y->doc_len;
    int c = memcmp(x->doc, y->doc, n);
    return c ? c : (x->doc_len > y->doc_len) - (x->doc_len < y->doc_len);
}

/*  Appends the visible postings of query term t from its cursor on to *postings (their docs
 *  to the buffer docs); df := how many. */
static int s_collect(const s_classes_t *c, s_impact_t *cursor, size_t t, s_posting_t **postings,
                     size_t *n, size_t *cap, store_key_t *docs, uint64_t *df)
{
    *df = 0;
    int rc = 0;
    const store_key_t *prefix = &cursor->prefix;
    size_t skip = prefix->len + 8;
    for (rocksdb_iterator_t *it = cursor->it; rc == 0 && rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (klen <= skip || memcmp(k, prefix->data, prefix->len) != 0)
            break;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        if (vlen != 8 || s_get_be32(k + prefix->len) == 0 || !s_class_visible(c, s_get_le64(v)))
            continue;
        if ((rc = crdt_array_grow((void **)postings, cap, *n + 1, sizeof **postings)) != 0)
            break;
        (*postings)[(*n)++] = (s_posting_t){s_fnv1a(k + skip, klen - skip),
                                            NULL,
                                            docs->len,
                                            klen - skip,
                                            t,
                                            ~s_get_be32(k + prefix->len),
                                            s_get_be32(k + prefix->len + 4)};
        store__key_add(docs, k + skip, klen - skip);
        (*df)++;
    }
    return rc == 0 && docs->failed ? ENGRAM_ENOMEM : rc;
}

/*  Every visible document holding a term, with its score, into out, whose statistics (docs,
 *  avgdl, nterms, df allocated) the caller set, from the terms' cursors as s_term_open left
 *  them; df is counted again from the postings. */
static int s_search_all(const s_classes_t *classes, s_impact_t *cursors, node_search_hits_t *out)
{
    size_t nterms = out->nterms;
    uint32_t *tf = nterms ? malloc(nterms * sizeof *tf) : NULL;
    int rc = nterms && !tf ? ENGRAM_ENOMEM : 0;
    /* Every visible posting of every term, then sorted so that a doc's postings are side by
     * side: they give its tf of every term. */
    s_posting_t *postings = NULL;
    size_t n = 0, cap = 0, hits_cap = 0;
    store_key_t buffer = {0};
    for (size_t t = 0; rc == 0 && t < nterms; t++)
        rc = s_collect(classes, &cursors[t], t, &postings, &n, &cap, &buffer, &out->df[t]);
    for (size_t i = 0; rc == 0 && i < n; i++)
        postings[i].doc = buffer.data + postings[i].at;
    if (rc == 0 && nterms > 1 && n)
        qsort(postings, n, sizeof *postings, s_cmp_posting);
    for (size_t i = 0; rc == 0 && i < n;) {
        memset(tf, 0, nterms * sizeof *tf);
        size_t j = i;
        for (; j < n && s_cmp_posting(&postings[i], &postings[j]) == 0; j++)
            tf[postings[j].term] = postings[j].tf;
        rc = s_add_hit(out, &hits_cap, postings[i].doc, postings[i].doc_len, postings[i].dl, tf);
        i = j;
    }
    free(postings);
    free(buffer.data);
    free(tf);
    /* Score once df is known. */
    for (size_t i = 0; rc == 0 && i < out->n; i++)
        out->hits[i].bm25 = s_bm25(out, out->hits[i].tf, out->hits[i].dl);
    return rc;
}

/*  What both queries start with: the reader's classes, N and avgdl over them, and a cursor
 *  on each term's postings with its df. *cursors (nterms, or NULL) goes to s_query_close. */
static int s_query_open(s_classes_t *classes, const char *const *terms, size_t nterms,
                        s_impact_t **cursors, node_search_hits_t *out)
{
    memset(out, 0, sizeof *out);
    uint64_t docs = 0, lengths = 0;
    int rc = s_load_classes(classes, &docs, &lengths);
    out->docs = docs;
    out->avgdl = docs ? (double)lengths / (double)docs : 0;
    out->nterms = nterms;
    out->df = nterms ? calloc(nterms, sizeof *out->df) : NULL;
    *cursors = nterms ? calloc(nterms, sizeof **cursors) : NULL;
    if (rc == 0 && nterms && (!out->df || !*cursors))
        rc = ENGRAM_ENOMEM;
    for (size_t t = 0; rc == 0 && t < nterms; t++)
        rc = s_term_open(classes, terms[t], &(*cursors)[t], &out->df[t]);
    return rc;
}

/*  Ends a query: its cursors and classes; out is freed if it failed. */
static int s_query_close(s_classes_t *classes, s_impact_t *cursors, size_t nterms,
                         node_search_hits_t *out, int rc)
{
    rc = s_terms_end(cursors, nterms, rc);
    rc = s_classes_end(classes, rc);
    if (rc)
        node_search_hits_free(out);
    return rc;
}

int node_store_search_terms(node_store_t *self, const char *sid, const char *const *terms,
                            size_t nterms, node_visible_fn visible, void *arg,
                            node_search_hits_t *out)
{
    s_classes_t classes = {self, sid, visible, arg, NULL, 0, NULL};
    s_impact_t *cursors;
    int rc = s_query_open(&classes, terms, nterms, &cursors, out);
    if (rc == 0)
        rc = s_search_all(&classes, cursors, out);
    return s_query_close(&classes, cursors, nterms, out, rc);
}

/*  --- the best k ------------------------------------------------------------------------- */

/*  Which way a top-k search goes. The threshold algorithm reads a prefix of each term's
 *  postings, but pays a point read (about SEARCH_POINT_READ postings' worth) for each document
 *  of a query of several terms; what it must read whole is, at worst, every term's postings
 *  but the commonest's (which MaxScore's rule soon leaves aside). So a query whose postings
 *  the reader may see number at most SEARCH_ALL_POSTINGS + SEARCH_ALL_POSTINGS_PER_HIT x k, or
 *  are not mostly the commonest term's, is answered by reading them all
 *  (node_store_search_terms) and keeping the best k. */
#define SEARCH_ALL_POSTINGS         1024
#define SEARCH_ALL_POSTINGS_PER_HIT 16
#define SEARCH_POINT_READ           4

static store_search_way_t s_way = STORE_SEARCH_AUTO;

void store__search_way(store_search_way_t way)
{
    s_way = way;
}

/*  Moves the cursor to its next visible posting (the current one included) and bounds it.
 *  BM25's term score grows with tf and shrinks with dl (so does its floating-point value:
 *  every operation is monotonic), so the current posting's score bounds the rest of its
 *  group, and below[] the groups after it. */
static void s_impact_settle(s_impact_t *c, const s_classes_t *classes, double avgdl)
{
    c->doc = NULL;
    c->bound = 0;
    size_t skip = c->prefix.len + 8;
    for (; rocksdb_iter_valid(c->it); rocksdb_iter_next(c->it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(c->it, &klen);
        if (klen <= skip || memcmp(k, c->prefix.data, c->prefix.len) != 0)
            return;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(c->it, &vlen);
        if (vlen != 8 || s_get_be32(k + c->prefix.len) == 0 ||
            !s_class_visible(classes, s_get_le64(v)))
            continue;
        c->tf = ~s_get_be32(k + c->prefix.len);
        c->dl = s_get_be32(k + c->prefix.len + 4);
        while (c->group + 1 < c->ngroups && c->tf <= c->groups[c->group + 1].tf)
            c->group++;
        bool open = c->open_ended && c->group + 1 == c->ngroups;
        double here = search_bm25_term(c->idf, c->tf, open ? 1 : c->dl, avgdl);
        c->bound = here > c->below[c->group] ? here : c->below[c->group];
        c->doc = k + skip;
        c->doc_len = klen - skip;
        return;
    }
}

/*  Readies term's cursor, as s_term_open left it, for the threshold algorithm: finds its tf
 *  groups (one seek each), then settles on its first visible posting. */
static int s_impact_open(const s_classes_t *classes, double avgdl, s_impact_t *c)
{
    store_key_t seek = {0};
    store__key_add(&seek, c->prefix.data, c->prefix.len);
    store__key_add(&seek, "\0\0\0\1", 4); /* the first posting: ~tf is never 0 */
    if (seek.failed) {
        free(seek.data);
        return ENGRAM_ENOMEM;
    }
    size_t skip = c->prefix.len + 8;
    for (rocksdb_iter_seek(c->it, (char *)seek.data, seek.len); rocksdb_iter_valid(c->it);) {
        size_t klen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(c->it, &klen);
        if (klen <= skip || memcmp(k, c->prefix.data, c->prefix.len) != 0)
            break;
        uint32_t tf = ~s_get_be32(k + c->prefix.len);
        bool last = c->ngroups == IMPACT_GROUPS;
        c->groups[c->ngroups++] = (s_group_t){tf, last ? 1 : s_get_be32(k + c->prefix.len + 4)};
        c->open_ended = last;
        if (last || tf <= 1)
            break;
        uint32_t next = ~(tf - 1); /* the first posting of a smaller tf */
        uint8_t be[4] = {(uint8_t)(next >> 24), (uint8_t)(next >> 16), (uint8_t)(next >> 8),
                         (uint8_t)next};
        seek.len = c->prefix.len;
        store__key_add(&seek, be, sizeof be);
        rocksdb_iter_seek(c->it, (char *)seek.data, seek.len);
    }
    for (size_t g = c->ngroups; g-- > 0;) {
        double after = g + 1 < c->ngroups ? c->below[g + 1] : 0;
        double next = g + 1 < c->ngroups ? search_bm25_term(c->idf, c->groups[g + 1].tf,
                                                            c->groups[g + 1].min_dl, avgdl)
                                         : 0;
        c->below[g] = next > after ? next : after;
    }
    seek.len = c->prefix.len;
    store__key_add(&seek, "\0\0\0\1", 4);
    int rc = seek.failed ? ENGRAM_ENOMEM : 0;
    if (rc == 0)
        rocksdb_iter_seek(c->it, (char *)seek.data, seek.len);
    free(seek.data);
    if (rc == 0)
        s_impact_settle(c, classes, avgdl);
    return rc;
}

/*  Whether hit a ranks below hit b: a lower score, or the same and a later identity (key,
 *  element, dot: the API's order). */
static bool s_worse(const node_search_hit_t *a, const node_search_hit_t *b)
{
    if (a->bm25 != b->bm25)
        return a->bm25 < b->bm25;
    int c = strcmp(a->key, b->key);
    if (c == 0)
        c = strcmp(a->elem, b->elem);
    if (c == 0)
        c = a->dot.node != b->dot.node ? (a->dot.node < b->dot.node ? -1 : 1)
            : a->dot.n != b->dot.n     ? (a->dot.n < b->dot.n ? -1 : 1)
                                       : 0;
    return c > 0;
}

/*  A binary heap of n items of `size` bytes, rooted at the item that `above` puts above every
 *  other (the worst kept: the first to go). Both heaps of this file (the best BM25 hits, the
 *  nearest embeddings) sift through these. */
typedef bool (*s_above_fn)(const void *a, const void *b);

static void s_heap_swap(uint8_t *items, size_t size, size_t i, size_t j)
{
    uint8_t *x = items + i * size, *y = items + j * size;
    for (size_t b = 0; b < size; b++) {
        uint8_t t = x[b];
        x[b] = y[b];
        y[b] = t;
    }
}

static void s_heap_down(void *base, size_t n, size_t size, s_above_fn above, size_t i)
{
    uint8_t *items = base;
    for (;;) {
        size_t top = i, l = 2 * i + 1, r = l + 1;
        if (l < n && above(items + l * size, items + top * size))
            top = l;
        if (r < n && above(items + r * size, items + top * size))
            top = r;
        if (top == i)
            return;
        s_heap_swap(items, size, i, top);
        i = top;
    }
}

static void s_heap_up(void *base, size_t size, s_above_fn above, size_t i)
{
    uint8_t *items = base;
    while (i && above(items + i * size, items + (i - 1) / 2 * size)) {
        s_heap_swap(items, size, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

/*  The best k hits so far: a heap whose root is the worst of them. */
typedef struct {
    node_search_hit_t *hits;
    size_t n, k;
} s_top_t;

static bool s_worse_item(const void *a, const void *b)
{
    return s_worse(a, b);
}

/*  Offers a scored document to the heap (its key, element and tf copied if it is kept). */
static int s_top_offer(s_top_t *h, const uint8_t *doc, size_t doc_len, uint32_t dl,
                       const uint32_t *tf, size_t nterms, double bm25)
{
    node_search_hit_t hit = {.dl = dl, .bm25 = bm25};
    if (!store__parse_entry_key((const char *)doc, doc_len, 0, (const char **)&hit.key,
                                (const char **)&hit.elem, &hit.dot))
        return 0; /* corrupt: skipped */
    if (h->n == h->k && !s_worse(&h->hits[0], &hit))
        return 0;
    size_t klen = strlen(hit.key), elen = strlen(hit.elem), tf_bytes = nterms * sizeof *tf;
    uint32_t *block = malloc(tf_bytes + klen + 1 + elen + 1);
    if (!block)
        return ENGRAM_ENOMEM;
    memcpy(block, tf, tf_bytes);
    char *both = (char *)block + tf_bytes;
    memcpy(both, hit.key, klen + 1);
    memcpy(both + klen + 1, hit.elem, elen + 1);
    hit.tf = block;
    hit.key = both;
    hit.elem = both + klen + 1;
    if (h->n == h->k) {
        free(h->hits[0].tf);
        h->hits[0] = hit;
        s_heap_down(h->hits, h->n, sizeof *h->hits, s_worse_item, 0);
    } else {
        h->hits[h->n++] = hit;
        s_heap_up(h->hits, sizeof *h->hits, s_worse_item, h->n - 1);
    }
    return 0;
}

/*  Reads doc's 'd' record: its length and how often it holds each query term. */
static int s_doc_terms(node_store_t *self, const char *sid, const uint8_t *doc, size_t doc_len,
                       const char *const *terms, size_t nterms, store_key_t *k, uint32_t *dl,
                       uint32_t *tf)
{
    memset(tf, 0, nterms * sizeof *tf);
    *dl = 0;
    s_tagged(k, TAG_DOC, sid);
    store__key_add(k, doc, doc_len);
    if (k->failed)
        return ENGRAM_ENOMEM;
    char *err = NULL;
    size_t len = 0;
    char *record = rocksdb_get_cf(self->db, self->read_options, self->cf[CF_SEARCH],
                                  (char *)k->data, k->len, &len, &err);
    int rc = store__rocks_error(&err);
    if (rc || !record || len < 16) {
        rocksdb_free(record);
        return rc;
    }
    const uint8_t *p = (const uint8_t *)record, *end = p + len;
    *dl = s_get_le32(p + 8);
    for (p += 16; p < end;) {
        const uint8_t *nul = memchr(p, '\0', (size_t)(end - p));
        if (!nul || end - nul < 5)
            break; /* written by this file: cannot happen short of corruption */
        for (size_t t = 0; t < nterms; t++)
            if (strcmp(terms[t], (const char *)p) == 0)
                tf[t] = s_get_le32(nul + 1);
        p = nul + 1 + 4;
    }
    rocksdb_free(record);
    return 0;
}

/*  The cursor to consume next, or NULL when no document left unmet can rank among the best k
 *  (MaxScore's rule over the threshold algorithm): the terms whose bounds, smallest first,
 *  sum below `floor` cannot make a document rank by themselves, so a document that still
 *  can holds another term, whose cursor will meet it; of those other cursors, the one of the
 *  highest bound. order is scratch space for nterms indices. */
static s_impact_t *s_next_cursor(s_impact_t *cursors, size_t nterms, size_t *order, double floor)
{
    for (size_t i = 0; i < nterms; i++) {
        size_t j = i;
        for (; j > 0 && cursors[order[j - 1]].bound > cursors[i].bound; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    size_t first = 0;
    for (double sum = 0; first < nterms && sum + cursors[order[first]].bound < floor; first++)
        sum += cursors[order[first]].bound;
    s_impact_t *best = NULL;
    for (size_t i = first; i < nterms; i++)
        if (cursors[order[i]].doc && (!best || cursors[order[i]].bound > best->bound))
            best = &cursors[order[i]];
    return best;
}

/*  Keeps the best k of every hit (node_store_search_terms's), best first. */
static int s_cmp_best(const void *a, const void *b)
{
    const node_search_hit_t *x = a, *y = b;
    return s_worse(y, x) ? -1 : s_worse(x, y) ? 1 : 0;
}

static void s_keep_best(node_search_hits_t *hits, size_t k)
{
    if (hits->n)
        qsort(hits->hits, hits->n, sizeof *hits->hits, s_cmp_best);
    for (size_t i = k; i < hits->n; i++)
        free(hits->hits[i].tf);
    hits->more = hits->n > k;
    hits->n = hits->n < k ? hits->n : k;
}

/*  The best k visible documents holding a term, best first, into out, whose statistics the
 *  caller set (df from the counters): the threshold algorithm over the impact postings. */
static int s_search_threshold(node_store_t *self, const char *sid, const s_classes_t *classes,
                              const char *const *terms, s_impact_t *cursors, size_t k,
                              node_search_hits_t *out)
{
    size_t nterms = out->nterms;
    size_t *order = nterms ? malloc(nterms * sizeof *order) : NULL;
    uint32_t *tf = nterms ? malloc(nterms * sizeof *tf) : NULL;
    s_top_t top = {k ? calloc(k, sizeof *top.hits) : NULL, 0, k};
    zhash_t *seen = nterms > 1 ? zhash_new() : NULL; /* one term: each doc comes once */
    int rc = 0;
    if ((nterms && (!order || !tf)) || (k && !top.hits) || (nterms > 1 && !seen))
        rc = ENGRAM_ENOMEM;
    for (size_t t = 0; rc == 0 && t < nterms; t++) {
        cursors[t].idf = search_bm25_idf(out->docs, out->df[t]);
        if (out->df[t]) /* else it has no posting the reader may see */
            rc = s_impact_open(classes, out->avgdl, &cursors[t]);
    }
    /* Threshold algorithm: consume the posting of the highest bound among the cursors that
     * can still matter (s_next_cursor); score its document in full the first time it is met;
     * stop once no document left unmet can rank among the best k (the bounds below the k-th
     * score by a margin, so that neither rounding nor a tie ever leaves one out). */
    store_key_t key = {0};
    char *hex = NULL;
    size_t hex_cap = 0, scored = 0;
    while (rc == 0 && k) {
        double floor = top.n == k ? top.hits[0].bm25 - 1e-9 * top.hits[0].bm25 : -INFINITY;
        s_impact_t *best = s_next_cursor(cursors, nterms, order, floor);
        if (!best)
            break;
        bool fresh = true;
        if (seen) {
            if (2 * best->doc_len + 1 > hex_cap) {
                char *grown = realloc(hex, 2 * best->doc_len + 1);
                if (!grown) {
                    rc = ENGRAM_ENOMEM;
                    break;
                }
                hex = grown;
                hex_cap = 2 * best->doc_len + 1;
            }
            sodium_bin2hex(hex, hex_cap, best->doc, best->doc_len);
            fresh = !zhash_lookup(seen, hex);
            if (fresh)
                rc = zhash_insert(seen, hex, (void *)1) == 0 ? 0 : ENGRAM_ENOMEM;
        }
        if (rc == 0 && fresh) {
            uint32_t dl = best->dl;
            if (nterms == 1)
                tf[0] = best->tf;
            else
                rc = s_doc_terms(self, sid, best->doc, best->doc_len, terms, nterms, &key, &dl, tf);
            scored++;
            if (rc == 0)
                rc = s_top_offer(&top, best->doc, best->doc_len, dl, tf, nterms,
                                 s_bm25(out, tf, dl));
        }
        rocksdb_iter_next(best->it);
        s_impact_settle(best, classes, out->avgdl);
    }
    for (size_t t = 0; t < nterms && cursors; t++)
        out->more |= cursors[t].doc != NULL;
    out->more |= scored > top.n;
    free(key.data);
    free(hex);
    free(order);
    zhash_destroy(&seen);
    free(tf);
    out->hits = top.hits;
    out->n = top.n;
    if (rc)
        return rc;
    /* best first: pop the worst to the back */
    for (size_t n = top.n; n > 1; n--) {
        node_search_hit_t t = top.hits[0];
        top.hits[0] = top.hits[n - 1];
        top.hits[n - 1] = t;
        top.n = n - 1;
        s_heap_down(top.hits, top.n, sizeof *top.hits, s_worse_item, 0);
    }
    return 0;
}

int node_store_search_top(node_store_t *self, const char *sid, const char *const *terms,
                          size_t nterms, size_t k, node_visible_fn visible, void *arg,
                          node_search_hits_t *out)
{
    s_classes_t classes = {self, sid, visible, arg, NULL, 0, NULL};
    s_impact_t *cursors;
    int rc = s_query_open(&classes, terms, nterms, &cursors, out);
    uint64_t postings = 0, commonest = 0;
    for (size_t t = 0; rc == 0 && t < nterms; t++) {
        postings += out->df[t];
        commonest = out->df[t] > commonest ? out->df[t] : commonest;
    }
    bool whole = s_way == STORE_SEARCH_WHOLE ||
                 (s_way == STORE_SEARCH_AUTO &&
                  (postings <= SEARCH_ALL_POSTINGS + SEARCH_ALL_POSTINGS_PER_HIT * (uint64_t)k ||
                   (postings - commonest) * SEARCH_POINT_READ >= postings));
    if (rc == 0 && whole && (rc = s_search_all(&classes, cursors, out)) == 0)
        s_keep_best(out, k);
    else if (rc == 0)
        rc = s_search_threshold(self, sid, &classes, terms, cursors, k, out);
    return s_query_close(&classes, cursors, nterms, out, rc);
}

/*  The best `keep` vector hits so far, as a min-heap on cosine (ties: the later doc is the
 *  lesser, so the first in doc order is kept). */
typedef struct {
    node_vector_hit_t *hits;
    size_t n;
    size_t keep;
} s_heap_t;

static bool s_less(const node_vector_hit_t *a, const node_vector_hit_t *b)
{
    return a->cosine < b->cosine;
}

static bool s_less_item(const void *a, const void *b)
{
    return s_less(a, b);
}

/*  Offers one hit (its doc bytes) to the heap. */
static int s_offer(s_heap_t *h, const uint8_t *doc, size_t doc_len, double cosine)
{
    if (h->n == h->keep && cosine <= h->hits[0].cosine)
        return 0;
    const char *key, *elem;
    crdt_dot_t dot;
    if (!store__parse_entry_key((const char *)doc, doc_len, 0, &key, &elem, &dot))
        return 0;
    size_t klen = strlen(key), elen = strlen(elem);
    char *both = malloc(klen + 1 + elen + 1);
    if (!both)
        return ENGRAM_ENOMEM;
    memcpy(both, key, klen + 1);
    memcpy(both + klen + 1, elem, elen + 1);
    node_vector_hit_t hit = {both, both + klen + 1, dot, cosine};
    if (h->n == h->keep) {
        free(h->hits[0].key);
        h->hits[0] = hit;
        s_heap_down(h->hits, h->n, sizeof *h->hits, s_less_item, 0);
    } else {
        h->hits[h->n++] = hit;
        s_heap_up(h->hits, sizeof *h->hits, s_less_item, h->n - 1);
    }
    return 0;
}

static int s_cmp_vector_hit(const void *a, const void *b)
{
    const node_vector_hit_t *x = a, *y = b;
    return x->cosine > y->cosine ? -1 : x->cosine < y->cosine;
}

void node_vector_hits_free(node_vector_hits_t *hits)
{
    for (size_t i = 0; i < hits->n; i++)
        free(hits->hits[i].key);
    free(hits->hits);
    memset(hits, 0, sizeof *hits);
}

int node_store_search_vector(node_store_t *self, const char *sid, const float *query, uint32_t dims,
                             size_t keep, node_visible_fn visible, void *arg,
                             node_vector_hits_t *out)
{
    memset(out, 0, sizeof *out);
    s_classes_t classes = {self, sid, visible, arg, NULL, 0, NULL};
    uint64_t docs = 0, lengths = 0;
    int rc = s_load_classes(&classes, &docs, &lengths);
    s_heap_t heap = {keep ? calloc(keep, sizeof *heap.hits) : NULL, 0, keep};
    if (rc == 0 && keep && !heap.hits)
        rc = ENGRAM_ENOMEM;
    double query_norm = search_vector_norm(query, dims);
    store_key_t prefix = {0};
    s_tagged(&prefix, TAG_VECTOR, sid);
    if (rc == 0 && prefix.failed)
        rc = ENGRAM_ENOMEM;
    float *vector = malloc(4 * (size_t)(dims ? dims : 1));
    if (rc == 0 && !vector)
        rc = ENGRAM_ENOMEM;
    size_t compared = 0;
    uint32_t other_dims = 0;
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(self->db, self->read_options, self->cf[CF_SEARCH]);
    for (rocksdb_iter_seek(it, (char *)prefix.data, prefix.len);
         rc == 0 && keep && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen <= prefix.len || memcmp(k, prefix.data, prefix.len) != 0)
            break;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        if (vlen < 16 || !s_class_visible(&classes, s_get_le64(v)))
            continue;
        if (vlen != 16 + 4 * (size_t)dims) { /* another dimension: not comparable */
            other_dims = (uint32_t)((vlen - 16) / 4);
            continue;
        }
        compared++;
        double norm;
        memcpy(&norm, v + 8, 8);
        memcpy(vector, v + 16, 4 * (size_t)dims); /* aligned for the arithmetic */
        rc = s_offer(&heap, (const uint8_t *)k + prefix.len, klen - prefix.len,
                     search_cosine(query, query_norm, vector, norm, dims));
    }
    rc = store__iter_end(it, &prefix, rc);
    free(vector);
    rc = s_classes_end(&classes, rc);
    out->hits = heap.hits;
    out->n = heap.n;
    out->compared = compared;
    out->other_dims = other_dims;
    if (rc) {
        node_vector_hits_free(out);
        return rc;
    }
    if (out->n)
        qsort(out->hits, out->n, sizeof *out->hits, s_cmp_vector_hit);
    return 0;
}

/*  --- rebuild ---------------------------------------------------------------------------- */

typedef struct {
    node_store_t *self;
    store_index_batch_t *ib;
    rocksdb_writebatch_t *batch;
    uint64_t indexed;
} s_rebuild_t;

/*  Writes the batch so far (every REINDEX_BATCH entries), so memory stays bounded. */
#define REINDEX_BATCH 1024

static int s_rebuild_flush(s_rebuild_t *r)
{
    int rc = store__index_finish(r->self, r->ib, r->batch);
    if (rc == 0 && rocksdb_writebatch_count(r->batch) > 0)
        rc = store__write_batch(r->self, r->batch);
    if (rc == 0)
        store__index_written(r->self, r->ib);
    rocksdb_writebatch_clear(r->batch);
    store__index_batch_destroy(&r->ib);
    r->ib = store__index_batch_new();
    return rc ? rc : r->ib ? 0 : ENGRAM_ENOMEM;
}

static int s_rebuild_entries(s_rebuild_t *r, int cf)
{
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(r->self->db, r->self->read_options, r->self->cf[cf]);
    int rc = 0;
    for (rocksdb_iter_seek_to_first(it); rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        size_t sid_len = strnlen(k, klen);
        const char *key, *elem;
        crdt_dot_t dot;
        if (sid_len == klen || !store__parse_entry_key(k, klen, sid_len + 1, &key, &elem, &dot))
            continue;
        Engram__StoredEntry *entry = engram__stored_entry__unpack(NULL, vlen, (const uint8_t *)v);
        if (!entry)
            continue;
        rc = store__index_add(r->self, r->ib, r->batch, k, key, elem, dot,
                              (crdt_type_id_t)entry->type, entry->data.data, entry->data.len);
        engram__stored_entry__free_unpacked(entry, NULL);
        if (rc == 0 && ++r->indexed % REINDEX_BATCH == 0)
            rc = s_rebuild_flush(r);
    }
    return store__iter_end(it, NULL, rc);
}

int node_store_reindex(node_store_t *self, uint64_t *indexed)
{
    *indexed = 0;
    if (self->failed)
        return self->failed;
    /* Drop every index record (a range delete of the whole family) and the index's mark in one
     * batch, the mark written again only by the last batch of the rebuild: a rebuild that is
     * killed or fails leaves a store without the mark, rebuilt when it next opens, never a
     * partial index that is trusted. */
    s_rebuild_t r = {self, store__index_batch_new(), rocksdb_writebatch_create(), 0};
    const char first[1] = {0}, last[1] = {(char)0xff};
    rocksdb_writebatch_delete_range_cf(r.batch, self->cf[CF_SEARCH], first, 1, last, 1);
    rocksdb_writebatch_delete_cf(r.batch, self->cf[CF_META], STORE_INDEX_MARK,
                                 strlen(STORE_INDEX_MARK));
    int rc = r.ib ? store__write_batch(self, r.batch) : ENGRAM_ENOMEM;
    if (rc == 0) /* every counter and journal record gone: so are the cache's */
        store__index_forget_counters(self);
    rocksdb_writebatch_clear(r.batch);
    if (rc == 0)
        rc = s_rebuild_entries(&r, CF_ENTRIES);
    if (rc == 0)
        rc = s_rebuild_entries(&r, CF_PRIVATE);
    if (rc == 0) {
        rocksdb_writebatch_put_cf(r.batch, self->cf[CF_META], STORE_INDEX_MARK,
                                  strlen(STORE_INDEX_MARK), STORE_INDEX_VERSION,
                                  strlen(STORE_INDEX_VERSION));
        rc = s_rebuild_flush(&r);
    }
    store__index_batch_destroy(&r.ib);
    rocksdb_writebatch_destroy(r.batch);
    if (rc == 0)
        rc = store__index_flush_counters(self);
    if (rc == 0)
        rc = node_store_sync(self);
    *indexed = r.indexed;
    return rc;
}

int node_store_entry_get(node_store_t *self, const char *sid, const char *key, const char *elem,
                         crdt_dot_t dot, crdt_type_id_t *type, uint64_t *hlc, uint8_t **data,
                         size_t *len)
{
    *data = NULL;
    *len = 0;
    store_key_t k = {0};
    store__entry_key(&k, sid, key, elem, dot.node, dot.n);
    if (k.failed) {
        free(k.data);
        return ENGRAM_ENOMEM;
    }
    char *err = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get_cf(self->db, self->read_options, store__entries_cf(self, sid),
                             (char *)k.data, k.len, &vlen, &err);
    free(k.data);
    int rc = store__rocks_error(&err);
    Engram__StoredEntry *entry =
        rc == 0 && v ? engram__stored_entry__unpack(NULL, vlen, (uint8_t *)v) : NULL;
    rocksdb_free(v);
    if (rc)
        return rc;
    if (!entry)
        return ENGRAM_ENOTFOUND;
    *type = (crdt_type_id_t)entry->type;
    *hlc = entry->hlc;
    *data = malloc(entry->data.len ? entry->data.len : 1);
    if (*data) {
        memcpy(*data, entry->data.data, entry->data.len);
        *len = entry->data.len;
    }
    engram__stored_entry__free_unpacked(entry, NULL);
    return *data ? 0 : ENGRAM_ENOMEM;
}

int node_store_index_digest(node_store_t *self, uint8_t digest[32], uint64_t *records)
{
    *records = 0;
    int rc = store__index_flush_counters(self); /* the counters as a rebuild writes them */
    if (rc)
        return rc;
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, 32);
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(self->db, self->read_options, self->cf[CF_SEARCH]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        uint8_t lengths[16];
        store__le64((char *)lengths, klen);
        store__le64((char *)lengths + 8, vlen);
        crypto_generichash_update(&state, lengths, sizeof lengths);
        crypto_generichash_update(&state, (const uint8_t *)k, klen);
        crypto_generichash_update(&state, (const uint8_t *)v, vlen);
        (*records)++;
    }
    crypto_generichash_final(&state, digest, 32);
    return store__iter_end(it, NULL, 0);
}
