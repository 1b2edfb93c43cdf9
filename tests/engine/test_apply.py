"""How apply runs a plan: bounded concurrency per phase, dependency order, stop, backoff."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from controller.aws import AwsApi, AwsSettings
from controller.contract.plan import Action, KindPlan, Operation, Plan, Ref, Step
from controller.engine.backoff import BackoffSettings, ResourceBackoff
from controller.engine.graph import Graph
from controller.engine.reconcile import Reconciler, ReconcileSettings
from controller.kinds.base import Context, Event, Kind
from controller.manifests import SpecModel
from controller.observability.metrics import Metrics
from tests.engine.helpers import boot, controller, copy_example, load, make_fleet


@dataclass(frozen=True, kw_only=True)
class Record(Step):
    """Nothing to do but be recorded."""


class Recorder(Kind[None]):
    """A kind whose operations only record when they ran and how many ran at once."""

    kind = "Recorder"
    spec_model = SpecModel

    def __init__(self, seconds: float = 0.02, failing: set[str] | None = None) -> None:
        self.seconds = seconds
        self.failing = failing or set()
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.events: list[tuple[str, str]] = []

    def observe(self, aws: Any, desired: Any, ctx: Context) -> None:
        return None

    def diff(self, desired: Any, live: None, ctx: Context) -> KindPlan:
        return KindPlan()

    def hold(self, operation: Operation) -> None:
        """Called while the operation counts as running (a test may keep it there)."""

    def apply(self, aws: Any, operation: Operation, ctx: Context) -> tuple[Event, ...]:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.events.append(("start", operation.resource))
        self.hold(operation)
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
            self.events.append(("end", operation.resource))
        if operation.resource in self.failing:
            raise RuntimeError(f"{operation.resource} refused")
        return ()


class Referenced(Recorder):
    """A kind the Recorder kind refers to (a document before the associations that run it)."""

    kind = "Referenced"


class Referencing(Recorder):
    kind = "Referencing"
    refers_to = frozenset({"Referenced"})


def _reconciler(
    kind: Recorder, concurrency: int = 4, backoff: ResourceBackoff | None = None, *more: Recorder
):
    aws = AwsApi(AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:9"))
    return Reconciler(
        aws,
        ReconcileSettings(apply_concurrency=concurrency),
        Metrics(),
        kinds=[kind, *more],
        backoff=backoff,
    )


def _ops(
    count: int, action: Action = Action.UPDATE, prefix: str = "r", kind: str = "Recorder"
) -> list[Operation]:
    return [
        Operation(kind=kind, name="x", action=action, resource=f"{prefix}{i}", payload=Record())
        for i in range(count)
    ]


def test_a_phase_runs_at_most_the_configured_number_at_once():
    """Three run at once for certain (the first three meet at a barrier, however slow the
    machine), and never more (a bound load can only make easier to keep)."""
    together = threading.Barrier(3)

    class MeetFirst(Recorder):
        def hold(self, operation: Operation) -> None:
            if operation.resource in ("r0", "r1", "r2"):
                together.wait(timeout=60)  # all three counted as running before any ends

    kind = MeetFirst()
    result = _reconciler(kind, concurrency=3).apply(Plan(operations=_ops(12)))
    assert len(result.applied) == 12
    assert kind.most_at_once == 3


def test_a_referenced_kind_and_an_earlier_action_finish_before_the_next_starts():
    kind = Referenced()
    events = kind.events
    later = Referencing()
    later.events = events  # one timeline for both kinds
    later.lock = kind.lock
    plan = Plan(
        operations=_ops(2, Action.DELETE, prefix="olddoc", kind="Referenced")
        + _ops(4, Action.CREATE, prefix="assoc", kind="Referencing")
        + _ops(3, Action.UPDATE, prefix="doc", kind="Referenced")
        + _ops(2, Action.DELETE, prefix="gone", kind="Referencing")
    )
    _reconciler(kind, 4, None, later).apply(plan)
    order = [resource for event, resource in events]

    def first(prefix: str) -> int:
        return min(i for i, (e, r) in enumerate(events) if r.startswith(prefix))

    def last_end(prefix: str) -> int:
        return max(i for i, (e, r) in enumerate(events) if e == "end" and r.startswith(prefix))

    # Creates and updates along the references, then deletes in reverse.
    assert last_end("doc") < first("assoc"), order
    assert last_end("assoc") < first("gone"), order
    assert last_end("gone") < first("olddoc"), order


def test_operations_are_ordered_by_wave_then_kind_then_action_and_deletes_reversed():
    graph = Graph([Referenced(), Referencing()])
    graph.references[Ref("Referencing", "late")] = (Ref("Referenced", "first"),)

    def op(kind: str, name: str, action: Action, resource: str) -> Operation:
        return Operation(kind=kind, name=name, action=action, resource=resource, payload=Record())

    scrambled = [
        op("Referenced", "first", Action.DELETE, "gone-doc"),
        op("Referencing", "late", Action.CREATE, "late-create"),
        op("Referencing", "early", Action.UPDATE, "early-update"),
        op("Referencing", "other", Action.DELETE, "gone-assoc"),
        op("Referenced", "first", Action.UPDATE, "doc-update"),
        op("Referenced", "first", Action.CREATE, "doc-create"),
    ]
    ordered = [o.resource for o in graph.order(scrambled)]
    assert ordered == [
        "doc-create",
        "doc-update",
        "early-update",  # wave 0: references nothing
        "late-create",  # wave 1: after what it references
        "gone-assoc",  # deletes: the referencing kind first
        "gone-doc",
    ]


def test_no_operation_starts_after_stop_and_those_in_flight_finish():
    stop = threading.Event()
    both_started = threading.Barrier(2)

    class StopsMidway(Recorder):
        def apply(self, aws: Any, operation: Operation, ctx: Context) -> tuple[Event, ...]:
            if operation.resource in ("r0", "r1"):
                both_started.wait(timeout=10)
                stop.set()  # a SIGTERM arriving while two operations are in flight
            return super().apply(aws, operation, ctx)

    kind = StopsMidway(seconds=0.05)
    result = _reconciler(kind, concurrency=2).apply(Plan(operations=_ops(10)), stop=stop)
    started = sorted(r for e, r in kind.events if e == "start")
    ended = sorted(r for e, r in kind.events if e == "end")
    assert started == ended == ["r0", "r1"]  # nothing new started; both in flight finished
    assert len(result.applied) == 2 and len(result.skipped) == 8


def test_a_failing_resource_backs_off_exponentially_and_the_rest_go_on():
    now = [0.0]
    backoff = ResourceBackoff(
        BackoffSettings(base_seconds=60, max_seconds=600, jitter_fraction=0), clock=lambda: now[0]
    )
    kind = Recorder(seconds=0, failing={"r1"})
    reconciler = _reconciler(kind, backoff=backoff)

    def attempt() -> tuple[int, int, int]:
        result = reconciler.apply(Plan(operations=_ops(3)))
        return len(result.applied), len(result.failed), len(result.deferred)

    assert attempt() == (2, 1, 0)  # first failure: retried on the next pass
    assert attempt() == (2, 1, 0)  # second failure: now 60 s
    now[0] += 59
    assert attempt() == (2, 0, 1)  # deferred, not tried
    now[0] += 2
    assert attempt() == (2, 1, 0)  # tried again, fails: 120 s
    now[0] += 119
    assert attempt() == (2, 0, 1)
    now[0] += 2
    kind.failing.clear()
    assert attempt() == (3, 0, 0)  # success forgets it
    assert backoff.failures(_ops(3)[1]) == 0
    assert backoff.earliest_retry() is None


def test_backoff_is_capped_and_jittered():
    backoff = ResourceBackoff(
        BackoffSettings(base_seconds=60, max_seconds=300, jitter_fraction=0.2),
        clock=lambda: 0.0,
        rng=random.Random(1),
    )
    operation = _ops(1)[0]
    delays = [backoff.failed(operation) for _ in range(8)]
    assert delays[0] == 0.0
    assert 48 <= delays[1] <= 72
    assert all(240 <= d <= 360 for d in delays[4:])


def test_one_instance_that_always_fails_does_not_stall_the_fleet(sandbox, tmp_path):
    desired = load(copy_example(tmp_path / "desired"))
    make_fleet(sandbox, finance=4, engineering=0)
    now = [0.0]
    reconciler = controller(sandbox)
    reconciler.backoff = ResourceBackoff(BackoffSettings(jitter_fraction=0), clock=lambda: now[0])
    reconciler.aws = AwsApi(reconciler.aws.settings, reconciler.aws.recorder, sleep=lambda s: None)
    reconciler.reconcile(desired)
    registered = boot(sandbox)["results"]
    bad = registered[0]["instanceId"]
    sandbox.admin.set_faults(
        [
            {
                "service": "ssm",
                "operation": "AddTagsToResource",
                "error_rate": 1.0,
                "body_contains": bad,
            }
        ]
    )
    _, first = reconciler.reconcile(desired)
    assert len(first.applied) == 3 and [op.resource for op, _ in first.failed] == [bad]
    _, second = reconciler.reconcile(desired)
    assert [op.resource for op, _ in second.failed] == [bad]
    sandbox.admin.reset_calls()
    _, third = reconciler.reconcile(desired)
    assert [op.resource for op in third.deferred] == [bad]
    assert sandbox.admin.call_counts("ssm")["AddTagsToResource"] == 0  # not hammered
    now[0] += 61
    sandbox.admin.set_faults([])
    _, fourth = reconciler.reconcile(desired)
    assert [op.resource for op in fourth.applied] == [bad] and fourth.ok
