"""What the benchmarks share: the example desired state, a sandbox fleet, a controller."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from controller.aws import AwsApi, AwsSettings, CallRecorder
from controller.contract.plan import Action, Plan
from controller.engine.reconcile import Reconciler, ReconcileSettings
from controller.kinds.activation import ActivationKind
from controller.kinds.tagsync import ChangeTags
from controller.manifests import DesiredState, load_desired_state
from controller.observability.metrics import Metrics
from fleet_sandbox.client import SandboxClient

EXAMPLE = Path(__file__).resolve().parent.parent / "desired-state"
PARAMETER = "/fleet-controller/activations/workspaces"
GROUP = 5000  # WorkSpaces the simulator creates per request at most
DIRECTORIES = {
    "d-9067a1b2c3": {"CostCenter": "4100", "LineOfBusiness": "finance", "App-Excel": "true"},
    "d-9067d4e5f6": {"CostCenter": "5200", "LineOfBusiness": "engineering", "Team": "platform"},
}


def desired_state(workdir: Path) -> DesiredState:
    for name in ("activation.yaml", "tagsync.yaml"):
        shutil.copy(EXAMPLE / name, workdir / name)
    return load_desired_state(workdir)


def make_reconciler(
    endpoint: str, only_activations: bool = False, rate_limits: bool = False
) -> Reconciler:
    """A controller against the sandbox; rate limits off unless the benchmark measures them."""
    settings = AwsSettings(region="us-east-1", endpoint_url=endpoint)
    if not rate_limits:
        settings.rate_limits = None
    api = AwsApi(settings, CallRecorder())
    kinds = [ActivationKind()] if only_activations else None
    return Reconciler(api, ReconcileSettings(controller_id="benchmark"), Metrics(), kinds=kinds)


def writes_needed(plan: Plan) -> int:
    """The write calls a perfect controller would make for this plan."""
    needed = 0
    for operation in plan.operations:
        if isinstance(operation.payload, ChangeTags):
            needed += bool(operation.payload.add) + bool(operation.payload.remove)
        elif operation.action in (Action.CREATE, Action.REPLACE):
            needed += 2  # CreateActivation, then PutParameter to publish it
        else:
            needed += 1
    return needed


def onboard(
    admin: SandboxClient, reconciler: Reconciler, desired: DesiredState, size: int, have: int = 0
) -> int:
    """Create and register WorkSpaces until the fleet has ``size`` (it has ``have``), half in
    each example directory; returns the number of activation rotations it took."""
    ssm = reconciler.aws
    if size > 1000:
        ssm.call(
            "ssm",
            "UpdateServiceSetting",
            SettingId="/ssm/managed-instance/activation-tier",
            SettingValue="advanced",
        )
    adding = size - have
    half = adding // 2
    for count, (directory, tags) in zip((half, adding - half), DIRECTORIES.items(), strict=True):
        for start in range(0, count, GROUP):
            body = {"count": min(GROUP, count - start), "directoryId": directory, "tags": tags}
            admin.post("fleet/workspaces", body)
    admin.post("fleet/registration", {"parameterName": PARAMETER})
    rounds = 0
    registered = 0
    while registered < adding and rounds < adding // 900 + 5:
        reconciler.reconcile(desired)
        results = admin.post("fleet/boot", {})["results"]
        registered += sum(1 for r in results if r.get("instanceId"))
        rounds += 1
    if registered < adding:
        raise RuntimeError(f"only {registered} of {adding} WorkSpaces registered")
    return rounds


def fake_credentials() -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "benchmark")  # the sandbox accepts any
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "benchmark")
