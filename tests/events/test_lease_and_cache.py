"""The README's *Events and the live cache* promises that concern leases: with leases only the
holder reads the queue, and a replica that loses a target's lease drops its cache, so the next
pass it makes as holder starts with a relist (what it saw and wrote may be stale by then).
"""

from __future__ import annotations

from controller.observability.metrics import Metrics
from controller.service.events import EventQueue, EventSettings, EventWorker
from controller.service.source.base import Revision
from tests.engine.helpers import controller, copy_example, load, make_fleet
from tests.events.stack import deploy_events
from tests.runtime.test_loop import Guard, loop_for


class Switch:
    """A lease this test hands out and takes back."""

    def __init__(self, held: bool) -> None:
        self.held = held

    def may_write(self) -> bool:
        return self.held


def test_only_the_lease_holder_reads_the_queue(sandbox, tmp_path):
    url = deploy_events(sandbox)
    desired = load(copy_example(tmp_path / "desired"))
    make_fleet(sandbox, finance=1, engineering=0)
    reconciler = controller(sandbox)
    reconciler.reconcile(desired)  # a relist: the cache is warm
    revision = Revision(id="test", desired=desired)
    lease = Switch(held=False)
    worker = EventWorker(
        EventQueue(reconciler.aws, url),
        reconciler,
        lambda: revision,
        reconciler.metrics,
        EventSettings(batch_seconds=0.2),
        guard=lease,
    )
    assert worker.informer.warm
    assert not worker.ready()  # another replica holds the target: its worker reads the queue
    lease.held = True
    assert worker.ready()


def test_a_replica_that_loses_the_lease_drops_its_cache_and_relists_as_holder(sandbox, tmp_path):
    metrics = Metrics(targets=["prod"])
    guard = Guard(allowed=1000)
    loop = loop_for(sandbox, tmp_path, guard, metrics)
    loop.run_once()
    assert loop.reconciler.relist_age() is not None  # the pass read everything
    kept = object()
    assert loop.reconciler.memory.of("Probe", lambda: kept) is kept  # what a kind keeps
    guard.allowed = guard.checks  # the lease is gone from the next check on
    loop.run_once()
    assert loop.reconciler.relist_age() is None  # dropped: nothing it saw is trusted any more
    assert loop.reconciler.memory.of("Probe", object) is not kept
    guard.allowed = guard.checks + 1000  # the lease comes back
    sandbox.admin.reset_calls()
    loop.run_once()
    assert loop.reconciler.relist_age() is not None
    assert sandbox.admin.call_counts("ssm")["DescribeActivations"] >= 1  # read again, not cached
