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
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.fleet import (
    desired_state,
    fake_credentials,
    make_reconciler,
    onboard,
    writes_needed,
)
from controller.engine.reconcile import Reconciler
from controller.manifests import DesiredState
from controller.observability.logging import configure_logging
from fleet_sandbox.client import SandboxClient
from fleet_sandbox.server import Sandbox


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
    expected_writes = writes_needed(plan)
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
    fake_credentials()
    with Sandbox() as sandbox:
        admin = SandboxClient(sandbox.endpoint)
        for size in sizes:
            admin.reset()
            with tempfile.TemporaryDirectory() as workdir:
                desired = desired_state(Path(workdir))
                onboarding = make_reconciler(sandbox.endpoint, only_activations=True)
                started = time.perf_counter()
                rounds = onboard(admin, onboarding, desired, size)
                print(
                    f"{size} WorkSpaces: onboarded in {rounds} rounds "
                    f"({time.perf_counter() - started:.1f} s, not measured below)"
                )
                reconciler = make_reconciler(sandbox.endpoint)
                _measure("first apply", admin, reconciler, desired, size)
                _measure("zero-drift reconcile", admin, reconciler, desired, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    run(parser.parse_args().sizes)


if __name__ == "__main__":
    main()
