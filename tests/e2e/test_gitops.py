"""GitOps end to end: the controller follows a real git remote; Prometheus evaluates the shipped rules.

Enforce mode: a pushed commit reaches the live fleet within one interval; an invalid commit on
top of a good one is never applied, the good one keeps being enforced, the validity metric is 0
and FleetDesiredStateInvalid fires in Prometheus. Observe mode: drift made in the sandbox fires
FleetDriftPersisting in Prometheus, and fixing the drift clears it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from controller.cli import main
from tests.e2e import fleet
from tests.e2e.harness import Controller, Prometheus, eventually
from tests.runtime.gitrepo import GitRemote, example_files, git

pytestmark = pytest.mark.timeout(300)

INTERVAL = 10.0  # seconds between fetches and between reconciles
# One interval, plus the fetch and the pass themselves on a loaded machine: still less than two
# intervals, so a controller that skipped a fetch would miss it.
ONE_INTERVAL = INTERVAL + 8
REGION = "us-east-1"
TAGSYNC = "desired-state/tagsync.yaml"


def follow(remote: GitRemote, sandbox, tmp_path: Path, *extra: str) -> Controller:
    return Controller(
        ["--git-url", remote.url, "--git-ref", "main", "--git-path", "desired-state",
         "--git-dir", str(tmp_path / "clone"), "--interval", str(INTERVAL), "--jitter", "0",
         "--endpoint-url", sandbox.endpoint, "--region", REGION, *extra],
        tmp_path,
    )  # fmt: skip


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    repo = GitRemote(tmp_path / "repo")
    repo.commit(example_files(), "the example fleet")
    return repo


def test_pushes_reach_the_fleet_and_an_invalid_commit_is_never_applied(sandbox, remote, tmp_path):
    endpoint = sandbox.endpoint
    fleet.make_fleet(endpoint, REGION, finance=3, engineering=2)
    controller = follow(remote, sandbox, tmp_path)
    prometheus = Prometheus(tmp_path / "prometheus", [controller.target])
    try:
        first = git("rev-parse", "HEAD", cwd=remote.work)
        eventually(lambda: fleet.published(endpoint, REGION), 30, what="activation published")
        assert fleet.boot(endpoint, REGION) == 5
        finance = fleet.instances(endpoint, REGION, fleet.FINANCE)
        eventually(
            lambda: fleet.all_tagged(endpoint, REGION, fleet.FINANCE, "Compliance", "sox"),
            2 * ONE_INTERVAL,
            what="finance instances tagged",
        )
        assert controller.revision() == first

        # 1. A pushed commit changes the live state within one interval.
        text = example_files()[TAGSYNC].replace("Compliance: sox", "Compliance: pci-dss")
        pushed_at = time.monotonic()
        second = remote.commit({TAGSYNC: text}, "finance is PCI now")
        eventually(
            lambda: fleet.all_tagged(endpoint, REGION, fleet.FINANCE, "Compliance", "pci-dss"),
            ONE_INTERVAL,
            what="the pushed tag on every finance instance",
        )
        assert time.monotonic() - pushed_at <= ONE_INTERVAL
        assert controller.revision() == second
        assert controller.value("fleet_desired_state_valid") == 1

        # 2. An invalid commit on top: the validity metric drops, the alert fires in Prometheus.
        broken = text.replace("copyTags:", "copyTag:", 1)
        third = remote.commit({TAGSYNC: broken}, "a typo")
        eventually(lambda: controller.value("fleet_desired_state_valid") == 0, ONE_INTERVAL)
        assert controller.revision() == second  # still enforcing the last good commit
        eventually(lambda: prometheus.alerts("FleetDesiredStateInvalid"), 60, what="alert firing")
        assert prometheus.query("fleet_desired_state_valid") == {
            (("instance", controller.target), ("job", "fleet-controller")): 0.0
        }
        errors = controller.events("invalid desired state")
        assert errors and all(e["revision"] == third for e in errors)
        assert any("desired-state/tagsync.yaml:" in e["error"] and "copyTag" in e["error"]
                   for e in errors)  # fmt: skip

        # ... and the good commit keeps being enforced: drift is repaired.
        victim = finance[0]
        fleet.remove_tag(endpoint, REGION, victim, "Compliance")
        eventually(
            lambda: fleet.tags(endpoint, REGION, victim).get("Compliance") == "pci-dss",
            ONE_INTERVAL,
            what="drift repaired from the last good revision",
        )
        assert fleet.tags(endpoint, REGION, victim).get("Compliance") == "pci-dss"
        assert controller.value("fleet_desired_state_valid") == 0

        # 3. The fix: valid again, the alert clears.
        fourth = remote.commit({TAGSYNC: text}, "fix the typo")
        eventually(lambda: controller.revision() == fourth, ONE_INTERVAL)
        eventually(lambda: not prometheus.active("FleetDesiredStateInvalid"), 60)
    finally:
        prometheus.stop()
        assert controller.stop() == 0, controller.log()[-3000:]


def test_observe_mode_drift_fires_the_drift_alert_and_fixing_it_clears_it(
    sandbox, remote, tmp_path
):
    endpoint = sandbox.endpoint
    fleet.make_fleet(endpoint, REGION, finance=2, engineering=1)
    # Converge first (the fleet has been managed for a while), with the same controller id.
    desired = str(remote.work / "desired-state")
    apply = ["apply", desired, "--endpoint-url", endpoint, "--region", REGION,
             "--controller-id", "e2e", "--log-format", "json"]  # fmt: skip
    assert main(apply) == 0
    assert fleet.boot(endpoint, REGION) == 3
    assert main(apply) == 0
    assert fleet.all_tagged(endpoint, REGION, fleet.FINANCE, "Compliance", "sox")

    controller = follow(remote, sandbox, tmp_path, "--mode", "observe")
    prometheus = Prometheus(tmp_path / "prometheus", [controller.target])
    drift = 'fleet_drifted_resources{kind="TagSync"}'
    try:
        eventually(lambda: prometheus.query(drift), 30, what="drift gauge scraped")
        assert set(prometheus.query(drift).values()) == {0.0}
        assert prometheus.active("FleetDriftPersisting") == []

        victim = fleet.instances(endpoint, REGION, fleet.FINANCE)[0]
        fleet.remove_tag(endpoint, REGION, victim, "Compliance")
        firing = eventually(
            lambda: prometheus.alerts("FleetDriftPersisting"), 60, what="drift alert firing"
        )
        assert [(a["labels"]["target"], a["labels"]["kind"]) for a in firing] == [
            ("default", "TagSync")
        ]
        assert "Compliance" not in fleet.tags(endpoint, REGION, victim)  # observe never writes

        fleet.add_tag(endpoint, REGION, victim, "Compliance", "sox")  # someone fixes it
        eventually(lambda: not prometheus.active("FleetDriftPersisting"), 60, what="cleared")
        assert set(prometheus.query(drift).values()) == {0.0}
        assert controller.events("operation applied") == []
    finally:
        prometheus.stop()
        assert controller.stop() == 0, controller.log()[-3000:]
