"""Starting deploy/local-cluster.sh for a test, on ports no other process holds: what the
multi-process Python tests that run a cluster share (tests/cli, tests/python).

Ports are drawn at random: another process (a test beside this one, or the local end of an
outgoing connection) may hold one. A base is drawn until every port the test uses is free, and
drawn again if a node still lost a port before binding it ("cannot bind gossip" or "--metrics:
cannot listen" in its log).
"""
import os
import random
import shutil
import socket
import subprocess
import tempfile
from collections import namedtuple

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


def start(script, bin_dir, nodes, prefix, offsets=None, draws=5):
    """`script nodes DIR` in a new temporary directory named after prefix, with gossip every
    100 ms. offsets: the ports the test uses, as offsets from the base (default: the gossip and
    introduction and metrics ports of nodes 1..nodes). Returns a Cluster; raises RuntimeError when the
    script fails for another reason than a port taken, or no draw had free ports."""
    offsets = offsets or [10 * i + off for i in range(1, nodes + 1) for off in (0, 1, 2)]
    for _ in range(draws):
        base = random.randrange(20000, 59000, 100)
        if not all(port_free(base + off) for off in offsets):
            continue
        directory = tempfile.mkdtemp(prefix=prefix)
        env = dict(os.environ, ENGRAM_BIN=bin_dir, ENGRAM_BASE_PORT=str(base),
                   ENGRAM_NODE_FLAGS="--gossip-interval-ms 100")
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
