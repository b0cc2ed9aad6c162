/*  node_preflight: a second node on a live node's endpoint or data directory (preflight.h). */
#define _GNU_SOURCE /* struct ucred */
#include "node/daemon/preflight.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "engram/error.h"

/*  Writes who pid is into out: "another engramd (pid 12)", "another process (pid 12, ldb)",
 *  or "another process" when the pid is unknown (0 or less, as from another pid namespace). */
static void s_holder(pid_t pid, char *out, size_t out_len)
{
    char comm[64] = "";
    if (pid > 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
        FILE *file = fopen(path, "r");
        if (file) {
            if (fgets(comm, sizeof comm, file))
                comm[strcspn(comm, "\n")] = '\0';
            fclose(file);
        }
    }
    if (pid <= 0)
        snprintf(out, out_len, "another process");
    else if (strcmp(comm, "engramd") == 0)
        snprintf(out, out_len, "another engramd (pid %d)", (int)pid);
    else if (comm[0])
        snprintf(out, out_len, "another process (pid %d, %s)", (int)pid, comm);
    else
        snprintf(out, out_len, "another process (pid %d)", (int)pid);
}

/*  ipc://PATH: refused if a live process accepts a connection on PATH ("@NAME" is Linux's
 *  abstract namespace, as in libzmq). */
static int s_ipc(const char *endpoint, const char *path, char *why, size_t why_len)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t path_len = strlen(path);
    if (strcmp(path, "*") == 0 || path_len == 0 || path_len >= sizeof addr.sun_path)
        return 0; /* a path libzmq picks, or one it refuses itself */
    memcpy(addr.sun_path, path, path_len);
    socklen_t addr_len = sizeof addr;
    if (path[0] == '@') {
        addr.sun_path[0] = '\0';
        addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len);
    }
    struct stat st;
    if (path[0] != '@' && lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
        /* libzmq would unlink it to bind: never take a file that is not a socket */
        snprintf(why, why_len,
                 "%s: '%s' exists and is not a socket; engramd would replace it: give this "
                 "node another --api",
                 endpoint, path);
        return ENGRAM_EINVAL;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    pid_t pid = 0;
    bool live = false;
    if (connect(fd, (struct sockaddr *)&addr, addr_len) == 0) {
        struct ucred cred;
        socklen_t cred_len = sizeof cred;
        live = true;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) == 0)
            pid = cred.pid;
    } else {
        live = errno == EAGAIN; /* a listener whose backlog is full */
    }
    close(fd);
    if (!live)
        return 0; /* no file, or a stale one: libzmq replaces it */
    char holder[128];
    s_holder(pid, holder, sizeof holder);
    snprintf(why, why_len,
             "%s is already listening on %s: stop it, or give this node another --api", holder,
             endpoint);
    return ENGRAM_EUNAVAILABLE;
}

/*  tcp://HOST:PORT with a numeric HOST (or *): refused if binding it fails with EADDRINUSE.
 *  The socket is bound as libzmq binds it (SO_REUSEADDR), then closed. */
static int s_tcp(const char *endpoint, const char *address, char *why, size_t why_len)
{
    const char *colon = strrchr(address, ':');
    char host[256];
    size_t host_len = colon ? (size_t)(colon - address) : 0;
    if (!colon || host_len >= sizeof host || !strcmp(colon + 1, "*") || !strcmp(colon + 1, "0"))
        return 0; /* libzmq picks the port, or judges the address itself */
    memcpy(host, address, host_len);
    host[host_len] = '\0';
    char *name = host;
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        host[host_len - 1] = '\0';
        name++;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    if (strcmp(name, "*") == 0) {
        name = NULL;
        hints.ai_family = AF_INET; /* libzmq's wildcard without ZMQ_IPV6 */
    }
    struct addrinfo *found;
    if (getaddrinfo(name, colon + 1, &hints, &found) != 0)
        return 0; /* an interface or host name: libzmq resolves those */
    bool in_use = false;
    int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        in_use = bind(fd, found->ai_addr, found->ai_addrlen) != 0 && errno == EADDRINUSE;
        close(fd);
    }
    freeaddrinfo(found);
    if (!in_use)
        return 0;
    snprintf(why, why_len,
             "%s is already in use by another process: stop it, or give this node another --api",
             endpoint);
    return ENGRAM_EUNAVAILABLE;
}

int node_preflight_api(const char *endpoint, char *why, size_t why_len)
{
    if (strncmp(endpoint, "ipc://", 6) == 0)
        return s_ipc(endpoint, endpoint + 6, why, why_len);
    if (strncmp(endpoint, "tcp://", 6) == 0)
        return s_tcp(endpoint, endpoint + 6, why, why_len);
    return 0;
}

int node_preflight_data(const char *dir, char *why, size_t why_len)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/LOCK", dir) >= (int)sizeof path)
        return 0; /* the store reports a path too long */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0; /* a new data directory, or one the store will report on */
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int rc = fcntl(fd, F_GETLK, &lock);
    close(fd); /* this process holds no lock on it yet, so closing releases none */
    if (rc != 0 || lock.l_type == F_UNLCK)
        return 0;
    char holder[128];
    s_holder(lock.l_pid, holder, sizeof holder);
    snprintf(why, why_len,
             "the data directory '%s' is locked by %s: a data directory serves one node at a time",
             dir, holder);
    return ENGRAM_EUNAVAILABLE;
}
