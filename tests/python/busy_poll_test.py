#!/usr/bin/env python3
"""engramd --busy-poll-us (node/api/busy_poll.h): the loop looks for work a while before it
sleeps, a window that opens while requests come close together and closes when they stop.

Two nodes, set up as the quick start does (`engram init`, tests/cli/access.py), one with
--busy-poll-us BUSY_POLL_US and one without, each serving /metrics. One client gets a value
GETS times in a loop from each:

- both answer every get with the value;
- the node with the setting caught most of those gets while it looked
  (engram_busy_poll_caught_total) and spent time looking (engram_busy_poll_seconds_total);
  the node without it never looked (both 0);
- once the client stops, the node with the setting does not keep looking: its CPU time
  (/proc/PID/stat) over IDLE_S seconds of quiet stays under a tenth of that time (a look that
  never closed would take all of it).

Usage: busy_poll_test.py ENGRAMD ENGRAM. PYTHONPATH holds BUILD/python.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from access import Admin  # noqa: E402
from polling import eventually  # noqa: E402

import engram  # noqa: E402

ENGRAMD, ENGRAM = sys.argv[1], sys.argv[2]
del sys.argv[1:3]
BUSY_POLL_US = 2000  # wider than a Python client's time between two gets
GETS = 400
IDLE_S = 2.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, top, name, flags):
        self.dir = os.path.join(top, name)
        self.home = os.path.join(self.dir, "home")
        self.socket = f"ipc://{self.dir}/engram.sock"
        self.port = free_port()
        self.admin = Admin(ENGRAM, self.home)
        self.admin.init(os.path.join(self.dir, "data"), "a1", "alice")
        with open(os.path.join(top, name + ".log"), "ab") as log:
            self.proc = subprocess.Popen(
                [ENGRAMD, "--data", os.path.join(self.dir, "data"), "--api", self.socket,
                 "--metrics", f"127.0.0.1:{self.port}", *flags], stdout=log, stderr=log)
        eventually(lambda: self.admin.run("acl", "show", socket=self.socket).returncode == 0,
                   f"{name} answers")
        self.admin.grant(self.socket, "a1", resources=[("run:*", "read,write")], register=False)
        self.memory = engram.Memory(agent="a1", user="alice", socket=self.socket, home=self.home)

    def counters(self):
        """The node's samples from its /metrics, those of a name with labels added up."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as page:
            text = page.read().decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                name = name.split("{")[0]
                samples[name] = samples.get(name, 0) + float(value)
        return samples

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime

    def close(self):
        self.memory.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


class BusyPollTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="engram-busy-poll-")
        cls.nodes = {}
        try:
            cls.nodes["looking"] = Node(cls.dir, "looking", ["--busy-poll-us", str(BUSY_POLL_US)])
            cls.nodes["sleeping"] = Node(cls.dir, "sleeping", [])
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for node in cls.nodes.values():
            node.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def gets(self, node):
        """GETS gets of one value in a loop; node's counters once its metrics count them (the
        node makes its metrics anew at most every 2 s)."""
        node.memory.put("k", "the value", scope="run:busy")
        for _ in range(GETS):
            self.assertEqual(node.memory.get("k", scope="run:busy").text, "the value")

        def counted():
            counters = node.counters()
            return counters if counters["engram_requests_total"] > GETS else None
        return eventually(counted, "the metrics count the gets")

    def test_the_look_catches_close_requests_and_stops_when_they_do(self):
        node = self.nodes["looking"]
        counters = self.gets(node)
        self.assertGreaterEqual(counters["engram_busy_poll_caught_total"], GETS / 4, counters)
        self.assertGreater(counters["engram_busy_poll_seconds_total"], 0, counters)
        time.sleep(0.2)  # the last look after the gets ends
        before = node.cpu_seconds()
        time.sleep(IDLE_S)
        self.assertLess(node.cpu_seconds() - before, IDLE_S / 10,
                        "the node keeps looking for work with no client")

    def test_no_look_without_the_setting(self):
        counters = self.gets(self.nodes["sleeping"])
        self.assertEqual(counters["engram_busy_poll_caught_total"], 0, counters)
        self.assertEqual(counters["engram_busy_poll_seconds_total"], 0, counters)


if __name__ == "__main__":
    unittest.main()
