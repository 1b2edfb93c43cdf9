"""Shared setup for controller tests against the sandbox: desired state on disk, a fleet, a controller."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from controller.aws import AwsApi, AwsSettings, CallRecorder
from controller.engine.prune import PruneSettings
from controller.engine.reconcile import Reconciler, ReconcileSettings
from controller.manifests import DesiredState, load_desired_state
from controller.observability.metrics import Metrics

EXAMPLE = Path(__file__).resolve().parents[2] / "desired-state"
FINANCE_DIRECTORY = "d-9067a1b2c3"
ENGINEERING_DIRECTORY = "d-9067d4e5f6"
PARAMETER = "/fleet-controller/activations/workspaces"
CONTROLLER_ID = "test-controller"
# A Command document someone else wrote: for names the controller must refuse to take over.
THEIR_DOCUMENT = (
    '{"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runPowerShellScript",'
    ' "name": "theirs", "inputs": {"runCommand": ["Write-Output theirs"]}}]}'
)


def copy_example(
    destination: Path, only: tuple[str, ...] = ("activation.yaml", "tagsync.yaml")
) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    for name in only:
        shutil.copy(EXAMPLE / name, destination / name)
    return destination


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")
    return directory


def make_fleet(sandbox: Any, finance: int, engineering: int) -> list[str]:
    """WorkSpaces in the example's two directories, with the tags the example copies."""
    ids: list[str] = []
    for count, directory, tags in (
        (
            finance,
            FINANCE_DIRECTORY,
            {"CostCenter": "4100", "LineOfBusiness": "finance", "App-Excel": "true"},
        ),
        (
            engineering,
            ENGINEERING_DIRECTORY,
            {"CostCenter": "5200", "LineOfBusiness": "engineering", "Team": "platform"},
        ),
    ):
        if count:
            body = {"count": count, "directoryId": directory, "tags": tags}
            ids += sandbox.admin.post("fleet/workspaces", body)["workspaceIds"]
    sandbox.admin.post("fleet/registration", {"parameterName": PARAMETER})
    return ids


def boot(sandbox: Any) -> dict[str, Any]:
    return dict(sandbox.admin.post("fleet/boot", {}))


def sandbox_clock(sandbox: Any) -> datetime:
    return datetime.fromisoformat(sandbox.admin.get("clock")["now"])


def controller(
    sandbox: Any, prune: bool = False, max_deletes: int = 5, use_sandbox_clock: bool = True
) -> Reconciler:
    api = AwsApi(
        AwsSettings(region=sandbox.region, endpoint_url=sandbox.endpoint, rate_limits=None),
        CallRecorder(),
        sleep=lambda seconds: None,
    )
    clock = (lambda: sandbox_clock(sandbox)) if use_sandbox_clock else None
    kwargs: dict[str, Any] = {"clock": clock} if clock else {}
    return Reconciler(
        api,
        ReconcileSettings(
            controller_id=CONTROLLER_ID, prune=PruneSettings(enabled=prune, max_deletes=max_deletes)
        ),
        Metrics(controller_id=CONTROLLER_ID),
        **kwargs,
    )


def cli(sandbox: Any, *args: str, controller_id: str = CONTROLLER_ID) -> int:
    """The CLI as an operator runs it, against the sandbox."""
    from controller.cli import main

    return main(
        [
            *args,
            "--endpoint-url",
            sandbox.endpoint,
            "--region",
            "us-east-1",
            "--controller-id",
            controller_id,
            "--log-format",
            "json",
        ]
    )


def load(directory: Path) -> DesiredState:
    return load_desired_state(directory)


def writes(sandbox: Any) -> dict[str, int]:
    """Write calls the sandbox served since the last reset of its counter, by operation."""
    read_prefixes = ("Describe", "List", "Get", "Head")
    return {
        f"{row['service']}:{row['operation']}": row["count"]
        for row in sandbox.admin.calls()
        if not row["operation"].startswith(read_prefixes)
    }


def listed_instance_tags(sandbox: Any) -> dict[str, dict[str, str]]:
    """Every listed managed instance's tags, read one instance at a time (consistent, where the
    tagging API may lag)."""
    ssm = sandbox.client("ssm")
    return {
        i["InstanceId"]: {
            t["Key"]: t["Value"]
            for t in ssm.list_tags_for_resource(
                ResourceType="ManagedInstance", ResourceId=i["InstanceId"]
            )["TagList"]
        }
        for i in ssm.describe_instance_information(MaxResults=50)["InstanceInformationList"]
    }


def instance_tags(sandbox: Any) -> dict[str, dict[str, str]]:
    """Every managed instance's tags, read through the tagging API."""
    tagging = sandbox.client("resourcegroupstaggingapi")
    found: dict[str, dict[str, str]] = {}
    for page in tagging.get_paginator("get_resources").paginate(
        ResourceTypeFilters=["ssm:managed-instance"]
    ):
        for item in page["ResourceTagMappingList"]:
            found[item["ResourceARN"].rsplit("/", 1)[-1]] = {
                t["Key"]: t["Value"] for t in item["Tags"]
            }
    return found
