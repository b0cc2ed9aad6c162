/*  node/cli: the `engram` command, the command-line client of an engram node.
 *
 *  What the folder owns: the command line (its options and commands), the connection to the
 *  local node through libengram, what the commands print, the admin key work of cluster
 *  administration and access control, and the agents' key pairs. What it may call: libengram's
 *  public API (include/engram/engram.h) for everything a node does, and node/trust for the
 *  admin's key, the statements it signs (offline, no node needed) and the check of redaction
 *  patterns. It never touches a node's internals (store, api, cluster): what
 *  it knows of a node is what libengram answers.
 *
 *      engram [--socket EP] [--agent NAME] [--user NAME] [--json] COMMAND ARGS...
 *
 *  The global options default to $ENGRAM_SOCKET, $ENGRAM_AGENT ("cli") and $ENGRAM_USER
 *  ($USER, then "anonymous"). Options may stand anywhere on the line, before or after the
 *  command, as `--name value` or `--name=value`; `--` ends them, so that a later argument
 *  starting with `--` is taken as it is. A VALUE or TEXT argument "-" is read from stdin.
 *  The commands are listed in commands.c; their usage lines and help are the reference, which
 *  `engram help [COMMAND]` (or --help anywhere on a command line) prints. A mistyped command
 *  word is refused (exit 2) with the nearest command word, when one is near enough.
 *
 *  Output is the CLI's contract with scripts and tests:
 *    - writes (put, rm, set add/rm, counter add, log append, share, vote) print the causal
 *      token; remember prints the memory id; forget prints how many memories it forgot (with
 *      --dry-run: would forget); the commands that sign a statement (agent create, acl
 *      allow-user, allow, revoke, policy) print its id;
 *    - get prints the winning value as it is, followed by a newline unless it ends with one;
 *    - line-oriented outputs (ls, history, set members, log range, watch, acl show) print
 *      one record a line, fields separated by one space, newline and carriage return bytes
 *      inside a field written as \n and \r, and an empty name (author, op) as "-"; ls
 *      prints the key, then for a register or a log a tab and a preview of its value (a key
 *      may hold spaces but no control character, so `cut -f1` gives it whole);
 *    - --json prints one JSON document (watch: one object a line), compact, built and
 *      written by jansson and by nothing else. A byte of a string that is not part of
 *      well-formed UTF-8 stands for the code point of its value (U+0080 to U+00FF: \u00XX in
 *      JSON terms). meta is embedded as the JSON value it holds when jansson reads it as one
 *      (as the node does), as a string otherwise, null when empty. get --json is the winner's
 *      fields, "siblings" (the other concurrent versions, as objects of the same fields) and
 *      "token";
 *    - node ids, human and JSON alike, are 16 lower-case hex digits (cli_node_id), as
 *      `engramd --identity` prints them and `cluster remove` takes them.
 *  Errors are one line on stderr, `engram: <engram_strerror(code)>[: <node message>]`, and
 *  the exit status says what kind: 0 success, 1 other failure, 2 usage, 3 not found,
 *  4 refused, 5 node unavailable, 6 access denied. A malformed argument of the access control
 *  commands (a time, an agent name, a statement id, a --pattern the redaction engine would
 *  refuse) is a usage error, found before anything is signed or sent.
 *
 *  Cluster administration: `cluster init` creates a cluster (its id and admin key) under
 *  $ENGRAM_HOME (default ~/.engram); `node admit KEY --out FILE` signs a node's admission
 *  card with that key (KEY from `engramd --data DIR --identity`); `cluster remove NODE` signs a
 *  decommission and hands it to the node, which gossips it; `cluster status` shows members,
 *  per-member lag, version vectors and gossip counters; `put --replicas N` answers once N
 *  nodes hold the write (exit 5 if fewer did within --timeout, the write stays durable here).
 *
 *  Access control (node/trust/acl.h): an agent is whoever holds its CURVE key pair,
 *  $ENGRAM_HOME/agents/NAME.cert and NAME.cert_secret (czmq's format, the secret mode 0600),
 *  which libengram connects with for --agent NAME. What an agent may do, the admin signs as
 *  statements (proto/acl.proto) and the node keeps:
 *    - `init --data DIR` is the single-node quick start, offline: the admin key (created if
 *      $ENGRAM_HOME has none), DIR/trust (the node's trust root, a copy of $ENGRAM_HOME/cluster;
 *      a node with a card in DIR/admission takes its root from the card, which must name this
 *      admin), the key pair of --agent and the statements registering it and letting --user
 *      act through it, appended to DIR/acl.init, which engramd imports at every start;
 *    - `agent create` (a key pair, reused when one exists, and its registration) and the `acl`
 *      commands sign with the admin key and hand the statement to the node; they print its id
 *      (32 hex digits), which `acl revoke` takes. `acl show` lists the statements, `acl check`
 *      explains a decision (the explanation on stdout either way) and exits 0 when the agent may
 *      read the scope, 6 when not.
 *  Every command that talks to a node as the admin (agent create, acl, cluster status, join
 *  and remove, snapshot) connects with the CURVE form of the admin key (node_admission_curve_keys), not
 *  with an agent's; --agent does not apply to them. A time T (--from, --until, --at) is
 *  milliseconds since the epoch, an ISO 8601 UTC time (2026-12-02T10:00:00Z, or with
 *  milliseconds .sss before the Z), "now", or now plus or minus a number of seconds, minutes,
 *  hours or days (+30s, -5m, +2h, +1d); an edge is valid from --from (default now) until
 *  --until (default: until revoked). acl show prints times in the ISO form.
 *
 *  Reads: every read (get, ls, history, set members, counter get, log range) takes --after
 *  TOKEN (a write's causal token: the node answers once it has seen what TOKEN covers, at
 *  most --timeout MS, else exit 5). ls, history, set members and log range print every page;
 *  with --cursor C and/or --limit N (1 to ENGRAM_MAX_PAGE) they print one page, at most N
 *  items after C, and when more follow "next_cursor C2" on stderr (--json: an object with
 *  "items" and "next_cursor", "" at the end), so stdout keeps one record a line.
 *
 *  Names: a user name (init --user, acl allow-user) and a resource (acl allow) must pass the
 *  node's own rule (node/common/names.h: NFC, visible characters only), checked before
 *  anything is signed; agent names are stricter still (they name files).
 *
 *  Provenance: put, remember and log append take --source RESOURCE, repeatable: the resources
 *  the value was derived from (engram_set_sources), which a reader must be allowed to read.
 *
 *  Backup and moving memory: `snapshot DIR` has the node write a snapshot of its data into DIR
 *  on its own host (node/store/store.h; `engramd --restore DIR` starts from one); `export
 *  SCOPE` and `import FILE SCOPE` move a scope's objects as JSON lines with their provenance
 *  (transfer.c has the format and what import keeps of the file's provenance), or, with
 *  --mcp-memory, as the official MCP memory server's file.
 *
 *  watch runs until --count events were printed, or until SIGINT or SIGTERM (exit 0). It
 *  prints nothing before the first event, so a script cannot tell when the subscription is
 *  in place.
 *
 *  Files: main.c (connect, run, report), commands.c (the command table, help, usage), args.c
 *  (options, numbers, times, stdin values), print.c (the forms of output), agent.c (the agent
 *  commands), admin.c (cluster administration and the admin key), keys.c (agent key pairs),
 *  acl.c (the statements: agent create and the acl commands), init.c (engram init),
 *  transfer.c (export and import), mcp_*.c (engram mcp: mcp.h). This header is shared by them
 *  and by nothing else.
 */
#ifndef NODE_CLI_H
#define NODE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <sodium.h>

#include "engram/engram.h"
#include "node/trust/acl.h"
#include "node/trust/admission.h"
#include "proto/acl.pb-c.h"

#define CLI_USAGE_GLOBAL "engram [--socket EP] [--agent NAME] [--user NAME] [--json]"

/*  Command options: which ones a command takes. */
enum {
    CLI_OPT_META = 1 << 0,
    CLI_OPT_TTL = 1 << 1,
    CLI_OPT_AFTER = 1 << 2,
    CLI_OPT_TIMEOUT = 1 << 3,
    CLI_OPT_COUNT = 1 << 4,
    CLI_OPT_REPLICAS = 1 << 5,
    CLI_OPT_OUT = 1 << 6,
    CLI_OPT_DATA = 1 << 7,
    CLI_OPT_NODE = 1 << 8,
    CLI_OPT_FROM = 1 << 9,
    CLI_OPT_UNTIL = 1 << 10,
    CLI_OPT_AT = 1 << 11,
    CLI_OPT_SOURCE = 1 << 12,
    CLI_OPT_PATTERN = 1 << 13,
    CLI_OPT_CURSOR = 1 << 14,
    CLI_OPT_LIMIT = 1 << 15,
    CLI_OPT_SCOPE = 1 << 16,
    CLI_OPT_FILTER = 1 << 17,
    CLI_OPT_TOP_K = 1 << 18,
    CLI_OPT_THRESHOLD = 1 << 19,
    CLI_OPT_MODE = 1 << 20,
    CLI_OPT_EXPLAIN = 1 << 21,
    CLI_OPT_EMBEDDING = 1 << 22,
    CLI_OPT_HALF_LIFE = 1 << 23,
    /* memory operations (put --if-version, remember --id, forget --dry-run) */
    CLI_OPT_IF_VERSION = 1 << 24,
    CLI_OPT_ID = 1 << 25,
    CLI_OPT_DRY_RUN = 1 << 26,
    CLI_OPT_TOKENS = 1 << 27,
    CLI_OPT_VOTES = 1 << 28,
    CLI_OPT_AS_OF = 1 << 29,      /* get --as-of */
    CLI_OPT_MCP_MEMORY = 1 << 30, /* import/export --mcp-memory */
    CLI_OPT_FORMAT = 1u << 31,    /* import/export --format jsonl */
};

/*  The values of a repeatable option, in the order given. The array is the cli_opts_t's (freed
 *  by cli_opts_fini); the strings point into argv. */
typedef struct {
    const char **items;
    size_t n;
} cli_list_t;

/*  A VALUE or TEXT argument: the argument itself, or stdin for "-". */
typedef struct {
    const uint8_t *data;
    size_t len;
    uint8_t *owned; /* what data points to when it came from stdin; freed by cli_value_fini */
} cli_value_t;

/*  The parsed command line. Strings point into argv; cli_opts_fini frees the rest. */
typedef struct {
    const char *socket;  /* --socket; NULL: libengram's default */
    const char *agent;   /* --agent, $ENGRAM_AGENT or "cli" */
    const char *user;    /* --user, $ENGRAM_USER, $USER or "anonymous" */
    bool json;           /* --json */
    bool help;           /* --help, or -h first: print the help instead of running */
    bool version;        /* --version: print the version instead of running */
    unsigned given;      /* CLI_OPT_* of the command options given */
    const char *meta;    /* --meta; NULL if not given */
    uint64_t ttl_ms;     /* --ttl, in milliseconds; 0: never expires */
    const char *after;   /* --after; NULL if not given */
    const char *cursor;  /* --cursor: the page after it (with --limit: one page); NULL: none */
    unsigned limit;      /* --limit: at most this many items, one page; 0: the node's page */
    int timeout_ms;      /* --timeout */
    long count;          /* --count; 0: watch for ever */
    unsigned replicas;   /* --replicas; 0: this node's acknowledgement suffices */
    const char *out;     /* --out */
    const char *data;    /* --data */
    uint64_t node;       /* --node: an agent's home node; 0 when not given (any node) */
    uint64_t from_ms;    /* --from: a time T, in ms since the epoch (given or not: `given`) */
    uint64_t until_ms;   /* --until, likewise */
    uint64_t at_ms;      /* --at, likewise */
    uint64_t as_of_ms;   /* --as-of, likewise */
    cli_list_t sources;  /* --source, repeatable */
    cli_list_t patterns; /* --pattern, repeatable */
    cli_list_t scopes;   /* --scope, repeatable (search) */
    const char *filter;  /* --filter: mem0's filter grammar, JSON */
    unsigned top_k;      /* --top-k; 0: the node's default */
    double threshold;    /* --threshold: the lowest score shown */
    const char *mode;    /* --mode */
    bool explain;        /* --explain */
    float *embedding;    /* --embedding FILE: its JSON array of numbers (owned); NULL: none */
    size_t dims;
    uint64_t half_life_ms; /* --half-life SECONDS; 0: no recency boost */
    bool votes;            /* --votes: boost by usefulness votes */
    unsigned tokens;       /* --tokens: a context's budget */
    const char **args;     /* positional arguments after the command word(s) */
    size_t nargs;
    cli_value_t value; /* the VALUE or TEXT of a CLI_CMD_VALUE command */
    /* memory operations */
    const char *if_version; /* put --if-version: the causal token the write expects */
    const char *id;         /* remember --id: the memory's id */
    bool dry_run;           /* forget --dry-run */
    const char *format;     /* import/export --format; NULL: not given */
} cli_opts_t;

/*  What a command needs besides its arguments. */
enum {
    CLI_CMD_OFFLINE = 1 << 0, /* runs without a node (admin key work): engram is NULL */
    CLI_CMD_VALUE = 1 << 1,   /* its last argument is a VALUE or TEXT, "-" read from stdin */
    CLI_CMD_ADMIN = 1 << 2,   /* talks to the node as the admin: connects with the admin key */
};

/*  A command. run returns 0 or an ENGRAM_E* code, having printed its output. check, when not
 *  NULL, looks at the arguments and options before main connects (nothing is signed or sent
 *  before it passed) and returns 0, or 2 after a usage message (cli_usage). */
typedef struct cli_command cli_command_t;
struct cli_command {
    const char *name; /* first command word */
    const char *sub;  /* second command word, or NULL */
    size_t min_args;  /* positional arguments the command takes */
    size_t max_args;
    unsigned options; /* CLI_OPT_* it accepts */
    int (*run)(engram_t *engram, const cli_opts_t *opts);
    const char *usage; /* its usage line, after "engram [global options]" */
    unsigned flags;    /* CLI_CMD_* */
    const char *help;  /* what it does: a line for the list of commands, then more lines */
    int (*check)(const cli_command_t *command, const cli_opts_t *opts);
};

/*  --- main.c ---------------------------------------------------------------------------- */

/*  Sets the CLI's own message for the error line (it replaces engram_last_error) and returns
 *  code. */
int cli_fail(int code, const char *format, ...) __attribute__((format(printf, 2, 3)));

/*  --- commands.c ------------------------------------------------------------------------ */

/*  The command named by its first word and, for commands that have one, its second; NULL if
 *  there is none. */
const cli_command_t *cli_command_find(const char *name, const char *sub);
/*  `engram help WORDS...`: prints the usage and help of the command WORDS name (of every
 *  command of a first word that takes a second one; leading "help" words and extra words are
 *  ignored), or lists every command when there are no others. Returns 0, or 2 after a usage
 *  error when WORDS name no command. */
int cli_help(const char *const *words, size_t nwords);
/*  A usage error: the message and a short usage (command's, if not NULL) on stderr. Returns
 *  2, the exit status of usage errors. */
int cli_usage(const cli_command_t *command, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/*  A usage error for command words that name no command (sub: the second word, or NULL), with
 *  the nearest command word when one is near enough to be a slip, and for a first word that
 *  takes a second one, the usage lines of all its commands. Returns 2. */
int cli_usage_command(const char *name, const char *sub);

/*  --- args.c ---------------------------------------------------------------------------- */

/*  Splits argv into options (into opts) and positional arguments (into pos, which has room
 *  for argc). Returns 0, or 2 after a usage message (1 after a message when memory runs
 *  out). */
int cli_parse(int argc, char **argv, cli_opts_t *opts, const char **pos, size_t *npos);
/*  The name of a command option among bits (CLI_OPT_*), without its dashes. */
const char *cli_option_name(unsigned bits);
/*  A decimal integer in [min, max], the whole of s. */
bool cli_parse_int(const char *s, long long min, long long max, long long *out);
/*  A node id, as every output writes it: 16 hex digits, not all 0. */
bool cli_parse_node(const char *s, uint64_t *id);
/*  The wall clock, in milliseconds since the epoch. */
uint64_t cli_now_ms(void);
/*  Frees what cli_parse and cli_value_init allocated into opts; harmless twice. */
void cli_opts_fini(cli_opts_t *opts);

/*  Returns 0 or an ENGRAM_E* code (with cli_fail's message). */
int cli_value_init(cli_value_t *value, const char *arg);
/*  Frees what cli_value_init read; harmless on a zeroed value and twice. */
void cli_value_fini(cli_value_t *value);

/*  --- print.c: the forms of output ------------------------------------------------------ */

/*  JSON values: each returns a new reference the caller owns, or NULL when memory runs out. */
/*  Bytes as a JSON string: as they are when UTF-8; otherwise each byte outside a well-formed
 *  sequence becomes the code point of its value (U+0080 to U+00FF, "\u00XX" in JSON terms). */
json_t *cli_json_bytes(const uint8_t *p, size_t len);
json_t *cli_json_str(const char *s);
/*  A count or stamp; past INT64_MAX, which jansson's integers cannot hold, the nearest real. */
json_t *cli_json_u64(uint64_t v);
/*  A node id, as cli_node_id writes it. */
json_t *cli_json_node(uint64_t id);
/*  The fields of an item every JSON form of one shares: value, meta, author, user, agents,
 *  resources, hlc, created_hlc, expires_at_ms, node, n. */
json_t *cli_json_item(const engram_item_t *item);
/*  object with the members of more appended in their order. Takes both, even when either is
 *  NULL; returns object, or NULL when either was NULL or memory ran out. */
json_t *cli_json_merge(json_t *object, json_t *more);
/*  array with value appended. Takes both, as cli_json_merge. */
json_t *cli_json_append(json_t *array, json_t *value);
/*  Prints doc as one line of compact JSON and releases it. Takes doc; NULL means its building
 *  failed (out of memory). Returns 0 or an ENGRAM_E* code (with cli_fail's message). */
int cli_json_print(json_t *doc);

/*  A node id as every output writes it, human or JSON: 16 lower-case hex digits, as
 *  `engramd --identity` prints it and `cluster remove` takes it. */
#define CLI_NODE_ID_CHARS 16
void cli_node_id(uint64_t id, char text[CLI_NODE_ID_CHARS + 1]);

/*  A time in ms since the epoch as ISO 8601 UTC, with milliseconds only when there are some
 *  (2026-12-02T10:00:00Z, 2026-12-02T10:00:00.250Z): a form --from, --until and --at take.
 *  From the year 10000 on, the milliseconds as they are. */
#define CLI_TIME_CHARS 24
void cli_format_time(uint64_t ms, char text[CLI_TIME_CHARS + 1]);

/*  A field of a line-oriented output: newline and carriage return bytes written as \n, \r. */
void cli_print_field(const uint8_t *p, size_t len);
/*  A name in a line-oriented output: "-" when empty. */
void cli_print_str(const char *s);
/*  The value of a history step or event: the payload, or the amount of a counter change. */
void cli_print_item_value(const engram_item_t *item, const char *op);

/*  --- agent.c: the agent commands ------------------------------------------------------- */

int cli_cmd_put(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_get(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_rm(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_context(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_search(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_ls(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_history(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_set_add(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_set_rm(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_set_members(engram_t *engram, const cli_opts_t *opts);
/*  N is checked before: main refuses a counter add whose N is not an integer. */
int cli_cmd_counter_add(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_counter_get(engram_t *engram, const cli_opts_t *opts);
int cli_check_counter_add(const cli_command_t *command, const cli_opts_t *opts);
int cli_check_context(const cli_command_t *command, const cli_opts_t *opts);
int cli_cmd_log_append(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_log_range(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_remember(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_share(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_watch(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_stats(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_forget(engram_t *engram, const cli_opts_t *opts);
/*  AMOUNT is checked before: main refuses a vote that is not +1 or -1. */
int cli_cmd_vote(engram_t *engram, const cli_opts_t *opts);
int cli_check_vote(const cli_command_t *command, const cli_opts_t *opts);

/*  --- mcp_server.c: the MCP server (mcp.h) ---------------------------------------------- */

int cli_cmd_mcp(engram_t *engram, const cli_opts_t *opts);

/*  --- transfer.c: a scope's memory out and in, as a file --------------------------------- */

/*  export SCOPE / import FILE SCOPE: engram's JSON lines with provenance (the default, --format
 *  jsonl), or the official MCP memory server's file (--mcp-memory). */
int cli_cmd_import(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_export(engram_t *engram, const cli_opts_t *opts);
/*  Refuses --format other than jsonl, and --format with --mcp-memory. */
int cli_check_transfer(const cli_command_t *command, const cli_opts_t *opts);

/*  --- admin.c: cluster administration --------------------------------------------------- */

/*  The admin's cluster and Ed25519 secret key, from $ENGRAM_HOME; the caller wipes secret
 *  (sodium_memzero). Returns 0 or an ENGRAM_E* code (with cli_fail's message). */
int cli_admin_load(node_trust_t *trust, uint8_t secret[crypto_sign_SECRETKEYBYTES]);

/*  Offline (engram is NULL): the admin key under $ENGRAM_HOME. */
int cli_cmd_cluster_init(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_node_admit(engram_t *engram, const cli_opts_t *opts);
/*  On a node. */
int cli_cmd_cluster_status(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_cluster_join(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_cluster_remove(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_snapshot(engram_t *engram, const cli_opts_t *opts);

/*  --- keys.c: agent key pairs ----------------------------------------------------------- */

/*  A check of an agent name (of command): 1 to CLI_AGENT_NAME_MAX letters, digits, '.', '_'
 *  and '-', not starting with '.' (it names the agent's files under $ENGRAM_HOME/agents).
 *  Returns 0, or 2 after a usage message. */
#define CLI_AGENT_NAME_MAX 128
int cli_check_agent(const cli_command_t *command, const char *name);
/*  Whether user is a user name (node/common/names.h); 2 after a usage message when not, never
 *  quoting it (it may hold what a terminal would act on). */
int cli_check_user(const cli_command_t *command, const char *user);
/*  A CURVE key in Z85 (zmq_z85_encode), as czmq's certificates and ENGRAM_SERVER_KEY write
 *  it. */
#define CLI_KEY_Z85_CHARS 40
/*  The CURVE public key of agent name (checked by cli_check_agent): the key pair under
 * $ENGRAM_HOME/agents when there is one (*created false; never overwritten), else a new one written
 * there (*created true). Returns 0 or an ENGRAM_E* code (with cli_fail's message). */
int cli_agent_key(const char *name, uint8_t curve_key[32], bool *created);
/*  Creates directory path and its missing parents, mode 0700 (existing ones stay as they
 *  are). Returns 0 or ENGRAM_EIO (with cli_fail's message). */
int cli_mkdirs(const char *path);

/*  --- acl.c: statements and the commands that sign them ---------------------------------- */

/*  A statement id as the acl commands print it and acl revoke takes it: 32 hex digits. */
#define CLI_ACL_ID_CHARS (2 * NODE_ACL_ID_BYTES)
/*  Signed statements, for engram init: an agent's registration (home_node 0: any node), and
 *  user's edge to agent during [from_ms, until_ms) (until_ms 0: open), each signed by secret
 *  (an admin's Ed25519 key) at now. *out is a packed SignedStatement the caller frees. Return
 *  0 or an ENGRAM_E* code (with cli_fail's message). */
int cli_acl_sign_agent(const uint8_t secret[crypto_sign_SECRETKEYBYTES], const char *agent,
                       const uint8_t curve_key[32], uint64_t home_node, uint8_t **out, size_t *len);
int cli_acl_sign_user_agent(const uint8_t secret[crypto_sign_SECRETKEYBYTES], const char *user,
                            const char *agent, uint64_t from_ms, uint64_t until_ms, uint8_t **out,
                            size_t *len);
/*  The id of a packed SignedStatement, in hex. 0 or ENGRAM_EDECODE. */
int cli_acl_id(const uint8_t *signed_statement, size_t len, char hex[CLI_ACL_ID_CHARS + 1]);

int cli_check_agent_create(const cli_command_t *command, const cli_opts_t *opts);
int cli_cmd_agent_create(engram_t *engram, const cli_opts_t *opts);
int cli_check_acl_allow_user(const cli_command_t *command, const cli_opts_t *opts);
int cli_cmd_acl_allow_user(engram_t *engram, const cli_opts_t *opts);
int cli_check_acl_allow(const cli_command_t *command, const cli_opts_t *opts);
int cli_cmd_acl_allow(engram_t *engram, const cli_opts_t *opts);
int cli_check_acl_revoke(const cli_command_t *command, const cli_opts_t *opts);
int cli_cmd_acl_revoke(engram_t *engram, const cli_opts_t *opts);
int cli_check_acl_policy(const cli_command_t *command, const cli_opts_t *opts);
int cli_cmd_acl_policy(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_acl_show(engram_t *engram, const cli_opts_t *opts);
int cli_check_acl_check(const cli_command_t *command, const cli_opts_t *opts);
/*  Returns ENGRAM_EDENIED, having printed the explanation, when the agent may not read. */
int cli_cmd_acl_check(engram_t *engram, const cli_opts_t *opts);

/*  --- init.c: the single-node quick start ----------------------------------------------- */

int cli_check_init(const cli_command_t *command, const cli_opts_t *opts);
/*  Offline (engram is NULL). */
int cli_cmd_init(engram_t *engram, const cli_opts_t *opts);

#endif
