/*  gossip_swim: SWIM membership with Lifeguard (see swim.h for the protocol). Sans-I/O: time
 *  comes from the events, messages leave through the send callback, randomness comes from the
 *  random callback.
 *
 *  State (struct gossip_swim): the member table sorted by id with this node in it, the probe in
 *  progress, the shuffled probe order, the pings this node relays for others (ping-req), the
 *  local health score and the timers of the next probe and table exchange. Invariants: a LEFT
 *  record never changes again; only this node changes its own incarnation; every record's
 *  endpoint is a string ("" when unknown); this node is LEFT exactly when its own record is.
 *
 *  Lifeguard: the nacks relays send and the requester counts, the suspectors of each suspect
 *  member and the suspicion timeout they shrink.
 *
 *  Ownership: the object owns the table and every copy in it; inserting may move records, so a
 *  s_member_t pointer is valid only until the next member is added or removed. Single-threaded.
 */
#include "gossip/swim.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/array.h"
#include "engram/error.h"
#include "gossip/round.h"

/*  Piggybacked records per ping, ping-req or pong, at most. */
#define MAX_PIGGYBACK 8
/*  Piggyback retransmissions: RETRANSMIT_MULT * ceil(log10(N + 1)). */
#define RETRANSMIT_MULT 3
/*  A dead member is probed when its turn comes one time in DEAD_PROBE_ODDS. */
#define DEAD_PROBE_ODDS 4
/*  Dynamic suspicion lasts up to SUSPICION_MAX_MULT times the minimum (memberlist's value). */
#define SUSPICION_MAX_MULT 6
/*  A relay nacks when the target is silent for this share of its probe timeout (percent). */
#define NACK_AT_PERCENT 80
/*  Protobuf framing of a SWIM message around its records. */
#define SWIM_OVERHEAD 64
/*  Suspectors remembered per suspect member: the first and up to 3 confirmations (Lifeguard's
 *  k is capped there). */
#define MAX_SUSPECTORS 4
/*  The highest local health score (swim.h). */
#define MAX_HEALTH 8
/*  Incarnations above this are refused: engramd's are start times in ms, far below it, and a
 *  member must always be able to refute by one more. */
#define MAX_INCARNATION (UINT64_C(1) << 62)

/*  One member, this node included. */
typedef struct {
    uint64_t id;
    uint64_t incarnation;
    gossip_state_t state;
    char *endpoint; /* owned, never NULL */
    uint8_t *card;  /* owned, NULL when card_len is 0 */
    size_t card_len;
    uint8_t *leave; /* owned, LEFT only */
    size_t leave_len;
    uint64_t since_ms; /* when state last changed (suspicion starts here) */
    /* SUSPECT: the distinct members that suspected it at this incarnation, the first at [0];
     * the others are Lifeguard's confirmations. Its record names the latest of them as its
     * suspector (retransmitted like a change, as memberlist re-broadcasts confirmations). */
    uint64_t suspectors[MAX_SUSPECTORS];
    unsigned nsuspectors;
    uint32_t transmits; /* piggyback retransmissions left for this record */
} s_member_t;

/*  A ping this node sends on behalf of another (ping-req), whose pong it forwards. */
typedef struct {
    uint64_t seq;        /* of our ping */
    uint64_t origin;     /* who asked */
    uint64_t origin_seq; /* the seq the origin used */
    uint64_t target;
    uint64_t sent_ms;
    bool nacked; /* the origin was told the target is silent to us too */
} s_relay_t;

/*  The probe in progress. */
typedef struct {
    bool active;
    uint64_t target;
    uint64_t incarnation; /* the target's when the probe began: a later one is a new life */
    uint64_t seq;
    uint64_t sent_ms;
    bool indirect;           /* the ping-reqs went out */
    unsigned nacks_expected; /* ping-reqs sent */
    unsigned nacks;          /* nacks received for them */
} s_probe_t;

struct gossip_swim {
    gossip_swim_config_t config; /* endpoint and card are NULL: the copies live in our record */
    gossip_swim_callbacks_t cb;
    s_member_t *members; /* sorted by id; this node is one of them */
    size_t nmembers, members_cap;
    uint64_t now_ms; /* of the event being handled */
    bool started;    /* the first tick set the timers */
    bool synced;     /* a members message (a table, or a part of one) came since the start */
    uint64_t next_probe_ms, next_sync_ms;
    uint64_t next_seq;
    s_probe_t probe;
    gossip_round_t probes; /* the members this round of probes goes to */
    s_relay_t *relays;
    size_t nrelays, relays_cap;
    unsigned health;           /* Lifeguard local health score, 0..MAX_HEALTH */
    gossip_swim_fault_t fault; /* the first fault of the call being handled */
    gossip_swim_stats_t stats;
};

/*  --- the table --------------------------------------------------------------------- */

static size_t s_lower(const gossip_swim_t *self, uint64_t id)
{
    size_t lo = 0, hi = self->nmembers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->members[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static s_member_t *s_member(const gossip_swim_t *self, uint64_t id)
{
    size_t at = s_lower(self, id);
    return at < self->nmembers && self->members[at].id == id ? &self->members[at] : NULL;
}

static void s_member_fini(s_member_t *m)
{
    free(m->endpoint);
    free(m->card);
    free(m->leave);
    memset(m, 0, sizeof *m);
}

/*  A new ALIVE record of id at incarnation 0, in order. NULL when out of memory. */
static s_member_t *s_insert(gossip_swim_t *self, uint64_t id)
{
    char *endpoint = strdup("");
    if (!endpoint || crdt_array_grow((void **)&self->members, &self->members_cap,
                                     self->nmembers + 1, sizeof *self->members)) {
        free(endpoint);
        return NULL;
    }
    size_t at = s_lower(self, id);
    memmove(&self->members[at + 1], &self->members[at],
            (self->nmembers - at) * sizeof *self->members);
    self->nmembers++;
    s_member_t *m = &self->members[at];
    *m = (s_member_t){.id = id, .endpoint = endpoint, .since_ms = self->now_ms};
    return m;
}

static s_member_t *s_me(const gossip_swim_t *self)
{
    s_member_t *me = s_member(self, self->config.node_id);
    assert(me);
    return me;
}

/*  The suspector m's record names: the latest of its suspectors (0 unless SUSPECT). */
static uint64_t s_told(const s_member_t *m)
{
    return m->state == GOSSIP_SUSPECT && m->nsuspectors ? m->suspectors[m->nsuspectors - 1] : 0;
}

static void s_view(const s_member_t *m, gossip_member_t *out)
{
    *out = (gossip_member_t){m->id,       m->incarnation, m->state,     m->endpoint, m->card,
                             m->card_len, m->leave,       m->leave_len, s_told(m)};
}

static void s_changed(gossip_swim_t *self, const s_member_t *m)
{
    if (!self->cb.changed)
        return;
    gossip_member_t view;
    s_view(m, &view);
    self->cb.changed(self->cb.arg, &view);
}

static bool s_left(const gossip_swim_t *self)
{
    return s_me(self)->state == GOSSIP_LEFT;
}

static uint64_t s_random(gossip_swim_t *self)
{
    return self->cb.random(self->cb.arg);
}

static int s_send(gossip_swim_t *self, uint64_t to, Engram__Gossip *msg)
{
    return self->cb.send(self->cb.arg, to, msg);
}

/*  ceil(log10(x)) for x >= 2, at least 1: the digits of x - 1. */
static unsigned s_log10_ceil(size_t x)
{
    unsigned digits = 1;
    for (size_t v = x > 1 ? x - 1 : 1; v >= 10; v /= 10)
        digits++;
    return digits;
}

static uint32_t s_retransmits(const gossip_swim_t *self)
{
    return RETRANSMIT_MULT * s_log10_ceil(self->nmembers + 1);
}

/*  Members that are not LEFT, this node included. */
static size_t s_live_members(const gossip_swim_t *self)
{
    size_t live = 0;
    for (size_t i = 0; i < self->nmembers; i++)
        live += self->members[i].state != GOSSIP_LEFT;
    return live;
}

/*  The shortest suspicion: suspicion_mult * max(1, log10(N + 1)) probe intervals for N live
 *  members (log10 interpolated linearly between powers of ten: no libm, the same on every
 *  platform). */
static uint64_t s_suspicion_ms(const gossip_swim_t *self, size_t live)
{
    double x = (double)live + 1, lg = 0;
    while (x >= 10) {
        x /= 10;
        lg += 1;
    }
    lg += (x - 1) / 9;
    if (lg < 1)
        lg = 1;
    return (uint64_t)((double)self->config.suspicion_mult * lg *
                      (double)self->config.probe_interval_ms);
}

/*  ln(x) * 1000 for x = 1 .. MAX_SUSPECTORS: enough for Lifeguard's log(c+1)/log(k+1)
 *  with c, k < MAX_SUSPECTORS, without libm. */
static const unsigned LN_MILLI[MAX_SUSPECTORS + 1] = {0, 0, 693, 1099, 1386};

/*  How long m may stay SUSPECT (Lifeguard's dynamic suspicion, swim.h): from
 *  SUSPICION_MAX_MULT * min down to min, by the confirmations beyond its first suspector. */
static uint64_t s_suspicion_timeout_ms(const gossip_swim_t *self, const s_member_t *m, size_t live,
                                       uint64_t min_ms)
{
    unsigned k = self->config.suspicion_mult > 2 ? self->config.suspicion_mult - 2 : 0;
    if (k > MAX_SUSPECTORS - 1)
        k = MAX_SUSPECTORS - 1;
    if (live < (size_t)k + 2)
        k = 0; /* too few members to expect confirmations */
    unsigned confirmations = m->nsuspectors ? m->nsuspectors - 1 : 0;
    if (confirmations >= k)
        return min_ms;
    uint64_t max_ms = SUSPICION_MAX_MULT * min_ms;
    return max_ms - (max_ms - min_ms) * LN_MILLI[confirmations + 1] / LN_MILLI[k + 1];
}

/*  Counts `who` as a suspector of m, once, up to MAX_SUSPECTORS, if it is a member
 *  that is not LEFT and not m itself (a record names its suspector; nothing else is taken as
 *  one, so relays do not pass for confirmations). True when it is new: m's record then carries
 *  it and goes out again. */
static bool s_suspected_by(gossip_swim_t *self, s_member_t *m, uint64_t who)
{
    if (!who || who == m->id || m->nsuspectors == MAX_SUSPECTORS)
        return false;
    const s_member_t *suspector = s_member(self, who);
    if (!suspector || suspector->state == GOSSIP_LEFT)
        return false;
    for (unsigned i = 0; i < m->nsuspectors; i++)
        if (m->suspectors[i] == who)
            return false;
    m->suspectors[m->nsuspectors++] = who;
    return true;
}

static int s_set_bytes(uint8_t **dst, size_t *dst_len, const uint8_t *src, size_t len)
{
    uint8_t *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy)
            return ENGRAM_ENOMEM;
        memcpy(copy, src, len);
    }
    free(*dst);
    *dst = copy;
    *dst_len = len;
    return 0;
}

static int s_set_endpoint(s_member_t *m, const char *endpoint)
{
    if (!endpoint || strcmp(endpoint, m->endpoint) == 0)
        return 0;
    char *copy = strdup(endpoint);
    if (!copy)
        return ENGRAM_ENOMEM;
    free(m->endpoint);
    m->endpoint = copy;
    return 0;
}

/*  A changed record: state timer, dissemination, the changed callback. */
static void s_touch(gossip_swim_t *self, s_member_t *m, gossip_state_t old)
{
    if (m->state != old)
        m->since_ms = self->now_ms;
    m->transmits = s_retransmits(self);
    s_changed(self, m);
}

static int s_fault(gossip_swim_t *self, gossip_swim_fault_t fault, int rc)
{
    if (!self->fault)
        self->fault = fault;
    return rc;
}

/*  Marks m LEFT with stmt (already verified). */
static int s_set_left(gossip_swim_t *self, s_member_t *m, const uint8_t *stmt, size_t len)
{
    int rc = s_set_bytes(&m->leave, &m->leave_len, stmt, len);
    if (rc)
        return rc;
    gossip_state_t old = m->state;
    m->state = GOSSIP_LEFT;
    s_touch(self, m, old);
    return 0;
}

/*  A record about this node: LEFT if proven, otherwise refuted when it is not ALIVE at our
 *  incarnation or newer. */
static int s_about_me(gossip_swim_t *self, const gossip_member_t *r)
{
    s_member_t *me = s_me(self);
    if (me->state == GOSSIP_LEFT)
        return 0;
    if (r->state == GOSSIP_LEFT) {
        if (self->cb.verify_leave &&
            !self->cb.verify_leave(self->cb.arg, r->id, r->leave, r->leave_len))
            return s_fault(self, GOSSIP_SWIM_FAULT_LEAVE, ENGRAM_EINVAL);
        return s_set_left(self, me, r->leave, r->leave_len);
    }
    if (r->incarnation < me->incarnation ||
        (r->incarnation == me->incarnation && r->state == GOSSIP_ALIVE))
        return 0;
    if (r->state != GOSSIP_ALIVE && self->health < MAX_HEALTH)
        self->health++; /* Lifeguard: being suspected hints that we are the slow one */
    me->incarnation = r->incarnation + 1;
    self->stats.refutes++;
    s_touch(self, me, me->state);
    return 0;
}

/*  Merges one record (from a message, learn, or a leave) into the table; `from` is the member
 *  whose message carried it (0: this node's own learn or leave). A known member's endpoint
 *  changes only by its own word: another member relaying a record cannot redirect it. An
 *  incarnation past MAX_INCARNATION is refused, so that one can never be raised past
 *  every refutation. 0, or a code with the fault recorded; the table is unchanged on error. */
static int s_merge(gossip_swim_t *self, uint64_t from, const gossip_member_t *r)
{
    if (r->id == 0 || r->state > GOSSIP_LEFT || !r->endpoint || r->incarnation > MAX_INCARNATION)
        return s_fault(self, GOSSIP_SWIM_FAULT_DECODE, ENGRAM_EDECODE);
    if (r->id == self->config.node_id)
        return s_about_me(self, r);
    s_member_t *m = s_member(self, r->id);
    if (m && m->state == GOSSIP_LEFT)
        return 0; /* absorbing */
    if (r->state == GOSSIP_LEFT) {
        if (self->cb.verify_leave &&
            !self->cb.verify_leave(self->cb.arg, r->id, r->leave, r->leave_len))
            return s_fault(self, GOSSIP_SWIM_FAULT_LEAVE, ENGRAM_EINVAL);
        bool added = !m;
        if (added && !(m = s_insert(self, r->id)))
            return ENGRAM_ENOMEM;
        if (added && r->card_len && s_set_bytes(&m->card, &m->card_len, r->card, r->card_len))
            return ENGRAM_ENOMEM;
        if (r->incarnation > m->incarnation)
            m->incarnation = r->incarnation;
        s_set_endpoint(m, r->endpoint[0] ? r->endpoint : NULL);
        return s_set_left(self, m, r->leave, r->leave_len);
    }
    bool newer = !m || r->incarnation > m->incarnation ||
                 (r->incarnation == m->incarnation && r->state > m->state);
    if (!newer && m && from == r->id && r->incarnation == m->incarnation && r->endpoint[0] &&
        strcmp(r->endpoint, m->endpoint) != 0) {
        /* its own word on where it is, which a relay raised the incarnation of before */
        if (s_set_endpoint(m, r->endpoint))
            return ENGRAM_ENOMEM;
        s_touch(self, m, m->state);
        return 0;
    }
    if (!newer) {
        if (m && m->state == GOSSIP_SUSPECT && r->state == GOSSIP_SUSPECT &&
            r->incarnation == m->incarnation && s_suspected_by(self, m, r->suspector))
            s_touch(self, m, m->state); /* a confirmation: passed on */
        return 0;
    }
    bool new_card = r->card_len && (!m || m->card_len != r->card_len ||
                                    memcmp(m->card, r->card, r->card_len) != 0);
    if ((!m || new_card) && self->cb.admit &&
        !self->cb.admit(self->cb.arg, r->id, r->card, r->card_len))
        return s_fault(self, GOSSIP_SWIM_FAULT_CARD, ENGRAM_EINVAL);
    bool own_word = !m || from == 0 || from == r->id; /* a new member: the first word */
    if (!m && !(m = s_insert(self, r->id)))
        return ENGRAM_ENOMEM;
    if ((new_card && s_set_bytes(&m->card, &m->card_len, r->card, r->card_len)) ||
        (own_word && s_set_endpoint(m, r->endpoint[0] ? r->endpoint : NULL)))
        return ENGRAM_ENOMEM;
    gossip_state_t old = m->state;
    if (r->incarnation != m->incarnation)
        m->since_ms = self->now_ms; /* a new suspicion starts its own timer */
    m->incarnation = r->incarnation;
    m->state = r->state;
    m->nsuspectors = 0;
    if (r->state == GOSSIP_SUSPECT)
        s_suspected_by(self, m, r->suspector);
    s_touch(self, m, old);
    return 0;
}

static void s_from_wire(const Engram__GossipMember *w, gossip_member_t *r)
{
    *r = (gossip_member_t){w->id,         w->incarnation, (gossip_state_t)w->state,
                           w->endpoint,   w->card.data,   w->card.len,
                           w->leave.data, w->leave.len,   w->suspector};
    if (w->state > GOSSIP_LEFT)
        r->state = (gossip_state_t)(GOSSIP_LEFT + 1); /* refused by s_merge */
}

static void s_to_wire(const s_member_t *m, Engram__GossipMember *w)
{
    engram__gossip_member__init(w);
    w->id = m->id;
    w->incarnation = m->incarnation;
    w->state = (uint32_t)m->state;
    w->endpoint = m->endpoint;
    w->card = (ProtobufCBinaryData){m->card_len, m->card};
    if (m->state == GOSSIP_LEFT)
        w->leave = (ProtobufCBinaryData){m->leave_len, m->leave};
    w->suspector = s_told(m);
}

static size_t s_wire_size(const s_member_t *m)
{
    return 52 + strlen(m->endpoint) + m->card_len + (m->state == GOSSIP_LEFT ? m->leave_len : 0);
}

/*  Bytes left for records in a SWIM message that carries our own record (none if that alone
 *  fills the budget: the message then carries one record over it). */
static size_t s_room(const gossip_swim_t *self, const s_member_t *me)
{
    size_t used = SWIM_OVERHEAD + s_wire_size(me);
    return used < self->config.max_message_bytes ? self->config.max_message_bytes - used : 0;
}

/*  --- the object and the owner's calls --------------------------------------------- */

gossip_swim_t *gossip_swim_new(const gossip_swim_config_t *config,
                               const gossip_swim_callbacks_t *callbacks)
{
    assert(config && config->node_id && callbacks && callbacks->send && callbacks->random);
    gossip_swim_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    self->cb = *callbacks;
    gossip_swim_config_t *c = &self->config;
    if (!c->probe_interval_ms)
        c->probe_interval_ms = GOSSIP_DEFAULT_PROBE_INTERVAL_MS;
    if (!c->probe_timeout_ms)
        c->probe_timeout_ms = GOSSIP_DEFAULT_PROBE_TIMEOUT_MS;
    if (c->probe_timeout_ms >= c->probe_interval_ms)
        c->probe_timeout_ms = c->probe_interval_ms / 2;
    if (!c->suspicion_mult)
        c->suspicion_mult = GOSSIP_DEFAULT_SUSPICION_MULT;
    if (!c->indirect_probes)
        c->indirect_probes = GOSSIP_DEFAULT_INDIRECT_PROBES;
    if (!c->sync_interval_ms)
        c->sync_interval_ms = GOSSIP_DEFAULT_SYNC_INTERVAL_MS;
    s_member_t *me = s_insert(self, c->node_id);
    if (!me || s_set_endpoint(me, c->endpoint ? c->endpoint : "") ||
        s_set_bytes(&me->card, &me->card_len, c->card, c->card_len)) {
        gossip_swim_destroy(&self);
        return NULL;
    }
    me->incarnation = c->incarnation;
    c->endpoint = NULL; /* the copies live in the record */
    c->card = NULL;
    return self;
}

void gossip_swim_destroy(gossip_swim_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gossip_swim_t *self = *self_p;
    for (size_t i = 0; i < self->nmembers; i++)
        s_member_fini(&self->members[i]);
    free(self->members);
    gossip_round_free(&self->probes);
    free(self->relays);
    free(self);
    *self_p = NULL;
}

/*  Starts handling an event at now_ms. */
static void s_event(gossip_swim_t *self, uint64_t now_ms)
{
    self->now_ms = now_ms;
    self->fault = GOSSIP_SWIM_FAULT_NONE;
}

int gossip_swim_learn(gossip_swim_t *self, const gossip_member_t *member, uint64_t now_ms)
{
    assert(self && member);
    if (member->id == self->config.node_id)
        return 0;
    s_event(self, now_ms);
    return s_merge(self, 0, member);
}

int gossip_swim_leave(gossip_swim_t *self, uint64_t id, const uint8_t *stmt, size_t len,
                      uint64_t now_ms)
{
    assert(self && id);
    s_member_t *m = s_member(self, id);
    gossip_member_t r = {.id = id,
                         .incarnation = m ? m->incarnation : 0,
                         .state = GOSSIP_LEFT,
                         .endpoint = "",
                         .leave = stmt,
                         .leave_len = len};
    s_event(self, now_ms);
    return s_merge(self, 0, &r);
}

void gossip_swim_add(gossip_swim_t *self, uint64_t id, uint64_t now_ms)
{
    assert(self);
    if (id == self->config.node_id || s_member(self, id))
        return;
    s_event(self, now_ms);
    s_member_t *m = s_insert(self, id);
    if (m)
        s_touch(self, m, GOSSIP_ALIVE);
}

void gossip_swim_remove(gossip_swim_t *self, uint64_t id)
{
    assert(self);
    s_member_t *m = s_member(self, id);
    if (!m || id == self->config.node_id)
        return;
    s_member_fini(m);
    size_t at = (size_t)(m - self->members);
    memmove(m, m + 1, (self->nmembers - at - 1) * sizeof *m);
    self->nmembers--;
}

bool gossip_swim_member(const gossip_swim_t *self, uint64_t id, gossip_member_t *member)
{
    assert(self && member);
    const s_member_t *m = s_member(self, id);
    if (m)
        s_view(m, member);
    return m != NULL;
}

size_t gossip_swim_size(const gossip_swim_t *self)
{
    assert(self);
    return self->nmembers;
}

void gossip_swim_at(const gossip_swim_t *self, size_t index, gossip_member_t *member)
{
    assert(self && index < self->nmembers && member);
    s_view(&self->members[index], member);
}

/*  A random member other than this node whose state is in mask (1 << state), or NULL. */
static s_member_t *s_pick(gossip_swim_t *self, unsigned mask)
{
    size_t count = 0;
    for (size_t i = 0; i < self->nmembers; i++)
        count +=
            self->members[i].id != self->config.node_id && (mask & (1u << self->members[i].state));
    if (!count)
        return NULL;
    size_t k = s_random(self) % count;
    for (size_t i = 0; i < self->nmembers; i++) {
        s_member_t *m = &self->members[i];
        if (m->id != self->config.node_id && (mask & (1u << m->state)) && k-- == 0)
            return m;
    }
    return NULL;
}

bool gossip_swim_pick(gossip_swim_t *self, unsigned mask, uint64_t *id)
{
    assert(self && id);
    const s_member_t *m = s_pick(self, mask);
    if (m)
        *id = m->id;
    return m != NULL;
}

unsigned gossip_swim_health(const gossip_swim_t *self)
{
    assert(self);
    return self->health;
}

const gossip_swim_stats_t *gossip_swim_stats(const gossip_swim_t *self)
{
    assert(self);
    return &self->stats;
}

/*  --- sending ----------------------------------------------------------------------- */

/*  The records a SWIM message to `to` carries: the freshest changes (each sent a limited
 *  number of times) within the budget, and to's own record when we do not see it ALIVE. */
typedef struct {
    Engram__GossipMember sender;
    Engram__GossipMember records[MAX_PIGGYBACK + 1];
    Engram__GossipMember *ptrs[MAX_PIGGYBACK + 1];
    size_t n;
} s_piggy_t;

static void s_piggyback(gossip_swim_t *self, uint64_t to, s_piggy_t *p)
{
    s_member_t *me = s_me(self);
    s_to_wire(me, &p->sender);
    p->n = 0;
    size_t room = s_room(self, me);
    s_member_t *them = s_member(self, to);
    if (them && them->state != GOSSIP_ALIVE && s_wire_size(them) <= room) {
        room -= s_wire_size(them);
        s_to_wire(them, &p->records[p->n]);
        p->ptrs[p->n] = &p->records[p->n];
        p->n++;
    }
    s_member_t *chosen[MAX_PIGGYBACK];
    size_t nchosen = 0;
    while (nchosen < MAX_PIGGYBACK) {
        s_member_t *best = NULL;
        for (size_t i = 0; i < self->nmembers; i++) {
            s_member_t *m = &self->members[i];
            if (m->transmits == 0 || m == them || m == me || s_wire_size(m) > room)
                continue;
            bool dup = false;
            for (size_t c = 0; c < nchosen && !dup; c++)
                dup = chosen[c] == m;
            if (!dup && (!best || m->transmits > best->transmits))
                best = m;
        }
        if (!best)
            break;
        room -= s_wire_size(best);
        chosen[nchosen++] = best;
    }
    for (size_t c = 0; c < nchosen; c++) {
        chosen[c]->transmits--;
        s_to_wire(chosen[c], &p->records[p->n]);
        p->ptrs[p->n] = &p->records[p->n];
        p->n++;
    }
    /* Our own record goes as the sender: its retransmissions count too. */
    if (me->transmits)
        me->transmits--;
}

typedef enum { SWIM_PING, SWIM_PING_REQ, SWIM_PONG, SWIM_NACK } s_swim_kind_t;

static int s_send_swim(gossip_swim_t *self, uint64_t to, s_swim_kind_t kind, uint64_t seq,
                       uint64_t target)
{
    s_piggy_t p;
    s_piggyback(self, to, &p);
    Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
    Engram__GossipPing ping = ENGRAM__GOSSIP_PING__INIT;
    Engram__GossipPingReq req = ENGRAM__GOSSIP_PING_REQ__INIT;
    Engram__GossipPong pong = ENGRAM__GOSSIP_PONG__INIT;
    Engram__GossipNack nack = ENGRAM__GOSSIP_NACK__INIT;
    switch (kind) {
    case SWIM_PING:
        ping = (Engram__GossipPing){ping.base, seq, &p.sender, p.n, p.ptrs};
        msg.body_case = ENGRAM__GOSSIP__BODY_PING;
        msg.ping = &ping;
        self->stats.pings++;
        break;
    case SWIM_PING_REQ:
        req = (Engram__GossipPingReq){req.base, seq, target, &p.sender, p.n, p.ptrs};
        msg.body_case = ENGRAM__GOSSIP__BODY_PING_REQ;
        msg.ping_req = &req;
        self->stats.ping_reqs++;
        break;
    case SWIM_PONG:
        pong = (Engram__GossipPong){pong.base, seq, target, &p.sender, p.n, p.ptrs};
        msg.body_case = ENGRAM__GOSSIP__BODY_PONG;
        msg.pong = &pong;
        self->stats.pongs++;
        break;
    case SWIM_NACK:
        nack = (Engram__GossipNack){nack.base, seq, target, &p.sender, p.n, p.ptrs};
        msg.body_case = ENGRAM__GOSSIP__BODY_NACK;
        msg.nack = &nack;
        self->stats.nacks++;
        break;
    }
    return s_send(self, to, &msg);
}

/*  Our whole table to `to`, in parts within the budget (reply asked on the first only). */
static int s_send_members(gossip_swim_t *self, uint64_t to, bool reply)
{
    s_member_t *me = s_me(self);
    Engram__GossipMember sender;
    s_to_wire(me, &sender);
    size_t cap = self->nmembers ? self->nmembers : 1;
    Engram__GossipMember *records = malloc(cap * sizeof *records);
    Engram__GossipMember **ptrs = malloc(cap * sizeof *ptrs);
    int rc = records && ptrs ? 0 : ENGRAM_ENOMEM;
    size_t start = 0;
    while (rc == 0 && (start < self->nmembers || start == 0)) {
        size_t room = s_room(self, me), n = 0;
        while (start + n < self->nmembers &&
               (n == 0 || s_wire_size(&self->members[start + n]) <= room)) {
            s_member_t *m = &self->members[start + n];
            room -= s_wire_size(m) < room ? s_wire_size(m) : room;
            s_to_wire(m, &records[n]);
            ptrs[n] = &records[n];
            n++;
        }
        Engram__GossipMembers body = ENGRAM__GOSSIP_MEMBERS__INIT;
        body.reply = reply && start == 0;
        body.sender = &sender;
        body.members = ptrs;
        body.n_members = n;
        Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
        msg.body_case = ENGRAM__GOSSIP__BODY_MEMBERS;
        msg.members = &body;
        rc = s_send(self, to, &msg);
        start += n ? n : 1;
    }
    free(records);
    free(ptrs);
    return rc;
}

/*  --- receiving --------------------------------------------------------------------- */

static const Engram__GossipMember *s_sender_of(const Engram__Gossip *msg)
{
    switch (msg->body_case) {
    case ENGRAM__GOSSIP__BODY_PING:
        return msg->ping->sender;
    case ENGRAM__GOSSIP__BODY_PING_REQ:
        return msg->ping_req->sender;
    case ENGRAM__GOSSIP__BODY_PONG:
        return msg->pong->sender;
    case ENGRAM__GOSSIP__BODY_MEMBERS:
        return msg->members->sender;
    case ENGRAM__GOSSIP__BODY_NACK:
        return msg->nack->sender;
    default:
        return NULL;
    }
}

/*  Tells a LEFT member that it is (its record, with the statement). */
static void s_tell_left(gossip_swim_t *self, s_member_t *m)
{
    s_member_t *me = s_me(self);
    Engram__GossipMember sender, record;
    s_to_wire(me, &sender);
    s_to_wire(m, &record);
    Engram__GossipMember *ptr = &record;
    Engram__GossipMembers body = ENGRAM__GOSSIP_MEMBERS__INIT;
    body.sender = &sender;
    body.members = &ptr;
    body.n_members = 1;
    Engram__Gossip msg = ENGRAM__GOSSIP__INIT;
    msg.body_case = ENGRAM__GOSSIP__BODY_MEMBERS;
    msg.members = &body;
    s_send(self, m->id, &msg);
}

static int s_check_sender(gossip_swim_t *self, uint64_t from, const Engram__Gossip *msg)
{
    if (from == self->config.node_id)
        return s_fault(self, GOSSIP_SWIM_FAULT_UNKNOWN_SENDER, ENGRAM_ENOTFOUND);
    s_member_t *m = s_member(self, from);
    if (m && m->state == GOSSIP_LEFT) {
        s_tell_left(self, m);
        return s_fault(self, GOSSIP_SWIM_FAULT_LEFT_SENDER, ENGRAM_EUNAVAILABLE);
    }
    const Engram__GossipMember *sender = s_sender_of(msg);
    if (sender) {
        if (sender->id != from)
            return s_fault(self, GOSSIP_SWIM_FAULT_DECODE, ENGRAM_EDECODE);
        gossip_member_t r;
        s_from_wire(sender, &r);
        int rc = s_merge(self, from, &r);
        if (rc)
            return rc;
    }
    if (!s_member(self, from))
        return s_fault(self, GOSSIP_SWIM_FAULT_UNKNOWN_SENDER, ENGRAM_ENOTFOUND);
    return 0;
}

/*  Runs handler on a message from `from` at now_ms; *fault: its first fault. */
static int s_handle(gossip_swim_t *self,
                    int (*handler)(gossip_swim_t *self, uint64_t from, const Engram__Gossip *msg),
                    uint64_t from, const Engram__Gossip *msg, uint64_t now_ms,
                    gossip_swim_fault_t *fault)
{
    assert(self && msg && fault);
    s_event(self, now_ms);
    int rc = handler(self, from, msg);
    *fault = self->fault;
    return rc;
}

int gossip_swim_check_sender(gossip_swim_t *self, uint64_t from, const Engram__Gossip *msg,
                             uint64_t now_ms, gossip_swim_fault_t *fault)
{
    return s_handle(self, s_check_sender, from, msg, now_ms, fault);
}

/*  Merges records; a bad one is skipped and reported after the others are merged. */
static int s_merge_all(gossip_swim_t *self, uint64_t from, Engram__GossipMember **records, size_t n)
{
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        gossip_member_t r;
        s_from_wire(records[i], &r);
        int rc = s_merge(self, from, &r);
        if (rc && !first)
            first = rc;
    }
    return first;
}

static void s_relay_add(gossip_swim_t *self, s_relay_t relay)
{
    if (crdt_array_grow((void **)&self->relays, &self->relays_cap, self->nrelays + 1,
                        sizeof *self->relays) == 0)
        self->relays[self->nrelays++] = relay;
}

static int s_on_pong(gossip_swim_t *self, uint64_t from, const Engram__GossipPong *pong)
{
    s_probe_t *p = &self->probe;
    if (p->active && pong->seq == p->seq && pong->target == p->target) {
        p->active = false;
        if (self->health)
            self->health--;
        return 0;
    }
    for (size_t i = 0; i < self->nrelays; i++) {
        s_relay_t *r = &self->relays[i];
        if (r->seq == pong->seq && r->target == from && pong->target == from) {
            uint64_t origin = r->origin, seq = r->origin_seq;
            *r = self->relays[--self->nrelays];
            return s_send_swim(self, origin, SWIM_PONG, seq, from);
        }
    }
    return 0; /* late, or a duplicate */
}

static int s_receive(gossip_swim_t *self, uint64_t from, const Engram__Gossip *msg)
{
    int rc = 0, merged = 0;
    switch (msg->body_case) {
    case ENGRAM__GOSSIP__BODY_PING:
        merged = s_merge_all(self, from, msg->ping->updates, msg->ping->n_updates);
        if (!s_left(self))
            rc = s_send_swim(self, from, SWIM_PONG, msg->ping->seq, self->config.node_id);
        break;
    case ENGRAM__GOSSIP__BODY_PING_REQ: {
        const Engram__GossipPingReq *req = msg->ping_req;
        merged = s_merge_all(self, from, req->updates, req->n_updates);
        s_member_t *target = s_member(self, req->target);
        if (!s_left(self) && target && target->state != GOSSIP_LEFT &&
            req->target != self->config.node_id && req->target != from) {
            uint64_t seq = self->next_seq++;
            s_relay_add(self, (s_relay_t){.seq = seq,
                                          .origin = from,
                                          .origin_seq = req->seq,
                                          .target = req->target,
                                          .sent_ms = self->now_ms});
            rc = s_send_swim(self, req->target, SWIM_PING, seq, 0);
        }
        break;
    }
    case ENGRAM__GOSSIP__BODY_PONG:
        merged = s_merge_all(self, from, msg->pong->updates, msg->pong->n_updates);
        rc = s_on_pong(self, from, msg->pong);
        break;
    case ENGRAM__GOSSIP__BODY_NACK: {
        merged = s_merge_all(self, from, msg->nack->updates, msg->nack->n_updates);
        s_probe_t *p = &self->probe;
        if (p->active && p->indirect && msg->nack->seq == p->seq &&
            msg->nack->target == p->target && p->nacks < p->nacks_expected) {
            p->nacks++;
            self->stats.nacks_received++;
        }
        break;
    }
    case ENGRAM__GOSSIP__BODY_MEMBERS:
        merged = s_merge_all(self, from, msg->members->members, msg->members->n_members);
        if (!self->synced) { /* the retries end: the next exchange at its interval */
            self->synced = true;
            if (self->started)
                self->next_sync_ms = self->now_ms + self->config.sync_interval_ms;
        }
        if (msg->members->reply) /* a LEFT node answers too: a joiner may know only it */
            rc = s_send_members(self, from, false);
        break;
    default:
        return s_fault(self, GOSSIP_SWIM_FAULT_DECODE, ENGRAM_EDECODE);
    }
    return merged ? merged : rc;
}

int gossip_swim_receive(gossip_swim_t *self, uint64_t from, const Engram__Gossip *msg,
                        uint64_t now_ms, gossip_swim_fault_t *fault)
{
    return s_handle(self, s_receive, from, msg, now_ms, fault);
}

/*  --- the timer ---------------------------------------------------------------------- */

/*  The next member to probe: round-robin over a shuffled list, rebuilt once used up; a dead
 *  one only one time in DEAD_PROBE_ODDS. */
static s_member_t *s_next_target(gossip_swim_t *self)
{
    for (size_t tries = 0; tries <= 2 * self->nmembers + 1; tries++) {
        uint64_t id;
        if (!gossip_round_next(&self->probes, &id)) {
            if (gossip_round_begin(&self->probes, self->nmembers))
                return NULL;
            for (size_t i = 0; i < self->nmembers; i++) {
                s_member_t *m = &self->members[i];
                if (m->id != self->config.node_id && m->state != GOSSIP_LEFT)
                    gossip_round_add(&self->probes, m->id);
            }
            gossip_round_shuffle(&self->probes, self->cb.random, self->cb.arg);
            if (!gossip_round_next(&self->probes, &id))
                return NULL;
        }
        s_member_t *m = s_member(self, id);
        if (!m || m->state == GOSSIP_LEFT || m->id == self->config.node_id)
            continue;
        if (m->state == GOSSIP_DEAD && s_random(self) % DEAD_PROBE_ODDS != 0)
            continue;
        return m;
    }
    return NULL;
}

/*  Asks up to k ALIVE members other than target to ping it for us; how many were asked. */
static unsigned s_ping_req(gossip_swim_t *self, uint64_t target, uint64_t seq)
{
    unsigned sent = 0;
    size_t count = 0;
    for (size_t i = 0; i < self->nmembers; i++)
        count += self->members[i].state == GOSSIP_ALIVE && self->members[i].id != target &&
                 self->members[i].id != self->config.node_id;
    /* Each candidate is taken with probability (still wanted) / (still left): k at random. */
    for (size_t i = 0; i < self->nmembers && sent < self->config.indirect_probes; i++) {
        s_member_t *m = &self->members[i];
        if (m->state != GOSSIP_ALIVE || m->id == target || m->id == self->config.node_id)
            continue;
        if (s_random(self) % count < self->config.indirect_probes - sent) {
            if (s_send_swim(self, m->id, SWIM_PING_REQ, seq, target) == 0)
                sent++;
        }
        count--;
    }
    return sent;
}

static void s_probe_tick(gossip_swim_t *self)
{
    uint64_t now = self->now_ms;
    uint64_t interval = self->config.probe_interval_ms * (self->health + 1);
    uint64_t timeout = self->config.probe_timeout_ms * (self->health + 1);
    s_probe_t *p = &self->probe;
    if (p->active) {
        s_member_t *m = s_member(self, p->target);
        if (!m || m->state == GOSSIP_LEFT || m->incarnation != p->incarnation) {
            /* gone, or a record of a later life came since the probe began (the member
               refuted, or restarted: only it raises its incarnation): what the probe tested
               is past, and its failure must not suspect the life that followed */
            p->active = false;
        } else if (now - p->sent_ms >= interval) {
            p->active = false;
            if (m->state == GOSSIP_ALIVE) {
                m->state = GOSSIP_SUSPECT;
                m->nsuspectors = 0;
                s_suspected_by(self, m, self->config.node_id);
                self->stats.suspects++;
                s_touch(self, m, GOSSIP_ALIVE);
            } else if (m->state == GOSSIP_SUSPECT &&
                       s_suspected_by(self, m, self->config.node_id)) {
                s_touch(self, m, m->state); /* our confirmation, passed on */
            }
            if (m->state != GOSSIP_DEAD) {
                /* Lifeguard: the nacks that did not come are what count against us */
                unsigned missed = p->nacks_expected ? p->nacks_expected - p->nacks : 1;
                self->health =
                    self->health + missed < MAX_HEALTH ? self->health + missed : MAX_HEALTH;
            }
        } else if (!p->indirect && now - p->sent_ms >= timeout) {
            p->indirect = true;
            if (m->state != GOSSIP_DEAD)
                p->nacks_expected = s_ping_req(self, p->target, p->seq);
        }
    }
    if (!p->active && now >= self->next_probe_ms) {
        self->next_probe_ms = now + interval;
        s_member_t *m = s_next_target(self);
        if (m) {
            *p = (s_probe_t){.active = true,
                             .target = m->id,
                             .incarnation = m->incarnation,
                             .seq = self->next_seq++,
                             .sent_ms = now};
            s_send_swim(self, m->id, SWIM_PING, p->seq, 0);
        }
    }
    for (size_t i = 0; i < self->nrelays;) {
        s_relay_t *r = &self->relays[i];
        if (!r->nacked &&
            now - r->sent_ms >= self->config.probe_timeout_ms * NACK_AT_PERCENT / 100) {
            r->nacked = true;
            s_send_swim(self, r->origin, SWIM_NACK, r->origin_seq, r->target);
        }
        if (now - r->sent_ms > interval)
            self->relays[i] = self->relays[--self->nrelays];
        else
            i++;
    }
}

void gossip_swim_tick(gossip_swim_t *self, uint64_t now_ms)
{
    assert(self);
    s_event(self, now_ms);
    uint64_t now = now_ms;
    if (!self->started) {
        /* Spread the first probe over one interval; exchange tables at once (a joiner). */
        self->next_probe_ms = now + s_random(self) % self->config.probe_interval_ms;
        self->next_sync_ms = now;
        self->started = true;
    }
    if (s_left(self)) {
        /* Tell a few members, then fall silent. */
        s_member_t *me = s_me(self);
        if (me->transmits && now >= self->next_probe_ms) {
            self->next_probe_ms = now + self->config.probe_interval_ms;
            s_member_t *m = s_pick(self, 1u << GOSSIP_ALIVE | 1u << GOSSIP_SUSPECT);
            if (m)
                s_send_members(self, m->id, false);
            me->transmits--;
        }
        return;
    }
    size_t live = s_live_members(self);
    uint64_t suspicion = s_suspicion_ms(self, live);
    for (size_t i = 0; i < self->nmembers; i++) {
        s_member_t *m = &self->members[i];
        if (m->state == GOSSIP_SUSPECT && m->id != self->config.node_id &&
            now - m->since_ms >= s_suspicion_timeout_ms(self, m, live, suspicion)) {
            m->state = GOSSIP_DEAD;
            self->stats.deaths++;
            s_touch(self, m, GOSSIP_SUSPECT);
        }
    }
    s_probe_tick(self);
    if (now >= self->next_sync_ms) {
        /* Until a members message first comes in, the exchange is tried every probe interval,
           not every sync interval: a new node, or one whose data was wiped, may know nobody at
           its first tick (engramd ticks before its seed answers the introduction), and its
           first exchange may be lost (sent before the link to the seed is up). */
        self->next_sync_ms =
            now + (self->synced ? self->config.sync_interval_ms : self->config.probe_interval_ms);
        s_member_t *m = s_pick(self, 1u << GOSSIP_ALIVE | 1u << GOSSIP_SUSPECT | 1u << GOSSIP_DEAD);
        if (m) {
            self->stats.syncs++;
            s_send_members(self, m->id, true);
        }
    }
}
