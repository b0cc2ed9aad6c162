#!/usr/bin/env python3
"""The `engram` CLI contract (README, issue 3) against a real engramd.

Usage: cli_test.py ENGRAMD ENGRAM. Starts engramd on a temporary directory, drives the CLI as
users and scripts do, and checks outputs, --json documents and exit statuses:
0 success, 2 usage, 3 not found, 4 refused, 5 unavailable, 6 access denied.

Access control is on: the fixture runs `engram init` (the admin key, agent tester for user
alice) under a temporary $ENGRAM_HOME before the node starts, then grants what the tests use
(tests/cli/acl_cli_test.py tests the grants themselves).
"""
import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from access import Admin

ENGRAMD, ENGRAM = sys.argv[1], sys.argv[2]
# The fields of every JSON form of an item (a version, a log entry, a change).
ITEM = {"value", "meta", "author", "user", "agents", "resources", "hlc", "created_hlc",
        "expires_at_ms", "node", "n"}
USAGE = "usage: engram [--socket EP] [--agent NAME] [--user NAME] [--json] "
# Every command, by its words.
COMMANDS = ["put", "get", "rm", "ls", "history", "set add", "set rm", "set members",
            "counter add", "counter get", "log append", "log range", "remember", "share", "forget",
            "vote", "watch", "search", "context", "mcp", "import", "export",
            "stats", "cluster init", "node admit", "cluster status", "cluster join",
            "cluster remove", "snapshot", "init", "agent create", "acl allow-user", "acl allow", "acl revoke",
            "acl policy", "acl show", "acl check"]
# The agents the tests use: (agent, the users it acts for, the resources it may access).
# tester (registered for alice by engram init) writes everywhere; a1 shares its private memory
# into team:x, where a2 reads it; w watches run:watched for user u and sees tester's writes
# there, for tester acts for u too (a reader sees a fragment only when every agent of it acts
# for the reader's user).
AGENTS = [("tester", ["u"], [("*", "read,write")]),
          ("a1", ["alice"], [("team:*", "read,write")]),
          ("a2", ["alice"], [("team:*", "read")]),
          ("w", ["u"], [("run:watched", "read")])]


class Node:
    """engramd on a temporary directory, set up by `engram init` for agent tester acting for
    alice, with the admin key and the agents' key pairs in a temporary $ENGRAM_HOME."""

    def __init__(self, *flags):
        self.dir = tempfile.mkdtemp(prefix="engram-cli-")
        self.admin = Admin(ENGRAM, os.path.join(self.dir, "home"))
        self.socket = f"ipc://{self.dir}/engram.sock"
        self.flags = flags
        self.proc = None
        try:
            self.admin.init(os.path.join(self.dir, "data"), "tester", "alice")
            self.start()
            for agent, users, resources in AGENTS:
                self.admin.grant(self.socket, agent, users, resources,
                                 register=agent != "tester")
        except BaseException:
            self.close()
            raise

    def start(self):
        with open(os.path.join(self.dir, "engramd.log"), "ab") as log:
            self.proc = subprocess.Popen([ENGRAMD, "--data", os.path.join(self.dir, "data"),
                                          "--api", self.socket, *self.flags],
                                         stdout=log, stderr=log)
        for _ in range(100):
            if run(self, "acl", "show").returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("engramd did not start")

    def server_key(self):
        """The node's public key in Z85, from the certificate beside its socket."""
        with open(self.socket[len("ipc://"):] + ".pub") as f:
            text = f.read()
        found = re.search(r'public-key\s*=\s*"(.{40})"', text)
        return found.group(1) if found else text.strip()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=10) == 0, "engramd must exit 0 on SIGTERM"

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def run(node, *args, agent="tester", user="alice", stdin=None, socket=None, env=None):
    env = dict(node.admin.env(socket or node.socket, agent, user), **(env or {}))
    return subprocess.run([ENGRAM, *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=30)


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Node("--purge-interval-ms", "100", "--max-value-bytes", "4096")

    @classmethod
    def tearDownClass(cls):
        cls.node.close()

    def ok(self, *args, **kw):
        r = run(self.node, *args, **kw)
        self.assertEqual(r.returncode, 0, f"engram {' '.join(args)}: {r.stderr}")
        self.assertEqual(r.stderr, "")
        return r.stdout

    def fails(self, status, *args, **kw):
        r = run(self.node, *args, **kw)
        self.assertEqual(r.returncode, status, f"engram {' '.join(args)}: {r.stdout}{r.stderr}")
        lines = r.stderr.strip().splitlines()
        if status != 2:  # a usage error may add the usage after its one-line message
            self.assertEqual(len(lines), 1, f"one line on stderr, got {r.stderr!r}")
        self.assertTrue(lines[0].startswith("engram: "), lines[0])
        return lines[0]

    def test_put_get_json(self):
        token = self.ok("put", "run:cli", "draft", "hello", "--meta", '{"v": 1}').strip()
        self.assertRegex(token, r"^[A-Za-z0-9_-]+$")
        self.assertEqual(self.ok("get", "run:cli", "draft"), "hello\n")
        doc = json.loads(self.ok("--json", "get", "run:cli", "draft", "--after", token))
        for field in ("value", "siblings", "token", "author"):
            self.assertIn(field, doc)
        self.assertEqual(doc["value"], "hello")
        self.assertEqual(doc["author"], "tester")
        self.assertEqual(doc["siblings"], [])
        self.assertEqual(doc["meta"], {"v": 1})
        # node ids in one form everywhere: 16 lower-case hex digits, in JSON and in the human
        # form; the version's node is the replica that wrote it, this one
        stats = json.loads(self.ok("--json", "stats"))
        for field in ("node_id", "replica_id"):
            self.assertRegex(stats[field], r"^[0-9a-f]{16}$")
        self.assertEqual(doc["node"], stats["replica_id"])
        human = dict(line.split(": ", 1) for line in self.ok("stats").splitlines())
        self.assertEqual((human["node_id"], human["replica_id"]),
                         (stats["node_id"], stats["replica_id"]))

    def test_options_after_command_and_stdin_value(self):
        self.ok("put", "run:cli", "piped", "-", "--ttl", "600", stdin="from stdin")
        doc = json.loads(self.ok("get", "run:cli", "piped", "--json"))
        self.assertEqual(doc["value"], "from stdin")
        self.assertGreater(doc["expires_at_ms"], time.time() * 1000)

    def test_every_command(self):
        self.ok("set", "add", "run:every", "tags", "b")
        self.ok("set", "add", "run:every", "tags", "a")
        self.ok("set", "rm", "run:every", "tags", "b")
        self.assertEqual(self.ok("set", "members", "run:every", "tags"), "a\n")
        self.ok("counter", "add", "run:every", "n", "5")
        self.ok("counter", "add", "run:every", "n", "-7")
        self.assertEqual(self.ok("counter", "get", "run:every", "n"), "-2\n")
        self.ok("log", "append", "run:every", "notes", "first")
        self.ok("log", "append", "run:every", "notes", "second")
        self.assertEqual(self.ok("log", "range", "run:every", "notes"), "first\nsecond\n")
        self.ok("put", "run:every", "gone", "x")
        self.ok("rm", "run:every", "gone")
        # ls: KEY, and for a register or a log a tab and a preview of its value
        self.assertEqual(self.ok("ls", "run:every").splitlines(), ["n", "notes\tsecond", "tags"])
        self.assertEqual(self.ok("ls", "run:every", "no"), "notes\tsecond\n")
        listed = json.loads(self.ok("--json", "ls", "run:every"))
        self.assertIn({"key": "tags", "type": "set"}, listed)
        history = self.ok("history", "run:every", "gone").splitlines()
        self.assertEqual(len(history), 2)
        self.assertIn("put", history[0])
        self.assertIn("delete", history[1])
        stats = json.loads(self.ok("--json", "stats"))
        self.assertGreater(stats["writes"], 0)

    def test_pages_and_after(self):
        """--cursor/--limit print one page and its cursor; without them every page; --after
        and --timeout are taken by every read."""
        for i in range(7):
            self.ok("set", "add", "run:pages", "s", f"m{i}")
            self.ok("log", "append", "run:pages", "l", f"line {i}")
            self.ok("put", "run:pages", "r", f"v{i}")
        token = self.ok("put", "run:pages", "k", "v").strip()
        commands = (("set", "members", "run:pages", "s"), ("log", "range", "run:pages", "l"),
                    ("history", "run:pages", "r"), ("ls", "run:pages"))
        for words in commands:
            whole = self.ok(*words).splitlines()
            got, cursor, pages = [], None, 0
            while True:
                extra = ("--cursor", cursor) if cursor else ()
                r = run(self.node, *words, "--limit", "3", *extra)
                self.assertEqual(r.returncode, 0, r.stderr)
                lines = r.stdout.splitlines()
                self.assertLessEqual(len(lines), 3)
                got += lines
                pages += 1
                if not r.stderr:
                    break
                self.assertRegex(r.stderr, r"^next_cursor \S+\n$")
                cursor = r.stderr.split()[1]
            self.assertEqual(got, whole, words)
            self.assertEqual(pages, (len(whole) + 2) // 3, words)
            doc = json.loads(self.ok("--json", *words, "--limit", "2"))
            self.assertEqual(len(doc["items"]), 2)
            self.assertTrue(doc["next_cursor"])
            # every read takes the causal token of a write
            self.assertEqual(self.ok(*words, "--after", token, "--timeout", "2000").splitlines(),
                             whole)
        self.ok("counter", "add", "run:pages", "n", "2")
        self.assertEqual(self.ok("counter", "get", "run:pages", "n", "--after", token), "2\n")
        self.fails(4, "log", "range", "run:pages", "l", "--cursor", "garbage")
        self.assertIn("cursor", self.fails(4, "history", "run:pages", "r", "--cursor", "x.y.z"))
        self.fails(4, "set", "members", "run:pages", "s", "--after", "!!not-a-token!!")
        self.fails(2, "set", "members", "run:pages", "s", "--limit", "0")
        self.fails(2, "put", "run:pages", "k", "v", "--cursor", "c")

    def test_remember_and_share(self):
        mem = self.ok("remember", "user:alice", "likes tea", "--meta", '{"topic":"food"}').strip()
        self.assertTrue(mem)
        self.assertEqual(self.ok("get", "user:alice", mem), "likes tea\n")
        self.ok("put", "private", "note", "secret plan", agent="a1")
        self.fails(3, "get", "private", "note", agent="a2")
        self.ok("share", "note", "team:x", agent="a1")
        doc = json.loads(self.ok("--json", "get", "team:x", "note", agent="a2"))
        self.assertEqual(doc["value"], "secret plan")
        self.assertIn("a1", doc["agents"])

    def subscribers(self):
        return json.loads(self.ok("--json", "stats"))["subscribers"]

    def watchers(self, *flag_sets):
        """`engram FLAGS watch run:watched WATCH_FLAGS` as w, one a (FLAGS, WATCH_FLAGS) of
        flag_sets, returned once the node counts their subscriptions: watch prints nothing
        before its first event (a fixed sleep is too short on a loaded machine). Killed at the
        test's end if still running."""
        env = self.node.admin.env(self.node.socket, "w", "u")
        before = self.subscribers()
        watchers = [subprocess.Popen([ENGRAM, *flags, "watch", "run:watched", *watch_flags],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True) for flags, watch_flags in flag_sets]
        for watcher in watchers:
            self.addCleanup(lambda w=watcher: w.poll() is None and (w.kill(), w.communicate()))
        deadline = time.monotonic() + 30
        while self.subscribers() < before + len(watchers):
            for watcher in watchers:
                self.assertIsNone(watcher.poll(), "engram watch exited before subscribing")
            self.assertLess(time.monotonic(), deadline, "the watchers never subscribed")
            time.sleep(0.05)
        return watchers

    def test_watch(self):
        subscribers = self.subscribers
        before = subscribers()
        watchers = self.watchers(([], ["--count", "2"]), (["--json"], ["--count", "2"]))
        self.ok("put", "run:other", "k", "not for the watcher")
        self.ok("put", "run:watched", "k1", "v1")
        self.ok("set", "add", "run:watched", "s", "e")
        (out, err), (json_out, json_err) = [w.communicate(timeout=10) for w in watchers]
        self.assertEqual([w.returncode for w in watchers], [0, 0], err + json_err)
        # one line an event: scope, key, op, value; the write to run:other is not among them
        self.assertEqual(out.splitlines(), ["run:watched k1 put v1", "run:watched s set_add e"])
        # --json: one object a line, the same facts and the item's fields
        events = [json.loads(line) for line in json_out.splitlines()]
        self.assertEqual([(e["scope"], e["key"], e["op"], e["value"]) for e in events],
                         [("run:watched", "k1", "put", "v1"), ("run:watched", "s", "set_add", "e")])
        for e in events:
            self.assertEqual(set(e), ITEM | {"scope", "key", "op", "amount", "token"})
        # the watchers' connections closed: their subscriptions went with them
        deadline = time.monotonic() + 30
        while subscribers() != before:
            self.assertLess(time.monotonic(), deadline, "subscriptions outlived their watchers")
            time.sleep(0.05)
        stats = json.loads(self.ok("--json", "stats"))
        self.assertEqual(stats["parked"], 0)
        self.assertGreaterEqual(stats["connections"], 1)  # the stats call's own

    def test_a_watch_ends_when_its_node_restarts(self):
        # the restarted node holds no subscription: watch says so (exit 5) instead of
        # waiting for ever
        [watcher] = self.watchers(([], []))
        self.node.stop()
        self.node.start()
        _, err = watcher.communicate(timeout=60)
        self.assertEqual(watcher.returncode, 5, err)
        self.assertIn("was lost", err)
        self.assertIn("subscribe again", err)

    def test_json_forms(self):
        # bytes that are not UTF-8 stand for the code points of their values, U+0080 to U+00FF
        self.ok("put", "run:json", "bytes", "caf\u00e9 \udcff\udcfe\x01")
        doc = json.loads(self.ok("--json", "get", "run:json", "bytes"))
        self.assertEqual(doc["value"], "caf\u00e9 \u00ff\u00fe\x01")
        self.assertIsNone(doc["meta"])
        self.assertEqual(set(doc), ITEM | {"siblings", "token"})
        # meta is embedded as the JSON value it is
        meta = {"score": 0.93, "tags": ["a", "\u00e9"], "n": -7, "deep": [[{}]], "none": None}
        self.ok("put", "run:json", "meta", "v", "--meta", json.dumps(meta))
        self.assertEqual(json.loads(self.ok("--json", "get", "run:json", "meta"))["meta"], meta)
        # reals print with the fewest digits that read back the same: 0.93, never its expansion
        reals = {"score": 0.93, "third": 1 / 3, "big": 1e300, "tenth": 0.1}
        self.ok("put", "run:json", "reals", "v", "--meta", json.dumps(reals))
        text = self.ok("--json", "get", "run:json", "reals")
        self.assertEqual(json.loads(text)["meta"], reals)
        self.assertIn('"tenth":0.1', text.replace(" ", ""))
        self.assertNotIn("0.1000", text)
        # integers stay integers; one past int64 is taken (read as a double), 1e400 is refused
        big = '{"n": -7, "big": 123456789012345678901234567890}'
        self.ok("put", "run:json", "ints", "v", "--meta", big)
        ints = json.loads(self.ok("--json", "get", "run:json", "ints"))["meta"]
        self.assertEqual(ints["n"], -7)
        self.assertAlmostEqual(ints["big"], 1.2345678901234568e29)
        plain = json.loads(self.ok("--json", "get", "run:json", "meta"))["meta"]
        self.assertIs(type(plain["n"]), int)
        line = self.fails(4, "put", "run:json", "huge", "v", "--meta", "[1e400]")
        self.assertIn("metadata is not JSON this node reads", line)
        # the other documents
        self.ok("counter", "add", "run:json", "c", "-3")
        counter = json.loads(self.ok("--json", "counter", "get", "run:json", "c"))
        self.assertEqual((set(counter), counter["value"]), ({"value", "token"}, -3))
        history = json.loads(self.ok("--json", "history", "run:json", "c"))
        self.assertEqual([(h["op"], h["amount"]) for h in history], [("counter_add", -3)])
        self.assertEqual(set(history[0]), ITEM | {"op", "amount"})
        self.ok("log", "append", "run:json", "log", "first")
        entries = json.loads(self.ok("--json", "log", "range", "run:json", "log"))
        self.assertEqual([(set(e), e["value"]) for e in entries], [(ITEM, "first")])
        self.ok("set", "add", "run:json", "set", "x")
        self.assertEqual(json.loads(self.ok("--json", "set", "members", "run:json", "set")), ["x"])
        written = json.loads(self.ok("--json", "set", "add", "run:json", "set", "y"))
        self.assertEqual(list(written), ["token"])
        memory = json.loads(self.ok("--json", "remember", "run:json", "a memory"))
        self.assertEqual(set(memory), {"memory_id", "token"})
        self.assertEqual(self.ok("get", "run:json", memory["memory_id"]), "a memory\n")

    def test_help(self):
        listing = self.ok("help")
        self.assertEqual(self.ok("--help"), listing)
        self.assertEqual(self.ok("-h"), listing)
        self.assertEqual(self.ok("help", "help"), listing)
        # the listing: each command's usage line, then its summary indented below it
        lines = listing.splitlines()
        usages = {}
        for i, line in enumerate(lines):
            if line.startswith("  ") and not line.startswith("   "):
                words = " ".join(itertools.takewhile(
                    lambda w: re.fullmatch(r"[a-z]+(-[a-z]+)*", w), line.split()))
                usages[words] = (line[2:], lines[i + 1].strip())
        self.assertEqual(sorted(usages), sorted(COMMANDS))
        for command in COMMANDS:
            usage, summary = usages[command]
            out = self.ok("help", *command.split())
            self.assertEqual(out.splitlines()[:3], [USAGE + usage, "", summary], command)
            # --help anywhere on a command line gives the same, and runs nothing
            self.assertEqual(self.ok(*command.split(), "--help"), out)
        self.ok("put", "run:help", "k", "v", "--help")
        self.fails(3, "get", "run:help", "k")
        # a first word that takes a second one: the help of each of its commands
        out = self.ok("help", "set")
        self.assertEqual([l for l in out.splitlines() if l.startswith("usage: ")],
                         [USAGE + usages[c][0] for c in ("set add", "set rm", "set members")])

    def test_unknown_command_names_the_nearest(self):
        self.assertEqual(self.fails(2, "stat"),
                         "engram: unknown command 'stat'; did you mean 'stats'?")
        self.assertEqual(self.fails(2, "gte", "run:cli", "draft"),
                         "engram: unknown command 'gte'; did you mean 'get'?")
        self.assertEqual(self.fails(2, "clsuter", "status"),
                         "engram: unknown command 'clsuter'; did you mean 'cluster status'?")
        self.assertEqual(self.fails(2, "set", "ad", "run:x", "k", "e"),
                         "engram: unknown subcommand 'set ad'; did you mean 'set add'?")
        self.assertEqual(self.fails(2, "help", "remeber"),
                         "engram: unknown command 'remeber'; did you mean 'remember'?")
        self.assertEqual(self.fails(2, "hlep"),
                         "engram: unknown command 'hlep'; did you mean 'help'?")
        # nothing near enough to be a slip: no guess
        self.assertEqual(self.fails(2, "frobnicate"), "engram: unknown command 'frobnicate'")
        self.assertEqual(self.fails(2, "set", "frobnicate"),
                         "engram: unknown subcommand 'set frobnicate'")

    def test_search_by_meaning(self):
        # --embedding reads a JSON array of numbers from a file or stdin, for writes and
        # queries; --mode vector ranks by cosine; --threshold takes a score (negative cosines
        # too); a file that is not an array of numbers is a usage error, sent nowhere.
        with tempfile.TemporaryDirectory() as tmp:
            def vec(name, values):
                path = os.path.join(tmp, name)
                with open(path, "w") as f:
                    json.dump(values, f)
                return path
            self.ok("put", "run:meaning", "east", "the sunrise", "--embedding", vec("e", [1, 0]))
            self.ok("put", "run:meaning", "west", "the sunset", "--embedding", vec("w", [-1, 0]))
            self.ok("remember", "run:meaning", "the noon", "--embedding", vec("n", [0, 1]))
            found = self.ok("search", "x", "--scope", "run:meaning", "--mode", "vector",
                            "--embedding", vec("q", [0.9, 0.1])).splitlines()
            self.assertEqual([line.split(" ")[2] for line in found][0], "east")
            self.assertEqual(len(found), 3)
            self.assertEqual(found[-1].split(" ")[2], "west")  # cosine -0.99, still shown
            kept = self.ok("search", "x", "--scope", "run:meaning", "--mode", "vector",
                           "--threshold", "0.5", "--embedding", "-", stdin="[0.9, 0.1]")
            self.assertEqual([line.split(" ")[2] for line in kept.splitlines()], ["east"])
            self.fails(2, "search", "x", "--embedding", vec("bad", {"not": "an array"}))
            self.fails(2, "search", "x", "--threshold", "high")
            self.fails(4, "put", "run:meaning", "odd", "v", "--embedding", vec("three", [1, 2, 3]))

    def test_ttl_expiry(self):
        # The value is readable until its TTL has passed, and gone after: a slow machine may
        # take the read past the TTL, so the read is judged by when it was made.
        before = time.time()
        self.ok("put", "run:ttl", "short", "v", "--ttl", "2")
        put_done = time.time()
        r = run(self.node, "get", "run:ttl", "short")
        if r.returncode == 0 or time.time() - before < 2:  # missing only once it may expire
            self.assertEqual((r.returncode, r.stdout), (0, "v\n"), r.stderr)
        time.sleep(max(0.0, put_done + 2.3 - time.time()))
        self.fails(3, "get", "run:ttl", "short")
        self.assertNotIn("short", self.ok("ls", "run:ttl").split())

    def test_exit_statuses(self):
        self.fails(2, "frobnicate")
        self.fails(2, "put", "run:x")
        self.fails(3, "get", "run:cli", "no-such-key")
        self.fails(4, "put", "bogus", "k", "v")            # invalid scope
        self.ok("set", "add", "run:typed", "s", "e")
        self.fails(4, "put", "run:typed", "s", "v")        # wrong type
        self.fails(4, "put", "run:cli", "big", "x" * 5000)  # over --max-value-bytes
        self.fails(4, "get", "run:cli", "draft", "--after", "!!not-a-token!!")
        self.fails(4, "put", "run:cli", "meta", "v", "--meta", "not json")
        self.fails(3, "get", "run:cli", "meta")             # the refused put stored nothing
        self.ok("put", "run:cli", "at-limit", "-", stdin="y" * 4096)  # exactly the limit
        # no node there: the node's key given, so that the client gets as far as trying
        line = self.fails(5, "stats", socket=f"ipc://{self.node.dir}/nobody.sock",
                          env={"ENGRAM_SERVER_KEY": self.node.server_key()})
        self.assertIn("unavailable", line)

    def test_mcp_stdout_is_json_rpc_alone(self):
        # what a library prints (czmq's zconfig, on a key file it cannot parse, with printf)
        # goes to stderr: `engram mcp`'s stdout carries JSON-RPC and nothing else
        home = os.path.join(self.node.dir, "broken-home")
        shutil.copytree(self.node.admin.home, home)
        with open(os.path.join(home, "agents", "tester.cert_secret"), "w") as f:
            f.write('curve\n    public-key = "unterminated\n')
        requests = [{"jsonrpc": "2.0", "id": 1, "method": "initialize",
                     "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                "clientInfo": {"name": "cli_test", "version": "1"}}},
                    {"jsonrpc": "2.0", "method": "notifications/initialized"},
                    {"jsonrpc": "2.0", "id": 2, "method": "ping"}]
        r = run(self.node, "mcp", env={"ENGRAM_HOME": home},
                stdin="".join(json.dumps(m) + "\n" for m in requests))
        self.assertIn("(zconfig)", r.stderr)  # the library did complain
        for line in r.stdout.splitlines():
            self.assertEqual(json.loads(line)["jsonrpc"], "2.0", line)

    def test_restart_keeps_data(self):
        self.ok("put", "run:durable", "k", "survives")
        self.node.stop()
        self.node.start()
        self.assertEqual(self.ok("get", "run:durable", "k"), "survives\n")


class TransferTest(unittest.TestCase):
    """export SCOPE / import FILE SCOPE in engram's JSON lines, between two fresh nodes: every
    type, a binary value, metadata and provenance; the origin kept as data; bad files refused
    whole."""

    @classmethod
    def setUpClass(cls):
        cls.source = Node()
        try:
            cls.target = Node()
        except BaseException:
            cls.source.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.source.close()
        cls.target.close()

    def ok(self, node, *args, stdin=None):
        r = run(node, *args, stdin=stdin)
        self.assertEqual(r.returncode, 0, f"engram {' '.join(args)}: {r.stderr}")
        return r.stdout

    def exported(self, node, scope):
        return {line["key"]: line for line in map(json.loads,
                                                   self.ok(node, "export", scope).splitlines())}

    def fill(self, scope):
        node = self.source
        self.ok(node, "put", scope, "note", "hello", "--meta", '{"topic": "x"}',
                "--source", "tool:web-search")
        self.ok(node, "put", scope, "plain", "no metadata")
        self.ok(node, "put", scope, "bytes", "-", stdin="\x00\x01 not text")
        self.ok(node, "set", "add", scope, "tags", "a")
        self.ok(node, "set", "add", scope, "tags", "b")
        self.ok(node, "counter", "add", scope, "count", "5")
        self.ok(node, "counter", "add", scope, "count", "-2")
        for entry in ("one", "two", "three"):
            self.ok(node, "log", "append", scope, "journal", entry)

    def test_export_import_export_keeps_objects_and_origin(self):
        self.fill("team:move")
        first = self.exported(self.source, "team:move")
        self.assertEqual({key: line["type"] for key, line in first.items()},
                         {"note": "reg", "plain": "reg", "bytes": "reg", "tags": "set",
                          "count": "counter", "journal": "log"})
        note = first["note"]["values"][0]
        self.assertEqual((note["value"], note["meta"], note["author"], note["user"]),
                         ("hello", {"topic": "x"}, "tester", "alice"))
        self.assertIn("tool:web-search", note["resources"])
        source_id = json.loads(self.ok(self.source, "--json", "stats"))["node_id"]
        self.assertEqual(note["node"], source_id)
        self.assertEqual(first["bytes"]["values"][0]["encoding"], "base64")
        self.assertEqual(base64.b64decode(first["bytes"]["values"][0]["value"]),
                         b"\x00\x01 not text")
        self.assertEqual(first["count"]["value"], 3)
        self.assertEqual([v["value"] for v in first["journal"]["values"]], ["one", "two", "three"])

        text = self.ok(self.source, "export", "team:move")
        out = self.ok(self.target, "import", "-", "team:move", stdin=text)
        self.assertEqual(out, "6 objects imported into team:move (9 versions; 0 expired, "
                              "skipped)\n")
        second = self.exported(self.target, "team:move")
        self.assertEqual(second.keys(), first.keys())
        target_id = json.loads(self.ok(self.target, "--json", "stats"))["node_id"]
        origin_fields = ("author", "user", "agents", "resources", "hlc", "created_hlc", "node",
                         "n")
        for key, line in first.items():
            again = second[key]
            self.assertEqual((again["scope"], again["type"]), (line["scope"], line["type"]))
            if line["type"] == "counter":
                self.assertEqual(again["value"], line["value"])
                continue
            self.assertEqual(len(again["values"]), len(line["values"]), key)
            for before, after in zip(line["values"], again["values"]):
                self.assertEqual(after["value"], before["value"], key)
                self.assertEqual(after.get("encoding"), before.get("encoding"), key)
                meta = dict(after["meta"])
                origin = meta.pop("engram_origin")
                self.assertEqual(meta, before["meta"] or {}, key)
                self.assertEqual(origin, dict({f: before[f] for f in origin_fields},
                                              scope="team:move"), key)
                # the version written is the importer's, on the target node
                self.assertEqual((after["author"], after["node"]), ("tester", target_id), key)

        # moved again: the first origin travels on
        self.ok(self.target, "import", "-", "team:again",
                stdin=self.ok(self.target, "export", "team:move"))
        third = self.exported(self.target, "team:again")
        origin = third["note"]["values"][0]["meta"]["engram_origin"]
        self.assertEqual((origin["node"], origin["n"], origin["scope"]),
                         (source_id, note["n"], "team:move"))

    def test_a_bad_file_changes_nothing(self):
        good = json.dumps({"key": "k", "type": "reg", "values": [{"value": "v"}]})
        cases = [
            (good + "\n{not json\n", "line 2: "),
            (good + "\n" + json.dumps({"key": "s", "type": "set", "values": []}),
             'line 2: a set has "values", an array of at least one version'),
            (good + "\n" + json.dumps({"key": "k", "type": "counter", "value": 1}),
             "line 2: key 'k' is on line 1 already"),
            (json.dumps({"key": "b", "type": "reg", "values": [{"value": "%%",
                                                                "encoding": "base64"}]}),
             'line 1: "value" is not base64'),
            (good + "\n\n" + good, "line 2: an empty line"),
            (json.dumps({"key": "k", "type": "reg", "values": [{"value": "v", "dot": 1}]}),
             'line 1: a version has an unknown field "dot"'),
        ]
        for text, message in cases:
            r = run(self.target, "import", "-", "team:bad", stdin=text)
            self.assertEqual(r.returncode, 4, r.stderr)
            self.assertIn(message, r.stderr)
            self.assertIn("(nothing was imported)", r.stderr)
        self.assertEqual(self.ok(self.target, "export", "team:bad"), "")
        # a key the scope holds with another type: refused before anything is written
        self.ok(self.target, "set", "add", "team:bad", "k", "x")
        before = self.ok(self.target, "export", "team:bad")
        r = run(self.target, "import", "-", "team:bad",
                stdin=json.dumps({"key": "z", "type": "reg", "values": [{"value": "v"}]}) +
                "\n" + good)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("line 2: team:bad holds 'k' as a set; the line has a reg", r.stderr)
        self.assertEqual(self.ok(self.target, "export", "team:bad"), before)
        # the format: jsonl or --mcp-memory, never both
        for args in (("--format", "xml"), ("--format", "jsonl", "--mcp-memory")):
            r = run(self.target, "import", *args, "-", "team:bad", stdin=good)
            self.assertEqual(r.returncode, 2, r.stderr)
        self.ok(self.target, "import", "--format", "jsonl", "-", "team:good", stdin=good)
        self.assertEqual(self.ok(self.target, "get", "team:good", "k"), "v\n")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v", *sys.argv[3:]])
