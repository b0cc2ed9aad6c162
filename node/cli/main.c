/*  engram's main: parse the command line, check the command's arguments, connect to the node
 *  (unless the command is offline; as the admin for the admin's commands), run the command,
 *  report its error and exit with the status its code maps to. The folder's contract is in
 *  cli.h.
 */
#include <czmq.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/limits.h"
#include "node/cli/cli.h"
#include "node/cli/mcp.h"

/*  A message of the CLI's own for the error line (stdin, a node's inconsistent answer); it
 *  replaces engram_last_error when set. */
static const char *s_message;
static char s_message_buf[256];

int cli_fail(int code, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(s_message_buf, sizeof s_message_buf, format, args);
    va_end(args);
    s_message = s_message_buf;
    return code;
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
    case ENGRAM_ECONFLICT:
        return 4;
    case ENGRAM_EUNAVAILABLE:
    case ENGRAM_ETIMEDOUT:
    case ENGRAM_EREPLICAS:
        return 5;
    case ENGRAM_EDENIED:
        return 6;
    default:
        return 1;
    }
}

static const char *s_env(const char *name, const char *fallback)
{
    const char *value = getenv(name);
    return value && *value ? value : fallback;
}

/*  Connects as the command needs: with the CURVE form of the admin's key (CLI_CMD_ADMIN), or
 *  as --agent with its key pair (libengram finds it). The node's key is found by libengram
 *  either way (ENGRAM_SERVER_KEY, or the certificate beside an ipc socket). */
static int s_connect(const cli_command_t *command, const cli_opts_t *opts, engram_t **engram)
{
    int rc = 0;
    if (command->flags & CLI_CMD_ADMIN) {
        node_trust_t trust;
        uint8_t secret[crypto_sign_SECRETKEYBYTES], curve_public[32], curve_secret[32];
        rc = cli_admin_load(&trust, secret);
        if (rc == 0 &&
            node_admission_curve_keys(trust.admin_key, secret, curve_public, curve_secret) != 0)
            rc = cli_fail(ENGRAM_EINVAL, "the admin key has no CURVE form");
        sodium_memzero(secret, sizeof secret);
        if (rc == 0)
            *engram = engram_connect_keys(opts->socket, NULL, opts->user, curve_public,
                                          curve_secret, NULL);
        sodium_memzero(curve_secret, sizeof curve_secret);
    } else {
        *engram = engram_connect(opts->socket, opts->agent, opts->user);
    }
    if (rc == 0 && !*engram)
        rc = cli_fail(ENGRAM_EUNAVAILABLE, "cannot connect to %s",
                      opts->socket ? opts->socket
                                   : s_env("ENGRAM_SOCKET", ENGRAM_DEFAULT_API_ENDPOINT));
    return rc;
}

int main(int argc, char **argv)
{
    /* stdout carries results only: what czmq logs goes to stderr (czmq's start sets stdout:
     * after it) */
    zsys_handler_set(NULL); /* as libengram: the default signals stay */
    zsys_init();
    zsys_set_logstream(stderr);
    cli_opts_t opts = {
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
    int status = cli_parse(argc, argv, &opts, pos, &npos);
    if (status == 0 && opts.version) {
        printf("engram %s\nschema %d.%d (API messages)\n", ENGRAM_VERSION, ENGRAM_SCHEMA_MAJOR,
               ENGRAM_SCHEMA_MINOR);
        cli_opts_fini(&opts);
        free(pos);
        return 0;
    }
    /*  `engram help [COMMAND]`, and --help anywhere: the help of the command words given. */
    bool help = opts.help || (npos > 0 && strcmp(pos[0], "help") == 0);
    if (status == 0 && help)
        status = cli_help(pos, npos);
    if (status != 0 || help) {
        cli_opts_fini(&opts);
        free(pos);
        return status;
    }

    const cli_command_t *command = NULL;
    if (npos == 0)
        status = cli_usage(NULL, "no command");
    else if (!(command = cli_command_find(pos[0], npos > 1 ? pos[1] : NULL)))
        status = cli_usage_command(pos[0], npos > 1 ? pos[1] : NULL);
    else {
        opts.args = pos + (command->sub ? 2 : 1);
        opts.nargs = npos - (command->sub ? 2 : 1);
        if (opts.given & ~command->options)
            status = cli_usage(command, "--%s does not apply to this command",
                               cli_option_name(opts.given & ~command->options));
        else if (opts.nargs < command->min_args || opts.nargs > command->max_args)
            status = cli_usage(command, "wrong number of arguments");
        else if (command->check)
            status = command->check(command, &opts);
    }
    if (status != 0) {
        cli_opts_fini(&opts);
        free(pos);
        return status;
    }

    int rc = 0;
    if (command->flags & CLI_CMD_VALUE)
        rc = cli_value_init(&opts.value, opts.args[opts.nargs - 1]);
    if (rc == 0 && command->run == cli_cmd_mcp) /* JSON-RPC alone on stdout, from the start */
        rc = mcp_claim_stdout();
    engram_t *engram = NULL;
    if (rc == 0 && !(command->flags & CLI_CMD_OFFLINE))
        rc = s_connect(command, &opts, &engram);
    if (rc == 0)
        rc = command->run(engram, &opts);
    if (rc == 0 && fflush(stdout) != 0)
        rc = cli_fail(ENGRAM_EIO, "writing stdout: %s", strerror(errno));
    if (rc != 0) {
        const char *message = s_message ? s_message : engram ? engram_last_error(engram) : "";
        fprintf(stderr, "engram: %s%s%s\n", engram_strerror(rc), *message ? ": " : "", message);
    }
    engram_destroy(&engram);
    cli_opts_fini(&opts);
    free(pos);
    return s_exit_status(rc);
}
