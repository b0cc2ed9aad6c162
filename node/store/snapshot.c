/*  node/store snapshot: a running node's data directory copied whole into a new directory
 *  (node_store_snapshot), and a data directory started from such a copy (node_store_restore).
 *
 *  A snapshot is a RocksDB checkpoint of the store (gc.c: node_store_checkpoint, marked
 *  "restored") plus the node's own files beside it (NODE_STORE_NODE_FILES). It is built in a
 *  private directory beside its destination (mode 0700: it holds the node's secret key and
 *  every agent's private memory) and renamed into place, so DIR either does not exist or holds
 *  a whole snapshot. A restore copies every file of a snapshot into an empty data directory,
 *  hard-linking the table files (*.sst, which RocksDB never changes once written) where both
 *  are on one filesystem and copying the rest (the manifest and the write-ahead logs, which a
 *  store opened on them may append to).
 */
#define _GNU_SOURCE /* renameat2, RENAME_NOREPLACE */
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
    int rc = building ? node_store_checkpoint(self, building) : ENGRAM_ENOMEM;
    if (rc && rc != ENGRAM_ENOMEM)
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
    bool empty = data ? !e : errno == ENOENT;
    if (data)
        closedir(data);
    if (!empty) {
        snprintf(why, why_len,
                 "the data directory %s %s: a restore goes into an absent or empty one", data_dir,
                 data ? "is not empty" : strerror(errno));
        return ENGRAM_EINVAL;
    }
    bool created = mkdir(data_dir, 0700) == 0;
    if (!created && errno != EEXIST) {
        snprintf(why, why_len, "cannot create %s: %s", data_dir, strerror(errno));
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
        char *dst = zsys_sprintf("%s/%s", data_dir, e->d_name);
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
    if (rc) { /* as it was: nothing half restored */
        s_empty_dir(data_dir);
        if (created)
            rmdir(data_dir);
    } else {
        zsys_info("engramd: restored %s into %s (%zu files linked, %zu copied)", snapshot, data_dir,
                  linked, copied);
    }
    return rc;
}
