/*  node_wire: see wire.h. The wire format: each field is a varint key (number << 3 | wire
 *  type) followed by a varint (type 0), 8 bytes (1), a varint length and that many bytes (2),
 *  or 4 bytes (5); types 3 and 4 (groups) do not occur in proto3. */
#include "node/common/wire.h"

#include <stdbool.h>
#include <utf8proc.h>

#include "engram/error.h"

enum { S_VARINT = 0, S_FIXED64 = 1, S_BYTES = 2, S_FIXED32 = 5 };

bool node_wire_text_ok(const char *text, size_t len)
{
    const utf8proc_uint8_t *at = (const utf8proc_uint8_t *)text;
    while (len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t step = utf8proc_iterate(at, (utf8proc_ssize_t)len, &cp);
        if (step <= 0 || cp == 0)
            return false;
        at += step;
        len -= (size_t)step;
    }
    return true;
}

/*  Reads a varint at *at (before end) into *value; false if it runs past end or 10 bytes. */
static bool s_varint(const uint8_t **at, const uint8_t *end, uint64_t *value)
{
    *value = 0;
    for (unsigned shift = 0; shift < 70 && *at < end; shift += 7) {
        uint8_t byte = *(*at)++;
        *value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return true;
    }
    return false;
}

static int s_check(const ProtobufCMessageDescriptor *desc, const uint8_t *at, const uint8_t *end,
                   unsigned depth, const char **field)
{
    if (depth > NODE_WIRE_MAX_DEPTH)
        return ENGRAM_EDECODE;
    while (at < end) {
        uint64_t key, size;
        if (!s_varint(&at, end, &key) || key >> 3 == 0 || key >> 3 > UINT32_MAX)
            return ENGRAM_EDECODE;
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3));
        *field = fd ? fd->name : NULL;
        switch (key & 7) {
        case S_VARINT:
            if (!s_varint(&at, end, &size))
                return ENGRAM_EDECODE;
            break;
        case S_FIXED64:
        case S_FIXED32: {
            size_t width = (key & 7) == S_FIXED64 ? 8 : 4;
            if ((size_t)(end - at) < width)
                return ENGRAM_EDECODE;
            at += width;
            break;
        }
        case S_BYTES:
            if (!s_varint(&at, end, &size) || size > (uint64_t)(end - at))
                return ENGRAM_EDECODE;
            if (fd && fd->type == PROTOBUF_C_TYPE_STRING &&
                !node_wire_text_ok((const char *)at, (size_t)size))
                return ENGRAM_EINVAL;
            if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                int rc = s_check(fd->descriptor, at, at + size, depth + 1, field);
                if (rc)
                    return rc;
            }
            at += size;
            break;
        default:
            return ENGRAM_EDECODE;
        }
    }
    *field = NULL;
    return 0;
}

int node_wire_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                            const char **field)
{
    const char *where = NULL;
    int rc = len ? s_check(desc, data, data + len, 0, &where) : 0;
    if (field)
        *field = rc ? where : NULL;
    return rc;
}
