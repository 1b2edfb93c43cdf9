"""The tagging API's GetResources: managed instances and WorkSpaces, AWS's page semantics."""

from __future__ import annotations

import botocore.exceptions
import pytest

from tests.sandbox.fleetkit import (
    activate,
    boot,
    error_code,
    publish,
    registered_fleet,
    unchecked,
    workspaces,
)

TEN_TAGS = {f"key{n}": f"value{n}" for n in range(10)}


def _pages(sandbox, **kwargs):
    tagging = sandbox.client("resourcegroupstaggingapi")
    sandbox.admin.reset_calls()
    pages = list(tagging.get_paginator("get_resources").paginate(**kwargs))
    calls = sandbox.admin.call_counts("resourcegroupstaggingapi")["GetResources"]
    return pages, calls


def test_250_instances_with_10_tags_come_in_3_pages_of_100(sandbox):
    _, instances, _ = registered_fleet(sandbox, 250, tags=TEN_TAGS)
    pages, calls = _pages(
        sandbox, ResourceTypeFilters=["ssm:managed-instance"], ResourcesPerPage=100
    )
    assert [len(p["ResourceTagMappingList"]) for p in pages] == [100, 100, 50]
    assert calls == 3
    arns = [m["ResourceARN"] for p in pages for m in p["ResourceTagMappingList"]]
    assert sorted(arns) == sorted(
        f"arn:aws:ssm:us-east-1:123456789012:managed-instance/{i}" for i in instances
    )
    first = pages[0]["ResourceTagMappingList"][0]
    assert {t["Key"]: t["Value"] for t in first["Tags"]} == TEN_TAGS
    # Without ResourcesPerPage the page size is 100 as well, and no tag budget applies.
    pages, calls = _pages(sandbox, ResourceTypeFilters=["ssm:managed-instance"])
    assert calls == 3


def test_tags_per_page_cuts_pages_only_when_given_and_never_splits_a_resource(sandbox):
    registered_fleet(sandbox, 22, tags=TEN_TAGS)
    pages, calls = _pages(sandbox, ResourceTypeFilters=["ssm:managed-instance"], TagsPerPage=100)
    # The API reference's own example: 22 resources with 10 tags each -> 10, 10, 2.
    assert [len(p["ResourceTagMappingList"]) for p in pages] == [10, 10, 2]
    assert calls == 3
    pages, calls = _pages(sandbox, ResourceTypeFilters=["ssm:managed-instance"], TagsPerPage=105)
    assert [len(p["ResourceTagMappingList"]) for p in pages] == [10, 10, 2]
    pages, calls = _pages(sandbox, ResourceTypeFilters=["ssm:managed-instance"])
    assert [len(p["ResourceTagMappingList"]) for p in pages] == [22]


def test_untagged_resources_are_omitted(sandbox):
    ssm = sandbox.client("ssm")
    _, instances, _ = registered_fleet(sandbox, 2)  # the activation has no tags
    workspaces(sandbox, 1)
    tagging = sandbox.client("resourcegroupstaggingapi")
    assert tagging.get_resources()["ResourceTagMappingList"] == []
    ssm.add_tags_to_resource(
        ResourceType="ManagedInstance", ResourceId=instances[0], Tags=[{"Key": "a", "Value": "1"}]
    )
    found = tagging.get_resources(ResourceTypeFilters=["ssm:managed-instance"])
    assert [m["ResourceARN"].rsplit("/", 1)[1] for m in found["ResourceTagMappingList"]] == [
        instances[0]
    ]
    assert not found.get("PaginationToken")


def test_workspaces_appear_with_their_resource_type_and_tag_filters_apply(sandbox):
    tagged = workspaces(sandbox, 3, tags={"team": "euc"})
    workspaces(sandbox, 2, tags={"team": "ops"})
    ids, _, _ = registered_fleet(sandbox, 1, tags={"team": "euc"})
    tagging = sandbox.client("resourcegroupstaggingapi")
    found = tagging.get_resources(
        ResourceTypeFilters=["workspaces:workspace"],
        TagFilters=[{"Key": "team", "Values": ["euc"]}],
    )["ResourceTagMappingList"]
    assert sorted(m["ResourceARN"] for m in found) == sorted(
        f"arn:aws:workspaces:us-east-1:123456789012:workspace/{i}" for i in tagged
    )
    both = tagging.get_resources(TagFilters=[{"Key": "team", "Values": ["euc"]}])
    types = sorted(m["ResourceARN"].split(":")[2] for m in both["ResourceTagMappingList"])
    assert types == ["ssm", "workspaces", "workspaces", "workspaces"]
    assert ids  # the untagged WorkSpace of registered_fleet is not among them


def test_tags_written_through_the_workspaces_api_show_up(sandbox):
    ws_id = workspaces(sandbox, 1)[0]
    sandbox.client("workspaces").create_tags(ResourceId=ws_id, Tags=[{"Key": "cost", "Value": "1"}])
    found = sandbox.client("resourcegroupstaggingapi").get_resources(
        ResourceTypeFilters=["workspaces:workspace"]
    )["ResourceTagMappingList"]
    assert found[0]["Tags"] == [{"Key": "cost", "Value": "1"}]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ResourcesPerPage": 0},
        {"ResourcesPerPage": 101},
        {"TagsPerPage": 99},
        {"TagsPerPage": 501},
        {
            "ResourceARNList": ["arn:aws:ssm:us-east-1:123456789012:managed-instance/mi-0"],
            "ResourceTypeFilters": ["ssm:managed-instance"],
        },
        {
            "ResourceARNList": ["arn:aws:ssm:us-east-1:123456789012:managed-instance/mi-0"],
            "ResourcesPerPage": 10,
        },
    ],
)
def test_out_of_range_and_conflicting_parameters_are_invalid(sandbox, kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        unchecked(sandbox, "resourcegroupstaggingapi").get_resources(**kwargs)
    assert error_code(raised) == "InvalidParameterException"


def test_an_unknown_or_expired_pagination_token_is_refused(sandbox):
    registered_fleet(sandbox, 3, tags={"a": "b"})
    tagging = unchecked(sandbox, "resourcegroupstaggingapi")
    token = tagging.get_resources(ResourcesPerPage=1)["PaginationToken"]
    assert tagging.get_resources(PaginationToken=token, ResourcesPerPage=1)[
        "ResourceTagMappingList"
    ]
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        tagging.get_resources(PaginationToken="made-up")
    assert error_code(raised) == "PaginationTokenExpiredException"
    sandbox.admin.advance_clock(16 * 60)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        tagging.get_resources(PaginationToken=token)
    assert error_code(raised) == "PaginationTokenExpiredException"


def test_resource_arn_list_returns_just_those(sandbox):
    ssm = sandbox.client("ssm")
    workspaces(sandbox, 3)
    activation_id, code = activate(ssm, limit=3, tags={"a": "b"})
    publish(sandbox, activation_id, code)
    instances = [r["instanceId"] for r in boot(sandbox)["results"]]
    arn = f"arn:aws:ssm:us-east-1:123456789012:managed-instance/{instances[1]}"
    found = sandbox.client("resourcegroupstaggingapi").get_resources(ResourceARNList=[arn])
    assert [m["ResourceARN"] for m in found["ResourceTagMappingList"]] == [arn]
