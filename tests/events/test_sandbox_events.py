"""The sandbox emits the events AWS would, and the deployed rules route them to the queue.

The rules are deploy/events/fleet-events.yaml, created with CloudFormation; events come from API
calls (boto3, as an admin or the controller makes them) and from the fleet simulator (agents
registering, the power switch standing for an admin's API call).
"""

from __future__ import annotations

from tests.engine.helpers import boot, make_fleet
from tests.events.stack import deploy_events, drain, kinds

API = "AWS API Call via CloudTrail"


def test_a_workspace_tag_change_arrives_as_a_tag_change_and_a_cloudtrail_record(sandbox):
    url = deploy_events(sandbox)
    [workspace] = make_fleet(sandbox, finance=1, engineering=0)
    drain(sandbox, url)
    workspaces = sandbox.client("workspaces")
    workspaces.create_tags(ResourceId=workspace, Tags=[{"Key": "CostCenter", "Value": "9999"}])
    workspaces.delete_tags(ResourceId=workspace, TagKeys=["App-Excel"])
    events = drain(sandbox, url)
    assert kinds(events) == {
        f"{API}:CreateTags": 1,
        f"{API}:DeleteTags": 1,
        "Tag Change on Resource": 2,
    }
    changes = [e for e in events if e["detail-type"] == "Tag Change on Resource"]
    first, second = sorted(changes, key=lambda e: e["detail"]["version"])
    arn = f"arn:aws:workspaces:us-east-1:123456789012:workspace/{workspace}"
    assert first["source"] == "aws.tag" and first["resources"] == [arn]
    assert first["detail"]["service"] == "workspaces"
    assert first["detail"]["resource-type"] == "workspace"
    assert first["detail"]["changed-tag-keys"] == ["CostCenter"]
    assert first["detail"]["tags"] == {
        "CostCenter": "9999",
        "LineOfBusiness": "finance",
        "App-Excel": "true",
    }
    assert (first["detail"]["version"], second["detail"]["version"]) == (1, 2)
    assert second["detail"]["changed-tag-keys"] == ["App-Excel"]
    assert "App-Excel" not in second["detail"]["tags"]
    [created] = [e for e in events if e["detail"].get("eventName") == "CreateTags"]
    assert created["source"] == "aws.workspaces" and created["region"] == "us-east-1"
    assert created["account"] == "123456789012" and created["version"] == "0"
    assert created["detail"]["eventSource"] == "workspaces.amazonaws.com"
    assert created["detail"]["requestParameters"] == {
        "resourceId": workspace,
        "tags": [{"key": "CostCenter", "value": "9999"}],
    }


def test_the_simulator_and_instance_calls_emit_registration_termination_and_tag_events(sandbox):
    url = deploy_events(sandbox)
    workspaces = make_fleet(sandbox, finance=2, engineering=0)
    events = drain(sandbox, url)
    assert kinds(events) == {f"{API}:CreateWorkspaces": 1}  # the admin API made them at once
    created = events[0]["detail"]["responseElements"]["pendingRequests"]
    assert sorted(r["workspaceId"] for r in created) == sorted(workspaces)

    # Publish an activation at the registration parameter by hand (no controller here).
    activation = sandbox.client("ssm").create_activation(IamRole="r", RegistrationLimit=5)
    sandbox.client("ssm").put_parameter(
        Name="/fleet-controller/activations/workspaces",
        Type="SecureString",
        Value=(
            f'{{"id": "{activation["ActivationId"]}", "code": "{activation["ActivationCode"]}",'
            ' "region": "us-east-1"}'
        ),
    )
    registered = [r["instanceId"] for r in boot(sandbox)["results"] if r.get("instanceId")]
    assert len(registered) == 2
    events = drain(sandbox, url)
    assert kinds(events) == {"SSM Managed Instance Registration": 2}
    assert sorted(e["resources"][0].rsplit("/", 1)[-1] for e in events) == sorted(registered)
    assert all(e["source"] == "aws.ssm" for e in events)

    ssm = sandbox.client("ssm")
    ssm.add_tags_to_resource(
        ResourceType="ManagedInstance", ResourceId=registered[0], Tags=[{"Key": "A", "Value": "1"}]
    )
    ssm.deregister_managed_instance(InstanceId=registered[1])
    sandbox.admin.post("fleet/terminate", {"workspaceIds": [workspaces[0]]})
    sandbox.admin.post("fleet/stop", {"workspaceIds": [workspaces[1]]})  # no rule asks for it
    events = drain(sandbox, url)
    assert kinds(events) == {
        f"{API}:AddTagsToResource": 1,
        "Tag Change on Resource": 1,
        f"{API}:DeregisterManagedInstance": 1,
        "SSM Managed Instance Deregistration": 1,
        f"{API}:TerminateWorkspaces": 1,
    }
    [change] = [e for e in events if e["detail-type"] == "Tag Change on Resource"]
    assert change["detail"]["resource-type"] == "managed-instance"
    assert change["detail"]["service"] == "ssm"
    assert change["resources"] == [
        f"arn:aws:ssm:us-east-1:123456789012:managed-instance/{registered[0]}"
    ]
    [terminated] = [e for e in events if e["detail"].get("eventName") == "TerminateWorkspaces"]
    assert terminated["detail"]["requestParameters"] == {
        "terminateWorkspaceRequests": [{"workspaceId": workspaces[0]}]
    }


def test_without_rules_nothing_is_delivered_and_other_regions_stay_apart(sandbox):
    url = deploy_events(sandbox, region="eu-west-1")
    [workspace] = make_fleet(sandbox, finance=1, engineering=0)  # us-east-1: no rules there
    sandbox.client("workspaces").create_tags(
        ResourceId=workspace, Tags=[{"Key": "CostCenter", "Value": "1"}]
    )
    assert drain(sandbox, url, region="eu-west-1") == []
