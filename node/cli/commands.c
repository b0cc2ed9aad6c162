/*  The commands: their table (words, arguments, options, usage), finding one by its words,
 *  and the usage and help texts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "node/cli/cli.h"

static const cli_command_t s_commands[] = {
    {"put", NULL, 3, 3, CLI_OPT_META | CLI_OPT_TTL | CLI_OPT_REPLICAS | CLI_OPT_TIMEOUT,
     cli_cmd_put, "put SCOPE KEY VALUE [--meta JSON] [--ttl SECONDS] [--replicas N [--timeout MS]]",
     false},
    {"get", NULL, 2, 2, CLI_OPT_AFTER | CLI_OPT_TIMEOUT, cli_cmd_get,
     "get SCOPE KEY [--after TOKEN] [--timeout MS]", false},
    {"rm", NULL, 2, 2, 0, cli_cmd_rm, "rm SCOPE KEY", false},
    {"ls", NULL, 1, 2, 0, cli_cmd_ls, "ls SCOPE [PREFIX]", false},
    {"history", NULL, 2, 2, 0, cli_cmd_history, "history SCOPE KEY", false},
    {"set", "add", 3, 3, 0, cli_cmd_set_add, "set add SCOPE KEY ELEM", false},
    {"set", "rm", 3, 3, 0, cli_cmd_set_rm, "set rm SCOPE KEY ELEM", false},
    {"set", "members", 2, 2, 0, cli_cmd_set_members, "set members SCOPE KEY", false},
    {"counter", "add", 3, 3, 0, cli_cmd_counter_add, "counter add SCOPE KEY N", false},
    {"counter", "get", 2, 2, 0, cli_cmd_counter_get, "counter get SCOPE KEY", false},
    {"log", "append", 3, 3, 0, cli_cmd_log_append, "log append SCOPE KEY TEXT", false},
    {"log", "range", 2, 2, 0, cli_cmd_log_range, "log range SCOPE KEY", false},
    {"remember", NULL, 2, 2, CLI_OPT_META | CLI_OPT_TTL, cli_cmd_remember,
     "remember SCOPE TEXT [--meta JSON] [--ttl SECONDS]", false},
    {"share", NULL, 2, 2, 0, cli_cmd_share, "share KEY SCOPE", false},
    {"watch", NULL, 1, 1, CLI_OPT_COUNT, cli_cmd_watch, "watch SCOPE [--count N]", false},
    {"stats", NULL, 0, 0, 0, cli_cmd_stats, "stats", false},
    {"cluster", "init", 0, 0, 0, cli_cmd_cluster_init, "cluster init", true},
    {"node", "admit", 1, 1, CLI_OPT_OUT, cli_cmd_node_admit, "node admit KEY --out FILE", true},
    {"cluster", "status", 0, 0, 0, cli_cmd_cluster_status, "cluster status", false},
    {"cluster", "join", 1, 1, 0, cli_cmd_cluster_join, "cluster join tcp://MEMBER:PORT", false},
    {"cluster", "remove", 1, 1, 0, cli_cmd_cluster_remove, "cluster remove NODE", false},
};
#define S_NCOMMANDS (sizeof s_commands / sizeof s_commands[0])

void cli_help(FILE *out)
{
    fprintf(out, "usage: " CLI_USAGE_GLOBAL " COMMAND ...\n\ncommands:\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        fprintf(out, "  %s\n", s_commands[i].usage);
    fprintf(out, "\nA VALUE or TEXT of \"-\" is read from stdin. Defaults: $ENGRAM_SOCKET, "
                 "$ENGRAM_AGENT, $ENGRAM_USER.\nExit status: 0 ok, 1 failure, 2 usage, "
                 "3 not found, 4 refused, 5 node unavailable.\n");
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
                        "       (engram --help lists the commands)\n");
    return 2;
}

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

bool cli_command_has_sub(const char *name)
{
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (strcmp(s_commands[i].name, name) == 0 && s_commands[i].sub)
            return true;
    return false;
}

int cli_usage_sub(const char *name, const char *sub)
{
    if (sub)
        fprintf(stderr, "engram: unknown subcommand '%s %s'\n", name, sub);
    else
        fprintf(stderr, "engram: %s needs a subcommand\n", name);
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (strcmp(s_commands[i].name, name) == 0)
            fprintf(stderr, "usage: " CLI_USAGE_GLOBAL " %s\n", s_commands[i].usage);
    return 2;
}
