/*  node/store snapshot: a running node's data directory copied whole into a new directory
 *  (node_store_snapshot), and a data directory started from such a copy (node_store_restore).
 *
 *  A snapshot is a RocksDB checkpoint of the store (gc.c: node_store_checkpoint, marked
 *  "restored") plus the node's own files beside it (NODE_STORE_NODE_FILES). It is built in a
 *  private directory beside its destination (mode 0700: it holds the node's secret key and
 *  every agent's private memory) and renamed into place, so DIR either does not exist or holds
 *  a whole snapshot; once there, it is synced (its directory and DIR's parent). A restore
 *  copies every file of a snapshot into a new directory beside the data directory, hard-linking
 *  the table files (*.sst, which RocksDB never changes once written) where both are on one
 *  filesystem and copying the rest (the manifest and the write-ahead logs, which a store opened
 *  on them may append to), syncs it and moves it into the data directory's place in one
 *  rename (swapped with an empty one): a restore stopped half way changes nothing.
 */
#define _GNU_SOURCE /* renameat2, RENAME_NOREPLACE */
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engram/error.h"
#include "node/store/internal.h"

/*  The node's files beside RocksDB that a snapshot carries, NULL-terminated. */
static const char *const s_node_files[] = {NODE_STORE_NODE_FILES, NULL};

/*  Copies the regular file from into to (created, not replaced), with mode; 0 or errno. */
static int s_copy_file(const char *from, const char *to, mode_t mode)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return errno;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    int error = out < 0 ? errno : 0;
    char buf[64 * 1024];
    while (error == 0) {
        ssize_t got = read(in, buf, sizeof buf);
        if (got <= 0) {
            error = got < 0 ? errno : 0;
            break;
        }
        for (ssize_t put = 0; error == 0 && put < got;) {
            ssize_t n = write(out, buf + put, (size_t)(got - put));
            error = n < 0 ? errno : 0;
            put += n > 0 ? n : 0;
        }
    }
    if (error == 0 && fsync(out) != 0)
        error = errno;
    if (out >= 0 && close(out) != 0 && error == 0)
        error = errno;
    close(in);
    return error;
}

/*  fsync of a directory (its entries: files linked, created or renamed into it); 0 or -1. */
static int s_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/*  fsync of the directory that holds path. */
static int s_sync_parent(const char *path)
{
    char *copy = strdup(path);
    int rc = copy ? s_sync_dir(dirname(copy)) : -1;
    free(copy);
    return rc;
}

/*  Whether the files of data_dir can be hard-linked into dir (one filesystem, one mount): the
 *  snapshot runs on the loop's thread, and RocksDB would copy every table it cannot link,
 *  stopping the node for as long as that takes. 0, or ENGRAM_EINVAL with the reason in why. */
static int s_links_here(const char *data_dir, const char *dir, char *why, size_t why_len)
{
    char *from = zsys_sprintf("%s/CURRENT", data_dir); /* RocksDB's, always there */
    char *to = zsys_sprintf("%s/link-probe", dir);
    int error = !from || !to ? ENOMEM : link(from, to) == 0 ? 0 : errno;
    if (error == 0)
        unlink(to);
    else if (error != ENOMEM)
        snprintf(why, why_len,
                 "the node's tables cannot be hard-linked there (%s): a snapshot goes on the "
                 "filesystem and mount of the data directory %s (DATA/snapshots/NAME always "
                 "does); copy it elsewhere afterwards",
                 strerror(error), data_dir);
    zstr_free(&from);
    zstr_free(&to);
    return error == 0 ? 0 : error == ENOMEM ? ENGRAM_ENOMEM : ENGRAM_EINVAL;
}

/*  Removes the files in dir (a checkpoint has no subdirectories). */
static void s_empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *path = zsys_sprintf("%s/%s", dir, e->d_name);
        if (path)
            unlink(path);
        zstr_free(&path);
    }
    if (d)
        closedir(d);
}

int node_store_snapshot(node_store_t *self, const char *dir, char *why, size_t why_len)
{
    assert(self && dir);
    struct stat st;
    if (dir[0] != '/') {
        snprintf(why, why_len, "a snapshot's directory is an absolute path on the node's host");
        return ENGRAM_EINVAL;
    }
    int found = lstat(dir, &st) == 0 ? EEXIST : errno;
    if (found != ENOENT) {
        snprintf(why, why_len, "%s: %s: a snapshot goes into a new directory", dir,
                 found == EEXIST ? "it exists" : strerror(found));
        return ENGRAM_EINVAL;
    }
    char *private = zsys_sprintf("%s.engram-XXXXXX", dir);
    if (!private)
        return ENGRAM_ENOMEM;
    if (!mkdtemp(private)) { /* mode 0700 */
        snprintf(why, why_len, "cannot create a directory beside %s: %s", dir, strerror(errno));
        zstr_free(&private);
        return ENGRAM_EINVAL;
    }
    char *building = zsys_sprintf("%s/snapshot", private);
    int rc = building ? s_links_here(self->dir, private, why, why_len) : ENGRAM_ENOMEM;
    if (rc == 0)
        rc = node_store_checkpoint(self, building);
    if (rc && rc != ENGRAM_ENOMEM && !why[0])
        snprintf(why, why_len, "cannot write the checkpoint: %s", engram_strerror(rc));
    for (size_t i = 0; rc == 0 && s_node_files[i]; i++) {
        char *from = zsys_sprintf("%s/%s", self->dir, s_node_files[i]);
        char *to = zsys_sprintf("%s/%s", building, s_node_files[i]);
        int error = from && to ? s_copy_file(from, to, 0600) : ENOMEM;
        if (error && error != ENOENT) { /* a node file the node does not have is no loss */
            snprintf(why, why_len, "cannot copy %s: %s", from ? from : "", strerror(error));
            rc = error == ENOMEM ? ENGRAM_ENOMEM : ENGRAM_EIO;
        }
        zstr_free(&from);
        zstr_free(&to);
    }
    if (rc == 0 && (chmod(building, 0700) != 0 ||
                    renameat2(AT_FDCWD, building, AT_FDCWD, dir, RENAME_NOREPLACE) != 0)) {
        int error = errno; /* EEXIST: dir was made meanwhile */
        snprintf(why, why_len, "cannot move the snapshot to %s: %s", dir, strerror(error));
        rc = error == EEXIST ? ENGRAM_EINVAL : ENGRAM_EIO;
    }
    if (rc == 0 && (s_sync_dir(dir) != 0 || s_sync_parent(dir) != 0)) {
        snprintf(why, why_len, "cannot make %s durable: %s", dir, strerror(errno));
        rc = ENGRAM_EIO; /* it is there, but perhaps not after a power loss */
    }
    if (rc && building) {
        s_empty_dir(building);
        rmdir(building);
    }
    rmdir(private);
    zstr_free(&building);
    zstr_free(&private);
    return rc;
}

/*  Whether name is a RocksDB table file, which no writer changes once it is written. */
static bool s_table_file(const char *name)
{
    size_t len = strlen(name);
    return len > 4 && strcmp(name + len - 4, ".sst") == 0;
}

int node_store_restore(const char *snapshot, const char *data_dir, char *why, size_t why_len)
{
    assert(snapshot && data_dir);
    char *current = zsys_sprintf("%s/CURRENT", snapshot);
    if (!current)
        return ENGRAM_ENOMEM;
    bool is_snapshot = zsys_file_exists(current);
    zstr_free(&current);
    if (!is_snapshot) {
        snprintf(why, why_len, "%s is not a snapshot (`engram snapshot DIR` writes one)", snapshot);
        return ENGRAM_EINVAL;
    }
    DIR *data = opendir(data_dir);
    struct dirent *e = NULL;
    while (data && (e = readdir(data)) && (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")))
        ;
    bool exists = data != NULL, empty = data ? !e : errno == ENOENT;
    if (data)
        closedir(data);
    if (!empty) {
        snprintf(why, why_len,
                 "the data directory %s %s: a restore goes into an absent or empty one", data_dir,
                 exists ? "is not empty" : strerror(errno));
        return ENGRAM_EINVAL;
    }
    /* Filled beside data_dir, made durable, then moved into its place in one rename: a restore
     * stopped half way leaves data_dir as it was (and DATA.restore-XXXXXX to remove). */
    char *filling = zsys_sprintf("%s.restore-XXXXXX", data_dir);
    if (!filling)
        return ENGRAM_ENOMEM;
    if (!mkdtemp(filling)) { /* mode 0700 */
        snprintf(why, why_len, "cannot create a directory beside %s: %s", data_dir,
                 strerror(errno));
        zstr_free(&filling);
        return ENGRAM_EIO;
    }
    DIR *from = opendir(snapshot);
    int rc = from ? 0 : ENGRAM_EIO;
    if (!from)
        snprintf(why, why_len, "cannot read %s: %s", snapshot, strerror(errno));
    size_t linked = 0, copied = 0;
    while (rc == 0 && (e = readdir(from))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *src = zsys_sprintf("%s/%s", snapshot, e->d_name);
        char *dst = zsys_sprintf("%s/%s", filling, e->d_name);
        struct stat st;
        int error = !src || !dst ? ENOMEM : lstat(src, &st) != 0 ? errno : 0;
        if (error == 0 && !S_ISREG(st.st_mode))
            error = EISDIR; /* a checkpoint holds files only */
        if (error == 0 && s_table_file(e->d_name) && link(src, dst) == 0)
            linked++;
        else if (error == 0 && (error = s_copy_file(src, dst, st.st_mode & 0777)) == 0)
            copied++;
        if (error) {
            snprintf(why, why_len, "cannot restore %s: %s", src ? src : "", strerror(error));
            rc = error == ENOMEM ? ENGRAM_ENOMEM : ENGRAM_EIO;
        }
        zstr_free(&src);
        zstr_free(&dst);
    }
    if (from)
        closedir(from);
    if (rc == 0 && s_sync_dir(filling) != 0) {
        snprintf(why, why_len, "cannot make %s durable: %s", filling, strerror(errno));
        rc = ENGRAM_EIO;
    }
    /* into its place: swapped with the empty data_dir, or renamed to it when there is none */
    if (rc == 0 && renameat2(AT_FDCWD, filling, AT_FDCWD, data_dir,
                             exists ? RENAME_EXCHANGE : RENAME_NOREPLACE) != 0) {
        snprintf(why, why_len, "cannot move the restored store to %s: %s", data_dir,
                 strerror(errno));
        rc = ENGRAM_EIO;
    }
    if (rc == 0 && s_sync_parent(data_dir) != 0) {
        snprintf(why, why_len, "cannot make %s durable: %s", data_dir, strerror(errno));
        rc = ENGRAM_EIO;
    }
    if (rc) /* data_dir as it was: nothing half restored */
        s_empty_dir(filling);
    rmdir(filling); /* after the exchange: the empty directory data_dir was */
    if (rc == 0)
        zsys_info("engramd: restored %s into %s (%zu files linked, %zu copied)", snapshot, data_dir,
                  linked, copied);
    zstr_free(&filling);
    return rc;
}
