/*  Tests of the search index's top-k path (node_store_search_top) against the exhaustive one
 *  (node_store_search_terms): on a store of a few hundred memories whose words follow a
 *  steep Zipf law (the commonest word in nearly every memory, repeated in many), written by
 *  several provenance classes of which the reader may not see some, with overwrites, forgets
 *  and log entries (several documents per key), the best k of every query, for many k, are
 *  exactly the first k of the exhaustive ranking (same documents, order, scores, tf, dl) with
 *  the same statistics (N, avgdl, df from the per-class counters), through the threshold
 *  algorithm and through the whole read small queries get; a word held only by
 *  documents the reader may not see finds nothing and counts nothing; and the incremental
 *  index equals the one node_store_reindex rebuilds, record for record, before a rebuild and
 *  after writes that follow one, with the counter cache and the df journal of their default
 *  bounds, with a cache that empties every few writes and with a journal flushed every three
 *  records; and a store that stopped with journal records outstanding (a checkpoint, a copy of
 *  the live directory) replays them when it opens.
 */
#include "prop.h"

#include <czmq.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/log.h"
#include "crdt/mvreg.h"
#include "crdt/value.h"
#include "engram/error.h"
#include "node/search/text.h"
#include "node/store/internal.h" /* store__search_way */
#include "node/store/store.h"

#define SID     "run:index"
#define WORDS   40
#define CLASSES 6
#define KEYS    300

/*  Classes 1 and 4 are hidden from the reader. */
static const char *const s_agents[CLASSES] = {"agent-0", "agent-1", "agent-2",
                                              "agent-3", "agent-4", "agent-5"};

static bool s_hidden(const char *agent)
{
    return strcmp(agent, "agent-1") == 0 || strcmp(agent, "agent-4") == 0;
}

static bool s_visible(void *arg, const char *const *agents, size_t nagents,
                      const char *const *resources, size_t nresources)
{
    (void)arg, (void)resources, (void)nresources;
    for (size_t i = 0; i < nagents; i++)
        if (s_hidden(agents[i]))
            return false;
    return true;
}

static bool s_visible_all(void *arg, const char *const *agents, size_t nagents,
                          const char *const *resources, size_t nresources)
{
    (void)arg, (void)agents, (void)nagents, (void)resources, (void)nresources;
    return true;
}

static char s_word[WORDS][16];

/*  Appends word to the space-separated text in out (size bytes; it fits by construction). */
static void s_append(char *out, size_t size, const char *word)
{
    size_t len = strlen(out), wlen = strlen(word);
    assert_true(len + 1 + wlen < size);
    if (len)
        out[len++] = ' ';
    memcpy(out + len, word, wlen + 1);
}

/*  A text of 1 to 24 words drawn from a steep Zipf law; a few texts repeat exactly (ties). */
static void s_text(prop_rng_t *rng, char *out, size_t size)
{
    out[0] = '\0';
    if (prop_below(rng, 10) == 0) {
        snprintf(out, size, "%s %s %s", s_word[0], s_word[0], s_word[3]);
        return;
    }
    unsigned n = 1 + (unsigned)prop_below(rng, 24);
    for (unsigned i = 0; i < n; i++) {
        unsigned r = 0;
        while (r + 1 < WORDS && prop_below(rng, 3) != 0)
            r += 1 + (unsigned)prop_below(rng, 2) * r;
        if (r >= WORDS)
            r = WORDS - 1;
        if (prop_below(rng, 2) == 0)
            r = 0; /* the commonest word, often several times */
        s_append(out, size, s_word[r]);
    }
}

/*  A put (or log append) of text by one class, as the server writes it. */
static void s_write(node_store_t *store, const char *key, bool log, const char *text,
                    const char *agent, bool resource)
{
    crdt_value_t *v = crdt_value_new();
    assert_non_null(v);
    assert_int_equal(crdt_value_set_data(v, text, strlen(text)), 0);
    assert_int_equal(crdt_value_set_author(v, agent), 0);
    assert_int_equal(crdt_value_add_agent(v, agent), 0);
    if (resource)
        assert_int_equal(crdt_value_add_resource(v, "doc://shared"), 0);
    uint8_t *buf;
    size_t len;
    assert_int_equal(crdt_value_encode(v, &buf, &len), 0);
    crdt_value_destroy(&v);
    crdt_scope_t *view = NULL, *delta = NULL;
    unsigned types = 0;
    assert_int_equal(node_store_view(store, SID, key, NODE_VIEW_OBJECT, NULL, &view, &types), 0);
    crdt_scope_t *before = crdt_scope_dup(view, 0);
    if (log)
        assert_int_equal(crdt_log_append(view, key, 1, buf, len, &delta), 0);
    else
        assert_int_equal(crdt_mvreg_write(view, key, 1, buf, len, &delta), 0);
    node_history_t history = {.op = "op", .agent = agent, .user = "u", .hlc = 1};
    assert_int_equal(node_store_apply(store, SID, key, before, delta, &history), 0);
    free(buf);
    crdt_scope_destroy(&delta);
    crdt_scope_destroy(&before);
    crdt_scope_destroy(&view);
}

static void s_forget(node_store_t *store, const char *key)
{
    crdt_scope_t *view = NULL, *delta = NULL;
    unsigned types = 0;
    assert_int_equal(node_store_view(store, SID, key, NODE_VIEW_OBJECT, NULL, &view, &types), 0);
    crdt_scope_t *before = crdt_scope_dup(view, 0);
    if (crdt_scope_forget(view, key, &delta) == 0) {
        node_history_t history = {.op = "forget", .agent = "agent-0", .user = "u", .hlc = 1};
        assert_int_equal(node_store_apply(store, SID, key, before, delta, &history), 0);
    }
    crdt_scope_destroy(&delta);
    crdt_scope_destroy(&before);
    crdt_scope_destroy(&view);
}

static int s_cmp_dot(crdt_dot_t a, crdt_dot_t b)
{
    return a.node != b.node ? (a.node < b.node ? -1 : 1) : a.n != b.n ? (a.n < b.n ? -1 : 1) : 0;
}

/*  The API's order: score descending, then key, element, dot. */
static int s_cmp_ranked(const void *a, const void *b)
{
    const node_search_hit_t *x = a, *y = b;
    if (x->bm25 != y->bm25)
        return x->bm25 > y->bm25 ? -1 : 1;
    int c = strcmp(x->key, y->key);
    if (c == 0)
        c = strcmp(x->elem, y->elem);
    return c ? c : s_cmp_dot(x->dot, y->dot);
}

/*  The top k of query equals the first k of the exhaustive ranking. */
static void s_check_query(node_store_t *store, const char *query, node_visible_fn visible)
{
    search_terms_t terms = {0};
    assert_int_equal(search_tokenize(node_store_tokenizer(store), query, strlen(query), &terms), 0);
    const char *const *t = (const char *const *)terms.terms;
    node_search_hits_t all;
    assert_int_equal(node_store_search_terms(store, SID, t, terms.n, visible, NULL, &all), 0);
    if (all.n)
        qsort(all.hits, all.n, sizeof *all.hits, s_cmp_ranked);
    static const size_t ks[] = {1, 2, 3, 5, 10, 25, 36, 37, 38, 60, 1000};
    enum { KS = sizeof ks / sizeof *ks };
    for (size_t run = 0; run < 2 * KS; run++) {
        /* the threshold algorithm, then the whole read small queries get */
        size_t i = run % KS;
        store__search_way(run < KS ? STORE_SEARCH_THRESHOLD : STORE_SEARCH_WHOLE);
        node_search_hits_t top;
        assert_int_equal(node_store_search_top(store, SID, t, terms.n, ks[i], visible, NULL, &top),
                         0);
        size_t want = all.n < ks[i] ? all.n : ks[i];
        PROP_CHECK(top.n == want);
        PROP_CHECK(top.docs == all.docs && top.avgdl == all.avgdl && top.nterms == all.nterms);
        for (size_t j = 0; j < terms.n; j++)
            PROP_CHECK(top.df[j] == all.df[j]);
        if (all.n > ks[i])
            PROP_CHECK(top.more);
        for (size_t h = 0; h < top.n && h < want; h++) {
            const node_search_hit_t *x = &top.hits[h], *y = &all.hits[h];
            PROP_CHECK(strcmp(x->key, y->key) == 0 && strcmp(x->elem, y->elem) == 0 &&
                       s_cmp_dot(x->dot, y->dot) == 0);
            PROP_CHECK(fabs(x->bm25 - y->bm25) <= 1e-9 && x->dl == y->dl);
            for (size_t j = 0; j < terms.n; j++)
                PROP_CHECK(x->tf[j] == y->tf[j]);
        }
        node_search_hits_free(&top);
    }
    store__search_way(STORE_SEARCH_THRESHOLD);
    node_search_hits_free(&all);
    search_terms_free(&terms);
}

/*  mkdtemp(3)'s template of a store's directory: the six X are what mkdtemp replaces. */
#define S_DIR_TEMPLATE "/tmp/engram-index-test-XXXXXX"

/*  A new store in a new directory made from dir (a copy of S_DIR_TEMPLATE). */
static node_store_t *s_open_store(char *dir)
{
    assert_non_null(mkdtemp(dir));
    node_store_t *store;
    char why[256];
    assert_int_equal(node_store_open(dir, false, 0, &store, why, sizeof why), 0);
    node_store_set_min_free(store, 0);
    return store;
}

/*  Closes the store and removes its directory. */
static void s_close_store(node_store_t **store, const char *dir)
{
    node_store_close(store);
    char *rm = zsys_sprintf("rm -rf %s", dir);
    assert_int_equal(system(rm), 0);
    zstr_free(&rm);
}

/*  Writes KEYS / 10 more memories: the counters then start from what a rebuild made. */
static void s_write_more(node_store_t *store, prop_rng_t *rng)
{
    char text[512], key[16];
    for (int i = 0; i < KEYS / 10; i++) {
        snprintf(key, sizeof key, "k%03d", (int)prop_below(rng, KEYS));
        s_text(rng, text, sizeof text);
        int c = (int)prop_below(rng, CLASSES);
        s_write(store, key, strcmp(key, "k050") < 0, text, s_agents[c], c == 5);
    }
}

/*  The index kept write by write is what a rebuild makes, record for record. */
static void s_check_rebuild(node_store_t *store)
{
    uint8_t before[32], after[32];
    uint64_t records = 0, rebuilt = 0, indexed = 0;
    assert_int_equal(node_store_index_digest(store, before, &records), 0);
    assert_int_equal(node_store_reindex(store, &indexed), 0);
    assert_int_equal(node_store_index_digest(store, after, &rebuilt), 0);
    PROP_CHECK(indexed > 0 && records == rebuilt && memcmp(before, after, 32) == 0);
}

/*  The df counts of two of s_check_journal_replayed's words in store. */
static void s_two_dfs(node_store_t *store, uint64_t df[2])
{
    const char *words[2] = {"zqkalox", "zqmipex"};
    node_search_hits_t top;
    assert_int_equal(node_store_search_top(store, SID, words, 2, 10, s_visible_all, NULL, &top), 0);
    df[0] = top.df[0];
    df[1] = top.df[1];
    node_search_hits_free(&top);
}

/*  A store that stopped without flushing its counters replays its journal: its df counts are
 *  the store's, and once both flush, so is its index, record for record. Two such stops: a
 *  checkpoint (its memtables replayed from the logs it took), and a copy of the live
 *  directory as it is (the journal's records, and the memtables, only in the WAL: what a
 *  crash leaves). */
static void s_check_journal_replayed(node_store_t *store, const char *dir)
{
    /* one more memory, within bounds that keep it journaled whatever the case's are */
    size_t cache_max = store->counter_cache_max, journal_max = store->journal_max;
    store->counter_cache_max = STORE_COUNTER_CACHE_BYTES;
    store->journal_max = STORE_JOURNAL_MAX;
    s_write(store, "journaled", false, "zqkalox zqmipex zqkalox", "agent-1", false);
    PROP_CHECK(store__index_journal_records(store) > 0 && store->counters_dirty > 0);
    uint64_t ours[2];
    s_two_dfs(store, ours);
    PROP_CHECK(ours[0] > 0 && ours[1] > 0);

    char copies[2][sizeof S_DIR_TEMPLATE] = {S_DIR_TEMPLATE, S_DIR_TEMPLATE};
    uint8_t digests[2][32];
    uint64_t records[2];
    for (int i = 0; i < 2; i++) {
        assert_non_null(mkdtemp(copies[i]));
        char *path = zsys_sprintf("%s/db", copies[i]);
        if (i == 0) {
            assert_int_equal(node_store_checkpoint(store, path), 0);
        } else {
            char *cp = zsys_sprintf("cp -a %s %s", dir, path);
            assert_int_equal(system(cp), 0);
            zstr_free(&cp);
        }
        node_store_t *reopened;
        char why[256];
        assert_int_equal(node_store_open(path, false, 0, &reopened, why, sizeof why), 0);
        PROP_CHECK(store__index_journal_records(reopened) == store__index_journal_records(store) &&
                   reopened->counters_dirty > 0);
        uint64_t theirs[2];
        s_two_dfs(reopened, theirs);
        PROP_CHECK(theirs[0] == ours[0] && theirs[1] == ours[1]);
        assert_int_equal(node_store_index_digest(reopened, digests[i], &records[i]), 0);
        PROP_CHECK(store__index_journal_records(reopened) == 0 && reopened->counters_dirty == 0);
        zstr_free(&path);
        s_close_store(&reopened, copies[i]);
    }
    uint8_t digest[32];
    uint64_t count = 0;
    assert_int_equal(node_store_index_digest(store, digest, &count), 0);
    for (int i = 0; i < 2; i++)
        PROP_CHECK(records[i] == count && memcmp(digests[i], digest, 32) == 0);
    store->counter_cache_max = cache_max;
    store->journal_max = journal_max;
}

/*  One store of KEYS writes, its counters cached within cache_max bytes (the default, or
 *  small enough that the cache empties many times within one rebuild) and flushed every
 *  journal_max journal records (the default, more than the case writes, or a few). */
static void s_one_case(int index, size_t cache_max, size_t journal_max)
{
    store__search_way(STORE_SEARCH_THRESHOLD);
    char dir[] = S_DIR_TEMPLATE;
    node_store_t *store = s_open_store(dir);
    store->counter_cache_max = cache_max;
    store->journal_max = journal_max;
    static const char *const syllables[] = {"ka", "lo", "mi", "nu", "pe", "ro", "si", "tu"};
    for (int w = 0; w < WORDS; w++)
        snprintf(s_word[w], sizeof s_word[w], "zq%s%s%sx", syllables[w % 8], syllables[w / 8 % 8],
                 syllables[(w * 3) % 8]);
    prop_rng_t rng = prop_case("top_equals_exhaustive", index);
    char text[512], key[16];
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "k%03d", (int)prop_below(&rng, KEYS));
        s_text(&rng, text, sizeof text);
        int c = (int)prop_below(&rng, CLASSES);
        bool log = strcmp(key, "k050") < 0; /* the first keys are logs: many entries each */
        s_write(store, key, log, text, s_agents[c], c == 5);
        if (prop_below(&rng, 12) == 0) {
            snprintf(key, sizeof key, "k%03d", (int)prop_below(&rng, KEYS));
            s_forget(store, key);
        }
    }
    /* A word only hidden classes hold. */
    s_write(store, "secret", false, "zqhiddenx zqhiddenx", "agent-1", false);

    char query[128];
    const char *const fixed[] = {"zqhiddenx", "nothingsuch", s_word[0]};
    for (size_t q = 0; q < sizeof fixed / sizeof *fixed; q++) {
        s_check_query(store, fixed[q], s_visible);
        s_check_query(store, fixed[q], s_visible_all);
    }
    for (int q = 0; q < 60; q++) {
        int n = 1 + q % 4;
        query[0] = '\0';
        for (int w = 0; w < n; w++) {
            int r = w == 0 && q % 2 ? 0 : (int)prop_below(&rng, WORDS);
            s_append(query, sizeof query, s_word[r]);
        }
        s_check_query(store, query, q % 3 ? s_visible : s_visible_all);
    }
    /* The word the reader may not see: not found, not counted. */
    node_search_hits_t top;
    const char *hidden[1] = {"zqhiddenx"};
    assert_int_equal(node_store_search_top(store, SID, hidden, 1, 10, s_visible, NULL, &top), 0);
    PROP_CHECK(top.n == 0 && top.df[0] == 0 && !top.more);
    node_search_hits_free(&top);
    assert_int_equal(node_store_search_top(store, SID, hidden, 1, 10, s_visible_all, NULL, &top),
                     0);
    PROP_CHECK(top.n == 1 && top.df[0] == 1 && top.hits[0].tf[0] == 2);
    node_search_hits_free(&top);

    /* The counters and impact postings kept write by write are what a rebuild makes; so are
     * those written after a rebuild, whose counters the cache holds from the rebuild on. The
     * cache holds the counters written last, within its bound; the journal holds fewer
     * records than its bound; a store that did not flush them replays them. */
    PROP_CHECK(store__index_cached_counters(store) > 0);
    PROP_CHECK(store->counter_cache_bytes <= cache_max);
    PROP_CHECK(store__index_journal_records(store) < journal_max);
    s_check_journal_replayed(store, dir);
    s_check_rebuild(store);
    s_write_more(store, &rng);
    PROP_CHECK(store__index_cached_counters(store) > 0);
    s_check_rebuild(store);

    s_close_store(&store, dir);
}

static void test_top_equals_exhaustive(void **state)
{
    (void)state;
    for (int c = 0; c < prop_cases(3); c++) {
        s_one_case(c, STORE_COUNTER_CACHE_BYTES, STORE_JOURNAL_MAX);
        s_one_case(c, 2048, STORE_JOURNAL_MAX);      /* about 15 counters: flushed when full */
        s_one_case(c, STORE_COUNTER_CACHE_BYTES, 3); /* flushed every 3 journal records */
    }
}

/*  The bounds' corners: a doc of a smaller tf and a shorter text below the groups a cursor
 *  bounds one by one; and a tie left for a later cursor (the k-th score equals the bound:
 *  the unseen doc of the same score and an earlier key still belongs). */
static void test_bound_corners(void **state)
{
    (void)state;
    store__search_way(STORE_SEARCH_THRESHOLD);
    char dir[] = S_DIR_TEMPLATE;
    node_store_t *store = s_open_store(dir);
    /* tf 2..40 in texts of 400 words, and tf 1 alone: the short one ranks between tf 5 and 4,
     * and its tf is far below the 32 groups bounded one by one. */
    char text[400 * 8 + 1], key[16];
    for (int tf = 1; tf <= 40; tf++) {
        text[0] = '\0';
        for (int w = 0; w < (tf == 1 ? 1 : 400); w++)
            s_append(text, sizeof text, w < tf ? "zqrepx" : "zqfillx");
        snprintf(key, sizeof key, "r%02d", tf);
        s_write(store, key, false, text, "agent-0", false);
    }
    /* Same score, two terms of the same df: t9 is met first (its tf of zqax is 2), t1 (the
     * earlier key) only through the second cursor. */
    s_write(store, "t9", false, "zqax zqax zqbx", "agent-0", false);
    s_write(store, "t1", false, "zqax zqbx zqbx", "agent-0", false);
    s_check_query(store, "zqrepx", s_visible_all);
    s_check_query(store, "zqax zqbx", s_visible_all);
    node_search_hits_t top;
    const char *rep[1] = {"zqrepx"};
    assert_int_equal(node_store_search_top(store, SID, rep, 1, 37, s_visible_all, NULL, &top), 0);
    PROP_CHECK(top.n == 37 && strcmp(top.hits[36].key, "r01") == 0);
    node_search_hits_free(&top);
    const char *two[2] = {"zqax", "zqbx"};
    assert_int_equal(node_store_search_top(store, SID, two, 2, 1, s_visible_all, NULL, &top), 0);
    PROP_CHECK(top.n == 1 && strcmp(top.hits[0].key, "t1") == 0);
    node_search_hits_free(&top);
    s_close_store(&store, dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_equals_exhaustive),
        cmocka_unit_test(test_bound_corners),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
