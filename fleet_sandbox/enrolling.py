"""Simulated WorkSpaces that enroll the way the startup script does: over HTTP, from their own address.

Enrollment mode (``POST /_sandbox/fleet/enrollment {"url": ...}``, per region) gives every
WorkSpace a distinct loopback address (127.64.0.0/10: all of 127.0.0.0/8 is loopback on Linux, so
each WorkSpace can really send from its own), WorkSpaces already there included, and replaces
reading the published parameter: a WorkSpace that is AVAILABLE and has no live managed instance
binds its socket to its own address, sends ``POST`` with ``{"computerName": ...}`` to the URL,
registers with the activation it gets back exactly as the SSM agent would (so a used, expired or
deleted activation fails the way it fails on AWS), then checks that its instance exists. A refusal,
a 429/503 or a connection error is retried with exponential backoff, honouring Retry-After.

This module knows the protocol from the script's side (``deploy/workspaces/Enroll-WorkSpace.ps1``)
and never imports the controller; a test checks that both sides agree.

Admin API (``?region=``): POST /_sandbox/fleet/enrollment (``{"url": null}`` turns it off),
POST /_sandbox/fleet/enroll (``{"workspaceIds": [...], "register": false}`` asks without
registering: the answer is kept, as a leaked code would be), POST /_sandbox/fleet/impostor
(registers another machine with a WorkSpace's kept answer), GET /_sandbox/fleet/enrollment (each
WorkSpace's boot, registration and attempts, for tests and benchmarks).
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fleet_sandbox import admin
from fleet_sandbox.fleet import DEFAULT_DIRECTORY_NAME, Link, _live, _platform, sim_of
from fleet_sandbox.periodic import Periodic
from fleet_sandbox.ssm_activations import RegistrationError, register_instance
from fleet_sandbox.state import attached, fleet_state, workspaces_backend
from fleet_sandbox.workspaces import ensure_identity, extra_of, purge_terminated

log = logging.getLogger(__name__)

ADDRESS_POOL = "127.64.0.0/10"
# What the script sends and reads (deploy/workspaces/Enroll-WorkSpace.ps1).
REQUEST_FIELD = "computerName"
ANSWER_FIELDS = ("activationId", "activationCode", "region")
CONCURRENCY = 16  # WorkSpaces asking at once within one tick
BACKOFF_FIRST = 2.0
BACKOFF_MAX = 60.0
REQUEST_TIMEOUT = 30.0


@dataclass
class Answer:
    """An activation a WorkSpace was handed (kept in memory: the fake AWS knows its codes)."""

    activation_id: str
    code: str = field(repr=False)
    region: str


@dataclass
class Progress:
    """One WorkSpace's road from boot to registered (wall-clock seconds, time.time())."""

    address: str
    booted_at: float | None = None
    registered_at: float | None = None
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_status: int | None = None
    last_result: str | None = None
    answer: Answer | None = None
    busy: bool = False


@dataclass
class EnrollingState:
    """Enrollment mode of one account and region (hangs off moto's WorkSpaces backend)."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    url: str | None = None
    ca_file: str | None = None
    progress: dict[str, Progress] = field(default_factory=dict)


def state_of(account_id: str, region: str) -> EnrollingState:
    return attached(workspaces_backend(account_id, region), EnrollingState)


def enable(account_id: str, region: str, url: str | None, ca_file: str | None = None) -> int:
    """Turn enrollment mode on (or off with None); returns how many WorkSpaces were readdressed."""
    backend = workspaces_backend(account_id, region)
    state = state_of(account_id, region)
    sim = sim_of(backend)
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'url' must be an http(s) URL: {url!r}")
    with sim.lock, state.lock:
        state.url, state.ca_file = url, ca_file
        if url is None:
            return 0
        sim.parameter_name = None  # one road at a time: nobody reads the parameter any more
        extra = extra_of(backend)
        readdressed = 0
        with extra.lock:
            extra.address_pool = ADDRESS_POOL
            for workspace in list(backend.workspaces.values()):
                current = getattr(workspace, "ip_address", "")
                if current.startswith("127."):
                    continue
                extra.addresses.discard(current)
                workspace.ip_address = ""
                ensure_identity(backend, workspace)
                readdressed += 1
        return readdressed


# --- one WorkSpace's ask ------------------------------------------------------------------------


def _ask(url: str, ca_file: str | None, source: str, computer_name: str) -> tuple[int, Any, float]:
    """POST the script's request from ``source``: (status, parsed body, Retry-After seconds)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=ca_file)
        connection = http.client.HTTPSConnection(
            host, port, timeout=REQUEST_TIMEOUT, source_address=(source, 0), context=context
        )
    else:
        connection = http.client.HTTPConnection(
            host, port, timeout=REQUEST_TIMEOUT, source_address=(source, 0)
        )
    body = json.dumps({REQUEST_FIELD: computer_name})
    try:
        connection.request(
            "POST", parts.path or "/", body=body, headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        raw = response.read()
        retry_after = float(response.getheader("Retry-After") or 0)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return response.status, parsed, retry_after
    finally:
        connection.close()


def _answer(parsed: Any) -> Answer | None:
    if not isinstance(parsed, dict) or not all(
        isinstance(parsed.get(name), str) and parsed[name] for name in ANSWER_FIELDS
    ):
        return None
    return Answer(parsed["activationId"], parsed["activationCode"], parsed["region"])


def _register(
    account_id: str, region: str, workspace_id: str, answer: Answer
) -> tuple[str | None, str]:
    """Register with ``answer`` as the agent would, then check it took: (instance id, outcome)."""
    backend = workspaces_backend(account_id, region)
    sim = sim_of(backend)
    workspace = backend.workspaces.get(workspace_id)
    if workspace is None:
        return None, "the WorkSpace is gone"
    directory = backend.workspace_directories.get(workspace.directory_id)
    domain = directory.directory_name if directory is not None else DEFAULT_DIRECTORY_NAME
    try:
        instance = register_instance(
            account_id,
            answer.region,
            answer.activation_id,
            answer.code,
            f"{workspace.computer_name}.{domain}",
            workspace.ip_address,
            workspace_id,
            platform=_platform(workspace),
        )
    except RegistrationError as error:
        return None, f"registration failed: {error.kind}"
    if instance.instance_id not in fleet_state(account_id, answer.region).instances:
        return None, "registration did not take"
    with sim.lock:
        link = sim.links.setdefault(workspace_id, Link())
        link.current, link.instance_region = instance.instance_id, answer.region
        link.history.append(instance.instance_id)
    return instance.instance_id, "registered"


def _enroll_one(
    account_id: str, region: str, workspace_id: str, url: str, ca_file: str | None, register: bool
) -> dict[str, Any]:
    state = state_of(account_id, region)
    backend = workspaces_backend(account_id, region)
    workspace = backend.workspaces.get(workspace_id)
    with state.lock:
        progress = state.progress[workspace_id]
    result: dict[str, Any] = {"workspaceId": workspace_id}
    try:
        status, parsed, retry_after = _ask(
            url, ca_file, progress.address, workspace.computer_name if workspace else ""
        )
    except OSError as error:
        status, parsed, retry_after = 0, None, 0.0
        result["reason"] = f"connection failed: {type(error).__name__}"
    answer = _answer(parsed) if status == 200 else None
    instance_id, outcome = None, f"answered {status}" if status else "no answer"
    if answer is not None:
        outcome = "answered"
        if register:
            instance_id, outcome = _register(account_id, region, workspace_id, answer)
    now = time.time()
    with state.lock:
        progress.attempts += 1
        progress.last_status = status or None
        progress.last_result = outcome
        if answer is not None:
            progress.answer = answer
        if instance_id is not None:
            progress.registered_at = now
        else:
            backoff = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (progress.attempts - 1))
            progress.next_attempt_at = now + max(backoff, retry_after)
        progress.busy = False
    result.update(status="registered" if instance_id else "failed", httpStatus=status)
    result["instanceId" if instance_id else "reason"] = instance_id or outcome
    return result


def enroll(
    account_id: str,
    region: str,
    workspace_ids: list[str] | None = None,
    register: bool = True,
    due_only: bool = False,
) -> list[dict[str, Any]]:
    """Every AVAILABLE WorkSpace without a live instance asks and registers (named ones even if
    their backoff has not passed, unless ``due_only``). One entry per WorkSpace that asked."""
    backend = workspaces_backend(account_id, region)
    purge_terminated(backend)
    state = state_of(account_id, region)
    sim = sim_of(backend)
    with state.lock:
        url, ca_file = state.url, state.ca_file
    if url is None:
        raise ValueError("enrollment mode is off (POST /_sandbox/fleet/enrollment first)")
    now = time.time()
    chosen = []
    with sim.lock, state.lock:
        candidates = workspace_ids if workspace_ids is not None else list(backend.workspaces)
        for workspace_id in candidates:
            workspace = backend.workspaces.get(workspace_id)
            link = sim.links.setdefault(workspace_id, Link())
            if workspace is None or workspace.state != "AVAILABLE" or _live(account_id, link):
                continue
            ensure_identity(backend, workspace)
            progress = state.progress.get(workspace_id)
            if (
                progress is None
                or progress.address != workspace.ip_address
                or progress.registered_at is not None  # registered once, rebuilt since: a new boot
            ):
                progress = state.progress[workspace_id] = Progress(workspace.ip_address)
            if progress.busy or (due_only and now < progress.next_attempt_at):
                continue
            if progress.booted_at is None:
                progress.booted_at = now
            progress.busy = True
            chosen.append(workspace_id)
    if not chosen:
        return []
    with ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="sandbox-enroll") as pool:
        return list(
            pool.map(
                lambda w: _enroll_one(account_id, region, w, url, ca_file, register),
                chosen,
            )
        )


def impostor(
    account_id: str, region: str, workspace_id: str, computer_name: str, ip_address: str
) -> dict[str, Any]:
    """Another machine registers with the answer ``workspace_id`` was handed (a leaked code)."""
    state = state_of(account_id, region)
    with state.lock:
        progress = state.progress.get(workspace_id)
        answer = progress.answer if progress is not None else None
    if answer is None:
        raise ValueError(f"{workspace_id} has not been handed an activation")
    try:
        instance = register_instance(
            account_id,
            answer.region,
            answer.activation_id,
            answer.code,
            computer_name,
            ip_address,
            None,
        )
    except RegistrationError as error:
        return {"status": "failed", "reason": error.kind}
    return {"status": "registered", "instanceId": instance.instance_id}


# --- background ---------------------------------------------------------------------------------


class Enroller(Periodic):
    """Every ``interval`` seconds, WorkSpaces of every region in enrollment mode whose backoff has
    passed ask and register (the interactive sandbox and ``run --sandbox``)."""

    def __init__(self, interval: float) -> None:
        super().__init__("fleet-enroll", interval, self.run_once)

    def run_once(self) -> int:
        from moto.workspaces.models import workspaces_backends

        registered = 0
        try:
            backends = list(workspaces_backends.iter_backends())
        except RuntimeError:  # the backend dicts changed under us (a reset): next tick
            return 0
        for account_id, region, backend in backends:
            state = backend.__dict__.get(f"_sandbox_{EnrollingState.__name__}")
            if state is None or state.url is None:
                continue
            for result in enroll(account_id, region, due_only=True):
                if result["status"] == "registered":
                    registered += 1
                    log.info("%s enrolled as %s", result["workspaceId"], result["instanceId"])
        return registered


# --- admin API ----------------------------------------------------------------------------------


@admin.route("POST", "/_sandbox/fleet/enrollment")
def _post_enrollment(request: admin.AdminRequest) -> dict[str, Any]:
    url = request.field("url", (str, type(None)))
    ca_file = request.field("caFile", (str, type(None)), None)
    try:
        readdressed = enable(request.account_id, request.region, url, ca_file)
    except ValueError as error:
        raise admin.AdminError(400, str(error)) from None
    return {"url": url, "readdressed": readdressed}


@admin.route("GET", "/_sandbox/fleet/enrollment")
def _get_enrollment(request: admin.AdminRequest) -> dict[str, Any]:
    state = state_of(request.account_id, request.region)
    with state.lock:
        rows = [
            {
                "workspaceId": workspace_id,
                "address": p.address,
                "bootedAt": p.booted_at,
                "registeredAt": p.registered_at,
                "attempts": p.attempts,
                "lastStatus": p.last_status,
                "lastResult": p.last_result,
            }
            for workspace_id, p in sorted(state.progress.items())
        ]
        return {"url": state.url, "workspaces": rows}


@admin.route("POST", "/_sandbox/fleet/enroll")
def _post_enroll(request: admin.AdminRequest) -> dict[str, Any]:
    ids = request.field("workspaceIds", list, None)
    if ids is not None and not all(isinstance(i, str) for i in ids):
        raise admin.AdminError(400, "'workspaceIds' must be a list of WorkSpace IDs")
    register = request.field("register", bool, True)
    try:
        results = enroll(request.account_id, request.region, ids, register=register)
    except ValueError as error:
        raise admin.AdminError(400, str(error)) from None
    return {
        "results": results,
        "registered": sum(1 for r in results if r["status"] == "registered"),
    }


@admin.route("POST", "/_sandbox/fleet/impostor")
def _post_impostor(request: admin.AdminRequest) -> dict[str, Any]:
    try:
        return impostor(
            request.account_id,
            request.region,
            request.field("workspaceId", str),
            request.field("computerName", str),
            request.field("ipAddress", str),
        )
    except ValueError as error:
        raise admin.AdminError(400, str(error)) from None
