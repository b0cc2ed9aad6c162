/*  libFuzzer target for crdt_value_decode (crdt/value.h): register and log values, whose
 *  provenance access control trusts.
 *
 *  Any input must either be refused with ENGRAM_EDECODE or ENGRAM_EVERSION and a NULL result,
 *  or decode to a value whose provenance is sorted and free of duplicates, whose payload is
 *  within ENGRAM_MAX_VALUE_BYTES and whose schema major this build reads; it must re-encode
 *  and decode to an equal value with byte-for-byte the same encoding. A violation abort()s so
 *  libFuzzer saves the input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/value.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "fuzz_check.h"

static int s_sentinel;
#define NOT_NULL ((void *)&s_sentinel)

static bool s_strv_canonical(char *const *strv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strv[i] || (i > 0 && strcmp(strv[i - 1], strv[i]) >= 0))
            return false;
    return true;
}

static bool s_strv_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

static void s_check_value(const crdt_value_t *v)
{
    CHECK(v->user && v->meta_json);
    CHECK(s_strv_canonical(v->agents, v->nagents));
    CHECK(s_strv_canonical(v->resources, v->nresources));
    CHECK(v->len <= ENGRAM_MAX_VALUE_BYTES);
    CHECK(v->len == 0 || v->data);
    CHECK(v->schema_major >= 1 && v->schema_major <= ENGRAM_SCHEMA_MAJOR);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crdt_value_t *v = NOT_NULL;
    int rc = crdt_value_decode(data, size, &v);
    if (rc != 0) {
        CHECK(rc == ENGRAM_EDECODE || rc == ENGRAM_EVERSION);
        CHECK(v == NULL);
        return 0;
    }
    CHECK(v && v != NOT_NULL);
    s_check_value(v);

    uint8_t *buf = NULL, *again = NULL;
    size_t len = 0, again_len = 0;
    CHECK(crdt_value_encode(v, &buf, &len) == 0);
    crdt_value_t *copy = NOT_NULL;
    CHECK(crdt_value_decode(buf, len, &copy) == 0);
    CHECK(copy && copy != NOT_NULL);
    s_check_value(copy);
    CHECK(v->created_hlc == copy->created_hlc && v->updated_hlc == copy->updated_hlc);
    CHECK(v->expires_at_ms == copy->expires_at_ms);
    CHECK(strcmp(v->user, copy->user) == 0 && strcmp(v->meta_json, copy->meta_json) == 0);
    CHECK(s_strv_equal(v->agents, v->nagents, copy->agents, copy->nagents));
    CHECK(s_strv_equal(v->resources, v->nresources, copy->resources, copy->nresources));
    CHECK(v->len == copy->len && (v->len == 0 || memcmp(v->data, copy->data, v->len) == 0));
    CHECK(crdt_value_encode(copy, &again, &again_len) == 0);
    CHECK(again_len == len && memcmp(buf, again, len) == 0);

    /* Merging provenance into a copy of itself changes nothing. */
    CHECK(crdt_value_merge_provenance(copy, v) == 0);
    CHECK(s_strv_equal(v->agents, v->nagents, copy->agents, copy->nagents));
    CHECK(s_strv_equal(v->resources, v->nresources, copy->resources, copy->nresources));

    free(again);
    free(buf);
    crdt_value_destroy(&copy);
    crdt_value_destroy(&v);
    return 0;
}
