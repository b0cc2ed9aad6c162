/*  node_json: the metadata and UTF-8 checks, on jansson (see json.h). */
#include "node/api/json.h"

#include <jansson.h>
#include <stdio.h>

/*  True when no array or object in value nests deeper than depth. The recursion is bounded by
 *  depth, and jansson's parser has already bounded it by JSON_PARSER_MAX_DEPTH. */
static bool s_depth_within(json_t *value, int depth)
{
    if (!json_is_array(value) && !json_is_object(value))
        return true;
    if (depth == 0)
        return false;
    size_t index;
    const char *key;
    json_t *child;
    if (json_is_array(value)) {
        json_array_foreach(value, index, child)
        {
            if (!s_depth_within(child, depth - 1))
                return false;
        }
    } else {
        json_object_foreach(value, key, child)
        {
            if (!s_depth_within(child, depth - 1))
                return false;
        }
    }
    return true;
}

bool node_json_valid(const char *text, size_t len, char *why, size_t why_len)
{
    /*  Without JSON_DISABLE_EOF_CHECK, jansson refuses anything but whitespace after the
     *  value; JSON_DECODE_ANY takes a scalar as the whole document; JSON_DECODE_INT_AS_REAL
     *  reads every number as a double, so integers past int64 are JSON too. */
    json_error_t error;
    json_t *doc =
        json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &error);
    bool deep = doc && !s_depth_within(doc, NODE_JSON_MAX_DEPTH);
    if (why && !doc)
        snprintf(why, why_len, "%s (at byte %d)", error.text, error.position);
    else if (why && deep)
        snprintf(why, why_len, "nested deeper than %d arrays or objects", NODE_JSON_MAX_DEPTH);
    json_decref(doc);
    return doc && !deep;
}

bool node_json_utf8_valid(const char *text, size_t len)
{
    json_t *string = json_stringn(text, len); /* NULL unless text is UTF-8 */
    bool valid = string != NULL;
    json_decref(string);
    return valid;
}
