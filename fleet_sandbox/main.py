"""Run the sandbox in the foreground: ``fleet-controller sandbox`` calls ``run_sandbox``.

It starts the endpoint and a fleet of WorkSpaces that register with SSM as soon as the
controller publishes an activation to the registration parameter. Without a scenario file the
fleet is the built-in demo (``scenarios/demo.yaml``: two directories, tags and packages matching
``desired-state/``) scaled to ``workspaces``; a scenario file replaces it (its ``workspaces``
section is the fleet, its ``registration`` section overrides the parameter). The banner counts
the WorkSpaces that exist. Blocks until Ctrl-C, SIGTERM or ``stop_event``.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import yaml

from fleet_sandbox import admin
from fleet_sandbox.fleet import (
    WorkspaceGroup,
    create_workspaces,
    set_registration,
    sim_of,
)
from fleet_sandbox.periodic import Periodic, fleet_clockwork
from fleet_sandbox.scenario import apply_scenario, demo_scenario
from fleet_sandbox.server import Sandbox
from fleet_sandbox.state import workspaces_backend

# Where the example desired state (desired-state/activation.yaml) publishes its activation.
DEFAULT_REGISTRATION_PARAMETER = "/fleet-controller/activations/workspaces"


def run_sandbox(
    host: str = "127.0.0.1",
    port: int = 4566,
    workspaces: int = 50,
    scenario: str | Path | None = None,
    auto_register_seconds: float = 2.0,
    stop_event: threading.Event | None = None,
    registration_parameter: str = DEFAULT_REGISTRATION_PARAMETER,
    out: TextIO | None = None,
) -> int:
    """Serve until stopped; returns the process exit code (0 after a clean stop)."""
    out = out or sys.stdout
    started = time.perf_counter()
    stop = stop_event or threading.Event()
    sandbox = Sandbox(host, port)
    endpoint = sandbox.start()
    clockwork: list[Periodic] = []
    restore = _install_signal_handlers(stop)
    try:
        account, region = admin.DEFAULT_ACCOUNT_ID, admin.DEFAULT_REGION
        set_registration(account, region, registration_parameter)
        if scenario is not None:
            document = _read_scenario(scenario)
            if workspaces > 0 and "workspaces" not in document:
                create_workspaces(account, region, WorkspaceGroup(count=workspaces))
            apply_scenario(document, account, region, source=str(scenario))
            origin = str(scenario)
        else:
            apply_scenario(demo_scenario(workspaces), account, region, source="the demo scenario")
            origin = "the demo scenario (desired-state/)"
        if auto_register_seconds > 0:
            clockwork = fleet_clockwork(auto_register_seconds)
        elapsed = time.perf_counter() - started
        print(f"sandbox listening on {endpoint} (ready in {elapsed:.2f}s)", file=out)
        print(f"export AWS_ENDPOINT_URL={endpoint}", file=out)
        # What else boto3 and the AWS CLI need to talk to it (any key pair is accepted).
        print(
            f"export AWS_DEFAULT_REGION={region} AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox",
            file=out,
        )
        count = len(workspaces_backend(account, region).workspaces)
        parameter = sim_of(workspaces_backend(account, region)).parameter_name
        print(
            f"{count} WorkSpaces from {origin} in {region} register with the activation "
            f"published to {parameter}; admin API: {endpoint}/_sandbox/fleet",
            file=out,
        )
        out.flush()
        while not stop.wait(0.2):
            pass
    finally:
        for worker in clockwork:
            worker.stop()
        sandbox.stop()
        restore()
        print("sandbox stopped", file=out)
        out.flush()
    return 0


def _read_scenario(path: str | Path) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a scenario is a mapping of sections")
    return data


def _install_signal_handlers(stop: threading.Event) -> Any:
    """Ctrl-C and SIGTERM end the loop (only possible from the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handle(signum: int, frame: Any) -> None:
        stop.set()

    for sig in previous:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
