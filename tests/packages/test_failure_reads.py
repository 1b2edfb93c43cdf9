"""A fleet-wide install failure costs a pass no more reads than a few failures do (issue 12).

The association's Overview (ListAssociations, read every pass anyway) counts the failures; which
instances failed is read only as examples, two calls per association that has failures. Before,
every non-compliant instance cost a ListComplianceItems call: at 10,000 failing instances, about
11,000 more calls and 18 more minutes per pass, exactly during an incident.
"""

from __future__ import annotations

from collections import Counter

from controller.contract.plan import Severity
from tests.packages.helpers import (
    ACME_EFFECTS,
    BUCKET,
    add_instance,
    association_yaml,
    controller,
    load,
    package_dir,
    run_agents,
)

FLEET = 40
FEW = 3


def _reads(sandbox, reconciler, desired) -> tuple[Counter[str], object]:
    """The calls one plan makes (every read of every kind), by operation."""
    sandbox.admin.reset_calls()
    plan = reconciler.plan(desired)
    calls = Counter()
    for row in sandbox.admin.calls():
        calls[f"{row['service']}:{row['operation']}"] += row["count"]
    return calls, plan


def _fail(sandbox, association_id: str, instances: list[str]) -> None:
    """The app vanishes from ``instances`` and its installer fails silently there."""
    sandbox.admin.post(
        "agent/outcome", {"package": "Acme", "outcome": "silent", "instanceIds": instances}
    )
    for instance_id in instances:
        sandbox.admin.post("agent/state", {"instanceId": instance_id, "remove": ACME_EFFECTS})
    sandbox.client("ssm").start_associations_once(AssociationIds=[association_id])
    run_agents(sandbox)


def _gauge(reconciler, package: str) -> float:
    gauge = reconciler.metrics.gauge("fleet_package_noncompliant_instances")
    return float(gauge.labels(target="default", package=package)._value.get())


def test_a_fleet_wide_install_failure_costs_two_reads_per_failing_association(sandbox, tmp_path):
    root = tmp_path / "desired"
    package_dir(root)
    (root / "install.yaml").write_text(association_yaml("install-acme"))
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    instances = [add_instance(n, {"App": "Acme"}) for n in range(1, FLEET + 1)]
    sandbox.admin.post("agent/effects", {"package": "Acme", "effects": ACME_EFFECTS})
    reconciler = controller(sandbox)
    desired = load(root)
    _, result = reconciler.reconcile(desired)
    assert result.ok, result.failed
    run_agents(sandbox)
    healthy, plan = _reads(sandbox, reconciler, desired)
    assert plan.operations == [] and _gauge(reconciler, "Acme") == 0
    association_id = sandbox.client("ssm").list_associations()["Associations"][0]["AssociationId"]

    _fail(sandbox, association_id, instances[:FEW])
    few, plan = _reads(sandbox, reconciler, desired)
    assert _gauge(reconciler, "Acme") == FEW

    _fail(sandbox, association_id, instances)
    everyone, plan = _reads(sandbox, reconciler, desired)
    assert _gauge(reconciler, "Acme") == FLEET

    print(f"\nhealthy: {sum(healthy.values())} calls, {FEW} failing: {sum(few.values())},")
    print(f"all {FLEET} failing: {sum(everyone.values())}: {dict(sorted(everyone.items()))}")
    assert everyone == few, "the failure reads grew with the number of failing instances"
    assert everyone - healthy == Counter(
        {"ssm:DescribeAssociationExecutions": 1, "ssm:DescribeAssociationExecutionTargets": 1}
    )
    assert healthy - everyone == Counter()
    [health] = [f for f in plan.findings if f.name == "install-acme"]
    assert health.severity is Severity.WARNING and health.count == FLEET
    assert f"0 Success, {FLEET} Failed, 0 Pending of {FLEET} instance(s)" in health.message
    assert len(health.examples) == 5 and set(health.examples) <= set(instances)
