/*  crdt_value: the value stored in a register or log entry: a header and the payload.
 *
 *  The header holds the schema version, when the object was created and last updated (HLC),
 *  when it expires (0: never), and its provenance: the user it was written for, the agents
 *  that contributed to it, the resources it was derived from. Access control judges every
 *  object version by that provenance, so it is immutable once written; `share` and derived
 *  writes carry the union of their sources' (crdt_value_merge_provenance).
 *
 *  Encoded as engram.Value (proto/crdt.proto). Decoding a value written by a newer schema
 *  major fails with ENGRAM_EVERSION rather than misreading it.
 *
 *  Ownership: a crdt_value_t owns every string and array it points at; crdt_value_destroy
 *  frees them all. Fill one with the setters, or through crdt_value_decode.
 */
#ifndef CRDT_VALUE_H
#define CRDT_VALUE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t schema_major;
    uint32_t schema_minor;
    uint64_t created_hlc;
    uint64_t updated_hlc;
    uint64_t expires_at_ms; /* 0: never */
    char *author;           /* owned: the agent that wrote this version; "" when unknown */
    char *user;             /* owned; "" when unknown */
    char **agents;          /* owned, sorted, no duplicates */
    size_t nagents;
    char **resources; /* owned, sorted, no duplicates */
    size_t nresources;
    uint8_t *data; /* owned payload */
    size_t len;
    char *meta_json;      /* owned; "" when none */
    uint8_t *embedding;   /* owned: the client's embedding (float32 LE, uninterpreted here) */
    size_t embedding_len; /* 0: none */
} crdt_value_t;

/*  A value at the current schema version with empty strings; NULL when out of memory. */
crdt_value_t *crdt_value_new(void);
void crdt_value_destroy(crdt_value_t **self_p);

int crdt_value_set_user(crdt_value_t *self, const char *user);
int crdt_value_set_author(crdt_value_t *self, const char *author);
int crdt_value_set_data(crdt_value_t *self, const void *data, size_t len);
int crdt_value_set_meta(crdt_value_t *self, const char *meta_json);
/*  The embedding's bytes (len 0: none), at most ENGRAM_MAX_EMBEDDING_DIMS float32 values. */
int crdt_value_set_embedding(crdt_value_t *self, const void *bytes, size_t len);
/*  Adds one contributing agent / source resource (kept sorted, duplicates ignored). */
int crdt_value_add_agent(crdt_value_t *self, const char *agent);
int crdt_value_add_resource(crdt_value_t *self, const char *resource);
/*  Adds every agent and resource of source to self's provenance. */
int crdt_value_merge_provenance(crdt_value_t *self, const crdt_value_t *source);

int crdt_value_encode(const crdt_value_t *self, uint8_t **buf, size_t *len);
int crdt_value_decode(const uint8_t *buf, size_t len, crdt_value_t **value_p);

#endif
