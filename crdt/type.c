/*  crdt_type: the table of object types (see type.h). */
#include "crdt/type.h"

#include "crdt/awset.h"
#include "crdt/counter.h"
#include "crdt/log.h"
#include "crdt/mvreg.h"

static const crdt_type_t *const s_types[] = {
    [CRDT_REG] = &crdt__mvreg_type,
    [CRDT_SET] = &crdt__awset_type,
    [CRDT_COUNTER] = &crdt__counter_type,
    [CRDT_LOG] = &crdt__log_type,
};

const crdt_type_t *crdt_type_by_id(unsigned id)
{
    return (id >= 1 && id <= CRDT_TYPE_MAX) ? s_types[id] : NULL;
}
