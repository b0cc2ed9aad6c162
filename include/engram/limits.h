/*  engram defaults and limits, in one place.
 *
 *  Every tunable number lives here as an overridable #ifndef so that no .c file holds a magic
 *  number. Runtime configuration (the node's config file and flags, node/daemon/config.c) may lower
 *  the limits further; it may never raise a hard decode limit past what is written here.
 */
#ifndef ENGRAM_LIMITS_H
#define ENGRAM_LIMITS_H

/*  Schema version of every encoded state, delta, value and API message. A reader refuses a
 *  newer major with ENGRAM_EVERSION; a newer minor only adds fields that older readers skip. */
#define ENGRAM_SCHEMA_MAJOR 1
/*  1: Scope.notes, the operations' history steps; 2: a step may leave its value to its op's
 *  entry (StoredHistory.value_in_entry), sent so only to peers that speak 2; 3: a gossip
 *  message may travel compressed (Gossip.compressed), sent so only to peers that speak 3;
 *  4: such a step may leave its key, type and stamp to that entry too
 *  (StoredHistory.key_in_entry), sent so only to peers that speak 4 */
#define ENGRAM_SCHEMA_MINOR 4

/*  Largest object key, set element and value a decoder accepts, in bytes. */
#ifndef ENGRAM_MAX_KEY_BYTES
#define ENGRAM_MAX_KEY_BYTES 1024
#endif
#ifndef ENGRAM_MAX_VALUE_BYTES
#define ENGRAM_MAX_VALUE_BYTES (1024 * 1024)
#endif
/*  Largest entry the CRDT kernel stores: a value of ENGRAM_MAX_VALUE_BYTES plus room for its
 *  header (times, metadata, provenance). */
#ifndef ENGRAM_MAX_ENTRY_BYTES
#define ENGRAM_MAX_ENTRY_BYTES (ENGRAM_MAX_VALUE_BYTES + 64 * 1024)
#endif

/*  Access-control statements (node/trust/acl.h): the largest signed statement, agent or user
 *  name, resource or scope pattern and redaction pattern a node keeps, and the most patterns
 *  one write policy lists; past them a statement is refused (ENGRAM_ETOOBIG). Not overridable:
 *  nodes that kept different statements would decide differently. */
#define ENGRAM_ACL_MAX_STATEMENT_BYTES (32 * 1024)
#define ENGRAM_ACL_MAX_NAME_BYTES      128
#define ENGRAM_ACL_MAX_RESOURCE_BYTES  256
#define ENGRAM_ACL_MAX_PATTERNS        32
#define ENGRAM_ACL_MAX_PATTERN_BYTES   512

/*  Hybrid logical clock: physical milliseconds in the high bits, a logical counter in the
 *  low ENGRAM_HLC_LOGICAL_BITS bits. */
#define ENGRAM_HLC_LOGICAL_BITS 16
/*  The HLC's persisted ceiling runs this far ahead of the largest stamp: a write persists the
 *  ceiling only when its stamp passes it, about once per lease instead of once per write, and
 *  a restarted node's clock starts at most this far ahead of the last stamp it issued. */
#ifndef ENGRAM_HLC_LEASE_MS
#define ENGRAM_HLC_LEASE_MS 50
#endif

/*  engramd and libengram defaults; each can be set in the node's config file or by a flag. */
#ifndef ENGRAM_DEFAULT_API_ENDPOINT
#define ENGRAM_DEFAULT_API_ENDPOINT "ipc:///tmp/engram.sock"
#endif
#ifndef ENGRAM_DEFAULT_CLIENT_TIMEOUT_MS
#define ENGRAM_DEFAULT_CLIENT_TIMEOUT_MS 5000
#endif
/*  How long `engram snapshot` waits for the node by default: the node flushes its memtables
 *  first, which takes longer than a request. */
#ifndef ENGRAM_DEFAULT_SNAPSHOT_TIMEOUT_MS
#define ENGRAM_DEFAULT_SNAPSHOT_TIMEOUT_MS 600000
#endif
/*  How long engram_destroy lets unsent requests linger on the socket. */
#ifndef ENGRAM_CLIENT_LINGER_MS
#define ENGRAM_CLIENT_LINGER_MS 100
#endif
#ifndef ENGRAM_DEFAULT_AFTER_TIMEOUT_MS
#define ENGRAM_DEFAULT_AFTER_TIMEOUT_MS 2000
#endif
/*  The longest a read may wait for its causal token: a larger timeout_ms is clamped. */
#ifndef ENGRAM_MAX_AFTER_TIMEOUT_MS
#define ENGRAM_MAX_AFTER_TIMEOUT_MS 60000
#endif
/*  Reads parked for their causal token, per connection and in the whole node; past either the
 *  read is refused with ENGRAM_EBUSY and the node keeps serving. */
#ifndef ENGRAM_MAX_PARKED_PER_CONNECTION
#define ENGRAM_MAX_PARKED_PER_CONNECTION 64
#endif
#ifndef ENGRAM_MAX_PARKED
#define ENGRAM_MAX_PARKED 4096
#endif
/*  Writes acknowledged here that wait for their replicas (put --replicas N), in the whole
 *  node; past it such a write is refused with ENGRAM_EBUSY before it is made. */
#ifndef ENGRAM_MAX_REPLICA_WAITS
#define ENGRAM_MAX_REPLICA_WAITS 4096
#endif
/*  Subscriptions one connection may hold. */
#ifndef ENGRAM_MAX_SUBSCRIPTIONS_PER_CONNECTION
#define ENGRAM_MAX_SUBSCRIPTIONS_PER_CONNECTION 256
#endif
/*  Bytes of replies and events the node keeps for one connection that does not read them;
 *  past it the connection gets one error and is cut (its state goes), never the node. */
#ifndef ENGRAM_CONNECTION_BYTE_BUDGET
#define ENGRAM_CONNECTION_BYTE_BUDGET (16 * 1024 * 1024)
#endif
/*  Batches (engram_batch_t): the most requests one batch holds, and the most it keeps
 *  awaiting their replies at once. The window bounds what the node may hold for a batch that
 *  reads its replies as they come: eight replies, half of engramd's pipe of sixteen messages
 *  per connection. With a window of sixteen each round of 16 gets from one client took 11 ms
 *  (1.75k/s; 22.5k/s with a window of 8, engram-node-bench --pipeline 16), which matches the
 *  node's 10 ms retry of a connection whose pipe is full. */
#ifndef ENGRAM_BATCH_MAX
#define ENGRAM_BATCH_MAX 4096
#endif
#ifndef ENGRAM_BATCH_WINDOW
#define ENGRAM_BATCH_WINDOW 8
#endif
/*  The largest page of a paged read (list, set members, log range, history). */
#ifndef ENGRAM_MAX_PAGE
#define ENGRAM_MAX_PAGE 1000
#endif
/*  A page, and a search's results, also end before their values pass this many bytes (a first
 *  item always fits), so that no reply comes near the frame limit whatever the values' sizes. */
#ifndef ENGRAM_MAX_PAGE_BYTES
#define ENGRAM_MAX_PAGE_BYTES (4 * 1024 * 1024)
#endif
/*  Search (SEARCH): embeddings have at most this many float32 dimensions; a search returns at
 *  most ENGRAM_MAX_TOP_K results, ENGRAM_DEFAULT_TOP_K unless asked. */
#ifndef ENGRAM_MAX_EMBEDDING_DIMS
#define ENGRAM_MAX_EMBEDDING_DIMS 4096
#endif
#ifndef ENGRAM_MAX_TOP_K
#define ENGRAM_MAX_TOP_K 1000
#endif
#ifndef ENGRAM_DEFAULT_TOP_K
#define ENGRAM_DEFAULT_TOP_K 10
#endif
#ifndef ENGRAM_DEFAULT_DURABILITY
#define ENGRAM_DEFAULT_DURABILITY "sync"
#endif
/*  Requests read in one loop turn, applied and made durable by one group commit. Measured
 *  (bench/node_bench.c, 64 clients, sync): 256 lets every client into one turn, after which the
 *  loop idles while they all come back (11-15k puts/s); 32 keeps half the clients preparing
 *  their next request while the other half is applied and synced (19-22k). */
#ifndef ENGRAM_DEFAULT_MAX_BATCH
#define ENGRAM_DEFAULT_MAX_BATCH 32
#endif
#ifndef ENGRAM_DEFAULT_PURGE_INTERVAL_MS
#define ENGRAM_DEFAULT_PURGE_INTERVAL_MS 1000
#endif
#ifndef ENGRAM_DEFAULT_LIST_LIMIT
#define ENGRAM_DEFAULT_LIST_LIMIT 100
#endif
/*  Events queued for a subscriber whose connection is full; past it the subscription ends
 *  with an error event rather than silently dropping changes. */
#ifndef ENGRAM_DEFAULT_SUBSCRIBER_BACKLOG
#define ENGRAM_DEFAULT_SUBSCRIBER_BACKLOG 10000
#endif
/*  ZMQ_MAXMSGSIZE of the API socket: a larger frame is dropped by libzmq before we see it. */
#ifndef ENGRAM_DEFAULT_MAX_FRAME_BYTES
#define ENGRAM_DEFAULT_MAX_FRAME_BYTES (4 * 1024 * 1024)
#endif
/*  How many MiB a second RocksDB's flushes and compactions may write (--flush-rate-mb; 0: no
 *  limit). A memtable flushed at the disk's speed (the history family's 64 MiB memtable,
 *  44 MB written in 0.2 s) held the fsyncs of the writes that went on meanwhile 5-30 ms each;
 *  paced, it takes a second or two and they do not wait (README, "Measured", "Flushes paced,
 *  collection spread"). The bound is on their output, which compaction multiplies: a node
 *  taking writes at full speed for minutes meets RocksDB's write slowdown sooner. */
#ifndef ENGRAM_DEFAULT_FLUSH_RATE_MB
#define ENGRAM_DEFAULT_FLUSH_RATE_MB 32
#endif
/*  Free space engramd keeps on its data volume: below it writes are refused with
 *  ENGRAM_ENOSPC (and resume once space is freed), so RocksDB never meets a full disk, which
 *  it does not recover from while running. */
#ifndef ENGRAM_DEFAULT_MIN_FREE_BYTES
#define ENGRAM_DEFAULT_MIN_FREE_BYTES (64 * 1024 * 1024)
#endif
/*  The RocksDB block cache of a node's store (LRU, shared by its column families): what it
 *  holds of SST blocks, uncompressed, so a read of recent memory touches neither the page cache
 *  nor the decompressor. A bound, filled only as blocks are read. */
#ifndef ENGRAM_DEFAULT_BLOCK_CACHE_BYTES
#define ENGRAM_DEFAULT_BLOCK_CACHE_BYTES (256 * 1024 * 1024)
#endif
/*  Replication (gossip/engine.h, node/cluster/cluster.h): peers each new write is pushed to, how
 *  often a node sends one peer its version vectors (anti-entropy), and the byte budget of one
 *  gossip message (larger pull answers are chunked; the gossip socket refuses larger frames). */
#ifndef ENGRAM_DEFAULT_FANOUT
#define ENGRAM_DEFAULT_FANOUT 3
#endif
#ifndef ENGRAM_DEFAULT_GOSSIP_INTERVAL_MS
#define ENGRAM_DEFAULT_GOSSIP_INTERVAL_MS 200
#endif
#ifndef ENGRAM_DEFAULT_MAX_GOSSIP_BYTES
#define ENGRAM_DEFAULT_MAX_GOSSIP_BYTES (1024 * 1024)
#endif
/*  How long a node busy with writes may hold its gossip back, so that one push carries several
 *  turns' writes (node/cluster/cluster.h, node_cluster_hold); 0: every turn sends. At most 50
 *  (--gossip-hold-ms): SWIM's pings and acks wait with the rest, and a direct ping is given
 *  400 ms (gossip/swim.h) before others are asked to try. */
#ifndef ENGRAM_DEFAULT_GOSSIP_HOLD_MS
#define ENGRAM_DEFAULT_GOSSIP_HOLD_MS 2
#endif
/*  The largest --busy-poll-us: the loop's look for work before it sleeps (node/api/busy_poll.h)
 *  pays when a client's next request comes within it (tens of microseconds for a C client in a
 *  loop, a millisecond or so for a Python one); 10 ms is far past either. */
#define ENGRAM_MAX_BUSY_POLL_US 10000
/*  How long a write with replicas=N waits for N nodes to hold it by default. */
#ifndef ENGRAM_DEFAULT_REPLICAS_TIMEOUT_MS
#define ENGRAM_DEFAULT_REPLICAS_TIMEOUT_MS 5000
#endif
/*  How often the free space is measured (statvfs), at most. */
#ifndef ENGRAM_FREE_SPACE_CHECK_MS
#define ENGRAM_FREE_SPACE_CHECK_MS 100
#endif
/*  The largest lead over the wall clock that a remote HLC may have: a remote stamp further
 *  ahead is refused and counted (node_store_hlc_observe), never adopted. */
#ifndef ENGRAM_DEFAULT_MAX_CLOCK_DRIFT_MS
#define ENGRAM_DEFAULT_MAX_CLOCK_DRIFT_MS 60000
#endif

#endif
