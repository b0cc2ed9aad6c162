#!/usr/bin/env python3
"""deploy/engramd.service and deploy/engram.sysusers, checked by systemd's own tools and run.

Usage: systemd_test.py ENGRAMD ENGRAM UNIT SYSUSERS ENGRAM_CFG

Exits 77 (skipped) if systemd-analyze is missing; deploy/install-deps.sh installs it (systemd).

  - `systemd-analyze verify` says nothing about the unit. It checks that ExecStart's program
    exists, and /usr/bin/engramd exists only once engram is installed with --prefix /usr, so
    the copy it checks has that one path changed to the build's engramd; nothing else differs.
  - `systemd-analyze security --offline=yes` finds no exposure but those of EXPOSED, each left
    on purpose: dropping any hardening option of the unit fails the test.
  - The directories engramd uses are those systemd creates and leaves writable under
    ProtectSystem=strict: --data is /var/lib/StateDirectory, the ipc socket of --api is in
    /run/RuntimeDirectory, --config is in /etc/ConfigurationDirectory.
  - systemd-sysusers, run on a scratch root, creates the unit's User= and Group=.
  - The unit's own ExecStart and ExecStartPost, run here with the unit's directories moved
    into a scratch directory (the only change) and its UMask: engramd starts a second after
    ExecStartPost does, ExecStartPost returns 0 no earlier than that, and the API answers at
    once when it returns; the socket and its key are open to the group; engramd stops with
    exit 0 on SIGTERM. ExecStartPost fails (instead of waiting for ever) once engramd has
    exited, as it does with exit 2 on a flag it does not know.
"""
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ENGRAMD, ENGRAM, UNIT, SYSUSERS, CFG = map(os.path.abspath, sys.argv[1:6])
# What `systemd-analyze security` finds exposed in the unit, and why it is left so.
EXPOSED = {
    "SystemCallFilter=~@resources": "libzmq's threads call sched_setscheduler",
    "RootDirectory=/RootImage=": "engramd runs from the host's /usr",
    "RestrictAddressFamilies=~AF_NETLINK": "libzmq lists the interfaces before a tcp bind",
    "RestrictAddressFamilies=~AF_UNIX": "the agent API's ipc socket",
    "RestrictAddressFamilies=~AF_(INET|INET6)": "gossip",
    "ProcSubset=": "RocksDB reads /proc/sys/kernel/random/uuid",
    "PrivateNetwork=": "gossip",
    "IPAddressDeny=": "gossip goes to whatever addresses the cluster's members have",
    "PrivateUsers=": "never tried: systemd cannot run the unit where this test runs",
    "DeviceAllow=": "what ProtectClock= leaves: reading the real-time clock",
    "UMask=": "0007, so that the group engram (the agents) may use the socket",
}
# how long the test holds engramd back before exec'ing it, in seconds
HOLD_S = 1.0


def fail(what):
    print(f"systemd_test: FAIL: {what}", file=sys.stderr)
    sys.exit(1)


def parse_unit(path):
    """{key: [value, ...]} of the unit file, in order, every section together; a line ending in
    a backslash goes on in the next (the backslash and newline become a space, as in systemd)."""
    keys = {}
    text = open(path, encoding="utf-8").read().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        key, _, value = line.partition("=")
        keys.setdefault(key, []).append(value)
    return keys


def one(unit, key):
    values = unit.get(key, [])
    if len(values) != 1:
        fail(f"{UNIT}: {key}= should be set once, it is set {len(values)} times")
    return values[0]


def command(line):
    """A unit's command line as argv: shell-like words, then systemd's `$$` for `$`."""
    return [word.replace("$$", "$") for word in shlex.split(line)]


def flag(argv, name):
    if name not in argv or argv.index(name) + 1 >= len(argv):
        fail(f"{UNIT}: ExecStart has no {name} VALUE")
    return argv[argv.index(name) + 1]


def check_analyze(tmp):
    copy = os.path.join(tmp, "engramd.service")
    text = open(UNIT, encoding="utf-8").read()
    if "ExecStart=/usr/bin/engramd " not in text:
        fail(f"{UNIT}: ExecStart is not /usr/bin/engramd (where `cmake --install` with "
             f"--prefix /usr puts it: cmake/install.cmake)")
    with open(copy, "w", encoding="utf-8") as f:
        f.write(text.replace("ExecStart=/usr/bin/engramd ", f"ExecStart={ENGRAMD} "))
    out = subprocess.run(["systemd-analyze", "verify", copy], capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0 or out.stdout.strip() or out.stderr.strip():
        fail(f"systemd-analyze verify (exit {out.returncode}):\n{out.stdout}{out.stderr}")
    out = subprocess.run(["systemd-analyze", "security", "--offline=yes", copy],
                         capture_output=True, text=True, timeout=60)
    exposed = {line.split()[1] for line in out.stdout.splitlines() if line.startswith("✗")}
    if out.returncode != 0 or not exposed or exposed - EXPOSED.keys():
        fail(f"systemd-analyze security (exit {out.returncode}) finds the unit exposed by "
             f"{sorted(exposed - EXPOSED.keys())}:\n{out.stdout[-3000:]}{out.stderr}")
    print("systemd_test: " + out.stdout.strip().splitlines()[-1])


def check_sysusers(tmp, unit):
    root = os.path.join(tmp, "root")
    os.makedirs(os.path.join(root, "etc"))
    out = subprocess.run(["systemd-sysusers", f"--root={root}", SYSUSERS], capture_output=True,
                         text=True, timeout=60)
    if out.returncode != 0:
        fail(f"systemd-sysusers {SYSUSERS}: exit {out.returncode}: {out.stderr}")
    users = [line.split(":") for line in open(os.path.join(root, "etc/passwd"))]
    groups = [line.split(":")[0] for line in open(os.path.join(root, "etc/group"))]
    if one(unit, "User") not in [u[0] for u in users]:
        fail(f"{SYSUSERS} does not create the unit's User={one(unit, 'User')}")
    if one(unit, "Group") not in groups:
        fail(f"{SYSUSERS} does not create the unit's Group={one(unit, 'Group')}")


def start_and_stop(run, start, post, socket, env, umask, log):
    """Starts engramd as the unit would (held back HOLD_S), with ExecStartPost beside it;
    checks what the docstring says; stops it. Returns how long ExecStartPost waited."""
    began = time.monotonic()
    node = subprocess.Popen(["sh", "-c", f"umask {umask:04o}; sleep {HOLD_S}; exec \"$@\"",
                             "sh"] + start, stdout=log, stderr=log)
    try:
        out = subprocess.run(post, env=dict(os.environ, MAINPID=str(node.pid)),
                             capture_output=True, text=True, timeout=30)
        waited = time.monotonic() - began
        if out.returncode != 0:
            fail(f"{run}: ExecStartPost failed (exit {out.returncode}) while engramd started: "
                 f"{out.stderr}\n{open(log.name).read()}")
        if waited < HOLD_S:
            fail(f"{run}: ExecStartPost returned after {waited:.2f} s, before engramd was "
                 f"started")
        ask = subprocess.run([ENGRAM, "--socket", socket, "stats"], env=env,
                             capture_output=True, text=True, timeout=30)
        if ask.returncode != 0:
            fail(f"{run}: ExecStartPost returned, the API does not answer: {ask.stderr}")
        path = socket[len("ipc://"):]
        for f in (path, path + ".pub"):
            if os.stat(f).st_mode & 0o060 != 0o060:
                fail(f"{f} is mode {os.stat(f).st_mode & 0o777:o} under UMask={umask:04o}: "
                     f"the group cannot use it")
        node.send_signal(signal.SIGTERM)
        if node.wait(timeout=30) != 0:
            fail(f"{run}: engramd exited {node.returncode} on SIGTERM")
        if os.path.exists(path + ".pub"):
            fail(f"{path}.pub is left behind by a clean stop")
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    return waited


def main():
    if not shutil.which("systemd-analyze"):
        print("systemd_test: SKIP: no systemd-analyze (Debian's systemd package)")
        sys.exit(77)
    unit = parse_unit(UNIT)
    start = command(one(unit, "ExecStart"))
    post = command(one(unit, "ExecStartPost"))
    if one(unit, "Type") != "exec":
        fail(f"{UNIT}: Type={one(unit, 'Type')}: ExecStartPost's wait is the readiness of a "
             f"Type=exec unit")
    state = "/var/lib/" + one(unit, "StateDirectory")
    runtime = "/run/" + one(unit, "RuntimeDirectory")
    config = "/etc/" + one(unit, "ConfigurationDirectory")
    if flag(start, "--data") != state:
        fail(f"{UNIT}: --data {flag(start, '--data')} is not the StateDirectory {state}")
    api = flag(start, "--api")
    if not api.startswith("ipc://") or os.path.dirname(api[len("ipc://"):]) != runtime:
        fail(f"{UNIT}: --api {api} is not an ipc socket in the RuntimeDirectory {runtime}")
    if os.path.dirname(flag(start, "--config")) != config:
        fail(f"{UNIT}: --config is not in the ConfigurationDirectory {config}")
    umask = int(one(unit, "UMask"), 8)

    with tempfile.TemporaryDirectory(prefix="engram-systemd-") as tmp:
        check_analyze(tmp)
        check_sysusers(tmp, unit)

        # the unit's directories, moved under tmp; the program, the build's
        moved = {state: os.path.join(tmp, "state"), runtime: os.path.join(tmp, "run"),
                 config: os.path.join(tmp, "etc"), "/usr/bin/engramd": ENGRAMD}

        def move(word):
            for path, there in moved.items():
                word = word.replace(path, there)
            return word

        start, post = [move(w) for w in start], [move(w) for w in post]
        for path in moved.values():
            if path != ENGRAMD:
                os.makedirs(path)
        shutil.copy(CFG, flag(start, "--config"))
        data, socket = flag(start, "--data"), flag(start, "--api")
        env = dict(os.environ, ENGRAM_HOME=os.path.join(tmp, "home"))
        out = subprocess.run([ENGRAM, "init", "--data", data], env=env, capture_output=True,
                             text=True, timeout=60)
        if out.returncode != 0:
            fail(f"engram init: {out.stderr}")

        log = open(os.path.join(tmp, "engramd.log"), "w")
        # a first start, and a restart: DATA/api.pub is there from the first, and systemd has
        # emptied the RuntimeDirectory, as it does whenever the service stops
        for run in ("start", "restart"):
            waited = start_and_stop(run, start, post, socket, env, umask, log)
            shutil.rmtree(moved[runtime])
            os.makedirs(moved[runtime])

        # engramd that exits at once: ExecStartPost must give up, not wait for the timeout
        node = subprocess.Popen(start + ["--no-such-flag"], stdout=log, stderr=log)
        if node.wait(timeout=30) != 2:
            fail(f"engramd exited {node.returncode} on an unknown flag, not 2 (the unit's "
                 f"RestartPreventExitStatus)")
        began = time.monotonic()
        try:
            out = subprocess.run(post, env=dict(os.environ, MAINPID=str(node.pid)),
                                 capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            fail("ExecStartPost still waits 10 s after engramd exited")
        if out.returncode == 0:
            fail("ExecStartPost reported ready for an engramd that exited")
        log.close()
        print(f"systemd_test: verify clean; ready after {waited:.2f} s (engramd held back "
              f"{HOLD_S} s); a node that exits fails the start in "
              f"{time.monotonic() - began:.2f} s")


main()
