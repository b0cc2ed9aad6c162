"""Causal tokens as callers see them: the bytes of an encoded Token (proto/api.proto) in
base64url without padding, as libengram prints them (libsodium's URLSAFE_NO_PADDING), so a
token from the CLI, from libengram or from this package is the same text everywhere.

Invariant: the client never looks inside a token; encode(decode(t)) == t for every token t
this module accepts, and "" stands for no token.
"""
from __future__ import annotations

import base64
import binascii
import re

from .errors import InvalidArgument

_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def encode(token: bytes) -> str:
    """The printable form of token's bytes ("" for none)."""
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")


def decode(text: str | None) -> bytes:
    """The bytes of a printable token (b"" for None or ""). Raises InvalidArgument if text is
    not base64url without padding."""
    if not text:
        return b""
    if not isinstance(text, str) or not _BASE64URL.match(text) or len(text) % 4 == 1:
        raise InvalidArgument("the token is not base64url")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except binascii.Error:
        raise InvalidArgument("the token is not base64url") from None
    if encode(raw) != text:  # stray bits in the last character: libsodium refuses them too
        raise InvalidArgument("the token is not base64url")
    return raw
