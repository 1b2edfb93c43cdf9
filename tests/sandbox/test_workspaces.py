"""WorkSpaces through boto3: identity (ComputerName, IpAddress), DescribeWorkspaces filters and
pages, tags one WorkSpace per call, and the state changes with their rules."""

from __future__ import annotations

import re

import botocore.exceptions
import pytest

from tests.sandbox.fleetkit import error_code, unchecked, workspaces


def _describe_all(client, **kwargs):
    return [
        w
        for p in client.get_paginator("describe_workspaces").paginate(**kwargs)
        for w in p["Workspaces"]
    ]


def test_every_workspace_has_a_computer_name_and_a_unique_address(sandbox):
    ids = workspaces(sandbox, 30)
    found = _describe_all(sandbox.client("workspaces"))
    assert sorted(w["WorkspaceId"] for w in found) == sorted(ids)
    for workspace in found:
        assert re.fullmatch(r"WSAMZN-[A-Z0-9]{8}", workspace["ComputerName"])
        assert re.fullmatch(r"10\.\d+\.\d+\.\d+", workspace["IpAddress"])
        assert workspace["State"] == "AVAILABLE"
        assert workspace["WorkspaceProperties"]["RunningMode"] == "AUTO_STOP"
        assert workspace["SubnetId"].startswith("subnet-")
    assert len({w["IpAddress"] for w in found}) == 30
    assert len({w["ComputerName"] for w in found}) == 30


def test_the_fleet_can_set_computer_names_and_properties(sandbox):
    workspaces(
        sandbox,
        2,
        computerNamePrefix="DESK-",
        runningMode="ALWAYS_ON",
        computeType="POWER",
        os="WINDOWS_11",
        userNamePrefix="alice",
    )
    found = sandbox.client("workspaces").describe_workspaces()["Workspaces"]
    assert sorted(w["ComputerName"] for w in found) == ["DESK-0001", "DESK-0002"]
    assert sorted(w["UserName"] for w in found) == ["alice0001", "alice0002"]
    assert found[0]["WorkspaceProperties"] == {
        "RunningMode": "ALWAYS_ON",
        "ComputeTypeName": "POWER",
        "OperatingSystemName": "WINDOWS_11",
    }


def test_workspaces_created_through_the_api_get_an_identity_too(sandbox):
    workspaces(sandbox, 1)
    client = sandbox.client("workspaces")
    directory_id = client.describe_workspace_directories()["Directories"][0]["DirectoryId"]
    answer = client.create_workspaces(
        Workspaces=[{"DirectoryId": directory_id, "UserName": "bob", "BundleId": "wsb-sandbox001"}]
    )
    new_id = answer["PendingRequests"][0]["WorkspaceId"]
    assert client.describe_workspaces(WorkspaceIds=[new_id])["Workspaces"] == []  # not yet listed
    sandbox.admin.advance_clock(31)
    described = client.describe_workspaces(WorkspaceIds=[new_id])["Workspaces"][0]
    assert described["ComputerName"].startswith("WSAMZN-") and described["IpAddress"]
    assert described["State"] == "PENDING"
    sandbox.admin.advance_clock(20 * 60)
    assert _state(client, new_id) == "AVAILABLE"


def test_limit_pages_are_collected_and_counted(sandbox):
    ids = workspaces(sandbox, 60)
    client = sandbox.client("workspaces")
    first = client.describe_workspaces()
    assert len(first["Workspaces"]) == 25 and first["NextToken"]
    sandbox.admin.reset_calls()
    pages = list(client.get_paginator("describe_workspaces").paginate())
    assert [len(p["Workspaces"]) for p in pages] == [25, 25, 10]
    assert sorted(w["WorkspaceId"] for p in pages for w in p["Workspaces"]) == sorted(ids)
    assert sandbox.admin.call_counts("workspaces")["DescribeWorkspaces"] == 3


@pytest.mark.parametrize("limit", [0, 26])
def test_limit_outside_1_to_25_is_a_validation_error(sandbox, limit):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        unchecked(sandbox, "workspaces").describe_workspaces(Limit=limit)
    assert error_code(raised) == "ValidationException"


def test_only_one_filter_at_a_time(sandbox):
    ids = workspaces(sandbox, 2)
    client = sandbox.client("workspaces")
    directory_id = client.describe_workspaces()["Workspaces"][0]["DirectoryId"]
    combos = [
        {"WorkspaceIds": ids[:1], "DirectoryId": directory_id},
        {"DirectoryId": directory_id, "BundleId": "wsb-sandbox001"},
        {"WorkspaceIds": ids[:1], "BundleId": "wsb-sandbox001"},
        {"UserName": "user0001"},  # UserName needs DirectoryId
    ]
    for kwargs in combos:
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            client.describe_workspaces(**kwargs)
        assert error_code(raised) == "InvalidParameterValuesException", kwargs


def test_each_filter_selects(sandbox):
    ids = workspaces(sandbox, 3)
    other = workspaces(sandbox, 1, bundleId="wsb-graphics01")
    client = sandbox.client("workspaces")
    directory_id = client.describe_workspaces()["Workspaces"][0]["DirectoryId"]

    def found(**kwargs):
        return sorted(w["WorkspaceId"] for w in client.describe_workspaces(**kwargs)["Workspaces"])

    assert found(WorkspaceIds=ids[:2]) == sorted(ids[:2])
    assert found(DirectoryId=directory_id) == sorted(ids + other)
    assert found(DirectoryId=directory_id, UserName="user0002") == [ids[1]]
    assert found(BundleId="wsb-graphics01") == other
    assert found(WorkspaceIds=["ws-000000000"]) == []


def test_tags_one_workspace_per_call(sandbox):
    ws_id = workspaces(sandbox, 1, tags={"team": "euc"})[0]
    client = sandbox.client("workspaces")
    client.create_tags(ResourceId=ws_id, Tags=[{"Key": "team", "Value": "ops"}, {"Key": "pool"}])
    tags = client.describe_tags(ResourceId=ws_id)["TagList"]
    assert sorted((t["Key"], t.get("Value")) for t in tags) == [("pool", ""), ("team", "ops")]
    client.delete_tags(ResourceId=ws_id, TagKeys=["pool"])
    assert client.describe_tags(ResourceId=ws_id)["TagList"] == [{"Key": "team", "Value": "ops"}]


def test_tag_errors(sandbox):
    ws_id = workspaces(sandbox, 1)[0]
    client = sandbox.client("workspaces")
    for call in (
        lambda: client.describe_tags(ResourceId="ws-000000000"),
        lambda: client.create_tags(ResourceId="ws-000000000", Tags=[{"Key": "a", "Value": "b"}]),
        lambda: client.delete_tags(ResourceId="ws-000000000", TagKeys=["a"]),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            call()
        assert error_code(raised) == "ResourceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.create_tags(ResourceId=ws_id, Tags=[{"Key": "aws:x", "Value": "b"}])
    assert error_code(raised) == "InvalidParameterValuesException"
    client.create_tags(ResourceId=ws_id, Tags=[{"Key": f"k{n}", "Value": "v"} for n in range(50)])
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.create_tags(ResourceId=ws_id, Tags=[{"Key": "k50", "Value": "v"}])
    assert error_code(raised) == "ResourceLimitExceededException"
    assert len(client.describe_tags(ResourceId=ws_id)["TagList"]) == 50


def _state(client, ws_id):
    return client.describe_workspaces(WorkspaceIds=[ws_id])["Workspaces"][0]["State"]


def test_stop_and_start_follow_running_mode_and_state(sandbox):
    auto = workspaces(sandbox, 1)[0]
    always = workspaces(sandbox, 1, runningMode="ALWAYS_ON")[0]
    client = sandbox.client("workspaces")
    answer = client.stop_workspaces(StopWorkspaceRequests=[{"WorkspaceId": auto}])
    assert answer["FailedRequests"] == []
    assert _state(client, auto) == "STOPPING"
    sandbox.admin.advance_clock(121)
    assert _state(client, auto) == "STOPPED"
    failed = client.stop_workspaces(StopWorkspaceRequests=[{"WorkspaceId": always}])[
        "FailedRequests"
    ]
    assert failed[0]["WorkspaceId"] == always
    assert failed[0]["ErrorCode"] == "UnsupportedWorkspaceConfigurationException"
    assert _state(client, always) == "AVAILABLE"
    failed = client.start_workspaces(StartWorkspaceRequests=[{"WorkspaceId": always}])[
        "FailedRequests"
    ]
    assert failed[0]["ErrorCode"] in (
        "InvalidResourceStateException",
        "UnsupportedWorkspaceConfigurationException",
    )
    assert (
        client.start_workspaces(StartWorkspaceRequests=[{"WorkspaceId": auto}])["FailedRequests"]
        == []
    )
    assert _state(client, auto) == "STARTING"
    sandbox.admin.advance_clock(121)
    assert _state(client, auto) == "AVAILABLE"
    failed = client.start_workspaces(StartWorkspaceRequests=[{"WorkspaceId": auto}])[
        "FailedRequests"
    ]
    assert failed[0]["ErrorCode"] == "InvalidResourceStateException"


def test_reboot_rebuild_and_unknown_workspaces(sandbox):
    ws_id = workspaces(sandbox, 1)[0]
    client = sandbox.client("workspaces")
    assert (
        client.reboot_workspaces(RebootWorkspaceRequests=[{"WorkspaceId": ws_id}])["FailedRequests"]
        == []
    )
    assert _state(client, ws_id) == "REBOOTING"
    sandbox.admin.advance_clock(181)
    assert _state(client, ws_id) == "AVAILABLE"
    client.stop_workspaces(StopWorkspaceRequests=[{"WorkspaceId": ws_id}])
    sandbox.admin.advance_clock(121)
    failed = client.reboot_workspaces(RebootWorkspaceRequests=[{"WorkspaceId": ws_id}])[
        "FailedRequests"
    ]
    assert failed[0]["ErrorCode"] == "InvalidResourceStateException"  # STOPPED cannot reboot
    assert (
        client.rebuild_workspaces(RebuildWorkspaceRequests=[{"WorkspaceId": ws_id}])[
            "FailedRequests"
        ]
        == []
    )
    assert _state(client, ws_id) == "REBUILDING"
    sandbox.admin.advance_clock(30 * 60 + 1)
    assert _state(client, ws_id) == "AVAILABLE"
    failed = client.reboot_workspaces(RebootWorkspaceRequests=[{"WorkspaceId": "ws-000000000"}])[
        "FailedRequests"
    ]
    assert failed[0]["ErrorCode"] == "ResourceNotFoundException"


def test_rebuild_takes_one_workspace_and_batches_take_25(sandbox):
    ids = workspaces(sandbox, 2)
    client = unchecked(sandbox, "workspaces")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.rebuild_workspaces(RebuildWorkspaceRequests=[{"WorkspaceId": i} for i in ids])
    assert error_code(raised) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.terminate_workspaces(
            TerminateWorkspaceRequests=[{"WorkspaceId": ids[0]} for _ in range(26)]
        )
    assert error_code(raised) == "ValidationException"


def test_terminated_is_shown_briefly_then_the_workspace_is_gone(sandbox):
    ws_id = workspaces(sandbox, 1)[0]
    client = sandbox.client("workspaces")
    assert (
        client.terminate_workspaces(TerminateWorkspaceRequests=[{"WorkspaceId": ws_id}])[
            "FailedRequests"
        ]
        == []
    )
    assert _state(client, ws_id) == "TERMINATING"
    sandbox.admin.advance_clock(5 * 60 + 1)
    assert _state(client, ws_id) == "TERMINATED"
    failed = client.start_workspaces(StartWorkspaceRequests=[{"WorkspaceId": ws_id}])[
        "FailedRequests"
    ]
    assert failed[0]["ErrorCode"] == "InvalidResourceStateException"
    sandbox.admin.advance_clock(6 * 60)
    assert client.describe_workspaces(WorkspaceIds=[ws_id])["Workspaces"] == []
    with pytest.raises(botocore.exceptions.ClientError):
        client.describe_tags(ResourceId=ws_id)
