"""The silent failure, end to end through the controller: the stock document says Success while
the application is missing; the controller's detection document says Failed, names the rule, and
the package's non-compliant metric counts the instance."""

from __future__ import annotations

import textwrap

from controller.contract.plan import Severity
from controller.detection.document import content_hash, document_name
from tests.packages.helpers import (
    ACME_EFFECTS,
    APP_EXE,
    BUCKET,
    CONTROLLER_ID,
    add_instance,
    agent_state,
    association_yaml,
    controller,
    load,
    package_dir,
    run_agents,
)

STOCK = textwrap.dedent(
    """\
    apiVersion: fleet-controller/v1alpha1
    kind: Association
    metadata:
      name: stock-acme
    spec:
      document:
        name: AWS-ConfigureAWSPackage
        parameters: {action: Install, name: Acme}
      targets:
        tags: {App: Acme}
    """
)


def _status(sandbox, instance_id, name):
    infos = sandbox.client("ssm").describe_instance_associations_status(InstanceId=instance_id)
    return next(
        i for i in infos["InstanceAssociationStatusInfos"] if i.get("AssociationName") == name
    )


def _metric(reconciler, name, **labels):
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in reconciler.metrics.text().splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{wanted}}}")


def test_stock_says_success_detection_says_failed_and_the_metric_counts_it(sandbox, tmp_path):
    root = tmp_path / "desired"
    package_dir(root)
    (root / "stock.yaml").write_text(STOCK)
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    healthy = add_instance(1, {"App": "Acme"})
    broken = add_instance(2, {"App": "Acme"})
    sandbox.admin.post("agent/effects", {"package": "Acme", "effects": ACME_EFFECTS})
    sandbox.admin.post(
        "agent/outcome", {"package": "Acme", "outcome": "silent", "instanceIds": [broken]}
    )
    reconciler = controller(sandbox)
    _, result = reconciler.reconcile(load(root))
    assert result.ok, result.failed
    run_agents(sandbox)
    # The stock document: Success everywhere, although the app is missing on one instance.
    assert _status(sandbox, broken, "stock-acme")["Status"] == "Success"
    assert _status(sandbox, healthy, "stock-acme")["Status"] == "Success"
    assert agent_state(sandbox, broken)["files"] == {}
    assert agent_state(sandbox, broken)["distributorPackages"] == {"Acme": "1.0.0"}

    # The same package through the controller's detection document.
    (root / "detected.yaml").write_text(association_yaml("install-acme"))
    _, result = reconciler.reconcile(load(root))
    assert result.ok, result.failed
    run_agents(sandbox)
    failed = _status(sandbox, broken, "install-acme")
    assert failed["Status"] == "Failed" and failed["ErrorCode"] == "1"
    assert "detection after Install: the package is not detected" in failed["ExecutionSummary"]
    assert f"file {APP_EXE} version ge 1.0 (file missing)" in failed["ExecutionSummary"]
    assert _status(sandbox, healthy, "install-acme")["Status"] == "Success"

    plan = reconciler.plan(load(root))
    assert plan.operations == []
    labels = {"target": "default", "association": "install-acme", "package": "Acme"}
    metric = "fleet_association_instances"
    assert _metric(reconciler, metric, **labels, status="Failed") == 1
    assert _metric(reconciler, metric, **labels, status="Success") == 1
    assert _metric(reconciler, metric, **labels, status="Pending") == 0
    assert (
        _metric(
            reconciler, "fleet_package_noncompliant_instances", target="default", package="Acme"
        )
        == 1
    )
    [health] = [f for f in plan.findings if f.name == "install-acme"]
    assert health.severity is Severity.WARNING
    assert "1 Success, 1 Failed, 0 Pending of 2 instance(s)" in health.message
    assert health.examples == (broken,)


def test_detection_document_is_owned_and_constant(sandbox, tmp_path):
    root = tmp_path / "desired"
    package_dir(root)
    (root / "detected.yaml").write_text(association_yaml("install-acme"))
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    controller(sandbox).reconcile(load(root))
    ssm = sandbox.client("ssm")
    described = ssm.describe_document(Name=document_name(CONTROLLER_ID))["Document"]
    assert described["Hash"] == content_hash()
    assert described["SchemaVersion"] == "2.2" and described["DocumentType"] == "Command"
    assert {t["Key"]: t["Value"] for t in described["Tags"]}["fleet-controller/owner"] == (
        CONTROLLER_ID
    )
    # Different rules for the package change the association's parameters, never the document.
    package_dir(root, rules={"type": "folder", "path": "C:\\Acme"})
    sandbox.admin.reset_calls()
    plan, _ = controller(sandbox).reconcile(load(root))
    assert [(op.kind, op.name, op.action.value) for op in plan.operations] == [
        ("Association", "install-acme", "update")
    ]
    assert [c.field for c in plan.operations[0].changes] == ["Parameters"]
    assert ssm.describe_document(Name=document_name(CONTROLLER_ID))["Document"]["Hash"] == (
        content_hash()
    )


def test_an_uninstall_that_leaves_the_app_behind_fails(sandbox, tmp_path):
    root = tmp_path / "desired"
    package_dir(root)
    (root / "remove.yaml").write_text(
        association_yaml("remove-acme").replace(
            "package: {name: acme}", "package: {name: acme, action: Uninstall}"
        )
    )
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    instance = add_instance(1, {"App": "Acme"})
    sandbox.admin.post(
        "agent/state",
        {"instanceId": instance, **ACME_EFFECTS, "distributorPackages": {"Acme": "1.0.0"}},
    )
    sandbox.admin.post("agent/outcome", {"package": "Acme", "outcome": "silent"})
    _, result = controller(sandbox).reconcile(load(root))
    assert result.ok, result.failed
    [run] = run_agents(sandbox)
    assert run["status"] == "Failed"
    assert run["steps"][0]["status"] == "Success"  # Distributor believes it is gone
    assert "detection after Uninstall: the package is still detected" in run["summary"]
    assert agent_state(sandbox, instance)["distributorPackages"] == {}
