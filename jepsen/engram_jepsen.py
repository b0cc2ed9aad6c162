#!/usr/bin/env python3
"""A Jepsen-style test of an engram cluster: five engramd nodes, each in its own network
namespace behind one software switch, clients writing and reading through the `engram` CLI
(each an agent with its own CURVE key, registered and granted by the admin with the CLI)
while a seeded nemesis partitions, drops packets, kills, pauses and skews nodes; then heal,
wait for quiescence and check the history. Python 3 standard library only.

Usage: engram_jepsen.py ENGRAMD ENGRAM

Environment:
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

SKIP = 77
NODES = 5
SUBNET = "10.77.0"
GOSSIP_PORT = 7400
GOSSIP_INTERVAL_MS = "100"
SCOPE_A = "run:jepsen"  # sets, counters, registers, hand-off keys
SCOPE_B = "team:jepsen"  # logs, a register
SET_KEYS = ["s0", "s1"]
COUNTER_KEYS = ["c0"]
LOG_KEYS = ["l0"]
REG_KEYS = [(SCOPE_A, "r0"), (SCOPE_A, "r1"), (SCOPE_B, "r2")]
CLI_TIMEOUT_S = 8  # the CLI's own request timeout is 5 s; this bounds a hung exec
AFTER_TIMEOUT_MS = 3000
USER = "jepsen"  # the user every client acts for
READER = "jepsen"  # the agent the checker reads the final state with, on every node
# Grants start this long before they are made, and agents are registered as of then (below):
# longer than the largest negative clock skew the nemesis gives a node, which would otherwise
# refuse a statement issued later than its own clock says it is.
BACKDATE_S = 3600
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

    def set_loss(self, loss):
        self.loss = dict(loss)
        self.apply()

    def heal(self):
        self.cut = set()
        self.loss = {}
        self.apply()

    def down(self):
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

    def name(self):
        return f"n{self.idx + 1}"

    def identity(self):
        r = sh(self.c.engramd, "--data", os.path.join(self.dir, "data"), "--identity")
        self.id = re.search(r"node=([0-9a-f]+)", r.stdout).group(1)
        key = re.search(r"key=(\S+)", r.stdout).group(1)
        self.c.admin("node", "admit", key, "--out", self.card)

    def start(self, skew=0):
        self.check_crashed()
        cmd = ["ip", "netns", "exec", self.ns, self.c.engramd, "--data",
               os.path.join(self.dir, "data"), "--api", self.api, "--gossip", self.gossip,
               "--admission", self.card, "--gossip-interval-ms", GOSSIP_INTERVAL_MS]
        if self.idx != 0:
            cmd += ["--join", self.c.nodes[0].gossip if self.c.nodes else
                    f"tcp://{self.c.net.ips[0]}:{GOSSIP_PORT}"]
        env = dict(os.environ)
        if skew and self.c.faketime:
            env.update(LD_PRELOAD=self.c.faketime, FAKETIME=f"{skew:+d}",
                       FAKETIME_DONT_FAKE_MONOTONIC="1", FAKETIME_NO_CACHE="1")
            # a sanitizer build refuses a preloaded library ahead of its runtime
            env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS", ""),
                                                         "verify_asan_link_order=0"]))
        else:
            skew = 0
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
    def __init__(self, engramd, engram, run_id, tmp):
        self.engramd = engramd
        self.engram = engram
        self.dir = tmp
        self.home = os.path.join(tmp, "home")
        self.net = Network(run_id, NODES)
        self.nodes = []
        self.faketime = next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)

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
        for node in nodes:
            node.start()
        log(f"{NODES} nodes started; waiting for every member to see every other alive")
        if not self.wait_members(60):
            raise RuntimeError("the cluster did not form within 60 s: "
                               + json.dumps(self.membership()))

    def provision(self, agents):
        """Registers each (agent, node index) through that node, lets USER act through it and
        lets it read and write both scopes, with the CLI as an admin would; then waits until
        every node holds every statement (they spread by gossip in sys:acl). No agent gets a
        home node: every client also reads on other nodes (the causal hand-off), and the
        reader reads everywhere. Registrations and grants date from BACKDATE_S ago, so that
        a node restarted with its clock behind still knows them: the grants with --from, the
        registrations (`agent create` has no --from; it is valid from the time it is issued)
        signed under libfaketime when the nemesis can skew clocks at all."""
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
            ids.add(self.admin(*sock, "acl", "allow-user", USER, agent,
                               f"--from={backdate}").strip())
            for scope in (SCOPE_A, SCOPE_B):
                ids.add(self.admin(*sock, "acl", "allow", agent, scope, "read,write",
                                   f"--from={backdate}").strip())
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
        log(f"{len(agents)} agents registered and granted ({len(ids)} statements on every node)")

    def status(self, idx):
        r = self.cli(idx, "cluster", "status", "--json", timeout=5)
        if r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def membership(self):
        out = {}
        for node in self.nodes:
            st = self.status(node.idx)
            out[node.name()] = (None if st is None else
                                sorted((m["endpoint"], m["state"]) for m in st["members"]))
        return out

    def wait_members(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ok = True
            for node in self.nodes:
                st = self.status(node.idx)
                alive = 0 if st is None else sum(
                    1 for m in st["members"] if m["state"] == "alive")
                if alive < NODES - 1:
                    ok = False
                    break
            if ok:
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


WRITE_KINDS = ("set-add", "counter-add", "log-append", "put", "handoff-put")


def classify(kind, r):
    """ok / fail / info of one CLI call. A write is `fail` only when it surely did not happen
    (usage or refusal); anything else that is not success (unavailable, timeout, a storage
    error) may have happened: `info`. A read that did not answer is `fail` (no effect)."""
    if r.returncode == 0:
        return "ok"
    if kind in WRITE_KINDS:
        return "fail" if r.returncode in (2, 4, 6) else "info"
    if r.returncode == 3:
        return "ok"  # not found: an empty answer
    return "fail"


class Client(threading.Thread):
    """A process of the history: one thread bound to one node, one operation at a time."""

    def __init__(self, pid, node, cluster, history, rng, stop):
        super().__init__(daemon=True, name=f"client-{pid}")
        self.pid = pid
        self.node = node
        self.c = cluster
        self.h = history
        self.rng = rng
        self.stop_ev = stop
        self.seq = 0
        self.handoff_key = f"h{pid}"
        self.error = None

    def uid(self):
        self.seq += 1
        return f"p{self.pid}-{self.seq}"

    def call(self, kind, args, timeout=CLI_TIMEOUT_S, **fields):
        op = self.h.invoke(self.pid, self.node, kind, **fields)
        r = self.c.cli(self.node, *args, timeout=timeout, agent=f"agent-{self.pid}")
        typ = classify(kind, r)
        extra = dict(rc=r.returncode)
        if typ != "ok":
            extra["err"] = r.stderr.strip()[:200]
        self.h.complete(op, typ, **extra)
        return op, r

    def run(self):
        try:
            while not self.stop_ev.is_set():
                self.step()
                time.sleep(self.rng.uniform(0.01, 0.06))
        except Exception:  # noqa: BLE001 - reported by the checker
            self.error = traceback.format_exc()

    def step(self):
        x = self.rng.random()
        if x < 0.22:
            key, elem = self.rng.choice(SET_KEYS), self.uid()
            self.call("set-add", ["set", "add", SCOPE_A, key, elem], key=key, value=elem)
        elif x < 0.36:
            key, n = self.rng.choice(COUNTER_KEYS), self.rng.randint(1, 5)
            self.call("counter-add", ["counter", "add", SCOPE_A, key, str(n)], key=key, value=n)
        elif x < 0.50:
            key, text = self.rng.choice(LOG_KEYS), self.uid()
            self.call("log-append", ["log", "append", SCOPE_B, key, text], key=key, value=text)
        elif x < 0.62:
            scope, key = self.rng.choice(REG_KEYS)
            self.call("put", ["put", scope, key, self.uid()], scope=scope, key=key,
                      value=f"p{self.pid}-{self.seq}")
        elif x < 0.70:
            key = self.rng.choice(SET_KEYS)
            op, r = self.call("set-read", ["set", "members", SCOPE_A, key], key=key)
            if op["type"] == "ok":
                self.h.complete(op, "ok", value=r.stdout.split())
        elif x < 0.76:
            key = self.rng.choice(COUNTER_KEYS)
            op, r = self.call("counter-read", ["counter", "get", SCOPE_A, key], key=key)
            if op["type"] == "ok":
                self.h.complete(op, "ok", value=int(r.stdout.strip() or 0))
        elif x < 0.81:
            key = self.rng.choice(LOG_KEYS)
            op, r = self.call("log-read", ["log", "range", SCOPE_B, key], key=key)
            if op["type"] == "ok":
                self.h.complete(op, "ok", value=r.stdout.split("\n")[:-1])
        elif x < 0.90:
            scope, key = self.rng.choice(REG_KEYS)
            op, r = self.call("get", ["get", "--json", scope, key], scope=scope, key=key)
            if op["type"] == "ok":
                self.h.complete(op, "ok", value=reg_values(r))
        else:
            self.handoff()

    def handoff(self):
        """put on this node, then `get --after TOKEN` on another: the causal hand-off."""
        value = self.uid()
        op, r = self.call("handoff-put", ["put", SCOPE_A, self.handoff_key, value],
                          scope=SCOPE_A, key=self.handoff_key, value=value)
        if op["type"] != "ok":
            return
        token = r.stdout.strip().splitlines()[-1]
        self.h.complete(op, "ok", token=token)
        other = self.rng.choice([i for i in range(NODES) if i != self.node])
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
        key = self.rng.choice(SET_KEYS)
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


class Nemesis(threading.Thread):
    FAULTS = ["partition-halves", "partition-bridge", "partition-isolate", "loss", "kill",
              "pause", "kill-skew", "partition+kill", "loss+pause"]

    def __init__(self, cluster, history, rng, duration, stop):
        super().__init__(daemon=True, name="nemesis")
        self.c = cluster
        self.h = history
        self.rng = rng
        self.duration = duration
        self.stop_ev = stop
        self.counts = collections.Counter()
        self.error = None
        self.lock = threading.Lock()  # node restarts vs the final heal

    def ev(self, kind, **fields):
        self.h.event(kind, **fields)
        log(f"nemesis: {kind} {json.dumps(fields, sort_keys=True)}")

    def run(self):
        try:
            end = time.monotonic() + self.duration
            self.stop_ev.wait(self.rng.uniform(2, 4))
            while time.monotonic() < end and not self.stop_ev.is_set():
                fault = self.rng.choice(self.FAULTS)
                hold = self.rng.uniform(3, 8)
                hold = max(1.0, min(hold, end - time.monotonic()))
                self.inject(fault, hold)
                self.stop_ev.wait(self.rng.uniform(1, 3))
        except Exception:  # noqa: BLE001
            self.error = traceback.format_exc()

    def node_names(self, idxs):
        return [f"n{i + 1}" for i in idxs]

    def inject(self, fault, hold):
        self.counts[fault] += 1
        rng = self.rng
        net = self.c.net
        ids = list(range(NODES))
        after = []  # undo steps
        if fault.startswith("partition"):
            rng.shuffle(ids)
            if fault in ("partition-halves", "partition+kill"):
                k = rng.randint(1, NODES // 2)
                groups = [ids[:k], ids[k:]]
            elif fault == "partition-bridge":
                bridge = ids[0]
                rest = ids[1:]
                groups = [[bridge] + rest[:2], [bridge] + rest[2:]]
            else:
                groups = [ids[:1], ids[1:]]
            net.partition([set(g) for g in groups])
            self.ev("partition", groups=[self.node_names(sorted(g)) for g in groups])
            after.append(lambda: (net.partition([set(range(NODES))]), self.ev("heal-partition")))
        if fault.startswith("loss"):
            if rng.random() < 0.5:
                loss = {-1: rng.choice([10, 20, 30])}
            else:
                loss = {rng.randrange(NODES): rng.choice([30, 50, 70])}
            net.set_loss(loss)
            self.ev("loss", percent={("all" if k < 0 else f"n{k + 1}"): v
                                     for k, v in loss.items()})
            after.append(lambda: (net.set_loss({}), self.ev("heal-loss")))
        if fault in ("kill", "kill-skew", "partition+kill"):
            node = self.c.nodes[rng.randrange(NODES)]
            skew = 0
            if fault == "kill-skew" and self.c.faketime:
                skew = rng.choice([-120, -30, 30, 90, 300])
            with self.lock:
                node.kill()
            self.ev("kill", node=node.name())
            after.append(lambda n=node, s=skew: self.restart(n, s))
        if fault in ("pause", "loss+pause"):
            node = self.c.nodes[rng.randrange(NODES)]
            with self.lock:
                node.signal(signal.SIGSTOP)
                node.paused = True
            self.ev("pause", node=node.name())
            after.append(lambda n=node: self.resume(n))
        self.stop_ev.wait(hold)
        for undo in reversed(after):
            undo()

    def restart(self, node, skew):
        with self.lock:
            if not node.alive():
                node.start(skew)
        self.ev("restart", node=node.name(), skew_s=node.skew)

    def resume(self, node):
        with self.lock:
            node.signal(signal.SIGCONT)
            node.paused = False
        self.ev("resume", node=node.name())

    def heal_all(self):
        with self.lock:
            self.c.net.heal()
            for node in self.c.nodes:
                if node.alive():
                    node.signal(signal.SIGCONT)
                    node.paused = False
                else:
                    node.start(node.skew)
        self.ev("heal-all")


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
    return snap


def data_view(snap):
    return {k: v for k, v in snap.items() if k not in ("members",)}


def converge(cluster, seconds):
    """Polls every node until all report the same vectors and data; returns (seconds taken
    or None, the last snapshots)."""
    start = time.monotonic()
    deadline = start + seconds
    snaps = None
    while True:
        snaps = [snapshot(cluster, i) for i in range(NODES)]
        if all(s is not None for s in snaps):
            views = [json.dumps(data_view(s), sort_keys=True) for s in snaps]
            if len(set(views)) == 1 and snaps[0]["vectors"]:
                return time.monotonic() - start, snaps
        if time.monotonic() > deadline:
            return None, snaps
        time.sleep(0.5)


class Checker:
    def __init__(self, history, snaps, converged):
        self.ops = sorted(history.ops, key=lambda o: o["invoke"])
        self.snaps = snaps
        self.converged = converged
        self.failures = []  # (check, message, [op ids], window (t0, t1))
        self.results = collections.OrderedDict()

    def fail(self, check, message, ops=(), around=None):
        if len(self.failures) < 200:
            self.failures.append((check, message, [o["id"] for o in ops], around))

    def of(self, kind, typ=None):
        return [o for o in self.ops if o["kind"] == kind and (typ is None or o["type"] == typ)]

    def run(self):
        before = len(self.failures)
        for name in ["convergence", "sets", "counters", "logs", "registers", "handoff",
                     "reads", "access"]:
            n0 = len(self.failures)
            getattr(self, f"check_{name}")()
            self.results[name] = "ok" if len(self.failures) == n0 else "FAIL"
        return len(self.failures) == before

    def check_access(self):
        """Every client is granted both scopes for the whole run: no op may be refused."""
        denied = [o for o in self.ops if o.get("rc") == 6]
        if denied:
            self.fail("access", f"{len(denied)} operations of granted agents were refused "
                      f"(exit 6): {denied[0].get('err', '')}", denied[:5])

    def check_convergence(self):
        if self.converged is None:
            views = {}
            for i, s in enumerate(self.snaps):
                views[f"n{i + 1}"] = None if s is None else data_view(s)
            self.fail("convergence", "the nodes did not converge: "
                      + json.dumps(views, sort_keys=True)[:4000])

    def finals(self):
        return [(f"n{i + 1}", s) for i, s in enumerate(self.snaps) if s is not None]

    def check_sets(self):
        for key in SET_KEYS:
            adds = [o for o in self.of("set-add") if o["key"] == key]
            ok = {o["value"]: o for o in adds if o["type"] == "ok"}
            maybe = {o["value"]: o for o in adds if o["type"] in ("ok", "info")}
            failed = {o["value"]: o for o in adds if o["type"] == "fail"}
            for name, s in self.finals():
                members = set(s[f"set:{key}"])
                lost = [ok[v] for v in sorted(set(ok) - members)]
                if lost:
                    self.fail("sets", f"{name}: {len(lost)} acknowledged adds to {key} are "
                              f"missing: {[o['value'] for o in lost[:10]]}", lost[:5])
                extra = sorted(members - set(maybe))
                if extra:
                    self.fail("sets", f"{name}: {key} holds elements never (successfully or "
                              f"indeterminately) added: {extra[:10]}",
                              [failed[v] for v in extra if v in failed][:5])

    def check_counters(self):
        for key in COUNTER_KEYS:
            adds = [o for o in self.of("counter-add") if o["key"] == key]
            lo = sum(o["value"] for o in adds if o["type"] == "ok")
            hi = lo + sum(o["value"] for o in adds if o["type"] == "info")
            for name, s in self.finals():
                v = s[f"counter:{key}"]
                if not lo <= v <= hi:
                    self.fail("counters", f"{name}: counter {key} = {v}, expected within "
                              f"[{lo}, {hi}] (acknowledged sum, plus indeterminate)")

    def check_logs(self):
        for key in LOG_KEYS:
            apps = [o for o in self.of("log-append") if o["key"] == key]
            ok = {o["value"]: o for o in apps if o["type"] == "ok"}
            maybe = {o["value"]: o for o in apps if o["type"] in ("ok", "info")}
            for name, s in self.finals():
                entries = s[f"log:{key}"]
                counts = collections.Counter(entries)
                dup = [e for e, c in counts.items() if c > 1]
                if dup:
                    self.fail("logs", f"{name}: log {key} holds entries more than once: "
                              f"{dup[:10]}", [ok[e] for e in dup if e in ok][:5])
                lost = [ok[v] for v in sorted(set(ok) - set(entries))]
                if lost:
                    self.fail("logs", f"{name}: {len(lost)} acknowledged appends to {key} "
                              f"are missing: {[o['value'] for o in lost[:10]]}", lost[:5])
                extra = sorted(set(entries) - set(maybe))
                if extra:
                    self.fail("logs", f"{name}: log {key} holds entries never appended: "
                              f"{extra[:10]}")
                # Session order: a client's acknowledged appends (one at a time, on one node,
                # so each causally after the last) appear in the order they were made.
                pos = {e: i for i, e in enumerate(entries)}
                by_client = collections.defaultdict(list)
                for o in sorted(ok.values(), key=lambda o: o["invoke"]):
                    by_client[o["process"]].append(o)
                for proc, seq in by_client.items():
                    for a, b in zip(seq, seq[1:]):
                        if a["value"] in pos and b["value"] in pos and \
                                pos[a["value"]] > pos[b["value"]]:
                            self.fail("logs", f"{name}: log {key} has {b['value']} before "
                                      f"{a['value']}, appended in that order on "
                                      f"n{a['node'] + 1} by client {proc}", [a, b])

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

    def check_handoff(self):
        by_id = {o["id"]: o for o in self.ops}
        # A hand-off put with no answer may still land later, after this client's next put
        # on the same node, and then rightly overwrite it: such values are allowed too. An
        # acknowledged earlier put's value never is (the new put overwrote it causally).
        maybe = collections.defaultdict(set)
        for o in self.of("handoff-put", "info"):
            maybe[o["key"]].add(o["value"])
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
            need = [o for o in self.of("set-add", "ok") if o["key"] == s["key"]
                    and o["node"] == put["node"] and o["complete"] < put["invoke"]]
            have = set(s["value"])
            missing = [o for o in need if o["value"] not in have]
            if missing:
                self.fail("handoff", f"after get --after the token of put {put['value']} "
                          f"(n{put['node'] + 1}), n{s['node'] + 1} lacks "
                          f"{len(missing)} set elements acknowledged on n{put['node'] + 1} before "
                          f"the put: {[o['value'] for o in missing[:10]]}",
                          [put, s] + missing[:3], (put["invoke"] - 2, s["complete"]))

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
            local = [a for a in adds if a["key"] == o["key"] and a["type"] == "ok"
                     and a["node"] == o["node"] and a["complete"] < o["invoke"]]
            have = set(o["value"])
            missing = [a for a in local if a["value"] not in have]
            if missing:
                self.fail("reads", f"set read of {o['key']} on n{o['node'] + 1} lacks "
                          f"{[a['value'] for a in missing[:5]]}, acknowledged by that node "
                          f"before", [o] + missing[:3], (missing[0]["invoke"] - 1,
                                                         o["complete"]))
        incs = self.of("counter-add")
        for o in self.of("counter-read", "ok"):
            hi = sum(a["value"] for a in incs if a["key"] == o["key"] and a["type"] != "fail"
                     and a["invoke"] <= o["complete"])
            lo = sum(a["value"] for a in incs if a["key"] == o["key"] and a["type"] == "ok"
                     and a["node"] == o["node"] and a["complete"] < o["invoke"])
            if not lo <= o["value"] <= hi:
                self.fail("reads", f"counter read of {o['key']} on n{o['node'] + 1} = "
                          f"{o['value']}, expected within [{lo} (this node's acknowledged), "
                          f"{hi} (all invoked)]", [o], (o["invoke"] - 5, o["complete"]))
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
                     and a["node"] == o["node"] and a["complete"] < o["invoke"]]
            have = set(o["value"])
            missing = [a for a in local if a["value"] not in have]
            if missing:
                self.fail("reads", f"log read of {o['key']} on n{o['node'] + 1} lacks "
                          f"{[a['value'] for a in missing[:5]]}, acknowledged by that node "
                          f"before", [o] + missing[:3], (missing[0]["invoke"] - 1,
                                                         o["complete"]))

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


def fmt_op(o):
    fields = {k: v for k, v in o.items() if k not in ("id", "process", "type", "invoke",
                                                        "complete", "kind", "node")}
    if isinstance(fields.get("value"), list) and len(fields["value"]) > 8:
        fields["value"] = fields["value"][:8] + [f"... {len(fields['value']) - 8} more"]
    where = "" if o["process"] == "nemesis" else f" p{o['process']}@n{o['node'] + 1}"
    return (f"{o['invoke']:8.3f}-{o.get('complete', float('nan')):8.3f} {o['type']:6} "
            f"{o['kind']}{where} {json.dumps(fields, sort_keys=True)}")


def summary(history, nemesis, conv_s, elapsed):
    table = collections.defaultdict(collections.Counter)
    for o in history.ops:
        if o["process"] != "nemesis":
            table[o["kind"]][o["type"]] += 1
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
    ]
    snap = {"vectors": {SCOPE_A: "v", SCOPE_B: "v"}, "members": [], "set:s0": ["a", "b"],
            "set:s1": [], "counter:c0": 4, "log:l0": ["x", "y"], "reg:r0": ["v1"],
            "reg:r1": [], "reg:r2": []}

    def check(mutate=None):
        h = History()
        h.ops = copy.deepcopy(base_ops)
        snaps = [copy.deepcopy(snap) for _ in range(NODES)]
        conv = [1.0]
        if mutate:
            mutate({o["id"]: o for o in h.ops}, snaps, conv)
        c = Checker(h, snaps, conv[0])
        c.run()
        return {k for k, v in c.results.items() if v != "ok"}

    def setv(i, field, value):
        return lambda ops, snaps, conv: snaps[i].__setitem__(field, value)

    def opv(i, field, value):
        return lambda ops, snaps, conv: ops[i].__setitem__(field, value)

    cases = [
        ("nothing planted", None, set()),
        ("no convergence", lambda o, s, c: c.__setitem__(0, None), {"convergence"}),
        ("acknowledged add lost", setv(2, "set:s0", ["b"]), {"sets"}),
        ("failed add present", setv(1, "set:s0", ["a", "b", "c"]), {"sets"}),
        ("add never made", setv(1, "set:s0", ["a", "zz"]), {"sets"}),
        ("counter too high", setv(3, "counter:c0", 6), {"counters"}),
        ("counter too low", setv(3, "counter:c0", 2), {"counters"}),
        ("log entry lost", setv(0, "log:l0", ["y"]), {"logs"}),
        ("log entry twice", setv(0, "log:l0", ["x", "y", "x"]), {"logs"}),
        ("log out of session order", setv(4, "log:l0", ["y", "x"]), {"logs"}),
        ("log entry never appended", setv(4, "log:l0", ["x", "y", "q"]), {"logs"}),
        ("register ends unwritten", setv(4, "reg:r0", ["v9"]), {"registers"}),
        ("read of an unwritten value", opv(8, "value", ["v0"]), {"registers"}),
        ("read of a value written later", lambda o, s, c: o[7].update(invoke=3.5), {"registers"}),
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
    bad = 0
    for name, mutate, want in cases:
        got = check(mutate)
        status = "ok" if got == want else "WRONG"
        bad += got != want
        print(f"  {status:5} {name}: failed checks {sorted(got)}, expected {sorted(want)}")
    print("engram_jepsen self-test: " + ("PASS" if not bad else f"{bad} cases WRONG"))
    return 1 if bad else 0


# --------------------------------------------------------------------------------------------


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    engramd, engram = (os.path.abspath(p) for p in sys.argv[1:3])
    why = skip_reason()
    if why:
        print(f"engram_jepsen: skipped: {why}")
        return SKIP
    remove_stale_runs()

    seed_env = os.environ.get("ENGRAM_JEPSEN_SEED", "")
    seed = int(seed_env) if seed_env else int.from_bytes(os.urandom(4), "little")
    duration = float(os.environ.get("ENGRAM_JEPSEN_TIME", "60"))
    per_node = int(os.environ.get("ENGRAM_JEPSEN_CLIENTS", "2"))
    conv_limit = float(os.environ.get("ENGRAM_JEPSEN_CONVERGE", "60"))
    keep = os.environ.get("ENGRAM_JEPSEN_KEEP") == "1"
    print(f"engram_jepsen: seed {seed} (replay: ENGRAM_JEPSEN_SEED={seed}), {duration:.0f} s, "
          f"{NODES} nodes x {per_node} clients", flush=True)

    run_id = f"ej{os.getpid()}x{os.urandom(2).hex()}"
    tmp = tempfile.mkdtemp(prefix=f"engram-jepsen-{seed}-")
    cluster = Cluster(engramd, engram, run_id, tmp)
    history = History()
    ok = False
    started = time.monotonic()

    def on_signal(signum, _frame):
        raise SystemExit(f"engram_jepsen: signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        if not cluster.faketime:
            log("libfaketime not found: kill-skew restarts run without skew")
        cluster.up()
        cluster.provision([(READER, 0)] + [(f"agent-{p}", p % NODES)
                                           for p in range(NODES * per_node)])
        log(f"cluster formed in namespaces {cluster.net.switch}, {', '.join(cluster.net.hosts)}")
        rng = random.Random(seed)
        stop = threading.Event()
        clients = [Client(p, p % NODES, cluster, history, random.Random(rng.getrandbits(64)),
                          stop) for p in range(NODES * per_node)]
        nemesis = Nemesis(cluster, history, random.Random(rng.getrandbits(64)), duration, stop)
        for c in clients:
            c.start()
        nemesis.start()
        nemesis.join(duration + 60)
        log("nemesis done; healing everything")
        nemesis.heal_all()
        # A few quiet seconds of load on the healed cluster, then the clients stop.
        time.sleep(3)
        stop.set()
        for c in clients:
            c.join(30)
        heal_t = time.monotonic()
        log("clients stopped; waiting for convergence")
        conv_s, snaps = converge(cluster, conv_limit)
        if conv_s is not None:
            conv_s = time.monotonic() - heal_t if conv_s is not None else None
        log("converged in %s" % ("%.1f s" % conv_s if conv_s is not None else "NEVER"))
        members_ok = cluster.wait_members(20)
        checker = Checker(history, snaps, conv_s)
        ok = checker.run()
        for c in clients + [nemesis]:
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
        ok = ok and not problems
        for p in problems:
            print(p, file=sys.stderr)
        if snaps and snaps[0]:
            print("final state: " + ", ".join(
                f"{k}: {len(v) if isinstance(v, list) else v}" for k, v in
                sorted(data_view(snaps[0]).items()) if k != "vectors"))
            print("final vectors: " + json.dumps(snaps[0]["vectors"], sort_keys=True))
        print(summary(history, nemesis, conv_s, time.monotonic() - started))
        print("checks: " + ", ".join(f"{k} {v}" for k, v in checker.results.items()))
        history.dump(os.path.join(tmp, "history.jsonl"))
        if not ok:
            print(f"\nengram_jepsen: FAILED, seed {seed} (replay: ENGRAM_JEPSEN_SEED={seed}); "
                  f"history and node logs in {tmp}", file=sys.stderr)
            print(checker.excerpt(), file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        print(f"engram_jepsen: error, seed {seed}; logs in {tmp}", file=sys.stderr)
        try:
            history.dump(os.path.join(tmp, "history.jsonl"))
        except Exception:  # noqa: BLE001
            pass
        ok = False
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cluster.down()
        left = [ns for ns in netns_list() if ns.startswith(run_id)]
        if left:
            print(f"engram_jepsen: namespaces left behind: {left}", file=sys.stderr)
            ok = False
        if ok and not keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"engram_jepsen: kept {tmp}")
    print("engram_jepsen: " + ("PASS" if ok else "FAIL") + f" (seed {seed})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
