/*  node/cli: the `engram` command, the command-line client of an engram node.
 *
 *  What the folder owns: the command line (its options and commands), the connection to the
 *  local node through libengram, what the commands print, and the admin key work of cluster
 *  administration. What it may call: libengram's public API (include/engram/engram.h) for
 *  everything a node does, and node/trust for the admin's key and the statements it signs
 *  (offline, no node needed). It never touches a node's internals (store, api, cluster): what
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
 *    - writes (put, rm, set add/rm, counter add, log append, share) print the causal token;
 *      remember prints the memory id;
 *    - get prints the winning value as it is, followed by a newline unless it ends with one;
 *    - line-oriented outputs (ls, history, set members, log range, watch) print one record a
 *      line, fields separated by one space, newline and carriage return bytes inside a field
 *      written as \n and \r, and an empty name (author, op) as "-";
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
 *
 *  Files: main.c (connect, run, report), commands.c (the command table, help, usage), args.c
 *  (options, numbers, stdin values), print.c (the forms of output), agent.c (the agent
 *  commands), admin.c (cluster administration and the admin key). This header is shared by
 *  them and by nothing else.
 */
#ifndef NODE_CLI_H
#define NODE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "engram/engram.h"

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
};

/*  A VALUE or TEXT argument: the argument itself, or stdin for "-". */
typedef struct {
    const uint8_t *data;
    size_t len;
    uint8_t *owned; /* what data points to when it came from stdin; freed by cli_value_fini */
} cli_value_t;

/*  The parsed command line. Strings point into argv. */
typedef struct {
    const char *socket; /* --socket; NULL: libengram's default */
    const char *agent;  /* --agent, $ENGRAM_AGENT or "cli" */
    const char *user;   /* --user, $ENGRAM_USER, $USER or "anonymous" */
    bool json;          /* --json */
    bool help;          /* --help, or -h first: print the help instead of running */
    unsigned given;     /* CLI_OPT_* of the command options given */
    const char *meta;   /* --meta; NULL if not given */
    uint64_t ttl_ms;    /* --ttl, in milliseconds; 0: never expires */
    const char *after;  /* --after; NULL if not given */
    int timeout_ms;     /* --timeout */
    long count;         /* --count; 0: watch for ever */
    unsigned replicas;  /* --replicas; 0: this node's acknowledgement suffices */
    const char *out;    /* --out */
    const char **args;  /* positional arguments after the command word(s) */
    size_t nargs;
    cli_value_t value; /* the VALUE or TEXT of a CLI_CMD_VALUE command; main owns it */
} cli_opts_t;

/*  What a command needs besides its arguments. */
enum {
    CLI_CMD_OFFLINE = 1 << 0, /* runs without a node (admin key work): engram is NULL */
    CLI_CMD_VALUE = 1 << 1,   /* its last argument is a VALUE or TEXT, "-" read from stdin */
};

/*  A command. run returns 0 or an ENGRAM_E* code, having printed its output. */
typedef struct {
    const char *name; /* first command word */
    const char *sub;  /* second command word, or NULL */
    size_t min_args;  /* positional arguments the command takes */
    size_t max_args;
    unsigned options; /* CLI_OPT_* it accepts */
    int (*run)(engram_t *engram, const cli_opts_t *opts);
    const char *usage; /* its usage line, after "engram [global options]" */
    unsigned flags;    /* CLI_CMD_* */
    const char *help;  /* what it does: a line for the list of commands, then more lines */
} cli_command_t;

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
 *  for argc). Returns 0, or 2 after a usage message. */
int cli_parse(int argc, char **argv, cli_opts_t *opts, const char **pos, size_t *npos);
/*  The name of a command option among bits (CLI_OPT_*), without its dashes. */
const char *cli_option_name(unsigned bits);
/*  A decimal integer in [min, max], the whole of s. */
bool cli_parse_int(const char *s, long long min, long long max, long long *out);

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
int cli_cmd_ls(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_history(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_set_add(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_set_rm(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_set_members(engram_t *engram, const cli_opts_t *opts);
/*  N is checked before: main refuses a counter add whose N is not an integer. */
int cli_cmd_counter_add(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_counter_get(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_log_append(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_log_range(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_remember(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_share(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_watch(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_stats(engram_t *engram, const cli_opts_t *opts);

/*  --- admin.c: cluster administration --------------------------------------------------- */

/*  Offline (engram is NULL): the admin key under $ENGRAM_HOME. */
int cli_cmd_cluster_init(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_node_admit(engram_t *engram, const cli_opts_t *opts);
/*  On a node. */
int cli_cmd_cluster_status(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_cluster_join(engram_t *engram, const cli_opts_t *opts);
int cli_cmd_cluster_remove(engram_t *engram, const cli_opts_t *opts);

#endif
