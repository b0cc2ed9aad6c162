/*  node/api token: causal tokens, issued with every reply and waited for by reads.
 *
 *  A token (proto/api.proto Token) names the scope a reply touched with its context, and the
 *  issuing node's hybrid logical clock. A read that carries one (`after`) is answered once
 *  this node's context of every scope it names covers the token's; the node observes the
 *  token's clock, so that what the holder writes here next is stamped after what it read
 *  elsewhere.
 *
 *  A token is decoded once, when its read arrives (api__token_open): it must be at most
 *  API_TOKEN_MAX_BYTES, name at most API_TOKEN_MAX_SCOPES scopes (a request touches one),
 *  each one the agent may read, and carry a clock this node accepts; a parked read keeps the
 *  decoded contexts (api_token_t), never the encoded token, and api__token_reached compares
 *  them without decoding anything.
 */
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/codec.h"
#include "crdt/ctx.h"
#include "crdt/hlc.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/api/internal.h"

/*  The reply's causal token: the context of the scope it touched and the node's clock. */
int api__token(node_server_t *self, api_reply_t *r)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = crdt_ctx_encode(node_store_ctx(self->store, r->sid), &buf, &len);
    if (rc)
        return rc;
    api__keep(&r->arena, buf);
    Engram__ScopeVersion version = ENGRAM__SCOPE_VERSION__INIT;
    version.scope = (char *)r->scope;
    version.ctx.data = buf;
    version.ctx.len = len;
    Engram__ScopeVersion *versions[1] = {&version};
    Engram__Token token = ENGRAM__TOKEN__INIT;
    token.schema_major = ENGRAM_SCHEMA_MAJOR;
    token.schema_minor = ENGRAM_SCHEMA_MINOR;
    token.scopes = versions;
    token.n_scopes = 1;
    token.hlc = node_store_hlc_last(self->store);
    size_t size = engram__token__get_packed_size(&token);
    uint8_t *out = api__keep(&r->arena, malloc(size ? size : 1));
    if (!out)
        return ENGRAM_ENOMEM;
    engram__token__pack(&token, out);
    r->msg.token.data = out;
    r->msg.token.len = size;
    return 0;
}

void api__token_close(api_token_t *token)
{
    for (size_t i = 0; i < token->n; i++)
        crdt_ctx_destroy(&token->scopes[i].want);
    token->n = 0;
}

/*  Resolves, checks and decodes the scopes of an unpacked token into token. */
static int s_open_scopes(node_server_t *self, const Engram__Request *req,
                         const Engram__Token *unpacked, api_reply_t *r, api_token_t *token)
{
    for (size_t i = 0; i < unpacked->n_scopes; i++) {
        const Engram__ScopeVersion *version = unpacked->scopes[i];
        Engram__Request scoped = *req;
        scoped.scope = version->scope;
        api_token_scope_t *scope = &token->scopes[token->n];
        int rc = api__resolve(&scoped, scope->sid, r);
        if (rc)
            return rc;
        if (!node_acl_may_read_scope(self->acl, req->agent, req->user, scope->sid, api__acl_now()))
            return api__fail(r, ENGRAM_EDENIED,
                             "the causal token names %s, which agent '%s' acting for '%s' "
                             "may not read",
                             api__quote(r, version->scope), req->agent, req->user);
        if (crdt_ctx_decode(version->ctx.data, version->ctx.len, &scope->want) != 0)
            return api__fail(r, ENGRAM_EINVAL, "the causal token is malformed");
        token->n++;
    }
    return 0;
}

/*  Decodes the request's token (req->after) once into token; 0, or an error (in r) for a
 *  token that is not one, too large, naming too many scopes or one the agent may not read. On
 *  success the caller closes token (api__token_close); on error it holds nothing. */
int api__token_open(node_server_t *self, const Engram__Request *req, api_reply_t *r,
                    api_token_t *token)
{
    memset(token, 0, sizeof *token);
    if (req->after.len > API_TOKEN_MAX_BYTES)
        return api__fail(r, ENGRAM_ETOOBIG,
                         "the causal token has %zu bytes; a token is at most %d (it names the "
                         "scope a read touches)",
                         req->after.len, API_TOKEN_MAX_BYTES);
    Engram__Token *unpacked = engram__token__unpack(NULL, req->after.len, req->after.data);
    if (!unpacked)
        return api__fail(r, ENGRAM_EINVAL, "the causal token is malformed");
    int rc = 0;
    if (unpacked->schema_major > ENGRAM_SCHEMA_MAJOR)
        rc = api__fail(r, ENGRAM_EVERSION, "the causal token's schema %u is newer than %d",
                       unpacked->schema_major, ENGRAM_SCHEMA_MAJOR);
    else if (unpacked->n_scopes > API_TOKEN_MAX_SCOPES)
        rc = api__fail(r, ENGRAM_EINVAL,
                       "the causal token names %zu scopes; a read touches one, so a token may "
                       "name at most %d",
                       unpacked->n_scopes, API_TOKEN_MAX_SCOPES);
    else
        rc = s_open_scopes(self, req, unpacked, r, token);
    token->hlc = unpacked->hlc;
    engram__token__free_unpacked(unpacked, NULL);
    if (rc)
        api__token_close(token);
    return rc;
}

/*  Whether this node has seen everything the token covers. */
bool api__token_reached(node_server_t *self, const api_token_t *token)
{
    for (size_t i = 0; i < token->n; i++) {
        const crdt_ctx_t *want = token->scopes[i].want;
        const crdt_ctx_t *have = node_store_ctx(self->store, token->scopes[i].sid);
        if (!crdt_ctx_is_empty(want) && (!have || !crdt_ctx_covers(have, want)))
            return false;
    }
    return true;
}

/*  Observes the token's clock (node_store_hlc_observe), so that the holder's next write here
 *  is stamped after what it read, when that clock is at most a quarter of the drift allowed
 *  ahead of this node's wall clock. A token is the client's to forge: a clock further ahead is
 *  not adopted (else one agent could push this node's stamps to the edge of what its peers
 *  take, and every peer a little behind would refuse every write made here), and the request
 *  goes on: a read is causal all the same, since it waits until this node holds what the
 *  token covers, and applying those writes observed their stamps, which came from peers. */
int api__token_observe(node_server_t *self, const api_token_t *token, api_reply_t *r)
{
    uint64_t now = (uint64_t)api__now_ms();
    uint64_t lead = node_store_max_drift(self->store) / 4;
    if (!token->hlc || crdt_hlc_physical_ms(token->hlc) > now + lead)
        return 0; /* no clock (an older node's token), or too far ahead to take from a client */
    int rc = node_store_hlc_observe(self->store, token->hlc, now);
    return rc ? api__fail(r, rc, "cannot take the token's clock: %s", engram_strerror(rc)) : 0;
}
