"""TagSync's diff, called with hand-built WorkSpaces and instances (controller/kinds/tagsync.py).

The cases of its docstring and the README: a key is written only when its value differs, an owned
key no longer desired is removed, other keys are never touched, TagSyncs that disagree leave the
key alone, values SSM refuses are skipped, the 50-tag limit is respected; matching by computer
name (host part, any case) then IP address; an instance is stale only when no WorkSpace of any
directory in any state but TERMINATED matches it, and deregistered (under the prune guard) only
when it carries this controller's owner tag.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controller.contract import OWNER_TAG, WORKSPACE_ID_TAG, Action, Severity
from controller.kinds.matching import LiveInstance, LiveWorkspace
from controller.kinds.tagsync import ChangeTags, Deregister, TagSyncKind, TagSyncLive
from tests.kinds.builders import CONTROLLER_ID, NOW, SOMEONE_ELSE, context, manifest

FINANCE = "d-9067a1b2c3"
ELSEWHERE = "d-90670a0b0c"  # a directory no TagSync names
FINANCE_SPEC: dict[str, Any] = {
    "workspaces": {"directoryIds": [FINANCE]},
    "copyTags": {"include": ["CostCenter", "App-*", "Dept"], "rename": {"Dept": "Department"}},
    "attributes": {"userName": "workspace:user"},
    "staticTags": {"Compliance": "sox"},
}


def tagsync(name: str = "finance", **changes: Any):
    return manifest("TagSync", name, {**FINANCE_SPEC, **changes})


def workspace(
    workspace_id: str = "ws-0001",
    *,
    directory: str = FINANCE,
    state: str = "AVAILABLE",
    name: str = "WSAMZN-0001",
    address: str = "10.0.0.1",
    user: str = "alice",
    tags: dict[str, str] | None = None,
) -> LiveWorkspace:
    return LiveWorkspace(
        workspace_id,
        directory,
        "wsb-1",
        state,
        user,
        name,
        address,
        tags={"CostCenter": "4100"} if tags is None else tags,
    )


def instance(
    instance_id: str = "mi-0001",
    *,
    name: str = "wsamzn-0001.corp.example.com",
    address: str = "10.0.0.1",
    ping: str = "Online",
    age: timedelta = timedelta(days=1),
    tags: dict[str, str] | None = None,
) -> LiveInstance:
    return LiveInstance(
        instance_id,
        name,
        address,
        ping,
        NOW - age,
        tags={OWNER_TAG: CONTROLLER_ID} if tags is None else tags,
    )


def in_sync(workspace_id: str = "ws-0001", **extra: str) -> dict[str, str]:
    """The tags an instance of ``workspace()`` carries once the finance TagSync is applied."""
    return {
        OWNER_TAG: CONTROLLER_ID,
        WORKSPACE_ID_TAG: workspace_id,
        "CostCenter": "4100",
        "workspace:user": "alice",
        "Compliance": "sox",
        **extra,
    }


def diff(workspaces, instances, *manifests, controller_id: str = CONTROLLER_ID):
    manifests = manifests or (tagsync(),)
    live = TagSyncLive(list(workspaces), list(instances))
    ctx = context(*manifests, controller_id=controller_id)
    return TagSyncKind().diff(list(manifests), live, ctx)


def tag_change(plan) -> ChangeTags:
    [operation] = plan.operations
    assert operation.action is Action.UPDATE and isinstance(operation.payload, ChangeTags)
    return operation.payload


# -- tags: write only what differs, own exactly the spec's keys -------------------------------------


def test_an_instance_already_in_sync_gets_no_write():
    plan = diff([workspace()], [instance(tags=in_sync())])
    assert plan.operations == [] and plan.findings == []


def test_a_new_instance_gets_every_tag_its_workspace_implies_in_one_write():
    change = tag_change(diff([workspace()], [instance()]))
    assert change.instance_id == "mi-0001" and change.remove == ()
    assert change.add == {
        WORKSPACE_ID_TAG: "ws-0001",
        "CostCenter": "4100",
        "workspace:user": "alice",
        "Compliance": "sox",
    }


def test_only_the_keys_whose_value_differs_are_written():
    live = in_sync(CostCenter="9999")
    change = tag_change(diff([workspace()], [instance(tags=live)]))
    assert change.add == {"CostCenter": "4100"} and change.remove == ()


def test_a_renamed_key_is_written_under_its_new_name():
    ws = workspace(tags={"CostCenter": "4100", "Dept": "tax"})
    change = tag_change(diff([ws], [instance(tags=in_sync())]))
    assert change.add == {"Department": "tax"}


def test_an_owned_key_no_longer_desired_is_removed_and_other_keys_are_never_touched():
    live = in_sync(**{"App-Excel": "true", "Owner": "someone", "Backup": "daily"})
    change = tag_change(diff([workspace()], [instance(tags=live)]))
    # App-* is this TagSync's (an include): the WorkSpace lost it, so the instance loses it.
    # Owner and Backup match no include: somebody else's keys.
    assert change.add == {} and change.remove == ("App-Excel",)


def test_a_key_the_spec_no_longer_produces_is_no_longer_its_own_and_stays():
    """Removing a static tag from the spec stops managing the key; it does not delete it."""
    plan = diff([workspace()], [instance(tags=in_sync())], tagsync(staticTags={}))
    assert plan.operations == []


def test_keys_of_a_workspace_no_tagsync_selects_are_left_alone():
    ws = workspace(directory=ELSEWHERE)
    plan = diff([ws], [instance(tags=in_sync(**{"App-Excel": "true"}))])
    assert plan.operations == []


def test_two_tagsyncs_that_disagree_on_a_key_leave_it_and_say_so():
    other = tagsync("audit", staticTags={"Compliance": "pci"})
    plan = diff([workspace()], [instance(tags=in_sync())], tagsync(), other)
    assert plan.operations == []
    [conflict] = plan.findings
    assert conflict.severity is Severity.ERROR and conflict.name == "audit, finance"
    assert "disagree on Compliance; left unchanged" in conflict.message


def test_a_disputed_key_is_left_as_it_is_while_the_rest_is_written():
    """ "Left unchanged" means the live value stays: it is neither rewritten nor removed."""
    other = tagsync("audit", staticTags={"Compliance": "pci"})
    live = in_sync(CostCenter="9999")
    change = tag_change(diff([workspace()], [instance(tags=live)], tagsync(), other))
    assert change.add == {"CostCenter": "4100"} and change.remove == ()


def test_two_tagsyncs_that_agree_write_once():
    other = tagsync("audit", copyTags={"include": ["CostCenter"]}, attributes={}, staticTags={})
    change = tag_change(diff([workspace()], [instance()], tagsync(), other))
    assert change.add["CostCenter"] == "4100"


def test_a_value_ssm_would_refuse_is_skipped_with_a_warning():
    ws = workspace(user="CORP\\alice")  # a backslash: fine on WorkSpaces, refused by SSM
    plan = diff([ws], [instance(tags=in_sync())])
    change = tag_change(plan)
    assert "workspace:user" not in change.add
    [warning] = plan.findings
    assert warning.severity is Severity.WARNING and "workspace:user" in warning.message


def test_more_than_fifty_tags_is_refused_and_nothing_is_written():
    crowded = in_sync(**{f"Other{index}": "x" for index in range(45)})  # 50 with in_sync's 5
    ws = workspace(tags={"CostCenter": "4100", "App-New": "1"})
    plan = diff([ws], [instance(tags=crowded)])
    assert plan.operations == []
    [refusal] = plan.findings
    assert refusal.severity is Severity.ERROR and "would carry 51 tags" in refusal.message


def test_exactly_fifty_tags_are_allowed():
    tags = in_sync(**{f"Other{index}": "x" for index in range(44)})  # 49
    ws = workspace(tags={"CostCenter": "4100", "App-New": "1"})
    change = tag_change(diff([ws], [instance(tags=tags)]))
    assert change.add == {"App-New": "1"}


# -- matching ------------------------------------------------------------------------------------


def test_the_computer_names_host_part_matches_in_any_case():
    plan = diff([workspace(name="WSAMZN-0001")], [instance(name="wsamzn-0001.CORP.example")])
    assert tag_change(plan).instance_id == "mi-0001"


def test_the_ip_address_is_the_fallback_when_no_name_matches():
    plan = diff(
        [workspace(name="WSAMZN-0001")], [instance(name="renamed.corp", address="10.0.0.1")]
    )
    assert tag_change(plan).instance_id == "mi-0001"


def test_the_join_tag_decides_once_it_is_there():
    joined = instance(name="other-name.corp", address="10.9.9.9", tags=in_sync())
    plan = diff([workspace()], [joined])
    assert plan.operations == []


# -- stale instances and the prune rule ---------------------------------------------------------


def deregistrations(plan) -> dict[str, bool]:
    return {
        op.resource: op.prune
        for op in plan.operations
        if op.action is Action.DELETE and isinstance(op.payload, Deregister)
    }


def test_an_owned_instance_no_workspace_matches_is_deregistered_under_the_prune_guard():
    lonely = instance("mi-lost", name="gone.corp", address="10.9.9.9")
    plan = diff([workspace()], [instance(tags=in_sync()), lonely])
    assert deregistrations(plan) == {"mi-lost": True}
    [warning] = plan.findings
    assert "1 managed instance(s) match no WorkSpace" in warning.message
    assert warning.examples == ("mi-lost",)


def test_an_instance_without_the_owner_tag_is_reported_never_deregistered():
    theirs = instance(
        "mi-theirs",
        name="gone.corp",
        address="10.9.9.9",
        tags={OWNER_TAG: SOMEONE_ELSE, WORKSPACE_ID_TAG: "ws-gone"},
    )
    plan = diff([workspace()], [instance(tags=in_sync()), theirs])
    assert deregistrations(plan) == {}
    [warning] = plan.findings
    assert warning.examples == ("mi-theirs",)


def test_an_instance_neither_owned_nor_joined_is_not_this_fleets_and_not_even_reported():
    stranger = instance("mi-stranger", name="build-server", address="10.8.8.8", tags={})
    plan = diff([workspace()], [instance(tags=in_sync()), stranger])
    assert plan.operations == [] and plan.findings == []


@pytest.mark.parametrize(
    "state", ["AVAILABLE", "STOPPED", "SUSPENDED", "PENDING", "REBOOTING", "ERROR", "TERMINATING"]
)
def test_a_workspace_in_any_state_but_terminated_vouches_for_its_instance(state):
    # in a directory no TagSync selects, matched by name only: still not stale
    ws = workspace("ws-9", directory=ELSEWHERE, state=state, name="WSAMZN-9", address="10.0.0.9")
    other = instance("mi-9", name="wsamzn-9.corp", address="10.0.0.9", ping="ConnectionLost")
    plan = diff([workspace(), ws], [instance(tags=in_sync()), other])
    assert deregistrations(plan) == {}


def test_a_terminated_workspaces_instance_is_stale():
    ws = workspace("ws-9", state="TERMINATED", name="WSAMZN-9", address="10.0.0.9")
    other = instance("mi-9", name="wsamzn-9.corp", address="10.0.0.9", ping="ConnectionLost")
    plan = diff([workspace(), ws], [instance(tags=in_sync()), other])
    assert deregistrations(plan) == {"mi-9": True}


@pytest.mark.parametrize("how", ["join-tag", "name", "address"])
def test_each_way_of_matching_makes_a_workspace_vouch(how):
    """An unmatched instance is claimed by a live WorkSpace by its join tag, its name or its
    address: any one of them keeps it from being called stale."""
    ws = workspace("ws-9", directory=ELSEWHERE, name="WSAMZN-9", address="10.0.0.9")
    other = {
        "join-tag": instance("mi-9", name="x.corp", address="10.7.7.7", ping="ConnectionLost",
                             tags={OWNER_TAG: CONTROLLER_ID, WORKSPACE_ID_TAG: "ws-9"}),
        "name": instance("mi-9", name="WSAMZN-9.corp", address="10.7.7.7", ping="ConnectionLost"),
        "address": instance("mi-9", name="x.corp", address="10.0.0.9", ping="ConnectionLost"),
    }[how]  # fmt: skip
    newer = instance("mi-new", name="wsamzn-9.corp", address="10.0.0.9", age=timedelta(0),
                     tags={OWNER_TAG: CONTROLLER_ID, WORKSPACE_ID_TAG: "ws-9"})  # fmt: skip
    plan = diff([workspace(), ws], [instance(tags=in_sync()), other, newer])
    # superseded (a newer registration serves ws-9) and not Online: removable, but as superseded
    prunes = {op.resource: op.reason for op in plan.operations if op.action is Action.DELETE}
    assert list(prunes) == ["mi-9"] and prunes["mi-9"].startswith("superseded")


def test_a_superseded_registration_that_is_still_online_is_kept():
    ws = workspace()
    old = instance("mi-old", age=timedelta(days=9), tags=in_sync())
    new = instance("mi-new", age=timedelta(0), ping="Online", tags=in_sync())
    plan = diff([ws], [old, new])
    assert deregistrations(plan) == {}
    assert any("superseded" in f.message for f in plan.findings)


def test_registrations_under_way_bring_the_next_pass_sooner():
    registering = instance("mi-new", name="x", address="10.5.5.5", age=timedelta(minutes=2))
    waiting = workspace("ws-2", name="WSAMZN-2", address="10.0.0.2")
    plan = diff([workspace(), waiting], [instance(tags=in_sync()), registering])
    assert plan.requeue is not None and plan.requeue.after == timedelta(minutes=1)
    settled = instance("mi-new", name="x", address="10.5.5.5", age=timedelta(minutes=11))
    assert diff([workspace(), waiting], [instance(tags=in_sync()), settled]).requeue is None


def test_a_renamed_keys_source_name_on_the_instance_is_not_this_tagsyncs():
    """Dept is copied as Department: a Dept key on the instance is somebody else's."""
    live = in_sync(Dept="legal")
    assert diff([workspace()], [instance(tags=live)]).operations == []


def test_a_catch_all_include_never_owns_the_controllers_or_aws_keys():
    everything = tagsync(copyTags={"include": ["*"]})
    live = in_sync(**{"aws:cloudformation:stack-name": "base"})
    assert diff([workspace()], [instance(tags=live)], everything).operations == []


def test_a_superseded_registration_without_our_owner_tag_is_never_deregistered():
    """Joined to a live WorkSpace, offline, superseded: removable only when it is ours."""
    ws = workspace()
    theirs = {OWNER_TAG: SOMEONE_ELSE, WORKSPACE_ID_TAG: "ws-0001"}
    old = instance("mi-old", age=timedelta(days=9), ping="ConnectionLost", tags=theirs)
    new = instance("mi-new", age=timedelta(0), tags=in_sync())
    plan = diff([ws], [old, new])
    assert deregistrations(plan) == {}
    assert any("superseded" in f.message and f.examples == ("mi-old",) for f in plan.findings)
    ours = instance("mi-old", age=timedelta(days=9), ping="ConnectionLost", tags=in_sync())
    assert deregistrations(diff([ws], [ours, new])) == {"mi-old": True}
