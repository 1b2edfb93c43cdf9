"""Inventory, association executions and compliance summaries, driven by the simulated agents."""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.sandbox._ssm_helpers import run_agents
from tests.sandbox.fleetkit import registered_fleet

NO_RETRY = Config(retries={"total_max_attempts": 1})
UNINSTALL = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
VIEWER_CODE = "{6F0D6C54-3C3A-4B5E-9C44-2A8E1B7D5A10}"


def _install_apps(sandbox, instance):
    sandbox.admin.post(
        "agent/state",
        {
            "instanceId": instance,
            "registry": [
                {
                    "hive": "HKLM",
                    "key": f"{UNINSTALL}\\ContosoNotes",
                    "valueName": "DisplayName",
                    "value": "Contoso Notes",
                },
                {
                    "hive": "HKLM",
                    "key": f"{UNINSTALL}\\ContosoNotes",
                    "valueName": "DisplayVersion",
                    "value": "8.1.4",
                    "use32BitView": True,
                },
                {
                    "hive": "HKLM",
                    "key": f"{UNINSTALL}\\ContosoNotes",
                    "valueName": "DisplayName",
                    "value": "Contoso Notes",
                    "use32BitView": True,
                },
                {
                    "hive": "HKLM",
                    "key": f"{UNINSTALL}\\ContosoNotes",
                    "valueName": "Publisher",
                    "value": "Contoso",
                    "use32BitView": True,
                },
            ],
            "msiProducts": [{"productCode": VIEWER_CODE, "version": "3.2.0"}],
            "services": [{"name": "FabrikamAgent", "state": "Running", "startType": "Automatic"}],
        },
    )


def _gather(sandbox, **parameters):
    return sandbox.client("ssm").create_association(
        Name="AWS-GatherSoftwareInventory",
        Targets=[{"Key": "tag:Team", "Values": ["euc"]}],
        ScheduleExpression="rate(12 hours)",
        Parameters={k: [v] for k, v in parameters.items()},
    )["AssociationDescription"]["AssociationId"]


def test_an_inventory_association_makes_agents_report_applications(sandbox):
    _, instances, _ = registered_fleet(sandbox, 3, tags={"Team": "euc"})
    _install_apps(sandbox, instances[0])
    _gather(sandbox)
    ssm = sandbox.client("ssm")
    assert ssm.get_inventory()["Entities"] == []  # nothing collected before the agents run
    run_agents(sandbox)
    everyone = ssm.get_inventory()["Entities"]
    assert sorted(e["Id"] for e in everyone) == sorted(instances)
    info = everyone[0]["Data"]["AWS:InstanceInformation"]
    assert info["Content"][0]["ResourceType"] == "ManagedInstance"
    assert info["Content"][0]["InstanceId"] == everyone[0]["Id"]
    found = ssm.get_inventory(
        Filters=[{"Key": "AWS:Application.Name", "Values": ["Contoso Notes"], "Type": "Equal"}],
        ResultAttributes=[{"TypeName": "AWS:Application"}],
    )["Entities"]
    assert [e["Id"] for e in found] == [instances[0]]
    apps = {a["Name"]: a for a in found[0]["Data"]["AWS:Application"]["Content"]}
    assert apps["Contoso Notes"]["Version"] == "8.1.4"
    assert apps["Contoso Notes"]["Architecture"] == "i386"
    assert apps[VIEWER_CODE]["PackageId"] == VIEWER_CODE
    begins = ssm.get_inventory(
        Filters=[{"Key": "AWS:Application.Name", "Values": ["Contoso"], "Type": "BeginWith"}]
    )["Entities"]
    assert [e["Id"] for e in begins] == [instances[0]]
    entries = ssm.list_inventory_entries(
        InstanceId=instances[0],
        TypeName="AWS:Application",
        Filters=[{"Key": "AWS:Application.Publisher", "Values": ["Contoso"], "Type": "Equal"}],
    )
    assert [e["Name"] for e in entries["Entries"]] == ["Contoso Notes"]
    services = ssm.list_inventory_entries(InstanceId=instances[0], TypeName="AWS:Service")
    assert services["Entries"][0]["Name"].casefold() == "fabrikamagent"  # Windows: any case


def test_a_disabled_type_is_not_collected(sandbox):
    _, instances, _ = registered_fleet(sandbox, 1, tags={"Team": "euc"})
    _gather(sandbox, applications="Disabled")
    run_agents(sandbox)
    entries = sandbox.client("ssm").list_inventory_entries(
        InstanceId=instances[0], TypeName="AWS:Application"
    )
    assert entries["Entries"] == []


def test_inventory_schema_and_bad_requests(sandbox):
    registered_fleet(
        sandbox, 1, tags={"Team": "euc"}
    )  # registered_fleet(sandbox, 1, tags={"Team": "euc"})
    ssm = sandbox.client("ssm", config=NO_RETRY)
    schemas = ssm.get_inventory_schema()["Schemas"]
    names = {s["TypeName"] for s in schemas}
    assert {"AWS:Application", "AWS:InstanceInformation"} <= names
    application = ssm.get_inventory_schema(TypeName="AWS:Application")["Schemas"][0]
    assert {"Name": "Version", "DataType": "string"} in application["Attributes"]
    for call, code in (
        (lambda: ssm.get_inventory_schema(TypeName="AWS:Nothing"), "InvalidTypeNameException"),
        (
            lambda: ssm.get_inventory(Filters=[{"Key": "AWS:Application.Colour", "Values": ["x"]}]),
            "InvalidFilter",
        ),
        (
            lambda: ssm.list_inventory_entries(
                InstanceId="mi-00000000000000000", TypeName="AWS:Application"
            ),
            "InvalidInstanceId",
        ),
        (
            lambda: ssm.get_inventory(Aggregators=[{"Expression": "AWS:Application.Name"}]),
            "InvalidAggregatorException",
        ),
    ):
        with pytest.raises(ClientError) as raised:
            call()
        assert raised.value.response["Error"]["Code"] == code


def test_association_executions_and_their_targets(sandbox):
    _, instances, _ = registered_fleet(sandbox, 2, tags={"Team": "euc"})
    ssm = sandbox.client("ssm", config=NO_RETRY)
    association = _gather(sandbox)
    pending = ssm.describe_association_executions(AssociationId=association)[
        "AssociationExecutions"
    ]
    assert [(e["Status"], e["ResourceCountByStatus"]) for e in pending] == [
        ("Pending", "{Pending=2}")
    ]
    run_agents(sandbox)
    done = ssm.describe_association_executions(AssociationId=association)["AssociationExecutions"]
    assert [(e["Status"], e["ResourceCountByStatus"]) for e in done] == [("Success", "{Success=2}")]
    execution = done[0]["ExecutionId"]
    assert execution == pending[0]["ExecutionId"]
    targets = ssm.describe_association_execution_targets(
        AssociationId=association, ExecutionId=execution
    )["AssociationExecutionTargets"]
    assert sorted(t["ResourceId"] for t in targets) == sorted(instances)
    assert {t["Status"] for t in targets} == {"Success"}
    ssm.start_associations_once(AssociationIds=[association])
    newest = ssm.describe_association_executions(AssociationId=association)["AssociationExecutions"]
    assert len(newest) == 2 and newest[0]["Status"] == "Pending"
    only = ssm.describe_association_executions(
        AssociationId=association,
        Filters=[{"Key": "Status", "Value": "Success", "Type": "EQUAL"}],
    )["AssociationExecutions"]
    assert [e["ExecutionId"] for e in only] == [execution]
    one = ssm.describe_association_execution_targets(
        AssociationId=association,
        ExecutionId=execution,
        Filters=[{"Key": "ResourceId", "Value": instances[1]}],
    )["AssociationExecutionTargets"]
    assert [t["ResourceId"] for t in one] == [instances[1]]
    with pytest.raises(ClientError) as raised:
        ssm.describe_association_execution_targets(
            AssociationId=association, ExecutionId="00000000-0000-0000-0000-000000000000"
        )
    assert raised.value.response["Error"]["Code"] == "AssociationExecutionDoesNotExist"
    with pytest.raises(ClientError) as raised:
        ssm.describe_association_executions(AssociationId="00000000-0000-0000-0000-000000000000")
    assert raised.value.response["Error"]["Code"] == "AssociationDoesNotExist"


def test_instance_information_carries_association_status_and_filters_by_it(sandbox):
    _, instances, _ = registered_fleet(sandbox, 2, tags={"Team": "euc"})
    ssm = sandbox.client("ssm")
    before = ssm.describe_instance_information()["InstanceInformationList"]
    assert all("AssociationStatus" not in i for i in before)
    assert {(i["SourceId"], i["SourceType"]) for i in before} == {
        (i, "AWS::SSM::ManagedInstance") for i in instances
    }
    _gather(sandbox)
    pending = ssm.describe_instance_information(
        Filters=[{"Key": "AssociationStatus", "Values": ["Pending"]}]
    )["InstanceInformationList"]
    assert len(pending) == 2
    assert pending[0]["AssociationOverview"] == {
        "DetailedStatus": "Pending",
        "InstanceAssociationStatusAggregatedCount": {"Pending": 1},
    }
    run_agents(sandbox)
    success = ssm.describe_instance_information(
        Filters=[{"Key": "AssociationStatus", "Values": ["Success"]}]
    )["InstanceInformationList"]
    assert len(success) == 2
    assert (
        success[0]["LastSuccessfulAssociationExecutionDate"]
        == success[0]["LastAssociationExecutionDate"]
    )
    assert (
        ssm.describe_instance_information(
            Filters=[{"Key": "AssociationStatus", "Values": ["Failed"]}]
        )["InstanceInformationList"]
        == []
    )


def test_compliance_summaries_count_resources_per_type(sandbox):
    _, instances, _ = registered_fleet(sandbox, 3, tags={"Team": "euc"})
    sandbox.admin.post(
        "patches", {"instanceIds": [instances[0]], "missing": {"KB5031364": "Critical"}}
    )
    ssm = sandbox.client("ssm")
    ssm.create_association(
        Name="AWS-RunPatchBaseline",
        Parameters={"Operation": ["Scan"]},
        Targets=[{"Key": "tag:Team", "Values": ["euc"]}],
        ComplianceSeverity="HIGH",
    )
    run_agents(sandbox)
    summaries = {
        s["ComplianceType"]: s for s in ssm.list_compliance_summaries()["ComplianceSummaryItems"]
    }
    assert set(summaries) == {"Association", "Patch"}
    patch = summaries["Patch"]
    assert patch["CompliantSummary"]["CompliantCount"] == 2
    assert patch["NonCompliantSummary"]["NonCompliantCount"] == 1
    assert patch["NonCompliantSummary"]["SeveritySummary"]["CriticalCount"] == 1
    assert summaries["Association"]["CompliantSummary"]["CompliantCount"] == 3
    only_patch = ssm.list_compliance_summaries(
        Filters=[{"Key": "ComplianceType", "Values": ["Patch"], "Type": "EQUAL"}]
    )["ComplianceSummaryItems"]
    assert [s["ComplianceType"] for s in only_patch] == ["Patch"]
    items = ssm.list_compliance_items(
        ResourceIds=[instances[0]],
        ResourceTypes=["ManagedInstance"],
        Filters=[{"Key": "ComplianceType", "Values": ["Patch"]}],
    )["ComplianceItems"]
    assert [(i["Id"], i["Status"], i["Severity"]) for i in items] == [
        ("KB5031364", "NON_COMPLIANT", "CRITICAL")
    ]
