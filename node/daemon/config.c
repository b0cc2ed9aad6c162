/*  node_config: defaults, then zconfig file, then flags (see config.h).
 *
 *  s_settings is the only list of engramd's flags: the defaults are applied from it, both the
 *  flags and the config keys are looked up in it, and --help prints it.
 */
#include "node/daemon/config.h"

#include <czmq.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engram/error.h"
#include "engram/limits.h"
#include "node/common/words.h"

typedef enum {
    S_EXIT,   /* --help, --version: print, then exit; stops the parse; not a config key */
    S_SWITCH, /* a flag without a value, setting a bool; not a config key */
    S_ONCE,   /* a flag with a string value, for this start only; not a config key */
    S_CONFIG, /* --config FILE: read before every other flag; not a config key */
    S_STRING, /* the settings from here on are config keys too */
    S_SIZE,
    S_UINT,
    S_U64,
    S_DURABILITY, /* sync or async, into a bool: true for sync */
} s_kind_t;

typedef struct {
    const char *flag;  /* "--max-batch"; its config key is engram/max_batch */
    const char *alias; /* a short form, or NULL */
    const char *value; /* what the flag's value is, for --help; NULL for a switch */
    s_kind_t kind;
    size_t offset;    /* of the setting in node_config_t */
    uint64_t max;     /* numeric settings: the largest value accepted */
    uint64_t number;  /* numeric settings: the default */
    bool off;         /* numeric settings: 0 is accepted too (it turns the setting off) */
    const char *text; /* other settings: the default, or NULL for none */
    const char *help; /* one line; says what a setting without a default does when unset */
} s_setting_t;

#define FIELD(f) offsetof(node_config_t, f)
/* clang-format off */
static const s_setting_t s_settings[] = {
    {.flag = "--help", .alias = "-h", .kind = S_EXIT, .offset = FIELD(help),
     .help = "print this help and exit"},
    {.flag = "--version", .kind = S_EXIT, .offset = FIELD(version),
     .help = "print the version and the schema versions, and exit"},
    {.flag = "--identity", .kind = S_SWITCH, .offset = FIELD(identity),
     .help = "create the data directory if needed, print \"node=ID key=KEY api=KEY\" and exit"},
    {.flag = "--reindex", .kind = S_SWITCH, .offset = FIELD(reindex),
     .help = "rebuild the search index from the stored memories before serving"},
    {.flag = "--restore", .value = "SNAPSHOT", .kind = S_ONCE, .offset = FIELD(restore_dir),
     .help = "first fill the absent or empty data directory from a snapshot (engram snapshot)"},
    {.flag = "--config", .value = "FILE", .kind = S_CONFIG,
     .help = "read the settings below from FILE first (zconfig); flags override it"},
    {.flag = "--data", .value = "DIR", .kind = S_STRING, .offset = FIELD(data_dir),
     .help = "the node's data directory (required)"},
    {.flag = "--api", .value = "ENDPOINT", .kind = S_STRING, .offset = FIELD(api_endpoint),
     .text = ENGRAM_DEFAULT_API_ENDPOINT,
     .help = "where agents connect: ipc or tcp"},
    {.flag = "--durability", .value = "sync|async", .kind = S_DURABILITY,
     .offset = FIELD(api.durability_sync), .text = ENGRAM_DEFAULT_DURABILITY,
     .help = "acknowledge writes once fsynced (sync) or once written"},
    {.flag = "--max-value-bytes", .value = "N", .kind = S_SIZE,
     .offset = FIELD(api.max_value_bytes),
     .max = ENGRAM_MAX_VALUE_BYTES, .number = ENGRAM_MAX_VALUE_BYTES,
     .help = "largest value a write may carry (only lowers)"},
    {.flag = "--max-batch", .value = "N", .kind = S_UINT, .offset = FIELD(api.max_batch),
     .max = 65536, .number = ENGRAM_DEFAULT_MAX_BATCH,
     .help = "requests a turn reads and commits at once (gossip messages too)"},
    {.flag = "--purge-interval-ms", .value = "N", .kind = S_U64,
     .offset = FIELD(api.purge_interval_ms), .max = 86400000,
     .number = ENGRAM_DEFAULT_PURGE_INTERVAL_MS,
     .help = "how often expired objects are purged (and kept read iterators let go)"},
    {.flag = "--list-limit", .value = "N", .kind = S_UINT, .offset = FIELD(api.list_limit),
     .max = 100000, .number = ENGRAM_DEFAULT_LIST_LIMIT,
     .help = "most keys one list reply returns"},
    {.flag = "--subscriber-backlog", .value = "N", .kind = S_SIZE,
     .offset = FIELD(api.subscriber_backlog), .max = 100000000,
     .number = ENGRAM_DEFAULT_SUBSCRIBER_BACKLOG,
     .help = "events a slow subscriber may lag before it is cut off"},
    {.flag = "--max-frame-bytes", .value = "N", .kind = S_SIZE,
     .offset = FIELD(api.max_frame_bytes),
     .max = 256 * 1024 * 1024, .number = ENGRAM_DEFAULT_MAX_FRAME_BYTES,
     .help = "largest request frame the API accepts"},
    {.flag = "--busy-poll-us", .value = "N", .kind = S_UINT, .offset = FIELD(api.busy_poll_us),
     .max = ENGRAM_MAX_BUSY_POLL_US, .off = true,
     .help = "microseconds the loop may look for requests before it sleeps, adapted to their "
             "pace: costs CPU, lowers a lone client's latency (0: never)"},
    {.flag = "--min-free-bytes", .value = "N", .kind = S_U64, .offset = FIELD(min_free_bytes),
     .max = UINT64_C(1) << 50, .number = ENGRAM_DEFAULT_MIN_FREE_BYTES,
     .help = "free space below which writes are refused"},
    {.flag = "--flush-rate-mb", .value = "N", .kind = S_U64, .offset = FIELD(flush_rate_mb),
     .max = 1048576, .number = ENGRAM_DEFAULT_FLUSH_RATE_MB, .off = true,
     .help = "MiB a second RocksDB's flushes and compactions may write (0: no limit)"},
    {.flag = "--max-clock-drift-ms", .value = "N", .kind = S_U64,
     .offset = FIELD(max_clock_drift_ms), .max = UINT64_C(1) << 40,
     .number = ENGRAM_DEFAULT_MAX_CLOCK_DRIFT_MS,
     .help = "a timestamp from another node further ahead of this clock is refused"},
    {.flag = "--metrics", .value = "HOST:PORT", .kind = S_STRING, .offset = FIELD(metrics),
     .help = "serve /metrics, /healthz, /readyz and a status page over HTTP, on 127.0.0.1 "
             "unless HOST is given (default: none)"},
    {.flag = "--gossip", .value = "tcp://HOST:PORT", .kind = S_STRING,
     .offset = FIELD(gossip_endpoint),
     .help = "replicate with a cluster, gossiping here (default: none, a single node)"},
    {.flag = "--join", .value = "tcp://HOST:PORT", .kind = S_STRING, .offset = FIELD(join),
     .help = "a member's gossip endpoint to join the cluster through (default: none)"},
    {.flag = "--admission", .value = "FILE", .kind = S_STRING, .offset = FIELD(admission_path),
     .help = "the node's card from `engram node admit` (default: DATA/admission)"},
    {.flag = "--fanout", .value = "N", .kind = S_UINT, .offset = FIELD(fanout), .max = 64,
     .number = ENGRAM_DEFAULT_FANOUT, .help = "peers each new operation is pushed to"},
    {.flag = "--gossip-interval-ms", .value = "N", .kind = S_U64,
     .offset = FIELD(gossip_interval_ms), .max = 3600000,
     .number = ENGRAM_DEFAULT_GOSSIP_INTERVAL_MS,
     .help = "how often the node sends a peer its version vectors"},
    {.flag = "--max-gossip-bytes", .value = "N", .kind = S_SIZE,
     .offset = FIELD(max_gossip_bytes), .max = 256 * 1024 * 1024,
     .number = ENGRAM_DEFAULT_MAX_GOSSIP_BYTES,
     .help = "byte budget of one gossip message"},
    {.flag = "--gossip-hold-ms", .value = "N", .kind = S_U64, .offset = FIELD(gossip_hold_ms),
     .max = 50, .number = ENGRAM_DEFAULT_GOSSIP_HOLD_MS, .off = true,
     .help = "how long a node busy with writes may hold them back to push several at once "
             "(0: never)"},
};
/* clang-format on */
#define NSETTINGS (sizeof s_settings / sizeof s_settings[0])

/*  The longest flag, config key or misspelling of one that gets a suggestion. */
#define S_NAME_MAX 64
/*  The largest config file read: engramd's settings fit in a few hundred bytes. */
#define S_CONFIG_MAX_BYTES (64 * 1024)

static bool s_numeric(const s_setting_t *s)
{
    return s->kind == S_SIZE || s->kind == S_UINT || s->kind == S_U64;
}

/*  Writes the config key of s into key ("engram/max_batch" for --max-batch); false if s is
 *  a flag only. */
static bool s_key(const s_setting_t *s, char *key, size_t key_len)
{
    if (s->kind < S_STRING)
        return false;
    int n = snprintf(key, key_len, "engram/%s", s->flag + 2);
    assert(n > 0 && (size_t)n < key_len);
    for (char *c = key; *c; c++)
        if (*c == '-')
            *c = '_';
    return true;
}

static void s_store(node_config_t *self, const s_setting_t *s, uint64_t v)
{
    void *field = (char *)self + s->offset;
    if (s->kind == S_SIZE)
        *(size_t *)field = (size_t)v;
    else if (s->kind == S_UINT)
        *(unsigned *)field = (unsigned)v;
    else
        *(uint64_t *)field = v;
}

/*  Sets s from text; name is what a refusal calls the setting (its flag, or its key). */
static int s_set(node_config_t *self, const s_setting_t *s, const char *name, const char *text,
                 char *why, size_t why_len)
{
    void *field = (char *)self + s->offset;
    if (s->kind == S_STRING || s->kind == S_ONCE) {
        if (!text[0]) {
            snprintf(why, why_len, "%s needs %s", name, s->value);
            return ENGRAM_EINVAL;
        }
        char *copy = strdup(text);
        if (!copy)
            return ENGRAM_ENOMEM;
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    if (s->kind == S_DURABILITY) {
        if (strcmp(text, "sync") && strcmp(text, "async")) {
            snprintf(why, why_len, "%s must be sync or async, not '%s'", name, text);
            return ENGRAM_EINVAL;
        }
        *(bool *)field = strcmp(text, "sync") == 0;
        return 0;
    }
    assert(s_numeric(s));
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || (v == 0 && !s->off) || v > s->max) {
        snprintf(why, why_len, "%s must be a number from %d to %llu, not '%s'", name, !s->off,
                 (unsigned long long)s->max, text);
        return ENGRAM_EINVAL;
    }
    s_store(self, s, v);
    return 0;
}

static const s_setting_t *s_by_flag(const char *flag)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(s_settings[i].flag, flag) == 0 ||
            (s_settings[i].alias && strcmp(s_settings[i].alias, flag) == 0))
            return &s_settings[i];
    return NULL;
}

static const s_setting_t *s_by_key(const char *key)
{
    char name[S_NAME_MAX];
    for (size_t i = 0; i < NSETTINGS; i++)
        if (s_key(&s_settings[i], name, sizeof name) && strcmp(name, key) == 0)
            return &s_settings[i];
    return NULL;
}

/*  The flag (as_key false) or config key (as_key true) whose name is nearest to word's, written
 *  into out, if it is near enough to be what word misspells; false if none is. Names are
 *  compared without their "--" or "engram/", so that the prefix does not make every short word
 *  look like a misspelling. */
static bool s_nearest(const char *word, bool as_key, char *out, size_t out_len)
{
    while (!as_key && *word == '-')
        word++;
    size_t limit = strlen(word) / 3 > 1 ? strlen(word) / 3 : 1; /* the farthest suggested */
    size_t best = limit + 1;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const s_setting_t *s = &s_settings[i];
        char name[S_NAME_MAX];
        if (!as_key)
            snprintf(name, sizeof name, "%s", s->flag);
        else if (!s_key(s, name, sizeof name))
            continue;
        size_t d = node_words_distance(word, name + (as_key ? strlen("engram/") : strlen("--")));
        if (d < best) {
            best = d;
            snprintf(out, out_len, "%s", name);
        }
    }
    return best <= limit;
}

/*  Refuses word, a WHAT ("option", "key", "section") that nothing in s_settings names, with the
 *  nearest one that does when there is one. where prefixes the reason ("config FILE: "). */
static int s_unknown(const char *where, const char *what, const char *word, const char *nearest,
                     char *why, size_t why_len)
{
    if (nearest)
        snprintf(why, why_len, "%sunknown %s '%s' (did you mean '%s'?)", where, what, word,
                 nearest);
    else
        snprintf(why, why_len, "%sunknown %s '%s'", where, what, word);
    return ENGRAM_EINVAL;
}

/*  Reads the settings of one engram section of a config file. */
static int s_load_section(node_config_t *self, zconfig_t *section, const char *where, char *why,
                          size_t why_len)
{
    for (zconfig_t *item = zconfig_child(section); item; item = zconfig_next(item)) {
        char key[2 * S_NAME_MAX], nearest[S_NAME_MAX];
        snprintf(key, sizeof key, "engram/%s", zconfig_name(item));
        const s_setting_t *s = s_by_key(key);
        zconfig_t *child = zconfig_child(item);
        if (child) /* settings hold a value, not more keys */
            snprintf(key + strlen(key), sizeof key - strlen(key), "/%s", zconfig_name(child));
        if (!s || child)
            return s_unknown(where, "key", key,
                             s_nearest(zconfig_name(item), true, nearest, sizeof nearest) ? nearest
                                                                                          : NULL,
                             why, why_len);
        char name[2 * S_NAME_MAX + 1024];
        snprintf(name, sizeof name, "%s%s", where, key);
        int rc = s_set(self, s, name, zconfig_value(item) ? zconfig_value(item) : "", why, why_len);
        if (rc)
            return rc;
    }
    return 0;
}

/*  The whole text of the file at path, or NULL with the reason in why. Caller owns return value
 *  and must free it. (zconfig_load leaks its file handle on a malformed file, czmq 4.2.) */
static char *s_read(const char *path, char *why, size_t why_len)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        snprintf(why, why_len, "cannot read config file '%s': %s", path, strerror(errno));
        return NULL;
    }
    char *text = malloc(S_CONFIG_MAX_BYTES + 1);
    size_t size = text ? fread(text, 1, S_CONFIG_MAX_BYTES + 1, file) : 0;
    int error = !text ? ENOMEM : ferror(file) ? errno : 0;
    fclose(file);
    if (error)
        snprintf(why, why_len, "cannot read config file '%s': %s", path, strerror(error));
    else if (size > S_CONFIG_MAX_BYTES)
        snprintf(why, why_len, "config %s: larger than %d bytes", path, S_CONFIG_MAX_BYTES);
    else {
        text[size] = '\0';
        return text;
    }
    free(text);
    return NULL;
}

/*  Reads a config file: sections other than engram, and keys no setting has, are refused. */
static int s_load(node_config_t *self, const char *path, char *why, size_t why_len)
{
    char *text = s_read(path, why, why_len);
    if (!text)
        return ENGRAM_EINVAL;
    zconfig_t *root = zconfig_str_load(text);
    free(text);
    if (!root) {
        snprintf(why, why_len, "config %s: not in zconfig format (czmq's log names the line)",
                 path);
        return ENGRAM_EINVAL;
    }
    char where[1024];
    snprintf(where, sizeof where, "config %s: ", path);
    int rc = 0;
    for (zconfig_t *section = zconfig_child(root); rc == 0 && section;
         section = zconfig_next(section)) {
        const char *name = zconfig_name(section);
        char nearest[S_NAME_MAX];
        if (strcmp(name, "engram") == 0)
            rc = s_load_section(self, section, where, why, why_len);
        else if (s_nearest(name, true, nearest, sizeof nearest)) /* a setting outside engram */
            rc = s_unknown(where, "section", name, nearest, why, why_len);
        else
            rc =
                s_unknown(where, "section", name,
                          node_words_distance(name, "engram") <= 2 ? "engram" : NULL, why, why_len);
    }
    zconfig_destroy(&root);
    return rc;
}

int node_config_parse(node_config_t *self, int argc, char **argv, char *why, size_t why_len)
{
    memset(self, 0, sizeof *self);
    why[0] = '\0';
    for (size_t i = 0; i < NSETTINGS; i++) {
        const s_setting_t *s = &s_settings[i];
        if (s_numeric(s))
            s_store(self, s, s->number);
        else if (s->text && s_set(self, s, s->flag, s->text, why, why_len) != 0)
            return ENGRAM_ENOMEM; /* the defaults are valid */
    }

    /* --help, and the config files first, so that flags override a file wherever they stand.
     * This pass stops at anything it does not know; the next reports it. */
    for (int i = 1; i < argc; i++) {
        const s_setting_t *s = s_by_flag(argv[i]);
        if (s && s->kind == S_EXIT) {
            *(bool *)((char *)self + s->offset) = true;
            return 0;
        }
        if (!s)
            break;
        if (s->kind == S_SWITCH)
            continue;
        if (++i >= argc)
            break;
        if (s->kind == S_CONFIG) {
            int rc = s_load(self, argv[i], why, why_len);
            if (rc)
                return rc;
        }
    }
    for (int i = 1; i < argc; i++) {
        const s_setting_t *s = s_by_flag(argv[i]);
        char nearest[S_NAME_MAX];
        if (!s)
            return s_unknown("", "option", argv[i],
                             s_nearest(argv[i], false, nearest, sizeof nearest) ? nearest : NULL,
                             why, why_len);
        if (s->kind == S_SWITCH) {
            *(bool *)((char *)self + s->offset) = true;
            continue;
        }
        if (i + 1 >= argc) {
            snprintf(why, why_len, "%s needs %s", argv[i], s->value);
            return ENGRAM_EINVAL;
        }
        i++;
        if (s->kind != S_CONFIG) {
            int rc = s_set(self, s, s->flag, argv[i], why, why_len);
            if (rc)
                return rc;
        }
    }
    if (!self->data_dir) {
        snprintf(why, why_len, "--data DIR is required");
        return ENGRAM_EINVAL;
    }
    if ((self->join || self->admission_path) && !self->gossip_endpoint) {
        snprintf(why, why_len, "--join and --admission need --gossip tcp://HOST:PORT");
        return ENGRAM_EINVAL;
    }
    if (self->gossip_endpoint && !self->admission_path) {
        self->admission_path = zsys_sprintf("%s/admission", self->data_dir);
        if (!self->admission_path)
            return ENGRAM_ENOMEM;
    }
    return 0;
}

void node_config_help(FILE *out)
{
    fprintf(out, "usage: engramd --data DIR [FLAG VALUE]...  serve agents on this host\n"
                 "       engramd --data DIR --identity       print the node's id and keys\n\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const s_setting_t *s = &s_settings[i];
        char left[S_NAME_MAX];
        snprintf(left, sizeof left, "%s%s%s%s%s", s->alias ? s->alias : "", s->alias ? ", " : "",
                 s->flag, s->value ? " " : "", s->value ? s->value : "");
        fprintf(out, "  %-26s %s", left, s->help);
        if (s_numeric(s))
            fprintf(out, " (default: %llu)", (unsigned long long)s->number);
        else if (s->text)
            fprintf(out, " (default: %s)", s->text);
        fputc('\n', out);
    }
    fprintf(out, "\nIn a --config file each setting is a key under 'engram', named as its flag:\n"
                 "    engram\n"
                 "        max_batch = 64    # --max-batch 64\n");
}

void node_config_fini(node_config_t *self)
{
    free(self->data_dir);
    free(self->api_endpoint);
    free(self->gossip_endpoint);
    free(self->join);
    free(self->admission_path);
    free(self->metrics);
    free(self->restore_dir);
    memset(self, 0, sizeof *self);
}
