/*  SEARCH: memories found by their words and meaning, within the reader's rights.
 *
 *  Rankings, per the request's mode:
 *    keyword  BM25 over the query's terms (split as the index splits texts, node/search/text.h):
 *             each scope answers its best documents from its postings (node_store_search_top,
 *             which reads a common term's postings only as far as they can still matter),
 *             counting and scoring only the documents whose provenance the reader may see
 *             (the retrospective check, decided once per provenance class);
 *    vector   the cosine of the query's embedding with each memory's (node_store_search_vector,
 *             an exact scan, the best SEARCH_POOL per scope, the same access rule);
 *    hybrid   reciprocal-rank fusion of the two rankings (k = SEARCH_RRF_K): a memory at rank r
 *             of a ranking gets 1 / (k + r), summed over the rankings it is in (the text
 *             ranking is every match, node_store_search_terms: a vector hit's text rank may be
 *             far down).
 *  Without a mode, hybrid when the query carries an embedding, else keyword.
 *  Results of all scopes are ranked together (ties: scope, key, dot) and walked best first:
 *  each is loaded and checked again (expiry, provenance) and matched against the filter.
 *  Optional boosts then multiply the score: recency, 1 + 2^(-age / half_life_ms) with the age
 *  of the memory's version; usefulness, 1 + tanh(votes / 4) / 2 with the votes of its counter
 *  KEY#votes (VOTE; contributions the reader may see). Without boosts the walk stops at top_k;
 *  with them the best SEARCH_POOL by the unboosted score are boosted and ranked again (a
 *  memory beyond the pool is not considered). A keyword search ranks each scope's best that
 *  many, and twice as many again while the walk turns so many down that it runs out (the
 *  answer is the one a ranking of every match would give). The threshold, unless 0 (none: a
 *  cosine may be negative), applies to the final score.
 *
 *  Scopes: those named (each must be readable, as for GET: else ENGRAM_EDENIED), or by
 *  default every shared scope this node holds that the agent may read for its user, and its
 *  private scope. A scope the agent may not read is never searched.
 *
 *  CONTEXT is a search (of at least SEARCH_CONTEXT_POOL candidates) made into a prompt block:
 *  a header, then one line per memory, best first, "- WHEN UTC, AUTHOR in SCOPE (KEY): TEXT",
 *  as many as fit the token budget (one token per SEARCH_BYTES_PER_TOKEN bytes), at most
 *  top_k; a memory whose text equals a better one's (NFKC, case-folded, white space
 *  collapsed) is left out. Relevance first, with who and when on every line, as Zep's user
 *  context and Redis's memory prompt do; Reply.items are the memories shown, Reply.number the
 *  block's tokens.
 */
#include <czmq.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "crdt/array.h"
#include "crdt/value.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/api/internal.h"
#include "node/api/json.h"
#include "node/search/filter.h"
#include "node/search/text.h"
#include "node/search/vector.h"

/*  The longest query text. */
#define SEARCH_MAX_QUERY_BYTES 4096
/*  At most this many words (terms, repeats included) in a query: a search keeps one cursor
 *  and one frequency per term and hit. */
#define SEARCH_MAX_QUERY_TERMS 64
/*  A keyword search asks a scope for at most this many candidates, and one round of its walk
 *  loads and checks (expiry, provenance, filter) at most this many: a filter that matches few
 *  memories may answer fewer than top_k. Rounds start over with twice the last one's limit,
 *  from top_k (or SEARCH_POOL) up to this, so a search loads at most about twice as many in
 *  all. */
#define SEARCH_MAX_EXAMINED 10000
/*  At most this many scopes are named in one search. */
#define SEARCH_MAX_SCOPES 64
/*  Candidates a vector ranking keeps per scope, and that boosts re-rank. */
#define SEARCH_POOL 200

typedef enum { MODE_KEYWORD, MODE_VECTOR, MODE_HYBRID } s_mode_t;

static const char *const s_mode_names[] = {"keyword", "vector", "hybrid"};

typedef struct {
    char sid[MAX_SCOPE_BYTES + 2];
    char *name; /* as the agent names it: "private" or the scope */
    node_search_hits_t text;
    node_vector_hits_t vector;
} s_scope_t;

typedef struct {
    s_scope_t *scopes;
    size_t n;
    size_t cap;
} s_scopes_t;

/*  One memory in a ranking, and what its score came from. */
typedef struct {
    const s_scope_t *scope;
    const char *key;
    const char *elem;
    crdt_dot_t dot;
    const node_search_hit_t *text;   /* its BM25 hit, or NULL */
    const node_vector_hit_t *vector; /* its vector hit, or NULL */
    size_t text_rank, vector_rank;   /* 1-based ranks in each ranking; 0: not in it */
    double base;                     /* the mode's score */
    double recency, usefulness;      /* boost factors (1: none) */
    int64_t votes;
    double score; /* base x boosts */
    /* loaded: */
    crdt_type_id_t type;
    uint64_t hlc;
    uint8_t *data;
    size_t len;
} s_candidate_t;

typedef struct {
    s_candidate_t *items;
    size_t n;
    size_t cap;
} s_candidates_t;

/*  What one search asks, checked. */
typedef struct {
    s_mode_t mode;
    search_filter_t *filter;
    search_terms_t terms;
    float *embedding; /* the query's, or NULL */
    uint32_t dims;
    size_t top_k;
    bool boosted;
} s_query_t;

typedef struct {
    node_server_t *self;
    const Engram__Request *req;
    const char *sid;
} s_reader_t;

static bool s_visible(void *arg, const char *const *agents, size_t nagents,
                      const char *const *resources, size_t nresources)
{
    s_reader_t *reader = arg;
    return api__may_read_provenance(reader->self, reader->req->agent, reader->req->user,
                                    reader->sid, agents, nagents, resources, nresources);
}

/*  --- scopes ------------------------------------------------------------------------------ */

static int s_add_scope(s_scopes_t *list, const char *sid, const char *name)
{
    if (crdt_array_grow((void **)&list->scopes, &list->cap, list->n + 1, sizeof *list->scopes))
        return ENGRAM_ENOMEM;
    s_scope_t *scope = &list->scopes[list->n];
    memset(scope, 0, sizeof *scope);
    snprintf(scope->sid, sizeof scope->sid, "%s", sid);
    scope->name = strdup(name);
    if (!scope->name)
        return ENGRAM_ENOMEM;
    list->n++;
    return 0;
}

static void s_scopes_free(s_scopes_t *list)
{
    for (size_t i = 0; i < list->n; i++) {
        free(list->scopes[i].name);
        node_search_hits_free(&list->scopes[i].text);
        node_vector_hits_free(&list->scopes[i].vector);
    }
    free(list->scopes);
}

typedef struct {
    node_server_t *self;
    const Engram__Request *req;
    s_scopes_t *list;
    int rc;
} s_every_t;

static void s_every_scope(void *arg, const char *sid)
{
    s_every_t *e = arg;
    if (e->rc == 0 &&
        node_acl_may_read_scope(e->self->acl, e->req->agent, e->req->user, sid, api__acl_now()))
        e->rc = s_add_scope(e->list, sid, sid);
}

/*  The scopes searched, each readable. */
static int s_scopes(node_server_t *self, const Engram__Request *req, api_reply_t *r,
                    s_scopes_t *list)
{
    uint64_t now = api__acl_now();
    if (!req->user[0])
        return api__fail(r, ENGRAM_EINVAL, "a request must name the user the agent acts for");
    if (!node_acl_may_act(self->acl, req->agent, req->user, now)) {
        self->denials++;
        return api__fail(r, ENGRAM_EDENIED, "agent '%s' may not act for user '%s'", req->agent,
                         req->user);
    }
    size_t named = req->n_scopes + (req->scope[0] ? 1 : 0);
    if (named > SEARCH_MAX_SCOPES)
        return api__fail(r, ENGRAM_EINVAL, "a search names at most %d scopes; this one names %zu",
                         SEARCH_MAX_SCOPES, named);
    for (size_t i = 0; i < named; i++) {
        Engram__Request one = *req;
        one.scope = i < req->n_scopes ? req->scopes[i] : req->scope;
        char sid[MAX_SCOPE_BYTES + 2];
        int rc = api__resolve(&one, sid, r);
        if (rc)
            return rc;
        if (!node_acl_may_read_scope(self->acl, req->agent, req->user, sid, now)) {
            self->denials++;
            return api__fail(r, ENGRAM_EDENIED, "agent '%s' acting for '%s' may not read %s",
                             req->agent, req->user, one.scope);
        }
        bool twice = false;
        for (size_t j = 0; j < list->n; j++)
            twice |= strcmp(list->scopes[j].sid, sid) == 0;
        if (!twice && (rc = s_add_scope(list, sid, one.scope)) != 0)
            return api__fail(r, rc, "out of memory");
    }
    if (named)
        return 0;
    char own[MAX_SCOPE_BYTES + 2];
    snprintf(own, sizeof own, "@%s", req->agent);
    s_every_t every = {self, req, list, s_add_scope(list, own, "private")};
    node_store_gossip.each_scope(self->store, s_every_scope, &every);
    return every.rc ? api__fail(r, every.rc, "out of memory") : 0;
}

/*  --- the request ------------------------------------------------------------------------- */

static void s_query_fini(s_query_t *q)
{
    search_filter_destroy(&q->filter);
    search_terms_free(&q->terms);
    free(q->embedding);
}

static int s_check(node_server_t *self, const Engram__Request *req, api_reply_t *r, s_query_t *q)
{
    if (strlen(req->query) > SEARCH_MAX_QUERY_BYTES)
        return api__fail(r, ENGRAM_ETOOBIG, "a query has at most %d bytes", SEARCH_MAX_QUERY_BYTES);
    if (req->top_k > ENGRAM_MAX_TOP_K)
        return api__fail(r, ENGRAM_EINVAL, "top_k may be at most %d", ENGRAM_MAX_TOP_K);
    if (!isfinite(req->threshold))
        return api__fail(r, ENGRAM_EINVAL, "the threshold is a score: a finite number");
    if (!isfinite(req->half_life_ms) || req->half_life_ms < 0)
        return api__fail(r, ENGRAM_EINVAL, "the half-life is a duration in ms: 0 (none) or more");
    q->top_k = req->top_k ? req->top_k : ENGRAM_DEFAULT_TOP_K;
    q->boosted = req->half_life_ms > 0 || req->votes;
    if (!req->mode[0])
        q->mode = req->embedding.len ? MODE_HYBRID : MODE_KEYWORD;
    else if (strcmp(req->mode, "keyword") == 0)
        q->mode = MODE_KEYWORD;
    else if (strcmp(req->mode, "vector") == 0)
        q->mode = MODE_VECTOR;
    else if (strcmp(req->mode, "hybrid") == 0)
        q->mode = MODE_HYBRID;
    else
        return api__fail(r, ENGRAM_EINVAL, "search mode '%s': use keyword, vector or hybrid",
                         api__quote(r, req->mode));
    char why[160];
    if (q->mode != MODE_KEYWORD) {
        if (!req->embedding.len)
            return api__fail(r, ENGRAM_EINVAL,
                             "a %s search needs the query's embedding (float32 values)",
                             s_mode_names[q->mode]);
        q->embedding = malloc(req->embedding.len);
        if (!q->embedding)
            return api__fail(r, ENGRAM_ENOMEM, "out of memory");
        if (search_embedding_decode(req->embedding.data, req->embedding.len, q->embedding, &q->dims,
                                    why, sizeof why) != 0)
            return api__fail(r, ENGRAM_EINVAL, "the query's embedding: %s", why);
    } else if (req->embedding.len) {
        return api__fail(r, ENGRAM_EINVAL, "a keyword search takes no embedding");
    }
    if (req->filter_json[0] && search_filter_parse(req->filter_json, strlen(req->filter_json),
                                                   &q->filter, why, sizeof why) != 0)
        return api__fail(r, ENGRAM_EINVAL, "the filter is not valid: %s", why);
    if (q->mode == MODE_VECTOR)
        return 0;
    int rc = search_tokenize(node_store_tokenizer(self->store), req->query, strlen(req->query),
                             &q->terms);
    if (rc)
        return api__fail(r, rc, "cannot split the query into words: %s", engram_strerror(rc));
    if (q->terms.n > SEARCH_MAX_QUERY_TERMS)
        return api__fail(r, ENGRAM_EINVAL, "a query has at most %d words (this one has %zu)",
                         SEARCH_MAX_QUERY_TERMS, q->terms.n);
    if (q->terms.n == 0 && q->mode == MODE_KEYWORD)
        return api__fail(r, ENGRAM_EINVAL,
                         "the query has no words to search for (letters or digits)");
    return 0;
}

int api__check_embedding(node_server_t *self, const Engram__Request *req, const char *sid,
                         api_reply_t *r)
{
    if (req->op != ENGRAM__OP__PUT && req->op != ENGRAM__OP__REMEMBER &&
        req->op != ENGRAM__OP__LOG_APPEND && req->op != ENGRAM__OP__SHARE)
        return api__fail(r, ENGRAM_EINVAL,
                         "an embedding goes with a memory's text: put, remember, log append, "
                         "share, or a search's query");
    return api__check_embedding_of(self, sid, req->embedding.data, req->embedding.len, r);
}

int api__check_embedding_of(node_server_t *self, const char *sid, const uint8_t *bytes, size_t len,
                            api_reply_t *r)
{
    char why[160];
    uint32_t dims = 0;
    if (search_embedding_decode(bytes, len, NULL, &dims, why, sizeof why) != 0)
        return api__fail(r, ENGRAM_EINVAL, "the embedding: %s", why);
    uint32_t held[4];
    size_t n = 0;
    int rc = node_store_vector_dims(self->store, sid, held, 4, &n);
    if (rc)
        return api__fail(r, rc, "cannot read the scope's embeddings: %s", engram_strerror(rc));
    bool same = n == 0;
    for (size_t i = 0; i < n; i++)
        same |= held[i] == dims;
    if (!same)
        return api__fail(r, ENGRAM_EINVAL,
                         "%s holds embeddings of %u dimensions; this one has %u (one model per "
                         "scope)",
                         r->scope, held[0], dims);
    return 0;
}

/*  A vector or hybrid query's dimension against what the scopes searched answered: refused
 *  when the reader may see no embedding of it but some of another dimension (a client on the
 *  wrong model), so that it is not answered as if nothing were near. Embeddings the reader
 *  may not see count for nothing either way. */
static int s_check_dims(const s_query_t *q, const s_scopes_t *list, api_reply_t *r)
{
    uint32_t other = 0;
    for (size_t i = 0; i < list->n; i++) {
        if (list->scopes[i].vector.compared)
            return 0;
        other = other ? other : list->scopes[i].vector.other_dims;
    }
    if (other)
        return api__fail(r, ENGRAM_EINVAL,
                         "the query's embedding has %u dimensions; the scopes searched hold "
                         "embeddings of %u (another model?)",
                         q->dims, other);
    return 0;
}

/*  --- ranking ----------------------------------------------------------------------------- */

static int s_add_candidate(s_candidates_t *list, s_candidate_t c)
{
    if (crdt_array_grow((void **)&list->items, &list->cap, list->n + 1, sizeof *list->items))
        return ENGRAM_ENOMEM;
    list->items[list->n++] = c;
    return 0;
}

static int s_cmp_dot(crdt_dot_t a, crdt_dot_t b)
{
    return a.node != b.node ? (a.node < b.node ? -1 : 1) : a.n != b.n ? (a.n < b.n ? -1 : 1) : 0;
}

/*  The order of identity: scope, key, element, dot. */
static int s_cmp_identity(const s_candidate_t *x, const s_candidate_t *y)
{
    int c = strcmp(x->scope->sid, y->scope->sid);
    if (c == 0)
        c = strcmp(x->key, y->key);
    if (c == 0)
        c = strcmp(x->elem, y->elem);
    return c ? c : s_cmp_dot(x->dot, y->dot);
}

static int s_cmp_identity_q(const void *a, const void *b)
{
    return s_cmp_identity(a, b);
}

static int s_cmp_by(double x, double y, const s_candidate_t *a, const s_candidate_t *b)
{
    return x != y ? (x > y ? -1 : 1) : s_cmp_identity(a, b);
}

static int s_cmp_text(const void *a, const void *b)
{
    const s_candidate_t *x = a, *y = b;
    return s_cmp_by(x->text ? x->text->bm25 : -1, y->text ? y->text->bm25 : -1, x, y);
}

static int s_cmp_vector(const void *a, const void *b)
{
    const s_candidate_t *x = a, *y = b;
    return s_cmp_by(x->vector ? x->vector->cosine : -2, y->vector ? y->vector->cosine : -2, x, y);
}

static int s_cmp_base(const void *a, const void *b)
{
    const s_candidate_t *x = a, *y = b;
    return s_cmp_by(x->base, y->base, x, y);
}

static int s_cmp_score(const void *a, const void *b)
{
    const s_candidate_t *x = a, *y = b;
    return s_cmp_by(x->score, y->score, x, y);
}

/*  Every scope's hits as candidates, a memory in both rankings once; then ranks and base
 *  scores. */
static int s_rank(const s_query_t *q, s_scopes_t *list, s_candidates_t *out)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < list->n; i++) {
        const s_scope_t *scope = &list->scopes[i];
        for (size_t h = 0; rc == 0 && h < scope->text.n; h++) {
            const node_search_hit_t *hit = &scope->text.hits[h];
            rc = s_add_candidate(out, (s_candidate_t){.scope = scope,
                                                      .key = hit->key,
                                                      .elem = hit->elem,
                                                      .dot = hit->dot,
                                                      .text = hit});
        }
        for (size_t h = 0; rc == 0 && h < scope->vector.n; h++) {
            const node_vector_hit_t *hit = &scope->vector.hits[h];
            rc = s_add_candidate(out, (s_candidate_t){.scope = scope,
                                                      .key = hit->key,
                                                      .elem = hit->elem,
                                                      .dot = hit->dot,
                                                      .vector = hit});
        }
    }
    if (rc || out->n == 0)
        return rc;
    /* one candidate per memory: merge the two hits of one identity */
    qsort(out->items, out->n, sizeof *out->items, s_cmp_identity_q);
    size_t kept = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (kept && s_cmp_identity(&out->items[kept - 1], &out->items[i]) == 0) {
            s_candidate_t *into = &out->items[kept - 1];
            into->text = into->text ? into->text : out->items[i].text;
            into->vector = into->vector ? into->vector : out->items[i].vector;
        } else {
            out->items[kept++] = out->items[i];
        }
    }
    out->n = kept;
    qsort(out->items, out->n, sizeof *out->items, s_cmp_text);
    for (size_t i = 0; i < out->n && out->items[i].text; i++)
        out->items[i].text_rank = i + 1;
    qsort(out->items, out->n, sizeof *out->items, s_cmp_vector);
    for (size_t i = 0; i < out->n && out->items[i].vector; i++)
        out->items[i].vector_rank = i + 1;
    for (size_t i = 0; i < out->n; i++) {
        s_candidate_t *c = &out->items[i];
        c->recency = c->usefulness = 1;
        if (q->mode == MODE_KEYWORD)
            c->base = c->text ? c->text->bm25 : 0;
        else if (q->mode == MODE_VECTOR)
            c->base = c->vector ? c->vector->cosine : -1;
        else
            c->base = (c->text_rank ? search_rrf((uint32_t)c->text_rank) : 0) +
                      (c->vector_rank ? search_rrf((uint32_t)c->vector_rank) : 0);
        c->score = c->base;
    }
    qsort(out->items, out->n, sizeof *out->items, s_cmp_base);
    return 0;
}

bool api__filter_matches(const search_filter_t *filter, const char *key, const crdt_value_t *v)
{
    search_record_t record = {v->author,
                              v->user,
                              key,
                              v->created_hlc >> ENGRAM_HLC_LOGICAL_BITS,
                              v->updated_hlc >> ENGRAM_HLC_LOGICAL_BITS,
                              v->meta_json};
    return search_filter_match(filter, &record);
}

/*  The usefulness votes of key the reader may see (0 without a counter). */
static int64_t s_votes(node_server_t *self, const Engram__Request *req, const s_candidate_t *c)
{
    size_t len = strlen(c->key);
    if (len + sizeof API_VOTES_SUFFIX > ENGRAM_MAX_KEY_BYTES + 1)
        return 0;
    char key[ENGRAM_MAX_KEY_BYTES + 1];
    memcpy(key, c->key, len);
    memcpy(key + len, API_VOTES_SUFFIX, sizeof API_VOTES_SUFFIX);
    crdt_scope_t *view = NULL;
    unsigned types = 0;
    int64_t votes = 0;
    if (node_store_view(self->store, c->scope->sid, key, NODE_VIEW_OBJECT, NULL, &view, &types) ==
            0 &&
        (types & (1u << CRDT_COUNTER))) {
        api_reader_t reader = {self, req->agent, req->user, c->scope->sid};
        if (api__visible_sum(&reader, view, key, &votes) != 0)
            votes = 0;
    }
    crdt_scope_destroy(&view);
    return votes;
}

/*  Loads a candidate and tells whether it is shown: live, readable and matching the filter;
 *  then its boosts. */
static int s_load(node_server_t *self, const Engram__Request *req, const s_query_t *q,
                  api_reply_t *r, s_candidate_t *c, bool *shown)
{
    *shown = false;
    int rc = node_store_entry_get(self->store, c->scope->sid, c->key, c->elem, c->dot, &c->type,
                                  &c->hlc, &c->data, &c->len);
    if (rc == ENGRAM_ENOTFOUND)
        return 0;
    if (rc)
        return api__fail(r, rc, "cannot read a result: %s", engram_strerror(rc));
    crdt_value_t *v = NULL;
    if (crdt_value_decode(c->data, c->len, &v) != 0)
        return 0;
    int64_t now = api__now_ms();
    api_reader_t reader = {self, req->agent, req->user, c->scope->sid};
    bool live =
        (!v->expires_at_ms || (int64_t)v->expires_at_ms > now) && api__reader_may(&reader, v);
    uint64_t updated_ms = v->updated_hlc >> ENGRAM_HLC_LOGICAL_BITS;
    if (live && q->filter) {
        live = api__filter_matches(q->filter, c->key, v);
    }
    crdt_value_destroy(&v);
    if (!live)
        return 0;
    if (req->half_life_ms > 0)
        c->recency = 1 + search_recency(now - (int64_t)updated_ms, (uint64_t)req->half_life_ms);
    if (req->votes) {
        c->votes = s_votes(self, req, c);
        c->usefulness = 1 + tanh((double)c->votes / 4) / 2;
    }
    c->score = c->base * c->recency * c->usefulness;
    *shown = true;
    return 0;
}

/*  The parts of a score, as JSON. */
static char *s_explain(const s_query_t *q, const s_candidate_t *c)
{
    json_t *doc = json_pack("{s:s, s:f, s:f}", "mode", s_mode_names[q->mode], "score", c->score,
                            "base", c->base);
    if (doc && c->text) {
        const node_search_hits_t *hits = &c->scope->text;
        json_t *parts = json_array();
        for (size_t t = 0; parts && t < q->terms.n; t++) {
            if (!c->text->tf[t])
                continue;
            double idf = search_bm25_idf(hits->docs, hits->df[t]);
            json_array_append_new(
                parts,
                json_pack("{s:s, s:i, s:I, s:f, s:f}", "term", q->terms.terms[t], "tf",
                          (int)c->text->tf[t], "df", (json_int_t)hits->df[t], "idf", idf, "score",
                          search_bm25_term(idf, c->text->tf[t], c->text->dl, hits->avgdl)));
        }
        json_object_set_new(doc, "bm25",
                            json_pack("{s:f, s:I, s:I, s:f, s:I, s:f, s:f, s:o}", "score",
                                      c->text->bm25, "rank", (json_int_t)c->text_rank, "docs",
                                      (json_int_t)hits->docs, "avgdl", hits->avgdl, "dl",
                                      (json_int_t)c->text->dl, "k1", SEARCH_BM25_K1, "b",
                                      SEARCH_BM25_B, "terms", parts));
    }
    if (doc && c->vector)
        json_object_set_new(doc, "vector",
                            json_pack("{s:f, s:I}", "cosine", c->vector->cosine, "rank",
                                      (json_int_t)c->vector_rank));
    if (doc && q->mode == MODE_HYBRID)
        json_object_set_new(doc, "rrf", json_pack("{s:f}", "k", SEARCH_RRF_K));
    if (doc && c->recency != 1)
        json_object_set_new(doc, "recency", json_real(c->recency));
    if (doc && c->usefulness != 1)
        json_object_set_new(
            doc, "usefulness",
            json_pack("{s:f, s:I}", "factor", c->usefulness, "votes", (json_int_t)c->votes));
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(doc);
    return text;
}

/*  The reply's item for a shown candidate. */
static int s_item(node_server_t *self, const Engram__Request *req, const s_query_t *q,
                  api_reply_t *r, const s_candidate_t *c)
{
    Engram__Item *item = api__add_item(r);
    if (!item)
        return api__fail(r, ENGRAM_ENOMEM, "out of memory");
    api_reader_t reader = {self, req->agent, req->user, c->scope->sid};
    crdt_entry_view_t view = {c->elem, c->dot.node, c->dot.n, c->hlc, c->data, c->len};
    if (!api__item_from_value(r, item, &view, c->type == CRDT_LOG ? "log" : "reg", api__now_ms(),
                              &reader)) {
        r->msg.n_items--; /* expired since it was loaded */
        return 0;
    }
    item->key = api__str(&r->arena, c->key);
    item->scope = api__str(&r->arena, c->scope->name);
    item->score = c->score;
    if (req->explain) {
        item->explain_json = api__keep(&r->arena, s_explain(q, c));
        if (!item->explain_json)
            return api__fail(r, ENGRAM_ENOMEM, "out of memory");
    }
    return item->key && item->scope ? 0 : api__fail(r, ENGRAM_ENOMEM, "out of memory");
}

/*  Each scope's keyword hits: in keyword mode its best `limit` (node_store_search_top); in
 *  hybrid mode every one (RRF needs each vector hit's text rank). */
static int s_search_text(node_server_t *self, const Engram__Request *req, const s_query_t *q,
                         api_reply_t *r, s_scopes_t *list, size_t limit)
{
    for (size_t i = 0; i < list->n; i++) {
        s_scope_t *scope = &list->scopes[i];
        s_reader_t reader = {self, req, scope->sid};
        const char *const *terms = (const char *const *)q->terms.terms;
        node_search_hits_free(&scope->text);
        int rc = q->mode == MODE_KEYWORD
                     ? node_store_search_top(self->store, scope->sid, terms, q->terms.n, limit,
                                             s_visible, &reader, &scope->text)
                     : node_store_search_terms(self->store, scope->sid, terms, q->terms.n,
                                               s_visible, &reader, &scope->text);
        if (rc)
            return api__fail(r, rc, "cannot search %s: %s", scope->name, engram_strerror(rc));
    }
    return 0;
}

/*  Walks the first `exact` candidates of the ranking (those it is sure of), best first,
 *  loading each: the first `want` shown move to the front of ranked, with their data (*shown
 *  counts them) as long as their values stay within ENGRAM_MAX_PAGE_BYTES (the first always
 *  keeps it). Past that bound, an unboosted walk ends (the reply holds no more), and a
 *  boosted one goes on without the data, which s_search loads again for a candidate that the
 *  boosts bring into the reply. *ran_out: the walk ended there, not at `want`, that bound,
 *  the threshold or SEARCH_MAX_EXAMINED. */
static int s_walk(node_server_t *self, const Engram__Request *req, const s_query_t *q,
                  api_reply_t *r, s_candidates_t *ranked, size_t exact, size_t want, size_t *shown,
                  bool *ran_out)
{
    int rc = 0;
    size_t i = 0, bytes = 0;
    *shown = 0;
    *ran_out = false;
    for (; rc == 0 && i < exact && i < SEARCH_MAX_EXAMINED && *shown < want; i++) {
        s_candidate_t *c = &ranked->items[i];
        if (!q->boosted && req->threshold != 0 && c->base < req->threshold)
            return 0;
        bool ok = false;
        rc = s_load(self, req, q, r, c, &ok);
        bool full = ok && *shown && bytes + c->len > ENGRAM_MAX_PAGE_BYTES;
        if (!ok || full) {
            free(c->data);
            c->data = NULL;
            if (full && !q->boosted)
                return 0; /* the values shown so far are what a reply holds */
            if (!ok)
                continue;
        } else {
            bytes += c->len;
        }
        if ((*shown)++ != i) { /* the shown ones move to the front, with their data */
            ranked->items[*shown - 1] = *c;
            c->data = NULL;
        }
    }
    *ran_out = rc == 0 && i == exact && i < SEARCH_MAX_EXAMINED && *shown < want;
    return rc;
}

static void s_candidates_free(s_candidates_t *ranked, size_t shown)
{
    for (size_t i = 0; i < shown; i++)
        free(ranked->items[i].data);
    free(ranked->items);
    memset(ranked, 0, sizeof *ranked);
}

static int s_search(node_server_t *self, const Engram__Request *req, api_reply_t *r)
{
    s_query_t q = {0};
    int rc = s_check(self, req, r, &q);
    s_scopes_t list = {0};
    if (rc == 0)
        rc = s_scopes(self, req, r, &list);
    for (size_t i = 0; rc == 0 && q.embedding && i < list.n; i++) {
        s_scope_t *scope = &list.scopes[i];
        s_reader_t reader = {self, req, scope->sid};
        rc = node_store_search_vector(self->store, scope->sid, q.embedding, q.dims, SEARCH_POOL,
                                      s_visible, &reader, &scope->vector);
        if (rc)
            rc = api__fail(r, rc, "cannot search %s: %s", scope->name, engram_strerror(rc));
    }
    if (rc == 0 && q.embedding)
        rc = s_check_dims(&q, &list, r);
    /* Walk best first: without boosts the first top_k shown are the answer; with them, the
     * best SEARCH_POOL shown are boosted and ranked again. A keyword search asks each scope
     * for its best `limit`, which ranks the best `limit` of all exactly; when the walk turns
     * down so many that it runs out while a scope has more, it asks again for twice as many
     * (up to SEARCH_MAX_EXAMINED, as many as it would walk). */
    size_t want = q.boosted ? (q.top_k > SEARCH_POOL ? q.top_k : SEARCH_POOL) : q.top_k;
    size_t limit = want, shown = 0;
    s_candidates_t ranked = {0};
    for (bool again = true; rc == 0 && again;) {
        s_candidates_free(&ranked, shown);
        shown = 0;
        if (q.terms.n)
            rc = s_search_text(self, req, &q, r, &list, limit);
        if (rc == 0 && (rc = s_rank(&q, &list, &ranked)) != 0)
            rc = api__fail(r, rc, "out of memory");
        /* A scope that has more answered `limit`: past the first `limit` of the ranking, its
         * next best, not fetched, might come before the candidates of other scopes. */
        bool more = false, ran_out = false;
        for (size_t i = 0; i < list.n; i++)
            more |= list.scopes[i].text.more;
        size_t exact = more && limit < ranked.n ? limit : ranked.n;
        if (rc == 0)
            rc = s_walk(self, req, &q, r, &ranked, exact, want, &shown, &ran_out);
        again = ran_out && more && limit < SEARCH_MAX_EXAMINED;
        limit = 2 * limit < SEARCH_MAX_EXAMINED ? 2 * limit : SEARCH_MAX_EXAMINED;
    }
    if (q.boosted && shown)
        qsort(ranked.items, shown, sizeof *ranked.items, s_cmp_score);
    /* the reply's values within ENGRAM_MAX_PAGE_BYTES too (the first always shows) */
    size_t bytes = 0;
    for (size_t i = 0; rc == 0 && i < shown && i < q.top_k; i++) {
        s_candidate_t *c = &ranked.items[i];
        if (req->threshold != 0 && c->score < req->threshold)
            continue;
        bool ok = c->data != NULL;
        if (!ok) { /* its data again, with the score it was ranked by */
            s_candidate_t ranked_as = *c;
            rc = s_load(self, req, &q, r, c, &ok);
            c->score = ranked_as.score;
            c->recency = ranked_as.recency;
            c->usefulness = ranked_as.usefulness;
            c->votes = ranked_as.votes;
        }
        if (rc == 0 && !ok) {
            free(c->data); /* expired or hidden since the walk */
            c->data = NULL;
            continue;
        }
        if (rc != 0 || (r->msg.n_items && bytes + c->len > ENGRAM_MAX_PAGE_BYTES))
            break;
        bytes += c->len;
        rc = s_item(self, req, &q, r, c);
    }
    s_candidates_free(&ranked, shown);
    s_scopes_free(&list);
    s_query_fini(&q);
    return rc;
}

int api__search(node_server_t *self, const Engram__Request *req, api_reply_t *r)
{
    return s_search(self, req, r);
}

/*  --- CONTEXT ----------------------------------------------------------------------------- */

/*  A context block's budget is counted as one token per SEARCH_BYTES_PER_TOKEN bytes of UTF-8
 *  (the rule of thumb for English with GPT-style tokenizers), rounded up. */
#define SEARCH_BYTES_PER_TOKEN 4
/*  Candidates a context considers, at least. */
#define SEARCH_CONTEXT_POOL       50
#define SEARCH_MAX_CONTEXT_TOKENS 100000

static size_t s_tokens(size_t bytes)
{
    return (bytes + SEARCH_BYTES_PER_TOKEN - 1) / SEARCH_BYTES_PER_TOKEN;
}

/*  The text a duplicate is recognised by: NFKC, case-folded, runs of white space as one. */
static char *s_fingerprint(const uint8_t *text, size_t len)
{
    utf8proc_uint8_t *folded = NULL;
    utf8proc_ssize_t n = utf8proc_map(text, (utf8proc_ssize_t)len, &folded,
                                      UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE |
                                          UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
    if (n < 0)
        return NULL;
    size_t out = 0;
    bool space = true;
    for (utf8proc_ssize_t i = 0; i < n; i++) {
        bool is_space =
            folded[i] == ' ' || folded[i] == '\t' || folded[i] == '\n' || folded[i] == '\r';
        if (is_space && !space)
            folded[out++] = ' ';
        else if (!is_space)
            folded[out++] = folded[i];
        space = is_space;
    }
    while (out && folded[out - 1] == ' ')
        out--;
    folded[out] = '\0';
    return (char *)folded;
}

/*  Appends one memory's line: "- WHEN UTC, AUTHOR in SCOPE (KEY): TEXT", the text on one line
 *  (line breaks as spaces). */
static char *s_context_line(const Engram__Item *item)
{
    char when[32] = "?";
    time_t seconds = (time_t)((item->hlc >> ENGRAM_HLC_LOGICAL_BITS) / 1000);
    struct tm tm;
    if (gmtime_r(&seconds, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
    char *text = malloc(item->value.len + 1);
    if (!text)
        return NULL;
    for (size_t i = 0; i < item->value.len; i++) {
        uint8_t c = item->value.data[i];
        text[i] = c == '\n' || c == '\r' || c == '\t' ? ' ' : (char)c;
    }
    text[item->value.len] = '\0';
    char *line =
        zsys_sprintf("- %s, %s in %s (%s): %s\n", when, item->author[0] ? item->author : "unknown",
                     item->scope, item->key, text);
    free(text);
    return line;
}

int api__context(node_server_t *self, const Engram__Request *req, api_reply_t *r)
{
    if (req->tokens == 0 || req->tokens > SEARCH_MAX_CONTEXT_TOKENS)
        return api__fail(r, ENGRAM_EINVAL,
                         "a context needs a budget: tokens from 1 to %d (one token per %d bytes)",
                         SEARCH_MAX_CONTEXT_TOKENS, SEARCH_BYTES_PER_TOKEN);
    Engram__Request wide = *req;
    if (wide.top_k < SEARCH_CONTEXT_POOL)
        wide.top_k = SEARCH_CONTEXT_POOL;
    int rc = s_search(self, &wide, r);
    if (rc)
        return rc;
    char *header =
        zsys_sprintf("Memories relevant to \"%s\" (best first; when, who, where):\n", req->query);
    if (!header)
        return api__fail(r, ENGRAM_ENOMEM, "out of memory");
    size_t budget = (size_t)req->tokens * SEARCH_BYTES_PER_TOKEN;
    size_t used = strlen(header);
    zchunk_t *block = zchunk_new(header, used);
    zstr_free(&header);
    zhash_t *seen = zhash_new();
    size_t kept = 0, top_k = req->top_k ? req->top_k : ENGRAM_DEFAULT_TOP_K;
    for (size_t i = 0; block && seen && i < r->msg.n_items && kept < top_k; i++) {
        Engram__Item *item = r->msg.items[i];
        if (!item->value.len || memchr(item->value.data, '\0', item->value.len) ||
            !node_json_utf8_valid((const char *)item->value.data, item->value.len))
            continue; /* not text (a memory found by its embedding only): nothing to show */
        char *print = s_fingerprint(item->value.data, item->value.len);
        bool twice = print && zhash_lookup(seen, print);
        if (print && !twice)
            zhash_insert(seen, print, (void *)1);
        free(print);
        if (twice)
            continue; /* a duplicate of a better one: collapsed into it */
        char *line = s_context_line(item);
        size_t len = line ? strlen(line) : 0;
        if (line && used + len <= budget) {
            zchunk_extend(block, line, len);
            used += len;
            r->msg.items[kept++] = item;
        }
        zstr_free(&line);
        if (used + 2 > budget) /* not even a line's start fits */
            break;
    }
    zhash_destroy(&seen);
    r->msg.n_items = kept;
    if (!block)
        return api__fail(r, ENGRAM_ENOMEM, "out of memory");
    if (used > budget) /* the header alone is over the budget */
        zchunk_set(block, "", 0);
    char *text = api__keep(&r->arena, malloc(zchunk_size(block) + 1));
    if (text) {
        memcpy(text, zchunk_data(block), zchunk_size(block));
        text[zchunk_size(block)] = '\0';
    }
    zchunk_destroy(&block);
    if (!text)
        return api__fail(r, ENGRAM_ENOMEM, "out of memory");
    r->msg.context = text;
    r->msg.number = (int64_t)s_tokens(strlen(text));
    return 0;
}
