/*  node_names: see names.h. */
#include "node/common/names.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static const char *const s_kinds[] = {"user", "run", "app", "agent", "team", "sys"};

static bool s_refuse(const char **why, const char *phrase)
{
    if (why)
        *why = phrase;
    return false;
}

bool node_name_ok(const char *name, size_t len, const char **why)
{
    if (len == 0)
        return s_refuse(why, "is empty");
    /* ASCII, the common case: printable characters but the space, and in NFC already. */
    size_t ascii = 0;
    while (ascii < len && name[ascii] > ' ' && name[ascii] < 0x7f)
        ascii++;
    if (ascii == len)
        return true;
    const utf8proc_uint8_t *at = (const utf8proc_uint8_t *)name;
    size_t left = len;
    while (left) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t step = utf8proc_iterate(at, (utf8proc_ssize_t)left, &cp);
        if (step <= 0)
            return s_refuse(why, "is not valid UTF-8");
        switch (utf8proc_category(cp)) {
        case UTF8PROC_CATEGORY_CC:
            return s_refuse(why, "holds a control character");
        case UTF8PROC_CATEGORY_CF:
            return s_refuse(why, "holds an invisible or formatting character");
        case UTF8PROC_CATEGORY_ZS:
        case UTF8PROC_CATEGORY_ZL:
        case UTF8PROC_CATEGORY_ZP:
            return s_refuse(why, "holds a space or line separator");
        case UTF8PROC_CATEGORY_CS:
        case UTF8PROC_CATEGORY_CO:
        case UTF8PROC_CATEGORY_CN:
            return s_refuse(why, "holds a private-use or unassigned code point");
        default:
            break;
        }
        at += step;
        left -= (size_t)step;
    }
    /* Normalisation form C: the same text is the same bytes. utf8proc wants the length. */
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t nfc_len = utf8proc_map((const utf8proc_uint8_t *)name, (utf8proc_ssize_t)len,
                                            &nfc, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    bool same = nfc_len == (utf8proc_ssize_t)len && memcmp(nfc, name, len) == 0;
    free(nfc);
    return same ? true : s_refuse(why, "is not in Unicode normalisation form C");
}

bool node_scope_name_ok(const char *scope, size_t len, const char **why)
{
    if (len > NODE_MAX_SCOPE_BYTES)
        return s_refuse(why, "is longer than 256 bytes");
    const char *colon = memchr(scope, ':', len);
    size_t kind_len = colon ? (size_t)(colon - scope) : 0;
    bool known = false;
    for (size_t i = 0; colon && i < sizeof s_kinds / sizeof s_kinds[0]; i++)
        known |= strlen(s_kinds[i]) == kind_len && memcmp(scope, s_kinds[i], kind_len) == 0;
    if (!known)
        return s_refuse(why, "is not KIND:ID with KIND one of " NODE_SCOPE_KINDS);
    const char *id = colon + 1;
    const char *id_why = NULL;
    if (!node_name_ok(id, len - (size_t)(id - scope), &id_why))
        return s_refuse(why, id_why);
    return true;
}
