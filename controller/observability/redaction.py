"""Secret redaction for every text the controller emits (logs, plan output, exceptions, metrics).

Activation codes are returned by AWS exactly once and grant the right to register machines into
the account, so they must never be printed. Two independent nets catch them:

* by *name*: a value stored under a key that looks like a secret (``activation_code``,
  ``ActivationCode``, ``*_secret``, ``password``, ``token``, ...) is replaced, even if nobody
  registered the value;
* by *value*: every string passed to :func:`register_secret` is replaced wherever it appears, in
  any string, however deeply nested, including formatted tracebacks and the event message.

The structlog processor :func:`redact_event` runs last before rendering (see ``logging.py``);
:func:`redact_text` is for output that does not go through logging.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"

# Shorter strings would mangle ordinary text wherever they occur; real secrets are far longer
# (an activation code is 20..250 characters), so a short one is a caller bug: refuse loudly.
MIN_SECRET_LENGTH = 6

# Keys are compared after lower-casing and dropping everything but letters and digits, so
# ``activation_code``, ``ActivationCode`` and ``activation-code`` are the same key.
_EXACT_SECRET_KEYS = frozenset({"code", "cookie", "setcookie"})
_SECRET_KEY_PARTS = (
    "secret",
    "password",
    "passwd",
    "passphrase",
    "token",
    "credential",
    "activationcode",
    "authorization",
    "apikey",
    "privatekey",
    "signature",
)
# Opaque pagination cursors: named like tokens, not secrets, and useful when debugging paging.
_NOT_SECRET_KEYS = frozenset({"nexttoken", "paginationtoken", "continuationtoken"})

# Most secrets (activation codes, AWS keys and session tokens) are made of "token" characters. A
# fleet that enrolls thousands of WorkSpaces registers one code each, so those are kept in sets by
# length and found by looking only inside runs of token characters: the cost of a scan grows with
# the text and the number of distinct lengths, not with the number of secrets (a regex alternation
# of 10,000 codes took milliseconds per log line). Other secrets keep the alternation.
_TOKEN_RUN = re.compile(rf"[A-Za-z0-9+/=_\-]{{{MIN_SECRET_LENGTH},}}")

_lock = threading.Lock()
_secrets: set[str] = set()
_token_secrets: dict[int, set[str]] = {}  # length -> secrets of that length
_token_lengths: tuple[int, ...] = ()  # longest first, so a secret containing another wins
_pattern: re.Pattern[str] | None = None  # secrets with other characters


def _normalise_key(key: str) -> str:
    return "".join(ch for ch in key.lower() if ch.isalnum())


def is_secret_key(key: str) -> bool:
    """True when a value stored under ``key`` must be redacted whatever it is."""
    norm = _normalise_key(key)
    if norm in _NOT_SECRET_KEYS:
        return False
    return norm in _EXACT_SECRET_KEYS or any(part in norm for part in _SECRET_KEY_PARTS)


def register_secret(value: str) -> None:
    """Redact ``value`` from now on, everywhere. Call it the moment a secret is first seen.

    Registered secrets are never forgotten: a rotated-out activation code is still a secret.
    """
    global _pattern, _token_lengths
    if not isinstance(value, str):
        raise TypeError("secrets are strings")
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"refusing to register a secret shorter than {MIN_SECRET_LENGTH} characters: "
            "it cannot be redacted without destroying ordinary text"
        )
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        if _TOKEN_RUN.fullmatch(value):
            # The set for a length exists before its length is published, so a concurrent scan
            # never looks up a length without a set (membership tests need no lock).
            _token_secrets.setdefault(len(value), set()).add(value)
            _token_lengths = tuple(sorted(_token_secrets, reverse=True))
            return
        # Longest first so that a secret containing another is replaced whole.
        others = sorted((s for s in _secrets if not _TOKEN_RUN.fullmatch(s)), key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in others))


def _token_spans(text: str) -> list[tuple[int, int]]:
    """Where token-shaped secrets occur in ``text``: (start, end), in order, not overlapping."""
    index, lengths = _token_secrets, _token_lengths
    if not lengths:
        return []
    shortest = lengths[-1]
    spans: list[tuple[int, int]] = []
    for run in _TOKEN_RUN.finditer(text):
        start, end = run.span()
        if end - start < shortest:
            continue
        position = start
        while position + shortest <= end:
            for length in lengths:
                if position + length <= end and text[position : position + length] in index[length]:
                    spans.append((position, position + length))
                    position += length
                    break
            else:
                position += 1
    return spans


def contains_secret(text: str) -> bool:
    """True when ``text`` contains a registered secret."""
    pattern = _pattern
    if pattern is not None and pattern.search(text) is not None:
        return True
    return bool(_token_spans(text))


def redact_text(text: str) -> str:
    """Replace every registered secret in ``text``; for plan output, exception text and the like."""
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    spans = _token_spans(text)
    if not spans:
        return text
    parts: list[str] = []
    previous = 0
    for start, end in spans:
        parts += [text[previous:start], REDACTED]
        previous = end
    parts.append(text[previous:])
    return "".join(parts)


def redact_value(value: Any, _depth: int = 0) -> Any:
    """Return ``value`` with secrets removed, recursing into mappings and sequences.

    Objects of other types are returned unchanged unless their ``str()`` or ``repr()`` (what a
    renderer would print) contains a registered secret; then they are replaced by redacted text.
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value)
    if _depth > 32:  # a cycle or absurd nesting: render it once, redacted, rather than recurse
        return redact_text(_safe_repr(value))
    if isinstance(value, Mapping):
        return redact_mapping(value, _depth + 1)
    if isinstance(value, list | tuple | set | frozenset):
        items = [redact_value(v, _depth + 1) for v in value]
        if isinstance(value, tuple):
            return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
        return items
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", errors="replace")
        return redact_text(text) if contains_secret(text) else value
    if _pattern is None and not _token_lengths:
        return value
    rendered = _safe_str(value)
    if contains_secret(rendered) or contains_secret(_safe_repr(value)):
        return redact_text(rendered)
    return value


def redact_mapping(mapping: Mapping[Any, Any], _depth: int = 0) -> dict[Any, Any]:
    """Redact a mapping: values under secret-looking keys entirely, everything else by value."""
    out: dict[Any, Any] = {}
    for key, val in mapping.items():
        new_key = redact_text(key) if isinstance(key, str) else key
        if isinstance(key, str) and is_secret_key(key) and val is not None:
            out[new_key] = REDACTED
        else:
            out[new_key] = redact_value(val, _depth)
    return out


def redact_event(_logger: Any, _method: str, event_dict: Any) -> Any:
    """structlog processor: must be the last processor before the renderer."""
    if isinstance(event_dict, Mapping):
        return redact_mapping(event_dict)
    if isinstance(event_dict, str):
        return redact_text(event_dict)
    return event_dict


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return _safe_repr(value)


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
