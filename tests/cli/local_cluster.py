"""Starting deploy/local-cluster.sh for a test, on ports no other process holds: what the
multi-process Python tests that run a cluster share (tests/cli, tests/python).

Ports are drawn at random: another process (a test beside this one, or the local end of an
outgoing connection) may hold one. A base is drawn until every port the test uses is free, and
drawn again if a node still lost a port before binding it ("cannot bind gossip" or "--metrics:
cannot listen" in its log).
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request
from collections import namedtuple

from access import Admin
from polling import eventually

# dir: the cluster's directory; base: ENGRAM_BASE_PORT; env: the environment its script and
# CLI runs take; stdout: what local-cluster.sh printed (a line per node)
Cluster = namedtuple("Cluster", "dir base env stdout")


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port():
    """A port free now (the system's pick), for a single listener of a test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric_samples(text):
    """{name: value} of a /metrics text, the samples of a name with labels added up."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            name = name.split("{")[0]
            samples[name] = samples.get(name, 0) + float(value)
    return samples


def start(script, bin_dir, nodes, prefix, offsets=None, draws=5, flags=""):
    """`script nodes DIR` in a new temporary directory named after prefix, with gossip every
    100 ms and flags (more engramd flags, for every node). offsets: the ports the test uses, as
    offsets from the base (default: the gossip, introduction and metrics ports of nodes
    1..nodes). Returns a Cluster; raises RuntimeError when the script fails for another reason
    than a port taken, or no draw had free ports."""
    offsets = offsets or [10 * i + off for i in range(1, nodes + 1) for off in (0, 1, 2)]
    for _ in range(draws):
        base = random.randrange(20000, 59000, 100)
        if not all(port_free(base + off) for off in offsets):
            continue
        directory = tempfile.mkdtemp(prefix=prefix)
        env = dict(os.environ, ENGRAM_BIN=bin_dir, ENGRAM_BASE_PORT=str(base),
                   ENGRAM_NODE_FLAGS=f"--gossip-interval-ms 100 {flags}")
        out = subprocess.run([script, str(nodes), directory], env=env, capture_output=True,
                             text=True, timeout=120)
        if out.returncode == 0:
            return Cluster(directory, base, env, out.stdout)
        logs = "".join(open(p, errors="replace").read() for p in
                       (os.path.join(directory, f"n{i}", "engramd.log")
                        for i in range(1, nodes + 1)) if os.path.exists(p))
        subprocess.run([script, "stop", directory], env=env, timeout=120)
        shutil.rmtree(directory, ignore_errors=True)
        if "cannot bind gossip" not in logs and "--metrics: cannot listen" not in logs:
            raise RuntimeError(f"local-cluster.sh failed: {out.stderr}\n{logs[-3000:]}")
    raise RuntimeError(f"no free ports for the cluster in {draws} draws")


def node_pid(directory, i):
    """The pid of node i of the cluster in directory (local-cluster.sh keeps it in nI/pid)."""
    with open(os.path.join(directory, f"n{i}", "pid")) as f:
        return int(f.read())


def stop(directory, i):
    """Stops node i of the cluster in directory (SIGTERM) and waits until it has exited."""
    pid = node_pid(directory, i)
    os.kill(pid, signal.SIGTERM)

    def stopped():
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().split()[2] == "Z"
        except FileNotFoundError:
            return True
    eventually(stopped, f"node {i} stops")


def restart(script, cluster, i):
    """`script restart DIR i`: node i (re)started on its data, by its saved command line.
    Returns the finished process."""
    return subprocess.run([script, "restart", cluster.dir, str(i)], env=cluster.env,
                          capture_output=True, text=True, timeout=120)


class ClusterTest(unittest.TestCase):
    """A test on NODES nodes of SCRIPT (deploy/local-cluster.sh, binaries beside ENGRAM) started
    with FLAGS, whose admin (DIR/home) registers agent tester for alice with read and write on
    SCOPE through node 1 (tests/cli/access.py); each test starts once every node holds those
    statements. Subclasses set SCRIPT, ENGRAM, SCOPE and PREFIX (of the temporary directory)."""
    NODES, FLAGS = 3, ""
    SCRIPT = ENGRAM = SCOPE = PREFIX = None

    def setUp(self):
        self.cluster = start(self.SCRIPT, os.path.dirname(self.ENGRAM), self.NODES, self.PREFIX,
                             flags=self.FLAGS)
        self.dir = self.cluster.dir
        self.admin = Admin(self.ENGRAM, os.path.join(self.dir, "home"))
        try:
            ids = self.admin.grant(self.api(1), "tester", ["alice"], [(self.SCOPE, "read,write")])
            for i in range(1, self.NODES + 1):
                self.admin.wait_held(self.api(i), ids)
        except BaseException:
            self.tearDown()
            raise

    def tearDown(self):
        subprocess.run([self.SCRIPT, "stop", self.dir], env=self.cluster.env, timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)

    def api(self, i):
        return f"ipc://{self.dir}/n{i}/api.sock"

    def engram(self, i, *args):
        """engram ARGS on node i, as agent tester for alice (the admin's commands as the
        admin)."""
        return self.admin.run(*args, socket=self.api(i), agent="tester", user="alice")

    def dealer(self, i):
        """A ZeroMQ DEALER connected to node i's API with agent tester's CURVE keys, as
        libengram's, for requests sent without waiting for their answers (the Python tests
        only: it needs pyzmq and the engram package); the caller closes it."""
        import zmq
        from engram.keys import KeySource
        public, secret, server = KeySource.find(self.api(i), "tester",
                                                os.path.join(self.dir, "home"), None).load()
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = server, public, secret
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.api(i))
        return sock

    def all_answered(self, sock, count, timeout=120):
        """Reads count replies from sock (a dealer's), each of them a success."""
        from engram_proto import api_pb2
        answered, deadline = 0, time.monotonic() + timeout
        while answered < count and time.monotonic() < deadline:
            if sock.poll(1000):
                reply = api_pb2.Reply.FromString(sock.recv())
                self.assertEqual(reply.code, 0, reply.message)
                answered += 1
        self.assertEqual(answered, count)

    def stop(self, i):
        stop(self.dir, i)

    def restart(self, i):
        out = restart(self.SCRIPT, self.cluster, i)
        self.assertEqual(out.returncode, 0, out.stderr)

    def pid(self, i):
        return node_pid(self.dir, i)

    def http(self, i, path):
        """The text node i's HTTP listener answers at path (local-cluster.sh gives node i
        --metrics on base + 10 i + 2)."""
        url = f"http://127.0.0.1:{self.cluster.base + 10 * i + 2}{path}"
        with urllib.request.urlopen(url, timeout=30) as page:
            return page.read().decode()

    def counters(self, i):
        """Node i's /metrics samples (metric_samples)."""
        return metric_samples(self.http(i, "/metrics"))

    def log(self, i):
        with open(os.path.join(self.dir, f"n{i}", "engramd.log"), errors="replace") as f:
            return f.read()

    def stats(self, i, field):
        out = self.engram(i, "--json", "stats")
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)[field]

    def vectors(self, i):
        out = self.engram(i, "--json", "cluster", "status")
        self.assertEqual(out.returncode, 0, out.stderr)
        return {s["scope"]: s["vector"] for s in json.loads(out.stdout)["scopes"]}
