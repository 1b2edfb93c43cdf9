"""The tracker keeps the last good revision; the loop writes only while its guard allows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.observability.metrics import Metrics
from controller.service.loop import (
    DesiredStateTracker,
    LoopSettings,
    ReconcileLoop,
    Refresh,
)
from controller.service.source import DirectorySource, GitSource
from tests.runtime.gitrepo import GitRemote, example_files
from tests.runtime.helpers import activations_dir, reconciler, sample
from tests.runtime.test_git_source import MISSPELT


@pytest.fixture
def followed(tmp_path: Path):
    remote = GitRemote(tmp_path / "repo")
    remote.commit(example_files(), "initial")
    source = GitSource(remote.url, path="desired-state", workdir=tmp_path / "clone")
    yield remote, source
    source.close()


def revision_info(metrics: Metrics) -> dict[str, float]:
    return {
        s.labels["revision"]: s.value
        for family in metrics.registry.collect()
        if family.name == "fleet_desired_state_info"
        for s in family.samples
    }


def test_the_tracker_keeps_the_last_good_revision(followed):
    remote, source = followed
    metrics = Metrics()
    tracker = DesiredStateTracker(source, metrics)
    assert tracker.refresh() is Refresh.NEW
    good = tracker.current()
    assert good is not None
    assert sample(metrics, "fleet_desired_state_valid") == 1
    assert revision_info(metrics) == {good.id: 1.0}
    assert tracker.refresh() is Refresh.SAME

    remote.commit({"desired-state/broken.yaml": MISSPELT}, "a typo")
    assert tracker.refresh() is Refresh.INVALID
    assert tracker.current() is good
    assert sample(metrics, "fleet_desired_state_valid") == 0
    assert revision_info(metrics) == {good.id: 1.0}  # still enforcing the good one
    assert tracker.refresh() is Refresh.INVALID  # stays invalid, still the good one
    assert tracker.current() is good

    remote.bare.rename(remote.bare.with_name("gone.git"))
    assert tracker.refresh() is Refresh.UNAVAILABLE
    assert tracker.current() is good
    assert sample(metrics, "fleet_desired_state_valid") == 0  # nothing new is known
    remote.bare.with_name("gone.git").rename(remote.bare)

    fixed = remote.commit({"desired-state/broken.yaml": None}, "fix")
    assert tracker.refresh() is Refresh.NEW
    assert tracker.current().id == fixed
    assert sample(metrics, "fleet_desired_state_valid") == 1
    assert revision_info(metrics) == {fixed: 1.0}


class Guard:
    """Allows writes for the first ``allowed`` checks, then never again (a lease that lapsed)."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.checks = 0

    def may_write(self) -> bool:
        self.checks += 1
        return self.checks <= self.allowed


def loop_for(sandbox, tmp_path, guard, metrics):
    source_dir = activations_dir(tmp_path / "desired", "alpha", "bravo", "charlie")
    tracker = DesiredStateTracker(DirectorySource(source_dir), metrics)
    tracker.refresh()
    return ReconcileLoop(
        tracker.current,
        reconciler(sandbox.endpoint, metrics, target="prod"),
        metrics,
        LoopSettings(interval_seconds=0.1),
        guard=guard,
    )


def test_no_operation_starts_once_the_lease_is_gone(sandbox, tmp_path):
    metrics = Metrics(targets=["prod"])
    # One check before the pass, one before the first operation; the lease lapses after that.
    loop = loop_for(sandbox, tmp_path, Guard(allowed=2), metrics)
    loop.run_once()
    writes = sandbox.admin.call_counts("ssm")
    assert writes["CreateActivation"] == 1 and writes["PutParameter"] == 1
    # What the pass saw is no longer this replica's to report.
    assert sample(metrics, "fleet_drifted_resources", target="prod", kind="Activation") is None
    assert sample(metrics, "fleet_leader", target="prod") == 0


def test_a_replica_without_the_lease_makes_no_call_at_all(sandbox, tmp_path):
    metrics = Metrics(targets=["prod"])
    loop = loop_for(sandbox, tmp_path, Guard(allowed=0), metrics)
    loop.run_once()
    assert sandbox.admin.calls() == []
    assert loop.completed == 0 and loop.ready  # ready: another replica holds the target


def test_with_the_lease_every_operation_is_applied(sandbox, tmp_path):
    metrics = Metrics(targets=["prod"])
    loop = loop_for(sandbox, tmp_path, Guard(allowed=1000), metrics)
    loop.run_once()
    assert sandbox.admin.call_counts("ssm")["CreateActivation"] == 3
    assert sample(metrics, "fleet_drifted_resources", target="prod", kind="Activation") == 0


def test_forgetting_a_target_keeps_other_targets_and_the_lease_series():
    metrics = Metrics(targets=["a", "b"])
    for target in ("a", "b"):
        metrics.set_family(metrics.drifted_resources, target, {"TagSync": 2})
        metrics.set_gauge(metrics.last_successful_reconcile_timestamp_seconds, target, 1.0)
    metrics.set_leader("a", True)
    metrics.forget_target("a")
    assert sample(metrics, "fleet_drifted_resources", target="a", kind="TagSync") is None
    assert sample(metrics, "fleet_last_successful_reconcile_timestamp_seconds", target="a") is None
    assert sample(metrics, "fleet_drifted_resources", target="b", kind="TagSync") == 2
    assert sample(metrics, "fleet_leader", target="a") == 1
    assert sample(metrics, "fleet_managed_instance_quota", target="a") == 1000
    assert sample(metrics, "fleet_reconciles_total", target="a", result="success") == 0
