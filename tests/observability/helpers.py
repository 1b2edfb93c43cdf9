"""Plain HTTP for tests: a real request over a socket, no proxies, errors returned not raised."""

from __future__ import annotations

import select
import socket
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


def trickle(port: int, payload: bytes, every: float, source: str = "127.0.0.1") -> int | None:
    """Send ``payload`` to ``127.0.0.1:port`` one byte per ``every`` seconds, as a slowloris
    client does. Returns how many bytes were sent when the server closed the connection, or
    None when it took the whole payload without closing (the client outlasted every timeout).

    Between two bytes it waits for the server to close (or answer), not a fixed sleep."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        for sent in range(len(payload)):
            try:
                s.sendall(payload[sent : sent + 1])
            except OSError:
                return sent
            readable, _, _ = select.select([s], [], [], every)
            if readable:
                try:
                    if not s.recv(65536):
                        return sent + 1
                except OSError:
                    return sent + 1
    return None
