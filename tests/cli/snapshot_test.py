#!/usr/bin/env python3
"""Backup and restore (issue 14): `engram snapshot DIR` of a node under write load, then
`engramd --restore DIR` into a fresh data directory, in a 3-node deploy/local-cluster.sh
cluster whose nodes run with durability=async (acknowledged before the fsync: the snapshot's
checkpoint holds them: it takes the write-ahead logs, which every acknowledged write was
written to, fsynced or not, and the copy replays them when it is opened to be marked).

Checks: every write acknowledged before the snapshot command was sent is on the restored node,
read while no other node runs (so the snapshot itself held it: no peer could refill it); the
restored node writes under a new replica id; its writes after the restore, and the writes node 1
made after the snapshot (which its restored store lacks), reach every node with their values,
and all nodes end with the same version vectors, the new replica's entry among them (a reused
dot would be taken by the peers for the one they hold, and its write never seen there).
Refusals: a snapshot into an existing or a relative directory, or onto another filesystem than
the data directory's (/dev/shm, where it is one: exit 4), a restore into a data
directory that is not empty or from a directory that is no snapshot (exit 1, nothing changed).

Usage: snapshot_test.py ENGRAMD ENGRAM LOCAL_CLUSTER_SH. Ports are drawn at random.
"""
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest

import local_cluster
from polling import eventually

ENGRAMD, ENGRAM, LOCAL_CLUSTER = sys.argv[1], sys.argv[2], sys.argv[3]
SCOPE = "run:snap"


class Writer(threading.Thread):
    """Puts w0, w1, ... into SCOPE on node 1, one after the other, until stopped; acked lists
    the keys whose put was acknowledged (exit 0), in order, each appended once it was."""

    def __init__(self, test):
        super().__init__(daemon=True)
        self.test, self.acked, self.failed = test, [], []
        self.stopping = threading.Event()

    def run(self):
        i = 0
        while not self.stopping.is_set():
            out = self.test.engram(1, "put", SCOPE, f"w{i}", f"value-{i}")
            (self.acked if out.returncode == 0 else self.failed).append(f"w{i}")
            i += 1


class SnapshotTest(local_cluster.ClusterTest):
    SCRIPT, ENGRAM, SCOPE, PREFIX = LOCAL_CLUSTER, ENGRAM, SCOPE, "engram-snapshot-"
    FLAGS = "--durability async"

    def listed(self, i):
        """SCOPE's keys on node i with their values (short enough to be whole previews)."""
        out = self.engram(i, "--json", "ls", SCOPE)
        if out.returncode != 0:
            return {}
        return {item["key"]: item.get("preview") for item in json.loads(out.stdout)}

    def holds(self, i, expected):
        listed = self.listed(i)
        return all(listed.get(key) == value for key, value in expected.items())

    def test_snapshot_under_load_then_restore_into_the_cluster(self):
        snap = os.path.join(self.dir, "snap")
        writer = Writer(self)
        writer.start()
        eventually(lambda: len(writer.acked) >= 20, "the writer's first writes")
        before = list(writer.acked)  # acknowledged before the snapshot command was sent
        began = time.monotonic()
        out = self.admin.run("snapshot", snap, socket=self.api(1))
        took = time.monotonic() - began
        self.assertEqual(out.returncode, 0, out.stderr)
        eventually(lambda: len(writer.acked) >= len(before) + 10, "writes after the snapshot")
        writer.stopping.set()
        writer.join()
        self.assertEqual(writer.failed, [], "no write refused while the snapshot was taken")
        print(f"snapshot of node 1 in {took:.2f} s (command to answer) under load; "
              f"{len(before)} writes acknowledged before it, {len(writer.acked)} in all",
              file=sys.stderr)
        self.assertEqual(os.stat(snap).st_mode & 0o777, 0o700)

        # refused: the same directory again, a relative one; nothing written
        out = self.admin.run("snapshot", snap, socket=self.api(1))
        self.assertEqual(out.returncode, 4, out.stderr)
        self.assertIn("exists", out.stderr)
        out = self.admin.run("snapshot", "relative/snap", socket=self.api(1))
        self.assertEqual(out.returncode, 4, out.stderr)
        self.assertIn("absolute path", out.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "relative")))
        # another filesystem than the data directory's (tables are linked, never copied)
        other = "/dev/shm"
        if os.path.isdir(other) and os.stat(other).st_dev != os.stat(self.dir).st_dev:
            elsewhere = os.path.join(other, f"engram-snap-{os.getpid()}")
            out = self.admin.run("snapshot", elsewhere, socket=self.api(1))
            self.assertEqual(out.returncode, 4, out.stderr)
            self.assertIn("filesystem and mount of the data directory", out.stderr)
            self.assertFalse(os.path.exists(elsewhere))

        every = {key: "value-" + key[1:] for key in writer.acked}
        for i in (2, 3):
            eventually(lambda: self.holds(i, every), f"node {i} holds node 1's writes")
        old_replica = self.stats(1, "replica_id")
        for i in (1, 2, 3):
            self.stop(i)

        # a restore refuses a data directory that holds anything, and a non-snapshot
        n2_data = os.path.join(self.dir, "n2", "data")
        n2_files = sorted(os.listdir(n2_data))
        out = subprocess.run([ENGRAMD, "--data", n2_data, "--restore", snap, "--api",
                              f"ipc://{self.dir}/spare.sock"], capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("is not empty", out.stderr)
        self.assertEqual(sorted(os.listdir(n2_data)), n2_files)
        spare = os.path.join(self.dir, "spare")
        out = subprocess.run([ENGRAMD, "--data", spare, "--restore", os.path.join(self.dir, "home"),
                              "--api", f"ipc://{self.dir}/spare.sock"], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("is not a snapshot", out.stderr)
        self.assertFalse(os.path.exists(spare))

        # node 1 from the snapshot, alone: what it holds came from the snapshot
        n1_data = os.path.join(self.dir, "n1", "data")
        shutil.rmtree(n1_data)
        cmdline = os.path.join(self.dir, "n1", "cmdline")
        with open(cmdline) as f:
            line = f.read().strip()
        with open(cmdline, "w") as f:
            f.write(f"{line} --restore {snap}\n")
        self.restart(1)
        with open(cmdline, "w") as f:  # later starts run on the restored data
            f.write(line + "\n")
        listed = self.listed(1)
        missing = [key for key in before if listed.get(key) != "value-" + key[1:]]
        self.assertEqual(missing, [], "acknowledged before the snapshot, absent after restore")
        log = self.log(1)
        self.assertIn("engramd: restored", log)
        self.assertIn("the data directory is a restored checkpoint", log)
        self.assertNotEqual(self.stats(1, "replica_id"), old_replica)
        alone = {f"alone{k}": f"a-{k}" for k in range(5)}
        for key, value in alone.items():
            out = self.engram(1, "put", SCOPE, key, value)
            self.assertEqual(out.returncode, 0, out.stderr)

        # the cluster again: node 1's lost writes come back, its new ones reach everyone
        for i in (2, 3):
            self.restart(i)
        after = {f"after{k}": f"b-{k}" for k in range(20)}
        for key, value in after.items():
            out = self.engram(1, "put", SCOPE, key, value)
            self.assertEqual(out.returncode, 0, out.stderr)
        everything = dict(every, **alone, **after)
        for i in (1, 2, 3):
            eventually(lambda: self.holds(i, everything), f"node {i} holds every write")
        eventually(lambda: self.vectors(1) == self.vectors(2) == self.vectors(3),
                   "equal version vectors")
        # the snapshot carried DATA/members: the restored node asked its members about its dots
        # (none answered while alone, so it renewed its replica id once more)
        self.assertIn("cannot prove its dot counters current", self.log(1))
        new_replica = self.stats(1, "replica_id")
        self.assertNotEqual(new_replica, old_replica)
        self.assertIn(f"{new_replica}:", self.vectors(2)[SCOPE])
        self.assertIn(f"{old_replica}:", self.vectors(2)[SCOPE])


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
