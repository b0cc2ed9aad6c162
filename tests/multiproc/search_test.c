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
 *    test_filters          filters on author and metadata restrict the results, the best of
 *                          those they let through found when they turn down more than top_k of
 *                          the best matches, in one scope or across two; a bad filter is
 *                          ENGRAM_EINVAL with a reason; a query with no word is EINVAL
 *    test_vector_search    memories with 8-dimension embeddings (put and remember), some
 *                          without: a vector query ranks exactly by the cosine the test computes
 *                          (within 1e-6), keeps top_k, never shows a memory without an
 *                          embedding; a query of another dimension is refused; a write of
 *                          another dimension, NaN, infinite, all-zero or too long embeddings
 *                          (and such queries) are ENGRAM_EINVAL; C finds A's embeddings after
 *                          A's token; a scope's dimension is free again once B deleted its last
 *                          embedding
 *    test_hybrid           a hybrid score is 1/(60 + keyword rank) + 1/(60 + vector rank), the
 *                          ranks taken from the keyword-only and vector-only answers; explain
 *                          shows both; no mode with an embedding is hybrid; keyword with an
 *                          embedding, or vector without one, is EINVAL
 *    test_boosts           votes (counter KEY#votes) multiply by 1 + tanh(votes/4)/2 and re-rank;
 *                          votes of an agent that does not act for the user are not counted;
 *                          recency multiplies by 1 + 2^(-age/half-life) (age from the item's HLC
 *                          and the wall clock around the search) and a new memory overtakes an
 *                          older, closer one
 *    test_vector_access    vector and hybrid search never show a memory of a scope the reader may
 *                          not read, nor one derived from a resource it may not read
 *    test_context          the CONTEXT block: a header, one line per memory as the test formats
 *                          it, the worse of two duplicates left out; for every budget up to the
 *                          whole block's, exactly what fits (header only, or nothing), its size
 *                          as result->number; top_k caps it; tokens 0 is EINVAL; the CLI prints
 *                          the same block and exits 2 without --tokens
 *    test_reindex          C, which took local puts, overwrites, deletes and TTL expiries and
 *                          deltas of all of these from A and B, most with embeddings, answers 60
 *                          keyword and 12 vector and hybrid queries (keys, scores, explain) the
 *                          same before and after a restart with --reindex
 *    test_seed_scenario    through the engram CLI: a researcher on A, a writer on B and an
 *                          editor on C write the blackboard run:q3-report; the editor's search
 *                          "output format constraints" on C returns the format constraints first
 *    test_seed_writer      the writer's "client requirements and format" on B returns the
 *                          researcher's finding first. It failed before English stop words
 *                          were dropped: on a board of 10 memories "and" is in one of them
 *                          (df 1, the highest idf), so the review that holds "and" and
 *                          "format" outscored the finding, which holds "client" only
 *                          ("requirements" is not "needs")
 *    test_bounds           a query of 65 words is refused (64 answered); a share whose
 *                          private embedding has another dimension than the scope's is
 *                          refused; a search with a token and an embedding too big to keep
 *                          while waiting is refused even when the token is reached
 *
 *  Nothing sleeps and then asserts: cross-node reads wait for the writer's causal token
 *  (engram_set_after), purges are polled. Timings are printed, never asserted.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
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

#define FORTUNES_DIR     "/usr/share/games/fortunes"
#define FORTUNE_MAX      400
#define FORTUNES_WANTED  2500
#define BM25_QUERIES     200
#define BM25_TOP_K       20
#define REINDEX_QUERIES  60
#define REINDEX_TOP_K    50
#define REINDEX_MEANINGS 12 /* vector and hybrid queries */
#define TTL_MS           1500
#define DIMS             8 /* the embeddings of search by meaning */

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
    EXPECT_RC(e, 0, node_harness_after(e, scope, token, WAIT_MS));
    free(token);
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

/*  Runs the engram CLI against node i as agent: argv after the global flags (NULL-terminated).
 *  Returns its exit status; *out (may be NULL) gets its stdout, the caller's to free. */
static int s_cli(int i, const char *agent, const char *const *argv, char **out)
{
    char *text = NULL;
    int code = node_harness_cli(s_w->node[i], ENGRAM_CLI, agent, USER, argv, &text);
    assert_non_null(text);
    if (code != 0)
        print_message("engram %s %s: exit %d, stdout '%s'\n", argv[0], argv[1] ? argv[1] : "", code,
                      text);
    if (out)
        *out = text;
    else
        free(text);
    return code;
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

    /* A filter that turns down the best matches: the scope is asked again for more, until the
     * best two it lets through are found, in order. */
    static const char *const others[] = {"alpha",   "bravo", "charlie", "delta", "echo",
                                         "foxtrot", "golf",  "hotel",   "india", "juliet"};
    char key[32], text[128];
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        snprintf(key, sizeof key, "other-%zu", i);
        snprintf(text, sizeof text, "ledger %s", others[i]);
        free(s_put(e, "run:filters", key, text, "{\"topic\":\"other\"}", 0));
    }
    free(s_put(e, "run:filters", "wanted-7", "ledger one two three four five six",
               "{\"topic\":\"wanted\"}", 0));
    free(s_put(e, "run:filters", "wanted-5", "ledger one two three four", "{\"topic\":\"wanted\"}",
               0));
    free(s_put(e, "run:filters", "wanted-6", "ledger one two three four five",
               "{\"topic\":\"wanted\"}", 0));
    EXPECT_RC(e, 0, s_search(e, "ledger", "run:filters", "{\"topic\":\"wanted\"}", 2, &r));
    char got[256];
    s_keys(r, false, got, sizeof got);
    assert_string_equal(got, "wanted-5 wanted-6");
    engram_result_destroy(&r);

    /* Two scopes, each asked for its best one first: A's best is turned down, B's is let
     * through, but A's second (not asked for yet) ranks above it. */
    free(s_put(e, "run:tally-a", "a-best", "tally", "{\"topic\":\"other\"}", 0));
    free(s_put(e, "run:tally-a", "a-second", "tally one", "{\"topic\":\"picked\"}", 0));
    free(s_put(e, "run:tally-b", "b-best", "tally", "{\"topic\":\"picked\"}", 0));
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "b-other-%d", i);
        free(s_put(e, "run:tally-b", key, "tally one two three four five six seven",
                   "{\"topic\":\"other\"}", 0));
    }
    const char *tally_scopes[] = {"run:tally-a", "run:tally-b"};
    engram_search_options_t two = {.scopes = tally_scopes,
                                   .nscopes = 2,
                                   .filter_json = "{\"topic\":\"picked\"}",
                                   .top_k = 1,
                                   .explain = true};
    EXPECT_RC(e, 0, engram_search(e, "tally", &two, &r));
    s_keys(r, false, got, sizeof got);
    assert_string_equal(got, "a-second");
    engram_result_destroy(&r);
    two.top_k = 2;
    EXPECT_RC(e, 0, engram_search(e, "tally", &two, &r));
    s_keys(r, false, got, sizeof got);
    assert_string_equal(got, "a-second b-best");
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

/*  --- search by meaning: helpers ----------------------------------------------------------- */

/*  A pseudo-random embedding of DIMS values in [-1, 1), from seed. */
static void s_random_embedding(uint64_t seed, float out[DIMS])
{
    uint64_t state = 0x2545f4914f6cdd1du ^ (seed * 0x9e3779b97f4a7c15u);
    for (size_t i = 0; i < DIMS; i++)
        out[i] = (float)((double)(s_rand(&state) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/*  An embedding whose cosine with the first axis (s_axis) is cosine, near enough. */
static void s_at_cosine(double cosine, float out[DIMS])
{
    memset(out, 0, DIMS * sizeof *out);
    out[0] = (float)cosine;
    out[1] = (float)sqrt(1.0 - cosine * cosine);
}

static const float s_axis[DIMS] = {1};

/*  The cosine of a and b as a test computes it: double sums over the float32 values. */
static double s_cosine(const float *a, const float *b, size_t dims)
{
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < dims; i++) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    return dot / (sqrt(na) * sqrt(nb));
}

/*  Puts text with an embedding of dims values; returns the causal token (caller frees). */
static char *s_put_vec(engram_t *e, const char *scope, const char *key, const char *text,
                       const float *embedding, size_t dims, uint64_t ttl_ms)
{
    engram_result_t *r = NULL;
    int rc =
        engram_put_embedded(e, scope, key, text, strlen(text), NULL, ttl_ms, embedding, dims, &r);
    if (rc)
        fail_msg("put %s %s with an embedding: %s (%s)", scope, key, engram_strerror(rc),
                 engram_last_error(e));
    char *token = strdup(r->token);
    engram_result_destroy(&r);
    assert_non_null(token);
    s_note(e, scope, token);
    return token;
}

/*  What a search by meaning asks. */
typedef struct {
    const char *scope; /* NULL: every scope */
    const char *mode;  /* NULL: the default */
    const float *embedding;
    size_t dims;
    unsigned top_k;
    double half_life_ms;
    bool votes;
} s_ask_t;

static int s_ask(engram_t *e, const char *query, const s_ask_t *ask, engram_result_t **r)
{
    const char *scopes[1] = {ask->scope};
    engram_search_options_t options = {.scopes = ask->scope ? scopes : NULL,
                                       .nscopes = ask->scope ? 1 : 0,
                                       .top_k = ask->top_k,
                                       .mode = ask->mode,
                                       .embedding = ask->embedding,
                                       .dims = ask->dims,
                                       .half_life_ms = ask->half_life_ms,
                                       .votes = ask->votes,
                                       .threshold = 0, /* none: negative cosines too */
                                       .explain = true};
    *r = NULL;
    return engram_search(e, query, &options, r);
}

/*  A number of item i's explain: explain[outer][inner], or explain[outer] when inner is NULL;
 *  NAN when absent. */
static double s_explain_num(const engram_result_t *r, size_t i, const char *outer,
                            const char *inner)
{
    json_error_t err;
    json_t *explain = json_loads(r->items[i].explain_json, 0, &err);
    if (!explain)
        fail_msg("explain of %s is not JSON: %s", r->items[i].key, err.text);
    json_t *field = json_object_get(explain, outer);
    if (field && inner)
        field = json_object_get(field, inner);
    double value = json_is_number(field) ? json_number_value(field) : NAN;
    json_decref(explain);
    return value;
}

static bool s_near(double got, double want, double tolerance)
{
    return fabs(got - want) <= tolerance;
}

/*  The index of key among r's items, or -1. */
static long s_find(const engram_result_t *r, const char *key)
{
    for (size_t i = 0; i < r->nitems; i++)
        if (strcmp(r->items[i].key, key) == 0)
            return (long)i;
    return -1;
}

/*  --- test_vector_search ------------------------------------------------------------------- */

#define VEC_MEMORIES 12

/*  Refusals of an embedding, each ENGRAM_EINVAL with a reason naming the embedding. */
static void s_expect_bad_embedding(engram_t *e, int rc, const char *what)
{
    s_expect(e, rc, ENGRAM_EINVAL, what);
    if (!strstr(engram_last_error(e), "embedding"))
        fail_msg("%s: the reason '%s' does not name the embedding", what, engram_last_error(e));
}

static void test_vector_search(void **state)
{
    (void)state;
    engram_t *a = s_conn(A), *b = s_conn(B), *c = s_conn(C);
    float vectors[VEC_MEMORIES + 1][DIMS], query[DIMS];
    char keys[VEC_MEMORIES + 1][64];
    for (size_t i = 0; i < VEC_MEMORIES; i++) {
        snprintf(keys[i], sizeof keys[i], "v%02zu", i + 1);
        s_random_embedding(i + 1, vectors[i]);
        char text[64];
        snprintf(text, sizeof text, "lighthouse keeper's note %zu", i + 1);
        free(s_put_vec(a, "run:vec", keys[i], text, vectors[i], DIMS, 0));
    }
    /* one memory by remember, under its generated id */
    s_random_embedding(99, vectors[VEC_MEMORIES]);
    engram_result_t *r = NULL;
    EXPECT_RC(a, 0,
              engram_remember_embedded(a, "run:vec", NULL, "a lighthouse remembered", NULL, 0,
                                       vectors[VEC_MEMORIES], DIMS, &r));
    snprintf(keys[VEC_MEMORIES], sizeof keys[VEC_MEMORIES], "%s", r->memory_id);
    engram_result_destroy(&r);
    /* memories without an embedding, holding the same words */
    free(s_put(a, "run:vec", "plain-1", "lighthouse keeper's note, no embedding", NULL, 0));
    char *last = s_put(a, "run:vec", "plain-2", "another lighthouse keeper's note", NULL, 0);

    /* Ranked by the cosine, exactly: every score within 1e-6 of the test's own. */
    s_random_embedding(1000, query);
    double want[VEC_MEMORIES + 1];
    size_t order[VEC_MEMORIES + 1];
    for (size_t i = 0; i <= VEC_MEMORIES; i++) {
        want[i] = s_cosine(query, vectors[i], DIMS);
        order[i] = i;
    }
    for (size_t i = 1; i <= VEC_MEMORIES; i++) /* by cosine, best first */
        for (size_t j = i; j > 0 && want[order[j]] > want[order[j - 1]]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    s_ask_t ask = {"run:vec", "vector", query, DIMS, 100, 0, false};
    EXPECT_RC(a, 0, s_ask(a, "lighthouse", &ask, &r));
    assert_int_equal(r->nitems, VEC_MEMORIES + 1);
    for (size_t i = 0; i < r->nitems; i++) {
        size_t m = order[i];
        if (strcmp(r->items[i].key, keys[m]) != 0 || !s_near(r->items[i].score, want[m], 1e-6))
            fail_msg("vector result %zu: %s scored %.9f; expected %s at %.9f", i + 1,
                     r->items[i].key, r->items[i].score, keys[m], want[m]);
        assert_true(s_near(s_explain_num(r, i, "vector", "cosine"), r->items[i].score, 1e-12));
        assert_true(s_explain_num(r, i, "vector", "rank") == (double)(i + 1));
        assert_true(isnan(s_explain_num(r, i, "bm25", "score")));
    }
    engram_result_destroy(&r);
    ask.top_k = 5;
    EXPECT_RC(a, 0, s_ask(a, "lighthouse", &ask, &r));
    assert_int_equal(r->nitems, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(r->items[i].key, keys[order[i]]);
    engram_result_destroy(&r);

    /* A query of another dimension than any scope searched holds: refused, naming both (a
     * client on the wrong model is told, not answered "nothing is near"). */
    ask = (s_ask_t){"run:vec", "vector", query, 4, 100, 0, false};
    EXPECT_RC(a, ENGRAM_EINVAL, s_ask(a, "lighthouse", &ask, &r));
    const char *refused = engram_last_error(a);
    if (!strstr(refused, "4 dimensions") || !strstr(refused, "of 8"))
        fail_msg("the refusal of a 4-dimension query of an 8-dimension scope says '%s'", refused);

    /* A write of another dimension: refused, naming both, and nothing stored. */
    EXPECT_RC(a, ENGRAM_EINVAL,
              engram_put_embedded(a, "run:vec", "v-four", "x", 1, NULL, 0, query, 4, &r));
    const char *why = engram_last_error(a);
    if (!strstr(why, "8 dimensions") || !strstr(why, "has 4"))
        fail_msg("the refusal of a 4-dimension embedding in an 8-dimension scope says '%s'", why);
    print_message("another dimension: %s\n", why);
    EXPECT_RC(a, ENGRAM_ENOTFOUND, engram_get(a, "run:vec", "v-four", NULL, 0, &r));

    /* NaN, infinite, all-zero and too long embeddings: refused for writes and queries. */
    static float big[ENGRAM_MAX_EMBEDDING_DIMS + 1];
    for (size_t i = 0; i < ENGRAM_MAX_EMBEDDING_DIMS + 1; i++)
        big[i] = 0.5f;
    float nan_v[DIMS], inf_v[DIMS], zero_v[DIMS] = {0};
    memcpy(nan_v, query, sizeof nan_v);
    memcpy(inf_v, query, sizeof inf_v);
    nan_v[3] = NAN;
    inf_v[5] = -INFINITY;
    const struct {
        const char *name;
        const float *v;
        size_t dims;
    } bad[] = {{"NaN", nan_v, DIMS},
               {"infinite", inf_v, DIMS},
               {"zeros", zero_v, DIMS},
               {"too long", big, ENGRAM_MAX_EMBEDDING_DIMS + 1}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char what[128];
        snprintf(what, sizeof what, "put with a %s embedding", bad[i].name);
        s_expect_bad_embedding(
            a,
            engram_put_embedded(a, "run:vec", "v-bad", "x", 1, NULL, 0, bad[i].v, bad[i].dims, &r),
            what);
        print_message("%s: %s\n", what, engram_last_error(a));
        snprintf(what, sizeof what, "remember with a %s embedding", bad[i].name);
        s_expect_bad_embedding(
            a,
            engram_remember_embedded(a, "run:vec", NULL, "x", NULL, 0, bad[i].v, bad[i].dims, &r),
            what);
        snprintf(what, sizeof what, "vector search with a %s embedding", bad[i].name);
        ask = (s_ask_t){"run:vec", "vector", bad[i].v, bad[i].dims, 0, 0, false};
        s_expect_bad_embedding(a, s_ask(a, "lighthouse", &ask, &r), what);
        snprintf(what, sizeof what, "hybrid search with a %s embedding", bad[i].name);
        ask.mode = "hybrid";
        s_expect_bad_embedding(a, s_ask(a, "lighthouse", &ask, &r), what);
    }
    EXPECT_RC(a, ENGRAM_ENOTFOUND, engram_get(a, "run:vec", "v-bad", NULL, 0, &r));

    /* Across nodes: the embeddings written on A are found on C after A's token, the same. */
    char *copy = strdup(last);
    s_after(c, "run:vec", last);
    ask = (s_ask_t){"run:vec", "vector", query, DIMS, 100, 0, false};
    EXPECT_RC(c, 0, s_ask(c, "lighthouse", &ask, &r));
    assert_int_equal(r->nitems, VEC_MEMORIES + 1);
    for (size_t i = 0; i < r->nitems; i++) {
        assert_string_equal(r->items[i].key, keys[order[i]]);
        assert_true(s_near(r->items[i].score, want[order[i]], 1e-6));
    }
    engram_result_destroy(&r);

    /* The scope's dimension is free again once its last embedding is gone: a 4-dimension
     * memory written on A; B, once it has it, refuses 8 dimensions, deletes it, then takes 8;
     * A, after B's token, finds the 8-dimension memory. */
    free(copy);
    float four[4] = {0.25f, -1, 0.5f, 2};
    s_after(b, "run:dims", s_put_vec(a, "run:dims", "d-four", "four dimensions", four, 4, 0));
    EXPECT_RC(b, ENGRAM_EINVAL,
              engram_put_embedded(b, "run:dims", "d-eight", "x", 1, NULL, 0, query, DIMS, &r));
    free(s_delete(b, "run:dims", "d-four"));
    char *eight = s_put_vec(b, "run:dims", "d-eight", "eight dimensions", query, DIMS, 0);
    s_after(a, "run:dims", eight);
    ask = (s_ask_t){"run:dims", "vector", query, DIMS, 0, 0, false};
    r = NULL;
    EXPECT_RC(a, 0, s_ask(a, "x", &ask, &r));
    assert_int_equal(r->nitems, 1);
    assert_string_equal(r->items[0].key, "d-eight");
    assert_true(s_near(r->items[0].score, 1, 1e-9));
    engram_result_destroy(&r);
    EXPECT_RC(a, ENGRAM_EINVAL,
              engram_put_embedded(a, "run:dims", "d-four", "x", 1, NULL, 0, four, 4, &r));
    for (int i = 0; i < NODES; i++)
        EXPECT_RC(s_conn(i), 0, engram_set_after(s_conn(i), NULL, 0));
}

/*  --- test_hybrid --------------------------------------------------------------------------- */

static void test_hybrid(void **state)
{
    (void)state;
    engram_t *a = s_conn(A);
    static const char *const texts[] = {
        "orchid greenhouse watering schedule",     "the greenhouse heater failed overnight",
        "orchid orchid orchid: repotting notes",   "seed catalogue for the spring",
        "greenhouse glass cleaning, orchid shelf", "compost temperature log",
        "an orchid show in the town hall",         "pruning the apple trees",
    };
    size_t ntexts = sizeof texts / sizeof *texts;
    char key[32];
    for (size_t i = 0; i < ntexts; i++) {
        float v[DIMS];
        s_random_embedding(200 + i, v);
        snprintf(key, sizeof key, "h%02zu", i + 1);
        free(s_put_vec(a, "run:hyb", key, texts[i], v, DIMS, 0));
    }
    free(s_put(a, "run:hyb", "text-only", "orchid greenhouse, no embedding", NULL, 0));
    float only[DIMS];
    s_random_embedding(300, only);
    free(s_put_vec(a, "run:hyb", "vector-only", "of the and", only, DIMS, 0));

    float query[DIMS];
    s_random_embedding(301, query);
    const char *words = "orchid greenhouse";
    engram_result_t *keyword = NULL, *vector = NULL, *hybrid = NULL, *fallback = NULL;
    s_ask_t ask = {"run:hyb", "keyword", NULL, 0, 100, 0, false};
    EXPECT_RC(a, 0, s_ask(a, words, &ask, &keyword));
    ask = (s_ask_t){"run:hyb", "vector", query, DIMS, 100, 0, false};
    EXPECT_RC(a, 0, s_ask(a, words, &ask, &vector));
    ask.mode = "hybrid";
    EXPECT_RC(a, 0, s_ask(a, words, &ask, &hybrid));
    ask.mode = NULL;
    EXPECT_RC(a, 0, s_ask(a, words, &ask, &fallback));
    assert_int_equal(keyword->nitems, 6); /* h01 h02 h03 h05 h07 text-only */
    assert_int_equal(vector->nitems, ntexts + 1);
    assert_int_equal(hybrid->nitems, ntexts + 2); /* the union */
    assert_int_equal(fallback->nitems, hybrid->nitems);
    for (size_t i = 0; i < hybrid->nitems; i++) {
        const char *k = hybrid->items[i].key;
        long kr = s_find(keyword, k), vr = s_find(vector, k);
        assert_true(kr >= 0 || vr >= 0);
        double want = (kr >= 0 ? 1.0 / (60 + kr + 1) : 0) + (vr >= 0 ? 1.0 / (60 + vr + 1) : 0);
        if (!s_near(hybrid->items[i].score, want, 1e-12))
            fail_msg("hybrid %s: score %.17g, the RRF of ranks %ld and %ld is %.17g (%s)", k,
                     hybrid->items[i].score, kr + 1, vr + 1, want, hybrid->items[i].explain_json);
        if (i > 0)
            assert_true(hybrid->items[i].score <= hybrid->items[i - 1].score);
        /* explain: each ranking's rank and score, or nothing for a ranking it is not in */
        double bm25_rank = s_explain_num(hybrid, i, "bm25", "rank");
        double vector_rank = s_explain_num(hybrid, i, "vector", "rank");
        assert_true(kr >= 0 ? bm25_rank == (double)(kr + 1) : isnan(bm25_rank));
        assert_true(vr >= 0 ? vector_rank == (double)(vr + 1) : isnan(vector_rank));
        if (kr >= 0)
            assert_true(
                s_near(s_explain_num(hybrid, i, "bm25", "score"), keyword->items[kr].score, 1e-12));
        if (vr >= 0)
            assert_true(s_near(s_explain_num(hybrid, i, "vector", "cosine"),
                               vector->items[vr].score, 1e-12));
        assert_true(s_explain_num(hybrid, i, "rrf", "k") == 60);
        assert_true(s_near(s_explain_num(hybrid, i, "base", NULL), want, 1e-12));
        /* no mode with an embedding is hybrid */
        assert_string_equal(fallback->items[i].key, k);
        assert_true(fallback->items[i].score == hybrid->items[i].score);
        assert_string_equal(fallback->items[i].explain_json, hybrid->items[i].explain_json);
    }
    assert_non_null(strstr(hybrid->items[0].explain_json, "\"mode\":\"hybrid\""));
    print_message("hybrid: first %s %s\n", hybrid->items[0].key, hybrid->items[0].explain_json);
    engram_result_destroy(&keyword);
    engram_result_destroy(&vector);
    engram_result_destroy(&hybrid);
    engram_result_destroy(&fallback);

    /* keyword with an embedding, vector and hybrid without one, an unknown mode: refused */
    engram_result_t *r = NULL;
    ask = (s_ask_t){"run:hyb", "keyword", query, DIMS, 0, 0, false};
    EXPECT_RC(a, ENGRAM_EINVAL, s_ask(a, words, &ask, &r));
    print_message("keyword with an embedding: %s\n", engram_last_error(a));
    ask = (s_ask_t){"run:hyb", "vector", NULL, 0, 0, 0, false};
    EXPECT_RC(a, ENGRAM_EINVAL, s_ask(a, words, &ask, &r));
    ask.mode = "hybrid";
    EXPECT_RC(a, ENGRAM_EINVAL, s_ask(a, words, &ask, &r));
    ask = (s_ask_t){"run:hyb", "semantic", query, DIMS, 0, 0, false};
    EXPECT_RC(a, ENGRAM_EINVAL, s_ask(a, words, &ask, &r));
    assert_null(r);
}

/*  --- test_boosts -------------------------------------------------------------------------- */

#define HALF_LIFE_MS 250
#define OLD_AGE_MS   1500
/*  The newer memory's age below which recency must reorder (see test_boosts). */
#define YOUNG_AGE_MS 400

/*  Expects item i's explain to show a recency factor 1 + 2^(-age / HALF_LIFE_MS) for an age
 *  between from_ms and to_ms (the wall clock around the search) minus its version's time,
 *  and its score to be base x recency. */
static void s_expect_recency(const engram_result_t *r, size_t i, int64_t from_ms, int64_t to_ms)
{
    int64_t written = (int64_t)(r->items[i].hlc >> 16);
    double oldest = (double)(to_ms - written + 2), youngest = (double)(from_ms - written - 2);
    double low = 1 + exp2(-oldest / HALF_LIFE_MS), high = 1 + exp2(-youngest / HALF_LIFE_MS);
    double got = s_explain_num(r, i, "recency", NULL), base = s_explain_num(r, i, "base", NULL);
    if (!(got >= low && got <= high))
        fail_msg("%s: recency %.9f, expected within [%.9f, %.9f] for an age of %.0f to %.0f ms",
                 r->items[i].key, got, low, high, youngest + 2, oldest - 2);
    assert_true(s_near(r->items[i].score, base * got, 1e-12));
}

static void test_boosts(void **state)
{
    (void)state;
    engram_t *a = s_conn(A);
    float v[DIMS];
    s_at_cosine(0.9, v);
    free(s_put_vec(a, "run:recency", "r-old", "an old but close memory", v, DIMS, 0));
    int64_t old_written = node_harness_now_ms();

    /* Usefulness: u1 -2 votes, u2 +4, u3 +8 from an agent that does not act for USER. */
    static const double cosines[] = {0.9, 0.8, 0.7};
    for (size_t i = 0; i < 3; i++) {
        char key[8];
        snprintf(key, sizeof key, "u%zu", i + 1);
        s_at_cosine(cosines[i], v);
        free(s_put_vec(a, "run:useful", key, "a memory voted on", v, DIMS, 0));
    }
    engram_result_t *r = NULL;
    EXPECT_RC(a, 0, engram_counter_add(a, "run:useful", "u1#votes", -2, &r));
    engram_result_destroy(&r);
    EXPECT_RC(a, 0, engram_counter_add(a, "run:useful", "u2#votes", 4, &r));
    engram_result_destroy(&r);
    assert_int_equal(node_harness_grant(s_w->node[A], "voter-b", "bob"), 0);
    engram_t *voter = node_harness_connect(s_w->node[A], "voter-b", "bob", CALL_MS);
    assert_non_null(voter);
    EXPECT_RC(voter, 0, engram_counter_add(voter, "run:useful", "u3#votes", 8, &r));
    engram_result_destroy(&r);
    engram_destroy(&voter);

    s_ask_t ask = {"run:useful", "vector", s_axis, DIMS, 0, 0, false};
    EXPECT_RC(a, 0, s_ask(a, "x", &ask, &r));
    char got[256];
    s_keys(r, false, got, sizeof got);
    assert_string_equal(got, "u1 u2 u3");
    assert_true(isnan(s_explain_num(r, 0, "usefulness", "factor")));
    engram_result_destroy(&r);
    ask.votes = true;
    EXPECT_RC(a, 0, s_ask(a, "x", &ask, &r));
    s_keys(r, false, got, sizeof got);
    assert_string_equal(got, "u2 u3 u1");
    static const struct {
        const char *key;
        int64_t votes;
    } voted[] = {{"u1", -2}, {"u2", 4}};
    for (size_t v_i = 0; v_i < 2; v_i++) {
        size_t i = s_item(r, voted[v_i].key);
        double factor = 1 + tanh((double)voted[v_i].votes / 4) / 2;
        double base = s_explain_num(r, i, "base", NULL);
        assert_true(s_explain_num(r, i, "usefulness", "votes") == (double)voted[v_i].votes);
        if (!s_near(s_explain_num(r, i, "usefulness", "factor"), factor, 1e-12) ||
            !s_near(r->items[i].score, base * factor, 1e-12))
            fail_msg("%s: %s; expected a factor %.12f", r->items[i].key, r->items[i].explain_json,
                     factor);
    }
    /* u3's votes are voter-b's, who does not act for USER: not counted */
    size_t u3 = s_item(r, "u3");
    if (!isnan(s_explain_num(r, u3, "usefulness", "factor")))
        fail_msg("u3 counts votes the reader may not see: %s", r->items[u3].explain_json);
    assert_true(s_near(r->items[u3].score, s_explain_num(r, u3, "base", NULL), 1e-12));
    engram_result_destroy(&r);
    /* once voter-b acts for USER too, they count: 1 + tanh(2) / 2 */
    assert_int_equal(node_harness_grant(s_w->node[A], "voter-b", USER), 0);
    EXPECT_RC(a, 0, s_ask(a, "x", &ask, &r));
    u3 = s_item(r, "u3");
    assert_true(s_explain_num(r, u3, "usefulness", "votes") == 8);
    assert_true(s_near(s_explain_num(r, u3, "usefulness", "factor"), 1 + tanh(2.0) / 2, 1e-12));
    engram_result_destroy(&r);

    /* Recency: the old memory (cosine 0.9) ranks first without a half-life; with one of
     * HALF_LIFE_MS, a new memory (cosine 0.7) overtakes it while younger than YOUNG_AGE_MS
     * (its factor is then over 1.306, the old one's under 1.016). */
    while (node_harness_now_ms() - old_written < OLD_AGE_MS)
        zclock_sleep(50);
    s_at_cosine(0.7, v);
    free(s_put_vec(a, "run:recency", "r-new", "a new, less close memory", v, DIMS, 0));
    ask = (s_ask_t){"run:recency", "vector", s_axis, DIMS, 0, 0, false};
    EXPECT_RC(a, 0, s_ask(a, "x", &ask, &r));
    s_keys(r, false, got, sizeof got);
    assert_string_equal(got, "r-old r-new");
    assert_true(isnan(s_explain_num(r, 0, "recency", NULL)));
    engram_result_destroy(&r);
    ask.half_life_ms = HALF_LIFE_MS;
    int64_t from = (int64_t)s_wall_ms();
    EXPECT_RC(a, 0, s_ask(a, "x", &ask, &r));
    int64_t to = (int64_t)s_wall_ms();
    assert_int_equal(r->nitems, 2);
    for (size_t i = 0; i < 2; i++)
        s_expect_recency(r, i, from, to);
    s_keys(r, false, got, sizeof got);
    int64_t young = to - (int64_t)(r->items[s_item(r, "r-new")].hlc >> 16);
    if (young < YOUNG_AGE_MS)
        assert_string_equal(got, "r-new r-old");
    else
        print_message("test_boosts: the new memory was %" PRId64 " ms old when searched; the "
                      "order is not judged\n",
                      young);
    print_message("recency: %s | %s\n", r->items[0].explain_json, r->items[1].explain_json);
    engram_result_destroy(&r);
}

/*  --- test_vector_access -------------------------------------------------------------------- */

static void test_vector_access(void **state)
{
    (void)state;
    engram_t *writer = s_conn(A);
    engram_t *reader = s_narrow_agent(A, "reader-v", "run:vopen");
    float v[DIMS];
    s_at_cosine(0.95, v);
    free(s_put_vec(writer, "run:vclosed", "vsecret", "ocelot secret", v, DIMS, 0));
    s_at_cosine(0.5, v);
    free(s_put_vec(writer, "run:vopen", "vplain", "an ocelot sighting", v, DIMS, 0));
    const char *vault[] = {"doc:vault"};
    EXPECT_RC(writer, 0, engram_set_sources(writer, vault, 1));
    s_at_cosine(0.99, v);
    free(s_put_vec(writer, "run:vopen", "vsourced", "the ocelot ledger", v, DIMS, 0));
    EXPECT_RC(writer, 0, engram_set_sources(writer, NULL, 0));

    /* The reader, by default over every scope it may read: the open memory only, ranked
     * first of one in each ranking. */
    engram_result_t *r = NULL;
    s_ask_t ask = {NULL, "vector", s_axis, DIMS, 100, 0, false};
    EXPECT_RC(reader, 0, s_ask(reader, "ocelot", &ask, &r));
    char got[256];
    s_keys(r, false, got, sizeof got);
    assert_string_equal(got, "vplain");
    assert_true(s_explain_num(r, 0, "vector", "rank") == 1);
    assert_true(s_near(r->items[0].score, 0.5, 1e-6));
    engram_result_destroy(&r);
    ask.mode = "hybrid";
    EXPECT_RC(reader, 0, s_ask(reader, "ocelot", &ask, &r));
    s_keys(r, false, got, sizeof got);
    assert_string_equal(got, "vplain");
    assert_true(s_near(r->items[0].score, 2.0 / 61, 1e-12));
    s_expect_counted(r, 0, "ocelot", 1, 1);
    engram_result_destroy(&r);
    ask.scope = "run:vclosed";
    EXPECT_RC(reader, ENGRAM_EDENIED, s_ask(reader, "ocelot", &ask, &r));

    /* The writer gets and ranks all three. */
    ask = (s_ask_t){NULL, "vector", s_axis, DIMS, 100, 0, false};
    EXPECT_RC(writer, 0, s_ask(writer, "ocelot", &ask, &r));
    assert_true(s_find(r, "vsourced") >= 0 && s_find(r, "vsourced") < s_find(r, "vsecret") &&
                s_find(r, "vsecret") < s_find(r, "vplain"));
    engram_result_destroy(&r);
    engram_destroy(&reader);
}

/*  --- test_context -------------------------------------------------------------------------- */

#define CONTEXT_TOP_K 20

/*  A context of query in run:ctx; mode NULL for keyword, else with an embedding. */
static int s_context(engram_t *e, const char *query, const float *embedding, unsigned top_k,
                     unsigned tokens, engram_result_t **r)
{
    const char *scopes[1] = {"run:ctx"};
    engram_search_options_t options = {.scopes = scopes,
                                       .nscopes = 1,
                                       .top_k = top_k,
                                       .mode = embedding ? "vector" : NULL,
                                       .embedding = embedding,
                                       .dims = embedding ? DIMS : 0};
    *r = NULL;
    return engram_context(e, query, &options, tokens, r);
}

/*  The line a memory gets: "- WHEN UTC, AUTHOR in SCOPE (KEY): TEXT\n". Caller frees. */
static char *s_context_line(const engram_item_t *item)
{
    time_t seconds = (time_t)((item->hlc >> 16) / 1000);
    struct tm tm;
    char when[32];
    assert_non_null(gmtime_r(&seconds, &tm));
    strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
    char *text = strndup((const char *)item->value, item->len);
    assert_non_null(text);
    for (char *p = text; *p; p++)
        if (*p == '\n' || *p == '\t' || *p == '\r')
            *p = ' ';
    char *line = NULL;
    assert_true(asprintf(&line, "- %s UTC, %s in %s (%s): %s\n", when, item->author, item->scope,
                         item->key, text) > 0);
    free(text);
    return line;
}

/*  text in lower case, runs of white space as one space, none at either end (ASCII). */
static void s_folded(const char *text, char *out, size_t len)
{
    size_t n = 0;
    for (const char *p = text; *p && n + 2 < len; p++) {
        bool space = *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r';
        if (!space)
            out[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        else if (n && out[n - 1] != ' ')
            out[n++] = ' ';
    }
    while (n && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

/*  Whether two ASCII texts are equal modulo case and white space. */
static bool s_same_text(const char *x, const char *y)
{
    char fx[512], fy[512];
    s_folded(x, fx, sizeof fx);
    s_folded(y, fy, sizeof fy);
    return strcmp(fx, fy) == 0;
}

static size_t s_tokens(size_t bytes)
{
    return (bytes + 3) / 4;
}

/*  Expects a context's block, items and token count: the header, then the lines of
 *  lines[0..n) that fit the budget, greedily in order, as the node fills it. */
static void s_expect_block(const engram_result_t *r, const char *header, char **lines, size_t n,
                           unsigned tokens)
{
    size_t budget = (size_t)tokens * 4, used = strlen(header);
    char *want = NULL;
    size_t want_len = 0;
    FILE *out = open_memstream(&want, &want_len);
    assert_non_null(out);
    fputs(header, out);
    for (size_t i = 0; i < n && used + 2 <= budget; i++)
        if (used + strlen(lines[i]) <= budget) {
            fputs(lines[i], out);
            used += strlen(lines[i]);
        }
    fclose(out);
    if (used > budget)
        want[0] = '\0';
    if (strcmp(r->context, want) != 0)
        fail_msg("context of %u tokens:\n%s\nexpected:\n%s", tokens, r->context, want);
    assert_true(r->number == (int64_t)s_tokens(strlen(r->context)));
    assert_true(r->number <= (int64_t)tokens);
    free(want);
}

static void test_context(void **state)
{
    (void)state;
    engram_t *e = s_conn(A);
    static const struct {
        const char *key;
        const char *text;
        double cosine;
    } memories[] = {
        {"c-nest", "A kestrel nest on the church tower, two eggs.", 0.5},
        {"c-hover", "Kestrel hovering over the motorway verge, hunting voles", 0.6},
        {"c-long",
         "Survey note: the kestrel pair returned in March; the male hunts the north field, the "
         "female stays near the nest box. Ringing planned for June.\nSecond line of the note.",
         0.3},
        {"c-short", "kestrel seen", 0.2},
        {"dup-a", "The kestrel  hovers over the FIELD", 0.4},
        {"dup-b", "the Kestrel hovers over the field", 0.8},
        {"c-other", "a buzzard on the fence post", 0.95},
    };
    size_t nmem = sizeof memories / sizeof *memories;
    char *last = NULL;
    for (size_t i = 0; i < nmem; i++) {
        float v[DIMS];
        s_at_cosine(memories[i].cosine, v);
        free(last);
        last = s_put_vec(e, "run:ctx", memories[i].key, memories[i].text, v, DIMS, 0);
    }
    const char *header = "Memories relevant to \"kestrel\" (best first; when, who, where):\n";

    /* The whole block: the search's memories best first, the worse duplicate left out. */
    engram_result_t *full = NULL, *found = NULL;
    EXPECT_RC(e, 0, s_context(e, "kestrel", NULL, CONTEXT_TOP_K, 10000, &full));
    const char *scopes[1] = {"run:ctx"};
    engram_search_options_t options = {.scopes = scopes, .nscopes = 1, .top_k = CONTEXT_TOP_K};
    EXPECT_RC(e, 0, engram_search(e, "kestrel", &options, &found));
    assert_int_equal(found->nitems, 6);
    size_t kept = 0;
    for (size_t i = 0; i < found->nitems; i++) {
        bool twice = false;
        for (size_t j = 0; j < i; j++)
            twice |= s_same_text((char *)found->items[j].value, (char *)found->items[i].value);
        if (twice)
            continue;
        assert_true(kept < full->nitems);
        assert_string_equal(full->items[kept].key, found->items[i].key);
        kept++;
    }
    assert_int_equal(full->nitems, 5);
    assert_int_equal(kept, 5);
    assert_int_equal(s_find(full, "dup-b"), -1); /* ties with dup-a, which comes first */
    char *lines[CONTEXT_TOP_K];
    size_t nlines = full->nitems;
    for (size_t i = 0; i < nlines; i++)
        lines[i] = s_context_line(&full->items[i]);
    s_expect_block(full, header, lines, nlines, 10000);
    print_message("context:\n%s(%" PRId64 " tokens)\n", full->context, full->number);

    /* By meaning, dup-b is the closer: it is kept and dup-a left out. */
    engram_result_t *r = NULL;
    EXPECT_RC(e, 0, s_context(e, "kestrel", s_axis, CONTEXT_TOP_K, 10000, &r));
    assert_true(s_find(r, "dup-b") >= 0);
    assert_int_equal(s_find(r, "dup-a"), -1);
    assert_int_equal(r->nitems, nmem - 1);
    engram_result_destroy(&r);

    /* Every budget up to the whole block's: what fits, never over; the header only when no
     * line fits; nothing when the header does not. */
    bool header_only = false, empty = false;
    for (unsigned tokens = 1; tokens <= full->number + 1; tokens++) {
        EXPECT_RC(e, 0, s_context(e, "kestrel", NULL, CONTEXT_TOP_K, tokens, &r));
        s_expect_block(r, header, lines, nlines, tokens);
        header_only |= strcmp(r->context, header) == 0 && r->nitems == 0;
        empty |= r->context[0] == '\0' && r->nitems == 0 && r->number == 0;
        engram_result_destroy(&r);
    }
    assert_true(header_only && empty);

    /* top_k caps the lines */
    EXPECT_RC(e, 0, s_context(e, "kestrel", NULL, 2, 10000, &r));
    s_expect_block(r, header, lines, 2, 10000);
    assert_int_equal(r->nitems, 2);
    engram_result_destroy(&r);

    /* a budget of 0, or over the most: refused */
    EXPECT_RC(e, ENGRAM_EINVAL, s_context(e, "kestrel", NULL, 0, 0, &r));
    print_message("tokens 0: %s\n", engram_last_error(e));
    EXPECT_RC(e, ENGRAM_EINVAL, s_context(e, "kestrel", NULL, 0, 100001, &r));

    /* The CLI prints the same block; without --tokens it is a usage error. */
    char tokens[16];
    snprintf(tokens, sizeof tokens, "%u", 60);
    EXPECT_RC(e, 0, s_context(e, "kestrel", NULL, 0, 60, &r));
    const char *cli[] = {"context", "kestrel", "--scope", "run:ctx", "--tokens",
                         tokens,    "--after", last,      NULL};
    char *printed = NULL;
    assert_int_equal(s_cli(A, AGENT, cli, &printed), 0);
    assert_string_equal(printed, r->context);
    free(printed);
    engram_result_destroy(&r);
    const char *no_budget[] = {"context", "kestrel", "--scope", "run:ctx", NULL};
    assert_int_equal(s_cli(A, AGENT, no_budget, NULL), 2);
    free(last);
    for (size_t i = 0; i < nlines; i++)
        free(lines[i]);
    engram_result_destroy(&full);
    engram_result_destroy(&found);
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
    /* by meaning: vector and hybrid, over every scope, the latter with votes too */
    for (size_t q = 0; q < REINDEX_MEANINGS; q++) {
        float query[DIMS];
        s_random_embedding(600 + q, query);
        const char *words = extra[q % nextra];
        s_ask_t ask = {NULL,      q % 3 == 0 ? "vector" : "hybrid", query, DIMS, REINDEX_TOP_K, 0,
                       q % 3 == 2};
        engram_result_t *r = NULL;
        EXPECT_RC(e, 0, s_ask(e, words, &ask, &r));
        fprintf(out, "%s %zu %s%s: %zu\n", ask.mode, q, words, ask.votes ? " votes" : "",
                r->nitems);
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
    /* Every document of run:mix holds "ledger"; 6 are live at the end. Most carry an
     * embedding (seed: 500 + the number in the comment). */
    float v[16][DIMS];
    for (size_t i = 0; i < 16; i++)
        s_random_embedding(500 + i, v[i]);
    free(s_put_vec(c, "run:mix", "c-keep", "local ledger entry kept", v[1], DIMS, 0));
    free(s_put_vec(c, "run:mix", "c-over", "local ledger entry soon overwritten", v[2], DIMS, 0));
    free(s_put_vec(c, "run:mix", "c-over", "overwritten ledger entry, second text", v[3], DIMS, 0));
    free(s_put_vec(c, "run:mix", "c-gone", "local ledger entry deleted", v[4], DIMS, 0));
    free(s_delete(c, "run:mix", "c-gone"));
    free(s_put_vec(c, "run:mix", "c-ttl", "ephemeral local ledger entry", v[5], DIMS, TTL_MS));
    free(
        s_put_vec(c, "private", "c-private", "a private ledger note, never shared", v[6], DIMS, 0));
    free(s_put_vec(a, "run:mix", "a-keep", "remote ledger entry from A", v[7], DIMS, 0));
    free(s_put_vec(a, "run:mix", "a-ttl", "ephemeral remote ledger entry from A", v[8], DIMS,
                   TTL_MS));
    free(s_put_vec(a, "run:mix", "a-over", "remote ledger entry from A, to be overwritten on B",
                   v[9], DIMS, 0));
    char *from_a = s_put_vec(a, "run:mix", "a-gone", "remote ledger entry from A, deleted on B",
                             v[10], DIMS, 0);
    s_after(b, "run:mix", from_a);
    /* overwritten without an embedding: a-over's is gone */
    free(s_put(b, "run:mix", "a-over", "overwritten on B: the ledger's final text", NULL, 0));
    free(s_delete(b, "run:mix", "a-gone"));
    free(s_put_vec(b, "run:mix", "b-keep", "remote ledger entry from B", v[11], DIMS, 0));
    free(s_put_vec(b, "run:mix", "b-over", "first ledger text from B", v[12], DIMS, 0));
    free(s_put_vec(b, "run:mix", "b-over", "second ledger text from B", v[13], DIMS, 0));
    free(s_put_vec(b, "run:mix", "b-vector", "of the", v[14], DIMS, 0)); /* no words */
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
    print_message("test_reindex: %d + %d queries asked in %.2f s; restart with --reindex %.2f s; "
                  "%zu bytes of answers compared\n",
                  REINDEX_QUERIES, REINDEX_MEANINGS, asked, restarted, strlen(before));
    s_expect_same(before, after);
    free(before);
    free(after);
    args[10] = NULL; /* later starts do not rebuild */
    assert_int_equal(node_harness_set_args(s_w->node[C], args), 0);
}

/*  --- test_bounds -------------------------------------------------------------------------- */

/*  What a search or a share refuses whatever the node holds: a query of more than 64 words; a
 *  share whose private embedding has another dimension than the target scope's; a read with a
 *  causal token too big to keep while waiting, refused even when the token is reached (the
 *  answer never depends on how far replication got). */
static void test_bounds(void **state)
{
    (void)state;
    engram_t *a = s_conn(A);
    engram_result_t *r = NULL;
    char query[65 * 5 + 1] = "";
    for (int i = 0; i < 65; i++)
        strcat(query, "word ");
    EXPECT_RC(a, ENGRAM_EINVAL, engram_search(a, query, NULL, &r));
    assert_non_null(strstr(engram_last_error(a), "at most 64 words"));
    query[64 * 5] = '\0';
    EXPECT_RC(a, 0, engram_search(a, query, NULL, &r));
    engram_result_destroy(&r);

    float eight[DIMS], four[4] = {1, 2, 3, 4};
    s_random_embedding(77, eight);
    char *token = s_put_vec(a, "run:bounds", "k8", "eight dimensions", eight, DIMS, 0);
    EXPECT_RC(a, 0, engram_put_embedded(a, "private", "p4", "four", 4, NULL, 0, four, 4, &r));
    engram_result_destroy(&r);
    EXPECT_RC(a, ENGRAM_EINVAL, engram_share(a, "p4", "run:bounds", &r));
    const char *why = engram_last_error(a);
    if (!strstr(why, "8 dimensions") || !strstr(why, "has 4"))
        fail_msg("a share of a 4-dimension memory into an 8-dimension scope: '%s'", why);

    engram_t *waiting = node_harness_connect(s_w->node[A], AGENT, USER, CALL_MS);
    assert_non_null(waiting);
    EXPECT_RC(waiting, 0, engram_set_after(waiting, token, WAIT_MS));
    free(token);
    static float big[3000];
    for (size_t i = 0; i < 3000; i++)
        big[i] = (float)(i % 7) + 1;
    const char *scopes[] = {"run:bounds"};
    engram_search_options_t options = {
        .scopes = scopes, .nscopes = 1, .mode = "vector", .embedding = big, .dims = 3000};
    EXPECT_RC(waiting, ENGRAM_ETOOBIG, engram_search(waiting, "x", &options, &r));
    engram_destroy(&waiting);
}

/*  Puts under scope's key a value of `bytes` bytes: `needles` times " needle" after
 *  "haystack", then 'x's. Returns the causal token (the caller frees it). */
static char *s_put_needles(engram_t *e, const char *scope, const char *key, int needles,
                           size_t bytes)
{
    char *text = malloc(bytes + 1);
    assert_non_null(text);
    size_t at = (size_t)snprintf(text, bytes + 1, "haystack");
    for (int n = 0; n < needles; n++)
        at += (size_t)snprintf(text + at, bytes + 1 - at, " needle");
    memset(text + at, 'x', bytes - at);
    text[at] = ' ';
    text[bytes] = '\0';
    char *token = s_put(e, scope, key, text, NULL, 0);
    free(text);
    return token;
}

/*  Whether a search's result holds at least one item, fewer than `asked`, within
 *  ENGRAM_MAX_PAGE_BYTES of values, and first is its first item's key. */
static void s_expect_bounded(const engram_result_t *r, size_t asked, const char *first)
{
    size_t bytes = 0;
    for (size_t i = 0; i < r->nitems; i++)
        bytes += r->items[i].len;
    assert_true(r->nitems >= 1 && r->nitems < asked);
    assert_true(bytes <= ENGRAM_MAX_PAGE_BYTES);
    assert_string_equal(r->items[0].key, first);
}

/*  A search's reply holds its best results only as long as their values stay within
 *  ENGRAM_MAX_PAGE_BYTES, whatever top_k asks (a first result always shows): six values of
 *  900 KiB that all match make four results, best first, not 5.4 MB. Boosted, the candidates
 *  past the bound still take part: in another scope, five values of two needles, then, 3 s
 *  later, one of one needle. By text it ranks last (BM25 gives two needles about 1.2 times one,
 *  its value being a word shorter), past the four that fit; a half-life of 1 s lifts it (1.4
 *  times or more if searched within 1.3 s, the others at most 1.125) to the top, and it comes
 *  first, its value loaded again whole. */
static void test_reply_bound(void **state)
{
    (void)state;
    engram_t *a = s_conn(A);
    enum { VALUES = 6, VALUE_BYTES = 900 * 1024 };
    char *token = NULL, key[16];
    for (int i = 0; i < VALUES; i++) { /* more needles the later: the later rank first */
        snprintf(key, sizeof key, "v%d", i);
        free(token);
        token = s_put_needles(a, "run:bound", key, i + 1, VALUE_BYTES);
    }
    s_after(a, "run:bound", token); /* frees it */
    engram_result_t *r = NULL;
    EXPECT_RC(a, 0, s_search(a, "needle", "run:bound", NULL, VALUES, &r));
    s_expect_bounded(r, VALUES, "v5");
    engram_result_destroy(&r);

    token = NULL;
    for (int i = VALUES - 1; i >= 0; i--) {
        if (i == 0)
            sleep(3);
        snprintf(key, sizeof key, "b%d", i);
        free(token);
        token = s_put_needles(a, "run:boost", key, i ? 2 : 1, VALUE_BYTES);
    }
    s_after(a, "run:boost", token);
    const char *scopes[1] = {"run:boost"};
    engram_search_options_t recent = {
        .scopes = scopes, .nscopes = 1, .top_k = VALUES, .half_life_ms = 1000};
    EXPECT_RC(a, 0, engram_search(a, "needle", &recent, &r));
    s_expect_bounded(r, VALUES, "b0");
    assert_int_equal(r->items[0].len, VALUE_BYTES);
    engram_result_destroy(&r);
}

/*  --- test_seed_scenario ------------------------------------------------------------------ */

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
    {B, "writer", "open-questions",
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
        cmocka_unit_test(test_filters),        cmocka_unit_test(test_vector_search),
        cmocka_unit_test(test_hybrid),         cmocka_unit_test(test_boosts),
        cmocka_unit_test(test_vector_access),  cmocka_unit_test(test_context),
        cmocka_unit_test(test_reindex),        cmocka_unit_test(test_seed_scenario),
        cmocka_unit_test(test_seed_writer),    cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_reply_bound),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
