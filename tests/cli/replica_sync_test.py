#!/usr/bin/env python3
"""A replica's fsyncs (issue 13): a node that only applies what its peers push does not fsync
once a push, but before the data messages that tell its peers what it holds: at the latest
at its next tick's acks (node/api/server.h, "A replica's fsync").

In a 3-node deploy/local-cluster.sh cluster (durability=sync, the default; a tick every
TICK_MS, a digest every GOSSIP_MS; --gossip-hold-ms 0), node 1 imports WRITES objects one put
after another, each pushed on its own, then its agent writes PRIVATE puts to its private scope,
which no push carries. Once nodes 2 and 3 hold every import and node 1 knows it (their acks or
digests), each replica's WAL fsyncs (engram_wal_syncs_total, from its /metrics) number at least
one and no more than its ticks, its own digests and its answers to its peers' over the time
taken: far fewer than the pushes it applied (engram_gossip_pushes_applied_total), where an
fsync per turn that applied one made them about equal. Node 1 fsyncs before it answers every
write, the private ones too: its syncs are at least its group commits (a commit is counted even
when its fsync is skipped).

What that counts cannot show is the order: that no ack leaves a replica before its fsync.
test_a_replica_counts_only_once_synced shows it end to end: node 3 runs with jepsen/slowwal.c
preloaded; once its trigger file exists, every fsync of its WAL fails (EIO), as on a failing
device. A write pushed to it after that is applied there but never synced, so no put waiting
for 3 replicas may be answered (a replica that acked before its fsync, or after a failed one,
would answer it), while one waiting for 2 is (node 2). Before the trigger, 3 are answered.

test_a_replica_tells_its_subscribers_before_its_fsync shows the other side of that order:
the events of a change another node made leave a replica once its WAL's file holds the
change, without waiting for the fsync before its ack. Node 3 runs with the library's hold:
once its trigger file exists, the WAL write that carries a chosen key arms it, and the next
fsync waits until the trigger is gone. A put of that key waiting for 3 replicas makes node 3
ack its push at once, so the turn that applies it fsyncs and is held there: node 3's watcher
has the event meanwhile, and the put is not answered until the trigger is removed.

The two test_a_replica_tells_nothing_its_log_lacks_* show the limit of that: nothing about a
change leaves a replica before its WAL's file holds it. With the hold at the WAL's write(2)
(ENGRAM_HOLD_AT=write), node 3 stops before the write that carries the chosen key, and its
watcher hears nothing of the put for QUIET_S; once let go, it does. A put waiting for 1
replica is applied in a turn that does not fsync (its ack waits for the tick) and writes the
WAL out at its end; one waiting for 3 in a turn that fsyncs, whose early events come once
api__publish_remote wrote the WAL out.

Usage: replica_sync_test.py ENGRAMD ENGRAM LOCAL_CLUSTER_SH SLOWWAL_LIB. Ports are drawn at
random.
"""
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import local_cluster
from polling import eventually

ENGRAMD, ENGRAM, LOCAL_CLUSTER, SLOWWAL = sys.argv[1:5]
del sys.argv[1:5]
WRITES, PRIVATE = 400, 5
TICK_MS = 50     # node/cluster/internal.h
GOSSIP_MS = 100  # local_cluster.start's --gossip-interval-ms
QUIET_S = 2      # how long a held node is watched for what it must not say
STATUS_LAG_OPS = 10000  # node/api/internal.h, API_OBSERVE_LAG_BYTES_OPS


def connected(pid):
    """Whether process pid has an established Unix stream connection (`ss`, iproute2)."""
    out = subprocess.run(["ss", "-xpn", "state", "established"], capture_output=True,
                         text=True).stdout
    return f"pid={pid}," in out


class ReplicaSyncTest(local_cluster.ClusterTest):
    SCRIPT, ENGRAM, SCOPE, PREFIX = LOCAL_CLUSTER, ENGRAM, "run:replicated", "engram-rsync-"
    FLAGS = "--gossip-hold-ms 0"  # a push a write (tests/python/gossip_hold_test.py: held)

    def holds_all(self, i):
        out = self.engram(i, "get", self.SCOPE, f"k{WRITES - 1}")
        return out.returncode == 0 and f"value {WRITES - 1}" in out.stdout

    def acked_by_all(self):
        out = self.engram(1, "--json", "cluster", "status")
        self.assertEqual(out.returncode, 0, out.stderr)
        members = [m for m in json.loads(out.stdout)["members"] if m["state"] != "self"]
        return len(members) == 2 and all(m["lag_ops"] == 0 for m in members)

    def test_replicas_sync_before_acks_not_once_a_push(self):
        before = {i: self.counters(i) for i in (1, 2, 3)}
        started = time.monotonic()
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            for k in range(WRITES):
                f.write(json.dumps({"scope": self.SCOPE, "key": f"k{k}", "type": "reg",
                                    "values": [{"value": f"value {k}"}]}) + "\n")
            path = f.name
        try:
            out = self.engram(1, "import", path, self.SCOPE)
        finally:
            os.unlink(path)
        self.assertEqual(out.returncode, 0, out.stderr)
        for k in range(PRIVATE):
            out = self.engram(1, "put", "private", f"p{k}", "mine")
            self.assertEqual(out.returncode, 0, out.stderr)
        eventually(lambda: self.holds_all(2) and self.holds_all(3),
                   "nodes 2 and 3 hold every write", timeout=60)
        eventually(self.acked_by_all, "node 1 knows they hold them (acks)", timeout=60)
        # what the replicas applied is synced by now: later turns find nothing to sync
        elapsed_ms = (time.monotonic() - started) * 1000

        def grew(counters, i, name):
            return counters[i][name] - before[i][name]

        def counted():  # a node makes its metrics at most once per API_OBSERVE_REFRESH_MS
            now = {i: self.counters(i) for i in (1, 2, 3)}
            pushed = sum(grew(now, i, "engram_gossip_pushes_applied_total") for i in (2, 3))
            acknowledged = grew(now, 1, "engram_group_commit_writes_sum")
            return now if pushed >= WRITES and acknowledged >= WRITES + PRIVATE else None

        after = eventually(counted, "the metrics count the pushes and commits", timeout=60)
        # what a replica may sync: once a tick (its acks), once a digest interval for its own
        # digest and for each of its two peers' (its answer), and some to spare (also for
        # the time between the acks and the scrape, when only a collection pass may sync)
        bound = elapsed_ms / TICK_MS + 3 * elapsed_ms / GOSSIP_MS + 10
        for i in (2, 3):
            pushed = grew(after, i, "engram_gossip_pushes_applied_total")
            syncs = grew(after, i, "engram_wal_syncs_total")
            with self.subTest(node=i, pushed=pushed, syncs=syncs, bound=bound):
                self.assertGreaterEqual(syncs, 1)
                # too slow a run: a replica that syncs each turn, several pushes a turn on a
                # loaded machine, could stay under the bound
                if bound >= pushed / 4:
                    self.skipTest(f"node {i}: {pushed:.0f} pushes in {elapsed_ms:.0f} ms")
                self.assertLessEqual(syncs, bound)
                print(f"node {i}: {pushed:.0f} pushes applied, {syncs:.0f} WAL syncs "
                      f"(bound {bound:.0f})", file=sys.stderr)
        # the writer's node syncs before it answers, private writes too
        commits = grew(after, 1, "engram_group_commit_writes_count")
        self.assertGreaterEqual(grew(after, 1, "engram_wal_syncs_total"), commits)

    def import_puts(self, i, first, count):
        """count puts (keys k<first>...) imported on node i in one command."""
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            for k in range(first, first + count):
                f.write(json.dumps({"scope": self.SCOPE, "key": f"k{k}", "type": "reg",
                                    "values": [{"value": f"value {k}"}]}) + "\n")
            path = f.name
        try:
            out = self.engram(i, "import", path, self.SCOPE)
        finally:
            os.unlink(path)
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_status_measures_a_lag_in_bytes_within_a_budget(self):
        # Measuring a member's lag in bytes encodes what it lacks, on the node's loop: a status
        # request measures it up to STATUS_LAG_OPS operations, past them it says so
        out = self.engram(3, "--json", "stats")
        self.assertEqual(out.returncode, 0, out.stderr)
        node_3 = json.loads(out.stdout)["node_id"]

        def lag_of_3():  # node 3 as node 1 sees it, once it lags (node 2 may lag a moment too)
            out = self.engram(1, "--json", "cluster", "status")
            self.assertEqual(out.returncode, 0, out.stderr)
            member = [m for m in json.loads(out.stdout)["members"] if m["node"] == node_3
                      and m["lag_ops"] is not None and m["lag_ops"] > 0]
            return member[0] if member else None

        self.import_puts(1, 0, 1)  # node 3 says what it holds of the scope: its lag is known
        eventually(self.acked_by_all, "nodes 2 and 3 hold what node 1 holds", timeout=60)
        self.stop(3)
        self.import_puts(1, 1, 1)
        small = eventually(lag_of_3, "node 3 lags one put")
        self.assertEqual(small["lag_ops"], 1)
        self.assertGreater(small["lag_bytes"], 0)
        self.import_puts(1, 2, STATUS_LAG_OPS)
        large = eventually(lambda: (lambda m: m if m and m["lag_ops"] > STATUS_LAG_OPS else
                                    None)(lag_of_3()), "node 3 lags past the budget", timeout=60)
        self.assertIsNone(large["lag_bytes"])
        human = self.engram(1, "cluster", "status")
        self.assertIn(f" lag {large['lag_ops']} ops (too many to measure in bytes)",
                      human.stdout)

    def put(self, key, replicas, timeout_ms):
        return self.engram(1, "put", self.SCOPE, key, "v", "--replicas", str(replicas),
                           "--timeout", str(timeout_ms))

    def preload_on_3(self, **env):
        """Node 3 restarted with jepsen/slowwal.c preloaded and env (its switches) set."""
        # node 3's command line (local-cluster.sh restarts a node by it) runs engramd alone
        # with the library preloaded: a sanitized or fuzz build's library needs the runtime
        # engramd carries, which the script's other programs lack. An ASan build wants its
        # runtime first in the list; LD_PRELOAD puts this library before it.
        asan = os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
        cmdline = os.path.join(self.dir, "n3", "cmdline")
        with open(cmdline) as f:
            line = f.read()
        switches = " ".join(f"{name}={value}" for name, value in env.items())
        with open(cmdline, "w") as f:
            f.write(f"env LD_PRELOAD={SLOWWAL} {switches} ASAN_OPTIONS={asan} {line}")
        self.restart(3)

    def test_a_replica_counts_only_once_synced(self):
        trigger = os.path.join(self.dir, "failsync")
        self.preload_on_3(ENGRAM_FAILSYNC_TRIGGER=trigger)
        # healthy: node 3 holds a write and says so (it may take a moment to be pushed to)
        eventually(lambda: self.put("healthy", 3, 5000).returncode == 0,
                   "a put waiting for 3 replicas is answered", timeout=60)
        open(trigger, "w").close()
        refused = self.put("unsynced", 3, 5000)
        self.assertNotEqual(refused.returncode, 0, refused.stdout)
        self.assertIn("fewer nodes than asked hold the write", refused.stderr)
        answered = self.put("two", 2, 10000)
        self.assertEqual(answered.returncode, 0, answered.stderr)
        # the fault took: node 3 got a write and its sync failed (its storage latched)
        self.assertRegex(json.loads(self.http(3, "/api/status"))["node"]["storage"],
                         r"^failed: ")


    def watch_on_3(self):
        """`engram watch SCOPE` on node 3: the process and the list its lines go to as they
        come. stop_watching ends it."""
        watcher = subprocess.Popen([ENGRAM, "watch", self.SCOPE],
                                   env=self.admin.env(self.api(3), "tester", "alice"),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []

        def read():
            for line in watcher.stdout:
                lines.append(line)

        watcher.reader = threading.Thread(target=read)
        watcher.reader.start()
        return watcher, lines

    def stop_watching(self, watcher):
        watcher.kill()  # it watches until stopped
        watcher.wait()
        watcher.reader.join()
        watcher.stdout.close()
        watcher.stderr.close()

    def put_waiting(self, key, replicas):
        """A put of key on node 1 waiting for `replicas` replicas, left running. Waiting for 3
        makes node 3 ack its push at once, so the turn that applies it fsyncs; for 1, node 3
        acks at its next tick. 60 s is the longest wait a put may ask."""
        return subprocess.Popen([ENGRAM, "put", self.SCOPE, key, "v", "--replicas",
                                 str(replicas), "--timeout", "60000"],
                                env=self.admin.env(self.api(1), "tester", "alice"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def hold_on_3(self, key, at="sync"):
        """Node 3 restarted with the hold armed by key's bytes in its WAL, held `at` the WAL's
        fsync or write(2) (jepsen/slowwal.c), and once healthy, the trigger set. Returns the
        trigger's path."""
        trigger = os.path.join(self.dir, "holdsync")
        self.preload_on_3(ENGRAM_HOLDSYNC_TRIGGER=trigger, ENGRAM_HOLDSYNC_MARKER=key,
                          ENGRAM_HOLD_AT=at)
        eventually(lambda: self.put("healthy", 3, 5000).returncode == 0,
                   "a put waiting for 3 replicas is answered", timeout=60)
        return trigger

    @contextlib.contextmanager
    def held_on_3(self, at, replicas):
        """Node 3 watched, then held `at` its WAL's fsync or write(2) in the turn that applied
        a put of a fresh key, made on node 1 waiting for `replicas` replicas. Yields the
        watcher's lines, the event line the put makes, the running put and the trigger, which
        the caller removes to let node 3 go; cleans up whatever is left."""
        key = "held-" + os.urandom(4).hex()
        trigger = self.hold_on_3(key, at)
        watcher, events = self.watch_on_3()
        put = None
        try:
            eventually(lambda: watcher.poll() is None and self.stats(3, "subscribers") == 1,
                       "node 3 has the watcher's subscription", timeout=60)
            open(trigger, "w").close()
            put = self.put_waiting(key, replicas)
            eventually(lambda: os.path.exists(trigger + ".held"),
                       f"node 3 inside the WAL {at} of the turn that applied the push",
                       timeout=60)
            yield events, f"{self.SCOPE} {key} put v\n", put, trigger
        finally:
            if os.path.exists(trigger):
                os.unlink(trigger)
            if put and put.poll() is None:
                put.kill()
                put.communicate()
            self.stop_watching(watcher)

    def test_a_replica_tells_its_subscribers_before_its_fsync(self):
        with self.held_on_3("sync", replicas=3) as (events, event, put, trigger):
            # while that fsync is held, the event has left node 3 ...
            eventually(lambda: event in events, "node 3's watcher told of the put", timeout=30)
            # ... and the ack, which leaves only after the fsync, has not
            self.assertIsNone(put.poll(), "node 1 was answered before node 3's fsync")
            os.unlink(trigger)
            out, err = put.communicate(timeout=120)
            self.assertEqual(put.returncode, 0, err)

    def assert_silent_until_written(self, replicas):
        """Node 3 held in the WAL write(2) of the turn that applied a push: its watcher hears
        nothing of the change for QUIET_S, and once the write goes on, hears of it."""
        with self.held_on_3("write", replicas) as (events, event, put, trigger):
            time.sleep(QUIET_S)
            self.assertNotIn(event, events, "node 3 told of a change its WAL's file lacked")
            os.unlink(trigger)
            eventually(lambda: event in events, "node 3's watcher told of the put", timeout=30)
            out, err = put.communicate(timeout=120)
            self.assertEqual(put.returncode, 0, err)

    def test_a_replica_tells_nothing_its_log_lacks_in_a_turn_without_fsync(self):
        # the push acked at node 3's next tick: the turn that applies it does not fsync, and
        # writes the WAL out at its end, before its events (node/api/server.c, s_turn)
        self.assert_silent_until_written(replicas=1)

    def test_a_replica_tells_nothing_its_log_lacks_before_its_fsync(self):
        # the push acked at once: the turn fsyncs, and publishes its peers' events first, once
        # the WAL is written out (api__publish_remote)
        self.assert_silent_until_written(replicas=3)

    def test_a_subscription_is_answered_before_its_first_event(self):
        # While node 3 is held in an fsync, a watcher subscribes there and node 1 pushes it a
        # second put: once let go, node 3 reads both in one turn, which fsyncs for the push's
        # ack. Its events may not go ahead of the SUBSCRIBE's reply: a client takes the first
        # message with its request's id as the reply, and the event would be lost.
        key = "held-" + os.urandom(4).hex()
        trigger = self.hold_on_3(key)
        open(trigger, "w").close()
        puts, watcher = [self.put_waiting(key, 3)], None
        try:
            eventually(lambda: os.path.exists(trigger + ".held"),
                       "node 3 inside the fsync of the turn that applied the push", timeout=60)
            watcher, events = self.watch_on_3()
            # its connection made (ZeroMQ's I/O thread takes it while the loop is held), the
            # SUBSCRIBE waits in node 3's socket; then the push does too
            eventually(lambda: connected(watcher.pid), "the watcher connected to node 3",
                       timeout=60)
            time.sleep(0.5)
            puts.append(self.put_waiting("after-" + key, 3))
            time.sleep(0.5)
            os.unlink(trigger)
            eventually(lambda: f"{self.SCOPE} after-{key} put v\n" in events,
                       "node 3's watcher told of the put after its subscription", timeout=30)
            for put in puts:
                out, err = put.communicate(timeout=120)
                self.assertEqual(put.returncode, 0, err)
        finally:
            if os.path.exists(trigger):
                os.unlink(trigger)
            for put in puts:
                if put.poll() is None:
                    put.kill()
                    put.communicate()
            if watcher:
                self.stop_watching(watcher)


if __name__ == "__main__":
    unittest.main()
