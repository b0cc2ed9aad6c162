/*  engram: the command-line client of an engram node, built on libengram only.
 *
 *      engram [--socket EP] [--agent NAME] [--user NAME] [--json] COMMAND ARGS...
 *
 *  The global options default to $ENGRAM_SOCKET, $ENGRAM_AGENT ("cli") and $ENGRAM_USER
 *  ($USER, then "anonymous"). Options may stand anywhere on the line, before or after the
 *  command, as `--name value` or `--name=value`; `--` ends them, so that a later argument
 *  starting with `--` is taken as it is. A VALUE or TEXT argument "-" is read from stdin.
 *  The commands are listed in s_commands; their usage lines are the reference.
 *
 *  Output is the CLI's contract with scripts and tests:
 *    - writes (put, rm, set add/rm, counter add, log append, share) print the causal token;
 *      remember prints the memory id;
 *    - get prints the winning value as it is, followed by a newline unless it ends with one;
 *    - line-oriented outputs (ls, history, set members, log range, watch) print one record a
 *      line, fields separated by one space, newline and carriage return bytes inside a field
 *      written as \n and \r, and an empty name (author, op) as "-";
 *    - --json prints one JSON document (watch: one object a line). Strings are escaped as
 *      RFC 8259 asks; bytes that are not UTF-8 are written as \u00XX, one per byte. meta is
 *      embedded as JSON when it is valid JSON, as a string otherwise, null when empty.
 *      get --json is the winner's fields, "siblings" (the other concurrent versions, as
 *      objects of the same fields) and "token".
 *  Errors are one line on stderr, `engram: <engram_strerror(code)>[: <node message>]`, and
 *  the exit status says what kind: 0 success, 1 other failure, 2 usage, 3 not found,
 *  4 refused, 5 node unavailable.
 *
 *  Cluster administration: `cluster init` creates a cluster (its id and admin key) under
 *  $ENGRAM_HOME (default ~/.engram); `node admit KEY --out FILE` signs a node's admission
 *  card with that key (KEY from `engramd --data DIR --identity`); `cluster remove NODE` signs a
 *  decommission and hands it to the node, which gossips it; `cluster status` shows members,
 *  per-member lag, version vectors and gossip counters; `put --replicas N` answers once N
 *  nodes hold the write (exit 5 if fewer did within --timeout, the write stays durable here).
 *
 *  watch runs until --count events were printed, or until SIGINT or SIGTERM (exit 0). It
 *  prints nothing before the first event, so a script cannot tell when the subscription is
 *  in place.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engram/engram.h"
#include "node/trust/admission.h"
#include "node/trust/identity.h"

/*  How long watch waits for an event before it looks at its signal flag again; this bounds
 *  the delay of a signal that arrives just before the wait starts. */
#define S_WATCH_POLL_MS 1000
/*  The first read of a value from stdin; the buffer doubles from there. */
#define S_STDIN_CHUNK 4096
/*  Nesting a meta document may have and still be embedded as JSON. */
#define S_JSON_MAX_DEPTH 64
#define S_USAGE_GLOBAL   "engram [--socket EP] [--agent NAME] [--user NAME] [--json]"

/*  Command options: which ones a command takes. */
enum {
    S_OPT_META = 1 << 0,
    S_OPT_TTL = 1 << 1,
    S_OPT_AFTER = 1 << 2,
    S_OPT_TIMEOUT = 1 << 3,
    S_OPT_COUNT = 1 << 4,
    S_OPT_REPLICAS = 1 << 5,
    S_OPT_OUT = 1 << 6,
};

/*  The parsed command line. Strings point into argv. */
typedef struct {
    const char *socket; /* --socket; NULL: libengram's default */
    const char *agent;  /* --agent, $ENGRAM_AGENT or "cli" */
    const char *user;   /* --user, $ENGRAM_USER, $USER or "anonymous" */
    bool json;          /* --json */
    unsigned given;     /* S_OPT_* of the command options given */
    const char *meta;   /* --meta; NULL if not given */
    uint64_t ttl_ms;    /* --ttl, in milliseconds; 0: never expires */
    const char *after;  /* --after; NULL if not given */
    int timeout_ms;     /* --timeout */
    long count;         /* --count; 0: watch for ever */
    unsigned replicas;  /* --replicas; 0: this node's acknowledgement suffices */
    const char *out;    /* --out */
    const char **args;  /* positional arguments after the command word(s) */
    size_t nargs;
} s_opts_t;

typedef struct {
    const char *name; /* first command word */
    const char *sub;  /* second command word, or NULL */
    size_t min_args;  /* positional arguments the command takes */
    size_t max_args;
    unsigned options; /* S_OPT_* it accepts */
    int (*run)(engram_t *engram, const s_opts_t *opts);
    const char *usage; /* its usage line, after "engram [global options]" */
    bool offline;      /* runs without a node (admin key work): engram is NULL */
} s_command_t;

/*  A message of the CLI's own for the error line (stdin, a node's inconsistent answer); it
 *  replaces engram_last_error when set. */
static const char *s_message;
static char s_message_buf[256];
static volatile sig_atomic_t s_stop;

static int s_fail(int code, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(s_message_buf, sizeof s_message_buf, format, args);
    va_end(args);
    s_message = s_message_buf;
    return code;
}

/*  ---------------------------------------------------------------------------------------
 *  Output helpers.
 */

/*  Length of the well-formed UTF-8 sequence of 2 to 4 bytes at p, or 0 if there is none
 *  (overlong forms, surrogates and code points past U+10FFFF are not well-formed). */
static size_t s_utf8_len(const uint8_t *p, size_t avail)
{
    uint8_t c = p[0];
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF; /* the range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

static void s_json_bytes(const uint8_t *p, size_t len)
{
    putchar('"');
    for (size_t i = 0; i < len;) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\') {
            putchar('\\');
            putchar(c);
        } else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7F)
            printf("\\u%04x", c);
        else if (c < 0x80)
            putchar(c);
        else {
            size_t n = s_utf8_len(p + i, len - i);
            if (n == 0)
                printf("\\u%04x", c);
            else {
                fwrite(p + i, 1, n, stdout);
                i += n;
                continue;
            }
        }
        i++;
    }
    putchar('"');
}

static void s_json_str(const char *s)
{
    s_json_bytes((const uint8_t *)s, strlen(s));
}

/*  A recursive-descent check of RFC 8259 over [p, end), to decide whether meta can be
 *  embedded as it is. */
typedef struct {
    const char *p;
    const char *end;
    int depth;
} s_json_parser_t;

static bool s_jp_value(s_json_parser_t *jp);

static void s_jp_space(s_json_parser_t *jp)
{
    while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
        jp->p++;
}

static bool s_jp_accept(s_json_parser_t *jp, char c)
{
    s_jp_space(jp);
    if (jp->p < jp->end && *jp->p == c) {
        jp->p++;
        return true;
    }
    return false;
}

static bool s_jp_literal(s_json_parser_t *jp, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(jp->end - jp->p) < n || memcmp(jp->p, word, n) != 0)
        return false;
    jp->p += n;
    return true;
}

static bool s_jp_digits(s_json_parser_t *jp)
{
    const char *start = jp->p;
    while (jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9')
        jp->p++;
    return jp->p > start;
}

static bool s_jp_number(s_json_parser_t *jp)
{
    if (jp->p < jp->end && *jp->p == '-')
        jp->p++;
    if (jp->p < jp->end && *jp->p == '0')
        jp->p++;
    else if (!s_jp_digits(jp))
        return false;
    if (jp->p < jp->end && *jp->p == '.') {
        jp->p++;
        if (!s_jp_digits(jp))
            return false;
    }
    if (jp->p < jp->end && (*jp->p == 'e' || *jp->p == 'E')) {
        jp->p++;
        if (jp->p < jp->end && (*jp->p == '+' || *jp->p == '-'))
            jp->p++;
        if (!s_jp_digits(jp))
            return false;
    }
    return true;
}

static bool s_jp_string(s_json_parser_t *jp)
{
    if (!s_jp_accept(jp, '"'))
        return false;
    while (jp->p < jp->end) {
        uint8_t c = (uint8_t)*jp->p;
        if (c == '"') {
            jp->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (++jp->p == jp->end)
                return false;
            if (*jp->p == 'u') {
                for (int i = 0; i < 4; i++)
                    if (++jp->p == jp->end || !strchr("0123456789abcdefABCDEF", *jp->p))
                        return false;
            } else if (!strchr("\"\\/bfnrt", *jp->p))
                return false;
            jp->p++;
        } else if (c >= 0x80) {
            size_t n = s_utf8_len((const uint8_t *)jp->p, (size_t)(jp->end - jp->p));
            if (n == 0)
                return false;
            jp->p += n;
        } else
            jp->p++;
    }
    return false;
}

/*  The members of an object or the elements of an array, after its opening bracket. */
static bool s_jp_members(s_json_parser_t *jp, char close, bool object)
{
    if (s_jp_accept(jp, close))
        return true;
    do {
        if (object && (!s_jp_string(jp) || !s_jp_accept(jp, ':')))
            return false;
        if (!s_jp_value(jp))
            return false;
    } while (s_jp_accept(jp, ','));
    return s_jp_accept(jp, close);
}

static bool s_jp_value(s_json_parser_t *jp)
{
    s_jp_space(jp);
    if (jp->p == jp->end)
        return false;
    char c = *jp->p;
    if (c == '{' || c == '[') {
        if (++jp->depth > S_JSON_MAX_DEPTH)
            return false;
        jp->p++;
        bool ok = s_jp_members(jp, c == '{' ? '}' : ']', c == '{');
        jp->depth--;
        return ok;
    }
    if (c == '"')
        return s_jp_string(jp);
    if (c == 't')
        return s_jp_literal(jp, "true");
    if (c == 'f')
        return s_jp_literal(jp, "false");
    if (c == 'n')
        return s_jp_literal(jp, "null");
    return s_jp_number(jp);
}

static bool s_json_valid(const char *s)
{
    s_json_parser_t jp = {s, s + strlen(s), 0};
    if (!s_jp_value(&jp))
        return false;
    s_jp_space(&jp);
    return jp.p == jp.end;
}

static void s_json_meta(const char *meta)
{
    if (!*meta)
        fputs("null", stdout);
    else if (s_json_valid(meta))
        fputs(meta, stdout);
    else
        s_json_str(meta);
}

static void s_json_strv(char *const *strv, size_t n)
{
    putchar('[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            putchar(',');
        s_json_str(strv[i]);
    }
    putchar(']');
}

/*  The fields of an item every JSON form shares, without braces. */
static void s_json_item_fields(const engram_item_t *item)
{
    fputs("\"value\":", stdout);
    s_json_bytes(item->value, item->len);
    fputs(",\"meta\":", stdout);
    s_json_meta(item->meta_json);
    fputs(",\"author\":", stdout);
    s_json_str(item->author);
    fputs(",\"user\":", stdout);
    s_json_str(item->user);
    fputs(",\"agents\":", stdout);
    s_json_strv(item->agents, item->nagents);
    fputs(",\"resources\":", stdout);
    s_json_strv(item->resources, item->nresources);
    printf(",\"hlc\":%" PRIu64 ",\"created_hlc\":%" PRIu64 ",\"expires_at_ms\":%" PRIu64
           ",\"node\":%" PRIu64 ",\"n\":%" PRIu64,
           item->hlc, item->created_hlc, item->expires_at_ms, item->node, item->n);
}

/*  An item as one JSON object; with op, also its op and counter amount (history, watch). */
static void s_json_item(const engram_item_t *item, const char *op)
{
    putchar('{');
    if (op) {
        fputs("\"op\":", stdout);
        s_json_str(op);
        printf(",\"amount\":%" PRId64 ",", item->amount);
    }
    s_json_item_fields(item);
    putchar('}');
}

static void s_json_token(const engram_result_t *result)
{
    fputs("{\"token\":", stdout);
    s_json_str(result->token);
    fputs("}\n", stdout);
}

/*  A field of a line-oriented output: newline and carriage return bytes written as \n, \r. */
static void s_print_field(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\n')
            fputs("\\n", stdout);
        else if (p[i] == '\r')
            fputs("\\r", stdout);
        else
            putchar(p[i]);
    }
}

static void s_print_str(const char *s)
{
    s_print_field((const uint8_t *)(*s ? s : "-"), *s ? strlen(s) : 1);
}

/*  The value of a history step or event: the payload, or the amount of a counter change. */
static void s_print_item_value(const engram_item_t *item, const char *op)
{
    if (item->len) {
        putchar(' ');
        s_print_field(item->value, item->len);
    } else if (strncmp(op, "counter", strlen("counter")) == 0 || strcmp(item->type, "counter") == 0)
        printf(" %" PRId64, item->amount);
}

static void s_print_token(const engram_result_t *result)
{
    printf("%s\n", result->token);
}

/*  ---------------------------------------------------------------------------------------
 *  Arguments.
 */

/*  A VALUE or TEXT argument: the argument itself, or stdin for "-". */
typedef struct {
    const uint8_t *data;
    size_t len;
    uint8_t *owned; /* what data points to when it came from stdin; freed by s_value_fini */
} s_value_t;

static int s_value_init(s_value_t *value, const char *arg)
{
    memset(value, 0, sizeof *value);
    if (strcmp(arg, "-") != 0) {
        value->data = (const uint8_t *)arg;
        value->len = strlen(arg);
        return 0;
    }
    size_t cap = 0, len = 0;
    uint8_t *buf = NULL;
    while (true) {
        if (len == cap) {
            if (cap > ENGRAM_MAX_VALUE_BYTES) {
                free(buf);
                return s_fail(ENGRAM_ETOOBIG, "stdin holds more than %d bytes",
                              ENGRAM_MAX_VALUE_BYTES);
            }
            cap = cap ? cap * 2 : S_STDIN_CHUNK;
            uint8_t *grown = realloc(buf, cap + 1);
            if (!grown) {
                free(buf);
                return s_fail(ENGRAM_ENOMEM, "reading stdin");
            }
            buf = grown;
        }
        size_t got = fread(buf + len, 1, cap - len, stdin);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(stdin)) {
        free(buf);
        return s_fail(ENGRAM_EIO, "reading stdin: %s", strerror(errno));
    }
    if (len > ENGRAM_MAX_VALUE_BYTES) {
        free(buf);
        return s_fail(ENGRAM_ETOOBIG, "stdin holds more than %d bytes", ENGRAM_MAX_VALUE_BYTES);
    }
    buf[len] = '\0';
    value->data = value->owned = buf;
    value->len = len;
    return 0;
}

static void s_value_fini(s_value_t *value)
{
    free(value->owned);
    memset(value, 0, sizeof *value);
}

/*  A decimal integer in [min, max], the whole of s. */
static bool s_parse_int(const char *s, long long min, long long max, long long *out)
{
    const char *digits = s[0] == '-' ? s + 1 : s;
    if (*digits < '0' || *digits > '9')
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/*  Seconds, with an optional fraction, as milliseconds; a positive duration never rounds
 *  down to 0, which would mean "never expires". */
static bool s_parse_seconds(const char *s, uint64_t *ms)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || (s[n] && (s[n] != '.' || s[n + 1 + strspn(s + n + 1, "0123456789")])))
        return false;
    double seconds = strtod(s, NULL);
    if (seconds * 1000.0 >= (double)INT64_MAX)
        return false;
    *ms = (uint64_t)(seconds * 1000.0);
    if ((double)*ms < seconds * 1000.0)
        (*ms)++;
    return true;
}

/*  ---------------------------------------------------------------------------------------
 *  Commands. Each returns 0 or an ENGRAM_E* code, having printed its output.
 */

/*  Prints a write's result: its token (--json: {"token": ...}). */
static int s_print_write(const s_opts_t *opts, int rc, engram_result_t **result)
{
    if (rc == 0) {
        if (opts->json)
            s_json_token(*result);
        else
            s_print_token(*result);
    }
    engram_result_destroy(result);
    return rc;
}

static int s_cmd_put(engram_t *engram, const s_opts_t *opts)
{
    s_value_t value;
    int rc = s_value_init(&value, opts->args[2]);
    if (rc != 0)
        return rc;
    engram_result_t *result = NULL;
    if (opts->given & S_OPT_REPLICAS)
        rc = engram_put_replicated(engram, opts->args[0], opts->args[1], value.data, value.len,
                                   opts->meta, opts->ttl_ms, opts->replicas,
                                   (opts->given & S_OPT_TIMEOUT) ? opts->timeout_ms : 0,
                                   &result);
    else
        rc = engram_put(engram, opts->args[0], opts->args[1], value.data, value.len, opts->meta,
                        opts->ttl_ms, &result);
    s_value_fini(&value);
    return s_print_write(opts, rc, &result);
}

static int s_cmd_get(engram_t *engram, const s_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc =
        engram_get(engram, opts->args[0], opts->args[1], opts->after, opts->timeout_ms, &result);
    if (rc != 0)
        return rc;
    if (result->nitems == 0) {
        engram_result_destroy(&result);
        return s_fail(ENGRAM_ENOTFOUND, "%s %s", opts->args[0], opts->args[1]);
    }
    const engram_item_t *winner = &result->items[0];
    if (opts->json) {
        putchar('{');
        s_json_item_fields(winner);
        fputs(",\"siblings\":[", stdout);
        for (size_t i = 1; i < result->nitems; i++) {
            if (i > 1)
                putchar(',');
            s_json_item(&result->items[i], NULL);
        }
        fputs("],\"token\":", stdout);
        s_json_str(result->token);
        fputs("}\n", stdout);
    } else {
        fwrite(winner->value, 1, winner->len, stdout);
        if (winner->len == 0 || winner->value[winner->len - 1] != '\n')
            putchar('\n');
    }
    engram_result_destroy(&result);
    return 0;
}

static int s_cmd_rm(engram_t *engram, const s_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc = engram_delete(engram, opts->args[0], opts->args[1], &result);
    return s_print_write(opts, rc, &result);
}

static int s_cmd_ls(engram_t *engram, const s_opts_t *opts)
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
                s_json_str(item->key);
                fputs(",\"type\":", stdout);
                s_json_str(item->type);
                putchar('}');
            } else {
                s_print_field((const uint8_t *)item->key, strlen(item->key));
                putchar('\n');
            }
            first = false;
        }
        bool done = !*result->next_cursor;
        if (!done && cursor && strcmp(cursor, result->next_cursor) == 0) {
            engram_result_destroy(&result);
            rc = s_fail(ENGRAM_EIO, "the node repeated the cursor %s", cursor);
            break;
        }
        free(cursor);
        cursor = done ? NULL : strdup(result->next_cursor);
        engram_result_destroy(&result);
        if (done)
            break;
        if (!cursor) {
            rc = s_fail(ENGRAM_ENOMEM, "listing");
            break;
        }
    }
    free(cursor);
    if (rc == 0 && opts->json)
        fputs("]\n", stdout);
    return rc;
}

static int s_cmd_history(engram_t *engram, const s_opts_t *opts)
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
            s_json_item(step, step->op);
        } else {
            printf("%" PRIu64 " ", step->hlc);
            s_print_str(step->op);
            putchar(' ');
            s_print_str(step->author);
            s_print_item_value(step, step->op);
            putchar('\n');
        }
    }
    if (opts->json)
        fputs("]\n", stdout);
    engram_result_destroy(&result);
    return 0;
}

static int s_cmd_set_add(engram_t *engram, const s_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc = engram_set_add(engram, opts->args[0], opts->args[1], opts->args[2], &result);
    return s_print_write(opts, rc, &result);
}

static int s_cmd_set_rm(engram_t *engram, const s_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc = engram_set_remove(engram, opts->args[0], opts->args[1], opts->args[2], &result);
    return s_print_write(opts, rc, &result);
}

/*  Prints the values of a result's items, one a line (--json: an array of strings, or of
 *  objects with each item's provenance when as_objects). */
static void s_print_values(const s_opts_t *opts, const engram_result_t *result, bool as_objects)
{
    if (opts->json)
        putchar('[');
    for (size_t i = 0; i < result->nitems; i++) {
        const engram_item_t *item = &result->items[i];
        if (opts->json) {
            if (i)
                putchar(',');
            if (as_objects)
                s_json_item(item, NULL);
            else
                s_json_bytes(item->value, item->len);
        } else {
            s_print_field(item->value, item->len);
            putchar('\n');
        }
    }
    if (opts->json)
        fputs("]\n", stdout);
}

static int s_cmd_set_members(engram_t *engram, const s_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc = engram_set_members(engram, opts->args[0], opts->args[1], &result);
    if (rc != 0)
        return rc;
    s_print_values(opts, result, false);
    engram_result_destroy(&result);
    return 0;
}

/*  main has checked N. */
static int s_cmd_counter_add(engram_t *engram, const s_opts_t *opts)
{
    long long amount;
    bool parsed = s_parse_int(opts->args[2], INT64_MIN, INT64_MAX, &amount);
    assert(parsed);
    (void)parsed;
    engram_result_t *result = NULL;
    int rc = engram_counter_add(engram, opts->args[0], opts->args[1], amount, &result);
    return s_print_write(opts, rc, &result);
}

static int s_cmd_counter_get(engram_t *engram, const s_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc = engram_counter_get(engram, opts->args[0], opts->args[1], &result);
    if (rc != 0)
        return rc;
    if (opts->json) {
        printf("{\"value\":%" PRId64 ",\"token\":", result->number);
        s_json_str(result->token);
        fputs("}\n", stdout);
    } else
        printf("%" PRId64 "\n", result->number);
    engram_result_destroy(&result);
    return 0;
}

static int s_cmd_log_append(engram_t *engram, const s_opts_t *opts)
{
    s_value_t text;
    int rc = s_value_init(&text, opts->args[2]);
    if (rc != 0)
        return rc;
    engram_result_t *result = NULL;
    rc = engram_log_append(engram, opts->args[0], opts->args[1], text.data, text.len, &result);
    s_value_fini(&text);
    return s_print_write(opts, rc, &result);
}

static int s_cmd_log_range(engram_t *engram, const s_opts_t *opts)
{
    engram_result_t *result = NULL;
    int rc = engram_log_range(engram, opts->args[0], opts->args[1], &result);
    if (rc != 0)
        return rc;
    s_print_values(opts, result, true);
    engram_result_destroy(&result);
    return 0;
}

static int s_cmd_remember(engram_t *engram, const s_opts_t *opts)
{
    s_value_t text;
    int rc = s_value_init(&text, opts->args[1]);
    if (rc != 0)
        return rc;
    if (memchr(text.data, '\0', text.len)) {
        s_value_fini(&text);
        return s_fail(ENGRAM_EINVAL, "the text holds a NUL byte");
    }
    engram_result_t *result = NULL;
    rc = engram_remember(engram, opts->args[0], (const char *)text.data, opts->meta, opts->ttl_ms,
                         &result);
    s_value_fini(&text);
    if (rc != 0)
        return rc;
    if (opts->json) {
        fputs("{\"memory_id\":", stdout);
        s_json_str(result->memory_id);
        fputs(",\"token\":", stdout);
        s_json_str(result->token);
        fputs("}\n", stdout);
    } else
        printf("%s\n", result->memory_id);
    engram_result_destroy(&result);
    return 0;
}

static int s_cmd_share(engram_t *engram, const s_opts_t *opts)
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

static void s_print_event(const s_opts_t *opts, const engram_event_t *event)
{
    if (opts->json) {
        fputs("{\"scope\":", stdout);
        s_json_str(event->scope);
        fputs(",\"key\":", stdout);
        s_json_str(event->key);
        fputs(",\"op\":", stdout);
        s_json_str(event->op);
        printf(",\"amount\":%" PRId64 ",", event->item.amount);
        s_json_item_fields(&event->item);
        fputs(",\"token\":", stdout);
        s_json_str(event->token);
        fputs("}\n", stdout);
    } else {
        s_print_str(event->scope);
        putchar(' ');
        s_print_str(event->key);
        putchar(' ');
        s_print_str(event->op);
        s_print_item_value(&event->item, event->op);
        putchar('\n');
    }
}

static int s_cmd_watch(engram_t *engram, const s_opts_t *opts)
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
            return s_fail(ENGRAM_EIO, "writing stdout: %s", strerror(errno));
        seen++;
    }
    return 0;
}

static int s_cmd_stats(engram_t *engram, const s_opts_t *opts)
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
        s_json_str(stats.durability);
        fputs("}\n", stdout);
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%s: %" PRIu64 "\n", fields[i].name, fields[i].value);
        printf("durability: %s\n", stats.durability);
    }
    return 0;
}

/*  --- cluster administration ----------------------------------------------------------- */

static int s_cmd_cluster_init(engram_t *engram, const s_opts_t *opts)
{
    (void)engram;
    char home[4096], why[512];
    node_admin_home(home, sizeof home);
    node_trust_t trust;
    int rc = node_admin_init(home, &trust, why, sizeof why);
    if (rc)
        return s_fail(rc, "%s", why);
    char id[2 * NODE_CLUSTER_ID_BYTES + 1];
    sodium_bin2hex(id, sizeof id, trust.cluster_id, sizeof trust.cluster_id);
    if (opts->json) {
        fputs("{\"cluster\":", stdout);
        s_json_str(id);
        fputs(",\"home\":", stdout);
        s_json_str(home);
        fputs("}\n", stdout);
    } else {
        printf("cluster=%s home=%s\n", id, home);
    }
    return 0;
}

/*  The admin's cluster and secret key, from $ENGRAM_HOME. */
static int s_admin(node_trust_t *trust, uint8_t secret[crypto_sign_SECRETKEYBYTES])
{
    char home[4096], why[512];
    node_admin_home(home, sizeof home);
    int rc = node_admin_load(home, trust, secret, why, sizeof why);
    return rc ? s_fail(rc, "%s", why) : 0;
}

static int s_cmd_node_admit(engram_t *engram, const s_opts_t *opts)
{
    (void)engram;
    uint8_t key[crypto_sign_PUBLICKEYBYTES], secret[crypto_sign_SECRETKEYBYTES];
    size_t got = 0;
    const char *hex = opts->args[0];
    if (sodium_hex2bin(key, sizeof key, hex, strlen(hex), NULL, &got, NULL) != 0 ||
        got != sizeof key)
        return s_fail(ENGRAM_EINVAL, "KEY is a node's public key, 64 hex digits, as `engramd "
                                     "--data DIR --identity` prints it");
    if (!opts->out)
        return s_fail(ENGRAM_EINVAL, "--out FILE is needed: where the node's card goes");
    node_trust_t trust;
    int rc = s_admin(&trust, secret);
    uint8_t *card = NULL;
    size_t len = 0;
    if (rc == 0)
        rc = node_admin_admit(&trust, secret, key, (uint64_t)time(NULL) * 1000, &card, &len);
    sodium_memzero(secret, sizeof secret);
    if (rc == 0 && (rc = node_admission_write_file(opts->out, card, len, 0644)) != 0)
        s_fail(rc, "cannot write %s", opts->out);
    free(card);
    if (rc == 0) {
        char id[17];
        snprintf(id, sizeof id, "%016" PRIx64, node_identity_id_of(key));
        if (opts->json) {
            fputs("{\"node\":", stdout);
            s_json_str(id);
            fputs(",\"card\":", stdout);
            s_json_str(opts->out);
            fputs("}\n", stdout);
        } else {
            printf("node=%s card=%s\n", id, opts->out);
        }
    }
    return rc;
}

static int s_cmd_cluster_remove(engram_t *engram, const s_opts_t *opts)
{
    char *end;
    errno = 0;
    uint64_t node = strtoull(opts->args[0], &end, 16);
    if (errno || *end || strlen(opts->args[0]) != 16 || node == 0)
        return s_fail(ENGRAM_EINVAL, "NODE is a node id, 16 hex digits, as `engram cluster "
                                     "status` shows it");
    node_trust_t trust;
    uint8_t secret[crypto_sign_SECRETKEYBYTES];
    int rc = s_admin(&trust, secret);
    uint8_t *statement = NULL;
    size_t len = 0;
    if (rc == 0)
        rc = node_admin_decommission(&trust, secret, node, (uint64_t)time(NULL) * 1000,
                                     &statement, &len);
    sodium_memzero(secret, sizeof secret);
    if (rc == 0)
        rc = engram_cluster_remove(engram, node, statement, len);
    free(statement);
    if (rc == 0)
        printf(opts->json ? "{\"removed\":\"%016" PRIx64 "\"}\n" : "removed %016" PRIx64 "\n",
               node);
    return rc;
}

static int s_cmd_cluster_join(engram_t *engram, const s_opts_t *opts)
{
    int rc = engram_cluster_join(engram, opts->args[0]);
    if (rc == 0 && !opts->json)
        printf("joining through %s\n", opts->args[0]);
    else if (rc == 0) {
        fputs("{\"joining\":", stdout);
        s_json_str(opts->args[0]);
        fputs("}\n", stdout);
    }
    return rc;
}

static void s_cluster_json(const engram_cluster_t *c)
{
    fputs("{\"cluster\":", stdout);
    s_json_str(c->cluster_id);
    printf(",\"node\":\"%016" PRIx64 "\",\"endpoint\":", c->node_id);
    s_json_str(c->endpoint);
    fputs(",\"members\":[", stdout);
    for (size_t i = 0; i < c->nmembers; i++) {
        const engram_member_t *m = &c->members[i];
        printf("%s{\"node\":\"%016" PRIx64 "\",\"state\":", i ? "," : "", m->id);
        s_json_str(m->state);
        printf(",\"incarnation\":%" PRIu64 ",\"endpoint\":", m->incarnation);
        s_json_str(m->endpoint);
        if (m->lag_known)
            printf(",\"lag_ops\":%" PRIu64 ",\"lag_bytes\":%" PRIu64 "}", m->lag_ops,
                   m->lag_bytes);
        else
            fputs(",\"lag_ops\":null,\"lag_bytes\":null}", stdout);
    }
    fputs("],\"scopes\":[", stdout);
    for (size_t i = 0; i < c->nscopes; i++) {
        const engram_scope_status_t *sc = &c->scopes[i];
        fputs(i ? ",{\"scope\":" : "{\"scope\":", stdout);
        s_json_str(sc->scope);
        fputs(",\"vector\":", stdout);
        s_json_str(sc->vector);
        printf(",\"ops\":%" PRIu64 ",\"garbage\":%" PRIu64 "}", sc->ops, sc->garbage);
    }
    printf("],\"gossip\":{\"pushes_sent\":%" PRIu64 ",\"pushes_applied\":%" PRIu64
           ",\"pushes_held_back\":%" PRIu64 ",\"digests_sent\":%" PRIu64
           ",\"pulls_answered\":%" PRIu64 ",\"pull_deltas_applied\":%" PRIu64
           ",\"bytes_sent\":%" PRIu64 ",\"bytes_received\":%" PRIu64
           ",\"bad_messages\":%" PRIu64 ",\"local_health\":%u}}\n",
           c->pushes_sent, c->pushes_applied, c->pushes_held_back, c->digests_sent,
           c->pulls_answered, c->pull_deltas_applied, c->bytes_sent, c->bytes_received,
           c->bad_messages, c->local_health);
}

static void s_cluster_text(const engram_cluster_t *c)
{
    printf("cluster %s, node %016" PRIx64 " at %s\n", c->cluster_id, c->node_id, c->endpoint);
    printf("members:\n");
    for (size_t i = 0; i < c->nmembers; i++) {
        const engram_member_t *m = &c->members[i];
        printf("  %016" PRIx64 " %-7s incarnation %" PRIu64 " %s", m->id, m->state,
               m->incarnation, m->endpoint);
        if (strcmp(m->state, "self") == 0 || strcmp(m->state, "left") == 0)
            putchar('\n');
        else if (m->lag_known)
            printf(" lag %" PRIu64 " ops %" PRIu64 " bytes\n", m->lag_ops, m->lag_bytes);
        else
            printf(" lag unknown\n");
    }
    printf("scopes:\n");
    for (size_t i = 0; i < c->nscopes; i++)
        printf("  %s ops %" PRIu64 " garbage %" PRIu64 " vector %s\n", c->scopes[i].scope,
               c->scopes[i].ops, c->scopes[i].garbage, c->scopes[i].vector);
    printf("gossip: pushes sent %" PRIu64 " applied %" PRIu64 " held back %" PRIu64
           ", digests sent %" PRIu64 ", pulls answered %" PRIu64 ", pulled deltas applied %" PRIu64
           ", bytes sent %" PRIu64 " received %" PRIu64 ", bad messages %" PRIu64
           ", local health %u\n",
           c->pushes_sent, c->pushes_applied, c->pushes_held_back, c->digests_sent,
           c->pulls_answered, c->pull_deltas_applied, c->bytes_sent, c->bytes_received,
           c->bad_messages, c->local_health);
}

static int s_cmd_cluster_status(engram_t *engram, const s_opts_t *opts)
{
    engram_cluster_t *status = NULL;
    int rc = engram_cluster_status(engram, &status);
    if (rc)
        return rc;
    if (opts->json)
        s_cluster_json(status);
    else
        s_cluster_text(status);
    engram_cluster_destroy(&status);
    return 0;
}

static const s_command_t s_commands[] = {
    {"put", NULL, 3, 3, S_OPT_META | S_OPT_TTL | S_OPT_REPLICAS | S_OPT_TIMEOUT, s_cmd_put,
     "put SCOPE KEY VALUE [--meta JSON] [--ttl SECONDS] [--replicas N [--timeout MS]]", false},
    {"get", NULL, 2, 2, S_OPT_AFTER | S_OPT_TIMEOUT, s_cmd_get,
     "get SCOPE KEY [--after TOKEN] [--timeout MS]", false},
    {"rm", NULL, 2, 2, 0, s_cmd_rm, "rm SCOPE KEY", false},
    {"ls", NULL, 1, 2, 0, s_cmd_ls, "ls SCOPE [PREFIX]", false},
    {"history", NULL, 2, 2, 0, s_cmd_history, "history SCOPE KEY", false},
    {"set", "add", 3, 3, 0, s_cmd_set_add, "set add SCOPE KEY ELEM", false},
    {"set", "rm", 3, 3, 0, s_cmd_set_rm, "set rm SCOPE KEY ELEM", false},
    {"set", "members", 2, 2, 0, s_cmd_set_members, "set members SCOPE KEY", false},
    {"counter", "add", 3, 3, 0, s_cmd_counter_add, "counter add SCOPE KEY N", false},
    {"counter", "get", 2, 2, 0, s_cmd_counter_get, "counter get SCOPE KEY", false},
    {"log", "append", 3, 3, 0, s_cmd_log_append, "log append SCOPE KEY TEXT", false},
    {"log", "range", 2, 2, 0, s_cmd_log_range, "log range SCOPE KEY", false},
    {"remember", NULL, 2, 2, S_OPT_META | S_OPT_TTL, s_cmd_remember,
     "remember SCOPE TEXT [--meta JSON] [--ttl SECONDS]", false},
    {"share", NULL, 2, 2, 0, s_cmd_share, "share KEY SCOPE", false},
    {"watch", NULL, 1, 1, S_OPT_COUNT, s_cmd_watch, "watch SCOPE [--count N]", false},
    {"stats", NULL, 0, 0, 0, s_cmd_stats, "stats", false},
    {"cluster", "init", 0, 0, 0, s_cmd_cluster_init, "cluster init", true},
    {"node", "admit", 1, 1, S_OPT_OUT, s_cmd_node_admit, "node admit KEY --out FILE", true},
    {"cluster", "status", 0, 0, 0, s_cmd_cluster_status, "cluster status", false},
    {"cluster", "join", 1, 1, 0, s_cmd_cluster_join, "cluster join tcp://MEMBER:PORT", false},
    {"cluster", "remove", 1, 1, 0, s_cmd_cluster_remove, "cluster remove NODE", false},
};
#define S_NCOMMANDS (sizeof s_commands / sizeof s_commands[0])

/*  ---------------------------------------------------------------------------------------
 *  Main: parse, connect, run, report.
 */

static void s_help(FILE *out)
{
    fprintf(out, "usage: " S_USAGE_GLOBAL " COMMAND ...\n\ncommands:\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        fprintf(out, "  %s\n", s_commands[i].usage);
    fprintf(out, "\nA VALUE or TEXT of \"-\" is read from stdin. Defaults: $ENGRAM_SOCKET, "
                 "$ENGRAM_AGENT, $ENGRAM_USER.\nExit status: 0 ok, 1 failure, 2 usage, "
                 "3 not found, 4 refused, 5 node unavailable.\n");
}

/*  A usage error: the message and a short usage on stderr, exit status 2. */
static int s_usage(const s_command_t *command, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("engram: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    if (command)
        fprintf(stderr, "usage: " S_USAGE_GLOBAL " %s\n", command->usage);
    else
        fprintf(stderr, "usage: " S_USAGE_GLOBAL " COMMAND ...\n"
                        "       (engram --help lists the commands)\n");
    return 2;
}

static int s_exit_status(int code)
{
    switch (code) {
    case ENGRAM_OK:
        return 0;
    case ENGRAM_ENOTFOUND:
        return 3;
    case ENGRAM_EINVAL:
    case ENGRAM_ETYPE:
    case ENGRAM_ETOOBIG:
    case ENGRAM_ESCOPE:
    case ENGRAM_EVERSION:
    case ENGRAM_EDECODE:
    case ENGRAM_ERANGE:
        return 4;
    case ENGRAM_EDENIED:
        return 4;
    case ENGRAM_EUNAVAILABLE:
    case ENGRAM_ETIMEDOUT:
    case ENGRAM_EREPLICAS:
        return 5;
    default:
        return 1;
    }
}

/*  The command named by its first word and, for commands that have one, its second. */
static const s_command_t *s_find_command(const char *name, const char *sub)
{
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        const s_command_t *command = &s_commands[i];
        if (strcmp(command->name, name) == 0 &&
            (!command->sub || (sub && strcmp(command->sub, sub) == 0)))
            return command;
    }
    return NULL;
}

static bool s_has_sub(const char *name)
{
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (strcmp(s_commands[i].name, name) == 0 && s_commands[i].sub)
            return true;
    return false;
}

/*  A usage error for a command word without a known subcommand (sub: the one given, or
 *  NULL): the usage lines of them all. */
static int s_usage_sub(const char *name, const char *sub)
{
    if (sub)
        fprintf(stderr, "engram: unknown subcommand '%s %s'\n", name, sub);
    else
        fprintf(stderr, "engram: %s needs a subcommand\n", name);
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (strcmp(s_commands[i].name, name) == 0)
            fprintf(stderr, "usage: " S_USAGE_GLOBAL " %s\n", s_commands[i].usage);
    return 2;
}

static const char *s_env(const char *name, const char *fallback)
{
    const char *value = getenv(name);
    return value && *value ? value : fallback;
}

/*  Every option; bit is the S_OPT_* of a command option, 0 for a global one. */
typedef struct {
    const char *name;
    bool takes_value;
    unsigned bit;
} s_option_t;

static const s_option_t s_options[] = {
    {"socket", true, 0},          {"agent", true, 0},           {"user", true, 0},
    {"json", false, 0},           {"help", false, 0},           {"meta", true, S_OPT_META},
    {"ttl", true, S_OPT_TTL},     {"after", true, S_OPT_AFTER}, {"timeout", true, S_OPT_TIMEOUT},
    {"count", true, S_OPT_COUNT}, {"replicas", true, S_OPT_REPLICAS},
    {"out", true, S_OPT_OUT},
};
#define S_NOPTIONS (sizeof s_options / sizeof s_options[0])

/*  The option spelled by the len bytes at name, or NULL. */
static const s_option_t *s_find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < S_NOPTIONS; i++)
        if (strlen(s_options[i].name) == len && memcmp(s_options[i].name, name, len) == 0)
            return &s_options[i];
    return NULL;
}

/*  The name of a command option among bits. */
static const char *s_option_name(unsigned bits)
{
    for (size_t i = 0; i < S_NOPTIONS; i++)
        if (s_options[i].bit & bits)
            return s_options[i].name;
    return "?";
}

/*  Sets an option that takes a value. Returns 0, or 2 after a usage message. */
static int s_set_option(s_opts_t *opts, const s_option_t *option, const char *value)
{
    const char *name = option->name;
    long long n;
    if (!*value)
        return s_usage(NULL, "--%s takes a value", name);
    opts->given |= option->bit;
    if (strcmp(name, "socket") == 0)
        opts->socket = value;
    else if (strcmp(name, "agent") == 0)
        opts->agent = value;
    else if (strcmp(name, "user") == 0)
        opts->user = value;
    else if (strcmp(name, "meta") == 0)
        opts->meta = value;
    else if (strcmp(name, "after") == 0)
        opts->after = value;
    else if (strcmp(name, "out") == 0)
        opts->out = value;
    else if (strcmp(name, "replicas") == 0) {
        if (!s_parse_int(value, 1, 1000, &n))
            return s_usage(NULL, "--replicas takes a number of nodes, not '%s'", value);
        opts->replicas = (unsigned)n;
    }
    else if (strcmp(name, "ttl") == 0) {
        if (!s_parse_seconds(value, &opts->ttl_ms))
            return s_usage(NULL, "--ttl takes a number of seconds, not '%s'", value);
    } else if (strcmp(name, "timeout") == 0) {
        if (!s_parse_int(value, 0, INT_MAX, &n))
            return s_usage(NULL, "--timeout takes milliseconds, not '%s'", value);
        opts->timeout_ms = (int)n;
    } else {
        assert(strcmp(name, "count") == 0);
        if (!s_parse_int(value, 1, LONG_MAX, &n))
            return s_usage(NULL, "--count takes a positive number, not '%s'", value);
        opts->count = (long)n;
    }
    return 0;
}

/*  Splits argv into options and positional arguments (into pos, which has room for argc).
 *  Returns 0, -1 after printing the help, or 2 after a usage message. */
static int s_parse(int argc, char **argv, s_opts_t *opts, const char **pos, size_t *npos)
{
    bool options_end = false;
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options_end || strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (!options_end && strcmp(arg, "--") == 0)
                options_end = true;
            else if (i == 1 && strcmp(arg, "-h") == 0) {
                s_help(stdout);
                return -1;
            } else
                pos[(*npos)++] = arg;
            continue;
        }
        const char *eq = strchr(arg + 2, '=');
        const s_option_t *option =
            s_find_option(arg + 2, eq ? (size_t)(eq - arg - 2) : strlen(arg + 2));
        if (!option)
            return s_usage(NULL, "unknown option %s", arg);
        if (!option->takes_value) {
            if (eq)
                return s_usage(NULL, "--%s takes no value", option->name);
            if (strcmp(option->name, "help") == 0) {
                s_help(stdout);
                return -1;
            }
            opts->json = true;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 == argc)
                return s_usage(NULL, "--%s takes a value", option->name);
            value = argv[++i];
        }
        int rc = s_set_option(opts, option, value);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int main(int argc, char **argv)
{
    s_opts_t opts = {
        .agent = s_env("ENGRAM_AGENT", "cli"),
        .user = s_env("ENGRAM_USER", s_env("USER", "anonymous")),
        .timeout_ms = ENGRAM_DEFAULT_AFTER_TIMEOUT_MS,
    };
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) {
        fprintf(stderr, "engram: %s\n", engram_strerror(ENGRAM_ENOMEM));
        return 1;
    }
    size_t npos;
    int status = s_parse(argc, argv, &opts, pos, &npos);
    if (status != 0) {
        free(pos);
        return status < 0 ? 0 : status;
    }

    const s_command_t *command = NULL;
    if (npos == 0)
        status = s_usage(NULL, "no command");
    else if (!(command = s_find_command(pos[0], npos > 1 ? pos[1] : NULL)))
        status = s_has_sub(pos[0]) ? s_usage_sub(pos[0], npos > 1 ? pos[1] : NULL)
                                   : s_usage(NULL, "unknown command '%s'", pos[0]);
    else {
        opts.args = pos + (command->sub ? 2 : 1);
        opts.nargs = npos - (command->sub ? 2 : 1);
        long long amount;
        if (opts.given & ~command->options)
            status = s_usage(command, "--%s does not apply to this command",
                             s_option_name(opts.given & ~command->options));
        else if (opts.nargs < command->min_args || opts.nargs > command->max_args)
            status = s_usage(command, "wrong number of arguments");
        else if (command->run == s_cmd_counter_add &&
                 !s_parse_int(opts.args[2], INT64_MIN, INT64_MAX, &amount))
            status = s_usage(command, "N must be an integer, not '%s'", opts.args[2]);
    }
    if (status != 0) {
        free(pos);
        return status;
    }

    if (command->offline) {
        int rc = command->run(NULL, &opts);
        if (rc != 0)
            fprintf(stderr, "engram: %s%s%s\n", engram_strerror(rc), s_message ? ": " : "",
                    s_message ? s_message : "");
        free(pos);
        return s_exit_status(rc);
    }
    engram_t *engram = engram_connect(opts.socket, opts.agent, opts.user);
    if (!engram) {
        fprintf(stderr, "engram: %s: cannot connect to %s\n", engram_strerror(ENGRAM_EUNAVAILABLE),
                opts.socket ? opts.socket : s_env("ENGRAM_SOCKET", ENGRAM_DEFAULT_API_ENDPOINT));
        free(pos);
        return s_exit_status(ENGRAM_EUNAVAILABLE);
    }
    int rc = command->run(engram, &opts);
    if (rc == 0 && fflush(stdout) != 0)
        rc = s_fail(ENGRAM_EIO, "writing stdout: %s", strerror(errno));
    if (rc != 0) {
        const char *message = s_message ? s_message : engram_last_error(engram);
        fprintf(stderr, "engram: %s%s%s\n", engram_strerror(rc), *message ? ": " : "", message);
    }
    engram_destroy(&engram);
    free(pos);
    return s_exit_status(rc);
}
