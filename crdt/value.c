/*  crdt_value: object value with header and provenance (see value.h). */
#include "crdt/value.h"

#include <stdlib.h>
#include <string.h>

#include "engram/error.h"
#include "engram/limits.h"
#include "proto/crdt.pb-c.h"

static int s_set_string(char **field, const char *text)
{
    char *copy = strdup(text);
    if (!copy)
        return ENGRAM_ENOMEM;
    free(*field);
    *field = copy;
    return 0;
}

crdt_value_t *crdt_value_new(void)
{
    crdt_value_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->schema_major = ENGRAM_SCHEMA_MAJOR;
    self->schema_minor = ENGRAM_SCHEMA_MINOR;
    if (s_set_string(&self->user, "") || s_set_string(&self->author, "") ||
        s_set_string(&self->meta_json, ""))
        crdt_value_destroy(&self);
    return self;
}

static void s_strv_free(char **strv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(strv[i]);
    free(strv);
}

void crdt_value_destroy(crdt_value_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    crdt_value_t *self = *self_p;
    free(self->user);
    free(self->author);
    s_strv_free(self->agents, self->nagents);
    s_strv_free(self->resources, self->nresources);
    free(self->data);
    free(self->meta_json);
    free(self->embedding);
    free(self);
    *self_p = NULL;
}

int crdt_value_set_user(crdt_value_t *self, const char *user)
{
    return s_set_string(&self->user, user);
}

int crdt_value_set_author(crdt_value_t *self, const char *author)
{
    return s_set_string(&self->author, author);
}

int crdt_value_set_meta(crdt_value_t *self, const char *meta_json)
{
    return s_set_string(&self->meta_json, meta_json);
}

int crdt_value_set_data(crdt_value_t *self, const void *data, size_t len)
{
    if (len > ENGRAM_MAX_VALUE_BYTES)
        return ENGRAM_ETOOBIG;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return ENGRAM_ENOMEM;
    if (len)
        memcpy(copy, data, len);
    free(self->data);
    self->data = copy;
    self->len = len;
    return 0;
}

int crdt_value_set_embedding(crdt_value_t *self, const void *bytes, size_t len)
{
    if (len > 4 * (size_t)ENGRAM_MAX_EMBEDDING_DIMS)
        return ENGRAM_ETOOBIG;
    uint8_t *copy = len ? malloc(len) : NULL;
    if (len && !copy)
        return ENGRAM_ENOMEM;
    if (len)
        memcpy(copy, bytes, len);
    free(self->embedding);
    self->embedding = copy;
    self->embedding_len = len;
    return 0;
}

/*  Inserts text into a sorted string vector unless present. */
static int s_strv_add(char ***strv, size_t *n, const char *text)
{
    size_t at = 0;
    while (at < *n && strcmp((*strv)[at], text) < 0)
        at++;
    if (at < *n && strcmp((*strv)[at], text) == 0)
        return 0;
    char **grown = realloc(*strv, (*n + 1) * sizeof **strv);
    if (!grown)
        return ENGRAM_ENOMEM;
    *strv = grown;
    char *copy = strdup(text);
    if (!copy)
        return ENGRAM_ENOMEM;
    memmove(&grown[at + 1], &grown[at], (*n - at) * sizeof *grown);
    grown[at] = copy;
    (*n)++;
    return 0;
}

static int s_strcmp_p(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*  Replaces an empty vector by a sorted, deduplicated copy of n strings: one sort, so a
 *  decoder handed many names is not quadratic. */
static int s_strv_set(char ***strv, size_t *count, char *const *from, size_t n)
{
    char **copy = calloc(n ? n : 1, sizeof *copy);
    if (!copy)
        return ENGRAM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        copy[i] = strdup(from[i]);
        if (!copy[i]) {
            s_strv_free(copy, i);
            return ENGRAM_ENOMEM;
        }
    }
    qsort(copy, n, sizeof *copy, s_strcmp_p);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (kept && strcmp(copy[kept - 1], copy[i]) == 0)
            free(copy[i]);
        else
            copy[kept++] = copy[i];
    }
    s_strv_free(*strv, *count);
    *strv = copy;
    *count = kept;
    return 0;
}

int crdt_value_add_agent(crdt_value_t *self, const char *agent)
{
    return s_strv_add(&self->agents, &self->nagents, agent);
}

int crdt_value_add_resource(crdt_value_t *self, const char *resource)
{
    return s_strv_add(&self->resources, &self->nresources, resource);
}

int crdt_value_merge_provenance(crdt_value_t *self, const crdt_value_t *source)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < source->nagents; i++)
        rc = crdt_value_add_agent(self, source->agents[i]);
    for (size_t i = 0; rc == 0 && i < source->nresources; i++)
        rc = crdt_value_add_resource(self, source->resources[i]);
    return rc;
}

int crdt_value_encode(const crdt_value_t *self, uint8_t **buf, size_t *len)
{
    Engram__Provenance provenance = ENGRAM__PROVENANCE__INIT;
    provenance.user = self->user;
    provenance.agents = self->agents;
    provenance.n_agents = self->nagents;
    provenance.resources = self->resources;
    provenance.n_resources = self->nresources;
    Engram__Value msg = ENGRAM__VALUE__INIT;
    msg.schema_major = ENGRAM_SCHEMA_MAJOR;
    msg.schema_minor = ENGRAM_SCHEMA_MINOR;
    msg.created_hlc = self->created_hlc;
    msg.updated_hlc = self->updated_hlc;
    msg.expires_at_ms = self->expires_at_ms;
    msg.provenance = &provenance;
    msg.data.data = self->data;
    msg.data.len = self->len;
    msg.meta_json = self->meta_json;
    msg.author = self->author;
    msg.embedding.data = self->embedding;
    msg.embedding.len = self->embedding_len;
    size_t size = engram__value__get_packed_size(&msg);
    *buf = malloc(size ? size : 1);
    if (!*buf)
        return ENGRAM_ENOMEM;
    *len = engram__value__pack(&msg, *buf);
    return 0;
}

int crdt_value_decode(const uint8_t *buf, size_t len, crdt_value_t **value_p)
{
    *value_p = NULL;
    Engram__Value *msg = engram__value__unpack(NULL, len, buf);
    if (!msg)
        return ENGRAM_EDECODE;
    int rc = 0;
    if (msg->schema_major > ENGRAM_SCHEMA_MAJOR)
        rc = ENGRAM_EVERSION;
    else if (msg->schema_major == 0 || msg->data.len > ENGRAM_MAX_VALUE_BYTES)
        rc = ENGRAM_EDECODE;
    crdt_value_t *value = rc ? NULL : crdt_value_new();
    if (rc == 0 && !value)
        rc = ENGRAM_ENOMEM;
    if (rc == 0) {
        value->schema_major = msg->schema_major;
        value->schema_minor = msg->schema_minor;
        value->created_hlc = msg->created_hlc;
        value->updated_hlc = msg->updated_hlc;
        value->expires_at_ms = msg->expires_at_ms;
        rc = crdt_value_set_data(value, msg->data.data, msg->data.len);
    }
    if (rc == 0)
        rc = crdt_value_set_meta(value, msg->meta_json);
    if (rc == 0)
        rc = crdt_value_set_author(value, msg->author);
    if (rc == 0)
        rc = msg->embedding.len > 4 * (size_t)ENGRAM_MAX_EMBEDDING_DIMS
                 ? ENGRAM_EDECODE
                 : crdt_value_set_embedding(value, msg->embedding.data, msg->embedding.len);
    if (rc == 0 && msg->provenance) {
        const Engram__Provenance *p = msg->provenance;
        rc = crdt_value_set_user(value, p->user);
        if (rc == 0)
            rc = s_strv_set(&value->agents, &value->nagents, p->agents, p->n_agents);
        if (rc == 0)
            rc = s_strv_set(&value->resources, &value->nresources, p->resources, p->n_resources);
    }
    engram__value__free_unpacked(msg, NULL);
    if (rc)
        crdt_value_destroy(&value);
    *value_p = value;
    return rc;
}
