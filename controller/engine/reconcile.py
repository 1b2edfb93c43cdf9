"""One reconcile: observe every kind, diff, guard, order, and (in enforce mode) apply.

Operations are applied one at a time; a failing operation is logged and counted and the rest go
on, so one bad resource never stalls the fleet. A stop request is honoured between operations,
never in the middle of one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from controller.aws import AwsApi
from controller.engine.plan import Action, Operation, Plan
from controller.engine.prune import PruneSettings, guard
from controller.kinds import Kind, all_kinds
from controller.kinds.base import Context
from controller.manifests import DesiredState
from controller.observability.metrics import Metrics
from controller.observability.redaction import redact_text

log = structlog.get_logger("fleet_controller.reconcile")

_ACTION_ORDER = {Action.CREATE: 0, Action.REPLACE: 1, Action.UPDATE: 2, Action.DELETE: 3}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ReconcileSettings:
    controller_id: str = "default"
    target: str = "default"
    prune: PruneSettings = field(default_factory=PruneSettings)


@dataclass
class ApplyResult:
    applied: list[Operation] = field(default_factory=list)
    failed: list[tuple[Operation, str]] = field(default_factory=list)
    skipped: list[Operation] = field(default_factory=list)  # not started because of a stop request

    @property
    def ok(self) -> bool:
        return not self.failed


ProgressCallback = Callable[[int, int, Operation, str | None], None]


class Reconciler:
    def __init__(
        self,
        aws: AwsApi,
        settings: ReconcileSettings,
        metrics: Metrics,
        clock: Callable[[], datetime] = utc_now,
        kinds: Sequence[Kind[Any]] | None = None,
    ) -> None:
        self.aws = aws
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.kinds = list(kinds if kinds is not None else all_kinds())

    def context(self) -> Context:
        return Context(
            controller_id=self.settings.controller_id,
            region=self.aws.region,
            now=self.clock(),
            target=self.settings.target,
        )

    def plan(self, desired: DesiredState) -> Plan:
        """Observe and diff every kind that has desired documents; no writes."""
        ctx = self.context()
        plan = Plan(desired_digest=desired.digest)
        counts: dict[str, int] = {}
        for kind in self.kinds:
            manifests = desired.of_kind(kind.kind)
            counts[kind.kind] = len(manifests)
            if not manifests:
                continue
            live = kind.observe(self.aws, manifests, ctx)
            kind_plan = kind.diff(manifests, live, ctx)
            kind.report(manifests, live, self.metrics, ctx)
            plan.operations += kind_plan.operations
            plan.findings += kind_plan.findings
        plan = guard(plan, self.settings.prune, counts)
        order = {kind.kind: kind.apply_order for kind in self.kinds}
        plan.operations.sort(key=lambda op: (order.get(op.kind, 99), _ACTION_ORDER[op.action]))
        self._report_drift(plan.operations)
        return plan

    def _report_drift(self, operations: Sequence[Operation]) -> None:
        drifted: dict[str, int] = {}
        for operation in operations:
            drifted[operation.kind] = drifted.get(operation.kind, 0) + 1
        self.metrics.set_family(
            self.metrics.drifted_resources,
            self.settings.target,
            {(kind.kind,): float(drifted.get(kind.kind, 0)) for kind in self.kinds},
        )

    def apply(
        self,
        plan: Plan,
        stop: threading.Event | None = None,
        progress: ProgressCallback | None = None,
    ) -> ApplyResult:
        ctx = self.context()
        by_name = {kind.kind: kind for kind in self.kinds}
        result = ApplyResult()
        total = len(plan.operations)
        for index, operation in enumerate(plan.operations, start=1):
            if stop is not None and stop.is_set():
                result.skipped = plan.operations[index - 1 :]
                log.info("apply stopped", remaining=len(result.skipped))
                break
            error_text: str | None = None
            try:
                by_name[operation.kind].apply(self.aws, operation, ctx)
            except Exception as error:
                error_text = redact_text(f"{type(error).__name__}: {error}")
                result.failed.append((operation, error_text))
            else:
                result.applied.append(operation)
            outcome = "error" if error_text else "success"
            self.metrics.apply_operations_total.labels(
                target=self.settings.target,
                kind=operation.kind,
                action=operation.action.value,
                result=outcome,
            ).inc()
            event = log.error if error_text else log.info
            event(
                "operation applied" if not error_text else "operation failed",
                kind=operation.kind,
                name=operation.name,
                action=operation.action.value,
                resource=operation.resource,
                reason=operation.reason,
                changes=len(operation.changes),
                error=error_text,
            )
            if progress is not None:
                progress(index, total, operation, error_text)
        return result

    def reconcile(
        self, desired: DesiredState, enforce: bool = True, stop: threading.Event | None = None
    ) -> tuple[Plan, ApplyResult]:
        """Plan, then apply when enforcing; records the reconcile's metrics either way."""
        started = time.monotonic()
        target = self.settings.target
        try:
            plan = self.plan(desired)
            result = self.apply(plan, stop) if enforce else ApplyResult()
            if enforce:  # what is still drifted after this apply
                self._report_drift([op for op, _ in result.failed] + result.skipped)
        except Exception:
            self.metrics.reconciles_total.labels(target=target, result="error").inc()
            raise
        finally:
            self.metrics.reconcile_duration_seconds.labels(target=target).observe(
                time.monotonic() - started
            )
        outcome = "success" if result.ok else "error"
        self.metrics.reconciles_total.labels(target=target, result=outcome).inc()
        if result.ok:
            self.metrics.last_successful_reconcile_timestamp_seconds.labels(target=target).set(
                time.time()
            )
        return plan, result
