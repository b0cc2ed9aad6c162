/*  crdt codec: protobuf-c encodings of contexts and of scope states and deltas
 *  (proto/crdt.proto), the form in which they cross the network and reach the disk.
 *
 *  Decoders take untrusted bytes. They return ENGRAM_EDECODE for anything malformed (bad
 *  protobuf, a context not in canonical form, a dot outside the context or used twice, an
 *  entry its type forbids, an oversized key or value), ENGRAM_EVERSION for a newer schema
 *  major, and never crash, leak or return a half-built object. A decoded scope satisfies every
 *  invariant of scope.h, so it can be joined without further checks.
 *
 *  Encoded buffers are the caller's to free(). An encoding's size is not bounded here: the
 *  gossip layer chunks by bytes.
 */
#ifndef CRDT_CODEC_H
#define CRDT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "crdt/ctx.h"
#include "crdt/scope.h"

/*  Encodes ctx (NULL: the empty context, as a scope never written has) into a new buffer
 *  that the caller owns and frees. 0 or ENGRAM_ENOMEM. */
int crdt_ctx_encode(const crdt_ctx_t *ctx, uint8_t **buf, size_t *len);
int crdt_ctx_decode(const uint8_t *buf, size_t len, crdt_ctx_t **ctx_p);

int crdt_scope_encode(const crdt_scope_t *scope, uint8_t **buf, size_t *len);
/*  How an op's note goes on the wire: given the note and the op's live entry in the same
 *  scope (entry NULL when it has none), fn may set *out (a malloc'd buffer the encoder frees,
 *  *out_len bytes, not 0) to a shorter form the receiver can expand from that entry, or leave
 *  *out NULL to send the note as it is. A non-zero return fails the encoding. */
typedef int (*crdt_note_wire_fn)(void *arg, crdt_dot_t op, const uint8_t *note, size_t len,
                                 const crdt_dot_entry_t *entry, uint8_t **out, size_t *out_len);
/*  crdt_scope_encode with each note as fn puts it (fn NULL: crdt_scope_encode). The scope is
 *  not changed: its notes stay as they are, whatever goes on the wire. */
int crdt_scope_encode_wire(const crdt_scope_t *scope, crdt_note_wire_fn fn, void *arg,
                           uint8_t **buf, size_t *len);
/*  The decoded scope issues dots as `replica` (0 for a delta). */
int crdt_scope_decode(const uint8_t *buf, size_t len, uint64_t replica, crdt_scope_t **scope_p);

#endif
