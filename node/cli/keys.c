/*  Agent key pairs: an agent is whoever holds its CURVE key pair, kept under
 *  $ENGRAM_HOME/agents as NAME.cert (the public key) and NAME.cert_secret (both keys, mode
 *  0600), in czmq's zcert format, where libengram's engram_connect finds it. A key pair is
 *  never overwritten: an agent's registration names its public key, and a new pair would
 *  orphan it.
 */
#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "node/cli/cli.h"
#include "node/common/names.h"

/*  zcert_save writes NAME_secret through a buffer of this many bytes: a longer path would be
 *  cut short, so the secret key would land in another file. */
#define S_ZCERT_PATH_MAX 256

/*  Whether name may name an agent (cli_check_agent). */
static bool s_name_ok(const char *name)
{
    size_t len = strlen(name);
    return len > 0 && len <= CLI_AGENT_NAME_MAX && name[0] != '.' &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

int cli_check_agent(const cli_command_t *command, const char *name)
{
    if (!s_name_ok(name))
        return cli_usage(command,
                         "'%s' is no agent name: 1 to %d letters, digits, '.', '_' and '-', "
                         "not starting with '.'",
                         name, CLI_AGENT_NAME_MAX);
    return 0;
}

int cli_check_user(const cli_command_t *command, const char *user)
{
    const char *why = NULL;
    if (!node_name_ok(user, strlen(user), &why))
        return cli_usage(command,
                         "USER %s (a user name is visible characters in Unicode "
                         "normalisation form C)",
                         why);
    return 0;
}

int cli_mkdirs(const char *path)
{
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return cli_fail(ENGRAM_EIO, "%s: path too long", path);
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return cli_fail(ENGRAM_EIO, "cannot create %s: %s", dir, strerror(errno));
        if (c == '\0')
            return 0;
        *p = c;
    }
}

int cli_agent_key(const char *name, uint8_t curve_key[32], bool *created)
{
    assert(s_name_ok(name));
    char home[4096], dir[4200], path[4300], secret_path[4400];
    node_admin_home(home, sizeof home);
    snprintf(dir, sizeof dir, "%s/agents", home);
    snprintf(path, sizeof path, "%s/%s.cert", dir, name);
    snprintf(secret_path, sizeof secret_path, "%s_secret", path);
    if (strlen(secret_path) >= S_ZCERT_PATH_MAX)
        return cli_fail(ENGRAM_EINVAL, "%s: path too long for a czmq certificate", secret_path);
    *created = !zsys_file_exists(path) && !zsys_file_exists(secret_path);
    zcert_t *cert = NULL;
    if (*created) {
        int rc = cli_mkdirs(dir);
        if (rc != 0)
            return rc;
        if (!(cert = zcert_new()))
            return cli_fail(ENGRAM_ENOMEM, "creating a key pair");
        if (zcert_save(cert, path) != 0) {
            zcert_destroy(&cert);
            return cli_fail(ENGRAM_EIO, "cannot write %s", secret_path);
        }
    } else if (!(cert = zcert_load(path))) {
        return cli_fail(ENGRAM_EDECODE, "%s is not a czmq certificate; it is never overwritten",
                        path);
    }
    memcpy(curve_key, zcert_public_key(cert), 32);
    zcert_destroy(&cert);
    return 0;
}
