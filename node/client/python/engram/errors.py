"""engram's error codes as Python exceptions.

Every failed call raises an EngramError whose ``code`` is the negative ENGRAM_E* code of
include/engram/error.h (the wire protocol's Reply.code and the CLI's exit status) and whose
``name`` is that code's name ("ENGRAM_EDENIED"). Each code has its own subclass, so callers
catch what they can handle (``except engram.NotFound``) and let the rest through.

Invariant: CODES mirrors ENGRAM_ERRORS of include/engram/error.h, name, value and message; the
unit tests read the header and compare. Codes are appended there, never renumbered: a code
this module does not know still raises an EngramError, with the name "ENGRAM_E<code>".
"""
from __future__ import annotations

# (value, name, message), as ENGRAM_ERRORS lists them.
CODES: tuple[tuple[int, str, str], ...] = (
    (-1, "ENGRAM_EINVAL", "invalid argument"),
    (-2, "ENGRAM_ENOMEM", "out of memory"),
    (-3, "ENGRAM_EDECODE", "malformed encoding"),
    (-4, "ENGRAM_EVERSION", "encoded by a newer major schema version than this build reads"),
    (-5, "ENGRAM_ETYPE", "object exists with another type"),
    (-6, "ENGRAM_ENOTFOUND", "not found"),
    (-7, "ENGRAM_ETOOBIG", "value or message too large"),
    (-8, "ENGRAM_EDOTREUSE", "a dot was issued twice for different content"),
    (-9, "ENGRAM_ERANGE", "out of range"),
    (-10, "ENGRAM_EUNAVAILABLE", "node unavailable"),
    (-11, "ENGRAM_ETIMEDOUT", "timed out waiting for the causal token"),
    (-12, "ENGRAM_EIO", "storage failure"),
    (-13, "ENGRAM_ENOSPC", "no space left on the data volume"),
    (-14, "ENGRAM_EREADONLY", "the data directory is read-only"),
    (-15, "ENGRAM_ESCOPE", "invalid scope name"),
    (-16, "ENGRAM_ELAGGED", "subscriber fell too far behind"),
    (-17, "ENGRAM_EREPLICAS", "durable here, but fewer nodes than asked hold the write yet"),
    (-18, "ENGRAM_EDENIED", "access denied"),
    (-19, "ENGRAM_EBUSY", "too many requests waiting; retry later"),
    (-20, "ENGRAM_ECONFLICT", "the object changed since the version the write expected"),
)

_NAMES = {value: name for value, name, _ in CODES}
_MESSAGES = {value: message for value, _, message in CODES}


def strerror(code: int) -> str:
    """The message of code, as engram_strerror gives it ("unknown error" for another)."""
    return "success" if code == 0 else _MESSAGES.get(code, "unknown error")


class EngramError(Exception):
    """A failed engram call: ``code`` (negative ENGRAM_E*), ``name`` ("ENGRAM_EDENIED") and
    ``message``, the node's words for it (or the client's), "" when it gave none."""

    code: int = 0

    def __init__(self, message: str = "", code: int | None = None) -> None:
        """message: what went wrong; code: the ENGRAM_E* code (default: the class's)."""
        self.code = self.code if code is None else code
        self.name = _NAMES.get(self.code, f"ENGRAM_E{self.code}")
        self.message = message
        text = strerror(self.code)
        super().__init__(f"{text}: {message}" if message else text)


class InvalidArgument(EngramError, ValueError):
    """A request the node (or the client) refused as malformed: a bad filter, token or option."""

    code = -1


class OutOfMemory(EngramError, MemoryError):
    """The node ran out of memory for the request."""

    code = -2


class DecodeError(EngramError):
    """A message or stored record that does not decode."""

    code = -3


class VersionError(EngramError):
    """Data encoded by a newer major schema version than this build reads."""

    code = -4


class WrongType(EngramError, TypeError):
    """The key holds an object of another type (a set where a counter was asked)."""

    code = -5


class NotFound(EngramError, LookupError):
    """No such key, memory or object (also a LookupError)."""

    code = -6


class TooBig(EngramError):
    """A value or message over the node's limits."""

    code = -7


class DotReuse(EngramError):
    """A dot issued twice for different content: a replica's state is inconsistent."""

    code = -8


class OutOfRange(EngramError):
    """A value out of its range: a counter that would overflow, a clock too far ahead."""

    code = -9


class Unavailable(EngramError, ConnectionError):
    """No node answered in time, or none is there (also a ConnectionError)."""

    code = -10


class Timeout(EngramError, TimeoutError):
    """The node did not see the causal token in time (also a TimeoutError)."""

    code = -11


class StorageError(EngramError):
    """The node's storage failed (the client raises it too for a reply that cannot be right)."""

    code = -12


class NoSpace(EngramError):
    """The node's data volume is full."""

    code = -13


class ReadOnly(EngramError):
    """The node's data directory is read-only."""

    code = -14


class InvalidScope(EngramError, ValueError):
    """A scope name the node does not take (a scope is "private" or "kind:id")."""

    code = -15


class Lagged(EngramError):
    """A watch fell too far behind the scope's changes and was ended."""

    code = -16


class FewerReplicas(EngramError):
    """The write is durable here, but fewer nodes than asked held it in time."""

    code = -17


class Denied(EngramError, PermissionError):
    """Access control refused the call, or a key is missing (also a PermissionError)."""

    code = -18


class Busy(EngramError):
    """The node has too many requests waiting: retry later."""

    code = -19


class Conflict(EngramError):
    """The object changed since the version the write expected: read it again."""

    code = -20


_CLASSES: dict[int, type[EngramError]] = {
    cls.code: cls for cls in EngramError.__subclasses__()  # every subclass above, by its code
}


def error_for(code: int, message: str = "") -> EngramError:
    """The exception for code: its own subclass, or EngramError for a code not listed."""
    return _CLASSES.get(code, EngramError)(message, code=code)
