/*  libengram_slowwal: a slow disk for jepsen/, preloaded into engramd (LD_PRELOAD).
 *
 *  Every write(2) to a RocksDB write-ahead log (a file named <digits>.log) first sleeps
 *  ENGRAM_SLOWWAL_MS milliseconds, so a node spends most of a busy turn with its log write
 *  not yet issued: a kill -9 then loses whatever had not reached the log, as a power cut
 *  loses what had not been synced. A node that acknowledges only after its log is synced
 *  loses nothing acknowledged; one that acknowledges first does (the ack_before_fsync
 *  defect, jepsen/README.md). Other files and other calls pass through untouched.
 *
 *  Invariant: the bytes written and the result are those of the real write(2).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static ssize_t (*s_real_write)(int, const void *, size_t);

static bool s_is_wal(int fd)
{
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 5)
        return false;
    path[n] = '\0';
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base), digits = strspn(base, "0123456789");
    return digits > 0 && len == digits + 4 && strcmp(base + digits, ".log") == 0;
}

ssize_t write(int fd, const void *buf, size_t count)
{
    if (!s_real_write)
        s_real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    const char *ms = getenv("ENGRAM_SLOWWAL_MS");
    long delay = ms ? strtol(ms, NULL, 10) : 0;
    if (delay > 0 && s_is_wal(fd)) {
        struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return s_real_write(fd, buf, count);
}
