"""Requeue: a kind asks for its next pass (controller-runtime's RequeueAfter); the loop honours the
earliest wish, never sooner than its minimum and never later than the interval."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from controller.config import LoopSettings
from controller.contract import Requeue
from controller.engine.backoff import BackoffSettings, ResourceBackoff
from controller.service.loop import DesiredStateTracker, ReconcileLoop
from controller.service.source.directory import DirectorySource
from tests.engine.helpers import boot, controller, copy_example, load, make_fleet, write
from tests.engine.test_rotation import ACTIVATION


def _loop(settings: LoopSettings, requeue: Requeue | None, reconciler=None) -> ReconcileLoop:
    loop = ReconcileLoop(lambda: None, reconciler or _Stub(), None, settings)  # type: ignore[arg-type]
    loop.requeue = requeue
    return loop


class _Stub:
    class settings:
        target = "default"


@pytest.mark.parametrize(
    ("wish", "expected"),
    [
        (None, 300.0),  # no wish: the interval
        (timedelta(seconds=45), 45.0),  # a wish inside the interval: honoured
        (timedelta(seconds=1), 10.0),  # too soon: the minimum
        (timedelta(days=2), 300.0),  # beyond the interval: the interval
    ],
)
def test_the_next_wait_is_the_earliest_wish_bounded(wish, expected):
    settings = LoopSettings(interval_seconds=300, jitter_fraction=0, min_requeue_seconds=10)
    requeue = Requeue(wish, "a test") if wish is not None else None
    assert _loop(settings, requeue).next_wait() == expected


def test_an_activation_asks_for_the_pass_that_starts_its_renewal(sandbox, tmp_path):
    desired = load(write(tmp_path, "activation.yaml", ACTIVATION))  # 1d, renewBefore 12h
    reconciler = controller(sandbox)
    reconciler.reconcile(desired)
    plan = reconciler.plan(desired)
    assert plan.operations == [] and plan.requeue is not None
    assert "renewBefore" in plan.requeue.reason
    assert abs(plan.requeue.after - timedelta(hours=12)) < timedelta(minutes=1)


def test_a_rotated_activation_asks_for_the_end_of_its_grace_period(sandbox, tmp_path):
    desired = load(write(tmp_path, "activation.yaml", ACTIVATION))  # gracePeriod 1h
    reconciler = controller(sandbox)
    reconciler.reconcile(desired)
    sandbox.admin.advance_clock(13 * 3600)  # inside renewBefore: rotates
    reconciler.reconcile(desired)
    sandbox.admin.advance_clock(20 * 60)
    plan = reconciler.plan(desired)
    assert plan.operations == []
    assert plan.requeue is not None and "grace period" in plan.requeue.reason
    assert abs(plan.requeue.after - timedelta(minutes=40)) < timedelta(minutes=1)


def test_registrations_under_way_bring_the_next_pass_forward(sandbox, tmp_path):
    desired = load(copy_example(tmp_path / "desired"))
    workspaces = make_fleet(sandbox, finance=4, engineering=0)
    reconciler = controller(sandbox)
    reconciler.reconcile(desired)
    sandbox.admin.post("fleet/boot", {"workspaceIds": workspaces[:2]})  # two of four registered
    plan = reconciler.plan(desired)
    assert plan.requeue is not None and plan.requeue.reason == "WorkSpaces are registering"
    assert plan.requeue.after == timedelta(minutes=1)
    boot(sandbox)
    _, result = reconciler.reconcile(desired)
    assert result.ok
    after = reconciler.plan(desired).requeue
    assert after is None or after.reason != "WorkSpaces are registering"  # all onboarded


def test_a_backoff_ending_is_a_requeue_wish(sandbox, tmp_path):
    desired = load(copy_example(tmp_path / "desired", only=("activation.yaml",)))
    now = [0.0]
    reconciler = controller(sandbox)
    reconciler.backoff = ResourceBackoff(
        BackoffSettings(base_seconds=60, jitter_fraction=0), clock=lambda: now[0]
    )
    sandbox.admin.set_faults([{"service": "ssm", "operation": "CreateActivation", "deny_rate": 1}])
    _, first = reconciler.reconcile(desired)
    assert first.failed and first.requeue is None  # one failure: retried next pass anyway
    _, second = reconciler.reconcile(desired)
    assert second.failed and second.requeue is not None
    assert second.requeue.after == timedelta(seconds=60)
    assert "backoff" in second.requeue.reason


def test_the_loop_runs_the_next_pass_when_asked_not_after_the_interval(sandbox, tmp_path):
    directory = write(tmp_path / "desired", "activation.yaml", ACTIVATION)
    reconciler = controller(sandbox)
    tracker = DesiredStateTracker(DirectorySource(directory), reconciler.metrics)
    tracker.refresh()
    settings = LoopSettings(
        interval_seconds=3600, jitter_fraction=0, max_iterations=2, min_requeue_seconds=0.05
    )
    loop = ReconcileLoop(tracker.current, reconciler, reconciler.metrics, settings)
    # Every pass wishes to be looked at again in a tenth of a second.
    original = reconciler._plan_from  # where a pass turns what it observed into its plan

    def plan_with_wish(graph, desired, observed, cached=False):
        plan = original(graph, desired, observed, cached)
        plan.requeue = Requeue(timedelta(seconds=0.1), "a test's wish")
        return plan

    reconciler._plan_from = plan_with_wish  # type: ignore[method-assign]
    runner = threading.Thread(target=loop.run, daemon=True)
    runner.start()
    runner.join(timeout=60)
    assert not runner.is_alive(), "the second pass waited for the hour-long interval"
    assert loop.completed == 2
