#!/usr/bin/env python3
"""Collection below the stable cut in rounds of short passes (issue 13; node/cluster/internal.h,
GC_PASS_US): a round goes over every shared scope, in passes of at most a millisecond of the
loop, each starting at the scope where the last stopped.

In a 2-node deploy/local-cluster.sh cluster, one connection to node 1 overwrites one key in each
of SCOPES scopes (two puts a scope, sent before any answer is read: a DEALER with the agent's
CURVE keys, as libengram's), so that each scope holds one op record whose entry is gone. Once
node 1 sees node 2 holding all of it (no lag: the stable cut covers every write), a round that
begins after that (the second to finish from then on, engram_gossip_gc_rounds_total) has
dropped every such record: no scope is left with garbage, though one pass reaches a few dozen
scopes at most (each costs its stable cut and a RocksDB write), and the node dropped at least
SCOPES records (engram_gossip_gc_dropped_total). A round that ended with its first pass, or
a pass that lost the round's place, leaves most scopes' garbage to later rounds.

Usage: gc_rounds_test.py ENGRAMD ENGRAM LOCAL_CLUSTER_SH. Ports are drawn at random.
"""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
import local_cluster  # noqa: E402 (tests/cli's, found through the line above)
from engram_proto import api_pb2  # noqa: E402
from polling import eventually  # noqa: E402

ENGRAMD, ENGRAM, LOCAL_CLUSTER = sys.argv[1], sys.argv[2], sys.argv[3]
del sys.argv[1:4]
SCOPES = 600


class CollectionRounds(local_cluster.ClusterTest):
    SCRIPT, ENGRAM, SCOPE, PREFIX = LOCAL_CLUSTER, ENGRAM, "run:*", "engram-gc-"
    NODES = 2

    def counter(self, i, name):
        for line in self.http(i, "/metrics").splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        self.fail(f"{name} is not in node {i}'s /metrics")

    def status(self, i):
        out = self.engram(i, "--json", "cluster", "status")
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def overwrite_each_scope(self):
        sock = self.dealer(1)
        try:
            sent = 0
            for n in range(SCOPES):
                for value in (b"first", b"second"):
                    sent += 1
                    sock.send(api_pb2.Request(
                        schema_major=1, id=sent, op=api_pb2.PUT, agent="tester", user="alice",
                        scope=f"run:gc-{n}", key="k", value=value,
                        timeout_ms=60000).SerializeToString())
            self.all_answered(sock, sent)
        finally:
            sock.close()

    def test_a_round_collects_every_scope(self):
        dropped_before = self.counter(1, "engram_gossip_gc_dropped_total")
        self.overwrite_each_scope()

        def settled():
            d = self.status(1)
            ours = [s for s in d["scopes"] if s["scope"].startswith("run:gc-")]
            up = all(m["state"] in ("self", "alive") for m in d["members"])
            lagging = [m for m in d["members"] if m["state"] == "alive"
                       and (m["lag_ops"] is None or m["lag_ops"] > 0)]  # None: not known yet
            return len(ours) == SCOPES and len(d["members"]) == 2 and up and not lagging
        eventually(settled, "node 2 holds every scope", timeout=120)
        rounds = self.counter(1, "engram_gossip_gc_rounds_total")
        eventually(lambda: self.counter(1, "engram_gossip_gc_rounds_total") >= rounds + 2,
                   "two more collection rounds on node 1", timeout=120)
        left = {s["scope"]: s["garbage"] for s in self.status(1)["scopes"]
                if s["scope"].startswith("run:gc-") and s["garbage"]}
        self.assertEqual(left, {})
        self.assertGreaterEqual(self.counter(1, "engram_gossip_gc_dropped_total") - dropped_before,
                                SCOPES)


if __name__ == "__main__":
    unittest.main()
