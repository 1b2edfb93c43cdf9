"""The sandbox against botocore's models, across every operation it serves itself.

Model patterns are enforced with the ``regex`` package (Java's ``\\p{L}`` classes included), the
fidelity report lists what is still unchecked, and a bad input is always an AWS-shaped 4xx.
"""

from __future__ import annotations

import botocore.exceptions
import pytest
from botocore.config import Config

from fleet_sandbox.shapes import unenforced_patterns, validate_input
from tests.sandbox._ssm_helpers import add_instance

NO_RETRY = Config(retries={"total_max_attempts": 1})


@pytest.mark.parametrize("key", ["a#b,c*", "semi;colon", "back\\slash", "tab\tkey"])
def test_a_tag_key_outside_the_unicode_pattern_is_refused(sandbox, key):
    instance = add_instance(1)
    ssm = sandbox.client("ssm", config=NO_RETRY)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.add_tags_to_resource(
            ResourceType="ManagedInstance", ResourceId=instance, Tags=[{"Key": key, "Value": "v"}]
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "regular expression pattern" in raised.value.response["Error"]["Message"]
    assert (
        ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=instance)["TagList"]
        == []
    )


def test_letters_spaces_and_digits_of_any_script_pass_the_unicode_pattern(sandbox):
    instance = add_instance(1)
    ssm = sandbox.client("ssm")
    tags = [
        {"Key": "Kostenstelle Büro", "Value": "東京 ٣ 4100"},
        {"Key": "a:b/c=d+e-f@g", "Value": ""},
    ]
    ssm.add_tags_to_resource(ResourceType="ManagedInstance", ResourceId=instance, Tags=tags)
    listed = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=instance)
    assert sorted(t["Key"] for t in listed["TagList"]) == sorted(t["Key"] for t in tags)


def test_unicode_patterns_are_checked_offline_too():
    problems = validate_input(
        "ssm",
        "CreateActivation",
        {"IamRole": "r", "DefaultInstanceName": "WSAMZN-1*", "Tags": [{"Key": "ok", "Value": "v"}]},
    )
    assert any("DefaultInstanceName" in p.lower() or "defaultInstanceName" in p for p in problems)
    assert (
        validate_input("ssm", "CreateActivation", {"IamRole": "r", "DefaultInstanceName": "Ws 1"})
        == []
    )


def test_the_fidelity_report_lists_served_operations_and_no_unenforced_pattern(sandbox):
    report = sandbox.admin.get("fidelity")
    assert "ssm:DescribeInstanceInformation" in report["operations"]
    assert report["unenforcedPatterns"] == {
        service: {} for service in ("resourcegroupstaggingapi", "ssm", "workspaces")
    }
    assert unenforced_patterns("ssm") == {}


# --- every operation added in this round answers within its output shape --------------------------

ROUND_TWO = {
    ("ssm", "PutParameter"),
    ("ssm", "GetParameter"),
    ("ssm", "GetParameters"),
    ("ssm", "GetParametersByPath"),
    ("ssm", "GetParameterHistory"),
    ("ssm", "SendCommand"),
    ("ssm", "ListCommands"),
    ("ssm", "ListCommandInvocations"),
    ("ssm", "GetCommandInvocation"),
    ("ssm", "CancelCommand"),
    ("ssm", "DescribeAssociationExecutions"),
    ("ssm", "DescribeAssociationExecutionTargets"),
    ("ssm", "GetInventory"),
    ("ssm", "ListInventoryEntries"),
    ("ssm", "GetInventorySchema"),
    ("ssm", "ListComplianceSummaries"),
    ("resourcegroupstaggingapi", "GetTagKeys"),
    ("resourcegroupstaggingapi", "GetTagValues"),
    ("workspaces", "CreateIpGroup"),
    ("workspaces", "DescribeIpGroups"),
    ("workspaces", "DeleteIpGroup"),
    ("workspaces", "CreateConnectionAlias"),
    ("workspaces", "DescribeConnectionAliases"),
    ("workspaces", "DeleteConnectionAlias"),
}
ALSO_TOURED_HERE = {
    ("ssm", "AddTagsToResource"),
    ("ssm", "RemoveTagsFromResource"),
    ("ssm", "ListTagsForResource"),
    ("ssm", "StartAssociationsOnce"),
    ("ssm", "GetServiceSetting"),
    ("ssm", "UpdateServiceSetting"),
}


def test_every_operation_added_this_round_answers_within_its_output_shape(sandbox):
    from fleet_sandbox.shapes import validate_output
    from tests.sandbox.fleetkit import registered_fleet

    _, instances, _ = registered_fleet(sandbox, 2, tags={"Team": "euc"})
    ssm = sandbox.client("ssm")
    tagging = sandbox.client("resourcegroupstaggingapi")
    answers = []

    def record(service, operation, response):
        answers.append(
            (service, operation, {k: v for k, v in response.items() if k != "ResponseMetadata"})
        )
        return response

    record(
        "ssm",
        "PutParameter",
        ssm.put_parameter(Name="/tour/secret", Value="s", Type="SecureString"),
    )
    record("ssm", "GetParameter", ssm.get_parameter(Name="/tour/secret"))
    record("ssm", "GetParameters", ssm.get_parameters(Names=["/tour/secret", "/nope"]))
    record("ssm", "GetParametersByPath", ssm.get_parameters_by_path(Path="/tour"))
    record("ssm", "GetParameterHistory", ssm.get_parameter_history(Name="/tour/secret"))
    association = ssm.create_association(
        Name="AWS-GatherSoftwareInventory", Targets=[{"Key": "tag:Team", "Values": ["euc"]}]
    )["AssociationDescription"]["AssociationId"]
    sandbox.admin.post("agent/run")
    executions = record(
        "ssm",
        "DescribeAssociationExecutions",
        ssm.describe_association_executions(AssociationId=association),
    )["AssociationExecutions"]
    record(
        "ssm",
        "DescribeAssociationExecutionTargets",
        ssm.describe_association_execution_targets(
            AssociationId=association, ExecutionId=executions[0]["ExecutionId"]
        ),
    )
    command = record(
        "ssm",
        "SendCommand",
        ssm.send_command(
            DocumentName="AWS-RunPowerShellScript",
            Parameters={"commands": ["Write-Output tour"]},
            Targets=[{"Key": "tag:Team", "Values": ["euc"]}],
            Comment="tour",
        ),
    )["Command"]["CommandId"]
    sandbox.admin.post("commands/run", {"rounds": 2})
    record("ssm", "ListCommands", ssm.list_commands())
    record(
        "ssm",
        "ListCommandInvocations",
        ssm.list_command_invocations(CommandId=command, Details=True),
    )
    record(
        "ssm",
        "GetCommandInvocation",
        ssm.get_command_invocation(CommandId=command, InstanceId=instances[0]),
    )
    pending = ssm.send_command(
        DocumentName="AWS-RunPowerShellScript",
        Parameters={"commands": ["x"]},
        InstanceIds=instances,
    )["Command"]["CommandId"]
    record("ssm", "CancelCommand", ssm.cancel_command(CommandId=pending))
    record(
        "ssm", "GetInventory", ssm.get_inventory(ResultAttributes=[{"TypeName": "AWS:Application"}])
    )
    record(
        "ssm",
        "ListInventoryEntries",
        ssm.list_inventory_entries(InstanceId=instances[0], TypeName="AWS:InstanceInformation"),
    )
    record("ssm", "GetInventorySchema", ssm.get_inventory_schema())
    record("ssm", "ListComplianceSummaries", ssm.list_compliance_summaries())
    record("resourcegroupstaggingapi", "GetTagKeys", tagging.get_tag_keys())
    record("resourcegroupstaggingapi", "GetTagValues", tagging.get_tag_values(Key="Team"))
    target = {"ResourceType": "Association", "ResourceId": association}
    record(
        "ssm",
        "AddTagsToResource",
        ssm.add_tags_to_resource(**target, Tags=[{"Key": "a", "Value": "b"}]),
    )
    record("ssm", "ListTagsForResource", ssm.list_tags_for_resource(**target))
    record("ssm", "RemoveTagsFromResource", ssm.remove_tags_from_resource(**target, TagKeys=["a"]))
    record(
        "ssm", "StartAssociationsOnce", ssm.start_associations_once(AssociationIds=[association])
    )
    ws = sandbox.client("workspaces")
    group = record("workspaces", "CreateIpGroup", ws.create_ip_group(GroupName="tour"))["GroupId"]
    record("workspaces", "DescribeIpGroups", ws.describe_ip_groups())
    record("workspaces", "DeleteIpGroup", ws.delete_ip_group(GroupId=group))
    alias = record(
        "workspaces",
        "CreateConnectionAlias",
        ws.create_connection_alias(ConnectionString="tour.example.com"),
    )["AliasId"]
    record("workspaces", "DescribeConnectionAliases", ws.describe_connection_aliases())
    record("workspaces", "DeleteConnectionAlias", ws.delete_connection_alias(AliasId=alias))
    setting = "/ssm/managed-instance/activation-tier"
    record("ssm", "GetServiceSetting", ssm.get_service_setting(SettingId=setting))
    record(
        "ssm",
        "UpdateServiceSetting",
        ssm.update_service_setting(SettingId=setting, SettingValue="advanced"),
    )

    assert sandbox.admin.get("shape-violations")["violations"] == []
    for service, operation, response in answers:
        assert validate_output(service, operation, response) == [], (service, operation)
    assert {(s, o) for s, o, _ in answers} >= ROUND_TWO | ALSO_TOURED_HERE


def test_the_fidelity_tours_cover_every_operation_the_sandbox_serves():
    """A new handler without a tour that checks its output shape fails here."""
    from fleet_sandbox import extension, server
    from tests.sandbox.test_agent import ADDED_OPERATIONS
    from tests.sandbox.test_fleet import SERVED

    server.load_extensions()
    toured = (
        SERVED
        | ROUND_TWO
        | {("ssm", name) for name in ADDED_OPERATIONS}
        | {
            ("ssm", "AddTagsToResource"),
            ("ssm", "RemoveTagsFromResource"),
            ("ssm", "ListTagsForResource"),
            ("ssm", "StartAssociationsOnce"),
            ("ssm", "GetServiceSetting"),
            ("ssm", "UpdateServiceSetting"),
        }
    )
    assert set(extension.registered_operations()) - toured == set()
