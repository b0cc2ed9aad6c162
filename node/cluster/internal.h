/*  node/cluster internals: the cluster's state and the helpers its files share.
 *
 *  Files, one concern each:
 *    cluster.c   life (card, sockets), the loop's calls (receive, send, timers,
 *                holders, removal), the engine's store observed, GC below the stable cut
 *    links.c     one CurveZMQ DEALER per member, DATA/peers (the keys ZAP admits), relinks
 *    members.c   the engine's membership callbacks, DATA/members (saved and learned)
 *    intro.c     the introduction protocol on gossip port + 1 (cards, joining)
 *    dots.c      the dot check at start (shared writes wait; a new replica id if unproven)
 *    status.c    what `engram cluster status` shows, as a plain C struct
 *
 *  Thread: every field below belongs to the thread that runs the server's loop.
 */
#ifndef NODE_CLUSTER_INTERNAL_H
#define NODE_CLUSTER_INTERNAL_H

#include <czmq.h>

#include "node/cluster/cluster.h"
#include "node/trust/admission.h"
#include "node/trust/identity.h"
#include "proto/cluster.pb-c.h"

#define CARD_MAX_BYTES 4096
/*  The engine budgets every message it sends by max_message_bytes, so a larger frame is bad
 *  input: counted and refused here. ZeroMQ itself drops (with the connection, uncounted) only
 *  frames past this many budgets, so that what an oversized frame costs stays bounded. */
#define GOSSIP_FRAME_HARD_LIMIT 4
/*  How often a joiner repeats its introduction until a member answers. */
#define INTRO_RETRY_MS 1000
/*  The engine's timer. */
#define TICK_MS 50
/*  Messages queued for one peer before further ones are dropped. */
#define PEER_SNDHWM 10000
/*  libzmq never retries a CURVE handshake that the peer's ZAP handler refused, and that
 *  happens whenever we learn of a member before it learns of us (gossip reaches nodes in any
 *  order; a seed learns a joiner from its introduction and links to it before the joiner has
 *  read the seed's card): a monitor on each link reports the refusal, and the link is made
 *  anew this long after it was made. A message from the member made anew sooner
 *  (cluster__heard_from). */
#define RELINK_MS 250
/*  A link remade on its member's messages while it does not come up waits twice as long each
 *  time before the next, up to this (libzmq's own reconnect backoff). */
#define RELINK_MAX_MS 2000
/*  Links are ZMQ_IMMEDIATE, so that what a member that is down cannot take is dropped rather
 *  than queued for it. A link that is not up (its first handshake, or a reconnection after a
 *  disconnect, not yet done) holds what its dealer refuses instead, and sends it as soon as
 *  the dealer takes it (the handshake's event, or the next send or loop turn): the pong to a
 *  joiner's first ping, a restarted node's first pings, the acks to a member that just
 *  restarted. Without it those were lost and members suspected each other after joins and
 *  restarts. A link that went down holds no pushes (gossip_engine_next's *push): held for a
 *  member that restarted, they reached it after the digest it sends at start, beside the pull
 *  answer that brought it the same operations (`engram-cluster-bench --only catchup`: up to
 *  1.3x the delta it needed); a member only briefly cut off pulls what it missed. A new
 *  link's pushes are held (a joiner's first statements and writes). What is held is dropped
 *  LINK_HOLD_MS after the first of it (at the next loop turn), below the engine's
 *  ASK_WAIT_MS, so that an ask dropped thus is reported (gossip_engine_unsent) before the
 *  engine would blame its peer for not answering. Bounds: LINK_HOLD_FRAMES frames a link; a
 *  frame above LINK_HOLD_SMALL bytes only within one message budget (max_message_bytes) a
 *  link and LINK_HOLD_BUDGETS - 1 budgets over all links; every frame within
 *  LINK_HOLD_BUDGETS budgets over all links, so that large frames leave room for pings and
 *  acks. */
#define LINK_HOLD_FRAMES  1024
#define LINK_HOLD_SMALL   4096
#define LINK_HOLD_BUDGETS 4
#define LINK_HOLD_MS      500
/*  Collection of the op records below the stable cut (s_collect): a round every
 *  GC_INTERVAL_MS goes over the shared scopes there were when it began, in passes that each
 *  do about GC_PASS_US of work (one may run over by a scope's stable cut and up to
 *  NODE_STORE_GC_CLOCK_EVERY visits; a visit is a point read and maybe a write: 1-3.5 us on a
 *  busy node, 25 us cold) and follow each other GC_RESUME_MS apart, each going on where the
 *  last stopped: a 40th of the loop, 10-25k visits a second. A scope is collected up to the
 *  stable cut it had when the round reached it, so a scope written faster than that does not
 *  hold the round. A round that has run longer than GC_INTERVAL_MS is behind the writes: its
 *  passes then come GC_RESUME_BEHIND_MS apart (a tenth of the loop). Passes of 2,048 visits
 *  every 20 ms while records were left held each node's loop 3-7 ms at a time, a fifth to a
 *  third of it, for a second or two after 10 s of writes at 10k/s, on all three nodes at once
 *  (README, "Garbage"). */
#define GC_INTERVAL_MS      10000
#define GC_PASS_US          1000
#define GC_RESUME_MS        40
#define GC_RESUME_BEHIND_MS 10
/*  Bad frames are logged this often at most (each is counted). */
#define BAD_LOG_INTERVAL_MS 1000
/*  The dot check at start (cluster__check_dots): how long shared writes wait for the members'
 * digests at most, and how often they are asked again meanwhile (the first asks may find no link
 * up). */
#define DOT_CHECK_MS 3000
#define DOT_ASK_MS   250

/*  A connection to one member. */
typedef struct {
    uint64_t id;
    char *endpoint;   /* owned */
    zsock_t *dealer;  /* owned */
    char key_txt[41]; /* its CURVE public key, Z85 */
    zsock_t *monitor; /* owned: PAIR receiving the dealer's handshake failures */
    uint64_t created_ms;
    bool refused;      /* a handshake failed: connect anew */
    bool hastened;     /* made anew on the member's message (cluster__heard_from) */
    uint64_t retry_ms; /* made anew on a message only this long after it was made */
    bool up; /* handshaken or took a frame, not disconnected since: what it refuses is dropped */
    bool went_down; /* was up, then disconnected (kept when made anew): holds no pushes */
    zlist_t *held;  /* owned, of zframe_t: what was sent while not up (LINK_HOLD_MS) */
    size_t held_bytes;
    uint64_t held_until_ms; /* what is held is dropped then if the link is still not up */
    bool left;              /* decommissioned: no longer counts as a holder of anything */
} cluster_link_t;

struct node_cluster {
    node_cluster_config_t config; /* strings owned */
    node_store_t *store;
    gossip_engine_t *engine;
    gossip_store_t store_ops; /* node_store_gossip, apply observed */
    node_trust_t trust;
    char cluster_hex[2 * NODE_CLUSTER_ID_BYTES + 1];
    uint64_t node_id;
    uint8_t *card; /* owned: this node's admission */
    size_t card_len;
    zcert_t *cert;      /* this node's CURVE key pair */
    char *peers_dir;    /* owned: DATA/peers, the keys the ZAP handler admits */
    char *members_path; /* owned: DATA/members */
    char *intro_endpoint;
    zsock_t *gossip;
    zsock_t *intro;
    zhash_t *links;    /* id (hex) -> cluster_link_t *, owned */
    zhash_t *by_key;   /* CURVE key (Z85) -> cluster_link_t *, borrowed from links */
    size_t held_bytes; /* what all links hold while not up (LINK_HOLD_BUDGETS) */
    char *join;        /* owned: a member's gossip endpoint while joining, else NULL */
    zsock_t *joiner;   /* owned: DEALER to that member's introduction socket */
    uint64_t next_intro_ms;
    uint64_t next_tick_ms;
    uint64_t links_made; /* names the links' monitor endpoints */
    uint64_t next_gc_ms;
    /* the hold (node_cluster_hold): when this node's writes were last pushed (zclock_usecs),
     * whether writes were queued since, the turn's decision, whether messages wait, how many
     * turns held theirs */
    int64_t sent_us;
    bool local_queued;
    bool hold_turn;
    bool held;
    uint64_t sends_held;
    uint64_t gc_dropped; /* op records dropped below stable cuts */
    uint64_t gc_rounds;  /* collection rounds finished */
    /* the collection round under way (s_collect): the scopes it has still to finish, in
     * order, the first one's stable cut as the round reached it, and when it began */
    zlist_t *gc_round;  /* owned, autofree names; NULL between rounds */
    crdt_ctx_t *gc_cut; /* owned; NULL until a pass reaches the first scope, or if unknown */
    uint64_t gc_round_ms;
    uint64_t gc_warned_ms; /* when a failed collection was last logged */
    uint64_t last_bad_log_ms;
    uint64_t last_intro_log_ms;
    uint64_t intros_refused; /* also counted in bad_frames */
    uint64_t bad_frames;
    uint64_t incarnation; /* at start; the engine raises it to refute suspicion */
    bool members_dirty;
    bool removed;           /* an admin decommissioned this node: it no longer replicates */
    bool dots_pending;      /* shared writes wait for the dot check (cluster__check_dots) */
    uint64_t dots_since_ms; /* when it began */
    uint64_t dots_asked_ms; /* when the members were last asked for their digests */
    node_cluster_applied_fn on_applied;
    void *on_applied_arg;
};

bool cluster__admit(void *arg, uint64_t id, const uint8_t *card, size_t len);

/*  Writes the member's public CURVE certificate where the ZAP handler looks, so it may connect.
 *  The handler's thread reads DATA/peers whenever a peer connects, so a certificate appears
 *  there whole (written beside the directory, then renamed in) and is written once: the key of
 *  an id never changes (the id is the key's hash), and a rewrite on each change of the member's
 *  state would let the handler see it truncated and refuse the member's handshake. */
void cluster__admit_key(node_cluster_t *self, uint64_t id, const uint8_t curve_public[32]);

void cluster__changed(void *arg, const gossip_member_t *member);

/*  Dot safety at start: see dots.c. */
void cluster__check_dots(node_cluster_t *self, uint64_t now_ms);

/*  Makes sure a DEALER to the member's endpoint exists. */
void cluster__ensure_link(node_cluster_t *self, uint64_t id, const char *endpoint,
                          const uint8_t curve_public[32]);

void cluster__introduce(node_cluster_t *self, uint64_t now);

/*  The member's answer to our introduction: its card, or a refusal. */
void cluster__joined(node_cluster_t *self);

void cluster__key_of(uint64_t id, char hex[17]);

/*  Learns every member remembered from the last run (their current state comes from the
 *  cluster; a removal is kept as it is, for good). */
void cluster__learn_members(node_cluster_t *self, const Engram__Members *members);

uint64_t cluster__now_ms(void);

/*  "tcp://HOST:PORT" -> the same host with PORT + delta. NULL if it is not of that form. */
char *cluster__port_plus(const char *endpoint, int delta);

/*  The membership remembered from the last run (DATA/members), NULL when there is none or it
 *  is unreadable (then the cluster is relearned through --join). */
Engram__Members *cluster__read_members(node_cluster_t *self);

/*  Reads the links' events, sends what a link holds as far as its dealer takes it, drops
 *  what waited LINK_HOLD_MS, and makes anew the links whose handshake a member refused
 *  (RELINK_MS). */
void cluster__relink(node_cluster_t *self, uint64_t now);
/*  A message from the member came in, so it is up and, since a member links to us only once
 *  it admits our key, would take our handshake: a link to it that is not up is made anew at
 *  once if it was refused (once per refusal), or if its retry_ms passed since it was made (a
 *  link reconnecting after a disconnect waits out libzmq's backoff otherwise); retry_ms
 *  doubles with each such remake, from RELINK_MS to RELINK_MAX_MS, and starts again once up. */
void cluster__heard_from(node_cluster_t *self, uint64_t id, uint64_t now);
/*  Sends len bytes to the member over its link, or holds them while the link is not up (a
 *  push only if the link never went down). True when the frame went or is held (a held frame
 *  dropped later is reported then, through gossip_engine_unsent); false when it cannot go: no
 *  link, a push the link does not hold, a full pipe, bounds reached. */
bool cluster__link_send(node_cluster_t *self, uint64_t id, const uint8_t *buf, size_t len,
                        bool push, uint64_t now);

/*  Takes a new replica id for the writes from now on, saying why. */
void cluster__renew_replica(node_cluster_t *self, const char *why);

/*  Rewrites DATA/members from the engine's view. */
void cluster__save_members(node_cluster_t *self);

/*  A joiner's introduction on our introduction socket: answer with our card or an error. */
void cluster__serve_introduction(node_cluster_t *self);

/*  The incarnation this run starts at: its start time in ms, so that a restart outranks what
 *  peers suspected of the last run, and above the one the last run reached, so that a clock
 *  stepped back cannot start it below its own past (peers would ignore it until it refuted). */
uint64_t cluster__start_incarnation(const node_cluster_t *self, const Engram__Members *remembered,
                                    uint64_t now_ms);

const char *cluster__state_name(gossip_state_t state);

bool cluster__verify_leave(void *arg, uint64_t id, const uint8_t *statement, size_t len);

#endif
