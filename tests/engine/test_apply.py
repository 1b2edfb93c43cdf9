"""How apply runs a plan: bounded concurrency per phase, stages, stop, per-resource backoff."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from controller.aws import AwsApi, AwsSettings
from controller.engine.backoff import BackoffSettings, ResourceBackoff
from controller.engine.plan import Action, KindPlan, Operation, Plan
from controller.engine.reconcile import Reconciler, ReconcileSettings, order_operations
from controller.kinds.base import Context, Kind
from controller.observability.metrics import Metrics
from tests.engine.helpers import boot, controller, copy_example, load, make_fleet


class Recorder(Kind[None]):
    """A kind whose operations only record when they ran and how many ran at once."""

    kind = "Recorder"
    apply_order = 1

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

    def apply(self, aws: Any, operation: Operation, ctx: Context) -> None:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.events.append(("start", operation.resource))
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
            self.events.append(("end", operation.resource))
        if operation.resource in self.failing:
            raise RuntimeError(f"{operation.resource} refused")


def _reconciler(kind: Recorder, concurrency: int = 4, backoff: ResourceBackoff | None = None):
    aws = AwsApi(AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:9"))
    return Reconciler(
        aws,
        ReconcileSettings(apply_concurrency=concurrency),
        Metrics(),
        kinds=[kind],
        backoff=backoff,
    )


def _ops(
    count: int, action: Action = Action.UPDATE, stage: int = 0, prefix: str = "r"
) -> list[Operation]:
    return [Operation("Recorder", "x", action, f"{prefix}{i}", stage=stage) for i in range(count)]


def test_a_phase_runs_at_most_the_configured_number_at_once():
    kind = Recorder()
    result = _reconciler(kind, concurrency=3).apply(Plan(operations=_ops(12)))
    assert len(result.applied) == 12
    assert kind.most_at_once == 3


def test_a_lower_stage_and_an_earlier_action_finish_before_the_next_starts():
    kind = Recorder()
    plan = Plan(
        operations=_ops(3, Action.UPDATE, stage=-1, prefix="doc")
        + _ops(4, Action.CREATE, prefix="assoc")
        + _ops(2, Action.DELETE, prefix="old")
    )
    _reconciler(kind, concurrency=4).apply(plan)
    order = [resource for event, resource in kind.events]
    last_doc_end = max(
        i for i, (e, r) in enumerate(kind.events) if e == "end" and r.startswith("doc")
    )
    first_assoc = min(i for i, (e, r) in enumerate(kind.events) if r.startswith("assoc"))
    last_assoc_end = max(i for i, (e, r) in enumerate(kind.events) if r.startswith("assoc"))
    first_old = min(i for i, (e, r) in enumerate(kind.events) if r.startswith("old"))
    assert last_doc_end < first_assoc and last_assoc_end < first_old, order


def test_operations_are_ordered_by_kind_then_stage_then_action():
    class Later(Recorder):
        kind = "Later"
        apply_order = 2

    scrambled = [
        Operation("Later", "x", Action.CREATE, "later"),
        Operation("Recorder", "x", Action.DELETE, "delete"),
        Operation("Recorder", "x", Action.CREATE, "create"),
        Operation("Recorder", "x", Action.UPDATE, "document", stage=-1),
        Operation("Recorder", "x", Action.UPDATE, "update"),
    ]
    ordered = order_operations(scrambled, [Later(), Recorder()])
    assert [op.resource for op in ordered] == ["document", "create", "update", "delete", "later"]


def test_no_operation_starts_after_stop_and_those_in_flight_finish():
    stop = threading.Event()
    both_started = threading.Barrier(2)

    class StopsMidway(Recorder):
        def apply(self, aws: Any, operation: Operation, ctx: Context) -> None:
            if operation.resource in ("r0", "r1"):
                both_started.wait(timeout=10)
                stop.set()  # a SIGTERM arriving while two operations are in flight
            super().apply(aws, operation, ctx)

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
