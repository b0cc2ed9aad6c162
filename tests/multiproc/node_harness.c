/*  node_harness: start, stop, kill and restart real engramd processes (see node_harness.h). */
#define _GNU_SOURCE
#include "node_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

struct node_harness {
    char *dir;      /* the temporary directory, removed by destroy */
    char *data_dir; /* dir/data */
    char *endpoint; /* ipc://dir/api.sock */
    char *log_path; /* dir/engramd.log */
    char **args;    /* extra engramd flags, NULL-terminated, owned */
    pid_t pid;      /* the running node, 0 when none */
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
    self->args = s_args_dup(args);
    if (!self->dir || !self->data_dir || !self->endpoint || !self->log_path || !self->args) {
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
    s_args_free(self->args);
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

engram_t *node_harness_connect(const node_harness_t *self, const char *agent, const char *user,
                               int timeout_ms)
{
    engram_t *e = engram_connect(self->endpoint, agent, user);
    if (e)
        engram_set_timeout(e, timeout_ms);
    return e;
}

int node_harness_start(node_harness_t *self)
{
    if (self->pid > 0) {
        fprintf(stderr, "node_harness: engramd %d is already running\n", (int)self->pid);
        return -1;
    }
    if (s_spawn(self) != 0)
        return -1;
    engram_t *probe = node_harness_connect(self, "harness", "harness", 200);
    if (!probe) {
        node_harness_kill(self);
        return -1;
    }
    int64_t deadline = s_now_ms() + NODE_HARNESS_START_MS;
    int rc = -1;
    while (s_now_ms() < deadline) {
        if (!node_harness_alive(self))
            break;
        engram_stats_t stats;
        if (engram_stats(probe, &stats) == 0) {
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
