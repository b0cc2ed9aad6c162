#!/usr/bin/env python3
"""A replica behind its peers, and the loop's threads (issue 13).

A turn of engramd's loop reads at most max_batch gossip messages, as it reads at most
max_batch requests (node/api/server.h): a replica with a backlog of pushes applies it over
several turns, each of which sends the events and replies of what it applied, instead of
applying all of it before sending any. In a 3-node deploy/local-cluster.sh cluster whose
nodes run --max-batch MAX_BATCH, node 2 is stopped (SIGSTOP) while node 1 imports WRITES
objects, one put after another, each pushed on its own; node 2 then goes on with a backlog of
pushes waiting on its gossip socket. Once it holds every import, its
engram_gossip_messages_per_turn histogram (its /metrics) shows turns that read MAX_BATCH
messages, the backlog's, and none that read more.

ZeroMQ's I/O threads of every node run SCHED_BATCH (node/daemon/engramd.c: a reply or delta
the loop hands them does not preempt the loop), the loop itself the default policy.

Usage: replica_backlog_test.py ENGRAMD ENGRAM LOCAL_CLUSTER_SH. Ports are drawn at random.
"""
import json
import os
import signal
import sys
import tempfile
import unittest
import urllib.request

import local_cluster
from polling import eventually

ENGRAMD, ENGRAM, LOCAL_CLUSTER = sys.argv[1:4]
del sys.argv[1:4]
MAX_BATCH = 4
WRITES = 300
HISTOGRAM = "engram_gossip_messages_per_turn"


class ReplicaBacklogTest(local_cluster.ClusterTest):
    SCRIPT, ENGRAM, SCOPE, PREFIX = LOCAL_CLUSTER, ENGRAM, "run:backlog", "engram-backlog-"
    FLAGS = f"--max-batch {MAX_BATCH}"

    def pid(self, i):
        with open(os.path.join(self.dir, f"n{i}", "pid")) as f:
            return int(f.read())

    def histogram(self, i):
        """Node i's HISTOGRAM buckets from its /metrics (local-cluster.sh: base + 10 i + 2):
        {le: cumulative count}, le "+Inf" included."""
        url = f"http://127.0.0.1:{self.cluster.base + 10 * i + 2}/metrics"
        with urllib.request.urlopen(url, timeout=30) as page:
            text = page.read().decode()
        buckets = {}
        prefix = HISTOGRAM + '_bucket{le="'
        for line in text.splitlines():
            if line.startswith(prefix):
                le, value = line[len(prefix):].split('"}')
                buckets[le] = float(value)
        self.assertIn("+Inf", buckets, text[-2000:])
        return buckets

    def holds_all(self, i):
        out = self.engram(i, "get", self.SCOPE, f"k{WRITES - 1}")
        return out.returncode == 0 and f"value {WRITES - 1}" in out.stdout

    def test_a_backlog_is_applied_a_turn_of_max_batch_at_a_time(self):
        before = self.histogram(2)
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            for k in range(WRITES):
                f.write(json.dumps({"scope": self.SCOPE, "key": f"k{k}", "type": "reg",
                                    "values": [{"value": f"value {k}"}]}) + "\n")
            path = f.name
        os.kill(self.pid(2), signal.SIGSTOP)
        try:
            out = self.engram(1, "import", path, self.SCOPE)
        finally:
            os.kill(self.pid(2), signal.SIGCONT)
            os.unlink(path)
        self.assertEqual(out.returncode, 0, out.stderr)
        eventually(lambda: self.holds_all(2), "node 2 holds every write", timeout=60)
        # metrics made after that (at most once per API_OBSERVE_REFRESH_MS): a turn more,
        # gossip flows all the time (acks, digests)
        seen = self.histogram(2)["+Inf"]

        def refreshed():
            now = self.histogram(2)
            return now if now["+Inf"] > seen else None

        after = eventually(refreshed, "node 2's metrics made after it held every write",
                           timeout=60)

        def turns(buckets, low, high):  # turns that read low+1..high messages
            return buckets[high] - buckets[low]

        over = turns(after, str(MAX_BATCH), "+Inf") - turns(before, str(MAX_BATCH), "+Inf")
        full = turns(after, str(MAX_BATCH // 2), str(MAX_BATCH)) - \
            turns(before, str(MAX_BATCH // 2), str(MAX_BATCH))
        self.assertEqual(over, 0, f"turns that read more than {MAX_BATCH} messages: {after}")
        self.assertGreater(full, 0, f"no turn read {MAX_BATCH} messages (no backlog?): {after}")
        print(f"node 2: {after['+Inf'] - before['+Inf']:.0f} turns read gossip, {full:.0f} of "
              f"them {MAX_BATCH // 2 + 1}-{MAX_BATCH} messages", file=sys.stderr)

    def test_zeromq_threads_run_sched_batch_and_the_loop_not(self):
        for i in range(1, self.NODES + 1):
            pid = self.pid(i)
            io_threads = 0
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    name = f.read().strip()
                policy = os.sched_getscheduler(int(tid))
                with self.subTest(node=i, thread=name):
                    if name.startswith("ZMQbg/"):
                        io_threads += name.startswith("ZMQbg/IO/")
                        self.assertEqual(policy, os.SCHED_BATCH)
                    elif int(tid) == pid:  # the loop
                        self.assertEqual(policy, os.SCHED_OTHER)
            self.assertGreaterEqual(io_threads, 1, f"node {i} has no ZeroMQ I/O thread")


if __name__ == "__main__":
    unittest.main()
