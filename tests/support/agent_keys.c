/*  agent_keys: CURVE key pairs for test agents under a temporary $ENGRAM_HOME (agent_keys.h). */
#define _GNU_SOURCE /* nftw */
#include "agent_keys.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static char s_home[64]; /* "" until made */
static pid_t s_owner;   /* the process that made it, the one that removes it */

static int s_remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void s_remove_home(void)
{
    if (getpid() == s_owner) /* not in a forked child that exits through exit() */
        nftw(s_home, s_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/*  agent_keys_home, with s_lock held. */
static const char *s_home_locked(void)
{
    if (s_home[0])
        return s_home;
    char tmpl[] = "/tmp/engram-home-XXXXXX";
    if (!mkdtemp(tmpl)) {
        fprintf(stderr, "agent_keys: mkdtemp: %s\n", strerror(errno));
        return NULL;
    }
    snprintf(s_home, sizeof s_home, "%s", tmpl);
    s_owner = getpid();
    atexit(s_remove_home);
    if (zsys_dir_create("%s/agents", s_home) != 0 || setenv("ENGRAM_HOME", s_home, 1) != 0 ||
        unsetenv("ENGRAM_SERVER_KEY") != 0) {
        fprintf(stderr, "agent_keys: cannot prepare %s: %s\n", s_home, strerror(errno));
        return NULL;
    }
    return s_home;
}

const char *agent_keys_home(void)
{
    pthread_mutex_lock(&s_lock);
    const char *home = s_home_locked();
    pthread_mutex_unlock(&s_lock);
    return home;
}

/*  The path of agent's certificate (AGENT.cert, its secret beside it as AGENT.cert_secret),
 *  its key pair made if there is none yet; with s_lock held. Caller owns return value and
 *  must free it; NULL on failure (said on stderr). */
static char *s_ensure_locked(const char *agent)
{
    const char *home = s_home_locked();
    char *path = home ? zsys_sprintf("%s/agents/%s.cert", home, agent) : NULL;
    char *secret = path ? zsys_sprintf("%s_secret", path) : NULL;
    bool ok = secret && zsys_file_exists(secret);
    if (secret && !ok) {
        zcert_t *cert = zcert_new();
        ok = cert && zcert_save(cert, path) == 0;
        zcert_destroy(&cert);
    }
    zstr_free(&secret);
    if (!ok) {
        fprintf(stderr, "agent_keys: no key pair for agent '%s' in %s\n", agent,
                home ? home : "(no home)");
        zstr_free(&path);
    }
    return path;
}

int agent_keys_make(const char *agent)
{
    pthread_mutex_lock(&s_lock);
    char *path = s_ensure_locked(agent);
    pthread_mutex_unlock(&s_lock);
    bool ok = path != NULL;
    zstr_free(&path);
    return ok ? 0 : -1;
}

zcert_t *agent_keys_cert(const char *agent)
{
    pthread_mutex_lock(&s_lock);
    char *path = s_ensure_locked(agent);
    zcert_t *cert = path ? zcert_load(path) : NULL;
    pthread_mutex_unlock(&s_lock);
    zstr_free(&path);
    return cert;
}
