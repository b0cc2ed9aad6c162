/*  The agent commands: put, get, rm, ls, history, set, counter, log, remember, share, watch
 *  and stats, each a call of libengram and the printing of its answer.
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

/*  Prints a write's result: its token (--json: {"token": ...}). */
static int s_print_write(const cli_opts_t *opts, int rc, engram_result_t **result)
{
    if (rc == 0) {
        if (opts->json)
            cli_json_token(*result);
        else
            cli_print_token(*result);
    }
    engram_result_destroy(result);
    return rc;
}

int cli_cmd_put(engram_t *engram, const cli_opts_t *opts)
{
    cli_value_t value;
    int rc = cli_value_init(&value, opts->args[2]);
    if (rc != 0)
        return rc;
    engram_result_t *result = NULL;
    if (opts->given & CLI_OPT_REPLICAS)
        rc = engram_put_replicated(engram, opts->args[0], opts->args[1], value.data, value.len,
                                   opts->meta, opts->ttl_ms, opts->replicas,
                                   (opts->given & CLI_OPT_TIMEOUT) ? opts->timeout_ms : 0, &result);
    else
        rc = engram_put(engram, opts->args[0], opts->args[1], value.data, value.len, opts->meta,
                        opts->ttl_ms, &result);
    cli_value_fini(&value);
    return s_print_write(opts, rc, &result);
}

int cli_cmd_get(engram_t *engram, const cli_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc =
        engram_get(engram, opts->args[0], opts->args[1], opts->after, opts->timeout_ms, &result);
    if (rc != 0)
        return rc;
    if (result->nitems == 0) {
        engram_result_destroy(&result);
        return cli_fail(ENGRAM_ENOTFOUND, "%s %s", opts->args[0], opts->args[1]);
    }
    const engram_item_t *winner = &result->items[0];
    if (opts->json) {
        putchar('{');
        cli_json_item_fields(winner);
        fputs(",\"siblings\":[", stdout);
        for (size_t i = 1; i < result->nitems; i++) {
            if (i > 1)
                putchar(',');
            cli_json_item(&result->items[i], NULL);
        }
        fputs("],\"token\":", stdout);
        cli_json_str(result->token);
        fputs("}\n", stdout);
    } else {
        fwrite(winner->value, 1, winner->len, stdout);
        if (winner->len == 0 || winner->value[winner->len - 1] != '\n')
            putchar('\n');
    }
    engram_result_destroy(&result);
    return 0;
}

int cli_cmd_rm(engram_t *engram, const cli_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc = engram_delete(engram, opts->args[0], opts->args[1], &result);
    return s_print_write(opts, rc, &result);
}

int cli_cmd_ls(engram_t *engram, const cli_opts_t *opts)
{
    const char *prefix = opts->nargs > 1 ? opts->args[1] : NULL;
    char *cursor = NULL;
    bool first = true;
    int rc;
    if (opts->json)
        putchar('[');
    while (true) {
        engram_result_t *result = NULL;
        rc = engram_list(engram, opts->args[0], prefix, cursor, 0, &result);
        if (rc != 0)
            break;
        for (size_t i = 0; i < result->nitems; i++) {
            const engram_item_t *item = &result->items[i];
            if (opts->json) {
                fputs(first ? "{\"key\":" : ",{\"key\":", stdout);
                cli_json_str(item->key);
                fputs(",\"type\":", stdout);
                cli_json_str(item->type);
                putchar('}');
            } else {
                cli_print_field((const uint8_t *)item->key, strlen(item->key));
                putchar('\n');
            }
            first = false;
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
        fputs("]\n", stdout);
    return rc;
}

int cli_cmd_history(engram_t *engram, const cli_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc = engram_history(engram, opts->args[0], opts->args[1], &result);
    if (rc != 0)
        return rc;
    if (opts->json)
        putchar('[');
    for (size_t i = 0; i < result->nitems; i++) {
        const engram_item_t *step = &result->items[i];
        if (opts->json) {
            if (i)
                putchar(',');
            cli_json_item(step, step->op);
        } else {
            printf("%" PRIu64 " ", step->hlc);
            cli_print_str(step->op);
            putchar(' ');
            cli_print_str(step->author);
            cli_print_item_value(step, step->op);
            putchar('\n');
        }
    }
    if (opts->json)
        fputs("]\n", stdout);
    engram_result_destroy(&result);
    return 0;
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

/*  Prints the values of a result's items, one a line (--json: an array of strings, or of
 *  objects with each item's provenance when as_objects). */
static void s_print_values(const cli_opts_t *opts, const engram_result_t *result, bool as_objects)
{
    if (opts->json)
        putchar('[');
    for (size_t i = 0; i < result->nitems; i++) {
        const engram_item_t *item = &result->items[i];
        if (opts->json) {
            if (i)
                putchar(',');
            if (as_objects)
                cli_json_item(item, NULL);
            else
                cli_json_bytes(item->value, item->len);
        } else {
            cli_print_field(item->value, item->len);
            putchar('\n');
        }
    }
    if (opts->json)
        fputs("]\n", stdout);
}

int cli_cmd_set_members(engram_t *engram, const cli_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc = engram_set_members(engram, opts->args[0], opts->args[1], &result);
    if (rc != 0)
        return rc;
    s_print_values(opts, result, false);
    engram_result_destroy(&result);
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
    int rc = engram_counter_get(engram, opts->args[0], opts->args[1], &result);
    if (rc != 0)
        return rc;
    if (opts->json) {
        printf("{\"value\":%" PRId64 ",\"token\":", result->number);
        cli_json_str(result->token);
        fputs("}\n", stdout);
    } else
        printf("%" PRId64 "\n", result->number);
    engram_result_destroy(&result);
    return 0;
}

int cli_cmd_log_append(engram_t *engram, const cli_opts_t *opts)
{
    cli_value_t text;
    int rc = cli_value_init(&text, opts->args[2]);
    if (rc != 0)
        return rc;
    engram_result_t *result = NULL;
    rc = engram_log_append(engram, opts->args[0], opts->args[1], text.data, text.len, &result);
    cli_value_fini(&text);
    return s_print_write(opts, rc, &result);
}

int cli_cmd_log_range(engram_t *engram, const cli_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc = engram_log_range(engram, opts->args[0], opts->args[1], &result);
    if (rc != 0)
        return rc;
    s_print_values(opts, result, true);
    engram_result_destroy(&result);
    return 0;
}

int cli_cmd_remember(engram_t *engram, const cli_opts_t *opts)
{
    cli_value_t text;
    int rc = cli_value_init(&text, opts->args[1]);
    if (rc != 0)
        return rc;
    if (memchr(text.data, '\0', text.len)) {
        cli_value_fini(&text);
        return cli_fail(ENGRAM_EINVAL, "the text holds a NUL byte");
    }
    engram_result_t *result = NULL;
    rc = engram_remember(engram, opts->args[0], (const char *)text.data, opts->meta, opts->ttl_ms,
                         &result);
    cli_value_fini(&text);
    if (rc != 0)
        return rc;
    if (opts->json) {
        fputs("{\"memory_id\":", stdout);
        cli_json_str(result->memory_id);
        fputs(",\"token\":", stdout);
        cli_json_str(result->token);
        fputs("}\n", stdout);
    } else
        printf("%s\n", result->memory_id);
    engram_result_destroy(&result);
    return 0;
}

int cli_cmd_share(engram_t *engram, const cli_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc = engram_share(engram, opts->args[0], opts->args[1], &result);
    return s_print_write(opts, rc, &result);
}

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_print_event(const cli_opts_t *opts, const engram_event_t *event)
{
    if (opts->json) {
        fputs("{\"scope\":", stdout);
        cli_json_str(event->scope);
        fputs(",\"key\":", stdout);
        cli_json_str(event->key);
        fputs(",\"op\":", stdout);
        cli_json_str(event->op);
        printf(",\"amount\":%" PRId64 ",", event->item.amount);
        cli_json_item_fields(&event->item);
        fputs(",\"token\":", stdout);
        cli_json_str(event->token);
        fputs("}\n", stdout);
    } else {
        cli_print_str(event->scope);
        putchar(' ');
        cli_print_str(event->key);
        putchar(' ');
        cli_print_str(event->op);
        cli_print_item_value(&event->item, event->op);
        putchar('\n');
    }
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
        s_print_event(opts, event);
        engram_event_destroy(&event);
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
    const struct {
        const char *name;
        uint64_t value;
    } fields[] = {
        {"node_id", stats.node_id},         {"replica_id", stats.replica_id},
        {"uptime_ms", stats.uptime_ms},     {"requests", stats.requests},
        {"errors", stats.errors},           {"writes", stats.writes},
        {"commits", stats.commits},         {"scopes", stats.scopes},
        {"subscribers", stats.subscribers}, {"purged", stats.purged},
        {"malformed", stats.malformed},
    };
    size_t n = sizeof fields / sizeof fields[0];
    if (opts->json) {
        putchar('{');
        for (size_t i = 0; i < n; i++)
            printf("\"%s\":%" PRIu64 ",", fields[i].name, fields[i].value);
        fputs("\"durability\":", stdout);
        cli_json_str(stats.durability);
        fputs("}\n", stdout);
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%s: %" PRIu64 "\n", fields[i].name, fields[i].value);
        printf("durability: %s\n", stats.durability);
    }
    return 0;
}
