"""The transport of the agent API (proto/api.proto), as libengram's node/client/client.c
speaks it: one ZeroMQ DEALER socket, a CURVE client, connected to the node's ROUTER.

A call packs one Request with a fresh id (a per-connection counter from 1, never reused),
sends it as one frame and reads frames until the Reply carrying that id arrives or the call's
time is up (Unavailable). Frames are sorted as they arrive:
  - a Reply for a subscription this connection holds (its id is the SUBSCRIBE request's) that
    carries an Event, or an error code, is queued for next_event; an error ends the
    subscription;
  - the Reply with the awaited id is the answer;
  - anything else is dropped: a late reply to a call that gave up, or a frame that is not one
    Reply.
The socket is ZMQ_IMMEDIATE: a request is only queued on a live connection, so a call made
while no node listens fails after its timeout without leaving a request behind.

Lost connections, as libengram: the socket's monitor reports each connection's handshake and
end. When a connection that was up ends (the node stopped or restarted), nothing sent on it
will be answered: the call waiting raises Unavailable at once ("whether it was done is
unknown"), and every subscription ends with Unavailable, since a restarted node holds none of
them. libzmq connects again by itself. Reports are read while a call or next_event waits
(_pump), and before a SUBSCRIBE is sent, so that an end reported late never ends the
subscription it makes. A node that hangs without closing its connections is found by a
probe, as libengram finds it: while next_event waits and nothing came from the node for the
connection's timeout (PROBE_MIN_MS at least), a STATS request goes (_probe); when nothing at
all comes within as long after it (a frame waiting unread counts), every subscription ends with
Unavailable ("did not answer") and a new socket connects (no ZMTP heartbeats:
node/client/client.c says why).

Keys (keys.py): the socket connects only once the agent's key pair and the node's pinned key
are known; until then each call looks for what is missing again and fails with what
KeySource.load raises. A client may so start before its node.

Invariants: one Request per frame, one frame per message; a request larger than
MAX_FRAME_BYTES is refused here (TooBig), as the node's libzmq would drop it unseen; every
wait has a deadline (next_event's may be None: for ever). One thread at a time per Connection.

The generated module engram_proto.api_pb2 (protoc --python_out at build time, see README.md)
must be importable: PYTHONPATH holds the build tree's python/ directory.
"""
from __future__ import annotations

import collections
import itertools
import math
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from .errors import (Busy, DecodeError, EngramError, InvalidArgument, Lagged, TooBig,
                     Unavailable, VersionError)
from .errors import error_for
from .keys import KeySource

try:
    from engram_proto import api_pb2
except ImportError as why:  # pragma: no cover - a build problem, said plainly
    raise ImportError("engram needs engram_proto.api_pb2, which the build generates: build "
                      "with cmake and put BUILD/python on PYTHONPATH "
                      "(node/client/python/README.md)") from why

# include/engram/limits.h (the unit tests compare).
SCHEMA_MAJOR = 1
SCHEMA_MINOR = 4
DEFAULT_API_ENDPOINT = "ipc:///tmp/engram.sock"
DEFAULT_CLIENT_TIMEOUT_MS = 5000
CLIENT_LINGER_MS = 100
DEFAULT_AFTER_TIMEOUT_MS = 2000
MAX_PAGE = 1000
MAX_FRAME_BYTES = 4 * 1024 * 1024
DEFAULT_REPLICAS_TIMEOUT_MS = 5000
DEFAULT_SUBSCRIBER_BACKLOG = 10000  # events a client keeps unread (the node's default too)
SOCKET_ALONE_MS = 100  # how long a wait polls the socket alone (_pump)
PROBE_MIN_MS = 1000  # the least silence before a probe, and wait for its answer (_probe)


def _now_ms() -> float:
    return time.monotonic() * 1000.0


def _is_cut(reply: api_pb2.Reply) -> bool:
    """Whether reply is the node's word that it cut the connection (engramd's s_cut: id 0,
    EBUSY; an id-0 EDECODE is its word on a frame it could not read)."""
    return reply.id == 0 and reply.code == Busy.code


_monitors = itertools.count()  # names of the sockets' monitors


class _Lost(Exception):
    """The connection the socket had up ended: nothing sent on it is answered."""


class Connection:
    """One connection to a node, as agent acting for user (see the module's comment)."""

    def __init__(self, endpoint: str, agent: str, user: str, home: str | None = None,
                 server_key: str | None = None,
                 timeout_ms: int = DEFAULT_CLIENT_TIMEOUT_MS) -> None:
        """Raises InvalidArgument if libzmq refuses endpoint; a missing key is only raised by
        the calls, each of which looks for it again."""
        if timeout_ms <= 0:
            raise InvalidArgument("the timeout must be positive")
        self.endpoint = endpoint
        self.agent = agent
        self.user = user
        self.timeout_ms = timeout_ms
        self._keys = KeySource.find(endpoint, agent, home, server_key)
        self._keyed = False
        self._next_id = 1
        self._subscriptions: set[int] = set()
        self._watched: dict[str, int] = {}  # scope -> its subscription: one a scope
        self._events: collections.deque = collections.deque()
        self._abandoned: list[tuple[int, str]] = []  # (subscription, scope): abandon()
        self._open()
        try:
            self._ensure_keyed()
        except InvalidArgument:
            self.close()
            raise
        except EngramError:
            pass  # looked for again by every call

    def _open(self) -> None:
        """A new socket (not connected) with its monitor and their poller. The monitor has no
        receive high-water mark: libzmq never blocks its I/O thread on an unread report. The
        socket sends no heartbeats (libengram's client.c says why)."""
        context = zmq.Context.instance()
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, CLIENT_LINGER_MS)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        self._sock = sock
        name = f"inproc://engram-py-monitor-{next(_monitors)}"  # never used before
        sock.monitor(name, zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
        self._monitor = context.socket(zmq.PAIR)
        self._monitor.setsockopt(zmq.RCVHWM, 0)
        self._monitor.connect(name)
        self._poller = zmq.Poller()
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        self._up = False  # a handshake was reported and not the connection's end
        self._heard_ms = _now_ms()  # when the last frame came from the node
        self._probe_ms: float | None = None  # when the unanswered probe went (_probe)

    def _after_cut(self, cut: api_pb2.Reply) -> None:
        """The node cut this connection (engramd's s_cut: a Reply of id 0 with EBUSY) and
        answers nothing more on it: each subscription ends with the cut's error, queued after
        the events that came before it, and a new socket with the same keys connects, so that
        the next call is answered (the old socket's disconnection would not be done in time)."""
        self._end_subscriptions(cut.code, cut.message)
        self._connect_anew()

    def _connect_anew(self) -> None:
        """A new socket with the same keys in place of this one, connected; what the old
        connection still brings is not taken."""
        self.close()
        self._open()
        self._sock.curve_serverkey, self._sock.curve_publickey, self._sock.curve_secretkey = \
            self._curve
        self._sock.connect(self.endpoint)

    def close(self) -> None:
        """Closes the socket; the connection serves no further call."""
        if not self._sock.closed:
            self._sock.disable_monitor()
            self._monitor.close()
            self._sock.close()

    def _ensure_keyed(self) -> None:
        if self._keyed:
            return
        public_key, secret_key, server_key = self._keys.load()
        self._curve = (server_key, public_key, secret_key)  # for a new socket (_connect_anew)
        self._sock.curve_serverkey = server_key
        self._sock.curve_publickey = public_key
        self._sock.curve_secretkey = secret_key
        try:
            self._sock.connect(self.endpoint)
        except zmq.ZMQError as why:
            raise InvalidArgument(f"cannot connect to '{self.endpoint}': {why}") from None
        self._keyed = True

    def _pump(self, deadline_ms: float | None) -> api_pb2.Reply | None:
        """Reads at most one frame, or the monitor's reports, by deadline (None: for ever):
        the socket alone for the first SOCKET_ALONE_MS (a reply usually comes within it).
        Returns the Reply it held, or None when it was queued as a subscription event or
        dropped, or only reports came. Raises TimeoutError when nothing came in time, _Lost
        when the reports leave the connection lost (the subscriptions ended:
        _watch_connection); a loss followed by a new connection's handshake is not the waiting
        call's, whose request may have gone on the new one (if not, its timeout ends it)."""
        alone_until = _now_ms() + SOCKET_ALONE_MS
        while True:
            alone_left = alone_until - _now_ms()
            alone = alone_left > 0
            wait = None if deadline_ms is None else max(0, math.ceil(deadline_ms - _now_ms()))
            if alone and (wait is None or wait > alone_left):
                wait = math.ceil(alone_left)
            if alone:
                ready = {self._sock: zmq.POLLIN} if self._sock.poll(wait, zmq.POLLIN) else {}
            else:
                ready = dict(self._poller.poll(wait))
            if ready:
                break
            if deadline_ms is not None and _now_ms() >= deadline_ms:
                # the monitor too, whatever the wait: one of short waits would never read it
                if not self._sock.poll(0, zmq.POLLIN) and not self._monitor.poll(0, zmq.POLLIN):
                    raise TimeoutError
                break
        if self._sock in ready or self._sock.poll(0, zmq.POLLIN):
            return self._take_frame()
        if self._watch_connection() and not self._up:
            raise _Lost
        return None

    def _take_frame(self) -> api_pb2.Reply | None:
        """Reads the frame waiting: the Reply it held, or None when it was queued as a
        subscription event or dropped."""
        frames = self._sock.recv_multipart(zmq.NOBLOCK)
        self._heard_ms = _now_ms()
        if len(frames) != 1:
            return None
        reply = api_pb2.Reply()
        try:
            reply.ParseFromString(frames[0])
        except Exception:  # protobuf's DecodeError: not a Reply, dropped
            return None
        if _is_cut(reply):
            self._after_cut(reply)
            return reply
        if reply.id in self._subscriptions and (reply.HasField("event") or reply.code != 0):
            if reply.code == 0 and len(self._events) >= DEFAULT_SUBSCRIBER_BACKLOG:
                self._events_overflow()
            else:
                self._events.append(reply)
            return None
        return reply

    def _watch_connection(self) -> bool:
        """Applies the monitor's reports: a handshake marks a connection up; the end of one
        that was up is a loss, after which every subscription ends with Unavailable. Returns
        whether a connection was lost. The caller reads the frames waiting on the socket
        first, so that those still there come before the ends; what libzmq had not taken in
        from an ended connection is dropped with it, among the events missed."""
        lost = False
        while self._monitor.poll(0, zmq.POLLIN):
            event = recv_monitor_message(self._monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._up = True
            elif event == zmq.EVENT_DISCONNECTED and self._up:
                self._up, lost = False, True
        if lost:
            self._end_subscriptions(Unavailable.code, f"the connection to the node at "
                                    f"{self.endpoint} was lost (the node stopped or "
                                    "restarted): the watch ended, and changes may have been "
                                    "missed; watch again")
        return lost

    def _end_subscriptions(self, code: int, message: str) -> None:
        """Ends every subscription whose end is not queued yet with code and message, queued
        after the events already queued (next_event raises it once each, and then forgets
        the subscription), as the node ends them."""
        ended = {r.id for r in self._events if r.code != 0}  # told once only
        for subscription in self._subscriptions - ended:
            self._events.append(api_pb2.Reply(schema_major=SCHEMA_MAJOR, id=subscription,
                                              code=code, message=message))

    def _events_overflow(self) -> None:
        """A program that reads no events while its calls take them in: past
        DEFAULT_SUBSCRIBER_BACKLOG queued they are dropped and every subscription ends with
        Lagged, as the node ends a subscriber that falls behind."""
        ended = [r for r in self._events if r.code != 0]  # ends already queued are kept
        self._events = collections.deque(ended)
        self._subscriptions.difference_update(r.id for r in ended)
        self._end_subscriptions(Lagged.code, f"more than {DEFAULT_SUBSCRIBER_BACKLOG} events "
                                "waited in this client, unread: they were dropped and the "
                                "subscription ended; watch again")
        self._subscriptions.clear()  # their events that still come are dropped

    def abandon(self, subscription: int, scope: str) -> None:
        """The subscription's owner was dropped unclosed: the next call ends it (unsubscribe).
        Only noted here, since the garbage collector may call this in the middle of a call."""
        self._abandoned.append((subscription, scope))

    def _end_abandoned(self) -> None:
        """Unsubscribes what was abandoned since (at the start of every call, subscribe and
        next_event). A refusal is not the caller's: the subscription is forgotten here
        anyway, and the node ends it with the connection."""
        abandoned, self._abandoned = self._abandoned, []
        for subscription, scope in abandoned:
            try:
                self.unsubscribe(subscription, scope)
            except EngramError:
                pass

    def _stamp(self, request: api_pb2.Request) -> api_pb2.Request:
        """request with the schema, the next id, the agent and the user filled in."""
        request.schema_major = SCHEMA_MAJOR
        request.schema_minor = SCHEMA_MINOR
        request.id = self._next_id
        self._next_id += 1
        request.agent = self.agent
        request.user = self.user
        return request

    def call(self, request: api_pb2.Request, wait_ms: float | None = None) -> api_pb2.Reply:
        """Sends request (its schema, id, agent and user filled in here) and waits up to
        wait_ms (default: the connection's timeout) for its reply. Returns the node's
        successful answer; raises the EngramError of the node's code, or of the transport.
        Subscriptions abandoned since the last call are ended first."""
        if self._sock.closed:
            raise InvalidArgument("the connection is closed")
        self._end_abandoned()
        self._ensure_keyed()
        wait_ms = self.timeout_ms if wait_ms is None else wait_ms
        frame = self._stamp(request).SerializeToString()
        if len(frame) > MAX_FRAME_BYTES:
            raise TooBig(f"a request of {len(frame)} bytes exceeds the frame limit of "
                         f"{MAX_FRAME_BYTES}")
        deadline = _now_ms() + wait_ms
        self._sock.setsockopt(zmq.SNDTIMEO, max(0, int(wait_ms)))
        try:
            self._sock.send(frame)
        except zmq.Again:
            raise Unavailable(f"no node at {self.endpoint} within {int(wait_ms)} ms (a node "
                              "whose key is not the one pinned from "
                              f"{self._keys.server_from} is never connected to)") from None
        while True:
            try:
                reply = self._pump(deadline)
            except TimeoutError:
                raise Unavailable(f"no reply from {self.endpoint} within {int(wait_ms)} ms") \
                    from None
            except _Lost:
                raise Unavailable(f"the connection to the node at {self.endpoint} was lost "
                                  "while waiting (the node stopped or restarted): whether the "
                                  "request was done is unknown") \
                    from None
            if reply is not None and (reply.id == request.id or _is_cut(reply)):
                break  # cut: this request's answer never comes
        if reply.schema_major > SCHEMA_MAJOR:
            raise VersionError(f"the node answered in schema {reply.schema_major}."
                               f"{reply.schema_minor}")
        if reply.code > 0:
            raise DecodeError(f"the node answered with code {reply.code}")
        if _is_cut(reply):
            raise error_for(reply.code, f"{reply.message} (the client connected anew; whether "
                                        "this request was done is unknown)")
        if reply.code < 0:
            raise error_for(reply.code, reply.message)
        return reply

    def subscribe(self, scope: str) -> int:
        """Subscribes this connection to scope's changes; returns the subscription's id. The
        node holds one subscription a (connection, scope), so a second one of a scope still
        subscribed here is refused (InvalidArgument) rather than silently taking over."""
        self._end_abandoned()
        if scope in self._watched:
            raise InvalidArgument(f"{scope} is watched on this connection already: close that "
                                  "watch first, or watch from another Memory")
        while self._sock.poll(0, zmq.POLLIN):  # what came before, then the reports: an end
            self._take_frame()  # reported late must not end the subscription made now
        self._watch_connection()
        request = api_pb2.Request(op=api_pb2.SUBSCRIBE, scope=scope)
        self.call(request)
        self._subscriptions.add(request.id)
        self._watched[scope] = request.id
        return request.id

    def unsubscribe(self, subscription: int, scope: str) -> None:
        """Ends the subscription (its events still queued are dropped); the node is told only
        while it holds it (not after it ended it, nor after the connection was lost)."""
        live = subscription in self._subscriptions
        self._subscriptions.discard(subscription)
        if self._watched.get(scope) == subscription:
            del self._watched[scope]
        self._events = collections.deque(r for r in self._events if r.id != subscription)
        if live:
            self.call(api_pb2.Request(op=api_pb2.UNSUBSCRIBE, scope=scope))

    def next_event(self, timeout_ms: float | None,
                   subscription: int | None = None) -> api_pb2.Event | None:
        """The next event of the connection's subscriptions (of subscription only, when
        given), in commit order; None if none came within timeout_ms (None: wait for ever).
        Raises the error that ended a subscription: the node's (Lagged: it fell behind), or
        the client's (Unavailable: the connection was lost, or the node did not answer).
        Subscriptions abandoned since the last call are ended first."""
        self._end_abandoned()
        deadline = None if timeout_ms is None else _now_ms() + timeout_ms
        while True:
            for reply in self._events:
                if subscription is None or reply.id == subscription:
                    self._events.remove(reply)
                    return self._event_of(reply)
            if not self._subscriptions:
                raise InvalidArgument("no subscription on this connection")
            queued = len(self._events)
            look_again = self._probe()
            if len(self._events) > queued:
                continue  # the node did not answer the probe: the subscriptions' ends
            probe_first = deadline is None or look_again < deadline
            try:
                self._pump(look_again if probe_first else deadline)
            except TimeoutError:
                if probe_first:
                    continue  # time to look at the probe, not the caller's deadline
                return None
            except _Lost:
                pass  # the subscriptions' ends are queued

    def _probe(self) -> float:
        """The liveness of a node that events are awaited from: after the timeout
        (PROBE_MIN_MS at least) with no frame from the node, a STATS request goes as a probe;
        no frame within as long after it ends every subscription with Unavailable and connects
        anew. A frame waiting unread counts as heard. Returns when to look again. A probe the
        socket cannot take at once (no connection up, or a full pipe: the node reads nothing)
        counts as sent: a node that never answers is taken as hung."""
        now, limit = _now_ms(), max(self.timeout_ms, PROBE_MIN_MS)
        due = self._probe_ms is not None or now - self._heard_ms >= limit
        if due and self._sock.poll(0, zmq.POLLIN):
            self._heard_ms = now  # the program was away; the node was not
        if self._probe_ms is not None and self._heard_ms >= self._probe_ms:
            self._probe_ms = None  # answered
        if self._probe_ms is not None and now - self._probe_ms >= limit:
            self._end_subscriptions(Unavailable.code, f"the node at {self.endpoint} did not "
                                    f"answer for {int(limit)} ms (it hangs, or cannot be "
                                    "reached): the watch ended, and changes may have been "
                                    "missed; watch again")
            self._connect_anew()
            return _now_ms() + limit
        if self._probe_ms is not None:
            return self._probe_ms + limit
        if now - self._heard_ms < limit:
            return self._heard_ms + limit
        probe = self._stamp(api_pb2.Request(op=api_pb2.STATS))
        try:
            self._sock.send(probe.SerializeToString(), zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # not taken: counts as sent (above)
        self._probe_ms = now
        return now + limit

    def _event_of(self, reply: api_pb2.Reply) -> api_pb2.Event:
        if reply.code != 0:  # the subscription ended: its scope may be watched again
            self._subscriptions.discard(reply.id)
            self._watched = {s: i for s, i in self._watched.items() if i != reply.id}
            if reply.code > 0:
                raise DecodeError(reply.message)
            raise error_for(reply.code, reply.message)
        if reply.schema_major > SCHEMA_MAJOR:
            raise VersionError(f"the node sent an event in schema {reply.schema_major}."
                               f"{reply.schema_minor}")
        return reply.event
