"""The one HTTP port: probes, 404s, mounted routes with a body cap, and a clean shutdown."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from http.client import HTTPConnection

import pytest

from controller.observability.http import ObservabilityServer
from controller.observability.metrics import Metrics

from .helpers import http, trickle


@pytest.fixture
def server() -> Iterator[ObservabilityServer]:
    with ObservabilityServer(Metrics(), host="127.0.0.1", port=0) as srv:
        yield srv


def test_port_zero_picks_a_free_port(server: ObservabilityServer) -> None:
    assert server.port > 0
    with ObservabilityServer(Metrics(), host="127.0.0.1", port=0) as other:
        assert other.port != server.port
        assert http(other.url + "/healthz").status == 200


def test_healthz_and_unknown_paths(server: ObservabilityServer) -> None:
    response = http(server.url + "/healthz")
    assert (response.status, response.body) == (200, b"ok\n")
    assert http(server.url + "/").status == 404
    assert http(server.url + "/metricsx").status == 404
    assert http(server.url + "/webhook", method="POST", body=b"{}").status == 404
    wrong = http(server.url + "/metrics", method="POST", body=b"")
    assert wrong.status == 405
    assert wrong.headers["Allow"] == "GET, HEAD"
    assert http(server.url + "/metrics?name[]=fleet_leader").status == 200


def test_readyz_follows_the_callable() -> None:
    state = {"ready": False}
    with ObservabilityServer(Metrics(), lambda: state["ready"], host="127.0.0.1", port=0) as srv:
        assert http(srv.url + "/readyz").status == 503
        state["ready"] = True
        assert http(srv.url + "/readyz").status == 200
        state["ready"] = False
        assert http(srv.url + "/readyz").status == 503
        assert http(srv.url + "/healthz").status == 200  # alive while not ready


def test_readyz_is_503_when_the_check_raises() -> None:
    def broken() -> bool:
        raise RuntimeError("state not loaded")

    with ObservabilityServer(Metrics(), broken, host="127.0.0.1", port=0) as srv:
        assert http(srv.url + "/readyz").status == 503
        assert http(srv.url + "/healthz").status == 200


def test_mounted_route_gets_headers_and_body(server: ObservabilityServer) -> None:
    calls: list[tuple[Mapping[str, str], bytes]] = []

    def webhook(headers: Mapping[str, str], body: bytes) -> tuple[int, Mapping[str, str], bytes]:
        calls.append((headers, body))
        return 202, {"Content-Type": "application/json", "X-Seen": "1"}, b'{"queued":true}'

    server.add_route("post", "/webhook", webhook, max_body_bytes=64)
    response = http(
        server.url + "/webhook",
        method="POST",
        body=b'{"ref":"refs/heads/main"}',
        headers={"X-GitHub-Event": "push", "Content-Type": "application/json"},
    )
    assert (response.status, response.body) == (202, b'{"queued":true}')
    assert response.headers["X-Seen"] == "1"
    assert len(calls) == 1
    headers, body = calls[0]
    assert body == b'{"ref":"refs/heads/main"}'
    # Header names are case-insensitive, as in HTTP.
    assert headers["X-GitHub-Event"] == headers["x-github-event"] == "push"
    # Only the mounted method is served there.
    wrong = http(server.url + "/webhook")
    assert wrong.status == 405
    assert wrong.headers["Allow"] == "POST"


def test_body_cap_rejects_without_calling_the_handler(server: ObservabilityServer) -> None:
    calls: list[bytes] = []

    def handler(headers: Mapping[str, str], body: bytes) -> tuple[int, Mapping[str, str], bytes]:
        calls.append(body)
        return 204, {}, b""

    server.add_route("POST", "/webhook", handler, max_body_bytes=1024)
    assert http(server.url + "/webhook", method="POST", body=b"x" * 1024).status == 204
    assert http(server.url + "/webhook", method="POST", body=b"x" * 1025).status == 413
    assert http(server.url + "/webhook", method="POST", body=b"x" * 300_000).status == 413
    assert calls == [b"x" * 1024]

    # Chunked bodies are measured while they are read.
    assert _chunked(server.port, [b"a" * 500, b"b" * 500]) == 204
    assert _chunked(server.port, [b"a" * 1000, b"b" * 1000]) == 413
    assert calls == [b"x" * 1024, b"a" * 500 + b"b" * 500]


def test_malformed_chunked_body_is_a_bad_request(server: ObservabilityServer) -> None:
    calls: list[bytes] = []

    def handler(headers: Mapping[str, str], body: bytes) -> tuple[int, Mapping[str, str], bytes]:
        calls.append(body)
        return 204, {}, b""

    server.add_route("POST", "/webhook", handler)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\nhello\r\n0\r\n\r\n"
        )
        response = b""
        while chunk := raw.recv(4096):
            response += chunk
    assert response.startswith(b"HTTP/1.1 400")
    assert calls == []


def _chunked(port: int, chunks: list[bytes]) -> int:
    conn = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/webhook", body=iter(chunks), encode_chunked=True)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_failing_handler_gives_500_and_the_server_keeps_serving(
    server: ObservabilityServer,
) -> None:
    def broken(headers: Mapping[str, str], body: bytes) -> tuple[int, Mapping[str, str], bytes]:
        raise ValueError("bug")

    server.add_route("POST", "/broken", broken)
    assert http(server.url + "/broken", method="POST", body=b"{}").status == 500
    assert http(server.url + "/healthz").status == 200


def test_routes_cannot_shadow_builtins_or_each_other(server: ObservabilityServer) -> None:
    def ok(headers: Mapping[str, str], body: bytes) -> tuple[int, Mapping[str, str], bytes]:
        return 200, {}, b""

    with pytest.raises(ValueError):
        server.add_route("GET", "/metrics", ok)
    server.add_route("POST", "/webhook", ok)
    with pytest.raises(ValueError):
        server.add_route("POST", "/webhook", ok)


def test_keep_alive_connection_serves_several_requests(server: ObservabilityServer) -> None:
    conn = HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for path in ("/healthz", "/metrics", "/readyz"):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.status == 200
    finally:
        conn.close()


def test_stop_releases_the_port_the_thread_and_open_connections() -> None:
    srv = ObservabilityServer(Metrics(), host="127.0.0.1", port=0).start()
    port = srv.port
    thread_name = f"observability-http-{port}"
    assert thread_name in {t.name for t in threading.enumerate()}
    # An idle keep-alive connection (as Prometheus holds one) must not outlive the server.
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = b""
    while not first.endswith(b"ok\n"):
        chunk = idle.recv(4096)
        assert chunk, "connection closed before the response was complete"
        first += chunk
    assert first.startswith(b"HTTP/1.1 200")
    srv.stop()
    assert thread_name not in {t.name for t in threading.enumerate()}
    try:
        assert idle.recv(4096) == b""  # closed by the server, not left waiting for a timeout
    finally:
        idle.close()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 5):
        pass
    # The port is free again: a new server can bind it.
    with ObservabilityServer(Metrics(), host="127.0.0.1", port=port) as again:
        assert http(again.url + "/healthz").status == 200


def test_a_client_trickling_its_request_is_cut_off_at_the_request_timeout() -> None:
    """Slowloris: one byte every 0.2 s keeps every per-read timeout happy; the request as a whole
    must still arrive within the request timeout (1 s here), or the connection ends."""
    with ObservabilityServer(Metrics(), host="127.0.0.1", port=0, request_timeout=1.0) as srv:
        payload = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40
        sent = trickle(srv.port, payload, every=0.2)
        assert sent is not None, "the server took a 16-second trickle without closing"
        assert sent < len(payload)
        assert http(srv.url + "/healthz").status == 200  # and it still serves everyone else


def test_each_request_on_a_keep_alive_connection_gets_its_own_time() -> None:
    """Prometheus keeps its connection open between scrapes: the deadline is per request, so a
    connection that lives longer than the request timeout (in idle gaps) is still served."""
    with ObservabilityServer(Metrics(), host="127.0.0.1", port=0, request_timeout=1.5) as srv:
        conn = HTTPConnection("127.0.0.1", srv.port, timeout=10)
        try:
            for _ in range(5):  # 5 x 0.6 s idle: twice the timeout in all
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                assert response.status == 200 and response.read() == b"ok\n"
                time.sleep(0.6)
        finally:
            conn.close()


def test_a_crowd_of_connections_is_bounded_and_served_again_once_it_leaves() -> None:
    """Each open connection holds a thread. The port takes the webhook, so it may face the
    internet: a crowd of connections is closed at the door beyond a bound instead of growing
    threads without limit, and the server serves again once the crowd is gone."""
    with ObservabilityServer(
        Metrics(), host="127.0.0.1", port=0, request_timeout=60, max_connections=3
    ) as srv:
        crowd = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(3)]
        try:
            # At once, not after the request timeout (60 s: the client gives up long before).
            extra = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            with extra, contextlib.suppress(ConnectionResetError):
                assert extra.recv(1) == b""  # closed without an answer
        finally:
            for connection in crowd:
                connection.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                if http(srv.url + "/healthz").status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the bound never freed"
            time.sleep(0.05)
