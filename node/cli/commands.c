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
    {"put", NULL, 3, 3,
     CLI_OPT_META | CLI_OPT_TTL | CLI_OPT_REPLICAS | CLI_OPT_TIMEOUT | CLI_OPT_SOURCE |
         CLI_OPT_EMBEDDING | CLI_OPT_IF_VERSION,
     cli_cmd_put,
     "put SCOPE KEY VALUE [--meta JSON] [--ttl SECONDS] [--replicas N [--timeout MS]] "
     "[--source RESOURCE]... [--embedding FILE] [--if-version TOKEN]",
     CLI_CMD_VALUE,
     "Writes VALUE under KEY in SCOPE (a register) and prints the causal token.\n"
     "--meta attaches a JSON value; overwriting without --meta keeps the value's metadata.\n"
     "--if-version writes only if KEY did not change since TOKEN (a token of a get or a write in\n"
     "SCOPE; exit 4 when someone wrote KEY since; a token from before KEY existed: only if it\n"
     "still does not). --ttl makes the value expire after SECONDS, --replicas waits\n"
     "until N nodes hold the write (exit 5 if fewer did within --timeout; the write stays\n"
     "durable on this node). --source names a resource VALUE was derived from (repeatable): a\n"
     "reader must be allowed to read each, and the shared SCOPE itself, which the node records\n"
     "among the value's resources too. --embedding attaches the value's embedding (a JSON\n"
     "array of numbers in FILE, - for stdin) for search by meaning. VALUE \"-\" is read from\n"
     "stdin.",
     NULL},
    {"get", NULL, 2, 2, CLI_OPT_AFTER | CLI_OPT_TIMEOUT | CLI_OPT_AS_OF, cli_cmd_get,
     "get SCOPE KEY [--as-of T] [--after TOKEN] [--timeout MS]", 0,
     "Prints the value of KEY in SCOPE (exit 3 if there is none).\n"
     "With concurrent writes, the winner is printed; --json gives its fields, the other versions\n"
     "(\"siblings\") and the causal token. --after waits until this node has seen everything\n"
     "TOKEN covers, at most --timeout milliseconds (exit 5 then). --as-of prints the value KEY\n"
     "had at time T (ms since the epoch, an ISO 8601 UTC time, or -5m, -2h...), replayed from\n"
     "its history (exit 3 if it had none then).",
     NULL},
    {"rm", NULL, 2, 2, 0, cli_cmd_rm, "rm SCOPE KEY", 0,
     "Deletes KEY from SCOPE and prints the causal token.", NULL},
    {"ls", NULL, 1, 2,
     CLI_OPT_AFTER | CLI_OPT_TIMEOUT | CLI_OPT_CURSOR | CLI_OPT_LIMIT | CLI_OPT_FILTER, cli_cmd_ls,
     "ls SCOPE [PREFIX] [--filter JSON] [--cursor C] [--limit N] [--after TOKEN] [--timeout MS]", 0,
     "Lists the keys of SCOPE, or those that start with PREFIX, one a line: the key, then for\n"
     "a register or a log a tab and a preview of its value (a log: its last entry), at most 80\n"
     "bytes, ending with \"\u2026\" when cut. --filter lists only the registers and logs whose\n"
     "value matches (the grammar of search --filter). --json gives each key with its type (reg,\n"
     "set, counter, log) and, for a register or a log, \"preview\".\n"
     "--cursor/--limit print one page (at most N items after cursor C) and, when more follow,\n"
     "\"next_cursor C\" on stderr (--json: {\"items\", \"next_cursor\"}).\n"
     "--after waits until this node has seen everything TOKEN covers, at most --timeout\n"
     "milliseconds (exit 5 then).",
     NULL},
    {"history", NULL, 2, 2, CLI_OPT_AFTER | CLI_OPT_TIMEOUT | CLI_OPT_CURSOR | CLI_OPT_LIMIT,
     cli_cmd_history, "history SCOPE KEY [--cursor C] [--limit N] [--after TOKEN] [--timeout MS]",
     0,
     "Prints the changes to KEY in SCOPE, oldest first, one a line: hlc, op, author, value.\n"
     "--cursor/--limit print one page (at most N items after cursor C) and, when more follow,\n"
     "\"next_cursor C\" on stderr (--json: {\"items\", \"next_cursor\"}).\n"
     "--after waits until this node has seen everything TOKEN covers, at most --timeout\n"
     "milliseconds (exit 5 then).",
     NULL},
    {"search", NULL, 1, 1,
     CLI_OPT_SCOPE | CLI_OPT_FILTER | CLI_OPT_TOP_K | CLI_OPT_THRESHOLD | CLI_OPT_MODE |
         CLI_OPT_EXPLAIN | CLI_OPT_AFTER | CLI_OPT_TIMEOUT | CLI_OPT_EMBEDDING | CLI_OPT_HALF_LIFE |
         CLI_OPT_VOTES,
     cli_cmd_search,
     "search QUERY [--scope S]... [--filter JSON] [--top-k N] [--threshold X] "
     "[--mode keyword|vector|hybrid] [--embedding FILE] [--half-life SECONDS] [--votes] "
     "[--explain] [--after TOKEN] [--timeout MS]",
     0,
     "Finds memories (register values and log entries) by the words of QUERY, best first, one\n"
     "a line: score, scope, key, author, value. Ranked by BM25 over Unicode-folded, stemmed\n"
     "(English) words; searches every scope the agent may read for its user (its private\n"
     "scope included) unless --scope names some (repeatable). --filter keeps the memories a\n"
     "mem0-style filter matches ({\"AND\":[{\"author\":\"researcher\"},{\"created_at\":\n"
     "{\"gte\":\"2026-12-01\"}}]}: AND OR NOT, eq ne in nin gt gte lt lte contains icontains *,\n"
     "over author, user, key, created_at, updated_at and metadata fields). --top-k shows at\n"
     "most N (default 10), --threshold leaves out scores below X (0: none), --explain prints each\n"
     "score's parts (term frequencies, document frequencies, idf, lengths) on the next line.\n"
     "--embedding gives the query's embedding (a JSON array of numbers in FILE): --mode vector\n"
     "ranks by its cosine with the memories' embeddings, hybrid (the default with an\n"
     "embedding) fuses both rankings by reciprocal rank (k 60). --half-life boosts recent\n"
     "memories (up to 2x, halving every SECONDS of age); --votes boosts memories by their\n"
     "usefulness votes (engram vote).\n"
     "--after waits until this node has seen everything TOKEN covers, at most --timeout\n"
     "milliseconds (exit 5 then).",
     NULL},
    {"context", NULL, 1, 1,
     CLI_OPT_TOKENS | CLI_OPT_SCOPE | CLI_OPT_FILTER | CLI_OPT_TOP_K | CLI_OPT_THRESHOLD |
         CLI_OPT_MODE | CLI_OPT_EMBEDDING | CLI_OPT_HALF_LIFE | CLI_OPT_VOTES | CLI_OPT_AFTER |
         CLI_OPT_TIMEOUT,
     cli_cmd_context,
     "context QUERY --tokens N [--scope S]... [--filter JSON] [--top-k N] [search options]", 0,
     "Prints a ready prompt block of the memories `search QUERY` finds, best first, within a\n"
     "budget of N tokens (counted as one token per 4 bytes): a header line, then one line per\n"
     "memory, \"- WHEN UTC, AUTHOR in SCOPE (KEY): TEXT\", a text repeated elsewhere shown once,\n"
     "at most --top-k memories (default 10). Takes the options of search.",
     cli_check_context},
    {"set", "add", 3, 3, 0, cli_cmd_set_add, "set add SCOPE KEY ELEM", 0,
     "Adds ELEM to the set KEY in SCOPE and prints the causal token.", NULL},
    {"set", "rm", 3, 3, 0, cli_cmd_set_rm, "set rm SCOPE KEY ELEM", 0,
     "Removes ELEM from the set KEY in SCOPE and prints the causal token.\n"
     "A concurrent add of the same element wins.",
     NULL},
    {"set", "members", 2, 2, CLI_OPT_AFTER | CLI_OPT_TIMEOUT | CLI_OPT_CURSOR | CLI_OPT_LIMIT,
     cli_cmd_set_members,
     "set members SCOPE KEY [--cursor C] [--limit N] [--after TOKEN] [--timeout MS]", 0,
     "Prints the members of the set KEY in SCOPE, one a line.\n"
     "--cursor/--limit print one page (at most N items after cursor C) and, when more follow,\n"
     "\"next_cursor C\" on stderr (--json: {\"items\", \"next_cursor\"}).\n"
     "--after waits until this node has seen everything TOKEN covers, at most --timeout\n"
     "milliseconds (exit 5 then).",
     NULL},
    {"counter", "add", 3, 3, 0, cli_cmd_counter_add, "counter add SCOPE KEY N", 0,
     "Adds the integer N (negative to subtract) to the counter KEY in SCOPE and prints the\n"
     "causal token.",
     cli_check_counter_add},
    {"counter", "get", 2, 2, CLI_OPT_AFTER | CLI_OPT_TIMEOUT, cli_cmd_counter_get,
     "counter get SCOPE KEY [--after TOKEN] [--timeout MS]", 0,
     "Prints the value of the counter KEY in SCOPE.\n"
     "--after waits until this node has seen everything TOKEN covers, at most --timeout\n"
     "milliseconds (exit 5 then).",
     NULL},
    {"log", "append", 3, 3, CLI_OPT_SOURCE, cli_cmd_log_append,
     "log append SCOPE KEY TEXT [--source RESOURCE]...", CLI_CMD_VALUE,
     "Appends TEXT to the log KEY in SCOPE and prints the causal token. --source names a\n"
     "resource TEXT was derived from (repeatable). TEXT \"-\" is read from stdin.",
     NULL},
    {"log", "range", 2, 2, CLI_OPT_AFTER | CLI_OPT_TIMEOUT | CLI_OPT_CURSOR | CLI_OPT_LIMIT,
     cli_cmd_log_range,
     "log range SCOPE KEY [--cursor C] [--limit N] [--after TOKEN] [--timeout MS]", 0,
     "Prints the entries of the log KEY in SCOPE, oldest first, one a line.\n"
     "--cursor/--limit print one page (at most N items after cursor C) and, when more follow,\n"
     "\"next_cursor C\" on stderr (--json: {\"items\", \"next_cursor\"}).\n"
     "--after waits until this node has seen everything TOKEN covers, at most --timeout\n"
     "milliseconds (exit 5 then).",
     NULL},
    {"remember", NULL, 2, 2,
     CLI_OPT_META | CLI_OPT_TTL | CLI_OPT_SOURCE | CLI_OPT_ID | CLI_OPT_EMBEDDING, cli_cmd_remember,
     "remember SCOPE TEXT [--id ID] [--meta JSON] [--ttl SECONDS] [--source RESOURCE]... "
     "[--embedding FILE]",
     CLI_CMD_VALUE,
     "Stores TEXT as a new memory in SCOPE and prints its id (the key to get it by).\n"
     "--id gives the id: the first remember of an ID stores it, a later one stores nothing\n"
     "(whatever its TEXT) and prints the same ID, so a retried remember stores once.\n"
     "--meta attaches a JSON value, --ttl makes it expire after SECONDS, --source names a\n"
     "resource TEXT was derived from (repeatable). TEXT \"-\" is read from stdin.",
     NULL},
    {"share", NULL, 2, 2, 0, cli_cmd_share, "share KEY SCOPE", 0,
     "Copies KEY from the agent's private scope into the shared SCOPE, with its provenance,\n"
     "and prints the causal token.",
     NULL},
    {"forget", NULL, 1, 1, CLI_OPT_FILTER | CLI_OPT_DRY_RUN, cli_cmd_forget,
     "forget SCOPE --filter JSON [--dry-run]", 0,
     "Deletes every memory (register and log) of SCOPE that the filter matches and prints how\n"
     "many. The filter (the grammar of search --filter) is matched against each memory's value\n"
     "(a log: its last entry); only memories the agent may read are considered, and an empty\n"
     "filter is refused (exit 4). --dry-run prints how many it would delete, deleting nothing.",
     NULL},
    {"vote", NULL, 3, 3, 0, cli_cmd_vote, "vote SCOPE KEY +1|-1", 0,
     "Votes for (+1) or against (-1) the memory KEY in SCOPE and prints the causal token.\n"
     "The votes add up in the counter KEY#votes of SCOPE (ls lists it, counter get reads it).\n"
     "Exit 3 when there is no memory KEY the agent may read.",
     cli_check_vote},
    {"mcp", NULL, 0, 0, CLI_OPT_SCOPE, cli_cmd_mcp, "mcp [--scope SCOPE]...", 0,
     "Runs an MCP server (Model Context Protocol) on stdin and stdout for an MCP client, as\n"
     "--agent acting for --user: the official MCP memory server's nine knowledge graph tools,\n"
     "with the graph kept in the first --scope (default user:USER) as CRDTs that every node\n"
     "shares, its resource memory://knowledge-graph, and engram's memory_* tools (their\n"
     "default scope is the first --scope; searches cover every --scope, or with none every\n"
     "scope the agent may read). It runs until stdin ends; it logs on stderr only.",
     NULL},
    {"import", NULL, 2, 2, CLI_OPT_FORMAT | CLI_OPT_MCP_MEMORY, cli_cmd_import,
     "import FILE SCOPE [--format jsonl] | import --mcp-memory FILE SCOPE", 0,
     "Writes the objects of FILE into SCOPE, as this agent. FILE \"-\" is stdin. Every line is\n"
     "checked first: a line it cannot take (its number is given) or a key SCOPE holds with\n"
     "another type, and nothing is imported. jsonl (the default) is what export writes: each\n"
     "version's author, user, agents, resources, stamps and dot are kept in the metadata of the\n"
     "version written, under \"engram_origin\" (one already there stays): the versions written\n"
     "are this agent's. A register gets its winner, a set its elements, a log its entries in\n"
     "order, a counter its value added; an expired version is skipped. --mcp-memory merges the\n"
     "official MCP memory server's file (MEMORY_FILE_PATH: entities and relations) into the\n"
     "knowledge graph of SCOPE, as its tools would. Prints what was imported.",
     cli_check_transfer},
    {"export", NULL, 1, 1, CLI_OPT_FORMAT | CLI_OPT_MCP_MEMORY, cli_cmd_export,
     "export SCOPE [--format jsonl] | export --mcp-memory SCOPE", 0,
     "Prints the objects of SCOPE this agent may read, one JSON object a line, in key order:\n"
     "{\"scope\", \"key\", \"type\": reg|set|log, \"values\": [...]}, or for a counter\n"
     "{\"scope\", \"key\", \"type\": \"counter\", \"value\": N}. Each version (a register's\n"
     "winner then its siblings, a set's elements, a log's entries) has the fields of get\n"
     "--json: value (base64, with \"encoding\": \"base64\", when it is not UTF-8), meta, author,\n"
     "user, agents, resources, hlc, created_hlc, expires_at_ms, node and n (its dot).\n"
     "--mcp-memory prints the knowledge graph of SCOPE as the official MCP memory server's\n"
     "file: every entity, then every relation.",
     cli_check_transfer},
    {"watch", NULL, 1, 1, CLI_OPT_COUNT, cli_cmd_watch, "watch SCOPE [--count N]", 0,
     "Prints the changes to SCOPE as they happen, one a line: scope, key, op, value.\n"
     "Runs until N changes were printed, or until SIGINT or SIGTERM (exit 0); exits 5\n"
     "when the node stops, restarts or hangs (the watch ended: changes may be missed).",
     NULL},
    {"stats", NULL, 0, 0, 0, cli_cmd_stats, "stats", 0,
     "Prints the node's id, replica id and counters, one \"name: value\" a line.", NULL},
    {"cluster", "init", 0, 0, 0, cli_cmd_cluster_init, "cluster init", CLI_CMD_OFFLINE,
     "Creates a cluster: its id and the admin key, under $ENGRAM_HOME (default ~/.engram).\n"
     "Needs no node. An existing cluster is never overwritten.",
     NULL},
    {"node", "admit", 1, 1, CLI_OPT_OUT, cli_cmd_node_admit, "node admit KEY --out FILE",
     CLI_CMD_OFFLINE,
     "Signs the admission card of the node whose public key is KEY (64 hex digits, as\n"
     "`engramd --data DIR --identity` prints it) with the admin key, into FILE. Needs no node.",
     NULL},
    {"cluster", "status", 0, 0, 0, cli_cmd_cluster_status, "cluster status", CLI_CMD_ADMIN,
     "Prints the node's cluster: members with their state and lag, the version vector of each\n"
     "scope, and the gossip counters.",
     NULL},
    {"cluster", "join", 1, 1, 0, cli_cmd_cluster_join, "cluster join tcp://MEMBER:PORT",
     CLI_CMD_ADMIN,
     "Asks the node to join (again) through a member's gossip endpoint.\n"
     "The node shows the member its admission card there; `cluster status` tells when both\n"
     "see each other alive.",
     NULL},
    {"cluster", "remove", 1, 1, 0, cli_cmd_cluster_remove, "cluster remove NODE", CLI_CMD_ADMIN,
     "Decommissions the node NODE (16 hex digits, as `cluster status` shows it) for good: the\n"
     "admin key signs it and the node this command talks to spreads it.",
     NULL},
    {"snapshot", NULL, 1, 1, CLI_OPT_TIMEOUT, cli_cmd_snapshot, "snapshot DIR [--timeout MS]",
     CLI_CMD_ADMIN,
     "Makes the node write a snapshot of its data into DIR, on the node's host (not this\n"
     "command's, if they differ): an absolute path that must not exist, on the filesystem and\n"
     "mount of the node's data directory (its tables are hard-linked, never copied;\n"
     "DATA/snapshots/NAME always qualifies): copy DIR elsewhere afterwards. Taken online: requests wait (they are not refused) while RocksDB flushes its\n"
     "memtables, and every write acknowledged before it began is in it, under durability=async\n"
     "too. --timeout: how long to wait for the node (default 10 minutes). DIR holds the store (a "
     "RocksDB checkpoint)\n"
     "and the node's trust root, statements and members (mode 0700: it holds every agent's\n"
     "private memory and the node's secret key). `engramd --restore DIR` starts a node from it\n"
     "under a new replica id. Takes the admin key.",
     NULL},
    {"init", NULL, 0, 0, CLI_OPT_DATA, cli_cmd_init, "init --data DIR [--agent NAME] [--user USER]",
     CLI_CMD_OFFLINE,
     "The single-node quick start: lets USER act through agent NAME on the node of DIR.\n"
     "Creates the admin key under $ENGRAM_HOME (default ~/.engram) unless there is one, writes\n"
     "the node's trust root DIR/trust, the agent's key pair $ENGRAM_HOME/agents/NAME.cert\n"
     "(reused when it exists) and two signed statements (the agent's registration and USER's\n"
     "edge to it) into DIR/acl.init, which engramd imports at start. Needs no node; then run\n"
     "`engramd --data DIR`. --json gives the statement ids. NAME and USER default to the\n"
     "global --agent and --user.",
     cli_check_init},
    {"agent", "create", 1, 1, CLI_OPT_NODE, cli_cmd_agent_create, "agent create NAME [--node N]",
     CLI_CMD_ADMIN,
     "Registers agent NAME with its key pair and prints the statement id.\n"
     "The key pair is $ENGRAM_HOME/agents/NAME.cert and NAME.cert_secret, created unless it\n"
     "exists. --json gives agent, statement and the public key in Z85. --node makes node N (16\n"
     "hex digits) the agent's home; by default it may use any node.",
     cli_check_agent_create},
    {"acl", "allow-user", 2, 2, CLI_OPT_FROM | CLI_OPT_UNTIL, cli_cmd_acl_allow_user,
     "acl allow-user USER AGENT [--from T] [--until T]", CLI_CMD_ADMIN,
     "Lets AGENT act for USER and prints the statement id.\n"
     "From --from (default now) until --until (default: until revoked); acting for USER\n"
     "includes the scope user:USER. T: milliseconds since the epoch, 2026-12-02T10:00:00Z\n"
     "(UTC), now, or now plus or minus a duration: +30s, -5m, +2h, +1d.",
     cli_check_acl_allow_user},
    {"acl", "allow", 3, 3, CLI_OPT_FROM | CLI_OPT_UNTIL, cli_cmd_acl_allow,
     "acl allow AGENT RESOURCE read|write|read,write [--from T] [--until T]", CLI_CMD_ADMIN,
     "Lets AGENT read and/or write RESOURCE and prints the statement id.\n"
     "RESOURCE is a shared scope (run:q3), a pattern ending in * (run:*, *), a named resource\n"
     "(tool:web-search) or cluster (the cluster's administration). From --from (default now)\n"
     "until --until (default: until revoked); T as for acl allow-user.",
     cli_check_acl_allow},
    {"acl", "revoke", 1, 1, CLI_OPT_AT, cli_cmd_acl_revoke, "acl revoke ID [--at T]", CLI_CMD_ADMIN,
     "Ends the statement ID at --at (default now) and prints the revocation's id.\n"
     "ID is 32 hex digits, as the acl commands print it: an edge, an agent's registration or a\n"
     "policy. What was written under a revoked edge is hidden from then on, not deleted. T as\n"
     "for acl allow-user.",
     cli_check_acl_revoke},
    {"acl", "policy", 2, 2, CLI_OPT_PATTERN, cli_cmd_acl_policy,
     "acl policy SCOPE_PATTERN block|redact [--pattern RE]...", CLI_CMD_ADMIN,
     "Blocks or redacts the writes into shared scopes matching SCOPE_PATTERN; prints the id.\n"
     "block refuses them; redact replaces the matches of each --pattern (a POSIX extended\n"
     "regular expression, or @email, @phone, @card, @secret; none given: all four) before\n"
     "anything is stored. A pattern the node would refuse is a usage error (exit 2), and\n"
     "nothing is signed.",
     cli_check_acl_policy},
    {"acl", "show", 0, 0, CLI_OPT_AT, cli_cmd_acl_show, "acl show [--at T]", CLI_CMD_ADMIN,
     "Lists the statements the node holds and their state at --at (default now).\n"
     "One a line: id, kind, details, [from, until) and valid, pending (not yet), expired\n"
     "(revoked or past) or ineffective (its signer was no admin). --json gives the node's\n"
     "document.",
     NULL},
    {"acl", "check", 3, 3, CLI_OPT_AT, cli_cmd_acl_check, "acl check AGENT USER SCOPE [--at T]",
     CLI_CMD_ADMIN,
     "Explains whether AGENT acting for USER may read and write SCOPE.\n"
     "Prints the decision at --at (default now), then one line per step of it. Exits 0 if the\n"
     "agent may read SCOPE, 6 if not.",
     cli_check_acl_check},
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
    printf(
        "\n`engram help COMMAND` tells more of a command; `engram --version` prints the version. "
        "A VALUE or TEXT of \"-\" is read from stdin.\nDefaults: $ENGRAM_SOCKET, $ENGRAM_AGENT, "
        "$ENGRAM_USER.\nExit status: 0 ok, "
        "1 failure, 2 usage, 3 not found, 4 refused, 5 node unavailable, 6 access denied.\n");
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
