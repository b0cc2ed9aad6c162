"""engram: shared memory for AI agents, from Python.

A client of the local engram node speaking libengram's wire protocol (proto/api.proto over
ZeroMQ with CURVE), with an API shaped like mem0's::

    from engram import Memory, Conflict
    m = Memory(agent="researcher", user="alice")          # ENGRAM_* defaults otherwise
    r = m.add("client wants 2 pages", scope="run:q3-proposal", metadata={"kind": "req"})
    hits = m.search("client requirements", scope="run:q3-proposal", after=r)

Modules: client (Memory and the typed objects), results (the dataclasses calls return),
errors (EngramError and one subclass per ENGRAM_E* code), connection (the transport), keys
(the CURVE keys, found as libengram finds them), tokens (causal tokens as text).
"""
from .client import Counter, Log, Memory, SetObject, Settings, Watch, settings_from_env
from .errors import (Busy, Conflict, DecodeError, Denied, DotReuse, EngramError, FewerReplicas,
                     InvalidArgument, InvalidScope, Lagged, NoSpace, NotFound, OutOfMemory,
                     OutOfRange, ReadOnly, StorageError, Timeout, TooBig, Unavailable,
                     VersionError, WrongType, error_for, strerror)
from .results import (ContextResult, Event, GetResult, MemoryItem, Page, SearchResult,
                      WriteResult)

__all__ = [
    "Memory", "SetObject", "Counter", "Log", "Watch", "Settings", "settings_from_env",
    "MemoryItem", "WriteResult", "GetResult", "Page", "SearchResult", "ContextResult", "Event",
    "EngramError", "InvalidArgument", "OutOfMemory", "DecodeError", "VersionError", "WrongType",
    "NotFound", "TooBig", "DotReuse", "OutOfRange", "Unavailable", "Timeout", "StorageError",
    "NoSpace", "ReadOnly", "InvalidScope", "Lagged", "FewerReplicas", "Denied", "Busy",
    "Conflict", "error_for", "strerror",
]
