"""Opaque NextToken pagination for the list operations the sandbox serves itself.

A token carries the offset into the result list and a fingerprint of the request's filters, so a
token replayed with different filters is refused like AWS refuses a foreign token, instead of
silently returning the wrong page.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def fingerprint(*parts: Any) -> str:
    """A short stable digest of the request fields that select the result set."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_token(offset: int, scope: str) -> str:
    raw = json.dumps({"o": offset, "s": scope}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, scope: str) -> int | None:
    """The offset a token points at, or None when it is not one of ours for this request."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset = data["o"]
        if data["s"] != scope or not isinstance(offset, int) or offset < 0:
            return None
        return offset
    except (ValueError, KeyError, TypeError):
        return None


def page(
    items: Sequence[T],
    token: str | None,
    limit: int,
    scope: str,
    invalid_token: Callable[[], Exception],
) -> tuple[list[T], str | None]:
    """One page of ``items`` and the token for the next one (None on the last page)."""
    offset = 0
    if token:
        decoded = decode_token(token, scope)
        if decoded is None or decoded > len(items):
            raise invalid_token()
        offset = decoded
    chunk = list(items[offset : offset + limit])
    end = offset + len(chunk)
    return chunk, (encode_token(end, scope) if end < len(items) else None)
