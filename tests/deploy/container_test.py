#!/usr/bin/env python3
"""deploy/container/: the Containerfile against the build, and compose.yaml run as processes.

Usage: container_test.py ENGRAMD ENGRAM CMAKE BUILD_DIR SOURCE_DIR ALLOCATOR

No image is built and no container runs here (no registry to pull debian:bookworm-slim from,
and podman cannot start containers on the machines the suite runs on). What is checked:

Containerfile
  - two stages, both FROM debian:bookworm-slim (Debian 12), the first named build;
  - the build stage installs every package CMake's configure step requires (each REQUIRED
    pkg_check_modules, find_program, find_library and find_package of the tree but bench/, which
    the image leaves out), and only packages deploy/install-deps.sh installs, so CI builds with
    them;
  - the runtime stage installs exactly the Debian packages of the libraries engramd and engram
    are linked against (readelf's NEEDED, found with ldd and dpkg -S; libc6 and what it
    depends on, which every Debian image has, a sanitized build's runtimes, and libengram,
    copied from the build stage, aside; mimalloc, which the image's Release build links,
    even when this build does not: a sanitized one);
  - each COPY --from=build names files that `cmake --install` of this build puts there (run
    here with DESTDIR and the prefix of the build stage's configure line);
  - the ENTRYPOINT is engramd where the runtime stage put it, the USER is not root, the data
    directory is a VOLUME, the ports EXPOSEd are the gossip port compose.yaml uses and the next
    one (introductions).
compose.yaml
  - every `$` is escaped (`$$`), so nothing comes from the environment of whoever runs compose;
  - every service runs the image the admin service builds, from the repository root with this
    Containerfile; three nodes, each at a fixed address of the network's subnet, gossiping on
    it at the EXPOSEd port, n2 and n3 joining through another node's gossip endpoint; every
    volume is mounted on a directory the image makes and gives to engram;
  - the services' own scripts, run as processes (tests/deploy/hostsim.py: mounts and addresses
    moved, nothing else): the admin service and the three nodes start together; the admin
    service exits 0, every node's healthcheck passes, and every node holds the other two alive
    at their gossip endpoints. Then all stop (exit 0 on SIGTERM; no healthcheck passes then)
    and start again, as a second `compose up` does: the admin service leaves the cluster as it
    was, the nodes start from their cards and form the same cluster.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

import containerfile
import engramd_settings
import hostsim
from polling import eventually  # tests/cli's, on the path hostsim puts it

ENGRAMD, ENGRAM, CMAKE, BUILD_DIR, SOURCE_DIR = map(os.path.abspath, sys.argv[1:6])
ALLOCATOR = sys.argv[6]  # CMake's ENGRAM_ALLOCATOR: what this build's engramd is linked with
HERE = os.path.join(SOURCE_DIR, "deploy", "container")
CONTAINERFILE = os.path.join(HERE, "Containerfile")
COMPOSE = os.path.join(HERE, "compose.yaml")
IMAGE_BASE = "debian:bookworm-slim"


def fail(what):
    print(f"container_test: FAIL: {what}", file=sys.stderr)
    sys.exit(1)


def owner(path):
    """The Debian package that holds path (or the file it links to), or None."""
    for p in (os.path.normpath(path), os.path.realpath(path)):
        out = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":")[0]
    return None


def install_deps_packages():
    """The packages of deploy/install-deps.sh's packages=(...) list."""
    text = open(os.path.join(SOURCE_DIR, "deploy", "install-deps.sh"), encoding="utf-8").read()
    body = text[text.index("packages=(") + len("packages=("):]
    body = body[:body.index(")")]
    return set(re.sub(r"#.*", "", body).split())


def configure_requirements():
    """{what CMake requires: the package that provides it here} for the tree but bench/."""
    required = {"compiler": "build-essential", "cmake": "cmake"}
    # find_package's modules that are programs: the package of the program
    modules = {"Python3": "python3", "PkgConfig": "pkg-config"}
    for path in glob.glob(os.path.join(SOURCE_DIR, "**", "CMakeLists.txt"), recursive=True) + \
            glob.glob(os.path.join(SOURCE_DIR, "cmake", "*.cmake")):
        relative = os.path.relpath(path, SOURCE_DIR)
        if relative.startswith(("bench", "build")) or relative.split(os.sep)[0].startswith("."):
            continue
        text = re.sub(r"#.*", "", open(path, encoding="utf-8").read())
        for call, args in re.findall(r"\b(pkg_check_modules|find_program|find_library|"
                                     r"find_package)\s*\(([^)]*)\)", text):
            words = args.split()
            if "REQUIRED" not in words:
                continue
            if call == "pkg_check_modules":
                for module in words[1:]:
                    if module in ("REQUIRED", "IMPORTED_TARGET", "QUIET"):
                        continue
                    pc = subprocess.run(["pkg-config", "--path", module], capture_output=True,
                                        text=True).stdout.strip()
                    required[f"pkg-config {module}"] = owner(pc) if pc else None
            elif call == "find_program":
                found = shutil.which(words[1])
                required[f"program {words[1]}"] = owner(found) if found else None
            elif call == "find_library":
                lib = subprocess.run(["cc", f"-print-file-name=lib{words[1]}.so"],
                                     capture_output=True, text=True).stdout.strip()
                required[f"library {words[1]}"] = owner(lib) if os.path.isabs(lib) else None
            elif words[0] != "Threads":  # Threads: the C library's
                required[f"package {words[0]}"] = modules.get(words[0])
    return required


def runtime_requirements():
    """The packages of the libraries engramd and engram need, but libengram, a sanitizer's
    runtime and what every Debian image has (libc6 and its dependencies)."""
    wanted = set()
    for program in (ENGRAMD, ENGRAM):
        dynamic = subprocess.run(["readelf", "-d", program], capture_output=True, text=True,
                                 check=True).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", dynamic)
        paths = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(
            ["ldd", program], capture_output=True, text=True, check=True).stdout, re.M))
        for lib in needed:
            # libengram comes from the build stage; a sanitizer's runtime only from a
            # sanitized build (deploy/test.sh --sanitize), never from the image's Release one
            if lib.startswith("libengram.") or re.match(r"lib(asan|ubsan|tsan|lsan)\.", lib):
                continue
            package = owner(paths[lib])
            if not package:
                fail(f"{program} needs {lib} ({paths[lib]}), which no Debian package holds")
            wanted.add(package)
        libc = owner(paths["libc.so.6"])
    # every Debian image holds libc6 and what it depends on (libgcc-s1, which a clang build
    # links for its unwinder): the runtime stage installs none of them
    depends = subprocess.run(["dpkg-query", "-W", "-f=${Depends}", libc], capture_output=True,
                             text=True, check=True).stdout
    base = {libc} | {d.split()[0] for d in depends.split(",") if d.strip()}
    if ALLOCATOR != "mimalloc":  # a sanitized or fuzz build: the image's links mimalloc
        dev = subprocess.run(["cc", "-print-file-name=libmimalloc.so"], capture_output=True,
                             text=True).stdout.strip()
        runtime = owner(os.path.realpath(dev)) if os.path.isabs(dev) else None
        if not runtime:
            fail("no Debian package here holds libmimalloc (deploy/install-deps.sh installs it)")
        wanted.add(runtime)
    return wanted - base


def check_containerfile(tmp):
    """Checks the Containerfile; returns (its instructions, the directories its runtime stage
    makes for engram, the ports it EXPOSEs)."""
    instructions = containerfile.read(CONTAINERFILE)
    froms = [i.args for i in instructions if i.name == "FROM"]
    if froms != [f"{IMAGE_BASE} AS build", IMAGE_BASE]:
        fail(f"the stages are FROM {froms}, not a build stage and a runtime stage, both "
             f"{IMAGE_BASE}")

    build = containerfile.packages(instructions, 0)
    ci = install_deps_packages()
    if set(build) - ci:
        fail(f"the build stage installs {sorted(set(build) - ci)}, which deploy/install-deps.sh "
             f"does not: CI never built with them")
    for what, package in configure_requirements().items():
        if package not in build:
            fail(f"CMake requires {what} ({package or 'no package found here'}), the build "
                 f"stage does not install it")

    runtime = set(containerfile.packages(instructions, 1))
    wanted = runtime_requirements()
    if runtime != wanted:
        fail(f"the runtime stage installs {sorted(runtime)}; engramd and engram are linked "
             f"against {sorted(wanted)}")

    configure = next((i.args for i in instructions if i.stage == 0 and i.name == "RUN"
                      and "cmake -S" in i.args), "")
    prefix = re.search(r"-DCMAKE_INSTALL_PREFIX=(\S+)", configure)
    libdir = re.search(r"-DCMAKE_INSTALL_LIBDIR=(\S+)", configure)
    destdir = re.search(r"DESTDIR=(\S+) cmake --install", configure)
    if not (prefix and libdir and destdir and "-DCMAKE_BUILD_TYPE=Release" in configure):
        fail(f"the build stage's cmake line lacks a Release build type, the install prefix, "
             f"libdir or DESTDIR: {configure}")
    # this build's install, as the build stage's: same prefix, its libdir named as there
    staging = os.path.join(tmp, "staging")
    out = subprocess.run([CMAKE, "--install", BUILD_DIR, "--prefix", prefix.group(1)],
                         env=dict(os.environ, DESTDIR=staging), capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"cmake --install: {out.stderr}")
    cache = open(os.path.join(BUILD_DIR, "CMakeCache.txt"), encoding="utf-8").read()
    built_libdir = re.search(r"^CMAKE_INSTALL_LIBDIR:PATH=(.*)$", cache, re.M).group(1)
    copied = set()
    for i in instructions:
        if i.stage != 1 or i.name != "COPY":
            continue
        words = i.args.split()
        if words[0] != "--from=build":
            fail(f"COPY {i.args}: the runtime stage copies only from the build stage")
        *sources, target = words[1:]
        for source in sources:
            if not source.startswith(destdir.group(1) + "/"):
                fail(f"COPY {source}: not from the build stage's DESTDIR {destdir.group(1)}")
            here = staging + source[len(destdir.group(1)):].replace(
                f"{prefix.group(1)}/{libdir.group(1)}/", f"{prefix.group(1)}/{built_libdir}/")
            matches = glob.glob(here)
            if not matches:
                fail(f"COPY {source}: cmake --install puts nothing there")
            copied |= {os.path.join(target, os.path.basename(m)) for m in matches}
    entrypoint = containerfile.exec_form(
        [i for i in instructions if i.stage == 1 and i.name == "ENTRYPOINT"][-1])
    if entrypoint[0] not in copied or os.path.basename(entrypoint[0]) != "engramd":
        fail(f"ENTRYPOINT {entrypoint}: not the engramd the runtime stage copied ({copied})")
    user = [i.args for i in instructions if i.stage == 1 and i.name == "USER"]
    if not user or user[-1].split(":")[0] in ("root", "0"):
        fail(f"the runtime stage runs as USER {user}: root")
    volumes = [i.args for i in instructions if i.stage == 1 and i.name == "VOLUME"]
    if "/var/lib/engram" not in " ".join(volumes).split():
        fail(f"/var/lib/engram is not a VOLUME: {volumes}")
    owned = set()
    for i in instructions:
        if i.stage == 1 and i.name == "RUN":
            for command in i.args.split("&&"):
                m = re.match(r"\s*install -d -o (\S+) -g \S+ -m \S+ (.*)", command)
                if m and m.group(1) == user[-1].split(":")[0]:
                    owned |= set(m.group(2).split())
    ports = {int(p) for i in instructions if i.stage == 1 and i.name == "EXPOSE"
             for p in i.args.split()}
    return owned, ports


def strings(value):
    """Every string of a parsed YAML document."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def check_compose(owned, ports):
    """Checks compose.yaml; returns it, its admin service and its nodes ({name: service})."""
    compose = yaml.safe_load(open(COMPOSE, encoding="utf-8"))
    for value in strings(compose):
        if "$" in value.replace("$$", ""):
            fail(f"compose.yaml has a `$` that is not `$$`, which compose would fill in from "
                 f"the environment it runs in: {value!r}")
    services = compose["services"]
    builders = [s for s in services.values() if "build" in s]
    if len(builders) != 1:
        fail(f"{len(builders)} services build the image, not one")
    image = builders[0]["image"]
    context = os.path.normpath(os.path.join(HERE, builders[0]["build"]["context"]))
    if context != SOURCE_DIR or os.path.normpath(os.path.join(
            context, builders[0]["build"]["dockerfile"])) != CONTAINERFILE:
        fail(f"the image is not built from the repository root with {CONTAINERFILE}")
    admin = builders[0]
    nodes = {name: s for name, s in services.items() if "ENGRAM_NODE" in s.get("environment", {})}
    if len(nodes) != 3 or len(services) != 4:
        fail(f"services {sorted(services)}: not an admin service and three nodes")
    subnet = compose["networks"]["engram"]["ipam"]["config"][0]["subnet"]
    if not subnet.endswith(".0/24"):
        fail(f"the subnet {subnet} is not a /24")
    prefix = subnet[:-len("0/24")]
    gossip = {}
    for name, s in services.items():
        if s.get("image") != image:
            fail(f"{name} runs {s.get('image')}, not the image {image}")
        for volume in s.get("volumes", []):
            mount = volume.split(":")[1]
            if mount not in owned:
                fail(f"{name} mounts {volume}: the image does not make {mount} for its user, "
                     f"so a new volume there would not be writable")
    for name, s in nodes.items():
        address = s["networks"]["engram"]["ipv4_address"]
        if not address.startswith(prefix):
            fail(f"{name}'s address {address} is not in {subnet}")
        env = s["environment"]
        if env["ENGRAM_NODE"] != name:
            fail(f"{name} calls itself {env['ENGRAM_NODE']}")
        m = re.fullmatch(r"tcp://([\d.]+):(\d+)", env["ENGRAM_GOSSIP"])
        if not m or m.group(1) != address or {int(m.group(2)), int(m.group(2)) + 1} != ports:
            fail(f"{name} gossips on {env['ENGRAM_GOSSIP']}: not its address {address} at the "
                 f"EXPOSEd port of the pair {sorted(ports)}")
        gossip[name] = env["ENGRAM_GOSSIP"]
    joiners = [n for n in nodes if "ENGRAM_JOIN" in nodes[n]["environment"]]
    if len(joiners) != 2:
        fail(f"{joiners} join: not all nodes but the first")
    for name in joiners:
        if nodes[name]["environment"]["ENGRAM_JOIN"] not in set(gossip.values()) - {gossip[name]}:
            fail(f"{name} joins through {nodes[name]['environment']['ENGRAM_JOIN']}, not another "
                 f"node's gossip endpoint")
    flags = {s.flag for s in engramd_settings.read(ENGRAMD, os.path.join(
        SOURCE_DIR, "node", "daemon", "config.c"))}
    for name, s in services.items():
        script = " ".join(s["command"]).replace("\\\n", " ")
        for line in re.findall(r"\bengramd\b[^\n;&|>]*", script):
            for flag in re.findall(r"(?<!\S)--[a-z][a-z-]*", line):
                if flag not in flags:
                    fail(f"{name} runs engramd {flag}, which `engramd --help` does not list")
    return compose, admin, nodes, prefix


def healthy(host, node, moves):
    """Whether the node's healthcheck passes."""
    test = [hostsim.unescape_compose(a) for a in node["healthcheck"]["test"]]
    if test[0] != "CMD":
        fail(f"a healthcheck is not in CMD form: {test}")
    return host.run(test[1:], node["environment"], moves).returncode == 0


def up(host, compose, admin, nodes, moves, log):
    """Starts the admin service and the nodes as `compose up` would; returns the admin
    process."""
    def argv(s):
        return [hostsim.unescape_compose(a) for a in s["entrypoint"] + s["command"]]

    started = host.start(argv(admin), admin.get("environment"), moves["admin"], log)
    for name, s in nodes.items():
        host.start(argv(s), s["environment"], moves[name], log)
    return started


def main():
    with tempfile.TemporaryDirectory(prefix="engram-compose-") as tmp:
        owned, ports = check_containerfile(tmp)
        compose, admin, nodes, prefix = check_compose(owned, ports)

        host = hostsim.Host(tmp, ENGRAMD, ENGRAM, prefix)
        for volume in compose["volumes"]:
            os.makedirs(os.path.join(tmp, "volumes", volume))
        moves = {name: {v.split(":")[1]: os.path.join(tmp, "volumes", v.split(":")[0])
                        for v in s["volumes"]}
                 for name, s in compose["services"].items()}
        log = os.path.join(tmp, "compose.log")
        home = moves["admin"][admin["environment"]["ENGRAM_HOME"]]
        try:
            for run in ("first up", "second up"):
                cluster = os.path.join(home, "cluster")
                before = open(cluster).read() if os.path.exists(cluster) else None
                started = up(host, compose, admin, nodes, moves, log)
                if started.wait(timeout=30) != 0:
                    fail(f"{run}: the admin service exited {started.returncode}:\n"
                         f"{open(log).read()[-3000:]}")
                if before is not None and open(cluster).read() != before:
                    fail(f"{run}: the admin service made a new cluster")
                for name, s in nodes.items():
                    eventually(lambda: healthy(host, s, moves[name]),
                                     f"{run}: {name}'s healthcheck")
                for name, s in nodes.items():
                    others = {host.address(nodes[n]["environment"]["ENGRAM_GOSSIP"])
                              for n in nodes if n != name}
                    socket = host.move(f"ipc:///run/engram/{name}.sock", moves[name])
                    eventually(lambda: hostsim.peers_alive(ENGRAM, socket, home, others),
                                     f"{run}: {name} holding the other nodes alive")
                codes = host.stop_all()
                if any(codes):
                    fail(f"{run}: exit codes {codes} on SIGTERM:\n{open(log).read()[-3000:]}")
                for name, s in nodes.items():
                    if healthy(host, s, moves[name]):
                        fail(f"{run}: {name}'s healthcheck passes with the node stopped")
        except AssertionError as e:
            fail(f"{e}\n{open(log).read()[-3000:]}")
        finally:
            host.stop_all()
    print("container_test: the Containerfile matches the build; compose's cluster formed "
          "twice, run as processes")


main()
