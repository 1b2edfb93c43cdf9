"""The WSGI layer in front of moto: admin routes, call counting, faults, AWS-shaped errors.

moto answers an operation it lacks, or a crash inside one, with an HTML 500 page. Clients expect
AWS's error format, so such answers are rewritten into a JSON error that names the operation, and
an operation the service does not have at all gets AWS's ``UnknownOperationException``.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import socket
import time
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from fleet_sandbox import admin
from fleet_sandbox.faults import FaultInjector, error_response
from fleet_sandbox.shapes import service_model
from fleet_sandbox.traffic import ApiCall, CallCounter, identify

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# botocore client name -> moto module, where they differ
_MOTO_MODULES = {"resourcegroupstaggingapi": "resourcegroupstaggingapi"}


AfterCall = Callable[[ApiCall, str], None]
"""(the call, its HTTP status line) after moto answered it; for state kept beside moto."""

_after_call: list[AfterCall] = []


def after_call(hook: AfterCall) -> AfterCall:
    """Register ``hook`` to run after every request moto served (not admin, not faulted)."""
    if hook not in _after_call:
        _after_call.append(hook)
    return hook


class ConnectionDropped(ConnectionError):
    """Raised after the socket is shut: the client sees a reset, not a response."""


class SandboxMiddleware:
    def __init__(self, moto_app: WsgiApp, calls: CallCounter, faults: FaultInjector) -> None:
        self._moto = moto_app
        self.calls = calls
        self.faults = faults

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = _read_body(environ)
        path = environ.get("PATH_INFO", "/")
        if path.startswith(admin.PREFIX):
            admin_status, admin_payload = admin.handle(
                environ.get("REQUEST_METHOD", "GET"), path, environ.get("QUERY_STRING", ""), body
            )
            return _respond(start_response, admin_status, admin_payload)

        call = identify(environ, body)
        if call is None:  # unsigned: moto's own /moto-api/ and friends
            return self._moto(environ, start_response)

        fault = self.faults.decide(call, body)
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if fault.kind in ("throttle", "error", "deny"):
            self.calls.record(call, fault.kind)
            fault_status, fault_headers, fault_payload = error_response(call, fault.kind)
            start_response(fault_status, fault_headers)
            return [fault_payload]
        if fault.kind == "reset":
            self.calls.record(call, "reset")
            _drop_connection(environ)

        rejection = _reject_unknown(call, environ, body)
        if rejection is not None:
            self.calls.record(call, "400")
            return _respond(start_response, 400, rejection[1], rejection[0])
        if environ.get("HTTP_X_AMZ_TARGET"):
            _drop_nulls(environ, body)

        try:
            status, headers, chunks = _run(self._moto, environ)
        except ConnectionDropped:
            raise
        except Exception:  # a crash in moto or a handler: still an AWS-shaped answer, never HTML
            log.exception("sandbox failure serving %s:%s", call.service, call.operation)
            status, headers, chunks = _internal_failure(call)
        if status.startswith("500") and _is_html(headers):
            status, headers, chunks = _internal_failure(call)
        for hook in list(_after_call):
            hook(call, status)
        if fault.kind == "lost_response":
            self.calls.record(call, "lost_response")
            _drop_connection(environ)
        self.calls.record(call, status.split(" ", 1)[0])
        start_response(status, headers)
        return chunks


def _read_body(environ: dict[str, Any]) -> bytes:
    """Buffer the body so it can be inspected here and read again by moto."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _drop_nulls(environ: dict[str, Any], body: bytes) -> None:
    """A JSON null member is an absent member (as AWS reads it); moto would take it as a value."""
    if b"null" not in body:
        return
    try:
        parsed = json.loads(body)
    except ValueError:
        return
    cleaned = json.dumps(_without_nulls(parsed)).encode()
    environ["wsgi.input"] = io.BytesIO(cleaned)
    environ["CONTENT_LENGTH"] = str(len(cleaned))


def _run(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], list[bytes]]:
    captured: dict[str, Any] = {}

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"], captured["headers"] = status, headers

    result = app(environ, capture)
    try:
        chunks = list(result)
    finally:
        close = getattr(result, "close", None)
        if close:
            close()
    return captured["status"], captured["headers"], chunks


def _is_html(headers: list[tuple[str, str]]) -> bool:
    return any(k.lower() == "content-type" and "html" in v for k, v in headers)


@cache
def _moto_response_class(service: str) -> type | None:
    try:
        urls = importlib.import_module(f"moto.{_MOTO_MODULES.get(service, service)}.urls")
    except ImportError:
        return None
    for dispatch in getattr(urls, "url_paths", {}).values():
        owner = getattr(dispatch, "__self__", None)
        if isinstance(owner, type):
            return owner
    return None


def _snake(name: str) -> str:
    import re

    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _reject_unknown(
    call: ApiCall, environ: dict[str, Any], body: bytes
) -> tuple[str, bytes] | None:
    """An AWS-style error for a JSON-protocol request the sandbox cannot serve, else None."""
    if not environ.get("HTTP_X_AMZ_TARGET"):
        return None
    try:
        operations = service_model(call.service).operation_names
    except Exception:
        return None
    if call.operation not in operations:
        return _json_error("UnknownOperationException", f"Unrecognized operation {call.operation}")
    response_class = _moto_response_class(call.service)
    if response_class is not None and not hasattr(response_class, _snake(call.operation)):
        return _json_error(
            "UnknownOperationException",
            f"The sandbox does not implement {call.service}:{call.operation}",
        )
    if body.strip():
        try:
            json.loads(body)
        except ValueError:
            return _json_error("SerializationException", "Request body is not valid JSON")
    return None


def _json_error(code: str, message: str) -> tuple[str, bytes]:
    return code, json.dumps({"__type": code, "message": message}).encode()


def _internal_failure(call: ApiCall) -> tuple[str, list[tuple[str, str]], list[bytes]]:
    code, payload = _json_error(
        "InternalFailure", f"The sandbox failed while serving {call.service}:{call.operation}"
    )
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("x-amzn-ErrorType", code),
        ("Content-Length", str(len(payload))),
    ]
    return "500 Internal Server Error", headers, [payload]


def _respond(
    start_response: StartResponse, status: int, payload: bytes, error_code: str | None = None
) -> list[bytes]:
    reasons = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
    headers = [
        ("Content-Type", "application/x-amz-json-1.1" if error_code else "application/json"),
        ("Content-Length", str(len(payload))),
    ]
    if error_code:
        headers.append(("x-amzn-ErrorType", error_code))
    start_response(f"{status} {reasons.get(status, 'Error')}", headers)
    return [payload]


def _drop_connection(environ: dict[str, Any]) -> None:
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        try:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise ConnectionDropped()
