#!/usr/bin/env python3
"""deploy/run.sh, the README's main command, against the build: the three-node demo runs to
its end (exit 0; its own waits fail it when replication, a denial or a revocation does not
come within 30 s) and says what its story promises:

- the writer on node 2 is refused the researcher's notebook (exit 6);
- the writer on node 2 reads the blackboard after the researcher's causal token;
- the writer's search on node 2 finds both the researcher's finding (CLI, node 1) and the
  reviewer's constraints (MCP, node 3);
- the knowledge graph opened on node 2 holds the observations made through MCP on nodes 1
  and 3;
- node 1's cluster status names its status page, and its /readyz says ready.

Usage: demo_test.py RUN_SH BIN_DIR. The demo runs with ENGRAM_BIN=BIN_DIR (no install, no
build) on a base port with every port it uses free, its data in a directory of the test's own
(ENGRAM_DEMO_DIR), stopped and removed at the end whatever happened.
"""
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

RUN_SH, BIN_DIR = sys.argv[1], sys.argv[2]
LOCAL_CLUSTER = os.path.join(os.path.dirname(RUN_SH), "local-cluster.sh")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
import local_cluster  # noqa: E402 (tests/cli's, found through the line above: port_free)
NODES = 3


def free_base():
    """A base port whose gossip, introduction and metrics ports (local-cluster.sh) are free."""
    for _ in range(50):
        base = random.randrange(20000, 59000, 100)
        if all(local_cluster.port_free(base + 10 * i + off)
               for i in range(1, NODES + 1) for off in (0, 1, 2)):
            return base
    raise RuntimeError("no free ports for the demo")


def after(output, command_pattern):
    """The lines output printed after the echoed command (`+ ...`) matching command_pattern, up
    to the next echoed command or heading."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("+ ") and re.search(command_pattern, line):
            block = []
            for follow in lines[i + 1:]:
                if follow.startswith("+ ") or follow.startswith("\x1b[1m"):
                    break
                block.append(follow)
            return "\n".join(block)
    raise AssertionError(f"the demo never ran {command_pattern!r}:\n{output[-3000:]}")


class DemoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # the demo's data in a directory of the test's own, so that its nodes are stopped
        # and it is removed even when the demo is killed at the timeout (run.sh's own cleanup
        # then never runs)
        cls.dir = tempfile.mkdtemp(prefix="engram-demo-test-")
        cls.env = dict(os.environ, ENGRAM_BIN=BIN_DIR, ENGRAM_BASE_PORT=str(free_base()),
                       ENGRAM_DEMO_DIR=cls.dir)
        cls.run_ = subprocess.run(["bash", RUN_SH], env=cls.env, capture_output=True,
                                  text=True, timeout=500)
        cls.out = cls.run_.stdout

    @classmethod
    def tearDownClass(cls):
        subprocess.run([LOCAL_CLUSTER, "stop", cls.dir], env=cls.env, capture_output=True,
                       timeout=120)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_runs_to_its_end(self):
        self.assertEqual(self.run_.returncode, 0,
                         f"deploy/run.sh failed:\n{self.out[-3000:]}\n{self.run_.stderr[-3000:]}")
        self.assertRegex(self.out, r"\+ deploy/local-cluster.sh stop ")

    def test_notebook_refused(self):
        refused = after(self.out, r"--agent writer .* get agent:researcher plan$")
        self.assertIn("exit 6", refused)

    def test_token_read_sees_the_draft(self):
        self.assertEqual(after(self.out, r"--agent writer .* get run:q3-proposal draft --after "),
                         "Q3: churn down, EU up")

    def test_search_finds_cli_and_mcp_writes(self):
        found = after(self.out, r"--agent writer .* search 'client requirements and format'")
        self.assertRegex(found, r"run:q3-proposal client-needs researcher Client needs")
        self.assertRegex(found, r"run:q3-proposal format-constraints reviewer Output format")

    def test_graph_edited_from_two_hosts(self):
        graph = after(self.out, r"--agent writer .* mcp --scope run:q3-proposal")
        self.assertIn("wants the executive summary first", graph)
        self.assertIn("decks use the Acme template", graph)

    def test_status_names_the_page(self):
        status = after(self.out, r" cluster status$")
        self.assertRegex(status, r"(?m)^status page: http://127\.0\.0\.1:\d+/$")

    def test_ready(self):
        self.assertIn('"ready":true', after(self.out, r"http_get http://127.0.0.1:\d+/readyz$"))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
