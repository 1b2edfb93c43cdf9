"""Hostile clients: a request must arrive whole in time, and a crowd is closed at the door.

A socket timeout bounds each read on its own, so a client that sends one byte every few seconds
(slowloris) keeps its connection, and the thread serving it, for as long as it likes; a few
hundred of them fill every connection slot of a listener. ``DeadlineRequests`` gives each
request one deadline instead: from the moment the server starts waiting for its request line,
the request line, headers and body must all have arrived within the handler's ``timeout``. A
read past it raises ``TimeoutError``, which ``BaseHTTPRequestHandler`` answers by closing the
connection. Only reading is bounded this way: writing is already bounded as a whole by the
socket timeout (``sendall``), and the work a handler does between the two is its own business.

``BoundedConnections`` caps how many connections (each one a thread) are open at once: beyond the
cap a new connection is closed unanswered, so a crowd costs a bounded number of threads for at
most the request timeout each, instead of threads without limit.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

log = structlog.get_logger("fleet_controller.http")


class DeadlineReader(io.RawIOBase):
    """Reads a socket, each read given only the time left until the deadline."""

    def __init__(
        self, sock: Any, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._sock = sock
        self._seconds = seconds
        self._clock = clock
        self._deadline = float("inf")

    def start(self) -> None:
        """A new request begins: it has ``seconds`` from now to arrive."""
        self._deadline = self._clock() + self._seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - self._clock()
        if left <= 0:
            raise TimeoutError(f"the request did not arrive within {self._seconds:g} s")
        previous = self._sock.gettimeout()
        self._sock.settimeout(left if previous is None else min(left, previous))
        try:
            return int(self._sock.recv_into(buffer))
        finally:
            self._sock.settimeout(previous)


class DeadlineRequests(BaseHTTPRequestHandler):
    """A request handler whose every request must arrive within ``timeout`` seconds in all."""

    def setup(self) -> None:
        super().setup()
        seconds = float(self.timeout) if self.timeout is not None else float("inf")
        self._deadline_reader = DeadlineReader(self.connection, seconds)
        unbounded, self.rfile = self.rfile, io.BufferedReader(self._deadline_reader)
        unbounded.close()  # the socket stays open: only this file object on it goes

    def handle_one_request(self) -> None:
        self._deadline_reader.start()
        super().handle_one_request()


class BoundedConnections(ThreadingHTTPServer):
    """A threading server with at most ``max_connections`` connections (threads) at once."""

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        max_connections: int,
    ) -> None:
        self._places = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._places.acquire(blocking=False):
            log.debug("connection refused: too many open", client=client_address[0])
            with contextlib.suppress(OSError):
                request.close()
            return
        self.opened(request)
        super().process_request(request, client_address)  # on failure the caller shuts it

    def opened(self, request: Any) -> None:
        """A connection was let in (``shutdown_request`` follows it): a hook for subclasses."""

    def shutdown_request(self, request: Any) -> None:
        try:
            super().shutdown_request(request)
        finally:
            self._places.release()
