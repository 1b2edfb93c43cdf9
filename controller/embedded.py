"""The embedded sandbox behind ``--sandbox``: a local AWS endpoint with a simulated fleet.

It starts the sandbox in-process, applies a scenario (WorkSpaces in two directories with tags),
and keeps a background "fleet tick": WorkSpaces register and due associations run, the way a real
fleet would catch up on its own. How the WorkSpaces get their activation follows the desired
state: with an Enrollment manifest they ask the controller's enrollment endpoint over HTTP, each
from its own loopback address (``enroll_at``); otherwise they read the parameter the first
Activation publishes to.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import yaml

from controller.aws import AwsSettings
from controller.manifests import DesiredState
from fleet_sandbox.client import SandboxClient

log = structlog.get_logger("fleet_controller.embedded")

SANDBOX_LOGGERS = ("fleet_sandbox", "moto")
"""The sandbox's own loggers: a simulated WorkSpace saying it registered is the sandbox's news,
not the controller's, so they speak only at ``--sandbox-log-level`` (warning unless asked)."""


@dataclass
class EmbeddedSandbox:
    workspaces: int = 50
    scenario: Path | None = None
    registration_parameter: str | None = None
    tick_seconds: float = 2.0
    region: str = "us-east-1"
    endpoint: str = ""
    _server: Any = field(default=None, repr=False)
    _clockwork: list[Any] = field(default_factory=list, repr=False)

    def start(self) -> str:
        from fleet_sandbox.periodic import fleet_clockwork
        from fleet_sandbox.server import Sandbox

        self._server = Sandbox()
        self.endpoint = self._server.start()
        admin = SandboxClient(self.endpoint, region=self.region)
        admin.post("scenario", self._scenario())
        if self.registration_parameter:
            admin.post("fleet/registration", {"parameterName": self.registration_parameter})
        self._clockwork = fleet_clockwork(self.tick_seconds)
        return self.endpoint

    def _scenario(self) -> dict[str, Any]:
        from fleet_sandbox.scenario import demo_scenario

        if self.scenario is not None:
            data = yaml.safe_load(self.scenario.read_text(encoding="utf-8")) or {}
        else:
            data = demo_scenario(self.workspaces)
        if not isinstance(data, dict):
            raise ValueError("a sandbox scenario is a mapping of sections")
        return data

    def enroll_at(self, url: str) -> None:
        """From now on the fleet's WorkSpaces enroll at ``url``, each from its own address."""
        SandboxClient(self.endpoint, region=self.region).post("fleet/enrollment", {"url": url})

    def stop(self) -> None:
        for worker in self._clockwork:
            worker.stop()
        if self._server is not None:
            self._server.stop()


def start_embedded(
    settings: AwsSettings,
    desired: DesiredState | None,
    workspaces: int = 50,
    scenario: Path | None = None,
    enrolls: bool = False,
    log_level: str = "warning",
) -> EmbeddedSandbox:
    """Start the embedded sandbox and point ``settings`` at it (``--sandbox``).

    Unless ``enrolls`` (``run`` with an enrollment endpoint, which then calls ``enroll_at``), its
    WorkSpaces read their activation from the first Activation's publish parameter, so the loop
    closes: the controller publishes, the fleet registers, TagSync tags what registered.
    """
    parameter = None
    if desired is not None and not enrolls:
        activations = desired.of_kind("Activation")
        parameter = str(activations[0].spec.publish.parameter_name) if activations else None
    for name in SANDBOX_LOGGERS:
        logging.getLogger(name).setLevel(log_level.upper())
    embedded = EmbeddedSandbox(
        workspaces=workspaces, scenario=scenario, registration_parameter=parameter
    )
    settings.endpoint_url = embedded.start()
    settings.region = settings.region or embedded.region
    settings.rate_limits = None  # the sandbox has no API limits to stay under
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "sandbox")  # it accepts any credentials
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "sandbox")
    log.info(
        "embedded sandbox started",
        detail=True,  # the command's start-up line says it
        endpoint=settings.endpoint_url,
        workspaces=workspaces,
    )
    return embedded


def run_standalone(host: str, port: int, workspaces: int, scenario: Path | None) -> None:
    """``fleet-controller sandbox``: the sandbox on its own, until Ctrl-C."""
    from fleet_sandbox.main import run_sandbox

    run_sandbox(host=host, port=port, workspaces=workspaces, scenario=scenario)
