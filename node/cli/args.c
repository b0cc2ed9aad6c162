/*  The command line: options and positional arguments, the numbers and times options take,
 *  and VALUE or TEXT arguments read from stdin.
 */
#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/cli/cli.h"

/*  The first read of a value from stdin; the buffer doubles from there. */
#define S_STDIN_CHUNK 4096

int cli_value_init(cli_value_t *value, const char *arg)
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
                return cli_fail(ENGRAM_ETOOBIG, "stdin holds more than %d bytes",
                                ENGRAM_MAX_VALUE_BYTES);
            }
            cap = cap ? cap * 2 : S_STDIN_CHUNK;
            uint8_t *grown = realloc(buf, cap + 1);
            if (!grown) {
                free(buf);
                return cli_fail(ENGRAM_ENOMEM, "reading stdin");
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
        return cli_fail(ENGRAM_EIO, "reading stdin: %s", strerror(errno));
    }
    if (len > ENGRAM_MAX_VALUE_BYTES) {
        free(buf);
        return cli_fail(ENGRAM_ETOOBIG, "stdin holds more than %d bytes", ENGRAM_MAX_VALUE_BYTES);
    }
    buf[len] = '\0';
    value->data = value->owned = buf;
    value->len = len;
    return 0;
}

void cli_value_fini(cli_value_t *value)
{
    free(value->owned);
    memset(value, 0, sizeof *value);
}

void cli_opts_fini(cli_opts_t *opts)
{
    cli_value_fini(&opts->value);
    free(opts->sources.items);
    free(opts->scopes.items);
    free(opts->embedding);
    free(opts->patterns.items);
    opts->sources = opts->patterns = opts->scopes = (cli_list_t){0};
}

bool cli_parse_int(const char *s, long long min, long long max, long long *out)
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

bool cli_parse_node(const char *s, uint64_t *id)
{
    if (strlen(s) != CLI_NODE_ID_CHARS || strspn(s, "0123456789abcdefABCDEF") != CLI_NODE_ID_CHARS)
        return false;
    *id = strtoull(s, NULL, 16);
    return *id != 0;
}

uint64_t cli_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/*  The n decimal digits at s, as a number; -1 when one of them is not a digit. */
static int s_digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/*  An ISO 8601 UTC time, YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DDTHH:MM:SS.sssZ, from 1970 on. The
 *  date must exist (no February 30) and the seconds stop at 59. */
static bool s_parse_iso(const char *s, uint64_t *ms)
{
    size_t len = strlen(s);
    bool with_ms = len == CLI_TIME_CHARS; /* the longer form: .sss before the Z */
    if (len != CLI_TIME_CHARS - strlen(".sss") && !with_ms)
        return false;
    int year = s_digits(s, 4), mon = s_digits(s + 5, 2), day = s_digits(s + 8, 2);
    int hour = s_digits(s + 11, 2), min = s_digits(s + 14, 2), sec = s_digits(s + 17, 2);
    int milli = with_ms ? s_digits(s + 20, 3) : 0;
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        (with_ms && s[19] != '.') || s[len - 1] != 'Z' || year < 1970 || mon < 0 || day < 0 ||
        hour < 0 || min < 0 || sec < 0 || milli < 0)
        return false;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    /*  timegm carries what is out of range into the next field: a field that changed was. */
    if (t < 0 || tm.tm_year != year - 1900 || tm.tm_mon != mon - 1 || tm.tm_mday != day ||
        tm.tm_hour != hour || tm.tm_min != min || tm.tm_sec != sec)
        return false;
    *ms = (uint64_t)t * 1000 + (uint64_t)milli;
    return true;
}

/*  now plus or minus a duration: a sign, decimal digits and a unit, s, m, h or d. */
static bool s_parse_relative(const char *s, uint64_t now, uint64_t *ms)
{
    static const struct {
        char unit;
        uint64_t ms;
    } units[] = {{'s', 1000}, {'m', 60 * 1000}, {'h', 60 * 60 * 1000}, {'d', 24 * 60 * 60 * 1000}};
    size_t n = strspn(s + 1, "0123456789");
    if (n == 0 || !s[1 + n] || s[2 + n])
        return false;
    errno = 0;
    uint64_t count = strtoull(s + 1, NULL, 10);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (units[i].unit != s[1 + n])
            continue;
        if (errno || count > (uint64_t)INT64_MAX / units[i].ms)
            return false;
        uint64_t delta = count * units[i].ms;
        if (s[0] == '+' ? delta > (uint64_t)INT64_MAX - now : delta > now)
            return false;
        *ms = s[0] == '+' ? now + delta : now - delta;
        return true;
    }
    return false;
}

/*  A time T: milliseconds since the epoch, an ISO 8601 UTC time, "now", or now plus or minus
 *  a duration (+30s, -5m, +2h, +1d). */
static bool s_parse_time(const char *s, uint64_t *ms)
{
    long long v;
    if (strcmp(s, "now") == 0)
        *ms = cli_now_ms();
    else if (s[0] == '+' || s[0] == '-')
        return s_parse_relative(s, cli_now_ms(), ms);
    else if (strchr(s, 'T'))
        return s_parse_iso(s, ms);
    else if (cli_parse_int(s, 0, INT64_MAX, &v))
        *ms = (uint64_t)v;
    else
        return false;
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

/*  Every option; bit is the CLI_OPT_* of a command option, 0 for a global one. */
typedef struct {
    const char *name;
    bool takes_value;
    unsigned bit;
} s_option_t;

static const s_option_t s_options[] = {
    {"socket", true, 0},
    {"agent", true, 0},
    {"user", true, 0},
    {"json", false, 0},
    {"help", false, 0},
    {"version", false, 0},
    {"meta", true, CLI_OPT_META},
    {"ttl", true, CLI_OPT_TTL},
    {"after", true, CLI_OPT_AFTER},
    {"timeout", true, CLI_OPT_TIMEOUT},
    {"count", true, CLI_OPT_COUNT},
    {"replicas", true, CLI_OPT_REPLICAS},
    {"out", true, CLI_OPT_OUT},
    {"data", true, CLI_OPT_DATA},
    {"node", true, CLI_OPT_NODE},
    {"from", true, CLI_OPT_FROM},
    {"until", true, CLI_OPT_UNTIL},
    {"at", true, CLI_OPT_AT},
    {"as-of", true, CLI_OPT_AS_OF},
    {"source", true, CLI_OPT_SOURCE},
    {"pattern", true, CLI_OPT_PATTERN},
    {"cursor", true, CLI_OPT_CURSOR},
    {"limit", true, CLI_OPT_LIMIT},
    {"scope", true, CLI_OPT_SCOPE},
    {"filter", true, CLI_OPT_FILTER},
    {"top-k", true, CLI_OPT_TOP_K},
    {"threshold", true, CLI_OPT_THRESHOLD},
    {"mode", true, CLI_OPT_MODE},
    {"explain", false, CLI_OPT_EXPLAIN},
    {"embedding", true, CLI_OPT_EMBEDDING},
    {"half-life", true, CLI_OPT_HALF_LIFE},
    {"votes", false, CLI_OPT_VOTES},
    {"tokens", true, CLI_OPT_TOKENS},
    {"if-version", true, CLI_OPT_IF_VERSION},
    {"id", true, CLI_OPT_ID},
    {"dry-run", false, CLI_OPT_DRY_RUN},
    {"mcp-memory", false, CLI_OPT_MCP_MEMORY},
    {"format", true, CLI_OPT_FORMAT},
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

const char *cli_option_name(unsigned bits)
{
    for (size_t i = 0; i < S_NOPTIONS; i++)
        if (s_options[i].bit & bits)
            return s_options[i].name;
    return "?";
}

/*  Appends value to the values of a repeatable option. Returns 0, or 1 after a message (out
 *  of memory). */
static int s_append(cli_list_t *list, const char *value)
{
    const char **grown = realloc(list->items, (list->n + 1) * sizeof *grown);
    if (!grown) {
        fprintf(stderr, "engram: %s\n", engram_strerror(ENGRAM_ENOMEM));
        return 1;
    }
    grown[list->n++] = value;
    list->items = grown;
    return 0;
}

/*  --embedding FILE ("-": stdin): a JSON array of numbers, the float32 values of an embedding
 *  (the node checks the rest). Returns 0, or 2 after a usage message. */
static int s_read_embedding(cli_opts_t *opts, const char *path)
{
    json_error_t error;
    json_t *doc =
        strcmp(path, "-") == 0 ? json_loadf(stdin, 0, &error) : json_load_file(path, 0, &error);
    size_t dims = json_is_array(doc) ? json_array_size(doc) : 0;
    float *values = dims ? calloc(dims, sizeof *values) : NULL;
    bool ok = values != NULL;
    for (size_t i = 0; ok && i < dims; i++) {
        json_t *item = json_array_get(doc, i);
        ok = json_is_number(item);
        values[i] = ok ? (float)json_number_value(item) : 0;
    }
    json_decref(doc);
    if (!ok) {
        free(values);
        return cli_usage(NULL,
                         "--embedding takes a file (or - for stdin) holding a JSON array of "
                         "numbers; '%s' does not",
                         path);
    }
    free(opts->embedding);
    opts->embedding = values;
    opts->dims = dims;
    return 0;
}

/*  Sets a time option (--from, --until, --at). Returns 0, or 2 after a usage message. */
static int s_set_time(const char *name, const char *value, uint64_t *ms)
{
    if (!s_parse_time(value, ms))
        return cli_usage(NULL,
                         "--%s takes a time: milliseconds since the epoch, an ISO 8601 UTC time "
                         "(2026-12-02T10:00:00Z), now, or +/- a duration (+30s, -5m, +2h, +1d); "
                         "not '%s'",
                         name, value);
    return 0;
}

/*  Sets an option that takes a value. Returns 0, or 2 after a usage message (1 when memory
 *  runs out). */
static int s_set_option(cli_opts_t *opts, const s_option_t *option, const char *value)
{
    const char *name = option->name;
    long long n;
    if (!*value)
        return cli_usage(NULL, "--%s takes a value", name);
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
    else if (strcmp(name, "cursor") == 0)
        opts->cursor = value;
    else if (strcmp(name, "out") == 0)
        opts->out = value;
    else if (strcmp(name, "data") == 0)
        opts->data = value;
    else if (strcmp(name, "source") == 0)
        return s_append(&opts->sources, value);
    else if (strcmp(name, "pattern") == 0)
        return s_append(&opts->patterns, value);
    else if (strcmp(name, "scope") == 0)
        return s_append(&opts->scopes, value);
    else if (strcmp(name, "filter") == 0)
        opts->filter = value;
    else if (strcmp(name, "embedding") == 0)
        return s_read_embedding(opts, value);
    else if (strcmp(name, "half-life") == 0) {
        if (!s_parse_seconds(value, &opts->half_life_ms) || !opts->half_life_ms)
            return cli_usage(NULL, "--half-life takes a number of seconds above 0, not '%s'",
                             value);
    } else if (strcmp(name, "mode") == 0)
        opts->mode = value;
    else if (strcmp(name, "if-version") == 0)
        opts->if_version = value;
    else if (strcmp(name, "id") == 0)
        opts->id = value;
    else if (strcmp(name, "format") == 0)
        opts->format = value;
    else if (strcmp(name, "threshold") == 0) {
        char *end = NULL;
        opts->threshold = strtod(value, &end);
        if (*end || end == value || !isfinite(opts->threshold))
            return cli_usage(NULL, "--threshold takes a score (a number; 0: none), not '%s'",
                             value);
    } else if (strcmp(name, "tokens") == 0) {
        if (!cli_parse_int(value, 1, 100000, &n))
            return cli_usage(NULL, "--tokens takes a budget from 1 to 100000 tokens, not '%s'",
                             value);
        opts->tokens = (unsigned)n;
    } else if (strcmp(name, "top-k") == 0) {
        if (!cli_parse_int(value, 1, ENGRAM_MAX_TOP_K, &n))
            return cli_usage(NULL, "--top-k takes a number of results from 1 to %d, not '%s'",
                             ENGRAM_MAX_TOP_K, value);
        opts->top_k = (unsigned)n;
    } else if (strcmp(name, "from") == 0)
        return s_set_time(name, value, &opts->from_ms);
    else if (strcmp(name, "until") == 0)
        return s_set_time(name, value, &opts->until_ms);
    else if (strcmp(name, "at") == 0)
        return s_set_time(name, value, &opts->at_ms);
    else if (strcmp(name, "as-of") == 0) {
        int rc = s_set_time(name, value, &opts->as_of_ms);
        if (rc == 0 && opts->as_of_ms == 0)
            return cli_usage(NULL, "--as-of takes a time after the epoch, not '%s'", value);
        return rc;
    } else if (strcmp(name, "node") == 0) {
        if (!cli_parse_node(value, &opts->node))
            return cli_usage(NULL, "--node takes a node id, 16 hex digits, not '%s'", value);
    } else if (strcmp(name, "replicas") == 0) {
        if (!cli_parse_int(value, 1, 1000, &n))
            return cli_usage(NULL, "--replicas takes a number of nodes, not '%s'", value);
        opts->replicas = (unsigned)n;
    } else if (strcmp(name, "limit") == 0) {
        if (!cli_parse_int(value, 1, ENGRAM_MAX_PAGE, &n))
            return cli_usage(NULL, "--limit takes a number of items from 1 to %d, not '%s'",
                             ENGRAM_MAX_PAGE, value);
        opts->limit = (unsigned)n;
    } else if (strcmp(name, "ttl") == 0) {
        if (!s_parse_seconds(value, &opts->ttl_ms))
            return cli_usage(NULL, "--ttl takes a number of seconds, not '%s'", value);
    } else if (strcmp(name, "timeout") == 0) {
        if (!cli_parse_int(value, 0, INT_MAX, &n))
            return cli_usage(NULL, "--timeout takes milliseconds, not '%s'", value);
        opts->timeout_ms = (int)n;
    } else {
        assert(strcmp(name, "count") == 0);
        if (!cli_parse_int(value, 1, LONG_MAX, &n))
            return cli_usage(NULL, "--count takes a positive number, not '%s'", value);
        opts->count = (long)n;
    }
    return 0;
}

int cli_parse(int argc, char **argv, cli_opts_t *opts, const char **pos, size_t *npos)
{
    bool options_end = false;
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options_end || strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (!options_end && strcmp(arg, "--") == 0)
                options_end = true;
            else if (i == 1 && strcmp(arg, "-h") == 0)
                opts->help = true;
            else
                pos[(*npos)++] = arg;
            continue;
        }
        const char *eq = strchr(arg + 2, '=');
        const s_option_t *option =
            s_find_option(arg + 2, eq ? (size_t)(eq - arg - 2) : strlen(arg + 2));
        if (!option)
            return cli_usage(NULL, "unknown option %s", arg);
        if (!option->takes_value) {
            if (eq)
                return cli_usage(NULL, "--%s takes no value", option->name);
            if (strcmp(option->name, "help") == 0)
                opts->help = true;
            else if (strcmp(option->name, "version") == 0)
                opts->version = true;
            else if (strcmp(option->name, "explain") == 0)
                opts->explain = true;
            else if (strcmp(option->name, "votes") == 0)
                opts->votes = true;
            else if (strcmp(option->name, "dry-run") == 0)
                opts->dry_run = true;
            else if (strcmp(option->name, "json") == 0)
                opts->json = true;
            /* --mcp-memory: a format, in `given` only */
            opts->given |= option->bit;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 == argc)
                return cli_usage(NULL, "--%s takes a value", option->name);
            value = argv[++i];
        }
        int rc = s_set_option(opts, option, value);
        if (rc != 0)
            return rc;
    }
    return 0;
}
