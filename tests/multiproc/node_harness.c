/*  node_harness: start, stop, kill and restart real engramd processes (see node_harness.h). */
#define _GNU_SOURCE
#include "node_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent_keys.h"
#include "engram/error.h"
#include "node/trust/acl.h"
#include "proto/acl.pb-c.h"

#ifndef ENGRAM_ENGRAMD
#error "build with -DENGRAM_ENGRAMD=<path of the engramd binary>"
#endif

/*  How long a start may take until the node answers, and a SIGTERM until it exits. Generous:
 *  under the sanitizers RocksDB opens and closes slowly. */
#ifndef NODE_HARNESS_START_MS
#define NODE_HARNESS_START_MS 30000
#endif
#ifndef NODE_HARNESS_STOP_MS
#define NODE_HARNESS_STOP_MS 30000
#endif
/*  How much of the log a failure prints. */
#define NODE_HARNESS_LOG_TAIL 8192
/*  Starts of a member on fresh ports after its port was taken, and port picks per start. */
#define NODE_HARNESS_BIND_TRIES 8
#define NODE_HARNESS_PORT_TRIES 200
/*  What engramd logs when its gossip or introduction port is taken (node/cluster/). */
#define NODE_HARNESS_BIND_FAILED "cannot bind gossip"
/*  How long a harness call on the admin's connection (a stats probe excepted) may take. */
#define NODE_HARNESS_ADMIN_MS 10000
/*  The largest acl.init read back: far more statements than any test grants. */
#define NODE_HARNESS_ACL_INIT_MAX (16 * 1024 * 1024)

struct node_harness {
    char *dir;      /* the temporary directory, removed by destroy */
    char *data_dir; /* dir/data */
    char *endpoint; /* ipc://dir/api.sock */
    char *log_path; /* dir/engramd.log */
    char **args;    /* extra engramd flags, NULL-terminated, owned */
    pid_t pid;      /* the running node, 0 when none */
    /* As a cluster member (node_harness_admit, node_harness_start_member): */
    uint64_t node_id;
    uint8_t public_key[crypto_sign_PUBLICKEYBYTES];
    char *card_path; /* dir/admission */
    char gossip[64]; /* tcp://127.0.0.1:PORT, "" until started as a member */
    /* Access control: */
    node_harness_admin_t admin; /* valid when has_admin */
    bool has_admin;             /* set by node_harness_admit, or made for a lone node */
    zlist_t *granted;           /* "LEN:AGENTUSER" of every pair granted, strings owned (a set) */
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static char *s_printf(const char *fmt, const char *arg)
{
    int len = snprintf(NULL, 0, fmt, arg);
    char *s = malloc((size_t)len + 1);
    if (s)
        snprintf(s, (size_t)len + 1, fmt, arg);
    return s;
}

static void s_args_free(char **args)
{
    for (size_t i = 0; args && args[i]; i++)
        free(args[i]);
    free(args);
}

/*  A NULL-terminated copy of args (NULL: none). Caller owns return value; NULL when out of
 *  memory. */
static char **s_args_dup(const char *const *args)
{
    size_t n = 0;
    while (args && args[n])
        n++;
    char **copy = calloc(n + 1, sizeof *copy);
    for (size_t i = 0; copy && i < n; i++)
        if (!(copy[i] = strdup(args[i]))) {
            s_args_free(copy);
            return NULL;
        }
    return copy;
}

node_harness_t *node_harness_new(const char *const *args)
{
    node_harness_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    char tmpl[] = "/tmp/engram-mp-XXXXXX";
    if (!mkdtemp(tmpl)) {
        fprintf(stderr, "node_harness: mkdtemp: %s\n", strerror(errno));
        free(self);
        return NULL;
    }
    self->dir = strdup(tmpl);
    self->data_dir = s_printf("%s/data", tmpl);
    self->endpoint = s_printf("ipc://%s/api.sock", tmpl);
    self->log_path = s_printf("%s/engramd.log", tmpl);
    self->card_path = s_printf("%s/admission", tmpl);
    self->args = s_args_dup(args);
    self->granted = zlist_new();
    if (self->granted) {
        zlist_autofree(self->granted);
        zlist_comparefn(self->granted, (zlist_compare_fn *)strcmp);
    }
    if (!self->dir || !self->data_dir || !self->endpoint || !self->log_path || !self->card_path ||
        !self->args || !self->granted) {
        if (!self->dir)
            rmdir(tmpl);
        node_harness_destroy(&self);
        return NULL;
    }
    return self;
}

static int s_remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "node_harness: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

void node_harness_destroy(node_harness_t **self_p)
{
    node_harness_t *self = *self_p;
    if (!self)
        return;
    if (self->pid > 0) {
        kill(self->pid, SIGKILL);
        waitpid(self->pid, NULL, 0);
        self->pid = 0;
    }
    if (self->dir)
        nftw(self->dir, s_remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(self->dir);
    free(self->data_dir);
    free(self->endpoint);
    free(self->log_path);
    free(self->card_path);
    s_args_free(self->args);
    zlist_destroy(&self->granted);
    sodium_memzero(&self->admin, sizeof self->admin);
    free(self);
    *self_p = NULL;
}

int node_harness_set_args(node_harness_t *self, const char *const *args)
{
    char **copy = s_args_dup(args);
    if (!copy)
        return -1;
    s_args_free(self->args);
    self->args = copy;
    return 0;
}

void node_harness_dump_log(const node_harness_t *self, const char *title)
{
    FILE *f = fopen(self->log_path, "r");
    fprintf(stderr, "---- %s: engramd log %s (tail) ----\n", title, self->log_path);
    if (!f) {
        fprintf(stderr, "(no log: %s)\n", strerror(errno));
        return;
    }
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > NODE_HARNESS_LOG_TAIL)
            fseek(f, size - NODE_HARNESS_LOG_TAIL, SEEK_SET);
        else
            fseek(f, 0, SEEK_SET);
    }
    char buf[1024];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stderr);
    fprintf(stderr, "---- end of log ----\n");
    fclose(f);
}

/*  Describes how the node ended; true if it was a clean exit 0. */
static bool s_report_exit(node_harness_t *self, int status, const char *context)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return true;
    char title[128];
    if (WIFEXITED(status))
        snprintf(title, sizeof title, "%s: engramd %d exited with status %d", context,
                 (int)self->pid, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(title, sizeof title, "%s: engramd %d died of signal %d", context, (int)self->pid,
                 WTERMSIG(status));
    else
        snprintf(title, sizeof title, "%s: engramd %d ended with wait status %d", context,
                 (int)self->pid, status);
    node_harness_dump_log(self, title);
    return false;
}

bool node_harness_alive(node_harness_t *self)
{
    if (self->pid <= 0)
        return false;
    int status;
    pid_t got = waitpid(self->pid, &status, WNOHANG);
    if (got == 0)
        return true;
    if (got == self->pid)
        s_report_exit(self, status, "unexpected exit");
    self->pid = 0;
    return false;
}

/*  fork + exec engramd with its stdout and stderr appended to the log. */
static int s_spawn(node_harness_t *self)
{
    size_t nargs = 0;
    while (self->args[nargs])
        nargs++;
    const char **argv = calloc(nargs + 6, sizeof *argv);
    if (!argv)
        return -1;
    size_t a = 0;
    argv[a++] = ENGRAM_ENGRAMD;
    argv[a++] = "--data";
    argv[a++] = self->data_dir;
    argv[a++] = "--api";
    argv[a++] = self->endpoint;
    for (size_t i = 0; i < nargs; i++)
        argv[a++] = self->args[i];
    argv[a] = NULL;

    int log = open(self->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log < 0) {
        fprintf(stderr, "node_harness: cannot open %s: %s\n", self->log_path, strerror(errno));
        free(argv);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Only async-signal-safe calls until exec: the parent has threads (libzmq's). */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (dup2(log, STDOUT_FILENO) < 0 || dup2(log, STDERR_FILENO) < 0)
            _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        close_range(3, ~0U, 0);
        execv(ENGRAM_ENGRAMD, (char *const *)argv);
        _exit(127);
    }
    int err = errno;
    close(log);
    free(argv);
    if (pid < 0) {
        fprintf(stderr, "node_harness: fork: %s\n", strerror(err));
        return -1;
    }
    self->pid = pid;
    return 0;
}

engram_t *node_harness_connect(node_harness_t *self, const char *agent, const char *user,
                               int timeout_ms)
{
    engram_t *e = node_harness_grant(self, agent, user) == 0
                      ? engram_connect(self->endpoint, agent, user)
                      : NULL;
    if (e)
        engram_set_timeout(e, timeout_ms);
    else
        fprintf(stderr, "node_harness: no connection as '%s' for '%s' to %s\n", agent, user,
                self->endpoint);
    return e;
}

/*  The key the node published beside its socket (PATH.pub) into key; false while there is
 *  none (the node is not running). */
static bool s_published_key(const node_harness_t *self, uint8_t key[32])
{
    char *published = s_printf("%s.pub", self->endpoint + strlen("ipc://"));
    zcert_t *server = published ? zcert_load(published) : NULL;
    bool found = server != NULL;
    if (found)
        memcpy(key, zcert_public_key(server), 32);
    zcert_destroy(&server);
    free(published);
    return found;
}

zsock_t *node_harness_dealer(node_harness_t *self, const char *agent, const char *user)
{
    uint8_t server_key[32];
    zcert_t *cert = node_harness_grant(self, agent, user) == 0 ? agent_keys_cert(agent) : NULL;
    bool published = s_published_key(self, server_key);
    zsock_t *dealer = cert && published ? zsock_new(ZMQ_DEALER) : NULL;
    if (dealer) {
        zcert_apply(cert, dealer);
        zsock_set_curve_serverkey_bin(dealer, server_key);
        if (zsock_connect(dealer, "%s", self->endpoint) != 0)
            zsock_destroy(&dealer);
    }
    if (!dealer)
        fprintf(stderr, "node_harness: no CURVE DEALER as '%s' for '%s' to %s (%s)\n", agent, user,
                self->endpoint,
                !cert        ? "not granted"
                : !published ? "the node published no key"
                             : "no socket");
    zcert_destroy(&cert);
    return dealer;
}

engram_t *node_harness_admin_connect(const node_harness_t *self, int timeout_ms)
{
    uint8_t server_key[32], curve_public[32], curve_secret[32];
    if (!self->has_admin || !s_published_key(self, server_key) ||
        node_admission_curve_keys(self->admin.trust.admin_key, self->admin.secret_key, curve_public,
                                  curve_secret) != 0)
        return NULL;
    engram_t *e =
        engram_connect_keys(self->endpoint, NULL, NULL, curve_public, curve_secret, server_key);
    sodium_memzero(curve_secret, sizeof curve_secret);
    if (e)
        engram_set_timeout(e, timeout_ms);
    return e;
}

/*  --- access control --------------------------------------------------------------------- */

/*  Wall-clock milliseconds since the Unix epoch: the time statements are about. */
static uint64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*  DATA/trust: the lone node's cluster file (zconfig: cluster/id, cluster/admin_key in hex).
 *  0 or ENGRAM_EIO (said on stderr). */
static int s_write_trust(const node_harness_t *self)
{
    char id_hex[2 * NODE_CLUSTER_ID_BYTES + 1], key_hex[2 * crypto_sign_PUBLICKEYBYTES + 1];
    sodium_bin2hex(id_hex, sizeof id_hex, self->admin.trust.cluster_id,
                   sizeof self->admin.trust.cluster_id);
    sodium_bin2hex(key_hex, sizeof key_hex, self->admin.trust.admin_key,
                   sizeof self->admin.trust.admin_key);
    char *path = s_printf("%s/trust", self->data_dir);
    zconfig_t *config = zconfig_new("root", NULL);
    bool ok = path && config && zsys_dir_create("%s", self->data_dir) == 0;
    if (ok) {
        zconfig_put(config, "cluster/id", id_hex);
        zconfig_put(config, "cluster/admin_key", key_hex);
        ok = zconfig_save(config, path) == 0;
    }
    if (!ok)
        fprintf(stderr, "node_harness: cannot write the trust file %s\n", path ? path : "?");
    zconfig_destroy(&config);
    free(path);
    return ok ? 0 : ENGRAM_EIO;
}

/*  A node that was never admitted gets an admin of its own and its trust file, once. 0 or
 *  ENGRAM_EIO (said on stderr). */
static int s_admin_ensure(node_harness_t *self)
{
    if (self->has_admin)
        return 0;
    if (node_harness_admin_init(&self->admin) != 0)
        return ENGRAM_EIO;
    self->has_admin = true;
    return s_write_trust(self);
}

/*  Appends a packed SignedStatement to DATA/acl.init, a packed StatementList (made when
 *  missing), through a new file and a rename. 0 or an ENGRAM_E* code (said on stderr). */
static int s_acl_init_append(const node_harness_t *self, const uint8_t *statement, size_t len)
{
    char *path = s_printf("%s/acl.init", self->data_dir);
    uint8_t *data = NULL, *packed = NULL;
    size_t data_len = 0;
    int rc = path ? node_admission_read_file(path, NODE_HARNESS_ACL_INIT_MAX, &data, &data_len)
                  : ENGRAM_ENOMEM;
    Engram__StatementList *old =
        rc == 0 ? engram__statement_list__unpack(NULL, data_len, data) : NULL;
    if (rc == ENGRAM_ENOTFOUND || old)
        rc = zsys_dir_create("%s", self->data_dir) == 0 ? 0 : ENGRAM_EIO;
    else if (rc == 0)
        rc = ENGRAM_EDECODE;
    size_t nold = old ? old->n_statements : 0;
    Engram__StatementList list = ENGRAM__STATEMENT_LIST__INIT;
    list.statements = rc == 0 ? calloc(nold + 1, sizeof *list.statements) : NULL;
    if (rc == 0 && !list.statements)
        rc = ENGRAM_ENOMEM;
    if (rc == 0) {
        for (size_t i = 0; i < nold; i++)
            list.statements[list.n_statements++] = old->statements[i];
        list.statements[list.n_statements++] = (ProtobufCBinaryData){len, (uint8_t *)statement};
        size_t packed_len = engram__statement_list__get_packed_size(&list);
        packed = malloc(packed_len);
        rc = packed ? 0 : ENGRAM_ENOMEM;
        if (rc == 0) {
            engram__statement_list__pack(&list, packed);
            rc = node_admission_write_file(path, packed, packed_len, 0600);
        }
    }
    if (rc)
        fprintf(stderr, "node_harness: cannot append to %s: %s\n", path ? path : "acl.init",
                engram_strerror(rc));
    free(packed);
    free(list.statements);
    if (old)
        engram__statement_list__free_unpacked(old, NULL);
    free(data);
    free(path);
    return rc;
}

int node_harness_submit(node_harness_t *self, const uint8_t *signed_statement, size_t len)
{
    int rc = s_admin_ensure(self);
    if (rc)
        return rc;
    if (!node_harness_alive(self))
        return s_acl_init_append(self, signed_statement, len);
    engram_t *admin = node_harness_admin_connect(self, NODE_HARNESS_ADMIN_MS);
    rc = admin ? engram_acl_submit(admin, signed_statement, len, NULL) : ENGRAM_EUNAVAILABLE;
    if (rc)
        fprintf(stderr, "node_harness: %s refused a statement: %s (%s)\n", self->endpoint,
                engram_strerror(rc), admin ? engram_last_error(admin) : "no admin connection");
    engram_destroy(&admin);
    return rc;
}

/*  Signs statement (its body set) with the node's admin key at now, and submits it. */
static int s_sign_submit(node_harness_t *self, Engram__Statement *statement, uint64_t now)
{
    uint8_t *signed_statement = NULL;
    size_t len = 0;
    int rc = node_acl_sign(statement, self->admin.secret_key, now, &signed_statement, &len);
    if (rc == 0)
        rc = node_harness_submit(self, signed_statement, len);
    else
        fprintf(stderr, "node_harness: cannot sign a statement: %s\n", engram_strerror(rc));
    free(signed_statement);
    return rc;
}

/*  Signs and submits the three statements of a grant: agent registered with curve_key, user's
 *  edge to it, its read and write edge to every shared scope, all from now on. */
static int s_grant(node_harness_t *self, const char *agent, const char *user,
                   const uint8_t curve_key[32])
{
    uint64_t now = s_wall_ms();
    Engram__AgentRegister agent_register = ENGRAM__AGENT_REGISTER__INIT;
    agent_register.name = (char *)agent;
    agent_register.curve_key = (ProtobufCBinaryData){32, (uint8_t *)curve_key};
    Engram__UserAgentEdge user_agent = ENGRAM__USER_AGENT_EDGE__INIT;
    user_agent.user = (char *)user;
    user_agent.agent = (char *)agent;
    user_agent.from_ms = now;
    Engram__AgentResourceEdge agent_resource = ENGRAM__AGENT_RESOURCE_EDGE__INIT;
    agent_resource.agent = (char *)agent;
    agent_resource.resource = "*";
    agent_resource.read = true;
    agent_resource.write = true;
    agent_resource.from_ms = now;
    Engram__Statement statements[3];
    for (size_t i = 0; i < 3; i++)
        engram__statement__init(&statements[i]);
    statements[0].body_case = ENGRAM__STATEMENT__BODY_AGENT;
    statements[0].agent = &agent_register;
    statements[1].body_case = ENGRAM__STATEMENT__BODY_USER_AGENT;
    statements[1].user_agent = &user_agent;
    statements[2].body_case = ENGRAM__STATEMENT__BODY_AGENT_RESOURCE;
    statements[2].agent_resource = &agent_resource;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < 3; i++)
        rc = s_sign_submit(self, &statements[i], now);
    return rc;
}

int node_harness_grant(node_harness_t *self, const char *agent, const char *user)
{
    /* the pair's key: the agent's length first, so that no two pairs share one */
    char *pair = zsys_sprintf("%zu:%s%s", strlen(agent), agent, user);
    if (!pair)
        return ENGRAM_ENOMEM;
    if (zlist_exists(self->granted, pair)) {
        zstr_free(&pair);
        return 0;
    }
    zcert_t *cert = agent_keys_cert(agent);
    int rc = cert ? s_admin_ensure(self) : ENGRAM_EIO;
    if (rc == 0)
        rc = s_grant(self, agent, user, zcert_public_key(cert));
    if (rc == 0)
        zlist_append(self->granted, pair);
    zcert_destroy(&cert);
    zstr_free(&pair);
    return rc;
}

int node_harness_start(node_harness_t *self)
{
    if (self->pid > 0) {
        fprintf(stderr, "node_harness: engramd %d is already running\n", (int)self->pid);
        return -1;
    }
    if (s_admin_ensure(self) != 0 || s_spawn(self) != 0)
        return -1;
    /* The admin's connection is made once the node has published its key. */
    engram_t *probe = NULL;
    int64_t deadline = s_now_ms() + NODE_HARNESS_START_MS;
    int rc = -1;
    while (s_now_ms() < deadline) {
        if (!node_harness_alive(self))
            break;
        if (!probe)
            probe = node_harness_admin_connect(self, 200);
        engram_stats_t stats;
        if (probe && engram_stats(probe, &stats) == 0) {
            rc = 0;
            break;
        }
        s_sleep_ms(20);
    }
    engram_destroy(&probe);
    if (rc != 0) {
        if (self->pid > 0) {
            node_harness_dump_log(self, "engramd did not answer in time");
            node_harness_kill(self);
        }
        fprintf(stderr, "node_harness: engramd on %s did not start\n", self->endpoint);
    }
    return rc;
}

int node_harness_stop(node_harness_t *self)
{
    if (self->pid <= 0 || !node_harness_alive(self))
        return -1;
    kill(self->pid, SIGTERM);
    int64_t deadline = s_now_ms() + NODE_HARNESS_STOP_MS;
    int status;
    pid_t got;
    while ((got = waitpid(self->pid, &status, WNOHANG)) == 0 && s_now_ms() < deadline)
        s_sleep_ms(10);
    if (got == 0) {
        node_harness_dump_log(self, "engramd did not stop within the time after SIGTERM");
        node_harness_kill(self);
        return -1;
    }
    int rc = -1;
    if (got == self->pid) {
        s_report_exit(self, status, "stop");
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    self->pid = 0;
    return rc;
}

void node_harness_kill(node_harness_t *self)
{
    if (self->pid <= 0)
        return;
    kill(self->pid, SIGKILL);
    waitpid(self->pid, NULL, 0);
    self->pid = 0;
}

const char *node_harness_endpoint(const node_harness_t *self)
{
    return self->endpoint;
}

const char *node_harness_data_dir(const node_harness_t *self)
{
    return self->data_dir;
}

pid_t node_harness_pid(const node_harness_t *self)
{
    return self->pid;
}

/*  Whether the log appended since offset contains needle. */
static bool s_log_since_contains(const node_harness_t *self, long offset, const char *needle)
{
    uint8_t *log = NULL;
    size_t len = 0;
    if (node_admission_read_file(self->log_path, 256 * 1024 * 1024, &log, &len) != 0)
        return false;
    bool found = (size_t)offset < len &&
                 memmem(log + offset, len - (size_t)offset, needle, strlen(needle)) != NULL;
    free(log);
    return found;
}

bool node_harness_log_contains(const node_harness_t *self, const char *needle)
{
    return s_log_since_contains(self, 0, needle);
}

const char *node_harness_dir(const node_harness_t *self)
{
    return self->dir;
}

/*  The reason the last polled condition gave (one thread polls at a time). */
static char s_why[1024];

int64_t node_harness_now_ms(void)
{
    return s_now_ms();
}

void node_harness_because(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(s_why, sizeof s_why, fmt, args);
    va_end(args);
}

const char *node_harness_why(void)
{
    return s_why;
}

bool node_harness_poll(int timeout_ms, bool (*cond)(void *arg), void *arg)
{
    s_why[0] = '\0';
    int64_t deadline = s_now_ms() + timeout_ms;
    while (s_now_ms() < deadline) {
        if (cond(arg))
            return true;
        s_sleep_ms(20);
    }
    return cond(arg);
}

/*  --- cluster members ------------------------------------------------------------------ */

int node_harness_admin_init(node_harness_admin_t *admin)
{
    char home[] = "/tmp/engram-admin-XXXXXX";
    if (!mkdtemp(home)) {
        fprintf(stderr, "node_harness: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    char why[512] = "";
    int rc = node_admin_init(home, &admin->trust, why, sizeof why);
    if (rc == 0)
        rc = node_admin_load(home, &admin->trust, admin->secret_key, why, sizeof why);
    if (rc)
        fprintf(stderr, "node_harness: cannot make a cluster in %s: %s (%s)\n", home, why,
                engram_strerror(rc));
    nftw(home, s_remove_one, 16, FTW_DEPTH | FTW_PHYS);
    return rc ? -1 : 0;
}

/*  Whether 127.0.0.1:port can be bound now. */
static bool s_port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    close(fd);
    return ok;
}

int node_harness_free_ports(unsigned count)
{
    int span = NODE_HARNESS_PORT_MAX - NODE_HARNESS_PORT_MIN - (int)count;
    for (int i = 0; i < NODE_HARNESS_PORT_TRIES; i++) {
        int base = NODE_HARNESS_PORT_MIN + (int)randombytes_uniform((uint32_t)span);
        bool ok = true;
        for (unsigned p = 0; ok && p < count; p++)
            ok = s_port_free(base + (int)p);
        if (ok)
            return base;
    }
    fprintf(stderr, "node_harness: no %u free ports found on 127.0.0.1\n", count);
    return -1;
}

/*  Runs `engramd --data DIR/data --identity` and reads "node=ID key=HEX" from its output. */
static int s_identity(node_harness_t *self)
{
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        if (dup2(out[1], STDOUT_FILENO) < 0)
            _exit(127);
        int log = open(self->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (log >= 0)
            dup2(log, STDERR_FILENO);
        execl(ENGRAM_ENGRAMD, ENGRAM_ENGRAMD, "--data", self->data_dir, "--identity", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[1024] = "";
    size_t len = 0;
    ssize_t n;
    while (pid > 0 && len < sizeof line - 1 &&
           ((n = read(out[0], line + len, sizeof line - 1 - len)) > 0 || (n < 0 && errno == EINTR)))
        len += n > 0 ? (size_t)n : 0;
    line[len] = '\0';
    close(out[0]);
    int status = -1;
    if (pid > 0)
        waitpid(pid, &status, 0);
    /* zsys logs to stdout as well: the answer is the line that starts with node= */
    const char *answer = strncmp(line, "node=", 5) == 0 ? line : strstr(line, "\nnode=");
    answer = answer && *answer == '\n' ? answer + 1 : answer;
    char hex[2 * crypto_sign_PUBLICKEYBYTES + 1];
    size_t got = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !answer ||
        sscanf(answer, "node=%" SCNx64 " key=%64s", &self->node_id, hex) != 2 ||
        sodium_hex2bin(self->public_key, sizeof self->public_key, hex, strlen(hex), NULL, &got,
                       NULL) != 0 ||
        got != sizeof self->public_key) {
        fprintf(stderr, "node_harness: engramd --identity said '%s' (wait status %d)\n", line,
                status);
        node_harness_dump_log(self, "engramd --identity failed");
        return -1;
    }
    return 0;
}

int node_harness_admit(node_harness_t *self, const node_harness_admin_t *admin)
{
    if (self->has_admin && sodium_memcmp(self->admin.trust.admin_key, admin->trust.admin_key,
                                         sizeof admin->trust.admin_key) != 0) {
        fprintf(stderr, "node_harness: %s has another admin already (a lone node's?)\n", self->dir);
        return -1;
    }
    if (self->pid > 0 || s_identity(self) != 0)
        return -1;
    self->admin = *admin;
    self->has_admin = true;
    uint8_t *card = NULL;
    size_t len = 0;
    int rc = node_admin_admit(&admin->trust, admin->secret_key, self->public_key,
                              (uint64_t)time(NULL) * 1000, &card, &len);
    if (rc == 0)
        rc = node_admission_write_file(self->card_path, card, len, 0600);
    free(card);
    if (rc)
        fprintf(stderr, "node_harness: cannot write the card %s: %s\n", self->card_path,
                engram_strerror(rc));
    return rc ? -1 : 0;
}

/*  The log's current size, so that a failed start can be told apart by what it appended. */
static long s_log_size(const node_harness_t *self)
{
    struct stat st;
    return stat(self->log_path, &st) == 0 ? (long)st.st_size : 0;
}

int node_harness_start_member(node_harness_t *self, const char *join, const char *const *extra)
{
    for (int attempt = 0; attempt < NODE_HARNESS_BIND_TRIES; attempt++) {
        int port = node_harness_free_ports(2);
        if (port < 0)
            return -1;
        snprintf(self->gossip, sizeof self->gossip, "tcp://127.0.0.1:%d", port);
        const char *args[64] = {"--gossip", self->gossip, "--admission", self->card_path};
        size_t n = 4;
        if (join) {
            args[n++] = "--join";
            args[n++] = join;
        }
        for (size_t i = 0; extra && extra[i] && n < 63; i++)
            args[n++] = extra[i];
        args[n] = NULL;
        if (node_harness_set_args(self, args) != 0)
            return -1;
        long offset = s_log_size(self);
        if (node_harness_start(self) == 0)
            return 0;
        if (!s_log_since_contains(self, offset, NODE_HARNESS_BIND_FAILED))
            break;
        fprintf(stderr, "node_harness: port %d was taken meanwhile; another one\n", port);
    }
    self->gossip[0] = '\0';
    return -1;
}

uint64_t node_harness_node_id(const node_harness_t *self)
{
    return self->node_id;
}

const uint8_t *node_harness_public_key(const node_harness_t *self)
{
    return self->public_key;
}

const char *node_harness_gossip_endpoint(const node_harness_t *self)
{
    return self->gossip;
}

int node_harness_cli(node_harness_t *self, const char *cli, const char *agent, const char *user,
                     const char *const *argv, char **out)
{
    *out = NULL;
    if (node_harness_grant(self, agent, user) != 0)
        return -1;
    const char *full[32] = {cli,      "--socket", node_harness_endpoint(self), "--agent", agent,
                            "--user", user};
    size_t n = 7;
    for (size_t k = 0; argv[k]; k++) {
        if (n == 31)
            return -1;
        full[n++] = argv[k];
    }
    full[n] = NULL;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(cli, (char *const *)full);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    FILE *collect = open_memstream(out, &len);
    char buf[4096];
    for (ssize_t got; (got = read(fds[0], buf, sizeof buf)) > 0;)
        if (collect)
            fwrite(buf, 1, (size_t)got, collect);
    close(fds[0]);
    if (collect)
        fclose(collect);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int node_harness_after(engram_t *e, const char *scope, const char *token, int wait_ms)
{
    int rc = engram_set_after(e, token, wait_ms);
    engram_result_t *r = NULL;
    if (rc == 0)
        rc = engram_list(e, scope, NULL, NULL, 1, &r);
    engram_result_destroy(&r);
    return rc;
}
