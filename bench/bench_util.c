/*  bench_util: helpers shared by the benchmarks in bench/ (see bench_util.h). */
#define _GNU_SOURCE
#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t bench_interrupted;

/*  What bench_start() was given. */
static atomic_bool *s_stop;
static void (*s_release)(void);

/*  The children bench_spawn() started and nobody has stopped or reaped yet. Main thread. */
static pid_t s_children[BENCH_MAX_CHILDREN];
static size_t s_nchildren;

/*  --- time --------------------------------------------------------------------------- */

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void bench_sleep(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !bench_interrupted)
        ;
}

/*  --- life --------------------------------------------------------------------------- */

static void s_on_signal(int sig)
{
    (void)sig;
    bench_interrupted = 1;
    if (s_stop)
        atomic_store(s_stop, true);
}

void bench_start(atomic_bool *stop, void (*release)(void), void (*cleanup)(void))
{
    s_stop = stop;
    s_release = release;
    if (cleanup)
        atexit(cleanup);
    struct sigaction sa = {.sa_handler = s_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void bench_die(const char *file, int line, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fflush(stdout);
    fprintf(stderr, "%s:%d: ", file, line);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    if (s_release) /* before czmq's own atexit handler, which runs before the cleanup */
        s_release();
    exit(2);
}

void bench_error(uint64_t *count, char *buf, size_t size, const char *format, ...)
{
    if ((*count)++ == 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(buf, size, format, args);
        va_end(args);
    }
}

/*  --- numbers ------------------------------------------------------------------------ */

uint64_t bench_rand(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void bench_words_fill(uint8_t *val, size_t from, size_t len, uint64_t seed)
{
    uint64_t rng = seed;
    for (size_t at = from; at < len;) {
        val[at++] = ' ';
        uint64_t word = bench_rand(&rng) % 4096, letters = 3 + word % 6;
        for (uint64_t l = 0; l < letters && at < len; l++, word = word * 31 + 7)
            val[at++] = (uint8_t)('a' + word % 26);
    }
}

const char *bench_si(char *buf, size_t size, double v)
{
    const char *unit = "";
    if (v >= 1e9) {
        v /= 1e9;
        unit = "G";
    } else if (v >= 1e6) {
        v /= 1e6;
        unit = "M";
    } else if (v >= 1e3) {
        v /= 1e3;
        unit = "k";
    }
    snprintf(buf, size, v >= 100 ? "%.0f%s" : v >= 10 ? "%.1f%s" : "%.2f%s", v, unit);
    return buf;
}

const char *bench_lat(char *buf, size_t size, uint64_t ns)
{
    double us = (double)ns / 1e3;
    if (us < 1000)
        snprintf(buf, size, us < 10 ? "%.1fus" : "%.0fus", us);
    else if (us < 1e6)
        snprintf(buf, size, us < 1e4 ? "%.2fms" : us < 1e5 ? "%.1fms" : "%.0fms", us / 1e3);
    else
        snprintf(buf, size, "%.2fs", us / 1e6);
    return buf;
}

int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

uint64_t bench_percentile(const uint64_t *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)ceil(p * (double)n);
    return sorted[rank ? rank - 1 : 0];
}

/*  --- processes ---------------------------------------------------------------------- */

static void s_child_forget(pid_t pid)
{
    for (size_t i = 0; i < s_nchildren; i++)
        if (s_children[i] == pid) {
            s_children[i] = s_children[--s_nchildren];
            return;
        }
}

pid_t bench_spawn(char *const argv[], const char *log)
{
    if (s_nchildren == BENCH_MAX_CHILDREN) {
        errno = EMFILE;
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        close_range(3, ~0U, 0);
        signal(SIGINT, SIG_IGN); /* the benchmark stops it; a terminal ^C goes to it first */
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    s_children[s_nchildren++] = pid;
    return pid;
}

bool bench_alive(pid_t pid)
{
    if (waitpid(pid, NULL, WNOHANG) == 0)
        return true;
    s_child_forget(pid);
    return false;
}

void bench_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    s_child_forget(pid);
    if (kill(pid, SIGTERM) != 0 && errno == ESRCH)
        return;
    for (int i = 0; i < 1000; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        if (kill(pid, 0) != 0 && errno == ESRCH)
            return;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

void bench_children_stop(void)
{
    while (s_nchildren)
        bench_stop(s_children[s_nchildren - 1]);
}

void bench_show_log(const char *log)
{
    FILE *f = fopen(log, "r");
    if (!f)
        return;
    char line[512];
    fprintf(stderr, "--- %s ---\n", log);
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

/*  --- CPU ---------------------------------------------------------------------------- */

double bench_cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return NAN;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long utime = 0, stime = 0;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return NAN;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

double bench_self_cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_host_cpu_seconds(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return NAN;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 8)
        return NAN;
    /* user nice system idle iowait irq softirq steal (guest time is inside user) */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

/*  --- files and Redis ---------------------------------------------------------------- */

static int s_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void bench_rm_tree(const char *dir)
{
    nftw(dir, s_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
