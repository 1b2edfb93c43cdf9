"""The controller's single HTTP port: /metrics, /healthz, /readyz, and routes mounted later.

Kubernetes probes, Prometheus and the git webhook all reach one port, so the server is owned
here and other modules mount handlers with :meth:`ObservabilityServer.add_route` instead of
opening ports of their own. It runs on a background thread (stdlib ``ThreadingHTTPServer``) so a
slow scrape never waits for a reconcile and vice versa.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from controller.observability.deadline import BoundedConnections, DeadlineRequests
from controller.observability.logging import get_logger
from controller.observability.metrics import Metrics

# (request headers, request body) -> (status, response headers, response body)
RouteHandler = Callable[[Mapping[str, str], bytes], tuple[int, Mapping[str, str], bytes]]
ReadyCheck = Callable[[], bool]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 256  # each is a thread; Prometheus, probes and GitHub need a handful
MAX_DISCARD_BYTES = 16 * 1024 * 1024  # beyond this an oversized body is cut off, not drained
BUILTIN_PATHS = ("/metrics", "/healthz", "/readyz")

log = get_logger(__name__)


class Headers(Mapping[str, str]):
    """Request headers with case-insensitive names, as HTTP defines them (keys come out lower)."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items: dict[str, str] = {}
        for key, value in items:
            self._items.setdefault(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class _Server(BoundedConnections):
    """Tracks open connections so that stop() also ends idle keep-alive ones at once."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        max_connections: int,
    ) -> None:
        super().__init__(address, handler, max_connections)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def opened(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            open_now = list(self._connections)
        for conn in open_now:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Route:
    def __init__(
        self,
        handler: RouteHandler,
        max_body_bytes: int,
        on_too_large: Callable[[], None] | None = None,
    ) -> None:
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.on_too_large = on_too_large


class ObservabilityServer:
    """One HTTP server on a background thread; ``port=0`` lets the OS pick a free port."""

    def __init__(
        self,
        metrics: Metrics,
        ready: ReadyCheck = lambda: True,
        *,
        host: str = "0.0.0.0",
        port: int = 9100,
        request_timeout: float = 10.0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.metrics = metrics
        self.ready = ready
        self._routes: dict[tuple[str, str], _Route] = {}
        self._routes_lock = threading.Lock()
        handler_class = _make_handler(self, request_timeout)
        # Bound now, so a port clash fails at construction, not in the background thread.
        self._httpd = _Server((host, port), handler_class, max_connections)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def add_route(
        self,
        method: str,
        path: str,
        handler: RouteHandler,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        on_too_large: Callable[[], None] | None = None,
    ) -> None:
        """Mount ``handler`` at exactly ``method path``; bodies over ``max_body_bytes`` get 413.

        ``on_too_large`` is called for each such 413 (the handler never sees those requests), so
        the route's owner can count them.

        The handler receives case-insensitive :class:`Headers` and the whole body (plain or
        chunked). It runs on a server thread, so it must be thread-safe; an exception in it is
        logged and answered with 500.
        """
        method = method.upper()
        if path in BUILTIN_PATHS:
            raise ValueError(f"{path} is served by the observability server itself")
        if not path.startswith("/"):
            raise ValueError(f"route paths start with '/': {path!r}")
        with self._routes_lock:
            if (method, path) in self._routes:
                raise ValueError(f"route {method} {path} is already mounted")
            self._routes[(method, path)] = _Route(handler, max_body_bytes, on_too_large)

    def route(self, method: str, path: str) -> _Route | None:
        with self._routes_lock:
            return self._routes.get((method, path))

    def methods_for(self, path: str) -> list[str]:
        with self._routes_lock:
            methods = {m for (m, p) in self._routes if p == path}
        if path in BUILTIN_PATHS:
            methods |= {"GET", "HEAD"}
        return sorted(methods)

    def start(self) -> ObservabilityServer:
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"observability-http-{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info(
            "http server listening",
            detail=True,  # the command's start-up line says it
            url=self.url,
            bound=f"{self.host}:{self.port}",
        )
        return self

    def stop(self) -> None:
        """Stop accepting, wait for the serving thread, close open connections, release the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()
        self._httpd.close_connections()

    def __enter__(self) -> ObservabilityServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _make_handler(
    server: ObservabilityServer, request_timeout: float
) -> type[BaseHTTPRequestHandler]:
    class Handler(DeadlineRequests):
        protocol_version = "HTTP/1.1"
        timeout = request_timeout  # a whole request arrives within this, or the connection ends
        server_version = "fleet-controller"
        sys_version = ""

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_HEAD(self) -> None:
            self._dispatch("HEAD")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PUT(self) -> None:
            self._dispatch("PUT")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def do_PATCH(self) -> None:
            self._dispatch("PATCH")

        def _dispatch(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            try:
                if path in BUILTIN_PATHS and method in ("GET", "HEAD"):
                    status, headers, body = self._builtin(path)
                elif (route := server.route(method, path)) is not None:
                    status, headers, body = self._mounted(route)
                elif allowed := server.methods_for(path):
                    status, headers, body = _text(HTTPStatus.METHOD_NOT_ALLOWED, "not allowed\n")
                    headers = {**headers, "Allow": ", ".join(allowed)}
                else:
                    status, headers, body = _text(HTTPStatus.NOT_FOUND, "not found\n")
            except Exception:
                log.exception("http handler failed", method=method, path=path)
                status, headers, body = _text(HTTPStatus.INTERNAL_SERVER_ERROR, "error\n")
            self._respond(status, headers, b"" if method == "HEAD" else body, len(body))

        def _builtin(self, path: str) -> tuple[int, Mapping[str, str], bytes]:
            if path == "/metrics":
                body, content_type = server.metrics.render(self.headers.get("Accept", ""))
                return HTTPStatus.OK, {"Content-Type": content_type}, body
            if path == "/healthz":
                return _text(HTTPStatus.OK, "ok\n")
            try:
                ready = bool(server.ready())
            except Exception:
                log.exception("readiness check failed")
                ready = False
            if ready:
                return _text(HTTPStatus.OK, "ready\n")
            return _text(HTTPStatus.SERVICE_UNAVAILABLE, "not ready\n")

        def _mounted(self, route: _Route) -> tuple[int, Mapping[str, str], bytes]:
            body: bytes | None
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                try:
                    body = self._read_chunked(route.max_body_bytes)
                except ValueError:
                    self.close_connection = True
                    return _text(HTTPStatus.BAD_REQUEST, "bad chunked body\n")
            else:
                try:
                    length = int(self.headers.get("Content-Length", "0") or "0")
                except ValueError:
                    length = -1
                if length < 0:
                    self.close_connection = True
                    return _text(HTTPStatus.BAD_REQUEST, "bad Content-Length\n")
                if length > route.max_body_bytes:
                    self._discard(min(length, MAX_DISCARD_BYTES))
                    body = None
                else:
                    body = self.rfile.read(length) if length else b""
                    if len(body) != length:
                        self.close_connection = True
                        return _text(HTTPStatus.BAD_REQUEST, "incomplete body\n")
            if body is None:
                # Never buffered: discarded in bounded chunks, so that the client reads the 413
                # instead of a connection reset from closing on unread data.
                self.close_connection = True
                if route.on_too_large is not None:
                    route.on_too_large()
                return _text(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large\n")
            status, out_headers, out_body = route.handler(Headers(self.headers.items()), body)
            return int(status), out_headers, out_body

        def _read_chunked(self, cap: int) -> bytes | None:
            """The de-chunked body, or None (body discarded) when it exceeds ``cap``."""
            body = bytearray()
            total = 0
            while True:
                line = self.rfile.readline(1024)
                if not line.endswith(b"\n"):
                    raise ValueError("chunk size line")
                size = int(line.split(b";", 1)[0].strip() or b"x", 16)  # ValueError if not hex
                if size < 0:
                    raise ValueError("chunk size")
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass  # trailers are ignored
                    return bytes(body) if total <= cap else None
                total += size
                if total > MAX_DISCARD_BYTES:
                    raise ValueError("body far over the cap")
                if total > cap:
                    body.clear()
                    self._discard(size)
                else:
                    chunk = self.rfile.read(size)
                    if len(chunk) != size:
                        raise ValueError("truncated chunk")
                    body += chunk
                if self.rfile.readline(8) not in (b"\r\n", b"\n"):
                    raise ValueError("chunk terminator")

        def _discard(self, remaining: int) -> None:
            try:
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 64 * 1024))
                    if not chunk:
                        return
                    remaining -= len(chunk)
            except OSError:  # timeout or reset: the connection is being closed anyway
                return

        def _respond(
            self, status: int, headers: Mapping[str, str], body: bytes, length: int
        ) -> None:
            self.send_response(status)
            sent = {k.lower() for k in headers}
            for key, value in headers.items():
                self.send_header(key, value)
            if "content-length" not in sent:
                self.send_header("Content-Length", str(length))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Requests are logged at debug through structlog instead of raw to stderr."""
            log.debug("http request", client=self.client_address[0], line=format % args)

    return Handler


def _text(status: HTTPStatus, text: str) -> tuple[int, dict[str, str], bytes]:
    return int(status), {"Content-Type": "text/plain; charset=utf-8"}, text.encode("utf-8")
