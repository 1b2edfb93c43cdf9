"""Two replicas, four targets (four Regions of one sandbox), leases in the sandbox's DynamoDB.

Each target has exactly one writer, both replicas hold some, SIGKILL of one hands its targets to
the other within the lease duration, and no operation is ever applied twice: the sandbox's own
call counts equal the drifted resources, and so do the two replicas' apply counters per target.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.e2e import fleet
from tests.e2e.harness import ROOT, Controller, eventually

pytestmark = pytest.mark.timeout(300)

REGIONS = {"use1": "us-east-1", "usw2": "us-west-2", "euw1": "eu-west-1", "apse2": "ap-southeast-2"}
ROLE = "arn:aws:iam::123456789012:role/fleet-controller"
TABLE = "fleet-controller-leases"
# Real time is the point here (two processes, SIGKILL), so the lease timings leave margins a
# loaded machine keeps: a keeper may stall for seconds without losing a lease it still renews.
LEASE_DURATION = 8.0
RENEW_DEADLINE = 6.0
RETRY_PERIOD = 1.0
FINANCE, ENGINEERING = 2, 1
WRITES = ("CreateActivation", "PutParameter", "AddTagsToResource", "RemoveTagsFromResource",
          "DeleteActivation", "DeregisterManagedInstance", "DeleteParameter")  # fmt: skip


class LeaderWatch:
    """Samples both replicas' fleet_leader every 0.2 s; records any target with two leaders."""

    def __init__(self, replicas: list[Controller]) -> None:
        self.replicas = replicas
        self.samples = 0
        self.conflicts: list[tuple[str, list[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def leaders(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {target: [] for target in REGIONS}
        for replica in self.replicas:
            for labels, value in replica.values("fleet_leader").items():
                if value == 1:
                    found[dict(labels)["target"]].append(replica.name)
        return found

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for target, holders in self.leaders().items():
                if len(holders) > 1:
                    self.conflicts.append((target, holders))
            self.samples += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def ssm_writes(sandbox) -> Counter[str]:
    counts = sandbox.admin.call_counts("ssm")
    return Counter({op: n for op, n in counts.items() if op in WRITES})


def applied(replicas: list[Controller], target: str) -> float:
    return sum(
        sum(r.values("fleet_apply_operations_total", target=target, result="success").values())
        for r in replicas
    )


def passes(replicas: list[Controller], target: str) -> float:
    return sum(
        r.value("fleet_reconciles_total", target=target, result="success") or 0 for r in replicas
    )


def more_passes(replicas: list[Controller], count: int = 2) -> None:
    """Wait until every target was reconciled ``count`` more times (by whoever leads it): what
    those passes would have written is written, on however loaded a machine."""
    start = {target: passes(replicas, target) for target in REGIONS}
    eventually(
        lambda: all(passes(replicas, t) >= start[t] + count for t in REGIONS),
        60,
        what=f"{count} more passes of every target",
    )


def test_two_replicas_share_four_targets_and_survive_a_kill(sandbox, tmp_path: Path):
    endpoint = sandbox.endpoint
    sandbox.client("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "target", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "target", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for region in REGIONS.values():
        fleet.make_fleet(endpoint, region, finance=FINANCE, engineering=ENGINEERING)
    targets = tmp_path / "targets.yaml"
    targets.write_text(
        yaml.safe_dump(
            {
                "targets": [
                    {"name": name, "region": region, "roleArn": ROLE}
                    for name, region in REGIONS.items()
                ]
            }
        )
    )
    common = ["--targets", str(targets), "--lease-table", TABLE,
              "--lease-duration", str(LEASE_DURATION), "--lease-renew-deadline", str(RENEW_DEADLINE),
              "--lease-retry-period", str(RETRY_PERIOD), "--interval", "2",
              "--endpoint-url", endpoint, "--region", "us-east-1"]  # fmt: skip
    desired = str(ROOT / "desired-state")
    core_only = tmp_path / "desired"
    core_only.mkdir()
    for name in ("activation.yaml", "tagsync.yaml"):
        (core_only / name).write_text((Path(desired) / name).read_text())
    a = Controller([str(core_only), *common, "--replica-id", "a"], tmp_path, name="a")
    b = Controller([str(core_only), *common, "--replica-id", "b"], tmp_path, name="b")
    watch = LeaderWatch([a, b])
    try:
        # Every target has exactly one leader, and both replicas lead some.
        def spread() -> dict[str, list[str]] | None:
            leaders = watch.leaders()
            ok = all(len(h) == 1 for h in leaders.values())
            shares = sorted(Counter(h[0] for h in leaders.values() if h).values())
            return leaders if ok and shares == [2, 2] else None

        # both lead two (a fair share), each target exactly one leader
        eventually(spread, 60, what="four targets spread two and two over two replicas")

        # Each Region gets its activation; its WorkSpaces boot and get their tags.
        for region in REGIONS.values():
            eventually(lambda r=region: fleet.published(endpoint, r), 30, what=f"{region} act.")
            assert fleet.boot(endpoint, region) == FINANCE + ENGINEERING
        for region in REGIONS.values():
            eventually(
                lambda r=region: fleet.all_tagged(endpoint, r, fleet.FINANCE, "Compliance", "sox"),
                30,
                what=f"{region} tagged",
            )
        per_region = FINANCE + ENGINEERING
        eventually(
            lambda: all(applied([a, b], t) == 1 + per_region for t in REGIONS), 30,
            what="apply counters",
        )  # fmt: skip
        more_passes([a, b])  # nothing left to do: nothing more is written
        assert ssm_writes(sandbox) == Counter(
            {"CreateActivation": 4, "PutParameter": 4, "AddTagsToResource": 4 * per_region}
        )
        for target in REGIONS:  # one activation + one tag write per instance, per target
            assert applied([a, b], target) == 1 + per_region, target

        # SIGKILL one replica: the other takes its targets within the lease duration.
        killed = sorted(t for t, h in watch.leaders().items() if h == ["a"])
        a.kill()
        killed_at = time.monotonic()
        eventually(
            lambda: all(b.value("fleet_leader", target=t) == 1 for t in REGIONS),
            LEASE_DURATION + 10,
            what="b leads every target",
        )
        handed_over = time.monotonic() - killed_at
        print(f"hand-over after SIGKILL: {handed_over:.1f}s (lease duration {LEASE_DURATION}s)")
        assert handed_over <= LEASE_DURATION + 10
        for target in killed:  # b reconciles the targets it took over: nothing to write
            eventually(
                lambda t=target: (b.value("fleet_reconciles_total", target=t, result="success")
                                  or 0) > 0, 20, what=f"b reconciles {target}",
            )  # fmt: skip
        assert ssm_writes(sandbox)["AddTagsToResource"] == 4 * per_region

        # New drift in every Region after the hand-over: fixed exactly once each.
        victims = {r: fleet.instances(endpoint, r, fleet.FINANCE)[0] for r in REGIONS.values()}
        for region, instance in victims.items():
            fleet.remove_tag(endpoint, region, instance, "Compliance")
        for region, instance in victims.items():
            eventually(
                lambda r=region, i=instance: fleet.tags(endpoint, r, i).get("Compliance") == "sox",
                20,
                what=f"{region} drift fixed",
            )
        more_passes([b])
        assert ssm_writes(sandbox) == Counter(
            {
                "CreateActivation": 4,
                "PutParameter": 4,
                "AddTagsToResource": 4 * per_region + 4,
                "RemoveTagsFromResource": 4,  # the test's own drift
            }
        )
        for target in REGIONS:
            assert b.value("fleet_drifted_resources", target=target, kind="TagSync") == 0
    finally:
        watch.stop()
        a.kill()
        stopped = b.stop()
    assert stopped == 0, b.log()[-3000:]
    assert watch.samples > 50 and watch.conflicts == []
    assert sandbox.admin.call_counts("sts")["AssumeRole"] >= 4  # every target assumed its role
    # b's clean stop handed its leases back; a's heartbeat stays until someone cleans it up.
    left = sandbox.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert {item["target"]["S"] for item in left} <= {"replica#a", *REGIONS}
    assert all(item["holder"]["S"] != "b" for item in left)
