"""WorkSpaces tags on directories, bundles, IP groups and connection aliases, and those resources."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.sandbox.fleetkit import workspaces


def _tags(client, resource_id):
    return {
        t["Key"]: t.get("Value", "")
        for t in client.describe_tags(ResourceId=resource_id)["TagList"]
    }


def test_every_taggable_workspaces_resource_takes_tags(sandbox):
    ws_id = workspaces(sandbox, 1, bundleId="wsb-finance01")[0]
    client = sandbox.client("workspaces")
    directory = client.describe_workspaces(WorkspaceIds=[ws_id])["Workspaces"][0]["DirectoryId"]
    group = client.create_ip_group(GroupName="office", UserRules=[{"ipRule": "10.0.0.0/8"}])[
        "GroupId"
    ]
    alias = client.create_connection_alias(ConnectionString="desktop.example.com")["AliasId"]
    for resource_id in (directory, "wsb-finance01", group, alias):
        client.create_tags(ResourceId=resource_id, Tags=[{"Key": "Owner", "Value": "euc"}])
        assert _tags(client, resource_id) == {"Owner": "euc"}
    found = {
        m["ResourceARN"].split(":", 5)[5]
        for page in sandbox.client("resourcegroupstaggingapi")
        .get_paginator("get_resources")
        .paginate(TagFilters=[{"Key": "Owner", "Values": ["euc"]}])
        for m in page["ResourceTagMappingList"]
    }
    assert found == {
        f"directory/{directory}",
        "workspacebundle/wsb-finance01",
        f"workspaceipgroup/{group}",
        f"connectionalias/{alias}",
    }
    client.delete_tags(ResourceId=group, TagKeys=["Owner"])
    assert _tags(client, group) == {}
    with pytest.raises(ClientError) as raised:
        client.describe_tags(ResourceId="wsb-unusedbundle")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_ip_groups_and_connection_aliases_live_and_die(sandbox):
    client = sandbox.client("workspaces")
    group = client.create_ip_group(
        GroupName="office", GroupDesc="HQ", Tags=[{"Key": "Site", "Value": "hq"}]
    )["GroupId"]
    assert group.startswith("wsipg-")
    described = client.describe_ip_groups(GroupIds=[group])["Result"]
    assert described == [
        {"groupId": group, "groupName": "office", "groupDesc": "HQ", "userRules": []}
    ]
    assert _tags(client, group) == {"Site": "hq"}
    with pytest.raises(ClientError) as raised:
        client.create_ip_group(GroupName="office")
    assert raised.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    alias = client.create_connection_alias(ConnectionString="desktop.example.com")["AliasId"]
    [listed] = client.describe_connection_aliases(AliasIds=[alias])["ConnectionAliases"]
    assert (listed["ConnectionString"], listed["State"]) == ("desktop.example.com", "CREATED")
    client.delete_ip_group(GroupId=group)
    client.delete_connection_alias(AliasId=alias)
    assert client.describe_ip_groups()["Result"] == []
    assert client.describe_connection_aliases()["ConnectionAliases"] == []
    with pytest.raises(ClientError) as raised:
        client.delete_ip_group(GroupId=group)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
