"""The tagging API beyond paging: distinct keys and values, every SSM resource type the sandbox
holds, previously tagged resources, and the opt-in eventual consistency (lag, ghosts, short pages).
"""

from __future__ import annotations

import pytest

from fleet_sandbox.client import AdminApiError
from tests.sandbox._ssm_helpers import add_instance
from tests.sandbox.fleetkit import registered_fleet, workspaces

ACCOUNT_REGION = "us-east-1:123456789012"


def _resources(sandbox, **kwargs):
    tagging = sandbox.client("resourcegroupstaggingapi")
    pages = list(tagging.get_paginator("get_resources").paginate(**kwargs))
    return {m["ResourceARN"]: m["Tags"] for p in pages for m in p["ResourceTagMappingList"]}


def _tagged(ssm, instance, **tags):
    ssm.add_tags_to_resource(
        ResourceType="ManagedInstance",
        ResourceId=instance,
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )


def test_tag_keys_and_values_are_listed_once_each(sandbox):
    ssm = sandbox.client("ssm")
    for number in range(5):
        _tagged(ssm, add_instance(number), Team="euc", CostCenter=str(4100 + number % 2))
    workspaces(sandbox, 3, tags={"Team": "euc"})
    tagging = sandbox.client("resourcegroupstaggingapi")
    keys = [k for p in tagging.get_paginator("get_tag_keys").paginate() for k in p["TagKeys"]]
    assert sorted(keys) == ["CostCenter", "Team"]
    values = [
        v
        for p in tagging.get_paginator("get_tag_values").paginate(Key="CostCenter")
        for v in p["TagValues"]
    ]
    assert sorted(values) == ["4100", "4101"]
    assert tagging.get_tag_values(Key="Team")["TagValues"] == ["euc"]
    assert tagging.get_tag_values(Key="Nobody")["TagValues"] == []


def test_every_ssm_resource_type_the_sandbox_holds_is_listed(sandbox):
    ssm = sandbox.client("ssm")
    owner = [{"Key": "owner", "Value": "fleet"}]
    instance = add_instance(1)
    _tagged(ssm, instance, owner="fleet")
    ssm.create_document(
        Name="Fleet-Doc",
        DocumentType="Command",
        Content='{"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runPowerShellScript", '
        '"name": "s", "inputs": {"runCommand": ["echo"]}}]}',
        Tags=owner,
    )
    association = ssm.create_association(
        Name="AWS-ConfigureAWSPackage",
        Parameters={"action": ["Install"], "name": ["Acme"]},
        Targets=[{"Key": "tag:App", "Values": ["Acme"]}],
        Tags=owner,
    )["AssociationDescription"]["AssociationId"]
    ssm.put_parameter(Name="/fleet/p", Value="v", Type="String", Tags=owner)
    window = ssm.create_maintenance_window(
        Name="patch-window",
        Schedule="cron(0 2 ? * SUN *)",
        Duration=2,
        Cutoff=1,
        AllowUnassociatedTargets=True,
        Tags=owner,
    )["WindowId"]
    baseline = ssm.create_patch_baseline(Name="baseline")["BaselineId"]
    ssm.add_tags_to_resource(ResourceType="PatchBaseline", ResourceId=baseline, Tags=owner)
    found = _resources(sandbox, TagFilters=[{"Key": "owner", "Values": ["fleet"]}])
    prefix = "arn:aws:ssm:us-east-1:123456789012:"
    assert set(found) == {
        f"{prefix}managed-instance/{instance}",
        f"{prefix}document/Fleet-Doc",
        f"{prefix}association/{association}",
        f"{prefix}parameter/fleet/p",
        f"{prefix}maintenancewindow/{window}",
        f"{prefix}patchbaseline/{baseline}",
    }
    by_type = _resources(sandbox, ResourceTypeFilters=["ssm:association"])
    assert list(by_type) == [f"{prefix}association/{association}"]
    assert set(_resources(sandbox, ResourceTypeFilters=["ssm"])) == set(found)


def test_workspaces_resource_types_are_aws_names(sandbox):
    ids = workspaces(sandbox, 1, tags={"Team": "euc"})
    ws = sandbox.client("workspaces")
    directory = ws.describe_workspaces(WorkspaceIds=ids)["Workspaces"][0]["DirectoryId"]
    ws.create_tags(ResourceId=directory, Tags=[{"Key": "Team", "Value": "euc"}])
    found = _resources(sandbox, ResourceTypeFilters=["workspaces:directory"])
    assert list(found) == [f"arn:aws:workspaces:us-east-1:123456789012:directory/{directory}"]
    assert len(_resources(sandbox, ResourceTypeFilters=["workspaces:workspace"])) == 1


def test_a_resource_whose_tags_were_all_removed_comes_back_with_no_tags(sandbox):
    ssm = sandbox.client("ssm")
    tagged, never = add_instance(1), add_instance(2)
    _tagged(ssm, tagged, Team="euc")
    ssm.remove_tags_from_resource(
        ResourceType="ManagedInstance", ResourceId=tagged, TagKeys=["Team"]
    )
    found = _resources(sandbox, ResourceTypeFilters=["ssm:managed-instance"])
    assert found == {f"arn:aws:ssm:us-east-1:123456789012:managed-instance/{tagged}": []}
    assert never not in "".join(found)
    # A tag filter never matches a resource without tags.
    assert _resources(sandbox, TagFilters=[{"Key": "Team"}]) == {}
    ids = workspaces(sandbox, 1, tags={"Team": "euc"})
    sandbox.client("workspaces").delete_tags(ResourceId=ids[0], TagKeys=["Team"])
    assert list(_resources(sandbox, ResourceTypeFilters=["workspaces:workspace"]).values()) == [[]]


# --- consistency ---------------------------------------------------------------------------------


def test_consistency_settings_are_checked(sandbox):
    for bad in (
        {"lagSeconds": {"ec2": 5}},
        {"lagSeconds": {"ssm": -1}},
        {"ghostSeconds": "long"},
        {"shortPages": "yes"},
        {"colour": "blue"},
    ):
        with pytest.raises(AdminApiError) as raised:
            sandbox.admin.put("consistency", bad)
        assert raised.value.status == 400
    assert sandbox.admin.get("consistency") == {
        "lagSeconds": {},
        "ghostSeconds": 0.0,
        "shortPages": False,
    }


def test_the_tagging_api_lags_behind_tag_writes(sandbox):
    ssm = sandbox.client("ssm")
    instance = add_instance(1)
    _tagged(ssm, instance, Team="euc")
    sandbox.admin.put("consistency", {"lagSeconds": {"resourcegroupstaggingapi": 120}})
    arn = f"arn:aws:ssm:us-east-1:123456789012:managed-instance/{instance}"
    assert _resources(sandbox) == {arn: [{"Key": "Team", "Value": "euc"}]}  # there before
    _tagged(ssm, instance, Team="vdi", Owner="ops")
    assert _resources(sandbox) == {arn: [{"Key": "Team", "Value": "euc"}]}  # not yet
    assert sandbox.client("resourcegroupstaggingapi").get_tag_keys()["TagKeys"] == ["Team"]
    # ListTagsForResource is the service's own, consistent read.
    listed = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=instance)
    assert len(listed["TagList"]) == 2
    sandbox.admin.advance_clock(119)
    assert _resources(sandbox)[arn] == [{"Key": "Team", "Value": "euc"}]
    sandbox.admin.advance_clock(2)
    assert sorted(t["Key"] for t in _resources(sandbox)[arn]) == ["Owner", "Team"]


def test_a_new_resource_appears_only_after_the_lag(sandbox):
    sandbox.admin.put("consistency", {"lagSeconds": {"resourcegroupstaggingapi": 60}})
    ssm = sandbox.client("ssm")
    instance = add_instance(1)
    _tagged(ssm, instance, Team="euc")
    assert _resources(sandbox) == {}
    sandbox.admin.advance_clock(61)
    assert len(_resources(sandbox)) == 1


def test_a_deleted_instance_lingers_as_a_ghost(sandbox):
    _, instances, _ = registered_fleet(sandbox, 2, tags={"Team": "euc"})
    sandbox.admin.put(
        "consistency", {"lagSeconds": {"resourcegroupstaggingapi": 30}, "ghostSeconds": 600}
    )
    ssm = sandbox.client("ssm")
    ssm.deregister_managed_instance(InstanceId=instances[0])
    gone = f"arn:aws:ssm:us-east-1:123456789012:managed-instance/{instances[0]}"
    # Within the lag it is shown as it was, tags and all.
    assert _resources(sandbox)[gone] == [{"Key": "Team", "Value": "euc"}]
    sandbox.admin.advance_clock(31)
    assert _resources(sandbox)[gone] == []  # previously tagged, no longer there
    assert _resources(sandbox, TagFilters=[{"Key": "Team"}]).keys() == {
        f"arn:aws:ssm:us-east-1:123456789012:managed-instance/{instances[1]}"
    }
    sandbox.admin.advance_clock(600)
    assert gone not in _resources(sandbox)
    # DescribeInstanceInformation never showed it after the deregistration.
    listed = ssm.describe_instance_information()["InstanceInformationList"]
    assert [i["InstanceId"] for i in listed] == [instances[1]]


def test_a_just_registered_instance_takes_a_while_to_appear(sandbox):
    sandbox.admin.put("consistency", {"lagSeconds": {"ssm": 45}})
    _, instances, _ = registered_fleet(sandbox, 2)
    ssm = sandbox.client("ssm")
    assert ssm.describe_instance_information()["InstanceInformationList"] == []
    sandbox.admin.advance_clock(46)
    listed = ssm.describe_instance_information()["InstanceInformationList"]
    assert sorted(i["InstanceId"] for i in listed) == sorted(instances)


def test_short_and_empty_pages_still_carry_a_token(sandbox):
    ssm = sandbox.client("ssm")
    for number in range(25):
        _tagged(ssm, add_instance(number), Team="euc")
    sandbox.admin.put("consistency", {"shortPages": True})
    tagging = sandbox.client("resourcegroupstaggingapi")
    pages = list(tagging.get_paginator("get_resources").paginate(ResourcesPerPage=10))
    sizes = [len(p["ResourceTagMappingList"]) for p in pages]
    assert sizes[:3] == [10, 5, 0]
    assert all("PaginationToken" in p and p["PaginationToken"] for p in pages[:-1])
    assert sum(sizes) == 25


def test_a_scenario_turns_consistency_on(sandbox):
    sandbox.admin.post("scenario", {"consistency": {"lagSeconds": {"ssm": 10}, "shortPages": True}})
    assert sandbox.admin.get("consistency")["lagSeconds"] == {"ssm": 10.0}
    with pytest.raises(AdminApiError):
        sandbox.admin.post("scenario", {"consistency": {"lagSeconds": {"ssm": "soon"}}})
