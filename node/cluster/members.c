/*  node/cluster members: the engine's membership callbacks (admission, leave, changes) and
 *  DATA/members, saved on change and learned at start. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/codec.h"
#include "engram/error.h"
#include "engram/limits.h"
#include "node/cluster/internal.h"
#include "proto/cluster.pb-c.h"

/*  --- membership -------------------------------------------------------------------- */
bool cluster__admit(void *arg, uint64_t id, const uint8_t *card, size_t len)
{
    node_cluster_t *self = arg;
    return node_admission_check_card(&self->trust, id, card, len, NULL);
}

bool cluster__verify_leave(void *arg, uint64_t id, const uint8_t *statement, size_t len)
{
    node_cluster_t *self = arg;
    return node_admission_check_leave(&self->trust, id, statement, len);
}

const char *cluster__state_name(gossip_state_t state)
{
    static const char *names[] = {"alive", "suspect", "dead", "left"};
    return state <= GOSSIP_LEFT ? names[state] : "?";
}

void cluster__changed(void *arg, const gossip_member_t *member)
{
    node_cluster_t *self = arg;
    self->members_dirty = true;
    if (member->id == self->node_id) {
        if (member->state == GOSSIP_LEFT && !self->removed)
            zsys_error("engramd: this node was removed from cluster %s for good; it no longer "
                       "replicates and refuses writes to shared scopes",
                       self->cluster_hex);
        self->removed |= member->state == GOSSIP_LEFT;
        return;
    }
    zsys_info("engramd: member %016" PRIx64 " %s (incarnation %" PRIu64 ") at %s", member->id,
              cluster__state_name(member->state), member->incarnation, member->endpoint);
    if (member->state == GOSSIP_LEFT) {
        /* its key may still connect, but the engine refuses every frame it sends and answers
           with the decommission, so that a removed node learns it even after a restart */
        char name[17];
        cluster__key_of(member->id, name);
        cluster_link_t *link = zhash_lookup(self->links, name);
        if (link)
            link->left = true;
        return;
    }
    uint8_t node_key[crypto_sign_PUBLICKEYBYTES], curve_public[32];
    if (!node_admission_check_card(&self->trust, member->id, member->card, member->card_len,
                                   node_key) ||
        node_admission_curve_keys(node_key, NULL, curve_public, NULL) != 0)
        return;
    cluster__admit_key(self, member->id, curve_public);
    if (*member->endpoint)
        cluster__ensure_link(self, member->id, member->endpoint, curve_public);
}

typedef struct {
    Engram__MemberRecord *records;
    Engram__MemberRecord **ptrs;
    size_t n, cap;
} s_records_t;

static void s_collect(void *arg, const gossip_member_t *member)
{
    s_records_t *r = arg;
    if (r->n == r->cap)
        return;
    Engram__MemberRecord *rec = &r->records[r->n];
    engram__member_record__init(rec);
    rec->id = member->id;
    rec->endpoint = (char *)member->endpoint;
    rec->incarnation = member->incarnation;
    rec->state = member->state;
    rec->card = (ProtobufCBinaryData){member->card_len, (uint8_t *)member->card};
    rec->leave = (ProtobufCBinaryData){member->leave_len, (uint8_t *)member->leave};
    r->ptrs[r->n++] = rec;
}

static void s_count(void *arg, const gossip_member_t *member)
{
    (void)member;
    (*(size_t *)arg)++;
}

/*  Rewrites DATA/members from the engine's view. */
void cluster__save_members(node_cluster_t *self)
{
    size_t count = 0;
    gossip_engine_each_member(self->engine, s_count, &count);
    s_records_t r = {.cap = count};
    r.records = calloc(count ? count : 1, sizeof *r.records);
    r.ptrs = calloc(count ? count : 1, sizeof *r.ptrs);
    if (r.records && r.ptrs) {
        gossip_engine_each_member(self->engine, s_collect, &r);
        Engram__Members members = ENGRAM__MEMBERS__INIT;
        members.members = r.ptrs;
        members.n_members = r.n;
        size_t len = engram__members__get_packed_size(&members);
        uint8_t *buf = malloc(len ? len : 1);
        if (buf) {
            engram__members__pack(&members, buf);
            if (node_admission_write_file(self->members_path, buf, len, 0644) == 0)
                self->members_dirty = false;
            free(buf);
        }
    }
    free(r.records);
    free(r.ptrs);
}

/*  The membership remembered from the last run (DATA/members), NULL when there is none or it
 *  is unreadable (then the cluster is relearned through --join). */
Engram__Members *cluster__read_members(node_cluster_t *self)
{
    uint8_t *buf;
    size_t len;
    if (node_admission_read_file(self->members_path, 64 * 1024 * 1024, &buf, &len) != 0)
        return NULL;
    Engram__Members *members = engram__members__unpack(NULL, len, buf);
    free(buf);
    if (!members)
        zsys_warning("engramd: %s is unreadable; the cluster is relearned through --join",
                     self->members_path);
    return members;
}

/*  The incarnation this run starts at: its start time in ms, so that a restart outranks what
 *  peers suspected of the last run, and above the one the last run reached, so that a clock
 *  stepped back cannot start it below its own past (peers would ignore it until it refuted). */
uint64_t cluster__start_incarnation(const node_cluster_t *self, const Engram__Members *remembered,
                                    uint64_t now_ms)
{
    for (size_t i = 0; remembered && i < remembered->n_members; i++) {
        const Engram__MemberRecord *rec = remembered->members[i];
        if (rec->id == self->node_id && rec->incarnation >= now_ms)
            return rec->incarnation + 1;
    }
    return now_ms;
}

/*  Learns every member remembered from the last run (their current state comes from the
 *  cluster; a removal is kept as it is, for good). */
void cluster__learn_members(node_cluster_t *self, const Engram__Members *members)
{
    for (size_t i = 0; members && i < members->n_members; i++) {
        Engram__MemberRecord *rec = members->members[i];
        if (rec->id == self->node_id) {
            if (rec->state == GOSSIP_LEFT && rec->leave.len) /* removed for good, restarts too */
                gossip_engine_leave(self->engine, rec->id, rec->leave.data, rec->leave.len);
            continue;
        }
        gossip_member_t member = {.id = rec->id,
                                  .incarnation = rec->incarnation,
                                  .state = GOSSIP_ALIVE,
                                  .endpoint = rec->endpoint,
                                  .card = rec->card.data,
                                  .card_len = rec->card.len};
        if (gossip_engine_learn(self->engine, &member) != 0)
            continue;
        if (rec->state == GOSSIP_LEFT && rec->leave.len)
            gossip_engine_leave(self->engine, rec->id, rec->leave.data, rec->leave.len);
    }
}
