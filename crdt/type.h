/*  crdt_type: the object types of a scope and the table that describes each.
 *
 *  A type is a reading of the one store shape (see scope.h) plus the rules its entries obey,
 *  which decoders enforce on untrusted input:
 *    reg      MVReg      DotFun<value> under elem "": entries carry an HLC and the value bytes.
 *    set      AWSet      DotMap<elem, DotFun<data>>: non-empty elems; each add's data is
 *                        opaque (node/ puts the add's provenance there; empty in adds from
 *                        before sets carried it).
 *    counter  causal ctr DotMap<contributor, DotFun<total>>: any elem (the contributor, ""
 *                        included); value is a little-endian int64, the running total of the
 *                        node that wrote it for that contributor. (One entry per node and
 *                        contributor under causal delivery; a state joined out of order may
 *                        briefly hold more, so decoders do not insist on it.)
 *    log      Log        DotFun<entry> under elem "": entries ordered by (HLC, dot).
 *  Type ids are part of the wire and disk formats: append, never renumber.
 */
#ifndef CRDT_TYPE_H
#define CRDT_TYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    CRDT_REG = 1,
    CRDT_SET = 2,
    CRDT_COUNTER = 3,
    CRDT_LOG = 4,
} crdt_type_id_t;

#define CRDT_TYPE_MAX CRDT_LOG

/*  One read-only entry of an object, as queries return it. Borrowed pointers stay valid until
 *  the next change of the scope they came from. */
typedef struct {
    const char *elem;
    uint64_t node;
    uint64_t n;
    uint64_t hlc;
    const uint8_t *data;
    size_t len;
} crdt_entry_view_t;

typedef struct {
    crdt_type_id_t id;
    const char *name;
    /*  0 if an entry may belong to an object of this type, else ENGRAM_EDECODE. */
    int (*check_entry)(const char *elem, const uint8_t *data, size_t len);
} crdt_type_t;

/*  NULL for an unknown id. */
const crdt_type_t *crdt_type_by_id(unsigned id);

#endif
