#!/usr/bin/env python3
"""deploy/k8s/engram.yaml: the manifests read, and the DaemonSet's scripts run as processes.

Usage: k8s_test.py ENGRAMD ENGRAM SOURCE_DIR

No Kubernetes runs here. What is checked:

  - the documents parse (python3-yaml) and are a Namespace, the ConfigMap engram and the
    DaemonSet engramd, all in that namespace; the DaemonSet's selector matches its pods;
  - every container runs one image; the pod runs as the image's user (the uid and gid of the
    Containerfile's useradd), as non-root, but for the initContainer dirs, which gives the
    hostPath directories to that uid; the node runs on the host's network;
  - every engramd flag the scripts use is in `engramd --help`;
  - --gossip is the host's address (status.hostIP) at the port of the container's port gossip,
    which the Containerfile EXPOSEs with the next one; the probes ask /readyz and /healthz of
    the --metrics address;
  - the mounts are directories the image gives its user, the data and run volumes hostPaths,
    the cards an optional Secret, keyed by the node's name (spec.nodeName);
  - the initContainer admission and the container engramd, run as processes for two hosts
    (tests/deploy/hostsim.py: mounts and addresses moved; each host's 127.0.0.1 a loopback
    address of its own): each host's admission prints the identity line and waits; the admin
    admits the key it printed (engram node admit) into the Secret's directory, and admission
    exits 0; the engramd containers start, the seed's host starts the cluster, the other joins
    it, and each node holds the other alive; /readyz and /healthz of each node's --metrics
    listener answer 200; SIGTERM stops both with exit 0.
"""
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

import containerfile
import engramd_settings
import hostsim
from polling import eventually  # tests/cli's, on the path hostsim puts it

ENGRAMD, ENGRAM, SOURCE_DIR = map(os.path.abspath, sys.argv[1:4])
MANIFEST = os.path.join(SOURCE_DIR, "deploy", "k8s", "engram.yaml")
CONTAINERFILE = os.path.join(SOURCE_DIR, "deploy", "container", "Containerfile")


def fail(what):
    print(f"k8s_test: FAIL: {what}", file=sys.stderr)
    sys.exit(1)


def script(container):
    """The shell script of a container whose command is /bin/sh -ec SCRIPT."""
    command = container.get("command", [])
    if command[:2] != ["/bin/sh", "-ec"] or len(command) != 3:
        fail(f"{container['name']}: the command is not /bin/sh -ec SCRIPT: {command}")
    return command[2]


def field_env(container):
    """{name: the pod field or ConfigMap key it comes from} of a container's env."""
    found = {}
    for e in container.get("env", []):
        source = e.get("valueFrom", {})
        found[e["name"]] = (source.get("fieldRef", {}).get("fieldPath")
                            or "configmap:" + source.get("configMapKeyRef", {}).get("key", ""))
    return found


def check(flags):
    """Checks the manifests; returns (config map data, the DaemonSet's pod spec)."""
    docs = list(yaml.safe_load_all(open(MANIFEST, encoding="utf-8")))
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
    if kinds != [("Namespace", "engram"), ("ConfigMap", "engram"), ("DaemonSet", "engramd")]:
        fail(f"the documents are {kinds}")
    if any(d["metadata"].get("namespace") != "engram" for d in docs[1:]):
        fail("not every object is in the namespace engram")
    daemonset = docs[2]["spec"]
    labels = daemonset["template"]["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in daemonset["selector"]["matchLabels"].items()):
        fail("the DaemonSet's selector does not match its pods")
    pod = daemonset["template"]["spec"]
    if not pod.get("hostNetwork"):
        fail("the pod is not on the host's network: --gossip would not be the host's address")

    instructions = containerfile.read(CONTAINERFILE)
    useradd = next(i.args for i in instructions if i.stage == 1 and "useradd" in i.args)
    uid = re.search(r"useradd [^&]*--uid (\d+)", useradd).group(1)
    gid = re.search(r"groupadd [^&]*--gid (\d+)", useradd).group(1)
    owned = {p for i in instructions if i.stage == 1 and i.name == "RUN"
             for m in re.finditer(r"install -d -o engram -g engram -m \S+ ([^&]*)", i.args)
             for p in m.group(1).split()}
    exposed = {int(p) for i in instructions if i.stage == 1 and i.name == "EXPOSE"
               for p in i.args.split()}
    security = pod["securityContext"]
    if (str(security.get("runAsUser")), str(security.get("runAsGroup"))) != (uid, gid) or \
            not security.get("runAsNonRoot"):
        fail(f"the pod does not run as the image's user {uid}:{gid}, non-root: {security}")

    containers = pod["initContainers"] + pod["containers"]
    if len({c["image"] for c in containers}) != 1:
        fail("the containers run different images")
    volumes = {v["name"]: v for v in pod["volumes"]}
    for c in containers:
        as_root = c.get("securityContext", {}).get("runAsUser") == 0
        if as_root != (c["name"] == "dirs"):
            fail(f"{c['name']} runs as root" if as_root else "dirs does not run as root")
        for mount in c["volumeMounts"]:
            volume = volumes[mount["name"]]
            if "hostPath" in volume:
                if mount["mountPath"] not in owned or \
                        volume["hostPath"].get("type") != "DirectoryOrCreate":
                    fail(f"{c['name']} mounts the hostPath {mount['name']} on "
                         f"{mount['mountPath']}, which the image does not make for its user")
            elif volume.get("secret", {}).get("optional") is not True:
                fail(f"the volume {mount['name']} is not an optional Secret: a node could not "
                     f"print its identity before it is admitted")
    dirs = script(next(c for c in containers if c["name"] == "dirs"))
    if f"chown {uid}:{gid} /var/lib/engram /run/engram" not in dirs:
        fail(f"dirs does not give the hostPaths to {uid}:{gid}")

    for c in containers:
        for line in re.findall(r"\bengramd\b[^\n;&|>]*(?:\\\n[^\n;&|>]*)*", script(c)):
            for flag in re.findall(r"(?<!\S)--[a-z][a-z-]*", line):
                if flag not in flags:
                    fail(f"{c['name']} runs engramd {flag}, which `engramd --help` does not list")

    node = pod["containers"][0]
    text = script(node)
    env = field_env(node)
    if env.get("HOST_IP") != "status.hostIP" or env.get("ENGRAM_SEED") != "configmap:ENGRAM_SEED":
        fail(f"engramd's env is not the host's address and the ConfigMap's seed: {env}")
    if field_env(pod["initContainers"][1]).get("NODE_NAME") != "spec.nodeName":
        fail("admission does not know its node's name")
    ports = {p["name"]: p["containerPort"] for p in node["ports"]}
    if f'gossip="tcp://$HOST_IP:{ports["gossip"]}"' not in text or \
            {ports["gossip"], ports["gossip"] + 1} != exposed or \
            ports["introductions"] != ports["gossip"] + 1:
        fail(f"engramd does not gossip on the host's address at the port {ports} the image "
             f"EXPOSEs ({sorted(exposed)})")
    metrics = re.search(r"--metrics (\S+):(\d+)", text)
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = node[probe]["httpGet"]
        if not metrics or (get["host"], str(get["port"]), get["path"]) != \
                (metrics.group(1), metrics.group(2), path):
            fail(f"the {probe} asks {get}, not {path} of the --metrics listener")
    return docs[1]["data"], pod


def http_status(url):
    try:
        return urllib.request.urlopen(url, timeout=2).status
    except OSError:
        return None


def main():
    settings = engramd_settings.read(ENGRAMD, os.path.join(SOURCE_DIR, "node", "daemon",
                                                           "config.c"))
    flags = {s.flag for s in settings}
    data, pod = check(flags)
    admission = pod["initContainers"][1]
    node = pod["containers"][0]
    seed = data["ENGRAM_SEED"]
    m = re.fullmatch(r"tcp://((\d+\.\d+\.\d+\.)\d+):(\d+)", seed)
    if not m:
        fail(f"ENGRAM_SEED {seed} is not tcp://IPV4:PORT")

    with tempfile.TemporaryDirectory(prefix="engram-k8s-") as tmp:
        host = hostsim.Host(tmp, ENGRAMD, ENGRAM, m.group(2))
        home = os.path.join(tmp, "admin")
        out = subprocess.run([ENGRAM, "cluster", "init"], env=dict(os.environ, ENGRAM_HOME=home),
                             capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            fail(f"engram cluster init: {out.stderr}")
        cards = os.path.join(tmp, "cards")  # the Secret engram-cards, as mounted
        os.makedirs(cards)
        # the seed's host, and another host of its network
        other = m.group(2) + ("3" if m.group(1) == m.group(2) + "2" else "2")
        hosts = {"h1": m.group(1), "h2": other}
        moves, env = {}, {}
        for name, address in hosts.items():
            moves[name] = {"/var/lib/engram": os.path.join(tmp, name, "data"),
                           "/run/engram": os.path.join(tmp, name, "run"),
                           "/etc/engram/cards": cards,
                           "127.0.0.1": host.address(address)}
            for d in ("data", "run"):
                os.makedirs(os.path.join(tmp, name, d))
            env[name] = {"NODE_NAME": name, "HOST_IP": address, "ENGRAM_SEED": seed}
        log = os.path.join(tmp, "pods.log")
        text = script(node)
        try:
            inits = {}
            for name in hosts:
                logged = os.path.join(tmp, f"{name}.admission")
                inits[name] = (host.start(["/bin/sh", "-ec", script(admission)], env[name],
                                          moves[name], logged), logged)
            for name, (init, logged) in inits.items():
                line = eventually(
                    lambda: re.search(r"^node=\S+ key=([0-9a-f]{64}) api=", open(logged).read(),
                                      re.M), f"{name}: admission printing the identity")
                time.sleep(0.5)
                if init.poll() is not None:
                    fail(f"{name}: admission exited {init.returncode} before it had a card")
                out = subprocess.run([ENGRAM, "node", "admit", line.group(1), "--out",
                                      os.path.join(cards, name)],
                                     env=dict(os.environ, ENGRAM_HOME=home), capture_output=True,
                                     text=True, timeout=30)
                if out.returncode != 0:
                    fail(f"engram node admit: {out.stderr}")
            for name, (init, logged) in inits.items():
                try:
                    init.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    fail(f"{name}: admission still waits 30 s after its card was made")
                if init.returncode != 0:
                    fail(f"{name}: admission exited {init.returncode}:\n{open(logged).read()}")
            for name in hosts:
                host.start(["/bin/sh", "-ec", text], env[name], moves[name], log)
            for name, address in hosts.items():
                socket = f"ipc://{moves[name]['/run/engram']}/api.sock"
                others = {host.address(f"tcp://{a}:7101") for n, a in hosts.items() if n != name}
                eventually(lambda: hostsim.peers_alive(ENGRAM, socket, home, others),
                                 f"{name} holding the other node alive")
                for path in ("/readyz", "/healthz"):
                    url = f"http://{moves[name]['127.0.0.1']}:9464{path}"
                    eventually(lambda: http_status(url) == 200, f"{url} answering 200")
            codes = host.stop_all()
            if any(codes):
                fail(f"exit codes {codes} on SIGTERM:\n{open(log).read()[-3000:]}")
        except AssertionError as e:
            fail(f"{e}\n{open(log).read()[-3000:] if os.path.exists(log) else ''}")
        finally:
            host.stop_all()
    print("k8s_test: the manifests are coherent; two hosts' pods, run as processes, were "
          "admitted and formed a cluster")


main()
