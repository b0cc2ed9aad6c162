/*  Search end to end (issue 11, "What must show"): a three-node cluster of real engramd
 *  processes (A, B, C; gossip every 50 ms, TTL purges every 100 ms), driven through libengram
 *  and, for the seed scenario, the engram CLI. The tests run in order and share the cluster:
 *  what the earlier ones write is part of the state the reindex test rebuilds.
 *
 *    test_bm25_reference   ~2500 Debian fortunes put into run:fortunes on A; 200 queries
 *                          (words, pairs, runs of words, repeated words) with top_k 20 and
 *                          explain; every document's terms (search_tokenize, "english", the
 *                          node's tokenizer), every query's terms and engram's answers go to a
 *                          JSON file that tests/search/bm25_reference.py, an independent BM25,
 *                          checks: every score within 1e-9, the same top 20
 *    test_across_nodes     a memory written on A is found on C after A's token; a delete made
 *                          on B is gone from C's results after B's token, and from what C
 *                          counts (explain: docs, df); an overwrite made on B replaces the old
 *                          text's hit on C with the new text's
 *    test_access_control   an agent that may read run:open only: naming run:closed is
 *                          ENGRAM_EDENIED; a default search never shows run:closed's memories;
 *                          a memory of run:open derived from a resource it may not read is
 *                          neither returned nor counted (explain's docs and df), while the
 *                          writer, who may read the resource, gets and counts it
 *    test_ttl              a memory with a 1.5 s TTL is found, then not once expired, and no
 *                          longer counted once purged
 *    test_filters          filters on author and metadata restrict the results; a bad filter
 *                          is ENGRAM_EINVAL with a reason; a query with no word is EINVAL
 *    test_reindex          C, which took local puts, overwrites, deletes and TTL expiries and
 *                          deltas of all of these from A and B, answers 60 queries (keys,
 *                          scores, explain) the same before and after a restart with --reindex
 *    test_seed_scenario    through the engram CLI: a researcher on A, a writer on B and an
 *                          editor on C write the blackboard run:q3-report; the editor's search
 *                          "output format constraints" on C returns the format constraints first
 *    test_seed_writer      the writer's "client requirements and format" on B returns the
 *                          researcher's finding first. Fails with keyword search alone: on a
 *                          board of 10 memories "and" is in one of them (df 1, the highest idf),
 *                          so the review that holds "and" and "format" outscores the finding,
 *                          which holds "client" only ("requirements" is not "needs")
 *
 *  Nothing sleeps and then asserts: cross-node reads wait for the writer's causal token
 *  (engram_set_after), purges are polled. Timings are printed, never asserted.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>
#include <jansson.h>
#include <sodium.h>

#include "agent_keys.h"
#include "engram/engram.h"
#include "node/search/text.h"
#include "node/trust/acl.h"
#include "node/trust/admission.h"
#include "node_harness.h"
#include "proto/acl.pb-c.h"

#define NODES   3
#define CALL_MS 20000
#define WAIT_MS 20000
#define USER    "alice"
#define AGENT   "agent-s"

#define FORTUNES_DIR    "/usr/share/games/fortunes"
#define FORTUNE_MAX     400
#define FORTUNES_WANTED 2500
#define BM25_QUERIES    200
#define BM25_TOP_K      20
#define REINDEX_QUERIES 60
#define REINDEX_TOP_K   50
#define TTL_MS          1500

enum { A = 0, B = 1, C = 2 };

typedef struct {
    node_harness_admin_t admin;
    node_harness_t *node[NODES];
    engram_t *conn[NODES]; /* AGENT's, one per node */
    search_tokenizer_t *tokenizer;
    char *queries[BM25_QUERIES]; /* the BM25 test's queries, asked again by the reindex test */
    size_t nqueries;
    zhash_t *latest;   /* "CONNECTION SCOPE" -> the token of that connection's last write there */
    char *board_token; /* the seed scenario's: covers the whole blackboard */
} s_world_t;

static s_world_t *s_w;

static double s_seconds(int64_t since_ms)
{
    return (double)(node_harness_now_ms() - since_ms) / 1000.0;
}

static uint64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void s_expect(engram_t *e, int rc, int want, const char *what)
{
    if (rc != want)
        fail_msg("%s: %d (%s), expected %d (%s); node said: '%s'", what, rc, engram_strerror(rc),
                 want, engram_strerror(want), e ? engram_last_error(e) : "");
}

#define EXPECT_RC(e, want, call) s_expect((e), (call), (want), #call)

/*  --- the cluster ---------------------------------------------------------------------- */

static engram_t *s_conn(int i)
{
    if (!s_w->conn[i])
        s_w->conn[i] = node_harness_connect(s_w->node[i], AGENT, USER, CALL_MS);
    assert_non_null(s_w->conn[i]);
    return s_w->conn[i];
}

static int s_setup(void **state)
{
    (void)state;
    s_w = calloc(1, sizeof *s_w);
    if (!s_w || !agent_keys_home() || node_harness_admin_init(&s_w->admin) != 0 ||
        search_tokenizer_new(SEARCH_DEFAULT_LANGUAGE, &s_w->tokenizer) != 0 ||
        !(s_w->latest = zhash_new()))
        return -1;
    zhash_autofree(s_w->latest);
    static const char *const extra[] = {"--gossip-interval-ms", "50", "--purge-interval-ms", "100",
                                        NULL};
    int64_t start = node_harness_now_ms();
    for (int i = 0; i < NODES; i++) {
        s_w->node[i] = node_harness_new(NULL);
        if (!s_w->node[i] || node_harness_admit(s_w->node[i], &s_w->admin) != 0 ||
            node_harness_grant(s_w->node[i], AGENT, USER) != 0)
            return -1;
        const char *join = i ? node_harness_gossip_endpoint(s_w->node[0]) : NULL;
        if (node_harness_start_member(s_w->node[i], join, extra) != 0)
            return -1;
    }
    print_message("cluster of %d nodes started in %.2f s\n", NODES, s_seconds(start));
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    if (!s_w)
        return 0;
    for (int i = 0; i < NODES; i++) {
        engram_destroy(&s_w->conn[i]);
        node_harness_destroy(&s_w->node[i]);
    }
    for (size_t q = 0; q < s_w->nqueries; q++)
        free(s_w->queries[q]);
    search_tokenizer_destroy(&s_w->tokenizer);
    zhash_destroy(&s_w->latest);
    free(s_w->board_token);
    free(s_w);
    s_w = NULL;
    return 0;
}

/*  --- small helpers -------------------------------------------------------------------- */

/*  Notes token as e's latest write in scope, for test_reindex to wait for. */
static void s_note(engram_t *e, const char *scope, const char *token)
{
    char name[256];
    snprintf(name, sizeof name, "%p %s", (void *)e, scope);
    zhash_update(s_w->latest, name, (void *)token); /* copied: the hash is autofree */
}

/*  Puts text and returns the causal token (the caller frees it). */
static char *s_put(engram_t *e, const char *scope, const char *key, const char *text,
                   const char *meta, uint64_t ttl_ms)
{
    engram_result_t *r = NULL;
    int rc = engram_put(e, scope, key, text, strlen(text), meta, ttl_ms, &r);
    if (rc)
        fail_msg("put %s %s: %s (%s)", scope, key, engram_strerror(rc), engram_last_error(e));
    char *token = strdup(r->token);
    engram_result_destroy(&r);
    assert_non_null(token);
    s_note(e, scope, token);
    return token;
}

static char *s_delete(engram_t *e, const char *scope, const char *key)
{
    engram_result_t *r = NULL;
    EXPECT_RC(e, 0, engram_delete(e, scope, key, &r));
    char *token = strdup(r->token);
    engram_result_destroy(&r);
    assert_non_null(token);
    s_note(e, scope, token);
    return token;
}

/*  Makes e's following reads wait for token (and frees it), and waits for it with a read of
 *  scope (the scope the token names): a write made next on e comes after what it covers
 *  (writes themselves do not wait for a token). */
static void s_after(engram_t *e, const char *scope, char *token)
{
    EXPECT_RC(e, 0, engram_set_after(e, token, WAIT_MS));
    free(token);
    engram_result_t *r = NULL;
    EXPECT_RC(e, 0, engram_list(e, scope, NULL, NULL, 1, &r));
    engram_result_destroy(&r);
}

/*  Searches query in scope (NULL: every scope) with explain; returns the code. */
static int s_search(engram_t *e, const char *query, const char *scope, const char *filter,
                    unsigned top_k, engram_result_t **r)
{
    const char *scopes[1] = {scope};
    engram_search_options_t options = {.scopes = scope ? scopes : NULL,
                                       .nscopes = scope ? 1 : 0,
                                       .filter_json = filter,
                                       .top_k = top_k,
                                       .explain = true};
    *r = NULL;
    return engram_search(e, query, &options, r);
}

static int s_cmp_key(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*  The keys of r, space-separated, in key order (sorted) or in r's order. */
static void s_keys(const engram_result_t *r, bool sorted, char *out, size_t len)
{
    char *keys[64];
    size_t n = r->nitems < 64 ? r->nitems : 64;
    for (size_t i = 0; i < n; i++)
        keys[i] = r->items[i].key;
    if (sorted)
        qsort(keys, n, sizeof *keys, s_cmp_key);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? " " : "", keys[i]);
}

/*  Searches and expects exactly the keys given (space-separated, in key order; "" for none):
 *  which memories are found, whatever their ranking (test_bm25_reference judges that). */
static engram_result_t *s_expect_keys(engram_t *e, const char *query, const char *scope,
                                      const char *filter, const char *keys)
{
    engram_result_t *r = NULL;
    EXPECT_RC(e, 0, s_search(e, query, scope, filter, 0, &r));
    char got[1024];
    s_keys(r, true, got, sizeof got);
    if (strcmp(got, keys) != 0)
        fail_msg("search '%s' in %s%s%s: got [%s], expected [%s]", query, scope ? scope : "all",
                 filter ? " with " : "", filter ? filter : "", got, keys);
    return r;
}

/*  The index of key among r's items. */
static size_t s_item(const engram_result_t *r, const char *key)
{
    for (size_t i = 0; i < r->nitems; i++)
        if (strcmp(r->items[i].key, key) == 0)
            return i;
    fail_msg("%s is not among the results", key);
    return 0;
}

/*  explain's document count N and the df of word's term, for item i. */
static void s_explained(const engram_result_t *r, size_t i, const char *word, int64_t *docs,
                        int64_t *df)
{
    assert_true(i < r->nitems);
    json_error_t err;
    json_t *explain = json_loads(r->items[i].explain_json, 0, &err);
    if (!explain)
        fail_msg("explain of %s is not JSON: %s", r->items[i].key, err.text);
    json_t *bm25 = json_object_get(explain, "bm25");
    *docs = json_integer_value(json_object_get(bm25, "docs"));
    *df = 0;
    search_terms_t stem = {0};
    assert_int_equal(search_tokenize(s_w->tokenizer, word, strlen(word), &stem), 0);
    assert_int_equal(stem.n, 1);
    size_t t;
    json_t *part;
    json_array_foreach(json_object_get(bm25, "terms"), t, part)
    {
        if (strcmp(json_string_value(json_object_get(part, "term")), stem.terms[0]) == 0)
            *df = json_integer_value(json_object_get(part, "df"));
    }
    search_terms_free(&stem);
    json_decref(explain);
}

/*  Expects item i's explain to count docs documents, df of them holding term. */
static void s_expect_counted(const engram_result_t *r, size_t i, const char *term, int64_t docs,
                             int64_t df)
{
    int64_t got_docs, got_df;
    s_explained(r, i, term, &got_docs, &got_df);
    if (got_docs != docs || got_df != df)
        fail_msg("%s: explain counts %" PRId64 " documents, %" PRId64 " holding '%s'; "
                 "expected %" PRId64 " and %" PRId64 " (%s)",
                 r->items[i].key, got_docs, got_df, term, docs, df, r->items[i].explain_json);
}

/*  --- test_bm25_reference ---------------------------------------------------------------- */

typedef struct {
    char **texts;
    size_t n, cap;
} s_texts_t;

static void s_texts_add(s_texts_t *t, const char *text, size_t len)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 1024;
        t->texts = realloc(t->texts, t->cap * sizeof *t->texts);
        assert_non_null(t->texts);
    }
    t->texts[t->n] = strndup(text, len);
    assert_non_null(t->texts[t->n]);
    t->n++;
}

static void s_texts_free(s_texts_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->texts[i]);
    free(t->texts);
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*  Whether the node indexes text: valid UTF-8 with at least one term. */
static bool s_indexable(const char *text)
{
    search_terms_t terms = {0};
    bool yes = search_tokenize(s_w->tokenizer, text, strlen(text), &terms) == 0 && terms.n > 0;
    search_terms_free(&terms);
    return yes;
}

/*  Every fortune of at most FORTUNE_MAX bytes the node indexes, from the fortune files (no
 *  extension) in name order, each file in its order. */
static void s_read_fortunes(s_texts_t *all)
{
    DIR *dir = opendir(FORTUNES_DIR);
    if (!dir)
        fail_msg("%s: %s (the Debian package fortunes, deploy/install-deps.sh)", FORTUNES_DIR,
                 strerror(errno));
    char *names[256];
    size_t nnames = 0;
    for (struct dirent *d; (d = readdir(dir)) && nnames < 256;)
        if (d->d_name[0] != '.' && !strchr(d->d_name, '.'))
            names[nnames++] = strdup(d->d_name);
    closedir(dir);
    qsort(names, nnames, sizeof *names, s_cmp_str);
    for (size_t f = 0; f < nnames; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", FORTUNES_DIR, names[f]);
        free(names[f]);
        struct stat st;
        FILE *file = stat(path, &st) == 0 && S_ISREG(st.st_mode) ? fopen(path, "rb") : NULL;
        if (!file)
            continue;
        char *text = NULL;
        size_t len = 0;
        char *line = NULL;
        size_t cap = 0;
        FILE *fortune = open_memstream(&text, &len);
        assert_non_null(fortune);
        for (ssize_t n; (n = getline(&line, &cap, file)) >= 0;) {
            if (strcmp(line, "%\n") == 0 || strcmp(line, "%") == 0) {
                fflush(fortune);
                while (len > 0 && text[len - 1] == '\n')
                    len--;
                text[len] = '\0';
                if (len > 0 && len <= FORTUNE_MAX && s_indexable(text))
                    s_texts_add(all, text, len);
                rewind(fortune);
                continue;
            }
            fwrite(line, 1, (size_t)n, fortune);
        }
        fclose(fortune);
        free(text);
        free(line);
        fclose(file);
    }
}

/*  A deterministic pseudo-random sequence (xorshift64). */
static uint64_t s_rand(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/*  The ASCII words (letters and digits, at least 3) of text; *n their number. */
static char **s_words(const char *text, size_t *n)
{
    char **words = NULL;
    *n = 0;
    for (const char *p = text; *p;) {
        while (*p &&
               !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            p++;
        const char *start = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
            p++;
        if (p - start >= 3) {
            words = realloc(words, (*n + 1) * sizeof *words);
            assert_non_null(words);
            words[(*n)++] = strndup(start, (size_t)(p - start));
        }
    }
    return words;
}

static void s_words_free(char **words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(words[i]);
    free(words);
}

/*  Query number q over the corpus: single words, pairs, runs of 3 to 6 words of one fortune,
 *  and a word given twice beside another. Caller frees. */
static char *s_query(const s_texts_t *corpus, size_t q, uint64_t *rng)
{
    for (;;) {
        size_t nwords;
        char **words = s_words(corpus->texts[s_rand(rng) % corpus->n], &nwords);
        if (nwords < 6) {
            s_words_free(words, nwords);
            continue;
        }
        size_t at = s_rand(rng) % nwords, other = s_rand(rng) % nwords;
        char *query = NULL;
        if (q < 80)
            query = strdup(words[at]);
        else if (q < 160)
            assert_true(asprintf(&query, "%s %s", words[at], words[other]) > 0);
        else if (q < 190) {
            size_t run = 3 + s_rand(rng) % 4, from = at + run <= nwords ? at : nwords - run;
            char buf[512] = "";
            for (size_t i = from; i < from + run; i++)
                snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i > from ? " " : "",
                         words[i]);
            query = strdup(buf);
        } else
            assert_true(asprintf(&query, "%s %s %s", words[at], words[other], words[at]) > 0);
        s_words_free(words, nwords);
        assert_non_null(query);
        search_terms_t terms = {0};
        assert_int_equal(search_tokenize(s_w->tokenizer, query, strlen(query), &terms), 0);
        size_t n = terms.n;
        search_terms_free(&terms);
        if (n) /* only stop words ("the", "and") has no terms: the node refuses it */
            return query;
        free(query);
    }
}

static json_t *s_terms_json(const char *text)
{
    search_terms_t terms = {0};
    assert_int_equal(search_tokenize(s_w->tokenizer, text, strlen(text), &terms), 0);
    json_t *array = json_array();
    for (size_t i = 0; i < terms.n; i++)
        json_array_append_new(array, json_string(terms.terms[i]));
    search_terms_free(&terms);
    return array;
}

/*  Runs the reference script over path; its exit status. */
static int s_run_reference(const char *path)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(ENGRAM_PYTHON3, ENGRAM_PYTHON3, ENGRAM_BM25_REFERENCE, path, (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", ENGRAM_PYTHON3, strerror(errno));
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_bm25_reference(void **state)
{
    (void)state;
    int64_t start = node_harness_now_ms();
    s_texts_t all = {0};
    s_read_fortunes(&all);
    size_t stride = all.n > FORTUNES_WANTED ? all.n / FORTUNES_WANTED : 1;
    s_texts_t corpus = {0};
    for (size_t i = 0; i < all.n && corpus.n < FORTUNES_WANTED; i += stride)
        s_texts_add(&corpus, all.texts[i], strlen(all.texts[i]));
    s_texts_free(&all);
    assert_true(corpus.n >= 1000);

    engram_t *e = s_conn(A);
    json_t *docs = json_object();
    int64_t put_start = node_harness_now_ms();
    for (size_t i = 0; i < corpus.n; i++) {
        char key[32];
        snprintf(key, sizeof key, "f%05zu", i + 1);
        free(s_put(e, "run:fortunes", key, corpus.texts[i], NULL, 0));
        json_object_set_new(docs, key, s_terms_json(corpus.texts[i]));
    }
    double put_s = s_seconds(put_start);

    uint64_t rng = 0x9e3779b97f4a7c15u;
    json_t *queries = json_array();
    int64_t search_start = node_harness_now_ms();
    for (size_t q = 0; q < BM25_QUERIES; q++) {
        char *query = s_query(&corpus, q, &rng);
        engram_result_t *r = NULL;
        EXPECT_RC(e, 0, s_search(e, query, "run:fortunes", NULL, BM25_TOP_K, &r));
        json_t *results = json_array(), *docs_n = json_null(), *avgdl = json_null();
        for (size_t i = 0; i < r->nitems; i++) {
            json_array_append_new(results, json_pack("[s, f]", r->items[i].key, r->items[i].score));
            json_t *explain = json_loads(r->items[i].explain_json, 0, NULL);
            assert_non_null(explain);
            json_decref(docs_n);
            json_decref(avgdl);
            docs_n = json_incref(json_object_get(json_object_get(explain, "bm25"), "docs"));
            avgdl = json_incref(json_object_get(json_object_get(explain, "bm25"), "avgdl"));
            json_decref(explain);
        }
        json_array_append_new(queries, json_pack("{s:s, s:o, s:o, s:o, s:o}", "query", query,
                                                 "terms", s_terms_json(query), "results", results,
                                                 "docs", docs_n, "avgdl", avgdl));
        engram_result_destroy(&r);
        s_w->queries[s_w->nqueries++] = query;
    }
    double search_s = s_seconds(search_start);

    char path[] = "/tmp/engram-bm25-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    json_t *doc =
        json_pack("{s:i, s:o, s:o}", "top_k", BM25_TOP_K, "docs", docs, "queries", queries);
    assert_int_equal(json_dump_file(doc, path, JSON_COMPACT | JSON_REAL_PRECISION(17)), 0);
    json_decref(doc);
    int64_t ref_start = node_harness_now_ms();
    int status = s_run_reference(path);
    unlink(path);
    print_message("bm25: %zu fortunes put in %.2f s, %d searches in %.2f s, reference %.2f s, "
                  "%.2f s in all\n",
                  corpus.n, put_s, BM25_QUERIES, search_s, s_seconds(ref_start), s_seconds(start));
    s_texts_free(&corpus);
    if (status != 0)
        fail_msg("the BM25 reference disagrees with engram (exit %d; its report is above)", status);
}

/*  --- test_across_nodes ------------------------------------------------------------------ */

static void test_across_nodes(void **state)
{
    (void)state;
    engram_t *a = s_conn(A), *b = s_conn(B), *c = s_conn(C);
    free(s_put(a, "run:across", "k1", "a quokka at the harbour in the morning", NULL, 0));
    free(s_put(a, "run:across", "k2", "quokka swim in the harbour at dusk", NULL, 0));
    char *written = s_put(a, "run:across", "k3", "a wombat burrow by the harbour", NULL, 0);
    char *copy = strdup(written);
    s_after(c, "run:across", written);
    engram_result_t *r = s_expect_keys(c, "quokka", "run:across", NULL, "k1 k2");
    size_t k1 = s_item(r, "k1");
    s_expect_counted(r, k1, "quokka", 3, 2);
    assert_string_equal((char *)r->items[k1].value, "a quokka at the harbour in the morning");
    assert_string_equal(r->items[k1].scope, "run:across");
    engram_result_destroy(&r);

    /* A delete made on B: gone from C's results and counts once C has B's token. */
    s_after(b, "run:across", copy);
    s_after(c, "run:across", s_delete(b, "run:across", "k1"));
    r = s_expect_keys(c, "quokka", "run:across", NULL, "k2");
    s_expect_counted(r, 0, "quokka", 2, 1);
    engram_result_destroy(&r);

    /* An overwrite made on B: the old text's hit is replaced by the new text's. */
    s_after(c, "run:across",
            s_put(b, "run:across", "k2", "a platypus dives in the harbour at night", NULL, 0));
    r = s_expect_keys(c, "quokka", "run:across", NULL, "");
    engram_result_destroy(&r);
    r = s_expect_keys(c, "platypus", "run:across", NULL, "k2");
    assert_string_equal((char *)r->items[0].value, "a platypus dives in the harbour at night");
    s_expect_counted(r, 0, "platypus", 2, 1);
    engram_result_destroy(&r);
    r = s_expect_keys(c, "harbour", "run:across", NULL, "k2 k3");
    s_expect_counted(r, 0, "harbour", 2, 2);
    engram_result_destroy(&r);
    EXPECT_RC(c, 0, engram_set_after(c, NULL, 0));
    EXPECT_RC(b, 0, engram_set_after(b, NULL, 0));
}

/*  --- test_access_control ---------------------------------------------------------------- */

/*  Signs stmt with the cluster admin's key and submits it to node i. */
static void s_submit(int i, Engram__Statement *stmt)
{
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(node_acl_sign(stmt, s_w->admin.secret_key, s_wall_ms(), &data, &len), 0);
    assert_int_equal(node_harness_submit(s_w->node[i], data, len), 0);
    free(data);
}

/*  An agent on node i acting for USER that may read `readable` only (no harness grant). */
static engram_t *s_narrow_agent(int i, const char *agent, const char *readable)
{
    zcert_t *cert = agent_keys_cert(agent);
    assert_non_null(cert);
    Engram__AgentRegister reg = ENGRAM__AGENT_REGISTER__INIT;
    reg.name = (char *)agent;
    reg.curve_key.data = (uint8_t *)zcert_public_key(cert);
    reg.curve_key.len = 32;
    Engram__Statement stmt = ENGRAM__STATEMENT__INIT;
    stmt.body_case = ENGRAM__STATEMENT__BODY_AGENT;
    stmt.agent = &reg;
    s_submit(i, &stmt);
    zcert_destroy(&cert);
    Engram__UserAgentEdge user = ENGRAM__USER_AGENT_EDGE__INIT;
    user.user = USER;
    user.agent = (char *)agent;
    user.from_ms = s_wall_ms() - 60000;
    stmt = (Engram__Statement)ENGRAM__STATEMENT__INIT;
    stmt.body_case = ENGRAM__STATEMENT__BODY_USER_AGENT;
    stmt.user_agent = &user;
    s_submit(i, &stmt);
    Engram__AgentResourceEdge edge = ENGRAM__AGENT_RESOURCE_EDGE__INIT;
    edge.agent = (char *)agent;
    edge.resource = (char *)readable;
    edge.read = true;
    edge.from_ms = s_wall_ms() - 60000;
    stmt = (Engram__Statement)ENGRAM__STATEMENT__INIT;
    stmt.body_case = ENGRAM__STATEMENT__BODY_AGENT_RESOURCE;
    stmt.agent_resource = &edge;
    s_submit(i, &stmt);
    engram_t *e = engram_connect(node_harness_endpoint(s_w->node[i]), agent, USER);
    assert_non_null(e);
    engram_set_timeout(e, CALL_MS);
    return e;
}

static void test_access_control(void **state)
{
    (void)state;
    engram_t *writer = s_conn(A);
    engram_t *reader = s_narrow_agent(A, "reader-r", "run:open");
    free(s_put(writer, "run:closed", "secret", "zebra migration plans, not for readers", NULL, 0));
    free(s_put(writer, "run:open", "plain", "a zebra crossing near the office", NULL, 0));
    free(s_put(writer, "run:open", "other", "the office coffee machine is broken", NULL, 0));
    const char *vault[] = {"doc:vault"};
    EXPECT_RC(writer, 0, engram_set_sources(writer, vault, 1));
    free(s_put(writer, "run:open", "sourced", "zebra count from the vault ledger", NULL, 0));
    EXPECT_RC(writer, 0, engram_set_sources(writer, NULL, 0));

    /* Naming a scope it may not read is refused; the default search leaves it out. */
    engram_result_t *r = NULL;
    EXPECT_RC(reader, ENGRAM_EDENIED, s_search(reader, "zebra", "run:closed", NULL, 0, &r));
    assert_null(r);
    r = s_expect_keys(reader, "zebra", NULL, NULL, "plain");
    assert_string_equal(r->items[0].scope, "run:open");
    /* The sourced memory is neither returned nor counted: N 2 (plain, other), df 1. */
    s_expect_counted(r, 0, "zebra", 2, 1);
    engram_result_destroy(&r);
    r = s_expect_keys(reader, "vault ledger", "run:open", NULL, "");
    engram_result_destroy(&r);

    /* The writer may read doc:vault: it gets the sourced memory, and counts it. */
    r = s_expect_keys(writer, "vault zebra", "run:open", NULL, "plain sourced");
    s_expect_counted(r, s_item(r, "plain"), "zebra", 3, 2);
    engram_result_destroy(&r);
    r = s_expect_keys(writer, "migration", NULL, NULL, "secret");
    engram_result_destroy(&r);
    engram_destroy(&reader);
}

/*  --- test_ttl --------------------------------------------------------------------------- */

typedef struct {
    engram_t *e;
    int64_t docs; /* the count explain must show */
} s_docs_wait_t;

/*  Whether a search of "mayfly" in run:ttl returns "lasting" only, counted among docs. */
static bool s_mayfly_counted(void *arg)
{
    s_docs_wait_t *w = arg;
    engram_result_t *r = NULL;
    int rc = s_search(w->e, "mayfly", "run:ttl", NULL, 0, &r);
    int64_t docs = -1, df = -1;
    if (rc == 0 && r->nitems == 1 && strcmp(r->items[0].key, "lasting") == 0)
        s_explained(r, 0, "mayfly", &docs, &df);
    bool done = docs == w->docs && df == w->docs;
    if (!done)
        node_harness_because("rc %d, %zu results, docs %" PRId64 " df %" PRId64, rc,
                             r ? r->nitems : 0, docs, df);
    engram_result_destroy(&r);
    return done;
}

static void test_ttl(void **state)
{
    (void)state;
    engram_t *e = s_conn(A);
    int64_t written = node_harness_now_ms();
    free(s_put(e, "run:ttl", "brief", "a mayfly lives for a day", NULL, TTL_MS));
    free(s_put(e, "run:ttl", "lasting", "the mayfly season is in May", NULL, 0));
    engram_result_t *r = NULL;
    EXPECT_RC(e, 0, s_search(e, "mayfly", "run:ttl", NULL, 0, &r));
    if (node_harness_now_ms() - written < TTL_MS - 200)
        assert_int_equal(r->nitems, 2);
    else
        print_message("test_ttl: the first search ended near the TTL; its answer is not judged\n");
    engram_result_destroy(&r);

    /* Expired: no longer returned (at once, purged or not), then no longer counted. */
    while (node_harness_now_ms() - written <= TTL_MS)
        zclock_sleep(50);
    r = s_expect_keys(e, "mayfly", "run:ttl", NULL, "lasting");
    engram_result_destroy(&r);
    r = s_expect_keys(e, "day", "run:ttl", NULL, "");
    engram_result_destroy(&r);
    int64_t expired = node_harness_now_ms();
    s_docs_wait_t w = {e, 1};
    if (!node_harness_poll(WAIT_MS, s_mayfly_counted, &w))
        fail_msg("the expired memory is still counted %d ms after its TTL: %s", WAIT_MS,
                 node_harness_why());
    print_message("test_ttl: expired memory uncounted %.2f s after its TTL\n", s_seconds(expired));
}

/*  --- test_filters ----------------------------------------------------------------------- */

static void test_filters(void **state)
{
    (void)state;
    engram_t *e = s_conn(A);
    engram_t *editor = node_harness_connect(s_w->node[A], "editor-f", USER, CALL_MS);
    assert_non_null(editor);
    free(s_put(e, "run:filters", "w-format", "report layout: two columns", "{\"topic\":\"format\"}",
               0));
    free(s_put(e, "run:filters", "w-budget", "report budget: two thousand",
               "{\"topic\":\"budget\",\"cost\":2000}", 0));
    free(s_put(editor, "run:filters", "e-format", "report font: serif, two sizes",
               "{\"topic\":\"format\"}", 0));
    engram_result_t *r =
        s_expect_keys(e, "report", "run:filters", NULL, "e-format w-budget w-format");
    engram_result_destroy(&r);
    r = s_expect_keys(e, "report", "run:filters", "{\"author\":\"editor-f\"}", "e-format");
    assert_string_equal(r->items[0].author, "editor-f");
    engram_result_destroy(&r);
    r = s_expect_keys(e, "report two", "run:filters", "{\"topic\":\"format\"}",
                      "e-format w-format");
    engram_result_destroy(&r);
    r = s_expect_keys(e, "report", "run:filters",
                      "{\"AND\":[{\"author\":\"" AGENT "\"},{\"topic\":{\"in\":[\"format\"]}}]}",
                      "w-format");
    engram_result_destroy(&r);
    r = s_expect_keys(e, "report", "run:filters", "{\"metadata\":{\"cost\":{\"gte\":1000}}}",
                      "w-budget");
    engram_result_destroy(&r);
    r = s_expect_keys(e, "report", "run:filters", "{\"NOT\":[{\"topic\":\"format\"}]}", "w-budget");
    engram_result_destroy(&r);

    /* Refusals, each with a reason. */
    const char *bad[] = {"{\"AND\": 5}", "{\"topic\": {\"like\": \"x\"}}", "{"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        EXPECT_RC(e, ENGRAM_EINVAL, s_search(e, "report", "run:filters", bad[i], 0, &r));
        if (!strstr(engram_last_error(e), "filter"))
            fail_msg("filter %s: the reason '%s' does not name the filter", bad[i],
                     engram_last_error(e));
        print_message("filter %s: %s\n", bad[i], engram_last_error(e));
    }
    EXPECT_RC(e, ENGRAM_EINVAL, s_search(e, "", NULL, NULL, 0, &r));
    assert_true(engram_last_error(e)[0] != '\0');
    EXPECT_RC(e, ENGRAM_EINVAL, s_search(e, "?! -- ...", NULL, NULL, 0, &r));
    assert_true(engram_last_error(e)[0] != '\0');
    engram_destroy(&editor);
}

/*  --- test_reindex ----------------------------------------------------------------------- */

/*  Every answer to the reindex queries, one line per result: scope, key, score, explain. */
static char *s_answers(engram_t *e)
{
    static const char *const extra[] = {
        "ledger", "zebra",      "quokka harbour",   "platypus",
        "mayfly", "report two", "ephemeral ledger", "overwritten ledger"};
    size_t nextra = sizeof extra / sizeof *extra;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    for (size_t q = 0; q < REINDEX_QUERIES; q++) {
        const char *query = q < nextra ? extra[q] : s_w->queries[(q - nextra) % s_w->nqueries];
        engram_result_t *r = NULL;
        EXPECT_RC(e, 0, s_search(e, query, NULL, NULL, REINDEX_TOP_K, &r));
        fprintf(out, "query %s: %zu\n", query, r->nitems);
        for (size_t i = 0; i < r->nitems; i++)
            fprintf(out, "  %s %s %.17g %s\n", r->items[i].scope, r->items[i].key,
                    r->items[i].score, r->items[i].explain_json);
        engram_result_destroy(&r);
    }
    fclose(out);
    return text;
}

static bool s_ledger_counted(void *arg)
{
    s_docs_wait_t *w = arg;
    engram_result_t *r = NULL;
    int rc = s_search(w->e, "ledger", "run:mix", NULL, 0, &r);
    int64_t docs = -1, df = -1;
    if (rc == 0 && r->nitems > 0)
        s_explained(r, 0, "ledger", &docs, &df);
    bool done = docs == w->docs && df == w->docs && r && (int64_t)r->nitems == w->docs;
    char keys[1024] = "";
    if (r)
        s_keys(r, true, keys, sizeof keys);
    if (!done)
        node_harness_because("rc %d, results [%s], docs %" PRId64 " df %" PRId64, rc, keys, docs,
                             df);
    engram_result_destroy(&r);
    return done;
}

/*  The first line where two answers differ. */
static void s_expect_same(const char *before, const char *after)
{
    if (strcmp(before, after) == 0)
        return;
    size_t at = 0, line = 1;
    while (before[at] && before[at] == after[at])
        line += before[at++] == '\n';
    size_t from = at;
    while (from > 0 && before[from - 1] != '\n')
        from--;
    fail_msg("the rebuilt index answers differently from line %zu:\nbefore: %.300s\nafter:  %.300s",
             line, before + from, after + from);
}

static void test_reindex(void **state)
{
    (void)state;
    engram_t *a = s_conn(A), *b = s_conn(B), *c = s_conn(C);
    /* Every document of run:mix holds "ledger"; 6 are live at the end. */
    free(s_put(c, "run:mix", "c-keep", "local ledger entry kept", NULL, 0));
    free(s_put(c, "run:mix", "c-over", "local ledger entry soon overwritten", NULL, 0));
    free(s_put(c, "run:mix", "c-over", "overwritten ledger entry, second text", NULL, 0));
    free(s_put(c, "run:mix", "c-gone", "local ledger entry deleted", NULL, 0));
    free(s_delete(c, "run:mix", "c-gone"));
    free(s_put(c, "run:mix", "c-ttl", "ephemeral local ledger entry", NULL, TTL_MS));
    free(s_put(c, "private", "c-private", "a private ledger note, never shared", NULL, 0));
    free(s_put(a, "run:mix", "a-keep", "remote ledger entry from A", NULL, 0));
    free(s_put(a, "run:mix", "a-ttl", "ephemeral remote ledger entry from A", NULL, TTL_MS));
    free(s_put(a, "run:mix", "a-over", "remote ledger entry from A, to be overwritten on B", NULL,
               0));
    char *from_a =
        s_put(a, "run:mix", "a-gone", "remote ledger entry from A, deleted on B", NULL, 0);
    s_after(b, "run:mix", from_a);
    free(s_put(b, "run:mix", "a-over", "overwritten on B: the ledger's final text", NULL, 0));
    free(s_delete(b, "run:mix", "a-gone"));
    free(s_put(b, "run:mix", "b-keep", "remote ledger entry from B", NULL, 0));
    free(s_put(b, "run:mix", "b-over", "first ledger text from B", NULL, 0));
    char *from_b = s_put(b, "run:mix", "b-over", "second ledger text from B", NULL, 0);
    free(from_b);
    /* C holds every write of every test: it waits for each connection's last one per scope. */
    for (const char *token = zhash_first(s_w->latest); token; token = zhash_next(s_w->latest)) {
        const char *name = zhash_cursor(s_w->latest);
        s_after(c, strchr(name, ' ') + 1, strdup(token));
    }
    EXPECT_RC(c, 0, engram_set_after(c, NULL, 0));
    EXPECT_RC(b, 0, engram_set_after(b, NULL, 0));
    int64_t expiring = node_harness_now_ms();
    s_docs_wait_t w = {c, 6};
    if (!node_harness_poll(WAIT_MS + TTL_MS, s_ledger_counted, &w))
        fail_msg("run:mix on C: not 6 live documents, counted: %s", node_harness_why());
    print_message("test_reindex: C counts the 6 live documents %.2f s after the TTL writes\n",
                  s_seconds(expiring));
    w.docs = 1;
    if (!node_harness_poll(WAIT_MS, s_mayfly_counted, &w))
        fail_msg("run:ttl on C: the expired memory still counted: %s", node_harness_why());

    int64_t start = node_harness_now_ms();
    char *before = s_answers(c);
    double asked = s_seconds(start);
    engram_destroy(&s_w->conn[C]);
    assert_int_equal(node_harness_stop(s_w->node[C]), 0);
    char admission[512];
    snprintf(admission, sizeof admission, "%s/admission", node_harness_dir(s_w->node[C]));
    const char *args[] = {"--gossip",
                          node_harness_gossip_endpoint(s_w->node[C]),
                          "--admission",
                          admission,
                          "--join",
                          node_harness_gossip_endpoint(s_w->node[A]),
                          "--gossip-interval-ms",
                          "50",
                          "--purge-interval-ms",
                          "100",
                          "--reindex",
                          NULL};
    assert_int_equal(node_harness_set_args(s_w->node[C], args), 0);
    int64_t restart = node_harness_now_ms();
    assert_int_equal(node_harness_start(s_w->node[C]), 0);
    double restarted = s_seconds(restart);
    assert_true(node_harness_log_contains(s_w->node[C], "search index rebuilt from"));
    char *after = s_answers(s_conn(C));
    print_message("test_reindex: %d queries asked in %.2f s; restart with --reindex %.2f s; "
                  "%zu bytes of answers compared\n",
                  REINDEX_QUERIES, asked, restarted, strlen(before));
    s_expect_same(before, after);
    free(before);
    free(after);
    args[10] = NULL; /* later starts do not rebuild */
    assert_int_equal(node_harness_set_args(s_w->node[C], args), 0);
}

/*  --- test_seed_scenario ------------------------------------------------------------------ */

/*  Runs the engram CLI against node i as agent: argv after the global flags (NULL-terminated).
 *  Returns its exit status; *out (may be NULL) gets its stdout, the caller's to free. */
static int s_cli(int i, const char *agent, const char *const *argv, char **out)
{
    const char *full[32] = {ENGRAM_CLI, "--socket", node_harness_endpoint(s_w->node[i]),
                            "--agent",  agent,      "--user",
                            USER};
    size_t n = 7;
    for (size_t k = 0; argv[k] && n < 31; k++)
        full[n++] = argv[k];
    full[n] = NULL;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(ENGRAM_CLI, (char *const *)full);
        _exit(127);
    }
    close(fds[1]);
    char *text = NULL;
    size_t len = 0;
    FILE *collect = open_memstream(&text, &len);
    assert_non_null(collect);
    char buf[4096];
    for (ssize_t got; (got = read(fds[0], buf, sizeof buf)) > 0;)
        fwrite(buf, 1, (size_t)got, collect);
    close(fds[0]);
    fclose(collect);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code != 0)
        print_message("engram %s %s: exit %d, stdout '%s'\n", argv[0], argv[1] ? argv[1] : "", code,
                      text);
    if (out)
        *out = text;
    else
        free(text);
    return code;
}

/*  A memory of the blackboard: who writes it, on which node, under which key. */
typedef struct {
    int node;
    const char *agent;
    const char *key;
    const char *text;
} s_note_t;

static const s_note_t s_board[] = {
    {C, "editor", "brief",
     "Task: the Q3 report for Acme. Researcher gathers what the client wants, writer drafts, "
     "editor reviews. Deliver by Friday."},
    {C, "editor", "format-constraints",
     "Output format constraints: at most 12 slides, 16:9, the Acme template, no more than 40 "
     "words per slide, every chart exported as PNG, numbers rounded to one decimal."},
    {C, "editor", "style-guide",
     "Style: active voice, plain words, dates as 2026-10-15, cite the source of every figure in "
     "the speaker notes."},
    {A, "researcher", "q3-revenue",
     "Acme Q3 revenue grew 12% year over year to $48.2M; churn fell from 4.0% to 3.1% (earnings "
     "call, October 20)."},
    {A, "researcher", "competitors",
     "Competitors: Globex cut prices 8% in August; Initech launched a self-serve tier that "
     "undercuts Acme for small teams."},
    {B, "writer", "outline",
     "Draft outline: 1 executive summary, 2 Q3 results, 3 ROI of the platform, 4 competitors, "
     "5 next steps."},
    {B, "writer", "draft-results",
     "Draft slide 2: revenue up 12%, churn down to 3.1%; chart of monthly revenue, in the "
     "report's format."},
    {B, "writer", "todo",
     "To do: ask the editor whether the appendix counts toward the slide limit; check the "
     "template's font."},
    {C, "editor", "review-v1",
     "Review of draft v1: too much text on slide 2, and the chart format does not match the "
     "template; fix before Thursday."},
    {A, "researcher", "finding",
     "Client needs executive summary first, uses slide decks, needs ROI figures"},
};

/*  The first result line's key ("SCORE SCOPE KEY AUTHOR VALUE"), or "" if none. */
static void s_first_key(const char *lines, char *key, size_t len)
{
    char scope[128] = "", first[128] = "";
    double score;
    key[0] = '\0';
    if (sscanf(lines, "%lf %127s %127s", &score, scope, first) == 3)
        snprintf(key, len, "%s", first);
}

/*  Runs `engram search QUERY --scope run:q3-report --after TOKEN [--explain --top-k 3]` on
 *  node i as agent, prints what it showed and returns the first result's key. */
static void s_seed_search(int i, const char *agent, const char *query, char *first, size_t len)
{
    const char *search[] = {"search",         query, "--scope", "run:q3-report", "--after",
                            s_w->board_token, NULL};
    char *shown = NULL, *explained = NULL;
    assert_int_equal(s_cli(i, agent, search, &shown), 0);
    const char *explain[] = {
        "search",  query, "--scope", "run:q3-report", "--after", s_w->board_token, "--explain",
        "--top-k", "3",   NULL};
    assert_int_equal(s_cli(i, agent, explain, &explained), 0);
    printf("%s on node %c, \"%s\":\n%sthe top 3 explained:\n%s", agent, "ABC"[i], query, shown,
           explained); /* print_message cuts at 1 KiB */
    fflush(stdout);
    s_first_key(shown, first, len);
    free(shown);
    free(explained);
}

/*  The blackboard, written through the CLI by each agent on its node; the researcher's
 *  finding last, once node A has seen the rest, so that its token covers the whole board. */
static void test_seed_scenario(void **state)
{
    (void)state;
    static const char *const agents[] = {"researcher", "writer", "editor"};
    for (int i = 0; i < NODES; i++)
        for (size_t a = 0; a < 3; a++)
            assert_int_equal(node_harness_grant(s_w->node[i], agents[a], USER), 0);
    int64_t start = node_harness_now_ms();
    size_t nboard = sizeof s_board / sizeof *s_board;
    char *tokens[sizeof s_board / sizeof *s_board] = {0};
    for (size_t m = 0; m < nboard; m++) {
        const s_note_t *note = &s_board[m];
        for (size_t p = 0; m == nboard - 1 && p < m; p++) {
            if (s_board[p].node == note->node)
                continue;
            const char *wait[] = {"ls", "run:q3-report", "--after", tokens[p], NULL};
            assert_int_equal(s_cli(note->node, note->agent, wait, NULL), 0);
        }
        const char *put[] = {"put", "run:q3-report", note->key, note->text, NULL};
        assert_int_equal(s_cli(note->node, note->agent, put, &tokens[m]), 0);
        tokens[m][strcspn(tokens[m], "\n")] = '\0';
        assert_true(tokens[m][0] != '\0');
    }
    s_w->board_token = tokens[nboard - 1];
    for (size_t m = 0; m + 1 < nboard; m++)
        free(tokens[m]);
    print_message("seed scenario: %zu memories written through the CLI in %.2f s\n", nboard,
                  s_seconds(start));

    char first[128];
    s_seed_search(C, "editor", "output format constraints", first, sizeof first);
    if (strcmp(first, "format-constraints") != 0)
        fail_msg("the editor's search put '%s' first, not the format constraints", first);
}

/*  The writer's search on node B: the "client requirements and format". */
static void test_seed_writer(void **state)
{
    (void)state;
    assert_non_null(s_w->board_token);
    char first[128];
    s_seed_search(B, "writer", "client requirements and format", first, sizeof first);
    if (strcmp(first, "finding") != 0)
        fail_msg("the writer's search put '%s' first, not the researcher's finding", first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bm25_reference), cmocka_unit_test(test_across_nodes),
        cmocka_unit_test(test_access_control), cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_filters),        cmocka_unit_test(test_reindex),
        cmocka_unit_test(test_seed_scenario),  cmocka_unit_test(test_seed_writer),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
