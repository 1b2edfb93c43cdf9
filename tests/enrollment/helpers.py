"""An enrollment endpoint in this process, in front of the session's sandbox, and WorkSpaces to ask it.

The WorkSpaces are the sandbox's own (``fleet_sandbox/enrolling.py``): in enrollment mode each has
its own loopback address and asks from it over real HTTP, as the startup script does. ``ask`` is
the same request made by hand, from any address, for the refusal cases.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.aws import AwsApi, AwsSettings, CallRecorder
from controller.manifests import DesiredState, load_desired_state
from controller.observability.metrics import Metrics
from controller.service.enrollment.admission import Admission, AdmissionSettings
from controller.service.enrollment.directory import WorkspaceDirectory
from controller.service.enrollment.issuer import ActivationIssuer
from controller.service.enrollment.server import EnrollmentServer
from controller.service.enrollment.service import EnrollmentService, EnrollmentTarget

CONTROLLER_ID = "enroll-test"
DIRECTORY = "d-1234567890"  # named by the Enrollment: its WorkSpaces may enroll
OTHER_DIRECTORY = "d-abcdef0123"  # named by nobody
WORKSPACE_TAGS = {"CostCenter": "4100", "Team": "payments", "Ignored": "x"}
# What the TagSync below writes for a WorkSpace of DIRECTORY (besides the join tag).
TAGSYNC_TAGS = {"CostCenter": "4100", "Team": "payments", "Compliance": "sox"}
GENEROUS = AdmissionSettings(
    per_source_rate=100, per_source_burst=100, total_rate=1000, total_burst=1000
)


def desired_state(
    directory: Path, valid_for: str = "1h", scope: tuple[str, ...] = (DIRECTORY,)
) -> DesiredState:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "enrollment.yaml").write_text(
        f"""apiVersion: fleet-controller/v1alpha1
kind: Enrollment
metadata: {{name: office}}
spec:
  iamRole: SSMServiceRole-WorkSpaces
  workspaces: {{directoryIds: [{", ".join(scope)}]}}
  validFor: {valid_for}
  tags: {{Fleet: workspaces}}
""",
        encoding="utf-8",
    )
    (directory / "tagsync.yaml").write_text(
        f"""apiVersion: fleet-controller/v1alpha1
kind: TagSync
metadata: {{name: office}}
spec:
  workspaces: {{directoryIds: [{DIRECTORY}]}}
  copyTags: {{include: [CostCenter, Team]}}
  staticTags: {{Compliance: sox}}
""",
        encoding="utf-8",
    )
    return load_desired_state(directory)


def aws_for(endpoint: str) -> AwsApi:
    return AwsApi(
        AwsSettings(region="us-east-1", endpoint_url=endpoint, rate_limits=None, max_attempts=2),
        CallRecorder(),
        sleep=lambda seconds: None,
    )


@dataclass
class Endpoint:
    server: EnrollmentServer
    service: EnrollmentService
    metrics: Metrics
    aws: AwsApi
    wakes: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def counted(self, result: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "fleet_enrollment_requests_total", {"result": result}
        )
        return value or 0.0

    def ask(
        self,
        source: str,
        computer_name: str | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        context: ssl.SSLContext | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """The script's request, made from ``source``: (status, JSON body, response headers)."""
        if body is None:
            body = json.dumps({"computerName": computer_name}).encode()
        connection: http.client.HTTPConnection
        if context is not None:
            connection = http.client.HTTPSConnection(
                "127.0.0.1",
                self.server.port,
                timeout=30,
                source_address=(source, 0),
                context=context,
            )
        else:
            connection = http.client.HTTPConnection(
                "127.0.0.1", self.server.port, timeout=30, source_address=(source, 0)
            )
        try:
            connection.request(
                "POST",
                "/v1/enroll",
                body=body,
                headers={"Content-Type": "application/json", **(headers or {})},
            )
            response = connection.getresponse()
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, dict(response.getheaders())
        finally:
            connection.close()


@contextmanager
def endpoint(
    sandbox: Any,
    desired: DesiredState | Callable[[], DesiredState | None],
    admission: AdmissionSettings = GENEROUS,
    trusted_proxies: tuple[str, ...] = (),
    tls: ssl.SSLContext | None = None,
    may_write: Callable[[], bool] = lambda: True,
    max_in_flight: int = 64,
    max_connections: int = 512,
    request_timeout: float = 10.0,
) -> Iterator[Endpoint]:
    from controller.service.enrollment.addresses import parse_networks

    aws = aws_for(sandbox.endpoint)
    metrics = Metrics(controller_id=CONTROLLER_ID)
    wakes: list[str] = []
    target = EnrollmentTarget(
        "default",
        WorkspaceDirectory(aws, min_refresh_seconds=0.0),
        ActivationIssuer(aws, CONTROLLER_ID),
        may_write=may_write,
        wake=lambda: wakes.append("default"),
    )
    current = desired if callable(desired) else (lambda: desired)
    service = EnrollmentService(
        current, [target], metrics, Admission(admission), parse_networks(trusted_proxies)
    )
    server = EnrollmentServer(
        service,
        "127.0.0.1",
        0,
        tls,
        request_timeout=request_timeout,
        max_in_flight=max_in_flight,
        max_connections=max_connections,
    )
    with server:
        yield Endpoint(server, service, metrics, aws, wakes)


def workspaces(sandbox: Any, count: int, directory: str = DIRECTORY) -> list[str]:
    body = {"count": count, "directoryId": directory, "tags": WORKSPACE_TAGS}
    return list(sandbox.admin.post("fleet/workspaces", body)["workspaceIds"])


def fleet(sandbox: Any) -> dict[str, dict[str, Any]]:
    """The sandbox's view of every WorkSpace, by ID (computer name, address, instance...)."""
    return {row["workspaceId"]: row for row in sandbox.admin.get("fleet")["workspaces"]}


def enroll(
    sandbox: Any, ids: list[str] | None = None, register: bool = True
) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"register": register}
    if ids is not None:
        body["workspaceIds"] = ids
    return list(sandbox.admin.post("fleet/enroll", body)["results"])


def activations(sandbox: Any) -> list[dict[str, Any]]:
    return list(sandbox.client("ssm").describe_activations()["ActivationList"])


def tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}
