"""Registration and managed instances through boto3: DescribeInstanceInformation (filters,
limits, pages), DeregisterManagedInstance, instance tags."""

from __future__ import annotations

import re

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


def _instances(ssm, **kwargs):
    return ssm.describe_instance_information(MaxResults=50, **kwargs)["InstanceInformationList"]


def test_a_registered_workspace_is_a_managed_instance_with_its_name_and_address(sandbox):
    _, instance_ids, activation_id = registered_fleet(sandbox, 1)
    workspace = sandbox.client("workspaces").describe_workspaces()["Workspaces"][0]
    info = _instances(sandbox.client("ssm"))[0]
    assert re.fullmatch(r"mi-[0-9a-f]{17}", info["InstanceId"])
    assert info["InstanceId"] == instance_ids[0]
    assert info["ComputerName"] == f"{workspace['ComputerName']}.corp.example.com"
    assert info["IPAddress"] == workspace["IpAddress"]
    assert info["ActivationId"] == activation_id
    assert info["ResourceType"] == "ManagedInstance"
    assert info["PingStatus"] == "Online"
    assert info["IamRole"] == "SSMServiceRole"
    assert info["PlatformType"] == "Windows"
    assert "RegistrationDate" in info and "LastPingDateTime" in info and "AgentVersion" in info


def test_registration_consumes_the_activation_and_copies_its_tags(sandbox):
    ssm = sandbox.client("ssm")
    workspaces(sandbox, 2)
    activation_id, code = activate(
        ssm, limit=5, tags={"team": "euc", "env": "prod"}, DefaultInstanceName="desk"
    )
    publish(sandbox, activation_id, code)
    assert boot(sandbox)["registered"] == 2
    assert ssm.describe_activations()["ActivationList"][0]["RegistrationsCount"] == 2
    for info in _instances(ssm):
        assert info["Name"] == "desk"
        assert "Tags" not in info  # DescribeInstanceInformation never returns tags
        tags = ssm.list_tags_for_resource(
            ResourceType="ManagedInstance", ResourceId=info["InstanceId"]
        )
        assert {t["Key"]: t["Value"] for t in tags["TagList"]} == {"team": "euc", "env": "prod"}


def _failure_reasons(result):
    return [r["reason"] for r in result["results"] if r["status"] == "failed"]


def test_an_expired_activation_registers_nothing(sandbox):
    ssm = sandbox.client("ssm")
    workspaces(sandbox, 2)
    activation_id, code = activate(ssm, limit=5)
    publish(sandbox, activation_id, code)
    sandbox.admin.advance_clock(24 * 3600 + 60)
    result = boot(sandbox)
    assert result["registered"] == 0
    assert all("expired" in reason for reason in _failure_reasons(result))
    assert len(_failure_reasons(result)) == 2
    assert ssm.describe_activations()["ActivationList"][0]["RegistrationsCount"] == 0
    assert _instances(ssm) == []


def test_a_deleted_activation_registers_nothing(sandbox):
    ssm = sandbox.client("ssm")
    workspaces(sandbox, 1)
    activation_id, code = activate(ssm, limit=5)
    publish(sandbox, activation_id, code)
    ssm.delete_activation(ActivationId=activation_id)
    result = boot(sandbox)
    assert result["failed"] == 1
    assert "does not exist" in _failure_reasons(result)[0]
    assert _instances(ssm) == []


def test_an_exhausted_activation_stops_at_its_limit(sandbox):
    ssm = sandbox.client("ssm")
    workspaces(sandbox, 5)
    activation_id, code = activate(ssm, limit=3)
    publish(sandbox, activation_id, code)
    result = boot(sandbox)
    assert (result["registered"], result["failed"]) == (3, 2)
    assert all("registration limit" in reason for reason in _failure_reasons(result))
    assert ssm.describe_activations()["ActivationList"][0]["RegistrationsCount"] == 3
    # A fresh activation picks up the rest.
    activation_id, code = activate(ssm, limit=3)
    publish(sandbox, activation_id, code)
    assert boot(sandbox)["registered"] == 2
    assert len(_instances(ssm)) == 5


def test_a_wrong_code_registers_nothing_and_is_not_echoed(sandbox):
    ssm = sandbox.client("ssm")
    workspaces(sandbox, 1)
    activation_id, code = activate(ssm, limit=5)
    wrong = "X" * 20
    publish(sandbox, activation_id, wrong)
    result = boot(sandbox)
    reason = _failure_reasons(result)[0]
    assert "does not match" in reason
    assert wrong not in reason and code not in reason
    assert ssm.describe_activations()["ActivationList"][0]["RegistrationsCount"] == 0


def test_filters_by_id_activation_ping_status_type_platform_role_and_agent(sandbox):
    ssm = sandbox.client("ssm")
    _, first_batch, first_activation = registered_fleet(sandbox, 3)
    workspaces(sandbox, 2)
    second_activation, code = activate(ssm, limit=2)
    publish(sandbox, second_activation, code)
    boot(sandbox)

    def ids(**kwargs):
        return sorted(i["InstanceId"] for i in _instances(ssm, **kwargs))

    def new(key, values):
        return ids(Filters=[{"Key": key, "Values": values}])

    def legacy(key, values):
        return ids(InstanceInformationFilterList=[{"key": key, "valueSet": values}])

    assert new("InstanceIds", first_batch[:2]) == sorted(first_batch[:2])
    assert legacy("InstanceIds", first_batch[:2]) == sorted(first_batch[:2])
    assert new("ActivationIds", [first_activation]) == sorted(first_batch)
    assert legacy("ActivationIds", [second_activation]) == sorted(set(ids()) - set(first_batch))
    assert len(new("PingStatus", ["Online"])) == 5
    assert new("PingStatus", ["ConnectionLost"]) == []
    assert len(new("ResourceType", ["ManagedInstance"])) == 5
    assert new("ResourceType", ["EC2Instance"]) == []
    assert len(legacy("PlatformTypes", ["Windows"])) == 5
    assert new("PlatformTypes", ["Linux"]) == []
    assert len(new("IamRole", ["SSMServiceRole"])) == 5
    assert len(new("AgentVersion", [_instances(ssm)[0]["AgentVersion"]])) == 5
    assert new("AgentVersion", ["1.0.0.0"]) == []


def test_tag_filters_match_current_tags(sandbox):
    ssm = sandbox.client("ssm")
    _, instances, _ = registered_fleet(sandbox, 3, tags={"team": "euc"})
    ssm.add_tags_to_resource(
        ResourceType="ManagedInstance", ResourceId=instances[0], Tags=[{"Key": "app", "Value": "a"}]
    )

    def ids(filters):
        return sorted(i["InstanceId"] for i in _instances(ssm, Filters=filters))

    assert ids([{"Key": "tag:app", "Values": ["a"]}]) == [instances[0]]
    assert ids([{"Key": "tag:app", "Values": ["b"]}]) == []
    assert ids([{"Key": "tag-key", "Values": ["app"]}]) == [instances[0]]
    assert ids([{"Key": "tag:team", "Values": ["euc"]}]) == sorted(instances)
    assert ids([{"Key": "tag:team", "Values": ["euc"]}, {"Key": "tag:app", "Values": ["a"]}]) == [
        instances[0]
    ]


def test_a_tag_filter_cannot_be_combined_with_another_filter(sandbox):
    registered_fleet(sandbox, 1, tags={"team": "euc"})
    ssm = sandbox.client("ssm")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.describe_instance_information(
            Filters=[
                {"Key": "tag:team", "Values": ["euc"]},
                {"Key": "PingStatus", "Values": ["Online"]},
            ]
        )
    assert error_code(raised) == "ValidationException"
    assert "Cannot mix tag" in raised.value.response["Error"]["Message"]


def test_filter_mistakes_answer_aws_errors(sandbox):
    _, instances, _ = registered_fleet(sandbox, 1)
    ssm = sandbox.client("ssm")
    cases = [
        ({"Filters": [{"Key": "Colour", "Values": ["x"]}]}, "InvalidFilterKey"),
        (
            {"Filters": [{"Key": "ResourceType", "Values": ["ManagedInstance", "EC2Instance"]}]},
            "InvalidInstanceInformationFilterValue",
        ),
        (
            {"Filters": [{"Key": "ResourceType", "Values": ["Document"]}]},
            "InvalidInstanceInformationFilterValue",
        ),
        (
            {"Filters": [{"Key": "PingStatus", "Values": ["Sleeping"]}]},
            "InvalidInstanceInformationFilterValue",
        ),
        (
            {
                "Filters": [{"Key": "PingStatus", "Values": ["Online"]}],
                "InstanceInformationFilterList": [{"key": "PingStatus", "valueSet": ["Online"]}],
            },
            "ValidationException",
        ),
        (
            {"Filters": [{"Key": "InstanceIds", "Values": ["mi-0123456789abcdef0"]}]},
            "InvalidInstanceId",
        ),
    ]
    for kwargs, code in cases:
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            ssm.describe_instance_information(**kwargs)
        assert error_code(raised) == code, kwargs
    assert instances  # the fleet was there to be filtered


@pytest.mark.parametrize("max_results", [4, 51])
def test_max_results_outside_5_to_50_is_a_validation_error(sandbox, max_results):
    ssm = unchecked(sandbox, "ssm")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.describe_instance_information(MaxResults=max_results)
    assert error_code(raised) == "ValidationException"
    assert "maxResults" in raised.value.response["Error"]["Message"]


def test_pages_default_to_10_and_the_paginator_collects_them_all(sandbox):
    _, instances, _ = registered_fleet(sandbox, 12)
    ssm = sandbox.client("ssm")
    first = ssm.describe_instance_information()
    assert len(first["InstanceInformationList"]) == 10 and first["NextToken"]
    sandbox.admin.reset_calls()
    pages = list(
        ssm.get_paginator("describe_instance_information").paginate(
            PaginationConfig={"PageSize": 5}
        )
    )
    assert [len(p["InstanceInformationList"]) for p in pages] == [5, 5, 2]
    assert sorted(i["InstanceId"] for p in pages for i in p["InstanceInformationList"]) == sorted(
        instances
    )
    assert sandbox.admin.call_counts("ssm")["DescribeInstanceInformation"] == 3
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.describe_instance_information(NextToken="garbage")
    assert error_code(raised) == "InvalidNextToken"


def test_deregister_removes_the_instance_and_its_tags(sandbox):
    _, instances, _ = registered_fleet(sandbox, 2, tags={"team": "euc"})
    ssm = sandbox.client("ssm")
    ssm.deregister_managed_instance(InstanceId=instances[0])
    assert [i["InstanceId"] for i in _instances(ssm)] == [instances[1]]
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.deregister_managed_instance(InstanceId=instances[0])
    assert error_code(raised) == "InvalidInstanceId"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=instances[0])
    assert error_code(raised) == "InvalidResourceId"


def test_instance_tags_add_list_remove_and_the_51st_tag_is_refused(sandbox):
    _, instances, _ = registered_fleet(sandbox, 1, tags={"team": "euc"})
    ssm = sandbox.client("ssm")
    target = {"ResourceType": "ManagedInstance", "ResourceId": instances[0]}
    ssm.add_tags_to_resource(**target, Tags=[{"Key": f"k{n}", "Value": "v"} for n in range(49)])
    assert len(ssm.list_tags_for_resource(**target)["TagList"]) == 50
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.add_tags_to_resource(**target, Tags=[{"Key": "one-too-many", "Value": "v"}])
    assert error_code(raised) == "TooManyTagsError"
    ssm.add_tags_to_resource(**target, Tags=[{"Key": "team", "Value": "ops"}])  # overwrite: fine
    ssm.remove_tags_from_resource(**target, TagKeys=["k0", "team"])
    tags = {t["Key"]: t["Value"] for t in ssm.list_tags_for_resource(**target)["TagList"]}
    assert len(tags) == 48 and "team" not in tags
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.add_tags_to_resource(
            ResourceType="ManagedInstance",
            ResourceId="mi-0123456789abcdef0",
            Tags=[{"Key": "a", "Value": "b"}],
        )
    assert error_code(raised) == "InvalidResourceId"


def test_the_platform_follows_the_workspace_operating_system(sandbox):
    registered_fleet(sandbox, 1, os="WINDOWS_11")
    _, linux, _ = registered_fleet(sandbox, 1, os="AMAZON_LINUX_2")
    ssm = sandbox.client("ssm")
    names = sorted(i["PlatformName"] for i in _instances(ssm))
    assert names == ["Amazon Linux", "Microsoft Windows 11 Enterprise"]
    found = _instances(ssm, Filters=[{"Key": "PlatformTypes", "Values": ["Linux"]}])
    assert [i["InstanceId"] for i in found] == linux
