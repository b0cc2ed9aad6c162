#!/usr/bin/env python3
"""engramd --busy-poll-us (node/api/busy_poll.h): the loop looks for work a while before it
sleeps, a window that opens while requests come close together and closes when they stop.

Nodes set up as the quick start does (`engram init`, tests/cli/access.py), each serving
/metrics: "looking" with the largest --busy-poll-us (BUSY_POLL_US) and --purge-interval-ms
PURGE_MS, a timer that wakes its loop far more often than the setting while no client asks;
"sleeping" without the setting. One client gets a value in a loop from each:

- both answer every get with the value;
- the looking node catches gets while it looks (engram_busy_poll_caught_total; gets go on,
  GETS at a time, until it has caught some) and spends time looking
  (engram_busy_poll_seconds_total); the sleeping node never looks (both 0, and its window
  engram_busy_poll_window_seconds 0 after GETS gets);
- once the client stops, the looking node's window closes (the gauge falls to the start, 25
  us, which the metrics request that reads it opens: the purge timer is no client, however
  often it fires), and its CPU time (/proc/PID/stat) over IDLE_S
  seconds of quiet stays under a quarter of that time (a window the timer kept open would
  look until each next purge: all of it);
- a third node with the setting, sent SIGTERM while a client gets in a loop (its look having
  caught some), exits with status 0, and the client's loop ends.

Usage: busy_poll_test.py ENGRAMD ENGRAM. PYTHONPATH holds BUILD/python.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
import local_cluster  # noqa: E402 (free_port, metric_samples)
from access import Admin  # noqa: E402
from polling import eventually  # noqa: E402

import engram  # noqa: E402

ENGRAMD, ENGRAM = sys.argv[1], sys.argv[2]
del sys.argv[1:3]
BUSY_POLL_US = 10000  # ENGRAM_MAX_BUSY_POLL_US: wider than a Python client's time between gets
PURGE_MS = 5
GROW_START_S = 25e-6  # BUSY_POLL_GROW_START_US
GETS = 400
IDLE_S = 2.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Node:
    def __init__(self, top, name, flags):
        self.dir = os.path.join(top, name)
        self.home = os.path.join(self.dir, "home")
        self.socket = f"ipc://{self.dir}/engram.sock"
        self.port = local_cluster.free_port()
        self.admin = Admin(ENGRAM, self.home)
        self.admin.init(os.path.join(self.dir, "data"), "a1", "alice")
        with open(os.path.join(top, name + ".log"), "ab") as log:
            self.proc = subprocess.Popen(
                [ENGRAMD, "--data", os.path.join(self.dir, "data"), "--api", self.socket,
                 "--metrics", f"127.0.0.1:{self.port}", *flags], stdout=log, stderr=log)
        self.memory = None
        try:
            eventually(lambda: self.admin.run("acl", "show", socket=self.socket).returncode == 0,
                       f"{name} answers")
            self.admin.grant(self.socket, "a1", resources=[("run:*", "read,write")],
                             register=False)
            self.memory = engram.Memory(agent="a1", user="alice", socket=self.socket,
                                        home=self.home)
            self.memory.put("k", "the value", scope="run:busy")
        except BaseException:
            self.close()
            raise

    def counters(self):
        """The node's samples from its /metrics, those of a name with labels added up."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as page:
            return local_cluster.metric_samples(page.read().decode())

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime

    def close(self):
        if self.memory:
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
            looking = ["--busy-poll-us", str(BUSY_POLL_US), "--purge-interval-ms", str(PURGE_MS)]
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

    def gets(self, node, until=lambda counters: True):
        """Rounds of GETS gets of one value, until until(node's counters) holds with the counters
        counting every get so far (the node makes its metrics anew at most every 2 s); returns
        those counters."""
        before = node.counters()["engram_requests_total"]
        done, deadline = 0, time.monotonic() + 60
        while True:
            for _ in range(GETS):
                self.assertEqual(node.memory.get("k", scope="run:busy").text, "the value")
            done += GETS

            def counted():
                counters = node.counters()
                return counters if counters["engram_requests_total"] >= before + done else None
            counters = eventually(counted, "the metrics count the gets")
            if until(counters):
                return counters
            self.assertLess(time.monotonic(), deadline, f"{done} gets: {counters}")

    def caught_some(self, counters):
        return counters["engram_busy_poll_caught_total"] > 0

    def test_the_look_catches_close_requests_and_stops_when_they_do(self):
        node = self.nodes["looking"]
        counters = self.gets(node, self.caught_some)
        self.assertGreater(counters["engram_busy_poll_caught_total"], 0, counters)
        self.assertGreater(counters["engram_busy_poll_seconds_total"], 0, counters)
        # the metrics request that reads the window is itself work that woke the loop within
        # the setting: it opens the window to the start, which the purges close again
        eventually(lambda: node.counters()["engram_busy_poll_window_seconds"] <= GROW_START_S,
                   "the window closes once the gets stop")
        before = node.cpu_seconds()
        time.sleep(IDLE_S)
        self.assertLess(node.cpu_seconds() - before, IDLE_S / 4,
                        "the node keeps looking for work with no client")

    def test_no_look_without_the_setting(self):
        counters = self.gets(self.nodes["sleeping"])
        for name in ("engram_busy_poll_caught_total", "engram_busy_poll_seconds_total",
                     "engram_busy_poll_window_seconds"):
            self.assertEqual(counters[name], 0, name)

    def test_sigterm_while_looking(self):
        node = self.nodes["stopping"]
        stop, failed = threading.Event(), []

        def loop():
            while not stop.is_set():
                try:
                    node.memory.get("k", scope="run:busy")
                except Exception as e:  # noqa: BLE001 (kept: before the signal it fails the test)
                    failed.append(e)
                    return
        client = threading.Thread(target=loop, daemon=True)
        client.start()
        try:
            eventually(lambda: failed or self.caught_some(node.counters()),
                       "the look catches the client's gets")
            self.assertEqual(failed, [], "a get failed before the signal")
        except BaseException:
            stop.set()
            client.join(timeout=60)
            raise
        node.proc.send_signal(signal.SIGTERM)
        self.assertEqual(node.proc.wait(timeout=30), 0)
        stop.set()
        client.join(timeout=60)
        self.assertFalse(client.is_alive(), "the client's get never returned")


if __name__ == "__main__":
    unittest.main()
