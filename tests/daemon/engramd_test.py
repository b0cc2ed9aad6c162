#!/usr/bin/env python3
"""engramd's front door (issue 8) as a newcomer meets it.

Usage: engramd_test.py ENGRAMD ENGRAM DAEMON_SOURCE_DIR ALLOCATOR (mimalloc or libc). Checks
that --help lists every flag the parser knows (read from both sides), that a misspelled flag,
config key or section is refused naming the nearest valid one before anything is written, and
that a second engramd refuses to start on a live node's API socket or data directory while the
first keeps serving; a socket file that nobody listens on any more is taken over; that a node
without a trust root refuses to start, naming `engram init`; and that engramd's mallocs are
mimalloc's when built with it. The nodes that serve are set up by `engram init`
(tests/cli/access.py).
"""
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from access import Admin  # noqa: E402  tests/cli: trust roots and agents for the tests' nodes

ENGRAMD, ENGRAM, SOURCES, ALLOCATOR = sys.argv[1:5]
TIMEOUT = 60  # the machines that run the tests are shared and slow


def engramd(*args):
    return subprocess.run([ENGRAMD, *args], capture_output=True, text=True, timeout=TIMEOUT)


def snapshot(top):
    """Every file under top with its size and modification time."""
    found = {}
    for parent, _, files in os.walk(top):
        for name in files:
            st = os.stat(os.path.join(parent, name))
            found[os.path.join(parent, name)] = (st.st_size, st.st_mtime_ns)
    return found


class Node:
    """An engramd serving on data and endpoint, started and answering; data set up by `engram
    init` for agent tester acting for alice, with admin's home."""

    def __init__(self, admin, data, endpoint, log, flags=()):
        self.admin = admin
        self.endpoint = endpoint
        admin.init(data, "tester", "alice")
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([ENGRAMD, "--data", data, "--api", endpoint, *flags],
                                         stdout=out, stderr=out)
        deadline = time.monotonic() + TIMEOUT
        while self.stats().returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"engramd did not start; see {log}")
            time.sleep(0.05)

    def stats(self):
        return self.admin.run("stats", socket=self.endpoint, agent="tester", user="alice",
                              timeout=TIMEOUT)

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class DaemonTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="engram-daemon-")
        self.nodes = []

    def tearDown(self):
        for node in self.nodes:
            node.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def node(self, data, endpoint, flags=()):
        node = Node(Admin(ENGRAM, self.path("home")), self.path(data), endpoint,
                    self.path(data + ".log"), flags)
        self.nodes.append(node)
        return node

    def config(self, text):
        """A config file of text and, should it be read as valid, an API socket of the test's own
        (a refusal that regressed would otherwise serve on the default socket)."""
        path = self.path("engramd.cfg")
        with open(path, "w") as out:
            out.write(f'engram\n    api = "ipc://{self.path("cfg.sock")}"\n')
            out.write(text[len("engram\n"):] if text.startswith("engram\n") else text)
        return path

    def refused(self, status, *args):
        """Runs engramd, expects it to exit with status, and returns its stderr."""
        r = engramd(*args)
        self.assertEqual(r.returncode, status, f"engramd {' '.join(args)}: {r.stdout}{r.stderr}")
        return r.stderr

    # --- --help ------------------------------------------------------------------------

    def test_help_lists_every_flag_the_parser_knows(self):
        r = engramd("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        self.assertEqual(engramd("-h").stdout, r.stdout)
        lines = {}
        for line in r.stdout.splitlines():
            m = re.match(r"^  (?:(-\w), )?(--[a-z][a-z-]*)(?: (\S+))?\s+(\S.*)$", line)
            if m:
                lines[m.group(2)] = m
        # Every flag the daemon's sources name, as a string of its own, is listed.
        named = set()
        for source in glob.glob(os.path.join(SOURCES, "*.c")):
            with open(source) as text:
                named |= set(re.findall(r'"(--?[a-z][a-z-]*)"', text.read()))
        listed = set(lines) | {m.group(1) for m in lines.values() if m.group(1)}
        self.assertEqual(listed, named)
        for flag in ("--help", "--identity", "--config", "--data", "--api", "--gossip"):
            self.assertIn(flag, lines)
        # And the parser knows every flag listed: alone, each is refused for what it lacks,
        # never as unknown; each setting is a config key as well, and has a default.
        for flag, m in lines.items():
            if flag in ("--help", "--version"):  # they print and exit
                continue
            err = self.refused(2, flag)
            self.assertNotIn("unknown", err)
            self.assertIn("--help", err)
            # a switch, the file itself, or a flag for one start only (--restore)
            if m.group(3) is None or flag in ("--config", "--restore"):
                err = self.refused(2, "--config", self.config(f"engram\n    {flag[2:]} = 1\n"))
                self.assertIn(f"unknown key 'engram/{flag[2:]}'", err)
                continue
            self.assertRegex(m.group(4), r"\((default: .+|required)\)$")
            key = "engram/" + flag[2:].replace("-", "_")
            err = self.refused(2, "--config", self.config(f"engram\n    {key[7:]} = \"\"\n"))
            self.assertIn(key, err)
            self.assertNotIn("unknown", err)

    def test_version(self):
        """engramd --version and engram --version print the version CMake builds and the schema
        of include/engram/limits.h, and exit 0 (anything else on the line is not looked at)."""
        root = os.path.join(SOURCES, "..", "..")
        with open(os.path.join(root, "CMakeLists.txt")) as f:
            version = re.search(r"project\(engram VERSION (\S+)", f.read()).group(1)
        with open(os.path.join(root, "include", "engram", "limits.h")) as f:
            limits = f.read()
        schema = ".".join(re.search(rf"#define ENGRAM_SCHEMA_{part} (\d+)", limits).group(1)
                          for part in ("MAJOR", "MINOR"))
        for program, name in ((ENGRAMD, "engramd"), (ENGRAM, "engram")):
            r = subprocess.run([program, "--version"], capture_output=True, text=True,
                               timeout=TIMEOUT)
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = r.stdout.splitlines()
            self.assertEqual(lines[0], f"{name} {version}")
            self.assertTrue(lines[1].startswith(f"schema {schema} "), lines[1])

    def test_allocator(self):
        """engramd allocates with mimalloc unless built with a sanitizer (ALLOCATOR, from
        CMake's ENGRAM_ALLOCATOR); the engram tool keeps glibc's. Asked by MIMALLOC_SHOW_STATS
        to, mimalloc prints its heap's statistics as the process exits, with the pages the
        mallocs it served touched."""
        env = dict(os.environ, MIMALLOC_SHOW_STATS="1")
        for program, allocator in ((ENGRAMD, ALLOCATOR), (ENGRAM, "libc")):
            r = subprocess.run([program, "--version"], capture_output=True, text=True, env=env,
                               timeout=TIMEOUT)
            self.assertEqual(r.returncode, 0, r.stderr)
            touched = re.search(r"^ *touched: +(\S+) ", r.stderr, re.M)
            with self.subTest(program=program, allocator=allocator):
                self.assertEqual(bool(touched), allocator == "mimalloc", r.stderr)
                if touched:
                    self.assertNotEqual(touched.group(1), "0")

    def test_unknown_flag_names_the_nearest(self):
        err = self.refused(2, "--dat", self.path("data"))
        self.assertEqual(err.splitlines()[0],
                         "engramd: unknown option '--dat' (did you mean '--data'?)")
        self.assertIn("engramd --help", err.splitlines()[1])
        err = self.refused(2, "--data", self.path("data"), "--gosip", "tcp://127.0.0.1:1")
        self.assertIn("(did you mean '--gossip'?)", err)
        err = self.refused(2, "--data", self.path("data"), "--frobnicate")
        self.assertEqual(err.splitlines()[0], "engramd: unknown option '--frobnicate'")
        self.assertFalse(os.path.exists(self.path("data")))

    # --- the config file ---------------------------------------------------------------

    def test_misspelled_config_key_is_refused(self):
        data = self.path("data")
        cfg = self.config(f'engram\n    data = "{data}"\n    durabilty = "async"\n')
        expected = (f"engramd: config {cfg}: unknown key 'engram/durabilty' "
                    "(did you mean 'engram/durability'?)")
        err = self.refused(2, "--config", cfg)
        self.assertEqual(err.splitlines()[0], expected)
        self.assertIn("engramd --help", err)
        self.assertFalse(os.path.exists(data), "nothing is created")
        # An existing data directory is not touched either.
        self.assertEqual(engramd("--data", data, "--identity").returncode, 0)
        before = snapshot(data)
        self.assertEqual(self.refused(2, "--config", cfg).splitlines()[0], expected)
        self.assertEqual(snapshot(data), before)

    def test_unknown_sections_and_bad_values_are_refused(self):
        data = self.path("data")
        cfg = self.config(f'engarm\n    data = "{data}"\n')
        self.assertIn(f"config {cfg}: unknown section 'engarm' (did you mean 'engram'?)",
                      self.refused(2, "--config", cfg))
        cfg = self.config(f'durability = "async"\nengram\n    data = "{data}"\n')
        self.assertIn("unknown section 'durability' (did you mean 'engram/durability'?)",
                      self.refused(2, "--config", cfg))
        cfg = self.config(f'engram\n    data = "{data}"\n    durability = "maybe"\n')
        self.assertIn(f"config {cfg}: engram/durability must be sync or async, not 'maybe'",
                      self.refused(2, "--config", cfg))
        # a number out of its range; 0 only where it turns the setting off
        self.assertIn("--max-batch must be a number from 1 to 65536, not '0'",
                      self.refused(2, "--data", data, "--max-batch", "0"))
        self.assertIn("--gossip-hold-ms must be a number from 0 to 50, not '51'",
                      self.refused(2, "--data", data, "--gossip-hold-ms", "51"))
        self.assertEqual(engramd("--data", data, "--gossip-hold-ms", "0", "--identity")
                         .returncode, 0)
        self.assertIn("--flush-rate-mb must be a number from 0 to 1048576, not '1048577'",
                      self.refused(2, "--data", data, "--flush-rate-mb", "1048577"))
        self.assertEqual(engramd("--data", data, "--flush-rate-mb", "0", "--identity")
                         .returncode, 0)
        self.assertIn("--busy-poll-us must be a number from 0 to 10000, not '10001'",
                      self.refused(2, "--data", data, "--busy-poll-us", "10001"))
        shutil.rmtree(data)
        cfg = self.config(f'engram\n  data = "{data}"\n')  # zconfig indents by 4
        err = self.refused(2, "--config", cfg)
        self.assertIn(f"config {cfg}: not in zconfig format", err)
        self.assertNotIn("Sanitizer", err)  # zconfig_load leaked on a malformed file
        self.assertFalse(os.path.exists(data))

    # --- a second node -----------------------------------------------------------------

    def test_second_node_on_a_live_socket_is_refused(self):
        endpoint = f"ipc://{self.path('api.sock')}"
        first = self.node("a", endpoint)
        err = self.refused(1, "--data", self.path("b"), "--api", endpoint)
        self.assertIn(f"another engramd (pid {first.proc.pid}) is already listening on "
                      f"{endpoint}", err)
        self.assertFalse(os.path.exists(self.path("b")), "nothing is created")
        self.assertEqual(first.stats().returncode, 0, "the first node still answers")
        self.assertIsNone(first.proc.poll())

    def test_flushes_are_paced_unless_told_not_to(self):
        """--flush-rate-mb (32 by default) gives RocksDB a rate limiter, 0 none: RocksDB's LOG
        lists the options of the open it began with (engramd's), and with a limiter its
        bytes_per_sync becomes 1 MiB."""
        for name, flags, limited in (("paced", (), True),
                                     ("unpaced", ("--flush-rate-mb", "0"), False)):
            self.node(name, f"ipc://{self.path(name + '.sock')}", flags)
            with open(os.path.join(self.path(name), "LOG"), errors="replace") as log:
                options = log.read()
            self.assertIn("Options.rate_limiter: ", options)
            self.assertEqual("Options.rate_limiter: (nil)" in options, not limited, name)
            self.assertEqual("Options.bytes_per_sync: 1048576" in options, limited, name)

    def test_stale_socket_file_is_taken_over(self):
        path = self.path("api.sock")
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(path)  # a node that died leaves its socket file behind
        stale.close()
        self.assertTrue(os.path.exists(path))
        self.node("a", f"ipc://{path}")

    def test_a_file_that_is_not_a_socket_is_never_taken(self):
        path = self.path("notes.txt")  # a typo in --api must not cost the user a file
        with open(path, "w") as f:
            f.write("precious")
        err = self.refused(1, "--data", self.path("data"), "--api", f"ipc://{path}")
        self.assertIn(f"'{path}' exists and is not a socket", err)
        with open(path) as f:
            self.assertEqual(f.read(), "precious")
        self.assertFalse(os.path.exists(self.path("data")), "nothing is created")

    def test_locked_data_directory_names_its_holder(self):
        first = self.node("a", f"ipc://{self.path('a.sock')}")
        expected = (f"the data directory '{self.path('a')}' is locked by another engramd "
                    f"(pid {first.proc.pid})")
        self.assertIn(expected, self.refused(1, "--data", self.path("a"), "--api",
                                             f"ipc://{self.path('b.sock')}"))
        self.assertIn(expected, self.refused(1, "--data", self.path("a"), "--identity"))
        self.assertFalse(os.path.exists(self.path("b.sock")))
        self.assertEqual(first.stats().returncode, 0, "the first node still answers")

    def test_tcp_endpoint_in_use_is_refused_before_the_data_directory(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            endpoint = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
            err = self.refused(1, "--data", self.path("data"), "--api", endpoint)
        self.assertIn(f"{endpoint} is already in use by another process", err)
        self.assertFalse(os.path.exists(self.path("data")), "nothing is created")

    # --- access control ----------------------------------------------------------------

    def test_no_trust_root_names_engram_init(self):
        data = self.path("data")
        r = engramd("--data", data, "--api", f"ipc://{self.path('api.sock')}")
        self.assertEqual(r.returncode, 1, f"{r.stdout}{r.stderr}")
        self.assertIn(f"no trust root in {data}: a lone node needs `engram init --data {data}`",
                      r.stdout + r.stderr)
        self.assertFalse(os.path.exists(self.path("api.sock")), "it never served")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
