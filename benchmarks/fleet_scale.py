"""Benchmark: Activation + TagSync against sandbox fleets of 1,000 and 5,000 WorkSpaces.

For each size it onboards the fleet (the controller publishes activations, rotating at 90% of
1,000 registrations, and the simulated WorkSpaces register), then measures two passes:

- first apply: the pass that copies tags onto every newly registered instance;
- zero-drift reconcile: the same pass again, when nothing changed.

It prints wall time, AWS calls by operation (counted by the controller and by the sandbox), and
calls as a ratio of the minimum possible: the pages needed to read everything once plus the
writes needed. Wall time against the sandbox is our overhead plus moto's, not AWS latency (the
sandbox closes its connection after every response).

    python -m benchmarks.fleet_scale [--sizes 1000 5000]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from controller.aws import AwsApi, AwsSettings, CallRecorder
from controller.engine.plan import Action, Plan
from controller.engine.reconcile import Reconciler, ReconcileSettings
from controller.kinds.activation import ActivationKind
from controller.kinds.tagsync import TagChange
from controller.manifests import DesiredState, load_desired_state
from controller.observability.logging import configure_logging
from controller.observability.metrics import Metrics
from controller.sandbox.client import SandboxClient
from controller.sandbox.server import Sandbox

EXAMPLE = Path(__file__).resolve().parent.parent / "desired-state"
PARAMETER = "/fleet-controller/activations/workspaces"
DIRECTORIES = {
    "d-9067a1b2c3": {"CostCenter": "4100", "LineOfBusiness": "finance", "App-Excel": "true"},
    "d-9067d4e5f6": {"CostCenter": "5200", "LineOfBusiness": "engineering", "Team": "platform"},
}


def _desired(workdir: Path) -> DesiredState:
    for name in ("activation.yaml", "tagsync.yaml"):
        shutil.copy(EXAMPLE / name, workdir / name)
    return load_desired_state(workdir)


def _reconciler(endpoint: str, only_activations: bool = False) -> Reconciler:
    api = AwsApi(
        AwsSettings(region="us-east-1", endpoint_url=endpoint, rate_limits=None), CallRecorder()
    )
    kinds = [ActivationKind()] if only_activations else None
    return Reconciler(api, ReconcileSettings(controller_id="benchmark"), Metrics(), kinds=kinds)


def _writes_needed(plan: Plan) -> int:
    """The write calls a perfect controller would make for this plan."""
    needed = 0
    for operation in plan.operations:
        if isinstance(operation.payload, TagChange):
            needed += bool(operation.payload.add) + bool(operation.payload.remove)
        elif operation.action in (Action.CREATE, Action.REPLACE):
            needed += 2  # CreateActivation, then PutParameter to publish it
        else:
            needed += 1
    return needed


def _onboard(admin: SandboxClient, reconciler: Reconciler, desired: DesiredState, size: int) -> int:
    """Create and register the fleet; returns the number of activation rotations it took."""
    ssm = reconciler.aws
    if size > 1000:
        ssm.call(
            "ssm",
            "UpdateServiceSetting",
            SettingId="/ssm/managed-instance/activation-tier",
            SettingValue="advanced",
        )
    half = size // 2
    for count, (directory, tags) in zip((half, size - half), DIRECTORIES.items(), strict=True):
        admin.post("fleet/workspaces", {"count": count, "directoryId": directory, "tags": tags})
    admin.post("fleet/registration", {"parameterName": PARAMETER})
    rounds = 0
    registered = 0
    while registered < size and rounds < 20:
        reconciler.reconcile(desired)
        results = admin.post("fleet/boot", {})["results"]
        registered += sum(1 for r in results if r.get("instanceId"))
        rounds += 1
    if registered < size:
        raise RuntimeError(f"only {registered} of {size} WorkSpaces registered")
    return rounds


def _minimum(size: int, instances: int, activations: int, writes: int) -> dict[str, int]:
    return {
        "workspaces:DescribeWorkspaces": math.ceil(size / 25),
        "ssm:DescribeInstanceInformation": math.ceil(instances / 50),
        "resourcegroupstaggingapi:GetResources": math.ceil((size + instances) / 100),
        "ssm:DescribeActivations": max(1, math.ceil(activations / 50)),
        "ssm:DescribeParameters": 1,
        "ssm:ListTagsForResource": 1,  # the published parameter's owner tag
        "writes": writes,
    }


def _measure(
    label: str,
    admin: SandboxClient,
    reconciler: Reconciler,
    desired: DesiredState,
    size: int,
) -> None:
    recorder = reconciler.aws.recorder
    recorder.reset()
    admin.reset_calls()
    started = time.perf_counter()
    plan, result = reconciler.reconcile(desired)
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise RuntimeError(f"{label}: {len(result.failed)} operations failed")
    client_side = recorder.by_operation()
    server_side = Counter({f"{r['service']}:{r['operation']}": r["count"] for r in admin.calls()})
    activations = sum(1 for _ in reconciler.aws.items("ssm", "DescribeActivations", MaxResults=50))
    expected_writes = _writes_needed(plan)
    minimum = _minimum(size, size, activations, expected_writes)
    total_minimum = sum(minimum.values())
    total = sum(client_side.values())
    print(f"  {label}: {elapsed:.2f} s wall, {len(plan.operations)} operations applied")
    for operation, count in sorted(client_side.items()):
        floor = minimum.get(operation)
        note = f"(minimum {floor})" if floor is not None else "(write)"
        print(f"    {operation:42} {count:6}  {note}")
    writes = recorder.writes()
    print(f"    {'writes':42} {writes:6}  (needed {expected_writes})")
    print(
        f"    calls {total} vs minimum {total_minimum}: ratio {total / total_minimum:.3f}; "
        f"sandbox counted the same calls: {server_side == client_side}"
    )


def run(sizes: list[int]) -> None:
    configure_logging("json", "warning")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "benchmark")  # the sandbox accepts any
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "benchmark")
    with Sandbox() as sandbox:
        admin = SandboxClient(sandbox.endpoint)
        for size in sizes:
            admin.reset()
            with tempfile.TemporaryDirectory() as workdir:
                desired = _desired(Path(workdir))
                onboarding = _reconciler(sandbox.endpoint, only_activations=True)
                started = time.perf_counter()
                rounds = _onboard(admin, onboarding, desired, size)
                print(
                    f"{size} WorkSpaces: onboarded in {rounds} rounds "
                    f"({time.perf_counter() - started:.1f} s, not measured below)"
                )
                reconciler = _reconciler(sandbox.endpoint)
                _measure("first apply", admin, reconciler, desired, size)
                _measure("zero-drift reconcile", admin, reconciler, desired, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    run(parser.parse_args().sizes)


if __name__ == "__main__":
    main()
