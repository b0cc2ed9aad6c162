#!/usr/bin/env python3
"""Gossip held while a node is busy with writes (issue 13; node/cluster/cluster.h,
node_cluster_send): a node whose turns answer writes pushes them to its peers at most once every
--gossip-hold-ms, several turns' writes in one push a peer, unless a reply waits for replicas.

In a 3-node deploy/local-cluster.sh cluster, one connection to node 1 sends BURST puts of
distinct keys without waiting for any answer (a DEALER with the agent's CURVE keys, as
libengram's), so node 1 reads them in turns of at most max_batch, one right after another. Its
/metrics then show, over the burst:

- at --gossip-hold-ms HOLD_MS: turns whose pushes waited (engram_gossip_sends_held_total) and
  fewer pushes than group commits times peers, every commit having written; nodes 2 and 3
  still get every put, with nothing more written and no digest for 10 minutes
  (--gossip-interval-ms: no pull brings them), so the held pushes leave without more writes
  (at the hold's end or the next tick: 50 ms each here, which this cannot tell apart);
- the same burst with every put waiting for 2 replicas: no turn held (such a write's push,
  and the ack it asks for, leave at once: gossip_engine_urgent);
- at --gossip-hold-ms 0: no turn held, and a push a peer for every commit at least.

Usage: gossip_hold_test.py ENGRAMD ENGRAM LOCAL_CLUSTER_SH. Ports are drawn at random.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
import local_cluster  # noqa: E402 (tests/cli's, found through the line above)
from engram_proto import api_pb2  # noqa: E402
from polling import eventually  # noqa: E402

ENGRAMD, ENGRAM, LOCAL_CLUSTER = sys.argv[1], sys.argv[2], sys.argv[3]
del sys.argv[1:4]
BURST = 320   # ten turns of engramd's default --max-batch (32) at least
HOLD_MS = 50  # the largest --gossip-hold-ms
PEERS = 2     # nodes 2 and 3 (engramd's default --fanout is 3)


class HoldTest(local_cluster.ClusterTest):
    SCRIPT, ENGRAM, SCOPE, PREFIX = LOCAL_CLUSTER, ENGRAM, "run:hold", "engram-hold-"

    def burst(self, prefix, replicas=0):
        """BURST puts of keys prefix0.. on one connection to node 1, sent before any answer is
        read; returns node 1's counters before and after, once every put was answered (the
        node makes its metrics anew at most every 2 s: the first that counts them all)."""
        sock = self.dealer(1)
        try:
            before = self.counters(1)
            for i in range(BURST):
                sock.send(api_pb2.Request(
                    schema_major=1, id=i + 1, op=api_pb2.PUT, agent="tester", user="alice",
                    scope=self.SCOPE, key=f"{prefix}{i}", value=b"v", replicas=replicas,
                    timeout_ms=60000).SerializeToString())
            self.all_answered(sock, BURST)
            writes = before["engram_writes_total"] + BURST

            def counted():
                after = self.counters(1)
                return after if after["engram_writes_total"] >= writes else None
            return before, eventually(counted, "node 1's metrics count the burst")
        finally:
            sock.close()

    def delta(self, before, after, name):
        return after[name] - before[name]

    def held_every_put(self, prefix):
        """Nodes 2 and 3 get the burst's last put, with nothing more written (and, at
        --gossip-interval-ms 600000, no digest that would make node 1 send it)."""
        for i in (2, 3):
            eventually(lambda: self.engram(i, "get", self.SCOPE, f"{prefix}{BURST - 1}")
                       .returncode == 0, f"node {i} holds the burst")


class BusyNodeHoldsGossip(HoldTest):
    FLAGS = f"--gossip-hold-ms {HOLD_MS} --gossip-interval-ms 600000"

    def test_a_burst_of_writes_is_pushed_in_fewer_pushes_than_commits(self):
        before, after = self.burst("w")
        commits = self.delta(before, after, "engram_group_commits_total")
        pushes = self.delta(before, after, "engram_gossip_pushes_sent_total")
        held = self.delta(before, after, "engram_gossip_sends_held_total")
        self.assertGreaterEqual(commits, BURST / 32, (before, after))
        self.assertGreater(held, 0, (commits, pushes))
        self.assertLess(pushes, commits * PEERS, (commits, held))
        self.held_every_put("w")

    def test_writes_waiting_for_replicas_are_never_held(self):
        before, after = self.burst("r", replicas=2)
        self.assertEqual(self.delta(before, after, "engram_gossip_sends_held_total"), 0)
        self.held_every_put("r")


class HoldOff(HoldTest):
    FLAGS = "--gossip-hold-ms 0 --gossip-interval-ms 600000"

    def test_no_hold_pushes_every_commit(self):
        before, after = self.burst("w")
        commits = self.delta(before, after, "engram_group_commits_total")
        self.assertEqual(self.delta(before, after, "engram_gossip_sends_held_total"), 0)
        self.assertGreaterEqual(self.delta(before, after, "engram_gossip_pushes_sent_total"),
                                commits * PEERS)
        self.held_every_put("w")


if __name__ == "__main__":
    unittest.main()
