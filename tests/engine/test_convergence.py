"""Activation + TagSync against the sandbox: converge, then stay quiet; minimal writes per change."""

from __future__ import annotations

import pytest

from controller.contract.ownership import OWNER_TAG, WORKSPACE_ID_TAG
from tests.engine.helpers import (
    CONTROLLER_ID,
    boot,
    controller,
    copy_example,
    instance_tags,
    load,
    make_fleet,
    writes,
)


@pytest.fixture
def converged(sandbox, tmp_path):
    """200 WorkSpaces registered through the published activation, tags copied."""
    desired = load(copy_example(tmp_path / "desired"))
    workspace_ids = make_fleet(sandbox, finance=120, engineering=80)
    reconciler = controller(sandbox)
    _, first = reconciler.reconcile(desired)
    assert first.ok and [op.kind for op in first.applied] == ["Activation"]
    registered = boot(sandbox)
    assert sum(1 for r in registered["results"] if r.get("instanceId")) == 200
    _, second = reconciler.reconcile(desired)
    assert second.ok and len(second.applied) == 200
    return desired, reconciler, workspace_ids


def test_apply_converges_and_a_second_pass_writes_nothing(sandbox, converged):
    desired, reconciler, _ = converged
    tags = instance_tags(sandbox)
    assert len(tags) == 200
    finance = [t for t in tags.values() if t.get("LineOfBusiness") == "finance"]
    engineering = [t for t in tags.values() if t.get("LineOfBusiness") == "engineering"]
    assert len(finance) == 120 and len(engineering) == 80
    for t in finance:
        assert t["CostCenter"] == "4100" and t["App-Excel"] == "true"
        assert t["Compliance"] == "sox" and t["workspace:user"].startswith("user")
        assert t[WORKSPACE_ID_TAG].startswith("ws-")
        assert t[OWNER_TAG] == CONTROLLER_ID  # copied by AWS from the activation's tags
    for t in engineering:
        assert t["EngineeringTeam"] == "platform" and "Team" not in t
        assert "Compliance" not in t

    sandbox.admin.reset_calls()
    plan = reconciler.plan(desired)
    assert plan.operations == []
    _, result = reconciler.reconcile(desired)
    assert result.applied == []
    assert writes(sandbox) == {}


def test_one_changed_workspace_tag_is_one_write_to_one_instance(sandbox, converged):
    desired, reconciler, workspace_ids = converged
    target = workspace_ids[0]
    sandbox.client("workspaces").create_tags(
        ResourceId=target, Tags=[{"Key": "CostCenter", "Value": "4999"}]
    )
    sandbox.admin.reset_calls()
    plan, _result = reconciler.reconcile(desired)
    assert len(plan.operations) == 1
    [operation] = plan.operations
    assert [(c.field, c.before, c.after) for c in operation.changes] == [
        ("tags.CostCenter", "4100", "4999")
    ]
    assert writes(sandbox) == {"ssm:AddTagsToResource": 1}
    assert instance_tags(sandbox)[operation.resource]["CostCenter"] == "4999"


def test_removed_copied_key_is_removed_and_unowned_key_survives(sandbox, converged):
    desired, reconciler, workspace_ids = converged
    target = workspace_ids[0]
    instance = next(i for i, t in instance_tags(sandbox).items() if t[WORKSPACE_ID_TAG] == target)
    ssm = sandbox.client("ssm")
    ssm.add_tags_to_resource(
        ResourceType="ManagedInstance", ResourceId=instance, Tags=[{"Key": "Owner", "Value": "ops"}]
    )
    sandbox.client("workspaces").delete_tags(ResourceId=target, TagKeys=["App-Excel"])
    sandbox.admin.reset_calls()
    plan, _ = reconciler.reconcile(desired)
    assert [op.resource for op in plan.operations] == [instance]
    assert [(c.field, c.before, c.after) for c in plan.operations[0].changes] == [
        ("tags.App-Excel", "true", None)
    ]
    assert writes(sandbox) == {"ssm:RemoveTagsFromResource": 1}
    tags = instance_tags(sandbox)[instance]
    assert "App-Excel" not in tags
    assert tags["Owner"] == "ops"


def test_rebuilt_workspace_moves_its_tags_to_the_new_instance(sandbox, converged):
    desired, reconciler, workspace_ids = converged
    target = workspace_ids[1]
    old = next(i for i, t in instance_tags(sandbox).items() if t[WORKSPACE_ID_TAG] == target)
    sandbox.admin.post("fleet/rebuild", {"workspaceIds": [target]})
    boot(sandbox)
    plan, result = reconciler.reconcile(desired)
    assert result.ok
    tags = instance_tags(sandbox)
    new = [i for i, t in tags.items() if t.get(WORKSPACE_ID_TAG) == target and i != old]
    assert len(new) == 1
    assert tags[new[0]]["CostCenter"] == "4100"
    stale = [f for f in plan.findings if "stale" in f.message]
    assert stale and old in stale[0].examples


def test_stale_instances_are_deregistered_only_with_prune(sandbox, converged):
    desired, _, workspace_ids = converged
    sandbox.admin.post("fleet/terminate", {"workspaceIds": workspace_ids[:2]})
    without = controller(sandbox)
    plan = without.plan(desired)
    assert not [op for op in plan.operations if op.action.value == "delete"]
    assert any("--prune" in f.message for f in plan.findings)

    guarded = controller(sandbox, prune=True, max_deletes=1)
    plan = guarded.plan(desired)
    assert plan.refused and "max-deletes" in plan.refused[0]
    assert not [op for op in plan.operations if op.prune]

    pruning = controller(sandbox, prune=True, max_deletes=5)
    sandbox.admin.reset_calls()
    plan, result = pruning.reconcile(desired)
    assert result.ok
    assert writes(sandbox) == {"ssm:DeregisterManagedInstance": 2}


def test_tags_are_read_per_resource_when_the_tagging_api_is_denied(sandbox, tmp_path):
    desired = load(copy_example(tmp_path / "desired"))
    make_fleet(sandbox, finance=3, engineering=2)
    reconciler = controller(sandbox)
    reconciler.reconcile(desired)
    boot(sandbox)
    sandbox.admin.set_faults([{"service": "resourcegroupstaggingapi", "deny_rate": 1.0}])
    sandbox.admin.reset_calls()
    plan = reconciler.plan(desired)  # the observation's reads (apply reads status again after)
    reads = sandbox.admin.call_counts()
    assert reads["GetResources"] == 1  # denied once, then per-resource reads
    assert reads["DescribeTags"] == 5 and reads["ListTagsForResource"] == 5 + 1  # + the parameter
    result = reconciler.apply(plan)
    assert result.ok and len(plan.operations) == 5
    sandbox.admin.reset_calls()
    assert reconciler.plan(desired).operations == []
    assert writes(sandbox) == {}


def test_a_value_ssm_refuses_is_skipped_with_a_finding(sandbox, tmp_path):
    desired = load(copy_example(tmp_path / "desired"))
    [workspace] = make_fleet(sandbox, finance=1, engineering=0)
    sandbox.client("workspaces").create_tags(
        ResourceId=workspace, Tags=[{"Key": "App-Excel", "Value": "yes; rm -rf"}]
    )
    reconciler = controller(sandbox)
    reconciler.reconcile(desired)
    boot(sandbox)
    plan, result = reconciler.reconcile(desired)
    assert result.ok
    [operation] = plan.operations
    assert "tags.App-Excel" not in {c.field for c in operation.changes}
    assert "tags.CostCenter" in {c.field for c in operation.changes}
    [finding] = [f for f in plan.findings if "App-Excel" in f.message]
    assert "characters SSM does not allow" in finding.message
