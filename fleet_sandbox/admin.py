"""The sandbox's admin API: plain JSON over HTTP under the reserved path ``/_sandbox/``.

Modules register routes with ``@route("POST", "/_sandbox/fleet/boot")``. A route receives an
``AdminRequest`` and returns a JSON-serialisable value; raising ``AdminError`` answers an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

PREFIX = "/_sandbox/"
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account
DEFAULT_REGION = "us-east-1"


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class AdminRequest:
    method: str
    path: str
    body: dict[str, Any]
    query: dict[str, str]

    @property
    def account_id(self) -> str:
        return self.query.get("account", DEFAULT_ACCOUNT_ID)

    @property
    def region(self) -> str:
        return self.query.get("region", DEFAULT_REGION)

    def field(self, name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        """A body field of the expected type; a missing or mistyped one is a 400."""
        if name not in self.body:
            if default is ...:
                raise AdminError(400, f"missing field '{name}'")
            return default
        value = self.body[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            raise AdminError(400, f"field '{name}' has the wrong type")
        return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


Route = Callable[[AdminRequest], Any]
_routes: dict[tuple[str, str], Route] = {}


def route(method: str, path: str) -> Callable[[Route], Route]:
    if not path.startswith(PREFIX):
        raise ValueError(f"admin routes live under {PREFIX}")

    def register(handler: Route) -> Route:
        _routes[(method.upper(), path.rstrip("/"))] = handler
        return handler

    return register


def handle(method: str, path: str, query_string: str, body: bytes) -> tuple[int, bytes]:
    """Answer one admin request: (HTTP status, JSON body)."""
    handler = _routes.get((method.upper(), path.rstrip("/")))
    if handler is None:
        known = sorted(f"{m} {p}" for m, p in _routes if p == path.rstrip("/"))
        status = 405 if known else 404
        return status, _json({"error": f"no admin route {method} {path}", "allowed": known})
    try:
        parsed = json.loads(body) if body.strip() else {}
        if not isinstance(parsed, dict):
            raise AdminError(400, "the body must be a JSON object")
        query = {k: v[-1] for k, v in parse_qs(query_string).items()}
        result = handler(AdminRequest(method.upper(), path, parsed, query))
    except AdminError as error:
        return error.status, _json({"error": error.message})
    except (ValueError, KeyError, TypeError) as error:
        return 400, _json({"error": str(error)})
    return 200, _json(result if result is not None else {})


def _json(value: Any) -> bytes:
    return json.dumps(value, default=str, sort_keys=True).encode()
