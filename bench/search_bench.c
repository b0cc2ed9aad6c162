/*  engram-search-bench: what engram's full-text search costs at the store level (node_store
 *  with its search index, no network, no access control beyond a callback that allows all),
 *  beside SQLite FTS5 on the same corpus and queries; and what an exact vector scan costs.
 *
 *  Corpus: N synthetic memories (10k, 100k, 1M; --quick: 10k), 10 to 30 words each, drawn
 *  with a fixed seed from a vocabulary of 30k pseudo-words (syllables, a third of them with an
 *  English suffix: "s", "ing", "ation", ...) with a Zipf distribution (s = 1: the commonest
 *  word is in most memories, half the vocabulary in a handful). The first word is capitalised,
 *  a few are followed by a comma, the text ends with a period. The vocabulary keeps only words
 *  that both tokenizers split alike: engram's (utf8proc NFKC case folding, Snowball English)
 *  and FTS5's 'porter unicode61' must each give one term per word and group the words into
 *  the same terms (Porter and Snowball English stem a few suffixes differently; those words
 *  are dropped). So both engines must find exactly the same memories for every query, which
 *  is checked.
 *
 *  For each N, four stores are filled in batches of BATCH writes, each batch made durable
 *  before the next (texts are generated outside the timed part):
 *    engram, indexed      register puts as engramd writes them (value encoded with its
 *                         provenance, view, mutator, node_store_apply), node_store_sync (one
 *                         fsync of RocksDB's WAL) per batch;
 *    engram, not indexed  the same puts of the same sizes whose first byte is 0xFF: not UTF-8,
 *                         so the index skips them (engram has no switch to turn indexing off;
 *                         this keeps the whole write path but the index's work, a value decode
 *                         and a UTF-8 check that stops at the first byte);
 *    FTS5                 INSERT into a table fts5(body, tokenize='porter unicode61'), one
 *                         transaction per batch, journal_mode=WAL, synchronous=FULL (COMMIT
 *                         fsyncs the WAL, as engram's sync does);
 *    SQLite plain         the same into a plain table (rowid, body).
 *  The index cost is indexed over not-indexed throughput, for each engine. The bytes on disk
 *  are the apparent sizes of the indexed stores' files once filled: for engram its WAL, SST
 *  files not compacted yet and every family (the history holds each value again), for SQLite
 *  the database and its WAL.
 *
 *  Queries: 60, of 1, 2 and 3 words, of three kinds: with a common word (rank < 50), of
 *  middle words (rank 50 to 2000), of rare words (rank 2000 and above). A memory matches when
 *  it holds any word of the query (engram's semantics; FTS5 gets "a OR b OR c"). Each query
 *  runs REPS times; p50/p99 are over every run (nearest rank). Timed, top 10:
 *    engram  tokenize the query, node_store_search_top with k = 10 (what the API asks a
 *            scope for: df from the per-class counters, then a threshold algorithm over the
 *            impact-ordered postings, or for few postings or terms of like weight a read of
 *            them all), copy the 10, free the hits; then "+ load":
 *            node_store_entry_get of those 10 (the API also decodes and checks each; not done
 *            here);
 *    FTS5    SELECT rowid, bm25(t) FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT 10 (prepared
 *            once); "+ load": the same selecting the text too.
 *  Checked, untimed: for every query engram's top 10 is the first 10 of its exhaustive
 *  ranking (node_store_search_terms, every hit sorted by score, then key: the same memories in
 *  the same order, scores within 1e-9); both engines match the same memories; for one-word
 *  queries the top 10 scores are proportional (both BM25 with k1 1.2, b 0.75; the idf
 *  differs: engram's is Lucene's ln(1 + (N-df+0.5)/(df+0.5)), FTS5's ln((N-df+0.5)/(df+0.5)),
 *  so the ratio must be the ratio of the idfs, within 1e-9); every loaded value is the text
 *  written.
 *
 *  Vector scan: exact cosine (node/search/vector.h: search_cosine) of a query against 10k and
 *  100k (--quick: 10k) random unit vectors of 384 float32 dimensions, top 10, p50/p99 over
 *  the queries: "memory" scans a float array with the norms precomputed (what an in-memory
 *  index would do); "RocksDB" iterates a column family holding each vector as (norm, floats),
 *  flushed to SST files, copying each value out before the cosine (what a scan over the store
 *  would do). engram has no vector index yet: neither is in engramd. Checked: both scans give
 *  the same top 10; a query that is a stored vector plus noise finds that vector first.
 *
 *  Run (Release, not sanitized, for numbers):
 *      cmake -S . -B build-bench-rel -DCMAKE_BUILD_TYPE=Release
 *      cmake --build build-bench-rel -j2 --target engram-search-bench
 *      build-bench-rel/bench/engram-search-bench                  # 10k, 100k, 1M
 *      build-bench-rel/bench/engram-search-bench --sizes 10000,100000
 *      build-bench-rel/bench/engram-search-bench --quick          # 10k, smoke run
 *  Stores are written under $TMPDIR (else /tmp), which must be a real disk for the write
 *  rates to mean anything (tmpfs makes fsync free), and removed at the end.
 *  Exit status: 0 if every check passed, 1 if one failed, 2 on an error.
 *
 *  Limits: one writer, one scope, one provenance class; warm caches (everything was just
 *  written; the page cache holds the files); RocksDB and SQLite with their default cache
 *  sizes; the machine's other load adds noise, mostly to p99.
 */
#define _GNU_SOURCE /* nftw */
#include <float.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <rocksdb/c.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <czmq.h>

#include "bench_util.h"
#include "crdt/mvreg.h"
#include "crdt/value.h"
#include "engram/error.h"
#include "node/search/text.h"
#include "node/search/vector.h"
#include "node/store/store.h"

#define SCOPE           "run:bench"
#define BATCH           100
#define TOP_K           10
#define VOCABULARY      30000
#define MIN_WORDS       10
#define MAX_WORDS       30
#define MAX_TEXT        (MAX_WORDS * 48)
#define QUERIES         60
#define COMMON_RANKS    50
#define RARE_RANK       2000
#define DIMS            384
#define GOAL_N          100000
#define GOAL_P99_NS     10000000
#define SCORE_TOLERANCE 1e-9

enum { KIND_COMMON, KIND_MIDDLE, KIND_RARE, KINDS };
static const char *const s_kind_name[KINDS] = {"with a common word", "middle words", "rare words"};

/*  The words memories are made of, and the queries. */
typedef struct {
    char **words; /* by rank, commonest first */
    size_t n;
    double *cdf; /* Zipf: cdf[r] = P(rank <= r) */
    char *query[QUERIES];
    int kind[QUERIES];
    size_t nwords[QUERIES];
} s_corpus_t;

/*  What one engine measured at one size. */
typedef struct {
    double writes_indexed; /* per second */
    double writes_plain;
    uint64_t *search_ns; /* REPS * QUERIES, query-major */
    uint64_t *load_ns;   /* search + load */
    uint64_t disk_bytes;
} s_side_t;

typedef struct {
    const s_corpus_t *corpus;
    const char *work; /* the directory every store is made in */
    unsigned reps;
    unsigned failures;
    bool goal_checked, goal_p99_met, goal_fts5_met;
} s_bench_t;

/*  The benchmark's directory under $TMPDIR, removed at exit (an interrupt included). */
static char s_workdir[4096];

static void s_remove_workdir(void)
{
    if (s_workdir[0])
        bench_rm_tree(s_workdir);
}

static void s_die(const char *what, int rc)
{
    BENCH_DIE("%s: %s", what, engram_strerror(rc));
}

static void s_stop_if_interrupted(void)
{
    if (bench_interrupted)
        BENCH_DIE("interrupted");
}

static double s_unit(uint64_t *seed)
{
    return (double)(bench_rand(seed) >> 11) * 0x1p-53;
}

static void s_check(s_bench_t *b, bool ok, const char *what, size_t n)
{
    if (!ok) {
        b->failures++;
        printf("  FAIL: %s (N = %zu)\n", what, n);
    }
}

/*  --- corpus ---------------------------------------------------------------------------- */

static char *s_pseudo_word(uint64_t *seed)
{
    static const char consonants[] = "bcdfghklmnprstvz", vowels[] = "aeiou";
    static const char *const suffixes[] = {"s", "ing", "ed", "er", "ly", "ness", "ment", "ation"};
    char w[48];
    size_t n = 0;
    unsigned syllables = 2 + (unsigned)(bench_rand(seed) % 3);
    for (unsigned i = 0; i < syllables; i++) {
        w[n++] = consonants[bench_rand(seed) % 16];
        w[n++] = vowels[bench_rand(seed) % 5];
    }
    if (bench_rand(seed) % 2)
        w[n++] = consonants[bench_rand(seed) % 16];
    w[n] = '\0';
    if (bench_rand(seed) % 3 == 0)
        strcat(w, suffixes[bench_rand(seed) % 8]);
    return strdup(w);
}

/*  FTS5's term for each of the n words (one per word, else NULL), through fts5vocab. */
static char **s_fts5_terms(char *const *words, size_t n)
{
    sqlite3 *db;
    sqlite3_stmt *insert = NULL, *vocab = NULL;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "CREATE VIRTUAL TABLE w USING fts5(word, tokenize='porter unicode61');"
                     "CREATE VIRTUAL TABLE wv USING fts5vocab(w, 'instance');",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO w(rowid, word) VALUES (?, ?)", -1, &insert, NULL) ||
        sqlite3_prepare_v2(db, "SELECT doc, term FROM wv", -1, &vocab, NULL))
        BENCH_DIE("sqlite (vocabulary): %s", sqlite3_errmsg(db));
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(insert, 1, (sqlite3_int64)i + 1);
        sqlite3_bind_text(insert, 2, words[i], -1, SQLITE_STATIC);
        if (sqlite3_step(insert) != SQLITE_DONE)
            BENCH_DIE("sqlite (vocabulary): %s", sqlite3_errmsg(db));
        sqlite3_reset(insert);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    char **terms = calloc(n, sizeof *terms);
    unsigned *count = calloc(n, sizeof *count);
    if (!terms || !count)
        s_die("vocabulary", ENGRAM_ENOMEM);
    while (sqlite3_step(vocab) == SQLITE_ROW) {
        sqlite3_int64 doc = sqlite3_column_int64(vocab, 0);
        if (doc < 1 || (size_t)doc > n || count[doc - 1]++)
            continue;
        terms[doc - 1] = strdup((const char *)sqlite3_column_text(vocab, 1));
    }
    for (size_t i = 0; i < n; i++)
        if (count[i] != 1) {
            free(terms[i]);
            terms[i] = NULL;
        }
    free(count);
    sqlite3_finalize(insert);
    sqlite3_finalize(vocab);
    sqlite3_close(db);
    return terms;
}

/*  Keeps a word if the two tokenizers group it with the same kept words: its engram term
 *  and its FTS5 term are both new, or both name the class of one earlier word. e2f maps to
 *  the FTS5 terms (the caller's, alive as long as the table), f2e to copies it owns. */
static bool s_agree(zhash_t *e2f, zhash_t *f2e, const char *eterm, const char *fterm)
{
    const char *f = zhash_lookup(e2f, eterm), *e = zhash_lookup(f2e, fterm);
    if (!f && !e) {
        char *copy = strdup(eterm);
        if (!copy)
            s_die("vocabulary", ENGRAM_ENOMEM);
        zhash_insert(e2f, eterm, (void *)fterm);
        zhash_insert(f2e, fterm, copy);
        zhash_freefn(f2e, fterm, free);
        return true;
    }
    return f && e && strcmp(f, fterm) == 0 && strcmp(e, eterm) == 0;
}

static size_t s_sample_rank(const s_corpus_t *c, uint64_t *seed)
{
    double u = s_unit(seed);
    size_t lo = 0, hi = c->n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static size_t s_rank_in(uint64_t *seed, size_t from, size_t to)
{
    return from + (size_t)(bench_rand(seed) % (to - from));
}

static void s_queries(s_corpus_t *c)
{
    uint64_t seed = 7;
    for (int q = 0; q < QUERIES; q++) {
        size_t nwords = 1 + (size_t)q % 3, ranks[3];
        int kind = (q / 3) % KINDS;
        for (size_t w = 0; w < nwords; w++) {
            bool again;
            do {
                if (kind == KIND_COMMON)
                    ranks[w] = w == 0 ? s_rank_in(&seed, 0, COMMON_RANKS)
                                      : s_rank_in(&seed, COMMON_RANKS, c->n);
                else if (kind == KIND_MIDDLE)
                    ranks[w] = s_rank_in(&seed, COMMON_RANKS, RARE_RANK);
                else
                    ranks[w] = s_rank_in(&seed, RARE_RANK, c->n);
                again = false;
                for (size_t v = 0; v < w; v++)
                    again |= ranks[v] == ranks[w];
            } while (again);
        }
        char *text = zsys_sprintf("%s%s%s%s%s", c->words[ranks[0]], nwords > 1 ? " " : "",
                                  nwords > 1 ? c->words[ranks[1]] : "", nwords > 2 ? " " : "",
                                  nwords > 2 ? c->words[ranks[2]] : "");
        if (!text)
            s_die("queries", ENGRAM_ENOMEM);
        c->query[q] = text;
        c->kind[q] = kind;
        c->nwords[q] = nwords;
    }
}

static void s_corpus_new(s_corpus_t *c, search_tokenizer_t *tokenizer)
{
    memset(c, 0, sizeof *c);
    size_t ncand = VOCABULARY * 2;
    char **cand = calloc(ncand, sizeof *cand);
    zhash_t *seen = zhash_new();
    if (!cand || !seen)
        s_die("vocabulary", ENGRAM_ENOMEM);
    uint64_t seed = 1;
    for (size_t i = 0; i < ncand;) {
        char *w = s_pseudo_word(&seed);
        if (!w)
            s_die("vocabulary", ENGRAM_ENOMEM);
        if (zhash_insert(seen, w, w) == 0)
            cand[i++] = w;
        else
            free(w);
    }
    char **fterms = s_fts5_terms(cand, ncand);
    zhash_t *e2f = zhash_new(), *f2e = zhash_new();
    c->words = calloc(VOCABULARY, sizeof *c->words);
    if (!e2f || !f2e || !c->words)
        s_die("vocabulary", ENGRAM_ENOMEM);
    for (size_t i = 0; i < ncand; i++) {
        search_terms_t t = {0};
        if (c->n < VOCABULARY && fterms[i] &&
            search_tokenize(tokenizer, cand[i], strlen(cand[i]), &t) == 0 && t.n == 1 &&
            s_agree(e2f, f2e, t.terms[0], fterms[i])) {
            c->words[c->n++] = cand[i];
            cand[i] = NULL;
        }
        search_terms_free(&t);
    }
    if (c->n < VOCABULARY)
        BENCH_DIE("only %zu of %d words split alike", c->n, VOCABULARY);
    zhash_destroy(&e2f);
    zhash_destroy(&f2e);
    for (size_t i = 0; i < ncand; i++) {
        free(cand[i]);
        free(fterms[i]);
    }
    free(cand);
    free(fterms);
    zhash_destroy(&seen);
    c->cdf = malloc(c->n * sizeof *c->cdf);
    if (!c->cdf)
        s_die("vocabulary", ENGRAM_ENOMEM);
    double sum = 0;
    for (size_t r = 0; r < c->n; r++)
        c->cdf[r] = sum += 1.0 / (double)(r + 1);
    for (size_t r = 0; r < c->n; r++)
        c->cdf[r] /= sum;
    s_queries(c);
}

static void s_corpus_free(s_corpus_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->words[i]);
    for (int q = 0; q < QUERIES; q++)
        zstr_free(&c->query[q]);
    free(c->words);
    free(c->cdf);
}

/*  Memory i's text into out (MAX_TEXT bytes); its length. The same i gives the same text. */
static size_t s_text(const s_corpus_t *c, size_t i, char *out)
{
    uint64_t seed = UINT64_C(0x5eed) + i * UINT64_C(0x9e3779b97f4a7c15);
    unsigned words = MIN_WORDS + (unsigned)(bench_rand(&seed) % (MAX_WORDS - MIN_WORDS + 1));
    size_t len = 0;
    for (unsigned w = 0; w < words; w++) {
        const char *word = c->words[s_sample_rank(c, &seed)];
        size_t wlen = strlen(word);
        memcpy(out + len, word, wlen);
        if (w == 0)
            out[len] = (char)(out[len] - 'a' + 'A');
        len += wlen;
        if (w + 1 < words && bench_rand(&seed) % 8 == 0)
            out[len++] = ',';
        out[len++] = w + 1 < words ? ' ' : '.';
    }
    out[len] = '\0';
    return len;
}

/*  --- engram ---------------------------------------------------------------------------- */

static void s_key(char *key, size_t size, size_t i)
{
    snprintf(key, size, "m%08zu", i);
}

/*  One register put as engramd does it: the value with its provenance, view, mutator, apply. */
static void s_put(node_store_t *store, size_t i, const char *data, size_t len, uint64_t hlc)
{
    char key[16];
    s_key(key, sizeof key, i);
    crdt_value_t *v = crdt_value_new();
    int rc = v ? 0 : ENGRAM_ENOMEM;
    if (rc == 0) {
        v->created_hlc = v->updated_hlc = hlc;
        rc = crdt_value_set_user(v, "bench");
    }
    rc = rc ? rc : crdt_value_set_author(v, "bench");
    rc = rc ? rc : crdt_value_add_agent(v, "bench");
    rc = rc ? rc : crdt_value_set_data(v, data, len);
    uint8_t *encoded = NULL;
    size_t encoded_len = 0;
    rc = rc ? rc : crdt_value_encode(v, &encoded, &encoded_len);
    crdt_value_destroy(&v);
    crdt_scope_t *view = NULL, *before = NULL, *delta = NULL;
    unsigned types;
    rc = rc ? rc : node_store_view(store, SCOPE, key, NODE_VIEW_OBJECT, NULL, &view, &types);
    if (rc == 0 && !(before = crdt_scope_dup(view, 0)))
        rc = ENGRAM_ENOMEM;
    rc = rc ? rc : crdt_mvreg_write(view, key, hlc, encoded, encoded_len, &delta);
    node_history_t history = {.op = "put",
                              .agent = "bench",
                              .user = "bench",
                              .hlc = hlc,
                              .value = encoded,
                              .len = encoded_len};
    rc = rc ? rc : node_store_apply(store, SCOPE, key, before, delta, &history);
    if (rc)
        s_die("put", rc);
    free(encoded);
    crdt_scope_destroy(&delta);
    crdt_scope_destroy(&before);
    crdt_scope_destroy(&view);
}

static node_store_t *s_engram_open(const char *dir)
{
    node_store_t *store;
    char why[256];
    int rc = node_store_open(dir, true, 0, &store, why, sizeof why);
    if (rc)
        BENCH_DIE("open %s: %s", dir, why);
    node_store_set_min_free(store, 0);
    return store;
}

/*  Fills store with n memories (indexed: the texts; else the texts with a 0xFF
 *  first byte); returns puts per second. */
static double s_engram_fill(const s_corpus_t *c, node_store_t *store, size_t n, bool indexed)
{
    char(*texts)[MAX_TEXT] = malloc(BATCH * sizeof *texts);
    size_t lens[BATCH];
    if (!texts)
        s_die("fill", ENGRAM_ENOMEM);
    uint64_t spent = 0, hlc = 1;
    for (size_t first = 0; first < n; first += BATCH) {
        s_stop_if_interrupted();
        size_t count = n - first < BATCH ? n - first : BATCH;
        for (size_t j = 0; j < count; j++) {
            lens[j] = s_text(c, first + j, texts[j]);
            if (!indexed)
                texts[j][0] = (char)0xFF;
        }
        uint64_t t0 = bench_now_ns();
        for (size_t j = 0; j < count; j++)
            s_put(store, first + j, texts[j], lens[j], hlc++);
        int rc = node_store_sync(store);
        spent += bench_now_ns() - t0;
        if (rc)
            s_die("sync", rc);
    }
    free(texts);
    return (double)n / ((double)spent / 1e9);
}

static bool s_allow_all(void *arg, const char *const *agents, size_t nagents,
                        const char *const *resources, size_t nresources)
{
    (void)arg, (void)agents, (void)nagents, (void)resources, (void)nresources;
    return true;
}

static int s_cmp_hit(const void *a, const void *b)
{
    const node_search_hit_t *x = *(const node_search_hit_t *const *)a;
    const node_search_hit_t *y = *(const node_search_hit_t *const *)b;
    if (x->bm25 != y->bm25)
        return x->bm25 > y->bm25 ? -1 : 1;
    return strcmp(x->key, y->key);
}

/*  A result of the top 10. */
typedef struct {
    char key[16];
    crdt_dot_t dot;
    double score;
} s_top_t;

/*  Every hit of query (node_store_search_terms, into *hits; ranked[] sorted by score, then
 *  key: the API's order); the caller frees both. */
static void s_engram_search(node_store_t *store, const char *query, node_search_hits_t *hits,
                            node_search_hit_t ***ranked)
{
    search_terms_t terms = {0};
    int rc = search_tokenize(node_store_tokenizer(store), query, strlen(query), &terms);
    rc = rc ? rc
            : node_store_search_terms(store, SCOPE, (const char *const *)terms.terms, terms.n,
                                      s_allow_all, NULL, hits);
    search_terms_free(&terms);
    if (rc)
        s_die("search", rc);
    *ranked = malloc((hits->n ? hits->n : 1) * sizeof **ranked);
    if (!*ranked)
        s_die("search", ENGRAM_ENOMEM);
    for (size_t i = 0; i < hits->n; i++)
        (*ranked)[i] = &hits->hits[i];
    qsort(*ranked, hits->n, sizeof **ranked, s_cmp_hit);
}

/*  The timed query, as the API runs it: tokenize, node_store_search_top (the best 10, best
 *  first) into top; returns how many. */
static size_t s_engram_top(node_store_t *store, const char *query, s_top_t *top)
{
    search_terms_t terms = {0};
    node_search_hits_t hits;
    int rc = search_tokenize(node_store_tokenizer(store), query, strlen(query), &terms);
    rc = rc ? rc
            : node_store_search_top(store, SCOPE, (const char *const *)terms.terms, terms.n, TOP_K,
                                    s_allow_all, NULL, &hits);
    search_terms_free(&terms);
    if (rc)
        s_die("search", rc);
    for (size_t i = 0; i < hits.n; i++) {
        snprintf(top[i].key, sizeof top[i].key, "%s", hits.hits[i].key);
        top[i].dot = hits.hits[i].dot;
        top[i].score = hits.hits[i].bm25;
    }
    size_t n = hits.n;
    node_search_hits_free(&hits);
    return n;
}

/*  Loads the n results; whether each is the text written (when check). */
static bool s_engram_load(const s_corpus_t *c, node_store_t *store, const s_top_t *top, size_t n,
                          bool check)
{
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        crdt_type_id_t type;
        uint64_t hlc;
        uint8_t *data;
        size_t len;
        int rc = node_store_entry_get(store, SCOPE, top[i].key, "", top[i].dot, &type, &hlc, &data,
                                      &len);
        if (rc)
            s_die("entry_get", rc);
        if (check) {
            crdt_value_t *v = NULL;
            char text[MAX_TEXT + 1];
            size_t tlen = s_text(c, strtoull(top[i].key + 1, NULL, 10), text);
            ok &= crdt_value_decode(data, len, &v) == 0 && v->len == tlen &&
                  memcmp(v->data, text, tlen) == 0;
            crdt_value_destroy(&v);
        }
        free(data);
    }
    return ok;
}

/*  --- SQLite --------------------------------------------------------------------------- */

static sqlite3 *s_sqlite_open(const char *path, bool fts5)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL) ||
        sqlite3_exec(db,
                     fts5 ? "CREATE VIRTUAL TABLE t USING fts5(body, tokenize='porter unicode61')"
                          : "CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)",
                     NULL, NULL, NULL))
        BENCH_DIE("sqlite %s: %s", path, sqlite3_errmsg(db));
    return db;
}

static double s_sqlite_fill(const s_corpus_t *c, sqlite3 *db, size_t n, bool fts5)
{
    sqlite3_stmt *insert;
    if (sqlite3_prepare_v2(db,
                           fts5 ? "INSERT INTO t(rowid, body) VALUES (?, ?)"
                                : "INSERT INTO t(id, body) VALUES (?, ?)",
                           -1, &insert, NULL))
        BENCH_DIE("sqlite: %s", sqlite3_errmsg(db));
    char(*texts)[MAX_TEXT] = malloc(BATCH * sizeof *texts);
    size_t lens[BATCH];
    if (!texts)
        s_die("fill", ENGRAM_ENOMEM);
    uint64_t spent = 0;
    for (size_t first = 0; first < n; first += BATCH) {
        s_stop_if_interrupted();
        size_t count = n - first < BATCH ? n - first : BATCH;
        for (size_t j = 0; j < count; j++)
            lens[j] = s_text(c, first + j, texts[j]);
        uint64_t t0 = bench_now_ns();
        bool ok = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
        for (size_t j = 0; ok && j < count; j++) {
            sqlite3_bind_int64(insert, 1, (sqlite3_int64)(first + j));
            sqlite3_bind_text(insert, 2, texts[j], (int)lens[j], SQLITE_STATIC);
            ok = sqlite3_step(insert) == SQLITE_DONE;
            sqlite3_reset(insert);
        }
        ok = ok && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
        spent += bench_now_ns() - t0;
        if (!ok)
            BENCH_DIE("sqlite insert: %s", sqlite3_errmsg(db));
    }
    free(texts);
    sqlite3_finalize(insert);
    return (double)n / ((double)spent / 1e9);
}

/*  "a OR b OR c": engram's semantics (any word) in FTS5's grammar. */
static char *s_fts5_query(const char *query)
{
    char *out = malloc(4 * strlen(query) + 1), *o = out;
    if (!out)
        s_die("query", ENGRAM_ENOMEM);
    for (const char *p = query; *p; p++) {
        if (*p == ' ') {
            memcpy(o, " OR ", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

/*  Runs stmt (bound to query) to the end; the rowids and scores of its rows, at most max. */
static size_t s_sqlite_rows(sqlite3_stmt *stmt, const char *query, int64_t *ids, double *scores,
                            size_t max, bool load)
{
    sqlite3_bind_text(stmt, 1, query, -1, SQLITE_STATIC);
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (load && !sqlite3_column_text(stmt, 2))
            BENCH_DIE("sqlite: a row without its text");
        if (n < max) {
            ids[n] = sqlite3_column_int64(stmt, 0);
            if (scores)
                scores[n] = sqlite3_column_double(stmt, 1);
        }
        n++;
    }
    if (rc != SQLITE_DONE)
        BENCH_DIE("sqlite query %s: %s", query, sqlite3_errmsg(sqlite3_db_handle(stmt)));
    sqlite3_reset(stmt);
    return n;
}

/*  --- one size ------------------------------------------------------------------------- */

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t s_du_total; /* nftw's callback takes no argument */
static int s_du_total_fn(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path, (void)ftw;
    if (flag == FTW_F)
        s_du_total += (uint64_t)st->st_size;
    return 0;
}

/*  Bytes of the files under path (apparent sizes). */
static uint64_t s_du(const char *path)
{
    s_du_total = 0;
    nftw(path, s_du_total_fn, 16, FTW_PHYS);
    return s_du_total;
}

/*  The untimed checks of one query: the top 10 is the exhaustive ranking's first 10; same
 *  matches as FTS5; proportional scores for one word. */
static void s_check_query(s_bench_t *b, size_t n, node_store_t *store, sqlite3_stmt *all, int q,
                          const s_top_t *top, size_t ntop, const double *fts_scores,
                          size_t fts_ntop, bool *matches_ok, bool *scores_ok, bool *top_ok)
{
    const s_corpus_t *c = b->corpus;
    node_search_hits_t hits;
    node_search_hit_t **ranked;
    s_engram_search(store, c->query[q], &hits, &ranked);
    bool exact = ntop == (hits.n < TOP_K ? hits.n : TOP_K);
    for (size_t i = 0; exact && i < ntop; i++)
        exact = strcmp(top[i].key, ranked[i]->key) == 0 &&
                fabs(top[i].score - ranked[i]->bm25) <= SCORE_TOLERANCE;
    if (!exact)
        printf("  query \"%s\": the top 10 is not the exhaustive ranking's first 10\n",
               c->query[q]);
    *top_ok &= exact;
    int64_t *mine = malloc((hits.n + 1) * sizeof *mine);
    int64_t *theirs = malloc((n + 1) * sizeof *theirs);
    if (!mine || !theirs)
        s_die("check", ENGRAM_ENOMEM);
    for (size_t i = 0; i < hits.n; i++)
        mine[i] = (int64_t)strtoull(hits.hits[i].key + 1, NULL, 10);
    qsort(mine, hits.n, sizeof *mine, s_cmp_i64);
    char *fq = s_fts5_query(c->query[q]);
    size_t nt = s_sqlite_rows(all, fq, theirs, NULL, n, false);
    free(fq);
    bool same = nt == hits.n && memcmp(mine, theirs, nt * sizeof *mine) == 0;
    if (!same)
        printf("  query \"%s\": engram matches %zu memories, FTS5 %zu\n", c->query[q], hits.n, nt);
    *matches_ok &= same;
    if (c->nwords[q] == 1 && hits.n && hits.n < n * 2 / 5) {
        /* One word: both scores are idf * the same tf/dl part. */
        double df = (double)hits.n, docs = (double)hits.docs;
        double ratio =
            log(1 + (docs - df + 0.5) / (df + 0.5)) / log((docs - df + 0.5) / (df + 0.5));
        bool ok = ntop == fts_ntop;
        for (size_t i = 0; ok && i < ntop; i++)
            ok = fabs(top[i].score / -fts_scores[i] - ratio) <= SCORE_TOLERANCE * ratio;
        if (!ok)
            printf("  query \"%s\": engram's top scores are not FTS5's times the idf ratio\n",
                   c->query[q]);
        *scores_ok &= ok;
    }
    free(mine);
    free(theirs);
    free(ranked);
    node_search_hits_free(&hits);
}

static void s_latency(const uint64_t *samples, size_t n, uint64_t *p50, uint64_t *p99)
{
    uint64_t *sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted)
        s_die("percentiles", ENGRAM_ENOMEM);
    memcpy(sorted, samples, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, bench_cmp_u64);
    *p50 = bench_percentile(sorted, n, 0.50);
    *p99 = bench_percentile(sorted, n, 0.99);
    free(sorted);
}

/*  p50 and p99 of the samples of the queries of kind (-1: all). */
static void s_kind_latency(const s_bench_t *b, const uint64_t *samples, int kind, uint64_t *p50,
                           uint64_t *p99)
{
    uint64_t *picked = malloc(b->reps * QUERIES * sizeof *picked);
    if (!picked)
        s_die("percentiles", ENGRAM_ENOMEM);
    size_t n = 0;
    for (int q = 0; q < QUERIES; q++)
        if (kind < 0 || b->corpus->kind[q] == kind)
            for (unsigned r = 0; r < b->reps; r++)
                picked[n++] = samples[(size_t)q * b->reps + r];
    s_latency(picked, n, p50, p99);
    free(picked);
}

static void s_row_rate(const char *cell, double engram, double fts5)
{
    char a[16], c[16];
    printf("  %-40s %10s %10s %8.2f\n", cell, bench_si(a, sizeof a, engram),
           bench_si(c, sizeof c, fts5), engram / fts5);
}

static void s_row_lat(const char *cell, uint64_t engram, uint64_t fts5)
{
    char a[16], c[16];
    printf("  %-40s %10s %10s %8.2f\n", cell, bench_lat(a, sizeof a, engram),
           bench_lat(c, sizeof c, fts5), (double)engram / (double)fts5);
}

static void s_report(s_bench_t *b, size_t n, const s_side_t *e, const s_side_t *f)
{
    printf("  %-40s %10s %10s %8s\n", "cell", "engram", "FTS5", "ratio");
    s_row_rate("writes/s, indexed", e->writes_indexed, f->writes_indexed);
    s_row_rate("writes/s, not indexed", e->writes_plain, f->writes_plain);
    printf("  %-40s %10.2f %10.2f %8.2f\n", "index cost: indexed / not-indexed rate",
           e->writes_indexed / e->writes_plain, f->writes_indexed / f->writes_plain,
           (e->writes_indexed / e->writes_plain) / (f->writes_indexed / f->writes_plain));
    uint64_t e50, e99, f50, f99;
    s_kind_latency(b, e->search_ns, -1, &e50, &e99);
    s_kind_latency(b, f->search_ns, -1, &f50, &f99);
    s_row_lat("search top 10, p50", e50, f50);
    s_row_lat("search top 10, p99", e99, f99);
    bool p99_met = e99 < GOAL_P99_NS, fts5_met = e99 <= f99;
    uint64_t l50, l99, g50, g99;
    s_kind_latency(b, e->load_ns, -1, &l50, &l99);
    s_kind_latency(b, f->load_ns, -1, &g50, &g99);
    s_row_lat("search top 10 + load, p50", l50, g50);
    s_row_lat("search top 10 + load, p99", l99, g99);
    for (int kind = 0; kind < KINDS; kind++) {
        char cell[64];
        s_kind_latency(b, e->search_ns, kind, &e50, &e99);
        s_kind_latency(b, f->search_ns, kind, &f50, &f99);
        snprintf(cell, sizeof cell, "  p50, queries %s", s_kind_name[kind]);
        s_row_lat(cell, e50, f50);
        snprintf(cell, sizeof cell, "  p99, queries %s", s_kind_name[kind]);
        s_row_lat(cell, e99, f99);
    }
    char a[16], c[16];
    printf("  %-40s %9sB %9sB %8.2f\n", "bytes on disk (indexed store, WAL too)",
           bench_si(a, sizeof a, (double)e->disk_bytes),
           bench_si(c, sizeof c, (double)f->disk_bytes),
           (double)e->disk_bytes / (double)f->disk_bytes);
    printf("  goal: search p99 under 10 ms: %s; no slower than FTS5 (p99): %s\n",
           p99_met ? "met" : "NOT met", fts5_met ? "met" : "NOT met");
    if (n == GOAL_N) {
        b->goal_checked = true;
        b->goal_p99_met = p99_met;
        b->goal_fts5_met = fts5_met;
    }
}

static void s_run_size(s_bench_t *b, size_t n)
{
    const s_corpus_t *c = b->corpus;
    char *dir = zsys_sprintf("%s/text-%zu", b->work, n);
    if (!dir || mkdir(dir, 0700) != 0)
        BENCH_DIE("cannot make %s", dir ? dir : "a directory");
    char *edir = zsys_sprintf("%s/engram", dir), *pdir = zsys_sprintf("%s/engram-plain", dir);
    char *fpath = zsys_sprintf("%s/fts5.db", dir), *ppath = zsys_sprintf("%s/plain.db", dir);
    s_side_t e = {0}, f = {0};
    e.search_ns = calloc(b->reps * QUERIES, sizeof *e.search_ns);
    e.load_ns = calloc(b->reps * QUERIES, sizeof *e.load_ns);
    f.search_ns = calloc(b->reps * QUERIES, sizeof *f.search_ns);
    f.load_ns = calloc(b->reps * QUERIES, sizeof *f.load_ns);
    if (!edir || !pdir || !fpath || !ppath || !e.search_ns || !e.load_ns || !f.search_ns ||
        !f.load_ns)
        s_die("size", ENGRAM_ENOMEM);
    printf("\nN = %zu memories\n", n);
    fflush(stdout);
    double t0 = bench_now();
    node_store_t *plain = s_engram_open(pdir);
    e.writes_plain = s_engram_fill(c, plain, n, false);
    node_store_close(&plain);
    bench_rm_tree(pdir);
    node_store_t *store = s_engram_open(edir);
    e.writes_indexed = s_engram_fill(c, store, n, true);
    sqlite3 *pdb = s_sqlite_open(ppath, false);
    f.writes_plain = s_sqlite_fill(c, pdb, n, false);
    sqlite3_close(pdb);
    sqlite3 *db = s_sqlite_open(fpath, true);
    f.writes_indexed = s_sqlite_fill(c, db, n, true);
    printf("  (stores filled in %.0f s)\n", bench_now() - t0);
    fflush(stdout);
    e.disk_bytes = s_du(edir);
    f.disk_bytes = s_du(fpath);
    char *wal = zsys_sprintf("%s-wal", fpath);
    f.disk_bytes += wal ? s_du(wal) : 0;
    zstr_free(&wal);

    sqlite3_stmt *top, *top_load, *all;
    if (sqlite3_prepare_v2(db,
                           "SELECT rowid, bm25(t) FROM t WHERE t MATCH ? ORDER BY bm25(t) "
                           "LIMIT 10",
                           -1, &top, NULL) ||
        sqlite3_prepare_v2(db,
                           "SELECT rowid, bm25(t), body FROM t WHERE t MATCH ? ORDER BY "
                           "bm25(t) LIMIT 10",
                           -1, &top_load, NULL) ||
        sqlite3_prepare_v2(db, "SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid", -1, &all,
                           NULL))
        BENCH_DIE("sqlite: %s", sqlite3_errmsg(db));
    bool matches_ok = true, scores_ok = true, loads_ok = true, top_ok = true;
    for (unsigned r = 0; r < b->reps; r++) {
        s_stop_if_interrupted();
        for (int q = 0; q < QUERIES; q++) {
            size_t at = (size_t)q * b->reps + r;
            s_top_t mine[TOP_K];
            uint64_t a = bench_now_ns();
            size_t nmine = s_engram_top(store, c->query[q], mine);
            uint64_t m = bench_now_ns();
            bool loaded = s_engram_load(c, store, mine, nmine, false);
            uint64_t z = bench_now_ns();
            e.search_ns[at] = m - a;
            e.load_ns[at] = z - a;
            int64_t ids[TOP_K];
            double scores[TOP_K];
            char *fq = s_fts5_query(c->query[q]);
            a = bench_now_ns();
            size_t ntheirs = s_sqlite_rows(top, fq, ids, scores, TOP_K, false);
            m = bench_now_ns();
            s_sqlite_rows(top_load, fq, ids, scores, TOP_K, true);
            z = bench_now_ns();
            free(fq);
            f.search_ns[at] = m - a;
            f.load_ns[at] = z - m;
            if (r == 0) {
                loads_ok &= loaded && s_engram_load(c, store, mine, nmine, true);
                s_check_query(b, n, store, all, q, mine, nmine, scores, ntheirs, &matches_ok,
                              &scores_ok, &top_ok);
            }
        }
    }
    sqlite3_finalize(top);
    sqlite3_finalize(top_load);
    sqlite3_finalize(all);
    sqlite3_close(db);
    node_store_close(&store);
    printf("  ratio = engram / FTS5 (above 1: engram writes faster, searches slower)\n");
    s_report(b, n, &e, &f);
    s_check(b, top_ok, "engram's top 10 is its exhaustive ranking's first 10", n);
    s_check(b, matches_ok, "engram and FTS5 match the same memories for every query", n);
    s_check(b, scores_ok, "one-word top-10 scores proportional to FTS5's by the idf ratio", n);
    s_check(b, loads_ok, "every loaded result is the text written", n);
    printf("  checks: exact top 10 %s, same matches %s, scores %s, loads %s\n",
           top_ok ? "PASS" : "FAIL", matches_ok ? "PASS" : "FAIL", scores_ok ? "PASS" : "FAIL",
           loads_ok ? "PASS" : "FAIL");
    fflush(stdout);
    free(e.search_ns);
    free(e.load_ns);
    free(f.search_ns);
    free(f.load_ns);
    bench_rm_tree(dir);
    zstr_free(&edir);
    zstr_free(&pdir);
    zstr_free(&fpath);
    zstr_free(&ppath);
    zstr_free(&dir);
}

/*  --- vectors --------------------------------------------------------------------------- */

static void s_random_unit(uint64_t *seed, float *v)
{
    double sum = 0;
    for (int d = 0; d < DIMS; d += 2) { /* Box-Muller: two normal values per draw */
        double u = s_unit(seed), w = s_unit(seed);
        double r = sqrt(-2 * log(u > 0 ? u : DBL_MIN));
        v[d] = (float)(r * cos(2 * M_PI * w));
        v[d + 1] = (float)(r * sin(2 * M_PI * w));
        sum += (double)v[d] * v[d] + (double)v[d + 1] * v[d + 1];
    }
    double norm = sqrt(sum);
    for (int d = 0; d < DIMS; d++)
        v[d] = (float)(v[d] / norm);
}

/*  Puts (id, score) into the best-first top 10 if it belongs. */
static void s_keep(size_t *ids, double *scores, size_t *n, size_t id, double score)
{
    if (*n == TOP_K && score <= scores[TOP_K - 1])
        return;
    size_t at = *n < TOP_K ? (*n)++ : TOP_K - 1;
    while (at > 0 && scores[at - 1] < score) {
        ids[at] = ids[at - 1];
        scores[at] = scores[at - 1];
        at--;
    }
    ids[at] = id;
    scores[at] = score;
}

static rocksdb_t *s_vector_db(const char *dir, rocksdb_options_t *options,
                              rocksdb_column_family_handle_t **handles)
{
    const char *names[2] = {"default", "vectors"};
    const rocksdb_options_t *cf_options[2] = {options, options};
    char *err = NULL;
    rocksdb_t *db = rocksdb_open_column_families(options, dir, 2, names, cf_options, handles, &err);
    if (err)
        BENCH_DIE("rocksdb %s: %s", dir, err);
    return db;
}

static void s_vectors(s_bench_t *b, size_t n, size_t nq)
{
    float *vectors = malloc(n * DIMS * sizeof *vectors);
    double *norms = malloc(n * sizeof *norms);
    float *queries = malloc(nq * DIMS * sizeof *queries);
    uint64_t *mem_ns = calloc(nq, sizeof *mem_ns), *db_ns = calloc(nq, sizeof *db_ns);
    if (!vectors || !norms || !queries || !mem_ns || !db_ns)
        s_die("vectors", ENGRAM_ENOMEM);
    uint64_t seed = 11;
    for (size_t i = 0; i < n; i++) {
        s_random_unit(&seed, vectors + i * DIMS);
        norms[i] = search_vector_norm(vectors + i * DIMS, DIMS);
    }
    /* Half the queries are random; the other half a stored vector plus noise. */
    size_t *planted = calloc(nq, sizeof *planted);
    if (!planted)
        s_die("vectors", ENGRAM_ENOMEM);
    for (size_t q = 0; q < nq; q++) {
        float *v = queries + q * DIMS;
        s_random_unit(&seed, v);
        if (q % 2) {
            planted[q] = (size_t)(bench_rand(&seed) % n);
            for (int d = 0; d < DIMS; d++)
                v[d] = vectors[planted[q] * DIMS + d] + 0.1f * v[d];
        }
    }
    char *dir = zsys_sprintf("%s/vectors-%zu", b->work, n);
    if (!dir || mkdir(dir, 0700) != 0)
        BENCH_DIE("cannot make %s", dir ? dir : "a directory");
    rocksdb_options_t *options = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(options, 1);
    rocksdb_options_set_create_missing_column_families(options, 1);
    rocksdb_column_family_handle_t *cf[2];
    rocksdb_t *db = s_vector_db(dir, options, cf);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_writebatch_t *batch = rocksdb_writebatch_create();
    char *err = NULL;
    for (size_t i = 0; i < n && !err; i++) {
        char key[8], value[sizeof(double) + DIMS * sizeof(float)];
        for (int k = 0; k < 8; k++)
            key[k] = (char)(i >> (56 - 8 * k));
        memcpy(value, &norms[i], sizeof(double));
        memcpy(value + sizeof(double), vectors + i * DIMS, DIMS * sizeof(float));
        rocksdb_writebatch_put_cf(batch, cf[1], key, sizeof key, value, sizeof value);
        if ((i + 1) % 1000 == 0 || i + 1 == n) {
            rocksdb_write(db, wo, batch, &err);
            rocksdb_writebatch_clear(batch);
        }
    }
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    if (!err)
        rocksdb_flush_cf(db, fo, cf[1], &err);
    if (err)
        BENCH_DIE("rocksdb write: %s", err);
    bool same = true, found = true;
    float *stored = malloc(DIMS * sizeof *stored);
    if (!stored)
        s_die("vectors", ENGRAM_ENOMEM);
    for (size_t q = 0; q < nq; q++) {
        s_stop_if_interrupted();
        const float *v = queries + q * DIMS;
        size_t mem_ids[TOP_K], db_ids[TOP_K], nm = 0, nd = 0;
        double mem_scores[TOP_K], db_scores[TOP_K];
        uint64_t t0 = bench_now_ns();
        double qnorm = search_vector_norm(v, DIMS);
        for (size_t i = 0; i < n; i++)
            s_keep(mem_ids, mem_scores, &nm, i,
                   search_cosine(v, qnorm, vectors + i * DIMS, norms[i], DIMS));
        uint64_t t1 = bench_now_ns();
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, ro, cf[1]);
        for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t klen, vlen;
            const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
            const char *value = rocksdb_iter_value(it, &vlen);
            if (klen != 8 || vlen != sizeof(double) + DIMS * sizeof(float))
                continue;
            size_t id = 0;
            for (int i = 0; i < 8; i++)
                id = id << 8 | k[i];
            double norm;
            memcpy(&norm, value, sizeof norm);
            memcpy(stored, value + sizeof norm, DIMS * sizeof *stored);
            s_keep(db_ids, db_scores, &nd, id, search_cosine(v, qnorm, stored, norm, DIMS));
        }
        rocksdb_iter_get_error(it, &err);
        rocksdb_iter_destroy(it);
        if (err)
            BENCH_DIE("rocksdb scan: %s", err);
        uint64_t t2 = bench_now_ns();
        mem_ns[q] = t1 - t0;
        db_ns[q] = t2 - t1;
        same &= nm == nd && memcmp(mem_ids, db_ids, nm * sizeof *mem_ids) == 0;
        if (q % 2)
            found &= nm > 0 && mem_ids[0] == planted[q];
    }
    uint64_t m50, m99, d50, d99;
    s_latency(mem_ns, nq, &m50, &m99);
    s_latency(db_ns, nq, &d50, &d99);
    char a[16], c[16], e[16], f[16];
    printf("  %-8zu %8zu %11s %10s %11s %10s %7.1f ns %s\n", n, nq, bench_lat(a, sizeof a, m50),
           bench_lat(c, sizeof c, m99), bench_lat(e, sizeof e, d50), bench_lat(f, sizeof f, d99),
           (double)m50 / (double)n, same && found ? "PASS" : "FAIL");
    s_check(b, same, "in-memory and RocksDB scans give the same top 10", n);
    s_check(b, found, "a stored vector plus noise is found first", n);
    fflush(stdout);
    free(stored);
    rocksdb_flushoptions_destroy(fo);
    rocksdb_writebatch_destroy(batch);
    rocksdb_readoptions_destroy(ro);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_column_family_handle_destroy(cf[0]);
    rocksdb_column_family_handle_destroy(cf[1]);
    rocksdb_close(db);
    rocksdb_options_destroy(options);
    bench_rm_tree(dir);
    zstr_free(&dir);
    free(planted);
    free(vectors);
    free(norms);
    free(queries);
    free(mem_ns);
    free(db_ns);
}

/*  --- main ------------------------------------------------------------------------------ */

static size_t s_parse_sizes(const char *list, size_t *sizes, size_t max)
{
    size_t n = 0;
    for (const char *p = list; *p && n < max;) {
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || v == 0)
            BENCH_DIE("--sizes: a comma-separated list of positive counts, not '%s'", list);
        sizes[n++] = (size_t)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            BENCH_DIE("--sizes: a comma-separated list of positive counts, not '%s'", list);
    }
    return n;
}

int main(int argc, char **argv)
{
    zsys_handler_set(NULL);
    bench_start(NULL, NULL, s_remove_workdir);
    bool quick = false;
    size_t sizes[8] = {10000, 100000, 1000000}, nsizes = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc)
            nsizes = s_parse_sizes(argv[++i], sizes, 8);
        else
            BENCH_DIE("usage: engram-search-bench [--quick] [--sizes N,N,...]");
    }
    if (quick) {
        sizes[0] = 10000;
        nsizes = 1;
    }
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(s_workdir, sizeof s_workdir, "%s/engram-search-bench-XXXXXX", tmp);
    if (!mkdtemp(s_workdir)) {
        s_workdir[0] = '\0';
        BENCH_DIE("cannot make a directory under %s", tmp);
    }
    printf("engram-search-bench (%s): RocksDB %s, SQLite %s\n", ENGRAM_BENCH_BUILD_TYPE,
           ENGRAM_BENCH_ROCKSDB_VERSION, sqlite3_libversion());
    printf("durability: engram node_store_sync (one WAL fsync) per %d puts; SQLite WAL, "
           "synchronous=FULL, one transaction per %d inserts; stores under %s\n",
           BATCH, BATCH, s_workdir);
    search_tokenizer_t *tokenizer;
    int rc = search_tokenizer_new(SEARCH_DEFAULT_LANGUAGE, &tokenizer);
    if (rc)
        s_die("tokenizer", rc);
    s_corpus_t corpus;
    s_corpus_new(&corpus, tokenizer);
    search_tokenizer_destroy(&tokenizer);
    char text[MAX_TEXT];
    size_t bytes = 0;
    for (size_t i = 0; i < 1000; i++)
        bytes += s_text(&corpus, i, text);
    s_text(&corpus, 0, text);
    printf("corpus: %zu-word Zipf vocabulary (s = 1), %d to %d words a memory, %.0f bytes on "
           "average; e.g. \"%s\"\n",
           corpus.n, MIN_WORDS, MAX_WORDS, (double)bytes / 1000, text);
    printf("queries: %d (1 to 3 words; %s: \"%s\"; %s: \"%s\"; %s: \"%s\"), top %d\n", QUERIES,
           s_kind_name[KIND_COMMON], corpus.query[0], s_kind_name[KIND_MIDDLE], corpus.query[4],
           s_kind_name[KIND_RARE], corpus.query[8], TOP_K);
    s_bench_t b = {.corpus = &corpus, .work = s_workdir, .reps = quick ? 2 : 5};
    for (size_t i = 0; i < nsizes; i++)
        s_run_size(&b, sizes[i]);
    printf("\nvector scan: exact cosine, top %d, %d float32 dimensions; memory = float array, "
           "RocksDB = column family scan\n",
           TOP_K, DIMS);
    printf("  %-8s %8s %11s %10s %11s %10s %10s %s\n", "N", "queries", "memory p50", "p99",
           "RocksDB p50", "p99", "per vector", "check");
    s_vectors(&b, 10000, quick ? 10 : 50);
    if (!quick)
        s_vectors(&b, 100000, 50);
    if (b.goal_checked)
        printf("\ngoals at N = %d: search p99 under 10 ms: %s; no slower than FTS5: %s\n", GOAL_N,
               b.goal_p99_met ? "met" : "NOT met", b.goal_fts5_met ? "met" : "NOT met");
    s_corpus_free(&corpus);
    printf("%s\n", b.failures ? "FAIL" : "all checks PASS");
    return b.failures ? 1 : 0;
}
