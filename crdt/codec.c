/*  crdt codec (see codec.h). Encoding builds protobuf-c structs that borrow the scope's
 *  memory and packs them; decoding unpacks, checks every invariant, and builds the scope
 *  through the same internal insert the join uses.
 */
#include "crdt/codec.h"

#include <stdlib.h>
#include <string.h>

#include "crdt/internal.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "proto/crdt.pb-c.h"

/*  --- contexts ----------------------------------------------------------------------- */

_Static_assert(sizeof(crdt_range_t) == 2 * sizeof(uint64_t), "ranges are (lo, hi) pairs");
_Static_assert(sizeof(crdt_dot_t) == 2 * sizeof(uint64_t), "dots are (node, n) pairs");

/*  Fills msg from ctx, borrowing its cloud arrays; s_ctx_msg_fini frees what this allocates
 *  (one CtxNode array, reachable as msg->nodes[0] even when the context is empty). */
static int s_ctx_msg_init(Engram__Context *msg, const crdt_ctx_t *ctx)
{
    engram__context__init(msg);
    msg->schema_major = ENGRAM_SCHEMA_MAJOR;
    msg->schema_minor = ENGRAM_SCHEMA_MINOR;
    size_t n = ctx ? crdt_ctx_nodes(ctx) : 0, slots = n ? n : 1;
    Engram__CtxNode *nodes = calloc(slots, sizeof *nodes);
    msg->nodes = calloc(slots, sizeof *msg->nodes);
    if (!msg->nodes || !nodes) {
        free(msg->nodes);
        free(nodes);
        msg->nodes = NULL;
        return ENGRAM_ENOMEM;
    }
    for (size_t i = 0; i < slots; i++) {
        engram__ctx_node__init(&nodes[i]);
        msg->nodes[i] = &nodes[i];
    }
    for (size_t i = 0; i < n; i++) {
        const crdt_range_t *cloud;
        size_t ncloud;
        crdt_ctx_node_at(ctx, i, &nodes[i].node, &nodes[i].vv, &cloud, &ncloud);
        nodes[i].n_cloud = 2 * ncloud;
        nodes[i].cloud = (uint64_t *)cloud;
    }
    msg->n_nodes = n;
    return 0;
}

static void s_ctx_msg_fini(Engram__Context *msg)
{
    if (msg->nodes)
        free(msg->nodes[0]);
    free(msg->nodes);
    msg->nodes = NULL;
}

static int s_check_version(uint32_t major)
{
    if (major > ENGRAM_SCHEMA_MAJOR)
        return ENGRAM_EVERSION;
    return major == 0 ? ENGRAM_EDECODE : 0;
}

/*  Builds a context from a message, insisting on canonical form. */
static int s_ctx_from_msg(const Engram__Context *msg, crdt_ctx_t **ctx_p)
{
    if (!msg)
        return ENGRAM_EDECODE;
    int rc = s_check_version(msg->schema_major);
    if (rc)
        return rc;
    crdt_ctx_t *ctx = crdt_ctx_new();
    if (!ctx)
        return ENGRAM_ENOMEM;
    uint64_t prev_node = 0;
    for (size_t i = 0; rc == 0 && i < msg->n_nodes; i++) {
        const Engram__CtxNode *node = msg->nodes[i];
        if (node->node <= prev_node || node->vv > CRDT_DOT_MAX || node->n_cloud % 2 ||
            (node->vv == 0 && node->n_cloud == 0)) {
            rc = ENGRAM_EDECODE;
            break;
        }
        prev_node = node->node;
        if (node->vv)
            rc = crdt_ctx_insert_range(ctx, node->node, 1, node->vv);
        uint64_t floor = node->vv + 1; /* each range must start above floor */
        for (size_t r = 0; rc == 0 && r < node->n_cloud; r += 2) {
            uint64_t lo = node->cloud[r], hi = node->cloud[r + 1];
            if (lo <= floor || lo > hi || hi > CRDT_DOT_MAX) {
                rc = ENGRAM_EDECODE;
                break;
            }
            rc = crdt_ctx_insert_range(ctx, node->node, lo, hi);
            floor = hi + 1;
        }
    }
    if (rc)
        crdt_ctx_destroy(&ctx);
    *ctx_p = ctx;
    return rc;
}

static int s_pack(const ProtobufCMessage *msg, uint8_t **buf, size_t *len)
{
    size_t size = protobuf_c_message_get_packed_size(msg);
    *buf = malloc(size ? size : 1);
    if (!*buf)
        return ENGRAM_ENOMEM;
    *len = protobuf_c_message_pack(msg, *buf);
    return 0;
}

int crdt_ctx_encode(const crdt_ctx_t *ctx, uint8_t **buf, size_t *len)
{
    Engram__Context msg;
    int rc = s_ctx_msg_init(&msg, ctx);
    if (rc == 0)
        rc = s_pack(&msg.base, buf, len);
    s_ctx_msg_fini(&msg);
    return rc;
}

int crdt_ctx_decode(const uint8_t *buf, size_t len, crdt_ctx_t **ctx_p)
{
    *ctx_p = NULL;
    Engram__Context *msg = engram__context__unpack(NULL, len, buf);
    if (!msg)
        return ENGRAM_EDECODE;
    int rc = s_ctx_from_msg(msg, ctx_p);
    engram__context__free_unpacked(msg, NULL);
    return rc;
}

/*  --- scopes ------------------------------------------------------------------------- */

/*  Every array the encoder allocates, freed in one place. */
typedef struct {
    Engram__Scope msg;
    Engram__Context ctx, pruned;
    Engram__Object *objects;
    Engram__Object **object_ptrs;
    Engram__Record *records;
    Engram__Record **record_ptrs;
    Engram__Entry *entries;
    Engram__Entry **entry_ptrs;
    Engram__Note *notes;
    Engram__Note **note_ptrs;
    size_t nobjects, nrecords, nentries, nnotes;
    const crdt_scope_t *scope;
    crdt_note_wire_fn wire; /* NULL: notes as they are */
    void *wire_arg;
    uint8_t **wired; /* owned: the wire forms fn returned, one slot per note */
} s_encoder_t;

static int s_encode_object(void *arg, const crdt__object_t *object)
{
    s_encoder_t *enc = arg;
    crdt_entry_view_t *views;
    size_t n;
    int rc = crdt__object_views(object, &views, &n);
    if (rc)
        return rc;
    Engram__Object *o = &enc->objects[enc->nobjects];
    engram__object__init(o);
    o->type = object->type;
    o->key.data = (uint8_t *)object->key;
    o->key.len = strlen(object->key);
    o->entries = &enc->entry_ptrs[enc->nentries];
    o->n_entries = n;
    for (size_t k = 0; k < n; k++) {
        Engram__Entry *m = &enc->entries[enc->nentries];
        engram__entry__init(m);
        m->elem.data = (uint8_t *)views[k].elem;
        m->elem.len = strlen(views[k].elem);
        m->node = views[k].node;
        m->n = views[k].n;
        m->hlc = views[k].hlc;
        m->data.data = (uint8_t *)views[k].data;
        m->data.len = views[k].len;
        enc->entry_ptrs[enc->nentries++] = m;
    }
    free(views);
    enc->object_ptrs[enc->nobjects++] = o;
    return 0;
}

static int s_encode_record(void *arg, crdt_dot_t op, const crdt_dot_t *removed, size_t n)
{
    s_encoder_t *enc = arg;
    Engram__Record *r = &enc->records[enc->nrecords];
    engram__record__init(r);
    r->node = op.node;
    r->n = op.n;
    r->n_removed = 2 * n;
    r->removed = (uint64_t *)removed;
    enc->record_ptrs[enc->nrecords++] = r;
    return 0;
}

static int s_encode_note(void *arg, crdt_dot_t op, const uint8_t *data, size_t len)
{
    s_encoder_t *enc = arg;
    Engram__Note *m = &enc->notes[enc->nnotes];
    engram__note__init(m);
    m->node = op.node;
    m->n = op.n;
    m->data.data = (uint8_t *)data;
    m->data.len = len;
    if (enc->wire) {
        size_t wired_len = 0;
        crdt_dot_entry_t entry;
        bool live = crdt_scope_dot_entry(enc->scope, op, &entry);
        uint8_t **wired = &enc->wired[enc->nnotes];
        int rc = enc->wire(enc->wire_arg, op, data, len, live ? &entry : NULL, wired, &wired_len);
        if (rc)
            return rc;
        if (*wired && wired_len) /* an empty note is none: it goes as it is */
            m->data = (ProtobufCBinaryData){wired_len, *wired};
    }
    enc->note_ptrs[enc->nnotes++] = m;
    return 0;
}

static int s_count_object(void *arg, const crdt__object_t *object)
{
    (void)object;
    (*(size_t *)arg)++;
    return 0;
}

static int s_count_record(void *arg, crdt_dot_t op, const crdt_dot_t *removed, size_t n)
{
    (void)op;
    (void)removed;
    (void)n;
    (*(size_t *)arg)++;
    return 0;
}

int crdt_scope_encode(const crdt_scope_t *scope, uint8_t **buf, size_t *len)
{
    return crdt_scope_encode_wire(scope, NULL, NULL, buf, len);
}

int crdt_scope_encode_wire(const crdt_scope_t *scope, crdt_note_wire_fn fn, void *arg,
                           uint8_t **buf, size_t *len)
{
    s_encoder_t enc = {.scope = scope, .wire = fn, .wire_arg = arg};
    size_t nobjects = 0, nrecords = 0, nentries = crdt_scope_entries(scope);
    size_t nnotes = crdt_scope_notes(scope);
    crdt__scope_foreach_object(scope, s_count_object, &nobjects);
    crdt_scope_foreach_record(scope, s_count_record, &nrecords);
    engram__scope__init(&enc.msg);
    int rc = s_ctx_msg_init(&enc.ctx, crdt_scope_ctx(scope));
    if (rc == 0)
        rc = s_ctx_msg_init(&enc.pruned, crdt_scope_pruned(scope));
    enc.objects = calloc(nobjects + 1, sizeof *enc.objects);
    enc.object_ptrs = calloc(nobjects + 1, sizeof *enc.object_ptrs);
    enc.records = calloc(nrecords + 1, sizeof *enc.records);
    enc.record_ptrs = calloc(nrecords + 1, sizeof *enc.record_ptrs);
    enc.entries = calloc(nentries + 1, sizeof *enc.entries);
    enc.entry_ptrs = calloc(nentries + 1, sizeof *enc.entry_ptrs);
    enc.notes = calloc(nnotes + 1, sizeof *enc.notes);
    enc.note_ptrs = calloc(nnotes + 1, sizeof *enc.note_ptrs);
    enc.wired = fn ? calloc(nnotes + 1, sizeof *enc.wired) : NULL;
    if (rc == 0 &&
        (!enc.objects || !enc.object_ptrs || !enc.records || !enc.record_ptrs || !enc.entries ||
         !enc.entry_ptrs || !enc.notes || !enc.note_ptrs || (fn && !enc.wired)))
        rc = ENGRAM_ENOMEM;
    if (rc == 0)
        rc = crdt__scope_foreach_object(scope, s_encode_object, &enc);
    if (rc == 0) {
        crdt_scope_foreach_record(scope, s_encode_record, &enc);
        rc = crdt_scope_foreach_note(scope, s_encode_note, &enc);
    }
    if (rc == 0) {
        enc.msg.schema_major = ENGRAM_SCHEMA_MAJOR;
        enc.msg.schema_minor = ENGRAM_SCHEMA_MINOR;
        enc.msg.ctx = &enc.ctx;
        enc.msg.pruned = &enc.pruned;
        enc.msg.objects = enc.object_ptrs;
        enc.msg.n_objects = enc.nobjects;
        enc.msg.records = enc.record_ptrs;
        enc.msg.n_records = enc.nrecords;
        enc.msg.notes = enc.note_ptrs;
        enc.msg.n_notes = enc.nnotes;
        rc = s_pack(&enc.msg.base, buf, len);
    }
    s_ctx_msg_fini(&enc.ctx);
    s_ctx_msg_fini(&enc.pruned);
    free(enc.objects);
    free(enc.object_ptrs);
    free(enc.records);
    free(enc.record_ptrs);
    free(enc.entries);
    free(enc.entry_ptrs);
    free(enc.notes);
    free(enc.note_ptrs);
    for (size_t i = 0; enc.wired && i < nnotes; i++)
        free(enc.wired[i]);
    free(enc.wired);
    return rc;
}

/*  A NUL-terminated copy of a name field into buf (ENGRAM_MAX_KEY_BYTES + 1 bytes). */
static bool s_name(const ProtobufCBinaryData *field, char *buf, bool may_be_empty)
{
    if (!crdt__name_ok((const char *)field->data, field->len, may_be_empty))
        return false;
    if (field->len)
        memcpy(buf, field->data, field->len);
    buf[field->len] = '\0';
    return true;
}

static bool s_dot_ok(uint64_t node, uint64_t n)
{
    return node != 0 && n >= 1 && n <= CRDT_DOT_MAX;
}

static int s_decode_object(crdt_scope_t *scope, const Engram__Object *o)
{
    const crdt_type_t *type = crdt_type_by_id(o->type);
    char key[ENGRAM_MAX_KEY_BYTES + 1], elem[ENGRAM_MAX_KEY_BYTES + 1];
    if (!type || o->n_entries == 0 || !s_name(&o->key, key, false) ||
        crdt__scope_object(scope, type->id, key))
        return ENGRAM_EDECODE;
    for (size_t i = 0; i < o->n_entries; i++) {
        const Engram__Entry *e = o->entries[i];
        crdt_dot_t dot = {e->node, e->n};
        if (!s_name(&e->elem, elem, true) || !s_dot_ok(e->node, e->n) ||
            e->data.len > ENGRAM_MAX_ENTRY_BYTES ||
            type->check_entry(elem, e->data.data, e->data.len) != 0 ||
            !crdt_ctx_contains(crdt_scope_ctx(scope), dot))
            return ENGRAM_EDECODE;
        int rc =
            crdt__scope_insert(scope, type->id, key, elem, dot, e->hlc, e->data.data, e->data.len);
        if (rc)
            return rc == ENGRAM_EDOTREUSE ? ENGRAM_EDECODE : rc;
    }
    return 0;
}

static int s_decode_record(crdt_scope_t *scope, const Engram__Record *r)
{
    const crdt_ctx_t *ctx = crdt_scope_ctx(scope);
    crdt_dot_t op = {r->node, r->n};
    /* Records exist only for operations that removed something. */
    if (!s_dot_ok(r->node, r->n) || !crdt_ctx_contains(ctx, op) || r->n_removed == 0 ||
        r->n_removed % 2 || crdt__scope_has_record(scope, op))
        return ENGRAM_EDECODE;
    for (size_t i = 0; i < r->n_removed; i += 2) {
        crdt_dot_t dot = {r->removed[i], r->removed[i + 1]};
        if (!s_dot_ok(dot.node, dot.n) || !crdt_ctx_contains(ctx, dot))
            return ENGRAM_EDECODE;
    }
    return crdt__scope_add_record(scope, op, (const crdt_dot_t *)r->removed, r->n_removed / 2);
}

static int s_decode_note(crdt_scope_t *scope, const Engram__Note *m)
{
    crdt_dot_t op = {m->node, m->n};
    size_t len;
    if (!s_dot_ok(m->node, m->n) || crdt_scope_note_of(scope, op, &len))
        return ENGRAM_EDECODE;
    int rc = crdt_scope_note(scope, op, m->data.data, m->data.len);
    return rc == ENGRAM_EINVAL ? ENGRAM_EDECODE : rc;
}

int crdt_scope_decode(const uint8_t *buf, size_t len, uint64_t replica, crdt_scope_t **scope_p)
{
    *scope_p = NULL;
    Engram__Scope *msg = engram__scope__unpack(NULL, len, buf);
    if (!msg)
        return ENGRAM_EDECODE;
    crdt_scope_t *scope = crdt_scope_new(replica);
    crdt_ctx_t *ctx = NULL, *pruned = NULL;
    int rc = scope ? s_check_version(msg->schema_major) : ENGRAM_ENOMEM;
    if (rc == 0)
        rc = s_ctx_from_msg(msg->ctx, &ctx);
    if (rc == 0)
        rc = s_ctx_from_msg(msg->pruned, &pruned);
    if (rc == 0 && !crdt_ctx_covers(ctx, pruned))
        rc = ENGRAM_EDECODE;
    if (rc == 0)
        rc = crdt_ctx_join(crdt__scope_ctx_mut(scope), ctx);
    if (rc == 0)
        rc = crdt_ctx_join(crdt__scope_pruned_mut(scope), pruned);
    for (size_t i = 0; rc == 0 && i < msg->n_objects; i++)
        rc = s_decode_object(scope, msg->objects[i]);
    for (size_t i = 0; rc == 0 && i < msg->n_records; i++)
        rc = s_decode_record(scope, msg->records[i]);
    for (size_t i = 0; rc == 0 && i < msg->n_notes; i++)
        rc = s_decode_note(scope, msg->notes[i]);
    crdt_ctx_destroy(&ctx);
    crdt_ctx_destroy(&pruned);
    engram__scope__free_unpacked(msg, NULL);
    if (rc)
        crdt_scope_destroy(&scope);
    *scope_p = scope;
    return rc;
}
