/*  SEARCH: memories found by their words, within the reader's rights.
 *
 *  The query is split into terms as the index splits texts (node/search/text.h); each scope
 *  searched answers with BM25 over its postings (node_store_search_terms), counting and
 *  scoring only the documents whose provenance the reader may see (the retrospective check,
 *  decided once per provenance class). Results of all scopes are ranked together by score
 *  (ties: scope, key, dot), then walked in that order: each is loaded, checked again (expiry,
 *  provenance), matched against the filter and the threshold, until top_k are kept.
 *
 *  Scopes: those named (each must be readable, as for GET: else ENGRAM_EDENIED), or by
 *  default every shared scope this node holds that the agent may read for its user, and its
 *  private scope. A scope the agent may not read is never searched.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/value.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/api/internal.h"
#include "node/search/filter.h"
#include "node/search/text.h"

/*  The longest query text. */
#define SEARCH_MAX_QUERY_BYTES 4096
/*  At most this many scopes are named in one search. */
#define SEARCH_MAX_SCOPES 64

typedef struct {
    char sid[MAX_SCOPE_BYTES + 2];
    char *name; /* as the agent names it: "private" or the scope */
    node_search_hits_t hits;
} s_scope_t;

typedef struct {
    s_scope_t *scopes;
    size_t n;
    size_t cap;
} s_scopes_t;

/*  One ranked candidate. */
typedef struct {
    const s_scope_t *scope;
    const node_search_hit_t *hit;
} s_candidate_t;

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

static int s_add_scope(s_scopes_t *list, const char *sid, const char *name)
{
    if (list->n == list->cap) {
        size_t grown = list->cap ? 2 * list->cap : 8;
        s_scope_t *more = realloc(list->scopes, grown * sizeof *more);
        if (!more)
            return ENGRAM_ENOMEM;
        list->scopes = more;
        list->cap = grown;
    }
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
        node_search_hits_free(&list->scopes[i].hits);
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

static int s_cmp_candidate(const void *a, const void *b)
{
    const s_candidate_t *x = a, *y = b;
    if (x->hit->bm25 != y->hit->bm25)
        return x->hit->bm25 > y->hit->bm25 ? -1 : 1;
    int c = strcmp(x->scope->sid, y->scope->sid);
    if (c == 0)
        c = strcmp(x->hit->key, y->hit->key);
    if (c == 0)
        c = strcmp(x->hit->elem, y->hit->elem);
    if (c == 0)
        c = x->hit->dot.node != y->hit->dot.node ? (x->hit->dot.node < y->hit->dot.node ? -1 : 1)
            : x->hit->dot.n != y->hit->dot.n     ? (x->hit->dot.n < y->hit->dot.n ? -1 : 1)
                                                 : 0;
    return c;
}

/*  The parts of a BM25 score, as JSON. */
static char *s_explain(const s_candidate_t *c, const search_terms_t *terms)
{
    const node_search_hits_t *hits = &c->scope->hits;
    json_t *parts = json_array();
    for (size_t t = 0; parts && t < terms->n; t++) {
        if (!c->hit->tf[t])
            continue;
        double idf = search_bm25_idf(hits->docs, hits->df[t]);
        json_array_append_new(
            parts, json_pack("{s:s, s:i, s:I, s:f, s:f}", "term", terms->terms[t], "tf",
                             (int)c->hit->tf[t], "df", (json_int_t)hits->df[t], "idf", idf, "score",
                             search_bm25_term(idf, c->hit->tf[t], c->hit->dl, hits->avgdl)));
    }
    json_t *doc =
        json_pack("{s:f, s:f, s:I, s:f, s:I, s:f, s:f, s:o}", "score", c->hit->bm25, "bm25",
                  c->hit->bm25, "docs", (json_int_t)hits->docs, "avgdl", hits->avgdl, "dl",
                  (json_int_t)c->hit->dl, "k1", SEARCH_BM25_K1, "b", SEARCH_BM25_B, "terms", parts);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(doc);
    return text;
}

/*  Whether the candidate's stored value passes the filter; *item filled when it does. */
static int s_take(node_server_t *self, const Engram__Request *req, api_reply_t *r,
                  const s_candidate_t *c, const search_filter_t *filter,
                  const search_terms_t *terms, bool *taken)
{
    *taken = false;
    crdt_type_id_t type;
    uint64_t hlc;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = node_store_entry_get(self->store, c->scope->sid, c->hit->key, c->hit->elem,
                                  c->hit->dot, &type, &hlc, &data, &len);
    if (rc == ENGRAM_ENOTFOUND)
        return 0;
    if (rc)
        return api__fail(r, rc, "cannot read a result: %s", engram_strerror(rc));
    crdt_value_t *v = NULL;
    bool passes = crdt_value_decode(data, len, &v) == 0;
    if (passes && filter) {
        search_record_t record = {v->author,
                                  v->user,
                                  c->hit->key,
                                  v->created_hlc >> ENGRAM_HLC_LOGICAL_BITS,
                                  v->updated_hlc >> ENGRAM_HLC_LOGICAL_BITS,
                                  v->meta_json};
        passes = search_filter_match(filter, &record);
    }
    crdt_value_destroy(&v);
    Engram__Item *item = passes ? api__add_item(r) : NULL;
    if (passes && !item)
        rc = api__fail(r, ENGRAM_ENOMEM, "out of memory");
    if (item) {
        api_reader_t reader = {self, req->agent, req->user, c->scope->sid};
        crdt_entry_view_t view = {c->hit->elem, c->hit->dot.node, c->hit->dot.n, hlc, data, len};
        item->key = api__str(&r->arena, c->hit->key);
        item->scope = api__str(&r->arena, c->scope->name);
        item->score = c->hit->bm25;
        if (api__item_from_value(r, item, &view, type == CRDT_LOG ? "log" : "reg", api__now_ms(),
                                 &reader)) {
            *taken = true;
            if (req->explain) {
                char *explain = s_explain(c, terms);
                item->explain_json = api__keep(&r->arena, explain);
                if (!item->explain_json)
                    rc = api__fail(r, ENGRAM_ENOMEM, "out of memory");
            }
        } else {
            r->msg.n_items--; /* expired, or hidden by its provenance */
        }
    }
    free(data);
    return rc;
}

static int s_check(node_server_t *self, const Engram__Request *req, api_reply_t *r,
                   search_filter_t **filter)
{
    (void)self;
    *filter = NULL;
    if (strlen(req->query) > SEARCH_MAX_QUERY_BYTES)
        return api__fail(r, ENGRAM_ETOOBIG, "a query has at most %d bytes", SEARCH_MAX_QUERY_BYTES);
    if (req->top_k > ENGRAM_MAX_TOP_K)
        return api__fail(r, ENGRAM_EINVAL, "top_k may be at most %d", ENGRAM_MAX_TOP_K);
    if (!isfinite(req->threshold) || req->threshold < 0)
        return api__fail(r, ENGRAM_EINVAL, "the threshold is a score: a finite number, 0 or more");
    if (req->mode[0] && strcmp(req->mode, "keyword") != 0)
        return api__fail(r, ENGRAM_EINVAL,
                         "search mode '%s' is not served by this node: it ranks by words "
                         "(keyword)",
                         api__quote(r, req->mode));
    if (req->embedding.len)
        return api__fail(r, ENGRAM_EINVAL,
                         "this node ranks by words only: a query embedding is not served yet");
    if (req->filter_json[0]) {
        char why[200];
        int rc = search_filter_parse(req->filter_json, strlen(req->filter_json), filter, why,
                                     sizeof why);
        if (rc)
            return api__fail(r, rc, "the filter is not valid: %s", why);
    }
    return 0;
}

int api__search(node_server_t *self, const Engram__Request *req, api_reply_t *r)
{
    search_filter_t *filter = NULL;
    int rc = s_check(self, req, r, &filter);
    search_terms_t terms = {0};
    if (rc == 0) {
        rc = search_tokenize(node_store_tokenizer(self->store), req->query, strlen(req->query),
                             &terms);
        if (rc)
            rc = api__fail(r, rc, "cannot split the query into words: %s", engram_strerror(rc));
        else if (terms.n == 0)
            rc = api__fail(r, ENGRAM_EINVAL,
                           "the query has no words to search for (letters or digits)");
    }
    s_scopes_t list = {0};
    if (rc == 0)
        rc = s_scopes(self, req, r, &list);
    size_t total = 0;
    for (size_t i = 0; rc == 0 && i < list.n; i++) {
        s_reader_t reader = {self, req, list.scopes[i].sid};
        rc = node_store_search_terms(self->store, list.scopes[i].sid,
                                     (const char *const *)terms.terms, terms.n, s_visible, &reader,
                                     &list.scopes[i].hits);
        if (rc)
            rc = api__fail(r, rc, "cannot search %s: %s", list.scopes[i].name, engram_strerror(rc));
        else
            total += list.scopes[i].hits.n;
    }
    s_candidate_t *ranked = rc == 0 && total ? calloc(total, sizeof *ranked) : NULL;
    if (rc == 0 && total && !ranked)
        rc = api__fail(r, ENGRAM_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; ranked && i < list.n; i++)
        for (size_t h = 0; h < list.scopes[i].hits.n; h++)
            ranked[n++] = (s_candidate_t){&list.scopes[i], &list.scopes[i].hits.hits[h]};
    if (ranked)
        qsort(ranked, n, sizeof *ranked, s_cmp_candidate);
    size_t top_k = req->top_k ? req->top_k : ENGRAM_DEFAULT_TOP_K, kept = 0;
    for (size_t i = 0; rc == 0 && i < n && kept < top_k; i++) {
        if (ranked[i].hit->bm25 < req->threshold)
            break;
        bool taken = false;
        rc = s_take(self, req, r, &ranked[i], filter, &terms, &taken);
        kept += taken;
    }
    free(ranked);
    s_scopes_free(&list);
    search_terms_free(&terms);
    search_filter_destroy(&filter);
    return rc;
}
