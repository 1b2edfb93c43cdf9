"""One reconcile: observe every kind, diff, judge health, guard, order, and (enforcing) apply.

Every kind with desired manifests (or implied by them) is observed first, then diffed on AWS's
clock. Operations are applied wave by wave along the dependency graph (``engine/graph.py``), a few
at a time within a phase (one kind's creates, then its updates, ...), deletes last in reverse.

Dependencies block: an operation (other than a delete) of a resource that references, directly or
not, one refused in this plan is not applied but listed as blocked, with why; at apply time, one
whose dependency failed, was deferred or was blocked in this pass is blocked the same way. A
failing operation is logged and counted and the rest go on, and the resource backs off
exponentially across passes, so one bad resource never stalls the fleet nor is hammered. A stop
request is honoured between operations, never in the middle of one.

The pass tells the truth: it is ``result="success"`` (and moves the last-success timestamp) only
when nothing was refused, blocked, failed, deferred or left unstarted.

An applied operation may return events; the engine hands each along the edges into its kind (the
referencing kinds' ``on_dependency`` hooks, with this pass's observation of them) and then lets the
emitting kind record that they were heard (``after_dependents``).

Kinds that keep a live cache (``ctx.memory``, one per Reconciler, so per target) take part in two
more kinds of pass. A cached pass (``reconcile(..., cached=True)``, after a desired-state change)
diffs against the cache instead of reading, so writing starts at once; the next full pass
verifies. A targeted pass (``reconcile_changes``, after events) reads and plans only the
resources the events named. Writing is one at a time per target: a full pass reads without the
lock, then takes it to re-read its cache-keeping kinds from their caches (what targeted passes
learned meanwhile), diff and apply, so neither pass undoes what the other just wrote.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from controller.aws import AwsApi
from controller.contract import (
    Action,
    Blocked,
    Changes,
    Context,
    Event,
    Finding,
    Health,
    Kind,
    KindMemory,
    KindStatus,
    Operation,
    Plan,
    Ref,
    Requeue,
    Severity,
)
from controller.contract.registry import registered
from controller.engine.backoff import ResourceBackoff
from controller.engine.graph import Graph
from controller.engine.prune import PruneSettings, guard
from controller.manifests import DesiredState
from controller.observability.metrics import Metrics
from controller.observability.redaction import redact_text

log = structlog.get_logger("fleet_controller.reconcile")


@dataclass
class ReconcileSettings:
    controller_id: str = "default"
    target: str = "default"
    prune: PruneSettings = field(default_factory=PruneSettings)
    apply_concurrency: int = 4  # operations of one phase in flight at once
    consistency_window: timedelta = field(default_factory=lambda: KindMemory().consistency_window)


@dataclass
class _Counter:
    total: int
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class ApplyResult:
    applied: list[Operation] = field(default_factory=list)
    failed: list[tuple[Operation, str]] = field(default_factory=list)
    skipped: list[Operation] = field(default_factory=list)  # not started because of a stop request
    deferred: list[Operation] = field(default_factory=list)  # in backoff after repeated failures
    blocked: list[Blocked] = field(default_factory=list)  # a dependency failed in this pass
    requeue: Requeue | None = None  # when the next pass should come (earliest wish)

    @property
    def ok(self) -> bool:
        """Every operation started was applied: none failed, none deferred, none blocked."""
        return not (self.failed or self.deferred or self.blocked)


@dataclass
class TargetedResult:
    """One targeted pass: what it planned and applied, and what it must look at again later."""

    plan: Plan
    result: ApplyResult
    not_visible: Changes = field(default_factory=Changes)


@dataclass
class _Pass:
    """What one plan saw, for its apply: the graph and each observed kind's live state."""

    plan: Plan
    graph: Graph
    observed: dict[str, Any] = field(default_factory=dict)
    desired: DesiredState | None = None


ProgressCallback = Callable[[int, int, Operation, str | None], None]


def _refuse_placeholders(plan: Plan, desired: DesiredState) -> None:
    """A manifest still holding a value ``export`` could not know is refused: none of its
    operations is applied (a guessed detection rule or a stub installer never reaches the fleet)
    and those of the resources referencing it are blocked, until it is filled in."""
    for manifest in desired.manifests:
        if not manifest.placeholders:
            continue
        first = manifest.placeholders[0]
        plan.findings.append(
            Finding(
                kind=manifest.kind,
                name=manifest.name,
                severity=Severity.ERROR,
                message=f"holds {len(manifest.placeholders)} placeholder(s) left by export"
                f" ({first.field} at {first.file}:{first.line}): fill them in first",
            )
        )
        ref = Ref(manifest.kind, manifest.name)
        plan.operations = [op for op in plan.operations if op.ref != ref]


def _resource_note(operation: Operation) -> str:
    """`` (mi-0abc...)`` when the resource has a name of its own beyond the manifest's."""
    resource = operation.resource
    return "" if resource in ("(new)", operation.name) else f" ({resource})"


def status_findings(kind: str, status: KindStatus) -> list[Finding]:
    """A kind's health as findings: every resource status with something to say."""
    quiet = (Health.HEALTHY, Health.PROGRESSING)
    return [
        Finding(
            kind=kind,
            name=resource.name,
            severity=Severity.INFO if resource.health in quiet else Severity.WARNING,
            message=resource.message,
            count=resource.count,
            examples=resource.examples,
        )
        for resource in status.resources
        if resource.message
    ]


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
        self.kinds = list(kinds if kinds is not None else registered())
        self._kinds_by_name = {kind.kind: kind for kind in self.kinds}
        self.backoff = backoff or ResourceBackoff()
        self.memory = KindMemory(consistency_window=settings.consistency_window)
        self._pass: _Pass | None = None
        self._writing = threading.RLock()  # one diff-and-apply at a time per target
        self.last_relist: float | None = None  # monotonic time the last full read began
        for kind in self.kinds:
            for family in kind.gauges:
                metrics.declare(family)

    def forget(self) -> None:
        """Drop what the kinds keep between passes (this replica lost the target: what it saw
        and wrote may be stale); the next pass reads everything again."""
        self.memory.clear()
        self.last_relist = None

    def relist_age(self) -> float | None:
        """Seconds since the last full read of the fleet began (None: none yet)."""
        return None if self.last_relist is None else time.monotonic() - self.last_relist

    def context(self, desired: DesiredState | None = None) -> Context:
        return Context(
            controller_id=self.settings.controller_id,
            region=self.aws.region,
            now=self.clock(),
            target=self.settings.target,
            desired=desired,
            memory=self.memory,
        )

    # -- plan ------------------------------------------------------------------------------------

    def plan(self, desired: DesiredState, cached: bool = False) -> Plan:
        """Observe, diff and judge every kind that has desired (or implied) manifests; no writes.

        ``cached``: a kind with a warm cache is not read; its cache is the live state."""
        graph = Graph.build(self.kinds, desired)
        observed = self._observe(graph, desired, cached)
        with self._writing:
            return self._plan_from(graph, desired, observed, cached)

    def _observe(self, graph: Graph, desired: DesiredState, cached: bool) -> dict[str, Any]:
        """Every kind's live state; a relist unless ``cached`` (then kinds with a warm cache
        are not read). A relist's duration and start are recorded (the cache's age)."""
        observing = self.context(desired)
        began, started = time.time(), time.monotonic()
        observed: dict[str, Any] = {}
        for kind in self.kinds:
            manifests = graph.of_kind(kind.kind)
            if not manifests:
                continue
            live = kind.observe_cached(manifests, observing) if cached else None
            observed[kind.kind] = (
                live if live is not None else kind.observe(self.aws, manifests, observing)
            )
        if not cached:
            self.last_relist = started
            self.metrics.record_relist(self.settings.target, time.monotonic() - started, began)
        return observed

    def _plan_from(
        self,
        graph: Graph,
        desired: DesiredState,
        observed: dict[str, Any],
        cached: bool = False,
    ) -> Plan:
        """Diff and judge what was observed (holding the write lock: a kind that keeps a cache
        is diffed against it as it is now, targeted passes included). A cached pass plans no
        prune: deleting is decided on a full read only (a cache that missed an event could make
        a live instance look stale)."""
        plan = Plan(desired_digest=desired.digest)
        ctx = self.context(desired)  # after the reads: AWS's clock is known from their Date headers
        for kind in self.kinds:
            if kind.kind in observed:
                fresher = kind.observe_cached(graph.of_kind(kind.kind), ctx)
                if fresher is not None:
                    observed[kind.kind] = fresher
        for kind in self.kinds:
            if kind.kind not in observed:
                self._export_status(kind, None)
                continue
            manifests, live = graph.of_kind(kind.kind), observed[kind.kind]
            kind_plan = kind.diff(manifests, live, ctx)
            status = kind.health(manifests, live, ctx)
            self._export_status(kind, status)
            plan.operations += kind_plan.operations
            plan.findings += kind_plan.findings + status_findings(kind.kind, status)
            plan.requeue = Requeue.earliest(plan.requeue, kind_plan.requeue)
        _refuse_placeholders(plan, desired)
        if cached:
            plan.operations = [op for op in plan.operations if not op.prune]
        counts = {kind: len(manifests) for kind, manifests in graph.desired.items()}
        pruning = Counter(op.kind for op in plan.operations if op.prune)
        plan = guard(plan, self.settings.prune, counts)
        guarded = pruning if plan.refused else Counter()
        self._block_refused(plan, graph)
        self._export_refusals(plan, guarded, [])
        plan.operations = graph.order(plan.operations)
        drifted = [*plan.operations, *(b.operation for b in plan.blocked)]
        self.metrics.set_drift(self.settings.target, self._drift(drifted))
        skew = self.aws.clock.skew_seconds
        if skew is not None:
            self.metrics.set_aws_clock_skew(self.settings.target, skew)
        self._pass = _Pass(plan, graph, observed, desired)
        return plan

    def _export_status(self, kind: Kind[Any], status: KindStatus | None) -> None:
        health = Counter(r.health for r in status.resources) if status is not None else None
        self.metrics.set_kind_status(
            self.settings.target,
            kind.kind,
            kind.gauges,
            status.gauges if status is not None else None,
            status.managed if status is not None else None,
            health,
        )

    def _block_refused(self, plan: Plan, graph: Graph) -> None:
        """Operations of resources that (transitively) reference a refused one are not applied
        (a delete needs nothing in place, so it is never blocked)."""
        blocked_by = graph.closure(f.ref for f in plan.errors)
        kept: list[Operation] = []
        for operation in plan.operations:
            root = blocked_by.get(operation.ref)
            if root is None or operation.action is Action.DELETE:
                kept.append(operation)
            else:
                plan.blocked.append(Blocked(operation, f"depends on {root}, which was refused"))
        plan.operations = kept

    def _export_refusals(
        self, plan: Plan, guarded: Counter[str], blocked_later: Sequence[Blocked]
    ) -> None:
        """``fleet_refused_resources{kind, state}``: what this pass would not touch."""
        values: dict[str | tuple[str, ...], float] = {}
        refused = Counter(f.kind for f in plan.errors) + guarded
        blocked = Counter(b.operation.kind for b in [*plan.blocked, *blocked_later])
        for state, counts in (("refused", refused), ("blocked", blocked)):
            for kind in {k.kind for k in self.kinds} | set(counts):
                values[(kind, state)] = float(counts.get(kind, 0))
        self.metrics.set_refusals(self.settings.target, values)

    def _drift(self, operations: Sequence[Operation]) -> dict[str, int]:
        drifted = Counter(op.kind for op in operations)
        return {kind.kind: drifted.get(kind.kind, 0) for kind in self.kinds}

    # -- apply -----------------------------------------------------------------------------------

    def apply(
        self,
        plan: Plan,
        stop: threading.Event | None = None,
        progress: ProgressCallback | None = None,
    ) -> ApplyResult:
        """Apply the plan phase by phase, each phase with up to ``apply_concurrency`` operations
        at once. No operation starts once ``stop`` is set; the ones in flight finish. Resources
        in backoff are deferred to a later pass."""
        state = self._pass
        if state is None or state.plan is not plan:
            state = _Pass(plan, Graph.build(self.kinds, None))
        ctx = self.context(state.desired)
        result = ApplyResult()
        counter = _Counter(len(plan.operations))
        # Resources not in place after this pass so far, and why: their dependents are blocked.
        missing: dict[Ref, str] = {b.operation.ref: "was blocked" for b in plan.blocked}
        missing.update({f.ref: "was refused" for f in plan.errors})
        with ThreadPoolExecutor(
            max_workers=self.settings.apply_concurrency, thread_name_prefix="apply"
        ) as pool:
            for phase in state.graph.phases(plan.operations):
                runnable = [op for op in phase if not self._held(state.graph, op, missing, result)]
                futures = [
                    pool.submit(self._apply_one, state, op, ctx, stop, result, counter, progress)
                    for op in runnable
                ]
                for future in futures:
                    future.result()
                for operation, _ in result.failed:
                    missing.setdefault(operation.ref, "failed")
                if stop is not None and stop.is_set():
                    break
        done = {id(op) for op in result.applied} | {id(op) for op, _ in result.failed}
        done |= {id(op) for op in result.deferred} | {id(b.operation) for b in result.blocked}
        result.skipped = [op for op in plan.operations if id(op) not in done]
        if result.skipped:
            log.info("apply stopped", remaining=len(result.skipped))
        return result

    def _held(
        self, graph: Graph, operation: Operation, missing: dict[Ref, str], result: ApplyResult
    ) -> bool:
        """Hold ``operation`` back (and say so) when it is blocked or its resource backs off;
        either way its resource is not in place for what depends on it."""
        log_fields = {
            "kind": operation.kind,
            "name": operation.name,
            "resource": operation.resource,
        }
        why = self._blocked_by(graph, operation, missing)
        if why is not None:
            result.blocked.append(Blocked(operation, why))
            missing.setdefault(operation.ref, "was blocked")
            log.warning(
                "operation blocked",
                summary=f"not applying {operation.action.value} {operation.kind}"
                f" {operation.name}: it {why}",
                why=why,
                **log_fields,
            )
            return True
        wait = self.backoff.wait_remaining(operation)
        if wait > 0:
            result.deferred.append(operation)
            missing.setdefault(operation.ref, "was deferred (backing off)")
            log.warning(
                "operation deferred: backing off after repeated failures",
                summary=f"not retrying {operation.action.value} {operation.kind}"
                f" {operation.name} yet: it failed {self.backoff.failures(operation)} time(s);"
                f" next try in {round(wait)} s",
                retry_in_seconds=round(wait),
                failures=self.backoff.failures(operation),
                **log_fields,
            )
            return True
        return False

    @staticmethod
    def _blocked_by(graph: Graph, operation: Operation, missing: dict[Ref, str]) -> str | None:
        """Why ``operation`` may not run: a resource it references is not in place."""
        if operation.action is Action.DELETE:
            return None
        for ref in graph.refs_of(operation.ref):
            if ref in missing:
                return f"depends on {ref}, which {missing[ref]} in this pass"
        return None

    def _apply_one(
        self,
        state: _Pass,
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
            events = self._kinds_by_name[operation.kind].apply(self.aws, operation, ctx)
            for event in events:
                self._deliver(state, event, ctx)
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
        self.metrics.record_apply(
            self.settings.target,
            operation.kind,
            operation.action.value,
            "error" if error_text else "success",
        )
        outcome = (
            {"error": error_text, "retry_in_seconds": round(delay)}
            if error_text
            else {"changes": len(operation.changes)}
        )
        said = (
            {
                "summary": f"failed to {operation.action.value} {operation.kind}"
                f" {operation.name}{_resource_note(operation)}: {error_text}"
                + (f"; not tried again for {round(delay)} s" if delay >= 1 else "")
            }
            if error_text
            else {"detail": True}  # the pass's line (or apply's progress) tells it
        )
        (log.error if error_text else log.info)(
            "operation failed" if error_text else "operation applied",
            **said,
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

    def _deliver(self, state: _Pass, event: Event, ctx: Context) -> None:
        """Hand ``event`` along every edge into its source's kind, then tell the source."""
        for kind in self.kinds:
            if event.source.kind not in kind.refers_to or kind.kind not in state.observed:
                continue
            dependents = [
                m
                for m in state.graph.of_kind(kind.kind)
                if event.source in state.graph.refs_of(Ref(m.kind, m.name))
            ]
            if dependents:
                kind.on_dependency(self.aws, event, dependents, state.observed[kind.kind], ctx)
        self._kinds_by_name[event.source.kind].after_dependents(self.aws, event, ctx)

    def _status_after_writes(self, written: set[str]) -> None:
        """Status gauges say what is after the pass, not what was before its writes: the kinds
        this pass wrote to are read again and their status exported anew (a first pass that
        created 8 resources once reported 0 managed until the next pass, minutes later). A read
        that fails leaves the earlier status in place; the next pass corrects it."""
        state = self._pass
        if state is None or state.desired is None:
            return
        for kind in self.kinds:
            if kind.kind not in written or kind.kind not in state.observed:
                continue
            manifests = state.graph.of_kind(kind.kind)
            ctx = self.context(state.desired)
            try:
                # A kind that keeps a live cache answers from it (its writes are pinned there).
                live = kind.observe_cached(manifests, ctx)
                if live is None:
                    live = kind.observe(self.aws, manifests, ctx)
                status = kind.health(manifests, live, ctx)
            except Exception as error:
                log.warning(
                    "status after the pass's writes not read",
                    kind=kind.kind,
                    error=redact_text(f"{type(error).__name__}: {error}"),
                )
                continue
            self._export_status(kind, status)

    # -- one targeted pass -----------------------------------------------------------------------

    def reconcile_changes(
        self,
        desired: DesiredState,
        changes: Changes,
        enforce: bool = True,
        stop: threading.Event | None = None,
    ) -> TargetedResult:
        """Reconcile only what ``changes`` names: kinds that keep a cache read those resources
        (consistently), plan only for what they touch, and that is applied. Nothing is relisted
        and no status is exported: drift and health gauges stay the last full pass's. Prunes
        and stale instances are left to full passes."""
        graph = Graph.build(self.kinds, desired)
        plan = Plan(desired_digest=desired.digest)
        observed: dict[str, Any] = {}
        not_visible = Changes()
        with self._writing:
            ctx = self.context(desired)
            for kind in self.kinds:
                manifests = graph.of_kind(kind.kind)
                if not manifests:
                    continue
                targeted = kind.observe_changes(self.aws, manifests, changes, ctx)
                if targeted is None:
                    continue
                observed[kind.kind] = targeted.live
                not_visible |= targeted.not_visible
                kind_plan = kind.diff(manifests, targeted.live, self.context(desired))
                plan.operations += [op for op in kind_plan.operations if not op.prune]
                plan.findings += [f for f in kind_plan.findings if f.severity is Severity.ERROR]
            self._block_refused(plan, graph)
            plan.operations = graph.order(plan.operations)
            self._pass = _Pass(plan, graph, observed, desired)
            result = self.apply(plan, stop) if enforce else ApplyResult()
        return TargetedResult(plan, result, not_visible)

    # -- one pass --------------------------------------------------------------------------------

    def reconcile(
        self,
        desired: DesiredState,
        enforce: bool = True,
        stop: threading.Event | None = None,
        cached: bool = False,
    ) -> tuple[Plan, ApplyResult]:
        """Plan, then apply when enforcing; records the reconcile's metrics either way.

        ``cached``: diff kinds that keep a warm cache against it, without reading them first
        (a new desired state starts writing at once; the next full pass verifies)."""
        started = time.monotonic()
        target = self.settings.target
        try:
            graph = Graph.build(self.kinds, desired)
            observed = self._observe(graph, desired, cached)
            with self._writing:
                plan = self._plan_from(graph, desired, observed, cached)
                result = self.apply(plan, stop) if enforce else ApplyResult()
            if result.applied:
                self._status_after_writes({op.kind for op in result.applied})
            if enforce:  # what is still drifted after this apply
                left = [op for op, _ in result.failed] + result.skipped + result.deferred
                left += [b.operation for b in [*plan.blocked, *result.blocked]]
                self.metrics.set_drift(target, self._drift(left))
                if result.blocked:
                    self._export_refusals(plan, Counter(), result.blocked)
        except Exception:
            self.metrics.record_reconcile(target, "error", time.monotonic() - started, time.time())
            raise
        retry = self.backoff.earliest_retry()
        result.requeue = Requeue.earliest(
            plan.requeue,
            Requeue(timedelta(seconds=retry), "a resource's backoff ends") if retry else None,
        )
        # Success means converged as far as this pass could tell: nothing refused or blocked in
        # the plan, and (enforcing) nothing failed, deferred, blocked or left unstarted.
        clean = plan.ok and (not enforce or (result.ok and not result.skipped))
        outcome = "success" if clean else "error"
        self.metrics.record_reconcile(target, outcome, time.monotonic() - started, time.time())
        return plan, result
