#!/usr/bin/env python3
"""A replica's fsyncs (issue 13): a node that only applies what its peers push does not fsync
once a push, but once a tick, before the acks that tell the origin it holds them
(node/api/server.h, "Group commit").

In a 3-node deploy/local-cluster.sh cluster (durability=sync, the default), node 1 imports
WRITES objects one put after another, each pushed on its own; once nodes 2 and 3 hold them all
and node 1 knows it from their acks, their WAL fsyncs (engram_wal_syncs_total, from their
/metrics) number far fewer than the pushes they applied (engram_gossip_pushes_applied_total):
with an fsync per push they would be about equal. Node 1 fsyncs what its agent wrote before
each answer, as ever: its syncs are at least its group commits.

Usage: replica_sync_test.py ENGRAMD ENGRAM LOCAL_CLUSTER_SH. Ports are drawn at random.
"""
import json
import os
import sys
import tempfile
import unittest
import urllib.request

import local_cluster
from polling import eventually

ENGRAMD, ENGRAM, LOCAL_CLUSTER = sys.argv[1], sys.argv[2], sys.argv[3]
del sys.argv[1:4]
WRITES = 400


class ReplicaSyncTest(local_cluster.ClusterTest):
    SCRIPT, ENGRAM, SCOPE, PREFIX = LOCAL_CLUSTER, ENGRAM, "run:replicated", "engram-rsync-"

    def counters(self, i):
        """Node i's unlabelled samples from its /metrics (local-cluster.sh: base + 10 i + 2)."""
        url = f"http://127.0.0.1:{self.cluster.base + 10 * i + 2}/metrics"
        with urllib.request.urlopen(url, timeout=30) as page:
            text = page.read().decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#") and "{" not in line:
                name, value = line.split()[:2]
                samples[name] = float(value)
        return samples

    def holds_all(self, i):
        out = self.engram(i, "get", self.SCOPE, f"k{WRITES - 1}")
        return out.returncode == 0 and f"value {WRITES - 1}" in out.stdout

    def acked_by_all(self):
        out = self.engram(1, "--json", "cluster", "status")
        self.assertEqual(out.returncode, 0, out.stderr)
        members = [m for m in json.loads(out.stdout)["members"] if m["state"] != "self"]
        return len(members) == 2 and all(m["lag_ops"] == 0 for m in members)

    def test_replicas_sync_once_a_tick_not_once_a_push(self):
        before = {i: self.counters(i) for i in (1, 2, 3)}
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
        eventually(lambda: self.holds_all(2) and self.holds_all(3),
                   "nodes 2 and 3 hold every write", timeout=60)
        eventually(self.acked_by_all, "node 1 knows they hold them (acks)", timeout=60)

        def pushes(counters):
            return sum(counters[i]["engram_gossip_pushes_applied_total"]
                       - before[i]["engram_gossip_pushes_applied_total"] for i in (2, 3))

        def counted():  # a node makes its metrics at most once per API_OBSERVE_REFRESH_MS
            now = {i: self.counters(i) for i in (1, 2, 3)}
            return now if pushes(now) >= WRITES else None

        after = eventually(counted, "the replicas' metrics count the pushes", timeout=60)
        pushed = pushes(after)
        syncs = sum(after[i]["engram_wal_syncs_total"] - before[i]["engram_wal_syncs_total"]
                    for i in (2, 3))
        # one put at a time, each pushed to both (fanout 2): with an fsync per push the
        # replicas would sync about as often as they applied
        self.assertGreaterEqual(syncs, 2, (pushed, syncs))  # each acked after its sync
        self.assertLess(syncs, pushed / 4, (pushed, syncs))
        # the writer's node syncs before it answers: a sync per group commit at least
        commits = (after[1]["engram_group_commit_writes_count"]
                   - before[1]["engram_group_commit_writes_count"])
        self.assertGreaterEqual(commits, 1)
        self.assertGreaterEqual(after[1]["engram_wal_syncs_total"]
                                - before[1]["engram_wal_syncs_total"], commits)

if __name__ == "__main__":
    unittest.main()
