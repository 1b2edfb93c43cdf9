"""The enrollment listener: its own port, apart from /metrics and the webhook.

It serves ``POST /v1/enroll`` and ``GET /healthz`` for the load balancer, nothing else, so the port
can be opened to the WorkSpaces' subnets without exposing metrics or the webhook. The health check
answers 503 on a replica that holds no target's lease, so the load balancer sends asks to a replica
that can answer them. With a
certificate (``--enroll-tls-cert``/``--enroll-tls-key``) it speaks HTTPS itself, for a network load
balancer that passes TCP through with the client's address preserved; without one it expects a
proxy in front that terminates TLS (and then X-Forwarded-For from ``--enroll-trusted-proxy``).

A client holds a thread for at most ``request_timeout`` seconds to send its whole request (a
slow trickle of bytes included), at most
``max_connections`` connections are open at once (more are closed at the door), the TLS handshake
happens on the request's thread (never on the accepting one), bodies over 1 KiB are refused
unread, and at most ``max_in_flight`` requests are worked on at once: beyond that the answer is
503 at once.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import structlog

from controller.observability.deadline import BoundedConnections, DeadlineRequests
from controller.service.enrollment import protocol
from controller.service.enrollment.service import Answer, EnrollmentService

log = structlog.get_logger("fleet_controller.service.enrollment")


def tls_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context: TLS 1.2 or newer, the certificate chain and key from PEM files."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    except (OSError, ssl.SSLError) as error:
        raise ValueError(f"cannot load the enrollment TLS certificate or key: {error}") from None
    return context


class _Server(BoundedConnections):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        tls: ssl.SSLContext | None,
        timeout: float,
        max_connections: int,
    ) -> None:
        self.tls = tls
        self.handshake_timeout = timeout
        super().__init__(address, handler, max_connections)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs on the request's own thread: the TLS handshake happens here."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(self.handshake_timeout)
        try:
            secured = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as error:
            log.debug("enrollment TLS handshake failed", client=client_address[0], error=str(error))
            return
        try:
            super().finish_request(secured, client_address)
        finally:
            with contextlib.suppress(OSError):
                secured.close()


class EnrollmentServer:
    """The listener on a background thread; ``port=0`` lets the OS pick one."""

    def __init__(
        self,
        service: EnrollmentService,
        host: str = "0.0.0.0",
        port: int = 8443,
        tls: ssl.SSLContext | None = None,
        request_timeout: float = 10.0,
        max_in_flight: int = 64,
        max_connections: int = 512,
    ) -> None:
        self.service = service
        self.tls = tls
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._httpd = _Server(
            (host, port), _handler(self, request_timeout), tls, request_timeout, max_connections
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host}:{self.port}{protocol.PATH}"

    def start(self) -> EnrollmentServer:
        if self._thread is not None:
            raise RuntimeError("enrollment server already started")
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"enrollment-http-{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info(
            "enrollment endpoint listening",
            detail=True,  # the service's start-up line says it
            url=self.url,
            bound=f"{self.host}:{self.port}",
        )
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> EnrollmentServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, peer: str, forwarded_for: list[str], body: bytes | None) -> Answer:
        if not self._slots.acquire(blocking=False):
            return self.service.busy(peer)
        try:
            return self.service.handle(peer, forwarded_for, body)
        finally:
            self._slots.release()


def _handler(server: EnrollmentServer, request_timeout: float) -> type[BaseHTTPRequestHandler]:
    class Handler(DeadlineRequests):
        protocol_version = "HTTP/1.1"
        timeout = request_timeout
        server_version = "fleet-controller"
        sys_version = ""

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == protocol.HEALTH_PATH:
                if server.service.serving():
                    self._send(200, {"Content-Type": "text/plain"}, b"ok\n")
                else:
                    self._send(503, {"Content-Type": "text/plain"}, b"not the lease holder\n")
            else:
                self._send(404, {"Content-Type": "text/plain"}, b"not found\n")

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != protocol.PATH:
                self._send(404, {"Content-Type": "text/plain"}, b"not found\n")
                return
            self.close_connection = True  # one ask per connection: a WorkSpace asks rarely
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                length = -1
            body: bytes | None = None
            if 0 <= length <= protocol.MAX_BODY_BYTES and not self.headers.get("Transfer-Encoding"):
                body = self.rfile.read(length)
            forwarded = self.headers.get_all("X-Forwarded-For") or []
            answer = server.answer(self.client_address[0], forwarded, body)
            self._send(answer.status, answer.headers, answer.body)

        def _send(self, status: int, headers: Any, body: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Decisions are logged by the service; the raw request line only at debug."""
            log.debug("enrollment http", client=self.client_address[0], line=format % args)

        def handle_one_request(self) -> None:
            with contextlib.suppress(TimeoutError, ConnectionError, socket.timeout):
                super().handle_one_request()

    return Handler
