#!/usr/bin/env python3
"""The Python client's pure parts, without a node: the environment defaults (as the CLI's), the
error codes against include/engram/error.h, the limits against include/engram/limits.h, causal
tokens as text, zcert files and where the keys are looked for, and the Requests the calls
build (sent to a stand-in for the connection).

Usage: unit_test.py SOURCE_DIR (the repository, for the headers). PYTHONPATH holds
BUILD/python (the engram package and the generated engram_proto).
"""
import os
import re
import struct
import sys
import tempfile
import unittest

import engram
from engram import connection, keys, tokens
from engram.client import settings_from_env
from engram_proto import api_pb2

SOURCE = sys.argv.pop(1) if len(sys.argv) > 1 else os.getcwd()


def header(name):
    with open(os.path.join(SOURCE, "include", "engram", name)) as f:
        return f.read()


class EnvTest(unittest.TestCase):
    def test_defaults(self):
        s = settings_from_env({"HOME": "/h"})
        self.assertEqual((s.agent, s.socket, s.home), ("cli", "ipc:///tmp/engram.sock",
                                                       "/h/.engram"))
        self.assertEqual(s.user, "anonymous")
        self.assertEqual(settings_from_env({"USER": "bob"}).user, "bob")

    def test_variables_win_and_empty_is_unset(self):
        env = {"ENGRAM_AGENT": "researcher", "ENGRAM_USER": "alice", "USER": "bob",
               "ENGRAM_SOCKET": "ipc:///x.sock", "ENGRAM_HOME": "/e", "HOME": "/h"}
        s = settings_from_env(env)
        self.assertEqual((s.agent, s.user, s.socket, s.home),
                         ("researcher", "alice", "ipc:///x.sock", "/e"))
        s = settings_from_env({"ENGRAM_AGENT": "", "ENGRAM_USER": "", "USER": "bob",
                               "ENGRAM_HOME": "", "HOME": "/h"})
        self.assertEqual((s.agent, s.user, s.home), ("cli", "bob", "/h/.engram"))


class ErrorTest(unittest.TestCase):
    def test_codes_mirror_error_h(self):
        listed = re.findall(r'X\((ENGRAM_E\w+),\s*(-\d+),\s*"([^"]*)"\)', header("error.h"))
        self.assertGreater(len(listed), 19)
        self.assertEqual([(int(v), n, m) for n, v, m in listed], list(engram.errors.CODES))

    def test_each_code_has_its_class(self):
        expected = {-1: engram.InvalidArgument, -6: engram.NotFound, -10: engram.Unavailable,
                    -11: engram.Timeout, -15: engram.InvalidScope, -18: engram.Denied,
                    -20: engram.Conflict}
        for code, cls in expected.items():
            error = engram.error_for(code, "why")
            self.assertIs(type(error), cls)
            self.assertEqual((error.code, error.message), (code, "why"))
        seen = {type(engram.error_for(code)) for code, _, _ in engram.errors.CODES}
        self.assertEqual(len(seen), len(engram.errors.CODES))  # one class a code
        denied = engram.error_for(-18, "no edge to run:x")
        self.assertEqual(denied.name, "ENGRAM_EDENIED")
        self.assertEqual(str(denied), "access denied: no edge to run:x")
        self.assertIsInstance(denied, PermissionError)
        self.assertIsInstance(engram.error_for(-11), TimeoutError)

    def test_unknown_code(self):
        error = engram.error_for(-99, "new")
        self.assertIs(type(error), engram.EngramError)
        self.assertEqual((error.code, error.name), (-99, "ENGRAM_E-99"))
        self.assertEqual(engram.strerror(-99), "unknown error")


class LimitsTest(unittest.TestCase):
    def test_constants_mirror_limits_h(self):
        text = header("limits.h")
        for name, value in (("SCHEMA_MAJOR", connection.SCHEMA_MAJOR),
                            ("SCHEMA_MINOR", connection.SCHEMA_MINOR),
                            ("DEFAULT_CLIENT_TIMEOUT_MS", connection.DEFAULT_CLIENT_TIMEOUT_MS),
                            ("CLIENT_LINGER_MS", connection.CLIENT_LINGER_MS),
                            ("DEFAULT_AFTER_TIMEOUT_MS", connection.DEFAULT_AFTER_TIMEOUT_MS),
                            ("MAX_PAGE", connection.MAX_PAGE),
                            ("DEFAULT_REPLICAS_TIMEOUT_MS",
                             connection.DEFAULT_REPLICAS_TIMEOUT_MS),
                            ("DEFAULT_SUBSCRIBER_BACKLOG",
                             connection.DEFAULT_SUBSCRIBER_BACKLOG)):
            found = re.search(rf"#define ENGRAM_{name} (\d+)", text)
            self.assertTrue(found, name)
            self.assertEqual(int(found.group(1)), value, name)
        self.assertIn('#define ENGRAM_DEFAULT_API_ENDPOINT "%s"' % connection.DEFAULT_API_ENDPOINT,
                      text)
        frame = re.search(r"#define ENGRAM_DEFAULT_MAX_FRAME_BYTES \((\d+) \* (\d+) \* (\d+)\)",
                          text)
        self.assertEqual(eval("*".join(frame.groups())), connection.MAX_FRAME_BYTES)


class TokenTest(unittest.TestCase):
    def test_round_trip_base64url_without_padding(self):
        for raw in (b"", b"\x00", b"\xfb\xff", b"\xfb\xff\xfe", bytes(range(256))):
            text = tokens.encode(raw)
            self.assertNotIn("=", text)
            self.assertNotIn("+", text)
            self.assertNotIn("/", text)
            self.assertEqual(tokens.decode(text), raw)
        self.assertEqual(tokens.encode(b"\xfb\xff"), "-_8")
        self.assertEqual(tokens.decode(None), b"")

    def test_refuses_what_is_not_a_token(self):
        for bad in ("a+b/", "abc=", "a", "ab cd", "-_9"):  # "-_9": stray low bits
            with self.assertRaises(engram.InvalidArgument, msg=bad):
                tokens.decode(bad)


CERT = """#   ****  Generated on 2026-01-01 by CZMQ  ****
#   ZeroMQ CURVE **Secret** Certificate
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

metadata
    name = "researcher"
curve
    public-key = "{public}"
    secret-key = "{secret}"
"""


class KeysTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="engram-pykeys-")
        import zmq
        self.public, self.secret = zmq.curve_keypair()
        os.makedirs(os.path.join(self.dir, "agents"))
        self.cert = os.path.join(self.dir, "agents", "researcher.cert_secret")
        with open(self.cert, "w") as f:
            f.write(CERT.format(public=self.public.decode(), secret=self.secret.decode()))

    def tearDown(self):
        import shutil
        shutil.rmtree(self.dir)

    def test_zcert_is_read(self):
        public, secret = keys.load_cert(self.cert, secret=True)
        self.assertEqual(len(public), 32)
        self.assertEqual(keys.z85_key(self.public.decode()), public)
        self.assertEqual(keys.z85_key(self.secret.decode()), secret)
        self.assertEqual(keys.parse_zconfig("a\n    b = x # note\n    c = 'y'\n"),
                         {"a/b": "x", "a/c": "y"})

    def test_a_public_certificate_is_no_secret_one(self):
        public_only = os.path.join(self.dir, "pub")
        with open(public_only, "w") as f:
            f.write("curve\n    public-key = \"%s\"\n" % self.public.decode())
        self.assertEqual(len(keys.load_cert(public_only, secret=False)[0]), 32)
        with self.assertRaises(ValueError):
            keys.load_cert(public_only, secret=True)

    def test_where_keys_are_found(self):
        saved = os.environ.pop("ENGRAM_SERVER_KEY", None)
        try:
            src = keys.KeySource.find("ipc:///run/n1/api.sock", "researcher", self.dir, None)
            self.assertEqual(src.key_path, self.cert)
            self.assertEqual(src.server_path, "/run/n1/api.sock.pub")
            with self.assertRaises(engram.Unavailable) as raised:  # no node publishes it
                src.load()
            self.assertIn("/run/n1/api.sock.pub", raised.exception.message)
            tcp = keys.KeySource.find("tcp://127.0.0.1:1", "researcher", self.dir, None)
            with self.assertRaises(engram.Denied) as raised:
                tcp.load()
            self.assertIn("ENGRAM_SERVER_KEY", raised.exception.message)
            pinned = keys.KeySource.find("tcp://127.0.0.1:1", "researcher", self.dir,
                                         self.public.decode())
            self.assertEqual(pinned.load()[2], keys.z85_key(self.public.decode()))
            os.environ["ENGRAM_SERVER_KEY"] = "not a key"
            with self.assertRaises(engram.Denied):
                keys.KeySource.find("tcp://127.0.0.1:1", "researcher", self.dir, None).load()
            for name in ("../x", "", "."):
                with self.assertRaises(engram.Denied):
                    keys.KeySource.find("ipc:///x", name, self.dir, None).load()
            with self.assertRaises(engram.Denied) as raised:
                keys.KeySource.find("ipc:///x", "writer", self.dir, None).load()
            self.assertIn("engram agent create writer", raised.exception.message)
        finally:
            os.environ.pop("ENGRAM_SERVER_KEY", None)
            if saved is not None:
                os.environ["ENGRAM_SERVER_KEY"] = saved


class FakeConnection:
    """Stands in for Connection: keeps the requests, answers each with the next reply."""

    def __init__(self, *replies):
        self.timeout_ms = 5000
        self.sent = []
        self.replies = list(replies)

    def call(self, request, wait_ms=None):
        self.sent.append((request, wait_ms))
        return self.replies.pop(0) if self.replies else api_pb2.Reply()


class RequestTest(unittest.TestCase):
    def memory(self, *replies):
        m = engram.Memory.__new__(engram.Memory)
        m.after_timeout_ms = 0
        m.sources = []
        m._conn = FakeConnection(*replies)
        return m

    def test_add_builds_a_remember(self):
        m = self.memory(api_pb2.Reply(memory_id="m1", number=1, token=b"\x01\x02"))
        r = m.add("two pages", scope="run:q3", metadata={"kind": "req"}, id="req-1", ttl=1.5,
                  embedding=[1.0, -0.5])
        req, _ = m._conn.sent[0]
        self.assertEqual((req.op, req.scope, req.key, req.value),
                         (api_pb2.REMEMBER, "run:q3", "req-1", b"two pages"))
        self.assertEqual(req.meta_json, '{"kind":"req"}')
        self.assertEqual(req.ttl_ms, 1500)
        self.assertEqual(req.embedding, struct.pack("<2f", 1.0, -0.5))
        self.assertEqual((r.id, r.created, r.token), ("m1", True, "AQI"))

    def test_reads_carry_the_token_and_wait_for_it(self):
        m = self.memory(api_pb2.Reply(items=[api_pb2.Item(key="k", value=b"v", author="a")]))
        written = engram.WriteResult(token=tokens.encode(b"\x05\x06"))
        got = m.get("k", scope="run:q3", after=written)
        req, wait = m._conn.sent[0]
        self.assertEqual((req.op, req.after), (api_pb2.GET, b"\x05\x06"))
        self.assertEqual(wait, 5000 + connection.DEFAULT_AFTER_TIMEOUT_MS)
        self.assertEqual((got.text, got.author), ("v", "a"))
        m.get("k")  # no token: the plain timeout
        req, wait = m._conn.sent[1]
        self.assertEqual((req.after, wait), (b"", 5000))
        with self.assertRaises(engram.InvalidArgument):
            m.get("k", after="not a token!")

    def test_update_is_a_put_if_version(self):
        m = self.memory()
        m.update("k", "v2", scope="run:q3", expected_version=tokens.encode(b"\x07"))
        req, _ = m._conn.sent[0]
        self.assertEqual((req.op, req.if_version, req.value), (api_pb2.PUT, b"\x07", b"v2"))
        with self.assertRaises(engram.InvalidArgument):
            m.update("k", "v3", expected_version="")
        self.assertEqual(len(m._conn.sent), 1)  # refused before sending

    def test_search_options(self):
        m = self.memory()
        m.search("format", scope="run:q3", scopes=["user:alice"], filters={"author": "r"},
                 top_k=3, threshold=0.5, mode="keyword", half_life=2)
        req, _ = m._conn.sent[0]
        self.assertEqual(req.op, api_pb2.SEARCH)
        self.assertEqual(list(req.scopes), ["run:q3", "user:alice"])
        self.assertEqual((req.filter_json, req.top_k, req.threshold, req.mode, req.half_life_ms),
                         ('{"author":"r"}', 3, 0.5, "keyword", 2000.0))
        with self.assertRaises(engram.InvalidArgument):
            m.context("format", tokens=0)

    def test_paged_reads_follow_the_cursor(self):
        m = self.memory(api_pb2.Reply(items=[api_pb2.Item(value=b"a")], next_cursor="c1"),
                        api_pb2.Reply(items=[api_pb2.Item(value=b"b")], token=b"\x09"))
        self.assertEqual(m.set("run:q3", "tags").members(), ["a", "b"])
        first, second = (req for req, _ in m._conn.sent)
        self.assertEqual((first.cursor, first.limit), ("", connection.MAX_PAGE))
        self.assertEqual(second.cursor, "c1")
        looping = self.memory(api_pb2.Reply(next_cursor="c1"), api_pb2.Reply(next_cursor="c1"))
        with self.assertRaises(engram.StorageError):
            looping.history("k")

    def test_forget_counts_every_round(self):
        m = self.memory(api_pb2.Reply(number=1000, next_cursor="k1000"), api_pb2.Reply(number=2))
        self.assertEqual(m.forget({"author": "r"}, scope="run:q3", dry_run=False), 1002)
        self.assertEqual([(r.cursor, r.dry_run) for r, _ in m._conn.sent],
                         [("", False), ("k1000", False)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
