"""Memory: engram's Python client, shaped like mem0's Memory (add, search, get, get_all,
update, delete, history) over libengram's wire protocol (connection.py), with engram's own
calls beside: causal tokens (``after=``), compare-and-set (``update(expected_version=)``),
forget by filter, context blocks, sharing, typed objects (sets, counters, logs) and watching
a scope's changes.

Defaults come from the environment as the engram CLI takes them: ENGRAM_AGENT ("cli"),
ENGRAM_USER (else USER, else "anonymous"), ENGRAM_SOCKET (ipc:///tmp/engram.sock),
ENGRAM_HOME (~/.engram; the agent's key pair is ENGRAM_HOME/agents/AGENT.cert_secret) and
ENGRAM_SERVER_KEY (the node's key; else PATH.pub beside an ipc://PATH socket).

Units: times are seconds (float) in this API and milliseconds on the wire; ``as_of`` is a
datetime or milliseconds since the epoch. Text is UTF-8; values may be bytes.

Invariants: every call has a deadline (``timeout``, plus the wait a causal token may ask for
on reads); every failure is an EngramError subclass carrying the node's code; a Memory is one
connection, for one thread at a time (ZeroMQ sockets are not thread-safe).
"""
from __future__ import annotations

import datetime
import json
import os
import struct
import weakref
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence, Union

from . import tokens
from .connection import (DEFAULT_AFTER_TIMEOUT_MS, DEFAULT_API_ENDPOINT,
                         DEFAULT_CLIENT_TIMEOUT_MS, DEFAULT_REPLICAS_TIMEOUT_MS, MAX_PAGE,
                         Connection, api_pb2)
from .errors import InvalidArgument, StorageError
from .keys import default_home
from .results import (ContextResult, Event, GetResult, MemoryItem, Page, SearchResult,
                      WriteResult)

# A causal token: its text, or any result carrying one (``.token``).
After = Union[str, WriteResult, GetResult, Page, SearchResult, ContextResult, Event, None]
Filters = Union[Mapping[str, Any], str, None]
# The writes that bring content, and so declare the sources it was derived from.
_CONTENT_OPS = (api_pb2.PUT, api_pb2.REMEMBER, api_pb2.SHARE, api_pb2.LOG_APPEND)


@dataclass(frozen=True)
class Settings:
    """Who a Memory acts as and where it connects, before the explicit arguments."""

    agent: str
    user: str
    socket: str
    home: str


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """The defaults the engram CLI takes from env (default: os.environ); an empty variable
    counts as unset."""
    env = os.environ if env is None else env
    return Settings(agent=env.get("ENGRAM_AGENT") or "cli",
                    user=env.get("ENGRAM_USER") or env.get("USER") or "anonymous",
                    socket=env.get("ENGRAM_SOCKET") or DEFAULT_API_ENDPOINT,
                    home=default_home(env))


def _ms(seconds: float | None, what: str) -> int:
    """seconds as whole milliseconds (None: 0)."""
    if seconds is None:
        return 0
    if seconds < 0:
        raise InvalidArgument(f"{what} cannot be negative")
    return int(round(seconds * 1000))


def _json(value: Filters, what: str) -> str:
    """A dict as JSON text; text is taken as JSON already; None is ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError) as why:
        raise InvalidArgument(f"{what} is not JSON: {why}") from None


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _embedding(values: Sequence[float] | None) -> bytes:
    """An embedding as the wire carries it: float32 little-endian."""
    return b"" if values is None else struct.pack(f"<{len(values)}f", *values)


def _token_text(after: After) -> str:
    return after if after is None or isinstance(after, str) else after.token


def _request(op: int, scope: str = "", key: str = "", **fields: Any) -> Any:
    return api_pb2.Request(op=op, scope=scope, key=key, **fields)


class Memory:
    """A connection to the local engram node as one agent acting for one user.

    >>> m = Memory(agent="researcher", user="alice")
    >>> r = m.add("the client wants a 2-page PDF", scope="run:q3-proposal")
    >>> m.search("client format", scope="run:q3-proposal", after=r).items[0].author
    'researcher'
    """

    def __init__(self, agent: str | None = None, user: str | None = None,
                 socket: str | None = None, home: str | None = None,
                 timeout: float = DEFAULT_CLIENT_TIMEOUT_MS / 1000,
                 server_key: str | None = None, after_timeout: float | None = None,
                 sources: Sequence[str] = ()) -> None:
        """agent, user, socket, home: None takes them from the environment
        (settings_from_env). timeout: seconds a call waits for its reply. server_key: the
        node's key (40 Z85 characters) instead of ENGRAM_SERVER_KEY or PATH.pub.
        after_timeout: seconds a node may hold a read for its causal token (None: the node's
        default, 2 s; it clamps to 60 s), after which the read fails with Timeout.
        sources: the resources (scopes) what this Memory writes is derived from, declared by
        every put, add, update, share and log append as the items' provenance (a reader needs
        read access to each); settable."""
        defaults = settings_from_env()
        self.agent = agent if agent is not None else defaults.agent
        self.user = user if user is not None else defaults.user
        self.socket = socket or defaults.socket
        self.home = home or defaults.home
        self.after_timeout_ms = _ms(after_timeout, "after_timeout")
        self.sources = list(sources)
        timeout_ms = _ms(timeout, "timeout")
        if timeout_ms <= 0:
            raise InvalidArgument("the timeout must be positive")
        self._conn = Connection(self.socket, self.agent, self.user, self.home, server_key,
                                timeout_ms)

    @property
    def timeout(self) -> float:
        """Seconds a call waits for its reply (engram_set_timeout); settable."""
        return self._conn.timeout_ms / 1000

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        timeout_ms = _ms(seconds, "timeout")
        if timeout_ms <= 0:
            raise InvalidArgument("the timeout must be positive")
        self._conn.timeout_ms = timeout_ms

    def close(self) -> None:
        """Closes the connection (its subscriptions end with it)."""
        self._conn.close()

    def __enter__(self) -> "Memory":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- requests ---------------------------------------------------------------------------

    def _write(self, request: Any, wait_ms: float | None = None) -> WriteResult:
        if request.op in _CONTENT_OPS:
            request.sources.extend(self.sources)
        return WriteResult.from_reply(self._conn.call(request, wait_ms))

    def _read(self, request: Any, after: After) -> Any:
        """Calls a read carrying the causal token after: the node may hold it that much
        longer, so the call waits that much longer too."""
        token = tokens.decode(_token_text(after))
        wait_ms = self._conn.timeout_ms
        if token:
            request.after = token
            request.timeout_ms = self.after_timeout_ms
            wait_ms += self.after_timeout_ms or DEFAULT_AFTER_TIMEOUT_MS
        return self._conn.call(request, wait_ms)

    def _all_pages(self, op: int, scope: str, key: str, after: After) -> Page:
        """Every page of a paged read, gathered (the last page's token)."""
        page = Page.from_reply(self._read(_request(op, scope, key, limit=MAX_PAGE), after))
        while page.next_cursor:
            more = Page.from_reply(self._read(
                _request(op, scope, key, cursor=page.next_cursor, limit=MAX_PAGE), after))
            if more.next_cursor and more.next_cursor == page.next_cursor:
                raise StorageError(f"the node repeated the cursor {more.next_cursor}")
            page = Page(more.token, page.items + more.items, more.next_cursor)
        return page

    # --- memories ---------------------------------------------------------------------------

    def add(self, text: str, scope: str = "private", metadata: Filters = None,
            id: str | None = None, ttl: float | None = None,
            embedding: Sequence[float] | None = None) -> WriteResult:
        """Remembers text (a register under a generated id, result.id) with its metadata (a
        dict, or JSON text). With id, the first add writes and later ones with the same id
        write nothing (result.created tells): a retried add stores once. ttl: seconds until
        it expires (None: never). embedding: the text's vector from the caller's model."""
        return self._write(_request(api_pb2.REMEMBER, scope, id or "", value=_bytes(text),
                                    meta_json=_json(metadata, "metadata"),
                                    ttl_ms=_ms(ttl, "ttl"), embedding=_embedding(embedding)))

    def put(self, key: str, value: str | bytes, scope: str = "private",
            metadata: Filters = None, ttl: float | None = None,
            embedding: Sequence[float] | None = None, replicas: int | None = None,
            replicas_timeout: float | None = None) -> WriteResult:
        """Writes value under key (a multi-value register). An overwrite without metadata keeps
        the winner's. replicas: answer once that many nodes (this one included) hold it, else
        FewerReplicas after replicas_timeout seconds (default 5)."""
        request = _request(api_pb2.PUT, scope, key, value=_bytes(value),
                           meta_json=_json(metadata, "metadata"), ttl_ms=_ms(ttl, "ttl"),
                           embedding=_embedding(embedding))
        wait_ms = None
        if replicas:
            request.replicas = replicas
            request.timeout_ms = _ms(replicas_timeout, "replicas_timeout")
            wait_ms = self._conn.timeout_ms + (request.timeout_ms or
                                               DEFAULT_REPLICAS_TIMEOUT_MS)
        return self._write(request, wait_ms)

    def update(self, key: str, text: str | bytes, scope: str = "private",
               expected_version: After = None, metadata: Filters = None,
               ttl: float | None = None) -> WriteResult:
        """Overwrites key. With expected_version (a token from a get or a write of scope, or
        that result), only if the register did not change since: else Conflict. A token
        taken before the key was first written makes it a create-if-absent."""
        request = _request(api_pb2.PUT, scope, key, value=_bytes(text),
                           meta_json=_json(metadata, "metadata"), ttl_ms=_ms(ttl, "ttl"))
        if expected_version is not None:
            request.if_version = tokens.decode(_token_text(expected_version))
            if not request.if_version:
                raise InvalidArgument("the version token is empty")
        return self._write(request)

    def get(self, key: str, scope: str = "private", after: After = None,
            as_of: datetime.datetime | int | None = None) -> GetResult:
        """The register under key: winner first, then concurrent siblings. NotFound if none.
        after: answer once this node has seen that token. as_of: the value at that time (a
        datetime, or ms since the epoch), replayed from the key's history."""
        request = _request(api_pb2.GET, scope, key)
        if as_of is not None:
            if isinstance(as_of, datetime.datetime):
                as_of = int(as_of.timestamp() * 1000)
            if as_of <= 0:
                raise InvalidArgument("as_of is a time after the epoch")
            request.as_of_ms = as_of
        return GetResult.from_reply(self._read(request, after))

    def delete(self, key: str, scope: str = "private") -> WriteResult:
        """Forgets the object under key, whatever its type."""
        return self._write(_request(api_pb2.DELETE, scope, key))

    def get_all(self, scope: str = "private", prefix: str | None = None,
                filters: Filters = None, limit: int | None = None, cursor: str | None = None,
                after: After = None) -> Page:
        """One page of scope's keys in key order (each item: key, type and, for a register or
        a log, a preview of its value), starting with prefix, keeping only registers and logs
        whose value matches filters (mem0's grammar); at most limit items (None: the node's
        page) after cursor. page.next_cursor resumes ("" at the end); a filtered page may
        hold fewer than limit items, even none, while next_cursor goes on. scan() walks
        every page."""
        request = _request(api_pb2.LIST, scope, prefix=prefix or "",
                           filter_json=_json(filters, "filters"), cursor=cursor or "",
                           limit=limit or 0)
        return Page.from_reply(self._read(request, after))

    def scan(self, scope: str = "private", prefix: str | None = None, filters: Filters = None,
             page_size: int | None = None, after: After = None) -> Iterator[MemoryItem]:
        """Every key get_all would list, page after page."""
        cursor = ""
        while True:
            page = self.get_all(scope, prefix, filters, page_size, cursor, after)
            yield from page.items
            if not page.next_cursor:
                return
            if page.next_cursor == cursor:
                raise StorageError(f"the node repeated the cursor {cursor}")
            cursor = page.next_cursor

    def history(self, key: str, scope: str = "private", after: After = None) -> Page:
        """Every step of key's history, oldest first (item.op: put, delete, set_add, ...)."""
        return self._all_pages(api_pb2.HISTORY, scope, key, after)

    def share(self, key: str, scope: str) -> WriteResult:
        """Copies the private memory under key into the shared scope, keeping its
        provenance."""
        return self._write(_request(api_pb2.SHARE, scope, key))

    def forget(self, filters: Filters, scope: str = "private", dry_run: bool = True) -> int:
        """Deletes every memory (register or log) of scope whose value matches filters (not
        empty), each as delete() does; dry_run (the default) only counts. Returns how many
        were (would be) deleted."""
        count, cursor = 0, ""
        while True:
            reply = self._conn.call(_request(api_pb2.FORGET, scope,
                                             filter_json=_json(filters, "filters"),
                                             dry_run=dry_run, cursor=cursor))
            count += reply.number
            if not reply.next_cursor:
                return count
            if reply.next_cursor == cursor:
                raise StorageError(f"the node repeated the cursor {cursor}")
            cursor = reply.next_cursor

    def vote(self, key: str, amount: int = 1, scope: str = "private") -> WriteResult:
        """Votes for (+1) or against (-1) the memory under key; result.number is the sum,
        which search(votes=True) uses."""
        return self._write(_request(api_pb2.VOTE, scope, key, amount=amount))

    # --- search -----------------------------------------------------------------------------

    def _search_request(self, op: int, query: str, scope: str | None,
                        scopes: Sequence[str] | None, filters: Filters, top_k: int | None,
                        threshold: float | None, mode: str | None,
                        embedding: Sequence[float] | None, half_life: float | None,
                        votes: bool, explain: bool) -> Any:
        searched = ([scope] if scope else []) + list(scopes or [])
        return _request(op, query=query, scopes=searched, filter_json=_json(filters, "filters"),
                        top_k=top_k or 0, threshold=threshold or 0.0, mode=mode or "",
                        embedding=_embedding(embedding),
                        half_life_ms=float(_ms(half_life, "half_life")), votes=votes,
                        explain=explain)

    def search(self, query: str, scope: str | None = None, scopes: Sequence[str] | None = None,
               filters: Filters = None, top_k: int | None = None,
               threshold: float | None = None, mode: str | None = None,
               embedding: Sequence[float] | None = None, after: After = None,
               half_life: float | None = None, votes: bool = False,
               explain: bool = False) -> SearchResult:
        """Memories matching query, best first, in scope and scopes (none: every scope this
        agent may read for its user, private included), filtered by filters (mem0's grammar,
        e.g. {"AND": [{"author": "researcher"}]}), at most top_k (default 10), scoring at
        least threshold. mode: "keyword" (BM25), "vector" (cosine of embeddings) or
        "hybrid" (default with an embedding, else keyword). half_life: seconds; recent
        memories score up to twice as much. votes: usefulness votes boost. explain: each
        item's explain_json shows its score's components."""
        request = self._search_request(api_pb2.SEARCH, query, scope, scopes, filters, top_k,
                                       threshold, mode, embedding, half_life, votes, explain)
        return SearchResult.from_reply(self._read(request, after))

    def context(self, query: str, tokens: int, scope: str | None = None,
                scopes: Sequence[str] | None = None, filters: Filters = None,
                top_k: int | None = None, threshold: float | None = None,
                mode: str | None = None, embedding: Sequence[float] | None = None,
                after: After = None, half_life: float | None = None,
                votes: bool = False) -> ContextResult:
        """A prompt block of the memories search() finds, within a budget of tokens (one per
        4 bytes): a header line, then "- WHEN UTC, AUTHOR in SCOPE (KEY): TEXT" per memory."""
        if tokens <= 0:
            raise InvalidArgument("a context needs a budget of tokens")
        request = self._search_request(api_pb2.CONTEXT, query, scope, scopes, filters, top_k,
                                       threshold, mode, embedding, half_life, votes, False)
        request.tokens = tokens
        return ContextResult.from_reply(self._read(request, after))

    # --- typed objects, watching, the node --------------------------------------------------

    def set(self, scope: str, key: str) -> "SetObject":
        """The add-wins set under key."""
        return SetObject(self, scope, key)

    def counter(self, scope: str, key: str) -> "Counter":
        """The counter under key."""
        return Counter(self, scope, key)

    def log(self, scope: str, key: str) -> "Log":
        """The append-only log under key."""
        return Log(self, scope, key)

    def watch(self, scope: str, timeout: float | None = None) -> "Watch":
        """Subscribes to scope's changes now and returns an iterator of its Events in commit
        order; iteration ends when none came within timeout seconds (None: waits for ever)."""
        return Watch(self._conn, scope, timeout)

    def stats(self) -> dict[str, Any]:
        """The node's counters (proto/api.proto Stats), by name."""
        stats = self._conn.call(_request(api_pb2.STATS)).stats
        return {f.name: getattr(stats, f.name) for f in stats.DESCRIPTOR.fields}


class SetObject:
    """An add-wins set of strings under (scope, key)."""

    def __init__(self, memory: Memory, scope: str, key: str) -> None:
        self.memory, self.scope, self.key = memory, scope, key

    def add(self, elem: str) -> WriteResult:
        """Adds elem (an add concurrent with its removal wins)."""
        return self.memory._write(_request(api_pb2.SET_ADD, self.scope, self.key, elem=elem))

    def remove(self, elem: str) -> WriteResult:
        """Removes elem, as far as this node has seen it added."""
        return self.memory._write(_request(api_pb2.SET_REMOVE, self.scope, self.key,
                                           elem=elem))

    def members(self, after: After = None) -> list[str]:
        """Every member, in element order."""
        page = self.memory._all_pages(api_pb2.SET_MEMBERS, self.scope, self.key, after)
        return [item.text for item in page.items]


class Counter:
    """A counter (a PN-counter: adds and subtracts) under (scope, key)."""

    def __init__(self, memory: Memory, scope: str, key: str) -> None:
        self.memory, self.scope, self.key = memory, scope, key

    def add(self, amount: int = 1) -> WriteResult:
        """Adds amount (may be negative); result.number is the value after it."""
        return self.memory._write(_request(api_pb2.COUNTER_ADD, self.scope, self.key,
                                           amount=amount))

    def value(self, after: After = None) -> int:
        """The counter's value; NotFound if there is no counter under key. after: answer once
        this node has seen that token."""
        return self.memory._read(_request(api_pb2.COUNTER_GET, self.scope, self.key),
                                 after).number


class Log:
    """An append-only log of texts under (scope, key)."""

    def __init__(self, memory: Memory, scope: str, key: str) -> None:
        self.memory, self.scope, self.key = memory, scope, key

    def append(self, text: str | bytes) -> WriteResult:
        """Appends text (str or bytes) at the log's end."""
        return self.memory._write(_request(api_pb2.LOG_APPEND, self.scope, self.key,
                                           value=_bytes(text)))

    def entries(self, after: After = None) -> list[MemoryItem]:
        """Every entry in log order, with its author."""
        return self.memory._all_pages(api_pb2.LOG_RANGE, self.scope, self.key, after).items


class Watch:
    """The changes of one scope, subscribed when made: iterate for Events (ending when none
    came within the timeout), or call next_event(). close() unsubscribes; so does the next
    call, watch or next_event of its Memory once the Watch was dropped unclosed (its events
    would otherwise pile up unread until the client's backlog ends every watch of the
    Memory)."""

    def __init__(self, conn: Connection, scope: str, timeout: float | None) -> None:
        self.scope = scope
        self.timeout_ms = None if timeout is None else _ms(timeout, "timeout")
        self._conn = conn
        self._id: int | None = conn.subscribe(scope)
        self._dropped = weakref.finalize(self, conn.abandon, self._id, scope)

    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event, or None if none came within timeout seconds (None: the watch's)."""
        if self._id is None:
            raise InvalidArgument("the watch is closed")
        timeout_ms = self.timeout_ms if timeout is None else _ms(timeout, "timeout")
        event = self._conn.next_event(timeout_ms, self._id)
        return None if event is None else Event.from_proto(event)

    def __iter__(self) -> Iterator[Event]:
        while True:
            event = self.next_event()
            if event is None:
                return
            yield event

    def close(self) -> None:
        """Unsubscribes (idempotent); next_event then raises InvalidArgument."""
        if self._id is not None:
            self._dropped.detach()
            subscription, self._id = self._id, None
            self._conn.unsubscribe(subscription, self.scope)

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
