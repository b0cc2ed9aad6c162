"""The CURVE keys of a connection, found as libengram's engram_connect finds them.

- The agent's key pair: $ENGRAM_HOME/agents/AGENT.cert_secret (ENGRAM_HOME defaults to
  ~/.engram), the zcert file `engram agent create` or `engram init` wrote. A zcert file is
  czmq's zconfig text: a "curve" section holding public-key and secret-key, 40 Z85 characters
  each, quoted or not, under "#" comments and a "metadata" section.
- The node's public key, always pinned, never taken on first use: ENGRAM_SERVER_KEY (40 Z85
  characters) when set and not empty, else, for an endpoint ipc://PATH, the certificate the
  node publishes beside its socket, PATH.pub.

Invariants: keys are 32 bytes; a file that is not such a certificate is refused, never half
read. What is missing is an EngramError that says which file and what makes it: Denied, or
Unavailable when PATH.pub does not exist (engramd publishes it while it serves PATH, so none
there means no node there). Nothing here touches a socket.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping

from zmq.utils import z85

from .errors import Denied, Unavailable

# A zcert file is a few hundred bytes; anything much larger is not one.
CERT_MAX_BYTES = 64 * 1024
_Z85_KEY = re.compile(r"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")


def z85_key(text: str | None) -> bytes | None:
    """The 32-byte key that text (40 Z85 characters) encodes, or None if it is not one."""
    if text is None or not _Z85_KEY.match(text):
        return None
    return z85.decode(text.encode("ascii"))


def parse_zconfig(text: str) -> dict[str, str]:
    """The values of a zconfig document by path ("curve/public-key"). Each level of nesting
    is four spaces; a value is quoted with " or ', or runs to a comment or the line's end."""
    values: dict[str, str] = {}
    path: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        depth = indent // 4
        name, sep, rest = stripped.partition("=")
        name = name.strip()
        path = path[:depth] + [name]
        if not sep:
            continue
        rest = rest.strip()
        if rest[:1] in ("\"", "'") and rest[0] in rest[1:]:
            value = rest[1:rest.index(rest[0], 1)]
        else:
            value = rest.split("#", 1)[0].strip()
        values["/".join(path)] = value
    return values


def load_cert(path: str, secret: bool) -> tuple[bytes, bytes | None]:
    """The public key and, if secret, the secret key of the zcert file at path. Raises
    OSError for a file that cannot be read, ValueError for one that is not a certificate (a
    secret one, if secret)."""
    with open(path, "rb") as file:
        data = file.read(CERT_MAX_BYTES + 1)
    if len(data) > CERT_MAX_BYTES:
        raise ValueError("not a CURVE certificate (too large)")
    values = parse_zconfig(data.decode("utf-8", errors="replace"))
    public_key = z85_key(values.get("curve/public-key"))
    secret_key = z85_key(values.get("curve/secret-key")) if secret else None
    if public_key is None or (secret and secret_key is None):
        raise ValueError("not a secret CURVE certificate (zcert)" if secret
                         else "not a CURVE certificate")
    return public_key, secret_key


def agent_file_name(name: str) -> bool:
    """Whether name can name a file of $ENGRAM_HOME/agents."""
    return bool(name) and "/" not in name and name not in (".", "..")


def default_home(env: Mapping[str, str] | None = None) -> str:
    """$ENGRAM_HOME of env (default: os.environ), else ~/.engram ($HOME's; "./.engram"
    without a HOME); an empty variable counts as unset."""
    env = os.environ if env is None else env
    return env.get("ENGRAM_HOME") or os.path.join(env.get("HOME") or ".", ".engram")


@dataclass
class KeySource:
    """Where a connection finds its keys: the agent's secret certificate, and the node's key
    as text (server_text, from ENGRAM_SERVER_KEY or the caller) or as a file (server_path,
    PATH.pub). server_from says which, for error messages."""

    agent: str
    endpoint: str
    key_path: str | None
    server_text: str | None
    server_path: str | None
    server_from: str

    @classmethod
    def find(cls, endpoint: str, agent: str, home: str | None,
             server_key: str | None) -> "KeySource":
        """The sources engram_connect would use for agent at endpoint. home None: ENGRAM_HOME's
        default; server_key None: ENGRAM_SERVER_KEY, else PATH.pub for ipc://PATH."""
        key_path = None
        if agent_file_name(agent):
            key_path = os.path.join(home or default_home(), "agents", f"{agent}.cert_secret")
        server_text = server_key if server_key else os.environ.get("ENGRAM_SERVER_KEY") or None
        server_from = "the caller" if server_key else "ENGRAM_SERVER_KEY"
        server_path = None
        path = endpoint[len("ipc://"):] if endpoint.startswith("ipc://") else ""
        if server_text is None and path and not path.startswith("@") and path != "*":
            server_path = server_from = path + ".pub"
        return cls(agent, endpoint, key_path, server_text, server_path, server_from)

    def load(self) -> tuple[bytes, bytes, bytes]:
        """(public, secret, server) keys, or the EngramError that says what is missing."""
        if self.key_path is None:
            raise Denied(f"'{self.agent}' is not an agent name, so it has no key "
                         "($ENGRAM_HOME/agents/AGENT)")
        try:
            public_key, secret_key = load_cert(self.key_path, secret=True)
        except (OSError, ValueError) as why:
            reason = why.strerror if isinstance(why, OSError) and why.strerror else str(why)
            raise Denied(f"no key for agent '{self.agent}': {self.key_path}: {reason} "
                         f"(`engram agent create {self.agent}` makes it)") from None
        assert secret_key is not None
        if self.server_text is not None:
            server_key = z85_key(self.server_text)
            if server_key is None:
                raise Denied(f"{self.server_from} is not a node's key: 40 Z85 characters, as "
                             "`engramd --data DIR --identity` prints after api=")
            return public_key, secret_key, server_key
        if self.server_path is None:
            raise Denied(f"no key for the node at {self.endpoint}: set ENGRAM_SERVER_KEY "
                         "(`engramd --data DIR --identity` prints it after api=)")
        try:
            server_key, _ = load_cert(self.server_path, secret=False)
        except (OSError, ValueError) as why:
            reason = why.strerror if isinstance(why, OSError) and why.strerror else str(why)
            error = Unavailable if isinstance(why, FileNotFoundError) else Denied
            raise error(f"no key for the node at {self.endpoint}: {self.server_path}: {reason} "
                        f"(start engramd, which publishes {self.server_path}, or set "
                        "ENGRAM_SERVER_KEY)") from None
        return public_key, secret_key, server_key
