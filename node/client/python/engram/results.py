"""What engram calls return: plain dataclasses built from the node's Reply (proto/api.proto).

Every result carries ``token``, the causal token of the scopes the call touched (printable,
tokens.py): pass it, or the result itself, as ``after=`` to a read on any node to have that
node answer once it has seen everything the token covers.

Invariants: results are copies; nothing in them refers to protobuf messages. Strings are never
None ("" when absent); values are bytes, ``text`` is their UTF-8 reading.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator

from . import tokens


@dataclass
class MemoryItem:
    """One row: a register value or sibling, a set member, a log entry, a listed key, a
    history step, or a search result (with scope and score)."""

    key: str = ""
    type: str = ""
    value: bytes = b""
    meta_json: str = ""
    author: str = ""  # the agent that wrote this version
    user: str = ""
    agents: list[str] = field(default_factory=list)  # provenance: contributing agents
    resources: list[str] = field(default_factory=list)  # provenance: source resources
    hlc: int = 0
    node: int = 0  # the version's dot: node and n
    n: int = 0
    created_hlc: int = 0
    expires_at_ms: int = 0  # 0: never
    op: str = ""  # history: put, delete, set_add, ...
    amount: int = 0  # history of counters
    scope: str = ""  # search: the scope the result is in
    score: float = 0.0  # search: higher first
    explain_json: str = ""  # search with explain: the score's components

    @classmethod
    def from_proto(cls, item: Any) -> "MemoryItem":
        """A copy of an Item of the node's Reply."""
        return cls(key=item.key, type=item.type, value=bytes(item.value),
                   meta_json=item.meta_json, author=item.author, user=item.user,
                   agents=list(item.agents), resources=list(item.resources), hlc=item.hlc,
                   node=item.node, n=item.n, created_hlc=item.created_hlc,
                   expires_at_ms=item.expires_at_ms, op=item.op, amount=item.amount,
                   scope=item.scope, score=item.score, explain_json=item.explain_json)

    @property
    def text(self) -> str:
        """The value read as UTF-8 (bytes that are not become U+FFFD)."""
        return self.value.decode("utf-8", errors="replace")

    @property
    def metadata(self) -> dict[str, Any]:
        """The metadata as a dict ({} when none)."""
        return json.loads(self.meta_json) if self.meta_json else {}


def _items(reply: Any) -> list[MemoryItem]:
    return [MemoryItem.from_proto(item) for item in reply.items]


@dataclass
class WriteResult:
    """A write's answer. ``id``: a memory's id (add); ``created``: whether add with an id
    wrote it (False: that id held a memory already); ``number``: a counter's value after an
    add, or a vote's sum; ``replicas``: nodes that held a replicated put when answered."""

    token: str
    id: str = ""
    number: int = 0
    replicas: int = 0

    @property
    def created(self) -> bool:
        """Whether an add with an id stored it (False: the id held a memory already)."""
        return self.number == 1

    @classmethod
    def from_reply(cls, reply: Any) -> "WriteResult":
        """The result a node's Reply to a write carries."""
        return cls(token=tokens.encode(reply.token), id=reply.memory_id, number=reply.number,
                   replicas=reply.replicas)


@dataclass
class GetResult:
    """A register's value: ``items`` holds the winner first, then concurrent siblings."""

    token: str
    items: list[MemoryItem]

    @classmethod
    def from_reply(cls, reply: Any) -> "GetResult":
        """The result a node's Reply carries."""
        return cls(token=tokens.encode(reply.token), items=_items(reply))

    @property
    def item(self) -> MemoryItem:
        """The winner."""
        return self.items[0]

    @property
    def value(self) -> bytes:
        """The winner's value, as bytes."""
        return self.items[0].value

    @property
    def text(self) -> str:
        """The winner's value read as UTF-8."""
        return self.items[0].text

    @property
    def author(self) -> str:
        """The agent that wrote the winner."""
        return self.items[0].author

    @property
    def metadata(self) -> dict[str, Any]:
        """The winner's metadata as a dict ({} when none)."""
        return self.items[0].metadata

    @property
    def siblings(self) -> list[MemoryItem]:
        """The concurrent values beside the winner (none once they are resolved)."""
        return self.items[1:]


@dataclass
class Page:
    """One page of a paged read (keys, members, log entries, history steps), or all of them:
    ``next_cursor`` resumes after it ("" at the end). Iterating a page gives its items."""

    token: str
    items: list[MemoryItem]
    next_cursor: str = ""

    @classmethod
    def from_reply(cls, reply: Any) -> "Page":
        """The result a node's Reply carries."""
        return cls(token=tokens.encode(reply.token), items=_items(reply),
                   next_cursor=reply.next_cursor)

    def __iter__(self) -> Iterator[MemoryItem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class SearchResult:
    """Memories a search found, best first; each item has scope, key, value, author and
    provenance, and score. Iterating gives the items."""

    token: str
    items: list[MemoryItem]

    @classmethod
    def from_reply(cls, reply: Any) -> "SearchResult":
        """The result a node's Reply carries."""
        return cls(token=tokens.encode(reply.token), items=_items(reply))

    def __iter__(self) -> Iterator[MemoryItem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class ContextResult:
    """A prompt block of the best memories within a budget: ``text`` the block, ``items`` the
    memories in it, ``tokens`` its size in tokens (one per 4 bytes)."""

    token: str
    text: str
    items: list[MemoryItem]
    tokens: int

    @classmethod
    def from_reply(cls, reply: Any) -> "ContextResult":
        """The result a node's Reply carries."""
        return cls(token=tokens.encode(reply.token), text=reply.context, items=_items(reply),
                   tokens=reply.number)


@dataclass
class Event:
    """A committed change of a watched scope: op as in history (put, delete, set_add, ...;
    counter_changed with item.amount the counter's new value), by author."""

    scope: str
    key: str
    op: str
    author: str
    item: MemoryItem
    token: str

    @classmethod
    def from_proto(cls, event: Any) -> "Event":
        """A copy of an Event of the node's Reply."""
        return cls(scope=event.scope, key=event.key, op=event.op, author=event.author,
                   item=MemoryItem.from_proto(event.item), token=tokens.encode(event.token))
