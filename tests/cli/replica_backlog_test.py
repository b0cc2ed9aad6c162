#!/usr/bin/env python3
"""A replica behind its peers, and the scheduling of engramd's threads (issue 13).

A turn of engramd's loop reads at most max_batch gossip messages, as it reads at most max_batch
requests (node/api/server.h): a replica with a backlog of pushes applies it over several turns,
each of which sends the events and replies of what it applied, instead of applying all of it
before sending any. In a 3-node deploy/local-cluster.sh cluster whose nodes run --max-batch
MAX_BATCH (and --gossip-hold-ms 0), node 2 is stopped (SIGSTOP) while node 1 imports WRITES
objects, one put after another, each pushed on its own (to a SUSPECT member too, so a stop
shorter than SWIM's way to DEAD keeps them coming); node 2 then goes on with a backlog of
pushes waiting on its gossip socket. Once it holds every import, its
engram_gossip_messages_per_turn histogram (its /metrics) shows at least WRITES / (2 MAX_BATCH)
more turns that read MAX_BATCH / 2 + 1 to MAX_BATCH messages, the backlog's, and none that read
more.

ZeroMQ's I/O threads of every node run SCHED_BATCH (node/daemon/engramd.c: a reply or delta
the loop hands them does not preempt the loop) when engramd starts under SCHED_OTHER, the loop
itself the policy it started with; started under another policy (chrt, systemd's
CPUSchedulingPolicy), every thread keeps that one and the node serves (libzmq aborts a
process whose thread cannot take the policy asked for: SCHED_BATCH from SCHED_FIFO is one).

Usage: replica_backlog_test.py ENGRAMD ENGRAM LOCAL_CLUSTER_SH [TEST ...] (unittest's names:
ReplicaBacklogTest, HostPolicyTest; ctest runs them as replica_backlog and host_policy). Ports
are drawn at random.
"""
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import local_cluster
from polling import eventually

ENGRAMD, ENGRAM, LOCAL_CLUSTER = sys.argv[1:4]
del sys.argv[1:4]
MAX_BATCH = 4
WRITES = 200
HISTOGRAM = "engram_gossip_messages_per_turn"


def thread_policies(pid):
    """{tid: (name, scheduling policy)} of process pid's threads (a thread that ends while
    they are read is left out)."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                threads[int(tid)] = (f.read().strip(), os.sched_getscheduler(int(tid)))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return threads


class ReplicaBacklogTest(local_cluster.ClusterTest):
    SCRIPT, ENGRAM, SCOPE, PREFIX = LOCAL_CLUSTER, ENGRAM, "run:backlog", "engram-backlog-"
    FLAGS = f"--max-batch {MAX_BATCH} --gossip-hold-ms 0"  # a push a write

    def histogram(self, i):
        """Node i's HISTOGRAM buckets from its /metrics: {le: cumulative count}, le "+Inf"
        included."""
        text = self.http(i, "/metrics")
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

    def refreshed(self, i, seen):
        """Node i's histogram from metrics made after a page whose +Inf count was seen (a
        node makes its metrics at most once per API_OBSERVE_REFRESH_MS; gossip flows all the
        time, acks and digests, so a newer page counts more turns)."""
        def newer():
            now = self.histogram(i)
            return now if now["+Inf"] > seen else None
        return eventually(newer, f"node {i}'s metrics made anew", timeout=60)

    def test_a_backlog_is_applied_a_turn_of_max_batch_at_a_time(self):
        before = self.refreshed(2, self.histogram(2)["+Inf"])
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            for k in range(WRITES):
                f.write(json.dumps({"scope": self.SCOPE, "key": f"k{k}", "type": "reg",
                                    "values": [{"value": f"value {k}"}]}) + "\n")
            path = f.name
        os.kill(self.pid(2), signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            out = self.engram(1, "import", path, self.SCOPE)
        finally:
            os.kill(self.pid(2), signal.SIGCONT)
            os.unlink(path)
        stopped = time.monotonic() - stopped
        self.assertEqual(out.returncode, 0, out.stderr)
        eventually(lambda: self.holds_all(2), "node 2 holds every write", timeout=60)
        # twice made anew: node 2 may hold the last write (through node 3) before the last
        # of node 1's stream is read
        after = self.refreshed(2, self.refreshed(2, self.histogram(2)["+Inf"])["+Inf"])

        def turns(low, high):  # turns since before that read low+1..high messages
            return (after[high] - after[low]) - (before[high] - before[low])

        over, full = turns(str(MAX_BATCH), "+Inf"), turns(str(MAX_BATCH // 2), str(MAX_BATCH))
        print(f"node 2, stopped {stopped:.1f} s: {after['+Inf'] - before['+Inf']:.0f} turns "
              f"read gossip, {full:.0f} of them {MAX_BATCH // 2 + 1}-{MAX_BATCH} messages",
              file=sys.stderr)
        self.assertEqual(over, 0, f"turns that read more than {MAX_BATCH} messages: {after}")
        self.assertGreaterEqual(full, WRITES // (2 * MAX_BATCH),
                                f"too few turns read {MAX_BATCH} messages (no backlog?): {after}")

    def test_zeromq_threads_run_sched_batch_and_the_loop_not(self):
        runner = os.sched_getscheduler(0)  # local-cluster.sh's engramd inherit it
        if runner != os.SCHED_OTHER:
            self.skipTest(f"the tests run under scheduling policy {runner}")
        for i in range(1, self.NODES + 1):
            pid = self.pid(i)
            threads = thread_policies(pid)
            io = [t for t, (name, _) in threads.items() if name.startswith("ZMQbg/IO/")]
            self.assertGreaterEqual(len(io), 1, f"node {i} has no ZeroMQ I/O thread: {threads}")
            for tid, (name, policy) in threads.items():
                with self.subTest(node=i, thread=name):
                    if name.startswith("ZMQbg/"):
                        self.assertEqual(policy, os.SCHED_BATCH)
                    elif tid == pid:  # the loop
                        self.assertEqual(policy, os.SCHED_OTHER)


class HostPolicyTest(unittest.TestCase):
    """A lone engramd started under SCHED_FIFO, SCHED_IDLE or SCHED_BATCH serves, every
    thread under that policy, and stops cleanly. Run alone (its own ctest entry, RUN_SERIAL):
    a SCHED_IDLE process gets next to no CPU beside busy tests."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="engram-policy-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "engramd.log")
        env = dict(os.environ, ENGRAM_HOME=os.path.join(self.dir, "home"))
        out = subprocess.run([ENGRAM, "init", "--data", self.data], env=env,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def serves_under(self, policy, priority):
        def take_policy():  # in the child, before engramd runs
            # a real-time engramd that spun would get SIGXCPU, not hold a core
            resource.setrlimit(resource.RLIMIT_RTTIME, (10_000_000, 15_000_000))
            os.sched_setscheduler(0, policy, os.sched_param(priority))
        sock = os.path.join(self.dir, "api.sock")
        with open(self.log, "ab") as log:
            try:
                proc = subprocess.Popen([ENGRAMD, "--data", self.data, "--api",
                                         f"ipc://{sock}"], stdout=log, stderr=log,
                                        preexec_fn=take_policy)
            except subprocess.SubprocessError:  # the child may not take it (no privilege)
                self.skipTest(f"policy {policy} needs a privilege this process lacks")
        try:
            def io_thread():
                if proc.poll() is not None:
                    with open(self.log, errors="replace") as f:
                        raise AssertionError(f"engramd exited with {proc.returncode}: "
                                             f"{f.read()[-2000:]}")
                threads = thread_policies(proc.pid)
                up = os.path.exists(sock) and any(
                    name.startswith("ZMQbg/IO/") for name, _ in threads.values())
                return threads if up else None
            threads = eventually(io_thread, "engramd binds its API", timeout=30)
            for tid, (name, got) in threads.items():
                with self.subTest(policy=policy, thread=name):
                    self.assertEqual(got, policy)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
        self.assertEqual(code, 0)

    def test_fifo(self):
        self.serves_under(os.SCHED_FIFO, 1)

    def test_idle(self):
        self.serves_under(os.SCHED_IDLE, 0)

    def test_batch(self):
        self.serves_under(os.SCHED_BATCH, 0)


if __name__ == "__main__":
    unittest.main()
