"""Start and stop the sandbox: moto's WSGI app behind the sandbox middleware, on a real port.

One sandbox per process: moto keeps its state in module-level backends, so two servers in one
process would share it. Tests start one per session and reset it between tests.
"""

from __future__ import annotations

import email.utils
import importlib
import logging
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from fleet_sandbox import admin, extension, shapes
from fleet_sandbox.clock import clock
from fleet_sandbox.faults import FaultInjector, FaultRule
from fleet_sandbox.middleware import SandboxMiddleware
from fleet_sandbox.traffic import CallCounter

# Modules that register operations and admin routes when imported.
EXTENSION_MODULES = (
    "fleet_sandbox.dynamodb",
    "fleet_sandbox.ssm_tags",
    "fleet_sandbox.scenario",
    "fleet_sandbox.ssm_activations",
    "fleet_sandbox.ssm_settings",
    "fleet_sandbox.ssm_parameters",
    "fleet_sandbox.ssm_instances",
    "fleet_sandbox.ssm_associations",
    "fleet_sandbox.ssm_documents",
    "fleet_sandbox.workspaces",
    "fleet_sandbox.workspaces_resources",
    "fleet_sandbox.consistency",
    "fleet_sandbox.events",
    "fleet_sandbox.tagging",
    "fleet_sandbox.fleet",
    "fleet_sandbox.enrolling",
    "fleet_sandbox.agent",
    "fleet_sandbox.plugins",
    "fleet_sandbox.ssm_commands",
    "fleet_sandbox.association_runs",
    "fleet_sandbox.ssm_inventory",
)

calls = CallCounter()
faults = FaultInjector()
_reset_hooks: list[Any] = []


def on_reset(hook: Any) -> Any:
    """Register a callable run by ``POST /_sandbox/reset`` (for state kept outside moto)."""
    _reset_hooks.append(hook)
    return hook


def reset_all() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    calls.reset()
    faults.set_rules([])
    clock.reset()
    extension.clear_shape_violations()
    for hook in _reset_hooks:
        hook()


def load_extensions() -> None:
    for name in EXTENSION_MODULES:
        importlib.import_module(name)
    extension.install()


class Sandbox:
    """The sandbox HTTP server on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return f"http://{self._host}:{self._server.server_port}"

    def start(self) -> str:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        class SandboxRequestHandler(MotoRequestHandler):
            """Every response's ``Date`` header tells the sandbox clock, as AWS's tells its own."""

            def date_time_string(self, timestamp: float | None = None) -> str:
                when = clock.now().timestamp() if timestamp is None else timestamp
                return email.utils.formatdate(when, usegmt=True)

        load_extensions()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        app = SandboxMiddleware(DomainDispatcherApplication(create_backend_app), calls, faults)
        self._server = make_server(
            self._host, self._port, app, threaded=True, request_handler=SandboxRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sandbox-http", daemon=True
        )
        self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@admin.route("GET", "/_sandbox/health")
def _health(request: admin.AdminRequest) -> dict[str, Any]:
    return {
        "status": "ok",
        "operations": [f"{s}:{o}" for s, o in extension.registered_operations()],
    }


@admin.route("GET", "/_sandbox/calls")
def _get_calls(request: admin.AdminRequest) -> dict[str, Any]:
    return {"calls": calls.snapshot()}


@admin.route("DELETE", "/_sandbox/calls")
def _reset_calls(request: admin.AdminRequest) -> dict[str, Any]:
    calls.reset()
    return {}


@admin.route("GET", "/_sandbox/faults")
def _get_faults(request: admin.AdminRequest) -> dict[str, Any]:
    return {"rules": faults.rules()}


@admin.route("PUT", "/_sandbox/faults")
def _set_faults(request: admin.AdminRequest) -> dict[str, Any]:
    rules = [FaultRule.from_dict(rule) for rule in request.field("rules", list)]
    faults.set_rules(rules, seed=request.field("seed", int, None))
    return {"rules": faults.rules()}


@admin.route("GET", "/_sandbox/clock")
def _get_clock(request: admin.AdminRequest) -> dict[str, Any]:
    return {"now": clock.now().isoformat()}


@admin.route("POST", "/_sandbox/clock/advance")
def _advance_clock(request: admin.AdminRequest) -> dict[str, Any]:
    seconds = request.field("seconds", (int, float))
    if seconds < 0:
        raise admin.AdminError(400, "the sandbox clock only moves forward")
    return {"now": clock.advance(seconds).isoformat()}


@admin.route("POST", "/_sandbox/clock/skew")
def _skew_clock(request: admin.AdminRequest) -> dict[str, Any]:
    """Set the clock ``seconds`` ahead of real time (negative: behind); reset clears it."""
    seconds = request.field("seconds", (int, float))
    if abs(seconds) > 86400:
        raise admin.AdminError(400, "a skew is at most a day either way")
    return {"now": clock.set_skew(seconds).isoformat()}


@admin.route("POST", "/_sandbox/reset")
def _reset(request: admin.AdminRequest) -> dict[str, Any]:
    reset_all()
    return {}


@admin.route("GET", "/_sandbox/fidelity")
def _fidelity(request: admin.AdminRequest) -> dict[str, Any]:
    """What the sandbox serves itself and which model constraints it cannot check."""
    operations = extension.registered_operations()
    services = sorted({service for service, _ in operations})
    return {
        "operations": [f"{s}:{o}" for s, o in operations],
        "unenforcedPatterns": {s: shapes.unenforced_patterns(s) for s in services},
        "shapeViolations": extension.shape_violations(),
    }


@admin.route("GET", "/_sandbox/shape-violations")
def _violations(request: admin.AdminRequest) -> dict[str, Any]:
    return {"violations": extension.shape_violations()}
