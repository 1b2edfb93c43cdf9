"""Benchmark: the engine's apply bookkeeping is linear in the number of operations.

``Reconciler.apply`` on 5,000, 10,000 and 20,000 TagSync operations whose apply does nothing (no
AWS, no sandbox): what is left is the engine's own work per operation (phases, blocking checks,
backoff, results, metrics, logging at warning level). Linear means CPU per operation stays flat:
the ratio of 20,000 to 10,000 is about 2.

    python -m benchmarks.apply_bookkeeping [--sizes 5000 10000 20000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from controller.aws import AwsApi, AwsSettings
from controller.contract import Action, Context, Event, Operation, Plan
from controller.engine.reconcile import Reconciler, ReconcileSettings
from controller.kinds.tagsync import ChangeTags, TagSyncKind
from controller.observability.logging import configure_logging
from controller.observability.metrics import Metrics


class _NoWrites(TagSyncKind):
    """TagSync whose apply does nothing: only the engine's bookkeeping is measured."""

    def apply(self, aws: AwsApi, operation: Operation, ctx: Context) -> Sequence[Event]:
        return ()


def apply_cpu(size: int) -> float:
    reconciler = Reconciler(
        AwsApi(AwsSettings(region="us-east-1", rate_limits=None)),
        ReconcileSettings(),
        Metrics(),
        clock=lambda: datetime.now(UTC),
        kinds=[_NoWrites()],
    )
    operations = [
        Operation(
            kind="TagSync",
            name="finance",
            action=Action.UPDATE,
            resource=f"mi-{n:017x}",
            payload=ChangeTags(instance_id=f"mi-{n:017x}", add={"A": "1"}),
        )
        for n in range(size)
    ]
    started = time.process_time()
    result = reconciler.apply(Plan(operations=operations))
    elapsed = time.process_time() - started
    assert len(result.applied) == size
    return elapsed


def run(sizes: list[int]) -> None:
    configure_logging("json", "warning")
    print(f"{'operations':>10} {'CPU s':>7} {'µs per operation':>17}")
    measured: dict[int, float] = {}
    for size in sizes:
        measured[size] = min(apply_cpu(size) for _ in range(3))
        print(f"{size:>10} {measured[size]:>7.2f} {measured[size] / size * 1e6:>17.0f}")
    largest, half = max(sizes), max(sizes) // 2
    if half in measured:
        ratio = measured[largest] / measured[half]
        print(f"CPU of {largest:,} over {half:,}: {ratio:.2f} (linear: 2, quadratic: 4)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000])
    run(parser.parse_args().sizes)


if __name__ == "__main__":
    main()
