#!/usr/bin/env python3
"""The Python client (node/client/python) against one real engramd: every call of Memory and
its typed objects (get_all's filters; search's scope, scopes and top_k), a Memory() taking
agent, user, socket and home from ENGRAM_*, causal tokens, watching, and the errors the node's
codes become (Denied,
Conflict, NotFound, InvalidArgument, InvalidScope) and those the client finds first (a missing
key, a node that is not there).

Usage: client_test.py ENGRAMD ENGRAM. One node for the class on a temporary directory, set up
as the quick start does (`engram init --data DIR --agent a1 --user alice`, tests/cli/access.py)
under a temporary $ENGRAM_HOME; a1 is granted run:* then. It listens on an ipc socket only
(no port), and publishes its key beside it, where the client pins it from. PYTHONPATH holds
BUILD/python.
"""
import contextlib
import datetime
import gc
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import unittest.mock

import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from access import Admin  # noqa: E402
from polling import eventually  # noqa: E402

import engram  # noqa: E402
from engram.connection import DEFAULT_SUBSCRIBER_BACKLOG, Connection  # noqa: E402
from engram_proto import api_pb2  # noqa: E402

ENGRAMD, ENGRAM = sys.argv[1], sys.argv[2]
del sys.argv[1:3]


def _get(connection, scope, key):
    """A GET of key in scope on connection (a fake node's keys choose what it does)."""
    return connection.call(api_pb2.Request(op=api_pb2.GET, scope=scope, key=key))


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="engram-py-")
        cls.home = os.path.join(cls.dir, "home")
        cls.data = os.path.join(cls.dir, "data")
        cls.socket = f"ipc://{cls.dir}/engram.sock"
        cls.proc = None
        cls.memories = []
        try:
            admin = Admin(ENGRAM, cls.home)
            admin.init(cls.data, "a1", "alice")
            cls.admin = admin
            cls.start_node()
            admin.grant(cls.socket, "a1", resources=[("run:*", "read,write")], register=False)
            cls.m = cls.memory()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_node(cls):
        with open(os.path.join(cls.dir, "engramd.log"), "ab") as log:
            cls.proc = subprocess.Popen([ENGRAMD, "--data", cls.data, "--api", cls.socket],
                                        stdout=log, stderr=log)
        eventually(lambda: cls.admin.run("acl", "show", socket=cls.socket).returncode == 0,
                   "engramd answers")

    @classmethod
    def tearDownClass(cls):
        for m in cls.memories:
            m.close()
        if cls.proc and cls.proc.poll() is None:
            cls.proc.send_signal(signal.SIGTERM)
            cls.proc.wait(timeout=30)
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def memory(cls, agent="a1", user="alice", socket=None):
        m = engram.Memory(agent=agent, user=user, socket=socket or cls.socket, home=cls.home)
        cls.memories.append(m)
        return m

    def assert_watched(self, m, writer, scope):
        """scope can be watched on m: writer's put there comes as its event."""
        with m.watch(scope, timeout=30) as watch:
            writer.put("k", "after", scope=scope)
            self.assertEqual(watch.next_event().item.text, "after")

    def test_add_get_search(self):
        r = self.m.add("The client requires a two-page PDF", scope="run:py",
                       metadata={"kind": "requirement"})
        self.assertTrue(r.id)
        self.assertTrue(r.token)
        got = self.m.get(r.id, scope="run:py", after=r)
        self.assertEqual(got.text, "The client requires a two-page PDF")
        self.assertEqual((got.author, got.item.user), ("a1", "alice"))
        self.assertEqual(got.metadata, {"kind": "requirement"})
        self.assertEqual(got.siblings, [])
        found = self.m.search("client requires PDF", scope="run:py", after=r.token)
        self.assertIn(r.id, [i.key for i in found])
        hit = next(i for i in found if i.key == r.id)
        self.assertEqual((hit.scope, hit.author), ("run:py", "a1"))
        self.assertGreater(hit.score, 0)
        only = self.m.search("client", scope="run:py", filters={"kind": "nothing such"})
        self.assertEqual(len(only), 0)
        # an id makes add idempotent: the second writes nothing
        first = self.m.add("once", scope="run:py", id="idem-1")
        again = self.m.add("twice", scope="run:py", id="idem-1")
        self.assertEqual((first.id, first.created, again.id, again.created),
                         ("idem-1", True, "idem-1", False))
        self.assertEqual(self.m.get("idem-1", scope="run:py").text, "once")

    def test_private_is_the_default_scope(self):
        self.m.put("note", "mine alone")
        self.assertEqual(self.m.get("note").text, "mine alone")
        with self.assertRaises(engram.NotFound):
            self.m.get("note", scope="run:py-other")

    def test_update_with_expected_version(self):
        v1 = self.m.put("draft", "v1", scope="run:cas")
        v2 = self.m.update("draft", "v2", scope="run:cas", expected_version=v1)
        self.assertEqual(self.m.get("draft", scope="run:cas").text, "v2")
        with self.assertRaises(engram.Conflict) as raised:  # v1 no longer covers the register
            self.m.update("draft", "v3 from a stale read", scope="run:cas", expected_version=v1)
        self.assertEqual((raised.exception.code, raised.exception.name), (-20, "ENGRAM_ECONFLICT"))
        self.assertEqual(self.m.get("draft", scope="run:cas").text, "v2")
        self.m.update("draft", "v3", scope="run:cas", expected_version=v2.token)
        self.assertEqual(self.m.get("draft", scope="run:cas").text, "v3")
        self.m.update("draft", "v4", scope="run:cas")  # no version: a plain overwrite
        self.assertEqual(self.m.get("draft", scope="run:cas").text, "v4")

    def test_delete_and_history(self):
        self.m.put("h", "one", scope="run:hist")
        self.m.put("h", "two", scope="run:hist")
        self.m.delete("h", scope="run:hist")
        with self.assertRaises(engram.NotFound) as raised:
            self.m.get("h", scope="run:hist")
        self.assertEqual(raised.exception.code, -6)
        steps = self.m.history("h", scope="run:hist")
        self.assertEqual([s.op for s in steps], ["put", "put", "delete"])
        self.assertEqual([s.text for s in steps][:2], ["one", "two"])
        self.assertEqual({s.author for s in steps}, {"a1"})

    def test_as_of_replays_the_history(self):
        def pause():  # a time strictly between two writes' stamps
            time.sleep(0.02)
            now = int(time.time() * 1000)
            time.sleep(0.02)
            return now
        before = pause()
        self.m.put("plan", "one", scope="run:asof")
        between = pause()
        self.m.put("plan", "two", scope="run:asof")
        updated = datetime.datetime.fromtimestamp(pause() / 1000, tz=datetime.timezone.utc)
        with self.assertRaises(engram.NotFound):
            self.m.get("plan", scope="run:asof", as_of=before)
        self.assertEqual(self.m.get("plan", scope="run:asof", as_of=between).text, "one")
        self.assertEqual(self.m.get("plan", scope="run:asof", as_of=updated).text, "two")

    def test_vote(self):
        r = self.m.add("a useful memory", scope="run:votes")
        self.assertEqual(self.m.vote(r.id, scope="run:votes").number, 1)
        self.assertEqual(self.m.vote(r.id, -1, scope="run:votes").number, 0)
        self.assertEqual(self.m.counter("run:votes", r.id + "#votes").value(), 0)
        with self.assertRaises(engram.NotFound):
            self.m.vote("no such memory", scope="run:votes")

    def test_forget_dry_run_then_for_real(self):
        for text in ("stale one", "stale two"):
            self.m.add(text, scope="run:forget", metadata={"topic": "stale"})
        keep = self.m.add("keep me", scope="run:forget", metadata={"topic": "fresh"})
        self.assertEqual(self.m.forget({"topic": "stale"}, scope="run:forget"), 2)
        self.assertEqual(len(list(self.m.scan("run:forget"))), 3)  # a dry run deletes nothing
        self.assertEqual(self.m.forget({"topic": "stale"}, scope="run:forget", dry_run=False), 2)
        self.assertEqual([i.key for i in self.m.scan("run:forget")], [keep.id])
        with self.assertRaises(engram.InvalidArgument):
            self.m.forget({}, scope="run:forget", dry_run=False)  # an empty filter is refused

    def test_get_all_pages(self):
        for i in range(5):
            self.m.put(f"p/{i}", f"value {i}", scope="run:pages")
        self.m.put("q", "other prefix", scope="run:pages")
        page = self.m.get_all("run:pages", prefix="p/", limit=2)
        self.assertEqual([i.key for i in page], ["p/0", "p/1"])
        self.assertTrue(page.next_cursor)
        rest = self.m.get_all("run:pages", prefix="p/", limit=10, cursor=page.next_cursor)
        self.assertEqual([i.key for i in rest], ["p/2", "p/3", "p/4"])
        self.assertEqual(rest.next_cursor, "")
        self.assertEqual([i.key for i in self.m.scan("run:pages", page_size=2)],
                         ["p/0", "p/1", "p/2", "p/3", "p/4", "q"])
        self.assertEqual(page.items[0].text, "value 0")  # a register's preview

    def test_get_all_filters(self):
        self.m.add("needs a PDF", scope="run:filtered", id="r/pdf",
                   metadata={"kind": "requirement"})
        self.m.add("two pages", scope="run:filtered", id="r/pages",
                   metadata={"kind": "requirement", "priority": "high"})
        self.m.add("the client called", scope="run:filtered", id="n/call",
                   metadata={"kind": "note"})
        self.assertEqual([i.key for i in self.m.get_all("run:filtered",
                                                        filters={"kind": "requirement"})],
                         ["r/pages", "r/pdf"])
        self.assertEqual([i.key for i in self.m.get_all("run:filtered",
                                                        filters='{"priority": "high"}')],
                         ["r/pages"])
        self.assertEqual([i.key for i in self.m.get_all("run:filtered", prefix="n/",
                                                        filters={"kind": "requirement"})], [])
        self.assertEqual(len(self.m.get_all("run:filtered")), 3)

    def test_search_scopes_and_top_k(self):
        last = None
        for scope in ("run:s1", "run:s1", "run:s2", "run:s3"):
            last = self.m.add(f"the walrus sighting logged in {scope}", scope=scope)
        both = self.m.search("walrus sighting", scopes=["run:s1", "run:s2"], after=last)
        self.assertEqual(sorted(i.scope for i in both), ["run:s1", "run:s1", "run:s2"])
        # scope and scopes together: all of them
        self.assertEqual(sorted(i.scope for i in self.m.search(
            "walrus sighting", scope="run:s3", scopes=["run:s2"])), ["run:s2", "run:s3"])
        best = self.m.search("walrus sighting", scopes=["run:s1", "run:s2"], top_k=2)
        self.assertEqual(len(best), 2)
        self.assertEqual([i.key for i in best], [i.key for i in both][:2])

    def test_memory_from_the_environment(self):
        env = {"ENGRAM_AGENT": "a1", "ENGRAM_USER": "alice", "ENGRAM_SOCKET": self.socket,
               "ENGRAM_HOME": self.home, "USER": "nobody-here"}
        with unittest.mock.patch.dict(os.environ, env):
            m = engram.Memory()
        self.memories.append(m)
        self.assertEqual((m.agent, m.user, m.socket, m.home),
                         ("a1", "alice", self.socket, self.home))
        written = m.put("from-env", "written with the environment's settings", scope="run:env")
        got = self.m.get("from-env", scope="run:env", after=written)
        self.assertEqual((got.text, got.author, got.item.user),
                         ("written with the environment's settings", "a1", "alice"))

    def test_context(self):
        self.m.add("The editor wants British spelling throughout", scope="run:ctx")
        ctx = self.m.context("british spelling", tokens=200, scope="run:ctx")
        self.assertIn("British spelling", ctx.text)
        self.assertIn("a1", ctx.text)
        self.assertEqual(len(ctx.items), 1)
        self.assertGreater(ctx.tokens, 0)
        self.assertLessEqual(ctx.tokens, 200)

    def test_share_keeps_provenance(self):
        self.m.put("finding", "found in private", scope="private")
        self.m.share("finding", "run:shared")
        got = self.m.get("finding", scope="run:shared")
        self.assertEqual((got.text, got.author), ("found in private", "a1"))

    def test_sources_are_provenance(self):
        m = self.memory()
        m.sources = ["run:py"]
        derived = m.add("a summary of run:py", scope="run:derived")
        m.sources = []
        plain = m.add("first-hand", scope="run:derived")
        self.assertIn("run:py", m.get(derived.id, scope="run:derived").item.resources)
        self.assertNotIn("run:py", m.get(plain.id, scope="run:derived").item.resources)

    def test_typed_objects(self):
        tags = self.m.set("run:typed", "tags")
        tags.add("pdf")
        tags.add("draft")
        tags.remove("draft")
        tags.add("urgent")
        self.assertEqual(tags.members(), ["pdf", "urgent"])
        pages = self.m.counter("run:typed", "pages")
        self.assertEqual(pages.add(3).number, 3)
        after = pages.add(-1)
        self.assertEqual(after.number, 2)
        self.assertEqual(pages.value(after=after), 2)
        notes = self.m.log("run:typed", "notes")
        notes.append("first")
        notes.append("second")
        entries = notes.entries()
        self.assertEqual([e.text for e in entries], ["first", "second"])
        self.assertEqual({e.author for e in entries}, {"a1"})
        with self.assertRaises(engram.WrongType):  # tags is a set, not a counter
            self.m.counter("run:typed", "tags").add(1)

    def test_watch(self):
        writer = self.memory()
        with self.m.watch("run:watched", timeout=30) as changes:
            writer.put("w", "seen", scope="run:watched")
            writer.set("run:watched", "s").add("x")
            # the watching connection's own calls get their replies, not the queued events
            self.assertEqual(self.m.get("w", scope="run:watched", after=writer.put(
                "own", "mine", scope="run:watched")).text, "seen")
            events = iter(changes)
            first, second = next(events), next(events)
            self.assertEqual([e.key for e in (next(events),)], ["own"])
        self.assertEqual((first.scope, first.key, first.op, first.author),
                         ("run:watched", "w", "put", "a1"))
        self.assertEqual(first.item.text, "seen")
        self.assertTrue(first.token)
        self.assertEqual((second.key, second.op), ("s", "set_add"))
        # unsubscribed: no further event, the iterator ends when none comes in time
        quiet = self.m.watch("run:quiet", timeout=0.2)
        self.assertEqual(list(quiet), [])
        quiet.close()
        with self.assertRaises(engram.InvalidArgument):
            quiet.next_event()
        # one watch a scope on a connection: a second is refused, the first keeps its events
        with self.m.watch("run:twice", timeout=30) as first_watch:
            with self.assertRaises(engram.InvalidArgument):
                self.m.watch("run:twice")
            writer.put("k", "v", scope="run:twice")
            self.assertEqual(first_watch.next_event().key, "k")
        with self.m.watch("run:twice", timeout=0.2) as again:  # closed: watchable again
            self.assertEqual(list(again), [])

    def test_a_watch_ends_when_its_node_restarts(self):
        # the restarted node holds no subscription: the watch says so instead of waiting for
        # ever, and the scope can be watched again, on the connection made anew
        m, writer = self.memory(), self.memory()
        with m.watch("run:restart", timeout=30) as watch:
            self.proc.send_signal(signal.SIGTERM)
            self.assertEqual(self.proc.wait(timeout=30), 0)
            self.start_node()
            with self.assertRaises(engram.Unavailable) as raised:
                watch.next_event()
            self.assertIn("was lost", raised.exception.message)
        self.assert_watched(m, writer, "run:restart")

    def test_a_watch_ends_when_its_node_hangs(self):
        # a stopped node (SIGSTOP) keeps its connections open: the watch asks it after a
        # timeout of silence (a second at least), hears nothing within as long and ends; once
        # the node goes on, the scope can be watched again
        m, writer = self.memory(), self.memory()
        started = time.monotonic()  # before the last frame the node sends
        with m.watch("run:hang", timeout=30) as watch:
            m.timeout = 0.3  # the probe's times: a second still
            self.proc.send_signal(signal.SIGSTOP)
            try:
                with self.assertRaises(engram.Unavailable) as raised:
                    watch.next_event()
            finally:
                self.proc.send_signal(signal.SIGCONT)
            self.assertIn("did not answer", raised.exception.message)
            self.assertGreaterEqual(time.monotonic() - started, 2.0)  # silence, then the probe
        m.timeout = 5
        self.assert_watched(m, writer, "run:hang")

    def test_a_quiet_watch_lasts(self):
        # a live node with nothing to send is asked again and again; the watch goes on
        m, writer = self.memory(), self.memory()
        before = writer.stats()["requests"]
        with m.watch("run:quiet", timeout=30) as watch:
            m.timeout = 1
            self.assertIsNone(watch.next_event(timeout=3.5))
            # SUBSCRIBE, the probes (three in 3.5 s: at least two) and this STATS
            self.assertGreaterEqual(writer.stats()["requests"] - before, 4)
            writer.put("k", "still watched", scope="run:quiet")
            self.assertEqual(watch.next_event().item.text, "still watched")

    def test_an_answer_waiting_unread_is_heard(self):
        # a program away longer than the probe's times: the probe's answer, waiting unread,
        # is heard, and the watch lasts
        m, writer = self.memory(), self.memory()
        with m.watch("run:away", timeout=30) as watch:
            m.timeout = 1
            for _ in range(3):
                time.sleep(1.2)
                self.assertIsNone(watch.next_event(timeout=0))
            writer.put("k", "still watched", scope="run:away")
            self.assertEqual(watch.next_event().item.text, "still watched")

    def test_a_watch_waits_with_another_s_events_queued(self):
        # two watches on one Memory: the events queued for one leave the other's wait as it
        # was (it returns at its timeout; a first version spun, then took its own probe,
        # unread, for unanswered)
        m, writer = self.memory(), self.memory()
        with m.watch("run:one", timeout=30) as one, m.watch("run:two", timeout=30) as two:
            writer.put("k", "for two", scope="run:two")
            self.assertEqual(two.next_event().item.text, "for two")
            writer.put("k", "again for two", scope="run:two")
            writer.put("k", "for one", scope="run:one")  # ordered after: both queued
            self.assertEqual(one.next_event().item.text, "for one")
            self.assertIsNone(one.next_event(timeout=0.2))
            self.assertEqual(two.next_event().item.text, "again for two")

    def test_a_dropped_watch_is_ended(self):
        # a Watch dropped unclosed: the Memory's next call ends its subscription on the node,
        # and its events no longer pile up in the client
        m, writer = self.memory(), self.memory()
        before = m.stats()["subscribers"]
        m.watch("run:dropped")
        gc.collect()
        m.watch("run:dropped")  # watchable again at once
        gc.collect()
        writer.put("k", "after the drop", scope="run:dropped")
        self.assertEqual(m.stats()["subscribers"], before)
        self.assertEqual(len(m._conn._events), 0)
        with m.watch("run:dropped", timeout=30) as watch:  # watchable again
            writer.put("k", "watched", scope="run:dropped")
            self.assertEqual(watch.next_event().item.text, "watched")

    def test_access_denied_is_denied(self):
        with self.assertRaises(engram.Denied) as raised:  # a1 acts for alice only
            self.memory(user="bob").get("k", scope="user:bob")
        self.assertEqual((raised.exception.code, raised.exception.name), (-18, "ENGRAM_EDENIED"))
        with self.assertRaises(engram.Denied):  # no edge to team:*
            self.m.put("k", "v", scope="team:secret")
        with self.assertRaises(engram.Denied) as raised:  # no key pair: found by the client
            self.memory(agent="ghost").get("k")
        self.assertIn("engram agent create ghost", raised.exception.message)

    def test_bad_input(self):
        with self.assertRaises(engram.InvalidScope) as raised:
            self.m.put("k", "v", scope="not a scope")
        self.assertEqual(raised.exception.code, -15)
        with self.assertRaises(engram.InvalidArgument) as raised:
            self.m.search("x", scope="run:py", filters='{"kind": {"nope": 1}}')
        self.assertEqual(raised.exception.code, -1)
        with self.assertRaises(engram.InvalidArgument):
            self.m.get("k", scope="run:py", after="***")
        with self.assertRaises(engram.InvalidArgument):  # a version token of another scope
            other = self.m.put("k", "v", scope="run:elsewhere")
            self.m.update("k", "v2", scope="run:cas2", expected_version=other)

    def test_no_node_is_unavailable(self):
        gone = os.path.join(self.dir, "gone.sock")
        with self.assertRaises(engram.Unavailable) as raised:  # nothing publishes gone.sock.pub
            self.memory(socket=f"ipc://{gone}").stats()
        self.assertIn("gone.sock.pub", raised.exception.message)

    def test_a_late_reply_is_never_the_answer_to_a_later_call(self):
        m = self.memory()
        m.put("late", "the first call's")
        m.put("next", "the second call's")
        m.timeout = 0.001  # so short that the reply comes after the call gave up
        for _ in range(50):
            try:
                m.get("late")
            except engram.Unavailable:
                break
        else:
            self.skipTest("every reply came within 1 ms")
        m.timeout = 30
        self.assertEqual(m.get("next").text, "the second call's")

    @contextlib.contextmanager
    def fake_node(self):
        """A fake node (a CURVE ROUTER publishing its key as engramd does) on an ipc endpoint,
        yielded: it answers every request with an empty success, except a read of key "cut",
        which cuts the connection as engramd's s_cut (one Reply of id 0 with EBUSY, then
        nothing answered on it), one of key "flood", which first sends the last subscription
        more events than a client keeps unread, one of key "slow", answered 0.2 s late,
        those of keys "stop" and "restart": the node unbinds (its connections close; at once
        for "stop", unanswered, 0.2 s after answering "restart") and binds again 3 s ("stop")
        or 0.5 s ("restart") later, as a node that restarts; and one of key "flood-stop",
        answered, then followed by 5000 events of the last subscription and the node's
        unbinding."""
        public, secret = zmq.curve_keypair()
        path = os.path.join(self.dir, "fake.sock")
        with open(path + ".pub", "w") as f:
            f.write(f'curve\n    public-key = "{public.decode()}"\n')
        router = zmq.Context.instance().socket(zmq.ROUTER)
        router.curve_server = True
        router.curve_secretkey = secret
        router.sndhwm = 0  # a flood is queued whole, not dropped at the HWM
        router.bind(f"ipc://{path}")
        stop = threading.Event()

        def serve():
            cut, subscription, down_at, up_at = set(), 0, None, None
            while not stop.is_set():
                if down_at and time.monotonic() >= down_at:
                    # the path goes first: a client connecting while the listener closes
                    # could complete a handshake with it, on a connection left without a socket
                    os.unlink(path)
                    router.unbind(f"ipc://{path}")
                    down_at = None
                if up_at and time.monotonic() >= up_at:
                    router.bind(f"ipc://{path}")
                    up_at = None
                if not router.poll(50):
                    continue
                who, frame = router.recv_multipart()
                request = api_pb2.Request.FromString(frame)
                if who in cut:
                    continue
                reply = api_pb2.Reply(schema_major=request.schema_major, id=request.id)
                if request.op == api_pb2.SUBSCRIBE:
                    subscription = request.id
                if request.key == "flood":
                    event = api_pb2.Reply(schema_major=request.schema_major, id=subscription,
                                          event=api_pb2.Event(op="put", key="k"))
                    for _ in range(DEFAULT_SUBSCRIBER_BACKLOG + 10):
                        router.send_multipart([who, event.SerializeToString()])
                if request.key == "slow":
                    time.sleep(0.2)
                if request.key == "flood-stop":
                    router.send_multipart([who, reply.SerializeToString()])
                    event = api_pb2.Reply(schema_major=request.schema_major, id=subscription,
                                          event=api_pb2.Event(op="put", key="k"))
                    for _ in range(5000):
                        router.send_multipart([who, event.SerializeToString()])
                    down_at = time.monotonic() + 0.5  # sent: an unbinding drops what is not
                    continue
                if request.key in ("stop", "restart"):
                    down_at = time.monotonic() + (0.2 if request.key == "restart" else 0)
                    up_at = down_at + (0.5 if request.key == "restart" else 3)
                    if request.key == "stop":
                        continue
                if request.key == "cut":
                    cut.add(who)
                    reply = api_pb2.Reply(schema_major=request.schema_major, id=0,
                                          code=engram.Busy.code, message="cut: connect again")
                router.send_multipart([who, reply.SerializeToString()])

        server = threading.Thread(target=serve)
        server.start()
        try:
            yield f"ipc://{path}"
        finally:
            stop.set()
            server.join()
            router.close()

    @contextlib.contextmanager
    def fake_connection(self, timeout_ms):
        """A Connection as a1 for alice to a fake node (fake_node), yielded, closed after."""
        with self.fake_node() as endpoint:
            connection = Connection(endpoint, "a1", "alice", home=self.home,
                                    timeout_ms=timeout_ms)
            try:
                yield connection
            finally:
                connection.close()

    def test_a_cut_connection_says_so_and_connects_anew(self):
        # the call fails at once, the subscription ends with the cut's error, and the next
        # call is answered on a new connection
        with self.fake_connection(5000) as connection:
            connection.subscribe("run:x")
            started = time.monotonic()
            with self.assertRaises(engram.Busy) as raised:
                _get(connection, "run:x", "cut")
            self.assertLess(time.monotonic() - started, 5)  # not its timeout
            self.assertIn("cut: connect again", raised.exception.message)
            self.assertIn("connected anew", raised.exception.message)
            with self.assertRaises(engram.Busy):
                connection.next_event(1000)
            reply = _get(connection, "run:x", "k")
            self.assertEqual(reply.code, 0)

    def test_a_lost_connection_fails_the_call_waiting(self):
        # a call waiting when the node goes fails at once, not after its timeout; the next
        # call, once the node is back, is answered on the new connection
        with self.fake_connection(60000) as connection:
            with self.assertRaises(engram.Unavailable) as raised:
                _get(connection, "run:x", "stop")
            self.assertIn("lost while waiting", raised.exception.message)
            reply = _get(connection, "run:x", "k")
            self.assertEqual(reply.code, 0)

    def test_short_waits_see_a_loss(self):
        # a program waiting for events in short slices is told the connection was lost too
        with self.fake_connection(5000) as connection:
            subscription = connection.subscribe("run:w")
            _get(connection, "run:w", "restart")
            with self.assertRaises(engram.Unavailable):
                for _ in range(200):
                    connection.next_event(20, subscription)

    def test_a_call_after_a_restart_is_answered(self):
        # the node restarts while the client is idle: the next call goes on the new
        # connection and is answered, the old one's end being read before it is sent
        with self.fake_connection(60000) as connection:
            _get(connection, "run:x", "restart")
            time.sleep(1.5)  # the node binds again, libzmq connects again meanwhile
            # answered late: the old connection's end would be read while it waits
            reply = _get(connection, "run:x", "slow")
            self.assertEqual(reply.code, 0)

    def test_a_loss_with_events_unread_is_told(self):
        # more events than the socket's high-water mark came while the client read nothing
        # (libzmq stopped reading the connection), then the connection ended: the events libzmq
        # took in come, then the watch's end (what it had not taken in is dropped with the
        # connection, among the changes missed); under ZMTP heartbeats libzmq 4.3.4 aborts here
        with self.fake_connection(5000) as connection:
            subscription = connection.subscribe("run:z")
            _get(connection, "run:z", "flood-stop")
            time.sleep(3)  # the node's connection ends meanwhile
            events = 0
            with self.assertRaises(engram.Unavailable):
                while connection.next_event(30000, subscription):
                    events += 1
            self.assertTrue(0 < events < 5000, events)  # some dropped with the connection

    def test_unread_events_are_bounded(self):
        # events taken in by calls and never read: past the backlog the client drops them
        # and ends the subscription with Lagged, as the node would; the scope may be watched
        # again
        with self.fake_connection(5000) as connection:
            subscription = connection.subscribe("run:y")
            _get(connection, "run:y", "flood")
            self.assertLessEqual(len(connection._events), DEFAULT_SUBSCRIBER_BACKLOG)
            with self.assertRaises(engram.Lagged) as raised:
                connection.next_event(1000, subscription)
            self.assertIn("watch again", raised.exception.message)
            self.assertNotEqual(connection.subscribe("run:y"), subscription)

    def test_stats(self):
        stats = self.m.stats()
        self.assertGreater(stats["requests"], 0)
        self.assertGreater(stats["node_id"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
