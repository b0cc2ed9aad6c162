#!/usr/bin/env python3
"""engramd --metrics (node/http): /metrics scraped under write load and read by two parsers
that engram did not write (the Prometheus project's own Python parser, from Debian's
python3-prometheus-client, and a line grammar written here from the text format's
specification); its counters move with the load; /healthz, /readyz, the JSON endpoints, the
page and the listener's refusals (404, 405, an unknown host, a port taken); /readyz answers 503
while the store refuses writes: its volume below the free-space reserve, and a read-only
tmpfs (root only, that case is skipped otherwise).

On a three-node deploy/local-cluster.sh cluster: a node restarted (with its --join) while the
node it joins through is down is ready once another member is alive.

Usage: metrics_test.py ENGRAMD ENGRAM LOCAL_CLUSTER_SH.
"""
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

import local_cluster
from access import Admin
from tmpfs import can_mount
from polling import eventually

ENGRAMD, ENGRAM, LOCAL_CLUSTER = sys.argv[1], sys.argv[2], sys.argv[3]

# The text format, line by line (prometheus.io/docs/instrumenting/exposition_formats):
# comments, HELP and TYPE lines, and samples: name, optional labels, a float value.
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
VALUE = r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)"
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
SAMPLE = re.compile(rf"({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?,?\}})? ({VALUE})(?: -?\d+)?")
HELP = re.compile(rf"# HELP ({NAME}) (?:[^\\\n]|\\[\\n])*")
TYPE = re.compile(rf"# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}


def fetch(url, method="GET"):
    """(status, content type, body) of url."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def fetch_or_none(url):
    """The status of url, or None while nothing listens there."""
    try:
        return fetch(url)[0]
    except (urllib.error.URLError, ConnectionError):
        return None


def check_grammar(text):
    """Every line of text is a HELP, TYPE or sample line; every sample belongs to the family
    TYPE announced last; every family is announced once, every series (name and labels) once.
    Returns {family: type}."""
    families, current, series = {}, None, set()
    assert text.endswith("\n"), "the exposition ends with a line feed"
    for number, line in enumerate(text[:-1].split("\n"), 1):
        where = f"line {number}: {line!r}"
        if line.startswith("# HELP "):
            m = HELP.fullmatch(line)
            assert m, where
        elif line.startswith("# TYPE "):
            m = TYPE.fullmatch(line)
            assert m, where
            assert m.group(1) not in families, f"family announced twice: {where}"
            current = m.group(1)
            families[current] = m.group(2)
        else:
            m = SAMPLE.fullmatch(line)
            assert m, f"not a sample: {where}"
            assert current, f"a sample before any TYPE: {where}"
            name = m.group(1)
            allowed = [current + s for s in SUFFIXES.get(families[current], ("",))]
            assert name in allowed, f"{name} is not of family {current}: {where}"
            labels = tuple(sorted(re.findall(LABEL_PAIR, m.group(2) or "")))
            assert (name, labels) not in series, f"a series twice: {where}"
            series.add((name, labels))
    return families


class Node:
    """A lone engramd with --metrics, set up by `engram init` for agent t acting for user u,
    which may read and write run:*. data_dir: where its data lives (default: a new temporary
    directory); flags: more of engramd's."""

    def __init__(self, data_dir=None, flags=()):
        self.dir = tempfile.mkdtemp(prefix="engram-metrics-")
        self.data = data_dir or os.path.join(self.dir, "data")
        self.admin = Admin(ENGRAM, os.path.join(self.dir, "home"))
        self.socket = f"ipc://{self.dir}/api.sock"
        self.proc = None
        self.flags = list(flags)
        self.admin.init(self.data, "t", "u")
        self.start()
        self.admin.grant(self.socket, "t", resources=[("run:*", "read,write")], register=False)

    def start(self):
        self.port = local_cluster.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = open(os.path.join(self.dir, "engramd.log"), "ab")
        self.proc = subprocess.Popen([ENGRAMD, "--data", self.data, "--api", self.socket,
                                      "--metrics", f"127.0.0.1:{self.port}", *self.flags],
                                     stdout=log, stderr=log)
        log.close()
        eventually(lambda: self.cli("stats").returncode == 0, timeout=10,
                   what="engramd serves")

    def cli(self, *args):
        return self.admin.run(*args, socket=self.socket, agent="t", user="u", timeout=30)

    def stop(self):
        """Stops engramd (SIGTERM); its exit status: 0 for a clean stop (under ASan, nothing
        leaked), None if it was not running."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=20)
        return None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def scrape(self):
        """The parsed exposition: {family: (type, [samples])}, after both parsers read it."""
        status, ctype, text = fetch(self.url + "/metrics")
        assert status == 200, (status, text)
        assert ctype.startswith("text/plain; version=0.0.4"), ctype
        types = check_grammar(text)
        parsed = {f.name: f for f in text_string_to_metric_families(text)}
        return types, parsed, text


def sample(parsed, family, name, **labels):
    for s in parsed[family].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Node()

    @classmethod
    def tearDownClass(cls):
        cls.node.close()

    def test_z_clean_stop(self):
        """Last (unittest runs the tests by name): the node that served every scrape stops
        with exit 0, its documents and listener freed (an ASan build exits 23 on a leak)."""
        self.node.scrape()
        fetch(self.node.url + "/api/status")
        self.assertEqual(self.node.stop(), 0)

    def test_scrape_under_load(self):
        node = self.node
        types, parsed, _ = node.scrape()
        for family in ("engram_requests_total", "engram_request_duration_seconds",
                       "engram_group_commit_writes", "engram_wal_syncs_total",
                       "engram_connections", "engram_access_denials_total",
                       "engram_rocksdb_memtable_bytes", "engram_rocksdb_sst_bytes",
                       "engram_rocksdb_pending_compaction_bytes", "engram_writes_held",
                       "engram_reads_parked", "engram_connection_queue_bytes", "engram_ready",
                       "engram_build_info", "engram_store_writable"):
            self.assertIn(family, types)
        # the "_total" of a counter is the sample's name, not the family's, to this parser
        self.assertEqual(parsed["engram_requests"].type, "counter")
        self.assertEqual(parsed["engram_request_duration_seconds"].type, "histogram")
        before_puts = sample(parsed, "engram_requests", "engram_requests_total",
                             op="PUT", code="OK") or 0
        before_syncs = sample(parsed, "engram_wal_syncs", "engram_wal_syncs_total")
        before_denials = sample(parsed, "engram_access_denials", "engram_access_denials_total")

        writes, failures = 60, []

        def writer():
            for i in range(writes):
                r = node.cli("put", "run:metrics", f"k{i}", f"value {i}")
                if r.returncode != 0:
                    failures.append(r.stderr)

        thread = threading.Thread(target=writer)
        thread.start()
        scrapes = []
        try:
            while thread.is_alive():  # scraped while the writes go on: every scrape parses
                scrapes.append(node.scrape())
                time.sleep(0.05)
        finally:
            thread.join()
        self.assertEqual(failures, [])
        self.assertGreaterEqual(len(scrapes), 2, "the scrapes ran during the load")
        # a denial: agent t may not act for user mallory
        r = node.admin.run("put", "run:metrics", "x", "y", socket=node.socket, agent="t",
                           user="mallory")
        self.assertEqual(r.returncode, 6, r.stderr)

        # the node makes the document anew at most every 2 s (API_OBSERVE_REFRESH_MS)
        def after_the_load():
            _, parsed, _ = node.scrape()
            denied = sample(parsed, "engram_requests", "engram_requests_total", op="PUT",
                            code="EDENIED")
            return parsed if denied else None
        parsed = eventually(after_the_load, "a scrape that counts the denial", timeout=10)
        puts = sample(parsed, "engram_requests", "engram_requests_total", op="PUT", code="OK")
        self.assertEqual(puts - before_puts, writes)
        self.assertEqual(sample(parsed, "engram_requests", "engram_requests_total",
                                op="PUT", code="EDENIED"), 1)
        self.assertEqual(sample(parsed, "engram_access_denials",
                                "engram_access_denials_total") - before_denials, 1)
        self.assertGreaterEqual(sample(parsed, "engram_wal_syncs", "engram_wal_syncs_total")
                                - before_syncs, 1)
        # counters never go back between scrapes
        series = [sample(p, "engram_requests", "engram_requests_total", op="PUT", code="OK")
                  or 0 for _, p, _ in scrapes]
        self.assertEqual(series, sorted(series))
        # the histogram: cumulative buckets, +Inf last and equal to _count, which counts the puts
        buckets = [(s.labels["le"], s.value) for s in
                   parsed["engram_request_duration_seconds"].samples
                   if s.name.endswith("_bucket") and s.labels["op"] == "PUT"]
        self.assertEqual(buckets[-1][0], "+Inf")
        bounds = [float(le) for le, _ in buckets]
        self.assertEqual(bounds, sorted(bounds))
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts))
        count = sample(parsed, "engram_request_duration_seconds",
                       "engram_request_duration_seconds_count", op="PUT")
        self.assertEqual(counts[-1], count)
        self.assertGreaterEqual(count, writes)
        total = sample(parsed, "engram_request_duration_seconds",
                       "engram_request_duration_seconds_sum", op="PUT")
        self.assertTrue(0 < total < math.inf)
        commits = sample(parsed, "engram_group_commit_writes", "engram_group_commit_writes_sum")
        self.assertGreaterEqual(commits, writes)

    def test_probes_endpoints_and_refusals(self):
        node = self.node
        self.assertEqual(fetch(node.url + "/healthz")[0], 200)
        status, ctype, body = fetch(node.url + "/readyz")
        self.assertEqual((status, ctype), (200, "application/json"), body)
        self.assertEqual(json.loads(body), {"ready": True, "checks": {
            "store_writable": True, "dots_checked": True, "cluster_joined": True}})
        status, _, body = fetch(node.url + "/api/status")
        self.assertEqual(status, 200)
        doc = json.loads(body)
        self.assertRegex(doc["node"]["id"], r"^[0-9a-f]{16}$")
        self.assertIsNone(doc["cluster"])
        status, _, body = fetch(node.url + "/api/access")
        self.assertEqual(status, 200)
        grants = [s for s in json.loads(body)["statements"]
                  if s["kind"] == "agent_resource" and s["valid"]]
        self.assertIn(("t", "run:*"), [(s["agent"], s["resource"]) for s in grants])
        status, ctype, body = fetch(node.url + "/")
        self.assertEqual((status, ctype), (200, "text/html; charset=utf-8"))
        self.assertIn('<script src="/app.js">', body)
        self.assertEqual(fetch(node.url + "/app.js")[0], 200)
        self.assertEqual(fetch(node.url + "/nothing")[0], 404)
        self.assertEqual(fetch(node.url + "/metrics", method="POST")[0], 405)
        # the listener stays up through the refusals
        self.assertEqual(fetch(node.url + "/healthz")[0], 200)

    def test_bad_listen_addresses(self):
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        try:
            for address, message in (("127.0.0.1:99999", "--metrics takes HOST:PORT"),
                                     ("example.com:9464", "is not an IP address"),
                                     (f"127.0.0.1:{taken.getsockname()[1]}", "cannot listen")):
                with tempfile.TemporaryDirectory(prefix="engram-metrics-bad-") as d:
                    Admin(ENGRAM, os.path.join(d, "home")).init(os.path.join(d, "data"), "t", "u")
                    r = subprocess.run([ENGRAMD, "--data", os.path.join(d, "data"), "--api",
                                        f"ipc://{d}/api.sock", "--metrics", address],
                                       capture_output=True, text=True, timeout=30)
                    self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                    self.assertIn(message, r.stdout + r.stderr)  # zsys logs to stdout
        finally:
            taken.close()


class UnwritableTest(unittest.TestCase):
    def test_readyz_fails_below_the_free_space_reserve(self):
        """A store that refuses writes (here: its volume below --min-free-bytes, as large as it
        goes) is not ready; the process serves all the same."""
        d = tempfile.mkdtemp(prefix="engram-metrics-full-")
        proc = None
        try:
            Admin(ENGRAM, os.path.join(d, "home")).init(os.path.join(d, "data"), "t", "u")
            port = local_cluster.free_port()
            proc = subprocess.Popen([ENGRAMD, "--data", os.path.join(d, "data"), "--api",
                                     f"ipc://{d}/api.sock", "--metrics", f"127.0.0.1:{port}",
                                     "--min-free-bytes", str(1 << 50)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            eventually(lambda: fetch_or_none(url + "/healthz") == 200, "the listener serves")
            status, _, body = fetch(url + "/readyz")
            self.assertEqual(status, 503, body)
            self.assertEqual(json.loads(body)["checks"], {
                "store_writable": False, "dots_checked": True, "cluster_joined": True})
        finally:
            if proc:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=20)
            shutil.rmtree(d, ignore_errors=True)


def log_tail(directory, i, lines=40):
    """The last lines of node i's log in a local-cluster.sh directory: what a failure shows."""
    try:
        with open(os.path.join(directory, f"n{i}", "engramd.log"), errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})\n"


def start_cluster(test, count, prefix):
    """deploy/local-cluster.sh with count nodes, stopped and removed when test ends: the
    cluster and each node's fields (api, http, ...) as local-cluster.sh printed them."""
    cluster = local_cluster.start(LOCAL_CLUSTER, os.path.dirname(ENGRAMD), count, prefix)
    test.addCleanup(shutil.rmtree, cluster.dir, ignore_errors=True)
    test.addCleanup(subprocess.run, [LOCAL_CLUSTER, "stop", cluster.dir], env=cluster.env,
                    capture_output=True, timeout=120)
    return cluster, [dict(f.split("=", 1) for f in line.split())
                     for line in cluster.stdout.strip().splitlines()]


class ClusterReadyTest(unittest.TestCase):
    def test_restarted_node_is_ready_while_its_seed_is_down(self):
        cluster, nodes = start_cluster(self, 3, "engram-metrics-ready-")
        url = nodes[1]["http"] + "readyz"

        def knows_both():  # node 2 holds both others alive, so its members file lists them
            cluster = json.loads(fetch(nodes[1]["http"] + "api/status")[2])["cluster"]
            return sorted(m["state"] for m in cluster["members"]) == ["alive", "alive", "self"]
        eventually(knows_both, "node 2 sees both others alive")
        self.assertEqual(fetch(url)[0], 200)
        local_cluster.stop(cluster.dir, 1)  # the node every other joins through (--join)
        local_cluster.stop(cluster.dir, 2)
        r = local_cluster.restart(LOCAL_CLUSTER, cluster, 2)
        self.assertEqual(r.returncode, 0, r.stderr)
        # node 2 knows node 3 from its members file: in the cluster once node 3 answers it
        last = []
        try:
            eventually(lambda: last.append(fetch(url)) or last[-1][0] == 200,
                       "node 2 ready with its seed down", timeout=60)
        except AssertionError as e:
            raise AssertionError(f"{e}; last /readyz: {last[-1][2] if last else None}\n"
                                 + "\n".join(f"node {i}'s log ends:\n" + log_tail(cluster.dir, i)
                                             for i in (2, 3))) from None
        self.assertTrue(json.loads(last[-1][2])["checks"]["cluster_joined"])


class ClusterCardinalityTest(unittest.TestCase):
    def test_series_per_member_not_per_scope(self):
        """/metrics grows with the members, never with the scopes: per-scope figures (garbage,
        version vectors) are on the status page only. Ten more shared scopes add no series."""
        cluster, nodes = start_cluster(self, 2, "engram-metrics-scopes-")
        out = subprocess.run([LOCAL_CLUSTER, "agent", cluster.dir, "1", "counter", "alice",
                              "run:*"], env=cluster.env, capture_output=True, text=True,
                             timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        env = dict(cluster.env, ENGRAM_HOME=os.path.join(cluster.dir, "home"),
                   ENGRAM_SOCKET=nodes[0]["api"], ENGRAM_AGENT="counter", ENGRAM_USER="alice")

        def put(scope):
            r = subprocess.run([ENGRAM, "put", scope, "k", "v"], env=env, capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)

        def scrape_holding(wanted):
            """Node 1's series once it holds every scope of wanted and its metrics document
            counts the shared scopes its status document lists (documents are cached 2 s)."""
            status = json.loads(fetch(nodes[0]["http"] + "api/status")[2])["cluster"]
            listed = {sc["scope"] for sc in status["scopes"]}
            _, _, text = fetch(nodes[0]["http"] + "metrics")
            types = check_grammar(text)
            held = {f.name: f for f in text_string_to_metric_families(text)}
            if not wanted <= listed or \
                    sample(held, "engram_shared_scopes", "engram_shared_scopes") != len(listed):
                return None
            # the lag series are there only while each member's lag is known: compare
            # documents in which node 2 has told what it holds and lacks nothing
            for family in ("engram_member_lag_ops", "engram_member_lag_bytes"):
                lags = [s.value for s in held[family].samples] if family in held else []
                if not lags or any(lags):
                    return None
            return types, [(s.name, tuple(sorted(s.labels.items())))
                           for f in held.values() for s in f.samples]

        put("run:scope-0")
        _, before = eventually(lambda: scrape_holding({"run:scope-0"}),
                               "node 1's documents agree on its scopes", timeout=60)
        for i in range(1, 11):
            put(f"run:scope-{i}")
        types, after = eventually(
            lambda: scrape_holding({f"run:scope-{i}" for i in range(11)}),
            "node 1's documents agree on eleven scopes", timeout=60)
        self.assertIn("engram_member_state", types)
        self.assertEqual(len(after), len(before), "a series per scope")
        self.assertEqual([s for s in after if any(k == "scope" for k, _ in s[1])], [])

        # node 2 acknowledged node 1's pushes (nothing waited on them) at its ticks
        def acks_of_node_2():
            _, _, text = fetch(nodes[1]["http"] + "metrics")
            held = {f.name: f for f in text_string_to_metric_families(text)}
            sent = sample(held, "engram_gossip_acks_sent", "engram_gossip_acks_sent_total")
            deferred = sample(held, "engram_gossip_acks_deferred",
                              "engram_gossip_acks_deferred_total")
            return (sent, deferred) if deferred else None
        sent, deferred = eventually(acks_of_node_2, "node 2 counts its acks", timeout=60)
        self.assertLessEqual(deferred, sent)


@unittest.skipUnless(can_mount(), "needs root and tmpfs mounts")
class ReadOnlyTest(unittest.TestCase):
    def test_readyz_fails_while_read_only(self):
        mnt = tempfile.mkdtemp(prefix="engram-metrics-ro-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt], check=True)
        node = None
        try:
            node = Node(os.path.join(mnt, "data"), flags=("--min-free-bytes", str(1 << 20)))
            self.assertEqual(fetch(node.url + "/readyz")[0], 200)
            node.stop()
            subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
            node.start()
            status, _, body = fetch(node.url + "/readyz")
            self.assertEqual(status, 503, body)
            doc = json.loads(body)
            self.assertFalse(doc["ready"])
            self.assertFalse(doc["checks"]["store_writable"])
            self.assertEqual(fetch(node.url + "/healthz")[0], 200, "it still serves")
            _, parsed, _ = node.scrape()
            self.assertEqual(sample(parsed, "engram_ready", "engram_ready"), 0)
            self.assertEqual(sample(parsed, "engram_store_writable", "engram_store_writable"), 0)
            status, _, body = fetch(node.url + "/api/status")
            self.assertEqual(json.loads(body)["node"]["storage"], "read-only")
            # writable again: ready again
            node.stop()
            subprocess.run(["mount", "-o", "remount,rw", mnt], check=True)
            node.start()
            self.assertEqual(fetch(node.url + "/readyz")[0], 200)
        finally:
            if node:
                node.close()
            subprocess.run(["umount", "-l", mnt])
            os.rmdir(mnt)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
