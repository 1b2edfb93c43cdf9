"""Plain HTTP for tests: a real request over a socket, no proxies, errors returned not raised."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes


# Never let an http_proxy variable route requests to 127.0.0.1 elsewhere.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> Response:
    """One real HTTP request; 4xx/5xx are returned, not raised."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _opener.open(request, timeout=10) as response:
            return Response(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, error.headers, error.read())
