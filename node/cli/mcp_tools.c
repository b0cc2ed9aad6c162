/*  mcp_tools: engram's own MCP tools, the memory operations of libengram for a model: add,
 *  search, get, list (paged), update (with the version it expects), delete, forget (a filter,
 *  a dry run unless told otherwise), history, context (a prompt block within a token budget)
 *  and share. Each tool is one or a few libengram calls as the session's agent; each says in
 *  its annotations whether it only reads, destroys or may be repeated.
 *
 *  Invariants: a tool reads and writes only through libengram (access control is the node's);
 *  values reach the model as JSON strings (bytes that are not UTF-8 as cli_json_bytes writes
 *  them); a failure is an isError result saying what went wrong and, where there is one, what
 *  to do (a stale version: get the memory again).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/cli/cli.h"
#include "node/cli/mcp.h"

json_t *mcp_engram_error(engram_t *engram, int rc, const char *scope)
{
    const char *message = engram_last_error(engram);
    const char *hint = "";
    if (rc == ENGRAM_EDENIED)
        hint = " (an admin grants access: engram acl allow AGENT SCOPE read,write)";
    else if (rc == ENGRAM_EUNAVAILABLE)
        hint = " (is the node running? its socket is --socket or $ENGRAM_SOCKET)";
    else if (rc == ENGRAM_ECONFLICT)
        hint = " (memory_get it again, then update with the version it gives)";
    return mcp_tool_error("engram: %s on %s%s%s%s", engram_strerror(rc), scope,
                          *message ? ": " : "", message, hint);
}

/*  --- calls ---------------------------------------------------------------------------------- */

static const char *s_str(const json_t *args, const char *name)
{
    return json_string_value(json_object_get(args, name));
}

static const char *s_scope(const mcp_defaults_t *defaults, const json_t *args)
{
    const char *scope = s_str(args, "scope");
    return scope ? scope : defaults->scope;
}

/*  A JSON value's compact text (NULL when value is NULL), the caller's to free. */
static char *s_dump(const json_t *value)
{
    return value ? json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

/*  What a model sees of a stored version. */
static json_t *s_item(const engram_item_t *item, const char *key)
{
    char when[CLI_TIME_CHARS + 1];
    cli_format_time(item->hlc >> ENGRAM_HLC_LOGICAL_BITS, when);
    json_t *meta = *item->meta_json ? json_loads(item->meta_json, JSON_DECODE_ANY, NULL) : NULL;
    return json_pack("{s:s, s:o, s:s, s:s, s:s, s:o}", "key", key ? key : item->key, "text",
                     cli_json_bytes(item->value, item->len), "author", item->author, "user",
                     item->user, "time", when, "metadata", meta ? meta : json_null());
}

/*  The structured result of a write: its causal token, and more. Takes more (may be NULL). */
static json_t *s_written(const engram_result_t *result, json_t *more)
{
    json_t *doc = json_pack("{s:s}", "token", result && result->token ? result->token : "");
    return cli_json_merge(doc, more ? more : json_object());
}

static json_t *s_add(engram_t *engram, const mcp_defaults_t *defaults, const json_t *args)
{
    const char *scope = s_scope(defaults, args), *text = s_str(args, "text"),
               *id = s_str(args, "id");
    if (id && !*id) /* an empty id is none, as libengram takes it: a new memory */
        id = NULL;
    char *meta = s_dump(json_object_get(args, "metadata"));
    engram_result_t *result = NULL;
    int rc = id ? engram_remember_id(engram, scope, id, text, meta, 0, &result)
                : engram_remember(engram, scope, text, meta, 0, &result);
    free(meta);
    json_t *out = rc == 0 ? mcp_tool_result_json(s_written(
                                result, json_pack("{s:s, s:s, s:b}", "id", result->memory_id,
                                                  "scope", scope, "stored", !id || result->number)))
                          : mcp_engram_error(engram, rc, scope);
    engram_result_destroy(&result);
    return out;
}

/*  The search options of args: the scopes searched are scope and those of scopes, both if
 *  both are given (as the Python client's search takes them). scopes points at storage the
 *  caller frees. */
static engram_search_options_t s_search_options(const mcp_defaults_t *defaults, const json_t *args,
                                                const char ***scopes, char **filter)
{
    engram_search_options_t options = {0};
    json_t *list = json_object_get(args, "scopes");
    const char *one = s_str(args, "scope");
    size_t n = (one ? 1 : 0) + json_array_size(list), at = 0;
    *scopes = n ? calloc(n, sizeof **scopes) : NULL;
    if (one && *scopes)
        (*scopes)[at++] = one;
    for (size_t i = 0; *scopes && i < json_array_size(list); i++)
        (*scopes)[at++] = json_string_value(json_array_get(list, i));
    if (*scopes) {
        options.scopes = *scopes;
        options.nscopes = n;
    } else {
        options.scopes = defaults->search_scopes;
        options.nscopes = defaults->nsearch_scopes;
    }
    *filter = s_dump(json_object_get(args, "filters"));
    options.filter_json = *filter;
    options.top_k = (unsigned)json_number_value(json_object_get(args, "top_k"));
    return options;
}

static json_t *s_search(engram_t *engram, const mcp_defaults_t *defaults, const json_t *args,
                        bool context)
{
    const char **scopes = NULL;
    char *filter = NULL;
    engram_search_options_t options = s_search_options(defaults, args, &scopes, &filter);
    unsigned tokens = (unsigned)json_number_value(json_object_get(args, "tokens"));
    engram_result_t *result = NULL;
    int rc = context ? engram_context(engram, s_str(args, "query"), &options, tokens ? tokens : 500,
                                      &result)
                     : engram_search(engram, s_str(args, "query"), &options, &result);
    json_t *out;
    if (rc != 0)
        out = mcp_engram_error(engram, rc, options.nscopes ? options.scopes[0] : "every scope");
    else if (context)
        out = mcp_tool_result(result->context, json_pack("{s:s, s:I}", "context", result->context,
                                                         "tokens", (json_int_t)result->number));
    else {
        json_t *items = json_array();
        for (size_t i = 0; i < result->nitems; i++) {
            json_t *item = s_item(&result->items[i], NULL);
            json_object_set_new(item, "scope", json_string(result->items[i].scope));
            json_object_set_new(item, "score", json_real(result->items[i].score));
            items = cli_json_append(items, item);
        }
        out = mcp_tool_result_json(json_pack("{s:o}", "results", items));
    }
    engram_result_destroy(&result);
    free(scopes);
    free(filter);
    return out;
}

static json_t *s_get(engram_t *engram, const mcp_defaults_t *defaults, const json_t *args)
{
    const char *scope = s_scope(defaults, args), *key = s_str(args, "key");
    engram_result_t *result = NULL;
    int rc = engram_get(engram, scope, key, NULL, 0, &result);
    if (rc == 0 && result->nitems == 0)
        rc = ENGRAM_ENOTFOUND;
    json_t *out;
    if (rc != 0)
        out = rc == ENGRAM_ENOTFOUND ? mcp_tool_error("no memory %s in %s", key, scope)
                                     : mcp_engram_error(engram, rc, scope);
    else {
        json_t *doc = s_item(&result->items[0], key), *siblings = json_array();
        for (size_t i = 1; i < result->nitems; i++)
            siblings = cli_json_append(siblings, s_item(&result->items[i], key));
        json_object_set_new(doc, "scope", json_string(scope));
        json_object_set_new(doc, "version", json_string(result->token));
        json_object_set_new(doc, "siblings", siblings);
        out = mcp_tool_result_json(doc);
    }
    engram_result_destroy(&result);
    return out;
}

static json_t *s_list(engram_t *engram, const mcp_defaults_t *defaults, const json_t *args)
{
    const char *scope = s_scope(defaults, args);
    char *filter = s_dump(json_object_get(args, "filters"));
    unsigned limit = (unsigned)json_number_value(json_object_get(args, "limit"));
    engram_result_t *result = NULL;
    int rc = engram_list_filtered(engram, scope, s_str(args, "prefix"), filter,
                                  s_str(args, "cursor"), limit, &result);
    free(filter);
    json_t *out;
    if (rc != 0)
        out = mcp_engram_error(engram, rc, scope);
    else {
        json_t *items = json_array();
        for (size_t i = 0; i < result->nitems; i++) {
            const engram_item_t *item = &result->items[i];
            items = cli_json_append(items, json_pack("{s:s, s:s, s:o}", "key", item->key, "type",
                                                     item->type, "preview",
                                                     cli_json_bytes(item->value, item->len)));
        }
        out = mcp_tool_result_json(
            json_pack("{s:o, s:s}", "items", items, "next_cursor", result->next_cursor));
    }
    engram_result_destroy(&result);
    return out;
}

/*  The tool result of a plain write rc (its token), or its error; destroys *result. */
static json_t *s_wrote(engram_t *engram, int rc, engram_result_t **result, const char *scope)
{
    json_t *out = rc == 0 ? mcp_tool_result_json(s_written(*result, NULL))
                          : mcp_engram_error(engram, rc, scope);
    engram_result_destroy(result);
    return out;
}

static json_t *s_update(engram_t *engram, const mcp_defaults_t *defaults, const json_t *args)
{
    const char *scope = s_scope(defaults, args), *text = s_str(args, "text");
    char *meta = s_dump(json_object_get(args, "metadata"));
    engram_result_t *result = NULL;
    int rc = engram_put_if_version(engram, scope, s_str(args, "key"), text, strlen(text), meta, 0,
                                   s_str(args, "version"), &result);
    free(meta);
    return s_wrote(engram, rc, &result, scope);
}

static json_t *s_delete(engram_t *engram, const mcp_defaults_t *defaults, const json_t *args)
{
    const char *scope = s_scope(defaults, args);
    engram_result_t *result = NULL;
    int rc = engram_delete(engram, scope, s_str(args, "key"), &result);
    return s_wrote(engram, rc, &result, scope);
}

static json_t *s_forget(engram_t *engram, const mcp_defaults_t *defaults, const json_t *args)
{
    const char *scope = s_scope(defaults, args);
    json_t *dry = json_object_get(args, "dry_run");
    bool dry_run = !json_is_false(dry);
    char *filter = s_dump(json_object_get(args, "filters"));
    int64_t count = 0;
    int rc = engram_forget(engram, scope, filter, dry_run, &count);
    free(filter);
    if (rc != 0)
        return mcp_engram_error(engram, rc, scope);
    return mcp_tool_result_json(json_pack("{s:I, s:b, s:s}", "count", (json_int_t)count, "dry_run",
                                          dry_run, "scope", scope));
}

static json_t *s_history(engram_t *engram, const mcp_defaults_t *defaults, const json_t *args)
{
    const char *scope = s_scope(defaults, args), *key = s_str(args, "key");
    engram_result_t *result = NULL;
    int rc = engram_history(engram, scope, key, &result);
    json_t *out;
    if (rc != 0)
        out = mcp_engram_error(engram, rc, scope);
    else {
        json_t *steps = json_array();
        for (size_t i = 0; i < result->nitems; i++) {
            json_t *step = s_item(&result->items[i], key);
            json_object_set_new(step, "op", json_string(result->items[i].op));
            steps = cli_json_append(steps, step);
        }
        out = mcp_tool_result_json(
            json_pack("{s:s, s:s, s:o}", "scope", scope, "key", key, "steps", steps));
    }
    engram_result_destroy(&result);
    return out;
}

static json_t *s_share(engram_t *engram, const mcp_defaults_t *defaults, const json_t *args)
{
    (void)defaults;
    const char *scope = s_str(args, "scope");
    engram_result_t *result = NULL;
    int rc = engram_share(engram, s_str(args, "key"), scope, &result);
    return s_wrote(engram, rc, &result, scope);
}

static json_t *s_search_only(engram_t *engram, const mcp_defaults_t *defaults, const json_t *args)
{
    return s_search(engram, defaults, args, false);
}

static json_t *s_context(engram_t *engram, const mcp_defaults_t *defaults, const json_t *args)
{
    return s_search(engram, defaults, args, true);
}

bool mcp_tools_call(engram_t *engram, const mcp_defaults_t *defaults, const char *name,
                    json_t *args, json_t **result)
{
    static const struct {
        const char *name;
        json_t *(*run)(engram_t *, const mcp_defaults_t *, const json_t *);
    } tools[] = {
        {"memory_add", s_add},         {"memory_search", s_search_only},
        {"memory_get", s_get},         {"memory_list", s_list},
        {"memory_update", s_update},   {"memory_delete", s_delete},
        {"memory_forget", s_forget},   {"memory_history", s_history},
        {"memory_context", s_context}, {"memory_share", s_share},
    };
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
        if (strcmp(name, tools[i].name) == 0) {
            *result = tools[i].run(engram, defaults, args);
            return true;
        }
    return false;
}
