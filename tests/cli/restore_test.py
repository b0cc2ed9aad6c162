#!/usr/bin/env python3
"""Dot safety through a restore from a plain copy (issue 4): a node's data directory copied
while it was stopped, the node run on and written to, then put back from the copy. Its dot
counters are now behind what its peers have seen of its replica: a write issuing one of those
dots again would be taken by the peers for the one they already hold and never reach them.
engramd holds shared writes after a restart until its members answered its digests (their
answers carry the lost dots, so its counters move past them), or takes a new replica id.

Checks, on a 3-node deploy/local-cluster.sh cluster: the writes made right after the restore
reach every node with their values, the writes made between copy and restore come back to the
restored node, and every node ends with the same version vector; a node restarted while no
member answers, or without its list of members, writes under a new replica id.

Usage: restore_test.py ENGRAMD ENGRAM LOCAL_CLUSTER_SH. Ports are drawn at random. The cluster's
admin (DIR/home) registers agent tester for alice, with run:restore, through node 1
(tests/cli/access.py); each test starts once every node holds those statements.
"""
import os
import shutil
import sys
import unittest

import local_cluster
from polling import eventually

ENGRAMD, ENGRAM, LOCAL_CLUSTER = sys.argv[1], sys.argv[2], sys.argv[3]
WRITES = 20


class RestoreTest(local_cluster.ClusterTest):
    SCRIPT, ENGRAM, SCOPE, PREFIX = LOCAL_CLUSTER, ENGRAM, "run:restore", "engram-restore-"

    def get(self, i, key):
        out = self.engram(i, "get", "run:restore", key)
        return out.stdout.strip() if out.returncode == 0 else None

    def put(self, i, key, value):
        out = self.engram(i, "put", "run:restore", key, value)
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_writes_after_a_restore_from_a_copy_reach_everyone(self):
        self.put(2, "seed", "s")
        eventually(lambda: self.get(1, "seed") == "s", "the first write spreads")
        data = os.path.join(self.dir, "n2", "data")
        copy = os.path.join(self.dir, "n2-copy")
        self.stop(2)
        shutil.copytree(data, copy, symlinks=True)
        self.restart(2)
        for k in range(WRITES):  # written between the copy and its restore
            self.put(2, f"lost{k}", f"before-{k}")
        for i in (1, 3):
            eventually(lambda: all(self.get(i, f"lost{k}") == f"before-{k}"
                                   for k in range(WRITES)), f"node {i} holds the writes")
        self.stop(2)
        shutil.rmtree(data)
        shutil.copytree(copy, data, symlinks=True)
        self.restart(2)
        for k in range(WRITES):  # at once: each would reuse a dot of the lost writes
            self.put(2, f"new{k}", f"after-{k}")
        for i in (1, 2, 3):
            eventually(lambda: all(self.get(i, f"new{k}") == f"after-{k}" and
                                   self.get(i, f"lost{k}") == f"before-{k}"
                                   for k in range(WRITES)),
                       f"node {i} holds the writes of both runs")
        eventually(lambda: self.vectors(1) == self.vectors(2) == self.vectors(3),
                   "equal version vectors")
        log = self.log(2)
        self.assertIn("dot counters checked against", log)

    def replica(self, i):
        return self.stats(i, "replica_id")

    def test_alone_after_a_restart_takes_a_new_replica_id(self):
        # Nobody answers: the node cannot prove its counters current. Its writes wait at most
        # the check's 2 s, then go out under a new replica id, and reach the others later.
        self.put(2, "seed", "s")
        eventually(lambda: self.get(1, "seed") == "s", "the first write spreads")
        before = self.replica(2)
        for i in (1, 3, 2):
            self.stop(i)
        self.restart(2)
        self.put(2, "alone", "a")
        self.assertNotEqual(self.replica(2), before)
        log = self.log(2)
        self.assertIn("cannot prove its dot counters current", log)
        for i in (1, 3):
            self.restart(i)
        for i in (1, 3):
            eventually(lambda: self.get(i, "alone") == "a", f"node {i} gets the write")

    def test_lost_members_list_takes_a_new_replica_id(self):
        # A data directory without DATA/members (a partial copy) names nobody to ask: a node
        # that wrote to shared scopes takes a new replica id at once, and its writes spread.
        self.put(2, "seed", "s")
        eventually(lambda: self.get(1, "seed") == "s", "the first write spreads")
        before = self.replica(2)
        self.stop(2)
        os.remove(os.path.join(self.dir, "n2", "data", "members"))
        self.restart(2)
        self.assertNotEqual(self.replica(2), before)
        log = self.log(2)
        self.assertIn("its list of members is gone", log)
        self.put(2, "after", "a")
        eventually(lambda: self.get(1, "after") == "a", "the write after it spreads")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
