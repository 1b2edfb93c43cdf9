"""WorkSpace-to-instance matching (pure): names, IP fallback, duplicates, the join tag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.contract.ownership import OWNER_TAG, WORKSPACE_ID_TAG
from controller.kinds.matching import LiveInstance, LiveWorkspace, match_instances

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ws(workspace_id: str, name: str, ip: str) -> LiveWorkspace:
    return LiveWorkspace(workspace_id, "d-1", "wsb-1", "AVAILABLE", "user", name, ip)


def mi(
    instance_id: str, name: str, ip: str, ping: str = "Online", age: int = 0, **tags: str
) -> LiveInstance:
    return LiveInstance(
        instance_id,
        name,
        ip,
        ping,
        T0 - timedelta(days=age),
        tags={k.replace("_", "-"): v for k, v in tags.items()},
    )


def test_computer_name_host_part_matches_case_insensitively():
    matches = match_instances(
        [ws("ws-1", "WSAMZN-ABC", "10.0.0.1")],
        [mi("mi-1", "wsamzn-abc.corp.example.com", "10.9.9.9")],
    )
    assert matches.by_workspace["ws-1"].instance_id == "mi-1"
    assert matches.how["ws-1"] == "computer-name"


def test_ip_address_is_only_a_fallback():
    matches = match_instances(
        [ws("ws-1", "WSAMZN-ABC", "10.0.0.1")],
        [mi("mi-ip", "other.corp", "10.0.0.1"), mi("mi-name", "WSAMZN-ABC.corp", "10.0.0.2")],
    )
    assert matches.by_workspace["ws-1"].instance_id == "mi-name"
    fallback = match_instances(
        [ws("ws-1", "WSAMZN-ABC", "10.0.0.1")], [mi("mi-ip", "", "10.0.0.1")]
    )
    assert fallback.by_workspace["ws-1"].instance_id == "mi-ip" and fallback.how["ws-1"] == "ip"


def test_an_address_alone_never_takes_a_machine_reporting_another_name_unless_it_is_ours():
    """Private addresses repeat across networks: another team's server at the WorkSpace's address
    is not the WorkSpace. One this controller registered (owner tag) may have been renamed."""
    workspace = ws("ws-1", "WSAMZN-ABC", "10.0.0.1")
    foreign = mi("mi-other-team", "FILESRV01.other.corp", "10.0.0.1")
    assert match_instances([workspace], [foreign], controller_id="me").by_workspace == {}
    ours = LiveInstance("mi-ours", "other.corp", "10.0.0.1", "Online", T0, tags={OWNER_TAG: "me"})
    matched = match_instances([workspace], [ours], controller_id="me")
    assert matched.by_workspace["ws-1"].instance_id == "mi-ours" and matched.how["ws-1"] == "ip"
    someone_elses = LiveInstance(
        "mi-theirs", "other.corp", "10.0.0.1", "Online", T0, tags={OWNER_TAG: "other-controller"}
    )
    assert match_instances([workspace], [someone_elses], controller_id="me").by_workspace == {}


def test_among_duplicates_the_online_most_recent_wins():
    matches = match_instances(
        [ws("ws-1", "WSAMZN-ABC", "10.0.0.1")],
        [
            mi("mi-old-online", "WSAMZN-ABC.corp", "", age=10),
            mi("mi-new-lost", "WSAMZN-ABC.corp", "", ping="ConnectionLost", age=0),
            mi("mi-new-online", "WSAMZN-ABC.corp", "", age=1),
        ],
    )
    assert matches.by_workspace["ws-1"].instance_id == "mi-new-online"
    assert [i.instance_id for i in matches.unmatched_instances] == ["mi-new-lost", "mi-old-online"]


def test_join_tag_wins_over_a_name_match():
    tags = {WORKSPACE_ID_TAG: "ws-1"}
    joined = LiveInstance("mi-joined", "RENAMED.corp", "10.0.0.7", "Online", T0, tags=tags)
    matches = match_instances(
        [ws("ws-1", "WSAMZN-ABC", "10.0.0.1")], [joined, mi("mi-name", "WSAMZN-ABC.corp", "")]
    )
    assert matches.by_workspace["ws-1"].instance_id == "mi-joined"
    assert matches.how["ws-1"] == "join-tag"


def test_a_rebuilt_workspace_moves_to_its_new_online_registration():
    old = LiveInstance(
        "mi-old",
        "WSAMZN-ABC.corp",
        "10.0.0.1",
        "ConnectionLost",
        T0 - timedelta(days=3),
        tags={WORKSPACE_ID_TAG: "ws-1"},
    )
    matches = match_instances(
        [ws("ws-1", "WSAMZN-ABC", "10.0.0.1")], [old, mi("mi-new", "WSAMZN-ABC.corp", "10.0.0.1")]
    )
    assert matches.by_workspace["ws-1"].instance_id == "mi-new"
    assert [i.instance_id for i in matches.unmatched_instances] == ["mi-old"]


def test_an_instance_joined_elsewhere_is_never_taken_by_name():
    elsewhere = LiveInstance(
        "mi-2", "WSAMZN-ABC.corp", "", "Online", T0, tags={WORKSPACE_ID_TAG: "ws-2"}
    )
    matches = match_instances([ws("ws-1", "WSAMZN-ABC", "10.0.0.1")], [elsewhere])
    assert "ws-1" not in matches.by_workspace


def test_one_instance_serves_one_workspace():
    matches = match_instances(
        [ws("ws-1", "", "10.0.0.1"), ws("ws-2", "", "10.0.0.1")], [mi("mi-1", "", "10.0.0.1")]
    )
    assert len(matches.by_workspace) == 1
