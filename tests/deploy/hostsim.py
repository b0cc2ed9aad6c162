"""Running the shell scripts of deploy/'s container files as processes on this host: what the
compose and Kubernetes tests share, where no container can run (no registry to pull from, and
podman cannot start a container on the machines the suite runs on).

A script runs as its container would run it, with three things moved: the container's mount
points to directories of a scratch tree (`moves`, path -> directory), the cluster's addresses
(A.B.C.N in a /24) to a loopback network of their own (127.X.Y.N, X and Y drawn at random: all
of 127/8 is this host's), and the programs engramd and engram to the build's, found on PATH.
"""
import json
import os
import random
import subprocess
import sys

# tests/cli's helpers (polling.eventually) for the tests that import this module
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))


class Host:
    """The scratch tree and the loopback network of one test."""

    def __init__(self, tmp, engramd, engram, network_prefix):
        """network_prefix: the cluster's addresses without their last number ("172.28.0.")."""
        self.tmp = tmp
        self.bin = os.path.join(tmp, "bin")
        os.makedirs(self.bin)
        os.symlink(engramd, os.path.join(self.bin, "engramd"))
        os.symlink(engram, os.path.join(self.bin, "engram"))
        self.network_prefix = network_prefix
        self.loopback = f"127.{random.randrange(1, 255)}.{random.randrange(1, 255)}."
        self.processes = []

    def address(self, text):
        return text.replace(self.network_prefix, self.loopback)

    def move(self, text, moves):
        """text with the mount points of moves (longest first) and the addresses moved."""
        for path in sorted(moves, key=len, reverse=True):
            text = text.replace(path, moves[path])
        return self.address(text)

    def env(self, environment, moves):
        env = {k: self.move(str(v), moves) for k, v in (environment or {}).items()}
        return dict(os.environ, PATH=self.bin + os.pathsep + os.environ["PATH"], **env)

    def start(self, argv, environment, moves, log):
        """Starts argv (a container's command, moved); returns the process. Its output goes to
        the file log."""
        out = open(log, "a")
        process = subprocess.Popen([self.move(a, moves) for a in argv],
                                   env=self.env(environment, moves), stdout=out,
                                   stderr=subprocess.STDOUT)
        out.close()
        self.processes.append(process)
        return process

    def run(self, argv, environment, moves, timeout=30):
        return subprocess.run([self.move(a, moves) for a in argv],
                              env=self.env(environment, moves), capture_output=True, text=True,
                              timeout=timeout)

    def stop_all(self):
        """SIGTERM to each process still running, SIGKILL after 10 s; returns their exit codes."""
        codes = []
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
            try:
                codes.append(p.wait(timeout=10))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait())
        self.processes = []
        return codes


def unescape_compose(text):
    """A compose file's string as the container gets it: `$$` is compose's escape for `$`."""
    return text.replace("$$", "$")


def peers_alive(engram, socket, home, want):
    """True once the node at socket (asked as the admin of home) holds the members at the
    endpoints of want (a set of tcp:// endpoints) alive, and no other member."""
    out = subprocess.run([engram, "--json", "--socket", socket, "cluster", "status"],
                         env=dict(os.environ, ENGRAM_HOME=home), capture_output=True, text=True,
                         timeout=30)
    if out.returncode != 0:
        return False
    members = json.loads(out.stdout)["members"]
    alive = {m["endpoint"] for m in members if m["state"] == "alive"}
    others = {m["endpoint"] for m in members if m["state"] != "self"}
    return alive == want and others == want
