/*  node_preflight: what engramd checks before it opens or binds anything, so that a second
 *  node started by mistake on this host refuses with the reason instead of harming the first.
 *
 *  - The API endpoint. libzmq's ipc bind removes whatever file is at the socket's path, so a
 *    second node would take a live node's socket over and leave the first unreachable. A live
 *    process accepts a connection on the path (and SO_PEERCRED names it); a file that nobody
 *    accepts on is what a node that died left behind, and binding over it is right. A tcp
 *    endpoint on a numeric address is probed by binding it as libzmq will, so an address in
 *    use is reported before the data directory is created.
 *  - The data directory. RocksDB holds an fcntl write lock on DATA/LOCK while a node has it
 *    open; F_GETLK names the holder's pid.
 *
 *  These are checks, not claims: of two nodes started in the same instant both may pass, and
 *  then RocksDB's own lock refuses the second (in its own words), or, on two data directories,
 *  the later ipc bind wins the path.
 */
#ifndef NODE_PREFLIGHT_H
#define NODE_PREFLIGHT_H

#include <stddef.h>

/*  0 if nothing live serves endpoint (a ZeroMQ endpoint), or ENGRAM_EUNAVAILABLE with a
 *  one-line reason in why. Endpoints it cannot judge (a wildcard path, an interface name) pass:
 *  the bind itself judges them. */
int node_preflight_api(const char *endpoint, char *why, size_t why_len);

/*  0 if no process holds the data directory dir (or it does not exist yet), or
 *  ENGRAM_EUNAVAILABLE with a one-line reason in why. */
int node_preflight_data(const char *dir, char *why, size_t why_len);

#endif
