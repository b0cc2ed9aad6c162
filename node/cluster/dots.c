/*  node/cluster dots: the dot check at start (see cluster__check_dots below). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/codec.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/cluster/internal.h"
#include "proto/cluster.pb-c.h"

void cluster__renew_replica(node_cluster_t *self, const char *why)
{
    uint64_t old = node_store_replica(self->store);
    int rc = node_store_renew_replica(self->store);
    if (rc)
        zsys_error("engramd: %s, but it cannot take a new replica id: %s", why,
                   engram_strerror(rc));
    else
        zsys_warning("engramd: %s: replica %016" PRIx64 " becomes %016" PRIx64, why, old,
                     node_store_replica(self->store));
}

/*  Dot safety at start (gossip_engine_ask_digests): a node that remembers members asks them
 *  for their digests and holds shared writes until every one answered or DOT_CHECK_MS passed.
 *  One member is asked for the deltas this node lacks, the others for their digests only;
 *  the deltas carry this replica's dots that its store lacks (a data directory restored from
 *  an older plain copy), so its counters move past them before it writes. While a member is
 *  known to hold such a dot, the check asks it for its deltas (gossip_engine_pull_unseen) and
 *  waits. If one is still known to hold such a dot when DOT_CHECK_MS ran out, or a member did
 *  not answer (the counters cannot be proven current: it may be the one that holds them), the
 *  store takes a new replica id: a reused dot would make replicas diverge silently. */
void cluster__check_dots(node_cluster_t *self, uint64_t now_ms)
{
    if (now_ms < self->dots_since_ms)
        self->dots_since_ms = now_ms; /* the clock stepped back: the wait starts again */
    unsigned members = 0;
    unsigned heard = gossip_engine_heard_since(self->engine, self->dots_since_ms, &members);
    if (heard < members && now_ms < self->dots_since_ms + DOT_CHECK_MS) {
        if (now_ms >= self->dots_asked_ms + DOT_ASK_MS) {
            gossip_engine_ask_digests(self->engine, self->dots_since_ms, now_ms);
            self->dots_asked_ms = now_ms;
        }
        return;
    }
    uint64_t old = node_store_replica(self->store);
    bool unseen = gossip_engine_holds_unseen(self->engine, old);
    if (unseen && now_ms < self->dots_since_ms + DOT_CHECK_MS) {
        /* every member answered, and one holds lost dots: its deltas may bring them */
        if (now_ms >= self->dots_asked_ms + DOT_ASK_MS) {
            gossip_engine_pull_unseen(self->engine, old, now_ms);
            self->dots_asked_ms = now_ms;
        }
        return;
    }
    self->dots_pending = false;
    if (!unseen && heard == members) {
        zsys_info("engramd: dot counters checked against all %u members", members);
        return;
    }
    cluster__renew_replica(self, unseen ? "members hold dots of this replica that this node lacks "
                                          "(its data directory is older than its last run, e.g. "
                                          "restored from a copy)"
                                        : "not every member answered in time, so this node cannot "
                                          "prove its dot counters current");
}

bool node_cluster_dots_checked(const node_cluster_t *self)
{
    return !self->dots_pending;
}
