/*  The command line: options and positional arguments, the numbers options take, and
 *  VALUE or TEXT arguments read from stdin.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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
    {"meta", true, CLI_OPT_META},
    {"ttl", true, CLI_OPT_TTL},
    {"after", true, CLI_OPT_AFTER},
    {"timeout", true, CLI_OPT_TIMEOUT},
    {"count", true, CLI_OPT_COUNT},
    {"replicas", true, CLI_OPT_REPLICAS},
    {"out", true, CLI_OPT_OUT},
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

/*  Sets an option that takes a value. Returns 0, or 2 after a usage message. */
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
    else if (strcmp(name, "out") == 0)
        opts->out = value;
    else if (strcmp(name, "replicas") == 0) {
        if (!cli_parse_int(value, 1, 1000, &n))
            return cli_usage(NULL, "--replicas takes a number of nodes, not '%s'", value);
        opts->replicas = (unsigned)n;
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
            else
                opts->json = true;
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
