/*  mcp_graph: the official MCP memory server's knowledge graph (@modelcontextprotocol/
 *  server-memory: its nine tools, their schemas, results and semantics) kept in an engram scope
 *  as CRDTs, so that agents on different hosts edit one graph and no write is lost.
 *
 *  The graph in a scope, under MCP_GRAPH_KEY_PREFIX, all add-wins sets of texts (a text in a
 *  set: below, "a text in a set"):
 *      kg/entities           entity names
 *      kg/e/HASH/type        the entity's type (HASH: 32 hex digits of the name's BLAKE2b-128,
 *                            so any name makes a valid key)
 *      kg/e/HASH/obs         the entity's observations
 *      kg/relations          relations, each the compact JSON array [from, relationType, to]
 *  An entity exists while its name is in kg/entities. Its type and observations are written
 *  before its name, so a node that sees the name (deltas of one node apply in order) sees them
 *  too. Concurrent creations of one name with different types keep both types in the set; the
 *  graph shows the first in element order, the same on every node. The graph is sets only: no
 *  register or log, so memory search, list filters and forget (which work on memories: registers
 *  and logs) never take a graph's parts for memories. A creation first removes what a deletion
 *  racing with a write elsewhere, or a creation cut short, left under the name.
 *
 *  A write tool checks its arguments whole before it writes (the schema, then every text at
 *  most MCP_GRAPH_MAX_TEXT_BYTES), so bad arguments write nothing; a failure of the node midway
 *  (unavailable, denied) may leave the entities, relations or observations written before it.
 *
 *  Semantics kept from the official server: duplicates (an entity's name, a relation's three
 *  fields, an observation of an entity) are checked against what is stored; add_observations
 *  on a missing entity fails whole and writes nothing; deleting an entity deletes the
 *  relations touching it; search_nodes matches a case-insensitive substring of name, type or
 *  an observation; open_nodes and search_nodes return the relations touching their entities.
 *  Differences: the entities, relations and observations come in element order (the official
 *  server's come in insertion order, which it does not promise), and duplicates within one
 *  call collapse (a set holds an element once), so results list each new element once.
 *  A delete concurrent with an add_observations elsewhere leaves that observation in the set
 *  of a deleted entity, until a creation of that name clears it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <utf8proc.h>

#include "node/cli/cli.h"
#include "node/cli/mcp.h"

#define S_ENTITIES         MCP_GRAPH_KEY_PREFIX "entities"
#define S_RELATIONS        MCP_GRAPH_KEY_PREFIX "relations"
#define S_HASH_BYTES       16
#define S_ENTITY_KEY_CHARS (sizeof MCP_GRAPH_KEY_PREFIX "e/" + 2 * S_HASH_BYTES + sizeof "/type")

/*  --- the graph in a scope ---------------------------------------------------------------- */

/*  The key of an entity's part ("type" or "obs"). */
static void s_entity_key(const char *name, const char *part, char key[S_ENTITY_KEY_CHARS])
{
    uint8_t hash[S_HASH_BYTES];
    crypto_generichash(hash, sizeof hash, (const uint8_t *)name, strlen(name), NULL, 0);
    char hex[2 * S_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
    snprintf(key, S_ENTITY_KEY_CHARS, MCP_GRAPH_KEY_PREFIX "e/%s/%s", hex, part);
}

/*  --- a text in a set ---------------------------------------------------------------------
 *
 *  A set element is 1 to ENGRAM_MAX_KEY_BYTES bytes without control characters; the graph's
 *  texts are any strings (empty, long, multi-line), so each is stored as an element that says
 *  where the text is: "t:TEXT" (the text itself, when it fits), or "h:HEX" (HEX: the text's
 *  BLAKE2b-128; the text in the set SETKEY/HEX, cut into chunks of S_CHUNK_BYTES, each the
 *  element "NNNNNN:BASE64" (its index, then its bytes), written before the element and
 *  deleted after it). So the graph holds sets only. A text whose chunks have not all arrived
 *  (they replicate as one delta with the element, but a read may race a write) does not hash
 *  to HEX and is left out until they have. Every function below takes and gives texts. */

#define S_INLINE             "t:"
#define S_HASHED             "h:"
#define S_TAG_BYTES          2
#define S_BLOB_KEY_BYTES     (S_ENTITY_KEY_CHARS + 2 * S_HASH_BYTES + 2)
#define S_CHUNK_BYTES        750 /* "NNNNNN:" and 1000 characters of base64: an element fits */
#define S_CHUNK_INDEX_DIGITS 6
#define S_CHUNK_ELEMENT_BYTES                                                                      \
    (S_CHUNK_INDEX_DIGITS + 1 +                                                                    \
     sodium_base64_ENCODED_LEN(S_CHUNK_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING))

static void s_hex_hash(const char *text, size_t len, char hex[2 * S_HASH_BYTES + 1])
{
    uint8_t hash[S_HASH_BYTES];
    crypto_generichash(hash, sizeof hash, (const uint8_t *)text, len, NULL, 0);
    sodium_bin2hex(hex, 2 * S_HASH_BYTES + 1, hash, sizeof hash);
}

/*  Whether text can stand in an element as it is: short enough, and no control character
 *  (text is well-formed UTF-8: jansson's strings are). */
static bool s_fits_inline(const char *text)
{
    size_t len = strlen(text);
    if (len + S_TAG_BYTES > ENGRAM_MAX_KEY_BYTES)
        return false;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)text;
    while (*p) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p, -1, &cp);
        if (n <= 0 || utf8proc_category(cp) == UTF8PROC_CATEGORY_CC)
            return false;
        p += n;
    }
    return true;
}

/*  The element of text in the set key (the caller frees it), and, for a hashed one, the key
 *  of its register in blob_key (else ""). NULL when memory runs out. */
static char *s_element(const char *key, const char *text, char blob_key[S_BLOB_KEY_BYTES])
{
    blob_key[0] = '\0';
    size_t len = strlen(text);
    char *element = malloc(S_TAG_BYTES + (len > 2 * S_HASH_BYTES ? len : 2 * S_HASH_BYTES) + 1);
    if (!element)
        return NULL;
    if (s_fits_inline(text)) {
        memcpy(element, S_INLINE, S_TAG_BYTES);
        memcpy(element + S_TAG_BYTES, text, len + 1);
    } else {
        memcpy(element, S_HASHED, S_TAG_BYTES);
        s_hex_hash(text, len, element + S_TAG_BYTES);
        snprintf(blob_key, S_BLOB_KEY_BYTES, "%s/%s", key, element + S_TAG_BYTES);
    }
    return element;
}

/*  The writes of the graph: libengram's, with their results (the causal tokens) dropped. A
 *  write's result is destroyed after the write: rc is the call, result where it put it. */
static int s_write_done(int rc, engram_result_t **result)
{
    engram_result_destroy(result);
    return rc;
}

static int s_delete(engram_t *engram, const char *scope, const char *key)
{
    engram_result_t *result = NULL;
    return s_write_done(engram_delete(engram, scope, key, &result), &result);
}

/*  An engram call whose ENOTFOUND means "already gone". */
static int s_gone(int rc)
{
    return rc == ENGRAM_ENOTFOUND ? 0 : rc;
}

/*  Writes text's chunks into the set blob_key. */
static int s_blob_write(engram_t *engram, const char *scope, const char *blob_key, const char *text)
{
    size_t len = strlen(text);
    int rc = 0;
    for (size_t at = 0, index = 0; rc == 0 && at < len; at += S_CHUNK_BYTES, index++) {
        char element[S_CHUNK_ELEMENT_BYTES];
        size_t n = len - at < S_CHUNK_BYTES ? len - at : S_CHUNK_BYTES;
        int head = snprintf(element, sizeof element, "%0*zu:", S_CHUNK_INDEX_DIGITS, index);
        sodium_bin2base64(element + head, sizeof element - (size_t)head,
                          (const unsigned char *)text + at, n,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        engram_result_t *result = NULL;
        rc = s_write_done(engram_set_add(engram, scope, blob_key, element, &result), &result);
    }
    return rc;
}

/*  The text whose chunks the set blob_key holds, if they hash to hex: a new string, or NULL
 *  (with rc 0 when the chunks are missing, incomplete or not this module's). */
static int s_blob_read(engram_t *engram, const char *scope, const char *blob_key, const char *hex,
                       json_t **text)
{
    engram_result_t *result = NULL;
    int rc = s_gone(engram_set_members(engram, scope, blob_key, &result));
    *text = NULL;
    size_t cap = result ? result->nitems * S_CHUNK_BYTES + 1 : 1, len = 0;
    unsigned char *bytes = rc == 0 ? malloc(cap) : NULL;
    if (rc == 0 && !bytes)
        rc = ENGRAM_ENOMEM;
    bool whole = rc == 0;
    /* members come in element order, which the zero-padded indexes make the chunks' order */
    for (size_t i = 0; whole && result && i < result->nitems; i++) {
        const char *element = (const char *)result->items[i].value;
        char *end = NULL;
        unsigned long index = strtoul(element, &end, 10);
        size_t n = 0;
        whole = index == i && end == element + S_CHUNK_INDEX_DIGITS && *end == ':' &&
                sodium_base642bin(bytes + len, cap - len, end + 1, strlen(end + 1), NULL, &n, NULL,
                                  sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0;
        len += n;
    }
    char actual[2 * S_HASH_BYTES + 1];
    if (whole) {
        s_hex_hash((const char *)bytes, len, actual);
        if (strcmp(actual, hex) == 0 && !(*text = cli_json_bytes(bytes, len)))
            rc = ENGRAM_ENOMEM;
    }
    free(bytes);
    engram_result_destroy(&result);
    return rc;
}

static int s_set_add(engram_t *engram, const char *scope, const char *key, const char *text)
{
    char blob_key[S_BLOB_KEY_BYTES];
    char *element = s_element(key, text, blob_key);
    engram_result_t *result = NULL;
    int rc = element ? 0 : ENGRAM_ENOMEM;
    if (rc == 0 && *blob_key)
        rc = s_blob_write(engram, scope, blob_key, text);
    if (rc == 0)
        rc = s_write_done(engram_set_add(engram, scope, key, element, &result), &result);
    free(element);
    return rc;
}

static int s_set_remove(engram_t *engram, const char *scope, const char *key, const char *text)
{
    char blob_key[S_BLOB_KEY_BYTES];
    char *element = s_element(key, text, blob_key);
    engram_result_t *result = NULL;
    int rc = element ? 0 : ENGRAM_ENOMEM;
    if (rc == 0)
        rc = s_gone(s_write_done(engram_set_remove(engram, scope, key, element, &result), &result));
    if (rc == 0 && *blob_key)
        rc = s_gone(s_delete(engram, scope, blob_key));
    free(element);
    return rc;
}

/*  The texts of a set as a JSON array of strings (a missing set: empty). */
static int s_members(engram_t *engram, const char *scope, const char *key, json_t **members)
{
    engram_result_t *result = NULL;
    int rc = engram_set_members(engram, scope, key, &result);
    *members = json_array();
    if (rc == ENGRAM_ENOTFOUND)
        rc = 0;
    for (size_t i = 0; rc == 0 && result && i < result->nitems; i++) {
        const char *element = (const char *)result->items[i].value;
        json_t *member = NULL;
        if (strncmp(element, S_INLINE, S_TAG_BYTES) == 0)
            member = cli_json_bytes(result->items[i].value + S_TAG_BYTES,
                                    result->items[i].len - S_TAG_BYTES);
        else if (strncmp(element, S_HASHED, S_TAG_BYTES) == 0) {
            char blob_key[S_BLOB_KEY_BYTES];
            snprintf(blob_key, sizeof blob_key, "%s/%s", key, element + S_TAG_BYTES);
            rc = s_blob_read(engram, scope, blob_key, element + S_TAG_BYTES, &member);
            if (rc == 0 && !member)
                continue; /* its chunks are gone or not all here yet: not a member now */
        } else
            continue; /* not written by this module */
        if (!member || json_array_append_new(*members, member) != 0)
            rc = ENGRAM_ENOMEM;
    }
    engram_result_destroy(&result);
    if (!*members)
        rc = ENGRAM_ENOMEM;
    return rc;
}

/*  Removes every text of the set key (an entity's type or observations, left by a deletion
 *  that raced with a write elsewhere, or by a creation cut short). */
static int s_clear(engram_t *engram, const char *scope, const char *key)
{
    json_t *texts = NULL;
    int rc = s_members(engram, scope, key, &texts);
    size_t i;
    json_t *text;
    json_array_foreach(texts, i, text)
    {
        if (rc == 0)
            rc = s_set_remove(engram, scope, key, json_string_value(text));
    }
    json_decref(texts);
    return rc;
}

static bool s_contains(const json_t *strings, const char *s)
{
    size_t i;
    json_t *item;
    json_array_foreach(strings, i, item) if (strcmp(json_string_value(item), s) == 0) return true;
    return false;
}

/*  The entity named name, as the graph shows it: {name, entityType, observations}. */
static int s_entity(engram_t *engram, const char *scope, const char *name, json_t **entity)
{
    char key[S_ENTITY_KEY_CHARS];
    json_t *types = NULL, *observations = NULL;
    s_entity_key(name, "type", key);
    int rc = s_members(engram, scope, key, &types);
    s_entity_key(name, "obs", key);
    if (rc == 0)
        rc = s_members(engram, scope, key, &observations);
    /* concurrent creations with different types: the first in element order, on every node */
    json_t *type = json_array_size(types) > 0 ? json_array_get(types, 0) : NULL;
    *entity = rc == 0 ? json_pack("{s:s, s:s, s:O}", "name", name, "entityType",
                                  type ? json_string_value(type) : "", "observations", observations)
                      : NULL;
    json_decref(types);
    json_decref(observations);
    if (rc == 0 && !*entity)
        rc = ENGRAM_ENOMEM;
    return rc;
}

/*  A relation's element in kg/relations, and back. */
static char *s_relation_element(const char *from, const char *type, const char *to)
{
    json_t *triple = json_pack("[s, s, s]", from, type, to);
    char *element = triple ? json_dumps(triple, JSON_COMPACT) : NULL;
    json_decref(triple);
    return element;
}

static json_t *s_relation_of(const char *element)
{
    const char *from, *type, *to;
    json_t *triple = json_loads(element, 0, NULL);
    json_t *relation =
        json_unpack(triple, "[s, s, s]", &from, &type, &to) == 0
            ? json_pack("{s:s, s:s, s:s}", "from", from, "to", to, "relationType", type)
            : NULL;
    json_decref(triple);
    return relation;
}

static int s_relations(engram_t *engram, const char *scope, json_t **relations)
{
    json_t *elements = NULL;
    int rc = s_members(engram, scope, S_RELATIONS, &elements);
    *relations = json_array();
    size_t i;
    json_t *element;
    json_array_foreach(elements, i, element)
    {
        /* an element that is not a triple was not written by this module: not a relation */
        json_t *relation = s_relation_of(json_string_value(element));
        if (relation)
            json_array_append_new(*relations, relation);
    }
    json_decref(elements);
    if (!*relations)
        rc = ENGRAM_ENOMEM;
    return rc;
}

/*  The entities among names (NULL: all) that exist, and the relations touching them. */
static int s_subgraph(engram_t *engram, const char *scope, const json_t *names, json_t **graph)
{
    json_t *stored = NULL, *entities = json_array(), *relations = NULL, *touching = json_array();
    int rc = s_members(engram, scope, S_ENTITIES, &stored);
    size_t i;
    json_t *name;
    json_array_foreach(stored, i, name)
    {
        if (rc != 0)
            break;
        if (names && !s_contains(names, json_string_value(name)))
            continue;
        json_t *entity = NULL;
        rc = s_entity(engram, scope, json_string_value(name), &entity);
        if (rc == 0)
            json_array_append_new(entities, entity);
    }
    if (rc == 0)
        rc = s_relations(engram, scope, &relations);
    json_t *relation;
    json_array_foreach(relations, i, relation)
    {
        const char *from = json_string_value(json_object_get(relation, "from"));
        const char *to = json_string_value(json_object_get(relation, "to"));
        bool kept = !names;
        size_t j;
        json_t *entity;
        json_array_foreach(entities, j, entity)
        {
            const char *entity_name = json_string_value(json_object_get(entity, "name"));
            kept = kept || strcmp(entity_name, from) == 0 || strcmp(entity_name, to) == 0;
        }
        if (kept)
            json_array_append(touching, relation);
    }
    *graph = rc == 0 ? json_pack("{s:O, s:O}", "entities", entities, "relations", touching) : NULL;
    json_decref(stored);
    json_decref(entities);
    json_decref(relations);
    json_decref(touching);
    if (rc == 0 && !*graph)
        rc = ENGRAM_ENOMEM;
    return rc;
}

int mcp_graph_read(engram_t *engram, const char *scope, json_t **graph)
{
    return s_subgraph(engram, scope, NULL, graph);
}

/*  s lower-cased code point by code point, by utf8proc's simple mapping (NULL when memory runs
 *  out): as JavaScript's toLowerCase for all but its special cases (a final sigma, U+0130).
 *  s is well-formed UTF-8 (jansson's strings are). */
static char *s_lower(const char *s)
{
    size_t len = strlen(s);
    char *lower = malloc(4 * len + 1); /* a lower-case code point takes at most 4 bytes */
    if (!lower)
        return NULL;
    size_t at = 0;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    while (*p) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p, -1, &cp);
        if (n <= 0) {
            lower[at++] = (char)*p++;
            continue;
        }
        at += (size_t)utf8proc_encode_char(utf8proc_tolower(cp), (utf8proc_uint8_t *)lower + at);
        p += n;
    }
    lower[at] = '\0';
    return lower;
}

static bool s_matches(const char *text, const char *lower_query)
{
    char *lower = s_lower(text);
    bool found = lower && strstr(lower, lower_query) != NULL;
    free(lower);
    return found;
}

/*  The names of the entities whose name, type or an observation holds query, case aside. */
static json_t *s_search_names(const json_t *graph, const char *query)
{
    char *lower_query = s_lower(query);
    json_t *names = json_array();
    size_t i;
    json_t *entity;
    json_array_foreach(json_object_get(graph, "entities"), i, entity)
    {
        if (!lower_query || !names)
            break;
        bool hit = s_matches(json_string_value(json_object_get(entity, "name")), lower_query) ||
                   s_matches(json_string_value(json_object_get(entity, "entityType")), lower_query);
        size_t j;
        json_t *observation;
        json_array_foreach(json_object_get(entity, "observations"), j, observation) hit =
            hit || s_matches(json_string_value(observation), lower_query);
        if (hit)
            json_array_append(names, json_object_get(entity, "name"));
    }
    free(lower_query);
    return names;
}

/*  --- the tools ---------------------------------------------------------------------------- */

static const char *s_get(const json_t *object, const char *field)
{
    return json_string_value(json_object_get(object, field));
}

/*  Adds each string of values not in stored to the set key, appending it to added (and to
 *  stored, so a repeat within the call is not added twice). */
static int s_add_new(engram_t *engram, const char *scope, const char *key, const json_t *values,
                     json_t *stored, json_t *added)
{
    size_t i;
    json_t *value;
    json_array_foreach(values, i, value)
    {
        if (s_contains(stored, json_string_value(value)))
            continue;
        int rc = s_set_add(engram, scope, key, json_string_value(value));
        if (rc != 0)
            return rc;
        json_array_append(stored, value);
        json_array_append(added, value);
    }
    return 0;
}

/*  Removes an entity's type and observations (its name is not, or no longer, in kg/entities). */
static int s_clear_entity(engram_t *engram, const char *scope, const char *name)
{
    char key[S_ENTITY_KEY_CHARS];
    s_entity_key(name, "obs", key);
    int rc = s_clear(engram, scope, key);
    s_entity_key(name, "type", key);
    return rc == 0 ? s_clear(engram, scope, key) : rc;
}

/*  Writes a new entity: what a deletion racing with a write elsewhere, or a creation cut short,
 *  left under its name goes first, then its type and observations, then its name. */
static int s_create_entity(engram_t *engram, const char *scope, const json_t *entity)
{
    const char *name = s_get(entity, "name"), *type = s_get(entity, "entityType");
    char key[S_ENTITY_KEY_CHARS];
    int rc = s_clear_entity(engram, scope, name);
    s_entity_key(name, "type", key);
    if (rc == 0)
        rc = s_set_add(engram, scope, key, type);
    s_entity_key(name, "obs", key);
    json_t *stored = json_array(), *added = json_array();
    if (rc == 0)
        rc = s_add_new(engram, scope, key, json_object_get(entity, "observations"), stored, added);
    json_decref(stored);
    json_decref(added);
    return rc == 0 ? s_set_add(engram, scope, S_ENTITIES, name) : rc;
}

/*  The result of a creating tool, as the official server words it: the text is the JSON of
 *  the list, structuredContent an object holding it under name. */
static json_t *s_listed(const char *name, json_t *list)
{
    char *text = json_dumps(list, JSON_INDENT(2));
    json_t *result = text ? mcp_tool_result(text, json_pack("{s:O}", name, list)) : NULL;
    free(text);
    return result;
}

static json_t *s_create_entities(engram_t *engram, const char *scope, const json_t *args)
{
    json_t *stored = NULL, *created = json_array();
    int rc = s_members(engram, scope, S_ENTITIES, &stored);
    size_t i;
    json_t *entity;
    json_array_foreach(json_object_get(args, "entities"), i, entity)
    {
        if (rc != 0)
            break;
        const char *name = s_get(entity, "name");
        if (s_contains(stored, name))
            continue;
        rc = s_create_entity(engram, scope, entity);
        json_array_append_new(stored, json_string(name));
        json_array_append_new(created, json_pack("{s:s, s:s, s:O}", "name", name, "entityType",
                                                 s_get(entity, "entityType"), "observations",
                                                 json_object_get(entity, "observations")));
    }
    json_decref(stored);
    json_t *result = rc == 0 ? s_listed("entities", created) : mcp_engram_error(engram, rc, scope);
    json_decref(created);
    return result;
}

static json_t *s_create_relations(engram_t *engram, const char *scope, const json_t *args)
{
    json_t *stored = NULL, *created = json_array();
    int rc = s_members(engram, scope, S_RELATIONS, &stored);
    size_t i;
    json_t *relation;
    json_array_foreach(json_object_get(args, "relations"), i, relation)
    {
        if (rc != 0)
            break;
        const char *from = s_get(relation, "from"), *to = s_get(relation, "to"),
                   *type = s_get(relation, "relationType");
        char *element = s_relation_element(from, type, to);
        if (!element)
            rc = ENGRAM_ENOMEM;
        else if (!s_contains(stored, element)) {
            rc = s_set_add(engram, scope, S_RELATIONS, element);
            json_array_append_new(stored, json_string(element));
            json_array_append_new(created, json_pack("{s:s, s:s, s:s}", "from", from, "to", to,
                                                     "relationType", type));
        }
        free(element);
    }
    json_decref(stored);
    json_t *result = rc == 0 ? s_listed("relations", created) : mcp_engram_error(engram, rc, scope);
    json_decref(created);
    return result;
}

static json_t *s_add_observations(engram_t *engram, const char *scope, const json_t *args)
{
    json_t *entities = NULL, *results = json_array();
    json_t *requests = json_object_get(args, "observations");
    int rc = s_members(engram, scope, S_ENTITIES, &entities);
    size_t i;
    json_t *request;
    /*  Every entity must exist before anything is written: the call fails whole. */
    json_array_foreach(requests, i,
                       request) if (rc == 0 && !s_contains(entities, s_get(request, "entityName")))
    {
        json_decref(entities);
        json_decref(results);
        return mcp_tool_error("Entity with name %s not found", s_get(request, "entityName"));
    }
    json_array_foreach(requests, i, request)
    {
        if (rc != 0)
            break;
        char key[S_ENTITY_KEY_CHARS];
        s_entity_key(s_get(request, "entityName"), "obs", key);
        json_t *stored = NULL, *added = json_array();
        rc = s_members(engram, scope, key, &stored);
        if (rc == 0)
            rc = s_add_new(engram, scope, key, json_object_get(request, "contents"), stored, added);
        json_array_append_new(results,
                              json_pack("{s:s, s:O}", "entityName", s_get(request, "entityName"),
                                        "addedObservations", added));
        json_decref(stored);
        json_decref(added);
    }
    json_decref(entities);
    json_t *result = rc == 0 ? s_listed("results", results) : mcp_engram_error(engram, rc, scope);
    json_decref(results);
    return result;
}

/*  The status result of the delete tools. */
static json_t *s_deleted(const char *message)
{
    return mcp_tool_result(message, json_pack("{s:b, s:s}", "success", true, "message", message));
}

static json_t *s_delete_entities(engram_t *engram, const char *scope, const json_t *args)
{
    json_t *names = json_object_get(args, "entityNames"), *entities = NULL, *relations = NULL;
    int rc = s_members(engram, scope, S_ENTITIES, &entities);
    size_t i;
    json_t *name;
    json_array_foreach(names, i, name)
    {
        if (rc != 0 || !s_contains(entities, json_string_value(name)))
            continue;
        rc = s_set_remove(engram, scope, S_ENTITIES, json_string_value(name));
        if (rc == 0)
            rc = s_clear_entity(engram, scope, json_string_value(name));
    }
    if (rc == 0)
        rc = s_relations(engram, scope, &relations);
    json_t *relation;
    json_array_foreach(relations, i, relation)
    {
        if (rc != 0)
            break;
        const char *from = s_get(relation, "from"), *to = s_get(relation, "to");
        if (!s_contains(names, from) && !s_contains(names, to))
            continue;
        char *element = s_relation_element(from, s_get(relation, "relationType"), to);
        rc = element ? s_set_remove(engram, scope, S_RELATIONS, element) : ENGRAM_ENOMEM;
        free(element);
    }
    json_decref(entities);
    json_decref(relations);
    return rc == 0 ? s_deleted("Entities deleted successfully")
                   : mcp_engram_error(engram, rc, scope);
}

static json_t *s_delete_observations(engram_t *engram, const char *scope, const json_t *args)
{
    json_t *entities = NULL;
    int rc = s_members(engram, scope, S_ENTITIES, &entities);
    size_t i;
    json_t *deletion;
    json_array_foreach(json_object_get(args, "deletions"), i, deletion)
    {
        if (rc != 0 || !s_contains(entities, s_get(deletion, "entityName")))
            continue;
        char key[S_ENTITY_KEY_CHARS];
        s_entity_key(s_get(deletion, "entityName"), "obs", key);
        json_t *stored = NULL;
        rc = s_members(engram, scope, key, &stored);
        size_t j;
        json_t *observation;
        json_array_foreach(json_object_get(deletion, "observations"), j, observation)
        {
            if (rc == 0 && s_contains(stored, json_string_value(observation)))
                rc = s_set_remove(engram, scope, key, json_string_value(observation));
        }
        json_decref(stored);
    }
    json_decref(entities);
    return rc == 0 ? s_deleted("Observations deleted successfully")
                   : mcp_engram_error(engram, rc, scope);
}

static json_t *s_delete_relations(engram_t *engram, const char *scope, const json_t *args)
{
    json_t *stored = NULL;
    int rc = s_members(engram, scope, S_RELATIONS, &stored);
    size_t i;
    json_t *relation;
    json_array_foreach(json_object_get(args, "relations"), i, relation)
    {
        char *element =
            rc == 0 ? s_relation_element(s_get(relation, "from"), s_get(relation, "relationType"),
                                         s_get(relation, "to"))
                    : NULL;
        if (rc == 0 && !element)
            rc = ENGRAM_ENOMEM;
        if (rc == 0 && s_contains(stored, element))
            rc = s_set_remove(engram, scope, S_RELATIONS, element);
        free(element);
    }
    json_decref(stored);
    return rc == 0 ? s_deleted("Relations deleted successfully")
                   : mcp_engram_error(engram, rc, scope);
}

static json_t *s_read(engram_t *engram, const char *scope, const char *tool, const json_t *args)
{
    json_t *graph = NULL, *names = NULL;
    int rc;
    if (strcmp(tool, "open_nodes") == 0)
        rc = s_subgraph(engram, scope, json_object_get(args, "names"), &graph);
    else if (strcmp(tool, "search_nodes") == 0) {
        json_t *whole = NULL;
        rc = mcp_graph_read(engram, scope, &whole);
        names = rc == 0 ? s_search_names(whole, s_get(args, "query")) : NULL;
        json_decref(whole);
        if (rc == 0)
            rc = names ? s_subgraph(engram, scope, names, &graph) : ENGRAM_ENOMEM;
    } else
        rc = mcp_graph_read(engram, scope, &graph);
    json_decref(names);
    return rc == 0 ? mcp_tool_result_json(graph) : mcp_engram_error(engram, rc, scope);
}

/*  Whether every string in value is at most MCP_GRAPH_MAX_TEXT_BYTES; if not, why names the
 *  first one too long by its path. */
static bool s_texts_fit(const json_t *value, const char *path, char *why, size_t why_len)
{
    char inner[256];
    if (json_is_string(value) && json_string_length(value) > MCP_GRAPH_MAX_TEXT_BYTES) {
        mcp_format(why, why_len, "%s has %zu bytes; a text of the graph has at most %d", path,
                   json_string_length(value), MCP_GRAPH_MAX_TEXT_BYTES);
        return false;
    }
    size_t i;
    json_t *item;
    json_array_foreach(value, i, item)
    {
        snprintf(inner, sizeof inner, "%s[%zu]", path, i);
        if (!s_texts_fit(item, inner, why, why_len))
            return false;
    }
    const char *key;
    json_object_foreach((json_t *)value, key, item)
    {
        mcp_format(inner, sizeof inner, "%s.%s", path, key);
        if (!s_texts_fit(item, inner, why, why_len))
            return false;
    }
    return true;
}

bool mcp_graph_call(engram_t *engram, const char *scope, const char *name, json_t *args,
                    json_t **result)
{
    static const struct {
        const char *name;
        json_t *(*run)(engram_t *, const char *, const json_t *);
    } writes[] = {
        {"create_entities", s_create_entities},         {"create_relations", s_create_relations},
        {"add_observations", s_add_observations},       {"delete_entities", s_delete_entities},
        {"delete_observations", s_delete_observations}, {"delete_relations", s_delete_relations},
    };
    static const char *const reads[] = {"read_graph", "search_nodes", "open_nodes"};
    bool write = false, read = false;
    size_t which = 0;
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        if (strcmp(name, writes[i].name) == 0)
            write = true, which = i;
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
        read = read || strcmp(name, reads[i]) == 0;
    if (!write && !read)
        return false;
    char why[512];
    if (write && !s_texts_fit(args, "arguments", why, sizeof why))
        *result = mcp_tool_error("%s", why);
    else if (write)
        *result = writes[which].run(engram, scope, args);
    else
        *result = s_read(engram, scope, name, args);
    return true;
}

/*  --- the official server's file ------------------------------------------------------------ */

int mcp_graph_import(engram_t *engram, const char *scope, const char *text, size_t len,
                     size_t *entities, size_t *relations, char *why, size_t why_len)
{
    json_t *new_entities = json_array(), *new_relations = json_array();
    json_t *entity_schema = mcp_catalog_entity_schema(),
           *relation_schema = mcp_catalog_relation_schema();
    *entities = *relations = 0;
    int rc = new_entities && new_relations && entity_schema && relation_schema ? 0 : ENGRAM_ENOMEM;
    size_t number = 0;
    for (size_t at = 0; rc == 0 && at < len; number++) {
        const char *end = memchr(text + at, '\n', len - at);
        size_t line_len = end ? (size_t)(end - (text + at)) : len - at;
        const char *line = text + at;
        at += line_len + 1;
        size_t blank = 0;
        while (blank < line_len && strchr(" \t\r", line[blank]))
            blank++;
        if (blank == line_len)
            continue;
        json_error_t error;
        json_t *item = json_loadb(line, line_len, 0, &error);
        const char *type = s_get(item, "type");
        char path[32];
        snprintf(path, sizeof path, "line %zu", number + 1);
        bool entity = type && strcmp(type, "entity") == 0;
        bool relation = type && strcmp(type, "relation") == 0;
        if (!item) {
            snprintf(why, why_len, "%s: %s", path, error.text);
            rc = ENGRAM_EINVAL;
        } else if (!entity && !relation) {
            snprintf(why, why_len, "%s: \"type\" must be \"entity\" or \"relation\"", path);
            rc = ENGRAM_EINVAL;
        } else if (!mcp_schema_check(entity ? entity_schema : relation_schema, item, path, why,
                                     why_len)) {
            rc = ENGRAM_EINVAL;
        } else
            json_array_append(entity ? new_entities : new_relations, item);
        json_decref(item);
    }
    /*  Everything read: merge, as the tools would (new entities, then the observations of the
     *  ones already there, then the relations). */
    json_t *stored = NULL;
    if (rc == 0)
        rc = s_members(engram, scope, S_ENTITIES, &stored);
    size_t i;
    json_t *entity;
    json_array_foreach(new_entities, i, entity)
    {
        if (rc != 0)
            break;
        const char *name = s_get(entity, "name");
        if (!s_contains(stored, name)) {
            rc = s_create_entity(engram, scope, entity);
            json_array_append_new(stored, json_string(name));
        } else {
            char key[S_ENTITY_KEY_CHARS];
            s_entity_key(name, "obs", key);
            json_t *observations = NULL, *added = json_array();
            rc = s_members(engram, scope, key, &observations);
            if (rc == 0)
                rc = s_add_new(engram, scope, key, json_object_get(entity, "observations"),
                               observations, added);
            json_decref(observations);
            json_decref(added);
        }
    }
    json_decref(stored);
    if (rc == 0) {
        json_t *args = json_pack("{s:O}", "relations", new_relations);
        json_t *result = args ? s_create_relations(engram, scope, args) : NULL;
        rc = !result ? ENGRAM_ENOMEM : json_object_get(result, "isError") ? ENGRAM_EIO : 0;
        json_decref(args);
        json_decref(result);
    }
    if (rc == 0) {
        *entities = json_array_size(new_entities);
        *relations = json_array_size(new_relations);
    }
    json_decref(new_entities);
    json_decref(new_relations);
    json_decref(entity_schema);
    json_decref(relation_schema);
    return rc;
}

int mcp_graph_export(engram_t *engram, const char *scope, FILE *out)
{
    json_t *graph = NULL;
    int rc = mcp_graph_read(engram, scope, &graph);
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(graph, "entities"), i, item)
    {
        json_t *line = json_pack("{s:s, s:O, s:O, s:O}", "type", "entity", "name",
                                 json_object_get(item, "name"), "entityType",
                                 json_object_get(item, "entityType"), "observations",
                                 json_object_get(item, "observations"));
        if (!line || json_dumpf(line, out, JSON_COMPACT) != 0 || fputc('\n', out) == EOF)
            rc = ENGRAM_EIO;
        json_decref(line);
    }
    json_array_foreach(json_object_get(graph, "relations"), i, item)
    {
        json_t *line = json_pack("{s:s, s:O, s:O, s:O}", "type", "relation", "from",
                                 json_object_get(item, "from"), "to", json_object_get(item, "to"),
                                 "relationType", json_object_get(item, "relationType"));
        if (!line || json_dumpf(line, out, JSON_COMPACT) != 0 || fputc('\n', out) == EOF)
            rc = ENGRAM_EIO;
        json_decref(line);
    }
    json_decref(graph);
    return rc;
}
