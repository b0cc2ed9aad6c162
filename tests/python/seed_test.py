#!/usr/bin/env python3
"""The seed scenario through the Python client: three agents of one user on three nodes share
a run's memory. The researcher (node 1) and the editor (node 3) add what they learned to
run:q3-proposal; the writer (node 2) searches "client requirements and format" and finds
both, with their authors, once its node has seen their writes (their causal tokens as
``after=``); the editor reads the writer's draft, by the writer; a scope none of them was
granted is denied, on every node.

Usage: seed_test.py ENGRAMD ENGRAM LOCAL_CLUSTER_SH. The cluster is deploy/local-cluster.sh's
(3 nodes, agents registered with its `agent` command); its gossip ports are drawn at random
and drawn again while one is taken. PYTHONPATH holds BUILD/python.
"""
import os
import shutil
import subprocess
import sys
import unittest

import engram

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
import local_cluster  # noqa: E402 (tests/cli's, found through the line above)

ENGRAMD, ENGRAM, LOCAL_CLUSTER = sys.argv[1], sys.argv[2], sys.argv[3]
del sys.argv[1:4]
SCOPE = "run:q3-proposal"
NODES = 3
AGENTS = {"researcher": 1, "writer": 2, "editor": 3}  # agent: the node it talks to


class SeedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = None
        cls.memories = {}
        try:
            cls.start_cluster()
            for name, node in AGENTS.items():
                cls.cluster("agent", cls.dir, str(node), name, "alice", SCOPE)
            # a read may wait up to 30 s for a token from another node (a loaded machine)
            cls.memories = {name: engram.Memory(agent=name, user="alice", socket=cls.api(node),
                                                home=os.path.join(cls.dir, "home"),
                                                after_timeout=30)
                            for name, node in AGENTS.items()}
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_cluster(cls):
        cluster = local_cluster.start(LOCAL_CLUSTER, os.path.dirname(ENGRAMD), NODES,
                                      "engram-pyseed-")
        cls.dir, cls.env = cluster.dir, cluster.env

    @classmethod
    def stop_cluster(cls):
        subprocess.run([LOCAL_CLUSTER, "stop", cls.dir], env=cls.env, timeout=120)
        shutil.rmtree(cls.dir, ignore_errors=True)
        cls.dir = None

    @classmethod
    def tearDownClass(cls):
        for m in cls.memories.values():
            m.close()
        if cls.dir:
            cls.stop_cluster()

    @classmethod
    def cluster(cls, *args):
        out = subprocess.run([LOCAL_CLUSTER, *args], env=cls.env, capture_output=True,
                             text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"local-cluster.sh {' '.join(args)}: {out.stderr}")

    @classmethod
    def api(cls, node):
        return f"ipc://{cls.dir}/n{node}/api.sock"

    def test_1_writer_finds_what_researcher_and_editor_learned(self):
        researcher, writer, editor = (self.memories[n] for n in ("researcher", "writer",
                                                                 "editor"))
        found = researcher.add("Client requirements: the proposal covers the Q3 budget, the "
                               "timeline and the staffing plan", scope=SCOPE,
                               metadata={"kind": "requirement"})
        rules = editor.add("Format constraints: at most two pages, PDF, British spelling",
                           scope=SCOPE, metadata={"kind": "format"})
        # node 2 has seen the researcher's write once this answers, then the editor's
        self.assertEqual(writer.get(found.id, scope=SCOPE, after=found).author, "researcher")
        hits = writer.search("client requirements and format", scope=SCOPE, after=rules)
        by_key = {hit.key: hit for hit in hits}
        self.assertIn(found.id, by_key)
        self.assertIn(rules.id, by_key)
        self.assertEqual((by_key[found.id].author, by_key[rules.id].author),
                         ("researcher", "editor"))
        for hit, kind in ((by_key[found.id], "requirement"), (by_key[rules.id], "format")):
            self.assertEqual((hit.scope, hit.user, hit.metadata["kind"]), (SCOPE, "alice", kind))
        self.assertTrue(by_key[rules.id].text.startswith("Format constraints"))
        # a filter on the author keeps only the editor's
        theirs = writer.search("client requirements and format", scope=SCOPE,
                               filters={"author": "editor"})
        self.assertEqual([hit.key for hit in theirs], [rules.id])
        # the context block names each memory's author
        block = writer.context("client requirements and format", tokens=400, scope=SCOPE)
        self.assertIn("researcher", block.text)
        self.assertIn("editor", block.text)

    def test_2_editor_reads_the_writers_draft(self):
        writer, editor = self.memories["writer"], self.memories["editor"]
        draft = writer.put("draft", "Q3 proposal, draft 1: budget, timeline, staffing",
                           scope=SCOPE, metadata={"status": "draft"}, replicas=NODES,
                           replicas_timeout=60)
        self.assertEqual(draft.replicas, NODES)  # answered once every node held it
        got = editor.get("draft", scope=SCOPE, after=draft)
        self.assertEqual((got.text, got.author, got.item.user),
                         ("Q3 proposal, draft 1: budget, timeline, staffing", "writer", "alice"))
        self.assertEqual(got.metadata, {"status": "draft"})
        # the editor revises it against the version it read; the writer sees the revision
        revised = editor.update("draft", "Q3 proposal, draft 2 (edited)", scope=SCOPE,
                                expected_version=got)
        mine = writer.get("draft", scope=SCOPE, after=revised)
        self.assertEqual((mine.text, mine.author), ("Q3 proposal, draft 2 (edited)", "editor"))
        steps = writer.history("draft", scope=SCOPE, after=revised)
        self.assertEqual([(s.op, s.author) for s in steps], [("put", "writer"), ("put", "editor")])

    def test_3_a_scope_not_granted_is_denied(self):
        for name, m in self.memories.items():
            with self.assertRaises(engram.Denied, msg=name) as raised:
                m.add("not here", scope="run:q4-secret")
            self.assertEqual(raised.exception.code, -18)
            with self.assertRaises(engram.Denied, msg=name):
                m.get("draft", scope="run:q4-secret")
            # nor may the agent act for another user
            stranger = engram.Memory(agent=name, user="bob", socket=m.socket, home=m.home)
            try:
                with self.assertRaises(engram.Denied, msg=name):
                    stranger.get("draft", scope=SCOPE)
            finally:
                stranger.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
