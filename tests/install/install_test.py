#!/usr/bin/env python3
"""`cmake --install` of the current build, used from outside as a program would use it (issue 8).

Usage: install_test.py --cmake CMAKE --build-dir DIR --cc CC --pkg-config PKG_CONFIG
           --bindir D --libdir D --includedir D --docdir D --soname NAME --version V
           --headers SOURCE_INCLUDE_ENGRAM [--cc-flag=FLAG ...]
           [--pythondir D --python-package SOURCE_ENGRAM [--python PYTHON]]

Installs the build into a fresh temporary prefix and then uses nothing but that prefix:
  - the tree holds bin/engramd, bin/engram, the library under its soname (libengram.so.MAJOR,
    which it carries) with the libengram.so link to it, every public header of the source tree
    and engram.pc; with --pythondir (the Python client is built), the engram package there,
    every module of the source's and its py.typed marker, and engram_proto with the module
    protoc generated;
  - pkg-config, with PKG_CONFIG_PATH the prefix's only, names the prefix and the version;
  - each installed header compiles alone, and the installed example compiles and links, with
    `CC $(pkg-config --cflags --libs engram)` and no other -I or -L (the --cc-flags are the
    build's warning and sanitizer flags, never paths);
  - the example needs libengram by its soname;
  - the installed engram CLI sets up a temporary data directory (engram init: its trust root and
    agent reader) and, once the installed engramd serves it on an ipc socket, agent hello (agent
    create, acl allow-user, acl allow); the example, with LD_LIBRARY_PATH the prefix's lib
    directory only, writes a value and reads it back; the installed engram CLI, with no
    LD_LIBRARY_PATH (its RPATH finds the library), reads the same value; with --python (an
    interpreter with python3-zmq and python3-protobuf), so does the installed Python package,
    with PYTHONPATH the prefix's python directory only and Memory() taking the agent, user,
    socket and home from ENGRAM_*. engramd must then exit 0 on SIGTERM.
Everything is removed afterwards.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from access import Admin  # noqa: E402  tests/cli: trust roots and agents for the tests' nodes


def parse_args():
    p = argparse.ArgumentParser()
    for name in ("cmake", "build-dir", "cc", "pkg-config", "bindir", "libdir", "includedir",
                 "docdir", "soname", "version", "headers"):
        p.add_argument("--" + name, required=True)
    p.add_argument("--cc-flag", action="append", default=[])
    for name in ("pythondir", "python-package", "python"):
        p.add_argument("--" + name)
    return p.parse_args()


ARGS = parse_args()


def fail(what):
    print(f"install_test: FAIL: {what}", file=sys.stderr)
    sys.exit(1)


def run(cmd, env=None, what=None):
    """Runs cmd and returns its stdout; fails the test with its output if it exits non-zero."""
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        fail(f"{what or cmd[0]}: exit {r.returncode}\n$ {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r.stdout


def dynamic_entries(path, tag):
    """The values of the ELF dynamic entries `tag` (NEEDED, SONAME) of path, from readelf."""
    readelf = shutil.which("readelf")
    if not readelf:
        fail("readelf (binutils) is needed to read sonames")
    out = run([readelf, "-d", path])
    return [line.split("[", 1)[1].split("]", 1)[0] for line in out.splitlines()
            if f"({tag})" in line]


def env_without(*names, **extra):
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(extra)
    return env


def check_tree(prefix):
    bindir, libdir = (os.path.join(prefix, d) for d in (ARGS.bindir, ARGS.libdir))
    for program in ("engramd", "engram"):
        if not os.access(os.path.join(bindir, program), os.X_OK):
            fail(f"{ARGS.bindir}/{program} is not installed")
    # A soname names the ABI: the library's major version only (libengram.so.0).
    if not re.fullmatch(r"libengram\.so\.[0-9]+", ARGS.soname):
        fail(f"the build gives libengram the soname {ARGS.soname!r}, not libengram.so.MAJOR")
    lib = os.path.join(libdir, ARGS.soname)
    if not os.path.isfile(lib):
        fail(f"{ARGS.libdir}/{ARGS.soname} is not installed")
    if dynamic_entries(lib, "SONAME") != [ARGS.soname]:
        fail(f"{lib} does not carry the soname {ARGS.soname}")
    dev_link = os.path.join(libdir, "libengram.so")
    if not os.path.islink(dev_link) or os.path.realpath(dev_link) != os.path.realpath(lib):
        fail(f"{ARGS.libdir}/libengram.so does not lead to {ARGS.soname}")
    include = os.path.join(prefix, ARGS.includedir, "engram")
    wanted = sorted(f for f in os.listdir(ARGS.headers) if f.endswith(".h"))
    got = sorted(f for f in os.listdir(include) if f.endswith(".h")) \
        if os.path.isdir(include) else []
    if got != wanted:
        fail(f"installed headers {got}, the source tree has {wanted}")
    if ARGS.pythondir:
        check_python_tree(os.path.join(prefix, ARGS.pythondir))
    return wanted


def check_python_tree(pythondir):
    """The Python client installed in pythondir: the source's modules and py.typed, and the
    generated engram_proto."""
    package = os.path.join(pythondir, "engram")
    wanted = sorted(f for f in os.listdir(ARGS.python_package) if f.endswith(".py"))
    got = sorted(os.listdir(package)) if os.path.isdir(package) else []
    if got != sorted(wanted + ["py.typed"]):
        fail(f"installed Python package {got}, the source tree has {wanted} and py.typed")
    for name in ("__init__.py", "api_pb2.py"):
        if not os.path.isfile(os.path.join(pythondir, "engram_proto", name)):
            fail(f"{ARGS.pythondir}/engram_proto/{name} is not installed")


def compile_against(prefix, headers, workdir):
    """Compiles every installed header alone and the installed example, with pkg-config only.
    Returns the example program's path."""
    pc_env = env_without("PKG_CONFIG_LIBDIR", "PKG_CONFIG_SYSROOT_DIR",
                         PKG_CONFIG_PATH=os.path.join(prefix, ARGS.libdir, "pkgconfig"))
    pkg = lambda *a: run([ARGS.pkg_config, *a, "engram"], env=pc_env, what="pkg-config").split()
    if pkg("--variable=prefix") != [prefix]:
        fail(f"engram.pc names prefix {pkg('--variable=prefix')}, installed into {prefix}")
    if pkg("--modversion") != [ARGS.version]:
        fail(f"engram.pc says version {pkg('--modversion')}, the build is {ARGS.version}")
    cflags, libs = pkg("--cflags"), pkg("--libs")
    print(f"pkg-config --cflags --libs engram: {' '.join(cflags + libs)}")
    for header in headers:
        source = os.path.join(workdir, f"{header}.c")
        with open(source, "w") as f:
            # Twice: its include guard works too.
            f.write(f"#include <engram/{header}>\n#include <engram/{header}>\n"
                    "int main(void) { return 0; }\n")
        run([ARGS.cc, *ARGS.cc_flag, "-fsyntax-only", *cflags, source],
            what=f"engram/{header} compiled alone")
    example = os.path.join(prefix, ARGS.docdir, "examples", "hello.c")
    program = os.path.join(workdir, "hello")
    run([ARGS.cc, *ARGS.cc_flag, example, "-o", program, *cflags, *libs],
        what="the installed example, with pkg-config's flags")
    needed = dynamic_entries(program, "NEEDED")
    if ARGS.soname not in needed:
        fail(f"the example needs {needed}, not {ARGS.soname}")
    return program


def run_against_node(prefix, program, workdir):
    bindir = os.path.join(prefix, ARGS.bindir)
    socket = f"ipc://{workdir}/engram.sock"
    # The installed programs find their libraries from the prefix alone. The installed CLI sets
    # the node up, the admin's key and the agents' key pairs in a temporary $ENGRAM_HOME: the
    # node's trust root with agent reader acting for alice (engram init), then agent hello
    # (the example's) for alice, writing run:hello, which reader reads.
    plain = env_without("LD_LIBRARY_PATH", "ENGRAM_SOCKET")
    admin = Admin(os.path.join(bindir, "engram"), os.path.join(workdir, "home"), env=plain)
    cli = lambda *a: admin.run(*a, socket=socket, agent="reader", user="alice", timeout=30)
    data = os.path.join(workdir, "data")
    try:
        admin.init(data, "reader", "alice")
    except RuntimeError as e:
        fail(f"the installed engram CLI: {e}")
    log_path = os.path.join(workdir, "engramd.log")
    with open(log_path, "wb") as log:
        node = subprocess.Popen([os.path.join(bindir, "engramd"), "--data", data,
                                 "--api", socket], stdout=log, stderr=log, env=plain)
    try:
        deadline = time.monotonic() + 60
        while (r := cli("stats")).returncode != 0:
            if node.poll() is not None or time.monotonic() > deadline:
                with open(log_path) as f:
                    fail(f"the installed engramd did not serve (engram stats: {r.stderr.strip()})"
                         f"\nengramd log:\n{f.read()}")
            time.sleep(0.1)
        try:
            admin.grant(socket, "reader", resources=[("run:hello", "read")], register=False)
            admin.grant(socket, "hello", users=["alice"], resources=[("run:hello", "read,write")])
        except RuntimeError as e:
            fail(f"the installed engram CLI: {e}")

        value = f"installed at {time.time():.6f}"
        lib_only = dict(admin.env(), LD_LIBRARY_PATH=os.path.join(prefix, ARGS.libdir))
        out = run([program, socket, value], env=lib_only, what="the example")
        print(f"hello: {out.strip()}")
        if out != f"run:hello/greeting: {value}\n":
            fail(f"the example printed {out!r}")
        r = cli("get", "run:hello", "greeting")
        if r.returncode != 0 or r.stdout != value + "\n":
            fail(f"the installed engram CLI read {r.stdout!r} (exit {r.returncode}): {r.stderr}")
        print(f"engram get run:hello greeting: {r.stdout.strip()}")
        if ARGS.python:
            read_with_python(prefix, admin.env(socket, "reader", "alice"), value)
        node.send_signal(signal.SIGTERM)
        if node.wait(timeout=30) != 0:
            with open(log_path) as f:
                fail(f"the installed engramd exited {node.returncode} on SIGTERM:\n{f.read()}")
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()


def read_with_python(prefix, env, value):
    """The installed Python package, found through PYTHONPATH alone, reads value as the agent,
    user, socket and home env names."""
    pythondir = os.path.join(prefix, ARGS.pythondir)
    env = dict(env, PYTHONPATH=pythondir, PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1")
    out = run([ARGS.python, "-P", "-c", "import engram; print(engram.__file__); "
               "print(engram.Memory().get('greeting', scope='run:hello').text)"],
              env=env, what="the installed Python package")
    if out != f"{os.path.join(pythondir, 'engram', '__init__.py')}\n{value}\n":
        fail(f"the installed Python package printed {out!r}")
    print(f"python: Memory().get('greeting', scope='run:hello'): {value}")


def main():
    workdir = tempfile.mkdtemp(prefix="engram-install-")
    try:
        prefix = os.path.join(workdir, "prefix")
        run([ARGS.cmake, "--install", ARGS.build_dir, "--prefix", prefix], what="cmake --install")
        for root, dirs, files in sorted(os.walk(prefix)):
            for name in sorted(files):
                path = os.path.join(root, name)
                link = f" -> {os.readlink(path)}" if os.path.islink(path) else ""
                print(f"installed: {os.path.relpath(path, prefix)}{link}")
        headers = check_tree(prefix)
        program = compile_against(prefix, headers, workdir)
        run_against_node(prefix, program, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("install_test: ok")


if __name__ == "__main__":
    main()
