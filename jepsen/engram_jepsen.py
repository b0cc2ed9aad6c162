#!/usr/bin/env python3
"""A Jepsen-style test of an engram cluster: five engramd nodes, each in its own network
namespace behind one software switch, clients writing and reading through the `engram` CLI
(each an agent with its own CURVE key, registered and granted by the admin with the CLI)
while a seeded nemesis partitions, drops, duplicates and resets packets, kills, pauses and
skews nodes; then heal, wait for quiescence and check the history. Python 3 standard library
(matplotlib, when installed, for the plots).

This module is the library behind `jepsen/run` (workloads, nemeses, suites, a results folder
per run: see jepsen/README.md); run directly it is the CTest `jepsen`, one short cell of the
`mixed` workload:

Usage: engram_jepsen.py ENGRAMD ENGRAM
       engram_jepsen.py --self-test

Environment (direct use):
  ENGRAM_JEPSEN_SEED=N      the nemesis' and clients' seed (default: drawn, printed)
  ENGRAM_JEPSEN_TIME=S      seconds of faults and load (default 60)
  ENGRAM_JEPSEN_CLIENTS=N   client threads per node (default 2)
  ENGRAM_JEPSEN_CONVERGE=S  how long the healed cluster may take to converge (default 60)
  ENGRAM_JEPSEN_KEEP=1      keep the data directory (logs, history.jsonl) even on success

Needs root, `ip netns` and nftables; exits 77 (skipped) otherwise. Every namespace it creates
carries a per-run name (ej<pid>x<hex>-...) and is deleted on the way out, failure included;
namespaces left by a run whose process is gone are removed at the next start.

Exit status: 0 every check held, 1 a check failed (seed, failed checks and a history
excerpt on stderr; the whole history in DIR/history.jsonl), 77 skipped.
"""
import collections
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SKIP = 77
NODES = 5
CLOCK_NEMESES = {"clock", "clock-big", "skew", "mixed"}
SUBNET = "10.77.0"
GOSSIP_PORT = 7400
GOSSIP_INTERVAL_MS = "100"
SCOPE_A = "run:jepsen"  # sets, counters, registers, hand-off keys
SCOPE_B = "team:jepsen"  # logs, a register
SET_KEYS = ["s0", "s1", "s9", "a0"]
COUNTER_KEYS = ["c0"]
LOG_KEYS = ["l0"]
REG_KEYS = [(SCOPE_A, "r0"), (SCOPE_A, "r1"), (SCOPE_B, "r2")]
CLI_TIMEOUT_S = 8  # the CLI's own request timeout is 5 s; this bounds a hung exec
AFTER_TIMEOUT_MS = 3000
ASAN_QUARANTINE_MB = 64  # a sanitized node's allocator keeps this much freed memory (see start)
USER = "jepsen"  # the user every client acts for
READER = "jepsen"  # the agent the checker reads the final state with, on every node
# Grants start this long before they are made, and agents are registered as of then (below):
# longer than the largest negative clock skew the nemesis gives a node, which would otherwise
# refuse a statement issued later than its own clock says it is.
BACKDATE_S = 3600
DELAY_QUEUE = 7  # the netfilter queue nfqdelay binds, in each host's own namespace
DELAY_MAX_MS = [20, 80, 150]  # the delay nemesis' bounds: each frame held 0..this
FAKETIME_LIBS = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/faketime/libfaketimeMT.so.1"]

T0 = time.monotonic()


def now():
    return round(time.monotonic() - T0, 4)


def log(msg):
    print(f"[{now():8.3f}] {msg}", flush=True)


def sh(*args, check=True, input=None, timeout=30):
    r = subprocess.run(list(args), input=input, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


# --------------------------------------------------------------------------------------------
# Preconditions and stale runs


def skip_reason():
    if os.geteuid() != 0:
        return "not root"
    if not shutil.which("ip"):
        return "no `ip` (iproute2)"
    if not shutil.which("nft"):
        return "no `nft` (apt-get install nftables)"
    probe = f"ejprobe{os.getpid()}"
    if sh("ip", "netns", "add", probe, check=False).returncode != 0:
        return "`ip netns add` does not work here"
    try:
        if sh("ip", "netns", "exec", probe, "true", check=False).returncode != 0:
            return "`ip netns exec` does not work here"
        r = sh("ip", "netns", "exec", probe, "nft", "add", "table", "bridge", "probe",
               check=False)
        if r.returncode != 0:
            return f"nftables bridge tables do not work here: {r.stderr.strip()}"
    finally:
        sh("ip", "netns", "del", probe, check=False)
    return None


def netns_list():
    r = sh("ip", "netns", "list", check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def kill_netns_pids(ns):
    r = sh("ip", "netns", "pids", ns, check=False)
    for pid in r.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def remove_stale_runs():
    """Namespaces of earlier runs whose process is gone (a run killed by a timeout)."""
    for ns in netns_list():
        m = re.match(r"^ej(\d+)x[0-9a-f]+-(sw|n\d+)$", ns)
        if not m:
            continue
        pid = int(m.group(1))
        if pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            kill_netns_pids(ns)
            sh("ip", "netns", "del", ns, check=False)


# --------------------------------------------------------------------------------------------
# The network: a switch namespace with a bridge, one namespace per host


class Network:
    def __init__(self, run_id, n):
        self.run_id = run_id
        self.switch = f"{run_id}-sw"
        self.hosts = [f"{run_id}-n{i + 1}" for i in range(n)]
        self.ips = [f"{SUBNET}.{11 + i}" for i in range(n)]
        self.ports = [f"p{i + 1}" for i in range(n)]
        self.created = []
        self.cut = set()  # (i, j): frames from host i to host j are dropped
        self.loss = {}  # host index (or -1: every port) -> percent dropped
        self.lock = threading.Lock()
        self.nfqdelay = None  # the delayer binary (nfqdelay.c), when built
        self.delayers = {}  # host index -> the nfqdelay process delaying its frames

    def up(self):
        sh("ip", "netns", "add", self.switch)
        self.created.append(self.switch)
        sw = self.switch
        sh("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", sw, "link", "set", "lo", "up")
        for i, host in enumerate(self.hosts):
            sh("ip", "netns", "add", host)
            self.created.append(host)
            sh("ip", "-n", sw, "link", "add", self.ports[i], "type", "veth", "peer", "name",
               "eth0", "netns", host)
            sh("ip", "-n", sw, "link", "set", self.ports[i], "master", "br0")
            sh("ip", "-n", sw, "link", "set", self.ports[i], "up")
            sh("ip", "-n", host, "addr", "add", f"{self.ips[i]}/24", "dev", "eth0")
            sh("ip", "-n", host, "link", "set", "eth0", "up")
            sh("ip", "-n", host, "link", "set", "lo", "up")
        sh("ip", "-n", sw, "link", "set", "br0", "up")
        self.apply()
        # Every host reaches every other before anything starts (when ping is there; the
        # cluster forming checks it anyway).
        for i, host in enumerate(self.hosts if shutil.which("ping") else []):
            for j, ip in enumerate(self.ips):
                if i != j:
                    for _ in range(50):
                        if sh("ip", "netns", "exec", host, "ping", "-c1", "-W1", ip,
                              check=False).returncode == 0:
                            break
                        time.sleep(0.1)
                    else:
                        raise RuntimeError(f"{host} cannot reach {ip}")

    def ruleset(self):
        lines = ["table bridge jepsen", "delete table bridge jepsen", "table bridge jepsen {",
                 "  set cut { type ifname . ifname; }",
                 "  chain forward_filter {",
                 "    type filter hook forward priority 0; policy accept;",
                 "    iifname . oifname @cut drop"]
        for host, pct in sorted(self.loss.items()):
            if pct <= 0:
                continue
            if host < 0:
                lines.append(f"    numgen random mod 100 < {pct} drop")
            else:
                p = self.ports[host]
                lines.append(f'    iifname "{p}" numgen random mod 100 < {pct} drop')
                lines.append(f'    oifname "{p}" numgen random mod 100 < {pct} drop')
        lines += ["  }", "}"]
        if self.cut:
            pairs = ", ".join(f'"{self.ports[i]}" . "{self.ports[j]}"'
                              for i, j in sorted(self.cut))
            lines.append(f"add element bridge jepsen cut {{ {pairs} }}")
        return "\n".join(lines) + "\n"

    def apply(self):
        """Replaces the switch's rules in one nft transaction."""
        with self.lock:
            sh("ip", "netns", "exec", self.switch, "nft", "-f", "-", input=self.ruleset())

    def partition(self, groups):
        """Cuts every pair of hosts that do not share a group (a host may be in several)."""
        cut = set()
        for i in range(len(self.hosts)):
            for j in range(len(self.hosts)):
                if i != j and not any(i in g and j in g for g in groups):
                    cut.add((i, j))
        self.cut = cut
        self.apply()

    def cut_pairs(self, pairs):
        """Drops exactly the frames from host i to host j for each (i, j): one-way cuts."""
        self.cut = set(pairs)
        self.apply()

    def host_table(self, idx, name, body, family="inet"):
        """Replaces (body) or deletes (None) a table in host idx's own namespace: the faults
        a switch cannot make (duplication, TCP resets)."""
        host = self.hosts[idx]
        text = f"table {family} {name}\ndelete table {family} {name}\n"
        if body:
            text += f"table {family} {name} {{\n{body}\n}}\n"
        with self.lock:
            sh("ip", "netns", "exec", host, "nft", "-f", "-", input=text)

    def set_dup(self, idx, pct):
        """Host idx sends a copy of pct% of its frames to each peer (nftables `dup`)."""
        rules = [f'    ip daddr {ip} numgen random mod 100 < {pct} dup to {ip} device "eth0"'
                 for j, ip in enumerate(self.ips) if j != idx]
        self.host_table(idx, "jdup", None if pct <= 0 else
                        "  chain out_dup {\n    type filter hook output priority 0;\n"
                        + "\n".join(rules) + "\n  }", family="ip")

    def set_reset(self, idx, on):
        """Host idx answers every gossip segment, in or out, with a TCP reset."""
        self.host_table(idx, "jrst", None if not on else
                        "  chain in_rst {\n    type filter hook input priority 0;\n"
                        f"    tcp dport {GOSSIP_PORT} reject with tcp reset\n"
                        f"    tcp sport {GOSSIP_PORT} reject with tcp reset\n  }}")

    def set_loss(self, loss):
        self.loss = dict(loss)
        self.apply()

    DELAY_RULE = ["OUTPUT", "-o", "eth0", "-j", "NFQUEUE", "--queue-num", str(DELAY_QUEUE),
                  "--queue-bypass"]

    def start_delay(self, idx, seed, max_ms):
        """Host idx's outgoing frames held 0..max_ms each (seeded) and let out of order: an
        nfqdelay bound to the queue in the host's namespace, then the iptables rule that
        feeds it (only once it is bound: --queue-bypass passes frames while it is not)."""
        host = self.hosts[idx]
        proc = subprocess.Popen(["ip", "netns", "exec", host, self.nfqdelay, "--queue",
                                 str(DELAY_QUEUE), "--max-ms", str(max_ms), "--seed",
                                 str(seed)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, stdin=subprocess.DEVNULL)
        line = proc.stdout.readline().strip()
        if line != "ready":
            proc.kill()
            proc.wait()
            raise RuntimeError(f"nfqdelay in {host} did not start: {line}")
        self.delayers[idx] = proc
        sh("ip", "netns", "exec", host, "iptables", "-A", *self.DELAY_RULE)

    def stop_delay(self, idx):
        """The rule deleted, then the delayer stopped (it lets out what it holds); returns
        (exit status, packets it delayed, rules of ours left in the namespace)."""
        proc = self.delayers.pop(idx, None)
        if proc is None:
            return None
        host = self.hosts[idx]
        sh("ip", "netns", "exec", host, "iptables", "-D", *self.DELAY_RULE, check=False)
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        m = re.search(r"delayed (\d+) packets", out or "")
        left = sh("ip", "netns", "exec", host, "iptables", "-S", "OUTPUT",
                  check=False).stdout.count("NFQUEUE")
        return proc.returncode, int(m.group(1)) if m else 0, left

    def heal(self):
        self.cut = set()
        self.loss = {}
        self.apply()

    def down(self):
        for idx in list(self.delayers):
            self.stop_delay(idx)
        for ns in reversed(self.created):
            kill_netns_pids(ns)
        for ns in reversed(self.created):
            sh("ip", "netns", "del", ns, check=False)
        self.created = []


# --------------------------------------------------------------------------------------------
# The nodes


class Node:
    def __init__(self, idx, cluster):
        self.idx = idx
        self.c = cluster
        self.dir = os.path.join(cluster.dir, f"n{idx + 1}")
        os.makedirs(self.dir)
        self.api = f"ipc://{self.dir}/api.sock"
        self.ns = cluster.net.hosts[idx]
        self.ip = cluster.net.ips[idx]
        self.gossip = f"tcp://{self.ip}:{GOSSIP_PORT}"
        self.card = os.path.join(self.dir, "admission")
        self.id = None  # 16 hex digits, from `engramd --identity`
        self.proc = None
        self.skew = 0  # seconds of libfaketime offset of the running process
        self.paused = False
        self.starts = 0
        self.crashes = []  # exit statuses of the process ending on its own
        self.clock_file = os.path.join(self.dir, "faketime")  # libfaketime reads it per call
        self.clock = 0  # seconds the node's clock is off at run time (clock nemesis)
        self.generation = 0  # bumped by a wipe: a new identity and data directory
        self.wiped = 0  # wipes: data destroyed, the identity and card kept
        self.replicas = []  # replica ids it was seen to use, oldest first (`engram stats`)
        self.join_via = None  # the member its first start joins through (a node that joins)

    def name(self):
        return f"n{self.idx + 1}"

    def data_dir(self):
        return os.path.join(self.dir, f"data{self.generation or ''}")

    def identity(self):
        r = sh(self.c.engramd, "--data", self.data_dir(), "--identity")
        self.id = re.search(r"node=([0-9a-f]+)", r.stdout).group(1)
        key = re.search(r"key=(\S+)", r.stdout).group(1)
        self.c.admin("node", "admit", key, "--out", self.card)
        # The data directory as `--identity` left it: the node's key and no data. A wipe
        # puts it back (the disk lost, the identity kept, as a re-imaged host would).
        shutil.copytree(self.data_dir(), self.pristine())

    def pristine(self):
        return os.path.join(self.dir, "pristine")

    def wipe(self):
        """SIGKILL, then every byte of data destroyed; identity and card kept."""
        self.kill()
        shutil.rmtree(self.data_dir())
        shutil.copytree(self.pristine(), self.data_dir())
        self.wiped += 1

    def replica_id(self):
        r = self.c.cli(self.idx, "stats", timeout=3)
        m = re.search(r"replica_id: ([0-9a-f]+)", r.stdout or "")
        return m.group(1) if m else None

    def set_clock(self, offset):
        """The node's wall clock offset, at run time (the process rereads the file)."""
        with open(self.clock_file + ".tmp", "w") as f:
            f.write(f"{offset:+d}\n")
        os.replace(self.clock_file + ".tmp", self.clock_file)
        self.clock = offset

    def start(self, skew=0):
        self.check_crashed()
        cmd = ["ip", "netns", "exec", self.ns, self.c.engramd, "--data",
               self.data_dir(), "--api", self.api, "--gossip", self.gossip,
               "--admission", self.card, "--gossip-interval-ms", GOSSIP_INTERVAL_MS,
               "--durability", self.c.cfg.get("durability", "sync")]
        seed = self.c.seed_for(self)
        if seed is not None:
            cmd += ["--join", f"tcp://{self.c.net.ips[seed]}:{GOSSIP_PORT}"]
        env = dict(os.environ)
        # The resources check bounds what the node itself holds. A sanitized build's allocator
        # keeps up to 256 MiB of freed memory (its quarantine) by default, which with the node's
        # own took a node past the limit in 20 s (561 MiB, seed 3146019943); capped, the same
        # cell's nodes peaked at 124-239 MiB. Builds without ASan ignore the option; a cap the
        # caller's ASAN_OPTIONS give comes later and wins.
        env["ASAN_OPTIONS"] = ":".join(filter(None, [f"quarantine_size_mb={ASAN_QUARANTINE_MB}",
                                                     env.get("ASAN_OPTIONS", "")]))
        preload = []
        if self.c.faketime and (skew or self.c.clock_faults):
            # Every node of a cell with clock faults runs under libfaketime reading its offset
            # from a file at each call, so the nemesis can jump or drift it at run time.
            self.set_clock(skew)
            preload.append(self.c.faketime)
            env.update(FAKETIME_TIMESTAMP_FILE=self.clock_file, FAKETIME_NO_CACHE="1",
                       FAKETIME_DONT_FAKE_MONOTONIC="1")
            env.pop("FAKETIME", None)
        else:
            skew = 0
        if self.c.cfg.get("slow_wal_ms") and self.c.slowwal:
            preload.append(self.c.slowwal)
            env["ENGRAM_SLOWWAL_MS"] = str(self.c.cfg["slow_wal_ms"])
        if preload:
            env["LD_PRELOAD"] = " ".join(preload)
            # a sanitizer build refuses a preloaded library ahead of its runtime
            env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS", ""),
                                                         "verify_asan_link_order=0"]))
        logf = open(os.path.join(self.dir, "engramd.log"), "ab")
        logf.write(f"---- start {self.starts} at {now()} skew {skew:+d}s ----\n".encode())
        logf.flush()
        self.proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=logf,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        self.skew = skew
        self.paused = False
        self.starts += 1
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            # the admin's key: good from the start (the root of the node's access control)
            if self.c.cli(self.idx, "cluster", "status", timeout=3).returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"{self.name()} did not start (see {self.dir}/engramd.log)")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def check_crashed(self):
        """Records an exit the test did not cause (called before every kill and restart)."""
        if self.proc is not None and self.proc.poll() is not None and \
                not getattr(self.proc, "killed_by_test", False):
            self.crashes.append((now(), self.proc.returncode))
            self.proc.killed_by_test = True  # counted once
            log(f"{self.name()} exited on its own with status {self.proc.returncode}")

    def kill(self):
        self.check_crashed()
        if self.alive():
            self.proc.killed_by_test = True
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.paused = False

    def stop(self):
        """SIGTERM (after SIGCONT), then SIGKILL after 10 s; returns the exit status."""
        self.check_crashed()
        if not self.alive():
            return None
        self.proc.killed_by_test = True
        os.kill(self.proc.pid, signal.SIGCONT)
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class Cluster:
    def __init__(self, engramd, engram, run_id, tmp, cfg=None):
        self.engramd = engramd
        self.engram = engram
        self.dir = tmp
        self.cfg = cfg or {}
        self.home = os.path.join(tmp, "home")
        # The membership nemesis' joiner gets a sixth host, started during the run.
        joins = "membership" in self.cfg.get("nemeses", ())
        self.net = Network(run_id, NODES + (1 if joins else 0))
        self.net.nfqdelay = self.cfg.get("nfqdelay")
        self.nodes = []
        self.faketime = next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)
        self.clock_faults = bool(set(self.cfg.get("nemeses", ())) & CLOCK_NEMESES or
                                 self.cfg.get("preset_skew"))
        self.slowwal = self.cfg.get("slowwal_lib")
        self.user_grants = {}  # agent -> id of its allow-user statement
        self.scope_grants = {}  # agent -> ids of its scope grants
        self.removed = set()  # indexes of nodes decommissioned (`cluster remove`) in the run
        self.replacement = None  # the node that joined: the removed node's clients move there

    def active(self):
        """Indexes of the members: started at least once and not removed."""
        return [n.idx for n in list(self.nodes) if n.starts and n.idx not in self.removed]

    def seed_for(self, node):
        """The member node's start joins through: the one it was told (a joiner), else n1
        (n2 for n1 itself, only when it was wiped and so remembers nobody), else the first
        member left; None for n1's own start."""
        others = [i for i in self.active() if i != node.idx]
        if node.join_via is not None and node.join_via in others:
            return node.join_via
        if node.idx == 0 and not node.wiped:
            return None
        return others[0] if others else None

    def admin(self, *args, env=None):
        """The CLI as the admin ($ENGRAM_HOME/admin.key); its stdout. Raises on failure."""
        env = dict(os.environ, **(env or {}), ENGRAM_HOME=self.home)
        env.pop("ENGRAM_SOCKET", None)
        r = subprocess.run([self.engram, *args], env=env, capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"engram {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def cli(self, idx, *args, timeout=CLI_TIMEOUT_S, agent=READER):
        """The CLI on node idx as agent (its key pair in $ENGRAM_HOME/agents), for USER; the
        admin commands (cluster status) go as the admin whatever agent says."""
        env = dict(os.environ, ENGRAM_HOME=self.home, ENGRAM_AGENT=agent, ENGRAM_USER=USER)
        env.pop("ENGRAM_SOCKET", None)
        try:
            return subprocess.run([self.engram, "--socket", f"ipc://{self.dir}/n{idx + 1}/api.sock",
                                   *args], env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(args, -1, "", "timed out (killed)")

    def up(self):
        self.net.up()
        self.admin("cluster", "init")
        nodes = [Node(i, self) for i in range(NODES)]
        for node in nodes:
            node.identity()
        self.nodes = nodes
        preset = self.cfg.get("preset_skew") or {}
        for node in nodes:
            node.start(int(preset.get(node.idx, 0)))
        log(f"{NODES} nodes started; waiting for every member to see every other alive")
        if not self.wait_members(60):
            raise RuntimeError("the cluster did not form within 60 s: "
                               + json.dumps(self.membership()))

    def provision(self, agents, late=()):
        """Registers each (agent, node index) through that node, lets USER act through it and
        lets it read and write both scopes, with the CLI as an admin would; then waits until
        every node holds every statement (they spread by gossip in sys:acl). No agent gets a
        home node: every client also reads on other nodes (the causal hand-off), and the
        reader reads everywhere. Registrations and grants date from BACKDATE_S ago, so that
        a node restarted with its clock behind still knows them: the grants with --from, the
        registrations (`agent create` has no --from; it is valid from the time it is issued)
        signed under libfaketime when the nemesis can skew clocks at all. The agents in `late`
        get no grant on run:jepsen (the acl workload grants it during the run)."""
        ids = set()
        backdate = f"-{BACKDATE_S}s"
        earlier = {}
        if self.faketime:
            earlier = dict(LD_PRELOAD=self.faketime, FAKETIME=f"-{BACKDATE_S}",
                           FAKETIME_DONT_FAKE_MONOTONIC="1", FAKETIME_NO_CACHE="1")
            # a sanitized CLI: ASan wants to come first, libfaketime is preloaded before it
            earlier["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS", ""),
                                                             "verify_asan_link_order=0"]))
        for agent, idx in agents:
            sock = ["--socket", self.nodes[idx].api]
            ids.add(self.admin(*sock, "agent", "create", agent, env=earlier).strip())
            uid = self.admin(*sock, "acl", "allow-user", USER, agent,
                             f"--from={backdate}").strip()
            ids.add(uid)
            self.user_grants[agent] = uid
            for scope in (SCOPE_A, SCOPE_B):
                if scope == SCOPE_A and agent in late:
                    continue
                sid = self.admin(*sock, "acl", "allow", agent, scope, "read,write",
                                 f"--from={backdate}").strip()
                ids.add(sid)
                self.scope_grants.setdefault(agent, []).append(sid)
        deadline = time.monotonic() + 60
        for node in self.nodes:
            while True:
                r = self.cli(node.idx, "--json", "acl", "show", timeout=5)
                held = set()
                if r.returncode == 0:
                    held = {st["id"] for st in json.loads(r.stdout)["statements"]
                            if st["valid"]}
                if ids <= held:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{node.name()} holds {len(ids & held)} of the "
                                       f"{len(ids)} statements after 60 s")
                time.sleep(0.2)
        log(f"{len(agents)} agents registered and granted ({len(ids)} statements on every node)"
            + (f"; {', '.join(late)} not on {SCOPE_A} yet" if late else ""))
        for node in self.nodes:  # the replica id each node starts with (the wipe check)
            node.replicas.append(node.replica_id())

    def status(self, idx):
        r = self.cli(idx, "cluster", "status", "--json", timeout=5)
        if r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def membership(self):
        """Each member's view: node id -> state (`self` for itself)."""
        out = {}
        for i in self.active():
            st = self.status(i)
            out[self.nodes[i].name()] = (None if st is None else
                                         {m["node"]: m["state"] for m in st["members"]})
        return out

    def all_alive(self, view=None):
        """Whether every member lists every other member alive."""
        view = self.membership() if view is None else view
        ids = {self.nodes[i].id for i in self.active()}
        return all(v is not None and all(v.get(x) == "alive" for x in ids
                                          if x != self.nodes[int(name[1:]) - 1].id)
                   for name, v in view.items())

    def wait_members(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.all_alive():
                return True
            time.sleep(0.3)
        return False

    def down(self):
        codes = {}
        for node in self.nodes:
            try:
                codes[node.name()] = node.stop()
            except Exception:  # noqa: BLE001 - teardown goes on
                pass
        self.net.down()
        return codes


# --------------------------------------------------------------------------------------------
# History


class History:
    def __init__(self):
        self.ops = []
        self.lock = threading.Lock()
        self.next_id = 0

    def invoke(self, process, node, kind, **fields):
        with self.lock:
            op = dict(id=self.next_id, process=process, node=node, kind=kind, type="invoke",
                      invoke=now(), **fields)
            self.next_id += 1
            self.ops.append(op)
            return op

    def complete(self, op, typ, **fields):
        with self.lock:
            op.update(type=typ, complete=now(), **fields)

    def event(self, kind, **fields):
        with self.lock:
            op = dict(id=self.next_id, process="nemesis", kind=kind, type="info",
                      invoke=now(), complete=now(), **fields)
            self.next_id += 1
            self.ops.append(op)
            return op

    def dump(self, path):
        with open(path, "w") as f:
            for op in sorted(self.ops, key=lambda o: o["invoke"]):
                f.write(json.dumps(op, sort_keys=True) + "\n")


WRITE_KINDS = ("set-add", "set-rm", "counter-add", "log-append", "put", "handoff-put",
               "token-put", "kv-put", "kv-rm", "ttl-put", "private-put", "replicas-put")
WORKLOADS = ("mixed", "set", "counter", "log", "register", "acl", "durability", "kv")
PRIVATE = "private"  # the calling agent's own scope, never replicated
PRIVATE_KEY = "pk"  # every agent writes its private value under the same key
TTL_TOLERANCE_S = 1.0  # an expired value may still be read this long after its expiry
TTL_CHOICES_S = (1, 2, 3)  # the kv workload's ttls
REPLICAS = 3  # the kv workload's `put --replicas`
SESSION_SET = "s9"  # add-only: the session guarantees are checked on it
ACL_SET = "a0"  # the acl workload's set
LATE_AGENTS = 2  # the acl workload's agents with no grant on run:jepsen until one during the run


def classify(kind, r):
    """ok / fail / info of one CLI call. A write is `fail` only when it surely did not happen
    (usage, refusal, or a remove of an element the node does not hold); anything else that is
    not success (unavailable, timeout, a storage error) may have happened: `info`. A read that
    did not answer is `fail` (no effect)."""
    if r.returncode == 0:
        return "ok"
    if kind in WRITE_KINDS:
        if kind == "set-rm" and r.returncode == 3:
            return "fail"
        return "fail" if r.returncode in (2, 4, 6) else "info"
    if r.returncode == 3:
        return "ok"  # not found: an empty answer
    return "fail"


class Client(threading.Thread):
    """A process of the history: one thread bound to one node, one operation at a time.
    What it does is its cell's workload (step_WORKLOAD)."""

    def __init__(self, pid, node, cluster, history, rng, stop, workload="mixed"):
        super().__init__(daemon=True, name=f"client-{pid}")
        self.pid = pid
        self.node = node
        self.c = cluster
        self.h = history
        self.rng = rng
        self.stop_ev = stop
        self.seq = 0
        self.handoff_key = f"h{pid}"
        self.token_key = f"t{pid}"
        self.workload = workload
        self.error = None
        self.seen = {}  # (key, node) -> the elements of this client's last read there

    def uid(self):
        self.seq += 1
        return f"p{self.pid}-{self.seq}"

    def call(self, kind, args, timeout=CLI_TIMEOUT_S, node=None, **fields):
        node = self.node if node is None else node
        op = self.h.invoke(self.pid, node, kind, **fields)
        r = self.c.cli(node, *args, timeout=timeout, agent=f"agent-{self.pid}")
        typ = classify(kind, r)
        extra = dict(rc=r.returncode)
        if typ != "ok":
            extra["err"] = r.stderr.strip()[:200]
        self.h.complete(op, typ, **extra)
        return op, r

    def run(self):
        try:
            step = getattr(self, f"step_{self.workload}")
            while not self.stop_ev.is_set():
                if self.node in self.c.removed and self.c.replacement is not None:
                    self.node = self.c.replacement  # its node was removed: on to the new one
                step()
                time.sleep(self.rng.uniform(0.01, 0.06))
        except Exception:  # noqa: BLE001 - reported by the checker
            self.error = traceback.format_exc()

    def other(self):
        return self.rng.choice([i for i in self.c.active() if i != self.node])

    # --- the operations the workloads share

    def set_add(self, key, node=None, **fields):
        elem = self.uid()
        return self.call("set-add", ["set", "add", SCOPE_A, key, elem], node=node, key=key,
                         value=elem, **fields)

    def set_read(self, key, node=None, kind="set-read", **fields):
        node = self.node if node is None else node
        op, r = self.call(kind, ["set", "members", SCOPE_A, key], node=node, key=key, **fields)
        if op["type"] == "ok":
            self.h.complete(op, "ok", value=r.stdout.split())
            self.seen[(key, node)] = op["value"]
        return op

    def counter_add(self, n):
        return self.call("counter-add", ["counter", "add", SCOPE_A, "c0", str(n)], key="c0",
                         value=n)

    def counter_read(self):
        op, r = self.call("counter-read", ["counter", "get", SCOPE_A, "c0"], key="c0")
        if op["type"] == "ok":
            self.h.complete(op, "ok", value=int(r.stdout.strip() or 0))
        return op

    def log_append(self, node=None, **fields):
        text = self.uid()
        op, r = self.call("log-append", ["log", "append", SCOPE_B, "l0", text], node=node,
                          key="l0", value=text, **fields)
        if op["type"] == "ok":
            self.h.complete(op, "ok", token=r.stdout.strip().splitlines()[-1])
        return op

    def log_read(self, node=None, after=None, **fields):
        args = ["log", "range", SCOPE_B, "l0"]
        if after:
            args += ["--after", after, "--timeout", str(AFTER_TIMEOUT_MS)]
        op, r = self.call("log-read", args, node=node, key="l0", **fields)
        if op["type"] == "ok":
            self.h.complete(op, "ok", value=r.stdout.split("\n")[:-1])
        return op

    def put(self, scope, key, node=None, kind="put", **fields):
        value = self.uid()
        op, r = self.call(kind, ["put", scope, key, value], node=node, scope=scope, key=key,
                          value=value, **fields)
        if op["type"] == "ok":
            self.h.complete(op, "ok", token=r.stdout.strip().splitlines()[-1])
        return op

    def get(self, scope, key, node=None, after=None, kind="get", **fields):
        args = ["get", "--json", scope, key]
        if after:
            args += ["--after", after, "--timeout", str(AFTER_TIMEOUT_MS)]
            fields["after"] = after
        op, r = self.call(kind, args, node=node, scope=scope, key=key, **fields)
        if op["type"] == "ok":
            self.h.complete(op, "ok", value=reg_values(r))
        elif after and op["rc"] == 3:
            pass
        return op

    def kv_call(self, kind, args, node=None, **fields):
        """A put/rm/get of the kv workload; a put or rm records its token, a get the winner
        and siblings. Each records the node's clock offset when invoked and when done (the
        ttl check needs them): Node.clock, which a skewed restart sets too."""
        node = self.node if node is None else node
        n = self.c.nodes[node]
        op, r = self.call(kind, args, node=node, clock=n.clock, **fields)
        op["clock_done"] = n.clock
        if op["type"] == "ok":
            if kind.endswith("-get"):
                self.h.complete(op, "ok", value=reg_values(r))
            else:
                self.h.complete(op, "ok", token=r.stdout.strip().splitlines()[-1])
        return op

    def kv_get(self, kind, scope, key, node=None, after=None):
        args = ["get", "--json", scope, key]
        if after:
            args += ["--after", after, "--timeout", str(AFTER_TIMEOUT_MS)]
        return self.kv_call(kind, args, node=node, scope=scope, key=key,
                            **(dict(after=after) if after else {}))

    def carry(self, scope, node, target):
        """The causal hand-off of whatever this client read on `node`: a put of its own token
        key there (its token covers the node's whole scope, the read included), then a read
        with --after that token on `target`. True once `target` covers it."""
        p = self.put(scope, self.token_key, node=node, kind="token-put")
        if p["type"] != "ok":
            return False
        g = self.get(scope, self.token_key, node=target, after=p["token"], kind="token-get",
                     put=p["id"])
        return g["type"] == "ok"

    # --- workloads

    def step_mixed(self):
        """Everything at once, as the original suite (the CTest smoke cell)."""
        x = self.rng.random()
        if x < 0.22:
            self.set_add(self.rng.choice(["s0", "s1"]))
        elif x < 0.36:
            self.counter_add(self.rng.randint(1, 5))
        elif x < 0.50:
            self.log_append()
        elif x < 0.62:
            scope, key = self.rng.choice(REG_KEYS)
            self.put(scope, key)
        elif x < 0.70:
            self.set_read(self.rng.choice(["s0", "s1"]))
        elif x < 0.76:
            self.counter_read()
        elif x < 0.81:
            self.log_read()
        elif x < 0.90:
            scope, key = self.rng.choice(REG_KEYS)
            self.get(scope, key)
        else:
            self.handoff()

    def step_set(self):
        """Adds and removes on s0 (a remove names an element this client last read on its
        node); adds on the add-only session set, read-then-add (writes follow reads)."""
        x = self.rng.random()
        if x < 0.25:
            self.set_add("s0")
        elif x < 0.40:
            seen = self.seen.get(("s0", self.node)) or []
            if seen:
                elem = self.rng.choice(seen)
                self.call("set-rm", ["set", "rm", SCOPE_A, "s0", elem], key="s0", value=elem)
            else:
                self.set_read("s0")
        elif x < 0.60:
            self.set_read("s0")
        elif x < 0.75:
            self.set_add(SESSION_SET,
                         read_before=self.seen.get((SESSION_SET, self.node)))
        elif x < 0.92:
            self.set_read(SESSION_SET)
        else:
            self.handoff()

    def step_durability(self):
        """Acknowledged writes only, against crashes: adds and appends, and reads."""
        x = self.rng.random()
        if x < 0.45:
            self.set_add("s0")
        elif x < 0.75:
            self.log_append()
        elif x < 0.88:
            self.set_read("s0")
        else:
            self.log_read()

    def step_counter(self):
        x = self.rng.random()
        if x < 0.65:
            n = self.rng.choice([-5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 5, 3])
            self.counter_add(n)
        else:
            self.counter_read()

    def step_log(self):
        """Appends and reads; read-then-append on one node, and read on one node, hand the
        token over, append on another: each append must order after what was read."""
        x = self.rng.random()
        if x < 0.30:
            self.log_append()
        elif x < 0.50:
            self.log_read()
        elif x < 0.75:
            r = self.log_read()
            if r["type"] == "ok":
                self.log_append(read_before=r["value"], read_op=r["id"])
        elif x < 0.87:
            r = self.log_read()
            if r["type"] == "ok":
                target = self.other()
                if self.carry(SCOPE_B, self.node, target):
                    self.log_append(node=target, read_before=r["value"], read_op=r["id"])
        else:
            # read, append after it here, then `log range --after` the append's token on
            # another node (which must hold the append and all that was read), then append
            # there after that read
            r = self.log_read()
            if r["type"] != "ok":
                return
            a = self.log_append(read_before=r["value"], read_op=r["id"])
            if a["type"] != "ok":
                return
            target = self.other()
            r2 = self.log_read(node=target, after=a["token"], carried=a["id"])
            if r2["type"] == "ok":
                self.log_append(node=target, read_before=r2["value"], read_op=r2["id"])

    def step_register(self):
        """Puts and gets, the hand-off, and read-then-put (on one node, or read on one, hand
        over, put on another): a put that followed a read overwrites what it read."""
        scope, key = self.rng.choice(REG_KEYS)
        x = self.rng.random()
        if x < 0.25:
            self.put(scope, key)
        elif x < 0.50:
            self.get(scope, key)
        elif x < 0.65:
            self.handoff()
        elif x < 0.85:
            g = self.get(scope, key)
            if g["type"] == "ok":
                self.put(scope, key, read_before=g["value"], read_op=g["id"])
        else:
            g = self.get(scope, key)
            if g["type"] == "ok":
                target = self.other()
                if self.carry(scope, self.node, target):
                    self.put(scope, key, node=target, read_before=g["value"], read_op=g["id"])

    def step_kv(self):
        """Per-client keys, so each key's history is one sequence: put and rm of k<pid>
        and reads of it (on its node, and with the token of the last write on another);
        puts with --ttl of x<pid> and reads of it anywhere; put --replicas 3 of q<pid>, then
        at once a plain read of it on every other node; the agent's private key on its node,
        and reads of the same key by it on other nodes and by others."""
        x = self.rng.random()
        dkey, tkey, qkey = f"k{self.pid}", f"x{self.pid}", f"q{self.pid}"
        if x < 0.14:
            value = self.uid()
            op = self.kv_call("kv-put", ["put", SCOPE_A, dkey, value], key=dkey,
                              scope=SCOPE_A, value=value)
            self.last_token = op.get("token")
        elif x < 0.26:
            op = self.kv_call("kv-rm", ["rm", SCOPE_A, dkey], key=dkey, scope=SCOPE_A)
            self.last_token = op.get("token")
        elif x < 0.36:
            self.kv_get("kv-get", SCOPE_A, dkey)
        elif x < 0.44:
            self.kv_get("kv-get", SCOPE_A, dkey, node=self.other(),
                        after=getattr(self, "last_token", None))
        elif x < 0.56:
            ttl = self.rng.choice(TTL_CHOICES_S)
            value = self.uid()
            self.kv_call("ttl-put", ["put", SCOPE_A, tkey, value, "--ttl", str(ttl)],
                         key=tkey, scope=SCOPE_A, value=value, ttl=ttl)
        elif x < 0.70:
            node = self.node if self.rng.random() < 0.5 else self.other()
            self.kv_get("ttl-get", SCOPE_A, tkey, node=node)
        elif x < 0.80:
            value = self.uid()
            p = self.kv_call("replicas-put", ["put", SCOPE_A, qkey, value, "--replicas",
                                              str(REPLICAS), "--timeout", "2000"],
                             key=qkey, scope=SCOPE_A, value=value)
            if p["type"] == "ok":
                others = [j for j in self.c.active() if j != self.node]
                p["asked"] = len(others)
                for j in others:
                    self.kv_get("replicas-get", SCOPE_A, qkey, node=j).update(put=p["id"])
        elif x < 0.88:
            value = self.uid()
            self.kv_call("private-put", ["put", PRIVATE, PRIVATE_KEY, value], key=PRIVATE_KEY,
                         scope=PRIVATE, value=value)
        else:
            node = self.node if self.rng.random() < 0.5 else self.other()
            self.kv_get("private-get", PRIVATE, PRIVATE_KEY, node=node)

    def step_acl(self):
        """Adds and reads of one set while the admin revokes agents (AclActor)."""
        if self.rng.random() < 0.5:
            self.set_add(ACL_SET)
        else:
            self.set_read(ACL_SET)

    def handoff(self):
        """put on this node, then `get --after TOKEN` on another: the causal hand-off."""
        value = self.uid()
        op, r = self.call("handoff-put", ["put", SCOPE_A, self.handoff_key, value],
                          scope=SCOPE_A, key=self.handoff_key, value=value)
        if op["type"] != "ok":
            return
        token = r.stdout.strip().splitlines()[-1]
        self.h.complete(op, "ok", token=token)
        other = self.other()
        g = self.h.invoke(self.pid, other, "handoff-get", scope=SCOPE_A, key=self.handoff_key,
                          after=token, put=op["id"])
        r = self.c.cli(other, "get", "--json", SCOPE_A, self.handoff_key, "--after", token,
                       "--timeout", str(AFTER_TIMEOUT_MS), agent=f"agent-{self.pid}")
        typ = "ok" if r.returncode == 0 else "fail"
        fields = dict(rc=r.returncode)
        if typ == "ok":
            fields["value"] = reg_values(r)
        else:
            fields["err"] = r.stderr.strip()[:200]
        self.h.complete(g, typ, **fields)
        if typ != "ok":
            return
        # What the token covers is all of this node's scope at the put: the other node must
        # now hold every set element acknowledged here before the put was invoked.
        key = self.rng.choice(["s0", "s1"] if self.workload == "mixed" else ["s0"])
        s = self.h.invoke(self.pid, other, "handoff-set-read", key=key, put=op["id"])
        r = self.c.cli(other, "set", "members", SCOPE_A, key, agent=f"agent-{self.pid}")
        if r.returncode in (0, 3):
            self.h.complete(s, "ok", rc=r.returncode, value=r.stdout.split())
        else:
            self.h.complete(s, "fail", rc=r.returncode, err=r.stderr.strip()[:200])


def reg_values(r):
    """The winner and siblings of `get --json` (empty when not found)."""
    if r.returncode == 3 or not r.stdout.strip():
        return []
    doc = json.loads(r.stdout)
    return [doc["value"]] + [s["value"] for s in doc.get("siblings", [])]


# --------------------------------------------------------------------------------------------
# Nemesis


# The nemeses a cell may name, and the faults each draws from.
NEMESES = {
    "none": [],
    "partition": ["partition-halves", "partition-bridge", "partition-isolate"],
    "partition-oneway": ["partition-oneway"],
    "partition-ring": ["partition-ring"],
    "flap": ["partition-flap"],
    "loss": ["loss"],
    "dup": ["dup"],
    "reset": ["reset"],
    "kill": ["kill"],
    "pause": ["pause"],
    "skew": ["kill-skew"],
    "clock": ["clock-jump", "clock-drift"],
    "clock-big": ["clock-big"],
    "delay": ["delay"],
    "wipe": ["wipe"],
    "membership": [],  # one join and one removal per cell, at seeded moments (Nemesis.run)
    "mixed": ["partition-halves", "partition-bridge", "partition-isolate", "loss", "kill",
              "pause", "kill-skew", "partition+kill", "loss+pause"],
}
CLOCK_JUMPS_S = [-50, -20, -5, 5, 20, 50]  # inside --max-clock-drift-ms (60 s)
MAX_DRIFT_S = 60  # engramd's default --max-clock-drift-ms, in seconds
CLOCK_BIG_S = MAX_DRIFT_S + 30  # past it: the others refuse this node's deltas for a while
MEMBER_WAIT_S = 20  # how long the membership nemesis waits for a join or removal to spread
JOIN_LEARN_S = 5.0  # a joined or wiped node lists every member within this of its start
# Every member lists a joined node within this of its start: the others learn it by SWIM's
# dissemination (its pings, round-robin over the members, and piggybacked records), which a
# cluster busy refuting suspicions (a partition just healed) slows: 6.3 s seen once, 1-2 s usual
JOIN_SPREAD_S = 15.0
# How long after a wipe or a join a node's refusals are excused while it learns the access
# graph back by gossip (it takes 1-5 s here; a partition over the node may add a hold, 8 s)
RELEARN_S = 30
# (in any state: the members it learns from its seed may still be suspect from a fault before)
GC_WAIT_S = 30  # after convergence, how long the op records awaiting the stable cut may stay
DRAIN_KEY = "drain"  # the marker the membership nemesis puts on the node it removes
REMOVED_LOG = "was removed from cluster"  # what a removed engramd logs once it learns it


class Nemesis(threading.Thread):
    def __init__(self, cluster, history, rng, duration, stop, nemeses=("mixed",)):
        super().__init__(daemon=True, name="nemesis")
        self.c = cluster
        self.h = history
        self.rng = rng
        self.duration = duration
        self.stop_ev = stop
        self.faults = sorted({f for n in nemeses for f in NEMESES[n]})
        self.counts = collections.Counter()
        self.timeline = []  # {fault, start, end, nodes, detail}
        self.error = None
        self.lock = threading.Lock()  # node restarts vs the final heal
        self.big_done = False
        self.wipes = []  # {node, t, replicas_before, replica_after}
        # the membership nemesis: {joined: {...}, removed: {...}} (join and remove below)
        self.members = {} if "membership" in nemeses else None
        self.delays = []  # {nodes, max_ms, results: node -> (exit, delayed, rules left)}
        self.skipped = []  # faults this machine cannot make, and why
        why = delay_unavailable(cluster.cfg.get("nfqdelay"))
        if "delay" in self.faults and why:
            self.faults.remove("delay")
            self.skipped.append(f"delay: {why}")
            log(f"nemesis: the delay fault is skipped: {why}")

    def ev(self, kind, **fields):
        self.h.event(kind, **fields)
        log(f"nemesis: {kind} {json.dumps(fields, sort_keys=True)}")

    def run(self):
        try:
            start = time.monotonic()
            end = start + self.duration
            plan = []  # (when, what): the membership nemesis' join, then its removal
            if self.members is not None:
                plan = [(start + self.rng.uniform(0.15, 0.3) * self.duration, "join"),
                        (start + self.rng.uniform(0.5, 0.65) * self.duration, "remove")]
            self.stop_ev.wait(self.rng.uniform(2, 4))
            while time.monotonic() < end and not self.stop_ev.is_set():
                if plan and time.monotonic() >= plan[0][0]:
                    self.inject(plan.pop(0)[1], 0)
                    continue
                if not self.faults:  # nemesis none: the load alone, for the whole time
                    self.stop_ev.wait(max(0.0, min([end] + [at for at, _ in plan[:1]]) -
                                          time.monotonic()))
                    continue
                fault = self.rng.choice(self.faults)
                if fault == "clock-big" and self.big_done:
                    fault = self.rng.choice([f for f in self.faults if f != "clock-big"]
                                            or ["none"])
                hold = self.rng.uniform(3, 8)
                hold = max(1.0, min(hold, end - time.monotonic()))
                if fault != "none":
                    self.inject(fault, hold)
                self.stop_ev.wait(self.rng.uniform(1, 3))
            # a join that took long (it waits up to MEMBER_WAIT_S for its times) may have
            # pushed the removal past the end: it is still made, or the cell would judge none
            for _, what in plan:
                if not self.stop_ev.is_set():
                    self.inject(what, 0)
        except Exception:  # noqa: BLE001
            self.error = traceback.format_exc()

    def node_names(self, idxs):
        return [f"n{i + 1}" for i in idxs]

    def inject(self, fault, hold):
        self.counts[fault] += 1
        rng = self.rng
        net = self.c.net
        ids = self.c.active()  # the members (the membership nemesis changes them)
        n = len(ids)
        after = []  # undo steps
        entry = dict(fault=fault, start=now(), nodes=[], detail={})
        self.timeline.append(entry)

        def heal_net():
            net.partition([set(range(len(net.hosts)))])
            self.ev("heal-partition")

        if fault == "join":
            self.join_node(entry, rng.choice(ids))
        if fault == "remove":
            self.remove_node(entry, rng.choice([i for i in ids if i != self.c.replacement]), rng)

        if fault in ("partition-halves", "partition-bridge", "partition-isolate",
                     "partition+kill"):
            rng.shuffle(ids)
            if fault in ("partition-halves", "partition+kill"):
                k = rng.randint(1, n // 2)
                groups = [ids[:k], ids[k:]]
            elif fault == "partition-bridge":
                bridge = ids[0]
                rest = ids[1:]
                groups = [[bridge] + rest[:2], [bridge] + rest[2:]]
            else:
                groups = [ids[:1], ids[1:]]
            net.partition([set(g) for g in groups])
            named = [self.node_names(sorted(g)) for g in groups]
            entry.update(nodes=sorted(named[0]), detail=dict(groups=named))
            self.ev("partition", groups=named)
            after.append(heal_net)
        if fault == "partition-oneway":
            # frames from A to B are dropped, B to A pass: A hears B, B never hears A
            rng.shuffle(ids)
            k = rng.randint(1, n // 2)
            src, dst = ids[:k], ids[k:]
            net.cut_pairs({(i, j) for i in src for j in dst})
            entry.update(nodes=self.node_names(sorted(src)),
                         detail=dict(dropped_from=self.node_names(sorted(src)),
                                     dropped_to=self.node_names(sorted(dst))))
            self.ev("partition-oneway", src=self.node_names(sorted(src)),
                    dst=self.node_names(sorted(dst)))
            after.append(heal_net)
        if fault == "partition-ring":
            # each node sees its two ring neighbours: a majority each, no two the same one
            rng.shuffle(ids)
            groups = [{ids[i], ids[(i + 1) % n]} for i in range(n)]
            net.partition(groups)
            ring = self.node_names(ids)
            entry.update(nodes=ring, detail=dict(ring=ring))
            self.ev("partition-ring", ring=ring)
            after.append(heal_net)
        if fault == "partition-flap":
            # a halves partition switched on and off every 0.3-1 s for the hold
            rng.shuffle(ids)
            k = rng.randint(1, n // 2)
            groups = [set(ids[:k]), set(ids[k:])]
            entry.update(nodes=self.node_names(sorted(ids[:k])),
                         detail=dict(groups=[self.node_names(sorted(g)) for g in groups]))
            deadline = time.monotonic() + hold
            flips = 0
            while time.monotonic() < deadline and not self.stop_ev.is_set():
                net.partition(groups if flips % 2 == 0 else [set(range(len(net.hosts)))])
                flips += 1
                self.stop_ev.wait(rng.uniform(0.3, 1.0))
            entry["detail"]["flips"] = flips
            self.ev("partition-flap", groups=entry["detail"]["groups"], flips=flips)
            hold = 0
            after.append(heal_net)
        if fault in ("loss", "loss+pause"):
            if rng.random() < 0.5:
                loss = {-1: rng.choice([10, 20, 30])}
            else:
                loss = {rng.choice(ids): rng.choice([30, 50, 70])}
            net.set_loss(loss)
            pct = {("all" if k < 0 else f"n{k + 1}"): v for k, v in loss.items()}
            entry.update(nodes=sorted(pct), detail=dict(percent=pct))
            self.ev("loss", percent=pct)
            after.append(lambda: (net.set_loss({}), self.ev("heal-loss")))
        if fault == "dup":
            victims = rng.sample(ids, rng.randint(1, n))
            pct = rng.choice([20, 50, 100])
            for i in victims:
                net.set_dup(i, pct)
            entry.update(nodes=self.node_names(sorted(victims)), detail=dict(percent=pct))
            self.ev("dup", nodes=self.node_names(sorted(victims)), percent=pct)
            after.append(lambda v=victims: ([net.set_dup(i, 0) for i in v],
                                            self.ev("heal-dup")))
        if fault == "reset":
            victims = rng.sample(ids, rng.randint(1, 2))
            for i in victims:
                net.set_reset(i, True)
            entry.update(nodes=self.node_names(sorted(victims)))
            self.ev("reset", nodes=self.node_names(sorted(victims)))
            after.append(lambda v=victims: ([net.set_reset(i, False) for i in v],
                                            self.ev("heal-reset")))
        if fault in ("kill", "kill-skew", "partition+kill"):
            node = self.c.nodes[rng.choice(ids)]
            skew = 0
            if fault == "kill-skew" and self.c.faketime:
                skew = rng.choice([-50, -30, 30, 50])
            with self.lock:
                node.kill()
            entry["nodes"] = sorted(set(entry["nodes"]) | {node.name()})
            entry["detail"]["killed"] = node.name()
            if skew:
                entry["detail"]["restart_skew_s"] = skew
            self.ev("kill", node=node.name())
            after.append(lambda n=node, s=skew: self.restart(n, s))
        if fault == "delay":
            victims = sorted(rng.sample(ids, rng.randint(1, n)))
            max_ms = rng.choice(DELAY_MAX_MS)
            seed = rng.getrandbits(32)
            for i in victims:
                net.start_delay(i, seed + i, max_ms)
            rec = dict(nodes=self.node_names(victims), max_ms=max_ms, results={})
            self.delays.append(rec)
            entry.update(nodes=rec["nodes"], detail=dict(max_ms=max_ms))
            self.ev("delay", nodes=rec["nodes"], max_ms=max_ms)

            def undo_delay(v=victims, rec=rec):
                for i in v:
                    res = net.stop_delay(i)
                    if res is not None:
                        rec["results"][f"n{i + 1}"] = res
                entry["detail"]["delayed_packets"] = {k: r[1] for k, r in rec["results"].items()}
                self.ev("heal-delay", results=rec["results"])
            after.append(undo_delay)
        if fault == "wipe":
            node = self.c.nodes[rng.choice(ids)]
            rec = dict(node=node.name(), t=now(), replicas_before=[])
            with self.lock:
                if node.alive() and not node.paused:
                    rid = node.replica_id()
                    if rid and rid not in node.replicas:
                        node.replicas.append(rid)
                rec["replicas_before"] = list(node.replicas)
                rec["t"] = now()
                node.wipe()
            self.wipes.append(rec)
            entry.update(nodes=[node.name()], detail=dict(replicas_before=rec["replicas_before"]))
            self.ev("wipe", node=node.name(), replicas_before=rec["replicas_before"])
            after.append(lambda n=node, rec=rec: self.rejoin(n, rec))
        if fault in ("pause", "loss+pause"):
            node = self.c.nodes[rng.choice(ids)]
            with self.lock:
                node.signal(signal.SIGSTOP)
                node.paused = True
            entry["nodes"] = sorted(set(entry["nodes"]) | {node.name()})
            entry["detail"]["paused"] = node.name()
            self.ev("pause", node=node.name())
            after.append(lambda n=node: self.resume(n))
        if fault in ("clock-jump", "clock-drift", "clock-big") and self.c.faketime:
            node = self.c.nodes[rng.choice(ids)]
            if fault == "clock-jump":
                offset = rng.choice(CLOCK_JUMPS_S)
            elif fault == "clock-big":
                offset = CLOCK_BIG_S
                self.big_done = True
            else:
                offset = 0
            before = node.clock
            if fault == "clock-drift":
                # the clock runs fast or slow by up to 4 s per second held, in 0.5 s steps
                rate = rng.choice([-4, -2, 2, 4])
                deadline = time.monotonic() + hold
                while time.monotonic() < deadline and not self.stop_ev.is_set():
                    node.set_clock(max(-MAX_DRIFT_S + 5, min(MAX_DRIFT_S - 5,
                                                              node.clock + rate // 2)))
                    self.stop_ev.wait(0.5)
                hold = 0
                offset = node.clock
                entry["detail"]["rate_s_per_s"] = rate
            else:
                node.set_clock(before + offset if fault == "clock-jump" else offset)
            entry.update(nodes=[node.name()])
            entry["detail"]["clock_s"] = node.clock
            self.ev(fault, node=node.name(), clock_s=node.clock)
            after.append(lambda n=node, b=before: (n.set_clock(b),
                                                   self.ev("clock-back", node=n.name(),
                                                           clock_s=b)))
        self.stop_ev.wait(hold)
        for undo in reversed(after):
            undo()
        entry["end"] = now()

    def join_node(self, entry, via):
        """A sixth node joins: a new identity admitted by the admin (`engram node admit`),
        started with --join through member `via`; then how long until it lists every member
        (knows_all_s: in any state; sees_all_s: alive), and every member lists it
        (known_by_all_s, seen_by_all_s). Its clients are those of the node removed later."""
        node = Node(len(self.c.nodes), self.c)
        node.identity()
        node.join_via = via
        rec = dict(node=node.name(), id=node.id, via=f"n{via + 1}", t=now())
        self.members["joined"] = rec
        entry.update(nodes=[node.name()], detail=dict(via=rec["via"]))
        self.ev("join", node=node.name(), via=rec["via"], node_id=node.id)
        with self.lock:
            self.c.nodes.append(node)
            node.start()
        rec["started"] = now()
        self.c.replacement = node.idx
        deadline = time.monotonic() + MEMBER_WAIT_S
        times = ("knows_all_s", "sees_all_s", "known_by_all_s", "seen_by_all_s")
        while time.monotonic() < deadline and not self.stop_ev.is_set() and \
                not set(times) <= set(rec):
            view = self.c.membership()
            others = [self.c.nodes[j] for j in self.c.active() if j != node.idx]
            mine = [(view.get(node.name()) or {}).get(o.id) for o in others]
            theirs = [(view.get(o.name()) or {}).get(node.id) for o in others]
            for name, states, ok in (("knows_all_s", mine, {"alive", "suspect", "dead"}),
                                     ("sees_all_s", mine, {"alive"}),
                                     ("known_by_all_s", theirs, {"alive", "suspect", "dead"}),
                                     ("seen_by_all_s", theirs, {"alive"})):
                if name not in rec and all(st in ok for st in states):
                    rec[name] = round(now() - rec["started"], 2)
            time.sleep(0.2)
        entry["detail"].update({t: rec.get(t) for t in times})
        self.ev("joined", node=node.name(), **{t: rec.get(t) for t in times})

    def remove_node(self, entry, victim, rng):
        """Decommissions member `victim`. First what it holds is handed over: a put of a
        marker in each scope on it, then `get --after` its token on every other member, so
        every write it acknowledged before the marker is held by them (engram promises to
        keep a removed node's writes that reached a remaining member, and does not wait for
        the rest: `cluster remove` does not drain). Then `engram cluster remove` through
        another member; its clients move to the joined node; once it logged that it learned
        its removal (or MEMBER_WAIT_S passed) it is stopped, as a decommissioned host is."""
        node = self.c.nodes[victim]
        survivors = [i for i in self.c.active() if i != victim]
        via = rng.choice(survivors)
        rec = dict(node=node.name(), id=node.id, via=f"n{via + 1}", t_mark=now())
        self.members["removed"] = rec
        entry.update(nodes=[node.name()], detail=dict(via=rec["via"]))
        self.ev("drain", node=node.name())
        tokens = []
        for scope in (SCOPE_A, SCOPE_B):
            r = self.c.cli(victim, "put", scope, DRAIN_KEY, f"drain-{node.name()}")
            if r.returncode == 0:
                tokens.append((scope, r.stdout.strip().splitlines()[-1]))
        caught = set()
        deadline = time.monotonic() + MEMBER_WAIT_S
        while len(tokens) == 2 and len(caught) < len(survivors) and \
                time.monotonic() < deadline:
            for j in survivors:
                if j not in caught and all(
                        self.c.cli(j, "get", scope, DRAIN_KEY, "--after", token, "--timeout",
                                   "2000").returncode == 0 for scope, token in tokens):
                    caught.add(j)
        rec.update(drained=len(tokens) == 2 and len(caught) == len(survivors),
                   drain_s=round(now() - rec["t_mark"], 2), t_remove=now(), removed_ok=False)
        self.ev("remove", node=node.name(), via=rec["via"], drained=rec["drained"])
        for target in ([via] + [i for i in survivors if i != via])[:3]:
            try:
                self.c.admin("--socket", self.c.nodes[target].api, "cluster", "remove", node.id)
                rec["removed_ok"] = True
                break
            except RuntimeError as e:  # no answer, say: the statement may be out; again
                rec.setdefault("errors", []).append(str(e)[:200])
        with self.lock:
            self.c.removed.add(victim)
        logf = os.path.join(node.dir, "engramd.log")
        deadline = time.monotonic() + MEMBER_WAIT_S
        while time.monotonic() < deadline and not {"learned_s", "left_everywhere_s"} <= set(rec):
            with open(logf, errors="replace") as f:
                if "learned_s" not in rec and REMOVED_LOG in f.read():
                    rec["learned_s"] = round(now() - rec["t_remove"], 2)
            if "left_everywhere_s" not in rec and all(
                    v is not None and v.get(node.id) == "left"
                    for v in self.c.membership().values()):
                rec["left_everywhere_s"] = round(now() - rec["t_remove"], 2)
            time.sleep(0.2)
        with self.lock:
            rec["stop_exit"] = node.stop()
        entry["detail"].update(drained=rec["drained"], learned_s=rec.get("learned_s"),
                               left_everywhere_s=rec.get("left_everywhere_s"))
        self.ev("removed", node=node.name(), learned_s=rec.get("learned_s"),
                left_everywhere_s=rec.get("left_everywhere_s"), stop_exit=rec["stop_exit"])

    def restart(self, node, skew):
        with self.lock:
            if not node.alive():
                node.start(skew)
        self.ev("restart", node=node.name(), skew_s=node.skew)

    def rejoin(self, node, rec):
        """The wiped node back on its empty data; its replica id once the dot check is done
        (a node that cannot prove its counters current takes a new one: it must here), and
        how long until it lists every member again (it remembers nobody: only its seed)."""
        self.restart(node, node.skew)
        started = now()
        deadline = time.monotonic() + 15
        rid = None
        while time.monotonic() < deadline:
            if "knows_all_s" not in rec:
                view = (self.c.status(node.idx) or {}).get("members", [])
                known = {m["node"] for m in view if m["state"] != "left"}
                if {self.c.nodes[i].id for i in self.c.active()} <= known:
                    rec["knows_all_s"] = round(now() - started, 2)
            if rid is None or rid in rec["replicas_before"]:
                rid = node.replica_id()
            if rid and rid not in rec["replicas_before"] and "knows_all_s" in rec:
                break
            time.sleep(0.3)
        rec["replica_after"] = rid
        rec.setdefault("knows_all_s", None)
        if rid and rid not in node.replicas:
            node.replicas.append(rid)
        self.ev("rejoined", node=node.name(), replica=rid, knows_all_s=rec["knows_all_s"])

    def resume(self, node):
        with self.lock:
            node.signal(signal.SIGCONT)
            node.paused = False
        self.ev("resume", node=node.name())

    def heal_all(self):
        with self.lock:
            self.c.net.heal()
            for i in range(len(self.c.net.hosts)):
                self.c.net.set_dup(i, 0)
                self.c.net.set_reset(i, False)
                if i in self.c.net.delayers:
                    self.c.net.stop_delay(i)
            for node in self.c.nodes:
                if node.idx in self.c.removed:
                    continue
                if node.alive():
                    node.signal(signal.SIGCONT)
                    node.paused = False
                else:
                    node.start(node.skew)
        self.ev("heal-all")


def delay_unavailable(nfqdelay):
    """Why the delay nemesis cannot run here, or None."""
    if not nfqdelay or not os.path.exists(nfqdelay):
        return ("jepsen/nfqdelay is not built (libnetfilter_queue was not found by pkg-config: "
                "apt-get install libnetfilter-queue-dev, then reconfigure)")
    if not shutil.which("iptables"):
        return "no `iptables` (apt-get install iptables)"
    return None


# --------------------------------------------------------------------------------------------
# Watchers: the nodes' memory and counters, and the access-control actor


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Sampler(threading.Thread):
    """Every second: each node's resident set size (from /proc) and, every third second, its
    `engram stats` counters (clock_refusals); maxima are kept per process start."""

    def __init__(self, cluster, stop):
        super().__init__(daemon=True, name="sampler")
        self.c = cluster
        self.stop_ev = stop
        self.rss = []  # (t, node name, KiB)
        self.refusals = {}  # (node name, start) -> highest clock_refusals seen
        self.error = None

    def run(self):
        try:
            tick = 0
            while not self.stop_ev.wait(1.0):
                self.sample(stats=tick % 3 == 0)
                tick += 1
        except Exception:  # noqa: BLE001
            self.error = traceback.format_exc()

    def sample(self, stats=True):
        for node in self.c.nodes:
            if node.alive():
                kib = rss_kib(node.proc.pid)
                if kib is not None:
                    self.rss.append((now(), node.name(), kib))
            if stats and node.alive() and not node.paused:
                r = self.c.cli(node.idx, "stats", timeout=3)
                m = re.search(r"clock_refusals: (\d+)", r.stdout or "")
                if m:
                    k = (node.name(), node.starts)
                    self.refusals[k] = max(self.refusals.get(k, 0), int(m.group(1)))

    def clock_refusals(self):
        return sum(self.refusals.values())


class AclActor(threading.Thread):
    """The acl workload's admin: revokes, at seeded moments, the allow-user statement of a
    few writing agents (what they wrote becomes unreadable at once, the retrospective check)
    and the scope grant of a few readers, and grants run:jepsen to the late agents (who had
    no grant on it at the start), while a watcher polls every node's `acl show` to learn when
    each node learned each revocation and each grant."""

    def __init__(self, cluster, history, rng, duration, stop, clients, late=()):
        super().__init__(daemon=True, name="acl")
        self.c = cluster
        self.h = history
        self.rng = rng
        self.duration = duration
        self.stop_ev = stop
        self.clients = clients
        self.late = list(late)  # pids of the agents granted run:jepsen only during the run
        self.revocations = []  # {kind, agent, pid, statement, revocation, issued, learned}
        # revocations whose outcome is unknown (the node did not answer): {agent, pid, invoked}
        self.maybe_revoked = []
        # {agent, pid, statement, node, invoked, issued, learned, not_held}: not_held maps a
        # node to the times the watcher asked it and it did not hold the grant yet
        self.grants = []
        self.maybe_granted = []  # grants whose outcome is unknown: {agent, pid, invoked}
        self.error = None

    def run(self):
        try:
            victims = self.rng.sample([p for p in range(self.clients) if p not in self.late], 3)
            moments = sorted(self.rng.uniform(0.15, 0.75) * self.duration for _ in victims)
            plan = [(at, "revoke", k, pid) for k, (pid, at) in enumerate(zip(victims, moments))]
            plan += [(self.rng.uniform(0.1, 0.6) * self.duration, "grant", k, pid)
                     for k, pid in enumerate(self.late)]
            t0 = time.monotonic()
            for at, what, k, pid in sorted(plan):
                if self.stop_ev.wait(max(0, t0 + at - time.monotonic())):
                    break
                if what == "grant":
                    self.grant(pid)
                else:
                    self.revoke(k, pid)
            while not self.stop_ev.wait(0.2):
                pass
        except Exception:  # noqa: BLE001
            self.error = traceback.format_exc()

    def admin_on(self, node, *args):
        """The admin's command through node; (its output, None), or (None, "unknown") when it
        was sent and never answered, or (None, "failed") when it surely did nothing."""
        try:
            return self.c.admin("--socket", self.c.nodes[node].api, *args).strip(), None, None
        except RuntimeError as e:
            # Sent and never answered is no outcome: the node may have applied it (one coming
            # back took the request just before the CLI's 5 s were up, and its answer came too
            # late), and then it holds. Every other failure (no node to send to, no key for
            # it) sent nothing.
            return None, ("unknown" if "no reply from" in str(e) else "failed"), str(e)[:200]

    def revoke(self, k, pid):
        agent = f"agent-{pid}"
        # the first two lose the user (their fragments vanish), the last its read grant
        kind = "user" if k < 2 else "scope"
        target = self.c.user_grants[agent] if kind == "user" else self.c.scope_grants[agent][0]
        node = self.rng.choice(self.c.active())
        invoked = now()
        rid, *why = self.admin_on(node, "acl", "revoke", target)
        if rid is None:
            # an unanswered revocation may hold: refusals of that agent are allowed from then
            if why[0] == "unknown":
                self.maybe_revoked.append(dict(agent=agent, pid=pid, invoked=invoked))
            self.h.event(f"revoke-{why[0]}", agent=agent, err=why[1])
            return
        rev = dict(kind=kind, agent=agent, pid=pid, statement=target, revocation=rid,
                   node=node, invoked=invoked, issued=now(), learned={})
        self.revocations.append(rev)
        self.h.event("revoke", agent=agent, what=kind, statement=target, revocation=rid,
                     node=f"n{node + 1}")
        log(f"acl: revoked {kind} grant of {agent} through n{node + 1}")

    def grant(self, pid):
        """read,write on run:jepsen for a late agent, through a member, back-dated like the
        grants made at the start (a node whose clock is behind would hold it pending)."""
        agent = f"agent-{pid}"
        node = self.rng.choice(self.c.active())
        invoked = now()
        gid, *why = self.admin_on(node, "acl", "allow", agent, SCOPE_A, "read,write",
                                  f"--from=-{BACKDATE_S}s")
        if gid is None:
            if why[0] == "unknown":  # it may hold: that agent may be served from then on
                self.maybe_granted.append(dict(agent=agent, pid=pid, invoked=invoked))
            self.h.event(f"grant-{why[0]}", agent=agent, err=why[1])
            return
        self.grants.append(dict(agent=agent, pid=pid, statement=gid, node=node,
                                invoked=invoked, issued=now(), learned={}, not_held={}))
        self.h.event("grant", agent=agent, statement=gid, node=f"n{node + 1}")
        log(f"acl: granted {SCOPE_A} to {agent} through n{node + 1}")


def learned_everywhere(cluster, rec):
    """Whether every member holds what rec["learned"] tracks (node name -> when)."""
    return {cluster.nodes[i].name() for i in cluster.active()} <= set(rec["learned"])


def subscribed(cluster, idx):
    """Whether node idx counts a subscriber (the watcher's SUBSCRIBE was acknowledged)."""
    r = cluster.cli(idx, "stats", timeout=3)
    m = re.search(r"subscribers: (\d+)", r.stdout or "")
    return bool(m) and int(m.group(1)) > 0


def wait_until(cond, seconds, what):
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {seconds} s: {what}")
        time.sleep(0.1)


class Subscriber(threading.Thread):
    """`engram --json watch team:jepsen` on one node for the whole run, as the reader
    agent: every event with the time it arrived. If the watch ends (its node was killed),
    the gap is recorded and it starts again; the watch check judges gapless streams only."""

    def __init__(self, cluster, idx, stop):
        super().__init__(daemon=True, name=f"watch-n{idx + 1}")
        self.c = cluster
        self.idx = idx
        self.stop_ev = stop
        self.events = []  # (t, key, op, value)
        self.gaps = []  # (t, exit status)
        self.proc = None
        self.error = None

    def run(self):
        try:
            env = dict(os.environ, ENGRAM_HOME=self.c.home, ENGRAM_AGENT=READER,
                       ENGRAM_USER=USER)
            env.pop("ENGRAM_SOCKET", None)
            while not self.stop_ev.is_set():
                self.proc = subprocess.Popen(
                    [self.c.engram, "--socket", self.c.nodes[self.idx].api, "--json", "watch",
                     SCOPE_B], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True, stdin=subprocess.DEVNULL)
                for line in self.proc.stdout:
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    self.events.append((now(), ev.get("key"), ev.get("op"), ev.get("value")))
                rc = self.proc.wait()
                if not self.stop_ev.is_set():
                    self.gaps.append((now(), rc))
                    self.stop_ev.wait(0.5)
        except Exception:  # noqa: BLE001
            self.error = traceback.format_exc()

    def stop(self):
        """SIGTERM (the CLI ends cleanly on it), once the stream had time to drain."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class AclWatcher(threading.Thread):
    """Polls `acl show --json` on every node; records when each first holds a revocation or
    a grant (held and valid), and, for a grant, every time a node answered without it."""

    def __init__(self, cluster, actor, stop):
        super().__init__(daemon=True, name="acl-watch")
        self.c = cluster
        self.actor = actor
        self.stop_ev = stop
        self.error = None

    def poll_once(self):
        pending = [r for r in self.actor.revocations if not learned_everywhere(self.c, r)]
        grants = [g for g in self.actor.grants if not learned_everywhere(self.c, g)]
        if not pending and not grants:
            return
        for node in self.c.nodes:
            if not node.alive() or node.paused:
                continue
            asked = now()
            r = self.c.cli(node.idx, "--json", "acl", "show", timeout=3)
            if r.returncode != 0:
                continue
            try:
                doc = json.loads(r.stdout)
            except ValueError:
                continue
            ids = {st.get("id"): st for st in doc.get("statements", [])}
            for rev in pending:
                if node.name() in rev["learned"]:
                    continue
                st = ids.get(rev["statement"])
                if rev["revocation"] in ids or (st is not None and not st.get("valid", True)):
                    # it held the revocation by the time the answer came; the reads the
                    # checker judges are those invoked after that answer
                    rev["learned"][node.name()] = now()
                    rev.setdefault("asked", {})[node.name()] = asked
            for g in grants:
                if node.name() in g["learned"]:
                    continue
                st = ids.get(g["statement"])
                if st is not None and st.get("valid"):
                    g["learned"][node.name()] = now()  # ops invoked after it must be served
                else:  # it did not hold it when it answered: served ops done before are wrong
                    g["not_held"].setdefault(node.name(), []).append(asked)

    def run(self):
        try:
            while not self.stop_ev.wait(0.2):
                self.poll_once()
        except Exception:  # noqa: BLE001
            self.error = traceback.format_exc()


# --------------------------------------------------------------------------------------------
# Convergence and the checker


def snapshot(cluster, idx):
    """One node's view of everything the test wrote, or None if it did not answer."""
    st = cluster.status(idx)
    if st is None:
        return None
    snap = {"vectors": {s["scope"]: s["vector"] for s in st["scopes"]},
            "members": sorted((m["endpoint"], m["state"]) for m in st["members"])}
    for key in SET_KEYS:
        r = cluster.cli(idx, "set", "members", SCOPE_A, key)
        if r.returncode not in (0, 3):
            return None
        snap[f"set:{key}"] = sorted(r.stdout.split())
    for key in COUNTER_KEYS:
        r = cluster.cli(idx, "counter", "get", SCOPE_A, key)
        if r.returncode not in (0, 3):
            return None
        snap[f"counter:{key}"] = int(r.stdout.strip() or 0)
    for key in LOG_KEYS:
        r = cluster.cli(idx, "log", "range", SCOPE_B, key)
        if r.returncode not in (0, 3):
            return None
        snap[f"log:{key}"] = r.stdout.split("\n")[:-1]
    for scope, key in REG_KEYS:
        r = cluster.cli(idx, "get", "--json", scope, key)
        if r.returncode not in (0, 3):
            return None
        snap[f"reg:{key}"] = sorted(reg_values(r))
    if cluster.cfg.get("workload") == "kv":  # the one-writer keys: deleted, with a ttl
        # when, and with which clock offset, the node was asked (the ttl check)
        snap.update(at=now(), clock=cluster.nodes[idx].clock)
        for p in range(NODES * int(cluster.cfg.get("clients", 2))):
            for name, key in (("kv", f"k{p}"), ("ttl", f"x{p}")):
                r = cluster.cli(idx, "get", "--json", SCOPE_A, key)
                if r.returncode not in (0, 3):
                    return None
                snap[f"{name}:{key}"] = sorted(reg_values(r))
    return snap


def data_view(snap):
    return {k: v for k, v in snap.items() if k not in ("members", "at", "clock")}


def converge(cluster, seconds):
    """Polls every member until all report the same vectors and data; returns (seconds taken
    or None, the last snapshots: one per node, None for a node that is not a member)."""
    start = time.monotonic()
    deadline = start + seconds
    snaps = None
    while True:
        members = cluster.active()
        snaps = [snapshot(cluster, i) if i in members else None
                 for i in range(len(cluster.nodes))]
        got = [snaps[i] for i in members]
        if all(s is not None for s in got):
            views = [json.dumps(data_view(s), sort_keys=True) for s in got]
            if len(set(views)) == 1 and got[0]["vectors"]:
                return time.monotonic() - start, snaps
        if time.monotonic() > deadline:
            return None, snaps
        time.sleep(0.5)


CHECKS = {
    "mixed": ["convergence", "sets", "counters", "logs", "registers", "handoff", "reads",
              "access"],
    "set": ["convergence", "sets", "reads", "session", "handoff", "access"],
    "durability": ["convergence", "sets", "logs", "reads", "access"],
    "counter": ["convergence", "counters", "reads", "access"],
    "log": ["convergence", "logs", "causal_order", "reads", "access"],
    "register": ["convergence", "registers", "register_causality", "handoff", "access"],
    "acl": ["convergence", "acl"],
    "kv": ["convergence", "deletes", "ttl", "replicas", "private", "access"],
}
WIPE_WINDOW_S = 2.0  # adds a wiped node acknowledged this soon before the wipe may be lost
LOSS_REASONS = ("wipe", "removed")  # why an acknowledged write may be lost (may_be_lost)


class Checker:
    """Every check over one history: a verdict per check (valid or not, with counts) and the
    failures with the ops they name."""

    def __init__(self, history, snaps, converged, workload="mixed", extra=None):
        self.ops = sorted(history.ops, key=lambda o: o["invoke"])
        self.snaps = snaps
        self.converged = converged
        self.workload = workload
        self.extra = extra or {}  # rss samples, limits, revocations, clock refusals
        self.failures = []  # (check, message, [op ids], window (t0, t1))
        self.results = collections.OrderedDict()
        self.counts = collections.defaultdict(collections.Counter)
        self.current = None

    def fail(self, check, message, ops=(), around=None):
        self.counts[check]["violations"] += 1
        if len(self.failures) < 200:
            self.failures.append((check, message, [o["id"] for o in ops], around))

    def of(self, kind, typ=None):
        return [o for o in self.ops if o["kind"] == kind and (typ is None or o["type"] == typ)]

    def names(self):
        names = list(CHECKS[self.workload])
        if "rss" in self.extra:
            names.append("resources")
        if self.extra.get("clock_big"):
            names.append("clock_refusals")
        if "subscribers" in self.extra:
            names.append("watch")
        if "delays" in self.extra:
            names.append("delay")
        if "wipes" in self.extra:
            names.append("wipe")
        if "membership" in self.extra:
            names.append("membership_change")
        return names

    def boundaries(self, node):
        """Times node lost data it had acknowledged: each wipe (a kill loses nothing
        acknowledged, under durability=async too: a turn's writes reach the WAL's file before
        its replies). A node's reads are judged against its own acknowledged writes of the
        same epoch only."""
        if not hasattr(self, "_boundaries"):  # the history does not change while checked
            self._boundaries = collections.defaultdict(list)
            for o in self.ops:
                if o["process"] == "nemesis" and o["kind"] == "wipe" and o.get("node"):
                    self._boundaries[o["node"]].append(o["invoke"])
        return sorted(self._boundaries.get(f"n{node + 1}", []))

    def epoch(self, node, t):
        return sum(1 for b in self.boundaries(node) if b <= t)

    def nemesis_events(self):
        if not hasattr(self, "_events"):  # the history does not change while checked
            self._events = [o for o in self.ops if o["process"] == "nemesis"]
        return self._events

    def removal(self):
        """The membership nemesis' removed node: its record, or {}."""
        return (self.extra.get("membership") or {}).get("removed") or {}

    def may_be_lost(self, o):
        """Why an acknowledged write o may be missing at the end, or None: its node was wiped
        soon after (its data destroyed before gossip carried it out), or it was acknowledged
        by a node removed from the cluster after the marker that handed its writes over (what
        only a removed node holds is not kept) and no read on another member showed it before
        the removal was sent (then a remaining member held it: it must be kept)."""
        name = f"n{o['node'] + 1}"
        rm = self.removal()
        if rm.get("node") == name and o["complete"] > rm.get("t_mark", float("inf")) and \
                not self.seen_elsewhere(o, rm.get("t_remove", float("inf"))):
            return "removed"
        for e in self.nemesis_events():
            if e.get("node") != name or e["invoke"] < o["complete"]:
                continue
            if e["kind"] == "wipe" and e["invoke"] - o["complete"] <= WIPE_WINDOW_S:
                return "wipe"
        return None

    def seen_elsewhere(self, o, before):
        """Whether a read on another node than o's, complete before `before`, returned o's
        value (a set's element, a log's entry)."""
        return any(r["type"] == "ok" and r["node"] != o["node"] and r["complete"] < before
                   and r.get("key") == o["key"] and o["value"] in (r.get("value") or [])
                   for r in self.ops if r["kind"] in ("set-read", "handoff-set-read", "log-read"))

    def run(self):
        before = len(self.failures)
        for name in self.names():
            n0 = len(self.failures)
            self.counts[name]["violations"] += 0
            getattr(self, f"check_{name}")()
            self.results[name] = "ok" if len(self.failures) == n0 and \
                self.counts[name]["violations"] == 0 else "FAIL"
        return len(self.failures) == before

    def verdicts(self):
        return {name: dict(valid=res == "ok", **self.counts.get(name, {}),
                           errors=[m for c, m, _, _ in self.failures if c == name][:20])
                for name, res in self.results.items()}

    def relearning(self, o):
        """A refusal on a node wiped, or joined, before it ended (an op in flight when the
        wipe began included), until that agent is served there again and within RELEARN_S of
        that start: the node lost the access graph with its data, or never had it, and learns
        it by gossip (a partition may hold it back a few seconds more)."""
        name = f"n{o['node'] + 1}"
        joins = [e["invoke"] for e in self.nemesis_events()
                 if e["kind"] == "join" and e.get("node") == name]
        starts = sorted(b for b in self.boundaries(o["node"]) + joins if b <= o["complete"])
        if not starts or o["process"] == "nemesis" or o["invoke"] - starts[-1] > RELEARN_S:
            return False
        return not any(p["process"] == o["process"] and p["node"] == o["node"] and
                       p["type"] == "ok" and starts[-1] < p["invoke"] < o["invoke"]
                       for p in self.ops)

    def refused_as_removed(self, o):
        """A refusal by the removed node once its removal was sent (it refuses shared writes
        as soon as it learns it)."""
        rm = self.removal()
        return rm.get("node") == f"n{o['node'] + 1}" and o["complete"] >= rm.get(
            "t_remove", float("inf"))

    def check_access(self):
        """Every client is granted both scopes for the whole run: no op may be refused."""
        denied = [o for o in self.ops if o.get("rc") == 6 and not self.relearning(o)
                  and not self.refused_as_removed(o)]
        self.counts["access"]["refused"] = len(denied)
        self.counts["access"]["refused_by_removed_node"] = sum(
            1 for o in self.ops if o.get("rc") == 6 and self.refused_as_removed(o))
        self.counts["access"]["refused_while_relearning"] = sum(
            1 for o in self.ops if o.get("rc") == 6) - len(denied) - \
            self.counts["access"]["refused_by_removed_node"]
        if denied:
            self.fail("access", f"{len(denied)} operations of granted agents were refused "
                      f"(exit 6): {denied[0].get('err', '')}", denied[:5])

    def check_convergence(self):
        self.counts["convergence"]["seconds_x10"] = (
            -1 if self.converged is None else int(round(self.converged * 10)))
        if self.converged is None:
            views = {}
            for i, s in enumerate(self.snaps or []):
                views[f"n{i + 1}"] = None if s is None else data_view(s)
            self.fail("convergence", "the nodes did not converge: "
                      + json.dumps(views, sort_keys=True)[:4000])

    def final_nodes(self):
        """The members at the end (a node joined or removed in the run counts as it ended)."""
        return self.extra.get("nodes") or [f"n{i + 1}" for i in range(NODES)]

    def finals(self):
        return [(f"n{i + 1}", s) for i, s in enumerate(self.snaps or []) if s is not None]

    def removed(self, key, t=float("inf"), typ=("ok", "info")):
        """Elements of set key whose remove was invoked before t with outcome in typ."""
        return {o["value"] for o in self.of("set-rm") if o["key"] == key and
                o["type"] in typ and o["invoke"] <= t}

    def check_sets(self):
        keys = sorted({o["key"] for o in self.of("set-add")})
        for key in keys:
            adds = [o for o in self.of("set-add") if o["key"] == key]
            ok = {o["value"]: o for o in adds if o["type"] == "ok"}
            maybe = {o["value"]: o for o in adds if o["type"] in ("ok", "info")}
            failed = {o["value"]: o for o in adds if o["type"] == "fail"}
            removed = self.removed(key)
            gone = self.removed(key, typ=("ok",))
            self.counts["sets"]["acknowledged_adds"] += len(ok)
            self.counts["sets"]["removes_ok"] += len(gone)
            for name, s in self.finals():
                members = set(s.get(f"set:{key}", []))
                lost = [ok[v] for v in sorted(set(ok) - members - removed)]
                excused = collections.Counter(self.may_be_lost(o) for o in lost)
                lost = [o for o in lost if self.may_be_lost(o) is None]
                for why in LOSS_REASONS:
                    self.counts["sets"][f"lost_{why}"] = max(
                        self.counts["sets"][f"lost_{why}"], excused[why])
                self.counts["sets"]["lost"] = max(self.counts["sets"]["lost"], len(lost))
                if lost:
                    self.fail("sets", f"{name}: {len(lost)} acknowledged adds to {key} are "
                              f"missing (never removed): {[o['value'] for o in lost[:10]]}",
                              lost[:5])
                back = sorted(members & gone)
                self.counts["sets"]["resurrected"] = max(self.counts["sets"]["resurrected"],
                                                         len(back))
                if back:
                    self.fail("sets", f"{name}: {key} holds elements whose remove was "
                              f"acknowledged (resurrected): {back[:10]}")
                extra = sorted(members - set(maybe))
                if extra:
                    self.fail("sets", f"{name}: {key} holds elements never (successfully or "
                              f"indeterminately) added: {extra[:10]}",
                              [failed[v] for v in extra if v in failed][:5])

    def check_counters(self):
        for key in sorted({o["key"] for o in self.of("counter-add")}):
            adds = [o for o in self.of("counter-add") if o["key"] == key]
            # an acknowledged add that may be lost (may_be_lost) counts as indeterminate
            sure = [o for o in adds if o["type"] == "ok" and self.may_be_lost(o) is None]
            unsure = [o for o in adds if o["type"] == "info" or
                      (o["type"] == "ok" and self.may_be_lost(o) is not None)]
            lo = sum(o["value"] for o in sure) + sum(min(0, o["value"]) for o in unsure)
            hi = sum(o["value"] for o in sure) + sum(max(0, o["value"]) for o in unsure)
            self.counts["counters"]["acknowledged_adds"] += sum(1 for o in adds
                                                                if o["type"] == "ok")
            self.counts["counters"]["negative_adds"] += sum(1 for o in adds if o["value"] < 0)
            for name, s in self.finals():
                v = s.get(f"counter:{key}", 0)
                if not lo <= v <= hi:
                    self.fail("counters", f"{name}: counter {key} = {v}, expected within "
                              f"[{lo}, {hi}] (acknowledged sum, plus or minus indeterminate)")

    def check_logs(self):
        for key in LOG_KEYS:
            apps = [o for o in self.of("log-append") if o["key"] == key]
            ok = {o["value"]: o for o in apps if o["type"] == "ok"}
            maybe = {o["value"]: o for o in apps if o["type"] in ("ok", "info")}
            self.counts["logs"]["acknowledged_appends"] += len(ok)
            for name, s in self.finals():
                entries = s[f"log:{key}"]
                counts = collections.Counter(entries)
                dup = [e for e, c in counts.items() if c > 1]
                if dup:
                    self.fail("logs", f"{name}: log {key} holds entries more than once: "
                              f"{dup[:10]}", [ok[e] for e in dup if e in ok][:5])
                lost = [ok[v] for v in sorted(set(ok) - set(entries))]
                excused = collections.Counter(self.may_be_lost(o) for o in lost)
                lost = [o for o in lost if self.may_be_lost(o) is None]
                for why in LOSS_REASONS:
                    self.counts["logs"][f"lost_{why}"] = max(
                        self.counts["logs"][f"lost_{why}"], excused[why])
                self.counts["logs"]["lost"] = max(self.counts["logs"]["lost"], len(lost))
                if lost:
                    self.fail("logs", f"{name}: {len(lost)} acknowledged appends to {key} "
                              f"are missing: {[o['value'] for o in lost[:10]]}", lost[:5])
                extra = sorted(set(entries) - set(maybe))
                if extra:
                    self.fail("logs", f"{name}: log {key} holds entries never appended: "
                              f"{extra[:10]}")
                # Session order: a client's acknowledged appends on one node (each after the
                # previous was acknowledged there, so causally after it) appear in that order.
                # Appends on different nodes with no token between are concurrent: the
                # log may order them either way (causal_order covers the handed-over ones).
                pos = {e: i for i, e in enumerate(entries)}
                by_client = collections.defaultdict(list)
                for o in sorted(ok.values(), key=lambda o: o["invoke"]):
                    by_client[(o["process"], o["node"])].append(o)
                for (proc, _node), seq in by_client.items():
                    for a, b in zip(seq, seq[1:]):
                        if a["value"] in pos and b["value"] in pos and \
                                pos[a["value"]] > pos[b["value"]]:
                            self.fail("logs", f"{name}: log {key} has {b['value']} before "
                                      f"{a['value']}, appended in that order by client "
                                      f"{proc}", [a, b])

    def check_causal_order(self):
        """An append made after its client read the log (on the same node, or on another and
        handed over with the token before appending) follows every entry it read, on every
        node, under clock skew too."""
        pairs = bad = 0
        for o in self.of("log-append"):
            if o["type"] == "fail" or o.get("read_before") is None:
                continue
            for name, s in self.finals():
                entries = s.get(f"log:{o['key']}", [])
                pos = {e: i for i, e in enumerate(entries)}
                if o["value"] not in pos:
                    continue
                early = [e for e in o["read_before"] if e in pos and
                         pos[e] > pos[o["value"]]]
                pairs += len(o["read_before"])
                if early:
                    bad += len(early)
                    self.fail("causal_order", f"{name}: {o['value']} appended on "
                              f"n{o['node'] + 1} after its client read "
                              f"{len(o['read_before'])} entries, yet placed before "
                              f"{len(early)} of them: {early[:5]}", [o],
                              (o["invoke"] - 5, o["complete"]))
        # `log range --after TOKEN` on another node: it holds the append the token came from
        # and everything that append's client had read before it
        by_id = {o["id"]: o for o in self.ops}
        after_reads = 0
        for r in self.of("log-read", "ok"):
            if r.get("carried") is None:
                continue
            after_reads += 1
            a = by_id[r["carried"]]
            need = [a["value"]] + list(a.get("read_before") or [])
            missing = [e for e in need if e not in set(r["value"])]
            if missing:
                bad += 1
                self.fail("causal_order", f"log range --after the token of {a['value']} "
                          f"(n{a['node'] + 1}) on n{r['node'] + 1} lacks {len(missing)} entries "
                          f"the token covers: {missing[:5]}", [a, r],
                          (a["invoke"] - 2, r["complete"]))
        self.counts["causal_order"]["log_range_after_reads"] = after_reads
        self.counts["causal_order"]["pairs_checked"] = pairs
        self.counts["causal_order"]["misordered_pairs"] = bad
        self.counts["causal_order"]["cross_node_appends"] = sum(
            1 for o in self.of("log-append") if o.get("read_before") is not None
            and o["node"] != o["process"] % NODES)

    def written_before(self, kinds, scope, key, t):
        return {o["value"] for o in self.ops if o["kind"] in kinds and o.get("scope") == scope
                and o.get("key") == key and o["invoke"] <= t}

    def check_registers(self):
        for scope, key in REG_KEYS:
            written = self.written_before(("put",), scope, key, float("inf"))
            for name, s in self.finals():
                bad = [v for v in s[f"reg:{key}"] if v not in written]
                if bad:
                    self.fail("registers", f"{name}: register {key} ends as {bad}, never "
                              f"written")
        for o in self.of("get", "ok"):
            written = self.written_before(("put",), o["scope"], o["key"], o["complete"])
            bad = [v for v in o["value"] if v not in written]
            if bad:
                self.fail("registers", f"read of {o['key']} on n{o['node'] + 1} returned "
                          f"{bad}, never written (before the read completed)", [o],
                          (o["invoke"] - 5, o["complete"]))

    def check_register_causality(self):
        """A put made after its writer read the register (same node, or handed over by token)
        overwrites what it read: no value it read survives it, in the final state or in a
        read on the put's node after it was acknowledged."""
        checked = 0
        for p in self.of("put", "ok"):
            read = set(p.get("read_before") or [])
            if not read:
                continue
            checked += 1
            for name, s in self.finals():
                back = sorted(read & set(s.get(f"reg:{p['key']}", [])))
                if back:
                    self.fail("register_causality", f"{name}: register {p['key']} ends with "
                              f"{back}, read and then overwritten by {p['value']} on "
                              f"n{p['node'] + 1}", [p], (p["invoke"] - 5, p["complete"]))
            for g in self.of("get", "ok"):
                if g["key"] == p["key"] and g.get("scope") == p["scope"] and \
                        g["node"] == p["node"] and g["invoke"] > p["complete"]:
                    back = sorted(read & set(g["value"]))
                    if back:
                        self.fail("register_causality", f"read of {g['key']} on "
                                  f"n{g['node'] + 1} returned {back} after {p['value']}, "
                                  f"which overwrote them, was acknowledged there", [p, g],
                                  (p["invoke"] - 2, g["complete"]))
        self.counts["register_causality"]["puts_after_reads"] = checked

    def check_handoff(self):
        by_id = {o["id"]: o for o in self.ops}
        # A hand-off put with no answer may still land later, after this client's next put
        # on the same node, and then rightly overwrite it: such values are allowed too. An
        # acknowledged earlier put's value never is (the new put overwrote it causally).
        maybe = collections.defaultdict(set)
        for o in self.of("handoff-put", "info"):
            maybe[o["key"]].add(o["value"])
        self.counts["handoff"]["handoffs"] = len(self.of("handoff-get", "ok"))
        for g in self.of("handoff-get", "ok"):
            put = by_id[g["put"]]
            got = set(g["value"])
            if not got or not got <= {put["value"]} | maybe[put["key"]]:
                self.fail("handoff", f"put {put['key']}={put['value']} acknowledged on "
                          f"n{put['node'] + 1} (token {put.get('token')}), then get --after on "
                          f"n{g['node'] + 1} returned {g['value']}", [put, g],
                          (put["invoke"] - 2, g["complete"]))
        for s in self.of("handoff-set-read", "ok"):
            put = by_id[s["put"]]
            removed = self.removed(s["key"], s["complete"])
            need = [o for o in self.of("set-add", "ok") if o["key"] == s["key"]
                    and o["node"] == put["node"] and o["complete"] < put["invoke"]
                    and o["value"] not in removed and self.may_be_lost(o) is None]
            have = set(s["value"])
            missing = [o for o in need if o["value"] not in have]
            if missing:
                self.fail("handoff", f"after get --after the token of put {put['value']} "
                          f"(n{put['node'] + 1}), n{s['node'] + 1} lacks "
                          f"{len(missing)} set elements acknowledged on n{put['node'] + 1} before "
                          f"the put: {[o['value'] for o in missing[:10]]}",
                          [put, s] + missing[:3], (put["invoke"] - 2, s["complete"]))

    def check_session(self):
        """Session guarantees on the add-only set, one client on its node: monotonic reads
        (a later read holds all an earlier one held), read-your-writes (its acknowledged adds
        are in its later reads), and writes-follow-reads (an add made after reading R is never
        seen anywhere without all of R: the scope's operations apply in causal order)."""
        key = SESSION_SET
        reads = [o for o in self.of("set-read", "ok") if o["key"] == key]
        adds = [o for o in self.of("set-add") if o["key"] == key]
        last = {}
        mr = ryw = wfr = 0
        for o in reads:  # sorted by invoke: one client's ops never overlap
            k = (o["process"], o["node"], self.epoch(o["node"], o["invoke"]))
            if k in last:
                gone = set(last[k]["value"]) - set(o["value"])
                if gone:
                    mr += 1
                    self.fail("session", f"monotonic reads: client {o['process']} read "
                              f"{key} on n{o['node'] + 1} without {sorted(gone)[:5]}, which "
                              f"its previous read there held", [last[k], o],
                              (last[k]["invoke"], o["complete"]))
            last[k] = o
            mine = [a for a in adds if a["process"] == o["process"] and a["type"] == "ok"
                    and a["node"] == o["node"] and a["complete"] < o["invoke"]
                    and self.epoch(a["node"], a["complete"]) == k[2]]
            missing = [a for a in mine if a["value"] not in set(o["value"])]
            if missing:
                ryw += 1
                self.fail("session", f"read-your-writes: client {o['process']} read {key} on "
                          f"n{o['node'] + 1} without its own acknowledged adds "
                          f"{[a['value'] for a in missing[:5]]}", [o] + missing[:3],
                          (missing[0]["invoke"], o["complete"]))
        follows = {a["value"]: a for a in adds if a["type"] != "fail" and a.get("read_before")}
        for o in reads + [r for r in self.of("handoff-set-read", "ok") if r["key"] == key]:
            have = set(o["value"])
            for e in have & set(follows):
                need = set(follows[e]["read_before"]) - have
                if need:
                    wfr += 1
                    self.fail("session", f"writes-follow-reads: a read on n{o['node'] + 1} "
                              f"holds {e}, added after its client read {sorted(need)[:5]}, "
                              f"but not those", [follows[e], o],
                              (follows[e]["invoke"], o["complete"]))
        c = self.counts["session"]
        c.update(reads=len(reads), monotonic_reads_violations=mr, read_your_writes_violations=ryw,
                 writes_follow_reads_violations=wfr, adds_after_reads=len(follows))

    def check_reads(self):
        """Reads during the run: nothing never written, and a node's reads reflect every
        write that node acknowledged before the read was invoked (its own writes are durable
        and visible, restarts included)."""
        adds = self.of("set-add")
        for o in self.of("set-read", "ok"):
            attempted = {a["value"] for a in adds if a["key"] == o["key"]
                         and a["invoke"] <= o["complete"] and a["type"] != "fail"}
            bad = [v for v in o["value"] if v not in attempted]
            if bad:
                self.fail("reads", f"set read of {o['key']} on n{o['node'] + 1} saw {bad[:5]} "
                          f"never added", [o], (o["invoke"] - 5, o["complete"]))
            removed = self.removed(o["key"], o["complete"])
            local = [a for a in adds if a["key"] == o["key"] and a["type"] == "ok"
                     and a["node"] == o["node"] and a["complete"] < o["invoke"]
                     and a["value"] not in removed
                     and self.epoch(a["node"], a["complete"]) == self.epoch(o["node"],
                                                                            o["invoke"])]
            have = set(o["value"])
            missing = [a for a in local if a["value"] not in have]
            if missing:
                self.fail("reads", f"set read of {o['key']} on n{o['node'] + 1} lacks "
                          f"{[a['value'] for a in missing[:5]]}, acknowledged by that node "
                          f"before", [o] + missing[:3], (missing[0]["invoke"] - 1,
                                                         o["complete"]))
        incs = self.of("counter-add")
        for o in self.of("counter-read", "ok"):
            mine = [a for a in incs if a["key"] == o["key"] and a["type"] == "ok"
                    and a["node"] == o["node"] and a["complete"] < o["invoke"]
                    and self.epoch(a["node"], a["complete"]) == self.epoch(o["node"],
                                                                           o["invoke"])]
            some = [a for a in incs if a["key"] == o["key"] and a["type"] != "fail"
                    and a["invoke"] <= o["complete"]]
            # at most: every invoked increment and this node's acknowledged decrements; at
            # least: every invoked decrement and this node's acknowledged increments
            hi = sum(max(0, a["value"]) for a in some) + sum(min(0, a["value"]) for a in mine)
            lo = sum(min(0, a["value"]) for a in some) + sum(max(0, a["value"]) for a in mine)
            if not lo <= o["value"] <= hi:
                self.fail("reads", f"counter read of {o['key']} on n{o['node'] + 1} = "
                          f"{o['value']}, expected within [{lo}, {hi}] (this node's "
                          f"acknowledged, all invoked)", [o], (o["invoke"] - 5, o["complete"]))
        apps = self.of("log-append")
        for o in self.of("log-read", "ok"):
            attempted = {a["value"] for a in apps if a["key"] == o["key"]
                         and a["invoke"] <= o["complete"] and a["type"] != "fail"}
            bad = [v for v in o["value"] if v not in attempted]
            dup = [e for e, c in collections.Counter(o["value"]).items() if c > 1]
            if bad or dup:
                self.fail("reads", f"log read of {o['key']} on n{o['node'] + 1}: never "
                          f"appended {bad[:5]}, duplicated {dup[:5]}", [o],
                          (o["invoke"] - 5, o["complete"]))
            local = [a for a in apps if a["key"] == o["key"] and a["type"] == "ok"
                     and a["node"] == o["node"] and a["complete"] < o["invoke"]
                     and self.epoch(a["node"], a["complete"]) == self.epoch(o["node"],
                                                                            o["invoke"])]
            have = set(o["value"])
            missing = [a for a in local if a["value"] not in have]
            if missing:
                self.fail("reads", f"log read of {o['key']} on n{o['node'] + 1} lacks "
                          f"{[a['value'] for a in missing[:5]]}, acknowledged by that node "
                          f"before", [o] + missing[:3], (missing[0]["invoke"] - 1,
                                                         o["complete"]))
        self.counts["reads"]["reads_checked"] = len(self.of("set-read", "ok")) + len(
            self.of("counter-read", "ok")) + len(self.of("log-read", "ok"))

    def kv_writes(self, key):
        return [o for o in self.ops if o["kind"] in ("kv-put", "kv-rm") and o.get("key") == key]

    def allowed_after(self, writes, t):
        """What a covering read of a one-writer key may return after the writes invoked
        before t: (values, may be empty) from the last acknowledged write and any later
        indeterminate ones; None when there is no acknowledged write to start from."""
        before = [w for w in writes if w["invoke"] < t and w["type"] != "fail"]
        oks = [i for i, w in enumerate(before) if w["type"] == "ok" and
               self.may_be_lost(w) is None]
        if not oks:
            return None
        values, empty = set(), False
        for w in before[oks[-1]:]:
            if w["kind"] == "kv-rm":
                empty = True
            else:
                values.add(w["value"])
        return values, empty

    def check_deletes(self):
        """A deleted key stays deleted unless written again after: a read that covers the
        client's last acknowledged write (on that write's node, or with its token) returns
        exactly what that write left (nothing after a delete), or what a later indeterminate
        write left; no read returns a value never put; every node ends as the last write left
        it."""
        keys = sorted({o["key"] for o in self.ops if o["kind"] in ("kv-put", "kv-rm")})
        strict = 0
        for key in keys:
            writes = self.kv_writes(key)
            put_values = {w["value"] for w in writes if w["kind"] == "kv-put"
                          and w["type"] != "fail"}
            for g in self.of("kv-get", "ok"):
                if g["key"] != key:
                    continue
                never = set(g["value"]) - put_values
                if never:
                    self.fail("deletes", f"read of {key} on n{g['node'] + 1} returned {never}, "
                              "never put", [g])
                done = [w for w in writes if w["complete"] < g["invoke"] and w["type"] == "ok"]
                if not done:
                    continue
                last = done[-1]
                covered = g.get("after") == last.get("token") or (
                    g["node"] == last["node"] and
                    self.epoch(g["node"], last["complete"]) == self.epoch(g["node"],
                                                                          g["invoke"]))
                allowed = self.allowed_after(writes, g["invoke"])
                if not covered or allowed is None:
                    continue
                strict += 1
                values, empty = allowed
                got = set(g["value"])
                if (not got and not empty) or not got <= values:
                    self.fail("deletes", f"read of {key} on n{g['node'] + 1} returned "
                              f"{sorted(got) or 'nothing'} after {last['kind']} "
                              f"{last.get('value', '')} was acknowledged (it covers it): "
                              f"allowed {sorted(values)}{' or nothing' if empty else ''}",
                              [last, g], (last["invoke"] - 2, g["complete"]))
            allowed = self.allowed_after(writes, float("inf"))
            for name, snap in self.finals():
                if allowed is None or f"kv:{key}" not in snap:
                    continue
                values, empty = allowed
                got = set(snap[f"kv:{key}"])
                if (not got and not empty) or not got <= values:
                    self.fail("deletes", f"{name}: {key} ends as {sorted(got) or 'nothing'}; "
                              f"its last writes allow {sorted(values)}"
                              f"{' or nothing' if empty else ''}")
        self.counts["deletes"].update(keys=len(keys), covering_reads=strict,
                                      deletes_ok=len(self.of("kv-rm", "ok")))

    def check_ttl(self):
        """A value put with --ttl expires when its writer's clock, at the write, plus the ttl
        is reached (engramd stamps expires_at from its own wall clock), and each node hides
        it once its own clock passes that. Each kv op records its node's clock offset when
        invoked and when done (the clock nemesis may move it in between), so a put's expiry
        lies within [invoke + least offset + ttl, done + greatest offset + ttl] (test time)
        and a read happened at a node time within [invoke + least, done + greatest]. A value
        is never read, nor held at the end, once the reading node's earliest possible time is
        past the latest possible expiry by more than TTL_TOLERANCE_S; it is read on its own
        node while that node's latest possible time is before the earliest possible expiry by
        more than the tolerance (unless the client wrote again). That latest time is the
        read's, or what the node's clock reached since the put (clock_peak): a node purges a
        value once its clock passes the expiry, and a clock set back after that does not
        bring it back."""
        puts = {o["value"]: o for o in self.of("ttl-put") if o["type"] != "fail"}
        late = live = held_live = 0
        for g in self.of("ttl-get", "ok"):
            t_lo, t_hi = ttl_span(g)
            for v in g["value"]:
                p = puts.get(v)
                if p is None:
                    self.fail("ttl", f"read of {g['key']} returned {v}, never put", [g])
                    continue
                exp_lo, exp_hi = ttl_expiry(p)
                if t_lo > exp_hi + TTL_TOLERANCE_S:
                    late += 1
                    self.fail("ttl", f"n{g['node'] + 1} read {v} {t_lo - exp_hi:.2f} s past "
                              f"its expiry (ttl {p['ttl']} s, put on n{p['node'] + 1}), by the "
                              "clocks of both", [p, g], (p["invoke"] - 1, g["complete"]))
            mine = [p for p in puts.values() if p["key"] == g["key"]
                    and p["invoke"] < g["invoke"]]
            if not mine or mine[-1]["type"] != "ok" or mine[-1]["node"] != g["node"]:
                continue
            p = mine[-1]
            since = g["complete"] + self.clock_peak(g["node"], p["invoke"], g["complete"])
            if max(t_hi, since) < ttl_expiry(p)[0] - TTL_TOLERANCE_S and \
                    self.epoch(g["node"], p["complete"]) == self.epoch(g["node"], g["invoke"]):
                live += 1
                if p["value"] not in g["value"]:
                    self.fail("ttl", f"n{g['node'] + 1} did not return {p['value']}, put there "
                              f"with ttl {p['ttl']} s and not yet expired", [p, g])
        for name, snap in self.finals():
            for v in [v for k, vs in snap.items() if k.startswith("ttl:") for v in vs]:
                p = puts.get(v)
                if p is None:
                    self.fail("ttl", f"{name} ends holding {v}, never put")
                    continue
                # the snapshot time on that node's clock, when recorded (else: it ran out)
                t = snap["at"] + snap.get("clock", 0) if "at" in snap else float("inf")
                if t > ttl_expiry(p)[1] + TTL_TOLERANCE_S:
                    self.fail("ttl", f"{name} ends holding {v} (ttl {p['ttl']} s, put on "
                              f"n{p['node'] + 1}) past its expiry by both clocks", [p])
                else:
                    held_live += 1
        self.counts["ttl"].update(puts=len(puts), read_after_expiry=late,
                                  live_reads_checked=live, held_at_end_unexpired=held_live)

    def clock_peak(self, node, t0, t1):
        """The greatest clock offset node (an index) is known to have had between t0 and t1
        (test time): what the ops that ran on it then recorded, and where the clock nemesis
        set it (a drift's event, logged when it ends, gives where it got to)."""
        name = f"n{node + 1}"
        offsets = [x for o in self.ops if o.get("node") == node and "clock" in o
                   and o["invoke"] <= t1 and o.get("complete", o["invoke"]) >= t0
                   for x in (o["clock"], o.get("clock_done", o["clock"]))]
        offsets += [e["clock_s"] for e in self.nemesis_events()
                    if e.get("node") == name and "clock_s" in e and t0 <= e["invoke"] <= t1]
        return max(offsets, default=0)

    def check_replicas(self):
        """A put acknowledged with --replicas N is held by N nodes when acknowledged: read
        at once (no token) on every other node, the holders plus the nodes that did not
        answer reach N."""
        gets = collections.defaultdict(list)
        for g in self.of("replicas-get"):
            if "put" in g:
                gets[g["put"]].append(g)
        least = None
        checked = 0
        for p in self.of("replicas-put", "ok"):
            gs = gets.get(p["id"], [])
            if len(gs) < p.get("asked", NODES - 1):
                continue
            checked += 1
            holders = 1 + sum(1 for g in gs if g["type"] == "ok" and p["value"] in g["value"])
            unknown = sum(1 for g in gs if g["type"] != "ok")
            least = holders if least is None else min(least, holders)
            if holders + unknown < REPLICAS:
                self.fail("replicas", f"put {p['key']}={p['value']} acknowledged on "
                          f"n{p['node'] + 1} with --replicas {REPLICAS}, yet right after only "
                          f"{holders} nodes held it ({unknown} did not answer)", [p] + gs,
                          (p["invoke"] - 1, max(g["complete"] for g in gs)))
        self.counts["replicas"].update(puts_checked=checked, least_holders=least or 0,
                                       puts_short=len(self.of("replicas-put", "info")))

    def check_private(self):
        """What an agent writes to `private` stays with it on its node: a read of the private
        key returns only values that same agent put on that same node, and, on its own node,
        its last acknowledged one (or a later indeterminate one)."""
        puts = [o for o in self.of("private-put") if o["type"] != "fail"]
        by_value = {o["value"]: o for o in puts}
        leaks = 0
        for g in self.of("private-get", "ok"):
            for v in g["value"]:
                p = by_value.get(v)
                if p is None or p["process"] != g["process"] or p["node"] != g["node"]:
                    leaks += 1
                    self.fail("private", f"agent-{g['process']} read {v} from its private "
                              f"scope on n{g['node'] + 1}, " + (
                                  "never put" if p is None else
                                  f"put by agent-{p['process']} on n{p['node'] + 1}"),
                              [g] + ([p] if p else []))
            mine = [p for p in puts if p["process"] == g["process"] and p["node"] == g["node"]
                    and p["invoke"] < g["invoke"]]
            oks = [i for i, p in enumerate(mine) if p["type"] == "ok"]
            if oks and self.epoch(g["node"], mine[oks[-1]]["complete"]) == \
                    self.epoch(g["node"], g["invoke"]):
                allowed = {p["value"] for p in mine[oks[-1]:]}
                if not set(g["value"]) & allowed:
                    self.fail("private", f"agent-{g['process']} read {g['value']} from its "
                              f"private scope on n{g['node'] + 1}, not its last write there "
                              f"{sorted(allowed)}", [mine[oks[-1]], g])
        self.counts["private"].update(reads=len(self.of("private-get", "ok")), leaks=leaks)

    def check_watch(self):
        """Every subscriber (`engram watch`, one per node, for the whole run, unbroken) gets
        every acknowledged append once, nothing never appended, in causal order: a client's
        appends on one node in their order, and an append after all it was read after."""
        apps = self.of("log-append")
        ok = {o["value"]: o for o in apps if o["type"] == "ok"}
        maybe = {o["value"] for o in apps if o["type"] != "fail"}
        judged = delivered = 0
        for sub in self.extra.get("subscribers", []):
            if sub["gaps"]:
                continue
            judged += 1
            name = sub["node"]
            stream = [v for _t, key, _op, v in sub["events"] if key == "l0"]
            pos = {}
            for i, v in enumerate(stream):
                if v in pos:
                    self.fail("watch", f"{name}'s subscriber got {v} twice")
                pos.setdefault(v, i)
            missing = sorted(set(ok) - set(pos))
            if missing:
                self.fail("watch", f"{name}'s subscriber never got {len(missing)} acknowledged "
                          f"appends: {missing[:5]}", [ok[v] for v in missing[:3]])
            never = sorted(set(pos) - maybe)
            if never:
                self.fail("watch", f"{name}'s subscriber got appends never made: {never[:5]}")
            delivered += len(pos)
            seqs = collections.defaultdict(list)
            for o in sorted(ok.values(), key=lambda o: o["invoke"]):
                seqs[(o["process"], o["node"])].append(o)
            for seq in seqs.values():
                for a, b in zip(seq, seq[1:]):
                    if a["value"] in pos and b["value"] in pos and \
                            pos[a["value"]] > pos[b["value"]]:
                        self.fail("watch", f"{name}'s subscriber got {b['value']} before "
                                  f"{a['value']}, appended in that order on n{a['node'] + 1}",
                                  [a, b])
            for o in apps:
                if o["type"] == "fail" or not o.get("read_before") or o["value"] not in pos:
                    continue
                early = [e for e in o["read_before"] if e in pos and pos[e] > pos[o["value"]]]
                if early:
                    self.fail("watch", f"{name}'s subscriber got {o['value']} before "
                              f"{early[:5]}, which its client had read before appending it",
                              [o])
        self.counts["watch"].update(subscribers=len(self.extra.get("subscribers", [])),
                                    gapless=judged, events=delivered)
        if not judged:
            self.fail("watch", "no subscriber ran the whole run unbroken")

    def check_delay(self):
        """Each delay fault delayed packets, its delayer exited 0 and left no rule."""
        delays = self.extra.get("delays", [])
        total = 0
        for d in delays:
            got = sum(r[1] for r in d["results"].values())
            total += got
            if got == 0:
                self.fail("delay", f"the delay of {d['nodes']} ({d['max_ms']} ms) held no packet")
            for node, (rc, _n, left) in sorted(d["results"].items()):
                if rc != 0 or left:
                    self.fail("delay", f"{node}: nfqdelay exited {rc}, {left} NFQUEUE rules "
                              "left behind")
        self.counts["delay"].update(faults=len(delays), packets_delayed=total)

    def check_wipe(self):
        """A wiped node (empty data, same identity) takes a new replica id, never one it used:
        reusing one would reissue dots the others hold, and its new writes would vanish. It
        lists every member again within JOIN_LEARN_S of its restart (it knows only its seed:
        SWIM's table exchange; it used to take a sync interval, 10 s)."""
        wipes = self.extra.get("wipes", [])
        for w in wipes:
            t = w.get("knows_all_s", 0)  # 0: recorded before this was measured
            if t is not None:
                self.counts["wipe"]["knows_all_max_x10"] = max(
                    self.counts["wipe"]["knows_all_max_x10"], int(round(t * 10)))
            if t is None or t > JOIN_LEARN_S:
                self.fail("wipe", f"{w['node']}, wiped, listed every member again only "
                          + (f"after {t:.1f} s" if t is not None else "after 15 s or never")
                          + f" (at most {JOIN_LEARN_S:.0f} s)")
            after = w.get("replica_after")
            if not after or after in w["replicas_before"]:
                self.fail("wipe", f"{w['node']} rejoined after its wipe with replica id "
                          f"{after}, one it had used before ({w['replicas_before']}): its dots "
                          "restart where the others already hold them")
        self.counts["wipe"].update(wipes=len(wipes))

    def check_membership_change(self):
        """A node joined and one was removed during the run (the membership nemesis). The
        joined node lists every member within JOIN_LEARN_S of its start (SWIM: it exchanges
        tables with its seed at once), every member lists it within JOIN_SPREAD_S (alive at the
        end), and it ends
        with the same state as the others (convergence), writes made before it joined included
        (sets, logs...). The removed node's writes were handed over (a marker's token reached every
        other member before the removal: what it acknowledged before the marker must survive,
        the sets/logs checks; what it acknowledged after may be lost, lost_removed); the
        removal was acknowledged, the removed node learned it, every remaining member lists it
        `left` at the end, and it stopped cleanly. A removed member no longer holds back the
        stable cut: once the cluster converged, no member keeps op records awaiting it
        (`garbage` in cluster status) past GC_WAIT_S, although the removed node is down (a
        member that is only dead would hold them for good)."""
        m = self.extra["membership"]
        c = self.counts["membership_change"]
        joined, removed = m.get("joined") or {}, m.get("removed") or {}
        final = m.get("final") or {}
        if not joined:
            self.fail("membership_change", "no node joined")
        else:
            for what in ("knows_all_s", "sees_all_s", "known_by_all_s", "seen_by_all_s"):
                t = joined.get(what)
                c[f"join_{what}_x10"] = -1 if t is None else int(round(t * 10))
                bound = {"knows_all_s": JOIN_LEARN_S, "known_by_all_s": JOIN_SPREAD_S}.get(what)
                if bound is not None and (t is None or t > bound):
                    self.fail("membership_change", f"{joined['node']} joined through "
                              f"{joined['via']}: " + ("it listed every member"
                                                      if what == "knows_all_s" else
                                                      "every member listed it") +
                              (" only after %.1f s" % t if t is not None else
                               f" not within {MEMBER_WAIT_S} s") +
                              f" (at most {bound:.0f} s)")
            idx = int(joined["node"][1:]) - 1
            if not self.snaps or len(self.snaps) <= idx or self.snaps[idx] is None:
                self.fail("membership_change", f"{joined['node']}, joined in the run, has no "
                          "final state")
        if not removed:
            self.fail("membership_change", "no node was removed")
        else:
            if not removed.get("drained"):
                self.fail("membership_change", f"the members did not get {removed['node']}'s "
                          f"writes (its marker's token) within {MEMBER_WAIT_S} s")
            if not removed.get("removed_ok"):
                self.fail("membership_change", f"`cluster remove` of {removed['node']} was "
                          f"never acknowledged: {removed.get('errors')}")
            if removed.get("learned_s") is None:
                self.fail("membership_change", f"{removed['node']} did not log that it was "
                          f"removed within {MEMBER_WAIT_S} s")
            if removed.get("stop_exit") not in (0, None):
                self.fail("membership_change", f"{removed['node']}, removed, exited "
                          f"{removed['stop_exit']} on SIGTERM")
            c["removal_learned_x10"] = int(round((removed.get("learned_s") or -0.1) * 10))
        for name, view in sorted(final.items()):
            if view is None:
                self.fail("membership_change", f"{name} did not answer cluster status")
                continue
            if removed and view.get(removed["id"]) != "left":
                self.fail("membership_change", f"{name} lists {removed['node']}, removed, as "
                          f"{view.get(removed['id'])}, not left")
            if joined and name != joined["node"] and view.get(joined["id"]) != "alive":
                self.fail("membership_change", f"{name} lists {joined['node']}, joined, as "
                          f"{view.get(joined['id'])}, not alive")
        garbage = m.get("garbage") or {}
        for name, scopes in sorted(garbage.items()):
            held = {k: v for k, v in (scopes or {}).items() if v}
            c["garbage_left"] += sum(held.values())
            if held:
                self.fail("membership_change", f"{name} still holds op records awaiting the "
                          f"stable cut {m.get('gc_wait_s', 0):.0f} s after convergence: {held} "
                          f"(the removed {removed.get('node')} holds the cut back?)")
        c["gc_wait_x10"] = int(round(m.get("gc_wait_s", 0) * 10))

    def check_resources(self):
        """Every node's resident set stays under the limit the cell states."""
        limit = self.extra.get("rss_limit_kib")
        peak = collections.Counter()
        for _t, name, kib in self.extra.get("rss", []):
            peak[name] = max(peak[name], kib)
        self.counts["resources"].update(limit_mib=limit // 1024 if limit else 0,
                                        samples=len(self.extra.get("rss", [])),
                                        peak_mib=max(peak.values(), default=0) // 1024)
        if not peak:
            self.fail("resources", "no RSS sample was taken")
        for name, kib in sorted(peak.items()):
            if limit and kib > limit:
                self.fail("resources", f"{name}: resident set reached {kib // 1024} MiB, "
                          f"over the limit of {limit // 1024} MiB")

    def check_clock_refusals(self):
        """A clock pushed past --max-clock-drift-ms: its deltas are refused (counted), and the
        cluster converges anyway once the clock is back (the convergence check)."""
        n = self.extra.get("clock_refusals", 0)
        self.counts["clock_refusals"]["clock_refusals"] = n
        if n <= 0:
            self.fail("clock_refusals", "a node's clock ran past the drift bound, yet no node "
                      "counted a clock refusal")

    def check_acl(self):
        """Revocations racing reads: once a node held a revocation, it serves no read that
        shows what the revoked agent wrote (allow-user revoked: the retrospective check), and
        serves the revoked agent nothing (allow-user) or no read of the scope (scope grant).
        Refusals are allowed only for revoked agents, and for agents whose revocation got no
        answer (it may have held); propagation times are reported."""
        revs = self.extra.get("revocations", [])
        adds = self.of("set-add")
        c = self.counts["acl"]
        c["revocations"] = len(revs)
        prop = []
        revoked_pids = {}
        for maybe in self.extra.get("maybe_revoked", []):  # no answer: perhaps revoked
            revoked_pids[maybe["pid"]] = min(revoked_pids.get(maybe["pid"], 1e18),
                                             maybe["invoked"])
        for rev in revs:
            revoked_pids[rev["pid"]] = min(revoked_pids.get(rev["pid"], 1e18), rev["invoked"])
            for name, t in rev["learned"].items():
                prop.append(t - rev["issued"])
            missing = len(set(self.final_nodes()) - set(rev["learned"]))
            if missing:
                self.fail("acl", f"revocation of {rev['agent']} ({rev['kind']}) never reached "
                          f"{missing} nodes")
            written = {a["value"] for a in adds if a["process"] == rev["pid"]
                       and a["type"] != "fail"}
            for o in self.of("set-read", "ok"):
                learned = rev["learned"].get(f"n{o['node'] + 1}")
                if learned is None or o["invoke"] <= learned:
                    continue
                if rev["kind"] == "user":
                    shown = sorted(set(o["value"]) & written)
                    if shown:
                        c["served_after_revocation"] += 1
                        self.fail("acl", f"n{o['node'] + 1} held the revocation of "
                                  f"{rev['agent']} at {learned:.3f}, then served a read "
                                  f"(client {o['process']}) showing what it wrote: "
                                  f"{shown[:5]}", [o], (learned - 1, o["complete"]))
                if o["process"] == rev["pid"]:
                    c["served_after_revocation"] += 1
                    self.fail("acl", f"n{o['node'] + 1} held the revocation of "
                              f"{rev['agent']}'s {rev['kind']} grant at {learned:.3f}, then "
                              f"served it a read", [o], (learned - 1, o["complete"]))
            if rev["kind"] == "user":
                for a in adds:
                    learned = rev["learned"].get(f"n{a['node'] + 1}")
                    if a["process"] == rev["pid"] and a["type"] == "ok" and \
                            learned is not None and a["invoke"] > learned:
                        c["served_after_revocation"] += 1
                        self.fail("acl", f"n{a['node'] + 1} took a write from {rev['agent']} "
                                  f"after it held the revocation of its user grant", [a])
        late = set(self.extra.get("late", []))
        self.check_grants(late)
        # an op still running when its agent's revocation was invoked may be refused; the
        # late agents' refusals are judged by check_grants
        denied = [o for o in self.ops if o.get("rc") == 6 and o["process"] not in late and
                  (o["process"] not in revoked_pids or o["complete"] < revoked_pids[o["process"]])
                  and not self.relearning(o) and not self.refused_as_removed(o)]
        c["refusals_of_revoked"] = sum(1 for o in self.ops if o.get("rc") == 6) - len(denied)
        if denied:
            self.fail("acl", f"{len(denied)} operations of agents not (yet) revoked were "
                      f"refused (exit 6): {denied[0].get('err', '')}", denied[:5])
        if prop:
            c["propagation_max_ms"] = int(max(prop) * 1000)
            c["propagation_median_ms"] = int(sorted(prop)[len(prop) // 2] * 1000)
        c["reads_checked"] = len(self.of("set-read", "ok"))

    def check_grants(self, late):
        """Grants racing reads (part of the acl check): a late agent has no grant on the set's
        scope until the admin grants it during the run. Before the grant is issued, no node
        serves it; a node that answered `acl show` without the grant served it nothing before
        that answer (unless it was wiped in between); once a node was seen holding the grant
        (valid), what the agent asks there is served. A refusal between the grant and that
        moment is allowed: grants spread by gossip. A grant that got no answer may hold: that
        agent may be served from its invocation. Propagation times are reported."""
        c = self.counts["acl"]
        grants = {g["pid"]: g for g in self.extra.get("grants", [])}
        maybe = {m["pid"]: m["invoked"] for m in self.extra.get("maybe_granted", [])}
        prop = []
        for g in grants.values():
            prop += [t - g["issued"] for t in g["learned"].values()]
            missing = sorted(set(self.final_nodes()) - set(g["learned"]))
            if missing:
                self.fail("acl", f"the grant to {g['agent']} never reached {missing}")
        for o in self.ops:
            pid = o["process"]
            if pid not in late or o["kind"] not in ("set-add", "set-read"):
                continue
            g = grants.get(pid)
            name = f"n{o['node'] + 1}"
            since = min(([g["invoked"]] if g else []) + [maybe.get(pid, float("inf"))])
            if o["type"] == "ok":
                if o["complete"] < since:
                    c["served_before_grant"] += 1
                    self.fail("acl", f"{name} served agent-{pid} ({o['kind']}) before its grant "
                              f"on {SCOPE_A} was issued" + ("" if g or pid in maybe else
                                                            " (it never was)"), [o])
                    continue
                wiped = self.boundaries(o["node"])
                late_ask = [t for t in (g["not_held"].get(name, []) if g else [])
                            if t > o["complete"] and not any(o["complete"] < b < t
                                                             for b in wiped)]
                if late_ask:
                    c["served_before_grant"] += 1
                    self.fail("acl", f"{name} served agent-{pid} ({o['kind']}, done at "
                              f"{o['complete']:.3f}) and at {late_ask[0]:.3f} answered acl "
                              "show without its grant", [o], (o["invoke"] - 1, late_ask[0]))
            elif o.get("rc") == 6:
                learned = g["learned"].get(name) if g else None
                if learned is None or o["invoke"] <= learned or self.relearning(o) or \
                        self.refused_as_removed(o):
                    c["refusals_before_grant"] += 1
                else:
                    c["refused_after_grant"] += 1
                    self.fail("acl", f"{name} held the grant to agent-{pid} at {learned:.3f}, "
                              f"then refused it ({o['kind']}): {o.get('err', '')}", [o],
                              (learned - 1, o["complete"]))
        c["grants"] = len(grants)
        c["late_agent_ops_served"] = sum(1 for o in self.ops if o["process"] in late and
                                         o["type"] == "ok" and
                                         o["kind"] in ("set-add", "set-read"))
        if prop:
            c["grant_propagation_max_ms"] = int(max(prop) * 1000)
            c["grant_propagation_median_ms"] = int(sorted(prop)[len(prop) // 2] * 1000)

    def excerpt(self, limit=40):
        """The ops each failure names, and the nemesis events around them."""
        by_id = {o["id"]: o for o in self.ops}
        lines = []
        for check, msg, ids, around in self.failures[:10]:
            lines.append(f"  [{check}] {msg}")
            shown = [by_id[i] for i in ids]
            if around:
                t0, t1 = around
                shown += [o for o in self.ops if o["process"] == "nemesis"
                          and t0 - 5 <= o["invoke"] <= t1]
            for o in sorted({o["id"]: o for o in shown}.values(),
                            key=lambda o: o["invoke"])[:limit]:
                lines.append("      " + fmt_op(o))
        if len(self.failures) > 10:
            lines.append(f"  ... and {len(self.failures) - 10} more failures")
        return "\n".join(lines)


def ttl_span(o):
    """When op o ran, on its node's clock: (earliest, latest), in test time plus offset."""
    lo = min(o.get("clock", 0), o.get("clock_done", o.get("clock", 0)))
    hi = max(o.get("clock", 0), o.get("clock_done", o.get("clock", 0)))
    return o["invoke"] + lo, o.get("complete", o["invoke"]) + hi


def ttl_expiry(p):
    """When a ttl put's value expires, by its writer's clock at the write: (earliest,
    latest), on the scale of ttl_span."""
    lo, hi = ttl_span(p)
    return lo + p["ttl"], hi + p["ttl"]


def fmt_op(o):
    fields = {k: v for k, v in o.items() if k not in ("id", "process", "type", "invoke",
                                                        "complete", "kind", "node")}
    for name in ("value", "read_before"):
        if isinstance(fields.get(name), list) and len(fields[name]) > 8:
            fields[name] = fields[name][:8] + [f"... {len(fields[name]) - 8} more"]
    where = "" if o["process"] == "nemesis" else f" p{o['process']}@n{o['node'] + 1}"
    return (f"{o['invoke']:8.3f}-{o.get('complete', float('nan')):8.3f} {o['type']:6} "
            f"{o['kind']}{where} {json.dumps(fields, sort_keys=True)}")


def op_table(history):
    table = collections.defaultdict(collections.Counter)
    for o in history.ops:
        if o["process"] != "nemesis":
            table[o["kind"]][o.get("type", "invoke")] += 1
    return table


def summary(history, nemesis, conv_s, elapsed):
    table = op_table(history)
    lines = ["operations (ok / fail / info):"]
    for kind in sorted(table):
        c = table[kind]
        lines.append(f"  {kind:18} {c['ok']:6} {c['fail']:6} {c['info']:6}")
    tot = collections.Counter()
    for c in table.values():
        tot.update(c)
    lines.append(f"  {'total':18} {tot['ok']:6} {tot['fail']:6} {tot['info']:6}")
    events = collections.Counter(o["kind"] for o in history.ops if o["process"] == "nemesis")
    lines.append("faults chosen: " + ", ".join(f"{k} {v}" for k, v in
                                               sorted(nemesis.counts.items())))
    lines.append("nemesis events: " + ", ".join(f"{k} {v}" for k, v in sorted(events.items())))
    lines.append("convergence after heal: " + ("%.1f s" % conv_s if conv_s is not None
                                                 else "NOT REACHED"))
    lines.append(f"wall time: {elapsed:.0f} s")
    return "\n".join(lines)


def node_health(cluster):
    """Stops every node with SIGTERM; problems: a node that exited on its own during the run,
    a shutdown that was not clean (exit 0), a sanitizer or allocator report in a log."""
    problems = []
    shown = False
    codes = cluster.down()
    for node in cluster.nodes:
        if node.crashes:
            problems.append(f"{node.name()} exited on its own during the run: "
                            f"{node.crashes} (test time, status)")
        if codes.get(node.name()) not in (0, None):
            problems.append(f"{node.name()}: engramd exited with status "
                            f"{codes[node.name()]} on SIGTERM (negative: killed by that signal)")
        try:
            with open(os.path.join(node.dir, "engramd.log"), errors="replace") as f:
                text = f.read()
        except OSError:
            text = ""
        for pat in ("ERROR: AddressSanitizer", "runtime error:", "Assertion", "double free",
                    "corruption", "LeakSanitizer", "malloc", "Segmentation"):
            if pat in text:
                i = text.index(pat)
                n = 300 if shown else 2500  # the first report in full, then a line
                shown = True
                problems.append(f"{node.name()}'s log ({node.dir}/engramd.log) reports "
                                f"'{pat}':\n{text[max(0, i - 200):i + n]}")
                break
    return problems


# --------------------------------------------------------------------------------------------
# The checker's own test: a small valid history passes, and each kind of anomaly planted in
# it is caught by the check meant for it (no cluster needed: `--self-test`).


def self_test():
    import copy

    def op(i, kind, typ, t0, t1, node=0, process=0, **f):
        return dict(id=i, process=process, node=node, kind=kind, type=typ, invoke=t0,
                    complete=t1, **f)

    base_ops = [
        op(0, "set-add", "ok", 0, 1, key="s0", value="a"),
        op(1, "set-add", "info", 0, 1, node=1, process=1, key="s0", value="b"),
        op(2, "set-add", "fail", 1, 2, node=1, process=1, key="s0", value="c"),
        op(3, "counter-add", "ok", 1, 2, key="c0", value=3),
        op(4, "counter-add", "info", 1, 2, node=1, process=1, key="c0", value=2),
        op(5, "log-append", "ok", 2, 3, key="l0", value="x"),
        op(6, "log-append", "ok", 3, 4, key="l0", value="y"),
        op(7, "put", "ok", 0, 1, scope=SCOPE_A, key="r0", value="v1"),
        op(8, "get", "ok", 2, 3, node=2, process=2, scope=SCOPE_A, key="r0", value=["v1"]),
        op(9, "handoff-put", "ok", 4, 5, scope=SCOPE_A, key="h0", value="hv", token="T"),
        op(10, "handoff-get", "ok", 5, 6, node=1, scope=SCOPE_A, key="h0", after="T", put=9,
           value=["hv"]),
        op(11, "handoff-set-read", "ok", 6, 7, node=1, key="s0", put=9, value=["a"]),
        op(12, "set-read", "ok", 2, 3, key="s0", value=["a"]),
        op(13, "counter-read", "ok", 3, 3.5, key="c0", value=3),
        op(14, "log-read", "ok", 3.2, 3.5, key="l0", value=["x"]),
        # set removes, the session set, a decrement
        op(15, "set-add", "ok", 4, 4.5, key="s0", value="d"),
        op(16, "set-rm", "ok", 5, 5.5, key="s0", value="d"),
        op(17, "set-read", "ok", 6, 6.5, process=3, key="s9", value=["e"]),
        op(18, "set-add", "ok", 7, 7.5, process=3, key="s9", value="f", read_before=["e"]),
        op(19, "set-read", "ok", 8, 8.5, process=3, key="s9", value=["e", "f"]),
        op(20, "set-read", "ok", 8, 8.5, node=2, process=4, key="s9", value=["e", "f"]),
        op(21, "set-add", "ok", 5, 5.5, node=1, process=5, key="s9", value="e"),
        op(22, "counter-add", "ok", 4, 4.5, key="c0", value=-2),
        # a read-then-append, a read-then-put
        op(23, "log-append", "ok", 4.5, 5, node=1, process=6, key="l0", value="z",
           read_before=["x", "y"]),
        op(24, "get", "ok", 9, 9.5, process=7, scope=SCOPE_A, key="r1", value=["w1"]),
        op(25, "put", "ok", 8, 8.5, process=8, scope=SCOPE_A, key="r1", value="w1"),
        op(26, "put", "ok", 10, 10.5, process=7, scope=SCOPE_A, key="r1", value="w2",
           read_before=["w1"]),
        op(27, "get", "ok", 11, 11.5, process=9, scope=SCOPE_A, key="r1", value=["w2"]),
        # the acl workload: client 10 revoked at 20 (every node learned it by 21)
        op(28, "set-add", "ok", 12, 12.5, process=10, key="a0", value="g"),
        op(29, "set-add", "ok", 12, 12.5, process=11, key="a0", value="h"),
        op(30, "set-read", "ok", 22, 22.5, process=11, key="a0", value=["h"]),
        op(31, "set-read", "fail", 22, 22.5, process=10, key="a0", rc=6),
        # client 14 has no grant on run:jepsen until one issued at 15 (every node held it by
        # 16; n1 answered without it at 15.5)
        op(32, "set-add", "fail", 13, 13.5, process=14, key="a0", value="i", rc=6),
        op(33, "set-add", "ok", 17, 17.5, process=14, key="a0", value="j"),
        op(34, "set-read", "ok", 18, 18.5, node=1, process=14, key="a0", value=["h", "j"]),
        # the kv workload: one client's key put, read with its token, deleted, read; a ttl
        # put read live and after expiry; put --replicas 3 read at once on the four others;
        # a private put read by its agent and by another
        op(40, "kv-put", "ok", 30, 30.5, process=12, key="k12", value="kv1", token="T1",
           clock=0),
        op(41, "kv-get", "ok", 31, 31.5, node=1, process=12, key="k12", value=["kv1"],
           after="T1", clock=0),
        op(42, "kv-rm", "ok", 32, 32.5, process=12, key="k12", token="T2", clock=0),
        op(43, "kv-get", "ok", 33, 33.5, process=12, key="k12", value=[], clock=0),
        op(44, "ttl-put", "ok", 34, 34.2, process=12, key="x12", value="tv", ttl=2, clock=0),
        op(45, "ttl-get", "ok", 34.5, 34.6, process=12, key="x12", value=["tv"], clock=0),
        op(46, "ttl-get", "ok", 38, 38.1, node=2, process=12, key="x12", value=[], clock=0),
        op(47, "replicas-put", "ok", 39, 39.5, process=12, key="q12", value="qv"),
        op(48, "replicas-get", "ok", 39.5, 39.6, node=1, process=12, key="q12", value=["qv"],
           put=47),
        op(49, "replicas-get", "ok", 39.6, 39.7, node=2, process=12, key="q12", value=["qv"],
           put=47),
        op(50, "replicas-get", "ok", 39.7, 39.8, node=3, process=12, key="q12", value=[],
           put=47),
        op(51, "replicas-get", "ok", 39.8, 39.9, node=4, process=12, key="q12", value=[],
           put=47),
        op(52, "private-put", "ok", 40, 40.1, process=12, key=PRIVATE_KEY, scope=PRIVATE,
           value="pv"),
        op(53, "private-get", "ok", 41, 41.1, process=12, key=PRIVATE_KEY, value=["pv"]),
        op(54, "private-get", "ok", 41, 41.1, node=1, process=13, key=PRIVATE_KEY, value=[]),
        # log range --after the token of append 23 on another node
        op(55, "log-read", "ok", 5.5, 5.6, node=2, process=6, key="l0", value=["x", "y", "z"],
           carried=23),
    ]
    snap = {"vectors": {SCOPE_A: "v", SCOPE_B: "v"}, "members": [], "set:s0": ["a", "b"],
            "set:s1": [], "set:s9": ["e", "f"], "set:a0": ["h"], "counter:c0": 2,
            "log:l0": ["x", "y", "z"], "reg:r0": ["v1"], "reg:r1": ["w2"], "reg:r2": [],
            "kv:k12": [], "ttl:x12": []}
    revocation = dict(kind="user", agent="agent-10", pid=10, statement="S", revocation="R",
                      node=0, invoked=20, issued=20.5,
                      learned={f"n{i + 1}": 21 for i in range(NODES)})
    grant = dict(agent="agent-14", pid=14, statement="G", node=2, invoked=15, issued=15.2,
                 learned={f"n{i + 1}": 16 for i in range(NODES)}, not_held={"n1": [15.5]})

    def check(mutate=None, workload="mixed"):
        h = History()
        wanted = {"acl": range(28, 35), "kv": range(40, 55), "log": range(55, 56)}
        h.ops = [o for o in copy.deepcopy(base_ops)
                 if o["id"] < 28 or o["id"] in wanted.get(workload, ())]
        snaps = [copy.deepcopy(snap) for _ in range(NODES)]
        conv = [1.0]
        extra = dict(rss=[(1, f"n{i + 1}", 100 * 1024) for i in range(NODES)],
                     rss_limit_kib=512 * 1024, revocations=[copy.deepcopy(revocation)],
                     clock_big=False, grants=[copy.deepcopy(grant)], late=[14])
        if workload == "log":  # a subscriber that got every append once, in order
            extra["subscribers"] = [dict(node="n1", gaps=[], events=[
                (t, "l0", "append", v) for t, v in ((3, "x"), (4, "y"), (5, "z"))])]
        if mutate:
            mutate({o["id"]: o for o in h.ops}, snaps, conv, extra)
        h.ops += extra.pop("planted", [])
        c = Checker(h, snaps, conv[0], workload, extra)
        c.run()
        return {k for k, v in c.results.items() if v != "ok"}

    def event(kind, t, node):
        """A nemesis event planted in the history (a wipe, a kill)."""
        def plant(ops, snaps, conv, extra):
            ops[1000 + len(ops)] = ev = dict(id=1000 + len(ops), process="nemesis", kind=kind,
                                             type="info", invoke=t, complete=t, node=node)
            extra.setdefault("planted", []).append(ev)
        return plant

    def clock_event(kind, t, node, clock_s):
        """A clock nemesis event planted in the history: node's clock set to clock_s."""
        def plant(ops, snaps, conv, extra):
            event(kind, t, node)(ops, snaps, conv, extra)
            extra["planted"][-1]["clock_s"] = clock_s
        return plant

    def xset(field, value):
        return lambda ops, snaps, conv, extra: extra.__setitem__(field, value)

    def setv(i, field, value):
        return lambda ops, snaps, conv, extra: snaps[i].__setitem__(field, value)

    def opv(i, field, value):
        return lambda ops, snaps, conv, extra: ops[i].__setitem__(field, value)

    def both(*fns):
        return lambda *a: [f(*a) for f in fns]

    def members(change=None, t_mark=20, t_remove=20.3):
        """The membership nemesis: n6 joined at 10 through n3, n1 removed (its writes handed
        over by a marker at t_mark, the removal sent at t_remove), every member's final view
        and no op record left awaiting the stable cut; then change(record) plants a fault."""
        def plant(ops, snaps, conv, extra):
            names = ["n2", "n3", "n4", "n5", "n6"]
            rec = dict(
                joined=dict(node="n6", id="J", via="n3", t=10, started=10.5, knows_all_s=1.0,
                            sees_all_s=2.5, known_by_all_s=0.8, seen_by_all_s=1.2),
                removed=dict(node="n1", id="X", via="n2", t_mark=t_mark, drained=True,
                             drain_s=0.3, t_remove=t_remove, removed_ok=True, learned_s=0.5,
                             left_everywhere_s=0.8, stop_exit=0),
                final={n: dict(X="left", **({} if n == "n6" else {"J": "alive"}))
                       for n in names},
                garbage={n: {SCOPE_A: 0, SCOPE_B: 0} for n in names}, gc_wait_s=9.0)
            snaps[0] = None
            snaps.append(copy.deepcopy(snap))
            extra.update(membership=rec, nodes=names)
            event("join", 10, "n6")(ops, snaps, conv, extra)
            if change:
                change(rec, ops, snaps, extra)
        return plant

    def refused(node, process, t, served_before=False):
        """A set read by client process refused (exit 6) on node at t; and, if
        served_before, one served to it there just before."""
        def plant(rec, ops, snaps, extra):
            o = dict(id=900, process=process, node=node, kind="set-read", type="fail",
                     invoke=t, complete=t + 0.1, key="s0", rc=6)
            extra.setdefault("planted", []).append(o)
            if served_before:
                extra["planted"].append(dict(o, id=901, type="ok", rc=0, value=["a"],
                                             invoke=t - 0.5, complete=t - 0.4))
        return plant

    cases = [
        ("nothing planted", None, set()),
        ("no convergence", lambda o, s, c, e: c.__setitem__(0, None), {"convergence"}),
        ("acknowledged add lost", setv(2, "set:s0", ["b"]), {"sets"}),
        ("failed add present", setv(1, "set:s0", ["a", "b", "c"]), {"sets"}),
        ("add never made", setv(1, "set:s0", ["a", "zz"]), {"sets"}),
        ("counter too high", setv(3, "counter:c0", 6), {"counters"}),
        ("counter too low", setv(3, "counter:c0", 0), {"counters"}),
        ("log entry lost", setv(0, "log:l0", ["y"]), {"logs"}),
        ("log entry twice", setv(0, "log:l0", ["x", "y", "x"]), {"logs"}),
        ("log out of session order", setv(4, "log:l0", ["y", "x"]), {"logs"}),
        ("log entry never appended", setv(4, "log:l0", ["x", "y", "q"]), {"logs"}),
        ("register ends unwritten", setv(4, "reg:r0", ["v9"]), {"registers"}),
        ("read of an unwritten value", opv(8, "value", ["v0"]), {"registers"}),
        ("read of a value written later", lambda o, s, c, e: o[7].update(invoke=3.5),
         {"registers"}),
        ("hand-off read older", opv(10, "value", []), {"handoff"}),
        ("hand-off read with an older sibling", opv(10, "value", ["hv", "old"]), {"handoff"}),
        ("hand-off misses earlier add", opv(11, "value", []), {"handoff"}),
        ("read misses own acked add", opv(12, "value", []), {"reads"}),
        ("read sees never-added element", opv(12, "value", ["a", "zz"]), {"reads"}),
        ("counter read past invoked sum", opv(13, "value", 9), {"reads"}),
        ("counter read misses own acked", opv(13, "value", 1), {"reads"}),
        ("log read duplicates", opv(14, "value", ["x", "x"]), {"reads"}),
        ("log read misses own acked", opv(14, "value", []), {"reads"}),
        ("granted agent refused", opv(2, "rc", 6), {"access"}),
    ]
    cases = [(n, m, w, "mixed") for n, m, w in cases] + [
        ("set: nothing planted", None, set(), "set"),
        ("set: acknowledged remove resurrected", setv(1, "set:s0", ["a", "b", "d"]), {"sets"},
         "set"),
        ("set: read shows a removed element missing: fine", opv(12, "value", ["a"]), set(),
         "set"),
        ("session: monotonic reads", opv(19, "value", ["f"]), {"session"}, "set"),
        ("session: read-your-writes (its node's own write too: reads)",
         both(opv(19, "value", ["e"]), opv(20, "value", ["e"])), {"session", "reads"}, "set"),
        ("session: writes-follow-reads", opv(20, "value", ["f"]), {"session"}, "set"),
        ("counter: nothing planted, with a decrement", None, set(), "counter"),
        ("counter: decrement lost", setv(2, "counter:c0", 4), {"counters"}, "counter"),
        ("log: nothing planted", None, set(), "log"),
        ("log: append before what its client read", setv(3, "log:l0", ["x", "z", "y"]),
         {"causal_order"}, "log"),
        ("register: nothing planted", None, set(), "register"),
        ("register: overwritten value survives", setv(0, "reg:r1", ["w2", "w1"]),
         {"register_causality"}, "register"),
        ("register: read of the overwritten value after", opv(27, "value", ["w1"]),
         {"register_causality"}, "register"),
        ("acl: nothing planted", None, set(), "acl"),
        ("acl: revoked agent's element served after", opv(30, "value", ["h", "g"]), {"acl"},
         "acl"),
        ("acl: revoked agent served", both(opv(31, "type", "ok"), opv(31, "value", ["h"])),
         {"acl"}, "acl"),
        ("acl: revocation never reached a node",
         lambda o, s, c, e: e["revocations"][0]["learned"].pop("n3"), {"acl"}, "acl"),
        ("acl: agent refused before its revocation", opv(30, "rc", 6), {"acl"}, "acl"),
        ("acl: agent refused after a revocation that got no answer: fine",
         both(opv(30, "rc", 6), lambda o, s, c, e: e.__setitem__(
             "maybe_revoked", [dict(agent="agent-11", pid=11, invoked=21)])), set(), "acl"),
        ("acl: agent refused before a revocation that got no answer",
         both(opv(30, "rc", 6), lambda o, s, c, e: e.__setitem__(
             "maybe_revoked", [dict(agent="agent-11", pid=11, invoked=23)])), {"acl"}, "acl"),
        ("acl: a refusal of an op running when its revocation was invoked: fine",
         lambda o, s, c, e: o[31].update(invoke=19.5, complete=20.3), set(), "acl"),
        ("acl: a refusal of an op done before its revocation was invoked",
         lambda o, s, c, e: o[31].update(invoke=19, complete=19.5), {"acl"}, "acl"),
        ("acl: served before its grant was issued",
         both(opv(32, "type", "ok"), opv(32, "rc", 0)), {"acl"}, "acl"),
        ("acl: served by a node that answered without the grant after",
         lambda o, s, c, e: o[33].update(invoke=15.3, complete=15.4), {"acl"}, "acl"),
        ("acl: served after the grant, before the watcher saw it there: fine",
         lambda o, s, c, e: o[33].update(invoke=15.6, complete=15.8), set(), "acl"),
        ("acl: refused by a node after it held the grant",
         lambda o, s, c, e: o[33].update(type="fail", rc=6), {"acl"}, "acl"),
        ("acl: refused after the grant, before that node held it: fine",
         both(lambda o, s, c, e: o[33].update(type="fail", rc=6),
              lambda o, s, c, e: e["grants"][0]["learned"].update(n1=17.6)), set(), "acl"),
        ("acl: a grant that never reached a node",
         lambda o, s, c, e: e["grants"][0]["learned"].pop("n4"), {"acl"}, "acl"),
        ("acl: a late agent served without any grant",
         xset("grants", []), {"acl"}, "acl"),
        ("acl: a grant that got no answer, then served: fine",
         both(xset("grants", []), xset("maybe_granted", [dict(agent="agent-14", pid=14,
                                                               invoked=15)])), set(), "acl"),
        ("resources: a node over the limit",
         lambda o, s, c, e: e["rss"].append((2, "n2", 600 * 1024)), {"resources"}, "set"),
        ("kv: nothing planted", None, set(), "kv"),
        ("kv: acknowledged delete resurrected in a read", opv(43, "value", ["kv1"]),
         {"deletes"}, "kv"),
        ("kv: read with the put's token misses it", opv(41, "value", []), {"deletes"}, "kv"),
        ("kv: acknowledged delete undone at the end", setv(3, "kv:k12", ["kv1"]), {"deletes"},
         "kv"),
        ("kv: value read past its ttl", opv(46, "value", ["tv"]), {"ttl"}, "kv"),
        ("kv: value read by a node whose clock is 5 s behind: fine",
         both(opv(46, "value", ["tv"]), opv(46, "clock", -5)), set(), "kv"),
        ("kv: live ttl value not read on its node", opv(45, "value", []), {"ttl"}, "kv"),
        ("kv: the same, its node's clock run 16 s ahead in between and set back: fine",
         both(opv(45, "value", []), clock_event("clock-drift", 34.3, "n1", 16),
              clock_event("clock-back", 34.4, "n1", 0)), set(), "kv"),
        ("kv: value read past its expiry by a node whose clock is 5 s ahead",
         lambda o, s, c, e: o[46].update(invoke=35.5, complete=35.6, clock=5, clock_done=5,
                                         value=["tv"]), {"ttl"}, "kv"),
        ("kv: its writer's clock jumped +20 s during the put: read 10 s later, fine",
         both(opv(44, "clock_done", 20),
              lambda o, s, c, e: o[46].update(invoke=44, complete=44.1, value=["tv"])),
         set(), "kv"),
        ("kv: held at the end, live by its writer's clock (+50 s at the put): fine",
         both(opv(44, "clock", 50), opv(44, "clock_done", 50),
              lambda o, s, c, e: s[1].update({"ttl:x12": ["tv"], "at": 40, "clock": 0})),
         set(), "kv"),
        ("kv: held at the end past its expiry by both clocks",
         lambda o, s, c, e: s[1].update({"ttl:x12": ["tv"], "at": 40, "clock": 0}), {"ttl"},
         "kv"),
        ("kv: expired value held at the end", setv(1, "ttl:x12", ["tv"]), {"ttl"}, "kv"),
        ("kv: put --replicas 3 held by 2 nodes", opv(49, "value", []), {"replicas"}, "kv"),
        ("kv: the same, a node not answering: fine", both(opv(49, "value", []),
                                                         opv(49, "type", "fail")), set(), "kv"),
        ("kv: private value read by another agent", opv(54, "value", ["pv"]), {"private"},
         "kv"),
        ("kv: private value read on another node by its agent",
         both(opv(54, "process", 12), opv(54, "value", ["pv"])), {"private"}, "kv"),
        ("kv: private value not read back by its agent", opv(53, "value", []), {"private"},
         "kv"),
        ("log: log range --after misses what the token covers", opv(55, "value", ["x", "y"]),
         {"causal_order"}, "log"),
        ("watch: an append never delivered",
         lambda o, s, c, e: e["subscribers"][0]["events"].pop(1), {"watch"}, "log"),
        ("watch: an append delivered twice",
         lambda o, s, c, e: e["subscribers"][0]["events"].append((6, "l0", "append", "x")),
         {"watch"}, "log"),
        ("watch: a client's appends out of order",
         lambda o, s, c, e: e["subscribers"][0]["events"].reverse(), {"watch"}, "log"),
        ("watch: no unbroken subscriber",
         lambda o, s, c, e: e["subscribers"][0]["gaps"].append((4, 5)), {"watch"}, "log"),
        ("delay: packets delayed, clean exit",
         xset("delays", [dict(nodes=["n1"], max_ms=80, results={"n1": (0, 10, 0)})]), set(),
         "set"),
        ("delay: no packet delayed",
         xset("delays", [dict(nodes=["n1"], max_ms=80, results={"n1": (0, 0, 0)})]),
         {"delay"}, "set"),
        ("delay: a rule left behind",
         xset("delays", [dict(nodes=["n1"], max_ms=80, results={"n1": (0, 10, 1)})]),
         {"delay"}, "set"),
        ("delay: the delayer failed",
         xset("delays", [dict(nodes=["n1"], max_ms=80, results={"n1": (1, 10, 0)})]),
         {"delay"}, "set"),
        ("wipe: new replica id, an add acked just before lost: fine",
         both(xset("wipes", [dict(node="n1", replicas_before=["a"], replica_after="b")]),
              event("wipe", 1.5, "n1"), setv(2, "set:s0", ["b"])), set(), "set"),
        ("wipe: an add acked long before the wipe lost",
         both(xset("wipes", [dict(node="n1", replicas_before=["a"], replica_after="b")]),
              event("wipe", 5, "n1"), setv(2, "set:s0", ["b"])), {"sets"}, "set"),
        ("wipe: the wiped node knew every member only after a sync interval",
         xset("wipes", [dict(node="n1", replicas_before=["a"], replica_after="b",
                             knows_all_s=10.4)]), {"wipe"}, "set"),
        ("wipe: the replica id reused",
         xset("wipes", [dict(node="n1", replicas_before=["a"], replica_after="a")]),
         {"wipe"}, "set"),
        ("wipe: refused on the wiped node until it relearns the grants: fine",
         both(xset("wipes", []), event("wipe", 1.2, "n1"), opv(12, "rc", 6),
              opv(12, "type", "fail")), set(), "set"),
        ("async: an acked add lost to a kill: a process crash loses nothing acknowledged",
         both(xset("durability", "async"), event("kill", 3, "n1"), setv(2, "set:s0", ["b"])),
         {"sets"}, "durability"),
        ("sync: the same loss", both(event("kill", 3, "n1"), setv(2, "set:s0", ["b"])),
         {"sets"}, "durability"),
        ("async: a read after a kill lacks that node's acked add: no new epoch at a kill",
         both(xset("durability", "async"), event("kill", 1.5, "n1"), opv(12, "value", [])),
         {"reads"}, "durability"),
        ("membership: a node joined, one removed: fine", members(), set(), "set"),
        ("membership: a member lists the removed node dead",
         members(lambda r, o, s, e: r["final"]["n2"].update(X="dead")),
         {"membership_change"}, "set"),
        ("membership: a member does not list the joined node",
         members(lambda r, o, s, e: r["final"]["n3"].pop("J")), {"membership_change"}, "set"),
        ("membership: the joined node knew every member only after a sync interval",
         members(lambda r, o, s, e: r["joined"].update(knows_all_s=10.2, sees_all_s=10.2)),
         {"membership_change"}, "set"),
        ("membership: a member never knew the joined node",
         members(lambda r, o, s, e: r["joined"].pop("known_by_all_s")),
         {"membership_change"}, "set"),
        ("membership: a member knew the joined node only after 16 s",
         members(lambda r, o, s, e: r["joined"].update(known_by_all_s=16, seen_by_all_s=16)),
         {"membership_change"}, "set"),
        ("membership: every member knew the joined node after 6.3 s (a busy cluster): fine",
         members(lambda r, o, s, e: r["joined"].update(known_by_all_s=6.3, seen_by_all_s=6.3)),
         set(), "set"),
        ("membership: op records left awaiting the stable cut",
         members(lambda r, o, s, e: r["garbage"]["n2"].update({SCOPE_A: 3})),
         {"membership_change"}, "set"),
        ("membership: the removed node never learned its removal",
         members(lambda r, o, s, e: r["removed"].pop("learned_s")), {"membership_change"},
         "set"),
        ("membership: the removed node's writes not handed over",
         members(lambda r, o, s, e: r["removed"].update(drained=False)),
         {"membership_change"}, "set"),
        ("membership: the joined node has no final state",
         members(lambda r, o, s, e: s.__setitem__(5, None)), {"membership_change"}, "set"),
        ("membership: an add the removed node acknowledged before its marker lost",
         members(lambda r, o, s, e: s[2].update({"set:s0": ["b"]}), t_mark=2), {"sets"}, "set"),
        ("membership: an add the removed node acknowledged after its marker lost: fine",
         members(lambda r, o, s, e: s[2].update({"set:s0": ["b"]}), t_mark=0.5, t_remove=6.5),
         set(), "set"),
        ("membership: an add after the marker that a remaining member showed before the "
         "removal lost",
         members(lambda r, o, s, e: s[2].update({"set:s0": ["b"]}), t_mark=0.5), {"sets"},
         "set"),
        ("membership: refused by the removed node once its removal was sent: fine",
         members(refused(0, 1, 21)), set(), "set"),
        ("membership: refused by the removed node before its removal",
         members(refused(0, 1, 19)), {"access"}, "set"),
        ("membership: refused by the joined node until it learned the grants: fine",
         members(refused(5, 1, 11)), set(), "set"),
        ("membership: refused by the joined node after it served that agent",
         members(refused(5, 1, 11, served_before=True)), {"access"}, "set"),
        ("membership: refused by the joined node long after it joined",
         members(refused(5, 1, 10.5 + RELEARN_S + 1)), {"access"}, "set"),
        ("clock-big without a refusal counted",
         lambda o, s, c, e: e.update(clock_big=True, clock_refusals=0), {"clock_refusals"},
         "set"),
    ]
    bad = 0
    for name, mutate, want, workload in cases:
        got = check(mutate, workload)
        status = "ok" if got == want else "WRONG"
        bad += got != want
        print(f"  {status:5} {name}: failed checks {sorted(got)}, expected {sorted(want)}")
    print("engram_jepsen self-test: " + ("PASS" if not bad else f"{bad} cases WRONG"))
    return 1 if bad else 0


# --------------------------------------------------------------------------------------------


def node_options(cfg):
    """The jepsen/run options that replay a cell's node settings (durability, slowed WAL)."""
    return ((f" --durability {cfg['durability']}" if cfg.get("durability") else "")
            + (f" --slow-wal-ms {cfg['slow_wal_ms']}" if cfg.get("slow_wal_ms") else ""))


def run_cell(cfg):
    """One run: a cluster, cfg's workload against cfg's nemeses for cfg's time, heal,
    convergence, every check. Writes the results folder cfg["out"] (when given) and returns
    the cell's summary (its "valid" is the verdict). cfg: engramd, engram, workload,
    nemeses, time, seed, clients, converge, out, keep, rss_limit_mib, durability,
    slow_wal_ms, slowwal_lib."""
    engramd, engram = os.path.abspath(cfg["engramd"]), os.path.abspath(cfg["engram"])
    workload = cfg.get("workload", "mixed")
    nemeses = list(cfg.get("nemeses", ["mixed"]))
    seed = cfg.get("seed")
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    duration = float(cfg.get("time", 60))
    per_node = int(cfg.get("clients", 2))
    conv_limit = float(cfg.get("converge", 60))
    if "clock-big" in nemeses:
        conv_limit = max(conv_limit, CLOCK_BIG_S + 60)
    out = cfg.get("out")
    cfg = dict(cfg, workload=workload, nemeses=nemeses, seed=seed)
    if not cfg.get("nfqdelay"):  # built beside engramd: build/jepsen/nfqdelay
        cfg["nfqdelay"] = os.path.join(os.path.dirname(os.path.dirname(engramd)), "jepsen",
                                       "nfqdelay")
    label = f"{workload} x {','.join(nemeses)}"
    print(f"engram_jepsen: {label}, seed {seed}, {duration:.0f} s, {NODES} nodes x "
          f"{per_node} clients", flush=True)
    global T0
    T0 = time.monotonic()
    run_id = f"ej{os.getpid()}x{os.urandom(2).hex()}"
    tmp = tempfile.mkdtemp(prefix=f"engram-jepsen-{seed}-")
    cluster = Cluster(engramd, engram, run_id, tmp, cfg)
    history = History()
    ok = False
    started = time.monotonic()
    result = dict(workload=workload, nemeses=nemeses, seed=seed, time_s=duration,
                  valid=False, replay=f"jepsen/run --workload {workload} --nemesis "
                  f"{','.join(nemeses)} --time {duration:g} --seed {seed}" + node_options(cfg))
    nemesis = Nemesis(cluster, history, random.Random(0), 0, threading.Event(), nemeses)
    checker = None
    sampler = None
    actor = None
    conv_s = None
    try:
        if not cluster.faketime:
            log("libfaketime not found: clock faults and skewed restarts run without skew")
        cluster.up()
        clients_n = NODES * per_node
        # the acl workload's late agents: granted run:jepsen only during the run
        late = sorted(random.Random(f"{seed}-late").sample(range(clients_n), LATE_AGENTS)
                      if workload == "acl" else [])
        cluster.provision([(READER, 0)] + [(f"agent-{p}", p % NODES)
                                           for p in range(clients_n)],
                          late=[f"agent-{p}" for p in late])
        log(f"cluster formed in namespaces {cluster.net.switch}, {', '.join(cluster.net.hosts)}")
        rng = random.Random(seed)
        stop = threading.Event()
        watch_stop = threading.Event()
        clients = [Client(p, p % NODES, cluster, history, random.Random(rng.getrandbits(64)),
                          stop, workload) for p in range(clients_n)]
        nemesis = Nemesis(cluster, history, random.Random(rng.getrandbits(64)), duration, stop,
                          nemeses)
        sampler = Sampler(cluster, watch_stop)
        threads = [sampler]
        subscribers = []
        if cfg.get("watch"):
            subscribers = [Subscriber(cluster, i, watch_stop) for i in range(NODES)]
            threads += subscribers
        if workload == "acl":
            actor = AclActor(cluster, history, random.Random(rng.getrandbits(64)), duration,
                             stop, clients_n, late)
            threads += [actor, AclWatcher(cluster, actor, watch_stop)]
        for t in threads:
            t.start()
        if subscribers:  # every watch in place before the first write it must be told of
            wait_until(lambda: all(subscribed(cluster, i) for i in range(NODES)), 30,
                       "every node's watcher subscribed")
        for t in clients + [nemesis]:
            t.start()
        nemesis.join(duration + 60)
        log("nemesis done; healing everything")
        nemesis.heal_all()
        # A few quiet seconds of load on the healed cluster, then the clients stop.
        time.sleep(3)
        stop.set()
        for c in clients:
            c.join(30)
        heal_t = time.monotonic()  # convergence counts from the last write after the heal
        log("clients stopped; waiting for convergence")
        conv_s, snaps = converge(cluster, conv_limit)
        if conv_s is not None:
            conv_s = time.monotonic() - heal_t
        log("converged %s after the heal" % ("in %.1f s" % conv_s if conv_s is not None
                                             else "NEVER"))
        if workload == "kv" and conv_s is not None:
            # The final state must hold no ttl value that ran out: one put just before the
            # clients stopped is live for up to the longest ttl, longer when its writer's
            # clock ran ahead at the write. Look again until none is held, or every value has
            # run out by its writer's clock and every member's (or the time is up).
            time.sleep(max(0.0, max(TTL_CHOICES_S) + TTL_TOLERANCE_S + 0.5 -
                           (time.monotonic() - heal_t)))
            all_out = max([ttl_expiry(o)[1] for o in history.ops
                           if o["kind"] == "ttl-put" and o["type"] != "fail"], default=0) + \
                TTL_TOLERANCE_S - min(cluster.nodes[i].clock for i in cluster.active())
            deadline = time.monotonic() + conv_limit
            while True:
                again_s, snaps = converge(cluster, conv_limit)
                held = again_s is not None and any(
                    v for k, v in next(s for s in snaps if s).items() if k.startswith("ttl:"))
                if not held or now() > all_out + 1 or time.monotonic() > deadline:
                    break
                time.sleep(1)
            if again_s is None:
                conv_s = None
                log("the nodes diverged again after the ttls ran out")
        members_ok = cluster.wait_members(20)
        if nemesis.members is not None:
            # every member's view, then the op records awaiting the stable cut until none is
            # left (GC runs every 10 s) or GC_WAIT_S passed. One write per scope first: a
            # ttl value purged at its expiry leaves an op record that only a later cut drops,
            # and without a write the cut stays where it is (kv cells kept 1-6 for good).
            nemesis.members["final"] = cluster.membership()
            for scope in (SCOPE_A, SCOPE_B):
                cluster.cli(cluster.active()[0], "put", scope, DRAIN_KEY, "gc")
            t_gc = time.monotonic()
            while True:
                garbage = {}
                for i in cluster.active():
                    st = cluster.status(i)
                    garbage[cluster.nodes[i].name()] = None if st is None else {
                        sc["scope"]: sc["garbage"] for sc in st["scopes"]}
                if all(g is not None and not any(g.values()) for g in garbage.values()) or \
                        time.monotonic() - t_gc > GC_WAIT_S:
                    break
                time.sleep(1)
            nemesis.members.update(garbage=garbage, gc_wait_s=time.monotonic() - t_gc)
            log(f"membership: {json.dumps(nemesis.members, sort_keys=True)}")
        if subscribers:  # the last events reach the subscribers, then they stop
            time.sleep(1)
            watch_stop.set()
            for sub in subscribers:
                sub.stop()
        if actor:  # the last revocations reach the last nodes
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and any(
                    not learned_everywhere(cluster, r) for r in actor.revocations +
                    actor.grants):
                time.sleep(0.3)
        sampler.sample()
        watch_stop.set()
        for t in threads:
            t.join(10)
        extra = dict(rss=sampler.rss, rss_limit_kib=int(cfg.get("rss_limit_mib", 512)) * 1024,
                     clock_refusals=sampler.clock_refusals(),
                     clock_big="clock-big" in nemeses,
                     revocations=actor.revocations if actor else [],
                     maybe_revoked=actor.maybe_revoked if actor else [],
                     grants=actor.grants if actor else [],
                     maybe_granted=actor.maybe_granted if actor else [],
                     late=actor.late if actor else [],
                     durability=cfg.get("durability", "sync"),
                     nodes=[cluster.nodes[i].name() for i in cluster.active()])
        if nemesis.members is not None:
            extra["membership"] = nemesis.members
        if subscribers:
            extra["subscribers"] = [dict(node=f"n{s.idx + 1}", events=s.events, gaps=s.gaps)
                                    for s in subscribers]
        if "delay" in nemesis.faults:
            extra["delays"] = nemesis.delays
        if "wipe" in nemesis.faults:
            extra["wipes"] = nemesis.wipes
        result["skipped"] = nemesis.skipped
        checker = Checker(history, snaps, conv_s, workload, extra)
        ok = checker.run()
        for c in clients + threads + [nemesis]:
            if c.error:
                ok = False
                checker.results[f"{c.name} crashed"] = "FAIL"
                print(f"{c.name} raised:\n{c.error}", file=sys.stderr)
        if not members_ok:
            checker.results["membership"] = "FAIL"
            ok = False
            print("members not all alive after heal: " + json.dumps(cluster.membership()),
                  file=sys.stderr)
        else:
            checker.results["membership"] = "ok"
        problems = node_health(cluster)
        checker.results["nodes"] = "FAIL" if problems else "ok"
        checker.counts["nodes"]["problems"] = len(problems)
        for p in problems:
            checker.failures.append(("nodes", p[:3000], [], None))
        ok = ok and not problems
        for p in problems:
            print(p, file=sys.stderr)
        first = next((s for s in snaps or [] if s), None)
        if first:
            print("final state: " + ", ".join(
                f"{k}: {len(v) if isinstance(v, list) else v}" for k, v in
                sorted(data_view(first).items()) if k != "vectors"))
        print(summary(history, nemesis, conv_s, time.monotonic() - started))
        print("checks: " + ", ".join(f"{k} {v}" for k, v in checker.results.items()))
        if not ok:
            print(f"\nengram_jepsen: FAILED, seed {seed} ({label}); history and node logs in "
                  f"{out or tmp}", file=sys.stderr)
            print(checker.excerpt(), file=sys.stderr)
        if actor:
            result["revocations"] = actor.revocations
            result["grants"] = actor.grants
    except BaseException as e:  # noqa: BLE001 - the cell's error is its verdict
        traceback.print_exc()
        print(f"engram_jepsen: error, seed {seed}; logs in {out or tmp}", file=sys.stderr)
        result["error"] = f"{type(e).__name__}: {e}"[:500]
        ok = False
        if isinstance(e, KeyboardInterrupt):
            raise
    finally:
        cluster.down()
        left = [ns for ns in netns_list() if ns.startswith(run_id)]
        if left:
            print(f"engram_jepsen: namespaces left behind: {left}", file=sys.stderr)
            ok = False
        result.update(valid=bool(ok), wall_s=round(time.monotonic() - started, 1),
                      convergence_s=None if conv_s is None else round(conv_s, 2))
        result.update(cell_summary(history, nemesis, checker, sampler))
        if out:
            write_results(out, cfg, result, history, nemesis, checker, sampler, cluster)
        if (ok and not cfg.get("keep")) or out:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"engram_jepsen: kept {tmp}")
    print(f"engram_jepsen: {label}: " + ("PASS" if ok else "FAIL") + f" (seed {seed})",
          flush=True)
    return result


def cell_summary(history, nemesis, checker, sampler):
    table = op_table(history)
    tot = collections.Counter()
    for c in table.values():
        tot.update(c)
    counts = checker.counts if checker else {}
    lost = max(counts.get("sets", {}).get("lost", 0), counts.get("logs", {}).get("lost", 0))
    excused = {why: max(counts.get("sets", {}).get(f"lost_{why}", 0),
                        counts.get("logs", {}).get(f"lost_{why}", 0)) for why in LOSS_REASONS}
    peak = 0
    if sampler:
        peak = max((kib for _t, _n, kib in sampler.rss), default=0) // 1024
    return dict(ops=dict(ok=tot["ok"], fail=tot["fail"], info=tot["info"]),
                ops_by_kind={k: dict(v) for k, v in sorted(table.items())},
                faults=dict(sorted(nemesis.counts.items())),
                faults_injected=sum(nemesis.counts.values()),
                lost=lost, resurrected=counts.get("sets", {}).get("resurrected", 0),
                lost_wipe=excused["wipe"],
                lost_removed=excused["removed"],
                rss_peak_mib=peak,
                clock_refusals=sampler.clock_refusals() if sampler else 0,
                verdicts={k: v == "ok" for k, v in (checker.results.items() if checker else [])},
                failed_checks=[k for k, v in (checker.results.items() if checker else [])
                               if v != "ok"])


def write_results(out, cfg, result, history, nemesis, checker, sampler, cluster):
    """The results folder of one run: history.jsonl, timeline.json (what fault, when, which
    nodes), verdicts.json (per check: valid, counts, first errors), summary.json and .txt,
    rss.json, each node's log, and the plots (when matplotlib is there)."""
    os.makedirs(out, exist_ok=True)
    history.dump(os.path.join(out, "history.jsonl"))
    with open(os.path.join(out, "timeline.json"), "w") as f:
        json.dump(nemesis.timeline, f, indent=1, sort_keys=True)
    verdicts = checker.verdicts() if checker else {}
    if checker:
        for name in checker.results:
            verdicts.setdefault(name, dict(valid=checker.results[name] == "ok"))
    if "error" in result:
        verdicts["run"] = dict(valid=False, errors=[result["error"]])
    with open(os.path.join(out, "verdicts.json"), "w") as f:
        json.dump(verdicts, f, indent=1, sort_keys=True)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(dict(result, config={k: v for k, v in cfg.items()
                                       if k not in ("engramd", "engram")}),
                  f, indent=1, sort_keys=True, default=str)
    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write(summary(history, nemesis, result.get("convergence_s"),
                        result.get("wall_s", 0)) + "\n")
        f.write("verdicts: " + ", ".join(f"{k} {'ok' if v['valid'] else 'FAIL'}"
                                         for k, v in verdicts.items()) + "\n")
        if checker and checker.failures:
            f.write("\nfailures:\n" + checker.excerpt() + "\n")
    if checker:
        with open(os.path.join(out, "final.json"), "w") as f:  # each node's final state
            json.dump(checker.snaps, f, sort_keys=True)
    if checker and "subscribers" in checker.extra:  # each subscriber's events, as received
        with open(os.path.join(out, "watch.json"), "w") as f:
            json.dump(checker.extra["subscribers"], f)
    if sampler:
        with open(os.path.join(out, "rss.json"), "w") as f:
            json.dump(sampler.rss, f)
    logs = os.path.join(out, "nodes")
    os.makedirs(logs, exist_ok=True)
    for node in cluster.nodes:
        src = os.path.join(node.dir, "engramd.log")
        if os.path.exists(src):
            shutil.copy(src, os.path.join(logs, f"{node.name()}.log"))
    try:
        import plots  # noqa: E402 - jepsen/plots.py, beside this file
        made = plots.plot_cell(out, history.ops, nemesis.timeline,
                               sampler.rss if sampler else [],
                               int(cfg.get("rss_limit_mib", 512)))
        if made:
            result["plots"] = made
    except Exception as e:  # noqa: BLE001 - a missing plot never fails a run
        print(f"engram_jepsen: no plots: {e}", file=sys.stderr)


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    why = skip_reason()
    if why:
        print(f"engram_jepsen: skipped: {why}")
        return SKIP
    remove_stale_runs()
    seed_env = os.environ.get("ENGRAM_JEPSEN_SEED", "")

    def on_signal(signum, _frame):
        raise SystemExit(f"engram_jepsen: signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    result = run_cell(dict(engramd=sys.argv[1], engram=sys.argv[2], workload="mixed",
                           nemeses=["mixed"], seed=int(seed_env) if seed_env else None,
                           time=float(os.environ.get("ENGRAM_JEPSEN_TIME", "60")),
                           clients=int(os.environ.get("ENGRAM_JEPSEN_CLIENTS", "2")),
                           converge=float(os.environ.get("ENGRAM_JEPSEN_CONVERGE", "60")),
                           keep=os.environ.get("ENGRAM_JEPSEN_KEEP") == "1"))
    return 0 if result["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
