#!/usr/bin/env python3
"""`engram mcp` and the graph's import and export, end to end against a real engramd, for what
the MCP clients of tests/mcp do not reach: the official memory server's JSONL file read (with
and without a trailing newline) and written back; a file with a bad line refused whole; a
message far past the line limit refused while the server's memory stays bounded and it keeps
serving; a change made by another process notified to a subscriber; a scope the agent may not
write answered with an isError result.

Usage: mcp_cli_test.py ENGRAMD ENGRAM. One node, set up by `engram init --agent a1 --user
alice` under a temporary $ENGRAM_HOME.
"""
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from access import Admin

ENGRAMD, ENGRAM = sys.argv[1], sys.argv[2]

OFFICIAL_FILE = "\n".join(json.dumps(line) for line in [
    {"type": "entity", "name": "Alice", "entityType": "person",
     "observations": ["likes tea", "works at ACME"]},
    {"type": "entity", "name": "Bob", "entityType": "person", "observations": []},
    {"type": "relation", "from": "Alice", "to": "Bob", "relationType": "knows"},
])  # as the official server writes it: no newline at the end


def canonical(lines):
    """The graph of a file's lines, order aside (of lines and of observations)."""
    items = [json.loads(line) for line in lines]
    for item in items:
        item.get("observations", []).sort()
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))


class McpSession:
    """An `engram mcp` process spoken to line by line."""

    def __init__(self, admin, socket, *args):
        self.proc = subprocess.Popen([ENGRAM, "mcp", *args], env=admin.env(socket, "a1", "alice"),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.buffer = b""
        self.next_id = 1

    def send_raw(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def read(self, timeout=20):
        """The next message, or None when none came within timeout seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def request(self, method, params=None):
        """Sends a request and returns its answer, collecting notifications on the way."""
        id = self.next_id
        self.next_id += 1
        self.send_raw(json.dumps({"jsonrpc": "2.0", "id": id, "method": method,
                                  "params": params or {}}).encode() + b"\n")
        while True:
            message = self.read()
            if message is None:
                raise AssertionError(f"no answer to {method}")
            if message.get("id") == id:
                return message

    def call(self, tool, **arguments):
        return self.request("tools/call", {"name": tool, "arguments": arguments})["result"]

    def close(self):
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


class McpCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="engram-mcp-")
        cls.admin = Admin(ENGRAM, os.path.join(cls.dir, "home"))
        cls.socket = f"ipc://{cls.dir}/engram.sock"
        data = os.path.join(cls.dir, "data")
        cls.admin.init(data, "a1", "alice")
        cls.log = open(os.path.join(cls.dir, "engramd.log"), "ab")
        cls.proc = subprocess.Popen([ENGRAMD, "--data", data, "--api", cls.socket],
                                    stdout=cls.log, stderr=cls.log)
        for _ in range(200):
            if cls.engram("ls", "user:alice").returncode == 0:
                break
            time.sleep(0.05)
        else:
            cls.tearDownClass()
            raise RuntimeError("engramd did not start")
        cls.admin.grant(cls.socket, "a1", resources=[("run:*", "read,write")], register=False)

    @classmethod
    def tearDownClass(cls):
        if cls.proc.poll() is None:
            cls.proc.send_signal(signal.SIGTERM)
            cls.proc.wait(timeout=10)
        cls.log.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def engram(cls, *args, stdin=None):
        return cls.admin.run(*args, socket=cls.socket, agent="a1", user="alice", stdin=stdin)

    def ok(self, *args, stdin=None):
        r = self.engram(*args, stdin=stdin)
        self.assertEqual(r.returncode, 0, f"engram {' '.join(args)}: {r.stderr}")
        return r.stdout

    def exported(self, scope):
        lines = self.ok("export", "--mcp-memory", scope).splitlines()
        return canonical(lines), lines

    def test_import_and_export_the_official_file(self):
        path = os.path.join(self.dir, "memory.jsonl")
        with open(path, "w") as f:
            f.write(OFFICIAL_FILE)
        self.assertEqual(self.ok("import", "--mcp-memory", path, "run:import"),
                         "2 entities, 1 relations\n")
        graph, lines = self.exported("run:import")
        self.assertEqual(graph, canonical(OFFICIAL_FILE.split("\n")))
        # entities first, then relations, as the official server writes its file
        self.assertEqual([json.loads(line)["type"] for line in lines],
                         ["entity", "entity", "relation"])
        # again, with a trailing newline and one observation more: merged, nothing doubled
        more = OFFICIAL_FILE.replace('"works at ACME"', '"works at ACME", "plays go"') + "\n"
        self.ok("import", "--mcp-memory", "-", "run:import", stdin=more)
        graph, _ = self.exported("run:import")
        self.assertEqual(len(graph), 3)
        alice = next(item for item in graph if item.get("name") == "Alice")
        self.assertEqual(sorted(alice["observations"]), ["likes tea", "plays go", "works at ACME"])
        # what export writes, import reads: a copy of the graph into another scope
        self.ok("import", "--mcp-memory", "-", "run:copy",
                stdin=self.ok("export", "--mcp-memory", "run:import"))
        self.assertEqual(self.exported("run:copy")[0], graph)

    def test_a_bad_line_imports_nothing(self):
        bad = OFFICIAL_FILE.replace('"entityType": "person", "observations": []', '"observations": []')
        r = self.engram("import", "--mcp-memory", "-", "run:bad", stdin=bad)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("line 2", r.stderr)
        self.assertIn("nothing was imported", r.stderr)
        self.assertEqual(self.ok("export", "--mcp-memory", "run:bad"), "")
        r = self.engram("import", "--mcp-memory", "-", "run:bad", stdin='{"type": "node"}\n')
        self.assertEqual(r.returncode, 4)
        self.assertIn('line 1: "type" must be "entity" or "relation"', r.stderr)
        r = self.engram("import", "-", "run:bad", stdin=OFFICIAL_FILE)
        self.assertEqual(r.returncode, 2)  # no format given

    def test_an_oversized_message_is_refused_in_bounded_memory(self):
        session = McpSession(self.admin, self.socket)
        try:
            # 64 MiB without a newline, then a ping: the first is refused once, the ping answered
            chunk = b"x" * (1 << 20)
            for _ in range(64):
                session.send_raw(chunk)
            session.send_raw(b"\n")
            refusal = session.read()
            self.assertEqual(refusal["error"]["code"], -32600)
            self.assertIsNone(refusal["id"])
            self.assertEqual(session.request("ping")["result"], {})
        finally:
            self.assertEqual(session.close(), 0)
        # the line was never held whole: the process peaked far below its 64 MiB
        # (ASan's shadow memory adds to a sanitized build's peak, not 64 MiB)
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        self.assertLess(peak_mib, 48, f"engram mcp peaked at {peak_mib:.0f} MiB")

    def test_a_change_by_another_process_is_notified(self):
        watcher = McpSession(self.admin, self.socket, "--scope", "run:watched")
        try:
            watcher.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                           "clientInfo": {"name": "t", "version": "1"}})
            self.assertEqual(watcher.request("resources/subscribe",
                                             {"uri": "memory://knowledge-graph"})["result"], {})
            other = McpSession(self.admin, self.socket, "--scope", "run:watched")
            try:
                created = other.call("create_entities", entities=[
                    {"name": "Carol", "entityType": "person", "observations": ["writes"]}])
                self.assertNotIn("isError", created)
            finally:
                other.close()
            note = watcher.read()
            self.assertIsNotNone(note, "no notification")
            self.assertEqual(note["method"], "notifications/resources/updated")
            self.assertEqual(note["params"], {"uri": "memory://knowledge-graph"})
            graph = json.loads(watcher.request("resources/read", {
                "uri": "memory://knowledge-graph"})["result"]["contents"][0]["text"])
            self.assertEqual([e["name"] for e in graph["entities"]], ["Carol"])
            # another scope's changes are not the graph's
            watcher.request("resources/unsubscribe", {"uri": "memory://knowledge-graph"})
            self.ok("put", "run:watched", "note", "not a graph change")
            self.assertIsNone(watcher.read(timeout=1))
        finally:
            watcher.close()

    def test_the_graph_is_not_taken_for_memories(self):
        session = McpSession(self.admin, self.socket, "--scope", "run:graph")
        try:
            session.call("create_entities", entities=[
                {"name": "Yuri", "entityType": "astronaut", "observations": ["flew first"]}])
            # search, list filters and forget work on memories (registers, logs): not the graph
            self.assertEqual(self.ok("search", "astronaut", "--scope", "run:graph"), "")
            self.assertEqual(self.ok("forget", "run:graph", "--filter", '{"author": "a1"}'),
                             "0\n")
            graph = session.call("read_graph")["structuredContent"]
            self.assertEqual(graph["entities"], [
                {"name": "Yuri", "entityType": "astronaut", "observations": ["flew first"]}])
        finally:
            session.close()

    def test_a_scope_the_agent_may_not_write_is_a_tool_error(self):
        session = McpSession(self.admin, self.socket, "--scope", "team:secret")
        try:
            result = session.call("create_entities", entities=[
                {"name": "X", "entityType": "t", "observations": []}])
            self.assertTrue(result["isError"])
            self.assertIn("access denied", result["content"][0]["text"])
            self.assertIn("engram acl allow", result["content"][0]["text"])
            # and the session goes on
            self.assertEqual(session.request("ping")["result"], {})
        finally:
            session.close()


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
