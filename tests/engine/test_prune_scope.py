"""Pruning deregisters only what is provably stale (issue 9, hole 2).

An instance is stale only when no WorkSpace anywhere in the account and Region (every directory,
every state but TERMINATED) matches it, and only one carrying this controller's owner tag is ever
deregistered. Reproduced through the CLI as operators run it: ``apply --prune`` and ``run
--prune``, against a fleet with WorkSpaces in a directory no TagSync names, and after a TagSync
manifest is removed.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.contract.ownership import OWNER_TAG, WORKSPACE_ID_TAG
from controller.kinds.base import Context
from controller.kinds.matching import LiveInstance, LiveWorkspace
from controller.kinds.tagsync import TagSyncKind, TagSyncLive
from tests.engine.helpers import (
    CONTROLLER_ID,
    ENGINEERING_DIRECTORY,
    FINANCE_DIRECTORY,
    boot,
    cli,
    controller,
    copy_example,
    instance_tags,
    load,
    make_fleet,
    writes,
)

OTHER_DIRECTORY = "d-90670a0b0c"  # a second team's directory: no TagSync names it


def _apply_prune(sandbox, directory: Path) -> int:
    return cli(sandbox, "apply", str(directory), "--prune", "--max-deletes", "50")


def _run_prune(sandbox, directory: Path) -> int:
    return cli(
        sandbox,
        "run",
        str(directory),
        "--prune",
        "--max-deletes",
        "50",
        "--iterations",
        "2",
        "--interval",
        "0.05",
        "--metrics-host",
        "127.0.0.1",
        "--metrics-port",
        "0",
    )


PRUNING = {"apply --prune": _apply_prune, "run --prune": _run_prune}


def _instances_of(sandbox, workspace_ids: list[str]) -> set[str]:
    """The managed instances the sandbox's agents registered for these WorkSpaces."""
    rows = sandbox.admin.get("fleet")["workspaces"]
    return {r["instanceId"] for r in rows if r["workspaceId"] in workspace_ids and r["instanceId"]}


def _registered(sandbox) -> set[str]:
    ssm = sandbox.client("ssm")
    return {
        item["InstanceId"]
        for page in ssm.get_paginator("describe_instance_information").paginate()
        for item in page["InstanceInformationList"]
    }


@pytest.fixture
def fleet_with_a_second_team(sandbox, tmp_path):
    """The example's two directories plus three WorkSpaces in a directory no TagSync names, all
    registered through this controller's activation (so every instance carries its owner tag)."""
    directory = copy_example(tmp_path / "desired")
    make_fleet(sandbox, finance=3, engineering=3)
    other = sandbox.admin.post(
        "fleet/workspaces",
        {"count": 3, "directoryId": OTHER_DIRECTORY, "tags": {"CostCenter": "7000"}},
    )["workspaceIds"]
    assert cli(sandbox, "apply", str(directory)) == 0  # publishes the activation
    results = boot(sandbox)["results"]
    assert sum(1 for r in results if r.get("instanceId")) == 9
    assert cli(sandbox, "apply", str(directory)) == 0  # tags the six selected ones
    tags = instance_tags(sandbox)
    assert all(t.get(OWNER_TAG) == CONTROLLER_ID for t in tags.values()), tags
    return directory, other


@pytest.mark.parametrize("how", sorted(PRUNING))
def test_instances_of_workspaces_in_another_directory_are_never_deregistered(
    sandbox, fleet_with_a_second_team, how
):
    directory, other = fleet_with_a_second_team
    others = _instances_of(sandbox, other)
    assert len(others) == 3
    before = _registered(sandbox)
    sandbox.admin.reset_calls()
    assert PRUNING[how](sandbox, directory) == 0
    assert "ssm:DeregisterManagedInstance" not in writes(sandbox)
    assert _registered(sandbox) == before


@pytest.mark.parametrize("how", sorted(PRUNING))
def test_removing_a_tagsync_stops_managing_its_keys_and_deregisters_nothing(
    sandbox, fleet_with_a_second_team, how
):
    directory, _ = fleet_with_a_second_team
    engineering = {
        i: t for i, t in instance_tags(sandbox).items() if t.get("LineOfBusiness") == "engineering"
    }
    assert len(engineering) == 3
    text = (directory / "tagsync.yaml").read_text()
    (directory / "tagsync.yaml").write_text(text.split("\n---\n")[0] + "\n")  # finance only
    before = _registered(sandbox)
    sandbox.admin.reset_calls()
    assert PRUNING[how](sandbox, directory) == 0
    assert writes(sandbox) == {}  # no deregistration, and no tag of engineering's touched
    assert _registered(sandbox) == before
    after = instance_tags(sandbox)
    for instance, tags in engineering.items():
        assert after[instance] == tags


def test_plan_shows_no_stale_instance_for_live_workspaces_of_any_directory(
    sandbox, fleet_with_a_second_team, capsys
):
    directory, _ = fleet_with_a_second_team
    capsys.readouterr()
    assert cli(sandbox, "plan", str(directory), "--format", "json", "--prune") == 0
    document = json.loads(capsys.readouterr().out)
    assert document["operations"] == []
    assert not [f for f in document["findings"] if "stale" in f["message"]]


def test_a_terminated_workspaces_owned_instance_is_still_deregistered_with_a_true_reason(
    sandbox, fleet_with_a_second_team
):
    directory, other = fleet_with_a_second_team
    [gone] = _instances_of(sandbox, other[:1])
    sandbox.admin.post("fleet/terminate", {"workspaceIds": other[:1]})
    plan = controller(sandbox, prune=True).plan(load(directory))
    [operation] = plan.operations
    assert (operation.action.value, operation.resource) == ("delete", gone)
    assert "no WorkSpace in the account and Region" in operation.reason
    sandbox.admin.reset_calls()
    assert _apply_prune(sandbox, directory) == 0
    assert writes(sandbox) == {"ssm:DeregisterManagedInstance": 1}
    assert gone not in _registered(sandbox)


def test_an_unowned_instance_matching_no_workspace_is_reported_never_deregistered(
    sandbox, fleet_with_a_second_team
):
    directory, other = fleet_with_a_second_team
    [theirs] = _instances_of(sandbox, other[:1])
    ssm = sandbox.client("ssm")
    ssm.remove_tags_from_resource(  # someone else's registration: not ours to remove
        ResourceType="ManagedInstance", ResourceId=theirs, TagKeys=[OWNER_TAG]
    )
    ssm.add_tags_to_resource(
        ResourceType="ManagedInstance",
        ResourceId=theirs,
        Tags=[{"Key": WORKSPACE_ID_TAG, "Value": other[0]}],
    )
    sandbox.admin.post("fleet/terminate", {"workspaceIds": other[:1]})
    plan = controller(sandbox, prune=True).plan(load(directory))
    assert plan.operations == []
    [finding] = [f for f in plan.findings if theirs in f.examples]
    assert "stale" in finding.message


def test_the_engineering_directory_is_read_once_with_all_the_others(sandbox, tmp_path):
    """One all-directories DescribeWorkspaces walk replaces the per-directory reads."""
    directory = copy_example(tmp_path / "desired")
    make_fleet(sandbox, finance=30, engineering=30)
    sandbox.admin.post(
        "fleet/workspaces", {"count": 10, "directoryId": OTHER_DIRECTORY, "tags": {}}
    )
    sandbox.admin.reset_calls()
    controller(sandbox).plan(load(directory))
    described = [
        row
        for row in sandbox.admin.calls()
        if (row["service"], row["operation"]) == ("workspaces", "DescribeWorkspaces")
    ]
    assert sum(row["count"] for row in described) == 3  # 70 WorkSpaces, 25 a page
    assert ENGINEERING_DIRECTORY  # named by the example, read in the same walk


# -- the rule, pure ------------------------------------------------------------------------------

_T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _workspace(workspace_id: str, name: str, state: str = "AVAILABLE") -> LiveWorkspace:
    return LiveWorkspace(workspace_id, FINANCE_DIRECTORY, "wsb-1", state, "u", name, "10.0.0.1")


def _instance(
    instance_id: str, name: str, ping: str, age_days: int, joined: str | None = None
) -> LiveInstance:
    tags = {OWNER_TAG: CONTROLLER_ID} | ({WORKSPACE_ID_TAG: joined} if joined else {})
    return LiveInstance(
        instance_id, f"{name}.corp", "10.0.0.1", ping, _T0 - timedelta(days=age_days), tags=tags
    )


def _prunes(live: TagSyncLive) -> dict[str, str]:
    tagsync = TagSyncKind()
    desired = load(copy_example(Path(tempfile.mkdtemp()), only=("tagsync.yaml",)))
    ctx = Context(controller_id=CONTROLLER_ID, region="us-east-1", now=_T0)
    plan = tagsync.diff(desired.of_kind("TagSync"), live, ctx)
    return {op.resource: op.reason for op in plan.operations if op.action.value == "delete"}


@pytest.mark.parametrize("state", ["AVAILABLE", "STOPPED", "SUSPENDED", "TERMINATING", "ERROR"])
def test_a_workspace_in_any_state_but_terminated_keeps_its_instance(state):
    live = TagSyncLive(
        [_workspace("ws-1", "host1", state)], [_instance("mi-1", "host1", "Online", 1)]
    )
    assert _prunes(live) == {}
    gone = TagSyncLive(
        [_workspace("ws-1", "host1", "TERMINATED")],
        [_instance("mi-1", "host1", "ConnectionLost", 1)],
    )
    assert list(_prunes(gone)) == ["mi-1"]


def test_a_superseded_registration_is_deregistered_only_once_it_is_not_online():
    workspace = _workspace("ws-1", "host1")
    new = _instance("mi-new", "host1", "Online", 0, joined="ws-1")
    for ping, pruned in (("Online", False), ("ConnectionLost", True)):
        old = _instance("mi-old", "host1", ping, 9, joined="ws-1")
        prunes = _prunes(TagSyncLive([workspace], [old, new]))
        assert ("mi-old" in prunes) is pruned, (ping, prunes)
        assert "mi-new" not in prunes
    assert "WorkSpace ws-1 is AVAILABLE, served by mi-new" in prunes["mi-old"]
    assert "this registration is ConnectionLost" in prunes["mi-old"]


# -- another team's machines -----------------------------------------------------------------------


def test_another_teams_instance_at_a_workspaces_address_is_never_tagged_for_it():
    """A second team registers its own servers in SSM (its own activation, no owner tag). Private
    addresses repeat across networks: its file server FILESRV01 reports 10.0.0.1, the address
    of a WorkSpace whose agent has not registered yet. The IP fallback must not take a machine
    that reports another computer name for the WorkSpace: TagSync would write the WorkSpace's
    tags (and the join tag) onto the other team's server, and every Association targeting them
    would install there. The WorkSpace is reported as not onboarded instead."""
    tagsync = TagSyncKind()
    desired = load(copy_example(Path(tempfile.mkdtemp()), only=("tagsync.yaml",)))
    ctx = Context(controller_id=CONTROLLER_ID, region="us-east-1", now=_T0)
    server = LiveInstance(
        "mi-fileserver", "FILESRV01.other-team.corp", "10.0.0.1", "Online", _T0 - timedelta(days=90)
    )
    live = TagSyncLive([_workspace("ws-1", "WSAMZN-HOST1")], [server])
    plan = tagsync.diff(desired.of_kind("TagSync"), live, ctx)
    assert [op for op in plan.operations if op.resource == "mi-fileserver"] == []
    # Our own registration at that address (owner tag from our activation) is still matched by
    # IP when its reported name differs (a renamed machine), and so is one reporting no name.
    for ours in (
        LiveInstance(
            "mi-ours", "RENAMED.corp", "10.0.0.1", "Online", _T0, tags={OWNER_TAG: CONTROLLER_ID}
        ),
        LiveInstance("mi-ours", "", "10.0.0.1", "Online", _T0),
    ):
        plan = tagsync.diff(
            desired.of_kind("TagSync"),
            TagSyncLive([_workspace("ws-1", "WSAMZN-HOST1")], [ours]),
            ctx,
        )
        assert [op.resource for op in plan.operations if op.action.value == "update"] == ["mi-ours"]
