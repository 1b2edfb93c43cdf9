"""Associations change only when their normalised spec differs, and then with every field."""

from __future__ import annotations

import textwrap

from controller.contract.plan import Action
from controller.kinds.association import normalize
from tests.packages.helpers import (
    BUCKET,
    add_instance,
    association_yaml,
    controller,
    load,
    package_dir,
    writes,
)

DOCUMENT = textwrap.dedent(
    """\
    apiVersion: fleet-controller/v1alpha1
    kind: Association
    metadata:
      name: inventory
    spec:
      document:
        name: AWS-ConfigureAWSPackage
        parameters: {action: Install, name: Acme}
      targets:
        tags: {App: [Acme, Beta], Team: ops}
      schedule:
        expression: "cron(0 9 ? * mon-fri *)"
      maxConcurrency: "10"
      maxErrors: "0"
    """
)


def test_live_spellings_that_mean_the_same_compare_equal():
    desired = {
        "Name": "Doc",
        "Parameters": {"a": ["1"], "b": ["x", "y"]},
        "Targets": [
            {"Key": "tag:App", "Values": ["Acme", "Beta"]},
            {"Key": "tag:Team", "Values": ["ops"]},
        ],
        "ScheduleExpression": "cron(0 9 ? * MON-FRI *)",
        "DocumentVersion": "$DEFAULT",
        "ComplianceSeverity": "UNSPECIFIED",
        "SyncCompliance": "AUTO",
        "ApplyOnlyAtCronInterval": False,
    }
    live = {  # AWS's defaults left out, targets and values reordered, another cron spelling
        "Name": "Doc",
        "Parameters": {"b": ["x", "y"], "a": ["1"]},
        "Targets": [
            {"Key": "tag:Team", "Values": ["ops"]},
            {"Key": "tag:App", "Values": ["Beta", "Acme"]},
        ],
        "ScheduleExpression": " cron(0  9 ? * mon-fri *)",
        "AssociationId": "ignored",
        "Overview": {"Status": "Success"},
    }
    assert normalize(live) == normalize(desired)
    assert normalize({**live, "Parameters": {"b": ["y", "x"], "a": ["1"]}}) != normalize(desired)


def test_a_hand_edit_is_reverted_with_one_full_update(sandbox, tmp_path):
    root = tmp_path / "desired"
    root.mkdir()
    (root / "inventory.yaml").write_text(DOCUMENT)
    add_instance(1, {"App": "Acme", "Team": "ops"})
    reconciler = controller(sandbox)
    _, result = reconciler.reconcile(load(root))
    assert result.ok, result.failed
    ssm = sandbox.client("ssm")
    [live] = ssm.list_associations()["Associations"]
    association_id = live["AssociationId"]
    # Someone raises MaxErrors by hand (and, like the console, sends the other fields back).
    described = ssm.describe_association(AssociationId=association_id)["AssociationDescription"]
    ssm.update_association(
        AssociationId=association_id,
        Name=described["Name"],
        Parameters=described["Parameters"],
        Targets=described["Targets"],
        ScheduleExpression=described["ScheduleExpression"],
        AssociationName=described["AssociationName"],
        MaxConcurrency="10",
        MaxErrors="5",
    )
    sandbox.admin.reset_calls()
    plan, result = reconciler.reconcile(load(root))
    assert result.ok, result.failed
    [operation] = plan.operations
    assert operation.action is Action.UPDATE
    # The omitted fields AWS nulled equal the defaults desired: only MaxErrors differs.
    assert [(c.field, c.before, c.after) for c in operation.changes] == [("MaxErrors", "5", "0")]
    assert writes(sandbox) == {"ssm:UpdateAssociation": 1}
    versions = ssm.list_association_versions(AssociationId=association_id)["AssociationVersions"]
    latest = versions[-1]
    assert latest["AssociationVersion"] == "3"
    assert latest["MaxErrors"] == "0" and latest["MaxConcurrency"] == "10"
    assert latest["ComplianceSeverity"] == "UNSPECIFIED" and latest["SyncCompliance"] == "AUTO"
    assert latest["ScheduleExpression"] == "cron(0 9 ? * MON-FRI *)"
    sandbox.admin.reset_calls()
    plan, _ = reconciler.reconcile(load(root))
    assert plan.operations == [] and writes(sandbox) == {}


def test_an_update_names_the_version_it_compared_against(sandbox, tmp_path):
    root = tmp_path / "desired"
    package_dir(root)
    (root / "a.yaml").write_text(association_yaml("install-acme"))
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    reconciler = controller(sandbox)
    reconciler.reconcile(load(root))
    (root / "a.yaml").write_text(association_yaml("install-acme", extra="maxConcurrency: '2'"))
    plan = reconciler.plan(load(root))
    [operation] = plan.operations
    assert operation.payload.association_version == "1"
    assert [c.field for c in operation.changes] == ["MaxConcurrency"]
    # A change made meanwhile makes the update fail instead of overwriting it.
    ssm = sandbox.client("ssm")
    [live] = ssm.list_associations()["Associations"]
    described = ssm.describe_association(AssociationId=live["AssociationId"])
    ssm.update_association(
        AssociationId=live["AssociationId"],
        Name=described["AssociationDescription"]["Name"],
        Parameters=described["AssociationDescription"]["Parameters"],
        Targets=described["AssociationDescription"]["Targets"],
        AssociationName="install-acme",
    )
    result = reconciler.apply(plan)
    assert not result.ok and "InvalidAssociationVersion" in result.failed[0][1]
    _, retried = reconciler.reconcile(load(root))  # the next pass compares afresh
    assert retried.ok


def test_a_schedule_offset_is_sent_compared_and_left_alone_when_equal(sandbox, tmp_path):
    """schedule.offset becomes ScheduleOffset (with ApplyOnlyAtCronInterval, as AWS requires);
    a second pass sends nothing, and changing the offset is one update of that field."""
    root = tmp_path / "desired"
    root.mkdir()
    offset = DOCUMENT.replace(
        '    expression: "cron(0 9 ? * mon-fri *)"\n',
        '    expression: "cron(0 0 ? * THU#2 *)"\n    offset: 3\n',
    ).replace('maxErrors: "0"\n', 'maxErrors: "0"\n  applyOnlyAtCronInterval: true\n')
    (root / "inventory.yaml").write_text(offset)
    reconciler = controller(sandbox)
    _, result = reconciler.reconcile(load(root))
    assert result.ok, result.failed
    ssm = sandbox.client("ssm")
    [live] = ssm.list_associations()["Associations"]
    described = ssm.describe_association(AssociationId=live["AssociationId"])
    assert described["AssociationDescription"]["ScheduleOffset"] == 3
    assert described["AssociationDescription"]["ApplyOnlyAtCronInterval"] is True
    sandbox.admin.reset_calls()
    plan, _ = reconciler.reconcile(load(root))
    assert plan.operations == [] and writes(sandbox) == {}
    (root / "inventory.yaml").write_text(offset.replace("offset: 3", "offset: 5"))
    plan, result = reconciler.reconcile(load(root))
    assert result.ok, result.failed
    [operation] = plan.operations
    assert [(c.field, c.before, c.after) for c in operation.changes] == [("ScheduleOffset", 3, 5)]
