/*  The front door: the table of commands (words, arguments, options, usage, help), finding a
 *  command by its words, `engram help [COMMAND]`, and the usage errors, which name the
 *  nearest command when a word is mistyped.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "node/cli/cli.h"
#include "node/common/words.h"

static const cli_command_t s_commands[] = {
    {"put", NULL, 3, 3, CLI_OPT_META | CLI_OPT_TTL | CLI_OPT_REPLICAS | CLI_OPT_TIMEOUT,
     cli_cmd_put, "put SCOPE KEY VALUE [--meta JSON] [--ttl SECONDS] [--replicas N [--timeout MS]]",
     CLI_CMD_VALUE,
     "Writes VALUE under KEY in SCOPE (a register) and prints the causal token.\n"
     "--meta attaches a JSON value, --ttl makes the value expire after SECONDS, --replicas waits\n"
     "until N nodes hold the write (exit 5 if fewer did within --timeout; the write stays\n"
     "durable on this node). VALUE \"-\" is read from stdin."},
    {"get", NULL, 2, 2, CLI_OPT_AFTER | CLI_OPT_TIMEOUT, cli_cmd_get,
     "get SCOPE KEY [--after TOKEN] [--timeout MS]", 0,
     "Prints the value of KEY in SCOPE (exit 3 if there is none).\n"
     "With concurrent writes, the winner is printed; --json gives its fields, the other versions\n"
     "(\"siblings\") and the causal token. --after waits until this node has seen everything\n"
     "TOKEN covers, at most --timeout milliseconds (exit 5 then)."},
    {"rm", NULL, 2, 2, 0, cli_cmd_rm, "rm SCOPE KEY", 0,
     "Deletes KEY from SCOPE and prints the causal token."},
    {"ls", NULL, 1, 2, 0, cli_cmd_ls, "ls SCOPE [PREFIX]", 0,
     "Lists the keys of SCOPE, or those that start with PREFIX, one a line.\n"
     "--json gives each key with its type (reg, set, counter, log)."},
    {"history", NULL, 2, 2, 0, cli_cmd_history, "history SCOPE KEY", 0,
     "Prints the changes to KEY in SCOPE, oldest first, one a line: hlc, op, author, value."},
    {"set", "add", 3, 3, 0, cli_cmd_set_add, "set add SCOPE KEY ELEM", 0,
     "Adds ELEM to the set KEY in SCOPE and prints the causal token."},
    {"set", "rm", 3, 3, 0, cli_cmd_set_rm, "set rm SCOPE KEY ELEM", 0,
     "Removes ELEM from the set KEY in SCOPE and prints the causal token.\n"
     "A concurrent add of the same element wins."},
    {"set", "members", 2, 2, 0, cli_cmd_set_members, "set members SCOPE KEY", 0,
     "Prints the members of the set KEY in SCOPE, one a line."},
    {"counter", "add", 3, 3, 0, cli_cmd_counter_add, "counter add SCOPE KEY N", 0,
     "Adds the integer N (negative to subtract) to the counter KEY in SCOPE and prints the\n"
     "causal token."},
    {"counter", "get", 2, 2, 0, cli_cmd_counter_get, "counter get SCOPE KEY", 0,
     "Prints the value of the counter KEY in SCOPE."},
    {"log", "append", 3, 3, 0, cli_cmd_log_append, "log append SCOPE KEY TEXT", CLI_CMD_VALUE,
     "Appends TEXT to the log KEY in SCOPE and prints the causal token. TEXT \"-\" is read from\n"
     "stdin."},
    {"log", "range", 2, 2, 0, cli_cmd_log_range, "log range SCOPE KEY", 0,
     "Prints the entries of the log KEY in SCOPE, oldest first, one a line."},
    {"remember", NULL, 2, 2, CLI_OPT_META | CLI_OPT_TTL, cli_cmd_remember,
     "remember SCOPE TEXT [--meta JSON] [--ttl SECONDS]", CLI_CMD_VALUE,
     "Stores TEXT as a new memory in SCOPE and prints its id (the key to get it by).\n"
     "--meta attaches a JSON value, --ttl makes it expire after SECONDS. TEXT \"-\" is read from\n"
     "stdin."},
    {"share", NULL, 2, 2, 0, cli_cmd_share, "share KEY SCOPE", 0,
     "Copies KEY from the agent's private scope into the shared SCOPE, with its provenance,\n"
     "and prints the causal token."},
    {"watch", NULL, 1, 1, CLI_OPT_COUNT, cli_cmd_watch, "watch SCOPE [--count N]", 0,
     "Prints the changes to SCOPE as they happen, one a line: scope, key, op, value.\n"
     "Runs until N changes were printed, or until SIGINT or SIGTERM (exit 0)."},
    {"stats", NULL, 0, 0, 0, cli_cmd_stats, "stats", 0,
     "Prints the node's id, replica id and counters, one \"name: value\" a line."},
    {"cluster", "init", 0, 0, 0, cli_cmd_cluster_init, "cluster init", CLI_CMD_OFFLINE,
     "Creates a cluster: its id and the admin key, under $ENGRAM_HOME (default ~/.engram).\n"
     "Needs no node. An existing cluster is never overwritten."},
    {"node", "admit", 1, 1, CLI_OPT_OUT, cli_cmd_node_admit, "node admit KEY --out FILE",
     CLI_CMD_OFFLINE,
     "Signs the admission card of the node whose public key is KEY (64 hex digits, as\n"
     "`engramd --data DIR --identity` prints it) with the admin key, into FILE. Needs no node."},
    {"cluster", "status", 0, 0, 0, cli_cmd_cluster_status, "cluster status", 0,
     "Prints the node's cluster: members with their state and lag, the version vector of each\n"
     "scope, and the gossip counters."},
    {"cluster", "join", 1, 1, 0, cli_cmd_cluster_join, "cluster join tcp://MEMBER:PORT", 0,
     "Asks the node to join (again) through a member's gossip endpoint.\n"
     "The node shows the member its admission card there; `cluster status` tells when both\n"
     "see each other alive."},
    {"cluster", "remove", 1, 1, 0, cli_cmd_cluster_remove, "cluster remove NODE", 0,
     "Decommissions the node NODE (16 hex digits, as `cluster status` shows it) for good: the\n"
     "admin key signs it and the node this command talks to spreads it."},
};
#define S_NCOMMANDS (sizeof s_commands / sizeof s_commands[0])

const cli_command_t *cli_command_find(const char *name, const char *sub)
{
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        const cli_command_t *command = &s_commands[i];
        if (strcmp(command->name, name) == 0 &&
            (!command->sub || (sub && strcmp(command->sub, sub) == 0)))
            return command;
    }
    return NULL;
}

/*  True when commands named name take a second word. */
static bool s_has_sub(const char *name)
{
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (strcmp(s_commands[i].name, name) == 0 && s_commands[i].sub)
            return true;
    return false;
}

/*  The command word nearest to word: a first word ("help" among them) when name is NULL, else
 *  a second word of the commands named name. NULL when none is near enough to be a slip: at
 *  most one edit in three letters of the longer word. */
static const char *s_nearest(const char *word, const char *name)
{
    const char *best = name ? NULL : "help";
    size_t best_distance = name ? SIZE_MAX : node_words_distance(word, best);
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        const char *candidate = name ? s_commands[i].sub : s_commands[i].name;
        if (name && (strcmp(s_commands[i].name, name) != 0 || !candidate))
            continue;
        size_t distance = node_words_distance(word, candidate);
        if (distance < best_distance) {
            best = candidate;
            best_distance = distance;
        }
    }
    if (!best)
        return NULL;
    size_t longer = strlen(best) > strlen(word) ? strlen(best) : strlen(word);
    return best_distance <= (longer + 2) / 3 ? best : NULL;
}

int cli_usage(const cli_command_t *command, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("engram: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    if (command)
        fprintf(stderr, "usage: " CLI_USAGE_GLOBAL " %s\n", command->usage);
    else
        fprintf(stderr, "usage: " CLI_USAGE_GLOBAL " COMMAND ...\n"
                        "       (engram help lists the commands)\n");
    return 2;
}

int cli_usage_command(const char *name, const char *sub)
{
    if (!s_has_sub(name)) {
        const char *nearest = s_nearest(name, NULL);
        const cli_command_t *meant = nearest ? cli_command_find(nearest, sub) : NULL;
        if (!nearest)
            return cli_usage(NULL, "unknown command '%s'", name);
        return cli_usage(NULL, "unknown command '%s'; did you mean '%s%s%s'?", name, nearest,
                         meant && meant->sub ? " " : "", meant && meant->sub ? sub : "");
    }
    const char *nearest = sub ? s_nearest(sub, name) : NULL;
    if (nearest)
        fprintf(stderr, "engram: unknown subcommand '%s %s'; did you mean '%s %s'?\n", name, sub,
                name, nearest);
    else if (sub)
        fprintf(stderr, "engram: unknown subcommand '%s %s'\n", name, sub);
    else
        fprintf(stderr, "engram: %s needs a subcommand\n", name);
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (strcmp(s_commands[i].name, name) == 0)
            fprintf(stderr, "usage: " CLI_USAGE_GLOBAL " %s\n", s_commands[i].usage);
    return 2;
}

/*  Every command: its usage line and the first line of its help. */
static void s_help_all(void)
{
    printf("usage: " CLI_USAGE_GLOBAL " COMMAND ...\n\ncommands:\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        const char *help = s_commands[i].help;
        printf("  %s\n      %.*s\n", s_commands[i].usage, (int)strcspn(help, "\n"), help);
    }
    printf("\n`engram help COMMAND` tells more of a command. A VALUE or TEXT of \"-\" is read from "
           "stdin.\nDefaults: $ENGRAM_SOCKET, $ENGRAM_AGENT, $ENGRAM_USER.\nExit status: 0 ok, "
           "1 failure, 2 usage, 3 not found, 4 refused, 5 node unavailable.\n");
}

int cli_help(const char *const *words, size_t nwords)
{
    for (; nwords > 0 && strcmp(words[0], "help") == 0; nwords--)
        words++;
    if (nwords == 0) {
        s_help_all();
        return 0;
    }
    const char *sub = nwords > 1 ? words[1] : NULL;
    const cli_command_t *command = cli_command_find(words[0], sub);
    if (!command && (sub || !s_has_sub(words[0])))
        return cli_usage_command(words[0], sub);
    /*  The command, or every command of a word that takes a second one. */
    bool first = true;
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        const cli_command_t *c = &s_commands[i];
        if (command ? c != command : strcmp(c->name, words[0]) != 0)
            continue;
        printf("%susage: " CLI_USAGE_GLOBAL " %s\n\n%s\n", first ? "" : "\n", c->usage, c->help);
        first = false;
    }
    return 0;
}
