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
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from access import Admin
from polling import eventually

ENGRAMD, ENGRAM = sys.argv[1], sys.argv[2]

OFFICIAL_FILE = "\n".join(json.dumps(line) for line in [
    {"type": "entity", "name": "Alice", "entityType": "person",
     "observations": ["likes tea", "works at ACME"]},
    {"type": "entity", "name": "Bob", "entityType": "person", "observations": []},
    {"type": "relation", "from": "Alice", "to": "Bob", "relationType": "knows"},
])  # as the official server writes it: no newline at the end


def canonical_graph(graph):
    """A graph's entities and relations, order aside."""
    entities = sorted(graph["entities"], key=lambda e: e["name"])
    for entity in entities:
        entity["observations"] = sorted(entity["observations"])
    return {"entities": entities,
            "relations": sorted(graph["relations"], key=lambda r: json.dumps(r, sort_keys=True))}


def canonical(lines):
    """The graph of a file's lines, order aside (of lines and of observations)."""
    items = [json.loads(line) for line in lines]
    for item in items:
        item.get("observations", []).sort()
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))


class McpSession:
    """An `engram mcp` process spoken to line by line. close() ends its stdin and requires a
    clean exit (status 0: under ASan, no leak), and keeps its peak memory (peak_mib)."""

    def __init__(self, admin, socket, *args, agent="a1"):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([ENGRAM, "mcp", *args], env=admin.env(socket, agent, "alice"),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr)
        self.buffer = b""
        self.next_id = 1
        self.peak_mib = None

    def log(self):
        """What the server wrote on stderr so far."""
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

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
        self.proc.stdout.close()
        deadline = time.monotonic() + 10
        while True:  # wait4: this process's own peak memory, not every child's
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("engram mcp did not end with its stdin")
            time.sleep(0.02)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.peak_mib = usage.ru_maxrss / 1024
        self.stderr.seek(0)
        log = self.stderr.read().decode(errors="replace")
        self.stderr.close()
        if self.proc.returncode != 0:
            raise AssertionError(f"engram mcp exited {self.proc.returncode}: {log[-3000:]}")


class McpCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="engram-mcp-")
        cls.admin = Admin(ENGRAM, os.path.join(cls.dir, "home"))
        cls.socket = f"ipc://{cls.dir}/engram.sock"
        cls.data = os.path.join(cls.dir, "data")
        cls.admin.init(cls.data, "a1", "alice")
        cls.log = open(os.path.join(cls.dir, "engramd.log"), "ab")
        try:
            cls.start_node()
        except BaseException:
            cls.tearDownClass()
            raise
        cls.admin.grant(cls.socket, "a1", resources=[("run:*", "read,write")], register=False)

    @classmethod
    def start_node(cls):
        cls.proc = subprocess.Popen([ENGRAMD, "--data", cls.data, "--api", cls.socket],
                                    stdout=cls.log, stderr=cls.log)
        for _ in range(200):
            if cls.engram("ls", "user:alice").returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("engramd did not start")

    def restart_node(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        self.start_node()

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
        # without --mcp-memory the file is read as engram's JSON lines, which it is not
        r = self.engram("import", "-", "run:bad", stdin=OFFICIAL_FILE)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn('line 1: unknown field "name" (nothing was imported)', r.stderr)

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
            session.close()
        # the line was never held whole: the process peaked far below its 64 MiB
        # (ASan's shadow memory adds to a sanitized build's peak, not 64 MiB)
        self.assertLess(session.peak_mib, 48, f"engram mcp peaked at {session.peak_mib:.0f} MiB")

    def test_a_revoked_agents_watch_waits_instead_of_spinning(self):
        # the node ends a revoked key's subscription (EDENIED) and refuses it again: the
        # watcher tries again at its checks, not in a loop that burns a core
        ids = self.admin.grant(self.socket, "a9", users=["alice"],
                               resources=[("run:revoked", "read,write")])
        session = McpSession(self.admin, self.socket, "--scope", "run:revoked", agent="a9")
        try:
            session.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                           "clientInfo": {"name": "t", "version": "1"}})
            self.assertEqual(session.request("resources/subscribe",
                                             {"uri": "memory://knowledge-graph"})["result"], {})
            self.assertEqual(self.admin.run("acl", "revoke", ids[0],
                                            socket=self.socket).returncode, 0)
            self.ok("set", "add", "run:revoked", "kg/entities", "t:Eve")  # its event ends it
            # the subscription ended (its key no longer registered), SUBSCRIBE again refused
            eventually(lambda: json.loads(self.ok("--json", "stats"))["subscribers"] == 0,
                       "the revoked agent's subscription ended")
            time.sleep(1)

            def cpu_s():  # user and system time of the process so far
                with open(f"/proc/{session.proc.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            before = cpu_s()
            time.sleep(3)
            self.assertLess(cpu_s() - before, 0.3, "the watcher spins")  # a spin: seconds
        finally:
            session.close()

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
            # a change to the scope that is not the graph's is no change of the resource
            self.ok("put", "run:watched", "note", "not a graph change")
            self.assertIsNone(watcher.read(timeout=1))
            # unsubscribed, a change of the graph is not notified either
            watcher.request("resources/unsubscribe", {"uri": "memory://knowledge-graph"})
            self.ok("set", "add", "run:watched", "kg/entities", "t:Dave")
            self.assertIsNone(watcher.read(timeout=1))
        finally:
            watcher.close()

    def test_a_restarted_node_is_subscribed_again(self):
        watcher = McpSession(self.admin, self.socket, "--scope", "run:restart")
        try:
            watcher.request("resources/subscribe", {"uri": "memory://knowledge-graph"})
            self.restart_node()
            # the watcher's subscription ends with the lost connection (libengram says so) and
            # it subscribes again; a graph change made after that is notified
            deadline = time.monotonic() + 30
            while True:
                self.ok("set", "add", "run:restart", "kg/entities", f"t:E{time.monotonic()}")
                note = watcher.read(timeout=1)
                if note is not None:
                    break
                self.assertLess(time.monotonic(), deadline,
                                f"no notification after the restart; its log: {watcher.log()}")
            self.assertEqual(note["method"], "notifications/resources/updated")
        finally:
            watcher.close()

    def test_graph_texts_of_any_length_and_form(self):
        session = McpSession(self.admin, self.socket, "--scope", "run:texts")
        try:
            long_text = "Line one.\nLine two, ünïcödé: " + "€" * 3000 + "\nEnd."  # 9 KB
            name = "N" * 1500
            entities = [{"name": name, "entityType": "", "observations": ["", long_text]},
                        {"name": "", "entityType": "empty name", "observations": ["x"]}]
            created = session.call("create_entities", entities=entities)
            self.assertNotIn("isError", created)
            relation = {"from": name, "to": "", "relationType": "r\tab" * 300}
            self.assertNotIn("isError", session.call("create_relations", relations=[relation]))
            graph = session.call("read_graph")["structuredContent"]
            self.assertEqual(canonical_graph(graph), canonical_graph(
                {"entities": entities, "relations": [relation]}))
            # and from another process, and deleted whole
            other = McpSession(self.admin, self.socket, "--scope", "run:texts")
            try:
                found = other.call("search_nodes", query="ÜNÏCÖDÉ")["structuredContent"]
                self.assertEqual([e["name"] for e in found["entities"]], [name])
                self.assertEqual(found["relations"], [relation])
            finally:
                other.close()
            session.call("delete_observations",
                         deletions=[{"entityName": name, "observations": [long_text]}])
            session.call("delete_entities", entityNames=[""])
            graph = session.call("read_graph")["structuredContent"]
            self.assertEqual(graph, {"entities": [
                {"name": name, "entityType": "", "observations": [""]}], "relations": []})
            # a text past the graph's limit is refused before anything is written
            refused = session.call("create_entities", entities=[
                {"name": "ok", "entityType": "t", "observations": []},
                {"name": "big", "entityType": "t", "observations": ["x" * (256 * 1024 + 1)]}])
            self.assertTrue(refused["isError"])
            self.assertIn("arguments.entities[1].observations[0] has 262145 bytes",
                          refused["content"][0]["text"])
            names = [e["name"] for e in session.call("read_graph")["structuredContent"]["entities"]]
            self.assertEqual(names, [name])
        finally:
            session.close()

    def test_protocol_edges(self):
        session = McpSession(self.admin, self.socket)
        try:
            # a long non-ASCII method: the message quoting it is cut, and still answered
            answer = session.request("€" * 400)
            self.assertEqual(answer["error"]["code"], -32601)
            self.assertTrue(answer["error"]["message"].startswith("Method not found: €€"))
            # a batch before 2025-03-26 was negotiated: refused as one invalid request
            session.send_raw(b'[{"jsonrpc":"2.0","id":"b1","method":"ping"}]\n')
            self.assertEqual(session.read()["error"]["code"], -32600)
            self.assertEqual(session.request("initialize", {
                "protocolVersion": "2025-03-26", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}})["result"]["protocolVersion"],
                "2025-03-26")
            # with 2025-03-26: an array of the answers (a notification has none), in order
            session.send_raw(json.dumps([
                {"jsonrpc": "2.0", "id": "b1", "method": "ping"},
                {"jsonrpc": "2.0", "method": "notifications/initialized"},
                {"jsonrpc": "2.0", "id": "b2", "method": "nope"},
                {"jsonrpc": "2.0", "id": "b3"},
            ]).encode() + b"\n")
            answers = session.read()
            self.assertIsInstance(answers, list)
            self.assertEqual([a["id"] for a in answers], ["b1", "b2", "b3"])
            self.assertEqual(answers[0]["result"], {})
            self.assertEqual(answers[1]["error"]["code"], -32601)
            self.assertEqual(answers[2]["error"]["code"], -32600)
            session.send_raw(b"[]\n")
            self.assertEqual(session.read()["error"]["code"], -32600)
            # the subscription of a scope the agent may not read says why
            denied = McpSession(self.admin, self.socket, "--scope", "team:secret")
            try:
                error = denied.request("resources/subscribe",
                                       {"uri": "memory://knowledge-graph"})["error"]
                self.assertIn("access denied", error["message"])
                self.assertIn("team:secret", error["message"])
            finally:
                denied.close()
        finally:
            session.close()

    def test_every_tool_in_one_session(self):
        """Every tool once, in a session that must end cleanly (under ASan: without a leak)."""
        session = McpSession(self.admin, self.socket, "--scope", "run:all")
        try:
            def ok(tool, **arguments):
                result = session.call(tool, **arguments)
                self.assertNotIn("isError", result, f"{tool}: {result}")
                return result.get("structuredContent")
            added = ok("memory_add", text="the client wants slides", metadata={"kind": "req"})
            self.assertTrue(ok("memory_add", text="idempotent", id="fixed-id")["stored"])
            self.assertFalse(ok("memory_add", text="idempotent", id="fixed-id")["stored"])
            # an empty id is no id: a new memory, stored (it once said "stored": false)
            unnamed = ok("memory_add", text="no name given", id="")
            self.assertTrue(unnamed["stored"])
            self.assertIn("no name given", json.dumps(ok("memory_get", key=unnamed["id"])))
            self.assertEqual(ok("memory_search", query="slides")["results"][0]["key"], added["id"])
            got = ok("memory_get", key=added["id"])
            ok("memory_update", key=added["id"], text="the client wants 12 slides",
               version=got["version"])
            stale = session.call("memory_update", key=added["id"], text="late",
                                 version=got["version"])
            self.assertTrue(stale["isError"])
            self.assertGreaterEqual(len(ok("memory_list", limit=5)["items"]), 2)
            self.assertEqual(len(ok("memory_history", key=added["id"])["steps"]), 2)
            self.assertIn("12 slides", ok("memory_context", query="client", tokens=100)["context"])
            self.assertEqual(ok("memory_forget", filters={"kind": "req"})["count"], 1)
            ok("memory_delete", key="fixed-id")
            session.call("memory_share", key="nope", scope="run:all")  # an error, and no leak
            ok("create_entities", entities=[{"name": "A", "entityType": "t",
                                             "observations": ["o", "p" * 2000]}])
            ok("create_relations", relations=[{"from": "A", "to": "B", "relationType": "r"}])
            ok("add_observations", observations=[{"entityName": "A", "contents": ["q"]}])
            ok("search_nodes", query="o")
            ok("open_nodes", names=["A"])
            ok("delete_observations", deletions=[{"entityName": "A", "observations": ["o"]}])
            ok("delete_relations", relations=[{"from": "A", "to": "B", "relationType": "r"}])
            ok("delete_entities", entityNames=["A"])
            self.assertEqual(ok("read_graph"), {"entities": [], "relations": []})
            session.request("resources/subscribe", {"uri": "memory://knowledge-graph"})
            session.request("resources/read", {"uri": "memory://knowledge-graph"})
        finally:
            session.close()

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
