#!/usr/bin/env python3
"""Access control from the command line, end to end against a real engramd: `engram init` (the
single-node quick start), `agent create`, `acl allow-user`, `acl allow`, `acl revoke`,
`acl policy`, `acl show`, `acl check`, `--source`, and their exit statuses (0 ok, 2 usage,
3 not found, 6 access denied).

Usage: acl_cli_test.py ENGRAMD ENGRAM. One node for the whole class, on a temporary directory
set up by `engram init --data DIR --agent a1 --user alice` under a temporary $ENGRAM_HOME; the
tests run in the order of their names, each building on the grants of the ones before.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from access import Admin
from polling import eventually

ENGRAMD, ENGRAM = sys.argv[1], sys.argv[2]
ID = r"^[0-9a-f]{32}$"


class AclCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="engram-acl-")
        cls.home = os.path.join(cls.dir, "home")
        cls.data = os.path.join(cls.dir, "data")
        cls.socket = f"ipc://{cls.dir}/engram.sock"
        cls.proc = None
        try:
            cls.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start(cls):
        r = cls.run_engram("--json", "init", "--data", cls.data, "--agent", "a1", "--user",
                           "alice")
        if r.returncode != 0:
            raise RuntimeError(f"engram init: {r.stderr}")
        cls.init = json.loads(r.stdout)
        with open(os.path.join(cls.dir, "engramd.log"), "ab") as log:
            cls.proc = subprocess.Popen([ENGRAMD, "--data", cls.data, "--api", cls.socket],
                                        stdout=log, stderr=log)
        for _ in range(200):
            if cls.run_engram("acl", "show").returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("engramd did not start")

    @classmethod
    def tearDownClass(cls):
        if cls.proc and cls.proc.poll() is None:
            cls.proc.send_signal(signal.SIGTERM)
            cls.proc.wait(timeout=10)
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def run_engram(cls, *args, agent="a1", user="alice", home=None, stdin=None):
        return Admin(ENGRAM, home or cls.home).run(*args, socket=cls.socket, agent=agent,
                                                   user=user, stdin=stdin, timeout=30)

    def ok(self, *args, **kw):
        r = self.run_engram(*args, **kw)
        self.assertEqual(r.returncode, 0, f"engram {' '.join(args)}: {r.stderr}")
        self.assertEqual(r.stderr, "")
        return r.stdout

    def fails(self, status, *args, **kw):
        r = self.run_engram(*args, **kw)
        self.assertEqual(r.returncode, status, f"engram {' '.join(args)}: {r.stdout}{r.stderr}")
        self.assertTrue(r.stderr.startswith("engram: "), r.stderr)
        return r

    def statement(self, *args):
        """Runs an admin command that signs a statement; returns the id it prints."""
        sid = self.ok(*args).strip()
        self.assertRegex(sid, ID)
        return sid

    def shown(self):
        """acl show --json: the statements the node holds, by id."""
        doc = json.loads(self.ok("--json", "acl", "show"))
        return {s["id"]: s for s in doc["statements"]}

    def test_1_init(self):
        # --json gives the ids of the two statements, which the node imported at start
        self.assertRegex(self.init["statements"]["agent"], ID)
        self.assertRegex(self.init["statements"]["user_agent"], ID)
        self.assertEqual((self.init["agent"], self.init["user"]), ("a1", "alice"))
        held = self.shown()
        for kind, sid in (("agent", self.init["statements"]["agent"]),
                          ("user_agent", self.init["statements"]["user_agent"])):
            self.assertEqual(held[sid]["kind"], kind)
            self.assertTrue(held[sid]["valid"])
        # the node's trust root is the admin's cluster; the agent's secret is the agent's
        with open(os.path.join(self.home, "cluster"), "rb") as a, \
                open(os.path.join(self.data, "trust"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        secret = os.path.join(self.home, "agents", "a1.cert_secret")
        self.assertEqual(os.stat(secret).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(self.data).st_mode & 0o777, 0o700)
        # again, elsewhere: the key pair is reused, never replaced; the trust root is kept
        other = os.path.join(self.dir, "other")
        first = json.loads(self.ok("--json", "init", "--data", other, "--agent", "a1"))
        again = json.loads(self.ok("--json", "init", "--data", other, "--agent", "a1"))
        self.assertEqual(first["key"], self.init["key"])
        self.assertEqual(again["key"], self.init["key"])
        self.assertEqual((first["trust"], again["trust"]), ("written", "kept"))
        self.assertNotEqual(first["statements"], again["statements"])
        # the human form says what was done and what to run next
        out = self.ok("init", "--data", other, "--agent", "a1")
        self.assertIn("reused", out)
        self.assertIn(f"engramd --data {other}", out.splitlines()[-1])
        # a node whose trust root is another admin's is left alone
        elsewhere = os.path.join(self.dir, "elsewhere")
        r = self.fails(4, "init", "--data", other, home=elsewhere)
        self.assertIn("never overwritten", r.stderr)
        self.fails(2, "init", "--agent", "a1")  # --data is needed
        self.fails(2, "init", "--data", other, "--agent", "../a1")

    def test_2_agent_reads_and_writes_its_user(self):
        token = self.ok("put", "user:alice", "k", "v").strip()
        self.assertTrue(token)
        self.assertEqual(self.ok("get", "user:alice", "k"), "v\n")
        # a1 acts for alice only
        self.fails(6, "get", "user:bob", "k", user="bob")

    def test_3_unregistered_key_is_denied(self):
        # a key pair the node never heard of: made by init for a data directory that no node
        # runs, then put where this node's agents are
        stranger = os.path.join(self.dir, "stranger")
        self.ok("init", "--data", os.path.join(self.dir, "nowhere"), "--agent", "ghost",
                home=stranger)
        for suffix in ("", "_secret"):
            shutil.copy(os.path.join(stranger, "agents", "ghost.cert" + suffix),
                        os.path.join(self.home, "agents", "ghost.cert" + suffix))
        self.fails(6, "get", "user:alice", "k", agent="ghost")
        self.fails(6, "put", "user:alice", "k", "ghost was here", agent="ghost")
        self.assertEqual(self.ok("get", "user:alice", "k"), "v\n")

    def test_4_private_is_the_agents_own(self):
        created = json.loads(self.ok("--json", "agent", "create", "a2"))
        self.assertEqual(created["agent"], "a2")
        self.assertRegex(created["statement"], ID)
        self.assertEqual(len(created["key"]), 40)
        # a second create reuses the key pair
        again = json.loads(self.ok("--json", "agent", "create", "a2"))
        self.assertEqual(again["key"], created["key"])
        self.statement("acl", "allow-user", "alice", "a2")
        self.ok("put", "private", "x", "a1's secret")
        self.fails(3, "get", "private", "x", agent="a2")  # a2's own private scope is empty
        # a2's key presented under a1's name: the node goes by the key, never by the name
        impostor = os.path.join(self.dir, "impostor")
        os.makedirs(os.path.join(impostor, "agents"))
        for suffix in ("", "_secret"):
            shutil.copy(os.path.join(self.home, "agents", "a2.cert" + suffix),
                        os.path.join(impostor, "agents", "a1.cert" + suffix))
        # (refused as access denied: the key is a2's, the request says a1)
        r = self.fails(6, "get", "private", "x", home=impostor)
        self.assertNotIn("secret", r.stdout)
        self.assertEqual(self.ok("get", "private", "x"), "a1's secret\n")

    def test_5_resource_edge_check_and_revoke(self):
        edge = self.statement("acl", "allow", "a2", "run:*", "read,write")
        self.ok("put", "run:x", "k", "from a2", agent="a2")
        self.assertEqual(self.ok("get", "run:x", "k", agent="a2"), "from a2\n")
        self.fails(6, "get", "run:x", "k")  # a1 has no edge to run:*
        self.fails(6, "put", "run:x", "k", "from a1")
        # acl check explains, and exits 0 when the agent may read
        out = self.ok("acl", "check", "a2", "alice", "run:x").splitlines()
        self.assertEqual(out[0], "read allowed, write allowed")
        self.assertGreater(len(out), 1, "the explanation follows the decision")
        self.assertIn(edge, "\n".join(out[1:]))
        doc = json.loads(self.ok("--json", "acl", "check", "a2", "alice", "run:x"))
        self.assertEqual((doc["read"], doc["write"]), (True, True))
        r = self.fails(6, "acl", "check", "a1", "alice", "run:x")
        self.assertTrue(r.stdout.startswith("read denied, write denied\n"), r.stdout)
        # revoked: a2 reads run:x no more, and what it wrote there is hidden, not deleted
        revocation = self.statement("acl", "revoke", edge)
        self.fails(6, "get", "run:x", "k", agent="a2")
        self.fails(6, "acl", "check", "a2", "alice", "run:x")
        held = self.shown()
        self.assertFalse(held[edge]["valid"])
        self.assertTrue(held[revocation]["valid"])
        # the human listing: one line a statement, id first, its state last
        lines = {l.split()[0]: l for l in self.ok("acl", "show").splitlines()}
        self.assertEqual(set(lines), set(held))
        self.assertTrue(lines[edge].startswith(f"{edge} agent_resource "), lines[edge])
        self.assertTrue(lines[edge].endswith(" expired"), lines[edge])
        self.assertTrue(lines[revocation].endswith(" valid"), lines[revocation])
        # just before the time of the revocation, the edge was valid
        before = json.loads(self.ok("--json", "acl", "show", "--at",
                                    str(held[revocation]["at_ms"] - 1)))
        self.assertTrue(next(s for s in before["statements"] if s["id"] == edge)["valid"])

    def test_6_times(self):
        # an edge that ended long ago: a3 may not act for alice now, and might have then
        self.ok("agent", "create", "a3")
        past = self.statement("acl", "allow-user", "alice", "a3", "--from",
                              "2020-01-01T00:00:00Z", "--until", "2020-01-02T00:00:00Z")
        self.fails(6, "get", "user:alice", "k", agent="a3")
        then = json.loads(self.ok("--json", "acl", "show", "--at", "2020-01-01T12:00:00Z"))
        self.assertTrue(next(s for s in then["statements"] if s["id"] == past)["valid"])
        line = next(l for l in self.ok("acl", "show").splitlines() if l.startswith(past))
        self.assertIn("[2020-01-01T00:00:00Z, 2020-01-02T00:00:00Z) expired", line)
        # one that starts in an hour is pending until then
        soon = self.statement("acl", "allow-user", "alice", "a3", "--from", "+1h")
        line = next(l for l in self.ok("acl", "show").splitlines() if l.startswith(soon))
        self.assertTrue(line.endswith(" pending"), line)
        self.fails(6, "get", "user:alice", "k", agent="a3")

    def test_7_policy_redacts(self):
        self.statement("acl", "allow", "a1", "run:redacted", "read,write")
        self.statement("acl", "policy", "run:*", "redact", "--pattern", "@email")
        self.ok("put", "run:redacted", "mail", "mail bob@example.com")
        value = self.ok("get", "run:redacted", "mail")
        self.assertTrue(value.startswith("mail "), value)
        self.assertNotIn("bob@example.com", value)
        # block: writes into the scope are refused (how, refused or denied, is the node's say)
        self.statement("acl", "allow", "a1", "run:blocked", "read,write")
        self.statement("acl", "policy", "run:blocked", "block")
        r = self.run_engram("put", "run:blocked", "k", "v")
        self.assertIn(r.returncode, (4, 6), r.stderr)
        self.fails(3, "get", "run:blocked", "k")

    def test_8_sources(self):
        # a reader must be allowed to read every source of a value: a1 may read both. The node
        # records the shared scope written to among the resources, with the sources declared
        # (node/api/access.c, api__set_provenance).
        self.statement("acl", "allow", "a1", "kb:*", "read")
        self.ok("put", "user:alice", "derived", "from the handbook", "--source", "kb:handbook",
                "--source", "kb:faq")
        doc = json.loads(self.ok("--json", "get", "user:alice", "derived"))
        self.assertEqual(sorted(doc["resources"]), ["kb:faq", "kb:handbook", "user:alice"])
        memory = self.ok("remember", "user:alice", "a memory", "--source", "kb:handbook").strip()
        doc = json.loads(self.ok("--json", "get", "user:alice", memory))
        self.assertEqual(sorted(doc["resources"]), ["kb:handbook", "user:alice"])
        self.ok("log", "append", "user:alice", "notes", "noted", "--source", "kb:handbook")
        entries = json.loads(self.ok("--json", "log", "range", "user:alice", "notes"))
        self.assertEqual(sorted(entries[-1]["resources"]), ["kb:handbook", "user:alice"])
        # a2 acts for alice too, but may not read the handbook: the value is not for it (hidden
        # or denied, as the node answers a read of a fragment it may not see)
        r = self.run_engram("get", "user:alice", "derived", agent="a2")
        self.assertIn(r.returncode, (3, 6), r.stderr)
        self.assertNotIn("handbook", r.stdout)
        # (the sources hide it: a value of user:alice without any, a2 reads)
        self.assertEqual(self.ok("get", "user:alice", "k", agent="a2"), "v\n")

    def test_9_usage_errors_send_nothing(self):
        before = self.shown()
        self.fails(2, "acl", "show", "--at", "yesterday")
        self.fails(2, "acl", "check", "a2", "alice", "run:x", "--at", "2026-13-01T00:00:00Z")
        self.fails(2, "acl", "allow", "a2", "run:y", "rw")
        self.fails(2, "acl", "allow", "a2", "run:y", "read", "--from", "+1h", "--until", "now")
        self.fails(2, "acl", "allow-user", "alice", "a2", "--until", "1d")
        self.fails(2, "acl", "revoke", "not-an-id")
        self.fails(2, "agent", "create", "a/b")
        self.fails(2, "agent", "create", "a4", "--node", "xyz")
        # a pattern the redaction engine refuses is refused here, before anything is signed
        r = self.fails(2, "acl", "policy", "run:*", "redact", "--pattern", "(unclosed")
        self.assertIn("--pattern", r.stderr)
        self.fails(2, "acl", "policy", "run:*", "redact", "--pattern", "@nonsense")
        self.fails(2, "acl", "policy", "run:*", "block", "--pattern", "x")
        self.assertEqual(self.shown().keys(), before.keys())
        self.assertFalse(os.path.exists(os.path.join(self.home, "agents", "a4.cert")))

    def test_9b_a_revoked_key_hears_no_more(self):
        # a5 watches alice's memory; once its registration is revoked, the next change ends
        # the subscription with access denied instead of reaching it
        created = json.loads(self.ok("--json", "agent", "create", "a5"))
        self.statement("acl", "allow-user", "alice", "a5")
        watch = subprocess.Popen([ENGRAM, "watch", "user:alice"],
                                 env=Admin(ENGRAM, self.home).env(self.socket, "a5", "alice"),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(watch.stdout))
        reader.start()
        try:
            def heard(n):  # a put by a1 until the watch prints it: then it is subscribed
                self.ok("put", "user:alice", f"before-{n}", "v")
                return any(f"before-{n}" in line for line in lines)
            eventually(lambda it=iter(range(1000)): heard(next(it)), "a5's watch hears a1",
                       timeout=30)
            self.statement("acl", "revoke", created["statement"])
            self.ok("put", "user:alice", "after-revoke", "v")
            self.assertEqual(watch.wait(timeout=30), 6)
            reader.join()
            self.assertFalse([line for line in lines if "after-revoke" in line], lines)
            self.assertIn("no longer registered", watch.stderr.read())
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait()
            reader.join()
            watch.stdout.close()
            watch.stderr.close()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
