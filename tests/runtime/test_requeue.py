"""Minutes, not intervals: after a pass that changed something, or while enrollments are pending,
the next pass comes after a short requeue that doubles while it repeats and never exceeds the
interval; a wake (an enrollment, a push) starts it afresh."""

from __future__ import annotations

import threading

from controller.observability.metrics import Metrics
from controller.service.loop import DesiredStateTracker, LoopSettings, ReconcileLoop
from controller.service.source import DirectorySource
from tests.runtime.helpers import activations_dir, reconciler


def loop_for(sandbox, tmp_path, pending=None, requeue: float | None = 2.0) -> ReconcileLoop:
    metrics = Metrics()
    tracker = DesiredStateTracker(
        DirectorySource(activations_dir(tmp_path / "d", "alpha")), metrics
    )
    tracker.refresh()
    settings = LoopSettings(interval_seconds=300, jitter_fraction=0, requeue_seconds=requeue)
    return ReconcileLoop(
        tracker.current, reconciler(sandbox.endpoint, metrics), metrics, settings, pending=pending
    )


def test_a_pass_that_changed_something_requeues_soon_then_the_interval_returns(sandbox, tmp_path):
    loop = loop_for(sandbox, tmp_path)
    loop.run_once()  # creates and publishes the activation
    assert sandbox.admin.call_counts("ssm")["CreateActivation"] == 1
    assert loop.next_wait() == 2.0
    loop.run_once()  # nothing left to change
    assert loop.next_wait() == 300.0


def test_pending_work_requeues_with_a_doubling_bounded_by_the_interval(sandbox, tmp_path):
    pending = threading.Event()
    pending.set()
    loop = loop_for(sandbox, tmp_path, pending=pending.is_set)
    waits = [loop.next_wait() for _ in range(10)]
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0]
    pending.clear()
    assert loop.next_wait() == 300.0
    pending.set()
    assert loop.next_wait() == 2.0  # a quiet pass ended the series


def test_a_wake_restarts_the_short_requeue(sandbox, tmp_path):
    loop = loop_for(sandbox, tmp_path, pending=lambda: True)
    loop.next_wait()
    loop.next_wait()
    loop.wake.set()
    loop._wait()  # returns at once: woken
    assert loop.next_wait() == 2.0


def test_without_a_requeue_setting_the_interval_is_all_there_is(sandbox, tmp_path):
    loop = loop_for(sandbox, tmp_path, pending=lambda: True, requeue=None)
    loop.run_once()
    assert loop.next_wait() == 300.0
