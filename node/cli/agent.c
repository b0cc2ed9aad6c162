/*  The agent commands: put, get, rm, ls, history, set, counter, log, remember, share, forget,
 *  vote, watch and stats, each a call of libengram and the printing of its answer.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/cli/cli.h"

/*  How long watch waits for an event before it looks at its signal flag again; this bounds
 *  the delay of a signal that arrives just before the wait starts. */
#define S_WATCH_POLL_MS 1000

/*  Set by SIGINT and SIGTERM: watch ends. */
static volatile sig_atomic_t s_stop;

/*  Prints a write's result: its token (--json: {"token": ...}). Takes *result. */
static int s_print_write(const cli_opts_t *opts, int rc, engram_result_t **result)
{
    if (rc == 0 && opts->json)
        rc = cli_json_print(json_pack("{s:o}", "token", cli_json_str((*result)->token)));
    else if (rc == 0)
        printf("%s\n", (*result)->token);
    engram_result_destroy(result);
    return rc;
}

/*  The libengram calls on the two arguments of a command: KEY in SCOPE (share: KEY, SCOPE). */
typedef int s_call_t(engram_t *engram, const char *arg0, const char *arg1,
                     engram_result_t **result);

/*  A write on the two arguments, which prints its token. */
static int s_write(engram_t *engram, const cli_opts_t *opts, s_call_t *call)
{
    engram_result_t *result = NULL;
    int rc = call(engram, opts->args[0], opts->args[1], &result);
    return s_print_write(opts, rc, &result);
}

/*  A change to an object, as history and watch give it: its op, the amount of a counter
 *  change, and the item's fields. */
static json_t *s_json_change(const engram_item_t *item, const char *op)
{
    return cli_json_merge(
        json_pack("{s:o, s:I}", "op", cli_json_str(op), "amount", (json_int_t)item->amount),
        cli_json_item(item));
}

/*  A history step: its op, the amount of a counter change and the item's fields; on a line,
 *  its time (UTC, from its HLC), op, author, user and value. */
static json_t *s_json_step(const engram_item_t *step)
{
    return s_json_change(step, step->op);
}

static void s_print_step(const engram_item_t *step)
{
    char when[CLI_TIME_CHARS + 1];
    cli_format_time(step->hlc >> ENGRAM_HLC_LOGICAL_BITS, when);
    printf("%s ", when);
    cli_print_str(step->op);
    putchar(' ');
    cli_print_str(step->author);
    putchar(' ');
    cli_print_str(step->user);
    cli_print_item_value(step, step->op);
}

/*  An item by its value alone: a set member; the line of a log entry. */
static json_t *s_json_value(const engram_item_t *item)
{
    return cli_json_bytes(item->value, item->len);
}

static void s_print_value(const engram_item_t *item)
{
    cli_print_field(item->value, item->len);
}

/*  --after TOKEN (with --timeout): every read that follows carries the token. */
static int s_after(engram_t *engram, const cli_opts_t *opts)
{
    return opts->after ? engram_set_after(engram, opts->after, opts->timeout_ms) : 0;
}

/*  One page of a paged read: KEY in SCOPE after CURSOR (NULL: the first), at most limit. */
typedef int s_page_call_t(engram_t *engram, const char *scope, const char *key, const char *cursor,
                          unsigned limit, engram_result_t **result);

/*  Prints result's items: with --json an array of to_json(item) (with one_page, an object:
 *  "items" and "next_cursor"), else each print_line(item) on its own line and, with one_page
 *  and a further page, "next_cursor CURSOR" on stderr. Takes *result. */
static int s_print_items(const cli_opts_t *opts, engram_result_t **result, bool one_page,
                         json_t *(*to_json)(const engram_item_t *),
                         void (*print_line)(const engram_item_t *))
{
    engram_result_t *r = *result;
    json_t *items = opts->json ? json_array() : NULL;
    for (size_t i = 0; i < r->nitems; i++) {
        if (opts->json) {
            items = cli_json_append(items, to_json(&r->items[i]));
        } else {
            print_line(&r->items[i]);
            putchar('\n');
        }
    }
    int rc = 0;
    if (opts->json && one_page)
        rc = cli_json_print(
            json_pack("{s:o, s:o}", "items", items, "next_cursor", cli_json_str(r->next_cursor)));
    else if (opts->json)
        rc = cli_json_print(items);
    else if (one_page && *r->next_cursor)
        fprintf(stderr, "next_cursor %s\n", r->next_cursor);
    engram_result_destroy(result);
    return rc;
}

/*  Reads the items of KEY in SCOPE and prints them (s_print_items): every page with call, or
 *  with --cursor or --limit the one page page_call gives. */
static int s_read_items(engram_t *engram, const cli_opts_t *opts, s_call_t *call,
                        s_page_call_t *page_call, json_t *(*to_json)(const engram_item_t *),
                        void (*print_line)(const engram_item_t *))
{
    engram_result_t *result = NULL;
    bool one_page = opts->given & (CLI_OPT_CURSOR | CLI_OPT_LIMIT);
    int rc = s_after(engram, opts);
    if (rc == 0 && one_page)
        rc = page_call(engram, opts->args[0], opts->args[1], opts->cursor, opts->limit, &result);
    else if (rc == 0)
        rc = call(engram, opts->args[0], opts->args[1], &result);
    if (rc != 0)
        return rc;
    return s_print_items(opts, &result, one_page, to_json, print_line);
}

/*  Declares the resources of --source as the provenance of the write that follows. */
static int s_sources(engram_t *engram, const cli_opts_t *opts)
{
    return opts->sources.n ? engram_set_sources(engram, opts->sources.items, opts->sources.n) : 0;
}

int cli_cmd_put(engram_t *engram, const cli_opts_t *opts)
{
    const cli_value_t *value = &opts->value;
    engram_result_t *result = NULL;
    int rc = s_sources(engram, opts);
    if (rc != 0)
        return rc;
    if ((opts->given & (CLI_OPT_REPLICAS | CLI_OPT_IF_VERSION)) && opts->embedding)
        return cli_fail(ENGRAM_EINVAL,
                        "--embedding goes with neither --replicas nor --if-version yet");
    if ((opts->given & CLI_OPT_IF_VERSION) && (opts->given & CLI_OPT_REPLICAS))
        return cli_fail(ENGRAM_EINVAL, "--if-version and --replicas cannot be given together");
    if (opts->given & CLI_OPT_IF_VERSION)
        rc = engram_put_if_version(engram, opts->args[0], opts->args[1], value->data, value->len,
                                   opts->meta, opts->ttl_ms, opts->if_version, &result);
    else if (opts->given & CLI_OPT_REPLICAS)
        rc = engram_put_replicated(engram, opts->args[0], opts->args[1], value->data, value->len,
                                   opts->meta, opts->ttl_ms, opts->replicas,
                                   (opts->given & CLI_OPT_TIMEOUT) ? opts->timeout_ms : 0, &result);
    else
        rc = engram_put_embedded(engram, opts->args[0], opts->args[1], value->data, value->len,
                                 opts->meta, opts->ttl_ms, opts->embedding, opts->dims, &result);
    return s_print_write(opts, rc, &result);
}

int cli_cmd_get(engram_t *engram, const cli_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc = 0;
    if (opts->given & CLI_OPT_AS_OF) {
        rc = s_after(engram, opts);
        if (rc == 0)
            rc = engram_get_as_of(engram, opts->args[0], opts->args[1], opts->as_of_ms, &result);
    } else {
        rc = engram_get(engram, opts->args[0], opts->args[1], opts->after, opts->timeout_ms,
                        &result);
    }
    if (rc != 0)
        return rc;
    if (result->nitems == 0) {
        engram_result_destroy(&result);
        return cli_fail(ENGRAM_ENOTFOUND, "%s %s", opts->args[0], opts->args[1]);
    }
    const engram_item_t *winner = &result->items[0];
    if (opts->json) {
        json_t *siblings = json_array();
        for (size_t i = 1; i < result->nitems; i++)
            siblings = cli_json_append(siblings, cli_json_item(&result->items[i]));
        rc = cli_json_print(
            cli_json_merge(cli_json_item(winner), json_pack("{s:o, s:o}", "siblings", siblings,
                                                            "token", cli_json_str(result->token))));
    } else {
        fwrite(winner->value, 1, winner->len, stdout);
        if (winner->len == 0 || winner->value[winner->len - 1] != '\n')
            putchar('\n');
    }
    engram_result_destroy(&result);
    return rc;
}

int cli_cmd_rm(engram_t *engram, const cli_opts_t *opts)
{
    return s_write(engram, opts, engram_delete);
}

/*  Whether a listed item carries a preview of its value: registers and logs. */
static bool s_has_preview(const engram_item_t *item)
{
    return strcmp(item->type, "reg") == 0 || strcmp(item->type, "log") == 0;
}

static json_t *s_json_key(const engram_item_t *item)
{
    json_t *key =
        json_pack("{s:o, s:o}", "key", cli_json_str(item->key), "type", cli_json_str(item->type));
    if (!s_has_preview(item))
        return key;
    return cli_json_merge(key,
                          json_pack("{s:o}", "preview", cli_json_bytes(item->value, item->len)));
}

/*  KEY, then for a register or a log a tab and the preview of its value. */
static void s_print_key(const engram_item_t *item)
{
    cli_print_field((const uint8_t *)item->key, strlen(item->key));
    if (s_has_preview(item)) {
        putchar('\t');
        cli_print_field(item->value, item->len);
    }
}

int cli_cmd_ls(engram_t *engram, const cli_opts_t *opts)
{
    const char *prefix = opts->nargs > 1 ? opts->args[1] : NULL;
    int rc = s_after(engram, opts);
    if (rc != 0)
        return rc;
    if (opts->given & (CLI_OPT_CURSOR | CLI_OPT_LIMIT)) {
        engram_result_t *result = NULL;
        rc = engram_list_filtered(engram, opts->args[0], prefix, opts->filter, opts->cursor,
                                  opts->limit, &result);
        return rc ? rc : s_print_items(opts, &result, true, s_json_key, s_print_key);
    }
    char *cursor = NULL;
    json_t *keys = opts->json ? json_array() : NULL; /* --json: printed once complete */
    while (true) {
        engram_result_t *result = NULL;
        rc = engram_list_filtered(engram, opts->args[0], prefix, opts->filter, cursor, 0, &result);
        if (rc != 0)
            break;
        for (size_t i = 0; i < result->nitems; i++) {
            const engram_item_t *item = &result->items[i];
            if (opts->json) {
                keys = cli_json_append(keys, s_json_key(item));
            } else {
                s_print_key(item);
                putchar('\n');
            }
        }
        bool done = !*result->next_cursor;
        if (!done && cursor && strcmp(cursor, result->next_cursor) == 0) {
            engram_result_destroy(&result);
            rc = cli_fail(ENGRAM_EIO, "the node repeated the cursor %s", cursor);
            break;
        }
        free(cursor);
        cursor = done ? NULL : strdup(result->next_cursor);
        engram_result_destroy(&result);
        if (done)
            break;
        if (!cursor) {
            rc = cli_fail(ENGRAM_ENOMEM, "listing");
            break;
        }
    }
    free(cursor);
    if (rc == 0 && opts->json)
        return cli_json_print(keys);
    json_decref(keys);
    return rc;
}

int cli_cmd_history(engram_t *engram, const cli_opts_t *opts)
{
    return s_read_items(engram, opts, engram_history, engram_history_page, s_json_step,
                        s_print_step);
}

int cli_cmd_set_add(engram_t *engram, const cli_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc = engram_set_add(engram, opts->args[0], opts->args[1], opts->args[2], &result);
    return s_print_write(opts, rc, &result);
}

int cli_cmd_set_rm(engram_t *engram, const cli_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc = engram_set_remove(engram, opts->args[0], opts->args[1], opts->args[2], &result);
    return s_print_write(opts, rc, &result);
}

int cli_cmd_set_members(engram_t *engram, const cli_opts_t *opts)
{
    return s_read_items(engram, opts, engram_set_members, engram_set_members_page, s_json_value,
                        s_print_value);
}

int cli_check_counter_add(const cli_command_t *command, const cli_opts_t *opts)
{
    long long amount;
    if (!cli_parse_int(opts->args[2], INT64_MIN, INT64_MAX, &amount))
        return cli_usage(command, "N must be an integer, not '%s'", opts->args[2]);
    return 0;
}

int cli_cmd_counter_add(engram_t *engram, const cli_opts_t *opts)
{
    long long amount;
    bool parsed = cli_parse_int(opts->args[2], INT64_MIN, INT64_MAX, &amount);
    assert(parsed);
    (void)parsed;
    engram_result_t *result = NULL;
    int rc = engram_counter_add(engram, opts->args[0], opts->args[1], amount, &result);
    return s_print_write(opts, rc, &result);
}

int cli_cmd_counter_get(engram_t *engram, const cli_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc = s_after(engram, opts);
    if (rc == 0)
        rc = engram_counter_get(engram, opts->args[0], opts->args[1], &result);
    if (rc != 0)
        return rc;
    if (opts->json)
        rc = cli_json_print(json_pack("{s:I, s:o}", "value", (json_int_t)result->number, "token",
                                      cli_json_str(result->token)));
    else
        printf("%" PRId64 "\n", result->number);
    engram_result_destroy(&result);
    return rc;
}

int cli_cmd_log_append(engram_t *engram, const cli_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc = s_sources(engram, opts);
    if (rc == 0)
        rc = engram_log_append(engram, opts->args[0], opts->args[1], opts->value.data,
                               opts->value.len, &result);
    return s_print_write(opts, rc, &result);
}

int cli_cmd_log_range(engram_t *engram, const cli_opts_t *opts)
{
    return s_read_items(engram, opts, engram_log_range, engram_log_page, cli_json_item,
                        s_print_value);
}

int cli_cmd_remember(engram_t *engram, const cli_opts_t *opts)
{
    const cli_value_t *text = &opts->value;
    if (memchr(text->data, '\0', text->len))
        return cli_fail(ENGRAM_EINVAL, "the text holds a NUL byte");
    engram_result_t *result = NULL;
    int rc = s_sources(engram, opts);
    if (rc == 0)
        rc = engram_remember_embedded(engram, opts->args[0], opts->id, (const char *)text->data,
                                      opts->meta, opts->ttl_ms, opts->embedding, opts->dims,
                                      &result);
    if (rc != 0)
        return rc;
    if (opts->json)
        rc = cli_json_print(json_pack("{s:o, s:o}", "memory_id", cli_json_str(result->memory_id),
                                      "token", cli_json_str(result->token)));
    else
        printf("%s\n", result->memory_id);
    engram_result_destroy(&result);
    return rc;
}

int cli_cmd_share(engram_t *engram, const cli_opts_t *opts)
{
    return s_write(engram, opts, engram_share);
}

int cli_cmd_forget(engram_t *engram, const cli_opts_t *opts)
{
    int64_t count = 0;
    int rc = engram_forget(engram, opts->args[0], opts->filter, opts->dry_run, &count);
    if (rc != 0)
        return rc;
    if (opts->json)
        return cli_json_print(
            json_pack("{s:I, s:b}", "count", (json_int_t)count, "dry_run", opts->dry_run));
    printf("%" PRId64 "\n", count);
    return 0;
}

/*  A vote's AMOUNT: +1 (or 1) or -1; 0 for anything else. */
static int s_vote_amount(const char *arg)
{
    if (strcmp(arg, "+1") == 0 || strcmp(arg, "1") == 0)
        return 1;
    return strcmp(arg, "-1") == 0 ? -1 : 0;
}

int cli_check_vote(const cli_command_t *command, const cli_opts_t *opts)
{
    if (!s_vote_amount(opts->args[2]))
        return cli_usage(command, "a vote is +1 or -1, not '%s'", opts->args[2]);
    return 0;
}

int cli_cmd_vote(engram_t *engram, const cli_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc =
        engram_vote(engram, opts->args[0], opts->args[1], s_vote_amount(opts->args[2]), &result);
    if (rc == 0 && opts->json)
        rc = cli_json_print(json_pack("{s:o, s:I}", "token", cli_json_str(result->token), "votes",
                                      (json_int_t)result->number));
    else if (rc == 0)
        printf("%s\n", result->token);
    engram_result_destroy(&result);
    return rc;
}

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

/*  Prints an event on a line. Returns 0 or an ENGRAM_E* code. */
static int s_print_event(const cli_opts_t *opts, const engram_event_t *event)
{
    if (opts->json) {
        json_t *where = json_pack("{s:o, s:o}", "scope", cli_json_str(event->scope), "key",
                                  cli_json_str(event->key));
        return cli_json_print(
            cli_json_merge(cli_json_merge(where, s_json_change(&event->item, event->op)),
                           json_pack("{s:o}", "token", cli_json_str(event->token))));
    } else {
        cli_print_str(event->scope);
        putchar(' ');
        cli_print_str(event->key);
        putchar(' ');
        cli_print_str(event->op);
        cli_print_item_value(&event->item, event->op);
        putchar('\n');
    }
    return 0;
}

int cli_cmd_watch(engram_t *engram, const cli_opts_t *opts)
{
    /*  No SA_RESTART: the signal must cut engram_next_event's wait short. */
    struct sigaction action = {.sa_handler = s_on_signal};
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);

    int rc = engram_subscribe(engram, opts->args[0]);
    if (rc != 0)
        return s_stop ? 0 : rc;
    for (long seen = 0; !s_stop && (opts->count == 0 || seen < opts->count);) {
        engram_event_t *event = NULL;
        rc = engram_next_event(engram, S_WATCH_POLL_MS, &event);
        if (rc == ENGRAM_ETIMEDOUT)
            continue;
        if (rc != 0)
            return rc;
        rc = s_print_event(opts, event);
        engram_event_destroy(&event);
        if (rc != 0)
            return rc;
        if (fflush(stdout) != 0)
            return cli_fail(ENGRAM_EIO, "writing stdout: %s", strerror(errno));
        seen++;
    }
    return 0;
}

int cli_cmd_stats(engram_t *engram, const cli_opts_t *opts)
{
    engram_stats_t stats;
    int rc = engram_stats(engram, &stats);
    if (rc != 0)
        return rc;
    char node_id[CLI_NODE_ID_CHARS + 1], replica_id[CLI_NODE_ID_CHARS + 1];
    cli_node_id(stats.node_id, node_id);
    cli_node_id(stats.replica_id, replica_id);
    const struct {
        const char *name;
        uint64_t value;
    } counts[] = {
        {"uptime_ms", stats.uptime_ms},
        {"requests", stats.requests},
        {"errors", stats.errors},
        {"writes", stats.writes},
        {"commits", stats.commits},
        {"scopes", stats.scopes},
        {"subscribers", stats.subscribers},
        {"purged", stats.purged},
        {"malformed", stats.malformed},
        {"clock_refusals", stats.clock_refusals},
        {"parked", stats.parked},
        {"busy_refusals", stats.busy_refusals},
        {"connections_cut", stats.connections_cut},
        {"connections", stats.connections},
        {"hlc", stats.hlc},
    };
    size_t n = sizeof counts / sizeof counts[0];
    if (opts->json) {
        json_t *doc = json_pack("{s:s, s:s}", "node_id", node_id, "replica_id", replica_id);
        for (size_t i = 0; i < n; i++)
            doc = cli_json_merge(doc,
                                 json_pack("{s:o}", counts[i].name, cli_json_u64(counts[i].value)));
        return cli_json_print(
            cli_json_merge(doc, json_pack("{s:o}", "durability", cli_json_str(stats.durability))));
    }
    printf("node_id: %s\nreplica_id: %s\n", node_id, replica_id);
    for (size_t i = 0; i < n; i++)
        printf("%s: %" PRIu64 "\n", counts[i].name, counts[i].value);
    printf("durability: %s\n", stats.durability);
    return 0;
}

/*  A search result as JSON: the item's fields, its scope, key, type, score and, with
 *  --explain, the score's components. */
static json_t *s_json_result(const engram_item_t *item)
{
    json_t *explain = item->explain_json[0] ? json_loads(item->explain_json, 0, NULL) : NULL;
    return cli_json_merge(cli_json_item(item),
                          json_pack("{s:o, s:o, s:o, s:f, s:o}", "scope", cli_json_str(item->scope),
                                    "key", cli_json_str(item->key), "type",
                                    cli_json_str(item->type), "score", item->score, "explain",
                                    explain ? explain : json_null()));
}

/*  SCORE SCOPE KEY AUTHOR VALUE; with --explain, the components on the next line. */
static void s_print_result(const engram_item_t *item)
{
    printf("%.4f ", item->score);
    cli_print_str(item->scope);
    putchar(' ');
    cli_print_str(item->key);
    putchar(' ');
    cli_print_str(item->author);
    putchar(' ');
    cli_print_field(item->value, item->len);
    if (item->explain_json[0]) {
        fputs("\n  ", stdout);
        cli_print_str(item->explain_json);
    }
}

/*  The search options of the command line. */
static engram_search_options_t s_search_options(const cli_opts_t *opts)
{
    return (engram_search_options_t){
        .scopes = opts->scopes.items,
        .nscopes = opts->scopes.n,
        .filter_json = opts->filter,
        .top_k = opts->top_k,
        .threshold = opts->threshold,
        .mode = opts->mode,
        .embedding = opts->embedding,
        .dims = opts->dims,
        .half_life_ms = (double)opts->half_life_ms,
        .votes = opts->votes,
        .explain = opts->explain,
    };
}

int cli_cmd_search(engram_t *engram, const cli_opts_t *opts)
{
    int rc = s_after(engram, opts);
    if (rc != 0)
        return rc;
    engram_search_options_t options = s_search_options(opts);
    engram_result_t *result = NULL;
    rc = engram_search(engram, opts->args[0], &options, &result);
    return rc ? rc : s_print_items(opts, &result, false, s_json_result, s_print_result);
}

int cli_check_context(const cli_command_t *command, const cli_opts_t *opts)
{
    return opts->tokens ? 0 : cli_usage(command, "context needs --tokens N, the block's budget");
}

/*  The block as it is (--json: "context", "tokens" and the memories in it). */
int cli_cmd_context(engram_t *engram, const cli_opts_t *opts)
{
    int rc = s_after(engram, opts);
    if (rc != 0)
        return rc;
    engram_search_options_t options = s_search_options(opts);
    engram_result_t *result = NULL;
    rc = engram_context(engram, opts->args[0], &options, opts->tokens, &result);
    if (rc != 0)
        return rc;
    if (opts->json) {
        json_t *items = json_array();
        for (size_t i = 0; i < result->nitems; i++)
            items = cli_json_append(items, s_json_result(&result->items[i]));
        rc = cli_json_print(json_pack("{s:o, s:I, s:o}", "context", cli_json_str(result->context),
                                      "tokens", (json_int_t)result->number, "items", items));
    } else {
        fputs(result->context, stdout);
    }
    engram_result_destroy(&result);
    return rc;
}
