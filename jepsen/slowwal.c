/*  libengram_slowwal: a slow, and on demand a failing or held, disk, preloaded into engramd
 *  (LD_PRELOAD) by jepsen/, tests/cli/storage_faults_test.py and
 *  tests/cli/replica_sync_test.py.
 *
 *  Every write(2) to a RocksDB write-ahead log (a file named <digits>.log) first sleeps
 *  ENGRAM_SLOWWAL_MS milliseconds, so a node spends most of a busy turn with its log write
 *  not yet issued: a kill -9 then loses whatever had not reached the log, as a power cut
 *  loses what had not been synced. A node that acknowledges only after its log is synced
 *  loses nothing acknowledged; one that acknowledges first does (the ack_before_fsync
 *  defect, jepsen/README.md).
 *
 *  While the file named by ENGRAM_FAILSYNC_TRIGGER exists, fdatasync(2) and fsync(2) of a
 *  write-ahead log fail with EIO without syncing, as on a failing device: the latched I/O
 *  error of node/store/store.h, which a full or a read-only volume does not reach. While the
 *  file named by ENGRAM_FAILWRITE_TRIGGER exists, write(2) to a write-ahead log fails with EIO
 *  without writing: the log refuses the bytes (node_store_write_out stops the process).
 *
 *  While the file named by ENGRAM_HOLDSYNC_TRIGGER exists, a write(2) to a write-ahead log
 *  whose bytes hold the string ENGRAM_HOLDSYNC_MARKER arms a hold: the next fdatasync(2) or
 *  fsync(2) of a write-ahead log creates the file TRIGGER.held and waits until the trigger is
 *  gone before it syncs. A test so stops a node inside the fsync of the turn that wrote one
 *  chosen record (tests/cli/replica_sync_test.py) and sees what leaves the node meanwhile.
 *  With ENGRAM_HOLD_AT=write, that write(2) itself holds the same way before it writes: the
 *  node stops with the record not yet in its log's file.
 *
 *  Other files and other calls pass through untouched. Invariant: a call that is not delayed
 *  or failed here is the real call, with its result; a delayed write(2) writes the same bytes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
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

static atomic_bool s_hold_armed;

/*  Whether buf holds ENGRAM_HOLDSYNC_MARKER while ENGRAM_HOLDSYNC_TRIGGER exists. */
static bool s_holds_marker(const void *buf, size_t count)
{
    const char *marker = getenv("ENGRAM_HOLDSYNC_MARKER");
    const char *trigger = getenv("ENGRAM_HOLDSYNC_TRIGGER");
    return marker && *marker && trigger && access(trigger, F_OK) == 0 &&
           memmem(buf, count, marker, strlen(marker));
}

/*  An armed hold: announces it (TRIGGER.held) and waits while the trigger exists. */
static void s_hold(void)
{
    if (!atomic_exchange(&s_hold_armed, false))
        return;
    const char *trigger = getenv("ENGRAM_HOLDSYNC_TRIGGER");
    char held[4096];
    snprintf(held, sizeof held, "%s.held", trigger);
    int fd = open(held, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
        close(fd);
    struct timespec ms = {0, 1000000L};
    while (access(trigger, F_OK) == 0)
        nanosleep(&ms, NULL);
}

ssize_t write(int fd, const void *buf, size_t count)
{
    if (!s_real_write)
        s_real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (s_holds_marker(buf, count) && s_is_wal(fd)) {
        atomic_store(&s_hold_armed, true);
        const char *at = getenv("ENGRAM_HOLD_AT");
        if (at && strcmp(at, "write") == 0)
            s_hold();
    }
    const char *ms = getenv("ENGRAM_SLOWWAL_MS");
    long delay = ms ? strtol(ms, NULL, 10) : 0;
    const char *trigger = getenv("ENGRAM_FAILWRITE_TRIGGER");
    bool fail = trigger && access(trigger, F_OK) == 0;
    if ((delay > 0 || fail) && s_is_wal(fd)) {
        if (fail) {
            errno = EIO;
            return -1;
        }
        struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return s_real_write(fd, buf, count);
}

/*  The sync call `name` (fdatasync or fsync) of fd: EIO while the trigger file exists and fd
 *  is a write-ahead log, else the real call (*real looked up once), after an armed hold. */
static int s_sync(int (**real)(int), const char *name, int fd)
{
    if (!*real)
        *real = (int (*)(int))dlsym(RTLD_NEXT, name);
    const char *trigger = getenv("ENGRAM_FAILSYNC_TRIGGER");
    if (trigger && access(trigger, F_OK) == 0 && s_is_wal(fd)) {
        errno = EIO;
        return -1;
    }
    if (atomic_load(&s_hold_armed) && s_is_wal(fd))
        s_hold();
    return (*real)(fd);
}

int fdatasync(int fd)
{
    static int (*real)(int);
    return s_sync(&real, "fdatasync", fd);
}

int fsync(int fd)
{
    static int (*real)(int);
    return s_sync(&real, "fsync", fd);
}
