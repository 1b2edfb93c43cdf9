"""One reconcile: observe every kind, diff, guard, order, and (in enforce mode) apply.

Operations are applied phase by phase (all of one kind's creates, then its updates, ...), a few at
a time within a phase. A failing operation is logged and counted and the rest go on, and the
resource backs off exponentially across passes, so one bad resource never stalls the fleet nor is
hammered. A stop request is honoured between operations, never in the middle of one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from controller.aws import AwsApi
from controller.engine.backoff import ResourceBackoff
from controller.engine.plan import Action, Operation, Plan
from controller.engine.prune import PruneSettings, guard
from controller.kinds import Kind, all_kinds
from controller.kinds.base import Context
from controller.manifests import DesiredState
from controller.observability.metrics import Metrics
from controller.observability.redaction import redact_text

log = structlog.get_logger("fleet_controller.reconcile")

_ACTION_ORDER = {Action.CREATE: 0, Action.REPLACE: 1, Action.UPDATE: 2, Action.DELETE: 3}


@dataclass
class ReconcileSettings:
    controller_id: str = "default"
    target: str = "default"
    prune: PruneSettings = field(default_factory=PruneSettings)
    apply_concurrency: int = 4  # operations of one phase in flight at once


@dataclass
class _Counter:
    total: int
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _phase_key(operation: Operation, order: dict[str, int]) -> tuple[int, int, int]:
    return (order.get(operation.kind, 99), operation.stage, _ACTION_ORDER[operation.action])


def order_operations(
    operations: Sequence[Operation], kinds: Sequence[Kind[Any]]
) -> list[Operation]:
    """Kinds in apply order; within a kind, stages in order; within a stage, creates, replaces,
    updates, then deletes. Stable, so a kind's own order survives within a phase."""
    order = {kind.kind: kind.apply_order for kind in kinds}
    return sorted(operations, key=lambda op: _phase_key(op, order))


def _phases(operations: Sequence[Operation], kinds: Sequence[Kind[Any]]) -> list[list[Operation]]:
    """Consecutive runs of one kind, stage and action: the units that may run concurrently."""
    order = {kind.kind: kind.apply_order for kind in kinds}
    phases: list[list[Operation]] = []
    previous: tuple[int, int, int] | None = None
    for operation in operations:
        key = _phase_key(operation, order)
        if key != previous:
            phases.append([])
            previous = key
        phases[-1].append(operation)
    return phases


@dataclass
class ApplyResult:
    applied: list[Operation] = field(default_factory=list)
    failed: list[tuple[Operation, str]] = field(default_factory=list)
    skipped: list[Operation] = field(default_factory=list)  # not started because of a stop request
    deferred: list[Operation] = field(default_factory=list)  # in backoff after repeated failures

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
        clock: Callable[[], datetime] | None = None,
        kinds: Sequence[Kind[Any]] | None = None,
        backoff: ResourceBackoff | None = None,
    ) -> None:
        self.aws = aws
        self.settings = settings
        self.metrics = metrics
        # AWS's clock (its answers' Date headers) unless a test supplies one: expiry, grace
        # periods and AWS's own timestamps are compared on AWS's time, not the host's.
        self.clock = clock or aws.clock.now
        self.kinds = list(kinds if kinds is not None else all_kinds())
        self._kinds_by_name = {kind.kind: kind for kind in self.kinds}
        self.backoff = backoff or ResourceBackoff()

    def context(self) -> Context:
        return Context(
            controller_id=self.settings.controller_id,
            region=self.aws.region,
            now=self.clock(),
            target=self.settings.target,
        )

    def plan(self, desired: DesiredState) -> Plan:
        """Observe and diff every kind that has desired documents; no writes."""
        plan = Plan(desired_digest=desired.digest)
        counts = {kind.kind: len(desired.of_kind(kind.kind)) for kind in self.kinds}
        observing = self.context()
        observed = [
            (kind, manifests, kind.observe(self.aws, manifests, observing))
            for kind in self.kinds
            if (manifests := desired.of_kind(kind.kind))
        ]
        ctx = self.context()  # after the reads: AWS's clock is known from their Date headers
        for kind, manifests, live in observed:
            kind_plan = kind.diff(manifests, live, ctx)
            kind.report(manifests, live, self.metrics, ctx)
            plan.operations += kind_plan.operations
            plan.findings += kind_plan.findings
        plan = guard(plan, self.settings.prune, counts)
        plan.operations = order_operations(plan.operations, self.kinds)
        self._report_drift(plan.operations)
        skew = self.aws.clock.skew_seconds
        if skew is not None:
            self.metrics.set_aws_clock_skew(self.settings.target, skew)
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
        """Apply the plan phase by phase (a kind's creates, then its updates, ...), each phase
        with up to ``apply_concurrency`` operations at once. No operation starts once ``stop`` is
        set; the ones in flight finish. Resources in backoff are deferred to a later pass."""
        ctx = self.context()
        result = ApplyResult()
        counter = _Counter(len(plan.operations))
        with ThreadPoolExecutor(
            max_workers=self.settings.apply_concurrency, thread_name_prefix="apply"
        ) as pool:
            for phase in _phases(plan.operations, self.kinds):
                runnable = []
                for operation in phase:
                    wait = self.backoff.wait_remaining(operation)
                    if wait > 0:
                        result.deferred.append(operation)
                        log.warning(
                            "operation deferred: backing off after repeated failures",
                            kind=operation.kind,
                            name=operation.name,
                            resource=operation.resource,
                            retry_in_seconds=round(wait),
                            failures=self.backoff.failures(operation),
                        )
                    else:
                        runnable.append(operation)
                futures = [
                    pool.submit(self._apply_one, op, ctx, stop, result, counter, progress)
                    for op in runnable
                ]
                for future in futures:
                    future.result()
                if stop is not None and stop.is_set():
                    break
        applied = {id(op) for op in result.applied}
        failed = {id(op) for op, _ in result.failed}
        deferred = {id(op) for op in result.deferred}
        result.skipped = [op for op in plan.operations if id(op) not in applied | failed | deferred]
        if result.skipped:
            log.info("apply stopped", remaining=len(result.skipped))
        return result

    def _apply_one(
        self,
        operation: Operation,
        ctx: Context,
        stop: threading.Event | None,
        result: ApplyResult,
        counter: _Counter,
        progress: ProgressCallback | None,
    ) -> None:
        if stop is not None and stop.is_set():
            return  # reported as skipped: never started
        error_text: str | None = None
        try:
            self._kinds_by_name[operation.kind].apply(self.aws, operation, ctx)
        except Exception as error:
            error_text = redact_text(f"{type(error).__name__}: {error}")
            delay = self.backoff.failed(operation)
            with counter.lock:
                result.failed.append((operation, error_text))
        else:
            delay = 0.0
            self.backoff.succeeded(operation)
            with counter.lock:
                result.applied.append(operation)
        self.metrics.apply_operations_total.labels(
            target=self.settings.target,
            kind=operation.kind,
            action=operation.action.value,
            result="error" if error_text else "success",
        ).inc()
        outcome = (
            {"error": error_text, "retry_in_seconds": round(delay)}
            if error_text
            else {"changes": len(operation.changes)}
        )
        (log.error if error_text else log.info)(
            "operation failed" if error_text else "operation applied",
            kind=operation.kind,
            name=operation.name,
            action=operation.action.value,
            resource=operation.resource,
            reason=operation.reason,
            **outcome,
        )
        if progress is not None:
            with counter.lock:
                counter.done += 1
                progress(counter.done, counter.total, operation, error_text)

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
                self._report_drift(
                    [op for op, _ in result.failed] + result.skipped + result.deferred
                )
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
