#!/usr/bin/env python3
"""Writes waiting for their replicas are bounded (issue 13's review): a node keeps at most
ENGRAM_MAX_REPLICA_WAITS writes acknowledged here that wait for more nodes (put --replicas N),
and refuses one more with ENGRAM_EBUSY before making it, serving on.

In a 3-node deploy/local-cluster.sh cluster with nodes 2 and 3 stopped (members that have not
left, so they could still hold a write), one connection to node 1 sends MORE puts of distinct
keys, each waiting 60 s for 2 replicas, without waiting for any answer (a DEALER with the
agent's CURVE keys, as libengram's). The first ENGRAM_MAX_REPLICA_WAITS wait; those past it
are answered at once with EBUSY (a turn's writes may pass the bound by max_batch, so at least
MORE - max_batch of them). Meanwhile node 1 answers another client, and a refused key was not
written.

Usage: replica_waits_test.py ENGRAMD ENGRAM LOCAL_CLUSTER_SH.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
import local_cluster  # noqa: E402 (tests/cli's, found through the line above)
from engram_proto import api_pb2  # noqa: E402

ENGRAMD, ENGRAM, LOCAL_CLUSTER = sys.argv[1], sys.argv[2], sys.argv[3]
del sys.argv[1:4]
MAX_REPLICA_WAITS = 4096  # include/engram/limits.h
MAX_BATCH = 32            # engramd's default --max-batch
MORE = 100
EBUSY = -19


class ReplicaWaitsTest(local_cluster.ClusterTest):
    SCRIPT, ENGRAM, SCOPE, PREFIX = LOCAL_CLUSTER, ENGRAM, "run:waits", "engram-waits-"

    def test_writes_waiting_for_replicas_are_bounded(self):
        self.stop(2)
        self.stop(3)
        sock = self.dealer(1)
        try:
            total = MAX_REPLICA_WAITS + MORE
            for i in range(total):
                request = api_pb2.Request(
                    schema_major=1, id=i + 1, op=api_pb2.PUT, agent="tester", user="alice",
                    scope=self.SCOPE, key=f"w{i}", value=b"v", replicas=2, timeout_ms=60000)
                sock.send(request.SerializeToString())
            refused = {}
            deadline = time.monotonic() + 120
            while len(refused) < MORE - MAX_BATCH and time.monotonic() < deadline:
                if not sock.poll(1000):
                    continue
                reply = api_pb2.Reply.FromString(sock.recv())
                self.assertEqual(reply.code, EBUSY, reply.message)  # the others wait
                refused[reply.id] = reply.message
            self.assertGreaterEqual(len(refused), MORE - MAX_BATCH)
            self.assertTrue(all(i > MAX_REPLICA_WAITS for i in refused), sorted(refused)[:5])
            self.assertIn("wait for their replicas", next(iter(refused.values())))
            # the node serves on, and a refused write was not made
            out = self.engram(1, "get", self.SCOPE, "w0")
            self.assertEqual(out.returncode, 0, out.stderr)
            out = self.engram(1, "get", self.SCOPE, f"w{max(refused) - 1}")
            self.assertEqual(out.returncode, 3, out.stdout + out.stderr)
        finally:
            sock.close()


if __name__ == "__main__":
    unittest.main()
