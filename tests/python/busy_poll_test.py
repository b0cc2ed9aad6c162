#!/usr/bin/env python3
"""engramd --busy-poll-us (node/api/busy_poll.h): the loop looks for work a while before it
sleeps, a window that opens while requests come close together and closes when they stop.

Nodes set up as the quick start does (`engram init`, tests/cli/access.py), each serving
/metrics: "looking" with --busy-poll-us BUSY_POLL_US (and --purge-interval-ms 100: a timer
that wakes its loop while no client asks), "sleeping" without the setting. One client gets a
value GETS times in a loop from each:

- both answer every get with the value;
- the looking node caught some of those gets while it looked (engram_busy_poll_caught_total;
  most, on a quiet host) and spent time looking (engram_busy_poll_seconds_total); the
  sleeping node never looked (both 0, and its window engram_busy_poll_window_seconds 0);
- once the client stops, the looking node's window closes (the gauge falls to 0: its purge
  timer is no client), and its CPU time (/proc/PID/stat) over IDLE_S seconds of quiet stays
  under a tenth of that time (a look that ran on with no work would take all of it);
- a third node with the setting, sent SIGTERM while a client gets in a loop (its window
  open), exits at once with status 0.

Usage: busy_poll_test.py ENGRAMD ENGRAM. PYTHONPATH holds BUILD/python.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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
        self.memory.put("k", "the value", scope="run:busy")

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
            looking = ["--busy-poll-us", str(BUSY_POLL_US), "--purge-interval-ms", "100"]
            cls.nodes["looking"] = Node(cls.dir, "looking", looking)
            cls.nodes["sleeping"] = Node(cls.dir, "sleeping", [])
            cls.nodes["stopping"] = Node(cls.dir, "stopping", looking)
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
        before = node.counters()["engram_requests_total"]
        for _ in range(GETS):
            self.assertEqual(node.memory.get("k", scope="run:busy").text, "the value")

        def counted():
            counters = node.counters()
            return counters if counters["engram_requests_total"] >= before + GETS else None
        return eventually(counted, "the metrics count the gets")

    def test_the_look_catches_close_requests_and_stops_when_they_do(self):
        node = self.nodes["looking"]
        counters = self.gets(node)
        self.assertGreater(counters["engram_busy_poll_caught_total"], 0, counters)
        self.assertGreater(counters["engram_busy_poll_seconds_total"], 0, counters)
        eventually(lambda: node.counters()["engram_busy_poll_window_seconds"] == 0,
                   "the window closes once the gets stop")
        before = node.cpu_seconds()
        time.sleep(IDLE_S)
        self.assertLess(node.cpu_seconds() - before, IDLE_S / 10,
                        "the node keeps looking for work with no client")

    def test_no_look_without_the_setting(self):
        counters = self.gets(self.nodes["sleeping"])
        for name in ("engram_busy_poll_caught_total", "engram_busy_poll_seconds_total",
                     "engram_busy_poll_window_seconds"):
            self.assertEqual(counters[name], 0, name)

    def test_sigterm_while_looking(self):
        node = self.nodes["stopping"]
        answered = []

        def loop():
            try:
                while True:
                    node.memory.get("k", scope="run:busy")
                    answered.append(1)
            except Exception:  # noqa: BLE001 (any: the node is going)
                pass  # the node went away
        client = threading.Thread(target=loop, daemon=True)
        client.start()
        eventually(lambda: len(answered) >= GETS, "the client's gets are answered")
        node.proc.send_signal(signal.SIGTERM)
        self.assertEqual(node.proc.wait(timeout=30), 0)
        client.join(timeout=60)


if __name__ == "__main__":
    unittest.main()
